"""A Softmax (or Activation("softmax")) layer after a convolution: the per-pixel softmax over
the channels, as a Conv2D's own ``activation="softmax"`` computes it (the U-Net paper's
"pixel-wise soft-max") and as Keras's Softmax does along its last axis, the channels of its
(H, W, C) maps.

Before, such a layer after a (C, H, W) output was refused with a hint to put a Flatten before
it, and the kernels' softmax took a whole sample's numbers as one row of classes.

Oracles: the softmax over axis 1 written out in NumPy; finite differences (gradcheck) of the
layer's backward pass, fused into the cross-entropy and not; the cpu and cuda (simulator)
kernels against the reference; a Conv2D with activation="softmax", whose per-pixel loss is
checked in test_losses_maps.py and against real Keras in test_io_keras_real.py."""
import numpy as np
import pytest

import dlcore
from conftest import requires_cuda
from dlcore.layers import Activation, Conv2D, Softmax
from test_layers_kernels import assert_backends_agree, images

BACKENDS = ["reference", "cpu", pytest.param("cuda", marks=requires_cuda)]


def segmentation_data(n=4, classes=3, size=5, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 2, size, size)).astype(np.float32)
    labels = rng.integers(0, classes, (n, size, size))
    return x, np.eye(classes, dtype=np.float32)[labels].transpose(0, 3, 1, 2)


def segmenter(last, backend, classes=3, size=5):
    """Conv2D -> Conv2D(classes, 1) ending in ``last``: "conv" (its own softmax), "activation"
    (an Activation("softmax") layer) or "softmax" (a Softmax() layer)."""
    head = ([Conv2D(classes, 1, activation="softmax")] if last == "conv" else
            [Conv2D(classes, 1), Activation("softmax") if last == "activation" else Softmax()])
    return dlcore.Sequential([Conv2D(4, 3, padding="same", activation="tanh"), *head],
                             input_shape=(2, size, size), backend=backend, seed=1)


@pytest.mark.parametrize("make", [lambda: Activation("softmax"), Softmax],
                         ids=["Activation", "Softmax"])
def test_a_softmax_layer_on_maps_is_the_softmax_over_each_pixels_channels(make):
    x = images(3, 4, 2, 5).astype(np.float64)
    layer = make().build(x.shape[1:], backend="reference", dtype=np.float64)
    exponentials = np.exp(x)
    expected = exponentials / exponentials.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12)
    assert layer.output_shape == (4, 2, 5)


@pytest.mark.parametrize("backend", ["cpu", pytest.param("cuda", marks=requires_cuda)])
@pytest.mark.parametrize("make", [lambda: Activation("softmax"), Softmax],
                         ids=["Activation", "Softmax"])
def test_kernels_of_a_softmax_layer_on_maps_follow_the_reference(make, backend):
    """Forward and the Jacobian product of backward, y (dL/dy - sum_c dL/dy_c y_c) per pixel."""
    assert_backends_agree(make, images(3, 4, 2, 5), backend=backend)


@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])   # fused into the loss, and not
@pytest.mark.parametrize("last", ["activation", "softmax"])
def test_a_softmax_layer_after_a_convolution_passes_the_gradient_check(last, loss):
    x, targets = segmentation_data(n=2)
    model = segmenter(last, "reference")
    model.compile(loss, "sgd")
    errors = dlcore.gradcheck(model, x, targets, verbose=False)
    assert errors and max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_softmax_layer_after_a_convolution_trains_as_the_convolutions_own(backend):
    """The same predictions, per-pixel cross-entropy (fused: p - y per pixel) and step as
    Conv2D(..., activation="softmax"), for an Activation("softmax") layer and a Softmax()
    layer (the convolution's own run made once, on two 4x4 maps: on the simulator each run
    takes seconds)."""
    x, targets = segmentation_data(n=2, size=4)

    def run(ending):
        model = segmenter(ending, backend, size=4)
        model.compile("cross_entropy", "sgd", ["accuracy"])
        return (model.predict(x), model.evaluate(x, targets), model.train_on_batch(x, targets),
                model.predict(x))
    p, scores, step, after = run("conv")
    for last in ("activation", "softmax"):
        p_layer, scores_layer, step_layer, after_layer = run(last)
        np.testing.assert_allclose(p_layer, p, atol=1e-6, err_msg=last)
        np.testing.assert_allclose(p_layer.sum(axis=1), 1.0, rtol=1e-6, err_msg=last)
        np.testing.assert_allclose(list(scores_layer), list(scores), rtol=1e-6, err_msg=last)
        np.testing.assert_allclose(step_layer, step, rtol=1e-6, err_msg=last)
        np.testing.assert_allclose(after_layer, after, atol=1e-6, err_msg=last)


@pytest.mark.parametrize("axis", [1, -3])
def test_softmax_takes_axis_one_on_maps_and_keeps_it_in_files(tmp_path, axis):
    model = dlcore.Sequential([Conv2D(3, 1), Softmax(axis=axis)], input_shape=(2, 4, 4),
                              backend="reference", seed=0)
    x = images(2, 2, 4, 4)
    dlcore.save(model, tmp_path / "m.h5")     # dlcore's own format
    again = dlcore.load(tmp_path / "m.h5")
    assert again.layers[-1].axis == axis
    np.testing.assert_allclose(again.predict(x), model.predict(x), rtol=1e-6)


@pytest.mark.parametrize("axis, shape, words", [
    (-1, (3, 4, 4), "runs along the width"), (2, (3, 4, 4), "runs along the height"),
    (0, (5,), "runs along the batch"), (4, (3, 4, 4), "is outside the tensor")])
def test_a_softmax_along_another_axis_is_refused_in_one_line_naming_the_fix(
        axis, shape, words):
    with pytest.raises(ValueError, match=words) as error:
        Softmax(axis=axis).build(shape, backend="reference")
    assert "use Softmax() (axis=1)" in str(error.value) and "\n" not in str(error.value)


def test_softmax_takes_one_integer_axis():
    with pytest.raises(ValueError, match="one integer"):
        Softmax(axis=(1, 2))
    Softmax(axis=-1).build((5,), backend="reference")     # flat rows: the classes either way
