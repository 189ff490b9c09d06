"""``dlcore homework task2`` on tiny settings, and the feature maps it computes with Conv2D.
Oracles: the files promised, the RBM's own transform of every patch, one-line errors."""
import csv

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import dlcore
from conftest import assert_wrote
from dlcore.cli import main
from dlcore.cli.homework_task2 import rbm_feature_maps
from dlcore.datasets import images

TINY = ["--patch", "4", "--hidden", "6", "--epochs", "1", "--backend", "cpu"]


@pytest.fixture(scope="module")
def photographs(tmp_path_factory):
    """Two small grey PNGs cut from the bundled photographs (24 x 24, a second of the run)."""
    folder = tmp_path_factory.mktemp("photographs")
    paths = []
    for name in ("coffee", "chelsea"):
        pixels = (images.load_bundled_image(name)[60:84, 60:84] * 255).round().astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{name}.png")
        paths.append(str(folder / f"{name}.png"))
    return paths


@pytest.fixture(scope="module")
def task2_run(tmp_path_factory, photographs):
    out = tmp_path_factory.mktemp("task2")
    train, test = photographs
    result = CliRunner().invoke(main, ["homework", "task2", "--train-image", train,
                                       "--test-image", test, *TINY, "--out", str(out)])
    return result, out


def test_task2_writes_every_promised_file(task2_run):
    result, out = task2_run
    assert_wrote(result, out, ["model.h5", "filters.png", "reconstructions.png",
                               "feature_maps.png", "reconstruction_error.csv"])


def test_task2_saves_a_loadable_gaussian_rbm_with_one_filter_per_hidden_unit(task2_run):
    _, out = task2_run
    rbm = dlcore.load(out / "model.h5")
    assert isinstance(rbm, dlcore.GaussianBernoulliRBM) and rbm.W.shape == (16, 6)


def test_task2_prints_and_writes_the_error_of_both_images_and_both_feature_kinds(task2_run):
    result, out = task2_run
    with open(out / "reconstruction_error.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["role"], r["features"]) for r in rows] == [
        ("training", "binary"), ("training", "mean"), ("unseen", "binary"), ("unseen", "mean")]
    assert all(0 < float(r["mse"]) < 0.1 for r in rows)
    assert result.stdout.count("training  ") == 2 and result.stdout.count("unseen  ") == 2


@pytest.mark.parametrize("per_patch", [True, False], ids=["per-patch", "global"])
def test_conv2d_feature_maps_are_the_hidden_probabilities_of_every_patch(per_patch,
                                                                         random_state):
    image = random_state.random((12, 11), dtype=np.float32)
    z, _ = images.standardize(images.extract_patches(image, 4), per_patch=per_patch)
    rbm = dlcore.GaussianBernoulliRBM(n_hidden=5, epochs=1, batch_size=10, sigma=0.8,
                                      backend="cpu").fit(z)
    maps = rbm_feature_maps(rbm, image, 4, per_patch, backend="cpu")
    assert maps.shape == (5, 9, 8)
    expected = rbm.transform(z).T.reshape(5, 9, 8)
    np.testing.assert_allclose(maps, expected, atol=2e-5)


@pytest.mark.parametrize("arguments, message", [
    (["--patch", "40"], "larger than the image"),
    (["--train-image", "/no/such/image.png"], "--train-image"),
    (["--standardize", "whitening"], "--standardize"),
    (["--hidden", "0"], "--hidden"),
])
def test_task2_bad_input_is_one_line_on_stderr_and_a_nonzero_exit(arguments, message,
                                                                   photographs, tmp_path):
    train, test = photographs
    result = CliRunner().invoke(main, ["homework", "task2", "--train-image", train,
                                       "--test-image", test, "--epochs", "1",
                                       "--backend", "cpu", *arguments, "--out", str(tmp_path)])
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dlcore: error:") and message in lines[0]
