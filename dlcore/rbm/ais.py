"""log Z of an RBM too large to enumerate: annealed importance sampling (AIS).

Neal (2001), "Annealed importance sampling"; Salakhutdinov & Murray (2008), "On the quantitative
analysis of deep belief networks", whose schedule (dense near beta = 1) and base model (visible
biases from the data, no hidden units) are used here. The estimate is checked against
:func:`dlcore.rbm.monitors.exact_log_partition` on RBMs small enough to enumerate.

Cost and accuracy of the defaults (100 runs, 1,000 inverse temperatures), measured on RBMs
trained on mnist-5k (docs/rbm.md, "How accurate is AIS?", has the table and the script):

* time: about 4 s of CPU time on a 784-500 RBM (two float32 products per temperature, BLAS on
  one thread; the log-weights accumulate in float64). Measured on a 2-core machine shared with
  other jobs, where the wall-clock time was 5-28 s; Salakhutdinov & Murray's 14,500
  temperatures took 62 s of CPU time.
* accuracy, with the data's base model (``data=X``): on a 784-12 RBM, within 0.13 nats of the
  exact log Z (standard error 0.07); on a 784-500 RBM, 0.4-1.0 nats below a 14,500-temperature
  run (standard error 0.4-0.6), out of log Z = 527. AIS is biased low (it is the log of an
  unbiased estimate of Z): too few temperatures give too small a log Z, which the standard
  error over the runs does not show (300 temperatures: 4-6 nats low).
"""
import sys
import time
from typing import NamedTuple

import numpy as np
from threadpoolctl import threadpool_limits

from dlcore.backend import rng
from dlcore.backend.reference import log_sum_exp, sigmoid
from dlcore.callbacks import _is_terminal

from .model import softplus

#: The defaults: about 4 s of CPU time on a 784-500 RBM (see the module docstring).
DEFAULT_RUNS = 100
DEFAULT_TEMPERATURES = 1_000


class AISEstimate(NamedTuple):
    """The result of :func:`ais_log_partition`; unpacks as ``log_z, standard_error = ...``.

    Attributes
    ----------
    log_z : float, the estimate of log Z (nats)
    standard_error : float, the delta-method standard error of ``log_z`` over the runs (the
        spread of the runs; AIS's downward bias with too few temperatures is not in it)
    """

    log_z: float
    standard_error: float


def annealing_schedule(n_temperatures=14_500):
    """Inverse temperatures 0 = beta_0 < ... < beta_K = 1, denser near 1 where the
    distributions change fastest: Salakhutdinov & Murray's 0-0.5 (1,000 steps), 0.5-0.9 (4,000)
    and 0.9-1 (10,000), scaled to ``n_temperatures`` in all."""
    counts = np.maximum(1, np.round(np.array([1_000, 4_000, 9_500]) * n_temperatures / 14_500))
    edges = [0.0, 0.5, 0.9, 1.0]
    pieces = [np.linspace(edges[i], edges[i + 1], int(counts[i]), endpoint=False)
              for i in range(3)]
    return np.concatenate(pieces + [np.array([1.0])])


def ais_log_partition(rbm, visible_bias=None, hidden_bias=None, base_visible_bias=None,
                      n_runs=DEFAULT_RUNS, n_temperatures=DEFAULT_TEMPERATURES, seed=0,
                      progress=None, verbose=False, data=None):
    """log Z of a Bernoulli RBM by annealed importance sampling.

    From the base model A (visible biases ``base_visible_bias``, or the log-odds of the pixel
    means of ``data``, else the model's own; hidden units disconnected), whose
    log Z_A = sum_i softplus(a_i) + n_hidden log 2 is exact, to the RBM B through the
    unnormalised log-probabilities (B's hidden units summed out at inverse temperature beta)

        log p*_beta(v) = (1 - beta) a.v + beta b.v + sum_j softplus(beta (c_j + v.W_j)),

    all runs at once, each moved by one Gibbs step that leaves p_beta invariant and weighted by
    log w += log p*_{beta_k}(v) - log p*_{beta_(k-1)}(v) (in float64).

    Parameters
    ----------
    rbm : a fitted :class:`~dlcore.BernoulliRBM`, or its weights W (n_visible, n_hidden)
        given with ``visible_bias`` (n_visible,) and ``hidden_bias`` (n_hidden,)
    base_visible_bias : (n_visible,), optional, the base model's visible biases
    data : (n, n_visible) array in [0, 1], optional, the training data: the base model's
        visible biases become log(p / (1 - p)) of its pixel means p (clipped to [1e-3, 1 - 1e-3]),
        Salakhutdinov & Murray's choice; on a trained RBM more accurate than the model's own
        biases (on docs/rbm.md's 784-500 RBM, 0.6 instead of 1.4 nats low on average)
    n_runs : int, independent annealing runs (the standard error shrinks as 1 / sqrt(n_runs))
    n_temperatures : int, inverse temperatures of :func:`annealing_schedule` (more: less
        downward bias; the cost grows linearly; Salakhutdinov & Murray used 14,500)
    seed : int, the Philox key of the runs
    progress : callable, optional, ``progress(done, total)`` in temperatures, about 100 times
    verbose : bool, print the progress to stderr (``AIS: 40% (400/1000 temperatures, 2.0 s)``)

    Returns
    -------
    :class:`AISEstimate` ``(log_z, standard_error)``: log Z_A + log mean(w), and the
    delta-method standard error of that log over the runs.
    """
    from dlcore.validation import check_int
    W, b, c = _bernoulli_parameters(rbm, visible_bias, hidden_bias)
    if data is not None:
        if base_visible_bias is not None:
            raise ValueError("give base_visible_bias or data, not both")
        base_visible_bias = visible_log_odds(data, W.shape[0])
    a = b if base_visible_bias is None else np.asarray(base_visible_bias, dtype=np.float64)
    if a.shape != b.shape or not np.all(np.isfinite(a)):
        raise ValueError(f"base_visible_bias must be {b.shape[0]} finite numbers, got shape "
                         f"{a.shape}")
    n_runs = check_int(n_runs, "n_runs", minimum=2)
    n_temperatures = check_int(n_temperatures, "n_temperatures", minimum=1)
    n_visible, n_hidden = W.shape
    betas = annealing_schedule(n_temperatures)
    # The products run in float32 (twice as fast; their rounding, ~1e-6 of each input to a
    # hidden unit, is far below the estimate's error); every log-weight term is float64. BLAS
    # gets one thread: on a busy 2-core machine its spinning threads made AIS 4x slower.
    W32 = np.ascontiguousarray(W, dtype=np.float32)
    WT32 = np.ascontiguousarray(W.T, dtype=np.float32)
    b_minus_a = b - a
    steps = len(betas) - 1
    report = _progress_reporter(progress, verbose, steps)

    v = (rng.uniform(n_runs, n_visible, seed, rng.STREAM_SAMPLE, 0) < sigmoid(a))
    v = v.astype(np.float32)
    log_weights = np.zeros(n_runs)
    with threadpool_limits(limits=1, user_api="blas"):
        for k in range(1, len(betas)):
            beta, previous = betas[k], betas[k - 1]
            x = (v @ W32).astype(np.float64) + c          # (n_runs, n_hidden) hidden inputs
            # softplus(beta x) = beta max(x, 0) + log1p(exp(-beta |x|)), both betas sharing
            # |x|: log p*_beta(v) - log p*_previous(v) with the a.v terms folded into b - a.
            magnitude = np.abs(x)
            decay = np.exp(-beta * magnitude)
            log_weights += (beta - previous) * (v @ b_minus_a + np.maximum(x, 0).sum(axis=1))
            log_weights += (np.log1p(decay)
                            - np.log1p(np.exp(-previous * magnitude))).sum(axis=1)
            # sigm(beta x) = 1 / (1 + exp(-beta x)), from the exponential computed above for
            # the weights (the one place the sigmoid is not reference.sigmoid: it saves an exp
            # over every hidden unit at every temperature)
            hidden_probability = np.where(x >= 0, 1.0, decay) / (1.0 + decay)
            u = rng.uniform(n_runs, n_hidden + n_visible, seed, rng.STREAM_SAMPLE + 1, k)
            h = (u[:, :n_hidden] < hidden_probability).astype(np.float32)
            visible_input = (1 - beta) * a + beta * (b + h @ WT32)
            v = (u[:, n_hidden:] < sigmoid(visible_input)).astype(np.float32)
            report(k)
    log_z_base = softplus(a).sum() + n_hidden * np.log(2.0)
    log_mean_weight = log_sum_exp(log_weights, axis=0)[0] - np.log(n_runs)
    relative = np.exp(log_weights - log_weights.max())
    standard_error = relative.std() / (relative.mean() * np.sqrt(n_runs))
    return AISEstimate(float(log_z_base + log_mean_weight), float(standard_error))


def visible_log_odds(data, n_visible, clip=1e-3):
    """log(p / (1 - p)) of the column means p of ``data`` (n, n_visible), p clipped to
    [clip, 1 - clip]: the visible biases of a model without hidden units fitted to the data."""
    data = np.asarray(data, dtype=np.float64)
    if data.ndim != 2 or data.shape[1] != n_visible or len(data) == 0:
        raise ValueError(f"data must be (n, {n_visible}) rows, got shape {data.shape}")
    p = np.clip(data.mean(axis=0), clip, 1 - clip)
    if not np.all(np.isfinite(p)):
        raise ValueError("data contains NaN or infinite values")
    return np.log(p / (1 - p))


def _progress_reporter(progress, verbose, total):
    """``report(done)``: calls ``progress`` about every 1% and, with ``verbose``, writes to
    stderr (rewriting one line on a terminal, a line every 10% otherwise: what is a terminal
    is decided as for the training progress, by :mod:`dlcore.callbacks`)."""
    started = time.perf_counter()
    every = max(1, total // 100)
    terminal = _is_terminal(sys.stderr)
    last_tenth = [0]

    def report(done):
        if done % every and done != total:
            return
        if progress is not None:
            progress(done, total)
        if not verbose:
            return
        tenth = done * 10 // total
        if not terminal and tenth == last_tenth[0] and done != total:
            return
        last_tenth[0] = tenth
        line = (f"AIS: {100 * done // total}% ({done}/{total} temperatures, "
                f"{time.perf_counter() - started:.1f} s)")
        end = "\n" if done == total or not terminal else ""
        sys.stderr.write(("\r" if terminal else "") + line + end)
        sys.stderr.flush()

    return report


def _bernoulli_parameters(rbm, visible_bias, hidden_bias):
    """(W, b, c) in float64 from a fitted BernoulliRBM or from the three arrays."""
    from .bernoulli import BernoulliRBM  # the estimator imports this module's siblings
    if isinstance(rbm, BernoulliRBM):
        rbm._check_fitted()
        if rbm.n_labels:
            raise ValueError("AIS here anneals binary visible units; this RBM has softmax "
                             "label units: use one with n_labels=0")
        return rbm._float64_parameters()
    if hasattr(rbm, "W"):
        raise ValueError(f"AIS is implemented for BernoulliRBM, not {type(rbm).__name__}: "
                         "for Gaussian visibles use exact_log_partition (<= 24 hidden units)")
    if visible_bias is None or hidden_bias is None:
        raise ValueError("ais_log_partition(W, visible_bias, hidden_bias) needs both biases "
                         "with a weight matrix; or pass a fitted BernoulliRBM alone")
    return tuple(np.asarray(x, dtype=np.float64) for x in (rbm, visible_bias, hidden_bias))
