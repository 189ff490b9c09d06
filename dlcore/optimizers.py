"""Optimisers: SGD with momentum and Nesterov, AdaGrad, RMSProp, Adam (and AMSGrad), AdamW,
Nadam, Adamax, Adadelta, Lion, Ftrl; learning-rate schedules; gradient clipping by norm.

With g the gradient of the loss for one parameter tensor theta and eta the learning rate
(lecture "Supervised learning", "Optimization"; lecture "Deep learning I"):

    SGD           theta <- theta - eta g
    momentum      Delta <- mu Delta + g;  theta <- theta - eta Delta      (the lecture: mu = 0.9)
    Nesterov      Delta <- mu Delta + g;  theta <- theta - eta (g + mu Delta)
    AdaGrad       s <- s + g^2;  theta <- theta - eta g / (sqrt(s) + eps)     (Duchi et al. 2011)
    RMSProp       s <- rho s + (1 - rho) g^2;  theta <- theta - eta g / (sqrt(s) + eps)
                  (centred: s - a^2, a <- rho a + (1 - rho) g, in s's place;  Graves 2013;
                  momentum: b <- mu b + g / (sqrt(s) + eps), theta <- theta - eta b)
    Adam          m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;          (Kingma & Ba 2015)
                  theta <- theta - eta m^ / (sqrt(v^) + eps),
                  m^ = m / (1 - b1^t),  v^ = v / (1 - b2^t)
    AMSGrad       Adam with v_max <- max(v_max, v) in v's place in v^       (Reddi et al. 2018)
    AdamW         theta <- (1 - eta lambda) theta, then Adam's step   (Loshchilov & Hutter 2019):
                  Adam with ``weight_decay``, which every rule above takes (as in Keras 3)
    Nadam         Adam with m^ = mu_(t+1) m / (1 - P_t mu_(t+1)) + (1 - mu_t) g / (1 - P_t),
                  mu_t = b1 (1 - 0.5 * 0.96^t), P_t = mu_1 ... mu_t       (Dozat 2016, Keras's)
    Adamax        m <- b1 m + (1 - b1) g;  u <- max(b2 u, |g|);         (Kingma & Ba 2015, 7.1)
                  theta <- theta - eta m / ((1 - b1^t) (u + eps))          (Keras's)
    Lion          theta <- theta - eta sign(b1 m + (1 - b1) g);          (Chen et al. 2023)
                  m <- b2 m + (1 - b2) g                                    (Keras's)
    Ftrl          n' = n + g^2;  z <- z + g + 2 l2s theta - (n'^p - n^p) / eta theta;
                  theta <- (clip(z, -l1, l1) - z) / (n'^p / eta + 2 l2 + beta / eta);
                  n <- n'   (p = -learning_rate_power)         (McMahan et al. 2013, Keras's)
    Adadelta      s <- rho s + (1 - rho) g^2;                                    (Zeiler 2012)
                  Delta = -sqrt(d + eps) g / sqrt(s + eps);
                  d <- rho d + (1 - rho) Delta^2;  theta <- theta + eta Delta   (Keras's)

The momentum form is that of lecture "Supervised learning" ("Stochastic Gradient Descent with
Momentum") and PyTorch's. Lecture "Deep learning I" ("SGD with momentum": v <- alpha v -
epsilon g, theta <- theta + v) writes Keras's, the other one, ``momentum_form="keras"`` (set on
a model compiled from a Keras file):

    momentum      v <- mu v - eta g;  theta <- theta + v
    Nesterov      v <- mu v - eta g;  theta <- theta + mu v - eta g

the same steps for a constant eta (v = -eta Delta), not under a schedule or a rate changed
between epochs: Keras's velocity keeps each past gradient scaled by the rate of its own step,
dlcore's scales them all by the rate of the current one.

The lectures name AdaGrad, RMSProp and Adam ("Deep learning I") without saying where the small
eps enters; dlcore's rules above are the papers' (Kingma & Ba's Algorithm 1) and PyTorch's.
Keras places it elsewhere, and ``epsilon_form="keras"`` (set on a model compiled from a Keras
file) takes Keras's steps instead:

    RMSProp       theta <- theta - eta g / sqrt(s + eps)
                  (momentum: b <- mu b + eta g / sqrt(s + eps);  theta <- theta - b)
    Adam          theta <- theta - eta sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps)
                         = theta - eta m^ / (sqrt(v^) + eps sqrt(1 / (1 - b2^t)))

(Kingma & Ba's reordering at the end of their section 2: Adam's rule with an epsilon that
grows with the bias correction of v, so that it is computed by the same kernel), with the bias
corrections 1 - b^t computed in the weights' precision, as Keras computes them (float32's
1 - 0.999 is 1.3e-5 off; Nadam, Keras's rule, computes them so too). The
difference is of the order of eps over the gradient's size: visible once a gradient is small
(~1e-4) or clipped.

Before the rule, in the same kernel, g becomes the gradient of the cost, penalty included,

    g <- c * (g + lambda_2 theta + lambda_1 sign(theta))

with lambda_1, lambda_2 the weight decay of the parameter's regulariser
(:mod:`dlcore.regularizers`) and c the clipping factor (``clipnorm``: each tensor's gradient of
the cost rescaled to norm <= clipnorm; ``global_clipnorm``: all of them together, by one
factor). The penalty's gradient is clipped with the loss's, as Keras clips the gradient of its
loss, regularisation losses included (PyTorch's ``weight_decay`` is added after
``clip_grad_norm_``); a Keras model with ``clipnorm`` and a regulariser then takes Keras's
steps. Afterwards max-norm constraints
rescale the units that grew too long. ``learning_rate`` is a number or a schedule evaluated at
the update number t (:class:`ExponentialDecay`, :class:`StepDecay`, :class:`InverseTimeDecay`).

Decoupled weight decay (``weight_decay`` = lambda, any optimiser) multiplies theta by
1 - eta lambda in the same kernel, after g is computed and before the rule's step; the
parameters named by :meth:`Optimizer.exclude_from_weight_decay` (Keras 3's) keep 1 instead.

Each rule is written twice: a NumPy reference (``reference_rule``) and a kernel body compiled for
the CPU and CUDA (``body``), held to each other by ``tests/test_optimizers.py``. The kernels
take their settings (rate, betas, epsilon, decays, clipping factors) in the parameters'
precision: a float64 network steps in float64 throughout, as the reference does. The kernels
flush a decaying state (Delta, s, m, v) to 0 once it falls below float32's smallest normal
number, 2^-126 (:func:`dlcore.backend.kernel_math.flush_subnormal`): a dead ReLU unit's
momentum decays through about 150 subnormal steps, each operation on one costing ~100 cycles on
x86 (LeNet-5's optimiser step: 245 -> 44 us a batch on an Intel Xeon); the reference keeps the
subnormals, a difference below 1.2e-38. The step straight from the product (below), whose
Delta BLAS writes, runs on the CPU in x86's flush-to-zero mode instead
(:mod:`dlcore.backend.flush_to_zero`).

SGD's step on a Dense kernel can also be taken during the backward pass, straight from the
product that the kernel's gradient is (:meth:`Optimizer.product_step`,
:meth:`dlcore.backend.base.Backend.dense_weight_step`): Delta <- mu Delta + x' dL/dz with the
product added into Delta, then theta <- theta - eta Delta, the gradient never stored.
"""
import inspect
import math
import re
import types
from dataclasses import dataclass, field

import numpy as np

from dlcore.backend.kernel_backend import Tensors
from dlcore.backend.kernel_math import flush_subnormal
from dlcore.backend.registry import body, shared
from dlcore.validation import check_float, check_int

_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)


# -- learning-rate schedules -----------------------------------------------------------------
class Schedule:
    """A learning rate as a function of the update number t = 0, 1, 2, ..."""

    def __call__(self, step):
        raise NotImplementedError

    def get_config(self):
        raise NotImplementedError


class ExponentialDecay(Schedule):
    """eta_t = initial * decay_rate ** (t / decay_steps) (``staircase``: the exponent floored,
    a drop every ``decay_steps`` updates).

    Parameters
    ----------
    initial_learning_rate : float > 0, eta_0
    decay_steps : int >= 1, updates (batches) per power of ``decay_rate``
    decay_rate : float > 0 (below 1 decays)
    staircase : bool (False)
    """

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False):
        self.initial_learning_rate = check_float(initial_learning_rate, "initial_learning_rate",
                                                 low=0.0, low_open=True)
        self.decay_steps = check_int(decay_steps, "decay_steps", minimum=1)
        self.decay_rate = check_float(decay_rate, "decay_rate", low=0.0, low_open=True)
        self.staircase = bool(staircase)

    def __call__(self, step):
        exponent = step / self.decay_steps
        if self.staircase:
            exponent = math.floor(exponent)
        return self.initial_learning_rate * self.decay_rate ** exponent

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase}


class StepDecay(Schedule):
    """eta_t = initial * drop ** floor(t / step_size): divide the rate by 1/drop every
    ``step_size`` updates (lecture "Supervised learning": "decay learning rate by a factor of
    ~1000 or more by the end of training").

    Parameters
    ----------
    initial_learning_rate : float > 0, eta_0
    step_size : int >= 1, updates (batches) between two drops
    drop : float > 0, the factor of each drop (0.5: the rate halves)
    """

    def __init__(self, initial_learning_rate, step_size, drop=0.5):
        self.initial_learning_rate = check_float(initial_learning_rate, "initial_learning_rate",
                                                 low=0.0, low_open=True)
        self.step_size = check_int(step_size, "step_size", minimum=1)
        self.drop = check_float(drop, "drop", low=0.0, low_open=True)

    def __call__(self, step):
        return self.initial_learning_rate * self.drop ** (step // self.step_size)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "step_size": self.step_size, "drop": self.drop}


class InverseTimeDecay(Schedule):
    """eta_t = initial / (1 + decay_rate t / decay_steps) (``staircase``: t / decay_steps
    floored), Keras's ``InverseTimeDecay``. With ``decay_steps=1`` it is Keras 2's ``decay=``
    of every optimiser, lr / (1 + decay t), which a tf.keras 2 file's optimiser carries.

    Parameters
    ----------
    initial_learning_rate : float > 0, eta_0
    decay_steps : int >= 1, the updates (batches) t is counted in
    decay_rate : float >= 0
    staircase : bool (False)
    """

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False):
        self.initial_learning_rate = check_float(initial_learning_rate, "initial_learning_rate",
                                                 low=0.0, low_open=True)
        self.decay_steps = check_int(decay_steps, "decay_steps", minimum=1)
        self.decay_rate = check_float(decay_rate, "decay_rate", low=0.0)
        self.staircase = bool(staircase)

    def __call__(self, step):
        progress = step / self.decay_steps
        if self.staircase:
            progress = math.floor(progress)
        return self.initial_learning_rate / (1 + self.decay_rate * progress)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase}


SCHEDULES = {cls.__name__: cls for cls in (ExponentialDecay, StepDecay, InverseTimeDecay)}
#: The schedules where Keras keeps them, ``keras.optimizers.schedules.ExponentialDecay``:
#: ``dlcore.optimizers.schedules.ExponentialDecay`` is ``dlcore.optimizers.ExponentialDecay``
schedules = types.SimpleNamespace(**SCHEDULES)


def _check_learning_rate(value):
    if isinstance(value, Schedule):
        return value
    if isinstance(value, dict) and value.get("class_name") in SCHEDULES:
        return SCHEDULES[value["class_name"]](**value.get("config", {}))
    if type(value).__module__.split(".")[0] == "keras" and callable(
            getattr(value, "get_config", None)):
        # keras.optimizers.schedules.ExponentialDecay(...) given to a dlcore optimiser, as a
        # Keras user writes it: the same schedule, from its settings
        name = type(value).__name__
        if name not in SCHEDULES:
            raise ValueError(f"learning_rate is Keras's {name}, which dlcore has not: give one "
                             f"of dlcore.optimizers' schedules ({', '.join(sorted(SCHEDULES))})"
                             f" or a number")
        settings = {key: item for key, item in value.get_config().items() if key != "name"}
        return SCHEDULES[name](**settings)
    return check_float(value, "learning_rate", low=0.0, low_open=True)


# -- the tensors an optimiser updates --------------------------------------------------------
@dataclass
class Parameter:
    """One parameter tensor as the optimiser sees it.

    key : "layer_name/weight_name";  value, grad : arrays on the backend (same shape)
    l1, l2 : weight decay;  constraint : a MaxNorm or None, with ``units_axis`` the axis of the
    kernel that indexes units (1 for Dense (in, out), 0 for Conv2D (F, C, k_h, k_w))
    """

    key: str
    value: object
    grad: object
    l1: float = 0.0
    l2: float = 0.0
    constraint: object = None
    units_axis: int = 0
    slots: dict = field(default_factory=dict)


# -- kernel bodies (one element range of one tensor) -----------------------------------------
@shared
def _effective_gradient(theta, g, scale, l1, l2):
    """c (g + lambda_2 theta + lambda_1 sign(theta))."""
    sign = _ONE if theta > _ZERO else (-_ONE if theta < _ZERO else _ZERO)
    return scale * (g + l2 * theta + l1 * sign)


@shared
def _decayed_gradient(w, dw, i, scale, l1, l2, keep):
    """The gradient of the cost at w[i] (:func:`_effective_gradient`), then w[i] <- keep w[i]:
    every rule's decoupled weight decay (keep = 1 - eta lambda, 1 without it), taken before
    the rule's step on the weight its gradient was computed at, as Keras's base optimiser
    does."""
    g = _effective_gradient(w[i], dw[i], scale, l1, l2)
    w[i] *= keep
    return g


# Each body loops from 0 over views of its element range: with range(first, last) Numba cannot
# rule out negative indices and tests each one, which stops vectorisation (measured: 5x).


@body
def sgd_span(first, last, theta, grad, velocity, unused, unused_slot, rate, momentum, nesterov,
             keras_form, scale, l1, l2, keep):
    """``keras_form`` (1, else 0): ``velocity`` is Keras's v, not dlcore's Delta (module
    docstring)."""
    w, dw, v = theta[first:last], grad[first:last], velocity[first:last]
    if momentum != _ZERO and not nesterov and keras_form == _ZERO and scale == _ONE \
            and l1 == _ZERO and l2 == _ZERO and keep == _ONE:
        for i in range(w.shape[0]):   # the lecture's momentum, plain
            delta = flush_subnormal(momentum * v[i] + dw[i])
            v[i] = delta
            w[i] -= rate * delta
        return
    for i in range(w.shape[0]):
        g = _decayed_gradient(w, dw, i, scale, l1, l2, keep)
        if momentum == _ZERO:
            w[i] -= rate * g
        elif keras_form != _ZERO:
            step = flush_subnormal(momentum * v[i] - rate * g)
            v[i] = step
            w[i] += momentum * step - rate * g if nesterov else step
        else:
            delta = flush_subnormal(momentum * v[i] + g)
            v[i] = delta
            w[i] -= rate * (g + momentum * delta) if nesterov else rate * delta


@body
def adagrad_span(first, last, theta, grad, accumulator, unused, unused_slot, rate,
                 epsilon_outside, epsilon_inside, unused_a, scale, l1, l2, keep):
    """theta -= rate g / (sqrt(s + epsilon_inside) + epsilon_outside), as :func:`rmsprop_span`
    (dlcore's sqrt(s) + eps, or Keras's sqrt(s + eps))."""
    w, dw, s = theta[first:last], grad[first:last], accumulator[first:last]
    for i in range(w.shape[0]):
        g = _decayed_gradient(w, dw, i, scale, l1, l2, keep)
        s[i] += g * g
        w[i] -= rate * g / (math.sqrt(s[i] + epsilon_inside) + epsilon_outside)


@body
def rmsprop_span(first, last, theta, grad, mean_square, momentum_buffer, mean_gradient, rate,
                 rho, coefficients, unused_a, scale, l1, l2, keep):
    """RMSProp (:class:`RMSProp`), with ``coefficients`` = (1 - rho, epsilon_outside,
    epsilon_inside, mu, centred, inner, outer): one of the two epsilons is eps, the other 0
    (dlcore's sqrt(s) + eps, or Keras's sqrt(s + eps); adding 0 changes nothing)::

        s <- rho s + (1 - rho) g^2
        centred (1):  a <- rho a + (1 - rho) g,  s - a^2 in s's place below
        step = g / (sqrt(s + epsilon_inside) + epsilon_outside)
        mu = 0:  theta <- theta - rate step
        mu > 0:  b <- mu b + inner step;  theta <- theta - outer b

    with (inner, outer) = (1, rate) for PyTorch's momentum (b is sum mu^k step), (rate, 1)
    for Keras's (b holds the steps scaled by their own rates). ``momentum_buffer`` and
    ``mean_gradient`` are theta itself where the rule keeps no such slot (never written)."""
    w, dw, s = theta[first:last], grad[first:last], mean_square[first:last]
    # 1 - rho computed before rounding: float32's 1 - float32(0.999) is 1.3e-5 off 0.001
    keep_square, epsilon_outside, epsilon_inside = coefficients[0], coefficients[1], \
        coefficients[2]
    momentum, centred = coefficients[3], coefficients[4]
    if momentum == _ZERO and centred == _ZERO:
        for i in range(w.shape[0]):   # Tieleman & Hinton's, plain
            g = _decayed_gradient(w, dw, i, scale, l1, l2, keep)
            s[i] = flush_subnormal(rho * s[i] + keep_square * g * g)
            w[i] -= rate * g / (math.sqrt(s[i] + epsilon_inside) + epsilon_outside)
        return
    b, a = momentum_buffer[first:last], mean_gradient[first:last]
    inner, outer = coefficients[5], coefficients[6]
    for i in range(w.shape[0]):
        g = _decayed_gradient(w, dw, i, scale, l1, l2, keep)
        s[i] = flush_subnormal(rho * s[i] + keep_square * g * g)
        spread = s[i]
        if centred != _ZERO:
            a[i] = flush_subnormal(rho * a[i] + keep_square * g)
            spread = s[i] - a[i] * a[i]
        if momentum == _ZERO:
            w[i] -= rate * g / (math.sqrt(spread + epsilon_inside) + epsilon_outside)
        else:
            b[i] = flush_subnormal(momentum * b[i] + inner * g / (
                math.sqrt(spread + epsilon_inside) + epsilon_outside))
            w[i] -= outer * b[i]


@body
def adam_span(first, last, theta, grad, m, v, v_max, rate, beta_1, beta_2, coefficients, scale,
              l1, l2, keep):
    """Adam and its variants AMSGrad, Nadam (AdamW: any of them with weight decay), with
    ``coefficients`` = (a, b, c, eps, amsgrad, 1 - b1, 1 - b2) computed once per update
    (:meth:`Adam._coefficients`):

        m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
        AMSGrad (amsgrad 1): v_max <- max(v_max, v), which the step then uses for v
        theta <- keep theta - rate (a m + b g) / (sqrt(c v) + eps)
    """
    w, dw, first_moment, second_moment, largest = theta[first:last], grad[first:last], \
        m[first:last], v[first:last], v_max[first:last]
    weight_m, weight_g, correction_v, epsilon, amsgrad = (
        coefficients[0], coefficients[1], coefficients[2], coefficients[3], coefficients[4])
    # 1 - b computed before rounding: float32's 1 - float32(0.999) is 1.3e-5 off 0.001
    keep_m, keep_v = coefficients[5], coefficients[6]
    for i in range(w.shape[0]):
        g = _decayed_gradient(w, dw, i, scale, l1, l2, keep)
        first_moment[i] = flush_subnormal(beta_1 * first_moment[i] + keep_m * g)
        second_moment[i] = flush_subnormal(beta_2 * second_moment[i] + keep_v * g * g)
        second = second_moment[i]
        if amsgrad != _ZERO:
            largest[i] = max(largest[i], second)
            second = largest[i]
        m_hat = weight_m * first_moment[i] + weight_g * g
        v_hat = second * correction_v
        w[i] -= rate * m_hat / (math.sqrt(v_hat) + epsilon)


@body
def adamax_span(first, last, theta, grad, m, u, unused_slot, rate, beta_1, beta_2,
                coefficients, scale, l1, l2, keep):
    """Adamax, with ``coefficients`` = (1 - b1^t, eps) of this update::

        m <- b1 m + (1 - b1) g;  u <- max(b2 u, |g|);  theta -= rate m / ((1 - b1^t) (u + eps))
    """
    w, dw, first_moment, norm = theta[first:last], grad[first:last], m[first:last], \
        u[first:last]
    correction, epsilon = coefficients[0], coefficients[1]
    for i in range(w.shape[0]):
        g = _decayed_gradient(w, dw, i, scale, l1, l2, keep)
        first_moment[i] = flush_subnormal(beta_1 * first_moment[i] + (_ONE - beta_1) * g)
        norm[i] = flush_subnormal(max(beta_2 * norm[i], abs(g)))
        w[i] -= rate * first_moment[i] / (correction * (norm[i] + epsilon))


@body
def adadelta_span(first, last, theta, grad, accumulated_grad, accumulated_delta, unused_slot,
                  rate, rho, epsilon, keep_square, scale, l1, l2, keep):
    """Adadelta: s, d the running means of g^2 and of the steps' Delta^2, ``keep_square`` =
    1 - rho computed before its rounding (as :func:`rmsprop_span`'s)::

        s <- rho s + (1 - rho) g^2;  Delta = -sqrt(d + eps) g / sqrt(s + eps)
        d <- rho d + (1 - rho) Delta^2;  theta += rate Delta
    """
    w, dw, s, d = theta[first:last], grad[first:last], accumulated_grad[first:last], \
        accumulated_delta[first:last]
    for i in range(w.shape[0]):
        g = _decayed_gradient(w, dw, i, scale, l1, l2, keep)
        s[i] = flush_subnormal(rho * s[i] + keep_square * g * g)
        delta = -(math.sqrt(d[i] + epsilon) * g) / math.sqrt(s[i] + epsilon)
        d[i] = flush_subnormal(rho * d[i] + keep_square * delta * delta)
        w[i] += rate * delta


@body
def lion_span(first, last, theta, grad, m, unused, unused_slot, rate, beta_1, beta_2, unused_a,
              scale, l1, l2, keep):
    """Lion: theta -= rate sign(b1 m + (1 - b1) g), then m <- b2 m + (1 - b2) g."""
    w, dw, momentum = theta[first:last], grad[first:last], m[first:last]
    for i in range(w.shape[0]):
        g = _decayed_gradient(w, dw, i, scale, l1, l2, keep)
        direction = beta_1 * momentum[i] + (_ONE - beta_1) * g
        # sign(direction), NaN staying NaN as NumPy's
        sign = _ONE if direction > _ZERO else (-_ONE if direction < _ZERO else direction)
        w[i] -= rate * sign
        momentum[i] = flush_subnormal(beta_2 * momentum[i] + (_ONE - beta_2) * g)


@body
def ftrl_span(first, last, theta, grad, accumulator, linear, unused_slot, rate, power,
              l1_strength, coefficients, scale, l1, l2, keep):
    """Ftrl-proximal with ``power`` = -learning_rate_power and ``coefficients`` = (2 l2 +
    beta / rate, 2 l2_shrinkage) of this update (:class:`Ftrl`)."""
    w, dw, n, z = theta[first:last], grad[first:last], accumulator[first:last], \
        linear[first:last]
    l2_twice, shrinkage_twice = coefficients[0], coefficients[1]
    for i in range(w.shape[0]):
        g = _decayed_gradient(w, dw, i, scale, l1, l2, keep)
        weight = w[i]
        grown = n[i] + g * g
        grown_power = grown ** power
        z[i] += g + shrinkage_twice * weight - (grown_power - n[i] ** power) / rate * weight
        clipped = min(max(z[i], -l1_strength), l1_strength)
        w[i] = (clipped - z[i]) / (grown_power / rate + l2_twice)
        n[i] = grown


@body
def squared_norm_blocks(block, first_unit, last_unit, grad, theta, l1, l2, partial_sums,
                        block_size):
    """partial_sums[block] = the sum of g_i^2 over the block's elements (float64), with g the
    gradient of the cost: grad + lambda_2 theta + lambda_1 sign(theta)."""
    total = 0.0
    for i in range(block * block_size, min(grad.shape[0], (block + 1) * block_size)):
        g = np.float64(_effective_gradient(theta[i], grad[i], _ONE, l1, l2))
        total += g * g
    partial_sums[block] = total


@body
def max_norm_units(first, last, weights, n_inputs, unit_stride, input_stride, max_value):
    """Units first..last-1 of a flat kernel: element k of unit u sits at
    u * unit_stride + k * input_stride; scale the unit by min(1, c / ||w_u||)."""
    for unit in range(first, last):
        total = _ZERO
        for k in range(n_inputs):
            w = weights[unit * unit_stride + k * input_stride]
            total += w * w
        norm = math.sqrt(total)
        if norm > max_value:
            factor = max_value / norm
            for k in range(n_inputs):
                weights[unit * unit_stride + k * input_stride] *= factor


@body
def clipped_cost_gradient_span(first, last, grad, theta, l1, l2, limit):
    """grad <- the gradient of the cost (:func:`_effective_gradient`) clipped to [-limit,
    limit] element by element (``clipvalue``); a NaN stays NaN, as Keras's clip keeps it."""
    g, w = grad[first:last], theta[first:last]
    for i in range(g.shape[0]):
        value = _effective_gradient(w[i], g[i], _ONE, l1, l2)
        g[i] = limit if value > limit else (-limit if value < -limit else value)


@body
def accumulate_span(first, last, total, grad, theta, l1, l2):
    """total += the gradient of the cost (:func:`_effective_gradient`, the penalty's at this
    batch's weights, as Keras's gradient holds it) (``gradient_accumulation_steps``: a batch
    that takes no step)."""
    t, g, w = total[first:last], grad[first:last], theta[first:last]
    for i in range(g.shape[0]):
        t[i] += _effective_gradient(w[i], g[i], _ONE, l1, l2)


@body
def accumulated_mean_span(first, last, grad, total, theta, l1, l2, steps):
    """grad <- (the gradient of the cost + total) / steps, then total <- 0: the mean gradient
    of the cost over the batches of one step, as Keras divides it."""
    g, t, w = grad[first:last], total[first:last], theta[first:last]
    for i in range(g.shape[0]):
        g[i] = (_effective_gradient(w[i], g[i], _ONE, l1, l2) + t[i]) / steps
        t[i] = _ZERO


@body
def moving_average_span(first, last, average, theta, momentum):
    """average <- momentum average + (1 - momentum) theta (``use_ema``, Keras's order)."""
    a, w = average[first:last], theta[first:last]
    for i in range(a.shape[0]):
        a[i] = momentum * a[i] + (_ONE - momentum) * w[i]


def _numpy_cost_gradient(grad, theta, l1, l2):
    """NumPy: g + lambda_2 theta + lambda_1 sign(theta) (:func:`_effective_gradient`)."""
    return grad + l2 * theta + l1 * np.sign(theta)


def _numpy_accumulate(total, grad, theta, l1, l2):
    total += _numpy_cost_gradient(grad, theta, l1, l2)


def _numpy_accumulated_mean(grad, total, theta, l1, l2, steps):
    grad[...] = (_numpy_cost_gradient(grad, theta, l1, l2) + total) / steps
    total[...] = 0


def _numpy_moving_average(average, theta, momentum):
    average[...] = momentum * average + (1 - momentum) * theta


#: the reference backend's NumPy for the element-wise bodies above (by the body's name)
_NUMPY_SPANS = {"accumulate_span": _numpy_accumulate,
                "accumulated_mean_span": _numpy_accumulated_mean,
                "moving_average_span": _numpy_moving_average}

NORM_BLOCK = 4096

#: Keras 3's base settings of every optimiser with their defaults, which :meth:`get_config`
#: leaves out
_BASE_DEFAULTS = {"clipvalue": None, "use_ema": False, "ema_momentum": 0.99,
                  "ema_overwrite_frequency": None, "gradient_accumulation_steps": None,
                  "name": None}


# -- optimisers ------------------------------------------------------------------------------
class Optimizer:
    """Base class: learning rate (or schedule), gradient clipping, slots, state.

    Parameters
    ----------
    learning_rate : float or Schedule
    clipnorm : float or None, clip each tensor's gradient of the cost (its weight decay
        included, as Keras) to this norm
    global_clipnorm : float or None, clip all those gradients together to this joint norm
    lr : float, optional, Keras 2's name for ``learning_rate`` (``SGD(lr=0.01, momentum=0.9)``,
        lecture "Deep learning I"); every optimiser takes it
    weight_decay : float >= 0 or None (lambda), decoupled weight decay, as Keras 3 gives every
        optimiser (Loshchilov & Hutter 2019): at each update, before the rule's step (taken
        with the gradient of the weights before the decay), theta <- (1 - eta lambda) theta,
        on every parameter, biases included (Keras's default: no exclusion). Unlike a
        layer's L2 regulariser it does not enter g, so that an adaptive rule's division does
        not weaken it. None (the default) or 0: none. :class:`AdamW` is :class:`Adam` with
        it, 0.004 by default; :meth:`exclude_from_weight_decay` leaves parameters out of it
        (biases, batch normalisation's scale and shift), as in Keras
    clipvalue : float > 0 or None, clip each element of each gradient of the cost to
        [-clipvalue, clipvalue] (Keras's; not together with a clipping by norm, as Keras)
    use_ema : bool, keep an exponential moving average of each trained parameter, as Keras 3:
        after each update (its step, before a max-norm constraint), average <- m average +
        (1 - m) theta, with m = ``ema_momentum`` (0.99), except at the first update (t = 0),
        where the average starts at theta; every ``ema_overwrite_frequency`` updates (None:
        never) theta <- average; and at the end of a ``fit`` of at least one epoch the
        parameters take their averages (:meth:`finalize_variable_values`). The averages are
        saved with the optimiser's state
    ema_momentum : float in [0, 1), m of ``use_ema``'s moving average (Keras's 0.99)
    ema_overwrite_frequency : int >= 1 or None, with ``use_ema``: every that many updates the
        parameters take their averages (None: only at the end of ``fit``)
    gradient_accumulation_steps : int >= 2 or None, Keras 3's gradient accumulation: an
        update takes a step every that many batches only, with the mean of their gradients;
        the other batches add theirs (of the cost, their penalty included, as Keras's) to an
        accumulator (saved with the state). As in Keras,
        the rules' update number t (Adam's bias correction) counts the steps taken, while a
        learning-rate schedule is evaluated at the number of batches
    name : str or None, Keras's ``name=`` (the optimiser's name in its config), kept as
        ``given_name`` and saved: ``name`` is the rule's (``"adam"``), which files use
    loss_scale_factor : refused unless None: Keras's loss scaling for float16 training, which
        dlcore does not do
    decay : refused unless None or 0: Keras 2's time decay of the learning rate,
        lr / (1 + decay t) (``Adam(lr=0.001, decay=1e-6)``), which Keras 3 ignores; a schedule
        decays the rate here, ``learning_rate=InverseTimeDecay(lr, 1, decay)`` that one
    """

    name = None
    slot_names = ()
    #: the slots that are sums or means of squared gradients, never negative: a negative one
    #: (a damaged or hostile file) would make the update's square root NaN
    squared_slots = ()

    def __init__(self, learning_rate=0.01, clipnorm=None, global_clipnorm=None, lr=None,
                 weight_decay=None, clipvalue=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, gradient_accumulation_steps=None, name=None,
                 loss_scale_factor=None, decay=None):
        if decay is not None and (isinstance(decay, bool) or decay != 0):
            # Keras 3 warns and ignores it: a user who wrote it wanted a decaying rate
            raise ValueError(f"decay={decay!r:.20} is Keras 2's decay of the learning rate, "
                             f"lr / (1 + decay t), which Keras 3 ignores: leave it out, or "
                             f"give it as a schedule, learning_rate="
                             f"dlcore.optimizers.InverseTimeDecay(lr, 1, decay)")
        if loss_scale_factor is not None:
            raise ValueError(f"loss_scale_factor={loss_scale_factor!r:.20} is Keras's loss "
                             f"scaling for float16 (mixed-precision) training, which dlcore "
                             f"does not do: leave it out (float32 and float64 gradients do "
                             f"not underflow, and scaling would give the same steps)")
        if lr is not None:   # Keras 2's spelling, as lecture "Deep learning I" writes SGD(lr=0.01)
            default = inspect.signature(type(self).__init__).parameters["learning_rate"].default
            if learning_rate != default:
                raise ValueError("give learning_rate or lr (its older Keras spelling), not both")
            learning_rate = lr
        self.learning_rate = _check_learning_rate(learning_rate)
        self.clipnorm = None if clipnorm is None else check_float(
            clipnorm, "clipnorm", low=0.0, low_open=True)
        self.global_clipnorm = None if global_clipnorm is None else check_float(
            global_clipnorm, "global_clipnorm", low=0.0, low_open=True)
        self.weight_decay = None if weight_decay is None else check_float(
            weight_decay, "weight_decay", low=0.0)
        self.clipvalue = None if clipvalue is None else check_float(
            clipvalue, "clipvalue", low=0.0, low_open=True)
        if self.clipvalue is not None and (clipnorm is not None or global_clipnorm is not None):
            raise ValueError("give clipvalue or a norm clipping (clipnorm, global_clipnorm), "
                             "not both: Keras takes one of them")
        if not isinstance(use_ema, (bool, np.bool_)):
            raise ValueError(f"use_ema must be True or False, got {use_ema!r:.60}")
        self.use_ema = bool(use_ema)
        self.ema_momentum = check_float(ema_momentum, "ema_momentum", low=0.0, high=1.0)
        self.ema_overwrite_frequency = None if ema_overwrite_frequency is None else check_int(
            ema_overwrite_frequency, "ema_overwrite_frequency", minimum=1)
        if self.ema_overwrite_frequency is not None and not self.use_ema:
            raise ValueError("ema_overwrite_frequency is the period of use_ema's overwriting "
                             "of the weights by their moving average: give use_ema=True too")
        self.gradient_accumulation_steps = None if gradient_accumulation_steps is None \
            else check_int(gradient_accumulation_steps, "gradient_accumulation_steps",
                           minimum=2)
        if name is not None and not isinstance(name, str):
            raise ValueError(f"name must be a string, got {name!r:.60}")
        self.given_name = name
        # the batches applied (what files and Keras archives store, Keras's ``_iterations``)
        self._iterations = 0
        self.exclude_from_weight_decay()

    @property
    def state_slot_names(self):
        """The per-parameter arrays of the optimiser's state: the rule's slots
        (:attr:`slot_names`, which its kernel steps), then the exponential moving average
        (``use_ema``) and the gradient accumulator (``gradient_accumulation_steps``)."""
        return (*self.slot_names, *(("average",) if self.use_ema else ()),
                *(("gradient_accumulator",) if self.gradient_accumulation_steps else ()))

    # which parameters the decoupled weight decay leaves out
    def exclude_from_weight_decay(self, var_list=None, var_names=None):
        """Leave parameters out of the decoupled weight decay (``weight_decay``), as Keras 3's
        ``optimizer.exclude_from_weight_decay(var_list=None, var_names=None)``: each call
        replaces the exclusion of the one before (none: every parameter decays again).

        Parameters
        ----------
        var_list : list of :class:`Parameter` (``model.parameters``) or of their keys
            ``"layer_name/weight_name"`` (``"dense_1/bias"``): those parameters
        var_names : list of str, regular expressions searched in each parameter's weight name
            (Keras's ``re.search`` in ``variable.name``, which is the weight's name without its
            layer's): ``["bias"]`` leaves out every bias, ``["gamma", "beta"]`` batch
            normalisation's scale and shift; dlcore names its weights as Keras does
            (``kernel``, ``bias``, ``gamma``, ``beta``)

        The exclusion is saved with the optimiser (:meth:`get_config`), in dlcore's files and
        in the Keras files dlcore writes, where Keras itself does not keep it (its
        ``get_config`` leaves it out): Keras decays every parameter of such a file.
        """
        keys = []
        for item in _name_list(var_list, "var_list"):
            key = item.key if isinstance(item, Parameter) else item
            if not isinstance(key, str) or key.count("/") != 1:
                raise ValueError(f"exclude_from_weight_decay's var_list takes the model's "
                                 f"parameters (model.parameters) or their keys "
                                 f"'layer_name/weight_name', got {_described(item)}")
            keys.append(key)
        names = _name_list(var_names, "var_names")
        for name in names:
            if not isinstance(name, str) or not name:
                raise ValueError(f"exclude_from_weight_decay's var_names are names of weights "
                                 f"(strings such as 'bias'), got {name!r:.60}")
            try:
                re.compile(name)
            except re.error as error:
                raise ValueError(f"exclude_from_weight_decay's var_name {name!r:.60} is not a "
                                 f"regular expression ({error}): escape it with "
                                 f"re.escape") from None
        self._excluded_keys = tuple(dict.fromkeys(keys))
        self._excluded_names = tuple(dict.fromkeys(names))
        self._excluded_pattern = re.compile("|".join(self._excluded_names)) if names else None
        self._decays_cache = {}

    def _decays(self, parameter):
        """Whether the decoupled weight decay applies to ``parameter``."""
        decays = self._decays_cache.get(parameter.key)
        if decays is None:
            weight = parameter.key.rsplit("/", 1)[-1]
            decays = self._decays_cache[parameter.key] = \
                parameter.key not in self._excluded_keys and not (
                    self._excluded_pattern is not None and self._excluded_pattern.search(weight))
        return decays

    @property
    def learning_rate(self):
        """eta: a positive number or a :class:`Schedule`. Settable, as Keras's
        ``model.optimizer.learning_rate = 1e-5`` before fine-tuning, and checked as the
        constructor checks it (one line naming the value)."""
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        self._learning_rate = _check_learning_rate(value)

    @property
    def lr(self):
        """Keras 2's name of :attr:`learning_rate` (lecture "Deep learning I" writes
        ``SGD(lr=0.01)``): ``optimizer.lr = 0.001`` sets the rate the updates take."""
        return self.learning_rate

    @lr.setter
    def lr(self, value):
        self.learning_rate = value

    @property
    def iterations(self):
        """The steps taken, as Keras 3's ``optimizer.iterations``: every update's batch, but
        with ``gradient_accumulation_steps`` k one step every k batches (the batches applied
        divided by k, rounded down; a file, as a Keras archive's ``iteration`` variable,
        stores the batches). Setting it starts the count there (at a step's first batch)."""
        steps = self.gradient_accumulation_steps
        return self._iterations // steps if steps else self._iterations

    @iterations.setter
    def iterations(self, value):
        self._iterations = int(value) * (self.gradient_accumulation_steps or 1)

    def __setstate__(self, state):
        state = dict(state)
        if "iterations" in state:   # pickled before the batch count had its own name
            state["_iterations"] = state.pop("iterations")
        self.__dict__.update(state)

    def __getstate__(self):
        # the flat views of the parameters last updated, and what the backend derived from them
        # (the CPU: their addresses), belong to this process and these arrays only; so do the
        # parameters a product step has already updated in this update, and the scalars kept
        # for the last launch
        state = dict(self.__dict__)
        state.pop("_tensor_views", None)
        state.pop("_scalars", None)
        state.pop("_stepped", None)
        return state

    # configuration
    def _hyperparameters(self):
        return {}

    def get_config(self):
        rate = self.learning_rate
        if isinstance(rate, Schedule):
            rate = {"class_name": type(rate).__name__, "config": rate.get_config()}
        config = {"learning_rate": rate, "clipnorm": self.clipnorm,
                  "global_clipnorm": self.global_clipnorm, "weight_decay": self.weight_decay,
                  **self._hyperparameters()}
        # Keras's base settings, where they are not their defaults (a file of an optimiser
        # without them reads as before)
        for key, default in _BASE_DEFAULTS.items():
            value = self.given_name if key == "name" else getattr(self, key)
            if value != default:
                config[key] = value
        if self._excluded_keys or self._excluded_names:
            config["exclude_from_weight_decay"] = {"var_list": list(self._excluded_keys),
                                                   "var_names": list(self._excluded_names)}
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        excluded = config.pop("exclude_from_weight_decay", None) or {}
        if not isinstance(excluded, dict) or set(excluded) - {"var_list", "var_names"}:
            raise ValueError(f"exclude_from_weight_decay must be a dict of var_list and "
                             f"var_names, got {excluded!r:.60}")
        optimizer = cls(**config)
        optimizer.exclude_from_weight_decay(**excluded)
        return optimizer

    def __repr__(self):
        return f"{type(self).__name__}({self.get_config()})"

    def current_learning_rate(self):
        """eta at the current update number."""
        rate = self.learning_rate
        return float(rate(self._iterations)) if isinstance(rate, Schedule) else rate

    # slots
    def build(self, parameters, backend):
        """Create the zero slots (velocity, ...) of every Parameter that lacks them."""
        self.backend = backend
        unknown = set(self._excluded_keys) - {parameter.key for parameter in parameters}
        if unknown:
            raise ValueError(f"exclude_from_weight_decay names {', '.join(sorted(unknown))[:80]}"
                             f", which the model has not: its parameters are "
                             f"{', '.join(p.key for p in parameters)[:120]}")
        for parameter in parameters:
            for slot in self.state_slot_names:
                if slot == "average" and slot not in parameter.slots:
                    # where Keras's average starts (overwritten at the first update)
                    parameter.slots[slot] = backend.zeros(parameter.value.shape,
                                                          parameter.value.dtype)
                    backend.copy_into(parameter.slots[slot], parameter.value)
                elif slot not in parameter.slots:
                    start = self._initial_slot_value(slot)
                    parameter.slots[slot] = backend.zeros(
                        parameter.value.shape, parameter.value.dtype) if not start else \
                        backend.asarray(np.full(parameter.value.shape, start),
                                        parameter.value.dtype)

    def _initial_slot_value(self, name):
        """Where the slot ``name`` starts: 0 (AdaGrad's accumulator may start higher)."""
        return 0.0

    # the update
    def apply(self, parameters):
        """One update of every Parameter from its ``grad``; t <- t + 1. A parameter that a
        :meth:`product_step` updated during this update's backward pass is not updated again
        (its constraint is still applied)."""
        backend = self.backend
        rate = self.current_learning_rate()
        stepped = self.__dict__.pop("_stepped", None)
        remaining = [p for p in parameters if id(p) not in stepped] if stepped else parameters
        steps = self.gradient_accumulation_steps
        if steps and (self._iterations + 1) % steps:
            for parameter in remaining:   # Keras's: no step, the gradient kept for the next
                self._elementwise(accumulate_span, parameter.slots["gradient_accumulator"],
                                  parameter.grad, parameter.value, parameter.l1, parameter.l2)
        else:
            if steps:   # each batch's penalty at its own weights (a constraint or an EMA
                # overwrite may move them between the batches of a step), as Keras sums them
                for parameter in remaining:
                    self._elementwise(accumulated_mean_span, parameter.grad,
                                      parameter.slots["gradient_accumulator"],
                                      parameter.value, parameter.l1, parameter.l2, steps)
            scales = self._clip_scales(remaining)
            if backend.launches_kernels:
                if self.clipvalue is not None:
                    for parameter in remaining:
                        self._elementwise(clipped_cost_gradient_span, parameter.grad,
                                          parameter.value, *self._penalty(parameter),
                                          self.clipvalue)
                self._kernel_update(remaining, rate, scales)
            else:
                for parameter, scale in zip(remaining, scales):
                    self._reference_update(parameter, rate, scale)
        if self.use_ema:
            self._update_moving_averages(parameters)
        for parameter in parameters:
            if parameter.constraint is not None:
                self._apply_constraint(parameter)
        self._iterations += 1

    def _update_number(self):
        """The number of steps taken before this update: the update count t - 1 of the
        rules (Adam's bias correction) and of the moving average, which with
        ``gradient_accumulation_steps`` counts the steps only, as Keras's
        ``optimizer.iterations`` (the learning-rate schedule counts every batch)."""
        return self.iterations

    def _elementwise(self, span, target, *arguments):
        """``span(first, last, target, *arguments)`` over every element of ``target`` (flat
        arrays of its shape; numbers in its precision): a kernel, or NumPy on the reference
        backend, where the bodies run as Python."""
        real = target.dtype.type
        arrays = [argument.reshape(-1) if hasattr(argument, "shape") else real(argument)
                  for argument in arguments]
        if self.backend.launches_kernels:
            self.backend.launch_1d(span, target.size, target.reshape(-1), *arrays,
                                   work=target.size // 8)
        else:
            _NUMPY_SPANS[span.__name__](target.reshape(-1), *arrays)

    def _update_moving_averages(self, parameters):
        """``use_ema``: Keras's moving average of each parameter after this update's step,
        and its overwriting of the parameters every ``ema_overwrite_frequency`` steps."""
        t = self._update_number()
        momentum = self.ema_momentum if t else 0.0   # Keras's first average is theta itself
        for parameter in parameters:
            self._elementwise(moving_average_span, parameter.slots["average"], parameter.value,
                              momentum)
        if self.ema_overwrite_frequency and (t + 1) % self.ema_overwrite_frequency == 0:
            self.finalize_variable_values(parameters)

    def finalize_variable_values(self, parameters):
        """Keras's ``optimizer.finalize_variable_values(var_list)``: with ``use_ema``, every
        parameter of ``parameters`` (``model.trainable_parameters``; Keras's
        ``model.trainable_weights``, arrays without state here, are refused in one line) takes
        its moving average, as ``fit`` does at its end; without, nothing changes."""
        if not self.use_ema:
            return
        parameters = list(parameters)
        for parameter in parameters:   # all checked before any weight changes
            if not isinstance(parameter, Parameter):
                # Keras's var_list are its variables, which hold no state here
                what = (f"an array of shape {tuple(parameter.shape)}"
                        if hasattr(parameter, "shape") else " ".join(repr(parameter).split()))
                raise ValueError(f"finalize_variable_values takes the model's parameters, "
                                 f"got {what[:60]}: dlcore's weight arrays carry no moving "
                                 f"average; pass model.trainable_parameters")
            if "average" not in parameter.slots:
                raise ValueError(f"{parameter.key} has no moving average yet: the optimiser "
                                 f"averages the parameters of the model it trains (fit or "
                                 f"train_on_batch first)")
        for parameter in parameters:
            self.backend.copy_into(parameter.value, parameter.slots["average"])

    def product_step(self, parameter):
        """The step of this update for ``parameter`` taken straight from the product that its
        gradient is (a Dense kernel's dL/dW = x' dL/dz), as a callable ``step(x, grad_z,
        grad_x=None)`` that returns whether it took it
        (:meth:`dlcore.backend.base.Backend.fuses_weight_step` decides; when it did, it put
        the layer's dL/dx, from the kernel before the step, into ``grad_x`` if given); or
        None where the rule needs the gradient itself. The training loop hands the steps to
        the layers for one backward pass, then calls :meth:`apply`, which leaves the
        parameters stepped out. Only :class:`SGD` has one."""
        return None

    def _mark_stepped(self, parameter):
        self.__dict__.setdefault("_stepped", set()).add(id(parameter))

    def _reference_update(self, parameter, rate, scale):
        g = scale * self._cost_gradient(parameter)
        if self.clipvalue is not None:
            g = np.clip(g, -self.clipvalue, self.clipvalue)
        parameter.value *= self._decay_factor(rate, parameter)   # after g: the decay is not in it
        self.reference_rule(parameter.value, g, parameter.slots, rate)

    def _decay_factor(self, rate, parameter):
        """keep = 1 - eta lambda, the factor ``parameter`` is multiplied by before the rule's
        step (the class docstring's ``weight_decay``); 1 without it, or where
        :meth:`exclude_from_weight_decay` leaves the parameter out."""
        return 1.0 - rate * self.weight_decay if self.weight_decay and self._decays(parameter) \
            else 1.0

    def reference_rule(self, theta, g, slots, rate):
        """NumPy: update ``theta`` and the ``slots`` in place from the effective gradient g."""
        raise NotImplementedError

    def _kernel_update(self, parameters, rate, scales):
        """``body`` over every parameter in one launch (the CPU makes it one parallel region)."""
        tensors = self._flat_tensors(parameters)
        if not tensors:
            return
        # the settings in the parameters' own precision: a float64 network steps in float64
        # throughout, a float32 one in float32 (as fast as before)
        real = getattr(tensors, "real", np.float32)
        self.backend.launch_tensors(self.body, tensors,
                                    (real(rate), *self._kernel_hyperparameters(real)),
                                    self._tensor_scalars(parameters, scales, rate, real))

    def _tensor_scalars(self, parameters, scales, rate, real):
        """The (scale, l1, l2, keep) of each parameter as an (n, 4) array of type ``real``, the
        same array again while they do not change (building it cost ~5 us at every batch)."""
        # with clipvalue the gradient holds the penalty already (clipped_cost_gradient_span)
        penalties = [(0.0, 0.0) if self.clipvalue is not None else self._penalty(parameter)
                     for parameter in parameters]
        settings = (real, *scales, *(self._decay_factor(rate, parameter)
                                     for parameter in parameters),
                    *(value for penalty in penalties for value in penalty))
        cached = self.__dict__.get("_scalars")
        if cached is None or cached[0] != settings:
            scalars = np.array([(scale, *penalty, self._decay_factor(rate, parameter))
                                for parameter, scale, penalty in zip(parameters, scales,
                                                                     penalties)],
                               dtype=real).reshape(len(parameters), 4)
            self._scalars = cached = (settings, scalars)
        return cached[1]

    def _flat_tensors(self, parameters):
        """``((value, grad, slot, slot, slot), ...)``: each parameter's arrays as flat views (its
        value again for a slot the rule does not have), with ``real`` the NumPy type of the
        kernel's settings (float64 for a float64 network). The same :class:`Tensors` object while
        the parameters keep their arrays, so that the backend can keep what it derived from it
        (the CPU: the arrays' addresses, which cost microseconds each to look up)."""
        names = self._kernel_slot_names()
        sources = tuple(array for parameter in parameters
                        for array in (parameter.value, parameter.grad,
                                      *(parameter.slots[name] for name in names if name)))
        cached = getattr(self, "_tensor_views", None)
        if cached is None or len(cached[0]) != len(sources) \
                or any(old is not new for old, new in zip(cached[0], sources)):
            tensors = []
            for parameter in parameters:
                value = parameter.value.reshape(-1)
                slots = [parameter.slots[name].reshape(-1) if name else value
                         for name in names]
                slots += [value] * (3 - len(slots))  # unused slot arguments
                tensors.append((value, parameter.grad.reshape(-1), *slots))
            views = Tensors(tensors)
            # the type of their settings: float64 where a parameter is (the widest)
            views.real = np.result_type(np.float32, *(array.dtype for array in sources)).type
            self._tensor_views = cached = (sources, views)
        return cached[1]

    def _kernel_slot_names(self):
        """The slots ``body`` takes, in the order of its arguments; None for one that this
        rule's settings do not keep (theta's own array takes its place, never written)."""
        return self.slot_names

    def _kernel_hyperparameters(self, real):
        """The three rule-specific scalar arguments of ``body``, of the type ``real`` of the
        parameters (np.float32 or np.float64)."""
        raise NotImplementedError

    # clipping
    def _clip_scales(self, parameters):
        if self.clipnorm is None and self.global_clipnorm is None:
            return [1.0] * len(parameters)
        norms = [math.sqrt(self._squared_norm(p)) for p in parameters]
        if self.global_clipnorm is not None:
            total = math.sqrt(sum(n * n for n in norms))
            factor = min(1.0, self.global_clipnorm / total) if total > 0 else 1.0
            norms = [n * factor for n in norms]
            scales = [factor] * len(parameters)
        else:
            scales = [1.0] * len(parameters)
        if self.clipnorm is not None:
            scales = [s * (min(1.0, self.clipnorm / n) if n > 0 else 1.0)
                      for s, n in zip(scales, norms)]
        return scales

    def _squared_norm(self, parameter):
        """||g||^2 of the gradient of the cost for ``parameter``, weight decay included."""
        backend = self.backend
        if not backend.launches_kernels:
            return float(np.sum(self._cost_gradient(parameter).astype(np.float64) ** 2))
        flat = parameter.grad.reshape(-1)
        blocks = -(-flat.shape[0] // NORM_BLOCK)
        partial = backend.zeros((blocks,), np.float64)
        l1, l2 = self._penalty(parameter)
        backend.launch_rows(squared_norm_blocks, blocks, 1, flat, parameter.value.reshape(-1),
                            flat.dtype.type(l1), flat.dtype.type(l2), partial, NORM_BLOCK)
        return float(np.sum(backend.to_numpy(partial)))

    def _penalty(self, parameter):
        """(lambda_1, lambda_2) of ``parameter``'s regulariser still to add to its gradient:
        none with ``gradient_accumulation_steps``, whose mean gradient holds each batch's."""
        return (0.0, 0.0) if self.gradient_accumulation_steps else (parameter.l1, parameter.l2)

    def _cost_gradient(self, parameter):
        """NumPy: g + lambda_2 theta + lambda_1 sign(theta)."""
        return _numpy_cost_gradient(parameter.grad, parameter.value, *self._penalty(parameter))

    # constraints
    def _apply_constraint(self, parameter):
        constraint, axis, theta = parameter.constraint, parameter.units_axis, parameter.value
        shape = theta.shape
        n_units = shape[axis]
        n_inputs = int(np.prod(shape)) // n_units
        if not self.backend.launches_kernels:
            units = np.moveaxis(theta, axis, 0).reshape(n_units, -1).copy()
            constraint.apply(units)
            np.moveaxis(theta, axis, 0)[...] = units.reshape(np.moveaxis(theta, axis, 0).shape)
            return
        # Dense (in, out): unit u is column u (stride 1, inputs every `out`); Conv2D: row u.
        unit_stride, input_stride = (1, n_units) if axis == len(shape) - 1 and axis > 0 \
            else (n_inputs, 1)
        self.backend.launch_1d(max_norm_units, n_units, theta.reshape(-1), n_inputs,
                               unit_stride, input_stride, theta.dtype.type(constraint.max_value),
                               work=theta.size)

    # state for the model file
    def get_state(self, parameters):
        """``{"iterations": t, "slots": {layer: {weight: {slot: array}}}}`` as NumPy."""
        slots = {}
        for parameter in parameters:
            layer, weight = parameter.key.split("/")
            slots.setdefault(layer, {})[weight] = {
                name: np.array(self.backend.to_numpy(parameter.slots[name]))
                for name in self.state_slot_names}
        return {"iterations": int(self._iterations), "slots": slots}

    def slot_problem(self, name, array):
        """What is wrong with the values of the stored slot ``name`` (``"holds 3 negative
        values, ..."``), or None: a slot of squared gradients is never negative."""
        if name not in self.squared_slots:
            return None
        negative = int(np.count_nonzero(np.asarray(array) < 0))
        if not negative:
            return None
        kind = _NONNEGATIVE_SLOT_KINDS.get(name, "mean of squared gradients")
        return (f"holds {negative} negative value{'s' if negative > 1 else ''}, which a "
                f"{kind} never does")

    def slots_problem(self, slots):
        """What is wrong between the stored slots of one parameter (``slots[name]``: arrays of
        its shape, each passed by :meth:`slot_problem`), or None; :class:`RMSProp`'s centred
        mean gradient squared is never above the mean square."""
        return None

    def check_state(self, state, parameters):
        """The slot arrays of ``state`` for ``parameters``, shape-checked (ValueError)."""
        found = {}
        slots = state.get("slots", {})
        for parameter in parameters:
            layer, weight = parameter.key.split("/")
            for name in self.state_slot_names:
                try:
                    array = slots[layer][weight][name]
                except (KeyError, TypeError):
                    raise ValueError(f"optimizer slot {parameter.key}/{name} is missing") \
                        from None
                if tuple(array.shape) != tuple(parameter.value.shape):
                    raise ValueError(f"optimizer slot {parameter.key}/{name} has shape "
                                     f"{array.shape}; expected {tuple(parameter.value.shape)}")
                problem = self.slot_problem(name, array)
                if problem:
                    raise ValueError(f"optimizer slot {parameter.key}/{name} {problem}")
                found[(parameter.key, name)] = array
            problem = self.slots_problem({name: found[(parameter.key, name)]
                                          for name in self.state_slot_names})
            if problem:
                raise ValueError(f"optimizer slots {parameter.key}/{problem}")
        return int(state.get("iterations", 0)), found


#: what the never-negative slots other than a mean of squared gradients are
_NONNEGATIVE_SLOT_KINDS = {"accumulator": "sum of squared gradients",
                           "u": "running maximum of absolute gradients",
                           "accumulated_delta_var": "mean of squared steps"}


def _name_list(value, name):
    """``value`` (None, a list or tuple) as a list; a lone string refused in one line (Keras
    would take each of its letters as a name)."""
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, (list, tuple, set, frozenset)):
        if isinstance(value, str):
            raise ValueError(f"exclude_from_weight_decay's {name} takes a list, got "
                             f"{value!r:.60}: write {name}=[{value!r:.60}]")
        raise ValueError(f"exclude_from_weight_decay's {name} takes a list, got "
                         f"{_described(value)}")
    return list(value)


def _described(item):
    """``item`` in a few words on one line: an array by its shape (a weight array of
    ``model.trainable_weights``, Keras's way, has no name here to match), else its repr."""
    if hasattr(item, "shape") and hasattr(item, "dtype"):
        return (f"an array of shape {tuple(item.shape)}: dlcore's weight arrays carry no "
                f"name, so pass their keys ('dense/bias') or var_names=['bias']")
    return " ".join(repr(item).split())[:60]


#: how SGD's momentum keeps its velocity: the lecture's (and PyTorch's) or Keras's
MOMENTUM_FORMS = ("dlcore", "keras")


class SGD(Optimizer):
    """Stochastic gradient descent, with momentum mu and Nesterov's variant (module docstring).

    Parameters
    ----------
    learning_rate : float or Schedule (eta)
    momentum : float in [0, 1) (mu; 0 is plain SGD)
    nesterov : bool
    clipnorm, global_clipnorm, lr, weight_decay : see :class:`Optimizer`
    **options : Keras 3's ``clipvalue``, ``use_ema``, ``ema_momentum``,
        ``ema_overwrite_frequency``, ``gradient_accumulation_steps``, ``name``: see
        :class:`Optimizer`
    momentum_form : "dlcore" (Delta <- mu Delta + g, theta <- theta - eta Delta: lecture
        "Supervised learning", "Stochastic Gradient Descent with Momentum", PyTorch) or
        "keras" (v <- mu v - eta g, theta <- theta + v: lecture "Deep learning I", "SGD with
        momentum", whose alpha is mu and epsilon eta; Keras); the same steps at a constant
        rate, Keras's (and "Deep learning I"'s) under a schedule only with "keras", which a
        model compiled from a Keras file gets. The ``velocity`` slot holds Delta or v.
    """

    name = "sgd"
    slot_names = ("velocity",)
    body = staticmethod(sgd_span)

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, clipnorm=None,
                 global_clipnorm=None, lr=None, momentum_form="dlcore", weight_decay=None,
                 **options):
        super().__init__(learning_rate, clipnorm, global_clipnorm, lr, weight_decay,
                         **options)
        self.momentum = check_float(momentum, "momentum", low=0.0, high=1.0, high_open=True)
        self.nesterov = bool(nesterov)
        if momentum_form not in MOMENTUM_FORMS:
            raise ValueError(f"momentum_form must be 'dlcore' (the lecture's Delta <- mu Delta "
                             f"+ g, as PyTorch) or 'keras' (Keras's v <- mu v - eta g), got "
                             f"{momentum_form!r}")
        self.momentum_form = momentum_form

    def _hyperparameters(self):
        return {"momentum": self.momentum, "nesterov": self.nesterov,
                "momentum_form": self.momentum_form}

    def reference_rule(self, theta, g, slots, rate):
        if self.momentum == 0:
            theta -= rate * g
            return
        velocity = slots["velocity"]
        velocity *= self.momentum
        if self.momentum_form == "keras":
            velocity -= rate * g
            theta += self.momentum * velocity - rate * g if self.nesterov else velocity
            return
        velocity += g
        theta -= rate * (g + self.momentum * velocity) if self.nesterov else rate * velocity

    def _kernel_hyperparameters(self, real):
        return (real(self.momentum), self.nesterov, real(self.momentum_form == "keras"))

    def product_step(self, parameter):
        # the plain rule only: Nesterov's needs g itself, clipping needs every gradient's norm
        # first, weight decay the parameter before the step (a regulariser's and the
        # decoupled one); Keras's form scales g by the rate before it enters the velocity,
        # which the product does not
        if (self.nesterov or self.clipnorm is not None or self.global_clipnorm is not None
                or self.clipvalue is not None or self.gradient_accumulation_steps
                or self.momentum_form == "keras" or self.weight_decay
                or parameter.l1 or parameter.l2 or "velocity" not in parameter.slots
                or not getattr(getattr(self, "backend", None), "launches_kernels", False)):
            return None
        return _ProductStep(self, parameter)


class _ProductStep:
    """:meth:`SGD.product_step`: the momentum update of one parameter from the product x' g
    (:meth:`dlcore.backend.base.Backend.dense_weight_step`), at this update's learning rate."""

    __slots__ = ("optimizer", "parameter")

    def __init__(self, optimizer, parameter):
        self.optimizer, self.parameter = optimizer, parameter

    def __call__(self, x, grad_z, grad_x=None):
        optimizer, parameter = self.optimizer, self.parameter
        velocity = parameter.slots["velocity"]
        if not optimizer.backend.fuses_weight_step(velocity, x.shape[0]):
            return False
        optimizer.backend.dense_weight_step(x, grad_z, parameter.value, velocity,
                                            optimizer.current_learning_rate(),
                                            optimizer.momentum, grad_x)
        optimizer._mark_stepped(parameter)
        return True


class AdaGrad(Optimizer):
    """AdaGrad (Duchi et al. 2011): per-weight rates shrinking with the accumulated squared
    gradients.

    Parameters
    ----------
    learning_rate : float or Schedule (eta; 0.01)
    epsilon : float > 0 (1e-7)
    initial_accumulator_value : float >= 0, where s starts (Duchi's 0, the default; Keras's
        ``Adagrad`` 0.1)
    epsilon_form : "dlcore" divides by sqrt(s) + eps (PyTorch's), "keras" by sqrt(s + eps),
        Keras's step; a model compiled from a Keras file gets "keras"
    clipnorm, global_clipnorm, lr, weight_decay, **options : see :class:`Optimizer`
    """

    name = "adagrad"
    slot_names = ("accumulator",)
    squared_slots = ("accumulator",)
    body = staticmethod(adagrad_span)

    def __init__(self, learning_rate=0.01, epsilon=1e-7, clipnorm=None, global_clipnorm=None,
                 lr=None, weight_decay=None, initial_accumulator_value=0.0,
                 epsilon_form="dlcore", **options):
        super().__init__(learning_rate, clipnorm, global_clipnorm, lr, weight_decay,
                         **options)
        self.epsilon = check_float(epsilon, "epsilon", low=0.0, low_open=True)
        self.initial_accumulator_value = check_float(
            initial_accumulator_value, "initial_accumulator_value", low=0.0)
        self.epsilon_form = _check_epsilon_form(epsilon_form)

    def _hyperparameters(self):
        return {"epsilon": self.epsilon,
                "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon_form": self.epsilon_form}

    def _initial_slot_value(self, name):
        # the sum of squares only: gradient_accumulation_steps' accumulator starts at 0
        return self.initial_accumulator_value if name == "accumulator" else 0.0

    def reference_rule(self, theta, g, slots, rate):
        slots["accumulator"] += g * g
        if self.epsilon_form == "keras":
            theta -= rate * g / np.sqrt(slots["accumulator"] + self.epsilon)
        else:
            theta -= rate * g / (np.sqrt(slots["accumulator"]) + self.epsilon)

    def _kernel_hyperparameters(self, real):
        inside = self.epsilon_form == "keras"
        return (real(0 if inside else self.epsilon), real(self.epsilon if inside else 0),
                real(0))


#: where the optimisers with an epsilon add it: dlcore's (the papers') or Keras's
EPSILON_FORMS = ("dlcore", "keras")


def _check_epsilon_form(value):
    if value not in EPSILON_FORMS:
        raise ValueError(f"epsilon_form must be 'dlcore' (the papers' rule, as PyTorch) or "
                         f"'keras' (Keras's placement of epsilon), got {value!r}")
    return value


class RMSProp(Optimizer):
    """RMSProp (Tieleman & Hinton 2012; lecture "Deep learning I", stochastic gradient
    descent's "other algorithms": "Adaptive learning rates: AdaGrad, RMSProp, Adam"): each
    weight's rate divided by a running RMS of its gradients; optionally centred and with
    momentum, as Keras 3's ``RMSprop`` and PyTorch's ``torch.optim.RMSprop`` have them. For a
    parameter theta and its gradient g (any one shape; the slots s, a, b of that shape)::

        s <- rho s + (1 - rho) g^2                        (the mean square, ``mean_square``)
        centred:  a <- rho a + (1 - rho) g                (the mean gradient,
                  s - a^2 in s's place below               ``average_gradient``; Graves 2013)
        step = g / (sqrt(s) + eps)                        (``epsilon_form`` "dlcore", PyTorch's)
             = g / sqrt(s + eps)                          ("keras", Keras's)
        momentum mu = 0:  theta <- theta - eta step
        momentum mu > 0:  b <- mu b + step;  theta <- theta - eta b        ("dlcore", PyTorch's)
                          b <- mu b + eta step;  theta <- theta - b        ("keras", Keras's)

    Centring divides by the gradients' running standard deviation instead of their RMS
    (s - a^2, their variance, is never above s). The momentum is the lecture's (lecture "Deep
    learning I", "SGD with momentum": v <- alpha v - eps g, theta <- theta + v) taken on the
    scaled step; its two forms, as :class:`SGD`'s ``momentum_form``, take the same steps at a
    constant rate, and only Keras's follows Keras under a schedule (its b keeps each step
    scaled by the rate of its own update, PyTorch's by the current one). One setting,
    ``epsilon_form``, takes the whole of Keras's step or of PyTorch's: nobody mixes them, and
    a file then holds the momentum as the one setting an older dlcore names when it refuses
    it (a form of its own would read there as a damaged file).

    Parameters
    ----------
    learning_rate : float or Schedule (eta; 0.001)
    rho : float in [0, 1) (0.9)
    epsilon : float > 0 (1e-7)
    momentum : float in [0, 1) (mu; 0.0: none, no ``momentum`` slot)
    centered : bool (False; True keeps the ``average_gradient`` slot)
    epsilon_form : "dlcore" (sqrt(s) + eps and b <- mu b + step: PyTorch's step) or "keras"
        (sqrt(s + eps) and b <- mu b + eta step: Keras's, module docstring); a model compiled
        from a Keras file gets "keras"; the ``momentum`` slot holds that b
    clipnorm, global_clipnorm, lr, weight_decay, **options : see :class:`Optimizer`
    """

    name = "rmsprop"
    squared_slots = ("mean_square",)
    body = staticmethod(rmsprop_span)

    def __init__(self, learning_rate=0.001, rho=0.9, epsilon=1e-7, clipnorm=None,
                 global_clipnorm=None, lr=None, epsilon_form="dlcore", weight_decay=None,
                 momentum=0.0, centered=False, **options):
        super().__init__(learning_rate, clipnorm, global_clipnorm, lr, weight_decay,
                         **options)
        self.rho = check_float(rho, "rho", low=0.0, high=1.0, high_open=True)
        self.epsilon = check_float(epsilon, "epsilon", low=0.0, low_open=True)
        self.epsilon_form = _check_epsilon_form(epsilon_form)
        self.momentum = check_float(momentum, "momentum", low=0.0, high=1.0, high_open=True)
        if not isinstance(centered, (bool, np.bool_)):
            raise TypeError(f"centered must be True or False, got {centered!r:.60}")
        self.centered = bool(centered)

    @property
    def slot_names(self):
        """The mean square; the momentum's b and the centred rule's mean gradient a where
        those are on."""
        return ("mean_square", *(("momentum",) if self.momentum else ()),
                *(("average_gradient",) if self.centered else ()))

    def _kernel_slot_names(self):
        return ("mean_square", "momentum" if self.momentum else None,
                "average_gradient" if self.centered else None)

    def slots_problem(self, slots):
        """Centred: a^2 above s, beyond float32 rounding (a weighted mean's square is at most
        the mean of the squares, the weights summing to at most 1), which no run gives: the
        root of s - a^2 would be NaN at the next update."""
        if not self.centered:
            return None
        mean_gradient = np.asarray(slots["average_gradient"], np.float64)
        mean_square = np.asarray(slots["mean_square"], np.float64)
        # 1/128 relative: each running mean's float32 rounding, damped by rho, stays below
        # 1e-3 of it for rho up to 0.9999; 1e-30 absolute: s flushed to 0 below 1.2e-38
        # where a (its root's size) may be kept
        above = int(np.count_nonzero(mean_gradient * mean_gradient
                                     > mean_square * (1 + 2.0 ** -7) + 1e-30))
        if not above:
            return None
        return (f"average_gradient has {above} value{'s' if above > 1 else ''} whose square "
                f"is above the mean_square's, which a centred RMSprop's mean gradient never "
                f"has (its variance s - a^2 would be negative)")

    def _hyperparameters(self):
        # the momentum and the centring where they are on only: a file of a plain RMSProp
        # reads as before, in older dlcores too
        return {"rho": self.rho, "epsilon": self.epsilon, "epsilon_form": self.epsilon_form,
                **({"momentum": self.momentum} if self.momentum else {}),
                **({"centered": True} if self.centered else {})}

    def reference_rule(self, theta, g, slots, rate):
        s = slots["mean_square"]
        s *= self.rho
        s += (1 - self.rho) * g * g
        spread = s
        if self.centered:
            a = slots["average_gradient"]
            a *= self.rho
            a += (1 - self.rho) * g
            spread = s - a * a
        root = np.sqrt(spread + self.epsilon) if self.epsilon_form == "keras" \
            else np.sqrt(spread) + self.epsilon
        if not self.momentum:
            theta -= rate * g / root
            return
        b = slots["momentum"]
        b *= self.momentum
        if self.epsilon_form == "keras":
            b += rate * g / root
            theta -= b
        else:
            b += g / root
            theta -= rate * b

    def _kernel_hyperparameters(self, real):
        inside = self.epsilon_form == "keras"
        rate = self.current_learning_rate()
        inner, outer = (rate, 1.0) if inside else (1.0, rate)
        # 1 - rho here, in float64, as the reference, PyTorch and Keras compute it
        coefficients = np.array((1 - self.rho, 0 if inside else self.epsilon,
                                 self.epsilon if inside else 0, self.momentum,
                                 float(self.centered), inner, outer), dtype=real)
        return (real(self.rho), self.backend.asarray(coefficients, dtype=real), real(0))


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015; lecture "Deep learning I", stochastic gradient descent's "other
    algorithms": "Adaptive learning rates: AdaGrad, RMSProp, Adam"): momentum on
    the gradient and on its square, with bias correction. For a parameter theta and its
    gradient g (any one shape, the slots m, v, v_max of that shape), at update t = 1, 2, ...::

        m <- b1 m + (1 - b1) g,         v <- b2 v + (1 - b2) g^2
        theta <- theta - eta m^ / (sqrt(v^) + eps),   m^ = m / (1 - b1^t),  v^ = v / (1 - b2^t)

    ``amsgrad`` (Reddi, Kale & Kumar 2018, as Keras and PyTorch): v_max <- max(v_max, v), the
    largest v so far, divides in v's place (v^ = v_max / (1 - b2^t)), so that a step never
    grows because the gradients' squares shrank.

    ``epsilon_form``: "dlcore" adds eps to sqrt(v^) (Kingma & Ba's Algorithm 1, PyTorch's),
    "keras" to sqrt(v) before its bias correction, Keras's step (module docstring); a model
    compiled from a Keras file gets "keras".

    ``weight_decay`` (see :class:`Optimizer`): Adam with it is AdamW, the one computation under
    either name, as in Keras (whose AdamW is its Adam with a default weight decay).

    The variant :class:`Nadam` changes the coefficients of that step only
    (:meth:`_coefficients`); the one rule, :meth:`reference_rule` and the kernel body, takes
    them all.

    Parameters
    ----------
    learning_rate : float or Schedule (eta; 0.001)
    beta_1, beta_2 : floats in [0, 1) (b1, b2; 0.9 and 0.999)
    epsilon : float > 0 (eps; 1e-7, Keras's)
    epsilon_form : "dlcore" (the default) or "keras", as above
    amsgrad : bool (False), as above
    clipnorm, global_clipnorm, lr, weight_decay, **options : see :class:`Optimizer`
    """

    name = "adam"
    #: v_max, AMSGrad's largest v so far, is a mean of squared gradients too
    squared_slots = ("v", "v_max")
    body = staticmethod(adam_span)

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 clipnorm=None, global_clipnorm=None, lr=None, epsilon_form="dlcore",
                 amsgrad=False, weight_decay=None, **options):
        super().__init__(learning_rate, clipnorm, global_clipnorm, lr, weight_decay,
                         **options)
        self.beta_1 = check_float(beta_1, "beta_1", low=0.0, high=1.0, high_open=True)
        self.beta_2 = check_float(beta_2, "beta_2", low=0.0, high=1.0, high_open=True)
        self.epsilon = check_float(epsilon, "epsilon", low=0.0, low_open=True)
        self.epsilon_form = _check_epsilon_form(epsilon_form)
        if not isinstance(amsgrad, (bool, np.bool_)):
            raise TypeError(f"amsgrad must be True or False, got {amsgrad!r:.60}")
        self.amsgrad = bool(amsgrad)

    @property
    def slot_names(self):
        """m and v; AMSGrad's v_max too."""
        return ("m", "v", "v_max") if self.amsgrad else ("m", "v")

    def _hyperparameters(self):
        return {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                "epsilon_form": self.epsilon_form, "amsgrad": self.amsgrad}

    def _first_moment_weights(self, t, real=np.float64):
        """(a, b) of the step's m^ = a m + b g at update t: Adam's a = 1 / (1 - b1^t), b = 0."""
        return 1 / self._bias_correction(self.beta_1, t, real), 0.0

    def _bias_correction(self, beta, t, real):
        """1 - beta^t; in Keras's form in the weights' precision ``real``, as Keras computes
        it: float32's 1 - 0.999 is 1.3e-5 off, which Keras's steps carry (6.4e-6 of the
        first)."""
        if self.epsilon_form == "keras":
            return float(real(1) - real(beta) ** real(t))
        return 1 - beta ** t

    def _coefficients(self, real=np.float64):
        """(a, b, c, eps, amsgrad) of this update's step theta <- theta - rate (a m + b g) /
        (sqrt(c v) + eps) (v: v_max with AMSGrad), taken after the weight decay, then the
        moments' 1 - b1 and 1 - b2, computed here before their rounding to the kernel's
        precision, as PyTorch and Keras compute them (``real``: the weights' precision, which
        Keras's form computes its bias corrections in)."""
        t = self._update_number() + 1
        c2 = 1 / self._bias_correction(self.beta_2, t, real)
        return (*self._first_moment_weights(t, real), c2, self._epsilon(c2),
                float(self.amsgrad), 1 - self.beta_1, 1 - self.beta_2)

    def _epsilon(self, c2):
        """The epsilon added to sqrt(v^), v^ = c2 v: eps, or for Keras's form eps sqrt(c2)
        (Keras's eps on sqrt(v))."""
        return self.epsilon * math.sqrt(c2) if self.epsilon_form == "keras" else self.epsilon

    def reference_rule(self, theta, g, slots, rate):
        m, v = slots["m"], slots["v"]
        m *= self.beta_1
        m += (1 - self.beta_1) * g
        v *= self.beta_2
        v += (1 - self.beta_2) * g * g
        if self.amsgrad:
            np.maximum(slots["v_max"], v, out=slots["v_max"])
            v = slots["v_max"]
        weight_m, weight_g, c2, epsilon = self._coefficients(theta.dtype.type)[:4]
        theta -= rate * (weight_m * m + weight_g * g) / (np.sqrt(v * c2) + epsilon)

    def _kernel_hyperparameters(self, real):
        coefficients = np.array(self._coefficients(real), dtype=real)
        return (real(self.beta_1), real(self.beta_2),
                self.backend.asarray(coefficients, dtype=real))


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter 2019, "Decoupled weight decay regularization"; Keras 3's
    ``AdamW``): Adam whose weight decay shrinks the weights themselves instead of entering the
    gradient (where Adam's division by sqrt(v^) would weaken it on the weights with large
    gradients). With lambda = ``weight_decay``, at each update, before Adam's step::

        theta <- theta - eta lambda theta            (then Adam's step, with the g of the
                                                      weights before the decay)

    on every parameter, biases included, as Keras (which has no exclusion by default). An L2
    regulariser on a layer still adds lambda_2 theta to g, as in Keras.

    That decay is every optimiser's ``weight_decay`` (:class:`Optimizer`): AdamW is
    ``Adam(weight_decay=...)``, the same computation, named apart (as Keras names its AdamW)
    for its default 0.004 and its place second among the arguments.

    Parameters
    ----------
    learning_rate, beta_1, beta_2, epsilon, amsgrad, clipnorm, global_clipnorm, lr,
    epsilon_form : see :class:`Adam`
    **options : Keras 3's ``clipvalue``, ``use_ema``, ``ema_momentum``,
        ``ema_overwrite_frequency``, ``gradient_accumulation_steps``, ``name``: see
        :class:`Optimizer`
    weight_decay : float >= 0 (lambda; Keras's default 0.004)
    """

    name = "adamw"

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, clipnorm=None, global_clipnorm=None, lr=None,
                 epsilon_form="dlcore", amsgrad=False, **options):
        # a number, as Keras's AdamW requires: None would be Adam's "no decay"
        super().__init__(learning_rate, beta_1, beta_2, epsilon, clipnorm, global_clipnorm, lr,
                         epsilon_form, amsgrad,
                         weight_decay=check_float(weight_decay, "weight_decay", low=0.0),
                         **options)


#: Keras's Nadam momentum schedule mu_t = b1 (1 - 0.5 * 0.96^t): 0.96^t falls below float64's
#: resolution beside 1 after this many updates, and the factors after it are 1
_MOMENTUM_SCHEDULE_SETTLED = 1000


class Nadam(Adam):
    """Nadam (Dozat 2016, "Incorporating Nesterov momentum into Adam"), as Keras 3 computes it:
    Adam whose step looks ahead along the momentum, as Nesterov's does for SGD (lecture "Deep
    learning I", stochastic gradient descent's "other algorithms": "Nesterov momentum",
    "Adam"). With the momentum schedule

        mu_t = b1 (1 - 0.5 * 0.96^t),   P_t = mu_1 mu_2 ... mu_t

    at update t = 1, 2, ... (m, v as Adam's; all arrays of theta's shape)::

        m^ = mu_(t+1) m / (1 - P_t mu_(t+1)) + (1 - mu_t) g / (1 - P_t)
        v^ = v / (1 - b2^t)      (1 - b2^t in the weights' precision, as Keras's)
        theta <- theta - eta m^ / (sqrt(v^) + eps)

    Keras keeps P_t as a variable; it follows from t, and dlcore computes it (no state beyond
    m and v), in float64 where Keras's is a float32 running product: 20 steps stay within one
    float32 ulp of Keras's either way (with Keras's float32 product, tried, the largest
    difference stays that ulp, which the order of Keras's other float32 operations makes,
    and that order differs between Keras's backends). Keras adds eps to sqrt(v^) here, as
    dlcore's Adam does: there is no ``epsilon_form`` (nor ``amsgrad``). PyTorch's ``NAdam``
    differs: its schedule is 0.96^(0.004 t).

    Parameters
    ----------
    learning_rate, beta_1, beta_2, epsilon, clipnorm, global_clipnorm, lr, weight_decay : see
        :class:`Adam`
    **options : Keras 3's ``clipvalue``, ``use_ema``, ``ema_momentum``,
        ``ema_overwrite_frequency``, ``gradient_accumulation_steps``, ``name``: see
        :class:`Optimizer`
    """

    name = "nadam"

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 clipnorm=None, global_clipnorm=None, lr=None, weight_decay=None, **options):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, clipnorm, global_clipnorm, lr,
                         weight_decay=weight_decay, **options)

    def _hyperparameters(self):
        return {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}

    def _epsilon(self, c2):
        return self.epsilon

    def _bias_correction(self, beta, t, real):
        # Keras's rule, which Keras computes in the weights' precision (Adam's Keras form)
        return float(real(1) - real(beta) ** real(t))

    def momentum_schedule(self, t):
        """(mu_t, P_t) of the class docstring, for update t >= 1."""
        steps = np.arange(1, min(t, _MOMENTUM_SCHEDULE_SETTLED) + 1, dtype=np.float64)
        settled = float(np.prod(1.0 - 0.5 * 0.96 ** steps))
        return self.beta_1 * (1.0 - 0.5 * 0.96 ** t), self.beta_1 ** t * settled

    def _first_moment_weights(self, t, real=np.float64):
        """(a, b) = (mu_(t+1) / (1 - P_t mu_(t+1)), (1 - mu_t) / (1 - P_t)), in float64."""
        mu_t, product = self.momentum_schedule(t)
        mu_next = self.beta_1 * (1.0 - 0.5 * 0.96 ** (t + 1))
        return mu_next / (1 - product * mu_next), (1 - mu_t) / (1 - product)


class Adamax(Optimizer):
    """Adamax (Kingma & Ba 2015, section 7.1; Keras 3's ``Adamax``): Adam with the infinity
    norm of the gradients in place of their root mean square. For a parameter theta and its
    gradient g (the slots m, u of theta's shape), at update t = 1, 2, ...::

        m <- b1 m + (1 - b1) g,       u <- max(b2 u, |g|)
        theta <- theta - eta m / ((1 - b1^t) (u + eps))

    Keras's step (eps added to u); PyTorch's ``Adamax`` adds it to |g| inside the maximum.

    Parameters
    ----------
    learning_rate : float or Schedule (eta; Keras's default 0.001)
    beta_1, beta_2 : float in [0, 1) (0.9, 0.999)
    epsilon : float > 0 (1e-7)
    clipnorm, global_clipnorm, lr, weight_decay : see :class:`Optimizer`
    **options : Keras 3's ``clipvalue``, ``use_ema``, ``ema_momentum``,
        ``ema_overwrite_frequency``, ``gradient_accumulation_steps``, ``name``: see
        :class:`Optimizer`
    """

    name = "adamax"
    slot_names = ("m", "u")
    #: u, the running maximum of |g|, is never negative
    squared_slots = ("u",)
    body = staticmethod(adamax_span)

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 clipnorm=None, global_clipnorm=None, lr=None, weight_decay=None, **options):
        super().__init__(learning_rate, clipnorm, global_clipnorm, lr, weight_decay,
                         **options)
        self.beta_1 = check_float(beta_1, "beta_1", low=0.0, high=1.0, high_open=True)
        self.beta_2 = check_float(beta_2, "beta_2", low=0.0, high=1.0, high_open=True)
        self.epsilon = check_float(epsilon, "epsilon", low=0.0, low_open=True)

    def _hyperparameters(self):
        return {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}

    def _correction(self):
        """1 - b1^t of this update."""
        return 1 - self.beta_1 ** (self._update_number() + 1)

    def reference_rule(self, theta, g, slots, rate):
        m, u = slots["m"], slots["u"]
        m *= self.beta_1
        m += (1 - self.beta_1) * g
        np.maximum(self.beta_2 * u, np.abs(g), out=u)
        theta -= rate * m / (self._correction() * (u + self.epsilon))

    def _kernel_hyperparameters(self, real):
        coefficients = np.array((self._correction(), self.epsilon), dtype=real)
        return (real(self.beta_1), real(self.beta_2),
                self.backend.asarray(coefficients, dtype=real))


class Adadelta(Optimizer):
    """Adadelta (Zeiler 2012; Keras 3's ``Adadelta``): RMSProp whose step is scaled by the
    running RMS of the past steps instead of a learning rate alone. With s, d (theta's shape)
    the running means of g^2 and of the steps' Delta^2::

        s <- rho s + (1 - rho) g^2
        Delta = -sqrt(d + eps) g / sqrt(s + eps)
        d <- rho d + (1 - rho) Delta^2
        theta <- theta + eta Delta

    Keras's step and defaults (eta 0.001, rho 0.95, eps 1e-7); Zeiler's rule is eta = 1
    (PyTorch's default, with eps 1e-6).

    Parameters
    ----------
    learning_rate : float or Schedule (eta)
    rho : float in [0, 1)
    epsilon : float > 0
    clipnorm, global_clipnorm, lr, weight_decay : see :class:`Optimizer`
    **options : Keras 3's ``clipvalue``, ``use_ema``, ``ema_momentum``,
        ``ema_overwrite_frequency``, ``gradient_accumulation_steps``, ``name``: see
        :class:`Optimizer`
    """

    name = "adadelta"
    slot_names = ("accumulated_grad", "accumulated_delta_var")
    squared_slots = ("accumulated_grad", "accumulated_delta_var")
    body = staticmethod(adadelta_span)

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-7, clipnorm=None,
                 global_clipnorm=None, lr=None, weight_decay=None, **options):
        super().__init__(learning_rate, clipnorm, global_clipnorm, lr, weight_decay,
                         **options)
        self.rho = check_float(rho, "rho", low=0.0, high=1.0, high_open=True)
        self.epsilon = check_float(epsilon, "epsilon", low=0.0, low_open=True)

    def _hyperparameters(self):
        return {"rho": self.rho, "epsilon": self.epsilon}

    def reference_rule(self, theta, g, slots, rate):
        s, d = slots["accumulated_grad"], slots["accumulated_delta_var"]
        s *= self.rho
        s += (1 - self.rho) * g * g
        delta = -(np.sqrt(d + self.epsilon) * g) / np.sqrt(s + self.epsilon)
        d *= self.rho
        d += (1 - self.rho) * delta * delta
        theta += rate * delta

    def _kernel_hyperparameters(self, real):
        # 1 - rho here, in float64, as the reference and Keras compute it
        return (real(self.rho), real(self.epsilon), real(1 - self.rho))


class Lion(Optimizer):
    """Lion (Chen et al. 2023, "Symbolic discovery of optimization algorithms"; Keras 3's
    ``Lion``): a step of the same size eta for every weight, in the direction of the sign of
    an interpolation between the momentum and the gradient. For a parameter theta, its
    gradient g and its momentum m (theta's shape)::

        theta <- theta - eta sign(b1 m + (1 - b1) g)
        m <- b2 m + (1 - b2) g

    Every step moves each weight by eta: the paper advises a learning rate 3-10 times smaller
    than AdamW's, and a weight decay that much larger.

    Parameters
    ----------
    learning_rate : float or Schedule (eta; Keras's default 0.001)
    beta_1 : float in (0, 1] (0.9; 0 would be sign SGD, refused as Keras does)
    beta_2 : float in [0, 1] (0.99)
    clipnorm, global_clipnorm, lr, weight_decay : see :class:`Optimizer`
    **options : Keras 3's ``clipvalue``, ``use_ema``, ``ema_momentum``,
        ``ema_overwrite_frequency``, ``gradient_accumulation_steps``, ``name``: see
        :class:`Optimizer`
    """

    name = "lion"
    slot_names = ("m",)
    body = staticmethod(lion_span)

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.99, clipnorm=None,
                 global_clipnorm=None, lr=None, weight_decay=None, **options):
        super().__init__(learning_rate, clipnorm, global_clipnorm, lr, weight_decay,
                         **options)
        self.beta_1 = check_float(beta_1, "beta_1", low=0.0, high=1.0, low_open=True)
        self.beta_2 = check_float(beta_2, "beta_2", low=0.0, high=1.0)

    def _hyperparameters(self):
        return {"beta_1": self.beta_1, "beta_2": self.beta_2}

    def reference_rule(self, theta, g, slots, rate):
        m = slots["m"]
        theta -= rate * np.sign(self.beta_1 * m + (1 - self.beta_1) * g)
        m *= self.beta_2
        m += (1 - self.beta_2) * g

    def _kernel_hyperparameters(self, real):
        return (real(self.beta_1), real(self.beta_2), real(0))


class Ftrl(Optimizer):
    """FTRL-proximal ("Follow the regularized leader", McMahan et al. 2013, "Ad click
    prediction"; Keras 3's ``Ftrl``): per weight, an accumulator n of squared gradients and a
    linear term z, the weight solved from them in closed form, exactly 0 while |z| <= l1
    (sparse weights). With p = -``learning_rate_power`` (0.5: AdaGrad's rates)::

        n' = n + g^2
        z <- z + g + 2 l2s theta - (n'^p - n^p) / eta theta
        theta <- (clip(z, -l1, l1) - z) / (n'^p / eta + 2 l2 + beta / eta);  n <- n'

    Keras's step and defaults.

    Parameters
    ----------
    learning_rate : float or Schedule (eta; 0.001)
    learning_rate_power : float <= 0 (-0.5)
    initial_accumulator_value : float >= 0 (where n starts: 0.1)
    l1_regularization_strength, l2_regularization_strength,
    l2_shrinkage_regularization_strength : floats >= 0 (l1, l2, l2s: 0)
    beta : float (0)
    clipnorm, global_clipnorm, lr, weight_decay : see :class:`Optimizer`
    **options : Keras 3's ``clipvalue``, ``use_ema``, ``ema_momentum``,
        ``ema_overwrite_frequency``, ``gradient_accumulation_steps``, ``name``: see
        :class:`Optimizer`
    """

    name = "ftrl"
    slot_names = ("accumulator", "linear")
    squared_slots = ("accumulator",)
    body = staticmethod(ftrl_span)

    def __init__(self, learning_rate=0.001, learning_rate_power=-0.5,
                 initial_accumulator_value=0.1, l1_regularization_strength=0.0,
                 l2_regularization_strength=0.0, l2_shrinkage_regularization_strength=0.0,
                 beta=0.0, clipnorm=None, global_clipnorm=None, lr=None, weight_decay=None,
                 **options):
        super().__init__(learning_rate, clipnorm, global_clipnorm, lr, weight_decay,
                         **options)
        self.learning_rate_power = check_float(learning_rate_power, "learning_rate_power",
                                               high=0.0)
        self.initial_accumulator_value = check_float(
            initial_accumulator_value, "initial_accumulator_value", low=0.0)
        self.l1_regularization_strength = check_float(
            l1_regularization_strength, "l1_regularization_strength", low=0.0)
        self.l2_regularization_strength = check_float(
            l2_regularization_strength, "l2_regularization_strength", low=0.0)
        self.l2_shrinkage_regularization_strength = check_float(
            l2_shrinkage_regularization_strength, "l2_shrinkage_regularization_strength",
            low=0.0)
        self.beta = check_float(beta, "beta")

    def _hyperparameters(self):
        return {"learning_rate_power": self.learning_rate_power,
                "initial_accumulator_value": self.initial_accumulator_value,
                "l1_regularization_strength": self.l1_regularization_strength,
                "l2_regularization_strength": self.l2_regularization_strength,
                "l2_shrinkage_regularization_strength":
                    self.l2_shrinkage_regularization_strength,
                "beta": self.beta}

    def _initial_slot_value(self, name):
        return self.initial_accumulator_value if name == "accumulator" else 0.0

    def _coefficients(self, rate):
        """(2 l2 + beta / rate, 2 l2_shrinkage) of an update at ``rate``."""
        return (2 * (self.l2_regularization_strength + self.beta / (2.0 * rate)),
                2 * self.l2_shrinkage_regularization_strength)

    def reference_rule(self, theta, g, slots, rate):
        n, z = slots["accumulator"], slots["linear"]
        power = -self.learning_rate_power
        l2_twice, shrinkage_twice = self._coefficients(rate)
        grown = n + g * g
        grown_power = grown ** power
        z += g + shrinkage_twice * theta - (grown_power - n ** power) / rate * theta
        l1 = self.l1_regularization_strength
        theta[...] = (np.clip(z, -l1, l1) - z) / (grown_power / rate + l2_twice)
        n[...] = grown

    def _kernel_hyperparameters(self, real):
        coefficients = np.array(self._coefficients(self.current_learning_rate()), dtype=real)
        return (real(-self.learning_rate_power), real(self.l1_regularization_strength),
                self.backend.asarray(coefficients, dtype=real))


OPTIMIZERS = {cls.name: cls for cls in (SGD, AdaGrad, RMSProp, Adam, AdamW, Nadam, Adamax,
                                        Adadelta, Lion, Ftrl)}
class Adagrad(AdaGrad):
    """Keras's ``Adagrad``: :class:`AdaGrad` with Keras's defaults, learning rate 0.001 and the
    accumulator starting at 0.1, where dlcore's ``AdaGrad`` takes Duchi's and PyTorch's (0.01
    and 0), so that ``keras.optimizers.Adagrad()`` ported as ``dlcore.optimizers.Adagrad()``
    takes Keras's steps, as :func:`dlcore.layers.MaxPooling2D` keeps Keras's geometry. The same
    rule (``name`` "adagrad"): a model saved with one loads with its numbers as an ``AdaGrad``.

    Parameters
    ----------
    learning_rate : float or Schedule (eta; 0.001)
    epsilon, epsilon_form : as :class:`AdaGrad`'s
    initial_accumulator_value : float >= 0 (0.1)
    clipnorm, global_clipnorm, lr, weight_decay, **options : see :class:`Optimizer`
    """

    def __init__(self, learning_rate=0.001, epsilon=1e-7, clipnorm=None, global_clipnorm=None,
                 lr=None, weight_decay=None, initial_accumulator_value=0.1,
                 epsilon_form="dlcore", **options):
        super().__init__(learning_rate, epsilon, clipnorm, global_clipnorm, lr, weight_decay,
                         initial_accumulator_value, epsilon_form, **options)


#: Keras' spelling (RMSProp's defaults are Keras's already)
RMSprop = RMSProp


def is_optimizer(identifier):
    """Whether ``identifier`` names or is an optimiser (what :func:`get_optimizer` takes)."""
    if isinstance(identifier, Optimizer):
        return True
    if isinstance(identifier, dict):
        identifier = identifier.get("class_name")
    return isinstance(identifier, str) and identifier.lower() in OPTIMIZERS


def loss_then_optimizer(loss, optimizer):
    """``(loss, optimizer)`` in the order ``compile`` takes them. Keras's ``compile`` takes the
    optimiser first: given that way (``compile("adam", "categorical_crossentropy")``) they are
    swapped, as no name is both; an optimiser alone where the loss goes is refused in one line
    naming the order."""
    from dlcore.losses import is_loss
    if not is_optimizer(loss):
        return loss, optimizer
    if is_loss(optimizer):
        return optimizer, loss
    raise ValueError(f"{loss!r:.60} is an optimizer, given where compile takes the loss: "
                     f"dlcore's compile takes (loss, optimizer, metrics); Keras's keywords work "
                     f"too: compile(optimizer={loss!r:.60}, loss=...)")


def get_optimizer(identifier):
    """An Optimizer from a name (``"sgd"``, ``"adagrad"``, ``"rmsprop"``, ``"adam"``,
    ``"adamw"``, ``"nadam"``, ``"adamax"``, ``"adadelta"``, ``"lion"``, ``"ftrl"``, with their
    default settings), a
    ``{"class_name", "config"}`` dict or an instance."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in OPTIMIZERS:
        return OPTIMIZERS[identifier.lower()]()
    if isinstance(identifier, dict):
        name = str(identifier.get("class_name", "")).lower()
        if name in OPTIMIZERS:
            return OPTIMIZERS[name].from_config(identifier.get("config", {}))
    raise ValueError(f"unknown optimizer {identifier!r}: choose one of "
                     f"{', '.join(OPTIMIZERS)} or pass an optimizer object")


def serialize(optimizer):
    return {"class_name": optimizer.name, "config": optimizer.get_config()}
