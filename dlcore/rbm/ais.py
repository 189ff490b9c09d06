"""Likelihoods of RBMs too large to enumerate: annealed importance sampling (AIS) for log Z, the
reverse annealing of RAISE for a bracket, and ``rbm.log_likelihood(X)``.

Neal (2001), "Annealed importance sampling"; Salakhutdinov & Murray (2008), "On the quantitative
analysis of deep belief networks", whose schedule (dense near beta = 1) and base model (visible
biases from the data's marginals, no hidden units) are used here; Burda, Grosse & Salakhutdinov
(2015), "Accurate and conservative estimates of MRF log-likelihood using reverse annealing"
(RAISE). The annealing itself (a path of distributions from the base model to the RBM, its Gibbs
steps and log-weights, written once as a NumPy reference and as kernels) is
:mod:`dlcore.rbm.annealing`; this module says what to anneal and what the weights mean.

* :func:`ais_log_partition`: ``n_runs`` chains start from exact samples of the base model p_0
  and anneal to the RBM; the mean of their importance weights w is an unbiased estimate of
  Z / Z_0, so log Z = log Z_0 + log mean(w). Its log is biased *low* (Jensen): too few
  temperatures give too small a log Z, and so too high a log-likelihood.
* :func:`raise_log_probability`: a chain starts at a test vector v and anneals back to p_0; its
  weight is an unbiased estimate of p_ann(v), the probability of v under the annealing process
  itself (which tends to p(v) as the temperatures grow), so its log is biased *low* for
  log p_ann(v). That is conservative for log p(v), biased the other way from AIS, when p_ann
  models the test data no better than p, as Burda et al. found; not on every model: on a
  784-12 RBM trained by CD-1 it was 1 nat above the exact log p(v) at 1,000 temperatures
  (docs/rbm.md), the annealing's own mixture of modes fitting the test digits better.
* :func:`log_likelihood`: the mean log p(v) = -F(v) - log Z over test rows, with a 95% interval
  from AIS's standard error and the bracket (RAISE, AIS): two estimates with opposite biases,
  whose gap closes as the temperatures grow (a wide gap asks for more); or exact
  (``method="exact"``) for RBMs with at most 24 hidden (or visible) units.

Both Bernoulli and Gaussian-Bernoulli RBMs are annealed (:mod:`dlcore.rbm.annealing`), on the
model's backend: NumPy (the reference), the CPU's kernels (every chain's temperatures in one
parallel region, products by BLAS) or CUDA's. The estimates are checked against exact
enumeration (:func:`dlcore.rbm.monitors.exact_log_partition`) on RBMs small enough for it.
Timings and accuracy are in docs/rbm.md, "How accurate is AIS?".
"""
import sys
import time
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from dlcore.backend import get_backend, rng
from dlcore.backend.reference import log_sum_exp
from dlcore.callbacks import redraws_a_line
from dlcore.validation import check_data, check_int

from .annealing import BernoulliPath, GaussianPath, anneal

#: The defaults of :func:`ais_log_partition` (docs/rbm.md has their cost and accuracy).
DEFAULT_RUNS = 100
DEFAULT_TEMPERATURES = 1_000
#: Test rows whose reverse chains give :func:`log_likelihood`'s bracket (the cost of AIS's
#: 100 runs again).
DEFAULT_REVERSE_ROWS = 100
#: Two-sided 95% quantile of the normal distribution.
Z_95 = 1.959964


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


@dataclass(frozen=True)
class LogLikelihood:
    """The result of :func:`log_likelihood`: unpacks as ``mean, (low, high) = ...``.

    Attributes
    ----------
    mean : float, mean log p(v) over the test rows, nats per sample: mean(-F(v)) - log Z
    interval : (low, high), its 95% interval from the uncertainty of log Z alone (AIS's
        standard error; zero width when exact). The test rows are taken as given: the spread
        of log p(v) over them is ``data_standard_error``
    method : "ais" or "exact"
    log_z : float, log Z (AIS's estimate, or exact)
    log_z_standard_error : float
    bracket : (raise, ais) or None: the mean log p(v) with RAISE's log Z and with AIS's
        (``mean``). AIS's errs high (its log Z low), RAISE's low for the annealing's own
        distribution, and so usually for p; the gap closes as the temperatures grow. On the
        tests' small models the exact value lies between them, within their standard errors
        (not on every model: docs/rbm.md). None when exact or without reverse chains
    log_z_upper, log_z_upper_standard_error : float or None, RAISE's log Z: the mean over the
        reverse chains' rows of -F(v) - log p_RAISE(v), and its standard error
    n_samples : int, the number of test rows
    data_standard_error : float, std of log p(v) over the rows / sqrt(n_samples)
    """

    mean: float
    interval: tuple
    method: str
    log_z: float
    log_z_standard_error: float = 0.0
    bracket: tuple | None = None
    log_z_upper: float | None = None
    log_z_upper_standard_error: float | None = None
    n_samples: int = 0
    data_standard_error: float = 0.0

    def __iter__(self):
        return iter((self.mean, self.interval))

    def __str__(self):
        low, high = self.interval
        text = f"{self.mean:.2f} nats per sample ({self.method}"
        if self.method == "ais":
            text += f", 95% interval {low:.2f} to {high:.2f}"
        if self.bracket is not None:
            text += f"; RAISE to AIS bracket {self.bracket[0]:.2f} to {self.bracket[1]:.2f}"
        return text + ")"


def annealing_schedule(n_temperatures=14_500):
    """Inverse temperatures 0 = beta_0 < ... < beta_K = 1, denser near 1 where the
    distributions change fastest: Salakhutdinov & Murray's 0-0.5 (1,000 steps), 0.5-0.9 (4,000)
    and 0.9-1 (10,000), scaled to K = ``n_temperatures`` steps in all: K + 1 values.

    The three shares are rounded down and the steps left go to the largest remainders, so the
    total is always K (each share rounded alone gave 3,001 steps for 3,000, 101 for 100)."""
    shares = np.array([1_000, 4_000, 9_500]) * n_temperatures / 14_500
    counts = np.floor(shares).astype(np.int64)
    counts[0] = max(counts[0], 1)   # the first share holds beta_0 = 0
    left = n_temperatures - int(counts.sum())
    counts[np.argsort(np.floor(shares) - shares, kind="stable")[:max(left, 0)]] += 1
    edges = [0.0, 0.5, 0.9, 1.0]
    pieces = [np.linspace(edges[i], edges[i + 1], int(counts[i]), endpoint=False)
              for i in range(3)]
    return np.concatenate(pieces + [np.array([1.0])])


def ais_log_partition(rbm, visible_bias=None, hidden_bias=None, base_visible_bias=None,
                      n_runs=DEFAULT_RUNS, n_temperatures=DEFAULT_TEMPERATURES, seed=0,
                      progress=None, verbose=False, data=None, backend=None):
    """log Z of an RBM by annealed importance sampling.

    From the base model p_0 (binary units: independent pixels with biases
    ``base_visible_bias``, or the log-odds of the pixel means of ``data``, else the model's own;
    Gaussian units: N(mean, variance) of ``data``'s columns, else N(b, sigma^2)), whose
    log Z_0 is exact, to the RBM through the unnormalised log-probabilities (hidden units summed
    out at inverse temperature beta; :mod:`dlcore.rbm.annealing`)

        log p*_beta(v) = (1 - beta) a.v + beta b.v + sum_j softplus(beta (c_j + v.W_j)),

    all runs at once, each moved by one Gibbs step that leaves p_beta invariant and weighted by
    log w += log p*_{beta_k}(v) - log p*_{beta_(k-1)}(v) (in float64).

    Parameters
    ----------
    rbm : a fitted :class:`~dlcore.BernoulliRBM` or :class:`~dlcore.GaussianBernoulliRBM`, or
        the weights W (n_visible, n_hidden) of a Bernoulli RBM given with ``visible_bias``
        (n_visible,) and ``hidden_bias`` (n_hidden,)
    visible_bias, hidden_bias : (n_visible,) and (n_hidden,) arrays, with weights as ``rbm``
        only (None with a fitted model)
    base_visible_bias : (n_visible,), optional, the base model's visible biases (binary units)
    data : (n, n_visible) array, optional, the training data: the base model is fitted to its
        columns (binary units: log(p / (1 - p)) of the pixel means p, clipped to
        [1e-3, 1 - 1e-3], Salakhutdinov & Murray's choice; more accurate on a trained RBM than
        the model's own biases: on docs/rbm.md's 784-500 RBM, 0.6 instead of 1.4 nats low)
    n_runs : int, independent annealing runs (the standard error shrinks as 1 / sqrt(n_runs))
    n_temperatures : int, inverse temperatures of :func:`annealing_schedule` (more: less
        downward bias; the cost grows linearly; Salakhutdinov & Murray used 14,500)
    seed : int, the Philox key of the runs (stream ``rng.STREAM_AIS``)
    progress : callable, optional, ``progress(done, total)`` in temperatures, about 100 times
    verbose : bool, print the progress to stderr (``AIS: 40% (400/1000 temperatures, 2.0 s)``)
    backend : backend name, optional (default: the model's ``backend``; ``"auto"`` for arrays)

    Returns
    -------
    :class:`AISEstimate` ``(log_z, standard_error)``: log Z_0 + log mean(w), and the
    delta-method standard error of that log over the runs.
    """
    path, backend = annealing_path(rbm, visible_bias, hidden_bias, base_visible_bias, data,
                                   backend)
    n_runs = check_int(n_runs, "n_runs", minimum=2)
    betas = annealing_schedule(check_int(n_temperatures, "n_temperatures", minimum=1))
    report = _progress_reporter(progress, verbose, len(betas) - 1, "AIS")
    start = path.sample_base(n_runs, seed, rng.STREAM_AIS)
    log_weights, _ = anneal(backend, path, start, betas, seed, rng.STREAM_AIS,
                            np.zeros(n_runs), report)
    log_mean_weight = log_sum_exp(log_weights, axis=0)[0] - np.log(n_runs)
    relative = np.exp(log_weights - log_weights.max())
    standard_error = relative.std() / (relative.mean() * np.sqrt(n_runs))
    return AISEstimate(float(path.log_z_base() + log_mean_weight), float(standard_error))


def raise_log_probability(rbm, X, n_runs=1, n_temperatures=DEFAULT_TEMPERATURES, seed=0,
                          progress=None, verbose=False, data=None, backend=None):
    """Estimates of log p(v) for each row of ``X`` by reverse annealing (RAISE, Burda, Grosse &
    Salakhutdinov 2015), usually conservative.

    A chain starts at the test vector x_K = v and runs the annealing of :func:`ais_log_partition`
    backwards, x_(k-1) drawn by a Gibbs step at beta_k for k = K .. 1 (Gibbs steps are
    reversible, so this is the reverse of the forward process). Its weight

        log p_RAISE(v) = log p*_1(v) - log Z_0 + sum_(k=0)^(K-1) [log p*_k(x_k) - log p*_(k+1)(x_k)]

    needs no log Z: it is an unbiased estimate of p_ann(v), the probability that the forward
    annealing (exact samples of p_0, then the Gibbs steps) ends at v. So its log is biased low
    for log p_ann(v), and p_ann(v) tends to p(v) as ``n_temperatures`` grows: conservative when
    p_ann models v no better than p does (see the module docstring for when it did not), its
    error then the other way from AIS's. ``n_runs`` chains per row are averaged (as weights:
    log mean exp).

    Parameters
    ----------
    rbm, data, backend : as for :func:`ais_log_partition` (``data`` fits the base model)
    X : (n, n_visible) the test rows
    n_runs, n_temperatures, seed : chains per row, temperatures, the Philox key (stream
        ``rng.STREAM_RAISE``; chain r * n + i starts at row i)
    progress, verbose : as for :func:`ais_log_partition` (``RAISE: 40% ...``)

    Returns
    -------
    (n,) float64, one estimate of log p(v) per row, in nats.
    """
    path, backend = annealing_path(rbm, None, None, None, data, backend)
    X = check_data(X, "X", n_columns=path.W.shape[0], columns_meaning="visible units")
    n_runs = check_int(n_runs, "n_runs", minimum=1)
    schedule = annealing_schedule(check_int(n_temperatures, "n_temperatures", minimum=1))
    betas = np.concatenate([[1.0], schedule[::-1]])   # a Gibbs step at beta = 1 first
    report = _progress_reporter(progress, verbose, len(betas) - 1, "RAISE")
    start = np.tile(X, (n_runs, 1))
    log_weights = path.log_p_star(start, 1.0) - path.log_z_base()
    log_weights, _ = anneal(backend, path, start, betas, seed, rng.STREAM_RAISE, log_weights,
                            report)
    per_run = log_weights.reshape(n_runs, len(X))
    return log_sum_exp(per_run, axis=0)[0] - np.log(n_runs)


def log_likelihood(rbm, X, method="ais", n_runs=DEFAULT_RUNS,
                   n_temperatures=DEFAULT_TEMPERATURES, seed=0, data=None,
                   reverse_rows=DEFAULT_REVERSE_ROWS, backend=None, progress=None,
                   verbose=False):
    """The mean log-probability of the test rows ``X`` under a fitted RBM, in nats per sample:

        mean_v log p(v) = mean_v [-F(v)] - log Z

    with log Z exact (``method="exact"``: enumeration, at most 24 units in the smaller layer,
    or 24 hidden units for Gaussian visibles) or by AIS (``method="ais"``), and then, from
    ``reverse_rows`` of the rows, RAISE's estimate, usually conservative: the bracket.

    Parameters
    ----------
    rbm : a fitted BernoulliRBM (without label units) or GaussianBernoulliRBM
    X : (n, n_visible) test rows
    method : "ais" or "exact"
    n_runs, n_temperatures, seed : AIS's (:func:`ais_log_partition`); RAISE uses the same
        temperatures and seed, one chain per row
    data : (m, n_visible), optional, the data the base model is fitted to (default: ``X``;
        Salakhutdinov & Murray fit it to the training data; any base model gives an unbiased
        estimate, a closer one a less noisy one)
    reverse_rows : int, test rows (chosen at random with ``seed``) whose reverse chains give the
        bracket; 0 for none (AIS alone, half the cost)
    backend : backend name, optional (default: the model's)
    progress : callable, optional, ``progress(phase, done, total)`` with phase "AIS" or "RAISE"
    verbose : bool, print the progress to stderr

    Returns
    -------
    :class:`LogLikelihood`, which unpacks as ``mean, (low, high)``.
    """
    X = rbm._check_visible_input(X)
    if method not in ("ais", "exact"):
        raise ValueError(f"method must be 'ais' or 'exact', got {method!r}")
    reverse_rows = check_int(reverse_rows, "reverse_rows", minimum=0)
    minus_free_energy = -np.asarray(rbm.free_energy(X), np.float64)
    n = len(X)
    if method == "exact":
        log_z = float(rbm.log_partition())
        mean = float(minus_free_energy.mean() - log_z)
        return LogLikelihood(mean, (mean, mean), "exact", log_z, n_samples=n,
                             data_standard_error=_standard_error(minus_free_energy))

    def phase_progress(name):
        return None if progress is None else (lambda done, total: progress(name, done, total))

    base_data = X if data is None else data
    log_z, log_z_error = ais_log_partition(
        rbm, n_runs=n_runs, n_temperatures=n_temperatures, seed=seed, data=base_data,
        backend=backend, progress=phase_progress("AIS"), verbose=verbose)
    mean = float(minus_free_energy.mean() - log_z)
    half_width = Z_95 * log_z_error
    bracket = log_z_upper = log_z_upper_error = None
    if reverse_rows:
        rows = np.sort(rng.permutation(n, seed, rng.STREAM_RAISE)[:reverse_rows])
        log_p = raise_log_probability(rbm, X[rows], n_temperatures=n_temperatures, seed=seed,
                                      data=base_data, backend=backend,
                                      progress=phase_progress("RAISE"), verbose=verbose)
        implied_log_z = minus_free_energy[rows] - log_p   # each an upper estimate of log Z
        log_z_upper = float(implied_log_z.mean())
        log_z_upper_error = _standard_error(implied_log_z)
        bracket = (float(minus_free_energy.mean() - log_z_upper), mean)
    return LogLikelihood(mean, (mean - half_width, mean + half_width), "ais", log_z,
                         log_z_error, bracket, log_z_upper, log_z_upper_error, n,
                         _standard_error(minus_free_energy))


def _standard_error(values):
    """std / sqrt(n) of a 1-D array (0 for a single value)."""
    return float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0


# -- what is annealed ---------------------------------------------------------------------------
def annealing_path(rbm, visible_bias=None, hidden_bias=None, base_visible_bias=None, data=None,
                   backend=None):
    """``(path, backend)``: the :mod:`dlcore.rbm.annealing` path from the base model to ``rbm``
    (a fitted RBM, or W with the two biases) and the backend it runs on (see
    :func:`ais_log_partition` for the arguments)."""
    from .gaussian import GaussianBernoulliRBM  # the estimators import this module's siblings
    W, b, c, sigma = _parameters(rbm, visible_bias, hidden_bias)
    backend = get_backend(backend or getattr(rbm, "backend", "auto"))
    if data is not None and base_visible_bias is not None:
        raise ValueError("give base_visible_bias or data, not both")
    if isinstance(rbm, GaussianBernoulliRBM):
        if base_visible_bias is not None:
            raise ValueError("base_visible_bias is for binary visible units; a Gaussian RBM's "
                             "base model is fitted to data= (or is N(b, sigma^2))")
        mean, sd = b, sigma
        if data is not None:
            columns = _check_base_data(data, W.shape[0], binary=False)
            mean, sd = columns.mean(axis=0), np.maximum(columns.std(axis=0), 0.01 * sigma)
        return GaussianPath(W, b, c, sigma, mean, sd), backend
    if data is not None:
        base_visible_bias = visible_log_odds(data, W.shape[0])
    a = b if base_visible_bias is None else np.asarray(base_visible_bias, dtype=np.float64)
    if a.shape != b.shape or not np.all(np.isfinite(a)):
        raise ValueError(f"base_visible_bias must be {b.shape[0]} finite numbers, got shape "
                         f"{a.shape}")
    return BernoulliPath(W, b, c, a), backend


def visible_log_odds(data, n_visible, clip=1e-3):
    """log(p / (1 - p)) of the column means p of ``data`` (n, n_visible), p clipped to
    [clip, 1 - clip]: the visible biases of a model without hidden units fitted to the data."""
    p = np.clip(_check_base_data(data, n_visible, binary=True).mean(axis=0), clip, 1 - clip)
    return np.log(p / (1 - p))


def _check_base_data(data, n_visible, binary):
    data = np.asarray(data, dtype=np.float64)
    if data.ndim != 2 or data.shape[1] != n_visible or len(data) == 0:
        raise ValueError(f"data must be (n, {n_visible}) rows, got shape {data.shape}")
    if not np.all(np.isfinite(data)):
        raise ValueError("data contains NaN or infinite values")
    if binary and (data.min() < 0 or data.max() > 1):
        raise ValueError("data for a binary RBM's base model must lie in [0, 1]")
    return data


def _parameters(rbm, visible_bias, hidden_bias):
    """(W, b, c, sigma) in float64 (sigma None for binary units) from a fitted RBM or from
    the three arrays of a Bernoulli RBM."""
    from .estimator import RBMBase
    if isinstance(rbm, RBMBase):
        rbm._check_fitted()
        if visible_bias is not None or hidden_bias is not None:
            raise ValueError("pass an RBM alone, or W with visible_bias and hidden_bias: drop "
                             "the biases when passing a model")
        if getattr(rbm, "n_labels", 0):
            raise ValueError("AIS here anneals binary or Gaussian visible units; this RBM has "
                             "softmax label units: use one with n_labels=0")
        parameters = rbm._float64_parameters()
        return parameters + (None,) * (4 - len(parameters))
    if hasattr(rbm, "W"):
        raise ValueError(f"AIS needs a BernoulliRBM or GaussianBernoulliRBM, not "
                         f"{type(rbm).__name__}")
    if visible_bias is None or hidden_bias is None:
        raise ValueError("ais_log_partition(W, visible_bias, hidden_bias) needs both biases "
                         "with a weight matrix; or pass a fitted BernoulliRBM alone")
    W, b, c = (np.asarray(x, dtype=np.float64) for x in (rbm, visible_bias, hidden_bias))
    if W.ndim != 2 or b.shape != W.shape[:1] or c.shape != W.shape[1:]:
        raise ValueError(f"W {W.shape}, visible_bias {b.shape} and hidden_bias {c.shape} do "
                         "not fit: W must be (n_visible, n_hidden)")
    return W, b, c, None


def _progress_reporter(progress, verbose, total, label="AIS"):
    """``report(done)``: calls ``progress`` every 1% (or as rarely as ``report`` is called) and,
    with ``verbose``, writes to stderr (rewriting one line on a terminal or in a notebook, a
    line every 10% otherwise: which streams redraw a line is decided as for the training
    progress, by :func:`dlcore.callbacks.redraws_a_line`)."""
    started = time.perf_counter()
    every = max(1, total // 100)
    terminal = redraws_a_line(sys.stderr)
    last_tenth, last_done = [0], [0]

    def report(done):
        if done - last_done[0] < every and done != total:
            return
        last_done[0] = done
        if progress is not None:
            progress(done, total)
        if not verbose:
            return
        tenth = done * 10 // total
        if not terminal and tenth == last_tenth[0] and done != total:
            return
        last_tenth[0] = tenth
        line = (f"{label}: {100 * done // total}% ({done}/{total} temperatures, "
                f"{time.perf_counter() - started:.1f} s)")
        end = "\n" if done == total or not terminal else ""
        sys.stderr.write(("\r" if terminal else "") + line + end)
        sys.stderr.flush()

    return report
