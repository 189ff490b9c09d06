"""What every ``dlcore`` command shares: one-line errors, common options, progress bars, output
folders."""
import os
import sys
from pathlib import Path

import click

from dlcore.backend import BACKEND_NAMES

# Errors the library raises on bad input or missing resources: shown as one line, exit code 1.
RUNTIME_ERRORS = (ValueError, OSError, RuntimeError)


def one_line(text):
    """Collapse a message onto one line (some library messages list files on several)."""
    return "; ".join(part.strip() for part in str(text).splitlines() if part.strip())


class OneLineErrorGroup(click.Group):
    """A Click group whose errors are one line on stderr: ``dlcore: error: ...``.

    Exit codes: 2 for usage errors (unknown option, bad value), 1 for runtime errors (missing
    file, unreadable data, no GPU).
    """

    def main(self, args=None, prog_name=None, **extra):
        try:
            result = super().main(args=args, prog_name=prog_name, standalone_mode=False,
                                  **extra)
        except click.exceptions.Abort:
            click.echo("dlcore: aborted", err=True)
            sys.exit(1)
        except click.UsageError as error:
            click.echo(f"dlcore: error: {one_line(error.format_message())} "
                       f"(see '{_command_path(error)} --help')", err=True)
            sys.exit(2)
        except click.ClickException as error:
            click.echo(f"dlcore: error: {one_line(error.format_message())}", err=True)
            sys.exit(error.exit_code)
        except RUNTIME_ERRORS as error:
            click.echo(f"dlcore: error: {one_line(error)}", err=True)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)


def _command_path(error):
    return error.ctx.command_path if error.ctx is not None else "dlcore"


def backend_option(function):
    return click.option("--backend", type=click.Choice(BACKEND_NAMES, case_sensitive=False),
                        default="auto", show_default=True,
                        help="Where the maths runs (auto: $DLCORE_BACKEND, else cuda if a GPU "
                             "is usable, else cpu).")(function)


def seed_option(function):
    return click.option("--seed", type=click.IntRange(0, 2 ** 63 - 1), default=0,
                        show_default=True, help="Seed of the Philox generator.")(function)


def dataset_option(default="mnist-5k"):
    return click.option("--dataset", default=default, show_default=True,
                        help="mnist-5k (bundled), mnist, fashion-mnist, or a folder of IDX files.")


def out_folder_option(default):
    """``--out DIR``, the folder a command writes its files into (created when missing)."""
    return click.option("--out", type=click.Path(file_okay=False, path_type=Path),
                        default=Path(default), show_default=True, help="Output folder.")


def output_folder(path):
    """Create ``path`` (and parents) and check that we can write in it; one-line error if not."""
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise click.ClickException(f"cannot create the output folder {folder}: "
                                   f"{error.strerror or error}") from None
    if not os.access(folder, os.W_OK):
        raise click.ClickException(f"cannot write in the output folder {folder}: "
                                   "choose another with --out")
    return folder


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
            "parameters": {name: _json_value(value) for name, value in context.params.items()},
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


class EpochProgress:
    """A progress bar over all mini-batches of a fit, showing the running monitor, on stderr;
    when stderr is not a terminal (a log file, a pipe, a notebook), where a bar would print
    nothing, one line per finished epoch instead.

    Use as ``progress=`` callback of a model's ``fit`` (signature
    ``(epoch, epochs, batches_done, n_batches, value)``).
    """

    def __init__(self, label, monitor="reconstruction error"):
        self.label, self.monitor = label, monitor
        self.bar = None
        self.position = 0
        self.interactive = sys.stderr.isatty()

    def __call__(self, epoch, epochs, batches_done, n_batches, value):
        if not self.interactive:
            if batches_done == n_batches:
                click.echo(f"{self.label}: epoch {epoch}/{epochs}  {self.monitor} {value:.4f}",
                           err=True)
            return
        if self.bar is None:
            self.bar = click.progressbar(length=epochs * n_batches, label=self.label,
                                         file=sys.stderr, show_eta=True,
                                         item_show_func=lambda text: text)
            self.bar.__enter__()
        target = (epoch - 1) * n_batches + batches_done
        self.bar.update(target - self.position,
                        f"epoch {epoch}/{epochs}  {self.monitor} {value:.4f}")
        self.position = target

    def close(self):
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None
