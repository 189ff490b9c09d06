"""Write a file under a temporary ``*.part`` name and rename it only when it is complete.

A reader then sees either no file or the whole file, never half of one: an interrupted
download, a failed checksum or a full disk leaves nothing behind.
"""
import contextlib
import os
import secrets
from pathlib import Path


def part_path(target):
    """A fresh ``<name>.<random>.part`` beside ``target``: two writers never share one."""
    target = Path(target)
    return target.with_name(f"{target.name}.{secrets.token_hex(4)}.part")


@contextlib.contextmanager
def atomic_writer(target):
    """Open a ``*.part`` file for binary writing; rename it to ``target`` on success.

    Any exception inside the ``with`` block (including one raised by the caller after a
    failed check) deletes the partial file and propagates.

    Parameters
    ----------
    target : str or os.PathLike
        The final path; its directory must exist.

    Yields
    ------
    file
        A binary file object opened on the ``*.part`` file.
    """
    temporary = part_path(target)
    # os.open with mode 0o666 honours the umask (tempfile.mkstemp would force 0o600).
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as file:
            yield file
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
