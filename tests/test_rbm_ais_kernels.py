"""The annealing kernels of AIS and RAISE against their oracle, the NumPy reference
(dlcore.rbm.annealing): the same seed moves the chains through the same states on every backend,
so the final states agree exactly and the log-weights to float32 rounding; the kernels' softplus
difference against float64 arithmetic. The CUDA kernels run under the simulator (tiny shapes)."""
import numpy as np
import pytest
from numba import njit

from conftest import requires_cuda
from dlcore.backend import get_backend, rng
from dlcore.rbm.ais import annealing_schedule
from dlcore.rbm.annealing import BernoulliPath, GaussianPath, anneal, softplus_step
from dlcore.rbm.model import softplus

KERNEL_BACKENDS = ["cpu", pytest.param("cuda", marks=requires_cuda)]


def bernoulli_path(random_state, n_visible=7, n_hidden=6):
    W = random_state.normal(0, 1, (n_visible, n_hidden))
    b, c = random_state.normal(0, 1, n_visible), random_state.normal(0, 1, n_hidden)
    return BernoulliPath(W, b, c, random_state.normal(0, 1, n_visible))


def gaussian_path(random_state, n_visible=5, n_hidden=6):
    W = random_state.normal(0, 0.5, (n_visible, n_hidden))
    b, c = random_state.normal(0, 1, n_visible), random_state.normal(0, 1, n_hidden)
    sigma = random_state.uniform(0.5, 2, n_visible)
    return GaussianPath(W, b, c, sigma, random_state.normal(0, 1, n_visible),
                        random_state.uniform(0.5, 2, n_visible))


def run_both(backend_name, path, start, betas, log_weights, stream=rng.STREAM_AIS):
    expected = anneal(get_backend("reference"), path, start, betas, 5, stream, log_weights)
    got = anneal(get_backend(backend_name), path, start, betas, 5, stream, log_weights)
    return expected, got


@pytest.mark.parametrize("backend_name", KERNEL_BACKENDS)
def test_forward_annealing_of_binary_units_matches_the_reference(backend_name, random_state):
    path = bernoulli_path(random_state)
    start = path.sample_base(9, 5, rng.STREAM_AIS)
    betas = annealing_schedule(3 if backend_name == "cuda" else 60)
    (weights, states), (got_weights, got_states) = run_both(backend_name, path, start, betas,
                                                            np.zeros(9))
    np.testing.assert_array_equal(got_states, states)
    np.testing.assert_allclose(got_weights, weights, rtol=1e-5, atol=1e-5)
    assert np.ptp(weights) > 0.1 and 0 < states.mean() < 1   # the chains moved apart


@pytest.mark.slow
@pytest.mark.parametrize("backend_name", KERNEL_BACKENDS)
def test_annealing_of_gaussian_units_matches_the_reference(backend_name, random_state):
    path = gaussian_path(random_state)
    start = path.sample_base(6, 5, rng.STREAM_AIS)
    betas = annealing_schedule(3 if backend_name == "cuda" else 60)
    (weights, states), (got_weights, got_states) = run_both(backend_name, path, start, betas,
                                                            np.zeros(6))
    np.testing.assert_allclose(got_states, states, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got_weights, weights, rtol=1e-5, atol=1e-4)
    assert np.ptp(weights) > 0.1


@pytest.mark.parametrize("backend_name", ["cpu", pytest.param(
    "cuda", marks=[requires_cuda, pytest.mark.slow])])
def test_reverse_annealing_from_data_matches_the_reference(backend_name, random_state):
    """RAISE's schedule falls from 1 to 0, so every increment is negative-going."""
    path = bernoulli_path(random_state)
    start = (random_state.random((5, 7)) < 0.5).astype(np.float32)
    schedule = annealing_schedule(3 if backend_name == "cuda" else 60)
    betas = np.concatenate([[1.0], schedule[::-1]])
    initial = path.log_p_star(start, 1.0) - path.log_z_base()
    (weights, states), (got_weights, got_states) = run_both(backend_name, path, start, betas,
                                                            initial, rng.STREAM_RAISE)
    np.testing.assert_array_equal(got_states, states)
    np.testing.assert_allclose(got_weights, weights, rtol=1e-5, atol=1e-5)


def test_a_temperature_adds_the_difference_of_log_p_star_and_takes_one_gibbs_step():
    """A hand-sized case: one temperature of the reference is the equation of the module
    docstring, the increment computed here from scratch with numpy's logaddexp."""
    W = np.array([[1.0, -2.0], [0.5, 0.25], [-1.0, 0.0]])
    b, c, a = np.array([0.1, -0.2, 0.3]), np.array([0.5, -0.5]), np.zeros(3)
    path = BernoulliPath(W, b, c, a)
    v = np.array([[1.0, 0.0, 1.0]], np.float32)
    weights, _ = anneal(get_backend("reference"), path, v, np.array([0.25, 0.75]), 1,
                        rng.STREAM_AIS, np.zeros(1))
    x = v[0] @ W + c

    def log_p_star(beta):
        return (1 - beta) * (v[0] @ a) + beta * (v[0] @ b) + np.logaddexp(0, beta * x).sum()

    assert weights[0] == pytest.approx(log_p_star(0.75) - log_p_star(0.25), abs=1e-12)


@njit(cache=True)
def softplus_steps(x, previous, beta, out):
    for i in range(x.shape[0]):
        out[i] = softplus_step(x[i], previous, beta)


# NumPy's float32 sigmoid overflows exp harmlessly for very negative arguments
@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_the_kernels_softplus_step_keeps_float32_precision_of_tiny_differences():
    """Oracle: the float64 difference of two softplus values, at float32's betas. The plain
    float32 difference of softplus(beta x) and softplus(previous x) would lose most digits at
    steps of 1e-5; the CPU computes expm1 and log1p by series, NumPy (as CUDA) by math's."""
    x = np.concatenate([np.linspace(-100, 100, 401), [0.0, 1e-3, -1e-3, 40.0, -40.0]])
    x = x.astype(np.float32)
    for previous, beta in [(0.0, 1e-4), (0.5, 0.5 + 1e-5), (0.99, 0.99007), (0.2, 0.9),
                           (0.9, 0.2), (1.0, 1.0 - 1e-5), (0.0, 1.0), (1.0, 0.0)]:
        p32, b32 = np.float32(previous), np.float32(beta)
        expected = (softplus(float(b32) * x.astype(np.float64))
                    - softplus(float(p32) * x.astype(np.float64)))
        got = np.empty_like(x)
        softplus_steps(x, p32, b32, got)
        np.testing.assert_allclose(got, expected, rtol=2e-6, atol=1e-30)
        python = np.array([softplus_step(value, p32, b32) for value in x[::20]])
        np.testing.assert_allclose(python, expected[::20], rtol=2e-6, atol=1e-30)
