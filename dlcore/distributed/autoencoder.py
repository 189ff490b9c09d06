"""Data-parallel training of an :class:`dlcore.Autoencoder`: the gradient of a global batch is
the weighted sum of its shards' gradients, as for networks (:mod:`dlcore.distributed.network`).

The cost J = 1/B sum_r L(x_r, r_r) is a mean over the rows, so with g_k the gradient of the
mean over rank k's b_k rows, dJ/dtheta = sum_k (b_k / B) g_k: one all-reduce of the gradients,
then every rank's SGD makes the same step. The corruption q(x~ | x) is drawn at the global
rows (``first_row`` of the corruption), so the shards corrupt as one process would. The
monitors (loss and squared error per unit) are summed over the ranks at the end of a pass.

The sparsity penalty beta sum_j KL(rho || rho^_j) is not a sum over rows: rho^_j is the mean
activation of the whole batch. Its gradient, (beta / B) (-rho / rho^_j + (1 - rho) / (1 -
rho^_j)) for every row, needs only rho^: each rank sums its rows' h column by column, one
all-reduce of these n_hidden sums (before the backward pass) gives every rank the global
column sums, and rank k adds the term with rho^ = sums / B and its own 1 / b_k (its gradient
is a mean over its b_k rows, weighted by b_k / B afterwards). Rank 0 alone adds the batch's
KL to the penalty monitor.
"""
import dataclasses

import numpy as np

from dlcore.autoencoder.ops import BatchActivations
from dlcore.batches import mini_batches

from .communicator import Periodic
from .fingerprint import check_same_model, data_fingerprint
from .network import sum_weighted_gradients


def data_parallel(trainer, comm, X, model=None):
    """``trainer`` (an :class:`dlcore.autoencoder.trainer.AutoencoderTrainer`) over the ranks
    of ``comm``, after checking that they agree on the data, the settings and the starting
    ``model`` (:func:`dlcore.distributed.fingerprint.model_fingerprint`)."""
    comm.check_same("the training data (shape and CRC-32)", data_fingerprint(X))
    comm.check_same("the autoencoder settings", dataclasses.asdict(trainer.settings))
    check_same_model(comm, model)
    comm.check_same_backend(trainer.backend)
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

    def sum_activations(self, ops, h, out):
        """The sparsity penalty's :class:`BatchActivations`: ``out`` (n_hidden,) <- the
        column sums of h over the global batch (this rank's rows' sums, summed over the
        ranks)."""
        owner = self.data_parallel
        be = owner.trainer.backend
        ops.column_sums(h, out)
        host = np.ascontiguousarray(be.to_numpy(out), dtype=np.float32)
        owner.comm.allreduce(host)
        be.copy_into(out, be.asarray(host))
        return BatchActivations(out, self.batch_rows, 1.0 if owner.comm.is_root else 0.0)
