"""Local SGD (periodic parameter averaging): K local steps on every rank between two
all-reduces, which average the parameters; ``fit(..., comm=comm, sync_every=K)``.

The exact data-parallel step (:mod:`.rbm`, :mod:`.network`, :mod:`.autoencoder`) sums the
statistics or gradients of every global mini-batch over the ranks: one all-reduce per step. On
a slow interconnect that sum costs more than the step's compute. Local SGD trades exactness for
K times fewer all-reduces (Zinkevich et al. 2010, "Parallelized stochastic gradient descent";
McMahan et al. 2017, federated averaging; Stich 2019, "Local SGD converges fast and
communicates little"; Lin et al. 2020, "Don't use large mini-batches, use local SGD"). Rank k
takes K ordinary steps, each on its shard of the next global mini-batch (its b_k of the B rows,
drawn with their global Philox rows as in the exact path, the learning rate unchanged: a step
on the mean gradient of b_k rows), then one all-reduce replaces every rank's parameters theta_k
by their weighted average

    theta <- sum_k (n_k / N) theta_k,    n_k = the rows rank k stepped on since the last
                                         average,  N = sum_k n_k

(federated averaging's weights; with equal shards the plain mean). Windows restart with every
epoch and the epoch's last, shorter window is averaged too, so every rank ends every epoch with
the same parameters; the sum runs in rank order (:class:`.Communicator`), so they are the same
bits on every rank.

**Optimiser state is averaged too**, with the same weights in the same all-reduce: the momentum
buffers (SGD, the RBM's velocities), Adam's and RMSprop's moments, the RBM's sparsity running
mean, and PCD's persistent chains (there each row is taken from the rank that moved it last in
the window). This is the momentum SGD of Yu, Jin & Yang (2019, "On the linear speedup analysis
of communication efficient momentum SGD for distributed non-convex optimization"), which
averages the momentum buffers with the parameters; Lin et al. (2020) keep them local instead,
half the bytes, but then every rank trains on with a different state. Averaged, every rank holds
the same model *and* training state after each average, so what rank 0 saves and a resumed run
do not depend on the rank. The update counters (the Philox steps, Adam's t) advance alike on
every rank: a rank whose shard of a batch is empty takes a step with a zero gradient (networks,
autoencoders) or none (RBMs, whose step has no state of its own to advance).
A local step is the ordinary step on the rank's rows, so an autoencoder's sparsity penalty takes
its rho^ from them (one process's on a batch of those rows), not from the global batch.

K = 1 is not this averaging but the exact path (the sums of :mod:`.rbm`, :mod:`.network`); for
an update linear in the gradient (SGD and CD with momentum) averaging after every step would
give the same step, sum_k (b_k / B)(theta - eps g_k) = theta - eps g. With K > 1 the ranks'
trajectories part between two averages (each follows its own, smaller batches) and the average
of K-step trajectories is not the trajectory of one process: the result is not one process's,
and it changes with R and K (docs/distributed.md measures by how much). All-reduces per epoch:
ceil(n_batches / K) averages (two with PCD's chains) and one for the epoch's monitors, instead
of n_batches + 1. Max-norm constraints still hold after an average (a norm ball is convex).
"""
import dataclasses

import numpy as np

from dlcore.autoencoder.ops import BatchActivations

from .autoencoder import DataParallelAutoencoder
from .network import DataParallelNetwork, sum_weighted_arrays
from .rbm import DataParallelCD


class Averaging:
    """The window of local steps since the last average, and the average (module docstring).

    A subclass names what it averages (``averaged_arrays``: backend arrays, updated in place)
    and calls :meth:`local_step` before each step and :meth:`average` at the end of a pass."""

    dtype = np.float32
    _averaged = None   # the host buffer of the all-reduce, reused

    def start_window(self):
        self.steps = self.local_rows = self.global_rows = 0

    def local_step(self, batch_rows):
        """Before a step on this rank's shard of a global batch of ``batch_rows`` rows: the
        average of the last K steps when they are done (so a pass needs no hook after its
        steps), then this step counted. Returns the shard ``(first, stop)``."""
        if self.steps == self.comm.sync_every:
            self.average()
        first, stop = self.comm.shard(batch_rows)
        self.steps += 1
        self.local_rows += stop - first
        self.global_rows += batch_rows
        return first, stop

    def average(self):
        """theta <- sum_k (n_k / N) theta_k over the arrays of ``averaged_arrays``, in one
        all-reduce; nothing when no step was taken since the last average."""
        if self.steps:
            self._averaged = sum_weighted_arrays(
                self.comm, self.backend, self.averaged_arrays(),
                self.local_rows / self.global_rows, self.local_rows > 0, self.dtype,
                self._averaged)
            self.start_window()


class AveragedEpochs(Averaging):
    """Averaging for a trainer whose ``epoch`` is one pass: a fresh window at its start, the
    last (shorter) window averaged at its end, so every rank ends every epoch with the same
    parameters."""

    def epoch(self, data, order, first_update, report=None, report_every=None):
        self.start_window()
        result = super().epoch(data, order, first_update, report, report_every)
        self.average()
        return result


# -- RBMs: CD-k and row-aligned PCD --------------------------------------------------------
class PeriodicCD(AveragedEpochs, DataParallelCD):
    """:class:`.DataParallelCD` whose ranks take local CD steps, averaged every K (module
    docstring): W, the biases, their velocities, the sparsity running mean and the PCD
    chains."""

    def __init__(self, trainer, comm):
        super().__init__(trainer, comm)
        # one entry per PCD chain row (a chain per batch row: the batch's rows reach them)
        chains = trainer.chains
        self.owner = np.zeros(trainer.batch_rows if chains is None else chains.hidden.shape[0],
                              np.int64)
        self.start_window()

    def averaged_arrays(self):
        t = self.trainer
        arrays = [t.W, t.visible_bias, t.hidden_bias, t.velocity_W, t.velocity_visible_bias,
                  t.velocity_hidden_bias]
        return arrays + ([t.sparsity_mean] if t.settings.sparsity_target is not None else [])

    def shard(self, first_row, batch_rows):
        self.local_step(batch_rows)
        if self.trainer.chains is not None:  # which rank moves each chain row (PCD's rows)
            for rank in range(self.comm.size):
                first, stop = self.comm.shard(batch_rows, rank)
                self.owner[first:stop] = rank
        return LocalCDRows(first_row)

    def average(self):
        chains = self.trainer.chains
        if self.steps and chains is not None:
            # each chain row from the rank that moved it last: the others send zeros
            host = np.array(self.backend.to_numpy(chains.hidden), dtype=np.float32)
            host[self.owner[:host.shape[0]] != self.comm.rank] = 0
            self.comm.allreduce(host)
            self.backend.copy_into(chains.hidden, self.backend.asarray(host))
            chains.started = True
            self.owner[...] = 0
        super().average()


@dataclasses.dataclass
class LocalCDRows:
    """A local CD step on this rank's rows ``first_row ..`` of a global batch: drawn at the
    global rows, updated as one process updates on a batch of those rows."""

    first_row: int

    def update(self, trainer, x1, *rows):
        if x1.shape[0]:   # an empty shard (a batch smaller than the group) makes no step
            trainer.update(x1, *rows)


# -- networks (Sequential, functional Model) -----------------------------------------------
class PeriodicNetwork(Averaging, DataParallelNetwork):
    """:class:`.DataParallelNetwork` whose ranks step their own optimisers on their shards,
    averaging every parameter and optimiser slot every K steps."""

    def __init__(self, model, comm):
        super().__init__(model, comm)
        self.dtype = model.dtype
        self.backend = model.backend
        self.start_window()

    def averaged_arrays(self):
        slots = self.model.optimizer.state_slot_names
        return [array for p in self.model.parameters
                for array in [p.value] + [p.slots[name] for name in slots]]

    def shard(self, x, y):
        self.local_step(x.shape[0])
        return super().shard(x, y)

    def sum_gradients(self, local_rows):
        """No sum: the local step's gradient is the shard's own (zero for an empty shard, whose
        gradient was not computed)."""
        if not local_rows:
            for parameter in self.model.parameters:
                _zero(self.backend, parameter.grad)

    def sum_totals(self, totals):
        """The end of a pass: the last window averaged, then the monitors summed."""
        self.average()
        super().sum_totals(totals)


# -- autoencoders -------------------------------------------------------------------------
class PeriodicAutoencoder(AveragedEpochs, DataParallelAutoencoder):
    """:class:`.DataParallelAutoencoder` with local SGD steps, averaging the parameters and
    their velocities every K steps."""

    def __init__(self, trainer, comm):
        super().__init__(trainer, comm)
        self.backend = trainer.backend
        self.start_window()

    def averaged_arrays(self):
        return [array for p in self.trainer.slots for array in (p.value, p.slots["velocity"])]

    def shard(self, first_row, batch_rows):
        self.local_step(batch_rows)
        return LocalAutoencoderRows(self.backend, first_row, batch_rows)


@dataclasses.dataclass
class LocalAutoencoderRows:
    """A local SGD step on this rank's rows ``first_row ..`` of a global batch of
    ``batch_rows`` rows."""

    backend: object
    first_row: int
    batch_rows: int

    def sum_activations(self, ops, h, out):
        """The sparsity penalty of a local step: rho^ is the mean activation of this rank's own
        rows, as one process's on a batch of them; their KL enters the monitor (summed over
        the ranks) weighted b_k / B."""
        ops.column_sums(h, out)
        return BatchActivations(out, h.shape[0], h.shape[0] / self.batch_rows)

    def sum_gradients(self, parameters, local_rows):
        if not local_rows:   # the trainer computed no gradient for an empty shard
            for parameter in parameters:
                _zero(self.backend, parameter.grad)


def _zero(backend, array):
    backend.copy_into(array, backend.zeros(array.shape, array.dtype))
