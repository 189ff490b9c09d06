"""Output sizes (N - F + 2P) / S + 1 and the errors for geometries that do not fit.

Oracle: the formula of lecture "Convolutional Neural Networks" (2019), topic "output size",
worked by hand, and its examples (a 7x7 input with a 3x3 filter: stride 1 -> 5, stride 2 -> 3,
stride 3 does not fit); a proposed fix is checked by putting it back into the formula."""
import re
import time

import pytest

from dlcore.layers import AvgPool2D, Conv2D, Dense, MaxPool2D
from dlcore.layers.geometry import (
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


def test_dense_on_images_asks_for_flatten():
    with pytest.raises(ValueError, match="Flatten"):
        Dense(10).compute_output_shape((1, 28, 28))


@pytest.mark.parametrize("bad", [0, -1, 2.5, "3", (1, 2, 3), True])
def test_kernel_size_must_be_positive_integers(bad):
    with pytest.raises(ValueError, match="kernel_size"):
        Conv2D(2, bad)


def test_the_lecture_example_names_the_padding_that_fits():
    with pytest.raises(ValueError, match=r"padding P = 1 would fit"):
        output_size(7, 3, 0, 3)          # (7 - 3 + 2) / 3 + 1 = 3
    assert output_size(7, 3, 1, 3) == 3


def test_every_proposed_fix_fits():
    """Over all small geometries that fail: the padding (or kernel, or pool size) the message
    proposes gives a whole output size >= 1 with the other numbers unchanged."""
    failures = 0
    for n in range(1, 13):
        for f in range(1, 8):
            for p in range(3):
                for s in range(1, 5):
                    for can_pad in (True, False):
                        try:
                            output_size(n, f, p, s, can_pad=can_pad)
                            continue
                        except ValueError as error:
                            message = str(error)
                        failures += 1
                        padding = re.search(r"padding P = (\d+) would fit", message)
                        window = re.search(r"(?:kernel|pool) size F = (\d+)", message)
                        assert (padding or window) and (can_pad or not padding), message
                        if padding:
                            assert output_size(n, f, int(padding.group(1)), s) >= 1
                        else:
                            assert output_size(n, int(window.group(1)), p, s) >= 1
    assert failures > 100


def test_no_padding_fits_an_odd_span_with_an_even_stride():
    assert fitting_padding(10, 5, 0, 2) is None
    with pytest.raises(ValueError, match="no padding fits .*kernel size F = 6 would fit"):
        Conv2D(3, 5, stride=2).compute_output_shape((1, 10, 10))


def test_pool_errors_propose_a_pool_size_not_a_padding():
    with pytest.raises(ValueError, match=r"pool size F = 3 \(or stride S = 1\) would fit") as e:
        MaxPool2D(2).compute_output_shape((3, 7, 7))
    assert "padding P =" not in str(e.value)


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
        output_size(28, 5, 10**12, 2 if can_pad else 3, can_pad=can_pad)
    with pytest.raises(ValueError, match="does not fit"):
        output_size(28, 10**12 + 1, 10**12, 2, can_pad=can_pad)
    assert time.perf_counter() - start < 0.1
