"""The scalar maths kernel bodies share, written once for the CPU and for CUDA.

Each function is registered with :func:`dlcore.backend.registry.shared`: inlined into every CPU
kernel that calls it, compiled as a device function for CUDA. The NumPy versions the references
use are in :mod:`dlcore.backend.reference` (``sigmoid``, ``softmax``, ``log_sum_exp``).

* :func:`sigmoid`: sigm(x) = 1 / (1 + exp(-x)) of one float32, through an exp the CPU
  vectorises (:mod:`dlcore.backend.fastmath`) on the CPU, the hardware's on CUDA.
* :func:`tanh`: likewise, a tanh the CPU vectorises, the hardware's on CUDA.
* :func:`max_and_exp_sum`: the two numbers every softmax and log-sum-exp over a span needs,
  m = max_k a_k and s = sum_k exp(a_k - m), from which

      softmax_k(a) = exp(a_k - m) / s,    log sum_k exp(a_k) = m + log s.
"""
import math

import numpy as np

from .fastmath import exp_vectorised, tanh_vectorised
from .registry import shared

ONE = np.float32(1.0)
ZERO = np.float32(0.0)
#: float32's smallest normal number: below it, subnormals
SMALLEST_NORMAL = np.float32(1.1754944e-38)


def _sigmoid_on_cpu(x):
    """The CPU kernels' sigmoid: the same function through an exp the CPU vectorises."""
    return ONE / (ONE + exp_vectorised(-x))


@shared(cpu_implementation=_sigmoid_on_cpu)
def sigmoid(x):
    """sigm(x) = 1 / (1 + exp(-x)) in float32 (exp overflows to inf for x < -88: sigm = 0)."""
    return ONE / (ONE + math.exp(-x))


def _tanh_on_cpu(x):
    """The CPU kernels' tanh: the same function in arithmetic the CPU vectorises."""
    return tanh_vectorised(x)


@shared(cpu_implementation=_tanh_on_cpu)
def tanh(x):
    """tanh(x) (x float32 or float64)."""
    return math.tanh(x)


@shared
def max_and_exp_sum(values, start, stride, count, bias):
    """``(m, s)`` of the ``count`` numbers a_k = values[start + k stride] + bias[k]:

        m = max_k a_k,    s = sum_k exp(a_k - m)          (k = 0 .. count - 1, in that order)

    ``values`` is a 1-D float32 or float64 view (a row of logits, or a flattened batch of maps
    read with a stride); ``bias`` (count,) of the same type, or empty for none; m and s are of
    that type. Shifting by m keeps every exp in
    [0, 1], so s is in [1, count] and never overflows.
    """
    has_bias = bias.shape[0] > 0
    top = values[start] + (bias[0] if has_bias else ZERO)
    for k in range(1, count):
        top = max(top, values[start + k * stride] + (bias[k] if has_bias else ZERO))
    # 0 in the values' precision: a float32 total rounded a float64 network's softmax to
    # float32's ~6e-8 (top is finite whenever the sum is: an infinite or NaN top makes
    # exp(a_k - m) NaN for its own k anyway)
    total = top * ZERO
    for k in range(count):
        value = values[start + k * stride] + (bias[k] if has_bias else ZERO)
        total += math.exp(value - top)
    return top, total


@shared
def flush_subnormal(x):
    """x, or 0 where 0 < |x| < 2^-126 (a float32 subnormal); NaN and infinities stay.

    A momentum buffer whose gradient is 0 (a dead ReLU unit's weights) decays geometrically,
    v <- mu v, through the subnormal range (about 150 steps at mu = 0.9) before it reaches 0,
    and on x86 an operation that yields a subnormal costs ~100 cycles instead of one. What is
    flushed is below any float32 weight's rounding: w - rate v is w either way unless w is 0.
    A product with the comparison, not a branch: it vectorises (NaN < anything is false, so
    NaN stays NaN). Float64 kernels flush below the same 2^-126, far above float64's own
    subnormals: nothing a training would notice.
    """
    return x * np.float32(not abs(x) < SMALLEST_NORMAL)
