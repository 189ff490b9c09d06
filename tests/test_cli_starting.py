"""The ``dlcore`` command interrupted while it starts (dlcore/_starting.py): seconds of imports
(NumPy, Numba, h5py) before the command line installs its handlers."""
import os
import signal
import subprocess
import sys
import time

import pytest

from dlcore import _starting
from dlcore.termination import Terminated


@pytest.mark.parametrize("argv, orig_argv, expected", [
    (["-m"], ["python", "-m", "dlcore", "rbm", "train"], True),
    (["-m"], ["python", "-X", "importtime", "-mdlcore"], True),
    (["-m"], ["python", "-m", "pytest", "-q"], False),
    (["/venv/bin/dlcore", "rbm", "train"], ["python", "/venv/bin/dlcore"], True),
    (["script.py"], ["python", "script.py"], False),
    ([], ["python"], False)])
def test_only_the_command_line_takes_the_signals_while_it_starts(argv, orig_argv, expected):
    # a program that imports dlcore keeps Python's handlers
    assert _starting.started_as_command_line(argv, orig_argv) is expected


def _numpy_loaded(pid):
    """Whether process ``pid`` has loaded NumPy's core: dlcore's imports are under way."""
    try:
        with open(f"/proc/{pid}/maps") as stream:
            return "_multiarray_umath" in stream.read()
    except OSError:
        return False


def _hearing_ctrl_c():
    """In the child, before it runs: Ctrl-C's default disposition. A test run started by a
    shell in the background inherits SIGINT ignored, and Python then keeps ignoring it (the
    README commands' run: `dlcore --help` finished, exit code 0), which a user's terminal
    never does."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc")
@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_a_signal_while_the_command_imports_its_libraries_is_one_line(signal_name):
    # a Ctrl-C printed the traceback of the import it landed in; a SIGTERM (a scheduler, kill)
    # ended the process without a word, killed by the signal (-15)
    number = getattr(signal, signal_name)
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [os.path.dirname(os.path.dirname(_starting.__file__)),
         os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen([sys.executable, "-m", "dlcore", "--help"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=environment, preexec_fn=_hearing_ctrl_c)
    try:
        deadline = time.monotonic() + 60
        while not _numpy_loaded(process.pid) and process.poll() is None and \
                time.monotonic() < deadline:
            time.sleep(0.005)
        assert process.poll() is None, "the command ended before NumPy was seen loaded"
        process.send_signal(number)   # Numba and the commands still to import: seconds
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 128 + number, stderr[-2000:]
    lines = stderr.strip().splitlines()
    named = "" if signal_name == "SIGINT" else f" by {signal_name}"
    assert lines == [f"dlcore: interrupted{named} as it started (loading its libraries): "
                     "nothing was run"], stderr[-2000:]


@pytest.fixture
def starting_rank(monkeypatch):
    """``starting_rank(argv)``: this process as rank 1 of an mpiexec job of 2 whose command
    line is ``argv``, the handler's way out recorded (``ended``: the signal it killed itself
    by, or its exit code) instead of ending the test's process."""
    monkeypatch.setenv("PMI_RANK", "1")
    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setattr(_starting, "_HELD", [])
    ended = []

    class Ended(BaseException):
        pass

    def exit_with(code):
        ended.append(code)
        raise Ended

    monkeypatch.setattr(os, "kill", lambda pid, number: ended.append(signal.Signals(number)))
    monkeypatch.setattr(os, "_exit", exit_with)
    monkeypatch.setattr(signal, "signal", lambda number, handler: None)

    def as_rank(argv, number=signal.SIGTERM):
        monkeypatch.setattr(sys, "argv", argv)
        try:
            _starting._interrupted_while_starting(number, None)
        except Ended:
            pass
        return ended

    return as_rank


def test_a_rank_of_a_distributed_command_holds_a_signal_while_it_starts(starting_rank, capfd):
    # it killed itself by the signal: the job ended with MPICH's 15 (2 for SIGINT), and a
    # signal to rank 1 alone said nothing; held, the command tells the others once MPI runs
    assert starting_rank(["-m", "rbm", "train", "--distributed"]) == []
    assert _starting.take_held_signal() == signal.SIGTERM
    assert _starting.take_held_signal() is None   # delivered once
    assert capfd.readouterr().err == ""
    # a second signal while the first is held: at once, by the signal
    starting_rank(["-m", "rbm", "train", "--distributed"], signal.SIGINT)
    assert starting_rank(["-m", "rbm", "train", "--distributed"]) == [signal.SIGTERM, 143]


def test_a_rank_holds_signals_through_the_hand_over_until_its_ranks_joined_mpi(monkeypatch):
    # the command line's parsing, mpi4py's import and MPI_Init came after the hand-over: a
    # SIGTERM there killed the rank (MPICH's exit code 15, no line for a signal to rank 1)
    import atexit
    argv = ["dlcore", "rbm", "train", "--distributed"]
    monkeypatch.setenv("PMI_RANK", "1")
    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.setattr(_starting, "_HELD", [])
    monkeypatch.setattr(_starting, "_REPLACED", {})
    at_exit = []
    monkeypatch.setattr(atexit, "register", at_exit.append)
    before = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    monkeypatch.setattr(_starting, "STARTING_SIGNALS", tuple(before))
    try:
        _starting.install(argv, ["python", *argv])
        _starting.hand_over()
        handler = signal.getsignal(signal.SIGTERM)
        assert handler is _starting._interrupted_while_starting
        handler(signal.SIGTERM, None)   # in the window
        assert _starting.take_held_signal() == signal.SIGTERM
        # from here the command's: Python's Ctrl-C, and a SIGTERM raises Terminated
        assert signal.getsignal(signal.SIGINT) is before[signal.SIGINT]
        from dlcore.termination import raise_terminated
        assert signal.getsignal(signal.SIGTERM) is raise_terminated
        at_exit[0]()   # MPI's finalisation at exit: Python's default again
        assert signal.getsignal(signal.SIGTERM) is before[signal.SIGTERM]
    finally:
        for number, handler in before.items():
            signal.signal(number, handler)


@pytest.mark.parametrize("argv, joins", [
    (["dlcore", "sweep", "--distributed", "--grid", "seed=1", "--", "rbm", "train"], True),
    (["dlcore", "sweep", "--grid", "seed=1", "--", "rbm", "train", "--distributed"], False),
    (["-m", "cnn", "train", "--epochs", "3"], False)])
def test_only_a_distributed_command_starts_mpi(argv, joins):
    assert _starting.joins_mpi(argv) is joins


def test_a_rank_of_a_command_without_mpi_ends_with_its_exit_code(starting_rank):
    # killed by the signal (MPICH's exit code 15), where no MPI start-up waits for it
    assert starting_rank(["-m", "rbm", "train", "--epochs", "3"]) == [143]


@pytest.mark.parametrize("dropped, exit_code, named", [
    (KeyboardInterrupt, 130, ""),
    (lambda: Terminated(signal.SIGTERM), 143, " by SIGTERM")], ids=["Ctrl-C", "SIGTERM"])
def test_an_interruption_python_dropped_as_a_command_ran_is_not_lost(
        monkeypatch, dropped, exit_code, named):
    # a Ctrl-C landing in a __del__ (or a callback made from C) is dropped by Python: the
    # command went on to its end, and `dlcore --help` interrupted while it printed exited 0
    import click
    from click.testing import CliRunner

    from dlcore.cli import main

    class RaisesWhenCollected:
        def __del__(self):
            raise dropped()

    def a_command_that_drops_an_interruption(group, ctx):
        RaisesWhenCollected()   # collected at once: Python drops what its __del__ raises

    monkeypatch.setattr(click.Group, "invoke", a_command_that_drops_an_interruption)
    result = CliRunner().invoke(main, ["info", "model.h5"])
    assert result.exit_code == exit_code, result.output
    assert result.output.strip().splitlines() == [
        f"dlcore: interrupted{named} as it ended (what it did is complete)"]
