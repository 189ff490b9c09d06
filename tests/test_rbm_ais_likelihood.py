"""rbm.log_likelihood: AIS and RAISE against the oracle of exact enumeration (within 0.1 nats on
RBMs of up to 20 hidden units, on every backend), the bracket, Gaussian visible units, and the
result type."""
import itertools

import numpy as np
import pytest

import dlcore
from conftest import requires_cuda
from dlcore import BernoulliRBM, GaussianBernoulliRBM
from dlcore.rbm import ais_log_partition, exact_log_partition, gaussian_exact_log_partition
from dlcore.rbm.ais import LogLikelihood, raise_log_probability
from dlcore.rbm.model import free_energy

BACKENDS = ["reference", "cpu"]


def prototype_data(random_state, n_visible, n_rows=600, noise=0.05):
    """Noisy copies of four binary prototypes: a multi-modal distribution an RBM can learn."""
    prototypes = (random_state.random((4, n_visible)) < 0.5).astype(np.float32)
    flips = random_state.random((n_rows, n_visible)) < noise
    return np.abs(prototypes[np.arange(n_rows) % 4] - flips).astype(np.float32)


def trained_rbm(n_visible, n_hidden, seed=0):
    """An RBM trained on prototype data (reference backend: nothing to compile), and 200
    held-out rows."""
    X = prototype_data(np.random.default_rng(seed), n_visible)
    rbm = BernoulliRBM(n_hidden=n_hidden, epochs=20, batch_size=10, learning_rate=0.1, seed=1,
                       backend="reference").fit(X[:400])
    return rbm.set_params(backend="cpu"), X[400:]


@pytest.fixture(scope="module")
def rbm_16_20():
    return trained_rbm(16, 20)


@pytest.fixture(scope="module")
def rbm_10_8():
    return trained_rbm(10, 8)


@pytest.fixture(scope="module")
def rbm_8_6():
    return trained_rbm(8, 6)


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_ais_log_likelihood_is_within_a_tenth_of_a_nat_of_exact_with_20_hidden_units(
        backend_name, rbm_16_20):
    rbm, X_test = rbm_16_20
    exact = rbm.log_likelihood(X_test, method="exact")
    estimate = rbm.log_likelihood(X_test, n_temperatures=1000, reverse_rows=0,
                                  backend=backend_name)
    assert abs(estimate.mean - exact.mean) < 0.1
    assert abs(estimate.log_z - exact_log_partition(rbm)) < 0.1
    assert 0 < estimate.log_z_standard_error < 0.05


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_ais_log_z_of_random_rbms_is_within_a_tenth_of_a_nat(backend_name, random_state):
    for n_visible, n_hidden, scale in [(12, 20, 0.5), (20, 8, 0.5)]:
        W = random_state.normal(0, scale, (n_visible, n_hidden))
        b, c = random_state.normal(0, 1, n_visible), random_state.normal(0, 1, n_hidden)
        estimate = ais_log_partition(W, b, c, n_temperatures=1000, backend=backend_name)
        assert abs(estimate.log_z - exact_log_partition(W, b, c)) < 0.1


def model_marginal_log_odds(W, b, c):
    """log(p / (1 - p)) of the RBM's exact visible marginals (a base model fitted to endless
    data from the model itself), by enumerating the visible states."""
    states = np.array(list(itertools.product([0.0, 1.0], repeat=W.shape[0])))
    log_p = -free_energy(states, W, b, c)
    p = np.exp(log_p - log_p.max())
    marginal = np.clip(p @ states / p.sum(), 1e-3, 1 - 1e-3)
    return np.log(marginal / (1 - marginal))


@requires_cuda
def test_ais_on_the_cuda_backend_is_the_reference_and_within_a_tenth_of_a_nat(random_state):
    """The simulator is slow: a 4-3 RBM, 8 runs, 5 temperatures, with a base model fitted to
    the model's own marginals (as the data's marginals are to the data)."""
    W = random_state.normal(0, 0.4, (4, 3))
    b, c = random_state.normal(0, 1, 4), random_state.normal(0, 1, 3)
    base = model_marginal_log_odds(W, b, c)
    options = dict(n_runs=8, n_temperatures=5, base_visible_bias=base, seed=3)
    on_gpu = ais_log_partition(W, b, c, backend="cuda", **options)
    assert on_gpu.log_z == pytest.approx(
        ais_log_partition(W, b, c, backend="reference", **options).log_z, abs=1e-5)
    assert abs(on_gpu.log_z - exact_log_partition(W, b, c)) < 0.1


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_gaussian_rbm_ais_is_within_a_tenth_of_a_nat_of_its_exact_log_z(
        backend_name, random_state):
    """Oracle: the Gaussian visibles integrated out analytically, the hidden states
    enumerated (monitors.gaussian_exact_log_partition)."""
    prototypes = random_state.normal(0, 1.5, (3, 8))
    X = (prototypes[np.arange(500) % 3] + random_state.normal(0, 0.7, (500, 8))).astype(
        np.float32)
    rbm = GaussianBernoulliRBM(n_hidden=10, epochs=10, learning_rate=0.005, seed=0,
                               learn_sigma=True, backend="reference").fit(X[:400])
    exact = rbm.log_likelihood(X[400:], method="exact")
    assert exact.log_z == pytest.approx(gaussian_exact_log_partition(
        rbm.W, rbm.visible_bias, rbm.hidden_bias, rbm.visible_sigma))
    estimate = rbm.log_likelihood(X[400:], n_temperatures=1000, reverse_rows=50,
                                  backend=backend_name)
    assert abs(estimate.mean - exact.mean) < 0.1
    low, high = estimate.bracket
    assert low - 0.1 < exact.mean < high + 0.1


@pytest.mark.parametrize("model", ["rbm_10_8", "rbm_16_20"])
def test_exact_log_z_lies_in_the_bracket_of_ais_and_raise(model, request):
    """AIS's log Z is biased low, RAISE's high: exact sits between them, up to three of their
    standard errors; both are close to it on a model this small."""
    rbm, X_test = request.getfixturevalue(model)
    exact = rbm.log_likelihood(X_test, method="exact")
    result = rbm.log_likelihood(X_test, n_temperatures=1000, reverse_rows=200)
    assert result.log_z - 3 * result.log_z_standard_error < exact.log_z
    assert exact.log_z < result.log_z_upper + 3 * result.log_z_upper_standard_error
    assert abs(result.log_z_upper - exact.log_z) < 0.2
    assert result.bracket[1] == result.mean
    assert result.bracket[0] == pytest.approx(result.mean + result.log_z - result.log_z_upper)


def test_raise_estimates_each_rows_log_probability_conservatively(rbm_10_8):
    """Per row, RAISE's log p(v) is an unbiased estimate of p_ann(v) in probability: averaged
    over many chains it is within a few hundredths of a nat of the exact log p(v), and no
    row's mean lies far above it (the bias is downwards)."""
    rbm, X_test = rbm_10_8
    rows = X_test[:5]
    exact = -rbm.free_energy(rows) - exact_log_partition(rbm)
    estimate = raise_log_probability(rbm, rows, n_runs=50, n_temperatures=500, seed=2)
    assert estimate.shape == (5,)
    assert np.all(np.abs(estimate - exact) < 0.1)


def test_ais_and_raise_agree_on_an_rbm_too_large_to_enumerate():
    """A 196-40 RBM trained on 14 x 14 digits (2^40 hidden states): the two estimates, biased in
    opposite directions, agree within their standard errors, at 300 temperatures as at 3,000
    (measured: within 0.08 nats from 300 to 10,000 temperatures)."""
    images, labels = dlcore.datasets.load_dataset("mnist-5k")
    train_rows, test_rows = dlcore.datasets.holdout_split(labels, 10, seed=0)
    X = dlcore.datasets.to_unit_interval(images).reshape(-1, 14, 2, 14, 2).mean(axis=(2, 4))
    X = X.reshape(len(X), 196)
    rbm = BernoulliRBM(n_hidden=40, epochs=5, learning_rate=0.05, batch_size=20, seed=0,
                       backend="cpu").fit(X[train_rows[:2000]])
    test = dlcore.datasets.binarize(X[test_rows], mode="stochastic", seed=0)
    estimates = [rbm.log_likelihood(test, n_temperatures=temperatures, reverse_rows=100,
                                    data=X[train_rows]) for temperatures in (300, 3000)]
    for result in estimates:
        spread = np.hypot(result.log_z_standard_error, result.log_z_upper_standard_error)
        assert abs(result.log_z_upper - result.log_z) < 3 * spread + 0.02
    assert abs(estimates[0].log_z - estimates[1].log_z) < 0.3
    assert -80 < estimates[1].mean < -20


# -- the result, the API ----------------------------------------------------------------------
def test_the_result_unpacks_into_the_mean_and_its_interval(rbm_8_6):
    rbm, X_test = rbm_8_6
    result = rbm.log_likelihood(X_test, n_temperatures=100, reverse_rows=10)
    mean, (low, high) = result
    assert isinstance(result, LogLikelihood) and result.method == "ais"
    assert low < mean < high and mean == result.mean
    assert high - low == pytest.approx(2 * 1.959964 * result.log_z_standard_error)
    assert result.n_samples == len(X_test)
    assert "RAISE to AIS bracket" in str(result) and "nats per sample" in str(result)
    mean, (low, high) = rbm.log_likelihood(X_test, method="exact")
    assert low == mean == high


def test_the_mean_is_the_mean_free_energy_minus_log_z(rbm_8_6):
    rbm, X_test = rbm_8_6
    result = rbm.log_likelihood(X_test, n_temperatures=50, reverse_rows=0)
    assert result.mean == pytest.approx(np.mean(-rbm.free_energy(X_test)) - result.log_z)
    assert result.bracket is None and result.log_z_upper is None


def test_progress_reports_both_phases(rbm_8_6):
    rbm, X_test = rbm_8_6
    calls = []
    rbm.log_likelihood(X_test, n_temperatures=200, reverse_rows=5,
                       progress=lambda phase, done, total: calls.append((phase, done, total)))
    assert calls[-1] == ("RAISE", 201, 201)
    assert ("AIS", 200, 200) in calls
    assert [phase for phase, _, _ in calls] == sorted(phase for phase, _, _ in calls)


def test_bad_requests_are_one_clear_error(rbm_8_6, random_state):
    rbm, X_test = rbm_8_6
    with pytest.raises(ValueError, match="method must be 'ais' or 'exact'"):
        rbm.log_likelihood(X_test, method="importance")
    with pytest.raises(ValueError, match="8 visible units"):
        rbm.log_likelihood(X_test[:, :5])
    with pytest.raises(dlcore.NotFittedError):
        BernoulliRBM().log_likelihood(X_test)
    labelled = BernoulliRBM(n_hidden=4, n_labels=2, epochs=1, backend="reference").fit(
        np.hstack([X_test, np.eye(2, dtype=np.float32)[np.arange(len(X_test)) % 2]]))
    with pytest.raises(ValueError, match="softmax label units"):
        ais_log_partition(labelled)
    big = BernoulliRBM(n_hidden=30, epochs=1, backend="reference").fit(
        (random_state.random((40, 30)) < 0.5).astype(np.float32))
    with pytest.raises(ValueError, match="at most 24 units"):
        big.log_likelihood(big.W.T[:3] * 0 + 1, method="exact")
