"""The --out lock on Windows (``msvcrt.locking``), simulated on any system.

``dlcore.io.atomic.lock_folder`` takes ``fcntl.flock`` on POSIX and ``msvcrt.locking`` on
Windows, a path no CI machine of the project runs. Here the module sees Windows: no ``fcntl``,
``os.name == "nt"`` and a stand-in ``msvcrt`` that keeps Windows' rules, as its documentation
states them (LockFile, _locking, DeleteFile):

- a lock holds a byte range of a file, from the descriptor's position, and is mandatory: no
  other descriptor may lock or *read* a byte of it (``PermissionError``, errno 13), while bytes
  outside it stay readable; ``LK_NBLCK`` fails at once when the range is held;
- closing the descriptor frees its locks (as the system does when a process ends, even killed);
- a file that is still open cannot be removed (``PermissionError``).

The oracle is what the POSIX lock does (tests/test_atomic_writes.py): a second run is refused in
one line naming the first, a released or crashed run frees the folder, the lock file goes with
the run that removes it.
"""
import builtins
import errno
import os

import pytest

from dlcore.io import atomic
from dlcore.io.atomic import LOCK_FILE_NAME, FolderInUseError, lock_folder


class WindowsFiles:
    """Windows' rules for the files dlcore's lock touches: the open descriptors (with their
    path) and the byte ranges each holds locked, per file."""

    LK_UNLCK, LK_LOCK, LK_NBLCK, LK_RLCK, LK_NBRLCK = 0, 1, 2, 3, 4

    def __init__(self):
        self.paths = {}    # open descriptor -> path
        self.locks = {}    # descriptor -> [(file key, first byte, stop)]
        self.calls = []    # (mode, nbytes, position) of every msvcrt.locking

    @staticmethod
    def key(path):
        status = os.stat(path)
        return status.st_dev, status.st_ino

    def held_by_others(self, key, first, stop, descriptor=None):
        return any(held_key == key and first < held_stop and held_first < stop
                   for holder, ranges in self.locks.items() if holder != descriptor
                   for held_key, held_first, held_stop in ranges)

    # -- msvcrt ---------------------------------------------------------------------------
    def locking(self, descriptor, mode, nbytes):
        position = os.lseek(descriptor, 0, os.SEEK_CUR)
        self.calls.append((mode, nbytes, position))
        key = self.key(self.paths[descriptor])
        if mode == self.LK_UNLCK:
            self.locks[descriptor] = [held for held in self.locks.get(descriptor, [])
                                      if held != (key, position, position + nbytes)]
            return
        assert mode == self.LK_NBLCK, "dlcore must not wait for a lock (LK_NBLCK)"
        if self.held_by_others(key, position, position + nbytes, descriptor):
            raise PermissionError(errno.EACCES, "Permission denied")
        self.locks.setdefault(descriptor, []).append((key, position, position + nbytes))

    # -- os, as atomic.py calls it --------------------------------------------------------
    def open(self, path, flags, mode=0o777):
        descriptor = os.open(path, flags, mode)
        self.paths[descriptor] = path
        return descriptor

    def close(self, descriptor):
        os.close(descriptor)
        self.paths.pop(descriptor, None)
        self.locks.pop(descriptor, None)   # closing the handle frees its locks

    def remove(self, path):
        if any(os.path.exists(held) and os.path.samefile(held, path)
               for held in self.paths.values()):
            raise PermissionError(errno.EACCES, f"{path} is open: Windows removes no open file")
        os.remove(path)

    def read_file(self, path, mode="r", *arguments, **options):
        """builtins.open for reading: a read that reaches a byte another descriptor holds
        locked fails, as ReadFile does (ERROR_LOCK_VIOLATION, errno 13)."""
        stream = builtins.open(path, mode, *arguments, **options)
        key, read = self.key(path), stream.read
        files = self

        def locked_read(size=-1):
            start = stream.tell()
            stop = os.fstat(stream.fileno()).st_size if size < 0 else start + size
            if files.held_by_others(key, start, max(stop, start + 1)):
                raise PermissionError(errno.EACCES, "The process cannot access the file "
                                                    "because another process has locked a "
                                                    "portion of the file")
            return read(size)

        stream.read = locked_read
        return stream


class WindowsOs:
    """``os`` as atomic.py sees it on Windows: ``name == "nt"``, the descriptors and the
    removals of :class:`WindowsFiles`, everything else the real module's."""

    def __init__(self, files):
        self.name, self._files = "nt", files
        self.open, self.close, self.remove = files.open, files.close, files.remove

    def __getattr__(self, name):
        return getattr(os, name)


@pytest.fixture
def windows(monkeypatch):
    files = WindowsFiles()
    msvcrt = type("msvcrt", (), {name: getattr(WindowsFiles, name) for name in
                                 ("LK_UNLCK", "LK_LOCK", "LK_NBLCK", "LK_RLCK", "LK_NBRLCK")})
    msvcrt.locking = staticmethod(files.locking)
    monkeypatch.setattr(atomic, "fcntl", None)
    monkeypatch.setattr(atomic, "msvcrt", msvcrt)
    monkeypatch.setattr(atomic, "os", WindowsOs(files))
    monkeypatch.setattr(atomic, "open", files.read_file, raising=False)
    return files


def test_on_windows_a_second_run_is_refused_in_one_line_naming_the_first(windows, tmp_path):
    """The lock is a byte past the holder's text: a lock on the text itself (byte 0) made the
    second run's read of it fail, and the message said "pid unknown"."""
    first = lock_folder(tmp_path, "pid 4242: dlcore rbm train --hidden 64")
    assert windows.calls and all(mode == WindowsFiles.LK_NBLCK and nbytes == 1
                                 for mode, nbytes, _ in windows.calls)
    with pytest.raises(FolderInUseError) as caught:
        lock_folder(tmp_path, "pid 5: dlcore rbm train")
    assert caught.value.holder == "pid 4242: dlcore rbm train --hidden 64"
    assert str(caught.value) == (f"{tmp_path} is in use by another dlcore run (pid 4242: "
                                 f"dlcore rbm train --hidden 64): wait for it to finish, or "
                                 f"write elsewhere")
    assert (tmp_path / LOCK_FILE_NAME).read_text() == "pid 4242: dlcore rbm train --hidden 64"
    first.release()


def test_on_windows_a_released_lock_frees_the_folder_and_takes_its_file_along(windows,
                                                                              tmp_path):
    """Windows removes no open file: the release closes the lock file, then removes it."""
    first = lock_folder(tmp_path, "pid 1: first")
    first.release()
    assert not (tmp_path / LOCK_FILE_NAME).exists()
    assert not windows.paths and not windows.locks
    second = lock_folder(tmp_path, "pid 2: second")
    assert (tmp_path / LOCK_FILE_NAME).read_text() == "pid 2: second"
    second.release()
    second.release()   # twice is harmless


def test_on_windows_a_run_that_crashed_does_not_block_its_folder(windows, tmp_path):
    """A killed run's handle is closed by the system (its locks freed) but its lock file
    stays: the next run takes the folder and writes itself into the file."""
    crashed = lock_folder(tmp_path, "pid 1: crashed")
    windows.close(crashed.descriptor)          # the process ended without a release
    assert (tmp_path / LOCK_FILE_NAME).exists()
    taken = lock_folder(tmp_path, "pid 2: next")
    assert (tmp_path / LOCK_FILE_NAME).read_text() == "pid 2: next"
    taken.release()
    assert not (tmp_path / LOCK_FILE_NAME).exists()


def test_a_folder_in_use_whose_name_has_a_line_break_is_said_on_one_line(tmp_path):
    """FolderInUseError printed the folder as it is: a name with a line break (one a script
    built) made its message two lines, where dlcore's other errors escape it."""
    folder = tmp_path / "runs\nold"
    folder.mkdir()
    first = lock_folder(folder, "pid 4242: dlcore rbm train")
    try:
        with pytest.raises(FolderInUseError) as caught:
            lock_folder(folder, "pid 5: dlcore rbm train")
        assert "\n" not in str(caught.value)
        assert str(caught.value).startswith(f"{str(folder)!r} is in use by another dlcore run")
    finally:
        first.release()
