"""The merge layers ``Add`` and ``Concatenate`` (lecture "Deep learning I", "Defining a
functional model"; residual connections of lecture "Convolutional Neural Networks" (2019)),
through the same seams as every layer: the NumPy reference of :mod:`dlcore.layers.reference`,
the kernel bodies of :mod:`dlcore.layers.bodies`, dispatched by :mod:`dlcore.layers.ops`.

Oracles: NumPy's own ``+``, ``np.concatenate`` and slicing for the reference; the reference for
the ``cpu`` kernels and the ``cuda`` kernels (under the simulator)."""
import warnings

import numpy as np
import pytest

import dlcore
from conftest import requires_cuda
from dlcore import get_backend, layers
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


# -- a Keras channel axis on dlcore's channels-first maps ----------------------------------------
def small_unet(axis):
    """A U-Net's skip connection as Keras code writes it, ``concatenate([up, conv],
    axis=...)`` (lecture "Deep learning I", "The U-Net architecture")."""
    import dlcore
    from dlcore.layers import Conv2D, MaxPool2D, UpSampling2D, concatenate
    inputs = dlcore.Input((1, 8, 8))
    down = Conv2D(2, 3, padding="same")(inputs)
    up = UpSampling2D(2)(Conv2D(2, 3, padding="same")(MaxPool2D(2)(down)))
    return dlcore.Model(inputs, Conv2D(1, 1)(concatenate([up, down], axis=axis)),
                        backend="reference")


@pytest.mark.parametrize("axis, joined", [(3, "width"), (-1, "width"), (2, "height"),
                                          (-2, "height")])
def test_maps_joined_along_height_or_width_warn_in_one_line_naming_the_channel_axis(axis,
                                                                                    joined):
    """Keras's U-Net code joins NHWC maps on axis 3 (or its default -1): the channels. On
    dlcore's NCHW maps that axis is the width, which builds (4, 8, 16) maps without an error."""
    with pytest.warns(UserWarning) as caught:
        model = small_unet(axis)
    messages = [str(w.message) for w in caught if "Concatenate" in str(w.message)]
    assert messages == [f"Concatenate(axis={axis}) joins (C, H, W) maps along their {joined}: "
                        f"dlcore's images are channels-first, so the channels (Keras's axis=-1 "
                        f"or 3 of NHWC maps) are axis=1 (or -3) here"]
    assert [w.filename for w in caught if "Concatenate" in str(w.message)] == [__file__]
    assert model.output_shape == ((1, 8, 16) if joined == "width" else (1, 16, 8))


@pytest.mark.parametrize("build", [
    lambda: small_unet(1), lambda: small_unet(-3),
    lambda: Concatenate(axis=-1).build([(4,), (3,)]),          # rows: their features
    lambda: Concatenate(axis=2).build([(6, 5), (6, 2)]),       # (H, W) arrays, no channels
])
def test_channels_rows_and_arrays_without_channels_join_without_a_warning(build):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build()


def test_a_keras_file_that_joins_maps_along_the_width_imports_without_a_warning(tmp_path):
    """The import's axis is the file's own (Keras's NHWC axis 2 is dlcore's 3): no advice to
    give there. The file is dlcore's Keras export of such a join."""
    import warnings

    import dlcore
    with pytest.warns(UserWarning, match="along their width"):
        model = small_unet(3)
    dlcore.save(model, tmp_path / "joined.h5", format="keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = dlcore.load(tmp_path / "joined.h5")
    x = batches((2, 1, 8, 8))[0]
    np.testing.assert_allclose(again.predict(x), model.predict(x), atol=1e-6)


def test_maps_of_different_channels_joined_along_the_width_are_refused_naming_the_axis():
    with pytest.raises(ValueError, match=r"got \(3, 8, 8\), \(2, 8, 8\); dlcore's images are "
                                         r"channels-first: their channels are axis=1"):
        Concatenate(axis=-1).build([(3, 8, 8), (2, 8, 8)])


def test_a_merge_called_on_batches_of_other_sizes_names_itself_and_the_sizes():
    """A merge called on arrays (``Add()([a, b])``) has no name: its refusal said
    "layer None expects inputs of shapes ...", and not that the batches' sizes differ."""
    with pytest.raises(ValueError) as error:
        Add()([np.ones((2, 3)), np.ones((3, 3))])
    message = str(error.value)
    assert message.startswith("Add expects inputs of shapes [(None, 3), (None, 3)]; got "
                              "[(2, 3), (3, 3)]: batches of 2 and 3 samples")
    assert "None expects" not in message and "\n" not in message



@pytest.mark.parametrize("make", [
    lambda **kw: layers.Add(**kw), lambda **kw: layers.Subtract(**kw),
    lambda **kw: layers.Maximum(**kw), lambda **kw: layers.Concatenate(**kw),
    lambda **kw: layers.Dot(axes=1, **kw)],
    ids=["Add", "Subtract", "Maximum", "Concatenate", "Dot"])
def test_merges_take_kerass_trainable_dtype_and_name_keywords(make):
    """Keras's Add(trainable=False, dtype="float64", name=...) (any merge) was refused
    ("unexpected keyword argument 'trainable'"). Now the trainable flag reads back and is
    kept in the config, a merge on arrays computes in its dtype, and a dtype dlcore has not is
    refused in one line."""
    layer = make(trainable=False, dtype="float64", name="joined")
    assert layer.trainable is False and layer.name == "joined"
    assert type(layer).from_config(layer.get_config()).trainable is False
    a = np.ones((2, 3), np.float32)
    assert layer([a, 2 * a]).dtype == np.float64
    with pytest.raises(ValueError, match=r"^dtype='mixed_float16': dlcore computes in float32 "
                                         r"or float64 \(dtype='float32', 'float64' or None\)$"):
        make(dtype="mixed_float16")


def test_the_merge_functions_pass_kerass_keywords_on():
    a = np.ones((2, 3), np.float32)
    assert layers.average([a, a], dtype="float64", trainable=False, name="mean").dtype == \
        np.float64


def test_a_merges_dtype_a_model_of_another_type_overrules_is_told_in_one_line():
    """Add(dtype="float64") in a float32 model computed in float32 without a word (the model's
    one type rules); now a one-line warning names the layer, both types and the way out, and a
    merge whose dtype is the model's, or none, says nothing."""
    inputs = dlcore.Input((3,))
    joined = layers.Add(dtype="float64", name="joined")([inputs, inputs])
    model = dlcore.Model(inputs, layers.Dense(2)(joined), backend="reference")
    x = np.ones((2, 3), np.float32)
    with pytest.warns(UserWarning, match=r"^layer 'joined': dtype='float64' is not this "
                                         r"model's float32") as caught:
        model.predict(x, verbose=0)
        model.predict(x, verbose=0)
    assert len(caught) == 1 and "\n" not in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for dtype in ("float32", None):
            inputs = dlcore.Input((3,))
            joined = layers.Add(dtype=dtype)([inputs, inputs])
            dlcore.Model(inputs, layers.Dense(2)(joined), backend="reference").predict(
                x, verbose=0)
        inputs = dlcore.Input((3,))
        joined = layers.Add(dtype="float64")([inputs, inputs])
        model = dlcore.Model(inputs, layers.Dense(2)(joined), backend="reference")
        model.build(dtype=np.float64)
        model.predict(x, verbose=0)
