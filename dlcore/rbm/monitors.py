"""How an RBM is measured: monitors with a stated normalisation, and exact likelihoods.

* :func:`reconstruction_error`: squared error per pixel between x and P(x' = 1 | h), h ~ Q(h|x).
  Cheap and what students watch, but not the objective (Hinton 2010, sec. 5).
* :func:`free_energy_gap`: mean F(validation) - mean F(training subset). The partition function
  cancels in the difference; a growing gap means over-fitting (Hinton 2010, sec. 6).
* :func:`pseudo_log_likelihood`: sum over visible units of log P(v_i | v_-i), per sample, exact
  (no random flips): needs no partition function.
* :func:`exact_log_partition` and :func:`average_log_likelihood`: log Z by enumerating the
  smaller layer (at most 24 units), in float64: the ground truth the tests train against.
* :func:`gaussian_exact_log_partition`: the same for Gaussian visible units, whose integral over
  v is closed-form, so only the hidden layer (at most 24 units) is enumerated.
"""
import numpy as np

from dlcore.backend.reference import log_sum_exp

from .model import (
    free_energy,
    free_energy_of_hidden,
    gaussian_free_energy_of_hidden,
    hidden_probability,
    softplus,
)

MAX_ENUMERATED_UNITS = 24


#: What the refusal of a log Z too large to enumerate proposes: AIS estimates it for any size.
ESTIMATE_INSTEAD = ("estimate it by AIS instead (rbm.log_likelihood(X), whose method='ais' is "
                    "the default, or ais_log_partition(rbm, data=X))")


def free_energy_gap(parameters, training_subset, validation, visible_units=None):
    """mean F(v) over ``validation`` minus mean F(v) over ``training_subset`` (both (n, V)).

    ``parameters`` holds ``W``, ``visible_bias``, ``hidden_bias``, and ``visible_sigma`` for
    Gaussian visible units. F is the free energy of ``visible_units`` (a
    :class:`dlcore.rbm.units.VisibleUnits`: an RBM estimator passes its own); by default the
    Gaussian layer's when ``parameters`` hold ``visible_sigma``, else the binary layer's.
    """
    if visible_units is None:
        from .units import BernoulliVisible, GaussianVisible  # units imports this module
        visible_units = (GaussianVisible(None, parameters["visible_sigma"])
                         if "visible_sigma" in parameters else BernoulliVisible())
    return float(visible_units.free_energy(np.asarray(validation), parameters).mean()
                 - visible_units.free_energy(np.asarray(training_subset), parameters).mean())


def pseudo_log_likelihood(visible, W, visible_bias, hidden_bias, chunk=64):
    """Exact pseudo-log-likelihood of each row of ``visible`` (n, n_visible), in nats:

        PL(v) = sum_i log P(v_i | v_-i) = sum_i log sigm(F(v with v_i flipped) - F(v))

    summed (not averaged) over the n_visible units. Flipping v_i changes the hidden input
    c + vW by (1 - 2 v_i) W_i, so each flip costs O(n_hidden). Returns (n,) float64.
    """
    visible = np.asarray(visible, dtype=np.float64)
    W, visible_bias, hidden_bias = (np.asarray(a, dtype=np.float64)
                                    for a in (W, visible_bias, hidden_bias))
    result = np.empty(visible.shape[0])
    for start in range(0, visible.shape[0], chunk):
        v = visible[start:start + chunk]                        # (s, V)
        hidden_input = v @ W + hidden_bias                      # (s, H)
        sign = 1.0 - 2.0 * v                                    # +1 where v_i = 0
        flipped_input = hidden_input[:, None, :] + sign[:, :, None] * W[None]   # (s, V, H)
        # F(v_flip) - F(v) = -sign_i b_i - sum_j [softplus(flipped) - softplus(original)]
        delta = (-sign * visible_bias
                 - (softplus(flipped_input) - softplus(hidden_input)[:, None, :]).sum(axis=2))
        result[start:start + chunk] = -softplus(-delta).sum(axis=1)   # log sigm(delta)
    return result


def enumerated_units(rbm):
    """The number of units whose 2**n states :func:`exact_log_partition` of the fitted ``rbm``
    enumerates (at most :data:`MAX_ENUMERATED_UNITS`): its smaller layer, or a Gaussian RBM's
    hidden layer, since Gaussian visible units integrate out."""
    n_visible, n_hidden = rbm.W.shape
    return n_hidden if hasattr(rbm, "visible_sigma") else min(n_visible, n_hidden)


def exact_log_partition(rbm, visible_bias=None, hidden_bias=None):
    """log Z of an RBM by enumerating every state of its smaller layer, in float64.

        log Z = log sum_h exp(-F(h))   (or log sum_v exp(-F(v)) when the visible layer is smaller)

    Parameters
    ----------
    rbm : fitted BernoulliRBM or GaussianBernoulliRBM, or (n_visible, n_hidden) array
        A model (its ``log_partition()`` is used: Gaussian visibles integrate out in closed
        form), or the weights W of a Bernoulli RBM, given with the two biases below.
    visible_bias, hidden_bias : (n_visible,), (n_hidden,) arrays
        Only with a weight matrix.

    Refuses (ValueError) when the smaller layer has more than 24 units: 2**24 states is the
    most that fits in seconds.
    """
    if hasattr(rbm, "log_partition"):
        if visible_bias is not None or hidden_bias is not None:
            raise ValueError("exact_log_partition takes an RBM alone, or W with visible_bias "
                             "and hidden_bias: drop the biases when passing a model")
        return rbm.log_partition()
    if visible_bias is None or hidden_bias is None:
        raise ValueError("exact_log_partition(W, visible_bias, hidden_bias) needs both biases "
                         "with a weight matrix; or pass a fitted RBM alone")
    W, visible_bias, hidden_bias = (np.asarray(a, dtype=np.float64)
                                    for a in (rbm, visible_bias, hidden_bias))
    if W.ndim != 2 or visible_bias.shape != W.shape[:1] or hidden_bias.shape != W.shape[1:]:
        raise ValueError(f"W {W.shape}, visible_bias {visible_bias.shape} and hidden_bias "
                         f"{hidden_bias.shape} do not fit: W must be (n_visible, n_hidden)")
    n_visible, n_hidden = W.shape
    smaller = min(n_visible, n_hidden)
    if smaller > MAX_ENUMERATED_UNITS:
        raise ValueError(
            f"exact log Z enumerates 2**{smaller} states of the smaller layer "
            f"({n_visible} visible, {n_hidden} hidden); at most {MAX_ENUMERATED_UNITS} units "
            f"are allowed: {ESTIMATE_INSTEAD}")
    if n_hidden <= n_visible:
        def negative_free_energy(states):
            return -free_energy_of_hidden(states, W, visible_bias, hidden_bias)
    else:
        def negative_free_energy(states):
            return -free_energy(states, W, visible_bias, hidden_bias)
    terms = [negative_free_energy(states) for states in _binary_states(smaller)]
    return float(log_sum_exp(np.concatenate(terms), axis=0)[0])


def _binary_states(n_units, chunk_bits=16):
    """Every binary vector of length n_units, in chunks of at most 2**chunk_bits rows."""
    chunk = 1 << min(n_units, chunk_bits)
    bit_values = 1 << np.arange(n_units, dtype=np.int64)
    for start in range(0, 1 << n_units, chunk):
        codes = np.arange(start, start + chunk, dtype=np.int64)
        yield ((codes[:, None] & bit_values) > 0).astype(np.float64)


def average_log_likelihood(visible, W, visible_bias, hidden_bias, log_partition=None):
    """mean over rows of log P(v) = -F(v) - log Z, exact, in nats per sample (float64)."""
    if log_partition is None:
        log_partition = exact_log_partition(W, visible_bias, hidden_bias)
    W, visible_bias, hidden_bias = (np.asarray(a, dtype=np.float64)
                                    for a in (W, visible_bias, hidden_bias))
    visible = np.asarray(visible, dtype=np.float64)
    return float(np.mean(-free_energy(visible, W, visible_bias, hidden_bias)) - log_partition)


def reconstruction_error(visible, W, visible_bias, hidden_bias):
    """Mean squared error per pixel between x and its mean-field reconstruction
    P(x' = 1 | h = Q(h | x)) (deterministic; the training monitor samples h instead)."""
    from .model import visible_probability
    hidden = hidden_probability(visible, W, hidden_bias)
    return float(np.mean((visible - visible_probability(hidden, W, visible_bias)) ** 2))


def gaussian_exact_log_partition(W, visible_bias, hidden_bias, sigma):
    """log Z of a Gaussian-Bernoulli RBM, in float64: the visible units integrate out exactly
    (:func:`~dlcore.rbm.model.gaussian_free_energy_of_hidden`) and the hidden states are
    enumerated,

        log Z = log sum_h exp(-F(h)),

    which refuses (ValueError) more than 24 hidden units. Then log p(v) = -F(v) - log Z is an
    exact log density (nats per sample, in the units of v).
    """
    W, visible_bias, hidden_bias, sigma = (np.asarray(a, dtype=np.float64)
                                           for a in (W, visible_bias, hidden_bias, sigma))
    n_hidden = W.shape[1]
    if n_hidden > MAX_ENUMERATED_UNITS:
        raise ValueError(f"exact log Z enumerates 2**{n_hidden} hidden states; at most "
                         f"{MAX_ENUMERATED_UNITS} hidden units are allowed: {ESTIMATE_INSTEAD}")
    terms = [-gaussian_free_energy_of_hidden(states, W, visible_bias, hidden_bias, sigma)
             for states in _binary_states(n_hidden)]
    return float(log_sum_exp(np.concatenate(terms), axis=0)[0])
