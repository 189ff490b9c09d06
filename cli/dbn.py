"""``dlcore dbn ...``: pretrain a Deep Belief Network, fine-tune it as a classifier, sample it.

Lecture "Deep Neural Networks": "Unsupervised pre-learning provides a good initialization of
the network; supervised fine-tuning". ``pretrain`` is the greedy layer-wise training
(:class:`dlcore.DBN`), ``finetune`` turns the DBN into a network (``DBN.to_network``) and trains
it by back-propagation with early stopping, ``sample`` draws fantasies (of a chosen digit when
the DBN was pretrained ``--with-labels``), ``evaluate`` bounds log p(v) from below
(:mod:`dlcore.dbn.bound`).
"""
import math
import sys
from pathlib import Path

import click
import numpy as np
from click.core import ParameterSource

import dlcore
from dlcore import viz
from dlcore.cli import main
from dlcore.cli._common import (
    SMALL_DATA_SET,
    TRAINING_ERROR_UNIT_OF_UNITS,
    Checkpoints,
    ModelFile,
    PngPath,
    backend_option,
    checkpoint_option,
    dataset_option,
    load_checkpoint,
    model_dataset_option,
    note_batch_size,
    out_folder_option,
    output_folder,
    publish_metrics,
    recorded_training,
    refuse_fewer_epochs,
    refuse_unread_options,
    resume_option,
    resumed_options,
    sampling_options,
    saving_trained_model,
    seed_option,
    trained_dataset,
    training_record,
    warn_if_other_dataset,
)
from dlcore.cli._dbn import (
    FINETUNE_DEFAULTS,
    RESUMED_WEIGHT_DECAY,
    check_momentum,
    check_resumed_dbn,
    check_weight_decay,
    check_width,
    dbn_digest,
    fine_tune,
    layer_filters_name,
    load_labelled_split,
    make_optimizer,
    parse_layers,
    pretrain,
    resumed_weight_decay,
    save_layer_filters,
    split_off_validation,
    weight_decay_option,
)
from dlcore.cli._digits import binarized_held_out, image_side
from dlcore.cli._distributed import distributed_option, fit_options
from dlcore.cli._likelihood import ais_options, check_exact_fits, echo_log_likelihood
from dlcore.dbn.classifier import FINETUNE_DEFAULTS as CLASSIFIER_FINETUNE
from dlcore.dbn.classifier import OPTIMIZERS
from dlcore.rbm.chains import default_sampling_method
from dlcore.wording import count, with_article

DEFAULT_LAYERS = "784-500-500"
# Pretraining by data-set size (docs/dbn.md, "Pretraining defaults"): about as many updates per
# RBM either way (mnist-5k: 20 epochs of 200 batches; Fashion-MNIST: 10 of 600), the large set's
# in larger batches, which its validation accuracy after fine-tuning preferred (and take half the
# time).
DEFAULT_EPOCHS_PER_LAYER, DEFAULT_PRETRAIN_BATCH = 20, 20
LARGE_SET_EPOCHS_PER_LAYER, LARGE_SET_PRETRAIN_BATCH = 10, 100
# With --with-labels: epochs of up-down after PCD pretraining (see pretrain_command).
GENERATIVE_UP_DOWN_EPOCHS = 10
# The fine-tuning defaults of `dlcore dbn finetune`, chosen on the validation splits of
# mnist-5k and Fashion-MNIST (docs/dbn.md, "Fine-tuning defaults"). Below SMALL_DATA_SET
# images: random shifts of up to two pixels, which need many epochs and patience to pay off,
# and dropout (Hinton et al. 2012: +1 point of held-out mnist-5k accuracy measured) at a
# constant rate; that recipe is dlcore.DBNClassifier's too, read from its one source. From
# there the net under-fits with the shifts and that dropout: none of the first, less of the
# second, and a rate that falls to LR_FALL of its start over the epochs.
AUGMENT_SHIFT = CLASSIFIER_FINETUNE["shift"]
DEFAULT_DROPOUT = CLASSIFIER_FINETUNE["dropout"]
DEFAULT_INPUT_DROPOUT = CLASSIFIER_FINETUNE["input_dropout"]
LARGE_SET_DROPOUT, LARGE_SET_INPUT_DROPOUT = 0.2, 0.0
FINETUNE_EPOCHS, FINETUNE_PATIENCE = CLASSIFIER_FINETUNE["epochs"], CLASSIFIER_FINETUNE["patience"]
LR_FALL = 0.1


@main.group()
def dbn():
    """Deep Belief Networks: pretrain, fine-tune, sample, evaluate."""


def load_dbn(path, backend=None):
    """The DBN saved in ``path``; computing on ``backend`` when given."""
    model = dlcore.load(path)
    if not isinstance(model, dlcore.DBN):
        raise click.ClickException(f"{path} holds {with_article(type(model).__name__)}, not a DBN "
                                   "(write one with `dlcore dbn pretrain`)")
    if backend is not None:
        for part in (model, *(model.rbms_ or [])):
            part.set_params(backend=backend)
    return model


def label_title(model, label):
    """``"class 3"``, or ``"class 3 (Dress)"`` when the training record names the class."""
    record = recorded_training(model) or {}
    classes, names = record.get("classes"), record.get("class_names")
    if isinstance(classes, list) and isinstance(names, list) and len(classes) == len(names) \
            and label in classes and names[classes.index(label)] != str(label):
        return f"class {label} ({names[classes.index(label)]})"
    return f"class {label}"


def requested_class(model, text, path):
    """The class of ``model.classes_`` that ``--label text`` names: the class as the model
    holds it (a number, or a string for a DBN trained on string labels in Python), or, for a
    model whose training record names its classes (Fashion-MNIST's garments), the name in any
    case; else a usage error listing the classes."""
    classes = model.classes_
    given = text.strip()
    if classes.dtype.kind == "U":
        matches = np.flatnonzero(classes == given)
    else:
        try:
            value = float(given)
        except ValueError:
            value = math.nan
        matches = np.flatnonzero(classes == value)
    record = recorded_training(model) or {}
    recorded, names = record.get("classes"), record.get("class_names")
    if not len(matches) and isinstance(recorded, list) and isinstance(names, list) \
            and len(recorded) == len(names):
        named = [label for label, name in zip(recorded, names)
                 if isinstance(name, str) and name.lower() == given.lower()]
        matches = np.flatnonzero(np.isin(classes, named)) if named else matches
    if len(matches):
        return classes[matches[0]].item()
    if classes.dtype.kind in "iu" and np.array_equal(classes, np.arange(len(classes))):
        listed = f"0-{len(classes) - 1}"
    else:
        listed = ", ".join(map(str, classes.tolist()))
    if isinstance(names, list) and names != [str(label) for label in (recorded or [])]:
        listed += f"; or by name: {', '.join(map(str, names))}"
    raise click.BadParameter(f"{text!r} is not a class of {path} ({listed})",
                             param_hint="--label")


def parse_epochs(text, n_rbms):
    """``"20"`` (every RBM) or ``"20,10,5"`` (one per RBM) -> an int or a list of ints."""
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        values = []
    if not values or min(values) < 1 or len(values) not in (1, n_rbms):
        raise click.BadParameter(f"{text!r}: give one positive number of epochs, or one per "
                                 f"RBM ({n_rbms}) separated by commas",
                                 param_hint="--epochs-per-layer")
    return values[0] if len(values) == 1 else values


@dbn.command("pretrain")
@click.option("--layers", "layers_text", default=DEFAULT_LAYERS, show_default=True,
              help="Layer sizes, visible first: 784-500-500 stacks two RBMs.")
@dataset_option()
@click.option("--epochs-per-layer", default=None,
              help=f"CD epochs of each RBM: one number, or one per RBM ('20,20,10'). Default: "
                   f"{DEFAULT_EPOCHS_PER_LAYER} below {SMALL_DATA_SET:,} training images, else "
                   f"{LARGE_SET_EPOCHS_PER_LAYER}.")
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), default=0.1,
              show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help=f"Default: {DEFAULT_PRETRAIN_BATCH} below {SMALL_DATA_SET:,} training "
                   f"images, else {LARGE_SET_PRETRAIN_BATCH}.")
@click.option("--propagate", type=click.Choice(["mean", "sample"]), default="mean",
              show_default=True, help="Feed each RBM the means Q(h = 1 | v) of the one below, or "
                                      "binary samples h ~ Q(h | v) (the lecture's words).")
@click.option("--with-labels", is_flag=True,
              help="Train the top RBM jointly with the labels (Hinton et al. 2006): enables "
                   "`dlcore dbn sample --label K` and classification by free energy.")
@click.option("--persistent/--no-persistent", default=None,
              help="PCD (Tieleman 2008): negative chains carry on across mini-batches. "
                   "Default: on with --with-labels (a better generative model), else CD-1.")
@click.option("--up-down-epochs", type=click.IntRange(min=0), default=None,
              help="Epochs of up-down (contrastive wake-sleep) fine-tuning of the generative "
                   f"model after pretraining (needs two RBMs). Default: "
                   f"{GENERATIVE_UP_DOWN_EPOCHS} with --with-labels and two RBMs or more, "
                   "else 0.")
@seed_option
@backend_option
@out_folder_option("runs/dbn")
@checkpoint_option
@resume_option(has_epochs=False)
@resumed_options()
@distributed_option
def pretrain_command(layers_text, dataset, epochs_per_layer, learning_rate, batch_size,
                     propagate, with_labels, persistent, up_down_epochs, seed, backend, out,
                     checkpoint_every, resume, comm):
    """Greedy layer-wise pretraining; writes dbn.h5 and filters_layer<k>.png.

    Trains on the training split only (mnist-5k: all but 100 held-out digits per class, the
    ones `dlcore dbn finetune` tests on). With --with-labels the defaults are those of a
    generator: PCD and up-down fine-tuning, without which `dbn sample --label K` mostly draws
    the data's easiest modes (measured on mnist-5k: 95-98 % of label-clamped samples are
    classified as K with them, 11-26 % with CD-1 alone).
    """
    if persistent is None:
        persistent = with_labels
    layers = parse_layers(layers_text)
    if len(layers) == 2:   # (the top RBM of --with-labels reads the images themselves)
        # (a resumed run's layers are its checkpoint's: a second size makes a new run)
        stacks = f"{'the checkpoint' if resume else '--layers'} {layers_text} stacks one RBM"
        second = (f"give a second hidden size ({layers_text}-{layers[-1]})"
                  + (" to a new run" if resume else ""))
        refuse_unread_options(["propagate"], f"sets what each RBM feeds the one above it, and "
                              f"{stacks}", second)
        if up_down_epochs:   # the library's line named its parameter (up_down_epochs=0)
            raise click.UsageError(f"--up-down-epochs {up_down_epochs}: up-down fine-tuning "
                                   f"needs two RBMs, and {stacks}: {second}, or drop "
                                   f"--up-down-epochs")
    if up_down_epochs is None:   # (up-down needs two RBMs: a label-clamped one-RBM DBN has none)
        up_down_epochs = GENERATIVE_UP_DOWN_EPOCHS if with_labels and len(layers) > 2 else 0
    epochs = None if epochs_per_layer is None else parse_epochs(epochs_per_layer,
                                                                len(layers) - 1)
    folder = output_folder(out)
    (X, y), _ = load_labelled_split(dataset, lazy=comm is not None)
    X = X if comm is None else X.over(comm)   # a rank reads its rows only, the mean its stripe
    epochs, batch_size = pretrain_size_defaults(len(X), epochs, batch_size)
    note_batch_size(batch_size, len(X))
    # the training record then shows the values trained with, not None
    click.get_current_context().params.update(
        epochs_per_layer=",".join(map(str, epochs)) if isinstance(epochs, list) else str(epochs),
        batch_size=batch_size)
    # before training (the filters are drawn as square images), and before the width check,
    # whose advice to start --layers with the images' width would not help
    side = image_side(X.shape[1])
    check_width(X.shape[1], layers[0], dataset)
    n_labels = int(y.max()) + 1 if with_labels else 0
    if resume is None:
        model = dlcore.DBN(layers=layers, epochs=epochs, learning_rate=learning_rate,
                           batch_size=batch_size, propagate=propagate, n_labels=n_labels,
                           persistent=persistent, up_down_epochs=up_down_epochs, seed=seed,
                           backend=backend)
    else:   # the file's own hyperparameters; --backend applies
        model = load_checkpoint(resume, dlcore.DBN).set_params(backend=backend)
        for rbm in model.rbms_:
            rbm.set_params(backend=backend)
        layers, with_labels = list(model.layers_), bool(model.n_labels)
        check_width(X.shape[1], layers[0], dataset, resume)
    checkpoints = Checkpoints(folder, checkpoint_every, outputs=[
        "dbn.h5", *(layer_filters_name(index) for index in range(len(layers) - 1))])
    click.echo(f"pretraining a {'-'.join(map(str, layers))} DBN on {len(X)} {dataset} images"
               + (" with their labels" if with_labels else ""), err=True)
    pretrain(model, X, y if with_labels else None, checkpoints,
             resuming=resume is not None, **fit_options(comm))
    model.training_record_ = training_record(dataset, np.unique(y).tolist(), len(X))
    # first: a Ctrl-C in the figures loses nothing
    with saving_trained_model(model, folder / "dbn.h5", checkpoints=checkpoints):
        names = save_layer_filters(model, folder, side)
        if with_labels:
            _, (X_test, y_test) = load_labelled_split(dataset)
            accuracy = float(np.mean(model.predict(X_test) == y_test))
    for index in range(len(layers) - 1):
        error = model.history[f"rbm{index + 1}_reconstruction_error"][-1]
        publish_metrics(**{f"rbm{index + 1}_reconstruction_error": error})
        click.echo(f"RBM {index + 1} ({layers[index]}-{layers[index + 1]}): reconstruction "
                   f"error {error:.5f} {TRAINING_ERROR_UNIT_OF_UNITS} after "
                   f"{count(model.rbms_[index].epochs, 'epoch')}")
    if with_labels:
        publish_metrics(test_accuracy=accuracy)
        click.echo(f"classification by the top RBM's free energy: test accuracy {accuracy:.4f}")
    click.echo(f"wrote dbn.h5 and {', '.join(names)} to {folder}")


@dbn.command("finetune")
@click.argument("dbn_file", type=ModelFile())
@model_dataset_option()
@click.option("--epochs", type=click.IntRange(min=1), default=FINETUNE_EPOCHS,
              show_default=True, help="Most epochs; early stopping usually ends sooner.")
@click.option("--optimizer", type=click.Choice(OPTIMIZERS), default="sgd", show_default=True)
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True),
              default=FINETUNE_DEFAULTS["learning_rate"], show_default=True)
@click.option("--momentum", type=click.FloatRange(0, 1, max_open=True),
              default=FINETUNE_DEFAULTS["momentum"], show_default=True, help="SGD only.")
@weight_decay_option
@click.option("--lr-decay", type=click.FloatRange(0, 1, min_open=True), default=None,
              help=f"Multiply the learning rate by this after every epoch (1: constant). "
                   f"Default: 1 below {SMALL_DATA_SET:,} training images, else "
                   f"{LR_FALL} ** (1 / epochs), so it ends at {LR_FALL:g} of its start.")
@click.option("--batch-size", type=click.IntRange(min=1),
              default=FINETUNE_DEFAULTS["batch_size"], show_default=True)
@click.option("--patience", type=click.IntRange(min=0), default=FINETUNE_PATIENCE,
              show_default=True, help="Epochs without a better validation loss before stopping.")
@click.option("--validation-split", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=FINETUNE_DEFAULTS["validation_split"], show_default=True)
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=None,
              help=f"Dropout rate after every hidden layer (0: none). Default: "
                   f"{DEFAULT_DROPOUT} below {SMALL_DATA_SET:,} training images, else "
                   f"{LARGE_SET_DROPOUT}.")
@click.option("--input-dropout", type=click.FloatRange(0, 1, max_open=True), default=None,
              help=f"Dropout rate of the input pixels (0: none). Default: "
                   f"{DEFAULT_INPUT_DROPOUT} below {SMALL_DATA_SET:,} training images, else "
                   f"{LARGE_SET_INPUT_DROPOUT:g}.")
@click.option("--augment/--no-augment", default=None,
              help=f"Move every training image by a random shift of up to {AUGMENT_SHIFT} "
                   f"pixels each epoch (default: on below {SMALL_DATA_SET:,} training images "
                   f"when the rows are square images of more than {AUGMENT_SHIFT} pixels a "
                   "side).")
@click.option("--flip", is_flag=True,
              help="Mirror half of the training images left-right each epoch (clothes, not "
                   "digits; the rows must be square images).")
@seed_option
@backend_option
@out_folder_option("runs/finetune")
@checkpoint_option
@resume_option
@resumed_options(RESUMED_WEIGHT_DECAY)
@distributed_option
def finetune_command(dbn_file, dataset, epochs, optimizer, learning_rate, momentum,
                     weight_decay, lr_decay, batch_size, patience, validation_split, dropout,
                     input_dropout, augment, flip, seed, backend, out, checkpoint_every, resume,
                     comm):
    """Fine-tune a pretrained DBN as a classifier; writes model.h5, prints test accuracy.

    The network is DBN.to_network(): the RBMs' weights as sigmoid Dense layers (with dropout),
    plus a softmax layer; it is trained by back-propagation with cross-entropy and stopped early
    on a validation split. `dlcore.load("model.h5").predict(X)` takes flat (n, 784) rows in [0, 1].
    """
    if resume is None:
        if optimizer != "sgd":
            check_momentum(optimizer)
        check_weight_decay(weight_decay, learning_rate)
    model = load_dbn(dbn_file)
    dataset = trained_dataset(model, dbn_file, dataset)
    # the record and a resume command then name the data set fine-tuned on
    click.get_current_context().params["dataset"] = dataset
    folder = output_folder(out)
    (X, y), (X_test, y_test) = load_labelled_split(dataset, lazy=comm is not None)
    check_width(X.shape[1], model.layers_[0], dataset, dbn_file)
    warn_if_other_dataset(model, dbn_file, dataset)
    train, valid = split_off_validation(X, y, validation_split, seed)
    if resume is None:
        dropout, input_dropout, lr_decay = size_defaults(len(train[0]), epochs, dropout,
                                                         input_dropout, lr_decay)
        # the training record then shows the values trained with, not None
        click.get_current_context().params.update(dropout=dropout, input_dropout=input_dropout,
                                                  lr_decay=lr_decay)
        network = model.to_network(n_classes=int(y.max()) + 1, dropout=dropout,
                                   input_dropout=input_dropout, seed=seed, backend=backend,
                                   augment=image_shifts(X.shape[1], augment, dataset,
                                                        len(train[0]), flip))
        network_optimizer = make_optimizer(optimizer, learning_rate, momentum, lr_decay,
                                           -(-len(train[0]) // batch_size), weight_decay)
    else:   # compiled, with its optimiser, learning-rate schedule and early-stopping state
        network, network_optimizer = load_checkpoint(resume, dlcore.Sequential), None
        refuse_fewer_epochs(resume, network.epochs_done, epochs)
        resumed_weight_decay(network, weight_decay)
        check_resumed_dbn(model, dbn_file, network, resume)
    checkpoints = Checkpoints(folder, checkpoint_every, outputs=[
        "model.h5", "training_curve.png", "confusion_matrix.png"])
    # the DBN's content, not its path: a resume from another folder names it otherwise
    checkpoints.record_details = {"dbn_digest": dbn_digest(model)}
    click.echo(f"fine-tuning {dbn_file} on {len(train[0])} {dataset} images "
               f"({len(valid[0])} for validation)", err=True)
    note_batch_size(batch_size, len(train[0]))
    stopper = fine_tune(network, train, valid, network_optimizer, epochs, batch_size,
                        patience, checkpoints=checkpoints,
                        **fit_options(comm))
    network.training_record_ = training_record(dataset, np.unique(y).tolist(), len(train[0]),
                                               pretraining=recorded_training(model),
                                               **checkpoints.record_details)
    history = network.history
    # first: a Ctrl-C in the figures loses nothing
    with saving_trained_model(network, folder / "model.h5", checkpoints=checkpoints):
        viz.save_curves({"training loss": history["loss"],
                         "validation loss": history["val_loss"]},
                        folder / "training_curve.png", ylabel="cross-entropy per sample",
                        title="fine-tuning")
        predicted = network.predict(X_test).argmax(axis=1)
        n_classes = network.output_shape[0]
        confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
        np.add.at(confusion, (y_test, predicted), 1)
        viz.save_confusion_matrix(
            confusion, folder / "confusion_matrix.png",
            class_names=dlcore.datasets.class_names(dataset, n_classes),
            title=f"fine-tuned DBN: accuracy {np.mean(predicted == y_test):.4f}",
            counts_of=f"held-out test images (of {len(y_test)}, none trained on)")
        test_accuracy = float(np.mean(predicted == y_test))
    # best_epoch counts from 0 (Keras's index); people count epochs from 1
    best_epoch = None if stopper.best_epoch is None else stopper.best_epoch + 1
    # the accuracy of the epoch kept (the lowest validation loss), not the highest of any
    val_accuracy = history["val_accuracy"][(best_epoch or len(history["loss"])) - 1]
    publish_metrics(best_epoch=best_epoch, epochs_trained=len(history["loss"]),
                    val_accuracy=val_accuracy, test_accuracy=test_accuracy)
    click.echo(f"best epoch {best_epoch} of {len(history['loss'])}: validation "
               f"accuracy {val_accuracy:.4f}")
    click.echo(f"test accuracy {test_accuracy:.4f} on "
               f"{len(y_test)} held-out {dataset} images")
    click.echo(f"wrote model.h5, training_curve.png and confusion_matrix.png to {folder}")


def pretrain_size_defaults(n_rows, epochs, batch_size):
    """``(epochs, batch_size)`` of pretraining on ``n_rows`` training rows, each as given or,
    when None, its default: DEFAULT_EPOCHS_PER_LAYER and DEFAULT_PRETRAIN_BATCH below
    SMALL_DATA_SET rows, else LARGE_SET_EPOCHS_PER_LAYER and LARGE_SET_PRETRAIN_BATCH."""
    small = n_rows < SMALL_DATA_SET
    if epochs is None:
        epochs = DEFAULT_EPOCHS_PER_LAYER if small else LARGE_SET_EPOCHS_PER_LAYER
    if batch_size is None:
        batch_size = DEFAULT_PRETRAIN_BATCH if small else LARGE_SET_PRETRAIN_BATCH
    return epochs, batch_size


def size_defaults(n_rows, epochs, dropout, input_dropout, lr_decay):
    """``(dropout, input_dropout, lr_decay)`` for ``n_rows`` fine-tuning rows and ``epochs``,
    each as given or, when None, its default: below SMALL_DATA_SET rows DEFAULT_DROPOUT and
    DEFAULT_INPUT_DROPOUT at a constant rate (early stopping ends the run first); from there
    LARGE_SET_DROPOUT and LARGE_SET_INPUT_DROPOUT, and a rate that ends at LR_FALL of its start
    (``LR_FALL ** (1 / epochs)`` per epoch), since a large set's validation accuracy still
    creeps up late in the run."""
    small = n_rows < SMALL_DATA_SET
    if dropout is None:
        dropout = DEFAULT_DROPOUT if small else LARGE_SET_DROPOUT
    if input_dropout is None:
        input_dropout = DEFAULT_INPUT_DROPOUT if small else LARGE_SET_INPUT_DROPOUT
    if lr_decay is None:
        lr_decay = 1.0 if small else LR_FALL ** (1 / epochs)
    return dropout, input_dropout, lr_decay


def image_shifts(width, augment, dataset, n_rows, flip=False):
    """The ImageAugmentation arguments of ``--augment`` and ``--flip`` for ``n_rows`` training
    rows of ``width`` values: shifts of up to AUGMENT_SHIFT pixels of the square image the rows
    hold, and left-right mirroring with ``flip``; None when neither applies. ``augment`` None
    (the default) shifts square images of more than AUGMENT_SHIFT pixels a side below
    SMALL_DATA_SET rows only (a sigmoid net on that many images under-fits with the shifts)."""
    side = math.isqrt(width)
    square = side * side == width
    if augment is None:
        # a smaller image shifts out of the picture, which ImageAugmentation refuses
        augment = square and side > AUGMENT_SHIFT and n_rows < SMALL_DATA_SET
    elif augment and not square:
        raise click.BadParameter(f"{dataset} rows of {width} values are not square images, "
                                 "which shifts need: drop --augment", param_hint="--augment")
    elif augment and side <= AUGMENT_SHIFT:
        raise click.BadParameter(f"{dataset} rows of {width} values are {side}x{side} images, "
                                 f"which shifts of up to {AUGMENT_SHIFT} pixels can move "
                                 f"entirely out of the picture: drop --augment",
                                 param_hint="--augment")
    if flip and not square:
        raise click.BadParameter(f"{dataset} rows of {width} values are not square images, "
                                 "which mirroring needs: drop --flip", param_hint="--flip")
    if not (augment or flip):
        return None
    return {"max_shift": AUGMENT_SHIFT if augment else 0, "horizontal_flip": flip,
            "image_shape": (1, side, side)}


def one_number_of_steps(steps, gibbs_steps):
    """The Gibbs steps of ``dbn sample``: --steps, or --gibbs-steps, its older name; both
    given with different numbers are refused in the words of :meth:`dlcore.DBN.sample`."""
    if gibbs_steps is None:
        return steps
    source = click.get_current_context().get_parameter_source("steps")
    if source is ParameterSource.COMMANDLINE and steps != gibbs_steps:
        raise click.UsageError(f"give --steps or --gibbs-steps (its older name), not both: "
                               f"--steps {steps} and --gibbs-steps {gibbs_steps} disagree")
    return gibbs_steps


@dbn.command("sample")
@click.argument("dbn_file", type=ModelFile())
@click.option("--label", default=None,
              help="Draw this class (DBNs pretrained --with-labels): one of the model's classes "
                   "(3; a Fashion-MNIST model's also by name, Dress).")
@click.option("--n", "n_samples", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--steps", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Gibbs steps in the top RBM before the pass down (as `dlcore rbm sample "
                   "--steps`; --gibbs-steps is the older name).")
# an option of its own, not a second name of --steps: click took the last of the two
# silently, and a disagreeing pair is refused, as dbn.sample(steps=, gibbs_steps=) refuses it
@click.option("--gibbs-steps", type=click.IntRange(min=1), default=None, hidden=True,
              help="The older name of --steps: give one of the two.")
@click.option("--sampler", type=click.Choice(["gibbs", "pt"]), default=None,
              help="Block Gibbs chains in the top RBM, or parallel tempering on its ladder "
                   "(not with --label) [default: pt for a top RBM trained with parallel "
                   "tempering and no --label, else gibbs].")
@sampling_options("dbn.sample", gaussian=True)
@backend_option
@click.option("--out", type=PngPath(), default=Path("samples.png"), show_default=True)
def sample_command(dbn_file, label, n_samples, steps, gibbs_steps, sampler, binary, seed,
                   backend, out):
    """Fantasies of a DBN: Gibbs sampling in the top RBM, then one pass down; samples.png
    shows the visible probabilities of that last step (--binary: pixels drawn from them; for
    the Gaussian visible units of a DBN made in Python, their means, --binary: real values
    drawn from them, shown from the lowest to the highest under a key of those values),
    titled with the class when --label clamps one. The samples are those of
    `dlcore.load(DBN_FILE).sample(n, steps, label=K, seed=N)` in Python (with
    probabilities=False for --binary): the same pictures for the same file and seed."""
    steps = one_number_of_steps(steps, gibbs_steps)
    model = load_dbn(dbn_file, backend)
    # first: a checkpoint of an interrupted pretraining is refused in its one line, not after
    # the note on CD-1 generators and the progress bar
    model._check_fitted()
    if label is not None and not model.n_labels:
        raise click.BadParameter(f"{dbn_file} has no label units: pretrain it with "
                                 "--with-labels", param_hint="--label")
    if label is not None and sampler == "pt":
        raise click.BadParameter("parallel tempering does not clamp labels: give --label "
                                 "with --sampler gibbs", param_hint="--sampler")
    if label is not None:
        label = requested_class(model, label, dbn_file)
    side = image_side(model.layers_[0], otherwise=(
        f"sample it in Python, whose rows need no picture: "
        f"dlcore.load({str(dbn_file)!r}).sample({n_samples}, {steps})"))
    output_folder(out.parent, exclusive=False, for_file=out)
    top = model.rbms_[-1]
    if model.generative_ is None and not top.persistent and top.sampler in (None, "cd"):
        click.echo("note: this DBN was pretrained with CD-1 and no up-down, which makes good "
                   "features but a poor generator (its chains settle on a few modes); for "
                   "samples pretrain with --persistent --up-down-epochs 10, or --with-labels",
                   err=True)
    if sampler is None:   # dbn.sample's own choice, named in the title
        sampler = "gibbs" if label is not None else default_sampling_method(top.sampler)
    with click.progressbar(length=1, label="sampling", file=sys.stderr) as bar:
        # the library's own call, so that a notebook's dbn.sample(..., seed=N) draws these
        fantasies = model.sample(n_samples, steps, label=label, sampler=sampler, seed=seed,
                                 probabilities=not binary)
        bar.update(1)
    how = (count(steps, "Gibbs step") if sampler == "gibbs"
           else count(steps, "step", "steps") + " of parallel tempering")
    if model.visible == "gaussian":
        # real values (of standardised data, mostly outside [0, 1]): means E[v | h1] or
        # values drawn from N(E[v | h1], sigma^2), shown from their lowest to their highest
        # under a key of those values, where clipping to [0, 1] would lose most of them
        kind = "real values drawn" if binary else "means E[v | h]"
        scale, key = "all", "visible value" if binary else "visible mean E[v | h]"
    else:
        kind, scale, key = ("binary pixels" if binary else "probabilities"), None, None
    title = f"DBN samples{'' if label is None else ' of ' + label_title(model, label)}, " \
            f"{how} ({kind})"
    viz.save_tiles(fantasies.reshape(-1, side, side), out, scale=scale, title=title, key=key)
    what = "" if label is None else f" of {label_title(model, label)}"
    click.echo(f"wrote {count(n_samples, 'sample')}{what} after {how} to {out}")


@dbn.command("evaluate")
@click.argument("dbn_file", type=ModelFile())
@model_dataset_option()
@click.option("--samples", type=click.IntRange(min=1), default=10, show_default=True,
              help="Draws from the recognition passes Q(h | v) per held-out image.")
@click.option("--exact", is_flag=True,
              help="log Z of the top RBM exactly (at most 24 units in one of its layers) "
                   "instead of by AIS.")
@click.option("--binarize", is_flag=True,
              help="Evaluate on binary pixels drawn from the intensities (Salakhutdinov & "
                   "Murray's test data) by the Philox generator of --seed + 1, as rbm "
                   "evaluate and homework samplers draw them, instead of the intensities "
                   "themselves.")
@ais_options
@seed_option
@backend_option
def evaluate_command(dbn_file, dataset, samples, exact, binarize, runs, temperatures,
                     reverse_rows, seed, backend):
    """The variational lower bound on log p(v) per held-out image (Salakhutdinov & Murray
    2008): Monte Carlo draws through the recognition passes, log Z of the top RBM by AIS with
    RAISE's bracket (progress on stderr). The test split, or mnist-5k's 1,000 held-out images."""
    if exact:
        refuse_unread_options(["runs", "temperatures", "reverse_rows"],
                              "sets the AIS estimate of log Z, which --exact replaces",
                              "drop --exact")
    model = load_dbn(dbn_file, backend)
    if model.n_labels:   # the library's advice names its parameter (n_labels=0), not ours
        raise click.ClickException(
            f"{dbn_file} was pretrained --with-labels: its top RBM models the labels too, and "
            "the bound is on log p(v) of the images alone; evaluate a DBN pretrained without "
            "--with-labels")
    if exact:
        check_exact_fits(model.rbms_[-1], dbn_file, "the top RBM")
    dataset = trained_dataset(model, dbn_file, dataset)
    _, (X_test, _) = load_labelled_split(dataset)
    check_width(X_test.shape[1], model.layers_[0], dataset, dbn_file)
    warn_if_other_dataset(model, dbn_file, dataset)
    if binarize:
        X_test = binarized_held_out(X_test, seed)
    click.echo(f"{len(X_test)} held-out {dataset} images{' (binarised)' if binarize else ''}, "
               f"{dbn_file} ({'-'.join(str(size) for size in model.layers_)})")
    result = model.log_likelihood_bound(
        X_test, method="exact" if exact else "ais", n_samples=samples, n_runs=runs,
        n_temperatures=temperatures, seed=seed, reverse_rows=reverse_rows, verbose=True)
    echo_log_likelihood(result, "lower bound on log p(v)")
