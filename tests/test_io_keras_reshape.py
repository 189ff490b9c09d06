"""Keras's Reshape across Keras files, both ways.

Both libraries reshape a sample's numbers in their own C order, and dlcore's maps are (C, H, W)
where Keras's are (H, W, C): a Reshape of flat rows into (C, H, W) maps computes the same in both
when Keras's rows are in H, W, C order. Rows flattened from maps of that shape are; a Dense's
outputs are made so by reordering its units (kernel columns and bias) between the two; maps with
one channel need nothing. Anything else is refused in one line. Oracles: an archive written by
Keras 3.15.1 (JAX, tests/fixtures/keras_reshaped.keras: a Dense's units made (3, 3, 4) maps, a
transposed convolution, the maps made rows again) predicts and trains one step in dlcore as in
Keras, and written back holds Keras's own arrays; where each unit of a dlcore export lands,
computed index by index.
"""
import io
import json
import zipfile

import h5py
import numpy as np
import pytest

import dlcore
from dlcore.layers import Conv2D, Dense, Flatten, Reshape
from test_io_keras import fixture, images
from test_io_keras_row_order import keras_arrays


def test_a_keras_decoder_with_reshapes_predicts_and_trains_on_as_in_keras(tmp_path):
    saved = np.load(fixture("keras_reshaped.keras.npz"))
    x, labels = saved["x"], saved["labels"]
    model = dlcore.load(fixture("keras_reshaped.keras"))
    assert [type(layer).__name__ for layer in model.layers] == \
        ["Dense", "ReLU", "Reshape", "Conv2DTranspose", "Reshape", "Dense"]
    assert model.get_layer("to_maps").target_shape == (4, 3, 3)       # Keras's (3, 3, 4)
    np.testing.assert_allclose(model.predict(x), saved["y"], atol=1e-6)
    model.save(tmp_path / "back.h5")
    with zipfile.ZipFile(fixture("keras_reshaped.keras")) as archive:
        weights = h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r")
        original = [np.asarray(weights[f"layers/{name}/vars/{index}"])
                    for name in ("dense", "dense_1") for index in (0, 1)]
    back = keras_arrays(tmp_path / "back.h5")
    for ours, theirs in zip(back["units"] + back["out"], original):
        np.testing.assert_array_equal(ours, theirs)
    assert not np.array_equal(model.get_layer("units").get_weights()[0], original[0])
    model.train_on_batch(x[:8], labels[:8])
    assert np.abs(saved["y_next"] - saved["y"]).max() > 0.01
    np.testing.assert_allclose(model.predict(x), saved["y_next"], atol=1e-6)


def test_each_unit_made_a_map_lands_on_its_keras_unit(tmp_path):
    """Dense(36) -> Reshape((4, 3, 3)): Keras's unit (h W + w) C + c is dlcore's
    (c H + h) W + w, in the kernel's columns and the bias."""
    model = dlcore.Sequential([Dense(36, name="units"), Reshape((4, 3, 3)), Conv2D(2, 2),
                               Flatten(), Dense(3)], input_shape=(5,), seed=1)
    units = model.get_layer("units")
    kernel, bias = units.get_weights()
    units.set_weights([kernel, np.arange(36, dtype=np.float32)])
    model.save(tmp_path / "m.h5")
    theirs_kernel, theirs_bias = keras_arrays(tmp_path / "m.h5")["units"]
    for c in range(4):
        for h in range(3):
            for w in range(3):
                keras_unit, dlcore_unit = (h * 3 + w) * 4 + c, (c * 3 + h) * 3 + w
                np.testing.assert_array_equal(theirs_kernel[:, keras_unit], kernel[:, dlcore_unit])
                assert theirs_bias[keras_unit] == dlcore_unit
    with h5py.File(tmp_path / "m.h5", "r") as h5file:
        layers = json.loads(h5file.attrs["model_config"])["config"]["layers"]
    assert [layer["config"]["target_shape"] for layer in layers
            if layer["class_name"] == "Reshape"] == [[3, 3, 4]]
    x = images(4, (5,))
    np.testing.assert_allclose(dlcore.load(tmp_path / "m.h5").predict(x), model.predict(x),
                               atol=1e-6)


def test_maps_made_rows_by_a_reshape_are_read_as_a_flatten_would(tmp_path):
    model = dlcore.Sequential([Conv2D(3, 2), Reshape((-1,)), Dense(2, name="reader")],
                              input_shape=(2, 4, 4), seed=2)
    model.save(tmp_path / "m.h5")
    ours = model.get_layer("reader").get_weights()[0]
    theirs = keras_arrays(tmp_path / "m.h5")["reader"][0]
    channels, height, width = 3, 3, 3
    for c in range(channels):
        for h in range(height):
            for w in range(width):
                np.testing.assert_array_equal(theirs[(h * width + w) * channels + c],
                                              ours[(c * height + h) * width + w])


def test_flat_rows_become_one_channel_images_without_reordering(tmp_path):
    """Keras's Reshape((28, 28, 1)) of flat MNIST rows is dlcore's Reshape((1, 28, 28))."""
    model = dlcore.Sequential([Reshape((1, 6, 5)), Conv2D(2, 3), Flatten(), Dense(3)],
                              input_shape=(30,), seed=3)
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as archive:
        layers = json.loads(archive.read("config.json"))["config"]["layers"]
    assert layers[1]["class_name"] == "Reshape" and \
        layers[1]["config"]["target_shape"] == [6, 5, 1]
    x = images(3, (30,))
    loaded = dlcore.load(tmp_path / "m.keras")
    assert loaded.layers[0].target_shape == (1, 6, 5)
    np.testing.assert_allclose(loaded.predict(x), model.predict(x), atol=1e-6)


@pytest.mark.parametrize("build", [
    lambda: dlcore.Sequential([Reshape((3, 2, 2)), Flatten(), Dense(2)], input_shape=(12,)),
    lambda: dlcore.Sequential([Flatten(), Reshape((2, 3, 2)), Flatten(), Dense(2)],
                              input_shape=(3, 2, 2)),
], ids=["plain rows", "rows of other maps"])
def test_a_reshape_keras_would_order_differently_is_refused_in_one_line(tmp_path, build):
    with pytest.raises(ValueError) as error:
        build().save(tmp_path / "m.keras")
    message = str(error.value)
    assert "(Reshape): Keras and dlcore would order its" in message and "\n" not in message
    assert not (tmp_path / "m.keras").exists()


def test_one_dense_reshaped_into_two_maps_is_refused(tmp_path):
    inputs = dlcore.Input((4,))
    units = Dense(12, name="units")(inputs)
    model = dlcore.Model(inputs, [Reshape((3, 2, 2))(units), Reshape((2, 3, 2))(units)])
    with pytest.raises(ValueError, match="'units' .Dense. feeds reshapes to different maps"):
        model.save(tmp_path / "m.keras")


@pytest.mark.parametrize("target, message", [
    ([2, 2, 4], "its target_shape [2, 2, 4] does not hold the 36 values of a sample"),
    ([2**31, 2**31, 3], "its target_shape [2147483648, 2147483648, 3] is not 1 to 3 positive"),
    ([-1, -1, 4], "is not 1 to 3 positive sizes (one may be -1)"),
    ([5, -1], "its target_shape [5, -1] does not hold the 36 values"),
])
def test_a_bad_keras_target_is_refused_in_keras_terms(tmp_path, target, message):
    """The message quotes the file's target (H, W, C), not dlcore's (C, H, W)."""
    from test_io_keras import with_layer_config
    with pytest.raises(dlcore.ModelFileError) as error:
        dlcore.load(with_layer_config(tmp_path, "keras_reshaped.keras", "to_maps",
                                      target_shape=target))
    assert message in str(error.value) and "\n" not in str(error.value)
