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
over the code that does it: the first loop in ``step``, the second and third in
``_reconstruction``, CD-k's negative phase, and the three updates in ``update``, both of
which ``step`` calls), for a mini-batch whose rows are training vectors (so every
update is averaged over the batch) and with our ``W`` stored as (n_visible, n_hidden), the
slide's W transposed, which makes ``h1 x1'`` the matrix ``x1' h1``. Three additions, each off
when its hyperparameter is zero (Hinton 2010, "A practical guide to training RBMs"):

* momentum: the step is ``velocity <- momentum * velocity + eps * gradient``, then
  ``parameter += velocity``;
* L2 weight decay on W: the gradient gains ``- weight_decay * W``;
* a sparsity target on the hidden biases (Lee, Ekanadham & Ng 2008).

CD-k runs the x -> h -> x alternation k times before the negative statistics. Persistent CD
(PCD, Tieleman 2008) starts the negative chain not at the data but where the previous mini-batch
left it, so that it explores the model's distribution across updates; fast PCD and parallel
tempering are two better samplers of the same negative phase. All three keep ``n_chains``
persistent chains, independent of the mini-batch size, in a :class:`dlcore.rbm.chains.Chains`
(whose module gives their equations); the data average is then over the b rows of the batch and
the model average over the m chains.

Reconstruction ``x2``: sampled from P(x2 | h1) as on the slide (``sample_visible=True``), or
its mean P(x2 = 1 | h1) itself (``sample_visible=False``, less sampling noise; Hinton 2010,
sec. 3.2). Positive statistics use the *sampled* h1, as the slide writes it.

The visible layer is a strategy (:mod:`dlcore.rbm.units`): binary units as above, or Gaussian
units (:class:`dlcore.GaussianBernoulliRBM`), for which the input to the weights is x / sigma
and the visible parameters have their own step. With binary units every line is the slide's.

All arrays live on the backend; the per-batch buffers are allocated once per trainer (of
``min(batch_size, rows of the data)`` rows), and an epoch walks its mini-batches with
:func:`dlcore.batches.mini_batches`.
"""
from dataclasses import dataclass

import numpy as np

from dlcore.backend.rng import STREAM_GIBBS, STREAM_SWAP
from dlcore.batches import leading_rows, mini_batches

from .chains import Chains
from .units import (  # noqa: F401  (BernoulliVisible: public here too)
    BernoulliVisible,
    CDBatch,
    RowMeans,
    contrastive_bias_step,
)


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
    #: "cd", "pcd", "fpcd" or "pt" (:mod:`dlcore.rbm.chains`); "pcd" when ``persistent``
    sampler: str = "cd"
    #: persistent chains per temperature (0: batch_size)
    n_chains: int = 0
    #: fast PCD's eps_fast and the fast weights' decay per update
    fast_learning_rate: float = 0.0
    fast_decay: float = 0.95
    #: parallel tempering's inverse temperatures, beta_1 = 1 first
    betas: tuple = (1.0,)

    def negative_sampler(self):
        """The sampler in force: ``sampler``, or "pcd" for the older ``persistent=True``."""
        return "pcd" if self.persistent and self.sampler == "cd" else self.sampler


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
        ``persistent_chain`` (K n_chains, n_hidden) or None before the first persistent update,
        ``persistent_chain_unstarted`` (K n_chains,) bool or None: the rows of the chain
        not started at the data yet (a first batch shorter than the chains; None: all),
        ``fast_W`` (n_visible, n_hidden) or None (fast PCD's fast weights),
        ``sparsity_mean`` (n_hidden,).
    settings : CDSettings
    visible_units : a :class:`dlcore.rbm.units.VisibleUnits` (default BernoulliVisible)
    rows : int, optional
        The rows of the data it will train on: the per-batch buffers hold
        ``min(batch_size, rows)`` rows (a ``batch_size`` beyond the data, a whole-data batch,
        allocates no more than the data; default ``batch_size``). The persistent chains are
        the model's state and keep their ``n_chains`` (or ``batch_size``) rows.
    """

    def __init__(self, backend, parameters, state, settings, visible_units=None, rows=None):
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
        self.sampler = settings.negative_sampler()
        self.chains = None
        if self.sampler != "cd":
            # chains of another shape (the settings changed) start again at the data
            try:
                self.chains = Chains(be, self.visible_units, n_visible, n_hidden,
                                     settings.n_chains or batch,
                                     settings.betas if self.sampler == "pt" else (1.0,),
                                     state.get("persistent_chain"), state.get("fast_W"),
                                     fast=self.sampler == "fpcd",
                                     unstarted=state.get("persistent_chain_unstarted"))
            except MemoryError:
                raise ValueError(self._chains_too_large(n_visible, n_hidden)) from None
        # PCD with one chain per batch row (n_chains None): chain r goes with row r of the
        # batch, so a shorter last batch advances its first rows' chains only, and a
        # data-parallel shard its own rows' (as PCD always did here)
        self._row_aligned = self.sampler == "pcd" and not settings.n_chains
        self.means = RowMeans(be)
        #: whether x2, the reconstruction that multiplies W in the negative phase, is 0s and 1s
        #: (a sample of binary units): a backend may then sum W's rows rather than multiply
        self._binary_reconstruction = settings.sample_visible and self.visible_units.binary_samples
        #: the rows of the per-batch buffers: the largest batch an epoch over the data makes
        self.batch_rows = batch if rows is None else max(1, min(batch, int(rows)))
        self.x1, self.p2, self.x2 = (be.empty((self.batch_rows, n_visible)) for _ in range(3))
        self.q1, self.h1, self.q2, self.h2 = (be.empty((self.batch_rows, n_hidden))
                                              for _ in range(4))
        self.squared_error = be.zeros((n_visible,))
        # where the backend lists the ones of the samples h1, h2 (CD-k's later steps) and x2
        # for the products that sum them (Backend.list_ones)
        self.h1_ones = be.ones_lists(self.batch_rows, n_hidden, n_visible)
        self.h2_ones = (be.ones_lists(self.batch_rows, n_hidden, n_visible)
                        if settings.cd_k > 1 else None)
        self.x2_ones = (be.ones_lists(self.batch_rows, n_visible, n_hidden)
                        if self._binary_reconstruction else None)
        # and of PCD's chains when they are the batch's rows (Chains lists its own)
        self.chain_ones = (be.ones_lists(self.batch_rows, n_hidden, n_visible)
                           if self._row_aligned else None)

    def _chains_too_large(self, n_visible, n_hidden):
        """The line that refuses persistent chains that do not fit in memory."""
        s = self.settings
        rungs = f" x {len(s.betas)} temperatures" if self.sampler == "pt" else ""
        count = (f"n_chains={s.n_chains}" if s.n_chains else
                 f"n_chains=None: one chain per row of a batch, batch_size={s.batch_size}")
        return (f"sampler={self.sampler!r} keeps {s.n_chains or s.batch_size}{rungs} "
                f"persistent chains ({count}) of {n_hidden} hidden and {n_visible} visible "
                f"units, which do not fit in memory: give a smaller n_chains (or batch_size)")

    def step(self, x1, update, shard=None):
        """One CD-k update from the mini-batch ``x1`` (b, n_visible): the slide "RBM Weight
        Update" line by line (module docstring). ``update`` numbers it (the Philox step) so
        that every update draws fresh, reproducible samples.

        The arrays bear the slide's names, one row per training vector: ``q1`` is
        Q(h1 = 1 | x1) and ``h1`` its sample; ``p2`` is P(x2 = 1 | h1) and ``x2`` its sample
        (``p2`` itself with ``sample_visible=False``); ``q2`` is Q(h2 = 1 | x2). ``input1``
        and ``input2`` are what multiplies W (x1 and x2 themselves for binary units).

        ``shard`` (data-parallel training, :mod:`dlcore.distributed.rbm`): ``x1`` is rows
        ``shard.first_row ..`` of a larger global batch; the draws are keyed by those global
        rows and ``shard.update`` sums the statistics over the ranks before the update."""
        be, s, units = self.backend, self.settings, self.visible_units
        b = x1.shape[0]
        first = 0 if shard is None else shard.first_row
        if shard is not None and self.chains is not None and not self._row_aligned:
            refused = (f"'pcd' with n_chains={s.n_chains}" if self.sampler == "pcd"
                       else repr(self.sampler))
            raise ValueError(f"data-parallel training runs sampler='cd' (CD-k) and 'pcd' with "
                             f"a chain per batch row (n_chains=0) only, not {refused}: its "
                             f"persistent chains are not split by rows; train in one process")
        q1, h1, p2, q2 = (leading_rows(buffer, b)
                          for buffer in (self.q1, self.h1, self.p2, self.q2))
        x2 = leading_rows(self.x2, b) if s.sample_visible else p2

        # for all hidden units i do
        #     compute Q(h1i = 1 | x1)  (for binomial units, sigm(c_i + sum_j W_ij x1j))
        #     sample h1i in {0, 1} from Q(h1i | x1)
        # (the slide's W_ij is our W[j, i], so for all i at once: q1 = sigm(x1 W + c), one row
        # per training vector; h1 = 1 where a uniform draw u < q1. input1 is x1 itself for
        # binary units)
        input1 = units.weight_input(be, x1, "data")
        be.gemm_sigmoid_bernoulli(input1, self.W, q1, self.hidden_bias, h1, s.seed,
                                  STREAM_GIBBS, update, first_row=first)
        # (not on the slide: h1's ones, listed once for the products that sum them)
        h1_ones = be.list_ones(h1, self.h1_ones)
        x2_ones = None
        if self.chains is None:
            x2, input2, q2, x2_ones = self._reconstruction(x1, h1, p2, x2, q2, update, first,
                                                           h1_ones)
        elif self._row_aligned:
            x2, input2, q2, x2_ones = self._row_aligned_pcd(x1, h1, p2, x2, q2, update, first,
                                                            h1_ones)
        else:
            x2, input2, q2, x2_ones = self._persistent_negative_phase(x1, h1, p2, update,
                                                                      h1_ones)
        if shard is not None:
            shard.update(self, x1, x2, h1, q1, q2, input1, input2)
            return
        self.update(x1, x2, h1, q1, q2, input1, input2, h1_ones, x2_ones)

    def update(self, x1, x2, h1, q1, q2, input1, input2, h1_ones=None, x2_ones=None):
        """The update of :meth:`step` from its batch's rows: the data ``x1`` (b, n_visible),
        its hidden sample ``h1`` and Q(h1 = 1 | x1) ``q1`` (b, n_hidden), the negative
        particles ``x2`` (m, n_visible) and Q(h2 = 1 | x2) ``q2`` (m, n_hidden), m = b or the
        persistent chains, and the visible layer's weight inputs of x1 and x2 (``x / sigma``
        for Gaussian units, else the rows themselves); ``h1_ones``, ``x2_ones``: the ones of
        h1 and x2 as the backend listed them (Backend.list_ones), or None."""
        be, s, units = self.backend, self.settings, self.visible_units
        b = x1.shape[0]
        if self.chains is not None and self.chains.fast_W is not None:
            # fast PCD: W_fast <- fast_decay W_fast + eps_fast (x1' h1 / b - x2' q2 / m)
            fast = s.fast_learning_rate
            be.gemm(input1, h1, self.chains.fast_W, trans_a=True, alpha=fast / b,
                    beta=s.fast_decay)
            be.gemm(input2, q2, self.chains.fast_W, trans_a=True, alpha=-fast / x2.shape[0],
                    beta=1.0)
        # the three steps below read nothing another writes: a backend may run their
        # element-wise passes together as the block ends (one launch on CUDA)
        with be.parameter_steps():
            # b <- b + eps (x1 - x2)
            #     averaged over the batch's rows, through the momentum buffer (velocity);
            #     first: it may read W as it was (the Gaussian layer's sigma step)
            units.update(be, CDBatch(x1, x2, h1, q2, self.W, self.means), self.visible_bias,
                         self.velocity_visible_bias, s)
            # W <- W + eps (h1 x1' - Q(h2. = 1 | x2) x2')
            #     our W is the slide's transposed: eps (x1' h1 / b - x2' Q(h2. = 1 | x2) / m),
            #     m = b (or the number of persistent chains), through the momentum buffer,
            #     with the weight decay
            be.contrastive_weight_step(self.W, self.velocity_W, input1, h1, input2, q2,
                                       s.learning_rate / b, s.learning_rate / x2.shape[0],
                                       s.momentum, s.learning_rate * s.weight_decay,
                                       positive_ones=h1_ones, negative_ones=x2_ones)
            # c <- c + eps (h1 - Q(h2. = 1 | x2))
            #     averaged over the rows (b of h1, m of q2), through the momentum buffer
            contrastive_bias_step(be, self.hidden_bias, self.velocity_hidden_bias, h1, q2,
                                  s.learning_rate, s.momentum, self.means, "hidden")
        # (not on the slide: the sparsity target's extra step of c, off by default)
        if s.sparsity_target is not None:
            be.sparsity_step(q1, self.sparsity_mean, self.hidden_bias, s.sparsity_decay,
                             s.learning_rate * s.sparsity_cost, s.sparsity_target)

    def _reconstruction(self, x1, h1, p2, x2, q2, update, first=0, h1_ones=None):
        """CD-k's negative phase: k Gibbs steps from the data's own hidden sample ``h1``
        (rows ``first ..`` of the global batch: the Philox rows; ``h1_ones``, its ones as the
        backend listed them). Returns (x2, its weight input, Q(h2 = 1 | x2)), (b, .) each,
        and x2's ones as the backend listed them (None where it did not)."""
        be, s, units = self.backend, self.settings, self.visible_units
        h, h_ones, x2_ones = h1, h1_ones, None
        for t in range(s.cd_k):
            # for all visible units j do
            #     compute P(x2j = 1 | h1)  (for binomial units, sigm(b_j + sum_i W_ij h1i))
            #     sample x2j in {0, 1} from P(x2j = 1 | h1)
            # (h is h1 in CD-1's only step; CD-k's later steps start from the last hidden sample)
            units.sample_from_hidden(be, h, self.W, p2, self.visible_bias,
                                     x2 if s.sample_visible else None, s.seed,
                                     STREAM_GIBBS + 2 * t + 1, update, first, hidden_ones=h_ones)
            # (not on the slide: the training lines' reconstruction error, the sum over the
            # batch of (x1 - P(x2 = 1 | h1))^2, from the first step only)
            if t == 0:
                be.accumulate_squared_error(x1, p2, self.squared_error)
            # for all hidden units i do
            #     compute Q(h2i = 1 | x2)  (for binomial units, sigm(c_i + sum_j W_ij x2j))
            # (q2 = sigm(x2 W + c). The slide draws no h2: CD-1's only step, and CD-k's last,
            # pass h = None, the probabilities only; CD-k's earlier steps sample h2 into h,
            # where the next step starts)
            input2 = units.weight_input(be, x2, "model")
            if self._binary_reconstruction:
                x2_ones = be.list_ones(x2, self.x2_ones)
            h = self.h2[:x1.shape[0]] if t + 1 < s.cd_k else None
            be.gemm_sigmoid_bernoulli(input2, self.W, q2, self.hidden_bias, h, s.seed,
                                      STREAM_GIBBS + 2 * t + 2, update, first_row=first,
                                      a_ones=x2_ones)
            if h is not None:
                h_ones = be.list_ones(h, self.h2_ones)
        return x2, input2, q2, x2_ones

    @property
    def chain(self):
        """The persistent chains' hidden states (rows, n_hidden), or None for CD."""
        return None if self.chains is None else self.chains.hidden

    def _row_aligned_pcd(self, x1, h1, p2, x2, q2, update, first=0, h1_ones=None):
        """PCD whose chains are the rows ``first .. first + b`` of the batch (see
        ``_row_aligned``): the Gibbs steps of :meth:`_persistent_negative_phase` on those
        rows, drawn with their global Philox rows, each product with its sigmoids in one call
        as CD's (``h1_ones``: h1's ones as the backend listed them, for the monitor). Returns
        (x2, weight input, Q(h2 = 1 | x2)), (b, .) each, and x2's ones as the backend listed
        them (None where it did not)."""
        be, s, units, chains = self.backend, self.settings, self.visible_units, self.chains
        chain = chains.hidden[first:first + x1.shape[0]]
        # the fantasy particles start at the data: all of them with the first batch, and
        # those a first batch shorter than the chains did not reach with the batch that does
        chains.start_rows(h1, first)
        self._monitor_reconstruction(x1, h1, p2, h1_ones)
        x2_ones = None
        for t in range(s.cd_k):
            units.sample_from_hidden(be, chain, self.W, p2, self.visible_bias,
                                     x2 if s.sample_visible else None, s.seed,
                                     STREAM_GIBBS + 2 * t + 1, update, first,
                                     hidden_ones=be.list_ones(chain, self.chain_ones))
            input2 = units.weight_input(be, x2, "model")
            if self._binary_reconstruction:
                x2_ones = be.list_ones(x2, self.x2_ones)
            be.gemm_sigmoid_bernoulli(input2, self.W, q2, self.hidden_bias, chain, s.seed,
                                      STREAM_GIBBS + 2 * t + 2, update, first_row=first,
                                      a_ones=x2_ones)
        return x2, input2, q2, x2_ones

    def _persistent_negative_phase(self, x1, h1, p2, update, h1_ones=None):
        """PCD, fast PCD, parallel tempering: k Gibbs steps of the persistent chains (the
        tempered replicas then swap), :mod:`dlcore.rbm.chains`. Returns the beta = 1 replicas'
        (x2, weight input, Q(h2 = 1 | x2)), (m, .) each, and x2's ones as the backend listed
        them (None where it did not: ``h1_ones`` likewise, for the monitor)."""
        s, chains = self.settings, self.chains
        if not chains.started:
            chains.start(h1)  # the fantasy particles start at the data
        self._monitor_reconstruction(x1, h1, p2, h1_ones)
        for t in range(s.cd_k):
            x2, input2, q2 = chains.gibbs_step(
                self.W, self.visible_bias, self.hidden_bias, s.sample_visible, s.seed,
                (STREAM_GIBBS + 2 * t + 1, STREAM_GIBBS + 2 * t + 2), update)
        if len(chains.betas) > 1:
            chains.swap(input2, self.W, s.seed, STREAM_SWAP, update)
        m = chains.m
        # listed only for one rung, whose m rows are all of x2
        return x2[:m], input2[:m], q2[:m], chains.visible_listed

    def _monitor_reconstruction(self, x1, h1, p2, h1_ones=None):
        """PCD's negative chain is not a reconstruction of the data: the monitor costs one
        extra product, P(x2 = 1 | h1) from the data's own hidden sample (``h1_ones``: its
        ones as the backend listed them)."""
        be = self.backend
        self.visible_units.sample_from_hidden(be, h1, self.W, p2, self.visible_bias, None,
                                              self.settings.seed, 0, 0, hidden_ones=h1_ones)
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

    def take_statistics(self):
        """Per-epoch numbers of the sampler since the last call, for the model's ``history``:
        parallel tempering's swap acceptance rate of each neighbour pair
        (``swap_acceptance_<k>``, k = 1 .. K-1) and their mean (``swap_acceptance``)."""
        if self.chains is None or len(self.chains.betas) < 2:
            return {}
        rates = self.chains.take_acceptance()
        statistics = {"swap_acceptance": float(np.mean(rates))}
        statistics.update({f"swap_acceptance_{k + 1}": float(rate)
                           for k, rate in enumerate(rates)})
        return statistics

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
        chains = self.chains
        state["persistent_chain"] = (to_numpy(chains.hidden) if chains is not None
                                     and chains.started else None)
        state["persistent_chain_unstarted"] = (
            chains.unstarted.copy() if state["persistent_chain"] is not None
            and chains.unstarted.any() else None)
        state["fast_W"] = (to_numpy(chains.fast_W) if chains is not None
                           and chains.fast_W is not None else None)
        visible_parameters, visible_state = self.visible_units.download(self.backend)
        parameters.update(visible_parameters)
        state.update(visible_state)
        return parameters, state
