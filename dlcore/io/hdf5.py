"""HDF5 model files: ``save(model, path)``, ``load(path)`` and ``describe(path)``.

A dlcore model file is an ordinary HDF5 file whose layout is documented in ``docs/hdf5-format.md``,
so h5py, ``h5dump`` and MATLAB's ``h5read`` open it without dlcore. There is no pickle anywhere:
a file holds arrays, numbers and strings only, and names its model class as a string; loading
builds only classes that the program registered with :func:`register_model`, so opening a file
never runs code that came with the file.

The model <-> file protocol
---------------------------
A model class opts in by registering itself and implementing four methods::

    @register_model                            # registered under cls.__name__
    class BernoulliRBM:
        def get_config(self) -> dict: ...      # JSON-serialisable hyperparameters
        @classmethod
        def from_config(cls, config): ...      # optional; without it, load calls cls(**config)
        def get_state(self) -> dict: ...       # nested dict, mapped to HDF5 as below
        def set_state(self, state) -> None: ...  # validate everything first, then assign
        history: dict                          # optional: name -> per-epoch list of numbers

``get_state()`` returns a nested dict whose values map onto HDF5 objects:

- ``np.ndarray`` of bool, int, uint or float16/32/64 -> a dataset; the dtype is kept (float32
  stays float32);
- ``dict`` -> a group;
- ``bool``, ``int``, ``float``, ``str`` and the NumPy scalar types -> an attribute of the
  enclosing group.

Anything else (``None``, lists, objects) is a ``TypeError`` at save time that names the key:
leave a key out rather than storing ``None``. Top-level arrays are the public parameters, named
as in the API (``W``, ``visible_bias``, ``hidden_bias`` for an RBM); what is needed only to resume
training (momenta, persistent chains, the RNG position) conventionally sits under ``training/``.

``set_state(state)`` receives the same nested dict read back: arrays as NumPy arrays, attributes
as Python scalars. It must check every shape and dtype before it assigns anything, and raise
``ValueError`` naming the dataset, its shape and the expected one (:func:`require_array` does
exactly that). ``load`` turns a ``ValueError``, ``KeyError``, ``TypeError`` or
``ArithmeticError`` raised by ``from_config`` or ``set_state`` into a :class:`ModelFileError`
that names the file, so a bad file gives one clear error and never a half-built model.

``model.history`` (when the model has one) is a dict of per-epoch lists; each list is saved as a
1-D float64 dataset under the group ``history`` (lists may differ in length; ``None`` is saved as
NaN) and is assigned back after ``set_state`` as a dict of lists of Python floats.

The root group carries the attributes ``format = "dlcore-model"``, ``format_version`` (int),
``dlcore_version``, ``model_class``, ``hyperparameters`` (``get_config()`` as JSON with sorted
keys) and ``created`` (ISO-8601, UTC), and, when the model has a ``training_record_`` dict,
``training_record``: that dict as a JSON object (what the model was trained on; ``load`` assigns
it back as ``model.training_record_``; files without it load as before and the model then has no
such attribute). Strings are variable-length UTF-8, which h5py, h5dump and MATLAB all read.

Reading is guarded (:mod:`dlcore.io.guarded`): ``load`` and ``describe`` follow hard links only,
bound group nesting, object counts and the size and nesting depth of JSON, read a dataset only
after checking that its dtype is numeric and that its declared size fits in the file, and give
every failure as a one-line :class:`ModelFileError`. For dlcore's own classes the hyperparameters
are type-checked and every declared shape is compared with them before anything is read or
built (:mod:`dlcore.io.layouts`), and parameters must be finite. A class of your own gets the
generic guards; its ``set_state`` does the shape checks, and NaN in its state is allowed.

Writes are atomic: the file is written to a temporary file beside the target, flushed to disk
and then renamed onto the target with ``os.replace``, so an interrupted save leaves the previous
file intact and no temporary file behind (see :func:`atomic_output_path`).
"""
from __future__ import annotations

import contextlib
import datetime
import json
import math
import numbers
import os
import stat
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import h5py
import numpy as np

from dlcore._version import __version__ as DLCORE_VERSION
from dlcore.io.atomic import atomic_output_path
from dlcore.io.errors import ModelFileError
from dlcore.io.guarded import (
    DAMAGED_FIX,
    MAX_ATTRIBUTES,
    MAX_JSON_BYTES,
    MAX_OBJECTS,
    ModelFileReader,
    name_text,
    parse_json,
    shape_text,
    size_text,
)
from dlcore.io.layouts import (
    CONFIG_FIX,
    LAYOUT_CHECKS,
    MAX_GRAPH_NODES,
    MAX_LAYERS,
    MAX_SIZE,
    MAX_UNSTORED_WEIGHTS,
    STACK_LAYERS,
    unstored_chain_problem,
    unstored_layers_problem,
)
from dlcore.wording import count, with_article

__all__ = [
    "FEATURE_NAMES",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "TRAINING_RECORD",
    "ModelFileError",
    "atomic_output_path",
    "describe",
    "json_text",
    "load",
    "register_model",
    "registered_models",
    "require_array",
    "save",
    "why_load_is_not_checked",
]

FORMAT_NAME = "dlcore-model"
#: The newest layout this dlcore writes and reads; files with a larger number are refused.
#: A file is written with the smallest version that holds its model (:func:`_format_version`).
FORMAT_VERSION = 2

ROOT_ATTRIBUTES = ("format", "format_version", "dlcore_version", "model_class",
                   "hyperparameters", "created")
#: Root attributes only shown to people: a damaged one is left out rather than refused.
INFORMATIONAL_ROOT_ATTRIBUTES = frozenset({"dlcore_version", "created"})
HISTORY_GROUP = "history"
#: The optional root attribute recording what a model was trained on (JSON object, see save).
TRAINING_RECORD = "training_record"
MAX_TRAINING_RECORD_BYTES = 2**20
#: A history series holds one value per epoch: no file may hold a longer one (a million epochs
#: cost 32 MB as Python floats, which ``model.history`` holds).
MAX_HISTORY_LENGTH = 1_000_000
MAX_TRAINING_RECORD_DEPTH = 16
#: The optional root attribute naming the columns of the table a model was fitted on.
FEATURE_NAMES = "feature_names_in"
RESERVED_ROOT_NAMES = frozenset(ROOT_ATTRIBUTES) | {
    HISTORY_GROUP, TRAINING_RECORD, FEATURE_NAMES}

# Variable-length UTF-8: the one string type that h5py, h5dump and MATLAB's h5readatt all read
# back as text (fixed-length strings come back as padded bytes in some of them).
UTF8_STRING = h5py.string_dtype("utf-8")
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# Float arrays up to this many elements get min/max/mean in describe(): reading them is cheap.
DESCRIBE_STATISTICS_MAX_ELEMENTS = 1_000_000
PROTOCOL_METHODS = ("get_config", "get_state", "set_state")
# What a model's from_config/set_state raise for a file they cannot accept (see the protocol);
# ArithmeticError too: int(inf) in a set_state raises OverflowError.
MODEL_REJECTION_ERRORS = (ValueError, KeyError, TypeError, ArithmeticError)

_MODEL_REGISTRY: dict[str, type] = {}
#: dlcore's own registered classes that ``import dlcore`` does not import (they belong to a
#: command), and the dlcore module that defines each. ``load`` imports the module when a file
#: names such a class: a fixed table of dlcore's code, so a file still only chooses among
#: classes dlcore ships and never names a module to import.
DLCORE_MODELS_OUTSIDE_THE_PACKAGE_TOP = {
    "RegularisationRows": "dlcore.cli.homework_regularisation",
}


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------
def register_model(cls: type) -> type:
    """Class decorator: make ``cls`` saveable and loadable under the name ``cls.__name__``.

    The class must define ``get_config``, ``get_state`` and ``set_state`` (and may define the
    classmethod ``from_config``). Registering a second class under a name already taken is an
    error, except for a new version of the same class (same module and qualified name), as
    ``importlib.reload`` or re-running a notebook cell produces.

    Returns
    -------
    cls, unchanged.
    """
    if not isinstance(cls, type):
        raise TypeError(f"register_model decorates a class; got {cls!r}")
    missing = [name for name in PROTOCOL_METHODS if not callable(getattr(cls, name, None))]
    if missing:
        raise TypeError(f"cannot register {cls.__qualname__} as a model: it lacks "
                        f"{', '.join(missing)} (the dlcore.io protocol needs "
                        f"{', '.join(PROTOCOL_METHODS)})")
    name = cls.__name__
    previous = _MODEL_REGISTRY.get(name)
    if previous is not None and _class_identity(previous) != _class_identity(cls):
        raise ValueError(f"model class name {name!r} is already registered by "
                         f"{_class_identity(previous)}; rename {_class_identity(cls)}")
    _MODEL_REGISTRY[name] = cls
    return cls


def registered_models() -> dict[str, type]:
    """Return a copy of the registry: model class name -> class."""
    return dict(_MODEL_REGISTRY)


def _class_identity(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _is_registered(cls: type) -> bool:
    """Whether ``dlcore.save`` writes instances of ``cls``: the registered class, or that class
    as it was before its module was reloaded (``importlib.reload``, IPython's ``%autoreload``,
    which leave a notebook's models of the old class object; the registered one reads their
    file)."""
    registered = _MODEL_REGISTRY.get(cls.__name__)
    return registered is cls or (registered is not None
                                 and _class_identity(registered) == _class_identity(cls))


# --------------------------------------------------------------------------------------------
# Helper for set_state implementations
# --------------------------------------------------------------------------------------------
def require_array(state: Mapping[str, Any], key: str, shape: tuple, *,
                  kind: str = "f") -> np.ndarray:
    """Fetch the array ``key`` from a state dict read back from a file, checking its shape.

    Meant for ``set_state``: call it for every array first, assign afterwards, and a bad file
    never leaves a half-updated model.

    Parameters
    ----------
    state : the nested dict given to ``set_state``
    key : str     ``"W"``, or a path into nested groups such as ``"training/velocity_W"``
    shape : tuple  the expected shape; ``None`` in a position accepts any length there
    kind : str     the allowed NumPy dtype kinds: ``"f"`` float, ``"i"``/``"u"`` integer,
                   ``"b"`` bool (e.g. ``"iu"``)

    Returns
    -------
    np.ndarray, the array as stored (no copy, no cast).

    Raises
    ------
    ValueError naming the dataset, its shape or dtype and the expected one.
    """
    value: Any = state
    for part in key.split("/"):
        if not isinstance(value, Mapping) or part not in value:
            raise ValueError(f"dataset {key!r} is missing (expected shape {shape_text(shape)})")
        value = value[part]
    if not isinstance(value, np.ndarray):
        # ValueError, not TypeError: set_state reports every unacceptable file so (protocol)
        raise ValueError(f"{key!r} should be a dataset of shape {shape_text(shape)}; "  # noqa: TRY004
                         f"found {type(value).__name__} {value!r}")
    shape_matches = value.ndim == len(shape) and all(
        expected is None or actual == expected for actual, expected in zip(value.shape, shape))
    if not shape_matches:
        raise ValueError(f"dataset {key!r} has shape {value.shape}; "
                         f"expected {shape_text(shape)}")
    if value.dtype.kind not in kind:
        raise ValueError(f"dataset {key!r} has dtype {value.dtype}; expected dtype kind "
                         f"{' or '.join(repr(k) for k in kind)}")
    return value


# --------------------------------------------------------------------------------------------
# save
# --------------------------------------------------------------------------------------------
def save(model: Any, path: str | os.PathLike, format: str | None = None) -> None:  # noqa: A002
    """Write ``model`` to the HDF5 file ``path`` atomically (schema: docs/hdf5-format.md).

    ``format="keras"`` writes a built Sequential or Model as a Keras file instead: a Keras 3
    archive when ``path`` ends in ``.keras`` (:mod:`dlcore.io.keras_archive`), else a legacy
    Keras HDF5 model file (:func:`dlcore.io.keras.save_keras`). Without ``format`` the name
    tells it, as Keras's ``save_model`` and ``dlcore convert`` tell it: a ``.keras`` name is
    Keras's archive, any other dlcore's file; ``format="dlcore"`` refuses a ``.keras`` name
    (Keras owns that suffix), and so does any format for a model Keras has no counterpart of.

    Parameters
    ----------
    model : an instance of a class registered with :func:`register_model`
    path : str or os.PathLike   the target file, replaced if it exists and this user may write
        it; its directory must exist
    format : None, "dlcore" or "keras"

    Raises
    ------
    TypeError   the class is not registered, the config or ``model.training_record_`` is not
                JSON-serialisable, or the state holds a value with no HDF5 counterpart (the
                message names the key).
    ValueError  a state key is not a valid HDF5 name or collides with a reserved root name, or
                the training record is larger or deeper than a file may hold.
    FileNotFoundError   the parent directory does not exist.
    WriteProtectedError   (a PermissionError) the file exists and this user may not write it
                (``chmod 444``): it is kept, not replaced.
    """
    path = _file_name(path, "dlcore.save(model, path)",
                      swapped=isinstance(model, (str, os.PathLike)))
    archive_name = path.endswith(".keras")
    if format not in (None, "dlcore", "keras"):
        raise ValueError(f"format must be 'dlcore' or 'keras' (or None: from the name), got "
                         f"{format!r}")
    if archive_name and format != "keras":
        from dlcore import Model
        if not isinstance(model, Model):   # an RBM, a DBN, an autoencoder: Keras has none
            raise ValueError(f"{os.fspath(path)}: a .keras file is a Keras 3 archive, which "
                             f"holds Keras's networks, not {with_article(type(model).__name__)}"
                             f"; give its dlcore model file another name, e.g. model.h5")
        if format == "dlcore":
            raise ValueError(f"{os.fspath(path)}: a .keras file is a Keras 3 archive, not "
                             f"dlcore's format; leave format out (or give format='keras') to "
                             f"write one, or give a dlcore model file another name, e.g. "
                             f"model.h5")
    if format == "keras" or (format is None and archive_name):
        if archive_name:
            from dlcore.io.keras_archive import save_archive as save_keras
        else:
            from dlcore.io.keras import save_keras
        for note in save_keras(model, path):
            warnings.warn(note, stacklevel=2)
        return
    model_class = type(model)
    class_name = model_class.__name__
    if not _is_registered(model_class):
        if not (hasattr(model, "get_config") and hasattr(model, "get_state")):
            if hasattr(model, "get_params") and hasattr(model, "fit"):
                raise TypeError(_scikit_learn_estimator_refusal(model))
            # an array or another library's object: not something a subclass could register
            raise TypeError(f"cannot save a {class_name}: dlcore.save writes dlcore's models "
                            f"(RBMs, DBNs, autoencoders, networks); save arrays with "
                            f"numpy.save or h5py, other libraries' models with their own "
                            f"tools")
        if model_class.__module__.split(".")[0] == "dlcore":
            # dlcore's scikit-learn wrappers (DBNClassifier, SKLearnClassifier, ...): their
            # networks have a file format, the wrappers pickle
            inner = next((name for name in ("network_", "model_") if hasattr(model, name)),
                         None)
            network = (f", or its fitted network with dlcore.save(model.{inner}, path)"
                       if inner else "")
            raise TypeError(f"cannot save a {class_name} with dlcore.save: save it with pickle "
                            f"or joblib.dump, as scikit-learn's estimators{network}")
        raise TypeError(f"cannot save a {class_name}: the class is not registered; decorate it "
                        f"with @dlcore.io.register_model")
    from dlcore.params import ParamsMixin, check_read_back
    if isinstance(model, ParamsMixin) and hasattr(model, "_check_fitted_sizes"):
        model._check_fitted_sizes("save")   # before get_state, which may fail on them
    config = model.get_config()
    hyperparameters = _config_to_json(config, class_name)
    state = model.get_state()
    if not isinstance(state, Mapping):
        raise TypeError(f"{class_name}.get_state() must return a dict; got "
                        f"{type(state).__name__}")
    reserved = sorted(RESERVED_ROOT_NAMES.intersection(state))
    if reserved:
        raise ValueError(f"{class_name}.get_state() uses the reserved top-level name(s) "
                         f"{', '.join(reserved)}; move them into a group such as 'training'")
    history = _history_arrays(getattr(model, "history", None), class_name)
    _check_loadable_size(class_name, config, state, history)
    if isinstance(model, ParamsMixin):
        # a set_params after fit (scikit-learn checks it only at the next fit) must not put
        # a file load refuses in the place of a good one
        check_read_back(model, json.loads(hyperparameters), state, "save")
    problem = _unbuilt_chains_problem(model)
    if problem is not None:
        raise ValueError(f"cannot save this {class_name}: {problem}, and dlcore.load would "
                         f"refuse it; keep it with pickle (or joblib.dump), which has no such "
                         f"limit")
    record = _training_record_to_json(getattr(model, "training_record_", None), class_name)
    feature_names = _feature_names_to_json(getattr(model, "feature_names_in_", None),
                                           class_name)
    with atomic_output_path(path) as temporary, \
            h5py.File(temporary, "w", track_order=True) as h5file:
        _write_root_attributes(h5file, class_name, hyperparameters, _format_version(model))
        if record is not None:
            h5file.attrs.create(TRAINING_RECORD, record, dtype=UTF8_STRING)
        if feature_names is not None:
            h5file.attrs.create(FEATURE_NAMES, feature_names, dtype=UTF8_STRING)
        _write_group(h5file, state, prefix="")
        if history is not None:
            history_group = h5file.create_group(HISTORY_GROUP, track_order=True)
            for name, values in history.items():
                history_group.create_dataset(name, data=values)
        h5file.flush()


def _scikit_learn_estimator_refusal(estimator: Any) -> str:
    """Why ``dlcore.save`` refuses a scikit-learn estimator (a ``Pipeline``, a grid search,
    ...), and the two ways to keep it: joblib for the whole (dlcore's models inside pickle
    through their file state), ``dlcore.save`` for a fitted dlcore step of a pipeline."""
    class_name = type(estimator).__name__
    fitted = getattr(estimator, "best_estimator_", estimator)
    steps = [name for name, step in getattr(fitted, "named_steps", {}).items()
             if _is_registered(type(step))]
    owner = "model.best_estimator_" if fitted is not estimator else "model"
    if steps:
        alone = f"its dlcore step alone with dlcore.save({owner}.named_steps[{steps[0]!r}], path)"
    elif fitted is not estimator and _is_registered(type(fitted)):
        alone = f"its best model alone with dlcore.save({owner}, path)"
    else:
        alone = ""
    inside = " (dlcore's models inside pickle through their file state)" if alone else ""
    return (f"cannot save a {class_name} with dlcore.save, which writes dlcore's models: save "
            f"it with joblib.dump(model, 'model.joblib'), as scikit-learn's estimators are "
            f"saved{inside}" + (f", or {alone}" if alone else ""))


def _config_to_json(config: Any, class_name: str) -> str:
    if not isinstance(config, Mapping):
        raise TypeError(f"{class_name}.get_config() must return a dict; got "
                        f"{type(config).__name__}")
    return json_text(config, f"{class_name}.get_config()")


def _training_record_to_json(record: Any, class_name: str) -> str | None:
    """``model.training_record_`` as the JSON text of the ``training_record`` attribute, checked
    against the limits :func:`load` applies, so that every record saved can be loaded."""
    if record is None:
        return None
    if not isinstance(record, Mapping):
        raise TypeError(f"{class_name}.training_record_ must be a dict; got "
                        f"{type(record).__name__}")
    text = json_text(record, f"{class_name}.training_record_")
    try:
        parse_json(text, MAX_TRAINING_RECORD_BYTES, MAX_TRAINING_RECORD_DEPTH)
    except ValueError as error:
        raise ValueError(f"{class_name}.training_record_ cannot be saved: {error}") from None
    return text


def _feature_names_to_json(names: Any, class_name: str) -> str | None:
    """``model.feature_names_in_`` (the column names of the table it was fitted on) as the
    JSON list of the ``feature_names_in`` attribute; None when the model has none."""
    if names is None:
        return None
    names = list(names)
    if not all(isinstance(name, str) for name in names):
        raise TypeError(f"{class_name}.feature_names_in_ must hold strings only")
    text = json.dumps(names, ensure_ascii=False)
    if len(text) > MAX_JSON_BYTES:
        raise ValueError(f"{class_name}.feature_names_in_ cannot be saved: its names take "
                         f"more than {size_text(MAX_JSON_BYTES)}; rename the columns")
    return text


def json_text(mapping: Mapping, what: str) -> str:
    """``mapping`` as JSON with sorted keys, NumPy scalars as Python numbers (a grid search's
    ``np.int64(20)`` epochs); TypeError naming ``what`` when it is not JSON. What every config
    in a model file goes through, a DBN's and a stack's layers' included."""
    try:
        # allow_nan=False: NaN/Infinity are not JSON, and strict readers (MATLAB's jsondecode
        # of some versions, JavaScript) refuse them.
        return json.dumps(dict(mapping), sort_keys=True, ensure_ascii=False, allow_nan=False,
                          default=_numpy_scalar_to_python)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{what} is not valid JSON: {error}") from None


def _numpy_scalar_to_python(value: Any) -> Any:
    # Hyperparameters and records often hold NumPy scalars (np.float32(0.1)); JSON wants Python
    # ones.
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{value!r:.60} of type {type(value).__name__} is not JSON")


def _history_arrays(history: Any, class_name: str) -> dict[str, np.ndarray] | None:
    if history is None:
        return None
    if not isinstance(history, Mapping):
        raise TypeError(f"{class_name}.history must be a dict of per-epoch lists; got "
                        f"{type(history).__name__}")
    arrays = {}
    for name, values in history.items():
        _check_name(name, f"history key {name!r}")
        try:
            series = [math.nan if value is None else float(value) for value in values]
        except (TypeError, ValueError):
            raise TypeError(f"{class_name}.history[{name!r}] must be a sequence of numbers "
                            f"(None allowed for gaps)") from None
        arrays[name] = np.asarray(series, dtype=np.float64)
    return arrays


def _format_version(model: Any) -> int:
    """The smallest ``format_version`` that holds ``model``: 2 where a Dense of it (at any
    depth) acts on sequences or maps, which a reader of version 1 would take for a damaged
    file ("Dense needs flat inputs"); else 1, which every reader loads."""
    pending, seen = [model], set()
    while pending:
        item = pending.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        shape = getattr(item, "input_shape", None)
        if type(item).__name__ == "Dense" and getattr(item, "built", False) \
                and isinstance(shape, tuple) and len(shape) > 1:
            return 2
        # a network's layers; a DBN's or a stack's ``layers`` are sizes (a list, an array)
        children = getattr(item, "layers", None)
        pending.extend(children if isinstance(children, (list, tuple)) else ())
    return 1


def _write_root_attributes(h5file: h5py.File, class_name: str, hyperparameters: str,
                           format_version: int = 1) -> None:
    created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    h5file.attrs.create("format", FORMAT_NAME, dtype=UTF8_STRING)
    h5file.attrs.create("format_version", np.int64(format_version))
    h5file.attrs.create("dlcore_version", DLCORE_VERSION, dtype=UTF8_STRING)
    h5file.attrs.create("model_class", class_name, dtype=UTF8_STRING)
    h5file.attrs.create("hyperparameters", hyperparameters, dtype=UTF8_STRING)
    h5file.attrs.create("created", created, dtype=UTF8_STRING)


def _check_loadable_size(class_name: str, config: Any, state: Mapping,
                         history: Mapping | None) -> None:
    """Refuse, before anything is written, a model whose file :func:`load` would refuse for
    its size alone: a network of more than MAX_LAYERS layers (MAX_GRAPH_NODES calls of
    layers), a state of more than MAX_OBJECTS groups and arrays. Writing it lost nothing yet
    gave a file that could never be read back (a 600-layer Keras import among them)."""
    keep = "keep it with pickle (or joblib.dump), which has no such limit"
    for key, limit, what in (("layers", MAX_LAYERS, "layers"),
                             ("nodes", MAX_GRAPH_NODES, "calls of layers")):
        entries = config.get(key) if isinstance(config, dict) else None
        if isinstance(entries, list) and len(entries) > limit and \
                all(isinstance(entry, dict) for entry in entries):
            raise ValueError(f"cannot save this {class_name} of {len(entries)} {what}: a "
                             f"dlcore model file holds at most {limit}, and dlcore.load would "
                             f"refuse it; {keep}")
    for key, longest in (("hidden", MAX_LAYERS), ("layers", MAX_LAYERS + 1)):
        # a greedy stack's sizes (a DBN's, a stacked autoencoder's): an interrupted
        # pretraining saves the layers it reached, and the sizes of all
        sizes = config.get(key) if isinstance(config, dict) else None
        if not isinstance(sizes, list) or any(isinstance(size, dict) for size in sizes):
            continue
        if len(sizes) > longest:
            raise ValueError(f"cannot save this {class_name} of {key}={len(sizes)} sizes: a "
                             f"dlcore model file holds at most {longest}, and dlcore.load "
                             f"would refuse it; {keep}")
        beyond = [size for size in sizes if isinstance(size, numbers.Integral)
                  and not isinstance(size, bool) and size > MAX_SIZE]
        if beyond:
            raise ValueError(f"cannot save this {class_name}: {key} gives a layer of "
                             f"{beyond[0]} units, more than the {MAX_SIZE} a dlcore model file "
                             f"holds, and dlcore.load would refuse it; {keep}")
    problem = _stack_problem(class_name, config, state) or _chains_problem(class_name, config,
                                                                           state)
    if problem is not None:
        raise ValueError(f"cannot save this {class_name}: {problem}, and dlcore.load would "
                         f"refuse it; {keep}")
    objects = _object_count(state) + (1 + len(history) if history else 0)
    if objects > MAX_OBJECTS:
        raise ValueError(f"cannot save this {class_name}: its state has {objects} groups and "
                         f"arrays, more than the {MAX_OBJECTS} a dlcore model file holds, and "
                         f"dlcore.load would refuse it; {keep}")


def _stack_problem(class_name: str, config: Any, state: Mapping) -> str | None:
    """What load would refuse in the layers of an interrupted greedy stack (a DBN's RBMs, a
    stack's autoencoders) that its state does not hold, or None (every other model)."""
    if class_name not in STACK_LAYERS or not isinstance(config, dict):
        return None
    groups, prefix, counter = (("rbms", "rbm_", "rbms_started") if class_name == "DBN"
                               else ("autoencoders", "ae_", "layers_started"))
    training = state.get("training", {})
    n_labels = int(config.get("n_labels") or 0)
    try:
        sizes = config.get("layers") or [None, *config["hidden"]]
        if sizes[0] is None:   # given hidden: the width is the bottom layer's
            bottom = state[groups][f"{prefix}0"]["W"].shape[0]
            sizes = [bottom - (n_labels if len(sizes) == 2 else 0), *sizes[1:]]
        started = int(training.get(counter, len(sizes) - 1))
        return unstored_layers_problem([int(size) for size in sizes], started, n_labels,
                                       class_name)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        return None   # not the stack's own state: load reports what is wrong with it


def _chains_problem(class_name: str, config: Any, state: Mapping) -> str | None:
    """What load would refuse in the persistent chains an RBM's settings declare (a lone
    RBM's or a DBN's; :func:`dlcore.io.layouts.unstored_chain_problem`), or None."""
    from dlcore.rbm.chains import chain_rows
    if class_name in ("BernoulliRBM", "GaussianBernoulliRBM"):
        rbms = [("", config, state)]
    elif class_name == "DBN":
        rbms = []
        for name, group in state.get("rbms", {}).items():
            try:
                rbms.append((f"rbms/{name}: ", json.loads(group["hyperparameters"]), group))
            except (KeyError, TypeError, ValueError):
                continue   # not the DBN's own state: load reports what is wrong with it
    else:
        return None
    for where, settings, group in rbms:
        if not isinstance(settings, dict):
            continue
        try:
            rows = chain_rows(settings.get("sampler"), settings.get("persistent", False),
                              settings.get("n_chains"), settings["batch_size"],
                              settings.get("n_temperatures", 10), settings.get("temperatures"))
            problem = unstored_chain_problem(
                int(rows), int(settings["n_hidden"]), int(group["W"].shape[0]),
                stored="persistent_chain" in group.get("training", {}))
        except (KeyError, TypeError, ValueError, AttributeError, IndexError):
            continue
        if problem is not None:
            return f"{where}its hyperparameters {problem}"
    return None


def _object_count(state: Mapping) -> int:
    """The groups and datasets :func:`_write_group` writes for ``state``."""
    count, pending = 0, [state]
    while pending:
        for value in pending.pop().values():
            if isinstance(value, Mapping):
                pending.append(value)
                count += 1
            elif isinstance(value, np.ndarray):
                count += 1
    return count


def _write_group(group: h5py.Group, state: Mapping, prefix: str) -> None:
    for key, value in state.items():
        where = f"{prefix}{key}"
        _check_name(key, f"state key {where!r}")
        if isinstance(value, np.ndarray):
            _check_array_dtype(value, where)
            group.create_dataset(key, data=value)
        elif isinstance(value, Mapping):
            _write_group(group.create_group(key, track_order=True), value, prefix=f"{where}/")
        else:
            _write_attribute(group, key, value, where)


def _check_name(name: Any, what: str) -> None:
    if not isinstance(name, str) or not name or "/" in name or name == "." or "\x00" in name:
        raise ValueError(f"{what} is not a valid HDF5 name: use a non-empty string without "
                         f"'/' or NUL characters, other than '.'")


def _check_array_dtype(array: np.ndarray, where: str) -> None:
    dtype = array.dtype
    if dtype.kind in "biu" or (dtype.kind == "f" and dtype.itemsize <= 8):
        return
    raise TypeError(f"state array {where!r} has dtype {dtype}; a model file stores bool, "
                    f"integer and float16/32/64 arrays only")


def _write_attribute(group: h5py.Group, name: str, value: Any, where: str) -> None:
    # bool before int: bool is a subclass of int and must come back as a bool.
    if isinstance(value, (bool, np.bool_)):
        group.attrs.create(name, np.bool_(value))
    elif isinstance(value, (int, np.integer)):
        group.attrs.create(name, _integer_attribute(int(value), where))
    elif isinstance(value, np.floating):
        group.attrs.create(name, value)
    elif isinstance(value, float):
        group.attrs.create(name, np.float64(value))
    elif isinstance(value, str):
        if "\x00" in value:
            raise ValueError(f"state attribute {where!r} contains a NUL character, which HDF5 "
                             f"strings cannot hold")
        group.attrs.create(name, str(value), dtype=UTF8_STRING)
    else:
        hint = "; leave the key out instead" if value is None else (
            "; convert it with np.asarray" if isinstance(value, (list, tuple)) else "")
        raise TypeError(f"state value {where!r} is {type(value).__name__}; a model file holds "
                        f"arrays, dicts and bool/int/float/str scalars{hint}")


def _integer_attribute(value: int, where: str) -> np.integer:
    if -2**63 <= value < 2**63:
        return np.int64(value)
    if 0 <= value < 2**64:
        return np.uint64(value)  # e.g. a 64-bit RNG key
    raise TypeError(f"state attribute {where!r} = {value} does not fit in 64 bits; "
                    f"store it as a string")


# --------------------------------------------------------------------------------------------
# load
# --------------------------------------------------------------------------------------------
def load(path: str | os.PathLike, architecture: Any = None) -> Any:
    """Read a model saved by :func:`save` and return it, ready to use (or to resume training).
    A Keras HDF5 model file (:mod:`dlcore.io.keras`) or a Keras 3 archive (``.keras``,
    :mod:`dlcore.io.keras_archive`) is imported; a Keras weights-only file (Keras 3's
    ``.weights.h5``, or a legacy weights file) needs its ``architecture``: a dlcore model
    (copied, not changed), a Keras model or Keras's model JSON.

    Every read goes through :class:`dlcore.io.guarded.ModelFileReader`: for dlcore's own
    classes the hyperparameters are type-checked and every dataset's declared shape and dtype
    is checked against them (:mod:`dlcore.io.layouts`) before any array is read; arrays must be
    finite; JSON is size- and depth-limited; only registered classes are built.

    Parameters
    ----------
    path : str or os.PathLike
    architecture : dlcore model, Keras model, Keras model JSON (str) or None
        Only for a Keras weights-only file, which holds no architecture: the model whose
        layers the weights fill (a dlcore model is copied, not changed). None for every other
        file.

    Returns
    -------
    An instance of the registered class named by the file's ``model_class`` attribute, built with
    ``from_config(hyperparameters)`` (or ``cls(**hyperparameters)``), filled with
    ``set_state(state)``, with ``history`` assigned when the file has one and
    ``training_record_`` when the file has a ``training_record`` attribute.

    Raises
    ------
    ModelFileError (a ValueError) for every file that cannot be loaded; its one-line message
    names the file, the problem and, when there is one, the fix.
    """
    filename = _existing_file(path)
    if architecture is not None:   # Keras weights for a given architecture
        from dlcore.io import keras
        return keras.load_with_architecture(filename, architecture)
    from dlcore.io import keras_archive
    if keras_archive.is_archive(filename):   # a Keras 3 archive (.keras): import it
        return keras_archive.load_archive(filename)
    with _open_model_file(filename) as h5file:
        from dlcore.io import keras
        if keras.is_keras_file(h5file):   # a Keras HDF5 model file: import it
            return keras.load_keras(filename, h5file)
        if keras.is_keras_weights_file(h5file):
            raise ModelFileError(filename, f"{filename}: holds Keras weights without an "
                                           f"architecture; load it with dlcore.load(path, "
                                           f"architecture=model or its Keras JSON)")
        reader = ModelFileReader(h5file, filename)
        header = _read_header(reader)
        _check_format_version(header["format_version"], filename)
        model_class = _registered_class(header.get("model_class"), filename)
        config = _parse_hyperparameters(reader)
        layout_check = LAYOUT_CHECKS.get(model_class.__name__)
        own_class = layout_check is not None and model_class.__module__.startswith("dlcore.")
        if own_class:
            layout_check(reader, config)
        # dlcore's own models hold parameters, which must be finite; the protocol itself lets
        # other registered classes store NaN (e.g. a gap in a series).
        state = reader.read_tree(h5file, skip=RESERVED_ROOT_NAMES, finite=own_class)
        history = _read_history(reader, _history_limit(_state_epoch_counters(state))
                                if own_class else _history_limit([]))
        record = _read_training_record(reader)
        feature_names = _read_feature_names(reader)
    model = _build_model(model_class, config, state, filename)
    if history is not None:
        model.history = history
    if record is not None:
        model.training_record_ = record
    if feature_names is not None:
        model.feature_names_in_ = _checked_feature_names(model, feature_names, filename)
    return model


def _file_name(path: Any, call: str = "dlcore.load(path)", swapped: bool = False) -> str:
    """``path`` as a str; anything that names no file refused in one line, a model given where
    the path goes (``dlcore.save("model.h5", rbm)``, PyTorch's order is the model first too)
    with the call's order, where Python's own message ("expected str, bytes or os.PathLike
    object, not BernoulliRBM") names neither the argument nor the fix."""
    try:
        return os.fsdecode(path)
    except TypeError:
        order = " (the model first)" if swapped else ""
        given = "None" if path is None else with_article(type(path).__name__)
        raise TypeError(f"path must be a file name (str or os.PathLike), got {given}: call "
                        f"{call}{order}") from None


def _existing_file(path: str | os.PathLike) -> str:
    filename = _file_name(path)
    if not os.path.exists(filename):
        raise ModelFileError(filename, f"{filename} does not exist; check the path")
    if os.path.isdir(filename):
        raise ModelFileError(filename, f"{filename} is a directory, not a model file; give the "
                                       f"path of a .h5 file")
    mode = os.stat(filename).st_mode
    if not stat.S_ISREG(mode):
        # Opening a FIFO (tar keeps those when it unpacks a hand-in) waits for a writer for
        # ever, and a device (/dev/zero) never ends: only a regular file is opened.
        raise ModelFileError(filename, f"{filename} is {_special_file_kind(mode)}, not a "
                                       f"regular file, so it cannot be a model file; give the "
                                       f"path of a model file saved to disk")
    return filename


def _special_file_kind(mode: int) -> str:
    kinds = [(stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")]
    return next((kind for test, kind in kinds if test(mode)), "a special file")


@contextlib.contextmanager
def _open_model_file(filename: str) -> Iterator[h5py.File]:
    """Open ``filename`` read-only, turning every HDF5 failure into a ModelFileError."""
    if not h5py.is_hdf5(filename):
        raise ModelFileError(filename, _not_hdf5_message(filename))
    stream = None
    try:
        # locking=False: reading never needs a lock, and read-only media refuse one.
        h5file = h5py.File(filename, "r", locking=False)
    except OSError as error:
        if not _open_in_this_process(error):
            raise ModelFileError(filename, _damaged_message(filename, error)) from error
        # An h5py.File of this process holds it open (a notebook's handle left open, even
        # read-only), with other locking settings, which HDF5 refuses to mix: read the file
        # through a file object of its own, which HDF5 does not match with the open one.
        stream = open(filename, "rb")  # noqa: SIM115 - closed below, after the reads
        try:
            h5file = h5py.File(stream, "r")
        except OSError as second:
            stream.close()
            raise ModelFileError(filename, _damaged_message(filename, second)) from second
    try:
        with h5file:
            yield h5file
    except OSError as error:
        # An unreadable block inside a file that opened (damaged metadata or data).
        raise ModelFileError(filename, _damaged_message(filename, error)) from error
    except (RuntimeError, KeyError) as error:
        # h5py's low-level layer reports some damaged B-trees or headers so; the same errors
        # raised by dlcore's own checks are bugs and must not read as a damaged file.
        if not _raised_inside_h5py(error):
            raise
        raise ModelFileError(filename, _damaged_message(filename, error)) from error
    finally:
        if stream is not None:
            stream.close()


def _open_in_this_process(error: OSError) -> bool:
    """Whether HDF5 refused to open a file because this process holds it open already with
    other settings (``file locking flag values don't match``, ``file is already open``),
    not because the file is damaged."""
    text = str(error)
    return "locking" in text and "don't match" in text or "already open" in text


def _raised_inside_h5py(error: BaseException) -> bool:
    """Whether the innermost frame of ``error``'s traceback is in h5py (its Cython modules
    included), i.e. an h5py call failed rather than dlcore's code around it."""
    traceback = error.__traceback__
    if traceback is None:
        return False
    while traceback.tb_next is not None:
        traceback = traceback.tb_next
    return str(traceback.tb_frame.f_globals.get("__name__", "")).startswith("h5py")


def _not_hdf5_message(filename: str) -> str:
    with open(filename, "rb") as stream:
        head = stream.read(len(HDF5_SIGNATURE))
    if not head:
        return (f"{filename} is empty (0 bytes); the save was interrupted or the copy failed: "
                f"save the model again")
    if HDF5_SIGNATURE.startswith(head):
        return (f"{filename} is truncated ({len(head)} bytes); save the model again or "
                f"copy the complete file")
    return (f"{filename} is not an HDF5 file, so it cannot be a dlcore model file; give the "
            f"path of a model saved by dlcore")


def _damaged_message(filename: str, error: BaseException) -> str:
    reason = " ".join(str(error).split())[:300]
    if "truncated" in reason:
        return (f"{filename} is truncated ({os.path.getsize(filename)} bytes; {reason}); "
                f"save the model again or copy the complete file")
    # A cut inside the first few hundred bytes (the superblock) fails with other messages.
    return (f"{filename} is a damaged or truncated HDF5 file ({reason}); save the model again "
            f"or copy the complete file")


def _read_header(reader: ModelFileReader) -> dict[str, Any]:
    """Return the root attributes, refusing files that are not dlcore model files."""
    filename, root = reader.filename, reader.file
    header = {}
    for name in ROOT_ATTRIBUTES:
        if name in root.attrs:
            try:
                header[name] = reader.attribute(root, name, "/")
            except ModelFileError:
                if name not in INFORMATIONAL_ROOT_ATTRIBUTES:
                    raise
                # Who wrote the file and when: shown by describe, needed by nothing.
    if "format" not in header:
        raise ModelFileError(filename, f"{filename} is an HDF5 file but not a dlcore model file "
                                       f"(it has no 'format' attribute); give a file saved by "
                                       f"dlcore.save")
    if header["format"] != FORMAT_NAME:
        raise ModelFileError(filename, f"{filename} is not a dlcore model file (its format is "
                                       f"{header['format']!r:.80}, not {FORMAT_NAME!r}); give "
                                       f"a file saved by dlcore.save")
    version = header.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ModelFileError(filename, f"{filename} has an invalid format_version "
                                       f"{version!r:.80} (a positive integer is expected); "
                                       f"{DAMAGED_FIX}")
    return header


def _check_format_version(version: int, filename: str) -> None:
    if version > FORMAT_VERSION:
        raise ModelFileError(filename, f"{filename} was written by a newer dlcore (format "
                                       f"{version}; this dlcore {DLCORE_VERSION} reads format "
                                       f"{FORMAT_VERSION} at most); upgrade dlcore")


def _registered_class(class_name: Any, filename: str) -> type:
    """The class registered under ``class_name``: the registry is the only way from a name in
    a file to code, so nothing named in a file is ever imported."""
    if not isinstance(class_name, str):
        raise ModelFileError(filename, f"{filename} has no 'model_class' attribute naming the "
                                       f"model class; {DAMAGED_FIX}")
    model_class = _MODEL_REGISTRY.get(class_name)
    if model_class is None and class_name in DLCORE_MODELS_OUTSIDE_THE_PACKAGE_TOP:
        model_class = _imported_dlcore_class(class_name, filename)
    if model_class is None:
        known = ", ".join(sorted(_MODEL_REGISTRY)) or "none"
        raise ModelFileError(filename, f"{filename} holds an unknown model class "
                                       f"{class_name!r:.80} (registered: {known}); import the "
                                       f"module that defines it before loading")
    return model_class


def _imported_dlcore_class(class_name: str, filename: str) -> type:
    """The class ``class_name`` of :data:`DLCORE_MODELS_OUTSIDE_THE_PACKAGE_TOP`, registered
    by importing its dlcore module; a ModelFileError when that module cannot be imported."""
    import importlib
    module_name = DLCORE_MODELS_OUTSIDE_THE_PACKAGE_TOP[class_name]
    try:
        importlib.import_module(module_name)
    except ImportError as error:
        raise ModelFileError(filename, f"{filename} holds dlcore's {class_name}, defined in "
                                       f"{module_name}, which cannot be imported here "
                                       f"({error}); install dlcore with its dependencies"
                                       ) from error
    return _MODEL_REGISTRY[class_name]


def _parse_hyperparameters(reader: ModelFileReader) -> dict:
    filename = reader.filename
    text = reader.attribute(reader.file, "hyperparameters", "/", default=None)
    if not isinstance(text, str):
        raise ModelFileError(filename, f"{filename} has no 'hyperparameters' string attribute; "
                                       f"{DAMAGED_FIX}")
    try:
        config = parse_json(text)
    except ValueError as error:
        raise ModelFileError(filename, f"{filename}: the 'hyperparameters' attribute is not "
                                       f"valid JSON: {error}; {DAMAGED_FIX}") from None
    if not isinstance(config, dict):
        raise ModelFileError(filename, f"{filename}: the 'hyperparameters' attribute should be "
                                       f"a JSON object; found {type(config).__name__}; "
                                       f"{DAMAGED_FIX}")
    return config


def _read_history(reader: ModelFileReader,
                  limit: tuple[int, str]) -> dict[str, list[float]] | None:
    """The per-epoch series; NaN (a gap) and infinity (a diverged epoch) are allowed here.

    ``limit`` (from :func:`_history_limit`): the most values a series may hold, checked
    before it is read, since each becomes a Python float of 32 bytes whatever its dtype in the
    file (a compressed uint8 series would grow 32,000 times the file's size).
    """
    group = reader.group(HISTORY_GROUP, required=False)
    if group is None:
        return None
    history = {}
    for name in reader.names(group, HISTORY_GROUP):
        path = f"{HISTORY_GROUP}/{name}"
        dataset = reader.member(path)
        if not isinstance(dataset, h5py.Dataset) or dataset.ndim != 1 or \
                reader.element_dtype(dataset.id, f"dataset '{path}'").kind not in "biuf":
            raise reader.error(f"history/{name} should be a 1-D numeric dataset")
        _check_history_length(reader, dataset, path, limit)
        history[name] = reader.read_array(dataset, path, finite=False).astype(
            np.float64).tolist()
    return history


def _state_epoch_counters(state: Mapping, where: str = "") -> list[tuple[str, int]]:
    """``(path, value)`` of every epoch counter (an attribute named ``epochs_done`` or ending
    in it, such as a DBN's ``up_down_epochs_done``) in a state read back from a file."""
    counters = []
    for key, value in state.items():
        path = f"{where}/{key}" if where else str(key)
        if isinstance(value, Mapping):
            counters += _state_epoch_counters(value, path)
        elif str(key).endswith("epochs_done") and isinstance(value, int) and \
                not isinstance(value, bool):
            counters.append((path, value))
    return counters


def _history_limit(counters: list[tuple[str, int]]) -> tuple[int, str]:
    """The most values a history series of the file may hold, and how messages name it: the
    largest of the file's epoch counters (each series of dlcore's models holds one value per
    epoch of the model or of one of its layers), within :data:`MAX_HISTORY_LENGTH`."""
    if counters:
        path, epochs = max(counters, key=lambda counter: counter[1])
        if epochs <= MAX_HISTORY_LENGTH:
            group, _, name = path.rpartition("/")
            return epochs, (f"the file records {count(epochs, 'epoch')} (attribute '{name}' "
                            f"of '{group or '/'}')")
    return MAX_HISTORY_LENGTH, f"a model file holds at most {MAX_HISTORY_LENGTH:,} epochs"


def _check_history_length(reader: ModelFileReader, dataset: h5py.Dataset, path: str,
                          limit: tuple[int, str]) -> None:
    """Refuse a series longer than ``limit`` allows, by its declared length, unread."""
    most, reason = limit
    length = dataset.shape[0]
    if length > most:
        raise reader.error(f"dataset '{path}' holds {length:,} values; a history series holds "
                           f"one value per epoch, and {reason}")


def _read_training_record(reader: ModelFileReader) -> dict | None:
    record = reader.json_attribute(reader.file, TRAINING_RECORD, "/", default=None,
                                   limit_bytes=MAX_TRAINING_RECORD_BYTES,
                                   limit_depth=MAX_TRAINING_RECORD_DEPTH)
    if record is not None and not isinstance(record, dict):
        raise reader.error(f"the '{TRAINING_RECORD}' attribute should be a JSON object; found "
                           f"{type(record).__name__}")
    return record


def _read_feature_names(reader: ModelFileReader) -> list[str] | None:
    names = reader.json_attribute(reader.file, FEATURE_NAMES, "/", default=None, limit_depth=1)
    if names is not None and not (isinstance(names, list)
                                  and all(isinstance(name, str) for name in names)):
        raise reader.error(f"the '{FEATURE_NAMES}' attribute should be a JSON list of strings; "
                           f"found {str(names)[:60]!r}")
    return names


def _checked_feature_names(model: Any, names: list[str], filename: str) -> np.ndarray:
    """The column names read from the file, as scikit-learn keeps them (an object array), when
    there is one per input of ``model``."""
    n_features = getattr(model, "n_features_in_", None)
    if isinstance(n_features, numbers.Integral) and len(names) != n_features:
        raise ModelFileError(filename, f"{filename}: the '{FEATURE_NAMES}' attribute names "
                                       f"{len(names)} columns for a model of {n_features} "
                                       f"inputs; {DAMAGED_FIX}")
    return np.asarray(names, dtype=object)


def _build_model(model_class: type, config: dict, state: dict, filename: str) -> Any:
    class_name = model_class.__name__
    build: Callable[[dict], Any] = getattr(model_class, "from_config", None) or (
        lambda arguments: model_class(**arguments))
    try:
        model = build(config)
    except MODEL_REJECTION_ERRORS as error:
        raise ModelFileError(filename, f"{filename}: {class_name} rejects the hyperparameters "
                                       f"in the file: {_error_text(error)}; {CONFIG_FIX}") \
            from error
    try:
        model.set_state(state)
    except MODEL_REJECTION_ERRORS as error:
        raise ModelFileError(filename, f"{filename}: {class_name} rejects the stored state: "
                                       f"{_error_text(error)}; {DAMAGED_FIX}") from error
    problem = _unbuilt_chains_problem(model)
    if problem is not None:
        raise ModelFileError(filename, f"{filename}: {problem}; {DAMAGED_FIX}")
    return model


def _unbuilt_chains_problem(model: Any) -> str | None:
    """What is wrong with the persistent chains that the RBMs of an interrupted DBN not
    reached yet (built by ``set_state`` from the DBN's settings, ``rbm=`` included, with no
    parameters) declare, which ``resume`` creates from those sizes alone; or None.

    Each RBM's chains are bounded, and so is their total: a finished RBM keeps its chains'
    hidden states (they are saved with it) while ``resume`` trains the next, so thousands of
    RBMs of chains just under the bound would add up to terabytes."""
    sizes = getattr(model, "layers_", None) or ()
    total, largest = 0, (0, 0, 0, 0)
    for index, rbm in enumerate(getattr(model, "rbms_", None) or ()):
        if hasattr(rbm, "W") or not hasattr(rbm, "_chain_rows"):
            continue
        # its visible units: the layer below it, with the label units for the top RBM
        visible = int(sizes[index]) + (int(model.n_labels) if model._is_labelled_top(index)
                                       else 0) if index < len(sizes) else 0
        rows, hidden = int(rbm._chain_rows()), int(rbm.n_hidden)
        problem = unstored_chain_problem(rows, hidden, visible)
        if problem is not None:
            return f"the settings of RBM {index + 1}, not reached by the interrupted " \
                   f"pretraining, {problem}"
        total += rows * (hidden + visible)
        largest = max(largest, (rows * (hidden + visible), index + 1, rows, hidden))
    if total > MAX_UNSTORED_WEIGHTS:
        _, index, rows, hidden = largest
        return (f"the settings of the RBMs not reached by the interrupted pretraining give "
                f"persistent chains of {total} hidden and visible states in all (RBM {index}: "
                f"{rows} x {hidden} hidden states), more than the {MAX_UNSTORED_WEIGHTS} that "
                f"training builds from sizes alone")
    return None


def _error_text(error: BaseException) -> str:
    # str(KeyError('W')) is "'W'": say what kind of error it was.
    if isinstance(error, KeyError):
        return f"missing key {error}"
    return " ".join(str(error).split())[:300]


# --------------------------------------------------------------------------------------------
# describe
# --------------------------------------------------------------------------------------------
def describe(path: str | os.PathLike) -> str:
    """A human-readable summary of a dlcore model file (what ``dlcore info model.h5`` prints).

    Shows the root attributes, the hyperparameters pretty-printed, the training record, every
    dataset with its shape and dtype (and min/max/mean for float arrays up to a million
    elements), the attributes of every group, and the length and last value of every history
    series. It needs no registered class and also summarises files from a newer dlcore, with a
    note. It reads through the same guarded layer as :func:`load`: it follows no soft or
    external links, reads no dataset larger than the file could hold and parses JSON within
    the same limits.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    str, several lines, without a trailing newline.

    Raises
    ------
    ModelFileError when the file is missing, not HDF5, truncated, damaged or hostile, or not a
    dlcore model file.
    """
    filename = _existing_file(path)
    from dlcore.io import keras_archive
    if keras_archive.is_archive(filename):
        return keras_archive.describe_archive(filename)
    with _open_model_file(filename) as h5file:
        from dlcore.io import keras
        if keras.is_keras_file(h5file) or keras.is_keras_weights_file(h5file):
            return keras.describe_keras(filename, h5file)
        reader = ModelFileReader(h5file, filename)
        header = _read_header(reader)
        items = list(reader.walk(h5file, skip=RESERVED_ROOT_NAMES))
        history_limit = _history_limit(_walked_epoch_counters(reader, items)
                                       if _is_own_class(header.get("model_class")) else [])
        sections = [
            _describe_header(filename, header),
            _describe_json("hyperparameters", header.get("hyperparameters")),
            _describe_json(TRAINING_RECORD,
                           reader.attribute(h5file, TRAINING_RECORD, "/", default=None)),
            _describe_feature_names(reader.attribute(h5file, FEATURE_NAMES, "/", default=None)),
            _describe_datasets(reader, items),
            _describe_attributes(reader, items),
            _describe_history(reader, history_limit),
        ]
    return "\n\n".join(section for section in sections if section)


def why_load_is_not_checked(path: str | os.PathLike) -> str | None:
    """Why ``dlcore info`` cannot check that ``path`` loads, or None when it can.

    It can for files of dlcore's own model classes in a format this dlcore reads. A class of a
    user's own is registered only by the program that defines it (the command line cannot
    import it), and a newer format needs a newer dlcore: :func:`describe` still lists those.

    Raises
    ------
    ModelFileError as :func:`describe` does.
    """
    filename = _existing_file(path)
    from dlcore.io import keras_archive
    if keras_archive.is_archive(filename):
        return None   # a Keras archive: dlcore.load imports it, and info checks that it does
    with _open_model_file(filename) as h5file:
        from dlcore.io import keras
        if keras.is_keras_file(h5file):
            return None   # a Keras file: dlcore.load imports it, and info checks that it does
        if keras.is_keras_weights_file(h5file):
            return "whether it loads (Keras weights alone: it needs an architecture)"
        header = _read_header(ModelFileReader(h5file, filename))
    version, class_name = header["format_version"], header.get("model_class")
    if version > FORMAT_VERSION:
        return (f"whether it loads (format {version} is newer than this dlcore reads; upgrade "
                f"dlcore)")
    if class_name in DLCORE_MODELS_OUTSIDE_THE_PACKAGE_TOP:
        return None   # dlcore's own, registered by the load that imports its module
    model_class = _MODEL_REGISTRY.get(class_name) if isinstance(class_name, str) else None
    if model_class is None or not model_class.__module__.startswith("dlcore."):
        return (f"whether it loads ({str(class_name)[:80]!r} is not one of dlcore's model "
                f"classes: dlcore.load checks it in a program that registers the class)")
    return None


def _is_own_class(class_name: Any) -> bool:
    """Whether ``class_name`` names one of dlcore's own model classes, whose layouts
    :mod:`dlcore.io.layouts` knows (their history series hold one value per epoch)."""
    model_class = _MODEL_REGISTRY.get(class_name) if isinstance(class_name, str) else None
    return model_class is not None and class_name in LAYOUT_CHECKS and \
        model_class.__module__.startswith("dlcore.")


def _walked_epoch_counters(reader: ModelFileReader, items: list) -> list[tuple[str, int]]:
    """The epoch counters (see :func:`_state_epoch_counters`) of the groups ``items`` walked;
    one that cannot be read is left out (describe shows what it can)."""
    counters = []
    for path, item in items:
        if not isinstance(item, h5py.Group) or len(item.attrs) > MAX_ATTRIBUTES:
            continue
        for name in item.attrs:
            if isinstance(name, str) and name.endswith("epochs_done"):
                with contextlib.suppress(ModelFileError):
                    value = reader.attribute(item, name, path)
                    if isinstance(value, int) and not isinstance(value, bool):
                        counters.append((f"{path}/{name}", value))
    return counters


def _describe_header(filename: str, header: dict[str, Any]) -> str:
    version = header["format_version"]
    rows = [
        ("format", f"{header['format']}, version {version}"),
        ("model class", str(header.get("model_class", "(missing)"))[:200]),
        ("written by", f"dlcore {str(header.get('dlcore_version', '(unknown version)'))[:80]}"),
        ("created", str(header.get("created", "(unknown)"))[:80]),
    ]
    lines = [f"dlcore model file {filename} ({size_text(os.path.getsize(filename))})"]
    lines += [f"  {label:<13}{value}" for label, value in rows]
    if version > FORMAT_VERSION:
        lines.append(f"  note: format {version} is newer than this dlcore reads "
                     f"({FORMAT_VERSION}); upgrade dlcore to load it")
    return "\n".join(lines)


def _describe_json(title: str, text: Any) -> str:
    if text is None:
        return ""
    pretty = None
    if isinstance(text, str):
        with contextlib.suppress(ValueError):
            pretty = json.dumps(parse_json(text), indent=2, sort_keys=True, ensure_ascii=False)
    if pretty is None:
        pretty = f"(not valid JSON) {str(text)[:200]!r}"
    return f"{title}\n" + "\n".join(f"  {line}" for line in pretty.splitlines())


def _describe_feature_names(text: Any) -> str:
    if text is None:
        return ""
    names = None
    with contextlib.suppress(ValueError):
        names = parse_json(str(text), limit_depth=1)
    if not (isinstance(names, list) and all(isinstance(name, str) for name in names)):
        return f"{FEATURE_NAMES}\n  (not a JSON list of strings) {str(text)[:200]!r}"
    shown = ", ".join(name[:40] for name in names[:8]) + (", ..." if len(names) > 8 else "")
    return f"{FEATURE_NAMES} ({len(names)} columns)\n  {shown}"


def _describe_datasets(reader: ModelFileReader, items: list) -> str:
    rows = [(path, str(item.shape), str(reader.element_dtype(item.id, f"dataset '{path}'")),
             _statistics_text(reader, item, path))
            for path, item in items if isinstance(item, h5py.Dataset)]
    if not rows:
        return "datasets\n  (none)"
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    lines = [f"  {path:<{widths[0]}}  {shape:<{widths[1]}}  {dtype:<{widths[2]}}  {stats}".rstrip()
             for path, shape, dtype, stats in rows]
    return "datasets\n" + "\n".join(lines)


def _statistics_text(reader: ModelFileReader, dataset: h5py.Dataset, path: str) -> str:
    if dataset.dtype.kind != "f" or dataset.shape is None or \
            not 0 < dataset.size <= DESCRIBE_STATISTICS_MAX_ELEMENTS:
        return ""
    try:
        # a signalling NaN (a damaged float32's bits) raises NumPy's "invalid value" warning
        # when widened: counted below as NaN, not printed as a warning of its own
        with np.errstate(invalid="ignore"):
            values = np.asarray(reader.read_array(dataset, path, finite=False),
                                dtype=np.float64)
    except ModelFileError as error:
        return f"(not read: {str(error).split(': ', 1)[-1]})"
    finite = values[np.isfinite(values)]
    # Non-finite weights are the usual sign of a diverged training run: say so, loudly.
    not_finite = values.size - finite.size
    warning = f"  ({not_finite} NaN/inf)" if not_finite else ""
    if finite.size == 0:
        return warning.strip()
    return (f"min {finite.min():.4g}  max {finite.max():.4g}  mean {finite.mean():.4g}"
            f"{warning}")


def _describe_attributes(reader: ModelFileReader, items: list) -> str:
    lines = []
    for path, item in [("/", reader.file)] + items:
        if len(item.attrs) > MAX_ATTRIBUTES:
            lines.append(f"  {path}: ({len(item.attrs)} attributes, not shown)")
            continue
        shown = [name for name in item.attrs
                 if not (item is reader.file and name in RESERVED_ROOT_NAMES)]
        if shown:
            values = ", ".join(f"{name} = {_attribute_text(reader, item, name, path)}"
                               if isinstance(name, str) else
                               f"{name_text(name)} (not a valid UTF-8 name: dlcore.load "
                               f"ignores it, unread)" for name in shown)
            lines.append(f"  {path}: {values}")
    return "attributes\n" + "\n".join(lines) if lines else ""


def _attribute_text(reader: ModelFileReader, owner: Any, name: str, path: str) -> str:
    try:
        text = repr(reader.attribute(owner, name, path))
    except ModelFileError as error:
        return f"({str(error).split(': ', 1)[-1].split(';')[0]})"
    return text if len(text) <= 200 else text[:200] + "..."


def _describe_history(reader: ModelFileReader, limit: tuple[int, str]) -> str:
    group = reader.member(HISTORY_GROUP)
    if not isinstance(group, h5py.Group):
        return ""
    names = list(reader.names(group, HISTORY_GROUP))
    if not names:
        return "history\n  (empty)"
    width = max(len(name) for name in names)
    lines = []
    for name in names:
        path = f"{HISTORY_GROUP}/{name}"
        dataset = reader.member(path)
        if not isinstance(dataset, h5py.Dataset) or dataset.ndim != 1:
            lines.append(f"  {name:<{width}}  (not a 1-D dataset)")
            continue
        try:
            _check_history_length(reader, dataset, path, limit)
            values = reader.read_array(dataset, path, finite=False)
        except ModelFileError as error:
            lines.append(f"  {name:<{width}}  (not read: {str(error).split(': ', 1)[-1]})")
            continue
        last = f", last {float(values[-1]):.4g}" if len(values) else ""
        if len(values) and np.all(np.isnan(values)):
            # a monitor that had nothing to measure (an RBM's free-energy gap without
            # X_valid, as `homework task1` trains): "last nan" read as a broken run
            last = ", not measured (nan)"
        lines.append(f"  {name:<{width}}  {count(len(values), 'epoch')}{last}")
    return "history\n" + "\n".join(lines)
