"""Activity regularisation: a penalty on a layer's outputs (lecture "Convolutional neural
networks" (2016), "Sparse representations": an L1 penalty on the hidden representation h makes
it sparse), written as Keras users write it, ``Dense(..., activity_regularizer=l1(1e-3))``.

Keras 3 adds penalty(h) / batch size to the loss (keras/src/layers/layer.py, ``__call__``);
dlcore adds each sample's penalty to its loss, whose batch mean is the same number. Before, the
argument was refused.
"""
import numpy as np
import pytest

import dlcore
from conftest import requires_cuda
from dlcore.layers import Conv2D, Dense, Flatten
from dlcore.regularizers import L1, L1L2, L2
from test_io_keras import real_keras


def data(n=6, seed=0):
    rs = np.random.default_rng(seed)
    x = rs.normal(size=(n, 1, 5, 5)).astype(np.float32)
    return x, np.eye(3, dtype=np.float32)[rs.integers(0, 3, n)]


def penalised_net(backend="reference", penalised=True):
    model = dlcore.Sequential([
        Conv2D(2, 3, activation="relu", activity_regularizer=L1(0.02) if penalised else None,
               name="conv"),
        Flatten(),
        Dense(4, activation="tanh", activity_regularizer=L1L2(0.03, 0.04) if penalised else None,
              name="hidden"),
        Dense(3, activation="softmax", activity_regularizer=L2(0.05) if penalised else None,
              name="out")],
        input_shape=(1, 5, 5), backend=backend, seed=3)
    model.compile("sgd", "categorical_crossentropy")
    return model


def test_the_penalty_is_the_batch_mean_of_each_samples_and_enters_the_gradient():
    x, y = data()
    model, plain = penalised_net(), penalised_net(penalised=False)
    outputs = {}
    h = x
    for layer in model.layers:
        h = layer(h)
        outputs[layer.name] = h.reshape(len(h), -1).astype(np.float64)
    expected = (0.02 * np.abs(outputs["conv"]).sum()
                + 0.03 * np.abs(outputs["hidden"]).sum()
                + 0.04 / 2 * (outputs["hidden"] ** 2).sum()
                + 0.05 / 2 * (outputs["out"] ** 2).sum()) / len(x)
    assert model.evaluate(x, y, verbose=0) == pytest.approx(
        plain.evaluate(x, y, verbose=0) + expected, rel=1e-5)
    errors = dlcore.gradient_check.gradcheck(model, x.astype(np.float64), y, verbose=False)
    assert max(errors.values()) < 1e-6


def test_sample_weights_weigh_the_data_loss_and_not_the_penalty_in_evaluate_as_in_fit():
    """Keras 3 adds the activity penalty to the weighted loss unweighted; evaluate weighed it
    with the samples (a sample of weight 0 lost its penalty), where fit did not."""
    x, y = data()
    weights = np.array([0.5, 2.0, 0.0, 1.0, 3.0, 1.5], np.float32)
    model, plain = penalised_net(), penalised_net(penalised=False)
    penalty = model.evaluate(x, y, verbose=0) - plain.evaluate(x, y, verbose=0)
    assert penalty > 0.01
    weighted = model.evaluate(x, y, verbose=0, sample_weight=weights)
    assert weighted == pytest.approx(
        plain.evaluate(x, y, verbose=0, sample_weight=weights) + penalty, rel=1e-5)
    assert float(model.train_on_batch(x, y, sample_weight=weights)) == pytest.approx(
        weighted, rel=1e-5)


def train(backend, convolution):
    x, y = data(4)
    model = penalised_net(backend)
    if not convolution:   # the simulator runs kernels in Python threads: Dense layers only
        model = dlcore.Sequential(model.layers[2:], input_shape=(25,), backend=backend, seed=3)
        model.compile("sgd", "categorical_crossentropy")
        x = x.reshape(len(x), -1)
    losses = [model.train_on_batch(x, y) for _ in range(2)]
    return np.array(losses), model.get_weights()


@pytest.mark.parametrize("backend, convolution", [
    ("cpu", True), pytest.param("cuda", False, marks=requires_cuda)])
def test_kernels_train_as_the_reference(backend, convolution):
    losses, weights = train(backend, convolution)
    reference_losses, reference_weights = train("reference", convolution)
    np.testing.assert_allclose(losses, reference_losses, rtol=1e-5)
    for mine, expected in zip(weights, reference_weights):
        np.testing.assert_allclose(mine, expected, atol=1e-5)


@pytest.mark.parametrize("save", [dlcore.save, lambda model, path: model.save(path)],
                         ids=["dlcore", "keras-legacy-h5"])
def test_it_is_kept_by_model_files_and_given_as_keras_names(tmp_path, save):
    model = penalised_net()
    save(model, tmp_path / "m.h5")
    back = dlcore.load(tmp_path / "m.h5")
    for name in ("conv", "hidden", "out"):
        a, b = model.get_layer(name).activity_regularizer, back.get_layer(name).activity_regularizer
        assert (type(a), a.l1, a.l2) == (type(b), b.l1, b.l2)
    x, y = data()
    assert back.evaluate(x, y, verbose=0) == pytest.approx(model.evaluate(x, y, verbose=0))
    keras_l2 = Dense(3, activity_regularizer=dlcore.regularizers.l2(0.01))
    assert keras_l2.activity_regularizer.l2 == pytest.approx(0.02)   # Keras's 0.01 ||h||^2
    with pytest.raises(ValueError, match="activity_regularizer must be None"):
        Dense(3, activity_regularizer=0.1)


@pytest.mark.slow   # importing Keras and PyTorch alone takes most of its ~10 s
def test_losses_equal_keras_on_the_same_weights_and_batch_both_ways(tmp_path):
    keras = real_keras()
    x, y = data()
    model = penalised_net()
    model.save(tmp_path / "from_dlcore.keras")
    in_keras = keras.saving.load_model(tmp_path / "from_dlcore.keras")
    nhwc = x.transpose(0, 2, 3, 1)
    keras_loss = float(in_keras.evaluate(nhwc, y, verbose=0, batch_size=len(x)))
    assert keras_loss == pytest.approx(model.evaluate(x, y, verbose=0), abs=1e-6)
    in_keras.save(tmp_path / "from_keras.keras")
    back = dlcore.load(tmp_path / "from_keras.keras")
    assert back.get_layer("hidden").activity_regularizer.l2 == pytest.approx(0.04)
    assert back.evaluate(x, y, verbose=0) == pytest.approx(keras_loss, abs=1e-6)
