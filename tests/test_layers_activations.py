"""The activations past relu, sigmoid and tanh (elu, selu, softplus, softsign, relu6,
leaky_relu) and the LeakyReLU and ELU layers: Keras's names and definitions.

Oracles: each function written out in float64 from its paper or Keras's documentation
(independently of dlcore's reference); central finite differences for the derivatives, which
dlcore takes from the outputs y; the cpu and cuda (simulator) kernels against the reference;
an archive written by Keras 3.15.1 (JAX, tests/fixtures/keras_activations.keras: every one of
them, as ``activation=`` strings and as layers) predicts as Keras did and, trained one more
step in dlcore, lands where Keras's own next step did.
"""
import json
import zipfile

import numpy as np
import pytest

import dlcore
from conftest import requires_cuda
from dlcore.layers import ELU, Activation, Conv2D, Dense, LeakyReLU
from dlcore.layers import reference as ref
from test_io_keras import fixture, with_layer_config
from test_layers_kernels import assert_backends_agree, images

NEW = ["elu", "selu", "softplus", "softsign", "relu6", "leaky_relu"]
# Klambauer et al. 2017, eq. (14): alpha_01 and lambda_01
SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805


def definition(name, z):
    """The textbook formula, in float64 (softplus straight from log(1 + e^z))."""
    z = z.astype(np.float64)
    with np.errstate(over="ignore"):
        return {"elu": np.where(z > 0, z, np.exp(z) - 1),
                "selu": SELU_SCALE * np.where(z > 0, z, SELU_ALPHA * (np.exp(z) - 1)),
                "softplus": np.log(1 + np.exp(z)),
                "softsign": z / (1 + np.abs(z)),
                "relu6": np.minimum(np.maximum(z, 0), 6),
                "leaky_relu": np.where(z > 0, z, 0.2 * z)}[name]


@pytest.mark.parametrize("name", NEW)
def test_each_activation_is_its_definition(name):
    z = np.linspace(-8, 8, 161)
    np.testing.assert_allclose(ref.activation_forward(name, z), definition(name, z),
                               rtol=1e-12, atol=1e-12)


def test_the_activations_stay_finite_far_out():
    z = np.array([-200.0, -60.0, 60.0, 200.0], np.float32)
    for name in NEW:
        assert np.isfinite(ref.activation_forward(name, z)).all(), name
    np.testing.assert_allclose(ref.activation_forward("softplus", z), [0, np.exp(-60.0), 60, 200],
                               rtol=1e-3)
    np.testing.assert_allclose(ref.activation_forward("elu", z)[:2], [-1, -1])


@pytest.mark.parametrize("name", NEW)
def test_each_derivative_from_the_outputs_matches_finite_differences(name):
    """dL/dz from y = f(z) and dL/dy against (f(z + h) - f(z - h)) / 2h dL/dy, away from the
    kinks (z = 0, and 6 for relu6)."""
    z = np.linspace(-5, 8, 131)
    z = z[(np.abs(z) > 1e-3) & (np.abs(z - 6) > 1e-3)]
    grad_y = np.random.default_rng(1).standard_normal(z.shape)
    h = 1e-6
    numeric = (definition(name, z + h) - definition(name, z - h)) / (2 * h) * grad_y
    y = ref.activation_forward(name, z)
    np.testing.assert_allclose(ref.activation_backward(name, y, grad_y), numeric,
                               rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", NEW)
def test_a_net_with_each_activation_passes_the_gradient_check(name):
    model = dlcore.Sequential([Dense(5, activation=name, input_shape=(4,)), Activation(name),
                               Dense(3, activation="softmax")], backend="reference", seed=2)
    model.compile("cross_entropy", "sgd")
    rs = np.random.default_rng(2)
    errors = dlcore.gradcheck(model, rs.standard_normal((4, 4)) * 2, rs.integers(0, 3, 4),
                              verbose=False)
    assert errors and max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("name", NEW)
def test_cpu_dense_and_convolutions_with_each_activation_follow_the_reference(name):
    """A Dense layer, a stride-1 convolution (which these take down the per-sample path) and a
    strided one, each forward and backward."""
    x = images(5, 13) * 3
    assert_backends_agree(lambda: Dense(7, activation=name), x)
    assert_backends_agree(lambda: Conv2D(3, 3, padding=1, activation=name),
                          images(3, 2, 7, 7) * 3)
    assert_backends_agree(lambda: Conv2D(3, 3, stride=2, activation=name),
                          images(3, 2, 7, 7) * 3)
    assert_backends_agree(lambda: Activation(name), images(3, 2, 4, 5) * 3)


@pytest.mark.parametrize("name", NEW)
def test_float64_layers_keep_float64_precision_on_the_cpu(name):
    x = np.random.default_rng(3).random((6, 50)) * 6 - 3
    outputs = [np.asarray(Dense(40, activation=name).build((50,), backend=backend,
                                                           dtype=np.float64, seed=4).forward(x))
               for backend in ("cpu", "reference")]
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-12, atol=1e-14)


@requires_cuda
@pytest.mark.parametrize("name", ["selu", "softplus", "leaky_relu"])
def test_cuda_dense_with_these_activations_follows_the_reference(name):
    assert_backends_agree(lambda: Dense(7, activation=name), images(5, 13) * 3,
                          backend="cuda")


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_leaky_relu_layer_takes_its_own_slope(backend):
    x = images(3, 2, 4, 5)
    layer = LeakyReLU(0.05).build((2, 4, 5), backend=backend)
    np.testing.assert_allclose(layer.forward(x), np.where(x > 0, x, 0.05 * x), rtol=1e-6)
    grad = images(3, 2, 4, 5, seed=1)
    np.testing.assert_allclose(layer.backward(grad), np.where(x > 0, grad, 0.05 * grad),
                               rtol=1e-6)
    assert LeakyReLU().negative_slope == 0.3           # Keras's layer default
    assert_backends_agree(lambda: LeakyReLU(0.25), images(4, 9))
    zero = LeakyReLU(0.0).build((9,), backend=backend)  # the slope 0 is ReLU
    np.testing.assert_array_equal(zero.forward(images(4, 9)), np.maximum(images(4, 9), 0))


@requires_cuda
def test_cuda_leaky_relu_layer_follows_the_reference():
    assert_backends_agree(lambda: LeakyReLU(0.1), images(2, 1, 3, 4), backend="cuda")


def test_bad_slopes_and_names_are_refused_in_one_line():
    for slope in (-0.1, "0.2", float("nan")):
        with pytest.raises(ValueError, match="negative_slope must be"):
            LeakyReLU(slope)
    with pytest.raises(ValueError, match="activation must be one of .*leaky_relu"):
        Dense(3, activation="glu")


def test_layers_and_activations_keep_through_dlcore_files(tmp_path):
    model = dlcore.Sequential([Dense(6, activation="selu", input_shape=(4,)), LeakyReLU(0.15),
                               ELU(), Dense(3, activation="softplus")], seed=3)
    x = images(5, 4)
    dlcore.save(model, tmp_path / "m.h5")               # dlcore's own format
    loaded = dlcore.load(tmp_path / "m.h5")
    assert loaded.layers[1].negative_slope == 0.15
    assert [layer.activation for layer in (loaded.layers[0], loaded.layers[2])] == ["selu", "elu"]
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_a_keras_model_with_these_activations_trains_on_in_dlcore_as_in_keras(tmp_path):
    saved = np.load(fixture("keras_activations.keras.npz"))
    x, labels = saved["x"].transpose(0, 3, 1, 2), saved["labels"]
    model = dlcore.load(fixture("keras_activations.keras"))
    assert [getattr(layer, "activation", None) for layer in model.layers
            if isinstance(layer, (Dense, Conv2D, Activation))] == \
        ["elu", "leaky_relu", "selu", "softplus", "elu", "softsign", "linear", "relu6", "relu6",
         "softmax"]
    assert model.get_layer("leaky").negative_slope == pytest.approx(0.1)
    np.testing.assert_allclose(model.predict(x), saved["y"], atol=1e-6)
    model.save(tmp_path / "back.keras")            # and back, before training on
    np.testing.assert_allclose(dlcore.load(tmp_path / "back.keras").predict(x), saved["y"],
                               atol=1e-6)
    with zipfile.ZipFile(tmp_path / "back.keras") as archive:
        layers = json.loads(archive.read("config.json"))["config"]["layers"]
    leaky = [layer for layer in layers if layer["class_name"] == "LeakyReLU"]
    assert leaky and leaky[0]["config"]["negative_slope"] == pytest.approx(0.1)
    model.train_on_batch(x[:8], labels[:8])
    assert np.abs(saved["y_next"] - saved["y"]).max() > 0.01
    np.testing.assert_allclose(model.predict(x), saved["y_next"], atol=1e-6)


def test_keras_relu_variants_import_as_their_match(tmp_path):
    """Keras's ReLU with a negative slope alone is a LeakyReLU; a Keras 2 LeakyReLU's
    ``alpha`` is its slope."""
    model = dlcore.load(with_layer_config(tmp_path, "keras_activations.keras", "capped",
                                          max_value=None, negative_slope=0.3))
    assert model.get_layer("capped").negative_slope == pytest.approx(0.3)
    model = dlcore.load(with_layer_config(tmp_path, "keras_activations.keras", "leaky",
                                          negative_slope=None, alpha=0.4))
    assert model.get_layer("leaky").negative_slope == pytest.approx(0.4)


@pytest.mark.parametrize("name, changes, message", [
    ("elu", {"alpha": 0.5}, "an ELU with alpha 0.5 is not imported"),
    ("capped", {"threshold": 1.0}, "a ReLU with a threshold"),
    ("capped", {"max_value": 4.0}, "a ReLU with a threshold, a max_value other than 6"),
    ("leaky", {"negative_slope": -1.0}, "negative_slope must be in"),
    ("selu", {"activation": "glu"}, "activation 'glu' is not one of"),
])
def test_keras_activations_dlcore_has_not_are_refused_in_one_line(tmp_path, name, changes,
                                                                  message):
    with pytest.raises(dlcore.ModelFileError) as error:
        dlcore.load(with_layer_config(tmp_path, "keras_activations.keras", name, **changes))
    assert message in str(error.value)
    assert "\n" not in str(error.value)
