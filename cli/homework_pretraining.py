"""``dlcore homework pretraining``: the lecture's pretraining table, all five rows, on your data.

Lecture "Deep Neural Networks", "Deep Neural Networks and Backpropagation": "backpropagation
does not work well (if randomly initialized): deep networks trained with backpropagation (no
pretraining) perform worse than shallow nets", with the table of Bengio, Lamblin, Popovici &
Larochelle ("Greedy layer-wise training of deep networks", NIPS 2007) on MNIST:

                                            train.   valid.   test
    DBN, unsupervised pre-training            0%      1.2%    1.2%
    Deep net, auto-associator pre-training    0%      1.4%    1.4%
    Deep net, supervised pre-training         0%      1.7%    2.0%
    Deep net, no pre-training               .004%     2.1%    2.4%
    Shallow net, no pre-training            .004%     1.8%    1.9%

Five networks are trained here on the same split, each fine-tuned the same way (cross-entropy,
SGD with momentum, early stopping on the same validation set): the deep net initialised by
greedy DBN pretraining (``DBN.to_network``), by a stack of denoising autoencoders
(``StackedAutoencoder.to_network``; ``--corruption 0`` gives Bengio et al.'s plain
auto-associators), by greedy supervised pretraining
(:func:`dlcore.pretraining.supervised_greedy`), the same deep net from a random (Glorot)
initialisation, and a shallow net with one hidden layer as wide as the deep net's first.
``--rows`` picks some of them; ``--seeds N`` trains each N times (seeds ``--seed`` ...
``--seed + N - 1``: initialisation, batch order, corruption; the split stays that of
``--seed``) and prints the mean and standard deviation, so that a difference smaller than the
spread is seen to be noise.
"""
import csv

import click
import numpy as np

import dlcore
from dlcore import viz
from dlcore.cli._common import (
    CHECKPOINT_FILE,
    FIGURES_LEFT,
    OUTPUTS_WRITTEN_AGAIN,
    Checkpoints,
    backend_option,
    checkpoint_option,
    dataset_option,
    interrupted_after_training,
    out_folder_option,
    output_folder,
    parse_choices,
    publish_metrics,
    refuse_unread_options,
    resume_option,
    resumed_options,
    saving_trained_model,
    seed_option,
    training_record,
)
from dlcore.cli._dbn import (
    FINETUNE_DEFAULTS,
    check_width,
    error_rate,
    fine_tune,
    load_labelled_split,
    make_optimizer,
    parse_layers,
    pretrain,
    split_off_validation,
    training_subset,
)
from dlcore.cli.dbn import DEFAULT_EPOCHS_PER_LAYER, DEFAULT_LAYERS
from dlcore.cli.homework import homework
from dlcore.io import atomic_open
from dlcore.wording import with_article

#: The rows of the table, in its order: the key --rows takes, the lecture's name, the published
#: (train, valid, test) errors, and the file stem of the fine-tuned network (also its name).
ROWS = {"dbn": ("DBN, unsupervised pre-training", ("0%", "1.2%", "1.2%"), "pretrained_net"),
        "autoencoder": ("Deep net, auto-associator pre-training", ("0%", "1.4%", "1.4%"),
                        "autoencoder_net"),
        "supervised": ("Deep net, supervised pre-training", ("0%", "1.7%", "2.0%"),
                       "supervised_net"),
        "deep": ("Deep net, no pre-training", (".004%", "2.1%", "2.4%"), "deep_net"),
        "shallow": ("Shallow net, no pre-training", (".004%", "1.8%", "1.9%"), "shallow_net")}
#: The rows that pretrain (--epochs-per-layer), in the table's order.
PRETRAINED_ROWS = ("dbn", "autoencoder", "supervised")
#: The rows whose pretraining is a model of its own, saved (and resumable) before fine-tuning.
PRETRAINED_STEMS = {"dbn": "dbn", "autoencoder": "stacked_autoencoder"}
PRETRAINING = "pretraining"
FINE_TUNING = "fine-tuning"
#: What is left once a stage before the last is saved (:func:`saving_trained_model`).
STAGES_LEFT = "the stages after it were not run; run them without training it again"
#: What a resumed run does with a stage before the last that has nothing left to train
#: (``resuming_line``): the outputs are not all that is left
STAGES_AFTER_IT = "its file is written again and the stages after it train"
#: What :func:`write_table` writes once every stage is trained.
TABLE_FILES = ("pretraining.csv", "pretraining_curves.png")
#: The corruption of the stacked denoising autoencoders (Vincent et al. 2008 used 10-40 %).
DEFAULT_CORRUPTION = 0.3
#: The learning rate of the stacked autoencoders' pretraining (momentum 0.9): the rate the
#: tables of docs/autoencoders.md were measured at, kept when the Autoencoder's own default
#: fell to 0.01 (60,000 Fashion-MNIST images diverged at 0.1); on this command's 3,600 to
#: 4,000 training images, 20 epochs a layer, it trains without trouble.
AUTOENCODER_LEARNING_RATE = 0.1


def random_network(sizes, n_classes, seed, backend):
    """Sigmoid Dense layers of ``sizes`` (visible first) and a softmax layer, Glorot-uniform
    initialised from ``seed``: the nets without pretraining."""
    from dlcore.layers import Dense
    layers = [Dense(units, activation="sigmoid") for units in sizes[1:]]
    layers.append(Dense(n_classes, activation="softmax", name="classifier"))
    return dlcore.Sequential(layers, input_shape=(sizes[0],), seed=seed, backend=backend)


def parse_rows(text):
    """``"dbn,deep"`` (or ``"all"``) -> the keys of :data:`ROWS` in the table's order."""
    return parse_choices(text, ROWS, "--rows")


def stages(rows, seeds):
    """The command's stages in order, each ``(row, kind, seed)``: per seed and row, the
    pretraining of the rows that have a model of their own, then the fine-tuning."""
    return [(row, kind, seed) for seed in seeds for row in rows
            for kind in ((PRETRAINING,) if row in PRETRAINED_STEMS else ()) + (FINE_TUNING,)]


def stage_file(stage, n_seeds):
    """The file a finished stage is saved in: ``dbn.h5``, ``deep_net.h5``... (with
    ``_seed<k>`` before ``.h5`` when the command trains several seeds)."""
    row, kind, seed = stage
    stem = PRETRAINED_STEMS[row] if kind == PRETRAINING else ROWS[row][2]
    return f"{stem}{'' if n_seeds == 1 else f'_seed{seed}'}.h5"


def checkpoint_stage(model, path, planned, folder, n_seeds):
    """The index in ``planned`` of the stage whose model a --resume checkpoint holds (a DBN or
    stacked autoencoder being pretrained, or a network being fine-tuned); the stages before it
    must have left their networks in ``folder``."""
    if isinstance(model, dlcore.DBN):
        stage = ("dbn", PRETRAINING, model.seed_)
    elif isinstance(model, dlcore.StackedAutoencoder):
        stage = ("autoencoder", PRETRAINING, model.seed_)
    else:
        row = next((key for key, (_, _, stem) in ROWS.items()
                    if isinstance(model, dlcore.Sequential) and model.name == stem), None)
        stage = (row, FINE_TUNING, getattr(model, "seed", None))
    if stage not in planned:
        raise click.ClickException(f"{path} holds {with_article(type(model).__name__)} that is "
                                   f"not a stage of this command: --resume takes the "
                                   f"{CHECKPOINT_FILE} of an interrupted run of it")
    index = planned.index(stage)
    missing = [stage_file(earlier, n_seeds) for earlier in planned[:index]
               if earlier[1] == FINE_TUNING and not (folder / stage_file(earlier,
                                                                         n_seeds)).exists()]
    if missing:
        raise click.ClickException(f"cannot resume from {path}: the finished stages "
                                   f"{', '.join(missing)} are not in {folder}; give the --out "
                                   "of the interrupted run")
    return index


def stack_position(stack):
    """How far a stacked autoencoder's training got: "autoencoder 2 of 2, epoch 4 of 20"."""
    started = [ae for ae in stack.autoencoders_ if getattr(ae, "epochs_done_", 0) > 0]
    if not started:
        return "no epoch"
    return (f"autoencoder {len(started)} of {len(stack.autoencoders_)}, epoch "
            f"{started[-1].epochs_done_} of {started[-1].epochs}")


def percent(values):
    """``"5.30%"``, or ``"5.30±0.21%"`` (mean ± sample standard deviation) over seeds."""
    values = 100 * np.asarray(values, dtype=np.float64)
    if len(values) == 1:
        return f"{values[0]:.2f}%"
    return f"{values.mean():.2f}±{values.std(ddof=1):.2f}%"


def print_table(rows, results, n_seeds):
    """One line per row: its errors (mean ± std over the seeds) beside the published ones."""
    width = 9 if n_seeds == 1 else 15
    spread = "" if n_seeds == 1 else f", mean ± std over {n_seeds} seeds"
    titles = ("train.", "valid.", "test")
    click.echo(f"{'':40}" + "".join(f"{title:>{width}}" for title in titles) + "   |"
               + "".join(f"{title:>7}" for title in titles)
               + f"   (measured{spread} | Bengio et al. 2007, MNIST)")
    for row in rows:
        name, published, _ = ROWS[row]
        errors = np.array([entry[0] for entry in results[row]])
        click.echo(f"{name:40}" + "".join(f"{percent(errors[:, k]):>{width}}" for k in range(3))
                   + "   |" + "".join(f"{value:>7}" for value in published))


def write_csv(path, rows, results, seeds):
    """One line per row and seed; with several seeds also their mean and standard deviation."""
    with atomic_open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["model", "seed", "train_error", "valid_error", "test_error", "epochs"])
        for row in rows:
            name = ROWS[row][0]
            for seed, (errors, history) in zip(seeds, results[row]):
                writer.writerow([name, seed, *(f"{e:.6f}" for e in errors),
                                 len(history["loss"])])
            if len(seeds) > 1:
                errors = np.array([entry[0] for entry in results[row]])
                epochs = [len(entry[1]["loss"]) for entry in results[row]]
                writer.writerow([name, "mean", *(f"{e:.6f}" for e in errors.mean(axis=0)),
                                 f"{np.mean(epochs):.1f}"])
                writer.writerow([name, "std", *(f"{e:.6f}" for e in errors.std(axis=0, ddof=1)),
                                 f"{np.std(epochs, ddof=1):.1f}"])


@homework.command("pretraining")
@dataset_option()
@click.option("--train-size", type=click.IntRange(min=10), default=None,
              help="Training images drawn from the data set's training split (a validation "
                   "tenth is held out of them); default: all (4,000 of mnist-5k).")
@click.option("--layers", "layers_text", default=DEFAULT_LAYERS, show_default=True,
              help="The deep net, visible first; the shallow net keeps the first hidden layer.")
@click.option("--rows", "rows_text", default=",".join(ROWS), show_default=True,
              help="Rows of the table to train, joined by commas.")
@click.option("--seeds", "n_seeds", type=click.IntRange(min=1), default=1, show_default=True,
              help="Train every row with this many seeds (--seed, --seed + 1, ...) and print "
                   "the mean ± standard deviation.")
@click.option("--epochs-per-layer", type=click.IntRange(min=1),
              default=DEFAULT_EPOCHS_PER_LAYER, show_default=True,
              help="Pretraining epochs of each layer: CD epochs of each RBM, epochs of each "
                   "autoencoder and of each supervised layer.")
@click.option("--corruption", type=click.FloatRange(0, 1, max_open=True),
              default=DEFAULT_CORRUPTION, show_default=True,
              help="Masking corruption of the stacked denoising autoencoders (0: plain "
                   "auto-associators, as Bengio et al.).")
@click.option("--epochs", type=click.IntRange(min=1), default=FINETUNE_DEFAULTS["epochs"],
              show_default=True, help="Most fine-tuning epochs (early stopping ends sooner).")
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True),
              default=FINETUNE_DEFAULTS["learning_rate"], show_default=True,
              help="SGD learning rate of the fine-tuning and of the supervised pretraining "
                   "(momentum 0.9).")
@click.option("--batch-size", type=click.IntRange(min=1),
              default=FINETUNE_DEFAULTS["batch_size"], show_default=True)
@click.option("--patience", type=click.IntRange(min=0), default=FINETUNE_DEFAULTS["patience"],
              show_default=True)
@seed_option
@backend_option
@out_folder_option("runs/pretraining")
@checkpoint_option
@resume_option
@resumed_options()
def pretraining(dataset, train_size, layers_text, rows_text, n_seeds, epochs_per_layer,
                corruption, epochs, learning_rate, batch_size, patience, seed, backend, out,
                checkpoint_every, resume):
    """The lecture's table (Bengio et al., NIPS 2007): does pretraining help?

    Prints the train, validation and test error of a deep net pretrained as a DBN, as a stack
    of denoising autoencoders and greedily with the labels, the same net without pretraining,
    and a shallow net; writes pretraining.csv, pretraining_curves.png (the validation error of
    each while it is fine-tuned) and each stage's model as it ends: dbn.h5,
    stacked_autoencoder.h5, pretrained_net.h5, autoencoder_net.h5, supervised_net.h5,
    deep_net.h5, shallow_net.h5 (with _seed<k> in the names when --seeds is above 1).
    """
    layers = parse_layers(layers_text)
    if len(layers) < 3:
        raise click.BadParameter(f"{layers_text!r}: a deep net needs at least two hidden "
                                 "layers, e.g. 784-500-500", param_hint="--layers")
    rows = parse_rows(rows_text)
    if resume is None:   # a resumed run's options are its checkpoint's
        if "autoencoder" not in rows:
            refuse_unread_options(["corruption"], "sets the denoising autoencoders of the "
                                  f"autoencoder row, which --rows {rows_text} does not train",
                                  "add autoencoder to --rows")
        if not set(PRETRAINED_ROWS) & set(rows):
            refuse_unread_options(["epochs_per_layer"], "sets the pretraining, which --rows "
                                  f"{rows_text} does not run", "add "
                                  f"{', '.join(PRETRAINED_ROWS[:-1])} or {PRETRAINED_ROWS[-1]} "
                                  "to --rows")
    seeds = [seed + k for k in range(n_seeds)]
    folder = output_folder(out)
    (X, y), test = load_labelled_split(dataset)
    check_width(X.shape[1], layers[0], dataset)
    X, y = training_subset(X, y, train_size, seed, dataset)
    train, valid = split_off_validation(X, y, FINETUNE_DEFAULTS["validation_split"], seed)
    n_classes = int(y.max()) + 1
    planned = stages(rows, seeds)
    resumed = None if resume is None else dlcore.load(resume)
    first = 0 if resumed is None else checkpoint_stage(resumed, resume, planned, folder,
                                                       n_seeds)
    # the stages finished before an interruption are read, not written again
    checkpoints = Checkpoints(folder, checkpoint_every, outputs=[
        *(stage_file(stage, n_seeds) for stage in planned[first:]), *TABLE_FILES])
    settings = {"layers": layers, "n_classes": n_classes, "epochs_per_layer": epochs_per_layer,
                "corruption": corruption, "learning_rate": learning_rate,
                "batch_size": batch_size, "backend": backend, "epochs": epochs,
                "patience": patience}
    results = {row: [] for row in rows}
    pretrained = {}
    # each stage's file says what it was trained on and by which command (whose mnist-5k
    # split is dbn's fixed one, which cnn evaluate then measures it on)
    record = training_record(dataset, np.unique(y).tolist(), len(train[0]))
    saved = None   # the last stage's file this run saved
    try:
        for index, stage in enumerate(planned):
            row, kind, _ = stage
            name = stage_file(stage, n_seeds)
            if index < first:            # finished before the interruption
                if kind == FINE_TUNING:
                    network = dlcore.load(folder / name)
                    results[row].append(evaluate(network, train, valid, test))
                checkpoints.finished_files.append(name)
                continue
            last = index == len(planned) - 1
            model = train_stage(stage, resumed if index == first else None, pretrained, train,
                                valid, checkpoints, settings, n_seeds,
                                OUTPUTS_WRITTEN_AGAIN if last else STAGES_AFTER_IT)
            model.training_record_ = record
            # first: a Ctrl-C in what follows loses no training
            with saving_trained_model(model, folder / name,
                                      FIGURES_LEFT if last else STAGES_LEFT, checkpoints):
                if kind == FINE_TUNING:
                    results[row].append(evaluate(model, train, valid, test))
                if last:
                    write_table(folder, rows, results, seeds, planned)
            saved = folder / name
            checkpoints.finished_files.append(name)
    except KeyboardInterrupt:
        # between two stages (the next network built, its kernels compiled), outside the
        # handlers of both: the run goes on from the last file it saved
        if saved is None:
            raise
        raise interrupted_after_training(saved, STAGES_LEFT) from None


def train_stage(stage, resumed, pretrained, train, valid, checkpoints, settings, n_seeds,
                then):
    """The model of ``stage``, trained from the start or on from the ``resumed`` checkpoint: a
    DBN or stack of autoencoders pretrained (kept in ``pretrained`` for its fine-tuning), or a
    network fine-tuned. ``then``: what the run does when ``resumed`` has no epoch left
    (``resuming_line``'s)."""
    row, kind, seed = stage
    if kind == PRETRAINING:
        pretrained[row] = pretrain_stage(row, seed, resumed, train, checkpoints, settings,
                                         then)
        return pretrained[row]
    click.echo(f"fine-tuning: {ROWS[row][0]}" + ("" if n_seeds == 1 else f" (seed {seed})"),
               err=True)
    if resumed is not None:
        network, optimizer = resumed, None
    else:
        network = initial_network(row, seed, pretrained.get(row), train, checkpoints, settings)
        optimizer = make_optimizer("sgd", settings["learning_rate"], 0.9)
    fine_tune(network, train, valid, optimizer, settings["epochs"], settings["batch_size"],
              settings["patience"], checkpoints=checkpoints, then=then)
    return network


def write_table(folder, rows, results, seeds, planned):
    """Print the table and write pretraining.csv and pretraining_curves.png."""
    n_seeds = len(seeds)
    print_table(rows, results, n_seeds)
    publish_metrics(**{f"{row}_{kind}_error": np.mean([entry[0][k] for entry in results[row]])
                       for row in rows for k, kind in enumerate(("train", "valid", "test"))})
    table, curves = TABLE_FILES
    write_csv(folder / table, rows, results, seeds)
    viz.save_curves({ROWS[row][0]: [1 - a for a in results[row][0][1]["val_accuracy"]]
                     for row in rows}, folder / curves,
                    ylabel="validation error",
                    title="fine-tuning with and without pretraining"
                    + ("" if n_seeds == 1 else f" (seed {seeds[0]})"))
    click.echo(f"wrote {table}, {curves} and "
               f"{', '.join(stage_file(stage, n_seeds) for stage in planned)} to {folder}")


def evaluate(network, train, valid, test):
    """``((train, valid, test) error rates, fine-tuning history)`` of a network."""
    return tuple(error_rate(network, *data) for data in (train, valid, test)), network.history


def pretrain_stage(row, seed, resumed, train, checkpoints, settings, then):
    """The DBN or the stack of denoising autoencoders of ``row``, trained greedily on the
    training images (from the start, or on from the ``resumed`` checkpoint; ``then``: what the
    run does when it has no epoch left)."""
    layers, epochs = settings["layers"], settings["epochs_per_layer"]
    if row == "dbn":
        model = resumed or dlcore.DBN(layers=layers, epochs=epochs, seed=seed,
                                      backend=settings["backend"])
        return pretrain(model, train[0], checkpoints=checkpoints, resuming=resumed is not None,
                        rate_options={}, then=then)    # --learning-rate is the fine-tuning's
    model = resumed or dlcore.StackedAutoencoder(
        layers=layers, epochs=epochs, corruption=settings["corruption"],
        learning_rate=AUTOENCODER_LEARNING_RATE, seed=seed, backend=settings["backend"])
    return pretrain(model, train[0], checkpoints=checkpoints, resuming=resumed is not None,
                    rate_options={}, what="autoencoder", position=stack_position, then=then)


def initial_network(row, seed, pretrained, train, checkpoints, settings):
    """The network of ``row`` before fine-tuning, named after its file."""
    layers, n_classes, backend = settings["layers"], settings["n_classes"], settings["backend"]
    if row in PRETRAINED_STEMS:
        network = pretrained.to_network(n_classes)
    elif row == "supervised":
        click.echo(f"supervised pre-training, {len(layers) - 1} layers", err=True)
        with checkpoints.on_interrupt():
            network = dlcore.pretraining.supervised_greedy(
                layers, *train, n_classes=n_classes, epochs=settings["epochs_per_layer"],
                learning_rate=settings["learning_rate"], momentum=0.9,
                batch_size=settings["batch_size"], seed=seed, backend=backend, verbose=1)
    else:
        network = random_network(layers if row == "deep" else layers[:2], n_classes, seed,
                                 backend)
    network.name = ROWS[row][2]
    return network
