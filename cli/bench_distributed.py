"""``dlcore bench distributed``: data-parallel CD-1 on 1 and 2 ranks of this machine, the time a
step spends computing and summing, the parallel efficiency, and the alpha-beta model of
:mod:`dlcore.distributed.bench` extrapolated to N ranks of a cluster for the RBM's and
LeNet-5's gradients."""
import json
import subprocess
import sys

import click

from dlcore.bench import load_average, machine_line
from dlcore.cli.bench import bench
from dlcore.distributed import DistributedUnavailable, available, launcher
from dlcore.distributed.bench import fit_alpha_beta, predicted_efficiency

#: LeNet-5's parameters (dlcore.models.lenet5().count_params()): its gradient, float32.
LENET5_BYTES = 4 * 61_706
#: Rank counts of the predictions.
PREDICTED_RANKS = (2, 4, 8, 16, 32, 64)


@bench.command("distributed")
@click.option("--rows", type=click.IntRange(min=1), default=2000, show_default=True,
              help="Training rows (images) of the timed epoch.")
@click.option("--hidden", type=click.IntRange(min=1), default=500, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--ranks", "rank_counts", type=click.IntRange(min=2), multiple=True,
              default=(2,), show_default=True, help="Rank counts to run beside one process.")
@click.option("--alpha-us", type=click.FloatRange(min=0), default=5.0, show_default=True,
              help="Assumed latency of a cluster's network (microseconds) for the model.")
@click.option("--bandwidth-gbs", type=click.FloatRange(min=0, min_open=True), default=10.0,
              show_default=True, help="Assumed bandwidth of a cluster's network (GB/s).")
@click.option("--json", "as_json", is_flag=True, help="Print the measurements as JSON.")
def bench_distributed(rows, hidden, batch_size, repeats, rank_counts, alpha_us, bandwidth_gbs,
                      as_json):
    """Data-parallel CD-1 (784 x --hidden, global batch --batch-size) on 1 rank and on
    --ranks: seconds per step (min and median over --repeats epochs), the part spent summing
    over the ranks, the efficiency T_1 / (R T_R); then the alpha-beta model, fitted to this
    machine's all-reduce and with an assumed cluster network, predicting the efficiency on N
    ranks."""
    if not available():
        raise DistributedUnavailable('bench distributed needs mpi4py: pip install '
                                     '"dlcore[distributed]"')
    load_before = load_average()
    runs = [_run(ranks, rows, hidden, batch_size, repeats) for ranks in (1, *rank_counts)]
    if as_json:
        click.echo(json.dumps({"runs": runs, "load_average": load_before}))
        return
    click.echo(machine_line())
    if load_before:
        click.echo(f"load average before: {load_before[0]:.2f} (1 min)")
    click.echo(f"CD-1, 784 x {hidden}, global batch {batch_size}, {rows} rows "
               f"({runs[0]['steps']} steps an epoch), min / median of {repeats} epochs:")
    click.echo("ranks  threads  ms/step (min, median)  allreduce ms/step  efficiency")
    baseline = runs[0]["step_seconds"][0]
    for run in runs:
        step, reduce = run["step_seconds"], run["allreduce_seconds"]
        click.echo(f"{run['ranks']:>5}  {run['threads']:>7}  {1e3 * step[0]:8.2f}, "
                   f"{1e3 * step[1]:8.2f}      {1e3 * reduce[0]:8.2f}          "
                   f"{baseline / (run['ranks'] * step[0]):6.2f}")
    measured = runs[1]
    alpha, beta = fit_alpha_beta(measured["allreduce"], measured["ranks"])
    click.echo(f"all-reduce on this machine ({measured['ranks']} ranks): alpha "
               f"{1e6 * alpha:.0f} us, {1e-9 / beta if beta else float('inf'):.2f} GB/s "
               "(least squares over 1 KiB - 4 MiB)")
    networks = [("this machine's", alpha, beta),
                (f"assumed {alpha_us:g} us, {bandwidth_gbs:g} GB/s", 1e-6 * alpha_us,
                 1e-9 / bandwidth_gbs)]
    models = [("RBM", baseline, runs[0]["step_bytes"]),
              ("LeNet-5", runs[0]["lenet5_step_seconds"], LENET5_BYTES)]
    click.echo(f"LeNet-5, one process: {1e3 * runs[0]['lenet5_step_seconds']:.1f} ms per "
               "update of 64 images (the fastest of 5)")
    click.echo("predicted efficiency E(N) = (t1/N) / (t1/N + t_allreduce(N)), t1 the "
               "one-process step:")
    click.echo("model    network" + " " * 28 + "".join(f"{n:>7}" for n in PREDICTED_RANKS))
    for name, step, n_bytes in models:
        for network, a, b in networks:
            click.echo(f"{name:<8} {network:<34}" + "".join(
                f"{predicted_efficiency(step, n_bytes, n, a, b):7.2f}"
                for n in PREDICTED_RANKS))


def _run(ranks, rows, hidden, batch_size, repeats):
    completed = subprocess.run(
        [launcher(), "-n", str(ranks), sys.executable, "-m", "dlcore.distributed.bench",
         str(rows), str(hidden), str(batch_size), str(repeats)],
        capture_output=True, text=True, check=False)
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if completed.returncode != 0 or not lines:
        raise click.ClickException(f"the {ranks}-rank run failed: "
                                   f"{completed.stderr.strip()[-500:]}")
    return json.loads(lines[-1])
