"""Data-parallel training over MPI (dlcore.distributed): R ranks equal one process (RBMs, DBN
pretraining, networks with dropout, a small conv net, denoising autoencoders).

The oracle is one process: tests/distributed_worker.py trains a tiny model under ``mpiexec -n
R`` with a global batch that R does not divide (23 rows, batches of 7: 7, 7, 7, 2) and then
alone on rank 0, and the parameters must agree within 1e-5 after three epochs (they move by
~0.3). The communicator's sum is checked bit for bit against the sum in rank order; a rank that
hangs or fails must stop the job with one message. Without mpi4py the multi-process tests skip
(the extra ``dlcore[distributed]`` is not installed); the seams (global rows of the random
numbers, the shards) are tested in this process on every backend."""
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import dlcore.distributed
from conftest import requires_cuda
from dlcore.backend import get_backend
from dlcore.distributed import Communicator, DistributedUnavailable
from dlcore.rbm.units import softmax_labels

HERE = Path(__file__).resolve().parent
BACKENDS = ["reference", "cpu", pytest.param("cuda", marks=requires_cuda)]

requires_mpi4py = pytest.mark.skipif(
    importlib.util.find_spec("mpi4py") is None,
    reason='mpi4py is not installed (pip install "dlcore[distributed]")')


def mpiexec():
    return dlcore.distributed.launcher()


def run_ranks(ranks, *cases, timeout=240):
    # -n R on a machine with fewer cores: MPICH's launcher oversubscribes without being asked
    return subprocess.run([mpiexec(), "-n", str(ranks), sys.executable,
                           str(HERE / "distributed_worker.py"), *cases],
                          capture_output=True, text=True, timeout=timeout, cwd=HERE,
                          env={**os.environ, "PYTHONPATH": str(HERE)}, check=False)


def results(completed):
    assert completed.returncode == 0, completed.stderr[-3000:]
    return [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]


def assert_equal_to_one_process(result):
    assert max(result["differences"].values()) < 1e-5, result
    assert result["moved"] > 0.1, result   # the parameters did train: the test can fail
    np.testing.assert_allclose(*result["errors"], rtol=1e-5)


# -- in one process: the seams --------------------------------------------------------------
@pytest.mark.parametrize("backend_name", BACKENDS)
def test_shards_with_their_first_global_row_draw_the_samples_of_the_whole_batch(backend_name):
    backend = get_backend(backend_name)
    pre = np.random.default_rng(0).normal(size=(7, 13)).astype(np.float32)
    bias = np.zeros(13, np.float32)

    def bernoulli(rows, first_row):
        p = backend.asarray(np.array(pre[rows]))
        sample = backend.empty((rows.stop - rows.start, 13))
        backend.sigmoid_bernoulli(p, backend.asarray(bias), sample, 9, 16, 3, first_row)
        return backend.to_numpy(sample)

    def gaussian(rows, first_row):
        mean = backend.asarray(np.array(pre[rows]))
        sample = backend.empty((rows.stop - rows.start, 13))
        backend.gaussian_sample(mean, backend.asarray(bias), backend.asarray(bias + 1), sample,
                                9, 17, 3, first_row)
        return backend.to_numpy(sample)

    for draw in (bernoulli, gaussian):
        whole = draw(slice(0, 7), 0)
        shards = np.concatenate([draw(slice(0, 3), 0), draw(slice(3, 7), 3)])
        np.testing.assert_array_equal(shards, whole)
        # keyed by the row in the array instead, the second shard would repeat the first rows
        assert not np.array_equal(draw(slice(3, 7), 0), whole[3:])


@pytest.mark.parametrize("backend_name", ["reference", "cpu"])
def test_a_shard_of_softmax_labels_draws_the_labels_of_its_global_rows(backend_name):
    backend = get_backend(backend_name)
    top_down = np.random.default_rng(1).normal(size=(6, 9)).astype(np.float32)
    bias = np.zeros(9, np.float32)

    def labels(rows, first_row):
        n = rows.stop - rows.start
        probability, states = backend.empty((n, 3)), backend.empty((n, 3))
        softmax_labels(backend, backend.asarray(np.array(top_down[rows])),
                       backend.asarray(bias), probability, states, 4, 18, 2, first_row)
        return backend.to_numpy(states)

    whole = labels(slice(0, 6), 0)
    np.testing.assert_array_equal(np.concatenate([labels(slice(0, 2), 0),
                                                  labels(slice(2, 6), 2)]), whole)


class OneOfMany:
    """What Communicator reads of an mpi4py communicator to place itself."""

    def __init__(self, rank, size):
        self.rank, self.size = rank, size

    def Get_rank(self):  # noqa: N802 (mpi4py's name)
        return self.rank

    def Get_size(self):  # noqa: N802
        return self.size


@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_the_shards_of_a_batch_cover_its_rows_once_in_rank_order(size):
    for n_rows in range(0, 13):
        shards = [Communicator(OneOfMany(rank, size)).shard(n_rows) for rank in range(size)]
        assert shards[0][0] == 0 and shards[-1][1] == n_rows
        assert all(a[1] == b[0] for a, b in zip(shards, shards[1:]))
        lengths = [stop - first for first, stop in shards]
        assert max(lengths) - min(lengths) <= 1 and lengths == sorted(lengths, reverse=True)


def test_without_mpi4py_asking_for_distribution_says_what_to_install(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "mpi4py"
                        else real_find_spec(name, *args))
    assert not dlcore.distributed.available()
    with pytest.raises(DistributedUnavailable, match=r'pip install "dlcore\[distributed\]"'):
        dlcore.distributed.init()


def test_threads_per_rank_share_the_cores_of_the_node():
    assert dlcore.distributed.local_threads(2, cores=16) == 8
    assert dlcore.distributed.local_threads(3, cores=2) == 1


# -- under mpiexec ---------------------------------------------------------------------------
@requires_mpi4py
def test_the_sum_over_ranks_is_the_sum_in_rank_order_on_every_rank():
    outcome = results(run_ranks(3, "allreduce"))
    assert [result["equal"] for result in outcome] == [True] * 3


@requires_mpi4py
def test_two_ranks_train_the_rbm_of_one_process_cd_and_pcd():
    outcome = results(run_ranks(2, "rbm", "rbm-pcd"))
    assert [result["case"] for result in outcome] == ["rbm", "rbm-pcd"]
    for result in outcome:
        assert result["ranks"] == 2
        assert_equal_to_one_process(result)


@pytest.mark.slow
@requires_mpi4py
def test_three_ranks_train_the_rbms_and_dbns_of_one_process():
    # 3 ranks, batches of 7 then 2 rows: shards of 3, 2, 2 and then 1, 1, 0 rows
    cases = ["rbm", "rbm-pcd", "rbm-cd2-mean-field", "gaussian", "dbn", "dbn-labels-sample"]
    outcome = results(run_ranks(3, *cases))
    assert [result["case"] for result in outcome] == cases
    for result in outcome:
        assert result["ranks"] == 3
        assert_equal_to_one_process(result)


@pytest.mark.slow
@requires_mpi4py
def test_networks_and_autoencoders_train_as_in_one_process_on_2_and_3_ranks():
    # dropout masks and corruption keyed by the global row: keyed by the shard's row instead,
    # the weights part by ~0.05 (measured)
    cases = ["mlp-dropout", "conv-net", "autoencoder", "autoencoder-untied-gaussian"]
    for ranks in (2, 3):
        outcome = results(run_ranks(ranks, *cases))
        assert [result["case"] for result in outcome] == cases
        for result in outcome:
            assert_equal_to_one_process(result)


@pytest.mark.slow
@requires_mpi4py
def test_two_ranks_pretrain_the_dbn_of_one_process_layer_by_layer():
    # the second case passes sampled states up and trains a top RBM with softmax label units
    for result in results(run_ranks(2, "dbn", "dbn-labels-sample")):
        assert len(result["differences"]) == 6   # two RBMs, three arrays each
        assert_equal_to_one_process(result)


@pytest.mark.slow
@requires_mpi4py
def test_a_rank_that_never_joins_stops_every_rank_after_the_timeout():
    started = time.monotonic()
    completed = run_ranks(2, "hang", timeout=50)
    assert completed.returncode != 0
    assert time.monotonic() - started < 40   # rank 1 sleeps 60 s: it was stopped
    lines = [line for line in completed.stderr.splitlines() if line.startswith("dlcore:")]
    assert lines == ["dlcore: rank 0 of 2: allreduce (all-to-all) waited 2 s for the other "
                     "ranks: one of them failed or is stuck; stopping all ranks"], \
        completed.stderr


@pytest.mark.slow
@requires_mpi4py
def test_an_error_on_one_rank_stops_every_rank_with_one_message():
    completed = run_ranks(2, "fail", timeout=50)
    assert completed.returncode != 0
    lines = [line for line in completed.stderr.splitlines() if line.startswith("dlcore:")]
    assert lines == ["dlcore: rank 1 of 2: ValueError: rank 1 could not read its data"], \
        completed.stderr


@pytest.mark.slow
@requires_mpi4py
def test_ranks_that_train_on_different_data_are_refused():
    completed = run_ranks(2, "other-data", timeout=50)
    assert completed.returncode != 0
    assert "the training data (shape and CRC-32) of rank 1 differ from rank 0's" in \
        completed.stderr


# -- the commands ----------------------------------------------------------------------------
def test_distributed_without_mpi4py_is_one_line_naming_the_extra(monkeypatch, tmp_path):
    from click.testing import CliRunner

    from dlcore.cli import main
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "mpi4py"
                        else real_find_spec(name, *args))
    result = CliRunner().invoke(main, ["rbm", "train", "--distributed", "--epochs", "1",
                                       "--out", str(tmp_path / "run")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        'dlcore: error: distributed training needs mpi4py and an MPI library: pip install '
        '"dlcore[distributed]"']
    assert not (tmp_path / "run").exists()


def run_command(arguments, ranks=None):
    command = [sys.executable, "-m", "dlcore", *arguments]
    if ranks is not None:
        command = [mpiexec(), "-n", str(ranks), *command, "--distributed"]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300,
                               check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed


@pytest.mark.slow
@requires_mpi4py
@pytest.mark.parametrize("command, model_file", [
    (["rbm", "train", "--digits", "0-1", "--hidden", "8", "--epochs", "2", "--batch-size",
      "25"], "model.h5"),
    (["ae", "train", "--digits", "0-1", "--hidden", "8", "--epochs", "1", "--batch-size",
      "25"], "model.h5"),
    (["cnn", "train", "--model", "mlp", "--dataset", "mnist-5k", "--train-size", "200",
      "--epochs", "1", "--batch-size", "32", "--validation-split", "0", "--dropout", "0.3"],
     "model.h5")])
def test_a_distributed_command_prints_and_writes_once_what_one_process_would(
        command, model_file, tmp_path):
    common = [*command, "--backend", "cpu", "--seed", "1"]
    alone = run_command([*common, "--out", str(tmp_path / "alone")])
    together = run_command([*common, "--out", str(tmp_path / "together")], ranks=2)
    assert "data-parallel training over 2 ranks" in together.stderr
    # rank 0 alone prints: the same report as one process, once
    assert together.stdout.splitlines()[-1].replace("together", "alone") == \
        alone.stdout.splitlines()[-1]
    assert sorted(path.name for path in (tmp_path / "together").iterdir()) == \
        sorted(path.name for path in (tmp_path / "alone").iterdir())
    models = [dlcore.load(tmp_path / name / model_file) for name in ("together", "alone")]
    weights = [model.get_weights() if command[0] == "cnn" else
               [model.W, model.hidden_bias, model.visible_bias] for model in models]
    # 784 inputs, an epoch of real digits: float32 sums in another order drift apart by up to
    # ~1.2e-5 (measured, the autoencoder); a shard drawn or weighted wrongly moves them ~1e-2
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=5e-5)


# -- the benchmark's model -------------------------------------------------------------------
def test_the_alpha_beta_fit_recovers_the_latency_and_bandwidth_it_was_made_with():
    from dlcore.distributed.bench import allreduce_seconds, fit_alpha_beta
    alpha, beta = 20e-6, 1 / 5e9
    measurements = [(n, allreduce_seconds(n, 4, alpha, beta)) for n in (1e3, 1e5, 1e7)]
    np.testing.assert_allclose(fit_alpha_beta(measurements, 4), (alpha, beta), rtol=1e-6)
    assert allreduce_seconds(1e6, 1, alpha, beta) == 0.0


def test_predicted_efficiency_falls_as_communication_outweighs_the_shrinking_compute():
    from dlcore.distributed.bench import predicted_efficiency, rbm_step_bytes
    assert rbm_step_bytes(784, 500) == 4 * (784 * 500 + 2 * 784 + 3 * 500)
    efficiencies = [predicted_efficiency(0.01, 1.6e6, n, 5e-6, 1e-10) for n in (1, 2, 8, 64)]
    assert efficiencies[0] == 1.0 and efficiencies == sorted(efficiencies, reverse=True)
    # free communication: perfect scaling
    assert predicted_efficiency(0.01, 1.6e6, 64, 0.0, 0.0) == 1.0


@pytest.mark.slow
@requires_mpi4py
def test_bench_distributed_reports_one_and_two_ranks_and_the_model():
    completed = subprocess.run(
        [sys.executable, "-m", "dlcore", "bench", "distributed", "--rows", "200", "--hidden",
         "20", "--repeats", "1"], capture_output=True, text=True, timeout=300, check=False)
    assert completed.returncode == 0, completed.stderr[-2000:]
    lines = completed.stdout.splitlines()
    assert lines[0].startswith("machine: ")
    assert [line.split()[0] for line in lines if line.strip()[:1].isdigit()] == ["1", "2"]
    assert sum(line.startswith(("RBM ", "LeNet-5 ")) for line in lines) == 4
