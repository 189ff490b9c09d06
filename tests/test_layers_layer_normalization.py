"""LayerNormalization (Ba, Kiros & Hinton 2016), as Keras's: each sample normalised over its
channels (at each pixel of an image, over a row's features), then scaled and shifted.

Oracles: the definition in plain loops over samples and pixels; central finite differences
(gradcheck) for the gradients through the per-sample statistics; the cpu and cuda (simulator)
kernels against the NumPy reference; an archive written by Keras 3.15.1 (JAX,
tests/fixtures/keras_layer_norm.keras: one after a convolution, one after a Dense without beta)
predicts as Keras did and, trained one more step in dlcore, lands where Keras's next step did.
"""
import numpy as np
import pytest

import dlcore
from conftest import requires_cuda
from dlcore.layers import Conv2D, Dense, Flatten, LayerNormalization
from test_io_keras import edited_archive, fixture, with_layer_config
from test_layers_kernels import assert_backends_agree, images


def by_loops(x, gamma, beta, epsilon):
    """y[i, :, p] for every sample i and pixel p of x (n, C, P), one at a time."""
    y = np.empty_like(x, dtype=np.float64)
    for i in range(x.shape[0]):
        for p in range(x.shape[2]):
            column = x[i, :, p].astype(np.float64)
            mean = column.sum() / len(column)
            variance = ((column - mean) ** 2).sum() / len(column)
            y[i, :, p] = gamma * (column - mean) / np.sqrt(variance + epsilon) + beta
    return y


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_each_sample_is_normalised_over_its_channels_at_each_pixel(backend):
    x = images(3, 4, 2, 5) * 3 + 1
    layer = LayerNormalization(epsilon=0.01).build((4, 2, 5), backend=backend, seed=1)
    gamma, beta = np.linspace(0.5, 2, 4), np.linspace(-1, 1, 4)
    layer.set_weights([gamma, beta])
    expected = by_loops(x.reshape(3, 4, 10), gamma, beta, 0.01).reshape(x.shape)
    np.testing.assert_allclose(layer.forward(x, training=True), expected, rtol=2e-5,
                               atol=2e-5)
    # no batch statistics: training and evaluation agree, and a sample alone is the same
    np.testing.assert_array_equal(layer.forward(x), layer.forward(x, training=True))
    np.testing.assert_allclose(layer.forward(x[1:2]), expected[1:2], rtol=2e-5, atol=2e-5)


def test_rows_are_normalised_over_their_features():
    x = images(4, 7) * 2 - 1
    layer = LayerNormalization(axis=-1).build((7,), backend="reference")
    y = layer.forward(x)
    np.testing.assert_allclose(y.mean(axis=1), 0, atol=1e-6)
    np.testing.assert_allclose(y.var(axis=1), x.var(axis=1) / (x.var(axis=1) + 1e-3),
                               rtol=1e-5)


@pytest.mark.parametrize("center, scale", [(True, True), (False, True), (True, False),
                                           (False, False)])
@pytest.mark.parametrize("shape", [(5,), (3, 4, 4)])
def test_the_gradients_match_finite_differences(center, scale, shape):
    head = [Flatten()] if len(shape) == 3 else []
    first = Conv2D(3, 2) if len(shape) == 3 else Dense(5)
    model = dlcore.Sequential([first, LayerNormalization(center=center, scale=scale)] + head +
                              [Dense(3, activation="softmax")], input_shape=shape,
                              backend="reference", seed=3)
    model.compile("cross_entropy", "sgd")
    if scale:   # gamma away from 1, so that a gradient ignoring it would show
        norm = model.layers[1]
        norm.params["gamma"][...] = np.linspace(0.5, 1.5, norm.params["gamma"].size)
    rs = np.random.default_rng(3)
    errors = dlcore.gradcheck(model, rs.standard_normal((3,) + shape), rs.integers(0, 3, 3),
                              verbose=False)
    assert max(errors.values()) < 1e-6, errors
    assert ("layer_normalization/gamma" in errors) == scale
    assert ("layer_normalization/beta" in errors) == center


@pytest.mark.parametrize("options", [{}, {"center": False}, {"scale": False, "epsilon": 0.1}])
def test_cpu_layer_normalization_follows_the_reference(options):
    assert_backends_agree(lambda: LayerNormalization(**options), images(5, 13) * 3 + 1)
    assert_backends_agree(lambda: LayerNormalization(**options), images(3, 4, 5, 6) * 3 + 1)


def test_cpu_layer_normalization_of_a_large_batch_follows_the_reference():
    """Large enough to run in parallel on the cpu (rows split across the threads)."""
    assert_backends_agree(lambda: LayerNormalization(), images(64, 8, 12, 12) * 2 - 1)


@requires_cuda
def test_cuda_layer_normalization_follows_the_reference():
    assert_backends_agree(lambda: LayerNormalization(center=False), images(2, 3, 3, 4),
                          backend="cuda")
    assert_backends_agree(lambda: LayerNormalization(), images(3, 6), backend="cuda")


def test_bad_settings_are_refused_in_one_line():
    with pytest.raises(ValueError, match="axis must be 1"):
        LayerNormalization(axis=2)
    with pytest.raises(ValueError, match="epsilon must be in"):
        LayerNormalization(epsilon=0)
    with pytest.raises(ValueError, match="axis=-1 would normalise the width of NCHW images: "
                                         "dlcore's channels are axis 1 "
                                         "\\(LayerNormalization\\(\\) or axis=1\\)"):
        LayerNormalization(axis=-1).build((3, 4, 4))


def test_it_keeps_through_files_and_trains_data_parallel_free(tmp_path):
    model = dlcore.Sequential([Dense(6, input_shape=(4,)),
                               LayerNormalization(epsilon=0.01, center=False),
                               Dense(3, activation="softmax")], seed=3)
    model.compile("cross_entropy", dlcore.optimizers.SGD(0.1))
    x, y = images(32, 4), np.arange(32) % 3
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    dlcore.save(model, tmp_path / "m.h5")               # dlcore's own format
    loaded = dlcore.load(tmp_path / "m.h5")
    norm = loaded.layers[1]
    assert (norm.epsilon, norm.center, norm.scale) == (0.01, False, True)
    assert not np.allclose(norm.params["gamma"], 1)         # trained
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert [array.shape for array in loaded.get_weights()] == [(4, 6), (6,), (6,), (6, 3), (3,)]


def test_a_keras_model_with_layer_normalization_trains_on_in_dlcore_as_in_keras(tmp_path):
    saved = np.load(fixture("keras_layer_norm.keras.npz"))
    x, labels = saved["x"].transpose(0, 3, 1, 2), saved["labels"]
    model = dlcore.load(fixture("keras_layer_norm.keras"))
    conv_norm, hidden_norm = model.get_layer("conv_norm"), model.get_layer("hidden_norm")
    assert isinstance(conv_norm, LayerNormalization)
    assert (hidden_norm.epsilon, hidden_norm.center) == (1e-2, False)
    np.testing.assert_allclose(model.predict(x), saved["y"], atol=1e-6)
    for suffix in (".keras", ".h5"):               # back to Keras's files, before training on
        model.save(tmp_path / f"back{suffix}")
        np.testing.assert_allclose(dlcore.load(tmp_path / f"back{suffix}").predict(x),
                                   saved["y"], atol=1e-6)
    model.train_on_batch(x[:8], labels[:8])
    assert np.abs(saved["y_next"] - saved["y"]).max() > 0.01
    np.testing.assert_allclose(model.predict(x), saved["y_next"], atol=1e-6)


def _normalise_flattened_rows(config):
    """Move the convolution's LayerNormalization after the Flatten (4 * 4 * 4 features)."""
    layers = config["config"]["layers"]
    names = [layer["config"]["name"] for layer in layers]
    norm = layers.pop(names.index("conv_norm"))
    layers.insert(names.index("flatten"), norm)


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["config"]["layers"][2]["config"].update(rms_scaling=True),
     "a LayerNormalization with rms_scaling is not imported"),
    (lambda c: c["config"]["layers"][2]["config"].update(axis=[1, 2, 3]),
     "only a normalisation over the channels (axis -1) is imported"),
    (lambda c: c["config"]["layers"][2]["config"].update(gamma_regularizer={
        "module": "keras.regularizers", "class_name": "L2", "config": {"l2": 0.1}}),
     "a gamma_regularizer is not imported"),
    (_normalise_flattened_rows, "normalises rows flattened from (4, 4, 4) maps"),
])
def test_what_dlcore_cannot_import_is_refused_in_one_line(tmp_path, edit, message):
    with pytest.raises(dlcore.ModelFileError) as error:
        dlcore.load(edited_archive(tmp_path, "keras_layer_norm.keras", edit))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_keras_2_axis_list_of_the_channels_is_the_channels(tmp_path):
    """Keras writes ``axis: [3]`` for the last axis of a rank-4 NHWC tensor."""
    model = dlcore.load(with_layer_config(tmp_path, "keras_layer_norm.keras", "conv_norm",
                                          axis=[3]))
    assert isinstance(model.get_layer("conv_norm"), LayerNormalization)


def test_exporting_a_normalisation_of_flattened_maps_is_refused(tmp_path):
    model = dlcore.Sequential([Conv2D(2, 3, input_shape=(1, 5, 5)), Flatten(),
                               LayerNormalization(), Dense(2, activation="softmax")])
    with pytest.raises(ValueError, match="'layer_normalization' \\(LayerNormalization\\) "
                                         "normalises rows flattened from \\(2, 3, 3\\) maps"):
        model.save(tmp_path / "m.keras")
    assert not (tmp_path / "m.keras").exists()
