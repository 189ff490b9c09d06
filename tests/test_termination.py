"""SIGTERM and SIGHUP stop a training command as Ctrl-C does (dlcore/termination.py): a
cluster's time limit (SLURM's SIGTERM before its SIGKILL), ``kill PID``, ``timeout`` and a
closed terminal killed the command at once and lost everything since the last
--checkpoint-every file. Oracles: the Ctrl-C behaviour the README documents (the checkpoint of
the last finished epoch, the command that resumes it), the shells' convention for the exit code
(128 + the signal), and Python's default handlers, which a library user who did not ask keeps.
Real signals, sent to a real process."""
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from click.testing import CliRunner

import dlcore
from dlcore.cli import main
from dlcore.io.atomic import atomic_open
from dlcore.termination import TERMINATION_SIGNALS

needs_termination_signals = pytest.mark.skipif(
    sys.platform == "win32", reason="Windows has no SIGTERM to send to a running process")
#: How long a command may take to save its first epoch, or to end once signalled, before the
#: test takes it for hung: bounds on a hang only, met in seconds on an idle machine but not
#: always on a loaded one (the suite runs on 2 cores beside other work)
HANG_SECONDS = 300
SIGNALS = [pytest.param(number, id=signal.Signals(number).name)
           for number in TERMINATION_SIGNALS]


def signal_this_process(number):
    """Send ``number`` to the test process, once a handler is there to take it (Python's
    default would end the whole test session, not fail one test)."""
    assert signal.getsignal(number) != signal.SIG_DFL, \
        f"{signal.Signals(number).name} would end the process: no handler was installed"
    os.kill(os.getpid(), number)


@pytest.fixture
def heard_as_in_a_terminal():
    """SIGTERM and SIGHUP at Python's default in the test process for the test, as a terminal
    gives them: a test run under ``nohup`` has SIGHUP ignored, which
    :func:`dlcore.interrupt_on_termination` rightly leaves alone (the run must outlive its
    terminal), so the signal the test sends was lost."""
    previous = {number: signal.signal(number, signal.SIG_DFL) for number in TERMINATION_SIGNALS}
    yield
    for number, handler in previous.items():
        if handler is not None:   # None: set outside Python, not to be put back from here
            signal.signal(number, handler)


def hearing_as_in_a_terminal(number):
    """A child's ``preexec_fn``: signal ``number`` at its default before the child runs, as in
    a terminal (a test run under ``nohup`` hands its children SIGHUP ignored: the command
    trained on for the test's 60 s)."""
    def at_its_default():
        signal.signal(number, signal.SIG_DFL)
    return at_its_default


def small_data():
    return np.random.default_rng(0).random((40, 6))


# -- library: Python's default unless asked -------------------------------------------------
@needs_termination_signals
def test_fit_keeps_pythons_default_handlers_unless_asked(heard_as_in_a_terminal):
    seen = []
    dlcore.BernoulliRBM(n_hidden=3, epochs=1, seed=0, backend="reference").fit(
        small_data(), on_epoch_end=lambda model: seen.extend(
            signal.getsignal(number) for number in TERMINATION_SIGNALS))
    assert seen == [signal.SIG_DFL] * len(TERMINATION_SIGNALS)


@needs_termination_signals
@pytest.mark.parametrize("number", SIGNALS)
def test_a_signal_inside_interrupt_on_termination_stops_fit_at_its_last_finished_epoch(
        number, heard_as_in_a_terminal):
    def signalled_at_the_second_epoch(model):
        if model.epochs_done_ == 2:
            signal_this_process(number)

    model = dlcore.BernoulliRBM(n_hidden=3, epochs=5, seed=0, backend="reference")
    with pytest.raises(dlcore.Terminated) as stopped:
        with dlcore.interrupt_on_termination():
            model.fit(small_data(), on_epoch_end=signalled_at_the_second_epoch)
    assert isinstance(stopped.value, KeyboardInterrupt)      # what handles Ctrl-C handles it
    assert stopped.value.exit_code == 128 + number
    assert stopped.value.signal_name == signal.Signals(number).name
    assert model.epochs_done_ == 2
    assert len(model.history["reconstruction_error"]) == 2
    assert signal.getsignal(number) == signal.SIG_DFL        # put back


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="the platform has no SIGHUP")
def test_interrupt_on_termination_keeps_a_programs_own_handler_and_an_ignored_sighup():
    """``nohup`` ignores SIGHUP: a closed terminal must not stop that run after all."""
    def own(signum, frame):
        pass

    previous = signal.signal(signal.SIGTERM, own), signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with dlcore.interrupt_on_termination():
            assert signal.getsignal(signal.SIGTERM) is own
            assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGHUP, previous[1])


def test_interrupt_on_termination_outside_the_main_thread_does_nothing():
    """Python sets handlers in the main thread only (elsewhere signal.signal raises)."""
    failures = []

    def in_a_thread():
        try:
            with dlcore.interrupt_on_termination():
                pass
        except Exception as error:   # noqa: BLE001 (reported below)
            failures.append(error)

    worker = threading.Thread(target=in_a_thread)
    worker.start()
    worker.join()
    assert failures == []


# -- the command line -----------------------------------------------------------------------
@needs_termination_signals
@pytest.mark.parametrize("number", SIGNALS)
def test_a_signal_to_a_training_command_saves_its_checkpoint_as_ctrl_c_does(tmp_path, number):
    """``kill -TERM`` (``-HUP``) of a running ``dlcore rbm train``: the checkpoint of its last
    finished epoch, the line that resumes it, exit code 128 + the signal (it died at once)."""
    out, own = tmp_path / "run", signal.getsignal(number)
    command = ["dlcore", "rbm", "train", "--digits", "0-1", "--hidden", "8", "--epochs",
               "100000", "--batch-size", "25", "--backend", "reference", "--out", str(out),
               "--checkpoint-every", "1"]         # in the order of the resume line
    training = subprocess.Popen([sys.executable, "-m", *command], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "NUMBA_NUM_THREADS": "1"},
                                preexec_fn=hearing_as_in_a_terminal(number))
    try:
        deadline = time.monotonic() + HANG_SECONDS
        while not (out / "checkpoint.h5").exists() and training.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.05)          # its first epoch is saved
        assert training.poll() is None, training.communicate()[1]
        assert (out / "checkpoint.h5").exists(), f"no epoch saved in {HANG_SECONDS} s"
        training.send_signal(number)
        _, stderr = training.communicate(timeout=HANG_SECONDS)
    finally:
        if training.poll() is None:
            training.kill()
            training.communicate()
    # (the first run after a change of dlcore's source also says it compiles its kernels)
    said = [line for line in stderr.splitlines()
            if line.startswith("dlcore:") and "compiling kernels" not in line]
    assert training.returncode == 128 + number, stderr[-3000:]
    name = signal.Signals(number).name
    assert len(said) == 1 and said[0].startswith(
        f"dlcore: interrupted by {name}: saved the model after epoch "), stderr[-3000:]
    assert said[0].endswith(
        f"resume with: {' '.join(command)} --resume {out / 'checkpoint.h5'}"), said[0]
    saved = dlcore.load(out / "checkpoint.h5")
    assert f"after epoch {saved.epochs_done_} of 100000" in said[0]
    assert signal.getsignal(number) == own   # the test process's own: untouched


@needs_termination_signals
def test_a_sigterm_after_training_says_the_model_is_complete_and_exits_143(
        tmp_path, monkeypatch):
    """The same command, in this process: a SIGTERM while the figures are written."""
    import dlcore.cli.rbm as rbm_commands

    def terminated(*arguments, **options):
        signal_this_process(signal.SIGTERM)

    monkeypatch.setattr(rbm_commands, "save_training_curve", terminated)
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["rbm", "train", "--digits", "1-2", "--hidden", "6",
                                       "--epochs", "2", "--backend", "reference", "--out",
                                       str(out)])
    assert result.exit_code == 143, result.output
    assert (f"dlcore: interrupted by SIGTERM after training: {out / 'model.h5'} is saved and "
            f"complete") in result.output
    assert dlcore.load(out / "model.h5").epochs_done_ == 2
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


class _DropsWhenCollected:
    """An object whose ``__del__`` raises ``interruption``: Python drops it ("Exception ignored
    in ..."), as it drops a Ctrl-C landing in a callback that Numba's compiler runs from C."""

    def __init__(self, interruption):
        self.interruption = interruption

    def __del__(self):
        raise self.interruption


@pytest.mark.parametrize("interruption, exit_code, said", [
    (KeyboardInterrupt(), 130, "dlcore: interrupted"),
    (dlcore.Terminated(signal.SIGTERM), 143, "dlcore: interrupted by SIGTERM")])
def test_a_ctrl_c_python_dropped_before_a_failure_is_said_as_the_interruption(
        interruption, exit_code, said):
    """A Ctrl-C (or SIGTERM) during the kernels' first compilation, before training (outside
    the checkpoints' handler): Python printed "Exception ignored on calling ctypes callback
    function" with its traceback, and the kernel left without code failed next, a second
    error. One line now, that of an interruption, and its exit code."""
    import click

    from dlcore.cli._common import OneLineErrorGroup

    @click.group(cls=OneLineErrorGroup)
    def group():
        """dlcore."""

    @group.command()
    def prepare():
        """Compiles a kernel that a dropped Ctrl-C left without code."""
        dropped = _DropsWhenCollected(interruption)
        del dropped
        raise RuntimeError("no compiled object yet for <Library '_half_product'>")

    result = CliRunner().invoke(group, ["prepare"])
    assert result.exit_code == exit_code, result.output
    assert [line for line in result.output.splitlines() if line] == [said]


def test_a_dbn_interrupted_as_its_first_rbm_is_set_up_raises_the_interruption(monkeypatch):
    """A Ctrl-C in the first RBM's pass over the data that sets its visible biases (where its
    first kernels compile): the DBN's record of the layer's history raised "AttributeError:
    BernoulliRBM has no 'history' before fit" instead (under mpiexec, a failure that aborted
    the job, exit code 1)."""
    from dlcore.rbm.units import BernoulliVisible

    def interrupted(self, X):
        raise KeyboardInterrupt

    monkeypatch.setattr(BernoulliVisible, "initial_parameters", interrupted)
    model = dlcore.DBN(layers=[6, 3, 2], epochs=1, backend="reference")
    with pytest.raises(KeyboardInterrupt):
        model.fit(small_data())
    assert not hasattr(model.rbms_[0], "W")   # no half set-up RBM for a resume to take


# -- signals while Numba compiles or loads a kernel -----------------------------------------
KERNEL_MODULE = '''
import numba


@numba.njit(cache=True)
def doubled_sum(values):
    total = 0.0
    for value in values:
        total += 2.0 * value
    return total
'''

#: The child: a signal arrives in each of the callbacks that LLVM makes from C while Numba
#: loads (or compiles) the kernel, the moment a Ctrl-C landed in (CI, 2026-12: a SIGTERM to
#: ``homework regularisation`` as it loaded its second row's kernels from the cache).
SIGNALLED_IN_LLVMS_CALLBACKS = '''
import contextlib, signal, sys
import numpy as np
from numba.core import codegen

number = int(sys.argv[1])
handed_object_code = codegen.CPUCodeLibrary._object_getbuffer_hook.__func__
handlers_seen = set()


def signalled_meanwhile(cls, ll_module):
    handlers_seen.add(signal.getsignal(signal.SIGTERM) is signal.SIG_DFL)
    signal.raise_signal(number)
    return handed_object_code(cls, ll_module)


# before dlcore is imported, which sets up Numba's code generator and its hooks
codegen.CPUCodeLibrary._object_getbuffer_hook = classmethod(signalled_meanwhile)
import dlcore
import kernel_module

with (dlcore.interrupt_on_termination() if number != signal.SIGINT
      else contextlib.nullcontext()):
    try:
        kernel_module.doubled_sum(np.arange(4.0))
        print("not interrupted")
    except KeyboardInterrupt as error:
        print("interrupted:", type(error).__name__)
    print("then:", kernel_module.doubled_sum(np.arange(4.0)))
print("SIGTERM at its default inside:", sorted(handlers_seen))
print("Ctrl-C's handler put back:", signal.getsignal(signal.SIGINT) is signal.default_int_handler)
'''


@needs_termination_signals
@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM],
                         ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("cached", [True, False], ids=["loaded", "compiled"])
def test_a_signal_while_numba_loads_a_kernel_interrupts_the_call_once_it_is_loaded(
        tmp_path, number, cached):
    """A Ctrl-C (or a SIGTERM inside :func:`dlcore.interrupt_on_termination`) that lands in
    one of the callbacks LLVM makes from C while Numba loads a kernel from its cache: Python
    dropped the ``KeyboardInterrupt`` and LLVM went on without the kernel's machine code, and
    the process died of a segmentation fault (-11: nothing saved, no resume line). Now the
    signal waits for the load to end, interrupts the call then, and the kernel, whole, runs
    next time; a SIGTERM nobody asked to take stays at Python's default meanwhile."""
    (tmp_path / "kernel_module.py").write_text(KERNEL_MODULE)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    if cached:
        subprocess.run([sys.executable, "-c", "import numpy, kernel_module; "
                        "kernel_module.doubled_sum(numpy.zeros(1))"],
                       env=env, check=True, timeout=HANG_SECONDS)
    (tmp_path / "child.py").write_text(SIGNALLED_IN_LLVMS_CALLBACKS)
    child = subprocess.run([sys.executable, str(tmp_path / "child.py"), str(int(number))],
                           env=env, capture_output=True, text=True, timeout=HANG_SECONDS)
    assert child.returncode == 0, child.stderr[-3000:]
    expected = "KeyboardInterrupt" if number == signal.SIGINT else "Terminated"
    assert child.stdout.splitlines() == [
        f"interrupted: {expected}", "then: 12.0",
        f"SIGTERM at its default inside: [{number == signal.SIGINT}]",
        "Ctrl-C's handler put back: True"], child.stderr[-3000:]
    assert "Exception ignored" not in child.stderr


def test_a_hold_whose_compiler_lock_was_never_taken_ends_at_the_next_compile():
    """A start of Numba's compiler lock that never took it (an exception between the two)
    gets no end: its hold of Ctrl-C must end with the next compile, not last for good."""
    import numba

    from dlcore.termination import HOLDING_SIGNALS_WHILE_COMPILING as holding

    def programs_own(number, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, programs_own)
    try:
        holding.on_start(None)   # the start, without its lock
        assert signal.getsignal(signal.SIGINT) == holding.hold
        assert numba.njit(lambda value: value + 1)(1) == 2   # a compile: takes the lock
        assert signal.getsignal(signal.SIGINT) is programs_own
        assert holding.depth == 0
    finally:
        holding.depth = 0
        holding.let_go()
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def handlers_as_in_a_command():
    """Ctrl-C's handler Python's, SIGTERM's the command line's, put back after, with the
    listener's state should a step leave it wrong."""
    from dlcore.termination import HOLDING_SIGNALS_WHILE_COMPILING as listener
    from dlcore.termination import raise_terminated
    previous = {signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler),
                signal.SIGTERM: signal.signal(signal.SIGTERM, raise_terminated)}
    try:
        yield listener
    finally:
        for number, handler in listener.replaced.items():
            signal.signal(number, handler)
        listener.depth, listener.replaced, listener.held = 0, {}, []
        for number, handler in previous.items():
            signal.signal(number, handler)


def _compiler_lock_signalled_at(step, number, nested):
    """Take Numba's compiler lock (twice, one inside the other, where ``nested``), as a
    compile does, with a real signal ``number`` sent at the ``step``-th line that the listener
    holding the signals runs (:class:`stepping.SignalAtLine`); the interruptions raised (their
    types' names) and the lines it ran."""
    from numba.core.compiler_lock import global_compiler_lock

    from dlcore import termination
    from stepping import SignalAtLine
    raised = []
    with SignalAtLine(step, number, files=[termination.__file__]) as stepped:
        try:
            with global_compiler_lock:
                if nested:
                    with global_compiler_lock:
                        pass
        except KeyboardInterrupt as error:
            raised.append(type(error).__name__)
    return raised, stepped.lines


@needs_termination_signals
@pytest.mark.parametrize("nested", [False, True], ids=["lock", "nested lock"])
@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_at_any_line_of_the_hold_interrupts_once_and_leaves_the_hold_whole(
        number, nested):
    """A signal at each line that holds the handlers as Numba takes its compiler lock, or
    puts them back as it lets go. One landing in the midst of either raised from there, which
    left the hold broken for the rest of the process: counted as still inside (no compile
    after it held a signal, so a Ctrl-C in LLVM's callbacks was dropped again, the kernel left
    without its machine code), or with Ctrl-C's handler replaced by the hold for good (a
    SIGTERM as the handlers were replaced: every later Ctrl-C was swallowed), or SIGTERM's (a
    Ctrl-C as they were put back). Now the interruption is raised once, the handlers are back,
    and the next lock holds a signal as the first did. Stepped in a process of its own, with
    a timeout: under a trace function, a process that some earlier test left marked as having
    an asynchronous exception to deliver spins for good at a function's entry (a 2026-12 CI
    run hung so, after a distributed test: ``test_a_notice_left_for_the_next_check_leaves_a_\
debugger_working``); a failure here is then a failed test, not a hung suite."""
    tests = os.path.dirname(os.path.abspath(__file__))
    code = (f"import sys; sys.path.insert(0, {tests!r}); import test_termination; "
            f"test_termination.check_the_hold_at_every_line({int(number)}, {nested})")
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=HANG_SECONDS)
    assert child.returncode == 0, child.stderr[-3000:]
    assert child.stdout.split() == ["steps", child.stdout.split()[-1]]
    assert int(child.stdout.split()[-1]) > 20   # the holding and the putting back, each line


def check_the_hold_at_every_line(number, nested):
    """The steps of :func:`test_a_signal_at_any_line_of_the_hold_interrupts_once_and_leaves_\
the_hold_whole`, in the process that runs it: print "steps N" once every line was reached."""
    with handlers_as_in_a_command() as listener:
        _check_the_hold_at_every_line(listener, number, nested)


def _check_the_hold_at_every_line(listener, number, nested):
    from numba.core.compiler_lock import global_compiler_lock

    from dlcore.termination import raise_terminated
    expected = "KeyboardInterrupt" if number == signal.SIGINT else "Terminated"
    step = 0
    while True:
        step += 1
        raised, lines = _compiler_lock_signalled_at(step, number, nested)
        if step > lines:
            assert raised == [], step   # the last step sent nothing: every line was reached
            break
        assert raised == [expected], step
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler, step
        assert signal.getsignal(signal.SIGTERM) is raise_terminated, step
        assert not global_compiler_lock.is_locked(), step
        # and the hold holds: a signal inside the next lock waits for it to be let go
        still_inside = False
        with pytest.raises(KeyboardInterrupt):
            with global_compiler_lock:
                os.kill(os.getpid(), signal.SIGINT)
                for _ in range(3):   # calls at which Python would have run the handler
                    time.sleep(0)
                still_inside = True
        assert still_inside, step
        assert (listener.depth, listener.replaced, listener.held) == (0, {}, []), step
    print("steps", step)


@contextlib.contextmanager
def programs_own_handler(number):
    """The program's own handler of ``number`` (a ``KeyboardInterrupt``, as Ctrl-C's), which
    notes each call in the list yielded; the handler before put back after."""
    calls = []

    def own(signal_number, frame):
        calls.append(signal_number)
        raise KeyboardInterrupt

    previous = signal.signal(number, own)
    try:
        yield calls
    finally:
        signal.signal(number, previous)


def _signalled_inside(number):
    """Send ``number`` to this process, and pass calls at which Python would run its
    handler: a handler not held raises here."""
    os.kill(os.getpid(), number)
    for _ in range(3):
        time.sleep(0)


@needs_termination_signals
@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("compile_inside", [True, False],
                         ids=["a compile inside a save", "a save inside a compile"])
def test_a_signal_in_a_hold_inside_another_is_raised_once_when_the_outer_lets_go(
        tmp_path, monkeypatch, number, compile_inside):
    """A save holds signals as it makes its temporary file, and Numba's compiler lock holds
    them too (:class:`dlcore.termination.HeldSignals`, one each): whichever is inside the
    other, a signal in the inner hold is raised once, by the program's own handler, when the
    outer one lets go, and every handler is back after."""
    from numba.core.compiler_lock import global_compiler_lock

    from dlcore.io import atomic
    from dlcore.termination import HOLDING_SIGNALS_WHILE_COMPILING as listener
    target, made, reached = tmp_path / "model.txt", atomic._create_temporary_file, []

    def made_signalled(*arguments):
        if compile_inside:
            with global_compiler_lock:
                _signalled_inside(number)
                reached.append("the compile's end")
        else:
            _signalled_inside(number)
            reached.append("the temporary file")
        return made(*arguments)

    monkeypatch.setattr(atomic, "_create_temporary_file", made_signalled)
    with programs_own_handler(number) as calls:
        with pytest.raises(KeyboardInterrupt):
            if compile_inside:
                with atomic_open(target) as stream:
                    stream.write("never written: the save's hold raises first")
            else:
                with global_compiler_lock:
                    with atomic_open(target) as stream:
                        stream.write("new")
                    reached.append("the save's end")
        assert calls == [number]
        assert callable(signal.getsignal(number)) and signal.getsignal(number).__name__ == "own"
    assert reached == (["the compile's end"] if compile_inside
                       else ["the temporary file", "the save's end"])
    assert [path.name for path in tmp_path.iterdir()] == ([] if compile_inside
                                                          else ["model.txt"])
    assert (listener.depth, listener.replaced, listener.held) == (0, {}, [])


def _command_signalled_at(step, number, arguments, capsys):
    """Run the command line in this process with a real signal ``number`` sent at the
    ``step``-th line run by the code around the command (:class:`OneLineErrorGroup`'s run of
    it, the context managers it enters, Click's ``main``); the exit code, the lines of stderr
    (without the blank one Click prints before its Abort), and whether the signal was sent.
    A SIGTERM is sent only where a handler takes it: at Python's default it would end the
    test session (the command line's start and end, where it ends the command as the
    default does, 143 to the shell)."""
    import click.core

    from dlcore.cli import _common
    from dlcore.termination import interrupt_on_termination, noting_dropped_interruptions
    from stepping import SignalAtLine
    # not main's own lines: the first runs before its try, as the call of any function does
    codes = {click.core.Command.main.__code__, _common.OneLineErrorGroup._run_command.__code__,
             _common._stopping_once.__wrapped__.__code__,
             interrupt_on_termination.__wrapped__.__code__,
             noting_dropped_interruptions.__wrapped__.__code__}
    with SignalAtLine(step, number, codes=codes,
                      sendable=lambda: callable(signal.getsignal(number))) as stepped:
        try:
            main.main(args=arguments, prog_name="dlcore")
            code = "returned"
        except SystemExit as exited:
            code = exited.code
        except KeyboardInterrupt as error:   # Python's traceback, in a real process
            code = f"{type(error).__name__} escaped"
    said = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    return code, said, stepped.sent, step > stepped.lines


#: The environment variable under which the test process steps a signal through the lines
#: around a command: set by :func:`test_the_lines_around_a_command_stepped_in_a_fresh_process`
#: for the pytest it starts, with a timeout (as
#: :func:`test_a_signal_at_any_line_of_the_hold_interrupts_once_and_leaves_the_hold_whole`:
#: a 2026-12 CI run's worker spun for good at the entry of ``OneLineErrorGroup.main``).
STEPPING = "DLCORE_STEPPING_AROUND_A_COMMAND"


def test_the_lines_around_a_command_stepped_in_a_fresh_process():
    """Runs :func:`test_a_signal_at_any_line_around_a_command_is_its_one_line`, both signals,
    in a pytest process of its own; its outcome is this test's."""
    child = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-o", "addopts=", "-p", "no:cacheprovider",
         f"{os.path.abspath(__file__)}::test_a_signal_at_any_line_around_a_command_is_its_one_line"],
        env={**os.environ, STEPPING: "1"}, capture_output=True, text=True,
        timeout=HANG_SECONDS, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert child.returncode == 0, child.stdout[-3000:]
    assert "2 passed" in child.stdout.splitlines()[-1], child.stdout[-3000:]


@needs_termination_signals
@pytest.mark.skipif(os.environ.get(STEPPING) != "1",
                    reason="stepped in a fresh process by "
                           "test_the_lines_around_a_command_stepped_in_a_fresh_process")
@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_at_any_line_around_a_command_is_its_one_line(
        tmp_path, capsys, heard_as_in_a_terminal, number):
    """A Ctrl-C (or SIGTERM, SIGHUP) as the command line takes over the signals, before
    Click's own catch, or once the command has ended and put back the handlers it began
    with: Python's traceback of a KeyboardInterrupt, or of a Terminated with exit code 1
    instead of 143. Now the one line, "interrupted" before the command ran and "interrupted
    as it ended (what it did is complete)" after, with 128 + the signal."""
    model = dlcore.BernoulliRBM(n_hidden=3, epochs=0, backend="cpu").fit([[0.0, 1.0]] * 4)
    dlcore.save(model, tmp_path / "model.h5")
    arguments = ["info", str(tmp_path / "model.h5")]
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)   # xdist ignores it
    try:
        step, signalled = 0, 0
        while True:
            step += 1
            code, said, sent, past_the_end = _command_signalled_at(step, number, arguments,
                                                                   capsys)
            if past_the_end:
                assert (code, said) == (0, []), step
                break
            if not sent:
                continue
            signalled += 1
            assert code == 128 + number, (step, said)
            assert len(said) == 1 and said[0].startswith("dlcore: "), (step, said)
            assert "interrupted" in said[0], (step, said)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert signalled > 30   # before the command, in Click's catch, and after it
