"""What ``dlcore dbn ...`` and ``dlcore homework pretraining`` share: labelled data with an honest
test split, layer sizes, fine-tuning with early stopping, and pictures of the layers.

The bundled mnist-5k has no test split: 100 digits of each class are held out with
:func:`dlcore.datasets.holdout_split` and a fixed split seed, so that pretraining (unsupervised)
and fine-tuning never see the digits the test accuracy is measured on, whatever ``--seed`` the
runs use. The other data sets use their official test split.
"""
import contextlib
import hashlib
import math

import click
import numpy as np

import dlcore
from dlcore import datasets
from dlcore.backend import rng
from dlcore.cli._common import (
    OUTPUTS_WRITTEN_AGAIN,
    TRAINING_ERROR_UNIT_OF_UNITS,
    EpochProgress,
    check_rows_to_train,
    refuse_unread_options,
    resuming_line,
)
from dlcore.cli._digits import save_weight_tiles

HELD_OUT_PER_CLASS = 100
SPLIT_SEED = 0
# The fine-tuning defaults of `dlcore dbn finetune` and `dlcore homework pretraining`;
# patience counts as Keras's EarlyStopping does; the documented results were measured when
# dlcore stopped one epoch later, so each default is one more than the count then used.
FINETUNE_DEFAULTS = {"optimizer": "sgd", "learning_rate": 0.1, "momentum": 0.9,
                     "batch_size": 32, "epochs": 60, "patience": 9, "validation_split": 0.1}


def parse_layers(text, option="--layers"):
    """``"784-500-500"`` -> [784, 500, 500], or a usage error naming ``option``."""
    try:
        sizes = [int(part) for part in text.split("-")]
    except ValueError:
        sizes = []
    if len(sizes) < 2 or min(sizes) < 1:
        raise click.BadParameter(f"{text!r}: write the layer sizes joined by '-', visible "
                                 "first, at least two, e.g. 784-500-500", param_hint=option)
    return sizes


def load_labelled_split(dataset, lazy=False):
    """``((X_train, y_train), (X_test, y_test))``: rows in [0, 1] float32, int64 labels. With
    ``lazy`` (a data-parallel rank, which reads only its rows) the training images stay on
    disk (:class:`dlcore.lazy_rows.LazyRows`); the test images are read into memory."""
    if dataset == "mnist-5k":
        images, labels = datasets.load_dataset(dataset, lazy=lazy)
        train_rows, test_rows = datasets.holdout_split(labels, HELD_OUT_PER_CLASS,
                                                       seed=SPLIT_SEED)
        train = images[train_rows], labels[train_rows]
        test = np.asarray(images[test_rows]), labels[test_rows]
    else:
        train = datasets.load_dataset(dataset, split="train", lazy=lazy)
        test = datasets.load_dataset(dataset, split="test")
    return tuple((datasets.to_unit_interval(images), labels.astype(np.int64))
                 for images, labels in (train, test))


def check_width(n_features, n_visible, dataset, model_file=None):
    """One line when ``dataset``'s rows are not as wide as the first layer, with the fix: the
    --layers to give (a new network), or the data set to give ``model_file`` (a saved one)."""
    if n_features != n_visible:
        fix = (f"start --layers with {n_features} (e.g. {n_features}-500-500)"
               if model_file is None else
               f"give the --dataset {model_file} was trained on")
        raise click.ClickException(f"{dataset} images have {n_features} pixels but the first "
                                   f"layer has {n_visible} units: {fix}")


def split_off_validation(X, y, fraction, seed):
    """A seeded random ``fraction`` of (X, y) held out for early stopping:
    ``((X_fit, y_fit), (X_valid, y_valid))``; X_valid in memory even when X is lazy rows (it
    is evaluated whole every epoch)."""
    n_valid = max(1, int(round(fraction * len(X))))
    check_rows_to_train(len(X), n_valid, fraction)
    order = rng.permutation(len(X), seed, rng.STREAM_SPLIT, 1)
    fit, valid = np.sort(order[n_valid:]), np.sort(order[:n_valid])
    return (X[fit], y[fit]), (np.asarray(X[valid]), y[valid])


def check_train_size(size, n_images, dataset):
    """``--train-size`` above the ``n_images`` training images of ``dataset`` is one line: the
    run would otherwise train on fewer images than asked for, unsaid."""
    if size is not None and size > n_images:
        raise click.BadParameter(f"{size} is more than the {n_images} training images of "
                                 f"{dataset}", param_hint="--train-size")


def training_subset(X, y, size, seed, dataset):
    """``size`` rows of (X, y) drawn by Philox(seed, STREAM_SPLIT, step 2), in their order; all
    of them when ``size`` is None; ``--train-size`` above the rows there are is one line.
    ``y`` may be None (unlabelled images)."""
    if size is None:
        return X, y
    check_train_size(size, len(X), dataset)
    rows = np.sort(rng.permutation(len(X), seed, rng.STREAM_SPLIT, 2)[:size])
    return X[rows], None if y is None else y[rows]


def make_optimizer(name, learning_rate, momentum, decay=1.0, batches_per_epoch=1,
                   weight_decay=None):
    """The optimiser ``name`` at ``learning_rate`` (``momentum``: SGD only); with ``decay`` < 1
    its rate is multiplied by ``decay`` after every epoch of ``batches_per_epoch`` updates (a
    StepDecay); ``weight_decay`` its decoupled weight decay (None: the optimiser's default,
    AdamW's 0.004 and none for the others)."""
    optimizers = dlcore.optimizers
    if decay < 1:
        learning_rate = optimizers.StepDecay(learning_rate, step_size=batches_per_epoch,
                                             drop=decay)
    options = {} if weight_decay is None else {"weight_decay": weight_decay}
    if name == "sgd":
        return optimizers.SGD(learning_rate=learning_rate, momentum=momentum, **options)
    return optimizers.OPTIMIZERS[name](learning_rate=learning_rate, **options)


#: where a resumed network keeps the --weight-decay it trained with: its optimiser's, which
#: holds adamw's default decay where the record has no --weight-decay (``resumed_options``)
RESUMED_WEIGHT_DECAY = {"weight_decay": "optimizer.weight_decay"}
#: ``--weight-decay`` of the commands that train a network with a choice of --optimizer
weight_decay_option = click.option(
    "--weight-decay", type=click.FloatRange(min=0), default=None,
    help="Decoupled weight decay lambda of any --optimizer (Keras 3's weight_decay): before "
         "each step the weights are multiplied by 1 - learning rate * lambda. Default: 0.004 "
         "for adamw (Keras's), none for the others.")


def check_momentum(optimizer):
    """Refuse in one line a --momentum given with an --optimizer other than sgd: only SGD
    takes it (:func:`make_optimizer`), and the others trained without it, unsaid."""
    refuse_unread_options(["momentum"], f"sets SGD's momentum, and --optimizer {optimizer} is "
                          "not sgd", "give --optimizer sgd")


def check_weight_decay(weight_decay, learning_rate):
    """Refuse in one line a --weight-decay that, at --learning-rate, would multiply the weights
    by 1 - learning rate * lambda <= 0 at every step: it would zero or flip them, not shrink
    them."""
    if weight_decay is not None and learning_rate * weight_decay >= 1:
        raise click.BadParameter(
            f"{weight_decay:g} at --learning-rate {learning_rate:g} multiplies the weights by "
            f"1 - {learning_rate:g} * {weight_decay:g} = {1 - learning_rate * weight_decay:g} "
            f"before each step, which zeroes or flips them: give a weight decay below "
            f"{1 / learning_rate:g} (Keras's AdamW: 0.004)", param_hint="--weight-decay")


def resumed_weight_decay(model, weight_decay):
    """The weight decay a resumed run trains with: its checkpoint's optimiser's. One given on
    the command line must be it (a checkpoint written before --weight-decay existed has none in
    its record, which the resume would otherwise let pass unused)."""
    trained = model.optimizer.weight_decay
    if weight_decay is not None and not math.isclose(weight_decay, trained or 0.0,
                                                     rel_tol=1e-6):
        raise click.UsageError(
            f"--weight-decay {weight_decay:g} differs from the "
            f"{'weight decay ' + format(trained, 'g') if trained else 'no weight decay'} the "
            f"checkpoint was trained with: a resumed run continues the same training; drop "
            f"the option or start a new run")
    return trained


def fine_tune(network, train, valid, optimizer, epochs, batch_size, patience, verbose=1,
              checkpoints=None, then=OUTPUTS_WRITTEN_AGAIN, **fit_options):
    """Supervised fine-tuning by back-propagation with cross-entropy, stopped when the
    validation loss has not improved for ``patience`` epochs, the best epoch's weights kept.

    ``optimizer`` None resumes a network loaded from a checkpoint (compiled, with its optimiser
    and early-stopping state) for the rest of its ``epochs``. ``checkpoints``
    (:class:`dlcore.cli._common.Checkpoints`) saves it every N epochs and on Ctrl-C. ``then``:
    what the command does when the resumed network has no epoch left (``resuming_line``'s).
    ``fit_options``: more keywords of ``fit`` (``comm``)."""
    from dlcore.callbacks import EarlyStopping
    stopper = EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)
    if optimizer is None:   # fit continues the checkpoint's early-stopping state in stopper
        saved = network.callback_state.get("EarlyStopping") or {}
        # the checkpoint's fit had stopped if its last epoch did not improve (wait > 0) and
        # brought the count to patience: EarlyStopping's rule
        stopped = int(saved.get("wait", 0)) >= max(patience, 1)
        remaining = 0 if stopped else max(0, epochs - network.epochs_done)
        click.echo(resuming_line(network.epochs_done, epochs, stopped=stopped, then=then),
                   err=True)
    else:
        network.compile(loss="cross_entropy", optimizer=optimizer, metrics=["accuracy"])
        remaining = epochs
    callbacks = [stopper]
    guard = contextlib.nullcontext()
    if checkpoints is not None:
        # compiled by now: a Ctrl-C before the first epoch ends saves a network that resumes
        checkpoints.track(network, lambda model: f"epoch {model.epochs_done} of {epochs}")
        callbacks.append(checkpoints.network_callback(epochs))  # after the stopper: its state
        guard = checkpoints.on_interrupt()
    with guard:
        network.fit(*train, epochs=remaining, batch_size=batch_size, validation_data=valid,
                    callbacks=callbacks, verbose=verbose, **fit_options)
    return stopper


def error_rate(network, X, y):
    """Fraction of misclassified rows."""
    return float(np.mean(network.predict(X).argmax(axis=1) != y))


class UpDownLines:
    """The lines of a DBN's up-down epochs, which ``DBN.fit`` runs after its last RBM without
    calling ``progress``: one as they begin, after the last RBM's bar (an epoch of up-down on
    the homework's defaults takes seconds, and the screen was silent), one per finished epoch
    with its generative reconstruction error (the ``history`` entry).

    ``epoch_finished(model)`` is the stack's ``on_epoch_end``; a stack without up-down (a
    StackedAutoencoder, a DBN with ``up_down_epochs=0``) prints nothing."""

    def __init__(self, stack):
        self.stack = stack
        self.said = getattr(stack, "up_down_epochs_done_", 0)

    def begin(self):
        """The line as up-down begins (LayerProgress calls it after the last RBM's line)."""
        epochs = int(getattr(self.stack, "up_down_epochs", 0) or 0)
        if epochs > self.said:
            left = epochs - self.said
            click.echo(f"up-down fine-tuning: {left} epoch{'s' if left != 1 else ''} "
                       f"(a line after each)", err=True)

    def epoch_finished(self, model):
        done = getattr(model, "up_down_epochs_done_", 0)
        if done == self.said:   # an RBM's epoch
            return
        self.said = done
        error = model.history["up_down_reconstruction_error"][-1]
        click.echo(f"up-down: epoch {done}/{model.up_down_epochs}  generative reconstruction "
                   f"error {error:.4f}", err=True)


class LayerProgress:
    """``DBN.fit``'s (or ``StackedAutoencoder.fit``'s) progress callback: one bar per layer's
    model (``what``: "RBM", "autoencoder"), labelled with its layer's sizes (the stack's
    ``layers_``, which ``fit`` sets from the data before the first layer trains), showing
    ``monitor``; ``then()`` is called after the last layer's last line (what the stack trains
    next begins)."""

    def __init__(self, stack, what="RBM", monitor="reconstruction error", then=None):
        self.stack, self.current, self.bar = stack, None, None
        self.what, self.monitor, self.then = what, monitor, then

    def __call__(self, layer, n_layers, epoch, epochs, done, total, error):
        if layer != self.current:
            self.close()
            self.current = layer
            sizes = self.stack.layers_
            self.bar = EpochProgress(f"{self.what} {layer}/{n_layers} "
                                     f"({sizes[layer - 1]}-{sizes[layer]})",
                                     self.monitor, TRAINING_ERROR_UNIT_OF_UNITS
                                     if self.monitor == "reconstruction error" else None)
        self.bar(epoch, epochs, done, total, error)
        if layer == n_layers and epoch == epochs and done == total and self.then is not None:
            self.close()
            self.then()

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def pretrain(dbn, X, y=None, checkpoints=None, resuming=False, rate_options=None, what="RBM",
             position=None, then=OUTPUTS_WRITTEN_AGAIN, **fit_options):
    """``dbn.fit(X, y)`` (``dbn.resume`` when ``resuming``) with a progress bar per layer;
    ``checkpoints`` (:class:`dlcore.cli._common.Checkpoints`) saves the DBN every N epochs and
    on Ctrl-C; ``rate_options``: which option sets which learning rate, for the advice of a
    diverged training (``Checkpoints.on_interrupt``). A StackedAutoencoder trains the same way
    with ``what="autoencoder"`` and its own ``position`` (default: :func:`training_position`,
    a DBN's). ``then``: what the command does when the resumed stack has no epoch left
    (``resuming_line``'s). ``fit_options``: more keywords of ``fit``/``resume`` (``comm``)."""
    position = position or training_position
    up_down = UpDownLines(dbn)
    progress = LayerProgress(dbn, what, "reconstruction error" if what == "RBM" else "loss",
                             then=up_down.begin)
    guard = contextlib.nullcontext()
    if resuming:
        click.echo(resuming_line(*stack_epochs(dbn), where=f" ({position(dbn)})", longer=None,
                                 then=then), err=True)
        if layers_trained(dbn):
            # no RBM's last line is left to say it (LayerProgress's ``then``)
            up_down.begin()
    if checkpoints is not None:
        if resuming:
            checkpoints.track(dbn, position)
        guard = checkpoints.on_interrupt(rate_options)

    def on_epoch_end(model):
        if checkpoints is not None:
            checkpoints.epoch_finished(model, position)
        # after the checkpoint: what a Ctrl-C after the line saves is the epoch it names
        up_down.epoch_finished(model)
    with guard:
        try:
            train = dbn.resume if resuming else dbn.fit
            return train(X, y, progress=progress, on_epoch_end=on_epoch_end, **fit_options)
        finally:
            progress.close()


def layers_trained(stack):
    """Whether every layer's model of a stack (a DBN's RBMs, a StackedAutoencoder's
    autoencoders) has trained all its epochs: what is left is the stack's own (up-down)."""
    models = stack.rbms_ if hasattr(stack, "rbms_") else stack.autoencoders_
    return (len(models) == len(stack.layers_) - 1
            and all(getattr(model, "epochs_done_", 0) >= int(model.epochs) for model in models))


def stack_epochs(stack):
    """``(epochs trained, epochs in all)`` of a DBN's training (its RBMs' epochs, then its
    up-down epochs) or of a StackedAutoencoder's (its autoencoders' epochs)."""
    models = stack.rbms_ if hasattr(stack, "rbms_") else stack.autoencoders_
    done = sum(getattr(model, "epochs_done_", 0) for model in models)
    total = sum(int(model.epochs) for model in models)
    return (done + getattr(stack, "up_down_epochs_done_", 0),
            total + int(getattr(stack, "up_down_epochs", 0) or 0))


def training_position(dbn):
    """How far a DBN's training got: "RBM 2 of 3, epoch 4 of 20" or "up-down epoch 3 of 10"."""
    if dbn.up_down_epochs_done_:
        return f"up-down epoch {dbn.up_down_epochs_done_} of {dbn.up_down_epochs}"
    # an RBM set up but interrupted in its first epoch has trained nothing yet
    started = [rbm for rbm in dbn.rbms_ if getattr(rbm, "epochs_done_", 0) > 0]
    if not started:
        return "no epoch"
    return (f"RBM {len(started)} of {len(dbn.rbms_)}, epoch {started[-1].epochs_done_} of "
            f"{started[-1].epochs}")


def receptive_fields(dbn, index):
    """What hidden units of RBM ``index`` look for in pixel space: the product of the weights
    from the pixels up, W_1 W_2 ... W_k (n_pixels, n_hidden); for the first RBM, W_1 itself
    (lecture "Deep Neural Networks", the figure "Weights 49 x 16x16")."""
    fields = dbn.rbms_[0].W[:dbn.layers_[0]]   # the pixels' rows (not a top RBM's label units)
    for rbm in dbn.rbms_[1:index + 1]:
        fields = fields @ rbm.W[:fields.shape[1]]
    return fields


def layer_filters_name(index):
    """The file of the receptive fields of the DBN's layer ``index`` (0: the first RBM's)."""
    return f"filters_layer{index + 1}.png"


def save_layer_filters(dbn, folder, side, max_units=100):
    """``filters_layer<k>.png``: the receptive fields of the first ``max_units`` units of every
    layer, one side x side tile each. Returns the file names."""
    names = []
    for index in range(len(dbn.rbms_)):
        fields = receptive_fields(dbn, index)[:, :max_units]
        name = layer_filters_name(index)
        save_weight_tiles(fields.T.reshape(-1, side, side), folder / name,
                          f"DBN layer {index + 1}: the receptive field of each unit, "
                          + ("W_1" if index == 0 else f"W_1 ... W_{index + 1}"))
        names.append(name)
    return names


def dbn_digest(dbn):
    """A SHA-256 of the DBN's weights and biases (its content, wherever its file lies)."""
    digest = hashlib.sha256()
    for rbm in dbn.rbms_:
        for name, value in sorted(rbm._parameters().items()):
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(value, dtype=np.float64).tobytes())
    return digest.hexdigest()


def check_resumed_dbn(dbn, dbn_file, network, checkpoint_file):
    """A ``click.UsageError`` when the fine-tuning checkpoint ``network`` was not fine-tuned
    from ``dbn``: its hidden widths differ, or its record names another DBN's digest (a
    checkpoint written before the digest was recorded is checked by widths only)."""
    dense_widths = [layer.units for layer in network.layers
                    if isinstance(layer, dlcore.layers.Dense)][:-1]
    record = getattr(network, "training_record_", None)
    recorded = record.get("dbn_digest") if isinstance(record, dict) else None
    if dense_widths != list(dbn.layers_[1:]):
        widths = "-".join(map(str, dense_widths))
        raise click.UsageError(f"{checkpoint_file} was fine-tuned from a DBN with hidden layers "
                               f"{widths}, not from {dbn_file}; give the DBN file the first "
                               "run fine-tuned")
    if recorded is not None and recorded != dbn_digest(dbn):
        raise click.UsageError(f"{checkpoint_file} was fine-tuned from another DBN than "
                               f"{dbn_file} (other weights); give the DBN file the first run "
                               "fine-tuned")

