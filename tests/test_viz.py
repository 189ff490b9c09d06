"""Tests of dlcore.viz: image grids, curves and confusion matrices written as PNG files.

Oracles: hand-computed tiny grids for tile_images; for the PNG writers, the file opens with
Pillow at the size the grid arithmetic predicts, and the directory holds nothing else.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import dlcore.callbacks
from dlcore import viz
from dlcore.io import hdf5

G = viz.PADDING_GREY


def png(path):
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.load()
        return image


def only_file_in(directory, name):
    return sorted(os.listdir(directory)) == [name]


# --------------------------------------------------------------------------------------------
# tile_images
# --------------------------------------------------------------------------------------------
def test_each_tile_is_scaled_to_its_own_range_hand_computed():
    # tile 0: 0..3, tile 1: 4..7 -> both map to 0, 85, 170, 255; the third cell is empty.
    images = np.arange(8.0).reshape(2, 2, 2)
    empty = viz.EMPTY_CELL
    expected = np.array([[0, 85, G, 0, 85, G, empty, empty],
                         [170, 255, G, 170, 255, G, empty, empty]], np.uint8)
    grid = viz.tile_images(images, n_columns=3)
    assert grid.dtype == np.uint8
    np.testing.assert_array_equal(grid, expected)


def test_one_range_for_all_tiles_hand_computed():
    images = np.arange(8.0).reshape(2, 2, 2)  # 0..7 -> round(255 * v / 7)
    grid = viz.tile_images(images, n_columns=1, padding=0, scale="all")
    np.testing.assert_array_equal(grid, np.rint(np.arange(8.0).reshape(4, 2) * 255 / 7))


def test_no_scaling_clips_to_unit_interval():
    images = np.array([[[-0.5, 0.0], [0.5, 2.0]]])
    np.testing.assert_array_equal(viz.tile_images(images, scale=None), [[0, 0], [128, 255]])


def test_negative_weights_fill_the_whole_grey_range():
    filters = np.random.default_rng(0).normal(size=(5, 3, 4)) * 0.01
    grid = viz.tile_images(filters, padding=0, n_columns=5)
    for tile in np.split(grid, 5, axis=1):
        assert tile.min() == 0 and tile.max() == 255


def test_constant_tile_maps_to_black():
    grid = viz.tile_images(np.stack([np.full((2, 2), 3.0), np.eye(2)]), padding=0, n_columns=2)
    np.testing.assert_array_equal(grid, [[0, 0, 255, 0], [0, 0, 0, 255]])


@pytest.mark.parametrize("n, columns, expected_grid", [
    (1, None, (1, 1)), (4, None, (2, 2)), (5, None, (2, 3)), (10, None, (3, 4)),
    (10, 10, (1, 10)), (3, 5, (1, 5)), (7, 2, (4, 2)),
])
def test_grid_size_follows_the_column_count(n, columns, expected_grid):
    h, w, padding = 3, 5, 2
    grid = viz.tile_images(np.ones((n, h, w)), n_columns=columns, padding=padding)
    rows, cols = expected_grid
    assert grid.shape == (rows * h + (rows - 1) * padding, cols * w + (cols - 1) * padding)


def test_padding_pixels_are_grey_empty_cells_white_and_tiles_land_row_by_row():
    images = np.stack([np.full((2, 3), float(i)) for i in range(5)])
    grid = viz.tile_images(images, n_columns=2, padding=1, scale="all")
    assert grid.shape == (3 * 2 + 2, 2 * 3 + 1)
    levels = np.rint(np.arange(5) * 255 / 4)
    for index, level in enumerate(levels):
        row, column = divmod(index, 2)
        assert np.all(grid[row * 3: row * 3 + 2, column * 4: column * 4 + 3] == level)
    assert np.all(grid[2] == G) and np.all(grid[5] == G) and np.all(grid[:, 3] == G)
    # the empty sixth cell: white, where a grey cell read as a tile of P = 0.5
    assert np.all(grid[6:, 4:] == viz.EMPTY_CELL) and viz.EMPTY_CELL != G


@pytest.mark.parametrize("scale", [None, "signed"])
def test_an_empty_cell_is_not_a_white_tile_of_p_equal_one(scale):
    """Empty cells were plain white: in a picture of probabilities (rbm sample --n 3) that is
    also a sample of P = 1 everywhere, bounded by the same grey lines. They are crossed out."""
    tiles = np.ones((3, 7, 6))
    grid = viz.tile_images(tiles, n_columns=2, scale=scale)
    full_tile, empty_cell = grid[8:, :6], grid[8:, 7:]
    assert np.all(full_tile == 255) and empty_cell.shape == full_tile.shape
    assert not np.array_equal(empty_cell, full_tile)
    diagonal = np.rint(np.arange(7) * 5 / 6).astype(int)
    assert np.all(empty_cell[np.arange(7), diagonal] == G)
    assert np.all(empty_cell[np.arange(7), 5 - diagonal] == G)
    assert np.mean(empty_cell == viz.EMPTY_CELL) > 0.5   # still mostly the page's white


def test_padding_value_and_no_padding():
    grid = viz.tile_images(np.ones((2, 1, 1)), n_columns=2, padding=1, padding_value=7)
    np.testing.assert_array_equal(grid, [[0, 7, 0]])
    assert viz.tile_images(np.ones((4, 2, 2)), padding=0).shape == (4, 4)


def test_single_channel_nchw_images_are_accepted():
    images = np.random.default_rng(1).random((3, 1, 4, 4))
    np.testing.assert_array_equal(viz.tile_images(images), viz.tile_images(images[:, 0]))


@pytest.mark.parametrize("images, message", [
    (np.ones((4, 784)), r"shape \(4, 784\).*W.T.reshape"),
    (np.ones((2, 3, 4, 4)), r"shape \(2, 3, 4, 4\)"),
    (np.ones(5), r"shape \(5,\)"),
    (np.ones((0, 4, 4)), "at least one image"),
    (np.ones((2, 0, 4)), "at least one image"),
    (np.array([[[1.0, np.nan]]]), "1 NaN or infinite"),
    ([["a"]], "array of numbers"),
])
def test_bad_images_give_clear_errors(images, message):
    with pytest.raises(ValueError, match=message):
        viz.tile_images(images)


@pytest.mark.parametrize("arguments, message", [
    ({"scale": "max"}, "scale must be one of"),
    ({"n_columns": 0}, "n_columns must be a positive integer"),
    ({"n_columns": 2.5}, "n_columns must be a positive integer"),
    ({"padding": -1}, "padding must be an integer >= 0"),
    ({"padding_value": 300}, "padding_value must be an integer grey level"),
])
def test_bad_arguments_give_clear_errors(arguments, message):
    with pytest.raises(ValueError, match=message):
        viz.tile_images(np.ones((4, 2, 2)), **arguments)


# --------------------------------------------------------------------------------------------
# PNG writers
# --------------------------------------------------------------------------------------------
def test_save_tiles_writes_the_grid_zoomed(tmp_path):
    images = np.random.default_rng(2).normal(size=(6, 5, 4))
    path = tmp_path / "filters.png"
    viz.save_tiles(images, path, n_columns=3, zoom=3)
    image = png(path)
    grid = viz.tile_images(images, n_columns=3)
    assert image.mode == "L" and image.size == (grid.shape[1] * 3, grid.shape[0] * 3)
    np.testing.assert_array_equal(np.asarray(image)[::3, ::3], grid)
    assert only_file_in(tmp_path, "filters.png")


def test_save_tiles_accepts_a_string_path_and_replaces_the_file(tmp_path):
    path = str(tmp_path / "t.png")
    viz.save_tiles(np.ones((1, 2, 2)), path, zoom=1)
    viz.save_tiles(np.ones((4, 2, 2)), path, zoom=1)
    assert png(path).size == (5, 5) and only_file_in(tmp_path, "t.png")


def test_save_tiles_rejects_bad_zoom_and_writes_nothing(tmp_path):
    with pytest.raises(ValueError, match="zoom must be an integer >= 1"):
        viz.save_tiles(np.ones((1, 2, 2)), tmp_path / "z.png", zoom=0)
    assert os.listdir(tmp_path) == []


def test_image_rows_without_labels_are_the_exact_grid(tmp_path):
    originals = np.random.default_rng(3).random((4, 6, 5))
    path = tmp_path / "rows.png"
    viz.save_image_rows([originals, originals * 0.5, originals[:2]], path, zoom=2)
    pixels = np.asarray(png(path))
    assert pixels.shape == ((3 * 6 + 2) * 2, (4 * 5 + 3) * 2)
    grid = pixels[::2, ::2]
    np.testing.assert_array_equal(grid[:6], viz.tile_images(originals, n_columns=4, scale=None))
    np.testing.assert_array_equal(grid[7:13, :5], np.rint(originals[0] * 0.5 * 255))
    assert np.all(grid[6] == G) and np.all(grid[14:, 11] == G)  # separators
    # the short last row ends in empty cells: white, crossed out in grey
    empty = grid[14:, 12:]
    assert set(np.unique(empty)) == {G, viz.EMPTY_CELL} and np.all(empty[0, [0, 4]] == G)
    assert only_file_in(tmp_path, "rows.png")


def test_image_rows_scale_all_uses_one_range_for_every_row(tmp_path):
    path = tmp_path / "rows.png"
    viz.save_image_rows([np.zeros((1, 2, 2)), np.full((1, 2, 2), 2.0)], path, scale="all",
                        zoom=1)
    pixels = np.asarray(png(path))
    assert np.all(pixels[:2] == 0) and np.all(pixels[3:] == 255)


def test_image_rows_with_labels_open_and_are_at_least_the_grid(tmp_path):
    rows = [np.random.default_rng(4).random((5, 8, 8)) for _ in range(2)]
    path = tmp_path / "labelled.png"
    viz.save_image_rows(rows, path, row_labels=["original", "reconstruction"], zoom=2)
    width, height = png(path).size
    assert width > (5 * 8 + 4) * 2 and height >= (2 * 8 + 1) * 2 - 2
    assert only_file_in(tmp_path, "labelled.png")


def test_image_rows_with_column_titles_are_taller_than_without(tmp_path):
    rows = [np.random.default_rng(5).random((3, 8, 8)) for _ in range(2)]
    viz.save_image_rows(rows, tmp_path / "plain.png", row_labels=["a", "b"])
    viz.save_image_rows(rows, tmp_path / "titled.png", row_labels=["a", "b"],
                        column_labels=["original", "binary", "mean"])
    assert png(tmp_path / "titled.png").size[1] > png(tmp_path / "plain.png").size[1]
    with pytest.raises(ValueError, match="column_labels has 2 labels for 3 columns"):
        viz.save_image_rows(rows, tmp_path / "x.png", column_labels=["a", "b"])
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("rows, labels, message", [
    ([], None, "rows is empty"),
    ([np.ones((2, 3, 3)), np.ones((2, 4, 4))], None,
     r"one size; got \(h, w\) = \(3, 3\), \(4, 4\)"),
    ([np.ones((2, 3, 3))], ["a", "b"], "2 labels for 1 rows"),
    ([np.ones((2, 9))], None, r"rows\[0\] must have shape"),
])
def test_bad_image_rows_give_clear_errors(tmp_path, rows, labels, message):
    with pytest.raises(ValueError, match=message):
        viz.save_image_rows(rows, tmp_path / "x.png", row_labels=labels)
    assert os.listdir(tmp_path) == []


def test_curves_with_gaps_and_different_lengths_make_a_png(tmp_path):
    path = tmp_path / "curves.png"
    viz.save_curves({"reconstruction_error": [0.5, None, 0.3, float("nan"), 0.2],
                     "free_energy_gap": np.array([1.0, 2.0])}, path, ylabel="value",
                    title="training")
    assert png(path).size == (640, 400)
    assert only_file_in(tmp_path, "curves.png")


def drawn_epochs(monkeypatch):
    """label -> the x data of each line matplotlib is asked to draw from now on."""
    import matplotlib.axes
    drawn, plot = {}, matplotlib.axes.Axes.plot

    def recording(axes, *args, **kwargs):
        lines = plot(axes, *args, **kwargs)
        drawn.update((line.get_label(), np.asarray(line.get_xdata()).tolist()) for line in lines)
        return lines
    monkeypatch.setattr(matplotlib.axes.Axes, "plot", recording)
    return drawn


def test_a_fits_history_draws_each_curve_at_the_epochs_that_logged_it(tmp_path, monkeypatch):
    """Oracle: Keras's validation_freq rule (validate after epochs 2 and 4, counted from 1)
    and its initial_epoch (a fit that goes on from epoch 4 trains epochs 5 and 6, counted from
    1): the History's val_loss, two numbers for four epochs, sat at epochs 1 and 2."""
    from test_fit_validation_freq import X_VALID, Y_VALID, X, Y, network
    drawn = drawn_epochs(monkeypatch)
    model = network()
    every_other = model.fit(X, Y, epochs=4, batch_size=8, verbose=0,
                            validation_data=(X_VALID, Y_VALID), validation_freq=2)
    viz.save_curves(every_other, tmp_path / "every_other.png")
    assert drawn["loss"] == [1, 2, 3, 4] and drawn["val_loss"] == [2, 4]
    went_on = model.fit(X, Y, epochs=2, batch_size=8, verbose=0,
                        validation_data=(X_VALID, Y_VALID))
    viz.save_curves(went_on, tmp_path / "went_on.png")
    assert drawn["loss"] == drawn["val_accuracy"] == [5, 6]
    assert went_on.epochs_of("val_loss") == [4, 5]
    png(tmp_path / "went_on.png")


def test_a_history_changed_after_its_fit_draws_its_curves_from_epoch_1(tmp_path, monkeypatch):
    """Oracle: the dict's rule (1, 2, ...) where the History's epochs no longer say where its
    numbers belong: two fits' lists joined (Keras's idiom) or lists set by hand. The joined
    History failed in matplotlib ("x and y must have same first dimension"), the hand-made one
    with a bare KeyError; a model, which has a history but is no History, was drawn."""
    from test_fit_validation_freq import X, Y, network
    drawn = drawn_epochs(monkeypatch)
    model = network()
    first = model.fit(X, Y, epochs=2, batch_size=8, verbose=0)
    then = model.fit(X, Y, epochs=1, batch_size=8, verbose=0)
    for name in first.history:
        first.history[name] += then.history[name]
    viz.save_curves(first, tmp_path / "joined.png")
    assert drawn["loss"] == [1, 2, 3]
    with pytest.raises(ValueError, match=r"history\['loss'\] holds 3 numbers where this "
                                         r"History logged 2: it was changed after the fit"):
        first.epochs_of("loss")
    by_hand = dlcore.callbacks.History()
    by_hand.history, by_hand.epoch = {"loss": [0.5, 0.25]}, [3, 4]
    viz.save_curves(by_hand, tmp_path / "by_hand.png")
    assert drawn["loss"] == [4, 5] and by_hand.epochs_of("loss") == [3, 4]
    with pytest.raises(ValueError, match="non-empty dict"):
        viz.save_curves(model, tmp_path / "model.png")


@pytest.mark.parametrize("curves, message", [
    ({}, "non-empty dict"),
    ([1, 2], "non-empty dict"),
    (dlcore.callbacks.History(), "the History holds no epoch to draw: its fit trained none"),
    ({"loss": [1, "x"]}, "curve 'loss' must be a sequence of numbers"),
    ({"loss": 3.0}, "curve 'loss' must be a sequence of numbers"),
])
def test_bad_curves_give_clear_errors(tmp_path, curves, message):
    with pytest.raises(ValueError, match=message):
        viz.save_curves(curves, tmp_path / "c.png")
    assert os.listdir(tmp_path) == []


def test_confusion_matrix_makes_a_png(tmp_path):
    counts = np.random.default_rng(5).integers(0, 50, size=(10, 10)) + 400 * np.eye(10, dtype=int)
    viz.save_confusion_matrix(counts, tmp_path / "cm.png",
                              class_names=[f"digit {i}" for i in range(10)])
    viz.save_confusion_matrix(counts / counts.sum(axis=1, keepdims=True), tmp_path / "norm.png")
    width, height = png(tmp_path / "cm.png").size
    assert width > height > 300
    png(tmp_path / "norm.png")
    assert sorted(os.listdir(tmp_path)) == ["cm.png", "norm.png"]


def test_a_confusion_matrix_says_what_it_is_of_and_what_its_colours_count(tmp_path,
                                                                          monkeypatch):
    figures = []
    save = viz._save_figure
    monkeypatch.setattr(viz, "_save_figure", lambda figure, path, **options: (
        figures.append(figure), save(figure, path, **options)))
    viz.save_confusion_matrix(np.eye(3, dtype=int) * 5, tmp_path / "cm.png",
                              title="fine-tuned DBN", counts_of="held-out test images")
    axes, bar = figures[0].axes
    assert axes.get_title() == "fine-tuned DBN"
    assert bar.get_ylabel() == "held-out test images"


@pytest.mark.parametrize("matrix, names, message", [
    (np.ones((2, 3)), None, r"square \(k, k\) with k >= 1; got shape \(2, 3\)"),
    (np.ones((0, 0)), None, "k >= 1"),
    (np.ones(4), None, "square"),
    (-np.ones((2, 2)), None, "non-negative"),
    (np.full((2, 2), np.nan), None, "finite"),
    (np.ones((2, 2)), ["a"], "1 names for a 2x2 matrix"),
])
def test_bad_confusion_matrices_give_clear_errors(tmp_path, matrix, names, message):
    with pytest.raises(ValueError, match=message):
        viz.save_confusion_matrix(matrix, tmp_path / "cm.png", class_names=names)
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------------------------
# Atomic writes and global state
# --------------------------------------------------------------------------------------------
def test_failed_write_leaves_the_previous_png_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "tiles.png"
    viz.save_tiles(np.ones((4, 2, 2)), path, zoom=1)
    before = path.read_bytes()

    def failing_replace(source, target):
        raise OSError("disk full")

    monkeypatch.setattr(hdf5.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        viz.save_tiles(np.ones((9, 2, 2)), path, zoom=1)
    with pytest.raises(OSError, match="disk full"):
        viz.save_curves({"loss": [1, 2]}, path)
    assert path.read_bytes() == before and only_file_in(tmp_path, "tiles.png")


def test_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        viz.save_tiles(np.ones((1, 2, 2)), tmp_path / "absent" / "t.png")


def test_viz_neither_imports_pyplot_nor_changes_the_backend(tmp_path):
    # The user chose the "svg" backend (MPLBACKEND); drawing PNGs must leave it so.
    script = (
        "import sys, numpy as np\n"
        "import dlcore, dlcore.viz as viz\n"
        "assert 'matplotlib' not in sys.modules, 'imported matplotlib at import'\n"
        f"viz.save_curves({{'a': [1, 2]}}, {str(tmp_path / 'c.png')!r})\n"
        f"viz.save_confusion_matrix(np.eye(2), {str(tmp_path / 'm.png')!r})\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'imported pyplot'\n"
        "import matplotlib\n"
        "assert matplotlib.get_backend() == 'svg', 'changed the backend'\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "MPLBACKEND": "svg"})
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------------------------
# Titled tiles, integer epochs, a second axis
# --------------------------------------------------------------------------------------------
def capture_figures(monkeypatch):
    """The matplotlib figures viz would save, kept for inspection (the files are written too)."""
    figures = []
    save = viz._save_figure

    def keep(figure, path, **options):
        figures.append(figure)
        save(figure, path, **options)

    monkeypatch.setattr(viz, "_save_figure", keep)
    return figures


def test_titled_tiles_are_each_enlarged_and_titled(tmp_path, monkeypatch):
    figures = capture_figures(monkeypatch)
    kernels = np.random.default_rng(0).normal(size=(6, 5, 5))
    viz.save_tiles(kernels, tmp_path / "f.png", zoom=16, n_columns=6, title="filters",
                   tile_titles=[f"filter {k + 1}" for k in range(6)])
    width, height = png(tmp_path / "f.png").size
    assert width >= 6 * 80 and height >= 80
    figure = figures[0]
    assert [text.get_text() for text in figure.texts] == [
        *(f"filter {k + 1}" for k in range(6)), "filters"]   # the figure's title last
    # each tile shows its own kernel, enlarged, scaled to its own range (black lowest, white
    # highest), its title centred above it
    assert len(figure.images) == 6
    first = np.asarray(figure.images[0].get_array())
    assert first.shape == (80, 80) and first.min() == 0 and first.max() == 255
    np.testing.assert_array_equal(first[::16, ::16], viz._to_grey_levels(kernels, "each")[0])
    for image, text in zip(figure.images, figure.texts[:6], strict=True):
        centre = (image.ox + 40) / (figure.get_figwidth() * viz.PLOT_DPI)
        assert text.get_position()[0] == pytest.approx(centre, abs=1e-3)
        assert text.get_position()[1] * figure.get_figheight() * viz.PLOT_DPI > image.oy + 80
    # the tiles drawn: each cell's pixels are its kernel's, in the PNG's grey levels
    assert len(np.unique(np.asarray(png(tmp_path / "f.png").convert("L")))) > 20
    assert only_file_in(tmp_path, "f.png")


def test_a_title_alone_is_drawn_above_the_exact_grid(tmp_path):
    viz.save_tiles(np.ones((4, 3, 3)), tmp_path / "plain.png", zoom=4)
    viz.save_tiles(np.ones((4, 3, 3)), tmp_path / "titled.png", zoom=4, title="samples")
    plain, titled = png(tmp_path / "plain.png").size, png(tmp_path / "titled.png").size
    assert titled[1] > plain[1] and titled[0] >= plain[0]
    # a title that is not text (a year, an epoch) is drawn as its text, as it was
    viz.save_tiles(np.ones((4, 3, 3)), tmp_path / "year.png", zoom=4, title=2026)
    assert png(tmp_path / "year.png").size[1] > plain[1]


def test_tile_titles_must_match_the_images(tmp_path):
    with pytest.raises(ValueError, match="tile_titles has 2 titles for 3 images"):
        viz.save_tiles(np.ones((3, 2, 2)), tmp_path / "x.png", tile_titles=["a", "b"])
    assert os.listdir(tmp_path) == []


def test_curves_have_whole_epoch_ticks_only(tmp_path, monkeypatch):
    figures = capture_figures(monkeypatch)
    viz.save_curves({"loss": [0.9, 0.5, 0.4]}, tmp_path / "c.png")
    ticks = figures[0].axes[0].get_xticks()
    visible = [t for t in ticks if 1 <= t <= 3]
    assert visible and all(float(t).is_integer() for t in ticks)


def test_secondary_curves_get_their_own_axis_and_join_the_legend(tmp_path, monkeypatch):
    figures = capture_figures(monkeypatch)
    viz.save_curves({"error": [0.05, 0.04]}, tmp_path / "c.png",
                    secondary={"free-energy gap": [2.0, 3.0]}, secondary_ylabel="gap")
    assert png(tmp_path / "c.png").size == (640, 400)
    left, right = figures[0].axes
    assert right.get_ylabel() == "gap"
    labels = [text.get_text() for text in left.get_legend().get_texts()]
    assert labels == ["error", "free-energy gap"]
    with pytest.raises(ValueError, match="secondary must be a non-empty dict"):
        viz.save_curves({"error": [1.0]}, tmp_path / "d.png", secondary={})


def test_signed_scale_puts_zero_at_mid_grey_in_every_tile_hand_computed():
    # tile 0 reaches |-4|, tile 1 |2|: -m -> 0, 0 -> 128, +m -> 255; white padding, not a weight
    images = np.array([[[-4.0, 0.0], [2.0, 4.0]], [[0.0, 1.0], [-2.0, 2.0]]])
    grid = viz.tile_images(images, n_columns=2, scale="signed")
    np.testing.assert_array_equal(grid, [[0, 128, 255, 128, 191],
                                         [191, 255, 255, 0, 255]])
    assert viz.tile_images(np.zeros((1, 2, 2)), scale="signed").tolist() == [[128, 128]] * 2


def test_a_key_names_what_black_and_white_stand_for(tmp_path, monkeypatch):
    figures = capture_figures(monkeypatch)
    images = np.array([[[-4.0, 0.0], [2.0, 4.0]], [[0.0, 1.0], [-2.0, 2.0]]])
    viz.save_tiles(images, tmp_path / "all.png", scale="all", key="weight")
    viz.save_tiles(images, tmp_path / "signed.png", scale="signed", key="weight", title="W")
    keys = [figure.axes[-1] for figure in figures]
    assert [t.get_text() for t in keys[0].get_xticklabels()] == ["-4", "0", "4"]
    assert [t.get_text() for t in keys[1].get_xticklabels()] == ["-m", "0", "+m"]
    assert keys[1].get_xlabel().endswith("from 2 to 4")
    with pytest.raises(ValueError, match="key goes with a grid"):
        viz.save_tiles(images, tmp_path / "x.png", key="weight", tile_titles=["a", "b"])
    assert sorted(os.listdir(tmp_path)) == ["all.png", "signed.png"]
