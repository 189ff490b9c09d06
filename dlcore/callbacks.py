"""Callbacks for ``fit`` (the training loop of :mod:`dlcore.training`, which
:class:`dlcore.Sequential` inherits): the History it returns, early stopping and the progress
bar.

A callback is told when training starts and ends, and when each epoch and each batch ends::

    class Callback:
        def on_train_begin(self, logs): ...
        def on_epoch_begin(self, epoch, logs): ...
        def on_batch_end(self, batch, logs): ...          # logs: {"loss": running mean}
        def on_epoch_end(self, epoch, logs): ...          # logs: loss, accuracy, val_loss, ...
        def on_train_end(self, logs): ...

``self.model`` is the model being trained; setting ``model.stop_training = True`` ends the
fit after the current epoch.

Early stopping is lecture "Convolutional neural networks" (2016)'s: "Monitor validation performance
during training; stop when it starts to deteriorate" (it "keeps the solution close to the
initialization").
"""
import math
import sys

import click
import numpy as np

from dlcore.validation import check_float, check_int


class Callback:
    """Base class: every hook does nothing."""

    model = None

    def set_model(self, model):
        self.model = model

    def on_train_begin(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_batch_end(self, batch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass


class History(Callback):
    """What ``fit`` returns: ``history`` maps each monitor (``loss``, ``accuracy``,
    ``val_loss``, ``val_accuracy``, ``learning_rate``, ``seconds``) to its per-epoch list for
    this call of ``fit``; ``epoch`` lists the epoch numbers (counted over the model's life)."""

    def __init__(self):
        self.history = {}
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for name, value in (logs or {}).items():
            self.history.setdefault(name, []).append(value)

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, keys={sorted(self.history)})"


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience``
    epochs, and put back the weights of the best epoch.

    Parameters
    ----------
    monitor : str, a key of the epoch logs (``"val_loss"`` by default; ``"val_accuracy"``...)
    min_delta : float >= 0, the smallest change that counts as an improvement
    patience : int >= 0, epochs without improvement before stopping
    mode : "min", "max" or "auto" (max for names containing "accuracy", else min)
    restore_best_weights : bool, restore the best epoch's weights at the end (default True)

    Attributes
    ----------
    best : the best value seen;  best_epoch : its epoch;  stopped_epoch : where training
    stopped (None if it ran to the end)
    """

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, mode="auto",
                 restore_best_weights=True):
        self.monitor = monitor
        self.min_delta = check_float(min_delta, "min_delta", low=0.0)
        self.patience = check_int(patience, "patience", minimum=0)
        if mode not in ("min", "max", "auto"):
            raise ValueError(f"mode must be 'min', 'max' or 'auto', got {mode!r}")
        self.mode = ("max" if "acc" in monitor else "min") if mode == "auto" else mode
        self.restore_best_weights = bool(restore_best_weights)
        self._resumed = False
        self._reset()

    def on_train_begin(self, logs=None):
        if self._resumed:
            self._resumed = False  # set_state's values hold for this fit only
            return
        self._reset()

    def _reset(self):
        self.best = -math.inf if self.mode == "max" else math.inf
        self.best_epoch = None
        self.best_weights = None
        self.stopped_epoch = None
        self.wait = 0

    def get_state(self):
        """What a resumed fit needs: the best value, its epoch, the epochs waited and the best
        weights (``{"0": array, "1": ...}``), as a dict of numbers and arrays. ``fit`` keeps it
        in ``model.callback_state["EarlyStopping"]``, which ``dlcore.save`` stores."""
        state = {"monitor": self.monitor, "best": float(self.best), "wait": int(self.wait)}
        if self.best_epoch is not None:
            state["best_epoch"] = int(self.best_epoch)
        if self.best_weights is not None:
            state["best_weights"] = {str(i): np.array(w) for i, w in enumerate(self.best_weights)}
        return state

    @staticmethod
    def check_state(state, weight_shapes=None):
        """Raise ValueError, naming the entry, unless ``state`` is one :meth:`get_state` could
        have written: ``monitor`` a name, ``best`` a finite number, ``wait`` and ``best_epoch``
        non-negative integers, ``best_weights`` arrays of ``weight_shapes`` (the network's
        ``[w.shape for w in get_weights()]``; not checked when None)."""
        def number(name, kind):
            value = state.get(name)
            if isinstance(value, np.ndarray) and value.ndim == 0:
                value = value.item()
            if isinstance(value, (bool, np.bool_)) \
                    or not isinstance(value, (int, float, np.number)):
                raise ValueError(f"the early-stopping state has no {kind} {name!r} "
                                 f"(got {value!r})")
            return value

        if not isinstance(state, dict):
            raise ValueError("the early-stopping state is not a group of values")
        if not isinstance(state.get("monitor"), str) or not state["monitor"]:
            raise ValueError(f"the early-stopping state has no monitored quantity 'monitor' "
                             f"(got {state.get('monitor')!r})")
        if not math.isfinite(number("best", "finite number")):
            raise ValueError(f"the early-stopping state has no finite number 'best' "
                             f"(got {state['best']!r})")
        for name in ("wait", "best_epoch"):
            if name == "best_epoch" and name not in state:
                continue
            value = number(name, "non-negative integer")
            if value < 0 or value != int(value):
                raise ValueError(f"the early-stopping state has no non-negative integer "
                                 f"{name!r} (got {value!r})")
        weights = state.get("best_weights")
        if weights is None or weight_shapes is None:
            return
        shapes = [tuple(shape) for shape in weight_shapes]
        if not isinstance(weights, dict) or sorted(weights) != sorted(map(str, range(len(
                shapes)))):
            raise ValueError(f"the early-stopping state's best_weights are not the network's "
                             f"{len(shapes)} weight arrays")
        for index, shape in enumerate(shapes):
            found = tuple(np.shape(weights[str(index)]))
            if found != shape:
                raise ValueError(f"the early-stopping state's best_weights {index} has shape "
                                 f"{found}, the network's weight {index} {shape}")

    def set_state(self, state):
        """Continue from :meth:`get_state`'s ``state`` (of the same monitor) in the next fit,
        as if the interrupted fit had gone on. ValueError when ``state`` is malformed
        (:meth:`check_state`)."""
        self.check_state(state)
        if state.get("monitor") != self.monitor:
            raise ValueError(f"the saved early-stopping state monitors {state.get('monitor')!r}, "
                             f"not {self.monitor!r}")
        weights = state.get("best_weights") or {}
        self.best = float(state["best"])
        self.wait = int(state.get("wait", 0))
        self.best_epoch = int(state["best_epoch"]) if "best_epoch" in state else None
        self.best_weights = ([np.asarray(weights[str(i)]) for i in range(len(weights))]
                             if weights else None)
        self.stopped_epoch = None
        self._resumed = True

    def _improved(self, value):
        if self.mode == "max":
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.monitor not in logs:
            raise ValueError(f"EarlyStopping monitors {self.monitor!r}, which this fit does not "
                             f"report (it reports {', '.join(sorted(logs))}); give "
                             "validation_split or validation_data for val_ monitors")
        value = float(logs[self.monitor])
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            self.model.set_weights(self.best_weights)


class ProgressBar(Callback):
    """A click progress bar per epoch on stderr with the running loss and metrics, then one
    line with the epoch's numbers. ``fit(verbose=1)`` adds it; ``verbose=0`` is silent.

    Off a terminal (a log file, a notebook's captured stderr, CI) only the epoch's line is
    written: click prints a bar's label once there and never moves it, which would show every
    epoch twice."""

    def __init__(self, n_batches, epochs, file=None):
        self.n_batches = n_batches
        self.epochs = epochs
        self.file = sys.stderr if file is None else file
        self._bar = None
        self._text = ""

    def on_epoch_begin(self, epoch, logs=None):
        if not _is_terminal(self.file):
            return
        self._bar = click.progressbar(length=self.n_batches, label=f"epoch {epoch}/{self.epochs}",
                                      file=self.file, show_eta=True, show_percent=False,
                                      item_show_func=lambda _: self._text)
        self._bar.__enter__()

    def on_batch_end(self, batch, logs=None):
        if self._bar is None:
            return
        if logs:
            self._text = format_logs(logs)
        self._bar.update(1)

    def on_epoch_end(self, epoch, logs=None):
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None
        click.echo(f"epoch {epoch}/{self.epochs}: {format_logs(logs or {})}", file=self.file)


def _is_terminal(stream):
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def format_logs(logs):
    """``"loss 0.3412 - accuracy 0.9012 - ..."`` (seconds as "12.3 s")."""
    parts = []
    for name, value in logs.items():
        if name == "seconds":
            parts.append(f"{value:.1f} s")
        elif name == "learning_rate":
            parts.append(f"lr {value:.3g}")
        elif isinstance(value, (float, np.floating)):
            parts.append(f"{name} {value:.4f}")
    return " - ".join(parts)
