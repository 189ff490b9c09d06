"""Model files and other output: HDF5 model files with a documented schema (no pickle).

``save(model, path)`` / ``load(path)`` write and read models, ``describe(path)`` summarises a file
for ``dlcore info``; the model <-> file protocol and the schema are described in
:mod:`dlcore.io.hdf5` and docs/hdf5-format.md. Every read goes through the guarded layer of
:mod:`dlcore.io.guarded` (limits on sizes, depth and links; one-line :class:`ModelFileError`)
and, for dlcore's own models, the layout checks of :mod:`dlcore.io.layouts`.
"""
from dlcore.io.atomic import NoRoomError, atomic_open
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
    "ModelFileError",
    "NoRoomError",
    "atomic_open",
    "atomic_output_path",
    "describe",
    "load",
    "register_model",
    "registered_models",
    "require_array",
    "save",
]
