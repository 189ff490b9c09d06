"""Callbacks for ``fit`` (the training loop of :mod:`dlcore.training`, which
:class:`dlcore.Sequential` inherits): the History it returns, early stopping, the progress
bar, and Keras's others: checkpoints (:class:`ModelCheckpoint`), the learning rate lowered on
a plateau (:class:`ReduceLROnPlateau`) or set per epoch (:class:`LearningRateScheduler`), the
epochs' numbers in a CSV file (:class:`CSVLogger`), the training state backed up each epoch and
restored when the script runs again (:class:`BackupAndRestore`) and functions as callbacks
(:class:`LambdaCallback`).

A callback is told when training starts and ends, when each epoch and each batch starts and
ends, and when the validation of an epoch starts and ends (Keras's hooks, each given its logs
by position, as Keras gives them)::

    class Callback:
        def on_train_begin(self, logs): ...               # logs: {}
        def on_epoch_begin(self, epoch, logs): ...        # {}
        def on_train_batch_begin(self, batch, logs): ... # {}; calls on_batch_begin (Keras 2's)
        def on_train_batch_end(self, batch, logs): ...   # calls on_batch_end; logs: the running
                                                          # means of the epoch so far
        def on_test_begin(self, logs): ...                # the epoch's validation: {}
        def on_test_batch_begin(self, batch, logs): ...  # {}
        def on_test_batch_end(self, batch, logs): ...    # the running means, without val_
        def on_test_end(self, logs): ...                  # loss, accuracy, ... (without val_)
        def on_epoch_end(self, epoch, logs): ...          # logs: loss, accuracy, val_loss, ...
        def on_train_end(self, logs): ...                 # the last epoch's logs

``evaluate`` and ``predict`` take no callbacks (they are refused in one line), so the test hooks
run in ``fit``'s validation only, and there are no predict hooks.

A callback that overrides a batch hook gets the logs of every batch, as in Keras; computing them
reads the running sums back from the backend, so the fit does so only for such a callback (the
progress bar takes the logs of the batches that report, about 50 a pass, and others None).

``epoch`` is Keras's index: counted from 0, over the model's life (a model loaded after 2
epochs starts its next fit at epoch 2), or from fit's ``initial_epoch`` when it is given, as
Keras counts; messages for people say "epoch 3/10" (epoch + 1), and
ModelCheckpoint's ``{epoch}`` is epoch + 1, as in Keras. ``self.model`` is the model being
trained; setting ``model.stop_training = True`` ends the fit after the current epoch.

Early stopping is lecture "Convolutional neural networks" (2016)'s: "Monitor validation performance
during training; stop when it starts to deteriorate" (it "keeps the solution close to the
initialization").
"""
import contextlib
import csv
import io
import math
import numbers
import os
import shutil
import sys
import threading
import time
from copy import deepcopy

import click
import numpy as np

from dlcore.validation import check_bool, check_float, check_int
from dlcore.wording import count, duration

#: The hooks called for every batch of ``fit``
BATCH_HOOKS = ("on_train_batch_begin", "on_train_batch_end", "on_batch_begin", "on_batch_end")
#: The hooks called for every batch of ``fit``'s validation
TEST_BATCH_HOOKS = ("on_test_batch_begin", "on_test_batch_end")


class Callback:
    """Base class: every hook does nothing. ``model`` is the model being trained and
    ``params`` Keras's dict of the fit's settings (``epochs``, ``steps`` per epoch,
    ``verbose``), both set when ``fit`` starts.

    One callback given to fits that run at once in threads (a grid search under joblib's
    threading backend, given it as a fit parameter; the user's own threads) is called by
    each: its hooks see as ``self.model`` and ``self.params`` those of the fit that calls them
    (kept per running fit of each thread; outside a fit, the last ones set; one its own
    hook sets, ``self.model = Wrapped(self.model)``, that fit's from then on). Before, every
    fit's hooks saw the network and steps of the fit that started last, so a progress
    callback reported, stopped or saved the other fit's network. What the callback keeps in
    attributes of its own, the fits share, as Keras's fits in threads do (a recorder records
    every fit): a callback that counts per fit keys its counts by ``self.model``, or each fit
    gets its own (in a wrapper's ``fit_kwargs``, which scikit-learn's ``clone`` copies for
    every fit of a search)."""

    @property
    def model(self):
        return _fit_setting(self, "model", None)

    @model.setter
    def model(self, model):
        _set_fit_setting(self, "model", model)

    @property
    def params(self):
        return _fit_setting(self, "params", {})

    @params.setter
    def params(self, params):
        _set_fit_setting(self, "params", params)

    #: whether the batch hooks get the logs of every batch (True) or of the batches that
    #: report (False); None: True when the class overrides a batch hook (see
    #: :meth:`wants_every_batch_logs`)
    every_batch_logs = None

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = dict(params)

    def wants_every_batch_logs(self):
        """Whether ``fit`` gives the batch hooks the logs of every batch: ``every_batch_logs``
        when set, else whether the class overrides a batch hook (a Keras callback recording
        per-batch losses expects them)."""
        if self.every_batch_logs is not None:
            return bool(self.every_batch_logs)
        return self.overrides(*BATCH_HOOKS)

    def overrides(self, *hooks):
        """Whether this callback's class overrides any of ``hooks`` (names of Callback's)."""
        return any(getattr(type(self), hook) is not getattr(Callback, hook) for hook in hooks)

    def wants_test_batch_hooks(self):
        """Whether ``fit``'s validation calls this callback's test batch hooks, with the
        running logs each reads off the device: when its class overrides one."""
        return self.overrides(*TEST_BATCH_HOOKS)

    def on_train_begin(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_train_batch_begin(self, batch, logs=None):
        """Before the update of batch ``batch`` (counted from 0 in the epoch): Keras's hook,
        which calls :meth:`on_batch_begin` (Keras 2's name), as Keras's does."""
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        """After the update of batch ``batch``; ``logs`` the running loss and metrics of the
        epoch so far. Calls :meth:`on_batch_end` (Keras 2's name), as Keras's does."""
        self.on_batch_end(batch, logs=logs)

    def on_batch_begin(self, batch, logs=None):
        pass

    def on_batch_end(self, batch, logs=None):
        pass

    def on_test_begin(self, logs=None):
        pass

    def on_test_batch_begin(self, batch, logs=None):
        pass

    def on_test_batch_end(self, batch, logs=None):
        pass

    def on_test_end(self, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass


#: The model and params that the running fits gave their callbacks, by (the callback's id, the
#: fit's thread): a list per thread, the innermost fit last (a fit started inside a callback
#: of another, in its thread), each entry ``{"fit": token, "model": ..., "params": ...}``.
#: Only a thread's own fits change its lists; additions and removals hold the lock
_FIT_SETTINGS = {}
_FIT_SETTINGS_CHANGING = threading.Lock()
#: The fit of this thread that gives its callbacks their model and params now
#: (:func:`giving_fit_settings`)
_GIVING = threading.local()


def _fit_setting(callback, name, default):
    """``callback``'s ``name`` ("model", "params") as the calling thread's running fit gave it,
    else the last one set (another thread's fit's, or the user's own)."""
    fits = _FIT_SETTINGS.get((id(callback), threading.get_ident()))
    if fits and name in fits[-1]:
        return fits[-1][name]
    return callback.__dict__.get(name, default)


def _set_fit_setting(callback, name, value):
    """Set ``callback``'s ``name`` (the last one set, kept after the fits as Keras keeps it),
    and, while a fit of this thread gives its callbacks their settings, that fit's own; set
    in the hooks of a running fit of this thread, the rest of that fit's."""
    callback.__dict__[name] = value
    fit = getattr(_GIVING, "fit", None)
    if fit is None:
        fits = _FIT_SETTINGS.get((id(callback), threading.get_ident()))
        if fits:
            # a hook's own `self.model = ...` (a callback that wraps the network it is
            # given): the fit's setting would hide it until the fit ends
            fits[-1][name] = value
        return
    with _FIT_SETTINGS_CHANGING:
        fits = _FIT_SETTINGS.setdefault((id(callback), threading.get_ident()), [])
        if not fits or fits[-1]["fit"] is not fit:
            fits.append({"fit": fit})
        fits[-1][name] = value


@contextlib.contextmanager
def giving_fit_settings(fit):
    """While ``fit`` (a token of one call of ``fit``) calls its callbacks' ``set_model`` and
    ``set_params`` in this thread: what they set is that fit's own (:class:`Callback`)."""
    outer = getattr(_GIVING, "fit", None)
    _GIVING.fit = fit
    try:
        yield
    finally:
        _GIVING.fit = outer


def forget_fit_settings(fit):
    """At the end of ``fit`` (however it ends): the model and params it gave its callbacks in
    this thread are no longer theirs."""
    thread = threading.get_ident()
    with _FIT_SETTINGS_CHANGING:
        for key, fits in list(_FIT_SETTINGS.items()):
            if key[1] == thread:
                fits[:] = [entry for entry in fits if entry["fit"] is not fit]
                if not fits:
                    del _FIT_SETTINGS[key]


class History(Callback):
    """What ``fit`` returns, as Keras's: ``history`` maps the loss, the metrics and their
    ``val_`` twins (``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``) to their per-epoch
    lists for this call of ``fit``, and ``learning_rate`` too when a callback sets the rate
    (:class:`LearningRateScheduler`, :class:`ReduceLROnPlateau` write it into the epoch's logs,
    as Keras 3's do; ``fit`` runs History after the caller's callbacks, as Keras), so that
    ``pd.DataFrame(history.history).plot()`` draws the curves alone. ``epoch`` lists the epochs'
    indices, from ``initial_epoch`` when fit was given one (Keras's ``[2, 3]`` after
    ``fit(epochs=4, initial_epoch=2)``), else counted from 0 over the model's life; ``seconds``
    each epoch's duration (dlcore's, not in the logs).

    The model's own record, ``model.history``, keeps every number of every fit, the learning
    rate and the seconds of each epoch included: what the files store and the commands plot.
    :meth:`epochs_of` says which epochs each list belongs to (the validated ones for the
    ``val_`` lists of a fit with ``validation_freq``), and :func:`dlcore.viz.save_curves` given
    the History draws every curve at its epochs."""

    def __init__(self):
        self.history = {}
        self.epoch = []
        self.seconds = []
        self._logged_epochs = {}

    def __setstate__(self, state):
        # a History pickled by a dlcore before `seconds` and `_logged_epochs` (a notebook's
        # joblib file) failed at its first epoch end when given to a new fit
        self.__dict__.update({"seconds": [], "_logged_epochs": {}, **state})

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        record = getattr(self.model, "history", None)
        if isinstance(record, dict) and record.get("seconds"):
            self.seconds.append(record["seconds"][-1])   # fit records it before the callbacks
        for name, value in (logs or {}).items():
            self.history.setdefault(name, []).append(value)
            self._logged_epochs.setdefault(name, []).append(epoch)

    def epochs_of(self, name):
        """The epoch indices (counted as :attr:`epoch`) of the numbers in ``history[name]``:
        every epoch for the loss and the metrics, only the validated ones for the ``val_``
        numbers under ``validation_freq`` (whose lists are shorter, as Keras's).

        Parameters
        ----------
        name : str, a key of :attr:`history` (``"val_loss"``)

        Returns
        -------
        list of int, as long as ``history[name]``

        Raises
        ------
        KeyError when ``history`` has no ``name``; ValueError when ``history[name]`` was made
        longer or shorter after the fit (two fits' lists joined), which leaves its epochs
        unknown.
        """
        if name not in self.history:
            raise KeyError(f"this History has no {name!r}: it has "
                           f"{', '.join(sorted(self.history)) or 'nothing yet'}")
        values = self.history[name]
        logged = self._logged_epochs.get(name)
        if logged is not None and len(logged) == len(values):
            return list(logged)
        if len(values) == len(self.epoch):   # a history set by hand, one number an epoch
            return list(self.epoch)
        raise ValueError(f"history[{name!r}] holds {len(values)} numbers where this History "
                         f"logged {len(logged or [])}: it was changed after the fit, so their "
                         f"epochs are unknown")

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, keys={sorted(self.history)})"


class _Monitored(Callback):
    """What the callbacks that watch one number of the epoch logs share: its name, which way
    is better (``mode``: "min", "max", or "auto": max for names containing "acc", else min),
    the smallest change that counts, and the one-line error when the fit does not report it."""

    def _watch(self, monitor, mode, min_delta):
        if not isinstance(monitor, str) or not monitor:
            raise ValueError(f"monitor must name a number of the epoch logs ('val_loss', "
                             f"'accuracy', ...), got {monitor!r}")
        if mode not in ("min", "max", "auto"):
            raise ValueError(f"mode must be 'min', 'max' or 'auto', got {mode!r}")
        self.monitor = monitor
        self.mode = ("max" if "acc" in monitor else "min") if mode == "auto" else mode
        self.min_delta = check_float(min_delta, "min_delta", low=0.0)

    def _worst(self):
        return -math.inf if self.mode == "max" else math.inf

    def _better(self, value, than):
        if self.mode == "max":
            return value > than + self.min_delta
        return value < than - self.min_delta

    def _unvalidated(self, logs):
        """Whether the monitored val_ number is missing from ``logs`` because the epoch skipped
        its fit's validation (``validation_freq``): Keras's callbacks then pass over the
        epoch. A model that does not validate by epochs (an RBM's fit) never skips."""
        return (self.monitor not in (logs or {}) and self.monitor.startswith("val_")
                and getattr(self.model, "epoch_without_validation", False))

    def _value(self, logs):
        logs = logs or {}
        if self.monitor not in logs:
            validated = any(name.startswith("val_") for name in logs)
            fix = ("give validation_split or validation_data for val_ monitors"
                   if self.monitor.startswith("val_") and not validated
                   else "monitor one of those")
            raise ValueError(f"{type(self).__name__} monitors {self.monitor!r}, which this fit "
                             f"does not report (it reports {', '.join(sorted(logs))}); {fix}")
        return float(logs[self.monitor])


class _Resumable(_Monitored):
    """A watching callback whose counts a network's file keeps (``get_state``, ``check_state``)
    and the first fit after loading continues (:meth:`set_state`)."""

    #: it stops, restores or slows the one network its fit set on it (``set_model``): a
    #: scikit-learn wrapper's fit running beside another that uses it trains with a copy
    #: (:func:`dlcore.wrappers._own_callbacks`)
    _steers_its_network = True

    #: how the saved state's errors name the callback
    STATE_NAME = ""

    def set_state(self, state):
        """Continue from :meth:`get_state`'s ``state`` (of the same monitor) in the next fit,
        as if the interrupted fit had gone on. ValueError when ``state`` is malformed
        (:meth:`check_state`) or watched another number, whose best and counts would mean
        nothing here."""
        self.check_state(state)
        if state.get("monitor") != self.monitor:
            raise ValueError(f"the saved {self.STATE_NAME} state monitors "
                             f"{state.get('monitor')!r}, not {self.monitor!r}")
        self._continue(state)

    def _continue(self, state):
        raise NotImplementedError


class EarlyStopping(_Resumable):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience``
    epochs, and with ``restore_best_weights=True`` put back the weights of the best epoch:
    Keras 3's ``EarlyStopping``, its arguments in its order and its defaults, its rule line
    for line. The lectures' early stopping ("Monitor validation performance during training",
    "Stop when it starts to deteriorate": "Convolutional neural networks" (2016), "Early
    stopping") leaves open which epoch's weights to keep; ``restore_best_weights=True`` keeps
    the best epoch's, as dlcore's own commands do (Keras's default, False, keeps the last's).

    Each monitored epoch adds one to ``wait``; an improvement on the best value so far makes it
    the best and, when it also improves on ``baseline`` (or there is none), sets ``wait`` back
    to 0; an epoch that does not improve stops the fit once ``wait`` reaches ``patience`` (not
    at the first epoch). So with ``patience=3`` the third epoch in a row without improvement
    is the last one trained (``patience`` 0 and 1 both stop at the first such epoch), and with
    a ``baseline`` the fit stops ``patience`` epochs in unless the monitor has beaten it by
    then. The first monitored value is the first best (a NaN or infinite one is not).

    Parameters
    ----------
    monitor : str, a key of the epoch logs (``"val_loss"`` by default; ``"val_accuracy"``...)
    min_delta : float >= 0, the smallest change that counts as an improvement
    patience : int >= 0, epochs without improvement after which training stops
    verbose : 0 silent, 1 a line on stderr when it stops the fit and when it restores weights
    mode : "min", "max" or "auto" (max for names containing "acc", as Keras: ``val_acc``,
        ``val_accuracy``; else min)
    baseline : float or None, a value the monitor must improve on within ``patience`` epochs
    restore_best_weights : bool, restore the best epoch's weights at the end (default False,
        as Keras: the weights of the last epoch trained stay)
    start_from_epoch : int >= 0, the epochs (Keras's index, from 0) before monitoring starts:
        a warm-up in which no improvement is expected

    Attributes
    ----------
    best : the best value seen (None before one);  best_epoch : its epoch;  stopped_epoch : the
    epoch training stopped after (None if it ran to the end); epochs as Keras's, counted from 0
    over the model's life
    """

    STATE_NAME = "early-stopping"

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0):
        if isinstance(verbose, str):
            raise ValueError(f"EarlyStopping's verbose must be 0 or 1, got {verbose!r}: its "
                             f"fourth argument is verbose (Keras's order); give mode= by name")
        self._watch(monitor, mode, min_delta)
        self.patience = check_int(patience, "patience", minimum=0)
        self.verbose = check_int(verbose, "verbose", minimum=0)
        self.baseline = None if baseline is None else check_float(baseline, "baseline")
        self.restore_best_weights = bool(restore_best_weights)
        self.start_from_epoch = check_int(start_from_epoch, "start_from_epoch", minimum=0)
        self._resumed = False
        self._reset()

    def on_train_begin(self, logs=None):
        if self._resumed:
            self._resumed = False  # set_state's values hold for this fit only
            return
        self._reset()

    def _reset(self):
        self.best = None
        self.best_epoch = None
        self.best_weights = None
        self.stopped_epoch = None
        self.wait = 0

    def get_state(self):
        """What a resumed fit needs: the best value (none before one), its epoch
        (``best_epoch_index``, counted from 0), the epochs waited and the best weights
        (``{"0": array, "1": ...}``), as a dict of numbers and arrays. ``fit`` keeps it in
        ``model.callback_state["EarlyStopping"]``, which ``dlcore.save`` stores."""
        state = {"monitor": self.monitor, "wait": int(self.wait)}
        if self.best is not None:
            state["best"] = float(self.best)
        if self.best_epoch is not None:
            # not "best_epoch": files written before December 2026 count that one from 1
            state["best_epoch_index"] = int(self.best_epoch)
        if self.best_weights is not None:
            state["best_weights"] = {str(i): np.array(w) for i, w in enumerate(self.best_weights)}
        return state

    @staticmethod
    def check_state(state, weight_shapes=None):
        """Raise ValueError, naming the entry, unless ``state`` is one :meth:`get_state` could
        have written: ``monitor`` a name, ``best`` a finite number (absent before the first
        monitored value), ``wait`` and
        ``best_epoch_index`` non-negative integers (or, in older files, ``best_epoch`` counted
        from 1: a positive integer), ``best_weights`` arrays of ``weight_shapes`` (the network's
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
        if "best" in state and not math.isfinite(number("best", "finite number")):
            raise ValueError(f"the early-stopping state has no finite number 'best' "
                             f"(got {state['best']!r})")
        for name, least, kind in (("wait", 0, "non-negative"),
                                  ("best_epoch_index", 0, "non-negative"),
                                  ("best_epoch", 1, "positive")):
            if name != "wait" and name not in state:
                continue
            value = number(name, f"{kind} integer")
            if value < least or value != int(value):
                raise ValueError(f"the early-stopping state has no {kind} integer {name!r} "
                                 f"(got {value!r})")
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

    def _continue(self, state):
        weights = state.get("best_weights") or {}
        self.best = float(state["best"]) if "best" in state else None
        self.wait = int(state.get("wait", 0))
        self.best_epoch = _best_epoch_index(state)
        self.best_weights = ([np.asarray(weights[str(i)]) for i in range(len(weights))]
                             if weights else None)
        self.stopped_epoch = None
        self._resumed = True

    def _improves(self, value, reference):
        """Keras's test: any finite value improves on none."""
        return math.isfinite(value) if reference is None else self._better(value, reference)

    def on_epoch_end(self, epoch, logs=None):
        if self._unvalidated(logs):   # Keras's: an epoch without the number does not count
            return
        value = self._value(logs)
        if epoch < self.start_from_epoch:      # the warm-up: not monitored yet
            return
        if self.restore_best_weights and self.best_weights is None:
            # until one improves, the weights of the first monitored epoch are the best
            self.best_weights, self.best_epoch = self.model.get_weights(), epoch
        self.wait += 1
        if self._improves(value, self.best):
            self.best, self.best_epoch = value, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            # the count starts again only when the baseline is beaten too
            if self.baseline is None or self._improves(value, self.baseline):
                self.wait = 0
            return
        # Keras's count: stop once `wait` reaches `patience` (not when it passes it)
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch is not None and self.verbose:
            click.echo(f"epoch {self.stopped_epoch + 1}: early stopping", err=True)
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose:
                click.echo(f"restoring the weights of the best epoch, {self.best_epoch + 1}",
                           err=True)
            self.model.set_weights(self.best_weights)


def _best_epoch_index(state):
    """The best epoch of a checked early-stopping state, counted from 0 (None for none): its
    ``best_epoch_index``, or the ``best_epoch`` counted from 1 of files written before."""
    if "best_epoch_index" in state:
        return int(state["best_epoch_index"])
    return int(state["best_epoch"]) - 1 if "best_epoch" in state else None


class _WrittenByWrapperFits:
    """What a callback whose file a scikit-learn wrapper's fit holds (:class:`ModelCheckpoint`,
    :class:`CSVLogger`; :func:`dlcore.wrappers._hold_written_files`) carries about it: the
    ids of the fits that hold its file now (``_held_by_fits``), which a copy of it (a
    ``clone``, a ``deepcopy``, the pickle a worker process gets) keeps as the fits it was
    copied inside (``_copied_inside_fits``), as a new one made on that file inside such a fit
    (its callback's code) is marked. A fit given such a callback while that fit still
    holds the file was started inside it (its callback's ``cross_val_score(n_jobs=2)``,
    whose workers are other threads or processes) and would wait for it for ever."""

    def _note_made_inside_fits(self, path):
        """Mark this callback, made on ``path`` while a wrapper fit of this thread holds it
        (inside that fit's callback), as made inside that fit: a fit it is given waits for
        that fit for ever, and is refused in one line instead."""
        inside = _fits_holding_in_this_thread(path)
        if inside:
            self._copied_inside_fits = set(inside)

    def __getstate__(self):
        state = dict(vars(self))
        holding = frozenset(state.pop("_held_by_fits", ()))
        if holding:
            state["_copied_inside_fits"] = holding | state.get("_copied_inside_fits", set())
        return state


class ModelCheckpoint(_WrittenByWrapperFits, _Monitored):
    """Save the model at the end of every epoch, or only when ``monitor`` improved (Keras's
    ``ModelCheckpoint``), so that a long training interrupted by anything (a crash, a closed
    laptop, a cluster's time limit) resumes from the last file.

    Parameters
    ----------
    filepath : str or os.PathLike; may name the epoch (counted from 1 over the model's life:
        Keras's epoch + 1) and any number of the epoch logs, as Keras's does:
        ``"ckpt/epoch{epoch:03d}-{val_loss:.3f}.h5"``.
        Its folder is created. A name ending in ``.keras`` gets Keras's archive
        (``model.save``: architecture, weights, compile settings, the optimiser's state);
        any other dlcore's model file (:func:`dlcore.save`): the whole training state, so that
        ``model = dlcore.load(path)`` then ``model.fit(x, y, epochs=total -
        model.epochs_done, callbacks=...)`` goes on as the uninterrupted fit would (with the
        early-stopping state of that epoch). Each file is written whole or not at all.
    monitor, mode, min_delta : the number that decides what is best, as for
        :class:`EarlyStopping` (with ``save_best_only``)
    save_best_only : bool, save only the epochs that improve ``monitor``
    save_weights_only : bool, only the weights (``model.save_weights``: Keras's weights file)
    save_freq : "epoch" only (Keras also takes a number of batches; dlcore checkpoints at the
        ends of epochs, where the training state is whole)
    initial_value_threshold : float or None, the value to improve on at first
    verbose : 0 silent, 1 a line on stderr for each file saved (and each epoch not saved)

    Attributes
    ----------
    best : the best value seen;  last_path : the file saved last (None before one)

    With ``save_best_only`` (and no ``initial_value_threshold``), the first fit of a network
    loaded from a file (a resumed run) starts from the best value of ``monitor`` in the
    network's history, as the interrupted run's callback had it: its best file is then
    replaced only by a better epoch, not by the first epoch after the resume (Keras's starts
    from nothing).
    """

    #: run after the other callbacks of an epoch: the file then holds their state of it
    saves_model = True

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto", save_freq="epoch",
                 initial_value_threshold=None, min_delta=0.0):
        try:
            self.filepath = os.fspath(filepath)
        except TypeError:
            raise ValueError(f"filepath must be a file name, got {filepath!r}") from None
        if not isinstance(self.filepath, str) or not self.filepath:
            raise ValueError(f"filepath must be a file name, got {filepath!r}")
        self._watch(monitor, mode, min_delta)
        self.verbose = check_int(verbose, "verbose", minimum=0)
        self.save_best_only = check_bool(save_best_only, "save_best_only")
        self.save_weights_only = check_bool(save_weights_only, "save_weights_only")
        if save_freq != "epoch":
            raise ValueError(f"save_freq must be 'epoch', got {save_freq!r}: dlcore saves at "
                             f"the end of epochs, where the training state is whole")
        if self.save_weights_only and self.filepath.endswith(".keras"):
            raise ValueError("save_weights_only writes a weights file: name it .weights.h5, "
                             "not .keras (Keras's whole-model archive)")
        self._note_made_inside_fits(self.filepath)
        self.initial_value_threshold = None if initial_value_threshold is None else \
            check_float(initial_value_threshold, "initial_value_threshold")
        # kept over several fits, as Keras's: a later fit saves only what beats the best
        self.best = self._worst() if self.initial_value_threshold is None \
            else self.initial_value_threshold
        self.last_path = None

    def continue_from_history(self, history):
        """Take the best value of ``monitor`` in ``history`` (a loaded network's, per epoch;
        gaps and non-finite values left out) as :attr:`best`, unless this callback saves
        every epoch, was given ``initial_value_threshold`` or has seen a value already."""
        if not self.save_best_only or self.initial_value_threshold is not None \
                or self.best != self._worst():
            return
        values = [float(value) for value in history.get(self.monitor, ())
                  if value is not None and math.isfinite(float(value))]
        if values:
            self.best = max(values) if self.mode == "max" else min(values)

    def _path(self, epoch, logs):
        try:
            return self.filepath.format(epoch=epoch + 1, **(logs or {}))  # Keras's
        except KeyError as missing:
            raise ValueError(f"ModelCheckpoint's filepath {self.filepath!r} names "
                             f"{{{missing.args[0]}}}, which this fit does not report (it "
                             f"reports epoch, {', '.join(sorted(logs or {}))})") from None
        except (ValueError, IndexError, AttributeError) as error:
            raise ValueError(f"ModelCheckpoint's filepath {self.filepath!r} is not a format "
                             f"Python can fill: {error}") from None

    def on_epoch_end(self, epoch, logs=None):
        from dlcore.io import save
        if self.save_best_only and self._unvalidated(logs):
            # not as Keras 3, which saves: the file of the best epoch would be replaced by one
            # never validated
            return
        path = self._path(epoch, logs)
        if self.save_best_only:
            value = self._value(logs)
            if not self._better(value, self.best):
                if self.verbose:
                    click.echo(f"epoch {epoch + 1}: {self.monitor} {value:.4g} did not "
                               f"improve on {self.best:.4g}; not saved", err=True)
                return
        folder = os.path.dirname(os.path.abspath(path))
        _make_folder(folder)
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            save(self.model, path, format="keras" if path.endswith(".keras") else "dlcore")
        # only once the file is written: a failed save leaves the best to beat unchanged, so
        # that an equal epoch of a later fit (after freeing the disk) is still saved
        if self.save_best_only:
            self.best = value
        self.last_path = path
        if self.verbose:
            click.echo(f"epoch {epoch + 1}: saved {path}", err=True)


class ReduceLROnPlateau(_Resumable):
    """Multiply the learning rate by ``factor`` when ``monitor`` has not improved for
    ``patience`` epochs (Keras's ``ReduceLROnPlateau``): the step of lecture "Supervised
    learning"'s SGD, made smaller once the validation loss stalls.

    Parameters
    ----------
    monitor, mode, min_delta : as :class:`EarlyStopping`'s (min_delta 1e-4 by default, as
        Keras)
    factor : float in (0, 1), eta <- max(factor * eta, min_lr)
    patience : int >= 0, epochs without improvement before a reduction
    cooldown : int >= 0, epochs after a reduction before counting again
    min_lr : float >= 0, the lowest rate
    verbose : 0 silent, 1 a line on stderr at each reduction

    The optimiser's learning rate must be a number (not a schedule). The reduced rate is the
    optimiser's, so a saved model keeps it; the waiting counts (the best value, the epochs
    waited, the cooldown left) start again in each fit, except in the first fit of a network
    loaded from a file (a :class:`ModelCheckpoint`'s): ``fit`` keeps them in
    ``model.callback_state["ReduceLROnPlateau"]``, which ``dlcore.save`` stores, and hands them
    to a ``ReduceLROnPlateau`` of the same monitor, so that the resumed fit reduces the rate
    at the epochs the uninterrupted one would (Keras's starts its counts again). As Keras's,
    it writes the epoch's rate (before a reduction) into the epoch's logs as
    ``learning_rate``, which the fit's History, and the callbacks listed after it, see.
    """

    STATE_NAME = "ReduceLROnPlateau"

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0):
        self._watch(monitor, mode, min_delta)
        self.factor = check_float(factor, "factor", low=0.0, high=1.0, low_open=True,
                                  high_open=True)
        self.patience = check_int(patience, "patience", minimum=0)
        self.cooldown = check_int(cooldown, "cooldown", minimum=0)
        self.min_lr = check_float(min_lr, "min_lr", low=0.0)
        self.verbose = check_int(verbose, "verbose", minimum=0)
        self._resumed = False
        self._reset()

    def _reset(self):
        self.best, self.wait, self.cooldown_counter = self._worst(), 0, 0

    def on_train_begin(self, logs=None):
        _constant_learning_rate(self.model, "ReduceLROnPlateau")
        if self._resumed:
            self._resumed = False  # set_state's values hold for this fit only
            return
        self._reset()

    def get_state(self):
        """What a resumed fit needs: the monitor, the best value (absent before a finite
        one), the epochs waited and the cooldown epochs left, as a dict of numbers. ``fit``
        keeps it in ``model.callback_state["ReduceLROnPlateau"]``, which ``dlcore.save``
        stores."""
        state = {"monitor": self.monitor, "wait": int(self.wait),
                 "cooldown_counter": int(self.cooldown_counter)}
        if math.isfinite(self.best):
            state["best"] = float(self.best)
        return state

    @staticmethod
    def check_state(state):
        """Raise ValueError, naming the entry, unless ``state`` is one :meth:`get_state` could
        have written: ``monitor`` a name, ``best`` a finite number (when present), ``wait``
        and ``cooldown_counter`` non-negative integers."""
        if not isinstance(state, dict):
            raise ValueError("the ReduceLROnPlateau state is not a group of values")
        if not isinstance(state.get("monitor"), str) or not state["monitor"]:
            raise ValueError(f"the ReduceLROnPlateau state has no monitored quantity 'monitor' "
                             f"(got {state.get('monitor')!r})")
        for name, kind in (("best", "finite number"), ("wait", "non-negative integer"),
                           ("cooldown_counter", "non-negative integer")):
            if name == "best" and name not in state:
                continue
            value = state.get(name)
            if isinstance(value, np.ndarray) and value.ndim == 0:
                value = value.item()
            number = not isinstance(value, (bool, np.bool_)) and isinstance(
                value, (int, float, np.number))
            if not number or not math.isfinite(value) or (name != "best" and (
                    value < 0 or value != int(value))):
                raise ValueError(f"the ReduceLROnPlateau state has no {kind} {name!r} "
                                 f"(got {value!r})")

    def _continue(self, state):
        self.best = float(state["best"]) if "best" in state else self._worst()
        self.wait = int(state["wait"])
        self.cooldown_counter = int(state["cooldown_counter"])
        self._resumed = True

    def on_epoch_end(self, epoch, logs=None):
        _log_learning_rate(self.model, logs)
        if self._unvalidated(logs):   # Keras's: no count, no cooldown step without the number
            return
        value = self._value(logs)
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._better(value, self.best):
            self.best, self.wait = value, 0
            return
        if self.cooldown_counter > 0:
            return
        self.wait += 1
        optimizer = self.model.optimizer
        if self.wait >= self.patience and optimizer.learning_rate > self.min_lr:
            rate = max(optimizer.learning_rate * self.factor, self.min_lr)
            optimizer.learning_rate = rate
            self.cooldown_counter, self.wait = self.cooldown, 0
            if self.verbose:
                click.echo(f"epoch {epoch + 1}: {self.monitor} has not improved for "
                           f"{count(self.patience, 'epoch')}: learning rate now {rate:.3g}",
                           err=True)


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of each epoch to ``schedule(epoch, rate)`` (Keras's
    ``LearningRateScheduler``): ``epoch`` counts from 0 over the model's life, ``rate`` is the
    current one. dlcore's own schedules (``dlcore.optimizers.StepDecay``,
    ``ExponentialDecay``, given as the optimiser's learning rate) change it at every update
    instead. As Keras's, it writes the epoch's rate into the epoch's logs as
    ``learning_rate``, which the fit's History, and the callbacks listed after it, see.

    Parameters
    ----------
    schedule : callable (epoch, rate) -> new rate (a positive number)
    verbose : 0 silent, 1 a line on stderr per epoch
    """

    #: as :attr:`_Resumable._steers_its_network`: it sets the rate of its fit's network
    _steers_its_network = True

    def __init__(self, schedule, verbose=0):
        if not callable(schedule):
            raise ValueError(f"schedule must be a function (epoch, rate) -> rate, got "
                             f"{schedule!r}")
        self.schedule = schedule
        self.verbose = check_int(verbose, "verbose", minimum=0)

    def on_train_begin(self, logs=None):
        _constant_learning_rate(self.model, "LearningRateScheduler")

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        rate = self.schedule(epoch, optimizer.learning_rate)
        optimizer.learning_rate = check_float(rate, "the schedule's learning rate", low=0.0,
                                              low_open=True)
        if self.verbose:
            click.echo(f"epoch {epoch + 1}: learning rate {optimizer.learning_rate:.3g}",
                       err=True)

    def on_epoch_end(self, epoch, logs=None):
        _log_learning_rate(self.model, logs)


def _log_learning_rate(model, logs):
    """logs["learning_rate"] = the optimiser's rate now: what Keras's LR callbacks add to the
    epoch's logs (the logs ``fit`` hands every callback of the epoch, in order)."""
    if logs is not None:   # a number: on_train_begin refused a schedule
        logs["learning_rate"] = float(model.optimizer.learning_rate)


def _constant_learning_rate(model, name):
    from dlcore.optimizers import Schedule
    if isinstance(model.optimizer.learning_rate, Schedule):
        raise ValueError(f"{name} sets a constant learning rate, but the optimiser follows "
                         f"the schedule {type(model.optimizer.learning_rate).__name__}: give it "
                         f"a number (learning_rate=0.01) or drop the callback")


class BackupAndRestore(Callback):
    """Back up the whole training state at the end of every epoch, and restore it when a fit
    starts (Keras's ``BackupAndRestore``): a script interrupted by anything (Ctrl-C, a closed
    laptop, a cluster's time limit, a crash) and run again as it was goes on from the last
    finished epoch instead of from the start, and ends with the weights an uninterrupted fit
    would have had, bit for bit on a backend that sums in a fixed order (cpu).

    The backup is one dlcore model file, ``<backup_dir>/backup.h5`` (:func:`dlcore.save`):
    weights, optimiser state, seed, epochs done, history and the other callbacks' state
    (:class:`EarlyStopping`, :class:`ReduceLROnPlateau`). The fit given this callback first
    puts all of that into the network when the file exists, then trains the epochs the
    interrupted fit had left: ``fit(epochs=10, callbacks=[BackupAndRestore("backup")])``
    stopped after epoch 6 runs epochs 7 to 10 when run again (the History it returns has
    those), as Keras's. Keras 3's backup holds the weights, the optimiser's variables and the
    epoch; dlcore's also the history, the other callbacks' state and the seed, which with the
    epoch count seeds each epoch's batch order and dropout masks (so that the resumed epochs
    draw what the uninterrupted ones would).

    Parameters
    ----------
    backup_dir : str or os.PathLike, the folder of the backup (created when needed); one
        folder per training run: a backup of another network is refused
    save_freq : "epoch" only (Keras also takes a number of batches; dlcore backs up at the
        ends of epochs, where the training state is whole and a resumed fit draws the same
        batches)
    double_checkpoint : bool, also keep the previous epoch's backup
        (``backup.h5.bkp``), restored when the latest cannot be read (a disk that damaged
        it) and copied over it, as Keras's. Each file is written whole or not at all
        (written aside, then renamed), so an interruption while saving never loses the
        previous backup either way
    delete_checkpoint : bool, delete the backup when the fit ends (all its epochs trained,
        or stopped early by a callback), as Keras's; dlcore deletes its own files and then
        the folder only if empty, where Keras deletes the whole folder. A fit that ends in
        an error or an interruption keeps it

    Raises (when the fit starts)
    ----------------------------
    ValueError, in one line, for a backup that cannot be read (damaged: delete it to start
    over), one of another network (another architecture, optimiser or seed), one that has
    trained fewer epochs than the network already has (a backup of an earlier run).
    ValueError, in one line, when another fit (in this process or another) holds
    ``backup_dir``: a fit holds its backup folder from its start to its end (an OS-level
    lock, freed however the process ends), since two fits sharing it would restore and
    overwrite each other's training. The scikit-learn wrappers
    (:class:`dlcore.wrappers.SKLearnClassifier`, ...) give each of their fits a folder of its
    own inside ``backup_dir`` (see :meth:`for_fit`), so that a grid search's fits, in turn
    or at once (``n_jobs``), each restore their own.
    OSError, in one line naming the folder, the reason, the errno and the fix, for a
    ``backup_dir`` that cannot be made (a folder on its way that is a file, no permission, a
    read-only disk: :class:`dlcore.io.FolderNotWritableError`), as ModelCheckpoint says it.

    In a data-parallel fit (``comm``, given the callback on every rank) rank 0 alone writes,
    restores, holds and deletes the backup, and hands what it restored to the other ranks
    (:func:`dlcore.distributed.network.restore_backup`): they need not see its file.
    """

    #: run after the other callbacks of an epoch: the backup then holds their state of it
    saves_model = True

    #: the name of the backup file in ``backup_dir``
    FILE_NAME = "backup.h5"

    #: whether this process writes and deletes the backup (``fit`` sets it: False on the ranks
    #: of a data-parallel fit other than 0)
    _writes = True

    def __init__(self, backup_dir, save_freq="epoch", double_checkpoint=False,
                 delete_checkpoint=True):
        try:
            self.backup_dir = os.fspath(backup_dir)
        except TypeError:
            raise ValueError(f"backup_dir must name a folder, got {backup_dir!r}") from None
        if not isinstance(self.backup_dir, str) or not self.backup_dir:
            raise ValueError(f"backup_dir must name a folder, got {backup_dir!r}")
        if save_freq != "epoch":
            raise ValueError(f"save_freq must be 'epoch', got {save_freq!r}: dlcore backs up "
                             "at the end of epochs, where the training state is whole")
        self.save_freq = save_freq
        self.double_checkpoint = check_bool(double_checkpoint, "double_checkpoint")
        self.delete_checkpoint = check_bool(delete_checkpoint, "delete_checkpoint")
        self._lock = None   # the folder's lock while a fit holds it (hold, release)
        self._owner = None   # the network whose fit holds it
        self._created = ()   # the folders hold created, deepest first

    @property
    def path(self):
        """The backup file."""
        return os.path.join(self.backup_dir, self.FILE_NAME)

    @property
    def previous_path(self):
        """The previous epoch's backup, kept with ``double_checkpoint``."""
        return self.path + ".bkp"

    def restore(self, model):
        """Put the backup's training state into ``model`` (called by ``fit`` before its
        validation split and its callbacks' ``on_train_begin``: the seed and the other
        callbacks' state come from the backup). Returns whether there was a backup.

        Raises
        ------
        ValueError : a backup that cannot be read or is not of this network, in one line
        """
        self._check_backup_dir()
        self.hold()
        return self._restore_into(model)

    def _check_backup_dir(self):
        if os.path.exists(self.backup_dir) and not os.path.isdir(self.backup_dir):
            raise ValueError(f"BackupAndRestore's backup_dir {self.backup_dir!r} is a file, "
                             "not a folder: give a folder of its own")

    def _restore_into(self, model):
        """:meth:`restore` in a fit that holds the folder already (:meth:`hold`)."""
        self._check_backup_dir()
        paths = [self.path] + ([self.previous_path] if self.double_checkpoint else [])
        paths = [path for path in paths if os.path.exists(path)]
        if not paths:
            return False
        from dlcore.io import load
        for path in paths:
            try:
                saved = load(path)
                break
            except ValueError as error:   # ModelFileError: the file is at fault
                if path == paths[-1]:
                    raise ValueError(f"BackupAndRestore cannot restore {path}: {error}; "
                                     "delete the backup to start the fit over") from None
        _check_same_network(saved, model, path)
        if path == self.previous_path and os.path.exists(self.path):
            # the damaged latest replaced by the previous one (as Keras copies it), lest the
            # next epoch keep the damaged file as its previous backup
            self._copy_whole(self.previous_path, self.path)
        state = saved.get_state()
        try:
            model.set_state(state)
        except ValueError as error:
            # the optimiser's settings that shape its slots (use_ema: an average of each
            # weight) may differ between the runs though its class is the same
            raise ValueError(f"BackupAndRestore's backup {path} does not fit this fit's "
                             f"optimiser ({error}): compile with the optimiser settings of the "
                             f"interrupted run, give each training run a backup_dir of its "
                             f"own, or delete the backup to start over") from None
        model.history = {name: list(values) for name, values in saved.history.items()}
        _restore_learning_rate(saved, model)
        return True

    def hold(self, owner=None):
        """Lock ``backup_dir`` for the fit that starts (:func:`dlcore.io.atomic.lock_folder`,
        created when needed), until :meth:`release`: a second fit given the same folder while
        this one runs would restore this one's epochs as its own and overwrite its backup.

        Parameters
        ----------
        owner : the fit's own object (or None): :meth:`release` given it frees only a lock
            that this owner took (not the network: a fit refused inside another of the same
            network must not free the running fit's). The lock is the callback's from before
            the system takes it, so that a Ctrl-C at any point leaves it where the fit's
            clean-up frees it.

        Returns
        -------
        the lock taken

        Raises
        ------
        ValueError : another fit holds the folder, in one line naming the fix
        """
        from dlcore.io.atomic import FolderInUseError, FolderLock, lock_folder
        holder = f"pid {os.getpid()}: a fit with BackupAndRestore"
        # checked and claimed at once: two threads' fits given this callback together both
        # passed the check, and the refused one's clean-up cleared the other's lock, which
        # nothing then freed (the folder held by the process itself until it ended)
        with _CLAIMING:
            if self._lock is not None:   # this very callback, in a fit running now
                raise self._in_use(FolderInUseError(self.backup_dir, holder))
            self._owner = owner
            lock = self._lock = FolderLock()
        try:
            self._created, made = (), []
            for _ in range(3):
                try:
                    _make_folders(self.backup_dir, made)
                finally:   # release removes them, however this ends
                    self._created = _deepest_first(made)
                lock_folder(self.backup_dir, holder, into=lock)
                # another fit's end may remove the folder, empty, between the two: its lock
                # file then cannot be made, and the fit would run unlocked
                if lock.descriptor is not None or os.path.isdir(self.backup_dir):
                    break
            self._held_entry = _note_held_here(self.backup_dir)
            self._mark_shared_folder()
        except FolderInUseError as error:
            self._lock = self._owner = None
            self._created = ()
            raise self._in_use(error) from None
        return lock

    def _in_use(self, error):
        # held by a fit of this process: a thread's, or one started inside the running fit
        # (a callback's), which "another fit (pid <own>)" left to be guessed
        here = self._lock is not None or bool(_holding_threads_here(self.backup_dir))
        where = " in this process (a thread's, or the fit this one was started in)" if here \
            else ""
        return ValueError(f"BackupAndRestore's backup_dir {self.backup_dir!r} is in use by "
                          f"another fit{where} ({error.holder}): give each fit that runs at "
                          "the same time a backup_dir of its own")

    def release(self, owner=None):
        """Free ``backup_dir`` for other fits (fit's end, however it ends), and remove the
        folders that :meth:`hold` created if they are still empty: a fit that failed or was
        stopped before its first backup leaves no trace. Given ``owner``, only a lock that
        owner holds: a fit that was refused the folder does not free it under the fit that
        holds it."""
        if self._lock is None or (owner is not None and self._owner is not owner):
            return
        _note_let_go_here(self.backup_dir, vars(self).pop("_held_entry", None))
        self._lock.release()
        self._lock = self._owner = None
        created, self._created = self._created, ()
        for folder in created:   # deepest first
            try:
                os.rmdir(folder)   # only when empty
            except OSError:
                break
        self._leave_shared_folder()

    def __deepcopy__(self, memo):
        # a copy (scikit-learn's clone of the callbacks in fit_kwargs) is a callback that
        # holds no folder yet: the lock stays with the fit that took it
        copy = type(self).__new__(type(self))
        memo[id(self)] = copy
        for name, value in vars(self).items():
            setattr(copy, name, _NOT_HELD[name] if name in _NOT_HELD else deepcopy(value, memo))
        return copy

    def __getstate__(self):
        return {**vars(self), **_NOT_HELD}

    def on_epoch_end(self, epoch, logs=None):
        from dlcore.io import save
        if not self._writes:
            return
        _make_folder(self.backup_dir)
        if self.double_checkpoint and os.path.exists(self.path):
            self._keep_previous()
        save(self.model, self.path)

    def _keep_previous(self):
        """The latest backup as the previous one: a hard link (the latest is replaced by a
        rename, never written in place, so the link keeps the previous epoch's whole), or
        on a file system without hard links (FAT, some network shares) a copy written aside
        and renamed."""
        if os.path.exists(self.previous_path):
            os.remove(self.previous_path)
        try:
            os.link(self.path, self.previous_path)
        except OSError:
            self._copy_whole(self.path, self.previous_path)

    @staticmethod
    def _copy_whole(source, target):
        """``source`` copied to ``target``, written aside and renamed: whole or not at all."""
        aside = target + ".partial"
        shutil.copyfile(source, aside)
        os.replace(aside, target)

    def on_train_end(self, logs=None):
        if self.delete_checkpoint:
            self.delete_backup()
        self.release()

    def for_member(self, index):
        """The backup of member ``index`` of an ensemble (:meth:`dlcore.ensemble.Ensemble.fit`,
        whose members are fitted one after another with the same callbacks): in a folder of
        its own, ``<backup_dir>/member-<index>``, kept when its fit ends (the ensemble deletes
        the members' backups when the last member is done, so that a run again after an
        interruption restores the finished members instead of training them again)."""
        backup = BackupAndRestore(os.path.join(self.backup_dir, f"member-{index}"),
                                  double_checkpoint=self.double_checkpoint,
                                  delete_checkpoint=False)
        # backup_dir goes with the last member's backup where a member's fit made it, also
        # where that fit was an interrupted run's (_leave_shared_folder)
        backup._shared_dir = self.backup_dir
        return backup

    def for_fit(self, key):
        """The backup of one fit among several given this callback (a scikit-learn wrapper's,
        whose grid search fits every candidate on every fold, in turn or at once): in a
        folder of its own, ``<backup_dir>/fit-<key>``, ``key`` naming the fit's data and
        settings, so that a run again after an interruption restores each fit its own
        epochs and fits at once never share a backup."""
        backup = BackupAndRestore(os.path.join(self.backup_dir, f"fit-{key}"),
                                  double_checkpoint=self.double_checkpoint,
                                  delete_checkpoint=self.delete_checkpoint)
        backup._shared_dir = self.backup_dir   # the folder of all the fits' (release)
        return backup

    def delete_backup(self):
        """Delete the backup's files, then its folder if that is left empty."""
        if not self._writes:
            return
        for path in (self.path, self.previous_path):
            if os.path.exists(path):
                os.remove(path)
        self.release()   # its lock file, lest it keep the folder
        try:
            os.rmdir(self.backup_dir)   # only when empty: the folder may hold the user's files
        except OSError:
            pass
        self._leave_shared_folder()

    #: The file that marks the ``backup_dir`` of a wrapper's fits (an ensemble's members) as
    #: made by one of them (:meth:`_mark_shared_folder`, :meth:`_leave_shared_folder`)
    MADE_BY_FITS = ".dlcore-made-by-fits"
    #: How the folders of the fits' own backups in it begin (:meth:`for_fit`, :meth:`for_member`)
    _FIT_FOLDER_PREFIXES = ("fit-", "member-")

    def _mark_shared_folder(self):
        """Where :meth:`hold` made the ``backup_dir`` that the fits share (:meth:`for_fit`,
        :meth:`for_member`), mark it at once, naming the folders above it that it made too
        (runs/ of runs/backup): a mark written only as the fit ended was never written by
        a search or ensemble killed before (SIGKILL, a power cut), and the run again, which
        found the folders there, left them behind, empty."""
        shared = getattr(self, "_shared_dir", None)
        top = os.path.abspath(shared) if shared is not None else None
        if top not in self._created or not self._writes:
            return
        above = self._created[self._created.index(top) + 1:]
        from dlcore.io.atomic import atomic_open
        with contextlib.suppress(OSError):
            with atomic_open(os.path.join(shared, self.MADE_BY_FITS), "w",
                             encoding="utf-8") as stream:
                stream.write("".join(f"{folder}\n" for folder in above))

    def _leave_shared_folder(self):
        """For the backup of one fit among several (:meth:`for_fit`, :meth:`for_member`),
        whose folder is in the ``backup_dir`` that the fits share: remove that folder as the
        last of the fits leaves it, where a fit made it (and marked it,
        :meth:`_mark_shared_folder`): the last fit to leave finds only the mark, and removes
        both. A folder the user made bears no mark and stays; one a fit made that holds the
        user's files by then (a ``ModelCheckpoint`` of the same folder) stays too, its mark
        removed with the last fit's backup."""
        shared = getattr(self, "_shared_dir", None)
        if shared is None or not self._writes:
            return
        mark = os.path.join(shared, self.MADE_BY_FITS)
        top = os.path.abspath(shared)
        try:
            entries = os.listdir(shared)
            others = [entry for entry in entries if entry != self.MADE_BY_FITS]
            # fits' backups still there (a fit running, or kept for a run again) need the mark
            if len(others) == len(entries) or any(
                    entry.startswith(self._FIT_FOLDER_PREFIXES) for entry in others):
                return
            with open(mark, encoding="utf-8") as stream:
                above = stream.read().splitlines()
            os.remove(mark)
            if others:   # the user's files: their folder now, left without a mark
                return
            os.rmdir(shared)
        except (OSError, UnicodeDecodeError):   # another fit's folder made meanwhile, or
            return                               # the last one removed it
        # only folders above it: a mark left by a killed search, in a tree moved since,
        # names where the folders were, perhaps a user's folders now
        ancestors = [os.path.dirname(top)]
        while os.path.dirname(ancestors[-1]) != ancestors[-1]:
            ancestors.append(os.path.dirname(ancestors[-1]))
        above = [folder for folder in above if folder in ancestors]
        for folder in above:   # deepest first, only while empty
            try:
                os.rmdir(folder)
            except OSError:
                break


#: Held while :meth:`BackupAndRestore.hold` checks and claims a callback for a fit
_CLAIMING = threading.Lock()

#: What a copy or a pickle of a BackupAndRestore holds in place of a running fit's lock
_NOT_HELD = {"_lock": None, "_owner": None, "_created": (), "_held_entry": None}

#: The files and folders (``os.path.realpath``) that fits of this process hold locked, each
#: with the pid and thread of every fit holding it: whether a lock is this process's own is
#: known here, where the pid in its lock file could be another's (two containers sharing a
#: volume both run pid 1); the pid kept tells a forked child's copy from its own. Every
#: holder is listed: on a file system that locks nothing, fits in two threads hold one file
#: at once, and the one that ends first must not take the other's entry with it
_HELD_HERE = {}
_HELD_HERE_CHANGING = threading.Lock()


def _note_held_here(path, fit_id=None):
    """Note ``path`` as held by the calling thread's fit (:data:`_HELD_HERE`), a wrapper
    fit's with its id; returns the entry, for :func:`_note_let_go_here` (which another thread
    may call)."""
    entry = (os.getpid(), threading.get_ident(), fit_id)
    with _HELD_HERE_CHANGING:
        _HELD_HERE.setdefault(os.path.realpath(path), []).append(entry)
    return entry


def _holding_threads_here(path):
    """The threads of this process whose fits hold ``path`` (none: another process's)."""
    with _HELD_HERE_CHANGING:
        entries = list(_HELD_HERE.get(os.path.realpath(path), ()))
    return {thread for pid, thread, _ in entries if pid == os.getpid()}


def _fits_holding_in_this_thread(path):
    """The ids of the wrapper fits that hold ``path`` in the calling thread: a callback
    made now on that file is made inside them (a callback of theirs that starts a fit)."""
    with _HELD_HERE_CHANGING:
        entries = list(_HELD_HERE.get(os.path.realpath(path), ()))
    return {fit_id for pid, thread, fit_id in entries
            if pid == os.getpid() and thread == threading.get_ident() and fit_id is not None}


def _note_let_go_here(path, entry):
    """Take back the ``entry`` that :func:`_note_held_here` gave for ``path``."""
    path = os.path.realpath(path)
    with _HELD_HERE_CHANGING:
        entries = _HELD_HERE.get(path, [])
        if entry in entries:
            entries.remove(entry)
        if not entries:
            _HELD_HERE.pop(path, None)


def _missing_folders(folder):
    """The folders that creating ``folder`` would create, deepest first."""
    missing, folder = [], os.path.abspath(folder)
    while not os.path.exists(folder) and os.path.dirname(folder) != folder:
        missing.append(folder)
        folder = os.path.dirname(folder)
    return tuple(missing)


def _make_folders(folder, made):
    """Make ``folder`` and the missing folders above it (``os.makedirs``), appending to the
    list ``made`` each one this call made, also where it then fails (an over-long name, a
    full disk: the caller removes them again). Those found missing are not all its own:
    another fit's end may remove a folder above, empty, after it was found there (made
    again here, it is this call's), and another fit may make one first (that fit's). A folder
    that cannot be made is an OSError in one line
    (:func:`dlcore.io.atomic.unmakeable_folder_error`)."""
    try:
        for _ in range(3):
            for path in reversed(_missing_folders(folder)):   # top down
                try:
                    os.mkdir(path)
                except FileExistsError:
                    continue
                except FileNotFoundError:   # the folder above removed meanwhile: again
                    break
                made.append(path)
            if os.path.isdir(folder):
                return
        os.makedirs(folder, exist_ok=True)   # what it could not make says why
    except OSError as error:
        from dlcore.io.atomic import unmakeable_folder_error
        raise unmakeable_folder_error(folder, error) from None


def _make_folder(folder):
    """``os.makedirs(folder, exist_ok=True)``, or the OSError in one line of
    :func:`dlcore.io.atomic.unmakeable_folder_error`."""
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        from dlcore.io.atomic import unmakeable_folder_error
        raise unmakeable_folder_error(folder, error) from None


def _deepest_first(folders):
    """``folders`` (absolute paths) once each, the deepest first."""
    return tuple(sorted(set(folders), key=lambda path: (-path.count(os.sep), path)))


def _restore_learning_rate(saved, model):
    """The optimiser's rate as the backup has it, where both are numbers: a rate that
    :class:`ReduceLROnPlateau` lowered is the optimiser's setting, not part of the state that
    ``set_state`` restores, and the resumed epochs would train at the compiled rate (Keras 3's
    backup restores it, a variable of its optimiser). A schedule's rate follows from the
    restored update count."""
    rates = [getattr(getattr(network, "optimizer", None), "learning_rate", None)
             for network in (saved, model)]
    if all(isinstance(rate, numbers.Real) and not isinstance(rate, bool) for rate in rates):
        model.optimizer.learning_rate = rates[0]


def _check_same_network(saved, model, path):
    """ValueError, in one line, unless the network ``saved`` in the backup ``path`` is of
    ``model``'s class, layers (with their weights' shapes), optimiser and seed: a backup
    of another network would make the fit go on from someone else's training."""
    fix = "give each training run a backup_dir of its own, or delete the backup to start over"
    if type(saved) is not type(model):
        raise ValueError(f"BackupAndRestore's backup {path} is of a {type(saved).__name__}, "
                         f"not of this {type(model).__name__}: {fix}")
    shapes = [np.shape(weight) for weight in saved.get_weights()]
    if shapes != [np.shape(weight) for weight in model.get_weights()]:
        raise ValueError(f"BackupAndRestore's backup {path} is of another architecture "
                         f"(weights of shapes {shapes}): {fix}")
    kinds = [type(getattr(network, "optimizer", None)).__name__ for network in (saved, model)]
    if kinds[0] != kinds[1]:
        raise ValueError(f"BackupAndRestore's backup {path} was trained with {kinds[0]}, "
                         f"this fit uses {kinds[1]}: {fix}")
    if getattr(saved, "seed", None) != getattr(model, "seed", None):
        raise ValueError(f"BackupAndRestore's backup {path} is of a network of seed "
                         f"{saved.seed}, not {model.seed}: build the network with "
                         f"seed={saved.seed} (a network without a seed draws a new one in each "
                         "run), or delete the backup to start over")


class CSVLogger(_WrittenByWrapperFits, Callback):
    """Write each epoch's numbers as a row of a CSV file (Keras's ``CSVLogger``): ``epoch``
    (Keras's index, from 0 over the model's life), then the names of the first epoch's logs in
    alphabetical order (accuracy, loss, val_..., and learning_rate when a learning-rate
    callback listed before it wrote it, as in Keras). The seconds of each epoch are in the
    model's own record, ``model.history["seconds"]``. Under ``validation_freq`` the ``val_``
    columns are there from the first row, empty at the epochs not validated (when the first
    epoch is not, after the others, as Keras 3 appends them).

    Parameters
    ----------
    filename : str or os.PathLike; rewritten whole after each epoch, so that it is never
        half-written
    separator : str, one character
    append : bool, keep the rows already in the file (a resumed training) instead of starting
        it afresh (Keras's: the rows of earlier runs stay); a resumed fit drops the file's last
        row when it is of the epoch the fit starts with (a Ctrl-C that came after this
        callback's row of an epoch, while a later callback such as a ModelCheckpoint was ending
        it, put the model back to the epoch before)
    """

    def __init__(self, filename, separator=",", append=False):
        self.filename = os.fspath(filename)
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(f"separator must be one character, got {separator!r}")
        self.separator = separator
        self.append = check_bool(append, "append")
        self._note_made_inside_fits(self.filename)
        self._text = ""
        self._names = None

    def on_train_begin(self, logs=None):
        folder = os.path.dirname(os.path.abspath(self.filename))
        if not os.path.isdir(folder):   # before the first epoch, not after it
            raise FileNotFoundError(f"CSVLogger cannot write {self.filename}: directory "
                                    f"{folder} does not exist; create it first")
        self._text, self._names = "", None
        self._first_epoch = True
        if self.append and os.path.isfile(self.filename):
            with open(self.filename, encoding="utf-8", newline="") as file:
                self._text = file.read()
            first = self._text.splitlines()[0] if self._text.strip() else ""
            self._names = next(csv.reader([first], delimiter=self.separator))[1:] \
                if first else None

    def _names_validated_later(self, logs):
        """The ``val_`` names missing from ``logs`` because this epoch was not validated
        (``validation_freq``): the fit logs them at its validated epochs, so they are columns
        from the header on, empty until then (Keras 3's CSVLogger adds them too). The model's
        own record has them already, NaN for this epoch."""
        if not getattr(self.model, "epoch_without_validation", False):
            return []
        record = getattr(self.model, "history", None) or {}
        return [f"val_{name}" for name in logs
                if f"val_{name}" in record and f"val_{name}" not in logs]

    def on_epoch_end(self, epoch, logs=None):
        from dlcore.io.atomic import atomic_open
        logs = logs or {}
        if getattr(self, "_first_epoch", False):
            self._first_epoch = False
            self._text = _rows_before(self._text, epoch, self.separator)
        rows = io.StringIO()
        writer = csv.writer(rows, delimiter=self.separator, lineterminator="\n")
        if self._names is None:
            # after the logged names, as Keras 3 appends them (an output named "yes_no"
            # sorts its yes_no_loss after val_loss)
            self._names = [*sorted(logs), *sorted(self._names_validated_later(logs))]
            writer.writerow(["epoch", *self._names])
        writer.writerow([epoch, *(logs.get(name, "") for name in self._names)])
        self._text += rows.getvalue()
        with atomic_open(self.filename, "w", encoding="utf-8", newline="") as file:
            file.write(self._text)


def _rows_before(text, epoch, separator):
    """``text``, a CSVLogger's file, without its last row when that row is of epoch ``epoch``,
    the first this fit trains, and the fit resumes (``epoch`` > 0): a Ctrl-C while a later
    callback ended that epoch put the model back to the epoch before, after the row was
    written. Every other row is kept, as Keras's ``append=True`` keeps them: the rows of
    other runs (a new model's fit starts at epoch 0; one resumed from an older checkpoint
    starts below the file's last epoch) are not this fit's to drop."""
    lines = text.splitlines(keepends=True)
    if epoch > 0 and len(lines) > 1:
        first = lines[-1].split(separator, 1)[0].strip()
        if first.isdigit() and int(first) == epoch:
            del lines[-1]
    return "".join(lines)


class LambdaCallback(Callback):
    """A callback made of functions (Keras's ``LambdaCallback``, its arguments in its order),
    e.g. ``LambdaCallback(on_epoch_end=lambda epoch, logs: print(epoch, logs["loss"]))``.

    Parameters
    ----------
    on_epoch_begin, on_epoch_end : f(epoch, logs)
    on_train_begin, on_train_end : f(logs)
    on_train_batch_begin, on_train_batch_end : f(batch, logs); ``logs`` holds the running loss
        and metrics of the epoch at every batch's end ({} at its beginning)
    on_batch_begin, on_batch_end : Keras 2's names of the same two hooks (give one of each
        pair)
    on_test_begin, on_test_end : f(logs), around the validation of an epoch (Keras's keyword
        arguments beyond the six above)
    on_test_batch_begin, on_test_batch_end : f(batch, logs), for each batch of the validation

    ``epoch`` is Keras's index: counted from 0 (over the model's life).
    """

    HOOKS = ("on_epoch_begin", "on_epoch_end", "on_train_begin", "on_train_end",
             "on_train_batch_begin", "on_train_batch_end", "on_batch_begin", "on_batch_end",
             "on_test_begin", "on_test_end", "on_test_batch_begin", "on_test_batch_end")

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None,
                 on_train_end=None, on_train_batch_begin=None, on_train_batch_end=None,
                 on_batch_begin=None, on_batch_end=None, *, on_test_begin=None,
                 on_test_end=None, on_test_batch_begin=None, on_test_batch_end=None,
                 **unexpected):
        if unexpected:
            raise ValueError(f"LambdaCallback takes {', '.join(self.HOOKS)}; dlcore calls no "
                             f"{', '.join(sorted(unexpected))}")
        batch_hooks = {"on_batch_begin": (on_batch_begin, on_train_batch_begin),
                       "on_batch_end": (on_batch_end, on_train_batch_end)}
        for name, (keras_2, keras_3) in batch_hooks.items():
            if keras_2 is not None and keras_3 is not None:
                raise ValueError(f"give {name} or on_train_{name[3:]} (the same hook), not both")
        self.functions = {"on_epoch_begin": on_epoch_begin, "on_epoch_end": on_epoch_end,
                          "on_batch_begin": on_batch_begin or on_train_batch_begin,
                          "on_batch_end": on_batch_end or on_train_batch_end,
                          "on_train_begin": on_train_begin, "on_train_end": on_train_end,
                          "on_test_begin": on_test_begin, "on_test_end": on_test_end,
                          "on_test_batch_begin": on_test_batch_begin,
                          "on_test_batch_end": on_test_batch_end}
        for name, function in self.functions.items():
            if function is not None and not callable(function):
                raise ValueError(f"{name} must be a function, got {function!r}")
        self.every_batch_logs = any(self.functions[name] is not None
                                    for name in ("on_batch_begin", "on_batch_end"))

    def _call(self, hook, *arguments):
        function = self.functions[hook]
        if function is not None:
            function(*arguments)

    def on_train_begin(self, logs=None):
        self._call("on_train_begin", logs or {})

    def on_train_end(self, logs=None):
        self._call("on_train_end", logs or {})

    def on_epoch_begin(self, epoch, logs=None):
        self._call("on_epoch_begin", epoch, logs or {})

    def on_epoch_end(self, epoch, logs=None):
        self._call("on_epoch_end", epoch, logs or {})

    def on_batch_begin(self, batch, logs=None):
        self._call("on_batch_begin", batch, logs)

    def on_batch_end(self, batch, logs=None):
        self._call("on_batch_end", batch, logs)

    def on_test_begin(self, logs=None):
        self._call("on_test_begin", logs or {})

    def on_test_end(self, logs=None):
        self._call("on_test_end", logs or {})

    def on_test_batch_begin(self, batch, logs=None):
        self._call("on_test_batch_begin", batch, logs or {})

    def on_test_batch_end(self, batch, logs=None):
        self._call("on_test_batch_end", batch, logs or {})

    def wants_test_batch_hooks(self):
        return any(self.functions[name] is not None for name in TEST_BATCH_HOOKS)


#: The fits whose progress a stream shows now (by the stream's id: the ProgressBars in
#: ``on_train_begin`` .. ``on_train_end``, one entry a fit), and the fit that draws the one
#: bar it may hold; guarded by _PROGRESS_LOCK, which also keeps each line whole
_PROGRESS_FITS = {}
_PROGRESS_BARS = {}
_PROGRESS_LOCK = threading.Lock()
#: A terminal's carriage return and erasure of its line (ANSI's)
ERASE_LINE = "\r\x1b[2K"


class ProgressBar(Callback):
    """A click progress bar per epoch on stderr with the running loss and metrics, then one
    line with the epoch's numbers. ``fit(verbose=1)`` adds it; ``fit(verbose=2)`` adds one
    with ``bar=False``, which writes the epoch's line alone (Keras's "one line per epoch");
    ``verbose=0`` is silent.

    Off a terminal (a log file, a captured stderr, CI) only the epoch's line is written:
    click prints a bar's label once there and never moves it, which would show every epoch
    twice. A Jupyter notebook's output redraws a line at each carriage return, as a terminal
    does: the bar is drawn there too (Keras's bar is; the notebook showed ``verbose=1`` as
    ``verbose=2``, and nothing of a long epoch until its end).

    Fits at once in threads (a grid search under joblib's threading backend with
    ``verbose=1``) drew their bars over each other on one line, and a ProgressBar they shared
    counted the batches of both. Each fit now has its own count (kept per thread), one bar is
    drawn on a stream at a time (the others' fits write their epoch lines only), each line is
    written whole, and a fit that reports beside another starts its lines with its network's
    name."""

    #: the running numbers of the batches that report are enough for the bar
    every_batch_logs = False

    def __init__(self, n_batches, epochs, file=None, bar=True):
        self.n_batches = n_batches
        self.epochs = epochs
        self.bar = bar
        self.file = sys.stderr if file is None else file
        #: each running fit's bar and running text, by its thread
        self._fits = {}

    def _fit(self):
        return self._fits.setdefault(threading.get_ident(), {"bar": None, "text": ""})

    def on_train_begin(self, logs=None):
        fit = self._fit()
        fit["token"] = token = object()
        with _PROGRESS_LOCK:
            _PROGRESS_FITS.setdefault(id(self.file), []).append(token)

    def on_epoch_begin(self, epoch, logs=None):
        if not (self.bar and redraws_a_line(self.file)):
            return
        fit = self._fit()
        token = fit.setdefault("token", object())
        with _PROGRESS_LOCK:
            if _PROGRESS_BARS.setdefault(id(self.file), token) is not token:
                return   # another fit's bar is on this line
        terminal = _is_terminal(self.file)
        drawn_on = self.file if terminal else _NotebookLine(self.file)
        # a notebook's line goes to the browser as a message a draw: at most one a
        # NOTEBOOK_REDRAW_SECONDS (Keras's bar waits 0.05 s), where a draw a report (about 100
        # an epoch) made a 0.1 s epoch 75 % slower
        fit["every"], fit["pending"], fit["drawn"] = (0.0 if terminal else
                                                      NOTEBOOK_REDRAW_SECONDS), 0, 0.0
        fit["bar"] = click.progressbar(length=self.n_batches,
                                       label=f"epoch {epoch + 1}/{self.epochs}",
                                       file=drawn_on, show_eta=True, show_percent=False,
                                       item_show_func=lambda _: fit["text"])
        fit["bar"].__enter__()

    def on_batch_end(self, batch, logs=None):
        fit = self._fit()
        if fit["bar"] is None:
            return
        if logs:
            fit["text"] = format_logs(logs)
        fit["pending"] += 1
        now = time.monotonic()
        if now - fit["drawn"] >= fit["every"]:
            fit["bar"].update(fit["pending"])
            fit["pending"], fit["drawn"] = 0, now

    def on_epoch_end(self, epoch, logs=None):
        fit = self._fit()
        if fit["bar"] is not None:
            fit["bar"].update(fit["pending"])   # the epoch's last batches, full
            fit["bar"].__exit__(None, None, None)
            fit["bar"] = None
        shown = dict(logs or {})
        # the epoch's rate and duration from the model's record (fit writes it before the
        # callbacks): dlcore's line shows them, though Keras's logs do not hold them
        model = self.model   # this fit's, where two fits share the ProgressBar (Callback)
        record = getattr(model, "history", None)
        if isinstance(record, dict):
            shown.update({name: record[name][-1] for name in ("learning_rate", "seconds")
                          if record.get(name) and name not in shown})
        line = f"epoch {epoch + 1}/{self.epochs}: {format_logs(shown)}"
        with _PROGRESS_LOCK:
            if _PROGRESS_BARS.get(id(self.file)) is fit.get("token"):
                del _PROGRESS_BARS[id(self.file)]   # the next epoch's bar: whoever asks
            # named from the first line written beside another fit's to its last
            fit["named"] = fit.get("named") or len(_PROGRESS_FITS.get(id(self.file), ())) > 1
            if fit["named"]:
                line = f"{getattr(model, 'name', 'a fit')}: {line}"
            if id(self.file) in _PROGRESS_BARS:   # over another fit's bar, redrawn after it
                line = ERASE_LINE + line
            click.echo(line, file=self.file)

    def on_train_end(self, logs=None):
        self.close_fit()

    def close_fit(self):
        """End this thread's fit's share of the stream (``on_train_end``; ``fit`` calls it
        too when the fit ends by an exception, Ctrl-C included, where Keras calls no hook):
        the bar it was drawing is closed and left to the next fit."""
        fit = self._fits.pop(threading.get_ident(), {})
        if fit.get("bar") is not None:   # a fit stopped inside an epoch
            fit["bar"].__exit__(None, None, None)
        with _PROGRESS_LOCK:
            if _PROGRESS_BARS.get(id(self.file)) is fit.get("token"):
                _PROGRESS_BARS.pop(id(self.file), None)
            fits = _PROGRESS_FITS.get(id(self.file), [])
            if fit.get("token") in fits:
                fits.remove(fit["token"])
            if not fits:
                _PROGRESS_FITS.pop(id(self.file), None)


def _is_terminal(stream):
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def redraws_a_line(stream):
    """Whether ``stream`` shows a line written again after a carriage return in its place: a
    terminal, or a Jupyter notebook's output (ipykernel's stream, whose front-end rewrites
    the line, as Keras's progress bar relies on there)."""
    return _is_terminal(stream) or type(stream).__module__.split(".")[0] == "ipykernel"


#: The shortest time between two draws of a progress bar in a notebook, in seconds
NOTEBOOK_REDRAW_SECONDS = 0.1
#: A terminal's codes that hide and show the cursor around click's bar, which a notebook
#: would print as text
CURSOR_CODES = ("\x1b[?25l", "\x1b[?25h")


class _NotebookLine:
    """A notebook's output stream as click's progress bar needs it: said to be a terminal
    (click draws a bar on a terminal only), and without the cursor codes a terminal takes."""

    def __init__(self, stream):
        self.stream = stream

    def isatty(self):
        return True

    def write(self, text):
        for code in CURSOR_CODES:
            text = text.replace(code, "")
        return self.stream.write(text)

    def flush(self):
        self.stream.flush()


def format_logs(logs):
    """``"loss 0.3412 - accuracy 0.9012 - ..."`` (seconds as "12.3 s", or "23 ms" under a
    tenth of a second)."""
    parts = []
    for name, value in logs.items():
        if name == "seconds":
            parts.append(duration(value))
        elif name == "learning_rate":
            parts.append(f"lr {value:.3g}")
        elif isinstance(value, (float, np.floating)):
            parts.append(f"{name} {value:.4f}")
    return " - ".join(parts)
