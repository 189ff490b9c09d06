"""``dlcore rbm ...``: train a Bernoulli RBM, reconstruct with it, sample from it, evaluate it."""
from pathlib import Path

import click
import numpy as np

import dlcore
from dlcore import viz
from dlcore.cli import main
from dlcore.cli._common import (
    RBM_HYPERPARAMETERS,
    TRAINING_ERROR_UNIT,
    Checkpoints,
    ModelFile,
    PngPath,
    backend_option,
    checkpoint_option,
    dataset_identity,
    dataset_option,
    model_dataset_option,
    out_folder_option,
    output_folder,
    publish_metrics,
    recorded_training,
    refuse_unread_options,
    resume_option,
    resumed_options,
    resumed_rbm,
    sampling_options,
    saving_trained_model,
    seed_option,
    train_rbm,
    trained_dataset,
    training_record,
    warn_if_other_dataset,
)
from dlcore.cli._digits import (
    binarized_held_out,
    image_side,
    load_digit_split,
    parse_digits,
    print_reconstruction_table,
    reconstruction_table,
    save_filters,
    save_reconstruction_grid,
    save_training_curve,
)
from dlcore.cli._distributed import distributed_option, fit_options
from dlcore.cli._holdout import held_out_split, split_seed_option, training_seed
from dlcore.cli._likelihood import ais_options, check_exact_fits, echo_log_likelihood
from dlcore.rbm.chains import SAMPLERS as SAMPLER_CHOICES
from dlcore.rbm.chains import default_sampling_method
from dlcore.validation import MAX_TEMPERATURES
from dlcore.wording import count, with_article


@main.group()
def rbm():
    """Bernoulli RBMs: train, reconstruct, sample, evaluate."""


def load_rbm(path, backend="auto"):
    """The BernoulliRBM saved in ``path``, computing on ``backend``."""
    model = dlcore.load(path)
    if not isinstance(model, dlcore.BernoulliRBM):
        raise click.ClickException(f"{path} holds {with_article(type(model).__name__)}, not a "
                                   "BernoulliRBM: give the model.h5 of `dlcore rbm train` or "
                                   "`dlcore homework task1` (`dlcore info` says which command "
                                   "wrote a file)")
    return model.set_params(backend=backend)


def trained_classes(model, dataset):
    """The classes of ``dataset`` the model was trained on, from its training record: those
    the record names when it names ``dataset``, none when it names another data set (class 5
    of Fashion-MNIST, a sandal, is not the digit 5), None when the model has no record."""
    record = recorded_training(model)
    classes = record.get("classes") if record else None
    if not isinstance(classes, list) or not all(isinstance(c, int) for c in classes):
        return None
    trained_on = record.get("dataset")
    if isinstance(trained_on, str) and trained_on != dataset_identity(dataset):
        return []
    return classes


@rbm.command("train")
@dataset_option()
@click.option("--digits", default="0-9", show_default=True,
              help="Classes to train on: a range '1-5' or a list '0,2,4' (Fashion-MNIST's "
                   "also by name: 'Sandal,Sneaker').")
@click.option("--hidden", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--cd-k", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--persistent", is_flag=True, help="Persistent CD (Tieleman 2008): --sampler pcd.")
@click.option("--sampler", type=click.Choice(SAMPLER_CHOICES), default=None,
              help="The negative phase: cd (CD-k from the data, the default), pcd (persistent "
                   "chains), fpcd (fast PCD) or pt (parallel tempering). docs/rbm.md compares "
                   "them.")
@click.option("--chains", "n_chains", type=click.IntRange(min=1), default=None,
              help="Persistent chains of pcd, fpcd and pt (default: --batch-size).")
@click.option("--temperatures", "n_temperatures",
              type=click.IntRange(2, MAX_TEMPERATURES), default=10,
              show_default=True, help="Rungs of pt's geometric ladder, T = 1 to 10.")
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
@checkpoint_option
@resume_option
@resumed_options(RBM_HYPERPARAMETERS)
@distributed_option
def train(dataset, digits, hidden, epochs, cd_k, persistent, sampler, n_chains, n_temperatures,
          batch_size, learning_rate, momentum, weight_decay, sparsity_target, seed, backend, out,
          checkpoint_every, resume, comm):
    """Train a Bernoulli RBM; write model.h5, filters.png and training_curve.png.

    Held-out images (the test split, or 100 per class of mnist-5k) feed the free-energy gap
    monitor: mean F(held-out) - mean F(training), which grows when the RBM over-fits.
    """
    classes = parse_digits("--digits", digits, dataset)
    if persistent and sampler not in (None, "pcd"):
        raise click.BadParameter(f"--persistent means --sampler pcd, not {sampler}: give one "
                                 "of them", param_hint="--sampler")
    if sampler in (None, "cd") and not persistent and n_chains is not None:
        raise click.BadParameter("CD-k restarts its chains at the data, one per row: --chains "
                                 "goes with --sampler pcd, fpcd or pt", param_hint="--chains")
    if sampler != "pt" and resume is None:
        chosen = sampler or ("pcd" if persistent else "cd")
        refuse_unread_options(["n_temperatures"], "sets the rungs of parallel tempering's "
                              f"ladder, and --sampler is {chosen}", "give --sampler pt")
    train_images, held_out, _ = load_digit_split(dataset, classes, classes, seed,
                                                 options=("--digits", "--digits"), comm=comm)
    folder = output_folder(out)
    if resume is None:
        model = dlcore.BernoulliRBM(n_hidden=hidden, learning_rate=learning_rate, cd_k=cd_k,
                                    persistent=persistent, momentum=momentum,
                                    weight_decay=weight_decay, sparsity_target=sparsity_target,
                                    batch_size=batch_size, epochs=epochs, seed=seed,
                                    backend=backend, sampler=sampler, n_chains=n_chains,
                                    n_temperatures=n_temperatures)
    else:
        model = resumed_rbm(resume, dlcore.BernoulliRBM, epochs, backend)
    checkpoints = Checkpoints(folder, checkpoint_every,
                              outputs=["model.h5", "filters.png", "training_curve.png"])
    train_rbm(model, train_images, checkpoints, resume is not None,
              X_valid=held_out, **fit_options(comm))
    model.training_record_ = training_record(dataset, classes, len(train_images))
    # first: a Ctrl-C in the figures loses nothing
    with saving_trained_model(model, folder / "model.h5", checkpoints=checkpoints):
        save_filters(model, folder / "filters.png")
        save_training_curve(model, folder / "training_curve.png")
    history = model.history
    publish_metrics(reconstruction_error=history["reconstruction_error"][-1],
                    free_energy_gap=history["free_energy_gap"][-1])
    click.echo(f"reconstruction error {history['reconstruction_error'][-1]:.5f} "
               f"{TRAINING_ERROR_UNIT}, free-energy gap {history['free_energy_gap'][-1]:.3f} after "
               f"{count(epochs, 'epoch')}")
    click.echo(f"wrote model.h5, filters.png and training_curve.png to {folder}")


@rbm.command("reconstruct")
@click.argument("model_file", type=ModelFile())
@model_dataset_option()
@click.option("--digits", default="0-9", show_default=True, help="Classes to reconstruct.")
@click.option("--per-digit", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--sample-hidden", is_flag=True,
              help="Sample binary hidden states instead of using their probabilities.")
@split_seed_option
@click.option("--seed", type=click.IntRange(0, 2 ** 63 - 1), default=None,
              help="Seed of the Philox generator of --sample-hidden: the reconstructions of "
                   "rbm.reconstruct(images, sample_hidden=True, seed=N) on the model file in "
                   "Python [default: the model's own sequence, as "
                   "rbm.reconstruct(images, sample_hidden=True) continues it from the file].")
@backend_option
@click.option("--out", type=PngPath(),
              default=Path("reconstructions.png"), show_default=True)
def reconstruct(model_file, dataset, digits, per_digit, sample_hidden, split_seed, seed,
                backend, out):
    """Reconstruct held-out images with a saved RBM: a PNG and the error per class, each
    class marked seen or unseen in training from the model file's training record (every
    class unseen when the record names another data set). On
    mnist-5k the held-out images are those the model was trained without (--split-seed).
    The reconstructions are those of `dlcore.load(MODEL_FILE).reconstruct(images,
    sample_hidden, seed=N)` in Python, in one call for all the held-out images: the same
    pictures and errors for the same file and seed."""
    if not sample_hidden:
        refuse_unread_options(["seed"], "seeds the hidden states --sample-hidden draws, and it "
                              "is not given", "add --sample-hidden")
    model = load_rbm(model_file, backend)
    dataset = trained_dataset(model, model_file, dataset)
    classes = parse_digits("--digits", digits, dataset)
    split_seed, split = held_out_split(model, model_file, dataset, split_seed)
    _, images, labels = load_digit_split(dataset, classes, classes, split_seed,
                                         options=("--digits", "--digits"))
    if images.shape[1] != model.W.shape[0]:
        raise click.ClickException(f"{dataset} images have {images.shape[1]} pixels but the "
                                   f"model has {model.W.shape[0]} visible units")
    output_folder(out.parent, exclusive=False, for_file=out)
    warn_if_other_dataset(model, model_file, dataset)
    # the library's own call, once for every held-out image, so that a notebook's
    # rbm.reconstruct(images, sample_hidden=True, seed=N) draws these reconstructions, and
    # the pictures are of the reconstructions whose errors the table gives (--sample-hidden
    # ones are worse)
    reconstructions = model.reconstruct(images, sample_hidden=sample_hidden, seed=seed)
    table = reconstruction_table(model, images, labels, trained_classes(model, dataset),
                                 reconstructions)
    names = dlcore.datasets.class_names(dataset, int(labels.max()) + 1)
    save_reconstruction_grid(model, images, labels, table, out, per_digit, sample_hidden,
                             names, reconstructions)
    print_reconstruction_table(table, names, dlcore.datasets.class_noun(dataset))
    click.echo(f"held out: {len(images)} {dataset} images, {split}")
    click.echo(f"wrote {out}")


@rbm.command("sample")
@click.argument("model_file", type=ModelFile())
@click.option("--n", "n_samples", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--steps", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Gibbs steps from random binary hidden states.")
@click.option("--sampler", type=click.Choice(["gibbs", "pt"]), default=None,
              help="Block Gibbs chains, or parallel tempering on the model's ladder of "
                   "temperatures (its n_temperatures/temperatures) [default: pt for a model "
                   "trained with --sampler pt, else gibbs].")
@sampling_options("rbm.sample")
@backend_option
@click.option("--out", type=PngPath(),
              default=Path("samples.png"), show_default=True)
def sample(model_file, n_samples, steps, sampler, binary, seed, backend, out):
    """Draw fantasies from a saved RBM by block Gibbs sampling (or parallel tempering); write
    them as a PNG: the visible probabilities of the last step (--binary: its binary states).
    The samples are those of `dlcore.load(MODEL_FILE).sample(n, steps, seed=N)` in Python
    (with probabilities=True unless --binary): the same pictures for the same file and seed."""
    model = load_rbm(model_file, backend)
    side = image_side(model.W.shape[0], otherwise=(
        f"sample it in Python, whose rows need no picture: "
        f"dlcore.load({str(model_file)!r}).sample({n_samples}, {steps})"))
    output_folder(out.parent, exclusive=False, for_file=out)
    sampler = sampler or default_sampling_method(model.sampler)
    # the library's own call, so that a notebook's rbm.sample(..., seed=N) draws these pictures
    fantasies = model.sample(n_samples, steps, sampler=sampler, seed=seed,
                             probabilities=not binary)
    kind = "binary states" if binary else "probabilities P(v = 1 | h)"
    how = (count(steps, "Gibbs step") if sampler == "gibbs"
           else count(steps, "step", "steps") + " of parallel tempering")
    viz.save_tiles(fantasies.reshape(-1, side, side), out, scale=None,
                   title=f"RBM samples after {how} ({kind})")
    click.echo(f"wrote {count(n_samples, 'sample')} ({kind}) after {how} to {out}")


@rbm.command("evaluate")
@click.argument("model_file", type=ModelFile())
@model_dataset_option()
@click.option("--digits", default="0-9", show_default=True, help="Classes to evaluate on.")
@click.option("--ais", "use_ais", is_flag=True,
              help="Also estimate the log-likelihood by AIS, with RAISE's bracket.")
@click.option("--exact", is_flag=True,
              help="Also compute the log-likelihood exactly (at most 24 hidden units).")
@click.option("--binarize", is_flag=True,
              help="Evaluate on binary pixels drawn from the intensities (Salakhutdinov & "
                   "Murray's test data) by the Philox generator of --seed + 1, as homework "
                   "samplers draws its held-out pixels, instead of the intensities themselves.")
@ais_options
@split_seed_option
@click.option("--seed", type=click.IntRange(0, 2 ** 63 - 1), default=None,
              help="Seed of the Philox generator of --ais and --binarize [default: the --seed "
                   "the model was trained with, so that homework samplers' figures come out "
                   "again].")
@backend_option
def evaluate(model_file, dataset, digits, use_ais, exact, binarize, runs, temperatures,
             reverse_rows, split_seed, seed, backend):
    """Measure a saved RBM on held-out images (the test split, or the 100 per class of
    mnist-5k the model was trained without): reconstruction error per pixel,
    pseudo-log-likelihood per image, and with --ais the log-likelihood per image by annealed
    importance sampling, bracketed by reverse annealing (RAISE). AIS's progress goes to
    stderr."""
    if not use_ais:
        refuse_unread_options(["runs", "temperatures", "reverse_rows"],
                              "sets the AIS estimate, which runs with --ais only", "add --ais")
        if not binarize:
            refuse_unread_options(["seed"], "seeds the draws of --ais and --binarize, and "
                                  "neither is given", "add one of them")
    model = load_rbm(model_file, backend)
    if exact:
        check_exact_fits(model, model_file)
    dataset = trained_dataset(model, model_file, dataset)
    classes = parse_digits("--digits", digits, dataset)
    split_seed, split = held_out_split(model, model_file, dataset, split_seed)
    _, images, _ = load_digit_split(dataset, classes, classes, split_seed,
                                    options=("--digits", "--digits"))
    if images.shape[1] != model.W.shape[0]:
        raise click.ClickException(f"{dataset} images have {images.shape[1]} pixels but the "
                                   f"model has {model.W.shape[0]} visible units")
    warn_if_other_dataset(model, model_file, dataset)
    if seed is None:
        seed = training_seed(model) or 0
    if binarize:
        images = binarized_held_out(images, seed)
    click.echo(f"{len(images)} held-out {dataset} images"
               f"{' (binarised)' if binarize else ''}, {model_file}")
    click.echo(f"held out: {split}"
               + (f"; pixels drawn with seed {seed} + 1" if binarize else ""))
    error = float(np.mean((images - model.reconstruct(images)) ** 2))
    click.echo(f"reconstruction error: {error:.5f} per pixel")
    pseudo = float(np.mean(model.score_samples(images)))
    click.echo(f"pseudo-log-likelihood: {pseudo:.3f} nats per image (summed over "
               f"{images.shape[1]} pixels)")
    if exact:
        echo_log_likelihood(model.log_likelihood(images, method="exact"))
    if use_ais:
        echo_log_likelihood(model.log_likelihood(
            images, n_runs=runs, n_temperatures=temperatures, seed=seed,
            reverse_rows=reverse_rows, verbose=True))
    elif not exact:
        click.echo("log-likelihood: add --ais for an estimate (--exact for small RBMs)")
