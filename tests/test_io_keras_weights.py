"""Keras 3's weights-only files (dlcore/io/keras_weights.py) and the ``training_config`` of Keras
model files (dlcore/io/keras_training.py).

Oracles: files Keras 3 wrote (tests/fixtures/: ``keras_<name>.weights.h5`` by
``model.save_weights`` beside the model file of the same model, whose stored predictions they
must reproduce; each layer's group there also names its layer, which gives Keras's own order of
layers to hold :func:`keras_layer_order` to), and ``keras_compiled.h5``, compiled in Keras with
SGD, Nesterov momentum, sparse categorical cross-entropy and accuracy.
"""
import json
import shutil
import warnings

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

import dlcore
from dlcore.io.keras_training import compile_arguments
from dlcore.io.keras_weights import layer_paths, snake_case
from dlcore.layers import Conv2D, Dense, Flatten, MaxPool2D
from dlcore.models import model_from_json, resnet_small
from test_io_keras import (
    fixture,
    images,
    keras_data,
    real_keras,
    residual_and_siamese,
    small_convnet,
)


def model_config(name):
    with h5py.File(fixture(f"keras_{name}.h5"), "r") as h5file:
        return h5file.attrs["model_config"]


# --------------------------------------------------------------------------------------------
# Keras 3's .weights.h5
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("class_name, expected", [
    ("Conv2D", "conv2d"), ("MaxPooling2D", "max_pooling2d"), ("ReLU", "re_lu"),
    ("InputLayer", "input_layer"), ("Conv2DTranspose", "conv2d_transpose"),
    ("UpSampling2D", "up_sampling2d"), ("ZeroPadding2D", "zero_padding2d"),
    ("GaussianNoise", "gaussian_noise"), ("RandomFlip", "random_flip")])
def test_layer_paths_use_keras_snake_case(class_name, expected):
    assert snake_case(class_name) == expected


@pytest.mark.parametrize("name", ["convnet", "residual"])
def test_the_paths_of_keras_layers_are_those_keras_wrote(name):
    """Keras 3.15 names each layer beside its path: the order of a Sequential and of a
    functional model's graph is Keras's."""
    with h5py.File(fixture(f"keras_{name}.weights.h5"), "r") as h5file:
        written = {f"layers/{group}/vars": h5file[f"layers/{group}/vars"].attrs["name"]
                   for group in h5file["layers"]}
    paths = layer_paths(json.loads(model_config(name)))
    assert {path: layer for layer, path in paths} == written


@pytest.mark.parametrize("name", ["convnet", "residual"])
def test_a_keras_weights_file_loads_with_its_architecture(name):
    x, _, y_keras = keras_data(name)
    model = dlcore.load(fixture(f"keras_{name}.weights.h5"), architecture=model_config(name))
    np.testing.assert_allclose(model.predict(x), y_keras, atol=1e-4)
    fresh = model_from_json(model_config(name))
    assert not np.allclose(fresh.predict(x), y_keras, atol=1e-3)
    fresh.load_weights(fixture(f"keras_{name}.weights.h5"))
    np.testing.assert_allclose(fresh.predict(x), y_keras, atol=1e-4)


def arrays_keras_wrote(name):
    """The arrays of the fixture ``keras_<name>.weights.h5`` in the order of Keras's
    ``get_weights()`` (its layers' paths in Keras's order, each layer's ``vars`` in turn)."""
    with h5py.File(fixture(f"keras_{name}.weights.h5"), "r") as h5file:
        arrays = []
        for _, path in layer_paths(json.loads(model_config(name))):
            group = h5file[path]
            arrays += [group[str(index)][()] for index in range(len(group))]
    return arrays


@pytest.mark.parametrize("name", ["convnet", "residual"])
def test_get_and_set_weights_take_kerass_order_and_layouts_on_request(name):
    """Keras's get_weights() has HWIO kernels and a Dense's rows after a Flatten of maps in
    H, W, C order: keras_model.set_weights(model.get_weights()) scrambled both silently
    wherever the shapes agreed. layout="keras" gives and takes the arrays Keras wrote."""
    x, _, y_keras = keras_data(name)
    model = dlcore.load(fixture(f"keras_{name}.h5"))
    theirs = arrays_keras_wrote(name)
    mine = model.get_weights(layout="keras")
    assert [a.shape for a in mine] == [a.shape for a in theirs]
    for array, expected in zip(mine, theirs):
        np.testing.assert_array_equal(array, expected)
    fresh = model_from_json(model_config(name))
    fresh.set_weights(theirs, layout="keras")
    np.testing.assert_allclose(fresh.predict(x), y_keras, atol=1e-4)


def test_kerass_arrays_given_in_dlcores_layout_are_refused_naming_the_keras_layout():
    model = small_convnet()
    keras_arrays = model.get_weights(layout="keras")
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"layout='keras'") as error:
        model.set_weights(keras_arrays)
    assert "\n" not in str(error.value)
    for array, kept in zip(model.get_weights(), before):
        np.testing.assert_array_equal(array, kept)
    with pytest.raises(ValueError, match="layout must be 'dlcore'"):
        model.get_weights(layout="nhwc")
    with pytest.raises(ValueError, match=r"10 weight arrays in Keras's order; got 9"):
        model.set_weights(keras_arrays[:-1], layout="keras")


def test_a_layers_set_weights_and_the_keras_layout_name_the_other_layout_in_one_line():
    """A layer given Keras's HWIO kernel (``layer.set_weights(keras_layer.get_weights())``)
    said only the shapes; dlcore's arrays given with layout="keras" said "Keras's layout".
    Each now names the fix; nothing is assigned."""
    model = small_convnet()
    conv = model.get_layer("conv_same")   # (4, 3, 3, 3): its HWIO shape differs
    kernel, bias = conv.get_weights()
    hwio = kernel.transpose(2, 3, 1, 0)
    with pytest.raises(ValueError, match=r"layout='keras'.*transpose\(3, 2, 0, 1\)") as error:
        conv.set_weights([hwio, bias])
    assert "\n" not in str(error.value)
    np.testing.assert_array_equal(conv.get_weights()[0], kernel)
    conv.set_weights([hwio.transpose(3, 2, 0, 1), bias])   # the transposition the line names
    np.testing.assert_array_equal(conv.get_weights()[0], kernel)
    with pytest.raises(ValueError, match=r"dlcore's layout: .* without layout='keras'"):
        model.set_weights(model.get_weights(), layout="keras")


def test_an_architecture_given_as_a_dlcore_model_is_copied_not_changed():
    architecture = model_from_json(model_config("residual"))
    before = architecture.get_weights()
    model = dlcore.load(fixture("keras_residual.weights.h5"), architecture=architecture)
    assert model is not architecture
    for old, new in zip(before, architecture.get_weights()):
        np.testing.assert_array_equal(old, new)
    x, _, y_keras = keras_data("residual")
    np.testing.assert_allclose(model.predict(x), y_keras, atol=1e-4)


@pytest.mark.slow   # Keras's import (PyTorch's) takes seconds
def test_the_keras_model_that_saved_the_weights_is_an_architecture(tmp_path):
    """The Keras model itself, as ``keras_model.load_weights`` takes it: before, a TypeError
    said it must be "a dlcore Sequential or Model ...; got Sequential"."""
    keras = real_keras()
    layers = keras.layers
    inputs = keras.Input((5, 5, 2))
    hidden = layers.Conv2D(3, 3, activation="relu")(inputs)
    outputs = layers.Dense(2, activation="softmax")(layers.Flatten()(hidden))
    x = images(3, (2, 5, 5))
    for in_keras in (keras.Sequential([inputs, layers.Dense(4, activation="tanh")]),
                     keras.Model(inputs, outputs)):
        path = str(tmp_path / f"{in_keras.name}.weights.h5")
        in_keras.save_weights(path)
        model = dlcore.load(path, architecture=in_keras)
        expected = keras.ops.convert_to_numpy(in_keras(x.transpose(0, 2, 3, 1)))
        got = model.predict(x)
        np.testing.assert_allclose(got if got.ndim == 2 else got.transpose(0, 2, 3, 1),
                                   expected, atol=1e-5)


def test_a_subclassed_keras_model_as_architecture_is_refused_in_one_line(tmp_path):
    keras = real_keras()

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    in_keras = Subclassed()
    in_keras(np.zeros((1, 3), np.float32))
    path = str(tmp_path / "subclassed.weights.h5")
    in_keras.save_weights(path)
    with pytest.raises(TypeError, match=r"^architecture is a subclassed Keras model "
                                        r"\(Subclassed\).*pass a dlcore model built with the "
                                        r"same layers[^\n]*$"):
        dlcore.load(path, architecture=in_keras)


def test_a_weights_file_without_an_architecture_is_refused_in_one_line():
    path = fixture("keras_convnet.weights.h5")
    with pytest.raises(dlcore.ModelFileError) as caught:
        dlcore.load(path)
    message = str(caught.value)
    assert "\n" not in message and path in message and "architecture=" in message


def tampered(tmp_path, edit):
    path = str(tmp_path / "tampered.weights.h5")
    shutil.copy(fixture("keras_convnet.weights.h5"), path)
    with h5py.File(path, "r+") as h5file:
        edit(h5file)
    return path


@pytest.mark.parametrize("edit, expected", [
    (lambda f: f["layers/dense/vars"].create_dataset("2", data=np.zeros(3, np.float32)),
     "layer 'hidden' has the arrays 0, 1, 2 at 'layers/dense/vars'; the architecture's has 2"),
    (lambda f: f.move("layers/dense_1", "layers/dense_9"),
     "the file holds arrays at layers/dense_9/vars, for layers the architecture lacks"),
    (lambda f: (f["layers/conv2d/vars"].__delitem__("0"),
                f["layers/conv2d/vars"].create_dataset("0", data=np.zeros((3, 3, 2, 4),
                                                                          np.float32))),
     "dataset 'layers/conv2d/vars/0' has shape (3, 3, 2, 4); expected (3, 3, 2, 3)"),
])
def test_weights_that_do_not_fit_the_architecture_are_refused_and_change_nothing(
        tmp_path, edit, expected):
    path = tampered(tmp_path, edit)
    model = model_from_json(model_config("convnet"))
    before = model.get_weights()
    with pytest.raises(dlcore.ModelFileError) as caught:
        model.load_weights(path)
    message = str(caught.value)
    assert "\n" not in message and expected in message, message
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)
    with pytest.raises(dlcore.ModelFileError, match="another architecture"):
        dlcore.load(fixture("keras_convnet.weights.h5"), architecture=model_config("residual"))


def test_save_weights_writes_keras_3s_layout_for_a_weights_h5_name(tmp_path):
    for model, x in ((small_convnet(), images(2, (2, 10, 10))),
                     (residual_and_siamese()[0], images(2, (2, 8, 8)))):
        path = tmp_path / f"{model.name}.weights.h5"
        model.save_weights(path)
        with h5py.File(path, "r") as h5file:
            assert "layers" in h5file and "layer_names" not in h5file.attrs
            names = {h5file[f"layers/{group}/vars"].attrs["name"] for group in h5file["layers"]}
            assert {layer.name for layer in model.layers if layer.weight_names} <= names
        again = model_from_json(model.to_json())
        again.load_weights(path)
        np.testing.assert_allclose(again.predict(x), model.predict(x), atol=1e-6)
    with h5py.File(tmp_path / f"{small_convnet().name}.weights.h5", "r") as h5file:
        kernel = h5file["layers/conv2d/vars/0"][()]           # conv_padded, HWIO
    np.testing.assert_array_equal(kernel, small_convnet().layers[0].get_weights()[0]
                                  .transpose(2, 3, 1, 0))


def test_dlcore_info_lists_a_keras_weights_file(tmp_path):
    from dlcore.cli import main
    result = CliRunner().invoke(main, ["info", fixture("keras_residual.weights.h5")])
    assert result.exit_code == 0, result.output
    assert "Keras HDF5 weights file" in result.output
    assert "layers/conv2d/vars/0  (3, 3, 2, 4) float32" in result.output
    assert "not checked" in result.output


# --------------------------------------------------------------------------------------------
# training_config
# --------------------------------------------------------------------------------------------
def test_a_compiled_keras_model_imports_compiled_and_fit_continues():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = dlcore.load(fixture("keras_compiled.h5"))
    assert model.loss.name == "cross_entropy" and not model.loss.from_logits
    optimizer = model.optimizer
    assert optimizer.name == "sgd" and optimizer.momentum == pytest.approx(0.9)
    assert optimizer.nesterov and optimizer.learning_rate == pytest.approx(0.05)
    assert model.metrics == ["accuracy"]
    data = np.load(fixture("keras_compiled.npz"))
    x, labels = data["x"].transpose(0, 3, 1, 2), data["labels"]
    np.testing.assert_allclose(model.predict(x), data["y"], atol=1e-4)
    before = model.evaluate(x, labels, verbose=0)
    model.fit(x, labels, epochs=5, batch_size=4, verbose=0)     # no compile call needed
    after = model.evaluate(x, labels, verbose=0)
    loss = lambda r: r["loss"] if isinstance(r, dict) else np.ravel(r)[0]  # noqa: E731
    assert loss(after) < loss(before)


def with_training_config(tmp_path, edit):
    path = str(tmp_path / "compiled.h5")
    shutil.copy(fixture("keras_compiled.h5"), path)
    with h5py.File(path, "r+") as h5file:
        config = json.loads(h5file.attrs["training_config"])
        edit(config)
        h5file.attrs["training_config"] = json.dumps(config)
        # the state of the fixture's own optimiser fits no other: Keras would not write it
        del h5file["optimizer_weights"]
    return path


@pytest.mark.parametrize("edit, check", [
    (lambda c: c.update(optimizer_config={"class_name": "Adam", "config": {
        "learning_rate": 0.002, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6,
        "amsgrad": False}}),
     lambda m: m.optimizer.name == "adam" and m.optimizer.beta_1 == 0.8 and
     m.optimizer.epsilon == 1e-6),
    (lambda c: c.update(optimizer_config={"class_name": "RMSprop", "config": {
        "learning_rate": 0.01, "rho": 0.8, "momentum": 0.0, "centered": False}}),
     lambda m: m.optimizer.name == "rmsprop" and m.optimizer.rho == 0.8),
    (lambda c: c["optimizer_config"]["config"].update(learning_rate={
        "module": "keras.optimizers.schedules", "class_name": "ExponentialDecay",
        "config": {"initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.5}}),
     lambda m: m.optimizer.current_learning_rate() == pytest.approx(0.1)),
    (lambda c: c.update(loss={"module": "keras.losses", "class_name":
                              "SparseCategoricalCrossentropy",
                              "config": {"from_logits": False, "ignore_class": None}},
                        metrics=[{"module": "keras.metrics", "class_name":
                                  "SparseCategoricalAccuracy", "config": {}}]),
     lambda m: m.loss.name == "cross_entropy" and m.metrics == ["sparse_categorical_accuracy"]),
    (lambda c: c.update(metrics=None), lambda m: m.metrics == []),
    # AdamW, Nadam, AMSGrad and label smoothing loaded the model uncompiled, with a warning
    (lambda c: c.update(optimizer_config={"class_name": "AdamW", "config": {
        "learning_rate": 0.002, "weight_decay": 0.01, "beta_1": 0.8, "amsgrad": True}}),
     lambda m: m.optimizer.name == "adamw" and m.optimizer.weight_decay == 0.01 and
     m.optimizer.beta_1 == 0.8 and m.optimizer.amsgrad and m.optimizer.epsilon_form == "keras"),
    (lambda c: c.update(optimizer_config={"class_name": "Nadam", "config": {
        "learning_rate": 0.002, "beta_2": 0.99, "epsilon": 1e-6, "weight_decay": None}}),
     lambda m: m.optimizer.name == "nadam" and m.optimizer.beta_2 == 0.99 and
     m.optimizer.epsilon == 1e-6 and m.optimizer.learning_rate == 0.002),
    (lambda c: c.update(optimizer_config={"class_name": "Adam", "config": {"amsgrad": True}}),
     lambda m: m.optimizer.name == "adam" and m.optimizer.amsgrad),
    # Keras's base optimiser decays any optimiser's weights, and so does dlcore's: Adam's
    # with it are AdamW's steps; SGD's and RMSprop's were refused
    (lambda c: c.update(optimizer_config={"class_name": "Adam", "config": {
        "weight_decay": 0.02, "beta_2": 0.9}}),
     lambda m: m.optimizer.name == "adam" and m.optimizer.weight_decay == 0.02 and
     m.optimizer.beta_2 == 0.9),
    (lambda c: c.update(optimizer_config={"class_name": "RMSprop", "config": {
        "weight_decay": 0.03, "rho": 0.8}}),
     lambda m: m.optimizer.name == "rmsprop" and m.optimizer.weight_decay == 0.03),
    (lambda c: c.update(loss={"module": "keras.losses", "class_name": "CategoricalCrossentropy",
                              "config": {"from_logits": False, "label_smoothing": 0.1}}),
     lambda m: m.loss.name == "cross_entropy" and m.loss.label_smoothing == 0.1),
])
def test_keras_optimizers_losses_and_metrics_map_onto_dlcore(tmp_path, edit, check):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = dlcore.load(with_training_config(tmp_path, edit))
    assert check(model)


def test_metrics_dlcore_does_not_report_are_left_out_and_the_model_compiled(tmp_path):
    """Keras's ["accuracy", "mae"] loaded the model uncompiled; a metric is only reported,
    so the others are left out with one warning and the accuracy kept."""
    with pytest.warns(UserWarning, match=r"the metric\(s\) mae are left out: dlcore reports "
                                         r"accuracy"):
        model = dlcore.load(with_training_config(tmp_path, lambda c: c.update(
            metrics=["accuracy", "mae"])))
    assert model.loss is not None and model.metrics == ["accuracy"]


@pytest.mark.parametrize("edit, why", [
    (lambda c: c["optimizer_config"].update(class_name="Lamb"), "the optimizer 'Lamb'"),
    (lambda c: c["optimizer_config"]["config"].update(loss_scale_factor=128.0),
     "loss_scale_factor=128.0"),
    (lambda c: c.update(loss="huber"), "the loss 'huber'"),
    (lambda c: c.update(loss={"class_name": "MyLoss", "config": {},
                              "registered_name": "Custom>MyLoss"}), "custom object"),
    (lambda c: c.update(loss="binary_crossentropy"), "binary_cross_entropy"),   # on a softmax
    # a loss summed over the batch trains with steps n times the mean's: it was trained on
    # the mean, unsaid
    (lambda c: c.update(loss={"module": "keras.losses", "class_name": "CategoricalCrossentropy",
                              "config": {"from_logits": False, "reduction": "sum"}}),
     "reduction=sum"),
])
def test_settings_dlcore_does_not_have_load_uncompiled_with_one_warning(tmp_path, edit, why):
    with pytest.warns(UserWarning) as caught:
        model = dlcore.load(with_training_config(tmp_path, edit))
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "loaded uncompiled" in messages[0] and why in messages[0], \
        messages
    assert model.loss is None and model.optimizer is None
    data = np.load(fixture("keras_compiled.npz"))
    np.testing.assert_allclose(model.predict(data["x"].transpose(0, 3, 1, 2)), data["y"],
                               atol=1e-4)


def test_a_compiled_dlcore_model_exports_a_training_config_keras_reads(tmp_path):
    model = dlcore.Sequential([Conv2D(2, 3), MaxPool2D(2), Flatten(),
                               Dense(3, activation="softmax")], input_shape=(1, 8, 8),
                              backend="reference")
    model.compile("cross_entropy", dlcore.optimizers.SGD(0.02, momentum=0.8, nesterov=True),
                  ["accuracy"])
    dlcore.save(model, tmp_path / "m.h5", format="keras")
    with h5py.File(tmp_path / "m.h5", "r") as h5file:
        training = json.loads(h5file.attrs["training_config"])
    assert training["loss"] == "sparse_categorical_crossentropy"
    assert training["metrics"] == ["accuracy"] and training["loss_weights"] is None
    assert training["optimizer_config"]["class_name"] == "SGD"
    assert training["optimizer_config"]["config"]["momentum"] == pytest.approx(0.8)
    assert training["optimizer_config"]["config"]["nesterov"] is True
    # and back: the same settings
    loss, optimizer, metrics = compile_arguments(training)
    assert (loss.name, optimizer.name, optimizer.nesterov, metrics) == (
        "cross_entropy", "sgd", True, ["accuracy"])
    residual = resnet_small(input_shape=(1, 8, 8), backend="reference")
    residual.compile(dlcore.losses.CategoricalCrossentropy(from_logits=False), "adam")
    dlcore.save(residual, tmp_path / "r.h5", format="keras")
    assert dlcore.load(tmp_path / "r.h5").optimizer.name == "adam"


def test_compile_settings_keras_lacks_are_left_out_with_a_note(tmp_path):
    model = dlcore.Sequential([Dense(2, activation="softmax")], input_shape=(3,),
                              backend="reference")
    # (AdaGrad, Keras's Adagrad, was left out too until it crossed)
    model.compile("cross_entropy", dlcore.optimizers.SGD(dlcore.optimizers.StepDecay(0.1, 10)))
    with pytest.warns(UserWarning, match="compile settings are left out .* StepDecay"):
        dlcore.save(model, tmp_path / "m.h5", format="keras")
    with h5py.File(tmp_path / "m.h5", "r") as h5file:
        assert "training_config" not in h5file.attrs
    uncompiled = dlcore.Sequential([Dense(2)], input_shape=(3,), backend="reference")
    dlcore.save(uncompiled, tmp_path / "u.h5", format="keras")
    with h5py.File(tmp_path / "u.h5", "r") as h5file:
        assert "training_config" not in h5file.attrs


def exported_training_config(model, path):
    dlcore.save(model, path, format="keras")
    with h5py.File(path, "r") as h5file:
        return json.loads(h5file.attrs["training_config"])


def test_the_cross_entropy_is_exported_for_the_targets_the_model_trained_on(tmp_path):
    """Keras's categorical cross-entropy takes one-hot rows, its sparse one labels (dlcore's
    takes both): the export names the one that fits what the model last trained on."""
    model = dlcore.Sequential([Dense(3, activation="softmax")], input_shape=(4,),
                              backend="reference")
    model.compile("cross_entropy", "sgd")
    x, labels = images(6, (4,)), np.array([0, 1, 2, 0, 1, 2])
    assert exported_training_config(model, tmp_path / "a.h5")["loss"] == \
        "sparse_categorical_crossentropy"                       # untrained: labels
    model.fit(x, np.eye(3)[labels], epochs=1, verbose=0)
    assert exported_training_config(model, tmp_path / "b.h5")["loss"] == \
        "categorical_crossentropy"
    model.train_on_batch(x, labels)
    assert exported_training_config(model, tmp_path / "c.h5")["loss"] == \
        "sparse_categorical_crossentropy"
    logits = dlcore.Sequential([Dense(3)], input_shape=(4,), backend="reference")
    logits.compile(dlcore.losses.CrossEntropy(from_logits=True), "sgd")
    logits.fit(x, np.eye(3)[labels], epochs=1, verbose=0)
    assert exported_training_config(logits, tmp_path / "d.h5")["loss"]["class_name"] == \
        "CategoricalCrossentropy"


@pytest.mark.parametrize("keras_loss", ["categorical_crossentropy",
                                        "sparse_categorical_crossentropy"])
def test_an_imported_cross_entropy_is_exported_under_its_keras_name(tmp_path, keras_loss):
    model = dlcore.load(with_training_config(tmp_path, lambda c: c.update(loss=keras_loss)))
    assert model.loss.name == "cross_entropy"
    assert exported_training_config(model, tmp_path / "back.h5")["loss"] == keras_loss


@pytest.mark.parametrize("metric, name", [
    ("categorical_accuracy", "categorical_accuracy"), ("acc", "acc"),
    ("sparse_categorical_accuracy", "sparse_categorical_accuracy"),
    ("binary_accuracy", "binary_accuracy"),
    ({"module": "keras.metrics", "class_name": "BinaryAccuracy",
      "config": {"name": "binary_accuracy", "threshold": 0.5}}, "binary_accuracy")])
def test_keras_accuracy_metrics_import_under_their_keras_names(tmp_path, metric, name):
    """Keras logs an accuracy under the name it was compiled with (``acc``), and
    binary_accuracy counts each output against 0.5: the import keeps both."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = dlcore.load(with_training_config(tmp_path, lambda c: c.update(
            metrics=[metric])))
    assert model.metrics == [name]
    assert model.metrics_names == ["loss", name]


@pytest.mark.parametrize("metrics, per_output", [
    (["accuracy"], [["accuracy"], ["accuracy"]]), ({"cls": "accuracy"}, [["accuracy"], []]),
    ([None, "accuracy"], [[], ["accuracy"]])])
def test_a_model_with_several_outputs_writes_its_metrics_per_output(tmp_path, metrics,
                                                                    per_output):
    """Keras refuses to train a model with two outputs compiled with metrics=['accuracy']
    (one list for every output): the export names each output's."""
    inputs = dlcore.Input(shape=(4,))
    hidden = Dense(5, activation="relu")(inputs)
    model = dlcore.Model(inputs, [Dense(3, activation="softmax", name="cls")(hidden),
                                  Dense(1, name="reg")(hidden)])
    model.compile(["cross_entropy", "mse"], "adam", metrics)
    training = exported_training_config(model, tmp_path / "m.h5")
    assert training["metrics"] == per_output
    assert training["loss"] == ["sparse_categorical_crossentropy", "mean_squared_error"]
    loaded = dlcore.load(tmp_path / "m.h5")
    assert loaded.output_metrics == tuple(bool(items) for items in per_output)
    assert [loss.name for loss in loaded.losses] == ["cross_entropy", "mse"]


def test_losses_weights_and_metrics_by_output_name_import_from_keras():
    """Keras 3's compile_config of a model with two outputs, by output name (as Keras's
    functional API guide compiles one)."""
    from dlcore.io.keras_training import compile_from
    inputs = dlcore.Input(shape=(4,))
    hidden = Dense(5, activation="relu")(inputs)
    model = dlcore.Model(inputs, [Dense(3, activation="softmax", name="cls")(hidden),
                                  Dense(1, name="reg")(hidden)])
    why = compile_from(model, {
        "loss": {"reg": "mse", "cls": "categorical_crossentropy"},
        "loss_weights": {"cls": 1.0, "reg": 0.2}, "metrics": {"cls": ["accuracy"]},
        "optimizer_config": {"class_name": "SGD", "config": {"learning_rate": 0.1}}})
    assert why is None
    assert [loss.name for loss in model.losses] == ["cross_entropy", "mse"]
    assert model.loss_weights == [1.0, 0.2] and model.metrics == ["accuracy"]
    assert model.target_forms_ == ("rows", None)
    none_for_first = dlcore.Model(model.inputs, model.outputs)
    assert compile_from(none_for_first, {"loss": ["mse", "mse"], "metrics": [[], ["accuracy"]],
                                         "optimizer_config": {"class_name": "SGD",
                                                              "config": {}}}) is None
    assert none_for_first.output_metrics == (False, True)
    assert model.output_metrics == (True, False)


def test_metrics_by_output_name_of_a_model_of_one_output_import_from_keras():
    """Keras's compile of one output by its name, ``compile(loss={"score": ...},
    metrics={"score": ["accuracy"]})`` (a Keras model of one dict output, as keras.io's
    functional API guide names outputs): the file loaded uncompiled, with the warning "a
    metric "{'cls': ['accuracy']}" is not a Keras object"."""
    from dlcore.io.keras_training import compile_from
    inputs = dlcore.Input(shape=(4,))
    model = dlcore.Model(inputs, Dense(3, activation="softmax", name="cls")(inputs))
    why = compile_from(model, {
        "loss": {"cls": "categorical_crossentropy"}, "metrics": {"cls": ["accuracy"]},
        "optimizer_config": {"class_name": "SGD", "config": {"learning_rate": 0.1}}})
    assert why is None
    assert model.loss.name == "cross_entropy" and model.metrics == ["accuracy"]
    with pytest.warns(UserWarning, match="the metric.* mae are left out"):
        assert compile_from(model, {
            "loss": "mse", "metrics": {"cls": ["mae"]},
            "optimizer_config": {"class_name": "SGD", "config": {}}}) is None
    assert model.metrics == []


def test_weights_of_another_model_are_named_as_such_not_as_a_damaged_file(tmp_path):
    """The teacher changed the hidden size and loaded the old weights: the intact file was
    called "damaged or not written by dlcore"; the model is what differs."""
    def mlp(hidden, depth=1):
        return dlcore.Sequential([dlcore.Input((6,))] + [Dense(hidden, activation="relu")
                                                         for _ in range(depth)]
                                 + [Dense(3, activation="softmax")])
    mlp(8).save_weights(tmp_path / "model_weights.h5")
    for other, problem in ((mlp(4), r"has shape \(6, 8\); expected \(6, 4\)"),
                           (mlp(8, 2), r"the weights are for the layers dense, dense_1; the "
                                       r"model's layers with weights are dense, dense_1, "
                                       r"dense_2")):
        why = problem + r".*the weights are another model's .*build the model they were saved"
        with pytest.raises(dlcore.ModelFileError, match=why):
            other.load_weights(tmp_path / "model_weights.h5")


# -- dlcore's own model files: Keras's load_weights of a full model file ---------------------
def small_mlp(hidden=8, seed=0):
    return dlcore.Sequential([dlcore.Input((6,)), Dense(hidden, activation="relu"),
                              Dense(3, activation="softmax")], seed=seed)


def test_load_weights_reads_a_model_file_dlcore_saved_for_the_same_architecture(tmp_path):
    """Keras's model.load_weights takes a full model file; a teacher loads each student's
    model.h5 into a reference network of the same architecture: the predictions are the
    student's model's."""
    x = np.random.default_rng(0).random((5, 6)).astype(np.float32)
    student = small_mlp(seed=1)
    student.compile("sparse_categorical_crossentropy", "sgd")
    student.fit(x, np.arange(5) % 3, epochs=1, verbose=0)
    dlcore.save(student, tmp_path / "model.h5")
    reference = small_mlp(seed=2)
    reference.load_weights(tmp_path / "model.h5")
    np.testing.assert_array_equal(reference.predict(x), student.predict(x))


@pytest.mark.parametrize("other, problem", [
    (lambda: small_mlp(hidden=4),
     r"its weight array 1 has shape \(6, 8\), this model's \(6, 4\)"),
    (lambda: dlcore.Sequential([dlcore.Input((6,)), Dense(8), Dense(8), Dense(3)]),
     r"its weight array 3 has shape \(8, 3\), this model's \(8, 8\)")])
def test_a_dlcore_model_file_of_another_architecture_is_named_in_one_line(tmp_path, other,
                                                                          problem):
    dlcore.save(small_mlp(), tmp_path / "model.h5")
    model = other()
    before = model.get_weights()
    with pytest.raises(dlcore.ModelFileError, match=r"model.h5 is a dlcore model file of "
                                                    r"another architecture: " + problem +
                                                    r"; build the model it was saved from"):
        model.load_weights(tmp_path / "model.h5")
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)


def test_load_weights_of_a_dlcore_rbm_file_says_to_load_it_whole(tmp_path):
    rbm = dlcore.BernoulliRBM(n_hidden=3, epochs=0, backend="cpu").fit([[0.0, 1.0]] * 4)
    dlcore.save(rbm, tmp_path / "rbm.h5")
    with pytest.raises(dlcore.ModelFileError, match=r"rbm.h5 is a dlcore model file of a "
                                                    r"BernoulliRBM, which has no network "
                                                    r"weights to load; load it with "
                                                    r"dlcore.load\(path\)"):
        small_mlp().load_weights(tmp_path / "rbm.h5")
