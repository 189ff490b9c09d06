"""Keras's Dot merge (keras.io's functional API guide: a siamese network scores two embeddings
of one shared tower): the dot product of two rows, or with ``normalize=True`` their cosine
similarity, on every backend, against NumPy and finite differences, and across the Keras seam.
A Keras file holding a Dot was refused ("cannot be imported")."""
import numpy as np
import pytest

import dlcore
from conftest import requires_cuda
from dlcore.layers import Dense, Dot, Flatten, concatenate, dot

BACKENDS = ["reference", "cpu", pytest.param("cuda", marks=requires_cuda)]


def _rows(seed, shape=(4, 5)):
    return np.random.default_rng(seed).standard_normal(shape)


def _numpy_dot(a, b, grad_y, normalize):
    """y and (dL/da, dL/db) of Keras's Dot written out: normalised rows a / max(||a||, 1e-7);
    the gradient through the normalisation by the quotient rule, d(a/||a||)/da =
    (I - a a' / ||a||^2) / ||a||, for rows longer than 1e-7 (a shorter row is a / 1e-7)."""
    if not normalize:
        return np.sum(a * b, axis=1, keepdims=True), [grad_y * b, grad_y * a]
    length_a = np.linalg.norm(a, axis=1, keepdims=True)
    length_b = np.linalg.norm(b, axis=1, keepdims=True)
    u, v = a / np.maximum(length_a, 1e-7), b / np.maximum(length_b, 1e-7)
    y = np.sum(u * v, axis=1, keepdims=True)
    grads = []
    for this, other, length in ((u, v, length_a), (v, u, length_b)):
        through = np.einsum("ni,nij->nj", other,
                            np.eye(this.shape[1]) - (length > 1e-7)[:, :, None]
                            * this[:, :, None] * this[:, None, :])
        grads.append(grad_y * through / np.maximum(length, 1e-7))
    return y, grads


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("normalize", [False, True])
def test_dot_matches_numpy_forward_and_backward(backend, normalize):
    a, b = _rows(0).astype(np.float32), _rows(1).astype(np.float32)
    a[3] = 0   # a zero row: Keras's normalisation divides it by 1e-7, not by 0
    grad_y = _rows(2, (4, 1)).astype(np.float32)
    layer = Dot(axes=1, normalize=normalize)
    layer.build([(5,), (5,)], backend=backend)
    assert layer.output_shape == (1,)
    y = layer.forward([layer.backend.asarray(a), layer.backend.asarray(b)])
    want_y, want_grads = _numpy_dot(a.astype(np.float64), b.astype(np.float64),
                                    grad_y.astype(np.float64), normalize)
    np.testing.assert_allclose(layer.backend.to_numpy(y), want_y, rtol=1e-5, atol=1e-6)
    grads = layer.backward(layer.backend.asarray(grad_y))
    for got, want in zip(grads, want_grads):
        np.testing.assert_allclose(layer.backend.to_numpy(got), want, rtol=1e-5, atol=1e-5)


def _siamese(normalize):
    left, right = dlcore.Input(shape=(4,)), dlcore.Input(shape=(4,))
    tower = Dense(3, activation="tanh")
    first, second = tower(left), tower(right)
    score = dot([first, Dense(3)(second)], axes=-1, normalize=normalize)
    similarity = Dot(axes=(1, 1), normalize=True)([first, second])
    output = Dense(1, activation="sigmoid")(concatenate([score, similarity]))
    return dlcore.Model([left, right], output, backend="reference", seed=1)


@pytest.mark.parametrize("normalize", [False, True])
def test_a_siamese_model_scored_by_dot_gradchecks(normalize):
    model = _siamese(normalize)
    model.compile("binary_cross_entropy", "sgd")
    x = [_rows(3, (3, 4)), _rows(4, (3, 4))]
    errors = dlcore.gradcheck(model, x, [0, 1, 1], verbose=False)
    assert {"dense/kernel", "dense_1/kernel"} <= set(errors)
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("shapes, axes, message", [
    ([(2, 3, 3), (2, 3, 3)], 1, r"two batches of rows .*got \(2, 3, 3\), \(2, 3, 3\): Keras's "
                                r"Dot of sequences or maps"),
    ([(3,), (4,)], 1, r"rows of one length; got \(3,\), \(4,\)"),
    ([(3,), (3,)], (1, 2), r"Dot\(axes=\(1, 2\)\) of rows .* use Dot\(axes=1\)"),
    ([(3,)] * 3, 1, "Dot takes exactly two tensors"),
])
def test_dot_refuses_what_it_cannot_take_in_one_line(shapes, axes, message):
    with pytest.raises(ValueError, match=message):
        Dot(axes=axes).build(shapes)


@pytest.mark.parametrize("axes", [0, (1,), (1, 0), True, 1.0])
def test_dot_refuses_axes_keras_refuses(axes):
    with pytest.raises(ValueError, match="Dot's axes must be a non-zero integer or a pair"):
        Dot(axes=axes)


@pytest.mark.parametrize("suffix", ["dlcore.h5", "h5", "keras"])
def test_a_model_with_dot_saves_and_loads(tmp_path, suffix):
    """dlcore's own file and the Keras files it writes (``.h5``, ``.keras``) keep both Dot
    layers' axes and normalize; the Keras files are read back by dlcore's import."""
    model = _siamese(normalize=False)
    x = [_rows(5, (3, 4)).astype(np.float32), _rows(6, (3, 4)).astype(np.float32)]
    path = tmp_path / f"siamese.{suffix}"
    if suffix == "dlcore.h5":
        dlcore.save(model, path)
    else:
        model.save(path)
    loaded = dlcore.load(path)
    dots = [layer for layer in loaded.layers if isinstance(layer, Dot)]
    assert [(layer.normalize, layer.axes) for layer in dots] == [(False, -1), (True, (1, 1))]
    np.testing.assert_allclose(loaded.predict(x), model.predict(x), rtol=1e-6)


def test_dot_of_rows_flattened_in_different_orders_is_refused_on_export(tmp_path):
    """Keras flattens (H, W, C) maps in another order than dlcore's (C, H, W): a dot product of
    a flattened map with a Dense's rows would differ in Keras, so the export says so."""
    image = dlcore.Input(shape=(2, 2, 2))
    rows = Flatten()(image)
    model = dlcore.Model(image, Dot(axes=1)([rows, Dense(8)(rows)]), backend="reference")
    with pytest.raises(ValueError, match=r"\(Dot\) merges rows in different orders"):
        model.save(tmp_path / "m.keras")
    assert not (tmp_path / "m.keras").exists()


def test_a_dot_of_flattened_maps_sees_all_of_them():
    """A Dot sums over every unit of its rows, as a Dense does: its receptive field is that of
    the whole flattened maps (it was the field of one unit of them, a 3x3 window)."""
    from dlcore.layers import Conv2D
    image = dlcore.Input((1, 8, 8))
    rows = Flatten()(Conv2D(2, 3)(image))
    model = dlcore.Model(image, Dense(2)(Dot(axes=1)([rows, rows])), backend="reference")
    fields = dlcore.receptive_field.receptive_fields(model)
    assert fields["flatten"].size == (3, 3)
    assert fields["dot"] == fields["dense"]
    assert (fields["dot"].size, fields["dot"].jump) == ((8, 8), (6, 6))


@pytest.mark.parametrize("change, message", [
    ({"axes": "x"}, "axes x is not an integer or a pair of integers"),
    ({"axes": [1, 2, 3]}, r"axes \[1, 2, 3\] is not an integer or a pair"),
    ({"axes": [0, 1]}, r"the batch axis 0 cannot be summed over\), got \(0, 1\)"),
    ({"normalize": "yes"}, "normalize yes is not true or false"),
])
def test_a_keras_file_with_a_dot_of_bad_settings_is_refused_in_one_line(tmp_path, change,
                                                                        message):
    import json
    import zipfile
    inputs = [dlcore.Input((3,)), dlcore.Input((3,))]
    dlcore.Model(inputs, Dot(axes=1, name="cosine")(inputs)).save(tmp_path / "dot.keras")
    with zipfile.ZipFile(tmp_path / "dot.keras") as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    for layer in config["config"]["layers"]:
        if layer["config"].get("name") == "cosine":
            layer["config"].update(change)
    members["config.json"] = json.dumps(config)
    with zipfile.ZipFile(tmp_path / "edited.keras", "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(dlcore.ModelFileError, match=r"Keras layer 'cosine' \(Dot\) cannot be "
                       r"imported: .*" + message):
        dlcore.load(tmp_path / "edited.keras")


@pytest.mark.parametrize("kind, fix", [
    ("Dot", "dot rows flattened from maps of one shape, or put a Dense between the Flatten "
            "and the Dot"),
    ("Add", "add the maps before flattening them"),
], ids=["Dot", "Add"])
def test_a_keras_merge_of_rows_in_two_orders_is_refused_in_the_files_shapes(tmp_path, kind,
                                                                            fix):
    """A Keras file merging rows flattened from (4, 4, 2) maps with rows of another order
    (here flattened from (32, 1, 1) maps, which both libraries flatten alike) was refused
    naming dlcore's (2, 4, 4) layout as a raw tuple, and a Dot's told to dot the maps before
    flattening them, which dlcore's Dot refuses."""
    import json
    import zipfile
    inputs = [dlcore.Input((2, 4, 4), name="maps"), dlcore.Input((2, 4, 4), name="rows")]
    flat = [Flatten()(inputs[0]), Flatten()(inputs[1])]
    dlcore.Model(inputs, Dot(axes=1, name="merge")(flat)).save(tmp_path / "merge.keras")
    with zipfile.ZipFile(tmp_path / "merge.keras") as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    for layer in config["config"]["layers"]:
        if layer["name"] == "rows":
            layer["config"]["batch_shape"] = [None, 32, 1, 1]
        if layer["name"] == "merge" and kind == "Add":
            layer["class_name"], layer["config"] = "Add", {"name": "merge"}
    members["config.json"] = json.dumps(config)
    with zipfile.ZipFile(tmp_path / "edited.keras", "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(dlcore.ModelFileError) as error:
        dlcore.load(tmp_path / "edited.keras")
    message = str(error.value)
    assert "(rows flattened from (4, 4, 2) maps; rows in the same order in both libraries)" \
        in message
    assert message.endswith(fix) and "\n" not in message


def test_a_keras_dot_of_sequences_is_refused_without_the_flatten_advice():
    """Keras's Dot(axes=2) of (steps, features) sequences is a (steps, steps) matrix of scores
    (attention): the line told to flatten first, which gives one number instead; it now says
    what Keras computes and that dlcore does not."""
    queries, keys = dlcore.Input((3, 4)), dlcore.Input((3, 4))
    with pytest.raises(ValueError, match=r"got \(3, 4\), \(3, 4\): Keras's Dot of sequences or "
                                         r"maps, which sums over one axis and keeps the others "
                                         r"\(attention scores\), is not implemented") as refused:
        Dot(axes=2)([queries, keys])
    assert "\n" not in str(refused.value)
