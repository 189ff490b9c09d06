"""Ctrl-C on ``mpiexec -n R dlcore ... --distributed`` (cli/_distributed.py): rank 0 alone says
what it saved and how to resume (with ``mpiexec -n R``), the other ranks remove their private
folders and end quietly, and no rank aborts the job (MPI_Abort's exit code 1 and its lines).
Oracles: the single-process behaviour the README documents (exit code 130, one line, the
command that resumes), played by a stand-in communicator, so no MPI is needed; and under a real
``mpiexec -n 2``, a SIGINT to one rank alone, which must end the job so too (the other rank
waited in its next sum until the 300 s timeout)."""
import atexit
import importlib.util
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time

import click
import pytest

import dlcore.distributed
from dlcore import Terminated
from dlcore.cli import _distributed
from dlcore.cli._common import TrainingInterrupted, resume_command
from dlcore.distributed import PeerInterrupted


class StandInCommunicator:
    """Rank ``rank`` of two; records an abort instead of stopping the process (and calls
    ``on_abort``, to see what the process would leave behind)."""

    def __init__(self, rank):
        self.rank, self.size, self.is_root, self.threads = rank, 2, rank == 0, 1
        self.aborted = None
        self.told_others = False
        self.on_abort = None

    def abort(self, message, exit_code=1):
        self.aborted = (message, exit_code)
        if self.on_abort is not None:
            self.on_abort()

    def interrupt_others(self, signal_number=signal.SIGINT):
        self.told_others = signal_number


@pytest.fixture
def rank(monkeypatch):
    """``rank(r)`` makes data_parallel run as rank r of 2; the streams it silences and the
    stderr it closes at exit are this test's own (restored, never closed)."""
    monkeypatch.setattr(sys, "stdout", sys.stdout)
    monkeypatch.setattr(sys, "stderr", sys.stderr)
    at_exit = []
    monkeypatch.setattr(atexit, "register", at_exit.append)

    def as_rank(number):
        communicator = StandInCommunicator(number)
        monkeypatch.setattr(dlcore.distributed, "init", lambda: communicator)
        monkeypatch.setattr(dlcore.distributed, "periodic", lambda comm, every: comm)
        return communicator, at_exit

    return as_rank


@pytest.mark.parametrize("number", [0, 1])
def test_a_ctrl_c_ends_every_rank_without_aborting_the_job(rank, tmp_path, number):
    communicator, at_exit = rank(number)
    interruption = TrainingInterrupted("interrupted: saved the model after epoch 5 of 60")
    with pytest.raises(TrainingInterrupted) as caught, \
            _distributed.data_parallel(True, tmp_path / "run") as (comm, folder):
        private = folder
        raise interruption
    assert caught.value is interruption    # OneLineErrorGroup prints it (rank 0) and exits 130
    assert communicator.aborted is None
    # a SIGINT to this rank alone reached no other: told, with its signal
    assert communicator.told_others == signal.SIGINT
    assert _distributed._silence_mpi_at_exit in at_exit
    if number == 1:
        assert private != tmp_path / "run" and "dlcore-rank1-" in str(private)
        assert not os.path.exists(private)   # its checkpoint went with it


def test_distributed_without_a_launcher_says_it_trains_alone_and_how_to_share(
        rank, tmp_path, capsys):
    # "data-parallel training over 1 ranks, 2 threads each (the node's cores / its ranks)"
    communicator, _ = rank(0)
    communicator.size = 1
    with _distributed.data_parallel(True, tmp_path / "run") as (comm, folder):
        assert folder == tmp_path / "run"
    said = capsys.readouterr().err.splitlines()
    assert said == ["data-parallel training over 1 rank: this process alone, not started by an "
                    "MPI launcher (mpiexec -n R dlcore ... trains over R ranks), 1 thread"]


def test_a_rank_stopped_by_a_sigterm_tells_the_others_which_signal(rank, tmp_path):
    # the others were told "interrupted" alone, and ended as on a Ctrl-C: code 130, no signal
    communicator, _ = rank(1)
    with pytest.raises(TrainingInterrupted), \
            _distributed.data_parallel(True, tmp_path / "run") as (comm, folder):
        try:   # what a command's checkpoints make of the signal (on_interrupt)
            raise Terminated(signal.SIGTERM)
        except KeyboardInterrupt:
            raise TrainingInterrupted("interrupted: saved the model after epoch 5 of 60") \
                from None
    assert communicator.told_others == signal.SIGTERM


@pytest.mark.parametrize("held", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_a_rank_held_while_it_started_is_told_once_mpi_runs(
        rank, monkeypatch, tmp_path, held):
    from dlcore import _starting
    from dlcore.termination import terminating_signal
    communicator, _ = rank(1)
    monkeypatch.setattr(_starting, "_HELD", [held])
    with pytest.raises(TrainingInterrupted, match="^interrupted as it started .*: nothing was "
                                                  "run$") as caught, \
            _distributed.data_parallel(True, tmp_path / "run"):
        pytest.fail("the command ran")
    assert communicator.told_others == held and communicator.aborted is None
    terminated = terminating_signal(caught.value)   # the exit code and the line's name
    assert (signal.SIGINT if terminated is None else terminated.signal_number) == held


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_a_rank_stopped_by_another_s_signal_names_it_and_exits_as_that_rank(signal_name):
    from click.testing import CliRunner

    from dlcore.cli._common import OneLineErrorGroup
    number = getattr(signal, signal_name)

    @click.group(cls=OneLineErrorGroup)
    def main():
        """dlcore."""

    @main.command()
    def train():
        """A training stopped in a sum by rank 1's signal."""
        try:
            raise PeerInterrupted(1, 2, number)
        except KeyboardInterrupt:
            raise TrainingInterrupted("interrupted: saved the model after epoch 2 of 9 to "
                                      "c.h5; resume with: mpiexec -n 2 dlcore ...") from None

    result = CliRunner().invoke(main, ["train"])
    assert result.exit_code == 128 + number
    assert result.output == (f"dlcore: interrupted by {signal_name} to rank 1 of 2: saved the "
                             "model after epoch 2 of 9 to c.h5; resume with: mpiexec -n 2 "
                             "dlcore ...\n")


@pytest.mark.parametrize("number", [0, 1])
def test_a_bad_value_the_command_checks_is_the_job_s_usage_error_not_an_abort(
        rank, tmp_path, number):
    # mpiexec -n 2 dlcore rbm train --digits 0-12 --distributed: "dlcore: rank 0 of 2:
    # Invalid value ..." and exit code 1, where one process says "dlcore: error: ..." with 2
    communicator, _ = rank(number)
    bad_value = click.BadParameter("classes '0-12': 12 is not a digit 0-9",
                                   param_hint="--digits")
    with pytest.raises(click.BadParameter) as caught, \
            _distributed.data_parallel(True, tmp_path / "run") as (comm, folder):
        private = folder
        raise bad_value
    assert caught.value is bad_value   # OneLineErrorGroup says it (rank 0) and exits 2
    assert communicator.aborted is None
    if number == 1:
        assert not os.path.exists(private)   # its temporary folder, as always


def test_a_failure_on_a_rank_still_stops_every_rank_with_its_line(rank, tmp_path):
    communicator, _ = rank(1)
    with pytest.raises(ValueError), \
            _distributed.data_parallel(True, tmp_path / "run") as (comm, folder):
        raise ValueError("rank 1 could not read its data")
    assert communicator.aborted == ("rank 1 could not read its data", 1)


@pytest.mark.parametrize("number", [0, 1])
def test_a_failed_rank_leaves_what_one_process_leaves_before_it_aborts(
        rank, tmp_path, monkeypatch, number):
    # MPI_Abort ends the process inside the except: the folder's removal (in the finally) and
    # the --out lock's release (when Click's context closes) never ran, leaving dlcore-rank*
    # folders in $TMPDIR and a stale .dlcore-run.lock in --out
    from dlcore.cli._common import output_folder
    from dlcore.errors import TrainingDiverged
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    monkeypatch.setattr(tempfile, "tempdir", None)
    (tmp_path / "tmp").mkdir()
    communicator, _ = rank(number)
    left = []
    communicator.on_abort = lambda: left.extend(sorted(
        str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*")))
    with click.Context(click.Command("train")), pytest.raises(TrainingDiverged), \
            _distributed.data_parallel(True, tmp_path / "out") as (comm, folder):
        output_folder(folder)   # what a command does first: create --out and lock it
        raise TrainingDiverged("training diverged in epoch 1: the loss is nan")
    assert left == ["tmp"]   # as one process: no --out, no lock, no rank folder
    # one process's words: "TrainingDiverged: " is no part of them
    assert communicator.aborted == ("training diverged in epoch 1: the loss is nan", 1)


def test_the_resume_command_of_a_distributed_run_starts_as_many_ranks(monkeypatch, tmp_path):
    @click.command()
    @click.option("--epochs", type=int, default=10)
    @click.option("--distributed", is_flag=True)
    @click.option("--resume", default=None)
    def train(epochs, distributed, resume):
        """A training command's options."""

    monkeypatch.setenv("PMI_SIZE", "2")
    arguments = ["rbm", "train", "--epochs", "60", "--distributed"]
    monkeypatch.setattr(sys, "argv", ["/venv/bin/dlcore", *arguments])
    # a rank on another node than the launcher's (its parent: the proxy alone): what the
    # launcher was given is not known, and the line says so
    monkeypatch.setattr(_distributed, "_ancestor_command_lines",
                        lambda: [["hydra_pmi_proxy", "--control-port", "n1:4242"]])
    with click.Context(train, info_name="dlcore rbm train") as context:
        context.params = {"epochs": 60, "distributed": True, "resume": None}
        assert resume_command(tmp_path / "checkpoint.h5") == (
            f"mpiexec -n 2 dlcore rbm train --epochs 60 --distributed --resume "
            f"{tmp_path / 'checkpoint.h5'} (start it as you started this job: add the "
            "launcher's other options, such as its host file)")
        # the launcher among the rank's ancestors: its options were dropped ("-f hosts", the
        # ranks on the nodes it names, lost), the program as the user typed it
        for launched in (["mpiexec", "-f", "my hosts", "-n", "2", "dlcore"],
                         ["/opt/mpi/bin/mpirun", "-np", "2", "python3", "-m", "dlcore"]):
            monkeypatch.setattr(_distributed, "_ancestor_command_lines",
                                lambda launched=launched: [["hydra_pmi_proxy"],
                                                           [*launched, *arguments]])
            assert resume_command(tmp_path / "checkpoint.h5") == (
                f"{shlex.join(launched)} rbm train --epochs 60 --distributed --resume "
                f"{tmp_path / 'checkpoint.h5'}")
        context.params["distributed"] = False
        assert resume_command("c.h5") == "dlcore rbm train --epochs 60 --resume c.h5"


#: What Slurm's srun sets in each task of a step (``srun -N 2 -n 4 --mpi=pmix -c 8``); no
#: PMI_SIZE: Slurm's PMIx plugin does not set it.
SRUN_TASK = {"SLURM_JOB_ID": "1234", "SLURM_STEP_ID": "0", "SLURM_PROCID": "0",
             "SLURM_STEP_NUM_TASKS": "4", "SLURM_NTASKS": "4", "SLURM_STEP_NUM_NODES": "2",
             "SLURM_NNODES": "2", "SLURM_MPI_TYPE": "pmix", "SLURM_CPUS_PER_TASK": "8"}


@pytest.mark.parametrize("typed", [["dlcore"], ["python3", "-X", "utf8", "-m", "dlcore"]])
def test_the_resume_command_of_a_job_srun_started_is_srun_s(monkeypatch, tmp_path, typed):
    # it was "mpiexec -n 4 dlcore ... (start it as you started this job: add the launcher's
    # other options, such as its host file)" on every Slurm cluster's srun, and "-n 1"
    # where the PMI plugin set no PMI_SIZE
    @click.command()
    @click.option("--epochs", type=int, default=10)
    @click.option("--distributed", is_flag=True)
    @click.option("--resume", default=None)
    def train(epochs, distributed, resume):
        """A training command's options."""

    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "SLURM_CPUS_PER_TASK"):
        monkeypatch.delenv(name, raising=False)
    for name, value in SRUN_TASK.items():
        monkeypatch.setenv(name, value)
    arguments = ["rbm", "train", "--epochs", "60", "--distributed"]
    main = "/venv/lib/dlcore/__main__.py" if "-m" in typed else "/venv/bin/dlcore"
    monkeypatch.setattr(sys, "argv", [main, *arguments])
    monkeypatch.setattr(sys, "orig_argv", [*typed, *arguments], raising=False)
    monkeypatch.setattr(_distributed, "_ancestor_command_lines",
                        lambda: [["slurmstepd: [1234.0]"]])
    checkpoint = tmp_path / "checkpoint.h5"
    # the job's ranks for the warning of a command without --distributed too (each of the 4
    # tasks would train alone), and this task's
    assert _distributed.launched_ranks() == 4
    monkeypatch.setenv("SLURM_PROCID", "3")
    assert dlcore.distributed.launched_rank() == 3
    with click.Context(train, info_name="dlcore rbm train") as context:
        context.params = {"epochs": 60, "distributed": True, "resume": None}
        assert resume_command(checkpoint) == (
            f"srun -N 2 -n 4 --mpi=pmix -c 8 {shlex.join(typed)} rbm train --epochs 60 "
            f"--distributed --resume {checkpoint}")
        # mpiexec in a Slurm job, a rank on another node than mpiexec's: Slurm started the
        # proxy (one task a node), not the ranks
        monkeypatch.setenv("PMI_SIZE", "8")
        monkeypatch.setattr(_distributed, "_ancestor_command_lines",
                            lambda: [["hydra_pmi_proxy"], ["slurmstepd: [1234.0]"]])
        assert resume_command(checkpoint).startswith(
            f"mpiexec -n 8 {shlex.join(typed)} rbm train --epochs 60 --distributed --resume "
            f"{checkpoint} (start it as you started this job")


#: How long a test's MPI job may take to reach a point (its first epoch) or to end before it
#: is taken for hung: a bound for a loaded machine, never waited for by a job that works.
JOB_HANG_SECONDS = 600


def _ranks_of_job(marker):
    """{rank: pid} of the processes whose environment holds ``marker`` (the launcher passes
    its environment to the ranks; PMI_RANK is the rank MPICH's launcher gave each)."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as stream:
                environ = stream.read().split(b"\0")
        except OSError:
            continue
        if marker.encode() in environ:
            for item in environ:
                if item.startswith(b"PMI_RANK="):
                    found[int(item[len(b"PMI_RANK="):])] = int(pid)
    return found


def _job_given_a_sigterm_to_rank_1(command, environment, rank_1, then=None):
    """Start the mpiexec job ``command`` in a session of its own, send SIGTERM to the pid
    that ``rank_1(job)`` finds (then call ``then()``), and give (exit code, stderr); a job
    still running at the end is killed."""
    job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=environment, start_new_session=True)
    try:
        pid = rank_1(job)
        assert job.poll() is None and pid is not None, job.communicate()[1][-3000:]
        os.kill(pid, signal.SIGTERM)
        if then is not None:
            then()
        _, stderr = job.communicate(timeout=JOB_HANG_SECONDS)
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
            job.communicate()
    return job.returncode, stderr


def _assert_one_line_for_a_sigterm_to_rank_1(returncode, stderr):
    assert returncode == 143, stderr[-3000:]
    said = [line for line in stderr.splitlines()
            if line.startswith("dlcore:") and "compiling kernels" not in line]
    assert len(said) == 1 and said[0].startswith(
        "dlcore: interrupted by SIGTERM to rank 1 of 2 "), stderr[-3000:]


# a job of its own, ended as its ranks import dlcore (seconds: slow)
@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("mpi4py") is None or not os.path.isdir("/proc"),
                    reason='needs mpi4py (pip install "dlcore[distributed]") and /proc')
def test_a_sigterm_to_rank_1_as_the_job_starts_ends_it_with_143_and_one_line(tmp_path):
    # rank 1 killed itself by the signal before MPI started (a rank that ended otherwise left
    # the others waiting in MPI's start-up): the job ended with MPICH's exit code 15, and
    # without a line, rank 0 knowing nothing of it
    from test_cli_starting import _numpy_loaded
    marker = f"DLCORE_TEST_JOB={tmp_path}"
    environment = {**os.environ, "NUMBA_NUM_THREADS": "1", marker.split("=")[0]: str(tmp_path)}
    command = [dlcore.distributed.launcher(), "-n", "2", sys.executable, "-m", "dlcore", "rbm",
               "train", "--digits", "0-1", "--hidden", "8", "--epochs", "1", "--backend", "cpu",
               "--out", str(tmp_path / "run"), "--distributed"]

    def rank_1_importing(job):
        deadline = time.monotonic() + JOB_HANG_SECONDS
        ranks = {}
        while not (len(ranks) == 2 and all(map(_numpy_loaded, ranks.values()))) \
                and job.poll() is None and time.monotonic() < deadline:
            ranks = _ranks_of_job(marker)   # found as they start, importing dlcore's libraries
            time.sleep(0.005)
        return ranks.get(1)

    _assert_one_line_for_a_sigterm_to_rank_1(
        *_job_given_a_sigterm_to_rank_1(command, environment, rank_1_importing))


#: ``python -c`` of a rank that runs the dlcore command and holds open the window between its
#: command line's hand-over and MPI_Init: before it joins, it writes its pid into the folder
#: $DLCORE_TEST_WINDOW under its rank and waits for the file "go" there.
RANK_HOLDING_ITS_WINDOW_OPEN = """
import os, pathlib, runpy, sys, time
sys.argv[0] = "dlcore"
import dlcore.distributed
window = pathlib.Path(os.environ["DLCORE_TEST_WINDOW"])
joins = dlcore.distributed.init
def init_late(*args, **kwargs):
    (window / os.environ["PMI_RANK"]).write_text(str(os.getpid()))
    deadline = time.monotonic() + 120
    while not (window / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return joins(*args, **kwargs)
dlcore.distributed.init = init_late
runpy.run_module("dlcore", run_name="__main__")
"""


# a job of its own (seconds: slow), whose rank 1 waits in the window for the test's signal
@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("mpi4py") is None,
                    reason='needs mpi4py (pip install "dlcore[distributed]")')
def test_a_sigterm_to_rank_1_after_its_command_line_parsed_ends_the_job_with_one_line(tmp_path):
    # the window between the hand-over and MPI_Init took the signal unheld: rank 1 ended
    # alone before MPI started, with its own line, and the job with MPICH's exit code
    window = tmp_path / "window"
    window.mkdir()
    environment = {**os.environ, "NUMBA_NUM_THREADS": "1", "DLCORE_TEST_WINDOW": str(window)}
    command = [dlcore.distributed.launcher(), "-n", "2", sys.executable, "-c",
               RANK_HOLDING_ITS_WINDOW_OPEN, "rbm", "train", "--digits", "0-1", "--hidden", "8",
               "--epochs", "1", "--backend", "cpu", "--out", str(tmp_path / "run"),
               "--distributed"]

    def rank_1_in_its_window(job):
        deadline = time.monotonic() + JOB_HANG_SECONDS
        while not (window / "1").exists() and job.poll() is None and \
                time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)   # the pid is written whole
        return int((window / "1").read_text()) if (window / "1").exists() else None

    _assert_one_line_for_a_sigterm_to_rank_1(*_job_given_a_sigterm_to_rank_1(
        command, environment, rank_1_in_its_window, then=(window / "go").touch))
    assert not (tmp_path / "run").exists()   # nothing was run: no folder left behind


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("mpi4py") is None or not os.path.isdir("/proc"),
                    reason='needs mpi4py (pip install "dlcore[distributed]") and /proc')
@pytest.mark.parametrize("interrupted_rank, signal_name", [
    (1, "SIGINT"), (0, "SIGINT"), ("launcher", "SIGTERM"), (1, "SIGTERM")])
def test_a_signal_to_a_rank_or_the_launcher_ends_the_job_as_a_ctrl_c_does(
        tmp_path, interrupted_rank, signal_name):
    """``kill -INT`` to one rank of ``mpiexec -n 2 dlcore rbm train --distributed``: the job
    ends as on Ctrl-C (rank 0 saves the checkpoint and prints the line that resumes, the
    private folder of rank 1 is removed, exit code 130), at once instead of after the other
    rank's 300 s wait in its sum. So does a SIGTERM to the launcher (a cluster's time limit),
    which passes it to every rank: exit code 143. A SIGTERM to rank 1 alone (a cluster killing
    one task) ends the job as the launcher's does, rank 0's line naming the rank and the signal
    (it said a bare "interrupted", and the job exited with 130).

    Nothing here assumes how fast the machine is: the signal goes once the first checkpoint is
    on disk, however long the kernels take to compile (minutes on a loaded machine, where a
    fixed 120 s sent it before the first epoch ended: "nothing was saved"), and the bounds
    (:data:`JOB_HANG_SECONDS`) only end a job that hangs; the "compiling kernels" notice that
    the first run after an edit of dlcore prints is not the job's line."""
    temporary, out = tmp_path / "tmp", tmp_path / "run"
    temporary.mkdir()
    marker = f"DLCORE_TEST_JOB={tmp_path}"
    environment = {**os.environ, "TMPDIR": str(temporary), "NUMBA_NUM_THREADS": "1",
                   marker.split("=")[0]: str(tmp_path)}
    job = subprocess.Popen(
        [dlcore.distributed.launcher(), "-n", "2", sys.executable, "-m", "dlcore", "rbm",
         "train", "--digits", "0-1", "--hidden", "8", "--epochs", "100000", "--batch-size",
         "25", "--backend", "cpu", "--checkpoint-every", "1", "--out", str(out),
         "--distributed"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=environment, start_new_session=True)
    try:
        deadline = time.monotonic() + JOB_HANG_SECONDS
        while not (out / "checkpoint.h5").exists() and job.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.1)           # training runs: its first epoch is saved
        assert job.poll() is None, job.communicate()[1][-3000:]
        assert (out / "checkpoint.h5").exists(), f"no epoch in {JOB_HANG_SECONDS} s"
        ranks = _ranks_of_job(marker)
        assert sorted(ranks) == [0, 1], ranks
        number = getattr(signal, signal_name)
        os.kill(job.pid if interrupted_rank == "launcher" else ranks[interrupted_rank], number)
        _, stderr = job.communicate(timeout=JOB_HANG_SECONDS)
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
            job.communicate()
    said = [line for line in stderr.splitlines()
            if line.startswith("dlcore:") and "compiling kernels" not in line]
    assert job.returncode == 128 + number, stderr[-3000:]
    # a rank's own signal (rank 0's, the launcher's to every rank) as in one process; another
    # rank's, named
    named = {(0, "SIGINT"): "", ("launcher", "SIGTERM"): " by SIGTERM"}.get(
        (interrupted_rank, signal_name), f" by {signal_name} to rank {interrupted_rank} of 2")
    assert len(said) == 1 and said[0].startswith(f"dlcore: interrupted{named}: saved the model "
                                                 "after epoch "), stderr[-3000:]
    # as the job was launched (the launcher's options, the program as given)
    launched = shlex.join([dlcore.distributed.launcher(), "-n", "2", sys.executable, "-m",
                           "dlcore"])
    assert said[0].endswith(f"resume with: {launched} rbm train --digits 0-1 "
                            f"--hidden 8 --epochs 100000 --batch-size 25 --backend cpu "
                            f"--out {out} --checkpoint-every 1 --distributed --resume "
                            f"{out / 'checkpoint.h5'}"), said[0]
    assert dlcore.load(out / "checkpoint.h5").epochs_done_ >= 1
    assert list(temporary.iterdir()) == []   # rank 1's private folder is gone


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("mpi4py") is None,
                    reason='needs mpi4py (pip install "dlcore[distributed]")')
def test_a_training_that_diverges_on_every_rank_is_one_line_and_leaves_nothing(tmp_path):
    """``mpiexec -n 3 dlcore ae train ... --distributed`` at a learning rate that diverges in
    epoch 1: one process's line once (it was a line per rank and MPICH's Abort line), exit
    code 1, and nothing left behind (the ranks' folders in $TMPDIR, --out and its lock)."""
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    completed = subprocess.run(
        [dlcore.distributed.launcher(), "-n", "3", sys.executable, "-m", "dlcore", "ae",
         "train", "--digits", "1", "--hidden", "20", "--epochs", "2", "--learning-rate", "50",
         "--loss", "mse", "--decoder-activation", "linear", "--backend", "cpu", "--out",
         str(tmp_path / "run"), "--distributed"], capture_output=True, text=True,
        timeout=JOB_HANG_SECONDS,   # three ranks compiling on 2 cores, a cold cache in CI
        env={**os.environ, "TMPDIR": str(temporary), "NUMBA_NUM_THREADS": "1"}, check=False)
    assert completed.returncode == 1, completed.stderr[-3000:]
    said = [line for line in completed.stderr.splitlines()
            if line.startswith(("dlcore:", "Abort")) and "compiling kernels" not in line]
    assert len(said) == 1 and said[0].startswith(
        "dlcore: rank 0 of 3: training diverged in epoch 1: the reconstruction loss is nan; "
        "nothing was saved; lower the learning rate (now 50: --learning-rate"), said
    assert sorted(path.name for path in tmp_path.rglob("*")) == ["tmp"]


@pytest.mark.parametrize("variable", ["PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK"])
def test_a_usage_error_of_an_mpi_job_is_said_once_by_rank_zero(variable, monkeypatch, tmp_path):
    """``mpiexec -n 2 dlcore rbm train --bogus --distributed``: every rank parses the same
    command line, so rank 0 alone says the error (each rank printed it); every rank exits with
    code 2. A missing file is said on every rank: another node's file system may differ."""
    from click.testing import CliRunner

    from dlcore.cli import main
    for name in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK"):
        monkeypatch.delenv(name, raising=False)
    said = {}
    for rank_number in (0, 1):
        monkeypatch.setenv(variable, str(rank_number))
        result = CliRunner().invoke(main, ["rbm", "train", "--bogus", "--distributed",
                                           "--out", str(tmp_path / "run")])
        assert result.exit_code == 2
        said[rank_number] = result.output.strip().splitlines()
    assert len(said[0]) == 1
    assert said[0][0].startswith("dlcore: error: No such option '--bogus'")
    assert said[1] == []
    missing = CliRunner().invoke(main, ["rbm", "evaluate", str(tmp_path / "missing.h5")])
    assert missing.exit_code == 2
    assert "missing.h5" in missing.output and "does not exist" in missing.output
    assert not (tmp_path / "run").exists()


class _DropsWhenCollected:
    """An object whose ``__del__`` raises ``interruption``, which Python drops, as it drops a
    signal landing in a callback that Numba's compiler runs from C."""

    def __init__(self, interruption):
        self.interruption = interruption

    def __del__(self):
        raise self.interruption


def test_a_signal_python_dropped_while_compiling_ends_the_rank_as_that_signal(
        rank, tmp_path, capsys):
    """A SIGTERM to rank 1 as its kernels compiled, before training: Python dropped it, the
    kernel left without code failed, and rank 1 aborted the job ("rank 1 of 2: no compiled
    object yet ...", exit code 1). Now the rank ends as interrupted by that signal, and tells
    the others which."""
    from dlcore.termination import noting_dropped_interruptions
    communicator, _ = rank(1)
    with noting_dropped_interruptions(), pytest.raises(Terminated), \
            _distributed.data_parallel(True, tmp_path / "run"):
        dropped = _DropsWhenCollected(Terminated(signal.SIGTERM))
        del dropped
        raise RuntimeError("no compiled object yet for <Library '_half_product'>")
    assert communicator.aborted is None
    assert communicator.told_others == signal.SIGTERM
    assert "Exception ignored" not in capsys.readouterr().err


@pytest.mark.parametrize("interruption, number", [
    (KeyboardInterrupt(), signal.SIGINT), (Terminated(signal.SIGTERM), signal.SIGTERM)])
def test_a_rank_interrupted_as_init_sets_its_threads_tells_the_others(
        monkeypatch, interruption, number):
    """A SIGTERM to rank 1 of ``mpiexec -n 2 dlcore sweep --distributed`` as it started: rank
    1 ended without a word to the others, rank 0 ran all its runs, then stopped the job for
    want of rank 1 ("rank 1 ended (a sys.exit ...)"), exit code 1 and no CSV."""
    import types

    import numba
    communicator = StandInCommunicator(1)
    communicator.local_rank, communicator.local_size = 1, 2   # what wrap found on its node
    mpi = types.SimpleNamespace(COMM_WORLD=object(), COMM_TYPE_SHARED=0)
    monkeypatch.setattr(dlcore.distributed, "_mpi", lambda: mpi)
    monkeypatch.setattr(dlcore.distributed, "wrap", lambda comm, timeout: communicator)

    def interrupted(count):
        raise interruption

    monkeypatch.setattr(numba, "set_num_threads", interrupted)
    with pytest.raises(KeyboardInterrupt):
        dlcore.distributed.init()
    assert communicator.told_others == number


@pytest.mark.parametrize("launcher_rank", ["0", "1"])
def test_a_launcher_of_another_mpi_is_said_once_by_its_rank_0(monkeypatch, launcher_rank):
    # each process of Open MPI's mpirun with the mpich wheel is alone in its MPI: every one
    # printed the line (mpirun -n 8: eight times); the others now end unsaid, with code 0:
    # mpirun kills the job at a process's code 1, rank 0 too before it said the line
    def refused(**options):
        raise dlcore.distributed.LauncherOfAnotherMPI("a launcher started this process as "
                                                      "one of 2, but ...")
    for name in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", launcher_rank)
    monkeypatch.setattr(dlcore.distributed, "init", refused)
    if launcher_rank == "0":
        with pytest.raises(dlcore.distributed.LauncherOfAnotherMPI, match="one of 2"):
            _distributed.join_job()
    else:
        with pytest.raises(SystemExit) as ended:
            _distributed.join_job()
        assert ended.value.code == 0
