"""How well a DBN models its data: Salakhutdinov & Murray's (2008) variational lower bound on
log p(v), with AIS on the top RBM, and log p(v) exactly for DBNs small enough to enumerate.

A DBN of L RBMs is the generative model (Hinton, Osindero & Teh 2006) whose top two layers are
the top RBM and whose lower layers are directed, h_0 = v:

    p(v, h_1, ..., h_L) = p(h_(L-1), h_L) prod_(l=1)^(L-1) p(h_(l-1) | h_l),
    p(h_(l-1) = 1 | h_l) = sigm(g_(l-1) + G_(l-1) h_l)       (Gaussian v: N(g + sigma G h, sigma^2))

with (G_l, g_l) each lower RBM's weights and visible biases (or their untied copies after
up-down, ``dbn.generative_``). The recognition passes Q(h_l = 1 | h_(l-1)) = sigm(c_l +
h_(l-1) W_l) are a factorial distribution over the hidden layers, so (Jensen)

    log p(v) >= E_Q [ -F_top(h_(L-1)) + sum_(l=1)^(L-1) log p(h_(l-1) | h_l) ]
                + sum_(l=1)^(L-1) E_Q [ H(Q(h_l | h_(l-1))) ] - log Z_top,

F_top the top RBM's free energy (its hidden layer summed out) and H the entropy of a factorial
distribution, -sum_j [q_j log q_j + (1 - q_j) log(1 - q_j)]. The expectations are Monte Carlo
averages over ``n_samples`` draws h_1 ~ Q(h_1 | v), h_2 ~ Q(h_2 | h_1), ... per test row
(Philox stream ``STREAM_BOUND + l``, step = the draw), each entropy exact given the layer below;
log Z_top is AIS's (with RAISE's value for the bracket, :mod:`dlcore.rbm.ais`) or
exact. A DBN of one RBM has no bound to take: its value is the RBM's log p(v).

:func:`exact_log_probability` sums every hidden layer below the top out by enumeration (the
tests' oracle: the bound must lie below it).
"""
import numpy as np

from dlcore.backend import rng
from dlcore.backend.reference import log_sum_exp, sigmoid
from dlcore.rbm.ais import Z_95, LogLikelihood, ais_log_partition, raise_log_probability
from dlcore.rbm.model import softplus
from dlcore.rbm.monitors import MAX_ENUMERATED_UNITS, _binary_states
from dlcore.validation import check_data, check_int, check_matrix

DEFAULT_SAMPLES = 10
#: The widest layer :func:`exact_log_probability` enumerates (2^12 states, paired with the
#: states of the layer above).
MAX_ENUMERATED_LAYER = 12


def log_likelihood_bound(dbn, X, method="ais", n_samples=DEFAULT_SAMPLES, n_runs=100,
                         n_temperatures=1_000, seed=0, reverse_rows=100, backend=None,
                         progress=None, verbose=False):
    """The variational lower bound on the mean log p(v) of the rows of ``X`` (see the module
    docstring), in nats per sample.

    Parameters
    ----------
    dbn : a fitted :class:`dlcore.DBN` without label units
    X : (n, n_features_in_) test rows
    method : "ais" (log Z_top by AIS, with RAISE's bracket) or "exact" (log Z_top enumerated:
        at most 24 units in one of the top RBM's layers)
    n_samples : int, draws from Q per test row
    n_runs, n_temperatures, seed, reverse_rows, backend, progress, verbose : as for
        :func:`dlcore.rbm.ais.log_likelihood`, on the top RBM; its base model is fitted to the
        draws h_(L-1) (and RAISE starts from ``reverse_rows`` of them); ``seed`` also keys the
        draws

    Returns
    -------
    :class:`dlcore.rbm.ais.LogLikelihood`: ``mean`` the bound; ``interval`` its 95% interval
    from log Z's and the Monte Carlo average's standard errors; ``bracket`` the bound with
    RAISE's log Z and with AIS's.
    """
    dbn._check_fitted()
    if dbn.n_labels:
        raise ValueError("log_likelihood_bound needs a DBN without label units (its top RBM "
                         "would model the labels too): train one with n_labels=0")
    if method not in ("ais", "exact"):
        raise ValueError(f"method must be 'ais' or 'exact', got {method!r}")
    X = _check_rows(dbn, X)
    top = dbn.rbms_[-1]
    if len(dbn.rbms_) == 1:
        return top.log_likelihood(X, method=method, n_runs=n_runs,
                                  n_temperatures=n_temperatures, seed=seed,
                                  reverse_rows=reverse_rows, backend=backend,
                                  progress=progress, verbose=verbose)
    n_samples = check_int(n_samples, "n_samples", minimum=1)
    terms, states = _bound_terms(dbn, X, n_samples, seed)      # (n, S), (n * S, n_top_visible)
    per_row = terms.mean(axis=1)
    within_row = terms.var(axis=1, ddof=1).mean() / n_samples if n_samples > 1 else 0.0
    sampling_error = float(np.sqrt(within_row / len(X)))
    data_error = float(per_row.std(ddof=1) / np.sqrt(len(X))) if len(X) > 1 else 0.0
    if method == "exact":
        log_z = float(top.log_partition())
        mean = float(per_row.mean() - log_z)
        half = Z_95 * sampling_error
        return LogLikelihood(mean, (mean - half, mean + half), "exact", log_z,
                             n_samples=len(X), data_standard_error=data_error)

    def phase_progress(name):
        return None if progress is None else (lambda done, total: progress(name, done, total))

    log_z, log_z_error = ais_log_partition(top, n_runs=n_runs, n_temperatures=n_temperatures,
                                           seed=seed, data=states, backend=backend,
                                           progress=phase_progress("AIS"), verbose=verbose)
    mean = float(per_row.mean() - log_z)
    half = Z_95 * float(np.hypot(log_z_error, sampling_error))
    bracket = log_z_upper = log_z_upper_error = None
    reverse_rows = check_int(reverse_rows, "reverse_rows", minimum=0)
    if reverse_rows:
        rows = np.sort(rng.permutation(len(states), seed, rng.STREAM_RAISE)[:reverse_rows])
        chosen = states[rows]
        log_p = raise_log_probability(top, chosen, n_temperatures=n_temperatures, seed=seed,
                                      data=states, backend=backend,
                                      progress=phase_progress("RAISE"), verbose=verbose)
        implied_log_z = -top.free_energy(chosen) - log_p
        log_z_upper = float(implied_log_z.mean())
        log_z_upper_error = (float(implied_log_z.std(ddof=1) / np.sqrt(len(rows)))
                             if len(rows) > 1 else 0.0)
        bracket = (float(per_row.mean() - log_z_upper), mean)
    return LogLikelihood(mean, (mean - half, mean + half), "ais", log_z, log_z_error, bracket,
                         log_z_upper, log_z_upper_error, len(X), data_error)


def _check_rows(dbn, X):
    return check_data(check_matrix(X, "X", "DBN"), "X", n_columns=int(dbn.n_features_in_),
                      unit_interval=dbn.visible == "bernoulli", columns_meaning="visible units")


def _bound_terms(dbn, X, n_samples, seed):
    """The bound's terms before log Z_top, per test row and draw (n, n_samples), and the draws
    h_(L-1) (n * n_samples, width) that the top RBM sees (row r * n_samples + s)."""
    below = dbn.rbms_[:-1]
    n = len(X)
    terms = np.zeros((n, n_samples))
    states = []
    for s in range(n_samples):
        layer = np.asarray(X, np.float64)
        for index, rbm in enumerate(below):
            W, _, c = (np.asarray(a, np.float64) for a in rbm._float64_parameters()[:3])
            probability = sigmoid(_weight_input(rbm, layer) @ W + c)
            hidden = (rng.uniform(n, W.shape[1], seed, rng.STREAM_BOUND + index, s)
                      < probability).astype(np.float64)
            terms[:, s] += (_log_conditional(dbn, index, layer, hidden)
                            + _entropy(probability))
            layer = hidden
        terms[:, s] -= dbn.rbms_[-1].free_energy(layer)
        states.append(layer)
    ordered = np.stack(states, axis=1).reshape(n * n_samples, -1)
    return terms, ordered.astype(np.float32)


def _weight_input(rbm, layer):
    """What multiplies W on the way up: v, or v / sigma for Gaussian units."""
    sigma = getattr(rbm, "visible_sigma", None)
    return layer if sigma is None else layer / np.asarray(sigma, np.float64)


def _log_conditional(dbn, index, lower, upper):
    """log p(h_index | h_(index+1)) per row (h_0 = v): the directed generative connections of
    RBM ``index`` (binary units: sum_i [h_i a_i - softplus(a_i)], a = g + G h_up; Gaussian
    visible units: the log density of N(g + sigma G h_up, sigma^2))."""
    G, g = (np.asarray(a, np.float64) for a in dbn._generative_weights(index))
    top_down = upper @ G.T
    sigma = getattr(dbn.rbms_[index], "visible_sigma", None)
    if sigma is None:
        activation = top_down + g
        return (lower * activation - softplus(activation)).sum(axis=1)
    sigma = np.asarray(sigma, np.float64)
    standardised = (lower - g - sigma * top_down) / sigma
    return -(standardised ** 2 / 2 + np.log(np.sqrt(2 * np.pi) * sigma)).sum(axis=1)


def _entropy(probability):
    """H of the factorial Bernoulli distribution with these probabilities, per row (nats)."""
    p = np.clip(probability, 1e-300, 1.0)
    q = np.clip(1.0 - probability, 1e-300, 1.0)
    return -(probability * np.log(p) + (1.0 - probability) * np.log(q)).sum(axis=1)


def exact_log_probability(dbn, X):
    """log p(v) of each row of ``X`` under the DBN's generative model, exactly: every hidden
    layer below the top RBM's hidden layer is enumerated and the top RBM's hidden layer summed
    out in F_top, in float64,

        log p(h_(L-1)) = -F_top(h_(L-1)) - log Z_top,
        log p(h_(l-1)) = log sum_(h_l) p(h_(l-1) | h_l) p(h_l)   (down to h_0 = v).

    For tiny DBNs (the tests' oracle): every enumerated layer at most 12 units, and log Z_top
    exact (:meth:`dlcore.BernoulliRBM.log_partition`). Returns (n,) float64, nats.
    """
    dbn._check_fitted()
    if dbn.n_labels:
        raise ValueError("exact_log_probability needs a DBN without label units")
    X = np.asarray(_check_rows(dbn, X), np.float64)
    widths = [rbm.W.shape[1] for rbm in dbn.rbms_[:-1]]
    if widths and max(widths) > MAX_ENUMERATED_LAYER:
        raise ValueError(f"exact_log_probability enumerates every hidden layer below the top: "
                         f"at most {MAX_ENUMERATED_LAYER} units each, got {widths}")
    top = dbn.rbms_[-1]
    if len(dbn.rbms_) == 1:
        return -top.free_energy(X) - top.log_partition()
    states = [next(_binary_states(width, MAX_ENUMERATED_UNITS)) for width in widths]
    log_p = -top.free_energy(states[-1]) - top.log_partition()     # p(h_(L-1)), every state
    for index in range(len(widths) - 1, 0, -1):                     # down to p(h_1)
        table = _conditional_table(dbn, index, states[index - 1], states[index])
        log_p = log_sum_exp(table + log_p, axis=1)[:, 0]
    return log_sum_exp(_conditional_table(dbn, 0, X, states[0]) + log_p, axis=1)[:, 0]


def _conditional_table(dbn, index, lower, upper_states):
    """log p(h_index = lower[a] | h_(index+1) = upper_states[b]) for every pair, (A, B)."""
    return np.stack([_log_conditional(dbn, index, lower,
                                      np.broadcast_to(upper, (len(lower), len(upper))))
                     for upper in upper_states], axis=1)
