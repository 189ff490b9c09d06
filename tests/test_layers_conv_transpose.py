"""Conv2DTranspose (lecture "Deep learning I", "The U-Net architecture": learned up-sampling).

Oracles: the scatter-add definition of a transposed convolution written as plain loops here
(every input pixel adds its value times the filter into the output, S apart; Keras's output
sizes), :func:`dlcore.gradcheck` (float64 central differences) through a network, the NumPy
reference for the ``cpu`` kernels (``cuda`` under the simulator), and the adjoint relation with
Conv2D."""
import os
import sys

import numpy as np
import pytest

import dlcore
from conftest import requires_cuda
from dlcore.io.errors import ModelFileError
from dlcore.layers import (
    Conv2D,
    Conv2DTranspose,
    Dense,
    Flatten,
    MaxPool2D,
    UpSampling2D,
)

sys.path.insert(0, os.path.dirname(__file__))


def scatter_add(x, kernel, bias, strides, padding):
    """The definition: full[n, f, S y + i, S x + j] += K[c, f, i, j] x[n, c, y, x]; the output
    is full from row/column ``skip`` on (Keras: valid N S + max(k - S, 0) rows, skip 0; same:
    N S rows, skip max(k - S, 0) // 2), zeros beyond it, plus the bias."""
    n, channels, height, width = x.shape
    _, filters, kh, kw = kernel.shape
    sh, sw = strides
    full = np.zeros((n, filters, (height - 1) * sh + kh, (width - 1) * sw + kw))
    for s in range(n):
        for c in range(channels):
            for y in range(height):
                for x_ in range(width):
                    for f in range(filters):
                        for i in range(kh):
                            for j in range(kw):
                                full[s, f, y * sh + i, x_ * sw + j] += kernel[c, f, i, j] * \
                                    x[s, c, y, x_]
    if padding == "valid":
        out_h, out_w, skip_h, skip_w = (height * sh + max(kh - sh, 0),
                                        width * sw + max(kw - sw, 0), 0, 0)
    else:
        out_h, out_w = height * sh, width * sw
        skip_h, skip_w = max(kh - sh, 0) // 2, max(kw - sw, 0) // 2
    out = np.zeros((n, filters, out_h, out_w))
    for h in range(out_h):
        for w in range(out_w):
            if h + skip_h < full.shape[2] and w + skip_w < full.shape[3]:
                out[:, :, h, w] = full[:, :, h + skip_h, w + skip_w]
    return out + bias[None, :, None, None]


GEOMETRIES = [((3, 3), (1, 1), "valid"), ((3, 3), (2, 2), "same"), ((2, 2), (2, 2), "valid"),
              ((4, 4), (2, 2), "same"), ((2, 3), (3, 2), "valid"), ((1, 2), (3, 2), "same"),
              ((5, 4), (2, 3), "same")]


def built(layer, input_shape, backend, dtype=np.float32, seed=0):
    layer.build(input_shape, backend=backend, dtype=dtype, seed=seed)
    kernel, bias = layer.get_weights()
    rs = np.random.default_rng(seed + 7)
    layer.set_weights([kernel, rs.standard_normal(bias.shape)])
    return layer


def forward(layer, x, training=True):
    return np.array(layer.backend.to_numpy(layer.forward(layer.backend.asarray(x),
                                                         training=training)))


@pytest.mark.parametrize("backend", ["reference", "cpu"])
@pytest.mark.parametrize("kernel_size, strides, padding", GEOMETRIES)
def test_conv2d_transpose_is_the_scatter_add_with_keras_sizes(backend, kernel_size, strides,
                                                              padding):
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)
    layer = built(Conv2DTranspose(2, kernel_size, strides=strides, padding=padding), (3, 4, 5),
                  backend)
    kernel, bias = layer.get_weights()
    assert kernel.shape == (3, 2) + kernel_size
    y = forward(layer, x)
    expected = scatter_add(x.astype(np.float64), kernel, bias, strides, padding)
    assert y.shape == expected.shape == (2,) + layer.output_shape
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("size, kernel, stride, padding, expected", [
    (5, 3, 1, "valid", 7), (5, 3, 2, "valid", 11), (5, 2, 2, "valid", 10),
    (5, 1, 3, "valid", 15), (5, 3, 2, "same", 10), (5, 4, 1, "same", 5), (1, 5, 1, "valid", 5)])
def test_output_sizes_follow_keras(size, kernel, stride, padding, expected):
    layer = Conv2DTranspose(1, kernel, strides=stride, padding=padding)
    assert layer.compute_output_shape((2, size, size)) == (1, expected, expected)


def forward_and_backward(make, x, backend):
    """[y, dL/dx, dL/dK, dL/db] of a fresh layer on ``backend`` (same seed and bias)."""
    layer = built(make(), x.shape[1:], backend)
    y = forward(layer, x)
    grad_y = np.cos(np.arange(y.size, dtype=np.float32)).reshape(y.shape)
    grad_x = layer.backward(layer.backend.asarray(grad_y))
    return [y, np.array(layer.backend.to_numpy(grad_x))] + \
        [np.array(layer.backend.to_numpy(layer.grads[name])) for name in ("kernel", "bias")]


def assert_backend_follows_the_reference(make, x, backend):
    for got, want in zip(forward_and_backward(make, x, backend),
                         forward_and_backward(make, x, "reference")):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kernel_size, strides, padding", GEOMETRIES)
@pytest.mark.parametrize("activation", ["linear", "relu", "softmax"])
def test_conv2d_transpose_cpu_kernels_equal_the_reference(kernel_size, strides, padding,
                                                          activation):
    x = np.random.default_rng(3).standard_normal((3, 2, 3, 4)).astype(np.float32)
    assert_backend_follows_the_reference(
        lambda: Conv2DTranspose(3, kernel_size, strides, padding, activation=activation), x,
        "cpu")


@requires_cuda
@pytest.mark.parametrize("kernel_size, strides, padding, activation", [
    ((3, 3), (2, 2), "same", "relu"), ((2, 3), (3, 2), "valid", "softmax")])
def test_conv2d_transpose_cuda_kernels_equal_the_reference(kernel_size, strides, padding,
                                                           activation):
    x = np.random.default_rng(3).standard_normal((2, 2, 2, 3)).astype(np.float32)
    assert_backend_follows_the_reference(
        lambda: Conv2DTranspose(2, kernel_size, strides, padding, activation=activation), x,
        "cuda")


def test_conv2d_transpose_is_the_adjoint_of_conv2d():
    """<conv(u), v> = <conv_transpose(v), u> with the same kernel: the transposed
    convolution is what a convolution's backward pass does to its output gradient."""
    rs = np.random.default_rng(4)
    conv = Conv2D(3, 3, stride=2, use_bias=False).build((2, 9, 9), backend="reference",
                                                        dtype=np.float64)
    transpose = Conv2DTranspose(2, 3, strides=2, use_bias=False).build(
        (3, 4, 4), backend="reference", dtype=np.float64)
    kernel = rs.standard_normal((3, 2, 3, 3))   # conv: (F, C, k, k); transpose: (C_in, F, k, k)
    conv.set_weights([kernel])
    transpose.set_weights([kernel])
    u, v = rs.standard_normal((1, 2, 9, 9)), rs.standard_normal((1, 3, 4, 4))
    lhs = np.sum(forward(conv, u) * v)
    rhs = np.sum(forward(transpose, v) * u)
    np.testing.assert_allclose(lhs, rhs, rtol=1e-6)


@pytest.mark.parametrize("kernel_size, strides, padding", [((3, 3), (1, 1), "valid"),
                                                           ((3, 3), (2, 2), "same"),
                                                           ((2, 3), (3, 2), "valid"),
                                                           ((4, 4), (2, 2), "same")])
def test_conv2d_transpose_gradients_match_finite_differences(kernel_size, strides, padding):
    model = dlcore.Sequential([Conv2DTranspose(2, kernel_size, strides, padding,
                                               activation="tanh"),
                               Flatten(), Dense(3, activation="softmax")],
                              input_shape=(2, 3, 2), backend="reference", seed=1)
    model.compile(loss="cross_entropy", optimizer="sgd")
    rs = np.random.default_rng(1)
    errors = dlcore.gradcheck(model, rs.standard_normal((3, 2, 3, 2)), rs.integers(0, 3, 3),
                              verbose=False)
    transpose = model.layers[0].name
    assert {f"{transpose}/kernel", f"{transpose}/bias", "input"} <= set(errors)
    assert all(error < 1e-6 for error in errors.values()), errors


@pytest.mark.parametrize("arguments, words", [
    ({"filters": 0, "kernel_size": 3}, "filters"),
    ({"filters": 2, "kernel_size": 0}, "kernel_size must be a positive integer"),
    ({"filters": 2, "kernel_size": 3, "strides": (1, 0)}, "strides must be a positive integer"),
    ({"filters": 2, "kernel_size": 3, "padding": 1}, "padding must be 'valid' or 'same'"),
    ({"filters": 2, "kernel_size": 3, "padding": "full"}, "padding must be 'valid' or 'same'"),
    ({"filters": 2, "kernel_size": 3, "activation": "sparsemax"}, "activation must be one of"),
])
def test_bad_conv2d_transpose_arguments_are_refused_in_one_line(arguments, words):
    with pytest.raises(ValueError, match=words) as error:
        Conv2DTranspose(**arguments)
    assert "\n" not in str(error.value)


def test_conv2d_transpose_needs_images():
    with pytest.raises(ValueError, match="needs \\(channels, height, width\\) inputs"):
        Conv2DTranspose(2, 3).compute_output_shape((4, 5))


def small_unet_like(backend="reference", seed=0):
    return dlcore.Sequential([
        Conv2D(4, 3, padding="same", activation="relu"), MaxPool2D(2), UpSampling2D(2),
        Conv2DTranspose(2, 3, padding="same", activation="relu"),
        Conv2DTranspose(1, 2, strides=2, padding="same"), Flatten(),
        Dense(3, activation="softmax")],
        input_shape=(1, 4, 4), backend=backend, seed=seed)


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_a_conv_pool_upsample_transpose_network_trains(backend):
    rs = np.random.default_rng(5)
    x = rs.random((16, 1, 4, 4)).astype(np.float32)
    labels = (x.reshape(16, -1).mean(axis=1) > 0.5).astype(np.int64) + \
        (x[:, 0, 0, 0] > 0.5).astype(np.int64)
    model = small_unet_like(backend)
    model.compile("cross_entropy", dlcore.optimizers.Adam(0.01))
    before = model.evaluate(x, labels, verbose=0)
    model.fit(x, labels, epochs=15, batch_size=8, verbose=0)
    after = model.evaluate(x, labels, verbose=0)
    loss = lambda value: value[0] if isinstance(value, (list, tuple)) else value  # noqa: E731
    assert loss(after) < 0.8 * loss(before)


def test_the_layers_save_and_load(tmp_path):
    model = small_unet_like()
    model.compile("cross_entropy", "adam")
    x = np.random.default_rng(6).random((4, 1, 4, 4)).astype(np.float32)
    model.fit(x, np.arange(4) % 3, epochs=1, batch_size=4, verbose=0)
    path = str(tmp_path / "unet.h5")
    dlcore.save(model, path)
    again = dlcore.load(path)
    np.testing.assert_array_equal(again.predict(x), model.predict(x))
    assert [layer.size for layer in again.layers if isinstance(layer, UpSampling2D)] == [(2, 2)]
    assert [(layer.strides, layer.padding) for layer in again.layers
            if isinstance(layer, Conv2DTranspose)] == [((1, 1), "same"), ((2, 2), "same")]


@pytest.mark.parametrize("layer_class, key, value", [
    ("UpSampling2D", "size", [65536, 65536]), ("UpSampling2D", "size", [10**12, 1]),
    ("UpSampling2D", "interpolation", "bicubic"), ("Conv2DTranspose", "stride", [2**16, 2**16]),
    ("Conv2DTranspose", "kernel_size", [10**9, 3]), ("Conv2DTranspose", "padding", "full"),
    ("Conv2DTranspose", "filters", 2**40)])
def test_hostile_sizes_in_a_model_file_are_refused_in_one_line(tmp_path, layer_class, key,
                                                               value):
    path = str(tmp_path / "unet.h5")
    dlcore.save(small_unet_like(), path)
    import model_file_fuzzer
    error = model_file_fuzzer.edited_layer_config_error(path, layer_class, key, value)
    assert isinstance(error, ModelFileError), error
    assert "\n" not in str(error) and path in str(error)


def test_fuzzed_files_with_these_layers_are_refused_clearly_or_load_and_work(tmp_path):
    import model_file_fuzzer
    x = np.random.default_rng(7).random((4, 1, 4, 4)).astype(np.float32)
    bad = model_file_fuzzer.badly_handled_fuzzed_copies(
        small_unet_like(), x, str(tmp_path / "unet.h5"), str(tmp_path), 24, seed=3)
    assert not bad, "\n".join(bad)
