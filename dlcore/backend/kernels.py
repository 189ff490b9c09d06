"""Element bodies written once, compiled for the CPU and for CUDA, and the backend built on them.

Each ``*_body`` function computes the result for one index (an element, a block of four units
sharing a Philox call, or a column) from arrays and scalars. It is plain Python decorated with
:func:`dlcore.backend.rng.shared` (Numba's ``register_jitable``), so:

* :mod:`dlcore.backend.cpu` wraps it in a ``@njit(parallel=True, cache=True)`` loop (``prange``),
* :mod:`dlcore.backend.cuda` wraps it in a ``@cuda.jit`` kernel, one thread per index,

and the maths exists once. :class:`KernelBackend` implements the operations of
:class:`dlcore.backend.base.Backend` by launching these bodies over 1-D or 2-D index ranges;
a subclass only says how to launch, how to allocate and how to multiply matrices.
"""
import math

import numpy as np

from .base import Backend
from .rng import bernoulli, key_from_seed, normal_at, philox4x32, shared

ONE = np.float32(1.0)
ZERO = np.float32(0.0)


@shared
def sigmoid(x):
    """sigm(x) = 1 / (1 + exp(-x)) in float32 (exp overflows to inf for x < -88: sigm = 0)."""
    return ONE / (ONE + np.float32(math.exp(-x)))


@shared
def _sigmoid_bernoulli_unit(row, column, word, pre, bias, sample):
    if column < pre.shape[1]:
        probability = sigmoid(pre[row, column] + bias[column])
        pre[row, column] = probability
        if sample.shape[0] > 0:
            sample[row, column] = bernoulli(probability, word)


@shared
def sigmoid_bernoulli_body(row, block, pre, bias, sample, k0, k1, stream, step):
    """Units 4*block .. 4*block+3 of one row; one Philox call gives their four uniforms."""
    column = 4 * block
    w0 = w1 = w2 = w3 = np.uint64(0)
    if sample.shape[0] > 0:
        w0, w1, w2, w3 = philox4x32(np.uint64(block), np.uint64(row), step, stream, k0, k1)
    _sigmoid_bernoulli_unit(row, column, w0, pre, bias, sample)
    _sigmoid_bernoulli_unit(row, column + 1, w1, pre, bias, sample)
    _sigmoid_bernoulli_unit(row, column + 2, w2, pre, bias, sample)
    _sigmoid_bernoulli_unit(row, column + 3, w3, pre, bias, sample)


@shared
def gaussian_sample_body(row, column, mean, bias, sigma, sample, k0, k1, stream, step):
    """mu = b + sigma * (top-down input); sample = mu + sigma * z."""
    mu = bias[column] + sigma[column] * mean[row, column]
    mean[row, column] = mu
    if sample.shape[0] > 0:
        sample[row, column] = mu + sigma[column] * normal_at(row, column, k0, k1, stream, step)


@shared
def gather_rows_body(row, column, source, indices, out):
    out[row, column] = source[indices[row], column]


@shared
def momentum_step_body(i, parameter, velocity, decay):
    velocity[i] -= decay * parameter[i]
    parameter[i] += velocity[i]


@shared
def bias_step_body(column, bias, velocity, positive, negative, learning_rate, momentum):
    total = ZERO
    for row in range(positive.shape[0]):
        total += positive[row, column] - negative[row, column]
    mean_difference = total / np.float32(positive.shape[0])
    velocity[column] = momentum * velocity[column] + learning_rate * mean_difference
    bias[column] += velocity[column]


@shared
def sparsity_step_body(column, probability, running_mean, hidden_bias, decay, rate, target):
    total = ZERO
    for row in range(probability.shape[0]):
        total += probability[row, column]
    running_mean[column] = (decay * running_mean[column]
                            + (ONE - decay) * total / np.float32(probability.shape[0]))
    hidden_bias[column] -= rate * (running_mean[column] - target)


@shared
def squared_error_body(column, target, estimate, out):
    total = ZERO
    for row in range(target.shape[0]):
        difference = target[row, column] - estimate[row, column]
        total += difference * difference
    out[column] += total


def _f32(value):
    return np.float32(value)


class KernelBackend(Backend):
    """Backend operations as launches of the shared bodies.

    Subclasses provide ``launch_1d(body, n, *args)`` (index ``i`` in ``range(n)``),
    ``launch_2d(body, n_rows, n_columns, *args)`` (indices ``(row, column)``), an empty
    placeholder array ``_no_array`` for optional outputs, memory management and ``gemm``.
    """

    _no_array = None

    def launch_1d(self, body, n, *args):
        raise NotImplementedError

    def launch_2d(self, body, n_rows, n_columns, *args):
        raise NotImplementedError

    def _optional(self, array):
        return self._no_array if array is None else array

    def sigmoid_bernoulli(self, pre_activation, bias, sample, seed, stream, step):
        k0, k1 = key_from_seed(seed)
        n_rows, n_columns = pre_activation.shape
        self.launch_2d(sigmoid_bernoulli_body, n_rows, -(-n_columns // 4), pre_activation,
                       bias, self._optional(sample), k0, k1, np.uint64(stream), np.uint64(step))

    def gaussian_sample(self, mean, bias, sigma, sample, seed, stream, step):
        k0, k1 = key_from_seed(seed)
        self.launch_2d(gaussian_sample_body, *mean.shape, mean, bias, sigma,
                       self._optional(sample), k0, k1, np.uint64(stream), np.uint64(step))

    def gather_rows(self, source, indices, out):
        self.launch_2d(gather_rows_body, *out.shape, source, self._indices(indices), out)

    def momentum_step(self, parameter, velocity, decay):
        self.launch_1d(momentum_step_body, parameter.size, parameter.reshape(-1),
                       velocity.reshape(-1), _f32(decay))

    def bias_step(self, bias, velocity, positive, negative, learning_rate, momentum):
        self.launch_1d(bias_step_body, bias.shape[0], bias, velocity, positive, negative,
                       _f32(learning_rate), _f32(momentum))

    def sparsity_step(self, hidden_probability, running_mean, hidden_bias, decay, rate, target):
        self.launch_1d(sparsity_step_body, hidden_bias.shape[0], hidden_probability,
                       running_mean, hidden_bias, _f32(decay), _f32(rate), _f32(target))

    def accumulate_squared_error(self, target, estimate, out):
        self.launch_1d(squared_error_body, out.shape[0], target, estimate, out)

    def _indices(self, indices):
        """Row indices as the backend wants them (int64; on the device for CUDA)."""
        return np.ascontiguousarray(indices, dtype=np.int64)
