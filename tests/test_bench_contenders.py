"""``dlcore bench`` names every contender it could not run instead of leaving it out silently.

Oracle: an import made to fail (``sys.modules[name] = None`` makes ``import name`` raise
ModuleNotFoundError, as on a machine without the package); the table must then hold one line
per missing contender with the command that installs it."""
import json
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from dlcore import bench
from dlcore.cli import main

TORCH_LINE = "PyTorch: not installed (pip install torch)"
SKLEARN_LINE = "scikit-learn: not installed (pip install scikit-learn)"


@pytest.fixture
def no_contenders(monkeypatch):
    """PyTorch and scikit-learn not importable; the SGEMM rate not measured (a constant)."""
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setattr(bench, "sgemm_rate", lambda *args, **kwargs: {
        "gflops": 100.0, "numpy": 100.0, "dlcore_gemm": None, "shapes": "constant"})


def test_missing_contenders_are_named_with_their_install_command(no_contenders):
    assert bench.missing_contenders(["torch", "sklearn"]) == [TORCH_LINE, SKLEARN_LINE]


def test_installed_contenders_are_not_reported_missing():
    pytest.importorskip("sklearn")
    assert bench.missing_contenders(["sklearn"]) == []


def test_a_broken_install_is_named_with_its_error(monkeypatch):
    import importlib

    def broken(name, *args):
        raise ImportError("libtorch_cpu.so: cannot open shared object file")

    monkeypatch.setattr(importlib, "import_module", broken)
    expected = ("PyTorch: cannot be imported (libtorch_cpu.so: cannot open shared object file) "
                "(pip install torch)")
    assert bench.missing_contenders(["torch"]) == [expected]


@pytest.mark.slow
def test_bench_rbm_lists_each_missing_contender(no_contenders):
    result = CliRunner().invoke(main, ["bench", "rbm", "--rows", "200", "--hidden", "8",
                                       "--repeats", "1", "--skip", "reference", "--backend",
                                       "cpu"])
    assert result.exit_code == 0, result.output
    assert TORCH_LINE in result.stdout.splitlines()
    assert SKLEARN_LINE in result.stdout.splitlines()
    assert "dlcore cpu" in result.stdout
    assert result.stdout.startswith("machine: ")


@pytest.mark.slow
def test_bench_rbm_json_lists_the_missing_contenders(no_contenders):
    result = CliRunner().invoke(main, ["bench", "rbm", "--rows", "200", "--hidden", "8",
                                       "--repeats", "1", "--skip", "reference", "--skip",
                                       "sklearn", "--backend", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["missing"] == [TORCH_LINE]


def test_scikit_learn_and_the_numpy_reference_race_only_on_the_cpu():
    assert bench.races_on("sklearn", "cpu") and bench.races_on("reference", "cpu")
    assert not bench.races_on("sklearn", "cuda") and not bench.races_on("reference", "cuda")
    assert bench.races_on("torch", "cuda") and bench.races_on("dlcore", "cuda")


@pytest.mark.slow
def test_bench_rbm_reports_missing_only_the_contenders_that_race(no_contenders, monkeypatch):
    """The command asks dlcore.bench which contenders race on the backend (one definition):
    one that does not race is neither timed nor reported missing."""
    monkeypatch.setattr(bench, "races_on", lambda contender, backend: contender == "torch")
    result = CliRunner().invoke(main, ["bench", "rbm", "--rows", "200", "--hidden", "8",
                                       "--repeats", "1", "--backend", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["missing"] == [TORCH_LINE]
    assert [len(c["results"]) for c in report["comparisons"]] == [1, 1]   # no sklearn row
    assert all(c["results"][0]["name"].startswith("dlcore") for c in report["comparisons"])


def test_bench_cnn_says_pytorch_is_not_installed(no_contenders):
    result = CliRunner().invoke(main, ["bench", "cnn", "--train-images", "64", "--test-images",
                                       "64", "--repeats", "1", "--backend", "cpu"])
    assert result.exit_code == 0, result.output
    assert TORCH_LINE in result.stdout.splitlines()
    assert result.stdout.startswith("machine: ")


def test_bench_dbn_says_pytorch_is_not_installed(no_contenders):
    result = CliRunner().invoke(main, ["bench", "dbn", "--layers", "784-16-8", "--rows", "200",
                                       "--epochs", "1", "--backend", "cpu"])
    assert result.exit_code == 0, result.output
    assert TORCH_LINE in result.stdout.splitlines()
    assert "dlcore cpu" in result.stdout
    assert any(line.startswith("machine: ") for line in result.stdout.splitlines())


def test_machine_line_names_the_cpu_its_vector_isa_cores_threads_blas_and_sgemm_rate():
    """Figures of one machine kind say nothing of another: every bench prints the machine."""
    machine = {"cpu": "Some CPU 9000", "isa": "AVX-512", "cores": 2, "threads": 2,
               "blas": [{"library": "OpenBLAS", "version": "0.3.31", "kernel": "SkylakeX",
                         "threading": "pthreads", "used_by_dlcore": True}],
               "torch": None, "sgemm": {"gflops": 293.4}}
    assert bench.machine_line(machine) == (
        "machine: Some CPU 9000, AVX-512, 2 cores, 2 threads; BLAS OpenBLAS 0.3.31 SkylakeX "
        "kernel (pthreads); SGEMM at the RBM's shapes 293 GFLOP/s")
    real = bench.machine_description(sgemm=False)
    assert real["cpu"] and real["isa"] and real["cores"] >= 1 and real["threads"] >= 1
    assert any(entry["used_by_dlcore"] for entry in real["blas"])


def test_the_benchmark_data_reads_or_draws_only_the_rows_it_returns(monkeypatch):
    """``--rows 200`` on a machine without Fashion-MNIST drew random data for all 60,000 rows
    to keep 200 (seconds, gigabytes): only the rows returned are drawn, the same rows as the
    first of a larger draw (each element has its own counter); and only those of
    Fashion-MNIST are converted."""
    import importlib

    from dlcore import datasets
    from dlcore.backend import rng
    benchmark_data = importlib.import_module("dlcore.cli.bench").rbm_benchmark_data

    def not_installed(*args, **kwargs):
        raise OSError("Fashion-MNIST is not installed here")
    drawn, uniform = [], rng.uniform
    monkeypatch.setattr(datasets, "load_fashion_mnist", not_installed)
    monkeypatch.setattr(rng, "uniform", lambda n_rows, *args: drawn.append(n_rows) or
                        uniform(n_rows, *args))
    X, source = benchmark_data(200)
    assert drawn == [200] and source == "random binary data (Fashion-MNIST not installed)"
    np.testing.assert_array_equal(X, uniform(1000, 784, 0, rng.STREAM_SPLIT)[:200] < 0.5)
    assert X.dtype == np.float32 and X.flags.c_contiguous

    images = np.random.default_rng(0).integers(0, 256, (1000, 28, 28), dtype=np.uint8)
    converted, to_unit_interval = [], datasets.to_unit_interval
    monkeypatch.setattr(datasets, "load_fashion_mnist", lambda *args, **kwargs: (images, None))
    monkeypatch.setattr(datasets, "to_unit_interval", lambda rows: converted.append(len(rows)) or
                        to_unit_interval(rows))
    X, source = benchmark_data(200)
    assert converted == [200] and source == "Fashion-MNIST training images"
    np.testing.assert_array_equal(X, images[:200].reshape(200, 784) / np.float32(255))
