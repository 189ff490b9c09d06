"""The ``dlcore`` command's signals while it starts: importing NumPy, Numba, h5py and the
commands takes seconds, before the command line can install its handlers
(:class:`dlcore.cli._common.OneLineErrorGroup`). A Ctrl-C then printed Python's traceback of
whatever import it landed in, and a SIGTERM or SIGHUP (a scheduler, ``kill``, a closed
terminal) ended the process without a word. Nothing has been done yet, so nothing needs saving:
the process says one line and exits as the command does when interrupted (128 + the signal).

Imported first by ``dlcore/__init__.py``, it installs its handlers as it is imported, and only
for the command line (``python -m dlcore``, the ``dlcore`` script): a program that imports
dlcore keeps Python's handlers. It imports nothing heavy, so it acts from the first line of
dlcore that runs (a signal in the first tenth of a second, while Python imports its own
``site``, still gets Python's default: no dlcore code has run).
"""
import os
import signal
import sys

#: The signals the command line turns into its one line (those the platform has).
STARTING_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP")
                         if hasattr(signal, name))
#: What the common MPI launchers put in each rank's environment: the rank's number, and the
#: number of ranks (here, as this module imports nothing of dlcore's; :mod:`dlcore.distributed`
#: and the command line read them through :func:`launcher_number` too). Slurm's, last: the task
#: and the tasks of the ``srun`` step (its PMI plugin may set none of the others; an mpiexec
#: inside a step sets its own, read first).
LAUNCHER_RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID")
LAUNCHER_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE",
                           "SLURM_STEP_NUM_TASKS")
#: The rank's number among the job's ranks on its node (MPICH's Hydra, Open MPI, MVAPICH,
#: HPE Cray PALS's ``mpiexec``, Slurm), whatever communicator the rank trains on: which of
#: the node's GPUs it uses. Each comes with the same launcher's rank and size variables,
#: which must be the process's own in ``MPI.COMM_WORLD``: a launcher's ranks inherit the
#: variables of the one that started it (``mpiexec`` in a Slurm job: every rank read the
#: batch step's ``SLURM_LOCALID=0``).
LAUNCHER_LOCAL_RANK_VARIABLES = (
    ("MPI_LOCALRANKID", "PMI_RANK", "PMI_SIZE"),
    ("OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),
    ("MV2_COMM_WORLD_LOCAL_RANK", "MV2_COMM_WORLD_RANK", "MV2_COMM_WORLD_SIZE"),
    ("PMI_LOCAL_RANK", "PMI_RANK", "PMI_SIZE"),
    ("SLURM_LOCALID", "SLURM_PROCID", "SLURM_STEP_NUM_TASKS"))

_REPLACED = {}   # signal number: the handler it had, while ours is installed
_HELD = []       # the signal a rank of a --distributed job holds until MPI is started


def started_as_command_line(argv=None, orig_argv=None):
    """Whether this process is the ``dlcore`` command (its script, or ``python -m dlcore``,
    whose ``sys.argv[0]`` is "-m" while the package is imported)."""
    argv = sys.argv if argv is None else argv
    orig_argv = getattr(sys, "orig_argv", []) if orig_argv is None else orig_argv
    if not argv:
        return False
    if argv[0] == "-m":
        for first, second in zip(orig_argv, orig_argv[1:]):
            if first == "-m":
                return second == "dlcore"
            if first == "-mdlcore":
                return True
        return "-mdlcore" in orig_argv[-1:]
    name = os.path.basename(argv[0]).lower()
    return name in ("dlcore", "dlcore.exe", "dlcore-script.py")


def launcher_number(names, least, environ=None):
    """The first of the environment variables ``names`` that an MPI launcher (MPICH's or Open
    MPI's mpiexec, srun) set to an integer, at least ``least``; ``least`` when none is set."""
    environ = os.environ if environ is None else environ
    for name in names:
        try:
            return max(least, int(environ[name]))
        except (KeyError, ValueError):
            continue
    return least


def joins_mpi(argv=None):
    """Whether the command line ``argv`` (``sys.argv``) starts MPI: its ``--distributed``
    (a training command's, or ``dlcore sweep``'s before the ``--`` of the swept command)."""
    argv = sys.argv if argv is None else argv
    words = list(argv[1:])
    return "--distributed" in (words[:words.index("--")] if "--" in words else words)


def take_held_signal():
    """The signal that came while this rank of a ``--distributed`` job started, held until
    its ranks joined MPI (:func:`_interrupted_while_starting`), or None; taken once. Called
    once the ranks joined: the handlers that held give way to the command's from here on
    (:func:`_hand_over_after_joining`)."""
    _hand_over_after_joining()
    return _HELD.pop() if _HELD else None


def _joins_a_job():
    """Whether this process is one of several ranks of a command that starts MPI."""
    return launcher_number(LAUNCHER_SIZE_VARIABLES, 1) > 1 and joins_mpi()


def _hand_over_after_joining():
    """Put back the handlers a rank kept holding through :func:`hand_over` until it joined
    MPI: Python's Ctrl-C, and for SIGTERM and SIGHUP the command line's
    (:func:`dlcore.termination.raise_terminated`: its ``interrupt_on_termination`` found
    them held and left them) until the process exits, Python's default then (MPI's
    finalisation at exit is no place for an exception)."""
    if not _REPLACED:
        return
    from dlcore.termination import raise_terminated
    originals = {}
    while _REPLACED:
        number, handler = _REPLACED.popitem()
        if signal.getsignal(number) is _interrupted_while_starting:
            originals[number] = handler
            signal.signal(number, handler if number == signal.SIGINT or
                          handler != signal.SIG_DFL else raise_terminated)
    import atexit
    atexit.register(lambda: [signal.signal(number, handler)
                             for number, handler in originals.items()])


def _interrupted_while_starting(number, frame):
    """Say the one line and exit with 128 + the signal: nothing was done yet. A rank of a
    ``--distributed`` job holds its first signal instead (:func:`take_held_signal`): MPI is
    not started, so it cannot tell the others, and ended, it left them waiting in MPI's
    start-up (killed by the signal, it left the launcher's exit code, 2 or 15 and, for a
    signal to a rank other than 0, no line); the command delivers it once the ranks joined,
    as the interruption of one rank that it tells the others. A second signal stops it at
    once."""
    name = signal.Signals(number).name
    rank = launcher_number(LAUNCHER_RANK_VARIABLES, 0)
    size = launcher_number(LAUNCHER_SIZE_VARIABLES, 1)
    distributed = _joins_a_job()
    if distributed and not _HELD:
        _HELD.append(number)
        return
    named = "" if number == signal.SIGINT else f" by {name}"
    who = f"rank {rank} of {size}: " if size > 1 else ""
    stream = sys.__stderr__ or sys.stderr
    try:
        # a launcher passes a Ctrl-C or SIGTERM to every rank: one line for the job, rank
        # 0's (the ranks cannot tell each other yet: MPI is not started)
        if rank == 0:
            stream.write(f"dlcore: {who}interrupted{named} as it started (loading its "
                         "libraries): nothing was run\n")
            stream.flush()
    except (OSError, ValueError, AttributeError):   # a SIGHUP's terminal may be gone
        pass
    if distributed:
        # a rank that exits before MPI is started leaves the others waiting in MPI's start-up
        # for ever; one that the signal kills makes the launcher stop the job
        signal.signal(number, signal.SIG_DFL)
        os.kill(os.getpid(), number)
    os._exit(128 + number)


def install(argv=None, orig_argv=None):
    """Install the handlers of a starting command line, where Python's own are in place (a
    signal the parent ignores, as ``nohup`` leaves SIGHUP, stays ignored); nothing for a
    program that imports dlcore, or outside the main thread."""
    import threading
    if _REPLACED or not started_as_command_line(argv, orig_argv) or \
            threading.current_thread() is not threading.main_thread():
        return
    for number in STARTING_SIGNALS:
        current = signal.getsignal(number)
        if current in (signal.SIG_DFL, signal.default_int_handler):
            _REPLACED[number] = signal.signal(number, _interrupted_while_starting)


def hand_over():
    """Put back the handlers :func:`install` replaced (the command line then installs its
    own, which save what a command has trained). A rank of a ``--distributed`` job keeps them
    until its ranks have joined MPI (:func:`take_held_signal`): its command line's parsing,
    mpi4py's import and MPI's start-up are still a window in which a rank that ended left the
    others waiting in MPI's start-up, a signal to it alone said nothing (killed by the
    signal, the job ended with MPICH's exit code 15)."""
    if _REPLACED and _joins_a_job():
        return
    while _REPLACED:
        number, handler = _REPLACED.popitem()
        if signal.getsignal(number) is _interrupted_while_starting:
            signal.signal(number, handler)


install()
