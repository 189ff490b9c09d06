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
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

import dlcore.distributed
from conftest import requires_cuda
from distributed_worker import COMPILATIONS, TRAINING
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


# One process's training of each case (the worker's one_process), trained once for the whole
# module, in a process of its own before the ranks start: the same whatever the number of
# ranks that train the case together, and it compiles the case's kernels once, where every
# rank compiled them at once on a cold kernel cache (~100 s on 2 cores).
ONE_PROCESS = tempfile.TemporaryDirectory(prefix="dlcore-one-process-")


#: How long a job of the worker may take before the test takes it for hung: a bound on a hang
#: only, which no job that works comes near (seconds each warm, a minute on a cold kernel cache
#: under load, as test_cli_distributed.JOB_HANG_SECONDS); the
#: worker's waits that a test must tell from the product's stopping are longer still
#: (:data:`distributed_worker.NEVER_SECONDS`), so that no test measures the machine's speed.
JOB_HANG_SECONDS = 600


def run_ranks(ranks, *cases, timeout=JOB_HANG_SECONDS, environment=None):
    """``environment``: variables to set, or to remove where None."""
    # the workers next to this file, and the dlcore of this checkout (not an installed one)
    variables = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent)]),
                 "DLCORE_TEST_ONE_PROCESS": ONE_PROCESS.name, **(environment or {})}
    variables = {key: value for key, value in variables.items() if value is not None}
    trained = {case.removeprefix("averaged:") for case in cases}
    untrained = sorted(case for case in trained & set(TRAINING)
                       if not (Path(ONE_PROCESS.name) / f"{case}.npz").exists())
    if untrained:
        alone = subprocess.run([sys.executable, str(HERE / "distributed_worker.py"),
                                "--one-process", *untrained], capture_output=True, text=True,
                               timeout=timeout, cwd=HERE, env=variables, check=False)
        assert alone.returncode == 0, alone.stderr[-3000:]
    # -n R on a machine with fewer cores: MPICH's launcher oversubscribes without being asked
    return subprocess.run([mpiexec(), "-n", str(ranks), sys.executable,
                           str(HERE / "distributed_worker.py"), *cases],
                          capture_output=True, text=True, timeout=timeout, cwd=HERE,
                          env=variables, check=False)


def job_lines(completed):
    """The job's non-empty stderr lines, less the first run's "compiling kernels" notice (which
    a cold kernel cache adds)."""
    return [line for line in completed.stderr.splitlines()
            if line.strip() and "compiling kernels" not in line]


def json_lines(completed):
    assert completed.returncode == 0, completed.stderr[-3000:]
    return [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]


def printed(completed):
    """The one object rank 0 printed for a job that stopped (whatever its exit code), the
    worker's marks of where each case begins left out; None if not exactly one."""
    lines = [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]
    objects = [line for line in lines if "begin" not in line]
    return objects[0] if len(objects) == 1 else None


def results(completed):
    """What rank 0 printed of the job's cases (the worker's marks of where each begins left
    out)."""
    return [result for result in json_lines(completed) if "begin" not in result]


# The training cases that the tests below compare with one process, by the number of ranks of
# the job they run in. Each number of ranks is one mpiexec job for all the selected tests that
# need it (:func:`shared_job`): a job costs its ranks' start (importing NumPy, Numba, mpi4py,
# loading the kernels: seconds each on 2 cores) before the cases' milliseconds of training.
RBM_CASES_ON_2 = ["rbm", "rbm-pcd", "rbm-pcd-last-batch"]
DBN_CASES_ON_2 = ["dbn", "dbn-labels-sample"]
CASES_ON_3 = ["rbm", "rbm-pcd", "rbm-cd2-mean-field", "gaussian", "dbn", "dbn-labels-sample"]
NETWORK_CASES = ["mlp-dropout", "conv-net", "mlp-noise-adversarial", "conv-augment-noise",
                 "autoencoder", "autoencoder-untied-gaussian", "autoencoder-sparse",
                 "autoencoder-sparse-untied", "stacked-autoencoder"]
UP_DOWN_CASES = ["dbn-up-down", "dbn-up-down-labels"]
AVERAGED_CASES = ["rbm", "rbm-pcd", "mlp-dropout", "autoencoder"]
# local SGD, K = 3 (23 rows in batches of 7: 4 steps an epoch): {case: (epochs, all-reduces
# per epoch)}
LOCAL_SGD_CASES = {"rbm-learn": (10, 2 + 1), "rbm-pcd": (3, 2 * 2 + 1), "dbn": (2, 2 * (2 + 1)),
                   "mlp-dropout": (12, 2 + 1), "autoencoder": (3, 2 + 3),
                   "autoencoder-sparse": (3, 2 + 3)}
LOCAL_SGD_JOB = [f"local:{case}:3:{epochs}" for case, (epochs, _) in LOCAL_SGD_CASES.items()]
SHARED_CASES = {
    2: {"test_two_ranks_train_the_rbm_of_one_process_cd_and_pcd": RBM_CASES_ON_2,
        "test_logging_callbacks_on_rank_0_alone_train_and_stop_every_rank_alike":
            ["callbacks-logging"],
        "test_two_ranks_pretrain_the_dbn_of_one_process_layer_by_layer": DBN_CASES_ON_2,
        "test_networks_and_autoencoders_train_as_in_one_process_on_2_and_3_ranks":
            NETWORK_CASES,
        "test_up_down_fine_tuning_trains_the_dbn_of_one_process_on_2_and_3_ranks":
            UP_DOWN_CASES,
        "test_averaging_after_every_step_is_the_exact_step_on_two_ranks":
            [f"averaged:{case}" for case in AVERAGED_CASES],
        "test_local_sgd_ends_every_rank_with_the_same_model_in_fewer_allreduces":
            LOCAL_SGD_JOB,
        "test_rank_0_gathers_what_arrives_and_leaves_out_a_rank_that_sends_nothing":
            ["gather-arrived"],
        "test_a_rank_busy_without_collectives_hears_another_s_signal_within_a_second":
            ["peer-interrupted-while-busy"],
        "test_a_data_parallel_fit_interrupted_and_run_again_resumes_its_backup_bit_for_bit":
            ["backup-rerun"]},
    3: {"test_the_sum_over_ranks_is_the_sum_in_rank_order_on_every_rank": ["allreduce"],
        "test_each_rank_of_a_node_knows_its_node_local_rank_and_gpu": ["node-local-rank"],
        "test_three_ranks_train_the_rbms_and_dbns_of_one_process": CASES_ON_3,
        "test_networks_and_autoencoders_train_as_in_one_process_on_2_and_3_ranks":
            NETWORK_CASES,
        "test_up_down_fine_tuning_trains_the_dbn_of_one_process_on_2_and_3_ranks":
            UP_DOWN_CASES}}
#: The jobs that end before the shared job of their ranks starts, by the test that reads them
#: (:func:`shared_job`): a job that ends by its interruption, whose case in the shared job
#: runs the script again in the folder it left.
PRELUDES = {2: {"test_a_data_parallel_fit_interrupted_and_run_again_resumes_its_backup_bit_for_bit":
                "backup-interrupted"}}
#: Under pytest-xdist, ``--dist loadgroup`` keeps the tests of one shared job on one worker.
shares_a_job = pytest.mark.xdist_group("dlcore-mpi-jobs")


@pytest.fixture(scope="module")
def shared_job(request):
    """``shared_job(ranks, cases)``: what rank 0 printed for ``cases``, in their order, from
    the one job of ``ranks`` ranks that runs the cases of every selected test listed in
    :data:`SHARED_CASES` (a case two tests read runs once). Its cases are independent models
    with their own seeds, so a case trains as in a job of its own. ``shared_job.preludes``:
    {case: the completed job} of the :data:`PRELUDES` that ran before it, in the folder
    $DLCORE_TEST_BACKUP that the shared job is given too."""
    selected = {item.originalname for item in request.session.items
                if getattr(item, "module", None) is request.module}
    jobs = {}
    folder = request.getfixturevalue("tmp_path_factory").mktemp("shared-job")
    environment = {"DLCORE_TEST_BACKUP": str(folder)}

    def outcome(ranks, cases):
        if ranks not in jobs:
            for test, case in PRELUDES.get(ranks, {}).items():
                if test in selected:
                    outcome.preludes[case] = run_ranks(ranks, case, environment=environment,
                                                       timeout=240)
            wanted = [case for test, listed in SHARED_CASES[ranks].items()
                      if test in selected for case in listed]
            by_case = {}
            for line in json_lines(run_ranks(ranks, *dict.fromkeys(wanted + list(cases)),
                                             environment=environment, timeout=600)):
                if "begin" in line:
                    current = by_case.setdefault(line["begin"], [])
                else:
                    current.append(line)
            jobs[ranks] = by_case
        return [line for case in cases for line in jobs[ranks][case]]

    outcome.preludes = {}
    return outcome


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


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_autoencoder_shards_given_the_batch_activation_sums_weigh_up_to_the_batch_gradient(
        backend_name):
    from dlcore.autoencoder.ops import BatchActivations, Monitors, Workspace, ops_for
    be = get_backend(backend_name)
    ops = ops_for(be)
    generator = np.random.default_rng(2)
    x = generator.random((7, 5)).astype(np.float32)
    values = {"W": generator.normal(0, 0.5, (5, 4)).astype(np.float32),
              "hidden_bias": np.zeros(4, np.float32), "visible_bias": np.zeros(5, np.float32)}
    options = {"tied": True, "activation": "sigmoid", "decoder_activation": "sigmoid",
               "loss": "cross_entropy", "sparsity_target": 0.1, "sparsity_cost": 0.5}
    p = {name: be.asarray(value) for name, value in values.items()}

    def step(rows, batch=None):
        n = rows.stop - rows.start
        xs = be.asarray(np.array(x[rows]))
        h, r = be.empty((n, 4)), be.empty((n, 5))
        grads = {name: be.zeros(value.shape) for name, value in values.items()}
        monitors = Monitors(be.zeros((5,)), be.zeros((5,)), be.zeros((4,)))
        workspace = Workspace(be.empty((n, 5)), be.empty((n, 4)), be.empty((n, 4)),
                              be.empty((4,)))
        ops.encode(xs, p["W"], p["hidden_bias"], "sigmoid", h)
        ops.decode(h, p["W"], True, p["visible_bias"], "sigmoid", r)
        sums = be.zeros((4,))
        ops.column_sums(h, sums)
        ops.backward(xs, xs, h, r, p, grads, options, monitors, workspace, batch)
        return ({name: be.to_numpy(g) for name, g in grads.items()},
                be.to_numpy(monitors.penalty), be.to_numpy(sums))

    whole, penalty, sums = step(slice(0, 7))
    np.testing.assert_allclose(sums, (1 / (1 + np.exp(-x @ values["W"]))).sum(axis=0),
                               rtol=1e-5)
    shards = [slice(0, 3), slice(3, 7)]
    column_sums = sum(step(rows)[2] for rows in shards)
    np.testing.assert_allclose(column_sums, sums, rtol=1e-6)
    parts = [step(rows, BatchActivations(be.asarray(column_sums), 7, float(k == 0)))
             for k, rows in enumerate(shards)]
    for name, gradient in whole.items():
        combined = sum((rows.stop - rows.start) / 7 * part[0][name]
                       for rows, part in zip(shards, parts))
        np.testing.assert_allclose(combined, gradient, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(parts[0][1] + parts[1][1], penalty, rtol=1e-6)
    # each shard's own mean activation instead: the hidden units' gradients part
    alone = [step(rows) for rows in shards]
    assert not np.allclose(sum((rows.stop - rows.start) / 7 * part[0]["hidden_bias"]
                               for rows, part in zip(shards, alone)), whole["hidden_bias"],
                           rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_noise_and_augmentation_layers_of_a_shard_draw_at_its_global_rows(backend_name):
    from dlcore.layers import GaussianNoise, ImageAugmentation
    backend = get_backend(backend_name)
    images = np.random.default_rng(3).random((7, 2, 5, 5)).astype(np.float32)
    for layer in (GaussianNoise(0.5), ImageAugmentation(max_shift=1, horizontal_flip=True,
                                                        max_rotation=20)):
        layer.build((2, 5, 5), backend, seed=6)

        def draw(rows, first_row, layer=layer):
            layer.first_row = first_row
            return np.array(backend.to_numpy(layer.forward(
                backend.asarray(np.array(images[rows])), training=True, step=4)))

        whole = draw(slice(0, 7), 0)
        np.testing.assert_array_equal(np.concatenate([draw(slice(0, 3), 0),
                                                      draw(slice(3, 7), 3)]), whole)
        assert not np.array_equal(draw(slice(3, 7), 0), whole[3:])


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


@pytest.mark.parametrize("world, launched, refused", [(1, "2", True), (2, "2", False),
                                                      (1, None, False)])
def test_a_launcher_of_another_mpi_than_mpi4py_s_is_refused_in_one_line(
        monkeypatch, world, launched, refused):
    # Open MPI's mpirun with the mpich wheel: every process a job of one, each training the
    # whole model alone into the same --out, under two lines of mpi4py's own warning
    import types
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "SLURM_STEP_NUM_TASKS"):
        monkeypatch.delenv(name, raising=False)
    if launched is not None:
        monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", launched)
    mpi = types.SimpleNamespace(
        COMM_WORLD=types.SimpleNamespace(Get_size=lambda: world),
        Get_library_version=lambda: "MPICH Version:      5.0.2\nMPICH Release date: ...")
    monkeypatch.setattr(dlcore.distributed, "_mpi", lambda: mpi)
    monkeypatch.setattr(dlcore.distributed, "wrap", lambda comm, timeout: "joined")
    monkeypatch.setattr(dlcore.distributed, "_set_threads", lambda comm, threads: None)
    if not refused:
        assert dlcore.distributed.init() == "joined"
        return
    with pytest.raises(DistributedUnavailable) as caught:
        dlcore.distributed.init()
    said = str(caught.value)
    assert said.startswith("a launcher started this process as one of 2, but the MPI library "
                           "that mpi4py loads (MPICH Version: 5.0.2) sees it alone"), said
    assert f"start the job with {dlcore.distributed.launcher()} -n 2" in said
    assert "MPI4PY_LIBMPI" in said and "\n" not in said


def test_the_foreign_launcher_line_names_open_mpi_s_library_without_its_comma(monkeypatch):
    # mpi4py built on a cluster's Open MPI, the job started by the mpich wheel's mpiexec: Open
    # MPI's version text goes on after a comma, which the line kept: "(Open MPI v4.1.5,)"
    import types
    monkeypatch.setenv("PMI_SIZE", "4")
    mpi = types.SimpleNamespace(
        COMM_WORLD=types.SimpleNamespace(Get_size=lambda: 1),
        Get_library_version=lambda: "Open MPI v4.1.5, package: Open MPI builder@host "
                                    "Distribution, ident: 4.1.5, repo rev: v4.1.5, Feb 23, 2023")
    with pytest.raises(DistributedUnavailable, match=r"mpi4py loads \(Open MPI v4\.1\.5\) sees"):
        dlcore.distributed._check_the_launcher_is_mpi4py_s(mpi)


def test_threads_per_rank_share_the_cores_of_the_node():
    assert dlcore.distributed.local_threads(2, cores=16) == 8
    assert dlcore.distributed.local_threads(3, cores=2) == 1


@pytest.mark.parametrize("job_on_the_node, counted", [([(2, 4)], 4), ([], 2)])
def test_a_group_s_auto_threads_share_the_node_with_the_job_s_other_groups(
        monkeypatch, job_on_the_node, counted):
    # init(), then init(comm=group) for two groups of two ranks on a 16-core node: each rank
    # took 16 // 2 = 8 threads, 32 threads on 16 cores; without init() first only the group
    # is known
    import types

    import numba

    from dlcore.distributed import communicator
    asked = []
    monkeypatch.setattr(dlcore.distributed, "local_threads",
                        lambda ranks: asked.append(ranks) or 1)
    monkeypatch.setattr(communicator, "_JOB_ON_THE_NODE", job_on_the_node)
    monkeypatch.setenv("DLCORE_PRODUCT_BLOCKS", "1")   # the products' blocks left as they are
    threads = numba.get_num_threads()
    try:
        dlcore.distributed._set_threads(types.SimpleNamespace(local_size=2), "auto")
    finally:
        numba.set_num_threads(threads)
    assert asked == [counted]


# -- under mpiexec ---------------------------------------------------------------------------
@shares_a_job
@requires_mpi4py
def test_the_sum_over_ranks_is_the_sum_in_rank_order_on_every_rank(shared_job):
    outcome = shared_job(3, ["allreduce"])
    assert [result["equal"] for result in outcome] == [True] * 3


@shares_a_job
@requires_mpi4py
def test_each_rank_of_a_node_knows_its_node_local_rank_and_gpu(shared_job):
    # the three ranks share this machine: node-local ranks 0, 1, 2; two GPUs take turns
    outcome = shared_job(3, ["node-local-rank"])
    assert [(seen["local_rank"], seen["local_size"], seen["backend_knows"])
            for seen in outcome] == [(0, 3, 0), (1, 3, 1), (2, 3, 2)]
    assert [seen["device_of_two"] for seen in outcome] == [0, 1, 0]
    # groups (0, 1) and (2,) of a Split: rank 2 is its group's first, not the node's
    assert [seen["in_a_group_device_of_four"] for seen in outcome] == [0, 1, 2]
    # the launcher does not say it (mpiexec.gforker in a Slurm job): the job's node-local
    # ranks as init() found them, not rank 2's own group's 0
    assert [seen["unsaid_in_a_group_device_of_four"] for seen in outcome] == [0, 1, 2]
    # a group given to fit with no init() first, under mpiexec.gforker: the job's ranks on the
    # node as the launcher implies them (it forks them all here), not rank 2's group's alone
    assert [(seen["no_init_gforker_device_of_four"], seen["no_init_gforker_ranks_sharing"])
            for seen in outcome] == [(0, 3), (1, 3), (2, 3)]


class FakeCudaDevice:
    def __init__(self, number):
        self.id = number
        self.compute_capability = (8, number)


@pytest.fixture
def gpus_on_the_node(monkeypatch):
    """``gpus_on_the_node(count, local_rank)``: Numba's CUDA driver made to see ``count``
    devices, this process the rank ``local_rank`` of its node, and a list that records every
    device selected (a context created); the device's compute capability (8, its index)
    tells which device a compilation was for. A context made by Numba's default, on device 0,
    fails the test."""
    import numba
    from numba import cuda
    from numba.cuda.cudadrv.driver import driver

    from dlcore import backend

    selected = []

    def on_device_0(*args, **kwargs):
        raise AssertionError("a CUDA context was created on device 0")

    def setup(count, local_rank):
        monkeypatch.setattr(backend, "_node_local_rank", [])
        monkeypatch.setattr(backend, "_started_on_a_rank_s_device", [], raising=False)
        monkeypatch.setattr(backend, "_instances", {})
        monkeypatch.setattr(driver, "get_device_count", lambda: count)
        monkeypatch.setattr(driver, "get_device", FakeCudaDevice, raising=False)
        monkeypatch.setattr(numba.config, "ENABLE_CUDASIM", 0)   # the tests' simulator off
        monkeypatch.setattr(cuda, "select_device",
                            lambda number: selected.append(number) or FakeCudaDevice(number))
        monkeypatch.setattr(cuda, "compile_ptx_for_current_device", on_device_0)
        monkeypatch.setattr(cuda, "get_current_device", on_device_0)
        assert backend.use_node_local_rank(local_rank) is None
        return selected

    return setup


@pytest.mark.parametrize("count, local_rank, device", [(2, 3, 1), (4, 2, 2), (1, 1, 0)])
def test_the_cuda_probe_compiles_for_the_rank_s_gpu_without_a_context_on_device_0(
        gpus_on_the_node, monkeypatch, count, local_rank, device):
    from numba import cuda

    from dlcore import backend
    gpus_on_the_node(count, local_rank)
    compiled_for = []
    monkeypatch.setattr(cuda, "compile_ptx", lambda *args, cc: compiled_for.append(cc))
    backend._compile_small_kernel()
    # one visible device (a launcher's CUDA_VISIBLE_DEVICES per rank) is every rank's
    assert compiled_for == [(8, device)]


def test_the_cuda_backend_starts_on_the_gpu_of_the_rank_s_node_local_rank(
        gpus_on_the_node, monkeypatch):
    import dlcore.backend.cuda as cuda_backend
    from dlcore import backend
    selected = gpus_on_the_node(2, 1)
    monkeypatch.setattr(backend, "cuda_status", lambda: (True, "a CUDA device is available"))
    monkeypatch.setattr(cuda_backend, "CUDABackend", lambda: ("started after", list(selected)))
    assert backend.get_backend("cuda") == ("started after", [1])


def test_a_rank_whose_cuda_backend_started_on_another_gpu_is_told_to_init_first(
        gpus_on_the_node, monkeypatch):
    from numba import cuda

    from dlcore import backend
    gpus_on_the_node(2, 0)
    backend._instances["cuda"] = "a model's backend, built before the job was joined"
    monkeypatch.setattr(cuda, "get_current_device", lambda: FakeCudaDevice(0))
    assert backend.use_node_local_rank(0) is None   # its own device: nothing to say
    warning = backend.use_node_local_rank(1)
    assert "CUDA device 0, not its own device 1" in warning
    assert "dlcore.distributed.init() before building" in warning
    assert "\n" not in warning


def test_a_group_s_fit_after_init_keeps_the_rank_s_gpu_without_a_false_warning(
        gpus_on_the_node, monkeypatch):
    # init() put world rank 1 of a node on device 1; fit(comm=group) numbers the group's
    # ranks afresh (0 here), and was told it trained on device 1 "not its own device 0: the
    # cuda backend started before the job was joined; call init() before building"
    from numba import cuda

    import dlcore.backend.cuda as cuda_backend
    from dlcore import backend
    gpus_on_the_node(2, 1)
    monkeypatch.setattr(backend, "cuda_status", lambda: (True, "a CUDA device is available"))
    monkeypatch.setattr(cuda_backend, "CUDABackend", lambda: "started on the rank's GPU")
    backend.get_backend("cuda")
    monkeypatch.setattr(cuda, "get_current_device", lambda: FakeCudaDevice(1))
    assert backend.use_node_local_rank(0) is None


class RankOneOfTwo:
    """What Communicator reads of an mpi4py communicator: rank 1 of 2."""

    def Get_rank(self):  # noqa: N802 (mpi4py's name)
        return 1

    def Get_size(self):  # noqa: N802
        return 2


def test_a_rank_whose_auto_backend_differs_from_rank_0_s_is_refused_in_one_line(monkeypatch):
    # auto chooses on each rank: a GPU-less node's rank, or one whose GPU refused it a
    # context, trained on the cpu beside cuda ranks, their steps rounding apart unsaid
    from dlcore import BernoulliRBM, backend
    from dlcore.distributed.rbm import data_parallel
    monkeypatch.setattr(backend, "cuda_status", lambda: (False, "no NVIDIA GPU driver here"))
    rows = (np.arange(24).reshape(6, 4) % 3 == 0).astype(np.float32)
    rbm = BernoulliRBM(n_hidden=3, batch_size=2, backend="cpu").initialize(rows)
    comm = Communicator(RankOneOfTwo())
    # rank 0's answers: the same data and settings, but its backend is cuda
    monkeypatch.setattr(comm, "broadcast", lambda value, what: (
        "cuda" if what == "checking the backend" else value))
    with pytest.raises(ValueError) as refused:
        data_parallel(rbm.cd_trainer(get_backend("cpu")), comm, rows)
    message = str(refused.value)
    assert message.startswith("rank 1 trains on the cpu backend (no NVIDIA GPU driver here), "
                              "rank 0 on the cuda backend")
    assert "--backend cpu" in message and "\n" not in message


@shares_a_job
@requires_mpi4py
def test_two_ranks_train_the_rbm_of_one_process_cd_and_pcd(shared_job):
    # PCD's chains are compared too; 410 digits in batches of 20 end each epoch with a batch
    # of 10 rows, whose sum over the ranks zeroed chains 10..19 (one process leaves them):
    # the weights then parted by 0.3 after 2 epochs (measured)
    cases = RBM_CASES_ON_2
    outcome = shared_job(2, cases)
    assert [result["case"] for result in outcome] == cases
    for result in outcome:
        assert result["ranks"] == 2
        assert_equal_to_one_process(result)


@requires_mpi4py
def test_fit_and_init_take_the_user_s_own_mpi4py_communicators():
    # fit(comm=MPI.COMM_WORLD) died of an AttributeError (no check_same), and init() took no
    # communicator; wrapped, they train one process's RBM with init()'s abort-on-error hook
    by_case = {result["case"]: result for result in results(run_ranks(2, "mpi4py-comm"))}
    assert sorted(by_case) == ["COMM_WORLD", "Split", "init"]
    assert by_case["COMM_WORLD"]["rank"] == 0 and by_case["Split"]["rank"] == 1  # reversed
    for name in ("COMM_WORLD", "Split"):
        result = by_case[name]
        assert result["size"] == 2 and result["same_wrapper"] and result["abort_hook"], result
        assert max(result["differences"].values()) < 1e-5, result
    assert by_case["init"]["size"] == 2 and by_case["init"]["rank"] == 1
    assert by_case["init"]["lazy_mean"] < 1e-6   # LazyRows.over(MPI.COMM_WORLD) wraps it too


@pytest.mark.parametrize("bad", ["COMM_WORLD", 2, OneOfMany(0, 1)])
def test_a_communicator_that_is_neither_dlcore_s_nor_mpi4py_s_is_refused_in_one_line(bad):
    X = np.zeros((4, 3), np.float32)
    for fit in (dlcore.BernoulliRBM(n_hidden=2, epochs=1, backend="cpu").fit,
                dlcore.Autoencoder(n_hidden=2, epochs=1, backend="cpu").fit):
        with pytest.raises(TypeError, match=r"^comm must be the Communicator of "
                                            r"dlcore.distributed.init\(\) or an mpi4py "
                                            r"intracommunicator \(MPI.COMM_WORLD, a Split of "
                                            r"it\), got (str|int|OneOfMany)$"):
            fit(X, comm=bad)


@pytest.mark.slow
@shares_a_job
@requires_mpi4py
def test_three_ranks_train_the_rbms_and_dbns_of_one_process(shared_job):
    # 3 ranks, batches of 7 then 2 rows: shards of 3, 2, 2 and then 1, 1, 0 rows
    cases = CASES_ON_3
    outcome = shared_job(3, cases)
    assert [result["case"] for result in outcome] == cases
    for result in outcome:
        assert result["ranks"] == 3
        assert_equal_to_one_process(result)


@pytest.mark.slow
@shares_a_job
@requires_mpi4py
def test_networks_and_autoencoders_train_as_in_one_process_on_2_and_3_ranks(shared_job):
    # dropout masks and corruption keyed by the global row: keyed by the shard's row instead,
    # the weights part by ~0.05 (measured)
    # the sparse ones: rho^ of the global batch (one more all-reduce); of the shard, ~0.1 off
    # the noise and augmentation layers' draws too; and FGSM examples, each rank its rows'
    cases = NETWORK_CASES
    for ranks in (2, 3):
        outcome = shared_job(ranks, cases)
        assert [result["case"] for result in outcome] == cases
        for result in outcome:
            assert_equal_to_one_process(result)


@pytest.mark.slow
@shares_a_job
@requires_mpi4py
def test_two_ranks_pretrain_the_dbn_of_one_process_layer_by_layer(shared_job):
    # the second case passes sampled states up and trains a top RBM with softmax label units
    for result in shared_job(2, DBN_CASES_ON_2):
        assert len(result["differences"]) == 6   # two RBMs, three arrays each
        assert_equal_to_one_process(result)


@pytest.mark.slow
@shares_a_job
@requires_mpi4py
def test_up_down_fine_tuning_trains_the_dbn_of_one_process_on_2_and_3_ranks(shared_job):
    # wake, top CD-k and sleep draws keyed by the global row: keyed by the shard's row instead,
    # the weights part by ~0.3 (measured); with and without a labelled top RBM
    for ranks in (2, 3):
        outcome = shared_job(ranks, UP_DOWN_CASES)
        assert [result["case"] for result in outcome] == ["dbn-up-down", "dbn-up-down-labels"]
        for result, n_lower in zip(outcome, (2, 1)):
            assert sum(name.startswith("generative") for name in result["differences"]) == \
                2 * n_lower   # up-down ran: the untied generative weights are compared too
            assert len(result["errors"][0]) == 3   # the up-down epochs' error, rank 0's sum
            assert_equal_to_one_process(result)


@pytest.mark.slow
@requires_mpi4py
def test_a_rank_that_never_joins_stops_every_rank_after_the_timeout():
    # rank 1 sleeps for longer than the job may take (it took ~60 s, bounded at 40 s with the
    # ranks' start-up: the machine's speed): the job's end is rank 1 stopped
    completed = run_ranks(2, "hang")
    assert completed.returncode != 0
    lines = [line for line in completed.stderr.splitlines() if line.startswith("dlcore:")]
    assert lines == ["dlcore: rank 0 of 2: allreduce (all-to-all) waited 2 s for the other "
                     "ranks: one of them failed or is stuck; stopping all ranks"], \
        completed.stderr


@pytest.mark.slow
@requires_mpi4py
def test_an_error_on_one_rank_stops_every_rank_with_one_message():
    completed = run_ranks(2, "fail")
    assert completed.returncode != 0
    lines = [line for line in completed.stderr.splitlines() if line.startswith("dlcore:")]
    assert lines == ["dlcore: rank 1 of 2: ValueError: rank 1 could not read its data"], \
        completed.stderr


@requires_mpi4py
def test_init_splits_products_into_dlcore_product_blocks_when_it_is_set():
    # docs/rbm.md: one DLCORE_PRODUCT_BLOCKS on every machine, the same bits whatever the cores;
    # init() split them into the rank's threads instead (1 here), whatever the variable said
    for blocks, expected in (("3", 3), (None, 1)):   # unset: the rank's threads
        (chosen,) = results(run_ranks(2, "product-blocks",
                                      environment={"DLCORE_PRODUCT_BLOCKS": blocks}))
        assert chosen == {"threads": 1, "blocks": expected}


@requires_mpi4py
def test_a_callback_that_can_stop_training_on_rank_0_alone_is_refused_in_one_line():
    # rank 0 stopped after epoch 2 and rank 1 waited in its next sum for the 300 s timeout
    completed = run_ranks(2, "callbacks-rank0-only")
    assert completed.returncode != 0
    lines = [line for line in completed.stderr.splitlines()
             if line.startswith("dlcore:") and "compiling kernels" not in line]
    assert lines == [
        "dlcore: rank 1 of 2: ValueError: the callbacks that can change training differ "
        "between the ranks (rank 1 has none, rank 0 EarlyStopping): give them to fit alike "
        "on every rank, as their decisions (stopping, the learning rate) must be the same "
        "everywhere; logging-only ones (History, ProgressBar, CSVLogger, ModelCheckpoint, or "
        "any with changes_training = False) may stay on rank 0"], completed.stderr


@shares_a_job
@requires_mpi4py
def test_rank_0_gathers_what_arrives_and_leaves_out_a_rank_that_sends_nothing(shared_job):
    # an interrupted distributed sweep: the ranks' finished rows, where a collective gather
    # would wait for a rank that may never come (and abort the job)
    (result,) = shared_job(2, ["gather-arrived"])
    assert result["every_rank"] == {"0": {"rows": [0]}, "1": {"rows": [0, 1]}}
    assert result["alone"] == {"0": "rank 0's"}


@shares_a_job
@requires_mpi4py
def test_a_rank_busy_without_collectives_hears_another_s_signal_within_a_second(shared_job):
    # a distributed sweep's rank in a long run heard of another rank's SIGTERM only at its
    # next kernel compilation or the run's end (rank 0 waited 20 s, then named its runs
    # missing): rank 1's notice leaves 0.5 s in, and rank 0 computes until it hears it (for
    # longer than the job may take)
    (result,) = shared_job(2, ["peer-interrupted-while-busy"])
    assert result["heard"] is not None, "rank 0 computed on without hearing it"
    assert result["heard"]["reason"] == "SIGTERM to rank 1 of 2"
    # at once: within 0.2 s when the machine is not loaded
    assert result["heard"]["seconds"] < 15, result


class _PeerNoticeArrived:
    """A communicator's watch as a notice of rank 1's SIGTERM has arrived: its receive's
    Test() is True (no MPI: the listener's own logic, as a sweep's run sees it)."""

    def __init__(self, monkeypatch):
        import signal
        import threading

        from dlcore.distributed import communicator
        monkeypatch.setattr(communicator, "_threads_may_call_mpi", lambda: True)
        monkeypatch.setattr(communicator, "PEER_POLL_SECONDS", 0.01)

        class Arrived:
            def Test(self):
                return True

        class TwoRanks:
            def Get_rank(self):
                return 0

            def Get_size(self):
                return 2

        self.comm = Communicator(TwoRanks())
        self.comm._interrupts = (None, np.array([1, signal.SIGTERM, 0], np.int64), Arrived())
        self.comm._watcher = (os.getpid(), threading.get_ident())


def _compute_for(seconds):
    """Python bytecodes for ``seconds`` (where an asynchronous exception lands); a bound to
    wait for a notice is a hang's: the block ends as soon as the notice is raised in it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.001)


def test_a_busy_rank_hears_a_peer_s_notice_in_its_block(monkeypatch):
    comm = _PeerNoticeArrived(monkeypatch).comm
    with pytest.raises(dlcore.distributed.PeerInterrupted) as heard:
        with comm.hearing_peers_while_busy():
            _compute_for(60.0)   # 0.01 s polls: at once, unless the listener never runs
    assert heard.value.reason == "SIGTERM to rank 1 of 2"
    comm.check_interrupts()   # delivered once: not raised again


def test_a_peer_s_notice_waits_while_this_rank_saves_after_its_own_ctrl_c(monkeypatch):
    # mpiexec passes a Ctrl-C to every rank, and each tells the others: rank 0's notice
    # reached a sweep's rank 1 while it wrote its run's checkpoint after its own Ctrl-C, and
    # the listener raised it in the middle of the save (the checkpoint lost, the line rank
    # 0's). The first interruption wins: the notice is heard once this rank is done with its
    # own, by its next check
    import threading
    watch, saving = _PeerNoticeArrived(monkeypatch), threading.Event()

    class ArrivesDuringTheSave:
        # not before: a listener that polled before this rank's Ctrl-C rightly raised the
        # notice that came first (the test failed so on a loaded machine)
        def Test(self):
            return saving.is_set()

    comm = watch.comm
    comm._interrupts = (*comm._interrupts[:2], ArrivesDuringTheSave())
    saved = []
    with pytest.raises(KeyboardInterrupt) as stopped:
        with comm.hearing_peers_while_busy():
            try:
                raise KeyboardInterrupt   # this rank's own Ctrl-C
            except KeyboardInterrupt:
                saving.set()
                _compute_for(0.3)   # its checkpoint's save: thirty of the listener's polls
                saved.append("checkpoint")
                raise
    assert saved == ["checkpoint"]
    assert type(stopped.value) is KeyboardInterrupt
    with pytest.raises(dlcore.distributed.PeerInterrupted):
        comm.check_interrupts()


def test_a_peer_s_notice_taken_as_this_rank_s_own_ctrl_c_lands_waits_for_its_save(
        monkeypatch):
    # the launcher's Ctrl-C reached this rank just as its listener took another rank's notice:
    # the listener had found the main thread free, and the PeerInterrupted it raised landed in
    # the save that the Ctrl-C began (the checkpoint lost; once in 15 runs of the test above
    # on a loaded machine). The main thread now decides, when it can be interrupted
    import _thread
    import signal
    comm = _PeerNoticeArrived(monkeypatch).comm

    class ArrivesWithACtrlC:
        def Test(self):
            _thread.interrupt_main()   # this rank's own Ctrl-C, as the notice is taken
            return True

    comm._interrupts = (*comm._interrupts[:2], ArrivesWithACtrlC())
    saved = []
    # Python's own Ctrl-C handler (a test run started in the background ignores SIGINT)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt) as stopped:
            with comm.hearing_peers_while_busy():
                try:
                    _compute_for(60.0)   # until the Ctrl-C lands: 0.01 s
                except KeyboardInterrupt:
                    _compute_for(0.3)   # its checkpoint's save
                    saved.append("checkpoint")
                    raise
    finally:
        signal.signal(signal.SIGINT, previous)
    assert saved == ["checkpoint"]
    assert type(stopped.value) is KeyboardInterrupt
    with pytest.raises(dlcore.distributed.PeerInterrupted):
        comm.check_interrupts()   # heard by the next check


def test_a_notice_left_for_the_next_check_leaves_a_debugger_working():
    # the block ended with the notice heard and not raised (the test above: this rank's own
    # Ctrl-C came first), and took back an asynchronous exception that was never set: Python
    # 3.11 then kept the mark of one to deliver, and the first function entered under a trace
    # function (pdb, coverage, the test suite's own stepping tracers) spun for good. A
    # process of its own, a timeout: the failure is a hang
    tests = os.path.dirname(os.path.abspath(__file__))
    code = f"""
import sys
sys.path.insert(0, {tests!r})
import pytest
import test_distributed
patches = pytest.MonkeyPatch()
test_distributed.test_a_peer_s_notice_taken_as_this_rank_s_own_ctrl_c_lands_waits_for_its_save(
    patches)
patches.undo()
def entered():
    return "entered"
sys.settrace(lambda frame, event, argument: None)
said = entered()
sys.settrace(None)
print(said)
"""
    try:
        child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("a function called under a trace function after the block never ran")
    assert child.returncode == 0, child.stderr[-3000:]
    assert child.stdout.split() == ["entered"]


def test_a_notice_delivered_as_the_block_ends_is_raised_once(monkeypatch):
    # the listener heard the notice as the block's work ended: the main thread, leaving the
    # block, waited for the listener's lock and got the PeerInterrupted there, outside the
    # block's "except" that marks it delivered; check_interrupts raised it a second time
    import threading
    watch = _PeerNoticeArrived(monkeypatch)
    comm, ending, testing = watch.comm, threading.Event(), threading.Event()

    class ArrivesAsTheBlockEnds:
        def Test(self):
            if not ending.is_set():
                return False
            testing.set()
            time.sleep(0.2)   # the listener holds its lock while the block ends
            return True
    comm._interrupts = (*comm._interrupts[:2], ArrivesAsTheBlockEnds())
    with pytest.raises(dlcore.distributed.PeerInterrupted):
        with comm.hearing_peers_while_busy():
            ending.set()
            assert testing.wait(60.0)   # the next poll: at once, however loaded the machine
    try:
        comm.check_interrupts()
    except dlcore.distributed.PeerInterrupted:   # a KeyboardInterrupt: would stop pytest
        pytest.fail("the notice delivered as the block ended was raised again")


@shares_a_job
@requires_mpi4py
def test_logging_callbacks_on_rank_0_alone_train_and_stop_every_rank_alike(shared_job):
    # Horovod's habit: files and messages from rank 0 only; the same EarlyStopping everywhere
    (result,) = shared_job(2, ["callbacks-logging"])
    assert result["epochs"] == [2, 2]   # min_delta=1.0: the second epoch does not improve
    assert result["crc"][0] == result["crc"][1]   # the same weights, bit for bit
    assert result["files"] == ["log.csv", "model.h5"]


# a job of its own before the shared one (PRELUDES), which ends by its Ctrl-C: ~3 s of
# starting 2 ranks that no other test's job can share
@pytest.mark.slow
@shares_a_job
@requires_mpi4py
def test_a_data_parallel_fit_interrupted_and_run_again_resumes_its_backup_bit_for_bit(
        shared_job):
    # BackupAndRestore was refused in a data-parallel fit: a job on a course's cluster lost
    # its epochs at the time limit. Rank 0 writes the backup; each rank runs in a folder of
    # its own (a node's disk), and the rerun is a case of the shared job
    (rerun,) = shared_job(2, ["backup-rerun"])
    interrupted = shared_job.preludes["backup-interrupted"]
    assert interrupted.returncode == 130, interrupted.stderr
    assert job_lines(interrupted) == ["dlcore: rank 1 of 2: interrupted"], interrupted.stderr
    # what each rank found when it ran again: rank 0 its backup, rank 1 nothing it wrote
    assert [rank["found"] for rank in rerun["ranks"]] == [["backup"], []], rerun
    for rank in rerun["ranks"]:
        assert rank["epochs"] == [2, 3], rank   # the epochs the interruption left
        assert rank["same_weights"] and rank["same_losses"], rank
        assert rank["left"] == [], rank   # the backup deleted at the end, by rank 0


def assert_same_state(state, reference):
    """``state`` (a model's ``get_state()``: nested dicts of arrays and values) equals
    ``reference``, bit for bit."""
    assert isinstance(state, dict) and sorted(state) == sorted(reference)
    for key, value in reference.items():
        if isinstance(value, dict):
            assert_same_state(state[key], value)
        else:
            np.testing.assert_array_equal(state[key], value)


class BroadcastingRank:
    """What :func:`dlcore.distributed.network.restore_backup` asks of a communicator: rank 0
    keeps what it broadcasts (``sent``), another rank receives ``sent``."""

    def __init__(self, rank, sent=None):
        self.rank, self.is_root, self.sent = rank, rank == 0, sent

    def broadcast(self, value, what):
        if self.is_root:
            self.sent = value
        return self.sent


def test_a_rank_that_cannot_see_the_backup_takes_rank_0_s_state_and_errors(tmp_path):
    from distributed_worker import Network, binary_data
    from dlcore.callbacks import BackupAndRestore, ReduceLROnPlateau
    from dlcore.distributed.network import restore_backup
    x, y = binary_data(23, 12), np.arange(23) % 3
    trained = Network(False, seed=4, backend="cpu").model
    trained.fit(x, y, batch_size=7, epochs=2, verbose=0, callbacks=[
        ReduceLROnPlateau("loss", factor=0.5, patience=0, min_delta=10),
        BackupAndRestore(tmp_path / "rank-0", delete_checkpoint=False)])
    models = [Network(False, seed=4, backend="cpu").model for _ in range(2)]
    root = BroadcastingRank(0)
    rank_0s_backup = BackupAndRestore(tmp_path / "rank-0")
    assert restore_backup(models[0], rank_0s_backup, root)
    rank_0s_backup.release()   # as its fit ends: the folder is free for the next one
    # rank 1's folder (a disk of its own) holds nothing
    assert restore_backup(models[1], BackupAndRestore(tmp_path / "rank-1"),
                          BroadcastingRank(1, root.sent))
    restored = [model.get_state() for model in models]
    assert restored[1]["training"]["epochs_done"] == 2
    assert_same_state(restored[1], restored[0])   # weights, momenta, seed, counters
    for mine, rank_0s in zip(models[1].get_weights(), trained.get_weights()):
        np.testing.assert_array_equal(mine, rank_0s)
    assert models[1].history == trained.history
    assert models[1].optimizer.learning_rate == trained.optimizer.learning_rate == 0.05
    assert not (tmp_path / "rank-1").exists()
    # a backup rank 0 cannot restore: its error on every rank, not a wait in the next sum
    (tmp_path / "rank-0" / "backup.h5").write_bytes(b"damaged")
    root = BroadcastingRank(0)
    with pytest.raises(ValueError, match="^BackupAndRestore cannot restore ") as on_rank_0:
        restore_backup(models[0], BackupAndRestore(tmp_path / "rank-0"), root)
    with pytest.raises(ValueError) as on_rank_1:
        restore_backup(models[1], BackupAndRestore(tmp_path / "rank-1"),
                       BroadcastingRank(1, root.sent))
    assert str(on_rank_1.value) == str(on_rank_0.value)


def test_callbacks_are_compared_by_their_settings_but_not_verbose_or_logging_only_ones():
    from dlcore import callbacks as keras_like
    from dlcore.distributed.network import training_callbacks

    def schedule(epoch, rate):
        return rate

    stopping = keras_like.EarlyStopping(patience=2)
    assert training_callbacks([stopping]) == training_callbacks(
        [keras_like.EarlyStopping(patience=2, verbose=1),
         keras_like.CSVLogger("log.csv"), keras_like.History()])
    assert training_callbacks([stopping]) != training_callbacks(
        [keras_like.EarlyStopping(patience=3)])
    assert training_callbacks([keras_like.LearningRateScheduler(schedule)]) == [
        ("LearningRateScheduler", (("schedule", repr(schedule.__qualname__)),))]
    printer = keras_like.LambdaCallback(on_epoch_end=print)
    assert [name for name, _ in training_callbacks([printer])] == ["LambdaCallback"]
    printer.changes_training = False   # the user's word that it only logs
    assert training_callbacks([printer]) == []


@requires_mpi4py
def test_an_error_every_rank_meets_is_one_line_from_rank_0_without_mpi_s_own():
    # each rank printed its line, and MPICH added "Abort(1) on node ..." for each
    completed = run_ranks(3, "fail-everywhere")
    assert completed.returncode != 0
    lines = job_lines(completed)
    assert lines == ["dlcore: rank 0 of 3: ValueError: rank 0 met the error every rank "
                     "meets"], completed.stderr


@requires_mpi4py
@pytest.mark.parametrize("case, rank", [("interrupt-rank-1", 1), ("interrupt-everywhere", 0),
                                        ("no-timeout interrupt-everywhere", 0)])
def test_a_ctrl_c_in_a_script_ends_every_rank_as_one_process_with_one_line(case, rank):
    # the hook printed each interrupted rank's traceback, then "KeyboardInterrupt: " and
    # aborted the job with MPI_Abort's exit code 1; with init(timeout=math.inf), the hook's
    # watchdog of MPI_Finalize must not fail
    completed = run_ranks(2, *case.split())
    assert completed.returncode == 130, completed.stderr
    lines = job_lines(completed)
    assert lines == [f"dlcore: rank {rank} of 2: interrupted"], completed.stderr


@requires_mpi4py
def test_a_ctrl_c_on_every_rank_lets_rank_0_save_however_long_it_takes_in_one_line():
    # rank 1 ended with os._exit, skipping MPI_Finalize (mpi4py's is a Py_AtExit hook), and
    # MPICH's launcher killed rank 0 in its save; kept alive, rank 0 said a second line
    completed = run_ranks(2, "interrupt-everywhere-while-rank-0-saves")
    assert completed.returncode == 130, completed.stderr
    assert printed(completed) == {"saved": True}, completed.stderr
    lines = job_lines(completed)
    assert lines == ["dlcore: rank 1 of 2: interrupted"], completed.stderr


@requires_mpi4py
def test_a_rank_that_compiles_stops_at_its_next_compilation_when_another_is_interrupted():
    # it compiled all its functions (a first epoch's kernels: tens of seconds on a cold cache)
    # and heard of the interruption only in its first sum
    completed = run_ranks(2, "interrupt-rank-1-while-rank-0-compiles")
    assert completed.returncode == 130, completed.stderr
    lines = job_lines(completed)
    assert lines == ["dlcore: rank 1 of 2: interrupted"], completed.stderr
    compiled = printed(completed)["compiled"]
    assert compiled < COMPILATIONS / 2, compiled


@requires_mpi4py
def test_an_interrupted_rank_ends_the_job_when_another_is_blocked_in_mpi4py_s_own_call():
    # MPI_Finalize waits for every rank: the interrupted rank waited for rank 0 forever (the
    # job's end is the proof; its time, the machine's speed, is not)
    completed = run_ranks(2, "interrupt-rank-1-while-rank-0-blocks")
    assert completed.returncode != 0
    assert "dlcore: rank 1 of 2: interrupted" in completed.stderr.splitlines(), \
        completed.stderr


@requires_mpi4py
def test_a_sigterm_to_one_rank_of_a_script_ends_the_job_with_143_and_names_it():
    # the interrupted rank said a bare "interrupted", and every rank exited with 130
    completed = run_ranks(2, "terminate-rank-1")
    assert completed.returncode == 143, completed.stderr
    lines = job_lines(completed)
    assert lines == ["dlcore: rank 1 of 2: interrupted by SIGTERM"], completed.stderr


@requires_mpi4py
def test_a_rank_whose_script_ends_early_stops_the_job_at_once_in_one_line():
    # rank 0 waited in its fit for the timeout (300 s by default; longer than the job may take
    # here, where it was 60 s and the job bounded at 40 s with the ranks' start-up: the
    # machine's speed): the job's end is rank 0 stopped at once
    completed = run_ranks(2, "exit-rank-1")
    assert completed.returncode != 0
    lines = job_lines(completed)
    assert lines[0] == "rank 1 has no data", completed.stderr   # Python's own, for sys.exit
    assert len(lines) == 2, completed.stderr
    assert lines[1].startswith("dlcore: rank 0 of 2: rank 1 ended (a sys.exit, or the end of "
                               "its script) while this rank waited for it in "), lines[1]


@pytest.mark.slow
@requires_mpi4py
def test_ranks_that_train_on_different_data_are_refused():
    completed = run_ranks(2, "other-data")
    assert completed.returncode != 0
    assert "rank 1 and rank 0 differ in the training data (shape and CRC-32)" in \
        completed.stderr


@pytest.mark.slow
@requires_mpi4py
@pytest.mark.parametrize("case, named", [
    ("other-sizes", "rank 1 and rank 0 differ in the starting model (the seed, sizes and "
                    "weights, as the shapes and CRC-32 of its parameters), the epochs or "
                    "sync_every (parameter W: ((4, 3), "),
    # the two learning rates, where a fixed cut showed the same text on both sides
    ("other-optimizer", "rank 1 and rank 0 differ in the network (its layers, starting "
                        "weights, loss and optimiser) (optimizer: ..."),
    ("other-epochs", "rank 1 and rank 0 differ in the fit settings (epochs: 2 != 1)")])
def test_ranks_with_another_model_or_fit_are_refused_naming_what_differs(case, named):
    # only the data were compared: another size, seed or optimiser trained on to the end,
    # every rank with other weights (exit 0), or read as a divergence; other epochs waited
    # for the collectives' timeout
    completed = run_ranks(2, case)
    assert completed.returncode != 0
    assert named in completed.stderr, completed.stderr[-2000:]
    if case == "other-optimizer":
        assert "'learning_rate': 0.2" in completed.stderr
        assert "'learning_rate': 0.1" in completed.stderr


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


# -- local SGD: --sync-every K ---------------------------------------------------------------
def one_rank():
    return Communicator(OneOfMany(0, 1))


def tiny_models():
    """An RBM, a DBN, an autoencoder and a network (with dropout and Adam), untrained, and
    their ``fit`` arguments: the worker's tiny problems."""
    import distributed_worker as worker
    X = worker.binary_data(23, 12)
    network = worker.Network(False, seed=4, backend="cpu")
    network.model.compile(loss="cross_entropy", metrics=["accuracy"],
                          optimizer=dlcore.optimizers.Adam(learning_rate=0.01))
    common = dict(epochs=3, batch_size=7, learning_rate=0.1, momentum=0.5, seed=4,
                  backend="cpu")
    return [(dlcore.BernoulliRBM(n_hidden=5, **common), (X,)),
            (dlcore.BernoulliRBM(n_hidden=5, persistent=True, sparsity_target=0.2, **common),
             (X,)),
            (dlcore.DBN(layers=[12, 6, 5], **common), (X,)),
            (dlcore.Autoencoder(n_hidden=5, corruption=0.3, **common), (X,)),
            (network, (X, np.arange(23) % 3))]


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "4", None])
def test_sync_every_must_be_a_positive_integer(bad):
    with pytest.raises(ValueError, match=r"^sync_every \(local steps between all-reduces\) "
                                         r"must be (>= 1|an integer), got"):
        dlcore.distributed.periodic(one_rank(), bad)


def test_every_fit_refuses_sync_every_without_a_communicator_before_it_trains():
    for model, data in tiny_models():
        with pytest.raises(ValueError, match=r"^sync_every=2 needs comm="):
            model.fit(*data, sync_every=2)
        trained = (hasattr(model, "W") or hasattr(model, "rbms_")
                   or getattr(getattr(model, "model", None), "epochs_done", 0) > 0)
        assert not trained, type(model).__name__


def test_sync_every_1_is_the_exact_path_and_k_selects_local_sgd():
    from dlcore.distributed import autoencoder, local_sgd, network, rbm
    comm = one_rank()
    assert dlcore.distributed.periodic(comm, 1) is comm   # K = 1: today's summed steps
    assert dlcore.distributed.periodic(None, 1) is None
    view = dlcore.distributed.periodic(comm, 4)
    assert view.sync_every == 4 and view.rank == 0 and view.allreduce == comm.allreduce
    rbm_model = dlcore.BernoulliRBM(n_hidden=3, backend="cpu")
    rbm_model.initialize(np.zeros((4, 5), np.float32))
    trainer = rbm_model.cd_trainer()
    X = np.zeros((4, 5), np.float32)
    assert type(rbm.data_parallel(trainer, comm, X)) is rbm.DataParallelCD
    assert type(rbm.data_parallel(trainer, view, X)) is local_sgd.PeriodicCD
    model, (x, y) = tiny_models()[-1]
    model.model.build((12,))
    assert type(network.data_parallel(model.model, comm, x, y)) is network.DataParallelNetwork
    assert type(network.data_parallel(model.model, view, x, y)) is local_sgd.PeriodicNetwork
    ae, (X,) = tiny_models()[3]
    ae.initialize(X) if hasattr(ae, "initialize") else ae.fit(X)
    from dlcore.autoencoder.trainer import AutoencoderTrainer
    ae_trainer = AutoencoderTrainer(get_backend("cpu"), ae._parameters(), ae._training,
                                    ae._settings())
    assert type(autoencoder.data_parallel(ae_trainer, comm, X)) is \
        autoencoder.DataParallelAutoencoder
    assert type(autoencoder.data_parallel(ae_trainer, view, X)) is \
        local_sgd.PeriodicAutoencoder


def test_with_one_rank_local_sgd_is_one_process_bit_for_bit():
    # the local step is the ordinary step and the average of one rank is itself: a wrong
    # learning rate, a shard drawn at the wrong rows or a lost optimiser slot would show here
    import distributed_worker as worker
    for (alone, data), (together, _) in zip(tiny_models(), tiny_models()):
        alone.fit(*data)
        together.fit(*data, comm=one_rank(), sync_every=3)
        expected, got = worker.parameters(alone), worker.parameters(together)
        for name, value in expected.items():
            np.testing.assert_array_equal(got[name], value, err_msg=name)
        for name, value in worker.state(alone).items():
            np.testing.assert_array_equal(worker.state(together)[name], value, err_msg=name)


@pytest.mark.slow
@shares_a_job
@requires_mpi4py
def test_averaging_after_every_step_is_the_exact_step_on_two_ranks(shared_job):
    # SGD and CD with momentum are linear in the gradient: averaging the ranks' parameters and
    # velocities with the weights n_k / N after every step gives the summed step. Equal weights
    # 1/2 (shards of 4 and 3 rows) or velocities left local part the weights by ~1e-2.
    cases = AVERAGED_CASES
    outcome = shared_job(2, [f"averaged:{case}" for case in cases])
    assert [result["case"] for result in outcome] == cases
    for result in outcome:
        assert_equal_to_one_process(result)


@pytest.mark.slow
@shares_a_job
@requires_mpi4py
def test_local_sgd_ends_every_rank_with_the_same_model_in_fewer_allreduces(shared_job):
    # 23 rows in batches of 7: 4 steps an epoch, averaged after steps 3 and 4 with K = 3
    cases = LOCAL_SGD_CASES
    outcome = shared_job(2, LOCAL_SGD_JOB)
    assert len(outcome) == 2 * len(cases)
    for case, (epochs, per_epoch) in cases.items():
        ranks = [result for result in outcome if result["case"] == case]
        assert sorted(result["rank"] for result in ranks) == [0, 1]
        # parameters and training state: the same bits on both ranks
        assert ranks[0]["crc"] == ranks[1]["crc"], case
        assert any("velocity" in name for name in ranks[0]["names"]), ranks[0]["names"]
        # ceil(4 / 3) averages (two with PCD's chains) and the monitors' sums per epoch,
        # not 4 + monitors
        assert [result["allreduces"] for result in ranks] == [epochs * per_epoch] * 2, case
        root = next(result for result in ranks if result["rank"] == 0)
        # not one process's result (K = 1 agrees within 1e-5)...
        assert max(root["differences"].values()) > 1e-3, root
        # ...but it learns: the monitor falls (in the cases trained long enough to show it)
        if case in ("rbm-learn", "mlp-dropout", "autoencoder", "autoencoder-sparse"):
            errors = root["errors"]
            assert errors[-1] < 0.95 * errors[0], root


# -- the commands' --sync-every ------------------------------------------------------------
TRAINING_COMMANDS = [["rbm", "train"], ["dbn", "pretrain"], ["dbn", "finetune"],
                     ["cnn", "train"], ["ae", "train"]]


@pytest.mark.parametrize("command", TRAINING_COMMANDS)
def test_every_distributed_command_takes_sync_every_and_refuses_it_alone(command, tmp_path):
    from click.testing import CliRunner

    from dlcore.cli import main
    runner = CliRunner()
    assert "--sync-every K" in runner.invoke(main, [*command, "--help"]).output
    arguments = [*command, "--sync-every", "4", "--out", str(tmp_path / "run")]
    if command == ["dbn", "finetune"]:   # refused before the DBN file is read
        (tmp_path / "dbn.h5").write_bytes(b"")
        arguments.insert(2, str(tmp_path / "dbn.h5"))
    result = runner.invoke(main, arguments)
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"dlcore: error: --sync-every 4 needs --distributed (it is the number of local steps "
        f"between the ranks' all-reduces) (see 'main {' '.join(command)} --help')"]
    assert not (tmp_path / "run").exists()
    result = runner.invoke(main, [*command, "--distributed", "--sync-every", "0"])
    assert result.exit_code == 2 and "0 is not in the range x>=1" in result.output


@pytest.mark.slow
@requires_mpi4py
def test_a_distributed_command_with_sync_every_says_so_and_averages():
    common = ["rbm", "train", "--digits", "0-1", "--hidden", "8", "--epochs", "1",
              "--batch-size", "25", "--backend", "cpu", "--seed", "1"]
    import tempfile
    with tempfile.TemporaryDirectory() as folder:
        exact = run_command([*common, "--out", f"{folder}/exact"], ranks=2)
        local = run_command([*common, "--sync-every", "4", "--out", f"{folder}/local"],
                            ranks=2)
        assert "averaged every" not in exact.stderr
        assert "data-parallel training over 2 ranks" in local.stderr
        assert "parameters averaged every 4 steps (local SGD)" in local.stderr
        models = [dlcore.load(f"{folder}/{name}/model.h5") for name in ("exact", "local")]
        assert np.max(np.abs(models[0].W - models[1].W)) > 1e-3


@pytest.mark.parametrize("options, refused", [
    (dict(sampler="fpcd"), "'fpcd'"), (dict(sampler="pt"), "'pt'"),
    (dict(sampler="pcd", n_chains=10), "'pcd' with n_chains=10")])
def test_the_samplers_refused_data_parallel_are_named_beside_the_two_it_runs(options, refused):
    # the line said "runs sampler='cd' (CD-k) only", though sampler='pcd' trains data-parallel
    X = np.random.default_rng(0).random((12, 6)).astype(np.float32)
    rbm = dlcore.BernoulliRBM(n_hidden=3, batch_size=4, epochs=1, backend="cpu", **options)
    with pytest.raises(ValueError) as refusal:
        rbm.fit(X, comm=one_rank())
    assert str(refusal.value) == (
        f"data-parallel training runs sampler='cd' (CD-k) and 'pcd' with a chain per batch row "
        f"(n_chains=0) only, not {refused}: its persistent chains are not split by rows; train "
        f"in one process")
    dlcore.BernoulliRBM(n_hidden=3, batch_size=4, epochs=1, backend="cpu",
                        sampler="pcd").fit(X, comm=one_rank())   # as the line says


def test_the_sparsity_penalty_trains_one_process_s_weights_with_one_rank_on_both_paths():
    # exact: rho^ from the summed column sums; local SGD: from the rank's own rows
    import distributed_worker as worker
    X = worker.binary_data(23, 12)
    options = dict(n_hidden=5, epochs=1, batch_size=7, sparsity_target=0.1, seed=4,
                   backend="cpu")
    alone = dlcore.Autoencoder(**options).fit(X)
    for sync_every in (1, 2):
        together = dlcore.Autoencoder(**options).fit(X, comm=one_rank(), sync_every=sync_every)
        np.testing.assert_array_equal(together.W, alone.W)
        np.testing.assert_allclose(together.history["loss"], alone.history["loss"],
                                   rtol=1e-6)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's sigaction")
def test_the_peer_notice_s_signal_is_none_that_a_library_handles_in_c():
    """A handler a C library installed after Python started (Python's table still says
    SIG_DFL) is not taken over by hearing_peers_while_busy's signal, then reset to SIG_DFL."""
    import ctypes
    import signal

    from dlcore.distributed.communicator import _free_signal
    libc = ctypes.CDLL(None, use_errno=True)
    number = _free_signal()
    assert number is not None
    ignore, kept = ctypes.create_string_buffer(512), ctypes.create_string_buffer(512)
    ctypes.c_void_p.from_buffer(ignore).value = 1   # SIG_IGN, set behind Python's back
    assert libc.sigaction(number, ignore, kept) == 0
    try:
        assert signal.getsignal(number) == signal.SIG_DFL
        assert _free_signal() not in (number, None)
    finally:
        assert libc.sigaction(number, kept, None) == 0


@pytest.mark.parametrize("environ, group_local_rank, expected", [
    ({"MPI_LOCALRANKID": "2", "PMI_RANK": "3", "PMI_SIZE": "4"}, 0, 2),   # MPICH's Hydra
    ({"OMPI_COMM_WORLD_LOCAL_RANK": "3", "OMPI_COMM_WORLD_RANK": "3"}, 1, 3),   # Open MPI
    ({"PMI_LOCAL_RANK": "1", "PMI_RANK": "3", "PMI_SIZE": "4"}, 0, 1),   # HPE Cray PALS
    ({"SLURM_LOCALID": "1", "SLURM_PROCID": "3", "SLURM_STEP_NUM_TASKS": "4"}, 0, 1),  # srun
    ({}, 1, 1)])                                   # no launcher: the group's own
def test_a_group_s_rank_takes_its_gpu_by_the_job_s_node_local_rank(
        environ, group_local_rank, expected):
    from dlcore.distributed.communicator import rank_among_the_node_s_gpus
    assert rank_among_the_node_s_gpus(group_local_rank, (3, 4), environ) == expected
    # init() joined the whole job first, which counted this rank 2 of the node
    said = rank_among_the_node_s_gpus(group_local_rank, (3, 4), environ, job_local_rank=2)
    assert said == (expected if environ else 2)


@pytest.mark.parametrize("environ, expected", [
    ({"MPI_LOCALRANKID": "1", "MPI_LOCALNRANKS": "3", "PMI_RANK": "3", "PMI_SIZE": "4",
      "PMI_FD": "9"}, (1, 3)),                                              # Hydra
    # gforker's rank 3 in a Slurm batch step that says its own rank 3 (a step of four tasks,
    # one a node): the batch step's numbers are not the job's
    ({"PMI_FD": "8", "PMI_RANK": "3", "PMI_SIZE": "4", "MPI_APPNUM": "0", "SLURM_LOCALID": "0",
      "SLURM_PROCID": "3", "SLURM_NODEID": "3", "SLURM_STEP_TASKS_PER_NODE": "1(x4)"}, (3, 4)),
    ({"OMPI_COMM_WORLD_LOCAL_RANK": "0", "OMPI_COMM_WORLD_LOCAL_SIZE": "2",
      "OMPI_COMM_WORLD_RANK": "3", "OMPI_COMM_WORLD_SIZE": "4"}, (0, 2)),   # Open MPI
    ({"PMI_LOCAL_RANK": "1", "PMI_LOCAL_SIZE": "2", "PMI_RANK": "3", "PMI_SIZE": "4"},
     (1, 2)),                                                              # HPE Cray PALS
    ({"SLURM_LOCALID": "0", "SLURM_PROCID": "3", "SLURM_NODEID": "2", "SLURM_STEP_NUM_TASKS": "4",
      "SLURM_STEP_TASKS_PER_NODE": "1(x2),2"}, (0, 2)),                    # srun
    ({"PMI_FD": "8", "PMI_RANK": "3", "PMI_SIZE": "4", "MPI_APPNUM": "0"}, (3, 4)),  # gforker
    # gforker in a Slurm batch job (its SLURM_LOCALID=0 and SLURM_PROCID=0 are not this rank's)
    ({"PMI_FD": "8", "PMI_RANK": "3", "PMI_SIZE": "4", "MPI_APPNUM": "0", "SLURM_LOCALID": "0",
      "SLURM_PROCID": "0"}, (3, 4)),
    # Hydra's proxy forks a node's ranks too: without its local rank, where they are is unsaid
    ({"PMI_FD": "8", "PMI_RANK": "3", "PMI_SIZE": "4", "HYDI_CONTROL_FD": "7"}, None),
    ({"PMI_PORT": "node7:4000", "PMI_RANK": "3", "PMI_SIZE": "4"}, None),  # ranks elsewhere too
    ({"PMI_FD": "8", "PMI_RANK": "0", "PMI_SIZE": "1", "MPI_APPNUM": "0"}, None),  # inherited
    ({}, None)])
def test_the_job_s_ranks_on_the_node_come_from_the_launcher(environ, expected):
    from dlcore.distributed.communicator import job_on_the_node_from_the_launcher
    assert job_on_the_node_from_the_launcher((3, 4), environ) == expected


@pytest.mark.parametrize("environ", [
    # mpiexec.gforker (mpi4py's MPICH), which sets no local rank, in a Slurm batch job: every
    # rank inherits the batch step's SLURM_LOCALID=0 and SLURM_PROCID=0
    {"PMI_RANK": "1", "PMI_SIZE": "2", "SLURM_LOCALID": "0", "SLURM_PROCID": "0"},
    # a process of a job of its own started by a rank (its variables inherited)
    {"MPI_LOCALRANKID": "0", "PMI_RANK": "0", "PMI_SIZE": "4"},
    {"OMPI_COMM_WORLD_LOCAL_RANK": "0", "OMPI_COMM_WORLD_RANK": "1",
     "OMPI_COMM_WORLD_SIZE": "3"},
    {"PMI_LOCAL_RANK": "0", "PMI_RANK": "0", "PMI_SIZE": "4"}])
def test_a_local_rank_another_launcher_left_in_the_environment_is_not_taken(environ):
    """Rank 1 of 2 on its node took device 0 beside rank 0 where the launcher's node-local
    rank variable was set by the launcher that started mpiexec: its own rank is the one MPI
    gives it on the node."""
    from dlcore.distributed.communicator import rank_among_the_node_s_gpus
    assert rank_among_the_node_s_gpus(1, (1, 2), environ) == 1


@requires_mpi4py
def test_a_launcher_of_another_mpi_gets_init_s_line_without_mpi4py_s_warning():
    # mpi4py's "RuntimeWarning: suspicious MPI execution environment" came first, in three
    # lines on every process, before init()'s own line said what was wrong and the fix
    environ = {name: value for name, value in os.environ.items()
               if not name.startswith(("PMI_", "OMPI_", "PMIX_", "SLURM_", "MPI_LOCAL"))}
    completed = subprocess.run(
        [sys.executable, "-c", "import dlcore.distributed; dlcore.distributed.init()"],
        env={**environ, "OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_RANK": "0"},
        capture_output=True, text=True, timeout=120)
    assert completed.returncode == 1
    assert "a launcher started this process as one of 2, but the MPI library" in (
        completed.stderr)
    assert "suspicious" not in completed.stderr, completed.stderr


@pytest.mark.parametrize("threads", [2, np.int64(2), np.uint8(2), np.int32(2)])
def test_init_takes_threads_of_any_integer_type(monkeypatch, threads):
    # a grid of values gives np.int64(2): refused as not 'a positive integer', while fit's
    # batch_size and epochs took it; every count now asks the one validator
    import types
    mpi = types.SimpleNamespace(COMM_WORLD=types.SimpleNamespace(Get_size=lambda: 1))
    set_to = []
    monkeypatch.setattr(dlcore.distributed, "_mpi", lambda: mpi)
    monkeypatch.setattr(dlcore.distributed, "wrap", lambda comm, timeout: "joined")
    monkeypatch.setattr(dlcore.distributed, "_set_threads",
                        lambda comm, threads: set_to.append(int(threads)))
    assert dlcore.distributed.init(threads=threads) == "joined" and set_to == [2]
    for refused in (True, np.int64(0), 2.0, "2"):
        with pytest.raises(ValueError, match="threads must be 'auto', a positive integer"):
            dlcore.distributed.init(threads=refused)
