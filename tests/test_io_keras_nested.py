"""A Keras Sequential nested in a Keras model (keras.io's ``data_augmentation =
keras.Sequential([...])`` called on the input, or transfer learning's trained base under a new
head, or the lecture's shared vision model called on two digits): inlined at import, each
call of it becoming calls of its layers (shared), their weights read from inside the nested
model's group, the nested model one entry of ``model.layers`` as in Keras (a dlcore
Sequential or Model on those layers, of one or several outputs); refused in one line when
nested deeper or when an output of it made by layers of its own is left unused. Keras's
augmentation layers dlcore has no match for (RandomRotation, RandomZoom, RandomContrast,
RandomBrightness) are the identity at inference: left out, with a warning naming them.

Oracles: files written by Keras 3.15.1 (JAX): tests/fixtures/keras_nested.keras (RandomFlip,
RandomRotation and RandomZoom nested, then Rescaling, a convolution, a global pool and a
softmax) predicts in dlcore as in Keras; keras_nested_base.keras and .h5 (a trained base:
Conv2D, Flatten, Dense) and keras_nested_vision.keras and .h5 (a functional model called
twice) predict and train one more step as Keras did.
"""
import copy
import json
import warnings

import h5py
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
    assert [type(layer).__name__ for layer in model.flat_layers] == \
        ["ImageAugmentation", "Rescaling", "Conv2D", "GlobalAvgPool2D", "Dense"]
    assert model.flat_layers[0].horizontal_flip                 # Keras's RandomFlip
    augmentation = model.layers[0]          # the nested Sequential, one layer as in Keras
    assert isinstance(augmentation, dlcore.Sequential) and augmentation.layers == \
        model.flat_layers[:1]
    np.testing.assert_allclose(model.predict(saved["x"].transpose(0, 3, 1, 2)), saved["y"],
                               atol=1e-6)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_nested_base_with_weights_predicts_and_trains_on_as_in_keras(suffix):
    """Transfer learning's trained base nested under a new head: its layers inlined, their
    weights read from inside the nested model's group (the archive's
    layers/sequential/layers/..., the legacy file's base/<layer>/...), and one more step lands
    where Keras's did."""
    saved = np.load(fixture("keras_nested_base.keras.npz"))
    x, labels = saved["x"].transpose(0, 3, 1, 2), saved["labels"]
    model = dlcore.load(fixture(f"keras_nested_base{suffix}"))
    assert [layer.name for layer in model.layers] == ["base", "head"]   # Keras's
    base = model.get_layer("base")
    assert isinstance(base, dlcore.Sequential)
    assert [layer.name for layer in base.layers] == ["conv2d", "flatten", "dense"]
    assert model.flat_layers == base.layers + [model.get_layer("head")]
    np.testing.assert_allclose(model.predict(x), saved["y"], atol=1e-6)
    model.train_on_batch(x[:8], labels[:8])
    assert np.abs(saved["y_next"] - saved["y"]).max() > 0.01
    np.testing.assert_allclose(model.predict(x), saved["y_next"], atol=1e-6)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_the_lectures_shared_vision_model_predicts_and_trains_on_as_in_keras(suffix):
    """Lecture "Deep learning I": a functional vision model called on two digits, its
    weights shared: each call becomes calls of its layers, one set of weights."""
    saved = np.load(fixture("keras_nested_vision.keras.npz"))
    x = [saved["x0"].transpose(0, 3, 1, 2), saved["x1"].transpose(0, 3, 1, 2)]
    model = dlcore.load(fixture(f"keras_nested_vision{suffix}"))
    assert [type(layer).__name__ for layer in model.layers] == \
        ["Model", "Concatenate", "Dense"]              # Keras's: the vision model, once
    kinds = [type(layer).__name__ for layer in model.flat_layers]
    assert kinds.count("Conv2D") == 2 and len(model.nodes) == 2 * 4 + 2   # shared, twice
    assert [row.name for row in model.summary(print_fn=None).rows][:2] == \
        [model.layers[0].name] * 2                     # one row a call
    np.testing.assert_allclose(model.predict(x), saved["y"], atol=1e-6)
    model.train_on_batch([part[:8] for part in x], saved["labels"][:8])
    assert np.abs(saved["y_next"] - saved["y"]).max() > 0.01
    np.testing.assert_allclose(model.predict(x), saved["y_next"], atol=1e-6)


def test_a_nested_model_naming_an_output_its_layer_lacks_is_refused_in_one_line(tmp_path):
    def second_output(config):
        entry = next(layer for layer in config["config"]["layers"]
                     if layer["class_name"] == "Functional")
        output = entry["config"]["output_layers"]
        entry["config"]["output_layers"] = [output[0], output[1], 1]
    with pytest.raises(dlcore.ModelFileError, match="its output_layers .* name an output its "
                                                    "layer does not have") as caught:
        dlcore.load(edited_archive(tmp_path, "keras_nested_vision.keras", second_output))
    assert "\n" not in str(caught.value)


def test_a_model_nested_deeper_than_dlcore_files_nest_is_refused_not_followed(tmp_path):
    """A file nesting a Sequential in itself more deeply than dlcore's own files may (a hostile
    file) is refused in one line before the importer recurses that deep."""
    from dlcore.functional import MAX_NESTING_DEPTH

    def nest_deeper(config):
        entry = nested_entry(config)
        for level in range(MAX_NESTING_DEPTH + 1):
            inner = copy.deepcopy({key: value for key, value in entry.items()
                                   if key != "inbound_nodes"})
            inner["config"]["name"] = f"deeper{level}"
            inner["config"]["layers"] = [
                {**layer, "config": {**layer["config"],
                                     "name": f"{layer['config']['name']}{level}"}}
                for layer in inner["config"]["layers"][:1]]
            entry["config"]["layers"].append(inner)
            entry = inner
    with pytest.raises(dlcore.ModelFileError, match=f"nests models more than "
                       f"{MAX_NESTING_DEPTH} deep"):
        dlcore.load(edited_archive(tmp_path, "keras_nested.keras", nest_deeper))


def test_a_custom_model_class_nested_is_refused_not_inlined(tmp_path):
    """A subclass of Sequential may compute otherwise: only Keras's own is inlined."""
    def custom(config):
        nested_entry(config).update(module="evil.mod", registered_name="Custom>Sequential")
    with pytest.raises(dlcore.ModelFileError, match=r"it is a custom model class \(only Keras's "
                                                    r"own Sequential and functional models are "
                                                    r"inlined\); rebuild it in Keras as a "
                                                    r"keras\.Sequential or keras\.Model\(inputs, "
                                                    r"outputs\) and save it again$"):
        dlcore.load(edited_archive(tmp_path, "keras_nested.keras", custom))


@pytest.mark.parametrize("output", [["dense", 0, 0], ["nosuch", 0, 0]])
def test_a_nested_model_naming_an_output_not_its_own_is_refused_in_one_line(tmp_path, output):
    def elsewhere(config):
        entry = next(layer for layer in config["config"]["layers"]
                     if layer["class_name"] == "Functional")
        entry["config"]["output_layers"] = output
    with pytest.raises(dlcore.ModelFileError) as error:
        dlcore.load(edited_archive(tmp_path, "keras_nested_vision.keras", elsewhere))
    assert "are not its own" in str(error.value) and "\n" not in str(error.value)


def test_keras_own_weights_files_load_into_the_imported_nested_model():
    """Keras's files keep the nested layout (ModelCheckpoint's weights, save_weights):
    load_weights reads them into the model dlcore imported, which exports flat."""
    saved = np.load(fixture("keras_nested_vision.keras.npz"))
    x = [saved["x0"].transpose(0, 3, 1, 2), saved["x1"].transpose(0, 3, 1, 2)]
    model = dlcore.load(fixture("keras_nested_vision.keras"))
    for name in ("keras_nested_vision.h5", "keras_nested_vision.keras"):
        model.set_weights([np.zeros_like(w) for w in model.get_weights()])
        model.load_weights(fixture(name))
        np.testing.assert_allclose(model.predict(x), saved["y"], atol=1e-6)
    again = dlcore.load(fixture("keras_nested_vision.h5"), architecture=model)
    np.testing.assert_allclose(again.predict(x), saved["y"], atol=1e-6)


def test_a_nested_layer_named_as_a_layer_of_the_model_is_numbered_on(tmp_path):
    """Keras keeps each model's names apart; dlcore inlines the nested model's layers, so the
    nested one is renamed (``conv_1``, its references inside its model with it): it was
    refused, "rename one in Keras". The model predicts as Keras's."""
    saved = np.load(fixture("keras_nested.keras.npz"))

    def clash(config):
        entry = next(layer for layer in config["config"]["layers"]
                     if layer["class_name"] == "Sequential")
        entry["config"]["layers"][1]["config"]["name"] = "conv"      # its RandomFlip
    with pytest.warns(UserWarning):
        model = dlcore.load(edited_archive(tmp_path, "keras_nested.keras", clash))
    assert model.layers[0].layers[0].name == "conv_1"
    assert [layer.name for layer in model.flat_layers].count("conv") == 1
    np.testing.assert_allclose(model.predict(saved["x"].transpose(0, 3, 1, 2)), saved["y"],
                               atol=1e-6)


@pytest.mark.parametrize("suffix, both", [(".keras", False), (".h5", True)],
                         ids=["head-dense-archive", "two-bases-legacy"])
def test_keras_models_loaded_in_a_new_session_combine_with_their_names(
        tmp_path, suffix, both):
    """Real Keras: a base loaded from its file in a new session keeps its ``dense``, and the
    new head's Dense is ``dense`` too (Keras needs names unique only among a model's own
    layers); so are two loaded Sequentials' layers. dlcore refused both files ("its layer
    'dense' has the name of a layer of the model", "names two layers 'dense'"): the nested
    layer is numbered on, its weights read under its name in the file, and the model goes
    back to Keras predicting the same."""
    from test_io_keras import real_keras
    keras = real_keras()
    layers = keras.layers
    for name, sizes in (("base", (6, 4)), ("head", (4, 2))):
        keras.backend.clear_session()   # each made in a session of its own: both 'dense'
        keras.Sequential([keras.Input(sizes[:1]), layers.Dense(sizes[1])], name=name).save(
            tmp_path / f"{name}.keras")
    keras.backend.clear_session()
    base = keras.models.load_model(tmp_path / "base.keras")
    given = keras.Input((6,))
    head = keras.models.load_model(tmp_path / "head.keras") if both else layers.Dense(2)
    keras_model = keras.Model(given, head(base(given)))
    path = tmp_path / f"transfer{suffix}"
    keras_model.save(path)
    x = np.random.default_rng(8).normal(size=(3, 6)).astype(np.float32)
    expected = keras.ops.convert_to_numpy(keras_model.predict(x, verbose=0))
    model = dlcore.load(path)
    assert sorted(layer.name for layer in model.flat_layers) == ["dense", "dense_1"]
    np.testing.assert_allclose(model.predict(x), expected, atol=1e-6)
    model.set_weights([np.zeros_like(array) for array in model.get_weights()])
    model.load_weights(path)   # Keras's names in the file, the renamed layer's included
    np.testing.assert_allclose(model.predict(x), expected, atol=1e-6)
    np.testing.assert_allclose(dlcore.load(path, architecture=model).predict(x), expected,
                               atol=1e-6)
    model.save(tmp_path / f"back{suffix}")
    again = keras.models.load_model(tmp_path / f"back{suffix}")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(again.predict(x, verbose=0)),
                               expected, atol=1e-6)


@pytest.mark.parametrize("history, message", [
    (["input_layer", 5, 0], "its layers take the tensor \\['input_layer', 5, 0\\]"),
    (["conv2d", 2**64, 0], "its layers take the tensor"),
    (["conv2d", True, 0], "its layers take the tensor"),
])
def test_a_nested_model_taking_a_tensor_it_does_not_make_is_refused(tmp_path, history, message):
    """Found by the model-file fuzzer: a node index past the nested layer's calls (or of its
    input) reached a KeyError in the weights' order."""
    def point(config):
        entry = next(layer for layer in config["config"]["layers"]
                     if layer["class_name"] == "Functional")
        inner = [layer for layer in entry["config"]["layers"]
                 if layer["class_name"] != "InputLayer"]
        inner[1]["inbound_nodes"][0]["args"][0]["config"]["keras_history"] = history
    with pytest.raises(dlcore.ModelFileError, match=message):
        dlcore.load(edited_archive(tmp_path, "keras_nested_vision.keras", point))


def test_a_layer_name_that_is_not_a_string_is_refused_in_one_line(tmp_path):
    """Found by the fuzzer: the names gathered to check nested models' took a dict."""
    def bad_name(config):
        config["config"]["layers"][-1]["config"]["name"] = {}
    with pytest.raises(dlcore.ModelFileError, match="has the invalid name"):
        dlcore.load(edited_archive(tmp_path, "keras_nested_vision.keras", bad_name))


def test_a_loaded_nested_base_freezes_with_the_transfer_learning_recipe():
    """Keras's recipe on the loaded model: ``get_layer("base").trainable = False`` keeps the
    base's weights through a training step while the head moves; the summary gives the base
    one row with its parameters."""
    saved = np.load(fixture("keras_nested_base.keras.npz"))
    x, labels = saved["x"].transpose(0, 3, 1, 2), saved["labels"]
    model = dlcore.load(fixture("keras_nested_base.keras"))
    base = model.get_layer("base")
    base.trainable = False
    before = [w.copy() for w in base.get_weights()]
    head = [w.copy() for w in model.get_layer("head").get_weights()]
    model.train_on_batch(x[:8], labels[:8])
    for old, new in zip(before, base.get_weights()):
        np.testing.assert_array_equal(old, new)
    assert any(not np.array_equal(old, new)
               for old, new in zip(head, model.get_layer("head").get_weights()))
    rows = model.summary(print_fn=None).rows
    assert [(row.name, row.class_name, row.trainable) for row in rows] == \
        [("base", "Sequential", False), ("head", "Dense", True)]
    assert rows[0].params == base.count_params()


def test_a_model_keras_nests_loads_with_keras_layers(tmp_path):
    """Real Keras: a functional feature model and a Sequential head nested in a model load
    with Keras's ``model.layers`` (names and nesting) and Keras's predictions."""
    from test_io_keras import real_keras
    keras = real_keras()
    inner_input = keras.Input((6, 6, 1))
    features = keras.Model(inner_input, keras.layers.Flatten()(
        keras.layers.Conv2D(2, 3, activation="relu")(inner_input)), name="features")
    head = keras.Sequential([keras.layers.Dense(4, activation="relu"),
                             keras.layers.Dense(3, activation="softmax")], name="head")
    inputs = keras.Input((6, 6, 1))
    keras_model = keras.Model(inputs, head(features(inputs)))
    path = tmp_path / "nested.keras"
    keras_model.save(path)
    model = dlcore.load(path)
    assert [layer.name for layer in model.layers] == \
        [layer.name for layer in keras_model.layers if not isinstance(
            layer, keras.layers.InputLayer)]
    assert isinstance(model.get_layer("features"), dlcore.Model)
    assert isinstance(model.get_layer("head"), dlcore.Sequential)
    x = np.random.default_rng(0).random((4, 6, 6, 1)).astype(np.float32)
    expected = keras.ops.convert_to_numpy(keras_model.predict(x, verbose=0))
    np.testing.assert_allclose(model.predict(x.transpose(0, 3, 1, 2)), expected, atol=1e-5)


def test_a_dlcore_model_nesting_a_sequential_saves_to_keras_with_its_nesting(tmp_path):
    """Real Keras: dlcore's transfer-learning model (a frozen Sequential base called once
    under a head) written as a Keras 3 archive, and as model.to_json(), loads in Keras with the
    base as one layer, frozen, predicting as dlcore does; dlcore reads it back nested. The
    legacy .h5 file (``model.save("m.h5")``) keeps the nesting too."""
    from test_io_keras import real_keras
    keras = real_keras()
    base = dlcore.Sequential([dlcore.layers.Conv2D(3, 3, activation="relu"),
                              dlcore.layers.Flatten(), dlcore.layers.Dense(4)],
                             input_shape=(1, 6, 6), name="base")
    inputs = dlcore.Input((1, 6, 6))
    model = dlcore.Model(inputs, dlcore.layers.Dense(2, activation="softmax",
                                                     name="head")(base(inputs)))
    base.trainable = False
    x = np.random.default_rng(5).random((4, 1, 6, 6)).astype(np.float32)
    path = tmp_path / "transfer.keras"
    model.save(path)
    keras_model = keras.models.load_model(path)
    assert [layer.name for layer in keras_model.layers] == ["input", "base", "head"]
    assert keras_model.get_layer("base").trainable_weights == []
    nhwc = x.transpose(0, 2, 3, 1)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(keras_model.predict(nhwc, verbose=0)),
                               model.predict(x), atol=1e-5)
    again = dlcore.load(path)
    assert [layer.name for layer in again.layers] == ["base", "head"]
    np.testing.assert_allclose(again.predict(x), model.predict(x), atol=1e-6)
    from_json = keras.models.model_from_json(model.to_json())
    assert [layer.name for layer in from_json.layers] == ["input", "base", "head"]
    legacy = tmp_path / "transfer.h5"
    model.save(legacy)
    from_legacy = keras.models.load_model(legacy)
    assert [layer.name for layer in from_legacy.layers] == ["input", "base", "head"]
    assert from_legacy.get_layer("base").trainable_weights == []
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(from_legacy.predict(nhwc, verbose=0)), model.predict(x),
        atol=1e-5)


def _siamese(frozen_layer=False):
    """The lecture's shared vision model (functional, with a batch normalisation) called on
    two digits under a Dense, compiled with SGD; ``frozen_layer``: its convolution frozen."""
    digit = dlcore.Input((1, 6, 6))
    features = dlcore.layers.BatchNormalization(name="norm")(
        dlcore.layers.Conv2D(2, 3, activation="relu", name="conv")(digit))
    vision = dlcore.Model(digit, dlcore.layers.Dense(3, name="code")(
        dlcore.layers.Flatten(name="flat")(features)), name="vision")
    vision.get_layer("conv").trainable = not frozen_layer
    first, second = dlcore.Input((1, 6, 6), name="a"), dlcore.Input((1, 6, 6), name="b")
    joined = dlcore.layers.concatenate([vision(first), vision(second)])
    model = dlcore.Model([first, second],
                         dlcore.layers.Dense(1, activation="sigmoid", name="same")(joined))
    model.compile("binary_crossentropy", dlcore.optimizers.SGD(learning_rate=0.5))
    return model


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_shared_functional_model_saves_to_keras_nested_and_trains_on_as_keras(
        tmp_path, suffix):
    """Real Keras: a functional model called twice (shared weights) written as a Keras archive,
    a legacy .h5 file or to_json is one nested Keras model called twice, as Keras's own
    siamese model: ``get_layer("vision")`` finds it, its arrays are one set (Keras's legacy
    order of a model's arrays: the trainable ones first, a frozen layer's and the moving
    statistics after), predictions and one more SGD step agree with dlcore's, and dlcore reads
    the file back nested."""
    from test_io_keras import real_keras
    keras = real_keras()
    generator = np.random.default_rng(7)
    x = [generator.random((4, 1, 6, 6)).astype(np.float32) for _ in range(2)]
    labels = np.array([[1.0], [0.0], [1.0], [0.0]], np.float32)
    model = _siamese(frozen_layer=True)
    model.train_on_batch(x, labels)         # moving statistics away from their start
    path = tmp_path / f"siamese{suffix}"
    model.save(path)
    keras_model = keras.models.load_model(path)
    assert [layer.name for layer in keras_model.layers] == \
        ["a", "b", "vision", "concatenate", "same"]
    vision = keras_model.get_layer("vision")
    assert [layer.name for layer in vision.layers] == \
        ["vision_input", "conv", "norm", "flat", "code"]
    assert len(keras_model.weights) == len(model.get_weights())       # shared, not copied
    assert not vision.get_layer("conv").trainable
    nhwc = [part.transpose(0, 2, 3, 1) for part in x]
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(keras_model.predict(nhwc, verbose=0)), model.predict(x),
        atol=1e-6)
    again = dlcore.load(path)
    assert [layer.name for layer in again.layers] == ["vision", "concatenate", "same"]
    np.testing.assert_allclose(again.predict(x), model.predict(x), atol=1e-6)
    keras_model.train_on_batch(nhwc, labels)
    again.train_on_batch(x, labels)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(keras_model.predict(nhwc, verbose=0)), again.predict(x),
        atol=1e-5)
    from_json = keras.models.model_from_json(model.to_json())
    assert [layer.name for layer in from_json.layers] == \
        ["a", "b", "vision", "concatenate", "same"]


def test_a_frozen_functional_base_saves_to_keras_nested_and_frozen(tmp_path):
    """Real Keras: transfer learning with a functional base (as keras.applications' are)
    frozen under a new head, saved as an archive: Keras finds ``get_layer("base")``, frozen,
    and predicts as dlcore does."""
    from test_io_keras import real_keras
    keras = real_keras()
    image = dlcore.Input((1, 6, 6))
    base = dlcore.Model(image, dlcore.layers.Flatten()(dlcore.layers.Conv2D(2, 3)(image)),
                        name="base")
    inputs = dlcore.Input((1, 6, 6))
    model = dlcore.Model(inputs, dlcore.layers.Dense(2, activation="softmax",
                                                     name="head")(base(inputs)))
    base.trainable = False
    path = tmp_path / "transfer.keras"
    model.save(path)
    keras_model = keras.models.load_model(path)
    assert [layer.name for layer in keras_model.layers] == ["input", "base", "head"]
    assert keras_model.get_layer("base").trainable_weights == []
    x = np.random.default_rng(3).random((3, 1, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(keras_model.predict(x.transpose(0, 2, 3, 1), verbose=0)),
        model.predict(x), atol=1e-6)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_keras_sequential_nesting_a_sequential_loads_nested_and_goes_back(tmp_path, suffix):
    """Real Keras: ``keras.Sequential([base, head])`` with a Sequential base was inlined (its
    layers the model's, ``get_layer("base")`` failing); it now loads as Keras lists it, the
    base one layer (a dlcore Sequential), with Keras's predictions, and saves back to Keras
    with the base nested, a keras.Sequential again."""
    from test_io_keras import real_keras
    keras = real_keras()
    base = keras.Sequential([keras.Input((5, 5, 1)), keras.layers.Conv2D(2, 3),
                             keras.layers.Flatten()], name="base")
    keras_model = keras.Sequential([keras.Input((5, 5, 1)), base,
                                    keras.layers.Dense(2, name="head")])
    path = tmp_path / f"stacked{suffix}"
    keras_model.save(path)
    model = dlcore.load(path)
    assert [layer.name for layer in model.layers] == ["base", "head"]
    assert isinstance(model.get_layer("base"), dlcore.Sequential)
    x = np.random.default_rng(4).random((3, 5, 5, 1)).astype(np.float32)
    expected = keras.ops.convert_to_numpy(keras_model.predict(x, verbose=0))
    np.testing.assert_allclose(model.predict(x.transpose(0, 3, 1, 2)), expected, atol=1e-6)
    back = tmp_path / "back.keras"
    model.save(back)
    again = keras.models.load_model(back)
    assert isinstance(again, keras.Sequential)
    assert [layer.name for layer in again.layers] == ["base", "head"]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(again.predict(x, verbose=0)),
                               expected, atol=1e-6)


@pytest.mark.parametrize("suffix", [".weights.h5", ".h5"])
def test_the_weights_of_a_nesting_model_go_both_ways_with_keras_nested(tmp_path, suffix):
    """Real Keras: ``save_weights`` of a model that nests another wrote the flat layout, which
    Keras's model of the same architecture (the nested model one layer) refused ("expected 2
    variables, but received 0", "Layer count mismatch"), and dlcore refused Keras's nested
    file. Both files now keep the nesting: Keras loads dlcore's weights, dlcore Keras's (its
    ``.weights.h5``, its legacy model file), into the shared vision model with a frozen layer
    and moving statistics; dlcore still reads its earlier flat files."""
    from test_io_keras import real_keras
    keras = real_keras()
    generator = np.random.default_rng(11)
    x = [generator.random((4, 1, 6, 6)).astype(np.float32) for _ in range(2)]
    model = _siamese(frozen_layer=True)
    model.train_on_batch(x, np.array([[1.0], [0.0], [1.0], [0.0]], np.float32))
    nhwc = [part.transpose(0, 2, 3, 1) for part in x]
    model.save(tmp_path / "siamese.keras")
    keras_model = keras.models.load_model(tmp_path / "siamese.keras")
    for variable in keras_model.weights:
        variable.assign(np.zeros(variable.shape, np.float32))
    ours = tmp_path / f"ours{suffix}"
    model.save_weights(ours)
    keras_model.load_weights(ours)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(keras_model.predict(nhwc, verbose=0)), model.predict(x),
        atol=1e-6)
    theirs = tmp_path / f"theirs{suffix}"
    if suffix == ".h5":
        keras_model.save(theirs)   # Keras 3 writes legacy weights only inside a model file
    else:
        keras_model.save_weights(theirs)
    for path in (theirs, ours):
        fresh = _siamese(frozen_layer=True)
        fresh.load_weights(path)
        np.testing.assert_allclose(fresh.predict(x), model.predict(x), atol=1e-6)
    flat = tmp_path / f"flat{suffix}"   # the flat layout dlcore wrote before
    from dlcore.io import keras as keras_io
    with h5py.File(flat, "w") as h5file:
        exported = keras_io._Exported(model, architecture=False)
        if suffix == ".h5":
            keras_io._write_weights(h5file, exported)
        else:
            from dlcore.io import keras_weights
            keras_weights.write(h5file, exported)
    fresh = _siamese(frozen_layer=True)
    fresh.load_weights(flat)
    np.testing.assert_allclose(fresh.predict(x), model.predict(x), atol=1e-6)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_keras_model_nested_two_deep_loads_nested_and_goes_back(tmp_path, suffix):
    """Real Keras: transfer learning's base (functional) that itself calls a block model (a
    Sequential), under a head, was refused at import ("a model nested in a nested model is not
    imported"). It loads nested as Keras lists it (``model.layers``, ``get_layer`` at each
    level), predicting as Keras; Keras's nested weights file loads into it; it saves back to
    Keras (archive and legacy file) nested two deep, and so do its weights files."""
    from test_io_keras import real_keras
    keras = real_keras()
    block = keras.Sequential([keras.Input((5, 5, 1)), keras.layers.Conv2D(2, 3, name="conv"),
                              keras.layers.ReLU(name="relu")], name="block")
    image = keras.Input((5, 5, 1))
    base = keras.Model(image, keras.layers.Flatten(name="flat")(block(image)), name="base")
    inputs = keras.Input((5, 5, 1), name="image")
    keras_model = keras.Model(inputs, keras.layers.Dense(2, name="head")(base(inputs)))
    x = np.random.default_rng(8).random((3, 5, 5, 1)).astype(np.float32)
    expected = keras.ops.convert_to_numpy(keras_model.predict(x, verbose=0))
    path = tmp_path / f"deep{suffix}"
    keras_model.save(path)
    model = dlcore.load(path)
    assert [layer.name for layer in model.layers] == ["base", "head"]
    loaded_base = model.get_layer("base")
    assert [layer.name for layer in loaded_base.layers] == ["block", "flat"]
    assert isinstance(loaded_base.get_layer("block"), dlcore.Sequential)
    assert [layer.name for layer in loaded_base.get_layer("block").layers] == ["conv", "relu"]
    nchw = x.transpose(0, 3, 1, 2)
    np.testing.assert_allclose(model.predict(nchw), expected, atol=1e-6)
    theirs = tmp_path / "theirs.weights.h5"
    keras_model.save_weights(theirs)
    model.set_weights([np.zeros_like(array) for array in model.get_weights()])
    model.load_weights(theirs)
    np.testing.assert_allclose(model.predict(nchw), expected, atol=1e-6)
    back = tmp_path / f"back{suffix}"
    model.save(back)
    again = keras.models.load_model(back)
    assert [layer.name for layer in again.layers] == ["image", "base", "head"]
    assert [layer.name for layer in again.get_layer("base").layers] == \
        ["base_input", "block", "flat"]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(again.predict(x, verbose=0)),
                               expected, atol=1e-6)
    ours = tmp_path / f"ours{'.weights.h5' if suffix == '.keras' else '.h5'}"
    model.save_weights(ours)
    for variable in again.weights:
        variable.assign(np.zeros(variable.shape, np.float32))
    again.load_weights(ours)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(again.predict(x, verbose=0)),
                               expected, atol=1e-6)


def test_a_dlcore_model_nesting_a_frozen_block_two_deep_saves_to_keras_nested(tmp_path):
    """Real Keras: a frozen block (with moving statistics) in a base under a head was written
    flat (a nested model that nested a model); the legacy file now nests it two deep, its
    arrays in Keras's order (a frozen model's after the trainable ones), so Keras predicts as
    dlcore and reads dlcore's legacy weights file."""
    from test_io_keras import real_keras
    keras = real_keras()
    block = dlcore.Sequential([dlcore.layers.Conv2D(2, 3, name="conv"),
                               dlcore.layers.BatchNormalization(name="norm")],
                              input_shape=(1, 5, 5), name="block")
    image = dlcore.Input((1, 5, 5))
    base = dlcore.Model(image, dlcore.layers.Dense(3, name="code")(
        dlcore.layers.Flatten(name="flat")(block(image))), name="base")
    inputs = dlcore.Input((1, 5, 5))
    model = dlcore.Model(inputs, dlcore.layers.Dense(2, name="head")(base(inputs)))
    block.trainable = False
    x = np.random.default_rng(9).random((3, 1, 5, 5)).astype(np.float32)
    model.compile("mse", "sgd")
    model.train_on_batch(x, np.ones((3, 2), np.float32))
    model.save(tmp_path / "frozen.h5")
    keras_model = keras.models.load_model(tmp_path / "frozen.h5")
    assert [layer.name for layer in keras_model.get_layer("base").layers] == \
        ["base_input", "block", "flat", "code"]
    assert keras_model.get_layer("base").get_layer("block").trainable_weights == []
    nhwc = x.transpose(0, 2, 3, 1)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(keras_model.predict(nhwc, verbose=0)), model.predict(x),
        atol=1e-6)
    model.save_weights(tmp_path / "frozen_weights.h5")
    for variable in keras_model.weights:
        variable.assign(np.zeros(variable.shape, np.float32))
    keras_model.load_weights(tmp_path / "frozen_weights.h5")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(keras_model.predict(nhwc, verbose=0)), model.predict(x),
        atol=1e-6)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_nested_model_calling_its_own_layer_twice_saves_to_keras_nested(tmp_path, suffix):
    """Real Keras: a nested model that calls one of its layers twice (one Dense applied two
    times: a layer of several inbound nodes in its config), itself called twice on the model,
    is one nested Keras model as Keras's own: ``get_layer("twice")`` finds it, its arrays are
    one set, predictions agree, its weights file loads into Keras's model of it, and dlcore
    reads the file back nested. It was written flat without a word."""
    from test_io_keras import real_keras
    keras = real_keras()
    rows = dlcore.Input((4,))
    shared = dlcore.layers.Dense(4, activation="tanh", name="shared")
    twice = dlcore.Model(rows, shared(shared(rows)), name="twice")
    given = dlcore.Input((4,))
    model = dlcore.Model(given, dlcore.layers.Dense(2, name="head")(twice(twice(given))))
    x = np.random.default_rng(3).normal(size=(5, 4)).astype(np.float32)
    path = tmp_path / f"twice{suffix}"
    model.save(path)
    keras_model = keras.models.load_model(path)
    assert [layer.name for layer in keras_model.layers][1:] == ["twice", "head"]
    assert [layer.name for layer in keras_model.get_layer("twice").layers] == \
        ["twice_input", "shared"]
    assert len(keras_model.weights) == len(model.get_weights()) == 4      # shared, not copied
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(keras_model.predict(x, verbose=0)), model.predict(x),
        atol=1e-6)
    model.save_weights(tmp_path / "twice.weights.h5")
    keras_model.set_weights([np.zeros_like(w) for w in keras_model.get_weights()])
    keras_model.load_weights(tmp_path / "twice.weights.h5")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(keras_model.predict(x, verbose=0)), model.predict(x),
        atol=1e-6)
    again = dlcore.load(path)
    assert [layer.name for layer in again.layers] == ["twice", "head"]
    np.testing.assert_allclose(again.predict(x), model.predict(x), atol=1e-6)


def test_a_nested_model_keras_files_cannot_nest_is_written_flat_with_a_warning(tmp_path):
    """A nested model one of whose layers the model also calls on its own tensors is written
    with its layers the model's: a warning names the model and why (it was written flat
    without a word, get_layer then failing in Keras)."""
    rows = dlcore.Input((3,))
    shared = dlcore.layers.Dense(3, name="shared")
    inner = dlcore.Model(rows, shared(rows), name="inner")
    given = dlcore.Input((3,))
    model = dlcore.Model(given, dlcore.layers.Dense(1, name="head")(shared(inner(given))))
    with pytest.warns(UserWarning, match="the nested model 'inner' is written flat .*also "
                                         "called on the model's own tensors"):
        model.save(tmp_path / "inner.keras")


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_nested_model_of_two_inputs_saves_to_keras_nested(tmp_path, suffix):
    """Real Keras: a nested model of two inputs whose layers read its second input first is
    one nested Keras model called on the model's two tensors, each on its own input: Keras
    finds get_layer("pair") and predicts as dlcore, the pair alone too, and dlcore reads the
    file back nested (it was written flat)."""
    from test_io_keras import real_keras
    keras = real_keras()
    left, right = dlcore.Input((3,)), dlcore.Input((2,))
    pair = dlcore.Model([left, right], dlcore.layers.concatenate(
        [dlcore.layers.Dense(2, name="of_right")(right),
         dlcore.layers.Dense(2, name="of_left")(left)]), name="pair")
    first, second = dlcore.Input((3,)), dlcore.Input((2,))
    model = dlcore.Model([first, second], dlcore.layers.Dense(1, name="head")(
        pair([first, second])))
    generator = np.random.default_rng(8)
    x = [generator.normal(size=(4, 3)).astype(np.float32),
         generator.normal(size=(4, 2)).astype(np.float32)]
    path = tmp_path / f"pair{suffix}"
    model.save(path)
    keras_model = keras.models.load_model(path)
    assert [layer.name for layer in keras_model.layers][2:] == ["pair", "head"]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(keras_model.predict(x, verbose=0)),
                               model.predict(x), atol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(
        keras_model.get_layer("pair").predict(x, verbose=0)), pair.predict(x), atol=1e-6)
    again = dlcore.load(path)
    assert [layer.name for layer in again.layers] == ["pair", "head"]
    np.testing.assert_allclose(again.predict(x), model.predict(x), atol=1e-6)


def _dense_entry(name, units):
    return {"class_name": "Dense", "config": {"name": name, "units": units}}


def _sequential_nesting(base_kind, first, *after):
    """A Keras Sequential config (``first`` and ``after`` around it) nesting a ``base_kind``
    base of one Dense on 4 features."""
    base_input = {"class_name": "InputLayer", "name": "base_in",
                  "config": {"name": "base_in", "batch_shape": [None, 4]}}
    dense = {**_dense_entry("d1", 3), "name": "d1", "inbound_nodes": [
        {"args": [{"class_name": "__keras_tensor__",
                   "config": {"shape": [None, 4], "keras_history": ["base_in", 0, 0]}}],
         "kwargs": {}}]}
    base = {"class_name": "Sequential", "config": {"name": "base", "layers": [
        base_input, _dense_entry("d1", 3)]}} if base_kind == "Sequential" else \
        {"class_name": "Functional", "config": {
            "name": "base", "layers": [base_input, dense],
            "input_layers": ["base_in", 0, 0], "output_layers": ["d1", 0, 0]}}
    layers = ([first] if first is not None else []) + [base, *after]
    return {"class_name": "Sequential", "config": {"name": "outer", "layers": layers}}


@pytest.mark.parametrize("base_kind", ["Sequential", "Functional"])
@pytest.mark.parametrize("first, after, message", [
    ({"class_name": "InputLayer", "config": {"name": "in", "batch_shape": [None, 4]}},
     ["junk", _dense_entry("head", 2)], "a layer of the Keras model_config is not an object "
                                        "with a config"),
    ({"class_name": "InputLayer", "config": {"batch_shape": [None, 4]}},
     [_dense_entry("head", 2)], "a Keras InputLayer layer has the invalid name 'None'"),
    (None, [_dense_entry("head", 2)], "the Keras model does not say its input shape"),
], ids=["not-a-layer", "unnamed-input", "no-input-shape"])
def test_a_damaged_sequential_nesting_a_model_is_refused_in_one_line(base_kind, first, after,
                                                                     message):
    """A damaged Keras Sequential that nests a model (an entry no layer, an InputLayer without
    a name, no input shape) is refused in one line naming the damage by the importer that
    reads a well-formed one: the older importer that inlined a nested Sequential called a
    functional base "not imported" and named an InputLayer the file does not have."""
    text = json.dumps(_sequential_nesting(base_kind, first, *after))
    with pytest.raises(dlcore.ModelFileError, match=message) as caught:
        dlcore.models.model_from_json(text)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("base_kind", ["Sequential", "Functional"])
def test_a_sequential_config_nesting_a_model_loads_nested(base_kind):
    """The well-formed configs beside the damaged ones above: the base is one layer."""
    first = {"class_name": "InputLayer", "config": {"name": "in", "batch_shape": [None, 4]}}
    model = dlcore.models.model_from_json(json.dumps(
        _sequential_nesting(base_kind, first, _dense_entry("head", 2))))
    assert [layer.name for layer in model.layers] == ["base", "head"]
    assert model.predict(np.ones((2, 4), np.float32)).shape == (2, 2)


def test_a_keras_sequential_nesting_a_model_inside_a_model_goes_back_a_sequential(tmp_path):
    """Real Keras: a functional model calling a Sequential that nests a Sequential (dlcore's
    Sequential holds layers only, so the middle one loads as a dlcore Model) goes back to Keras
    a Sequential: dlcore's weights file of it loads into Keras's own model (Keras names a
    nested model's weights by its class, ``layers/sequential/...``; it failed, "expected 2
    variables, but received 0"), and the archive's middle model is a keras.Sequential."""
    from test_io_keras import real_keras
    keras = real_keras()
    layers = keras.layers
    inner = keras.Sequential([keras.Input((5,)), layers.Dense(4, name="inner_dense")],
                             name="inner")
    middle = keras.Sequential([keras.Input((5,)), inner, layers.Dense(3, name="middle_dense")],
                              name="middle")
    given = keras.Input((5,))
    keras_model = keras.Model(given, layers.Dense(2, name="head")(middle(given)))
    path = tmp_path / "middle.keras"
    keras_model.save(path)
    x = np.random.default_rng(5).normal(size=(3, 5)).astype(np.float32)
    expected = keras.ops.convert_to_numpy(keras_model.predict(x, verbose=0))
    model = dlcore.load(path)
    np.testing.assert_allclose(model.predict(x), expected, atol=1e-6)
    model.save_weights(tmp_path / "middle.weights.h5")
    keras_model.set_weights([np.zeros_like(w) for w in keras_model.get_weights()])
    keras_model.load_weights(tmp_path / "middle.weights.h5")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(keras_model.predict(x, verbose=0)),
                               expected, atol=1e-6)
    model.save(tmp_path / "back.keras")
    again = keras.models.load_model(tmp_path / "back.keras")
    assert isinstance(again.get_layer("middle"), keras.Sequential)
    assert [layer.name for layer in again.get_layer("middle").layers] == \
        ["inner", "middle_dense"]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(again.predict(x, verbose=0)),
                               expected, atol=1e-6)


def test_a_nested_model_of_two_inputs_takes_them_in_keras_order(tmp_path):
    """Real Keras: a nested model whose layers read its second input first loads with its
    inputs in Keras's order (its input_layers), so that the nested model, called on its own,
    computes what Keras's does: it took them in the order its layers first read them, which
    swapped them."""
    from test_io_keras import real_keras
    keras = real_keras()
    layers = keras.layers
    first, second = keras.Input((4,), name="first"), keras.Input((4,), name="second")
    pair = keras.Model([first, second], layers.Concatenate(name="joined")(
        [layers.Dense(3, name="of_second")(second), layers.Dense(3, name="of_first")(first)]),
        name="pair")
    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    keras_model = keras.Model([a, b], layers.Dense(1, name="head")(pair([a, b])))
    keras_model.save(tmp_path / "pair.keras")
    model = dlcore.load(tmp_path / "pair.keras")
    generator = np.random.default_rng(6)
    x = [generator.normal(size=(3, 4)).astype(np.float32) for _ in range(2)]
    np.testing.assert_allclose(model.predict(x), keras.ops.convert_to_numpy(
        keras_model.predict(x, verbose=0)), atol=1e-6)
    np.testing.assert_allclose(model.get_layer("pair").predict(x), keras.ops.convert_to_numpy(
        keras_model.get_layer("pair").predict(x, verbose=0)), atol=1e-6)


@pytest.mark.parametrize("nested_reads", ["first", "both"])
def test_a_nested_model_whose_input_a_model_in_it_reads_first_keeps_keras_order(tmp_path,
                                                                                nested_reads):
    """Real Keras: a nested model of two inputs, one read first by a model nested in it (a
    Sequential) and the other by its own Dense: its inputs are in Keras's order (it is the
    input left); the nested model called on its own took them swapped, without a word. When
    models nested in it read both first, each input is the tensor that model's call takes
    there (a warning said the order could not be told)."""
    from test_io_keras import real_keras
    keras = real_keras()
    layers = keras.layers
    first, second = keras.Input((4,), name="first"), keras.Input((4,), name="second")
    inner = keras.Sequential([keras.Input((4,)), layers.Dense(3, name="inner_dense")],
                             name="inner")
    other = layers.Dense(3, name="of_second") if nested_reads == "first" else keras.Sequential(
        [keras.Input((4,)), layers.Dense(3, name="other_dense")], name="other")
    pair = keras.Model([first, second], layers.Add(name="joined")([other(second),
                                                                   inner(first)]), name="pair")
    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    keras_model = keras.Model([a, b], layers.Dense(1, name="head")(pair([a, b])))
    keras_model.save(tmp_path / "pair.keras")
    generator = np.random.default_rng(7)
    x = [generator.normal(size=(3, 4)).astype(np.float32) for _ in range(2)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        model = dlcore.load(tmp_path / "pair.keras")
    np.testing.assert_allclose(model.get_layer("pair").predict(x), keras.ops.convert_to_numpy(
        keras_model.get_layer("pair").predict(x, verbose=0)), atol=1e-6)


def _keras_arrays(keras, values):
    values = values if isinstance(values, list) else [values]
    return [keras.ops.convert_to_numpy(value) for value in values]


def _assert_same_arrays(got, expected):
    got = got if isinstance(got, list) else [got]
    assert len(got) == len(expected)
    for one, other in zip(got, expected):
        np.testing.assert_allclose(one, other, atol=1e-5)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_nested_model_of_two_outputs_goes_keras_dlcore_keras_dlcore(tmp_path, suffix):
    """Real Keras: a nested model of two outputs called twice (an output of its first call an
    output of the model) loads nested and predicts as Keras, goes back to Keras nested (one
    layer of two outputs, not flat with a warning) and back again, and the weights files
    cross both ways. It was refused at import and written flat at export."""
    from test_io_keras import real_keras
    keras = real_keras()
    layers = keras.layers
    rows = keras.Input((4,))
    hidden = layers.Dense(3, activation="tanh", name="hidden")(rows)
    two = keras.Model(rows, [layers.Dense(2, name="first")(hidden),
                             layers.Dense(3, name="second")(hidden)], name="two")
    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    (p, q), (r, s) = two(a), two(b)
    keras_model = keras.Model([a, b], [q, layers.Dense(1, name="head")(
        layers.Concatenate(name="joined")([p, r, s]))])
    generator = np.random.default_rng(11)
    x = [generator.normal(size=(3, 4)).astype(np.float32) for _ in range(2)]
    expected = _keras_arrays(keras, keras_model.predict(x, verbose=0))
    keras_model.save(tmp_path / f"keras{suffix}")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        model = dlcore.load(tmp_path / f"keras{suffix}")
        assert [layer.name for layer in model.layers] == ["two", "joined", "head"]
        _assert_same_arrays(model.predict(x), expected)
        # its summary rows give both outputs' shapes, as Keras's (it gave the first used)
        summary = model.summary(print_fn=None)
        assert [row.output_shape for row in summary.rows][:2] == [((2,), (3,))] * 2
        assert "[(None, 2), (None, 3)]" in str(summary)
        model.save(tmp_path / f"dlcore{suffix}")      # nested, without a warning
    again = keras.models.load_model(tmp_path / f"dlcore{suffix}")
    assert len(again.get_layer("two").outputs) == 2
    _assert_same_arrays(_keras_arrays(keras, again.predict(x, verbose=0)), expected)
    _assert_same_arrays(dlcore.load(tmp_path / f"dlcore{suffix}").predict(x), expected)
    weights = tmp_path / ("w.weights.h5" if suffix == ".keras" else "w.h5")
    model.save_weights(weights)
    again.set_weights([np.zeros_like(array) for array in again.get_weights()])
    again.load_weights(weights)
    _assert_same_arrays(_keras_arrays(keras, again.predict(x, verbose=0)), expected)
    keras_weights = tmp_path / ("k.weights.h5" if suffix == ".keras" else "k.h5")
    if suffix == ".keras":
        keras_model.save_weights(keras_weights)
    else:   # Keras 3's save_weights takes .weights.h5 only: its legacy model file's weights
        keras_model.save(keras_weights)
    model.set_weights([np.zeros_like(array) for array in model.get_weights()])
    model.load_weights(keras_weights)
    _assert_same_arrays(model.predict(x), expected)


def test_a_nested_model_whose_inputs_only_shared_layers_read_saves_to_keras_nested(tmp_path):
    """Real Keras: a dlcore model nesting a model of two inputs, each read only by a layer it
    calls twice or by a model nested in it, called on the model's inputs swapped: Keras loads
    it nested, each call's tensors on the right inputs (the nested model alone predicts as
    dlcore's), and dlcore reads it back nested without a warning. It was written flat."""
    from test_io_keras import real_keras
    keras = real_keras()
    block_input = dlcore.Input((4,))
    block = dlcore.Model(block_input, dlcore.layers.Dense(2, name="block_dense")(block_input),
                         name="block")
    left, right = dlcore.Input((4,)), dlcore.Input((4,))
    shared = dlcore.layers.Dense(3, name="shared")
    pair = dlcore.Model([left, right], dlcore.layers.concatenate(
        [shared(right), dlcore.layers.Dense(2, name="after")(shared(left)), block(right),
         block(left)]), name="pair")
    first, second = dlcore.Input((4,)), dlcore.Input((4,))
    model = dlcore.Model([first, second], dlcore.layers.Dense(1, name="head")(
        pair([second, first])))
    generator = np.random.default_rng(12)
    x = [generator.normal(size=(3, 4)).astype(np.float32) for _ in range(2)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        model.save(tmp_path / "pair.keras")
        keras_model = keras.models.load_model(tmp_path / "pair.keras")
        again = dlcore.load(tmp_path / "pair.keras")
    assert [layer.name for layer in keras_model.layers][2:] == ["pair", "head"]
    _assert_same_arrays(_keras_arrays(keras, keras_model.predict(x, verbose=0)),
                        [model.predict(x)])
    _assert_same_arrays(_keras_arrays(keras, keras_model.get_layer("pair").predict(
        x, verbose=0)), [pair.predict(x)])
    assert [layer.name for layer in again.layers] == ["pair", "head"]
    _assert_same_arrays(again.get_layer("pair").predict(x), [pair.predict(x)])
    _assert_same_arrays(again.predict(x), [model.predict(x)])


def test_the_outputs_of_a_nested_functional_models_calls_cross_keras_files(tmp_path):
    """Real Keras: the outputs of a model are a functional model's two calls (and a head on
    the second). Keras's output_layers number such a model's calls from 1 ('base', 1, 0 is
    its first call; 0 its last): dlcore read Keras's file with the second call's output
    first (1.9 off), and wrote ('base', 0, 0), which Keras read as the second call."""
    from test_io_keras import real_keras
    keras = real_keras()
    layers = keras.layers
    rows = keras.Input((4,))
    base = keras.Model(rows, layers.Dense(2, name="dense")(rows), name="base")
    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    keras_model = keras.Model([a, b], [base(a), layers.Dense(1, name="head")(base(b)),
                                       base(b)])
    generator = np.random.default_rng(13)
    x = [generator.normal(size=(3, 4)).astype(np.float32) for _ in range(2)]
    expected = _keras_arrays(keras, keras_model.predict(x, verbose=0))
    keras_model.save(tmp_path / "keras.keras")
    model = dlcore.load(tmp_path / "keras.keras")
    _assert_same_arrays(model.predict(x), expected)
    model.save(tmp_path / "dlcore.keras")
    _assert_same_arrays(_keras_arrays(keras, keras.models.load_model(
        tmp_path / "dlcore.keras").predict(x, verbose=0)), expected)


def test_a_nested_output_the_model_leaves_unused_is_refused_in_one_line():
    """A Keras nested model of two outputs whose second the model never uses: dlcore's model
    runs only what its outputs need, so that output's layer would be lost with its weights:
    refused in one line naming the layer (now that nested models of several outputs load)."""
    inner_input = {"class_name": "InputLayer", "name": "rows",
                   "config": {"name": "rows", "batch_shape": [None, 4]}}

    def dense(name, units, source):
        return {"class_name": "Dense", "name": name, "config": {"name": name, "units": units},
                "inbound_nodes": [{"args": [{"class_name": "__keras_tensor__", "config": {
                    "shape": [None, 4], "keras_history": list(source)}}], "kwargs": {}}]}

    two = {"class_name": "Functional", "name": "two", "config": {
        "name": "two", "layers": [inner_input, dense("first", 2, ("rows", 0, 0)),
                                  dense("second", 3, ("rows", 0, 0))],
        "input_layers": ["rows", 0, 0], "output_layers": [["first", 0, 0], ["second", 0, 0]]},
        "inbound_nodes": dense("two", 0, ("x", 0, 0))["inbound_nodes"]}
    config = {"class_name": "Functional", "config": {
        "name": "outer", "layers": [{**inner_input, "name": "x", "config": {
            "name": "x", "batch_shape": [None, 4]}}, two, dense("head", 1, ("two", 0, 0))],
        "input_layers": ["x", 0, 0], "output_layers": ["head", 0, 0]}}
    with pytest.raises(dlcore.ModelFileError, match="the nested model 'two' gives an output "
                                                    "that 'outer' leaves unused, made by "
                                                    "second") as caught:
        dlcore.models.model_from_json(json.dumps(config))
    assert "\n" not in str(caught.value)


def test_a_keras_sequential_nesting_a_model_goes_back_a_sequential_through_dlcore_files(
        tmp_path):
    """Real Keras: ``keras.Sequential([base, head])`` loaded into dlcore (a dlcore Model, its
    Sequential holding layers only) goes back to Keras a ``keras.Sequential``, directly and
    after a dlcore model file in between, and so does a Sequential nesting a model nested in
    a model: both went back as functional models (the nested one after dlcore's file)."""
    from test_io_keras import real_keras
    keras = real_keras()
    layers = keras.layers
    base = keras.Sequential([keras.Input((4,)), layers.Dense(3, activation="tanh",
                                                             name="base_dense")], name="base")
    top = keras.Sequential([keras.Input((4,)), base, layers.Dense(2, name="head")], name="top")
    given = keras.Input((4,))
    middle = keras.Sequential([keras.Input((4,)), base, layers.Dense(2, name="middle_dense")],
                              name="middle")
    outer = keras.Model(given, layers.Dense(1, name="out")(middle(given)), name="outer")
    x = np.random.default_rng(14).normal(size=(3, 4)).astype(np.float32)
    for keras_model in (top, outer):
        keras_model.save(tmp_path / "keras.keras")
        model = dlcore.load(tmp_path / "keras.keras")
        dlcore.save(model, tmp_path / "dlcore.h5")
        for source in (model, dlcore.load(tmp_path / "dlcore.h5")):
            source.save(tmp_path / "back.keras")
            again = keras.models.load_model(tmp_path / "back.keras")
            assert isinstance(again if keras_model is top else again.get_layer("middle"),
                              keras.Sequential)
            _assert_same_arrays(_keras_arrays(keras, again.predict(x, verbose=0)),
                                _keras_arrays(keras, keras_model.predict(x, verbose=0)))
        if keras_model is outer:   # its summary row names the class Keras's names
            assert [row.class_name for row in model.summary(print_fn=None).rows] == \
                ["Sequential", "Dense"]


def _keras_layer_shared_across_nesting(keras):
    """Keras: ``d = Dense(4)`` called in a base model and again beside it, on the base's
    input (one layer, one set of weights), compiled with SGD."""
    shared = keras.layers.Dense(4, name="shared")
    rows = keras.Input((3,))
    base = keras.Model(rows, keras.layers.Dense(4, name="inner")(shared(rows)), name="base")
    given = keras.Input((3,))
    model = keras.Model(given, keras.layers.Add()([shared(given), base(given)]))
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="mse")
    return model


def _assert_three_steps_land_as_kerass(keras, keras_model, model, seed, inputs):
    """Three SGD steps of the Keras model and its dlcore import on one batch of 8 rows of
    ``inputs`` columns (4 targets) land on the same predictions and weights."""
    generator = np.random.default_rng(seed)
    x = generator.normal(size=(8, inputs)).astype(np.float32)
    y = generator.normal(size=(8, 4)).astype(np.float32)
    for _ in range(3):
        keras_model.train_on_batch(x, y)
        model.train_on_batch(x, y)
    np.testing.assert_allclose(model.predict(x), keras.ops.convert_to_numpy(
        keras_model.predict(x, verbose=0)), atol=1e-5)
    keras_arrays = [keras.ops.convert_to_numpy(w) for w in keras_model.get_weights()]
    _assert_same_arrays(model.get_weights(layout="keras"), keras_arrays)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_layer_shared_with_a_nested_model_loads_one_layer_and_trains_as_keras(
        tmp_path, suffix):
    """Real Keras: a layer that a model and a model nested in it both call is one dlcore
    layer (was two, the .h5's 6 arrays where Keras has 4, untied by training; the archive,
    which writes its arrays once, refused as "another architecture"), and three SGD steps
    land where Keras's do."""
    from test_io_keras import real_keras
    keras = real_keras()
    keras_model = _keras_layer_shared_across_nesting(keras)
    path = tmp_path / f"tied{suffix}"
    keras_model.save(path)
    model = dlcore.load(path)
    assert model.get_layer("base").get_layer("shared") is model.get_layer("shared")
    assert len(model.get_weights()) == len(keras_model.get_weights()) == 4
    _assert_three_steps_land_as_kerass(keras, keras_model, model, seed=3, inputs=3)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_nested_model_of_two_inputs_given_one_tensor_twice_keeps_both(tmp_path, suffix):
    """Real Keras: ``pair([x, x])``, a nested model of two inputs called on one tensor for
    both, loads with two inputs as Keras's (it had one: ``get_layer("pair")`` took one array)
    that compute as Keras's on two different arrays, and goes back to Keras so."""
    from test_io_keras import real_keras
    keras = real_keras()
    first, second = keras.Input((3,), name="first"), keras.Input((3,), name="second")
    pair = keras.Model([first, second], keras.layers.Concatenate()([
        keras.layers.Dense(2, name="from_first")(first),
        keras.layers.Dense(2, name="from_second")(second)]), name="pair")
    given = keras.Input((3,))
    keras_model = keras.Model(given, keras.layers.Dense(1, name="out")(pair([given, given])))
    keras_model.save(tmp_path / f"pair{suffix}")
    model = dlcore.load(tmp_path / f"pair{suffix}")
    rows = np.random.default_rng(5).normal(size=(4, 3)).astype(np.float32)
    others = rows[::-1].copy()
    assert len(model.get_layer("pair").inputs) == 2
    np.testing.assert_allclose(model.get_layer("pair").predict([rows, others]),
                               keras.ops.convert_to_numpy(pair.predict([rows, others],
                                                                       verbose=0)), atol=1e-5)
    np.testing.assert_allclose(model.predict(rows), keras.ops.convert_to_numpy(
        keras_model.predict(rows, verbose=0)), atol=1e-5)
    model.save(tmp_path / f"back{suffix}")
    back = keras.models.load_model(tmp_path / f"back{suffix}")
    assert len(back.get_layer("pair").inputs) == 2


def _keras_two_layers_of_one_name_across_nesting(keras, make_layer):
    """Keras: two distinct layers ``make_layer()`` both named ``twin`` (a name Keras needs
    unique only within a model), one in a base model, one after it in the model nesting it;
    untrained, so their arrays are their initial constants, the same in each."""
    rows = keras.Input((3,))
    base = keras.Model(rows, make_layer()(keras.layers.Dense(4, name="before")(rows)),
                       name="base")
    given = keras.Input((3,))
    model = keras.Model(given, make_layer()(keras.layers.Dense(4, name="after")(base(given))))
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="mse")
    return model


@pytest.mark.parametrize("kind", ["BatchNormalization", "Dense"])
def test_two_untrained_layers_of_one_name_across_nesting_stay_two_layers(tmp_path, kind):
    """Real Keras, legacy .h5: two distinct layers of one name and settings in a model and a
    model nested in it, whose arrays are equal only because nothing trained them yet (a
    fresh BatchNormalization's 1, 0, 0, 1; a zero-initialised Dense), were taken for one
    layer shared across the nesting (8 arrays where Keras has 12): training then tied
    them. They stay two layers, and three SGD steps land where Keras's do."""
    from test_io_keras import real_keras
    keras = real_keras()

    def make_layer():
        if kind == "Dense":
            return keras.layers.Dense(4, kernel_initializer="zeros", name="twin")
        return keras.layers.BatchNormalization(name="twin")
    keras_model = _keras_two_layers_of_one_name_across_nesting(keras, make_layer)
    keras_model.save(tmp_path / "twins.h5")
    model = dlcore.load(tmp_path / "twins.h5")
    assert len(model.get_weights()) == len(keras_model.get_weights())
    assert model.get_layer("base").flat_layers[-1] is not model.flat_layers[-1]
    # (not BatchNormalization's training: Keras 3.15 itself trains two of one name otherwise
    # than the same model whose two have names of their own, as dlcore trains them)
    if kind == "Dense":
        _assert_three_steps_land_as_kerass(keras, keras_model, model, seed=4, inputs=3)


def test_a_layer_shared_with_a_nested_model_called_first_there_loads_from_the_archive(
        tmp_path):
    """Real Keras archive: a layer shared by a model and a model nested in it, where the
    nested model comes first in Keras's ``model.layers`` (so the archive writes the layer's
    arrays at the nested model's place, none at the model's own), was refused as "weights
    for another architecture". It loads as one layer, ``get_weights(layout="keras")`` in
    Keras's order (the shared layer's arrays at the nested model's place), and trains as
    Keras's."""
    from test_io_keras import real_keras
    keras = real_keras()
    shared = keras.layers.Dense(4, name="shared")
    rows = keras.Input((4,))   # every kernel 4 x 4: arrays in a wrong order would fit too
    base = keras.Model(rows, keras.layers.Dense(4, name="inner")(shared(rows)), name="base")
    given = keras.Input((4,))
    keras_model = keras.Model(given, keras.layers.Add()(
        [base(given), shared(keras.layers.Dense(4, name="before")(given))]))
    keras_model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="mse")
    assert [layer.name for layer in keras_model.layers][2:4] == ["base", "shared"]
    keras_model.save(tmp_path / "tied.keras")
    model = dlcore.load(tmp_path / "tied.keras")
    assert model.get_layer("base").get_layer("shared") is model.get_layer("shared")
    _assert_three_steps_land_as_kerass(keras, keras_model, model, seed=5, inputs=4)


@pytest.mark.parametrize("suffix", [".weights.h5", ".h5"])
@pytest.mark.parametrize("nested_first", [False, True])
def test_a_layer_shared_with_a_nested_model_goes_back_to_kerass_model_by_save_weights(
        tmp_path, nested_first, suffix):
    """Real Keras: a model imported with a layer shared across its nesting, trained on in
    dlcore, wrote its ``.weights.h5`` and its legacy ``save_weights("m.h5")`` in the flat
    layout of dlcore's export, which Keras's own (nested) model refused to load_weights
    ("Weight count mismatch"). Each is now written as Keras writes it: nested, the shared
    layer's arrays once in ``.weights.h5``, at each of its places in the legacy file (a
    nested model's group holds all its weights there)."""
    from test_io_keras import real_keras
    keras = real_keras()
    shared = keras.layers.Dense(4, name="shared")
    rows = keras.Input((4,))
    base = keras.Model(rows, keras.layers.Dense(4, name="inner")(shared(rows)), name="base")
    given = keras.Input((4,))
    calls = [shared(given), base(given)]
    keras_model = keras.Model(given, keras.layers.Add()(calls[::-1] if nested_first
                                                        else calls))
    keras_model.save(tmp_path / "tied.keras")
    model = dlcore.load(tmp_path / "tied.keras")
    model.set_weights([array + 1 for array in model.get_weights()])   # as after a fit
    model.save_weights(tmp_path / f"tuned{suffix}")
    keras_model.load_weights(tmp_path / f"tuned{suffix}")
    x = np.random.default_rng(6).normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(keras_model.predict(x, verbose=0)),
                               model.predict(x), atol=1e-5)


def test_a_model_sharing_a_layer_across_keras_nesting_keeps_it_through_dlcore_copies(tmp_path):
    """Real Keras: a model imported with a layer shared across its nesting, then kept in
    dlcore's own file (or pickled, or cloned), lost what it knew of the Keras model's nesting:
    its ``save_weights`` (``.weights.h5`` and legacy ``.h5``) went back flat, refused by the
    Keras model's ``load_weights``, and ``get_weights(layout="keras")`` took another order. Each
    copy now gives Keras what the model it was copied from gives; a damaged record of the
    nesting in dlcore's file is refused in one line."""
    import pickle

    from test_io_keras import real_keras
    keras = real_keras()
    shared = keras.layers.Dense(4, name="shared")
    rows = keras.Input((4,))
    base = keras.Model(rows, keras.layers.Dense(4, name="inner")(shared(rows)), name="base")
    given = keras.Input((4,))
    keras_model = keras.Model(given, keras.layers.Add()(
        [base(given), shared(keras.layers.Dense(4, name="before")(given))]))
    keras_model.save(tmp_path / "tied.keras")
    model = dlcore.load(tmp_path / "tied.keras")
    model.set_weights([array + 1 for array in model.get_weights()])   # as after a fit
    dlcore.save(model, tmp_path / "own.h5")
    x = np.random.default_rng(7).normal(size=(5, 4)).astype(np.float32)
    copies = {"file": dlcore.load(tmp_path / "own.h5"),
              "pickle": pickle.loads(pickle.dumps(model)), "clone": model.clone()}
    for name, copy_ in copies.items():
        _assert_same_arrays(copy_.get_weights(layout="keras"),
                            model.get_weights(layout="keras"))
        for suffix in (".weights.h5", ".h5"):
            copy_.save_weights(tmp_path / f"{name}{suffix}")
            keras_model.load_weights(tmp_path / f"{name}{suffix}")
            np.testing.assert_allclose(keras.ops.convert_to_numpy(
                keras_model.predict(x, verbose=0)), model.predict(x), atol=1e-5)
    with h5py.File(tmp_path / "own.h5", "r+") as h5file:
        config = json.loads(h5file.attrs["hyperparameters"])
        config["keras_nesting"]["same_as"] = {"shared_1": "nowhere"}
        h5file.attrs["hyperparameters"] = json.dumps(config)
    with pytest.raises(dlcore.ModelFileError, match="keras_nesting is not the Keras nesting "
                                                    "of this model's layers"):
        dlcore.load(tmp_path / "own.h5")


def test_two_nested_models_side_by_side_exchange_weights_in_kerass_order(tmp_path):
    """Real Keras: a dlcore model of two nested models side by side, every kernel 4 x 4:
    ``get_weights(layout="keras")`` gave the layers in the flat graph's order (first, second,
    first, second), where the Keras model of its export lists each nested model's weights
    together: ``keras_model.set_weights`` put them in the wrong layers without a word. Both
    directions now predict alike."""
    from dlcore.layers import Add, Dense
    from test_io_keras import real_keras
    keras = real_keras()

    def block(name):
        rows = dlcore.Input((4,))
        return dlcore.Model(rows, Dense(4)(Dense(4, activation="relu")(rows)), name=name)
    inputs = dlcore.Input((4,))
    model = dlcore.Model(inputs, Add()([block("first")(inputs), block("second")(inputs)]))
    model.save(tmp_path / "blocks.keras")
    keras_model = keras.models.load_model(tmp_path / "blocks.keras")
    x = np.random.default_rng(8).normal(size=(5, 4)).astype(np.float32)
    model.set_weights([array * 2 + 0.1 for array in model.get_weights()])
    keras_model.set_weights(model.get_weights(layout="keras"))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(keras_model.predict(x, verbose=0)),
                               model.predict(x), atol=1e-5)
    tuned = [keras.ops.convert_to_numpy(w) * 0.5 for w in keras_model.get_weights()]
    keras_model.set_weights(tuned)
    model.set_weights(tuned, layout="keras")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(keras_model.predict(x, verbose=0)),
                               model.predict(x), atol=1e-5)



def test_a_model_imported_with_layers_left_out_keeps_its_keras_nesting_through_copies(
        tmp_path):
    """A nested Keras model whose RandomRotation and RandomZoom the import leaves out (the
    identity at inference) was saved to dlcore's file, and its load refused the file
    ("keras_nesting is not the Keras nesting of this model's layers"); pickle and clone()
    refused it too. Each copy now has the model's weights in Keras's order."""
    import pickle
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = dlcore.load(fixture("keras_nested.keras"))
    model.set_weights([array + 1 for array in model.get_weights()])
    dlcore.save(model, tmp_path / "own.h5")
    for copy_ in (dlcore.load(tmp_path / "own.h5"), pickle.loads(pickle.dumps(model)),
                  model.clone()):
        assert copy_.keras_nested_config_ == model.keras_nested_config_
        _assert_same_arrays(copy_.get_weights(layout="keras"),
                            model.get_weights(layout="keras"))


def test_a_layer_renamed_after_a_nested_import_leaves_the_model_savable(tmp_path):
    """A layer of a model imported from a nested Keras model renamed (``layer.name = ...``),
    then ``dlcore.save``: the file kept the Keras nesting of the old name, and its load
    refused it ("keras_nesting is not the Keras nesting of this model's layers"; pickle and
    clone too): the model was lost. The stale nesting is now dropped (the model goes on as
    dlcore nests it), and each copy loads with the new name and the weights."""
    import pickle
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = dlcore.load(fixture("keras_nested_base.keras"))
    model.get_layer("head").name = "classifier"
    dlcore.save(model, tmp_path / "renamed.h5")
    model.save_weights(tmp_path / "renamed.weights.h5")
    for copy_ in (dlcore.load(tmp_path / "renamed.h5"), pickle.loads(pickle.dumps(model)),
                  model.clone()):
        assert copy_.get_layer("classifier") is not None
        _assert_same_arrays(copy_.get_weights(), model.get_weights())
        copy_.set_weights([array * 0 for array in model.get_weights()])
        copy_.load_weights(tmp_path / "renamed.weights.h5")
        _assert_same_arrays(copy_.get_weights(), model.get_weights())


def test_a_layer_renamed_at_a_nested_import_loads_back_from_its_legacy_weights(tmp_path):
    """Keras's transfer-learning recipe names a base's layer and the head's alike (``dense``
    in each); dlcore renames the base's on import (``dense_1``). Its legacy
    ``save_weights("m.h5")`` writes that name in the base's group, and ``load_weights`` of the
    same file looked for the Keras name there and refused it ("the weights are for the
    layers dense ... another model's"); so did the model's clone."""
    from dlcore.layers import Dense
    from dlcore.models import model_from_json
    rows = dlcore.Input((4,))
    base = dlcore.Model(rows, Dense(4, name="inner")(rows), name="base")
    given = dlcore.Input((4,))
    keras_json = dlcore.Model(given, Dense(2, name="dense")(base(given))).to_json()
    model = model_from_json(keras_json.replace('"inner"', '"dense"'))
    assert model.keras_file_names_ == {"dense_1": "dense"}
    saved = [array + 1 for array in model.get_weights()]
    model.set_weights(saved)
    model.save_weights(tmp_path / "m.h5")
    for copy_ in (model.clone(), model):
        copy_.set_weights([array * 0 for array in saved])
        copy_.load_weights(tmp_path / "m.h5")
        _assert_same_arrays(copy_.get_weights(), saved)


def _nested_in(nesting):
    return next(entry for entry in nesting["config"]["config"]["layers"]
                if entry["class_name"] in ("Sequential", "Functional"))


def _damage_inbound_nodes(nesting):
    _nested_in(nesting)["inbound_nodes"] = [{"args": [1, 2]}]


def _damage_keras_history(nesting):
    called = [entry for entry in nesting["config"]["config"]["layers"]
              if entry.get("inbound_nodes") and entry is not _nested_in(nesting)]
    called[-1]["inbound_nodes"][0]["args"][0]["config"]["keras_history"] = ["gone", 9, 0]


def _damage_output_layers(nesting):
    nesting["config"]["config"]["output_layers"] = ["gone", 0, 0]


def _damage_same_as(nesting):
    # the Keras names still map onto the model's layers, two of them onto each other
    nesting["same_as"] = {"conv2d": "dense", "dense": "conv2d"}


@pytest.mark.parametrize("damage", [_damage_inbound_nodes, _damage_keras_history,
                                    _damage_output_layers, _damage_same_as])
def test_a_damaged_keras_nesting_in_dlcores_file_is_refused_at_load(tmp_path, damage):
    """A dlcore file whose record of the Keras nesting (``keras_nesting``) had a damaged
    graph loaded, and ``get_weights(layout="keras")`` and ``save_weights`` then died with a
    KeyError or TypeError; a ``same_as`` that sent a layer's Keras name to another layer
    loaded and wrote the weights to the wrong layers. Each is refused at load in one line."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dlcore.save(dlcore.load(fixture("keras_nested_base.keras")), tmp_path / "own.h5")
    with h5py.File(tmp_path / "own.h5", "r+") as h5file:
        config = json.loads(h5file.attrs["hyperparameters"])
        damage(config["keras_nesting"])
        h5file.attrs["hyperparameters"] = json.dumps(config)
    with pytest.raises(dlcore.ModelFileError, match="keras_nesting is not the Keras nesting "
                                                    "of this model's layers") as caught:
        dlcore.load(tmp_path / "own.h5")
    assert "\n" not in str(caught.value)
