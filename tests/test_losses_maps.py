"""Losses and accuracy of outputs that are (C, H, W) maps, as Keras computes them on its
(H, W, C) outputs: a softmax over each pixel's channels with the cross-entropy averaged over the
pixels (the U-Net paper's "pixel-wise soft-max ... combined with the cross entropy loss"), and
the accuracy of each pixel (the argmax over its channels, or the 0.5 threshold of a one-channel
sigmoid mask), averaged.

Before, a Sequential ending in a convolution stopped inside the loss ("too many values to
unpack"), and a U-Net's mask "accuracy" was the argmax over all the pixels of a sample (0.03 for
a mask predicted right everywhere, where Keras said 1.0).

Oracles: the per-pixel formulas in NumPy, finite differences (gradcheck), and real Keras in
tests/test_io_keras_real.py."""
import numpy as np
import pytest

import dlcore
from conftest import requires_cuda
from dlcore.layers import Conv2D
from dlcore.losses import correct_predictions, output_channels

BACKENDS = ["reference", "cpu", pytest.param("cuda", marks=requires_cuda)]


def segmentation_data(n=4, classes=3, size=5, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 2, size, size)).astype(np.float32)
    labels = rng.integers(0, classes, (n, size, size))
    return x, labels, np.eye(classes, dtype=np.float32)[labels].transpose(0, 3, 1, 2)


def segmenter(backend, classes=3, activation="softmax"):
    return dlcore.Sequential([Conv2D(4, 3, padding="same", activation="tanh"),
                              Conv2D(classes, 1, activation=activation)],
                             input_shape=(2, 5, 5), backend=backend, seed=1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_softmax_per_pixel_takes_the_cross_entropy_per_pixel(backend):
    x, labels, targets = segmentation_data()
    model = segmenter(backend)
    model.compile("cross_entropy", "sgd", ["accuracy"])
    p = model.predict(x)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)    # per pixel, over channels
    picked = np.take_along_axis(p, labels[:, None], axis=1)[:, 0]
    per_sample = -np.log(picked).mean(axis=(1, 2))
    right = (p.argmax(axis=1) == labels).mean()
    loss, accuracy = model.evaluate(x, targets)
    assert loss == pytest.approx(per_sample.mean(), rel=1e-5)
    assert accuracy == pytest.approx(right, abs=1e-6)
    step = model.train_on_batch(x, targets)        # before its update: the same numbers
    assert step[0] == pytest.approx(loss, rel=1e-5)


def test_the_per_pixel_cross_entropy_has_the_gradient_of_its_cost():
    x, _, targets = segmentation_data(n=2)
    model = segmenter("reference")
    model.compile("cross_entropy", "sgd")
    assert max(dlcore.gradcheck(model, x, targets, verbose=False).values()) < 1e-6


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_one_channel_mask_reports_the_fraction_of_pixels_right(backend):
    """The U-Net's sigmoid mask: Keras's binary accuracy over the pixels."""
    x, labels, _ = segmentation_data(classes=2)
    masks = labels[:, None].astype(np.float32)
    model = segmenter(backend, classes=1, activation="sigmoid")
    model.compile("binary_cross_entropy", "sgd", ["accuracy"])
    predicted = model.predict(x) > 0.5
    _, accuracy = model.evaluate(x, masks)
    assert accuracy == pytest.approx((predicted == (masks > 0.5)).mean(), abs=1e-6)
    assert 0.2 < accuracy < 0.8      # a random mask: neither the sample's argmax nor 0


def test_a_mask_predicted_right_everywhere_scores_one():
    x, labels, _ = segmentation_data(classes=2)
    model = dlcore.Sequential([Conv2D(1, 1, activation="sigmoid")], input_shape=(2, 5, 5),
                              backend="cpu")
    model.compile("binary_cross_entropy", "sgd", ["accuracy"])
    masks = (model.predict(x) > 0.5).astype(np.float32)
    assert model.evaluate(x, masks)[1] == 1.0


def test_the_numpy_accuracy_reads_positions_and_channels():
    outputs = np.array([[0.9, 0.2, 0.1, 0.8]])            # (C=2, P=2): argmax c = 0, 1
    assert correct_predictions(outputs, np.array([[1.0, 0.0, 0.0, 1.0]]), 0.5, 2) == 1.0
    assert correct_predictions(outputs, np.array([[1.0, 1.0, 0.0, 0.0]]), 0.5, 2) == 0.5
    assert correct_predictions(outputs, np.array([[1.0, 1.0, 0.0, 1.0]]), 0.5, 1) == 0.75
    assert correct_predictions(outputs, np.array([[0.0, 0.0, 0.0, 1.0]])) == 0.0   # flat
    assert output_channels((3, 5, 5)) == 3 and output_channels((10,)) == 10
    assert output_channels((4, 6)) == 24


@pytest.mark.parametrize("layout", ["(n, H, W)", "(n, H, W, 1)"])
def test_a_label_per_pixel_trains_as_its_one_hot_maps(layout):
    """keras.io's segmentation recipe gives sparse_categorical_crossentropy a class label per
    pixel: it was refused without a fix."""
    x, labels, targets = segmentation_data()
    sparse = labels if layout == "(n, H, W)" else labels[..., None]
    model = segmenter("reference")
    model.compile("sparse_categorical_crossentropy", "sgd", ["accuracy"])
    assert tuple(model.evaluate(x, sparse)) == tuple(model.evaluate(x, targets))
    with pytest.raises(ValueError, match=r"a label per pixel in \[0, 3\]; the network's "
                                         r"outputs have 3 channels"):
        model.evaluate(x, np.where(labels == 2, 3, labels))
