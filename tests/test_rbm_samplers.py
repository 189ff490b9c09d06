"""The RBM samplers (dlcore/rbm/chains.py): PCD with n_chains, fast PCD, parallel tempering,
rbm.sample, held to the exact distribution of RBMs small enough to enumerate.

Total-variation bound. N independent samples of a distribution p over S states give an
empirical distribution q with E[TV(p, q)] = 1/2 sum_x E|q_x - p_x| <= 1/2 sum_x sqrt(p_x / N)
<= 1/2 sqrt(S / N) (Cauchy-Schwarz), and TV changes by at most 1/N when one sample changes, so
McDiarmid's inequality gives P(TV > E[TV] + t) <= exp(-2 N t^2). With t = sqrt(log(1e6) / (2 N))
a correct sampler fails :func:`tv_bound` once in a million runs; every sample here is the last
state of its own chain, so the N samples are independent.
"""
import itertools
import math

import numpy as np
import pytest

import dlcore
from conftest import requires_cuda
from dlcore.backend import get_backend, rng
from dlcore.rbm import chains, model
from dlcore.rbm.monitors import average_log_likelihood

VISIBLE_STATES = np.array(list(itertools.product([0, 1], repeat=6)), dtype=np.float32)
HIDDEN_STATES = np.array(list(itertools.product([0, 1], repeat=4)), dtype=np.float32)


def tv_bound(n_states, n_samples):
    """E[TV] <= sqrt(S / N) / 2, plus the McDiarmid deviation at probability 1e-6."""
    return 0.5 * math.sqrt(n_states / n_samples) + math.sqrt(math.log(1e6) / (2 * n_samples))


def two_mode_rbm(scale, backend="reference"):
    """A 6 x 4 RBM with two groups of three visible units, each group driven by two hidden
    units and inhibiting the other: ``scale`` 3 makes its two modes far apart (plain Gibbs
    chains stay in the mode they start in)."""
    start = np.array([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]], dtype=np.float32)
    rbm = dlcore.BernoulliRBM(n_hidden=4, epochs=0, seed=1, backend=backend).fit(start)
    sign = np.where(np.arange(6)[:, None] // 3 == np.arange(4)[None, :] // 2, 1.0, -1.0)
    noise = rng.normal(6, 4, 9, rng.STREAM_INIT, scale=0.3)
    rbm.W = (scale * sign + noise).astype(np.float32)
    rbm.visible_bias = (-scale / 2 + np.array([0.6, 0, 0, 0, 0, 0])).astype(np.float32)
    rbm.hidden_bias = np.full(4, -1.5 * scale, dtype=np.float32)
    return rbm


def exact_distribution(free_energy, states, rbm):
    parameters = [np.float64(a) for a in (rbm.W, rbm.visible_bias, rbm.hidden_bias)]
    F = free_energy(states.astype(np.float64), *parameters)
    return np.exp(-F - np.logaddexp.reduce(-F))


def total_variation(samples, p):
    """TV between the empirical distribution of binary rows and p over their 2^n states."""
    width = samples.shape[1]
    index = (samples.astype(np.int64) << np.arange(width - 1, -1, -1)).sum(axis=1)
    return 0.5 * np.abs(np.bincount(index, minlength=len(p)) / len(samples) - p).sum()


# -- drawing from the model -------------------------------------------------------------------
@pytest.mark.parametrize("sampler, scale, n_samples", [("gibbs", 1.0, 20000), ("pt", 3.0, 5000)])
def test_samples_follow_the_exact_distribution(sampler, scale, n_samples):
    rbm = two_mode_rbm(scale, backend="cpu")
    rbm.set_params(n_temperatures=5)
    samples = rbm.sample(n_samples, steps=100, sampler=sampler, seed=4)
    p = exact_distribution(model.free_energy, VISIBLE_STATES, rbm)
    assert total_variation(samples, p) < tv_bound(64, n_samples)


def test_gibbs_chains_fail_the_bound_where_tempering_passes():
    """The test above can fail: plain Gibbs chains on the far-apart modes of scale 3 keep the
    proportions of their random starts, not the model's."""
    rbm = two_mode_rbm(3.0, backend="cpu")
    samples = rbm.sample(20000, steps=100, sampler="gibbs", seed=4)
    p = exact_distribution(model.free_energy, VISIBLE_STATES, rbm)
    assert total_variation(samples, p) > tv_bound(64, 20000)


def test_a_single_gibbs_step_is_far_from_the_model():
    rbm = two_mode_rbm(1.0)
    p = exact_distribution(model.free_energy, VISIBLE_STATES, rbm)
    assert total_variation(rbm.sample(20000, steps=1, seed=4), p) > 2 * tv_bound(64, 20000)


# -- the training chains ----------------------------------------------------------------------
@pytest.mark.parametrize("sampler, scale, n_chains, options", [
    ("pcd", 1.0, 10000, {}),
    ("fpcd", 1.0, 10000, {"fast_learning_rate": 0.01}),
    ("pt", 3.0, 5000, {"n_temperatures": 5}),
])
def test_training_chains_follow_the_exact_distribution(sampler, scale, n_chains, options):
    """With a learning rate too small to move float32 weights, the persistent chains are
    Markov chains of the fixed model: after 100 steps their hidden states follow the exact
    marginal p(h) ∝ exp(-F(h)). Fast PCD sees data drawn from the model, so its fast weights
    only fluctuate around zero."""
    rbm = two_mode_rbm(scale, backend="cpu")
    p_visible = exact_distribution(model.free_energy, VISIBLE_STATES, rbm)
    data = VISIBLE_STATES[np.random.default_rng(0).choice(64, size=100, p=p_visible)]
    rbm.set_params(sampler=sampler, learning_rate=1e-30, momentum=0.0, weight_decay=0.0,
                   n_chains=n_chains, batch_size=100, cd_k=10, **options)
    W = rbm.W.copy()
    for _ in range(10):
        rbm.partial_fit(data)
    np.testing.assert_array_equal(rbm.W, W)
    hidden = rbm.get_state()["training"]["persistent_chain"][:n_chains]
    p_hidden = exact_distribution(model.free_energy_of_hidden, HIDDEN_STATES, rbm)
    assert total_variation(hidden, p_hidden) < tv_bound(16, n_chains)


def prototype_data(n=240):
    prototypes = np.array([[1, 1, 1, 0, 0, 0, 1, 0], [0, 0, 1, 1, 1, 0, 0, 1],
                           [1, 0, 0, 0, 1, 1, 1, 1]], dtype=np.float32)
    noise = rng.uniform(n, 8, 0, rng.STREAM_SPLIT) < 0.05
    return np.abs(prototypes[np.arange(n) % 3] - noise).astype(np.float32)


@pytest.mark.parametrize("sampler, options", [
    ("pcd", {"n_chains": 50}), ("fpcd", {"n_chains": 50}),
    ("pt", {"n_chains": 20, "n_temperatures": 4})])
def test_training_with_each_sampler_raises_the_exact_log_likelihood(sampler, options):
    """(With few chains and a large learning rate PCD oscillates, Tieleman 2008: 50 chains
    and eps = 0.05 climb steadily, measured 1.9 to 2.2 nats here.)"""
    X = prototype_data()
    rbm = dlcore.BernoulliRBM(n_hidden=4, batch_size=10, epochs=0, learning_rate=0.05,
                              sampler=sampler, seed=3, backend="cpu", **options).fit(X)
    before = average_log_likelihood(X, rbm.W, rbm.visible_bias, rbm.hidden_bias)
    for _ in range(30):
        rbm.partial_fit(X)
    after = average_log_likelihood(X, rbm.W, rbm.visible_bias, rbm.hidden_bias)
    assert after > before + 1.0, (before, after)
    assert after > -8 * math.log(2) + 1.0


# -- kernels held to the reference ------------------------------------------------------------
SAMPLER_OPTIONS = [{"sampler": "pcd", "n_chains": 7, "cd_k": 2},
                   {"sampler": "fpcd", "n_chains": 13, "fast_decay": 0.9},
                   {"sampler": "pt", "n_chains": 3, "temperatures": [1, 1.5, 3]}]


CUDA_SLOW = pytest.param("cuda", marks=[requires_cuda, pytest.mark.slow])   # the simulator


@pytest.mark.parametrize("backend_name", ["cpu", CUDA_SLOW])
@pytest.mark.parametrize("options", SAMPLER_OPTIONS, ids=["pcd", "fpcd", "pt"])
def test_kernel_backends_train_like_the_reference(backend_name, options):
    X = prototype_data(n=30)
    common = dict(n_hidden=6, epochs=1, batch_size=10, seed=7, **options)
    if backend_name == "cuda":
        X = X[:20]   # two updates: the simulator runs every thread in Python
    expected = dlcore.BernoulliRBM(backend="reference", **common).fit(X)
    got = dlcore.BernoulliRBM(backend=backend_name, **common).fit(X)
    for name in ("W", "visible_bias", "hidden_bias"):
        np.testing.assert_allclose(getattr(got, name), getattr(expected, name), atol=2e-5)
    for name in ("persistent_chain", "fast_W"):
        want = expected.get_state()["training"].get(name)
        if want is not None:
            np.testing.assert_allclose(got.get_state()["training"][name], want, atol=2e-5)


@pytest.mark.parametrize("backend_name", ["cpu", CUDA_SLOW])
@pytest.mark.parametrize("sampler", ["gibbs", "pt"])
def test_samples_are_the_same_on_every_backend(backend_name, sampler):
    rbm = two_mode_rbm(1.0)
    rbm.set_params(n_temperatures=3)
    expected = rbm.sample(12, steps=3, sampler=sampler, seed=11)
    rbm.set_params(backend=backend_name)
    np.testing.assert_array_equal(rbm.sample(12, steps=3, sampler=sampler, seed=11), expected)


@pytest.mark.parametrize("backend_name", ["cpu", pytest.param("cuda", marks=requires_cuda)])
def test_row_dot_kernel_matches_its_reference(backend_name, random_state):
    a = random_state.normal(size=(9, 13)).astype(np.float32)
    b = (random_state.random((9, 13)) < 0.5).astype(np.float32)
    expected = np.empty(9)
    chains.row_dot(get_backend("reference"), a, b, expected)
    backend = get_backend(backend_name)
    out = backend.empty((9,), dtype=np.float64)
    chains.row_dot(backend, backend.asarray(a), backend.asarray(b), out)
    np.testing.assert_allclose(backend.to_numpy(out), expected, rtol=1e-12)
    np.testing.assert_allclose(expected, (a.astype(np.float64) * b).sum(axis=1), rtol=1e-12)


def test_swaps_follow_the_metropolis_ratio():
    betas = np.array([1.0, 0.5, 0.25])
    # rows: rungs, columns: three ladders. Pair (0, 1) has ratio exp(0.5 (I_1 - I_0)):
    # exp(0.5) > 1 for ladder 0 (a sure swap), exp(-1) = 0.37 for ladders 1 and 2, with a
    # uniform below it (0.30: swap) and above it (0.40: none)
    interaction = np.array([[1.0, 3.0, 3.0], [2.0, 1.0, 1.0], [2.0, 1.0, 0.0]])
    uniforms = np.array([[0.99, 0.99], [0.30, 0.99], [0.40, 0.99]])
    source, accepted = chains.swap_replicas(interaction, betas, uniforms)
    # pair (1, 2) sees the states pair (0, 1) left: ratio exp(0.25 (2 - 1)) > 1 for ladder 0
    # (swap), exp(0.25 (1 - 3)) = 0.61 < 0.99 for ladder 1, exp(0.25 (0 - 1)) = 0.78 < 0.99
    # for ladder 2 (no swaps)
    np.testing.assert_array_equal(source.reshape(3, 3), [[3, 4, 2], [6, 1, 5], [0, 7, 8]])
    np.testing.assert_array_equal(accepted, [2, 1])


# -- hyperparameters, state, files ------------------------------------------------------------
@pytest.mark.parametrize("options, message", [
    ({"sampler": "cd", "persistent": True}, "disagree"),
    ({"sampler": "gibbs"}, "sampler must be one of"),
    ({"n_chains": 5}, "n_chains is the number of persistent chains"),
    ({"sampler": "pcd", "n_chains": 0}, "n_chains"),
    ({"sampler": "pt", "temperatures": [2, 1]}, "temperatures must be"),
    ({"sampler": "pt", "n_temperatures": 1}, "n_temperatures"),
    ({"sampler": "fpcd", "fast_decay": 1.0}, "fast_decay"),
])
def test_bad_sampler_settings_say_what_to_fix(options, message):
    with pytest.raises(ValueError, match=message):
        dlcore.BernoulliRBM(epochs=1, **options).fit(prototype_data(n=20))


@pytest.mark.parametrize("ladder", [{"n_temperatures": 1001},
                                    {"temperatures": list(range(1, 1002))}])
def test_a_ladder_longer_than_a_model_file_holds_is_refused_before_training(tmp_path, ladder):
    # an RBM of 1,001 rungs trained (`rbm train --sampler pt --temperatures 1001` too) and was
    # saved to a file that dlcore.load refused ("'n_temperatures' = 1001; expected an integer
    # in [2, 1000]"): its training lost; the 1,000 rungs a file holds still save and load
    X = prototype_data(n=20)
    with pytest.raises(ValueError, match="from 2 to 1000"):
        dlcore.BernoulliRBM(n_hidden=2, epochs=1, batch_size=2, sampler="pt",
                            backend="reference", **ladder).fit(X)
    rbm = dlcore.BernoulliRBM(n_hidden=2, epochs=1, batch_size=2, sampler="pt", n_chains=1,
                              n_temperatures=1000, backend="reference").fit(X)
    dlcore.save(rbm, tmp_path / "rbm.h5")
    assert dlcore.load(tmp_path / "rbm.h5").n_temperatures == 1000


def test_persistent_true_is_the_spelling_of_pcd():
    X = prototype_data(n=40)
    common = dict(n_hidden=4, epochs=2, batch_size=10, seed=2, backend="reference")
    old = dlcore.BernoulliRBM(persistent=True, **common).fit(X)
    new = dlcore.BernoulliRBM(sampler="pcd", **common).fit(X)
    np.testing.assert_array_equal(old.W, new.W)
    cd = dlcore.BernoulliRBM(**common).fit(X)
    assert not np.array_equal(cd.W, new.W)


def test_chains_do_not_depend_on_the_batch_size_and_history_has_swap_rates():
    X = prototype_data(n=40)
    rbm = dlcore.BernoulliRBM(n_hidden=4, epochs=2, batch_size=10, sampler="pt", n_chains=7,
                              n_temperatures=3, seed=2, backend="reference").fit(X)
    assert rbm.get_state()["training"]["persistent_chain"].shape == (21, 4)
    rates = [rbm.history[f"swap_acceptance_{k}"] for k in (1, 2)]
    assert all(len(r) == 2 and all(0 <= x <= 1 for x in r) for r in rates)
    np.testing.assert_allclose(rbm.history["swap_acceptance"], np.mean(rates, axis=0))


@pytest.mark.parametrize("options", SAMPLER_OPTIONS, ids=["pcd", "fpcd", "pt"])
def test_save_load_resume_continues_the_chains_exactly(tmp_path, options):
    X = prototype_data(n=40)
    common = dict(n_hidden=4, epochs=4, batch_size=10, seed=5, backend="cpu", **options)
    whole = dlcore.BernoulliRBM(**common).fit(X)
    half = dlcore.BernoulliRBM(**{**common, "epochs": 2}).fit(X)
    dlcore.save(half, tmp_path / "half.h5")
    resumed = dlcore.load(tmp_path / "half.h5")
    resumed.set_params(epochs=4)
    resumed.resume(X)
    np.testing.assert_array_equal(resumed.W, whole.W)
    for name, value in whole.get_state()["training"].items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(resumed.get_state()["training"][name], value)
    assert resumed.history.get("swap_acceptance") == whole.history.get("swap_acceptance")


@pytest.mark.parametrize("options", [
    {"sampler": "pt", "n_chains": 6, "n_temperatures": 3},
    {"sampler": "fpcd", "n_chains": 9, "learn_sigma": True},
], ids=["pt", "fpcd-learn-sigma"])
def test_gaussian_rbm_trains_with_the_samplers_on_every_backend(options):
    X = rng.normal(30, 5, 3, rng.STREAM_SPLIT)
    common = dict(n_hidden=4, epochs=1, batch_size=10, seed=4, **options)
    expected = dlcore.GaussianBernoulliRBM(backend="reference", **common).fit(X)
    got = dlcore.GaussianBernoulliRBM(backend="cpu", **common).fit(X)
    for name in ("W", "visible_bias", "hidden_bias", "visible_sigma"):
        np.testing.assert_allclose(getattr(got, name), getattr(expected, name), atol=2e-5)
    assert not np.allclose(expected.W, dlcore.GaussianBernoulliRBM(
        backend="reference", **{**common, "epochs": 0}).fit(X).W)
    samples = got.sample(8, steps=3, seed=1)
    assert samples.shape == (8, 5) and np.isfinite(samples).all()


def test_sample_says_what_to_fix():
    rbm = two_mode_rbm(1.0)
    with pytest.raises(ValueError, match="'gibbs' or 'pt'"):
        rbm.sample(4, steps=2, sampler="fpcd")
    with pytest.raises(ValueError, match="steps"):
        rbm.sample(4, steps=0)
    first, second = rbm.sample(30, steps=3), rbm.sample(30, steps=3)
    assert not np.array_equal(first, second)   # successive calls continue the sequence


@pytest.mark.parametrize("call, name", [
    (lambda rbm, V: rbm.sample(4, steps=2, probabilities="no"), "probabilities"),
    (lambda rbm, V: rbm.gibbs(V, steps=2, probabilities="no"), "probabilities"),
    (lambda rbm, V: rbm.reconstruct(V, sample_hidden="no"), "sample_hidden"),
    (lambda rbm, V: rbm.transform(V, sample="no"), "sample"),
])
def test_a_flag_of_the_sampling_calls_is_true_or_false_not_a_strings_truth(call, name):
    # probabilities="no" returned probabilities: any string was True, without a word
    rbm = two_mode_rbm(1.0)
    V = np.zeros((4, rbm.W.shape[0]), np.float32)
    calls = rbm.sample_calls_
    with pytest.raises(ValueError, match=f"^{name} must be True or False, got 'no'"):
        call(rbm, V)
    assert rbm.sample_calls_ == calls   # a refused call draws nothing


# -- the DBN's layers and the commands ----------------------------------------------------------
def test_a_dbn_trains_its_rbms_with_a_sampler_and_samples_by_tempering():
    X = (rng.uniform(40, 16, 2, rng.STREAM_SPLIT) < 0.3).astype(np.float32)
    dbn = dlcore.DBN(layers=[16, 6, 4], epochs=1, batch_size=10, sampler=["fpcd", "pt"],
                     rbm={"n_chains": 5, "n_temperatures": 3}, backend="reference").fit(X)
    assert [rbm.sampler for rbm in dbn.rbms_] == ["fpcd", "pt"]
    assert dbn.rbms_[1].get_state()["training"]["persistent_chain"].shape == (15, 4)
    assert "swap_acceptance" in dbn.rbms_[1].history
    samples = dbn.sample(6, gibbs_steps=4, sampler="pt")
    assert samples.shape == (6, 16) and ((samples >= 0) & (samples <= 1)).all()
    with pytest.raises(ValueError, match="sampler must be 'gibbs' or 'pt'"):
        dbn.sample(2, gibbs_steps=2, sampler="fpcd")


def test_rbm_sample_command_takes_a_sampler(tmp_path):
    from click.testing import CliRunner

    from dlcore.cli import main
    X = (rng.uniform(40, 16, 2, rng.STREAM_SPLIT) < 0.3).astype(np.float32)
    rbm = dlcore.BernoulliRBM(n_hidden=5, epochs=1, batch_size=10, sampler="pt", n_chains=4,
                              n_temperatures=3, backend="reference").fit(X)
    dlcore.save(rbm, tmp_path / "model.h5")
    pictures = []
    for run in range(2):
        out = tmp_path / f"samples{run}.png"
        result = CliRunner().invoke(main, ["rbm", "sample", str(tmp_path / "model.h5"), "--n",
                                           "4", "--steps", "3", "--sampler", "pt", "--seed", "3",
                                           "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert "parallel tempering" in result.output
        pictures.append(out.read_bytes())
    assert pictures[0] == pictures[1]   # --seed: the same samples
    bad = CliRunner().invoke(main, ["rbm", "sample", str(tmp_path / "model.h5"), "--sampler",
                                    "fpcd"])
    assert bad.exit_code == 2


def copying_rbm_and_growing_chunks():
    """A row-aligned PCD RBM (a chain per batch row, batch_size 4) whose weights copy each
    visible unit to a hidden one and back, so that each chain holds the pattern it started
    at, and two partial_fit chunks: the first of 3 rows, the later of 4 equal rows."""
    first = np.array([[1, 0, 1, 0], [0, 1, 1, 0], [1, 1, 0, 0]], dtype=np.float32)
    later = np.tile(np.array([[0, 1, 0, 1]], dtype=np.float32), (4, 1))
    rbm = dlcore.BernoulliRBM(n_hidden=4, batch_size=4, sampler="pcd", learning_rate=1e-6,
                              momentum=0.0, seed=3, backend="reference")
    rbm.initialize(first)
    rbm.W = 20 * np.eye(4, dtype=np.float32)
    rbm.visible_bias = rbm.hidden_bias = np.full(4, -10.0, dtype=np.float32)
    return rbm, first, later


def test_row_aligned_chains_beyond_a_short_first_chunk_start_at_their_rows_data():
    """PCD with a chain per batch row (n_chains None) fed by partial_fit chunks that grow: the
    first chunk (3 rows, batch_size 4) starts chains 0-2 at its data; chain 3 used to start
    at zeros when the next chunk reached it. Its fantasy particle starts at its row's data as
    the others did: with weights that copy each visible unit to a hidden one and back, each
    chain holds the pattern it started at (zeros: the all-off pattern, which stays all off)."""
    rbm, first, later = copying_rbm_and_growing_chunks()
    rbm.partial_fit(first)
    started = rbm._training["persistent_chain"].copy()
    assert sorted(map(tuple, started[:3])) == sorted(map(tuple, first))
    rbm.partial_fit(later)   # chains 0-2 go on from where they were
    chain = rbm._training["persistent_chain"]
    np.testing.assert_array_equal(chain[:3], started[:3])
    np.testing.assert_array_equal(chain[3], later[0])


def test_a_file_saved_between_chunks_starts_the_chains_no_batch_reached_at_their_data(
        tmp_path):
    """The test above, saved and loaded between the chunks: which chains had started was
    kept in memory only, so the loaded model counted chain 3 started and ran it from zeros
    (the all-off pattern) instead of the row the later chunk brings it."""
    rbm, first, later = copying_rbm_and_growing_chunks()
    rbm.partial_fit(first)
    dlcore.save(rbm, tmp_path / "rbm.h5")
    loaded = dlcore.load(tmp_path / "rbm.h5")
    loaded.partial_fit(later)
    np.testing.assert_array_equal(loaded._training["persistent_chain"][3], later[0])
    rbm.partial_fit(later)   # bit for bit the model that was not saved
    np.testing.assert_array_equal(loaded._training["persistent_chain"],
                                  rbm._training["persistent_chain"])
    np.testing.assert_array_equal(loaded.W, rbm.W)
    dlcore.save(loaded, tmp_path / "all_started.h5")   # every chain started: no flags kept
    import h5py
    with h5py.File(tmp_path / "rbm.h5", "r") as saved, \
            h5py.File(tmp_path / "all_started.h5", "r") as done:
        assert saved["training/persistent_chain_unstarted"][()].tolist() == [0, 0, 0, 1]
        assert "persistent_chain_unstarted" not in done["training"]


def test_a_file_whose_chain_flags_are_not_0_or_1_is_refused_for_its_values_not_its_shape(
        tmp_path):
    # "has shape (4,) or values other than 0 and 1; expected (4,) flags": the shape was right,
    # and the line left the reader to find which of the two was wrong
    import h5py
    rbm = dlcore.BernoulliRBM(n_hidden=3, batch_size=4, sampler="pcd", seed=0,
                              backend="reference")
    rbm.partial_fit(np.ones((2, 5), dtype=np.float32))
    dlcore.save(rbm, tmp_path / "rbm.h5")
    with h5py.File(tmp_path / "rbm.h5", "a") as handle:
        handle["training/persistent_chain_unstarted"][...] = [0, 0, 2, 1]
    with pytest.raises(dlcore.ModelFileError) as refused:
        dlcore.load(tmp_path / "rbm.h5")
    said = str(refused.value)
    assert "'training/persistent_chain_unstarted' holds values other than 0 and 1" in said
    assert "shape" not in said and "\n" not in said


@pytest.mark.parametrize("train", ["fit", "partial_fit"])
def test_chains_past_what_a_model_file_holds_are_refused_before_training(train):
    # sampler="pt", n_temperatures=1000, batch_size=200 (200,000 chains of 4 + 784 units)
    # trained in full and then dlcore.save refused the model, its training lost
    X = np.zeros((3, 784), dtype=np.float32)
    rbm = dlcore.BernoulliRBM(n_hidden=4, epochs=0, batch_size=200, sampler="pt",
                              n_temperatures=1000, backend="reference")
    with pytest.raises(ValueError) as refused:
        getattr(rbm, train)(X)
    assert str(refused.value) == (
        "the persistent chains would hold 200,000 x (4 hidden + 784 visible) states, more than "
        "the 134,217,728 a model file holds, so the trained model could not be saved; give a "
        "smaller n_chains (or batch_size, with n_chains=None) or n_temperatures (or "
        "temperatures)")
    assert not hasattr(rbm, "W")
    # 170,000 chains of 788 units, 133,960,000 states, fit in a file: left untouched
    rbm.set_params(batch_size=170)
    assert rbm.initialize(X) is rbm and rbm._check_saveable_chains(784) is None
