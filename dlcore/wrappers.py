"""Any dlcore network as a scikit-learn estimator: Keras 3's ``keras.wrappers`` API.

``SKLearnClassifier(model, warm_start=False, model_kwargs=None, fit_kwargs=None)``,
``SKLearnRegressor(...)`` and ``SKLearnTransformer(...)`` take either a compiled dlcore network
(``Sequential`` or a functional ``Model``), which each ``fit`` rebuilds afresh from its config
(new weights from its seed, the same compile settings), or a function ``model(X=X, y=y,
**model_kwargs)`` returning one: built on the training data, so that it can read the number of
inputs and outputs. The classifier hands that function, and ``fit``, ``y`` one-hot encoded
(n, n_classes), as Keras's wrapper does, and maps the network's outputs back to the labels of
``classes_``; the regressor takes y (n,) as (n, 1) and gives it back 1-D; the transformer's
``transform`` is the network's outputs (an embedding for the next step of a pipeline), and,
where Keras's needs ``y``, it trains to reproduce ``X`` when ``y`` is None or, with
``target="X"``, whatever ``y`` (an autoencoder, whose code layer ``output_layer="code"``
makes the features: a ``Pipeline`` and ``cross_val_score`` hand every step the labels, which
an unsupervised transformer ignores).
Hyperparameters go through ``model_kwargs`` and ``fit_kwargs`` (epochs, batch_size, callbacks,
...), and grid searches reach inside them the way they do with Keras's wrappers (a list of
dicts for ``model_kwargs``)::

    def mlp(X, y, hidden=64):
        model = dlcore.Sequential([Dense(hidden, activation="relu"),
                                   Dense(y.shape[1], activation="softmax")],
                                  input_shape=(X.shape[1],))
        model.compile("categorical_crossentropy", "adam")
        return model

    search = GridSearchCV(SKLearnClassifier(mlp, fit_kwargs={"epochs": 20}),
                          {"model_kwargs": [{"hidden": 32}, {"hidden": 128}]}, n_jobs=2)

``X`` is rows (n, n_features), or, for a network that takes images, the images (n, C, H, W)
or (n, H, W) of its input shape (scikeras takes them; Keras 3's wrappers refuse them):
scikit-learn's splitters index only the first axis. ``input_shape_`` is a sample's shape and
``n_features_in_`` its number of values.

Unlike Keras's, training is reproducible (a network's seed fixes its initial weights, shuffles
and dropout), so refitting gives the same model, and scikit-learn need not be installed: the
estimator contract is :mod:`dlcore.params`'s. Pickles (joblib's workers) carry the fitted
network as its file does, through its config and state; a ``model`` function travels by
reference (define it at a module's top level, as for any joblib job).
"""
import difflib
import dis
import functools
import hashlib
import inspect
import os
import pickle
import secrets
import sys
import threading
import time
from copy import Error as copy_error
from copy import deepcopy

import numpy as np

from dlcore.errors import NotFittedError
from dlcore.params import (
    AccuracyScore,
    ConfigIsParams,
    FeatureNamesIn,
    LogProbabilities,
    ParamsMixin,
    RoutesSampleWeight,
    TransformerOutput,
    reduce_through_state,
    score_targets,
)
from dlcore.training import network_lock, one_output, warn_of_unscaled_pixels
from dlcore.validation import (
    check_bool,
    check_class_labels,
    check_data,
    check_matrix,
    check_width,
)
from dlcore.wording import count


def _check_fit_options(fit_kwargs, kwargs, wrapper):
    """Refuse, before a network is built or a fit starts, an option of ``fit_kwargs`` or of
    the wrapper's ``fit(X, y, **kwargs)`` that a network's ``fit`` does not take, naming where
    it came from and the nearest name: the network's fit said "TrainingLoop.fit() got an
    unexpected keyword argument 'epochz'" of a class the user never met, after the model
    function had built the network."""
    from dlcore.functional import Model
    taken = [name for name in inspect.signature(Model.fit).parameters
             if name not in ("self", "x", "y")]
    for source, options in (("fit_kwargs", fit_kwargs or {}), (f"{wrapper}.fit", kwargs)):
        for name in options:
            if name in ("x", "y"):
                raise TypeError(f"{source} gives {name!r}: {wrapper} hands the network's fit "
                                f"the X and y that its own fit(X, y) is given")
            if name not in taken:
                close = difflib.get_close_matches(str(name), taken, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise TypeError(f"{source} gives {name!r}, which a network's fit does not "
                                f"take: {hint}it takes {', '.join(taken)}")


def _samples_text(shape):
    """"784 features" for rows, "samples of shape (1, 28, 28)" for images."""
    return f"{shape[0]} features" if len(shape) == 1 else f"samples of shape {tuple(shape)}"


def _channels_last_hint(shape, expected):
    """The fix for Keras's channels-last images ``shape`` given to a network of dlcore's
    channels-first ``expected`` sample shape, or ""."""
    channels_last = tuple(expected[1:]) + tuple(expected[:1]) if len(expected) == 3 else None
    if tuple(shape[1:]) == channels_last:
        return ": these are channels-last images; transpose them with X.transpose(0, 3, 1, 2)"
    return ""


def _stable_text(value, depth=0):
    """``value`` as text that is the same in every run (no memory addresses), for the name of
    a fit's backup folder: arrays by their shape, type and a digest of their bytes, functions
    and classes by their module and name, networks by their config, callbacks by the
    settings they were made with (the BackupAndRestore itself by its class: each fit gets
    its own), other
    objects (an optimiser, a regulariser given to a model function) by their config or
    attributes: two candidates of a grid search that differ only there are two fits."""
    from dlcore.callbacks import BackupAndRestore, Callback
    from dlcore.functional import Model
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes, np.generic)):
        return repr(value)
    if isinstance(value, np.ndarray):
        data = np.ascontiguousarray(value)
        digest = hashlib.sha256(data.view(np.uint8) if data.dtype.kind != "O"
                                else repr(data.tolist()).encode()).hexdigest()
        return f"array({data.shape}, {data.dtype}, {digest})"
    if isinstance(value, dict):
        items = sorted(f"{_stable_text(key, depth)}: {_stable_text(item, depth)}"
                       for key, item in value.items())
        return "{" + ", ".join(items) + "}"
    if isinstance(value, (list, tuple)):
        return f"{type(value).__name__}[{', '.join(_stable_text(item, depth) for item in value)}]"
    if isinstance(value, Model):
        return f"{type(value).__qualname__}({_stable_text(value.get_config(), depth + 1)})"
    if isinstance(value, BackupAndRestore):
        return type(value).__qualname__
    if isinstance(value, Callback):
        return f"{type(value).__qualname__}({_stable_text(_callback_settings(value), depth + 1)})"
    if isinstance(value, functools.partial):
        return (f"partial({_stable_text(value.func, depth + 1)}, "
                f"{_setting_text((value.args, tuple(sorted(value.keywords.items()))), depth)})")
    if callable(value) and hasattr(value, "__qualname__"):
        return _function_text(value, depth)
    name = type(value).__qualname__
    if depth < 4 and callable(getattr(value, "get_config", None)):
        try:
            return f"{name}({_stable_text(value.get_config(), depth + 1)})"
        except Exception:   # a config that needs what the object lacks: its attributes then
            pass
    if depth < 4 and hasattr(value, "__dict__"):
        return f"{name}({_stable_text(vars(value), depth + 1)})"
    return name


def _function_text(function, depth):
    """A function (or class) by its module and name and, for one written in Python, what it
    does: a digest of its code, and the defaults and closure values that are settings
    (numbers, text, functions: ``lambda epoch, rate, factor=0.5: ...``). Two lambdas of one
    scope share a name, and two candidates of a grid search given different ones are two
    fits. A mutable value (a list a callback appends to) and a name the function assigns
    (``nonlocal calls; calls += 1``) count by their type alone: a fit changes them, and a
    notebook's cell run again after a Ctrl-C must name the same fit."""
    name = f"{getattr(function, '__module__', '')}.{function.__qualname__}"
    code = getattr(function, "__code__", None)
    if code is None or depth >= 4:
        return name
    cells, rebound = [], _rebound_free_names(code)
    for free_name, cell in zip(code.co_freevars, getattr(function, "__closure__", None) or ()):
        try:
            value = cell.cell_contents
        except ValueError:   # a name its scope has not bound yet
            value = None
        # a name the function assigns (nonlocal calls; calls += 1) is its state, not a
        # setting: by its type, as a list it appends to
        cells.append(_ByType(value) if free_name in rebound else value)
    keywords = sorted((getattr(function, "__kwdefaults__", None) or {}).items())
    given = (getattr(function, "__defaults__", None) or (), tuple(keywords), tuple(cells))
    return f"{name}[{_code_digest(code)}, {_setting_text(given, depth + 1)}]"


class _ByType:
    """A closure value that :func:`_setting_text` names by its type alone."""

    def __init__(self, value):
        self.value = value


def _rebound_free_names(code):
    """The names of ``code``'s closure that it (or a function nested in it) assigns or
    deletes: ``nonlocal calls; calls += 1``."""
    rebound = set()
    for instruction in dis.get_instructions(code):
        if instruction.opname in ("STORE_DEREF", "DELETE_DEREF") and \
                instruction.argval in code.co_freevars:
            rebound.add(instruction.argval)
    for constant in code.co_consts:
        if hasattr(constant, "co_code"):
            rebound.update(set(_rebound_free_names(constant)) & set(code.co_freevars))
    return rebound


def _setting_text(value, depth):
    """``value`` as :func:`_stable_text` says it when it cannot change between fits (a number,
    text, a function, a tuple of those), else by its type."""
    if isinstance(value, _ByType):
        return type(value.value).__qualname__
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes, np.generic)):
        return repr(value)
    if isinstance(value, tuple) and depth < 8:
        return f"({', '.join(_setting_text(item, depth + 1) for item in value)})"
    if isinstance(value, functools.partial) or callable(value) and hasattr(value, "__qualname__"):
        return _stable_text(value, depth)
    return type(value).__qualname__


def _code_digest(code):
    """A digest of a code object that is the same in every run: its bytecode, names and
    constants, nested functions' code by their own digest (a code object's repr holds its
    address), sets of constants in sorted order (a set's order follows the run's hash seed)."""
    digest = hashlib.sha256(code.co_code)
    digest.update(repr(code.co_names).encode())
    for constant in code.co_consts:
        if hasattr(constant, "co_code"):
            digest.update(_code_digest(constant).encode())
        elif isinstance(constant, frozenset):
            digest.update(repr(sorted(map(repr, constant))).encode())
        else:
            digest.update(repr(constant).encode())
    return digest.hexdigest()[:16]


def _callback_settings(callback):
    """What ``callback`` was made with: its attributes named as its constructor's arguments,
    not those that a fit changes (EarlyStopping's ``best`` and ``wait``), which after a fit
    that a Ctrl-C stopped would name another fit when the same callbacks fit again (a
    notebook's cell run again), and leave the backup of the one interrupted behind."""
    try:
        parameters = inspect.signature(type(callback).__init__).parameters.values()
    except (TypeError, ValueError):   # a constructor without a signature: its class alone
        return {}
    from dlcore.callbacks import LambdaCallback
    given = vars(callback)
    if isinstance(callback, LambdaCallback):
        # its constructor's functions, by hook; an object called (one that counts the
        # epochs, or presses Ctrl-C once) by its class: a fit changes its attributes
        given = {**given, **{hook: function if function is None or isinstance(
            function, functools.partial) or hasattr(function, "__qualname__")
            else type(function) for hook, function in callback.functions.items()}}
    return {parameter.name: given[parameter.name] for parameter in parameters
            if parameter.name in given and parameter.name != "self"
            and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)}


def _hold_written_files(callbacks, held):
    """Hold, for the fit that starts, each file that a :class:`~dlcore.callbacks.ModelCheckpoint`
    or :class:`~dlcore.callbacks.CSVLogger` among ``callbacks`` writes (a lock file of its own
    beside it, removed at the end), waiting while another fit holds it; each lock is appended
    to ``held`` before the system takes it (the caller releases them however the fit ends).

    A grid search hands every fit of every candidate the same callbacks: fits at once
    (``n_jobs=2``) wrote one file in turn, one candidate's checkpoint over another's, their
    CSV rows lost to each other's. Fits that share a file now write it one after the other,
    each whole, as the fits of a search in turn do (the last, the refit of the best
    parameters, leaves its own). A fit started inside a fit that holds the file would wait
    for ever: ValueError in one line, where it runs in the same thread, or where its
    callbacks are copies made while that fit held the file (a callback's own
    ``cross_val_score`` clones the wrapper; its workers, threads or processes, get copies):
    each fit's id is in its lock files and on its callbacks while it holds them
    (:class:`dlcore.callbacks._WrittenByWrapperFits`), and a callback made on the file inside
    such a fit (in its thread, by its callback's code) is marked as made inside it. One given
    the very callbacks of that fit in another thread cannot be told from a fit that merely
    runs beside it: the notice of the wait says what to do if it never ends."""
    from dlcore.callbacks import (
        CSVLogger,
        ModelCheckpoint,
        _deepest_first,
        _holding_threads_here,
        _make_folders,
        _note_held_here,
    )
    from dlcore.io.atomic import FolderInUseError, FolderLock, lock_folder
    targets, writers = {}, []
    for callback in callbacks if isinstance(callbacks, (list, tuple)) else ():
        if isinstance(callback, (ModelCheckpoint, CSVLogger)):
            target = callback.filepath if isinstance(callback, ModelCheckpoint) else \
                callback.filename
            # the file itself, however named (a symbolic link in the path): a fit nested in
            # the fit holding it would else wait for that fit, in its own thread, for ever
            targets.setdefault(os.path.realpath(target), (type(callback).__name__, target))
            writers.append(callback)
    copied_inside = set().union(*(getattr(callback, "_copied_inside_fits", ())
                                  for callback in writers))
    fit_id = secrets.token_hex(8)
    told = False
    for path in sorted(targets):   # in one order: fits that share two files never deadlock
        kind, target = targets[path]
        if threading.get_ident() in _holding_threads_here(path):
            raise _nested_fit_error(kind, target)
        folder, name = os.path.split(path)
        lock = FolderLock()
        held.append(lock)
        lock.made, made, remade = (), [], 0
        while True:   # a CSVLogger's missing folder: the callback says so itself
            if kind == "ModelCheckpoint":
                # it makes a missing folder at its first save, too late for the lock: the
                # first fits of a search would write unlocked; made now, removed again while
                # empty (also where the end of the fit waited for removed it, empty)
                try:
                    _make_folders(folder, made)
                finally:
                    lock.made = _deepest_first(made)
            try:
                lock_folder(folder, f"pid {os.getpid()}: a fit with {kind}{_FIT_ID}{fit_id}",
                            into=lock, name=f".{name}{_LOCK_FILE_END}")
            except FolderInUseError as error:
                holder, _, holding_fit = error.holder.partition(_FIT_ID)
                if holding_fit in copied_inside:   # read each time: written after the lock
                    raise _nested_fit_error(kind, target, copied=True) from None
                if _holder_waits_for_parallel_work(path):
                    raise _nested_fit_error(kind, target, parallel=True) from None
                if not told:
                    print(_waiting_notice(kind, target, holder,
                                          bool(_holding_threads_here(path))),
                          file=sys.stderr, flush=True)
                    told = True
                time.sleep(WRITTEN_FILE_POLL_SECONDS)
                continue
            # the folder gone as the lock file was made (the end of a fit that had made it
            # and wrote nothing): unlocked, this fit and the next would write at once
            remade += 1
            if lock.descriptor is not None or kind != "ModelCheckpoint" or remade == 3 \
                    or os.path.isdir(folder):
                break
        lock.written = path, _note_held_here(path, fit_id)
    # marked once all are held: the fits it starts inside get copies of them (and a fit that
    # failed to hold them all marked nothing that its release would have to take back)
    for callback in writers:
        vars(callback).setdefault("_held_by_fits", set()).add(fit_id)
    if held:
        held[0].marked = (writers, fit_id)


#: How the name of a wrapper fit's lock file beside its ModelCheckpoint/CSVLogger file ends
_LOCK_FILE_END = ".dlcore-fit.lock"
#: What separates the holder's words in a wrapper fit's lock file from the fit's id
_FIT_ID = "; fit "


def _holder_waits_for_parallel_work(path):
    """Whether a fit of this process that holds ``path`` is, in its thread, inside a callback
    that waits for parallel work (joblib's: a ``cross_val_score(n_jobs=2)`` under the threading
    backend): a fit waiting for it there, given that fit's very callbacks, runs in one of
    those workers, and would wait for ever. A fit beside it (a threading grid search's other
    candidate) finds the holder training, or in a callback of its own that waits for no
    worker."""
    from dlcore.callbacks import _holding_threads_here
    frames = sys._current_frames()
    for thread in _holding_threads_here(path):
        frame, inside_parallel = frames.get(thread), False
        while frame is not None:   # from the newest call to the oldest
            module = frame.f_globals.get("__name__", "")
            if module == "joblib.parallel":
                inside_parallel = True
            elif inside_parallel and module == "dlcore.training":
                return True
            frame = frame.f_back
    return False


def _nested_fit_error(kind, target, copied=False, parallel=False):
    """The refusal of a fit started inside the fit that holds ``target`` (it would wait for
    it for ever)."""
    how = " (its callbacks were made, or copied, inside that fit as it ran)" if copied else \
        " (a worker of the parallel work that fit's callback waits for)" if parallel else ""
    return ValueError(f"{kind}'s file {target!r} is written by the fit this one was started "
                      f"in{how}, which holds it until it ends: give this fit's {kind} another "
                      "file")


def _waiting_notice(kind, target, holder, held_here):
    """The line a fit says as it starts waiting for another's file: which fit holds it (one
    of this very process, known from :data:`dlcore.callbacks._HELD_HERE`, not from the pid in
    the lock file, which in another container may be this one's), and what to do where the
    wait never ends: a fit started inside the holder (its callback's ``cross_val_score``,
    whose workers are other threads or processes) waits for it for ever."""
    where = " in this process (a thread's)" if held_here else ""
    return (f"waiting for another fit{where} writing {kind}'s file {target!r} ({holder}) to "
            "end: fits at once would overwrite each other's; if this fit was started inside "
            f"that one, it waits for ever: stop it and give it another {kind} file")


def _release_written_files(held):
    """Free the files :func:`_hold_written_files` held for a fit."""
    from dlcore.callbacks import _note_let_go_here
    writers, fit_id = getattr(held[0], "marked", ((), None)) if held else ((), None)
    for callback in writers:
        vars(callback).get("_held_by_fits", set()).discard(fit_id)
    for lock in held:
        if getattr(lock, "written", None) is not None:
            _note_let_go_here(*lock.written)
        lock.release()
        _remove_made_folders(lock)


#: The folders a wrapper fit made for its file that its end could not remove: another fit of
#: this process made its lock file there between this fit's removal of its own and of the
#: folder (it waited for the file). By the folder, the folders made with it (deepest first),
#: which the fit that holds a file in it last removes at its end, while empty.
_FOLDERS_LEFT = {}
_FOLDERS_LEFT_CHANGING = threading.Lock()


def _remove_made_folders(lock):
    """Remove, deepest first and while empty, the folders ``lock``'s fit made for its file
    and those a fit that ended as this one took the file left to it (:data:`_FOLDERS_LEFT`);
    what another fit's lock file keeps is left to that fit."""
    written = getattr(lock, "written", None)
    with _FOLDERS_LEFT_CHANGING:
        handed = _FOLDERS_LEFT.pop(os.path.dirname(written[0]), []) if written else []
        folders = list(dict.fromkeys([*getattr(lock, "made", ()), *handed]))
        for index, folder in enumerate(folders):
            try:
                os.rmdir(folder)
            except FileNotFoundError:
                continue
            except OSError:
                if _only_fits_lock_files_in(folder):   # another fit's: it removes them
                    _FOLDERS_LEFT[folder] = folders[index:]
                break


def _only_fits_lock_files_in(folder):
    """Whether ``folder`` holds wrapper fits' lock files and nothing else (what the user or
    a save put there keeps it)."""
    try:
        names = os.listdir(folder)
    except OSError:
        return False
    return bool(names) and all(name.endswith(_LOCK_FILE_END) for name in names)


#: The callbacks (their ids) that wrapper fits running now in this process train with
#: (:func:`_own_callbacks`)
_CALLBACKS_IN_FITS = set()
_CALLBACKS_CLAIMING = threading.Lock()


def _own_callbacks(options, claimed):
    """``options`` with each of dlcore's callbacks that steer their fit's network which a
    wrapper fit running now in this process trains with replaced by a copy for this fit; the
    callbacks this fit takes are appended to ``claimed`` (:func:`_let_go_of_callbacks` frees
    them however the fit ends).

    A grid search under joblib's threading backend (or fits in threads of the user's own)
    hands its fits at once the very callbacks of its fit parameters: each fit's
    ``set_model`` took the other's EarlyStopping, ReduceLROnPlateau or LearningRateScheduler
    (``_steers_its_network``), which then stopped, restored or slowed the other fit's
    network, and their counts mixed (cv_results_ that differed from ``n_jobs=1``'s). Fits at
    once now each have their own, as the worker processes of ``n_jobs=2`` get their own
    pickles; fits in turn share them as before. Every other callback is the very one given,
    as Keras's fits in threads share it: what the user's own callback records, it records of
    every fit (a copy kept one fit's records from it, and could not be made of one holding a
    lock or an open file), a ModelCheckpoint's or CSVLogger's file the fits write one after
    the other (:func:`_hold_written_files`), and a BackupAndRestore each fit replaces by its
    own (:meth:`_SKLearnWrapper._own_backup`)."""
    callbacks = options.get("callbacks")
    if not isinstance(callbacks, (list, tuple)):
        return options
    own = []
    with _CALLBACKS_CLAIMING:
        for callback in callbacks:
            if getattr(callback, "_steers_its_network", False) and callback not in claimed:
                if id(callback) in _CALLBACKS_IN_FITS:
                    callback = _copy_for_this_fit(callback)
                _CALLBACKS_IN_FITS.add(id(callback))
                claimed.append(callback)
            own.append(callback)
    return {**options, "callbacks": own}


def _copy_for_this_fit(callback):
    """A copy of ``callback``, which another running fit uses, without that fit's network
    (it trains it as the copy is made); one line where the callback cannot be copied."""
    try:
        return deepcopy(callback, {id(getattr(callback, "model", None)): None})
    except (TypeError, copy_error, pickle.PicklingError) as error:
        name = type(callback).__name__
        raise ValueError(f"{name} is used by another wrapper fit running now in this process, "
                         f"and this fit cannot train with a copy of its own ({error}): give "
                         f"each fit its own {name}") from None


def _let_go_of_callbacks(claimed):
    """Free the callbacks :func:`_own_callbacks` took for a fit."""
    with _CALLBACKS_CLAIMING:
        for callback in claimed:
            _CALLBACKS_IN_FITS.discard(id(callback))


#: How often a wrapper fit waiting for another's file (:func:`_hold_written_files`) looks
WRITTEN_FILE_POLL_SECONDS = 0.1


class _SKLearnWrapper(RoutesSampleWeight, ConfigIsParams, FeatureNamesIn, ParamsMixin):
    """What both wrappers share: building the network, fitting it, checking the rows."""

    def __init__(self, model, warm_start=False, model_kwargs=None, fit_kwargs=None):
        self._init_params(locals())   # checked in fit (scikit-learn's rule)

    def _check_params(self):
        from dlcore.functional import Model
        if not (isinstance(self.model, Model) or callable(self.model)):
            raise TypeError(f"model must be a compiled dlcore network or a function "
                            f"model(X, y, **model_kwargs) returning one, got "
                            f"{type(self.model).__name__}")
        check_bool(self.warm_start, "warm_start")
        for name in ("model_kwargs", "fit_kwargs"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, dict):
                raise TypeError(f"{name} must be a dict of keyword arguments or None, got "
                                f"{type(value).__name__}")

    def _rows(self, X, fitted_width=False):
        """``X`` as float32, checked (one line naming the problem): 2-D rows (n, n_features),
        or samples of a network that takes images, (n, C, H, W) or (n, H, W)."""
        name = type(self).__name__
        shape = getattr(X, "shape", None)
        if shape is not None and len(shape) > 2:
            return self._images(X, fitted_width)
        X = check_matrix(X, "X", name)
        if fitted_width and getattr(self, "input_shape_", (None,))[1:]:
            raise ValueError(f"X has shape {X.shape}, but {name} was fitted on samples of "
                             f"shape {self.input_shape_}: give X of shape (n, "
                             f"{', '.join(map(str, self.input_shape_))})")
        width = self.n_features_in_ if fitted_width else None
        check_width(X, "X", name, width)
        return check_data(X, "X", n_columns=width)

    def _images(self, X, fitted_width):
        """``X`` of more than two dimensions as float32, checked: the sample shape is the one
        fitted on (with ``fitted_width``), its values finite."""
        name = type(self).__name__
        array = check_matrix(X, "X", name)
        if 0 in array.shape:
            raise ValueError(f"X is empty (shape {array.shape}): it needs at least one sample "
                             f"of at least one value")
        if fitted_width and array.shape[1:] != self.input_shape_:
            raise ValueError(f"X has samples of shape {array.shape[1:]}, but {name} was "
                             f"fitted on samples of shape {self.input_shape_}"
                             f"{_channels_last_hint(array.shape, self.input_shape_)}")
        rows = check_data(array.reshape(len(array), -1), "X")
        return rows.reshape(array.shape)

    def _check_input_shape(self, network, X):
        """Images (X of more than two dimensions) only for a network that takes samples of
        their shape: refused before training otherwise, with the fix."""
        expected = tuple(network.input_shape)
        if X.ndim <= 2 or X.shape[1:] == expected:
            return
        hint = _channels_last_hint(X.shape, expected) or ": give it samples of that shape"
        raise ValueError(f"X has samples of shape {X.shape[1:]}, but the network takes "
                         f"{expected}{hint}")

    def _build(self, X, y):
        """A fresh compiled network: ``model``'s config again, or ``model(X=X, y=y, ...)``."""
        from dlcore.functional import Model
        if isinstance(self.model, Model):
            network = type(self.model).from_config(self.model.get_config())
        else:
            network = self.model(X=X, y=y, **(self.model_kwargs or {}))
        if not isinstance(network, Model):
            raise TypeError(f"model(X, y, ...) must return a dlcore network (Sequential or "
                            f"Model), got {type(network).__name__}")
        if network.loss is None or network.optimizer is None:
            raise RuntimeError("the network must be compiled, with a loss and an optimizer: "
                               "call network.compile(loss, optimizer) before returning it")
        return network

    def fit(self, X, y, **kwargs):
        """Build the network (or, with ``warm_start``, keep the one fitted before) and train
        it on (X, y) with ``fit_kwargs`` updated by ``kwargs`` (``verbose=0`` unless given).
        Returns self. A fit that ends in an exception (Ctrl-C, bad data, a failed callback)
        leaves the wrapper as it found it: the classes, feature names and network of one fit
        never mix with another's (the labels of a refit on other classes were mapped onto the
        network fitted before)."""
        found = dict(vars(self))
        try:
            self._check_params()
            _check_fit_options(self.fit_kwargs, kwargs, type(self).__name__)
            self._note_feature_names(X, reset=True)
            given, X = X, self._rows(X)
            warm = self.warm_start and hasattr(self, "model_")
            targets = self._targets(y, reset=not warm)
            if len(targets) != len(X):
                raise ValueError(f"X has {count(len(X), 'row')} but y has {len(targets)}")
            if warm and X.shape[1:] != self.input_shape_:
                raise ValueError(f"X has {_samples_text(X.shape[1:])}; the network fitted "
                                 f"before (warm start) takes {_samples_text(self.input_shape_)}")
            network = self.model_ if warm else self._build(X, targets)
            if not network.built:
                network.build(X.shape[1:])
            self._check_input_shape(network, X)
            self._check_output_width(network, int(np.prod(targets.shape[1:])))
            self._check_network(network)
            # the rows are float32 by now: the network's fit would not see that they were pixels
            warn_of_unscaled_pixels(network, given)
            options = {"verbose": 0, **(self.fit_kwargs or {}), **kwargs}
            options = self._own_backup(options, X, targets, network)
            held, claimed = [], []
            try:
                options = _own_callbacks(options, claimed)
                _hold_written_files(options.get("callbacks"), held)
                self.history_ = network.fit(X, targets, **options).history
            finally:
                _release_written_files(held)
                _let_go_of_callbacks(claimed)
            # n_features_in_: the values of a sample, X.shape[1] for rows (scikit-learn's)
            self.model_, self.n_features_in_ = network, int(np.prod(X.shape[1:]))
            self.input_shape_ = tuple(X.shape[1:])
            return self
        except BaseException:   # not half of this fit over the last one
            self.__dict__.clear()
            self.__dict__.update(found)
            raise

    def _own_backup(self, options, X, targets, network):
        """``options`` with a :class:`dlcore.callbacks.BackupAndRestore` among its callbacks
        replaced by this fit's own (:meth:`~dlcore.callbacks.BackupAndRestore.for_fit`): a
        grid search hands every fit of every candidate the same callback, whose one backup
        the fits at once (``n_jobs``) would overwrite and restore as their own, and which a
        search run again after an interruption would restore into its first fit. The folder
        is named by what makes this fit this one (the data, the wrapper's parameters, the
        fit's options and the epochs the network had before it: a warm start's second fit on
        the same data is another fit), the same in a run again, and in a warm start's fit run
        again on the network its interruption left (a notebook's cell run again: the epochs
        before are those the interrupted fit began with, which the network remembers)."""
        from dlcore.callbacks import BackupAndRestore
        callbacks = options.get("callbacks")
        if not isinstance(callbacks, (list, tuple)) or not any(
                isinstance(callback, BackupAndRestore) for callback in callbacks):
            return options
        backup = next(callback for callback in callbacks
                      if isinstance(callback, BackupAndRestore))
        epochs_before = network.epochs_done
        interrupted = vars(network).get("_backup_fit_started")   # a fit that did not end
        if interrupted is not None and not interrupted[3] and interrupted[1] <= epochs_before and \
                os.path.dirname(interrupted[0]) == os.path.realpath(backup.backup_dir):
            epochs_before = interrupted[1]
        digest = hashlib.sha256(f"after {int(epochs_before)} epochs".encode())
        for array in (X, targets):
            digest.update(_stable_text(array).encode())
        params = {name: value for name, value in self.get_params(deep=False).items()
                  if name != "fit_kwargs"}
        digest.update(_stable_text([params, {name: value for name, value in options.items()
                                             if name != "verbose"}]).encode())
        key = digest.hexdigest()[:16]
        return {**options, "callbacks": [
            callback.for_fit(key) if isinstance(callback, BackupAndRestore) else callback
            for callback in callbacks]}

    def _check_output_width(self, network, width):
        """One output unit per class (per target): refused before training otherwise (a
        network without an input shape is built on X's first)."""
        shape = network.output_shape
        if int(np.prod(shape)) != width:
            what, each = (("classes", "class") if isinstance(self, SKLearnClassifier)
                          else ("targets", "target"))
            raise ValueError(f"the network gives {count(int(np.prod(shape)), 'output')} for "
                             f"{width} {what}: its last layer needs one unit per {each} "
                             f"(y.shape[1] in a model function)")

    def _check_network(self, network):
        """What else a wrapper asks of the network, before it trains (nothing here)."""

    def _check_fitted(self):
        if not hasattr(self, "model_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call "
                                 f"fit(X, y) first")

    def _outputs(self, X):
        """The network's outputs on ``X``, (n, n_outputs)."""
        self._check_fitted()
        self._note_feature_names(X, reset=False)
        rows = self._rows(X, fitted_width=True)
        outputs = np.asarray(one_output(self.model_.predict(rows)))
        return outputs.reshape(len(outputs), -1)

    # -- copies (pickle, deepcopy, joblib) ------------------------------------------------
    def get_state(self):
        """The fitted network (its class, config, state and history) and what maps its
        outputs back (the classes)."""
        self._check_fitted()
        network = self.model_
        return {"network": {"class": type(network), "config": network.get_config(),
                            "state": network.get_state(), "history": network.history},
                "history": self.history_, "n_features_in": self.n_features_in_,
                "input_shape": self.input_shape_, **self._output_state()}

    def set_state(self, state):
        saved = state["network"]
        network = saved["class"].from_config(saved["config"])
        network.set_state(saved["state"])
        network.history = saved["history"]
        self.model_, self.history_ = network, state["history"]
        self.n_features_in_ = int(state["n_features_in"])
        self.input_shape_ = tuple(state.get("input_shape", (self.n_features_in_,)))
        self._set_output_state(state)

    def __reduce_ex__(self, protocol):
        return reduce_through_state(self, fitted=hasattr(self, "model_"))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags


class SKLearnClassifier(AccuracyScore, LogProbabilities, _SKLearnWrapper):
    """A dlcore network as a scikit-learn classifier (module docstring; Keras's
    ``keras.wrappers.SKLearnClassifier``).

    Parameters
    ----------
    model : a compiled dlcore ``Sequential`` or ``Model``, or a function ``model(X, y,
        **model_kwargs)`` returning one; its outputs, one per class in the order of
        ``classes_`` (a softmax layer, with "categorical_crossentropy" or "cross_entropy")
    warm_start : bool, a second ``fit`` trains the network fitted before on, instead of a
        fresh one
    model_kwargs : dict or None, keyword arguments of a ``model`` function
    fit_kwargs : dict or None, keyword arguments of the network's ``fit`` (epochs,
        batch_size, validation_split, callbacks, ...); ``fit``'s own take precedence

    Attributes
    ----------
    model_ : the fitted network
    history_ : dict, its ``fit``'s history (loss per epoch, ...)
    classes_ : (n_classes,) array, the sorted labels of ``y`` (any labels: strings too)
    n_features_in_ : int
    """

    def _targets(self, y, reset):
        """``y`` one-hot encoded over ``classes_``, float32 (n, n_classes)."""
        from dlcore.validation import data_conversion_warning
        classes, indices = check_class_labels(y, type(self).__name__,
                                              data_conversion_warning())
        if reset:
            self.classes_ = classes
        elif not np.array_equal(classes, self.classes_):
            raise ValueError(f"y holds the classes {classes.tolist()[:10]}, the network fitted "
                             f"before (warm start) {self.classes_.tolist()[:10]}: give every "
                             f"class, or set warm_start=False")
        return np.eye(len(classes), dtype=np.float32)[indices]

    def _output_state(self):
        return {"classes": np.array(self.classes_)}

    def _set_output_state(self, state):
        self.classes_ = np.asarray(state["classes"])

    def decision_function(self, X):
        """The network's outputs (n, n_classes), the larger the likelier; with two classes
        scikit-learn's (n,) score of the second, output 1 minus output 0."""
        outputs = self._outputs(X)
        return outputs[:, 1] - outputs[:, 0] if len(self.classes_) == 2 else outputs

    def predict_proba(self, X):
        """Class probabilities (n, n_classes) in the order of ``classes_``, float64 rows
        summing to 1: the network's outputs where it ends in a softmax, their softmax where
        they are logits (a loss with ``from_logits=True``); refused in one line for a network
        whose outputs are neither. Keras's wrapper has none; scikit-learn's soft voting,
        ``roc_auc`` scoring and calibration need it."""
        from dlcore import Sequential
        from dlcore.backend.reference import softmax
        from dlcore.functional import final_activation
        outputs = self._outputs(X).astype(np.float64)
        network = self.model_
        last = network.layers[-1] if isinstance(network, Sequential) \
            else network._output_layer(0)
        if getattr(network.loss, "from_logits", False):
            outputs = softmax(outputs)
        elif final_activation(last) != "softmax":
            raise ValueError(f"predict_proba needs a network whose outputs are probabilities (a "
                             f"softmax last layer) or logits (a loss with from_logits=True); "
                             f"its last layer {last.name!r} ends in "
                             f"{final_activation(last) or 'no activation'}")
        return outputs / outputs.sum(axis=1, keepdims=True)

    def predict(self, X):
        """The class of each row's largest output, as labels of ``classes_``."""
        outputs = self._outputs(X)
        return self.classes_[outputs.argmax(axis=1)]

    def __sklearn_tags__(self):
        from sklearn.utils import ClassifierTags
        tags = super().__sklearn_tags__()
        tags.estimator_type = "classifier"
        # how well it does is the network's and the epochs': a small one may score poorly
        tags.classifier_tags = ClassifierTags(poor_score=True)
        return tags


class SKLearnRegressor(_SKLearnWrapper):
    """A dlcore network as a scikit-learn regressor (module docstring; Keras's
    ``keras.wrappers.SKLearnRegressor``): ``y`` (n,) or (n, n_outputs) real targets, the
    network's outputs as predictions (1-D for a 1-D ``y``), ``score`` the coefficient of
    determination R^2.

    Parameters and attributes as :class:`SKLearnClassifier`'s, without ``classes_``.
    """

    def _targets(self, y, reset):
        """``y`` as float32 (n, n_outputs); remembers whether it was 1-D (a warm start keeps
        what the first fit saw)."""
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target "
                             f"y is None: a regressor is fitted on (X, y)")
        targets = np.asarray(y)
        ndim = targets.ndim
        if ndim == 1:
            targets = targets.reshape(-1, 1)
        targets = check_data(check_matrix(targets, "y", type(self).__name__), "y",
                             columns_meaning="outputs")
        if reset:
            self.target_ndim_ = ndim
        return targets

    def _output_state(self):
        return {"target_ndim": self.target_ndim_}

    def _set_output_state(self, state):
        self.target_ndim_ = int(state["target_ndim"])

    def predict(self, X):
        """The network's outputs, (n,) for a network fitted on a 1-D y, else (n, n_outputs),
        float64 (scikit-learn's regressors predict in double precision)."""
        outputs = self._outputs(X).astype(np.float64)
        return outputs.ravel() if self.target_ndim_ == 1 and outputs.shape[1] == 1 else outputs

    def score(self, X, y, sample_weight=None):
        """R^2 = 1 - sum w (y - y_hat)^2 / sum w (y - mean_w y)^2, averaged over the outputs
        (scikit-learn's ``RegressorMixin.score``)."""
        predicted = np.asarray(self.predict(X), dtype=np.float64)
        truth, weights = score_targets(len(predicted), y, sample_weight)
        truth = np.asarray(truth, dtype=np.float64).reshape(len(truth), -1)
        predicted = predicted.reshape(truth.shape)
        weights = np.ones(len(truth)) if weights is None else weights
        mean = np.average(truth, axis=0, weights=weights)
        residual = (weights[:, None] * (truth - predicted) ** 2).sum(axis=0)
        total = (weights[:, None] * (truth - mean) ** 2).sum(axis=0)
        # scikit-learn's convention for a constant target: 1 when predicted exactly, else 0
        scores = np.where(total > 0, 1 - residual / np.where(total > 0, total, 1),
                          np.where(residual == 0, 1.0, 0.0))
        return float(scores.mean())

    def __sklearn_tags__(self):
        from sklearn.utils import RegressorTags
        tags = super().__sklearn_tags__()
        tags.estimator_type = "regressor"
        tags.regressor_tags = RegressorTags(poor_score=True)
        tags.target_tags.multi_output = True   # y (n, n_outputs): one output unit each
        return tags


class SKLearnTransformer(TransformerOutput, _SKLearnWrapper):
    """A dlcore network as a scikit-learn transformer (module docstring; Keras's
    ``keras.wrappers.SKLearnTransformer``): ``fit(X, y)`` trains it on real targets ``y`` (n,)
    or (n, n_outputs) as :class:`SKLearnRegressor` does, or, with ``y`` None or
    ``target="X"``, to reproduce ``X`` (an autoencoder: then its last layer has ``X.shape[1]``
    units); ``transform(X)`` is
    the network's outputs (n, n_outputs), or with ``output_layer`` the outputs of that layer
    (an autoencoder's code), float32, named ``sklearntransformer0``, ... by
    ``get_feature_names_out`` (pandas or polars tables after ``set_output``).

    Parameters
    ----------
    model, warm_start, model_kwargs, fit_kwargs : as :class:`SKLearnClassifier`'s
    output_layer : str, int or None
        The layer whose outputs ``transform`` gives, by name or by index in the network's
        ``layers`` (``model.get_layer``'s two ways): an autoencoder fitted without ``y`` gives
        its code with ``output_layer="code"`` (its bottleneck ``Dense``'s name), as a Keras
        user takes the tutorial's ``encoder = Model(input, code_layer.output)``, and not the
        reconstruction of ``X``; None (the default, Keras's wrapper): the network's outputs.
        A layer the network does not have is refused before it trains.
    target : {"y", "X"}
        What the network learns to output. "y" (the default, Keras's wrapper): the targets
        ``y`` given to ``fit``, or ``X`` when ``y`` is None. "X": ``X`` itself, an autoencoder,
        and ``fit`` ignores ``y`` as scikit-learn's unsupervised transformers do; what a
        ``Pipeline`` or ``cross_val_score`` needs, since they hand every step the labels
        (with "y" the network would learn to output the labels). A ``model`` function gets
        ``y=X`` then, so that ``y.shape[1]`` is the width of its reconstruction.

    Attributes as :class:`SKLearnClassifier`'s, without ``classes_``.
    """

    #: The values of ``target``.
    TARGETS = ("y", "X")
    #: fit only: a transformer has no score (no set_score_request), as scikit-learn's
    _ROUTED_METHODS = ("fit",)

    def __init__(self, model, warm_start=False, model_kwargs=None, fit_kwargs=None,
                 output_layer=None, target="y"):
        self._init_params(locals())   # checked in fit (scikit-learn's rule)

    def _check_params(self):
        super()._check_params()
        if not (isinstance(self.target, str) and self.target in self.TARGETS):
            raise ValueError(f"target must be 'y' (the network learns y, Keras's wrapper) or "
                             f"'X' (an autoencoder, which ignores y), got {self.target!r}")
        layer = self.output_layer
        if not (layer is None or isinstance(layer, str)
                or (isinstance(layer, (int, np.integer)) and not isinstance(layer, bool))):
            raise TypeError(f"output_layer must be a layer's name, its index in the network's "
                            f"layers, or None (the network's outputs), got {layer!r}")

    def _check_network(self, network):
        self._feature_layer(network)

    def _feature_layer(self, network):
        """The layer ``output_layer`` names in ``network`` (ValueError in one line naming the
        layers there are), or None for the network's outputs."""
        layer = self.output_layer
        if layer is None:
            return None
        try:
            if isinstance(layer, str):
                return network.get_layer(layer)
            return network.get_layer(index=int(layer))
        except ValueError as error:
            raise ValueError(f"output_layer={layer!r}: {error}") from None

    #: what a transformer fitted on class labels is told: a Pipeline hands every step the
    #: labels, which an autoencoder must not learn
    _REPRODUCE_X = ("pass target='X' to train it to reproduce X (an autoencoder; a Pipeline "
                    "or cross_val_score hands every step the labels)")

    def _targets(self, y, reset):
        """``y`` as float32 (n, n_outputs), or None (the rows themselves: see :meth:`fit`)."""
        if y is None:
            return None
        targets = np.asarray(y)
        if targets.dtype.kind in "USO" and any(isinstance(value, str)
                                               for value in targets.ravel()):
            raise ValueError(f"y holds labels (strings) that {type(self).__name__}(target='y') "
                             f"would train its network to output: {self._REPRODUCE_X}")
        targets = targets.reshape(-1, 1) if targets.ndim == 1 else targets
        if targets.ndim > 2:   # images to reproduce (a convolutional autoencoder's)
            rows = check_data(targets.reshape(len(targets), -1), "y", columns_meaning="outputs")
            return rows.reshape(targets.shape)
        return check_data(check_matrix(targets, "y", type(self).__name__), "y",
                          columns_meaning="outputs")

    def fit(self, X, y=None, **kwargs):
        """As :meth:`SKLearnRegressor.fit`; ``y`` None, or any ``y`` with ``target="X"``,
        trains the network to reproduce ``X``. Returns self."""
        self._check_params()
        # an autoencoder's target is X: the labels a Pipeline hands every step are not its
        return super().fit(X, X if y is None or self.target == "X" else y, **kwargs)

    def _check_output_width(self, network, width):
        try:
            super()._check_output_width(network, width)
        except ValueError as error:
            raise ValueError(f"{error}; or {self._REPRODUCE_X}") from None

    def _output_state(self):
        return {}

    def _set_output_state(self, state):
        pass

    def _feature_network(self):
        """The fitted network, or with ``output_layer`` the network up to that layer, sharing
        its weights (Keras's ``Model(model.inputs, layer.output)``)."""
        from dlcore.functional import Model
        layer = self._feature_layer(self.model_)
        if layer is None:
            return self.model_
        return Model(self.model_.inputs, layer.output)

    def _n_features_out(self):
        return int(np.prod(self._feature_network().output_shape))

    def transform(self, X):
        """The network's outputs on ``X``, or those of ``output_layer``, (n, n_features)
        float32."""
        self._check_fitted()
        if self.output_layer is None:
            return self._wrap_output(X, self._outputs(X))
        self._note_feature_names(X, reset=False)
        rows = self._rows(X, fitted_width=True)
        # the feature network shares the fitted network's layers, and so their buffers
        with network_lock(self.model_):
            outputs = np.asarray(self._feature_network().predict(rows))
        return self._wrap_output(X, outputs.reshape(len(outputs), -1))

    def fit_transform(self, X, y=None, **kwargs):
        """``fit(X, y, **kwargs)`` then ``transform(X)``."""
        return self.fit(X, y, **kwargs).transform(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
