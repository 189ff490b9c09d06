"""``dlcore bench ais``: AIS with Salakhutdinov & Murray's schedule timed side by side with the same
annealing in NumPy and in PyTorch.

Every contender estimates log Z of the same RBM (784 x ``--hidden``, random weights: the work does
not depend on them) with ``--runs`` chains through :func:`dlcore.rbm.ais.annealing_schedule`'s
``--temperatures`` inverse temperatures, each temperature the log-weight increment of every chain
and one Gibbs step: two products of runs x 784 x hidden, a softplus difference and a sigmoid per
hidden unit, a sigmoid per visible unit, two Bernoulli samples. NumPy and PyTorch do it as a
user would write it (float32 products, float64 log-weights, their own random numbers); dlcore on
the chosen backend. Each warms up first (Numba compiles); the table gives the minimum and the
median of the repeats, measured in one process, with each contender's log Z (they agree within
the estimates' noise).
"""
import json
import statistics
import time

import click
import numpy as np

from dlcore.bench import machine_line, missing_contenders
from dlcore.cli._common import backend_option
from dlcore.cli.bench import bench


def benchmark_rbm(n_hidden, seed=0):
    """(W, b, c) float64 of a 784 x n_hidden RBM: W ~ N(0, 0.05^2), b ~ N(-1, 1), c ~ N(0, 1)."""
    from dlcore.backend import rng
    W = rng.normal(784, n_hidden, seed, rng.STREAM_INIT, scale=0.05).astype(np.float64)
    b = rng.normal(1, 784, seed, rng.STREAM_INIT, step=1)[0].astype(np.float64) - 1
    c = rng.normal(1, n_hidden, seed, rng.STREAM_INIT, step=2)[0].astype(np.float64)
    return W, b, c


def numpy_ais(W, b, c, betas, n_runs, seed=0):
    """AIS in plain NumPy (float32 products on one BLAS thread per call, float64 weights)."""
    generator = np.random.default_rng(seed)
    W32, WT32 = W.astype(np.float32), np.ascontiguousarray(W.T, dtype=np.float32)
    v = (generator.random((n_runs, W.shape[0])) < 1 / (1 + np.exp(-b))).astype(np.float32)
    log_weights = np.zeros(n_runs)
    for k in range(1, len(betas)):
        beta, previous = betas[k], betas[k - 1]
        x = (v @ W32).astype(np.float64) + c
        log_weights += (np.logaddexp(0, beta * x) - np.logaddexp(0, previous * x)).sum(axis=1)
        h = (generator.random(x.shape) < 1 / (1 + np.exp(-beta * x))).astype(np.float32)
        visible_input = b + beta * (h @ WT32)
        v = (generator.random(visible_input.shape) < 1 / (1 + np.exp(-visible_input)))
        v = v.astype(np.float32)
    return _log_z(log_weights, b, W.shape[1])


def torch_ais(W, b, c, betas, n_runs, threads, seed=0):
    """AIS in PyTorch on the CPU (float32 products, float64 weights)."""
    import torch
    torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(seed)
    W32 = torch.from_numpy(W.astype(np.float32))
    b32, c64 = torch.from_numpy(b.astype(np.float32)), torch.from_numpy(c)
    v = (torch.rand(n_runs, W.shape[0], generator=generator) < torch.sigmoid(b32)).float()
    log_weights = torch.zeros(n_runs, dtype=torch.float64)
    softplus = torch.nn.functional.softplus
    for k in range(1, len(betas)):
        beta, previous = float(betas[k]), float(betas[k - 1])
        x = (v @ W32).double() + c64
        log_weights += (softplus(beta * x) - softplus(previous * x)).sum(dim=1)
        h = torch.bernoulli(torch.sigmoid(beta * x).float(), generator=generator)
        v = torch.bernoulli(torch.sigmoid(b32 + beta * (h @ W32.T)), generator=generator)
    return _log_z(log_weights.numpy(), b, W.shape[1])


def _log_z(log_weights, base_bias, n_hidden):
    """log Z_0 + log mean(w) for a base model with the RBM's visible biases."""
    top = log_weights.max()
    return float(np.logaddexp(0, base_bias).sum() + n_hidden * np.log(2.0)
                 + top + np.log(np.mean(np.exp(log_weights - top))))


@bench.command("ais")
@click.option("--hidden", type=click.IntRange(min=1), default=500, show_default=True)
@click.option("--runs", type=click.IntRange(min=2), default=100, show_default=True,
              help="AIS runs (independent annealing chains).")
@click.option("--temperatures", type=click.IntRange(min=1), default=14_500, show_default=True,
              help="Inverse temperatures (Salakhutdinov & Murray: 14500).")
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True,
              help="Timed runs of dlcore (the others get --slow-repeats).")
@click.option("--slow-repeats", type=click.IntRange(min=1), default=1, show_default=True,
              help="Timed runs of NumPy and PyTorch.")
@click.option("--skip", multiple=True, type=click.Choice(["numpy", "torch"]),
              help="Leave a contender out (repeatable).")
@backend_option
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def bench_ais(hidden, runs, temperatures, repeats, slow_repeats, skip, backend, as_json):
    """AIS on a 784 x 500 RBM with Salakhutdinov & Murray's 14,500 temperatures and 100 runs:
    dlcore vs NumPy and PyTorch."""
    import numba

    from dlcore.backend import resolve_backend_name
    from dlcore.rbm.ais import ais_log_partition, annealing_schedule
    backend = resolve_backend_name(backend)
    W, b, c = benchmark_rbm(hidden)
    betas = annealing_schedule(temperatures)
    threads = numba.get_num_threads()
    missing = [] if "torch" in skip else missing_contenders(["torch"])
    contenders = [(f"dlcore {backend}", repeats, lambda: ais_log_partition(
        W, b, c, n_runs=runs, n_temperatures=temperatures, backend=backend).log_z)]
    if "numpy" not in skip:
        contenders.append(("NumPy (float32 products, float64 weights)", slow_repeats,
                           lambda: numpy_ais(W, b, c, betas, runs)))
    if "torch" not in skip and not missing:
        contenders.append((f"PyTorch {_torch_version()} cpu, {threads} threads", slow_repeats,
                           lambda: torch_ais(W, b, c, betas, runs, threads)))
    ais_log_partition(W, b, c, n_runs=runs, n_temperatures=3, backend=backend)   # compile
    results = []
    for name, count, run in contenders:
        seconds, cpu_seconds, log_z = [], [], None
        for _ in range(count):
            started, cpu_started = time.perf_counter(), time.process_time()
            log_z = run()
            seconds.append(time.perf_counter() - started)
            cpu_seconds.append(time.process_time() - cpu_started)
            if not as_json:
                click.echo(f"{name}: {seconds[-1]:.1f} s (CPU {cpu_seconds[-1]:.1f} s)",
                           err=True)
        results.append({"name": name, "min": min(seconds), "median": statistics.median(seconds),
                        "cpu_min": min(cpu_seconds), "log_z": log_z, "repeats": count})
    reference = results[0]["median"]
    for result in results:
        result["ratio"] = result["median"] / reference
    setting = {"visible": 784, "hidden": hidden, "runs": runs, "temperatures": temperatures,
               "backend": backend, "threads": threads, "load": _load()}
    if as_json:
        click.echo(json.dumps({"benchmark": "ais-log-z", **setting, "results": results,
                               "missing": missing}, indent=2))
        return
    click.echo(machine_line())
    click.echo(f"AIS: 784 x {hidden} RBM, {runs} runs x {temperatures} temperatures; "
               f"{threads} threads; load average {setting['load']}")
    click.echo(f"{'':44s} {'min s':>8} {'median s':>9} {'CPU s':>8} {'vs dlcore':>10} "
               f"{'log Z':>10}")
    for r in results:
        click.echo(f"{r['name']:44s} {r['min']:8.1f} {r['median']:9.1f} {r['cpu_min']:8.1f} "
                   f"{r['ratio']:9.2f}x {r['log_z']:10.2f}")
    for line in missing:
        click.echo(line)


def _torch_version():
    import torch
    return torch.__version__.split("+")[0]


def _load():
    """The 1-minute load average (the machine may be shared), or "unknown"."""
    try:
        import os
        return f"{os.getloadavg()[0]:.1f}"
    except (AttributeError, OSError):
        return "unknown"
