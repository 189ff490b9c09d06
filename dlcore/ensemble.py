"""Ensembles: several networks whose class probabilities are averaged (model averaging, bagging).

Lecture "Convolutional neural networks" (2016), "Ensemble methods": "train several models and
take average of their outputs; instead of one point representing P(theta | X), use several;
also known as bagging or model averaging; it helps to make individual models different by
varying models or algorithms, hyperparameters, data (dropping examples or dimensions), random
seed". Lecture "Deep learning I": "different models make different errors". For members
m = 1..M with class probabilities p_m(y | x),

    p(y | x) = (1/M) sum_m p_m(y | x)

Bagging (Breiman 1996, "bootstrap aggregating") gives each member its own training set: n rows
drawn from the n training rows with replacement, row i of member m's sample being

    r_i = floor(u_i n),    u_i = Philox(seed, STREAM_BOOTSTRAP, step = m, row = i)

(:func:`bootstrap_rows`), so that a member sees about 1 - 1/e = 63 % of the distinct rows, some
of them twice or more. ``Ensemble(models, bagging=True).fit(x, y, ...)`` trains member m on
sample m; without bagging every member trains on all of (x, y) and the members differ by
their seeds (their initial weights, batch orders and dropout masks).

An ensemble has ``fit``, ``evaluate``, ``predict`` (the averaged probabilities, also as
``predict_proba``) and ``predict_classes`` like a :class:`dlcore.Sequential`. It is not a model
file of its own: save the members one by one (``dlcore.save(member, f"member{m}.h5")``) and
rebuild it from the loaded members (``Ensemble([dlcore.load(path) for path in paths])``).
Distillation (:class:`dlcore.losses.Distillation`) trains a single network to mimic it.
"""

import time

import click
import numpy as np

from dlcore.backend import rng
from dlcore.callbacks import BackupAndRestore, format_logs
from dlcore.losses import output_channels
from dlcore.validation import check_int, check_verbose

__all__ = ["Ensemble", "bootstrap_rows"]


def bootstrap_rows(n, seed, member):
    """The (n,) int64 row indices of member ``member``'s bootstrap sample of n rows: r_i =
    floor(u_i n) with u_i from Philox(seed, ``STREAM_BOOTSTRAP``, step = member, row = i)."""
    n = check_int(n, "n", minimum=1)
    u = rng.uniform(n, 1, seed, rng.STREAM_BOOTSTRAP, check_int(member, "member", minimum=0))
    return np.minimum(np.floor(u[:, 0].astype(np.float64) * n), n - 1).astype(np.int64)


class Ensemble:
    """The average of several networks' class probabilities (see the module docstring).

    Parameters
    ----------
    models : list of :class:`dlcore.Sequential` or :class:`dlcore.Model` (one input, one
        output), each compiled before ``fit``, all with the same outputs, ending in
        probabilities (a softmax or sigmoid, not ``from_logits``: logits do not average into a
        probability)
    bagging : bool, ``fit`` trains each member on its own bootstrap sample
    seed : int or None, the Philox key of the bootstrap samples; None draws one from the
        operating system here, kept as the ensemble's ``seed``

    Attributes
    ----------
    models : the members
    history : list of the members' ``history`` dicts
    """

    def __init__(self, models, bagging=False, seed=0):
        models = list(models) if isinstance(models, (list, tuple)) else None
        if not models:
            raise ValueError("Ensemble takes a non-empty list of networks, e.g. "
                             "Ensemble([dlcore.models.mlp(seed=s) for s in range(5)])")
        for index, model in enumerate(models):
            if not callable(getattr(model, "predict", None)) or not hasattr(model, "fit"):
                raise TypeError(f"member {index} of the ensemble is a "
                                f"{type(model).__name__}; give dlcore networks (Sequential "
                                f"or Model)")
            if getattr(model.loss, "from_logits", False):
                raise ValueError(f"member {index} is compiled with from_logits=True: its "
                                 f"outputs are logits, which do not average into "
                                 f"probabilities; give it a final softmax (or sigmoid)")
        self.models = models
        self.bagging = bool(bagging)
        self.seed = rng.check_seed(seed)

    def __len__(self):
        return len(self.models)

    def __repr__(self):
        return (f"Ensemble({len(self.models)} members, bagging={self.bagging}, "
                f"seed={self.seed})")

    @property
    def history(self):
        return [model.history for model in self.models]

    # -- training -------------------------------------------------------------------------
    def fit(self, x, y, batch_size=None, epochs=1, verbose=0, **fit_options):
        """Train every member in turn with its own ``fit`` (on its bootstrap sample of (x, y)
        with ``bagging``).

        Parameters
        ----------
        x, y, batch_size, epochs, verbose : as for :meth:`dlcore.Sequential.fit` (Keras'
            order)
        fit_options : passed on to every member's ``fit`` (``validation_data``, ``callbacks``,
            ``adversarial``...; with bagging prefer ``validation_data`` to
            ``validation_split``, which would hold out rows that also sit in the sample); a
            :class:`dlcore.callbacks.BackupAndRestore` backs up each member in a folder of its
            own (``backup_dir/member-<m>``), all deleted when the last member is done
            (``backup_dir`` too where the run made it; another fit's backup in it, or a
            folder that was there before, is kept)

        Returns
        -------
        list of the members' :class:`dlcore.callbacks.History`.
        """
        x, y = np.asarray(x), np.asarray(y)
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} rows and y {len(y)}; give one target per sample")
        callbacks = fit_options.pop("callbacks", None)
        backups = [callback for callback in (callbacks if isinstance(callbacks, (list, tuple))
                                             else ()) if isinstance(callback, BackupAndRestore)]
        histories, members_backups = [], []
        for member, model in enumerate(self.models):
            rows = bootstrap_rows(len(x), self.seed, member) if self.bagging else slice(None)
            if backups:
                # a backup per member: one shared would be restored into the first member
                # by a run again after an interruption in a later one
                own = {id(backup): backup.for_member(member) for backup in backups}
                members_backups += own.values()
                fit_options["callbacks"] = [own.get(id(callback), callback)
                                            for callback in callbacks]
            elif callbacks is not None:
                fit_options["callbacks"] = callbacks
            histories.append(model.fit(x[rows], y[rows], epochs=epochs, batch_size=batch_size,
                                       verbose=verbose, **fit_options))
        if any(backup.delete_checkpoint for backup in backups):
            for backup in members_backups:
                backup.delete_backup()
            # backup_dir itself goes with the last member's backup where the run made it
            # (_leave_shared_folder); anything else there is not the ensemble's to delete: a
            # backup.h5 of another fit, kept for its run again, or a folder that was there
        return histories

    # -- predictions ----------------------------------------------------------------------
    def predict(self, x, batch_size=256, verbose=0):
        """(1/M) sum_m p_m(y | x): the members' ``predict`` averaged, (n, outputs) NumPy
        float32. ``verbose`` as a network's (Keras's): 1, 2 or "auto" print one line on
        stderr when done; 0 is silent."""
        from dlcore.training import one_output
        talk, started = check_verbose(verbose), time.perf_counter()
        total = None
        for index, model in enumerate(self.models):
            probabilities = np.asarray(one_output(model.predict(x, batch_size=batch_size)),
                                       np.float64)
            if total is not None and probabilities.shape != total.shape:
                raise ValueError(f"member {index} predicts shape {probabilities.shape}, member "
                                 f"0 {total.shape}: the members need the same outputs")
            total = probabilities if total is None else total + probabilities
        if talk:
            click.echo(f"predict: {len(total):,} samples by {len(self.models)} members in "
                       f"{time.perf_counter() - started:.2f} s", err=True)
        return (total / len(self.models)).astype(np.float32)

    predict_proba = predict

    def predict_classes(self, x, batch_size=256):
        """The most probable class of the averaged probabilities (for one output: > 0.5)."""
        probabilities = self.predict(x, batch_size).reshape(len(x), -1)
        if probabilities.shape[1] == 1:
            return (probabilities[:, 0] > 0.5).astype(np.int64)
        return probabilities.argmax(axis=1)

    def evaluate(self, x, y, batch_size=256, verbose=0, return_dict=False):
        """The loss of the averaged probabilities (the first member's loss, on probabilities)
        and their accuracy on (x, y), as the first member's metrics ask for it: named as it
        was compiled (``acc``, ``accuracy``...), each output against 0.5 for
        ``binary_accuracy`` (Keras's multi-label accuracy), the argmax of the row otherwise.

        Returns
        -------
        :class:`dlcore.training.Scores` ``(loss, <metric>)`` (the loss alone, as Keras's, for
        members compiled without metrics), or a dict of them with ``return_dict``.
        ``verbose`` as a network's ``evaluate`` (Keras's, in its place among the arguments):
        1, 2 or "auto" print one line with the numbers on stderr when done; 0 is silent.
        """
        from dlcore.losses import elementwise_correct
        from dlcore.training import LossRows, is_elementwise_accuracy, scores
        talk, started = check_verbose(verbose), time.perf_counter()
        first = self.models[0]
        first.check_compiled()
        probabilities = self.predict(x, batch_size)
        n = len(probabilities)
        channels = output_channels(probabilities.shape[1:])
        probabilities = probabilities.reshape(n, -1)
        targets = first._target_rows(y, n)
        backend = first.backend
        rows = LossRows.empty(backend, n, probabilities.shape[1], np.float32)
        outputs = backend.asarray(probabilities)
        targets = backend.asarray(targets, dtype=np.float32)
        first.loss.loss_and_gradient(backend, outputs, targets, rows.grad, rows.loss,
                                     rows.correct, False, channels)
        names = list(first.metrics)
        if is_elementwise_accuracy(names):
            elementwise_correct(backend, outputs, targets, rows.correct, channels=channels)
        losses, correct = backend.to_numpy(rows.loss), backend.to_numpy(rows.correct)
        accuracy = float(np.mean(correct, dtype=np.float64))
        logs = {"loss": float(np.mean(losses, dtype=np.float64)),
                **{name: accuracy for name in names}}
        if talk:
            click.echo(f"evaluate: {n:,} samples by {len(self.models)} members in "
                       f"{time.perf_counter() - started:.2f} s: {format_logs(logs)}", err=True)
        return scores(logs, return_dict)
