"""Keras's other merge layers (lecture "Deep learning I", "Defining a functional model";
lecture "Convolutional neural networks" (2016), regularisation: an ensemble averages its
members' outputs): Average, Subtract, Multiply, Maximum and Minimum, on every backend, against
NumPy and finite differences."""
import numpy as np
import pytest

import dlcore
from conftest import requires_cuda
from dlcore.layers import (
    Add,
    Average,
    Dense,
    Maximum,
    Minimum,
    Multiply,
    Subtract,
    average,
    maximum,
    minimum,
    multiply,
    subtract,
)

BACKENDS = ["reference", "cpu", pytest.param("cuda", marks=requires_cuda)]


def _inputs(k, shape=(2, 3, 4), seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(np.float32) for _ in range(k)]


def _numpy_gradients(kind, xs, grad_y):
    """dL/dx_i of each merge, written out with NumPy (ties: the first input gets it)."""
    k = len(xs)
    if kind is Average:
        return [grad_y / k] * k
    if kind is Subtract:
        return [grad_y, -grad_y]
    if kind is Multiply:
        return [grad_y * np.prod([x for j, x in enumerate(xs) if j != i], axis=0)
                for i in range(k)]
    pick = np.argmax if kind is Maximum else np.argmin
    chosen = pick(np.stack(xs), axis=0)
    return [np.where(chosen == i, grad_y, 0) for i in range(k)]


_FORWARD = {Average: lambda xs: np.mean(xs, axis=0), Subtract: lambda xs: xs[0] - xs[1],
            Multiply: lambda xs: np.prod(xs, axis=0), Maximum: lambda xs: np.max(xs, axis=0),
            Minimum: lambda xs: np.min(xs, axis=0)}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", [Average, Subtract, Multiply, Maximum, Minimum])
def test_each_merge_matches_numpy_forward_and_backward(kind, backend):
    xs = _inputs(2 if kind is Subtract else 3)
    # ties: a copied input, so the first of the tied inputs must get the whole gradient
    xs[1][0, 0] = xs[0][0, 0]
    layer = kind()
    layer.build([x.shape[1:] for x in xs], backend=backend)
    y = layer.forward([layer.backend.asarray(x) for x in xs])
    np.testing.assert_allclose(layer.backend.to_numpy(y), _FORWARD[kind](xs), rtol=1e-6,
                               atol=1e-7)
    grad_y = _inputs(1, seed=5)[0]
    grads = layer.backward(layer.backend.asarray(grad_y))
    for got, want in zip(grads, _numpy_gradients(kind, xs, grad_y)):
        np.testing.assert_allclose(layer.backend.to_numpy(got), want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("count", [1, 3])
def test_subtract_takes_exactly_two_tensors(count):
    inputs = dlcore.Input(shape=(3,))
    with pytest.raises(ValueError, match=f"Subtract takes exactly two tensors.*got {count};"):
        subtract([inputs] * count)


def _repeated_gradient(grad, shape):
    """dL/dx of an x of per-sample ``shape`` repeated to grad's: grad summed where x has 1."""
    axes = tuple(axis + 1 for axis, size in enumerate(shape) if size == 1 and
                 grad.shape[axis + 1] != 1)
    return grad.sum(axis=axes, keepdims=True)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", [Add, Average, Subtract, Multiply, Maximum, Minimum])
def test_each_merge_broadcasts_axes_of_size_one_as_keras(kind, backend):
    """A squeeze-and-excitation block multiplies (C, H, W) maps by a (C, 1, 1) gate, and
    Keras's Add, Subtract, ... broadcast so too: dlcore refused ("needs tensors of one
    shape"). Now an axis of size 1 repeats (forward), and its gradient is dL/dy summed over
    the repeats; here also two inputs that each repeat another axis."""
    shapes = [(3, 4, 5), (3, 1, 1)] if kind is Subtract else [(3, 4, 5), (3, 1, 1), (1, 4, 1)]
    rng = np.random.default_rng(7)
    xs = [rng.standard_normal((2,) + shape).astype(np.float32) for shape in shapes]
    layer = kind()
    layer.build(shapes, backend=backend)
    assert layer.output_shape == (3, 4, 5)
    repeated = list(np.broadcast_arrays(*xs))
    forward = {Add: lambda arrays: np.sum(arrays, axis=0), **_FORWARD}[kind]
    y = layer.forward([layer.backend.asarray(x) for x in xs])
    np.testing.assert_allclose(layer.backend.to_numpy(y), forward(repeated), rtol=1e-6,
                               atol=1e-6)
    grad_y = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    full = [grad_y] * len(xs) if kind is Add else _numpy_gradients(kind, repeated, grad_y)
    grads = layer.backward(layer.backend.asarray(grad_y))
    for got, want, shape in zip(grads, full, shapes):
        assert tuple(got.shape) == (2,) + shape
        np.testing.assert_allclose(layer.backend.to_numpy(got), _repeated_gradient(want, shape),
                                   rtol=1e-5, atol=1e-5)


def test_merges_of_different_shapes_name_the_shapes():
    with pytest.raises(ValueError, match=r"multiply needs tensors of one shape, or of shapes "
                                         r"that broadcast .*; got \(3,\), \(4,\)$"):
        multiply([dlcore.Input(shape=(3,)), dlcore.Input(shape=(4,))])
    with pytest.raises(ValueError, match=r"add needs tensors of one rank, or \(C,\) vectors "
                                         r"with \(C, H, W\) maps; got \(4, 6, 5\), \(4, 6\): "
                                         r"reshape the smaller one first$"):
        dlcore.layers.add([dlcore.Input(shape=(4, 6, 5)), dlcore.Input(shape=(4, 6))])


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_vector_scales_maps_per_channel_as_keras_reads_it(backend):
    """Keras takes ``multiply([maps, gate])`` of (H, W, C) maps and a (C,) Dense output (no
    Reshape: it inserts the axes after the batch axis), each channel scaled by its gate; dlcore
    refused the ranks. A (C,) vector with (C, H, W) maps is now read per channel."""
    rng = np.random.default_rng(3)
    maps, gate, grad_y = (rng.standard_normal(shape).astype(np.float32)
                          for shape in [(2, 3, 4, 5), (2, 3), (2, 3, 4, 5)])
    layer = Multiply()
    layer.build([(3, 4, 5), (3,)], backend=backend)
    y = layer.forward([layer.backend.asarray(maps), layer.backend.asarray(gate)])
    np.testing.assert_allclose(layer.backend.to_numpy(y), maps * gate[:, :, None, None],
                               rtol=1e-6)
    grad_maps, grad_gate = layer.backward(layer.backend.asarray(grad_y))
    np.testing.assert_allclose(layer.backend.to_numpy(grad_maps), grad_y * gate[:, :, None, None],
                               rtol=1e-6)
    assert tuple(grad_gate.shape) == (2, 3)
    np.testing.assert_allclose(layer.backend.to_numpy(grad_gate),
                               (grad_y * maps).sum(axis=(2, 3)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("writer", ["dlcore", "keras"])
def test_an_averaged_ensemble_saves_and_loads(tmp_path, writer):
    inputs = dlcore.Input(shape=(4,))
    members = [Dense(2, activation="softmax")(inputs) for _ in range(3)]
    gate = multiply([Dense(2, activation="sigmoid")(inputs), average(members)])
    spread = subtract([maximum(members), minimum(members)])
    model = dlcore.Model(inputs, [gate, spread], backend="reference")
    x = np.random.default_rng(3).random((5, 4)).astype(np.float32)
    path = tmp_path / "ensemble.h5"
    if writer == "dlcore":
        dlcore.save(model, path)
        loaded = dlcore.load(path)
    else:   # a Keras legacy HDF5 file, read back by dlcore's Keras import
        model.save(path)
        loaded = dlcore.load(path)
    for got, want in zip(loaded.predict(x), model.predict(x)):
        np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("suffix", ["keras", "h5"])
def test_maps_that_each_broadcast_cross_the_keras_seam(tmp_path, suffix):
    """A row profile (C, H, 1) added to a column profile (C, 1, W): no input has the output's
    shape (Keras takes it: each axis of size 1 repeats). Saving such a model as a Keras file
    (and importing one) failed with an IndexError from the row-order check, which looked for
    the inputs of the output's shape."""
    from dlcore.layers import Conv2D, Flatten, add
    image = dlcore.Input(shape=(2, 4, 5))
    rows = Conv2D(3, (1, 5), activation="tanh")(image)       # (3, 4, 1)
    columns = Conv2D(3, (4, 1), activation="tanh")(image)    # (3, 1, 5)
    model = dlcore.Model(image, Dense(2, activation="softmax")(Flatten()(add([rows, columns]))),
                         backend="reference")
    x = np.random.default_rng(5).standard_normal((3, 2, 4, 5)).astype(np.float32)
    model.save(tmp_path / f"profiles.{suffix}")
    loaded = dlcore.load(tmp_path / f"profiles.{suffix}")
    np.testing.assert_allclose(loaded.predict(x), model.predict(x), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", [Add, Multiply, Maximum])
def test_a_vector_merged_with_maps_of_one_pixel_keeps_its_shape(kind, backend):
    """A (C,) gate merged with (C, 1, 1) maps (a GlobalAveragePooling2D(keepdims=True), Keras's
    (1, 1, C) with (C,)) repeats nothing, but its rank differs: the reference failed ("non-
    broadcastable output operand"), the kernels handed back a (C, 1, 1) gradient for the
    (C,) input."""
    rng = np.random.default_rng(1)
    maps, gate = rng.standard_normal((2, 3, 1, 1)), rng.standard_normal((2, 3))
    maps, gate = maps.astype(np.float32), gate.astype(np.float32)
    layer = kind()
    layer.build([(3, 1, 1), (3,)], backend=backend)
    y = layer.forward([layer.backend.asarray(maps), layer.backend.asarray(gate)])
    expected = {Add: np.add, Multiply: np.multiply, Maximum: np.maximum}[kind](
        maps, gate[:, :, None, None])
    np.testing.assert_allclose(layer.backend.to_numpy(y), expected, rtol=1e-6)
    grad_y = rng.standard_normal((2, 3, 1, 1)).astype(np.float32)
    wanted = [grad_y] * 2 if kind is Add else _numpy_gradients(
        kind, [maps, gate[:, :, None, None]], grad_y)
    grads = layer.backward(layer.backend.asarray(grad_y))
    for got, want, shape in zip(grads, wanted, [(2, 3, 1, 1), (2, 3)]):
        assert tuple(got.shape) == shape
        np.testing.assert_allclose(layer.backend.to_numpy(got), want.reshape(shape), rtol=1e-6)
