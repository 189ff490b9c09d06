"""Keras 3's smooth activations gelu, silu (swish), mish and hard_silu (hard_swish), whose
derivative needs the pre-activation z, and hard_sigmoid and exponential, whose derivative comes
from the output y as the others' does.

Oracles: each function written out in float64 from its paper or Keras's documentation
(independently of dlcore's reference: GELU through ``math.erf``); central finite differences
for the derivatives; the gradient check of whole networks; the cpu and cuda (simulator) kernels
against the reference; an archive written by Keras 3.15.1 (JAX,
tests/fixtures/keras_smooth_activations.keras: every one of them, as ``activation=`` strings,
two through Keras's aliases, and an Activation layer) predicts as Keras did and, trained one
more step in dlcore, lands where Keras's own next step did.
"""
import json
import math
import zipfile

import numpy as np
import pytest

import dlcore
from conftest import requires_cuda
from dlcore.layers import Activation, Conv2D, Conv2DTranspose, Dense
from dlcore.layers import reference as ref
from test_io_keras import fixture
from test_layers_kernels import assert_backends_agree, images

NEEDS_Z = ["gelu", "silu", "mish", "hard_silu"]
FROM_Y = ["hard_sigmoid", "exponential"]
SMOOTH = NEEDS_Z + FROM_Y


def definition(name, z):
    """The textbook formula in float64: GELU x Phi(x) (Hendrycks and Gimpel 2016), SiLU
    x sigm(x), Mish x tanh(ln(1 + e^x)) (Misra 2019), Keras 3's hard sigmoid relu6(x + 3) / 6
    and hard SiLU x times it, exp."""
    z = z.astype(np.float64)
    phi = np.array([(1 + math.erf(value / math.sqrt(2))) / 2 for value in z.ravel()])
    hard = np.minimum(np.maximum(z + 3, 0), 6) / 6
    return {"gelu": z * phi.reshape(z.shape),
            "silu": z / (1 + np.exp(-z)),
            "mish": z * np.tanh(np.log(1 + np.exp(z))),
            "hard_silu": z * hard,
            "hard_sigmoid": hard,
            "exponential": np.exp(z)}[name]


def derivative(name, z, grad_y):
    """dL/dz as dlcore computes it: from z for NEEDS_Z, from y = f(z) for the others."""
    if name in NEEDS_Z:
        return ref.activation_input_backward(name, z, grad_y)
    return ref.activation_backward(name, ref.activation_forward(name, z), grad_y)


@pytest.mark.parametrize("name", SMOOTH)
def test_each_activation_is_its_definition(name):
    z = np.linspace(-8, 8, 161)
    np.testing.assert_allclose(ref.activation_forward(name, z), definition(name, z),
                               rtol=1e-12, atol=1e-12)


def test_keras_3_values_at_a_few_points():
    """Values Keras 3.15.1 printed (float32: its -3 Phi(-3) is 5e-7 off, 1 + erf cancelling)
    for x = -3, -1, 0, 1, 3."""
    z = np.array([-3.0, -1.0, 0.0, 1.0, 3.0])
    np.testing.assert_allclose(ref.activation_forward("gelu", z),
                               [-4.0502250e-03, -1.5865526e-01, 0, 8.4134471e-01, 2.9959497],
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ref.activation_forward("hard_sigmoid", z),
                               [0, 1 / 3, 0.5, 2 / 3, 1], rtol=1e-7)


@pytest.mark.parametrize("name", SMOOTH)
def test_each_derivative_matches_finite_differences(name):
    """Away from the kinks of the hard ones (z = -3 and 3)."""
    z = np.linspace(-6, 6, 241)
    z = z[np.abs(np.abs(z) - 3) > 1e-3]
    grad_y = np.random.default_rng(1).standard_normal(z.shape)
    h = 1e-6
    numeric = (definition(name, z + h) - definition(name, z - h)) / (2 * h) * grad_y
    np.testing.assert_allclose(derivative(name, z, grad_y), numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", NEEDS_Z)
def test_these_derivatives_need_z(name):
    """Two pre-activations with the same output but different slopes: y alone cannot tell
    them apart (which is why the layers keep z for these)."""
    z = np.linspace(-6, 0, 60001)
    y = ref.activation_forward(name, z)
    low = np.argmin(y)                       # each has one minimum below zero
    half = y[low] / 2
    left, right = z[np.argmin(np.abs(y[:low] - half))], \
        z[low + np.argmin(np.abs(y[low:] - half))]
    np.testing.assert_allclose(ref.activation_forward(name, np.array([left, right])),
                               [half, half], rtol=1e-3)
    slopes = derivative(name, np.array([left, right]), np.ones(2))
    assert slopes[0] < 0 < slopes[1]


@pytest.mark.parametrize("name", SMOOTH)
def test_a_net_with_each_activation_passes_the_gradient_check(name):
    model = dlcore.Sequential([Conv2D(2, 2, activation=name, input_shape=(1, 3, 3)),
                               dlcore.layers.Flatten(), Dense(5, activation=name),
                               Activation(name), Dense(3, activation="softmax")],
                              backend="reference", seed=2)
    model.compile("cross_entropy", "sgd")
    rs = np.random.default_rng(2)
    scale = 0.3 if name == "exponential" else 1   # three exponentials deep: keep them small
    errors = dlcore.gradcheck(model, rs.standard_normal((4, 1, 3, 3)) * scale,
                              rs.integers(0, 3, 4), verbose=False)
    assert errors and max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("name", SMOOTH)
def test_cpu_layers_with_each_activation_follow_the_reference(name):
    """Dense, a stride-1 and a strided convolution, a transposed convolution and the
    Activation layer, each forward and backward."""
    scale = 1.5 if name == "exponential" else 3
    assert_backends_agree(lambda: Dense(7, activation=name), images(5, 13) * scale)
    for options in ({"padding": 1}, {"stride": 2}):
        assert_backends_agree(lambda options=options: Conv2D(3, 3, activation=name, **options),
                              images(3, 2, 7, 7) * scale)
    assert_backends_agree(lambda: Conv2DTranspose(2, 3, strides=2, activation=name),
                          images(2, 2, 4, 4) * scale)
    assert_backends_agree(lambda: Activation(name), images(3, 2, 4, 5) * scale)


@pytest.mark.parametrize("name", SMOOTH)
def test_float64_layers_keep_float64_precision_on_the_cpu(name):
    x = np.random.default_rng(3).random((6, 50)) * 2 - 1
    layers = [Dense(40, activation=name).build((50,), backend=backend, dtype=np.float64, seed=4)
              for backend in ("cpu", "reference")]
    outputs = [np.asarray(layer.forward(x)) for layer in layers]
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-12, atol=1e-14)
    grad_y = np.random.default_rng(5).standard_normal(outputs[0].shape)
    grads = [np.asarray(layer.backward(grad_y)) for layer in layers]
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-11, atol=1e-13)


@requires_cuda
@pytest.mark.parametrize("name", ["gelu", "mish", "hard_sigmoid"])
def test_cuda_layers_with_these_activations_follow_the_reference(name):
    assert_backends_agree(lambda: Dense(7, activation=name), images(5, 13) * 3,
                          backend="cuda")
    assert_backends_agree(lambda: Activation(name), images(2, 3, 4) * 3, backend="cuda")


def test_keras_aliases_name_the_same_functions():
    assert Dense(3, activation="swish").activation == "silu"
    assert Activation("Hard_Swish").activation == "hard_silu"
    assert Dense(3, activation="swish").get_config()["activation"] == "silu"


def test_networks_with_them_keep_through_dlcore_files(tmp_path):
    model = dlcore.Sequential([Dense(6, activation="gelu", input_shape=(4,)),
                               Activation("mish"), Dense(3, activation="hard_sigmoid")], seed=3)
    x = images(5, 4)
    dlcore.save(model, tmp_path / "m.h5")
    loaded = dlcore.load(tmp_path / "m.h5")
    assert [layer.activation for layer in loaded.layers] == ["gelu", "mish", "hard_sigmoid"]
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_a_keras_model_with_them_trains_on_in_dlcore_as_in_keras(tmp_path):
    saved = np.load(fixture("keras_smooth_activations.keras.npz"))
    x, labels = saved["x"].transpose(0, 3, 1, 2), saved["labels"]
    model = dlcore.load(fixture("keras_smooth_activations.keras"))
    assert [getattr(layer, "activation", None) for layer in model.layers
            if isinstance(layer, (Dense, Conv2D, Activation))] == \
        ["gelu", "silu", "mish", "hard_silu", "hard_sigmoid", "linear", "gelu", "exponential",
         "softmax"]
    np.testing.assert_allclose(model.predict(x), saved["y"], atol=1e-6)
    model.save(tmp_path / "back.keras")
    np.testing.assert_allclose(dlcore.load(tmp_path / "back.keras").predict(x), saved["y"],
                               atol=1e-6)
    with zipfile.ZipFile(tmp_path / "back.keras") as archive:
        layers = json.loads(archive.read("config.json"))["config"]["layers"]
    assert [layer["config"].get("activation") for layer in layers
            if layer["class_name"] == "Conv2D"] == ["gelu", "silu"]
    model.train_on_batch(x[:8], labels[:8])
    assert np.abs(saved["y_next"] - saved["y"]).max() > 0.005
    np.testing.assert_allclose(model.predict(x), saved["y_next"], atol=1e-6)
