"""Another library's contenders run in a process of their own (dlcore/bench_process.py)."""
import os
import textwrap

import pytest

from dlcore import bench
from dlcore.backend import threads
from dlcore.bench_process import ContenderProcess

LIBRARY = '''
import os

# what the library's own runtime reads when it is loaded (libgomp reads its settings then)
WAIT_AT_IMPORT = os.environ.get("OMP_WAIT_POLICY")

from dlcore.bench import Contender  # noqa: E402


def contenders(path, n, fail=False):
    def run(index):
        print("a workload that prints")          # must not reach the parent's answers
        os.write(1, b"and one that writes to its file descriptor 1\\n")
        if fail:
            raise ValueError("the library broke")
        with open(path, "a") as log:
            log.write(f"{index} {os.getpid()}\\n")
    work = {"pid": os.getpid(), "wait": WAIT_AT_IMPORT}
    return [Contender(f"library {i}", lambda i=i: run(i), work,
                      warm_up=lambda i=i: run(f"warm {i}")) for i in range(n)]


def die():
    os._exit(3)
'''


@pytest.fixture
def library(tmp_path, monkeypatch):
    """A stand-in library importable by the child; dlcore's own passive-waiting setting in the
    environment (as importing dlcore leaves it when the user set nothing)."""
    (tmp_path / "stand_in_library.py").write_text(textwrap.dedent(LIBRARY))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(tmp_path)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    monkeypatch.setitem(threads.SET_BY_DLCORE, "OMP_WAIT_POLICY", "PASSIVE")
    return tmp_path


def test_contenders_run_in_their_own_process_without_dlcores_settings(library):
    log = library / "runs.log"
    with ContenderProcess("stand_in_library") as process:
        theirs = process.contenders("stand_in_library:contenders", str(log), 2)
        ours = bench.Contender("dlcore", lambda: log.open("a").write(f"dlcore {os.getpid()}\n"),
                               theirs[0].work)
        seconds, order = bench.time_alternating([ours] + theirs, 2)
    assert order == ["dlcore", "library 0", "library 1"] * 2
    assert all(len(times) == 2 and min(times) >= 0 for times in seconds.values())
    child = theirs[0].work["pid"]
    assert child != os.getpid()
    assert theirs[0].work["wait"] is None     # OpenMP there waits as the library's own default
    lines = log.read_text().split("\n")[:-1]
    assert lines == ([f"warm 0 {child}", f"warm 1 {child}"]
                     + [f"dlcore {os.getpid()}", f"0 {child}", f"1 {child}"] * 2)
    assert process.process.poll() == 0       # closed: asked to stop, and stopped
    # and its pipes closed: Python warned of them at exit ("unclosed file <_io.BufferedWriter>")
    assert process.process.stdin.closed and process.process.stdout.closed


def test_the_users_own_setting_goes_to_the_child(library, monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")     # the user's, not dlcore's
    with ContenderProcess("stand_in_library") as process:
        work = process.contenders("stand_in_library:contenders", str(library / "log"), 1)[0].work
    assert work["wait"] == "ACTIVE"


def test_a_failure_in_the_child_is_one_clear_line_and_a_dead_child_says_the_way_out(library):
    with ContenderProcess("stand_in_library") as process:
        failing = process.contenders("stand_in_library:contenders", str(library / "log"), 1,
                                     fail=True)[0]
        with pytest.raises(RuntimeError, match="stand_in_library contender failed in its "
                                               "process: ValueError: the library broke"):
            failing.run()
        with pytest.raises(RuntimeError, match="ModuleNotFoundError"):
            process.contenders("no_such_module:contenders")
        working = process.contenders("stand_in_library:contenders", str(library / "log"), 1)[0]
        working.run()
        assert (library / "log").read_text().endswith(f"0 {working.work['pid']}\n")
        # a child that dies: the way out, not a traceback of pickles
        with pytest.raises(RuntimeError, match=r"ended \(exit status 3.*--skip-torch"):
            process.contenders("stand_in_library:die")
    assert process.process.stdin.closed and process.process.stdout.closed
