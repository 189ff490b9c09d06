"""Model files from strangers (a hand-in, a download): whatever a Keras archive, a legacy Keras
HDF5 file or a dlcore model file holds, loading it must not hang, allocate without bound or
load parameters that are not finite; every refusal is one line naming the file
(dlcore/io/keras_archive.py, dlcore/io/keras.py, dlcore/io/guarded.py).
"""
import io
import json
import math
import re
import shutil
import struct
import zipfile
import zlib

import h5py
import numpy as np
import pytest

import dlcore
import model_file_fuzzer
from dlcore import functional
from dlcore.layers import BatchNormalization, Dense
from test_io_keras import edited_archive, fixture, with_layer_config


def counted_layer_calls(monkeypatch):
    """A list that gets an item each time a layer is called on a symbolic tensor (what a
    network does for each layer when it makes its graph)."""
    calls = []
    original = functional.call_layer

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(functional, "call_layer", counting)
    return calls


def test_a_sequential_given_its_layers_makes_its_graph_once_not_once_per_layer(monkeypatch):
    calls = counted_layer_calls(monkeypatch)
    n_layers = 80
    net = dlcore.Sequential([dlcore.layers.Dropout(0.1) for _ in range(n_layers)]
                            + [dlcore.layers.Dense(3)], input_shape=(4,))
    assert len(net.layers) == n_layers + 1 and net.output_shape == (3,)
    # once per layer; building each as it came called all the layers before it again
    assert len(calls) <= 2 * (n_layers + 1)


def test_a_keras_archive_of_many_layers_loads_in_time_linear_in_its_layers(tmp_path,
                                                                           monkeypatch):
    n_layers = 300

    def many_dropouts(config):
        config["config"]["layers"][3:3] = [
            {"module": "keras.layers", "class_name": "Dropout",
             "config": {"name": f"dropout_{index}", "rate": 0.1}, "registered_name": None}
            for index in range(n_layers)]

    path = edited_archive(tmp_path, "keras_compiled.keras", many_dropouts)
    calls = counted_layer_calls(monkeypatch)
    model = dlcore.load(path)
    assert len(model.layers) == n_layers + 3
    # a few graphs of every layer (the model, its copies for the optimiser's state); a graph
    # for each layer added was n_layers**2 / 2 calls a copy: minutes for a 1 MB config.json
    # of 20,000 layers
    assert len(calls) <= 10 * (n_layers + 3)


def archive_members(path):
    """The members of the zip archive at ``path``: {name: bytes}, in the archive's order."""
    with zipfile.ZipFile(path) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def write_archive(path, members, compression=zipfile.ZIP_STORED):
    """Write ``members`` ({name: bytes}) as the zip archive at ``path``, replacing it."""
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def archive_with_weights(tmp_path, name, edit):
    """A copy of the Keras archive fixture ``name`` whose model.weights.h5 ``edit(h5file)``
    has changed (its config as it is)."""
    members = archive_members(fixture(name))
    weights = io.BytesIO(members["model.weights.h5"])
    with h5py.File(weights, "r+") as h5file:
        edit(h5file)
    members["model.weights.h5"] = weights.getvalue()
    path = tmp_path / f"weights_{name}"
    write_archive(path, members)
    return path


def as_float64_plus(h5file, path, value):
    array = h5file[path][()]
    del h5file[path]
    h5file[path] = array.astype(np.float64) + value


@pytest.mark.parametrize("path", ["layers/conv2d/vars/0", "optimizer/vars/2"])
def test_keras_weights_beyond_float32s_range_are_refused_not_loaded_as_infinity(tmp_path,
                                                                                path):
    archive = archive_with_weights(tmp_path, "keras_compiled.keras",
                                   lambda h5file: as_float64_plus(h5file, path, 1e300))
    with pytest.raises(dlcore.io.ModelFileError) as caught:
        dlcore.load(archive)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(str(archive))
    assert f"'{path}' holds" in message and "beyond float32's range" in message


def test_a_dlcore_file_with_parameters_beyond_float32s_range_is_refused(tmp_path):
    path = tmp_path / "lenet.h5"
    dlcore.save(dlcore.models.lenet5().build(), path)
    with h5py.File(path, "r+") as h5file:
        as_float64_plus(h5file, "layers/c1/kernel", 1e300)
    beyond = r"'layers/c1/kernel' holds 150 values beyond float32's range"
    with pytest.raises(dlcore.io.ModelFileError, match=beyond):
        dlcore.load(path)


def test_a_float64_network_s_own_file_with_weights_beyond_float32s_range_loads_back(tmp_path):
    # saved by dlcore.save, then refused by dlcore.load: the range check assumed float32
    model = dlcore.Sequential([dlcore.layers.Dense(2, dtype="float64")], input_shape=(3,))
    model.build()
    kernel = np.full((3, 2), 1e39)
    kernel[0, 0] = -3.5e300
    model.layers[0].set_weights([kernel, np.zeros(2)])
    path = tmp_path / "wide.h5"
    dlcore.save(model, path)
    loaded = dlcore.load(path)
    assert loaded.dtype == np.float64
    np.testing.assert_array_equal(loaded.layers[0].get_weights()[0], kernel)


def test_set_weights_refuses_values_float32_cannot_hold():
    layer = dlcore.Sequential([dlcore.layers.Dense(2)], input_shape=(3,)).layers[0]
    before = layer.get_weights()
    with pytest.raises(ValueError, match="kernel holds values beyond float32's range"):
        layer.set_weights([np.full((3, 2), 1e39), np.zeros(2)])
    for kept, now in zip(before, layer.get_weights()):
        np.testing.assert_array_equal(kept, now)


def test_an_archive_understating_its_member_count_is_refused_before_its_directory_is_read(
        tmp_path, monkeypatch):
    from dlcore.io.keras_archive import MAX_MEMBERS
    path = tmp_path / "crowded.keras"
    with zipfile.ZipFile(fixture("keras_compiled.keras")) as source, \
            zipfile.ZipFile(path, "w") as archive:
        for member in source.namelist():
            archive.writestr(member, source.read(member))
        for index in range(3 * MAX_MEMBERS):
            archive.writestr(f"assets/{index}", b"")
    data = bytearray(path.read_bytes())
    record = data.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", data, record + 8, 3, 3)   # "3 members", before a directory of 3003
    path.write_bytes(bytes(data))
    built = []

    class CountedZipInfo(zipfile.ZipInfo):
        def __init__(self, *args, **kwargs):
            built.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(zipfile, "ZipInfo", CountedZipInfo)
    with pytest.raises(dlcore.io.ModelFileError) as caught:
        dlcore.load(path)
    assert "\n" not in str(caught.value)
    assert f"holds over {MAX_MEMBERS} members" in str(caught.value)
    # a directory of millions of entries, read whole into an object each, took memory and
    # time in proportion: its entries are counted from their headers, up to the limit
    assert not built


def negate(h5file, path):
    h5file[path][...] = -np.abs(h5file[path][()]) - 1.0


def test_a_keras_archive_whose_adam_v_is_negative_is_refused_as_damaged(tmp_path):
    archive = archive_with_weights(tmp_path, "keras_compiled.keras",
                                   lambda h5file: negate(h5file, "optimizer/vars/3"))
    # loaded, it failed in the first fit as "training diverged: lower the learning rate"
    with pytest.raises(dlcore.io.ModelFileError) as caught:
        dlcore.load(archive)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(str(archive))
    assert "'optimizer/vars/3' (adam's v of layer 'conv') holds 27 negative values" in message


@pytest.mark.parametrize("optimizer, slot", [("adam", "v"), ("rmsprop", "mean_square"),
                                             ("adagrad", "accumulator")])
def test_a_dlcore_file_whose_squared_gradient_slot_is_negative_is_refused(
        tmp_path, optimizer, slot):
    model = dlcore.Sequential([dlcore.layers.Dense(3, activation="softmax")], input_shape=(4,))
    model.compile(optimizer=optimizer)
    rows = np.random.default_rng(0).random((12, 4)).astype(np.float32)
    model.fit(rows, np.arange(12) % 3, epochs=1, verbose=0)
    path = tmp_path / "model.h5"
    dlcore.save(model, path)
    with h5py.File(path, "r+") as h5file:
        negate(h5file, f"training/optimizer/slots/dense/kernel/{slot}")
    with pytest.raises(dlcore.io.ModelFileError,
                       match=f"slot dense/kernel/{slot} holds 12 negative values"):
        dlcore.load(path)
    # the slots of a trained model are never negative: its own file loads
    dlcore.save(model, path)
    assert dlcore.load(path).optimizer.name == optimizer


def test_a_functional_model_of_many_layers_is_built_without_a_scan_per_layer(monkeypatch):
    scanned = []

    def counting_any(iterable):
        for item in iterable:
            scanned.append(1)
            if item:
                return True
        return False

    # functional.py's own any(), as a module global shadows the builtin
    monkeypatch.setattr(functional, "any", counting_any, raising=False)
    n_layers = 400
    inputs = dlcore.Input((4,))
    x = inputs
    for _ in range(n_layers):
        x = dlcore.layers.Dropout(0.1)(x)
    model = dlcore.Model(inputs, dlcore.layers.Dense(3)(x))
    assert len(model.layers) == n_layers + 1
    # a scan of the layers so far for each call: n_layers**2 / 2 items, seconds for the
    # 12,000 layers a hostile Keras file may list
    assert len(scanned) <= 10 * n_layers


def test_a_keras_model_with_a_long_name_imports_into_a_file_dlcore_reads_back(tmp_path):
    def long_name(config):
        config["config"]["name"] = "x" * 3000

    model = dlcore.load(edited_archive(tmp_path, "keras_compiled.keras", long_name))
    assert model.name == "sequential"     # a name a dlcore model file could not keep
    path = tmp_path / "imported.h5"
    dlcore.save(model, path)
    # the name was kept and the file refused: "'name' ... at most 256 characters"
    assert dlcore.load(path).name == "sequential"


@pytest.mark.parametrize("name", ["x" * 257, 5])
def test_a_network_refuses_a_name_its_model_file_could_not_keep(name):
    with pytest.raises(ValueError, match="name must be a string of at most 256 characters"):
        dlcore.Sequential([dlcore.layers.Dense(2)], input_shape=(3,), name=name)
    inputs = dlcore.Input((3,))
    with pytest.raises(ValueError, match="name must be a string of at most 256 characters"):
        dlcore.Model(inputs, dlcore.layers.Dense(2)(inputs), name=name)


def test_an_empty_zip_archive_is_refused_as_an_archive_not_as_a_non_hdf5_file(tmp_path):
    path = tmp_path / "empty.keras"
    zipfile.ZipFile(path, "w").close()
    # it was "not an HDF5 file ... give the path of a model saved by dlcore"
    with pytest.raises(dlcore.io.ModelFileError, match="the archive holds no config.json"):
        dlcore.load(path)


def test_model_from_json_takes_bytes_and_names_a_wrong_type():
    text = dlcore.models.mlp(hidden=(4,)).build().to_json()
    # a file opened "rb": a TypeError about a string pattern on a bytes-like object
    assert dlcore.models.model_from_json(text.encode()).count_params() == \
        dlcore.models.model_from_json(text).count_params()
    with pytest.raises(dlcore.io.ModelFileError, match="the Keras model JSON is not valid"):
        dlcore.models.model_from_json(b"\xff{}")
    # it was "object of type 'int' has no len()"
    with pytest.raises(TypeError, match="model_from_json takes the JSON text of a model"):
        dlcore.models.model_from_json(5)


def dropout_entries(count, prefix="dropout"):
    return [{"class_name": "Dropout", "config": {"name": f"{prefix}_{index}", "rate": 0.1}}
            for index in range(count)]


def test_a_keras_config_of_more_layers_than_the_import_limit_is_refused_before_building():
    from dlcore.io.keras import MAX_KERAS_LAYERS
    # each list within the limit, the model with its nested Sequential beyond it: the limit
    # counts what would be built (a 1 MB config.json listed 20,000 layers, 25 s to build)
    half = MAX_KERAS_LAYERS // 2 + 1
    inner = {"class_name": "Sequential",
             "config": {"name": "base", "layers": dropout_entries(half, "inner")}}
    config = {"class_name": "Sequential", "config": {"name": "deep", "layers": [
        {"class_name": "InputLayer", "config": {"name": "pixels", "batch_shape": [None, 4]}},
        inner, *dropout_entries(half)]}}
    with pytest.raises(dlcore.io.ModelFileError, match=f"has {2 * half + 1} layers, its nested "
                       f"models' included, more than the {MAX_KERAS_LAYERS} dlcore imports"):
        dlcore.models.model_from_json(json.dumps(config))
    config["config"]["layers"] = config["config"]["layers"][:1] + dropout_entries(
        MAX_KERAS_LAYERS + 5)
    with pytest.raises(dlcore.io.ModelFileError, match=f"has {MAX_KERAS_LAYERS + 6} layers, "
                                                       f"more than"):
        dlcore.models.model_from_json(json.dumps(config))


def test_a_functional_keras_config_calling_a_layer_beyond_the_limit_is_refused():
    from dlcore.io.keras import MAX_KERAS_LAYERS

    def tensor(layer, node=0):
        return {"class_name": "__keras_tensor__",
                "config": {"shape": [None, 4], "dtype": "float32",
                           "keras_history": [layer, node, 0]}}

    calls = MAX_KERAS_LAYERS + 1
    # one shared Dropout called on its own output, again and again
    nodes = [{"args": [tensor("pixels" if index == 0 else "shared", index - 1)], "kwargs": {}}
             for index in range(calls)]
    config = {"class_name": "Functional", "config": {
        "name": "looped", "layers": [
            {"class_name": "InputLayer", "name": "pixels", "inbound_nodes": [],
             "config": {"name": "pixels", "batch_shape": [None, 4]}},
            {"class_name": "Dropout", "name": "shared", "inbound_nodes": nodes,
             "config": {"name": "shared", "rate": 0.1}}],
        "input_layers": [["pixels", 0, 0]], "output_layers": [["shared", calls - 1, 0]]}}
    with pytest.raises(dlcore.io.ModelFileError,
                       match=f"has {calls} calls of layers, more than the {MAX_KERAS_LAYERS}"):
        dlcore.models.model_from_json(json.dumps(config))


def declaring_size(path, member, size):
    """``path`` with its central directory declaring ``size`` bytes for ``member`` once
    inflated (what the guards read before inflating anything)."""
    data = bytearray(path.read_bytes())
    entry = data.find(b"PK\x01\x02")
    while True:
        name_length = struct.unpack_from("<H", data, entry + 28)[0]
        if data[entry + 46:entry + 46 + name_length] == member.encode():
            struct.pack_into("<I", data, entry + 24, size)
            path.write_bytes(bytes(data))
            return path
        extra, comment = struct.unpack_from("<HH", data, entry + 30)
        entry += 46 + name_length + extra + comment


def test_a_large_keras_weights_member_expanding_over_100_times_is_refused_before_inflating(
        tmp_path):
    # a Dense wide enough for the declared weights: 2.9 M parameters may take 110 MiB
    path = with_layer_config(tmp_path, "keras_compiled.keras", "out", units=60_000)
    members = archive_members(path)
    members["model.weights.h5"] = np.random.default_rng(0).bytes(400 * 2**10)
    write_archive(path, members, compression=zipfile.ZIP_DEFLATED)
    # 400 KiB inflating 256 times, to 100 MiB: within 1,000 times, the limit of a small member
    declaring_size(path, "model.weights.h5", 100 * 2**20)
    with pytest.raises(dlcore.io.ModelFileError,
                       match=r"model\.weights\.h5 would expand 400\.\d KiB into 100\.0 MiB \(at "
                             r"most 64\.0 MiB is read\): a zip bomb, not a model"):
        dlcore.load(path)


def test_compressed_datasets_inflating_past_64_mib_and_100_times_the_file_are_not_read(
        tmp_path):
    path = tmp_path / "bomb.h5"
    with h5py.File(path, "w") as h5file:
        h5file["padding"] = np.random.default_rng(0).integers(0, 255, 2**18, dtype=np.uint8)
        # 80 MiB of zeros in compressed chunks never written: the file stays 260 KiB, and
        # reading it allocates the whole array (within 1,000 times the file's size)
        h5file.create_dataset("bomb", shape=(80 * 2**18,), dtype=np.float32,
                              chunks=(2**18,), compression="gzip")
    with h5py.File(path, "r") as h5file:
        reader = dlcore.io.guarded.ModelFileReader(h5file, str(path))
        with pytest.raises(dlcore.io.ModelFileError,
                           match=r"declares shape \(20971520,\) of float32 \(80\.0 MiB\), more "
                                 r"than this 25\d\.\d KiB file can hold \(its compressed "
                                 r"data may inflate to 64\.0 MiB in all\)"):
            reader.read_array(h5file["bomb"], "bomb")


def test_a_network_of_more_than_512_layers_is_saved_and_read_back(tmp_path):
    # the file format read at most 512 layers, which dlcore.save wrote without a word
    # (ResNet152V2 has 566): the file could never be loaded
    net = dlcore.Sequential([dlcore.layers.Dropout(0.1) for _ in range(520)]
                            + [dlcore.layers.Dense(2)], input_shape=(3,))
    dlcore.save(net, tmp_path / "deep.h5")
    loaded = dlcore.load(tmp_path / "deep.h5")
    x = np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3)
    assert len(loaded.layers) == 521
    np.testing.assert_array_equal(loaded.predict(x), net.predict(x))


def test_saving_a_network_its_file_could_not_hold_is_refused_before_writing(
        tmp_path, monkeypatch):
    from dlcore.io import hdf5
    from dlcore.io.layouts import MAX_LAYERS
    assert hdf5.MAX_LAYERS == MAX_LAYERS   # save checks the limit load reads with
    MAX_LAYERS = 8   # the check's own limit lowered: 4,000 layers take a second to build
    monkeypatch.setattr(hdf5, "MAX_LAYERS", MAX_LAYERS)
    path = tmp_path / "deep.h5"
    path.write_bytes(b"an earlier model")
    net = dlcore.Sequential([dlcore.layers.Dropout(0.1) for _ in range(MAX_LAYERS + 1)],
                            input_shape=(3,))
    with pytest.raises(ValueError, match=f"cannot save this Sequential of {MAX_LAYERS + 1} "
                                         f"layers: a dlcore model file holds at most "
                                         f"{MAX_LAYERS}, and dlcore.load would refuse it"):
        dlcore.save(net, path)
    assert path.read_bytes() == b"an earlier model"


def test_a_member_listed_but_not_found_by_its_name_is_refused_in_one_line(tmp_path):
    # a flipped byte in a name of a group's local heap: iterating the group lists the new name,
    # which the lookup's search tree (sorted by the old one) does not find; describe walked
    # into None ("'NoneType' object has no attribute 'id'")
    path = tmp_path / "keras_convnet.h5"
    with open(fixture("keras_convnet.h5"), "rb") as stream:
        data = stream.read()
    name = "top_level_model_weights"   # a group no attribute lists: only a walk reaches it
    assert data.count(name.encode() + b"\0") == 1
    # renamed to sort first, where the search tree does not look for it
    path.write_bytes(data.replace(name.encode() + b"\0", b"a" * len(name) + b"\0"))
    with pytest.raises(dlcore.io.ModelFileError,
                       match=r"keras_convnet.h5: 'model_weights/\w+' is listed in its group but "
                             r"cannot be opened by its name \(the group's index is damaged\)"):
        dlcore.io.describe(path)   # what dlcore info prints; load reads the listed layers only


def test_integers_beyond_any_float_in_a_keras_files_settings_are_named_not_overflowing(
        tmp_path):
    # JSON integers have no size limit: float(10**400) raised OverflowError, no ValueError
    huge = 10**400

    def huge_rate(config):
        config["compile_config"]["optimizer"]["config"]["learning_rate"] = huge

    with pytest.warns(UserWarning, match="loaded uncompiled .* the learning rate must be a "
                                         "finite number, got an integer of 401 digits"):
        model = dlcore.load(edited_archive(tmp_path, "keras_compiled.keras", huge_rate))
    assert model.optimizer is None
    regularized = with_layer_config(tmp_path, "keras_compiled.keras", "conv",
                                    kernel_regularizer={"module": "keras.regularizers",
                                                        "class_name": "L2",
                                                        "config": {"l2": huge}})
    with pytest.warns(UserWarning, match="'conv' .* its kernel_regularizer L2.* is left out"):
        assert dlcore.load(regularized).layers[0].kernel_regularizer is None


def nested_model_file(tmp_path, depth):
    """A saved model nesting the Sequential ``base`` (inputs of shape (6,)) ``depth`` deep:
    at depth 2 inside the functional model ``middle``."""
    from dlcore.layers import Dense
    base = dlcore.Sequential([Dense(4)], input_shape=(6,), backend="reference", name="base")
    inner = base
    if depth == 2:
        given = dlcore.Input(shape=(6,))
        inner = dlcore.Model(given, Dense(5)(base(given)), backend="reference", name="middle")
    inputs = dlcore.Input(shape=(6,))
    model = dlcore.Model(inputs, Dense(3)(inner(inputs)), backend="reference")
    path = tmp_path / f"nested_{depth}.h5"
    dlcore.save(model, path)
    return path


def nested_entry(config, name):
    """The entry of the nested model ``name`` in a functional model's config, at any depth."""
    pending = list(config.get("models", []))
    while pending:
        entry = pending.pop()
        if entry["name"] == name:
            return entry
        pending += entry.get("models", [])
    raise AssertionError(f"no nested model {name}")


@pytest.mark.parametrize("depth, name", [(1, "base"), (2, "base"), (2, "middle")])
@pytest.mark.parametrize("size, problem", [
    (10**12, r"give an entry of the [\w ]+ of nested model '{name}' = 1000000000000; "
             r"expected an integer in \[1, 2147483647\]"),
    (2**26 + 1, r"make the \w+( of input 0)? of nested model '{name}' \(67108865,\) per "
                r"sample \(67108865 values\), more than 67108864"),
    (7, r"build layer \d \(dense\w*\) in (node 0 of )?nested model '{name}' on inputs of "
        r"shape \(7,\); the graph calls it on \(6,\)")])
def test_a_nested_models_input_shape_is_checked_against_the_graph_before_it_is_built(
        tmp_path, depth, name, size, problem):
    # the nested Sequential was built on the input_shape its entry gave, unchecked:
    # 10**12 made NumPy allocate 7.28 TiB (model-file fuzzer, seed 69); a size within the
    # limits but not the graph's made gigabytes of parameters the file never held
    path = nested_model_file(tmp_path, depth)
    with h5py.File(path, "r+") as h5file:
        config = json.loads(h5file.attrs["hyperparameters"])
        entry = nested_entry(config, name)
        if name == "base":
            entry["input_shape"] = [size]
        else:
            entry["inputs"][0]["shape"] = [size]
        h5file.attrs["hyperparameters"] = json.dumps(config)
    with pytest.raises(dlcore.io.ModelFileError,
                       match=f"nested_{depth}.h5: the hyperparameters "
                             + problem.format(name=name)):
        dlcore.load(path)


def odd_dataset(h5file, kind):
    """Write the dataset ``extra`` of an element type dlcore never writes into ``h5file``."""
    if kind == "region reference":
        h5file["extra"] = np.zeros(3, dtype=np.float32)
        h5file.create_dataset("odd", (1,), dtype=h5py.regionref_dtype)[0] = \
            h5file["extra"].regionref[1:]
        del h5file["extra"]
        h5file.move("odd", "extra")
    elif kind == "object reference":
        h5file.create_dataset("extra", (1,), dtype=h5py.ref_dtype)[0] = h5file.ref
    elif kind == "variable-length sequence":
        h5file.create_dataset("extra", (1,), dtype=h5py.vlen_dtype(np.int64))[0] = \
            np.arange(3)
    elif kind == "enumeration":
        h5file["extra"] = np.array([1, 2], dtype=h5py.enum_dtype({"A": 1, "B": 2},
                                                                 basetype="i1"))


@pytest.mark.parametrize("kind, wording", [
    ("region reference", "references"), ("object reference", "references"),
    ("variable-length sequence", "variable-length sequences"),
    ("enumeration", "an enumeration")])
def test_datasets_of_element_types_dlcore_never_writes_are_refused_before_decoding(
        tmp_path, kind, wording):
    # h5py decoded them into Python objects (a non-bool enumeration was read as integers)
    # before dlcore looked; describe listed them as "object"
    path = tmp_path / "odd.h5"
    dlcore.save(dlcore.Sequential([dlcore.layers.Dense(2)], input_shape=(3,)), path)
    with h5py.File(path, "r+") as h5file:
        odd_dataset(h5file, kind)
    problem = f"odd.h5: dataset 'extra' holds {wording}, which dlcore never writes"
    with pytest.raises(dlcore.io.ModelFileError, match=problem):
        dlcore.io.describe(path)
    with pytest.raises(dlcore.io.ModelFileError, match=problem):
        dlcore.load(path)


def test_an_attribute_whose_string_type_is_damaged_is_refused_not_a_type_error(tmp_path):
    # a flipped byte in the type of Keras's root attribute 'keras_version': h5py failed with
    # "TypeError: Unknown string encoding (value 15)" (model-file fuzzer, seed 69)
    path = tmp_path / "keras_convnet.h5"
    with h5py.File(fixture("keras_convnet.h5"), "r") as h5file:
        version = h5file.attrs["keras_version"]
    with open(fixture("keras_convnet.h5"), "rb") as stream:
        data = stream.read()
    path.write_bytes(data)
    with h5py.File(path, "r+") as h5file:   # a fixed-length string of a size no other has
        h5file.attrs["keras_version"] = np.bytes_(str(version).ljust(77))
    data = path.read_bytes()
    # an HDF5 string type: class 3, version 1, then the character set in the high 4 bits
    type_bytes = re.compile(rb"\x13([\x00-\x1f])\x00\x00" + struct.pack("<I", 77))
    assert len(type_bytes.findall(data)) == 1
    path.write_bytes(type_bytes.sub(lambda match: b"\x13" + bytes([match.group(1)[0] | 0xf0])
                                    + b"\x00\x00" + struct.pack("<I", 77), data))
    problem = (r"keras_convnet.h5: attribute 'keras_version' of '/' holds strings in an "
               r"unknown character set \(HDF5 code 15\)")
    with pytest.raises(dlcore.io.ModelFileError, match=problem):
        dlcore.io.describe(path)
    assert len(dlcore.load(path).layers) > 1   # which reads no version


@pytest.mark.parametrize("extra", [1, 16_001])
def test_a_nested_keras_model_of_too_many_layers_is_refused_naming_the_count(extra):
    from dlcore.io.keras import MAX_KERAS_LAYERS
    # beyond 20,000 entries it was refused as "it lists no layers"
    count = MAX_KERAS_LAYERS + extra
    config = {"class_name": "Sequential", "config": {"name": "deep", "layers": [
        {"class_name": "InputLayer", "config": {"name": "pixels", "batch_shape": [None, 4]}},
        {"class_name": "Sequential",
         "config": {"name": "base", "layers": dropout_entries(count, "inner")}}]}}
    with pytest.raises(dlcore.io.ModelFileError,
                       match=f"has {count} layers in its nested model 'base', more than the "
                             f"{MAX_KERAS_LAYERS} dlcore imports"):
        dlcore.models.model_from_json(json.dumps(config))


def interrupted_dbn(hidden):
    """A DBN whose pretraining was interrupted after its first RBM's first epoch: its file
    holds that RBM and the sizes of all."""
    def interrupt(model):
        raise KeyboardInterrupt

    dbn = dlcore.DBN(hidden=hidden, epochs=1, batch_size=4, backend="reference")
    x = (np.arange(40).reshape(8, 5) % 3 == 0).astype(np.float32)
    with pytest.raises(KeyboardInterrupt):
        dbn.fit(x, on_epoch_end=interrupt)
    return dbn


@pytest.mark.parametrize("absurd", ["long", "wide"])
def test_saving_a_dbn_whose_hidden_sizes_load_would_refuse_is_refused_before_writing(
        tmp_path, monkeypatch, absurd):
    # the file was written, and dlcore.load refused it ("give hidden = [...]; expected a list
    # of 1 to 4000 sizes")
    from dlcore.io import hdf5
    from dlcore.io.layouts import MAX_LAYERS, MAX_SIZE
    assert (hdf5.MAX_LAYERS, hdf5.MAX_SIZE) == (MAX_LAYERS, MAX_SIZE)   # load's limits
    monkeypatch.setattr(hdf5, "MAX_LAYERS", 4)   # 4,000 RBMs take 20 s to set up
    path = tmp_path / "dbn.h5"
    path.write_bytes(b"an earlier model")
    if absurd == "long":
        dbn, problem = interrupted_dbn([3] * 5), (" of hidden=5 sizes: a dlcore model file "
                                                  "holds at most 4")
    else:
        dbn, problem = (interrupted_dbn([3, MAX_SIZE + 1]),
                        f": hidden gives a layer of {MAX_SIZE + 1} units, more than the "
                        f"{MAX_SIZE} a dlcore model file holds")
    with pytest.raises(ValueError, match=f"cannot save this DBN{problem}, and dlcore.load "
                                         f"would refuse it"):
        dlcore.save(dbn, path)
    assert path.read_bytes() == b"an earlier model"


@pytest.fixture
def saved_functional_model(tmp_path):
    """A small functional model and the file it is saved in, for a test to damage."""
    from dlcore.layers import Dense
    inputs = dlcore.Input(shape=(3,))
    model = dlcore.Model(inputs, Dense(2)(inputs), backend="reference")
    path = tmp_path / "functional.h5"
    dlcore.save(model, path)
    return model, path


def assert_loads_predicting_as(path, model):
    """``dlcore.load(path)`` predicts what ``model`` does."""
    x = np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(dlcore.load(path).predict(x), model.predict(x))


def test_a_functional_models_layer_names_nested_deep_are_ignored_not_a_recursion_error(
        saved_functional_model):
    # json.loads of the list of layer names (kept for an EarlyStopping's best weights) ran
    # out of stack on one nested 200,000 deep (model-file fuzzer, seed 70)
    model, path = saved_functional_model
    with h5py.File(path, "r+") as h5file:
        h5file["layers"].attrs["layer_names"] = "[" * 20_000 + "]" * 20_000
    assert_loads_predicting_as(path, model)


def test_a_nested_sequential_without_an_input_shape_is_checked_on_its_first_layers(
        tmp_path):
    # a nested Sequential given no input_shape takes its first layer's own (Keras's
    # input_shape= on a layer), and is built on it
    path = nested_model_file(tmp_path, 1)
    with h5py.File(path, "r+") as h5file:
        config = json.loads(h5file.attrs["hyperparameters"])
        nested_entry(config, "base")["input_shape"] = None
        config["layers"][nested_entry(config, "base")["layers"][0]]["config"][
            "input_shape"] = [2**13, 2**13]
        h5file.attrs["hyperparameters"] = json.dumps(config)
    with pytest.raises(dlcore.io.ModelFileError,
                       match=r"build layer 0 \(dense\) in nested model 'base' on inputs of "
                             r"shape \(8192, 8192\); the graph calls it on \(6,\)"):
        dlcore.load(path)


def test_a_functional_models_callbacks_state_replaced_by_a_dataset_is_not_an_index_error(
        saved_functional_model):
    # looking for an EarlyStopping's best weights indexed the array by a name: NumPy's
    # IndexError out of dlcore.load (found by a sweep replacing each group of the fuzzer's
    # bases by a dataset)
    model, path = saved_functional_model
    with h5py.File(path, "r+") as h5file:
        h5file.require_group("training")["callbacks"] = np.arange(3.0)
    assert_loads_predicting_as(path, model)


@pytest.mark.parametrize("shape", [6, 6.0, True])
def test_a_nested_sequentials_input_shape_that_is_no_list_is_refused_in_one_line(
        tmp_path, shape):
    # list(6) raised TypeError "'int' object is not iterable" out of dlcore.load
    path = nested_model_file(tmp_path, 1)
    with h5py.File(path, "r+") as h5file:
        config = json.loads(h5file.attrs["hyperparameters"])
        nested_entry(config, "base")["input_shape"] = shape
        h5file.attrs["hyperparameters"] = json.dumps(config)
    with pytest.raises(dlcore.io.ModelFileError,
                       match=r"give the input_shape of nested model 'base' = \w+\.?\d*; "
                             r"expected a list of 1 to 4 sizes"):
        dlcore.load(path)


def test_thousands_of_nested_keras_layers_of_one_name_are_renamed_in_linear_time(monkeypatch):
    # a nested layer named as one before is numbered on (dense_1, ...): numbering each from 1
    # again took time quadratic in a hostile file's 20,000 entries of one name (a minute).
    # Counted, not timed: the names the renaming looks up in its set of names taken
    import dlcore.io.keras as keras_io

    class CountedSet(set):
        lookups = 0

        def __contains__(self, item):
            CountedSet.lookups += 1
            return super().__contains__(item)

    monkeypatch.setattr(keras_io, "set", CountedSet, raising=False)
    n_layers = 5_000
    config = {"class_name": "Sequential", "config": {"name": "deep", "layers": [
        {"class_name": "InputLayer", "config": {"name": "pixels", "batch_shape": [None, 4]}},
        {"class_name": "Sequential", "config": {"name": "base", "layers": [
            {"class_name": "Dropout", "config": {"name": "same", "rate": 0.1}}
            for _ in range(n_layers)]}},
        {"class_name": "Dropout", "config": {"name": "same", "rate": 0.1}}]}}
    with pytest.raises(dlcore.io.ModelFileError, match=f"has {n_layers} layers in its nested "
                                                       "model 'base'"):
        dlcore.models.model_from_json(json.dumps(config))
    assert 0 < CountedSet.lookups < 10 * n_layers


def edit_hyperparameters(path, change, group=""):
    """Apply ``change`` (a function of the dict) to the JSON hyperparameters of the model
    file ``path``, or of its ``group`` (an RBM of a DBN's file: "rbms/rbm_0")."""
    with h5py.File(path, "r+") as h5file:
        owner = h5file[group] if group else h5file
        config = json.loads(owner.attrs["hyperparameters"])
        change(config)
        owner.attrs["hyperparameters"] = json.dumps(config)


def interrupted_stack(kind, hidden):
    """A DBN or StackedAutoencoder of ``hidden`` whose pretraining was interrupted after its
    first layer's first epoch (its file holds that layer and the sizes of all)."""
    def interrupt(model):
        raise KeyboardInterrupt

    model = getattr(dlcore, kind)(hidden=hidden, epochs=1, batch_size=4, backend="reference")
    with pytest.raises(KeyboardInterrupt):
        model.fit((np.arange(40).reshape(8, 5) % 3 == 0).astype(np.float32),
                  on_epoch_end=interrupt)
    return model


@pytest.mark.parametrize("kind, layer", [("DBN", "RBM"), ("StackedAutoencoder", "autoencoder")])
def test_layers_not_reached_by_an_interrupted_pretraining_are_bounded_at_load_and_save(
        tmp_path, kind, layer):
    # a file may declare a layer it does not store of 2**31 - 1 units: load was fine and
    # resume allocated what the file asked (MemoryError, or gigabytes)
    limit = 2**27   # docs/hdf5-format.md: what resume builds from sizes alone
    path = tmp_path / "checkpoint.h5"
    dlcore.save(interrupted_stack(kind, [3, 2]), path)
    edit_hyperparameters(path, lambda config: config.update(hidden=[3, 2**31 - 1]))
    problem = (f"checkpoint.h5: the {kind}'s {layer}s not reached by its interrupted "
               f"pretraining declare {3 * (2**31 - 1)} weights in all \\({layer} 2: 3 x "
               f"{2**31 - 1}\\), more than the {limit} that resume builds")
    with pytest.raises(dlcore.io.ModelFileError, match=problem):
        dlcore.load(path)
    # save refuses what load would refuse, before writing; a size just within is saved
    path.write_bytes(b"an earlier model")
    too_wide = limit // 3 + 1
    with pytest.raises(ValueError, match=f"cannot save this {kind}: the {kind}'s {layer}s not "
                                         f"reached by its interrupted pretraining declare "
                                         f"{3 * too_wide} weights"):
        dlcore.save(interrupted_stack(kind, [3, too_wide]), path)
    assert path.read_bytes() == b"an earlier model"
    dlcore.save(interrupted_stack(kind, [3, too_wide - 1]), path)
    assert dlcore.load(path).get_params()["hidden"] == [3, too_wide - 1]


@pytest.mark.parametrize("failing", ["get_type", "dtype"])
def test_an_unreadable_type_header_is_refused_naming_the_dataset(tmp_path, failing):
    # h5py reports HDF5's failure to read a type message as an OSError, which element_dtype
    # let through where it caught h5py's other failures: load said the whole file was damaged
    # without naming what, and describe's listing and the Keras name lists raised it
    from dlcore.io.guarded import ModelFileReader

    class UnreadableTypeHeader:
        """The low-level id of a dataset whose type message HDF5 cannot read back."""

        def __init__(self, dataset_id):
            self.dataset_id = dataset_id

        def get_type(self):
            if failing == "get_type":
                raise OSError("Unable to synchronously get datatype (bad datatype version)")
            return self.dataset_id.get_type()

        @property
        def dtype(self):
            raise OSError("Unable to synchronously get datatype (addr overflow)")

    path = tmp_path / "model.h5"
    with h5py.File(path, "w") as h5file:
        h5file["W"] = np.zeros((2, 3), np.float32)
        reader = ModelFileReader(h5file, str(path))
        assert reader.element_dtype(h5file["W"].id, "dataset 'W'") == np.float32
        with pytest.raises(dlcore.io.ModelFileError,
                           match=r"model.h5: dataset 'W' has an HDF5 type that cannot be "
                                 r"decoded \(Unable to synchronously get datatype"):
            reader.element_dtype(UnreadableTypeHeader(h5file["W"].id), "dataset 'W'")


def nesting_config(nested):
    """The Keras config (a dict) of a model of two inputs calling a model 'pair' nested in
    it: a functional one of both inputs, or a Sequential one of the first."""
    from dlcore.layers import Dense
    left, right = dlcore.Input((3,)), dlcore.Input((2,))
    if nested == "Functional":
        inner = dlcore.Model([left, right], dlcore.layers.concatenate(
            [Dense(2, name="of_right")(right), Dense(2, name="of_left")(left)]), name="pair",
            backend="reference")
        outputs = Dense(1, name="head")(inner([left, right]))
    else:
        inner = dlcore.Sequential([Dense(2, name="of_left")], input_shape=(3,), name="pair",
                                  backend="reference")
        outputs = Dense(1, name="head")(inner(left))
    config = json.loads(dlcore.Model([left, right], outputs, backend="reference").to_json())
    pair = next(layer for layer in config["config"]["layers"]
                if layer["config"].get("name") == "pair")
    return config, pair


@pytest.mark.parametrize("nested", ["Functional", "Sequential"])
@pytest.mark.parametrize("name", [["a", "list"], {"an": "object"}, 7])
def test_a_nested_models_layer_named_by_no_string_is_refused_in_one_line(nested, name):
    # a list or an object as the name of a layer of a nested functional model failed with
    # "TypeError: unhashable type: 'list'" (the exhaustive sweep of a model nesting a model
    # of two inputs), in dlcore.load, model_from_json and dlcore info
    config, pair = nesting_config(nested)
    layer = next(layer for layer in pair["config"]["layers"]
                 if layer["config"].get("name") == "of_left")
    layer["config"]["name"] = name
    with pytest.raises(dlcore.io.ModelFileError,
                       match=re.escape(f"a layer of the model 'pair' nested in the Keras model "
                                       f"has the invalid name {str(name)!r}")) as caught:
        dlcore.models.model_from_json(json.dumps(config))
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("where, message", [
    ("the model's input_layers", "names the tensor"),
    ("the nested model's input_layers", "are not its own"),
    ("a nested layer's keras_history", "which it does not make")])
@pytest.mark.parametrize("name", [["a", "list"], {"an": "object"}])
def test_a_tensor_named_by_a_list_is_refused_in_one_line(where, message, name):
    # a list or an object where a Keras config names a layer's tensor (its input_layers, a
    # call's keras_history) failed with "TypeError: unhashable type" (the exhaustive sweep of
    # the JSON config of a model nesting a model of two inputs)
    config, pair = nesting_config("Functional")
    if where == "the model's input_layers":
        config["config"]["input_layers"][0][0] = name
    elif where == "the nested model's input_layers":
        pair["config"]["input_layers"][0][0] = name
    else:
        layer = next(layer for layer in pair["config"]["layers"]
                     if layer["config"].get("name") == "of_left")
        layer["inbound_nodes"][0]["args"][0]["config"]["keras_history"][0] = name
    with pytest.raises(dlcore.io.ModelFileError, match=message) as caught:
        dlcore.models.model_from_json(json.dumps(config))
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("where", ["rbm", "dbn"])
def test_persistent_chains_a_file_declares_but_does_not_store_are_bounded(tmp_path, where):
    # an RBM file of PCD without its chains (none before the first persistent update) and
    # n_chains = 2**31 - 1 loaded, and its next partial_fit or resume allocated 40 GiB
    # (MemoryError; with fewer chains, gigabytes filled with the data's states)
    limit = 2**27   # docs/hdf5-format.md: what training builds from sizes alone
    x = (np.arange(60).reshape(12, 5) % 3 == 0).astype(np.float32)
    options = dict(n_hidden=4, epochs=1, batch_size=4, backend="reference")
    model = (dlcore.BernoulliRBM(**options) if where == "rbm"
             else dlcore.DBN(layers=[5, 4], epochs=1, batch_size=4, backend="reference"))
    model.fit(x)   # CD: no chains stored
    path, group = tmp_path / "model.h5", "" if where == "rbm" else "rbms/rbm_0"
    dlcore.save(model, path)
    edit_hyperparameters(path, lambda config: config.update(sampler="pcd", n_chains=2**31 - 1),
                         group)
    with pytest.raises(dlcore.io.ModelFileError,
                       match=f"give persistent chains of {2**31 - 1} x 4 hidden and "
                             f"{2**31 - 1} x 5 visible states, which the file does not store "
                             f".*more than the {limit} that training builds from sizes "
                             f"alone") as caught:
        dlcore.load(path)
    assert "\n" not in str(caught.value)
    # save refuses what load would refuse; chains just within the limit are saved and loaded
    rbm = model if where == "rbm" else model.rbms_[0]
    most = limit // (4 + 5)   # 4 hidden and 5 visible states a chain
    rbm.set_params(sampler="pcd", n_chains=most + 1)
    path.write_bytes(b"an earlier model")
    with pytest.raises(ValueError, match=f"cannot save this {type(model).__name__}: "
                                         f"(rbms/rbm_0: )?its hyperparameters give persistent "
                                         f"chains of {most + 1} x 4 hidden"):
        dlcore.save(model, path)
    assert path.read_bytes() == b"an earlier model"
    rbm.set_params(n_chains=most)
    dlcore.save(model, path)
    loaded = dlcore.load(path)
    assert (loaded if where == "rbm" else loaded.rbms_[0]).n_chains == most


@pytest.mark.parametrize("where", ["rbm", "dbn"])
def test_persistent_chains_bound_their_visible_states_stored_or_not(tmp_path, where):
    # a file of a few weights and one hidden state per chain, 64 visible units and 2**26
    # chains passed the check of the chains' hidden states (2**26 <= 2**27), and its next
    # partial_fit asked for 16 GiB of visible states; storing those chains (256 MiB in a file
    # of 4 bytes a chain, or fewer compressed) bounded nothing more
    x = (np.arange(48).reshape(6, 8) % 3 == 0).astype(np.float32)
    model = (dlcore.BernoulliRBM(n_hidden=1, epochs=1, batch_size=3, backend="reference")
             if where == "rbm" else
             dlcore.DBN(layers=[8, 1], epochs=1, batch_size=3, backend="reference"))
    model.fit(x)
    path, group = tmp_path / "model.h5", "" if where == "rbm" else "rbms/rbm_0"
    dlcore.save(model, path)
    rows = 2**27 // (8 + 1) + 1
    for stored in (False, True):
        edit_hyperparameters(path, lambda config: config.update(sampler="pcd", n_chains=rows),
                             group)
        if stored:
            with h5py.File(path, "r+") as h5file:
                (h5file[group] if group else h5file).create_dataset(
                    "training/persistent_chain", shape=(rows, 1), dtype=np.float32,
                    compression="gzip")
        with pytest.raises(dlcore.io.ModelFileError,
                           match=f"give persistent chains of {rows} x 1 hidden and {rows} x 8 "
                                 f"visible states(, which .*)?, more than") as caught:
            dlcore.load(path)
        assert ("which the file does not store" in str(caught.value)) is not stored
        assert "\n" not in str(caught.value)


def test_an_integer_of_thousands_of_digits_in_a_config_is_named_without_pythons_advice(
        tmp_path):
    # the line passed on Python's "Exceeds the limit (4300 digits) for integer string
    # conversion ...; use sys.set_int_max_str_digits() to increase the limit": no fix for a
    # reader of a damaged file (hand-made hostile archives of the eighth pass)
    from dlcore.layers import Dense
    model = dlcore.Sequential([Dense(3)], input_shape=(4,), backend="reference")
    path = tmp_path / "digits.keras"
    model.save(path)
    members = archive_members(path)
    config = members["config.json"].decode()
    assert config.count('"units": 3') == 1
    members["config.json"] = config.replace('"units": 3', '"units": 1' + "0" * 5000).encode()
    write_archive(path, members)
    with pytest.raises(dlcore.io.ModelFileError,
                       match=r"digits.keras: config.json is not valid JSON: it holds an integer "
                             r"of more than 4300 digits; the file is damaged") as caught:
        dlcore.load(path)
    assert "set_int_max_str_digits" not in str(caught.value)


@pytest.mark.parametrize("metadata", [b'{"keras_version": "3.15', b"[1, 2]"])
def test_an_archive_whose_metadata_cannot_be_read_says_the_settings_it_lost(
        tmp_path, metadata):
    # dlcore keeps its optimiser settings that Keras lacks in metadata.json, which Keras never
    # reads: a damaged member loaded the model compiled without them, silently (an AdamW
    # decaying the biases it was told to exclude)
    from dlcore.layers import Dense
    model = dlcore.Sequential([Dense(3)], input_shape=(4,), backend="reference")
    optimizer = dlcore.optimizers.AdamW(0.01, weight_decay=0.004)
    optimizer.exclude_from_weight_decay(var_names=["bias"])
    model.compile("mse", optimizer)
    path = tmp_path / "model.keras"
    with pytest.warns(UserWarning, match="exclude_from_weight_decay is kept for dlcore only"):
        model.save(path)
    excluded = {"var_list": [], "var_names": ["bias"]}
    assert dlcore.load(path).optimizer.get_config()["exclude_from_weight_decay"] == excluded
    members = archive_members(path)
    members["metadata.json"] = metadata
    write_archive(path, members)
    with pytest.warns(UserWarning, match=r"model.keras: metadata.json .*: the optimiser "
                                         r"settings dlcore keeps there \(.*"
                                         r"dlcore_exclude_from_weight_decay\) are not "
                                         r"restored"):
        loaded = dlcore.load(path)
    assert "exclude_from_weight_decay" not in loaded.optimizer.get_config()


def dbn_interrupted_in_its_first_rbm(hidden, rbm):
    """A DBN of ``hidden`` units and ``rbm`` settings whose pretraining a Ctrl-C stopped at
    the end of its first RBM's first epoch: the RBMs above it are settings only."""
    def interrupt(model):
        raise KeyboardInterrupt

    dbn = dlcore.DBN(hidden=hidden, epochs=1, batch_size=4, backend="reference", rbm=rbm)
    with pytest.raises(KeyboardInterrupt):
        dbn.fit((np.arange(40).reshape(8, 5) % 3 == 0).astype(np.float32),
                on_epoch_end=interrupt)
    return dbn


def assert_chains_bounded_at_load_and_save(path, interrupted, edit, load_match, most,
                                           save_match, rbm_index):
    """The checks of a bound on the chains of the RBMs an interrupted pretraining had not
    reached: a file edited by ``edit`` (its hyperparameters' config) to pass the bound is
    refused at load in one line matching ``load_match``; ``dlcore.save`` of
    ``interrupted(most + 1)`` is refused (``save_match``), the earlier file kept whole; and
    ``interrupted(most)``, just within the bound, saves and loads with RBM ``rbm_index``'s
    ``n_chains`` kept."""
    dlcore.save(interrupted(2), path)
    edit_hyperparameters(path, edit)
    with pytest.raises(dlcore.io.ModelFileError, match=load_match) as caught:
        dlcore.load(path)
    assert "\n" not in str(caught.value)
    path.write_bytes(b"an earlier model")
    with pytest.raises(ValueError, match=save_match):
        dlcore.save(interrupted(most + 1), path)
    assert path.read_bytes() == b"an earlier model"
    dlcore.save(interrupted(most), path)
    assert dlcore.load(path).rbms_[rbm_index].n_chains == most


def test_chains_of_rbms_an_interrupted_pretraining_had_not_reached_are_bounded(tmp_path):
    # the DBN's rbm= settings of an RBM not reached yet could give n_chains = 2**31 - 1: the
    # file loaded, and resume allocated 32 GiB (MemoryError)
    limit = 2**27   # docs/hdf5-format.md: what training builds from sizes alone
    most = limit // (4 + 3)   # RBM 2: 4 hidden and 3 visible states a chain

    def interrupted(n_chains):
        # fit refuses such chains before training: the unreached RBM's are changed after
        dbn = dbn_interrupted_in_its_first_rbm([3, 4], [{}, {"sampler": "pcd", "n_chains": 2}])
        dbn.set_params(rbm=[{}, {"sampler": "pcd", "n_chains": n_chains}])
        dbn.rbms_[1].set_params(n_chains=n_chains)
        return dbn

    # the visible states count too (each training step makes them): the save's bound
    assert_chains_bounded_at_load_and_save(
        tmp_path / "checkpoint.h5", interrupted,
        lambda config: config["rbm"][1].update(n_chains=2**31 - 1),
        f"checkpoint.h5: the settings of RBM 2, not reached by the interrupted pretraining, "
        f"give persistent chains of {2**31 - 1} x 4 hidden and {2**31 - 1} x 3 visible "
        f"states", most,
        f"cannot save this DBN: the settings of RBM 2, .* chains of {most + 1} x 4 hidden and "
        f"{most + 1} x 3 visible states", rbm_index=1)


def test_chains_of_all_the_rbms_an_interrupted_pretraining_had_not_reached_are_bounded(
        tmp_path):
    # each RBM not reached yet was bounded alone, but a finished RBM keeps its chains while
    # resume trains the next: thousands of RBMs of chains just under the bound added up
    limit = 2**27   # docs/hdf5-format.md: what training builds from sizes alone
    half = limit // (2 * (3 + 3))   # RBMs 2 and 3: 3 hidden and 3 visible states a chain
    each = limit // 6   # within the bound of one RBM

    def interrupted(n_chains):
        settings = {"sampler": "pcd", "n_chains": n_chains}
        return dbn_interrupted_in_its_first_rbm([3, 3, 3], [{}, settings, settings])

    assert_chains_bounded_at_load_and_save(
        tmp_path / "checkpoint.h5", interrupted,
        lambda config: [rbm.update(n_chains=each) for rbm in config["rbm"][1:]],
        f"checkpoint.h5: the settings of the RBMs not reached by the interrupted pretraining "
        f"give persistent chains of {2 * 6 * each} hidden and visible states in all .*more "
        f"than the {limit}", half,
        f"cannot save this DBN: the settings of the RBMs not reached .* {2 * 6 * (half + 1)} "
        f"hidden and visible", rbm_index=2)


def test_a_keras_layer_name_holding_a_lone_surrogate_is_refused_at_load(tmp_path):
    # a .keras archive's config.json naming a layer "o\\udcaat" loaded, and saving the model
    # then failed in h5py with "UnicodeEncodeError: surrogates not allowed"
    from dlcore.layers import Dense
    model = dlcore.Sequential([Dense(3, name="out")], input_shape=(4,), backend="reference")
    saved = tmp_path / "model.keras"
    dlcore.save(model, saved, format="keras")

    def renamed(name, layer_name):
        path = tmp_path / name
        with zipfile.ZipFile(saved) as source, zipfile.ZipFile(path, "w") as archive:
            for info in source.infolist():
                data = source.read(info.filename)
                if info.filename == "config.json":
                    data = data.replace(b'"out"', layer_name)
                archive.writestr(info, data)
        return path

    with pytest.raises(dlcore.io.ModelFileError,
                       match=r"bad.keras: config.json .* the string 'o\\udcaat', whose "
                             r"'\\udcaa' is a lone surrogate, not a character") as caught:
        dlcore.load(renamed("bad.keras", b'"o\\udcaat"'))
    assert "\n" not in str(caught.value)
    # a pair of escapes is one character, which a file stores
    paired = dlcore.load(renamed("paired.keras", b'"o\\ud83d\\ude00t"'))
    assert paired.layers[-1].name == "o\U0001f600t"
    dlcore.save(paired, tmp_path / "paired.h5")
    assert dlcore.load(tmp_path / "paired.h5").layers[-1].name == "o\U0001f600t"


def keras_tensor(name):
    return {"class_name": "__keras_tensor__",
            "config": {"shape": [None, 2], "dtype": "float32", "keras_history": [name, 0, 0]}}


def keras_functional(n_outputs, n_joined):
    """A Keras 3 functional config: one input, ``n_outputs`` Dense layers on it, each an
    output, and an Add of the first ``n_joined`` (more than ``n_outputs``: one named twice)."""
    dense = [{"class_name": "Dense", "name": f"d{index}",
              "config": {"name": f"d{index}", "units": 2},
              "inbound_nodes": [{"args": [keras_tensor("in")], "kwargs": {}}]}
             for index in range(n_outputs)]
    add = {"class_name": "Add", "name": "add", "config": {"name": "add"},
           "inbound_nodes": [{"args": [[keras_tensor(f"d{index % n_outputs}")
                                        for index in range(n_joined)]], "kwargs": {}}]}
    return json.dumps({"class_name": "Functional", "config": {
        "name": "model", "input_layers": [["in", 0, 0]],
        "output_layers": [[f"d{index}", 0, 0] for index in range(n_outputs)],
        "layers": [{"class_name": "InputLayer", "name": "in", "inbound_nodes": [],
                    "config": {"name": "in", "batch_shape": [None, 2]}}, *dense, add]}})


def test_a_keras_model_of_more_outputs_or_joined_tensors_than_imported_says_so():
    # a Keras model of 65 outputs was refused as "names the tensor [['d0', 0, 0], ['d1', 0,
    # 0], ..., which no layer makes", though every layer makes its own; an Add of 65 tensors
    # as "it takes an empty or too long list of tensors", naming no limit (64: the inputs,
    # outputs and joined tensors of a dlcore model file, docs/hdf5-format.md)
    model = dlcore.models.model_from_json(keras_functional(64, 64))
    assert len(model.outputs) == 64
    with pytest.raises(dlcore.io.ModelFileError,
                       match=r"^<json>: the Keras model lists 65 tensors as its inputs or "
                             r"outputs \(input_layers, output_layers\), more than the 64 "
                             r"dlcore imports"):
        dlcore.models.model_from_json(keras_functional(65, 2))
    with pytest.raises(dlcore.io.ModelFileError,
                       match=r"Keras layer 'add' \(Add\) cannot be imported: it takes a list of "
                             r"65 tensors; dlcore imports a list of 1 to 64"):
        dlcore.models.model_from_json(keras_functional(64, 65))


def test_a_nested_keras_input_layer_of_no_name_loads_with_its_optimiser(tmp_path,
                                                                        monkeypatch):
    # a compiled Keras .h5 nesting a Sequential whose InputLayer config had no name (or was
    # empty): the model imported, then restoring the optimiser looked the nested model's
    # layers up by name and raised KeyError: 'name' (sweep of the nested bases, session 29)
    monkeypatch.setenv("DLCORE_BACKEND", "reference")   # no kernels to compile
    path = tmp_path / "nested.h5"
    shutil.copyfile(fixture("keras_nested_base.h5"), path)
    with h5py.File(path, "r+") as h5file:
        config = json.loads(h5file.attrs["model_config"])
        nested = config["config"]["layers"][1]
        assert nested["class_name"] == "Sequential"
        assert nested["config"]["layers"][0]["class_name"] == "InputLayer"
        nested["config"]["layers"][0]["config"] = {}
        h5file.attrs["model_config"] = json.dumps(config)
    model = dlcore.load(path)
    assert model.optimizer is not None
    assert np.isfinite(model.predict(np.ones((1, *model.input_shape), np.float32))).all()


def test_a_keras_rescaling_beyond_float32_is_refused_at_load():
    # a Rescaling of scale 1e308 (finite as a float64) loaded, and predict gave infinity:
    # the layer computes in float32 (model-file fuzzer, seed 148)
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "InputLayer", "config": {"name": "in", "batch_shape": [None, 2]}},
        {"class_name": "Rescaling", "config": {"name": "r", "scale": 1e308, "offset": 0.0}}]}}
    with pytest.raises(dlcore.io.ModelFileError, match=r"scale must be in \[-3.40.*e\+38, "
                                                       r"3.40.*e\+38\], got 1e\+308"):
        dlcore.models.model_from_json(json.dumps(config))
    config["config"]["layers"][1]["config"]["scale"] = 3e38
    assert dlcore.models.model_from_json(json.dumps(config)).layers[-1].scale == 3e38


def test_a_keras_weight_name_that_is_not_utf8_is_refused_not_a_unicode_error(tmp_path):
    # a flipped byte in a legacy Keras file's weight_names (variable-length UTF-8 strings):
    # h5py decoded the entry with a surrogate for the byte, and looking it up as a path
    # failed with "UnicodeEncodeError: surrogates not allowed" (model-file fuzzer, seed 111)
    from dlcore.layers import Dense
    model = dlcore.Sequential([Dense(3, name="out")], input_shape=(4,), backend="reference")
    path = tmp_path / "keras.h5"
    dlcore.save(model, path, format="keras")
    with h5py.File(path, "r+") as h5file:
        group = h5file["model_weights/out"]
        names = [str(name) for name in group.attrs["weight_names"]]
        assert names[0].endswith("kernel")
        group.attrs.create("weight_names", [names[0][:-3].encode() + b"\xaael",
                                            names[1].encode()],
                           dtype=h5py.string_dtype("utf-8"))
    with pytest.raises(dlcore.io.ModelFileError,
                       match=r"keras.h5: the file names '.*ker\\udcaael', which is not a valid "
                             r"UTF-8 name") as caught:
        dlcore.load(path)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("settings", ["list", "dict"])
def test_the_ladder_of_rbms_an_interrupted_pretraining_had_not_reached_is_bounded(
        tmp_path, settings):
    # the DBN's rbm= settings are all a file holds of the RBMs not reached yet: with
    # n_temperatures = 2**40 load built their ladder (np.arange of 8 TiB: MemoryError with a
    # traceback, or swap with a smaller one); a stored RBM's is bounded at 1000 rungs
    def interrupt(model):
        raise KeyboardInterrupt

    dbn = dlcore.DBN(hidden=[3, 4], epochs=1, batch_size=4, backend="reference",
                     rbm=({"sampler": "pt", "n_chains": 2} if settings == "dict"
                          else [{}, {"sampler": "pt", "n_chains": 2}]))
    with pytest.raises(KeyboardInterrupt):
        dbn.fit((np.arange(40).reshape(8, 5) % 3 == 0).astype(np.float32),
                on_epoch_end=interrupt)
    path = tmp_path / "checkpoint.h5"
    dlcore.save(dbn, path)
    assert dlcore.load(path).rbms_[1].n_temperatures == 10
    with h5py.File(path, "r+") as h5file:
        config = json.loads(h5file.attrs["hyperparameters"])
        (config["rbm"][1] if settings == "list" else config["rbm"])["n_temperatures"] = 2**40
        h5file.attrs["hyperparameters"] = json.dumps(config)
    where = r"rbm\[1\]" if settings == "list" else "rbm"
    with pytest.raises(dlcore.io.ModelFileError,
                       match=f"checkpoint.h5: the hyperparameters' {where} give "
                             f"'n_temperatures' = {2**40}; expected an integer in "
                             r"\[2, 1000\]") as caught:
        dlcore.load(path)
    assert "\n" not in str(caught.value)



def small_trained_rbm():
    """An RBM of 16 visible and 8 hidden units trained an epoch: 8 x 16 weights, the 8 x 8
    chunks of the filter tests' files."""
    data = (np.random.default_rng(0).random((8, 16)) < 0.5).astype(np.float32)
    return dlcore.BernoulliRBM(n_hidden=8, epochs=1, batch_size=8, backend="reference").fit(data)


def saved_rbm(tmp_path):
    """:func:`small_trained_rbm` and the file ``rbm.h5`` in ``tmp_path`` it is saved to."""
    rbm = small_trained_rbm()
    path = tmp_path / "rbm.h5"
    dlcore.save(rbm, path)
    return rbm, path


def with_weights_stored(path, chunks=(8, 8), first_chunk=None, **options):
    """Rewrite the RBM file ``path``'s weights in ``chunks`` through the storage ``options``
    of h5py's ``create_dataset`` (filters, or a ``dcpl``); ``first_chunk(weights, mask,
    stored)`` -> (mask, stored) replaces the first chunk's stored bytes, as a damaged or
    hostile file holds them. Returns the first filter's parameters as HDF5 stored them."""
    with h5py.File(path, "r+") as h5file:
        weights = h5file["W"][()]
        del h5file["W"]
        stored = h5file.create_dataset("W", data=weights, chunks=chunks, **options)
        if first_chunk is not None:
            origin = (0,) * weights.ndim
            mask, data = first_chunk(weights, *stored.id.read_direct_chunk(origin))
            stored.id.write_direct_chunk(origin, data, mask)
        plist = stored.id.get_create_plist()
        return plist.get_filter(0)[2] if plist.get_nfilters() else None


def damage_filter_parameter(path, parameters, index, value):
    """Set parameter ``index`` of the filter whose ``parameters`` the file ``path`` stores to
    ``value`` in the file's bytes, as a damaged or hostile file holds it (None: unchanged)."""
    if value is None:
        return
    changed = list(parameters)
    changed[index] = value
    packed = struct.pack(f"<{len(parameters)}I", *parameters)
    content = path.read_bytes()
    assert content.count(packed) == 1
    path.write_bytes(content.replace(packed, struct.pack(f"<{len(changed)}I", *changed)))


def with_scale_offset_parameter(path, index, value):
    """Rewrite the RBM file ``path``'s weights with HDF5's scale-offset filter (chunks of
    8 x 8: 64 elements), then set the filter's parameter ``index`` to ``value`` in the file's
    bytes (as a damaged or hostile file holds it); ``value`` None keeps HDF5's own."""
    damage_filter_parameter(path, with_weights_stored(path, scaleoffset=3), index, value)


@pytest.mark.parametrize("index, name, value", [(2, "elements a chunk", 65),
                                                (4, "element size", 8),
                                                (6, "byte order", 1)])
def test_scale_offset_parameters_that_do_not_fit_their_dataset_are_refused(
        tmp_path, index, name, value):
    # HDF5 trusts a scale-offset filter's parameters: a chunk of 2**31 - 1 elements in a
    # file of 30 kB crashed the process (SIGSEGV), 2**26 of them took 256 MiB a chunk, and
    # one more than the chunk holds loaded quietly. Parameters as HDF5 writes them load.
    rbm, path = saved_rbm(tmp_path)
    with_scale_offset_parameter(path, index, None)
    np.testing.assert_allclose(dlcore.load(path).components_, rbm.components_, atol=1e-3)
    dlcore.save(rbm, path)
    with_scale_offset_parameter(path, index, value)
    assert f"({name} {value}, not " in dlcore.io.describe(path)   # dlcore info: not read
    with pytest.raises(dlcore.io.ModelFileError,
                       match=f"rbm.h5: dataset 'W' is stored with HDF5's scale-offset filter, "
                             f"whose parameters do not fit it \\({name} {value}, "
                             f"not ") as caught:
        dlcore.load(path)
    assert "\n" not in str(caught.value)


def with_nbit_parameter(path, index, value):
    """Rewrite the RBM file ``path``'s weights with HDF5's N-bit filter (chunks of 8 x 8),
    then set the filter's parameter ``index`` to ``value`` in the file's bytes; ``value``
    None keeps HDF5's own."""
    creation = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    creation.set_chunk((8, 8))
    creation.set_filter(h5py.h5z.FILTER_NBIT, 0, ())
    parameters = with_weights_stored(path, dcpl=creation)
    assert parameters == (8, 1, 64, 1, 4, 0, 32, 0)   # a full-precision float32: no packing
    damage_filter_parameter(path, parameters, index, value)


@pytest.mark.parametrize("index, name, value", [(1, "no-packing flag", 0),
                                                (2, "elements a chunk", 65),
                                                (6, "precision", 16)])
def test_nbit_parameters_that_do_not_fit_their_dataset_are_refused(tmp_path, index, name,
                                                                   value):
    # the scale-offset check left HDF5's N-bit filter, whose parameters HDF5 trusts as much:
    # packed (flag 0) chunks of 2**26 elements where 18 were stored crashed the process
    # (SIGSEGV, dlcore.load and dlcore info); lesser damage loaded wrong weights quietly
    rbm, path = saved_rbm(tmp_path)
    with_nbit_parameter(path, index, None)
    np.testing.assert_array_equal(dlcore.load(path).components_, rbm.components_)
    dlcore.save(rbm, path)
    with_nbit_parameter(path, index, value)
    assert f"({name} {value}, not " in dlcore.io.describe(path)   # dlcore info: not read
    with pytest.raises(dlcore.io.ModelFileError,
                       match=f"rbm.h5: dataset 'W' is stored with HDF5's N-bit filter, whose "
                             f"parameters do not fit it \\({name} {value}, not ") as caught:
        dlcore.load(path)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("chunks, damage", [((10,), None), ((3, 5), None), ((10,), 11)])
def test_bool_datasets_stored_with_nbit_as_hdf5_2_writes_them_load(tmp_path, chunks, damage):
    # h5py's bool is an HDF5 enumeration, which N-bit leaves unpacked: HDF5 2.0.0 stores three
    # parameters (count 3, no-packing 1, the chunk's elements); a damaged count of elements
    # is refused as a number's is
    values = np.arange(50).reshape((-1,) + chunks[1:]) % 3 == 0
    creation = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    creation.set_chunk(chunks)
    creation.set_filter(h5py.h5z.FILTER_NBIT, 0, ())
    path = tmp_path / "flags.h5"
    with h5py.File(path, "w") as h5file:
        h5file.create_dataset("flags", shape=values.shape, dtype=bool, dcpl=creation)[...] = values
        parameters = h5file["flags"].id.get_create_plist().get_filter(0)[2]
    assert parameters == (3, 1, math.prod(chunks))
    damage_filter_parameter(path, parameters, 2, damage)
    with h5py.File(path, "r") as h5file:
        reader = dlcore.io.guarded.ModelFileReader(h5file, str(path))
        if damage is None:
            np.testing.assert_array_equal(reader.read_array(h5file["flags"], "flags"), values)
        else:
            with pytest.raises(dlcore.io.ModelFileError,
                               match=re.escape("(elements a chunk 11, not 10)")):
                reader.read_array(h5file["flags"], "flags")


@pytest.mark.parametrize("compression, stream_of, zeros", [
    ("gzip", zlib.compress, lambda n_bytes: zlib.compress(bytes(n_bytes))),
    ("lzf", model_file_fuzzer.lzf_literals, model_file_fuzzer.lzf_zeros)])
def test_a_compressed_chunk_that_inflates_beyond_its_chunk_is_refused_unread(
        tmp_path, compression, stream_of, zeros):
    # HDF5's deflate filter inflates a chunk's stream to its end, whatever the chunk's size: a
    # 1 MB file whose chunk of 100 numbers inflated to 1 GiB of zeros took 1.1 GiB to load
    # (and loaded); h5py's LZF filter too: 1 MiB standing for 88 MiB of zeros took 28 s and
    # 90 MiB (LZF chunks were not checked); a chunk inflating to its own size loads
    rbm, path = saved_rbm(tmp_path)
    with_weights_stored(path, compression=compression, first_chunk=lambda weights, *_: (
        0, stream_of(weights[:8, :8].tobytes())))
    np.testing.assert_array_equal(dlcore.load(path).components_, rbm.components_)
    with_weights_stored(path, compression=compression,
                        first_chunk=lambda *_: (0, zeros(2**22)))
    refusal = ("rbm.h5: dataset 'W' has a chunk at (0, 0) that inflates beyond the 256 bytes "
               "of its chunk (a decompression bomb); ")
    with pytest.raises(dlcore.io.ModelFileError, match=re.escape(refusal)) as caught:
        dlcore.load(path)
    assert "\n" not in str(caught.value)
    assert refusal.split(": ", 1)[1].split(";")[0] in dlcore.io.describe(path)


def test_describe_counts_a_signalling_nan_without_numpys_warning(tmp_path):
    # a weight whose bits are a signalling NaN (random bytes in a damaged chunk, stored-chunk
    # fuzz, seeds 181 and 199): dlcore info printed NumPy's "RuntimeWarning: invalid value
    # encountered in cast" and its source line above the description
    import warnings
    _, path = saved_rbm(tmp_path)
    with h5py.File(path, "r+") as h5file:
        weights = h5file["W"][()]
        weights.view(np.uint32)[0, 0] = 0x7FA00000
        h5file["W"][...] = weights
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        text = dlcore.io.describe(path)
    assert "(1 NaN/inf)" in next(line for line in text.splitlines() if line.startswith("  W "))


def test_a_fletcher32_chunk_shorter_than_its_checksum_is_refused_unread(tmp_path):
    # HDF5 takes a chunk's 4-byte Fletcher-32 checksum off unchecked: a chunk cut to 3 bytes
    # crashed the process (SIGSEGV, fuzzer seed 177 with the stored-chunk mutation)
    _, path = saved_rbm(tmp_path)
    with_weights_stored(path, fletcher32=True,
                        first_chunk=lambda weights, mask, stored: (mask, stored[:3]))
    with pytest.raises(dlcore.io.ModelFileError,
                       match=re.escape("rbm.h5: dataset 'W' has a chunk at (0, 0) that holds 3 "
                                       "bytes, fewer than the 4 of the Fletcher-32 checksum it "
                                       "must end with (a damaged chunk); ")):
        dlcore.load(path)


def negative_variance_in_a_dlcore_file(tmp_path):
    """A dlcore file of a network with a batch normalisation whose moving variance's first
    value is -5."""
    network = dlcore.Sequential([Dense(4), BatchNormalization(),
                                 Dense(2, activation="softmax")],
                                input_shape=(3,), backend="reference", seed=0)
    path = tmp_path / "net.h5"
    dlcore.save(network, path)
    with h5py.File(path, "r+") as h5file:
        h5file["layers/batch_normalization/moving_variance"][0] = -5.0
    return path, "layer 'batch_normalization': moving_variance holds 1 negative value (down " \
                 "to -5), which a variance never does; the file is damaged"


def negative_variance_in_a_keras_archive(tmp_path):
    """Keras's batch-normalisation archive (tests/fixtures) whose first moving variance holds
    -5 (Keras's arrays: gamma, beta, moving mean, moving variance)."""
    def edit(h5file):
        h5file["layers/batch_normalization/vars/3"][0] = -5.0
    return (archive_with_weights(tmp_path, "keras_batch_norm.keras", edit),
            "moving_variance holds 1 negative value (down to -5), which a variance never "
            "does; the file is damaged")


@pytest.mark.parametrize("make", [negative_variance_in_a_dlcore_file,
                                  negative_variance_in_a_keras_archive])
def test_a_negative_moving_variance_is_refused_at_load(tmp_path, make):
    # a damaged batch normalisation's moving variance (fuzzer seed 180: -1.6e15 in a Keras
    # archive) loaded, and every prediction was NaN, the square root of a negative number
    path, refusal = make(tmp_path)
    with pytest.raises(dlcore.io.ModelFileError, match=re.escape(refusal)) as caught:
        dlcore.load(path)
    assert "\n" not in str(caught.value)


def with_szip(path, options=("nn", 8)):
    """Rewrite the RBM file ``path``'s weights SZIP-compressed in chunks of 8 x 8; return the
    filter's parameters as HDF5 stored them."""
    return with_weights_stored(path, compression="szip", compression_opts=options)


@pytest.mark.parametrize("options", [("nn", 8), ("ec", 32)])
def test_an_undamaged_szip_dataset_loads(tmp_path, options):
    # this HDF5 decodes SZIP (libaec), which every undamaged file was refused for as if it
    # were damaged ("which HDF5 cannot read safely from a damaged file")
    rbm, path = saved_rbm(tmp_path)
    with_szip(path, options)
    np.testing.assert_array_equal(dlcore.load(path).components_, rbm.components_)


def test_szip_without_a_decoder_is_refused_as_unsupported_not_as_damaged(
        tmp_path, monkeypatch):
    # an HDF5 built without libaec cannot read SZIP: the file is sound, the line says so
    _, path = saved_rbm(tmp_path)
    with_szip(path)
    monkeypatch.setattr(dlcore.io.guarded, "SZIP_DECODES", False)
    with pytest.raises(dlcore.io.ModelFileError,
                       match=re.escape("rbm.h5: dataset 'W' is stored with HDF5's SZIP filter, "
                                       "which this HDF5 cannot decode (it was built without "
                                       "libaec); convert the file with h5repack -f NONE")):
        dlcore.load(path)


@pytest.mark.parametrize("index, name, value", [(1, "pixels a block", 0),
                                                (1, "pixels a block", 7),
                                                (2, "bits a pixel", 8),
                                                (3, "pixels a scanline", 2**31 - 1),
                                                (0, "options", 2**32 - 1)])
def test_szip_parameters_that_do_not_fit_their_dataset_are_refused(tmp_path, index, name,
                                                                   value):
    # HDF5 divides by an SZIP filter's parameters unchecked: a pixels-per-block of 0 killed
    # the process (SIGFPE, fuzzer seed 153); they must be those HDF5 derives from the dataset
    _, path = saved_rbm(tmp_path)
    damage_filter_parameter(path, with_szip(path), index, value)
    refusal = (f"rbm.h5: dataset 'W' is stored with HDF5's SZIP filter, whose parameters do "
               f"not fit it ({name} {value}, not ")
    assert refusal.split(": ", 1)[1] in dlcore.io.describe(path)   # dlcore info: not read
    with pytest.raises(dlcore.io.ModelFileError, match=re.escape(refusal)) as caught:
        dlcore.load(path)
    assert "\n" not in str(caught.value)


def test_an_szip_chunk_declaring_more_than_its_chunk_is_refused_unread(tmp_path):
    # HDF5's SZIP filter allocates the size a chunk's first four bytes declare (up to 4 GiB)
    # and decodes into it
    _, path = saved_rbm(tmp_path)
    # (filter mask 0: SZIP decodes the chunk; random weights are stored unfiltered, their
    # filter's bit set, as SZIP does not make them smaller)
    with_weights_stored(path, compression="szip", compression_opts=("nn", 8),
                        first_chunk=lambda weights, mask, stored: (
                            0, struct.pack("<I", 2**32 - 1) + stored))
    with pytest.raises(dlcore.io.ModelFileError,
                       match=re.escape("rbm.h5: dataset 'W' has a chunk at (0, 0) that "
                                       "declares 4.0 GiB of SZIP data, beyond the 256 bytes "
                                       "of its chunk (a decompression bomb); ")):
        dlcore.load(path)


def with_free_space_of_0_bytes(content):
    """The HDF5 file ``content`` with the free-space object of its first global heap
    collection set to 0 bytes, and the object's position."""
    content = bytearray(content)
    position = content.index(b"GCOL") + 16
    while int.from_bytes(content[position:position + 2], "little") != 0:   # to free space
        length = int.from_bytes(content[position + 8:position + 16], "little")
        position += 16 + -(-length // 8) * 8
    content[position + 8:position + 16] = bytes(8)
    return bytes(content), position


def test_a_global_heap_whose_free_space_is_0_bytes_is_refused_before_hdf5_loops_on_it(
        tmp_path):
    # a byte flipped in the global heap where HDF5 keeps a file's strings (its JSON among
    # them) left a free-space object of 0 bytes: HDF5 stepped by it forever at the first
    # string read, holding the interpreter (dlcore info and load hung; fuzzer seed 172)
    data = (np.random.default_rng(0).random((8, 6)) < 0.5).astype(np.float32)
    path = tmp_path / "rbm.h5"
    dlcore.save(dlcore.BernoulliRBM(n_hidden=3, epochs=1, batch_size=8,
                                    backend="reference").fit(data), path)
    content, position = with_free_space_of_0_bytes(path.read_bytes())
    path.write_bytes(content)
    for read in (dlcore.io.describe, dlcore.load):
        with pytest.raises(dlcore.io.ModelFileError,
                           match=f"rbm.h5: its global heap \\(where HDF5 keeps strings\\) at "
                                 f"byte \\d+ is damaged: a free-space object of 0 bytes at "
                                 f"byte {position}, on which HDF5 would loop forever") as caught:
            read(path)
        assert "\n" not in str(caught.value)


def overlapping_collections(size):
    """``size`` bytes of global heap collections, one starting every 32 bytes, each one's
    objects tiling it exactly: the header of the next collection is the data of an object
    of this one, so that each collection, walked alone, is sound."""
    content = bytearray()
    for start in range(0, size, 32):
        collection = 16 + (size - start - 16) // 32 * 32
        content += b"GCOL\x01\x00\x00\x00" + struct.pack("<Q", collection)
        content += struct.pack("<HHIQ", 1, 1, 0, 16)   # object 1: the next 16 bytes
    return bytes(content)


def test_global_heap_collections_inside_one_another_are_refused_in_one_walk(tmp_path):
    # each collection was walked in full from its own signature: 16 KB of them appended to a
    # model file cost 2 million steps more, 256 KB 15 s, 4 MB an hour of dlcore info (the
    # check that stops HDF5 looping on a damaged heap looped in its place)
    data = (np.random.default_rng(0).random((8, 6)) < 0.5).astype(np.float32)
    path = tmp_path / "rbm.h5"
    dlcore.save(dlcore.BernoulliRBM(n_hidden=3, epochs=1, batch_size=8,
                                    backend="reference").fit(data), path)
    path.write_bytes(path.read_bytes() + overlapping_collections(2**14))
    for read in (dlcore.io.describe, dlcore.load):
        with pytest.raises(dlcore.io.ModelFileError,
                           match=r"rbm.h5: its global heap \(where HDF5 keeps strings\) at "
                                 r"byte \d+ is damaged: its collections hold more objects "
                                 r"than a file of \d+ bytes has room for \(they overlap, "
                                 r"which HDF5 never writes\)") as caught:
            read(path)
        assert "\n" not in str(caught.value)


def test_a_dataset_stored_in_thousands_of_tiny_chunks_is_refused_unread(tmp_path):
    # HDF5 spends kilobytes on each chunk it reads: a 2.7 MB Keras file whose 400 x 120
    # kernel was stored in 48,000 chunks of one number took 182 MiB to load (fuzzer seed 172)
    data = (np.random.default_rng(0).random((8, 64)) < 0.5).astype(np.float32)
    path = tmp_path / "rbm.h5"
    rbm = dlcore.BernoulliRBM(n_hidden=32, epochs=1, batch_size=8,
                              backend="reference").fit(data)
    for chunks, refused in (((2, 1), False), ((1, 1), True)):   # 1,024 chunks, then 2,048
        dlcore.save(rbm, path)
        with_weights_stored(path, chunks, fletcher32=True)
        if not refused:
            np.testing.assert_array_equal(dlcore.load(path).components_, rbm.components_)
            continue
        with pytest.raises(dlcore.io.ModelFileError,
                           match=r"rbm.h5: dataset 'W' of shape \(64, 32\) \(8.0 KiB\) is "
                                 r"stored in 2048 chunks of shape \(1, 1\) \(4 bytes each\), "
                                 r"which HDF5 would read one by one") as caught:
            dlcore.load(path)
        assert "\n" not in str(caught.value)


def test_a_keras_archives_weights_of_a_damaged_global_heap_are_refused_unread(tmp_path):
    # the check of a file's global heap (above) ran for files at a path only: a .keras
    # archive's weights member, copied out of the archive, was read unchecked
    def note(h5file):
        h5file.attrs["note"] = "a string: kept in the global heap"

    path = archive_with_weights(tmp_path, "keras_compiled.keras", note)
    members = archive_members(path)
    members["model.weights.h5"], position = with_free_space_of_0_bytes(
        members["model.weights.h5"])
    write_archive(path, members)
    with pytest.raises(dlcore.io.ModelFileError,
                       match=f"keras_compiled.keras \\(model.weights.h5\\): its global heap "
                             f".* a free-space object of 0 bytes at byte {position}") as caught:
        dlcore.load(path)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("config", ["[1, 2]", '"Sequential"', "3", "null"])
def test_a_keras_model_config_that_is_no_json_object_is_refused_in_one_line(tmp_path, config):
    # a Keras .h5 whose model_config was a JSON list (fuzzer seed 161) raised
    # "AttributeError: 'list' object has no attribute 'get'"
    from dlcore.io.keras import model_from_json
    path = tmp_path / "model.h5"
    shutil.copyfile(fixture("keras_convnet.h5"), path)
    with h5py.File(path, "r+") as h5file:
        h5file.attrs["model_config"] = config
    kind = type(json.loads(config)).__name__
    with pytest.raises(dlcore.io.ModelFileError,
                       match=f"model.h5: the Keras model config is a JSON {kind}, not an "
                             f"object") as caught:
        dlcore.load(path)
    assert "\n" not in str(caught.value)
    with pytest.raises(dlcore.io.ModelFileError, match=f"a JSON {kind}, not an object"):
        model_from_json(config)


def test_a_moving_variance_that_rounding_left_just_below_zero_loads(tmp_path):
    # a trained model's moving variance of a channel that never varies is 0, and a writer
    # computing E[x^2] - E[x]^2 (or a converter's float32 rounding) leaves -1e-12 there:
    # epsilon keeps sqrt(variance + epsilon) real, Keras predicts with it, and so must dlcore
    # (such a file was refused as damaged); a value that epsilon cannot lift stays refused
    def edit(h5file):
        variance = h5file["layers/batch_normalization/vars/3"]
        variance[0], variance[-1] = -1e-12, 0.0
    model = dlcore.load(archive_with_weights(tmp_path, "keras_batch_norm.keras", edit))
    layer = next(layer for layer in model.layers if isinstance(layer, BatchNormalization))
    assert layer.get_weights()[3][0] == np.float32(-1e-12)
    weights = layer.get_weights()
    alone = BatchNormalization(epsilon=layer.epsilon).build(layer.input_shape,
                                                            backend="reference")
    alone.set_weights(weights)
    assert np.isfinite(alone.forward(np.ones((2, *layer.input_shape)))).all()
    weights[3][0] = -layer.epsilon
    with pytest.raises(ValueError, match=r"moving_variance holds 1 negative value \(down to "
                                         r"-0.001\), which a variance never does"):
        layer.set_weights(weights)
