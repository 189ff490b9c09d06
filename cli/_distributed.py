"""``--distributed``: what the training commands share to train data-parallel under
``mpiexec -n R dlcore ...`` (:mod:`dlcore.distributed`).

Rank 0 alone prints and writes the --out folder; the other ranks train alongside it silently and
write what the command writes into a temporary folder of their own, removed at the end (so no
two processes ever write one file). The threads of each rank (the node's cores / its ranks) are
said once, at the start. A failure on any rank (a bad file, a diverged training) stops every
rank with one line naming the rank (the lowest failing rank's, in one process's words: an error
every rank meets is said once), after the rank has done what one process does on its way out:
its temporary folder removed, the --out lock released. The others would otherwise wait in their
next sum. Ctrl-C,
which the launcher passes to every rank, is no failure: rank 0 saves the checkpoint and prints
the one line that resumes the run (``mpiexec -n R ... --resume``), the other ranks remove their
folders and end quietly, and the job exits with 130, as one process does (143 for the SIGTERM
of a scheduler's time limit, which the launcher passes on too). A SIGINT or SIGTERM to one
rank alone ends the job so too: that rank tells the others, which stop at their next sum
(:meth:`dlcore.distributed.Communicator.interrupt_others`), rank 0's line names the rank and
the signal ("interrupted by SIGTERM to rank 1 of 2: saved ...") and the job exits with 128 +
that signal.
"""
import atexit
import contextlib
import functools
import io
import os
import shutil
import signal
import sys
import tempfile

import click

from dlcore._starting import LAUNCHER_SIZE_VARIABLES, take_held_signal
from dlcore.distributed import launched_rank, launcher_number
from dlcore.termination import interruption_behind, terminating_signal

from ._common import (
    RUNTIME_ERRORS,
    RunMetrics,
    TrainingInterrupted,
    one_line,
)


class _Silent(io.TextIOBase):
    """A text stream that drops what it is given: the other ranks' stdout and stderr."""

    def writable(self):
        return True

    def write(self, text):
        return len(text)


def distributed_option(command):
    """Decorator of a training command (innermost, just above ``def``): the --distributed
    flag and --sync-every; the command receives ``comm`` (a Communicator, or None) instead,
    and its ``out`` is the folder this rank writes in (:func:`data_parallel`). With
    --sync-every K > 1, ``comm`` is the communicator's :class:`Periodic` view, which the
    ``fit`` that gets it through :func:`fit_options` trains with local SGD."""
    @functools.wraps(command)
    def run(*args, distributed=False, sync_every=1, **options):
        if sync_every != 1 and not distributed:
            raise click.UsageError(f"--sync-every {sync_every} needs --distributed (it is the "
                                   "number of local steps between the ranks' all-reduces)")
        warn_unless_distributed(distributed)
        with data_parallel(distributed, options["out"], sync_every) as (comm, out):
            options["out"] = out
            return command(*args, comm=comm, **options)

    run = click.option(
        "--sync-every", type=click.IntRange(min=1), default=1, show_default=True,
        metavar="K",
        help="With --distributed: local steps between two all-reduces. 1 is exact (every "
             "step sums the ranks' gradients: the result of one process); K > 1 is local SGD, "
             "each rank stepping on its shards alone and the parameters and optimiser state "
             "averaged every K steps and at each epoch's end: K times fewer all-reduces for a "
             "slow network, a result that is no longer one process's (docs/distributed.md).")(
        run)
    return click.option(
        "--distributed", is_flag=True,
        help="Train data-parallel over the ranks of the MPI job this command runs in "
             "(mpiexec -n R dlcore ...): rank 0 alone prints and writes --out. Needs "
             'pip install "dlcore[distributed]".')(run)


def launched_ranks(environ=None):
    """The number of ranks an MPI launcher (MPICH's or Open MPI's mpiexec, srun) started this
    process as one of, from its environment; 1 when none did."""
    return launcher_number(LAUNCHER_SIZE_VARIABLES, 1, environ)


#: The launchers whose command line a rank finds among its ancestors (MPICH's Hydra and Open
#: MPI start the ranks of their own node through a proxy process, a child of theirs).
LAUNCHER_PROGRAMS = ("mpiexec", "mpirun", "orterun", "prterun")
#: The processes through which an MPI launcher starts the ranks of a node (MPICH's and Intel
#: MPI's Hydra, Open MPI 4 and 5): a rank below one was started by mpiexec, even where Slurm
#: started the proxy (``mpiexec`` in a Slurm job), not by ``srun``.
LAUNCHER_PROXIES = ("hydra_pmi_proxy", "pmi_proxy", "orted", "prted")
#: How far up its ancestors a rank looks for the launcher (rank, proxy, launcher: two).
LAUNCHER_ANCESTORS = 4
#: Said after a resume command whose launcher's options are not known.
LAUNCHER_OPTIONS_UNKNOWN = ("(start it as you started this job: add the launcher's other "
                            "options, such as its host file)")


def _ancestor_command_lines(depth=LAUNCHER_ANCESTORS):
    """The command lines (lists of words) of this process's parent, its parent's parent, ...
    (``depth`` at most), read from /proc; none where /proc cannot tell."""
    lines, pid = [], os.getppid()
    for _ in range(depth):
        if pid <= 1:
            break
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as stream:
                words = [word.decode(errors="replace")
                         for word in stream.read().split(b"\0")[:-1]]
            with open(f"/proc/{pid}/stat", "rb") as stream:
                pid = int(stream.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
        lines.append(words)
    return lines


def launch_words(ranks, argv=None, ancestors=None, environ=None, orig_argv=None):
    """``(words, known)``: the words that start this job again as the user started it, up to
    and including the program, which a resume command goes on after (``mpiexec -f hosts -n 4
    dlcore``, ``mpirun -np 4 python -m dlcore``), from the launcher's command line among this
    process's ancestors (``ancestors``: their command lines, nearest first) less this
    process's own arguments (``argv``: ``sys.argv``); ``known`` True. Under ``srun`` (Slurm's
    environment, ``environ``, says that it started this process's step, and no MPI launcher's
    proxy did): ``srun -N nodes -n ranks [--mpi=...] [-c cpus] dlcore`` and True. Else, on
    another node than the launcher's: ``mpiexec -n ranks dlcore`` and False (a host file,
    ``-ppn`` are not known: :data:`LAUNCHER_OPTIONS_UNKNOWN`). The program is ``dlcore``, or
    ``python -m dlcore`` as its command line typed it (``orig_argv``: ``sys.orig_argv``)."""
    argv = sys.argv if argv is None else argv
    arguments = list(argv[1:])
    ancestors = _ancestor_command_lines() if ancestors is None else ancestors
    for words in ancestors:
        program = os.path.basename(words[0]) if words else ""
        if not program.startswith(LAUNCHER_PROGRAMS):
            continue
        if len(words) > len(arguments) + 1 and (
                not arguments or words[-len(arguments):] == arguments):
            return words[:len(words) - len(arguments)], True
        break
    program = program_words(argv, orig_argv)
    slurm = srun_options(ranks, ancestors, environ)
    if slurm is not None:
        return ["srun", *slurm, *program], True
    return ["mpiexec", "-n", str(ranks), *program], False


def program_words(argv=None, orig_argv=None):
    """How this process's command line names dlcore: ``python -m dlcore`` (the interpreter and
    its options as typed) for the module, else ``dlcore`` (the script, found on the PATH)."""
    argv = sys.argv if argv is None else argv
    orig_argv = getattr(sys, "orig_argv", []) if orig_argv is None else orig_argv
    arguments = list(argv[1:])
    if arguments and list(orig_argv[-len(arguments):]) != arguments:
        return ["dlcore"]
    head = list(orig_argv[:len(orig_argv) - len(arguments)])
    return head if head[-2:] == ["-m", "dlcore"] and len(head) > 2 else ["dlcore"]


def srun_options(ranks, ancestors, environ=None):
    """The options of the ``srun`` that started this job's ``ranks`` tasks (``-N`` nodes,
    ``-n`` tasks, ``--mpi``, ``-c`` cpus per task, read from the variables Slurm sets in a
    step's tasks), or None where srun did not: outside a step, a step of another number of
    tasks, or a rank below an MPI launcher's proxy (``mpiexec`` in a Slurm job, whose proxies
    Slurm may start)."""
    environ = os.environ if environ is None else environ
    if "SLURM_STEP_ID" not in environ or any(
            os.path.basename(words[0]).startswith(LAUNCHER_PROXIES)
            for words in ancestors if words):
        return None
    tasks = launcher_number(("SLURM_STEP_NUM_TASKS", "SLURM_NTASKS"), 0, environ)
    if tasks != ranks:
        return None
    nodes = launcher_number(("SLURM_STEP_NUM_NODES", "SLURM_NNODES"), 0, environ)
    options = (["-N", str(nodes)] if nodes else []) + ["-n", str(ranks)]
    mpi = environ.get("SLURM_MPI_TYPE", "")
    if mpi and mpi != "none":
        options.append(f"--mpi={mpi}")
    cpus = launcher_number(("SLURM_CPUS_PER_TASK",), 0, environ)
    if cpus:
        options += ["-c", str(cpus)]
    return options


def warn_unless_distributed(distributed, what="trains the whole model alone"):
    """One line on stderr when an MPI launcher started R > 1 copies of a command that was not
    given --distributed: each copy would do all the work and write the same --out. Said by
    rank 0 alone: one line for the job."""
    ranks = launched_ranks()
    context = click.get_current_context(silent=True)
    in_sweep = context is not None and context.find_object(RunMetrics) is not None
    # a sweep's runs: its ranks share them; every rank meets the same warning: rank 0 says it
    if not distributed and ranks > 1 and not in_sweep and launched_rank() == 0:
        click.echo(f"dlcore: warning: started as one of {ranks} MPI processes without "
                   f"--distributed: each {what} and writes the same --out; add --distributed "
                   "to share the work", err=True)


def join_job(**options):
    """``dlcore.distributed.init(**options)`` for a command's ``--distributed``; where a
    launcher of another MPI started the job, its rank 0 alone says so and ends with code 1,
    the job's, and the others end unsaid with code 0: each process is alone in its MPI and
    meets the same launcher (``mpirun -n 8`` printed the line eight times). Not with code 1:
    Open MPI's ``mpirun`` (and ``srun --kill-on-bad-exit``) kills every other process of the
    job at the first that ends with a code other than 0, and a rank 0 that reached this
    point a moment later (started or imported later than the others) was killed before it
    said the line: the job ended with the launcher's own lines alone."""
    import dlcore.distributed
    try:
        return dlcore.distributed.init(**options)
    except dlcore.distributed.LauncherOfAnotherMPI:
        if launched_rank() != 0:
            sys.exit(0)
        raise


def fit_options(comm):
    """The keyword a ``fit`` takes to train data-parallel: none without a communicator."""
    return {} if comm is None else {"comm": comm}


@contextlib.contextmanager
def data_parallel(distributed, out, sync_every=1):
    """``(comm, folder)``: the communicator (None without ``distributed``; averaging every
    ``sync_every`` steps) and the folder this rank writes in (``out`` on rank 0, a temporary
    one elsewhere)."""
    if not distributed:
        yield None, out
        return
    import dlcore.distributed
    comm = dlcore.distributed.periodic(join_job(), sync_every)
    if comm.is_root:
        averaging = (f", parameters averaged every {sync_every} steps (local SGD)"
                     if sync_every > 1 else "")
        if comm.size == 1:
            # --distributed typed without the launcher: it said "over 1 ranks" and went on,
            # one process training alone, with no word of how to share the work
            click.echo(f"data-parallel training over 1 rank: this process alone, not started by "
                       f"an MPI launcher (mpiexec -n R {' '.join(program_words())} ... trains "
                       f"over R ranks), {comm.threads} thread{'s' if comm.threads != 1 else ''}",
                       err=True)
        else:
            click.echo(f"data-parallel training over {comm.size} ranks, {comm.threads} thread"
                       f"{'s' if comm.threads != 1 else ''} each (the node's cores / its ranks)"
                       f"{averaging}", err=True)
        folder = out
    else:
        sys.stdout = sys.stderr = _Silent()
        folder = tempfile.mkdtemp(prefix=f"dlcore-rank{comm.rank}-")
    try:
        raise_held_signal()
        yield comm, folder
    except BaseException as caught:
        # a Ctrl-C that Python dropped (while Numba compiled a kernel) and the failure it
        # caused: the interruption, not a failure that aborts the job with "rank 1 of 2: ..."
        error = interruption_behind(caught)
        if interrupted(error):
            # Ctrl-C ends every rank on its own, with exit code 130: no MPI_Abort (its exit
            # code 1 and its lines); rank 0 has said what it saved. A SIGINT to this rank alone
            # reached no other: they stop at their next sum, told here (not at the timeout).
            terminated = terminating_signal(error)
            comm.interrupt_others(signal.SIGINT if terminated is None else
                                  terminated.signal_number)
            if not comm.is_root:
                shutil.rmtree(folder, ignore_errors=True)
            atexit.register(_silence_mpi_at_exit)
            if error is caught:
                raise
            raise error from None
        if isinstance(error, click.UsageError):
            # a bad value that the command checks itself (--digits 0-12): every rank parses the
            # same command line and meets it, so it is the job's usage error, said by rank 0 as
            # one process says it (the others' stderr is silenced), exit code 2 on every rank;
            # aborting made it "rank 0 of 2: ..." and exit code 1
            raise
        if comm.size > 1:
            if isinstance(error, click.ClickException):
                message = one_line(error.format_message())
            else:   # one process's wording (OneLineErrorGroup) for the errors it words so
                message = one_line(error) or type(error).__name__
                if not isinstance(error, RUNTIME_ERRORS):
                    message = f"{type(error).__name__}: {message}"
            # MPI_Abort ends the process here: what one process does on its way out first
            if not comm.is_root:
                shutil.rmtree(folder, ignore_errors=True)
            _close_contexts()   # the --out lock, the folders this run created and left empty
            comm.abort(message)
        raise
    finally:
        if not comm.is_root:
            shutil.rmtree(folder, ignore_errors=True)


def raise_held_signal():
    """Raise the interruption of the signal this rank got while it started (held until the
    ranks joined MPI: :func:`dlcore._starting.take_held_signal`), as a command's message,
    from the :class:`dlcore.Terminated` of a SIGTERM or SIGHUP: the command then tells the
    others as it does for any interruption of one rank. Nothing without one."""
    number = take_held_signal()
    if number is None:
        return
    from dlcore import Terminated
    cause = KeyboardInterrupt() if number == signal.SIGINT else Terminated(number)
    raise TrainingInterrupted("interrupted as it started (loading its libraries): nothing "
                              "was run") from cause


def _close_contexts():
    """Run what the Click contexts of the running command do when they close (release the
    --out folder's lock, remove the folders the command created and left empty), as one
    process does when its command fails."""
    context = click.get_current_context(silent=True)
    while context is not None:
        context.close()
        context = context.parent


def interrupted(error):
    """Whether ``error`` is a Ctrl-C: a KeyboardInterrupt, the :class:`TrainingInterrupted`
    a training command made of it, or Click's Abort caused by one."""
    if isinstance(error, (KeyboardInterrupt, TrainingInterrupted)):
        return True
    return isinstance(error, click.exceptions.Abort) and isinstance(
        error.__cause__ or error.__context__, KeyboardInterrupt)


def _silence_mpi_at_exit():
    """Point the process's stderr at /dev/null once the command has said its last line (run
    before mpi4py's MPI_Finalize, registered earlier): MPICH notes there the requests a Ctrl-C
    left pending in the sum it interrupted, which say nothing to the user."""
    with contextlib.suppress(OSError):
        sys.stderr.flush()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
