"""The epoch loop of the layer-wise estimators: the RBMs and the autoencoder.

Lecture "Deep Neural Networks" trains each layer of a DBN (an RBM by contrastive divergence) or
of a stack of auto-associators for some epochs before the next. Both estimators run the same
loop around their own trainer, written once here::

    for each epoch:
        order = epoch_order(n_rows, seed, epochs_done)           # dlcore.batches
        n_updates, monitors = trainer.epoch(data, order, n_updates, report)
        parameters, state = trainer.download()
        divergence check of the epoch's loss                    # dlcore.errors
        the estimator's own test of a failed epoch, if it has one
        epochs_done += 1; record the epoch in history; on_epoch_end(model)
        progress of the epoch's last batch (held until here)

An epoch that diverges or is interrupted (Ctrl-C) leaves the model as the last finished epoch
left it (:meth:`EpochLoop.training_snapshot`, :meth:`EpochLoop.restore_snapshot`), then the
exception propagates: a file saved afterwards holds finished epochs only.

The seam: what the loop asks of an estimator
--------------------------------------------
``divergence_monitor``
    ``(name printed in the error, history key of the monitored loss)``.
``_epoch_loss(monitors)``
    The number the divergence check watches, from what ``trainer.epoch`` returned.
``_parameters()``, ``_store(parameters, state)``, ``_training``, ``history``, ``seed_``,
``learning_rate``, ``n_updates_``, ``epochs_done_``
    The parameters by name, taking back the trainer's, the training state (momenta, chains;
    arrays or None), the lists of per-epoch figures, the Philox seed and the counters.
"""
import time

import numpy as np

from dlcore.batches import epoch_order
from dlcore.errors import DivergenceCheck, decay_diverges
from dlcore.params import sizes_call_wording


class EpochLoop:
    """Mixin: ``_run_epochs`` and the snapshots it restores from (see the module's text)."""

    divergence_monitor = ("loss", "loss")

    def _epoch_loss(self, monitors):
        return monitors

    def _check_fitted_sizes(self, call):
        """``n_hidden`` that a ``set_params`` changed after training started is refused by
        ``call`` (``partial_fit``, ``resume``, which would train the fitted units on while
        ``get_params`` names others; ``save``, ``pickle``, whose copy would not be read back):
        one line naming both fixes; nothing before fit."""
        if not hasattr(self, "W"):
            return
        fitted = self.W.shape[1]
        if int(self.n_hidden) != fitted:
            consequence, fix = sizes_call_wording(call)
            raise ValueError(f"n_hidden={self.n_hidden} differs from the {fitted} hidden units "
                             f"this {type(self).__name__} was fitted with, {consequence}: "
                             f"call fit(X) to train {self.n_hidden} from the start, or "
                             f"set_params(n_hidden={fitted}) {fix}")

    @staticmethod
    def _check_valid_rows(X_valid, width, check):
        """``X_valid`` (or None) checked by ``check`` (the model's check of its rows: ``(X,
        name, width=)``) against the ``width`` of the rows to train on, before the model's
        parameters are replaced: checked only by the training loop, a refused ``X_valid``
        left a fitted model initialised afresh, untrained, where it transformed as if
        fitted."""
        if X_valid is None:
            return None
        return check(X_valid, "X_valid", width=width)

    def _run_epochs(self, trainer, data, epochs, progress, on_epoch_end, record_epoch,
                    learning_failure=None):
        """``epochs`` passes of ``trainer`` over ``data`` (rows on the trainer's backend).

        ``progress(epoch, epochs, batches_done, batches, loss)`` counts over the model's life
        (a resumed run reports epochs 3 and 4 of 4), its report of an epoch's last batch
        only once the epoch is complete (recorded, and ``on_epoch_end`` returned), so a line
        "epoch 2/4" means that epoch 2 is what a Ctrl-C then saves; ``record_epoch(monitors,
        seconds)`` adds the finished epoch to the history; ``on_epoch_end(model)`` runs after
        it (a checkpoint callback saves there). ``learning_failure(monitors)``, where given,
        is the estimator's own test of an epoch that the divergence check passed: what went
        wrong (a problem the check raises :class:`~dlcore.errors.TrainingDiverged` with), or
        None."""
        name, history_key = self.divergence_monitor
        # an RBM's weight decay goes through its momentum buffer (dlcore.rbm.trainer)
        decay = decay_diverges(self.learning_rate, getattr(self, "weight_decay", None),
                               getattr(self, "momentum", 0.0))
        divergence = DivergenceCheck(name, self.learning_rate, self.history.get(history_key, ()),
                                     decay=decay)
        last_good = self.training_snapshot()
        done_before = self.epochs_done_
        try:
            for epoch in range(epochs):
                started = time.perf_counter()
                order = epoch_order(data.shape[0], self.seed_, self.epochs_done_)
                report, last_report = None, []
                if progress is not None:
                    def report(done, total, loss, epoch=epoch, last_report=last_report):
                        arguments = (done_before + epoch + 1, done_before + epochs, done, total,
                                     loss)
                        if done == total:
                            # held until the epoch is complete: a line "epoch 2/4" printed
                            # before its checkpoint, then a Ctrl-C, was told "saved after
                            # epoch 1"
                            last_report.append(arguments)
                        else:
                            progress(*arguments)
                self.n_updates_, monitors = trainer.epoch(data, order, self.n_updates_, report)
                self._store(*trainer.download())
                divergence.check(self.epochs_done_ + 1, self._epoch_loss(monitors),
                                 self._parameters().values())
                problem = None if learning_failure is None else learning_failure(monitors)
                if problem is not None:
                    divergence.fail(self.epochs_done_ + 1, self._epoch_loss(monitors), problem)
                self.epochs_done_ += 1
                record_epoch(monitors, time.perf_counter() - started)
                last_good = self.training_snapshot()
                if on_epoch_end is not None:
                    on_epoch_end(self)
                for arguments in last_report:
                    progress(*arguments)
        except BaseException:
            # the trainer updates the parameters in place on host backends: put back copies
            self.restore_snapshot(last_good)
            raise

    def training_snapshot(self):
        """Copies of everything training changes (parameters, training state, counters, the
        length of each history list), for :meth:`restore_snapshot`."""
        return {"parameters": {name: np.array(value)
                               for name, value in self._parameters().items()},
                "training": _copies(self._training), "n_updates": self.n_updates_,
                "epochs_done": self.epochs_done_,
                "history": {name: len(values) for name, values in self.history.items()}}

    def restore_snapshot(self, snapshot):
        """Put the model back as :meth:`training_snapshot` found it."""
        for name, value in snapshot["parameters"].items():
            setattr(self, name, np.array(value))
        self._training = _copies(snapshot["training"])
        self.n_updates_ = snapshot["n_updates"]
        self.epochs_done_ = snapshot["epochs_done"]
        for name, length in snapshot["history"].items():
            del self.history[name][length:]


def _copies(arrays):
    return {name: None if value is None else np.array(value) for name, value in arrays.items()}
