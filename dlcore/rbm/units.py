"""The visible layer of an RBM, modelled once: binary, binary with a softmax label group, or
Gaussian.

An RBM estimator (:class:`dlcore.BernoulliRBM`, :class:`dlcore.GaussianBernoulliRBM`) is its
hyperparameters and the scikit-learn contract; everything that depends on what its visible units
*are* is one strategy object of this module, used by the estimator (in NumPy), and by the
trainer (:mod:`dlcore.rbm.trainer`) and the sampler (:mod:`dlcore.rbm.sampler`), which are
written once (on a backend). Its duties:

the model, in NumPy, on the estimator's ``parameters`` (a dict of ``W``, ``visible_bias``,
``hidden_bias`` and the layer's own ``parameter_names``):

* ``check``: which data the layer accepts (binary units: values in [0, 1]);
* ``initial_parameters``: the visible biases, the layer's own parameters and training arrays
  where training starts;
* ``float64_parameters``, ``free_energy`` F(v), ``visible_mean`` E[v | h] and the exact
  ``log_partition`` log Z;

on a backend:

* ``weight_input``: what multiplies W on the way up and in the weight statistics (v itself for
  binary units, v / sigma for Gaussian units with sigma != 1);
* ``sample``: turn the top-down input sum_j W_ij h_j into the visible means (and a sample);
  the letters of :mod:`dlcore.rbm.model` (visible unit i, hidden unit j, W_ij = ``W[i, j]``),
  which the slide "RBM Weight Update" swaps (its sum_i W_ij h_1i, for visible unit j);
* ``update``: the visible parameters' CD step (the visible biases; sigma when it is learned);
* ``download``: the layer's own parameters and training state, as NumPy arrays.

:class:`BernoulliVisible` is the binary layer of lecture "Deep Neural Networks", slide
"RBM Weight Update"; :class:`SoftmaxLabelVisible` adds the
label units of a DBN's top RBM. :class:`GaussianVisible` is the Gaussian layer of
:class:`dlcore.GaussianBernoulliRBM`, whose CD statistics follow from the energy
E(v, h) = sum_i (v_i - b_i)^2 / (2 sigma_i^2) - c.h - sum_ij (v_i / sigma_i) W_ij h_j
(Hinton 2010, sec. 13.2; Krizhevsky 2009, sec. 1.4; Cho, Ilin & Raiko 2011 for learned
variances). With z_i = log sigma_i, the log-likelihood gradients are data minus model averages of

    -dE/dW_ij = (v_i / sigma_i) h_j
    -dE/db_i  = (v_i - b_i) / sigma_i^2
    -dE/dz_i  = (v_i - b_i)^2 / sigma_i^2 - (v_i / sigma_i) sum_j W_ij h_j

The W statistic is the Bernoulli one computed on v / sigma; the two visible ones are fused into
:func:`gaussian_visible_step`, written as a NumPy reference and as one kernel body that the
``cpu`` and ``cuda`` backends launch (``launch_1d``: one span of visible units per thread), like
the backends' own operations (:mod:`dlcore.backend.kernel_backend`).
"""
import math

import numpy as np

from dlcore.backend import rng
from dlcore.backend.kernel_math import max_and_exp_sum
from dlcore.backend.reference import softmax
from dlcore.backend.registry import body
from dlcore.backend.rng import key_from_seed, philox4x32, uniform_from_bits
from dlcore.validation import check_data
from dlcore.wording import as_typed

from . import model
from .monitors import exact_log_partition, gaussian_exact_log_partition


class VisibleUnits:
    """The strategy interface (see the module docstring), with the binary units' CD step."""

    #: The layer's own parameters beside W, b and c (each (n_visible,)), and its training
    #: arrays: they travel with W, b and c (training, files, copies).
    parameter_names = ()
    training_arrays = ()
    #: Whether a sample of the layer (what :meth:`weight_input` makes of it) is 0s and 1s, so
    #: that a backend may sum the rows of W it selects rather than multiply
    #: (:mod:`dlcore.backend.binary_products`)
    binary_samples = False

    # -- the model, in NumPy ------------------------------------------------------------
    def check(self, X, name, n_columns=None, held_out=False):
        """``X`` as C-contiguous float32 (n, n_visible) rows, or ValueError naming the fix;
        ``n_columns``: the width a fitted model expects; ``held_out``: rows a fitted model is
        only applied to (:func:`dlcore.validation.check_data`)."""
        return check_data(X, name, n_columns=n_columns, columns_meaning="visible units")

    def initial_parameters(self, X):
        """``(parameters, training)`` where training on ``X`` starts: ``visible_bias`` and the
        layer's own parameters (float32, (n_visible,)); its training arrays."""
        raise NotImplementedError

    def float64_parameters(self, parameters):
        """(W, b, c) and the layer's own parameters, in float64, for the exact monitors."""
        names = ("W", "visible_bias", "hidden_bias") + self.parameter_names
        return tuple(np.asarray(parameters[name], dtype=np.float64) for name in names)

    def free_energy(self, X, parameters):
        """F(v) of each row of ``X`` (n, n_visible) -> (n,), in float64; p(v) = exp(-F(v)) / Z."""
        raise NotImplementedError

    def visible_mean(self, hidden, parameters):
        """E[v | h] of each row of ``hidden`` (n, n_hidden) -> (n, n_visible)."""
        raise NotImplementedError

    def log_partition(self, parameters):
        """log Z, exact, in float64 (ValueError when it cannot be enumerated)."""
        raise NotImplementedError

    def weights_on_data(self, parameters):
        """The (n_visible, n_hidden) weights that take raw visible rows to the hidden
        pre-activations minus c, v W* = weight_input(v) W: W itself for binary units (a
        network's Dense kernel built from the RBM)."""
        return parameters["W"]

    # -- on a backend ------------------------------------------------------------------
    def weight_input(self, backend, visible, slot):
        """The (n, n_visible) array that multiplies W: the hidden pre-activations are
        c + weight_input W. ``slot`` names a scratch buffer ("data", "model", ...) the strategy
        may write into."""
        return visible

    def sample(self, backend, top_down, visible_bias, sample, seed, stream, step, first_row=0):
        """``top_down`` (n, n_visible) holds sum_j W_ij h_j on entry and the visible means on
        exit; ``sample`` (n, n_visible) receives a sample, or is None. ``first_row``: the
        Philox row of row 0 (a shard of a data-parallel batch)."""
        raise NotImplementedError

    def sample_from_hidden(self, backend, hidden, W, top_down, visible_bias, sample, seed,
                           stream, step, first_row=0, hidden_ones=None):
        """The visible units given ``hidden`` (n, n_hidden): ``top_down`` (n, n_visible)
        receives sum_j W_ij h_j, then :meth:`sample` turns it into the means (and ``sample``
        into a sample, unless None). ``hidden_ones``: the ones of ``hidden``, a sample, as
        the backend listed them (a backend may then sum W's columns: ``a_ones`` of
        :meth:`dlcore.backend.Backend.gemm_sigmoid_bernoulli`), or None."""
        backend.gemm(hidden, W, top_down, trans_b=True)
        self.sample(backend, top_down, visible_bias, sample, seed, stream, step, first_row)

    def update(self, backend, batch, visible_bias, velocity, settings):
        """CD step of the visible parameters; ``batch`` is the :class:`CDBatch` of the update.

            velocity <- momentum velocity + eps mean(x1 - x2);   b <- b + velocity
        """
        contrastive_bias_step(backend, visible_bias, velocity, batch.x1, batch.x2,
                              settings.learning_rate, settings.momentum, batch.means, "visible")

    def download(self, backend):
        """``(parameters, state)``: the layer's own NumPy arrays (none for binary units)."""
        return {}, {}


class BernoulliVisible(VisibleUnits):
    """Binary visible units: P(v_i = 1 | h) = sigm(b_i + sum_j W_ij h_j)."""

    binary_samples = True

    def check(self, X, name, n_columns=None, held_out=False):
        """As :meth:`VisibleUnits.check`, and every value in [0, 1] for training; rows
        ``held_out`` may lie outside (Q(h | x) and F(x) take any real x: a scaler fitted on
        the training rows maps others a little beyond [0, 1]), unless they are 8-bit pixels."""
        return check_data(X, name, n_columns=n_columns, unit_interval=True,
                          columns_meaning="visible units", held_out=held_out)

    def initial_parameters(self, X):
        """b_i = log(p_i / (1 - p_i)) with p_i the fraction of training vectors in which unit
        i is on (Hinton 2010, sec. 8), clipped so that always-off pixels stay finite."""
        p = np.clip(X.mean(axis=0, dtype=np.float64), 1e-4, 1 - 1e-4)
        return {"visible_bias": np.log(p / (1 - p)).astype(np.float32)}, {}

    def free_energy(self, X, parameters):
        """F(v) = -b.v - sum_j log(1 + exp(c_j + v.W_j)) (:func:`dlcore.rbm.model.free_energy`)."""
        return model.free_energy(X.astype(np.float64), *self.float64_parameters(parameters))

    def visible_mean(self, hidden, parameters):
        """P(v = 1 | h) = sigm(b + h W')."""
        return model.visible_probability(hidden, parameters["W"], parameters["visible_bias"])

    def log_partition(self, parameters):
        """log Z by enumerating the smaller layer (:func:`dlcore.rbm.monitors.exact_log_partition`;
        at most 24 units, ValueError beyond)."""
        return exact_log_partition(*self.float64_parameters(parameters))

    def sample(self, backend, top_down, visible_bias, sample, seed, stream, step, first_row=0):
        """``top_down`` (n, n_visible) holds sum_j W_ij h_j; it leaves holding P(v = 1 | h)."""
        backend.sigmoid_bernoulli(top_down, visible_bias, sample, seed, stream, step, first_row)

    def sample_from_hidden(self, backend, hidden, W, top_down, visible_bias, sample, seed,
                           stream, step, first_row=0, hidden_ones=None):
        """P(v = 1 | h) = sigm(b + h W') into ``top_down``, and a sample: the product and the
        sigmoids in one call (:meth:`dlcore.backend.Backend.gemm_sigmoid_bernoulli`)."""
        backend.gemm_sigmoid_bernoulli(hidden, W, top_down, visible_bias, sample, seed, stream,
                                       step, trans_b=True, first_row=first_row,
                                       a_ones=hidden_ones)


class SoftmaxLabelVisible(BernoulliVisible):
    """Binary visible units followed by one softmax group of ``n_labels`` label units: the
    visible layer of a DBN's top RBM trained with the labels (Hinton, Osindero & Teh 2006,
    "A fast learning algorithm for deep belief nets", fig. 1). With F = n_visible - n_labels,

        P(v_i = 1 | h)   = sigm(b_i + sum_j W_ij h_j)                        i < F
        P(label = k | h) = exp(a_k) / sum_l exp(a_l),  a_k = b_{F+k} + sum_j W_{F+k,j} h_j

    and a sample turns on exactly one label unit. Data checks, initial biases, hidden input,
    free energy and parameter updates are the binary units' (a one-hot label is a binary
    vector).
    """

    # the label columns need their softmax between the product and the sigmoids
    sample_from_hidden = VisibleUnits.sample_from_hidden

    def __init__(self, n_labels):
        self.n_labels = int(n_labels)
        self._scratch = None

    def check(self, X, name, n_columns=None, held_out=False):
        """As the binary units' check, and ``X`` wider than the ``n_labels`` label columns it
        ends with; training rows (arrays, not ``held_out``) hold one one-hot label there, the
        only data a softmax group has. Without it, ``BernoulliRBM(n_labels=7)`` fitted 6
        columns as one softmax group of all six, and any values in the label columns
        trained without a word."""
        X = super().check(X, name, n_columns, held_out)
        if X.shape[1] <= self.n_labels:
            raise ValueError(f"{name} has {X.shape[1]} columns, but n_labels={self.n_labels} "
                             f"takes its last {self.n_labels} as label units: give {name} its "
                             f"features, then a one-hot label in {self.n_labels} columns")
        if not held_out and isinstance(X, np.ndarray):
            labels = X[:, -self.n_labels:]
            one_hot = np.all((labels == 0) | (labels == 1), axis=1) & (labels.sum(axis=1) == 1)
            if not one_hot.all():
                row = int(np.argmin(one_hot))
                raise ValueError(f"the last {self.n_labels} columns of {name} are the label "
                                 f"units (n_labels={self.n_labels}) and hold one one-hot label "
                                 f"per row, but row {row} holds {as_typed(labels[row])}: put "
                                 f"each row's label there as np.eye({self.n_labels})[y]")
        return X

    def visible_mean(self, hidden, parameters):
        """P(v = 1 | h), the label units as their softmax."""
        mean = super().visible_mean(hidden, parameters)
        W, b = parameters["W"], parameters["visible_bias"]
        mean[:, -self.n_labels:] = softmax(hidden @ W[-self.n_labels:].T + b[-self.n_labels:])
        return mean

    def log_partition(self, parameters):
        raise ValueError("log Z of an RBM with softmax label units is not enumerated (its "
                         "labels are one-hot, not binary): use an RBM with n_labels=0")

    def sample(self, backend, top_down, visible_bias, sample, seed, stream, step, first_row=0):
        n = top_down.shape[0]
        if self._scratch is None or self._scratch[0].shape[0] < n:
            self._scratch = (backend.empty((n, self.n_labels)), backend.empty((n, self.n_labels)))
        probability, states = (buffer[:n] for buffer in self._scratch)
        # the label pre-activations first: the sigmoid pass overwrites every column
        softmax_labels(backend, top_down, visible_bias, probability,
                       None if sample is None else states, seed, stream, step, first_row)
        backend.sigmoid_bernoulli(top_down, visible_bias, sample, seed, stream, step, first_row)
        write_label_columns(backend, probability, None if sample is None else states, top_down,
                            sample)


class CDBatch:
    """The arrays of one CD update that a visible layer's ``update`` may read.

    x1 (b, n_visible) the data; x2 (m, n_visible) the negative phase (the reconstruction,
    m = b, or m persistent chains); h1 (b, n_hidden) the hidden sample of the data;
    q2 (m, n_hidden) Q(h2 = 1 | x2); W (n_visible, n_hidden); ``means`` a :class:`RowMeans`
    for m != b.
    """

    def __init__(self, x1, x2, h1, q2, W, means=None):
        self.x1, self.x2, self.h1, self.q2, self.W = x1, x2, h1, q2, W
        self.means = means


class RowMeans:
    """Column means of backend arrays as one product each, mean_r x[r] = (1/n) 1'x:
    (n, m) -> (1, m). For contrastive steps whose phases have different numbers of rows (a
    mini-batch of b rows against n_chains persistent chains, Tieleman 2008). ``slot`` names the
    (1, m) output buffer, reused from one update to the next."""

    def __init__(self, backend):
        self.backend = backend
        self._ones, self._out = {}, {}

    def __call__(self, x, slot):
        be = self.backend
        n, m = x.shape
        if n not in self._ones:
            self._ones[n] = be.asarray(np.ones((1, n), dtype=np.float32))
        if self._out.get(slot) is None or self._out[slot].shape[1] != m:
            self._out[slot] = be.empty((1, m))
        be.gemm(self._ones[n], x, self._out[slot], alpha=1.0 / n)
        return self._out[slot]


def contrastive_bias_step(backend, bias, velocity, positive, negative, learning_rate, momentum,
                          means=None, layer=""):
    """velocity <- momentum velocity + eps (mean_r positive[r] - mean_s negative[s]);
    bias <- bias + velocity. ``positive`` (b, m) and ``negative`` (m', m) may have different
    numbers of rows (then ``means``, a :class:`RowMeans`, reduces each to one row first, in
    buffers named after ``layer``: inside the backend's ``parameter_steps`` the step may run
    after another layer's means); with equal rows it is the backend's ``bias_step`` itself."""
    if positive.shape[0] != negative.shape[0]:
        positive = means(positive, f"{layer} positive")
        negative = means(negative, f"{layer} negative")
    backend.bias_step(bias, velocity, positive, negative, learning_rate, momentum)


class GaussianVisible(VisibleUnits):
    """Gaussian visible units P(v_i | h) = N(b_i + sigma_i sum_j W_ij h_j, sigma_i^2).

    Parameters
    ----------
    backend : the backend the trainer or sampler runs on, or None for NumPy arrays (the
        estimator's model side)
    sigma : (n_visible,) float32, the standard deviations (kept on the backend), or one number
        for every unit (a layer that :meth:`initial_parameters` starts)
    velocity_log_sigma : (n_visible,) float32, momentum buffer of log sigma (None: zeros)
    learn_sigma : bool, update sigma by CD (else it stays fixed)
    sigma_learning_rate : float, eps of log sigma
    min_sigma : float > 0, floor of sigma: CD can drive a variance towards zero
    """

    parameter_names = ("visible_sigma",)
    training_arrays = ("velocity_log_sigma",)

    def __init__(self, backend, sigma, velocity_log_sigma=None, learn_sigma=False,
                 sigma_learning_rate=0.0, min_sigma=1e-2):
        sigma = np.asarray(sigma, dtype=np.float32)
        on_backend = np.asarray if backend is None else backend.asarray
        self.sigma = on_backend(sigma)
        if velocity_log_sigma is None:
            velocity_log_sigma = np.zeros_like(sigma)
        self.velocity_log_sigma = on_backend(velocity_log_sigma)
        self.learn_sigma = bool(learn_sigma)
        self.sigma_learning_rate = float(sigma_learning_rate)
        self.min_log_sigma = math.log(min_sigma)
        self._initial_sigma = sigma
        # v / sigma is v itself when every sigma is 1 and stays so: skip the copy.
        self.unit_variance = not self.learn_sigma and bool(np.all(sigma == 1))
        self._buffers = {}

    def initial_parameters(self, X):
        """b_i = the mean of unit i over the training data (the maximum-likelihood bias of a
        model with W = 0); sigma as given; its momentum zero."""
        sigma = np.full(X.shape[1], self._initial_sigma, dtype=np.float32)
        return ({"visible_bias": X.mean(axis=0, dtype=np.float64).astype(np.float32),
                 "visible_sigma": sigma},
                {"velocity_log_sigma": np.zeros_like(sigma)})

    def free_energy(self, X, parameters):
        """F(v) = sum_i (v_i - b_i)^2 / (2 sigma_i^2) - sum_j softplus(c_j + (v / sigma).W_j)
        (:func:`dlcore.rbm.model.gaussian_free_energy`)."""
        return model.gaussian_free_energy(X.astype(np.float64),
                                          *self.float64_parameters(parameters))

    def visible_mean(self, hidden, parameters):
        """E[v | h] = b + sigma h W'."""
        return model.gaussian_visible_mean(hidden, parameters["W"], parameters["visible_bias"],
                                           parameters["visible_sigma"])

    def weights_on_data(self, parameters):
        """W_ij / sigma_i: the hidden input is (v / sigma) W."""
        return parameters["W"] / parameters["visible_sigma"][:, None]

    def log_partition(self, parameters):
        """log Z: the visible units integrate out, the hidden states are enumerated
        (:func:`dlcore.rbm.monitors.gaussian_exact_log_partition`; at most 24 hidden units)."""
        return gaussian_exact_log_partition(*self.float64_parameters(parameters))

    def sample(self, backend, top_down, visible_bias, sample, seed, stream, step, first_row=0):
        """mean = b + sigma * top_down in place; sample = mean + sigma * z, z ~ N(0, 1)."""
        backend.gaussian_sample(top_down, visible_bias, self.sigma, sample, seed, stream, step,
                                first_row)

    def weight_input(self, backend, visible, slot):
        """v / sigma (a scratch copy), or v itself for unit variances."""
        if self.unit_variance:
            return visible
        out = self._buffer(backend, slot, visible.shape)
        scale_columns(backend, visible, self.sigma, out)
        return out

    def _buffer(self, backend, slot, shape):
        buffer = self._buffers.get(slot)
        if buffer is None or buffer.shape[0] < shape[0] or buffer.shape[1] != shape[1]:
            buffer = self._buffers[slot] = backend.empty(shape)
        return buffer[:shape[0]]

    def update(self, backend, batch, visible_bias, velocity, settings):
        """b (and log sigma) one CD step up the gradients of the module docstring."""
        top_down_data = top_down_model = batch.x1  # placeholders, unread without learn_sigma
        if self.learn_sigma:
            top_down_data = self._buffer(backend, "top_down_data", batch.x1.shape)
            top_down_model = self._buffer(backend, "top_down_model", batch.x2.shape)
            backend.gemm(batch.h1, batch.W, top_down_data, trans_b=True)
            backend.gemm(batch.q2, batch.W, top_down_model, trans_b=True)
        gaussian_visible_step(backend, batch.x1, batch.x2, top_down_data, top_down_model,
                              visible_bias, self.sigma, velocity, self.velocity_log_sigma,
                              settings.learning_rate, self.sigma_learning_rate,
                              settings.momentum, self.min_log_sigma, self.learn_sigma)

    def download(self, backend):
        return ({"visible_sigma": backend.to_numpy(self.sigma)},
                {"velocity_log_sigma": backend.to_numpy(self.velocity_log_sigma)})


# -- fused operations: NumPy reference, and one kernel body for cpu and cuda ------------------
ONE, ZERO = np.float32(1.0), np.float32(0.0)


def _optional(backend, array):
    """An optional output for a kernel body: the array, or an empty one (shape[0] == 0)."""
    return backend.empty((0, 0)) if array is None else array


@body
def scale_columns_span(row, first, last, x, sigma, out):
    for column in range(first, last):
        out[row, column] = x[row, column] / sigma[column]


def scale_columns(backend, x, sigma, out):
    """out[r, i] = x[r, i] / sigma[i]: the hidden input v / sigma. x, out (n, m); sigma (m,)."""
    if not backend.launches_kernels:
        out[...] = x / sigma
        return
    backend.launch_rows(scale_columns_span, out.shape[0], out.shape[1], x, sigma, out)


@body
def gaussian_visible_step_span(first, last, x1, x2, top_down_data, top_down_model,
                               visible_bias, sigma, velocity_bias, velocity_log_sigma,
                               rate_bias, rate_log_sigma, momentum, min_log_sigma, learn_sigma):
    """Visible units first..last-1 of :func:`gaussian_visible_step`; rows outside, units inside
    (contiguous on the CPU, one unit per CUDA thread), as the backends' ``bias_step_span``."""
    n_rows = x1.shape[0]
    share_bias = rate_bias / np.float32(n_rows)
    share_log_sigma = rate_log_sigma / np.float32(n_rows)
    for unit in range(first, last):
        velocity_bias[unit] *= momentum
        if learn_sigma:
            velocity_log_sigma[unit] *= momentum
    if x2.shape[0] != n_rows:
        # n_chains persistent chains against a mini-batch: each phase its own mean
        share_bias2 = rate_bias / np.float32(x2.shape[0])
        share_log_sigma2 = rate_log_sigma / np.float32(x2.shape[0])
        for row in range(n_rows):
            for unit in range(first, last):
                s = sigma[unit]
                data = x1[row, unit]
                velocity_bias[unit] += share_bias * data / (s * s)
                if learn_sigma:
                    b = visible_bias[unit]
                    positive = ((data - b) / s) ** 2 - (data / s) * top_down_data[row, unit]
                    velocity_log_sigma[unit] += share_log_sigma * positive
        for row in range(x2.shape[0]):
            for unit in range(first, last):
                s = sigma[unit]
                model = x2[row, unit]
                velocity_bias[unit] -= share_bias2 * model / (s * s)
                if learn_sigma:
                    b = visible_bias[unit]
                    negative = ((model - b) / s) ** 2 - (model / s) * top_down_model[row, unit]
                    velocity_log_sigma[unit] -= share_log_sigma2 * negative
        n_rows = 0   # the fused loop below has nothing left to do
    for row in range(n_rows):
        for unit in range(first, last):
            s = sigma[unit]
            data = x1[row, unit]
            model = x2[row, unit]
            velocity_bias[unit] += share_bias * (data - model) / (s * s)
            if learn_sigma:
                b = visible_bias[unit]
                positive = ((data - b) / s) ** 2 - (data / s) * top_down_data[row, unit]
                negative = ((model - b) / s) ** 2 - (model / s) * top_down_model[row, unit]
                velocity_log_sigma[unit] += share_log_sigma * (positive - negative)
    for unit in range(first, last):
        visible_bias[unit] += velocity_bias[unit]
        if learn_sigma:
            log_sigma = max(math.log(sigma[unit]) + velocity_log_sigma[unit], min_log_sigma)
            sigma[unit] = math.exp(log_sigma)


def gaussian_visible_step(backend, x1, x2, top_down_data, top_down_model, visible_bias, sigma,
                          velocity_bias, velocity_log_sigma, learning_rate,
                          sigma_learning_rate, momentum, min_log_sigma, learn_sigma):
    """CD step of a Gaussian layer's biases b and (when ``learn_sigma``) log standard deviations
    z = log sigma, averaged over the batch (data x1 (n, n_visible), negative phase x2
    (n', n_visible): n' = n for CD, the number of persistent chains otherwise):

        velocity_b <- m velocity_b + eps (mean_r x1 - mean_s x2) / sigma^2;  b <- b + velocity_b
        velocity_z <- m velocity_z + eps_z [mean_r g(x1, u1) - mean_s g(x2, u2)];
        z <- max(z + velocity_z, log min_sigma)
        g(v, u) = (v - b)^2 / sigma^2 - (v / sigma) u

    with u1 = W h1 (``top_down_data``, (n, n_visible)) and u2 = W Q(h2 = 1 | x2)
    (``top_down_model``, (n', n_visible)), read only when ``learn_sigma``; g uses b and sigma
    before the step.
    ``visible_bias``, ``sigma`` and the velocities (n_visible,) are updated in place.
    """
    if not backend.launches_kernels:
        velocity_bias *= momentum
        if x1.shape == x2.shape:
            velocity_bias += learning_rate * (x1 - x2).mean(axis=0) / sigma ** 2
        else:
            velocity_bias += learning_rate * (x1.mean(axis=0) - x2.mean(axis=0)) / sigma ** 2
        if learn_sigma:
            def g(v, top_down):
                return ((v - visible_bias) / sigma) ** 2 - (v / sigma) * top_down
            velocity_log_sigma *= momentum
            velocity_log_sigma += sigma_learning_rate * (
                g(x1, top_down_data).mean(axis=0) - g(x2, top_down_model).mean(axis=0))
        visible_bias += velocity_bias
        if learn_sigma:
            sigma[...] = np.exp(np.maximum(np.log(sigma) + velocity_log_sigma, min_log_sigma))
        return
    f32 = np.float32
    backend.launch_1d(gaussian_visible_step_span, visible_bias.shape[0], x1, x2, top_down_data,
                      top_down_model, visible_bias, sigma, velocity_bias, velocity_log_sigma,
                      f32(learning_rate), f32(sigma_learning_rate), f32(momentum),
                      f32(min_log_sigma), bool(learn_sigma))


@body
def softmax_labels_span(row, first, last, top_down, bias, probability, states, k0, k1,
                        stream, step, first_row):
    """Row ``row`` of :func:`softmax_labels` (``first``/``last`` span the single unit 0..1)."""
    n_columns = top_down.shape[1]
    n_labels = probability.shape[1]
    offset = n_columns - n_labels
    top, total = max_and_exp_sum(top_down[row], offset, 1, n_labels, bias[offset:])
    for k in range(n_labels):
        probability[row, k] = math.exp(top_down[row, offset + k] + bias[offset + k] - top) / total
    if states.shape[0] > 0:
        word, _, _, _ = philox4x32(np.uint64((n_columns + 3) // 4), np.uint64(row) + first_row,
                                   step, stream, k0, k1)
        u = uniform_from_bits(word)
        chosen = n_labels - 1
        cumulative = np.float32(0.0)
        for k in range(n_labels):
            cumulative += probability[row, k]
            if u < cumulative:
                chosen = k
                break
        for k in range(n_labels):
            states[row, k] = ONE if k == chosen else ZERO


def softmax_labels(backend, top_down, bias, probability, states, seed, stream, step,
                   first_row=0):
    """The label units' softmax and a one-hot sample of it, per row:

        p[r, k] = exp(a[r, k]) / sum_l exp(a[r, l]),  a[r, k] = top_down[r, F + k] + bias[F + k]
        states[r] = one-hot of the first k with u_r < p[r, 0] + ... + p[r, k] (the last if none)

    ``top_down`` (n, F + K) holds sum_j W_ij h_j (read only); ``probability``, ``states``
    (n, K), ``states`` None for probabilities only. u_r is the uniform of Philox counter
    (ceil((F + K) / 4), first_row + r, step, stream): the block just past the row's own
    units, so it never coincides with the sigmoid samples of the same stream and step.
    """
    n_columns, n_labels = top_down.shape[1], probability.shape[1]
    if not backend.launches_kernels:
        probability[...] = softmax(top_down[:, n_columns - n_labels:]
                                   + bias[n_columns - n_labels:])
        if states is not None:
            n_blocks = -(-n_columns // 4)
            u = rng.uniform(top_down.shape[0], 4 * n_blocks + 1, seed, stream, step,
                            first_row)[:, -1]
            below = u[:, None] < np.cumsum(probability, axis=1, dtype=np.float32)
            chosen = np.where(below.any(axis=1), below.argmax(axis=1), n_labels - 1)
            states[...] = np.eye(n_labels, dtype=states.dtype)[chosen]
        return
    k0, k1 = key_from_seed(seed)
    backend.launch_rows(softmax_labels_span, top_down.shape[0], 1, top_down, bias, probability,
                        _optional(backend, states), k0, k1, np.uint64(stream), np.uint64(step),
                        np.uint64(first_row))


@body
def write_label_columns_span(row, first, last, probability, states, top_down, sample):
    offset = top_down.shape[1] - probability.shape[1]
    for k in range(probability.shape[1]):
        top_down[row, offset + k] = probability[row, k]
        if sample.shape[0] > 0:
            sample[row, offset + k] = states[row, k]


def write_label_columns(backend, probability, states, top_down, sample):
    """Put the labels' probabilities (n, K) into the last K columns of ``top_down`` and, when
    ``sample`` is not None, their one-hot ``states`` into the last K columns of ``sample``."""
    n_labels = probability.shape[1]
    if not backend.launches_kernels:
        top_down[:, -n_labels:] = probability
        if sample is not None:
            sample[:, -n_labels:] = states
        return
    backend.launch_rows(write_label_columns_span, probability.shape[0], 1, probability,
                        _optional(backend, states), top_down, _optional(backend, sample))
