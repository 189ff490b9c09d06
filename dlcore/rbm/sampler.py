"""How an RBM is sampled: block Gibbs sampling, all hidden units then all visible units.

Because the conditionals factorise (:mod:`dlcore.rbm.model`), one Gibbs step samples every hidden
unit in parallel from Q(h | v), then every visible unit from P(v | h). The functions here run
that chain on a backend with the Philox streams of :mod:`dlcore.backend.rng`, so a seed and a
call number give the same samples on every backend. :func:`up_pass` is its first half alone:
the hidden layer of each visible row (the features of :meth:`dlcore.BernoulliRBM.transform`).
"""
import numpy as np

from dlcore.backend.rng import STREAM_SAMPLE

from .units import write_label_columns


def gibbs_chain(backend, parameters, visible, steps, seed, call, visible_units,
                return_probabilities=False, clamped=None):
    """Run ``steps`` Gibbs steps v -> h -> v from ``visible`` (n, n_visible).

    ``parameters`` holds ``W``, ``visible_bias``, ``hidden_bias`` as NumPy arrays; ``call``
    (the Philox step) distinguishes successive calls with one seed. ``clamped`` (n, K), when
    given, holds the last K visible units fixed (a DBN's label units: generation of a chosen
    class): after every visible update they are set back to it. Returns the visible sample
    after the last step (n, n_visible), or its probabilities P(v = 1 | h) when
    ``return_probabilities``.
    """
    be = backend
    W = be.asarray(parameters["W"])
    visible_bias = be.asarray(parameters["visible_bias"])
    hidden_bias = be.asarray(parameters["hidden_bias"])
    n = visible.shape[0]
    n_visible, n_hidden = W.shape
    v = be.asarray(np.array(visible, dtype=np.float32))
    hidden_probability, hidden_sample = be.empty((n, n_hidden)), be.empty((n, n_hidden))
    visible_mean = be.empty((n, n_visible))
    if clamped is not None:
        clamped = be.asarray(np.array(clamped, dtype=np.float32))
        write_label_columns(be, clamped, clamped, v, None)
    with be.compute():
        for t in range(steps):
            be.gemm(visible_units.weight_input(be, v, "chain"), W, hidden_probability)
            be.sigmoid_bernoulli(hidden_probability, hidden_bias, hidden_sample, seed,
                                 STREAM_SAMPLE + 2 * t, call)
            be.gemm(hidden_sample, W, visible_mean, trans_b=True)
            visible_units.sample(be, visible_mean, visible_bias, v, seed,
                                 STREAM_SAMPLE + 2 * t + 1, call)
            if clamped is not None:
                write_label_columns(be, clamped, clamped, visible_mean, v)
    return be.to_numpy(visible_mean if return_probabilities else v)


def up_pass(backend, parameters, visible, visible_units, sample, seed=0, stream=STREAM_SAMPLE,
            step=0):
    """Q(h = 1 | v) for each row of ``visible`` (n, n_visible), or with ``sample`` one binary
    sample of it, in one pass on the backend: the visible layer's input to the weights (v, or
    v / sigma), a product, then the fused sigmoid + Bernoulli kernel,

        Q(h_j = 1 | v) = sigm(c_j + sum_i input_i W_ij).

    Element (r, j) of the sample is 1 when u < Q(h_j = 1 | v_r) with
    u = ``rng.uniform(n, n_hidden, seed, stream, step)[r, j]``. Returns (n, n_hidden) float32.
    The one up-pass of an RBM: :meth:`dlcore.BernoulliRBM.transform` and a DBN's layers call it.
    """
    be = backend
    W = be.asarray(parameters["W"])
    hidden_bias = be.asarray(parameters["hidden_bias"])
    probability = be.empty((visible.shape[0], W.shape[1]))
    states = be.empty((visible.shape[0], W.shape[1])) if sample else None
    with be.compute():
        v = be.asarray(np.array(visible, dtype=np.float32))
        be.gemm(visible_units.weight_input(be, v, "data"), W, probability)
        be.sigmoid_bernoulli(probability, hidden_bias, states, seed, stream, step)
    return be.to_numpy(states if sample else probability)
