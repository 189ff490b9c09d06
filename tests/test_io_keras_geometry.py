"""Keras's geometry for imported layers (dlcore/layers/geometry.py, pooling.py, conv.py):
``same`` padding that pads one more row at the bottom (or column at the right) when its total is
odd (a stride above 1, an even kernel), pools that ignore their padded cells (max over the real
pixels, average over their count), and the Keras files that need them.

Oracles: Keras's published rule for ``same`` (TensorFlow's and JAX's, which Keras's layers
document), computed here as plain loops over each window's real pixels; the NumPy reference for
the ``cpu`` kernels and ``cuda`` under the simulator; :func:`dlcore.gradcheck` (float64 central
differences) for the gradients; Keras's own predictions stored beside a file Keras 3 wrote
(tests/fixtures/keras_same_geometry.h5, JAX backend).
"""
import json
import math
import warnings

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dlcore
from conftest import requires_cuda
from dlcore.layers import AvgPool2D, Conv2D, Dense, Flatten, L2Pool2D, MaxPool2D
from dlcore.layers import reference as ref
from dlcore.layers.geometry import Window, keras_same_padding
from test_io_keras import fixture, keras_data, keras_numpy_predict, real_keras
from test_layers_kernels import assert_backends_agree, images


# --------------------------------------------------------------------------------------------
# The rule
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n, f, s, expected", [
    (8, 3, 2, (0, 1)),     # stride 2 on an even size: the extra row at the bottom
    (13, 3, 2, (1, 1)),    # stride 2 on an odd size: equal
    (7, 2, 1, (0, 1)),     # an even kernel at stride 1
    (7, 4, 1, (1, 2)),
    (3, 4, 3, (0, 1)),
    (1, 4, 3, (1, 2)),
    (6, 1, 4, (0, 0)),     # nothing to pad: 'same' is 'valid' that floors
    (5, 3, 1, (1, 1)),     # dlcore's own "same": (F - 1) / 2 on both sides
])
def test_keras_same_pads_the_odd_row_at_the_bottom(n, f, s, expected):
    assert keras_same_padding(n, f, s) == expected


@given(st.integers(1, 40), st.integers(1, 7), st.integers(1, 5))
def test_keras_same_keeps_ceil_n_over_s_outputs_with_floor(n, f, s):
    top, bottom = keras_same_padding(n, f, s)
    assert bottom - top in (0, 1) and top < f and bottom < f
    window = Window.fit((1, n, n), (f, f), (s, s), ((top, bottom), (top, bottom)), "test",
                        floor=True)
    assert window.out_height == math.ceil(n / s)


# --------------------------------------------------------------------------------------------
# The reference against loops over each window's real pixels
# --------------------------------------------------------------------------------------------
def pool_loops(x, pool, stride, sides, kind):
    """Keras's pooling with a padding it ignores: each window's real pixels only."""
    (top, bottom), (left, right) = sides
    n, channels, height, width = x.shape
    out_h = (height + top + bottom - pool[0]) // stride[0] + 1
    out_w = (width + left + right - pool[1]) // stride[1] + 1
    y = np.zeros((n, channels, out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            rows = slice(max(i * stride[0] - top, 0), min(i * stride[0] - top + pool[0], height))
            columns = slice(max(j * stride[1] - left, 0),
                            min(j * stride[1] - left + pool[1], width))
            cells = x[:, :, rows, columns]
            y[:, :, i, j] = {"max": cells.max(axis=(2, 3)), "avg": cells.mean(axis=(2, 3)),
                             "l2": np.sqrt((cells ** 2).sum(axis=(2, 3)))}[kind]
    return y


def conv_loops(x, kernel, bias, stride, sides):
    """z[n, f, y, x] = b[f] + sum K[f, c, i, j] xpad[n, c, S y + i, S x + j], xpad padded by
    (top, bottom), (left, right) zeros."""
    (top, bottom), (left, right) = sides
    padded = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    kh, kw = kernel.shape[2:]
    out_h = (padded.shape[2] - kh) // stride[0] + 1
    out_w = (padded.shape[3] - kw) // stride[1] + 1
    z = np.zeros((x.shape[0], kernel.shape[0], out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            patch = padded[:, :, i * stride[0]:i * stride[0] + kh, j * stride[1]:j * stride[1] + kw]
            z[:, :, i, j] = np.einsum("ncij,fcij->nf", patch, kernel) + bias
    return z


geometries = st.tuples(st.integers(3, 9), st.integers(3, 9), st.integers(1, 4),
                       st.integers(1, 4), st.integers(1, 3), st.integers(1, 3))


def same_window(shape, kernel, stride):
    sides = tuple(keras_same_padding(n, k, s) for n, k, s in zip(shape[1:], kernel, stride))
    return Window.fit(shape, kernel, stride, sides, "test", floor=True), sides


@settings(max_examples=40, deadline=None)
@given(geometries, st.sampled_from(["max", "avg", "l2"]))
def test_reference_pools_with_keras_same_cover_only_real_pixels(geometry, kind):
    height, width, kh, kw, sh, sw = geometry
    x = images(2, 2, height, width)
    window, sides = same_window((2, height, width), (kh, kw), (sh, sw))
    forward = {"max": lambda: ref.max_pool_forward(x, window)[0],
               "avg": lambda: ref.avg_pool_forward(x, window),
               "l2": lambda: ref.l2_pool_forward(x, window)}[kind]
    np.testing.assert_allclose(forward(), pool_loops(x, (kh, kw), (sh, sw), sides, kind),
                               rtol=1e-5, atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(geometries)
def test_reference_max_pool_argmax_points_at_a_real_pixel(geometry):
    height, width, kh, kw, sh, sw = geometry
    x = images(1, 1, height, width)
    window, _ = same_window((1, height, width), (kh, kw), (sh, sw))
    y, argmax = ref.max_pool_forward(x, window)
    assert argmax.min() >= 0 and argmax.max() < height * width
    np.testing.assert_array_equal(x.reshape(1, 1, -1)[0, 0][argmax[0, 0]], y[0, 0])


@settings(max_examples=30, deadline=None)
@given(geometries)
def test_reference_convolution_pads_unequally_as_keras_same(geometry):
    height, width, kh, kw, sh, sw = geometry
    x = images(2, 2, height, width)
    kernel, bias = images(3, 2, kh, kw, seed=1), images(3, seed=2)
    window, sides = same_window((2, height, width), (kh, kw), (sh, sw))
    np.testing.assert_allclose(ref.conv2d_forward(x, kernel, bias, window),
                               conv_loops(x, kernel, bias, (sh, sw), sides), rtol=1e-4,
                               atol=1e-5)


# --------------------------------------------------------------------------------------------
# Kernels against the reference (cpu; cuda under the simulator), gradients
# --------------------------------------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(geometries, st.sampled_from([MaxPool2D, AvgPool2D, L2Pool2D]))
def test_cpu_pools_with_a_padding_follow_the_reference(geometry, pool):
    height, width, kh, kw, sh, sw = geometry
    _, sides = same_window((2, height, width), (kh, kw), (sh, sw))
    assert_backends_agree(lambda: pool((kh, kw), stride=(sh, sw), padding=sides, floor=True),
                          images(2, 2, height, width))


@settings(max_examples=25, deadline=None)
@given(geometries, st.sampled_from(["linear", "relu", "softmax"]))
def test_cpu_convolutions_with_unequal_padding_follow_the_reference(geometry, activation):
    """Stride 1 takes the CPU's "wide" path (a padded image one row and column larger at the
    bottom and right), larger strides its "samples" path."""
    height, width, kh, kw, sh, sw = geometry
    _, sides = same_window((2, height, width), (kh, kw), (sh, sw))
    assert_backends_agree(lambda: Conv2D(3, (kh, kw), stride=(sh, sw), padding=sides,
                                         floor=True, activation=activation),
                          images(2, 2, height, width))


@requires_cuda
@pytest.mark.parametrize("make", [
    lambda: MaxPool2D(2, padding=((0, 1), (0, 1)), floor=True),
    lambda: AvgPool2D(3, stride=2, padding=((1, 1), (0, 1)), floor=True),
    lambda: L2Pool2D(2, stride=1, padding=((0, 1), (1, 0)), floor=True),
    lambda: Conv2D(2, 2, padding=((0, 1), (0, 1)), floor=True, activation="tanh"),
    lambda: Conv2D(2, 3, stride=2, padding=((0, 1), (1, 1)), floor=True),
], ids=["max", "avg", "l2", "conv-even", "conv-stride2"])
def test_cuda_layers_with_keras_same_follow_the_reference(make):
    assert_backends_agree(make, images(2, 1, 5, 4), backend="cuda")


def test_unequal_padding_gradients_match_finite_differences():
    model = dlcore.Sequential([
        Conv2D(3, 3, stride=2, padding=((0, 1), (1, 1)), floor=True, activation="tanh"),
        AvgPool2D(3, stride=2, padding=((1, 1), (0, 1)), floor=True),
        Conv2D(2, 2, padding=((0, 1), (0, 1)), floor=True, activation="relu"),
        MaxPool2D(2, padding=((0, 1), (0, 0)), floor=True),
        Flatten(), Dense(3, activation="softmax")],
        input_shape=(2, 8, 7), backend="reference", seed=3).clone(dtype=np.float64)
    model.compile("cross_entropy", "sgd")
    x = np.random.default_rng(0).random((2, 2, 8, 7))
    result = dlcore.gradcheck(model, x, np.array([0, 2]))
    worst = max(result.values()) if isinstance(result, dict) else result
    assert worst < 1e-5, result


# --------------------------------------------------------------------------------------------
# The options: explicit, refused where they make no sense, kept by dlcore's own files
# --------------------------------------------------------------------------------------------
def test_dlcore_own_layers_keep_refusing_what_does_not_fit():
    with pytest.raises(ValueError, match="does not fit"):
        MaxPool2D(2).build((1, 7, 7), backend="reference")
    with pytest.raises(ValueError, match="does not fit"):
        Conv2D(3, 3, stride=2, padding=((0, 1), (0, 0))).build((1, 7, 7), backend="reference")
    # the same padding with Keras's floor is what an imported layer sets
    layer = Conv2D(3, 3, stride=2, padding=((0, 1), (0, 0)), floor=True)
    assert layer.compute_output_shape((1, 8, 7)) == (3, 4, 3)


@pytest.mark.parametrize("padding, match", [
    ("full", "'valid', 'same'"),
    (((2, 0), (0, 0)), "smaller than the pool"),
    (((0, 0), (-1, 0)), "non-negative"),
])
def test_a_pool_padding_that_makes_no_sense_is_refused(padding, match):
    with pytest.raises(ValueError, match=match):
        MaxPool2D(2, padding=padding)


def test_dlcore_files_keep_the_padding_per_side(tmp_path):
    model = dlcore.load(fixture("keras_same_geometry.h5"))
    x, _, y_keras = keras_data("same_geometry")
    dlcore.save(model, tmp_path / "own.h5")
    again = dlcore.load(tmp_path / "own.h5")
    assert again.layers[3].padding == ((0, 1), (0, 0))
    np.testing.assert_allclose(again.predict(x), y_keras, atol=1e-4)


# --------------------------------------------------------------------------------------------
# A file Keras wrote
# --------------------------------------------------------------------------------------------
def test_a_keras_file_with_unequal_same_padding_predicts_as_keras():
    model = dlcore.load(fixture("keras_same_geometry.h5"))
    layers = {layer.name: layer for layer in model.layers}
    assert layers["conv_stride2"]._padding == ((1, 1), (0, 1))      # 13x12, F 3, S 2
    assert layers["conv_even"]._padding == ((0, 1), (0, 1))         # F 2, S 1
    assert layers["max_same"].padding == ((0, 1), (0, 0))
    assert layers["avg_same"].padding == ((0, 1), (1, 1))
    assert layers["conv_padded"]._padding == ((1, 2), (0, 1))       # an unequal ZeroPadding2D
    assert layers["conv_stride3"]._padding == ((0, 1), (1, 2))
    assert [layer.output_shape for layer in model.layers[:7]] == [
        (3, 7, 6), (4, 7, 6), (4, 7, 6), (4, 4, 3), (4, 2, 2), (3, 3, 1), (4, 1, 1)]
    x, _, y_keras = keras_data("same_geometry")
    for backend in ("reference", "cpu"):
        np.testing.assert_allclose(model.clone(backend=backend).predict(x), y_keras, atol=1e-4)


def test_the_numpy_keras_of_the_tests_ignores_pool_padding_as_keras_does():
    _, x_nhwc, y_keras = keras_data("same_geometry")
    np.testing.assert_allclose(keras_numpy_predict(fixture("keras_same_geometry.h5"), x_nhwc),
                               y_keras, atol=1e-5)


def test_an_imported_keras_same_model_trains_on_and_exports_back_to_the_same_geometry(tmp_path):
    model = dlcore.load(fixture("keras_same_geometry.h5"))
    x, x_nhwc, y_keras = keras_data("same_geometry")
    path = tmp_path / "back.h5"
    dlcore.save(model, path, format="keras")
    with h5py.File(path, "r") as h5file:
        config = json.loads(h5file.attrs["model_config"])
    padding = {entry["config"]["name"]: entry["config"].get("padding")
               for entry in config["config"]["layers"]}
    assert padding["conv_stride2"] == padding["conv_even"] == padding["conv_stride3"] == "same"
    assert padding["max_same"] == padding["avg_same"] == padding["avg_stride1"] == "same"
    assert padding["conv_padded_padding"] == [[1, 2], [0, 1]]
    assert padding["conv_padded"] == "valid"
    np.testing.assert_allclose(keras_numpy_predict(path, x_nhwc), y_keras, atol=1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(dlcore.load(path).predict(x), y_keras, atol=1e-4)
    model.compile("cross_entropy", dlcore.optimizers.SGD(0.1))
    before = model.evaluate(x, np.arange(4) % 3, verbose=0)
    model.fit(np.concatenate([x] * 2), np.arange(8) % 3, epochs=5, batch_size=4, verbose=0)
    after = model.evaluate(x, np.arange(4) % 3, verbose=0)
    loss = lambda r: r["loss"] if isinstance(r, dict) else np.ravel(r)[0]  # noqa: E731
    assert loss(after) < loss(before)


def test_a_pool_padding_keras_cannot_say_is_refused_on_export(tmp_path):
    model = dlcore.Sequential([MaxPool2D(2, padding=((1, 0), (0, 0)), floor=True), Flatten(),
                               Dense(2)], input_shape=(1, 6, 6), backend="reference")
    with pytest.raises(ValueError, match="not Keras's 'same'"):
        dlcore.save(model, tmp_path / "x.h5", format="keras")
    assert not (tmp_path / "x.h5").exists()


# --------------------------------------------------------------------------------------------
# dlcore's own padding="same" is Keras's
# --------------------------------------------------------------------------------------------
# Keras's stride-2 downsampling (a residual net's 3x3 "same" stride 2 and its 1x1 stride-2
# shortcut, the ResNet stem's 3x3/2 "same" max pool) on even and odd maps, even kernels, a
# stride above the kernel (nothing padded, the rows no window reaches dropped)
SAME_CASES = [(28, 3, 2), (28, 1, 2), (28, 4, 2), (7, 3, 2), (8, 2, 1), (9, 5, 3), (6, 1, 4)]


def keras_nchw(layer, x):
    """A Keras layer on NCHW images, its output as NCHW."""
    import keras
    return keras.ops.convert_to_numpy(layer(x.transpose(0, 2, 3, 1))).transpose(0, 3, 1, 2)


@pytest.mark.parametrize("n, f, s", SAME_CASES)
def test_same_padding_computes_keras_same_against_keras_itself(n, f, s):
    """Oracle: Keras 3's Conv2D, MaxPooling2D and AveragePooling2D with padding="same" on the
    same images (NHWC) and weights (HWIO: dlcore's (F, C, kh, kw) kernel transposed)."""
    keras = real_keras()
    x = images(2, 3, n, n + 1)
    conv = Conv2D(4, f, stride=s, padding="same", bias_initializer=images(4, seed=3))
    theirs = keras.layers.Conv2D(4, f, strides=s, padding="same")
    theirs.build((None, n, n + 1, 3))
    for backend in ("reference", "cpu"):
        conv.build((3, n, n + 1), backend=backend)
        kernel, bias = conv.get_weights()
        theirs.set_weights([kernel.transpose(2, 3, 1, 0), bias])
        expected = keras_nchw(theirs, x)
        assert conv.output_shape == expected.shape[1:] == (4, -(-n // s), -(-(n + 1) // s))
        np.testing.assert_allclose(conv(x), expected, atol=1e-5)
    for ours, keras_name, pool in ((MaxPool2D, "MaxPooling2D", dlcore.layers.MaxPooling2D),
                                   (AvgPool2D, "AveragePooling2D",
                                    dlcore.layers.AveragePooling2D)):
        expected = keras_nchw(getattr(keras.layers, keras_name)(f, strides=s, padding="same"), x)
        sides = conv.window.sides
        if ours is AvgPool2D and keras.backend.backend() == "torch" and any(
                top != bottom for top, bottom in sides):
            # Keras's torch backend pads an unequal "same" by repeating the edge pixels, which
            # its average then counts; Keras's rule (TensorFlow's and JAX's, the fixture above)
            # averages the real pixels only
            expected = pool_loops(x, (f, f), (s, s), sides, "avg")
        for backend in ("reference", "cpu"):
            layer = ours(f, stride=s, padding="same").build((3, n, n + 1), backend=backend)
            np.testing.assert_allclose(layer(x), expected, atol=1e-6)
        np.testing.assert_allclose(pool(f, s, padding="same")(x), expected, atol=1e-6)


def residual_downsampling(size=28):
    """A residual net's stride-2 block on an even map as Keras writes it: the ResNet stem's
    3x3/2 "same" max pool, a 3x3 stride-2 "same" convolution beside the 1x1 stride-2
    projection shortcut, an even kernel."""
    inputs = dlcore.Input((2, size, size))
    x = MaxPool2D(3, stride=2, padding="same")(inputs)                   # 28 -> 14
    body = Conv2D(4, 3, stride=2, padding="same", activation="tanh")(x)   # 14 -> 7
    shortcut = Conv2D(4, 1, stride=2, padding="same")(x)                  # 14 -> 7
    y = Conv2D(3, 2, padding="same")(dlcore.layers.add([body, shortcut]))
    return dlcore.Model(inputs, Dense(2, activation="softmax")(Flatten()(y)),
                        backend="reference", seed=4)


def test_same_padding_of_dlcore_files_reads_back_as_it_was(tmp_path):
    model = residual_downsampling()
    dlcore.save(model, tmp_path / "own.h5")
    again = dlcore.load(tmp_path / "own.h5")
    configs = [layer.get_config() for layer in again.layers
               if isinstance(layer, (Conv2D, MaxPool2D))]
    assert [config["padding"] for config in configs] == ["same"] * 4
    x = images(3, 2, 28, 28)
    np.testing.assert_array_equal(again.predict(x), model.predict(x))


@given(st.integers(1, 30), st.sampled_from([1, 3, 5, 7]), st.integers(1, 4))
def test_same_padding_of_files_from_before_means_what_it_meant(n, f, s):
    """dlcore's "same" was P = (F - 1) / 2 on both sides for an odd F, accepted where
    (N - F + 2P) / S + 1 is whole (the lecture's formula): Keras's "same" pads exactly that
    there, so a file written then computes the same numbers now."""
    p = (f - 1) // 2
    if n - f + 2 * p < 0 or (n - f + 2 * p) % s:
        return
    window = Window.fit((1, n, n), (f, f), (s, s), "same", "test")
    assert window.sides == ((p, p), (p, p))
    assert window.out_height == (n - f + 2 * p) // s + 1


def test_same_padding_gradients_match_finite_differences():
    """The 1x1 stride-2 shortcut leaves every other pixel unread: its gradient there is 0."""
    model = residual_downsampling(12).clone(dtype=np.float64)
    model.compile("cross_entropy", "sgd")
    x = np.random.default_rng(1).random((2, 2, 12, 12))
    result = dlcore.gradcheck(model, x, np.array([0, 1]))
    worst = max(result.values()) if isinstance(result, dict) else result
    assert worst < 1e-5, result


def test_same_padding_crosses_to_keras_and_back_exactly(tmp_path):
    keras = real_keras()
    model = residual_downsampling()
    x = images(3, 2, 28, 28)
    path = tmp_path / "model.keras"
    dlcore.save(model, path, format="keras")
    in_keras = keras.models.load_model(path)
    # Keras's own layers, no ZeroPadding2D; the 1x1 stride-2 "same" pads nothing, which
    # Keras's flooring "valid" says as well
    assert [type(layer).__name__ for layer in in_keras.layers].count("ZeroPadding2D") == 0
    assert [layer.padding for layer in in_keras.layers if hasattr(layer, "padding")] == [
        "same", "same", "valid", "same"]
    theirs = keras.ops.convert_to_numpy(in_keras.predict(x.transpose(0, 2, 3, 1), verbose=0))
    np.testing.assert_allclose(theirs, model.predict(x), atol=1e-5)
    in_keras.save(tmp_path / "back.keras")
    np.testing.assert_allclose(dlcore.load(tmp_path / "back.keras").predict(x),
                               model.predict(x), atol=1e-6)
