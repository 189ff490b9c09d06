"""SIGTERM and SIGHUP as Ctrl-C, for those who ask for it.

A cluster scheduler ends a job at its time limit with SIGTERM (SLURM, a grace period before its
SIGKILL), as do ``kill PID``, ``timeout`` and systemd; a closed terminal or ssh session sends
SIGHUP. Python's default for both is to end the process at once, so a ``fit`` stopped so leaves
nothing behind: everything since the last checkpoint file is lost. Inside
:func:`interrupt_on_termination` they raise :class:`Terminated` instead, a ``KeyboardInterrupt``:
``fit`` stops as on Ctrl-C (the model stays at its last finished epoch) and whatever handles
Ctrl-C (saving a checkpoint, saying how to resume) handles them too. The ``dlcore`` command line
installs it for every command; the library keeps Python's default unless asked, since a program
that imports it may have its own use for these signals.
"""
import contextlib
import signal
import threading

#: The signals :func:`interrupt_on_termination` turns into :class:`Terminated`, those of them
#: the platform has (Windows has no SIGHUP).
TERMINATION_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP")
                            if hasattr(signal, name))


class Terminated(KeyboardInterrupt):
    """A SIGTERM or SIGHUP received inside :func:`interrupt_on_termination`: a
    ``KeyboardInterrupt``, so that it stops training as Ctrl-C does.

    Attributes
    ----------
    signal_number : int
    signal_name : str, "SIGTERM" or "SIGHUP"
    exit_code : int, 128 + ``signal_number``, as shells report a process the signal ended
    reason : str, what interrupted the process, for its one line: ``signal_name``
    """

    def __init__(self, signal_number):
        super().__init__(signal_number)
        self.signal_number = int(signal_number)
        self.signal_name = signal.Signals(self.signal_number).name
        self.exit_code = 128 + self.signal_number
        self.reason = self.signal_name

    def __str__(self):
        return self.signal_name


def raise_terminated(signal_number, frame):
    """The handler :func:`interrupt_on_termination` installs: raise :class:`Terminated`."""
    raise Terminated(signal_number)


@contextlib.contextmanager
def interrupt_on_termination():
    """Within the block, a SIGTERM or SIGHUP raises :class:`Terminated` (a
    ``KeyboardInterrupt``) in the main thread instead of ending the process, so that a ``fit``
    stops as on Ctrl-C, at its last finished epoch, and can be saved::

        with dlcore.interrupt_on_termination():
            try:
                model.fit(X)
            except KeyboardInterrupt:
                dlcore.save(model, "checkpoint.h5")
                raise

    Only signals whose handler is Python's default are taken (a handler of the program's own
    stays, and so does an ignored SIGHUP, as ``nohup`` leaves it); the handlers are put back
    when the block ends. Outside the main thread, where Python cannot set handlers, it does
    nothing.
    """
    replaced = {}
    if threading.current_thread() is threading.main_thread():
        for number in TERMINATION_SIGNALS:
            if signal.getsignal(number) == signal.SIG_DFL:
                replaced[number] = signal.signal(number, raise_terminated)
    try:
        yield
    finally:
        for number, handler in replaced.items():
            signal.signal(number, handler)


def terminating_signal(error):
    """The interruption that names its signal that ``error`` was made of (found along its
    causes and contexts, as a command's message of an interruption is raised from it): a
    :class:`Terminated`, or the :class:`dlcore.distributed.PeerInterrupted` of another rank's
    signal (a SIGINT too: it says which rank); None when none was (a Ctrl-C of this process).
    Either has ``signal_number``, ``signal_name``, ``exit_code`` and ``reason``."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, KeyboardInterrupt) and hasattr(error, "reason") and hasattr(
                error, "exit_code"):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None
