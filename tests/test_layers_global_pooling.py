"""Global pooling (Keras's GlobalAveragePooling2D and GlobalMaxPooling2D): each map pooled whole,
(n, C, H, W) -> (n, C).

Oracles: NumPy's mean and max over the map's axes, and their gradients worked by hand (the
mean shares dL/dy equally among the H W pixels, the max sends it to its pixel); the cpu and cuda
(simulator) kernels against the reference; finite differences; archives written by Keras
(tests/fixtures/keras_global_*.keras, JAX) predict as Keras did.
"""
import numpy as np
import pytest

import dlcore
from conftest import requires_cuda
from dlcore.layers import (
    Conv2D,
    Dense,
    GlobalAveragePooling2D,
    GlobalAvgPool2D,
    GlobalMaxPool2D,
    GlobalMaxPooling2D,
)
from test_io_keras import fixture
from test_layers_kernels import assert_backends_agree, images

KINDS = [GlobalAvgPool2D, GlobalMaxPool2D]


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_the_pools_are_the_mean_and_the_max_of_each_map_and_their_gradients(
        backend, keepdims):
    x = images(3, 4, 5, 6)
    grad = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    for kind, value in ((GlobalAvgPool2D, x.mean(axis=(2, 3))),
                        (GlobalMaxPool2D, x.max(axis=(2, 3)))):
        layer = kind(keepdims=keepdims).build((4, 5, 6), backend=backend)
        y = layer.forward(x)
        assert y.shape == ((3, 4, 1, 1) if keepdims else (3, 4))
        np.testing.assert_allclose(y.reshape(3, 4), value, rtol=1e-5, atol=1e-6)
        grad_x = layer.backward(grad.reshape(y.shape))
        if kind is GlobalAvgPool2D:
            expected = np.broadcast_to(grad[:, :, None, None] / 30, x.shape)
        else:
            expected = (x == x.max(axis=(2, 3), keepdims=True)) * grad[:, :, None, None]
        np.testing.assert_allclose(grad_x, expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("keepdims", [False, True])
def test_cpu_global_pools_follow_the_reference(kind, keepdims):
    assert_backends_agree(lambda: kind(keepdims=keepdims), images(3, 2, 7, 5))


@requires_cuda
@pytest.mark.parametrize("kind", KINDS)
def test_cuda_global_pools_follow_the_reference(kind):
    assert_backends_agree(lambda: kind(), images(2, 2, 4, 3), backend="cuda")


@pytest.mark.parametrize("kind", KINDS)
def test_a_net_with_a_global_pool_passes_the_gradient_check(kind):
    model = dlcore.Sequential([Conv2D(3, 3, activation="tanh", input_shape=(2, 5, 6)), kind(),
                               Dense(2, activation="softmax")], backend="reference")
    model.compile(optimizer="sgd")
    errors = dlcore.gradcheck(model, images(4, 2, 5, 6), [0, 1, 1, 0])
    assert max(errors.values()) < 1e-6


def test_keras_names_files_and_refusals(tmp_path):
    assert GlobalAveragePooling2D is GlobalAvgPool2D and GlobalMaxPooling2D is GlobalMaxPool2D
    model = dlcore.Sequential([Conv2D(2, 3, input_shape=(1, 6, 6)),
                               GlobalMaxPool2D(keepdims=True, name="pool")])
    dlcore.save(model, tmp_path / "m.h5")
    loaded = dlcore.load(tmp_path / "m.h5")
    assert loaded.get_layer("pool").keepdims and loaded.output_shape == (2, 1, 1)
    x = images(2, 1, 6, 6)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    with pytest.raises(ValueError, match=r"pools images \(C, H, W\); got per-sample shape "
                                         r"\(5,\)"):
        dlcore.Sequential([Dense(5, input_shape=(3,)), GlobalAvgPool2D()])
    with pytest.raises(ValueError, match="channels first"):
        GlobalAvgPool2D(data_format="channels_last")
    with pytest.raises(ValueError, match="keepdims must be True or False"):
        GlobalMaxPool2D(keepdims="yes")


@pytest.mark.parametrize("name, classes", [("global_avg", ["Conv2D", "GlobalAvgPool2D",
                                                           "Dense"]),
                                           ("global_max", ["Conv2D", "GlobalMaxPool2D",
                                                           "Flatten", "Dense"])])
def test_keras_global_pools_import_and_go_back(tmp_path, name, classes):
    saved = np.load(fixture(f"keras_{name}.keras.npz"))
    x = saved["x"].transpose(0, 3, 1, 2)
    model = dlcore.load(fixture(f"keras_{name}.keras"))
    assert [type(layer).__name__ for layer in model.layers] == classes
    np.testing.assert_allclose(model.predict(x), saved["y"], atol=1e-6)
    model.save(tmp_path / "back.keras")
    np.testing.assert_allclose(dlcore.load(tmp_path / "back.keras").predict(x), saved["y"],
                               atol=1e-6)
