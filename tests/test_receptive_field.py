"""Receptive fields (lecture "Supervised learning", slide "Pooling Layer: Receptive Field Size").

Oracles: the slide's (P + K - 1) x (P + K - 1), and a brute-force measurement: with positive
weights, zero biases and a zero image, a unit changes when one input pixel is raised exactly when
that pixel is in its field (every path from it is positive, and a raised pixel wins every max
pool it reaches), so the box of the pixels that change the centre unit is its field."""
import numpy as np
import pytest

import dlcore
from dlcore.layers import (
    AvgPool2D,
    Conv2D,
    Dense,
    Flatten,
    LocallyConnected2D,
    MaxPool2D,
    ReLU,
    Reshape,
)
from dlcore.receptive_field import ReceptiveField


@pytest.mark.parametrize("kernel", [3, 5])
@pytest.mark.parametrize("pool", [2, 3])
def test_a_conv_then_a_pool_sees_p_plus_k_minus_1_pixels(kernel, pool):
    size = kernel - 1 + 4 * pool     # the pools tile the convolution's output
    model = dlcore.Sequential([Conv2D(2, kernel), MaxPool2D(pool)], input_shape=(1, size, size),
                              backend="reference")
    fields = dlcore.receptive_fields(model)
    assert fields["conv2d"].size == (kernel, kernel) and fields["conv2d"].jump == (1, 1)
    assert fields["max_pooling2d"].size == (pool + kernel - 1,) * 2
    assert fields["max_pooling2d"].jump == (pool, pool)


def test_lenet5s_c5_sees_the_whole_32x32_image():
    fields = dlcore.receptive_fields(dlcore.models.lenet5(input_shape=(1, 32, 32),
                                                          backend="reference"))
    assert [fields[name].size[0] for name in ("c1", "s2", "c3", "s4", "c5", "output")] == [
        5, 6, 14, 16, 32, 32]


def measured_field(model, layer_name):
    """The (height, width) of the box of input pixels that move the centre unit of a layer."""
    channels, height, width = model.input.shape
    generator = np.random.default_rng(0)
    for layer in model.layers:
        for name, value in layer.params.items():
            positive = generator.uniform(0.5, 1.5, value.shape) if name == "kernel" else 0 * value
            value[...] = positive.astype(value.dtype)
    probe = dlcore.Model(model.input, model.get_layer(layer_name).output)
    images = np.zeros((height * width + 1, channels, height, width), np.float32)
    images[np.arange(height * width), :, np.arange(height * width) // width,
           np.arange(height * width) % width] = 1.0   # the last image stays zero
    outputs = probe.predict(images)
    if outputs.ndim == 4:
        outputs = outputs[:, 0, outputs.shape[2] // 2, outputs.shape[3] // 2]
    else:
        outputs = outputs[:, 0]
    moved = np.flatnonzero(np.abs(outputs[:-1] - outputs[-1]) > 1e-6)
    rows, columns = moved // width, moved % width
    return (int(rows.max() - rows.min() + 1), int(columns.max() - columns.min() + 1))


def strided_model():
    return dlcore.Sequential([
        Conv2D(2, 3, stride=2, padding="same"), ReLU(), MaxPool2D(3, stride=2, padding="same"),
        Conv2D(2, (4, 2)), AvgPool2D(2), Flatten(), Dense(3, activation="relu"),
    ], input_shape=(1, 36, 36), backend="reference")


@pytest.mark.parametrize("build, names", [
    (lambda: dlcore.models.lenet5(input_shape=(1, 32, 32), backend="reference"),
     ["c1", "s2", "c3", "s4", "c5"]),
    (strided_model, ["conv2d", "max_pooling2d", "conv2d_1", "average_pooling2d"]),
    (lambda: dlcore.models.resnet_small(input_shape=(1, 24, 24), filters=2, backend="reference"),
     ["stem_pool", "block1_b", "block1_add", "block2_a"]),
    # filters of its own per position, the same fields as a convolution's (they were taken
    # for an element-wise layer's, 1 x 1)
    (lambda: dlcore.Sequential([LocallyConnected2D(2, 3, stride=2, padding="same"),
                                MaxPool2D(2), LocallyConnected2D(2, 2)],
                               input_shape=(1, 16, 16), backend="reference"),
     ["locally_connected2d", "max_pooling2d", "locally_connected2d_1"]),
], ids=["lenet5", "strides-and-same-padding", "residual", "locally-connected"])
def test_the_fields_are_the_pixels_a_unit_depends_on(build, names):
    model = build()
    fields = dlcore.receptive_fields(model)
    for name in names:
        assert measured_field(model, name) == fields[name].size, name


def test_a_model_of_rows_is_refused_and_reshaped_rows_are_images():
    with pytest.raises(ValueError, match="not images") as error:
        dlcore.receptive_fields(dlcore.models.mlp(input_shape=(784,), backend="reference"))
    assert "\n" not in str(error.value) and "input_shape=(1, 28, 28)" in str(error.value)
    model = dlcore.Sequential([Reshape((1, 28, 28)), Conv2D(2, 5), MaxPool2D(2)],
                              input_shape=(784,), backend="reference")
    assert dlcore.receptive_fields(model)["max_pooling2d"].size == (6, 6)


def test_the_way_up_of_a_unet_has_no_field_and_the_way_down_has():
    fields = dlcore.receptive_fields(dlcore.models.unet_small(backend="reference"))
    assert fields["pool1"].size == (4, 4) and fields["down2"].size == (8, 8)
    assert fields["up1"] is None and fields["mask"] is None


def test_a_nested_model_is_listed_with_the_field_of_its_outputs_then_its_layers():
    """Transfer learning's base under a new head: model.layers lists the base as one entry (as
    Keras does), and its layers' fields were missing from the result, the base's too."""
    base = dlcore.Sequential([Conv2D(2, 5, name="c1"), MaxPool2D(2, name="s2")],
                             input_shape=(1, 28, 28), backend="reference", name="base")
    inputs = dlcore.Input((1, 28, 28))
    outputs = Dense(3)(Flatten()(Conv2D(2, 3, name="c3")(base(inputs))))
    fields = dlcore.receptive_fields(dlcore.Model(inputs, outputs, backend="reference"))
    assert list(fields)[:4] == ["base", "c1", "s2", "c3"]
    assert fields["base"] == fields["s2"] == ReceptiveField((6, 6), (2, 2))
    assert fields["c1"].size == (5, 5)
    assert fields["c3"] == ReceptiveField((10, 10), (2, 2))
