"""Keras's ``sample_weight`` and ``class_weight`` in ``fit``, ``train_on_batch``,
``evaluate`` and ``test_on_batch``: each sample's loss (and its part of the gradient) times its
weight, the batch's loss the sum over the batch size (Keras's "sum_over_batch_size").

Oracles: with whole-number weights and the whole data in one batch, the weighted step is the
unweighted step on the data with each row repeated as often as its weight, its learning rate
scaled by (sum of weights) / n; class weights are the sample weights of each row's class;
the weighted loss by hand from the predictions; Keras 3's own next step
(tests/test_io_keras_real.py).
"""
import numpy as np
import pytest

import dlcore
from dlcore.layers import Dense, Dropout


def network(backend="cpu", seed=1, output="softmax", units=3):
    model = dlcore.Sequential([Dense(5, activation="tanh", input_shape=(4,)),
                               Dense(units, activation=output)], backend=backend, seed=seed)
    return model


def data(n=12, seed=0):
    rs = np.random.default_rng(seed)
    return rs.standard_normal((n, 4)).astype(np.float32), rs.integers(0, 3, n)


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_a_weighted_step_is_the_step_on_rows_repeated_as_often_as_their_weight(backend):
    x, labels = data()
    weights = np.array([0, 1, 2, 3, 1, 0, 2, 1, 1, 4, 0, 2])
    weighted = network(backend)
    weighted.compile("cross_entropy", dlcore.optimizers.SGD(0.1))
    weighted.fit(x, labels, batch_size=len(x), epochs=1, shuffle=False, verbose=0,
                 sample_weight=weights)
    repeated = network(backend)
    repeated.compile("cross_entropy",
                     dlcore.optimizers.SGD(0.1 * weights.sum() / len(x)))
    repeated.fit(np.repeat(x, weights, axis=0), np.repeat(labels, weights), epochs=1,
                 batch_size=int(weights.sum()), shuffle=False, verbose=0)
    for a, b in zip(weighted.get_weights(), repeated.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    unweighted = network(backend)
    unweighted.compile("cross_entropy", dlcore.optimizers.SGD(0.1))
    unweighted.fit(x, labels, batch_size=len(x), epochs=1, verbose=0)
    assert not np.allclose(unweighted.get_weights()[0], weighted.get_weights()[0], atol=1e-4)


def test_class_weights_are_the_sample_weights_of_each_rows_class():
    x, labels = data(40)
    class_weight = {0: 1.0, 1: 5.0}          # class 2 left out: weight 1 (Keras's rule)
    runs = []
    for options in ({"class_weight": class_weight},
                    {"sample_weight": np.array([class_weight.get(c, 1.0) for c in labels])}):
        model = network()
        model.compile("cross_entropy", dlcore.optimizers.SGD(0.1, momentum=0.9))
        runs.append((model.fit(x, labels, epochs=3, batch_size=8, verbose=0,
                               **options).history, model.get_weights()))
    assert runs[0][0]["loss"] == runs[1][0]["loss"]
    for a, b in zip(runs[0][1], runs[1][1]):
        np.testing.assert_array_equal(a, b)
    # one-hot targets: the class is the argmax
    model = network()
    model.compile("cross_entropy", dlcore.optimizers.SGD(0.1, momentum=0.9))
    model.fit(x, np.eye(3)[labels], epochs=3, batch_size=8, verbose=0,
              class_weight=class_weight)
    for a, b in zip(model.get_weights(), runs[0][1]):
        np.testing.assert_array_equal(a, b)


def test_the_weighted_loss_is_the_sum_over_the_batch_size():
    x, labels = data(30)
    model = network()
    model.compile("cross_entropy", "sgd", metrics=["accuracy"])
    weights = np.linspace(0, 2, 30)
    probabilities = model.predict(x)
    per_sample = -np.log(probabilities[np.arange(30), labels])
    scores = model.evaluate(x, labels, batch_size=7, sample_weight=weights, return_dict=True)
    assert scores["loss"] == pytest.approx((weights * per_sample).sum() / 30, rel=1e-5)
    # the metrics are not weighted (Keras's metrics, not weighted_metrics)
    assert scores["accuracy"] == pytest.approx(
        np.mean(probabilities.argmax(axis=1) == labels))
    batch = model.test_on_batch(x, labels, sample_weight=weights, return_dict=True)
    assert batch["loss"] == pytest.approx(scores["loss"], rel=1e-5)
    first = model.train_on_batch(x, labels, sample_weight=weights, return_dict=True)
    assert first["loss"] == pytest.approx(scores["loss"], rel=1e-5)


def test_validation_rows_keep_their_weights():
    x, labels = data(50)
    weights = np.random.default_rng(3).random(50) * 2
    model = network()
    model.compile("cross_entropy", dlcore.optimizers.SGD(1e-30))   # nothing moves
    history = model.fit(x, labels, epochs=1, validation_split=0.2, sample_weight=weights,
                        verbose=0).history
    from dlcore.training import split_validation
    _, _, _, (x_valid, y_valid, w_valid) = split_validation(
        x, np.eye(3, dtype=np.float32)[labels], 0.2, model.seed, weights)
    assert history["val_loss"][0] == pytest.approx(
        model.evaluate(x_valid, y_valid, sample_weight=w_valid)[0], rel=1e-5)
    assert history["val_loss"][0] != pytest.approx(model.evaluate(x_valid, y_valid)[0], rel=1e-3)
    triple = model.fit(x[:40], labels[:40], epochs=1, verbose=0,
                       validation_data=(x[40:], labels[40:], weights[40:])).history
    assert triple["val_loss"][0] == pytest.approx(
        model.evaluate(x[40:], labels[40:], sample_weight=weights[40:])[0], rel=1e-5)


def test_class_weights_weigh_the_training_rows_only_as_kerass():
    """Keras applies ``class_weight`` to the training data alone: ``val_loss`` after
    ``fit(x, y, class_weight=..., validation_split=...)`` is the plain loss of the held-out
    rows (``sample_weight`` there goes with its rows). dlcore weighed the held-out rows by
    their class too: a val_loss, and an EarlyStopping on it, 2.5 times Keras's with weights
    {0: 1, 1: 3}, and a different number for each class weighting of one model."""
    x, labels = data(50)
    model = network()
    model.compile("cross_entropy", dlcore.optimizers.SGD(1e-30))   # nothing moves
    history = model.fit(x, labels, epochs=1, validation_split=0.2, verbose=0,
                        class_weight={0: 1.0, 1: 3.0, 2: 0.5}).history
    from dlcore.training import split_validation
    _, _, (x_valid, y_valid) = split_validation(x, labels, 0.2, model.seed)
    assert history["val_loss"][0] == pytest.approx(model.evaluate(x_valid, y_valid), rel=1e-5)


def test_class_weights_keep_the_weights_of_a_validation_data_triple_as_kerass():
    """Keras's ``fit(class_weight=..., validation_data=(x_val, y_val, w_val))`` weighs the
    validation loss by ``w_val`` (class weights reach the training rows alone): checked with
    Keras 3.15, whose val_loss there equals ``evaluate(x_val, y_val, sample_weight=w_val)``.
    dlcore dropped ``w_val`` whenever class weights were given."""
    x, labels = data(50)
    weights = np.random.default_rng(3).random(10) * 2
    model = network()
    model.compile("cross_entropy", dlcore.optimizers.SGD(1e-30))   # nothing moves
    history = model.fit(x[:40], labels[:40], epochs=1, verbose=0,
                        validation_data=(x[40:], labels[40:], weights),
                        class_weight={0: 1.0, 1: 3.0, 2: 0.5}).history
    assert history["val_loss"][0] == pytest.approx(
        model.evaluate(x[40:], labels[40:], sample_weight=weights)[0], rel=1e-5)


def test_a_functional_model_with_two_outputs_weighs_both():
    from dlcore import Input, Model
    x, labels = data(16)
    inputs = Input((4,))
    hidden = Dense(6, activation="tanh")(inputs)
    model = Model(inputs, [Dense(3, activation="softmax")(hidden), Dense(2)(hidden)], seed=2)
    model.compile(["cross_entropy", "mse"], "sgd")
    targets = [labels, np.random.default_rng(1).random((16, 2)).astype(np.float32)]
    plain = model.evaluate(x, targets)[0]
    assert model.evaluate(x, targets, sample_weight=np.full(16, 2.0))[0] == \
        pytest.approx(2 * plain, rel=1e-5)


def test_misuse_is_refused_in_one_line():
    x, labels = data()
    model = network()
    model.compile("cross_entropy", "sgd")
    with pytest.raises(ValueError, match="fit takes sample_weight or class_weight, not both"):
        model.fit(x, labels, sample_weight=np.ones(12), class_weight={0: 2.0}, verbose=0)
    with pytest.raises(ValueError, match="sample_weight must hold one weight per sample, "
                                         "shape \\(12,\\), got \\(11,\\)"):
        model.fit(x, labels, sample_weight=np.ones(11), verbose=0)
    with pytest.raises(ValueError, match="sample weights must be finite and >= 0"):
        model.fit(x, labels, sample_weight=-np.ones(12), verbose=0)
    with pytest.raises(TypeError, match="class_weight must be a dict"):
        model.fit(x, labels, class_weight=[1.0, 2.0, 3.0], verbose=0)
    with pytest.raises(ValueError, match="not taken with adversarial training"):
        model.fit(x, labels, sample_weight=np.ones(12), adversarial=0.1, verbose=0)
    assert model.n_updates == 0


def test_weights_with_dropout_train_reproducibly():
    """The weights ride with their rows through the shuffled batches."""
    x, labels = data(64)
    weights = np.random.default_rng(5).random(64)
    runs = []
    for _ in range(2):
        model = dlcore.Sequential([Dense(8, activation="relu", input_shape=(4,)), Dropout(0.3),
                                   Dense(3, activation="softmax")], seed=4)
        model.compile("cross_entropy", "adam")
        model.fit(x, labels, epochs=2, batch_size=10, sample_weight=weights, verbose=0)
        runs.append(model.get_weights())
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)
