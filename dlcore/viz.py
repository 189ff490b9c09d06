"""Pictures as PNG files: image grids (RBM filters, digits and their reconstructions), training
curves and confusion matrices.

Everything here is non-interactive and writes files only. Image grids are built as NumPy arrays
and written with Pillow, pixel for pixel. Plots use matplotlib's object-oriented API with an
explicit Agg canvas created inside each function (``Figure`` + ``FigureCanvasAgg``), never
``pyplot``: pyplot keeps a global registry of open figures and a global backend, and switching the
backend (``matplotlib.use``) from a library would break the user's notebook. Importing
``dlcore.viz`` does not import matplotlib at all.

Every function writes atomically (a temporary file beside the target, then ``os.replace``; see
:func:`dlcore.io.atomic_output_path`) and creates no other file.
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

import numpy as np
from PIL import Image

from dlcore.io import atomic_output_path
from dlcore.wording import as_typed

__all__ = [
    "save_confusion_matrix",
    "save_curve_panels",
    "save_curves",
    "save_image_rows",
    "save_tiles",
    "tile_images",
]

SCALES = ("each", "all", "signed", None)
#: The grey between tiles: distinct from both the black and the white of scaled images.
PADDING_GREY = 128
#: The grey between tiles of ``scale="signed"``, whose mid-grey means zero: the page's white.
SIGNED_PADDING = 255
#: The cells of a grid's last row left without a tile: the page's white, not the padding grey,
#: whose whole cell read as one more tile (a sample of P = 0.5 everywhere).
EMPTY_CELL = 255
#: An empty cell of at least this many pixels a side is crossed out by its two diagonals in the
#: padding grey: white alone is also a tile of P = 1 everywhere in a picture of probabilities
#: (``scale=None``), and the cross is the frame's mark, not a tile's (a scaled tile always
#: holds a black pixel). Smaller cells have no room for a cross that leaves any white.
EMPTY_CELL_CROSS_MIN = 5
PLOT_DPI = 100


# --------------------------------------------------------------------------------------------
# Image grids
# --------------------------------------------------------------------------------------------
def tile_images(images, n_columns: int | None = None, padding: int = 1, scale: str | None = "each",
                padding_value: int | None = None) -> np.ndarray:
    """Arrange equally sized grey images in a grid, as one uint8 image.

    The tiles fill the grid row by row; ``padding`` pixels of ``padding_value`` separate
    neighbouring tiles (none around the border), and unused cells of the last row are the page's
    white (:data:`EMPTY_CELL`), crossed out in grey when at least
    :data:`EMPTY_CELL_CROSS_MIN` pixels a side, so that they do not read as tiles (not even as
    a tile of P = 1 under ``scale=None``). The result has shape::

        (n_rows * h + (n_rows - 1) * padding,  n_columns * w + (n_columns - 1) * padding)

    with ``n_rows = ceil(n / n_columns)``.

    Parameters
    ----------
    images : (n, h, w) array-like of real numbers, or (n, 1, h, w) (one NCHW channel).
        RBM filters come from the weights as ``W.T.reshape(n_hidden, 28, 28)``.
    n_columns : int >= 1, default ``ceil(sqrt(n))`` (a square-ish grid)
    padding : int >= 0, pixels between tiles
    scale : how values become grey levels 0..255
        ``"each"``: each tile's own min..max maps to 0..255 (right for RBM filters, whose
        weights have any sign and scale); ``"all"``: one min..max over all tiles, so tiles can be
        compared; ``"signed"``: each tile's own largest absolute value m maps -m to black, 0
        to mid-grey (128) and +m to white, so that mid-grey means zero in every tile (right
        for weights whose sign matters); ``None``: values are intensities in [0, 1], clipped,
        then times 255. A range with max == min maps to 0 (``"signed"``: an all-zero tile to
        mid-grey).
    padding_value : int in 0..255, grey level of the padding; default ``PADDING_GREY`` (128),
        or white (255) for ``scale="signed"``, whose mid-grey is a weight of zero

    Returns
    -------
    (height, width) uint8 array.

    Raises
    ------
    ValueError for a bad shape, an empty stack, NaN/inf values or a bad argument.
    """
    stack = _image_stack(images, "images")
    n_columns = _column_count(n_columns, len(stack))
    if padding_value is None:
        padding_value = SIGNED_PADDING if scale == "signed" else PADDING_GREY
    _check_padding(padding, padding_value)
    return _arrange_grid(_to_grey_levels(stack, scale), n_columns, padding, padding_value)


def save_tiles(images, path: str | os.PathLike, n_columns: int | None = None, padding: int = 1,
               scale: str | None = "each", zoom: int = 2, title: str | None = None,
               tile_titles: Sequence[str] | None = None, key: str | None = None) -> None:
    """Write :func:`tile_images` of ``images`` to the PNG file ``path``.

    Parameters
    ----------
    images, n_columns, padding, scale : as in :func:`tile_images`
    path : str or os.PathLike, the PNG file (replaced if it exists; its directory must exist)
    zoom : int >= 1, every pixel becomes a zoom x zoom block (nearest neighbour, no blur)
    title : drawn above the grid (with matplotlib); without it and ``tile_titles`` the PNG is
        exactly the grid, zoomed
    tile_titles : one string per image, drawn above its tile (e.g. "filter 1"); the tiles are
        then spaced apart so that the titles fit
    key : what the values are (e.g. "weight"): a grey-scale key is drawn below the grid,
        naming what black, mid-grey and white stand for under ``scale`` (for ``"signed"``:
        -m, 0 and +m, m being each tile's largest absolute value, whose range it gives; for
        ``"all"``: the values themselves). Not with ``tile_titles``.
    """
    stack = _image_stack(images, "images")
    if tile_titles is not None and len(tile_titles) != len(stack):
        raise ValueError(f"tile_titles has {len(tile_titles)} titles for {len(stack)} images")
    if tile_titles is not None and key is not None:
        raise ValueError("key goes with a grid, not with tile_titles; give one of them")
    grid = tile_images(stack, n_columns=n_columns, padding=padding, scale=scale)
    if title is None and tile_titles is None and key is None:
        _write_png(_zoomed(grid, zoom), path)
    elif tile_titles is None:
        _write_titled_grid(_zoomed(grid, zoom), None if title is None else str(title), path,
                           None if key is None else _grey_key(stack, scale, str(key)))
    else:
        _check_zoom(zoom)
        _write_titled_tiles(_to_grey_levels(stack, scale), [str(t) for t in tile_titles],
                            _column_count(n_columns, len(stack)), zoom, title, path)


def save_image_rows(rows: Sequence, path: str | os.PathLike,
                    row_labels: Sequence[str] | None = None, scale: str | None = None,
                    zoom: int = 2, column_labels: Sequence[str] | None = None,
                    title: str | None = None) -> None:
    """Write rows of images as one PNG grid: e.g. digits above their reconstructions.

    Row ``i`` shows the images of ``rows[i]`` from left to right; rows may hold different numbers
    of images (a shorter row ends in the page's white). One pixel of padding separates all
    tiles. With ``scale="all"`` one range covers every row, so rows can be compared.

    Parameters
    ----------
    rows : sequence of (n_i, h, w) array-likes (or (n_i, 1, h, w)); the same h and w in all
    path : str or os.PathLike, the PNG file
    row_labels : one string per row, drawn left of the rows with matplotlib; without labels the
        PNG is written with Pillow and is exactly the grid, zoomed
    scale : ``None`` (default: values are intensities in [0, 1]), ``"all"`` or ``"each"``, as in
        :func:`tile_images`
    zoom : int >= 1, pixel magnification (nearest neighbour)
    column_labels : one string per column (as many as the longest row), drawn above the grid,
        e.g. "original", "reconstruction"
    title : what the figure shows, drawn above everything (with matplotlib)

    Raises
    ------
    ValueError when ``rows`` is empty, the images differ in size, or the labels do not match.
    """
    stacks = [_image_stack(row, f"rows[{index}]") for index, row in enumerate(rows)]
    if not stacks:
        raise ValueError("rows is empty; give at least one (n, h, w) array")
    tile_shapes = {stack.shape[1:] for stack in stacks}
    if len(tile_shapes) > 1:
        raise ValueError(f"all rows need images of one size; got (h, w) = "
                         f"{', '.join(str(shape) for shape in sorted(tile_shapes))}")
    if row_labels is not None and len(row_labels) != len(stacks):
        raise ValueError(f"row_labels has {len(row_labels)} labels for {len(stacks)} rows")
    n_columns = max(len(stack) for stack in stacks)
    if column_labels is not None and len(column_labels) != n_columns:
        raise ValueError(f"column_labels has {len(column_labels)} labels for {n_columns} "
                         "columns")
    _check_zoom(zoom)
    grid = _rows_grid(stacks, scale)
    if row_labels is None and column_labels is None and title is None:
        _write_png(_zoomed(grid, zoom), path)
    else:
        _write_labelled_rows(grid, [str(label) for label in row_labels or [""] * len(stacks)],
                             [str(label) for label in column_labels or []],
                             tile_shape=stacks[0].shape[1:], zoom=zoom, path=path,
                             title=None if title is None else str(title))


def _rows_grid(stacks: list[np.ndarray], scale: str | None) -> np.ndarray:
    # Scale all rows together (so "all" means all rows), then split them again.
    grey = _to_grey_levels(np.concatenate(stacks), scale)
    widest = max(len(stack) for stack in stacks)
    boundaries = np.cumsum([len(stack) for stack in stacks])[:-1]
    row_grids = [_arrange_grid(row, widest, 1, PADDING_GREY) for row in np.split(grey, boundaries)]
    separator = np.full((1, row_grids[0].shape[1]), PADDING_GREY, np.uint8)
    pieces = [piece for row in row_grids for piece in (row, separator)][:-1]
    return np.concatenate(pieces)


def _image_stack(images, name: str) -> np.ndarray:
    """``images`` as a float64 (n, h, w) array, with the checks every grid function needs."""
    try:
        stack = np.asarray(images, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an array of numbers of shape (n, h, w)") from None
    if stack.ndim == 4 and stack.shape[1] == 1:
        stack = stack[:, 0]  # one NCHW channel
    if stack.ndim != 3:
        hint = (" (a flat image per row? reshape it, e.g. W.T.reshape(-1, 28, 28))"
                if stack.ndim == 2 else "")
        raise ValueError(f"{name} must have shape (n, h, w) or (n, 1, h, w); got shape "
                         f"{stack.shape}{hint}")
    if 0 in stack.shape:
        raise ValueError(f"{name} has shape {stack.shape}; need at least one image of at least "
                         f"1x1 pixels")
    not_finite = np.count_nonzero(~np.isfinite(stack))
    if not_finite:
        raise ValueError(f"{name} has {not_finite} NaN or infinite values; a diverged training "
                         f"run shows up this way")
    return stack


def _column_count(n_columns: int | None, n_images: int) -> int:
    if n_columns is None:
        return math.ceil(math.sqrt(n_images))
    if isinstance(n_columns, bool) or not isinstance(n_columns, (int, np.integer)) \
            or n_columns < 1:
        raise ValueError(f"n_columns must be a positive integer or None; got {as_typed(n_columns)}")
    return int(n_columns)


def _check_padding(padding: int, padding_value: int) -> None:
    if isinstance(padding, bool) or not isinstance(padding, (int, np.integer)) or padding < 0:
        raise ValueError(f"padding must be an integer >= 0; got {as_typed(padding)}")
    if not isinstance(padding_value, (int, np.integer)) or not 0 <= padding_value <= 255:
        raise ValueError(f"padding_value must be an integer grey level in 0..255; "
                         f"got {as_typed(padding_value)}")


def _check_zoom(zoom: int) -> None:
    if isinstance(zoom, bool) or not isinstance(zoom, (int, np.integer)) or zoom < 1:
        raise ValueError(f"zoom must be an integer >= 1; got {as_typed(zoom)}")


def _to_grey_levels(stack: np.ndarray, scale: str | None) -> np.ndarray:
    """(n, h, w) floats -> (n, h, w) uint8 according to ``scale`` (see tile_images)."""
    if scale is None:
        unit = np.clip(stack, 0.0, 1.0)
    elif scale == "signed":
        reach = np.abs(stack).max(axis=(1, 2), keepdims=True)
        unit = 0.5 + 0.5 * np.divide(stack, reach, out=np.zeros_like(stack), where=reach > 0)
    elif scale in ("each", "all"):
        axes = (1, 2) if scale == "each" else None
        low = stack.min(axis=axes, keepdims=True)
        span = stack.max(axis=axes, keepdims=True) - low
        # An empty range (a constant tile) maps to 0 rather than dividing by zero.
        unit = np.divide(stack - low, span, out=np.zeros_like(stack), where=span > 0)
    else:
        raise ValueError(f"scale must be one of {SCALES}; got {scale!r}")
    return np.rint(unit * 255.0).astype(np.uint8)


def _arrange_grid(tiles: np.ndarray, n_columns: int, padding: int,
                  padding_value: int) -> np.ndarray:
    """(n, h, w) uint8 tiles -> one (rows*h + (rows-1)*padding, ...) uint8 grid, row by row."""
    n, h, w = tiles.shape
    n_rows = math.ceil(n / n_columns)
    # Give every tile its padding below and to the right, add blank cells to fill the last row,
    # lay the cells out as (rows, h+p, columns, w+p), and cut the padding off the outer edge.
    cells = np.full((n_rows * n_columns, h + padding, w + padding), padding_value, np.uint8)
    cells[n:] = EMPTY_CELL
    if n_rows * n_columns > n and min(h, w) >= EMPTY_CELL_CROSS_MIN:
        rows = np.arange(max(h, w))
        down = np.rint(rows * (h - 1) / (len(rows) - 1)).astype(int)
        across = np.rint(rows * (w - 1) / (len(rows) - 1)).astype(int)
        cells[n:, down, across] = PADDING_GREY
        cells[n:, down, w - 1 - across] = PADDING_GREY
    cells[:n, :h, :w] = tiles
    grid = cells.reshape(n_rows, n_columns, h + padding, w + padding).transpose(0, 2, 1, 3)
    grid = grid.reshape(n_rows * (h + padding), n_columns * (w + padding))
    return np.ascontiguousarray(grid[: grid.shape[0] - padding, : grid.shape[1] - padding])


def _zoomed(grid: np.ndarray, zoom: int) -> np.ndarray:
    _check_zoom(zoom)
    return np.repeat(np.repeat(grid, zoom, axis=0), zoom, axis=1)


def _write_png(grey: np.ndarray, path: str | os.PathLike) -> None:
    with atomic_output_path(path) as temporary:
        # format= because the temporary file's name does not end in .png
        Image.fromarray(grey, mode="L").save(temporary, format="PNG")


# --------------------------------------------------------------------------------------------
# Plots (matplotlib, Agg canvas, no pyplot)
# --------------------------------------------------------------------------------------------
def _new_figure(width_inches: float, height_inches: float):
    """A figure drawn by an Agg canvas of its own: no pyplot, no global backend change."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width_inches, height_inches), dpi=PLOT_DPI)
    FigureCanvasAgg(figure)
    return figure


def _save_figure(figure, path: str | os.PathLike, **savefig_options) -> None:
    with atomic_output_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=PLOT_DPI, **savefig_options)


def _write_labelled_rows(grid: np.ndarray, labels: list[str], column_labels: list[str],
                         tile_shape: tuple, zoom: int, path: str | os.PathLike,
                         title: str | None = None) -> None:
    height, width = grid.shape
    tile_height, tile_width = tile_shape
    label_margin = 0.12 * max(len(label) for label in labels) + 0.3  # inches, roughly
    heading = 0.35 if title else 0.0
    title_margin = (0.3 if column_labels else 0.0) + heading
    figure = _new_figure(max(width * zoom / PLOT_DPI + label_margin,
                             0.09 * len(title or "") + 0.3),
                         height * zoom / PLOT_DPI + title_margin)
    axes = figure.add_axes((label_margin / figure.get_figwidth(), 0.0,
                            1.0 - label_margin / figure.get_figwidth(),
                            1.0 - title_margin / figure.get_figheight()))
    axes.imshow(grid, cmap="gray", vmin=0, vmax=255, interpolation="nearest", aspect="equal")
    row_centres = [row * (tile_height + 1) + (tile_height - 1) / 2 for row in range(len(labels))]
    axes.set_yticks(row_centres, labels)
    column_centres = [column * (tile_width + 1) + (tile_width - 1) / 2
                      for column in range(len(column_labels))]
    axes.set_xticks(column_centres, column_labels)
    axes.xaxis.tick_top()
    axes.tick_params(length=0)
    for spine in axes.spines.values():
        spine.set_visible(False)
    if title:
        figure.suptitle(title, y=1.0 - 0.05 / figure.get_figheight(), va="top")
    _save_figure(figure, path, facecolor="white")


def _grey_key(stack: np.ndarray, scale: str | None, name: str) -> tuple[list[str], str]:
    """What black, mid-grey and white stand for under ``scale``, and the key's caption."""
    if scale == "signed":
        reach = np.abs(stack).max(axis=(1, 2))
        return (["-m", "0", "+m"],
                f"{name}; m: each tile's own largest |{name}|, "
                f"from {reach.min():.3g} to {reach.max():.3g}")
    if scale == "each":
        return (["lowest", "middle", "highest"],
                f"{name}, each tile from its own lowest to its own highest")
    if scale == "all":
        low, high = float(stack.min()), float(stack.max())
        return [f"{value:.3g}" for value in (low, (low + high) / 2, high)], name
    return ["0", "0.5", "1"], name


def _write_titled_grid(grey: np.ndarray, title: str | None, path: str | os.PathLike,
                       key: tuple[list[str], str] | None = None) -> None:
    """A uint8 grid shown pixel for pixel under a title line, and above a grey-scale key
    (its three tick labels, black to white, and its caption) when ``key`` is given."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    height, width = grey.shape
    title_margin = 0.35 if title else 0.05  # inches
    key_margin = 0.85 if key else 0.0
    texts = [title or ""] + ([key[1]] if key else [])
    figure = _new_figure(max(width / PLOT_DPI, 0.09 * max(map(len, texts)) + 0.3),
                         height / PLOT_DPI + title_margin + key_margin)
    figure_width, figure_height = figure.get_figwidth(), figure.get_figheight()
    left = (figure_width - width / PLOT_DPI) / 2 / figure_width   # centred
    axes = figure.add_axes((left, key_margin / figure_height, width / PLOT_DPI / figure_width,
                            height / PLOT_DPI / figure_height))
    axes.imshow(grey, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    axes.set_axis_off()
    if title:
        figure.suptitle(title, y=1.0 - 0.05 / figure_height, va="top")
    if key:
        bar_width = min(3.0, width / PLOT_DPI)
        key_axes = figure.add_axes(((figure_width - bar_width) / 2 / figure_width,
                                    0.55 / figure_height, bar_width / figure_width,
                                    0.12 / figure_height))
        bar = figure.colorbar(ScalarMappable(Normalize(0, 255), "gray"), cax=key_axes,
                              orientation="horizontal", ticks=[0, 127.5, 255])
        bar.ax.set_xticklabels(key[0])
        bar.set_label(key[1])
    _save_figure(figure, path, facecolor="white")


def _write_titled_tiles(tiles: np.ndarray, tile_titles: list[str], n_columns: int, zoom: int,
                        title: str | None, path: str | os.PathLike) -> None:
    """Each (h, w) uint8 tile enlarged ``zoom`` times in a cell of its own, its title above.

    The tiles are placed as figure images at whole pixels and the titles as figure texts: an
    axes per tile took ~10 ms each to make and draw (3.3 s for the 256 units of an MLP's
    first layer)."""
    n, height, width = tiles.shape
    n_rows = math.ceil(n / n_columns)
    title_space = 0.25                                   # inches above each tile
    cell_width = max(width * zoom / PLOT_DPI, 0.075 * max(map(len, tile_titles)) + 0.1)
    cell_height = height * zoom / PLOT_DPI + title_space
    top = 0.4 if title else 0.0
    gap = 0.1
    grid_width = n_columns * (cell_width + gap) + gap
    title_width = 0.1 * len(title) + 0.4 if title else 0.0   # inches at the default font
    figure = _new_figure(max(grid_width, title_width),
                         n_rows * cell_height + (n_rows + 1) * gap + top)
    figure_width, figure_height = figure.get_figwidth(), figure.get_figheight()
    margin = (figure_width - grid_width) / 2                  # centres the tiles
    for index in range(n):
        row, column = divmod(index, n_columns)
        left = margin + gap + column * (cell_width + gap) \
            + (cell_width - width * zoom / PLOT_DPI) / 2
        bottom = figure_height - top - (row + 1) * (cell_height + gap)
        figure.figimage(_zoomed(tiles[index], zoom), xo=round(left * PLOT_DPI),
                        yo=round(bottom * PLOT_DPI), cmap="gray", vmin=0, vmax=255, origin="upper")
        figure.text((left + width * zoom / PLOT_DPI / 2) / figure_width,
                    (bottom + height * zoom / PLOT_DPI + 0.04) / figure_height,
                    tile_titles[index], fontsize=8, ha="center", va="bottom")
    if title:
        figure.suptitle(title, y=1.0 - 0.08 / figure_height, va="top")
    _save_figure(figure, path, facecolor="white")


def save_curves(curves: Mapping[str, Sequence], path: str | os.PathLike, xlabel: str = "epoch",
                ylabel: str | None = None, title: str | None = None,
                secondary: Mapping[str, Sequence] | None = None,
                secondary_ylabel: str | None = None) -> None:
    """Plot training curves, one line per entry, with a legend and a grid, to a PNG file.

    The x axis counts from 1 (the first epoch), with whole-number ticks only. ``None`` and NaN
    values are gaps: the line breaks there (an isolated value between gaps still shows as a
    dot). ``secondary`` curves, of another unit or scale (a free-energy gap beside a
    reconstruction error), are drawn dashed against a second y axis on the right.

    Given the History a ``fit`` returned, each curve is drawn at the epochs it was logged in
    (:meth:`dlcore.callbacks.History.epochs_of`, plus 1): the ``val_`` curves of a fit with
    ``validation_freq=2`` at epochs 2, 4, ..., joined by a line, and the curves of a fit that
    went on from epoch 3 (a loaded network's, ``initial_epoch=3``) from epoch 4. Its dict,
    ``history.history``, has no epochs: its curves would start at 1, and a shorter ``val_``
    list would sit at the first epochs. An object with Keras's ``history`` and ``epoch`` (a
    Keras History) draws its curves of one number an epoch at ``epoch`` plus 1.

    Parameters
    ----------
    curves : dict name -> sequence of numbers (None allowed), whose sequences may differ in
        length, e.g. ``{"loss": model.history["loss"], "val_loss": model.history["val_loss"]}``
        (the whole ``model.history`` would draw its ``seconds`` and ``learning_rate`` on the
        same axis); or the :class:`dlcore.callbacks.History` of a ``fit``
    path : str or os.PathLike, the PNG file
    xlabel, ylabel, title : axis labels and title (ylabel defaults to the name when there is only
        one curve)
    secondary : dict name -> sequence of numbers, optional, on the right-hand axis
    secondary_ylabel : label of the right-hand axis (default: the name of a single curve)

    Raises
    ------
    ValueError when ``curves`` is empty or a value is not a number.
    """
    series = _epoch_series(curves)
    if secondary is not None and (not isinstance(secondary, Mapping) or not secondary):
        raise ValueError("secondary must be a non-empty dict name -> sequence of numbers")
    right = {str(name): _curve_values(name, values) for name, values in (secondary or {}).items()}
    from matplotlib.ticker import MaxNLocator

    figure = _new_figure(6.4, 4.0)
    axes = figure.add_subplot()
    lines = _plot_series(axes, series)
    axes.set_xlabel(xlabel)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    if ylabel is not None or len(series) == 1:
        axes.set_ylabel(ylabel if ylabel is not None else next(iter(series)))
    if right:
        twin = axes.twinx()
        colours = iter(f"C{index}" for index in range(len(series), len(series) + len(right)))
        for name, values in right.items():
            lines += twin.plot(np.arange(1, len(values) + 1), values, marker=".", markersize=4,
                               linestyle="--", color=next(colours), label=name)
        if secondary_ylabel is not None or len(right) == 1:
            twin.set_ylabel(secondary_ylabel if secondary_ylabel is not None
                            else next(iter(right)))
    if title is not None:
        axes.set_title(title)
    axes.grid(True, alpha=0.4)
    axes.legend(lines, [line.get_label() for line in lines])
    figure.tight_layout()
    _save_figure(figure, path)


def _epoch_series(curves) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """name -> (epochs counted from 1, values) of ``curves``: a dict's values at 1, 2, ...; a
    History's (dlcore's or Keras's: ``history`` and ``epoch``) at the epochs that logged them."""
    logged = getattr(curves, "history", None)
    if not isinstance(curves, Mapping) and isinstance(logged, Mapping) and \
            hasattr(curves, "epoch"):
        if not logged:
            raise ValueError("the History holds no epoch to draw: its fit trained none")
        pairs = ((name, _curve_values(name, values)) for name, values in logged.items())
        return {str(name): (_history_epochs(curves, name, len(values)), values)
                for name, values in pairs}
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError("curves must be a non-empty dict name -> sequence of numbers, or the "
                         "History a fit returned")
    return {str(name): (np.arange(1, len(values) + 1), values)
            for name, values in ((name, _curve_values(name, values))
                                 for name, values in curves.items())}


def _history_epochs(history, name, n: int) -> np.ndarray:
    """The epochs, counted from 1, of the ``n`` numbers of ``history.history[name]``: its
    ``epochs_of`` (dlcore's History), else its ``epoch`` (Keras's, one number an epoch); 1 to
    ``n`` where neither says, as for a dict (two fits' lists joined after the fits)."""
    try:
        epochs = history.epochs_of(name) if hasattr(history, "epochs_of") else \
            list(history.epoch or [])
    except ValueError:
        epochs = []
    if len(epochs) != n:
        return np.arange(1, n + 1)
    return np.asarray(epochs, dtype=np.float64) + 1


def _plot_series(axes, series: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> list:
    """One line per curve, at its epochs; the matplotlib lines drawn."""
    lines = []
    for name, (epochs, values) in series.items():
        lines += axes.plot(epochs, values, marker=".", markersize=4, label=name)
    return lines


def save_curve_panels(panels: Mapping[str, Mapping[str, Sequence]], path: str | os.PathLike,
                      xlabel: str = "epoch", ylabel: str | None = None,
                      title: str | None = None, ylim: tuple | None = None) -> None:
    """Curves side by side in panels that share the y axis (e.g. the training error of every
    method on the left, their test error on the right), one legend below them; a curve keeps
    its colour in every panel.

    Parameters
    ----------
    panels : dict panel title -> dict curve name -> sequence of numbers (None: a gap)
    path, xlabel, ylabel, title : as for :func:`save_curves`
    ylim : (bottom, top) of the shared y axis, e.g. to leave out the first epochs' large
        errors; None: matplotlib's choice

    Raises
    ------
    ValueError when ``panels`` or one of its panels is empty or a value is not a number.
    """
    if not isinstance(panels, Mapping) or not panels or not all(
            isinstance(curves, Mapping) and curves for curves in panels.values()):
        raise ValueError("panels must be a non-empty dict title -> non-empty dict name -> "
                         "sequence of numbers")
    from matplotlib.ticker import MaxNLocator

    names = list(dict.fromkeys(str(name) for curves in panels.values() for name in curves))
    colours = {name: f"C{index % 10}" for index, name in enumerate(names)}
    styles = {name: ("-" if index < 10 else "--") for index, name in enumerate(names)}
    figure = _new_figure(5.0 * len(panels), 4.0 + 0.22 * math.ceil(len(names) / 4))
    axes_list = figure.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    handles = {}
    for axes, (panel, curves) in zip(axes_list, panels.items()):
        for name, values in curves.items():
            values = _curve_values(name, values)
            line, = axes.plot(np.arange(1, len(values) + 1), values, marker=".",
                              markersize=3, color=colours[str(name)],
                              linestyle=styles[str(name)], label=str(name))
            handles.setdefault(str(name), line)
        axes.set_title(str(panel))
        axes.set_xlabel(xlabel)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(True, alpha=0.4)
    if ylabel is not None:
        axes_list[0].set_ylabel(ylabel)
    if ylim is not None:
        axes_list[0].set_ylim(*ylim)
    if title is not None:
        figure.suptitle(title)
    figure.legend([handles[name] for name in names], names, loc="lower center",
                  ncol=min(4, len(names)), fontsize=8, frameon=False)
    figure.tight_layout(rect=(0, 0.06 + 0.045 * math.ceil(len(names) / 4), 1, 1))
    _save_figure(figure, path)


def _curve_values(name, values) -> np.ndarray:
    try:
        return np.array([np.nan if value is None else float(value) for value in values],
                        dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"curve {name!r} must be a sequence of numbers (None for gaps)") from None


def save_confusion_matrix(matrix, path: str | os.PathLike,
                          class_names: Sequence[str] | None = None, title: str | None = None,
                          counts_of: str | None = None) -> None:
    """Draw a confusion matrix as a PNG image with the count written in every cell.

    Rows are the true classes and columns the predicted ones (as in scikit-learn), so the
    diagonal holds the correct predictions. Darker cells hold more; each number is written in
    white on dark cells and in black on light ones.

    Parameters
    ----------
    matrix : (k, k) array-like of non-negative counts (integers are written as integers, other
        values with two decimals, e.g. a row-normalised matrix)
    path : str or os.PathLike, the PNG file
    class_names : k strings, default ``"0" .. "k-1"``
    title : what the matrix is of, drawn above it (e.g. "DBN fine-tuned on mnist-5k")
    counts_of : what the cells count, the colour bar's label (e.g. "held-out test images")

    Raises
    ------
    ValueError when the matrix is not square, empty, negative or not finite, or the names do
    not match.
    """
    counts = _confusion_counts(matrix)
    k = counts.shape[0]
    names = [str(index) for index in range(k)] if class_names is None else \
        [str(name) for name in class_names]
    if len(names) != k:
        raise ValueError(f"class_names has {len(names)} names for a {k}x{k} matrix")
    side = max(4.0, 0.55 * k + 2.0)
    figure = _new_figure(side + 1.0, side)
    axes = figure.add_subplot()
    image = axes.imshow(counts, cmap="Blues", vmin=0, interpolation="nearest")
    bar = figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    if counts_of is not None:
        bar.set_label(str(counts_of))
    if title:
        axes.set_title(str(title))
    long_names = max(len(name) for name in names) > 3  # would overlap unless slanted
    axes.set_xticks(range(k), names, rotation=45 if long_names else 0,
                    ha="right" if long_names else "center")
    axes.set_yticks(range(k), names)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    _write_cell_numbers(axes, counts)
    figure.tight_layout()
    _save_figure(figure, path)


def _confusion_counts(matrix) -> np.ndarray:
    try:
        counts = np.asarray(matrix, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("matrix must be a (k, k) array of counts") from None
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] == 0:
        raise ValueError(f"matrix must be square (k, k) with k >= 1; got shape {counts.shape}")
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise ValueError("matrix must hold finite, non-negative counts")
    return counts


def _write_cell_numbers(axes, counts: np.ndarray) -> None:
    k = counts.shape[0]
    whole = np.all(counts == np.round(counts))
    threshold = counts.max() / 2.0
    font_size = max(5, min(10, 120 // k))
    for row in range(k):
        for column in range(k):
            value = counts[row, column]
            text = f"{int(value)}" if whole else f"{value:.2f}"
            colour = "white" if value > threshold else "black"
            axes.text(column, row, text, ha="center", va="center", color=colour,
                      fontsize=font_size)
