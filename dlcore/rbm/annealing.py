"""The annealing behind AIS and RAISE, written once: a path of distributions from a base model to
the RBM, its Gibbs transitions and its log-weight increments, as a NumPy reference and as kernel
bodies that the cpu and cuda backends run.

The path (Neal 2001; Salakhutdinov & Murray 2008) at inverse temperature beta in [0, 1] is, with
the RBM's hidden units summed out,

    log p*_beta(v) = base(v) + beta D(v) + sum_j softplus(beta x_j),   x = c + u(v) W,

where u(v) is what multiplies W (v itself, or v / sigma for Gaussian units) and base(v) + D(v) is
the visible part of the RBM's -F(v):

* binary visible units (:class:`BernoulliPath`): base(v) = a.v and D(v) = (b - a).v, so that
  p*_0(v) = exp(a.v) 2^n_hidden is a model of independent pixels with biases a (the base model)
  and p*_1(v) = exp(-F(v)) is the RBM;
* Gaussian visible units (:class:`GaussianPath`): base(v) = -sum_i (v_i - mu_i)^2 / (2 s_i^2) and
  D(v) = sum_i [(v_i - mu_i)^2 / (2 s_i^2) - (v_i - b_i)^2 / (2 sigma_i^2)]: p*_0 is independent
  Gaussians N(mu_i, s_i^2), p*_1 the Gaussian-Bernoulli RBM.

p*_beta is the visible marginal of an RBM with energy (1 - beta) E_base + beta E_RBM, so one
block Gibbs step at beta (h_j ~ sigm(beta x_j), then v | h) leaves it invariant. :func:`anneal`
moves a batch of chains (rows) through a schedule beta_0, ..., beta_K:

    for k = 1 .. K:   log w += log p*_{beta_k}(v) - log p*_{beta_(k-1)}(v)
                      v <- one Gibbs step at beta_k

which is AIS from the base model to the RBM when beta rises from 0 to 1, and RAISE's reverse chain
from the data when it falls from 1 to 0 (:mod:`dlcore.rbm.ais`).

On a backend that launches kernels one temperature is two matrix products (BLAS, cuBLAS) and two
fused kernels, :func:`hidden_step_rows` (the log-weight increment of every chain, then its hidden
sample) and the path's visible step; a CUDA thread (or a CPU loop) takes a whole chain. The CPU
runs every temperature of a block inside one parallel region instead
(:mod:`dlcore.rbm.cpu_annealing`). The random numbers are those of the reference: hidden unit j of
chain r at temperature k is ``rng.uniform(n, n_hidden, seed, stream + 1, k)[r, j]``, visible
unit i ``rng.uniform(n, n_visible, seed, stream + 2, k)[r, i]`` (a normal for Gaussian units), so
the reference and the kernels move the chains through the same states.
"""
import math

import numpy as np

from dlcore.backend import rng
from dlcore.backend.fastmath import exp_float32
from dlcore.backend.kernel_backend import sigmoid_bernoulli_span
from dlcore.backend.kernel_math import sigmoid
from dlcore.backend.reference import sigmoid as numpy_sigmoid
from dlcore.backend.registry import body, shared
from dlcore.backend.rng import normal_at

from .model import softplus

#: The Philox row of a chain is the chain's index: annealing chains are never sharded.
FIRST_ROW = np.uint64(0)

ONE, ZERO = np.float32(1.0), np.float32(0.0)


# -- the kernels' maths ----------------------------------------------------------------------
# expm1 and log1p on the arguments softplus_step gives them (z <= 0, t in (-1/2, 0]), in
# arithmetic the CPU vectorises (libm's expm1f and log1pf are calls, one element at a time, and
# took most of the time of a temperature). CUDA and the simulator use the hardware's own.
_EXPM1_TAYLOR = tuple(np.float32(1.0 / math.factorial(n)) for n in range(2, 9))
_THIRD, _FIFTH, _SEVENTH = np.float32(1 / 3), np.float32(1 / 5), np.float32(1 / 7)
_NINTH, _ELEVENTH, _THIRTEENTH, _FIFTEENTH = (np.float32(1 / n) for n in (9, 11, 13, 15))
_TWO, _HALF = np.float32(2.0), np.float32(0.5)


def _expm1_on_cpu(z):
    """exp(z) - 1 for float32 z <= 0: its Taylor series to z^8 when |z| < 1/2 (truncation
    below 1e-8 relative), else exp(z) - 1, which loses nothing there."""
    c2, c3, c4, c5, c6, c7, c8 = _EXPM1_TAYLOR
    series = z + z * z * (c2 + z * (c3 + z * (c4 + z * (c5 + z * (c6 + z * (c7 + z * c8))))))
    return series if z > -_HALF else exp_float32(z) - ONE


def _log1p_on_cpu(t):
    """log(1 + t) for float32 t in (-1/2, 0]: 2 atanh(r), r = t / (2 + t) in (-1/3, 0], by its
    series to r^15 (truncation below 2e-8 relative)."""
    r = t / (_TWO + t)
    r2 = r * r
    series = ONE + r2 * (_THIRD + r2 * (_FIFTH + r2 * (_SEVENTH + r2 * (
        _NINTH + r2 * (_ELEVENTH + r2 * (_THIRTEENTH + r2 * _FIFTEENTH))))))
    return _TWO * r * series


@shared(cpu_implementation=_expm1_on_cpu)
def expm1_nonpositive(z):
    """exp(z) - 1 of a float32 z <= 0, accurate to float32's relative precision."""
    return np.float32(math.expm1(z))


@shared(cpu_implementation=_log1p_on_cpu)
def log1p_small(t):
    """log(1 + t) of a float32 t in (-1/2, 0], accurate to float32's relative precision."""
    return np.float32(math.log1p(t))


@shared
def softplus_step(x, previous, beta):
    """softplus(beta x) - softplus(previous x) for one float32 ``x``, computed without the
    cancellation of that difference (at 14,500 temperatures beta - previous is ~1e-5 and both
    softplus values are ~10-100: in float32 their difference would keep two digits). From
    softplus(b x) = b max(x, 0) + log1p(exp(-b |x|)), with lower = min(previous, beta) and
    gap = |beta - previous|,

        = (beta - previous) max(x, 0) +- log1p(sigm(-lower |x|) expm1(-gap |x|))

    (+ when beta > previous), every factor accurate to float32's relative precision and the
    argument of log1p in (-1/2, 0]."""
    magnitude = abs(x)
    delta = beta - previous
    lower = min(previous, beta)
    change = log1p_small(sigmoid(-lower * magnitude) * expm1_nonpositive(-abs(delta) * magnitude))
    return delta * max(x, ZERO) + (change if delta >= ZERO else -change)


@shared
def float64_sum(values):
    """sum_i values[i] of a float32 vector, accumulated in float64 in four interleaved partial
    sums (independent additions, which the CPU overlaps)."""
    n = values.shape[0]
    s0, s1, s2, s3 = np.float64(0.0), np.float64(0.0), np.float64(0.0), np.float64(0.0)
    for i in range(0, n - 3, 4):
        s0 += np.float64(values[i])
        s1 += np.float64(values[i + 1])
        s2 += np.float64(values[i + 2])
        s3 += np.float64(values[i + 3])
    for i in range(n - n % 4, n):
        s0 += np.float64(values[i])
    return (s0 + s1) + (s2 + s3)


@body
def hidden_step_rows(row, first, last, x, c, previous, beta, data_term, log_weights, zeros, h,
                     k0, k1, stream, step):
    """Chain ``row`` (the whole row: launched with one unit per row) at temperature beta_k:

        log_weights[row] += (beta - previous) D(v) + sum_j softplus_step(x_j + c_j)
        h[row, j] = [u < sigm(beta (x_j + c_j))],  u: Philox counter (j // 4, row, step, stream)

    ``x`` (n, n_hidden) holds u(v) W on entry and beta (x + c) on exit; ``c`` (n_hidden,);
    ``data_term`` (n,) float64, D(v); ``log_weights`` (n,) float64; ``zeros`` (>= n_hidden,)
    float32 zeros (the bias of the shared sigmoid-and-sample body); ``h`` (n, n_hidden)."""
    inputs, terms = x[row], h[row]   # h holds each unit's term until it is sampled
    for j in range(inputs.shape[0]):
        input_j = inputs[j] + c[j]
        terms[j] = softplus_step(input_j, previous, beta)
        inputs[j] = beta * input_j
    log_weights[row] += (np.float64(beta - previous) * data_term[row]
                         + float64_sum(terms))
    sigmoid_bernoulli_span(row, 0, (inputs.shape[0] + 3) // 4, x, zeros, h, k0, k1, stream, step,
                           FIRST_ROW)


@body
def bernoulli_visible_rows(row, first, last, top, beta, k0, k1, stream, step, data_term,
                           visible, zeros, base_bias, bias_step):
    """Binary visible units of chain ``row`` at beta, and D(v) of the new state:

        v_i = [u < sigm(a_i + beta (b_i - a_i + top_i))],    D(v) = (b - a).v

    ``top`` (n, n_visible) holds h W' (overwritten); ``visible`` (n, n_visible) receives v;
    ``base_bias`` a and ``bias_step`` b - a (n_visible,) float32."""
    inputs = top[row]
    for i in range(inputs.shape[0]):
        inputs[i] = base_bias[i] + beta * (bias_step[i] + inputs[i])
    sigmoid_bernoulli_span(row, 0, (inputs.shape[0] + 3) // 4, top, zeros, visible, k0, k1,
                           stream, step, FIRST_ROW)
    states, terms = visible[row], top[row]   # top holds each unit's share of D(v)
    for i in range(states.shape[0]):
        terms[i] = states[i] * bias_step[i]
    data_term[row] = float64_sum(terms)


@body
def gaussian_visible_rows(row, first, last, top, beta, k0, k1, stream, step, data_term,
                          visible, weight_input, base_mean, base_precision, bias, sigma):
    """Gaussian visible units of chain ``row`` at beta: v | h is Gaussian with

        precision_i = (1 - beta) / s_i^2 + beta / sigma_i^2
        mean_i = [(1 - beta) mu_i / s_i^2 + beta (b_i + sigma_i top_i) / sigma_i^2] / precision_i

    v_i = mean_i + z / sqrt(precision_i), z the normal of Philox counter (i // 4, row, step,
    stream); ``weight_input`` receives v / sigma, ``data_term`` D(v). ``top`` (n, n_visible)
    holds h W'; ``base_mean`` mu, ``base_precision`` 1 / s^2, ``bias`` b, ``sigma``
    (n_visible,) float32."""
    terms = top[row]   # after reading top_i, it holds unit i's share of D(v)
    for i in range(top.shape[1]):
        s = sigma[i]
        precision = (ONE - beta) * base_precision[i] + beta / (s * s)
        mean = ((ONE - beta) * base_mean[i] * base_precision[i]
                + beta * (bias[i] + s * terms[i]) / (s * s)) / precision
        v = np.float32(mean + normal_at(row, i, k0, k1, stream, step) / math.sqrt(precision))
        visible[row, i] = v
        weight_input[row, i] = v / s
        away_from_base = v - base_mean[i]
        away_from_model = (v - bias[i]) / s
        terms[i] = (away_from_base * away_from_base * base_precision[i]
                    - away_from_model * away_from_model) / _TWO
    data_term[row] = float64_sum(terms)


# -- the paths ------------------------------------------------------------------------------
class BernoulliPath:
    """The path from independent binary pixels (biases ``base_bias`` a) to a Bernoulli RBM
    (W (n_visible, n_hidden), b (n_visible,), c (n_hidden,)); NumPy float64 arrays."""

    visible_body = staticmethod(bernoulli_visible_rows)

    def __init__(self, W, visible_bias, hidden_bias, base_bias):
        self.W, self.b, self.c, self.a = W, visible_bias, hidden_bias, base_bias

    def log_z_base(self):
        """log Z_0 = sum_i softplus(a_i) + n_hidden log 2 (the hidden units are free at 0)."""
        return float(softplus(self.a).sum() + self.W.shape[1] * np.log(2.0))

    def sample_base(self, n, seed, stream):
        """(n, n_visible) exact samples of p_0: v_i = [u < sigm(a_i)], u of (stream, step 0)."""
        u = rng.uniform(n, self.W.shape[0], seed, stream, 0)
        return (u < numpy_sigmoid(self.a)).astype(np.float32)

    def weight_input(self, v):
        """u(v) = v."""
        return v

    def data_term(self, v):
        """D(v) = (b - a).v, (n,) float64."""
        return np.asarray(v, np.float64) @ (self.b - self.a)

    def log_p_star(self, v, beta):
        """log p*_beta(v) = (1 - beta) a.v + beta b.v + sum_j softplus(beta (c_j + v.W_j))."""
        v = np.asarray(v, np.float64)
        return ((1 - beta) * (v @ self.a) + beta * (v @ self.b)
                + softplus(beta * (v @ self.W + self.c)).sum(axis=1))

    def gibbs(self, v, beta, seed, stream, step):
        """One block Gibbs step at beta: h ~ sigm(beta (c + vW)), then
        v ~ sigm(a + beta (b - a + Wh))."""
        n, (n_visible, n_hidden) = v.shape[0], self.W.shape
        h = rng.uniform(n, n_hidden, seed, stream + 1, step) < numpy_sigmoid(
            beta * (v @ self.W + self.c))
        visible_input = self.a + beta * (self.b - self.a + h @ self.W.T)
        u = rng.uniform(n, n_visible, seed, stream + 2, step)
        return (u < numpy_sigmoid(visible_input)).astype(np.float64)

    def kernel_arrays(self, backend, visible):
        """``(weight_input, visible, own)`` on ``backend`` for :func:`anneal`: the array the
        products read, the array the visible step writes, the visible body's own arrays."""
        v = backend.asarray(visible)
        zeros = backend.zeros(max(self.W.shape))
        own = (v, zeros, backend.asarray(self.a), backend.asarray(self.b - self.a))
        return v, v, own


class GaussianPath:
    """The path from independent Gaussians N(``base_mean``, ``base_sd``^2) to a Gaussian-Bernoulli
    RBM (W, b, c and its standard deviations ``sigma`` (n_visible,)); NumPy float64 arrays."""

    visible_body = staticmethod(gaussian_visible_rows)

    def __init__(self, W, visible_bias, hidden_bias, sigma, base_mean, base_sd):
        self.W, self.b, self.c, self.sigma = W, visible_bias, hidden_bias, sigma
        self.mu, self.s = base_mean, base_sd

    def log_z_base(self):
        """log Z_0 = sum_i log(sqrt(2 pi) s_i) + n_hidden log 2."""
        return float(np.log(np.sqrt(2 * np.pi) * self.s).sum() + self.W.shape[1] * np.log(2.0))

    def sample_base(self, n, seed, stream):
        """(n, n_visible) exact samples of p_0: mu + s z, z the normals of (stream, step 0)."""
        return (self.mu + self.s * rng.normal(n, self.W.shape[0], seed, stream, 0)).astype(
            np.float32)

    def weight_input(self, v):
        """u(v) = v / sigma."""
        return v / self.sigma

    def data_term(self, v):
        """D(v) = sum_i (v_i - mu_i)^2 / (2 s_i^2) - (v_i - b_i)^2 / (2 sigma_i^2), (n,)."""
        v = np.asarray(v, np.float64)
        return ((((v - self.mu) / self.s) ** 2 - ((v - self.b) / self.sigma) ** 2) / 2).sum(
            axis=1)

    def log_p_star(self, v, beta):
        """log p*_beta(v) = -(1 - beta) sum (v - mu)^2 / 2s^2 - beta sum (v - b)^2 / 2 sigma^2
        + sum_j softplus(beta (c_j + (v / sigma).W_j))."""
        v = np.asarray(v, np.float64)
        base = -((((v - self.mu) / self.s) ** 2) / 2).sum(axis=1)
        return (base + beta * self.data_term(v)
                + softplus(beta * (self.weight_input(v) @ self.W + self.c)).sum(axis=1))

    def gibbs(self, v, beta, seed, stream, step):
        """One block Gibbs step at beta: h ~ sigm(beta x), then v | h Gaussian with the
        precision and mean of :func:`gaussian_visible_rows`."""
        n, (n_visible, n_hidden) = v.shape[0], self.W.shape
        h = rng.uniform(n, n_hidden, seed, stream + 1, step) < numpy_sigmoid(
            beta * (self.weight_input(v) @ self.W + self.c))
        precision = (1 - beta) / self.s ** 2 + beta / self.sigma ** 2
        mean = ((1 - beta) * self.mu / self.s ** 2
                + beta * (self.b + self.sigma * (h @ self.W.T)) / self.sigma ** 2) / precision
        z = rng.normal(n, n_visible, seed, stream + 2, step)
        return mean + z / np.sqrt(precision)

    def kernel_arrays(self, backend, visible):
        """As :meth:`BernoulliPath.kernel_arrays`: the products read v / sigma."""
        v = backend.asarray(visible)
        u = backend.asarray(self.weight_input(np.asarray(visible, np.float64)))
        own = tuple(backend.asarray(x) for x in (self.mu, 1 / self.s ** 2, self.b, self.sigma))
        return u, v, (v, u) + own


# -- the annealing --------------------------------------------------------------------------
def chain_arrays(backend, path, visible):
    """Everything the annealing kernels read and write, on ``backend``, allocated once:
    ``(weight_input, states, own, W, c, zeros, x, h, top)``: the three of
    ``path.kernel_arrays``, W (n_visible, n_hidden), c (n_hidden,), zeros (max(n_visible,
    n_hidden),) for the bias-free products, and buffers for the hidden inputs x and states h
    (n, n_hidden) and the visible inputs top (n, n_visible)."""
    n, (n_visible, n_hidden) = visible.shape[0], path.W.shape
    weight_input, states, own = path.kernel_arrays(backend, visible)
    return (weight_input, states, own, backend.asarray(path.W), backend.asarray(path.c),
            backend.zeros(max(n_visible, n_hidden)), backend.empty((n, n_hidden)),
            backend.empty((n, n_hidden)), backend.empty((n, n_visible)))


def anneal(backend, path, visible, betas, seed, stream, log_weights, report=None):
    """Move the chains ``visible`` (n, n_visible) through the inverse temperatures ``betas``
    (K + 1,) float32, adding log p*_{beta_k}(v) - log p*_{beta_(k-1)}(v) to ``log_weights``
    (n,) float64 before each Gibbs step at beta_k (see the module docstring). Hidden units draw
    from Philox stream ``stream + 1``, visible units from ``stream + 2``, step k.

    ``report(k)``, when given, is called after temperature k (or after a block of them).
    Returns ``(log_weights, visible)``: the final log-weights (n,) and states (n, n_visible),
    NumPy arrays.
    """
    report = report or (lambda done: None)
    betas = np.asarray(betas, np.float32)
    log_weights = np.array(log_weights, np.float64)
    if not backend.launches_kernels:
        v = np.array(visible, np.float64)
        for k in range(1, len(betas)):
            beta, previous = float(betas[k]), float(betas[k - 1])
            log_weights += path.log_p_star(v, beta) - path.log_p_star(v, previous)
            v = path.gibbs(v, beta, seed, stream, k)
            report(k)
        return log_weights, v.astype(np.float32)
    if backend.host_kernels:   # only then: the module imports the CPU backend
        from .cpu_annealing import anneal_on_host
        return anneal_on_host(backend, path, visible, betas, seed, stream, log_weights, report)
    return _anneal_by_launches(backend, path, visible, betas, seed, stream, log_weights, report)


def _anneal_by_launches(backend, path, visible, betas, seed, stream, log_weights, report):
    """Every temperature as two products and two launches (the cuda backend)."""
    be = backend
    n = visible.shape[0]
    weight_input, states, own, W, c, zeros, x, h, top = chain_arrays(be, path, visible)
    data_term = be.asarray(path.data_term(visible), np.float64)
    weights = be.asarray(log_weights, np.float64)
    k0, k1 = rng.key_from_seed(seed)
    hidden_stream, visible_stream = np.uint64(stream + 1), np.uint64(stream + 2)
    with be.compute():
        for k in range(1, len(betas)):
            step = np.uint64(k)
            be.gemm(weight_input, W, x)
            be.launch_rows(hidden_step_rows, n, 1, x, c, betas[k - 1], betas[k], data_term,
                           weights, zeros, h, k0, k1, hidden_stream, step)
            be.gemm(h, W, top, trans_b=True)
            be.launch_rows(path.visible_body, n, 1, top, betas[k], k0, k1, visible_stream,
                           step, data_term, *own)
            report(k)
    return be.to_numpy(weights), be.to_numpy(states)
