"""``dlcore bench dbn``: greedy pretraining of a DBN timed side by side with the same CD-1 work in
PyTorch.

dlcore runs ``DBN(layers, epochs, batch_size=100).fit(X)`` (every RBM with learning rate 0.1,
momentum 0.5, weight decay 2e-4: the settings of ``dlcore bench rbm``). PyTorch does, layer by
layer, ``epochs`` CD-1 epochs with :func:`dlcore.bench.torch_contenders` (the expert's
in-place version, ``addmm_``) on the very data dlcore's RBM of that layer saw, plus the
propagation to the next layer (one product and a sigmoid over all rows, with a weight matrix of
the same shape). Both warm up first (Numba compiles, PyTorch allocates); the table gives the
minimum and the median of ``--repeats`` runs, measured in one process.
"""
import statistics
import time

import click

from dlcore.bench import machine_line, missing_contenders
from dlcore.cli._common import backend_option
from dlcore.cli._dbn import parse_layers
from dlcore.cli.bench import bench, rbm_benchmark_data

BENCH_SETTINGS = {"learning_rate": 0.1, "momentum": 0.5, "weight_decay": 2e-4}


def time_dlcore(X, layers, epochs, batch_size, backend):
    """Seconds of one full pretraining, and the DBN (whose RBMs give PyTorch its data)."""
    import dlcore
    model = dlcore.DBN(layers=layers, epochs=epochs, batch_size=batch_size, seed=0,
                       backend=backend, **BENCH_SETTINGS)
    started = time.perf_counter()
    model.fit(X)
    return time.perf_counter() - started, model


def torch_layer_runs(model, X, batch_size, threads):
    """Per RBM: (warm_up, one_epoch, propagate) closures of PyTorch's in-place CD-1 on the data
    that RBM was trained on."""
    import torch

    from dlcore.bench import torch_contenders
    runs, data = [], X
    for rbm in model.rbms_:
        n_hidden = rbm.W.shape[1]
        _, warm_up, epoch = torch_contenders(data, n_hidden, batch_size, "cpu", threads)[0]
        rows = torch.from_numpy(data)
        weights = torch.randn(data.shape[1], n_hidden) * 0.01
        bias = torch.zeros(n_hidden)
        runs.append((warm_up, epoch, lambda rows=rows, weights=weights, bias=bias:
                     torch.sigmoid(torch.addmm(bias, rows, weights))))
        data = rbm.transform(data)
    return runs


def time_torch(runs, epochs):
    """Seconds of ``epochs`` CD-1 epochs per layer plus the propagations between layers."""
    started = time.perf_counter()
    for index, (_, epoch, propagate) in enumerate(runs):
        for _ in range(epochs):
            epoch()
        if index + 1 < len(runs):
            propagate()
    return time.perf_counter() - started


def summary(seconds):
    return {"seconds": seconds, "min": min(seconds), "median": statistics.median(seconds)}


@bench.command("dbn")
@click.option("--layers", "layers_text", default="784-500-500-2000", show_default=True)
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True,
              help="CD-1 epochs per layer.")
@click.option("--rows", type=click.IntRange(min=100, max=60_000), default=60_000,
              show_default=True, help="Training rows (fewer for a quick run).")
@click.option("--batch-size", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--repeats", type=click.IntRange(min=1), default=1, show_default=True,
              help="Timed pretrainings per contender.")
@click.option("--skip-torch", is_flag=True, help="Time dlcore alone.")
@backend_option
def bench_dbn(layers_text, epochs, rows, batch_size, repeats, skip_torch, backend):
    """Pretraining 784-500-500-2000 for N epochs per layer: dlcore vs PyTorch CPU (CD-1)."""
    import numba

    from dlcore.backend import resolve_backend_name
    layers = parse_layers(layers_text)
    X, source = rbm_benchmark_data(rows)
    if X.shape[1] != layers[0]:
        raise click.BadParameter(f"the data have {X.shape[1]} pixels, the first layer "
                                 f"{layers[0]} units", param_hint="--layers")
    backend = resolve_backend_name(backend)
    threads = numba.get_num_threads()
    missing = [] if skip_torch else missing_contenders(["torch"])
    click.echo(f"warming up (compiling) on {min(len(X), 2000)} rows", err=True)
    time_dlcore(X[:2000], layers, 1, batch_size, backend)
    results = {"dlcore " + backend: [], "PyTorch cpu in-place (addmm_)": []}
    model = None
    for repeat in range(repeats):
        click.echo(f"dlcore pretraining, run {repeat + 1}/{repeats}", err=True)
        seconds, model = time_dlcore(X, layers, epochs, batch_size, backend)
        results["dlcore " + backend].append(seconds)
    if not skip_torch and not missing:
        runs = torch_layer_runs(model, X, batch_size, threads)
        for warm_up, _, _ in runs:
            warm_up()
        for repeat in range(repeats):
            click.echo(f"PyTorch CD-1, run {repeat + 1}/{repeats}", err=True)
            results["PyTorch cpu in-place (addmm_)"].append(time_torch(runs, epochs))
    click.echo(machine_line())
    click.echo(f"DBN {'-'.join(map(str, layers))} pretraining: {epochs} CD-1 epochs per layer, "
               f"{len(X):,} rows, batch {batch_size}, float32; {source}; {threads} threads")
    per_layer = [sum(model.history[f"rbm{k + 1}_seconds"]) for k in range(len(layers) - 1)]
    click.echo("dlcore seconds per layer (last run, CD epochs only): "
               + ", ".join(f"{layers[k]}-{layers[k + 1]} {s:.1f}" for k, s in
                           enumerate(per_layer)))
    reference = summary(results["dlcore " + backend])["median"]
    click.echo(f"{'':34} {'min s':>8} {'median s':>9} {'vs dlcore':>10}")
    for name, seconds in results.items():
        if seconds:
            row = summary(seconds)
            click.echo(f"{name:34} {row['min']:8.2f} {row['median']:9.2f} "
                       f"{row['median'] / reference:9.2f}x")
    for line in missing:
        click.echo(line)
