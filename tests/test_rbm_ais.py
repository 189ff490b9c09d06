"""Annealed importance sampling against the oracle of exact enumeration (anchors.md: AIS must
agree with exact enumeration within 0.1 nats on RBMs small enough to enumerate)."""
import numpy as np
import pytest

import dlcore
from dlcore import BernoulliRBM
from dlcore.rbm import ais_log_partition
from dlcore.rbm.ais import AISEstimate, annealing_schedule
from dlcore.rbm.monitors import exact_log_partition


@pytest.mark.parametrize("n_visible, n_hidden, scale", [(12, 10, 1.0), (20, 8, 0.5), (16, 16, 0.3)])
def test_ais_agrees_with_exact_log_z_on_random_rbms(n_visible, n_hidden, scale, random_state):
    W = random_state.normal(0, scale, (n_visible, n_hidden))
    b, c = random_state.normal(0, 1, n_visible), random_state.normal(0, 1, n_hidden)
    estimate, standard_error = ais_log_partition(W, b, c, n_runs=100, n_temperatures=2000)
    assert abs(estimate - exact_log_partition(W, b, c)) < 0.1
    assert 0 < standard_error < 0.1


def test_ais_agrees_with_exact_log_z_on_a_trained_rbm_with_a_data_base_model(random_state):
    prototypes = (random_state.random((4, 14)) < 0.5).astype(np.float32)
    X = np.abs(prototypes[np.arange(400) % 4]
               - (random_state.random((400, 14)) < 0.05)).astype(np.float32)
    rbm = BernoulliRBM(n_hidden=10, epochs=20, batch_size=10, learning_rate=0.1,
                       backend="cpu").fit(X)
    p = np.clip(X.mean(axis=0), 1e-3, 1 - 1e-3)
    estimate, _ = ais_log_partition(rbm, base_visible_bias=np.log(p / (1 - p)), n_runs=100,
                                    n_temperatures=3000)
    exact = exact_log_partition(rbm)
    assert abs(estimate - exact) < 0.1


def test_annealing_schedule_rises_from_zero_to_one_densest_near_one():
    betas = annealing_schedule(14_500)
    assert betas[0] == 0.0 and betas[-1] == 1.0 and np.all(np.diff(betas) > 0)
    assert len(betas) == 14_501
    assert np.diff(betas)[-1] < np.diff(betas)[0]


@pytest.mark.parametrize("n", [1, 2, 3, 10, 50, 100, 1000, 3000, 14_499])
def test_annealing_schedule_takes_exactly_the_steps_asked_for(n):
    # each share rounded alone gave 3,001 steps for 3,000 and 101 for 100
    betas = annealing_schedule(n)
    assert len(betas) == n + 1 and betas[0] == 0.0 and betas[-1] == 1.0
    assert np.all(np.diff(betas) > 0)


def test_ais_refuses_an_unfitted_model_and_a_lone_weight_matrix():
    with pytest.raises(dlcore.NotFittedError, match="not fitted"):   # issue 10: was RuntimeError
        ais_log_partition(BernoulliRBM())
    with pytest.raises(ValueError, match="needs both biases"):
        ais_log_partition(np.zeros((4, 3)))


# -- defaults, result, progress ----------------------------------------------------------------
def small_trained_rbm(random_state, n_visible=14):
    prototypes = (random_state.random((4, n_visible)) < 0.5).astype(np.float32)
    X = np.abs(prototypes[np.arange(400) % 4]
               - (random_state.random((400, n_visible)) < 0.05)).astype(np.float32)
    rbm = BernoulliRBM(n_hidden=10, epochs=20, batch_size=10, learning_rate=0.1,
                       backend="reference").fit(X)
    return rbm, X


def test_the_defaults_agree_with_exact_log_z_within_their_stated_accuracy(random_state):
    """docs/rbm.md states ~0.1-0.2 nats against exact enumeration with data=X."""
    rbm, X = small_trained_rbm(random_state)
    estimate = ais_log_partition(rbm, data=X)
    assert abs(estimate.log_z - exact_log_partition(rbm)) < 0.15
    assert 0 < estimate.standard_error < 0.15


def test_the_result_unpacks_as_before_and_names_its_fields(random_state):
    W = random_state.normal(0, 0.5, (8, 4))
    b, c = random_state.normal(0, 1, 8), random_state.normal(0, 1, 4)
    result = ais_log_partition(W, b, c, n_runs=10, n_temperatures=50)
    log_z, standard_error = result
    assert isinstance(result, AISEstimate)
    assert (result.log_z, result.standard_error) == (log_z, standard_error)


def test_data_gives_the_log_odds_base_model(random_state):
    rbm, X = small_trained_rbm(random_state)
    p = np.clip(X.mean(axis=0), 1e-3, 1 - 1e-3)
    by_hand = ais_log_partition(rbm, base_visible_bias=np.log(p / (1 - p)), n_temperatures=100)
    assert ais_log_partition(rbm, data=X, n_temperatures=100) == pytest.approx(by_hand)


def test_bad_base_models_are_refused(random_state):
    W = random_state.normal(0, 0.5, (8, 4))
    b, c = np.zeros(8), np.zeros(4)
    with pytest.raises(ValueError, match="base_visible_bias must be 8 finite numbers"):
        ais_log_partition(W, b, c, base_visible_bias=np.zeros(7))
    with pytest.raises(ValueError, match=r"data must be \(n, 8\) rows"):
        ais_log_partition(W, b, c, data=np.zeros((5, 9)))
    with pytest.raises(ValueError, match="not both"):
        ais_log_partition(W, b, c, base_visible_bias=b, data=np.zeros((5, 8)))


def test_progress_reaches_the_total_and_verbose_prints_to_stderr(random_state, capsys):
    W = random_state.normal(0, 0.5, (8, 4))
    b, c = random_state.normal(0, 1, 8), random_state.normal(0, 1, 4)
    calls = []
    ais_log_partition(W, b, c, n_runs=10, n_temperatures=500, verbose=True,
                      progress=lambda done, total: calls.append((done, total)))
    assert 50 <= len(calls) <= 101 and calls[-1] == (500, 500)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    captured = capsys.readouterr()
    assert captured.out == "" and "AIS: 100% (500/500 temperatures" in captured.err


@pytest.mark.slow
def test_the_defaults_take_seconds_on_a_784_500_rbm(random_state):
    """CPU time, not wall-clock time (docs/rbm.md: about 4 s measured); the bound is
    loose for slower machines, but far below the 14,500-temperature schedule's minute."""
    import time
    W = random_state.normal(0, 0.05, (784, 500))
    b, c = random_state.normal(-1, 1, 784), random_state.normal(0, 1, 500)
    started = time.process_time()
    log_z, standard_error = ais_log_partition(W, b, c)
    assert time.process_time() - started < 15
    assert np.isfinite(log_z) and 0 < standard_error < 1
