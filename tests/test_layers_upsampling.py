"""UpSampling2D (lecture "Deep learning I", "The U-Net architecture"): nearest-neighbour and
bilinear up-sampling.

Oracles: ``np.repeat`` along the height and the width for the nearest forward pass, the block
sums of the output gradient for its backward pass, the half-pixel-centre definition as loops
(and PyTorch's ``interpolate(align_corners=False)`` where torch is installed) for bilinear,
:func:`dlcore.gradcheck` (float64 central differences) through a network, and the NumPy
reference for the ``cpu`` kernels (``cuda`` under the simulator)."""
import numpy as np
import pytest

import dlcore
from conftest import requires_cuda
from dlcore.layers import Conv2D, Dense, Flatten, UpSampling2D


def repeat(x, size):
    return np.repeat(np.repeat(x, size[0], axis=2), size[1], axis=3)


def run(layer, x, backend):
    layer.build(x.shape[1:], backend=backend, dtype=x.dtype)
    y = layer.forward(layer.backend.asarray(x, dtype=layer.dtype))
    return np.array(layer.backend.to_numpy(y))


@pytest.mark.parametrize("backend", ["reference", "cpu"])
@pytest.mark.parametrize("size", [2, (2, 3), (1, 4), (3, 1)])
def test_upsampling_repeats_every_pixel_into_a_block(backend, size):
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)
    layer = UpSampling2D(size)
    pair = layer.size
    y = run(layer, x, backend)
    assert y.shape == (2, 3, 4 * pair[0], 5 * pair[1]) == (2,) + layer.output_shape
    np.testing.assert_array_equal(y, repeat(x, pair))
    grad_y = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
    grad_x = np.array(layer.backend.to_numpy(layer.backward(layer.backend.asarray(grad_y))))
    expected = grad_y.reshape(2, 3, 4, pair[0], 5, pair[1]).sum(axis=(3, 5))
    np.testing.assert_allclose(grad_x, expected, rtol=1e-6, atol=1e-6)


def bilinear_loops(x, size):
    """The definition, half-pixel centres: output d reads the input at
    s = max((d + 1/2) / S - 1/2, 0), between floor(s) and min(floor(s) + 1, N - 1)."""
    n, channels, height, width = x.shape
    sh, sw = size

    def taps(d, scale, n_in):
        source = max((d + 0.5) / scale - 0.5, 0.0)
        low = int(np.floor(source))
        return low, min(low + 1, n_in - 1), source - low

    y = np.zeros((n, channels, height * sh, width * sw))
    for h in range(height * sh):
        top, bottom, fy = taps(h, sh, height)
        for w in range(width * sw):
            left, right, fx = taps(w, sw, width)
            y[:, :, h, w] = ((1 - fy) * ((1 - fx) * x[:, :, top, left] + fx * x[:, :, top, right])
                             + fy * ((1 - fx) * x[:, :, bottom, left]
                                     + fx * x[:, :, bottom, right]))
    return y


@pytest.mark.parametrize("backend", ["reference", "cpu"])
@pytest.mark.parametrize("size", [2, (3, 2), (1, 4)])
def test_bilinear_upsampling_interpolates_with_half_pixel_centres(backend, size):
    x = np.random.default_rng(3).standard_normal((2, 3, 4, 5)).astype(np.float32)
    layer = UpSampling2D(size, interpolation="bilinear")
    y = run(layer, x, backend)
    np.testing.assert_allclose(y, bilinear_loops(x.astype(np.float64), layer.size), rtol=1e-5,
                               atol=1e-5)


def test_bilinear_upsampling_equals_pytorchs_align_corners_false():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(4).standard_normal((2, 3, 4, 5))
    y = run(UpSampling2D((2, 3), interpolation="bilinear"), x, "reference")
    expected = torch.nn.functional.interpolate(torch.from_numpy(x), scale_factor=(2, 3),
                                               mode="bilinear", align_corners=False).numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
@pytest.mark.parametrize("backend, shape", [
    ("cpu", (3, 2, 5, 3)),
    pytest.param("cuda", (1, 2, 2, 3), marks=requires_cuda)])
def test_upsampling_kernels_equal_the_reference(backend, shape, interpolation):
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    outputs = {}
    for name in ("reference", backend):
        layer = UpSampling2D((3, 2), interpolation=interpolation)
        y = run(layer, x, name)
        grad = layer.backward(layer.backend.asarray(np.cos(y)))
        outputs[name] = (y, np.array(layer.backend.to_numpy(grad)))
    for got, want in zip(outputs[backend], outputs["reference"]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("backend", ["cpu", pytest.param("cuda", marks=requires_cuda)])
def test_float64_bilinear_upsampling_is_pytorchs_to_float64_precision(backend):
    """The kernels' interpolation weights were float32 numbers: a float64 network's
    up-sampled maps were ~1e-6 from float64's (PyTorch's interpolate on the same doubles),
    and so were its gradients; now both are float64's, and float32 keeps its numbers."""
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(5).standard_normal((1, 2, 4, 5))
    layer = UpSampling2D((3, 2), interpolation="bilinear")
    y = run(layer, x, backend)
    source = torch.from_numpy(x).requires_grad_(True)
    expected = torch.nn.functional.interpolate(source, scale_factor=(3, 2), mode="bilinear",
                                               align_corners=False)
    grad_y = np.cos(y)
    expected.backward(torch.from_numpy(grad_y))
    grad_x = np.array(layer.backend.to_numpy(layer.backward(layer.backend.asarray(
        grad_y, dtype=np.float64))))
    assert y.dtype == grad_x.dtype == np.float64
    np.testing.assert_allclose(y, expected.detach().numpy(), rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(grad_x, source.grad.numpy(), rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_upsampling_gradients_match_finite_differences(interpolation):
    model = dlcore.Sequential([Conv2D(2, 2, activation="tanh"),
                               UpSampling2D((2, 3), interpolation=interpolation), Flatten(),
                               Dense(3, activation="softmax")], input_shape=(1, 3, 3),
                              backend="reference", seed=1)
    model.compile(loss="cross_entropy", optimizer="sgd")
    rs = np.random.default_rng(1)
    errors = dlcore.gradcheck(model, rs.standard_normal((3, 1, 3, 3)), rs.integers(0, 3, 3),
                              verbose=False)
    assert "input" in errors and all(error < 1e-6 for error in errors.values()), errors


@pytest.mark.parametrize("arguments, words", [
    ({"size": 0}, "size must be a positive integer"),
    ({"size": (2, 2, 2)}, "size must be a positive integer"),
    ({"size": 1.5}, "size must be a positive integer"),
    ({"interpolation": "bicubic"}, "interpolation must be 'nearest' or 'bilinear'"),
    ({"interpolation": 3}, "interpolation must be 'nearest' or 'bilinear'"),
])
def test_bad_upsampling_arguments_are_refused_in_one_line(arguments, words):
    with pytest.raises(ValueError, match=words) as error:
        UpSampling2D(**arguments)
    assert "\n" not in str(error.value)


def test_upsampling_needs_images():
    with pytest.raises(ValueError, match="needs \\(channels, height, width\\) inputs"):
        UpSampling2D().compute_output_shape((4, 5))


def test_upsampling_config_round_trips():
    layer = UpSampling2D((2, 3), name="up")
    again = UpSampling2D.from_config(layer.get_config())
    assert again.size == (2, 3) and again.interpolation == "nearest" and again.name == "up"
