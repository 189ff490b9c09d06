"""``dlcore homework samplers``: CD-1, CD-10, PCD, fast PCD and parallel tempering compared.

Issue 13, section 3, after Salakhutdinov & Murray (2008), "On the quantitative analysis of deep
belief networks": RBMs with the same hidden units, trained on the same data (binary pixels drawn
from the intensities, as theirs) with the same learning rate, momentum, weight decay, batch
size and number of updates, differing only in the sampler of the negative phase
(:mod:`dlcore.rbm.chains`):

    cd1    CD-1, "Deep Neural Networks", slide "RBM Weight Update" (Hinton 2002)
    cd10   CD-10
    pcd    persistent CD with --chains chains (Tieleman 2008)
    fpcd   fast PCD, the same chains on W + W_fast (Tieleman & Hinton 2009)
    pt     parallel tempering, --pt-chains ladders of --temperatures rungs (Desjardins et al.
           2010), geometric from T = 1 to --max-temperature

then the log-likelihood of each, in nats per held-out image (binarised the same way), by
annealed importance sampling (AIS, with the base model of the data's marginals, and RAISE's
bracket when --reverse-rows > 0), next to the model of independent pixels (those marginals
themselves). Writes samplers.csv (one row per model), samples.png (one row of samples per
sampler: the visible probabilities after --sample-steps Gibbs steps of independent chains) and
each model as <sampler>.h5.

The held-out images are binarised by :func:`dlcore.cli._digits.binarized_held_out`, the rule of
``dlcore rbm evaluate --binarize``, and each model file records the run (its data set and
--seed): ``dlcore rbm evaluate cd1.h5 --binarize --ais --runs R --temperatures T`` (R and T
this run's --ais-runs and --ais-temperatures) prints the figure of samplers.csv again.
"""
import contextlib
import csv
import time

import click
import numpy as np

import dlcore
from dlcore import viz
from dlcore.cli._common import (
    TrainingInterrupted,
    _file_identity,
    backend_option,
    dataset_option,
    out_folder_option,
    output_folder,
    parse_choices,
    publish_metrics,
    refuse_protected_outputs,
    refuse_unread_options,
    save_trained_model,
    training_record,
)
from dlcore.cli._dbn import training_subset
from dlcore.cli._digits import binarized_held_out, load_digit_split
from dlcore.cli.homework import homework
from dlcore.io import atomic_open
from dlcore.io.atomic import shell_word
from dlcore.validation import MAX_TEMPERATURES
from dlcore.wording import count, duration

ROWS = {
    "cd1": ("CD-1", {"sampler": "cd", "cd_k": 1}),
    "cd10": ("CD-10", {"sampler": "cd", "cd_k": 10}),
    "pcd": ("PCD", {"sampler": "pcd"}),
    "fpcd": ("FPCD", {"sampler": "fpcd"}),
    "pt": ("PT", {"sampler": "pt"}),
}
SAMPLES_PER_ROW = 10


def parse_samplers(text):
    return parse_choices(text, ROWS, "--samplers")


def independent_pixels(train, test):
    """Mean log p(v) of ``test`` under independent pixels with the training marginals
    p_i (clipped to [1e-4, 1 - 1e-4], as the RBMs' initial visible biases), nats per row."""
    p = np.clip(train.mean(axis=0, dtype=np.float64), 1e-4, 1 - 1e-4)
    return float(np.mean(test @ np.log(p) + (1 - test) @ np.log(1 - p)))


def describe(value):
    """An option's value for the CSV: a ladder as its temperatures to three digits."""
    if isinstance(value, list):
        return "/".join(f"{v:.3g}" for v in value)
    return str(value)


def row_options(name, chains, pt_chains, n_temperatures, max_temperature):
    options = dict(ROWS[name][1])
    if name in ("pcd", "fpcd"):
        options["n_chains"] = chains
    if name == "pt":
        options["n_chains"] = pt_chains
        rungs = np.arange(n_temperatures) / max(n_temperatures - 1, 1)
        options["temperatures"] = [float(t) for t in max_temperature ** rungs]
    return options


def table_row(name, rbm, result, updates, seconds, options):
    """The row of samplers.csv of a trained and measured RBM, which it also prints."""
    low, high = result.interval
    publish_metrics(**{f"{name}_log_likelihood": result.mean})
    swaps = rbm.history.get("swap_acceptance", [float("nan")])[-1]
    swap_text = "" if np.isnan(swaps) else f", swap acceptance {swaps:.2f}"
    click.echo(f"{ROWS[name][0]:>5}: {result.mean:8.2f} nats per held-out image (95% "
               f"interval {low:.2f} to {high:.2f}), trained in {duration(seconds)}{swap_text}")
    return {"sampler": ROWS[name][0], "updates": updates,
            "train_seconds": f"{seconds:.1f}", "ais_log_likelihood": f"{result.mean:.2f}",
            "interval_low": f"{low:.2f}", "interval_high": f"{high:.2f}",
            "raise_bracket": ("" if result.bracket is None else f"{result.bracket[0]:.2f}"),
            "swap_acceptance": "" if np.isnan(swaps) else f"{swaps:.3f}",
            "options": " ".join(f"{k}={describe(v)}" for k, v in options.items())}


@contextlib.contextmanager
def telling_what_was_saved(folder, names, ais_runs, ais_temperatures, reverse_rows):
    """Turn a Ctrl-C into a message that names the model files this run saved in ``folder``
    (told from the files on disk: each is written whole, then renamed), and the ``rbm
    evaluate`` command that prints a saved model's figure of samplers.csv again: the command
    has no --resume, and its AIS estimates take minutes a row."""
    found = {name: _file_identity(folder / f"{name}.h5") for name in names}
    try:
        yield
    except KeyboardInterrupt:
        saved = [folder / f"{name}.h5" for name in names
                 if _file_identity(folder / f"{name}.h5") not in (None, found[name])]
        if not saved:
            raise TrainingInterrupted("interrupted before the first model was saved: nothing "
                                      "was saved") from None
        files = ", ".join(str(path) for path in saved)
        raise TrainingInterrupted(
            f"interrupted: {files} {'is' if len(saved) == 1 else 'are'} saved and complete, but "
            "samplers.csv and samples.png were not all written; a saved model's log-likelihood of "
            f"the table comes out again with: dlcore rbm evaluate {shell_word(saved[0])} "
            f"--binarize --ais --runs {ais_runs} --temperatures {ais_temperatures} "
            f"--reverse-rows {reverse_rows}") from None


@homework.command("samplers")
@dataset_option()
@click.option("--samplers", default="all", show_default=True,
              help="Rows to train: cd1, cd10, pcd, fpcd, pt (comma-separated), or all.")
@click.option("--train-size", type=click.IntRange(min=2), default=None,
              help="Train on this many images drawn (seeded) from the training split, e.g. "
                   "4000 of Fashion-MNIST for mnist-5k's number of updates; default: all.")
@click.option("--hidden", type=click.IntRange(min=1), default=500, show_default=True)
@click.option("--epochs", type=click.IntRange(min=1), default=3, show_default=True,
              help="Passes over the training images: every sampler gets the same updates.")
@click.option("--batch-size", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), default=0.05,
              show_default=True)
@click.option("--momentum", type=click.FloatRange(0, 1, max_open=True), default=0.5,
              show_default=True)
@click.option("--weight-decay", type=click.FloatRange(min=0), default=2e-4, show_default=True)
@click.option("--chains", type=click.IntRange(min=1), default=100, show_default=True,
              help="Persistent chains of PCD and FPCD.")
@click.option("--pt-chains", type=click.IntRange(min=1), default=20, show_default=True,
              help="Ladders of parallel tempering.")
@click.option("--temperatures", "n_temperatures",
              type=click.IntRange(2, MAX_TEMPERATURES), default=5,
              show_default=True, help="Rungs of each ladder.")
@click.option("--max-temperature", type=click.FloatRange(min=1, min_open=True), default=1.5,
              show_default=True, help="The hottest rung's temperature T (beta = 1 / T).")
@click.option("--ais-runs", type=click.IntRange(min=2), default=50, show_default=True,
              help="AIS runs (independent annealing chains) per model.")
@click.option("--ais-temperatures", type=click.IntRange(min=1), default=5000,
              show_default=True, help="Inverse temperatures of AIS (Salakhutdinov & Murray "
                                      "used 14,500 and 100 runs).")
@click.option("--reverse-rows", type=click.IntRange(min=0), default=0, show_default=True,
              help="Held-out rows whose reverse chains (RAISE) bracket the estimate; 0: AIS "
                   "alone.")
@click.option("--sample-steps", type=click.IntRange(min=1), default=200, show_default=True,
              help="Gibbs steps of the fantasies each model draws for the figure.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@backend_option
@out_folder_option("runs/homework-samplers")
def samplers_command(dataset, samplers, train_size, hidden, epochs, batch_size, learning_rate,
                     momentum, weight_decay, chains, pt_chains, n_temperatures, max_temperature,
                     ais_runs, ais_temperatures, reverse_rows, sample_steps, seed, backend, out):
    """Train one RBM per sampler (CD-1, CD-10, PCD, FPCD, PT) on the same binarised images for
    the same number of updates, then print each one's AIS log-likelihood per held-out image;
    write samplers.csv, samples.png and the models."""
    names = parse_samplers(samplers)
    if not {"pcd", "fpcd"} & set(names):
        refuse_unread_options(["chains"], f"sets the persistent chains of pcd and fpcd, which "
                              f"--samplers {samplers} does not train", "add pcd or fpcd to "
                              "--samplers")
    if "pt" not in names:
        refuse_unread_options(["pt_chains", "n_temperatures", "max_temperature"],
                              f"sets the ladders of pt, which --samplers {samplers} does not "
                              "train", "add pt to --samplers")
    folder = output_folder(out)
    refuse_protected_outputs(folder, [*(f"{name}.h5" for name in names), "samplers.csv",
                                      "samples.png"])
    train, test, _ = load_digit_split(dataset, list(range(10)), list(range(10)), seed,
                                      options=("--dataset", "--dataset"))
    train, _ = training_subset(train, None, train_size, seed, dataset)
    train = dlcore.datasets.binarize(train, mode="stochastic", seed=seed)
    test = binarized_held_out(test, seed)
    updates = epochs * -(-len(train) // batch_size)
    click.echo(f"{len(train)} training and {len(test)} held-out {dataset} images (binarised), "
               f"{hidden} hidden units, {updates} updates each")
    baseline = independent_pixels(train, test)
    click.echo(f"independent pixels: {baseline:.2f} nats per held-out image")
    rows, pictures = [], []
    # a Ctrl-C once a model is saved says what --out holds and how to get its figure
    with telling_what_was_saved(folder, names, ais_runs, ais_temperatures, reverse_rows):
        for name in names:
            options = row_options(name, chains, pt_chains, n_temperatures, max_temperature)
            rbm = dlcore.BernoulliRBM(n_hidden=hidden, learning_rate=learning_rate,
                                      momentum=momentum, weight_decay=weight_decay,
                                      batch_size=batch_size, epochs=epochs, seed=seed,
                                      backend=backend, **options)
            started = time.perf_counter()
            rbm.fit(train)
            seconds = time.perf_counter() - started
            # what `dlcore rbm evaluate --binarize` reads back: the data set, the split's seed
            rbm.training_record_ = training_record(dataset, range(10), len(train),
                                                   binarized=True, sampler=name)
            save_trained_model(rbm, folder / f"{name}.h5")   # no room in --out: kept elsewhere
            result = rbm.log_likelihood(test, n_runs=ais_runs, n_temperatures=ais_temperatures,
                                        seed=seed, reverse_rows=reverse_rows)
            rows.append(table_row(name, rbm, result, updates, seconds, options))
            pictures.append(rbm.sample(SAMPLES_PER_ROW, sample_steps, sampler="gibbs",
                                       seed=seed, probabilities=True))
        publish_metrics(independent_pixels_log_likelihood=baseline)
        rows.append({"sampler": "independent pixels", "updates": 0, "train_seconds": "",
                     "ais_log_likelihood": f"{baseline:.2f}", "interval_low": "",
                     "interval_high": "", "raise_bracket": "", "swap_acceptance": "",
                     "options": "exact"})
        with atomic_open(folder / "samplers.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        side = int(round(np.sqrt(train.shape[1])))
        viz.save_tiles(np.concatenate(pictures).reshape(-1, side, side),
                       folder / "samples.png", n_columns=SAMPLES_PER_ROW, scale=None,
                       title="rows: " + ", ".join(ROWS[name][0] for name in names)
                       + f" ({sample_steps} Gibbs steps)")
    click.echo(f"wrote samplers.csv, samples.png and {count(len(names), 'model')} "
               f"({', '.join(f'{name}.h5' for name in names)}) to {folder}")
