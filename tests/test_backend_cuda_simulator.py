"""The CUDA simulator must type and count as a real GPU does.

The tests run the CUDA backend under Numba's simulator (``tests/conftest.py``), which runs the
kernels as Python. Where Python's own rules differ from what numba-cuda compiles for a GPU, the
tests would pass on numbers a GPU never computes.
"""
import numpy as np
import pytest

from conftest import requires_cuda
from dlcore.layers import Dense


@requires_cuda
@pytest.mark.parametrize("name", ["sigmoid", "gelu"])
def test_float64_layers_keep_float64_precision_on_cuda(name):
    # on a GPU, float32(1) + exp(float64) is a float64; in the simulator math.exp returned a
    # Python float, which NumPy 2 rounded to float32 next to a float32 (~1e-7 off)
    x = np.random.default_rng(3).random((4, 9)) * 6 - 3
    outputs = [np.asarray(Dense(5, activation=name).build((9,), backend=backend,
                                                          dtype=np.float64, seed=4).forward(x))
               for backend in ("cuda", "reference")]
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-12, atol=1e-14)

