"""The losses: values, gradients (p - y) and stability; kernels against the reference.

Oracles: lecture 002's dL/do = p - y; finite differences of the loss value; the NumPy
reference for the kernel bodies."""
import numpy as np
import pytest

from conftest import requires_cuda
from dlcore.backend import get_backend
from dlcore.losses import BinaryCrossEntropy, CrossEntropy, MeanSquaredError, get_loss

LOSSES = [(CrossEntropy(), True), (CrossEntropy(), False), (BinaryCrossEntropy(), True),
          (BinaryCrossEntropy(), False), (MeanSquaredError(), False)]
IDS = ["ce-softmax", "ce-probabilities", "bce-sigmoid", "bce-probabilities", "mse"]


def outputs_and_targets(loss, fused, rs, n=5, k=4):
    targets = np.eye(k)[rs.integers(0, k, n)]
    if fused:
        return rs.standard_normal((n, k)) * 3, targets
    if isinstance(loss, BinaryCrossEntropy):
        return rs.uniform(0.05, 0.95, (n, k)), rs.integers(0, 2, (n, k)).astype(float)
    return rs.dirichlet(np.ones(k), n), targets


def test_softmax_cross_entropy_gradient_is_p_minus_y(random_state):
    logits = random_state.standard_normal((3, 5))
    targets = np.eye(5)[[0, 3, 4]]
    _, grad = CrossEntropy().reference(logits, targets, fused=True)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(grad, (p - targets) / 3)


def test_cross_entropy_is_finite_for_huge_logits():
    losses, grad = CrossEntropy().reference(np.array([[1000.0, -1000.0]]), np.array([[0, 1.0]]),
                                            fused=True)
    assert losses[0] == pytest.approx(2000.0) and np.all(np.isfinite(grad))


@pytest.mark.parametrize("loss, fused", LOSSES, ids=IDS)
def test_gradient_is_the_derivative_of_the_mean_loss(loss, fused, random_state):
    outputs, targets = outputs_and_targets(loss, fused, random_state)
    _, grad = loss.reference(outputs, targets, fused)
    eps = 1e-6
    for index in [(0, 0), (2, 1), (4, 3)]:
        bumped = outputs.copy()
        bumped[index] += eps
        plus = loss.reference(bumped, targets, fused)[0].mean()
        bumped[index] -= 2 * eps
        minus = loss.reference(bumped, targets, fused)[0].mean()
        assert grad[index] == pytest.approx((plus - minus) / (2 * eps), rel=1e-5, abs=1e-9)


def run(loss, fused, outputs, targets, backend):
    be = get_backend(backend)
    n, k = outputs.shape
    arrays = [be.asarray(a) for a in (outputs, targets)]
    grad, row_loss, row_correct = be.empty((n, k)), be.empty((n,)), be.empty((n,))
    loss.compute(be, *arrays, grad, row_loss, row_correct, fused)
    return [be.to_numpy(a) for a in (grad, row_loss, row_correct)]


@pytest.mark.parametrize("loss, fused", LOSSES, ids=IDS)
def test_cpu_kernels_follow_the_reference(loss, fused, random_state):
    outputs, targets = outputs_and_targets(loss, fused, random_state)
    outputs, targets = outputs.astype(np.float32), targets.astype(np.float32)
    for got, expected in zip(run(loss, fused, outputs, targets, "cpu"),
                             run(loss, fused, outputs, targets, "reference")):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@requires_cuda
@pytest.mark.parametrize("loss, fused", LOSSES[:3], ids=IDS[:3])
def test_cuda_kernels_follow_the_reference(loss, fused, random_state):
    outputs, targets = outputs_and_targets(loss, fused, random_state, n=3, k=3)
    outputs, targets = outputs.astype(np.float32), targets.astype(np.float32)
    for got, expected in zip(run(loss, fused, outputs, targets, "cuda"),
                             run(loss, fused, outputs, targets, "reference")):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_unknown_loss_names_the_choices():
    with pytest.raises(ValueError, match="cross_entropy, binary_cross_entropy or mse"):
        get_loss("hinge")
