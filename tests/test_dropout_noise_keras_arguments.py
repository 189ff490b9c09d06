"""Keras's arguments of Dropout(rate, noise_shape=None, seed=None) and GaussianNoise(stddev,
seed=None) (dlcore/layers/core.py, dlcore/layers/augmentation.py).

Oracles: Philox's draws written out (dlcore.layers.reference.dropout_mask,
dlcore.backend.rng.normal) with the layer's own seed as the key, at the network's update
number as the step."""
import numpy as np
import pytest

import dlcore
from dlcore.backend import rng
from dlcore.layers import Dense, Dropout, GaussianNoise
from dlcore.layers import reference as ref

ONES = np.ones((6, 10), dtype=np.float32)


def network(seed, noisy, position=0, backend="cpu"):
    layers = [Dense(10), Dense(10)]
    layers.insert(position, noisy)
    return dlcore.Sequential(layers, input_shape=(10,), backend=backend, seed=seed)


def drawn(model, step):
    layer = next(layer for layer in model.layers if layer.stochastic)
    return np.array(layer.backend.to_numpy(layer.forward(ONES, training=True, step=step)))


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_a_seeded_dropout_draws_the_masks_of_its_seed_wherever_it_sits(backend):
    first = network(0, Dropout(0.4, seed=11), 0, backend)
    second = network(5, Dropout(0.4, seed=11), 2, backend)
    for step in (0, 3):
        expected = ref.dropout_mask(6, 10, 0.4, seed=11, step=step)
        np.testing.assert_allclose(drawn(first, step), expected, rtol=1e-6)
        np.testing.assert_allclose(drawn(second, step), expected, rtol=1e-6)
    # without a seed, the masks follow the model's key for the layer: another model, others
    assert not np.array_equal(drawn(network(0, Dropout(0.4), 0, backend), 0),
                              drawn(network(5, Dropout(0.4), 2, backend), 0))


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_a_seeded_gaussian_noise_draws_the_noise_of_its_seed(backend):
    model = network(3, GaussianNoise(0.25, seed=2**40 + 9), 1, backend)
    expected = 1 + 0.25 * rng.normal(6, 10, 2**40 + 9, rng.STREAM_NOISE, 4)
    np.testing.assert_allclose(drawn(model, 4), expected, rtol=1e-5)


def test_the_seed_is_kept_in_the_config_and_the_file(tmp_path):
    model = network(0, Dropout(0.3, None, 21), 1)      # Keras's order: rate, noise_shape, seed
    model.add(GaussianNoise(0.1, seed=4))
    assert model.layers[1].get_config()["seed"] == 21
    assert model.layers[-1].get_config()["seed"] == 4
    assert "seed" not in Dropout(0.3).get_config()        # unseeded files stay as they were
    dlcore.save(model, tmp_path / "m.h5")
    loaded = dlcore.load(tmp_path / "m.h5")
    assert (loaded.layers[1].seed, loaded.layers[-1].seed) == (21, 4)
    np.testing.assert_array_equal(drawn(loaded, 7), drawn(model, 7))
    np.testing.assert_array_equal(drawn(loaded, 7), ref.dropout_mask(6, 10, 0.3, 21, 7))


@pytest.mark.parametrize("make, message", [
    (lambda: Dropout(0.5, noise_shape=(None, 1, 8)), "noise_shape must be None"),
    (lambda: Dropout(0.5, seed=-1), "seed must be >= 0"),
    (lambda: Dropout(0.5, seed=2**64), "seed must be below 2\\*\\*64"),
    (lambda: GaussianNoise(0.1, seed="1"), "seed must be an integer"),
])
def test_what_dlcore_does_not_take_is_a_one_line_error(make, message):
    with pytest.raises(ValueError, match=message) as caught:
        make()
    assert "\n" not in str(caught.value)


def test_noise_shape_none_is_taken():
    assert Dropout(0.5, noise_shape=None).get_config()["rate"] == 0.5


def test_a_noise_level_of_zero_is_taken_as_keras_takes_it(tmp_path):
    # a sweep of the lecture's noise levels starting at 0 (Keras's GaussianNoise(0) adds
    # nothing) was refused: "stddev must be in (0.0, inf)"
    model = network(0, GaussianNoise(0.0), 1, backend="reference")
    model.compile(loss="mse", optimizer="sgd")
    np.testing.assert_array_equal(drawn(model, 3), ONES)     # training: the identity
    assert model.layers[1].get_config()["stddev"] == 0.0
    dlcore.save(model, tmp_path / "m.h5")
    assert dlcore.load(tmp_path / "m.h5").layers[1].stddev == 0.0
    with pytest.raises(ValueError, match="stddev must be in \\[0.0, inf\\)"):
        GaussianNoise(-0.1)


@pytest.mark.parametrize("suffix", ["keras", "h5"])
def test_a_noise_level_keras_refuses_is_not_written_to_a_keras_file(tmp_path, suffix):
    """Keras's GaussianNoise takes stddev in [0, 1] and refuses the whole file otherwise
    ("could not be deserialized"): dlcore wrote GaussianNoise(2.0) (noise on 0-255 pixels) to
    Keras files that Keras could not open. Now one line before anything is written."""
    model = network(0, GaussianNoise(2.0), 1, backend="reference")
    with pytest.raises(ValueError, match=r"^layer 'gaussian_noise' \(GaussianNoise\) has "
                                         r"stddev 2\.0.*Keras takes \[0, 1\].*dlcore\.save"):
        model.save(tmp_path / f"m.{suffix}")
    assert not list(tmp_path.iterdir())
    network(0, GaussianNoise(1.0), 1, backend="reference").save(tmp_path / f"m.{suffix}")
    assert dlcore.load(tmp_path / f"m.{suffix}").layers[1].stddev == 1.0
