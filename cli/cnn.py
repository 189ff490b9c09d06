"""``dlcore cnn train`` and ``dlcore cnn evaluate``: LeNet-5 or an MLP on MNIST-like images.

Training follows lecture "Deep learning I"'s workflow: monitor the training and
validation loss and error every epoch, look at the first layer's filters, evaluate on the test
set at the very end.
"""
import json
import math

import click
import numpy as np

import dlcore
from dlcore import viz
from dlcore.backend import rng
from dlcore.cli import main
from dlcore.cli._common import (
    SMALL_DATA_SET,
    Checkpoints,
    ModelFile,
    backend_option,
    check_rows_to_train,
    checkpoint_option,
    dataset_option,
    load_checkpoint,
    model_dataset_option,
    note_batch_size,
    out_folder_option,
    output_folder,
    publish_metrics,
    refuse_fewer_epochs,
    refuse_unread_options,
    resume_option,
    resumed_options,
    resuming_line,
    saving_trained_model,
    seed_option,
    trained_dataset,
    training_record,
    warn_if_other_dataset,
)
from dlcore.cli._dbn import (
    RESUMED_WEIGHT_DECAY,
    check_momentum,
    check_train_size,
    check_weight_decay,
    make_optimizer,
    resumed_weight_decay,
    weight_decay_option,
)
from dlcore.cli._distributed import distributed_option, fit_options
from dlcore.cli._holdout import held_out_split, split_seed_option
from dlcore.io import atomic_open
from dlcore.training import held_out
from dlcore.wording import with_article

OPTIMIZER_CHOICES = ("sgd", "adagrad", "rmsprop", "adam", "adamw", "nadam", "adamax",
                     "adadelta", "lion", "ftrl")
#: Keras's defaults, but Adadelta's: Keras's 0.001 barely moves the weights in the epochs
#: of a run, and Zeiler's rule (PyTorch's default) is 1
DEFAULT_LEARNING_RATES = {"sgd": 0.01, "adagrad": 0.01, "rmsprop": 0.001, "adam": 0.001,
                          "adamw": 0.001, "nadam": 0.001, "adamax": 0.001, "adadelta": 1.0,
                          "lion": 0.001, "ftrl": 0.001}
#: LeNet-5 with its shifted images learns faster with twice Adam's usual rate.
LENET5_ADAM_RATE = 0.002
#: Test images held out per class of mnist-5k, which has no test split.
HOLDOUT_PER_CLASS = 100
# The defaults of `cnn train`, chosen on the validation splits of mnist-5k and Fashion-MNIST
# (docs/networks.md, "Defaults"): shifted images for LeNet-5; below SMALL_DATA_SET images more
# epochs and dropout, from there fewer epochs and no dropout (LeNet-5 under-fits Fashion-MNIST's
# shifted images with it); a learning rate that falls to LR_FALL of its start over the run.
EPOCHS_SMALL, EPOCHS_LARGE = 60, 40
DROPOUT_SMALL, DROPOUT_LARGE = 0.2, 0.0
LR_FALL = 0.2


@main.group()
def cnn():
    """Convolutional networks: train LeNet-5 (or an MLP) and evaluate saved networks."""


def load_images(dataset, split, lazy=False):
    """(images (n, 1, 28, 28) float32 in [0, 1], labels (n,) int64) of a data set split; with
    ``lazy`` the images stay on disk (:class:`dlcore.lazy_rows.LazyRows`)."""
    images, labels = dlcore.datasets.load_dataset(dataset, split, progress=False, lazy=lazy)
    x = dlcore.datasets.to_unit_interval(images).reshape(len(images), 1, *images.shape[1:])
    return x, labels.astype(np.int64)


def train_and_test_sets(dataset, seed, lazy=False):
    """The training images and a test set: the official test split, or (for mnist-5k, which
    has none) HOLDOUT_PER_CLASS images per class held out by ``holdout_split``. With ``lazy``
    (a data-parallel rank, which reads only its rows) the training images stay on disk; the
    test set is read into memory."""
    if str(dataset).strip().lower() == "mnist-5k":
        x, y = load_images(dataset, "train", lazy)
        train, test = dlcore.datasets.holdout_split(y, HOLDOUT_PER_CLASS, seed=seed)
        return ((x[train], y[train]), (np.asarray(x[test]), y[test]),
                f"{HOLDOUT_PER_CLASS} per class held out")
    return load_images(dataset, "train", lazy), load_images(dataset, "test"), "the test split"


def size_defaults(n_rows, epochs, lr_decay, dropout):
    """``(epochs, lr_decay, dropout)`` for ``n_rows`` training rows, each as given or, when
    None, its default: EPOCHS_SMALL and DROPOUT_SMALL below SMALL_DATA_SET rows, else
    EPOCHS_LARGE and DROPOUT_LARGE; a decay that takes the learning rate to LR_FALL of its
    start over the epochs."""
    small = n_rows < SMALL_DATA_SET
    if epochs is None:
        epochs = EPOCHS_SMALL if small else EPOCHS_LARGE
    if dropout is None:
        dropout = DROPOUT_SMALL if small else DROPOUT_LARGE
    return epochs, LR_FALL ** (1 / epochs) if lr_decay is None else lr_decay, dropout


def build_model(model, input_shape, n_classes, dropout, augment, flip, backend, seed):
    if model == "lenet5":
        augmentation = {"max_shift": 2 if augment else 0, "horizontal_flip": flip}
        return dlcore.models.lenet5(input_shape, n_classes, dropout=dropout, backend=backend,
                                    seed=seed, augment=augmentation if augment or flip else None)
    return dlcore.models.mlp(input_shape, n_classes=n_classes, dropout=dropout, backend=backend,
                             seed=seed)


def first_layer_filters(model):
    """The first weighted layer's kernels as images: conv kernels (F, C, k, k) -> their first
    channel; a dense kernel on flattened images -> one image per unit."""
    layer = next(layer for layer in model.layers if layer.weight_names)
    kernel = layer.get_weights()[0]
    if kernel.ndim == 4:
        return kernel[:, 0]
    return kernel.T.reshape((kernel.shape[1],) + tuple(model.input_shape[-2:]))


def confusion_matrix(labels, predicted, n_classes):
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def save_first_layer_filters(model, path):
    """The first layer's kernels, each enlarged to about 80 pixels a side and titled."""
    kernels = first_layer_filters(model)
    zoom = max(2, 80 // max(kernels.shape[1:]))
    what = "filter" if kernels.shape[1] < model.input_shape[-1] else "unit"
    viz.save_tiles(kernels, path, zoom=zoom, n_columns=min(len(kernels), 8),
                   title=f"first-layer {what}s, each from its lowest (black) to its highest "
                         f"(white) weight",
                   tile_titles=[f"{what} {index + 1}" for index in range(len(kernels))])


def json_history(history):
    """``history`` with null for the NaN of the epochs not validated (--validation-freq):
    JSON has no NaN."""
    return {name: [None if math.isnan(value) else value for value in values]
            for name, values in history.items()}


def last_measured(values):
    """The last number of an epoch that measured it (the last validated epoch's, for val_
    numbers under --validation-freq); NaN when none did."""
    return next((value for value in reversed(values) if not math.isnan(value)), math.nan)


#: What :func:`write_training_outputs` writes in --out beside model.h5.
TRAINING_OUTPUTS = ("training_curve.png", "filters.png", "confusion_matrix.png", "metrics.json")


def write_training_outputs(folder, model, test_labels, predicted, metrics, class_names):
    history = model.history
    curves = {"training loss": history["loss"], "training error":
              [1 - a for a in history.get("accuracy", [])]}
    if "val_loss" in history:
        curves["validation loss"] = history["val_loss"]
        curves["validation error"] = [1 - a for a in history.get("val_accuracy", [])]
    viz.save_curves(curves, folder / "training_curve.png", ylabel="loss / error",
                    title="LeNet-5" if model.name == "lenet5" else model.name)
    save_first_layer_filters(model, folder / "filters.png")
    n_classes = int(np.prod(model.output_shape))
    viz.save_confusion_matrix(confusion_matrix(test_labels, predicted, n_classes),
                              folder / "confusion_matrix.png", class_names=class_names,
                              title=f"{'LeNet-5' if model.name == 'lenet5' else model.name}: "
                                    f"accuracy {metrics['test_accuracy']:.4f}",
                              counts_of=f"held-out test images (of {len(test_labels)}, "
                                        "none trained on)")
    with atomic_open(folder / "metrics.json") as stream:
        stream.write(json.dumps(metrics, indent=2) + "\n")


@cnn.command("train")
@click.option("--model", "model_name", type=click.Choice(["lenet5", "mlp"]), default="lenet5",
              show_default=True,
              help="LeNet-5 (convolutional) or a multilayer perceptron (dense layers only).")
@dataset_option("fashion-mnist")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help=f"Default: {EPOCHS_SMALL} below {SMALL_DATA_SET:,} training images, "
                   f"{EPOCHS_LARGE} from there.")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--optimizer", type=click.Choice(OPTIMIZER_CHOICES), default="adam",
              show_default=True)
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), default=None,
              help=f"Default: 0.01 for sgd and adagrad, 1 for adadelta (Zeiler's rule), 0.001 "
                   f"for the others, Keras's: rmsprop, adam, adamw (weight decay 0.004), nadam, "
                   f"adamax, lion, ftrl ({LENET5_ADAM_RATE} for adam with lenet5).")
@click.option("--momentum", type=click.FloatRange(0, 1, max_open=True), default=0.9,
              show_default=True, help="Momentum of sgd.")
@weight_decay_option
@click.option("--lr-decay", type=click.FloatRange(0, 1, min_open=True), default=None,
              help=f"Multiply the learning rate by this after every epoch (1: constant). "
                   f"Default: {LR_FALL} ** (1 / epochs), so it ends at {LR_FALL:g} of its start.")
@click.option("--augment/--no-augment", default=None,
              help="Random shifts of up to 2 pixels (lenet5; default: on for lenet5).")
@click.option("--flip", is_flag=True,
              help="Mirror half of the training images left-right (lenet5; clothes, not digits).")
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=None,
              help=f"Dropout rate after the hidden dense layers. Default: {DROPOUT_SMALL} below "
                   f"{SMALL_DATA_SET:,} training images, {DROPOUT_LARGE:g} from there.")
@click.option("--validation-split", type=click.FloatRange(0, 1, max_open=True), default=0.1,
              show_default=True)
@click.option("--validation-freq", type=click.IntRange(min=1), default=1, show_default=True,
              help="Validate after every K-th epoch only (Keras's validation_freq); the "
                   "curves and metrics.json have the validated epochs' numbers only.")
@click.option("--train-size", type=click.IntRange(min=2), default=None,
              help="Use only this many training images (quick runs).")
@backend_option
@seed_option
@out_folder_option("runs/cnn")
@checkpoint_option
@resume_option
@resumed_options(RESUMED_WEIGHT_DECAY)
@distributed_option
def train(model_name, dataset, epochs, batch_size, optimizer, learning_rate, momentum,
          weight_decay, lr_decay, augment, flip, dropout, validation_split, validation_freq,
          train_size, backend, seed, out, checkpoint_every, resume, comm):
    """Train a network and test it; write model.h5, training_curve.png, filters.png,
    confusion_matrix.png and metrics.json to --out; print the test accuracy.

    --resume continues a checkpoint with the options of its run: --epochs (the new total),
    --backend, --out and --checkpoint-every may change, any other option given must be the
    checkpoint's.

    The defaults depend on the data set's size: --epochs, and through it --lr-decay. See
    docs/networks.md, "Defaults", for the validation accuracy that chose them.
    """
    if model_name != "lenet5" and (augment or flip):
        raise click.UsageError("--augment and --flip need image layers: use them with "
                               "--model lenet5")
    if augment is None:
        augment = model_name == "lenet5"
    if learning_rate is None and resume is None:
        learning_rate = LENET5_ADAM_RATE if (model_name, optimizer) == ("lenet5", "adam") \
            else DEFAULT_LEARNING_RATES[optimizer]
    if resume is None:
        if optimizer != "sgd":
            check_momentum(optimizer)
        if not validation_split:
            refuse_unread_options(["validation_freq"], "sets how often the held-out images "
                                  "are validated, and --validation-split 0 holds none out",
                                  "give a --validation-split above 0")
        check_weight_decay(weight_decay, learning_rate)
    folder = output_folder(out)
    (x, y), (x_test, y_test), test_source = train_and_test_sets(dataset, seed,
                                                                lazy=comm is not None)
    check_train_size(train_size, len(x), dataset)
    if train_size is not None and train_size < len(x):   # a seeded subset, not the first
        keep = np.sort(rng.permutation(len(x), seed, rng.STREAM_SPLIT, 1)[:train_size])
        x, y = x[keep], y[keep]                              # rows (mnist-5k is class-sorted)
    n_held_out = held_out(len(x), validation_split) if validation_split else 0
    check_rows_to_train(len(x), n_held_out, validation_split)
    n_train = len(x) - n_held_out
    epochs, lr_decay, dropout = size_defaults(n_train, epochs, lr_decay, dropout)
    n_classes = int(max(y.max(), y_test.max())) + 1
    class_names = dlcore.datasets.class_names(dataset, n_classes)
    checkpoints = Checkpoints(folder, checkpoint_every, outputs=["model.h5", *TRAINING_OUTPUTS])
    if resume is None:
        try:
            model = build_model(model_name, x.shape[1:], n_classes, dropout, augment, flip,
                                backend, seed)
        except ValueError as error:   # its advice is Python's: layer arguments to change
            if model_name != "lenet5":
                raise
            reason = str(error).split(":", 1)[0]
            raise click.ClickException(
                f"LeNet-5's layers do not fit the {x.shape[-2]} x {x.shape[-1]} images of "
                f"{dataset} ({reason}): train --model mlp on them") from None
        batches_per_epoch = -(-n_train // batch_size)
        model.compile("cross_entropy", make_optimizer(optimizer, learning_rate, momentum,
                                                      lr_decay, batches_per_epoch,
                                                      weight_decay),
                      ["accuracy"])
    else:   # compiled, with its optimiser state and learning-rate schedule position
        model = load_checkpoint(resume, dlcore.Sequential)
        weight_decay = resumed_weight_decay(model, weight_decay)
        refuse_fewer_epochs(resume, model.epochs_done, epochs)
        checkpoints.track(model, f"epoch {model.epochs_done} of {epochs}")
    click.echo(f"training {model_name} on {len(x):,} {dataset} images ({model.backend.name} "
               f"backend, {model.count_params():,} parameters)", err=True)
    if resume is not None:
        click.echo(resuming_line(model.epochs_done, epochs), err=True)
    note_batch_size(batch_size, n_train)
    with checkpoints.on_interrupt():
        model.fit(x, y, epochs=epochs - model.epochs_done, batch_size=batch_size,
                  validation_split=validation_split, validation_freq=validation_freq,
                  callbacks=[checkpoints.network_callback(epochs)], **fit_options(comm))
    # the epochs' own seconds, over every run of a resumed model: the wall clock of the
    # command counted a new run's set-up (the data, the network) and not that of the run
    # before a resume, so an interrupted and resumed run reported another total
    seconds = math.fsum(model.history.get("seconds", ()))
    model.training_record_ = training_record(dataset, np.unique(y).tolist(), len(x),
                                             test_set=test_source)
    # before testing: a Ctrl-C there loses nothing
    with saving_trained_model(model, folder / "model.h5", checkpoints=checkpoints):
        loss, accuracy = model.evaluate(x_test, y_test)
        predicted = model.predict_classes(x_test)
        metrics = {"model": model_name, "dataset": str(dataset), "test_set": test_source,
                   "test_images": len(x_test), "test_accuracy": accuracy, "test_loss": loss,
                   "epochs": epochs, "batch_size": batch_size, "optimizer": optimizer,
                   "learning_rate": model.history["learning_rate"][0], "lr_decay": lr_decay,
                   "weight_decay": model.optimizer.weight_decay,
                   "augment": augment, "flip": flip, "dropout": dropout,
                   "backend": model.backend.name, "seed": seed, "training_seconds": seconds,
                   "validation_freq": validation_freq, "history": json_history(model.history)}
        write_training_outputs(folder, model, y_test, predicted, metrics, class_names)
    publish_metrics(test_accuracy=accuracy, test_loss=loss, **{
        name: last_measured(values) for name, values in model.history.items()
        if name in ("loss", "accuracy", "val_loss", "val_accuracy")})
    click.echo(f"test accuracy: {accuracy:.4f} ({len(x_test):,} images, {test_source}); "
               f"outputs in {folder}")


@cnn.command("evaluate")
@click.argument("model_file", type=ModelFile())
@model_dataset_option("fashion-mnist")
@click.option("--split", type=click.Choice(["test", "train"]), default="test",
              show_default=True, help="The images evaluated on: the data set's test or training "
                                      "split.")
@split_seed_option
@backend_option
def evaluate(model_file, dataset, split, split_seed, backend):
    """Loss and accuracy of a saved network (model.h5) on a data set: its test split, or on
    mnist-5k the 100 images per class the network was trained without (--split-seed)."""
    model = dlcore.load(model_file)
    if not isinstance(model, dlcore.Sequential):
        raise click.ClickException(f"{model_file} holds {with_article(type(model).__name__)}, "
                                   "not a network: give the model.h5 of `dlcore cnn train` or "
                                   "`dlcore dbn finetune` (`dlcore info` says which command "
                                   "wrote a file)")
    dataset = trained_dataset(model, model_file, dataset, "fashion-mnist")
    split_seed, held_out_images = held_out_split(model, model_file, dataset, split_seed)
    if dlcore.datasets.dataset_key(dataset) == "mnist-5k":
        x, y = train_and_test_sets(dataset, split_seed)[1 if split == "test" else 0]
    else:
        x, y = load_images(dataset, split)
    if int(np.prod(x.shape[1:])) != int(np.prod(model.input_shape)):
        raise click.ClickException(
            f"{dataset} images are {'x'.join(map(str, x.shape[1:]))} but {model_file} takes "
            f"inputs of {'x'.join(map(str, model.input_shape))}: evaluate it on the data set "
            f"it was trained on")
    n_outputs = max(int(np.prod(model.output_shape)), 2)   # one sigmoid output: classes 0, 1
    if int(y.max()) >= n_outputs:
        raise click.ClickException(f"{dataset} has labels up to {int(y.max())} but "
                                   f"{model_file} has {n_outputs} outputs")
    warn_if_other_dataset(model, model_file, dataset)
    model = model.clone(backend=backend)
    if model.loss is None or list(model.metrics) != ["accuracy"]:
        # the classes' accuracy, whatever the file was compiled with (a Keras model's
        # binary_accuracy counts each of the 10 outputs against 0.5: ~0.9 for any model)
        model.compile(model.loss or "cross_entropy", model.optimizer or "sgd", ["accuracy"])
    if tuple(x.shape[1:]) != model.input_shape:
        x = x.reshape((len(x),) + model.input_shape)
    loss, accuracy = model.evaluate(x, y)
    click.echo(f"{model_file}: loss {loss:.4f}, accuracy {accuracy:.4f} on {len(x):,} "
               f"{dataset} {split} images")
    if split == "test":
        click.echo(f"held out: {held_out_images}")
    elif dlcore.datasets.dataset_key(dataset) == "mnist-5k":
        click.echo(f"training images: all but {held_out_images}")
