"""log Z of an RBM too large to enumerate: annealed importance sampling (AIS).

Neal (2001), "Annealed importance sampling"; Salakhutdinov & Murray (2008), "On the quantitative
analysis of deep belief networks", whose schedule of ~14,500 inverse temperatures and base model
(visible biases from the data, no hidden units) are the defaults here. The estimate is checked
against :func:`dlcore.rbm.estimator.exact_log_partition` on RBMs small enough to enumerate.
"""
import numpy as np

from dlcore.backend import rng

from .model import softplus


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
                      n_runs=100, n_temperatures=14_500, seed=0):
    """log Z of a Bernoulli RBM by annealed importance sampling, in float64.

    ``rbm`` is a fitted :class:`~dlcore.BernoulliRBM`, or its weights W (n_visible, n_hidden)
    given with ``visible_bias`` (n_visible,) and ``hidden_bias`` (n_hidden,).
    From the base model A (visible biases ``base_visible_bias``, default the model's own; use
    the data's log-odds for trained RBMs; hidden units disconnected), whose
    log Z_A = sum_i softplus(a_i) + n_hidden log 2 is exact, to the RBM B through the
    unnormalised log-probabilities (B's hidden units summed out at inverse temperature beta)

        log p*_beta(v) = (1 - beta) a.v + beta b.v + sum_j softplus(beta (c_j + v.W_j)),

    each run moved by one Gibbs step that leaves p_beta invariant and weighted by
    log w += log p*_{beta_k}(v) - log p*_{beta_(k-1)}(v). Returns ``(log_Z, standard_error)``:
    log Z_A + log mean(w), and the delta-method standard error of that log over the runs.
    """
    W, b, c = _bernoulli_parameters(rbm, visible_bias, hidden_bias)
    a = b if base_visible_bias is None else np.asarray(base_visible_bias, dtype=np.float64)
    n_visible, n_hidden = W.shape
    betas = annealing_schedule(n_temperatures)

    def log_p_star(v, beta):
        return (1 - beta) * (v @ a) + beta * (v @ b) + softplus(beta * (v @ W + c)).sum(axis=1)

    v = (rng.uniform(n_runs, n_visible, seed, rng.STREAM_SAMPLE, 0) < _sigmoid(a)).astype(float)
    log_weights = np.zeros(n_runs)
    for k in range(1, len(betas)):
        log_weights += log_p_star(v, betas[k]) - log_p_star(v, betas[k - 1])
        hidden_probability = _sigmoid(betas[k] * (v @ W + c))
        u = rng.uniform(n_runs, n_hidden + n_visible, seed, rng.STREAM_SAMPLE + 1, k)
        h = (u[:, :n_hidden] < hidden_probability).astype(float)
        v = (u[:, n_hidden:] < _sigmoid((1 - betas[k]) * a + betas[k] * (b + h @ W.T)))
        v = v.astype(float)
    log_z_base = softplus(a).sum() + n_hidden * np.log(2.0)
    log_mean_weight = np.logaddexp.reduce(log_weights) - np.log(n_runs)
    relative = np.exp(log_weights - log_weights.max())
    standard_error = relative.std() / (relative.mean() * np.sqrt(n_runs))
    return float(log_z_base + log_mean_weight), float(standard_error)


def _bernoulli_parameters(rbm, visible_bias, hidden_bias):
    """(W, b, c) in float64 from a fitted BernoulliRBM or from the three arrays."""
    from .bernoulli import BernoulliRBM   # the estimator imports this module's siblings
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


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))
