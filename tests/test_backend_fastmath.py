"""The CPU kernels' vectorisable exp, against NumPy's float64 exp as the oracle."""
import numpy as np

from dlcore.backend.fastmath import exp_float32_array


def test_exp_float32_is_within_two_ulp_over_the_whole_normal_range():
    x = np.linspace(-87.0, 88.0, 2_000_001, dtype=np.float32)
    out = np.empty_like(x)
    exp_float32_array(x, out)
    exact = np.exp(x.astype(np.float64))
    assert np.max(np.abs(out - exact) / exact) < 2.5e-7


def test_exp_float32_saturates_instead_of_overflowing():
    x = np.array([-1e4, -200.0, 200.0, 1e4], dtype=np.float32)
    out = np.empty_like(x)
    exp_float32_array(x, out)
    assert np.isfinite(out).all() and out[0] < 1e-37 and out[-1] > 1e38


def test_exp_float32_of_zero_is_exactly_one():
    out = np.empty(1, np.float32)
    exp_float32_array(np.zeros(1, np.float32), out)
    assert out[0] == 1.0
