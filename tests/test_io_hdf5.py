"""Tests of dlcore.io: HDF5 model files.

The models here are tiny dummy classes registered under test-only names ("IoTest..."); each
implements the model <-> file protocol the way the real models do. The oracle of every round
trip is the object that was saved.
"""
from __future__ import annotations

import datetime
import itertools
import json
import math
import os
import pathlib
import string

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

import dlcore
from dlcore import io as dio
from dlcore.io import guarded, hdf5


# --------------------------------------------------------------------------------------------
# Dummy models implementing the protocol
# --------------------------------------------------------------------------------------------
@dio.register_model
class IoTestDense:
    """An RBM-like model: public arrays at the top, training state in nested groups."""

    def __init__(self, n_visible=4, n_hidden=3, learning_rate=0.1, seed=0):
        self.n_visible, self.n_hidden = n_visible, n_hidden
        self.learning_rate, self.seed = learning_rate, seed
        rng = np.random.default_rng(seed)
        self.W = rng.normal(size=(n_visible, n_hidden)).astype(np.float32)
        self.visible_bias = np.zeros(n_visible, np.float32)
        self.hidden_bias = rng.normal(size=n_hidden).astype(np.float32)
        self.velocity_W = np.full((n_visible, n_hidden), 0.5, np.float32)
        self.chain = rng.random((2, n_hidden)) < 0.5
        self.rng_step, self.epochs_done, self.use_pcd, self.sampler = 12, 3, True, "gibbs"
        self.history = {"reconstruction_error": [0.5, 0.25, 0.125],
                        "seconds": [1.0, 1.5]}

    def get_config(self):
        return {"n_visible": self.n_visible, "n_hidden": self.n_hidden,
                "learning_rate": self.learning_rate, "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def get_state(self):
        return {
            "W": self.W,
            "visible_bias": self.visible_bias,
            "hidden_bias": self.hidden_bias,
            "training": {
                "velocity_W": self.velocity_W,
                "sampler": {"persistent_chain": self.chain, "kind": self.sampler},
                "rng_step": self.rng_step,
                "epochs_done": self.epochs_done,
                "use_pcd": self.use_pcd,
            },
        }

    def set_state(self, state):
        shape = (self.n_visible, self.n_hidden)
        W = dio.require_array(state, "W", shape)
        visible_bias = dio.require_array(state, "visible_bias", (self.n_visible,))
        hidden_bias = dio.require_array(state, "hidden_bias", (self.n_hidden,))
        velocity_W = dio.require_array(state, "training/velocity_W", shape)
        chain = dio.require_array(state, "training/sampler/persistent_chain",
                                  (None, self.n_hidden), kind="b")
        training = state["training"]  # a KeyError here is wrapped by load
        rng_step, epochs_done = int(training["rng_step"]), int(training["epochs_done"])
        self.W, self.visible_bias, self.hidden_bias = W, visible_bias, hidden_bias
        self.velocity_W, self.chain = velocity_W, chain
        self.rng_step, self.epochs_done = rng_step, epochs_done
        self.use_pcd, self.sampler = training["use_pcd"], training["sampler"]["kind"]


@dio.register_model
class IoTestBag:
    """Stores whatever state it is given: the subject of the property-based round trips.

    No from_config: load builds it with cls(**config).
    """

    def __init__(self, label="bag"):
        self.label = label
        self.state = {}

    def get_config(self):
        return {"label": self.label}

    def get_state(self):
        return self.state

    def set_state(self, state):
        self.state = state


class IoTestUnregistered(IoTestBag):
    pass


@dio.register_model
class IoTestExploding(IoTestBag):
    def get_state(self):
        raise RuntimeError("boom")


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "model.h5"
    dio.save(IoTestDense(), path)
    return path


def bag_with(state, history=None, label="bag"):
    bag = IoTestBag(label)
    bag.state = state
    if history is not None:
        bag.history = history
    return bag


def assert_states_equal(actual, expected, where=""):
    assert isinstance(actual, dict), where
    assert set(actual) == set(expected), where
    for key, value in expected.items():
        got = actual[key]
        if isinstance(value, dict):
            assert_states_equal(got, value, f"{where}/{key}")
        elif isinstance(value, np.ndarray):
            assert isinstance(got, np.ndarray), f"{where}/{key}"
            assert got.dtype == value.dtype and got.shape == value.shape, f"{where}/{key}"
            np.testing.assert_array_equal(got, value)
        else:
            assert type(got) is _python_type(value), f"{where}/{key}: {type(got)}"
            assert got == value or (math.isnan(got) and math.isnan(value)), f"{where}/{key}"


def _python_type(value):
    """The Python type a scalar of the state should come back as."""
    if isinstance(value, (bool, np.bool_)):
        return bool
    if isinstance(value, (int, np.integer)):
        return int
    if isinstance(value, (float, np.floating)):
        return float
    return str


# --------------------------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------------------------
def test_round_trip_gives_identical_arrays_config_and_history(model_file):
    original = IoTestDense()
    loaded = dio.load(model_file)
    assert type(loaded) is IoTestDense
    assert loaded.get_config() == original.get_config()
    assert_states_equal(loaded.get_state(), original.get_state())
    assert loaded.history == original.history
    assert all(type(v) is float for series in loaded.history.values() for v in series)


def test_float32_arrays_stay_float32(model_file):
    loaded = dio.load(model_file)
    assert loaded.W.dtype == np.float32 and loaded.velocity_W.dtype == np.float32


def test_path_may_be_a_string_or_a_path_object(tmp_path):
    model = IoTestDense(seed=5)
    dio.save(model, str(tmp_path / "a.h5"))
    dio.save(model, pathlib.Path(tmp_path / "b.h5"))
    np.testing.assert_array_equal(dio.load(tmp_path / "a.h5").W, model.W)
    np.testing.assert_array_equal(dio.load(str(tmp_path / "b.h5")).W, model.W)


def test_saving_over_an_existing_file_replaces_it(model_file):
    dio.save(IoTestDense(seed=9), model_file)
    np.testing.assert_array_equal(dio.load(model_file).W, IoTestDense(seed=9).W)


def test_class_without_from_config_is_built_with_keyword_arguments(tmp_path):
    dio.save(bag_with({"x": np.arange(3)}, label="kw"), tmp_path / "bag.h5")
    loaded = dio.load(tmp_path / "bag.h5")
    assert loaded.label == "kw"
    np.testing.assert_array_equal(loaded.state["x"], np.arange(3))


def test_history_of_different_lengths_with_gaps_round_trips(tmp_path):
    history = {"loss": [3, 2.5, None, 1], "accuracy": [], "seconds": [np.float32(0.5)]}
    dio.save(bag_with({}, history), tmp_path / "h.h5")
    loaded = dio.load(tmp_path / "h.h5").history
    assert loaded["loss"][:2] == [3.0, 2.5] and math.isnan(loaded["loss"][2])
    assert loaded["loss"][3] == 1.0 and loaded["accuracy"] == [] and loaded["seconds"] == [0.5]


def test_model_without_history_saves_and_loads_none(tmp_path):
    dio.save(bag_with({}), tmp_path / "nh.h5")
    assert not hasattr(dio.load(tmp_path / "nh.h5"), "history")
    with h5py.File(tmp_path / "nh.h5", "r") as h5file:
        assert "history" not in h5file


def test_scalars_come_back_as_python_scalars_of_the_same_kind(tmp_path):
    state = {"flag": np.bool_(False), "count": np.int32(-4), "big": 2**64 - 1,
             "rate": np.float32(0.25), "name": "héllo ∑", "nested": {"t": True, "x": 1.5}}
    dio.save(bag_with(state), tmp_path / "s.h5")
    loaded = dio.load(tmp_path / "s.h5").state
    assert loaded == {"flag": False, "count": -4, "big": 2**64 - 1, "rate": 0.25,
                      "name": "héllo ∑", "nested": {"t": True, "x": 1.5}}
    assert [type(loaded[k]) for k in ("flag", "count", "big", "rate", "name")] == \
        [bool, int, int, float, str]


def test_numpy_scalars_in_the_config_are_saved_as_json_numbers(tmp_path):
    dio.save(bag_with({}, label=np.str_("np")), tmp_path / "c.h5")
    model = IoTestDense(learning_rate=np.float32(0.5), n_hidden=np.int64(3))
    dio.save(model, tmp_path / "d.h5")
    assert dio.load(tmp_path / "d.h5").get_config()["learning_rate"] == 0.5


# The random nested states of the property tests: names HDF5 accepts, leaves of every kind.
names = st.text(string.ascii_letters + string.digits + "_-. ", min_size=1, max_size=6).filter(
    lambda name: name != ".")
arrays = hnp.arrays(
    dtype=st.sampled_from([np.float32, np.float64, np.float16, np.int8, np.int32, np.int64,
                           np.uint8, np.uint64, np.bool_]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
scalars = st.one_of(
    st.booleans(), st.integers(-2**63, 2**64 - 1), st.floats(allow_nan=True),
    st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
            max_size=10))
states = st.dictionaries(
    names.filter(lambda name: name not in hdf5.RESERVED_ROOT_NAMES),
    st.recursive(st.one_of(arrays, scalars),
                 lambda children: st.dictionaries(names, children, max_size=3), max_leaves=8),
    max_size=5)
histories = st.dictionaries(names, st.lists(st.floats(allow_nan=False), max_size=5), max_size=3)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(state=states, history=histories)
def test_random_nested_states_round_trip(tmp_path, state, history):
    path = tmp_path / "random.h5"
    dio.save(bag_with(state, history), path)
    loaded = dio.load(path)
    assert_states_equal(loaded.state, state)
    assert loaded.history == {name: [float(v) for v in values] for name, values in history.items()}


# --------------------------------------------------------------------------------------------
# The file as other tools see it
# --------------------------------------------------------------------------------------------
def test_file_opens_with_plain_h5py_and_shows_the_documented_layout(model_file):
    model = IoTestDense()
    with h5py.File(model_file, "r") as h5file:
        attrs = h5file.attrs
        assert attrs["format"] == "dlcore-model"
        assert attrs["format_version"] == 1 and attrs["format_version"].dtype.kind == "i"
        assert attrs["dlcore_version"] == dlcore.__version__
        assert attrs["model_class"] == "IoTestDense"
        assert attrs["hyperparameters"] == json.dumps(model.get_config(), sort_keys=True)
        created = datetime.datetime.fromisoformat(attrs["created"])
        assert created.utcoffset() == datetime.timedelta(0)
        assert abs(datetime.datetime.now(datetime.timezone.utc) - created).total_seconds() < 60
        assert list(h5file) == ["W", "visible_bias", "hidden_bias", "training", "history"]
        assert h5file["W"].shape == (4, 3) and h5file["W"].dtype == np.float32
        np.testing.assert_array_equal(h5file["W"][()], model.W)
        training = h5file["training"]
        assert training.attrs["rng_step"] == 12 and training.attrs["use_pcd"]
        assert training["sampler"].attrs["kind"] == "gibbs"
        assert training["sampler/persistent_chain"].dtype == np.bool_
        assert h5file["history/reconstruction_error"].dtype == np.float64
        assert h5file["history/seconds"].shape == (2,)


def test_strings_are_variable_length_utf8(model_file):
    with h5py.File(model_file, "r") as h5file:
        for owner, name in [(h5file, a) for a in hdf5.ROOT_ATTRIBUTES if a != "format_version"] \
                + [(h5file["training/sampler"], "kind")]:
            info = h5py.check_string_dtype(owner.attrs.get_id(name).dtype)
            assert info is not None and info.encoding == "utf-8" and info.length is None, name


def test_new_file_gets_ordinary_permissions(tmp_path):
    reference = tmp_path / "reference"
    reference.write_bytes(b"")
    dio.save(IoTestDense(), tmp_path / "m.h5")
    assert (tmp_path / "m.h5").stat().st_mode == reference.stat().st_mode


# --------------------------------------------------------------------------------------------
# Atomic writes
# --------------------------------------------------------------------------------------------
class SaveAbort(BaseException):
    """Stands in for KeyboardInterrupt: a BaseException that is not an Exception."""


def assert_only_the_model_file_remains(model_file):
    assert sorted(os.listdir(model_file.parent)) == [model_file.name]
    loaded = dio.load(model_file)
    np.testing.assert_array_equal(loaded.W, IoTestDense().W)


def test_get_state_that_raises_leaves_previous_file_intact(model_file):
    with pytest.raises(RuntimeError, match="boom"):
        dio.save(IoTestExploding(), model_file)
    assert_only_the_model_file_remains(model_file)


def test_bad_value_after_datasets_were_written_leaves_previous_file_intact(model_file):
    bag = bag_with({"ok": np.ones(3), "bad": [1, 2]})
    with pytest.raises(TypeError, match="'bad'.*np.asarray"):
        dio.save(bag, model_file)  # fails with a dataset already in the temporary file
    assert_only_the_model_file_remains(model_file)


def test_interrupt_in_the_middle_of_writing_removes_the_temporary(model_file, monkeypatch):
    original = h5py.Group.create_dataset
    calls = []

    def interrupted(self, *args, **kwargs):
        calls.append(args[0])
        if len(calls) == 2:
            raise SaveAbort()
        return original(self, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", interrupted)
    with pytest.raises(SaveAbort):
        dio.save(IoTestDense(seed=1), model_file)
    monkeypatch.undo()
    assert calls == ["W", "visible_bias"]
    assert_only_the_model_file_remains(model_file)


def test_failed_rename_removes_the_temporary(model_file, monkeypatch):
    def failing_replace(source, target):
        raise OSError("disk full")

    monkeypatch.setattr(hdf5.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        dio.save(IoTestDense(seed=1), model_file)
    monkeypatch.undo()
    assert_only_the_model_file_remains(model_file)


def test_saving_into_a_missing_directory_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist; create it first"):
        dio.save(IoTestDense(), tmp_path / "no" / "such" / "model.h5")
    assert os.listdir(tmp_path) == []


def test_saving_onto_a_directory_is_refused(tmp_path):
    with pytest.raises(IsADirectoryError):
        dio.save(IoTestDense(), tmp_path)


# --------------------------------------------------------------------------------------------
# Errors when saving
# --------------------------------------------------------------------------------------------
def test_unregistered_class_cannot_be_saved(tmp_path):
    with pytest.raises(TypeError, match="register_model"):
        dio.save(IoTestUnregistered(), tmp_path / "u.h5")


@pytest.mark.parametrize("thing", [np.zeros(3), {"W": np.zeros(3)}])
def test_saving_something_that_is_no_model_says_what_save_takes(tmp_path, thing):
    # "decorate it with @dlcore.io.register_model" is no help to someone saving an array
    with pytest.raises(TypeError, match="dlcore.save writes dlcore's models .* numpy.save"):
        dio.save(thing, tmp_path / "u.h5")
    assert not (tmp_path / "u.h5").exists()


@pytest.mark.parametrize("state, error, message", [
    ({"x": None}, TypeError, "'x' is NoneType.*leave the key out"),
    ({"g": {"y": object()}}, TypeError, "'g/y' is object"),
    ({"a/b": np.ones(1)}, ValueError, "not a valid HDF5 name"),
    ({"format": 2}, ValueError, "reserved top-level name"),
    ({"history": {}}, ValueError, "reserved top-level name"),
    ({"s": np.array(["text"])}, TypeError, "dtype <U4"),
    ({"c": np.ones(2, np.complex64)}, TypeError, "dtype complex64"),
    ({"huge": 2**64}, TypeError, "does not fit in 64 bits"),
    ({"nul": "a\x00b"}, ValueError, "NUL character"),
])
def test_state_without_an_hdf5_counterpart_is_refused_naming_the_key(tmp_path, state, error,
                                                                     message):
    with pytest.raises(error, match=message):
        dio.save(bag_with(state), tmp_path / "bad.h5")
    assert os.listdir(tmp_path) == []


def test_config_that_is_not_json_is_refused(tmp_path):
    with pytest.raises(TypeError, match="JSON"):
        dio.save(IoTestDense(learning_rate={1, 2}), tmp_path / "j.h5")
    with pytest.raises(TypeError, match="not valid JSON"):
        dio.save(IoTestDense(learning_rate=math.nan), tmp_path / "j.h5")


def test_registering_a_class_without_the_protocol_methods_is_refused():
    with pytest.raises(TypeError, match="lacks get_state, set_state"):
        @dio.register_model
        class IoTestIncomplete:
            def get_config(self):
                return {}


def test_registering_a_different_class_under_a_taken_name_is_refused(monkeypatch):
    monkeypatch.setattr(hdf5, "_MODEL_REGISTRY", dict(hdf5._MODEL_REGISTRY))
    with pytest.raises(ValueError, match="already registered"):
        @dio.register_model
        class IoTestBag:  # the name clash is the point
            get_config = get_state = set_state = lambda self: None
    # The same class registered again (importlib.reload, a notebook cell re-run) is fine.
    assert dio.register_model(IoTestDense) is IoTestDense
    assert dio.registered_models()["IoTestBag"].__module__ == __name__


# --------------------------------------------------------------------------------------------
# Errors when loading: one ModelFileError naming the file
# --------------------------------------------------------------------------------------------
def load_error(path) -> str:
    with pytest.raises(dio.ModelFileError) as caught:
        dio.load(path)
    assert str(path) in str(caught.value) and caught.value.path == str(path)
    return str(caught.value)


def test_model_file_error_is_a_value_error():
    assert issubclass(dio.ModelFileError, ValueError)


def test_missing_file(tmp_path):
    assert "does not exist" in load_error(tmp_path / "absent.h5")


def test_directory_instead_of_file(tmp_path):
    assert "is a directory" in load_error(tmp_path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX's")
def test_a_named_pipe_is_refused_before_it_is_opened(tmp_path):
    """tar keeps a FIFO when it unpacks a hand-in; opening one waits for a writer, so the load
    runs in a subprocess, whose timeout only keeps a regression from hanging the suite."""
    import subprocess
    import sys
    path = tmp_path / "model.h5"
    os.mkfifo(path)
    for code in ("import dlcore, sys; dlcore.load(sys.argv[1])",
                 "import dlcore, sys; dlcore.io.describe(sys.argv[1])"):
        completed = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                                   text=True, timeout=60, check=False)
        assert f"ModelFileError: {path} is a named pipe (FIFO), not a regular file, so it " \
            f"cannot be a model file" in completed.stderr


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="a POSIX device")
def test_a_device_is_refused_before_it_is_opened():
    assert "/dev/zero is a character device, not a regular file" in load_error("/dev/zero")


def test_text_file_is_not_hdf5(tmp_path):
    path = tmp_path / "notes.h5"
    path.write_text("W = [[1, 2], [3, 4]]\n")
    assert "not an HDF5 file" in load_error(path)


def test_png_file_is_not_hdf5(tmp_path):
    path = tmp_path / "picture.png"
    Image.new("L", (4, 4)).save(path)
    assert "not an HDF5 file" in load_error(path)


def test_empty_file_says_the_save_was_interrupted(tmp_path):
    path = tmp_path / "empty.h5"
    path.write_bytes(b"")
    assert "is empty" in load_error(path)


def test_hdf5_file_without_format_is_not_a_dlcore_model(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as h5file:
        h5file["W"] = np.ones((2, 2))
    assert "not a dlcore model file" in load_error(path)


def test_hdf5_file_with_another_format_is_not_a_dlcore_model(model_file):
    with h5py.File(model_file, "r+") as h5file:
        h5file.attrs["format"] = "keras"
    assert "not a dlcore model file" in load_error(model_file)


def test_newer_format_version_asks_to_upgrade(model_file):
    with h5py.File(model_file, "r+") as h5file:
        h5file.attrs["format_version"] = np.int64(hdf5.FORMAT_VERSION + 1)
    message = load_error(model_file)
    assert f"written by a newer dlcore (format {hdf5.FORMAT_VERSION + 1}" in message
    assert message.endswith("upgrade dlcore")


def test_invalid_format_version(model_file):
    with h5py.File(model_file, "r+") as h5file:
        h5file.attrs["format_version"] = "one"
    assert "invalid format_version" in load_error(model_file)


def test_truncated_file(model_file):
    data = model_file.read_bytes()
    model_file.write_bytes(data[: len(data) // 2])
    assert "truncated" in load_error(model_file)


@pytest.mark.parametrize("mode, locking", [("r", None), ("r+", None), ("r", True),
                                           ("r", "best-effort")])
def test_a_file_this_process_holds_open_with_h5py_loads(rbm_copy, mode, locking):
    """A notebook that inspected the file with h5py (the docs' recipe) and left the handle
    open: HDF5 refuses a second open of the file with other locking settings, and
    dlcore.load called the intact file "a damaged or truncated HDF5 file; save the model
    again"."""
    expected = dlcore.load(rbm_copy)
    handle = h5py.File(rbm_copy, mode, locking=locking)
    try:
        loaded = dlcore.load(rbm_copy)
        assert "BernoulliRBM" in dio.describe(rbm_copy)
        assert list(handle.attrs)   # the notebook's handle still reads
    finally:
        handle.close()
    np.testing.assert_array_equal(loaded.components_, expected.components_)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fraction=st.floats(0, 1, exclude_max=True))
def test_file_cut_anywhere_gives_a_model_file_error(tmp_path, fraction):
    path = tmp_path / "cut.h5"
    dio.save(IoTestDense(), path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    message = load_error(path)
    assert "truncated" in message or "is empty" in message


def test_hyperparameters_not_valid_json(model_file):
    with h5py.File(model_file, "r+") as h5file:
        h5file.attrs["hyperparameters"] = "{'n_visible': 4"
    assert "'hyperparameters' attribute is not valid JSON" in load_error(model_file)


def test_hyperparameters_not_a_json_object(model_file):
    with h5py.File(model_file, "r+") as h5file:
        h5file.attrs["hyperparameters"] = "[4, 3]"
    assert "should be a JSON object" in load_error(model_file)


def test_hyperparameters_the_class_rejects(model_file):
    with h5py.File(model_file, "r+") as h5file:
        h5file.attrs["hyperparameters"] = json.dumps({"n_visible": 4, "colour": "red"})
    assert "IoTestDense rejects the hyperparameters" in load_error(model_file)


def test_unknown_model_class(model_file):
    with h5py.File(model_file, "r+") as h5file:
        h5file.attrs["model_class"] = "IoTestNeverDefined"
    message = load_error(model_file)
    assert "unknown model class 'IoTestNeverDefined'" in message and "IoTestDense" in message


def test_missing_dataset_is_named(model_file):
    with h5py.File(model_file, "r+") as h5file:
        del h5file["training/velocity_W"]
    message = load_error(model_file)
    assert "dataset 'training/velocity_W' is missing (expected shape (4, 3))" in message


def test_mis_shaped_dataset_is_named_with_both_shapes(model_file):
    with h5py.File(model_file, "r+") as h5file:
        del h5file["hidden_bias"]
        h5file["hidden_bias"] = np.zeros(5, np.float32)
    assert "dataset 'hidden_bias' has shape (5,); expected (3,)" in load_error(model_file)


def test_missing_attribute_key_error_is_wrapped(model_file):
    with h5py.File(model_file, "r+") as h5file:
        del h5file["training"].attrs["rng_step"]
    assert "missing key 'rng_step'" in load_error(model_file)


def test_history_that_is_not_one_dimensional(model_file):
    with h5py.File(model_file, "r+") as h5file:
        h5file["history/matrix"] = np.ones((2, 2))
    assert "history/matrix should be a 1-D numeric dataset" in load_error(model_file)


# --------------------------------------------------------------------------------------------
# require_array
# --------------------------------------------------------------------------------------------
def test_require_array_returns_the_stored_array_and_accepts_wildcards():
    chain = np.zeros((7, 3), bool)
    assert dio.require_array({"t": {"chain": chain}}, "t/chain", (None, 3), kind="b") is chain


@pytest.mark.parametrize("state, message", [
    ({}, "dataset 'W' is missing"),
    ({"W": 3.0}, "should be a dataset of shape (2, any)"),
    ({"W": np.ones((2, 2, 1))}, "has shape (2, 2, 1); expected (2, any)"),
    ({"W": np.ones((2, 2), int)}, "has dtype int64; expected dtype kind 'f'"),
])
def test_require_array_names_the_problem(state, message):
    with pytest.raises(ValueError) as caught:
        dio.require_array(state, "W", (2, None))
    assert message in str(caught.value)


# --------------------------------------------------------------------------------------------
# describe
# --------------------------------------------------------------------------------------------
def test_describe_shows_attributes_hyperparameters_datasets_and_history(model_file):
    model = IoTestDense()
    text = dio.describe(model_file)
    lines = text.splitlines()
    assert lines[0].startswith(f"dlcore model file {model_file} (")
    assert "  format       dlcore-model, version 1" in lines
    assert "  model class  IoTestDense" in lines
    assert f"  written by   dlcore {dlcore.__version__}" in lines
    assert '    "learning_rate": 0.1,' in lines
    w_line = next(line for line in lines if line.strip().startswith("W "))
    assert "(4, 3)" in w_line and "float32" in w_line
    assert f"min {model.W.min():.4g}" in w_line and f"max {model.W.max():.4g}" in w_line
    assert f"mean {model.W.astype(np.float64).mean():.4g}" in w_line
    assert any("training/sampler/persistent_chain" in line and "(2, 3)" in line and "bool" in line
               for line in lines)
    assert "  training: rng_step = 12, epochs_done = 3, use_pcd = True" in lines
    assert "  training/sampler: kind = 'gibbs'" in lines
    assert "  reconstruction_error  3 epochs, last 0.125" in lines
    assert "  seconds               2 epochs, last 1.5" in lines


def test_describe_works_without_the_class_and_for_newer_files(model_file):
    with h5py.File(model_file, "r+") as h5file:
        h5file.attrs["model_class"] = "IoTestNeverDefined"
        h5file.attrs["format_version"] = np.int64(hdf5.FORMAT_VERSION + 1)
        h5file.attrs["hyperparameters"] = "{broken"
        h5file["big"] = np.full(hdf5.DESCRIBE_STATISTICS_MAX_ELEMENTS + 1, np.nan, np.float32)
        h5file["diverged"] = np.array([np.nan, 1.0, np.inf])
    text = dio.describe(model_file)
    assert "IoTestNeverDefined" in text and "upgrade dlcore" in text
    assert "(not valid JSON) '{broken'" in text
    assert any(line.rstrip().endswith("float32") and "big" in line for line in text.splitlines())
    assert "min 1  max 1  mean 1  (2 NaN/inf)" in text


def test_describe_refuses_files_that_are_not_model_files(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(dio.ModelFileError, match="not an HDF5 file"):
        dio.describe(path)
    with pytest.raises(dio.ModelFileError, match="does not exist"):
        dio.describe(tmp_path / "absent.h5")


# --------------------------------------------------------------------------------------------
# Damaged and hostile files of dlcore's own models: refused before anything is read or built
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rbm_file(tmp_path_factory):
    """A small saved BernoulliRBM (6 visible, 3 hidden units); tests change copies of it."""
    data = (np.random.default_rng(0).random((16, 6)) < 0.5).astype(np.float32)
    path = tmp_path_factory.mktemp("rbm") / "rbm.h5"
    dlcore.save(dlcore.BernoulliRBM(n_hidden=3, epochs=1, batch_size=8,
                                    backend="reference").fit(data), path)
    return path


@pytest.fixture
def rbm_copy(rbm_file, tmp_path):
    path = tmp_path / "copy.h5"
    path.write_bytes(rbm_file.read_bytes())
    return path


def test_model_file_error_is_exported_from_dlcore():
    assert dlcore.ModelFileError is dio.ModelFileError
    assert issubclass(dlcore.ModelFileError, ValueError)


def test_a_huge_declared_shape_is_refused_before_it_is_read(rbm_copy):
    # Chunked with no data written: the file stays small, the declared W is 12 TiB.
    with h5py.File(rbm_copy, "r+") as h5file:
        del h5file["W"]
        h5file.create_dataset("W", shape=(2**40, 3), maxshape=(None, 3), chunks=(1, 3),
                              dtype=np.float32)
    message = load_error(rbm_copy)
    # n_visible comes from W's declared shape; the other arrays, read next, disagree.
    assert "dataset 'visible_bias' has shape (6,); expected (1099511627776,)" in message
    assert "\n" not in message


def test_a_huge_dataset_of_a_class_without_a_layout_is_refused_by_the_file_size(model_file):
    with h5py.File(model_file, "r+") as h5file:
        h5file.create_dataset("extra", shape=(2**20, 2**20), chunks=(1, 16), dtype=np.float32)
    message = load_error(model_file)
    assert "dataset 'extra' declares shape (1048576, 1048576) of float32 (4.0 TiB)" in message
    assert "more than this" in message and "file can hold" in message


def test_a_declared_size_that_disagrees_with_the_hyperparameters_is_named(rbm_copy):
    with h5py.File(rbm_copy, "r+") as h5file:
        del h5file["hidden_bias"]
        h5file.create_dataset("hidden_bias", shape=(2**40,), chunks=(1024,), dtype=np.float32)
    assert "dataset 'hidden_bias' has shape (1099511627776,); expected (3,)" in \
        load_error(rbm_copy)


@pytest.mark.parametrize("nested", ["[" * 100_000 + "]" * 100_000,
                                    '{"n_hidden": ' + "[" * 5_000 + "]" * 5_000 + "}"])
def test_deeply_nested_json_is_refused_without_recursion(rbm_copy, nested):
    with h5py.File(rbm_copy, "r+") as h5file:
        h5file.attrs["hyperparameters"] = nested
    assert "nests arrays or objects more than 64 deep" in load_error(rbm_copy)


def test_json_over_the_size_limit_is_refused_before_parsing(rbm_copy):
    with h5py.File(rbm_copy, "r+") as h5file:
        h5file.attrs["hyperparameters"] = json.dumps({"n_hidden": 3, "pad": "x" * 5 * 2**20})
    assert "attribute 'hyperparameters' of '/' is a string of 5.0 MiB" in load_error(rbm_copy)


@pytest.mark.parametrize("value, expected", [
    ("3", "give 'n_hidden' = '3'; expected an integer in [1, "),
    (3.0, "give 'n_hidden' = 3.0; expected an integer"),
    (True, "give 'n_hidden' = True; expected an integer"),
    (2**40, "expected an integer in [1, 2147483647]"),
])
def test_hyperparameters_of_the_wrong_type_are_refused(rbm_copy, value, expected):
    with h5py.File(rbm_copy, "r+") as h5file:
        config = json.loads(h5file.attrs["hyperparameters"])
        config["n_hidden"] = value
        h5file.attrs["hyperparameters"] = json.dumps(config)
    assert expected in load_error(rbm_copy)


@pytest.mark.parametrize("name", ["os.system", "__import__", "builtins.eval",
                                  "subprocess.Popen"])
def test_hostile_class_names_are_looked_up_never_imported(rbm_copy, name, monkeypatch):
    imported = []
    real_import = __import__
    monkeypatch.setattr("builtins.__import__", lambda module, *args, **kwargs: (
        imported.append(module), real_import(module, *args, **kwargs))[1])
    with h5py.File(rbm_copy, "r+") as h5file:
        h5file.attrs["model_class"] = name
    assert f"unknown model class {name!r}" in load_error(rbm_copy)
    assert not {"os", "subprocess", "builtins"} & set(imported)


def test_a_hostile_backend_name_is_refused(rbm_copy):
    with h5py.File(rbm_copy, "r+") as h5file:
        config = json.loads(h5file.attrs["hyperparameters"])
        config["backend"] = "os.system"
        h5file.attrs["hyperparameters"] = json.dumps(config)
    assert "give 'backend' = 'os.system'; expected one of auto, cpu, cuda, reference" in \
        load_error(rbm_copy)


@pytest.mark.parametrize("link, kind", [(lambda f: h5py.SoftLink("/"), "SoftLink"),
                                        (lambda f: h5py.ExternalLink("/etc/passwd", "/"),
                                         "ExternalLink")])
def test_soft_and_external_links_are_refused(rbm_copy, link, kind):
    with h5py.File(rbm_copy, "r+") as h5file:
        h5file["training/loop"] = link(h5file)
    message = load_error(rbm_copy)
    assert f"'/training/loop' is a {kind}" in message and "dlcore never writes" in message


def _add_group_named(h5file, parent, name):
    h5py.h5g.create(h5file[parent].id, name)


def _add_series_named(h5file, parent, name):
    series = h5py.h5d.create(h5file[parent].id, name, h5py.h5t.py_create(np.dtype("f8")),
                             h5py.h5s.create_simple((1,)))
    series.write(h5py.h5s.ALL, h5py.h5s.ALL, np.array([1.0]))


@pytest.mark.parametrize("add, parent, name, shown", [
    (_add_group_named, "training", b"\xff\xfebad", "'training/\\xff\\xfebad'"),
    (_add_group_named, "/", b"Gew\xe4chte", "'Gew\\xe4chte'"),
    (_add_series_named, "history", b"err\xff", "'history/err\\xff'")])
def test_a_name_that_is_not_utf8_is_refused_in_one_line_by_load_and_describe(
        rbm_copy, add, parent, name, shown):
    """h5py gives such a name (a Latin-1 writer's, or h5py's low-level API's) back as bytes,
    which the path lookups of the traversal cannot find again."""
    with h5py.File(rbm_copy, "r+") as h5file:
        add(h5file, parent, name)
    for read in (dio.load, dio.describe):
        with pytest.raises(dio.ModelFileError) as caught:
            read(rbm_copy)
        message = str(caught.value)
        assert message.startswith(f"{rbm_copy}: {shown} is not a valid UTF-8 name, which "
                                  f"dlcore never writes; "), read.__name__
        assert "\n" not in message
        message.encode("utf-8")  # printable


def _add_attribute_named(owner, name, value):
    value = np.asarray(value)
    space = h5py.h5s.create(h5py.h5s.SCALAR) if value.ndim == 0 else \
        h5py.h5s.create_simple(value.shape)
    attribute = h5py.h5a.create(owner.id, name, h5py.h5t.py_create(value.dtype), space)
    attribute.write(np.ascontiguousarray(value))


@pytest.mark.parametrize("value", [np.float64(0.5), np.arange(10.0), np.complex128(1j)])
def test_an_attribute_whose_name_is_not_utf8_is_left_out_of_the_state_unread(tmp_path, value):
    """dlcore.save writes str names only, so an attribute h5py lists as bytes (added by a
    Latin-1 tool, e.g. a teacher's annotation) is no part of any state: the state read back is
    the one saved, whatever the attribute holds (an array or a complex number, which would be
    refused if it were read as a state's attribute)."""
    path = tmp_path / "bag.h5"
    state = {"weights": np.arange(3.0), "training": {"epochs_done": 2, "kind": "cd"}}
    dio.save(bag_with(state), path)
    with h5py.File(path, "r+") as h5file:
        for owner in (h5file, h5file["training"]):
            _add_attribute_named(owner, b"Gew\xe4chte", value)
    assert_states_equal(dio.load(path).state, state)


def test_a_model_with_an_attribute_whose_name_is_not_utf8_loads_as_saved(rbm_file, rbm_copy):
    with h5py.File(rbm_copy, "r+") as h5file:
        _add_attribute_named(h5file["training"], b"Pr\xfcfer", np.arange(4.0))
    saved, loaded = dio.load(rbm_file), dio.load(rbm_copy)
    np.testing.assert_array_equal(loaded.W, saved.W)
    assert loaded.get_params() == saved.get_params()


def test_describe_shows_an_attribute_name_that_is_not_utf8_escaped_and_ignored(rbm_copy):
    with h5py.File(rbm_copy, "r+") as h5file:
        _add_attribute_named(h5file["training"], b"Gew\xe4chte", np.float64(0.5))
    text = dio.describe(rbm_copy)
    [line] = [line for line in text.splitlines() if "Gew" in line]
    assert line.startswith("  training: ") and line.endswith(
        "Gew\\xe4chte (not a valid UTF-8 name: dlcore.load ignores it, unread)"), line
    text.encode("utf-8")  # printable


def test_a_hard_link_cycle_is_refused(rbm_copy):
    with h5py.File(rbm_copy, "r+") as h5file:
        h5file["training/cycle"] = h5file["/"]
    assert "(a link cycle?)" in load_error(rbm_copy)


def _add_compressed_zeros(h5file, path, length):
    series = h5file.create_dataset(path, shape=(length,), dtype="u1",
                                   chunks=(min(length, 2**20),), compression="gzip")
    series[:] = 0


def test_a_history_series_longer_than_the_epochs_the_file_records_is_refused_unread(
        rbm_copy, monkeypatch):
    """A compressed uint8 series of 4 million zeros takes a few kB; read into model.history it
    would be 4 million Python floats (128 MB, 32,000 times its size in the file). The RBM
    was trained for 1 epoch (training/epochs_done): a series holds one value per epoch."""
    with h5py.File(rbm_copy, "r+") as h5file:
        _add_compressed_zeros(h5file, "history/bomb", 2**22)
    read, read_array = [], guarded.ModelFileReader.read_array
    monkeypatch.setattr(guarded.ModelFileReader, "read_array",
                        lambda self, dataset, path, finite=True: (
                            read.append(path), read_array(self, dataset, path, finite))[1])
    message = load_error(rbm_copy)
    assert ("dataset 'history/bomb' holds 4,194,304 values; a history series holds one value "
            "per epoch, and the file records 1 epoch (attribute 'epochs_done' of "
            "'training')") in message
    assert "history/bomb" not in read
    monkeypatch.undo()
    assert "bomb                  (not read: dataset 'history/bomb' holds 4,194,304 values" \
        in dio.describe(rbm_copy)


def test_a_compressed_chunk_far_larger_than_its_dataset_is_refused_before_it_is_inflated(
        rbm_copy):
    """HDF5 inflates a whole chunk to read one number of it: W (6 x 3 floats) stored in one
    gzipped chunk declared 64 MiB (4096 x 4096) takes about 64 kB of file, within the budget
    of 1,000 times the file's size, and would make every load allocate and inflate 64 MiB
    (2 GiB from a 2 MB file)."""
    with h5py.File(rbm_copy, "r+") as h5file:
        weights = h5file["W"][()]
        del h5file["W"]
        h5file.create_dataset("W", data=weights, maxshape=(None, None), chunks=(4096, 4096),
                              compression="gzip")
    assert os.path.getsize(rbm_copy) * guarded.MAX_COMPRESSION_RATIO > 64 * 2**20
    message = load_error(rbm_copy)
    assert ("dataset 'W' of shape (6, 3) (72 bytes) is stored in compressed chunks of shape "
            "(4096, 4096) (64.0 MiB), which reading it would inflate whole") in message
    assert "\n" not in message
    [line] = [line for line in dio.describe(rbm_copy).splitlines() if line.startswith("  W ")]
    assert "(not read: dataset 'W' of shape (6, 3) (72 bytes) is stored in compressed chunks" \
        in line


def test_compressed_chunks_a_little_past_the_array_still_load(rbm_copy):
    """h5py's own chunking of a resizable array (a chunk of up to 1 MiB, beyond the array's
    edge) is no bomb."""
    with h5py.File(rbm_copy, "r+") as h5file:
        weights = h5file["W"][()]
        del h5file["W"]
        h5file.create_dataset("W", data=weights, maxshape=(None, None), chunks=(512, 512),
                              compression="gzip")
    np.testing.assert_array_equal(dlcore.load(rbm_copy).components_.T, weights)


def test_every_model_class_loads_its_history_within_the_epochs_it_records(tmp_path):
    """The bound holds for the saved files: a DBN's series of each RBM and of the up-down
    fine-tuning are bounded by the largest of its counters, an RBM trained on by
    partial_fit by its epochs_done."""
    X, (rbm, _, dbn, _, stacked) = _small_models()
    rbm.fit(X).partial_fit(X)
    dbn.set_params(up_down_epochs=2).fit(X)
    for model in (rbm, dbn, stacked.fit(X)):
        dlcore.save(model, tmp_path / "model.h5")
        np.testing.assert_equal(dlcore.load(tmp_path / "model.h5").history, model.history)


def test_a_history_series_of_another_class_is_bounded_by_an_absolute_limit(
        model_file, monkeypatch):
    """A class of the user's own has no counters dlcore knows: only the absolute limit."""
    monkeypatch.setattr(hdf5, "MAX_HISTORY_LENGTH", 1000, raising=False)
    with h5py.File(model_file, "r+") as h5file:
        _add_compressed_zeros(h5file, "history/long", 1001)
        h5file["history/fine"] = np.zeros(1000)
    assert "dataset 'history/long' holds 1,001 values; a history series holds one value per " \
        "epoch, and a model file holds at most 1,000 epochs" in load_error(model_file)
    with h5py.File(model_file, "r+") as h5file:
        del h5file["history/long"]
    assert len(dio.load(model_file).history["fine"]) == 1000


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_parameters_are_refused(rbm_copy, value):
    with h5py.File(rbm_copy, "r+") as h5file:
        h5file["W"][1, 2] = value
    message = load_error(rbm_copy)
    assert "dataset 'W' holds 1 NaN or infinite value" in message
    assert "lower learning rate" in message


@pytest.mark.parametrize("make, expected", [
    (lambda: np.zeros((6, 3), dtype=[("a", "f4"), ("b", "i4")]), "holds a compound type"),
    (lambda: np.full((6, 3), 1j, np.complex64), "holds complex numbers"),
    (lambda: np.ones((6, 3), np.int64), "has dtype int64; expected float"),
])
def test_mis_typed_datasets_are_refused(rbm_copy, make, expected):
    with h5py.File(rbm_copy, "r+") as h5file:
        del h5file["W"]
        h5file["W"] = make()
    assert f"dataset 'W' {expected}" in load_error(rbm_copy)


def test_a_string_dataset_is_refused(rbm_copy):
    with h5py.File(rbm_copy, "r+") as h5file:
        del h5file["W"]
        h5file.create_dataset("W", data=np.full((6, 3), "x", dtype=object),
                              dtype=h5py.string_dtype())
    assert "dataset 'W' holds strings" in load_error(rbm_copy)


def test_a_group_in_place_of_a_dataset_and_the_reverse(rbm_copy, tmp_path):
    with h5py.File(rbm_copy, "r+") as h5file:
        del h5file["hidden_bias"]
        h5file.create_group("hidden_bias")
    assert "'hidden_bias' should be a dataset of shape (3,); found a group" in \
        load_error(rbm_copy)


def test_an_attribute_of_another_type_is_refused(rbm_copy):
    with h5py.File(rbm_copy, "r+") as h5file:
        h5file["training"].attrs["n_updates"] = np.arange(5)
    assert "attribute 'n_updates' of 'training' is an array of shape (5,)" in \
        load_error(rbm_copy)


def test_a_mutated_network_config_names_its_problem(tmp_path):
    network = dlcore.models.mlp(input_shape=(4,), hidden=(3,), n_classes=2,
                                backend="reference")
    network.compile("cross_entropy", "sgd")
    path = tmp_path / "mlp.h5"
    dlcore.save(network, path)
    with h5py.File(path, "r+") as h5file:
        config = json.loads(h5file.attrs["hyperparameters"])
        config["layers"][0]["class_name"] = "os.system"
        h5file.attrs["hyperparameters"] = json.dumps(config)
    assert "name an unknown layer class 'os.system' for layer 0" in load_error(path)
    with h5py.File(path, "r+") as h5file:
        config["layers"][0]["class_name"] = "Dense"
        config["layers"][0]["config"]["units"] = 2**22  # a kernel of 64 MiB, not in the file
        h5file.attrs["hyperparameters"] = json.dumps(config)
    assert "dataset 'layers/hidden_1/kernel' has shape (4, 3); expected (4, 4194304)" in \
        load_error(path)


# --------------------------------------------------------------------------------------------
# The training record
# --------------------------------------------------------------------------------------------
RECORD = {"dataset": "mnist-5k", "classes": [1, 2, 3, 4, 5], "n_images": 2500,
          "command": "dlcore rbm train --digits 1-5", "fit": {"epochs": 1}}


def test_the_training_record_round_trips_as_a_json_root_attribute(tmp_path):
    model = IoTestDense()
    model.training_record_ = dict(RECORD)
    dio.save(model, tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "r") as h5file:
        assert json.loads(h5file.attrs["training_record"]) == RECORD
    assert dio.load(tmp_path / "m.h5").training_record_ == RECORD
    assert '"dataset": "mnist-5k"' in dio.describe(tmp_path / "m.h5")


def test_a_file_without_a_training_record_still_loads(model_file):
    with h5py.File(model_file, "r") as h5file:
        assert "training_record" not in h5file.attrs
    assert getattr(dio.load(model_file), "training_record_", None) is None


def test_a_training_record_that_is_not_json_is_refused_at_save(tmp_path):
    model = IoTestDense()
    model.training_record_ = {"when": datetime.datetime.now()}
    with pytest.raises(TypeError, match="training_record_ is not valid JSON"):
        dio.save(model, tmp_path / "m.h5")
    assert not (tmp_path / "m.h5").exists()


def test_a_hostile_training_record_is_refused(model_file):
    with h5py.File(model_file, "r+") as h5file:
        h5file.attrs["training_record"] = "[" * 10_000 + "]" * 10_000
    assert "the 'training_record' attribute is not valid JSON: it nests" in \
        load_error(model_file)


# --------------------------------------------------------------------------------------------
# describe and dlcore info go through the same guarded path
# --------------------------------------------------------------------------------------------
def test_describe_summarises_a_hostile_file_without_reading_its_huge_dataset(model_file):
    with h5py.File(model_file, "r+") as h5file:
        h5file.create_dataset("extra", shape=(2**20, 2**20), chunks=(1, 16), dtype=np.float32)
        h5file.attrs["hyperparameters"] = "[" * 100_000 + "]" * 100_000
    text = dio.describe(model_file)
    assert "(1048576, 1048576)" in text and "(not valid JSON)" in text


def test_describe_refuses_links_in_one_line(model_file):
    with h5py.File(model_file, "r+") as h5file:
        h5file["loop"] = h5py.SoftLink("/")
    with pytest.raises(dio.ModelFileError, match="'/loop' is a SoftLink") as caught:
        dio.describe(model_file)
    assert "\n" not in str(caught.value)


def test_dlcore_info_prints_a_refusal_as_one_line_and_exits_1(model_file):
    import subprocess
    import sys
    with h5py.File(model_file, "r+") as h5file:
        h5file["training/outside"] = h5py.ExternalLink("/etc/passwd", "/")
    completed = subprocess.run([sys.executable, "-m", "dlcore", "info", str(model_file)],
                               capture_output=True, text=True, timeout=300, check=False)
    assert completed.returncode == 1
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"dlcore: error: {model_file}: ")
    assert "ExternalLink" in lines[0]


def test_a_damaged_informational_attribute_does_not_stop_a_load(rbm_copy):
    with h5py.File(rbm_copy, "r+") as h5file:
        h5file.attrs["created"] = np.float64(np.nan)
        h5file.attrs["dlcore_version"] = np.arange(3)
    assert dlcore.load(rbm_copy).W.shape == (6, 3)
    assert "created      (unknown)" in dio.describe(rbm_copy)


def test_invalid_utf8_in_a_string_attribute_is_shown_with_replacement_characters(model_file):
    with h5py.File(model_file, "r+") as h5file:
        h5file.attrs.create("model_class", b"\xff\xfeBad", dtype=h5py.string_dtype("utf-8"))
    message = load_error(model_file)
    assert "unknown model class '\ufffd\ufffd\ufffd\ufffd\ufffd\ufffdBad'" in message
    message.encode("utf-8")  # printable: no lone surrogates


# --------------------------------------------------------------------------------------------
# Costs bounded by the file's own objects and bytes
# --------------------------------------------------------------------------------------------
def test_a_dag_of_hard_links_is_refused_quickly_by_load_and_describe(rbm_copy):
    """12 groups each holding 8 hard links to the next: 8**12 paths but only 12 objects."""
    with h5py.File(rbm_copy, "r+") as h5file:
        groups = [h5file.create_group(f"training/chain_{level}") for level in range(12)]
        for upper, lower in itertools.pairwise(groups):
            for link in range(8):
                upper[f"next_{link}"] = lower
    for read in (dio.load, dio.describe):
        started = datetime.datetime.now()
        with pytest.raises(dio.ModelFileError, match="is a second hard link to"):
            read(rbm_copy)
        assert (datetime.datetime.now() - started).total_seconds() < 2, read.__name__


def test_a_hard_link_cycle_is_refused_by_describe(rbm_copy):
    with h5py.File(rbm_copy, "r+") as h5file:
        h5file["training/cycle"] = h5file["/"]
    with pytest.raises(dio.ModelFileError, match=r"'training/cycle' is a hard link back to "
                                                 r"'/' \(a link cycle\?\)"):
        dio.describe(rbm_copy)


@pytest.mark.parametrize("model_class, n_visible", [
    (dlcore.GaussianBernoulliRBM, 5000), (dlcore.GaussianBernoulliRBM, 20000),
    (dlcore.BernoulliRBM, 20000)])
def test_lopsided_rbms_load_within_the_file_size_budget(tmp_path, model_class, n_visible):
    """One hidden unit: the file is little more than its visible-sized vectors, so a vector
    charged twice against the file size (once by the layout check) would not fit."""
    data = (np.random.default_rng(0).random((4, n_visible)) < 0.5).astype(np.float32)
    model = model_class(n_hidden=1, epochs=1, batch_size=4, backend="cpu").fit(data)
    path = tmp_path / "lopsided.h5"
    dlcore.save(model, path)
    loaded = dlcore.load(path)
    for name in ("W", "visible_bias", "hidden_bias"):
        assert np.array_equal(getattr(loaded, name), getattr(model, name))
    if model_class is dlcore.GaussianBernoulliRBM:
        assert np.array_equal(loaded.visible_sigma, model.visible_sigma)


@pytest.mark.parametrize("error", [KeyError("W"), RuntimeError("a bug")])
def test_a_bug_in_the_checks_is_not_reported_as_a_damaged_file(rbm_copy, monkeypatch, error):
    def broken_check(reader, config):
        raise error

    monkeypatch.setitem(hdf5.LAYOUT_CHECKS, "BernoulliRBM", broken_check)
    with pytest.raises(type(error)):
        dio.load(rbm_copy)


@pytest.mark.parametrize("layer, key, value", [
    (0, "padding", [10**7, 10**7]), (0, "stride", [2**63, 1]), (0, "kernel_size", [-1, 5]),
    (0, "filters", 10**12), (-1, "units", 2**63)])
def test_huge_layer_sizes_are_refused_before_the_layer_is_built(tmp_path, layer, key, value):
    network = dlcore.models.lenet5(backend="reference")
    network.compile("cross_entropy", "sgd")
    path = tmp_path / "lenet5.h5"
    dlcore.save(network, path)
    with h5py.File(path, "r+") as h5file:
        config = json.loads(h5file.attrs["hyperparameters"])
        weighted = [entry for entry in config["layers"] if key in entry["config"]]
        weighted[layer]["config"][key] = value
        h5file.attrs["hyperparameters"] = json.dumps(config)
    started = datetime.datetime.now()
    assert f"'{key}' of layer" in load_error(path)
    assert (datetime.datetime.now() - started).total_seconds() < 2


# -- model.save(path) of the layer-wise models -----------------------------------------------
def _small_models():
    rng = np.random.default_rng(0)
    X = (rng.random((40, 16)) < 0.3).astype(np.float32)
    settings = {"epochs": 1, "batch_size": 10, "backend": "reference"}
    return X, [
        dlcore.BernoulliRBM(n_hidden=5, **settings),
        dlcore.GaussianBernoulliRBM(n_hidden=5, **settings),
        dlcore.DBN(layers=[16, 6, 4], **settings),
        dlcore.Autoencoder(n_hidden=5, **settings),
        dlcore.StackedAutoencoder(layers=[16, 6, 4], **settings)]


@pytest.mark.parametrize("index", range(5), ids=["BernoulliRBM", "GaussianBernoulliRBM", "DBN",
                                                 "Autoencoder", "StackedAutoencoder"])
def test_a_layer_wise_model_saves_itself_and_loads_back_equal(tmp_path, index):
    X, models = _small_models()
    model = models[index].fit(X)
    model.save(tmp_path / "model.h5")
    loaded = dlcore.load(tmp_path / "model.h5")
    assert type(loaded) is type(model)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(loaded.transform(X), model.transform(X))
    dlcore.save(model, tmp_path / "same.h5")      # the same file as dlcore.save writes
    with h5py.File(tmp_path / "model.h5") as saved, h5py.File(tmp_path / "same.h5") as same:
        assert sorted(saved) == sorted(same)
        assert saved.attrs["model_class"] == same.attrs["model_class"]


def test_a_failed_model_save_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    import dlcore.io.hdf5 as hdf5
    X, models = _small_models()
    model = models[0].fit(X)
    model.save(tmp_path / "model.h5")
    before = (tmp_path / "model.h5").read_bytes()

    def interrupted(*arguments, **options):
        raise KeyboardInterrupt

    monkeypatch.setattr(hdf5, "_write_group", interrupted)
    with pytest.raises(KeyboardInterrupt):
        model.save(tmp_path / "model.h5")
    assert (tmp_path / "model.h5").read_bytes() == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model.h5"]


def test_a_state_of_more_groups_and_arrays_than_a_file_holds_is_refused_before_writing(
        tmp_path):
    # the reader stops at MAX_OBJECTS; such a file was written and could never be loaded
    bag = IoTestBag()
    bag.state = {"layers": {f"layer_{index}": {"w": np.zeros(1, np.float32)}
                            for index in range(guarded.MAX_OBJECTS // 2)}}
    path = tmp_path / "bag.h5"
    with pytest.raises(ValueError, match=f"cannot save this IoTestBag: its state has "
                                         f"{guarded.MAX_OBJECTS + 1} groups and arrays, more "
                                         f"than the {guarded.MAX_OBJECTS} a dlcore model file "
                                         f"holds"):
        dio.save(bag, path)
    assert not path.exists()


def test_describe_says_a_history_of_nan_only_was_not_measured(tmp_path):
    """`dlcore info` of a `homework task1` model (trained without X_valid) printed
    `free_energy_gap  1 epoch, last nan`, which read as a broken run."""
    X = (np.random.default_rng(0).random((20, 6)) < 0.5).astype(np.float32)
    rbm = dlcore.BernoulliRBM(n_hidden=3, epochs=2, batch_size=10, seed=0).fit(X)
    path = tmp_path / "model.h5"
    dlcore.save(rbm, path)
    lines = dio.describe(path).splitlines()
    assert "  free_energy_gap       2 epochs, not measured (nan)" in lines
    assert any(line.startswith("  reconstruction_error  2 epochs, last ") for line in lines)


def test_a_float64_network_reloads_in_float64(tmp_path):
    """A float64 network (a float64 Keras import, a model built in float64) saved in dlcore's
    format came back float32, its weights rounded, though the file holds float64 arrays; it now
    reloads in float64, its weights to the bit, and a float32 one stays float32."""
    import dlcore
    from dlcore.layers import Dense
    for dtype in (np.float64, np.float32):
        model = dlcore.Sequential([Dense(3, activation="tanh"), Dense(2)], input_shape=(4,),
                                  seed=0)
        model.build(dtype=dtype)
        model.set_weights([w + np.float64(1e-12) for w in model.get_weights()])
        path = tmp_path / f"{np.dtype(dtype).name}.h5"
        dlcore.save(model, path, format="dlcore")
        loaded = dlcore.load(path)
        assert loaded.dtype == dtype
        for got, want in zip(loaded.get_weights(), model.get_weights()):
            np.testing.assert_array_equal(got, want)
