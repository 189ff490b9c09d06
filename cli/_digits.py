"""Digit data and RBM pictures shared by ``dlcore homework task1`` and ``dlcore rbm ...``."""
import click
import numpy as np

from dlcore import datasets, viz

# Held-out images per class when the data set has no test split (the bundled mnist-5k).
HELD_OUT_PER_CLASS = 100


def parse_digits(option, text):
    """The classes named by ``text`` ('1-5', '0,2,4'), or a usage error naming ``option``."""
    try:
        return datasets.parse_classes(text)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint=option) from None


def load_digit_split(dataset, train_digits, test_digits, seed):
    """Training images of ``train_digits`` and held-out images and labels of ``test_digits``,
    as float32 (n, pixels) in [0, 1]. The bundled mnist-5k keeps 100 images per class out of
    training; the other data sets use their official test split."""
    if dataset == "mnist-5k":
        images, labels = datasets.load_dataset(dataset)
        train_rows, test_rows = datasets.holdout_split(labels, HELD_OUT_PER_CLASS, seed=seed)
        train = (images[train_rows], labels[train_rows])
        test = (images[test_rows], labels[test_rows])
    else:
        train = datasets.load_dataset(dataset, split="train")
        test = datasets.load_dataset(dataset, split="test")
    train_images, _ = datasets.select_classes(*train, train_digits)
    test_images, test_labels = datasets.select_classes(*test, test_digits)
    if len(train_images) == 0:
        raise click.BadParameter(f"no training images of classes {train_digits} in {dataset}",
                                 param_hint="--train-digits")
    return (datasets.to_unit_interval(train_images), datasets.to_unit_interval(test_images),
            test_labels)


def image_side(n_pixels):
    side = int(round(np.sqrt(n_pixels)))
    if side * side != n_pixels:
        raise click.ClickException(f"cannot draw {n_pixels} visible units as a square image")
    return side


def reconstruction_table(rbm, images, labels, train_digits):
    """Per class: mean squared error per pixel between held-out images and their one-pass
    mean-field reconstructions. Rows of (digit, seen_in_training, mse, n_images)."""
    rows = []
    for digit in sorted(set(labels.tolist())):
        x = images[labels == digit]
        mse = float(np.mean((x - rbm.reconstruct(x)) ** 2))
        rows.append((int(digit), digit in train_digits, mse, len(x)))
    return rows


def print_reconstruction_table(table):
    click.echo("digit  seen in training  mse per pixel  images")
    for digit, seen, mse, n in table:
        click.echo(f"{digit:>5}  {'yes' if seen else 'no (unseen)':<16}  {mse:>13.5f}  {n:>6}")
    for name, wanted in (("seen", True), ("unseen", False)):
        errors = [mse for _, seen, mse, _ in table if seen == wanted]
        if errors:
            click.echo(f"mean over {name} digits: {np.mean(errors):.5f}")


def save_filters(rbm, path):
    """Every hidden unit's incoming weights as one tile (the lecture's 'Weights 49 x 16x16')."""
    side = image_side(rbm.W.shape[0])
    viz.save_tiles(rbm.W.T.reshape(-1, side, side), path, scale="each")


def save_reconstruction_grid(rbm, images, labels, table, path, per_digit=10,
                             sample_hidden=False):
    """For each digit of ``table``, a row of originals above a row of their reconstructions."""
    side = image_side(images.shape[1])
    rows, row_labels = [], []
    for digit, seen, _, _ in table:
        originals = images[labels == digit][:per_digit]
        reconstructions = rbm.reconstruct(originals, sample_hidden=sample_hidden)
        rows += [originals.reshape(-1, side, side), reconstructions.reshape(-1, side, side)]
        row_labels += [f"{digit} original", f"{digit} reconstruction" + ("" if seen else ", unseen")]
    viz.save_image_rows(rows, path, row_labels=row_labels)


def save_training_curve(rbm, path):
    curves = {"training batches (x1 vs P(x2 | h1))": rbm.history["reconstruction_error"]}
    viz.save_curves(curves, path, xlabel="epoch", ylabel="squared error per pixel",
                    title="RBM reconstruction error")
