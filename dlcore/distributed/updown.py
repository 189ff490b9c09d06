"""Data-parallel up-down fine-tuning of a DBN (contrastive wake-sleep, :mod:`dlcore.dbn.updown`):
R ranks make the updates one process makes.

Every statistic of an up-down update is a sum over the rows of the mini-batch of B rows:

    G_i += eps / B  sum_r (s_i,r - sigm(s_{i+1},r G_i' + g_i))' s_{i+1},r     g_i likewise
    R_i += eps / B  sum_r t_i,r' (t_{i+1},r - sigm(t_i,r R_i + c_i))          c_i likewise

and the top RBM's CD-k statistics are sums too (:mod:`dlcore.distributed.rbm`). Each wake
state s_{i+1} depends only on its own row s_i and the shared weights, each sleep state t_i only
on its row t_{i+1}, so rank k computes the wake pass, the top RBM's negative phase and the sleep
pass of its shard of every global batch (:meth:`dlcore.distributed.Communicator.shard`), its
draws keyed by the global rows (``first_row``: the Philox counters of one process), and its
part of every sum. Two all-reduces per update: the top RBM's statistics (its CD step, whose
update the sleep pass does not read), then the generative and recognition statistics of the
lower layers in one buffer:

* the new weights: rank 0 starts from G_i (R_i), the other ranks from zeros, and each adds
  eps / B times its products, so the sum is the one-process update (as the momentum buffer of
  :class:`dlcore.distributed.rbm.DataParallelCD`);
* the column sums of the positive and negative rows of every bias, products with a row of ones,
  then the ordinary ``bias_step`` on the summed rows at eps / B.

The generative reconstruction error (the epoch's monitor) is summed over the ranks at the end of
the pass. Identical to one process up to the order of the floating-point sums.
"""
import dataclasses

import numpy as np

from dlcore.batches import epoch_order, mini_batches

from .communicator import as_communicator
from .fingerprint import check_same_model, data_fingerprint, model_fingerprint
from .rbm import DataParallelCD


def data_parallel(learner, comm, X, y, epochs):
    """``learner`` (a :class:`dlcore.dbn.updown.UpDown`) over the ranks of ``comm``, after
    checking that they agree on the data, the learning rate, the starting weights and the
    ``epochs`` (``comm``: an mpi4py communicator too, :func:`.communicator.as_communicator`)."""
    comm = as_communicator(comm)
    comm.check_same("the training data (shape and CRC-32)",
                    (data_fingerprint(X), None if y is None else data_fingerprint(y)))
    comm.check_same("the up-down settings", (learner.rate, learner.wake[0].shape[0],
                                             dataclasses.asdict(learner.top.settings)))
    backend = learner.backend
    check_same_model(comm, model_fingerprint(
        {f"{kind} {index} {part}": backend.to_numpy(array)
         for kind, pairs in (("recognition", learner.recognition),
                             ("generative", learner.generative))
         for index, pair in enumerate(pairs) for part, array in zip(("W", "bias"), pair)},
        epochs))
    comm.check_same_backend(learner.backend)
    return DataParallelUpDown(learner, comm)


class DataParallelUpDown:
    """The learner's ``epoch`` over the ranks of ``comm`` (module docstring).

    Parameters
    ----------
    learner : UpDown, its buffers sized for the global batch
    comm : dlcore.distributed.Communicator
    """

    def __init__(self, learner, comm):
        self.learner, self.comm = learner, comm
        self.top = DataParallelCD(learner.top, comm)
        be = self.backend = learner.backend
        # per lower layer: G_i and its bias g_i, R_i and its bias c_i (the order of rules())
        shapes = []
        for (G, g), (R, c) in zip(learner.generative, learner.recognition):
            shapes += [(G.shape, g.shape[0]), (R.shape, c.shape[0])]
        self.packed = be.zeros((sum(int(np.prod(w)) + 2 * n for w, n in shapes),))
        self.sums, start = [], 0
        for weight_shape, n in shapes:
            size = int(np.prod(weight_shape))
            weight = self.packed[start:start + size].reshape(weight_shape)
            positive = self.packed[start + size:start + size + n].reshape(1, n)
            negative = self.packed[start + size + n:start + size + 2 * n].reshape(1, n)
            self.sums.append((weight, positive, negative))
            start += size + 2 * n
        self.ones = be.asarray(np.ones((1, learner.wake[0].shape[0]), dtype=np.float32))

    def epoch(self, data, labels, epoch, first_update):
        """:meth:`UpDown.epoch` over the ranks: each global batch gathered, this rank steps on
        its shard of it; the reconstruction error summed over the ranks after the pass."""
        learner, be = self.learner, self.backend
        batch_size = learner.wake[0].shape[0]
        be.copy_into(learner.squared_error, be.zeros(learner.squared_error.shape))
        order = epoch_order(data.shape[0], learner.seed, epoch)
        label_buffer = None if labels is None else be.empty((batch_size, labels.shape[1]))
        update = first_update
        for batch in mini_batches(be, (data, labels), (learner.wake[0], label_buffer), order,
                                  batch_size, shard=self.comm.shard):
            rows, batch_labels = batch.arrays
            first, stop = self.comm.shard(rows.shape[0])
            learner.step(rows[first:stop],
                         None if batch_labels is None else batch_labels[first:stop], update,
                         _Shard(self, first, rows.shape[0]))
            update += 1
        self.top.allreduce(learner.squared_error)
        total = float(np.sum(be.to_numpy(learner.squared_error), dtype=np.float64))
        return update, total / (len(order) * data.shape[1])

    def learn(self, rules, batch_rows):
        """Every rule's sums (module docstring), one all-reduce, the same updates on every
        rank."""
        be, rate = self.backend, self.learner.rate / batch_rows
        applied = []
        for rule, (weight, positive, negative) in zip(rules, self.sums):
            b = rule.positive.shape[0]
            if self.comm.is_root:
                be.copy_into(weight, rule.weight)
            for k, (a, c, sign) in enumerate(rule.products):
                be.gemm(a, c, weight, trans_a=True, alpha=sign * rate,
                        beta=1.0 if k or self.comm.is_root else 0.0)
            be.gemm(self.ones[:, :b], rule.positive, positive)
            be.gemm(self.ones[:, :b], rule.negative, negative)
            applied.append(rule)
        self.top.allreduce(self.packed)
        for rule, (weight, positive, negative) in zip(applied, self.sums):
            be.copy_into(rule.weight, weight)
            # the summed rows stand for the batch, at eps / B
            be.bias_step(rule.bias, rule.velocity, positive, negative, rate, 0.0)

    def download(self):
        self.learner.download()


@dataclasses.dataclass
class _Shard:
    """This rank's rows ``first_row ..`` of a global batch of ``batch_rows`` rows."""

    data_parallel: DataParallelUpDown
    first_row: int
    batch_rows: int

    @property
    def top(self):
        return self.data_parallel.top.shard(self.first_row, self.batch_rows)

    def learn(self, rules):
        self.data_parallel.learn(rules, self.batch_rows)
