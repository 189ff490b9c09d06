"""``dlcore bench ...``: speed measured side by side with the tools users would pick instead.

Every bench follows the rules of :mod:`dlcore.bench` (equal work, alternating repeats, min and
median, the machine line, ``--json``); this module holds ``bench rbm`` and what the bench
commands share.
"""
import json
import os
import sys
from pathlib import Path

import click
import numpy as np

from dlcore import bench_isa
from dlcore.cli import main
from dlcore.cli._common import backend_option


class BenchGroup(click.Group):
    """Keeps the arguments given after ``bench``: ``--isa`` runs them again in a child process
    (Numba, MKL and PyTorch read their ISA settings once, when they load)."""

    def parse_args(self, ctx, args):
        ctx.meta["dlcore.bench.arguments"] = list(args)
        return super().parse_args(ctx, args)


@main.group(cls=BenchGroup)
@click.option("--isa", type=click.Choice(bench_isa.CHOICES), default="native",
              show_default=True,
              help="Hold the code of both sides below this CPU's widest vector ISA: avx2 runs "
                   "dlcore's kernels, MKL, OpenBLAS and PyTorch with their AVX2 code (on an "
                   "AVX-512 CPU: what AVX2 code does here; the caches and clock stay this "
                   "CPU's). The machine line says so.")
@click.pass_context
def bench(ctx, isa):
    """Benchmarks: dlcore against PyTorch, scikit-learn and NumPy at equal work, in one run."""
    if isa != "native" and os.environ.get(bench_isa.CAP_VARIABLE) != isa:
        try:
            bench_isa.check_cpu_runs(isa)
        except ValueError as error:
            raise click.UsageError(str(error)) from None
        sys.exit(bench_isa.run_capped(isa, ["bench", *ctx.meta["dlcore.bench.arguments"]]))


def rbm_benchmark_data(rows, seed=0):
    """Fashion-MNIST training images in [0, 1] when Debian's package (or $DLCORE_DATA) has them,
    else random binary data of the same shape; ``rows`` of them. Only those rows are converted
    or drawn (element (r, c) of the random data is drawn from its own counter, so they are the
    first rows of the 60,000 whatever their number): drawing all 60,000 to keep 200 took 6 s
    and 1.1 GB."""
    from dlcore import datasets
    from dlcore.backend import rng
    try:
        images, _ = datasets.load_fashion_mnist("train", download=False, progress=False)
        X, source = datasets.to_unit_interval(images[:rows]), "Fashion-MNIST training images"
    except (OSError, ValueError):
        X = (rng.uniform(min(rows, 60_000), 784, seed, rng.STREAM_SPLIT) < 0.5).astype(np.float32)
        source = "random binary data (Fashion-MNIST not installed)"
    return np.ascontiguousarray(X), source


def json_option(function):
    return click.option("--json", "as_json", is_flag=True,
                        help="Print the report as one JSON object (for dlcore bench "
                             "table).")(function)


def repeats_option(default):
    return click.option("--repeats", type=click.IntRange(min=1), default=default,
                        show_default=True,
                        help="Timed runs per contender, alternating between contenders, after "
                             "a warm-up each.")


def progress(text):
    """Progress lines go to stderr: stdout holds only the table (or the JSON)."""
    click.echo(text, err=True)


def run_benchmark(name, title, setting, make_comparisons, repeats, missing, as_json):
    """Measure the machine, time every comparison that ``make_comparisons()`` returns (in
    order, each in alternation), then print the report (:func:`dlcore.bench.report`) as text
    or JSON. Returns the report."""
    import datetime

    from dlcore import bench as benchmarks
    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = benchmarks.load_average()
    progress("measuring the machine (SGEMM at the RBM's shapes)")
    backend = setting.get("backend", "cpu")
    machine = benchmarks.machine_description(backend=backend)
    results = [benchmarks.compare(comparison, repeats, progress)
               for comparison in make_comparisons()]
    # the SGEMM rate again, after: on a busy machine one measurement may catch a bad moment
    machine["sgemm"] = benchmarks.best_sgemm(machine["sgemm"],
                                             benchmarks.sgemm_rate(backend=backend))
    run = benchmarks.report(name, title, setting, results, machine, missing, load_before,
                            started)
    if as_json:
        click.echo(json.dumps(run, indent=2))
    else:
        for line in benchmarks.format_report(run):
            click.echo(line)
    return run


@bench.command("rbm")
@click.option("--hidden", type=click.IntRange(min=1), default=500, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--rows", type=click.IntRange(min=1, max=60_000), default=60_000,
              show_default=True, help="Training rows per epoch.")
@repeats_option(5)
@click.option("--slow-repeats", type=click.IntRange(min=1), default=1, show_default=True,
              help="Timed runs of the slow contenders (NumPy reference, scikit-learn).")
@click.option("--skip", multiple=True, type=click.Choice(["reference", "sklearn", "torch"]),
              help="Leave a contender out (repeatable).")
@backend_option
@json_option
def bench_rbm(hidden, batch_size, rows, repeats, slow_repeats, skip, backend, as_json):
    """One CD-1 epoch (60,000 x 784 -> 500, batch 100): dlcore vs PyTorch, NumPy, scikit-learn.

    Two equal-work rows: visible units mean-field, then sampled (dlcore's default), both with
    hidden units sampled, momentum 0.5 and weight decay 2e-4; then scikit-learn's own update
    (PCD-1, no momentum) against dlcore doing the same. GFLOP/s count the five products of
    CD-1, against the SGEMM rate measured at the same shapes (dlcore's cpu sums the products
    of binary samples, fewer operations for the same update: its share can pass 100 %).
    """
    from dlcore import bench as benchmarks
    from dlcore import bench_workloads as workloads
    from dlcore.backend import resolve_backend_name
    backend = resolve_backend_name(backend)
    X, source = rbm_benchmark_data(rows)
    include = {"dlcore", "reference", "sklearn", "torch"} - set(skip)
    others = [m for m in ("torch", "sklearn") if m in include
              and benchmarks.races_on(m, backend)]
    setting = {"rows": X.shape[0], "visible": X.shape[1], "hidden": hidden,
               "batch_size": batch_size, "data": source, "backend": backend,
               "repeats": repeats, "slow_repeats": slow_repeats}
    title = (f"one CD-1 epoch: {X.shape[0]:,} x {X.shape[1]} -> {hidden} hidden, batch "
             f"{batch_size}, float32; {source}; {repeats} alternating runs after a warm-up")
    run_benchmark("rbm", title, setting,
                  lambda: workloads.rbm_comparisons(X, hidden, batch_size, backend, include,
                                                    slow_repeats),
                  repeats, benchmarks.missing_contenders(others), as_json)


@bench.command("table")
@click.argument("reports", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--readme", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Rewrite the table between the markers of this file (the README) instead "
                   "of printing it.")
def bench_table(reports, readme):
    """The README's "Measured" table from the JSON reports of one run (dlcore bench ... --json
    > file.json), all of one machine."""
    from dlcore import bench_table as tables
    from dlcore.io import atomic_open
    table = tables.measured_table(tables.read_reports(list(reports)))
    if readme is None:
        click.echo(table, nl=False)
        return
    text = tables.replace_table(readme.read_text(encoding="utf-8"), table)
    with atomic_open(readme, "w", encoding="utf-8") as handle:
        handle.write(text)
    click.echo(f"wrote the measured table of {len(reports)} reports to {readme}")
