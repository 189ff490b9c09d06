"""What every ``dlcore`` command shares: one-line errors, common options, progress bars, output
folders."""
import contextlib
import difflib
import functools
import json
import math
import operator
import os
import re
import shlex
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import click
from click.core import ParameterSource

from dlcore import _starting
from dlcore.backend import BACKEND_NAMES
from dlcore.callbacks import Callback
from dlcore.distributed import launched_rank
from dlcore.errors import TrainingDiverged
from dlcore.io import NoRoomError
from dlcore.io import save as save_model
from dlcore.io.atomic import (
    FolderInUseError,
    FolderNotWritableError,
    UnwritableNameError,
    WriteProtectedError,
    lock_folder,
    refuse_write_protected,
    shell_word,
    shown_path,
)
from dlcore.termination import (
    TERMINATION_SIGNALS,
    interrupt_on_termination,
    interruption_behind,
    noting_dropped_interruptions,
    raise_terminated,
    take_dropped_interruption,
    terminating_signal,
)
from dlcore.wording import count, listed, with_article

# Errors the library raises on bad input or missing resources, and training that diverged:
# shown as one line, exit code 1.
RUNTIME_ERRORS = (ValueError, OSError, RuntimeError, TrainingDiverged)
#: The file an interrupted (Ctrl-C) or checkpointing training command saves in --out; its
#: --resume option continues from it.
CHECKPOINT_FILE = "checkpoint.h5"
#: The files a training command writes in --out when it finishes (dbn pretrain: dbn.h5;
#: homework pretraining, whose stages each save a model, and homework regularisation, whose
#: rows each save the checkpoint: their table, written last).
FINISHED_MODEL_FILES = ("model.h5", "dbn.h5", "pretraining.csv", "regularisation.csv")
#: The exit code of a command stopped by Ctrl-C (128 + SIGINT, as shells report it); one that
#: SIGTERM or SIGHUP stopped exits with 128 + that signal (143, 129).
INTERRUPTED_EXIT_CODE = 130
#: Training images from which `cnn train`, `dbn pretrain` and `dbn finetune` take their
#: large-data-set defaults (mnist-5k's 4,000 lie below it, Fashion-MNIST's 60,000 above).
SMALL_DATA_SET = 10_000


def one_line(text):
    """Collapse a message onto one line (some library messages list files on several):
    its lines joined by "; ", but a line that ends in ":" or "," runs on with a space (Click
    lists the choices of a missing option one per line: "Choose from:", "keras,", "dlcore")."""
    joined = ""
    for part in (part.strip() for part in str(text).splitlines()):
        if part:
            separator = " " if joined.endswith((":", ",")) else "; "
            joined = f"{joined}{separator}{part}" if joined else part
    return joined


#: What an option means, for the options of that name that many commands share and that had
#: no help of their own: a student reading --help saw "--batch-size INTEGER RANGE [default: 20;
#: x>=1]" with neither the unit (images? batches?) nor the meaning. An option's own help wins.
SHARED_OPTION_HELP = {
    "--epochs": "Passes over the training data.",
    "--batch-size": "Training images per mini-batch: one update of the weights each.",
    "--learning-rate": "Step size of each update (epsilon in the lectures' update rules).",
    "--hidden": "Hidden units.",
    "--momentum": "Fraction of the previous update added to each update (0: none).",
    "--weight-decay": "L2 weight decay: the gradient of W gains - (this) * W (0: none).",
    "--cd-k": "Gibbs steps k of the negative phase of CD-k (1: the lecture's CD-1).",
    "--seed": "Seed of the Philox generator.",
    "--n": "Fantasies drawn: the images of the PNG's grid.",
    "--out": "The PNG image written.",
    "--per-digit": "Held-out images of each class the PNG shows (the printed errors are of "
                   "every held-out image of the class).",
    "--optimizer": "The update rule of the gradient steps.",
    "--validation-split": "Fraction of the training images held out to validate on after "
                          "each epoch (never trained on).",
    "--patience": "Epochs without a better validation loss before early stopping ends the "
                  "training.",
    "--repeats": "Timed runs of each contender.",
}


def describe_shared_options(command):
    """Give each option of ``command`` and of its sub-commands that has no help the meaning in
    :data:`SHARED_OPTION_HELP`, so that --help says what every option is and its unit."""
    for parameter in command.params:
        if isinstance(parameter, click.Option) and not parameter.help:
            parameter.help = SHARED_OPTION_HELP.get(parameter.opts[0])
    for sub_command in getattr(command, "commands", {}).values():
        describe_shared_options(sub_command)


class _NamesTheNumber:
    """A Click number range whose text that is no number (``--epochs 1.5``, ``--hidden ten``)
    is refused naming the number it takes and its range: Click said "'1.5' is not a valid
    integer range.", the name of its type, which read as if a range such as 1-5 was wanted
    (the class options take those) and named no fix."""

    #: The number the option takes, as the message names it.
    number = "a number"

    def convert(self, value, param, ctx):
        if isinstance(value, str):
            try:
                self._number_class(value)
            except ValueError:
                self.fail(f"{value!r} is not {self.number}; give {self.number} in the range "
                          f"{self._describe_range()}", param, ctx)
        return super().convert(value, param, ctx)


class WholeNumberRange(_NamesTheNumber, click.IntRange):
    """A ``click.IntRange`` that names a whole number where the text is none."""

    number = "a whole number"


class FiniteFloatRange(_NamesTheNumber, click.FloatRange):
    """A ``click.FloatRange`` that refuses nan and inf: Click's range lets nan through (it
    compares false with both bounds) and inf through an open top, and the value then failed
    deep inside ("learning_rate must be a finite number", "cannot convert float NaN to
    integer") without naming the option."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value} is not a finite number; give a number in the range "
                      f"{self._describe_range()}", param, ctx)
        return number


def refuse_non_finite_numbers(command):
    """Make each ``click.FloatRange`` option of ``command`` and of its sub-commands a
    :class:`FiniteFloatRange` with the same bounds."""
    def finite(kind, parameter):
        if isinstance(kind, click.FloatRange) and not isinstance(kind, FiniteFloatRange):
            return FiniteFloatRange(kind.min, kind.max, kind.min_open, kind.max_open,
                                    kind.clamp)
        return None
    _retype_options(command, finite)


#: The largest count a dlcore model file holds (``dlcore.io.layouts.MAX_SIZE``: sizes, batch
#: sizes, epochs and steps are 32-bit there).
MAX_COUNT = 2**31 - 1


class CountRange(WholeNumberRange):
    """A ``click.IntRange`` without a top that refuses counts past :data:`MAX_COUNT`:
    `rbm train --batch-size 100000000000000000000` trained (one batch an epoch) and saved a
    model.h5 that dlcore.load then refused ("'batch_size' = 100000000000000000000; expected an
    integer in [1, 2147483647]"), its training lost. Its help still shows the bottom alone."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if number > MAX_COUNT:
            self.fail(f"{value} is more than {MAX_COUNT:,}, the largest count a dlcore model "
                      f"file holds; give a smaller number", param, ctx)
        return number


def refuse_counts_past_model_files(command):
    """Make each ``click.IntRange`` option without a top (but the seeds, whose own top is
    NumPy's) of ``command`` and of its sub-commands a :class:`CountRange`, and every other
    a :class:`WholeNumberRange` with the same bounds."""
    def count(kind, parameter):
        if type(kind) is not click.IntRange:
            return None
        if kind.max is None and "seed" not in parameter.name:
            return CountRange(kind.min, None, kind.min_open, False, kind.clamp)
        return WholeNumberRange(kind.min, kind.max, kind.min_open, kind.max_open, kind.clamp)
    _retype_options(command, count)


def _retype_options(command, retype):
    """Give each option of ``command`` and of its sub-commands the type ``retype(type,
    option)`` returns, where it returns one."""
    for parameter in command.params:
        kind = retype(parameter.type, parameter)
        if kind is not None:
            parameter.type = kind
    for sub_command in getattr(command, "commands", {}).values():
        _retype_options(sub_command, retype)


class OneLineErrorGroup(click.Group):
    """A Click group whose errors are one line on stderr: ``dlcore: error: ...``.

    Exit codes: 2 for usage errors (unknown option, bad value), 1 for runtime errors (missing
    file, unreadable data, no GPU, training that diverged), 130 for Ctrl-C. SIGTERM and SIGHUP
    (a cluster's time limit, ``kill``, a closed terminal) stop a command as Ctrl-C does
    (:func:`dlcore.interrupt_on_termination`: a training command saves its checkpoint and says
    how to resume), exit code 128 + the signal (143, 129).
    """

    def main(self, args=None, prog_name=None, **extra):
        ended = []   # not empty once the command has run to its end
        try:
            self._run_command(ended, args, prog_name, **extra)
        except KeyboardInterrupt as error:
            # a Ctrl-C (SIGTERM, SIGHUP) that landed outside Click's catch and the command's:
            # as the command line took the signals over from its start, or once the command
            # had ended and put back the handlers it began with (or as its line was said). It
            # printed Python's traceback (a Terminated's with exit code 1, not 143)
            exited = _exit_behind(error)
            if exited is not None and exited.code not in (None, 0):
                raise exited from None   # its line is said: a second signal changes nothing
            if ended or exited is not None:
                _say_interrupted("interrupted as it ended (what it did is complete)",
                                 terminating_signal(error))
            _say_interrupted("interrupted", terminating_signal(error))

    def make_context(self, info_name, args, parent=None, **extra):
        with _interruption_as_abort():   # a Ctrl-C in an option's parsing (a model file's)
            return super().make_context(info_name, args, parent=parent, **extra)

    def _run_command(self, ended, args=None, prog_name=None, **extra):
        """:meth:`main`'s work: run the command, say its errors in one line, and exit with its
        code, appending to ``ended`` once it has run to its end."""
        started = time.time()
        try:
            _starting.hand_over()   # the handlers of its imports give way to the command's
            with _stopping_once(), interrupt_on_termination(), noting_dropped_interruptions():
                try:
                    result = super().main(args=args, prog_name=prog_name,
                                          standalone_mode=False, **extra)
                except TrainingInterrupted as interruption:
                    # said here, where a second signal is still held (_holding_interruptions)
                    _say_interrupted(str(interruption), terminating_signal(interruption))
                ended.append(result)
                dropped = take_dropped_interruption()
                if dropped is not None:
                    # a Ctrl-C that Python dropped (it landed in a __del__ or a callback made
                    # from C) as the command ran: it finished, but the user asked it to stop,
                    # and the exit code says so rather than 0
                    _say_interrupted("interrupted as it ended (what it did is complete)",
                                     terminating_signal(dropped))
        except NoRoomError as error:
            click.echo(f"dlcore: error: {no_room_message(error, started)}", err=True)
            sys.exit(1)
        except (WriteProtectedError, FolderNotWritableError) as error:
            click.echo(f"dlcore: error: {error}{_rescued_note(error)}"
                       f"{_written_note(error.path, started)}", err=True)
            sys.exit(1)
        except click.exceptions.Abort as error:
            # Click turns Ctrl-C (KeyboardInterrupt) into Abort; the cause says which it was
            if not isinstance(error.__cause__ or error.__context__, KeyboardInterrupt):
                click.echo("dlcore: aborted", err=True)
                sys.exit(1)
            _say_interrupted("interrupted", terminating_signal(error))
        except click.exceptions.NoArgsIsHelpError as error:
            # `dlcore` or `dlcore homework` alone: the first thing a new user types. Its
            # "error" is the group's help, which a one-line message squashed into one long
            # line; it is shown as --help shows it (on stderr, exit code 2, as Click does)
            click.echo(error.ctx.get_help(), err=True)
            sys.exit(2)
        except click.UsageError as error:
            message = one_line(error.format_message()) + _out_folder_hint(error)
            # one hint: a message that names the help to read (dlcore sweep names the swept
            # command's) keeps it
            if "--help')" not in message:
                message += f" (see '{_command_path(error)} --help')"
            if not _said_by_rank_zero(error):
                click.echo(f"dlcore: error: {message}", err=True)
            sys.exit(2)
        except click.ClickException as error:
            click.echo(f"dlcore: error: {one_line(error.format_message())}", err=True)
            sys.exit(error.exit_code)
        except MemoryError as error:
            click.echo(f"dlcore: error: {out_of_memory_message(error)}", err=True)
            sys.exit(1)
        except Exception as error:
            # Numba's CudaAPIError, NumPy's ValueError for a size past any array's: no
            # MemoryError
            if is_gpu_out_of_memory(error) or is_past_any_array(error):
                click.echo(f"dlcore: error: {out_of_memory_message(error)}", err=True)
            elif isinstance(error, RUNTIME_ERRORS):
                click.echo(f"dlcore: error: {one_line(error)}", err=True)
            else:
                raise
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)

    def invoke(self, ctx):
        with _interruption_as_abort():
            try:
                return super().invoke(ctx)
            except click.exceptions.Exit:
                raise
            except Exception as error:
                # a Ctrl-C that Python dropped (in a callback Numba's compiler runs from C,
                # before training) broke what ran next: "no compiled object yet for <Library
                # ...>". The interruption is what happened, and is said as one
                behind = interruption_behind(error)
                if behind is error:
                    raise
                raise behind from None


def _exit_behind(error):
    """The ``SystemExit`` that ``error`` interrupted (along its contexts: it landed as the
    command's exit went through the handlers' putting back), or None."""
    seen = set()
    error = error.__context__
    while error is not None and id(error) not in seen:
        if isinstance(error, SystemExit):
            return error
        seen.add(id(error))
        error = error.__context__
    return None


def is_gpu_out_of_memory(error) -> bool:
    """Whether ``error`` is the GPU's memory running out: Numba's driver raises its
    ``CudaAPIError`` (no ``MemoryError``) when ``cuMemAlloc`` fails so."""
    return "CUDA_ERROR_OUT_OF_MEMORY" in str(error)


#: How NumPy refuses an array larger than any it can index (``--hidden 10**20``), before
#: asking for memory: a ValueError, not a MemoryError.
NUMPY_SIZE_LIMIT_MESSAGES = ("Maximum allowed dimension exceeded", "array is too big")


def is_past_any_array(error):
    """Whether ``error`` is NumPy's refusal of a size past any array's
    (:data:`NUMPY_SIZE_LIMIT_MESSAGES`)."""
    return isinstance(error, ValueError) and str(error).startswith(NUMPY_SIZE_LIMIT_MESSAGES)


def out_of_memory_message(error):
    """The one line of a command whose arrays did not fit in memory (a ``MemoryError``: a
    typo's ``--hidden 2000000000``, a batch of a whole data set on a laptop; or the GPU's,
    :func:`is_gpu_out_of_memory`): what it could not allocate, as NumPy or Numba's driver says
    it, and the fix, where a traceback ended in NumPy's or Numba's internals."""
    gpu = is_gpu_out_of_memory(error)
    # Numba's CudaAPIError reads "[<code>] <msg>": its msg says it
    detail = one_line(getattr(error, "msg", None) if gpu and isinstance(
        getattr(error, "msg", None), str) else error)
    past_any_array = is_past_any_array(error)
    what = ("a size too large for any array" if past_any_array
            else "out of GPU memory" if gpu else "out of memory")
    what = f"{what} ({detail[:1].lower()}{detail[1:]})" if detail else what
    return (f"{what}; choose smaller sizes (such as --hidden, --batch-size or the number of "
            "images)" + ("" if past_any_array else ", or run " + (
                "on the CPU (--backend cpu)" if gpu else "on a machine with more memory")))


@contextlib.contextmanager
def _interruption_as_abort():
    """Raise a Ctrl-C (SIGTERM, SIGHUP) that the command left as it was as Click's Abort, from
    it: Click's ``main`` turns it into that Abort too, but first prints a blank line (to close
    the terminal's ``^C``), which came before the one line of :meth:`OneLineErrorGroup.main`
    alone of the ways a command is interrupted."""
    try:
        yield
    except KeyboardInterrupt as interruption:
        raise click.exceptions.Abort() from interruption


def _say_interrupted(message, terminated):
    """Print the line of a command that Ctrl-C stopped, or SIGTERM or SIGHUP (``terminated``,
    a :class:`dlcore.Terminated`, named in it: "interrupted by SIGTERM"), or another rank's
    signal (a :class:`dlcore.distributed.PeerInterrupted`: "interrupted by SIGTERM to rank 1
    of 2"), and exit with 130 (128 + the signal)."""
    if terminated is None:
        code = INTERRUPTED_EXIT_CODE
    else:
        code = terminated.exit_code
        named = f"interrupted by {terminated.reason}"
        message = (re.sub(r"\binterrupted\b", named, message, count=1)
                   if re.search(r"\binterrupted\b", message) else f"{named}: {message}")
    # a SIGHUP's terminal may be gone: the checkpoint is saved, the exit code still says so
    with contextlib.suppress(OSError):
        click.echo(f"dlcore: {message}", err=True)
    sys.exit(code)


def no_room_message(error, started):
    """The one line of a write that found no room (:class:`dlcore.io.NoRoomError`): the file,
    the reason and the fix, where the trained model went when it was rescued
    (:func:`save_trained_model`) and which files of the run its folder already holds (each
    whole: files are written atomically)."""
    fix = ("raise the file-size limit (ulimit -f)" if error.size_limit else
           "free space or choose another --out")
    return (f"cannot write {shown_path(error.path)}: {error.reason} (errno {error.errno}); {fix}"
            f"{_rescued_note(error)}{_written_note(error.path, started)}")


def _written_note(path, started):
    """Which files this run (begun at ``started``) wrote before, in the folder of ``path``,
    the file it could not write, said after the error's line: each is whole (files are
    written atomically); "" where there are none."""
    folder = Path(path).parent
    with contextlib.suppress(OSError):
        written = sorted(entry.name for entry in folder.iterdir()
                         if entry.is_file() and not entry.name.startswith(".")
                         and entry.stat().st_mtime >= started)
        if written:
            return (f"; this run wrote {', '.join(map(shown_path, written))} in "
                    f"{shown_path(folder)} before, which are complete")
    return ""


def _rescued_note(error):
    """Where :func:`save_trained_model` saved the trained model that ``error`` kept from its
    file, said after the error's line; "" where it did not."""
    rescued = getattr(error, "rescued", None)
    return "" if rescued is None else (f" (the trained model was saved to {rescued} instead: "
                                       "move it there)")


def save_trained_model(model, path):
    """``dlcore.save(model, path)`` of a command's trained model. When there is no room for it
    (a full disk or quota, ``ulimit -f``) or its file is write-protected (a ``model.h5`` the
    user protected with ``chmod 444``, found only now, after the training), hours of training
    are not dropped: the model is saved to the temporary folder instead, if there is room
    there, and the :class:`~dlcore.io.NoRoomError`, :class:`~dlcore.io.WriteProtectedError`
    or :class:`~dlcore.io.FolderNotWritableError` (a folder or disk made read-only as the
    command ran) raised names where (its ``rescued`` attribute)."""
    try:
        save_model(model, path)
    except (NoRoomError, WriteProtectedError, FolderNotWritableError) as error:
        error.rescued = None
        with contextlib.suppress(OSError):
            rescued = Path(tempfile.mkdtemp(prefix="dlcore-rescued-")) / Path(path).name
            try:
                save_model(model, rescued)
            except OSError:
                rescued.parent.rmdir()
                raise
            error.rescued = rescued
        raise error from None


def in_option_names(message, options):
    """A library message in this command's words: each ``parameter='value'`` (or
    ``parameter=value``) becomes ``--option value``, and a bare parameter name that opens the
    message or has an underscore (``sparsity_target``: no English word) becomes ``--option``
    (a plain word elsewhere is prose: "the loss"). ``options`` maps a
    command's option (its Python name, ``decoder_activation``) to the model parameter it sets
    (``{"hidden": "n_hidden"}``). Python code the message quotes, a call such as
    ``Dense(..., activation='relu')``, stays as it is: it is what to write in Python, where
    ``--activation relu`` means nothing."""
    # the calls set aside (one level of nested calls: L1(...) inside Dense(...))
    calls = []

    def set_aside(match):
        calls.append(match.group(0))
        return f"\0{len(calls) - 1}\0"

    message = re.sub(r"\b[A-Za-z_][\w.]*\((?:[^()]|\([^()]*\))*\)", set_aside, message)
    for option, parameter in options.items():
        flag = "--" + option.replace("_", "-")

        def as_option(match, flag=flag):
            value = match.group(1) if match.group(1) is not None else match.group(2)
            return flag if value is None else f"{flag} {value}"

        start = r"\b" if "_" in parameter else rf"^(?={parameter}\b)|\b(?={parameter}=)"
        message = re.sub(rf"(?:{start}){parameter}(?:='([^']*)'|=([^\s,;:)']+))?",
                         as_option, message)
    return re.sub(r"\0(\d+)\0", lambda match: calls[int(match.group(1))], message)


def _said_by_rank_zero(error):
    """Whether the usage error ``error`` of a rank other than 0 of an MPI job goes unsaid:
    every rank parses the same command line and meets the same error, so rank 0 says it for
    the job (``mpiexec -n 8 dlcore rbm train --bogus`` printed it eight times). A path that
    does not exist is said on every rank: another node's file system may differ."""
    if launched_rank() == 0:
        return False
    parameter = getattr(error, "param", None)
    return not isinstance(getattr(parameter, "type", None), click.Path)


#: How Click refuses words a command takes no argument for (its English, pinned by a test).
_EXTRA_ARGUMENT = "Got unexpected extra argument ("


def _out_folder_hint(error):
    """The fix, after Click's "Got unexpected extra argument (runs/task1)", for a command that
    writes into an --out folder given one word too many: most often that folder, typed as the
    model file of `rbm reconstruct runs/x/model.h5` is; "" for any other usage error."""
    context = error.ctx
    if context is None or not error.message.startswith(_EXTRA_ARGUMENT):
        return ""
    extra = error.message[len(_EXTRA_ARGUMENT):].removesuffix(")")
    takes_out_folder = any(parameter.name == "out" and isinstance(parameter.type, OutFolder)
                           for parameter in context.command.params)
    if not takes_out_folder or not extra or " " in extra:
        return ""
    return f": the output folder is given as an option, --out {extra}"


def _command_path(error):
    context = error.ctx if error.ctx is not None else _refusing_context(error)
    return context.command_path if context is not None else "dlcore"


def _refusing_context(error):
    """The context of the command whose command line Click's parser refused, from the frames
    ``error`` passed through: the parser raises "Option '--out' requires an argument." with
    no context, and the hint named `dlcore --help` instead of the command's."""
    context = None
    trace = error.__traceback__
    while trace is not None:
        found = trace.tb_frame.f_locals.get("ctx")
        if isinstance(found, click.Context):
            context = found              # the deepest: the command being parsed
        trace = trace.tb_next
    return context


class RunMetrics(dict):
    """The final figures of one run of a training command that ``dlcore sweep`` invokes: the
    ``obj`` of the Click context it runs the command in, filled by :func:`publish_metrics`."""


def publish_metrics(**figures):
    """Hand a training command's final figures (name=number: the last epoch's loss, the test
    accuracy, ...) to ``dlcore sweep``, which writes them into the run's row of its CSV. Outside
    a sweep it does nothing: the command prints its figures as always. The names must not be
    those of the command's options (a sweep's grid columns) nor ``run``, ``status``,
    ``error``, ``seconds``, ``rank``, ``command``."""
    context = click.get_current_context(silent=True)
    metrics = context.find_object(RunMetrics) if context is not None else None
    if metrics is not None:
        metrics.update({name: value if isinstance(value, int) else float(value)
                        for name, value in figures.items()})


def parse_choices(text, choices, option):
    """``"b, a"`` (or ``"all"``) -> the named ``choices`` in their own order; anything else a
    usage error naming ``option`` and the choices."""
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    if names == ["all"]:
        return list(choices)
    if not names or any(name not in choices for name in names):
        raise click.BadParameter(f"{text!r}: choose from {', '.join(choices)} (comma-"
                                 "separated), or all", param_hint=option)
    return [name for name in choices if name in names]


def backend_option(function):
    return click.option("--backend", type=click.Choice(BACKEND_NAMES, case_sensitive=False),
                        default="auto", show_default=True,
                        help="Where the maths runs (auto: $DLCORE_BACKEND, else cuda if a GPU "
                             "is usable, else cpu).")(function)


def seed_option(function):
    return click.option("--seed", type=click.IntRange(0, 2 ** 63 - 1), default=0,
                        show_default=True, help="Seed of the Philox generator.")(function)


def sampling_options(library_call, gaussian=False):
    """``--binary`` and ``--seed`` of the commands that draw samples from a saved model, whose
    samples are ``library_call``'s (``"rbm.sample"``) on the model file; ``gaussian``: the
    command also samples models of Gaussian visible units (a DBN made in Python), whose
    --binary draws real values."""
    def decorate(function):
        function = click.option(
            "--seed", type=click.IntRange(0, 2 ** 63 - 1), default=None,
            help=f"Seed of the Philox generator: the samples of {library_call}(..., seed=N) on "
                 "the model file in Python [default: the model's own sequence, as "
                 f"{library_call}(...) continues it from the file].")(function)
        return click.option(
            "--binary", is_flag=True,
            help="Show binary pixels drawn at the last step instead of the visible "
                 "probabilities P(v = 1 | h) of that step (probabilities=False"
                 + ("; Gaussian visible units: real values drawn instead of their means)."
                    if gaussian else ")."))(function)
    return decorate


def check_rows_to_train(n_rows, n_held_out, validation_split):
    """One line when --validation-split holds out all ``n_rows`` training images (``n_held_out``
    of them), before the library meets an empty batch or an epoch of no updates."""
    if n_rows - n_held_out < 1:
        raise click.BadParameter(
            f"{validation_split:g} holds out {n_held_out} of the {count(n_rows, 'training image')}"
            ", which leaves none to train on: give a smaller one", param_hint="--validation-split")


class DatasetName(click.types.StringParamType):
    """The type of a command's --dataset: a data set's name or a folder of IDX files, as
    given (:func:`_canonical_dataset` checks it). A folder is recorded, and compared
    with a --resume file's, by its absolute path (:func:`dataset_identity`): the relative one
    recorded ("idx") named another folder, or none, in a run resumed from elsewhere, and
    ``./idx`` or ``idx/`` (a shell's completion) was refused as differing from ``idx``."""

    def recorded(self, value):
        """``value`` as the training record keeps it."""
        return dataset_identity(value) if isinstance(value, (str, Path)) else value

    canonical = recorded


def dataset_option(default="mnist-5k"):
    return click.option("--dataset", type=DatasetName(), default=default, show_default=True,
                        callback=_canonical_dataset,
                        help="mnist-5k (bundled), mnist, fashion-mnist, or a folder of IDX files.")


def model_dataset_option(fallback="mnist-5k"):
    """``--dataset`` of a command that uses a saved model: by default the data set its file
    was trained on (:func:`trained_dataset`), else ``fallback``."""
    # DatasetName: dbn finetune trains and resumes with it, as the training commands do
    return click.option("--dataset", type=DatasetName(), default=None,
                        callback=_canonical_dataset,
                        help="mnist-5k (bundled), mnist, fashion-mnist, or a folder of IDX files "
                             "[default: the data set the model file was trained on (its "
                             f"training record), else {fallback}].")


def trained_dataset(model, model_file, dataset, fallback="mnist-5k"):
    """The data set a command uses ``model`` on: ``dataset`` when --dataset was given, else
    the labelled data set its training record names (a teacher's ``evaluate model.h5`` then
    measures the student's model on its own data, not on a default it never saw), else
    ``fallback``. A recorded folder that is gone is one line asking for --dataset."""
    if dataset is not None:
        return dataset
    record = recorded_training(model) or {}
    trained_on = record.get("dataset")
    if not isinstance(trained_on, str) or not record.get("classes"):
        return fallback
    from dlcore.datasets import dataset_key
    if dataset_key(trained_on) is None and not Path(trained_on).is_dir():
        raise click.ClickException(f"{model_file} was trained on the images in {trained_on}, "
                                   "which is no longer a folder: give their place with "
                                   "--dataset")
    return trained_on


def _canonical_dataset(context, param, value):
    """A data set's name as the commands compare it: ``MNIST-5k`` or ``mnist_5k`` (which the
    loaders accept) as ``mnist-5k``, so that it gets the held-out split of mnist-5k; a folder
    as given, its ``~`` expanded (:func:`home_expanded`); a name close to a data set's that
    is no folder (``mnsit``) a usage error naming the data set it is close to."""
    from dlcore.datasets import DATASET_NAMES, dataset_key
    from dlcore.datasets.mnist import close_dataset_names
    key = dataset_key(value)
    if key is not None:
        return key
    value = home_expanded(value)
    if isinstance(value, str) and not value.startswith(".") and "/" not in value \
            and os.sep not in value and not os.path.exists(value):
        # a misspelt name (mnsit, fashion): Click says "Did you mean" for options, not here
        close = close_dataset_names(value)
        if close:
            raise click.BadParameter(
                f"unknown data set {value!r} (did you mean {' or '.join(map(repr, close))}?): "
                f"choose one of {', '.join(DATASET_NAMES)}, or a folder holding IDX files")
    return value


def home_expanded(value):
    """A path option's ``value`` with a leading ``~`` or ``~user`` expanded as a shell does:
    the shell leaves it be where it is quoted (``--dataset '~/idx'``) or follows an equals
    sign (``--out=~/runs``, a common spelling), and Click does not expand it, so the command
    looked for a folder named ``~`` in the current one (``--out`` made one there). A name
    that is no such path stays as given (``./~`` names a folder called ``~``)."""
    if isinstance(value, str) and value.startswith("~"):
        return os.path.expanduser(value)
    return value


def refuse_empty_name(path_type, value, param, ctx, what, example):
    """Fail ``path_type``'s conversion of an empty or blank ``value`` (``--out "$RUNS"`` with
    $RUNS unset), naming ``what`` it should name and the parameter's default, else
    ``example``: Path("") is the current folder, whose files a run replaced (or, for a file,
    which it could not write after all its work)."""
    if isinstance(value, str) and not value.strip():
        default = getattr(param, "default", None)
        path_type.fail(f"{value!r} is an empty {what} name; give a {what} such as "
                       f"{default if isinstance(default, (str, Path)) else example}",
                       param, ctx)


def refuse_folder_name(path_type, value, param, ctx):
    """Fail ``path_type``'s conversion of a file name ending in a slash (``--out sub/``):
    Path drops the slash, and the command wrote a file named ``sub``
    (:func:`dlcore.io.atomic.refuse_unwritable_name` says it, in one line)."""
    if isinstance(value, str) and value.endswith(tuple(end for end in (os.sep, os.altsep)
                                                       if end)):
        refuse_write_protected_file(path_type, value, param, ctx)


def refuse_folder_for_file(path_type, value, param, ctx, example):
    """Fail ``path_type``'s conversion of ``value``, the name of a file to write, where it
    is a folder, offering a name in it: the parameter's default's, else ``example``
    (Click's "File 'runs' is a directory." said no name to give)."""
    if not isinstance(value, (str, Path)) or not os.path.isdir(home_expanded(value)):
        return
    folder = Path(home_expanded(value))
    default = getattr(param, "default", None)
    name = Path(default).name if isinstance(default, (str, Path)) else example
    path_type.fail(f"{shown_path(folder)} is a folder, not a file: give the name of the file "
                   f"to write in it, such as {shown_path(folder / name)}", param, ctx)


def refuse_write_protected_file(path_type, path, param, ctx):
    """A file to write that exists and that this user may not write (``chmod a-w``, another
    user's) is a usage error, before the command works: the new file is renamed over the old
    one (:mod:`dlcore.io.atomic`), which the folder's permissions allow, so the protection the
    user set was dropped with the file (as ``>`` in a shell, Keras's ``model.save`` and
    Matplotlib's ``savefig`` refuse it)."""
    try:
        refuse_write_protected(path)
    except (WriteProtectedError, FolderNotWritableError, UnwritableNameError) as error:
        path_type.fail(str(error), param, ctx)


class UserPath(click.Path):
    """``click.Path`` with a leading ``~`` expanded (:func:`home_expanded`)."""

    def convert(self, value, param, ctx):
        return super().convert(home_expanded(value), param, ctx)


#: Entries of a folder looked at for the files a message offers: a folder of a million files
#: is named in one line all the same, without reading it all.
_FILES_LOOKED_AT = 10_000
#: The most files a message offers.
_FILES_OFFERED = 3


def files_named_in(folder, suffixes):
    """The paths, in name order, of the regular files in ``folder`` whose names end in one of
    ``suffixes`` (lower case: ``(".h5",)``); empty where ``folder`` cannot be read."""
    found = []
    try:
        with os.scandir(folder) as entries:
            for looked_at, entry in enumerate(entries):
                if looked_at >= _FILES_LOOKED_AT:
                    break
                if entry.name.lower().endswith(suffixes) and entry.is_file():
                    found.append(entry.name)
    except OSError:
        return []
    return [Path(folder) / name for name in sorted(found)]


def did_you_mean(paths):
    """"did you mean runs/x/model.h5?" (or "a or b"), for the ``paths`` a message offers."""
    return f"did you mean {' or '.join(shown_path(path) for path in paths)}?"


def refuse_folder_or_missing_file(path_type, value, param, ctx, what, suffixes, fallback):
    """Fail ``path_type``'s conversion of ``value``, the path of ``what`` to read (``"a
    model file"``), where it is a folder or does not exist, offering the files with one of
    ``suffixes`` in that folder (or, for a missing file, in the folder it names): Click's
    "File 'runs/task1' is a directory." named no fix for the likeliest slip, the folder of a
    run for the file it wrote there (``runs/task1`` for ``runs/task1/model.h5``), nor a
    misspelt name's file beside it. ``fallback`` is the fix where there is no such file."""
    if not isinstance(value, (str, Path)):
        return
    path = Path(value)
    if path.is_dir():
        offered = files_named_in(path, suffixes)[:_FILES_OFFERED]
        path_type.fail(f"{shown_path(path)} is a folder, not {what}: "
                       f"{did_you_mean(offered) if offered else fallback}", param, ctx)
    if not os.path.lexists(path):
        beside = files_named_in(path.parent, suffixes) if path.name else []
        if path.name in (CHECKPOINT_FILE, *FINISHED_MODEL_FILES):
            # a run's own name (its checkpoint, gone once it finished): what the run left
            offered = beside[:_FILES_OFFERED]
        else:   # a misspelling: the names like it, not every file of the folder
            close = difflib.get_close_matches(path.name, [file.name for file in beside],
                                              n=_FILES_OFFERED)
            offered = [path.parent / name for name in close]
        path_type.fail(f"{shown_path(path)} does not exist: "
                       f"{did_you_mean(offered) if offered else fallback}", param, ctx)


class ModelFile(UserPath):
    """The path of a model file a command reads (its argument, ``--resume``): a folder or a
    missing file is a usage error offering the model files there are
    (:func:`refuse_folder_or_missing_file`)."""

    name = "model_file"

    def __init__(self):
        super().__init__(exists=True, dir_okay=False, path_type=Path)

    def convert(self, value, param, ctx):
        refuse_folder_or_missing_file(
            self, home_expanded(value), param, ctx, "a model file", (".h5",),
            "give the path of a model file (.h5) that a dlcore command saved")
        return super().convert(value, param, ctx)


class OutFolder(UserPath):
    """The folder a command writes into: an empty name is a usage error
    (:func:`refuse_empty_name`)."""

    def __init__(self):
        super().__init__(file_okay=False, path_type=Path)

    def convert(self, value, param, ctx):
        refuse_empty_name(self, value, param, ctx, "folder", "runs")
        path = Path(home_expanded(value))
        if isinstance(value, (str, Path)) and path.is_file():
            # Click's "Directory 'runs/x/model.h5' is a file." did not say what --out wants
            folder = path.parent if path.parent != Path(".") else Path("runs")
            self.fail(f"{os.fspath(value)!r} is a file: --out names the folder the command "
                      f"writes its files into, such as {shown_path(folder)}", param, ctx)
        return super().convert(value, param, ctx)


class OutFile(UserPath):
    """A file a command writes (sweep's CSV): an empty name is a usage error
    (:func:`refuse_empty_name`), where it was the current folder, found unwritable only when
    the command had done its work."""

    def __init__(self, example="out.csv"):
        super().__init__(dir_okay=False, path_type=Path)
        self.example = example

    def convert(self, value, param, ctx):
        refuse_empty_name(self, value, param, ctx, "file", self.example)
        refuse_folder_name(self, value, param, ctx)
        refuse_folder_for_file(self, value, param, ctx, self.example)
        path = super().convert(value, param, ctx)
        refuse_write_protected_file(self, path, param, ctx)
        return path


def out_folder_option(default):
    """``--out DIR``, the folder a command writes its files into (created when missing)."""
    return click.option("--out", type=OutFolder(), default=Path(default), show_default=True,
                        help="Output folder.")


def output_folder(path, exclusive=True, for_file=None):
    """Create ``path`` (and parents) and check that we can write in it; one-line error if not.

    The folders created here are removed again when the command ends (successfully or not)
    with nothing written in them: a command that fails before its first file leaves no empty
    --out folder behind.

    ``exclusive`` (a command's --out folder; not the folder of a single file it writes): the
    command holds the folder until it ends (:func:`dlcore.io.atomic.lock_folder`, an OS-level
    lock that a crash frees), and a second command given the same --out meanwhile is refused
    in one line naming the first, instead of mixing its files with the first's.

    ``for_file``: the one file the command writes there (``--out samples.png``). A folder
    that takes no new file is no error when that file exists and this user may write it (a
    hand-in folder, mode 555, of files mode 666): it is written in place, as ``open`` writes
    it (:func:`dlcore.io.atomic.atomic_output_path`)."""
    folder = Path(path)
    created = []                      # deepest first
    missing = folder.absolute()
    while not missing.exists() and missing != missing.parent:
        created.append(missing)
        missing = missing.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise click.ClickException(f"cannot create the output folder {shown_path(folder)}: "
                                   f"{error.strerror or error}; choose another with --out"
                                   ) from None
    context = click.get_current_context(silent=True)
    if created and context is not None:
        context.call_on_close(lambda: _remove_empty_folders(created))
    in_place = (for_file is not None and os.path.isfile(for_file)
                and os.access(for_file, os.W_OK))
    # root may write any folder as os.access sees it, and still make no file in some (/proc,
    # /sys): only making one tells, before the work, not at its end
    why = None if in_place else (
        _why_unwritable(folder) if not os.access(folder, os.W_OK) else _new_file_refused(folder))
    if why is not None:
        raise click.ClickException(f"cannot write in the output folder {shown_path(folder)}: "
                                   f"{why}; choose another with --out")
    if exclusive and context is not None:
        try:
            lock = lock_folder(folder, f"pid {os.getpid()}: {shlex.join(sys.argv)}")
        except FolderInUseError as error:
            raise click.ClickException(f"--out {shown_path(folder)} is in use by another "
                                       f"dlcore run ({error.holder}): wait for it to finish, "
                                       f"or choose another --out") from None
        context.call_on_close(lock.release)
    return folder


#: Files that only a dlcore command writes in its --out (model files by their names: an .h5
#: of the user's own is no output of a run).
RUN_OUTPUTS = frozenset({
    "model.h5", "dbn.h5", "metrics.json", "training_curve.png", "filters.png",
    "reconstructions.png", "feature_maps.png", "confusion_matrix.png", "samples.png",
    "reconstruction_error.csv", "samplers.csv", "regularisation.csv", "regularisation_curves.png",
    "adversarial_examples.png", "pretraining.csv", "pretraining_curves.png"})


def say_replacing(folder, writes):
    """One line when ``folder`` holds the outputs of an earlier dlcore run, which this run
    (writing the files ``writes``) replaces: it did so silently, and an earlier command's other
    files stayed mixed in with this run's, unnamed. Not on a --resume that goes on in the
    folder of its file (an interrupted run's checkpoint was refused before: what is left is
    this run's); one into another --out replaced the outputs there without a word."""
    context = click.get_current_context(silent=True)
    if context is None or context.meta.get(_SAID_REPLACING):
        return
    resume = context.params.get("resume")
    if resume is not None and _same_file(Path(resume).parent, folder):
        return
    try:
        found = set(os.listdir(folder)) & RUN_OUTPUTS
    except OSError:
        return
    if found:
        context.meta[_SAID_REPLACING] = True
        others = sorted(found - set(writes))
        stay = (f"; {listed(others)} of another run {'stays' if len(others) == 1 else 'stay'}"
                if others else "")
        click.echo(f"dlcore: replacing the outputs of an earlier run in {shown_path(folder)}"
                   f"{stay}", err=True)


_SAID_REPLACING = "dlcore.said_replacing"


def _why_unwritable(folder):
    """The system's reason that ``folder`` takes no new file ("Permission denied", "Read-only
    file system"), from trying to create one that leaves no name behind."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        return error.strerror or str(error)
    return "not writable"


def _new_file_refused(folder):
    """The system's reason that ``folder``, which ``os.access`` calls writable, takes no new
    file, or None where it takes one."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        return error.strerror or str(error)
    return None


def _remove_empty_folders(folders):
    for folder in folders:
        try:
            folder.rmdir()            # only succeeds on an empty folder
        except OSError:
            return


class PngPath(UserPath):
    """A click parameter type for the name of a PNG file to write: another suffix (``x.jpg``)
    is a usage error instead of PNG bytes under a misleading name."""

    name = "png_file"

    def __init__(self):
        super().__init__(dir_okay=False, path_type=Path)

    def convert(self, value, param, ctx):
        refuse_empty_name(self, value, param, ctx, "file", "samples.png")
        refuse_folder_name(self, value, param, ctx)
        refuse_folder_for_file(self, value, param, ctx, "samples.png")
        path = super().convert(value, param, ctx)
        if Path(path).suffix.lower() != ".png":
            self.fail(f"{str(value)!r} does not end in .png: this command writes a PNG image; "
                      f"give a name such as {Path(path).with_suffix('.png').name}", param, ctx)
        refuse_write_protected_file(self, path, param, ctx)
        return path


# -- training that survives Ctrl-C -------------------------------------------------------
class TrainingInterrupted(Exception):
    """Ctrl-C stopped a training command; the message says what was saved and how to resume
    (``OneLineErrorGroup`` prints it and exits with code 130)."""


#: What a command has left to do once its trained model is saved (:func:`saving_trained_model`).
FIGURES_LEFT = "the figures and tables were not all written; write them without training again"


@contextlib.contextmanager
def saving_trained_model(model, model_path, left=FIGURES_LEFT, checkpoints=None):
    """Save a training command's trained model as ``model_path`` (:func:`save_trained_model`),
    then run the block, what the command does with it (the evaluation, the figures and tables).

    ``checkpoints``: the run's :class:`Checkpoints`, whose file the saved model supersedes and
    which is deleted once it is saved (:meth:`Checkpoints.superseded`), as Keras's
    ``BackupAndRestore`` deletes its backup when training ends.

    Ctrl-C in either is told from the file on disk: once ``model_path`` has landed (written
    whole, then renamed, so even inside the save), the message says that it is complete, what
    was ``left`` to do (a command of several stages: "the stages after it were not run; run
    them without training it again") and prints the command that does it (this run's with
    ``--resume model_path``: its epochs are all done), instead of a bare "interrupted"."""
    found = _file_identity(model_path)
    try:
        save_trained_model(model, model_path)
        if checkpoints is not None:
            checkpoints.superseded()
        yield
    except KeyboardInterrupt:
        with _holding_interruptions(until_said=True) as held:
            if _file_identity(model_path) == found:
                # the interruption landed in the save (or just before it): the trained model
                # is whole in memory, so it is saved again, holding a second signal, rather
                # than lost with the training that made it
                save_trained_model(model, model_path)
            interruption = interrupted_after_training(model_path, left, held)
        raise interruption from None


def interrupted_after_training(model_path, left=FIGURES_LEFT, held=()):
    """The :class:`TrainingInterrupted` of a Ctrl-C once the trained model ``model_path`` is
    saved: it is complete, what was ``left`` to do, and the command that does it (``held``:
    the signals that came while it was saved, :func:`_holding_interruptions`)."""
    return TrainingInterrupted(
        f"interrupted after training: {model_path} is saved and complete{_held_note(held)}, "
        f"but {left} with: {resume_command(model_path)}")


def resume_option(function=None, *, has_epochs=True, by_rows=False):
    """``--resume FILE``; ``@resume_option(has_epochs=False)`` for a command without an
    --epochs option (its help then offers no new total); ``by_rows=True`` for a command that
    saves its checkpoint as the rows of its table finish (``homework regularisation``): it has
    no --checkpoint-every, and resumes at the next row, not at the epochs left."""
    if function is None:
        return functools.partial(resume_option, has_epochs=has_epochs, by_rows=by_rows)
    may_change = "--epochs (the new total), --backend" if has_epochs else "--backend"
    total = " Without --epochs it trains on to that run's total." if has_epochs else ""
    if by_rows:
        saved = ("(the checkpoint.h5 of an interrupted run of this command, which saves it as "
                 "each row of its table finishes), with the options of that run, from its "
                 "next row: on the cpu backend the result is bit for bit that of an "
                 f"uninterrupted run. {may_change} and --out may change")
    else:
        saved = ("(the checkpoint.h5 of an interrupted or checkpointing run of this command), "
                 "with the options of that run, for the epochs it had left: on the cpu "
                 "backend the result is bit for bit that of an uninterrupted run. "
                 f"{may_change}, --out and --checkpoint-every may change")
    return click.option(
        "--resume", type=ModelFile(), default=None,
        help=f"Continue the training saved in this file {saved}; any other option given must "
             f"have the value that run had.{total} Without --out it goes on in the file's "
             "folder."
    )(function)


def checkpoint_option(function):
    return click.option(
        "--checkpoint-every", type=click.IntRange(min=1), default=None, metavar="N",
        help=f"Also save the model as {CHECKPOINT_FILE} in --out after every N epochs (Ctrl-C "
             "saves it too), for a run killed without one; deleted once the finished model is "
             "saved.")(function)


def refuse_unread_options(names, unread_because, fix):
    """Refuse, as one usage error, the first of the options ``names`` that the command line
    gave (not a default, nor a value --resume took from its checkpoint) where the other
    options leave it unread: click takes it and the command ignores it, so that a user who
    mistyped, or forgot, the option that reads it believes it took effect. The line is
    ``"<flag> <unread_because>: <fix>, or drop <flag>"``, ``unread_because`` saying what the
    option sets and which option leaves it unread, ``fix`` the other way out."""
    context = click.get_current_context()
    params = {param.name: param for param in context.command.params}
    for name in names:
        if context.get_parameter_source(name) is ParameterSource.COMMANDLINE:
            flag = params[name].opts[0]
            raise click.UsageError(f"{flag} {unread_because}: {fix}, or drop {flag}", context)


def resume_command(checkpoint, options=True):
    """The running command line with ``--resume checkpoint``: the options that differ from
    their defaults, as the user would type them; with ``options=False`` only its arguments
    and --out (a resumed run takes its other options from the file: another run's command
    line might give them other values, which --resume refuses)."""
    context = click.get_current_context()
    words = ["dlcore"] + context.command_path.split()[1:]
    unknown = ""
    if context.params.get("distributed"):   # as the job was launched (its host file, ...)
        from dlcore.cli._distributed import LAUNCHER_OPTIONS_UNKNOWN, launch_words, launched_ranks
        launcher, known = launch_words(launched_ranks())
        words = [*map(shlex.quote, launcher), *words[1:]]
        unknown = "" if known else " " + LAUNCHER_OPTIONS_UNKNOWN
    for param in context.command.params:
        value = context.params.get(param.name)
        if param.name == "resume" or param.expose_value is False:
            continue
        if isinstance(param, click.Argument):
            words.append(shell_word(str(value)))
            continue
        if value is None or value == param.default or not options and param.name != "out":
            continue
        if param.is_flag:
            flags = param.opts if value else param.secondary_opts
            words += flags[:1]
            continue
        words += [param.opts[0], shell_word(str(value))]
    return " ".join(words + ["--resume", shell_word(str(checkpoint))]) + unknown


def refuse_protected_outputs(folder, names):
    """Refuse, as a usage error on --out, before the command works, the files ``names`` it
    writes in ``folder`` (its model files, figures and tables) that the user write-protected
    (:func:`dlcore.io.atomic.refuse_write_protected`) or that lie on a read-only disk: found
    only as it writes them, they cost the training (a figure refused after minutes of it)."""
    for path in (Path(folder) / name for name in names):
        try:
            refuse_write_protected(path)
        except (FolderNotWritableError, UnwritableNameError) as error:   # a read-only disk
            raise click.BadParameter(str(error), param_hint="--out") from None
        except WriteProtectedError:
            raise click.BadParameter(
                f"{os.fspath(path)!r}, which this command writes, is write-protected: "
                f"choose another --out, or let it be replaced (chmod u+w "
                f"{shell_word(os.fspath(path))})", param_hint="--out") from None
    say_replacing(folder, names)


class Checkpoints:
    """A training command's checkpoint file (``--out``/checkpoint.h5): written every
    ``every`` finished epochs, and on Ctrl-C with the model of the last finished epoch.

    ``epoch_finished(model, where)`` is the models' ``on_epoch_end`` hook; ``where`` says how
    far training got, e.g. "epoch 3 of 10", or is a function of the model that says it (read
    when the message is written: a Ctrl-C inside a save rolls a network back one epoch);
    ``network_callback(total)`` is the same for ``Sequential.fit``; wrap the training in
    ``with checkpoints.on_interrupt():``, which also turns a diverged training into a message
    that says what this command saved.

    A command whose unit of work is not an epoch (homework regularisation: a row of its table)
    names it as ``unit``, and what its checkpoint holds as ``contents``, for the messages;
    its "model" is then whatever :func:`dlcore.save` writes for it.

    ``outputs``: the names of the files the command writes in ``folder`` when it finishes
    (``model.h5``, its figures and tables). The checkpoint and these are refused at once where
    the user write-protected them (:func:`refuse_protected_outputs`), before the training, not
    found when it ends.
    """

    def __init__(self, folder, every=None, unit="epoch", contents="the model", outputs=()):
        self.path = Path(folder) / CHECKPOINT_FILE
        refuse_protected_outputs(folder, [CHECKPOINT_FILE, *outputs])
        self.every = every
        self.unit, self.contents = unit, contents
        self.model = self.where = None
        self.saved = None                 # where the last periodic checkpoint was, or None
        self.finished_files = []          # what a command of several stages saved so far
        self.finished = 0
        # more of the run's identity for the checkpoint's record (dbn finetune: which DBN)
        self.record_details = {}
        # the file a checkpoint of this run replaces (an older run's), and where the model of
        # the periodic save under way is: a Ctrl-C that lands after that save wrote the file,
        # but before track() below, is told what the file on disk holds
        self._found = _file_identity(self.path)
        self._saving = None
        # the handler of a Ctrl-C (or SIGTERM, SIGHUP) that Python dropped, with its signal
        self._interrupt_pending = None

    def track(self, model, where):
        """What Ctrl-C saves until the next epoch finishes (a resumed model)."""
        self.model, self.where = model, where

    def position(self):
        return self.where(self.model) if callable(self.where) else self.where

    def save(self, model):
        """Save ``model`` as the checkpoint, with the running command's parameters as its
        training record (what a --resume of it checks the options against)."""
        context = click.get_current_context(silent=True)
        if context is not None:
            model.training_record_ = {"command": context.command_path,
                                      "parameters": current_parameters(context),
                                      **self.record_details}
        save_model(model, self.path)

    def superseded(self):
        """Delete the checkpoint: the run's finished model, saved whole in the folder, holds
        everything it held. Left there, it was the pending work of no run: its "resume with"
        command, run again from the shell's history, trained the run once more from that
        epoch and replaced the finished model.h5 (one a larger --epochs had trained on, with
        a shorter one), and a copy of the folder that gave it a newer time than model.h5 was
        refused as an interrupted run's. One that cannot be deleted (another user's, in a
        sticky folder) stays, older than the model file, which supersedes it."""
        with contextlib.suppress(OSError):
            self.path.unlink()
        self._found = self._saving = None
        self.saved = None
        # the model is in its file: a Ctrl-C in the next stage (homework pretraining) before
        # that stage's first epoch saved it again, and said it saved "the model after epoch 3
        # of 3" of a stage already finished while the user watched the next one train
        self.model = self.where = None

    def epoch_finished(self, model, where):
        self.finished += 1
        # a signal between the save and the tracking below said the position before the save
        # of a file that held the one after it ("after row 1" of a file of two rows): held
        # until both are done, then raised as it came
        with _holding_interruptions() as held:
            if self.every and self.finished % self.every == 0:
                self._saving = where(model) if callable(where) else where
                self.save(model)
                self.saved = self._saving
            self.track(model, where)
        if held:
            signal.raise_signal(signal.Signals[held[0]])
        if self._interrupt_pending:     # a Ctrl-C that Python dropped (_latching_interrupts)
            handler, number = self._interrupt_pending
            handler(number, None)       # raises it again
        dropped = take_dropped_interruption()   # one dropped before these handlers were set
        if dropped is not None:
            raise dropped.with_traceback(None)

    def network_callback(self, total_epochs):
        checkpoints = self

        class EpochEnd(Callback):
            def on_epoch_end(self, epoch, logs=None):
                checkpoints.epoch_finished(
                    self.model, lambda network: f"epoch {network.epochs_done} of {total_epochs}")

        return EpochEnd()

    @contextlib.contextmanager
    def on_interrupt(self, rate_options=None):
        """Turn Ctrl-C into a saved checkpoint and :class:`TrainingInterrupted`, and a
        :class:`TrainingDiverged` into one that says what was saved and which option sets the
        learning rate: ``rate_options`` maps the model parameter that set the rate
        (``TrainingDiverged.setting``) to this command's option (default: ``learning_rate``
        to --learning-rate; a setting not in it has no option)."""
        previous_handlers = self._latching_interrupts()
        try:
            try:
                yield self
            except Exception as error:
                if self._interrupt_pending is None:
                    behind = interruption_behind(error)   # dropped before this handler's time
                    if behind is error:
                        raise
                    raise behind from None
                take_dropped_interruption()   # the one latched here, raised again below
                # a Ctrl-C that Python dropped broke what ran next: one landing in a callback
                # that Numba's compiler runs from C left a kernel without its machine code
                # ("no compiled object yet for <Library ...>", a failure of rank 1 of 2 and
                # exit code 1). The interruption is what happened: raise it again (the model is
                # back at its last finished epoch, as fit leaves it on any exception)
                handler, number = self._interrupt_pending
                handler(number, None)
                raise
        except KeyboardInterrupt:
            self._interrupt_pending = None
            take_dropped_interruption()   # this one, if Python dropped it first
            if self.model is None:
                if self._saving is not None and _file_identity(self.path) != self._found:
                    # the first checkpoint reached the disk (written whole, then renamed)
                    raise TrainingInterrupted(
                        f"interrupted: saved {self.contents} after {self._saving} to "
                        f"{self.path}; resume with: {resume_command(self.path)}") from None
                if self.finished_files:
                    # the stages finished are saved: the command says which, and how to go on
                    raise
                raise TrainingInterrupted(
                    f"interrupted before the first {self.unit} finished: nothing was saved"
                    if self._saving is None else
                    "interrupted while the first checkpoint was being written: nothing was "
                    "saved") from None
            with _holding_interruptions(until_said=True) as held:
                self.save(self.model)
                message = (f"interrupted: saved {self.contents} after {self.position()} to "
                           f"{self.path}{_held_note(held)}; resume with: "
                           f"{resume_command(self.path)}")
            raise TrainingInterrupted(message) from None
        except TrainingDiverged as error:
            default_options = rate_options is None
            if rate_options is None:
                rate_options = {"learning_rate": "--learning-rate"}
            outcome = "nothing was saved"
            if self.finished_files:
                outcome = (f"this stage was not saved (the finished ones were: "
                           f"{', '.join(self.finished_files)})")
            if self.saved is not None:
                outcome += f" but the checkpoint after {self.saved} in {self.path}"
            option = rate_options.get(error.setting)
            # a weight decay that diverges by itself: --weight-decay where the command's
            # options are the default ones (the RBMs', the networks'); no option elsewhere
            decay_option = (rate_options.get(error.decay["setting"], "--weight-decay")
                            if error.decay is not None and default_options else None)
            raise TrainingDiverged(error.describe(outcome, option and f"{option} on the "
                                                  "command line",
                                                  decay_option and f"{decay_option} on the "
                                                  "command line"),
                                   error.epoch, error.quantity, error.value, error.problem,
                                   error.learning_rate, error.setting, error.where,
                                   error.decay) from None
        finally:
            if not _stopped():     # held until the line is said, then the command's put back
                for number, handler in previous_handlers.items():
                    signal.signal(number, handler)

    def _latching_interrupts(self):
        """Make SIGINT (and SIGTERM, SIGHUP, where :func:`dlcore.interrupt_on_termination`
        turned them into interruptions) also set a flag that the next epoch's end raises
        again: Python drops an exception raised while a weakref callback or ``__del__`` runs
        ("Exception ignored in"), so a Ctrl-C landing in garbage collection (of the h5py
        objects a checkpoint leaves, say) went unnoticed and training ran on (under mpiexec,
        forever; a cluster's SIGTERM until its SIGKILL). The handlers replaced, by signal:
        none where Python's default (or dlcore's) was not in place, or not in the main
        thread."""
        if threading.current_thread() is not threading.main_thread():
            return {}
        raising = {signal.SIGINT: signal.default_int_handler,
                   **{number: raise_terminated for number in TERMINATION_SIGNALS}}
        replaced = {}
        for number, handler in raising.items():
            if signal.getsignal(number) is not handler:
                continue

            def interrupt(signum, frame, handler=handler):
                self._interrupt_pending = (handler, signum)
                handler(signum, frame)

            replaced[number] = signal.signal(number, interrupt)
        return replaced


#: One entry for each command :class:`OneLineErrorGroup` runs (a sweep's runs share the
#: sweep's: it runs them through click's own ``main``, so that one run's stop holds the
#: signals until the sweep's line is said): None while it runs, the list of the signals held
#: once it stops for an interruption (:func:`_holding_interruptions` with ``until_said``),
#: until its line is said.
_STOPPING = []


@contextlib.contextmanager
def _stopping_once():
    """Around a command that :class:`OneLineErrorGroup` runs: once it stops for an
    interruption, a second Ctrl-C, SIGTERM or SIGHUP waits until the first's line is said
    (:func:`_holding_interruptions`); the handlers the command began with are put back when
    it ends."""
    numbers = (signal.SIGINT, *TERMINATION_SIGNALS)
    main_thread = threading.current_thread() is threading.main_thread()
    before = {number: signal.getsignal(number) for number in numbers} if main_thread else {}
    _STOPPING.append(None)
    try:
        yield
    finally:
        if _STOPPING.pop() is not None:
            for number, handler in before.items():
                if handler is not None:
                    signal.signal(number, handler)


def _stopped():
    """Whether the running command stopped for an interruption and holds the signals after
    it until its line is said."""
    return bool(_STOPPING) and _STOPPING[-1] is not None


@contextlib.contextmanager
def _holding_interruptions(until_said=False):
    """Within the block (the save of the checkpoint that a Ctrl-C asked for), hold a second
    Ctrl-C, SIGTERM or SIGHUP instead of raising it: one landing in the save threw the
    checkpoint away (or left it whole but unannounced), and the line said "interrupted by
    SIGTERM" with no word of the epochs trained. The first interruption wins: its line and
    exit code (130 for Ctrl-C) are the command's, and the signals held are named in the line
    (:func:`_held_note`). Yields the list of the signals' names held.

    ``until_said``: the block is the command stopping for the first interruption, and the
    signals stay held after it, until :class:`OneLineErrorGroup` has said the line the block
    made and the command ends (:func:`_stopping_once`): one landing just after the save, as
    the line was made or the command's folder released (a double Ctrl-C, 50 ms apart), was
    raised there, and the command said a bare "interrupted", of neither the saved
    checkpoint nor the command that resumes it, or printed a traceback."""
    held = []
    if threading.current_thread() is not threading.main_thread():
        yield held
        return
    stays = until_said and bool(_STOPPING)
    if stays and _stopped():
        yield _STOPPING[-1]
        return

    def hold(signum, frame):
        name = signal.Signals(signum).name
        if name not in held:
            held.append(name)

    previous = {number: signal.signal(number, hold)
                for number in (signal.SIGINT, *TERMINATION_SIGNALS)
                if signal.getsignal(number) not in (signal.SIG_IGN, signal.SIG_DFL, None)}
    if stays:
        _STOPPING[-1] = held
    try:
        yield held
    finally:
        if not stays:
            for number, handler in previous.items():
                signal.signal(number, handler)


def _held_note(held):
    """What the interruption line adds about the signals :func:`_holding_interruptions` held."""
    if not held:
        return ""
    names = " and ".join("a Ctrl-C" if name == "SIGINT" else f"a {name}" for name in held)
    return f" ({names} came during the save and waited for the file to be whole)"


def _file_identity(path):
    """What tells a file at ``path`` from another written there later (a checkpoint is written
    to a temporary name and renamed: a new inode), or None when there is none."""
    try:
        status = Path(path).stat()
    except OSError:
        return None
    return status.st_ino, status.st_mtime_ns, status.st_size


def current_parameters(context):
    """The running command's parameters as JSON values; a path to the data (a folder of IDX
    files, a photograph) as its parameter type's ``recorded`` gives it, absolute, so that a
    run resumed from another folder reads the same files."""
    recorded = {param.name: getattr(param.type, "recorded", None)
                for param in context.command.params}
    return {name: _json_value(value if recorded.get(name) is None else recorded[name](value))
            for name, value in context.params.items()}


#: Options a resumed run may change: the new total of epochs (--epochs), where it computes
#: (--backend) and writes (--out), how often it checkpoints. Every other option given with
#: --resume must equal the value the checkpoint was trained with, data options included (other
#: digits or another seed's split would not continue the same training); options not given
#: take that value.
RESUME_MAY_CHANGE = frozenset({"epochs", "backend", "out", "checkpoint_every", "resume",
                               "distributed", "sync_every"})
#: Options of :data:`RESUME_MAY_CHANGE` that, when not given, still take the checkpoint's
#: value: the total of epochs, so that ``--resume FILE`` alone trains "the epochs it had left"
#: towards the run's own total (as ``rbm.resume(X)`` and Keras's ``initial_epoch`` do), not
#: towards the command's default.
RESUME_KEEPS_UNLESS_GIVEN = frozenset({"epochs"})
_RESUMED_MODEL = "dlcore.resumed_model"


def resumed_options(hyperparameters=None, may_change=RESUME_MAY_CHANGE):
    """Decorator of a training command with --resume: the options of the checkpoint's run.

    The values a checkpoint was trained with come from its training record (the parameters of
    the command that wrote it) and from the model itself, ``hyperparameters`` mapping an option
    name to the model attribute it set (``{"hidden": "n_hidden"}``, or a path of attributes:
    ``"optimizer.weight_decay"``; the model wins). An option
    given on the command line with another value is refused in one line (exit 2); one not given
    takes the checkpoint's value, so that the training, the record and the printed resume
    command all show the configuration actually trained. See :data:`RESUME_MAY_CHANGE`; a
    command whose finished work an option shapes gives ``may_change`` without it (homework
    regularisation: a row of another --epochs would not belong in the same table).
    """
    def decorate(command):
        @functools.wraps(command)
        def run(**options):
            path = options.get("resume")
            context = click.get_current_context()
            if path is not None and "out" in options and context.get_parameter_source(
                    "out") is not ParameterSource.COMMANDLINE:
                # the run goes on where its file is, not in the command's default folder,
                # where it would leave that checkpoint pending and its outputs apart
                options["out"] = context.params["out"] = Path(path).parent
            _refuse_to_overwrite_a_checkpoint(options.get("out"), path)
            if path is not None:
                from dlcore.io import load
                model = load(path)
                _refuse_another_commands_file(context, model, path)
                context.meta[_RESUMED_MODEL] = (Path(path), model)
                trained = _trained_options(context, model, hyperparameters or {}, may_change)
                for name, value in trained.items():
                    options[name] = context.params[name] = _adopt_option(context, name, value)
            return command(**options)
        return run
    return decorate


def _refuse_to_overwrite_a_checkpoint(out, resume):
    """Refuse a run whose --out holds a checkpoint other than the one it resumes: this run's
    own checkpoints would replace that interrupted run's pending work. A model file of --out
    written after the checkpoint supersedes it: the finished model (model.h5, dbn.h5), or the
    file resumed, a stage that a command of several stages finished later (homework
    pretraining's deep_net.h5)."""
    if out is None:
        return
    pending = Path(out) / CHECKPOINT_FILE
    if not pending.is_file() or (resume is not None and _same_file(pending, resume)):
        return
    later = [Path(out) / name for name in FINISHED_MODEL_FILES]
    if resume is not None and _same_file(Path(resume).parent, out):
        later.append(Path(resume))
    for finished in later:
        if finished.is_file() and finished.stat().st_mtime_ns >= pending.stat().st_mtime_ns:
            return   # the run that checkpointed there went on: its model file supersedes it
    damage = _why_not_resumable(pending)
    if damage is not None:
        # "resume it with" led to the resumed run's refusal of the damaged file, which asked
        # to save the model again: a loop for a student who only wants to start afresh
        raise click.ClickException(
            f"--out {shell_word(str(out))} holds the checkpoint of an interrupted run, but it "
            f"cannot be resumed ({damage}): delete {shell_word(str(pending))} to start "
            f"again there, or choose another --out")
    raise click.ClickException(
        f"--out {shell_word(str(out))} holds the checkpoint of an interrupted run, which "
        f"this run would overwrite; resume it with: {resume_command(pending, options=False)}"
        f" (or choose another --out, or delete {shell_word(str(pending))})")


def _why_not_resumable(checkpoint):
    """What makes ``checkpoint`` unreadable as a model file (truncated by a copy cut short,
    emptied, not HDF5), as :func:`dlcore.io.describe` finds it without reading the
    parameters, or None where it reads; the problem alone, without the fix the file's
    message gives for a model to load."""
    from dlcore.io import ModelFileError, describe
    try:
        describe(checkpoint)
    except ModelFileError as error:
        return str(error).rsplit("; ", 1)[0]     # "<file>: <problem>; <what to do>"
    return None


def _same_file(path, other):
    try:
        return Path(path).samefile(other)
    except OSError:
        return False


def _refuse_another_commands_file(context, model, path):
    """Refuse a --resume file that another command wrote (its training record names the
    command): it trained on that command's data, which this one would silently change."""
    recorded = (recorded_training(model) or {}).get("command")
    if not isinstance(recorded, str) or _same_command(recorded, context):
        return
    writer = _dlcore_command(recorded, context)
    running = _dlcore_command(context.command_path, context)
    resume = _writers_resume_command(context, writer, recorded_training(model), path)
    raise click.ClickException(
        f"{path} was written by '{writer}', not by '{running}': a resumed run continues "
        f"the same training; resume it with: {resume}")


def _writers_resume_command(context, writer, record, path):
    """The command line that resumes ``path`` with the command that wrote it (``writer``,
    "dlcore dbn finetune"): its arguments as the file's record has them (`dbn finetune`
    takes the DBN it fine-tunes), then ``--resume path``; the options come from the file."""
    command = context.find_root().command
    for name in writer.split()[1:]:
        command = (command.get_command(context, name) if isinstance(command, click.Group)
                   else None)
    parameters = record.get("parameters") if isinstance(record.get("parameters"), dict) \
        else {}
    words = [writer]
    for param in getattr(command, "params", ()):
        if isinstance(param, click.Argument):
            value = parameters.get(param.name)
            values = value if isinstance(value, list) else [value]
            words += [shell_word(str(item)) if item is not None else param.human_readable_name
                      for item in values]
    return " ".join(words + ["--resume", shell_word(str(path))])


def _dlcore_command(command_path, context):
    """``"python -m dlcore rbm train"`` (any program name) -> ``"dlcore rbm train"``: the
    words from the first that names one of the top-level commands."""
    words = command_path.split()
    top_level = context.find_root().command
    names = top_level.list_commands(context) if isinstance(top_level, click.Group) else []
    start = next((index for index, word in enumerate(words) if word in names), len(words))
    return " ".join(["dlcore", *words[start:]])


def _trained_options(context, model, hyperparameters, may_change=RESUME_MAY_CHANGE):
    record = recorded_training(model) or {}
    trained = {}
    if _same_command(record.get("command"), context) and isinstance(
            record.get("parameters"), dict):
        trained.update(record["parameters"])
    for name, attribute in hyperparameters.items():
        try:   # a path of attributes ("optimizer.weight_decay"): the model's or its parts'
            value = operator.attrgetter(attribute)(model)
        except AttributeError:
            value = None
        if value is not None:
            trained[name] = value.item() if hasattr(value, "item") else value
    parameters = {param.name: param for param in context.command.params
                  if isinstance(param, click.Option)}
    return {name: value for name, value in trained.items()
            if name in parameters and (name not in may_change or (
                name in RESUME_KEEPS_UNLESS_GIVEN
                and context.get_parameter_source(name) is not ParameterSource.COMMANDLINE))}


def _same_command(recorded, context):
    """Whether ``recorded`` (a record's command path, "dlcore rbm train") names the running
    command, whatever the program was called ("python -m dlcore rbm train")."""
    names = []
    while context.parent is not None:
        names.append(context.info_name)
        context = context.parent
    return isinstance(recorded, str) and recorded.split()[-len(names):] == names[::-1]


def _adopt_option(context, name, trained):
    """The value option ``name`` takes in a resumed run: ``trained``, after checking that the
    command line did not ask for another."""
    param = next(param for param in context.command.params if param.name == name)
    given = context.params.get(name)
    if trained is not None:
        try:
            trained = param.type_cast_value(context, trained)
        except (click.BadParameter, TypeError, ValueError, AttributeError):
            # click's int() of a list raises TypeError, its bool of a number AttributeError
            # a path stays as recorded (an image that has since moved is the command's to
            # name); any other value the option refuses no run recorded
            if not (isinstance(trained, str) and isinstance(param.type, click.Path)):
                raise _damaged_record(context, param, trained) from None
    elif param.default is not None and param.callback is None:
        raise _damaged_record(context, param, trained)
    # a parameter type may say which values are one (a default and the value it stands for)
    # and how a value reads in a sentence ("the bundled coffee cup (coffee)", not "None")
    canonical = getattr(param.type, "canonical", lambda value: value)
    if context.get_parameter_source(name) is ParameterSource.COMMANDLINE and not _same(
            canonical(given), canonical(trained)):
        shown = param.opts[0] if param.is_flag and given else (
            param.secondary_opts[0] if param.is_flag and param.secondary_opts
            else f"{param.opts[0]} {given}")
        describe = getattr(param.type, "describe", None)
        was = (("on" if trained else "off") if param.is_flag
               else describe(trained) if describe is not None
               else "default value" if trained is None else trained)
        raise click.UsageError(
            f"{shown} differs from the {was} the checkpoint was trained with: a resumed run "
            "continues the same training; drop the option or start a new run", context)
    return trained


def _damaged_record(context, param, value):
    """The one-line error of a --resume file whose training record gives ``param`` a value
    the option does not take (a file edited or damaged: the record is the file's, untrusted)."""
    path = context.params.get("resume")
    shown = json.dumps(_json_value(value), default=repr)
    return click.ClickException(
        f"{path}: its training record gives {param.opts[0]} the value {shown[:80]}, which "
        f"{param.opts[0]} does not take; the file was edited or damaged: start a new run, or "
        f"train the model on in Python (dlcore.load)")


def _same(given, trained):
    if isinstance(given, float) and isinstance(trained, (int, float)) and trained is not None:
        return math.isclose(given, trained, rel_tol=1e-6)
    return _json_value(given) == _json_value(trained)


def load_checkpoint(path, model_class):
    """The model of ``path`` (a --resume file), refused in one line unless a ``model_class``."""
    from dlcore.io import load
    context = click.get_current_context(silent=True)
    loaded = context.meta.pop(_RESUMED_MODEL, None) if context is not None else None
    model = loaded[1] if loaded is not None and loaded[0] == Path(path) else load(path)
    if not isinstance(model, model_class):
        raise click.ClickException(f"{path} holds {with_article(type(model).__name__)}, not "
                                   f"{with_article(model_class.__name__)}: --resume takes the "
                                   f"{CHECKPOINT_FILE} of an interrupted run of this command")
    return model


#: The options of the RBM commands and the BernoulliRBM/GaussianBernoulliRBM parameters they
#: set: a resumed RBM keeps its own.
RBM_HYPERPARAMETERS = {"hidden": "n_hidden", "epochs": "epochs", "cd_k": "cd_k",
                       "persistent": "persistent",
                       "batch_size": "batch_size", "learning_rate": "learning_rate",
                       "momentum": "momentum", "weight_decay": "weight_decay",
                       "sparsity_target": "sparsity_target", "seed": "seed",
                       "sampler": "sampler", "n_chains": "n_chains",
                       "n_temperatures": "n_temperatures"}


def resumed_rbm(path, model_class, epochs, backend):
    """The RBM of ``path`` to train on to ``epochs`` epochs in all, on ``backend`` (the
    command is decorated with ``resumed_options(RBM_HYPERPARAMETERS)``)."""
    model = load_checkpoint(path, model_class)
    refuse_fewer_epochs(path, model.epochs_done_, epochs)
    return model.set_params(epochs=epochs, backend=backend)


def refuse_fewer_epochs(path, done, epochs):
    """A usage error where the new total ``--epochs`` of a run resumed from ``path`` is below
    the ``done`` epochs it trained: a resumed run cannot untrain them (and `dbn finetune`,
    whose resume took the smaller total as the run's, said "all 1 epoch trained already" of
    19)."""
    if epochs < done:
        raise click.BadParameter(f"{path} has trained {count(done, 'epoch')} already; give "
                                 f"--epochs {done} or more", param_hint="--epochs")


#: What an RBM's training lines measure, after their figure: not the held-out tables' error.
TRAINING_ERROR_UNIT = "per pixel on the training batches"
#: The same for an RBM whose visible units are not pixels (a DBN's upper layers).
TRAINING_ERROR_UNIT_OF_UNITS = "per visible unit on the training batches"


def note_batch_size(batch_size, n_rows, noun="training images"):
    """One line when ``--batch-size`` is more than the ``n_rows`` rows an epoch walks: an
    epoch is then a single batch of them all, one update, which the run would otherwise do
    unsaid (scikit-learn's MLP warns "Got `batch_size` ... larger than sample size. It is
    going to be clipped"; Keras clips without a word)."""
    from dlcore.backend import started_as_another_rank
    if batch_size is not None and batch_size > n_rows > 0 and not started_as_another_rank():
        click.echo(f"dlcore: --batch-size {batch_size} is more than the {n_rows:,} {noun}: "
                   f"each epoch is one batch of {n_rows:,}, a single update (a smaller "
                   "--batch-size updates more often)", err=True)


def refuse_unsaveable_chains(model, n_visible):
    """A usage error, before training, for an RBM whose persistent chains are more states than
    a model file holds (``dlcore.io.layouts.unstored_chain_problem``, which ``dlcore.save``
    and ``dlcore.load`` apply): `--sampler pt --temperatures 1000 --batch-size 200` trained
    and only then was refused its model.h5, its training lost."""
    from dlcore.io.layouts import MAX_UNSTORED_WEIGHTS, unstored_chain_problem
    from dlcore.rbm.chains import chain_rows
    if not hasattr(model, "n_temperatures"):   # an autoencoder: no chains
        return
    rows = chain_rows(model.sampler, model.persistent, model.n_chains, model.batch_size,
                      model.n_temperatures, model.temperatures)
    if unstored_chain_problem(rows, model.n_hidden, n_visible) is not None:
        raise click.UsageError(
            f"the persistent chains would hold {rows:,} x ({model.n_hidden:,} hidden + "
            f"{n_visible:,} visible) states, more than the {MAX_UNSTORED_WEIGHTS:,} a model "
            "file holds, so the trained model could not be saved; give a smaller --chains, "
            "--batch-size or --temperatures")


#: What a command resumed with nothing left to train does (:func:`resuming_line`)
OUTPUTS_WRITTEN_AGAIN = "the outputs are written again without training"


def resuming_line(done, total, unit="epoch", where="", longer="--epochs", stopped=False,
                  then=OUTPUTS_WRITTEN_AGAIN):
    """The one line every command resumed from a checkpoint says under its "training ..."
    line: how much of the run is trained and what it trains now, or that nothing is left
    (``--resume runs/x/model.h5`` of a finished run only writes the outputs again), which the
    "training" line alone, followed by no epoch at all, left a user to guess.

    Parameters
    ----------
    done, total : int, how many ``unit`` the run trained, and its total of them
    unit : str, what the run counts ("epoch"; "row" of a table)
    where : str, appended to the count: the position in a run of layers (" (RBM 2 of 3,
        epoch 4 of 10)")
    longer : str or None, the option that trains on past a finished run's total (None for
        a command whose resume keeps the checkpoint's total)
    stopped : bool, early stopping ended the run after ``done``: nothing is left however
        many of ``total`` were trained
    then : str, what the command does when nothing is left: writes its outputs again, or,
        for a stage of a command of several, goes on to the next stages
    """
    if stopped or done >= total:
        if stopped:
            trained = (f"{done} of {count(total, unit)} trained{where}, early stopping ended "
                       "the run there")
        else:   # "all 1 epoch" is not English
            trained = f"{'all ' if total != 1 else ''}{count(total, unit)} trained already"
        advice = f" (a larger {longer} trains on)" if longer and not stopped else ""
        return f"resuming: {trained}, none left: {then}{advice}"
    return (f"resuming: {done} of {count(total, unit)} trained{where}, training the "
            f"{total - done} left")


def train_rbm(model, X, checkpoints, resuming, monitor="reconstruction error",
              unit=TRAINING_ERROR_UNIT, rows="training images", **fit_options):
    """``model.fit(X)`` (or ``model.resume(X)``) with a progress bar showing ``monitor``
    followed by ``unit`` (what it is measured in and on), the checkpoints and Ctrl-C handling
    of :class:`Checkpoints` (an RBM, or any model trained by epochs with the same
    ``fit``/``resume``/``epochs_done_``, such as an Autoencoder). ``rows``: what the rows of
    ``X`` are, for the line of a --batch-size above their number."""
    def where(rbm):
        return f"epoch {rbm.epochs_done_} of {rbm.epochs}"

    if resuming:
        checkpoints.track(model, where)
        click.echo(resuming_line(model.epochs_done_, model.epochs), err=True)
    refuse_unsaveable_chains(model, X.shape[1])
    note_batch_size(getattr(model, "batch_size", None), len(X), rows)
    progress = EpochProgress("training", monitor, unit)
    with checkpoints.on_interrupt():
        try:
            train = model.resume if resuming else model.fit
            train(X, progress=progress, on_epoch_end=lambda rbm: checkpoints.epoch_finished(
                rbm, where), **fit_options)
        finally:
            progress.close()
    return model


def dataset_identity(dataset):
    """How a training record names a data set: its canonical name (``"fashion-mnist"``), or
    the absolute path of a folder of IDX files."""
    from dlcore.datasets import dataset_key
    return dataset_key(dataset) or str(Path(dataset).resolve())


def _json_value(value):
    """A command parameter as JSON: paths as text, tuples as lists."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_json_value(item) for item in value]
    return value


def training_record(dataset, classes, n_images, **details):
    """What a model file records about its training (root attribute ``training_record``,
    docs/hdf5-format.md): the data set, its classes and their names, the number of training
    images, the command line and every parameter of the running command.

    Parameters
    ----------
    dataset : str, the --dataset value (or, for photographs, the file name)
    classes : sequence of int, the labels trained on (empty for unlabelled data)
    n_images : int
    details : more JSON-serialisable entries (e.g. ``n_patches``)

    Returns
    -------
    dict, JSON-serialisable
    """
    from dlcore.datasets import class_names
    context = click.get_current_context()
    classes = sorted(int(label) for label in classes)
    names = class_names(dataset, max(classes) + 1) if classes else []
    return {"dataset": dataset_identity(dataset) if classes else str(dataset),
            "classes": classes, "class_names": [names[label] for label in classes],
            "n_images": int(n_images), "command": context.command_path,
            "command_line": " ".join(sys.argv),
            "parameters": current_parameters(context),
            **details}


def recorded_training(model):
    """The model's training record, or None (a model saved before records, or by a script)."""
    record = getattr(model, "training_record_", None)
    return record if isinstance(record, dict) else None


def warn_if_other_dataset(model, model_file, dataset):
    """One line on stderr when ``model_file`` was trained on another data set than
    ``dataset``: its numbers then measure a transfer, not the held-out accuracy."""
    record = recorded_training(model)
    trained_on = record.get("dataset") if record else None
    if isinstance(trained_on, str) and trained_on != dataset_identity(dataset):
        click.echo(f"warning: {model_file} was trained on {trained_on}, not on "
                   f"{dataset_identity(dataset)}", err=True)


def terminal_columns(stream):
    """How many columns a line on ``stream`` may fill: $COLUMNS where set (as
    ``shutil.get_terminal_size`` reads it), else the width of the terminal ``stream`` is on,
    else the terminal of standard output's, else 80."""
    if not os.environ.get("COLUMNS"):
        try:
            return os.get_terminal_size(stream.fileno()).columns
        except (AttributeError, ValueError, OSError):
            pass
    return shutil.get_terminal_size().columns


def _time_left(seconds):
    seconds = int(round(seconds))
    return f"{seconds} s left" if seconds < 120 else f"{seconds // 60} min left"


class EpochProgress:
    """A progress bar over all mini-batches of a fit, showing the running monitor, on stderr;
    when stderr is not a terminal (a log file, a pipe, a notebook), where a bar would print
    nothing, one line per finished epoch instead.

    On a terminal the running line is redrawn in place (``\\r``) and always fits the
    terminal's width: the bar, then the unit, then more are left out until it does (a line
    that wraps is redrawn from its last row only, leaving every earlier row on the screen).
    Each finished epoch ends its line, so every epoch's error stays on the screen; where the
    unit does not fit beside the numbers, it is said once in a line of its own.

    Use as ``progress=`` callback of a model's ``fit`` (signature
    ``(epoch, epochs, batches_done, n_batches, value)``); ``unit`` follows the figure (an
    RBM's "per pixel on the training batches").
    """

    #: the widest bar drawn, and the narrowest worth drawing
    BAR_WIDTH = (36, 10)
    #: seconds between two redraws of the running line
    REDRAW_EVERY = 0.1

    def __init__(self, label, monitor="reconstruction error", unit=None):
        self.label, self.monitor = label, monitor
        self.unit = f" {unit}" if unit else ""
        self.interactive = sys.stderr.isatty()
        self.started = self.drawn_at = None
        self.drawn = 0            # the length of the running line on the screen, 0: none
        self.unit_said = False

    def __call__(self, epoch, epochs, batches_done, n_batches, value):
        finished = batches_done == n_batches
        if not self.interactive:
            if finished:
                click.echo(self._finished(epoch, epochs, value, self.unit), err=True)
            return
        now = time.monotonic()
        if self.started is None:
            self.started = now
        if not finished and self.drawn_at is not None \
                and now - self.drawn_at < self.REDRAW_EVERY:
            return
        self.drawn_at = now
        width = terminal_columns(sys.stderr) - 1   # the last column would wrap some terminals
        if self.unit and not self.unit_said \
                and len(self._finished(epochs, epochs, value, self.unit)) > width:
            # the unit in a line of its own, once, before the numbers without it (a line that
            # is not redrawn may wrap, but the label is left out before it does)
            key = f"{self.label}: {self.monitor}{self.unit}"
            self._write(key if len(key) <= width else f"{self.monitor}{self.unit}", None,
                        end="\n")
            self.unit_said = True
        if finished:
            line = self._finished(epoch, epochs, value, self.unit)
            if len(line) > width:
                line = self._finished(epoch, epochs, value, "")
            self._write(line, width, end="\n")
            return
        done = ((epoch - 1) * n_batches + batches_done) / (epochs * n_batches)
        elapsed = now - self.started
        left = f"  {_time_left(elapsed * (1 - done) / done)}" if done > 0 and elapsed > 0 else ""
        numbers = f"epoch {epoch}/{epochs}  {self.monitor} {value:.4f}"
        percent = f"{int(100 * done):3d}%"
        candidates = [self._running(percent, numbers + unit + left, width, done)
                      for unit in (self.unit, "")]
        candidates += [f"{self.label}  {percent}  {numbers}{left}",
                       f"{self.label} {percent.strip()} epoch {epoch}/{epochs} {value:.4f}"]
        self._write(next((line for line in candidates if line and len(line) <= width),
                         candidates[-1]), width)

    def _finished(self, epoch, epochs, value, unit):
        return f"{self.label}: epoch {epoch}/{epochs}  {self.monitor} {value:.4f}{unit}"

    def _running(self, percent, text, width, done):
        """The running line with a bar as wide as ``width`` leaves beside ``text`` (up to
        ``BAR_WIDTH``), or None where not even the narrowest bar fits."""
        room = min(width - len(f"{self.label}  []  {percent}  {text}"), self.BAR_WIDTH[0])
        if room < self.BAR_WIDTH[1]:
            return None
        filled = int(round(room * done))
        return f"{self.label}  [{'#' * filled}{'-' * (room - filled)}]  {percent}  {text}"

    def _write(self, line, width, end=""):
        """``line``, cut to ``width`` (None: whole), over the running line (``\\r``, then
        spaces over what is left of a longer one)."""
        line = line if width is None else line[:width]
        stream = sys.stderr
        stream.write("\r" + line + " " * max(0, self.drawn - len(line)) + end)
        stream.flush()
        self.drawn = 0 if end else len(line)

    def close(self):
        """Ends a running line left by a fit stopped inside an epoch (Ctrl-C, an error)."""
        if self.drawn:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self.drawn = 0
