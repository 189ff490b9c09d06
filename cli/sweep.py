"""``dlcore sweep``: a grid of training runs, one CSV row per run, over the ranks of an MPI job.

::

    dlcore sweep --grid seed=0,1,2 --grid learning-rate=0.1,0.05 --out runs/sweep.csv \\
        -- dbn finetune runs/dbn/dbn.h5 --epochs 5

**The grid** is the cartesian product of the ``--grid NAME=V1,V2,...`` options in the order
they are given, the last varying fastest, as nested for loops read (and scikit-learn's
``ParameterGrid`` and Hydra's multirun number their runs): run 0 is seed=0 learning-rate=0.1,
run 1 seed=0 learning-rate=0.05, run 2 seed=1 learning-rate=0.1, and so on. NAME is an option
of the command (``learning-rate``, ``--learning-rate`` or ``learning_rate``); a flag takes
``true``/``false``.

**A run** is the ordinary command with its values added as options, invoked in this process
through Click (the kernels compile once for all runs). When the command writes a folder
(``--out``), each run writes its own subfolder ``<out>/run-<k>`` (and ``output.txt``, what the
run printed), so runs never overwrite each other. The command hands its final figures to the
sweep through :func:`dlcore.cli._common.publish_metrics`; nothing printed is parsed.

**The row** of a run: its index, its grid values, status (``ok`` or ``error``) and the one-line
error, the run's final figures, its wall-clock seconds, the rank that ran it and its command
line (the CSV, written and read back by ``--resume``: :mod:`dlcore.cli._sweep_csv`). A
failing run is a row, not the end of the sweep (the sweep then exits with code 1); a bad
grid is refused in one line (exit code 2) before any run starts: every run's command line is
parsed first.

**Over MPI** (``mpiexec -n R dlcore sweep --distributed ...``) rank r runs runs r, r + R,
r + 2R, ... one after another, each rank with its share of the node's cores
(:func:`dlcore.distributed.init`); rank 0 gathers the rows and writes the CSV (atomically).
The runs are whole trainings, not data-parallel ones: nothing is exchanged until the end,
where rank 0 waits for the slowest rank's last run however long it takes. A rank interrupted
alone (a Ctrl-C or SIGTERM to its process) tells the others, which stop within a fraction of
a second, in their current run (saving its checkpoint) or before their next.

**Interrupted**, the sweep writes the rows of the runs that finished (over MPI, those rank 0
gathers within :data:`ARRIVED_ROWS_SECONDS`) and its line names the missing runs and the
command that runs them: the same with ``--resume``, which keeps the CSV's rows, trains a run
the interruption stopped on from its checkpoint (a run whose model file was saved whole gives
its row from that file, trained no more), and writes the uninterrupted sweep's CSV.
"""
import atexit
import contextlib
import difflib
import io
import itertools
import math
import shlex
import signal
import sys
import time
from pathlib import Path

import click

from dlcore.cli import main
from dlcore.cli._common import (
    CHECKPOINT_FILE,
    FINISHED_MODEL_FILES,
    RUNTIME_ERRORS,
    OutFile,
    RunMetrics,
    TrainingInterrupted,
    one_line,
    output_folder,
)
from dlcore.cli._distributed import (
    LAUNCHER_OPTIONS_UNKNOWN,
    _silence_mpi_at_exit,
    _Silent,
    join_job,
    launch_words,
    raise_held_signal,
    warn_unless_distributed,
)
from dlcore.cli._sweep_csv import read_finished_rows, write_rows
from dlcore.distributed import launched_rank
from dlcore.distributed.communicator import DEFAULT_TIMEOUT
from dlcore.io import atomic_open
from dlcore.termination import terminating_signal

#: What stops a sweep: a Ctrl-C or SIGTERM to this rank (said by the run, or heard between
#: runs), or the notice that another rank was (PeerInterrupted, a KeyboardInterrupt).
INTERRUPTIONS = (TrainingInterrupted, click.exceptions.Abort, KeyboardInterrupt)
#: How long rank 0 of an interrupted distributed sweep waits for the other ranks' finished
#: rows (they stop within :data:`~dlcore.distributed.communicator.PEER_POLL_SECONDS` of the
#: interruption and save their run's checkpoint): a rank not heard from by then (killed, or
#: stuck in a kernel that never returns to Python) is left out of the CSV, its runs named
#: missing. Short of a scheduler's grace period between its SIGTERM and its SIGKILL (SLURM's
#: default is 30 s).
ARRIVED_ROWS_SECONDS = 20.0
#: What each run's folder holds besides the command's own files: what the run printed.
RUN_OUTPUT_FILE = "output.txt"


class GridAxis:
    """One ``--grid NAME=V1,V2,...``: the option it sets and the values it takes, as typed."""

    def __init__(self, name, option, values):
        self.name, self.option, self.values = name, option, values

    def arguments(self, value):
        """The command-line words that give the option ``value``."""
        if not self.option.is_flag:
            return [self.option.opts[0], value]
        if click.BOOL.convert(value, self.option, None):
            return [self.option.opts[0]]
        return self.option.secondary_opts[:1]


def parse_grid(specs, command, command_path):
    """The :class:`GridAxis` of each ``--grid`` text, or a usage error naming the text and the
    fix: no ``=``, an empty value, an option ``command`` does not take (or --out, which the
    sweep sets), the same option twice, a flag value that is not true/false."""
    options = {}
    for param in command.params:
        if isinstance(param, click.Option):
            for opt in param.opts:
                options[opt.lstrip("-")] = param
            options.setdefault(param.name, param)
    axes = []
    for spec in specs:
        name, equals, text = spec.partition("=")
        name = name.strip().lstrip("-")
        values = [value.strip() for value in text.split(",")]
        if not equals or not name:
            raise click.BadParameter(f"{spec!r}: give NAME=V1,V2,... (e.g. seed=0,1,2)",
                                     param_hint="--grid")
        if not all(values):
            raise click.BadParameter(f"{spec!r}: a value is empty; give the values separated "
                                     "by single commas (e.g. seed=0,1,2)", param_hint="--grid")
        option = options.get(name) or options.get(name.replace("_", "-"))
        if option is None:
            # Click says "Did you mean" for a misspelt option on the command line, not here
            close = difflib.get_close_matches(name, [opt.lstrip("-") for param in command.params
                                                     if isinstance(param, click.Option)
                                                     for opt in param.opts], n=2)
            hint = f" (did you mean {' or '.join(f'--{opt}' for opt in close)}?)" if close \
                else ""
            raise click.BadParameter(f"{spec!r}: {command_path} has no option --{name}{hint} "
                                     f"(see '{command_path} --help')", param_hint="--grid")
        if option.name == "out":
            raise click.BadParameter(f"{spec!r}: the sweep gives each run its own --out "
                                     "(a folder run-<k> in the command's --out)",
                                     param_hint="--grid")
        if any(axis.option is option for axis in axes):
            raise click.BadParameter(f"{spec!r}: --{name} is in the grid twice; give all its "
                                     "values in one --grid", param_hint="--grid")
        if option.is_flag:
            for value in values:
                try:
                    click.BOOL.convert(value, option, None)
                except click.BadParameter:
                    raise click.BadParameter(f"{spec!r}: --{name} is a flag: its values are "
                                             "true or false", param_hint="--grid") from None
        axes.append(GridAxis(option.opts[0].lstrip("-"), option, values))
    return axes


def grid_points(axes):
    """Every combination of the axes' values, the first axis outermost: a list of tuples."""
    return list(itertools.product(*(axis.values for axis in axes)))


def resolve_command(words):
    """``(names, groups, command, arguments)``: the sub-command the words name (``["rbm",
    "train"]``), the groups above it (``[main, rbm]``), its Click command and the words after
    its name; a usage error when they name none."""
    words = list(words)
    if words[:1] == ["dlcore"]:
        words = words[1:]
    names, groups, command = [], [], main
    while isinstance(command, click.Group):
        name = words[0] if words else None
        found = command.get_command(click.Context(command), name) if name else None
        if found is None:
            given = " ".join(["dlcore", *names, *([name] if name else [])])
            raise click.UsageError(
                f"{given!r} is not a dlcore command: give the command to sweep after the "
                "options, e.g. dlcore sweep --grid seed=0,1 -- rbm train --epochs 5")
        names.append(words.pop(0))
        groups.append(command)
        command = found
    return names, groups, command, words


def without_option(words, option):
    """``words`` without the occurrences of ``option`` (``--out X`` and ``--out=X``)."""
    kept, skip = [], False
    for word in words:
        if skip:
            skip = False
        elif word in option.opts:
            skip = True
        elif not any(word.startswith(opt + "=") for opt in option.opts):
            kept.append(word)
    return kept


class Sweep:
    """The runs of a grid: their command lines, checked before any runs, and running one."""

    def __init__(self, words, specs):
        self.names, self.groups, self.command, arguments = resolve_command(words)
        self.command_path = " ".join(["dlcore", *self.names])
        if not specs:
            raise click.UsageError("give the grid: at least one --grid NAME=V1,V2,...")
        self.axes = parse_grid(specs, self.command, self.command_path)
        out = next((param for param in self.command.params if param.name == "out"), None)
        if any(word == "--distributed" for word in arguments):
            raise click.UsageError("each run of a sweep trains in one process on its rank: "
                                   "drop --distributed from the command (give it to dlcore "
                                   "sweep to spread the runs over the ranks)")
        if any(word.split("=")[0] == "--sync-every" for word in arguments) or any(
                axis.option.name == "sync_every" for axis in self.axes):
            raise click.UsageError("--sync-every sets data-parallel training, and each run of "
                                   "a sweep trains in one process: drop it")
        given = {opt for axis in self.axes
                 for opt in axis.option.opts + axis.option.secondary_opts}
        both = [word.split("=")[0] for word in arguments if word.split("=")[0] in given]
        if both:
            raise click.UsageError(f"{both[0]} is both in the command and in --grid: keep one")
        self.out_option = out if isinstance(out, click.Option) else None
        # --out a folder (the training commands) or a file (rbm sample's PNG)
        self.out_is_folder = self.out_option is not None and getattr(
            self.out_option.type, "file_okay", True) is False
        self.arguments = arguments
        # each run's --resume file, found once (resume_file_of): before the first run trains
        self.resume_files = {}
        base = self.check(arguments, "the command")
        self.base_out = base.get("out") if self.out_option is not None else None
        if self.out_option is not None:
            self.arguments = without_option(arguments, self.out_option)
        self.points = grid_points(self.axes)
        for index in range(len(self.points)):
            self.check(self.run_arguments(index), f"run {index} ({self.describe(index)})")

    def __len__(self):
        return len(self.points)

    def check(self, arguments, what):
        """Parse ``arguments`` as the command would (types, ranges, files that must exist)
        without running it; a usage error names ``what`` failed. Returns the parameters."""
        context = None
        for group, name in zip(self.groups, ["dlcore", *self.names]):
            context = click.Context(group, info_name=name, parent=context)
        try:
            with self.command.make_context(self.names[-1], list(arguments),
                                           parent=context) as parsed:
                return dict(parsed.params)
        except click.UsageError as error:
            raise click.UsageError(f"{what}: {one_line(error.format_message())}",
                                   error.ctx) from None

    def describe(self, index):
        return " ".join(f"{axis.name}={value}"
                        for axis, value in zip(self.axes, self.points[index]))

    def run_out(self, index):
        """Where run ``index`` writes: ``<out>/run-<k>`` for a folder, ``<stem>-run-<k>.png``
        for a file, with k zero-padded to the width of the last index; None without --out."""
        if self.base_out is None:
            return None
        k = str(index).zfill(len(str(len(self) - 1)))
        base = Path(self.base_out)
        if self.out_is_folder:
            return base / f"run-{k}"
        return base.with_name(f"{base.stem}-run-{k}{base.suffix}")

    def run_arguments(self, index):
        words = list(self.arguments)
        for axis, value in zip(self.axes, self.points[index]):
            words += axis.arguments(value)
        out = self.run_out(index)
        if out is not None:
            words += [self.out_option.opts[0], str(out)]
        return words

    def command_line(self, index):
        return shlex.join(["dlcore", *self.names, *self.run_arguments(index)])

    def resume_file_of(self, index):
        """The file that run ``index`` goes on from under ``--resume``, in its --out folder, if
        the command resumes one (--resume); else None. The finished model file that this run
        wrote (``model.h5``, ``dbn.h5``: its training is done, but an interruption, or a killed
        job, lost its row before the figures were written), from which the command trains
        nothing and writes the row; else the checkpoint that a Ctrl-C left."""
        if index not in self.resume_files:
            self.resume_files[index] = self.find_resume_file(index)
        return self.resume_files[index]

    def find_resume_file(self, index):
        """:meth:`resume_file_of` as the files in run ``index``'s folder are now."""
        if not self.out_is_folder or not any(param.name == "resume"
                                             for param in self.command.params):
            return None
        folder = self.run_out(index)
        finished = [folder / name for name in FINISHED_MODEL_FILES if name.endswith(".h5")]
        checkpoint = folder / CHECKPOINT_FILE
        for path in finished:
            if self.made_by_run(path, index) and not (
                    checkpoint.is_file()
                    and checkpoint.stat().st_mtime_ns > path.stat().st_mtime_ns):
                return path
        return checkpoint if checkpoint.is_file() else None

    def made_by_run(self, path, index):
        """Whether ``path`` is a whole model file that run ``index`` of this sweep wrote (its
        training record's command line is the run's: a file another sweep left in the folder
        is not resumed from) and that loads. A model file is written whole and then renamed,
        but one damaged since (a dataset lost to an edit or a faulty disk) gave its run an
        error row on every --resume, "save the model again", which no sweep can: not loading,
        it is no finished run's, and the run trains again.

        A file that cannot be read now for a reason of this machine's (another process holds
        it locked, too many open files, no memory) is no damaged one: training the run again
        would throw away a finished run, and overwrite the file another process is using.
        That raises :class:`click.ClickException` naming the file and the reason instead."""
        import json

        import h5py

        import dlcore
        try:
            # locking=False as dlcore.load reads: a file another process has open is
            # readable, and HDF5's lock refusal is no sign of damage
            with h5py.File(path, "r", locking=False) as handle:
                record = json.loads(handle.attrs["training_record"])
        except FileNotFoundError:
            return False
        except OSError as error:
            if error.errno is None:   # HDF5's own refusal: truncated, no HDF5 signature
                return False
            raise self.unreadable(path, index, error) from error
        except (KeyError, ValueError, TypeError):
            return False
        line = record.get("command_line") if isinstance(record, dict) else None
        run_line = " ".join(["dlcore", *self.names, *self.run_arguments(index)])
        if not (isinstance(line, str) and (line == run_line or line.startswith(
                run_line + " --resume "))):
            return False
        try:
            dlcore.load(path)
        except dlcore.ModelFileError:   # damaged or foreign: not a finished run's
            return False
        except (OSError, MemoryError) as error:
            raise self.unreadable(path, index, error) from error
        return True

    @staticmethod
    def unreadable(path, index, error):
        """The one-line error for run ``index``'s model file ``path`` that ``error`` (of the
        machine, not the file) stopped --resume from reading."""
        reason = one_line(error) or type(error).__name__
        return click.ClickException(
            f"cannot tell whether run {index} finished: reading {path} failed ({reason}); "
            "run the sweep with --resume again once that is resolved (nothing was run, so "
            "that a finished run is not trained again and lost)")

    def run(self, index, rank=0, resume=False, comm=None):
        """Run ``index`` in this process: its row (a dict). Ctrl-C stops the sweep.
        ``resume``: a run that an interrupted sweep stopped trains on from the checkpoint it
        left (its row is the uninterrupted run's, command line included). ``comm``: the
        communicator of a distributed sweep, whose other ranks' interruptions stop the run
        within a fraction of a second (``Communicator.hearing_peers_while_busy``)."""
        arguments = [*self.names, *self.run_arguments(index)]
        checkpoint = self.resume_file_of(index) if resume else None
        earlier = ""
        if checkpoint is not None:
            arguments += ["--resume", str(checkpoint)]
            earlier = self.printed_before(index)   # the resumed run's output goes on after it
        metrics, printed = RunMetrics(), io.StringIO()
        status, error = "ok", ""
        argv = sys.argv
        # the model files' training record names the run's own command line (sys.argv)
        sys.argv = ["dlcore", *arguments]
        started = time.perf_counter()
        try:
            with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed), (
                    contextlib.nullcontext() if comm is None else
                    comm.hearing_peers_while_busy()):
                code = click.Group.main(main, arguments, prog_name="dlcore",
                                        standalone_mode=False, obj=metrics)
            if isinstance(code, int) and code != 0:
                status, error = "error", f"exit code {code}"
        except INTERRUPTIONS as stop:
            # what the run printed up to the interruption, and where it saved: kept in its
            # folder as a finished run's is
            self.save_printed(index, earlier + printed.getvalue()
                              + f"{one_line(stop) or 'interrupted'}\n")
            raise
        except (click.ClickException, *RUNTIME_ERRORS) as failure:
            status = "error"
            error = one_line(failure.format_message() if isinstance(
                failure, click.ClickException) else failure) or type(failure).__name__
        except Exception as failure:   # noqa: BLE001 (a bug in one run is that run's row)
            status, error = "error", f"{type(failure).__name__}: {one_line(failure)}"
        finally:
            seconds = time.perf_counter() - started
            sys.argv = argv
        self.save_printed(index, earlier + printed.getvalue())
        return {"run": index, **{axis.name: value for axis, value in
                                 zip(self.axes, self.points[index])},
                "status": status, "error": error, **metrics, "seconds": f"{seconds:.3f}",
                "rank": rank, "command": self.command_line(index)}

    def printed_before(self, index):
        """What run ``index`` printed before an interruption stopped it (its ``output.txt``),
        or ""."""
        try:
            return (self.run_out(index) / RUN_OUTPUT_FILE).read_text()
        except (OSError, UnicodeDecodeError):
            return ""

    def save_printed(self, index, text):
        """What run ``index`` printed, as ``output.txt`` in its folder (when it has one)."""
        if not self.out_is_folder:
            return
        out = self.run_out(index)
        with contextlib.suppress(OSError):   # a run that could not make its folder says so
            out.mkdir(parents=True, exist_ok=True)
            with atomic_open(out / RUN_OUTPUT_FILE, "w") as stream:
                stream.write(text)


def run_list(indices):
    """``"3, 5 and 7"``: run indices as a sentence names them."""
    names = [str(index) for index in sorted(indices)]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def sweep_resume_command(specs, out, distributed, command, ranks):
    """The command line that resumes this sweep (its options and ``--resume``)."""
    words = ["dlcore", "sweep"]
    for spec in specs:
        words += ["--grid", spec]
    words += ["--out", str(out), *(["--distributed"] if distributed else []), "--resume",
              "--", *command]
    if not distributed:
        return shlex.join(words)
    launcher, known = launch_words(ranks)   # as the job was launched (its host file, ...)
    return shlex.join([*launcher, *words[1:]]) + ("" if known else
                                                  " " + LAUNCHER_OPTIONS_UNKNOWN)


def stopped_sweep(stop, index, rows, finished, comm, runs, specs, out, distributed, command,
                  as_it_started=False):
    """Write the rows of the runs that finished before the interruption ``stop`` and raise
    the line naming the missing runs and the command that runs them (on rank 0; the other
    ranks of a distributed sweep send rank 0 their rows and stop silently). ``index`` is
    the run the interruption stopped this rank in, None when it had run all its runs (it
    was waiting for the others at the end). ``as_it_started``: the signal came before any
    run, while the ranks started (held until they joined MPI)."""
    size = comm.size if comm is not None else 1
    if size > 1:   # the others stop before their next run (or in its compilation)
        terminated = terminating_signal(stop)
        comm.interrupt_others(signal.SIGINT if terminated is None else
                              terminated.signal_number)
        arrived = comm.gather_arrived((index, rows), ARRIVED_ROWS_SECONDS)
        # MPICH's note at MPI_Finalize of the requests the interruption left pending ("Builtin
        # communicator ... has pending 1 references") says nothing to the user: after the line
        atexit.register(_silence_mpi_at_exit)
        if not comm.is_root:   # rank 0 says the job's line
            sys.stdout = sys.stderr = _Silent()
            raise stop
        stopped_in = sorted(stopped for stopped, _ in arrived.values() if stopped is not None)
        rows = [row for _, part in arrived.values() for row in part]
    else:
        stopped_in = [] if index is None else [index]
    rows = [*rows, *finished.values()]
    # with no run finished too: the CSV that --resume goes on from (its header), and the line
    # that says so (it was the interrupted run's own, whose resume ran that run alone)
    write_rows(out, rows, runs.axes)
    missing = sorted(set(range(len(runs))) - {int(row["run"]) for row in rows})
    where = (f" in run {run_list(stopped_in)}" if len(stopped_in) == 1 else
             f" in runs {run_list(stopped_in)}" if stopped_in else "")
    names_missing = (f" (run{'s' if len(missing) > 1 else ''} {run_list(missing)} missing); "
                     "run the missing ones with: "
                     f"{sweep_resume_command(specs, out, distributed, command, size)}"
                     if missing else "")
    # a run's words in parentheses; none ran: the sweep's own, without the run's "interrupted
    # as it started (loading its libraries): nothing was run" nested in them
    said = (" as it started, before any run" if as_it_started else
            f"{where} ({run_said(stop)})")
    raise TrainingInterrupted(
        f"sweep interrupted{said}; wrote "
        + (f"the {len(rows)} finished run{'s' if len(rows) > 1 else ''}" if rows else
           "no finished run (none had finished: its header)") + f" to {out}{names_missing}"
        ) from None


def run_said(stop):
    """What the run that ``stop`` interrupted said, less the command it offered to go on with
    (that run's own, alone: the sweep's line gives the sweep's, which goes on with it)."""
    said = one_line(stop) or "interrupted"
    for offer in ("; resume with: ", " with: dlcore ", " with: mpiexec "):
        said = said.split(offer)[0]
    return said


def summary(rows, path, ranks):
    failed = sum(row["status"] != "ok" for row in rows)
    over = f" over {ranks} ranks" if ranks > 1 else ""
    outcome = "all ok" if not failed else f"{failed} failed: see the error column"
    return failed, f"{len(rows)} runs{over}, {outcome}; wrote {path}"


@main.command(context_settings={"allow_interspersed_args": False})
@click.option("--grid", "specs", multiple=True, metavar="NAME=V1,V2,...",
              help="An option of the command and its values; several --grid: every "
                   "combination (the first outermost).")
@click.option("--out", type=OutFile(), default=Path("runs/sweep.csv"), show_default=True,
              help="The CSV file: one row per run.")
@click.option("--dry-run", is_flag=True,
              help="Print each run's command line (with --resume, of the runs it would run); "
                   "run nothing.")
@click.option("--distributed", is_flag=True,
              help="Spread the runs over the ranks of the MPI job this command runs in "
                   "(mpiexec -n R dlcore sweep ...): rank r runs runs r, r + R, ...; rank 0 "
                   'writes --out. Needs pip install "dlcore[distributed]".')
@click.option("--resume", is_flag=True,
              help="Keep the rows that --out already holds (the CSV of an interrupted sweep "
                   "with this grid and command) and run only the runs it lacks, those that the "
                   "interruption stopped from the checkpoint they left (or, trained, from "
                   "their model file: no training again); the CSV is then that of an "
                   "uninterrupted sweep.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def sweep(specs, out, dry_run, distributed, resume, command):
    """Run a dlcore training COMMAND once per point of a grid; one CSV row per run with its
    final figures (loss, accuracy, reconstruction error, ...).

    \b
    dlcore sweep --grid seed=0,1,2 --grid learning-rate=0.1,0.05 \\
        --out runs/sweep.csv -- dbn finetune runs/dbn/dbn.h5 --epochs 5

    Each run is the command with the grid's values added; a command that writes a folder
    (--out) writes run-<k> inside it per run. A failed run is a row with its error (exit code
    1 at the end); a bad grid is refused before any run starts.
    """
    runs = Sweep(command, specs)
    finished = read_finished_rows(out, runs) if resume else {}
    if dry_run:   # what this command would run: with --resume, the runs the CSV lacks
        if distributed and launched_rank() != 0:
            return   # every rank would print the same plan: rank 0's is the job's (no MPI)
        for index in range(len(runs)):
            if index in finished:
                continue
            checkpoint = runs.resume_file_of(index) if resume else None
            line = runs.command_line(index) + (
                f" --resume {shlex.quote(str(checkpoint))}" if checkpoint else "")
            click.echo(f"run {index}: {line}")
        if finished:
            click.echo(f"({len(finished)} finished before, in {out}, kept)")
        return
    # now, not after hours of runs; a CSV that is there and writable in a folder that takes
    # no new file (a hand-in folder) is written in place, as the PNG of rbm sample is
    output_folder(out.parent, exclusive=False, for_file=out)
    warn_unless_distributed(distributed, what="runs every run")
    comm = None
    if distributed:
        comm = join_job(timeout=math.inf)
        try:
            raise_held_signal()
        except INTERRUPTIONS as stop:   # no run started: it names them all
            stopped_sweep(stop, None, [], finished, comm, runs, specs, out, distributed,
                          command, as_it_started=True)
    rank, size = (comm.rank, comm.size) if comm is not None else (0, 1)
    pending = [index for index in range(len(runs)) if index not in finished]
    if resume:
        # which file each run goes on from, before any run trains: a file this machine
        # cannot read now stops the sweep here in one line, with nothing trained or lost
        problem = None
        try:
            try:
                for index in pending[rank::size]:
                    runs.resume_file_of(index)
            except click.ClickException as error:
                problem = error.format_message()
            if size > 1:
                # on every rank: a rank stopped alone left the others to train all their runs
                # and then stop the job at the gather, for want of it, with no CSV
                problems = comm.gather(problem, "checking the runs' files")
                problem = comm.broadcast(next(filter(None, problems), None) if comm.is_root
                                         else None, "checking the runs' files")
        except INTERRUPTIONS as stop:   # no run started (the files of many take a while)
            stopped_sweep(stop, None, [], finished, comm, runs, specs, out, distributed,
                          command, as_it_started=True)
        if problem is not None:
            if rank != 0:   # rank 0 says it for the job
                sys.stdout = sys.stderr = _Silent()
            raise click.ClickException(problem)
    if rank == 0:
        threads = f", {comm.threads} thread{'s' if comm.threads != 1 else ''} each" if (
            size > 1 and comm.threads) else ""
        kept = f" ({len(finished)} finished before, kept)" if finished else ""
        click.echo(f"{len(runs)} runs of {runs.command_path}{kept}"
                   + (f" over {size} ranks{threads}" if size > 1 else ""), err=True)
    rows = []
    for index in pending[rank::size]:
        started = None   # the run this rank is in: none until it starts
        try:
            if size > 1:
                # another rank was interrupted (a Ctrl-C or SIGTERM to it alone): stop now, not
                # after every run of this rank, to fail at the gather for want of that rank
                comm.check_interrupts()
            started = index
            rows.append(runs.run(index, rank, resume, comm if size > 1 else None))
        except INTERRUPTIONS as stop:
            stopped_sweep(stop, started, rows, finished, comm, runs, specs, out, distributed,
                          command)
        row = rows[-1]
        click.echo(f"run {index} ({runs.describe(index)})"
                   + (f" on rank {rank}" if size > 1 else "")
                   + f": {row['status']} in {float(row['seconds']):.1f} s"
                   + (f": {row['error']}" if row["error"] else ""), err=True)
    failed, message = 0, ""
    own_rows = rows
    if size > 1:
        try:
            gathered = comm.gather(rows, "collecting the runs' rows")
        except INTERRUPTIONS as stop:
            # this rank ran all its runs, another is still in one: its rows are kept too
            stopped_sweep(stop, None, rows, finished, comm, runs, specs, out, distributed,
                          command)
        comm.timeout = DEFAULT_TIMEOUT   # the ranks are all here now
        if comm.is_root:
            rows = [row for part in gathered for row in part]
    rows += finished.values()
    if rank == 0:
        try:
            write_rows(out, rows, runs.axes)
            failed, message = summary(rows, out, size)
        except OSError as error:
            failed, message = -1, one_line(error)
    if size > 1:
        try:
            failed, message = comm.broadcast((failed, message), "the sweep's outcome")
        except INTERRUPTIONS as stop:
            if comm.is_root:   # after the CSV of every run
                raise
            # this rank's rows left in the gather (a small message needs no receiver to leave),
            # but rank 0, still in a run, never took them: they go to what it gathers now
            stopped_sweep(stop, None, own_rows, finished, comm, runs, specs, out,
                          distributed, command)
    if failed < 0:
        if rank != 0:   # rank 0 says it for the job
            sys.stdout = sys.stderr = _Silent()
        raise click.ClickException(message)
    if rank == 0:
        click.echo(message)
    if failed:
        click.get_current_context().exit(1)
