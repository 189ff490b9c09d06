"""The reference backend: every operation as the NumPy line of its equation.

It allocates temporaries and runs on one core: it is what a student reads and what the kernel
tests compare against, not what trains models. Random numbers come from the same
Philox counters as the kernels (:mod:`dlcore.backend.rng`), so samples agree bit for bit.
"""
import contextlib

import numpy as np

from . import rng
from .base import Backend, HostMemory
from .blas import one_blas_thread

# -- the squashing functions, in NumPy: the one home of every reference that needs them ----
# (the layers' activations, the losses, the RBMs' conditionals, AIS). The kernel bodies' own
# versions are in dlcore.backend.kernel_math.


def sigmoid(x):
    """sigm(x) = 1 / (1 + exp(-x)), element-wise, in the dtype of ``x`` (any shape).

    exp(-x) overflows to inf for very negative x, giving sigm = 0 without a warning.
    """
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def log_sum_exp(z, axis=1):
    """log sum_k exp(z_k) along ``axis``, kept as a length-1 axis, computed stably as

        m + log sum_k exp(z_k - m),   m = max_k z_k

    (n, k) -> (n, 1) for the default ``axis=1``.
    """
    top = z.max(axis=axis, keepdims=True)
    return top + np.log(np.exp(z - top).sum(axis=axis, keepdims=True))


def softmax(z, axis=1):
    """p_k = exp(z_k) / sum_j exp(z_j) along ``axis`` (row-wise by default), computed stably
    as exp(z_k - m) / sum_j exp(z_j - m), m = max_j z_j. (n, k) -> (n, k)."""
    shifted = np.exp(z - z.max(axis=axis, keepdims=True))
    return shifted / shifted.sum(axis=axis, keepdims=True)


class ReferenceBackend(HostMemory, Backend):
    name = "reference"

    @contextlib.contextmanager
    def compute(self, small_products=False):
        """With ``small_products``, BLAS limited to one thread: OpenBLAS threads spinning on a
        busy 2-core machine made a network's small products up to 60x slower (measured). An
        RBM's large products keep BLAS's threads."""
        if not small_products:
            yield self
            return
        with one_blas_thread():
            yield self

    def copy_into(self, destination, source):
        destination[...] = source

    def gemm(self, a, b, out, trans_a=False, trans_b=False, alpha=1.0, beta=0.0):
        product = (a.T if trans_a else a) @ (b.T if trans_b else b)
        out[...] = alpha * product + beta * out if beta else alpha * product

    def sigmoid_bernoulli(self, pre_activation, bias, sample, seed, stream, step, first_row=0):
        pre_activation[...] = sigmoid(pre_activation + bias)
        if sample is not None:
            u = rng.uniform(*pre_activation.shape, seed, stream, step, first_row)
            sample[...] = (u < pre_activation).astype(sample.dtype)

    def gaussian_sample(self, mean, bias, sigma, sample, seed, stream, step, first_row=0):
        mean[...] = bias + sigma * mean
        if sample is not None:
            z = rng.normal(mean.shape[0], mean.shape[1], seed, stream, step,
                           first_row=first_row)
            sample[...] = mean + sigma * z

    def gather_rows(self, source, indices, out, first=0):
        out[...] = source[np.asarray(indices)[first:first + out.shape[0]]]

    def momentum_step(self, parameter, velocity, decay):
        velocity -= decay * parameter
        parameter += velocity

    def bias_step(self, bias, velocity, positive, negative, learning_rate, momentum):
        velocity[...] = momentum * velocity + learning_rate * (positive - negative).mean(axis=0)
        bias += velocity

    def sparsity_step(self, hidden_probability, running_mean, hidden_bias, decay, rate, target):
        running_mean[...] = decay * running_mean + (1 - decay) * hidden_probability.mean(axis=0)
        hidden_bias -= rate * (running_mean - target)

    def accumulate_squared_error(self, target, estimate, out):
        out += ((target - estimate) ** 2).sum(axis=0)
