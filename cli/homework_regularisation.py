"""``dlcore homework regularisation``: the regularisation lecture as a table a student reruns.

Lecture "Convolutional neural networks" (2016), "Regularisation": "neural networks are very
powerful; easy to perform great on the training set (overfitting); regularization improves
generalization to new data at the expense of increased training error", then the methods one
by one: early stopping, weight decay (L2, L1, max-norm), data augmentation, injecting noise,
ensembles (bagging, distillation into one model), dropout ("as injecting noise or as an
ensemble") and adversarial training; lecture "Deep learning I" adds L2, augmentation and
dropout. Here one network is trained on a small training subset (where it overfits) once per
method, everything else equal (the data, the initial weights, the optimiser, the epochs):

    none               the plain network
    l2                 kernel_regularizer=L2(3e-3): Omega = lambda/2 ||w||^2 on every kernel
    l1                 kernel_regularizer=L1(3e-4): Omega = lambda ||w||_1
    max-norm           kernel_constraint=MaxNorm(2): every unit's ||w_i|| <= c after each update
    early-stopping     20 % of the subset held out; stop at the 11th epoch in a row without a
                       lower validation loss (patience 11), keep the best epoch (the network
                       sees 80 % of the data)
    input-noise        GaussianNoise(0.5) on the input pixels (Sietsma and Dow 1991)
    augmentation       ImageAugmentation(max_shift=2, max_rotation=10): shifts and rotations
    dropout            Dropout(0.5) after every hidden layer (Srivastava et al. 2014)
    dropout-max-norm   both, as the dropout paper recommends
    ensemble           K networks of different seeds, each on its own bootstrap sample
                       (bagging), their probabilities averaged (dlcore.ensemble.Ensemble)
    distillation       one network trained on the ensemble's probabilities at temperature T
                       (Hinton et al. 2015, dlcore.losses.Distillation)
    adversarial        fit(adversarial=epsilon): every batch also trains on its FGSM examples,
                       0.5 J(x) + 0.5 J(x_adv) (Goodfellow et al. 2015)

and the dropout network once more with Monte Carlo dropout (``predict(x, mc_dropout=K)``: the
average of K thinned networks instead of the weight-scaled one).

The strengths were chosen as the lecture says ("use held-out validation data to choose
hyperparameters"): the MLP on the seed-0 subset, validated on 1,000 other digits of the
training split, never on the test digits (docs/regularisation.md lists the values tried).

The table gives the training error (evaluation mode, on the whole subset), the test error, its
difference to ``none`` in percentage points, and the error on the test set's FGSM examples
(dlcore.adversarial.fgsm, epsilon as --epsilon) of each single network. ``--seeds N`` repeats
everything with seeds seed..seed+N-1 (each drawing its own training subset and initial
weights) and prints mean ± standard deviation, so that a student sees which differences are
noise. Writes regularisation.csv (a row per method and seed), regularisation_curves.png (the
training and test error per epoch of the first seed) and adversarial_examples.png.

Every row saves checkpoint.h5 in --out as it finishes (:class:`RegularisationRows`, written whole,
then renamed): Ctrl-C (or SIGTERM) prints the command that resumes, and ``--resume`` trains the
rows left and prints the table of an uninterrupted run. The networks are not kept: a row is its
numbers, its curves, and for the first seed the figure's adversarial examples; a resumed
distillation whose ensemble row was finished trains the ensemble again as its teacher.
"""
import csv
import time
from collections.abc import Mapping

import click
import numpy as np

import dlcore
from dlcore import viz
from dlcore.backend import rng
from dlcore.callbacks import Callback, EarlyStopping
from dlcore.cli._common import (
    RESUME_MAY_CHANGE,
    Checkpoints,
    backend_option,
    dataset_option,
    load_checkpoint,
    out_folder_option,
    output_folder,
    parse_choices,
    publish_metrics,
    refuse_unread_options,
    resume_option,
    resumed_options,
    resuming_line,
)
from dlcore.cli._dbn import load_labelled_split, training_subset
from dlcore.cli.homework import homework
from dlcore.io import atomic_open, register_model
from dlcore.regularizers import L1, L2, MaxNorm

# name -> (label, network options); early stopping, the ensemble, distillation and
# adversarial training differ in how they train, not in the network.
NETWORKS = {
    "none": ("none", {}),
    "l2": ("L2, lambda=3e-3", {"kernel_regularizer": L2(3e-3)}),
    "l1": ("L1, lambda=3e-4", {"kernel_regularizer": L1(3e-4)}),
    "max-norm": ("max-norm, c=2", {"kernel_constraint": MaxNorm(2.0)}),
    "early-stopping": ("early stopping", {}),
    "input-noise": ("input noise, sigma=0.5", {"noise": 0.5}),
    "augmentation": ("augmentation", {"augment": {"max_shift": 2, "max_rotation": 10.0}}),
    "dropout": ("dropout 0.5", {"dropout": 0.5}),
    "dropout-max-norm": ("dropout 0.5 + max-norm",
                         {"dropout": 0.5, "kernel_constraint": MaxNorm(2.0)}),
    "ensemble": ("ensemble (bagging)", {}),
    "distillation": ("distilled ensemble", {}),
    "adversarial": ("adversarial training", {}),
}
METHODS = tuple(NETWORKS)
MC_DROPOUT_ROW = "dropout, MC average"
# Keras's count; the documented table was measured when dlcore stopped one epoch later
EARLY_STOPPING_PATIENCE = 11
EARLY_STOPPING_HOLDOUT = 0.2
MLP_HIDDEN = (256, 128)
#: option -> (what it sets, the methods that read it, the methods the fix adds): an option
#: that only methods not in --methods read is refused, not ignored
OPTIONS_OF_METHODS = {
    "mc_dropout": ("the Monte Carlo row of dropout", ("dropout",), "dropout"),
    "ensemble_size": ("the ensemble (the distillation's teacher too)",
                      ("ensemble", "distillation"), "ensemble or distillation"),
    "temperature": ("the distillation", ("distillation",), "distillation"),
    # every single network's FGSM column too: all but the ensemble, which is not attacked
    "epsilon": ("the FGSM column and adversarial training",
                tuple(method for method in METHODS if method != "ensemble"),
                "adversarial (or another single network)"),
}
#: The test images of the adversarial-examples figure: the first of each of the first ten
#: classes.
FIGURE_CLASSES = 10


@register_model
class RegularisationRows:
    """The checkpoint of ``homework regularisation``: the rows of its table finished so far, in
    the order the command trains them, each ``(name, seed, result)`` (``name`` a method of
    :data:`METHODS` or :data:`MC_DROPOUT_ROW`; ``result`` the errors, the seconds, the curves
    and, for the first seed, the figure's adversarial examples: what the table, the CSV and
    the figures need, not the network). Saved with :func:`dlcore.save` like the models of the
    other commands, so that their --resume plumbing (the training record, the options of the
    run) serves it too."""

    NUMBERS = ("train", "test", "fgsm", "seconds")

    def __init__(self):
        self.rows = []

    def get_config(self):
        return {}

    def get_state(self):
        rows = {}
        for index, (name, seed, result) in enumerate(self.rows):
            row = {"name": name, "seed": int(seed)}
            row.update({key: float(result[key]) for key in self.NUMBERS
                        if result.get(key) is not None})
            if result.get("curves"):
                row["curves"] = {part: np.asarray(values, dtype=np.float64)
                                 for part, values in result["curves"].items()}
            if result.get("examples"):
                row["examples"] = dict(result["examples"])
            rows[f"{index:05d}"] = row
        return {"rows": rows}

    def set_state(self, state):
        rows = []
        stored = state.get("rows", {})
        if not isinstance(stored, Mapping):
            raise ValueError("'rows' is not a group of finished rows")
        for key in sorted(stored):
            row = stored[key]
            if not isinstance(row, Mapping):
                raise ValueError(f"row {key} is not a group (its name, seed, errors and "
                                 f"curves)")
            name, seed = row.get("name"), row.get("seed")
            if name not in NETWORKS and name != MC_DROPOUT_ROW:
                raise ValueError(f"row {key} names {name!r}, not a method of the table")
            if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
                raise ValueError(f"row {key} has no seed (a non-negative integer)")
            result = {"fgsm": None, "curves": None, "examples": None}
            for number in self.NUMBERS:
                value = row.get(number)
                if value is None and number == "fgsm":
                    continue
                if not isinstance(value, (int, float)) or isinstance(value, bool):
                    raise ValueError(f"row {key} has no number {number!r}")
                result[number] = float(value)
            if "curves" in row:
                result["curves"] = checked_curves(row["curves"], key)
            if "examples" in row:
                result["examples"] = checked_examples(row["examples"], key)
            rows.append((name, seed, result))
        self.rows = rows


def checked_curves(curves, key):
    """A stored row's learning curves: ``train`` and ``test``, each a list of the errors of its
    epochs (numbers); else a ValueError naming the row."""
    checked = {}
    for part in ("train", "test"):
        values = np.asarray(curves[part]) if isinstance(curves, Mapping) and part in curves \
            else None
        if values is None or values.ndim != 1 or values.dtype.kind not in "iuf":
            raise ValueError(f"row {key}'s learning curves are not two lists of numbers "
                             f"(train, test)")
        checked[part] = [float(value) for value in values]
    return checked


def checked_examples(examples, key):
    """A stored row's figure examples (see :func:`adversarial_examples`): ``attacked``, images
    of values in [0, 1], and the classes predicted of them and of the clean images, one
    integer an image; else a ValueError naming the row."""
    parts = ("attacked", "predicted", "attacked_predicted")
    if not isinstance(examples, Mapping) or not all(part in examples for part in parts):
        raise ValueError(f"row {key}'s adversarial examples are not a group of images and "
                         f"their classes")
    attacked = np.asarray(examples["attacked"])
    predicted = {part: np.asarray(examples[part]) for part in ("predicted", "attacked_predicted")}
    if (attacked.dtype.kind != "f" or attacked.ndim < 2
            or not np.all((attacked >= 0) & (attacked <= 1))):
        raise ValueError(f"row {key}'s adversarial examples are not images of values in [0, 1]")
    for part, classes in predicted.items():
        if classes.dtype.kind not in "iu" or classes.shape != attacked.shape[:1]:
            raise ValueError(f"row {key}'s {part} classes are not one integer an image")
    return {"attacked": attacked, **predicted}


def parse_methods(text):
    """``"none,l2,dropout"`` (or ``"all"``) -> the methods in the table's order."""
    return parse_choices(text, METHODS, "--methods")


def refuse_options_of_methods_not_run(methods, methods_text):
    """Refuse, as a usage error naming the option, the method it needs and the fix, an option
    given on the command line that only methods not in ``methods`` read (``--mc-dropout``
    without dropout): a mistyped --methods left it ignored, and the table looked as if it
    had taken effect. A resumed run takes its options from its checkpoint, which --resume
    already holds the command line to."""
    for name, (sets, readers, fix) in OPTIONS_OF_METHODS.items():
        if not any(method in readers for method in methods):
            refuse_unread_options([name], f"sets {sets}, which --methods {methods_text} does "
                                  "not run", f"add {fix} to --methods")


class ErrorCurves(Callback):
    """The training and test error (evaluation mode) after every epoch."""

    def __init__(self, train, test):
        self.train, self.test = train, test
        self.curves = {"train": [], "test": []}

    def on_epoch_end(self, epoch, logs=None):
        for part, (x, y) in (("train", self.train), ("test", self.test)):
            self.curves[part].append(error_rate(self.model, x, y))


def error_rate(model, x, y, **predict_options):
    """Fraction of misclassified rows (a network or an ensemble)."""
    return float(np.mean(model.predict(x, **predict_options).argmax(axis=1) != y))


class Experiment:
    """One seed's runs: the training subset, the settings, and a network builder."""

    def __init__(self, model, train, test, seed, settings, backend):
        self.kind, self.train, self.test = model, train, test
        self.seed, self.settings, self.backend = seed, settings, backend

    def network(self, options=None, seed=None, loss="cross_entropy"):
        builder = dlcore.models.lenet5 if self.kind == "lenet5" else dlcore.models.mlp
        extra = {} if self.kind == "lenet5" else {"hidden": MLP_HIDDEN}
        net = builder(seed=self.seed if seed is None else seed, backend=self.backend,
                      **extra, **(options or {}))
        net.compile(loss, dlcore.optimizers.SGD(self.settings["learning_rate"], momentum=0.9),
                    ["accuracy"])
        return net

    def fit(self, net, x=None, y=None, **options):
        """Train ``net`` for the epochs (on the subset unless x, y are given); the curves."""
        curves = ErrorCurves(self.train, self.test)
        callbacks = [curves] + options.pop("callbacks", [])
        net.fit(self.train[0] if x is None else x, self.train[1] if y is None else y,
                epochs=self.settings["epochs"], batch_size=self.settings["batch_size"],
                callbacks=callbacks, verbose=0, **options)
        return curves.curves

    def result(self, net, curves, attack=True, **predict_options):
        epsilon = self.settings["epsilon"]
        fgsm_error = (error_rate(net, dlcore.adversarial.fgsm(net, *self.test, epsilon,
                                                              clip=(0.0, 1.0)), self.test[1])
                      if attack else None)
        return {"train": error_rate(net, *self.train, **predict_options),
                "test": error_rate(net, *self.test, **predict_options),
                "fgsm": fgsm_error, "curves": curves, "net": net}

    # -- the methods that train differently ---------------------------------------------
    def early_stopping(self, net):
        order = rng.permutation(len(self.train[0]), self.seed, rng.STREAM_SPLIT, 3)
        n_valid = int(round(EARLY_STOPPING_HOLDOUT * len(order)))
        fit_rows, valid_rows = np.sort(order[n_valid:]), np.sort(order[:n_valid])
        x, y = self.train
        stopper = EarlyStopping("val_loss", patience=EARLY_STOPPING_PATIENCE,
                                restore_best_weights=True)
        curves = self.fit(net, x[fit_rows], y[fit_rows],
                          validation_data=(x[valid_rows], y[valid_rows]), callbacks=[stopper])
        return self.result(net, curves)

    def ensemble(self):
        """K nets (seeds drawn from the seed), each on its own bootstrap sample, trained in
        lockstep one epoch at a time so that the ensemble has curves too."""
        members = [self.network(seed=rng.layer_seed(self.seed, member))
                   for member in range(self.settings["ensemble_size"])]
        ensemble = dlcore.ensemble.Ensemble(members, bagging=True, seed=self.seed)
        curves = {"train": [], "test": []}
        for _ in range(self.settings["epochs"]):
            ensemble.fit(*self.train, epochs=1, batch_size=self.settings["batch_size"])
            curves["train"].append(error_rate(ensemble, *self.train))
            curves["test"].append(error_rate(ensemble, *self.test))
        return self.result(ensemble, curves, attack=False)

    def distillation(self, teacher):
        student = self.network(loss=dlcore.losses.Distillation(self.settings["temperature"]),
                               seed=rng.layer_seed(self.seed, 1000))
        curves = self.fit(student, y=teacher.predict(self.train[0]))
        return self.result(student, curves)

    def run(self, method, teacher=None):
        if method == "ensemble":
            return self.ensemble()
        if method == "distillation":
            return self.distillation(teacher)
        net = self.network(NETWORKS[method][1])
        if method == "early-stopping":
            return self.early_stopping(net)
        options = {"adversarial": self.settings["epsilon"]} if method == "adversarial" else {}
        return self.result(net, self.fit(net, **options))


def resumed_rows(path, planned, labels, figure_shape):
    """The :class:`RegularisationRows` of a --resume file, refused in one line unless its rows are
    the first rows this run plans (the same run: its options are the checkpoint's) and their
    figure examples are of this run's figure images, of shape ``figure_shape``."""
    finished = load_checkpoint(path, RegularisationRows)
    if any(result.get("examples") is not None
           and result["examples"]["attacked"].shape != tuple(figure_shape)
           for _, _, result in finished.rows):
        raise click.ClickException(
            f"cannot resume from {path}: its adversarial examples are not of this run's figure "
            f"images, of shape {tuple(figure_shape)} (the file was edited, or written by "
            f"another version of this command); start a new run")
    expected = [key for method, seed in planned for key in (
        [(method, seed), (MC_DROPOUT_ROW, seed)] if method == "dropout"
        and MC_DROPOUT_ROW in labels else [(method, seed)])]
    found = [(name, seed) for name, seed, _ in finished.rows]
    if found != expected[:len(found)]:
        raise click.ClickException(
            f"cannot resume from {path}: its rows are not the first rows of this run (the file "
            f"was edited, or written by another version of this command); start a new run")
    return finished


def last_finished_row(finished, labels):
    """``(rows finished, what the last of them is)`` of the table: ``(3, "dropout 0.5, seed
    0")`` (the Monte Carlo dropout rows, which come with their dropout row, not counted)."""
    name, seed, _ = next(row for row in reversed(finished.rows) if row[0] != MC_DROPOUT_ROW)
    done = sum(1 for row in finished.rows if row[0] != MC_DROPOUT_ROW)
    return done, f"{labels[name]}, seed {seed}"


def finished_position(finished, planned, labels):
    """How far the table got, for the messages: "row 3 of 12 (dropout 0.5, seed 0)"."""
    done, last = last_finished_row(finished, labels)
    return f"row {done} of {len(planned)} ({last})"


def summary(values):
    """(mean, std) of a list (std 0 for one value), or None when the values are missing."""
    values = [v for v in values if v is not None]
    if not values:
        return None
    return float(np.mean(values)), float(np.std(values))


def percent(value, signed=False):
    if value is None:
        return "-"
    mean, std = value
    text = f"{100 * mean:+.2f}" if signed else f"{100 * mean:.2f}"
    return text + (f" ± {100 * std:.2f}" if std else "")


def print_table(rows, labels, n_seeds, epsilon):
    """One line per method: training and test error, change against none, FGSM error."""
    baseline = rows.get("none")
    header = (f"{'method':26}{'train error %':>16}{'test error %':>16}{'vs none (pp)':>16}"
              f"{f'FGSM eps={epsilon:g} %':>18}")
    click.echo(header + (f"   (mean ± std over {n_seeds} seeds)" if n_seeds > 1 else ""))
    for name, results in rows.items():
        test = [r["test"] for r in results]
        change = None
        if baseline is not None and name != "none":
            change = summary([t - b["test"] for t, b in zip(test, baseline)])
        click.echo(f"{labels[name]:26}{percent(summary([r['train'] for r in results])):>16}"
                   f"{percent(summary(test)):>16}{percent(change, signed=True):>16}"
                   f"{percent(summary([r['fgsm'] for r in results])):>18}")


#: What :func:`adversarial_examples` keeps of a network for the figure.
EXAMPLE_PARTS = ("predicted", "attacked", "attacked_predicted")


def figure_images(test):
    """The test images of the figure and their classes: the first of each class."""
    x, y = test
    picks = [int(np.flatnonzero(y == label)[0]) for label in np.unique(y)[:FIGURE_CLASSES]]
    return x[picks], y[picks]


def adversarial_examples(net, test, epsilon):
    """What the figure shows of ``net``: the classes it predicts for the figure's test
    images, their FGSM examples against it and its predictions of those; computed when the
    row finishes, so that the checkpoint keeps them instead of the network."""
    images, labels = figure_images(test)
    attacked = dlcore.adversarial.fgsm(net, images, labels, epsilon, clip=(0.0, 1.0))
    return {"predicted": net.predict_classes(images), "attacked": attacked,
            "attacked_predicted": net.predict_classes(attacked)}


def save_adversarial_examples(plain, hardened, test, epsilon, path, noun="digit",
                              method="none", row_name="none"):
    """One test image of each class: clean, its FGSM example against the first single net of
    the table (``method``, the plain one for ``"none"``; ``row_name``, its row's name), and
    (when adversarial training ran) against the adversarially trained net, titled with the class
    each net predicts (``plain`` and ``hardened``: :func:`adversarial_examples` of each);
    ``noun``: what a class is (:func:`dlcore.datasets.class_noun`), "digit" or "class"."""
    images, labels = figure_images(test)
    # the net attacked in the second row, by name: a run without "none" attacked its first
    # method's net (L2's), which the figure called the plain net
    short, net = (("plain", "the plain net") if method == "none"
                  else (method, f"the {row_name} net"))
    rows, titles = [], []
    rows.append(images)
    titles += [f"{label}: {p}" for label, p in zip(labels, plain["predicted"])]
    for name, examples in ((short, plain), ("adv.-trained", hardened)):
        if examples is None:
            continue
        rows.append(examples["attacked"])
        titles += [f"{name}: {p}" for p in examples["attacked_predicted"]]
    attacks = f"their attack on {net}" + (
        "" if hardened is None else ", on the adversarially trained net")
    viz.save_tiles(np.concatenate(rows).reshape((-1,) + images.shape[-2:]), path,
                   n_columns=len(labels),
                   scale=None, zoom=2, tile_titles=titles,
                   # a Fashion-MNIST run's garments were called digits
                   title=f"FGSM, epsilon={epsilon:g}: test "
                         f"{'digits' if noun == 'digit' else 'images'} (true: predicted by "
                         f"{net}), {attacks}")


@homework.command("regularisation")
@click.option("--model", "model_kind", type=click.Choice(["mlp", "lenet5"]), default="mlp",
              show_default=True, help="The network: an MLP 784-256-128-10 or LeNet-5.")
@dataset_option()
@click.option("--train-size", type=click.IntRange(min=10), default=1000, show_default=True,
              help="Training images, drawn from the training split (few: overfitting shows).")
@click.option("--methods", "methods_text", default="all", show_default=True,
              help=f"Comma-separated subset of: {', '.join(METHODS)}.")
@click.option("--epochs", type=click.IntRange(min=1), default=40, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), default=0.05,
              show_default=True, help="SGD learning rate (momentum 0.9).")
@click.option("--seeds", type=click.IntRange(min=1), default=1, show_default=True,
              help="Repeat with N seeds and print mean ± std.")
@click.option("--seed", type=click.IntRange(0, 2 ** 63 - 1), default=0, show_default=True,
              help="The first seed.")
@click.option("--ensemble-size", type=click.IntRange(min=1), default=5, show_default=True,
              help="K: the bagged networks of the ensemble (and of distillation's teacher).")
@click.option("--temperature", type=click.FloatRange(min=0, min_open=True), default=2.0,
              show_default=True, help="T of the distillation (its method only).")
@click.option("--epsilon", type=click.FloatRange(min=0, min_open=True), default=0.1,
              show_default=True, help="FGSM step of adversarial training and of the attack.")
@click.option("--mc-dropout", type=click.IntRange(min=0), default=50, show_default=True,
              help="K dropout masks averaged for the Monte Carlo row of dropout (0: no such "
                   "row).")
@backend_option
@out_folder_option("runs/regularisation")
@resume_option(has_epochs=False, by_rows=True)
# every option shapes the rows finished (--epochs too): only where they compute and write
@resumed_options(may_change=RESUME_MAY_CHANGE - {"epochs"})
def regularisation(model_kind, dataset, train_size, methods_text, epochs, batch_size,
                   learning_rate, seeds, seed, ensemble_size, temperature, epsilon, mc_dropout,
                   backend, out, resume):
    """The regularisation lecture as a table: one network, a small training set, one method
    per row (lecture "Convolutional neural networks" (2016)).

    Prints the training and test error of each method, writes regularisation.csv,
    regularisation_curves.png and adversarial_examples.png to --out. Saves the rows finished
    as checkpoint.h5 in --out as they finish; --resume continues an interrupted run from its
    next row, with that run's options (--backend and --out may change).
    """
    methods = parse_methods(methods_text)
    if resume is None:
        refuse_options_of_methods_not_run(methods, methods_text)
    (X, y), test = load_labelled_split(dataset)
    side = int(round(np.sqrt(X.shape[1])))
    if side * side != X.shape[1]:
        raise click.ClickException(f"{dataset} images have {X.shape[1]} pixels, not a square")
    X, test = X.reshape(-1, 1, side, side), (test[0].reshape(-1, 1, side, side), test[1])
    training_subset(X, y, train_size, seed, dataset)   # --train-size too large: one line now
    folder = output_folder(out)
    settings = {"epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate,
                "ensemble_size": ensemble_size, "temperature": temperature,
                "epsilon": epsilon}
    labels = {name: NETWORKS[name][0] for name in methods}
    if "ensemble" in labels:
        labels["ensemble"] = f"ensemble of {ensemble_size} (bagging)"
    if "distillation" in labels:
        labels["distillation"] = f"distilled ensemble, T={temperature:g}"
    if "adversarial" in labels:
        labels["adversarial"] = f"adversarial, eps={epsilon:g}"
    if "dropout" in methods and mc_dropout:
        labels[MC_DROPOUT_ROW] = f"dropout, MC K={mc_dropout}"
    rows = {name: [] for name in labels}
    records, first = [], {}
    # adversarial_examples.png shows a single net's attack beside the adversarial net's
    attacked = any(method not in ("ensemble", "adversarial") for method in methods)
    checkpoints = Checkpoints(folder, every=1, unit="row", contents="the finished rows",
                              outputs=["regularisation.csv", "regularisation_curves.png",
                                       *(["adversarial_examples.png"] if attacked else [])])
    started = time.perf_counter()
    click.echo(f"{model_kind} on {train_size} {dataset} images, {len(test[0])} test images, "
               f"{epochs} epochs, seeds {seed}..{seed + seeds - 1}", err=True)
    planned = [(method, seed + run) for run in range(seeds) for method in methods]
    finished = RegularisationRows() if resume is None else resumed_rows(
        resume, planned, labels, figure_images(test)[0].shape)

    def where(finished):
        # of the rows a Ctrl-C saves, when it comes (a row added just before it included)
        return finished_position(finished, planned, labels)

    if finished.rows:
        checkpoints.track(finished, where)
        rows_done, last = last_finished_row(finished, labels)
        click.echo(resuming_line(rows_done, len(planned), unit="row", where=f" (the last: {last})",
                                 longer=None), err=True)
    done = {(name, row_seed): result for name, row_seed, result in finished.rows}
    # the resumed rows' training, saved with them: the total is the whole table's
    trained_before = sum(result["seconds"] for result in done.values())
    with checkpoints.on_interrupt():
        for run in range(seeds):
            current = seed + run
            experiment = Experiment(model_kind,
                                    training_subset(X, y, train_size, current, dataset), test,
                                    current, settings, backend)
            teacher = None
            for method in methods:
                if (method, current) in done:
                    rows[method].append(done[(method, current)])
                    if method == "dropout" and mc_dropout:
                        rows[MC_DROPOUT_ROW].append(done[(MC_DROPOUT_ROW, current)])
                    continue
                began = time.perf_counter()
                if method == "distillation" and teacher is None:
                    teacher = experiment.ensemble()["net"]
                result = experiment.run(method, teacher)
                if method == "ensemble":
                    teacher = result["net"]
                result["seconds"] = time.perf_counter() - began
                if run == 0 and result["fgsm"] is not None:
                    result["examples"] = adversarial_examples(result["net"], test, epsilon)
                rows[method].append(result)
                row = [(method, current, result)]
                if method == "dropout" and mc_dropout:
                    mc = experiment.result(result["net"], None, attack=False,
                                           mc_dropout=mc_dropout)
                    mc["seconds"] = 0.0
                    rows[MC_DROPOUT_ROW].append(mc)
                    row.append((MC_DROPOUT_ROW, current, mc))
                # the dropout row with its Monte Carlo row or not at all: a Ctrl-C while the
                # K masks ran saved the one without the other, and the resume then failed
                # with a KeyError
                finished.rows.extend(row)
                checkpoints.epoch_finished(finished, where)
                click.echo(f"seed {current}: {labels[method]}: test error "
                           f"{100 * result['test']:.2f}% ({result['seconds']:.0f} s)", err=True)
            for name, results in rows.items():
                records.append((name, current, results[-1]))
                if run == 0:
                    first[name] = results[-1]
    # a Ctrl-C while the outputs are written says how to write them without training
    with checkpoints.on_interrupt():
        print_table(rows, labels, seeds, epsilon)
        publish_metrics(**{f"{'mc_dropout' if name == MC_DROPOUT_ROW else name}_{part}_error":
                           np.mean([result[part] for result in results])
                           for name, results in rows.items() for part in ("train", "test")})
        elapsed = time.perf_counter() - started
        click.echo(f"total {elapsed + trained_before:.0f} s" + (
            f" ({elapsed:.0f} s since the resume, {trained_before:.0f} s of training before "
            "it)" if done else ""))
        with atomic_open(folder / "regularisation.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["method", "seed", "train_error", "test_error", "fgsm_test_error",
                             "epochs", "seconds"])
            for name, current, result in records:
                curves = result["curves"]
                writer.writerow([labels[name], current, f"{result['train']:.6f}",
                                 f"{result['test']:.6f}",
                                 "" if result["fgsm"] is None else f"{result['fgsm']:.6f}",
                                 len(curves["test"]) if curves else "",
                                 f"{result['seconds']:.1f}"])
        panels = {part: {labels[name]: result["curves"][part] for name, result in first.items()
                         if result["curves"]}
                  for part in ("train", "test")}
        finals = [curve[-1] for curve in panels["test"].values() if curve]
        viz.save_curve_panels({"training error": panels["train"], "test error": panels["test"]},
                              folder / "regularisation_curves.png", ylabel="error",
                              title=f"{model_kind} on {train_size} images (seed {seed})",
                              ylim=(0.0, min(1.0, max(0.05, 3 * max(finals)))) if finals else None)
        written = ["regularisation.csv", "regularisation_curves.png"]
        attacked_method = next((name for name in methods
                                if first[name]["fgsm"] is not None and name != "adversarial"),
                               None)
        if attacked_method is not None:
            hardened = first["adversarial"]["examples"] if "adversarial" in first else None
            save_adversarial_examples(first[attacked_method]["examples"], hardened, test,
                                      epsilon, folder / "adversarial_examples.png",
                                      dlcore.datasets.class_noun(dataset), attacked_method,
                                      labels[attacked_method])
            written.append("adversarial_examples.png")
    click.echo(f"wrote {', '.join(written)} to {folder}")
