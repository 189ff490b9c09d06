"""A Keras Sequential nested in a Keras model (keras.io's ``data_augmentation =
keras.Sequential([...])`` called on the input): inlined at import, its layers called one after
the other where it was called, when it has no weights; refused in one line otherwise. Keras's
augmentation layers dlcore has no match for (RandomRotation, RandomZoom, RandomContrast,
RandomBrightness) are the identity at inference: left out, with a warning naming them.

Oracle: an archive written by Keras 3.15.1 (JAX, tests/fixtures/keras_nested.keras: RandomFlip,
RandomRotation and RandomZoom nested, then Rescaling, a convolution, a global pool and a
softmax) predicts in dlcore as in Keras.
"""
import copy

import numpy as np
import pytest

import dlcore
from test_io_keras import edited_archive, fixture


def nested_entry(config):
    return next(layer for layer in config["config"]["layers"]
                if layer["class_name"] == "Sequential")


def test_a_nested_augmentation_model_is_inlined_and_predicts_as_keras():
    saved = np.load(fixture("keras_nested.keras.npz"))
    with pytest.warns(UserWarning) as caught:
        model = dlcore.load(fixture("keras_nested.keras"))
    notes = " ".join(str(warning.message) for warning in caught)
    assert "'random_rotation' (RandomRotation) is left out" in notes
    assert "'random_zoom' (RandomZoom) is left out" in notes
    assert [type(layer).__name__ for layer in model.layers] == \
        ["ImageAugmentation", "Rescaling", "Conv2D", "GlobalAvgPool2D", "Dense"]
    assert model.layers[0].horizontal_flip                      # Keras's RandomFlip
    np.testing.assert_allclose(model.predict(saved["x"].transpose(0, 3, 1, 2)), saved["y"],
                               atol=1e-6)


def test_a_nested_model_with_weights_is_refused_in_one_line(tmp_path):
    def add_dense(config):
        nested_entry(config)["config"]["layers"].append(
            {"module": "keras.layers", "class_name": "Dense",
             "config": {"name": "inner_dense", "units": 3}, "registered_name": None})
    with pytest.raises(dlcore.ModelFileError) as error:
        dlcore.load(edited_archive(tmp_path, "keras_nested.keras", add_dense))
    message = str(error.value)
    assert "'data_augmentation' (Sequential) cannot be imported" in message
    assert "its layer 'inner_dense' has" in message and "\n" not in message


def test_a_nested_model_called_twice_is_refused_in_one_line(tmp_path):
    def call_twice(config):
        entry = nested_entry(config)
        entry["inbound_nodes"] = entry["inbound_nodes"] * 2
    with pytest.raises(dlcore.ModelFileError, match="imported when called once"):
        dlcore.load(edited_archive(tmp_path, "keras_nested.keras", call_twice))


def test_a_model_nested_two_deep_is_refused_not_followed(tmp_path):
    def nest_again(config):
        entry = nested_entry(config)
        inner = copy.deepcopy({key: value for key, value in entry.items()
                               if key != "inbound_nodes"})
        inner["config"]["name"] = "deeper"
        entry["config"]["layers"].append(inner)
    with pytest.raises(dlcore.ModelFileError, match="'deeper' \\(Sequential\\)"):
        dlcore.load(edited_archive(tmp_path, "keras_nested.keras", nest_again))
