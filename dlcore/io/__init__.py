"""Model files and other output: HDF5 model files with a documented schema (no pickle).

``save(model, path)`` / ``load(path)`` write and read models, ``describe(path)`` summarises a file
for ``dlcore info``; the model <-> file protocol and the schema are described in
:mod:`dlcore.io.hdf5` and docs/hdf5-format.md. Every read goes through the guarded layer of
:mod:`dlcore.io.guarded` (limits on sizes, depth and links; one-line :class:`ModelFileError`)
and, for dlcore's own models, the layout checks of :mod:`dlcore.io.layouts`.

A file that cannot be loaded is a :class:`ModelFileError` (a ``ValueError``: the file is at
fault); a machine without room to write a file (:class:`NoRoomError`), a folder that takes no
new file (:class:`FolderNotWritableError`: no permission, a read-only disk), a file the user
write-protected (:class:`WriteProtectedError`: it is not replaced) or a temporary
folder without room for a ``.keras`` archive's weights or a file written in place
(:class:`TemporaryFolderError`) is an
``OSError``, whose fix is the machine's (see :class:`ModelFileError`).
"""
from dlcore.io.atomic import (
    FolderNotWritableError,
    NoRoomError,
    TemporaryFolderError,
    WriteProtectedError,
    atomic_open,
)
from dlcore.io.hdf5 import (
    FORMAT_VERSION,
    TRAINING_RECORD,
    ModelFileError,
    atomic_output_path,
    describe,
    load,
    register_model,
    registered_models,
    require_array,
    save,
)

__all__ = [
    "FORMAT_VERSION",
    "TRAINING_RECORD",
    "FolderNotWritableError",
    "ModelFileError",
    "NoRoomError",
    "TemporaryFolderError",
    "WriteProtectedError",
    "atomic_open",
    "atomic_output_path",
    "describe",
    "load",
    "register_model",
    "registered_models",
    "require_array",
    "save",
]
