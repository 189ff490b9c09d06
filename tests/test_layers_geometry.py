"""Output sizes (N - F + 2P) / S + 1 and the errors for geometries that do not fit.

Oracle: the formula of lecture "Convolutional Neural Networks" (2019), topic "output size",
worked by hand, and its examples (a 7x7 input with a 3x3 filter: stride 1 -> 5, stride 2 -> 3,
stride 3 does not fit); a proposed fix is checked by putting it back into the formula."""
import re
import time
import warnings

import numpy as np
import pytest

import dlcore
from dlcore.layers import AvgPool2D, Conv2D, Dense, Flatten, MaxPool2D
from dlcore.layers.geometry import (
    Window,
    fitting_padding,
    fitting_window,
    output_size,
    padding_pair,
)


def test_the_cnn_2019_lecture_seven_by_seven_examples_give_five_and_three():
    assert output_size(7, 3, 0, 1) == 5
    assert output_size(7, 3, 0, 2) == 3


def test_stride_three_on_seven_by_seven_is_an_error_naming_n_f_p_s():
    with pytest.raises(ValueError) as error:
        output_size(7, 3, 0, 3)
    message = str(error.value)
    for part in ("N = 7", "F = 3", "P = 0", "S = 3"):
        assert part in message


def test_same_padding_keeps_the_size_of_odd_kernels():
    layer = Conv2D(4, 5, padding="same").build((1, 28, 28), backend="reference")
    assert layer.output_shape == (4, 28, 28)
    assert layer.window.sides == ((2, 2), (2, 2))      # P = (F - 1) / 2 on each side


def test_same_padding_of_an_even_kernel_puts_the_odd_zero_at_the_bottom_and_right():
    """Keras's "same" (P_total = F - 1 at stride 1, the odd one after): a 4x4 kernel keeps
    28x28 with one zero row above and two below."""
    layer = Conv2D(4, 4, padding="same").build((1, 28, 28), backend="reference")
    assert layer.output_shape == (4, 28, 28)
    assert layer.window.sides == ((1, 2), (1, 2))


def test_same_padding_at_stride_two_gives_ceil_n_over_s():
    """The lecture's "CONV layers with stride 1 or 2 ... zero-padding (F-1)/2" on an even map:
    Keras's "same", 28 -> ceil(28 / 2) = 14, the odd zero at the bottom and right."""
    layer = Conv2D(4, 3, stride=2, padding="same").build((1, 28, 28), backend="reference")
    assert layer.output_shape == (4, 14, 14)
    assert layer.window.sides == ((0, 1), (0, 1))
    assert padding_pair(2, (5, 5)) == (2, 2)


def test_conv_geometry_error_names_the_numbers():
    with pytest.raises(ValueError, match=r"N = 10, F = 5, P = 0, S = 2"):
        Conv2D(3, 5, stride=2).compute_output_shape((1, 10, 10))


def test_pool_on_odd_size_is_an_error_not_a_silent_floor():
    with pytest.raises(ValueError, match="N = 7, F = 2, P = 0, S = 2"):
        MaxPool2D(2).compute_output_shape((3, 7, 7))


def test_filter_larger_than_input_is_an_error():
    with pytest.raises(ValueError, match="larger than the padded input"):
        AvgPool2D(5).compute_output_shape((1, 3, 3))


def test_dense_on_images_answers_at_each_pixel_and_one_label_per_image_asks_for_flatten():
    # as Keras's Dense: each pixel's channels; beyond maps, Flatten is the fix
    assert Dense(10).compute_output_shape((1, 28, 28)) == (10, 28, 28)
    with pytest.raises(ValueError, match="Flatten"):
        Dense(10).compute_output_shape((2, 1, 28, 28))
    # a student's net without the Flatten: one label per image cannot train 16 pixels' answers
    model = dlcore.Sequential([Conv2D(2, 3, input_shape=(1, 6, 6)),
                               Dense(3, activation="softmax")])
    model.compile("sparse_categorical_crossentropy", "sgd")
    x = np.zeros((4, 1, 6, 6), np.float32)
    with pytest.raises(ValueError, match=r"one class label per sample.*16 positions.*Flatten"):
        model.fit(x, np.array([0, 1, 2, 0]), epochs=1, verbose=0)


@pytest.mark.parametrize("bad", [0, -1, 2.5, "3", (1, 2, 3), True])
def test_kernel_size_must_be_positive_integers(bad):
    with pytest.raises(ValueError, match="kernel_size"):
        Conv2D(2, bad)


def test_the_lecture_example_names_the_padding_that_fits():
    """(7 - 3 + 2*1) / 3 + 1 = 3: the padding P = 1, written as the call that makes it."""
    with pytest.raises(ValueError, match=re.escape("what fits: Conv2D(4, 3, stride=3, "
                                                   "padding=1) (3x3)")):
        Conv2D(4, 3, stride=3).compute_output_shape((1, 7, 7))
    assert output_size(7, 3, 1, 3) == 3


def proposed_calls(message):
    """The calls after "what fits:" with the output each announces: [("MaxPool2D(3,
    stride=2)", (3, 3)), ...] (a call's arguments may hold brackets)."""
    text = message.split("what fits: ", 1)[1]
    calls, start = [], 0
    for match in re.finditer(r"(?:Conv2D|MaxPool2D|AvgPool2D)\(", text):
        if match.start() < start:
            continue
        depth, end = 0, match.end() - 1
        for end in range(match.end() - 1, len(text)):
            depth += {"(": 1, ")": -1}.get(text[end], 0)
            if depth == 0:
                break
        size = re.match(r" \((?:[^)]*: )?(\d+)x(\d+)\)", text[end + 1:])
        calls.append((text[match.start():end + 1], (int(size[1]), int(size[2]))))
        start = end + 1
    return calls


def test_every_proposed_layer_builds_as_written_with_the_output_it_announces():
    """Oracle: the advice applied as written. Over small geometries that fail, every call the
    message proposes is evaluated as Python and builds on the same input with the output the
    message gives (a pool's stride included: MaxPool2D(F) strides by F)."""
    failures = 0
    namespace = {"Conv2D": Conv2D, "MaxPool2D": MaxPool2D, "AvgPool2D": AvgPool2D}
    for n in range(1, 12):
        for f in range(1, 7):
            for s in range(1, 5):
                layers = [Conv2D(2, f, stride=s, padding=p) for p in range(3)]
                layers += [MaxPool2D(f), MaxPool2D(f, stride=s), AvgPool2D((f, 2), stride=s)]
                for layer in layers:
                    try:
                        layer.compute_output_shape((1, n, n + 1))
                        continue
                    except ValueError as error:
                        message = str(error)
                    failures += 1
                    calls = proposed_calls(message)
                    assert calls, message
                    for call, (height, width) in calls:
                        shape = eval(call, namespace).compute_output_shape((1, n, n + 1))
                        assert shape[1:] == (height, width), (message, call)
    assert failures > 300


def test_following_the_pool_advice_on_a_seven_by_seven_map_does_not_go_round_in_a_circle():
    """The lecture's convnet has 7x7 maps after two poolings (28 -> 14 -> 7): MaxPool2D(2)
    there was told "pool size F = 3", then MaxPool2D(3) "F = 4", then MaxPool2D(4) "F = 3"."""
    with pytest.raises(ValueError) as error:
        MaxPool2D(2).compute_output_shape((16, 7, 7))
    (first, size), *_ = proposed_calls(str(error.value))
    assert first == "MaxPool2D(3, stride=2)" and size == (3, 3)
    assert MaxPool2D(3, stride=2).compute_output_shape((16, 7, 7)) == (16, 3, 3)


def test_no_padding_fits_an_odd_span_with_an_even_stride():
    assert fitting_padding(10, 5, 0, 2) is None
    with pytest.raises(ValueError, match=r"no padding fits: S = 2 is even and N - F = 5 is odd"
                                         r".*Conv2D\(3, 6, stride=2\) \(3x3\)"):
        Conv2D(3, 5, stride=2).compute_output_shape((1, 10, 10))


def test_pool_errors_propose_a_pool_size_not_a_padding():
    with pytest.raises(ValueError, match=re.escape("what fits: MaxPool2D(3, stride=2) (3x3)")) \
            as e:
        MaxPool2D(2).compute_output_shape((3, 7, 7))
    assert not re.search(r"padding=\d", str(e.value))


def test_the_keras_geometries_are_named_where_nothing_else_keeps_the_layer():
    """A residual net's 1x1 stride-2 shortcut on a 28x28 map: no padding fits, and a 2x2
    kernel is another layer; Keras's "same" and floor keep it (both 14x14)."""
    with pytest.raises(ValueError) as error:
        Conv2D(16, 1, stride=2).compute_output_shape((8, 28, 28))
    assert [call for call, _ in proposed_calls(str(error.value))][:2] == [
        "Conv2D(16, 1, stride=2, padding='same')", "Conv2D(16, 1, stride=2, floor=True)"]


def test_the_proposed_padding_is_the_one_nearest_to_the_given_one():
    assert fitting_padding(12, 3, 4, 3) == 3     # (12 - 3 + 6) / 3 + 1 = 6
    assert fitting_padding(3, 7, 0, 1) == 2      # the smallest that makes the filter fit


def test_the_bounded_search_proposes_what_a_search_over_every_size_would():
    """Oracle: the nearest fitting padding and window found by trying every candidate."""
    def fits(n, f, p, s):
        return n - f + 2 * p >= 0 and (n - f + 2 * p) % s == 0

    for n in range(1, 15):
        for f in range(1, 20):
            for p in range(6):
                for s in range(1, 7):
                    pads = [q for q in range(p + f + s + 1) if fits(n, f, q, s)]
                    expected = min(pads, key=lambda q: (abs(q - p), q)) if pads else None
                    assert fitting_padding(n, f, p, s) == expected, (n, f, p, s)
                    windows = [g for g in range(1, n + 2 * p + 1) if fits(n, g, p, s)]
                    assert fitting_window(n, f, p, s) == min(
                        windows, key=lambda g: (abs(g - f), -g)), (n, f, p, s)


@pytest.mark.parametrize("can_pad", [True, False])
def test_a_hostile_padding_is_refused_at_once(can_pad):
    """A model file may declare any padding: the fix proposed for P = 10**12 is found by
    looking near P, not by counting up to it (that never finished)."""
    start = time.perf_counter()
    with pytest.raises(ValueError, match="does not fit"):
        Window.fit((1, 28, 28), (5, 5), (2, 2) if can_pad else (3, 3), (10**12, 10**12),
                   "Conv2D", can_pad)
    with pytest.raises(ValueError, match="does not fit"):
        Window.fit((1, 28, 28), (10**12 + 1,) * 2, (2, 2), (10**12, 10**12), "Conv2D", can_pad)
    # a fraction of a millisecond; counting up to P would take hours. The bound only tells the
    # two apart: a tenth of a second is one descheduling on a loaded machine
    assert time.perf_counter() - start < 5


# --------------------------------------------------------------------------------------------
# Keras's channels-last input shapes on a convolutional net
# --------------------------------------------------------------------------------------------
def keras_mnist_convnet(input_shape):
    return dlcore.Sequential([Conv2D(32, (3, 3), activation="relu", input_shape=input_shape),
                              MaxPool2D(2), Flatten(), Dense(10, activation="softmax")],
                             backend="reference")


def test_a_channels_last_input_shape_that_cannot_build_is_named_not_padded():
    """Keras's MNIST convnet, input_shape=(28, 28, 1): the 3x3 filter over a width of 1 was
    told "padding P = 1 would fit", which builds 28 channels of 28x1 images."""
    with pytest.raises(ValueError) as error:
        keras_mnist_convnet((28, 28, 1))
    message = str(error.value)
    assert "(28, 28, 1) looks channels-last" in message
    assert "input_shape=(1, 28, 28)" in message and "x.transpose(0, 3, 1, 2)" in message
    assert "what fits" not in message and "padding=" not in message
    assert "\n" not in message
    assert keras_mnist_convnet((1, 28, 28)).output_shape == (10,)
    # keras.io's VAE decoder makes the shape inside the net: Reshape((7, 7, 64))
    assert "(Keras's Reshape((28, 28, 1))), have it make (1, 28, 28)" in message


def test_a_channels_last_input_that_builds_warns_in_one_line_naming_the_fix():
    """CIFAR's Input((32, 32, 3)) with a "same" convolution builds: 32 channels of 32x3
    images, trained without an error. The warning names the user's line."""
    with pytest.warns(UserWarning) as caught:
        model = dlcore.Sequential([dlcore.Input((32, 32, 3)),
                                   Conv2D(8, 3, padding="same", activation="relu"),
                                   Flatten(), Dense(10, activation="softmax")],
                                  backend="reference")
    messages = [str(w.message) for w in caught if "channels-last" in str(w.message)]
    assert len(messages) == 1 and "\n" not in messages[0]
    assert "reads 32 channels of 32x3 images" in messages[0]
    assert "input_shape=(3, 32, 32)" in messages[0]
    assert [w.filename for w in caught if "channels-last" in str(w.message)] == [__file__]
    # given correct channels-first images, the data's message does not say to reshape them
    x = np.zeros((2, 3, 32, 32), dtype=np.float32)
    model.compile("cross_entropy", "sgd")
    with pytest.raises(ValueError, match=re.escape("build it with input_shape=(3, 32, 32)")) \
            as error:
        model.fit(x, np.array([0, 1]), epochs=1, verbose=0)
    assert "reshape" not in str(error.value)


@pytest.mark.parametrize("layers, input_shape", [
    ([Conv2D(6, 5, padding=2), MaxPool2D(2)], (1, 28, 28)),       # LeNet-5
    ([Conv2D(8, 3, padding="same"), MaxPool2D(2)], (3, 32, 32)),  # CIFAR, channels first
    ([Conv2D(16, 3, padding="same"), MaxPool2D(2)], (32, 14, 14)),
    ([Conv2D(4, (3, 1)), MaxPool2D((2, 1))], (16, 98, 1)),        # a signal, one pixel wide
    ([Conv2D(4, 3, padding="same")], (4, 4, 3)),                   # a small map
])
def test_channels_first_models_build_without_a_layout_warning(layers, input_shape):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dlcore.Sequential(layers, input_shape=input_shape, backend="reference")
