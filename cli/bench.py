"""``dlcore bench ...``: speed measured side by side with the tools users would pick instead."""
import json
import os

import click
import numpy as np

from dlcore.cli import main
from dlcore.cli._common import backend_option


@main.group()
def bench():
    """Benchmarks: dlcore against NumPy, scikit-learn and PyTorch, in one run."""


def rbm_benchmark_data(rows, seed=0):
    """Fashion-MNIST training images in [0, 1] when Debian's package (or $DLCORE_DATA) has them,
    else random binary data of the same shape; ``rows`` of them."""
    from dlcore import datasets
    from dlcore.backend import rng
    try:
        images, _ = datasets.load_fashion_mnist("train", download=False, progress=False)
        X, source = datasets.to_unit_interval(images), "Fashion-MNIST training images"
    except (OSError, ValueError):
        X = (rng.uniform(60_000, 784, seed, rng.STREAM_SPLIT) < 0.5).astype(np.float32)
        source = "random binary data (Fashion-MNIST not installed)"
    return np.ascontiguousarray(X[:rows]), source


@bench.command("rbm")
@click.option("--hidden", type=click.IntRange(min=1), default=500, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--rows", type=click.IntRange(min=1, max=60_000), default=60_000,
              show_default=True, help="Training rows per epoch.")
@click.option("--repeats", type=click.IntRange(min=1), default=5, show_default=True,
              help="Timed epochs per fast contender (the slow ones get --slow-repeats).")
@click.option("--slow-repeats", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--skip", multiple=True, type=click.Choice(["reference", "sklearn", "torch"]),
              help="Leave a contender out (repeatable).")
@backend_option
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def bench_rbm(hidden, batch_size, rows, repeats, slow_repeats, skip, backend, as_json):
    """One CD-1 epoch (60,000 x 784 -> 500, batch 100): dlcore vs NumPy, scikit-learn, PyTorch.

    Also measures the machine's SGEMM peak, the ceiling of the five products of CD-1.
    """
    from dlcore import bench as benchmarks
    from dlcore.backend import resolve_backend_name
    backend = resolve_backend_name(backend)
    X, source = rbm_benchmark_data(rows)
    include = {"dlcore", "reference", "sklearn", "torch"} - set(skip)
    peak = benchmarks.sgemm_peak()
    results = benchmarks.run_rbm_benchmark(
        X, hidden, batch_size, repeats, backend, include, slow_repeats,
        report=None if as_json else (lambda text: click.echo(text, err=True)))
    others = [m for m in ("torch", "sklearn") if m in include
              and benchmarks.races_on(m, backend)]
    missing = benchmarks.missing_contenders(others)
    setting = {"rows": X.shape[0], "visible": X.shape[1], "hidden": hidden,
               "batch_size": batch_size, "data": source, "backend": backend,
               "threads": _threads(), "sgemm_peak_gflops": peak,
               "machine": benchmarks.machine_description()}
    if as_json:
        click.echo(json.dumps({"benchmark": "rbm-cd1-epoch", **setting, "results": results,
                               "missing": missing}, indent=2))
        return
    click.echo(benchmarks.machine_line())
    click.echo(f"one CD-1 epoch: {X.shape[0]:,} x {X.shape[1]} -> {hidden} hidden, batch "
               f"{batch_size}, float32; {source}; {setting['threads']} threads")
    click.echo(f"SGEMM peak (NumPy BLAS, 2048^3): {peak:.1f} GFLOP/s")
    click.echo(f"{'':44s} {'min s':>8} {'median s':>9} {'GFLOP/s':>8} {'of peak':>8} "
               f"{'vs dlcore':>10}")
    for r in results:
        click.echo(f"{r['name']:44s} {r['min']:8.3f} {r['median']:9.3f} {r['gflops']:8.1f} "
                   f"{r['gflops'] / peak:8.0%} {r['ratio']:9.2f}x")
    for line in missing:
        click.echo(line)


def _threads():
    import numba
    return numba.get_num_threads() or os.cpu_count()
