"""The one way dlcore writes a file: completely, or not at all.

Every file a dlcore command or function writes (HDF5 models, PNG figures, CSV tables, JSON
metrics, downloaded and converted data sets) goes through :func:`atomic_output_path` (for
writers that want a path, such as h5py, Pillow and matplotlib) or :func:`atomic_open` (for
writers that want a file object, such as ``csv`` and ``json``). The content goes to a temporary
file beside the target, is flushed to disk and then renamed onto the target with
``os.replace``: a reader sees the previous complete file or the new complete file, never half
of one, and an interrupted write (Ctrl-C, a full disk, a failed checksum) leaves the previous
file intact and no temporary file behind. Some are written otherwise, as ``open(path, "w")``
writes them: a symbolic link is written through (the file it leads to is replaced, the link
stays); a file this user may write in a folder that takes no new file (a hand-in folder of
mode 555), or another user's in a sticky folder (mode 1777), is written in place, its new
version made whole in the temporary folder first and its previous one kept there until the
copy is done (see :func:`atomic_output_path`), so a reader may see it change during the copy;
a named pipe, a device or ``/dev/stdout`` is written into, the content made whole first.

A write that finds no room (a full disk, a full quota, a file-size limit such as ``ulimit -f``)
raises :class:`NoRoomError`, an ``OSError`` whose one-line message names the target (not the
hidden temporary file) and the fix, whatever the writer said: h5py reports a full disk as
HDF5's own error text (``Can't synchronously write data (file write failed: ..., errno = 28,
...)``), sometimes as a ``RuntimeError``.
"""
from __future__ import annotations

import contextlib
import errno
import filecmp
import functools
import os
import re
import secrets
import shlex
import shutil
import signal
import stat
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from typing import IO

from dlcore.termination import HeldSignals, despite_interruptions

try:   # POSIX's whole-file locks; Windows has msvcrt's instead
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None
try:   # tests/test_io_folder_lock.py runs the Windows path with a stand-in on any system
    import msvcrt
except ImportError:
    msvcrt = None

__all__ = ["FolderInUseError", "FolderNotWritableError", "HalfWrittenError", "NoRoomError",
           "TemporaryFolderError", "UnwritableNameError", "WriteProtectedError", "atomic_open",
           "atomic_output_path",
           "lock_folder", "refuse_write_protected", "shell_word", "shown_path"]

#: The file a run holds locked in the folder it writes (``lock_folder``), removed at its end.
LOCK_FILE_NAME = ".dlcore-run.lock"
#: Where the lock sits in that file on Windows. ``msvcrt.locking`` locks a byte range, which
#: no other process may then read: a byte far past the holder's text (as SQLite's lock bytes
#: sit at 1 GiB) keeps the text readable for the message that names the run in the way.
WINDOWS_LOCK_OFFSET = 2**30

#: The errors of a write that found no room: a full disk, a full quota, a file-size limit.
NO_ROOM_ERRNOS = frozenset(number for number in (errno.ENOSPC, getattr(errno, "EDQUOT", None),
                                                 errno.EFBIG) if number is not None)
#: How HDF5 names the system error inside its own message (h5py keeps the text, not the errno).
_HDF5_ERRNO = re.compile(r"errno = (\d+)")


#: How a shell's $'...' writes the control characters that have a letter of their own.
_SHELL_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\\": "\\\\", "'": "\\'"}


def shown_path(path: str | os.PathLike) -> str:
    """``path`` as a message shows it, on one line: as it is, or, when it holds a line break
    or another character that does not print, as Python writes it (``'runs/a\\nb.h5'``): a
    message of dlcore is one line, whatever the file's name."""
    text = os.fspath(path)
    return text if text.isprintable() else repr(text)


def shell_word(path: str | os.PathLike) -> str:
    """``path`` as one word of a shell command a message gives to paste (``chmod u+w
    <word>``), on one line: :func:`shlex.quote`'s, or, for a name with a line break or another
    character that does not print, bash's ``$'...'`` with it escaped (a byte that is not
    UTF-8 as ``\\xNN``)."""
    text = os.fspath(path)
    if text.isprintable():
        return shlex.quote(text)
    return "$'" + "".join(_shell_escaped(character) for character in text) + "'"


def _shell_escaped(character: str) -> str:
    if character in _SHELL_ESCAPES:
        return _SHELL_ESCAPES[character]
    if character.isprintable():
        return character
    code = ord(character)
    if 0xDC80 <= code <= 0xDCFF:   # os.fsdecode's stand-in for a byte that is not UTF-8
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x80 else f"\\U{code:08x}"


class NoRoomError(OSError):
    """A file could not be written for lack of room: its disk or quota is full, or it would
    exceed a file-size limit (``ulimit -f``).

    ``str(error)`` is one line, ``cannot write <path>: <reason> (errno N); <what to do>``.

    An ``OSError`` (with the ``errno`` the system gave), not a
    :class:`~dlcore.io.ModelFileError`: nothing is wrong with the file or the model, the fix
    is room on the machine; :class:`~dlcore.io.TemporaryFolderError` is its kin for the
    temporary folder a ``.keras`` archive is unpacked into.

    Attributes
    ----------
    path : str   the file that could not be written (the target, not the temporary file)
    reason : str   what the system said, e.g. "no space left on device"
    errno : int
    """

    def __init__(self, path: str | os.PathLike, error_number: int):
        reason = os.strerror(error_number)
        reason = reason[:1].lower() + reason[1:]
        super().__init__(error_number, reason)
        self.path, self.reason = os.fspath(path), reason

    @property
    def size_limit(self) -> bool:
        """Whether a file-size limit (``ulimit -f``), not a full disk or quota, stopped it."""
        return self.errno == errno.EFBIG

    def __str__(self) -> str:
        fix = ("raise the file-size limit (ulimit -f)" if self.size_limit else
               "free space on its disk or write it to another folder")
        return f"cannot write {shown_path(self.path)}: {self.reason} (errno {self.errno}); {fix}"


class TemporaryFolderError(OSError):
    """The temporary folder (``TMPDIR``) could not take a file dlcore puts there on its way
    (full, or not writable): a Keras archive's weights unpacked to be read, or the new
    version of a file written in place (:func:`atomic_output_path`, a folder that takes no
    new file), or the content of a pipe or a device (``/dev/stdout``) before it is written
    into. ``str(error)`` is one line naming the folder, ``TMPDIR`` and the fix; ``errno``
    is the system's (``ENOSPC``, ``EACCES``, ...).

    An ``OSError``, as :class:`~dlcore.io.NoRoomError` is, and not a
    :class:`~dlcore.io.ModelFileError`, although ``dlcore.load`` raises it: a ModelFileError
    says that the file is at fault (save it again), and a program that sets aside the hand-ins
    ``except ModelFileError`` catches would set aside an intact archive because ``TMPDIR`` was
    full. Nor is it a NoRoomError, whose fix names the file being written and ``--out``, not
    the temporary folder. Exported as ``dlcore.io.TemporaryFolderError``."""

    def __init__(self, message: str, error_number: int | None = None):
        super().__init__(error_number, message)
        self.message = message

    def __str__(self) -> str:
        return self.message


#: The errors of a folder in which no new file may be made: no permission, a read-only disk.
NOT_WRITABLE_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})


class FolderNotWritableError(PermissionError):
    """A file could not be written because its folder takes no new file: no permission to
    write there, or a read-only file system (a mounted hand-in, a course's shared folder).

    ``str(error)`` is one line, ``cannot write <path>: <reason> in its folder <folder> (errno
    N); <what to do>``, naming the target, not the hidden temporary file the system named.

    Attributes
    ----------
    path : str   the file that could not be written;  folder : str   its folder
    reason : str   what the system said, e.g. "permission denied"
    """

    def __init__(self, path: str | os.PathLike, folder: str, error_number: int):
        reason = os.strerror(error_number)
        reason = reason[:1].lower() + reason[1:]
        super().__init__(error_number, reason)
        self.path, self.folder, self.reason = os.fspath(path), folder, reason

    def __str__(self) -> str:
        return (f"cannot write {shown_path(self.path)}: {self.reason} in its folder "
                f"{shown_path(self.folder)} (errno {self.errno}); write it to a folder you may "
                f"write to")


class WriteProtectedError(PermissionError):
    """A file to replace that exists and that this user may not write (``chmod a-w``,
    ``chmod 444``, another user's file). The new file is renamed over the old one
    (:func:`atomic_output_path`), which the folder's permissions allow: without this
    refusal the file was replaced and its protection dropped with it, where ``open(path,
    "w")``, a shell's ``>``, Keras's ``model.save`` and Matplotlib's ``savefig`` refuse it.

    ``str(error)`` is one line naming the file and the fix (``chmod u+w``).

    Attributes
    ----------
    path : str   the write-protected file
    """

    def __init__(self, path: str | os.PathLike):
        super().__init__(errno.EACCES, "write-protected")
        self.path = os.fspath(path)

    def __str__(self) -> str:
        return (f"{self.path!r} is write-protected: choose another name, or let it be "
                f"replaced (chmod u+w {shell_word(self.path)})")


class UnwritableNameError(OSError):
    """A file that no system call could write under its name, whatever the permissions: a
    name longer than its disk allows (``ENAMETOOLONG``), symbolic links that lead in a loop
    (``ELOOP``), a folder on its way that is a file (``ENOTDIR``). Found before the work
    (:func:`refuse_write_protected`), not as the system's ``[Errno 36] File name too long``
    naming the hidden temporary file once the work was done.

    ``str(error)`` is one line, ``cannot write <path>: <why>; <what to do>``.

    Attributes
    ----------
    path : str   the file;  reason : str   why, e.g. "its name is 264 bytes, more than ..."
    """

    def __init__(self, path: str | os.PathLike, error_number: int, reason: str, fix: str):
        super().__init__(error_number, reason)
        self.path, self.reason, self.fix = os.fspath(path), reason, fix

    def __str__(self) -> str:
        return f"cannot write {shown_path(self.path)}: {self.reason}; {self.fix}"


def refuse_unwritable_name(path: str | os.PathLike) -> None:
    """Raise :class:`UnwritableNameError` when no file can be written as ``path``: a name of
    more bytes than its disk allows (``os.pathconf``'s ``PC_NAME_MAX``, 255 where it cannot
    tell; on Windows, more than 255 UTF-16 characters), symbolic links in a loop, a folder on
    its way that is a file, a name ending in a slash (a folder's: ``--out sub/`` wrote a file
    named ``sub``, or failed at its rename)."""
    given = os.fspath(path)
    separator = next((end for end in (os.sep, os.altsep) if end and given.endswith(end)), None)
    if separator:
        raise UnwritableNameError(given, errno.EISDIR, f"a name ending in '{separator}' names "
                                  f"a folder, not a file",
                                  f"add the file's name after the '{separator}'")
    try:
        os.stat(given)
    except FileNotFoundError:
        pass
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise UnwritableNameError(given, error.errno, "its symbolic links lead in a loop",
                                      "remove the link or give another name") from None
        if error.errno == errno.ENOTDIR:
            raise UnwritableNameError(given, error.errno, "a folder on its way is a file",
                                      "give a name in a folder") from None
        if error.errno != errno.ENAMETOOLONG:
            return   # the writer's own error says it
    name = os.path.basename(_file_behind_quietly(given))
    folder = os.path.dirname(os.path.abspath(given))
    if hasattr(os, "pathconf"):
        size, unit = len(os.fsencode(name)), "bytes"
        try:
            most = os.pathconf(folder, "PC_NAME_MAX")
        except (OSError, ValueError):
            most = 255
    else:   # Windows: 255 UTF-16 characters, whatever their UTF-8 bytes
        size, unit, most = len(name.encode("utf-16-le", "surrogatepass")) // 2, "characters", 255
    if size > most:
        raise UnwritableNameError(given, errno.ENAMETOOLONG,
                                  f"its name is {size} {unit}, more than the {most} a "
                                  f"file name may have there", "give a shorter name")
    if hasattr(os, "pathconf") and len(os.fsencode(os.path.abspath(given))) >= 4096:
        raise UnwritableNameError(given, errno.ENAMETOOLONG, "its path is longer than the "
                                  "system takes", "give a shorter path")


def _file_behind_quietly(path: str) -> str:
    """Where the symbolic link ``path`` leads (``path`` itself when it is none)."""
    with contextlib.suppress(OSError):
        if os.path.islink(path):
            return os.path.realpath(path)
    return path


def refuse_write_protected(path: str | os.PathLike) -> None:
    """Raise :class:`WriteProtectedError` when ``path`` is a file that exists and this user
    may not write (root may write any file, as ``open`` lets it): checked before a file is
    written over it, by :func:`atomic_output_path` and before the work of the command line's
    outputs.

    A file on a read-only file system (a mounted hand-in, a course's shared folder) is a
    :class:`FolderNotWritableError` instead: ``os.access`` says no for it too, but ``chmod
    u+w`` cannot help there, where writing elsewhere does. A name no file can have is an
    :class:`UnwritableNameError` (:func:`refuse_unwritable_name`).
    """
    refuse_unwritable_name(path)
    if os.path.isfile(path) and not os.access(path, os.W_OK):
        if _on_read_only_file_system(path):
            # the folder of the file a symbolic link leads to: the link's may be writable
            raise FolderNotWritableError(path, os.path.dirname(os.path.realpath(path)),
                                         errno.EROFS)
        raise WriteProtectedError(path)


def _on_read_only_file_system(path: str | os.PathLike) -> bool:
    # statvfs is POSIX's; elsewhere a read-only disk shows as a folder that takes no new file
    if not hasattr(os, "statvfs"):
        return False
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def no_room_errno(error: BaseException) -> int | None:
    """The errno of ``error`` when it says a write found no room (:data:`NO_ROOM_ERRNOS`),
    from the exception or from the text HDF5 puts in h5py's message; None otherwise."""
    if isinstance(error, OSError) and error.errno in NO_ROOM_ERRNOS:
        return error.errno
    if isinstance(error, (OSError, RuntimeError)):
        match = _HDF5_ERRNO.search(str(error))
        if match and int(match.group(1)) in NO_ROOM_ERRNOS:
            return int(match.group(1))
    return None


@contextlib.contextmanager
def atomic_output_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path beside ``path``; on success, move it onto ``path`` atomically.

    The caller writes a complete file to the yielded path. When the block ends normally the file
    is fsynced and renamed onto ``path`` with ``os.replace`` (atomic on POSIX and Windows), then
    the directory is fsynced so the rename itself survives a power cut. When the block raises
    anything (``KeyboardInterrupt`` included) the temporary file is removed and the exception
    propagates: a reader only ever sees the previous complete file or the new complete file.

    The temporary file is named ``.<name>.tmp.<random hex>``, the name cut to fit the system's
    255 bytes (hidden on POSIX; the repository's
    .gitignore ignores ``*.h5.tmp*``) and is created with the permissions of an ordinary new
    file, so the result does not end up private the way ``tempfile.mkstemp`` files are; a
    file it replaces keeps its permission bits (and, as root, its owner), as a file written
    over with ``open`` keeps them. A symbolic link is written through, as ``open`` writes
    through it: the file it leads to is replaced (the temporary file lies beside that one),
    the link stays. A second Ctrl-C during the clean-up of the first is raised once the
    clean-up is done.

    On Linux the temporary file has a marker beside it, ``<temporary>.writing``, held locked
    while it is written (:func:`_mark_writing`): a writer killed outright (SIGKILL, a power
    cut) leaves both, and the next write of the same file removes them once their lock is
    free, at once if they were made on this machine since it started, else once a day
    unchanged (:func:`_other_writer`); another process or thread writing the same
    file at the same time gets a :class:`SimultaneousWriteWarning`, once this file is whole
    and in place. Windows and macOS have no such locks: neither is done there.

    Raises
    ------
    FileNotFoundError when the parent directory does not exist.
    IsADirectoryError when ``path`` is a directory.
    WriteProtectedError (a PermissionError) when ``path`` is a file this user may not write
    (:func:`refuse_write_protected`): it is not replaced.
    FolderNotWritableError (a PermissionError) when no file may be made in its directory
    (no permission, a read-only file system: an existing file there too). An existing file
    this user may write in a folder without permission to make files (a teacher's hand-in
    folder, mode 555, of files mode 666) is written in place instead, as ``open(path, "w")``
    writes it: its new version is written whole in the temporary folder first, then copied
    over it (:func:`_written_in_place`); a reader may see it change during that copy. So
    is another user's file this user may write in a sticky folder (mode 1777), which lets
    no one rename over it.
    HalfWrittenError (an OSError) when that copy failed half-way (an I/O error, a full disk
    that reserves no room) and putting the previous version back failed too: both versions
    are kept in the temporary folder, and its message names them.
    NoRoomError (an OSError) when the disk, the quota or a file-size limit left no room for
    the file, whatever the writer raised (the temporary file is removed).
    """
    given = os.fspath(path)
    stream = _stream_behind(given)
    if stream is not None:
        with _written_through(given, stream) as elsewhere:
            yield elsewhere
        return
    target = _file_behind(given)
    directory = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot write {shown_path(given)}: directory "
                                f"{shown_path(directory)} does not exist; create it first")
    if os.path.isdir(target):
        raise IsADirectoryError(f"cannot write {shown_path(given)}: it is a directory; give a "
                                f"file name")
    refuse_write_protected(given)
    # a Ctrl-C between the temporary file's creation and the try that removes it would leave
    # it beside the user's file: it is held meanwhile, and raised inside that try
    held = _held_interrupts()
    try:
        temporary = _create_temporary_file(directory, os.path.basename(target))
    except BaseException as error:
        held.let_go()
        if not isinstance(error, OSError):
            raise
        _raise_no_room(error, given)
        if error.errno in (errno.EACCES, errno.EPERM) and os.path.isfile(target) \
                and os.access(target, os.W_OK):
            temporary = None   # a writable file in a folder that takes no new one
        elif error.errno in NOT_WRITABLE_ERRNOS:
            # the system names the hidden temporary file, which the caller never asked for
            raise FolderNotWritableError(given, directory, error.errno) from None
        else:
            raise
    if temporary is None:
        held.let_go()
        with _written_in_place(target, given) as elsewhere:
            yield elsewhere
        return
    name = os.path.basename(target)
    writing = _mark_writing(temporary, name)   # Ctrl-C still held: its marker is removed below
    try:
        held.let_go()
        yield temporary
        _fsync_file(temporary)
        _keep_permissions(target, temporary)
        other_writer = _other_writer(temporary, name)
        try:
            os.replace(temporary, target)
        except PermissionError as error:
            if not _another_users_file_in_a_sticky_folder(target, directory):
                raise _replace_refused(given, error) from None
            # a sticky folder (mode 1777, /tmp's, a course's shared folder) lets no one
            # rename over another user's file, which open() writes in place: so do we
            _written_over_in_place(temporary, target, given)
        # its marker outlives the temporary file: another writer's look that found the
        # marker free would take this writer for dead, and remove its file before the rename
        _unmark_writing(writing)
    except HalfWrittenError:
        despite_interruptions(_unmark_writing, writing)
        raise   # its new version stays beside it, the message names it
    except BaseException as error:
        # a second Ctrl-C during the clean-up of the first left the temporary file (or its
        # marker) beside the user's file: the clean-up is finished first
        despite_interruptions(_abandon, writing, temporary)
        _raise_no_room(error, given)
        raise
    _fsync_directory(directory)
    if other_writer is not None:
        # said once the file is whole: under ``python -W error`` the warning is an
        # exception, which said before the rename lost the save it warns about
        warnings.warn(f"{shown_path(given)} was being written by {other_writer} at the same "
                      f"time: this version replaces it now, and the other's will replace this "
                      f"one when it ends (each is whole; the last to end is kept)",
                      SimultaneousWriteWarning, stacklevel=3)


def _abandon(writing: list, temporary: str) -> None:
    """Remove the temporary file of a write that failed, and its marker; again, nothing."""
    _unmark_writing(writing)
    with contextlib.suppress(FileNotFoundError):
        os.remove(temporary)


def _held_interrupts() -> HeldSignals:
    """Hold Ctrl-C (SIGINT) until ``let_go``, which raises one that came meanwhile (through
    the handler that was in place, put back): a moment's delay, where an interrupt between
    two statements of the writer left its temporary file behind. So are SIGTERM and SIGHUP
    where a Python handler takes them (the ``dlcore`` command line's, which makes them its
    Ctrl-C: :func:`dlcore.interrupt_on_termination`); at their default, they end the process
    as before. Ctrl-C is held whatever Python has for it, as it was before the other two were
    (:class:`dlcore.termination.HeldSignals`)."""
    held = HeldSignals(_HELD_SIGNALS, whatever_their_handler=(signal.SIGINT,))
    held.take_over()
    return held


#: The signals :func:`_held_interrupts` holds, those of them the platform has.
_HELD_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP")
                      if hasattr(signal, name))


class SimultaneousWriteWarning(UserWarning):
    """Another process, or another thread of this one, was writing the same file at the same
    time (:func:`atomic_output_path`): each version is whole, and the last to end is kept, the
    other lost. Said once this version is whole and in place: under ``python -W error`` the
    exception it becomes leaves the file saved.

    Linux only: it takes open-file-description locks (``F_OFD_SETLK``), which Windows and
    macOS lack; there two writers of one file say nothing, as before, and each version is
    still whole."""


#: Open-file-description locks (Linux): freed when their descriptor is closed, whatever else
#: the process opens and closes (a POSIX lock is dropped when any descriptor of its file is),
#: and held against the other threads of the process too.
_OFD_LOCKS = fcntl is not None and hasattr(fcntl, "F_OFD_SETLK")
#: The end of the name of the marker a writer holds locked beside its temporary file.
_WRITING_SUFFIX = ".writing"
#: How long a free marker not written under this boot of this machine's kernel, and its
#: temporary file, must have been left unchanged to be a dead writer's: its free lock proves
#: nothing when it is another machine's on a shared folder (NFS mounted ``nolock``, sshfs:
#: each machine sees its own locks alone), and one that names no boot is an older dlcore's
#: (which wrote none) or is being locked by its writer this moment. A day: no save lasts one,
#: and a power cut's leftovers (the boot before this one) still go.
_UNPROVEN_MARKER_SECONDS = 24 * 3600
#: The most bytes of a marker read: a pid, a boot id, a line break and a name of 255 bytes.
_MARKER_BYTES = 512


def _mark_writing(temporary: str, name: str = "") -> list:
    """Make and hold locked the marker ``<temporary>.writing`` while ``temporary`` is written
    (an open-file-description lock, where the system has them): the sign, for another process
    or thread writing the same file, that this one is, and, once its lock is free, that its
    writer died (:func:`_other_writer`). It holds, written once it is locked, this process's
    pid, a space and the boot of this machine's kernel (:func:`_this_boot`), a line break,
    then ``name``, the name of the file written (two long names may share the cut one of
    their temporary files). A
    file of its own, not the temporary file: HDF5 locks the file it writes (``flock``,
    emulated on NFS by the very locks taken here), and would refuse to write a file locked by
    us. Returns [its descriptor, its path] for :func:`_unmark_writing`, or [] (no locks, no
    marker made)."""
    if not _OFD_LOCKS:
        return []
    marker = temporary + _WRITING_SUFFIX
    try:
        descriptor = os.open(marker, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:
        return []
    writing = [descriptor, marker]
    try:
        for attempt in range(100):
            try:
                fcntl.fcntl(descriptor, fcntl.F_OFD_SETLK, _flock_record(fcntl.F_WRLCK))
                break
            except OSError as error:
                # another writer's look at the folder (_other_writers) holds it a moment
                if error.errno not in (errno.EAGAIN, errno.EACCES) or attempt == 99:
                    raise
                time.sleep(0.001)
        os.write(descriptor, f"{os.getpid()} {_this_boot()}\n".encode("ascii")
                 + os.fsencode(name))
    except OSError:   # a file system without locks: nothing is said
        _unmark_writing(writing)
    return writing


def _unmark_writing(writing: list) -> None:
    """Remove and free the marker of :func:`_mark_writing`, emptying ``writing``: a second
    call (the clean-up of a Ctrl-C that came after the first) does nothing."""
    if writing:
        descriptor, marker = writing
        with contextlib.suppress(OSError):
            os.remove(marker)
        writing.clear()
        os.close(descriptor)


def _flock_record(kind: int) -> bytes:
    # struct flock: l_type, l_whence (short), l_start, l_len (off_t), l_pid (int); 0, 0: all
    import struct
    return struct.pack("hhqqi4x", kind, os.SEEK_SET, 0, 0, 0)


def _other_writers(temporary: str,
                   name: str) -> Iterator[tuple[str, int, bool, int | None, str]]:
    """The markers (:func:`_mark_writing`) of the other temporary files of the file ``name``
    beside ``temporary``, as (marker, its descriptor, whether its writer holds it locked, the
    pid it names or None, the boot it names or ""). A marker is another's of the same file
    when its name is ``temporary``'s but for the 8 hex digits (not when it only begins like
    it: the marker of ``model.h5.tmp.b``'s temporary file begins like ``model.h5``'s) and it
    names ``name`` or no file. A marker not held is held (read-locked) by this process until
    the next one is asked for."""
    if not _OFD_LOCKS:
        return
    folder, own = os.path.split(temporary)
    prefix = own[:own.rindex(".tmp.") + len(".tmp.")]
    pattern = re.compile(re.escape(prefix) + "[0-9a-f]{8}" + re.escape(_WRITING_SUFFIX))
    try:
        markers = [entry.path for entry in os.scandir(folder)
                   if pattern.fullmatch(entry.name) and entry.name != own + _WRITING_SUFFIX]
    except OSError:
        return
    for marker in markers:
        try:
            # not waiting for ever on a FIFO named like a marker (a hostile file), as a plain
            # open of one waits for its writer; nor following a link
            descriptor = os.open(marker, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            try:   # a read lock, which a writer's refuses, and another reader's does not
                fcntl.fcntl(descriptor, fcntl.F_OFD_SETLK, _flock_record(fcntl.F_RDLCK))
                held = False
            except OSError as error:
                if error.errno not in (errno.EAGAIN, errno.EACCES):
                    continue
                held = True
            found = os.fstat(descriptor)
            if not stat.S_ISREG(found.st_mode) or found.st_nlink == 0:
                # no marker, or one its writer removed on ending (:func:`_unmark_writing`)
                # after it was opened here: free now, yet its writer's, whose temporary file
                # a HalfWrittenError keeps (the new version its message names)
                continue
            pid, boot, named = _marker_text(descriptor)
            if named in ("", name):
                yield marker, descriptor, held, pid, boot
        finally:
            os.close(descriptor)


def _marker_text(descriptor: int) -> tuple[int | None, str, str]:
    """The pid, the boot and the file's name a marker holds (None, "" and "" where it holds
    none yet)."""
    try:
        text = os.pread(descriptor, _MARKER_BYTES, 0)
    except OSError:
        return None, "", ""
    writer, _, named = text.partition(b"\n")
    pid, _, boot = writer.partition(b" ")
    return ((int(pid) if pid.isdigit() else None), boot.decode("ascii", "replace"),
            os.fsdecode(named))


@functools.cache
def _this_boot() -> str:
    """This boot of this machine's kernel (Linux's random boot id, shared by its containers),
    or "" where it cannot be read: a lock seen free proves its writer dead only when that
    writer ran under the same kernel since it started."""
    try:
        with open("/proc/sys/kernel/random/boot_id", "rb") as boot_id:
            return boot_id.read(64).strip().decode("ascii", "replace")
    except OSError:
        return ""


def _other_writer(temporary: str, name: str) -> str | None:
    """Who else writes the file ``name`` beside ``temporary`` now (holds locked the marker
    of :func:`_mark_writing` of another temporary file of it): "another process", "another
    thread of this process", or None. Two programs (two notebooks, two runs given the same
    --out), or two threads, writing one file at once: the renames keep each version whole;
    the one renamed last wins, which nothing said before.

    On its way (the one look at the folder that each write takes), it removes the temporary
    files of ``name``, and their markers, that writers now dead left (killed with SIGKILL, a
    power cut: their clean-up never ran), so that they do not stay for ever. A writer is dead
    when its marker's lock is free (the system frees it when its process ends, however it
    ends) and the marker names this boot of this machine (written once it was locked), or,
    naming another (another machine's, whose locks this one may not see; the boot before a
    power cut) or none, when it and its temporary file have been left unchanged for
    :data:`_UNPROVEN_MARKER_SECONDS`. A live writer's files, or a temporary file without a
    marker (a system without these locks), are never touched."""
    other = None
    for marker, descriptor, held, pid, boot in _other_writers(temporary, name):
        if held:
            other = other or ("another thread of this process"
                              if pid == os.getpid() and boot == _this_boot()
                              else "another process")
            continue
        its_temporary = marker[:-len(_WRITING_SUFFIX)]
        if (boot != "" and boot == _this_boot()) \
                or _unchanged_for(descriptor, its_temporary, _UNPROVEN_MARKER_SECONDS):
            # the temporary file first: a marker left alone is removed the next time
            with contextlib.suppress(OSError):
                os.remove(its_temporary)
            with contextlib.suppress(OSError):
                os.remove(marker)
    return other


def _unchanged_for(descriptor: int, temporary: str, seconds: float) -> bool:
    """Whether the open marker, and the file ``temporary`` where it is there (a live writer
    writes it), were last written more than ``seconds`` ago."""
    try:
        written = os.fstat(descriptor).st_mtime
        with contextlib.suppress(FileNotFoundError):
            written = max(written, os.stat(temporary, follow_symlinks=False).st_mtime)
    except OSError:
        return False
    return time.time() - written > seconds


def _another_users_file_in_a_sticky_folder(target: str, directory: str) -> bool:
    """Whether ``target`` is another user's file this user may write in a sticky folder
    (mode 1777), whose rename over it POSIX refuses. Any other refused rename (Windows
    refuses one over a file another program holds open) is no reason to write in place."""
    if not hasattr(os, "geteuid"):
        return False
    try:
        folder, kept = os.stat(directory), os.stat(target)
    except OSError:
        return False
    return (bool(folder.st_mode & stat.S_ISVTX) and stat.S_ISREG(kept.st_mode)
            and kept.st_uid != os.geteuid() and os.access(target, os.W_OK))


def _replace_refused(given: str, error: OSError) -> PermissionError:
    """The one line of a rename onto ``given`` that the system refused, naming it (not the
    hidden temporary file): the file is as it was."""
    reason = os.strerror(error.errno) if error.errno else str(error)
    return PermissionError(
        error.errno, f"cannot write {shown_path(given)}: the system refused to replace it "
                     f"({reason[:1].lower() + reason[1:]}), and it is as it was; close a program "
                     f"that holds it open, or write it under another name")


#: How a file goes through the temporary folder, as :class:`TemporaryFolderError` says it:
#: written in place (:func:`_written_in_place`), or into a pipe or a device
#: (:func:`_written_through`).
_IN_PLACE = ("it is written in place (its folder lets no new file replace it), its versions kept "
             "meanwhile in", "the file is as it was")
_INTO_A_STREAM = ("it is a pipe or a device, written into once its content is whole in",
                  "nothing was written to it")


#: A process's own descriptors under /proc: /proc/self/fd/1, /proc/<its pid>/fd/1.
_OWN_DESCRIPTOR = re.compile(r"/proc/(?:self|thread-self|(\d+))(?:/task/\d+)?/fd/(\d+)")


def _stream_behind(path: str) -> int | str | None:
    """How ``path`` must be written when it is no file that a rename may replace: the
    descriptor of this process that it leads to (``/dev/stdout``, ``/proc/self/fd/1``: the
    same file, at the same offset, as the process's own output), or ``path`` itself, to
    open, for a named pipe, a terminal or a device (``/dev/null``); None for a file or a
    name that is none yet. The rename replaced a pipe with a file (its reader waiting for
    ever), and as root ``/dev/null`` itself; through ``/dev/stdout`` it named the hidden
    temporary file of ``/proc/<pid>/fd/pipe:[...]``, or replaced the file the output was
    redirected to, the rest of the output going to the file it unlinked."""
    try:
        kind = os.stat(path).st_mode
    except OSError:
        return None
    current, through_processes = os.path.abspath(path), False
    for _ in range(40):   # the links the system follows at most
        current = os.path.join(os.path.realpath(os.path.dirname(current)),
                               os.path.basename(current))
        own = _OWN_DESCRIPTOR.fullmatch(current)
        if own and own.group(1) in (None, str(os.getpid())):
            return int(own.group(2))
        through_processes = through_processes or current.startswith("/proc/")
        if not os.path.islink(current):
            break
        current = os.path.join(os.path.dirname(current), os.readlink(current))
    ordinary = stat.S_ISREG(kind) or stat.S_ISDIR(kind)
    return path if through_processes or not ordinary else None


@contextlib.contextmanager
def _written_through(given: str, stream: int | str) -> Iterator[str]:
    """Yield a path in the temporary folder; on success, write its file into ``stream`` (a
    descriptor of this process, or a path to open: :func:`_stream_behind`) as ``open``
    writes there: a writer that fails writes nothing, and a writer that seeks (h5py) may
    write to a pipe."""
    scratch = _scratch_folder(given, _INTO_A_STREAM)
    try:
        elsewhere = os.path.join(scratch, os.path.basename(given))   # its suffix for savefig
        try:
            yield elsewhere
        except BaseException as error:
            _raise_temporary_folder_full(error, given, _INTO_A_STREAM)
            _raise_no_room(error, given)   # a file-size limit (ulimit -f) is no folder's
            raise
        try:
            with open(elsewhere, "rb") as source:
                if isinstance(stream, int):
                    _write_to_descriptor(source, stream)
                else:
                    with open(stream, "wb") as sink:
                        shutil.copyfileobj(source, sink)
        except OSError as error:
            _raise_no_room(error, given)
            raise
    finally:
        despite_interruptions(shutil.rmtree, scratch, True)


def _write_to_descriptor(source: IO[bytes], descriptor: int) -> None:
    """Append ``source`` to this process's ``descriptor``, after what Python's own streams
    on it hold (``print`` before the file stays before it)."""
    for standard in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, OSError, ValueError):
            if standard.fileno() == descriptor:
                standard.flush()
    while chunk := memoryview(source.read(1 << 20)):
        while chunk:   # a write may take part of a chunk (a pipe)
            chunk = chunk[os.write(descriptor, chunk):]


def _file_behind(path: str) -> str:
    """The file that writing ``path`` writes: ``path``, or where it leads when it is a
    symbolic link (a dangling one too), as ``open(path, "w")``, ``numpy.save`` and h5py
    write through a link. Renamed onto the link itself, the new file replaced the link (a
    course's ``model.h5 -> runs/best/model.h5`` became a file of its own, and the file it
    named stayed old). A loop of links is refused as ``open`` refuses it."""
    if not os.path.islink(path):
        return path
    behind = os.path.realpath(path)
    if os.path.islink(behind):   # realpath leaves a loop's link unresolved
        raise UnwritableNameError(path, errno.ELOOP, "its symbolic links lead in a loop",
                                  "remove the link or give another name")
    return behind


@contextlib.contextmanager
def _written_in_place(target: str, given: str) -> Iterator[str]:
    """Yield a path in the temporary folder; on success, copy its file into ``target`` in
    place: the way to write a file that this user may write in a folder that takes no new
    file (a teacher's hand-in folder, mode 555, of files mode 666), where ``open(path, "w")``
    and h5py write and the rename of a new file is refused.

    The new file is written whole elsewhere first, so a writer that fails (or a Ctrl-C, or a
    full disk, while it writes) leaves ``target`` as it was; the copy reserves its room
    before it changes a byte, and a Ctrl-C during it is held until the copy ends. The
    previous version is copied aside first: a copy that fails half-way (a full disk that
    reserves no room, an I/O error) puts it back, and where even that fails, or the process
    is killed during the copy, both versions stay whole in the temporary folder (the error
    names them). A reader may still see the file change as it is copied (no rename is
    possible there). A temporary folder without room, or that takes no file, is a
    :class:`TemporaryFolderError` (the file's own folder and disk are not at fault)."""
    scratch = _scratch_folder(given)
    try:
        elsewhere = os.path.join(scratch, os.path.basename(target))
        try:
            yield elsewhere
        except BaseException as error:
            _raise_temporary_folder_full(error, given)
            _raise_no_room(error, given)   # a file-size limit (ulimit -f) is no folder's
            raise
        _copy_in_place(elsewhere, target, given, scratch)
    except HalfWrittenError:
        raise   # its two versions stay in the temporary folder
    except BaseException:
        despite_interruptions(shutil.rmtree, scratch, True)
        raise
    shutil.rmtree(scratch, ignore_errors=True)


def _written_over_in_place(new: str, target: str, given: str) -> None:
    """Copy the complete file ``new`` over ``target`` in place (:func:`_copy_in_place`) and
    remove it, when the rename of ``new`` onto ``target`` was refused."""
    scratch = _scratch_folder(given)
    try:
        _copy_in_place(new, target, given, scratch)
    except HalfWrittenError:
        raise
    except BaseException:
        despite_interruptions(shutil.rmtree, scratch, True)
        raise
    shutil.rmtree(scratch, ignore_errors=True)
    os.remove(new)


def _scratch_folder(given: str, how: tuple[str, str] = _IN_PLACE) -> str:
    """A new folder in the temporary folder, for the versions of ``given`` (``how``: see
    :func:`_temporary_folder_error`)."""
    try:
        return tempfile.mkdtemp(prefix="dlcore-write-")
    except OSError as error:
        raise _temporary_folder_error(given, error, how) from None


def _raise_temporary_folder_full(error: BaseException, given: str,
                                 how: tuple[str, str] = _IN_PLACE) -> None:
    if no_room_errno(error) in (errno.ENOSPC, getattr(errno, "EDQUOT", None)):
        raise _temporary_folder_error(given, error, how) from None


def _copy_in_place(new: str, target: str, given: str, scratch: str) -> None:
    """Copy the file ``new`` over ``target`` in place (:func:`_copy_into`), the previous
    version of ``target`` copied into ``scratch`` first and put back when the copy fails;
    where that fails too, :class:`HalfWrittenError` (both versions kept)."""
    previous = os.path.join(scratch, "previous")   # the name's own length may be the most
    try:
        shutil.copyfile(target, previous)
    except PermissionError:   # a file one may write, not read (222): none to put back
        previous = None
    except OSError as error:
        _raise_temporary_folder_full(error, given)
        raise
    try:
        _copy_into(new, target)
    except OSError as error:
        if previous is not None:
            try:
                _copy_into(previous, target)
            except OSError:
                # a copy that could not open the file (Windows: another program holds it)
                # changed no byte, and putting it back fails alike: it is not half-written
                if not _same_bytes(previous, target):
                    raise HalfWrittenError(given, error, previous, new) from None
        _raise_no_room(error, given)
        raise


def _same_bytes(kept: str, target: str) -> bool:
    """Whether ``target`` still holds the bytes of ``kept`` (False when it cannot be read)."""
    try:
        return filecmp.cmp(kept, target, shallow=False)
    except OSError:
        return False


def _temporary_folder_error(given: str, error: BaseException,
                            how: tuple[str, str] = _IN_PLACE) -> TemporaryFolderError:
    """The one line of a file whose versions the temporary folder could not take, ``how``
    (:data:`_IN_PLACE`, :data:`_INTO_A_STREAM`) saying why they go there and what became of it."""
    way, outcome = how
    number = no_room_errno(error) or getattr(error, "errno", None)
    reason = os.strerror(number) if number else str(error)
    fix = ("free space there, or set TMPDIR to a folder with room" if number in NO_ROOM_ERRNOS
           else "set TMPDIR to a folder you can write to")
    return TemporaryFolderError(
        f"cannot write {shown_path(given)}: {way} the temporary folder "
        f"{shown_path(tempfile.gettempdir())} (TMPDIR), which failed: "
        f"{reason[:1].lower() + reason[1:]}; {outcome}: {fix}", number)


class HalfWrittenError(OSError):
    """A file written in place (a writable file in a folder that takes no new file) whose
    copy failed half-way and could not be undone: the file is half-written, and its previous
    and new versions are kept whole in the temporary folder.

    ``str(error)`` is one line naming the file, where both versions are, and the ``cp``
    command that puts one back.

    Attributes
    ----------
    path : str   the half-written file
    previous, new : str   where its previous and its new version are kept
    """

    def __init__(self, path: str | os.PathLike, error: OSError, previous: str, new: str):
        reason = os.strerror(error.errno) if error.errno else str(error)
        super().__init__(error.errno, reason[:1].lower() + reason[1:])
        self.path, self.previous, self.new = os.fspath(path), previous, new

    def __str__(self) -> str:
        return (f"cannot write {shown_path(self.path)}: {self.strerror} while it was written "
                f"in place, and it is half-written: its previous version is kept in "
                f"{shown_path(self.previous)}, the new one in {shown_path(self.new)}; put one "
                f"back with cp {shell_word(self.previous)} {shell_word(self.path)}")


def _copy_into(source: str, target: str) -> None:
    """Overwrite ``target`` with the bytes of ``source``, in place, whole: a Ctrl-C that lands
    during the copy is raised once it is done (half of a model file is worse than a Ctrl-C
    answered a moment late), the copy starting over if it landed inside it."""
    despite_interruptions(_overwrite, source, target)


def _overwrite(source: str, target: str) -> None:
    size = os.path.getsize(source)
    # no O_TRUNC: the room comes first; O_BINARY: Windows' descriptors are text otherwise,
    # each newline written as two bytes
    descriptor = os.open(target, os.O_WRONLY | getattr(os, "O_BINARY", 0))
    try:
        kept_size = os.fstat(descriptor).st_size
        if size > kept_size and hasattr(os, "posix_fallocate"):
            try:
                os.posix_fallocate(descriptor, 0, size)
            except OSError as error:
                if no_room_errno(error) is not None:
                    os.ftruncate(descriptor, kept_size)   # the file as it was
                    raise
                # a file system that reserves no room (EOPNOTSUPP): write as open() writes
        with open(source, "rb") as stream:   # from offset 0, where the open left it
            while chunk := memoryview(stream.read(1 << 20)):
                while chunk:   # a write may take part of a chunk (os.pwrite is POSIX's alone)
                    chunk = chunk[os.write(descriptor, chunk):]
        os.ftruncate(descriptor, size)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _raise_no_room(error: BaseException, target: str) -> None:
    number = no_room_errno(error)
    if number is not None:
        raise NoRoomError(target, number) from None


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **open_options) -> Iterator[IO]:
    """``open(path, mode, **open_options)`` on a temporary file that replaces ``path`` only when
    the block ends normally (see :func:`atomic_output_path`).

    Parameters
    ----------
    path : the target file
    mode : ``"w"`` (text) or ``"wb"`` (binary); nothing else makes sense for a new file
    open_options : passed to :func:`open` (``newline=""`` for ``csv``, ``encoding=...``)

    Yields
    ------
    The open file object; it is closed before the rename.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes a new file: mode must be 'w' or 'wb', got {mode!r}")
    if mode == "w":
        open_options.setdefault("encoding", "utf-8")
    with atomic_output_path(path) as temporary, open(temporary, mode, **open_options) as stream:
        yield stream


def _keep_permissions(target: str, temporary: str) -> None:
    """Give ``temporary`` the permission bits of the file ``target`` it replaces, and as root
    its owner: ``open(path, "w")``, ``cp``, ``numpy.save`` and h5py write over a file in place,
    so it keeps them, where the rename left a new file of the umask's mode (a private 600
    model made 644; as root, who may replace a 444 file, its protection dropped, and a
    student's file made root's, which the student could then not save over)."""
    try:
        kept = os.stat(target)
    except OSError:   # no file yet: the umask decides, as for open()
        return
    with contextlib.suppress(OSError):   # a file system without modes (FAT) keeps its own
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            os.chown(temporary, kept.st_uid, kept.st_gid)
        os.chmod(temporary, stat.S_IMODE(kept.st_mode) & 0o777)


#: The most bytes of the target's name in its temporary file's ``.<name>.tmp.<8 hex>``: a
#: name may have 255 bytes, and one of 242 or more made a temporary name too long to create;
#: its marker (:func:`_mark_writing`) adds ``.writing``, which one of 234 or more left unmade.
_TEMPORARY_STEM_BYTES = 255 - len(".") - len(".tmp.") - 8 - len(_WRITING_SUFFIX)


def _create_temporary_file(directory: str, basename: str) -> str:
    # O_EXCL: never reuse a name another writer holds. Mode 0o666 lets the umask decide the
    # permissions, as for a file created with open().
    stem = os.fsdecode(os.fsencode(basename)[:_TEMPORARY_STEM_BYTES])
    for _ in range(100):
        candidate = os.path.join(directory, f".{stem}.tmp.{secrets.token_hex(4)}")
        try:
            descriptor = os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            continue
        os.close(descriptor)
        return candidate
    raise FileExistsError(f"could not create a temporary file in {directory}")


def _fsync_file(path: str) -> None:
    descriptor = os.open(path, os.O_RDWR)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync_directory(directory: str) -> None:
    # Only POSIX can open a directory to fsync it; elsewhere os.replace is the best there is.
    if os.name != "posix":
        return
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    except OSError:
        pass  # some file systems (e.g. certain network mounts) refuse fsync on a directory
    finally:
        os.close(descriptor)


# -- one run per output folder --------------------------------------------------------------
class FolderInUseError(OSError):
    """Another process holds the lock of the folder (:func:`lock_folder`). ``holder``: what
    it wrote in the lock file (its pid and command line), or ``"pid unknown"``."""

    def __init__(self, folder: str | os.PathLike, holder: str):
        super().__init__(errno.EBUSY, f"{os.fspath(folder)} is in use by another run")
        self.folder, self.holder = os.fspath(folder), holder

    def __str__(self) -> str:
        return (f"{shown_path(self.folder)} is in use by another dlcore run ({self.holder}): "
                f"wait for it to finish, or write elsewhere")


class FolderLock:
    """The lock :func:`lock_folder` took; :meth:`release` removes the lock file and frees it
    (the system frees it too when the process ends, however it ends). ``FolderLock()``, with
    neither path nor descriptor, holds nothing: :func:`lock_folder` takes the lock in it when
    given it as ``into``."""

    def __init__(self, path: str | None = None, descriptor: int | None = None):
        self.path, self.descriptor = path, descriptor

    def release(self) -> None:
        if self.descriptor is None:
            return
        # remove, then unlock: a run waiting for the file on disk then never locks a removed
        # one (lock_folder checks that it locked the file on disk); Windows removes no open file
        if os.name == "posix":
            with contextlib.suppress(OSError):
                os.remove(self.path)
        os.close(self.descriptor)
        if os.name != "posix":
            with contextlib.suppress(OSError):
                os.remove(self.path)
        self.descriptor = None


def lock_folder(folder: str | os.PathLike, holder: str,
                into: FolderLock | None = None, name: str = LOCK_FILE_NAME) -> FolderLock:
    """Hold ``folder`` for this process: an OS-level lock (``flock``; ``msvcrt.locking`` on
    Windows) on the file :data:`LOCK_FILE_NAME` in it, which also records ``holder`` (who
    holds it: the pid and the command line). The system frees the lock when the process ends,
    even when it is killed, so a crashed run never blocks the folder.

    ``into``: a ``FolderLock()`` that takes the lock, instead of a new one. A caller that
    keeps it where its clean-up finds it before calling loses no lock to a Ctrl-C that lands
    as this function returns, before the caller could store a lock returned (a notebook's
    next run would find the folder held until the kernel restarts). An interruption inside
    this function closes what it opened.

    ``name``: the lock file's name, :data:`LOCK_FILE_NAME` unless given: a lock of one file
    in the folder (a scikit-learn wrapper's fit holds the files its callbacks write) that
    leaves the folder's own lock to the runs that take it.

    Returns
    -------
    FolderLock (``into`` when given), to :meth:`~FolderLock.release` at the end; a lock that
    does nothing where the folder's file system locks no files (some network mounts) or the
    lock file cannot be made.

    Raises
    ------
    FolderInUseError (an OSError) when another process holds it.
    """
    lock = FolderLock() if into is None else into
    path = os.path.join(os.fspath(folder), name)
    if fcntl is None and msvcrt is None:  # pragma: no cover - neither POSIX nor Windows
        return lock
    for _ in range(100):
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError:
            return lock
        try:
            try:
                _lock_descriptor(descriptor)
            except BlockingIOError:
                os.close(descriptor)
                raise FolderInUseError(folder, _holder_of(path)) from None
            except OSError:   # no locks on this file system: run unlocked, as before
                os.close(descriptor)
                return lock
            try:   # the run that held it may have removed the file since we opened it
                on_disk = os.path.samestat(os.fstat(descriptor), os.stat(path))
            except OSError:
                on_disk = False
            if on_disk:
                os.ftruncate(descriptor, 0)
                os.write(descriptor, holder.encode("utf-8", errors="replace"))
                lock.path, lock.descriptor = path, descriptor
                return lock
        except BaseException as error:   # Ctrl-C: no lock left open that nobody can release
            if not isinstance(error, FolderInUseError) and lock.descriptor != descriptor:
                with contextlib.suppress(OSError):
                    os.close(descriptor)
            raise
        os.close(descriptor)
    raise FolderInUseError(folder, "pid unknown")


def _lock_descriptor(descriptor: int) -> None:
    """Lock the open file without waiting: BlockingIOError when another process holds it.

    On Windows (tests/test_io_folder_lock.py simulates it) the lock is the byte at
    :data:`WINDOWS_LOCK_OFFSET` (Windows locks past the end of a file too), and the
    descriptor is left at the start of the file, where the holder's text is written."""
    if fcntl is not None:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    os.lseek(descriptor, WINDOWS_LOCK_OFFSET, os.SEEK_SET)
    try:
        msvcrt.locking(descriptor, msvcrt.LK_NBLCK, 1)
    except PermissionError as error:  # held by another process (errno 13)
        raise BlockingIOError(*error.args) from None
    finally:
        os.lseek(descriptor, 0, os.SEEK_SET)


def _holder_of(path: str) -> str:
    try:
        with open(path, "rb") as stream:
            text = stream.read(1000).decode("utf-8", errors="replace").strip()
    except OSError:
        text = ""
    return " ".join(text.split()) or "pid unknown"


def unmakeable_folder_error(folder, error):
    """The system's ``error`` for ``folder``, which could not be made, as an OSError of
    dlcore.io in one line, ``cannot write <folder>: <why> (errno N); <what to do>``, as
    ModelCheckpoint's and CSVLogger's writes say it, where the system said only
    "[Errno 20] Not a directory: 'a/file/bk'": no permission or a read-only disk
    (:class:`~dlcore.io.FolderNotWritableError`, a PermissionError, naming the folder it could
    not write in), no room (:class:`~dlcore.io.NoRoomError`), a file where a folder was to be,
    a name the system takes for none (:class:`~dlcore.io.UnwritableNameError`)."""
    number = error.errno
    if number in NOT_WRITABLE_ERRNOS:
        return FolderNotWritableError(folder, nearest_existing(folder), number)
    if number in NO_ROOM_ERRNOS:
        return NoRoomError(folder, number)
    fix = "write it to a folder you may write to"
    if number == errno.ENOTDIR or (number == errno.EEXIST and os.path.isfile(folder)):
        reason = (f"{shown_path(nearest_existing(folder))} on its way is a file, not a "
                  f"folder" if number == errno.ENOTDIR else "it is a file, not a folder")
        return UnwritableNameError(folder, number, f"{reason} (errno {number})", fix)
    if number is None:   # no system error to word (an OSError raised by other code)
        return error
    reason = os.strerror(number)
    return UnwritableNameError(folder, number,
                               f"{reason[:1].lower() + reason[1:]} (errno {number})", fix)


def nearest_existing(folder):
    """The nearest of ``folder`` and the folders above it that exists (a file, for a path
    under a file)."""
    folder = os.path.abspath(folder)
    while not os.path.lexists(folder) and os.path.dirname(folder) != folder:
        folder = os.path.dirname(folder)
    return folder
