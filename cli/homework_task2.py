"""``dlcore homework task2``: an RBM trained on one photograph reconstructs another.

The "Deep Neural Networks" lecture, "Homework, Task 2": "Train RBM on an image from one category
(e.g., dog); do reconstruction on an image from other category (e.g., cat)", after the demo
"RBM for an Image": "Weights 49 x 10x10 obtained from training on image patches 10x10px",
"Reconstruction from binary features", "Reconstruction from non-binary features",
"Reconstruction of unseen image", and "Feature maps 49 x 166x166px".

The pipeline: every overlapping 10 x 10 patch of the training photograph, standardised
(:func:`dlcore.datasets.images.standardize`), trains a Gaussian-Bernoulli RBM
(:class:`dlcore.GaussianBernoulliRBM`: grey levels are real numbers, not binary). Each photograph
is then cut into all its patches, each patch reconstructed as the visible mean b + sigma W h with
h either a binary sample of Q(h | v) ("binary features") or Q(h = 1 | v) itself ("non-binary" or
mean features), and the patches put back by averaging their overlaps. Finally the 49 filters
slide over the test photograph as one Conv2D layer: its 49 maps of 166 x 166 are the hidden
probabilities of the patches at every position (:func:`rbm_feature_maps`).

The two photographs may have any sizes (patches are taken per image; the figure pads the
smaller one with grey); photographs larger than ``--max-size`` are scaled down first (a JPEG
while it is decoded, so that a phone's 200-megapixel photograph fits in memory; another format
up to Pillow's limit against decompression bombs, about 179 megapixels, reduced by a whole
factor as it is decoded: see :func:`dlcore.datasets.images.load_image`), and one smaller than a
patch, one too large to decode, or one of no contrast (a black frame, whose variance the error
table divides by) is refused before training.
"""
import csv
import os
from pathlib import Path

import click
import numpy as np

import dlcore
from dlcore import viz
from dlcore.cli._common import (
    RBM_HYPERPARAMETERS,
    Checkpoints,
    backend_option,
    checkpoint_option,
    home_expanded,
    out_folder_option,
    output_folder,
    publish_metrics,
    refuse_folder_or_missing_file,
    resume_option,
    resumed_options,
    resumed_rbm,
    saving_trained_model,
    seed_option,
    train_rbm,
    training_record,
)
from dlcore.cli._digits import save_weight_tiles
from dlcore.cli.homework import homework
from dlcore.datasets import images
from dlcore.io import atomic_open

DEFAULT_TRAIN_IMAGE, DEFAULT_TEST_IMAGE = "coffee", "chelsea"
#: What the bundled photographs show, as the help and the messages name them.
BUNDLED_SUBJECTS = {"coffee": "coffee cup", "chelsea": "cat"}
#: The names of the image files a message offers in a folder given for a photograph.
PHOTOGRAPH_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


class Photograph(click.Path):
    """A click parameter type for a photograph: an image file, or the name of a bundled one
    (``coffee``, ``chelsea``: what the help, docs/dbn.md and the outputs call them) when no
    file of that name exists. A bundled name stays a ``str``, a file becomes a ``Path``; None
    is the option's bundled default, ``default_name``."""

    name = "photograph"

    def __init__(self, default_name):
        super().__init__(exists=True, dir_okay=False, path_type=Path)
        self.default_name = default_name

    def convert(self, value, param, ctx):
        if isinstance(value, str) and value in images.BUNDLED_IMAGES \
                and not Path(value).exists():
            return value
        value = home_expanded(value)   # '~/cat.jpg' quoted, or after an equals sign
        bundled = " or ".join(f"{name} (the {subject})"
                              for name, subject in BUNDLED_SUBJECTS.items())
        if isinstance(value, (str, Path)) and os.path.isdir(value):
            refuse_folder_or_missing_file(self, value, param, ctx, "an image file",
                                          PHOTOGRAPH_SUFFIXES,
                                          f"give an image file, or {bundled}")
        if isinstance(value, (str, Path)) and not os.path.lexists(value):
            # Click's "File 'cat' does not exist." left out the bundled names the help gives
            self.fail(f"{os.fspath(value)!r} does not exist: give an image file, or {bundled}",
                      param, ctx)
        return super().convert(value, param, ctx)

    def describe(self, value):
        """``value`` in words, after "the": "bundled coffee cup (coffee)", or the file's
        path."""
        name = self.default_name if value is None else value
        if isinstance(name, str) and name in BUNDLED_SUBJECTS:
            return f"bundled {BUNDLED_SUBJECTS[name]} ({name})"
        return str(value)

    def canonical(self, value):
        """The photograph ``value`` names: None (the default) is its bundled name, a file its
        absolute path (``./cat.jpg`` is ``cat.jpg``, and a --resume file records it so)."""
        return self.default_name if value is None else self.recorded(value)

    def recorded(self, value):
        """``value`` as the training record keeps it: a file by its absolute path, so that a
        run resumed from another folder reads the same photograph."""
        return Path(value).resolve() if isinstance(value, Path) else value


#: Grey level of the padding around a smaller photograph in reconstructions.png.
PADDING_GREY = 0.5


def load_photograph(path, default_name, option, patch_size, max_size):
    """(name, (H, W) grey levels in [0, 1]) of ``path`` (a file, or a bundled photograph's
    name), or of the bundled ``default_name`` when ``path`` is None, scaled
    down to at most ``max_size`` pixels a side; a usage error when it cannot be read, is
    smaller than one patch or has no contrast (a standard deviation below
    :data:`dlcore.datasets.images.MIN_STD`)."""
    if path is None or isinstance(path, str) and path in images.BUNDLED_IMAGES:
        name = default_name if path is None else path
        image = images.load_bundled_image(name)
        width, height = image.shape[1], image.shape[0]
        image = images.downscale(image, max_size)
    else:
        name = Path(path).name
        try:
            # a large JPEG is reduced while it is decoded: a phone's photograph fits in memory
            image = images.load_image(path, max_size=max_size)
            width, height = images.image_size(path)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint=option) from None
    if max(width, height) > max_size:
        click.echo(f"{name}: scaled from {width} x {height} to {image.shape[1]} x "
                   f"{image.shape[0]} pixels (--max-size {max_size})", err=True)
    if patch_size > min(image.shape):
        raise click.BadParameter(f"{patch_size} is larger than the image {name} "
                                 f"({image.shape[1]} x {image.shape[0]} pixels): choose "
                                 f"--patch {min(image.shape)} or less, or a larger photograph",
                                 param_hint="--patch")
    contrast = float(np.std(image, dtype=np.float64))
    if contrast < images.MIN_STD:
        # A flat photograph (a black frame, a blank scan): standardised, its patches are all
        # zero, so there is nothing to learn from it, and its variance, which the table's
        # "mse / variance" divides by, is none.
        raise click.BadParameter(f"{name} has no contrast (the standard deviation of its grey "
                                 f"levels is {contrast:.4f}, below {images.MIN_STD}): "
                                 f"choose a photograph with something in it",
                                 param_hint=option)
    return name, image


def padded_to(image, shape):
    """``image`` centred on a ``shape`` canvas of PADDING_GREY (photographs of two sizes in
    one figure)."""
    canvas = np.full(shape, PADDING_GREY, dtype=np.float32)
    top, left = (shape[0] - image.shape[0]) // 2, (shape[1] - image.shape[1]) // 2
    canvas[top:top + image.shape[0], left:left + image.shape[1]] = image
    return canvas


def standardized_patches(image, patch_size, per_patch):
    """All overlapping patches of ``image``, standardised, and the scale that undoes it."""
    return images.standardize(images.extract_patches(image, patch_size), per_patch=per_patch)


def reconstruct_image(rbm, image, patch_size, per_patch, sample_hidden):
    """The photograph rebuilt from the RBM's reconstructions of all its patches: each patch
    becomes b + sigma W h (h a binary sample of Q(h | v), or Q(h = 1 | v) itself), its
    standardisation is undone, and overlapping patches are averaged."""
    z, scale = standardized_patches(image, patch_size, per_patch)
    patches = scale.undo(rbm.reconstruct(z, sample_hidden=sample_hidden))
    return images.reassemble_patches(patches, image.shape, patch_size)


def rbm_feature_maps(rbm, image, patch_size, per_patch, backend="auto"):
    """Q(h_j = 1 | patch) of every hidden unit at every patch position of ``image``, computed
    as one Conv2D layer with a sigmoid (the lecture's "Feature maps 49 x 166x166px").

    The hidden input of a standardised patch z = (x - m) / s is c_j + sum_i (z_i / sigma_i)
    W_ij. Folding the standardisation into the filter, with w_j = W_:j / (sigma s) as a
    P x P kernel:

        global  (m one number):    c_j + x . w_j - m sum(w_j)  -> kernel w_j, bias c_j - m sum(w_j)
        per patch (m = mean of x): c_j + x . (w_j - mean(w_j)) -> kernel w_j - mean(w_j), bias c_j

    so the convolution of the raw photograph gives exactly the RBM's hidden probabilities.

    Returns
    -------
    (n_hidden, H - P + 1, W - P + 1) float32
    """
    from dlcore.layers import Conv2D
    _, scale = standardized_patches(image, patch_size, per_patch)
    weights = rbm.W / (rbm.visible_sigma[:, None] * scale.std)          # (P * P, n_hidden)
    kernels = weights.T.reshape(-1, 1, patch_size, patch_size)
    if per_patch:
        kernels = kernels - kernels.mean(axis=(2, 3), keepdims=True)
        bias = rbm.hidden_bias
    else:
        bias = rbm.hidden_bias - scale.mean * weights.sum(axis=0)
    layer = Conv2D(kernels.shape[0], patch_size, activation="sigmoid",
                   kernel_initializer=kernels.astype(np.float32),
                   bias_initializer=bias.astype(np.float32))
    network = dlcore.Sequential([layer], input_shape=(1,) + image.shape, backend=backend)
    return network.predict(image[None, None].astype(np.float32))[0]


def reconstruction_rows(rbm, photographs, patch_size, per_patch):
    """For each (role, name, image): the reconstructions and their error per pixel."""
    rows = []
    for role, name, image in photographs:
        rebuilt = {kind: reconstruct_image(rbm, image, patch_size, per_patch, sample)
                   for kind, sample in (("binary", True), ("mean", False))}
        errors = {kind: float(np.mean((image - value) ** 2)) for kind, value in rebuilt.items()}
        rows.append((role, name, image, rebuilt, errors))
    return rows


def print_error_table(rows, patch_size):
    """Mean squared error per pixel (grey levels in [0, 1]) and the same divided by the
    image's variance: the fraction of its contrast the reconstruction misses, comparable
    between a contrasty and a soft photograph. Two lines above the table say so (the
    bare column names left a reader to guess what was measured, and which column to read)."""
    click.echo(f"each photograph cut into all its {patch_size}x{patch_size} patches, each "
               "reconstructed from a binary sample of h or from the means Q(h = 1 | v), put "
               "back together: mean squared error per pixel, grey levels in [0, 1]")
    click.echo("mse / variance (the error divided by the photograph's variance) is the one to "
               "compare: a flatter photograph has a smaller error however well it is rebuilt")
    click.echo(f"{'image':<24}  {'role':<8}  {'features':<8}  {'mse per pixel':>13}  "
               f"{'mse / variance':>14}")
    for role, name, image, _, errors in rows:
        for kind in ("binary", "mean"):
            click.echo(f"{name[:24]:<24}  {role:<8}  {kind:<8}  {errors[kind]:>13.6f}  "
                       f"{errors[kind] / float(image.var()):>14.4f}")


#: What :func:`write_outputs` writes in --out beside model.h5.
TASK2_OUTPUTS = ("filters.png", "reconstructions.png", "feature_maps.png",
                 "reconstruction_error.csv")


def write_outputs(folder, rbm, rows, feature_maps, patch_size):
    save_weight_tiles(rbm.W.T.reshape(-1, patch_size, patch_size), folder / "filters.png",
                      "Gaussian RBM filters: the weights from a patch's pixels to each hidden "
                      "unit", zoom=4)
    picture_rows, labels = [], []
    canvas = tuple(max(image.shape[axis] for _, _, image, _, _ in rows) for axis in (0, 1))
    for role, name, image, rebuilt, _ in rows:
        pictures = [image, np.clip(rebuilt["binary"], 0, 1), np.clip(rebuilt["mean"], 0, 1)]
        picture_rows.append(np.stack([padded_to(picture, canvas) for picture in pictures]))
        labels.append(f"{role}: {name}")
    viz.save_image_rows(picture_rows, folder / "reconstructions.png", row_labels=labels,
                        column_labels=["original", "from binary features",
                                       "from mean features"], zoom=2,
                        title=f"each photograph rebuilt from its {patch_size}x{patch_size} "
                              "patches' reconstructions")
    unseen = next(name for role, name, _, _, _ in rows if role == "unseen")
    viz.save_tiles(feature_maps, folder / "feature_maps.png", scale=None, padding=2, zoom=1,
                   title=f"feature maps: each hidden unit's Q(h = 1 | patch) at every "
                         f"position of the unseen {unseen} ({len(feature_maps)} maps of "
                         f"{feature_maps.shape[1]}x{feature_maps.shape[2]})",
                   key="hidden-unit probability Q(h = 1 | the patch at that position)")
    with atomic_open(folder / "reconstruction_error.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "role", "features", "mse", "mse_over_variance"])
        for role, name, image, _, errors in rows:
            for kind in ("binary", "mean"):
                writer.writerow([name, role, kind, f"{errors[kind]:.6f}",
                                 f"{errors[kind] / float(image.var()):.6f}"])


@homework.command("task2")
@click.option("--train-image", type=Photograph(DEFAULT_TRAIN_IMAGE), default=None,
              help="Photograph to train on: an image file, or 'coffee' or 'chelsea' for the "
                   "bundled coffee cup or cat [default: coffee].")
@click.option("--test-image", type=Photograph(DEFAULT_TEST_IMAGE), default=None,
              help="Photograph of another category to reconstruct: an image file, or "
                   "'coffee' or 'chelsea' [default: chelsea, the bundled cat].")
@click.option("--patch", "patch_size", type=click.IntRange(min=2), default=10,
              show_default=True, help="Side of the square patches (the lecture's 10x10px).")
@click.option("--hidden", type=click.IntRange(min=1), default=49, show_default=True,
              help="Hidden units = filters (the lecture shows 49).")
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), default=0.01,
              show_default=True, help="Gaussian visible units need 0.001-0.01.")
@click.option("--batch-size", type=click.IntRange(min=1), default=20, show_default=True,
              help="Training patches per mini-batch: one update of the weights each.")
@click.option("--sparsity-target", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=0.05, show_default=True,
              help="Mean activation the hidden units are pulled towards: sparse units learn "
                   "localised edges.")
@click.option("--standardize", "standardization", type=click.Choice(["patch", "global"]),
              default="patch", show_default=True,
              help="patch: remove each patch's mean brightness; global: one mean for the image.")
@click.option("--max-size", type=click.IntRange(min=2), default=256, show_default=True,
              help="Photographs larger than this many pixels a side are scaled down to it "
                   "(every patch of a phone photo would need gigabytes); a JPEG while it is "
                   "decoded, other formats up to Pillow's limit of about 179 megapixels.")
@seed_option
@backend_option
@out_folder_option("runs/task2")
@checkpoint_option
@resume_option
@resumed_options(RBM_HYPERPARAMETERS)
def task2(train_image, test_image, patch_size, hidden, epochs, learning_rate, batch_size,
          sparsity_target, standardization, max_size, seed, backend, out, checkpoint_every,
          resume):
    """Task 2: train an RBM on patches of one photograph, reconstruct another ("Deep Neural
    Networks" lecture, homework). The photographs may have different sizes.

    Writes filters.png (the lecture's "Weights 49 x 10x10"), reconstructions.png (a row per
    photograph: original, from binary features, from mean features), feature_maps.png
    ("Feature maps 49 x 166x166"), model.h5 and reconstruction_error.csv to --out, and prints
    the error table.
    """
    per_patch = standardization == "patch"
    train_name, train = load_photograph(train_image, DEFAULT_TRAIN_IMAGE, "--train-image",
                                        patch_size, max_size)
    test_name, test = load_photograph(test_image, DEFAULT_TEST_IMAGE, "--test-image",
                                      patch_size, max_size)
    if train.shape == test.shape and np.array_equal(train, test):
        # the table would call the training photograph "unseen": its rows are already there
        others = ", ".join(f"'{name}'" for name in images.BUNDLED_IMAGES if name != train_name)
        raise click.BadParameter(f"{test_name} is the photograph trained on (--train-image "
                                 f"{train_name}), whose rows the table already has as "
                                 f"'training': choose another photograph to reconstruct "
                                 f"unseen ({others}, or an image file)",
                                 param_hint="--test-image")
    folder = output_folder(out)
    z, _ = standardized_patches(train, patch_size, per_patch)
    if resume is None:
        rbm = dlcore.GaussianBernoulliRBM(n_hidden=hidden, learning_rate=learning_rate,
                                          sparsity_target=sparsity_target,
                                          batch_size=batch_size, epochs=epochs, seed=seed,
                                          backend=backend)
    else:
        rbm = resumed_rbm(resume, dlcore.GaussianBernoulliRBM, epochs, backend)
    checkpoints = Checkpoints(folder, checkpoint_every, outputs=["model.h5", *TASK2_OUTPUTS])
    click.echo(f"training a {z.shape[1]}-{rbm.n_hidden} Gaussian-Bernoulli RBM on {len(z)} "
               f"patches of {patch_size}x{patch_size} from {train_name}", err=True)
    # the patches are standardised: the training lines' error is in their units, not the table's
    train_rbm(rbm, z, checkpoints, resume is not None,
              unit="per standardised pixel on the training batches", rows="training patches")
    rbm.training_record_ = training_record(train_name, [], 1, n_patches=len(z),
                                           image_size=[int(side) for side in train.shape])
    publish_metrics(reconstruction_error=rbm.history["reconstruction_error"][-1])
    # before the reconstructions and feature maps (tens of seconds): a Ctrl-C there loses nothing
    with saving_trained_model(rbm, folder / "model.h5", checkpoints=checkpoints):
        rows = reconstruction_rows(rbm, [("training", train_name, train),
                                         ("unseen", test_name, test)], patch_size, per_patch)
        feature_maps = rbm_feature_maps(rbm, test, patch_size, per_patch, backend)
        write_outputs(folder, rbm, rows, feature_maps, patch_size)
    print_error_table(rows, patch_size)
    click.echo(f"wrote model.h5, filters.png, reconstructions.png, feature_maps.png "
               f"({feature_maps.shape[0]} x {feature_maps.shape[1]}x{feature_maps.shape[2]}) and "
               f"reconstruction_error.csv to {folder}")
