"""A structured fuzzer of dlcore model files: damaged and hostile copies of real saved models.

It saves small models (a BernoulliRBM, a GaussianBernoulliRBM, a DBN, LeNet-5, an untied sparse
Autoencoder and a StackedAutoencoder, each trained a little on random data), the LeNet-5 again as
a Keras file (compiled: with a ``training_config``) and as Keras 3 weights (``.weights.h5``), and
Keras 3 archives (``.keras``: LeNet-5 written by dlcore, two written by Keras, fuzzed unpacked
and repacked, then maybe damaged as archives), and copies Keras files written by Keras itself
(tests/fixtures/: a convnet, a residual net, a model with unequal 'same' padding, a U-Net with
up-sampling and transposed convolutions, a compiled model, augmentation layers, a graph listed out
of call order, and Keras 3 weights), then writes ``--files`` copies, each changed by one
to three mutations drawn with a seeded NumPy generator: datasets deleted, mis-shaped, mis-typed
(int, string, compound, complex) or holding NaN/inf; hyperparameter JSON truncated, deeply nested,
with wrong types or hostile class names (``os.system``, ``__import__``); datasets declaring TiB
shapes (chunked, with no data written, so the file stays small); groups replaced by datasets and
datasets by groups; attributes removed or of another type; ``format_version`` changed; soft,
external, cyclic and fan-out (DAG) hard links; groups, datasets and attributes whose names are
not valid UTF-8; history series of millions of values compressed to a few kB; a dataset in a
gzipped chunk declared far larger than it (a decompression bomb); datasets stored outside the
file (external raw storage, a virtual dataset), as an empty dataspace, a scalar or of an array
type; attributes and datasets of types no model file holds (enum, opaque, variable-length,
object and region references, compound, long double); the HDF5 file cut short or with bytes
flipped; huge or negative integers in the hyperparameters (a LeNet-5 layer's padding, stride,
filters or units among them); in Keras files, the ``layer_names``/``weight_names`` lists
replaced (numbers, 2-D, 100,000 names, names climbing out of their group) and layers carrying
code (a ``Lambda`` with bytecode, a custom object) added; float datasets rewritten as float64
beyond float32's range (finite, but infinite as dlcore's float32 parameters); thousands of
Dropout layers put into a Keras Sequential's config (loading must stay linear in the layers);
archives whose end record declares only their real members in front of thousands more; odd
values for the settings of training (an optimiser's learning rate, betas, weight decay, AMSGrad,
momentum and epsilon forms; a loss's label smoothing), wherever a file keeps them; datasets
stored through the filters no base uses (LZF, shuffle, Fletcher-32, scale-offset, N-bit, SZIP)
in chunks as small as one element, partly unwritten with a fill value of NaN, infinity or
beyond float32's range, or with the filter's parameters damaged in the file's bytes; a stored
chunk replaced (by a larger chunk's, a zlib stream of MiBs of zeros, random bytes, a cut copy,
another filter mask, an edge value for SZIP's declared size, an LZF stream of MiBs of zeros);
groups nested hundreds deep;
thousands of attributes on one object. The bases
also hold archives dlcore writes of AdamW with a smoothed cross-entropy and of an SGD of
Keras's momentum form, more Keras files (a Siamese pair, transposed convolutions, an MLP, batch
normalisation, a global average pool) and a dlcore file of an earlier version.

Every copy is loaded with ``dlcore.load`` in a worker process that has an address-space limit
(``RLIMIT_AS``, 4 GiB by default) and a time limit per file, and the outcome is one of:

- ``refused-clearly``: a ``ModelFileError`` whose message is one line naming the file;
- ``loaded-and-works``: the model holds only finite float arrays and ``transform`` (RBM, DBN,
  autoencoders) or ``predict`` (networks) runs and returns finite numbers;
- ``refused-unclearly``: a ``ModelFileError`` of several lines or without the file name;
- ``internal-exception``: any other exception (counted by type);
- ``non-finite-load``: loaded, but with a NaN or infinite parameter;
- ``loaded-but-broken``: loaded, but using the model raised or gave non-finite numbers;
- ``hang``: the load did not finish in time; ``crash``: the worker died (e.g. out of memory);
- ``memory-hog``: loading the file raised the worker's peak resident memory by more than
  ``--memory-hog`` bytes (128 MiB by default; measured where Linux lets a process reset its
  peak, ``/proc/self/clear_refs``), whatever the outcome.

``dlcore.io.describe`` (what ``dlcore info`` prints) runs on every file first: it must give a
summary or the same kind of one-line refusal; any other exception it raises counts as an
internal exception.

Usage::

    python tests/model_file_fuzzer.py --files 1000 --seed 0
    python tests/model_file_fuzzer.py --data-files --files 200 --seed 0

``--data-files`` fuzzes data files instead (:func:`save_data_bases`: uint8 images, gzipped
float rows, rows behind a soft link) with the mutations of a dataset, its storage and what
surrounds it (:data:`DATA_MUTATIONS`), each read as training reads it
(:func:`classify_data_file`: ``dlcore.datasets.open_hdf5``, rows, their conversion, their
mean), under the same limits and outcomes.

The exit status is 0 when every file was refused clearly or loaded and works, 1 otherwise.
``run_fuzz`` is what tests/test_io_fuzz.py calls for its quick run.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import glob
import itertools
import json
import os
import queue
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import warnings
import zipfile
import zlib

import numpy as np

GOOD_OUTCOMES = ("refused-clearly", "loaded-and-works")
BAD_OUTCOMES = ("refused-unclearly", "internal-exception", "non-finite-load",
                "loaded-but-broken", "hang", "crash", "memory-hog", "write-timeout")
DEFAULT_MEMORY_LIMIT = 4 * 2**30
DEFAULT_TIMEOUT = 20.0
#: Seconds the fuzzer may spend writing one file (copying its base, mutating it, packing it):
#: a mutation that takes longer (a bug of the fuzzer, or of h5py writing a hostile layout) is
#: abandoned, the file left out as ``write-timeout``, instead of stopping the run for ever.
DEFAULT_WRITE_TIMEOUT = 60.0
#: The most memory one file may take beyond what the worker held before it (peak resident
#: set): the base models need a few MB, so a file that takes more made dlcore allocate what
#: its contents do not justify (a decompression bomb).
DEFAULT_MEMORY_HOG = 128 * 2**20
BASE_NAMES = ("bernoulli_rbm", "gaussian_rbm", "dbn", "lenet5", "keras_lenet5", "keras_convnet",
              "functional", "keras_residual", "keras_same_geometry", "keras_unet",
              "keras_compiled", "keras_augmented", "keras_shared_late", "keras_weights_residual",
              "keras_weights_lenet5", "distilled", "autoencoder", "stacked_autoencoder",
              "archive_lenet5", "archive_compiled", "archive_residual", "archive_frozen",
              "archive_global_max", "archive_batch_norm", "archive_regularized",
              "archive_rescaled", "archive_activations", "archive_layer_norm",
              "archive_smooth_activations", "archive_flat_joins", "archive_reshaped",
              "archive_nested", "archive_nested_base", "keras_nested_base",
              "archive_nested_vision", "keras_nested_vision", "nested_model", "dbn_hidden",
              "amsgrad", "nadam", "regularisation_rows", "archive_adamw", "archive_sgd_keras",
              "archive_global_avg", "keras_siamese", "keras_transposed", "keras_mlp",
              "keras_batch_norm", "dlcore_residual_2026_12")
#: A Keras HDF5 model file written by real Keras (tests/fixtures/make_keras_fixtures.py).
KERAS_FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures",
                             "keras_convnet.h5")
#: Fixtures copied as they are (written by Keras: tests/fixtures/make_keras_fixtures.py).
KERAS_COPIES = ("keras_residual", "keras_same_geometry", "keras_unet", "keras_compiled",
                "keras_augmented", "keras_shared_late", "keras_nested_base",
                "keras_nested_vision", "keras_siamese", "keras_transposed", "keras_mlp",
                "keras_batch_norm")
#: A dlcore model file written by an earlier version (tests/fixtures/make_dlcore_fixtures.py).
DLCORE_COPIES = ("dlcore_residual_2026_12",)
#: Keras 3 archives (``.keras``): LeNet-5 written by dlcore (trained: with its optimiser's
#: state), and those written by Keras itself (a frozen layer; a global pool; batch
#: normalisation; weight decay and max-norm; Rescaling; the other activations;
#: LayerNormalization; the smooth activations; joined flattened maps; Reshape; a nested
#: Sequential). A copy is fuzzed unpacked: its weights member
#: as an HDF5 file, holding ``config.json`` as the attribute ``model_config`` (so that the JSON
#: mutations, and Keras's code layers, reach it); then packed again, and maybe damaged as an
#: archive (:func:`mutate_archive`).
ARCHIVE_BASES = ("archive_lenet5", "archive_compiled", "archive_residual", "archive_frozen",
                 "archive_global_max", "archive_batch_norm", "archive_regularized",
                 "archive_rescaled", "archive_activations", "archive_layer_norm",
                 "archive_smooth_activations", "archive_flat_joins", "archive_reshaped",
                 "archive_nested", "archive_nested_base", "archive_nested_vision",
                 "archive_adamw", "archive_sgd_keras", "archive_global_avg")
#: A Keras weights-only file holds no architecture: the worker loads each with the one of its
#: base, kept unfuzzed beside the fuzzed files (``<base>.json``).
WEIGHTS_BASES = ("keras_weights_residual", "keras_weights_lenet5")
HOSTILE_NAMES = ("os.system", "__import__", "builtins.eval", "subprocess.Popen",
                 "dlcore.io.hdf5.save", "BernoulliRBM; import os", "../../etc/passwd", "",
                 "Sequential.__init__", "__class__")


# --------------------------------------------------------------------------------------------
# The base files
# --------------------------------------------------------------------------------------------
def save_base_models(folder):
    """Train the tiny base models and save them in ``folder``; returns name -> path."""
    import h5py

    import dlcore
    from dlcore.models import lenet5

    data = np.random.default_rng(0)
    binary = (data.random((24, 6)) < 0.5).astype(np.float32)
    models = {
        # the samplers' state: parallel tempering's chains (3 rungs of 5 chains), fast weights
        "bernoulli_rbm": dlcore.BernoulliRBM(n_hidden=3, epochs=1, batch_size=8, persistent=True,
                                             sampler="pt", n_chains=5, n_temperatures=3,
                                             backend="reference").fit(binary),
        "gaussian_rbm": dlcore.GaussianBernoulliRBM(n_hidden=3, epochs=1, batch_size=8,
                                                    learn_sigma=True, sampler="fpcd",
                                                    n_chains=5, backend="reference")
        .fit(data.normal(size=(24, 6)).astype(np.float32)),
        "dbn": dlcore.DBN(layers=[6, 4, 3], epochs=1, batch_size=8, up_down_epochs=1,
                          up_down_batch_size=8, backend="reference").fit(binary),
        "autoencoder": dlcore.Autoencoder(n_hidden=3, tied_weights=False, sparsity_target=0.1,
                                          sparsity_cost=0.1, epochs=1, batch_size=8,
                                          backend="reference").fit(binary),
        "stacked_autoencoder": dlcore.StackedAutoencoder(layers=[6, 4, 3], epochs=1,
                                                         batch_size=8, backend="reference")
        .fit(binary),
    }
    # the column names a fit on a pandas table leaves (the file's feature_names_in attribute)
    models["bernoulli_rbm"].feature_names_in_ = np.asarray([f"pixel{i}" for i in range(6)],
                                                           dtype=object)
    network = lenet5(backend="reference")
    network.compile("cross_entropy", "sgd", ["accuracy"])
    images = data.random((4, 1, 28, 28)).astype(np.float32)
    network.fit(images, np.arange(4) % 10, epochs=1, batch_size=4, verbose=0)
    network.layers[0].trainable = False   # a frozen layer's flag, in every file of it
    models["lenet5"] = network
    models["functional"] = _functional_model(data)
    # a student compiled with the distillation loss: a loss config with a number in it
    student = dlcore.models.mlp(input_shape=(6,), hidden=(4,), n_classes=3, dropout=0.5,
                                backend="reference")
    student.compile(dlcore.losses.Distillation(3.0), "adam", ["accuracy"])
    student.fit(data.random((8, 6)).astype(np.float32), np.full((8, 3), 1 / 3), epochs=1,
                batch_size=4, verbose=0)
    models["distilled"] = student
    # the fifth pass's contents: a model nesting a frozen Sequential (its models/calls), a DBN
    # given hidden= (layers null), AMSGrad's and Nadam's slots, homework regularisation's rows
    models["nested_model"] = _nested_model(data)
    models["dbn_hidden"] = dlcore.DBN(hidden=[4, 3], epochs=1, batch_size=8,
                                      backend="reference").fit(binary)
    for name, optimizer in (("amsgrad", dlcore.optimizers.Adam(amsgrad=True)),
                            ("nadam", dlcore.optimizers.Nadam())):
        mlp = dlcore.models.mlp(input_shape=(6,), hidden=(4,), n_classes=3,
                                backend="reference")
        mlp.compile("cross_entropy", optimizer, ["accuracy"])
        mlp.fit(binary, np.arange(24) % 3, epochs=1, batch_size=8, verbose=0)
        models[name] = mlp
    models["regularisation_rows"] = _regularisation_rows(data)
    # the sixth pass's contents: a locally connected layer (a kernel per output position), noise
    # on a kernel, activity penalties, an optimiser's decoupled weight decay
    models["sixth_pass_layers"] = _sixth_pass_layers(data)
    paths = {}
    for name, model in models.items():
        paths[name] = os.path.join(folder, f"{name}.h5")
        dlcore.save(model, paths[name])
    # Keras files: LeNet-5 exported by dlcore, and a convnet written by Keras itself
    paths["keras_lenet5"] = os.path.join(folder, "keras_lenet5.h5")
    dlcore.save(network, paths["keras_lenet5"], format="keras")
    paths["keras_convnet"] = os.path.join(folder, "keras_convnet.h5")
    shutil.copyfile(KERAS_FIXTURE, paths["keras_convnet"])
    for name in KERAS_COPIES:
        paths[name] = os.path.join(folder, f"{name}.h5")
        shutil.copyfile(KERAS_FIXTURE.replace("keras_convnet", name), paths[name])
    paths["archive_lenet5"] = os.path.join(folder, "archive_lenet5.keras")
    network.save(paths["archive_lenet5"])
    for name in DLCORE_COPIES:
        paths[name] = os.path.join(folder, f"{name}.h5")
        shutil.copyfile(KERAS_FIXTURE.replace("keras_convnet", name), paths[name])
    # the fifth pass's Keras training settings, in archives dlcore writes and reads compiled
    # with their state: AdamW's weight decay and a smoothed cross-entropy; an SGD of Keras's
    # momentum form (metadata.json keeps the form)
    for name, optimizer, loss in (
            ("archive_adamw", dlcore.optimizers.AdamW(0.01, weight_decay=0.004),
             dlcore.losses.CategoricalCrossentropy(label_smoothing=0.1)),
            ("archive_sgd_keras", dlcore.optimizers.SGD(0.01, momentum=0.9, nesterov=True,
                                                        momentum_form="keras"),
             "cross_entropy")):
        mlp = dlcore.models.mlp(input_shape=(6,), hidden=(4,), n_classes=3,
                                backend="reference")
        mlp.compile(loss, optimizer, ["accuracy"])
        # one-hot rows: a smoothed cross-entropy of integer labels exports uncompiled (Keras's
        # sparse cross-entropy does not smooth), and the archive is to keep its training state
        mlp.fit(binary, np.eye(3, dtype=np.float32)[np.arange(24) % 3], epochs=1, batch_size=8,
                verbose=0)
        paths[name] = os.path.join(folder, f"{name}.keras")
        mlp.save(paths[name])
    for name in ("compiled", "residual", "frozen", "global_max", "global_avg", "batch_norm",
                 "regularized", "rescaled", "activations", "layer_norm", "smooth_activations",
                 "flat_joins", "reshaped", "nested", "nested_base", "nested_vision"):
        paths[f"archive_{name}"] = os.path.join(folder, f"archive_{name}.keras")
        shutil.copyfile(KERAS_FIXTURE.replace("convnet.h5", f"{name}.keras"),
                        paths[f"archive_{name}"])
    # Keras 3 weights files, written by Keras and by dlcore, with their architectures
    weights = {"keras_weights_residual": KERAS_FIXTURE.replace("convnet", "residual.weights"),
               "keras_weights_lenet5": None}
    for name, source in weights.items():
        paths[name] = os.path.join(folder, f"{name}.h5")
        if source is None:
            network.save_weights(os.path.join(folder, f"{name}.weights.h5"))
            shutil.move(os.path.join(folder, f"{name}.weights.h5"), paths[name])
            architecture = network.to_json()
        else:
            shutil.copyfile(source, paths[name])
            with h5py.File(KERAS_FIXTURE.replace("convnet", "residual"), "r") as h5file:
                architecture = h5file.attrs["model_config"]
        with open(os.path.join(folder, f"{name}.json"), "w", encoding="utf-8") as stream:
            stream.write(architecture)
    return paths


#: The data files of ``--data-files`` (read by ``dlcore.datasets.open_hdf5``, dataset
#: "images"): uint8 images stored whole, float rows in gzip chunks, and rows reached by a soft
#: link (``images -> /train/x``, shuffled and gzipped).
DATA_BASE_NAMES = ("data_uint8", "data_gzip", "data_linked")


def save_data_bases(folder):
    """Write the data files of :data:`DATA_BASE_NAMES` in ``folder``; returns name -> path."""
    import h5py
    rng = np.random.default_rng(0)
    paths = {name: os.path.join(folder, f"{name}.h5") for name in DATA_BASE_NAMES}
    with h5py.File(paths["data_uint8"], "w") as h5file:
        h5file["images"] = (rng.random((64, 28, 28)) * 255).astype(np.uint8)
    with h5py.File(paths["data_gzip"], "w") as h5file:
        h5file.create_dataset("images", data=rng.random((200, 20)).astype(np.float32),
                              chunks=(16, 20), compression="gzip")
    with h5py.File(paths["data_linked"], "w") as h5file:
        h5file.create_dataset("train/x", data=rng.random((50, 8)), chunks=(5, 8),
                              compression="gzip", shuffle=True)
        h5file["images"] = h5py.SoftLink("/train/x")
    for path in paths.values():
        with h5py.File(path, "r+") as h5file:
            h5file["labels"] = np.arange(64) % 10
    return paths


def _sixth_pass_layers(data):
    """A trained LocallyConnected2D (kernel noise, an L1 activity penalty) -> Flatten ->
    Dense (an L2 activity penalty), compiled with Adam and a weight decay."""
    import dlcore
    from dlcore.layers import Dense, Flatten, LocallyConnected2D
    network = dlcore.Sequential(
        [LocallyConnected2D(2, 3, kernel_noise=0.01,
                            activity_regularizer=dlcore.regularizers.l1(1e-3)),
         Flatten(), Dense(3, activation="softmax",
                          activity_regularizer=dlcore.regularizers.l2(1e-3))],
        input_shape=(1, 5, 5), backend="reference", seed=0)
    network.compile("cross_entropy", dlcore.optimizers.Adam(0.01, weight_decay=0.01),
                    ["accuracy"])
    network.fit(data.random((8, 1, 5, 5)).astype(np.float32), np.arange(8) % 3, epochs=1,
                batch_size=4, verbose=0)
    return network


def load_for_fuzz(path):
    """``dlcore.load(path)``; a fuzzed copy of a weights-only base with that base's
    architecture (``<base>.json`` beside it, when :func:`save_base_models` wrote it: a caller
    may give its own files as the bases)."""
    import dlcore
    for base in WEIGHTS_BASES:
        architecture = os.path.join(os.path.dirname(path), f"{base}.json")
        if os.path.basename(path).endswith(f"_{base}.h5") and os.path.exists(architecture):
            with open(architecture, encoding="utf-8") as stream:
                return dlcore.load(path, architecture=stream.read())
    return dlcore.load(path)


# --------------------------------------------------------------------------------------------
# Mutations: each takes (h5file, rng) and returns a short description
# --------------------------------------------------------------------------------------------
def _objects(h5file, kind):
    found = []
    h5file.visititems(lambda path, item: found.append(path) if isinstance(item, kind) else None)
    return found


def _datasets(h5file):
    import h5py
    return _objects(h5file, h5py.Dataset)


def _small_datasets(h5file):
    """Datasets that a mutation may read (not the TiB ones an earlier mutation declared, nor
    those whose chunks :func:`stored_chunks` damaged: HDF5 may crash reading them)."""
    damaged = DAMAGED_CHUNKS.get(h5file.filename, set())
    return [path for path in _datasets(h5file)
            if (h5file[path].size or 0) <= 1_000_000 and path not in damaged]


def _groups(h5file):
    import h5py
    return _objects(h5file, h5py.Group)


def _attribute_owners(h5file):
    return [path for path in ["/"] + _datasets(h5file) + _groups(h5file)
            if len(h5file[path].attrs)]


def _choose(rng, items):
    return items[int(rng.integers(len(items)))] if items else None


def delete_dataset(h5file, rng):
    path = _choose(rng, _datasets(h5file))
    if path:
        del h5file[path]
    return f"delete dataset {path}"


def delete_group(h5file, rng):
    path = _choose(rng, _groups(h5file))
    if path:
        del h5file[path]
    return f"delete group {path}"


def reshape_dataset(h5file, rng):
    path = _choose(rng, _small_datasets(h5file))
    if not path:
        return "reshape: no dataset"
    dataset = h5file[path]
    shape, dtype = list(dataset.shape), dataset.dtype
    choice = int(rng.integers(4))
    if choice == 0 and shape:
        axis = int(rng.integers(len(shape)))
        shape[axis] = max(0, shape[axis] + int(rng.choice([-1, 1, 5])))
    elif choice == 1:
        shape.append(int(rng.integers(1, 4)))
    elif choice == 2 and shape:
        shape.pop()
    else:
        shape = [0] * len(shape) if shape else [0]
    del h5file[path]
    h5file.create_dataset(path, data=np.ones(shape, dtype=dtype))
    return f"reshape {path} to {tuple(shape)}"


def retype_dataset(h5file, rng):
    import h5py
    path = _choose(rng, _small_datasets(h5file))
    if not path:
        return "retype: no dataset"
    shape = h5file[path].shape
    kind = _choose(rng, ["int", "string", "compound", "complex", "bool", "float16", "uint8"])
    del h5file[path]
    if kind == "int":
        data = np.full(shape, 7, np.int64)
    elif kind == "string":
        data = np.full(shape, "x", dtype=object)
        h5file.create_dataset(path, data=data, dtype=h5py.string_dtype())
        return f"retype {path} to string"
    elif kind == "compound":
        data = np.zeros(shape, dtype=[("a", "f4"), ("b", "i4")])
    elif kind == "complex":
        data = np.full(shape, 1 + 2j, np.complex64)
    elif kind == "bool":
        data = np.ones(shape, bool)
    elif kind == "float16":
        data = np.ones(shape, np.float16)
    else:
        data = np.ones(shape, np.uint8)
    h5file.create_dataset(path, data=data)
    return f"retype {path} to {kind}"


def non_finite_dataset(h5file, rng):
    paths = [p for p in _small_datasets(h5file) if h5file[p].dtype.kind == "f" and h5file[p].size]
    path = _choose(rng, paths)
    if not path:
        return "non-finite: no float dataset"
    dataset = h5file[path]
    values = dataset[()]
    flat = values.reshape(-1)
    count = 1 if rng.random() < 0.7 else flat.size
    where = rng.choice(flat.size, size=count, replace=False)
    flat[where] = _choose(rng, [np.nan, np.inf, -np.inf])
    dataset[...] = values
    return f"non-finite values in {path}"


def beyond_float32_dataset(h5file, rng):
    """A float dataset rewritten as float64 holding values beyond float32's range (finite, so
    a NaN check passes them; infinite once cast to dlcore's float32 parameters)."""
    paths = [p for p in _small_datasets(h5file) if h5file[p].dtype.kind == "f" and h5file[p].size]
    path = _choose(rng, paths)
    if not path:
        return "beyond float32: no float dataset"
    values = h5file[path][()].astype(np.float64)
    flat = values.reshape(-1)
    count = 1 if rng.random() < 0.7 else flat.size
    flat[rng.choice(flat.size, size=count, replace=False)] = \
        float(_choose(rng, [1e39, -1e39, 1e300, -3.5e38]))
    del h5file[path]
    h5file[path] = values
    return f"float64 values beyond float32's range in {path}"


def many_keras_layers(h5file, rng):
    """Thousands of Dropout layers put into a Keras Sequential's ``model_config`` (a config.json
    of a few hundred kB): loading must take time linear in the layers, not quadratic."""
    if "model_config" not in h5file.attrs:
        return "many layers: not a Keras file"
    config = json.loads(h5file.attrs["model_config"])
    if config.get("class_name") != "Sequential":
        return "many layers: not a Keras Sequential"
    layers = config["config"]["layers"]
    count = int(rng.integers(1000, 4000))
    position = 1 + next((index for index, layer in enumerate(layers)
                         if layer.get("class_name") != "InputLayer"), 0)
    layers[position:position] = [
        {"module": "keras.layers", "class_name": "Dropout",
         "config": {"name": f"fuzz_dropout_{index}", "rate": 0.1}, "registered_name": None}
        for index in range(count)]
    h5file.attrs["model_config"] = json.dumps(config)
    return f"model_config gets {count} Dropout layers"


def huge_dataset(h5file, rng):
    path = _choose(rng, _small_datasets(h5file))
    if not path:
        return "huge: no dataset"
    shape = list(h5file[path].shape) or [1]
    dtype = h5file[path].dtype if h5file[path].dtype.kind in "biuf" else np.float32
    if rng.random() < 0.5:
        shape[0] = 2**40 // max(1, int(np.prod(shape[1:])))  # the other axes still match
    else:
        shape = [2**20] * max(2, len(shape))
    del h5file[path]
    # Chunked with no chunk written: the file stays small, the declared size is TiB.
    h5file.create_dataset(path, shape=tuple(shape), maxshape=tuple(None for _ in shape),
                          chunks=tuple(1 for _ in shape), dtype=dtype)
    return f"huge declared shape {tuple(shape)} for {path}"


def group_to_dataset(h5file, rng):
    path = _choose(rng, _groups(h5file))
    if not path:
        return "group-to-dataset: no group"
    del h5file[path]
    h5file[path] = np.zeros(3, np.float32)
    return f"group {path} replaced by a dataset"


def dataset_to_group(h5file, rng):
    path = _choose(rng, _datasets(h5file))
    if not path:
        return "dataset-to-group: no dataset"
    del h5file[path]
    group = h5file.create_group(path)
    group["inner"] = np.zeros(2, np.float32)
    return f"dataset {path} replaced by a group"


def add_links(h5file, rng):
    import h5py
    group = h5file[_choose(rng, ["/"] + _groups(h5file))]
    choice = int(rng.integers(4))
    if choice == 0:
        group["loop"] = h5py.SoftLink("/")
        return f"soft link {group.name}/loop -> /"
    if choice == 1:
        group["outside"] = h5py.ExternalLink("/etc/passwd", "/")
        return f"external link in {group.name}"
    if choice == 2:
        group["dangling"] = h5py.SoftLink("/no/such/object")
        return f"dangling soft link in {group.name}"
    group["cycle"] = h5file["/"]  # a hard link to the root: a cycle in the group graph
    return f"hard-link cycle in {group.name}"


def remove_attribute(h5file, rng):
    owner = h5file[_choose(rng, _attribute_owners(h5file)) or "/"]
    name = _choose(rng, list(owner.attrs))
    if name is None:
        return "remove attribute: none"
    del owner.attrs[name]
    return f"remove attribute {name} of {owner.name}"


def _other_value(rng):
    choice = int(rng.integers(12))
    values = [
        lambda: "not a number", lambda: np.int64(-5), lambda: np.int64(2**62),
        lambda: np.float64(np.nan), lambda: np.float64(np.inf), lambda: np.float64(1.5),
        lambda: np.arange(10_000, dtype=np.float64), lambda: np.bool_(True),
        lambda: np.uint64(2**64 - 1), lambda: np.array([1, 2, 3], np.int32),
        lambda: np.zeros((), dtype=[("a", "f4"), ("b", "i4")]), lambda: np.complex128(1j)]
    return values[choice]()


def swap_attribute_type(h5file, rng):
    owner = h5file[_choose(rng, _attribute_owners(h5file)) or "/"]
    name = _choose(rng, list(owner.attrs))
    if name is None:
        return "swap attribute: none"
    value = _other_value(rng)
    del owner.attrs[name]
    owner.attrs[name] = value
    return f"attribute {name} of {owner.name} set to {type(value).__name__}"


def change_format_version(h5file, rng):
    value = _choose(rng, [np.int64(0), np.int64(-1), np.int64(2), np.int64(3), np.int64(2**40), "1",
                          np.float64(1.0), np.array([1, 1]), np.bool_(True), np.uint64(1)])
    h5file.attrs["format_version"] = value
    return f"format_version set to {value!r}"


def hostile_model_class(h5file, rng):
    name = _choose(rng, HOSTILE_NAMES)
    h5file.attrs["model_class"] = name
    return f"model_class set to {name!r}"


def non_utf8_name(h5file, rng):
    """A group or dataset whose name is not valid UTF-8 (a Latin-1 writer's, or h5py's
    low-level API's): h5py lists it as bytes."""
    import h5py
    parent = h5file[_choose(rng, ["/"] + _groups(h5file))]
    name = _choose(rng, [b"Gew\xe4chte", b"\xff\xfebad", b"err\xff"])
    if rng.random() < 0.5:
        h5py.h5g.create(parent.id, name)
        return f"group named {name!r} in {parent.name}"
    series = h5py.h5d.create(parent.id, name, h5py.h5t.py_create(np.dtype("f8")),
                             h5py.h5s.create_simple((3,)))
    series.write(h5py.h5s.ALL, h5py.h5s.ALL, np.zeros(3))
    return f"dataset named {name!r} in {parent.name}"


def non_utf8_attribute_name(h5file, rng):
    """An attribute whose name is not valid UTF-8 (a Latin-1 tool's annotation): h5py lists
    it as bytes; it holds a number, a string or any other value of ``swap_attribute_type``."""
    owner = h5file[_choose(rng, _attribute_owners(h5file)) or "/"]
    name = _choose(rng, [b"Gew\xe4chte", b"\xff\xfebad", b"Pr\xfcfer"])
    value = _other_value(rng)
    if isinstance(value, np.ndarray) and value.nbytes > 32_768:
        value = value[:1000]   # an attribute's object header holds at most 64 KiB
    owner.attrs.create(name, value)
    return f"attribute named {name!r} of {owner.name} set to {type(value).__name__}"


def long_history(h5file, rng):
    """A history series of millions of epochs, compressed to a few kB (each value would become
    a 32-byte Python float)."""
    length = int(rng.choice([2**22, 2**24]))
    series = h5file.create_dataset(f"history/long_{length}", shape=(length,), dtype="u1",
                                   chunks=(2**20,), compression="gzip")
    series[:] = 0
    return f"compressed history series of {length} values"


def chunk_bomb(h5file, rng):
    """A dataset rewritten with its own values in one gzipped chunk declared far larger than
    it (64 or 256 MiB for a few numbers: a few hundred kB of file), which HDF5 inflates whole
    to read any number of it."""
    path = _choose(rng, [p for p in _small_datasets(h5file) if h5file[p].shape
                         and h5file[p].dtype.kind in "biuf"])
    if not path:
        return "chunk bomb: no dataset"
    values, itemsize = h5file[path][()], h5file[path].dtype.itemsize
    chunk_bytes = int(_choose(rng, [2**26, 2**28, 2**28]))
    side = max(1, int((chunk_bytes // itemsize) ** (1 / values.ndim)))
    chunks = tuple(max(length, side) for length in values.shape)
    del h5file[path]
    dataset = h5file.create_dataset(path, shape=values.shape, dtype=values.dtype,
                                    maxshape=tuple(None for _ in values.shape), chunks=chunks,
                                    compression="gzip")
    dataset.id.write_direct_chunk((0,) * values.ndim, _gzipped_chunk(values, chunks))
    return f"{path} in a gzipped chunk of shape {chunks}"


def _zero_mebibyte_blocks():
    """Deflate blocks of one MiB of zeros that stand alone (no reference before them, byte
    aligned, not final): repeated, any number of MiB of zeros."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    return compressor.compress(bytes(2**20)) + compressor.flush(zlib.Z_FULL_FLUSH)


def _gzipped_chunk(values, chunks):
    """The zlib stream HDF5's gzip filter writes for a chunk of shape ``chunks`` holding
    ``values`` in its corner, zeros elsewhere, made without deflating the hundreds of MiB of
    zeros (seconds a chunk): the rows holding values are deflated, then the blocks of
    :func:`_zero_mebibyte_blocks` repeated, a final empty block and the Adler-32 of it all
    (zeros leave its sum A alone and add A to B once per byte)."""
    corner = np.zeros((values.shape[0],) + chunks[1:], dtype=values.dtype)
    corner[tuple(slice(0, length) for length in values.shape)] = values
    head = corner.tobytes()
    zeros = int(np.prod(chunks)) * values.dtype.itemsize - len(head)
    padding, mebibytes = zeros % 2**20, zeros // 2**20
    compressor = zlib.compressobj(6, zlib.DEFLATED, 15)
    stream = compressor.compress(head + bytes(padding)) + compressor.flush(zlib.Z_FULL_FLUSH)
    stream += _zero_mebibyte_blocks() * mebibytes
    stream += zlib.compressobj(6, zlib.DEFLATED, -15).flush()   # the final, empty block
    checksum = zlib.adler32(head + bytes(padding))
    total, running = checksum & 0xFFFF, checksum >> 16
    running = (running + mebibytes * 2**20 * total) % 65521
    return stream + struct.pack(">I", (running << 16) | total)


def lzf_literals(data):
    """An LZF stream of ``data`` as literal runs only (32 bytes a run at most): valid for
    h5py's LZF filter, though no smaller."""
    return b"".join(bytes([len(run) - 1]) + run
                    for run in (data[start:start + 32] for start in range(0, len(data), 32)))


def lzf_zeros(n_bytes):
    """An LZF stream of ``n_bytes`` zeros (at least 1), made without compressing them: one
    literal zero, then back-references of 264 bytes a distance of 1 back (3 bytes each), then
    what is left."""
    left = n_bytes - 1
    stream = b"\x00\x00" + b"\xe0\xff\x00" * (left // 264)
    left %= 264
    if left >= 9:
        stream += bytes([0xE0, left - 9, 0])
    elif left >= 3:
        stream += bytes([(left - 2) << 5, 0])
    elif left:
        stream += bytes([left - 1]) + bytes(left)
    return stream


def odd_storage(h5file, rng):
    """A dataset whose data lies elsewhere: external raw storage (another file's bytes, even a
    device's) or a virtual dataset mapping another file; or whose storage is an empty
    dataspace, a scalar, or one element of an array type."""
    import h5py
    path = _choose(rng, _small_datasets(h5file))
    if not path:
        return "odd storage: no dataset"
    dataset = h5file[path]
    shape, dtype = dataset.shape or (1,), dataset.dtype
    choice = _choose(rng, ["external", "device", "virtual", "empty", "scalar", "array-dtype"])
    del h5file[path]
    if choice in ("external", "device"):
        source = "/etc/passwd" if choice == "external" else "/dev/zero"
        n_bytes = max(1, int(np.prod(shape))) * dtype.itemsize
        h5file.create_dataset(path, shape=shape, dtype=dtype,
                              external=[(source, 0, n_bytes)])
    elif choice == "virtual":
        layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
        layout[...] = h5py.VirtualSource("/etc/passwd", "data", shape=shape, dtype=dtype)
        h5file.create_virtual_dataset(path, layout)
    elif choice == "empty":
        h5file.create_dataset(path, data=h5py.Empty(dtype))
    elif choice == "scalar":
        h5file.create_dataset(path, data=np.asarray(1, dtype))
    else:
        h5file.create_dataset(path, shape=shape[:1], dtype=np.dtype((dtype, (2,))))
    return f"{path} stored as {choice}"


#: Byte patches a mutation asks for once the file is closed (h5py cannot write a filter's
#: parameters as HDF5 stores them): file name -> [(old bytes, new bytes)].
PENDING_PATCHES = collections.defaultdict(list)
#: Parameter values that reach HDF5's edge cases: sizes of 0, 1, powers of two, the top of
#: 31 and 32 bits.
FILTER_PARAMETER_EDGES = (0, 1, 2, 3, 4, 7, 8, 16, 31, 32, 33, 63, 64, 65, 255, 256, 2**16,
                          2**31 - 1, 2**31, 2**32 - 1)


def _filtered_dataset(h5file, rng, kinds):
    """A small integer or float dataset rewritten through one of HDF5's filters or h5py's
    LZF (``kinds``), in chunks of one element along some axes; returns (path, kind) or
    (None, None)."""
    import h5py
    path = _choose(rng, [p for p in _small_datasets(h5file) if h5file[p].shape
                         and h5file[p].dtype.kind in "iuf" and 0 < h5file[p].size])
    if not path:
        return None, None
    values = h5file[path][()]
    kind = _choose(rng, kinds)
    chunks = tuple(1 if rng.random() < 0.3 else length for length in values.shape)
    if kind == "szip":   # HDF5 writes SZIP chunks of at least 32 elements only
        chunks = values.shape
        kind = kind if values.size >= 32 else "deflate"
    options = {"lzf": {"compression": "lzf"}, "deflate": {"compression": "gzip"},
               "shuffle": {"shuffle": True, "compression": "gzip"},
               "fletcher32": {"fletcher32": True}, "szip": {"compression": "szip"},
               "scaleoffset": {"scaleoffset": 3 if values.dtype.kind == "f" else 0}}.get(kind)
    if options is None:   # N-bit: h5py has no keyword for it
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_chunk(chunks)
        dcpl.set_filter(h5py.h5z.FILTER_NBIT, 0, ())
        options = {"dcpl": dcpl}
    fill = None
    if values.dtype.kind == "f" and kind != "scaleoffset" and rng.random() < 0.3:
        fill = _choose(rng, [np.nan, np.inf, 1e300, -0.0])
    dtype = np.float64 if fill == 1e300 else values.dtype
    del h5file[path]
    dataset = h5file.create_dataset(path, shape=values.shape, dtype=dtype, chunks=chunks,
                                    fillvalue=fill, **options)
    if fill is None or rng.random() < 0.5:
        dataset[...] = values
    else:
        dataset[:1] = values[:1]   # the rest: chunks never written, read as the fill value
    return path, kind + ("" if fill is None else f" (fill value {fill})")


def filtered_storage(h5file, rng):
    """A dataset stored through HDF5's own filters, which no base file uses (LZF, shuffle,
    Fletcher-32, scale-offset, N-bit, SZIP), in chunks as small as one element, maybe partly
    unwritten with a fill value of NaN, infinity or beyond float32's range."""
    path, kind = _filtered_dataset(h5file, rng, ["lzf", "shuffle", "fletcher32", "scaleoffset",
                                                 "nbit", "szip"])
    return f"{path} stored with {kind}" if path else "filtered storage: no dataset"


def filter_parameters(h5file, rng):
    """A dataset stored through a filter of several parameters (scale-offset, N-bit, SZIP),
    whose parameters are then damaged in the file's bytes (once it is closed): HDF5 reads
    them back unchecked (a scale-offset chunk of 2**31 - 1 elements crashed it)."""
    import struct as struct_module
    path, kind = _filtered_dataset(h5file, rng, ["scaleoffset", "nbit", "szip"])
    if not path:
        return "filter parameters: no dataset"
    plist = h5file[path].id.get_create_plist()
    parameters = [plist.get_filter(index)[2] for index in range(plist.get_nfilters())]
    parameters = _choose(rng, [values for values in parameters if len(values) > 1])
    if parameters is None:
        return f"{path} stored with {kind}: no parameters"
    changed, damage = list(parameters), []
    for _ in range(int(rng.integers(1, 4))):
        index = int(rng.integers(len(changed)))
        changed[index] = (int(_choose(rng, FILTER_PARAMETER_EDGES)) if rng.random() < 0.7
                          else int(rng.integers(2**32)))
        damage.append(f"{index}={changed[index]}")
    PENDING_PATCHES[h5file.filename].append(
        (struct_module.pack(f"<{len(parameters)}I", *parameters),
         struct_module.pack(f"<{len(changed)}I", *changed)))
    return f"{path} stored with {kind} of parameters {', '.join(damage)}"


def apply_pending_patches(path):
    """Apply the byte patches mutations asked for (each only where its bytes occur once)."""
    patches = PENDING_PATCHES.pop(path, [])
    if not patches:
        return
    with open(path, "rb") as stream:
        data = stream.read()
    for old, new in patches:
        if data.count(old) == 1:
            data = data.replace(old, new)
    with open(path, "wb") as stream:
        stream.write(data)


#: The datasets whose stored chunks :func:`stored_chunks` damaged: file name -> paths.
DAMAGED_CHUNKS = collections.defaultdict(set)
#: How :func:`stored_chunks` rewrites a stored chunk.
CHUNK_DAMAGES = ("transplant", "deflate-bomb", "lzf-bomb", "garbage", "truncated",
                 "filter-mask", "declared-size")


def stored_chunks(h5file, rng):
    """A dataset rewritten through one of HDF5's filters (deflate, shuffle, LZF, SZIP,
    Fletcher-32, or none), one of whose stored chunks is then replaced in the file: the chunk of
    a dataset of larger chunks through the same filters (it inflates beyond its own), a zlib
    or LZF stream of up to 64 MiB of zeros, random bytes, the chunk cut short, the chunk with
    another filter mask (filters skipped: its stored bytes read as if they were the values),
    or its first four bytes (SZIP's declared size) set to an edge value."""
    path = _choose(rng, [p for p in _small_datasets(h5file) if h5file[p].shape
                         and h5file[p].dtype.kind in "iuf" and 0 < h5file[p].size])
    if not path:
        return "stored chunks: no dataset"
    values = h5file[path][()]
    kind = _choose(rng, ["deflate", "shuffle", "lzf", "szip", "fletcher32", "none"])
    options = {"deflate": {"compression": "gzip"},
               "shuffle": {"shuffle": True, "compression": "gzip", "fletcher32": True},
               "lzf": {"compression": "lzf"}, "szip": {"compression": "szip"},
               "fletcher32": {"fletcher32": True}, "none": {}}[kind]
    chunks = tuple(max(1, -(-length // int(rng.integers(1, 3)))) for length in values.shape)
    if kind == "szip" and (values.size < 32 or np.prod(chunks) < 32):
        kind, options = "deflate", {"compression": "gzip"}
    del h5file[path]
    dataset = h5file.create_dataset(path, data=values, chunks=chunks, **options)
    damage = _choose(rng, list(CHUNK_DAMAGES))
    origin = (0,) * values.ndim
    mask, stored = dataset.id.read_direct_chunk(origin)
    if damage == "transplant":
        scale = int(_choose(rng, [2, 16, 1024]))
        donor_chunks = tuple(length * scale for length in chunks)
        if np.prod(donor_chunks) * values.dtype.itemsize > 2**26:
            donor_chunks = chunks
        donor = h5file.create_dataset("fuzz_donor", shape=donor_chunks, dtype=values.dtype,
                                      chunks=donor_chunks, **options)
        donor[...] = 0
        mask, stored = donor.id.read_direct_chunk((0,) * values.ndim)
        del h5file["fuzz_donor"]
    elif damage == "deflate-bomb":
        stored = zlib.compress(bytes(int(_choose(rng, [2**12, 2**20, 2**26]))))
    elif damage == "lzf-bomb":
        stored = lzf_zeros(int(_choose(rng, [2**12, 2**20, 2**26])))
    elif damage == "garbage":
        stored = rng.integers(0, 256, int(rng.integers(0, 2 * len(stored) + 2)),
                              dtype=np.uint8).tobytes()
    elif damage == "truncated":
        stored = stored[:int(rng.integers(0, len(stored)))]
    elif damage == "filter-mask":
        mask = int(rng.integers(0, 2**32))
    else:
        size = int(_choose(rng, FILTER_PARAMETER_EDGES))
        stored = struct.pack("<I", size) + stored[4:]
    if kind == "none":   # HDF5 writes an unfiltered chunk over its fixed size, whatever it is
        size = len(dataset.id.read_direct_chunk(origin)[1])
        stored = stored[:size].ljust(size, b"\0")
    DAMAGED_CHUNKS[h5file.filename].add(path)
    dataset.id.write_direct_chunk(origin, stored or b"\0", mask)
    return f"{path} stored with {kind}, its first chunk {damage} ({len(stored)} bytes)"


def deep_groups(h5file, rng):
    """Groups nested far deeper than a model file's (20 to 400), under a group of the file."""
    group = h5file[_choose(rng, ["/"] + _groups(h5file))]
    depth = int(rng.choice([20, 100, 400]))
    for level in range(depth):
        group = group.create_group(f"n{level}")
    return f"groups nested {depth} deep"


def many_attributes(h5file, rng):
    """Thousands of tiny attributes on the root, a group or a dataset (stored densely).

    Their names are new to the owner: HDF5 replaces an attribute of dense storage by deleting
    and renaming it, a tenth of a second or more each as the storage grows, so a second
    draw of this mutation on the same owner took hours to write its 5,000 (data-file
    fuzz, seed 181)."""
    owner = h5file[_choose(rng, ["/"] + _groups(h5file) + _datasets(h5file))]
    count = int(rng.choice([1_001, 5_000]))
    prefix = f"many{len(owner.attrs)}_"
    for index in range(count):
        owner.attrs[f"{prefix}{index}"] = np.int8(index % 100)
    return f"{count} attributes on {owner.name}"


def _odd_dtype_value(h5file, rng):
    """(value, dtype) of a type no model file holds: an enum, opaque bytes, a variable-length
    sequence, an object or region reference, a compound, a long double."""
    import h5py
    target = h5file[_choose(rng, _datasets(h5file))] if _datasets(h5file) else None
    kinds = ["enum", "opaque", "vlen", "compound", "longdouble"]
    if target is not None:
        kinds += ["reference", "region-reference"]
    kind = _choose(rng, kinds)
    if kind == "enum":
        return kind, np.int8(42), h5py.enum_dtype({"RED": 0, "BLUE": 42}, basetype="i1")
    if kind == "opaque":
        return kind, np.void(b"\x00" * 7), None
    if kind == "vlen":
        dtype = h5py.vlen_dtype(np.int32)
        value = np.empty(1, dtype=object)
        value[0] = np.arange(int(rng.integers(1, 100_000)), dtype=np.int32)
        return kind, value, dtype
    if kind == "compound":
        return kind, np.zeros((), dtype=[("a", "f4"), ("b", "S3")]), None
    if kind == "longdouble":
        return kind, np.longdouble(1.5), None
    if kind == "reference":
        return kind, target.ref, h5py.ref_dtype
    return kind, target.regionref[()] if target.shape == () else target.regionref[:1], \
        h5py.regionref_dtype


def odd_dtype_attribute(h5file, rng):
    """An attribute, new or in place of one the model needs, of a type no model file holds."""
    owner = h5file[_choose(rng, ["/"] + _attribute_owners(h5file) + _groups(h5file))]
    names = list(owner.attrs)
    name = _choose(rng, names) if names and rng.random() < 0.7 else "odd"
    kind, value, dtype = _odd_dtype_value(h5file, rng)
    if name in owner.attrs:
        del owner.attrs[name]
    owner.attrs.create(name, value, dtype=dtype)
    return f"attribute {name} of {owner.name} set to a {kind}"


def odd_dtype_dataset(h5file, rng):
    """A dataset, new or in place of one the model needs, of a type no model file holds."""
    paths = _small_datasets(h5file)
    path = _choose(rng, paths) if paths and rng.random() < 0.7 else "training/odd"
    kind, value, dtype = _odd_dtype_value(h5file, rng)
    if path in h5file:
        del h5file[path]
    h5file.create_dataset(path, data=np.asarray([value] * 3, dtype=dtype or np.asarray(
        value).dtype) if kind != "vlen" else np.concatenate([value] * 3), dtype=dtype)
    return f"dataset {path} holding a {kind}"


# -- the hyperparameter JSON --------------------------------------------------------------
def _json_attribute_owners(h5file):
    owners = []
    for path in _attribute_owners(h5file):
        for name, value in h5file[path].attrs.items():
            if isinstance(value, str) and value[:1] in "{[":
                owners.append((path, name))
    return owners


def truncate_json(h5file, rng):
    path, name = _choose(rng, _json_attribute_owners(h5file))
    text = h5file[path].attrs[name]
    cut = int(rng.integers(len(text)))
    h5file[path].attrs[name] = text[:cut]
    return f"JSON {path}@{name} cut at {cut}"


def nest_json(h5file, rng):
    path, name = _choose(rng, _json_attribute_owners(h5file))
    depth = int(_choose(rng, [100, 1_000, 50_000, 200_000]))
    if rng.random() < 0.5:
        nested = "[" * depth + "]" * depth
    else:
        nested = '{"a":' * depth + "1" + "}" * depth
    value = json.loads(h5file[path].attrs[name]) if rng.random() < 0.7 else None
    if isinstance(value, dict) and value:
        key = _choose(rng, sorted(value))
        value[key] = "__NESTED__"
        text = json.dumps(value).replace('"__NESTED__"', nested)
    else:
        text = nested
    h5file[path].attrs[name] = text
    return f"JSON {path}@{name} nested {depth} deep"


def _wrong_value(rng):
    return _choose(rng, [-1, 0, 10**30, -(10**30), 2**63, 1.5, -0.5, "text", "", None, True,
                         [], [1, 2], {}, {"a": 1}, 1e308, "NaN", list(range(10_000)),
                         "x" * 100_000, 2**40, [2**40, 2**40]])


def _json_paths(value, prefix=()):
    """Every (path of keys/indexes) inside a parsed JSON value."""
    paths = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            paths += _json_paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            paths += _json_paths(item, prefix + (index,))
    return paths


def _set_json(value, path, new):
    if not path:
        return new
    target = value
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = new
    return value


def wrong_json_type(h5file, rng):
    path, name = _choose(rng, _json_attribute_owners(h5file))
    value = json.loads(h5file[path].attrs[name])
    where = _choose(rng, _json_paths(value)[1:] or [()])
    new = _wrong_value(rng)
    h5file[path].attrs[name] = json.dumps(_set_json(value, where, new))
    return f"JSON {path}@{name} at {where} set to {str(new)[:30]!r}"


def hostile_json_name(h5file, rng):
    """A hostile name wherever the JSON names a class, activation, loss or optimiser."""
    path, name = _choose(rng, _json_attribute_owners(h5file))
    value = json.loads(h5file[path].attrs[name])
    named = [where for where in _json_paths(value)
             if where and isinstance(where[-1], str)
             and where[-1] in ("class_name", "activation", "loss", "backend", "visible",
                               "propagate", "padding", "kernel_initializer", "name",
                               "model_class", "optimizer", "kernel_regularizer")]
    where = _choose(rng, named)
    hostile = _choose(rng, HOSTILE_NAMES)
    if where is None:
        where = ("class_name",)
        if isinstance(value, dict):
            value["class_name"] = hostile
    else:
        value = _set_json(value, where, hostile)
    h5file[path].attrs[name] = json.dumps(value)
    return f"JSON {path}@{name} at {where} set to {hostile!r}"


#: The settings of training a file may hold (compile_config, training_config, dlcore's
#: training record, an archive's metadata.json): optimisers (AdamW's weight decay, AMSGrad,
#: Nadam, Keras's momentum and epsilon forms), losses (label smoothing), validation.
TRAINING_KEYS = frozenset({"learning_rate", "weight_decay", "beta_1", "beta_2", "epsilon",
                           "amsgrad", "momentum", "nesterov", "rho", "use_ema", "ema_momentum",
                           "clipnorm", "clipvalue", "global_clipnorm", "label_smoothing",
                           "from_logits", "loss_weights", "momentum_form", "epsilon_form",
                           "validation_freq", "iterations", "decay_steps", "decay_rate",
                           "initial_learning_rate", "staircase", "reduction", "temperature",
                           "gradient_accumulation_steps", "loss_scale_factor"})
TRAINING_VALUES = (-1, 0, 1, 2, 1.0000001, -1e-7, 1e308, -1e308, 5e-324, 2**63, 10**400, True,
                   False, None, "keras", "dlcore", "sum", "", [], {}, [0.5, 0.5], {"a": 1})


def training_setting(h5file, rng):
    """An odd value for one setting of training (an optimiser's, a loss's, the forms of
    dlcore's optimisers in an archive's metadata), wherever a JSON attribute holds one."""
    found = []
    for path, name in _json_attribute_owners(h5file):
        value = json.loads(h5file[path].attrs[name])
        found += [(path, name, where) for where in _json_paths(value)
                  if where and isinstance(where[-1], str) and where[-1] in TRAINING_KEYS]
    path, name, where = _choose(rng, found)
    new = _choose(rng, TRAINING_VALUES)
    value = _set_json(json.loads(h5file[path].attrs[name]), where, new)
    h5file[path].attrs[name] = json.dumps(value)
    return f"JSON {path}@{name} at {where} set to {str(new)[:30]!r}"


HUGE_INTEGERS = (10**12, 2**63, 2**64, -1, 2**31, 10**7, 2**20 + 1)
#: The sizes and window settings of layers, which a huge integer most often goes to.
LAYER_SIZE_KEYS = frozenset({"padding", "stride", "kernel_size", "pool_size", "filters",
                             "units", "input_shape", "n_hidden", "batch_size", "strides",
                             "batch_shape", "build_input_shape"})


def huge_config_integer(h5file, rng):
    """A huge or negative integer in place of an integer of the JSON attributes, most often a
    size or window setting: a layer's padding, stride, kernel size, filters or units, an RBM's
    n_hidden or batch size."""
    numeric, sizes = [], []
    for path, name in _json_attribute_owners(h5file):
        value = json.loads(h5file[path].attrs[name])
        for where in _json_paths(value):
            if where and type(_json_at(value, where)) is int:   # not bool, a subclass of int
                numeric.append((path, name, where))
                if LAYER_SIZE_KEYS.intersection(map(str, where[-2:])):
                    sizes.append((path, name, where))
    target = _choose(rng, sizes if sizes and rng.random() < 0.8 else numeric)
    if target is None:
        return "huge config integer: no integer in the JSON attributes"
    path, name, where = target
    new = _choose(rng, HUGE_INTEGERS)
    value = json.loads(h5file[path].attrs[name])
    h5file[path].attrs[name] = json.dumps(_set_json(value, where, new))
    return f"JSON {path}@{name} at {where} set to {new}"


#: The keys of the shapes a model declares (dlcore's nested models' ``input_shape`` and
#: inputs' ``shape``, Keras's ``batch_shape``, ``batch_input_shape``, ``build_input_shape``).
SHAPE_KEYS = frozenset({"input_shape", "shape", "batch_shape", "batch_input_shape",
                        "build_input_shape"})


def nested_shape(h5file, rng):
    """A shape a model declares, a nested model's above all (loading builds a nested model on
    the shapes it declares), set just over dlcore's limits (2**26 + 1 values a sample), to an
    absurd size, one off, or to another rank."""
    found, nested = [], []
    for path, name in _json_attribute_owners(h5file):
        value = json.loads(h5file[path].attrs[name])
        for where in _json_paths(value):
            if where and isinstance(where[-1], str) and where[-1] in SHAPE_KEYS and \
                    isinstance(_json_at(value, where), list):
                found.append((path, name, where))
                if "models" in where or where.count("layers") > 1:
                    nested.append((path, name, where))
    target = _choose(rng, nested if nested and rng.random() < 0.8 else found)
    if target is None:
        return "nested shape: no shape in the JSON attributes"
    path, name, where = target
    value = json.loads(h5file[path].attrs[name])
    shape = list(_json_at(value, where))
    batch = 1 if shape[:1] == [None] else 0   # Keras's shapes lead with the batch's None
    if len(shape) > batch and rng.random() < 0.6:
        axis = int(rng.integers(batch, len(shape)))
        old = shape[axis] if isinstance(shape[axis], int) else 1
        shape[axis] = _choose(rng, [2**26 + 1, 10**12, old + 1, max(old - 1, 1), 2**31 - 1,
                                    2**13 * 2**13 // max(old, 1)])
    else:
        shape = shape[:batch] + _choose(rng, [[2**13, 2**13], [4096, 4096, 5], [3, 2**26],
                                              [1], [2**31 - 1] * 4])
    h5file[path].attrs[name] = json.dumps(_set_json(value, where, shape))
    return f"JSON {path}@{name} at {where} set to {str(shape)[:60]}"


def _json_at(value, path):
    for key in path:
        value = value[key]
    return value


def hard_link_fan_out(h5file, rng):
    """Hard links making a DAG: a chain of groups each linking 8 times to the next (8**12
    paths, 12 objects), or one dataset linked from a thousand names."""
    group = h5file[_choose(rng, ["/"] + _groups(h5file))]
    if rng.random() < 0.5:
        chain = [group.create_group(f"chain_{level}") for level in range(12)]
        for upper, lower in itertools.pairwise(chain):
            for link in range(8):
                upper[f"next_{link}"] = lower
        return f"hard-link DAG of 8**12 paths in {group.name}"
    target = h5file[_choose(rng, _small_datasets(h5file))]
    fan = group.create_group("fan_out")
    for link in range(1000):
        fan[f"link_{link}"] = target
    return f"1000 hard links to {target.name} in {group.name}/fan_out"


def huge_json(h5file, rng):
    path, name = _choose(rng, _json_attribute_owners(h5file))
    h5file[path].attrs[name] = json.dumps({"n_hidden": 3, "padding": "x" * (9 * 2**20)})
    return f"JSON {path}@{name} of 9 MiB"


def keras_names(h5file, rng):
    """A Keras ``layer_names`` or ``weight_names`` list replaced: numbers, a 2-D array, a
    hundred thousand names, names that climb out of the group, a missing layer."""
    owners = [path for path in _attribute_owners(h5file)
              if {"layer_names", "weight_names"}.intersection(h5file[path].attrs)]
    path = _choose(rng, owners)
    if path is None:
        return "keras names: not a Keras file"
    attrs = h5file[path].attrs
    name = "layer_names" if "layer_names" in attrs else "weight_names"
    names = [str(item) for item in attrs[name]]
    value = _choose(rng, [np.arange(3), np.array([["a", "b"], ["c", "d"]], dtype=object),
                          np.array([f"n{i}" for i in range(100_000)], dtype=object),
                          np.array(["../..", "/", "a" * 5000], dtype=object),
                          np.array(names[:-1] or ["x"], dtype=object),
                          np.array(names[::-1] or ["x"], dtype=object)])
    if value.dtype == object:
        attrs.create(name, value, dtype=h5py_string_dtype())
    else:
        attrs[name] = value
    return f"{path}@{name} replaced by shape {value.shape} of {value.dtype}"


def h5py_string_dtype():
    import h5py
    return h5py.string_dtype()


def keras_code_layer(h5file, rng):
    """A Keras layer that carries Python code (a Lambda with marshalled bytecode, a custom
    object from another module) put into ``model_config``."""
    if "model_config" not in h5file.attrs:
        return "keras code layer: not a Keras file"
    config = json.loads(h5file.attrs["model_config"])
    layers = config["config"]["layers"]
    layer = _choose(rng, [
        {"class_name": "Lambda", "config": {"name": "code", "function": {
            "class_name": "__lambda__", "config": {"code": "4wEAAAAAAAAAAAAAAAEAAAAD",
                                                    "defaults": None, "closure": None}}}},
        {"module": "os", "class_name": "system", "config": {"name": "x"}},
        {"class_name": "Dense", "registered_name": "Custom>Dense", "config": {"name": "d",
                                                                              "units": 2}}])
    layers.insert(int(rng.integers(1, len(layers) + 1)), layer)
    h5file.attrs["model_config"] = json.dumps(config)
    return f"model_config gets a {layer['class_name']} layer"


def unpack_archive(archive_path, h5_path):
    """The archive's weights member written to ``h5_path``, with its ``config.json`` and
    ``metadata.json`` as the attributes ``model_config`` and ``archive_metadata``."""
    import h5py
    with zipfile.ZipFile(archive_path) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    with open(h5_path, "wb") as stream:
        stream.write(members["model.weights.h5"])
    with h5py.File(h5_path, "r+") as h5file:
        h5file.attrs["model_config"] = members["config.json"].decode()
        h5file.attrs["archive_metadata"] = members["metadata.json"].decode()


def pack_archive(h5_path, archive_path, rng):
    """The archive again, from what :func:`unpack_archive` wrote and the mutations left (a
    removed attribute: a missing member), maybe damaged as an archive; returns a description
    of that damage or None."""
    import h5py
    members = {}
    with h5py.File(h5_path, "r+") as h5file:
        for attribute, member in (("model_config", "config.json"),
                                  ("archive_metadata", "metadata.json")):
            if attribute in h5file.attrs:
                value = h5file.attrs[attribute]
                members[member] = (value if isinstance(value, str) else str(value)).encode()
                del h5file.attrs[attribute]
    with open(h5_path, "rb") as stream:
        members["model.weights.h5"] = stream.read()
    return mutate_archive(members, archive_path, rng)


def mutate_archive(members, archive_path, rng):
    """Write ``members`` as a zip archive, about four times in nine damaged as an archive: a
    member left out, duplicated, or deflated; bytes flipped; the file cut short; a member's
    declared size forged (a zip bomb's directory); thousands of members behind an end record
    that declares only the real ones (``understate``)."""
    damage = _choose(rng, [None, None, "drop", "duplicate", "deflate", "flip", "cut",
                           "forge", "understate"]) if rng.random() < 0.5 else None
    if damage == "drop":
        del members[_choose(rng, sorted(members))]
    compression = zipfile.ZIP_DEFLATED if damage == "deflate" else zipfile.ZIP_STORED
    with zipfile.ZipFile(archive_path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        if damage == "duplicate":
            name = _choose(rng, sorted(members))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)   # zipfile's "Duplicate name"
                archive.writestr(name, members[name])
        if damage == "understate":
            # past the archive's limit of 1,000 members (20,000 cost seconds of writing)
            for index in range(int(rng.integers(1_001, 3_000))):
                archive.writestr(f"assets/fuzz_{index}", b"")
        if damage == "forge":
            info = archive.getinfo("model.weights.h5") if "model.weights.h5" in members else None
            if info is not None:
                info.file_size = int(_choose(rng, [2**40, 2**31, 10**9]))
    if damage == "understate":
        with open(archive_path, "r+b") as stream:
            data = stream.read()
            record = data.rfind(b"PK\x05\x06")   # the end record: its two member counts
            stream.seek(record + 8)
            stream.write(struct.pack("<HH", len(members), len(members)))
    if damage in ("flip", "cut"):
        with open(archive_path, "rb") as stream:
            data = bytearray(stream.read())
        if damage == "flip":
            for position in rng.integers(0, len(data), size=int(rng.integers(1, 8))):
                data[position] ^= int(rng.integers(1, 256))
        else:
            data = data[:int(rng.integers(0, len(data)))]
        with open(archive_path, "wb") as stream:
            stream.write(bytes(data))
    return damage and f"archive: {damage}"


def damage_bytes(path, rng):
    """The saved HDF5 file cut short or with a few bytes flipped (a copy that failed, a bad
    disk): its superblock, object headers, B-trees or heaps damaged."""
    with open(path, "rb") as stream:
        data = bytearray(stream.read())
    if rng.random() < 0.5:
        cut = int(rng.integers(0, len(data)))
        data = data[:cut]
        damage = f"file cut at byte {cut} of {len(data)}"
    else:
        positions = rng.integers(0, len(data), size=int(rng.integers(1, 8)))
        for position in positions:
            data[position] ^= int(rng.integers(1, 256))
        damage = f"bytes flipped at {sorted(int(p) for p in positions)}"
    with open(path, "wb") as stream:
        stream.write(bytes(data))
    return damage


MUTATIONS = [
    (delete_dataset, 8), (delete_group, 3), (reshape_dataset, 8), (retype_dataset, 8),
    (non_finite_dataset, 8), (huge_dataset, 8), (group_to_dataset, 4), (dataset_to_group, 4),
    (add_links, 3), (remove_attribute, 6), (swap_attribute_type, 8),
    (change_format_version, 3), (hostile_model_class, 3), (truncate_json, 5), (nest_json, 4),
    (wrong_json_type, 12), (hostile_json_name, 6), (huge_json, 1), (huge_config_integer, 8),
    (hard_link_fan_out, 3), (keras_names, 3), (keras_code_layer, 2), (non_utf8_name, 3),
    (non_utf8_attribute_name, 3), (long_history, 2), (chunk_bomb, 2), (odd_storage, 3),
    (odd_dtype_attribute, 4), (odd_dtype_dataset, 3), (beyond_float32_dataset, 4),
    (many_keras_layers, 2), (training_setting, 6), (nested_shape, 6), (filtered_storage, 4),
    (filter_parameters, 4), (deep_groups, 2), (many_attributes, 2), (stored_chunks, 4),
]


#: The mutations of ``--data-files``: those of a dataset's storage, type, shape and values,
#: of the links and groups around it, and of attributes and names.
DATA_MUTATIONS = [
    (delete_dataset, 4), (reshape_dataset, 6), (retype_dataset, 6), (non_finite_dataset, 6),
    (huge_dataset, 6), (group_to_dataset, 3), (dataset_to_group, 3), (add_links, 4),
    (chunk_bomb, 3), (odd_storage, 4), (odd_dtype_dataset, 4), (filtered_storage, 6),
    (filter_parameters, 6), (stored_chunks, 8), (deep_groups, 2), (many_attributes, 2),
    (hard_link_fan_out, 2), (non_utf8_name, 3), (delete_group, 2), (beyond_float32_dataset, 3),
    (non_utf8_attribute_name, 2), (odd_dtype_attribute, 2), (swap_attribute_type, 2),
]


def make_fuzzed_files(base_paths, folder, n_files, seed, mutations=None, base_names=None,
                      write_timeout=DEFAULT_WRITE_TIMEOUT):
    """Write ``n_files`` mutated copies into ``folder``; returns [(path, base, description)].
    ``mutations``: [(function, weight)], by default :data:`MUTATIONS`; ``base_names``: the
    bases taken in turn, by default :data:`BASE_NAMES`. A file whose writing takes more than
    ``write_timeout`` seconds (an alarm: in the main thread) is removed and described as
    timed out (:func:`run_fuzz` counts it ``write-timeout``); the next file draws on."""
    rng = np.random.default_rng(seed)
    base_names = BASE_NAMES if base_names is None else base_names
    files = []
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGALRM, _write_alarm) if in_main else None
    try:
        for index in range(n_files):
            base = base_names[index % len(base_names)]
            if in_main:
                signal.setitimer(signal.ITIMER_REAL, write_timeout)
            try:
                files.append(_make_fuzzed_file(base_paths, folder, index, base, rng, mutations))
            except _WriteTimeout:
                for stale in glob.glob(os.path.join(folder, f"fuzz_{index:05d}_*")):
                    with contextlib.suppress(OSError):
                        os.remove(stale)
                files.append((os.path.join(folder, f"fuzz_{index:05d}_{base}.h5"), base,
                              f"{WRITE_TIMED_OUT} (over {write_timeout:g} s)"))
            finally:
                if in_main:
                    signal.setitimer(signal.ITIMER_REAL, 0)
    finally:
        if in_main:
            signal.signal(signal.SIGALRM, previous)
    return files


#: How :func:`make_fuzzed_files` describes a file it gave up writing.
WRITE_TIMED_OUT = "writing it timed out"


class _WriteTimeout(BaseException):
    """The alarm of a file written too long: not an Exception, which the mutations' own
    ``except Exception`` (a mutation that does not apply) would take for a skipped one."""


def _write_alarm(signum, frame):
    raise _WriteTimeout


def _make_fuzzed_file(base_paths, folder, index, base, rng, mutations):
    """Write the ``index``-th mutated copy of ``base``; returns (path, base, description)."""
    import h5py
    mutations = MUTATIONS if mutations is None else mutations
    functions = [function for function, _ in mutations]
    weights = np.array([weight for _, weight in mutations], dtype=np.float64)
    weights /= weights.sum()
    path = os.path.join(folder, f"fuzz_{index:05d}_{base}.h5")
    archive = zipfile.is_zipfile(base_paths[base])   # a caller may give other bases
    if archive:
        unpack_archive(base_paths[base], path)
    else:
        shutil.copyfile(base_paths[base], path)
    descriptions = []
    with h5py.File(path, "r+") as h5file:
        for _ in range(int(rng.integers(1, 4))):
            function = functions[int(rng.choice(len(functions), p=weights))]
            try:
                descriptions.append(function(h5file, rng))
            except (Exception, RecursionError) as error:  # noqa: BLE001
                # A mutation that does not apply to this file (e.g. its target was deleted
                # by the previous one): the file is still a valid test case.
                descriptions.append(f"{function.__name__} skipped ({type(error).__name__})")
    apply_pending_patches(path)
    if not archive and rng.random() < 0.1:
        descriptions.append(damage_bytes(path, rng))
    if archive:
        packed = path[:-len(".h5")] + ".keras"
        descriptions.append(pack_archive(path, packed, rng) or "archive: intact")
        os.remove(path)
        path = packed
    return path, base, "; ".join(descriptions)


# --------------------------------------------------------------------------------------------
# The worker: loads files under limits and reports one JSON line per file
# --------------------------------------------------------------------------------------------
def _float_arrays(value):
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f":
            yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _float_arrays(item)


def _functional_model(data):
    """A trained two-input functional model: a shared layer, add and concatenate (a graph),
    and a batch normalisation (its moving statistics: state beside the parameters)."""
    import dlcore
    from dlcore.layers import BatchNormalization, Dense, add, concatenate
    a, b = dlcore.Input(shape=(5,)), dlcore.Input(shape=(5,))
    shared = Dense(4, activation="relu")
    joined = BatchNormalization()(concatenate([add([shared(a), shared(b)]), Dense(2)(b)]))
    model = dlcore.Model([a, b], Dense(3, activation="softmax")(joined), backend="reference")
    model.compile("cross_entropy", "adam", ["accuracy"])
    x = [data.random((6, 5)).astype(np.float32), data.random((6, 5)).astype(np.float32)]
    model.fit(x, np.arange(6) % 3, epochs=1, batch_size=3, verbose=0)
    return model


def _nested_model(data):
    """A trained model nesting a frozen Sequential base under a head (Keras's transfer-learning
    shape), which dlcore's file keeps nested, then a block model that nests a Sequential in
    turn (two deep): the shapes each nested model declares are the fuzzer's to change."""
    import dlcore
    from dlcore.layers import Dense
    base = dlcore.Sequential([Dense(4, activation="relu")], input_shape=(6,),
                             backend="reference", name="base")
    base.trainable = False
    inner = dlcore.Sequential([Dense(5, activation="relu", name="inner_dense")],
                              input_shape=(4,), backend="reference", name="inner")
    given = dlcore.Input(shape=(4,))
    block = dlcore.Model(given, Dense(4, name="block_dense")(inner(given)),
                         backend="reference", name="block")
    inputs = dlcore.Input(shape=(6,))
    model = dlcore.Model(inputs, Dense(3, activation="softmax", name="head")(
        block(base(inputs))), backend="reference")
    model.compile("cross_entropy", "adam", ["accuracy"])
    model.fit(data.random((6, 6)).astype(np.float32), np.arange(6) % 3, epochs=1, batch_size=3,
              verbose=0)
    return model


def _regularisation_rows(data):
    """The checkpoint of ``dlcore homework regularisation``: two finished rows, the first with
    its curves and the figure's adversarial examples."""
    from dlcore.cli.homework_regularisation import EXAMPLE_PARTS, RegularisationRows
    rows = RegularisationRows()
    examples = {part: data.random((2, 4)).astype(np.float32) for part in EXAMPLE_PARTS}
    rows.rows = [("none", 0, {"train": 0.1, "test": 0.2, "fgsm": 0.5, "seconds": 1.0,
                              "curves": {"train": [0.3, 0.1], "test": [0.4, 0.2]},
                              "examples": examples}),
                 ("l2", 0, {"train": 0.1, "test": 0.2, "fgsm": None, "seconds": 1.0,
                            "curves": None, "examples": None})]
    return rows


def _use(model):
    """Run the model once on a small input; returns its output."""
    import dlcore
    if isinstance(model, dlcore.Model) and not isinstance(model, dlcore.Sequential):
        return model.predict([np.random.default_rng(1).random((2,) + tuple(t.shape))
                              .astype(np.float32) for t in model.inputs])
    if isinstance(model, dlcore.Sequential):
        x = np.random.default_rng(1).random((2,) + tuple(model.input_shape)).astype(np.float32)
        return model.predict(x)
    if hasattr(model, "rows"):   # homework regularisation's checkpoint: what its table takes
        return np.asarray([[result[number] or 0.0 for number in model.NUMBERS]
                           + [np.mean(result["curves"]["test"]) if result["curves"] else 0.0]
                           + [result["examples"]["attacked"].mean() if result["examples"]
                              else 0.0] for _, _, result in model.rows])
    n_visible = model.n_features_in_
    x = (np.random.default_rng(1).random((3, n_visible)) < 0.5).astype(np.float32)
    return model.transform(x)


def classify(path, load, model_file_error, describe=None):
    """The outcome of loading ``path`` (and of ``describe(path)``, what ``dlcore info``
    prints, when given): (outcome, detail)."""
    if describe is not None:
        try:
            describe(path)
        except model_file_error as error:
            if "\n" in str(error) or path not in str(error):
                return "refused-unclearly", f"describe: {str(error)[:300]}"
        except Exception as error:  # noqa: BLE001
            return "internal-exception", (f"{type(error).__name__}: describe: "
                                          f"{str(error)[:300]}")
    try:
        model = load(path)
    except model_file_error as error:
        return _refusal(error, path)
    except Exception as error:  # noqa: BLE001 - counting them is the point
        return "internal-exception", f"{type(error).__name__}: {str(error)[:300]}"
    try:
        state = model.get_state()
    except Exception as error:  # noqa: BLE001
        return "loaded-but-broken", f"get_state: {type(error).__name__}: {str(error)[:200]}"
    if not all(np.isfinite(array).all() for array in _float_arrays(state)):
        return "non-finite-load", ""
    try:
        output = _use(model)
        # a model of several outputs gives a list of arrays, of shapes that need not match
        outputs = [np.asarray(array) for array in
                   (output if isinstance(output, (list, tuple)) else [output])]
    except Exception as error:  # noqa: BLE001
        return "loaded-but-broken", f"{type(error).__name__}: {str(error)[:200]}"
    if not all(np.isfinite(array).all() for array in outputs):
        return "loaded-but-broken", "non-finite output"
    return "loaded-and-works", ""


def classify_data_file(path):
    """The outcome of reading the data file ``path`` as training does (``open_hdf5(path,
    "images")``, some rows, the rows converted and checked, their mean): (outcome, detail);
    a refusal is a ValueError (a ModelFileError among them) of one line naming the file."""
    from dlcore.datasets import open_hdf5
    try:
        rows = open_hdf5(path, "images")
        rows.rows(np.arange(min(len(rows), 16))[::-1])
        converted = (rows.unit_interval() if rows.dtype in (np.uint8, np.bool_)
                     else rows.checked("fuzz"))
        np.asarray(converted[:64])
        rows.mean()
    except ValueError as error:
        return _refusal(error, path)
    except Exception as error:  # noqa: BLE001 - counting them is the point
        return "internal-exception", f"{type(error).__name__}: {str(error)[:300]}"
    return "loaded-and-works", ""


def _refusal(error, path):
    """The outcome of a refusal: clear when its message is one line naming the file."""
    message = str(error)
    if "\n" in message or path not in message:
        return "refused-unclearly", message[:300]
    return "refused-clearly", message[:300]


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout


def _peak_resident_bytes(reset=False):
    """This process's peak resident memory (``VmHWM``), first reset to the present when
    ``reset``; None where Linux's /proc does not offer it."""
    try:
        if reset:
            with open("/proc/self/clear_refs", "w") as stream:
                stream.write("5")
        with open("/proc/self/status") as stream:
            fields = dict(line.split(":", 1) for line in stream if ":" in line)
        return int(fields["VmHWM"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None


def worker_main(memory_limit, timeout, warmup=(), memory_hog=DEFAULT_MEMORY_HOG,
                data_files=False):
    """Read file paths from stdin, one a line; print one JSON result a line. The ``warmup``
    files (the intact bases) are loaded and used first, untimed: the first use of each kind of
    model in a fresh process loads its kernels from the cache (seconds, more on a busy
    machine), which a fuzzed file's time limit must not pay for. ``data_files``: the files are
    data files, classified by :func:`classify_data_file`."""
    import resource
    import signal

    from dlcore.io import ModelFileError, describe
    resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))

    def outcome_of(path):
        if data_files:
            return classify_data_file(path)
        return classify(path, load_for_fuzz, ModelFileError, describe)

    for path in warmup:
        outcome_of(path)
    signal.signal(signal.SIGALRM, _alarm)
    for line in sys.stdin:
        path = line.rstrip("\n")
        print(json.dumps({"start": path}), flush=True)
        before = _peak_resident_bytes(reset=True)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            outcome, detail = outcome_of(path)
        except _Timeout:
            outcome, detail = "hang", f"over {timeout} s"
        except MemoryError:
            outcome, detail = "internal-exception", "MemoryError (outside load)"
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        after = _peak_resident_bytes()
        if before is not None and after is not None and after - before > memory_hog:
            outcome, detail = "memory-hog", (f"{(after - before) / 2**20:.0f} MiB more at the "
                                             f"peak ({outcome}: {detail[:200]})")
        print(json.dumps({"path": path, "outcome": outcome, "detail": detail}), flush=True)


# --------------------------------------------------------------------------------------------
# The driver
# --------------------------------------------------------------------------------------------
def _start_worker(memory_limit, timeout, warmup=(), memory_hog=DEFAULT_MEMORY_HOG,
                  data_files=False):
    command = [sys.executable, os.path.abspath(__file__), "--worker",
               "--memory-limit", str(memory_limit), "--timeout", str(timeout),
               "--memory-hog", str(memory_hog)] + (["--data-files"] if data_files else [])
    command += [argument for path in warmup for argument in ("--warmup", path)]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, bufsize=1)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout] + [
        lines.put(None)], daemon=True).start()
    return process, lines


def edited_layer_config_error(path, layer_class, key, value):
    """The error ``dlcore.load`` raises for the dlcore file at ``path`` once every
    ``layer_class`` layer of its network config has ``key`` set to ``value`` (a hostile edit),
    or None where it loads."""
    import h5py

    import dlcore
    with h5py.File(path, "r+") as h5file:
        name = next(key for key, text in h5file.attrs.items()
                    if isinstance(text, (str, bytes)) and layer_class in str(text))
        config = json.loads(h5file.attrs[name])
        for entry in config["layers"]:
            if entry["class_name"] == layer_class:
                entry["config"][key] = value
        h5file.attrs[name] = json.dumps(config)
    try:
        dlcore.load(path)
    except Exception as error:  # noqa: BLE001  (the caller asserts what it is)
        return error
    return None


def badly_handled_fuzzed_copies(model, x, path, folder, n_files, seed):
    """``model`` (a small classifier of ``x``'s images, 3 classes) trained one epoch with Adam,
    saved at ``path``, fuzzed into ``n_files`` files in ``folder``: the lines of those neither
    refused clearly nor loaded and working (a test asserts there are none)."""
    import dlcore
    model.compile("cross_entropy", "adam")
    model.fit(x, np.arange(len(x)) % 3, epochs=1, batch_size=len(x), verbose=0)
    dlcore.save(model, path)
    files = make_fuzzed_files({name: path for name in BASE_NAMES}, folder, n_files, seed=seed)
    results = load_all([fuzzed for fuzzed, _, _ in files])
    return [f"{results[fuzzed]}: {mutations}" for fuzzed, _, mutations in files
            if results[fuzzed][0] not in GOOD_OUTCOMES]


def load_all(paths, memory_limit=DEFAULT_MEMORY_LIMIT, timeout=DEFAULT_TIMEOUT, warmup=(),
             memory_hog=DEFAULT_MEMORY_HOG, data_files=False):
    """Load every path in worker processes; returns {path: (outcome, detail)}.

    A worker that stops answering (stuck in C code past the alarm) is killed and the file
    counts as a hang; a worker that dies counts the file as a crash; both are replaced.
    """
    results = {}
    pending = list(paths)
    while pending:
        process, lines = _start_worker(memory_limit, timeout, warmup, memory_hog, data_files)
        process.stdin.write("".join(f"{path}\n" for path in pending))
        process.stdin.close()
        current = None
        startup = 600.0  # importing dlcore (and Numba), then the warm-up files
        while True:
            try:
                line = lines.get(timeout=startup if current is None else timeout + 30)
            except queue.Empty:
                process.kill()
                results[current or pending[0]] = ("hang", "worker stopped answering")
                break
            if line is None:  # the worker ended
                if current is not None:
                    results[current] = ("crash", f"worker exit code {process.wait()}")
                break
            message = json.loads(line)
            if "start" in message:
                current = message["start"]
            else:
                results[message["path"]] = (message["outcome"], message["detail"])
                current = None
        process.wait()
        pending = [path for path in pending if path not in results]
    return results


def run_fuzz(n_files, seed, folder=None, memory_limit=DEFAULT_MEMORY_LIMIT,
             timeout=DEFAULT_TIMEOUT, memory_hog=DEFAULT_MEMORY_HOG, data_files=False):
    """Make ``n_files`` fuzzed files and load them all (``data_files``: fuzzed data files of
    :func:`save_data_bases`, read by :func:`classify_data_file`).

    Returns
    -------
    counts : collections.Counter of outcomes
    exceptions : collections.Counter of internal exception types
    records : list of (path, base, mutations, outcome, detail)
    """
    own_folder = folder is None
    folder = tempfile.mkdtemp(prefix="dlcore-fuzz-") if own_folder else folder
    try:
        if data_files:
            base_paths = save_data_bases(folder)
            files = make_fuzzed_files(base_paths, folder, n_files, seed, DATA_MUTATIONS,
                                      DATA_BASE_NAMES)
        else:
            base_paths = save_base_models(folder)
            files = make_fuzzed_files(base_paths, folder, n_files, seed)
        used = {base for _, base, _ in files}   # warming a base up costs 0.1-0.5 s
        results = {path: ("write-timeout", mutations) for path, _, mutations in files
                   if mutations.startswith(WRITE_TIMED_OUT)}
        results |= load_all([path for path, _, _ in files if path not in results],
                            memory_limit, timeout,
                            warmup=[path for base, path in base_paths.items() if base in used],
                            memory_hog=memory_hog, data_files=data_files)
    finally:
        if own_folder:
            shutil.rmtree(folder, ignore_errors=True)
    records = [(path, base, mutations) + results[path] for path, base, mutations in files]
    counts = collections.Counter(record[3] for record in records)
    exceptions = collections.Counter(record[4].split(":")[0] for record in records
                                     if record[3] == "internal-exception")
    return counts, exceptions, records


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--memory-limit", type=int, default=DEFAULT_MEMORY_LIMIT,
                        help="address-space limit of a worker, bytes")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                        help="seconds allowed per file")
    parser.add_argument("--memory-hog", type=int, default=DEFAULT_MEMORY_HOG,
                        help="the most bytes loading one file may add to a worker's peak "
                             "resident memory")
    parser.add_argument("--keep", metavar="FOLDER", help="write the files here and keep them")
    parser.add_argument("--show", type=int, default=5,
                        help="examples to print of each bad outcome")
    parser.add_argument("--records", metavar="FILE",
                        help="write one tab-separated line per file: name, outcome, mutations, "
                             "detail")
    parser.add_argument("--data-files", action="store_true",
                        help="fuzz data files read by dlcore.datasets.open_hdf5 instead")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--warmup", action="append", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker_main(args.memory_limit, args.timeout, args.warmup, args.memory_hog,
                    args.data_files)
        return 0
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
    started = time.perf_counter()
    counts, exceptions, records = run_fuzz(args.files, args.seed, args.keep, args.memory_limit,
                                           args.timeout, args.memory_hog, args.data_files)
    print(f"{args.files} fuzzed {'data' if args.data_files else 'model'} files (seed "
          f"{args.seed}) in "
          f"{time.perf_counter() - started:.0f} s:")
    for outcome in GOOD_OUTCOMES + BAD_OUTCOMES:
        extra = ""
        if outcome == "internal-exception" and exceptions:
            extra = "  (" + ", ".join(f"{name} {n}" for name, n in exceptions.most_common()) + ")"
        print(f"  {outcome:<20}{counts.get(outcome, 0):>6}{extra}")
    if args.records:
        with open(args.records, "w", encoding="utf-8") as stream:
            for path, _, mutations, outcome, detail in records:
                fields = (os.path.basename(path), outcome, mutations, detail)
                stream.write("\t".join(" ".join(field.split()) for field in fields) + "\n")
    for outcome in BAD_OUTCOMES:
        examples = [record for record in records if record[3] == outcome][:args.show]
        for path, _, mutations, _, detail in examples:
            print(f"[{outcome}] {os.path.basename(path)}: {mutations} -> {detail}")
    return 0 if all(counts.get(outcome, 0) == 0 for outcome in BAD_OUTCOMES) else 1


if __name__ == "__main__":
    sys.exit(main())
