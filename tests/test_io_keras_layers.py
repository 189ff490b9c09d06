"""Keras files with up-sampling, transposed convolutions, augmentation layers, and functional
graphs whose layers are listed out of call order (dlcore/io/keras.py).

Oracles: Keras's own predictions stored beside the files Keras 3 wrote (tests/fixtures/), the
NumPy reimplementation of Keras's layers of test_io_keras.py (itself held to those predictions
here, so it can check what dlcore exports), and the layouts Keras documents.
"""
import json
import re
import shutil
import warnings

import h5py
import numpy as np
import pytest

import dlcore
from dlcore.layers import (
    Conv2D,
    Conv2DTranspose,
    Dense,
    Flatten,
    ImageAugmentation,
    MaxPool2D,
    UpSampling2D,
)
from dlcore.models import unet_small
from test_io_keras import fixture, images, keras_data, keras_numpy_predict, real_keras


def nhwc_output(y):
    return y.transpose(0, 2, 3, 1) if y.ndim == 4 else y


def config_of(path):
    with h5py.File(path, "r") as h5file:
        return json.loads(h5file.attrs["model_config"])


def entry(config, name):
    """The layer entry named ``name`` of a model config's body."""
    return [item for item in config["layers"] if item["config"]["name"] == name][0]


def edited(tmp_path, name, edit):
    path = str(tmp_path / f"edited_{name}.h5")
    shutil.copy(fixture(f"keras_{name}.h5"), path)
    with h5py.File(path, "r+") as h5file:
        config = json.loads(h5file.attrs["model_config"])
        edit(config["config"])
        h5file.attrs["model_config"] = json.dumps(config)
    return path


# --------------------------------------------------------------------------------------------
# UpSampling2D and Conv2DTranspose
# --------------------------------------------------------------------------------------------
def test_a_keras_unet_imports_with_its_up_sampling_and_transposed_convolutions():
    model = dlcore.load(fixture("keras_unet.h5"))
    layers = {layer.name: layer for layer in model.layers}
    assert layers["up_nearest"].interpolation == "nearest"
    assert layers["up_bilinear"].interpolation == "bilinear"
    assert isinstance(layers["up_valid"], Conv2DTranspose) and layers["up_valid"].padding == \
        "valid"
    assert layers["up_same"].padding == "same" and layers["up_same"].activation == "relu"
    x, _, y_keras = keras_data("unet")
    np.testing.assert_allclose(nhwc_output(model.predict(x)), y_keras, atol=1e-4)
    np.testing.assert_allclose(nhwc_output(model.clone(backend="cpu").predict(x)), y_keras,
                               atol=1e-4)


def test_transposed_kernels_keep_their_orientation_on_non_square_maps():
    """Keras's (k_h, k_w, filters, channels) kernel of a (3, 2) filter with strides (2, 1): a
    kernel flipped or transposed the wrong way predicts otherwise."""
    model = dlcore.load(fixture("keras_transposed.h5"))
    first = model.layers[0]
    assert first.kernel_size == (3, 2) and first.strides == (2, 1)
    assert first.get_weights()[0].shape == (3, 2, 3, 2)       # (channels, filters, kh, kw)
    with h5py.File(fixture("keras_transposed.h5"), "r") as h5file:
        keras_kernel = h5file["model_weights/transpose_valid/transposed/transpose_valid/"
                              "kernel"][()]
    np.testing.assert_array_equal(first.get_weights()[0], keras_kernel.transpose(3, 2, 0, 1))
    x, _, y_keras = keras_data("transposed")
    np.testing.assert_allclose(model.predict(x), y_keras, atol=1e-4)


def test_the_numpy_keras_of_the_tests_agrees_with_keras_on_up_sampling_and_transposes():
    _, x_nhwc, y_keras = keras_data("transposed")
    np.testing.assert_allclose(keras_numpy_predict(fixture("keras_transposed.h5"), x_nhwc),
                               y_keras, atol=1e-5)


def up_and_down():
    model = dlcore.Sequential([
        Conv2DTranspose(2, (3, 2), strides=(2, 1), activation="relu", name="t_valid"),
        Conv2DTranspose(3, 4, strides=3, padding="same", name="t_same"),
        UpSampling2D((2, 1), "bilinear", name="up_bilinear"),
        UpSampling2D((1, 3), name="up_nearest"),
        MaxPool2D((6, 9), name="pool"),
        Flatten(name="flatten"), Dense(2, activation="softmax", name="out")],
        input_shape=(3, 3, 2), backend="reference", seed=7)
    for layer in model.layers:
        if layer.weight_names:
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, np.linspace(-0.3, 0.3, bias.size)])
    return model


def test_up_sampling_and_transposes_export_in_keras_layouts(tmp_path):
    model = up_and_down()
    path = tmp_path / "up.h5"
    dlcore.save(model, path, format="keras")
    config = config_of(path)["config"]["layers"]
    assert [entry["class_name"] for entry in config[1:5]] == [
        "Conv2DTranspose", "Conv2DTranspose", "UpSampling2D", "UpSampling2D"]
    assert config[1]["config"]["strides"] == [2, 1] and config[2]["config"]["padding"] == "same"
    assert config[3]["config"]["interpolation"] == "bilinear" and \
        config[4]["config"]["size"] == [1, 3]
    with h5py.File(path, "r") as h5file:
        kernel = h5file[f"model_weights/t_valid/{model.name}/t_valid/kernel"][()]
    np.testing.assert_array_equal(kernel, model.layers[0].get_weights()[0].transpose(2, 3, 1, 0))
    x = images(3, model.input_shape)
    np.testing.assert_allclose(keras_numpy_predict(path, x.transpose(0, 2, 3, 1)),
                               model.predict(x), atol=1e-5)
    np.testing.assert_allclose(dlcore.load(path).predict(x), model.predict(x), atol=1e-6)


def test_unet_small_exports_to_keras_and_loads_back(tmp_path):
    model = unet_small(input_shape=(1, 8, 8), backend="reference", seed=4)
    path = tmp_path / "unet.h5"
    dlcore.save(model, path, format="keras")
    layers = {entry["name"]: entry for entry in config_of(path)["config"]["layers"]}
    assert layers["up1"]["class_name"] == "Conv2DTranspose"
    assert layers["skip1"]["config"]["axis"] == -1          # the channels, NHWC
    x = images(2, (1, 8, 8))
    again = dlcore.load(path)
    assert isinstance(again, dlcore.Model)
    np.testing.assert_allclose(again.predict(x), model.predict(x), atol=1e-6)


@pytest.mark.parametrize("edit, expected", [
    (lambda c: entry(c, "up_bilinear")["config"].update(interpolation="bicubic"),
     "'up_bilinear' (UpSampling2D) cannot be imported: UpSampling2D interpolation"),
    (lambda c: entry(c, "up_valid")["config"].update(output_padding=[1, 1]),
     "'up_valid' (Conv2DTranspose) cannot be imported: an output_padding"),
    (lambda c: entry(c, "up_same")["config"].update(dilation_rate=[2, 2]),
     "'up_same' (Conv2DTranspose) cannot be imported: dilation"),
])
def test_what_up_sampling_import_cannot_do_is_refused_in_one_line(tmp_path, edit, expected):
    path = edited(tmp_path, "unet", edit)
    with pytest.raises(dlcore.ModelFileError) as caught:
        dlcore.load(path)
    message = str(caught.value)
    assert "\n" not in message and expected in message, message


# --------------------------------------------------------------------------------------------
# Graphs listed out of call order
# --------------------------------------------------------------------------------------------
def test_a_shared_layer_whose_second_call_reads_a_later_layer_imports():
    """Keras lists 'shared' before 'late', whose output its second call reads: the call waits."""
    names = [entry["name"] for entry in config_of(fixture("keras_shared_late.h5"))["config"]
             ["layers"]]
    assert names.index("shared") < names.index("late")
    model = dlcore.load(fixture("keras_shared_late.h5"))
    assert [layer.name for layer in model.layers].count("shared") == 1
    x, _, y_keras = keras_data("shared_late")
    np.testing.assert_allclose(model.predict(x), y_keras, atol=1e-4)


@pytest.mark.parametrize("name", ["shared_late", "residual", "unet"])
def test_a_graph_imports_the_same_whatever_the_order_of_its_layers(tmp_path, name):
    x, _, y_keras = keras_data(name)
    for seed in range(3):
        path = edited(tmp_path, name, lambda c, seed=seed: np.random.default_rng(seed).shuffle(
            c["layers"]))
        np.testing.assert_allclose(nhwc_output(dlcore.load(path).predict(x)), y_keras,
                                   atol=1e-4)


def test_a_call_whose_input_no_layer_makes_is_refused_in_one_line(tmp_path):
    def loop(config):   # 'late' now reads the second call of 'shared', which reads 'late'
        node = entry(config, "late")["inbound_nodes"][0]
        node["args"][0]["config"]["keras_history"] = ["shared", 1, 0]
    with pytest.raises(dlcore.ModelFileError) as caught:
        dlcore.load(edited(tmp_path, "shared_late", loop))
    message = str(caught.value)
    assert "\n" not in message and "is made by no layer of the model" in message, message


# --------------------------------------------------------------------------------------------
# Augmentation layers
# --------------------------------------------------------------------------------------------
def test_augmentation_exports_as_keras_random_flip_and_translation(tmp_path):
    model = dlcore.Sequential([ImageAugmentation(2, horizontal_flip=True, name="augment"),
                               Conv2D(2, 3), Flatten(), Dense(2, activation="softmax")],
                              input_shape=(1, 8, 10), backend="reference")
    path = tmp_path / "augmented.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dlcore.save(model, path, format="keras")
    layers = config_of(path)["config"]["layers"]
    assert [entry["class_name"] for entry in layers[1:3]] == ["RandomFlip", "RandomTranslation"]
    assert layers[1]["config"]["mode"] == "horizontal"
    shift = layers[2]["config"]
    assert (shift["height_factor"], shift["width_factor"]) == (2 / 8, 2 / 10)
    assert shift["fill_mode"] == "constant" and shift["interpolation"] == "nearest"
    x = images(2, (1, 8, 10))
    np.testing.assert_allclose(keras_numpy_predict(path, x.transpose(0, 2, 3, 1)),
                               model.predict(x), atol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = dlcore.load(path)
    first = again.layers[0]
    assert isinstance(first, ImageAugmentation) and (first.max_shift, first.horizontal_flip) == \
        (2, True)
    np.testing.assert_allclose(again.predict(x), model.predict(x), atol=1e-6)


@pytest.mark.parametrize("options", [{"max_rotation": 10}, {"max_zoom": 0.1}],
                         ids=["rotation", "zoom"])
def test_a_rotation_has_no_keras_match_and_is_left_out_with_a_note(tmp_path, options):
    model = dlcore.Sequential([ImageAugmentation(1, name="turn", **options), Flatten(),
                               Dense(2)], input_shape=(1, 4, 4), backend="reference")
    with pytest.warns(UserWarning, match="'turn' .* left out of the Keras file: Keras's "
                                         "RandomRotation and RandomZoom"):
        dlcore.save(model, tmp_path / "turn.h5", format="keras")
    assert "ImageAugmentation" not in json.dumps(config_of(tmp_path / "turn.h5"))


@pytest.mark.parametrize("max_shift, horizontal_flip", [(30, False), (28, True)])
def test_a_shift_as_large_as_the_images_is_left_out_of_the_keras_file(
        tmp_path, max_shift, horizontal_flip):
    """Oracle: Keras 3 itself loads the file. max_shift=30 on 28x28 images was written as
    RandomTranslation(height_factor=1.07...), a factor Keras refuses ("Error when
    deserializing class 'RandomTranslation'"): the whole file was unreadable in Keras."""
    model = dlcore.Sequential([ImageAugmentation(max_shift, horizontal_flip, name="augment"),
                               Flatten(), Dense(2)], input_shape=(1, 28, 28),
                              backend="reference")
    path = tmp_path / "shifted.h5"
    with pytest.warns(UserWarning, match=f"'augment' .*max_shift={max_shift} is left out of "
                                         f"the Keras file: it moves 28x28 images entirely"):
        dlcore.save(model, path, format="keras")
    kinds = [layer.__class__.__name__ for layer in
             real_keras().models.load_model(path, compile=False).layers]
    assert "RandomTranslation" not in kinds and ("RandomFlip" in kinds) == horizontal_flip


def test_keras_augmentation_imports_where_it_maps_and_is_left_out_with_a_warning_otherwise():
    with pytest.warns(UserWarning) as caught:
        model = dlcore.load(fixture("keras_augmented.h5"))
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "'vertical_flip' (RandomFlip) is left out" in messages[0]
    first = model.layers[0]
    assert isinstance(first, ImageAugmentation)
    assert (first.max_shift, first.horizontal_flip, first.max_rotation) == (2, True, 0.0)
    assert sum(isinstance(layer, ImageAugmentation) for layer in model.layers) == 1
    x, _, y_keras = keras_data("augmented")
    np.testing.assert_allclose(model.predict(x), y_keras, atol=1e-4)


@pytest.mark.parametrize("change, why", [
    ({"height_factor": 0.1}, "shifts by up to 0.8 pixels"),
    ({"fill_mode": "reflect"}, "fills with 'reflect'"),
    ({"interpolation": "bilinear"}, "interpolates between pixels"),
    ({"width_factor": 0.125}, "2 rows and 1 columns"),
    ({"height_factor": 1.0, "width_factor": [-1.0, 1.0]},
     "shifts 8x8 images by up to 8 pixels, entirely out of the picture .* give a "
     "height_factor below 1 and a width_factor below 1"),
])
def test_a_translation_dlcore_does_not_have_is_left_out_naming_why(tmp_path, change, why):
    path = edited(tmp_path, "augmented", lambda c: entry(c, "shift")["config"].update(change))
    with pytest.warns(UserWarning) as caught:
        model = dlcore.load(path)
    assert any("'shift' (RandomTranslation) is left out" in str(w.message) and
               re.search(why, str(w.message)) for w in caught), [str(w.message) for w in caught]
    assert model.layers[0].max_shift == 0 and model.layers[0].horizontal_flip


def test_functional_augmentation_on_an_input_imports(tmp_path):
    image = dlcore.Input((1, 6, 6), name="image")
    augmented = ImageAugmentation(1, name="augment")(image)
    out = Dense(2, activation="softmax")(Flatten()(Conv2D(2, 3)(augmented)))
    model = dlcore.Model(image, out, backend="reference")
    path = tmp_path / "functional.h5"
    dlcore.save(model, path, format="keras")
    assert "RandomTranslation" in json.dumps(config_of(path))
    again = dlcore.load(path)
    assert any(isinstance(layer, ImageAugmentation) and layer.max_shift == 1
               for layer in again.layers)
    x = images(2, (1, 6, 6))
    np.testing.assert_allclose(again.predict(x), model.predict(x), atol=1e-6)
