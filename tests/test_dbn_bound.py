"""dbn.log_likelihood_bound: Salakhutdinov & Murray's variational lower bound against the oracle
of exact enumeration on tiny DBNs (the bound lies below log p(v), and close to it), and the
exact log p(v) itself against a brute-force sum over every joint state."""
import itertools

import numpy as np
import pytest

import dlcore
from dlcore.backend.reference import sigmoid
from dlcore.dbn.bound import exact_log_probability
from dlcore.rbm.ais import LogLikelihood


def prototype_data(seed, n_visible, n_rows=500, noise=0.05):
    generator = np.random.default_rng(seed)
    prototypes = (generator.random((4, n_visible)) < 0.5).astype(np.float32)
    flips = generator.random((n_rows, n_visible)) < noise
    return np.abs(prototypes[np.arange(n_rows) % 4] - flips).astype(np.float32)


def tiny_dbn(layers, seed=0, **options):
    X = prototype_data(seed, layers[0])
    dbn = dlcore.DBN(layers=layers, epochs=15, learning_rate=0.1, batch_size=10, seed=seed,
                     backend="reference", **options).fit(X[:400])
    return dbn.set_params(backend="cpu"), X[400:]


@pytest.fixture(scope="module")
def dbn_10_6_5():
    return tiny_dbn([10, 6, 5])


def brute_force_log_p(dbn, X):
    """log p(v) = log sum over (h_1, h_2) of p(v | h_1) exp(-E_top(h_1, h_2)) / Z_top for a
    two-RBM DBN, from the weights alone: every joint state enumerated."""
    bottom, top = dbn.rbms_
    W1, b1 = (np.asarray(a, np.float64) for a in (bottom.W, bottom.visible_bias))
    W2, b2, c2 = (np.asarray(a, np.float64) for a in (top.W, top.visible_bias, top.hidden_bias))
    h1 = np.array(list(itertools.product([0.0, 1.0], repeat=W2.shape[0])))
    h2 = np.array(list(itertools.product([0.0, 1.0], repeat=W2.shape[1])))
    minus_energy = h1 @ b2[:, None] + (h2 @ c2)[None, :] + h1 @ W2 @ h2.T    # (H1, H2)
    log_joint_top = minus_energy - np.logaddexp.reduce(minus_energy.ravel())
    log_p_h1 = np.logaddexp.reduce(log_joint_top, axis=1)
    p_v = sigmoid(h1 @ W1.T + b1)                                              # (H1, V)
    log_p_v_given_h1 = X @ np.log(p_v).T + (1 - X) @ np.log(1 - p_v).T        # (n, H1)
    return np.logaddexp.reduce(log_p_v_given_h1 + log_p_h1, axis=1)


def test_exact_log_probability_is_the_sum_over_every_joint_state(dbn_10_6_5):
    dbn, X = dbn_10_6_5
    np.testing.assert_allclose(exact_log_probability(dbn, X[:20]),
                               brute_force_log_p(dbn, X[:20].astype(np.float64)), rtol=1e-10)


def test_the_bound_lies_below_the_exact_log_likelihood_and_close_to_it(dbn_10_6_5):
    dbn, X = dbn_10_6_5
    exact = exact_log_probability(dbn, X).mean()
    bound = dbn.log_likelihood_bound(X, method="exact", n_samples=20)
    assert bound.mean < exact
    assert exact - bound.mean < 1   # measured 0.24: a factorial Q over 6 units loses little
    assert bound.method == "exact" and bound.interval[0] < bound.mean < bound.interval[1]


def test_the_ais_bound_agrees_with_the_exact_bound_and_brackets_it(dbn_10_6_5):
    """Same draws from Q, log Z_top by AIS instead of enumeration: within 0.1 nats."""
    dbn, X = dbn_10_6_5
    exact_bound = dbn.log_likelihood_bound(X, method="exact", n_samples=5)
    estimate = dbn.log_likelihood_bound(X, n_samples=5, n_temperatures=1000, reverse_rows=200)
    assert isinstance(estimate, LogLikelihood)
    assert abs(estimate.mean - exact_bound.mean) < 0.1
    top_log_z = dbn.rbms_[-1].log_partition()
    assert abs(estimate.log_z - top_log_z) < 0.1 and abs(estimate.log_z_upper - top_log_z) < 0.1
    low, high = estimate.bracket
    assert high == estimate.mean and low == pytest.approx(
        estimate.mean + estimate.log_z - estimate.log_z_upper)


@pytest.mark.parametrize("kind", ["three RBMs", "up-down", "gaussian"])
def test_the_bound_holds_for_deeper_untied_and_gaussian_dbns(kind):
    if kind == "three RBMs":
        dbn, X = tiny_dbn([8, 5, 4, 3])
    elif kind == "up-down":
        dbn, X = tiny_dbn([10, 6, 5], up_down_epochs=3)
        assert dbn.generative_ is not None
    else:
        X = prototype_data(1, 6) * 2 + np.random.default_rng(1).normal(0, 0.5, (500, 6))
        X = X.astype(np.float32)
        dbn = dlcore.DBN(layers=[6, 6, 4], visible="gaussian", epochs=10, seed=1,
                         learning_rate=[0.02, 0.1], backend="reference").fit(X[:400])
        X = X[400:]
    exact = exact_log_probability(dbn, X).mean()
    bound = dbn.log_likelihood_bound(X, method="exact", n_samples=10)
    assert bound.mean < exact < bound.mean + 1   # measured: 0.24-0.36 nats below


def test_more_samples_do_not_change_what_is_estimated(dbn_10_6_5):
    """The Monte Carlo average converges: 5 and 40 draws agree within their intervals."""
    dbn, X = dbn_10_6_5
    few = dbn.log_likelihood_bound(X, method="exact", n_samples=5, seed=1)
    many = dbn.log_likelihood_bound(X, method="exact", n_samples=40, seed=2)
    assert abs(few.mean - many.mean) < 2 * (few.interval[1] - few.mean) + 0.05


def test_a_dbn_of_one_rbm_gives_that_rbms_log_likelihood():
    dbn, X = tiny_dbn([10, 6])
    result = dbn.log_likelihood_bound(X, method="exact")
    assert result.mean == pytest.approx(dbn.rbms_[0].log_likelihood(X, method="exact").mean)
    assert exact_log_probability(dbn, X).mean() == pytest.approx(result.mean)


def test_bad_requests_are_one_clear_error(dbn_10_6_5):
    dbn, X = dbn_10_6_5
    with pytest.raises(ValueError, match="method must be 'ais' or 'exact'"):
        dbn.log_likelihood_bound(X, method="variational")
    with pytest.raises(ValueError, match="10 visible units"):
        dbn.log_likelihood_bound(X[:, :4])
    with pytest.raises(dlcore.NotFittedError):
        dlcore.DBN(layers=[10, 6, 5]).log_likelihood_bound(X)
    labelled = dlcore.DBN(layers=[10, 6, 5], n_labels=2, epochs=1, backend="reference").fit(
        X, np.arange(len(X)) % 2)
    with pytest.raises(ValueError, match="without label units"):
        labelled.log_likelihood_bound(X)
    wide = dlcore.DBN(layers=[10, 13, 4], epochs=1, backend="reference").fit(X)
    with pytest.raises(ValueError, match="at most 12 units"):
        exact_log_probability(wide, X)
