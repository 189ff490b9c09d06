"""Kernel bodies written once, compiled for the CPU and for CUDA, and the backend built on them.

A *body* computes one span of the result from arrays and scalars. It is plain Python registered
with Numba (:func:`dlcore.backend.registry.body`), so the same source runs in two launchers:

* ``launch_rows(body, n_rows, n_units, *args)`` calls ``body(row, first, last, *args)`` for the
  units ``first .. last-1`` of a row (a unit is a column, or a block of four columns that share
  one Philox call). The CPU runs every row in ``prange`` with the whole span, so the inner loop
  is long and contiguous; CUDA runs one thread per (row, unit) with a span of one.
* ``launch_1d(body, n, *args)`` calls ``body(first, last, *args)`` over ``range(n)``: the CPU
  splits it into one chunk per thread, CUDA gives every index a thread.

The scalar maths inside comes from :mod:`dlcore.backend.kernel_math` (sigmoid) and
:mod:`dlcore.backend.rng` (Philox, Bernoulli, Box-Muller) and is inlined into every body.
:class:`KernelBackend` implements the operations of :class:`dlcore.backend.base.Backend` as
launches; :mod:`dlcore.backend.cpu` and :mod:`dlcore.backend.cuda` only say how to launch,
allocate and multiply matrices.
"""
import contextlib
import threading

import numpy as np

from .base import Backend
from .kernel_math import sigmoid
from .registry import body
from .rng import bernoulli, key_from_seed, normal_at, philox4x32

ONE = np.float32(1.0)
ZERO = np.float32(0.0)


@body
def sigmoid_bernoulli_span(row, first_block, last_block, pre, bias, sample, k0, k1, stream,
                           step, first_row):
    """Blocks of four units of one row: p = sigm(pre + bias) in place; sample = [u < p] with the
    four uniforms of one Philox call (counter = (block, first_row + row, step, stream);
    ``first_row`` (uint64) is 0 but for a shard of a data-parallel batch).

    Two passes over the span: the sigmoids (a plain loop the CPU vectorises), then the samples.
    """
    start = 4 * first_block
    stop = min(4 * last_block, pre.shape[1])
    probabilities, biases = pre[row, start:stop], bias[start:stop]
    for i in range(probabilities.shape[0]):
        probabilities[i] = sigmoid(probabilities[i] + biases[i])
    if sample.shape[0] == 0:
        return
    samples = sample[row, start:stop]
    global_row = np.uint64(row) + first_row
    full_blocks = probabilities.shape[0] // 4
    for offset in range(full_blocks):  # no branch inside: the CPU vectorises Philox too
        w0, w1, w2, w3 = philox4x32(np.uint64(first_block + offset), global_row, step,
                                    stream, k0, k1)
        i = 4 * offset
        samples[i] = bernoulli(probabilities[i], w0)
        samples[i + 1] = bernoulli(probabilities[i + 1], w1)
        samples[i + 2] = bernoulli(probabilities[i + 2], w2)
        samples[i + 3] = bernoulli(probabilities[i + 3], w3)
    i = 4 * full_blocks
    if i < probabilities.shape[0]:  # a row whose width is not a multiple of four ends here
        w0, w1, w2, w3 = philox4x32(np.uint64(first_block + full_blocks), global_row, step,
                                    stream, k0, k1)
        for lane in range(probabilities.shape[0] - i):
            word = w0 if lane == 0 else (w1 if lane == 1 else w2)
            samples[i + lane] = bernoulli(probabilities[i + lane], word)


@body
def gaussian_sample_span(row, first, last, mean, bias, sigma, sample, k0, k1, stream, step,
                         first_row):
    """mu = b + sigma * (top-down input) in place; sample = mu + sigma * z, z ~ N(0, 1) of
    row ``first_row + row``."""
    sampling = sample.shape[0] > 0
    global_row = np.uint64(row) + first_row
    for column in range(first, last):
        mu = bias[column] + sigma[column] * mean[row, column]
        mean[row, column] = mu
        if sampling:
            noise = normal_at(global_row, column, k0, k1, stream, step)
            sample[row, column] = mu + sigma[column] * noise


# The loops below run from 0 over slices: Numba then knows the indices are not negative,
# drops its wrap-around checks and vectorises (measured 5x on a parameter update).
@body
def gather_rows_span(row, first, last, source, indices, first_index, out):
    source_row = source[indices[first_index + row], first:last]
    out_row = out[row, first:last]
    for column in range(out_row.shape[0]):
        out_row[column] = source_row[column]


@body
def momentum_step_span(first, last, parameter, velocity, decay):
    parameter, velocity = parameter[first:last], velocity[first:last]
    for i in range(parameter.shape[0]):
        velocity[i] -= decay * parameter[i]
        parameter[i] += velocity[i]


@body
def descent_span(first, last, parameter, velocity, rate):
    """parameter <- parameter - rate * velocity (the step of :meth:`dense_weight_step`).

    The velocity is only read: BLAS wrote it. Flushing its subnormals here as the optimisers'
    steps do (:func:`~dlcore.backend.kernel_math.flush_subnormal`) would mean a store on
    every element, which cost the fine-tuning epoch of ``dlcore bench mlp`` 10-13 % (Intel
    Xeon, alternating runs; a store only where one is found, 5-10 %); the CPU's fused step
    runs in flush-to-zero mode instead (:mod:`dlcore.backend.flush_to_zero`)."""
    parameter, velocity = parameter[first:last], velocity[first:last]
    for i in range(parameter.shape[0]):
        parameter[i] -= rate * velocity[i]


@body
def bias_step_span(first, last, bias, velocity, positive, negative, learning_rate, momentum):
    """Columns first..last-1: velocity = m velocity + eps mean_r(pos - neg); bias += velocity.
    Rows outside, columns inside: contiguous reads on the CPU, one column per CUDA thread."""
    rate = learning_rate / np.float32(positive.shape[0])
    bias, velocity = bias[first:last], velocity[first:last]
    for column in range(velocity.shape[0]):
        velocity[column] *= momentum
    for row in range(positive.shape[0]):
        positive_row, negative_row = positive[row, first:last], negative[row, first:last]
        for column in range(velocity.shape[0]):
            velocity[column] += rate * (positive_row[column] - negative_row[column])
    for column in range(velocity.shape[0]):
        bias[column] += velocity[column]


@body
def momentum_and_bias_steps_span(first, last, parameter, velocity, decay, bias_a, velocity_a,
                                 positive_a, negative_a, rate_a, momentum_a, bias_b,
                                 velocity_b, positive_b, negative_b, rate_b, momentum_b):
    """Elements first..last-1 of the parameter, then of bias a, then of bias b, laid end to
    end: :func:`momentum_step_span` on the parameter's, :func:`bias_step_span` on each bias's
    (the same numbers as the three launches; none reads what another writes)."""
    end_parameter = parameter.shape[0]
    end_a = end_parameter + bias_a.shape[0]
    if first < end_parameter:
        momentum_step_span(first, min(last, end_parameter), parameter, velocity, decay)
    if first < end_a and last > end_parameter:
        bias_step_span(max(first, end_parameter) - end_parameter, min(last, end_a) - end_parameter,
                       bias_a, velocity_a, positive_a, negative_a, rate_a, momentum_a)
    if last > end_a:
        bias_step_span(max(first, end_a) - end_a, last - end_a, bias_b, velocity_b, positive_b,
                       negative_b, rate_b, momentum_b)


@body
def sparsity_step_span(first, last, probability, running_mean, hidden_bias, decay, rate, target):
    share = (ONE - decay) / np.float32(probability.shape[0])
    running_mean, hidden_bias = running_mean[first:last], hidden_bias[first:last]
    for column in range(running_mean.shape[0]):
        running_mean[column] *= decay
    for row in range(probability.shape[0]):
        probability_row = probability[row, first:last]
        for column in range(running_mean.shape[0]):
            running_mean[column] += share * probability_row[column]
    for column in range(running_mean.shape[0]):
        hidden_bias[column] -= rate * (running_mean[column] - target)


@body
def squared_error_span(first, last, target, estimate, out):
    out = out[first:last]
    for row in range(target.shape[0]):
        target_row, estimate_row = target[row, first:last], estimate[row, first:last]
        for column in range(out.shape[0]):
            difference = target_row[column] - estimate_row[column]
            out[column] += difference * difference


def _f32(value):
    return np.float32(value)


class Tensors(tuple):
    """The tensors of :meth:`KernelBackend.launch_tensors` (a tuple of tuples of arrays) that
    the caller keeps from one call to the next: a backend may keep on it what it derives from
    them (the CPU: their addresses), for as long as the caller keeps them."""

    def __reduce__(self):
        return Tensors, (tuple(self),)   # what a backend kept stays with these arrays


#: Per thread, the steps each backend's :meth:`KernelBackend.parameter_steps` holds back
#: ({id(backend): steps}).
_HELD_BY_THREAD = threading.local()


class KernelBackend(Backend):
    """Backend operations as launches of the shared bodies (see the module docstring).

    Subclasses provide ``launch_rows``, ``launch_1d``, an empty placeholder ``_no_array`` for
    optional outputs, memory management and ``gemm``.
    """

    _no_array = None
    launches_kernels = True
    #: Whether :meth:`parameter_steps` holds back the momentum and bias steps (a launch costs
    #: more than such a step on a GPU; the CPU runs them as they come)
    fuses_parameter_steps = False

    def launch_rows(self, body, n_rows, n_units, *args, work=None):
        """``body(row, first, last, *args)`` over ``n_rows`` rows of ``n_units`` units;
        ``work`` (default n_rows * n_units) is the number of elements touched, which the CPU
        uses to decide whether waking its threads is worth it."""
        raise NotImplementedError

    def launch_1d(self, body, n, *args, work=None):
        """``body(first, last, *args)`` over ``range(n)``; ``work`` as for launch_rows."""
        raise NotImplementedError

    def launch_tensors(self, body, tensors, shared, per_tensor):
        """``body(first, last, *arrays, *shared, *scalars)`` over every element of every tensor:
        ``tensors`` (a sequence, or :class:`Tensors` to be passed again) holds the
        equal-length 1-D arrays of each tensor (five: an optimiser's
        parameter, gradient and three slots), ``per_tensor`` its scalars (four), ``shared`` the
        scalars common to all. ``body`` works element by element, as for :meth:`launch_1d`:
        any split of a tensor's range gives the same numbers. One launch per tensor here; the
        CPU makes it one launch."""
        for arrays, scalars in zip(tensors, per_tensor):
            self.launch_1d(body, arrays[0].shape[0], *arrays, *shared, *scalars)

    def gemm_then_rows(self, a, b, out, body, *args):
        """``out`` (m, n) <- a (m, k) @ b (k, n), then ``body(row, first, last, *args)`` over its
        m rows of n units (an epilogue on the product: a Dense layer's bias and activation).
        :meth:`gemm` then :meth:`launch_rows`, the same numbers; a backend may fuse them (the CPU
        runs the epilogue on each block of the product right after computing it)."""
        self.gemm(a, b, out)
        self.launch_rows(body, out.shape[0], out.shape[1], *args)

    def _optional(self, array):
        return self._no_array if array is None else array

    def sigmoid_bernoulli(self, pre_activation, bias, sample, seed, stream, step, first_row=0):
        k0, k1 = key_from_seed(seed)
        n_rows, n_columns = pre_activation.shape
        # the sigmoids alone cost 0.4 of the sigmoids and samples (one thread, 900 x 49: 57
        # against 140 us): homework task1's reconstruction of its 900 held-out digits stays on
        # the calling thread, and its first run compiles no parallel kernel for it (1.9 s)
        work = pre_activation.size if sample is not None else pre_activation.size // 2
        self.launch_rows(sigmoid_bernoulli_span, n_rows, -(-n_columns // 4), pre_activation,
                         bias, self._optional(sample), k0, k1, np.uint64(stream),
                         np.uint64(step), np.uint64(first_row), work=work)

    def gaussian_sample(self, mean, bias, sigma, sample, seed, stream, step, first_row=0):
        k0, k1 = key_from_seed(seed)
        self.launch_rows(gaussian_sample_span, *mean.shape, mean, bias, sigma,
                         self._optional(sample), k0, k1, np.uint64(stream), np.uint64(step),
                         np.uint64(first_row))

    def gather_rows(self, source, indices, out, first=0):
        # a copy costs far less per element than the maths of the other kernels
        self.launch_rows(gather_rows_span, *out.shape, source, self._indices(indices),
                         np.int64(first), out, work=out.size // 32)

    @property
    def _held_steps(self):
        """The steps this thread's :meth:`parameter_steps` holds back, or None. Per thread: the
        backend is one object for the process, and a fit in another thread (a thread pool's
        grid search) steps as it calls, not when this thread's block ends. Kept outside the
        object, which pickles with the optimisers and models that hold it."""
        return getattr(_HELD_BY_THREAD, "steps", {}).get(id(self))

    @_held_steps.setter
    def _held_steps(self, steps):
        held = _HELD_BY_THREAD.__dict__.setdefault("steps", {})
        if steps is None:
            held.pop(id(self), None)
        else:
            held[id(self)] = steps

    @contextlib.contextmanager
    def parameter_steps(self):
        if not self.fuses_parameter_steps or self._held_steps is not None:
            yield
            return
        held = self._held_steps = []
        try:
            yield
        finally:
            self._held_steps = None
        kinds = [kind for kind, _ in held]
        if kinds == ["bias", "momentum", "bias"]:  # an RBM's CD update: one launch
            (_, visible), (_, (parameter, velocity, decay)), (_, hidden) = held
            self.momentum_and_bias_steps(parameter, velocity, decay, (visible, hidden))
            return
        for kind, arguments in held:
            (self.bias_step if kind == "bias" else self.momentum_step)(*arguments)

    def momentum_step(self, parameter, velocity, decay):
        if self._held_steps is not None:
            self._held_steps.append(("momentum", (parameter, velocity, decay)))
            return
        # two multiply-adds an element, streamed: a task1 RBM's 784 x 49 weights take ~20 us
        # on one thread, and its 2,000 parallel launches cost 6-9 s on a busy 2-core machine
        self.launch_1d(momentum_step_span, parameter.size, parameter.reshape(-1),
                       velocity.reshape(-1), _f32(decay), work=parameter.size // 8)

    def descent_step(self, weights, velocity, rate):
        self.launch_1d(descent_span, weights.size, weights.reshape(-1), velocity.reshape(-1),
                       _f32(rate), work=weights.size // 8)

    def bias_step(self, bias, velocity, positive, negative, learning_rate, momentum):
        if self._held_steps is not None:
            self._held_steps.append(("bias", (bias, velocity, positive, negative,
                                              learning_rate, momentum)))
            return
        # two reads and a multiply-add per element: cheaper than the maths of most kernels
        self.launch_1d(bias_step_span, bias.shape[0], bias, velocity, positive, negative,
                       _f32(learning_rate), _f32(momentum), work=positive.size // 4)

    def momentum_and_bias_steps(self, parameter, velocity, decay, bias_steps):
        """:meth:`momentum_step` and :meth:`bias_step` of each of the two tuples of
        ``bias_steps`` (its arguments), in one launch (see :meth:`parameter_steps`)."""
        (bias_a, velocity_a, positive_a, negative_a, rate_a, momentum_a), \
            (bias_b, velocity_b, positive_b, negative_b, rate_b, momentum_b) = bias_steps
        self.launch_1d(momentum_and_bias_steps_span,
                       parameter.size + bias_a.shape[0] + bias_b.shape[0],
                       parameter.reshape(-1), velocity.reshape(-1), _f32(decay), bias_a,
                       velocity_a, positive_a, negative_a, _f32(rate_a), _f32(momentum_a),
                       bias_b, velocity_b, positive_b, negative_b, _f32(rate_b),
                       _f32(momentum_b), work=parameter.size // 8 + positive_a.size // 4
                       + positive_b.size // 4)

    def sparsity_step(self, hidden_probability, running_mean, hidden_bias, decay, rate, target):
        self.launch_1d(sparsity_step_span, hidden_bias.shape[0], hidden_probability,
                       running_mean, hidden_bias, _f32(decay), _f32(rate), _f32(target),
                       work=hidden_probability.size)

    def accumulate_squared_error(self, target, estimate, out):
        self.launch_1d(squared_error_span, out.shape[0], target, estimate, out,
                       work=target.size // 4)

    def _indices(self, indices):
        """Row indices as the backend wants them (int64; on the device for CUDA), from the
        host or already there (``asarray(indices, np.int64)``)."""
        return np.ascontiguousarray(indices, dtype=np.int64)
