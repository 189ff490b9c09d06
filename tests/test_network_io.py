"""Saving and loading whole networks in the HDF5 model file (docs/hdf5-format.md).

Oracle: the network itself: a loaded copy must predict the same numbers and, trained further,
follow the same trajectory as the original bit for bit."""
import json

import h5py
import numpy as np
import pytest

import dlcore
from dlcore.layers import Dense, Flatten, ImageAugmentation


@pytest.fixture(params=["reference", "cpu"])
def trained(tmp_path, request):
    rs = np.random.default_rng(0)
    x = rs.random((40, 1, 28, 28), dtype=np.float32)
    y = rs.integers(0, 10, 40)
    model = dlcore.models.lenet5(backend=request.param, dropout=0.3, seed=5,
                                 augment={"max_shift": 1, "horizontal_flip": True})
    model.compile("cross_entropy", dlcore.optimizers.SGD(0.01, momentum=0.9), ["accuracy"])
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    path = tmp_path / "model.h5"
    dlcore.save(model, path)
    return model, path, x, y


def test_loaded_network_predicts_identically(trained):
    model, path, x, _ = trained
    np.testing.assert_array_equal(dlcore.load(path).predict(x), model.predict(x))


def test_a_network_with_a_shift_as_large_as_its_images_loads_and_predicts(tmp_path):
    """Oracle: the same network before saving. A network saved (by a dlcore before the shift
    was refused) with max_shift=28 on 28x28 images could not be loaded at all: its weights
    were lost; fit now says why it does not train it, in one line."""
    x = np.random.default_rng(0).random((4, 1, 28, 28), dtype=np.float32)
    model = dlcore.Sequential([ImageAugmentation(28), Flatten(), Dense(3)],
                              input_shape=(1, 28, 28), backend="reference")
    model.compile(optimizer="sgd", loss="mse")
    dlcore.save(model, tmp_path / "shifted.h5")
    loaded = dlcore.load(tmp_path / "shifted.h5")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    with pytest.raises(ValueError, match="max_shift=28 can move a 28x28 image") as error:
        loaded.fit(x, np.zeros((4, 3), np.float32), epochs=1, verbose=0)
    assert "\n" not in str(error.value)


def test_loaded_network_continues_training_identically(trained):
    model, path, x, y = trained
    loaded = dlcore.load(path)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    loaded.fit(x, y, epochs=1, batch_size=16, verbose=0)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert loaded.history["loss"] == model.history["loss"]


def test_file_names_weights_kernel_and_bias_with_a_keras_like_index(trained):
    model, path, _, _ = trained
    with h5py.File(path, "r") as f:
        names = json.loads(f["layers"].attrs["layer_names"])
        assert names == [layer.name for layer in model.layers]
        assert json.loads(f["layers/c1"].attrs["weight_names"]) == ["kernel", "bias"]
        assert f["layers/c1/kernel"].shape == (6, 1, 5, 5)
        assert names[0] == "image_augmentation" and names[1] == "c1"
        assert f["layers/c5/kernel"].shape == (400, 120)
        assert json.loads(f["layers/s2"].attrs["weight_names"]) == []
        assert f["training/optimizer/slots/c1/kernel/velocity"].shape == (6, 1, 5, 5)
        assert f.attrs["model_class"] == "Sequential"


def test_architecture_is_stored_as_json(trained):
    _, path, _, _ = trained
    with h5py.File(path, "r") as f:
        config = json.loads(f.attrs["hyperparameters"])
    classes = [entry["class_name"] for entry in config["layers"]]
    assert classes[:3] == ["ImageAugmentation", "Conv2D", "MaxPool2D"]
    assert config["compile"]["optimizer"]["config"]["momentum"] == 0.9


def test_flat_dense_network_round_trips(tmp_path):
    """What a DBN's fine-tuned network looks like: Dense layers on flat rows."""
    rs = np.random.default_rng(1)
    W = rs.standard_normal((784, 20)).astype(np.float32) * 0.01
    model = dlcore.Sequential([Dense(20, activation="sigmoid", kernel_initializer=W),
                               Dense(10, activation="softmax")], input_shape=(784,),
                              backend="reference")
    np.testing.assert_array_equal(model.layers[0].get_weights()[0], W)
    dlcore.save(model, tmp_path / "flat.h5")
    x = rs.random((5, 784), dtype=np.float32)
    np.testing.assert_array_equal(dlcore.load(tmp_path / "flat.h5").predict(x), model.predict(x))


def test_a_file_with_a_missing_kernel_is_refused_naming_it(trained, tmp_path):
    _, path, _, _ = trained
    with h5py.File(path, "a") as f:
        del f["layers/c3/kernel"]
    with pytest.raises(dlcore.io.ModelFileError, match="layers/c3/kernel"):
        dlcore.load(path)


def test_a_mis_shaped_kernel_is_refused_naming_the_shapes(trained):
    _, path, _, _ = trained
    with h5py.File(path, "a") as f:
        del f["layers/output/kernel"]
        f["layers/output/kernel"] = np.zeros((84, 9), dtype=np.float32)
    with pytest.raises(dlcore.io.ModelFileError, match=r"\(84, 9\).*\(84, 10\)"):
        dlcore.load(path)


def test_set_weights_checks_every_shape_first():
    model = dlcore.models.mlp(input_shape=(4,), hidden=(3,), n_classes=2, backend="reference")
    weights = model.get_weights()
    bad = [w.copy() for w in weights]
    bad[-1] = np.zeros(5)
    with pytest.raises(ValueError, match="expected"):
        model.set_weights(bad)
    for a, b in zip(model.get_weights(), weights):
        np.testing.assert_array_equal(a, b)


@pytest.mark.filterwarnings("error")   # no ComplexWarning: complex weights are refused
@pytest.mark.parametrize("make_bad, error, said", [
    (lambda w: w + 1j, ValueError, r"kernel holds complex numbers; weights are real: give its "
                                   r"real part \(.real\)"),
    (lambda w: np.full(w.shape, "a"), TypeError, r"kernel must hold real numbers, got dtype "
                                                 r"<U1"),
    (lambda w: w.astype(object), TypeError, r"kernel must hold real numbers, got dtype object")],
    ids=["complex", "strings", "objects"])
def test_set_weights_refuses_arrays_of_no_real_numbers_naming_the_layer_and_array(
        make_bad, error, said):
    model = dlcore.models.mlp(input_shape=(4,), hidden=(3,), n_classes=2, backend="reference")
    weights = model.get_weights()
    last = model.layers[-1]
    bad = weights[:-2] + [make_bad(weights[-2]), weights[-1]]   # the last layer's kernel
    with pytest.raises(error, match=f"^layer {last.name!r}: {said}"):
        model.set_weights(bad)
    for a, b in zip(model.get_weights(), weights):   # checked before any array is assigned
        np.testing.assert_array_equal(a, b)
    with pytest.raises(error, match=f"^layer {last.name!r}: {said}"):
        last.set_weights(bad[-2:])


def test_networks_pickle_through_their_file_state():
    # issue 10: networks pickle (was: refused); more in tests/test_pickling.py
    import pickle
    model = dlcore.models.mlp(input_shape=(4,), hidden=(3,))
    twin = pickle.loads(pickle.dumps(model))
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_array_equal(twin.predict(x), model.predict(x))
