"""Data set files are written through dlcore's one atomic writer (:mod:`dlcore.io.atomic`).

A reader then sees either no file or the whole file, never half of one: an interrupted
download, a failed checksum or a full disk leaves nothing behind.
"""
from dlcore.io.atomic import atomic_open


def atomic_writer(target):
    """A binary file object on a temporary file that replaces ``target`` when the ``with``
    block ends normally; any exception inside the block (including one raised by the caller
    after a failed check) deletes the temporary file and propagates. The directory of
    ``target`` must exist."""
    return atomic_open(target, "wb")
