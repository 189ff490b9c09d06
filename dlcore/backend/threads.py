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
region against ~2 us for a spinning one, 6-8 regions per training batch of that net (measured:
1.40 ms per batch passive, 1.25-1.29 ms with ``GOMP_SPINCOUNT=3000``; inference at batch 32
421 us against 379-387 us). So at import dlcore looks at the machine once:

* every thread it will run has a core with nothing else runnable on it (Linux's
  ``/proc/loadavg`` counts the threads runnable at that instant), and no MPI launcher started
  this process beside others: a short spin, ``GOMP_SPINCOUNT=3000``, long enough to bridge the
  gaps inside a training step, short enough that a machine that gets busy later costs a fraction
  (measured beside eight busy processes: +1 % and +48 % over passive waiting in two sets of
  runs, against 10-20x for the default spin);
* anything else: ``OMP_WAIT_POLICY=PASSIVE``.

The OpenMP runtime reads its settings once, when Numba first loads it (the first parallel
kernel), so this module sets them at import, before any kernel runs, and only where the user
has not chosen: ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` already in the environment win.
"""
import os

#: what dlcore asks of OpenMP on a busy machine
WAIT_POLICY = "PASSIVE"
#: and the spin count it asks for when each of its threads has a free core
SHORT_SPIN = "3000"

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


def _thread_count():
    from numba.core import config  # the configuration only: no threading layer is loaded
    return int(config.NUMBA_NUM_THREADS)


def _core_count():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


_READ = object()


def choose_waiting(environment=os.environ, runnable=_READ, n_threads=None, n_cores=None):
    """Set how OpenMP threads wait (module docstring) in ``environment`` unless
    ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` is set there; returns the line of
    :func:`wait_policy`.

    ``runnable``: threads runnable elsewhere (default :func:`runnable_elsewhere`; None:
    unknown);
    ``n_threads``: the kernels' threads (default Numba's); ``n_cores``: the cores this
    process may use.
    """
    if "OMP_WAIT_POLICY" in environment or "GOMP_SPINCOUNT" in environment:
        return wait_policy(environment)
    n_threads = _thread_count() if n_threads is None else n_threads
    n_cores = _core_count() if n_cores is None else n_cores
    runnable = runnable_elsewhere() if runnable is _READ else runnable
    if any(name in environment for name in MPI_LAUNCHER_VARIABLES):
        name, value, reason = ("OMP_WAIT_POLICY", WAIT_POLICY,
                               "started by an MPI launcher, whose ranks share the cores")
    elif runnable is None:
        name, value, reason = "OMP_WAIT_POLICY", WAIT_POLICY, "the machine's load is unknown"
    elif runnable + n_threads <= n_cores:
        name, value, reason = ("GOMP_SPINCOUNT", SHORT_SPIN,
                               f"a free core for each of {n_threads} threads at import")
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
