"""Keras 3's model archives, ``.keras`` (dlcore/io/keras_archive.py): files written by Keras
itself (tests/fixtures/, tests/fixtures/make_keras_fixtures.py) load with Keras's predictions
and compile settings; dlcore writes archives that it reads back (and that real Keras reads:
tests/test_io_keras_real.py); damaged and hostile archives are refused in one line naming the
file, without inflating a zip bomb or writing anything outside the temporary copy.
"""
import io
import json
import os
import warnings
import zipfile

import h5py
import numpy as np
import pytest

import dlcore
from dlcore.io.keras_archive import MAX_MEMBERS, MAX_WEIGHTS_BYTES
from dlcore.models import lenet5
from test_io_keras import fixture, images


def archive_data(name):
    data = np.load(fixture(f"keras_{name}.keras.npz"))
    return data["x"].transpose(0, 3, 1, 2), data


def test_a_compiled_keras_archive_loads_with_keras_predictions_and_compile_settings():
    model = dlcore.load(fixture("keras_compiled.keras"))
    x, data = archive_data("compiled")
    np.testing.assert_allclose(model.predict(x), data["y"], atol=1e-5)
    assert isinstance(model, dlcore.Sequential)
    assert model.optimizer.name == "adam" and model.optimizer.learning_rate == pytest.approx(0.01)
    assert model.loss.name == "cross_entropy" and model.metrics == ["accuracy"]
    before = model.evaluate(x, data["labels"])["loss"]
    model.fit(np.concatenate([x] * 4), np.tile(data["labels"], 4), epochs=5, batch_size=4,
              verbose=0)
    assert model.evaluate(x, data["labels"])["loss"] < before


def test_a_functional_keras_archive_loads_as_a_model_and_predicts_as_keras():
    model = dlcore.load(fixture("keras_residual.keras"))
    x, data = archive_data("residual")
    assert isinstance(model, dlcore.Model) and not isinstance(model, dlcore.Sequential)
    np.testing.assert_allclose(model.predict(x), data["y"], atol=1e-5)
    assert model.loss is None    # never compiled in Keras: its compile_config is {}


def test_an_archive_dlcore_writes_reads_back_with_its_weights_and_compile_settings(tmp_path):
    model = lenet5(seed=3)
    model.compile("cross_entropy", dlcore.optimizers.SGD(0.05, momentum=0.9), ["accuracy"])
    x = images(8, (1, 28, 28))
    model.fit(x, np.arange(8) % 10, epochs=1, batch_size=4, verbose=0)
    model.save(tmp_path / "lenet.keras")
    with zipfile.ZipFile(tmp_path / "lenet.keras") as archive:
        assert sorted(archive.namelist()) == ["config.json", "metadata.json",
                                              "model.weights.h5"]
        config = json.loads(archive.read("config.json"))
    assert config["class_name"] == "Sequential" and config["module"] == "keras"
    assert config["compile_config"]["optimizer"]["class_name"] == "SGD"
    twin = dlcore.load(tmp_path / "lenet.keras")
    np.testing.assert_allclose(twin.predict(x), model.predict(x), atol=1e-6)
    assert twin.optimizer.get_config() == model.optimizer.get_config()
    fresh = lenet5(seed=4)
    fresh.load_weights(tmp_path / "lenet.keras")     # Keras's load_weights takes archives too
    np.testing.assert_allclose(fresh.predict(x), model.predict(x), atol=1e-6)
    assert "format         Keras 3 model archive" in dlcore.io.describe(tmp_path / "lenet.keras")


def test_dlcore_save_takes_the_format_from_a_keras_name_as_keras_does(tmp_path):
    """``dlcore.save(model, "m.keras")`` was refused ("a .keras file is a Keras 3 archive;
    write it with dlcore.save(model, path, format='keras')"), where Keras's save_model, this
    model's save and ``dlcore convert`` all write the archive a .keras name names."""
    model = lenet5(seed=5)
    dlcore.save(model, tmp_path / "model.keras")
    assert dlcore.io.keras_archive.is_archive(str(tmp_path / "model.keras"))
    x = images(2, (1, 28, 28))
    np.testing.assert_allclose(dlcore.load(tmp_path / "model.keras").predict(x),
                               model.predict(x), atol=1e-6)
    dlcore.save(model, tmp_path / "model.h5")    # any other name: dlcore's own file
    with h5py.File(tmp_path / "model.h5", "r") as h5file:
        assert "model_class" in h5file.attrs and "model_config" not in h5file.attrs


def test_an_rbm_saved_under_a_keras_name_is_not_sent_to_format_keras(tmp_path):
    """The refusal told an RBM's user to write it with format='keras', which refuses every
    model but a network ("format='keras' writes a dlcore.Sequential or dlcore.Model")."""
    for save in (dlcore.save, lambda model, path: model.save(path)):
        with pytest.raises(ValueError, match=r"model\.keras: a \.keras file is a Keras 3 "
                                             r"archive, which holds Keras's networks, not a "
                                             r"BernoulliRBM; give its dlcore model file another "
                                             r"name, e.g\. model\.h5$"):
            save(dlcore.BernoulliRBM(n_hidden=3), tmp_path / "model.keras")
    assert not os.listdir(tmp_path)


def test_the_keras_suffix_belongs_to_keras_and_model_save_writes_keras_files_only(tmp_path):
    model = lenet5()
    with pytest.raises(ValueError, match="a .keras file is a Keras 3 archive, not dlcore's "
                                         "format; leave format out \\(or give "
                                         "format='keras'\\) to write one"):
        dlcore.save(model, tmp_path / "model.keras", format="dlcore")
    with pytest.raises(ValueError, match="end the name in .keras"):
        model.save(tmp_path / "model.bin")
    assert not os.listdir(tmp_path)
    model.save(tmp_path / "model.h5")     # Keras's legacy HDF5 file, as keras' model.save
    np.testing.assert_allclose(dlcore.load(tmp_path / "model.h5").predict(images(2, (1, 28, 28))),
                               model.predict(images(2, (1, 28, 28))), atol=1e-6)


# --------------------------------------------------------------------------------------------
# Damaged and hostile archives
# --------------------------------------------------------------------------------------------
def rewritten(tmp_path, members, name="edited.keras", compression=zipfile.ZIP_STORED):
    """An archive holding ``members`` (name -> bytes), the others of the compiled fixture's
    archive copied when given as None."""
    with zipfile.ZipFile(fixture("keras_compiled.keras")) as source:
        original = {info.filename: source.read(info) for info in source.infolist()}
    path = tmp_path / name
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for member, data in {**original, **members}.items():
            if data is not None:
                archive.writestr(member, data)
    return path


def refused(path, message, described=False):
    """``dlcore.load`` refuses the archive in one line naming it; ``dlcore info``
    (``describe``) too, unless ``described``: it lists a model it cannot build."""
    with pytest.raises(dlcore.io.ModelFileError, match=message) as error:
        dlcore.load(path)
    text = str(error.value)
    assert "\n" not in text and str(path) in text
    if described:
        assert message in dlcore.io.describe(path)
        return
    with pytest.raises(dlcore.io.ModelFileError):
        dlcore.io.describe(path)


@pytest.mark.parametrize("members, message", [
    ({"config.json": None}, "the archive holds no config.json"),
    ({"model.weights.h5": None}, "the archive holds no model.weights.h5"),
    ({"model.weights.h5": None, "model.weights.npz": b"npz"},
     "its weights are in Keras's npz format"),
    ({"config.json": b"{\"class_name\": "}, "config.json is not valid JSON"),
    ({"config.json": b"[1, 2]"}, "config.json should be a JSON object"),
    ({"config.json": b"\xff\xfe"}, "config.json is not valid JSON"),
    ({"model.weights.h5": b"not hdf5 at all"}, r"\(model.weights.h5\): not a readable HDF5"),
    ({"config.json": json.dumps({"class_name": "Sequential", "config": {"layers": [
        {"class_name": "Lambda", "config": {"name": "code", "function": "x"}}]}}).encode()},
     "Lambda"),
])
def test_a_damaged_archive_is_refused_in_one_line(tmp_path, members, message):
    refused(rewritten(tmp_path, members), message, described=message == "Lambda")


def test_a_zip_bomb_is_refused_before_it_is_inflated(tmp_path):
    path = rewritten(tmp_path, {"model.weights.h5": b"\0" * (2**24)},
                     compression=zipfile.ZIP_DEFLATED)
    refused(path, r"would expand .* into 16.0 MiB \(at most .* is read\): a zip bomb")


def test_a_member_declaring_more_than_the_limit_is_refused_unread(tmp_path):
    path = rewritten(tmp_path, {})
    with zipfile.ZipFile(path, "a") as archive:   # forge the declared size in the directory
        info = archive.getinfo("model.weights.h5")
        info.file_size = MAX_WEIGHTS_BYTES + 1
        archive._didModify = True
    refused(path, "model.weights.h5 holds .*, more than")


def test_weights_larger_than_their_architecture_needs_are_refused_before_they_are_copied(
        tmp_path, monkeypatch):
    """The compiled fixture's 177 parameters need at most 32 bytes each (float64 and three
    optimiser slots) plus room for HDF5's structures (lowered from 16 MiB to 64 KiB here): an
    extra 128 KiB array makes the member larger, and it is refused unread instead of being
    unpacked (up to 1.6 GB into the temporary folder for a small archive)."""
    from dlcore.io import keras_archive
    with zipfile.ZipFile(fixture("keras_compiled.keras")) as source:
        weights = io.BytesIO(source.read("model.weights.h5"))
    with h5py.File(weights, "r+") as h5file:
        h5file["extra"] = np.random.default_rng(0).random(2**14)
    path = rewritten(tmp_path, {"model.weights.h5": weights.getvalue()})
    monkeypatch.setattr(keras_archive, "WEIGHTS_OVERHEAD_BYTES", 2**16, raising=False)
    copied, copy_member = [], keras_archive._copy_member
    monkeypatch.setattr(keras_archive, "_copy_member", lambda archive, info, *rest: (
        copied.append(info.filename), copy_member(archive, info, *rest))[1])
    refused(path, r"model.weights.h5 holds 1\d\d.\d KiB, more than 69.5 KiB \(what the "
                  r"parameters of its architecture need\)")
    assert "model.weights.h5" not in copied


def test_a_full_temporary_folder_is_not_blamed_on_an_intact_archive(tmp_path, monkeypatch):
    """Large weights are unpacked into TMPDIR (here anything over 1 KiB, into a file whose
    writes fail as on a full disk): the error names the temporary folder and TMPDIR, is an
    OSError, and does not ask the student to save the model again."""
    import errno
    import tempfile

    from dlcore.io import keras_archive

    class FullDisk(io.BytesIO):
        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(keras_archive, "IN_MEMORY_BYTES", 1024)
    monkeypatch.setattr(tempfile, "TemporaryFile", lambda *arguments, **options: FullDisk())
    with pytest.raises(OSError) as caught:
        dlcore.load(fixture("keras_compiled.keras"))
    message = str(caught.value)
    assert not isinstance(caught.value, dlcore.io.ModelFileError)
    assert message == (f"{fixture('keras_compiled.keras')}: cannot unpack its model.weights.h5 "
                       f"(21.3 KiB) into the temporary folder {tempfile.gettempdir()} (TMPDIR): "
                       f"no space left on device; the archive is not the problem: free space "
                       f"there, or set TMPDIR to a folder with room")
    assert caught.value.errno == errno.ENOSPC


def test_the_machines_errors_are_oserrors_exported_beside_model_file_error():
    """A full temporary folder or disk is the machine's fault, not the file's: an OSError
    (as Python's own), never caught by ``except ModelFileError``, both named in dlcore.io."""
    from dlcore.io import keras_archive
    assert dlcore.io.TemporaryFolderError is keras_archive.TemporaryFolderError
    assert "TemporaryFolderError" in dlcore.io.__all__ and "NoRoomError" in dlcore.io.__all__
    for error in (dlcore.io.TemporaryFolderError, dlcore.io.NoRoomError):
        assert issubclass(error, OSError) and not issubclass(error, dlcore.io.ModelFileError)
    assert not issubclass(dlcore.io.TemporaryFolderError, dlcore.io.NoRoomError)


def test_too_many_members_encrypted_or_unknown_compression_are_refused(tmp_path):
    crowded = rewritten(tmp_path, {f"assets/{i}": b"" for i in range(MAX_MEMBERS)})
    refused(crowded, f"more than a Keras model archive \\({MAX_MEMBERS} at most\\)")
    locked = rewritten(tmp_path, {}, name="locked.keras")
    data = bytearray(locked.read_bytes())
    data[6] |= 1                    # the first member's local header: "encrypted"
    central = data.rfind(b"PK\x01\x02", 0, data.rfind(b"PK\x05\x06"))
    start = data.find(b"PK\x01\x02")
    while start != -1:              # and every member's central-directory entry
        data[start + 8] |= 1
        start = data.find(b"PK\x01\x02", start + 4)
    assert central != -1
    locked.write_bytes(bytes(data))
    refused(locked, "is encrypted")
    squeezed = rewritten(tmp_path, {}, name="bzip2.keras", compression=zipfile.ZIP_BZIP2)
    refused(squeezed, "compressed with method 12")


@pytest.mark.parametrize("cut", [10, 100, 1000, -100, -10])
def test_a_truncated_archive_is_refused_in_one_line(tmp_path, cut):
    data = open(fixture("keras_compiled.keras"), "rb").read()
    path = tmp_path / "cut.keras"
    path.write_bytes(data[:cut])
    refused(path, "damaged or truncated zip archive")


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED],
                         ids=["stored", "deflated"])
def test_flipped_bytes_are_caught_by_the_archives_checksums(tmp_path, compression):
    """Bytes changed anywhere in the archive: the zip's CRC-32 of each member, its headers or
    the deflate stream catch every change, and each copy is refused in one line naming the
    file."""
    data = rewritten(tmp_path, {}, name="source.keras", compression=compression).read_bytes()
    rng = np.random.default_rng(0)
    for copy in range(30):
        damaged = bytearray(data)
        for position in rng.integers(0, len(data), size=int(rng.integers(1, 4))):
            damaged[position] ^= int(rng.integers(1, 256))
        path = tmp_path / f"flipped{copy}.keras"
        path.write_bytes(bytes(damaged))
        with pytest.raises(dlcore.io.ModelFileError) as error:
            dlcore.load(path)
        assert "\n" not in str(error.value) and str(path) in str(error.value)


def test_members_changed_inside_a_valid_archive_are_refused_clearly_or_load_and_work(tmp_path):
    """A small fuzz of the members themselves (the archive rebuilt around them, checksums
    right): each copy loads into a model that predicts finite numbers or is refused in one
    line naming the file."""
    with zipfile.ZipFile(fixture("keras_compiled.keras")) as source:
        original = {name: source.read(name) for name in ("config.json", "model.weights.h5")}
    rng = np.random.default_rng(1)
    x, _ = archive_data("compiled")
    outcomes = {"refused": 0, "works": 0}
    for copy in range(40):
        member = ("config.json", "model.weights.h5")[copy % 2]
        damaged = bytearray(original[member])
        for position in rng.integers(0, len(damaged), size=int(rng.integers(1, 4))):
            damaged[position] ^= int(rng.integers(1, 256))
        path = rewritten(tmp_path, {member: bytes(damaged)}, name=f"changed{copy}.keras")
        try:
            model = dlcore.load(path)
        except dlcore.io.ModelFileError as error:
            assert "\n" not in str(error) and str(path) in str(error)
            outcomes["refused"] += 1
            continue
        assert np.isfinite(model.predict(x)).all()
        outcomes["works"] += 1
    assert outcomes["refused"] > 0 and outcomes["works"] > 0


def test_a_functional_model_round_trips_through_an_archive_with_its_optimizer_state(tmp_path):
    from dlcore.models import resnet_small
    model = resnet_small(input_shape=(1, 12, 12), backend="reference", seed=2)
    x = images(6, (1, 12, 12))
    model.save(tmp_path / "plain.keras")
    with zipfile.ZipFile(tmp_path / "plain.keras") as archive:
        config = json.loads(archive.read("config.json"))
    assert config["class_name"] == "Functional" and "compile_config" not in config
    np.testing.assert_allclose(dlcore.load(tmp_path / "plain.keras").predict(x),
                               model.predict(x), atol=1e-6)
    model.compile("cross_entropy", dlcore.optimizers.Adam(0.01))
    model.fit(x, np.arange(6) % 10, epochs=2, batch_size=3, verbose=0)
    model.save(tmp_path / "trained.keras")
    loaded = dlcore.load(tmp_path / "trained.keras")
    assert loaded.optimizer.iterations == model.optimizer.iterations == 4
    for mine, theirs in zip(loaded.parameters, model.parameters):
        for slot in ("m", "v"):
            np.testing.assert_allclose(mine.slots[slot], theirs.slots[slot], rtol=1e-6,
                                       atol=1e-12)


# --------------------------------------------------------------------------------------------
# The optimiser's state crosses with the weights
# --------------------------------------------------------------------------------------------
def test_the_optimizer_state_keras_saved_is_adopted_as_dlcores_slots():
    """The fixture's Adam trained 6 updates: its m and v of the first convolution's kernel
    (Keras's HWIO) are dlcore's slots (OIHW), its update count dlcore's."""
    model = dlcore.load(fixture("keras_compiled.keras"))
    with zipfile.ZipFile(fixture("keras_compiled.keras")) as archive:
        with h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as h5file:
            variables = h5file["optimizer/vars"]
            keras_m, keras_v = variables["2"][()], variables["3"][()]
            keras_bias_m = variables["4"][()]
            assert int(variables["0"][()]) == 6
    assert model.optimizer.iterations == 6
    kernel = model.parameters[0]
    np.testing.assert_array_equal(kernel.slots["m"], keras_m.transpose(3, 2, 0, 1))
    np.testing.assert_array_equal(kernel.slots["v"], keras_v.transpose(3, 2, 0, 1))
    np.testing.assert_array_equal(model.parameters[1].slots["m"], keras_bias_m)
    assert np.abs(keras_m).max() > 0


def test_a_legacy_keras_files_optimizer_state_is_adopted_too():
    """The legacy fixture's SGD (Nesterov momentum 0.9, rate 0.05) keeps Keras's momentum
    form, and so Keras's velocity of the convolution's kernel as it is (in dlcore's layout)."""
    model = dlcore.load(fixture("keras_compiled.h5"))
    with h5py.File(fixture("keras_compiled.h5"), "r") as h5file:
        group = h5file["optimizer_weights"]
        names = [name.decode() if isinstance(name, bytes) else name
                 for name in group.attrs["weight_names"]]
        iterations = int(group[names[0]][()])
        keras_velocity = group[names[2]][()]
    assert names[2].endswith("conv_kernel_momentum") and iterations > 0
    assert model.optimizer.iterations == iterations
    assert model.optimizer.momentum_form == "keras"
    np.testing.assert_allclose(model.parameters[0].slots["velocity"],
                               keras_velocity.transpose(3, 2, 0, 1), rtol=1e-6)
    assert np.abs(keras_velocity).max() > 0


def test_a_legacy_state_of_another_optimizer_is_dropped_with_a_warning(tmp_path):
    path = tmp_path / "edited.h5"
    with open(fixture("keras_compiled.h5"), "rb") as source:
        path.write_bytes(source.read())
    with h5py.File(path, "r+") as h5file:
        config = json.loads(h5file.attrs["training_config"])
        config["optimizer_config"] = {"class_name": "Adam", "config": {"learning_rate": 0.01}}
        h5file.attrs["training_config"] = json.dumps(config)
    with pytest.warns(UserWarning, match="the optimizer's state in the file has 6 variables "
                                         "where dlcore's adam of this model has 10"):
        model = dlcore.load(path)
    assert model.optimizer.name == "adam" and model.optimizer.iterations == 0


@pytest.mark.parametrize("optimizer", [
    lambda: dlcore.optimizers.SGD(0.05, momentum=0.9),
    lambda: dlcore.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
    lambda: dlcore.optimizers.SGD(0.05),
    lambda: dlcore.optimizers.Adam(0.01),
    lambda: dlcore.optimizers.RMSProp(0.01)], ids=["momentum", "nesterov", "plain", "adam",
                                                   "rmsprop"])
def test_training_resumed_from_an_archive_goes_on_as_if_never_saved(tmp_path, optimizer):
    x = images(16, (1, 8, 8))
    labels = np.arange(16) % 3

    def build():
        model = dlcore.Sequential([dlcore.layers.Conv2D(3, 3, activation="relu"),
                                   dlcore.layers.Flatten(),
                                   dlcore.layers.Dense(3, activation="softmax")],
                                  input_shape=(1, 8, 8), backend="reference", seed=5)
        model.compile("cross_entropy", optimizer())
        return model
    straight, saved = build(), build()
    straight.fit(x, labels, epochs=3, batch_size=16, shuffle=False, verbose=0)
    saved.fit(x, labels, epochs=2, batch_size=16, shuffle=False, verbose=0)
    saved.save(tmp_path / "half.keras")
    resumed = dlcore.load(tmp_path / "half.keras")
    assert resumed.optimizer.iterations == saved.optimizer.iterations == 2
    resumed.fit(x, labels, epochs=1, batch_size=16, shuffle=False, verbose=0)
    for mine, theirs in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)


def test_an_optimizer_state_that_does_not_fit_the_model_is_dropped_with_a_warning(tmp_path):
    def without(variable, name):
        with zipfile.ZipFile(fixture("keras_compiled.keras")) as archive:
            weights = io.BytesIO(archive.read("model.weights.h5"))
        with h5py.File(weights, "a") as h5file:
            del h5file[f"optimizer/vars/{variable}"]
        return rewritten(tmp_path, {"model.weights.h5": weights.getvalue()}, name=name)
    with pytest.warns(UserWarning, match="the optimizer's state in the file has 9 variables "
                                         "where dlcore's adam of this model has 10: it starts "
                                         "afresh"):
        model = dlcore.load(without(9, "short.keras"))
    assert model.optimizer.iterations == 0 and model.optimizer.name == "adam"
    with pytest.raises(dlcore.io.ModelFileError, match="gap.keras \\(model.weights.h5\\): the "
                       "optimizer's variables are not numbered 0, 1, ..."):
        dlcore.load(without(7, "gap.keras"))


@pytest.mark.parametrize("damaged", ["optimizer", "optimizer/vars"])
def test_an_archive_whose_optimizer_state_is_missing_says_it_starts_afresh(tmp_path, damaged):
    """Keras stores the optimiser of every compiled model (its update count and learning rate
    at least): without it the state is lost, which Keras warns about ("Skipping variable
    loading for optimizer"), and so does dlcore, naming the file."""
    with zipfile.ZipFile(fixture("keras_compiled.keras")) as archive:
        weights = io.BytesIO(archive.read("model.weights.h5"))
    with h5py.File(weights, "a") as h5file:
        del h5file[damaged]
    path = rewritten(tmp_path, {"model.weights.h5": weights.getvalue()}, name="lost.keras")
    with pytest.warns(UserWarning) as caught:
        model = dlcore.load(path)
    messages = [str(warning.message) for warning in caught]
    assert len(messages) == 1 and messages[0].startswith(f"{path}: ")
    assert "no optimizer state ('optimizer/vars' of model.weights.h5)" in messages[0]
    assert "adam starts afresh" in messages[0]
    assert model.optimizer.name == "adam" and model.optimizer.iterations == 0
    with zipfile.ZipFile(fixture("keras_compiled.keras")) as archive:   # the weights loaded
        with h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as h5file:
            kernel = h5file["layers/conv2d/vars/0"][()]
    np.testing.assert_array_equal(model.get_weights()[0], kernel.transpose(3, 2, 0, 1))


def test_an_optimizer_keras_never_built_starts_afresh_without_a_warning(tmp_path):
    """A model Keras compiled but did not train stores its optimiser's update count and
    learning rate only: nothing to carry, and nothing to warn about."""
    with zipfile.ZipFile(fixture("keras_compiled.keras")) as archive:
        weights = io.BytesIO(archive.read("model.weights.h5"))
    with h5py.File(weights, "a") as h5file:
        variables = h5file["optimizer/vars"]
        kept = sorted(variables, key=int)[:2]
        for name in sorted(variables, key=int)[2:]:
            del variables[name]
        variables["0"][...] = 0
    assert kept == ["0", "1"]
    path = rewritten(tmp_path, {"model.weights.h5": weights.getvalue()}, name="fresh.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = dlcore.load(path)
    assert model.optimizer.name == "adam" and model.optimizer.iterations == 0


def test_a_damaged_metadata_member_is_only_left_out_of_what_info_shows(tmp_path):
    """metadata.json says who wrote the archive and when: nothing a load needs."""
    path = rewritten(tmp_path, {"metadata.json": b"{\"keras_version\": "})
    x, data = archive_data("compiled")
    np.testing.assert_allclose(dlcore.load(path).predict(x), data["y"], atol=1e-5)
    shown = dlcore.io.describe(path)
    assert "keras_version" not in shown and "Keras 3 model archive" in shown


def test_dlcore_info_and_convert_take_archives(tmp_path):
    from click.testing import CliRunner

    from dlcore.cli import main
    runner = CliRunner()
    result = runner.invoke(main, ["info", fixture("keras_compiled.keras")])
    assert result.exit_code == 0, result.output
    assert "Keras 3 model archive" in result.output and "conv (Conv2D)" in result.output
    assert "layers/conv2d/vars/0  (3, 3, 1, 3) float32" in result.output
    imported, exported = str(tmp_path / "imported.h5"), str(tmp_path / "exported.keras")
    result = runner.invoke(main, ["convert", fixture("keras_compiled.keras"), imported,
                                  "--to", "dlcore"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["convert", imported, exported, "--to", "keras"])
    assert result.exit_code == 0, result.output
    assert zipfile.is_zipfile(exported)
    x, data = archive_data("compiled")
    np.testing.assert_allclose(dlcore.load(exported).predict(x), data["y"], atol=1e-5)
    result = runner.invoke(main, ["convert", imported, str(tmp_path / "x.keras"),
                                  "--to", "dlcore"])
    assert result.exit_code == 2 and "a .keras file is a Keras 3 archive" in result.output
    assert not os.path.exists(tmp_path / "x.keras")
