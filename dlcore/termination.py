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
import sys
import threading

from numba.core import event as numba_event
from numba.core.compiler_lock import global_compiler_lock

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


def despite_interruptions(action, *arguments):
    """Run ``action(*arguments)`` to its end, started over when a ``KeyboardInterrupt`` (a
    Ctrl-C, a :class:`Terminated`) lands inside it (``action`` must be safe to start over),
    and raise the last such interruption after: a file half-copied, a temporary file left
    behind or a signal's handler left replaced is worse than a Ctrl-C answered a moment
    late."""
    interrupted = None
    while True:
        try:
            action(*arguments)
            break
        except KeyboardInterrupt as error:
            interrupted = error
    if interrupted is not None:
        raise interrupted


class HeldSignals:
    """Hold the Python handlers of some signals, then run them: :meth:`take_over` replaces
    each with :meth:`hold`, which notes the signals that arrive; :meth:`let_go` puts the
    handlers back and raises each noted signal once (``signal.raise_signal``: the handler put
    back runs, before it returns). The moment's delay of a Ctrl-C is for code that a
    ``KeyboardInterrupt`` between two of its lines would leave broken: a model file's save
    (its temporary file left beside the model) and Numba's compile of a kernel
    (:class:`_HoldingSignalsWhileCompiling`).

    A signal in its own lines leaves nothing held: a handler is noted before it is replaced,
    one raised while they are being replaced puts back those replaced (no let-go would come),
    and putting them back is started over when interrupted (:func:`despite_interruptions`).
    Holds nest, each a :class:`HeldSignals` of its own: the inner one replaces the outer's
    :meth:`hold`, and its let-go raises what came into the outer's, which raises it once,
    through the program's handler, when it lets go.

    Only handlers written in Python are replaced (a signal at its default, ending the process,
    or ignored, stays so), but for ``whatever_their_handler``: those signals are held whatever
    Python has for them, though never a handler installed outside Python (``getsignal`` gives
    None), nor one a sub-interpreter may not set. Only the main thread, where Python runs
    handlers, holds anything."""

    def __init__(self, numbers, whatever_their_handler=()):
        self.numbers = tuple(numbers)
        self.whatever_their_handler = frozenset(whatever_their_handler)
        self.replaced = {}   # signal number: the handler it had before the hold
        self.held = []       # the signals that arrived inside, in order, each once

    def hold(self, number, frame):
        """The handler while held: note the signal, once."""
        if number not in self.held:
            self.held.append(number)

    def take_over(self):
        """Replace the handlers with :meth:`hold`; a signal raised before all are replaced
        puts back those that were, and is raised."""
        if threading.current_thread() is not threading.main_thread():
            return
        try:
            for number in self.numbers:
                self._replace(number)
        except BaseException:
            # a signal whose handler was not replaced yet raised here: no let-go comes to put
            # back the handlers replaced before it; they are put back now, as if the signal
            # had come just before
            self._put_back_despite_interruptions()
            self.held.clear()
            raise

    def _replace(self, number):
        try:
            handler = signal.getsignal(number)
        except (ValueError, TypeError):   # a sub-interpreter's, an odd one
            return
        if handler is None or handler == self.hold or not (
                callable(handler) or number in self.whatever_their_handler):
            return
        # noted before it is replaced: a signal between the two finds it
        self.replaced[number] = handler
        try:
            signal.signal(number, self.hold)
        except (ValueError, TypeError):
            del self.replaced[number]

    def let_go(self):
        """Put back the handlers held, and run them for the signals that arrived."""
        self._put_back_despite_interruptions()
        held, self.held = self.held, []
        for number in held:
            # runs the handler put back (Python runs it before raise_signal returns): the
            # first interruption leaves from here, and the others stay unsaid, one
            # interruption being the user's answer
            signal.raise_signal(number)

    def _put_back(self):
        """Put back the handlers replaced, each forgotten once it is back: started over, it
        goes on with the others."""
        while self.replaced:
            number, handler = next(iter(self.replaced.items()))
            if signal.getsignal(number) == self.hold:   # unless replaced meanwhile
                signal.signal(number, handler)
            del self.replaced[number]

    def _put_back_despite_interruptions(self):
        """Put back the handlers to the end, despite an interruption in the midst (a Ctrl-C
        whose handler was just put back, before the SIGTERM's was: that one held every later
        SIGTERM for good, and the next compile, taking the hold for the handler, held it for
        good too), and raise the interruption after."""
        try:
            despite_interruptions(self._put_back)
        except KeyboardInterrupt:
            self.held.clear()   # the interruption raised stands for them
            raise


#: The signals whose Python handlers wait while Numba compiles or loads a kernel (those the
#: platform has): Ctrl-C's, and the two :func:`interrupt_on_termination` takes.
SIGNALS_HELD_WHILE_COMPILING = tuple(getattr(signal, name) for name in
                                     ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class _HoldingSignalsWhileCompiling(HeldSignals, numba_event.Listener):
    """Hold the Python handlers of Ctrl-C, SIGTERM and SIGHUP while the main thread holds
    Numba's compiler lock, and run them once it lets go.

    Numba compiles a kernel, or loads it from its cache, with callbacks that LLVM makes from C
    (llvmlite's object cache). Python cannot raise out of those: a ``KeyboardInterrupt``
    raised in one is printed as ignored and dropped, and LLVM goes on without the machine
    code the callback was to hand it. Loading from the cache, that left the kernel at address
    0: the process died of a segmentation fault (exit code -11, nothing saved) instead of
    stopping as Ctrl-C stops it. A signal that arrives inside the lock is noted instead, and
    its handler runs when the outermost lock is let go, raising as it would have, from the
    call that compiled (the kernel then whole, in memory and in the cache). A compile takes
    seconds at most; a signal whose handler is not Python's (the default ending of the
    process, or ignoring it) is left as it is. Numba's locks are taken by whatever thread
    compiles, and Python runs handlers only in the main thread: other threads' are not held.
    """

    def __init__(self):
        super().__init__(SIGNALS_HELD_WHILE_COMPILING)
        self.depth = 0       # the main thread's nesting of the compiler lock

    def on_start(self, event):
        if threading.current_thread() is not threading.main_thread():
            return
        if self.depth and not global_compiler_lock.is_locked():
            # a start whose lock was never taken, so never let go (an exception between the
            # two): its hold must not outlive it, or Ctrl-C would be held for good
            self.depth = 0
            self.let_go()
        if self.depth == 0:
            # a signal raised in it comes before Numba takes its lock (after this event): no
            # compile starts, and no end event comes to count this one off
            self.take_over()
        # counted once the handlers hold: a signal that interrupted the taking over left the
        # depth at 0 (at 1, no compile after it held anything, nor put back any handler)
        self.depth += 1

    def on_end(self, event):
        if threading.current_thread() is not threading.main_thread() or self.depth == 0:
            return
        self.depth -= 1
        if not self.depth:
            self.let_go()


#: Numba's compiler lock is taken by every compile and cache load, the CUDA target's too
#: (numba-cuda takes Numba's with its own).
HOLDING_SIGNALS_WHILE_COMPILING = _HoldingSignalsWhileCompiling()
numba_event.register("numba:compiler_lock", HOLDING_SIGNALS_WHILE_COMPILING)


#: The interruption Python dropped inside :func:`noting_dropped_interruptions` (one at most:
#: the first), until :func:`take_dropped_interruption` takes it.
_DROPPED = []


@contextlib.contextmanager
def noting_dropped_interruptions():
    """Within the block, a Ctrl-C (or a :class:`Terminated`) that Python drops is kept for
    :func:`take_dropped_interruption` instead of printed.

    Python cannot raise an exception out of a callback that C code makes (llvmlite's object
    cache while Numba compiles a kernel, a ``ctypes`` callback), a weakref callback or a
    ``__del__``: it prints "Exception ignored in ..." with a traceback and goes on. A Ctrl-C
    landing there left a kernel without its machine code, so the next call failed ("no
    compiled object yet for <Library ...>"), or was lost altogether. Other exceptions Python
    drops are printed as before (the previous ``sys.unraisablehook``)."""
    previous = sys.unraisablehook

    def keep_interruptions(unraisable):
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            if not _DROPPED:
                _DROPPED.append(unraisable.exc_value)
            return
        previous(unraisable)

    sys.unraisablehook = keep_interruptions
    try:
        yield
    finally:
        sys.unraisablehook = previous
        _DROPPED.clear()


def take_dropped_interruption():
    """The interruption that Python dropped since the last call (a ``KeyboardInterrupt``,
    :func:`noting_dropped_interruptions`), or None; forgotten once taken."""
    return _DROPPED.pop() if _DROPPED else None


def interruption_behind(error):
    """What ``error`` stands for: the interruption Python dropped before it, if there was one
    (the failure that followed it, e.g. a kernel left without code, is its consequence), else
    ``error`` itself. A ``KeyboardInterrupt`` is its own; the dropped one is then forgotten."""
    dropped = take_dropped_interruption()
    if dropped is None or isinstance(error, KeyboardInterrupt):
        return error
    return dropped.with_traceback(None)
