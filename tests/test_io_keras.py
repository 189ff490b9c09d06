"""Keras's legacy HDF5 files (dlcore/io/keras.py): import of files written by real Keras,
export checked against the documented layout and a NumPy NHWC reimplementation of Keras's
layers, to_json/model_from_json, save_weights/load_weights, refusals.

The fixtures in tests/fixtures/ were written by real Keras (tests/fixtures/make_keras_fixtures.py,
version in keras_fixtures.json) with Keras's predictions stored beside them. Keras itself is no
test dependency: the one test that runs it is skipped where ``keras`` is not importable.
"""
import json
import os
import shutil
import zipfile

import h5py
import numpy as np
import pytest

import dlcore
from dlcore.io.keras import KERAS_VERSION
from dlcore.layers import (
    AvgPool2D,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GaussianNoise,
    ImageAugmentation,
    L2Pool2D,
    MaxPool2D,
)
from dlcore.models import lenet5, model_from_json

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


def fixture(name):
    return os.path.join(FIXTURES, name)


def edited_archive(tmp_path, name, edit):
    """A copy of the Keras archive fixture ``name`` whose config.json ``edit(config)`` has
    changed in place (its weights as they are)."""
    with zipfile.ZipFile(fixture(name)) as archive:
        members = {member: archive.read(member) for member in archive.namelist()}
    config = json.loads(members["config.json"])
    edit(config)
    members["config.json"] = json.dumps(config).encode()
    path = tmp_path / f"edited_{name}"
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in members.items():
            archive.writestr(member, data)
    return path


def with_layer_config(tmp_path, name, layer_name, **changes):
    """:func:`edited_archive` with layer ``layer_name``'s config updated by ``changes`` (a
    value None removes its key)."""
    def edit(config):
        for layer in config["config"]["layers"]:
            if layer["config"].get("name") == layer_name:
                layer["config"].update(changes)
                for key in [key for key, value in changes.items() if value is None]:
                    del layer["config"][key]
    return edited_archive(tmp_path, name, edit)


def keras_data(name):
    data = np.load(fixture(f"keras_{name}.npz"))
    x = data["x"]
    return (x.transpose(0, 3, 1, 2) if x.ndim == 4 else x), x, data["y"]


# --------------------------------------------------------------------------------------------
# A NumPy reimplementation of the Keras layers (NHWC), run on a Keras file's config and arrays
# --------------------------------------------------------------------------------------------
def _activation(name, z):
    if name in (None, "linear"):
        return z
    if name == "relu":
        return np.maximum(z, 0)
    if name == "sigmoid":
        return 1 / (1 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    assert name == "softmax"
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _same_padding(n, k, s):
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def _windows(x, k, s, padding, fill=0.0):
    """(n, out_h, out_w, kh, kw, c) windows of NHWC x, Keras's geometry (floor; 'same' pads
    more at the bottom/right, with ``fill``: zeros for a convolution, NaN for a pool, which
    ignores its padding)."""
    if padding == "same":
        (top, bottom), (left, right) = (_same_padding(x.shape[1], k[0], s[0]),
                                        _same_padding(x.shape[2], k[1], s[1]))
        x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=fill)
    out_h = (x.shape[1] - k[0]) // s[0] + 1
    out_w = (x.shape[2] - k[1]) // s[1] + 1
    win = np.empty((x.shape[0], out_h, out_w, k[0], k[1], x.shape[3]), x.dtype)
    for i in range(out_h):
        for j in range(out_w):
            win[:, i, j] = x[:, i * s[0]:i * s[0] + k[0], j * s[1]:j * s[1] + k[1], :]
    return win


def _upsample(x, size, interpolation):
    """Keras's UpSampling2D on NHWC x: nearest repeats; bilinear samples the input at
    (d + 1/2) / S - 1/2 (half-pixel centres), clamped to the edge pixels."""
    for axis, scale in ((1, size[0]), (2, size[1])):
        n_in = x.shape[axis]
        if interpolation == "nearest":
            x = np.repeat(x, scale, axis=axis)
            continue
        source = np.clip((np.arange(n_in * scale) + 0.5) / scale - 0.5, 0, n_in - 1)
        low = np.floor(source).astype(int)
        high = np.minimum(low + 1, n_in - 1)
        shape = [1, 1, 1, 1]
        shape[axis] = -1
        weight = (source - low).reshape(shape)
        x = np.take(x, low, axis=axis) * (1 - weight) + np.take(x, high, axis=axis) * weight
    return x


def _conv_transpose(x, kernel, strides, padding):
    """Keras's Conv2DTranspose on NHWC x, kernel (kh, kw, filters, channels): every input
    pixel adds its value times the kernel into the output, S apart; 'valid' keeps the whole
    scatter (N S + max(F - S, 0) rows), 'same' N S rows from max(F - S, 0) // 2 on."""
    n, height, width, _ = x.shape
    kh, kw, filters, _ = kernel.shape
    (sh, sw) = strides
    full = np.zeros((n, (height - 1) * sh + kh, (width - 1) * sw + kw, filters))
    for i in range(height):
        for j in range(width):
            full[:, i * sh:i * sh + kh, j * sw:j * sw + kw] += np.einsum(
                "nc,hwfc->nhwf", x[:, i, j], kernel)
    if padding == "valid":
        rows, columns, top, left = (height * sh + max(kh - sh, 0), width * sw + max(kw - sw, 0),
                                    0, 0)
    else:
        rows, columns = height * sh, width * sw
        top, left = max(kh - sh, 0) // 2, max(kw - sw, 0) // 2
    out = np.zeros((n, rows, columns, filters))
    part = full[:, top:top + rows, left:left + columns]
    out[:, :part.shape[1], :part.shape[2]] = part
    return out


def keras_numpy_predict(path, x_nhwc):
    """Keras's inference on NHWC input, from the file's model_config and model_weights."""
    with h5py.File(path, "r") as h5file:
        config = json.loads(h5file.attrs["model_config"])
        weights = {}
        group = h5file["model_weights"]
        for name in group.attrs["layer_names"]:
            paths = list(group[name].attrs["weight_names"])
            weights[name] = [np.asarray(group[name][p]) for p in paths]
    x = x_nhwc.astype(np.float64)
    for entry in config["config"]["layers"]:
        kind, c = entry["class_name"], entry["config"]
        if kind == "InputLayer" or kind in ("Dropout", "GaussianNoise"):
            continue
        if kind == "Conv2D":
            kernel, *bias = weights[c["name"]]
            win = _windows(x, c["kernel_size"], c["strides"], c["padding"])
            z = np.einsum("nhwijc,ijcf->nhwf", win, kernel)
            x = _activation(c["activation"], z + (bias[0] if bias else 0))
        elif kind == "ZeroPadding2D":
            (t, b), (left, r) = c["padding"]
            x = np.pad(x, ((0, 0), (t, b), (left, r), (0, 0)))
        elif kind in ("MaxPooling2D", "AveragePooling2D"):
            win = _windows(x, c["pool_size"], c["strides"] or c["pool_size"], c["padding"],
                           np.nan)
            x = np.nanmax(win, axis=(3, 4)) if kind == "MaxPooling2D" else \
                np.nanmean(win, axis=(3, 4))
        elif kind == "UpSampling2D":
            x = _upsample(x, c["size"], c["interpolation"])
        elif kind == "Conv2DTranspose":
            kernel, *bias = weights[c["name"]]
            z = _conv_transpose(x, kernel, c["strides"], c["padding"])
            x = _activation(c["activation"], z + (bias[0] if bias else 0))
        elif kind in ("RandomFlip", "RandomTranslation"):
            continue   # the identity at inference
        elif kind == "Flatten":
            x = x.reshape(len(x), -1)     # NHWC order: H, W, C
        elif kind == "Dense":
            kernel, *bias = weights[c["name"]]
            x = _activation(c["activation"], x @ kernel + (bias[0] if bias else 0))
        elif kind == "Activation":
            x = _activation(c["activation"], x)
        elif kind == "ReLU":
            x = np.maximum(x, 0)
        elif kind == "Softmax":
            x = _activation("softmax", x)
        else:
            raise AssertionError(f"the test's Keras has no {kind}")
    return x


def small_convnet():
    """Padding 1 (ZeroPadding2D on export), 'same', a stride, both poolings, Flatten then
    Dropout then the Dense whose rows are permuted."""
    model = dlcore.Sequential([
        Conv2D(3, 3, padding=1, activation="relu", name="conv_padded"),
        MaxPool2D(2, name="max_pool"),
        Conv2D(4, 3, padding="same", activation="tanh", name="conv_same"),
        Conv2D(5, 3, stride=2, name="conv_strided"),
        AvgPool2D(1, name="avg_pool"),
        GaussianNoise(0.1, name="noise"),
        Flatten(name="flatten"),
        Dropout(0.2, name="dropout"),
        Dense(7, activation="sigmoid", name="hidden"),
        Dense(3, activation="softmax", name="out"),
    ], input_shape=(2, 10, 10), backend="reference", seed=4)
    # Biases are zero after initialisation: give them values, so that a bias misplaced shows.
    for layer in model.layers:
        if layer.weight_names:
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, np.linspace(-0.5, 0.5, bias.size).astype(np.float32)])
    return model


def real_keras():
    """Keras itself, or a skip: Keras is no test dependency (and a folder named ``keras`` on
    the path, e.g. a checkout, is not Keras)."""
    pytest.importorskip("keras.models")
    import keras
    return keras


def images(n, shape, seed=0):
    return np.random.default_rng(seed).random((n,) + tuple(shape)).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Import of files written by real Keras
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["convnet", "geometry", "mlp"])
def test_a_keras_written_file_loads_and_predicts_as_keras_did(name):
    model = dlcore.load(fixture(f"keras_{name}.h5"))
    x_nchw, _, y_keras = keras_data(name)
    assert isinstance(model, dlcore.Sequential)
    np.testing.assert_allclose(model.predict(x_nchw), y_keras, atol=1e-4)


def test_the_numpy_keras_of_these_tests_agrees_with_real_keras_on_its_own_files():
    for name in ("convnet", "geometry", "mlp"):
        _, x_nhwc, y_keras = keras_data(name)
        np.testing.assert_allclose(keras_numpy_predict(fixture(f"keras_{name}.h5"), x_nhwc),
                                   y_keras, atol=1e-5)


def test_the_fixtures_record_the_keras_that_wrote_them():
    with open(fixture("keras_fixtures.json")) as stream:
        record = json.load(stream)
    assert record["keras_version"].startswith("3.") and record["backend"]
    with h5py.File(fixture("keras_convnet.h5"), "r") as h5file:
        assert h5file.attrs["keras_version"] == record["keras_version"]


def test_an_imported_keras_model_trains_on_in_dlcore(tmp_path):
    model = dlcore.load(fixture("keras_convnet.h5"))
    x, _, _ = keras_data("convnet")
    x = np.concatenate([x] * 4)
    labels = np.arange(len(x)) % 3
    model.compile("cross_entropy", dlcore.optimizers.SGD(0.5), ["accuracy"])
    before = model.evaluate(x, labels, verbose=0)
    model.fit(x, labels, epochs=15, batch_size=8, verbose=0)
    after = model.evaluate(x, labels, verbose=0)
    loss = lambda r: r["loss"] if isinstance(r, dict) else np.ravel(r)[0]  # noqa: E731
    assert np.isfinite(loss(after)) and loss(after) < loss(before)
    dlcore.save(model, tmp_path / "tuned.h5")
    np.testing.assert_allclose(dlcore.load(tmp_path / "tuned.h5").predict(x), model.predict(x),
                               atol=1e-6)


def test_keras_geometry_holds_for_imported_layers_only(tmp_path):
    """Floors and 'same' with a stride of 3 and an even kernel: the imported layers set the
    explicit floor option; dlcore's own layers keep refusing such geometry."""
    model = dlcore.load(fixture("keras_geometry.h5"))
    pool, conv, same = model.layers[:3]
    assert pool.floor and conv.floor and same.floor
    assert [layer.output_shape for layer in model.layers[:3]] == [(1, 5, 5), (3, 2, 2),
                                                                  (4, 1, 1)]
    assert (same.window.pad_height, same.window.pad_width) == (1, 1)
    with pytest.raises(ValueError, match="does not fit"):
        MaxPool2D(2).build((1, 11, 11), backend="reference")
    with pytest.raises(ValueError, match="does not fit"):
        Conv2D(3, 2, stride=2).build((1, 5, 5), backend="reference")
    # the floor option is saved in dlcore's own file and exported back to Keras's geometry,
    # and the model trains on every backend
    x, x_nhwc, y_keras = keras_data("geometry")
    dlcore.save(model, tmp_path / "own.h5")
    assert dlcore.load(tmp_path / "own.h5").layers[1].floor
    dlcore.save(model, tmp_path / "back.h5", format="keras")
    np.testing.assert_allclose(keras_numpy_predict(tmp_path / "back.h5", x_nhwc), y_keras,
                               atol=1e-4)
    for backend in ("reference", "cpu"):
        twin = model.clone(backend=backend)
        np.testing.assert_allclose(twin.predict(x), y_keras, atol=1e-4)
        twin.compile("cross_entropy", dlcore.optimizers.SGD(0.1))
        twin.fit(np.concatenate([x] * 2), np.arange(8) % 3, epochs=2, batch_size=4, verbose=0)
        assert all(np.isfinite(w).all() for w in twin.get_weights())


def test_keras_floor_geometry_gradients_match_finite_differences():
    model = dlcore.load(fixture("keras_geometry.h5")).clone(backend="reference",
                                                            dtype=np.float64)
    model.compile("cross_entropy", "sgd")
    x, _, _ = keras_data("geometry")
    result = dlcore.gradcheck(model, x[:2].astype(np.float64), np.array([0, 2]))
    worst = max(result.values()) if isinstance(result, dict) else result
    assert worst < 1e-4, result


def test_a_lambda_layer_is_refused_in_one_line_and_its_code_never_runs(monkeypatch):
    import marshal
    import types

    def never(*args, **kwargs):
        raise AssertionError("Python code from a model file was decoded")
    monkeypatch.setattr(marshal, "loads", never)
    monkeypatch.setattr(types, "FunctionType", never)
    path = fixture("keras_lambda.h5")
    with pytest.raises(dlcore.ModelFileError) as caught:
        dlcore.load(path)
    message = str(caught.value)
    assert "\n" not in message and path in message
    assert "'code' (Lambda)" in message and "never runs" in message and "Conv2D" in message


def _edited_copy(tmp_path, edit, name="convnet"):
    path = str(tmp_path / f"edited_{name}.h5")
    shutil.copy(fixture(f"keras_{name}.h5"), path)
    with h5py.File(path, "r+") as h5file:
        config = json.loads(h5file.attrs["model_config"])
        edit(config["config"]["layers"])
        h5file.attrs["model_config"] = json.dumps(config)
    return path


@pytest.mark.parametrize("edit, expected", [
    (lambda layers: layers[1].update(class_name="GroupNormalization"),
     "'conv_same' (GroupNormalization) cannot be imported: dlcore has no GroupNormalization "
     "layer; rebuild the model in Keras from the layers dlcore imports (Dense, Conv2D"),
    (lambda layers: layers[1].update(class_name="LayerNormalization"),
     "dataset 'model_weights/conv_same/convnet/conv_same/kernel' has shape (3, 3, 2, 3); "
     "expected (2,)"),
    (lambda layers: layers[1].update(class_name="BatchNormalization"),
     "layer 'conv_same' has 2 weight arrays; the model's layer has 4"),
    (lambda layers: layers[1]["config"].update(data_format="channels_first"),
     "'conv_same' (Conv2D) cannot be imported: only channels_last (Keras's default) is "
     "imported; build the Keras model with data_format='channels_last' and save it again"),
    (lambda layers: layers[1]["config"].update(dilation_rate=[2, 2]),
     "'conv_same' (Conv2D) cannot be imported: dilation and grouped convolutions are not "
     "imported (dlcore's convolutions have neither); build the layer with dilation_rate=1 "
     "and groups=1"),
    (lambda layers: layers[1].update(registered_name="custom>MyConv"),
     "'conv_same' (Conv2D) cannot be imported: it is a custom layer, whose code dlcore never "
     "runs; rebuild the model in Keras from the layers dlcore imports"),
    (lambda layers: layers.insert(1, {"class_name": "ZeroPadding2D",
                                      "config": {"name": "pad_early",
                                                 "padding": [[1, 1], [1, 1]]}}),
     "'conv_same' (Conv2D) cannot be imported: a ZeroPadding2D must be followed by a 'valid' "
     "Conv2D, whose padding it becomes; put it right before a Conv2D with padding='valid'"),
    (lambda layers: layers[1]["config"].update(padding="causal"),
     "'conv_same' (Conv2D) cannot be imported: padding 'causal' is not imported"),
    (lambda layers: layers[6]["config"].update(pool_size=[9, 9]),
     "'max_pool' (MaxPooling2D) cannot be imported: MaxPool2D does not fit along the "
     "height: the filter (F = 9) is larger"),
    (lambda layers: layers[1]["config"].update(activation="glu"),
     "activation 'glu' is not one of"),
])
def test_what_dlcore_cannot_import_is_refused_in_one_line_naming_the_layer(
        tmp_path, edit, expected):
    path = _edited_copy(tmp_path, edit)
    with pytest.raises(dlcore.ModelFileError) as caught:
        dlcore.load(path)
    message = str(caught.value)
    assert "\n" not in message and path in message and expected in message, message


def test_a_keras_model_without_an_input_shape_is_refused_naming_keras_input():
    dense = {"class_name": "Dense", "config": {"name": "dense", "units": 2}}
    text = json.dumps({"class_name": "Sequential", "config": {"name": "s", "layers": [dense]}})
    with pytest.raises(dlcore.ModelFileError,
                       match=r"^<json>: the Keras model does not say its input shape \(no "
                             r"InputLayer or batch_shape\); start it with "
                             r"keras\.Input\(shape=\.\.\.\) and save it again$"):
        dlcore.models.model_from_json(text)


def test_weights_that_do_not_match_the_config_are_refused_before_any_is_set(tmp_path):
    path = _edited_copy(tmp_path, lambda layers: layers[-4]["config"].update(units=5))
    with pytest.raises(dlcore.ModelFileError, match="'model_weights/hidden/.*kernel' has "
                                                    "shape"):
        dlcore.load(path)


# --------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------
def test_export_writes_the_documented_keras_layout(tmp_path):
    model = small_convnet()
    path = tmp_path / "m.h5"
    dlcore.save(model, path, format="keras")
    with h5py.File(path, "r") as h5file:
        assert h5file.attrs["keras_version"] == KERAS_VERSION
        assert isinstance(h5file.attrs["backend"], str)
        config = json.loads(h5file.attrs["model_config"])
        assert config["class_name"] == "Sequential"
        kinds = [(e["class_name"], e["config"].get("name")) for e in config["config"]["layers"]]
        assert kinds[:3] == [("InputLayer", "input_layer"),
                             ("ZeroPadding2D", "conv_padded_padding"), ("Conv2D", "conv_padded")]
        assert config["config"]["layers"][0]["config"]["batch_shape"] == [None, 10, 10, 2]
        conv = config["config"]["layers"][2]["config"]
        assert conv["padding"] == "valid" and conv["data_format"] == "channels_last"
        group = h5file["model_weights"]
        names = list(group.attrs["layer_names"])
        assert names == [name for _, name in kinds[1:]]
        for name in names:
            weight_names = list(group[name].attrs["weight_names"])
            layer = {layer.name: layer for layer in model.layers}.get(name)
            if layer is None or not layer.weight_names:
                assert weight_names == []
                continue
            assert weight_names == [f"{model.name}/{name}/kernel", f"{model.name}/{name}/bias"]
            kernel = group[name][weight_names[0]][()]
            np.testing.assert_array_equal(group[name][weight_names[1]][()],
                                          layer.get_weights()[1])
            if isinstance(layer, Conv2D):   # (F, C, kh, kw) -> HWIO
                np.testing.assert_array_equal(kernel, layer.get_weights()[0].transpose(2, 3, 1, 0))
        hidden = model.layers[8].get_weights()[0]
        exported = group["hidden"][f"{model.name}/hidden/kernel"][()]
        # the silent trap: the rows are permuted (C, H, W) -> (H, W, C), not copied
        channels, height, width = model.layers[6].input_shape
        assert not np.array_equal(exported, hidden)
        np.testing.assert_array_equal(
            exported, hidden.reshape(channels, height, width, -1).transpose(1, 2, 0, 3)
            .reshape(hidden.shape))


@pytest.mark.parametrize("build", [small_convnet,
                                   lambda: lenet5(backend="reference", seed=2)])
def test_an_exported_model_predicts_on_nhwc_input_as_dlcore_does_on_nchw(tmp_path, build):
    model = build()
    path = tmp_path / "m.h5"
    dlcore.save(model, path, format="keras")
    x = images(3, model.input_shape)
    np.testing.assert_allclose(keras_numpy_predict(path, x.transpose(0, 2, 3, 1)),
                               model.predict(x), atol=1e-5)
    # and dlcore reads its own export back
    np.testing.assert_allclose(dlcore.load(path).predict(x), model.predict(x), atol=1e-6)


def test_layers_without_a_keras_equivalent_are_refused_and_augmentation_is_left_out(tmp_path):
    pooled = dlcore.Sequential([Conv2D(2, 3), L2Pool2D(2, name="l2"), Flatten(), Dense(2)],
                               input_shape=(1, 6, 6), backend="reference")
    with pytest.raises(ValueError, match=r"^layer 'l2' \(L2Pool2D\) has no Keras equivalent"):
        dlcore.save(pooled, tmp_path / "l2.h5", format="keras")
    assert not (tmp_path / "l2.h5").exists()
    augmented = dlcore.Sequential([ImageAugmentation(1, max_rotation=10, name="augment"),
                                   Flatten(), Dense(2)],
                                  input_shape=(1, 4, 4), backend="reference")
    with pytest.warns(UserWarning, match="'augment' .* is left out of the Keras file"):
        dlcore.save(augmented, tmp_path / "aug.h5", format="keras")
    x = images(2, (1, 4, 4))
    np.testing.assert_allclose(dlcore.load(tmp_path / "aug.h5").predict(x),
                               augmented.predict(x), atol=1e-6)
    with pytest.raises(ValueError, match="format must be 'dlcore' or 'keras'"):
        dlcore.save(augmented, tmp_path / "x.h5", format="onnx")
    flat = dlcore.Sequential([ImageAugmentation(2, image_shape=(1, 4, 4), name="shift"),
                              Dense(2)], input_shape=(16,), backend="reference")
    with pytest.warns(UserWarning, match="'shift' .* left out .* flat rows"):
        dlcore.save(flat, tmp_path / "flat.h5", format="keras")
    x = images(2, (16,))
    np.testing.assert_allclose(dlcore.load(tmp_path / "flat.h5").predict(x), flat.predict(x),
                               atol=1e-6)


# --------------------------------------------------------------------------------------------
# to_json / model_from_json, save_weights / load_weights
# --------------------------------------------------------------------------------------------
def test_to_json_and_model_from_json_round_trip_the_architecture():
    model = small_convnet()
    text = model.to_json()
    assert json.loads(text)["class_name"] == "Sequential"
    again = model_from_json(text)
    assert [type(layer).__name__ for layer in again.layers] == \
        [type(layer).__name__ for layer in model.layers]
    assert again.input_shape == model.input_shape
    assert [w.shape for w in again.get_weights()] == [w.shape for w in model.get_weights()]
    with h5py.File(fixture("keras_mlp.h5"), "r") as h5file:
        keras_text = h5file.attrs["model_config"]
    assert model_from_json(keras_text).input_shape == (7,)
    with pytest.raises(dlcore.ModelFileError, match="not valid"):
        model_from_json("{")


def test_save_weights_and_load_weights_use_keras_weights_layout(tmp_path):
    model = small_convnet()
    path = tmp_path / "w.h5"
    model.save_weights(path)
    with h5py.File(path, "r") as h5file:
        assert "model_config" not in h5file.attrs
        assert list(h5file.attrs["layer_names"])[:2] == ["conv_padded_padding", "conv_padded"]
        assert list(h5file["conv_padded"].attrs["weight_names"]) == [
            f"{model.name}/conv_padded/kernel", f"{model.name}/conv_padded/bias"]
    other = model_from_json(model.to_json())
    x = images(2, model.input_shape)
    assert not np.allclose(other.predict(x), model.predict(x))
    other.load_weights(path)
    np.testing.assert_allclose(other.predict(x), model.predict(x), atol=1e-6)
    # Keras's own model file holds the same layout under model_weights
    with h5py.File(fixture("keras_mlp.h5"), "r") as h5file:
        mlp = model_from_json(h5file.attrs["model_config"])
    mlp.load_weights(fixture("keras_mlp.h5"))
    x_mlp, _, y_keras = keras_data("mlp")
    np.testing.assert_allclose(mlp.predict(x_mlp), y_keras, atol=1e-4)


def test_load_weights_of_another_architecture_is_refused_and_changes_nothing(tmp_path):
    model = small_convnet()
    before = model.get_weights()
    with pytest.raises(dlcore.ModelFileError) as caught:
        model.load_weights(fixture("keras_convnet.h5"))
    assert "\n" not in str(caught.value)
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)


# --------------------------------------------------------------------------------------------
# Real Keras (skipped where Keras is not installed, as in CI)
# --------------------------------------------------------------------------------------------
def test_lenet5_round_trips_through_real_keras(tmp_path):
    keras = real_keras()
    model = lenet5(backend="reference", seed=5)
    x = images(4, model.input_shape)
    path = str(tmp_path / "lenet5.h5")
    dlcore.save(model, path, format="keras")
    in_keras = keras.models.load_model(path)
    np.testing.assert_allclose(np.asarray(in_keras.predict(x.transpose(0, 2, 3, 1), verbose=0)),
                               model.predict(x), atol=1e-5)
    back = str(tmp_path / "from_keras.h5")
    in_keras.save(back)
    np.testing.assert_allclose(dlcore.load(back).predict(x), model.predict(x), atol=1e-5)


# --------------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------------
def test_dlcore_convert_both_ways_and_info_recognises_keras_files(tmp_path):
    from click.testing import CliRunner

    from dlcore.cli import main
    runner = CliRunner()
    dlcore_file, keras_file = str(tmp_path / "imported.h5"), str(tmp_path / "exported.h5")
    result = runner.invoke(main, ["convert", fixture("keras_convnet.h5"), dlcore_file,
                                  "--to", "dlcore"])
    assert result.exit_code == 0, result.output
    x, _, y_keras = keras_data("convnet")
    imported = dlcore.load(dlcore_file)
    with h5py.File(dlcore_file, "r") as h5file:
        assert h5file.attrs["format"] == "dlcore-model"
    np.testing.assert_allclose(imported.predict(x), y_keras, atol=1e-4)
    result = runner.invoke(main, ["convert", dlcore_file, keras_file, "--to", "keras"])
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(keras_numpy_predict(keras_file, x.transpose(0, 2, 3, 1)),
                               y_keras, atol=1e-4)
    result = runner.invoke(main, ["info", fixture("keras_convnet.h5")])
    assert result.exit_code == 0, result.output
    assert "Keras HDF5 model file" in result.output and "conv_same (Conv2D)" in result.output
    assert "(3, 3, 2, 3) float32" in result.output
    result = runner.invoke(main, ["info", fixture("keras_lambda.h5")])
    assert result.exit_code == 1 and "'code' (Lambda)" in result.output


def test_converting_a_model_keras_has_no_file_for_is_one_line_and_writes_nothing(tmp_path):
    from click.testing import CliRunner

    from dlcore.cli import main
    rbm_file, keras_file = tmp_path / "rbm.h5", tmp_path / "rbm_keras.h5"
    dlcore.save(dlcore.BernoulliRBM(n_hidden=2, epochs=1).fit(np.eye(4, dtype=np.float32)),
                str(rbm_file))
    result = CliRunner().invoke(main, ["convert", str(rbm_file), str(keras_file),
                                       "--to", "keras"])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("dlcore: error: ") and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1 and not keras_file.exists()


def test_a_keras_trained_model_is_imported_fine_tuned_and_read_back_by_keras(tmp_path):
    keras = real_keras()
    rng = np.random.default_rng(0)
    x = rng.random((64, 12, 12, 1)).astype(np.float32)
    labels = (x[:, :6].mean(axis=(1, 2, 3)) > x[:, 6:].mean(axis=(1, 2, 3))).astype(int)
    layers = keras.layers
    trained = keras.Sequential([keras.Input((12, 12, 1)),
                                layers.Conv2D(4, 3, strides=2, activation="relu"),
                                layers.MaxPooling2D(2), layers.Flatten(),
                                layers.Dense(8, activation="tanh"),
                                layers.Dense(2, activation="softmax")])
    trained.compile("adam", "sparse_categorical_crossentropy")
    trained.fit(x, labels, epochs=3, batch_size=16, verbose=0)
    path = str(tmp_path / "trained.h5")
    trained.save(path)
    model = dlcore.load(path)      # transfer learning: Keras's weights, fine-tuned in dlcore
    x_nchw = x.transpose(0, 3, 1, 2)
    np.testing.assert_allclose(model.predict(x_nchw),
                               np.asarray(trained.predict(x, verbose=0)), atol=1e-4)
    model.compile("cross_entropy", dlcore.optimizers.SGD(0.05))
    model.fit(x_nchw, labels, epochs=2, batch_size=16, verbose=0)
    tuned = str(tmp_path / "tuned.h5")
    dlcore.save(model, tuned, format="keras")
    np.testing.assert_allclose(
        np.asarray(keras.models.load_model(tuned).predict(x, verbose=0)), model.predict(x_nchw),
        atol=1e-4)


@pytest.mark.parametrize("pool", [MaxPool2D, AvgPool2D])
def test_a_floored_pool_gives_zero_gradient_to_what_no_pool_covers_on_every_backend(pool):
    """The rows and columns a floored pool drops get a zero gradient, never what its buffer
    held before (the cpu's pool-gradient kernel writes only the pools' own pixels)."""
    model = dlcore.Sequential([Conv2D(2, 3, stride=2, floor=True, activation="relu"),
                               pool(2, floor=True, name="pool"), Conv2D(3, 2, floor=True),
                               Flatten(), Dense(2, activation="softmax")],
                              input_shape=(1, 12, 13), backend="reference", seed=1)
    x, y = images(4, (1, 12, 13)), np.array([0, 1, 1, 0])
    gradients = {}
    for backend in ("reference", "cpu"):
        twin = model.clone(backend=backend)
        twin.compile("cross_entropy", "sgd")
        twin.loss_and_gradient(x, y)
        buffer = twin.layers[1]._workspace.get("grad_input")
        if buffer is not None and isinstance(buffer, np.ndarray):
            buffer[...] = np.nan     # what a reused buffer may hold
        twin.loss_and_gradient(x, y)
        gradients[backend] = [np.asarray(twin.backend.to_numpy(layer.grads[name]))
                              for layer in twin.layers for name in layer.weight_names]
    for reference, cpu in zip(gradients["reference"], gradients["cpu"]):
        np.testing.assert_allclose(cpu, reference, atol=1e-5)


# --------------------------------------------------------------------------------------------
# Functional models written by Keras
# --------------------------------------------------------------------------------------------
def test_a_keras_functional_residual_net_imports_predicts_as_keras_and_trains_on(tmp_path):
    model = dlcore.load(fixture("keras_residual.h5"))
    assert isinstance(model, dlcore.Model) and not isinstance(model, dlcore.Sequential)
    kinds = {layer.name: type(layer).__name__ for layer in model.layers}
    assert kinds["add"] == "Add" and kinds["join"] == "Concatenate"
    assert {layer.name: layer for layer in model.layers}["join"].axis == 1   # NHWC -1 -> C
    x, _, y_keras = keras_data("residual")
    np.testing.assert_allclose(model.predict(x), y_keras, atol=1e-4)
    model.compile("cross_entropy", dlcore.optimizers.SGD(0.1))
    labels = np.arange(len(x)) % 3
    before = model.evaluate(x, labels, verbose=0)
    model.fit(x, labels, epochs=10, batch_size=4, verbose=0)
    after = model.evaluate(x, labels, verbose=0)
    loss = lambda r: r["loss"] if isinstance(r, dict) else np.ravel(r)[0]  # noqa: E731
    assert loss(after) < loss(before)
    dlcore.save(model, tmp_path / "residual.h5")
    np.testing.assert_allclose(dlcore.load(tmp_path / "residual.h5").predict(x),
                               model.predict(x), atol=1e-6)


def test_a_keras_model_with_two_inputs_and_a_shared_layer_imports_as_one_layer():
    model = dlcore.load(fixture("keras_siamese.h5"))
    data = np.load(fixture("keras_siamese.npz"))
    assert [layer.name for layer in model.layers].count("shared") == 1
    np.testing.assert_allclose(model.predict([data["x0"], data["x1"]]), data["y"], atol=1e-4)


@pytest.mark.parametrize("edit, expected", [
    (lambda layers: layers[1].update(class_name="Lambda"),
     "'conv_a' (Lambda) cannot be imported: a Lambda layer holds Python code, which dlcore "
     "never runs; rebuild the model in Keras from the layers dlcore imports (Dense, "),
    (lambda layers: layers[3]["inbound_nodes"][0]["args"][0][0]["config"].update(
        keras_history=["nowhere", 0, 0]), "'add' (Add) cannot be imported: its input"),
    (lambda layers: layers[4]["config"].update(axis=0),
     "'join' (Concatenate) cannot be imported: Concatenate's axis"),
    (lambda layers: layers[1]["inbound_nodes"][0]["args"][0].update(config="x" * 30),
     "'conv_a' (Conv2D) cannot be imported: an input is not a Keras tensor"),
])
def test_what_a_functional_import_cannot_do_is_refused_in_one_line(tmp_path, edit, expected):
    path = _edited_copy(tmp_path, edit, name="residual")
    with pytest.raises(dlcore.ModelFileError) as caught:
        dlcore.load(path)
    message = str(caught.value)
    assert "\n" not in message and path in message and expected in message, message


def residual_and_siamese():
    from dlcore.layers import add, concatenate
    image = dlcore.Input((2, 8, 8), name="image")
    x = Conv2D(4, 3, padding=1, activation="relu", name="c1")(image)
    z = add([x, Conv2D(4, 3, padding="same", name="c2")(x)])
    out = Dense(3, activation="softmax", name="out")(
        Flatten(name="flatten")(MaxPool2D(2, name="pool")(concatenate([z, x]))))
    residual = dlcore.Model(image, out, backend="reference", seed=2)
    left, right = dlcore.Input((5,), name="left"), dlcore.Input((5,), name="right")
    shared = Dense(4, activation="tanh", name="shared")
    siamese = dlcore.Model([left, right], Dense(2, activation="softmax", name="o")(
        concatenate([shared(left), shared(right)])), backend="reference")
    for model in (residual, siamese):
        for layer in model.layers:
            if layer.weight_names:
                kernel, bias = layer.get_weights()
                layer.set_weights([kernel, np.linspace(-0.3, 0.3, bias.size)])
    return residual, siamese, [images(3, (2, 8, 8)), [images(3, (5,), 1), images(3, (5,), 2)]]


def test_a_functional_model_exports_as_a_keras_functional_file_and_reads_back(tmp_path):
    residual, siamese, (x_res, x_siam) = residual_and_siamese()
    for model, x in ((residual, x_res), (siamese, x_siam)):
        path = tmp_path / f"{model.name}.h5"
        dlcore.save(model, path, format="keras")
        with h5py.File(path, "r") as h5file:
            config = json.loads(h5file.attrs["model_config"])
            names = list(h5file["model_weights"].attrs["layer_names"])
        assert config["class_name"] == "Functional"
        layers = {entry["name"]: entry for entry in config["config"]["layers"]}
        assert all("inbound_nodes" in entry for entry in layers.values())
        np.testing.assert_allclose(dlcore.load(path).predict(x), model.predict(x), atol=1e-6)
        assert "InputLayer" not in [layers[name]["class_name"] for name in names]
    with h5py.File(tmp_path / f"{siamese.name}.h5", "r") as h5file:
        config = json.loads(h5file.attrs["model_config"])
    layers = {entry["name"]: entry for entry in config["config"]["layers"]}
    assert len(layers["shared"]["inbound_nodes"]) == 2      # one layer, called twice


def test_a_residual_net_and_a_shared_layer_model_round_trip_through_real_keras(tmp_path):
    keras = real_keras()
    residual, siamese, (x_res, x_siam) = residual_and_siamese()
    path = str(tmp_path / "residual.h5")
    dlcore.save(residual, path, format="keras")
    np.testing.assert_allclose(
        np.asarray(keras.models.load_model(path).predict(x_res.transpose(0, 2, 3, 1),
                                                         verbose=0)),
        residual.predict(x_res), atol=1e-5)
    path = str(tmp_path / "siamese.h5")
    dlcore.save(siamese, path, format="keras")
    np.testing.assert_allclose(
        np.asarray(keras.models.load_model(path).predict(x_siam, verbose=0)),
        siamese.predict(x_siam), atol=1e-5)


def _shared_dense_after_two_flattens(shape_a, shape_b):
    from dlcore.layers import Dense, Flatten, add
    a, b = dlcore.Input(shape=shape_a), dlcore.Input(shape=shape_b)
    dense = Dense(3)
    return dlcore.Model(inputs=[a, b], outputs=add([dense(Flatten()(a)), dense(Flatten()(b))]),
                        backend="reference")


def test_a_dense_shared_by_maps_of_different_shapes_is_refused_both_ways(tmp_path):
    """Its rows would need two channels-last orders: written or read, it would predict wrong."""
    with pytest.raises(ValueError, match=r"'dense' \(Dense\) is shared by inputs flattened"):
        dlcore.save(_shared_dense_after_two_flattens((2, 3, 4), (4, 3, 2)),
                    str(tmp_path / "refused.h5"), format="keras")
    assert not (tmp_path / "refused.h5").exists()
    path = str(tmp_path / "tampered.h5")
    dlcore.save(_shared_dense_after_two_flattens((2, 3, 4), (2, 3, 4)), path, format="keras")
    with h5py.File(path, "r+") as h5file:  # the second input now (4, 3, 2) maps, NHWC (3, 2, 4)
        config = json.loads(h5file.attrs["model_config"])
        second = [layer for layer in config["config"]["layers"]
                  if layer["class_name"] == "InputLayer"][1]
        second["config"]["batch_shape"] = [None, 3, 2, 4]
        # Keras may list both Flattens before the Dense they feed: the importer reads in order
        layers = config["config"]["layers"]
        layers.sort(key=lambda layer: layer["class_name"] not in ("InputLayer", "Flatten"))
        h5file.attrs["model_config"] = json.dumps(config)
    with pytest.raises(dlcore.ModelFileError, match="shared by inputs flattened from different"):
        dlcore.load(path)


@pytest.mark.parametrize("center, scale", [(False, False), (True, False)])
@pytest.mark.parametrize("name", ["legacy.h5", "archive.keras"])
def test_a_layer_normalization_without_gamma_or_beta_loads_from_either_keras_file(
        tmp_path, center, scale, name):
    """Without gamma and beta a LayerNormalization has no arrays: Keras's legacy file gives it
    an empty weight list, which the import must not count as missing weights."""
    from dlcore.layers import LayerNormalization
    model = dlcore.Sequential([Dense(4, input_shape=(3,)),
                               LayerNormalization(center=center, scale=scale),
                               Dense(2, activation="softmax")], backend="reference", seed=1)
    dlcore.save(model, tmp_path / name, format="keras")
    x = np.random.default_rng(0).random((5, 3), dtype=np.float32)
    np.testing.assert_allclose(dlcore.load(tmp_path / name).predict(x), model.predict(x),
                               atol=1e-6)
