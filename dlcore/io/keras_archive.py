"""Keras 3's model archives (``.keras``): what ``keras_model.save("m.keras")`` writes, read
into a dlcore model and written from one.

Keras 3 saves a model as a zip archive of three members (Keras's ``saving_lib``):

- ``config.json``: the model as Keras serialises it (``class_name``, ``config`` with the
  layers, as the ``model_config`` of a legacy HDF5 file) and, for a compiled model,
  ``compile_config``: the optimiser, the loss and the metrics given to ``compile``;
- ``metadata.json``: ``keras_version`` and ``date_saved``;
- ``model.weights.h5``: the weights in Keras 3's ``.weights.h5`` layout
  (:mod:`dlcore.io.keras_weights`) and the optimiser's variables under ``optimizer/vars``:
  ``0`` the update count, ``1`` the learning rate (when it is a number, not a schedule), then
  the slots of each trainable variable in turn (Keras interleaves them: Adam's m then v of the
  first kernel, of its bias, ...).

The optimiser's state crosses with the weights (:mod:`dlcore.io.keras_optimizer`).

The layers, the NHWC -> NCHW conversion and the compile settings are those of the legacy HDF5
files (:mod:`dlcore.io.keras`, :mod:`dlcore.io.keras_training`). Reading is guarded as for
every model file: at most :data:`MAX_MEMBERS` members; only the three above are read, never
extracted to a path the archive names; members must be stored or deflated (Keras stores them),
unencrypted, no larger than their limits (the JSON ones :data:`MAX_JSON_BYTES`, the weights
what the architecture's parameters need, :func:`weights_limit`, and :data:`MAX_WEIGHTS_BYTES`
at most) and expanding no more than :func:`~dlcore.io.guarded.inflation_limit` allows (1,000
times, and beyond 64 MiB 100 times), so that a zip bomb is refused before it is inflated; the
weights go through the guarded HDF5 reader, whose compressed datasets may inflate as much
again of the member's size in the archive, not of its inflated size.

Weights over :data:`IN_MEMORY_BYTES` are unpacked into the temporary folder (``TMPDIR``): a
failure to write there (a full disk) is a :class:`TemporaryFolderError` naming that folder,
never blamed on the archive, which is intact.
"""
from __future__ import annotations

import contextlib
import datetime
import errno
import io
import json
import mmap
import os
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from typing import Any

import h5py

from dlcore.io.atomic import TemporaryFolderError, atomic_output_path
from dlcore.io.errors import ModelFileError
from dlcore.io.guarded import (
    DAMAGED_FIX,
    MAX_JSON_BYTES,
    ModelFileReader,
    inflation_limit,
    parse_json,
    size_text,
)
from dlcore.io.keras_training import DLCORE_KEYS

ZIP_SIGNATURE = b"PK\x03\x04"
#: How an archive of no members starts (its end record alone).
EMPTY_ZIP_SIGNATURE = b"PK\x05\x06"
CONFIG_MEMBER = "config.json"
METADATA_MEMBER = "metadata.json"
WEIGHTS_MEMBER = "model.weights.h5"
#: Keras's other weights format (``save(..., weights_format="npz")``), which dlcore does not read.
NPZ_WEIGHTS_MEMBER = "model.weights.npz"
#: A Keras archive has three members and an ``assets/`` folder: far more is not one.
MAX_MEMBERS = 1_000
#: The largest weights member read: the parameters a Keras model may declare (keras.py's
#: MAX_PARAMETERS, 4 bytes each) three times over (Adam's two slots), plus room for HDF5's
#: own structures.
MAX_WEIGHTS_BYTES = 3 * 4 * 2**27 + 2**26
#: Weights members larger than this are spooled to a temporary file rather than kept in memory.
IN_MEMORY_BYTES = 2**26
#: The most bytes a weights member may hold per parameter of its architecture: float64
#: weights and three optimiser slots (Adam's two, and an EMA's); plus
#: :data:`WEIGHTS_OVERHEAD_BYTES` for HDF5's structures, the optimiser's counters and the
#: seed states of layers without parameters.
BYTES_PER_PARAMETER = 4 * 8
WEIGHTS_OVERHEAD_BYTES = 2**24
#: The learning rate Keras gives each optimiser named by a string in ``compile``.
KERAS_DEFAULT_LEARNING_RATES = {"sgd": ("SGD", 0.01), "adam": ("Adam", 0.001),
                                "rmsprop": ("RMSprop", 0.001)}


def is_archive(filename: str) -> bool:
    """Whether the file starts as a zip archive does (a ``.keras`` file, whatever its name; an
    empty one too, which is then refused as an archive holding no config.json); False when it
    cannot be read (the HDF5 reader then says why)."""
    try:
        with open(filename, "rb") as stream:
            return stream.read(len(ZIP_SIGNATURE)) in (ZIP_SIGNATURE, EMPTY_ZIP_SIGNATURE)
    except OSError:
        return False


def _error(filename: str, problem: str, fix: str = DAMAGED_FIX) -> ModelFileError:
    return ModelFileError(filename, f"{filename}: {problem}; {fix}")


#: What the zip layer raises for a damaged archive (a checksum, a cut directory, a corrupt
#: deflate stream, a compression method Python lacks).
_ZIP_FAILURES = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError,
                 ValueError, NotImplementedError, RuntimeError)


def _damaged(filename: str, error: BaseException) -> ModelFileError:
    reason = " ".join(str(error).split())[:200]
    return _error(filename, f"a damaged or truncated zip archive ({reason})",
                  "save the model again or copy the complete file")


@contextlib.contextmanager
def _open_archive(filename: str) -> Iterator[zipfile.ZipFile]:
    """The archive, open for reading; a failure to read its directory is a ModelFileError
    (what its caller does with it is not wrapped: reads go through :func:`_copy_member`)."""
    try:
        count = _member_count(filename)
        if count > MAX_MEMBERS:   # before zipfile builds an object for each of them
            # counting stops one past the limit
            held = count if count > MAX_MEMBERS + 1 else f"over {MAX_MEMBERS}"
            raise _error(filename, f"the archive holds {held} members, more than a Keras "
                                   f"model archive ({MAX_MEMBERS} at most)")
        archive = zipfile.ZipFile(filename)
        infos = archive.infolist()
    except _ZIP_FAILURES as error:
        if isinstance(error, ModelFileError):
            raise
        raise _damaged(filename, error) from None
    with archive:
        if len(infos) > MAX_MEMBERS:
            raise _error(filename, f"the archive holds {len(infos)} members, more than a Keras "
                                   f"model archive ({MAX_MEMBERS} at most)")
        yield archive


def _member_count(filename: str, limit: int = MAX_MEMBERS) -> int:
    """The number of members of the archive, found without reading its directory into
    objects: what its end-of-directory record declares (zip64's when it has one) or, when
    more, its directory's entries counted up to ``limit + 1`` from their fixed-size headers
    (a record may declare three members in front of a directory of millions, which zipfile
    reads whole); 0 when there is no record (zipfile then says the archive is damaged)."""
    with open(filename, "rb") as stream:
        record = zipfile._EndRecData(stream)   # the record zipfile itself reads first
        if record is None:
            return 0
        declared = int(record[zipfile._ECD_ENTRIES_TOTAL])
        # where zipfile starts reading the directory: it ends at the record (and zip64's)
        position = record[zipfile._ECD_LOCATION] - record[zipfile._ECD_SIZE]
        if record[zipfile._ECD_SIGNATURE] == zipfile.stringEndArchive64:
            position -= zipfile.sizeEndCentDir64 + zipfile.sizeEndCentDir64Locator
        end, counted = position + record[zipfile._ECD_SIZE], 0
        while 0 <= position < end and counted <= limit:
            stream.seek(position)
            header = stream.read(zipfile.sizeCentralDir)
            if len(header) != zipfile.sizeCentralDir or \
                    not header.startswith(zipfile.stringCentralDir):
                break   # a damaged directory, which zipfile names
            fields = struct.unpack(zipfile.structCentralDir, header)
            position += (zipfile.sizeCentralDir + fields[zipfile._CD_FILENAME_LENGTH]
                         + fields[zipfile._CD_EXTRA_FIELD_LENGTH]
                         + fields[zipfile._CD_COMMENT_LENGTH])
            counted += 1
    return max(declared, counted)


def _unpack_failure(filename: str, info: zipfile.ZipInfo, error: OSError) -> OSError:
    folder = tempfile.gettempdir()
    reason = " ".join((error.strerror or str(error)).split())[:200]
    no_room = error.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", None), errno.EFBIG)
    fix = ("free space there, or set TMPDIR to a folder with room" if no_room else
           "set TMPDIR to a folder you can write to")
    return TemporaryFolderError(
        f"{filename}: cannot unpack its {info.filename} ({size_text(info.file_size)}) into the "
        f"temporary folder {folder} (TMPDIR): {reason[:1].lower() + reason[1:]}; the archive "
        f"is not the problem: {fix}", error.errno)


def _copy_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, filename: str, sink) -> int:
    """Inflate ``info`` (checked by :func:`_member`) into ``sink`` a chunk at a time, at most
    its declared size (zipfile stops there and checks the CRC); returns the bytes copied.

    Only a failure to read is the archive's (damaged); a failure to write to ``sink`` (a
    temporary file on a full disk) is a :class:`TemporaryFolderError`."""
    copied = 0
    try:
        stream = archive.open(info)
    except _ZIP_FAILURES as error:
        raise _damaged(filename, error) from None
    with stream:
        while True:
            try:
                chunk = stream.read(2**22)
            except _ZIP_FAILURES as error:
                raise _damaged(filename, error) from None
            if not chunk:
                break
            try:
                sink.write(chunk)
            except OSError as error:
                raise _unpack_failure(filename, info, error) from None
            copied += len(chunk)
    try:
        sink.flush()   # a buffered write's failure shows here
    except OSError as error:
        raise _unpack_failure(filename, info, error) from None
    return copied


def _member(archive: zipfile.ZipFile, name: str, limit: int, filename: str,
            required: bool = True) -> zipfile.ZipInfo | None:
    """The archive's member ``name``, checked to be readable within ``limit`` bytes."""
    found = [info for info in archive.infolist() if info.filename == name]
    if not found:
        if required:
            raise _error(filename, f"the archive holds no {name}", "give a file saved by "
                         "Keras's model.save('m.keras') or by dlcore")
        return None
    if len(found) > 1:
        raise _error(filename, f"the archive holds {name} {len(found)} times")
    info = found[0]
    if info.flag_bits & 0x1:
        raise _error(filename, f"{name} is encrypted", "save the archive without a password")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise _error(filename, f"{name} is compressed with method {info.compress_type}; Keras "
                               f"stores its members (deflate is read too)")
    if info.file_size > limit:
        raise _error(filename, f"{name} holds {size_text(info.file_size)}, more than "
                               f"{size_text(limit)}"
                               + ("" if limit in (MAX_JSON_BYTES, MAX_WEIGHTS_BYTES) else
                                  " (what the parameters of its architecture need)"))
    if info.file_size > inflation_limit(info.compress_size):
        raise _error(filename, f"{name} would expand {size_text(info.compress_size)} into "
                               f"{size_text(info.file_size)} (at most "
                               f"{size_text(inflation_limit(info.compress_size))} is read): a "
                               f"zip bomb, not a model")
    return info


def _read_json(archive: zipfile.ZipFile, name: str, filename: str, required: bool = True):
    info = _member(archive, name, MAX_JSON_BYTES, filename, required)
    if info is None:
        return None
    data = io.BytesIO()
    _copy_member(archive, info, filename, data)
    try:
        return parse_json(data.getvalue().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise _error(filename, f"{name} is not valid JSON: {str(error)[:200]}") from None


def weights_limit(n_parameters: int | None) -> int:
    """The most bytes a weights member may hold for an architecture of ``n_parameters``
    parameters (None: unknown): :data:`BYTES_PER_PARAMETER` each plus
    :data:`WEIGHTS_OVERHEAD_BYTES`, within :data:`MAX_WEIGHTS_BYTES`."""
    if n_parameters is None:
        return MAX_WEIGHTS_BYTES
    return min(MAX_WEIGHTS_BYTES, BYTES_PER_PARAMETER * n_parameters + WEIGHTS_OVERHEAD_BYTES)


@contextlib.contextmanager
def _member_bytes(copy: Any, size: int) -> Iterator[Any]:
    """The ``size`` bytes of the weights member copied into ``copy`` (a spooled temporary
    file), for the reader's check of its global heap: read from memory, or memory-mapped
    where the copy was spooled to a file."""
    if size <= IN_MEMORY_BYTES:   # kept in memory by the SpooledTemporaryFile
        copy.seek(0)   # (h5py seeks to where it reads, each time)
        content = copy.read()
        yield content
        return
    with mmap.mmap(copy.fileno(), 0, access=mmap.ACCESS_READ) as content:
        yield content


@contextlib.contextmanager
def weights_file(filename: str, n_parameters: int | None = None) -> Iterator[ModelFileReader]:
    """A guarded reader of the archive's ``model.weights.h5``, copied out of the archive into
    memory (or a temporary file when large), never to a path the archive names; a member
    larger than the ``n_parameters`` of its architecture need (:func:`weights_limit`) is
    refused before it is copied."""
    limit = weights_limit(n_parameters)
    with _open_archive(filename) as archive:
        info = _member(archive, WEIGHTS_MEMBER, limit, filename, required=False)
        if info is None:
            if any(item.filename == NPZ_WEIGHTS_MEMBER for item in archive.infolist()):
                raise _error(filename, "its weights are in Keras's npz format",
                             "save it from Keras with the default weights_format='h5'")
            _member(archive, WEIGHTS_MEMBER, limit, filename)  # raises: missing
        with tempfile.SpooledTemporaryFile(max_size=IN_MEMORY_BYTES) as copy:
            size = _copy_member(archive, info, filename, copy)
            copy.seek(0)
            label = f"{filename} ({WEIGHTS_MEMBER})"
            try:
                h5file = h5py.File(copy, "r")
            except OSError as error:
                reason = " ".join(str(error).split())[:200]
                raise _error(label, f"not a readable HDF5 file ({reason})") from None
            try:
                with h5file, _member_bytes(copy, size) as content:
                    yield ModelFileReader(h5file, label, file_size=size,
                                          stored_size=info.compress_size, content=content)
            except (OSError, RuntimeError, KeyError) as error:
                from dlcore.io.hdf5 import _raised_inside_h5py
                if isinstance(error, (RuntimeError, KeyError)) and \
                        not _raised_inside_h5py(error):
                    raise
                reason = " ".join(str(error).split())[:200]
                raise _error(label, f"a damaged HDF5 file ({reason})") from error


def read_config(filename: str) -> dict:
    """The archive's ``config.json``, parsed within the limits."""
    with _open_archive(filename) as archive:
        config = _read_json(archive, CONFIG_MEMBER, filename)
    if not isinstance(config, dict):
        raise _error(filename, f"{CONFIG_MEMBER} should be a JSON object; found "
                               f"{type(config).__name__}")
    return config


def read_metadata(filename: str) -> dict:
    """The archive's ``metadata.json`` (who wrote it, when) as ``dlcore info`` shows it: empty
    when it is missing or damaged (a load reads dlcore's settings in it through
    :func:`_dlcore_metadata`, which says when it cannot)."""
    try:
        with _open_archive(filename) as archive:
            metadata = _read_json(archive, METADATA_MEMBER, filename, required=False)
    except ModelFileError:
        return {}
    return metadata if isinstance(metadata, dict) else {}


def _dlcore_metadata(filename: str) -> tuple[dict, str | None]:
    """``metadata.json`` as a load reads it, for dlcore's optimiser settings kept there (the
    forms of an export, ``exclude_from_weight_decay``), and a note when the member is there
    but cannot be read: Keras ignores it, so the model loads as Keras's would, but the
    settings it lost are said, not dropped in silence."""
    try:
        with _open_archive(filename) as archive:
            metadata = _read_json(archive, METADATA_MEMBER, filename, required=False)
    except ModelFileError as error:
        reason = str(error).removeprefix(f"{filename}: ").split("; ")[0]
    else:
        if metadata is None or isinstance(metadata, dict):
            return metadata or {}, None
        reason = f"{METADATA_MEMBER} holds a JSON {type(metadata).__name__}, not an object"
    return {}, (f"{reason[:200]}: the optimiser settings dlcore keeps there "
                f"({', '.join(DLCORE_KEYS)}) are not restored, and the model is compiled "
                f"with Keras's; compile it again as it was trained")


def training_config(compile_config) -> dict:
    """A ``.keras`` file's ``compile_config`` as the ``training_config`` of a legacy HDF5 file
    (what :func:`dlcore.io.keras_training.compile_from` reads)."""
    if not isinstance(compile_config, dict):
        return {}
    optimizer = compile_config.get("optimizer")
    if isinstance(optimizer, str) and optimizer.lower() in KERAS_DEFAULT_LEARNING_RATES:
        class_name, learning_rate = KERAS_DEFAULT_LEARNING_RATES[optimizer.lower()]
        optimizer = {"class_name": class_name, "config": {"learning_rate": learning_rate}}
    return {"loss": compile_config.get("loss"), "metrics": compile_config.get("metrics"),
            "loss_weights": compile_config.get("loss_weights"),
            "weighted_metrics": compile_config.get("weighted_metrics"),
            "optimizer_config": optimizer}


def load_archive(filename: str):
    """The dlcore model of a Keras archive (``dlcore.load`` calls this), with Keras's weights
    and, when dlcore has its settings, compiled as Keras compiled it; a warning for each layer
    left out and for compile settings dlcore does not have."""
    from dlcore.io import keras, keras_weights
    config = read_config(filename)
    with weights_file(filename, keras.parameter_count(config, filename)) as reader:
        model, imported = keras.model_from_config(config, filename, reader.file_size)
        reader.parameter_type = model.dtype   # a float64 model takes float64's range
        if not keras_weights.is_weights_file(reader.file):
            raise reader.error("it has no 'layers' group: not Keras 3's weights layout")
        same_as = keras.shared_across_nesting(
            imported, keras_weights.written_once(reader, imported))
        if same_as:   # built again with one layer where Keras has one
            model, imported = keras.model_from_config(config, filename, reader.file_size,
                                                      same_as)
        arrays_of = keras_weights.read(reader, reader.file, imported, model)
        keras.set_weights(model, imported, arrays_of)
        notes = list(imported.notes)
        if config.get("compile_config"):   # Keras writes {} for a model never compiled
            training = training_config(config["compile_config"])
            # dlcore's optimiser forms, where dlcore wrote the archive (keras_training)
            metadata, damage = _dlcore_metadata(filename)
            if damage is not None:
                notes.append(damage)
            training.update({key: metadata[key] for key in DLCORE_KEYS
                             if metadata.get(key) is not None})
            # tf.keras 2.13 to 2.15 write archives too, with tf.keras's reading of a flat
            # list of metrics (every output's)
            notes += keras.compile_as_keras_did(model, imported, reader, training,
                                                "compile_config",
                                                _archive_variable_paths(reader),
                                                f"'optimizer/vars' of {WEIGHTS_MEMBER}",
                                                keras.is_tf_keras_version(
                                                    metadata.get("keras_version")))
    keras.warn_notes(notes, filename)
    return model


def _archive_variable_paths(reader: ModelFileReader) -> list[str] | None:
    """The paths of the archive's optimiser variables in Keras's order (``optimizer/vars/0``,
    ``1``, ...), or None when it holds none."""
    group = reader.group("optimizer/vars", required=False)
    if group is None:
        return None
    names = list(reader.names(group, "optimizer/vars"))
    if sorted(names) != sorted(str(index) for index in range(len(names))):
        raise reader.error("the optimizer's variables are not numbered 0, 1, ...")
    return [f"optimizer/vars/{index}" for index in range(len(names))]


def serialized_model(exported) -> dict:
    """The model of an export (:func:`dlcore.io.keras.exported`) as Keras 3 serialises it:
    ``model_config`` with the ``module`` and ``registered_name`` where Keras's deserializer
    finds the class (``config.json``, what ``keras.models.model_from_json`` reads)."""
    return serialized_config(exported.model_config())


def serialized_config(config) -> dict:
    """A model's Keras ``config`` (``{"class_name": ..., "config": ...}``) with the ``module``
    and ``registered_name`` where Keras's deserializer finds its class."""
    # a Sequential is public, Functional is not
    if config["class_name"] == "Functional":
        return {"module": "keras.src.models.functional", **config,
                "registered_name": "Functional"}
    return {"module": "keras", **config, "registered_name": None}


def save_archive(model, path: str | os.PathLike) -> list[str]:
    """Write ``model`` (a built Sequential or Model) as a Keras 3 archive, atomically, with a
    ``compile_config`` when it is compiled and Keras has its settings; returns the notes
    (layers and settings left out). ``keras.models.load_model`` reads it."""
    from dlcore.io import keras, keras_optimizer, keras_weights
    exported = keras.exported(model, nest=True)
    config = serialized_model(exported)
    training = keras.exported_training_config(model, exported)
    # dlcore's optimiser forms are no compile arguments of Keras's: they go into
    # metadata.json, which Keras does not read
    forms = {} if training is None else {key: training.pop(key) for key in DLCORE_KEYS
                                         if key in training}
    if training is not None:
        optimizer = training.pop("optimizer_config")
        config["compile_config"] = {
            **training, "optimizer": {"module": "keras.optimizers", **optimizer,
                                      "registered_name": None}}
    state = keras_optimizer.keras_arrays(model, exported)
    metadata = {"keras_version": keras.KERAS_VERSION,
                "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")}
    metadata.update(forms)
    with atomic_output_path(path) as temporary, zipfile.ZipFile(temporary, "w") as archive:
        weights = io.BytesIO()    # the member, built in memory
        with h5py.File(weights, "w") as h5file:
            keras_weights.write(h5file, exported)
            if state is not None:
                variables = h5file.create_group("optimizer").create_group("vars")
                variables.attrs["name"] = model.optimizer.name
                for index, array in enumerate(state):
                    variables.create_dataset(str(index), data=array)
        archive.writestr(METADATA_MEMBER, json.dumps(metadata))
        archive.writestr(CONFIG_MEMBER, json.dumps(config))
        archive.writestr(WEIGHTS_MEMBER, weights.getvalue())
    return exported.notes


def describe_archive(filename: str) -> str:
    """What ``dlcore info`` prints for a Keras archive: who wrote it, its layers and every
    array of its weights with its shape, read through the guarded layers, parameters unread."""
    from dlcore.io import keras
    config, metadata = read_config(filename), read_metadata(filename)
    lines = [f"file           {filename}",
             "format         Keras 3 model archive (.keras; dlcore imports it, NHWC -> NCHW)"]
    for name in ("keras_version", "date_saved"):
        value = metadata.get(name)
        if value is not None:
            lines.append(f"{name:<15}{str(value)[:80]}")
    if config.get("compile_config"):
        lines.append("training       compiled (compile_config)")
    lines += keras.layer_lines(config)
    n_parameters = None   # a model dlcore cannot build is still listed
    with contextlib.suppress(ModelFileError):
        n_parameters = keras.parameter_count(config, filename)
    with weights_file(filename, n_parameters) as reader:
        lines += ["", f"weights ({WEIGHTS_MEMBER})"] + keras.array_lines(reader, reader.file, "")
    return "\n".join(lines)
