"""Adversarial examples and adversarial training: the fast gradient sign method.

Lecture "Convolutional neural networks" (2016), "Adversarial training (Szegedy et al., 2014)":
"search for an input x' near a datapoint x that would have very different output y' from y;
adversaries can be found surprisingly close!", with the panda that becomes a gibbon at

    x_adv = x + epsilon sign(grad_x J(theta, x, y))

(Goodfellow, Shlens & Szegedy, "Explaining and harnessing adversarial examples", ICLR 2015:
the fast gradient sign method, FGSM). Every pixel moves by epsilon in the direction that raises
the loss J; here the result is clipped to the data range [low, high] so that it is still an
image. Trained on such examples as well, the network is regularised (Goodfellow et al.,
section 6):

    J~(theta, x, y) = a J(theta, x, y) + (1 - a) J(theta, x_adv, y),     a = 1/2 in the paper

``model.fit(x, y, adversarial=epsilon, adversarial_weight=a)`` does that for every mini-batch:
a forward and backward pass of the clean batch gives dJ/dtheta and grad_x J, the batch's FGSM
examples are made from grad_x, a second pass (the same dropout masks: the same update number)
gives dJ(x_adv)/dtheta, and the optimiser steps along a dJ(x)/dtheta + (1 - a) dJ(x_adv)/dtheta
(x_adv is held fixed, as in the paper). An update costs two passes instead of one. The
history's ``loss`` and ``accuracy`` are those of the clean examples.

:func:`fgsm` attacks a trained network: the gradient of the network *as it predicts* (the
evaluation maths, no dropout or noise: the ``training`` mode
:data:`dlcore.layers.base.EVALUATION_GRADIENT`).

Both steps are written twice, NumPy references (:func:`fgsm_reference`,
:func:`axpby_reference`) and kernel bodies (:func:`fgsm_span`, :func:`axpby_span`) compiled for
the CPU and CUDA, held to each other by tests/test_adversarial.py.
"""
import numpy as np

from dlcore.backend.registry import body
from dlcore.validation import check_float, check_int, check_network

__all__ = ["AdversarialTraining", "axpby_reference", "fgsm", "fgsm_reference"]

_ZERO = np.float32(0.0)


# -- the maths, twice -------------------------------------------------------------------------
def fgsm_reference(x, grad_x, epsilon, low, high):
    """NumPy: x_adv = clip(x + epsilon sign(grad_x), low, high), elementwise (any shape)."""
    return np.clip(x + epsilon * np.sign(grad_x), low, high).astype(x.dtype)


@body
def fgsm_span(first, last, x, grad_x, out, epsilon, low, high):
    """Elements first..last-1 of flat arrays: out = clip(x + epsilon sign(grad_x), low, high)
    (sign(0) = 0: a pixel the loss does not depend on stays)."""
    for i in range(first, last):
        g = grad_x[i]
        value = x[i]
        if g > _ZERO:
            value = value + epsilon
        elif g < _ZERO:
            value = value - epsilon
        out[i] = min(max(value, low), high)


def axpby_reference(alpha, x, beta, y):
    """NumPy: y <- alpha x + beta y (beta = 0 overwrites y, whatever it held)."""
    y[...] = alpha * x + (beta * y if beta else 0)


@body
def axpby_span(first, last, alpha, x, beta, y):
    """Elements first..last-1 of flat arrays: y <- alpha x + beta y; beta = 0 overwrites."""
    for i in range(first, last):
        if beta == _ZERO:
            y[i] = alpha * x[i]
        else:
            y[i] = alpha * x[i] + beta * y[i]


def _fgsm_into(backend, x, grad_x, out, epsilon, low, high):
    """out <- clip(x + epsilon sign(grad_x), low, high) on ``backend`` (arrays of one shape)."""
    if not backend.launches_kernels:
        out[...] = fgsm_reference(x, grad_x, epsilon, low, high)
        return
    backend.launch_1d(fgsm_span, x.size, x.reshape(-1), grad_x.reshape(-1), out.reshape(-1),
                      np.float32(epsilon), np.float32(low), np.float32(high))


def _axpby(backend, alpha, x, beta, y):
    if not backend.launches_kernels:
        axpby_reference(alpha, x, beta, y)
        return
    backend.launch_1d(axpby_span, y.size, np.float32(alpha), x.reshape(-1), np.float32(beta),
                      y.reshape(-1))


def check_data_range(clip, x):
    """``(low, high)`` of ``clip``, or of ``x`` itself when None."""
    if clip is None:
        return float(np.min(x)), float(np.max(x))
    if not isinstance(clip, (tuple, list)) or len(clip) != 2:
        raise ValueError(f"clip must be a pair (low, high) such as (0, 1), or None for the "
                         f"range of x; got {clip!r:.80}")
    low, high = (check_float(value, "clip") for value in clip)
    if not low < high:
        raise ValueError(f"clip must be (low, high) with low < high; got {clip!r}")
    return low, high


def refuse_augmentation(model):
    """ValueError when ``model`` augments its inputs: an augmented image passes no gradient."""
    from dlcore.layers import ImageAugmentation
    if any(isinstance(layer, ImageAugmentation) for layer in getattr(model, "layers", ())):
        raise ValueError("adversarial training needs the gradient with respect to each training "
                         "image, which an ImageAugmentation layer does not pass while it "
                         "augments: train without one of the two")


# -- an attack on a trained network ------------------------------------------------------------
def fgsm(model, x, y, epsilon, clip=None, batch_size=256):
    """Adversarial examples of the fast gradient sign method (see the module docstring):

        x_adv = clip(x + epsilon sign(grad_x J(theta, x, y)), low, high)

    with the gradient of the network as it predicts (evaluation mode: no dropout or noise; an
    ImageAugmentation layer is then the identity and passes the gradient).

    Parameters
    ----------
    model : a built, compiled :class:`dlcore.Sequential` or :class:`dlcore.Model` (J is its
        loss); its parameters' ``grad`` are overwritten, its weights are not changed
    x : (n, *input_shape) array, e.g. (n, 1, 28, 28) images in [0, 1]
    y : (n,) class labels or (n, outputs) targets, as for ``fit``: the labels to move away from
    epsilon : float >= 0, the step of every pixel (0.1 is a tenth of MNIST's range)
    clip : (low, high), the data range; None takes the range of x
    batch_size : int, the samples of one gradient computation

    Returns
    -------
    (n, *input_shape) NumPy array of the model's dtype: the adversarial examples.
    """
    from dlcore.layers.base import EVALUATION_GRADIENT
    from dlcore.training import LossRows
    check_network(model, "fgsm")
    model.check_compiled()
    epsilon = check_float(epsilon, "epsilon", low=0.0)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    x = model._checked_inputs(x)
    low, high = check_data_range(clip, x)
    targets = model._target_rows(y, len(x))
    backend = model.backend
    out = np.empty_like(x)
    capacity = min(batch_size, len(x))
    all_rows = LossRows.empty(backend, capacity, targets.shape[1], model.dtype)
    buffer = backend.empty((capacity,) + x.shape[1:], model.dtype)
    with backend.compute(small_products=True):
        for start in range(0, len(x), batch_size):
            x_batch = backend.asarray(x[start:start + batch_size], dtype=model.dtype)
            y_batch = backend.asarray(targets[start:start + batch_size], dtype=model.dtype)
            n = x_batch.shape[0]
            rows = all_rows if n == capacity else all_rows.first(n)
            grad_x = model.loss_rows(x_batch, y_batch, rows, training=EVALUATION_GRADIENT,
                                     gradient=True, input_gradient=True)
            _fgsm_into(backend, x_batch, grad_x.reshape(x_batch.shape), buffer[:n], epsilon,
                       low, high)
            out[start:start + n] = backend.to_numpy(buffer[:n])
    return out


# -- adversarial training ------------------------------------------------------------------------
class AdversarialTraining:
    """The update of ``fit(..., adversarial=epsilon, adversarial_weight=a)`` (module docstring).

    Parameters
    ----------
    epsilon : float > 0, the FGSM step
    weight : float in [0, 1], a: the weight of the clean examples' loss
    low, high : the data range the adversarial examples are clipped to
    """

    def __init__(self, epsilon, weight, low, high):
        self.epsilon = check_float(epsilon, "adversarial", low=0.0, low_open=True)
        self.weight = check_float(weight, "adversarial_weight", low=0.0, high=1.0)
        self.low, self.high = float(low), float(high)
        self._examples = None
        self._clean_gradients = {}

    def update_gradients(self, model, x, targets, rows, totals):
        """Leave a dJ(x)/dtheta + (1 - a) dJ(x_adv)/dtheta in every Parameter's ``grad``;
        the clean batch's losses go into ``totals``."""
        backend = model.backend
        step = model.n_updates
        grad_x = model.loss_rows(x, targets, rows, training=True, step=step, gradient=True,
                                 input_gradient=True)
        model._accumulate(rows, totals)
        for parameter in model.parameters:
            saved = self._clean_gradients.get(parameter.key)
            if saved is None:
                saved = backend.empty(parameter.grad.shape, parameter.grad.dtype)
                self._clean_gradients[parameter.key] = saved
            _axpby(backend, self.weight, parameter.grad, 0.0, saved)    # a dJ(x)/dtheta
        examples = self._buffer(backend, x)
        _fgsm_into(backend, x, grad_x.reshape(x.shape), examples, self.epsilon, self.low,
                   self.high)
        model.loss_rows(examples, targets, rows, training=True, step=step, gradient=True)
        for parameter in model.parameters:
            _axpby(backend, 1.0, self._clean_gradients[parameter.key], 1.0 - self.weight,
                   parameter.grad)

    def _buffer(self, backend, x):
        """The adversarial batch, a view of one buffer of the largest batch seen."""
        size = x.size
        if self._examples is None or self._examples.size < size:
            self._examples = backend.empty((size,), x.dtype)
        return self._examples[:size].reshape(x.shape)
