"""Keras 2's ``decay=`` of an optimiser in a tf.keras 2 file (dlcore/io/keras_training.py).

tf.keras 2's optimisers divide their learning rate by 1 + decay t at update t (t = 0, 1, ...),
and their configs carry it (``"decay": 0.0`` by default). dlcore dropped it without a word, so a
fine-tuned model stepped at the undecayed rate; it is Keras's InverseTimeDecay of one step now
(dlcore.optimizers.InverseTimeDecay). Oracle: a twin whose plain rate is set by hand to
lr / (1 + decay t) before each of its updates.
"""
import json

import h5py
import numpy as np
import pytest

import dlcore
from dlcore.optimizers import SGD, InverseTimeDecay

X = np.random.default_rng(0).random((8, 3)).astype(np.float32)
Y = np.random.default_rng(1).random((8, 2)).astype(np.float32)


def network():
    return dlcore.Sequential([dlcore.layers.Dense(2)], input_shape=(3,), backend="reference",
                             seed=6)


def tf_keras_2_file(tmp_path, optimizer_config):
    """A Keras HDF5 file of :func:`network` compiled with tf.keras 2's ``optimizer_config``
    (``{"class_name", "config"}``, as tf.keras 2.10's ``get_config`` writes it)."""
    path = tmp_path / "tf_keras.h5"
    model = network()
    model.compile("mse", SGD(0.1))
    dlcore.save(model, path, format="keras")
    with h5py.File(path, "r+") as h5file:
        training = json.loads(h5file.attrs["training_config"])
        training = {key: value for key, value in training.items()
                    if not key.startswith("dlcore_")}   # Keras's forms, as tf.keras wrote it
        training["optimizer_config"] = optimizer_config
        h5file.attrs["training_config"] = json.dumps(training)
        h5file.attrs["keras_version"] = "2.10.0"
    return path


def sgd_config(**config):
    return {"class_name": "SGD", "config": {"name": "SGD", "learning_rate": 0.1,
                                            "momentum": 0.0, "nesterov": False, **config}}


def test_a_tf_keras_2_files_decay_slows_the_rate_as_tf_keras_did(tmp_path):
    model = dlcore.load(tf_keras_2_file(tmp_path, sgd_config(decay=0.5)))
    rate = model.optimizer.learning_rate
    assert isinstance(rate, InverseTimeDecay)
    twin = network()
    twin.compile("mse", SGD(0.1))
    for update in range(4):
        twin.optimizer.learning_rate = 0.1 / (1 + 0.5 * update)
        twin.fit(X, Y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    model.fit(X, Y, epochs=4, batch_size=8, shuffle=False, verbose=0)
    for mine, by_hand in zip(model.get_weights(), twin.get_weights()):
        np.testing.assert_allclose(mine, by_hand, rtol=1e-6)


def test_a_decay_of_zero_keeps_the_plain_rate(tmp_path):
    assert dlcore.load(tf_keras_2_file(tmp_path, sgd_config(decay=0.0))).optimizer \
        .learning_rate == 0.1


@pytest.mark.parametrize("config, reason", [
    (sgd_config(decay=-1), r"the optimizer SGD sets Keras 2's decay=-1, not a number >= 0"),
    (sgd_config(decay=0.5, learning_rate={
        "class_name": "ExponentialDecay", "config": {"initial_learning_rate": 0.1,
                                                     "decay_steps": 2, "decay_rate": 0.5}}),
     r"the optimizer SGD sets Keras 2's decay=0.5 on top of a learning-rate schedule, which "
     r"dlcore does not compose")])
def test_a_decay_dlcore_cannot_build_loads_the_model_uncompiled_saying_why(
        tmp_path, config, reason):
    with pytest.warns(UserWarning, match=reason) as told:
        model = dlcore.load(tf_keras_2_file(tmp_path, config))
    assert model.optimizer is None
    assert all("\n" not in str(warning.message) for warning in told)


def test_inverse_time_decay_is_kerass_formula():
    """eta_t = eta_0 / (1 + rate t / steps), by hand: 0.2 / (1 + 0.5 * 8 / 4) = 0.1."""
    assert InverseTimeDecay(0.2, 4, 0.5)(8) == pytest.approx(0.1)
    assert InverseTimeDecay(0.2, 4, 0.5, staircase=True)(6) == pytest.approx(0.2 / 1.5)
    assert InverseTimeDecay(0.2, 4, 0.5)(0) == 0.2
    with pytest.raises(ValueError, match="decay_steps"):
        InverseTimeDecay(0.2, 0, 0.5)


def test_an_inverse_time_decay_round_trips_through_dlcores_and_kerass_files(tmp_path):
    model = network()
    model.compile("mse", SGD(InverseTimeDecay(0.1, 3, 0.25, staircase=True)))
    dlcore.save(model, tmp_path / "model.h5")
    model.save(tmp_path / "model.keras")
    for name in ("model.h5", "model.keras"):
        rate = dlcore.load(tmp_path / name).optimizer.learning_rate
        assert isinstance(rate, InverseTimeDecay) and rate.get_config() == {
            "initial_learning_rate": 0.1, "decay_steps": 3, "decay_rate": 0.25,
            "staircase": True}


def test_a_keras_2_2_files_lr_and_decay_are_both_kept(tmp_path):
    """Keras before 2.3 wrote the rate as ``"lr"`` (``{"lr": 0.1, "decay": 0.5}``): it was
    read as Keras's default 0.01, so the decay divided a rate ten times too small."""
    config = sgd_config(decay=0.5)
    config["config"]["lr"] = config["config"].pop("learning_rate")
    rate = dlcore.load(tf_keras_2_file(tmp_path, config)).optimizer.learning_rate
    assert (rate.initial_learning_rate, rate.decay_rate) == (0.1, 0.5)
