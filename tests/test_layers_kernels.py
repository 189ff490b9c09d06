"""Every layer's Numba kernels (``cpu``, and ``cuda`` under the simulator) against its NumPy
reference: outputs, input gradients and parameter gradients.

Oracle: the same layer built with the same seed on the ``reference`` backend
(:mod:`dlcore.layers.reference`), itself checked against naive loops and finite differences in
test_layers_reference.py and test_layers_gradients.py."""

import os
import subprocess
import sys

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import cpu_product, requires_cuda
from dlcore.layers import (
    Activation,
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
from dlcore.layers.base import MC_DROPOUT

RTOL, ATOL = 2e-5, 2e-5


def run(make_layer, backend, x, grad_y, training=True, step=3, input_gradient=True):
    """Forward and backward of a fresh layer on ``backend``: [y, dL/dx, dL/dparams...]."""
    layer = make_layer().build(x.shape[1:], backend=backend, seed=11)
    be = layer.backend
    y = layer.forward(be.asarray(x), training=training, step=step)
    results = [np.array(be.to_numpy(y))]
    grad_x = layer.backward(be.asarray(grad_y), need_input_gradient=input_gradient)
    if input_gradient:
        results.append(np.array(be.to_numpy(grad_x)))
    results += [np.array(be.to_numpy(layer.grads[name])) for name in layer.weight_names]
    return results


def assert_backends_agree(make_layer, x, backend="cpu", **options):
    rs = np.random.default_rng(0)
    layer = make_layer()
    output_shape = layer.compute_output_shape(x.shape[1:])
    grad_y = rs.standard_normal((x.shape[0],) + tuple(output_shape)).astype(np.float32)
    expected = run(make_layer, "reference", x, grad_y, **options)
    got = run(make_layer, backend, x, grad_y, **options)
    assert len(got) == len(expected)
    for index, (a, b) in enumerate(zip(got, expected)):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL, err_msg=f"result {index}")


def images(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


conv_cases = st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(4, 9),
                       st.integers(1, 4), st.integers(1, 4), st.integers(1, 3),
                       st.integers(0, 2), st.sampled_from(["linear", "relu", "tanh", "softmax"]))


@pytest.mark.parametrize("activation", ["linear", "relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("channels, k", [(1, 5), (6, 3)])   # direct products; wide columns
def test_cpu_wide_convolutions_of_each_elementwise_activation_follow_the_reference(
        activation, channels, k):
    """Each element-wise activation has passes of its own in the wide layout (forward and
    backward), for the direct and the column strategies."""
    assert_backends_agree(lambda: Conv2D(4, k, padding=k // 2, activation=activation),
                          images(3, channels, 9, 9))


@settings(max_examples=25, deadline=None)
@given(conv_cases)
def test_cpu_conv2d_follows_the_reference(case):
    n, channels, size, filters, k, stride, padding, activation = case
    k = min(k, size + 2 * padding)
    stride = stride if (size - k + 2 * padding) % stride == 0 else 1
    assert_backends_agree(lambda: Conv2D(filters, k, stride=stride, padding=padding,
                                         activation=activation),
                          images(n, channels, size, size))


@pytest.mark.parametrize("direct_max_patch", [0, 10_000])
@pytest.mark.parametrize("channels, filters, k, padding", [(1, 6, 5, 2), (3, 4, 3, 1)])
def test_cpu_conv2d_inference_with_or_without_columns_follows_the_reference(
        monkeypatch, direct_max_patch, channels, filters, k, padding):
    from dlcore.layers import cpu_convolution
    monkeypatch.setattr(cpu_convolution, "DIRECT_MAX_PATCH", direct_max_patch)
    x = images(9, channels, 12, 12, seed=3)
    outputs = []
    for backend in ("reference", "cpu"):
        layer = Conv2D(filters, k, padding=padding, activation="relu").build(
            x.shape[1:], backend=backend, seed=11)
        outputs.append(np.array(layer.backend.to_numpy(
            layer.forward(layer.backend.asarray(x), training=False))))
    np.testing.assert_allclose(outputs[1], outputs[0], rtol=RTOL, atol=ATOL)


_RUN_DIRECT_CONVOLUTION = """
import sys
import numpy as np
from dlcore.layers import Conv2D, cpu_convolution
from dlcore.layers.bodies import RELU
channels, size = int(sys.argv[1]), int(sys.argv[2])
x = np.random.default_rng(channels).random((5, channels, 10, 10), dtype=np.float32)
layers = [Conv2D(3, size, padding=1, activation="relu").build(x.shape[1:], backend=backend,
                                                           seed=2)
          for backend in ("reference", "cpu")]
outputs = [layer.forward(x, training=True) for layer in layers]
np.testing.assert_allclose(outputs[1], outputs[0], rtol=2e-5, atol=2e-5)
gradients = [layer.backward(np.ones_like(outputs[0])) for layer in layers]
np.testing.assert_allclose(gradients[1], gradients[0], rtol=2e-5, atol=2e-5)
# the element-wise passes compiled in this process: a ReLU layer's kernels compile ReLU's alone
print(sorted(name.split("_to_")[0].strip("_") for name in dir(cpu_convolution)
             if name.endswith(("_to_images", "_to_wide_gradient"))
             and getattr(cpu_convolution, name).signatures))
kernel = cpu_convolution._DIRECT_FORWARD[(channels, size, size, RELU)]
print(sum(kernel.stats.cache_hits.values()), sum(kernel.stats.cache_misses.values()))
"""


@pytest.mark.slow
def test_each_direct_convolution_geometry_compiles_its_own_kernel_once(tmp_path):
    """The direct kernels come from one source line, a kernel per (C, k_h, k_w, activation):
    in fresh processes on one cache each geometry compiles once, then loads its own code (a
    kernel loaded for another geometry would give other numbers than the reference).

    A first run compiles only the passes of the layer's own activation into the kernels
    (forward and backward): each kernel compiled all four, ~3.7 s of a first ReLU network's
    or ``dlcore doctor``'s ~10 s (slow: what a first run compiles is measured by compiling)."""
    environment = {**os.environ, "DLCORE_CACHE": str(tmp_path / "cache")}

    def passes_hits_and_misses(channels, size):
        result = subprocess.run([sys.executable, "-c", _RUN_DIRECT_CONVOLUTION, str(channels),
                                 str(size)], env=environment, capture_output=True, text=True,
                                timeout=600)
        assert result.returncode == 0, result.stderr
        passes, counts = result.stdout.splitlines()[-2:]
        return passes, tuple(int(word) for word in counts.split())
    compiled, loaded = (0, 1), (1, 0)
    assert passes_hits_and_misses(1, 5) == ("['relu', 'relu']", compiled)
    # the new geometry's kernel compiles ReLU's forward pass in (from the cache), the backward
    # kernel (any geometry's) is loaded
    assert passes_hits_and_misses(3, 3) == ("['relu']", compiled)
    assert passes_hits_and_misses(3, 3) == ("[]", loaded)
    assert passes_hits_and_misses(1, 5) == ("[]", loaded)


@pytest.mark.parametrize("direct_max_patch", [0, 10_000])
@pytest.mark.parametrize("input_gradient", [True, False])
def test_cpu_conv2d_training_with_or_without_columns_follows_the_reference(
        monkeypatch, direct_max_patch, input_gradient):
    """Small stride-1 kernels train without columns (dL/dK from the padded image), larger
    ones build a group's columns in each pass; 9 samples on fewer threads, so that a thread
    takes several."""
    from dlcore.layers import cpu_convolution
    monkeypatch.setattr(cpu_convolution, "DIRECT_MAX_PATCH", direct_max_patch)
    x = images(9, 3, 12, 12, seed=4)
    assert_backends_agree(lambda: Conv2D(4, 3, padding=1, activation="relu"), x,
                          input_gradient=input_gradient)
    layer = Conv2D(4, 3, padding=1, activation="relu").build(x.shape[1:], backend="cpu")
    layer.backward(layer.forward(x, training=True), need_input_gradient=input_gradient)
    assert ("thread_wide_cols" in layer._workspace) == (direct_max_patch == 0)


@pytest.mark.parametrize("group", [8, 3, 1])
@pytest.mark.parametrize("n", [21, 2])
def test_cpu_wide_convolution_multiplies_groups_of_samples_as_the_reference(monkeypatch, group,
                                                                            n):
    """The columns of several samples side by side in one product: 21 samples on two threads
    are 11 and 10 a thread, so groups of 8 leave a part group (and groups of 3 several);
    the backward pass takes the same groups, one product each for dL/dK and dL/dx."""
    from dlcore.layers import cpu_convolution
    monkeypatch.setattr(cpu_convolution, "WIDE_GROUP", group)
    assert_backends_agree(lambda: Conv2D(4, 5, padding=2, activation="relu"),
                          images(n, 3, 9, 9, seed=5), input_gradient=True)
    layer = Conv2D(4, 5, padding=2, activation="relu").build((3, 9, 9), backend="cpu")
    layer.forward(images(n, 3, 9, 9), training=True)
    threads = min(numba.get_num_threads(), n)
    span = 8 * 13 + 9     # (H' - 1) W_p + W'
    assert layer._workspace["thread_wide_cols"].size == threads * 75 * group * span


def test_cpu_first_conv_layer_skips_the_input_gradient():
    assert_backends_agree(lambda: Conv2D(3, 5, padding=2, activation="relu"),
                          images(4, 1, 12, 12), input_gradient=False)


pool_cases = st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(2, 9),
                       st.integers(1, 3), st.integers(1, 3), st.sampled_from([MaxPool2D,
                                                                             AvgPool2D,
                                                                             L2Pool2D]))


@settings(max_examples=25, deadline=None)
@given(pool_cases)
def test_cpu_pooling_follows_the_reference(case):
    n, channels, size, pool, stride, kind = case
    pool = min(pool, size)
    stride = stride if (size - pool) % stride == 0 else 1
    assert_backends_agree(lambda: kind(pool, stride=stride), images(n, channels, size, size))


def test_cpu_max_pooling_of_the_deep_networks_lecture_example_gives_4_6_7_2():
    x = np.array([[1, 2, 0, 3], [4, 3, 6, 5], [3, 4, 1, 2], [2, 7, 2, 0]],
                 dtype=np.float32).reshape(1, 1, 4, 4)
    layer = MaxPool2D(2).build((1, 4, 4), backend="cpu")
    np.testing.assert_array_equal(layer.forward(x)[0, 0], [[4, 6], [7, 2]])
    np.testing.assert_array_equal(AvgPool2D(2).build((1, 4, 4), backend="cpu").forward(x)[0, 0],
                                  [[2.5, 3.5], [4, 1.25]])


@pytest.mark.parametrize("activation", ["linear", "relu", "sigmoid", "tanh", "softmax"])
def test_cpu_dense_follows_the_reference(activation):
    assert_backends_agree(lambda: Dense(7, activation=activation), images(5, 13))


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "softmax"])
def test_cpu_dense_with_a_product_split_across_threads_follows_the_reference(activation):
    """Inside compute() a product this large is split across the threads, and the bias and
    activation run on each block in the same region: the same numbers as the product (the sum
    of the halves of the inputs, along which the weight step splits this kernel) then the
    epilogue (bit for bit), and the reference's."""
    from dlcore.backend import get_backend
    from dlcore.layers.bodies import ACTIVATION_CODES, unit_bias_activation_rows
    x, grad_y = images(40, 784), images(40, 300, seed=1)
    be = get_backend("cpu")
    with be.compute(small_products=True):
        assert be._splits_products(np.empty((40, 300)), 784)
        expected = run(lambda: Dense(300, activation=activation), "reference", x, grad_y)
        got = run(lambda: Dense(300, activation=activation), "cpu", x, grad_y)
        for a, b in zip(got, expected):
            np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)
        if activation != "softmax":
            layer = Dense(300, activation=activation).build((784,), backend="cpu", seed=11)
            kernel, bias = layer.params["kernel"], layer.params["bias"]
            bias[...] = images(300, seed=2)
            separate = np.empty((40, 300), np.float32)
            assert be.sums_inner_halves(x, kernel, False)
            cpu_product(be, x, kernel, separate)
            be.launch_rows(unit_bias_activation_rows, 40, 300, separate, bias,
                           ACTIVATION_CODES[activation])
            np.testing.assert_array_equal(layer.forward(x), separate)


# the float64 kernels that every case compiles first, compiled once: one worker runs the cases
compiles_float64_kernels = pytest.mark.xdist_group("float64_layer_kernels")


@compiles_float64_kernels
@pytest.mark.parametrize("activation", ["linear", "relu", "sigmoid", "tanh", "softmax"])
def test_a_float64_network_on_the_cpu_follows_the_reference(activation):
    """A network built in float64 (``build(dtype=np.float64)``, ``clone(dtype=...)``): the
    cpu's sigmoid took exp through float32-only arithmetic and was wrong by up to 0.17. One
    SGD step of a 512-400-10 net, and its outputs, against the reference, to float64's
    rounding (the softmax's sum and the loss's 1 / n were float32 too)."""
    import dlcore
    from dlcore.layers import Dense
    generator = np.random.default_rng(2)
    x, y = generator.random((32, 512)), generator.integers(0, 10, 32)
    results = []
    for backend in ("cpu", "reference"):
        model = dlcore.Sequential([Dense(400, activation=activation, input_shape=(512,)),
                                   Dense(10, activation="softmax")], backend=backend, seed=1)
        model.build((512,), dtype=np.float64)
        model.compile("cross_entropy", dlcore.optimizers.SGD(0.1, momentum=0.9))
        before = model.get_weights()
        model.train_on_batch(x, y)
        assert model.get_weights()[0].dtype == np.float64
        results.append([model.predict(x)] + [after - first for after, first in
                                             zip(model.get_weights(), before)])
    for got, expected in zip(*results):
        np.testing.assert_allclose(got, expected, rtol=1e-11,
                                   atol=1e-12 * np.abs(expected).max())


@pytest.mark.parametrize("backend", ["cpu", pytest.param("cuda", marks=requires_cuda)])
def test_float64_average_pools_pass_their_gradient_on_in_float64(backend):
    """A 3 x 3 average pool that tiles its input (stride >= size, LeNet's form) passed
    g times float32's 1 / 9 on: a float64 network's input gradients were ~1e-8 from
    NumPy's g / 9 (the reference); now g / 9 in float64."""
    x = np.random.default_rng(6).standard_normal((2, 2, 6, 6))
    grad_y = np.random.default_rng(7).standard_normal((2, 2, 2, 2))
    gradients = []
    for name in (backend, "reference"):
        layer = AvgPool2D(3).build(x.shape[1:], backend=name, dtype=np.float64)
        be = layer.backend
        layer.forward(be.asarray(x, np.float64), training=True)
        gradients.append(np.array(be.to_numpy(layer.backward(be.asarray(grad_y, np.float64)))))
    assert gradients[0].dtype == np.float64
    np.testing.assert_allclose(gradients[0], gradients[1], rtol=1e-15, atol=0)
    np.testing.assert_allclose(gradients[1][:, :, :3, :3],
                               np.repeat(np.repeat(grad_y / 9, 3, axis=2), 3, axis=3)[
                                   :, :, :3, :3], rtol=1e-15, atol=0)


@compiles_float64_kernels
@pytest.mark.parametrize("activation", ["linear", "relu", "sigmoid", "tanh"])
def test_float64_layers_on_the_cpu_compute_their_activations_in_float64(activation):
    """Element-wise activations of float64 layers keep float64's precision on the cpu (tanh
    was rounded to float32), for a Dense layer and a convolution of each CPU strategy."""
    from dlcore.layers import Dense
    generator = np.random.default_rng(3)
    cases = [(Dense(40, activation=activation), generator.random((6, 50)) * 4 - 2),
             (Conv2D(3, 5, padding=2, activation=activation), generator.random((4, 1, 9, 9))),
             (Conv2D(3, 3, activation=activation), generator.random((4, 5, 9, 9))),
             (Conv2D(3, 3, stride=2, activation=activation), generator.random((4, 2, 9, 9)))]
    for layer, x in cases:
        outputs = [np.asarray(layer.build(x.shape[1:], backend=backend, dtype=np.float64,
                                          seed=4).forward(x))
                   for backend in ("cpu", "reference")]
        np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("activation", ["linear", "relu", "sigmoid", "tanh", "softmax"])
def test_cpu_dense_without_bias_follows_the_reference(activation):
    assert_backends_agree(lambda: Dense(7, activation=activation, use_bias=False),
                          images(5, 13))


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh", "softmax"])
def test_cpu_activation_layers_follow_the_reference(activation):
    shape = (4, 9) if activation == "softmax" else (3, 2, 4, 5)
    assert_backends_agree(lambda: Activation(activation), images(*shape))


def test_cpu_dropout_draws_the_reference_mask():
    assert_backends_agree(lambda: Dropout(0.4), images(6, 3, 5, 7))


def test_cpu_mc_dropout_draws_the_reference_mask_of_its_own_stream():
    assert_backends_agree(lambda: Dropout(0.4), images(6, 3, 5, 7), training=MC_DROPOUT)


def test_cpu_gaussian_noise_draws_the_reference_noise():
    assert_backends_agree(lambda: GaussianNoise(0.5), images(4, 11))


def test_cpu_augmentation_draws_the_reference_images():
    assert_backends_agree(lambda: ImageAugmentation(2, horizontal_flip=True, max_rotation=15),
                          images(6, 2, 9, 8), input_gradient=False)


def test_cpu_augmentation_of_flat_rows_draws_the_reference_images():
    assert_backends_agree(lambda: ImageAugmentation(1, max_rotation=10, image_shape=(2, 5, 4)),
                          images(6, 40), input_gradient=False)


def test_cpu_augmentation_with_a_zoom_draws_the_reference_images():
    assert_backends_agree(lambda: ImageAugmentation(1, horizontal_flip=True, max_rotation=10,
                                                    max_zoom=0.3),
                          images(6, 2, 9, 8), input_gradient=False)


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_augmentation_scales_each_image_about_its_centre(backend):
    """Lecture "Supervised learning": augmentation by "random translation, left/right
    flipping, scaling"; dlcore had no scaling (max_zoom was refused). On a ramp (the row
    number: bilinear sampling is exact there) an image scaled by s about its centre c reads
    c + (y - c) / s: every row of the output one value, rows 1 / s apart, the centre kept, s in
    [1 - max_zoom, 1 + max_zoom] and drawn afresh per image."""
    ramp = np.broadcast_to(np.arange(9, dtype=np.float32)[:, None], (9, 9))
    x = np.ascontiguousarray(np.broadcast_to(ramp, (6, 1, 9, 9)))
    layer = ImageAugmentation(0, max_zoom=0.25).build((1, 9, 9), backend=backend, seed=3)
    out = np.asarray(layer.forward(x, training=True, step=5))[:, 0, 3:6, 2:7]   # inside
    steps = out[:, 2, 0] - out[:, 1, 0]
    each_column = np.broadcast_to(steps[:, None], (6, 5))
    np.testing.assert_allclose(out[:, 1], 4.0, atol=1e-5)                      # the centre
    np.testing.assert_allclose(out[:, 2] - out[:, 1], each_column, atol=1e-5)
    np.testing.assert_allclose(out[:, 1] - out[:, 0], each_column, atol=1e-5)
    scales = 1.0 / steps
    assert np.all((scales >= 0.75 - 1e-5) & (scales <= 1.25 + 1e-5)), scales
    assert np.ptp(scales) > 0.05, scales
    assert layer.forward(x, training=False) is x
    assert ImageAugmentation.from_config(layer.get_config()).max_zoom == 0.25
    with pytest.raises(ValueError, match="max_zoom"):
        ImageAugmentation(1, max_zoom=1.0)


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_augmentation_of_flat_rows_moves_the_images_those_rows_hold(backend):
    rows = images(5, 2 * 6 * 7)
    flat = ImageAugmentation(2, max_rotation=5, image_shape=(2, 6, 7)).build(
        (84,), backend=backend, seed=4)
    image = ImageAugmentation(2, max_rotation=5).build((2, 6, 7), backend=backend, seed=4)
    moved = np.asarray(flat.forward(rows, training=True, step=9))
    expected = np.asarray(image.forward(rows.reshape(5, 2, 6, 7), training=True, step=9))
    assert moved.shape == rows.shape
    assert not np.array_equal(moved, rows)
    np.testing.assert_array_equal(moved, expected.reshape(5, -1))
    assert flat.forward(rows, training=False) is rows


@pytest.mark.parametrize("image_shape, input_shape, message", [
    ((3, 4), (12,), "image_shape must be"),
    ("1x4x4", (16,), "image_shape must be"),
    ((1, 0, 4), (16,), "image_shape size"),
    ((1, 4, 4), (15,), "needs flat rows of 16 values"),
    (None, (16,), "or image_shape= for flat rows"),
])
def test_augmentation_refuses_rows_that_are_not_its_images(image_shape, input_shape, message):
    with pytest.raises(ValueError, match=message):
        ImageAugmentation(1, image_shape=image_shape).compute_output_shape(input_shape)


@pytest.mark.parametrize("image_shape, input_shape, shortest", [
    (None, (1, 28, 28), 28), (None, (2, 5, 9), 5), ((1, 7, 4), (28,), 4)])
def test_augmentation_refuses_a_shift_that_can_move_an_image_out_of_the_picture(
        image_shape, input_shape, shortest):
    """Oracle: a shift by the image's whole height or width leaves zeros only, a blank image
    that keeps its label (max_shift=30 on 28x28 digits blanked 9 of 50); one pixel less
    still shows a row or column of the image. Refused when training, not when built: the
    identity at inference still passes the images."""
    ones = np.ones((64, *input_shape), np.float32)
    layer = ImageAugmentation(shortest, image_shape=image_shape).build(input_shape,
                                                                       backend="reference")
    np.testing.assert_array_equal(layer.forward(ones, training=False), ones)
    with pytest.raises(ValueError, match=rf"max_shift={shortest} can move .* below {shortest}"):
        layer.forward(ones, training=True, step=0)
    layer = ImageAugmentation(shortest - 1, image_shape=image_shape).build(
        input_shape, backend="reference", seed=0)
    moved = layer.forward(ones, training=True, step=0)
    assert moved.reshape(64, -1).max(axis=1).min() > 0


def test_cpu_flatten_is_a_view_with_the_reference_order():
    assert_backends_agree(Flatten, images(2, 3, 4, 5))


@requires_cuda
@pytest.mark.parametrize("make, shape", [
    (lambda: Conv2D(2, 3, stride=1, padding=1, activation="relu"), (2, 2, 4, 4)),
    (lambda: Conv2D(2, 2, stride=2, activation="softmax"), (1, 1, 4, 4)),
    (lambda: MaxPool2D(2), (2, 1, 4, 4)),
    (lambda: AvgPool2D(2, stride=1), (1, 2, 3, 3)),
    (lambda: L2Pool2D(2), (1, 1, 4, 4)),
    (lambda: Dense(3, activation="tanh"), (3, 4)),
    (lambda: Dense(3, activation="softmax"), (2, 4)),
    (lambda: Activation("sigmoid"), (2, 1, 2, 3)),
    (lambda: Dropout(0.5), (3, 5)),
    (lambda: GaussianNoise(0.2), (2, 6)),
], ids=["conv", "conv-softmax", "maxpool", "avgpool", "l2pool", "dense", "dense-softmax",
        "sigmoid", "dropout", "noise"])
def test_cuda_layers_follow_the_reference(make, shape):
    assert_backends_agree(make, images(*shape), backend="cuda")


@requires_cuda
def test_cuda_mc_dropout_draws_the_reference_mask():
    assert_backends_agree(lambda: Dropout(0.5), images(3, 5), backend="cuda",
                          training=MC_DROPOUT)


@requires_cuda
def test_cuda_augmentation_draws_the_reference_images():
    assert_backends_agree(lambda: ImageAugmentation(1, horizontal_flip=True, max_rotation=10),
                          images(2, 1, 4, 5), backend="cuda", input_gradient=False)
    assert_backends_agree(lambda: ImageAugmentation(1, max_zoom=0.3), images(2, 1, 4, 5),
                          backend="cuda", input_gradient=False)
