"""How an RBM is trained: contrastive divergence, as the lecture's "RBM Weight Update" slide.

Lecture "Deep Neural Networks" (DBN/RBM), slide "RBM Weight Update", gives the procedure of CD-1
(Hinton 2002) for one training vector x1:

    for all hidden units i do
        compute Q(h1i = 1 | x1)  (for binomial units, sigm(c_i + sum_j W_ij x1j))
        sample h1i in {0, 1} from Q(h1i | x1)
    end for
    for all visible units j do
        compute P(x2j = 1 | h1)  (for binomial units, sigm(b_j + sum_i W_ij h1i))
        sample x2j in {0, 1} from P(x2j = 1 | h1)
    end for
    for all hidden units i do
        compute Q(h2i = 1 | x2)  (for binomial units, sigm(c_i + sum_j W_ij x2j))
    end for
    W <- W + eps (h1 x1' - Q(h2. = 1 | x2) x2')
    b <- b + eps (x1 - x2)
    c <- c + eps (h1 - Q(h2. = 1 | x2))

:meth:`ContrastiveDivergence.step` is that procedure line by line (each line above is a comment
there, over the code that does it), for a mini-batch whose rows are training vectors (so every
update is averaged over the batch) and with our ``W`` stored as (n_visible, n_hidden), the
slide's W transposed, which makes ``h1 x1'`` the matrix ``x1' h1``. Three additions, each off
when its hyperparameter is zero (Hinton 2010, "A practical guide to training RBMs"):

* momentum: the step is ``velocity <- momentum * velocity + eps * gradient``, then
  ``parameter += velocity``;
* L2 weight decay on W: the gradient gains ``- weight_decay * W``;
* a sparsity target on the hidden biases (Lee, Ekanadham & Ng 2008).

CD-k runs the x -> h -> x alternation k times before the negative statistics. Persistent CD
(PCD, Tieleman 2008) starts the negative chain not at the data but where the previous mini-batch
left it, so that it explores the model's distribution across updates.

Reconstruction ``x2``: sampled from P(x2 | h1) as on the slide (``sample_visible=True``), or
its mean P(x2 = 1 | h1) itself (``sample_visible=False``, less sampling noise; Hinton 2010,
sec. 3.2). Positive statistics use the *sampled* h1, as the slide writes it.

The visible layer is a strategy (:mod:`dlcore.rbm.units`): binary units as above, or Gaussian
units (:class:`dlcore.GaussianBernoulliRBM`), for which the input to the weights is x / sigma
and the visible parameters have their own step. With binary units every line is the slide's.

All arrays live on the backend; the per-batch buffers are allocated once per trainer, and an
epoch walks its mini-batches with :func:`dlcore.batches.mini_batches`.
"""
from dataclasses import dataclass

import numpy as np

from dlcore.backend.rng import STREAM_GIBBS
from dlcore.batches import mini_batches

from .units import BernoulliVisible, CDBatch  # noqa: F401  (BernoulliVisible: public here too)


@dataclass
class CDSettings:
    """The hyperparameters one CD update needs (see :class:`dlcore.BernoulliRBM`)."""

    learning_rate: float
    cd_k: int
    persistent: bool
    momentum: float
    weight_decay: float
    sparsity_target: float | None
    sparsity_cost: float
    sparsity_decay: float
    sample_visible: bool
    batch_size: int
    seed: int


class ContrastiveDivergence:
    """CD-k and PCD updates of one RBM's parameters on one backend.

    Parameters
    ----------
    backend : dlcore.backend.Backend
    parameters : dict
        ``W`` (n_visible, n_hidden), ``visible_bias`` (n_visible,), ``hidden_bias`` (n_hidden,):
        NumPy float32. On host backends they are updated in place.
    state : dict
        ``velocity_W``, ``velocity_visible_bias``, ``velocity_hidden_bias`` (shapes as above),
        ``persistent_chain`` (batch_size, n_hidden) or None before the first PCD update,
        ``sparsity_mean`` (n_hidden,).
    settings : CDSettings
    visible_units : a :class:`dlcore.rbm.units.VisibleUnits` (default BernoulliVisible)
    """

    def __init__(self, backend, parameters, state, settings, visible_units=None):
        self.backend = be = backend
        self.settings = settings
        self.visible_units = visible_units or BernoulliVisible()
        self.W = be.asarray(parameters["W"])
        self.visible_bias = be.asarray(parameters["visible_bias"])
        self.hidden_bias = be.asarray(parameters["hidden_bias"])
        self.velocity_W = be.asarray(state["velocity_W"])
        self.velocity_visible_bias = be.asarray(state["velocity_visible_bias"])
        self.velocity_hidden_bias = be.asarray(state["velocity_hidden_bias"])
        self.sparsity_mean = be.asarray(state["sparsity_mean"])
        n_visible, n_hidden = self.W.shape
        batch = settings.batch_size
        chain = state.get("persistent_chain")
        # a chain of another batch size (the settings changed) starts again at the data
        self.chain_started = chain is not None and tuple(chain.shape) == (batch, n_hidden)
        self.chain = (be.asarray(chain) if self.chain_started else be.zeros((batch, n_hidden)))
        self.x1, self.p2, self.x2 = (be.empty((batch, n_visible)) for _ in range(3))
        self.q1, self.h1, self.q2 = (be.empty((batch, n_hidden)) for _ in range(3))
        self.squared_error = be.zeros((n_visible,))

    def step(self, x1, update, shard=None):
        """One CD-k update from the mini-batch ``x1`` (b, n_visible): the slide "RBM Weight
        Update" line by line (module docstring). ``update`` numbers it (the Philox step) so
        that every update draws fresh, reproducible samples.

        ``shard`` (data-parallel training, :mod:`dlcore.distributed.rbm`): ``x1`` is rows
        ``shard.first_row ..`` of a larger global batch; the draws are keyed by those global
        rows and ``shard.update`` sums the statistics over the ranks before the update."""
        be, s, units = self.backend, self.settings, self.visible_units
        b = x1.shape[0]
        first = 0 if shard is None else shard.first_row
        q1, h1, p2, q2 = self.q1[:b], self.h1[:b], self.p2[:b], self.q2[:b]
        x2 = self.x2[:b] if s.sample_visible else p2
        chain = self.chain[first:first + b]

        # for all hidden units i do
        #     compute Q(h1i = 1 | x1)  (for binomial units, sigm(c_i + sum_j W_ij x1j))
        #     sample h1i in {0, 1} from Q(h1i | x1)
        input1 = units.weight_input(be, x1, "data")
        be.gemm(input1, self.W, q1)
        be.sigmoid_bernoulli(q1, self.hidden_bias, h1, s.seed, STREAM_GIBBS, update, first)
        if s.persistent and not self.chain_started:
            be.copy_into(chain, h1)  # the fantasy particles start at the data
            self.chain_started = True
        h = chain if s.persistent else h1
        if s.persistent:
            self._monitor_reconstruction(x1, h1, p2)
        for t in range(s.cd_k):
            # for all visible units j do
            #     compute P(x2j = 1 | h1)  (for binomial units, sigm(b_j + sum_i W_ij h1i))
            #     sample x2j in {0, 1} from P(x2j = 1 | h1)
            be.gemm(h, self.W, p2, trans_b=True)
            units.sample(be, p2, self.visible_bias, x2 if s.sample_visible else None,
                         s.seed, STREAM_GIBBS + 2 * t + 1, update, first)
            if t == 0 and not s.persistent:
                be.accumulate_squared_error(x1, p2, self.squared_error)
            # for all hidden units i do
            #     compute Q(h2i = 1 | x2)  (for binomial units, sigm(c_i + sum_j W_ij x2j))
            input2 = units.weight_input(be, x2, "model")
            be.gemm(input2, self.W, q2)
            chain_goes_on = t + 1 < s.cd_k or s.persistent
            be.sigmoid_bernoulli(q2, self.hidden_bias, chain if chain_goes_on else None,
                                 s.seed, STREAM_GIBBS + 2 * t + 2, update, first)
            h = chain

        if shard is not None:
            shard.update(self, x1, x2, h1, q1, q2, input1, input2)
            return
        rate = s.learning_rate / b
        # W <- W + eps (h1 x1' - Q(h2. = 1 | x2) x2')
        #     our W is the slide's transposed: eps (x1' h1 - x2' Q(h2. = 1 | x2)) / b, through
        #     the momentum buffer; W itself moves after b's step, which may read it (the
        #     Gaussian layer's sigma step)
        be.gemm(input1, h1, self.velocity_W, trans_a=True, alpha=rate, beta=s.momentum)
        be.gemm(input2, q2, self.velocity_W, trans_a=True, alpha=-rate, beta=1.0)
        # b <- b + eps (x1 - x2)
        units.update(be, CDBatch(x1, x2, h1, q2, self.W), self.visible_bias,
                     self.velocity_visible_bias, s)
        # (the W line's own step: W <- W + velocity, with the weight decay)
        be.momentum_step(self.W, self.velocity_W, s.learning_rate * s.weight_decay)
        # c <- c + eps (h1 - Q(h2. = 1 | x2))
        be.bias_step(self.hidden_bias, self.velocity_hidden_bias, h1, q2,
                     s.learning_rate, s.momentum)
        if s.sparsity_target is not None:
            be.sparsity_step(q1, self.sparsity_mean, self.hidden_bias, s.sparsity_decay,
                             s.learning_rate * s.sparsity_cost, s.sparsity_target)

    def _monitor_reconstruction(self, x1, h1, p2):
        """PCD's negative chain is not a reconstruction of the data: the monitor costs one
        extra product, P(x2 = 1 | h1) from the data's own hidden sample."""
        be = self.backend
        be.gemm(h1, self.W, p2, trans_b=True)
        self.visible_units.sample(be, p2, self.visible_bias, None, self.settings.seed, 0, 0)
        be.accumulate_squared_error(x1, p2, self.squared_error)

    def epoch(self, data, order, first_update, report=None, report_every=None):
        """One pass over ``data`` (N, n_visible, on the backend) in the row ``order``
        (:func:`dlcore.batches.epoch_order`), one :meth:`step` per mini-batch.

        Returns ``(next_update, reconstruction_error)``: the mean over the pass of the squared
        error per pixel between each batch x1 and P(x2 = 1 | h1). ``report(batches_done,
        n_batches, running_error)`` is called every ``report_every`` batches (default: about 50
        times a pass) and after the last.
        """
        be = self.backend
        be.copy_into(self.squared_error, be.zeros(self.squared_error.shape))
        update = first_update
        for batch in mini_batches(be, (data,), (self.x1,), order, self.settings.batch_size,
                                  report_every):
            self.step(batch.arrays[0], update)
            update += 1
            if report is not None and batch.reports:
                report(batch.index + 1, batch.n_batches, self._mean_error(batch.rows_done))
        return update, self._mean_error(len(order))

    def _mean_error(self, n_rows):
        total = float(np.sum(self.backend.to_numpy(self.squared_error), dtype=np.float64))
        return total / (n_rows * self.squared_error.shape[0])

    def download(self):
        """The parameters and training state as NumPy arrays (copies from a GPU)."""
        to_numpy = self.backend.to_numpy
        parameters = {name: to_numpy(getattr(self, name))
                      for name in ("W", "visible_bias", "hidden_bias")}
        state = {name: to_numpy(getattr(self, name))
                 for name in ("velocity_W", "velocity_visible_bias", "velocity_hidden_bias",
                              "sparsity_mean")}
        state["persistent_chain"] = to_numpy(self.chain) if self.chain_started else None
        visible_parameters, visible_state = self.visible_units.download(self.backend)
        parameters.update(visible_parameters)
        state.update(visible_state)
        return parameters, state
