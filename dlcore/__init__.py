"""dlcore: RBMs, Deep Belief Networks and convolutional networks for teaching.

The maths of each algorithm is written once as readable NumPy (the ``reference`` backend) and
runs fast through Numba kernels on the CPU (``cpu``) and on NVIDIA GPUs (``cuda``).
"""
from dlcore._version import __version__

__all__ = ["__version__"]
