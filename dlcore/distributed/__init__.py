"""Data-parallel training over MPI (mpi4py): R processes train one model as one process would.

Explicit: nothing here runs unless asked. A script started with ``mpiexec -n R python train.py``
calls :func:`init` and passes the communicator to ``fit``::

    comm = dlcore.distributed.init()
    rbm = dlcore.BernoulliRBM(n_hidden=100, batch_size=100, seed=0).fit(X, comm=comm)
    if comm.is_root:
        dlcore.save(rbm, "model.h5")

Every rank holds the data and the same parameters; each computes the statistics of its shard of
the rows of every **global** mini-batch, one all-reduce sums them (:mod:`.communicator`) and
every rank applies the same update (:mod:`.rbm`). The random numbers are keyed by the global
row, so R ranks with global batch B draw what one process with batch B draws: every step
equals one process's up to the order of floating-point sums, until a sample drawn within such a
rounding of its probability flips (after a few epochs of a course's RBM) and the runs part, as
two runs of any chaotic training do. See docs/distributed.md, "What is identical".
``fit(..., comm=comm, sync_every=K)`` averages the parameters every K local steps instead
(:mod:`.local_sgd`): fewer all-reduces, no longer one process's result.

mpi4py and an MPI library are an optional extra, ``pip install "dlcore[distributed]"`` (mpi4py
and the ``mpich`` wheel); without them dlcore works as before and :func:`init` says what to
install in one line.
"""
import glob
import importlib.util
import os
import signal
import sys
import warnings

from dlcore._starting import LAUNCHER_RANK_VARIABLES, launcher_number
from dlcore.termination import terminating_signal
from dlcore.validation import is_integer

from .communicator import (
    DEFAULT_TIMEOUT,
    Communicator,
    PeerInterrupted,
    Periodic,
    as_communicator,
    install_abort_on_error,
    periodic,
    wrap,
)

__all__ = ["Communicator", "DistributedUnavailable", "LauncherOfAnotherMPI", "PeerInterrupted",
           "Periodic",
           "as_communicator", "available", "init", "install_abort_on_error", "launched_rank",
           "launcher", "launcher_number", "local_threads", "periodic"]

INSTALL_HINT = 'pip install "dlcore[distributed]"'


class DistributedUnavailable(RuntimeError):
    """Distribution was asked for, and mpi4py or an MPI library is missing."""


class LauncherOfAnotherMPI(DistributedUnavailable):
    """A launcher of another MPI than mpi4py's started this process (:func:`init`): every
    process of the job meets it alike, each alone in its MPI."""


def available():
    """Whether mpi4py is installed (its MPI library is loaded only by :func:`init`)."""
    return importlib.util.find_spec("mpi4py") is not None


def _mpi():
    """``mpi4py.MPI``, or DistributedUnavailable naming the fix.

    mpi4py looks for the MPI library in the prefix of the running Python. When mpi4py and the
    ``mpich`` wheel were installed in another environment that this one borrows (a virtualenv
    with system site-packages, or a ``.pth`` file), the library sits in *that* prefix: point
    mpi4py at it, unless the user chose a library with ``MPI4PY_LIBMPI``.
    """
    spec = importlib.util.find_spec("mpi4py")
    if spec is None:
        raise DistributedUnavailable(f"distributed training needs mpi4py and an MPI library: "
                                     f"{INSTALL_HINT}")
    if "MPI4PY_LIBMPI" not in os.environ:
        prefix = os.path.abspath(os.path.join(os.path.dirname(spec.origin), *[os.pardir] * 4))
        libraries = sorted(glob.glob(os.path.join(prefix, "lib", "libmpi.so.*")))
        if libraries and not glob.glob(os.path.join(sys.prefix, "lib", "libmpi.so*")):
            os.environ["MPI4PY_LIBMPI"] = libraries[0]
    try:
        with warnings.catch_warnings():
            # its "suspicious MPI execution environment" (a launcher of another MPI) came in
            # three lines before init()'s own one, on every process of the job
            warnings.filterwarnings("ignore", "suspicious MPI execution environment",
                                    RuntimeWarning)
            from mpi4py import MPI
    except (ImportError, RuntimeError) as error:
        reason = str(error).splitlines()[0]
        raise DistributedUnavailable(f"mpi4py finds no MPI library ({reason}): {INSTALL_HINT} "
                                     "installs one (mpich), or set MPI4PY_LIBMPI to your "
                                     "cluster's libmpi") from None
    return MPI


def launcher():
    """The path of ``mpiexec`` of the MPI that mpi4py loads: beside this Python, beside
    mpi4py's own installation (an environment borrowed through a .pth file), or on PATH;
    DistributedUnavailable when there is none."""
    import shutil
    spec = importlib.util.find_spec("mpi4py")
    folders = [os.path.dirname(sys.executable)]
    if spec is not None:
        folders.append(os.path.join(os.path.dirname(spec.origin), *[os.pardir] * 4, "bin"))
    for folder in folders:
        candidate = os.path.abspath(os.path.join(folder, "mpiexec"))
        if os.path.exists(candidate):
            return candidate
    found = shutil.which("mpiexec")
    if found is None:
        raise DistributedUnavailable(f"no mpiexec found: {INSTALL_HINT} brings MPICH's")
    return found


def launched_rank(environ=None):
    """This process's rank in the job an MPI launcher started, from its environment; 0 when
    none did."""
    return launcher_number(LAUNCHER_RANK_VARIABLES, 0, environ)


def local_threads(ranks_on_this_node, cores=None):
    """Compute threads per rank: the node's cores shared by its ranks, at least one."""
    if cores is None:
        cores = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                 else os.cpu_count() or 1)
    return max(1, cores // max(1, ranks_on_this_node))


def init(timeout=DEFAULT_TIMEOUT, threads="auto", comm=None):
    """Join the MPI job this process was started in and return its :class:`Communicator`.

    Parameters
    ----------
    timeout : float, seconds a collective operation waits for the other ranks before the whole
        job is aborted with one message (no rank is left hanging)
    comm : an mpi4py intracommunicator, optional: the ranks that train together, default
        ``MPI.COMM_WORLD``; e.g. a ``Split`` of it, one group per seed (as Horovod's
        ``hvd.init(comm=...)``). Collective over its ranks. ``fit(comm=...)`` also takes such
        a communicator itself (:func:`.communicator.as_communicator`), with what ``init``
        adds but the threads
    threads : "auto", int or None: Numba's compute threads in this rank, and the blocks its
        products are split into (:func:`dlcore.backend.cpu.use_product_parts`) unless
        ``$DLCORE_PRODUCT_BLOCKS`` is set, which then says how many. "auto": the
        node's cores divided by the job's ranks on the node (``NUMBA_NUM_THREADS`` still caps
        it); None leaves them as they are. For ``comm`` a ``Split`` group, "auto" counts the
        job's ranks on the node where ``init()`` joined the whole job first or the launcher
        says their number (:func:`.communicator.job_on_the_node_from_the_launcher`), else
        only the group's: give a number there where other groups share the node

    Started without ``mpiexec``, the job has one rank and training is the ordinary one. With
    more than one rank, an exception escaping on any rank stops every rank
    (:func:`.communicator.install_abort_on_error`), and a rank interrupted alone makes the
    others stop at their next collective (:meth:`Communicator.watch_interrupts`). Raises
    DistributedUnavailable (one line
    naming ``pip install "dlcore[distributed]"``) without mpi4py or an MPI library.
    """
    MPI = _mpi()
    if threads is not None and not (isinstance(threads, str) and threads == "auto") and (
            not is_integer(threads) or threads < 1):
        raise ValueError(f"threads must be 'auto', a positive integer or None, got {threads!r}")
    if isinstance(comm, Communicator):
        raise TypeError("init(comm=...) takes an mpi4py communicator; this one is already "
                        "dlcore's Communicator: pass it to fit as it is")
    if comm is None:
        _check_the_launcher_is_mpi4py_s(MPI)
    communicator = wrap(MPI.COMM_WORLD if comm is None else comm, timeout=timeout)
    try:
        _set_threads(communicator, threads)
    except KeyboardInterrupt as error:
        # the other ranks watch for this rank's interruption from now on (wrap): told, they
        # stop at their next wait; untold, a sweep's ranks ran all their runs and then stopped
        # the job for want of this rank ("rank 1 ended ..."), with exit code 1
        terminated = terminating_signal(error)
        communicator.interrupt_others(signal.SIGINT if terminated is None else
                                      terminated.signal_number)
        raise
    return communicator


def _check_the_launcher_is_mpi4py_s(MPI, environ=None):
    """LauncherOfAnotherMPI in one line where a launcher started this process as one of R >
    1 but the MPI library mpi4py loaded sees it alone: the launcher is another MPI's (a
    cluster's ``module load openmpi`` and its ``mpirun``, with the ``mpich`` wheel), and every
    process would otherwise train the whole model alone and write the same --out (mpi4py's
    own three-line warning, which :func:`_mpi` silences, said only that the environment
    looked suspicious)."""
    from dlcore._starting import LAUNCHER_SIZE_VARIABLES
    launched = launcher_number(LAUNCHER_SIZE_VARIABLES, 1, environ)
    if launched > 1 and MPI.COMM_WORLD.Get_size() == 1:
        # its name and version: MPICH's first line, Open MPI's text before its first comma
        library = " ".join(MPI.Get_library_version().split(",")[0].split()[:3]) or "its MPI"
        raise LauncherOfAnotherMPI(
            f"a launcher started this process as one of {launched}, but the MPI library that "
            f"mpi4py loads ({library}) sees it alone: the launcher belongs to another MPI; "
            f"start the job with {launcher()} -n {launched} ..., or point mpi4py at the "
            "launcher's MPI (MPI4PY_LIBMPI=/path/to/its/libmpi.so)")


def _set_threads(communicator, threads):
    """Numba's threads of this rank and the blocks of its products (:func:`init`)."""
    if threads is not None:
        import numba
        if threads == "auto":
            # every group of a Split on the node shares its cores: two groups of two ranks on
            # 16 cores took 8 threads a rank, 32 threads
            from .communicator import ranks_sharing_the_node
            threads = local_threads(ranks_sharing_the_node(communicator))
        numba.set_num_threads(min(int(threads), numba.config.NUMBA_NUM_THREADS))
        communicator.threads = numba.get_num_threads()
        if not os.environ.get("DLCORE_PRODUCT_BLOCKS", "").strip():
            # set, the variable keeps the products' blocks, so the bits, alike on every
            # machine whatever its cores (docs/rbm.md, "Reproducibility")
            from dlcore.backend.cpu import use_product_parts
            use_product_parts(communicator.threads)
