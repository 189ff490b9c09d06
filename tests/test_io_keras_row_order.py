"""The rows of flattened maps across Keras files, when they are joined before a Dense reads them.

dlcore flattens a (C, H, W) map in C, H, W order, Keras its (H, W, C) map in H, W, C order, so a
Dense reading flattened maps has its kernel's rows permuted between the two. A Concatenate joins
such rows with others: each block is permuted on its own; an Add sums rows, which must share one
order. Oracles: an archive written by Keras 3.15.1 (JAX, tests/fixtures/keras_flat_joins.keras: a
Concatenate of flattened maps, a Dense's outputs and a flattened image; an Add of two flattened
maps) predicts in dlcore as Keras did, and written back holds Keras's own arrays; the row a
weight of a dlcore export lands on, computed index by index from the two orders.
"""
import io
import json
import zipfile

import h5py
import numpy as np
import pytest

import dlcore
from dlcore.layers import BatchNormalization, Conv2D, Dense, Flatten, add, concatenate, multiply
from test_io_keras import fixture, images


def keras_arrays(path):
    """{layer name: [arrays]} of a Keras HDF5 model file (``model_weights``)."""
    with h5py.File(path, "r") as h5file:
        group = h5file["model_weights"]
        return {name: [np.asarray(group[name][path]) for path in
                       group[name].attrs["weight_names"]] for name in group.attrs["layer_names"]}


def archive_kernels(path):
    """{kernel shape: kernel} of a Keras 3 archive's Dense layers (each shape once here)."""
    with zipfile.ZipFile(path) as archive:
        weights = h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r")
        return {weights[f"layers/{name}/vars/0"].shape: np.asarray(weights[f"layers/{name}/vars/0"])
                for name in weights["layers"] if name.startswith("dense")}


def test_a_keras_model_joining_flattened_maps_predicts_as_keras_did(tmp_path):
    saved = np.load(fixture("keras_flat_joins.keras.npz"))
    x = saved["x"].transpose(0, 3, 1, 2)
    model = dlcore.load(fixture("keras_flat_joins.keras"))
    np.testing.assert_allclose(model.predict(x), saved["y"], atol=1e-6)
    # written back, each Dense holds Keras's own rows again
    model.save(tmp_path / "back.h5")
    back = keras_arrays(tmp_path / "back.h5")
    originals = archive_kernels(fixture("keras_flat_joins.keras"))
    assert sorted(originals) == [(60, 2), (60, 4), (76, 3)]
    for name in ("summary", "from_joined", "from_added"):
        kernel = back[name][0]
        np.testing.assert_array_equal(kernel, originals[kernel.shape])
        assert not np.array_equal(kernel, model.get_layer(name).get_weights()[0])


def keras_row(block_start, shape, c, h, w):
    """Where Keras's flat rows put map (C, H, W)'s value at channel c, row h, column w."""
    channels, height, width = shape
    return block_start + (h * width + w) * channels + c


def dlcore_row(block_start, shape, c, h, w):
    channels, height, width = shape
    return block_start + (c * height + h) * width + w


def test_each_block_of_a_concatenation_lands_on_keras_rows(tmp_path):
    """A Dense after concatenate([flattened (2, 3, 4) maps, 5 Dense outputs, the flattened
    (3, 4, 5) image]): the maps' rows move within their block, the Dense outputs stay."""
    image = dlcore.Input(shape=(3, 4, 5))
    maps = Conv2D(2, (2, 2))(image)                       # (2, 3, 4)
    joined = concatenate([Flatten()(maps), Dense(5)(Flatten()(maps)), Flatten()(image)])
    model = dlcore.Model(image, Dense(4, name="reader")(joined), seed=1)
    model.save(tmp_path / "m.h5")
    ours = model.get_layer("reader").get_weights()[0]
    theirs = keras_arrays(tmp_path / "m.h5")["reader"][0]
    blocks = [(0, (2, 3, 4)), (24 + 5, (3, 4, 5))]
    np.testing.assert_array_equal(theirs[24:29], ours[24:29])          # the Dense outputs
    for start, shape in blocks:
        for c in range(shape[0]):
            for h in range(shape[1]):
                for w in range(shape[2]):
                    np.testing.assert_array_equal(theirs[keras_row(start, shape, c, h, w)],
                                                  ours[dlcore_row(start, shape, c, h, w)])
    x = images(2, (3, 4, 5))
    np.testing.assert_allclose(dlcore.load(tmp_path / "m.h5").predict(x), model.predict(x),
                               atol=1e-6)


def test_adding_rows_in_two_orders_is_refused_in_one_line(tmp_path):
    image = dlcore.Input(shape=(3, 4, 4))
    flat = Flatten()(image)
    mixed = add([flat, Dense(48)(flat)])                # maps' rows + a Dense's rows
    model = dlcore.Model(image, Dense(2)(mixed))
    with pytest.raises(ValueError) as error:
        model.save(tmp_path / "m.keras")
    message = str(error.value)
    assert "adds rows in different orders" in message and "before flattening" in message
    assert "\n" not in message
    assert not (tmp_path / "m.keras").exists()


def test_a_normalisation_of_joined_flattened_maps_is_refused(tmp_path):
    image = dlcore.Input(shape=(2, 3, 3))
    joined = concatenate([Flatten()(image), Dense(3)(Flatten()(image))])
    model = dlcore.Model(image, Dense(2)(BatchNormalization()(joined)))
    with pytest.raises(ValueError, match=r"normalises rows flattened from \(2, 3, 3\) maps"):
        model.save(tmp_path / "m.keras")


def test_one_channel_maps_flatten_in_the_same_order(tmp_path):
    """(1, H, W) maps flatten alike in both (H, W, 1): a normalisation after them crosses,
    and the Dense rows stay where they are."""
    model = dlcore.Sequential([Flatten(), BatchNormalization(), Dense(3, name="reader")],
                              input_shape=(1, 4, 4), seed=2)
    model.save(tmp_path / "m.h5")
    np.testing.assert_array_equal(keras_arrays(tmp_path / "m.h5")["reader"][0],
                                  model.get_layer("reader").get_weights()[0])
    with h5py.File(tmp_path / "m.h5", "r") as h5file:
        kinds = [layer["class_name"] for layer in
                 json.loads(h5file.attrs["model_config"])["config"]["layers"]]
    assert "BatchNormalization" in kinds
    x = images(3, (1, 4, 4))
    np.testing.assert_allclose(dlcore.load(tmp_path / "m.h5").predict(x), model.predict(x),
                               atol=1e-6)


@pytest.mark.parametrize("between", [[Flatten()], [dlcore.layers.Activation("gelu"), Flatten()],
                                     [dlcore.layers.Reshape((48,)), Flatten()]],
                         ids=["flatten", "activation, flatten", "reshape, flatten"])
def test_flattening_rows_again_keeps_their_order(tmp_path, between):
    """A Flatten of rows already flat (a nested head starting with one, say) keeps the rows'
    layout: the Dense after it is permuted as after the first Flatten."""
    model = dlcore.Sequential([Conv2D(3, 3), Flatten(), *between, Dense(2, name="reader")],
                              input_shape=(2, 6, 6), seed=2)
    model.save(tmp_path / "m.h5")
    ours = model.get_layer("reader").get_weights()[0]
    theirs = keras_arrays(tmp_path / "m.h5")["reader"][0]
    for c in range(3):
        for h in range(4):
            for w in range(4):
                np.testing.assert_array_equal(theirs[keras_row(0, (3, 4, 4), c, h, w)],
                                              ours[dlcore_row(0, (3, 4, 4), c, h, w)])
    x = images(2, (2, 6, 6))
    np.testing.assert_allclose(dlcore.load(tmp_path / "m.h5").predict(x), model.predict(x),
                               atol=1e-6)


def test_an_output_of_flattened_maps_is_ordered_differently_and_says_so(tmp_path):
    """A feature extractor ending in a Flatten (the lecture's vision model) outputs the same
    values in C, H, W order in dlcore and H, W, C in Keras: exported and imported, a warning
    says so."""
    model = dlcore.Sequential([Conv2D(3, 3), Flatten(name="features")], input_shape=(2, 5, 5))
    with pytest.warns(UserWarning, match="output 'features' holds rows of \\(3, 3, 3\\) maps, "
                                         "which dlcore orders C, H, W and Keras H, W, C"):
        model.save(tmp_path / "m.keras")
    with pytest.warns(UserWarning, match="output 'features' holds rows of"):
        loaded = dlcore.load(tmp_path / "m.keras")
    x = images(2, (2, 5, 5))
    np.testing.assert_allclose(loaded.predict(x), model.predict(x), atol=1e-6)
    image = dlcore.Input(shape=(2, 5, 5))
    two = dlcore.Model(image, [Dense(2, name="head")(Flatten()(image)),
                               Flatten(name="maps")(image)])
    with pytest.warns(UserWarning) as caught:
        two.save(tmp_path / "two.keras")
    notes = [str(warning.message) for warning in caught]
    assert any("output 'maps'" in note for note in notes)
    assert not any("output 'head'" in note for note in notes)


def test_multiplying_rows_in_two_orders_is_refused_in_one_line(tmp_path):
    image = dlcore.Input(shape=(3, 4, 4))
    flat = Flatten()(image)
    gated = multiply([flat, Dense(48, activation="sigmoid")(flat)])   # a gate of the maps
    model = dlcore.Model(image, Dense(2)(gated))
    with pytest.raises(ValueError, match=r"\(Multiply\) merges rows in different orders.*"
                                         r"merge the maps before flattening them"):
        model.save(tmp_path / "m.keras")
    assert not (tmp_path / "m.keras").exists()
