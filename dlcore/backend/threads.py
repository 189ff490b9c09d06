"""How the CPU kernels' threads wait between parallel regions: a short spin when the machine has
a free core for each of them, asleep otherwise.

Numba's default threading layer on Linux is OpenMP (GNU libgomp). Out of the box, a libgomp
thread that finishes its share of a parallel region spins for about 300,000 iterations before it
sleeps, so that the next region starts a few microseconds sooner. That pays only while every
thread has a core to itself. When anything else runs on the machine (a browser, a second
training, the test suite, another user of a shared machine), a spinning thread holds a core that
a thread of the same region needs, and every region ends by waiting a scheduler time slice:
measured on a 2-core AMD EPYC with a load average of 10, one fine-tuning epoch of a
784-500-500-10 net (3,600 rows, batch 32) took 14-33 s with the default and 0.6-1.5 s with
``OMP_WAIT_POLICY=PASSIVE`` (3.2-3.6 s with one thread).

Sleeping has its own price on an idle machine: waking a sleeping thread costs ~15-20 us per
region on that AMD EPYC, and 50-120 us on a 2-core Intel Xeon virtual machine, against ~2 us
for a spinning one, with 6-8 regions per training batch and gaps of tens to a few hundred
microseconds of Python between them. So at import dlcore looks at the machine once:

* every thread it will run has a core with nothing else runnable on it (Linux's
  ``/proc/loadavg`` counts the threads runnable at that instant; dlcore takes the median of
  :data:`RUNNABLE_READINGS` readings, :func:`typical_runnable_elsewhere`), and no MPI launcher
  started this process beside others: a short spin, :data:`SPIN_SECONDS` long, long enough to
  bridge the gaps inside a training step, short enough that a machine that gets busy later
  costs a fraction;
* anything else: ``OMP_WAIT_POLICY=PASSIVE``.

libgomp counts its spin in iterations (``GOMP_SPINCOUNT``), each one x86 ``pause``
instruction, whose duration differs between CPUs (about 10 ns on that Intel Xeon; Intel's
Skylake made it ~140 cycles), so dlcore times the instruction once per CPU model
(:func:`remembered_pause_nanoseconds`) and sets the count that spins for
:data:`SPIN_SECONDS`.
Measured on the Intel Xeon (2 cores, MKL), epochs of the benches: 3,000 iterations (30 us,
what dlcore set before it measured the pause) against 30,000 (300 us): fine-tuning
(`dlcore bench mlp`) 2.50-2.80 s against 1.95-2.16 s, RBM CD-1 1.47-1.58 s against
1.33-1.43 s, LeNet-5 3.63-3.91 s against 3.28-3.44 s; 100,000 iterations no faster. Beside
eight busy processes started after import, the fine-tuning epoch took 19.6 s asleep, 21.4 s
with 3,000 iterations and 27.4 s with 30,000 (+40 %: the price of the short spin on a machine
that gets busy later; the default spin costs 10-20x). Machines other than x86 keep 3,000
iterations (not measured there).

The OpenMP runtime reads its settings once, when Numba first loads it (the first parallel
kernel), so this module sets them at import, before any kernel runs, and only where the user
has not chosen: ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` already in the environment win.
"""
import os
import time

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from .cache import kernel_cache_folder
from .cpuinfo import ON_X86, cpuinfo_fields

#: what dlcore asks of OpenMP on a busy machine
WAIT_POLICY = "PASSIVE"
#: how long a thread spins after a region when each of its threads has a free core
SPIN_SECONDS = 300e-6
#: the spin counts dlcore sets: the count where the pause was not measured, and the bounds
SHORT_SPIN, LONGEST_SPIN = 3000, 300_000

#: variables that MPI launchers (Open MPI, MPICH's Hydra, PMIx) set in every rank they start:
#: ranks started together share the cores, and none of them sees the others yet at import
MPI_LAUNCHER_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS")

#: the variables dlcore itself put into this process's environment, with their values
SET_BY_DLCORE = {}
#: why dlcore chose what it set (for reports), when it set something
REASON = {}


def runnable_elsewhere(path="/proc/loadavg"):
    """The threads runnable on the machine at this instant besides the caller (the fourth
    field of Linux's ``/proc/loadavg``, "running/total", counts the caller too), or None where
    it cannot be read."""
    try:
        with open(path) as file:
            running = int(file.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return None
    return max(0, running - 1)


#: readings of the runnable threads that decide at import, :data:`READING_INTERVAL` seconds
#: apart. One reading caught a thread that runs for an instant 1 time in 80 on an idle 2-core
#: Intel Xeon, and put that whole process to sleep between regions: a `dlcore bench rbm` run
#: measured CD-1 epochs of 1.26-1.35 s against 0.89-0.92 s in the next run. The median of five
#: is fooled only by a thread that runs through most of them.
RUNNABLE_READINGS, READING_INTERVAL = 5, 0.002


def typical_runnable_elsewhere(read=runnable_elsewhere, readings=RUNNABLE_READINGS,
                               interval=READING_INTERVAL, sleep=time.sleep):
    """The median of ``readings`` readings of ``read()`` (default :func:`runnable_elsewhere`),
    ``interval`` seconds apart; None when one is unknown. Once most readings are 0 the median
    is 0 whatever follows: an idle machine costs the import 4 ms, not 8."""
    values = []
    for index in range(readings):
        if index:
            sleep(interval)
        value = read()
        if value is None:
            return None
        values.append(value)
        if values.count(0) > readings // 2:
            return 0
    return sorted(values)[len(values) // 2]


def _thread_count():
    from numba.core import config  # the configuration only: no threading layer is loaded
    return int(config.NUMBA_NUM_THREADS)


def _core_count():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@intrinsic
def _pause(typingctx):
    """x86's ``pause``, the instruction each of libgomp's spin iterations waits on."""
    def codegen(context, builder, signature, arguments):
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), []), "llvm.x86.sse2.pause")
        builder.call(function, [])
        return context.get_dummy_value()
    return types.void(), codegen


@njit(cache=True)
def _pauses(count):
    for _ in range(count):
        _pause()


def pause_nanoseconds(count=4000):
    """The duration of one x86 ``pause`` in nanoseconds (the fastest of five timings of
    ``count`` of them), or None on other machines or where it cannot be compiled."""
    if not ON_X86:
        return None
    try:
        _pauses(1)
    except Exception:  # noqa: BLE001  (a compiler that cannot emit it: keep the fixed count)
        return None
    fastest = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        _pauses(count)
        fastest = min(fastest, time.perf_counter() - start)
    return fastest / count * 1e9


#: the file, in the kernel cache folder, that keeps the pause measured on a CPU model
PAUSE_FILE = "pause-ns.txt"


def remembered_pause_nanoseconds(folder=None, cpuinfo="/proc/cpuinfo", measure=None):
    """:func:`pause_nanoseconds` as measured on this CPU model before, else measured now and
    kept: one line "<model name> TAB <ns>" in ``folder`` (default
    :func:`dlcore.backend.cache.kernel_cache_folder`). Reading it costs well under a
    millisecond; loading the compiled loop to measure costs ~0.15 s of every import. A line
    of another model, or anything unreadable or implausible, is measured again."""
    measure = pause_nanoseconds if measure is None else measure
    model = cpuinfo_fields(("model name",), cpuinfo).get("model name")
    try:
        path = (kernel_cache_folder() if folder is None else folder) / PAUSE_FILE
    except OSError:   # no home folder (a container's --user): measured at every import
        model = None
    if model:
        try:
            with open(path, encoding="utf-8", errors="replace") as file:
                kept_model, _, value = file.read(1000).strip().rpartition("\t")
            if kept_model == model and 0.01 <= float(value) <= 1e4:
                return float(value)
        except (OSError, ValueError):
            pass
    pause_ns = measure()
    if model and pause_ns:
        from dlcore.io.atomic import atomic_open  # once per CPU model: not on every import
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_open(path) as file:
                file.write(f"{model}\t{pause_ns:.3f}\n")
        except OSError:
            pass
    return pause_ns


def spin_count(pause_ns):
    """libgomp's spin iterations that last :data:`SPIN_SECONDS` at ``pause_ns`` a pause,
    within [:data:`SHORT_SPIN`, :data:`LONGEST_SPIN`]; :data:`SHORT_SPIN` when unknown."""
    if not pause_ns or pause_ns != pause_ns:
        return SHORT_SPIN
    return int(min(LONGEST_SPIN, max(SHORT_SPIN, round(SPIN_SECONDS / (pause_ns * 1e-9), -3))))


_READ = object()


def choose_waiting(environment=os.environ, runnable=_READ, n_threads=None, n_cores=None,
                   pause_ns=_READ):
    """Set how OpenMP threads wait (module docstring) in ``environment`` unless
    ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` is set there; returns the line of
    :func:`wait_policy`.

    ``runnable``: threads runnable elsewhere (default :func:`typical_runnable_elsewhere`;
    None: unknown);
    ``n_threads``: the kernels' threads (default Numba's); ``n_cores``: the cores this
    process may use; ``pause_ns``: one spin iteration's duration (default
    :func:`remembered_pause_nanoseconds`, read only when the spin is chosen; None: unknown).
    """
    if "OMP_WAIT_POLICY" in environment or "GOMP_SPINCOUNT" in environment:
        return wait_policy(environment)
    n_threads = _thread_count() if n_threads is None else n_threads
    n_cores = _core_count() if n_cores is None else n_cores
    runnable = typical_runnable_elsewhere() if runnable is _READ else runnable
    if any(name in environment for name in MPI_LAUNCHER_VARIABLES):
        name, value, reason = ("OMP_WAIT_POLICY", WAIT_POLICY,
                               "started by an MPI launcher, whose ranks share the cores")
    elif runnable is None:
        name, value, reason = "OMP_WAIT_POLICY", WAIT_POLICY, "the machine's load is unknown"
    elif runnable + n_threads <= n_cores:
        pause_ns = remembered_pause_nanoseconds() if pause_ns is _READ else pause_ns
        spins = spin_count(pause_ns)
        timing = ("the pause not measured here" if not pause_ns else
                  f"{spins * pause_ns / 1000:.0f} us at {pause_ns:.1f} ns a pause")
        name, value, reason = ("GOMP_SPINCOUNT", str(spins),
                               f"a free core for each of {n_threads} threads at import; "
                               f"{timing}")
    else:
        name, value, reason = ("OMP_WAIT_POLICY", WAIT_POLICY,
                               f"{runnable} other threads runnable at import, {n_threads} "
                               f"threads on {n_cores} cores")
    environment[name] = value
    if environment is os.environ:
        SET_BY_DLCORE[name] = value
        REASON[name] = reason
    return wait_policy(environment)


def user_environment(environment=os.environ):
    """A copy of ``environment`` without what dlcore added to it: the settings another
    library's process gets when it should run as it would without dlcore (``dlcore bench``
    starts PyTorch's contenders in one)."""
    return {name: value for name, value in environment.items()
            if SET_BY_DLCORE.get(name) != value}


def wait_policy(environment=os.environ):
    """A line for reports: how OpenMP threads wait in this process (and why, when dlcore
    chose)."""
    name = "GOMP_SPINCOUNT" if "GOMP_SPINCOUNT" in environment else "OMP_WAIT_POLICY"
    value = environment.get(name, "default")
    line = f"{name}={value}"
    if environment is os.environ and SET_BY_DLCORE.get(name) == value:
        line += f" (set by dlcore: {REASON[name]})"
    return line


choose_waiting()
