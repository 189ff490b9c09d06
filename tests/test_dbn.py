"""The DBN: greedy pretraining, conversion to a network, labels, generation, up-down, files.
Oracles: the RBM trained alone on what the option says a layer is fed (the lecture's three
steps written out in NumPy), the RBMs' own transform, hand-made two-class data, the reference
backend, and a save/load round trip."""
import textwrap
import warnings

import h5py
import numpy as np
import pytest

import dlcore
from conftest import ptx_compile_report, requires_cuda
from dlcore import DBN, BernoulliRBM
from dlcore.backend import get_backend, rng
from dlcore.backend.rng import STREAM_PROPAGATE
from dlcore.dbn.stack import layer_options
from dlcore.rbm import model
from dlcore.rbm.units import SoftmaxLabelVisible

KERNEL_BACKENDS = ["cpu", pytest.param("cuda", marks=requires_cuda)]


def binary_data(n=60, width=12, seed=0):
    return (rng.uniform(n, width, seed, rng.STREAM_SPLIT) < 0.3).astype(np.float32)


def two_class_data(n_per_class=150, seed=0):
    """16-pixel images: class 0 lights the left half, class 1 the right half, 10 % of pixels
    flipped."""
    halves = np.zeros((2, 16), np.float32)
    halves[0, :8] = halves[1, 8:] = 1
    labels = np.repeat([0, 1], n_per_class)
    noise = rng.uniform(2 * n_per_class, 16, seed, rng.STREAM_SPLIT) < 0.1
    return np.abs(halves[labels] - noise).astype(np.float32), labels


def brighter_half(images):
    return (images[:, 8:].mean(axis=1) > images[:, :8].mean(axis=1)).astype(int)


def alone(dbn, index, rows, epochs_of_rows=None):
    """RBM ``index`` of ``dbn`` trained on its own, on ``rows`` (or epoch e on rows(e))."""
    rbm = BernoulliRBM(**layer_options(dbn, index))
    if epochs_of_rows is None:
        return rbm.fit(rows)
    epochs = rbm.epochs
    rbm.set_params(epochs=0).fit(epochs_of_rows(0))
    for epoch in range(epochs):
        rbm.partial_fit(epochs_of_rows(epoch))
    return rbm


def test_greedy_pretraining_feeds_each_rbm_the_means_of_the_one_below():
    X = binary_data()
    dbn = DBN(layers=[12, 6, 5, 4], epochs=2, batch_size=10, seed=3,
              backend="reference").fit(X)
    h1 = model.hidden_probability(X, dbn.rbms_[0].W, dbn.rbms_[0].hidden_bias)
    h2 = model.hidden_probability(h1, dbn.rbms_[1].W, dbn.rbms_[1].hidden_bias)
    for index, rows in ((1, h1), (2, h2)):
        expected = alone(dbn, index, rows)
        np.testing.assert_allclose(dbn.rbms_[index].W, expected.W, atol=1e-6)
        np.testing.assert_allclose(dbn.rbms_[index].hidden_bias, expected.hidden_bias, atol=1e-6)


def test_greedy_pretraining_with_samples_feeds_fresh_binary_states_every_epoch():
    X = binary_data()
    dbn = DBN(layers=[12, 6, 5, 4], epochs=2, batch_size=10, seed=3, propagate="sample",
              backend="reference").fit(X)

    def states(rows, rbm, layer, epoch):      # h ~ Q(h | rows): u < sigm(rows W + c)
        probability = model.hidden_probability(rows, rbm.W, rbm.hidden_bias)
        u = rng.uniform(*probability.shape, dbn.seed_, STREAM_PROPAGATE + layer, epoch)
        return (u < probability).astype(np.float32)

    def h1(epoch):
        return states(X, dbn.rbms_[0], 0, epoch)

    def h2(epoch):
        return states(h1(epoch), dbn.rbms_[1], 1, epoch)

    assert set(np.unique(h1(0))) == {0.0, 1.0} and not np.array_equal(h1(0), h1(1))
    for index, rows in ((1, h1), (2, h2)):
        expected = alone(dbn, index, None, epochs_of_rows=rows)
        np.testing.assert_allclose(dbn.rbms_[index].W, expected.W, atol=1e-6)


def test_a_layer_fed_fresh_samples_starts_by_initialize_and_keeps_its_epochs(monkeypatch):
    calls = []
    original = BernoulliRBM.fit

    def fit(self, *arguments, **options):
        calls.append(self.epochs)
        return original(self, *arguments, **options)

    monkeypatch.setattr(BernoulliRBM, "fit", fit)
    dbn = DBN(layers=[12, 6, 5], epochs=[2, 3], batch_size=10, seed=3, propagate="sample",
              backend="reference").fit(binary_data(), X_valid=binary_data(20, seed=1))
    assert calls == [2]                     # RBM 1 by fit; RBM 2 by initialize, then partial_fit
    top = dbn.rbms_[1]
    assert top.epochs == 3 and top.epochs_done_ == 3
    assert top.training_record_ == {"n_samples": 60, "n_features": 6,
                                    "fit": {"epochs": 3, "n_valid": 20}}


def hidden_layers_of(network, X):
    backend = network.backend
    activity = backend.asarray(X)
    for layer in network.layers[:-1]:
        activity = layer.forward(activity)
    return backend.to_numpy(activity)


@pytest.mark.parametrize("options", [{}, {"n_labels": 2}, {"visible": "gaussian"}],
                         ids=["binary", "labelled top", "gaussian first layer"])
def test_to_network_reproduces_transform_in_its_hidden_layers_before_fine_tuning(options):
    X, y = two_class_data(40)
    if options.get("visible") == "gaussian":
        X = (X - X.mean()) / X.std()
    dbn = DBN(layers=[16, 10, 6], epochs=2, batch_size=10, backend="cpu", **options)
    dbn.fit(X, y if options.get("n_labels") else None)
    network = dbn.to_network(n_classes=2)
    assert [type(layer).__name__ for layer in network.layers] == ["Dense"] * 3
    np.testing.assert_allclose(hidden_layers_of(network, X), dbn.transform(X), atol=1e-5)


def test_the_network_fine_tunes_and_predicts_class_probabilities():
    X, y = two_class_data(60)
    network = DBN(layers=[16, 10, 8], epochs=3, batch_size=10, backend="cpu").fit(X) \
        .to_network(n_classes=2)
    network.compile(loss="cross_entropy",
                    optimizer=dlcore.optimizers.SGD(learning_rate=0.1, momentum=0.9))
    network.fit(X, y, epochs=5, batch_size=16, validation_split=0.1, verbose=0)
    probabilities = network.predict(X)
    assert probabilities.shape == (120, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)
    assert (probabilities.argmax(axis=1) == y).mean() > 0.9


@pytest.fixture(scope="module")
def labelled_dbn():
    X, y = two_class_data()
    return DBN(layers=[16, 12, 12], epochs=15, batch_size=10, n_labels=2, seed=1,
               backend="cpu").fit(X, y)


def test_label_clamped_sampling_produces_the_requested_class_more_often_than_chance(
        labelled_dbn):
    for label in (0, 1):
        drawn = brighter_half(labelled_dbn.sample(200, gibbs_steps=100, label=label))
        assert np.mean(drawn == label) > 0.75, (label, np.mean(drawn == label))


def test_free_energy_classification_of_the_top_rbm_separates_two_classes(labelled_dbn):
    X, y = two_class_data(seed=7)
    assert (labelled_dbn.predict(X) == y).mean() > 0.95
    np.testing.assert_allclose(labelled_dbn.predict_proba(X).sum(axis=1), 1)


def test_a_refused_sample_call_leaves_the_next_samples_as_they_were(labelled_dbn):
    # the call counter (the samples' place in the Philox stream, saved in the file) moved
    # before label= was checked: after a refused call the next sample() drew other samples
    # than the same model's without it
    import copy
    X = binary_data(width=16)
    unlabelled = DBN(layers=[16, 8], epochs=10, batch_size=10, seed=0, backend="cpu").fit(X)
    with pytest.raises(ValueError, match=r"n_labels=10\)\.fit\(X, y\)"):
        copy.deepcopy(unlabelled).sample(3, gibbs_steps=2, label=0)
    for dbn, refused in ((unlabelled, {"label": 0}),
                         (labelled_dbn, {"label": 5}),
                         (labelled_dbn, {"label": [0, 1]}),
                         (labelled_dbn, {"label": 0, "sampler": "pt"})):
        twin = copy.deepcopy(dbn)
        with pytest.raises(ValueError):
            dbn.sample(3, gibbs_steps=2, **refused)
        np.testing.assert_array_equal(dbn.sample(20, gibbs_steps=2),
                                      twin.sample(20, gibbs_steps=2))


@pytest.mark.parametrize("options", [{}, {"label": 1}, {"sampler": "pt"}])
def test_a_seed_gives_the_same_samples_and_leaves_the_models_sequence_as_the_rbms_does(
        labelled_dbn, options):
    # rbm.sample(seed=...) had it, dbn.sample had no seed: the same samples twice took a
    # deepcopy of the DBN or reloading its file
    import copy
    if options.get("sampler") == "pt":   # parallel tempering does not clamp labels
        dbn = DBN(hidden=[8, 6], epochs=2, batch_size=10, seed=0, backend="cpu",
                  rbm={"sampler": "pt", "n_temperatures": 3}).fit(binary_data(width=16))
    else:                                # random labels ({}) or one clamped
        dbn = copy.deepcopy(labelled_dbn)
    untouched = copy.deepcopy(dbn)
    seeded = dbn.sample(30, 3, seed=7, **options)
    np.testing.assert_array_equal(dbn.sample(30, 3, seed=np.int64(7), **options), seeded)
    assert not np.array_equal(dbn.sample(30, 3, seed=8, **options), seeded)
    # None continues the model's own sequence, which the seeded calls left where it was (the
    # DBN's call counter and its top RBM's, both saved in its file)
    assert (dbn.sample_calls_, dbn.rbms_[-1].sample_calls_) == (
        untouched.sample_calls_, untouched.rbms_[-1].sample_calls_)
    np.testing.assert_array_equal(dbn.sample(30, 3, **options),
                                  untouched.sample(30, 3, **options))
    assert not np.array_equal(dbn.sample(30, 3, **options), seeded)
    with pytest.raises(TypeError, match="seed must be a non-negative integer or None"):
        dbn.sample(3, 2, seed=1.5, **options)


def test_dbn_sample_documents_its_seed_in_the_words_of_rbm_sample():
    import inspect
    rbm_words = inspect.getdoc(BernoulliRBM.sample).split("seed : int or None")[1]
    dbn_words = inspect.getdoc(DBN.sample).split("seed : int or None")[1]
    assert " ".join(rbm_words.split("\n")[1:3]) == " ".join(dbn_words.split("\n")[1:3])
    assert "None continues the model's own sequence" in dbn_words
    assert inspect.signature(DBN.sample).parameters["seed"].default is None


def tempering_dbn(hidden=(8, 6), **options):
    """A DBN whose top RBM trained by parallel tempering, the lower ones by CD-1."""
    top = {"sampler": "pt", "n_temperatures": 3}
    return DBN(hidden=list(hidden), epochs=2, batch_size=10, seed=0, backend="cpu",
               rbm=[{}] * (len(hidden) - 1) + [top], **options)


def test_sample_without_a_sampler_takes_the_top_rbms_own_as_rbm_sample_does(tmp_path):
    # dbn.sample defaulted to "gibbs" where rbm.sample(sampler=None) picks "pt" for a
    # PT-trained model: the same top RBM sampled two ways depending on the door
    X, y = two_class_data(30)
    dbn = tempering_dbn().fit(X)
    dlcore.save(dbn, tmp_path / "dbn.h5")
    for sampled in (dbn, dlcore.load(tmp_path / "dbn.h5")):   # the file records the sampler
        assert sampled.rbms_[-1].sampler == "pt"
        by_default = sampled.sample(6, 3, seed=7)
        np.testing.assert_array_equal(by_default, sampled.sample(6, 3, seed=7, sampler="pt"))
        assert not np.array_equal(by_default, sampled.sample(6, 3, seed=7, sampler="gibbs"))
    # one RBM: no pass down, the DBN's samples are its RBM's, sampler=None alike
    alone = tempering_dbn(hidden=[8]).fit(X)
    np.testing.assert_array_equal(alone.sample(6, 3, seed=7),
                                  alone.rbms_[0].sample(6, 3, seed=7, probabilities=True))
    # label= clamps the label units, which needs Gibbs steps: None means "gibbs" there
    labelled = tempering_dbn(n_labels=2).fit(X, y)
    np.testing.assert_array_equal(labelled.sample(6, 3, label=1, seed=7),
                                  labelled.sample(6, 3, label=1, seed=7, sampler="gibbs"))
    np.testing.assert_array_equal(labelled.sample(6, 3, seed=7),
                                  labelled.sample(6, 3, seed=7, sampler="pt"))
    gibbs_trained = DBN(hidden=[8, 6], epochs=2, batch_size=10, backend="cpu").fit(X)
    np.testing.assert_array_equal(gibbs_trained.sample(6, 3, seed=7),
                                  gibbs_trained.sample(6, 3, seed=7, sampler="gibbs"))


@pytest.mark.parametrize("options", [{"hidden": [8, 6]}, {"hidden": [8, 6], "n_labels": 2},
                                     {"hidden": [8, 6], "visible": "gaussian"}])
def test_sample_returns_probabilities_by_default_or_a_sample_drawn_from_them(options):
    # dbn.sample had no probabilities= (rbm.sample has): its binary pictures were drawn
    # outside the library, by `dlcore dbn sample --binary` alone
    X, y = two_class_data(30)
    if options.get("visible") == "gaussian":
        X = (X - 0.5) * 2
    dbn = DBN(epochs=2, batch_size=10, seed=0, backend="cpu", **options).fit(X, y)
    means = dbn.sample(40, 3, seed=5)
    np.testing.assert_array_equal(dbn.sample(40, 3, seed=5, probabilities=True), means)
    drawn = dbn.sample(40, 3, seed=5, probabilities=False)
    assert drawn.dtype == np.float32 and drawn.shape == means.shape
    # the same chains, the bottom units then drawn at the bottom layer's stream of the pass
    # down: a sample of the means returned by default
    if options.get("visible") == "gaussian":
        noise = rng.normal(*means.shape, 5, rng.STREAM_GENERATE + 1, 0)
        np.testing.assert_allclose(drawn, means + dbn.rbms_[0].visible_sigma * noise,
                                   rtol=1e-5, atol=1e-5)
    else:
        uniforms = rng.uniform(*means.shape, 5, rng.STREAM_GENERATE + 1, 0)
        np.testing.assert_array_equal(drawn, (uniforms < means).astype(np.float32))
        assert 0 < drawn.mean() < 1
    with pytest.raises(ValueError, match="probabilities must be True or False"):
        dbn.sample(3, 2, probabilities="no")


def test_a_one_rbm_dbn_without_probabilities_returns_its_last_gibbs_sample():
    X, _ = two_class_data(30)
    dbn = DBN(hidden=[8], epochs=2, batch_size=10, seed=0, backend="cpu").fit(X)
    drawn = dbn.sample(40, 3, seed=5, probabilities=False)
    assert set(np.unique(drawn)) == {0.0, 1.0}
    assert not np.array_equal(drawn, dbn.sample(40, 3, seed=5))


def test_up_down_keeps_generative_weights_separate_from_recognition_weights():
    X, y = two_class_data()
    dbn = DBN(layers=[16, 12, 10, 12], epochs=3, batch_size=10, n_labels=2, seed=1,
              backend="cpu").fit(X, y)
    tied = [rbm.W.copy() for rbm in dbn.rbms_]
    dbn.up_down(X, y, epochs=2, learning_rate=0.05)
    for (G, _g), rbm, before in zip(dbn.generative_, dbn.rbms_, tied):
        assert G is not rbm.W and not np.shares_memory(G, rbm.W)
        assert not np.allclose(G, before) and not np.allclose(rbm.W, before)
        assert not np.allclose(G, rbm.W)
    # recognition goes up (transform), generation comes down through G: silence G_0's output
    recognised = dbn.transform(X)
    dbn.generative_[0] = (np.zeros_like(dbn.generative_[0][0]),
                          np.full_like(dbn.generative_[0][1], -30.0))
    np.testing.assert_array_equal(dbn.transform(X), recognised)
    assert dbn.sample(5, gibbs_steps=2).max() < 1e-6
    assert len(dbn.history["up_down_reconstruction_error"]) == 2


@pytest.mark.slow
@pytest.mark.parametrize("backend_name", KERNEL_BACKENDS)
def test_up_down_updates_match_the_reference_backend(backend_name):
    X, y = two_class_data(8)
    results = {}
    for name in ("reference", backend_name):
        dbn = DBN(layers=[16, 6, 5, 4], epochs=1, batch_size=8, n_labels=2, seed=2,
                  backend="reference").fit(X, y)
        dbn.backend = name
        dbn.up_down(X, y, epochs=1, batch_size=8, gibbs_steps=2)
        results[name] = [dbn.generative_[0][0], dbn.rbms_[0].W, dbn.rbms_[-1].W]
    for got, expected in zip(results[backend_name], results["reference"]):
        np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("backend_name", KERNEL_BACKENDS)
def test_softmax_label_units_match_the_reference(backend_name, random_state):
    top_down = random_state.normal(0, 2, (6, 9)).astype(np.float32)
    bias = random_state.normal(0, 1, 9).astype(np.float32)
    results = {}
    for name in ("reference", backend_name):
        be = get_backend(name)
        means, states = be.asarray(top_down.copy()), be.empty((6, 9))
        SoftmaxLabelVisible(3).sample(be, means, be.asarray(bias), states, 5, 17, 2)
        results[name] = be.to_numpy(means), be.to_numpy(states)
    np.testing.assert_allclose(results[backend_name][0], results["reference"][0], rtol=1e-5)
    np.testing.assert_array_equal(results[backend_name][1], results["reference"][1])
    means, states = results["reference"]
    np.testing.assert_allclose(means[:, -3:].sum(axis=1), 1, rtol=1e-6)
    assert np.all(states[:, -3:].sum(axis=1) == 1)             # exactly one label on


def test_save_and_load_round_trip_keeps_every_rbm_the_labels_and_the_generative_weights(
        tmp_path):
    X, y = two_class_data(30)
    dbn = DBN(layers=[16, 8, 6], epochs=2, batch_size=10, n_labels=2, seed=4,
              learning_rate=[0.1, 0.05], backend="cpu").fit(X, y)
    dbn.up_down(X, y, epochs=1)
    dlcore.save(dbn, tmp_path / "dbn.h5")
    loaded = dlcore.load(tmp_path / "dbn.h5")
    assert isinstance(loaded, DBN) and loaded.get_config() == dbn.get_config()
    for mine, theirs in zip(dbn.rbms_, loaded.rbms_):
        np.testing.assert_array_equal(mine.W, theirs.W)
        assert mine.get_config() == theirs.get_config()
    np.testing.assert_array_equal(loaded.generative_[0][0], dbn.generative_[0][0])
    np.testing.assert_array_equal(loaded.predict_proba(X), dbn.predict_proba(X))
    np.testing.assert_array_equal(loaded.sample(4, 3, label=1), dbn.sample(4, 3, label=1))
    assert loaded.history["rbm2_reconstruction_error"] == dbn.history[
        "rbm2_reconstruction_error"]


def test_the_fine_tuned_network_saves_and_loads_and_predicts_the_same(tmp_path):
    X, _ = two_class_data(20)
    network = DBN(layers=[16, 8, 6], epochs=1, backend="cpu").fit(X).to_network(2)
    dlcore.save(network, tmp_path / "model.h5")
    np.testing.assert_allclose(dlcore.load(tmp_path / "model.h5").predict(X), network.predict(X),
                               rtol=1e-6)


def test_per_layer_options_reach_their_rbm():
    dbn = DBN(layers=[12, 6, 4], epochs=[2, 1], learning_rate=[0.1, 0.05],
              rbm=[{"momentum": 0.9}, {"cd_k": 2}], backend="cpu").fit(binary_data())
    first, second = dbn.rbms_
    assert (first.epochs, first.learning_rate, first.momentum) == (2, 0.1, 0.9)
    assert (second.epochs, second.learning_rate, second.cd_k) == (1, 0.05, 2)
    assert len(dbn.history["rbm1_reconstruction_error"]) == 2


@pytest.mark.parametrize("arguments, message", [
    ({"layers": [784]}, "at least two"),
    ({"layers": [12, 6, 4], "epochs": [1, 2, 3]}, "epochs lists 3 values for 2 RBMs"),
    ({"propagate": "median"}, "propagate"),
    ({"visible": "poisson"}, "visible"),
    ({"rbm": [{}]}, "one per"),
])
def test_bad_hyperparameters_name_the_problem(arguments, message):
    dbn = DBN(**arguments)   # scikit-learn's rule: __init__ only stores, fit checks
    assert all(dbn.get_params()[name] == value for name, value in arguments.items())
    with pytest.raises(ValueError, match=message) as caught:
        dbn.fit(binary_data())
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("make, call, message", [
    (lambda: DBN(hidden=[6, 4], epochs=1, rbm={"n_hidden": 5}), "fit",
     r"rbm gives RBM 1 n_hidden=5, but hidden=\[6, 4\] gives it 6"),
    (lambda: DBN(layers=[12, 6, 4], epochs=1, rbm=[{}, {"n_hidden": 5}]), "partial_fit",
     r"RBM 2 n_hidden=5, but layers=\[12, 6, 4\] gives it 4"),
    (lambda: DBN(hidden=[6, 4], epochs=1, rbm=[{"n_labels": 2}, {}]), "fit",
     r"RBM 1 n_labels=2, but the DBN's n_labels=0 gives it 0"),
    (lambda: dlcore.StackedAutoencoder(hidden=[6, 4], epochs=1,
                                       autoencoder={"n_hidden": 5}), "fit",
     r"autoencoder gives layer 1 n_hidden=5, but hidden=\[6, 4\] gives it 6")],
    ids=["dbn-n_hidden", "dbn-layers-partial_fit", "dbn-n_labels", "stacked-n_hidden"])
def test_layer_options_that_resize_a_layer_are_refused_before_training(make, call, message):
    """rbm={"n_hidden": 5} trained RBMs of 5 units where layers_ said 6, and dlcore.load
    then refused the file it saved as damaged ("give n_hidden = 5; the DBN's layers imply
    6"); label units on a lower RBM took data columns for a softmax label group."""
    stack = make()
    with pytest.raises(ValueError, match=message) as caught:
        getattr(stack, call)(binary_data())
    assert "\n" not in str(caught.value) and not hasattr(stack, "layers_")


def test_layer_options_that_repeat_the_stacks_sizes_train_and_load(tmp_path):
    dbn = DBN(hidden=[6, 6], epochs=1, rbm={"n_hidden": 6}).fit(binary_data())
    dlcore.save(dbn, tmp_path / "dbn.h5")
    assert dlcore.load(tmp_path / "dbn.h5").layers_ == [12, 6, 6]


def test_infinite_labels_are_refused_without_a_numpy_warning_first():
    """inf mod 1 made NumPy warn "invalid value encountered in remainder" before the line."""
    labels = np.r_[np.zeros(30), np.full(30, np.inf)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="not class labels .* e.g. inf, inf, inf"):
            DBN(hidden=[4], n_labels=2, epochs=1).fit(binary_data(), labels)


def test_a_single_class_for_label_units_is_not_told_to_take_one_label_unit():
    # "y holds 1 classes ('a') for the DBN's n_labels=2 label units: give n_labels=1, ..."
    with pytest.raises(ValueError, match=r"^y holds 1 class \('a'\) for the DBN's n_labels=2 "
                                         r"label units: give y with 2 distinct labels") as caught:
        DBN(hidden=[4], n_labels=2, epochs=1).fit(binary_data(), ["a"] * 60)
    assert "n_labels=1" not in str(caught.value)


def test_a_hyperparameter_set_badly_is_refused_by_fit_resume_up_down_and_load(tmp_path):
    dbn = DBN(layers=[12, 6, 4], epochs=1, backend="cpu").fit(binary_data())
    dbn.set_params(propagate="median")   # stored without a word, as scikit-learn asks
    for call in (lambda: dbn.fit(binary_data()), lambda: dbn.resume(binary_data()),
                 lambda: dbn.up_down(binary_data())):
        with pytest.raises(ValueError, match="propagate must be 'mean' or 'sample'"):
            call()
    with pytest.raises(ValueError, match="propagate"):
        DBN.from_config(dbn.get_config())
    # dlcore.save writes no file load would refuse; a file edited so is refused by load
    with pytest.raises(ValueError, match="propagate") as caught:
        dlcore.save(dbn, tmp_path / "edited.h5")
    assert "\n" not in str(caught.value) and not (tmp_path / "edited.h5").exists()
    dbn.set_params(propagate="mean")
    dlcore.save(dbn, tmp_path / "edited.h5")
    with h5py.File(tmp_path / "edited.h5", "r+") as h5file:
        h5file.attrs["hyperparameters"] = h5file.attrs["hyperparameters"].replace(
            '"propagate": "mean"', '"propagate": "median"')
    with pytest.raises(ValueError, match="propagate") as caught:
        dlcore.load(tmp_path / "edited.h5")
    assert "\n" not in str(caught.value)


def test_a_labelled_dbn_needs_labels_and_an_unlabelled_one_cannot_predict():
    with pytest.raises(ValueError, match="DBN requires y to be passed, but the target y is "
                                         "None: this DBN has n_labels=2 label units"):
        DBN(layers=[12, 4], n_labels=2, backend="cpu").fit(binary_data())
    plain = DBN(layers=[12, 4], epochs=1, backend="cpu").fit(binary_data())
    with pytest.raises(RuntimeError, match=r"label units.*to_network\(n_classes=10\)"):
        plain.predict(binary_data())


def test_to_network_of_an_unlabelled_dbn_asks_for_n_classes():
    # the default None became n_labels = 0: "n_classes must be >= 1, got 0" of a 0 never given
    plain = DBN(layers=[12, 4], epochs=1, backend="cpu").fit(binary_data())
    with pytest.raises(ValueError, match=r"to_network\(\) needs n_classes=K.*without label "
                                         r"units \(n_labels=0\)"):
        plain.to_network()
    assert plain.to_network(n_classes=3).output_shape == (3,)


def test_up_down_epochs_walk_the_one_mini_batch_iterator(monkeypatch):
    import dlcore.dbn.updown
    from dlcore.batches import mini_batches
    walked = []

    def watched(*arguments, **options):
        for batch in mini_batches(*arguments, **options):
            walked.append(tuple(len(array) for array in batch.arrays))
            yield batch

    monkeypatch.setattr(dlcore.dbn.updown, "mini_batches", watched)
    X, y = two_class_data(15)
    dbn = DBN(layers=[16, 6, 5], epochs=1, batch_size=10, n_labels=2, seed=2,
              backend="reference").fit(X, y)
    dbn.up_down(X, y, epochs=2, batch_size=8)
    assert walked == 2 * ([(8, 8)] * 3 + [(6, 6)])    # 30 rows and their labels, per epoch
    assert dbn.up_down_updates_ == 8


def test_an_up_down_epochs_progress_comes_after_its_epoch_end():
    # the epoch's line after its checkpoint: a Ctrl-C after "up-down epoch 1" saves epoch 1
    X, y = two_class_data(15)
    dbn = DBN(layers=[16, 6, 5], epochs=1, batch_size=10, n_labels=2, seed=2,
              backend="reference").fit(X, y)
    events = []
    dbn.up_down(X, y, epochs=2, batch_size=8,
                progress=lambda epoch, epochs, error: events.append(("progress", epoch)),
                on_epoch_end=lambda model: events.append(("epoch end",
                                                          model.up_down_epochs_done_)))
    assert events == [("epoch end", 1), ("progress", 1), ("epoch end", 2), ("progress", 2)]


def test_every_random_stream_of_the_dbn_is_named_in_backend_rng_with_its_value():
    import ast
    from pathlib import Path
    assert (rng.STREAM_PROPAGATE, rng.STREAM_WAKE, rng.STREAM_SLEEP, rng.STREAM_GENERATE) == (
        1 << 24, (1 << 24) + (1 << 16), (1 << 24) + (2 << 16), (1 << 24) + (3 << 16))
    package = Path(dlcore.__file__).parent
    defined_elsewhere = [
        f"{path.relative_to(package)}: {target.id}"
        for path in package.rglob("*.py") if path != package / "backend" / "rng.py"
        for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name) and target.id.startswith("STREAM_")]
    assert defined_elsewhere == []


# Appended to the PTX script of test_backend_cuda_ptx (its CompilingBackend ``backend`` compiles
# the CUDA twin of every launch): a labelled DBN with up-down and a Gaussian RBM with learned
# sigma, whose kernels the CD step alone does not reach.
DBN_LAUNCHES = textwrap.dedent(r'''
    import dlcore.dbn.updown, dlcore.rbm.estimator
    from dlcore import DBN, GaussianBernoulliRBM
    dlcore.dbn.updown.get_backend = dlcore.rbm.estimator.get_backend = lambda name: backend
    X, y = (f32(24, 8) < 0.5).astype(np.float32), np.arange(24) % 3
    dbn = DBN(layers=[8, 5, 4], epochs=1, batch_size=6, n_labels=3, seed=1).fit(X, y)
    dbn.up_down(X, y, epochs=1, batch_size=6)
    dbn.sample(3, gibbs_steps=2, label=1)
    GaussianBernoulliRBM(n_hidden=3, epochs=1, batch_size=6, sigma=0.8,
                         learn_sigma=True).fit(f32(24, 8)).transform(f32(5, 8))
    for (name, signature), size in sorted(compiled.items()):
        print("COMPILED", name, size)
''')


@pytest.mark.slow
def test_the_label_sigma_and_up_down_kernels_compile_to_ptx_for_a_real_gpu():
    from test_backend_cuda_ptx import SCRIPT
    report = ptx_compile_report(SCRIPT + DBN_LAUNCHES)
    for kernel in ("softmax_labels_span", "write_label_columns_span", "copy_columns_span",
                   "scale_columns_span", "gaussian_visible_step_span"):
        assert f"COMPILED {kernel} " in report


@pytest.mark.parametrize("make", [DBN, dlcore.StackedAutoencoder])
def test_layers_given_as_an_array_are_taken_as_their_list(make, tmp_path):
    """An array of sizes (a NumPy grid's) was refused ("pass layers.tolist()") where
    DBNClassifier and scikit-learn's hidden_layer_sizes take one; the file holds the list."""
    X = binary_data()
    options = {"epochs": 1, "batch_size": 10, "seed": 0, "backend": "cpu"}
    model = make(layers=np.array([12, 6, 4]), **options).fit(X)
    listed = make(layers=[12, 6, 4], **options).fit(X)
    assert model.layers_ == [12, 6, 4]
    np.testing.assert_array_equal(model.transform(X), listed.transform(X))
    dlcore.save(model, tmp_path / "model.h5")
    assert dlcore.load(tmp_path / "model.h5").get_params()["layers"] == [12, 6, 4]


def test_a_sparse_matrix_is_refused_as_the_rbms_refuse_it():
    # it read "X must hold numbers, got dtype object": the sparse matrix became a 0-d object
    sparse = pytest.importorskip("scipy.sparse")
    X = sparse.csr_matrix(binary_data())
    expected = (r"X is a sparse matrix and DBN does not support sparse input: pass a dense "
                r"array \(X.toarray\(\)\)")
    with pytest.raises(TypeError, match=expected):
        DBN(layers=[12, 6, 4], epochs=1, backend="cpu").fit(X)
    dbn = DBN(layers=[12, 6, 4], epochs=1, backend="cpu").fit(binary_data())
    for use in (dbn.transform, dbn.log_likelihood_bound):
        with pytest.raises(TypeError, match=expected):
            use(X)


def test_a_labelled_dbn_is_a_scikit_learn_classifier_of_any_labels(labelled_dbn):
    # it had predict but no score or classes_, and took only the codes 0..n_labels-1
    pytest.importorskip("sklearn")
    from sklearn.base import is_classifier
    from sklearn.metrics import accuracy_score
    from sklearn.model_selection import GridSearchCV, cross_val_score
    X, y = two_class_data()
    X_test, y_test = two_class_data(seed=7)
    names = np.array(["left", "right"])
    by_name = DBN(layers=[16, 12, 12], epochs=15, batch_size=10, n_labels=2, seed=1,
                  backend="cpu").fit(X, names[y])
    assert list(by_name.classes_) == ["left", "right"] and is_classifier(by_name)
    np.testing.assert_array_equal(labelled_dbn.classes_, [0, 1])
    # the sorted labels are the label units in order: the same model as on the codes
    np.testing.assert_array_equal(by_name.decision_function(X_test),
                                  labelled_dbn.decision_function(X_test))
    np.testing.assert_array_equal(by_name.predict(X_test), names[labelled_dbn.predict(X_test)])
    assert by_name.score(X_test, names[y_test]) == accuracy_score(names[y_test],
                                                                  by_name.predict(X_test))
    for labels in (y + 1, y * 2.0 + 3, np.array(["a", "b"], dtype=object)[y]):
        mapped = DBN(layers=[16, 12, 12], epochs=15, batch_size=10, n_labels=2, seed=1,
                     backend="cpu").fit(X, labels)
        np.testing.assert_array_equal(mapped.predict(X_test), np.unique(labels)[
            labelled_dbn.predict(X_test)])
    small = DBN(layers=[16, 6], epochs=3, batch_size=10, n_labels=2, seed=1, backend="cpu")
    assert not hasattr(DBN(layers=[16, 6]), "score")        # nothing to score without labels
    scores = cross_val_score(small, X, names[y], cv=3, error_score="raise")
    assert scores.shape == (3,) and np.all(scores > 0.8)
    search = GridSearchCV(small, {"epochs": [1, 3]}, cv=2, error_score="raise").fit(
        X, names[y])
    assert search.best_estimator_.classes_.tolist() == ["left", "right"]


def test_labels_that_are_not_n_labels_classes_are_refused_naming_them():
    X, y = two_class_data(20)
    dbn = DBN(layers=[16, 6], epochs=1, n_labels=2, backend="cpu")
    with pytest.raises(ValueError, match=r"y holds 3 classes \(0, 1, 2\) for the DBN's "
                                         r"n_labels=2 label units: give n_labels=3"):
        dbn.fit(X, np.arange(40) % 3)
    with pytest.raises(ValueError, match=r"not whole numbers, e.g. 0.5"):
        dbn.fit(X, y + 0.5)
    dbn.fit(X, y + 1)                                      # MATLAB-style 1..K: classes 1, 2
    with pytest.raises(ValueError, match=r"y_valid holds labels that are not classes of the "
                                         r"DBN: 0 \(its classes_ are 1, 2\)"):
        dbn.fit(X, y + 1, X_valid=X, y_valid=y)
    with pytest.raises(ValueError, match="label holds labels that are not classes"):
        dbn.sample(2, 2, label=0)
    assert dbn.sample(2, 2, label=2).shape == (2, 16)
    only_zeros = DBN(layers=[16, 6], epochs=1, n_labels=2, backend="cpu").fit(X, y * 0)
    np.testing.assert_array_equal(only_zeros.classes_, [0, 1])   # codes: a class may be absent


@pytest.mark.parametrize("labels", [np.array(["cat", "dog"]), np.array([1.0, 7.0]),
                                    np.array([3, 8], np.uint8)])
def test_classes_travel_through_the_file_and_pickles(tmp_path, labels):
    import pickle
    X, y = two_class_data(20)
    dbn = DBN(layers=[16, 6], epochs=1, n_labels=2, backend="cpu").fit(X, labels[y])
    dbn.save(tmp_path / "dbn.h5")
    for twin in (dlcore.load(tmp_path / "dbn.h5"), pickle.loads(pickle.dumps(dbn))):
        np.testing.assert_array_equal(twin.classes_, labels)
        np.testing.assert_array_equal(twin.predict(X), dbn.predict(X))


@pytest.mark.parametrize("stored, problem", [
    ('["a", "b", "c"]', "should list the 2 classes"),
    ('["b", "a"]', "distinct classes in increasing order"),
    ('[1, "a"]', "numbers only or strings only"),
    ('[[1], [2]]', "is not valid JSON: it nests"),
    ('{"__class__": "os.system"}', "should list the 2 classes"),
])
def test_the_file_checker_refuses_damaged_classes(tmp_path, stored, problem):
    h5py = pytest.importorskip("h5py")
    X, y = two_class_data(20)
    path = tmp_path / "dbn.h5"
    DBN(layers=[16, 6], epochs=1, n_labels=2, backend="cpu").fit(X, y).save(path)
    with h5py.File(path, "r+") as file:
        file.attrs["classes"] = stored
    with pytest.raises(dlcore.io.ModelFileError, match=rf"'classes' attribute .*{problem}"):
        dlcore.load(path)


def test_a_file_of_a_labelled_dbn_without_classes_means_the_codes(tmp_path):
    # files written before classes_ existed
    h5py = pytest.importorskip("h5py")
    X, y = two_class_data(20)
    path = tmp_path / "dbn.h5"
    DBN(layers=[16, 6], epochs=1, n_labels=2, backend="cpu").fit(X, y).save(path)
    with h5py.File(path, "r+") as file:
        assert file.attrs["classes"] == "[0, 1]"
        del file.attrs["classes"]
    np.testing.assert_array_equal(dlcore.load(path).classes_, [0, 1])


def test_data_wider_than_layers_0_says_how_to_start_the_layers():
    # "X has 784 columns but the model expects 700 visible units" named no argument to change
    X = np.zeros((5, 12), np.float32)
    with pytest.raises(ValueError, match=r"^X has 12 columns but layers\[0\] is 10, the bottom "
                       r"RBM's visible units: start layers with 12 \(e.g. layers=\[12, 6, 3\]\), "
                       r"or give hidden=\[6, 3\] alone and the width comes from X$"):
        DBN(layers=[10, 6, 3], epochs=1).fit(X)
    with pytest.raises(ValueError) as refusal:   # the held-out rows are the wrong ones here
        DBN(layers=[12, 6, 3], epochs=1).fit(X, X_valid=np.zeros((5, 10), np.float32))
    assert "X_valid has 10 features, but DBN is expecting 12" in str(refusal.value)
    assert "start layers" not in str(refusal.value)


def test_up_down_in_fit_takes_the_labels_fit_takes():
    # fit gave up-down the label units' codes, which it looked up among classes_ again: a DBN
    # fitted on string labels (or 1..K) with up_down_epochs failed, "y holds labels that are
    # not classes of the DBN: 0, 1 (its classes_ are 'a', 'b')"
    X = binary_data()
    labels = np.array(["a", "b"])[np.arange(len(X)) % 2]
    options = {"layers": [12, 6, 4], "n_labels": 2, "epochs": 1, "up_down_epochs": 1,
               "up_down_batch_size": 10, "seed": 0, "backend": "cpu"}
    named = DBN(**options).fit(X, labels)
    coded = DBN(**options).fit(X, np.arange(len(X)) % 2)
    assert list(named.classes_) == ["a", "b"] and named.up_down_epochs_done_ == 1
    np.testing.assert_array_equal(named.generative_[0][0], coded.generative_[0][0])
    np.testing.assert_array_equal(named.predict(X), named.classes_[coded.predict(X)])


def test_a_dbn_interrupted_before_its_up_down_names_resume(monkeypatch, tmp_path):
    """A fit stopped after its pretraining, before the up-down epochs it owes, left a DBN that
    transformed, predicted and sampled as if finished (up-down moves the recognition weights
    too): it is now refused in one line naming resume, saved and loaded alike, and resume
    finishes it as the uninterrupted fit. partial_fit owes no up-down epochs."""
    from functools import partial

    from dlcore.dbn.updown import UpDown
    X, y = binary_data(n=20, width=6), np.arange(20) % 2
    settings = {"layers": [6, 4, 3], "epochs": 1, "batch_size": 10, "up_down_epochs": 1,
                "up_down_batch_size": 10, "n_labels": 2, "seed": 0, "backend": "reference"}
    finished = DBN(**settings).fit(X, y)

    def interrupted(*arguments, **keywords):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(UpDown, "epoch", interrupted)
        stopped = DBN(**settings)
        with pytest.raises(KeyboardInterrupt):
            stopped.fit(X, y)
    stopped.save(tmp_path / "stopped.h5")
    for unfinished in (stopped, dlcore.load(tmp_path / "stopped.h5")):
        for use in (partial(unfinished.transform, X), partial(unfinished.predict, X),
                    partial(unfinished.sample, 2)):
            with pytest.raises(RuntimeError, match=r"up-down epoch 0 of 1 .*resume\(X, y\)"):
                use()
    stopped.resume(X, y)
    np.testing.assert_array_equal(stopped.predict_proba(X), finished.predict_proba(X))
    streamed = DBN(**settings).partial_fit(X, y)
    assert streamed.transform(X).shape == (20, 3)


def test_resume_refuses_settings_changed_since_the_rbms_were_set_up():
    """dbn.set_params(epochs=3).resume(X) after a fit of 2 epochs trained nothing and said
    nothing (each RBM keeps the settings it was built with); it is refused in one line naming
    the RBM, the setting and both ways on. A DBN built by partial_fit (its RBMs' epochs are
    their passes) still resumes."""
    X = binary_data(n=20, width=6)
    dbn = DBN(layers=[6, 4, 3], epochs=2, batch_size=10, seed=0, backend="reference").fit(X)
    weights = dbn.rbms_[0].W.copy()
    dbn.set_params(epochs=3, momentum=0.9)
    with pytest.raises(ValueError, match=r"RBM 1 epochs=3, .* with epochs=2: .*fit\(X\)"):
        dbn.resume(X)
    np.testing.assert_array_equal(dbn.rbms_[0].W, weights)
    dbn.set_params(epochs=2, momentum=None)
    dbn.resume(X)
    streamed = DBN(layers=[6, 4, 3], epochs=5, batch_size=10, seed=0, backend="reference")
    streamed.partial_fit(X).resume(X)
    assert [rbm.epochs_done_ for rbm in streamed.rbms_] == [1, 1]


def test_up_down_epochs_where_up_down_cannot_run_are_refused_before_the_pretraining():
    """One RBM (or Gaussian visible units) with up_down_epochs: refused only after the whole
    pretraining, which left a DBN owing up-down epochs it can never take."""
    for settings in ({"layers": [6, 4]}, {"layers": [6, 4, 3], "visible": "gaussian"}):
        dbn = DBN(up_down_epochs=1, epochs=1, seed=0, backend="reference", **settings)
        with pytest.raises(ValueError, match=r"up_down_epochs=1: .* give up_down_epochs=0"):
            dbn.fit(binary_data(n=20, width=6))
        assert not hasattr(dbn, "rbms_")


def test_on_epoch_end_uses_the_dbn_between_its_up_down_epochs():
    """A callback that samples the generative model after each up-down epoch (as a teacher
    watches it improve) was refused as 'interrupted before its up-down fine-tuning ended':
    the DBN it is given mid-fit is the model so far, usable as before."""
    X = binary_data(n=20, width=6)
    seen = []

    def watch(dbn):
        if dbn.up_down_epochs_done_:   # (pretraining's RBMs are unfinished until the last)
            seen.append(dbn.sample(2, gibbs_steps=5).shape)

    dbn = DBN(layers=[6, 4, 3], epochs=1, batch_size=10, up_down_epochs=2,
              up_down_batch_size=10, seed=0, backend="reference").fit(X, on_epoch_end=watch)
    assert seen == [(2, 6), (2, 6)]
    assert "_fine_tuning" not in vars(dbn) and dbn.transform(X).shape == (20, 3)


def test_up_down_epochs_raised_after_fit_are_named_and_none_owed_without_up_down():
    """up_down_epochs raised after a fit (the DBN owes the new epochs) was refused as
    'interrupted', which it was not, with resume as the only way; a DBN that cannot run
    up-down (one RBM: a file of a dlcore that let it pretrain) owed epochs for ever."""
    X = binary_data(n=20, width=6)
    settings = {"epochs": 1, "batch_size": 10, "up_down_batch_size": 10, "seed": 0,
                "backend": "reference"}
    dbn = DBN(layers=[6, 4, 3], up_down_epochs=1, **settings).fit(X)
    dbn.set_params(up_down_epochs=3)
    with pytest.raises(RuntimeError, match=r"epoch 1 of 3 \(.*or up_down_epochs was raised "
                                           r"since\): .*resume\(X\).*"
                                           r"set_params\(up_down_epochs=1\)"):
        dbn.transform(X)
    assert dbn.set_params(up_down_epochs=1).transform(X).shape == (20, 3)
    single = DBN(layers=[6, 4], **settings).fit(X).set_params(up_down_epochs=2)
    assert single.transform(X).shape == (20, 4)


def test_resume_takes_settings_given_as_numpy_arrays():
    """resume's check of the RBMs' settings compared a NumPy array setting (temperatures,
    which the RBMs take, for parallel tempering) with ==, whose answer is an array: an
    interrupted DBN could not resume ('The truth value of an array ... is ambiguous')."""
    X = binary_data(n=20, width=6)
    # (sampler="cd": the RBMs keep the temperatures; "pt" costs a kernel compile, 4 s)
    settings = {"layers": [6, 4, 3], "epochs": 2, "batch_size": 10, "seed": 0,
                "backend": "reference", "rbm": {"temperatures": np.array([1.0, 2.0])}}
    finished = DBN(**settings).fit(X)
    epochs_ended = []

    def stop_after_the_first(dbn):
        epochs_ended.append(1)
        if len(epochs_ended) == 1:
            raise KeyboardInterrupt

    stopped = DBN(**settings)
    with pytest.raises(KeyboardInterrupt):
        stopped.fit(X, on_epoch_end=stop_after_the_first)
    stopped.resume(X)
    for resumed, uninterrupted in zip(stopped.rbms_, finished.rbms_):
        np.testing.assert_array_equal(resumed.W, uninterrupted.W)


@pytest.mark.parametrize("stack", [dlcore.DBN, dlcore.StackedAutoencoder])
def test_the_stack_on_epoch_end_is_given_mid_fit_is_not_called_interrupted(stack):
    # "this DBN's training was interrupted in RBM 2 of 2: finish it with dbn.resume(X)",
    # said to a callback of the fit that runs
    rows = (np.random.default_rng(0).random((30, 8)) < 0.5).astype(np.float32)
    said = []

    def evaluate(model):
        try:
            model.transform(rows)
            said.append("used")
        except RuntimeError as error:
            said.append(str(error))
    stack(hidden=[5, 3], epochs=1, batch_size=10, backend="cpu", seed=0).fit(
        rows, on_epoch_end=evaluate)
    name, noun = stack.__name__, stack.layer_noun
    assert said == [f"this {name} is in the middle of its fit ({noun} 2 of 2 not trained yet), "
                    "as on_epoch_end is given it: it can be saved (dlcore.save, a checkpoint "
                    f"that resume finishes), and its trained {noun}s used "
                    f"({stack.layers_attribute}[:1]); use the whole {name} once fit returns",
                    "used"]


@pytest.mark.parametrize("stack", [dlcore.DBN, dlcore.StackedAutoencoder])
def test_resume_after_fit_and_partial_fit_trains_nothing_rather_than_refusing(stack):
    # partial_fit after fit sets each layer's epochs to its passes (3 of the fit's 2):
    # resume was refused, "settings give RBM 1 epochs=2, but it was set up with epochs=3"
    rows = (np.random.default_rng(0).random((30, 8)) < 0.5).astype(np.float32)
    model = stack(hidden=[5, 3], epochs=2, batch_size=10, backend="cpu", seed=0).fit(rows)
    model.partial_fit(rows)
    before = model.transform(rows)
    np.testing.assert_array_equal(model.resume(rows).transform(rows), before)
    model.set_params(epochs=4)   # more epochs than the layers had: still refused
    with pytest.raises(ValueError, match="epochs=4, but it was set up"):
        model.resume(rows)


def test_an_rbm_whose_chains_a_model_file_cannot_hold_is_refused_before_pretraining():
    # RBM 2's 200,000 tempered chains of 4 + 784 units were refused by dlcore.save only after
    # the whole pretraining (by RBM 2's own fit after RBM 1 trained, since that check)
    X = np.zeros((3, 4), dtype=np.float32)
    dbn = DBN(hidden=[784, 4], epochs=1, backend="reference",
              rbm=[None, {"sampler": "pt", "n_temperatures": 1000, "batch_size": 200}])
    for train in (dbn.fit, dbn.partial_fit):
        with pytest.raises(ValueError, match=r"^RBM 2 of the DBN: the persistent chains would "
                                             r"hold 200,000 x \(4 hidden \+ 784 visible\)"):
            train(X)
        assert not hasattr(dbn, "rbms_")


def test_resume_after_fit_and_partial_fit_with_numpy_epochs_trains_nothing_too():
    # epochs=np.int64(2) (a grid's value): the "all done, no change" exemption took only int,
    # and resume was refused, "settings give RBM 1 epochs=2, but it was set up with epochs=3"
    rows = (np.random.default_rng(0).random((30, 8)) < 0.5).astype(np.float32)
    model = dlcore.DBN(hidden=[5, 3], epochs=np.int64(2), batch_size=10, backend="cpu",
                       seed=0).fit(rows)
    model.partial_fit(rows)
    before = model.transform(rows)
    np.testing.assert_array_equal(model.resume(rows).transform(rows), before)
    model.set_params(epochs=np.int64(4))   # more epochs than the layers had: still refused,
    with pytest.raises(ValueError, match="epochs=4, but it was set up") as refused:
        model.resume(rows)
    assert "np." not in str(refused.value)   # in the numbers typed, not NumPy 2's np.int64(4)
    stack = dlcore.DBN(hidden=[5, 3], epochs=np.int64(2), batch_size=10, backend="cpu",
                       seed=0).fit(rows)
    with pytest.raises(ValueError, match=r"with epochs=2: .* or set_params\(epochs=2\) back"):
        stack.set_params(epochs=np.int64(4)).resume(rows)


def test_a_resume_refusal_writes_numpy_numbers_inside_a_list_as_typed():
    # temperatures=[np.float64(1.0), np.float64(2.0)] (a grid's values) was shown as NumPy 2's
    # repr: only a NumPy number at the top level was written as the number it holds
    rows = (np.random.default_rng(0).random((30, 8)) < 0.5).astype(np.float32)
    tempered = {"sampler": "pt", "temperatures": [np.float64(1.0), np.float64(2.0)]}
    model = dlcore.DBN(hidden=[5, 3], epochs=1, batch_size=10, backend="cpu", seed=0,
                       rbm=tempered).fit(rows)
    model.set_params(rbm={**tempered, "temperatures": (np.float64(1.0), np.float64(4.0))})
    with pytest.raises(ValueError) as refused:
        model.resume(rows)
    assert "RBM 1 temperatures=(1.0, 4.0), but it was set up (and trained) with " \
        "temperatures=[1.0, 2.0]: " in str(refused.value)
    assert "np." not in str(refused.value)


@pytest.mark.parametrize("stack, given, changed, call", [
    # set_params(epochs=2) set both RBMs' epochs, and RBM 1 (1 epoch) was refused in its turn
    (dlcore.DBN, {"epochs": [1, 2]}, {"epochs": [1, 3]}, "set_params(epochs=[1, 2])"),
    # set_params(cd_k=1): a DBN has no cd_k
    (dlcore.DBN, {"rbm": {"cd_k": 1}}, {"rbm": {"cd_k": 2}}, "set_params(rbm={'cd_k': 1})"),
    (dlcore.StackedAutoencoder, {"autoencoder": [{"corruption": 0.1}, None]},
     {"autoencoder": [{"corruption": 0.2}, None]},
     "set_params(autoencoder=[{'corruption': 0.1}, None])")],
    ids=["per-layer-list", "rbm-options", "autoencoder-options"])
def test_a_resume_refusal_gives_the_set_params_call_that_puts_the_setting_back(
        stack, given, changed, call):
    rows = (np.random.default_rng(0).random((30, 8)) < 0.5).astype(np.float32)
    model = stack(hidden=[5, 3], batch_size=10, backend="cpu", seed=0,
                  **{"epochs": 1, **given}).fit(rows)
    model.set_params(**changed)
    with pytest.raises(ValueError) as refused:
        model.resume(rows)
    assert str(refused.value).endswith(f"or {call} back to resume")
    model.set_params(**given).resume(rows)   # what the call gives back: resumed, no refusal


@pytest.mark.parametrize("stack", [dlcore.DBN, dlcore.StackedAutoencoder])
def test_resume_of_a_stack_not_trained_yet_is_a_not_fitted_error_as_an_rbm_s(stack):
    # a plain RuntimeError, where an unfitted RBM's or autoencoder's resume raises
    # NotFittedError: code catching scikit-learn's ValueError/AttributeError missed it
    rows = np.zeros((4, 3), dtype=np.float32)
    for unfitted in (stack(hidden=[2]), dlcore.BernoulliRBM(n_hidden=2)):
        with pytest.raises(dlcore.NotFittedError) as refused:
            unfitted.resume(rows)
        assert isinstance(refused.value, (ValueError, AttributeError, RuntimeError))
    assert str(refused.value).startswith("this BernoulliRBM is not fitted yet: call fit(X)")
    with pytest.raises(ValueError, match=rf"^this {stack.__name__} has not started training: "
                                         r"call fit\(X\) instead$"):
        stack(hidden=[2]).resume(rows)
