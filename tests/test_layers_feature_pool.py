"""L2 pooling over features (lecture "Supervised learning", slide "Pooling Layer: Examples").

Oracles: the slide's h_j = sqrt(sum over k in N(j) of h_k^2) written in NumPy over groups of
consecutive channels, its derivative h_k / h_j, finite differences (gradcheck), and the
reference backend for the kernels."""
import numpy as np
import pytest

import dlcore
from conftest import requires_cuda
from dlcore.layers import Conv2D, Dense, Flatten, L2FeaturePool
from test_layers_kernels import assert_backends_agree, images


def slide_formula(x, group_size):
    n, channels = x.shape[:2]
    grouped = x.reshape((n, channels // group_size, group_size) + x.shape[2:])
    return np.sqrt((grouped.astype(np.float64) ** 2).sum(axis=2))


@pytest.mark.parametrize("shape, group_size", [((3, 6, 4, 5), 2), ((3, 6, 4, 5), 3),
                                               ((2, 4, 1, 1), 4), ((5, 8), 2)],
                         ids=["maps-2", "maps-3", "one-group", "rows"])
def test_each_output_is_the_norm_of_its_group_of_channels(shape, group_size):
    x = images(*shape)
    layer = L2FeaturePool(group_size)
    layer.build(shape[1:], backend="reference")
    y = layer(x)
    np.testing.assert_allclose(y, slide_formula(x, group_size), rtol=1e-6)
    grad_y = images(*y.shape, seed=1)
    grad_x = layer.backward(grad_y)
    expected = x / np.repeat(y, group_size, axis=1) * np.repeat(grad_y, group_size, axis=1)
    np.testing.assert_allclose(grad_x, expected, rtol=1e-5, atol=1e-6)


def test_cpu_follows_the_reference():
    assert_backends_agree(lambda: L2FeaturePool(3), images(4, 6, 5, 3))


@requires_cuda
def test_cuda_follows_the_reference():
    assert_backends_agree(lambda: L2FeaturePool(2), images(2, 4, 3, 3), backend="cuda")


def test_a_net_with_it_passes_the_gradient_check_and_counts_no_parameters():
    model = dlcore.Sequential([Conv2D(4, 3, padding="same", input_shape=(2, 6, 6)),
                               L2FeaturePool(2), Flatten(), Dense(3, activation="softmax")],
                              backend="reference")
    model.compile(optimizer="sgd")
    errors = dlcore.gradcheck(model, images(2, 2, 6, 6), [0, 2])
    assert max(errors.values()) < 1e-6
    row = model.summary(print_fn=None).rows[1]
    assert row.output_shape == (2, 6, 6) and row.params == 0


def test_a_group_size_that_does_not_divide_the_channels_is_one_line_naming_it():
    with pytest.raises(ValueError, match="multiple of 4") as error:
        dlcore.Sequential([L2FeaturePool(4)], input_shape=(6, 3, 3))
    assert "\n" not in str(error.value) and "divides 6" in str(error.value)


def test_files_keep_it_and_keras_files_refuse_it(tmp_path):
    model = dlcore.Sequential([Conv2D(6, 3, input_shape=(1, 5, 5)), L2FeaturePool(3)],
                              backend="reference")
    x = images(2, 1, 5, 5)
    dlcore.save(model, tmp_path / "m.h5")
    loaded = dlcore.load(tmp_path / "m.h5")
    assert loaded.layers[1].group_size == 3
    np.testing.assert_allclose(loaded.predict(x), model.predict(x), rtol=1e-6)
    with pytest.raises(ValueError, match="no Keras equivalent") as error:
        model.save(tmp_path / "m.keras")
    assert "\n" not in str(error.value) and not (tmp_path / "m.keras").exists()
