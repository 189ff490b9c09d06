"""Data-parallel training of networks (``Sequential``, functional ``Model``): the gradient of a
global mini-batch is the weighted sum of the gradients of its shards.

A network's update (lecture "Supervised learning": forward, loss, back-propagation, the
optimiser step; :mod:`dlcore.training`) uses the gradient of the batch mean,

    g = 1/B sum_{r=1..B} grad L(x_r, y_r) = sum_k (b_k / B) g_k,   g_k = 1/b_k sum_{r in shard k}

so rank k back-propagates the b_k rows of its shard of every global batch (the model computes
g_k, the mean over what it is given), scales it by b_k / B and one all-reduce of every
parameter's gradient, packed in one buffer, gives each rank g; every rank's optimiser then
makes the same step from the same state. The draws of the dropout, noise and augmentation
layers are keyed by the global row (their ``first_row``), so the shards draw the masks, noise
and image moves of one process. The epoch's loss and accuracy sums are added over the ranks at
the end of the pass.

Adversarial training (:mod:`dlcore.adversarial`) is a rank's own business up to the sum: an
FGSM example x_r + epsilon sign(grad_x L(x_r, y_r)) depends only on its row and the shared
parameters (the mean's 1/b_k does not change a sign), so each rank makes its rows' examples,
and its gradient a g_k(x) + (1 - a) g_k(x_adv), a mean over its b_k rows, is weighted by
b_k / B like any other.
"""
import numbers

import numpy as np

from .communicator import Periodic


class DataParallelNetwork:
    """What :class:`dlcore.training.TrainingLoop` asks during a data-parallel ``fit``.

    Parameters
    ----------
    model : a compiled, built network (``parameters``, ``layers``, ``backend``)
    comm : dlcore.distributed.Communicator
    """

    def __init__(self, model, comm):
        others = [type(layer).__name__ for layer in model.flat_layers
                  if layer.stochastic and not hasattr(layer, "first_row")]
        if others:
            raise ValueError(f"{', '.join(sorted(set(others)))} cannot train data-parallel yet "
                             "(their draws are keyed by the row of the shard): remove them or "
                             "train in one process")
        self.model, self.comm = model, comm
        self.random_layers = [layer for layer in model.flat_layers if layer.stochastic]
        self._flat = None

    def check_callbacks(self, callbacks):
        """ValueError on the ranks whose callbacks that can change training differ from rank
        0's (:func:`training_callbacks`); one collective, at the start of ``fit``."""
        mine = training_callbacks(callbacks)
        reference = self.comm.broadcast(mine, "checking the callbacks")
        if mine == reference:
            return
        names = [name for name, _ in mine]
        reference_names = [name for name, _ in reference]
        if names != reference_names:
            difference = (f"rank {self.comm.rank} has {', '.join(names) or 'none'}, rank 0 "
                          f"{', '.join(reference_names) or 'none'}")
        else:
            name, settings, reference_settings = next(
                (name, dict(settings), dict(other)) for (name, settings), (_, other)
                in zip(mine, reference) if settings != other)
            changed = sorted(key for key in settings.keys() | reference_settings.keys()
                             if settings.get(key) != reference_settings.get(key))
            difference = (f"rank {self.comm.rank}'s {name} has " + ", ".join(
                f"{key}={settings.get(key)}" for key in changed) + ", rank 0's " + ", ".join(
                f"{key}={reference_settings.get(key)}" for key in changed))
        raise ValueError(f"the callbacks that can change training differ between the ranks "
                         f"({difference}): give them to fit alike on every rank, as their "
                         f"decisions (stopping, the learning rate) must be the same "
                         f"everywhere; logging-only ones ({', '.join(LOGGING_CALLBACKS)}, or "
                         f"any with changes_training = False) may stay on rank 0")

    def shard(self, x, y):
        """This rank's rows of the global batch (x, y), its dropout, noise and augmentation
        layers keyed from the shard's first global row."""
        first, stop = self.comm.shard(x.shape[0])
        self.batch_rows = x.shape[0]
        for layer in self.random_layers:
            layer.first_row = first
        return x[first:stop], y[first:stop]

    def sum_gradients(self, local_rows):
        """Every parameter's ``grad`` <- sum over ranks of (b_k / B) g_k (module docstring);
        a rank with no row contributes zeros."""
        self._flat = sum_weighted_gradients(self.comm, self.model.backend, self.model.parameters,
                                            local_rows / self.batch_rows, local_rows > 0,
                                            self.model.dtype, self._flat)

    def sum_totals(self, totals):
        """The epoch's (loss sum, correct sum, rows) added over the ranks."""
        host = np.ascontiguousarray(self.model.backend.to_numpy(totals), dtype=np.float64)
        self.comm.allreduce(host)
        if isinstance(totals, np.ndarray):
            totals[...] = host
        else:
            self.model.backend.copy_into(totals, self.model.backend.asarray(host, np.float64))

    def finish(self):
        for layer in self.random_layers:
            layer.first_row = 0


#: The callbacks that only record or save what training did: any rank may have them alone.
LOGGING_CALLBACKS = ("History", "ProgressBar", "CSVLogger", "ModelCheckpoint")


def training_callbacks(callbacks):
    """``[(class name, ((setting, repr(value)), ...))]`` of the callbacks that can change
    training: all but the logging-only ones (:data:`LOGGING_CALLBACKS`, and any whose
    ``changes_training`` is False). A callback's settings are its public attributes of plain
    values (a function by its name), ``verbose`` aside: a rank may print where others do not.

    Every rank of a data-parallel fit gets the same epoch logs (the sums over the ranks,
    validation on the same weights), so the same callbacks make the same decisions; one that
    only rank 0 has would stop it alone (the other ranks waiting in their next sum) or change
    its learning rate alone (the ranks' weights parting without a word)."""
    from dlcore.callbacks import Callback
    found = []
    for callback in callbacks:
        kind = type(callback)
        if kind.__name__ in LOGGING_CALLBACKS and kind.__module__ == Callback.__module__ \
                or getattr(callback, "changes_training", True) is False:
            continue
        settings = []
        for name, value in sorted(vars(callback).items()):
            if name.startswith("_") or name in ("verbose", "model", "params"):
                continue
            if callable(value):
                value = getattr(value, "__qualname__", type(value).__name__)
            elif not isinstance(value, (bool, int, float, str, type(None))):
                continue
            settings.append((name, repr(value)))
        found.append((f"{kind.__qualname__}", tuple(settings)))
    return found


def sum_weighted_gradients(comm, backend, parameters, weight, has_rows, dtype, flat=None):
    """``grad <- sum over ranks of weight_k grad_k`` for every :class:`Parameter` of
    ``parameters``, in one all-reduce of one host buffer (``flat``, reused when it fits;
    returned). A rank without rows (``has_rows`` False) contributes zeros."""
    return sum_weighted_arrays(comm, backend, [p.grad for p in parameters], weight, has_rows,
                               dtype, flat)


def sum_weighted_arrays(comm, backend, arrays, weight, has_rows, dtype, flat=None):
    """``array <- sum over ranks of weight_k array_k`` for every backend array of ``arrays``
    (gradients, or local SGD's parameters and optimiser slots), in place, in one all-reduce
    of one host buffer (``flat``, reused when it fits; returned). A rank with ``has_rows``
    False contributes zeros."""
    sizes = [int(np.prod(array.shape)) for array in arrays]
    dtype = np.dtype(dtype)
    if flat is None or flat.size != sum(sizes) or flat.dtype != dtype:
        flat = np.empty(sum(sizes), dtype)
    start = 0
    for array, size in zip(arrays, sizes):
        part = flat[start:start + size]
        if has_rows:
            np.multiply(backend.to_numpy(array).reshape(-1), dtype.type(weight), out=part)
        else:
            part[...] = 0
        start += size
    comm.allreduce(flat)
    start = 0
    for array, size in zip(arrays, sizes):
        summed = flat[start:start + size].reshape(array.shape)
        if isinstance(array, np.ndarray):
            array[...] = summed
        else:
            backend.copy_into(array, backend.asarray(summed, dtype=dtype))
        start += size
    return flat


def data_parallel(model, comm, x, y, fit_settings=None, validation=None):
    """A :class:`DataParallelNetwork` for ``model.fit(x, y, comm=comm)``, after checking that
    the ranks agree on the data, the validation data, the network (:func:`network_fingerprint`)
    and ``fit_settings`` (a dict: ``batch_size``, ``epochs``...); ValueError naming what
    differs."""
    from .fingerprint import data_fingerprint
    normalising = [layer.name for layer in model.flat_layers if layer.state_names]
    if normalising:
        # each rank would normalise its shard by the shard's statistics, not the batch's
        raise ValueError(f"layer {normalising[0]!r} (BatchNormalization) normalises by its "
                         f"batch's statistics, which a data-parallel fit splits across the "
                         f"ranks: train it in one process")
    comm.check_same("the training data (shape and CRC-32)",
                    (data_fingerprint(x), data_fingerprint(y)))
    comm.check_same("the validation data (shape and CRC-32)",
                    None if validation is None else
                    tuple(None if part is None else data_fingerprint(part)
                          for part in validation))
    comm.check_same("the fit settings", {**(fit_settings or {}),
                                         "sync_every": getattr(comm, "sync_every", 1)})
    comm.check_same("the network (its layers, starting weights, loss and optimiser)",
                    network_fingerprint(model))
    comm.check_same_backend(model.backend)
    if isinstance(comm, Periodic):   # sync_every > 1 (periodic() gives comm for 1)
        from .local_sgd import PeriodicNetwork
        return PeriodicNetwork(model, comm)
    return DataParallelNetwork(model, comm)


def network_fingerprint(model):
    """What the ranks' networks must agree on, by name: each layer's class and settings (its
    name left out: an automatic name counts the layers a process made before), the shape and
    CRC-32 of each starting weight (another seed or starting point differs there), the loss
    and the optimiser's settings."""
    from dlcore.optimizers import serialize

    from .fingerprint import data_fingerprint
    fingerprint = {}
    for index, layer in enumerate(model.flat_layers):
        settings = {key: value for key, value in layer._config().items() if key != "name"}
        fingerprint[f"layer {index}"] = (type(layer).__name__, repr(settings))
        for number, weight in enumerate(layer.get_weights() if layer.built else ()):
            fingerprint[f"layer {index} weight {number}"] = data_fingerprint(weight)
    losses = getattr(model, "losses", None) or [model.loss]
    fingerprint["loss"] = repr([None if loss is None else loss.get_config() for loss in losses])
    fingerprint["optimizer"] = repr(None if model.optimizer is None
                                    else serialize(model.optimizer))
    return fingerprint


def restore_backup(model, backup, comm, owner=None):
    """Restore a :class:`dlcore.callbacks.BackupAndRestore` in a data-parallel ``fit``: rank 0
    reads ``backup`` into ``model`` and broadcasts the state it restored (weights, optimiser
    slots, seed, epochs and updates done, history, the other callbacks' state, the learning
    rate), which every other rank puts into its model: the ranks go on from the same epoch
    with the same bits, and a rank that cannot see the file (node-local storage) needs none.
    One collective on every rank, whether its ``backup`` is None or not (a rank without the
    callback is refused afterwards by :meth:`DataParallelNetwork.check_callbacks`). Returns
    whether a backup was restored; a backup that rank 0 cannot restore raises its ValueError
    on every rank. ``owner``: what owns the lock rank 0 takes (the fit's, for
    :meth:`~dlcore.callbacks.BackupAndRestore.release`); ``model`` when None."""
    restored = None
    if comm.is_root and backup is not None:
        try:
            backup._check_backup_dir()
            # the fit holds the folder until it ends (TrainingLoop._release_backup)
            backup.hold(owner=model if owner is None else owner)
            if backup._restore_into(model):
                rate = getattr(model.optimizer, "learning_rate", None)
                restored = ("restored", model.get_state(), model.history,
                            rate if _is_number(rate) else None)
        except ValueError as error:
            restored = ("refused", str(error))
    restored = comm.broadcast(restored, "restoring BackupAndRestore's backup")
    if restored is None:
        return False
    if restored[0] == "refused":
        raise ValueError(restored[1])
    if backup is None:
        return False
    if not comm.is_root:
        _, state, history, rate = restored
        model.set_state(state)
        model.history = history
        if rate is not None and _is_number(getattr(model.optimizer, "learning_rate", None)):
            # a rate that ReduceLROnPlateau lowered is no part of the state (BackupAndRestore)
            model.optimizer.learning_rate = rate
    return True


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
