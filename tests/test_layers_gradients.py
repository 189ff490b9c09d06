"""Back-propagation of every layer type against central finite differences.

Oracle: :func:`dlcore.gradcheck` (float64 central differences on the reference backend); a
correct backward pass agrees to ~1e-8, a wrong one by orders of magnitude more."""
import numpy as np
import pytest

import dlcore
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
from dlcore.regularizers import L1L2

TOLERANCE = 1e-6


def check(layers, input_shape, n_classes=3, loss="cross_entropy", seed=1):
    model = dlcore.Sequential(layers, input_shape=input_shape, backend="reference", seed=seed)
    model.compile(loss=loss, optimizer="sgd")
    rs = np.random.default_rng(seed)
    x = rs.standard_normal((3,) + input_shape)
    y = rs.integers(0, n_classes, 3) if loss == "cross_entropy" else rs.random((3, n_classes))
    errors = dlcore.gradcheck(model, x, y, verbose=False)
    assert errors and all(error < TOLERANCE for error in errors.values()), errors
    return errors


def head(n_classes=3):
    return [Flatten(), Dense(n_classes, activation="softmax")]


@pytest.mark.parametrize("stride, padding", [(1, "valid"), (1, "same"), (2, 1)])
def test_conv2d_gradients_match_finite_differences(stride, padding):
    errors = check([Conv2D(2, 3, stride=stride, padding=padding, activation="tanh")] + head(),
                   (2, 5, 5))
    assert {"conv2d/kernel", "conv2d/bias", "input"} <= set(errors)


@pytest.mark.parametrize("activation", ["linear", "relu", "sigmoid", "tanh"])
def test_dense_gradients_match_finite_differences(activation):
    check([Dense(4, activation=activation), Dense(3, activation="softmax")], (5,))


@pytest.mark.parametrize("pool", [MaxPool2D, AvgPool2D, L2Pool2D])
def test_pooling_gradients_match_finite_differences(pool):
    check([Conv2D(2, 2, activation="sigmoid"), pool(2)] + head(), (1, 5, 5))


def test_overlapping_pools_gradients_match_finite_differences():
    check([MaxPool2D(3, stride=1), AvgPool2D(2, stride=1)] + head(), (1, 5, 5))


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh", "softmax"])
def test_activation_layers_gradients_match_finite_differences(name):
    check([Dense(4), Activation(name), Dense(3), Activation("softmax")], (4,))


def test_dropout_gradient_matches_finite_differences_with_its_mask_frozen():
    check([Dense(6, activation="tanh"), Dropout(0.4), Dense(3, activation="softmax")], (4,))


def test_gaussian_noise_gradient_matches_finite_differences():
    check([GaussianNoise(0.3), Dense(3, activation="softmax")], (4,))


def test_augmentation_is_left_out_of_the_check():
    errors = check([ImageAugmentation(max_shift=1), Conv2D(2, 3)] + head(), (1, 5, 5))
    assert "image_augmentation" not in " ".join(errors)


def test_regularised_cost_gradients_match_finite_differences():
    check([Dense(4, activation="tanh", kernel_regularizer=L1L2(l1=0.01, l2=0.1),
                 bias_regularizer="l2"), Dense(3, activation="softmax")], (5,))


@pytest.mark.parametrize("loss", ["binary_cross_entropy", "mse"])
def test_other_losses_gradients_match_finite_differences(loss):
    last = "sigmoid" if loss == "binary_cross_entropy" else "linear"
    check([Dense(4, activation="tanh"), Dense(3, activation=last)], (5,), loss=loss)


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_cross_entropy_on_outputs_that_are_probabilities_uses_the_unfused_gradient(backend):
    """-sum y log p on given probabilities (the loss called directly: a network refuses
    cross-entropy on anything but a softmax, which it fuses) against finite differences."""
    loss, rs = dlcore.losses.CrossEntropy(), np.random.default_rng(1)
    p = rs.uniform(0.1, 0.9, (3, 4)).astype(np.float32)
    targets = np.eye(4, dtype=np.float32)[[0, 2, 3]]
    grad, row_loss, row_correct = np.zeros_like(p), np.zeros(3, np.float32), np.zeros(3, np.float32)
    loss.loss_and_gradient(dlcore.backend.get_backend(backend), p, targets, grad, row_loss,
                           row_correct, fused=False)

    def mean_loss(q):
        return -(targets * np.log(q)).sum(axis=1).mean()
    step, numeric = 1e-6, np.zeros(p.shape)
    for index in np.ndindex(p.shape):
        up, down = p.astype(np.float64), p.astype(np.float64)
        up[index] += step
        down[index] -= step
        numeric[index] = (mean_loss(up) - mean_loss(down)) / (2 * step)
    np.testing.assert_allclose(row_loss, -(targets * np.log(p)).sum(axis=1), rtol=1e-5)
    np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-6)


def test_gradcheck_catches_a_wrong_backward(monkeypatch):
    """A kernel gradient off by a factor 2 must show up as a large relative error."""
    from dlcore.layers import ops
    original = ops.ReferenceOps.dense_backward

    def doubled(self, *args):
        original(self, *args)
        args[5][...] *= 2  # grad_kernel

    monkeypatch.setattr(ops.ReferenceOps, "dense_backward", doubled)
    model = dlcore.Sequential([Dense(3, activation="softmax")], input_shape=(4,),
                              backend="reference")
    model.compile("cross_entropy", "sgd")
    errors = dlcore.gradcheck(model, np.ones((2, 4)), [0, 1], verbose=False)
    assert errors["dense/kernel"] > 0.1


def test_gradcheck_prints_one_row_per_tensor(capsys):
    model = dlcore.Sequential([Dense(3, activation="softmax")], input_shape=(4,),
                              backend="reference")
    model.compile("cross_entropy", "sgd")
    dlcore.gradcheck(model, np.ones((2, 4)), [0, 1])
    out = capsys.readouterr().out
    for name in ("dense/kernel", "dense/bias", "input", "relative error"):
        assert name in out


def test_gradcheck_can_sample_entries_of_large_tensors():
    model = dlcore.models.lenet5(backend="reference")
    model.compile("cross_entropy", "sgd")
    x = np.random.default_rng(0).random((2, 1, 28, 28))
    errors = dlcore.gradcheck(model, x, [3, 7], max_entries=5, verbose=False)
    assert len(errors) == 11 and max(errors.values()) < TOLERANCE
