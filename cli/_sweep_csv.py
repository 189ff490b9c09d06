"""The CSV of ``dlcore sweep`` (cli/sweep.py): one row per run, written atomically, and read
back by ``--resume``, which keeps the rows of the runs an interrupted sweep finished.

A row: the run's index, its grid values, status (``ok`` or ``error``) and the one-line error,
the run's final figures (the columns in order of appearance), its wall-clock seconds, the rank
that ran it and its command line, which ``--resume`` checks against the sweep's own: a CSV of
another grid or command is refused in one line, as is a row a hand or a spreadsheet damaged.
"""
import csv

import click

from dlcore.cli._common import one_line
from dlcore.io import atomic_open

#: The columns of every row, around the grid's values and the run's figures.
FIRST_COLUMNS = ("run",)
STATUS_COLUMNS = ("status", "error")
LAST_COLUMNS = ("seconds", "rank", "command")


def write_rows(path, rows, axes):
    """The CSV: one row per run in run order; the figures' columns in order of appearance."""
    rows = sorted(rows, key=lambda row: row["run"])
    fixed = {*FIRST_COLUMNS, *(axis.name for axis in axes), *STATUS_COLUMNS, *LAST_COLUMNS}
    figures = list(dict.fromkeys(name for row in rows for name in row if name not in fixed))
    columns = [*FIRST_COLUMNS, *(axis.name for axis in axes), *STATUS_COLUMNS, *figures,
               *LAST_COLUMNS]
    with atomic_open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, columns, restval="")
        writer.writeheader()
        writer.writerows(rows)


def read_finished_rows(path, runs):
    """The rows of ``path``, the CSV of an interrupted sweep of ``runs`` (the same grid and
    command), by run index: what ``--resume`` keeps. A usage error in one line for a file that
    is not such a CSV (a damaged row included), or holds a run of another sweep. A file that
    a spreadsheet saved (Excel's "CSV UTF-8" begins with a byte-order mark) reads as written."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            columns = reader.fieldnames or []
    except FileNotFoundError:
        raise click.UsageError(f"--resume: {path} does not exist: give the --out of the "
                               "interrupted sweep") from None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise click.UsageError(f"--resume: cannot read {path}: {one_line(error)}") from None
    if rows and not {"run", "command"} <= set(columns):
        raise click.UsageError(
            f"--resume: {path} is not the CSV of a sweep: its first line names the columns "
            f"{', '.join(map(repr, columns)) or 'none'}, with no 'run' or 'command' (saved "
            "with another separator?); give the CSV that dlcore sweep wrote, or another --out")
    for line, row in enumerate(rows, start=2):
        if None in row or None in row.values():
            values = len(columns) + len(row.get(None, ())) - list(row.values()).count(None)
            raise click.UsageError(
                f"--resume: row {line} of {path} has {values} values for {len(columns)} "
                f"columns; mend it or delete it (its run runs again), or give another --out")
    finished = {}
    for row in rows:
        text = row.get("run") or ""
        # str.isdigit alone passes "²" and digits past int()'s 4300: a traceback, not a line
        index = int(text) if text.isascii() and text.isdigit() and len(text) < 19 else -1
        if not 0 <= index < len(runs) or row.get("command") != runs.command_line(index):
            shown = text if len(text) <= 20 else f"{text[:20]}..."
            raise click.UsageError(
                f"--resume: {path} holds a run of another sweep (run {shown or '?'}: "
                f"{row.get('command') or 'no command'}); give the grid and command of the "
                "sweep that wrote it, or another --out")
        # as the run's own row was: a figure it did not have is no column of it
        finished[index] = {**{name: value for name, value in row.items() if value != ""},
                           "run": index}
    return finished
