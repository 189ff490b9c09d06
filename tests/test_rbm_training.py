"""CD-k and PCD training. Oracles: the lecture's update computed by hand, exact likelihoods of
RBMs small enough to enumerate, and the reference backend."""
import math

import numpy as np
import pytest

from conftest import requires_cuda
from dlcore import BernoulliRBM
from dlcore.backend import get_backend, rng
from dlcore.rbm import average_log_likelihood, exact_log_partition
from dlcore.rbm.trainer import CDSettings, ContrastiveDivergence

ALL_BACKENDS = ["reference", "cpu", pytest.param("cuda", marks=requires_cuda)]


def sigm(x):
    return 1.0 / (1.0 + math.exp(-x))


def settings(**changes):
    values = dict(learning_rate=0.5, cd_k=1, persistent=False, momentum=0.0, weight_decay=0.0,
                  sparsity_target=None, sparsity_cost=0.0, sparsity_decay=0.9,
                  sample_visible=True, batch_size=1, seed=1234)
    values.update(changes)
    return CDSettings(**values)


def fresh_state(n_visible, n_hidden):
    return {"velocity_W": np.zeros((n_visible, n_hidden), np.float32),
            "velocity_visible_bias": np.zeros(n_visible, np.float32),
            "velocity_hidden_bias": np.zeros(n_hidden, np.float32),
            "sparsity_mean": np.zeros(n_hidden, np.float32), "persistent_chain": None}


@pytest.mark.parametrize("backend_name", ALL_BACKENDS)
def test_one_cd1_step_on_a_3x2_rbm_is_the_lecture_update_by_hand(backend_name):
    W = [[0.5, -1.0], [0.25, 0.75], [-0.5, 0.1]]            # W[j][i]: visible j, hidden i
    b, c, x1, eps = [0.1, -0.2, 0.3], [0.05, -0.15], [1.0, 0.0, 1.0], 0.5
    seed, update = 1234, 0
    u_hidden = rng.uniform(1, 2, seed, rng.STREAM_GIBBS, update)[0]      # the fixed uniforms
    u_visible = rng.uniform(1, 3, seed, rng.STREAM_GIBBS + 1, update)[0]

    # for all hidden units i: Q(h1i = 1 | x1) = sigm(c_i + sum_j W_ij x1j); sample h1i
    q1 = [sigm(c[i] + sum(W[j][i] * x1[j] for j in range(3))) for i in range(2)]
    h1 = [1.0 if u_hidden[i] < q1[i] else 0.0 for i in range(2)]
    # for all visible units j: P(x2j = 1 | h1) = sigm(b_j + sum_i W_ij h1i); sample x2j
    p2 = [sigm(b[j] + sum(W[j][i] * h1[i] for i in range(2))) for j in range(3)]
    x2 = [1.0 if u_visible[j] < p2[j] else 0.0 for j in range(3)]
    # for all hidden units i: Q(h2i = 1 | x2)
    q2 = [sigm(c[i] + sum(W[j][i] * x2[j] for j in range(3))) for i in range(2)]
    # W <- W + eps (h1 x1' - Q(h2. = 1 | x2) x2'); b <- b + eps (x1 - x2); c <- c + eps (h1 - q2)
    W_new = [[W[j][i] + eps * (h1[i] * x1[j] - q2[i] * x2[j]) for i in range(2)] for j in range(3)]
    b_new = [b[j] + eps * (x1[j] - x2[j]) for j in range(3)]
    c_new = [c[i] + eps * (h1[i] - q2[i]) for i in range(2)]

    backend = get_backend(backend_name)
    parameters = {"W": np.array(W, np.float32), "visible_bias": np.array(b, np.float32),
                  "hidden_bias": np.array(c, np.float32)}
    trainer = ContrastiveDivergence(backend, parameters, fresh_state(3, 2), settings(seed=seed))
    with backend.compute():
        trainer.step(backend.asarray(np.array([x1], np.float32)), update)
    learned, _ = trainer.download()
    np.testing.assert_allclose(learned["W"], W_new, atol=1e-6)
    np.testing.assert_allclose(learned["visible_bias"], b_new, atol=1e-6)
    np.testing.assert_allclose(learned["hidden_bias"], c_new, atol=1e-6)


def prototype_data(n=240, n_visible=8, seed=0):
    """Three binary prototypes with 5 % of bits flipped: a distribution an RBM can learn."""
    prototypes = np.array([[1, 1, 1, 0, 0, 0, 1, 0], [0, 0, 1, 1, 1, 0, 0, 1],
                           [1, 0, 0, 0, 1, 1, 1, 1]], dtype=np.float32)[:, :n_visible]
    noise = rng.uniform(n, n_visible, seed, rng.STREAM_SPLIT) < 0.05
    rows = np.arange(n) % len(prototypes)
    return np.abs(prototypes[rows] - noise).astype(np.float32)


def exact_ll(rbm, X):
    return average_log_likelihood(X, rbm.W, rbm.visible_bias, rbm.hidden_bias)


@pytest.mark.parametrize("persistent", [False, True], ids=["CD-1", "PCD"])
def test_training_raises_the_exact_log_likelihood_of_the_data(persistent):
    X = prototype_data()
    rbm = BernoulliRBM(n_hidden=4, learning_rate=0.1, batch_size=10, epochs=0,
                       persistent=persistent, seed=3, backend="cpu").fit(X)
    before = exact_ll(rbm, X)
    for _ in range(30):
        rbm.partial_fit(X)
    after = exact_ll(rbm, X)
    uniform_model = -8 * math.log(2)
    assert after > before + 1.0, (before, after)
    assert after > uniform_model + 1.0


def test_cd_k_with_several_steps_also_learns():
    X = prototype_data()
    rbm = BernoulliRBM(n_hidden=4, learning_rate=0.1, batch_size=10, epochs=30, cd_k=3,
                       seed=3, backend="cpu").fit(X)
    initial = BernoulliRBM(n_hidden=4, epochs=0, seed=3, backend="cpu").fit(X)
    assert exact_ll(rbm, X) > exact_ll(initial, X) + 1.0


def test_training_twice_with_one_seed_gives_identical_weights_on_cpu():
    X = prototype_data(n=200)
    runs = [BernoulliRBM(n_hidden=5, epochs=3, batch_size=7, seed=42, backend="cpu",
                         persistent=True).fit(X) for _ in range(2)]
    np.testing.assert_array_equal(runs[0].W, runs[1].W)
    np.testing.assert_array_equal(runs[0].hidden_bias, runs[1].hidden_bias)
    different = BernoulliRBM(n_hidden=5, epochs=3, batch_size=7, seed=43, backend="cpu").fit(X)
    assert not np.allclose(different.W, runs[0].W)


@pytest.mark.parametrize("backend_name", ["cpu", pytest.param("cuda", marks=requires_cuda)])
@pytest.mark.parametrize("options", [{}, {"persistent": True, "cd_k": 2},
                                     {"sample_visible": False, "sparsity_target": 0.1,
                                      "momentum": 0.9, "weight_decay": 0.01}])
def test_kernel_backends_train_like_the_reference(backend_name, options):
    X = prototype_data(n=30)
    common = dict(n_hidden=6, epochs=1, batch_size=10, seed=7, **options)
    expected = BernoulliRBM(backend="reference", **common).fit(X)
    got = BernoulliRBM(backend=backend_name, **common).fit(X)
    # three updates: samples coincide unless a probability rounds across its uniform
    np.testing.assert_allclose(got.W, expected.W, atol=2e-5)
    np.testing.assert_allclose(got.visible_bias, expected.visible_bias, atol=2e-5)
    np.testing.assert_allclose(got.hidden_bias, expected.hidden_bias, atol=2e-5)


def test_sparsity_target_pulls_mean_hidden_activation_towards_it():
    X = prototype_data()
    common = dict(n_hidden=8, epochs=20, batch_size=10, seed=1, backend="cpu")
    free = BernoulliRBM(**common).fit(X)
    sparse = BernoulliRBM(sparsity_target=0.05, sparsity_cost=1.0, **common).fit(X)
    assert sparse.transform(X).mean() < free.transform(X).mean() - 0.05
    assert sparse.transform(X).mean() < 0.2


def test_weight_decay_shrinks_the_weights():
    X = prototype_data()
    common = dict(n_hidden=6, epochs=15, batch_size=10, seed=1, backend="cpu")
    plain = BernoulliRBM(weight_decay=0.0, **common).fit(X)
    decayed = BernoulliRBM(weight_decay=0.05, **common).fit(X)
    assert np.abs(decayed.W).sum() < 0.8 * np.abs(plain.W).sum()


def test_history_records_every_epoch_and_the_error_falls():
    X = prototype_data()
    rbm = BernoulliRBM(n_hidden=6, epochs=8, batch_size=10, seed=1, backend="cpu")
    rbm.fit(X, X_valid=prototype_data(n=60, seed=9))
    history = rbm.history
    assert [len(history[k]) for k in ("reconstruction_error", "free_energy_gap", "seconds")] \
        == [8, 8, 8]
    assert history["reconstruction_error"][-1] < history["reconstruction_error"][0]
    assert np.isfinite(history["free_energy_gap"]).all()


def test_progress_callback_sees_every_epoch_end():
    X = prototype_data(n=50)
    calls = []
    BernoulliRBM(n_hidden=3, epochs=2, batch_size=10, backend="cpu").fit(
        X, progress=lambda *arguments: calls.append(arguments))
    ends = [c for c in calls if c[2] == c[3]]
    assert [(c[0], c[1]) for c in ends] == [(1, 2), (2, 2)]
    assert all(0 <= c[4] <= 1 for c in calls)


def test_an_epochs_last_progress_report_comes_after_its_epoch_end():
    # the CLI prints "epoch 2/4" at the last report and saves its checkpoint at the epoch's
    # end: a Ctrl-C after the line must find epoch 2 saved, not epoch 1
    X = prototype_data(n=50)
    events = []
    BernoulliRBM(n_hidden=3, epochs=2, batch_size=10, backend="cpu").fit(
        X, progress=lambda epoch, epochs, done, total, error: events.append(
            ("last report" if done == total else "report", epoch)),
        on_epoch_end=lambda rbm: events.append(("epoch end", rbm.epochs_done_)))
    finished = [event for event in events if event[0] != "report"]
    assert finished == [("epoch end", 1), ("last report", 1),
                        ("epoch end", 2), ("last report", 2)]
    assert events.index(("report", 2)) > events.index(("last report", 1))


def test_exact_log_partition_matches_brute_force_over_both_layers(random_state):
    W = random_state.normal(0, 1, (5, 3))
    b, c = random_state.normal(0, 1, 5), random_state.normal(0, 1, 3)
    states_v = np.array([[(s >> i) & 1 for i in range(5)] for s in range(32)], float)
    states_h = np.array([[(s >> i) & 1 for i in range(3)] for s in range(8)], float)
    energies = -(states_v @ b)[:, None] - (states_h @ c)[None, :] - states_v @ W @ states_h.T
    brute = np.logaddexp.reduce(-energies.ravel())
    assert exact_log_partition(W, b, c) == pytest.approx(brute, rel=1e-12)
    assert exact_log_partition(W.T, c, b) == pytest.approx(brute, rel=1e-12)


def test_exact_log_partition_refuses_more_than_24_units_in_the_smaller_layer():
    with pytest.raises(ValueError, match="at most 24 units"):
        exact_log_partition(np.zeros((30, 25)), np.zeros(30), np.zeros(25))


def test_exact_log_partition_of_a_fitted_rbm_normalises_its_probabilities(random_state):
    X = (random_state.random((60, 6)) < 0.4).astype(np.float32)
    rbm = BernoulliRBM(n_hidden=4, epochs=3, batch_size=10, backend="cpu").fit(X)
    log_z = exact_log_partition(rbm)
    states = np.array([[(s >> i) & 1 for i in range(6)] for s in range(64)], np.float32)
    assert np.exp(-rbm.free_energy(states) - log_z).sum() == pytest.approx(1.0, rel=1e-9)
    assert log_z == exact_log_partition(rbm.W, rbm.visible_bias, rbm.hidden_bias)


def test_exact_log_partition_of_a_gaussian_rbm_is_its_closed_form(random_state):
    from dlcore import GaussianBernoulliRBM
    from dlcore.rbm import gaussian_exact_log_partition
    X = random_state.normal(0, 1, (50, 3)).astype(np.float32)
    rbm = GaussianBernoulliRBM(n_hidden=2, epochs=1, batch_size=10, backend="cpu").fit(X)
    assert exact_log_partition(rbm) == gaussian_exact_log_partition(
        rbm.W, rbm.visible_bias, rbm.hidden_bias, rbm.visible_sigma)


@pytest.mark.parametrize("arguments, message", [
    ((BernoulliRBM(),), "not fitted"),
    ((np.zeros((4, 3)),), "needs both biases"),
    ((np.zeros((4, 3)), np.zeros(3), np.zeros(3)), "do not fit"),
])
def test_exact_log_partition_says_what_is_wrong_with_its_arguments(arguments, message):
    with pytest.raises((ValueError, RuntimeError), match=message):
        exact_log_partition(*arguments)


def test_an_epoch_walks_the_one_mini_batch_iterator_with_its_progress_cadence(monkeypatch):
    import dlcore.rbm.trainer
    from dlcore.batches import mini_batches
    walked = []

    def watched(*arguments, **options):
        for batch in mini_batches(*arguments, **options):
            walked.append(batch)
            yield batch

    monkeypatch.setattr(dlcore.rbm.trainer, "mini_batches", watched)
    backend = get_backend("reference")
    X = prototype_data(n=23)
    parameters = {"W": np.zeros((8, 3), np.float32), "visible_bias": np.zeros(8, np.float32),
                  "hidden_bias": np.zeros(3, np.float32)}
    trainer = ContrastiveDivergence(backend, parameters, fresh_state(8, 3),
                                    settings(batch_size=4))
    reports = []
    order = rng.permutation(23, 1, rng.STREAM_SHUFFLE, 0)
    next_update, _ = trainer.epoch(backend.asarray(X), order, 10,
                                   lambda done, total, error: reports.append((done, total)),
                                   report_every=4)
    assert next_update == 16 and [len(batch.arrays[0]) for batch in walked] == [4] * 5 + [3]
    assert reports == [(4, 6), (6, 6)]
