"""Digit (or garment) data and RBM pictures shared by ``dlcore homework task1`` and
``dlcore rbm ...``."""
import click
import numpy as np

from dlcore import datasets, viz

# Held-out images per class when the data set has no test split (the bundled mnist-5k).
HELD_OUT_PER_CLASS = 100


def parse_digits(option, text, dataset=None):
    """The classes named by ``text`` ('1-5', '0,2,4'), or a usage error naming ``option``.

    For a data set whose classes have names (Fashion-MNIST's garments, as its tables and
    figures show them) an item may also be a name, in any case ('Sandal,sneaker', '0,Bag');
    the error then lists every class's number and name."""
    names = {name.lower(): label for label, name in enumerate(class_names_of(dataset))}
    items = [item.strip() for item in text.split(",")]
    numbered = ",".join(str(names[item.lower()]) if item.lower() in names else item
                        for item in items)
    try:
        # garments are not digits: the message calls them classes
        return datasets.parse_classes(numbered if names else text,
                                      noun="class" if names else "digit")
    except ValueError as error:
        # the message quotes the text as given, not with the names already numbered
        message = str(error).replace(repr(numbered), repr(text), 1)
        if names:
            message += (f", or name them; the classes of {dataset}: "
                        + ", ".join(f"{label} {name}"
                                    for label, name in enumerate(class_names_of(dataset))))
        raise click.BadParameter(message, param_hint=option) from None


def class_names_of(dataset):
    """The names of a data set's classes when they are more than their numbers (Fashion-MNIST's
    garments), else an empty list."""
    if dataset is None:
        return []
    names = datasets.class_names(dataset)
    return [] if names == [str(label) for label in range(len(names))] else names


def load_digit_split(dataset, train_digits, test_digits, seed,
                     options=("--train-digits", "--test-digits"), comm=None):
    """Training images of ``train_digits`` and held-out images and labels of ``test_digits``
    (None: of every class), as float32 (n, pixels) in [0, 1]. The bundled mnist-5k keeps 100
    images per class out of training; the other data sets use their official test split. A
    usage error naming
    ``options`` (the options that chose the classes) when a selection is empty, and an error
    when the images are not square (they could not be drawn after training). With ``comm`` (a
    data-parallel rank) the training images stay on disk, :class:`dlcore.lazy_rows.LazyRows`
    of which the rank reads only its rows; the held-out ones are read into memory."""
    lazy = comm is not None
    if dataset == "mnist-5k":
        images, labels = datasets.load_dataset(dataset, lazy=lazy)
        train_rows, test_rows = datasets.holdout_split(labels, HELD_OUT_PER_CLASS, seed=seed)
        train = (images[train_rows], labels[train_rows])
        test = (images[test_rows], labels[test_rows])
    else:
        train = datasets.load_dataset(dataset, split="train", lazy=lazy)
        test = datasets.load_dataset(dataset, split="test")
    selected = []
    for (images, labels), classes, option, what in ((train, train_digits, options[0],
                                                     "training"),
                                                    (test, test_digits, options[1], "held-out")):
        if classes is None:
            classes = np.unique(labels).tolist()
        absent = sorted(set(classes) - set(np.unique(labels).tolist()))
        if absent:
            raise click.BadParameter(f"no {what} images of classes {absent} in {dataset} "
                                     f"(its classes: {np.unique(labels).tolist()})",
                                     param_hint=option)
        selected.append(datasets.select_classes(images, labels, classes))
    (train_images, _), (test_images, test_labels) = selected
    image_side(int(np.prod(train_images.shape[1:])))
    train_images = datasets.to_unit_interval(train_images)
    return (train_images.over(comm) if lazy else train_images,
            np.asarray(datasets.to_unit_interval(test_images)), test_labels)


def binarized_held_out(images, seed):
    """Held-out images as binary pixels drawn from their intensities (Salakhutdinov & Murray's
    test data), by Philox(``seed`` + 1): the one rule of ``homework samplers`` (which draws its
    training pixels with ``seed``, so that the two draws are independent), ``rbm evaluate
    --binarize`` and ``dbn evaluate --binarize``, so that a figure one prints the other
    reproduces."""
    return datasets.binarize(images, mode="stochastic", seed=seed + 1)


def image_side(n_pixels, otherwise=None):
    """The side of the square images of ``n_pixels`` pixels, or an error naming what to do
    ``otherwise`` (e.g. the library call that gives the rows themselves) when there is none."""
    side = int(round(np.sqrt(n_pixels)))
    if side * side != n_pixels:
        raise click.ClickException(f"cannot draw {n_pixels} visible units as a square image"
                                   + ("" if otherwise is None else f"; {otherwise}"))
    return side


def reconstruction_table(rbm, images, labels, train_digits, reconstructions=None):
    """Per class: mean squared error per pixel between held-out images and their one-pass
    reconstructions: ``reconstructions`` (a row per row of ``images``: those of
    ``rbm.reconstruct(images, sample_hidden=True, seed=N)``), by default the mean-field ones
    of ``rbm.reconstruct(images)``. Rows of (class, seen_in_training, mse, n_images), where
    seen_in_training is None when ``train_digits`` is None (a model with no training
    record)."""
    if reconstructions is None:
        reconstructions = rbm.reconstruct(images)
    rows = []
    for digit in sorted(set(labels.tolist())):
        x = images[labels == digit]
        mse = float(np.mean((x - reconstructions[labels == digit]) ** 2))
        seen = None if train_digits is None else digit in train_digits
        rows.append((int(digit), seen, mse, len(x)))
    return rows


SEEN_WORDS = {True: "yes", False: "no (unseen)", None: "unknown"}


def print_reconstruction_table(table, names=None, noun="digit"):
    """The table of :func:`reconstruction_table`; ``names[k]`` names class k (Fashion-MNIST's
    garments), ``noun`` is what a class is ("digit" or "class"). Returns the mean errors it
    printed: ``{"seen": mse, "unseen": mse}`` (the groups the table has)."""
    names = names or [str(label) for label in range(max(row[0] for row in table) + 1)]
    width = max(len(noun), *(len(names[row[0]]) for row in table))
    click.echo(f"{noun:>{width}}  seen in training  mse per pixel  images")
    for label, seen, mse, n in table:
        click.echo(f"{names[label]:>{width}}  {SEEN_WORDS[seen]:<16}  {mse:>13.5f}  {n:>6}")
    means = {}
    for name, wanted in (("seen", True), ("unseen", False)):
        errors = [mse for _, seen, mse, _ in table if seen is wanted]
        if errors:
            plural = "classes" if noun == "class" else f"{noun}s"
            means[name] = float(np.mean(errors))
            click.echo(f"mean over {name} {plural}: {means[name]:.5f}")
    if any(seen is None for _, seen, _, _ in table):
        click.echo("seen in training: unknown, the model file has no training record")
    return means


def save_filters(model, path, what="RBM"):
    """Every hidden unit's incoming weights as one tile (lecture "Deep Neural Networks",
    the figure "Weights 49 x 16x16"), under a title and above a grey-scale key: ``what``
    names the model in the title."""
    side = image_side(model.W.shape[0])
    save_weight_tiles(model.W.T.reshape(-1, side, side), path,
                      f"{what} filters: the weights from the pixels to each hidden unit")


def save_weight_tiles(weights, path, title, zoom=2):
    """``weights`` (n, h, w), one tile each, as a teacher would hand them out: white a positive
    weight, black a negative one, mid-grey zero in every tile (each tile scaled to its own
    largest |weight|, which the key below gives), under ``title``."""
    viz.save_tiles(weights, path, scale="signed", zoom=zoom,
                   title=f"{title} ({len(weights)} tiles of {weights.shape[1]}x"
                         f"{weights.shape[2]})",
                   key="weight")


def save_reconstruction_grid(rbm, images, labels, table, path, per_digit=10,
                             sample_hidden=False, names=None, reconstructions=None):
    """For each class of ``table``, a row of originals above a row of their reconstructions
    (``reconstructions``, a row per row of ``images``, as :func:`reconstruction_table`'s:
    the pictures are those whose errors the table gives; by default ``rbm.reconstruct``'s
    mean-field ones); ``names[k]`` labels class k."""
    side = image_side(images.shape[1])
    rows, row_labels = [], []
    for digit, seen, _, _ in table:
        originals = images[labels == digit][:per_digit]
        redrawn = (rbm.reconstruct(originals) if reconstructions is None
                   else reconstructions[labels == digit][:per_digit])
        rows += [originals.reshape(-1, side, side), redrawn.reshape(-1, side, side)]
        name = names[digit] if names else str(digit)
        row_labels += [f"{name} original", f"{name} reconstruction"
                       + {True: "", False: ", unseen", None: ""}[seen]]
    # what the rows are, in the printed table's words (--sample-hidden: through a sampled h)
    up = "h ~ Q(h | x)" if sample_hidden else "Q(h = 1 | x)"
    viz.save_image_rows(rows, path, row_labels=row_labels,
                        title=f"held-out images above their reconstructions: one up-down pass "
                              f"x -> {up} -> P(x' = 1 | h)")


def save_training_curve(rbm, path):
    """The reconstruction error per epoch and, when it was measured (held-out images given to
    ``fit``), the free-energy gap on a second axis."""
    curves = {"training batches (x1 vs P(x2 | h1))": rbm.history["reconstruction_error"]}
    gap = np.asarray(rbm.history.get("free_energy_gap", []), dtype=np.float64)
    measured = gap.size and np.isfinite(gap).any()
    viz.save_curves(curves, path, xlabel="epoch", ylabel="squared error per pixel",
                    title="RBM reconstruction error"
                    + (" and free-energy gap" if measured else ""),
                    secondary={"free-energy gap F(held-out) - F(training)": gap}
                    if measured else None, secondary_ylabel="free-energy gap")
