"""Data-parallel training of an :class:`dlcore.Autoencoder`: the gradient of a global batch is
the weighted sum of its shards' gradients, as for networks (:mod:`dlcore.distributed.network`).

The cost J = 1/B sum_r L(x_r, r_r) is a mean over the rows, so with g_k the gradient of the
mean over rank k's b_k rows, dJ/dtheta = sum_k (b_k / B) g_k: one all-reduce of the gradients,
then every rank's SGD makes the same step. The corruption q(x~ | x) is drawn at the global
rows (``first_row`` of the corruption), so the shards corrupt as one process would. The
monitors (loss and squared error per unit) are summed over the ranks at the end of a pass.
Not data-parallel (refused in one line): the sparsity penalty, whose gradient depends on the
mean activation of the whole batch.
"""
import dataclasses

import numpy as np

from dlcore.batches import mini_batches

from .communicator import Periodic
from .network import sum_weighted_gradients
from .rbm import data_fingerprint


def data_parallel(trainer, comm, X):
    """``trainer`` (an :class:`dlcore.autoencoder.trainer.AutoencoderTrainer`) over the ranks
    of ``comm``, after checking that they agree on the data and the settings."""
    if trainer.settings.sparsity_target is not None:
        raise ValueError("the sparsity penalty cannot train data-parallel yet (its gradient "
                         "needs the whole batch's mean activation): use sparsity_target=None "
                         "or train in one process")
    comm.check_same("the training data (shape and CRC-32)", data_fingerprint(X))
    comm.check_same("the autoencoder settings", dataclasses.asdict(trainer.settings))
    if isinstance(comm, Periodic):   # sync_every > 1 (periodic() gives comm for 1)
        from .local_sgd import PeriodicAutoencoder
        return PeriodicAutoencoder(trainer, comm)
    return DataParallelAutoencoder(trainer, comm)


class DataParallelAutoencoder:
    """The trainer's ``epoch`` and ``download`` over the ranks (as
    :class:`dlcore.distributed.rbm.DataParallelCD` for the RBMs)."""

    def __init__(self, trainer, comm):
        self.trainer, self.comm = trainer, comm
        self._flat = None

    def epoch(self, data, order, first_update, report=None, report_every=None):
        """One pass: each global batch gathered, this rank steps on its shard; ``report`` is
        called once, after the last batch, with the loss of the pass."""
        trainer, be = self.trainer, self.trainer.backend
        for total in trainer.monitors:
            be.copy_into(total, be.zeros(total.shape))
        update, n_batches = first_update, 0
        for batch in mini_batches(be, (data,), (trainer.x,), order, trainer.settings.batch_size,
                                  shard=self.comm.shard):
            rows = batch.arrays[0]
            first, stop = self.comm.shard(rows.shape[0])
            trainer.step(rows[first:stop], update, self.shard(first, rows.shape[0]))
            update += 1
            n_batches = batch.n_batches
        for total in trainer.monitors:
            host = np.ascontiguousarray(be.to_numpy(total), dtype=np.float32)
            self.comm.allreduce(host)
            be.copy_into(total, be.asarray(host))
        means = trainer._means(len(order), n_batches)
        if report is not None:
            report(n_batches, n_batches, means["loss"])
        return update, means

    def shard(self, first_row, batch_rows):
        """What the trainer's ``step`` gets for rows ``first_row ..`` of a global batch of
        ``batch_rows`` rows."""
        return _Shard(self, first_row, batch_rows)

    def download(self):
        return self.trainer.download()


@dataclasses.dataclass
class _Shard:
    data_parallel: DataParallelAutoencoder
    first_row: int
    batch_rows: int

    def sum_gradients(self, parameters, local_rows):
        owner = self.data_parallel
        owner._flat = sum_weighted_gradients(owner.comm, owner.trainer.backend, parameters,
                                             local_rows / self.batch_rows, local_rows > 0,
                                             np.float32, owner._flat)
