"""The benchmarks' own rules: equal work on both sides, alternating repeats, min and median, one
JSON schema, and the README table written from it.

Oracles: contenders that only log what runs when (the order is then known exactly), a clock
that advances by set durations (min, median and ratios then follow by hand), the two models'
own objects (a PyTorch network is described from its modules, dlcore's from its layers; a
deliberately different network must be refused), and the JSON reports committed beside the
README (the README's table must be what the script writes from them)."""
import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import dlcore
from conftest import requires_cuda
from dlcore import bench, bench_table, bench_workloads
from dlcore.backend import get_backend
from dlcore.cli import main

ROOT = Path(__file__).resolve().parents[1]
MEASURED = sorted((ROOT / "docs" / "measured").glob("*.json"))


class FakeClock:
    """A clock that runs only when a contender runs: each run advances it by its duration."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def runner(self, durations, log, name):
        durations = iter(durations)

        def run():
            log.append(name)
            self.now += next(durations)
        return run


def logging_contender(name, log, clock, durations, work=None, repeats=None):
    return bench.Contender(name, clock.runner(durations, log, name), work or {"rows": 10},
                           warm_up=lambda: log.append(f"warm {name}"), repeats=repeats)


def test_repeats_alternate_between_contenders_after_every_warm_up():
    clock, log = FakeClock(), []
    contenders = [logging_contender("A", log, clock, [1] * 3),
                  logging_contender("B", log, clock, [1] * 3),
                  logging_contender("slow", log, clock, [5], repeats=1)]
    seconds, order = bench.time_alternating(contenders, 3, clock=clock)
    assert log[:3] == ["warm A", "warm B", "warm slow"]
    assert order == log[3:] == ["A", "B", "slow", "A", "B", "A", "B"]
    assert seconds == {"A": [1, 1, 1], "B": [1, 1, 1], "slow": [5]}


def test_a_comparison_reports_min_median_and_the_ratio_of_minima_to_dlcore():
    clock, log = FakeClock(), []
    comparison = bench.Comparison("epoch", [
        logging_contender("dlcore cpu", log, clock, [2.0, 1.0, 4.0]),
        logging_contender("other", log, clock, [3.0, 5.0, 9.0])], flops=6e9)
    result = bench.compare(comparison, 3, clock=clock)
    dlcore_row, other_row = result["results"]
    assert (dlcore_row["min"], dlcore_row["median"]) == (1.0, 2.0)
    assert (other_row["min"], other_row["median"]) == (3.0, 5.0)
    assert other_row["ratio_min"] == 3.0 and other_row["ratio_median"] == 2.5
    assert dlcore_row["gflops"] == 6.0 and other_row["gflops"] == 2.0
    assert result["order"] == ["dlcore cpu", "other"] * 3


def test_contenders_of_unequal_work_are_refused_naming_the_difference():
    clock, log = FakeClock(), []
    comparison = bench.Comparison("epoch", [
        logging_contender("dlcore cpu", log, clock, [1], {"rows": 10, "sample_visible": True}),
        logging_contender("other", log, clock, [1], {"rows": 10, "sample_visible": False})])
    with pytest.raises(ValueError, match="unequal work.*sample_visible: True vs False"):
        bench.compare(comparison, 1, clock=clock)
    assert log == []   # refused before anything ran


def tiny_rows(n=200, n_visible=16):
    return (np.random.default_rng(0).random((n, n_visible)) < 0.5).astype(np.float32)


def test_the_rbm_rows_do_equal_work_and_say_which_visible_units_are_sampled():
    pytest.importorskip("torch")
    comparisons = bench_workloads.rbm_comparisons(tiny_rows(), 8, 20, "cpu",
                                                  include=("dlcore", "torch", "reference"))
    mean_field, sampled = comparisons
    assert "mean-field" in mean_field.task and "sampled" in sampled.task
    assert len(mean_field.contenders) == 3 and len(sampled.contenders) == 4
    for comparison in comparisons:
        bench.check_equal_work(comparison.contenders)
    assert mean_field.contenders[0].work["sample_visible"] is False
    assert sampled.contenders[1].work["sample_visible"] is True
    # the check has teeth: PyTorch sampling its visible units is not dlcore's mean-field row
    with pytest.raises(ValueError, match="sample_visible"):
        bench.check_equal_work([mean_field.contenders[0], sampled.contenders[1]])


def test_the_rbm_work_is_read_from_the_models_not_from_the_request():
    contender = bench_workloads.dlcore_rbm_contender(tiny_rows(), 8, 20, "cpu", False)
    assert contender.work == bench_workloads.rbm_work(200, 16, 8, 20, False, 0.1, 0.5, 2e-4)


def compiled(model, learning_rate, momentum):
    model.compile("cross_entropy", dlcore.optimizers.SGD(learning_rate, momentum=momentum))
    return model


@pytest.mark.parametrize("net", ["lenet5", "mlp"])
def test_the_pytorch_networks_are_dlcores_layer_for_layer(net):
    torch = pytest.importorskip("torch")
    if net == "lenet5":
        model = compiled(dlcore.models.lenet5(backend="reference"), 0.01, 0.9)
        module = bench_workloads.torch_lenet5()
        x = np.zeros((64, 1, 28, 28), np.float32)
    else:
        model = compiled(dlcore.models.mlp((784,), (500, 500), activation="sigmoid",
                                           dropout=0.2, backend="reference"), 0.1, 0.9)
        module = bench_workloads.torch_mlp(784, (500, 500), 10, 0.2)
        x = np.zeros((64, 784), np.float32)
    y = np.zeros(64, np.int64)
    ours = bench_workloads.dlcore_network_contenders(model, x, y, x[:32], 32)
    theirs = bench_workloads.torch_network_contenders(module, x, y, x[:32], 32, 0.01 if
                                                      net == "lenet5" else 0.1, 0.9, 1)
    for mine, other in zip(ours, theirs):
        bench.check_equal_work([mine, other])
    assert bench_workloads.describe_network(model) == bench_workloads.describe_torch_network(
        module, torch.nn.CrossEntropyLoss())


def test_a_different_pytorch_network_is_refused():
    pytest.importorskip("torch")
    model = compiled(dlcore.models.mlp((784,), (500, 500), activation="sigmoid", dropout=0.2,
                                       backend="reference"), 0.1, 0.9)
    x, y = np.zeros((64, 784), np.float32), np.zeros(64, np.int64)
    train, _ = bench_workloads.dlcore_network_contenders(model, x, y, x, 32)
    for module, momentum in ((bench_workloads.torch_mlp(784, (500, 500), 10, 0.5), 0.9),
                             (bench_workloads.torch_mlp(784, (500,), 10, 0.2), 0.9),
                             (bench_workloads.torch_mlp(784, (500, 500), 10, 0.2), 0.5)):
        other, _ = bench_workloads.torch_network_contenders(module, x, y, x, 32, 0.1, momentum,
                                                            1)
        with pytest.raises(ValueError, match="unequal work"):
            bench.check_equal_work([train, other])


@requires_cuda
def test_a_network_bench_on_a_gpu_races_pytorch_on_its_gpu(monkeypatch):
    # `dlcore bench cnn/mlp --backend cuda` raced dlcore's GPU against PyTorch's CPU, where
    # `dlcore bench rbm --backend cuda` races PyTorch on its CUDA device
    pytest.importorskip("torch")
    asked = []

    class TorchProcess:
        def contenders(self, *arguments):
            asked.append(arguments)
            return None, None
    monkeypatch.setattr(bench_workloads, "shared_process", lambda name: TorchProcess())
    x, y = np.zeros((8, 6), np.float32), np.zeros(8, np.int64)
    for backend, device in (("cuda", "cuda"), ("cpu", "cpu")):
        model = compiled(dlcore.models.mlp((6,), (5,), backend=backend), 0.1, 0.9)
        bench_workloads.network_comparisons(model, ("torch_mlp", (6, (5,), 10, 0.0)), x, y, x,
                                            4, 1)
        assert asked.pop()[-1] == device


def test_pytorch_without_cuda_beside_a_gpu_races_on_its_cpu_and_says_so():
    torch = pytest.importorskip("torch")
    x, y = np.zeros((8, 6), np.float32), np.zeros(8, np.int64)
    train, infer = bench_workloads.torch_network_contenders(
        bench_workloads.torch_mlp(6, (5,), 10, 0.0), x, y, x, 4, 0.1, 0.9, 1, "cuda")
    train.run()
    infer.run()
    assert train.name.endswith("cuda" if torch.cuda.is_available() else "cpu")
    # the RBM's rows asked a CPU-only PyTorch for a CUDA generator and failed
    in_place, plain = bench_workloads.torch_rbm_contenders(x, 3, 4, "cuda", 1)
    in_place.run()
    assert plain.name.startswith(f"PyTorch {'cuda' if torch.cuda.is_available() else 'cpu'}")


@requires_cuda
def test_the_dbn_bench_on_a_gpu_races_pytorch_on_its_gpu(monkeypatch):
    # `dlcore bench dbn --backend cuda` raced PyTorch's CPU ("PyTorch cpu in-place")
    import types

    from dlcore import bench_process
    from dlcore.cli import bench_dbn
    asked = []
    monkeypatch.setattr(bench_process, "shared_process", lambda name: types.SimpleNamespace(
        contenders=lambda *arguments: asked.append(arguments) or [None]))
    rbm = types.SimpleNamespace(W=np.zeros((6, 4)), transform=lambda rows: rows[:, :4],
                                get_params=lambda: {"sample_visible": True})
    warm = types.SimpleNamespace(rbms_=[rbm, rbm])
    for backend, device in (("cuda", "cuda"), ("cpu", "cpu")):
        bench_dbn.torch_pretraining(warm, np.zeros((8, 6), np.float32), 1, 4, 1, backend)
        assert asked.pop()[-1] == device
    torch = pytest.importorskip("torch")
    contender, = bench_dbn.torch_pretraining_on(
        [np.zeros((8, 6), np.float32), np.zeros((8, 4), np.float32)], [4, 2], [True, False],
        1, 4, 1, "cuda")
    contender.run()
    assert contender.name.startswith(f"PyTorch {'cuda' if torch.cuda.is_available() else 'cpu'}")


def test_pytorch_starts_each_timed_run_from_the_numpy_arrays_as_dlcore_does(monkeypatch):
    # dlcore's fit, partial_fit and predict take NumPy arrays and copy them to the GPU in every
    # timed run; PyTorch's contenders put theirs on its GPU once, before the timing, so the GPU
    # rows compared unequal work (a copy of the whole data set a run on dlcore's side only)
    torch = pytest.importorskip("torch")
    from dlcore.cli import bench_dbn
    x, y = np.zeros((8, 6), np.float32), np.zeros(8, np.int64)
    train, infer = bench_workloads.torch_network_contenders(
        bench_workloads.torch_mlp(6, (5,), 10, 0.0), x, y, x[:4], 4, 0.1, 0.9, 1)
    in_place, plain = bench_workloads.torch_rbm_contenders(x, 3, 4, "cpu", 1)
    dbn, = bench_dbn.torch_pretraining_on([x, np.zeros((8, 4), np.float32)], [4, 2],
                                          [True, False], 1, 4, 1)
    converted, from_numpy = [], torch.from_numpy
    monkeypatch.setattr(torch, "from_numpy",
                        lambda array: converted.append(array.shape) or from_numpy(array))
    runs = {}
    for name, contender in (("train", train), ("infer", infer), ("in-place", in_place),
                            ("plain", plain), ("dbn", dbn)):
        converted.clear()
        contender.run()
        runs[name] = list(converted)
    # the DBN's upper layer trains on what dlcore's DBN propagates on its device
    assert runs == {"train": [(8, 6), (8,)], "infer": [(4, 6)], "in-place": [(8, 6)],
                    "plain": [(8, 6)], "dbn": [(8, 6)]}


def fake_machine(**changes):
    machine = {"cpu": "Some CPU 9000", "isa": "AVX2", "flags": ["avx2", "fma"], "cores": 2,
               "threads": 2, "blas": [{"library": "OpenBLAS", "version": "0.3.31",
                                       "kernel": "Haswell", "threading": "pthreads",
                                       "threads": 2, "file": "libopenblas.so",
                                       "used_by_dlcore": True}],
               "torch": None, "sgemm": {"gflops": 200.0, "numpy": 200.0,
                                        "dlcore_gemm": 180.0, "shapes": "..."}}
    machine.update(changes)
    return machine


def fake_report(benchmark="rbm", machine=None, load_after=(1.0, 0.8, 0.5)):
    clock, log = FakeClock(), []
    comparison = bench.Comparison("CD-1 epoch, visible units sampled", [
        logging_contender("dlcore cpu", log, clock, [1.0, 1.5]),
        logging_contender("PyTorch cpu in-place (addmm_)", log, clock, [2.0, 3.0])],
        flops=100e9, note="hidden units sampled")
    run = bench.report(benchmark, "one CD-1 epoch", {"rows": 10},
                       [bench.compare(comparison, 2, clock=clock)],
                       machine or fake_machine(), ["scikit-learn: not installed"],
                       load_before=[1.5, 1.0, 0.5])
    # report() reads the load after from this machine: pinned, or a busy test machine adds
    # the table's oversubscription sentence to every fake report
    run["load_average"]["after"] = list(load_after)
    return run


def test_a_run_on_an_oversubscribed_machine_says_only_its_ratios_compare(tmp_path):
    path = tmp_path / "rbm.json"
    path.write_text(json.dumps(fake_report(load_after=(9.0, 4.0, 2.0))))
    table = bench_table.measured_table(bench_table.read_reports([path]))
    assert "load average (1 min) 1.5 to 9.0 on 2 cores" in table
    assert "heavily oversubscribed" in table and "only the ratios" in table
    path.write_text(json.dumps(fake_report()))
    assert "oversubscribed" not in bench_table.measured_table(bench_table.read_reports([path]))


def test_every_report_is_one_json_schema_with_machine_load_and_results():
    run = json.loads(json.dumps(fake_report()))
    assert run["schema"] == bench.SCHEMA and run["benchmark"] == "rbm"
    assert run["load_average"]["before"] == [1.5, 1.0, 0.5]
    assert set(run["machine"]) >= {"cpu", "isa", "cores", "threads", "blas", "sgemm"}
    comparison, = run["comparisons"]
    assert set(comparison) >= {"task", "work", "order", "results", "flops", "note"}
    for row in comparison["results"]:
        assert set(row) >= {"name", "seconds", "min", "median", "ratio_min", "ratio_median"}
    lines = bench.format_report(run)
    assert lines[0].startswith("machine: Some CPU 9000, AVX2")
    assert any(line.split()[:2] == ["dlcore", "cpu"] and "50%" in line for line in lines)
    assert lines[-1] == "scikit-learn: not installed"


def test_the_table_has_one_row_per_other_contender_with_the_ratio_of_minima(tmp_path):
    path = tmp_path / "rbm.json"
    path.write_text(json.dumps(fake_report()))
    table = bench_table.measured_table(bench_table.read_reports([path]))
    assert "machine: Some CPU 9000, AVX2, 2 cores, 2 threads" in table
    row, = [line for line in table.splitlines() if line.startswith("| `dlcore bench rbm`")]
    assert "dlcore cpu 1 / 1.25 s, 100 GFLOP/s (50% of SGEMM)" in row
    assert "PyTorch cpu in-place (addmm_) 2 / 2.5 s" in row and "| 0.50 (dlcore faster) |" in row
    assert "(AVX2)" in table


@pytest.mark.parametrize("other_minimum, cell", [(1.008, "| 0.99 (dlcore faster) |"),
                                                 (1.004, "| 1.00 (level) |"),
                                                 (0.996, "| 1.00 (level) |"),
                                                 (0.99, "| 1.01 (dlcore slower) |")])
def test_a_ratio_that_prints_as_one_is_a_tie(tmp_path, other_minimum, cell):
    report = fake_report()
    report["comparisons"][0]["results"][1]["min"] = other_minimum
    path = tmp_path / "rbm.json"
    path.write_text(json.dumps(report))
    table = bench_table.measured_table(bench_table.read_reports([path]))
    row = [line for line in table.splitlines() if "in-place" in line][0]
    assert row.endswith(cell)


def test_the_table_measures_every_share_of_sgemm_against_the_highest_rate_of_its_reports(
        tmp_path):
    """Each bench measures SGEMM on the spot; on a shared machine the reports disagree. The
    machine line and every row use the highest (a share of a lower one would flatter)."""
    slow, fast = tmp_path / "rbm.json", tmp_path / "mlp.json"
    slow.write_text(json.dumps(fake_report()))
    faster = fake_machine(sgemm={"gflops": 250.0, "numpy": 250.0, "dlcore_gemm": 240.0,
                                 "shapes": "..."})
    fast.write_text(json.dumps(fake_report("mlp", faster)))
    table = bench_table.measured_table(bench_table.read_reports([slow, fast]))
    assert "SGEMM at the RBM's shapes 250 GFLOP/s" in table
    assert "ranged 200 to 250 GFLOP/s" in table
    rbm_row = [line for line in table.splitlines() if line.startswith("| `dlcore bench rbm`")]
    assert "100 GFLOP/s (40% of SGEMM)" in rbm_row[0]
    alone = bench_table.measured_table(bench_table.read_reports([slow]))
    assert "(50% of SGEMM)" in alone and "ranged" not in alone


def _gpu_report(sgemm):
    report = fake_report(machine=fake_machine(
        sgemm=sgemm, gpu={"usable": True, "name": "NVIDIA H200", "compute_capability": "9.0",
                          "driver": "13.0", "runtime": "13.0", "cublas": True}))
    report["setting"]["backend"] = "cuda"
    return report


@pytest.mark.parametrize("measured_on", ["gpu", None])
def test_a_gpu_runs_share_is_of_the_gpus_own_gemm_never_of_the_host_cpus(
        tmp_path, measured_on):
    """A report from before the bench measured GEMM on the GPU carries the host CPU's rate,
    which is no ceiling for a GPU epoch: the table then gives no share and no SGEMM."""
    sgemm = {"gflops": 400.0, "numpy": None, "dlcore_gemm": 400.0, "shapes": "...",
             "engine": "cuBLAS (CuPy)", **({"on": measured_on} if measured_on else {})}
    path = tmp_path / "rbm.json"
    path.write_text(json.dumps(_gpu_report(sgemm)))
    table = bench_table.measured_table(bench_table.read_reports([path]))
    assert "machine: GPU NVIDIA H200 (compute capability 9.0, CUDA driver 13.0, runtime " \
           "13.0); host: Some CPU 9000" in table
    assert "hold for this machine only (the GPU NVIDIA H200)" in table
    if measured_on == "gpu":
        assert "SGEMM on the GPU (cuBLAS (CuPy)) at the RBM's shapes 400 GFLOP/s" in table
        assert "(25% of SGEMM)" in table
    else:
        assert "SGEMM" not in table


@requires_cuda
def test_on_a_gpu_backend_the_gemm_rate_is_measured_with_that_backends_gemm():
    rate = bench.sgemm_rate(products=[(8, 8, 8, False, False), (8, 8, 8, True, False)],
                            batches=1, repeats=1, backend="cuda")
    assert rate["on"] == "gpu" and rate["numpy"] is None and rate["gflops"] > 0
    assert rate["engine"] == get_backend("cuda").gemm_engine
    machine = bench.machine_description(sgemm=False, backend="cuda")
    assert machine["gpu"]["usable"] and "gpu" not in bench.machine_description(sgemm=False)
    assert bench.sgemm_rate(products=[(8, 8, 8, False, True)], batches=1, repeats=1)["on"] == \
        "cpu"


def test_reports_of_two_machines_make_no_table(tmp_path):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps(fake_report()))
    second.write_text(json.dumps(fake_report("cnn", fake_machine(isa="AVX-512"))))
    with pytest.raises(ValueError, match="another machine"):
        bench_table.read_reports([first, second])


def test_reports_of_one_machine_under_other_conditions_each_print_their_own_machine_line(
        tmp_path):
    """Same CPU, cores and threads, but one bench ran under another OpenMP waiting policy and
    BLAS kernel: the table prints each machine line once, naming the benches it holds for, and
    each row's share of SGEMM is of the ceiling measured under its own line."""
    spinning = fake_machine(openmp_wait={"dlcore": "GOMP_SPINCOUNT=31000", "torch": "default"})
    passive = fake_machine(openmp_wait={"dlcore": "OMP_WAIT_POLICY=passive", "torch": "default"},
                           sgemm={"gflops": 400.0, "numpy": 400.0, "dlcore_gemm": 400.0,
                                  "shapes": "..."})
    passive["blas"] = [dict(passive["blas"][0], kernel="SkylakeX")]
    paths = [tmp_path / f"{name}.json" for name in ("rbm", "mlp", "cnn")]
    for path, machine in zip(paths, (spinning, passive, spinning)):
        path.write_text(json.dumps(fake_report(path.stem, machine)))
    table = bench_table.measured_table(bench_table.read_reports(paths))
    lines = table.splitlines()
    spinning_line, passive_line = (bench.machine_line(machine) for machine in (spinning, passive))
    assert "GOMP_SPINCOUNT" in spinning_line and "passive" in passive_line
    assert lines.count(f"    {spinning_line}") == 1 and lines.count(f"    {passive_line}") == 1
    assert "For `dlcore bench rbm`, `dlcore bench cnn`:" in lines
    assert "For `dlcore bench mlp`:" in lines
    assert lines.index("For `dlcore bench mlp`:") < lines.index(f"    {passive_line}")
    rbm_row, = [line for line in lines if line.startswith("| `dlcore bench rbm`")]
    mlp_row, = [line for line in lines if line.startswith("| `dlcore bench mlp`")]
    assert "(50% of SGEMM)" in rbm_row and "(25% of SGEMM)" in mlp_row


@pytest.mark.parametrize("copied", [False, True])
def test_a_report_given_twice_is_refused_naming_it(tmp_path, copied):
    rbm, mlp = tmp_path / "rbm.json", tmp_path / "mlp.json"
    rbm.write_text(json.dumps(fake_report()))
    mlp.write_text(json.dumps(fake_report("mlp")))
    again = rbm
    if copied:
        again = tmp_path / "copy-of-rbm.json"
        again.write_text(rbm.read_text())
    with pytest.raises(ValueError) as raised:
        bench_table.read_reports([rbm, mlp, again])
    message = str(raised.value)
    assert message.startswith(f"{again}: given twice") and "once" in message
    assert "\n" not in message and (f"the same report as {rbm}" in message) == copied
    result = CliRunner().invoke(main, ["bench", "table", str(rbm), str(mlp), str(again)])
    assert result.exit_code == 1 and "given twice" in result.stderr


def test_the_header_names_the_setting_each_report_ran_with(tmp_path):
    """`dlcore bench dbn` trains 10 epochs a layer unless told: a table of a run with
    `--epochs 1` must say so above the rows, from the report's own setting."""
    dbn, rbm = fake_report("dbn"), fake_report("rbm")
    dbn["setting"] = {"layers": [784, 500, 2000], "epochs": 1, "batch_size": 100,
                      "learning_rate": 0.1, "data": "random binary data"}
    paths = [tmp_path / "dbn.json", tmp_path / "rbm.json"]
    for path, run in zip(paths, (dbn, rbm)):
        path.write_text(json.dumps(run))
    lines = bench_table.measured_table(bench_table.read_reports(paths)).splitlines()
    assert ("- `dlcore bench dbn`: layers 784-500-2000, epochs 1, batch size 100, learning "
            "rate 0.1, data random binary data") in lines
    assert "- `dlcore bench rbm`: rows 10" in lines
    header = "| work | dlcore | other | ratio of minima |"
    assert lines.index("- `dlcore bench rbm`: rows 10") < lines.index(header)


def test_the_table_replaces_only_what_lies_between_the_markers():
    readme = f"intro\n{bench_table.BEGIN}\nold table\n{bench_table.END}\nafter\n"
    assert bench_table.replace_table(readme, "NEW\n") == "intro\nNEW\nafter\n"
    with pytest.raises(ValueError, match="markers"):
        bench_table.replace_table("no markers here", "NEW\n")


def test_the_readme_table_is_what_the_script_writes_from_the_committed_reports():
    assert MEASURED, "docs/measured/ holds the JSON reports of the README's table"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = bench_table.measured_table(bench_table.read_reports(MEASURED))
    assert table in readme, ("regenerate the table: dlcore bench table docs/measured/*.json "
                             "--readme README.md")


def test_bench_table_command_refuses_a_file_that_is_not_a_report(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("{}")
    result = CliRunner().invoke(main, ["bench", "table", str(path)])
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("dlcore: error:") and "schema" in result.stderr


def test_bench_mlp_alternates_dlcore_and_pytorch_and_reports_json(monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.setattr(bench, "sgemm_rate", lambda *args, **kwargs: {
        "gflops": 100.0, "numpy": 100.0, "dlcore_gemm": None, "shapes": "constant"})
    result = CliRunner().invoke(main, ["bench", "mlp", "--train-images", "64", "--test-images",
                                       "32", "--repeats", "2", "--backend", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout)
    assert run["benchmark"] == "mlp" and run["schema"] == bench.SCHEMA
    training, inference = run["comparisons"]
    names = [row["name"] for row in training["results"]]
    assert names[0] == "dlcore cpu" and names[1].startswith("PyTorch")
    assert training["order"] == names * 2 and inference["order"] == names * 2
    assert training["work"]["layers"][:3] == [["dense", 784, 500], "sigmoid", ["dropout", 0.2]]
    assert training["work"]["batch_size"] == 32


@pytest.mark.parametrize("folder", sorted(path for path in (ROOT / "docs" / "measured").iterdir()
                                          if path.is_dir()))
def test_the_readmes_ratios_of_other_runs_are_those_of_their_committed_reports(folder):
    """The README quotes the ratios of the runs kept beside its table (another machine, code
    held to AVX2) in a paragraph naming their folder: the same numbers, in the table's order."""
    reports = sorted(folder.glob("*.json"))
    table = bench_table.measured_table(bench_table.read_reports(reports))
    ratios = re.findall(r"\| ([0-9.]+) \((?:dlcore faster|level|dlcore slower)[^|]*\|$",
                        table, flags=re.MULTILINE)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    [paragraph] = [" ".join(text.split()) for text in readme.split("\n\n")
                   if f"docs/measured/{folder.name}/" in text]
    quoted = re.search(r"ratios ([0-9., and]+?) in the order below", paragraph).group(1)
    assert ratios and re.split(r", | and ", quoted) == ratios


def test_the_printed_report_of_a_loaded_machine_says_its_times_and_sgemm_share_carry_the_load():
    # on 2 cores under a load of 16, bench rbm printed "207%" of SGEMM and PyTorch 25 times
    # slower with nothing but the load average's figures beside them
    loaded = "\n".join(bench.format_report(fake_report(load_after=(16.0, 9.0, 4.0))))
    assert "heavily oversubscribed" in loaded and "only the ratios" in loaded
    assert "A share of SGEMM above 100%" in loaded and "idle machine" in loaded
    idle = "\n".join(bench.format_report(fake_report()))
    assert "oversubscribed" not in idle and "above 100%" not in idle
