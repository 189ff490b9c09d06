"""A whole network trains the same on every backend.

Oracle: the reference backend (NumPy) with the same seed: the same batches, dropout masks and
initial weights, so after a few updates the weights agree to float32 rounding."""
import numpy as np
import pytest

import dlcore
from conftest import requires_cuda
from dlcore.layers import (
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GaussianNoise,
    ImageAugmentation,
    MaxPool2D,
)


def network(backend):
    model = dlcore.Sequential([
        ImageAugmentation(max_shift=1, horizontal_flip=True),
        Conv2D(3, 3, padding=1, activation="relu"), MaxPool2D(2), Flatten(),
        GaussianNoise(0.1), Dense(6, activation="tanh", kernel_regularizer="l2"), Dropout(0.3),
        Dense(3, activation="softmax")], input_shape=(1, 6, 6), backend=backend, seed=4)
    model.compile("cross_entropy", dlcore.optimizers.Adam(0.01, clipnorm=1.0), ["accuracy"])
    return model


def train(backend, n=12, epochs=2):
    rs = np.random.default_rng(1)
    x = rs.random((n, 1, 6, 6), dtype=np.float32)
    y = rs.integers(0, 3, n)
    model = network(backend)
    history = model.fit(x, y, epochs=epochs, batch_size=4, validation_split=0.25, verbose=0)
    return model, history, x


def assert_same_training(backend, **options):
    reference, history_reference, x = train("reference", **options)
    model, history, _ = train(backend, **options)
    for a, b in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(history.history["loss"], history_reference.history["loss"],
                               rtol=1e-4)
    np.testing.assert_allclose(model.predict(x), reference.predict(x), rtol=1e-4, atol=1e-6)


def test_cpu_training_follows_the_reference():
    assert_same_training("cpu")


@pytest.mark.slow
@requires_cuda
def test_cuda_training_follows_the_reference():
    assert_same_training("cuda", n=4, epochs=1)


def test_lenet5_trains_on_the_cpu_by_default(random_state):
    model = dlcore.models.lenet5(seed=0)
    model.compile(loss="cross_entropy",
                  optimizer=dlcore.optimizers.SGD(learning_rate=0.01, momentum=0.9),
                  metrics=["accuracy"])
    x = random_state.random((64, 1, 28, 28), dtype=np.float32)
    y = random_state.integers(0, 10, 64)
    history = model.fit(x, y, epochs=1, batch_size=16, validation_split=0.25, verbose=0)
    assert model.backend.name in ("cpu", "cuda") and len(history.history["loss"]) == 1
    probabilities = model.predict(x)
    assert probabilities.shape == (64, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)
