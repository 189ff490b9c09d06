"""Data-parallel contrastive divergence: R ranks make the updates one process makes.

One process updates with the averages over a mini-batch of B rows (lecture "Deep Neural
Networks", slide "RBM Weight Update"; :mod:`dlcore.rbm.trainer`):

    Delta W = eps / B  sum_r (x1_r' h1_r - x2_r' Q(h2 = 1 | x2_r))
    Delta b = eps / B  sum_r (x1_r - x2_r),      Delta c = eps / B  sum_r (h1_r - Q(h2_r))

Every term is a sum over rows, and a sum splits over any partition of the rows: rank k of R
holds rows [f_k, f_{k+1}) of each global batch (:meth:`dlcore.distributed.Communicator.shard`),
samples its rows' chains, computes its part of each sum, and one all-reduce adds the parts in
rank order. Every rank then applies the same update to the same parameters. The samples are
those of one process because the Philox counters are keyed by the *global* row f_k + r
(``first_row`` of the backend's random operations), never by the rank.

What is summed, in one buffer:

* the momentum buffer of W: rank 0 computes ``m v + eps/B x1'h1 - eps/B x2'q2`` on its rows,
  the other ranks only their two products, so the sum is the one-process velocity;
* the column sums of x1, x2 (visible biases), h1, Q(h2) (hidden biases) and of Q(h1) / B (the
  sparsity target's running mean), computed as products with a row of ones;
* PCD's persistent chains: each rank writes its rows, zeros elsewhere, so the sum of rows
  [0, b) is every rank's chain for a batch of b rows (a later batch may split the rows
  differently: the last, shorter one); only those rows are taken back, so the chains past b,
  which the last batch of an epoch does not reach, keep their states, as in one process;

then the ordinary backend steps (``momentum_step``, ``bias_step``, ``sparsity_step``, the
visible layer's ``update``) run on the summed rows, as on a batch of one row that stands for
the B rows (learning rate eps / B).

Identical to one process up to the order of the floating-point sums (the products and the
partial sums differ in their last bits); a Bernoulli sample whose uniform falls within such a
rounding of its probability may flip. The Gaussian layer's learned variances (their statistic
is not a function of the column sums) are not supported here.
"""
import dataclasses

import numpy as np

from dlcore.batches import mini_batches
from dlcore.rbm.units import CDBatch

from .communicator import Periodic
from .fingerprint import check_same_model, data_fingerprint


def data_parallel(trainer, comm, X, model=None):
    """``trainer`` over the ranks of ``comm`` (a :class:`DataParallelCD`), after checking that
    every rank trains on the same data with the same settings and the same starting model
    (``model``: :func:`dlcore.distributed.fingerprint.model_fingerprint`'s; ValueError
    naming what differs: :func:`dlcore.distributed.install_abort_on_error` then stops every
    rank)."""
    comm.check_same("the training data (shape and CRC-32)", data_fingerprint(X))
    comm.check_same("the CD settings", dataclasses.asdict(trainer.settings))
    check_same_model(comm, model)
    comm.check_same_backend(trainer.backend)
    if isinstance(comm, Periodic):   # sync_every > 1 (periodic() gives comm for 1)
        from .local_sgd import PeriodicCD
        return PeriodicCD(trainer, comm)
    return DataParallelCD(trainer, comm)


class DataParallelCD:
    """A :class:`dlcore.rbm.trainer.ContrastiveDivergence` trained over the ranks of ``comm``:
    the same ``epoch`` and ``download`` as the trainer it wraps, so an estimator's epoch loop
    runs it unchanged.

    Parameters
    ----------
    trainer : ContrastiveDivergence, its buffers sized for the global batch
    comm : dlcore.distributed.Communicator
    """

    def __init__(self, trainer, comm):
        self.trainer = trainer
        units = trainer.visible_units
        if getattr(units, "learn_sigma", False):
            raise ValueError("learn_sigma=True is not supported in data-parallel training (its "
                             "statistic is not a sum of column sums): use learn_sigma=False "
                             "or train in one process")
        self.comm = comm
        be = self.backend = trainer.backend
        n_visible, n_hidden = trainer.W.shape
        batch = trainer.settings.batch_size
        sizes = {"velocity_W": n_visible * n_hidden, "x1": n_visible, "x2": n_visible,
                 "h1": n_hidden, "q2": n_hidden, "q1": n_hidden,
                 "chain": batch * n_hidden if trainer.settings.persistent else 0}
        self.packed = be.zeros((sum(sizes.values()),))
        views, start = {}, 0
        for name, size in sizes.items():
            views[name] = self.packed[start:start + size]
            start += size
        self.velocity_W = views["velocity_W"].reshape(n_visible, n_hidden)
        be.copy_into(self.velocity_W, trainer.velocity_W)
        trainer.velocity_W = self.velocity_W   # its momentum term joins the sum (rank 0's)
        self.sums = {name: views[name].reshape(1, -1) for name in ("x1", "x2", "h1", "q2", "q1")}
        self.chain = views["chain"].reshape(-1, n_hidden)
        self.chain_zeros = be.zeros(self.chain.shape)
        self.ones = be.asarray(np.ones((1, trainer.batch_rows), dtype=np.float32))

    def shard(self, first_row, batch_rows):
        """What :meth:`ContrastiveDivergence.step` gets for rows ``first_row ..`` of a global
        batch of ``batch_rows`` rows."""
        return BatchShard(self, first_row, batch_rows)

    def update(self, trainer, shard, x1, x2, h1, q1, q2, input1, input2):
        """The sums of the module docstring, one all-reduce, the same update on every rank."""
        be, s, sums = self.backend, trainer.settings, self.sums
        b, batch_rows = x1.shape[0], shard.batch_rows
        rate = s.learning_rate / batch_rows
        ones = self.ones[:, :b]
        be.gemm(input1, h1, self.velocity_W, trans_a=True, alpha=rate,
                beta=s.momentum if self.comm.is_root else 0.0)
        be.gemm(input2, q2, self.velocity_W, trans_a=True, alpha=-rate, beta=1.0)
        for name, rows in (("x1", x1), ("x2", x2), ("h1", h1), ("q2", q2)):
            be.gemm(ones, rows, sums[name])
        be.gemm(ones, q1, sums["q1"], alpha=1.0 / batch_rows)
        if s.persistent:
            be.copy_into(self.chain, self.chain_zeros)
            rows = slice(shard.first_row, shard.first_row + b)
            be.copy_into(self.chain[rows], trainer.chain[rows])
        self.allreduce(self.packed)
        if s.persistent:
            # the batch's rows only: the chains a shorter last batch does not reach are zeros
            # in every rank's buffer, and keep their states (one process leaves them so)
            be.copy_into(trainer.chain[:batch_rows], self.chain[:batch_rows])
            # every rank started its rows of the batch: all of them have started now
            trainer.chains.unstarted[:batch_rows] = False
        # b <- b + eps (x1 - x2): the summed rows stand for the batch, at eps / B
        trainer.visible_units.update(
            be, _batch_of_sums(sums, trainer.W), trainer.visible_bias,
            trainer.velocity_visible_bias, dataclasses.replace(s, learning_rate=rate))
        be.momentum_step(trainer.W, self.velocity_W, s.learning_rate * s.weight_decay)
        # c <- c + eps (h1 - Q(h2. = 1 | x2))
        be.bias_step(trainer.hidden_bias, trainer.velocity_hidden_bias, sums["h1"], sums["q2"],
                     rate, s.momentum)
        if s.sparsity_target is not None:
            be.sparsity_step(sums["q1"], trainer.sparsity_mean, trainer.hidden_bias,
                             s.sparsity_decay, s.learning_rate * s.sparsity_cost,
                             s.sparsity_target)

    def allreduce(self, array):
        """Sum a backend array over the ranks in place (through the host for a GPU's)."""
        if isinstance(array, np.ndarray):
            self.comm.allreduce(array)
            return
        host = np.ascontiguousarray(self.backend.to_numpy(array), dtype=np.float32)
        self.comm.allreduce(host)
        self.backend.copy_into(array, self.backend.asarray(host))

    def epoch(self, data, order, first_update, report=None, report_every=None):
        """:meth:`ContrastiveDivergence.epoch` over the ranks: each global batch of ``order``
        is gathered, this rank steps on its shard of it. The reconstruction error is summed
        over the ranks at the end of the pass; ``report`` is called once, after the last
        batch (a running error would cost an all-reduce per report)."""
        be, trainer = self.backend, self.trainer
        be.copy_into(trainer.squared_error, be.zeros(trainer.squared_error.shape))
        update = first_update
        n_batches = 0
        for batch in mini_batches(be, (data,), (trainer.x1,), order,
                                  trainer.settings.batch_size, shard=self.comm.shard):
            rows = batch.arrays[0]
            first, stop = self.comm.shard(rows.shape[0])
            trainer.step(rows[first:stop], update, self.shard(first, rows.shape[0]))
            update += 1
            n_batches = batch.n_batches
        self.allreduce(trainer.squared_error)
        error = trainer._mean_error(len(order))
        if report is not None:
            report(n_batches, n_batches, error)
        return update, error

    def download(self):
        return self.trainer.download()


@dataclasses.dataclass
class BatchShard:
    """This rank's rows ``first_row ..`` of a global mini-batch of ``batch_rows`` rows."""

    data_parallel: DataParallelCD
    first_row: int
    batch_rows: int

    def update(self, trainer, x1, x2, h1, q1, q2, input1, input2):
        self.data_parallel.update(trainer, self, x1, x2, h1, q1, q2, input1, input2)


def _batch_of_sums(sums, W):
    return CDBatch(sums["x1"], sums["x2"], sums["h1"], sums["q2"], W)
