"""Noise on the weights, the third kind of lecture "Convolutional neural networks" (2016),
slide "Injecting noise" ("can be applied to input data, to hidden activations, or to weights";
the first two are GaussianNoise): ``kernel_noise=sigma`` trains with kernel + sigma z, z drawn
afresh each update from the layer's Philox key, the same on every backend. Before, dlcore had no
noise on weights."""
import warnings

import numpy as np
import pytest

import dlcore
from conftest import requires_cuda
from dlcore.backend import rng
from dlcore.layers import Conv2D, Dense, Flatten


def data(n=4, seed=0):
    rs = np.random.default_rng(seed)
    return (rs.normal(size=(n, 1, 4, 4)).astype(np.float32),
            np.eye(3, dtype=np.float32)[rs.integers(0, 3, n)])


def network(backend="reference", sigma=0.3, conv=True):
    layers = [Conv2D(2, 3, activation="tanh", kernel_noise=sigma, name="conv"), Flatten()] \
        if conv else [Flatten()]
    model = dlcore.Sequential(layers + [Dense(3, activation="softmax", kernel_noise=sigma,
                                              name="out")],
                              input_shape=(1, 4, 4), backend=backend, seed=5)
    model.compile(dlcore.optimizers.SGD(0.1), "categorical_crossentropy")
    return model


def test_training_computes_with_the_drawn_noisy_kernel_and_predicting_without():
    x, y = data()
    model = network(conv=False)
    layer = model.get_layer("out")
    kernel, bias = layer.get_weights()
    flat = x.reshape(len(x), -1).astype(np.float64)
    step = 4
    noise = rng.normal(kernel.shape[0], kernel.shape[1], layer.seed_, rng.STREAM_WEIGHT_NOISE,
                       step)
    logits = flat @ (kernel + 0.3 * noise) + bias
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    trained = layer.forward(x.reshape(len(x), -1), training=True, step=step)
    np.testing.assert_allclose(trained, expected, atol=1e-5)
    again = np.array(layer.forward(x.reshape(len(x), -1), training=True, step=step + 1))
    assert np.abs(again - expected).max() > 1e-3                    # fresh noise each update
    clean = flat @ kernel + bias
    clean = np.exp(clean - clean.max(1, keepdims=True))
    np.testing.assert_allclose(model.predict(x), clean / clean.sum(1, keepdims=True),
                               atol=1e-5)
    errors = dlcore.gradient_check.gradcheck(network(), x.astype(np.float64), y, verbose=False,
                                             step=step)
    assert max(errors.values()) < 1e-6


def trained(backend, conv):
    x, y = data()
    model = network(backend, conv=conv)
    for _ in range(2):
        model.train_on_batch(x, y)
    return model.get_weights()


@pytest.mark.parametrize("backend, conv", [
    ("cpu", True), pytest.param("cuda", False, marks=requires_cuda)])
def test_every_backend_draws_the_same_noise(backend, conv):
    noisy = trained(backend, conv)
    for mine, expected in zip(noisy, trained("reference", conv)):
        np.testing.assert_allclose(mine, expected, atol=1e-5)


def test_the_noise_changes_training_and_is_kept_by_model_files(tmp_path):
    x, y = data()
    quiet = network(sigma=None)
    quiet.train_on_batch(x, y)
    noisy = network()
    noisy.train_on_batch(x, y)
    assert max(np.abs(a - b).max() for a, b in zip(quiet.get_weights(),
                                                   noisy.get_weights())) > 1e-4
    dlcore.save(noisy, tmp_path / "m.h5")
    assert dlcore.load(tmp_path / "m.h5").get_layer("conv").kernel_noise == 0.3
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        noisy.save(tmp_path / "m.keras")
    notes = [str(warning.message) for warning in caught]
    for name in ("conv", "out"):
        assert any(f"'{name}': its kernel_noise=0.3 (noise on the weights while training) is "
                   f"left out of the Keras file" in note for note in notes), notes
    with pytest.raises(ValueError, match="kernel_noise"):
        Dense(3, kernel_noise=-1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet.save(tmp_path / "quiet.keras")


def test_a_float64_network_draws_the_same_noise_on_the_kernels_as_the_reference():
    """The kernels scaled the noise by float32(sigma) whatever the network's dtype: a float64
    network's noisy outputs (on its weights, and GaussianNoise's on its inputs) were ~2e-8 off
    the reference's, not the same draw."""
    x = np.random.default_rng(0).normal(size=(3, 5))
    outputs = []
    for backend in ("reference", "cpu"):
        model = dlcore.Sequential([dlcore.layers.GaussianNoise(0.3),
                                   Dense(4, kernel_noise=0.2, name="out")],
                                  input_shape=(5,), backend=backend, seed=1)
        model.build((5,), dtype=np.float64)
        noisy = model.layers[0].forward(model.backend.asarray(x, dtype=np.float64),
                                        training=True, step=3)
        outputs.append(np.asarray(model.layers[1].forward(noisy, training=True, step=3)))
    assert outputs[0].dtype == np.float64
    np.testing.assert_allclose(outputs[1], outputs[0], rtol=1e-13, atol=1e-13)
