"""Ensembles (model averaging, bagging) and Monte Carlo dropout ("dropout as bagging").

Oracles: Philox's uniforms (dlcore.backend.rng) for the bootstrap rows and the MC dropout
masks (dlcore.layers.reference.dropout_mask), the mean of the members' own predictions, a
member trained by hand on its bootstrap sample, the cross-entropy of averaged probabilities
written out, and the expected fraction 1 - 1/e of distinct rows in a bootstrap sample."""
import numpy as np
import pytest

import dlcore
from dlcore.backend import rng
from dlcore.ensemble import Ensemble, bootstrap_rows
from dlcore.layers import Dense, Dropout, GaussianNoise
from dlcore.layers import reference as ref
from dlcore.layers.base import MC_DROPOUT
from dlcore.optimizers import SGD


def blobs(n=60, seed=0):
    rs = np.random.default_rng(seed)
    centres = rs.standard_normal((3, 5)) * 2
    y = rs.integers(0, 3, n)
    return (centres[y] + rs.standard_normal((n, 5))).astype(np.float32), y


def net(seed, layers=None, backend="reference"):
    model = dlcore.Sequential(layers or [Dense(8, activation="relu"),
                                         Dense(3, activation="softmax")],
                              input_shape=(5,), backend=backend, seed=seed)
    model.compile("cross_entropy", SGD(0.1, momentum=0.9), ["accuracy"])
    return model


# -- bootstrap samples ----------------------------------------------------------------------
def test_bootstrap_rows_are_floor_of_philox_uniforms_times_n():
    u = rng.uniform(50, 1, 7, rng.STREAM_BOOTSTRAP, 3)[:, 0].astype(np.float64)
    np.testing.assert_array_equal(bootstrap_rows(50, seed=7, member=3), np.floor(u * 50))


def test_a_bootstrap_sample_holds_about_63_percent_of_the_rows_some_repeated():
    distinct = [len(np.unique(bootstrap_rows(2000, 0, member))) / 2000 for member in range(4)]
    assert all(abs(d - (1 - np.exp(-1))) < 0.02 for d in distinct)
    assert not np.array_equal(bootstrap_rows(2000, 0, 0), bootstrap_rows(2000, 0, 1))
    rows = bootstrap_rows(2000, 0, 0)
    assert rows.min() >= 0 and rows.max() < 2000


def test_bagging_trains_each_member_on_its_own_bootstrap_sample():
    x, y = blobs()
    ensemble = Ensemble([net(1), net(2)], bagging=True, seed=5)
    ensemble.fit(x, y, epochs=2, batch_size=16)
    for member, model in enumerate(ensemble.models):
        rows = bootstrap_rows(len(x), 5, member)
        by_hand = net(member + 1)
        by_hand.fit(x[rows], y[rows], epochs=2, batch_size=16, verbose=0)
        for got, expected in zip(model.get_weights(), by_hand.get_weights()):
            np.testing.assert_array_equal(got, expected)


def test_without_bagging_every_member_sees_all_the_data():
    x, y = blobs()
    ensemble = Ensemble([net(1)])
    ensemble.fit(x, y, epochs=2, batch_size=16)
    by_hand = net(1)
    by_hand.fit(x, y, epochs=2, batch_size=16, verbose=0)
    np.testing.assert_array_equal(ensemble.models[0].get_weights()[0],
                                  by_hand.get_weights()[0])


# -- averaging --------------------------------------------------------------------------------
def test_predict_averages_the_members_probabilities():
    x, _ = blobs(10)
    members = [net(seed) for seed in (1, 2, 3)]
    ensemble = Ensemble(members)
    expected = np.mean([model.predict(x) for model in members], axis=0)
    np.testing.assert_allclose(ensemble.predict(x), expected, rtol=1e-6)
    np.testing.assert_array_equal(ensemble.predict_proba(x), ensemble.predict(x))
    np.testing.assert_array_equal(ensemble.predict_classes(x), expected.argmax(axis=1))


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_evaluate_is_the_cross_entropy_and_accuracy_of_the_average(backend):
    x, y = blobs(20)
    ensemble = Ensemble([net(seed, backend=backend) for seed in (1, 2)])
    p = ensemble.predict(x).astype(np.float64)
    loss, accuracy = ensemble.evaluate(x, y)
    assert loss == pytest.approx(-np.mean(np.log(p[np.arange(20), y])), rel=1e-5)
    assert accuracy == pytest.approx(np.mean(p.argmax(axis=1) == y))


def test_evaluate_and_predict_take_keras_s_verbose(capsys):
    # Keras's evaluate(x, y, batch_size, verbose) and predict(x, batch_size, verbose): an
    # ensemble's raised TypeError on verbose=0, which code written for a network passes
    x, y = blobs(12)
    ensemble = Ensemble([net(seed) for seed in (1, 2)])
    quiet = ensemble.evaluate(x, y, verbose=0)
    assert capsys.readouterr().err == ""
    assert ensemble.evaluate(x, y, 256, 1) == quiet
    said = capsys.readouterr().err.splitlines()
    assert len(said) == 1 and said[0].startswith("evaluate: 12 samples by 2 members in ")
    np.testing.assert_array_equal(ensemble.predict(x, verbose=0), ensemble.predict(x))
    assert capsys.readouterr().err == ""
    ensemble.predict(x, verbose="auto")
    assert capsys.readouterr().err.startswith("predict: 12 samples by 2 members in ")
    with pytest.raises(ValueError, match="verbose must be 0"):
        ensemble.evaluate(x, y, verbose=3)


def test_evaluate_reports_the_accuracy_the_members_were_compiled_with(backend="reference"):
    """Multi-label members compiled with Keras's binary_accuracy: the ensemble's accuracy is
    each output against 0.5 (not the argmax of the row), under the name they log it by (the
    backends' element-wise accuracy: test_metrics_keras_names)."""
    x, _ = blobs(20)
    y = (np.random.default_rng(4).random((20, 3)) > 0.5).astype(np.float32)
    members = []
    for seed in (1, 2):
        member = dlcore.Sequential([Dense(3, activation="sigmoid")], input_shape=(5,),
                                   backend=backend, seed=seed)
        member.compile("binary_crossentropy", "sgd", ["binary_accuracy"])
        members.append(member)
    ensemble = Ensemble(members)
    p = ensemble.predict(x)
    scores = ensemble.evaluate(x, y)
    assert scores.names == ("loss", "binary_accuracy")
    assert scores["binary_accuracy"] == pytest.approx(np.mean((p > 0.5) == (y > 0.5)),
                                                      abs=1e-6)
    assert scores["binary_accuracy"] != pytest.approx(np.mean(p.argmax(1) == y.argmax(1)))
    for member in members:
        member.compile("binary_crossentropy", "sgd", ["acc"])
    assert list(ensemble.evaluate(x, y, return_dict=True)) == ["loss", "acc"]
    for member in members:   # no metrics: the loss alone, as Keras's evaluate
        member.compile("binary_crossentropy", "sgd")
    assert float(ensemble.evaluate(x, y)) == pytest.approx(scores["loss"])
    assert list(ensemble.evaluate(x, y, return_dict=True)) == ["loss"]


def test_an_ensemble_of_overfitting_nets_beats_its_average_member():
    """Lecture "Deep learning I": "different models make different errors"."""
    x, y = blobs(400, seed=1)
    x += np.random.default_rng(9).standard_normal(x.shape).astype(np.float32) * 1.5
    train, test = slice(0, 60), slice(60, None)
    members = [net(seed, [Dense(64, activation="relu"), Dense(3, activation="softmax")])
               for seed in range(5)]
    ensemble = Ensemble(members, bagging=True)
    ensemble.fit(x[train], y[train], epochs=60, batch_size=10)
    member_errors = [np.mean(m.predict_classes(x[test]) != y[test]) for m in members]
    assert np.mean(ensemble.predict_classes(x[test]) != y[test]) < np.mean(member_errors)


@pytest.mark.parametrize("models, error, words", [
    ([], ValueError, "non-empty list"),
    ("net", ValueError, "non-empty list"),
    ([object()], TypeError, "give dlcore networks"),
])
def test_bad_members_are_one_line_errors(models, error, words):
    with pytest.raises(error, match=words):
        Ensemble(models)


def test_logit_members_are_refused():
    model = dlcore.Sequential([Dense(3)], input_shape=(5,), backend="reference")
    model.compile(dlcore.losses.CrossEntropy(from_logits=True), "sgd")
    with pytest.raises(ValueError, match="from_logits=True"):
        Ensemble([model])


# -- Monte Carlo dropout ------------------------------------------------------------------------
def dropout_net(backend="reference", extra=()):
    model = net(4, list(extra) + [Dense(6, activation="relu"), Dropout(0.5),
                                  Dense(3, activation="softmax")], backend)
    return model


def test_mc_dropout_averages_the_networks_of_k_philox_masks():
    x, _ = blobs(7)
    model = dropout_net()
    (kernel1, bias1), (kernel2, bias2) = model.layers[0].get_weights(), \
        model.layers[2].get_weights()
    hidden = np.maximum(x @ kernel1 + bias1, 0)
    seed = model.layers[1].seed_
    expected = np.zeros((7, 3))
    for k in range(5):
        # draw k: one thinned network for every sample, row 0 of the stream at step k
        mask = ref.dropout_mask(1, 6, 0.5, seed, k, rng.STREAM_MC_DROPOUT)
        z = (hidden * mask) @ kernel2 + bias2
        e = np.exp(z - z.max(axis=1, keepdims=True))
        expected += e / e.sum(axis=1, keepdims=True) / 5
    np.testing.assert_allclose(model.predict(x, batch_size=4, mc_dropout=5), expected,
                               rtol=1e-5)


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_an_mc_dropout_prediction_depends_on_the_sample_alone(backend):
    x, _ = blobs(9)
    model = dropout_net(backend)
    whole = model.predict(x, mc_dropout=6)
    for batch_size in (1, 4):
        np.testing.assert_allclose(model.predict(x, batch_size=batch_size, mc_dropout=6), whole,
                                   rtol=1e-6, atol=1e-7)
    for i in (0, 5, 8):
        np.testing.assert_allclose(model.predict(x[i:i + 1], mc_dropout=6)[0], whole[i],
                                   rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(model.predict(x[::-1], mc_dropout=6), whole[::-1], rtol=1e-6,
                               atol=1e-7)


def test_mc_dropout_differs_from_weight_scaling_and_tends_to_it():
    x, _ = blobs(30)
    model = dropout_net()
    scaled = model.predict(x)
    few = model.predict(x, mc_dropout=2)
    many = model.predict(x, mc_dropout=400)
    assert not np.allclose(few, scaled, atol=1e-3)
    assert np.abs(many - scaled).mean() < np.abs(few - scaled).mean()
    np.testing.assert_array_equal(model.predict(x, mc_dropout=2), few)   # seeded


def test_mc_dropout_leaves_noise_off_and_a_net_without_dropout_is_predicted_once_warned():
    x, _ = blobs(6)
    plain = net(3)
    passes = []
    forward = plain.forward
    plain.forward = lambda *args, **kwargs: passes.append(1) or forward(*args, **kwargs)
    with pytest.warns(UserWarning, match=r"mc_dropout=3\): the network has no Dropout layer"):
        np.testing.assert_array_equal(plain.predict(x, mc_dropout=3), plain.predict(x))
    assert len(passes) == 2                    # one pass each, not 3 + 1
    noisy = net(3, [GaussianNoise(5.0), Dense(8, activation="relu"), Dropout(0.0),
                    Dense(3, activation="softmax")])
    noisy.set_weights(plain.get_weights())
    with pytest.warns(UserWarning, match="no Dropout layer"):
        np.testing.assert_allclose(noisy.predict(x, mc_dropout=3), plain.predict(x),
                                   rtol=1e-6)
    dropped = net(3, [GaussianNoise(5.0), Dense(8, activation="relu"), Dropout(0.5),
                      Dense(3, activation="softmax")])
    dropped.set_weights(plain.get_weights())
    expected = dropout_net_of(plain, dropped.layers[2].seed_, x, draws=3)
    np.testing.assert_allclose(dropped.predict(x, mc_dropout=3), expected, rtol=1e-5)


def dropout_net_of(plain, seed, x, draws):
    """The MC dropout average of ``plain``'s two Dense layers with a Dropout(0.5) of key
    ``seed`` between them and no noise."""
    (kernel1, bias1), (kernel2, bias2) = plain.layers[0].get_weights(), \
        plain.layers[1].get_weights()
    hidden = np.maximum(x @ kernel1 + bias1, 0)
    total = 0
    for k in range(draws):
        z = (hidden * ref.dropout_mask(1, 8, 0.5, seed, k, rng.STREAM_MC_DROPOUT)) @ kernel2 \
            + bias2
        e = np.exp(z - z.max(axis=1, keepdims=True))
        total = total + e / e.sum(axis=1, keepdims=True)
    return total / draws


def test_mc_dropout_on_the_cpu_follows_the_reference():
    x, _ = blobs(9)
    np.testing.assert_allclose(dropout_net("cpu").predict(x, mc_dropout=4),
                               dropout_net().predict(x, mc_dropout=4), rtol=1e-5, atol=1e-7)


def test_mc_dropout_masks_are_not_the_training_masks():
    layer = Dropout(0.5).build((40,), backend="reference", seed=3)
    ones = np.ones((8, 40), np.float32)
    trained = layer.forward(ones, training=True, step=2).copy()
    sampled = layer.forward(ones, training=MC_DROPOUT, step=2).copy()
    assert not np.array_equal(trained, sampled)


def test_bad_mc_dropout_is_a_one_line_error():
    with pytest.raises(ValueError, match="mc_dropout"):
        dropout_net().predict(blobs(3)[0], mc_dropout=-1)
