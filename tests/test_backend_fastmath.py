"""The CPU kernels' vectorisable exp and tanh, against NumPy's float64 ones as the oracle."""
import numpy as np

from dlcore.backend.fastmath import elementwise, exp_float32, tanh_float32


def test_exp_float32_is_within_two_ulp_over_the_whole_normal_range():
    x = np.linspace(-87.0, 88.0, 2_000_001, dtype=np.float32)
    out = np.empty_like(x)
    elementwise(exp_float32, x, out)
    exact = np.exp(x.astype(np.float64))
    assert np.max(np.abs(out - exact) / exact) < 2.5e-7


def test_exp_float32_saturates_instead_of_overflowing():
    x = np.array([-1e4, -200.0, 200.0, 1e4], dtype=np.float32)
    out = np.empty_like(x)
    elementwise(exp_float32, x, out)
    assert np.isfinite(out).all() and out[0] < 1e-37 and out[-1] > 1e38


def test_exp_float32_of_zero_is_exactly_one():
    out = np.empty(1, np.float32)
    elementwise(exp_float32, np.zeros(1, np.float32), out)
    assert out[0] == 1.0


def test_tanh_float32_is_within_three_ulp_on_both_sides_of_its_two_regions():
    below_boundary = np.nextafter(np.float32(0.625), np.float32(0.0))
    x = np.concatenate([np.linspace(-20.0, 20.0, 2_000_001, dtype=np.float32),
                        np.array([-0.625, 0.625, -below_boundary, below_boundary, 1e-30, -1e-30,
                                  1e-8, -3e-5], np.float32)])
    out = np.empty_like(x)
    elementwise(tanh_float32, x, out)
    exact = np.tanh(x.astype(np.float64))
    nonzero = exact != 0
    assert np.max(np.abs(out[nonzero] - exact[nonzero]) / np.abs(exact[nonzero])) < 2.5e-7
    assert np.all(out[x == 0] == 0)


def test_tanh_float32_saturates_and_keeps_nan():
    x = np.array([-np.inf, -1e30, -50.0, 50.0, 1e30, np.inf, np.nan], dtype=np.float32)
    out = np.empty_like(x)
    elementwise(tanh_float32, x, out)
    np.testing.assert_array_equal(out[:-1], [-1, -1, -1, 1, 1, 1])
    assert np.isnan(out[-1])
