"""Real signals sent at each line of the code under test, in turn: the tests that step an
interruption through a writer, a hold of signals or the lines around a command."""
import linecache
import os
import sys


class SignalAtLine:
    """Within the block, send signal ``number`` to this process at the ``step``-th line run in
    the source files ``files`` or the code objects ``codes`` (``sys.settrace``), where
    ``sendable()`` says yes (a signal at Python's default would end the test session).

    A ``try:`` line is not counted: it runs no instruction at which CPython handles a signal,
    and the signal sent there would be raised past the try it opens.

    Attributes
    ----------
    lines : int, the lines counted so far: past the last step once ``step > lines`` at the end
    sent : bool, whether the signal was sent
    """

    def __init__(self, step, number, files=(), codes=(), sendable=lambda: True):
        self.step, self.number, self.sendable = step, number, sendable
        self.files, self.codes = frozenset(files), frozenset(codes)
        self.lines, self.sent = 0, False

    def tracer(self, frame, event, argument):
        code = frame.f_code
        if code.co_filename not in self.files and code not in self.codes:
            return None
        if event == "line" and linecache.getline(code.co_filename,
                                                 frame.f_lineno).strip() != "try:":
            self.lines += 1
            if self.lines == self.step and self.sendable():
                self.sent = True
                os.kill(os.getpid(), self.number)
        return self.tracer

    def __enter__(self):
        sys.settrace(self.tracer)
        return self

    def __exit__(self, *raised):
        sys.settrace(None)
        return False
