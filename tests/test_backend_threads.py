"""How dlcore asks OpenMP's threads to wait (dlcore/backend/threads.py): a short spin when each
of its threads has a free core at import, asleep otherwise; the user's own choice wins."""
import os
import platform
import re
import subprocess
import sys

import numpy as np
import pytest

from dlcore.backend import threads


@pytest.mark.parametrize("environment, runnable, expected", [
    ({}, 0, {"GOMP_SPINCOUNT": "30000"}),                    # idle 2 cores, 2 threads
    ({}, 1, {"OMP_WAIT_POLICY": "PASSIVE"}),                 # one other runnable thread
    ({}, 9, {"OMP_WAIT_POLICY": "PASSIVE"}),
    ({}, None, {"OMP_WAIT_POLICY": "PASSIVE"}),              # no /proc/loadavg
    ({"PMI_SIZE": "3"}, 0, {"PMI_SIZE": "3", "OMP_WAIT_POLICY": "PASSIVE"}),   # an MPI rank
    ({"OMPI_COMM_WORLD_SIZE": "2"}, 0,
     {"OMPI_COMM_WORLD_SIZE": "2", "OMP_WAIT_POLICY": "PASSIVE"}),
    ({"OMP_WAIT_POLICY": "ACTIVE"}, 9, {"OMP_WAIT_POLICY": "ACTIVE"}),   # the user's choice
    ({"GOMP_SPINCOUNT": "1000"}, 0, {"GOMP_SPINCOUNT": "1000"}),
])
def test_a_short_spin_only_with_a_free_core_per_thread_and_the_users_choice_wins(
        environment, runnable, expected):
    line = threads.choose_waiting(environment, runnable=runnable, n_threads=2, n_cores=2,
                                  pause_ns=10.0)
    assert environment == expected
    assert line.startswith(("GOMP_SPINCOUNT=" + expected.get("GOMP_SPINCOUNT", ""),
                            "OMP_WAIT_POLICY=" + expected.get("OMP_WAIT_POLICY", "")))


def test_more_cores_than_threads_leave_room_for_the_others():
    spinning, sleeping = {}, {}
    threads.choose_waiting(spinning, runnable=6, n_threads=2, n_cores=8, pause_ns=10.0)
    threads.choose_waiting(sleeping, runnable=7, n_threads=2, n_cores=8, pause_ns=10.0)
    assert spinning == {"GOMP_SPINCOUNT": "30000"}
    assert sleeping == {"OMP_WAIT_POLICY": "PASSIVE"}


@pytest.mark.parametrize("pause_ns, spins", [
    (10.0, 30000),     # an Intel Xeon of CI: 300 us
    (46.7, 6000),      # 140 cycles at 3 GHz (Intel's Skylake)
    (200.0, 3000),     # never less than the short spin
    (0.5, 300000),     # nor more than libgomp's own default
    (None, 3000),      # not measured (not x86): the short spin
])
def test_the_spin_lasts_about_300_microseconds_whatever_a_pause_costs(pause_ns, spins):
    assert threads.spin_count(pause_ns) == spins
    line = threads.choose_waiting({}, runnable=0, n_threads=2, n_cores=2, pause_ns=pause_ns)
    assert line.startswith(f"GOMP_SPINCOUNT={spins}")


def test_the_pause_is_timed_here():
    pause_ns = threads.pause_nanoseconds(count=200)
    if platform.machine().lower() in ("x86_64", "amd64"):   # asked of platform, not ON_X86
        assert 0.1 < pause_ns < 2000
    else:
        assert pause_ns is None


def test_the_pause_is_measured_once_per_cpu_model_and_kept(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Some CPU 9000\nflags\t: fpu\n")
    measured = []

    def measure():
        measured.append(1)
        return 12.5

    def pause(folder=tmp_path):
        return threads.remembered_pause_nanoseconds(folder, str(cpuinfo), measure)

    assert pause() == 12.5 and len(measured) == 1
    assert (tmp_path / threads.PAUSE_FILE).read_text() == "Some CPU 9000\t12.500\n"
    assert pause() == 12.5 and len(measured) == 1          # read back, not measured again
    for kept in ("Another CPU\t3.0\n", "Some CPU 9000\tnan\n", "Some CPU 9000\t1e9\n",
                 "garbage", "\x00" * 5000):
        (tmp_path / threads.PAUSE_FILE).write_text(kept)
        assert pause() == 12.5                                # measured again, and kept
        assert (tmp_path / threads.PAUSE_FILE).read_text() == "Some CPU 9000\t12.500\n"
    assert len(measured) == 6
    # a folder that cannot be written: measured, nothing kept, no error
    (tmp_path / "file").write_text("")
    assert pause(tmp_path / "file" / "below") == 12.5
    # no model name (not Linux): measured every time, nothing kept
    cpuinfo.write_text("processor\t: 0\n")
    (tmp_path / threads.PAUSE_FILE).unlink()
    assert pause() == 12.5 and not (tmp_path / threads.PAUSE_FILE).exists()


def no_home_folder(monkeypatch):
    """A user without a home folder, as a container started with ``--user <number>`` runs:
    HOME unset and no entry in the password database, so Path.home() raises RuntimeError
    (the database's own refusal: Python 3.10's pathlib holds the os.path.expanduser it was
    born with, which a replaced one did not reach)."""
    import pwd

    def no_entry(uid):
        raise KeyError(f"getpwuid(): uid not found: {uid}")
    for name in ("DLCORE_CACHE", "XDG_CACHE_HOME", "HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(pwd, "getpwuid", no_entry)


def test_an_idle_machine_chooses_the_spin_for_a_user_without_a_home_folder(
        monkeypatch, tmp_path):
    # the pause's timing is kept in the kernel cache folder, under the home folder: import
    # dlcore, and every dlcore command, ended in "RuntimeError: Could not determine home
    # directory." on an idle machine (a busy one sleeps without timing the pause)
    no_home_folder(monkeypatch)
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Some CPU 9000\n")
    assert threads.remembered_pause_nanoseconds(cpuinfo=str(cpuinfo), measure=lambda: 20.0) == 20
    environment = {}
    threads.choose_waiting(environment, runnable=0, n_threads=1, n_cores=2)
    assert "GOMP_SPINCOUNT" in environment


def test_the_runnable_threads_are_read_from_proc_loadavg(tmp_path):
    (tmp_path / "loadavg").write_text("0.17 0.93 0.89 4/345 12345\n")
    assert threads.runnable_elsewhere(tmp_path / "loadavg") == 3     # not counting the caller
    (tmp_path / "loadavg").write_text("garbled\n")
    assert threads.runnable_elsewhere(tmp_path / "loadavg") is None
    assert threads.runnable_elsewhere(tmp_path / "missing") is None


def _settings_seen_by_a_parallel_kernel(extra_environment):
    """The wait settings in a fresh process that imports dlcore and then runs a parallel kernel
    (when OpenMP reads them), the report line, and the settings dlcore gives another library's
    process (:func:`threads.user_environment`)."""
    code = ("import os, numpy as np, numba, dlcore.backend\n"
            "@numba.njit(parallel=True)\n"
            "def add(a):\n"
            "    for i in numba.prange(a.shape[0]): a[i] += 1\n"
            "add(np.zeros(8))\n"
            "from dlcore.backend.threads import user_environment, wait_policy\n"
            "names = ('OMP_WAIT_POLICY', 'GOMP_SPINCOUNT')\n"
            "print({n: os.environ[n] for n in names if n in os.environ})\n"
            "print(wait_policy())\n"
            "print({n: user_environment()[n] for n in names if n in user_environment()})\n")
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    environment.update(extra_environment)
    result = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_importing_dlcore_chooses_before_any_kernel_runs_and_says_why():
    # which one depends on how busy this machine is at that instant; exactly one is set, the
    # report says dlcore set it and why, and it is left out of what another library gets
    settings, line, theirs = _settings_seen_by_a_parallel_kernel({})
    assert re.fullmatch(r"\{'OMP_WAIT_POLICY': 'PASSIVE'\}|\{'GOMP_SPINCOUNT': '[0-9]+'\}",
                        settings), settings
    assert line.startswith(settings[2:-2].replace("': '", "=") + " (set by dlcore: "), line
    assert theirs == "{}"
    # an MPI rank always sleeps; the user's setting is kept, reported plainly and passed on
    assert _settings_seen_by_a_parallel_kernel({"PMI_SIZE": "2"})[:2] == [
        "{'OMP_WAIT_POLICY': 'PASSIVE'}",
        "OMP_WAIT_POLICY=PASSIVE (set by dlcore: started by an MPI launcher, whose ranks share "
        "the cores)"]
    assert _settings_seen_by_a_parallel_kernel({"OMP_WAIT_POLICY": "active"}) == [
        "{'OMP_WAIT_POLICY': 'active'}", "OMP_WAIT_POLICY=active", "{'OMP_WAIT_POLICY': 'active'}"]


@pytest.mark.parametrize("readings, expected", [
    ([1, 0, 0, 2, 0], 0),      # a thread that ran for an instant, twice
    ([1, 1, 0, 1, 3], 1),      # a thread running through most readings
    ([0, 0, None, 0, 0], None),
])
def test_the_median_of_five_readings_decides(readings, expected):
    remaining, slept = list(readings), []
    assert threads.typical_runnable_elsewhere(lambda: remaining.pop(0), 5, 0.002,
                                              slept.append) == expected
    if expected is not None:
        assert slept == [0.002] * 4 and not remaining


def test_three_idle_readings_of_five_decide_without_the_other_two():
    remaining, slept = [0, 2, 0, 0, 7, 7], []
    assert threads.typical_runnable_elsewhere(lambda: remaining.pop(0), 5, 0.002,
                                              slept.append) == 0
    assert slept == [0.002] * 3 and remaining == [7, 7]


def test_dlcore_product_blocks_fixes_the_blocks_whatever_the_thread_pool(monkeypatch):
    from dlcore.backend.cpu import product_parts
    monkeypatch.setenv("DLCORE_PRODUCT_BLOCKS", "3")
    assert product_parts() == 3
    monkeypatch.setenv("DLCORE_PRODUCT_BLOCKS", "many")
    with pytest.raises(ValueError, match=r"\$DLCORE_PRODUCT_BLOCKS must be a whole number from "
                                         r"1 to 4096 .*got 'many'"):
        product_parts()


TRANSFORM = """
import sys, numpy as np, dlcore
X = np.random.default_rng(0).random((1000, 784), dtype=np.float32)
dbn = dlcore.DBN(layers=[784, 64, 32], epochs=2, seed=7, backend="cpu").fit(X)
np.save(sys.argv[1], dbn.transform(X))
"""


@pytest.mark.slow
def test_a_dbn_is_the_same_on_machines_of_other_core_counts_with_one_block_count(tmp_path):
    """A DBN propagates its RBMs' transforms, products of many rows split into as many blocks
    as the thread pool has threads; OpenBLAS's AVX2 kernels (every AVX2 laptop) round a
    block's entries differently, so one and two threads gave other features (263 of them
    here, without the setting). A class sets $DLCORE_PRODUCT_BLOCKS on every machine: the
    same numbers on each."""
    results = []
    for pool in ("1", "2"):
        environment = {**os.environ, "NUMBA_NUM_THREADS": pool,
                       "DLCORE_PRODUCT_BLOCKS": "2", "OPENBLAS_CORETYPE": "Haswell"}
        path = tmp_path / f"features{pool}.npy"
        subprocess.run([sys.executable, "-c", TRANSFORM, str(path)], env=environment,
                       check=True, capture_output=True, timeout=300)
        results.append(np.load(path))
    assert (results[0] == results[1]).all()


def conv_net():
    """A convolution down each of the CPU's three paths (docs/networks.md, "How it runs"):
    ``direct`` (9 weights a filter), ``wide`` through columns (36) and ``samples`` (stride 2)."""
    import dlcore
    from dlcore.layers import Conv2D, Dense, Flatten
    model = dlcore.Sequential([Conv2D(4, 3, padding=1, activation="relu"),
                               Conv2D(6, 3, padding=1, activation="relu"),
                               Conv2D(6, 4, stride=2, activation="relu"), Flatten(),
                               Dense(10, activation="softmax")],
                              input_shape=(1, 12, 12), backend="cpu", seed=0)
    model.compile("cross_entropy", dlcore.optimizers.SGD(0.05, momentum=0.9))
    return model


def conv_data():
    rng = np.random.default_rng(0)
    return rng.random((64, 1, 12, 12), dtype=np.float32), rng.integers(0, 10, 64)


# the conv net's kernels (~20 s to compile) compiled by one test, loaded by the other: one worker
# runs both, rather than each compiling them at the same time
compiles_the_conv_net = pytest.mark.xdist_group("conv_net_kernels")


@compiles_the_conv_net
def test_a_seed_trains_the_same_conv_net_on_any_number_of_threads():
    """Each thread summed the kernel and bias gradients of its share of the batch, so the sum's
    order, and the weights, followed the threads in use (2.98e-08 apart on 1 and 2): the
    samples are now split into as many shares as a product's blocks, whatever the threads."""
    from conftest import assert_same_on_any_number_of_threads
    x, y = conv_data()

    def train():
        model = conv_net()
        model.fit(x, y, epochs=2, batch_size=32, shuffle=False, verbose=0)
        return model.get_weights()
    assert_same_on_any_number_of_threads(train)


CONV_TRAIN = """
import sys, numpy as np, dlcore
sys.path.insert(0, sys.argv[2])
from test_backend_threads import conv_data, conv_net
x, y = conv_data()
model = conv_net()
model.fit(x, y, epochs=2, batch_size=32, verbose=0)
np.savez(sys.argv[1], *model.get_weights())
"""


@pytest.mark.slow
@compiles_the_conv_net
def test_a_conv_net_is_the_same_on_machines_of_other_core_counts_with_one_block_count(
        tmp_path):
    """README, "Backends": bit for bit across core counts with $DLCORE_PRODUCT_BLOCKS set
    alike; it held for Dense layers only (a Conv2D's gradient was summed by thread)."""
    results = []
    for pool in ("1", "2"):
        environment = {**os.environ, "NUMBA_NUM_THREADS": pool, "DLCORE_PRODUCT_BLOCKS": "2"}
        path = tmp_path / f"weights{pool}.npz"
        subprocess.run([sys.executable, "-c", CONV_TRAIN, str(path),
                        os.path.dirname(__file__)], env=environment, check=True,
                       capture_output=True, timeout=300)
        with np.load(path) as weights:
            results.append([weights[name] for name in sorted(weights.files)])
    for first, second in zip(*results, strict=True):
        np.testing.assert_array_equal(first, second)
