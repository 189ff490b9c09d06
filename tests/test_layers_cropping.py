"""Cropping2D: the "copy and crop" of the U-Net (lecture "Deep learning I", "The U-Net
architecture"; Ronneberger et al. 2015), whose unpadded convolutions leave the skip connection's
maps larger than the way up's.

Oracles: NumPy's slicing for the forward pass and PyTorch's autograd of that slice for the
backward pass (exact: both copy numbers), on the reference, the ``cpu`` kernels and the ``cuda``
kernels (under the simulator); Keras 3 (torch backend) itself for the layer's meaning in Keras
files, both ways, where Keras is installed."""
import numpy as np
import pytest

import dlcore
from conftest import requires_cuda
from dlcore.layers import (
    Conv2D,
    Conv2DTranspose,
    Cropping2D,
    Input,
    MaxPooling2D,
    concatenate,
)
from test_io_keras import real_keras

CROPPINGS = [1, (1, 2), ((0, 2), (3, 1)), ((2, 1), (0, 0)), ((0, 0), (0, 4))]


def sliced(x, sides):
    (top, bottom), (left, right) = sides
    return x[:, :, top:x.shape[2] - bottom, left:x.shape[3] - right]


@pytest.mark.parametrize("cropping", CROPPINGS)
@pytest.mark.parametrize("backend", ["reference", "cpu",
                                     pytest.param("cuda", marks=requires_cuda)])
def test_cropping_is_numpys_slice_and_its_gradient_is_torchs(backend, cropping):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 9)).astype(np.float32)
    layer = Cropping2D(cropping)
    layer.build(x.shape[1:], backend=backend)
    y = np.array(layer.backend.to_numpy(layer.forward(layer.backend.asarray(x))))
    np.testing.assert_array_equal(y, sliced(x, layer.cropping))
    assert y.shape[1:] == layer.output_shape
    grad_y = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
    grad_x = layer.backend.to_numpy(layer.backward(layer.backend.asarray(grad_y)))
    x_torch = torch.from_numpy(x).requires_grad_()
    (sliced(x_torch, layer.cropping) * torch.from_numpy(grad_y)).sum().backward()
    np.testing.assert_array_equal(np.array(grad_x), x_torch.grad.numpy())


def paper_unet(backend="cpu", crop=((4, 4), (4, 4))):
    """The U-Net of Ronneberger et al. at one level: unpadded 3x3 convolutions, 2x2 max
    pooling, a 2x2 up-convolution, the contracting path's maps cropped to the centre and
    concatenated, a 1x1 convolution to the classes."""
    inputs = Input(shape=(1, 36, 36))
    down = Conv2D(8, 3, activation="relu")(Conv2D(8, 3, activation="relu")(inputs))  # 32
    bottom = MaxPooling2D(2)(down)                                                      # 16
    bottom = Conv2D(16, 3, activation="relu")(Conv2D(16, 3, activation="relu")(bottom))  # 12
    up = Conv2DTranspose(8, 2, strides=2)(bottom)                                       # 24
    joined = concatenate([up, Cropping2D(crop)(down)])
    x = Conv2D(8, 3, activation="relu")(Conv2D(8, 3, activation="relu")(joined))        # 20
    return dlcore.Model(inputs, Conv2D(2, 1, activation="softmax")(x), backend=backend, seed=0)


def test_the_lectures_unet_with_copy_and_crop_builds_and_learns():
    model = paper_unet()
    assert model.output_shape == (2, 20, 20)
    x = np.random.default_rng(2).random((4, 1, 36, 36)).astype(np.float32)
    masks = (x[:, 0, 8:28, 8:28] > 0.5).astype(np.int64)     # each output pixel's own input
    model.compile("cross_entropy", dlcore.optimizers.Adam(0.01))
    losses = model.fit(x, masks, epochs=8, batch_size=4, verbose=0).history["loss"]
    assert losses[-1] < losses[0]


def test_a_crop_that_leaves_no_pixel_is_refused_in_one_line():
    with pytest.raises(ValueError, match=r"cuts 7 of 7 rows .* crop less"):
        Cropping2D(((3, 4), (0, 0))).build((2, 7, 9))
    with pytest.raises(ValueError, match="cropping must be a non-negative integer"):
        Cropping2D((1, -1))


def test_cropping_goes_to_keras_and_back_with_keras_predictions(tmp_path):
    keras = real_keras()
    model = paper_unet(crop=((4, 4), (3, 5)))
    x = np.random.default_rng(3).random((2, 1, 36, 36)).astype(np.float32)
    model.save(tmp_path / "unet.keras")
    in_keras = keras.models.load_model(tmp_path / "unet.keras")
    theirs = in_keras.predict(x.transpose(0, 2, 3, 1), verbose=0).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(model.predict(x), theirs, rtol=1e-5, atol=1e-6)
    inputs = keras.Input((18, 20, 3))
    joined = keras.layers.concatenate([
        keras.layers.Cropping2D(2)(inputs), keras.layers.Cropping2D((2, 2))(inputs),
        keras.layers.Cropping2D(((1, 3), (2, 2)))(inputs)])
    keras.Model(inputs, joined).save(tmp_path / "crops.keras")
    images = np.random.default_rng(4).random((2, 18, 20, 3)).astype(np.float32)
    crops = dlcore.load(tmp_path / "crops.keras").predict(images.transpose(0, 3, 1, 2))
    expected = np.concatenate([images[:, 2:16, 2:18], images[:, 2:16, 2:18],
                               images[:, 1:15, 2:18]], axis=3).transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(crops, expected)


def test_gradcheck_passes_through_crops_of_the_input_and_of_maps():
    """:func:`dlcore.gradcheck` (float64 central differences, on a copy rebuilt from each
    layer's config) through crops of every form, the input's gradient included."""
    inputs = Input(shape=(1, 9, 9))
    maps = Cropping2D(((1, 0), (0, 2)))(Conv2D(2, 3, activation="tanh")(inputs))       # 6x5
    other = Conv2D(2, 2, activation="tanh")(Cropping2D(((0, 0), (1, 0)))(Cropping2D(1)(inputs)))
    joined = dlcore.layers.Flatten()(concatenate([maps, Cropping2D(0)(other)]))
    model = dlcore.Model(inputs, dlcore.layers.Dense(3, activation="softmax")(joined),
                         backend="cpu", seed=0)
    model.compile("cross_entropy", "sgd")
    x = np.random.default_rng(5).random((4, 1, 9, 9)).astype(np.float32)
    errors = dlcore.gradcheck(model, x, np.arange(4) % 3, verbose=False)
    assert "input" in errors and max(errors.values()) < 1e-6


def cropped_classifier():
    inputs = Input(shape=(1, 6, 6))
    maps = Conv2D(2, 3, activation="relu")(Cropping2D(((1, 0), (0, 1)))(inputs))      # 3x3
    flat = dlcore.layers.Flatten()(Cropping2D((1, 0))(maps))
    return dlcore.Model(inputs, dlcore.layers.Dense(3, activation="softmax")(flat),
                        backend="reference", seed=0)


@pytest.mark.parametrize("cropping", [[[9, 0], [0, 0]], [[-1, 0], [0, 0]], [[2**40, 0], [0, 0]],
                                      [[2**31 - 1, 0], [0, 0]], [[1.5, 0], [0, 0]],
                                      [[True, 0], [0, 0]], "4", None, [1], [[1, 2], [3]]])
def test_hostile_croppings_in_a_model_file_are_refused_in_one_line(tmp_path, cropping):
    """A crop larger than the map, negative, huge or of the wrong type in a dlcore file:
    a ModelFileError of one line naming the file, no traceback from inside the layer."""


    from dlcore.io.errors import ModelFileError
    path = str(tmp_path / "cropped.h5")
    dlcore.save(cropped_classifier(), path)
    import model_file_fuzzer
    error = model_file_fuzzer.edited_layer_config_error(path, "Cropping2D", "cropping", cropping)
    assert isinstance(error, ModelFileError), error
    assert "\n" not in str(error) and path in str(error)


def test_fuzzed_files_of_a_cropping_network_are_refused_clearly_or_load_and_work(tmp_path):
    """The structured fuzzer (tests/model_file_fuzzer.py) on a trained network with crops."""
    import model_file_fuzzer
    x = np.random.default_rng(7).random((4, 1, 6, 6)).astype(np.float32)
    bad = model_file_fuzzer.badly_handled_fuzzed_copies(
        cropped_classifier(), x, str(tmp_path / "cropped.h5"), str(tmp_path), 16, seed=5)
    assert not bad, "\n".join(bad)
