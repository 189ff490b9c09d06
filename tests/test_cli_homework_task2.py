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


def test_task2_says_its_training_error_is_of_standardised_pixels(task2_run):
    # the training lines' error (0.53) is of the standardised patches, the table's (0.0038)
    # of the photograph's grey levels: "per pixel" alone made them look like one measure
    result, _ = task2_run
    line, = [line for line in result.stderr.splitlines() if "epoch 1/1" in line]
    assert line.endswith("per standardised pixel on the training batches"), line


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


def test_task2_says_above_its_table_what_is_measured_and_which_column_to_compare(task2_run):
    # the table began with its bare column names: "mse per pixel" of what, and why a second
    # column divided by the variance (the flatter cat's error is smaller, however rebuilt)
    result, _ = task2_run
    lines = result.stdout.splitlines()
    header = next(number for number, line in enumerate(lines) if line.startswith("image "))
    above = " ".join(lines[:header])
    assert "4x4 patches" in above and "mean squared error per pixel" in above
    assert "grey levels in [0, 1]" in above
    assert "mse / variance (the error divided by the photograph's variance) is the one to " \
           "compare" in above


def test_task2s_figures_say_what_they_show_and_the_feature_maps_have_a_key(
        tmp_path, monkeypatch):
    # feature_maps.png had no title and no key (the probabilities: black 0, white 1), and
    # reconstructions.png no title
    from types import SimpleNamespace

    from dlcore import viz
    from dlcore.cli.homework_task2 import write_outputs
    figures = []
    save = viz._save_figure
    monkeypatch.setattr(viz, "_save_figure",
                        lambda figure, path, **options: (figures.append((path, figure)),
                                                         save(figure, path, **options)))
    image = np.linspace(0, 1, 36).reshape(6, 6)
    rows = [(role, name, image, {"binary": image, "mean": image}, {"binary": 0.1, "mean": 0.1})
            for role, name in (("training", "coffee"), ("unseen", "chelsea"))]
    write_outputs(tmp_path, SimpleNamespace(W=np.zeros((4, 3))), rows,
                  np.random.default_rng(0).random((3, 5, 5)), 2)
    figure = {path.name: figure for path, figure in figures}
    title = figure["feature_maps.png"].texts[0].get_text()
    assert "Q(h = 1 | patch)" in title and "unseen chelsea" in title and "3 maps of 5x5" in title
    key = figure["feature_maps.png"].axes[1]
    assert [label.get_text() for label in key.get_xticklabels()] == ["0", "0.5", "1"]
    assert "hidden-unit probability" in key.get_xlabel()
    assert "rebuilt from its 2x2 patches" in figure["reconstructions.png"].texts[0].get_text()


def test_a_batch_size_above_the_patches_is_said_of_patches(photographs, tmp_path):
    # task2 trains on the photograph's patches (21 x 21 = 441 of 4 x 4 in 24 x 24): the line
    # of a --batch-size above them said "more than the 441 training images"
    train, test = photographs
    result = CliRunner().invoke(main, ["homework", "task2", "--train-image", train,
                                       "--test-image", test, *TINY, "--batch-size", "1000",
                                       "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert ("dlcore: --batch-size 1000 is more than the 441 training patches: each epoch is "
            "one batch of 441") in result.stderr


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
    # it exists: "no such image file" (exit code 1) sent the student looking for a typo
    (["--train-image", "/dev/null"], "--train-image: /dev/null is not a regular file"),
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


@pytest.fixture(scope="module")
def photographs_of_two_sizes(tmp_path_factory):
    """A 30 (wide) x 20 (high) training PNG and an 18 x 26 test PNG from the bundled ones."""
    folder = tmp_path_factory.mktemp("two_sizes")
    paths = []
    for name, (height, width) in (("coffee", (20, 30)), ("chelsea", (26, 18))):
        pixels = images.load_bundled_image(name)[50:50 + height, 50:50 + width]
        Image.fromarray((pixels * 255).round().astype(np.uint8)).save(folder / f"{name}.png")
        paths.append(str(folder / f"{name}.png"))
    return paths


def test_task2_takes_photographs_of_different_sizes(photographs_of_two_sizes, tmp_path):
    train, test = photographs_of_two_sizes
    result = CliRunner().invoke(main, ["homework", "task2", "--train-image", train,
                                       "--test-image", test, *TINY, "--out", str(tmp_path)])
    assert_wrote(result, tmp_path, ["model.h5", "filters.png", "reconstructions.png",
                                    "feature_maps.png", "reconstruction_error.csv"])
    # feature maps of the 18 x 26 test photograph: (26 - 4 + 1) x (18 - 4 + 1) positions
    assert "(6 x 23x15)" in result.stdout
    with Image.open(tmp_path / "reconstructions.png") as figure:
        width, height = figure.size
    assert height > 2 * 2 * 26 and width > 3 * 2 * 30   # two rows of the taller, zoom 2


def test_task2_records_the_photograph_it_was_trained_on(photographs_of_two_sizes, tmp_path):
    train, test = photographs_of_two_sizes
    record = {}

    def keep_record(model, path):
        record.update(model.training_record_)

    import dlcore.cli._common as common  # saving_trained_model saves with it
    saved = common.save_trained_model
    try:
        common.save_trained_model = keep_record
        CliRunner().invoke(main, ["homework", "task2", "--train-image", train, "--test-image",
                                  test, *TINY, "--out", str(tmp_path)])
    finally:
        common.save_trained_model = saved
    assert record["dataset"] == "coffee.png" and record["n_images"] == 1
    assert record["n_patches"] == 17 * 27 and record["image_size"] == [20, 30]
    assert record["command"].endswith("homework task2")
    assert record["parameters"]["patch_size"] == 4 and record["parameters"]["hidden"] == 6


def test_task2_scales_down_photographs_larger_than_max_size(photographs_of_two_sizes,
                                                            tmp_path):
    train, test = photographs_of_two_sizes
    result = CliRunner().invoke(main, ["homework", "task2", "--train-image", train,
                                       "--test-image", test, *TINY, "--max-size", "15",
                                       "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "coffee.png: scaled from 30 x 20 to 15 x 10 pixels" in result.stderr
    assert "(6 x 12x7)" in result.stdout    # the 18 x 26 test photograph became 10 x 15 (w x h)


@pytest.mark.parametrize("name, limit", [("phone.jpg", (Image, "MAX_IMAGE_PIXELS")),
                                         ("phone.png", (images, "MAX_DECODED_PIXELS"))],
                         ids=["jpeg-past-pillows-bomb-limit", "png-past-what-is-decoded-whole"])
def test_task2_scales_down_a_photograph_past_a_decoding_limit(photographs_of_two_sizes, tmp_path,
                                                              monkeypatch, name, limit):
    """A 200-megapixel phone photograph (JPEG) is past Pillow's limit (2 * MAX_IMAGE_PIXELS),
    a 12000 x 9000 PNG past images.MAX_DECODED_PIXELS (8192 x 8192); with the limit lowered to
    1000 pixels, a 64 x 48 picture stands for each: --max-size scales it down as it promises
    (the JPEG in draft mode, the PNG reduced while decoding by a whole factor), where Pillow's
    DecompressionBombError was a traceback and the PNG was refused."""
    train, _ = photographs_of_two_sizes
    photo = tmp_path / name
    Image.fromarray(np.broadcast_to(np.arange(0, 256, 4, dtype=np.uint8), (48, 64))).save(photo)
    monkeypatch.setattr(*limit, 1000)
    result = CliRunner().invoke(main, ["homework", "task2", "--train-image", train,
                                       "--test-image", str(photo), *TINY, "--max-size", "16",
                                       "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert f"{name}: scaled from 64 x 48 to 16 x 12 pixels (--max-size 16)" in result.stderr


def test_task2_refuses_a_png_past_pillows_bomb_limit_in_one_line(photographs_of_two_sizes,
                                                                 tmp_path, monkeypatch):
    train, _ = photographs_of_two_sizes
    scan = tmp_path / "scan.png"
    Image.fromarray(np.full((48, 64), 90, np.uint8)).save(scan)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["homework", "task2", "--train-image", train,
                                       "--test-image", str(scan), *TINY, "--out", str(out)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--test-image" in lines[0] and \
        "scan.png has more than 2,000 pixels, more than Pillow opens safely" in lines[0]
    assert not out.exists()


@pytest.mark.parametrize("which", ["--train-image", "--test-image"])
def test_task2_refuses_a_photograph_smaller_than_a_patch_before_training(
        which, photographs_of_two_sizes, tmp_path):
    train, test = photographs_of_two_sizes
    small = tmp_path / "small.png"
    Image.fromarray(np.full((3, 40), 128, np.uint8)).save(small)
    paths = {"--train-image": train, "--test-image": test, which: str(small)}
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["homework", "task2", "--train-image",
                                       paths["--train-image"], "--test-image",
                                       paths["--test-image"], *TINY, "--out", str(out)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "small.png (40 x 3 pixels)" in lines[0] \
        and "--patch 3 or less" in lines[0]
    assert not out.exists()   # refused before training and before creating --out


@pytest.mark.parametrize("which", ["--train-image", "--test-image"])
@pytest.mark.parametrize("pixels", [np.zeros((20, 24), np.uint8),          # a black frame
                                    np.full((20, 24, 3), 200, np.uint8),   # a blank grey scan
                                    np.indices((20, 24)).sum(axis=0) % 2 + 200],  # 1 level apart
                         ids=["black", "grey", "two-levels"])
def test_task2_refuses_a_photograph_without_contrast_before_training(
        which, pixels, photographs_of_two_sizes, tmp_path):
    """The table divides the error by the photograph's variance, 0 for a black frame
    (ZeroDivisionError after training) and about 1e-14 for a uniform grey in float32 (ratios
    of 1e6); standardised, a flat photograph's patches are all zero: nothing to learn."""
    train, test = photographs_of_two_sizes
    flat = tmp_path / "flat.png"
    Image.fromarray(pixels.astype(np.uint8)).save(flat)
    paths = {"--train-image": train, "--test-image": test, which: str(flat)}
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["homework", "task2", "--train-image",
                                       paths["--train-image"], "--test-image",
                                       paths["--test-image"], *TINY, "--out", str(out)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and which in lines[0] and "flat.png has no contrast (the standard " \
        "deviation of its grey levels is 0.00" in lines[0]
    assert not out.exists()   # refused before training and before creating --out


def test_task2_refuses_an_undecodable_photograph_before_training(photographs_of_two_sizes,
                                                                 tmp_path):
    train, _ = photographs_of_two_sizes
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["homework", "task2", "--train-image", train,
                                       "--test-image", str(broken), *TINY, "--out", str(out)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--test-image" in lines[0] and "broken.png" in lines[0]
    assert not out.exists()


def test_downscale_keeps_the_aspect_ratio_and_the_mean():
    image = np.tile(np.linspace(0, 1, 40, dtype=np.float32), (30, 1))   # 30 high, 40 wide
    scaled = images.downscale(image, 20)
    assert scaled.shape == (15, 20) and scaled.dtype == np.float32
    assert abs(float(scaled.mean()) - float(image.mean())) < 1e-3
    assert images.downscale(image, 40) is not None and images.downscale(image, 40).shape == \
        (30, 40)


def test_task2_takes_the_bundled_photographs_by_the_names_the_help_gives(tmp_path):
    """Swap the lecture's roles: train on the cat, reconstruct the coffee cup. The named run
    is the run given the installed PNGs' paths, bit for bit."""
    runner = CliRunner()
    small = [*TINY, "--max-size", "30"]
    named = runner.invoke(main, ["homework", "task2", "--train-image", "chelsea",
                                 "--test-image", "coffee", *small, "--out", str(tmp_path / "a")])
    assert named.exit_code == 0, named.output
    by_path = runner.invoke(main, ["homework", "task2", "--train-image",
                                   str(images.bundled_image_path("chelsea")), "--test-image",
                                   str(images.bundled_image_path("coffee")), *small,
                                   "--out", str(tmp_path / "b")])
    assert by_path.exit_code == 0, by_path.output
    np.testing.assert_array_equal(dlcore.load(tmp_path / "a" / "model.h5").W,
                                  dlcore.load(tmp_path / "b" / "model.h5").W)
    with open(tmp_path / "a" / "reconstruction_error.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["image"], row["role"]) for row in rows[::2]] == [
        ("chelsea", "training"), ("coffee", "unseen")]


def test_task2_a_name_that_is_neither_a_file_nor_bundled_is_one_line(tmp_path):
    result = CliRunner().invoke(main, ["homework", "task2", "--train-image", "dog", *TINY,
                                       "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "--train-image" in result.stderr and "'dog' does not exist" in result.stderr
    # the fix, too: Click's "File 'dog' does not exist." named neither bundled photograph
    assert "give an image file, or coffee (the coffee cup) or chelsea (the cat)" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("test_image", ["coffee", "copy"])
def test_task2_refuses_to_call_the_training_photograph_unseen(test_image, tmp_path):
    """The default training photograph given again, by name or as a copy elsewhere: the table
    would list it as 'unseen'. One line before training, naming the other bundled one."""
    if test_image == "copy":
        test_image = str(tmp_path / "copy.png")
        Image.open(images.bundled_image_path("coffee")).save(test_image)
    result = CliRunner().invoke(main, ["homework", "task2", "--test-image", test_image, *TINY,
                                       "--max-size", "30", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    # the lines above it say --max-size scaled each photograph down
    [line] = [line for line in result.stderr.splitlines() if line.startswith("dlcore: ")]
    assert "--test-image" in line and "is the photograph trained on (--train-image coffee)" in line
    assert "('chelsea', or an image file)" in line
    assert not (tmp_path / "run" / "model.h5").exists()


def test_task2_a_photograph_in_the_home_folder_given_quoted_is_found(tmp_path, monkeypatch):
    """--train-image '~/cat.png' (quoted, or after an equals sign: the shell leaves the ~)
    was looked for in a folder named ~ of the current one, as --dataset and --out were."""
    monkeypatch.setenv("HOME", str(tmp_path))
    Image.new("L", (8, 8)).save(tmp_path / "flat.png")   # read, then refused: one line
    result = CliRunner().invoke(main, ["homework", "task2", "--train-image", "~/flat.png",
                                       *TINY, "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "flat.png has no contrast" in result.stderr, result.stderr
