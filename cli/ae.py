"""``dlcore ae train``: train a denoising autoencoder and draw what it learned.

Lecture "Supervised learning" (the deep "sparse/denoising" autoencoder beside RBMs and DBNs):
the command mirrors ``dlcore rbm train`` (the same data options, checkpoints and ``--resume``)
and writes model.h5, filters.png (each hidden unit's incoming weights), reconstructions.png
(held-out images, their corrupted copies and the reconstructions of those) and
training_curve.png (the loss per epoch, training and held-out).
"""
import click
import numpy as np

import dlcore
from dlcore import viz
from dlcore.autoencoder.corruption import CORRUPTION_KINDS
from dlcore.autoencoder.estimator import DEFAULT_LEARNING_RATE, DEFAULT_SPARSITY_COST
from dlcore.autoencoder.model import DECODER_ACTIVATIONS, ENCODER_ACTIVATIONS, LOSSES
from dlcore.cli import main
from dlcore.cli._common import (
    Checkpoints,
    backend_option,
    checkpoint_option,
    dataset_option,
    in_option_names,
    out_folder_option,
    output_folder,
    publish_metrics,
    refuse_unread_options,
    resume_option,
    resumed_options,
    resumed_rbm,
    saving_trained_model,
    seed_option,
    train_rbm,
    training_record,
)
from dlcore.cli._digits import image_side, load_digit_split, parse_digits, save_filters
from dlcore.cli._distributed import distributed_option, fit_options
from dlcore.wording import count

#: The options of ``ae train`` and the Autoencoder parameters they set: a resumed model keeps
#: its own.
AE_HYPERPARAMETERS = {"hidden": "n_hidden", "epochs": "epochs", "tied": "tied_weights",
                      "corruption": "corruption", "corruption_kind": "corruption_kind",
                      "activation": "activation",
                      "decoder_activation": "decoder_activation", "loss": "loss",
                      "sparsity_target": "sparsity_target", "sparsity_cost": "sparsity_cost",
                      "batch_size": "batch_size", "learning_rate": "learning_rate",
                      "momentum": "momentum", "seed": "seed"}


@main.group()
def ae():
    """Denoising autoencoders: train."""


@ae.command("train")
@dataset_option()
@click.option("--digits", default="0-9", show_default=True,
              help="Classes to train on: a range '1-5' or a list '0,2,4' (Fashion-MNIST's "
                   "also by name: 'Sandal,Sneaker').")
@click.option("--hidden", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True),
              default=DEFAULT_LEARNING_RATE, show_default=True)
@click.option("--momentum", type=click.FloatRange(0, 1, max_open=True), default=0.9,
              show_default=True)
@click.option("--corruption", type=click.FloatRange(min=0), default=0.3, show_default=True,
              help="Fraction of inputs masked or salted, or the std of Gaussian noise; 0: a "
                   "plain autoencoder.")
@click.option("--corruption-kind", type=click.Choice(CORRUPTION_KINDS), default="masking",
              show_default=True,
              help="masking: inputs set to 0; salt_and_pepper: set to 0 or 1 by a fair coin; "
                   "gaussian: noise of std --corruption added; dropout: masking with the kept "
                   "inputs scaled by 1/(1 - --corruption), as Keras's Dropout.")
@click.option("--tied/--untied", default=True, show_default=True,
              help="Decoder weights W' = W^T, or a matrix of their own.")
@click.option("--activation", type=click.Choice(ENCODER_ACTIVATIONS), default="sigmoid",
              show_default=True, help="Hidden units.")
@click.option("--decoder-activation", type=click.Choice(DECODER_ACTIVATIONS), default="sigmoid",
              show_default=True, help="Reconstruction units (sigmoid: pixels in [0, 1]).")
@click.option("--loss", type=click.Choice(LOSSES), default="cross_entropy", show_default=True,
              help="Reconstruction error trained on: cross-entropy (binary inputs in [0, 1]) "
                   "or the squared error.")
@click.option("--sparsity-target", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=None, help="The desired sparsity level: the mean activation the KL "
                                 "penalty pulls each hidden unit to (e.g. 0.05).")
@click.option("--sparsity-cost", type=click.FloatRange(min=0), default=None,
              help=f"Weight beta of that penalty (only with --sparsity-target; default "
                   f"{DEFAULT_SPARSITY_COST:g}, as in Ng's sparse autoencoder notes).")
@seed_option
@backend_option
@out_folder_option("runs/ae")
@checkpoint_option
@resume_option
@resumed_options(AE_HYPERPARAMETERS)
@distributed_option
def train(dataset, digits, hidden, epochs, batch_size, learning_rate, momentum, corruption,
          corruption_kind, tied, activation, decoder_activation, loss, sparsity_target,
          sparsity_cost, seed, backend, out, checkpoint_every, resume, comm):
    """Train a denoising autoencoder; write model.h5, filters.png, reconstructions.png and
    training_curve.png.

    Held-out images (the test split, or 100 per class of mnist-5k) give the held-out loss of
    every epoch and the pictures of the reconstructions.
    """
    classes = parse_digits("--digits", digits, dataset)
    if resume is None and not corruption:
        refuse_unread_options(["corruption_kind"], "sets how the inputs are corrupted, and "
                              "--corruption 0 corrupts none", "give a --corruption above 0")
    if resume is None:
        try:   # from_config checks the combination now: a usage error, before any data
            model = dlcore.Autoencoder.from_config(dict(
                n_hidden=hidden, tied_weights=tied, corruption=corruption,
                corruption_kind=corruption_kind, sparsity_target=sparsity_target,
                sparsity_cost=sparsity_cost, activation=activation,
                decoder_activation=decoder_activation, loss=loss, learning_rate=learning_rate,
                momentum=momentum, batch_size=batch_size, epochs=epochs, seed=seed,
                backend=backend))
            model._check_params(new_training=True)   # and what only a new training refuses
        except ValueError as error:   # in the options' names, not the Python parameters'
            raise click.UsageError(in_option_names(str(error), AE_HYPERPARAMETERS)) from None
    train_images, held_out, held_out_labels = load_digit_split(
        dataset, classes, classes, seed, options=("--digits", "--digits"), comm=comm)
    folder = output_folder(out)
    if resume is not None:
        model = resumed_rbm(resume, dlcore.Autoencoder, epochs, backend)
    checkpoints = Checkpoints(folder, checkpoint_every, outputs=[
        "model.h5", "filters.png", "reconstructions.png", "training_curve.png"])
    train_rbm(model, train_images, checkpoints, resume is not None,
              monitor="loss", unit="per image (training, corrupted inputs)", X_valid=held_out,
              **fit_options(comm))
    model.training_record_ = training_record(dataset, classes, len(train_images))
    # first: a Ctrl-C in the figures loses nothing
    with saving_trained_model(model, folder / "model.h5", checkpoints=checkpoints):
        save_filters(model, folder / "filters.png", what="autoencoder")
        save_denoising_grid(model, held_out, held_out_labels, folder / "reconstructions.png")
        save_loss_curve(model, folder / "training_curve.png")
    history = model.history
    publish_metrics(loss=history["loss"][-1], valid_loss=history["valid_loss"][-1],
                    reconstruction_error=history["reconstruction_error"][-1])
    # the squared error is the training batches' (the reconstructions of their corrupted
    # inputs), which the line named nowhere: it read as the held-out images'
    click.echo(f"loss {history['loss'][-1]:.3f} per image (training, corrupted inputs), "
               f"{history['valid_loss'][-1]:.3f} held-out (clean inputs); squared error "
               f"{history['reconstruction_error'][-1]:.5f} per pixel (training, corrupted "
               f"inputs), after {count(epochs, 'epoch')}")
    click.echo(f"wrote model.h5, filters.png, reconstructions.png and training_curve.png to "
               f"{folder}")


def save_denoising_grid(model, images, labels, path, per_row=10):
    """Four rows of held-out images, one of each class in turn: the originals x, their
    corruptions x~ ~ q(x~ | x), the reconstructions of x~ (the denoising) and those of x."""
    side = image_side(images.shape[1])
    chosen = _one_per_class(images, labels, per_row)
    rows = [chosen, model.corrupt(chosen), model.reconstruct(chosen, corrupted=True),
            model.reconstruct(chosen)]
    kind = f"{model.corruption_kind} {model.corruption:g}"
    viz.save_image_rows([row.reshape(-1, side, side) for row in rows], path,
                        row_labels=["original x", f"corrupted x~ ({kind})",
                                    "reconstruction of x~", "reconstruction of x"],
                        scale="all" if model.decoder_activation == "linear" else None)


def _one_per_class(images, labels, count):
    """The first ``count`` images taking the classes in turn (0, 1, ..., 9, 0, ...)."""
    by_class = [np.flatnonzero(labels == label) for label in sorted(set(labels.tolist()))]
    rows = [indices[rank] for rank in range(len(images)) for indices in by_class
            if rank < len(indices)]
    return images[rows[:count]]


def save_loss_curve(model, path):
    """The loss per image and epoch: training (corrupted inputs, with the sparsity penalty)
    and held-out (clean inputs)."""
    history = model.history
    viz.save_curves({"training (from corrupted inputs)": history["loss"],
                     "held-out (from clean inputs)": history["valid_loss"]}, path,
                    ylabel=f"{model.loss.replace('_', '-')} loss per image",
                    title="Autoencoder reconstruction loss")
