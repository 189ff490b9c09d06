"""``dlcore bench dbn``: greedy pretraining of a DBN timed side by side with the same CD-1 work in
PyTorch, in alternation.

dlcore runs ``DBN(layers, epochs, batch_size=100).fit(X)`` (every RBM with learning rate 0.1,
momentum 0.5, weight decay 2e-4: the settings of ``dlcore bench rbm``). PyTorch does, layer by
layer, ``epochs`` CD-1 epochs of :func:`dlcore.bench_workloads.torch_rbm_contenders` (the
expert's in-place version, ``addmm_``, visible units sampled or not as dlcore's RBMs are) plus
the propagation to the next layer (one product and a sigmoid over all rows, with a weight
matrix of the same shape), on data propagated through a first, warm-up DBN. The rules (warm-up,
alternating repeats, min and median, equal work checked) are those of :mod:`dlcore.bench`.
"""
import click

from dlcore.bench import Comparison, Contender, missing_contenders
from dlcore.cli._common import backend_option
from dlcore.cli._dbn import parse_layers
from dlcore.cli.bench import bench, json_option, rbm_benchmark_data, repeats_option, run_benchmark

BENCH_SETTINGS = {"learning_rate": 0.1, "momentum": 0.5, "weight_decay": 2e-4}
WARM_UP_ROWS = 2000


def pretraining_work(layers, epochs, rows, batch_size, sample_visible, learning_rate,
                     momentum, weight_decay):
    return {"layers": [int(size) for size in layers], "epochs": int(epochs), "rows": int(rows),
            "batch_size": int(batch_size), "update": "CD-1", "propagate": "mean",
            "sample_visible": [bool(flag) for flag in sample_visible],
            "learning_rate": float(learning_rate), "momentum": float(momentum),
            "weight_decay": float(weight_decay)}


def dlcore_pretraining(X, layers, epochs, batch_size, backend):
    """A contender that pretrains a new DBN on ``X`` per run, and the warm-up DBN (one epoch on
    the first rows) whose RBMs give PyTorch its data."""
    import dlcore
    from dlcore.backend import get_backend
    warm = dlcore.DBN(layers=layers, epochs=1, batch_size=batch_size, seed=0, backend=backend,
                      **BENCH_SETTINGS).fit(X[:WARM_UP_ROWS])

    def run():
        dlcore.DBN(layers=layers, epochs=epochs, batch_size=batch_size, seed=0,
                   backend=backend, **BENCH_SETTINGS).fit(X)
    params = [rbm.get_params() for rbm in warm.rbms_]
    work = pretraining_work([warm.rbms_[0].W.shape[0]] + [rbm.W.shape[1] for rbm in warm.rbms_],
                            epochs, len(X), batch_size, [p["sample_visible"] for p in params],
                            params[0]["learning_rate"], params[0]["momentum"],
                            params[0]["weight_decay"])
    return Contender(f"dlcore {get_backend(backend).name}", run, work), warm


def torch_pretraining(warm, X, epochs, batch_size, threads, backend="cpu"):
    """PyTorch's in-place CD-1, ``epochs`` epochs per layer on the data the warm-up DBN's RBMs
    propagate, plus each propagation: built and run in PyTorch's own process
    (:mod:`dlcore.bench_process`), on its CUDA device where dlcore's ``backend`` is on a GPU
    (as ``dlcore bench rbm`` races it)."""
    from dlcore import bench
    from dlcore.bench_process import shared_process
    layer_data, data = [], X
    for rbm in warm.rbms_:
        layer_data.append(data)
        data = rbm.transform(data)
    return shared_process("torch").contenders(
        "dlcore.cli.bench_dbn:torch_pretraining_on", layer_data,
        [rbm.W.shape[1] for rbm in warm.rbms_],
        [rbm.get_params()["sample_visible"] for rbm in warm.rbms_], epochs, batch_size,
        threads, "cuda" if bench.on_a_gpu(backend) else "cpu")[0]


def torch_pretraining_on(layer_data, hidden, sample_visible, epochs, batch_size, threads,
                         device="cpu"):
    """The contender of :func:`torch_pretraining` (in PyTorch's process): layer k trains on
    ``layer_data[k]`` (what the warm-up DBN propagates), ``hidden[k]`` units, its visible units
    sampled as ``sample_visible[k]`` says, on :func:`~dlcore.bench_workloads.torch_device`
    (``device``). Returns a list of one contender."""
    import torch

    from dlcore import bench_workloads as workloads
    device = workloads.torch_device(device)
    layer_runs, flags = [], list(sample_visible)
    for index, (data, n_hidden) in enumerate(zip(layer_data, hidden)):
        # the first layer's run starts from the NumPy rows, as dlcore's DBN.fit copies them to
        # its GPU; the upper layers' data dlcore propagates on the device, as `propagate` does
        contender = workloads.torch_rbm_contenders(data, n_hidden, batch_size, device, threads,
                                                   flags[index], from_host=index == 0)[0]
        rows = torch.from_numpy(data).to(device)
        weights = torch.randn(data.shape[1], n_hidden, device=device) * 0.01
        bias = torch.zeros(n_hidden, device=device)
        last = index + 1 == len(layer_data)
        layer_runs.append((contender, None if last else (
            lambda rows=rows, weights=weights, bias=bias:
            torch.sigmoid(torch.addmm(bias, rows, weights)))))

    def warm_up():
        for contender, _ in layer_runs:
            contender.warm_up()

    def run():
        for contender, propagate in layer_runs:
            for _ in range(epochs):
                contender.run()
            if propagate is not None:
                propagate()
    first = layer_runs[0][0].work
    work = pretraining_work([first["visible"]] + [c.work["hidden"] for c, _ in layer_runs],
                            epochs, first["rows"], first["batch_size"], flags,
                            first["learning_rate"], first["momentum"], first["weight_decay"])
    return [Contender(f"PyTorch {device} in-place (addmm_)", run, work, warm_up=warm_up)]


@bench.command("dbn")
@click.option("--layers", "layers_text", default="784-500-500-2000", show_default=True,
              help="Layer sizes joined by '-', visible first.")
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True,
              help="CD-1 epochs per layer.")
@click.option("--rows", type=click.IntRange(min=100, max=60_000), default=60_000,
              show_default=True, help="Training rows (fewer for a quick run).")
@click.option("--batch-size", type=click.IntRange(min=1), default=100, show_default=True)
@repeats_option(1)
@click.option("--skip-torch", is_flag=True, help="Time dlcore alone.")
@backend_option
@json_option
def bench_dbn(layers_text, epochs, rows, batch_size, repeats, skip_torch, backend, as_json):
    """Pretraining 784-500-500-2000 for N epochs per layer: dlcore vs PyTorch (CD-1; on its
    CUDA device for --backend cuda, else its CPU)."""
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

    def comparisons():
        click.echo(f"warming up (compiling) on {min(len(X), WARM_UP_ROWS)} rows", err=True)
        dlcore_side, warm = dlcore_pretraining(X, layers, epochs, batch_size, backend)
        contenders = [dlcore_side]
        if not skip_torch and not missing:
            contenders.append(torch_pretraining(warm, X, epochs, batch_size, threads,
                                                backend))
        return [Comparison(f"DBN {layers_text} greedy pretraining, {epochs} CD-1 "
                           f"epoch{'s' if epochs > 1 else ''} per layer", contenders,
                           note="visible units sampled, momentum 0.5, weight decay 2e-4")]

    setting = {"layers": layers, "epochs": epochs, "rows": len(X), "batch_size": batch_size,
               "data": source, "backend": backend, "repeats": repeats}
    title = (f"DBN {layers_text} pretraining: {epochs} CD-1 epochs per layer, {len(X):,} rows, "
             f"batch {batch_size}, float32; {source}; {repeats} alternating runs")
    run_benchmark("dbn", title, setting, comparisons, repeats,
                  missing + (["PyTorch: skipped (--skip-torch)"] if skip_torch else []),
                  as_json)
