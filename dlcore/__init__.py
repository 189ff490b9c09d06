"""dlcore: RBMs, Deep Belief Networks and convolutional networks for teaching.

The maths of each algorithm is written once as readable NumPy (the ``reference`` backend) and
runs fast through Numba kernels on the CPU (``cpu``) and on NVIDIA GPUs (``cuda``)::

    import dlcore
    X, y = dlcore.datasets.load_mnist_5k()
    rbm = dlcore.BernoulliRBM(n_hidden=49, epochs=10).fit(dlcore.datasets.to_unit_interval(X))
    dlcore.save(rbm, "model.h5")
"""
# the two underscored modules first: _source_checkout lets a clone's root import the rest, and
# _starting makes an interrupted start of the command line one line
from dlcore import (
    _source_checkout,  # noqa: F401
    _starting,  # noqa: F401 (imported for the handlers it installs)
    adversarial,
    callbacks,
    datasets,
    ensemble,
    layers,
    losses,
    metrics,
    models,
    optimizers,
    pretraining,
    regularizers,
)
from dlcore._version import __version__
from dlcore.autoencoder import Autoencoder, StackedAutoencoder
from dlcore.backend import get_backend
from dlcore.dbn import DBN, DBNClassifier
from dlcore.errors import NotFittedError, TrainingDiverged
from dlcore.functional import Input, Model
from dlcore.gradient_check import gradcheck
from dlcore.io import ModelFileError, load, save
from dlcore.network import Sequential
from dlcore.rbm import BernoulliRBM, GaussianBernoulliRBM
from dlcore.receptive_field import receptive_fields
from dlcore.termination import Terminated, interrupt_on_termination

#: subpackages imported on first use, ``dlcore.viz.save_curves(...)`` and
#: ``dlcore.wrappers.SKLearnClassifier(...)`` as the README writes them after ``import dlcore``
#: (Keras's ``keras.wrappers`` likewise), without their start-up cost on every command
LAZY_MODULES = ("viz", "wrappers")


def __getattr__(name):
    if name in LAZY_MODULES:
        import importlib
        return importlib.import_module(f"dlcore.{name}")
    raise AttributeError(f"module 'dlcore' has no attribute {name!r}")


__all__ = ["Autoencoder", "BernoulliRBM", "DBN", "DBNClassifier", "GaussianBernoulliRBM", "Input",
           "Model", "ModelFileError", "NotFittedError", "Sequential", "StackedAutoencoder",
           "Terminated", "TrainingDiverged", "__version__", "adversarial", "callbacks",
           "datasets", "ensemble", "get_backend", "gradcheck", "interrupt_on_termination",
           "layers", "load", "losses", "metrics", "models", "optimizers", "pretraining",
           "receptive_fields", "regularizers", "save", "viz", "wrappers"]
