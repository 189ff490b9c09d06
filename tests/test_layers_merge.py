"""The merge layers ``Add`` and ``Concatenate`` (lecture "Deep learning I", "Defining a
functional model"; residual connections of lecture "Convolutional Neural Networks" (2019)),
through the same seams as every layer: the NumPy reference of :mod:`dlcore.layers.reference`,
the kernel bodies of :mod:`dlcore.layers.bodies`, dispatched by :mod:`dlcore.layers.ops`.

Oracles: NumPy's own ``+``, ``np.concatenate`` and slicing for the reference; the reference for
the ``cpu`` kernels and the ``cuda`` kernels (under the simulator)."""
import numpy as np
import pytest

from conftest import requires_cuda
from dlcore import get_backend
from dlcore.layers import Add, Concatenate
from dlcore.layers import reference as ref
from dlcore.layers.ops import KernelOps, ReferenceOps, ops_for


def batches(*shapes, seed=0):
    rs = np.random.default_rng(seed)
    return [rs.standard_normal(shape).astype(np.float32) for shape in shapes]


# -- the reference against NumPy --------------------------------------------------------------
def test_reference_add_is_the_elementwise_sum_and_passes_its_gradient_to_every_input():
    a, b, c = batches((2, 3, 4, 4), (2, 3, 4, 4), (2, 3, 4, 4))
    np.testing.assert_allclose(ref.add_forward([a, b, c]), a + b + c, rtol=1e-6)
    grads = ref.add_backward(a, 3)
    assert len(grads) == 3 and all(np.array_equal(g, a) and g is not a for g in grads)


@pytest.mark.parametrize("axis, shapes", [(1, [(2, 3, 4, 4), (2, 5, 4, 4)]),
                                          (3, [(2, 3, 4, 1), (2, 3, 4, 2), (2, 3, 4, 3)]),
                                          (1, [(3, 2), (3, 7)])])
def test_reference_concatenate_joins_along_the_axis_and_splits_the_gradient_back(axis, shapes):
    xs = batches(*shapes)
    y = ref.concatenate_forward(xs, axis)
    assert y.shape[axis] == sum(shape[axis] for shape in shapes)
    start = 0
    for x in xs:   # the slice each input filled, by hand
        index = [slice(None)] * y.ndim
        index[axis] = slice(start, start + x.shape[axis])
        np.testing.assert_array_equal(y[tuple(index)], x)
        start += x.shape[axis]
    parts = ref.concatenate_backward(y, [x.shape[axis] for x in xs], axis)
    for part, x in zip(parts, xs):
        np.testing.assert_array_equal(part, x)


# -- the kernels against the reference -----------------------------------------------------------
def run_merge(make_layer, backend, xs, grad_y):
    """Forward and backward of a fresh merge layer on ``backend``: [y, dL/dx_1, ...]."""
    layer = make_layer()
    layer.build([x.shape[1:] for x in xs], backend=backend)
    be = layer.backend
    y = layer.forward([be.asarray(x) for x in xs])
    grads = layer.backward(be.asarray(grad_y))
    return [np.array(be.to_numpy(y))] + [np.array(be.to_numpy(g)) for g in grads]


CASES = [
    (Add, [(2, 3, 4, 4)] * 3),
    (Add, [(5, 7)] * 2),
    (Concatenate, [(2, 3, 4, 4), (2, 5, 4, 4)]),
    (lambda: Concatenate(axis=-1), [(2, 3, 4, 1), (2, 3, 4, 6)]),
    (lambda: Concatenate(axis=2), [(2, 2, 3, 5), (2, 2, 1, 5), (2, 2, 4, 5)]),
    (Concatenate, [(4, 3), (4, 9)]),
]
IDS = ["add-images", "add-rows", "concat-channels", "concat-last", "concat-height",
       "concat-rows"]


def assert_merge_follows_the_reference(make_layer, shapes, backend):
    xs = batches(*shapes)
    layer = make_layer()
    out_shape = (shapes[0][0],) + layer.compute_output_shape([s[1:] for s in shapes])
    grad_y = batches(out_shape, seed=1)[0]
    expected = run_merge(make_layer, "reference", xs, grad_y)
    got = run_merge(make_layer, backend, xs, grad_y)
    assert len(got) == len(expected) == len(xs) + 1
    for index, (a, b) in enumerate(zip(got, expected)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6, err_msg=f"result {index}")


@pytest.mark.parametrize("make_layer, shapes", CASES, ids=IDS)
def test_cpu_merge_layers_follow_the_reference(make_layer, shapes):
    assert_merge_follows_the_reference(make_layer, shapes, "cpu")


@requires_cuda
@pytest.mark.parametrize("make_layer, shapes", CASES[:1] + CASES[3:4], ids=IDS[:1] + IDS[3:4])
def test_cuda_merge_layers_follow_the_reference(make_layer, shapes):
    assert_merge_follows_the_reference(make_layer, shapes, "cuda")


def test_the_merge_layers_run_the_ops_of_their_backend():
    """The seam: a merge layer computes through ``ops_for(backend)`` as every layer does, the
    reference on the reference backend and the kernels elsewhere."""
    for backend, kind in (("reference", ReferenceOps), ("cpu", KernelOps)):
        layer = Concatenate().build([(2,), (3,)], backend=backend)
        assert isinstance(layer.ops, kind)
        assert isinstance(ops_for(get_backend(backend)), kind)


@pytest.mark.parametrize("backend", ["cpu", pytest.param("cuda", marks=requires_cuda)])
def test_graph_sums_and_packing_follow_the_reference(backend):
    """copy, accumulate, place_columns and take_columns (what a functional model uses to sum
    the gradients of a tensor used twice and to pack several inputs as rows) on the kernels
    equal the reference."""
    kernels, reference = ops_for(get_backend(backend)), ops_for(get_backend("reference"))
    be = kernels.backend
    source, target = batches((3, 4), (3, 9))
    results = []
    for ops, asarray, to_numpy in ((reference, np.array, np.array),
                                   (kernels, be.asarray, be.to_numpy)):
        a, wide = asarray(source.copy()), asarray(target.copy())
        copied, summed = asarray(np.zeros_like(source)), asarray(target[:, :4].copy())
        taken = asarray(np.zeros((3, 2), np.float32))
        ops.copy(a, copied)
        ops.accumulate(a, summed)
        ops.place_columns(a, wide, 5)
        ops.take_columns(wide, taken, 6)
        results.append([np.array(to_numpy(v)) for v in (copied, summed, wide, taken)])
    expected_wide = target.copy()
    expected_wide[:, 5:9] = source
    np.testing.assert_array_equal(results[0][0], source)
    np.testing.assert_allclose(results[0][1], target[:, :4] + source, rtol=1e-6)
    np.testing.assert_array_equal(results[0][2], expected_wide)
    np.testing.assert_array_equal(results[0][3], source[:, 1:3])
    for got, expected in zip(results[1], results[0]):
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
