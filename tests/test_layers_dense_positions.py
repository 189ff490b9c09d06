"""A Dense on sequences and maps (dlcore/layers/dense.py): as Keras's, the same kernel on each
step's or pixel's features, (n, T, in) -> (n, T, units) and (n, in, H, W) -> (n, units, H, W)
(dlcore's maps are channels first: Keras's last axis is their channels).

Oracles: the product written out with NumPy's einsum; Conv2D(units, 1) with the kernel's
transpose (the same per-pixel layer); the gradient by finite differences (gradcheck); the cpu
and cuda (simulator) kernels against the NumPy reference.
"""
import numpy as np
import pytest

import dlcore
from conftest import requires_cuda
from dlcore.layers import Conv2D, Dense, Flatten, GlobalAvgPool2D, Multiply

BACKENDS = ["reference", "cpu", pytest.param("cuda", marks=requires_cuda)]
SHAPES = {"sequence": (5, 3, 4), "maps": (3, 4, 2, 3), "pixel": (4, 6, 1, 1), "rows": (4, 5)}
#: an activation per shape: fused with the bias (relu), over the units (softmax, of each pixel
#: on maps), and one that runs as a pass of its own on the pre-activations (gelu)
ACTIVATIONS = {"sequence": "softmax", "maps": "gelu", "pixel": "relu", "rows": "softmax"}


def data(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def per_position(x, kernel, bias):
    """The oracle: kernel applied to the features of each step (last axis) or pixel (axis 1)."""
    if x.ndim == 4:
        return np.einsum("nchw,cu->nuhw", x, kernel) + bias[None, :, None, None]
    return x @ kernel + bias


def run(backend, x, grad_y, activation):
    units = grad_y.shape[1 if grad_y.ndim == 4 else -1]
    layer = Dense(units, activation=activation).build(x.shape[1:], backend=backend)
    layer.set_weights([data(*layer.params["kernel"].shape, seed=4), data(layer.units, seed=5)])
    be = layer.backend
    y = np.array(be.to_numpy(layer.forward(be.asarray(x), training=True)))
    grad_x = np.array(be.to_numpy(layer.backward(be.asarray(grad_y))))
    return y, grad_x, *(np.array(be.to_numpy(layer.grads[k])) for k in ("kernel", "bias"))


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_dense_applies_its_kernel_to_each_steps_or_pixels_features(shape):
    x = data(*shape)
    layer = Dense(7).build(shape[1:], backend="reference")
    kernel, bias = layer.get_weights()
    assert kernel.shape == (shape[1 if len(shape) == 4 else -1], 7)
    expected = per_position(x, kernel, bias)
    assert layer.compute_output_shape(shape[1:]) == expected.shape[1:]
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", SHAPES)
def test_kernels_follow_the_reference_on_steps_and_pixels(backend, kind):
    shape, activation = SHAPES[kind], ACTIVATIONS[kind]
    x = data(*shape)
    out_shape = (shape[0], 5, *shape[2:]) if len(shape) == 4 else shape[:-1] + (5,)
    grad_y = data(*out_shape, seed=1)
    expected = run("reference", x, grad_y, activation)
    for index, (got, want) in enumerate(zip(run(backend, x, grad_y, activation), expected)):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5, err_msg=f"result {index}")


def test_dense_on_maps_is_the_one_by_one_convolution_of_its_transposed_kernel():
    x = data(3, 4, 5, 6)
    dense = Dense(3, activation="tanh").build((4, 5, 6), backend="cpu")
    kernel, bias = dense.get_weights()
    conv = Conv2D(3, 1, activation="tanh", kernel_initializer=kernel.T.reshape(3, 4, 1, 1),
                  bias_initializer=bias).build((4, 5, 6), backend="cpu")
    np.testing.assert_allclose(dense.forward(x), conv.forward(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(3, 4, 3, 2), (3, 4, 5)], ids=["maps", "sequence"])
def test_gradients_of_a_dense_on_maps_and_sequences_match_finite_differences(shape):
    model = dlcore.Sequential([Dense(3, activation="tanh"), Dense(2, activation="sigmoid"),
                               Flatten(), Dense(2, activation="softmax")],
                              input_shape=shape[1:], backend="reference", seed=1)
    model.compile(loss="cross_entropy", optimizer="sgd")
    errors = dlcore.gradcheck(model, data(*shape).astype(np.float64), [0, 1, 1],
                              verbose=False)
    assert set(errors) >= {"dense/kernel", "dense/bias", "dense_1/kernel", "input"}
    assert max(errors.values()) < 1e-6, errors


def test_a_squeeze_and_excitation_block_trains_on_the_cpu():
    inputs = dlcore.Input((4, 5, 5))
    maps = Conv2D(4, 3, padding="same", activation="relu")(inputs)
    gate = GlobalAvgPool2D(keepdims=True)(maps)
    gate = Dense(2, activation="relu")(gate)
    gate = Dense(4, activation="sigmoid")(gate)
    scaled = Multiply()([maps, gate])
    outputs = Dense(2, activation="softmax")(GlobalAvgPool2D()(Dense(3)(scaled)))
    model = dlcore.Model(inputs, outputs, backend="cpu", seed=0)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    x, y = data(32, 4, 5, 5), np.eye(2)[np.arange(32) % 2]
    x[y[:, 1] == 1] += 1.0
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=15, batch_size=8, verbose=0)
    assert model.evaluate(x, y, verbose=0) < 0.8 * before


def test_a_dense_refuses_samples_of_more_than_three_axes_in_one_line():
    with pytest.raises(ValueError, match="Flatten") as caught:
        Dense(3).build((2, 3, 4, 5))
    assert "\n" not in str(caught.value)


def test_a_dense_on_maps_is_saved_as_format_2_which_a_version_1_reader_asks_to_upgrade_for(
        tmp_path, monkeypatch):
    """A dlcore file of a Dense on maps read by the previous dlcore was refused as damaged ("the
    hyperparameters were edited or damaged: save the model again", after "Dense needs flat
    inputs"). Such a file is now format_version 2, which a version-1 reader refuses with
    "upgrade dlcore"; a model of rows is still written as 1, which every reader loads."""
    import h5py

    from dlcore.io import hdf5
    maps = dlcore.Sequential([Dense(3), Flatten(), Dense(2)], input_shape=(4, 2, 2), seed=0)
    rows = dlcore.Sequential([Dense(3), Dense(2)], input_shape=(4,), seed=0)
    for model, version in ((maps, 2), (rows, 1)):
        path = tmp_path / f"v{version}.h5"
        dlcore.save(model, path, format="dlcore")
        with h5py.File(path, "r") as h5file:
            assert h5file.attrs["format_version"] == version
        np.testing.assert_array_equal(dlcore.load(path).get_weights()[0], model.get_weights()[0])
    monkeypatch.setattr(hdf5, "FORMAT_VERSION", 1)   # the previous dlcore's reader
    dlcore.load(tmp_path / "v1.h5")
    with pytest.raises(dlcore.io.ModelFileError, match="written by a newer dlcore.*upgrade"):
        dlcore.load(tmp_path / "v2.h5")
