"""``dlcore doctor``: versions, CPU, BLAS, GPU and kernel cache, and a self-test of every usable
backend's kernels against the reference (:mod:`dlcore.doctor`); ``--bench`` adds short
benchmarks. It needs nothing from the network: the one command to run on a new machine."""
import json

import click

from dlcore.cli import main


@main.command("doctor")
@click.option("--bench", "with_bench", is_flag=True,
              help="Add short benchmarks (an RBM epoch on 6,000 rows, LeNet-5 and the MLP on "
                   "3,200 images, against PyTorch when installed): about a minute.")
@click.option("--backend", "backends", multiple=True, type=click.Choice(["cpu", "cuda"]),
              help="Self-test only this backend (repeatable; default: every usable one); "
                   "one that cannot run here is named with the reason, and not tested.")
@click.option("--json", "as_json", is_flag=True, help="Print everything as one JSON object.")
def doctor(with_bench, backends, as_json):
    """What a bug report needs, and a self-test of the kernels (ok/FAIL per backend; exit code
    1 when a check fails, or a backend asked for with --backend cannot run here)."""
    from dataclasses import asdict

    from dlcore import doctor as checkup
    env = checkup.environment()
    if not as_json:
        for line in checkup.environment_lines(env):
            click.echo(line)
        click.echo("self-test against the NumPy reference:")
    report = None if as_json else (lambda check: click.echo(checkup.check_line(check)))
    asked = list(dict.fromkeys(backends)) or checkup.kernel_backends()
    unusable = checkup.unusable_backends(asked)
    tested = [backend for backend in asked if backend not in unusable]
    checks = checkup.self_test(tested, report) if tested else []
    env["threading_layer"] = checkup.threading_layer()
    benches = short_benchmarks(as_json) if with_bench else []
    if as_json:
        click.echo(json.dumps({**env, "self_test": [asdict(check) for check in checks],
                               "not_tested": unusable, "benchmarks": benches}, indent=2))
    else:
        for line in checkup.summary_lines(checks):
            click.echo(line)
        for backend, reason in unusable.items():
            click.echo(checkup.unusable_line(backend, reason))
    if unusable or not all(check.ok for check in checks):
        raise SystemExit(1)


def short_benchmarks(as_json):
    """The benches of ``dlcore bench rbm``, ``mlp`` and ``cnn`` on a tenth of their data, three
    alternating runs each; printed unless ``as_json``. Returns the reports."""
    import numba

    import dlcore
    from dlcore import bench as benchmarks
    from dlcore import bench_workloads as workloads
    from dlcore.cli.bench import progress, rbm_benchmark_data
    from dlcore.cli.bench_cnn import LEARNING_RATE, MOMENTUM, benchmark_images
    threads, torch_here = numba.get_num_threads(), benchmarks.importable("torch")
    X, source = rbm_benchmark_data(6000)
    images, labels, test, _ = benchmark_images(3200, 1000)
    flat, flat_test = images.reshape(len(images), -1), test.reshape(len(test), -1)

    def networks():
        lenet = dlcore.models.lenet5(backend="cpu", seed=0)
        lenet.compile("cross_entropy", dlcore.optimizers.SGD(LEARNING_RATE, momentum=MOMENTUM))
        mlp = dlcore.models.mlp((784,), (500, 500), activation="sigmoid", dropout=0.2,
                                backend="cpu", seed=0)
        mlp.compile("cross_entropy", dlcore.optimizers.SGD(0.1, momentum=0.9))
        return (workloads.network_comparisons(lenet, ("torch_lenet5", ()) if torch_here
                                              else None, images, labels, test, 64, threads)
                + workloads.network_comparisons(
                    mlp, ("torch_mlp", (784, (500, 500), 10, 0.2)) if torch_here else None,
                    flat, labels, flat_test, 32, threads))

    load_before = benchmarks.load_average()
    machine = benchmarks.machine_description()
    comparisons = workloads.rbm_comparisons(X, 500, 100, "cpu", ("dlcore", "torch")) + networks()
    results = [benchmarks.compare(comparison, 3, progress) for comparison in comparisons]
    run = benchmarks.report("doctor", f"short benchmarks: RBM on {len(X):,} rows of {source}, "
                            f"LeNet-5 (batch 64) and the 784-500-500-10 MLP (batch 32) on "
                            f"{len(images):,} images; 3 alternating runs",
                            {"rows": len(X), "images": len(images)}, results, machine,
                            benchmarks.missing_contenders(["torch"]), load_before)
    if not as_json:
        for line in benchmarks.format_report(run):
            click.echo(line)
    return [run]
