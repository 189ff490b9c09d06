"""Weight decay and max-norm cross with Keras files, both ways (dlcore/io/keras.py).

Keras's L2(l2) penalises l2 ||w||^2 where dlcore's L2(lambda) penalises lambda / 2 ||w||^2, so
the same decay is lambda = 2 l2; L1 is the same number; Keras's MaxNorm over a Dense kernel's
axis 0, or a convolution's axes 0, 1, 2, is dlcore's MaxNorm of each unit's inputs. Before,
both were dropped without a word, so a model went on training without its decay.

Oracle: a model Keras 3.15.1 (JAX) trained with L2, L1L2, L1 and MaxNorm
(tests/fixtures/keras_regularized.keras) takes Keras's own next training step in dlcore.
"""
import json
import warnings
import zipfile

import numpy as np
import pytest

import dlcore
from dlcore.layers import Conv2D, Dense, Flatten
from dlcore.regularizers import L1, L1L2, L2, MaxNorm
from test_io_keras import fixture


def test_a_keras_model_with_decay_and_max_norm_trains_on_in_dlcore_as_in_keras():
    saved = np.load(fixture("keras_regularized.keras.npz"))
    x, labels = saved["x"].transpose(0, 3, 1, 2), saved["labels"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = dlcore.load(fixture("keras_regularized.keras"))
    conv, hidden = model.get_layer("conv"), model.get_layer("hidden")
    # Keras keeps the numbers as float32
    approx = pytest.approx
    assert (conv.kernel_regularizer.l1, conv.kernel_regularizer.l2) == approx((0.0, 0.1))
    assert (hidden.kernel_regularizer.l1, hidden.kernel_regularizer.l2) == approx((0.01, 0.1))
    assert isinstance(hidden.bias_regularizer, L1) and hidden.bias_regularizer.l1 == approx(0.02)
    assert conv.kernel_constraint.max_value == approx(0.6)
    assert hidden.kernel_constraint.max_value == approx(0.5)
    np.testing.assert_allclose(model.predict(x), saved["y"], atol=1e-6)
    model.train_on_batch(x[:8], labels[:8])
    assert np.abs(saved["y_next"] - saved["y"]).max() > 0.05
    np.testing.assert_allclose(model.predict(x), saved["y_next"], atol=1e-6)


def regularized_net():
    return dlcore.Sequential([
        Conv2D(2, 3, input_shape=(1, 5, 5), kernel_regularizer=L2(0.02),
               kernel_constraint=MaxNorm(1.5), name="conv"),
        Flatten(),
        Dense(3, kernel_regularizer=L1L2(0.01, 0.04), bias_regularizer=L1(0.03),
              kernel_constraint=MaxNorm(2.0), name="dense")])


def test_dlcores_decay_and_max_norm_are_written_in_keras_spelling(tmp_path):
    regularized_net().save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as archive:
        layers = {entry["config"]["name"]: entry["config"]
                  for entry in json.loads(archive.read("config.json"))["config"]["layers"]}
    conv, dense = layers["conv"], layers["dense"]
    assert conv["kernel_regularizer"]["class_name"] == "L2"
    assert conv["kernel_regularizer"]["config"] == {"l2": 0.01}     # half of dlcore's lambda
    assert conv["kernel_constraint"]["config"] == {"max_value": 1.5, "axis": [0, 1, 2]}
    assert dense["kernel_regularizer"]["config"] == {"l1": 0.01, "l2": 0.02}
    assert dense["bias_regularizer"] == {"module": "keras.regularizers", "class_name": "L1",
                                         "config": {"l1": 0.03}, "registered_name": None}
    assert dense["kernel_constraint"]["config"] == {"max_value": 2.0, "axis": 0}
    back = dlcore.load(tmp_path / "m.keras")
    for name in ("conv", "dense"):
        mine, theirs = regularized_net().get_layer(name), back.get_layer(name)
        for what in ("kernel_regularizer", "bias_regularizer"):
            a, b = getattr(mine, what), getattr(theirs, what)
            assert (a is None and b is None) or (a.l1, a.l2) == (b.l1, b.l2)
        assert mine.kernel_constraint.max_value == theirs.kernel_constraint.max_value


@pytest.mark.parametrize("edit, left_out", [
    (lambda c: c.update(kernel_regularizer={"module": "keras.regularizers",
                                            "class_name": "OrthogonalRegularizer",
                                            "config": {"factor": 0.01}}),
     "its kernel_regularizer"),
    (lambda c: c.update(kernel_constraint={"module": "keras.constraints",
                                           "class_name": "NonNeg", "config": {}}),
     "its kernel_constraint"),
    (lambda c: c["kernel_constraint"]["config"].update(axis=1),   # the axis, which is why
     r"its kernel_constraint MaxNorm\(max_value=2.0, axis=1\) is left out \(dlcore imports a "
     r"MaxNorm over each unit's incoming weights: axis=0 for a Dense\)"),
    (lambda c: c.update(activity_regularizer={"module": "keras.regularizers",
                                              "class_name": "OrthogonalRegularizer",
                                              "config": {"factor": 0.01}}),
     r"its activity_regularizer OrthogonalRegularizer\(factor=0.01\) is left out"),
    (lambda c: c.update(bias_constraint={"module": "keras.constraints",
                                         "class_name": "NonNeg", "config": {}}),
     "its bias_constraint is left out"),
    (lambda c: c["kernel_regularizer"]["config"].update(l2="much"), "its kernel_regularizer"),
])
def test_what_has_no_match_is_left_out_with_a_warning_naming_it(tmp_path, edit, left_out):
    """Only training uses them: the model still loads and predicts, and says what it lost."""
    with pytest.warns(UserWarning, match=f"'dense' \\(Dense\\): {left_out}"):
        model = dlcore.load(edited_file(tmp_path, "dense", edit))
    assert model.predict(np.zeros((1, 1, 5, 5), np.float32)).shape == (1, 3)


def edited_file(tmp_path, layer_name, edit):
    """A Keras file of :func:`regularized_net` whose layer ``layer_name``'s config ``edit``
    changed."""
    path = tmp_path / "m.keras"
    regularized_net().save(path)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    edit(next(entry["config"] for entry in config["config"]["layers"]
              if entry["config"]["name"] == layer_name))
    members["config.json"] = json.dumps(config).encode()
    edited = tmp_path / "edited.keras"
    with zipfile.ZipFile(edited, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return edited


def test_an_activity_regularizer_on_a_layer_without_weights_is_named_as_left_out(tmp_path):
    """Keras lets any layer (a Flatten, an Activation) penalise its outputs; dlcore's layers
    with weights only, and the penalty was dropped from the loss without a word."""
    def penalise(config):
        config["activity_regularizer"] = {"module": "keras.regularizers", "class_name": "L1",
                                          "config": {"l1": 0.1}, "registered_name": None}
    with pytest.warns(UserWarning, match=r"'flatten' \(Flatten\): its activity_regularizer "
                                         r"L1\(l1=0.1\) is left out"):
        model = dlcore.load(edited_file(tmp_path, "flatten", penalise))
    assert model.predict(np.zeros((1, 1, 5, 5), np.float32)).shape == (1, 3)


def test_keras_2s_regularizers_without_a_module_import_with_kerass_strength(tmp_path):
    """tf.keras 2 writes ``{"class_name": "L2", "config": {"l2": ...}}`` with no module: in a
    Keras file that is still Keras's L2 (dlcore's lambda twice its number), never dlcore's."""
    def keras_2(config):
        config["kernel_regularizer"] = {"class_name": "L1L2",
                                        "config": {"l1": 0.01, "l2": 0.02}}
        config["bias_regularizer"] = {"class_name": "L2", "config": {"l2": 0.25}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dense = dlcore.load(edited_file(tmp_path, "dense", keras_2)).get_layer("dense")
    assert (dense.kernel_regularizer.l1, dense.kernel_regularizer.l2) == (0.01, 0.04)
    assert dense.bias_regularizer.l2 == 0.5
