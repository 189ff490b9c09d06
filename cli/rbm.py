"""``dlcore rbm ...``: train a Bernoulli RBM, reconstruct with it, sample from it."""
from pathlib import Path

import click
import numpy as np

import dlcore
from dlcore import viz
from dlcore.cli import main
from dlcore.cli._common import (EpochProgress, backend_option, dataset_option,
                                out_folder_option, output_folder, seed_option)
from dlcore.cli._digits import (image_side, load_digit_split, parse_digits,
                                print_reconstruction_table, reconstruction_table, save_filters,
                                save_reconstruction_grid, save_training_curve)


@main.group()
def rbm():
    """Bernoulli RBMs: train, reconstruct, sample."""


def load_rbm(path):
    model = dlcore.load(path)
    if not isinstance(model, dlcore.BernoulliRBM):
        raise click.ClickException(f"{path} holds a {type(model).__name__}, not a BernoulliRBM")
    return model


@rbm.command("train")
@dataset_option()
@click.option("--digits", default="0-9", show_default=True,
              help="Classes to train on: a range '1-5' or a list '0,2,4'.")
@click.option("--hidden", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--cd-k", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--persistent", is_flag=True, help="Persistent CD (Tieleman 2008).")
@click.option("--batch-size", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), default=0.1,
              show_default=True)
@click.option("--momentum", type=click.FloatRange(0, 1, max_open=True), default=0.5,
              show_default=True)
@click.option("--weight-decay", type=click.FloatRange(min=0), default=2e-4, show_default=True)
@click.option("--sparsity-target", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=None, help="Desired mean activation of the hidden units.")
@seed_option
@backend_option
@out_folder_option("runs/rbm")
def train(dataset, digits, hidden, epochs, cd_k, persistent, batch_size, learning_rate,
          momentum, weight_decay, sparsity_target, seed, backend, out):
    """Train a Bernoulli RBM; write model.h5, filters.png and training_curve.png.

    Held-out images (the test split, or 100 per class of mnist-5k) feed the free-energy gap
    monitor: mean F(held-out) - mean F(training), which grows when the RBM over-fits.
    """
    classes = parse_digits("--digits", digits)
    folder = output_folder(out)
    train_images, held_out, _ = load_digit_split(dataset, classes, classes, seed)
    model = dlcore.BernoulliRBM(n_hidden=hidden, learning_rate=learning_rate, cd_k=cd_k,
                                persistent=persistent, momentum=momentum,
                                weight_decay=weight_decay, sparsity_target=sparsity_target,
                                batch_size=batch_size, epochs=epochs, seed=seed,
                                backend=backend)
    progress = EpochProgress("training")
    try:
        model.fit(train_images, X_valid=held_out, progress=progress)
    finally:
        progress.close()
    dlcore.save(model, folder / "model.h5")
    save_filters(model, folder / "filters.png")
    save_training_curve(model, folder / "training_curve.png")
    history = model.history
    click.echo(f"reconstruction error {history['reconstruction_error'][-1]:.5f} per pixel, "
               f"free-energy gap {history['free_energy_gap'][-1]:.3f} after {epochs} epochs")
    click.echo(f"wrote model.h5, filters.png and training_curve.png to {folder}")


@rbm.command("reconstruct")
@click.argument("model_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@dataset_option()
@click.option("--digits", default="0-9", show_default=True, help="Classes to reconstruct.")
@click.option("--per-digit", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--sample-hidden", is_flag=True,
              help="Sample binary hidden states instead of using their probabilities.")
@seed_option
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("reconstructions.png"), show_default=True)
def reconstruct(model_file, dataset, digits, per_digit, sample_hidden, seed, out):
    """Reconstruct held-out images with a saved RBM: a PNG and the error per class."""
    model = load_rbm(model_file)
    classes = parse_digits("--digits", digits)
    output_folder(out.parent)
    _, images, labels = load_digit_split(dataset, classes, classes, seed)
    if images.shape[1] != model.W.shape[0]:
        raise click.ClickException(f"{dataset} images have {images.shape[1]} pixels but the "
                                   f"model has {model.W.shape[0]} visible units")
    table = reconstruction_table(model, images, labels, classes)
    save_reconstruction_grid(model, images, labels, table, out, per_digit, sample_hidden)
    print_reconstruction_table(table)
    click.echo(f"wrote {out}")


@rbm.command("sample")
@click.argument("model_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--n", "n_samples", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--steps", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Gibbs steps from random binary images.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("samples.png"), show_default=True)
def sample(model_file, n_samples, steps, out):
    """Draw fantasies from a saved RBM by block Gibbs sampling; write them as a PNG."""
    model = load_rbm(model_file)
    output_folder(out.parent)
    n_visible = model.W.shape[0]
    side = image_side(n_visible)
    start = (dlcore.backend.rng.uniform(n_samples, n_visible, model.seed_,
                                        dlcore.backend.rng.STREAM_SAMPLE - 1) < 0.5)
    fantasies = model.gibbs(start.astype(np.float32), steps=steps)
    viz.save_tiles(fantasies.reshape(-1, side, side), out, scale=None)
    click.echo(f"wrote {n_samples} samples after {steps} Gibbs steps to {out}")
