"""The communicator of a data-parallel run: who we are, and the one collective operation training
needs, a sum over the ranks.

:class:`Communicator` wraps an ``mpi4py`` communicator. Its :meth:`~Communicator.allreduce`
sums a float32 buffer over the ranks *in place* and in a **fixed order**, rank 0 + rank 1 + ...
+ rank R-1 for every element, so every rank holds bit-for-bit the same sum whatever the MPI
library and its algorithm (MPI leaves the order of its own ``MPI_SUM`` to the implementation,
which may differ between message sizes and between ranks). It is the bandwidth-optimal
reduce-scatter + all-gather pair (Rabenseifner; Thakur, Rabenseifner & Gropp 2005):

1. all-to-all: the buffer is cut into R chunks; rank j receives chunk j of every rank;
2. rank j sums its R copies of chunk j in rank order;
3. all-gather: every rank receives every summed chunk.

Each rank sends and receives 2 (R - 1) / R of the buffer, as a ring all-reduce does, in two
collective calls (latency 2 alpha log R or so, depending on the MPI).

**No rank hangs.** MPI's blocking collectives wait forever for a rank that died or stopped
calling them. Here every collective is non-blocking (``Ialltoall``, ``Iallgather``) and is
polled until ``timeout`` seconds have passed; then the rank says which operation timed out and
aborts the whole job (``MPI_Abort``). A Python exception escaping on any rank does the same
(:func:`install_abort_on_error`): one message naming the rank and the error, every rank stopped.

**One line, however many ranks fail.** An error every rank meets (a diverged training, a
refused setting) would print a line per rank. A failing rank first tells the others (a message
on the same duplicate communicator as an interruption), and the lowest failing rank alone
speaks: rank 0 at once, another rank after :data:`FAILURE_GRACE_SECONDS` unless a lower rank
said it failed too, in which case it waits silently for that rank to stop the job. A rank that
waits in a collective and hears of a failure does not report the wait's timeout. MPICH's own
``Abort(1) on node ...`` line is not shown: stderr is closed just before ``MPI_Abort``.

**Ctrl-C to one rank stops them all.** A launcher passes a Ctrl-C to every rank, but a SIGINT
sent to one rank alone (``kill -INT``, a batch system's signal) stopped that rank only, and the
others waited in their next sum until the timeout. A rank that was interrupted tells every
other one (:meth:`Communicator.interrupt_others`: a message on a duplicate of the communicator,
which :meth:`Communicator.watch_interrupts` listens on); a rank waiting in a collective that
receives it raises :class:`PeerInterrupted`, a ``KeyboardInterrupt``, and stops as if it had got
the Ctrl-C itself: within a poll (well under a second), not after the timeout. A rank that
compiles kernels (the first epoch of a cold cache: tens of seconds, minutes on a loaded
machine) polls no collective, so it also looks for the notice as each Numba compilation starts
(:func:`_look_for_interrupts_while_compiling`), in its own thread: no second thread ever calls
MPI. The notice carries the signal (a SIGTERM to one rank: a cluster killing one task), which
the others name and end with (exit code 143). A Ctrl-C that escapes a script ends the job as
one process ends: exit code 130, one line (:meth:`Communicator.end_interrupted`).

**A rank that ends early.** A ``sys.exit`` on one rank, or a script that makes fewer calls on
one rank, left the others waiting for it until the timeout. Every rank tells the others as its
process exits; a rank waiting in a collective that hears it gives the collective
:data:`ENDED_GRACE_SECONDS` to complete (the last data of a rank that ended normally), then
stops the job in one line naming the rank that ended.
"""
import _thread
import atexit
import contextlib
import os
import signal
import sys
import threading
import time

import numpy as np
from numba.core import event as numba_events

from dlcore.termination import terminating_signal
from dlcore.validation import check_int

#: Seconds a collective operation waits for the other ranks before the job is aborted.
DEFAULT_TIMEOUT = 300.0
#: Polling: spin on MPI's progress engine this long, then sleep between polls (a rank that
#: waits for a slower one should leave the cores to it: this machine has two).
SPIN_SECONDS = 2e-3
POLL_SLEEP_SECONDS = 2e-4
#: How long a rank that aborts the job waits after printing its message, so that the launcher
#: forwards the line before MPI_Abort stops it.
ABORT_GRACE_SECONDS = 0.5
#: The tag of the message an interrupted rank sends the others (on a communicator of its own).
INTERRUPT_TAG = 1
#: The tag of the message a failing rank sends the others before it aborts the job.
FAILURE_TAG = 2
#: How long a failing rank other than 0 waits for a lower rank's word that it failed too (an
#: error every rank meets, met at nearly the same time) before it reports: one line, the lowest
#: failing rank's.
FAILURE_GRACE_SECONDS = 1.0
#: How long a rank told of another's failure waits, past that rank's grace and its line, for
#: the job to be stopped before it stops it, silently.
FAILURE_WAIT_SECONDS = FAILURE_GRACE_SECONDS + ABORT_GRACE_SECONDS + 5.0
#: The tag of the message a rank sends the others as its process ends (at exit).
ENDED_TAG = 3
#: How long a rank that waits in a collective, told that another rank has ended, still waits
#: for the collective to complete (the ended rank's last data in flight) before it stops the
#: job: that rank will never join.
ENDED_GRACE_SECONDS = 5.0
#: The tag of the values :meth:`Communicator.gather_arrived` sends rank 0 (after an
#: interruption, when the collectives can no longer be trusted to be reached by every rank).
ARRIVED_TAG = 4
#: How often a rank busy with work of its own (:meth:`Communicator.hearing_peers_while_busy`)
#: looks for another rank's interruption.
PEER_POLL_SECONDS = 0.2
#: The exit code of a script stopped by Ctrl-C (128 + SIGINT, as shells report it).
INTERRUPTED_EXIT_CODE = 130


class PeerInterrupted(KeyboardInterrupt):
    """Another rank of the job was interrupted (a Ctrl-C, a SIGINT or SIGTERM to that rank
    alone): raised in this rank's :meth:`Communicator.wait`, so that it stops as a Ctrl-C stops
    it (a training command saves its checkpoint on rank 0 and exits with 128 + the signal)
    instead of waiting for that rank until the timeout.

    Attributes
    ----------
    rank, size : int, the rank that was interrupted, of how many
    signal_number : int, the signal that interrupted it (SIGINT for a Ctrl-C)
    signal_name : str, its name ("SIGINT", "SIGTERM", "SIGHUP")
    exit_code : int, 128 + ``signal_number``: this rank ends as that rank does
    reason : str, what interrupted the job, for its one line: "SIGTERM to rank 1 of 2"
    """

    def __init__(self, rank, size, signal_number=signal.SIGINT):
        self.rank, self.size = int(rank), int(size)
        self.signal_number = int(signal_number)
        try:
            self.signal_name = signal.Signals(self.signal_number).name
        except ValueError:   # a number this platform does not name
            self.signal_name = f"signal {self.signal_number}"
        self.exit_code = 128 + self.signal_number
        self.reason = f"{self.signal_name} to rank {self.rank} of {self.size}"
        super().__init__(f"rank {rank} of {size} was interrupted by {self.signal_name}")


class Communicator:
    """A data-parallel group of ``size`` processes (ranks); this process is ``rank``.

    Parameters
    ----------
    mpi_comm : an ``mpi4py.MPI.Intracomm`` (``MPI.COMM_WORLD`` from
        :func:`dlcore.distributed.init`, or the user's own, wrapped by :func:`as_communicator`)
    timeout : float, seconds a collective waits before the job is aborted

    Attributes
    ----------
    rank, size : int
    is_root : bool, rank 0: the one that prints and writes files
    threads : int or None, the compute threads of this rank (set by ``init``)
    sync_every : int, local steps between all-reduces: 1, the exact path (a ``fit`` given
        ``sync_every=K`` trains through a :class:`Periodic` view of the communicator that
        says K; :mod:`dlcore.distributed.local_sgd`)
    """

    sync_every = 1

    def __init__(self, mpi_comm, timeout=DEFAULT_TIMEOUT):
        timeout = float(timeout)
        if not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout}")
        self.mpi_comm = mpi_comm
        self.rank = mpi_comm.Get_rank()
        self.size = mpi_comm.Get_size()
        self.is_root = self.rank == 0
        self.timeout = timeout
        self.threads = None
        #: This rank's number among the communicator's ranks on its node, and their number
        #: (:func:`wrap`: MPI's shared-memory split): which GPU it uses, its threads.
        self.local_rank, self.local_size = 0, 1
        self._scratch = {}
        #: Seconds spent in :meth:`allreduce` (communication and waiting), for the benchmarks.
        self.allreduce_seconds = 0.0
        #: How many :meth:`allreduce` calls this rank made (local SGD's saving is counted so).
        self.allreduce_calls = 0
        #: The rank whose interruption stopped this one (:class:`PeerInterrupted`), or None.
        self.interrupted_by = None
        # (control communicator, receive buffer, posted receive) once watch_interrupts ran
        self._interrupts = None
        self._failures = None   # (receive buffer, posted receive) of other ranks' failures
        #: The lowest other rank that said it failed (:meth:`abort`), or None.
        self.failed_rank = None
        self._failure_heard = None   # time.monotonic() when a failure was first heard
        self._endings = None   # (receive buffer, posted receive) of other ranks' ends
        #: The first other rank heard to have ended (its process exiting), or None.
        self.ended_rank = None
        self._ended_heard = None   # time.monotonic() when it was heard
        self._notices = []   # the notices sent: alive until MPI is finalised
        # (process, thread) that watches: the one that makes this rank's collectives, the only
        # one that may test the notice's receive from a compilation (a forked child never)
        self._watcher = None
        self._interrupt_lock = threading.RLock()
        # the PeerInterrupted that hearing_peers_while_busy heard and did not see raised
        self._undelivered = None

    def __repr__(self):
        return f"<dlcore Communicator rank {self.rank} of {self.size}>"

    # -- the shard of a mini-batch ------------------------------------------------------
    def shard(self, n_rows, rank=None):
        """``(first, stop)``: the rows of a global mini-batch of ``n_rows`` this rank (or
        ``rank``) computes.

        Contiguous blocks in rank order, the first ``n_rows % size`` ranks one row more:
        rank r holds rows [r q + min(r, m), (r + 1) q + min(r + 1, m)), q, m = divmod(n, R).
        A rank may hold no row (a batch smaller than the group).
        """
        rank = self.rank if rank is None else rank
        q, m = divmod(int(n_rows), self.size)
        first = rank * q + min(rank, m)
        return first, first + q + (1 if rank < m else 0)

    # -- collectives ----------------------------------------------------------------------
    def allreduce(self, buffer):
        """``buffer <- sum over ranks of buffer``, in place, summed in rank order (module
        docstring). ``buffer``: a C-contiguous float32 or float64 NumPy array of any shape,
        the same shape on every rank. Returns ``buffer``."""
        if not (isinstance(buffer, np.ndarray) and buffer.dtype in (np.float32, np.float64)
                and buffer.flags.c_contiguous):
            raise TypeError("allreduce sums a C-contiguous float32 or float64 NumPy array in "
                            f"place, got {type(buffer).__name__} {getattr(buffer, 'dtype', '')}")
        if self.size == 1:
            return buffer
        self.allreduce_calls += 1
        started = time.perf_counter()
        flat = buffer.reshape(-1)
        chunk = -(-flat.size // self.size)
        send, receive = self._buffers(chunk * self.size, flat.dtype)
        send[:flat.size] = flat
        send[flat.size:] = 0
        self.wait(self.mpi_comm.Ialltoall(send, receive), "allreduce (all-to-all)")
        parts = receive.reshape(self.size, chunk)
        mine = parts[0].copy()
        for part in parts[1:]:  # rank order: the fixed summation order
            mine += part
        self.wait(self.mpi_comm.Iallgather(mine, send), "allreduce (all-gather)")
        flat[:] = send[:flat.size]
        self.allreduce_seconds += time.perf_counter() - started
        return buffer

    def barrier(self, what="barrier"):
        """Wait until every rank has arrived (with the timeout)."""
        if self.size > 1:
            self.wait(self.mpi_comm.Ibarrier(), what)

    def broadcast(self, value, what="broadcast"):
        """Rank 0's ``value`` (any picklable object) on every rank. A small control message:
        an ``Ibcast`` of its length, then of its bytes, both with the timeout."""
        if self.size == 1:
            return value
        import pickle
        payload = pickle.dumps(value) if self.is_root else b""
        length = np.array([len(payload)], dtype=np.int64)
        self.wait(self.mpi_comm.Ibcast(length, root=0), what)
        data = np.frombuffer(payload, np.uint8).copy() if self.is_root else np.empty(
            int(length[0]), np.uint8)
        self.wait(self.mpi_comm.Ibcast(data, root=0), what)
        return value if self.is_root else pickle.loads(data.tobytes())  # noqa: S301 (ours)

    def gather(self, value, what="gather"):
        """Every rank's ``value`` (any picklable object) in rank order, on rank 0; None on the
        others. An ``Igather`` of the lengths, then an ``Igatherv`` of the bytes, both with the
        timeout (rank 0 waits for the slowest rank to arrive)."""
        if self.size == 1:
            return [value]
        import pickle

        from mpi4py import MPI
        payload = np.frombuffer(pickle.dumps(value), np.uint8)
        lengths = np.zeros(self.size, np.int64) if self.is_root else None
        self.wait(self.mpi_comm.Igather(np.array([payload.size], np.int64), lengths, root=0),
                  what)
        data = np.empty(int(lengths.sum()) if self.is_root else 0, np.uint8)
        offsets = np.concatenate([[0], np.cumsum(lengths)]) if self.is_root else None
        receive = [data, (lengths, offsets[:-1]), MPI.BYTE] if self.is_root else None
        self.wait(self.mpi_comm.Igatherv(payload, receive, root=0), what)
        if not self.is_root:
            return None
        return [pickle.loads(data[first:stop].tobytes())  # noqa: S301 (ours)
                for first, stop in zip(offsets[:-1], offsets[1:])]

    def gather_arrived(self, value, seconds):
        """What rank 0 can still gather once the job is interrupted: ``{rank: value}`` of
        the ranks whose ``value`` (any picklable object) reached rank 0 within ``seconds``
        (rank 0's own included), on rank 0; None on the others, which send theirs and wait for
        it to be received at most ``seconds``.

        Not a collective: an interrupted rank cannot count on every other to reach one (a rank
        killed, or still in a long computation that hears of the interruption late), so a rank
        that does not send in time is left out, and nothing aborts the job. Point-to-point
        messages on the control communicator of :meth:`watch_interrupts` (no other message
        can match them); without it (a communicator that does not watch), rank 0's value
        alone."""
        if self.is_root and (self.size == 1 or self._interrupts is None):
            return {0: value}
        if self._interrupts is None:
            return None
        import pickle

        from mpi4py import MPI
        control = self._interrupts[0]
        deadline = time.monotonic() + seconds
        if not self.is_root:
            payload = np.frombuffer(pickle.dumps(value), np.uint8).copy()
            request = control.Isend(payload, dest=0, tag=ARRIVED_TAG)
            self._notices.append((payload, request))   # alive until MPI is finalised
            while not request.Test() and time.monotonic() < deadline:
                time.sleep(POLL_SLEEP_SECONDS)
            return None
        arrived, status = {0: value}, MPI.Status()
        while len(arrived) < self.size and time.monotonic() < deadline:
            if control.Iprobe(source=MPI.ANY_SOURCE, tag=ARRIVED_TAG, status=status):
                data = np.empty(status.Get_count(MPI.BYTE), np.uint8)
                source = status.Get_source()
                control.Recv(data, source=source, tag=ARRIVED_TAG)
                arrived[source] = pickle.loads(data.tobytes())  # noqa: S301 (ours)
            else:
                time.sleep(POLL_SLEEP_SECONDS)
        return arrived

    def check_same(self, what, value):
        """ValueError on the ranks whose ``value`` (a picklable, comparable object) differs
        from rank 0's: the ranks of a data-parallel run must agree on ``what``."""
        reference = self.broadcast(value, f"checking {what}")
        if reference != value:
            if isinstance(value, dict) and isinstance(reference, dict):
                # the settings that differ, not two whole dicts (a PT ladder's temperatures)
                shown = "; ".join(f"{key}: {differing_part(value.get(key), reference.get(key))}"
                                  for key in sorted(set(value) | set(reference), key=str)
                                  if value.get(key) != reference.get(key))
            else:
                shown = differing_part(value, reference)
            raise ValueError(f"rank {self.rank} and rank 0 differ in {what} ({shown[:600]}): "
                             f"every rank must call fit with the same data and settings")

    def check_same_backend(self, backend):
        """ValueError on the ranks whose backend (a :class:`dlcore.backend.Backend`) is not
        rank 0's: ``auto`` chooses on each rank (a GPU-less node, a GPU that refuses a rank a
        context), and ranks on cpu and cuda round their steps apart, the result no one
        process's and the job as slow as its cpu ranks."""
        reference = self.broadcast(backend.name, "checking the backend")
        if reference != backend.name:
            # a rank without the GPU that rank 0 has says why (a rank on the GPU has none)
            from dlcore.backend import cuda_status
            usable, reason = cuda_status()
            why = "" if usable else f" ({reason})"
            raise ValueError(f"rank {self.rank} trains on the {backend.name} backend{why}, rank "
                             f"0 on the {reference} backend: every rank must train on the "
                             f"same one; give them the same GPU setup, or --backend cpu "
                             "(backend='cpu') to all")

    def wait(self, request, what):
        """Poll ``request`` until it completes; past the timeout, abort every rank. A notice
        that another rank was interrupted raises :class:`PeerInterrupted`."""
        deadline = time.monotonic() + self.timeout
        spin_until = time.monotonic() + SPIN_SECONDS
        while not request.Test():
            self._check_interrupts()
            self._check_failures()
            self._check_endings()
            now = time.monotonic()
            if self._failure_heard is not None:
                # the failed rank reports and stops the job: no line about this wait
                if now > self._failure_heard + FAILURE_WAIT_SECONDS:
                    self.abort(None)
            elif self._ended_heard is not None and now > self._ended_heard + \
                    ENDED_GRACE_SECONDS:
                self.abort(f"rank {self.ended_rank} ended (a sys.exit, or the end of its "
                           f"script) while this rank waited for it in {what}: every rank must "
                           "make the same calls; stopping all ranks")
            elif now > deadline:
                self.abort(f"{what} waited {self.timeout:g} s for the other ranks: one of them "
                           "failed or is stuck; stopping all ranks")
            if now > spin_until:
                time.sleep(POLL_SLEEP_SECONDS)

    # -- Ctrl-C to one rank -----------------------------------------------------------------
    def watch_interrupts(self):
        """Listen for the other ranks' interruptions (module docstring): a duplicate of the
        communicator, whose messages can match nothing else, and one receive posted on it,
        tested while :meth:`wait` polls. Collective: every rank calls it
        (:func:`dlcore.distributed.init` does). The receive is cancelled at exit, before MPI is
        finalised."""
        if self.size == 1 or self._interrupts is not None:
            return
        from mpi4py import MPI
        control = self.mpi_comm.Dup()
        notice = np.zeros(3, np.int64)   # (the interrupted rank, its signal, said its line)
        self._interrupts = (control, notice, control.Irecv(notice, source=MPI.ANY_SOURCE,
                                                           tag=INTERRUPT_TAG))
        self._post_failure_receive()
        self._post_ending_receive()
        self._watcher = (os.getpid(), threading.get_ident())
        _look_for_interrupts_while_compiling(self)
        atexit.register(self._stop_watching)   # after mpi4py's own: runs before MPI_Finalize
        atexit.register(self._tell_ended)      # and before that: the sends go first

    def _post_failure_receive(self):
        from mpi4py import MPI
        failed = np.zeros(1, np.int64)
        self._failures = (failed, self._interrupts[0].Irecv(failed, source=MPI.ANY_SOURCE,
                                                            tag=FAILURE_TAG))

    def _post_ending_receive(self):
        from mpi4py import MPI
        ended = np.zeros(1, np.int64)
        self._endings = (ended, self._interrupts[0].Irecv(ended, source=MPI.ANY_SOURCE,
                                                          tag=ENDED_TAG))

    def _tell_ended(self):
        """Tell every other rank that this one's process ends (run at exit), so that a rank
        that waits for it in a collective stops the job at once, not after the timeout."""
        self._notify_others(ENDED_TAG)

    def _check_endings(self):
        if self._endings is not None and self._ended_heard is None and \
                self._endings[1].Test():
            self.ended_rank = int(self._endings[0][0])
            self._ended_heard = time.monotonic()
            self._endings = None

    def interrupt_others(self, signal_number=signal.SIGINT, said=False):
        """Tell every other rank that this one was interrupted, by ``signal_number`` (SIGINT
        for a Ctrl-C, SIGTERM for a scheduler's or ``kill``'s), so that each stops at its next
        wait (:class:`PeerInterrupted`, which names the rank and the signal, and ends as this
        rank does: 128 + the signal). Non-blocking sends of a few bytes (sent eagerly), never
        waited for: a rank that has ended needs no notice. ``said``: this rank said the job's
        line (:meth:`end_interrupted`). Nothing when this rank was itself stopped by another's
        notice (that rank told every rank) or does not watch."""
        if self.interrupted_by is None:
            self._notify_others(INTERRUPT_TAG, int(signal_number), int(said))

    def _notify_others(self, tag, *details):
        """Send every other rank this rank's number (and ``details``, integers) under ``tag``
        on the control communicator: non-blocking sends of a few bytes (sent eagerly), never
        waited for, kept alive until MPI is finalised; nothing when this rank does not
        watch."""
        if self._interrupts is None:
            return
        control = self._interrupts[0]
        for rank in range(self.size):
            if rank != self.rank:
                notice = np.array([self.rank, *details], np.int64)
                self._notices.append((notice, control.Isend(notice, dest=rank, tag=tag)))

    def _take_interrupt(self):
        """The :class:`PeerInterrupted` of another rank's notice if it has arrived (taken in
        once: :attr:`interrupted_by` is set), else None. The receive is tested under a lock:
        the thread of :meth:`hearing_peers_while_busy` tests it too."""
        with self._interrupt_lock:
            if self._interrupts is None or self.interrupted_by is not None:
                return None
            _, notice, receive = self._interrupts
            if not receive.Test():
                return None
            self.interrupted_by = int(notice[0])
            return PeerInterrupted(self.interrupted_by, self.size, int(notice[1]))

    def _check_interrupts(self):
        heard = self._take_interrupt()
        if heard is not None:
            raise heard

    def check_interrupts(self):
        """Raise :class:`PeerInterrupted` if another rank's interruption has arrived: for a
        rank that works alone for long between collectives (a sweep's runs), to stop when
        another rank stops rather than at its next collective. Also raises the one
        :meth:`hearing_peers_while_busy` heard but could not deliver before its block
        ended."""
        undelivered, self._undelivered = self._undelivered, None
        if undelivered is not None:
            raise undelivered
        self._check_interrupts()

    @contextlib.contextmanager
    def hearing_peers_while_busy(self):
        """Within the block, another rank's interruption reaches this rank within
        :data:`PEER_POLL_SECONDS`, as a :class:`PeerInterrupted` raised in the main thread
        wherever it is (as a Ctrl-C lands), for work that makes no collective for long: a
        sweep's run, a whole training of its own (tens of minutes), heard of it only at its
        next kernel compilation or its end, and the interrupted sweep's rank 0 waited for its
        rows in vain.

        A thread tests the notice's receive every :data:`PEER_POLL_SECONDS` (under the lock
        that the main thread's tests take, so MPI_THREAD_SERIALIZED suffices; the main thread
        makes no other MPI call in such a block) and has the main thread run, between two
        bytecodes, the handler of a real-time signal that nothing else handles (tripped with
        ``_thread.interrupt_main``: no signal is sent), which raises the exception there; where
        there is no such signal, it raises it with ``PyThreadState_SetAsyncExc``, which cannot
        look at what the main thread does when it lands. Costs a wake-up of a thread five times
        a second. Nothing is raised while the main thread handles an exception (in an
        ``except`` or ``finally`` clause, or a function called from one): that is this rank's
        own interruption saving its checkpoint (after a launcher's Ctrl-C to every rank, the
        others' notices arrive then), which it must not cut; the notice waits for the next
        check. Where it cannot work (one rank, no watcher, not the watching main thread, an
        MPI without threads, an interpreter without ``ctypes.pythonapi`` or
        ``sys._current_exceptions``), the block runs as it is."""
        main_thread = threading.main_thread()
        if not (self.size > 1 and self._interrupts is not None
                and self._watcher == (os.getpid(), threading.get_ident())
                and threading.current_thread() is main_thread and _threads_may_call_mpi()
                and _async_raise is not None and hasattr(sys, "_current_exceptions")):
            yield
            return
        stop = threading.Event()

        def deliver(signum, frame):
            # run by the main thread between two bytecodes, as a signal's handler: the notice
            # is raised only if the main thread is not handling an exception by then (its own
            # Ctrl-C, landing as the listener took the notice: the launcher passes one to every
            # rank, and the notice raised in the save that it began cut it); else the listener
            # tries again at its next poll
            if not stop.is_set() and self._undelivered is not None and \
                    sys.exc_info()[1] is None:
                stop.set()
                raise _raising(self._undelivered, self)()

        deliverer = _free_signal()
        handler = signal.signal(deliverer, deliver) if deliverer is not None else None

        def listen():
            while not stop.wait(PEER_POLL_SECONDS):
                with self._interrupt_lock:
                    if stop.is_set():
                        return
                    if _handling_an_exception(main_thread):
                        # this rank's own interruption (or error) is being dealt with: a
                        # checkpoint's save that the notice would cut. The first interruption
                        # wins; the notice waits for the next check
                        continue
                    if self._undelivered is None:
                        self._undelivered = self._take_interrupt()
                    if self._undelivered is None:
                        continue
                    if deliverer is not None:   # the main thread decides, when it can
                        _thread.interrupt_main(deliverer)
                        continue
                    _async_raise(main_thread.ident, _raising(self._undelivered, self))
                    return

        listener = threading.Thread(target=listen, name="dlcore-peer-interrupts",
                                    daemon=True)
        listener.start()
        try:
            yield
        finally:
            try:
                with self._interrupt_lock:
                    stop.set()
                listener.join()
            finally:   # the notice raised here, as the block ends, still puts the handler back
                if deliverer is not None:
                    signal.signal(deliverer, handler)
            # A notice heard and not raised is left for check_interrupts, and nothing is to
            # be taken back: the listener raises one asynchronously (no deliverer) holding
            # the lock, which the main thread took before it ran stop.set(), Python code
            # where the notice landed. (Taking back one never raised with
            # PyThreadState_SetAsyncExc(thread, NULL) left the interpreter marked as having
            # an exception to deliver, up to Python 3.12: under a trace or profile function
            # (a debugger, coverage, cProfile) the next function's entry then checked for it
            # without end, a hang.)

    def check_interrupts_while_compiling(self):
        """Raise :class:`PeerInterrupted` if another rank's interruption has arrived, when
        called in the process and thread that watch (a Numba compilation starting there:
        :func:`_look_for_interrupts_while_compiling`); nothing elsewhere."""
        if self._watcher == (os.getpid(), threading.get_ident()):
            self._check_interrupts()

    def _stop_watching(self):
        with contextlib.suppress(ValueError):
            _COMPILING_WATCHERS.remove(self)
        self._watcher = None
        if self._interrupts is not None and self.interrupted_by is None:
            receive = self._interrupts[2]
            receive.Cancel()
            receive.Wait()
        for pending in (self._failures, self._endings):
            if pending is not None:
                pending[1].Cancel()
                pending[1].Wait()

    def end_interrupted(self, error):
        """End this rank of a script stopped by a Ctrl-C (``error``, the KeyboardInterrupt that
        escaped it) as one process ends, with one line for the job: tell the other ranks
        (:meth:`interrupt_others`), and say ``dlcore: rank r of R: interrupted`` on the lowest
        interrupted rank alone (a launcher passes a Ctrl-C to every rank; a rank other than 0
        waits :data:`FAILURE_GRACE_SECONDS` for a lower rank's word). A rank stopped by
        another's interruption (:class:`PeerInterrupted`) ends silently. The caller ends the
        process (code 130, 128 + the signal of a SIGTERM: :func:`interruption_exit_code`);
        what MPICH notes at ``MPI_Finalize`` about the requests the Ctrl-C left pending is not
        shown."""
        speaks = not isinstance(error, PeerInterrupted)
        # a rank other than 0 waits for a lower rank's word; any rank keeps silent once another
        # has said the line (a rank 0 that saved a checkpoint for longer than that wait)
        waited_until = time.monotonic() + (0 if self.is_root else FAILURE_GRACE_SECONDS)
        while speaks:
            lower, said = self._interruptions_heard()
            speaks = not (lower or said)
            if time.monotonic() >= waited_until:
                break
            time.sleep(POLL_SLEEP_SECONDS)
        terminated = terminating_signal(error)
        if speaks:
            named = "" if terminated is None else f" by {terminated.signal_name}"
            stream = sys.__stderr__ or sys.stderr
            stream.write(f"dlcore: rank {self.rank} of {self.size}: interrupted{named}\n")
            stream.flush()
        # then the others: told first, they end at once, and the launcher may stop this rank
        # before its line is out
        self.interrupt_others(signal.SIGINT if terminated is None else
                              terminated.signal_number, said=speaks)
        atexit.register(_close_stderr)   # runs before MPI_Finalize

    def _interruptions_heard(self):
        """``(lower, said)``: whether a lower rank said it was interrupted, and whether any
        rank said the job's line (the notices that have arrived are taken in; the receive is
        posted again for the next)."""
        lower = said = False
        if self._interrupts is None:
            return lower, said
        from mpi4py import MPI
        control, notice, receive = self._interrupts
        while receive.Test():
            lower = lower or int(notice[0]) < self.rank
            said = said or bool(notice[2])
            receive = control.Irecv(notice, source=MPI.ANY_SOURCE, tag=INTERRUPT_TAG)
            self._interrupts = (control, notice, receive)
        return lower, said

    # -- a failure: one line ----------------------------------------------------------------
    def _tell_failure(self):
        """Tell every other rank that this one fails (non-blocking sends, never waited for)."""
        self._notify_others(FAILURE_TAG)

    def _check_failures(self):
        """Take in the failure notices that have arrived: :attr:`failed_rank`, the lowest."""
        while self._failures is not None and self._failures[1].Test():
            rank = int(self._failures[0][0])
            self.failed_rank = rank if self.failed_rank is None else min(self.failed_rank,
                                                                         rank)
            if self._failure_heard is None:
                self._failure_heard = time.monotonic()
            self._post_failure_receive()

    def abort(self, message, exit_code=1):
        """Stop every rank of the job, with ``dlcore: rank r of R: message`` on stderr when
        this is the lowest rank that fails (module docstring: one line for the job); None:
        silently."""
        self._tell_failure()
        if message is not None and not self.is_root:
            # a lower rank that met the same error (rank 0, when every rank did) says it
            waited_until = time.monotonic() + FAILURE_GRACE_SECONDS
            while time.monotonic() < waited_until and not self._lower_rank_failed():
                time.sleep(POLL_SLEEP_SECONDS)
            if self._lower_rank_failed():
                message = None
                waited_until = time.monotonic() + FAILURE_WAIT_SECONDS
                while time.monotonic() < waited_until:   # until that rank stops the job
                    time.sleep(POLL_SLEEP_SECONDS)
        # the process's own stderr: a command silences the other ranks' sys.stderr
        stream = sys.__stderr__ or sys.stderr
        if message is not None:
            stream.write(f"dlcore: rank {self.rank} of {self.size}: {message}\n")
            stream.flush()
            # MPI_Abort kills the launcher's forwarding of the ranks' output too: a line flushed
            # just before it can be lost (a CI run got an empty stderr), so give the launcher a
            # moment
            time.sleep(ABORT_GRACE_SECONDS)
        _close_stderr()   # MPICH's "Abort(1) on node ..." would be a second line
        self.mpi_comm.Abort(exit_code)
        os._exit(exit_code)  # Abort does not return; this is for a communicator that does

    def _lower_rank_failed(self):
        self._check_failures()
        return self.failed_rank is not None and self.failed_rank < self.rank

    def _buffers(self, n, dtype):
        pair = self._scratch.get(dtype)
        if pair is None or pair[0].size < n:
            pair = self._scratch[dtype] = (np.empty(n, dtype), np.empty(n, dtype))
        return pair[0][:n], pair[1][:n]


#: The communicators whose peers' interruptions a starting Numba compilation looks for.
_COMPILING_WATCHERS = []
_LISTENING = []   # not empty once the listener is registered with Numba (once a process)


def _look_for_interrupts_while_compiling(communicator):
    """Make every Numba compilation that starts look for another rank's interruption on
    ``communicator`` (:meth:`Communicator.check_interrupts_while_compiling`): a rank compiling
    its kernels polls no collective, and heard of a peer's Ctrl-C or SIGTERM only once its
    first epoch's kernels were all compiled.

    A Numba event listener, called at the start of each compilation in the compiling thread,
    so the only MPI call (a test of the posted receive) is made by the thread that makes the
    rank's collectives, whatever thread level MPI gives; a watcher thread would need
    MPI_THREAD_MULTIPLE (which a cluster's MPI may not give), could race the main thread's
    test of the same request, and could only interrupt the main thread asynchronously. The
    exception is raised as a compilation starts (a kernel's, or a function it calls while it
    is typed), no worse a place than the Ctrl-C it stands for, which lands at any bytecode:
    Numba releases its compiler lock on the way out, and the kernel compiles again next
    time."""
    if not _LISTENING:
        numba_events.register("numba:compile", _InterruptsWhileCompiling())
        _LISTENING.append(True)
    _COMPILING_WATCHERS.append(communicator)


class _InterruptsWhileCompiling(numba_events.Listener):
    """The Numba listener of :func:`_look_for_interrupts_while_compiling`."""

    def on_start(self, event):
        for communicator in list(_COMPILING_WATCHERS):
            communicator.check_interrupts_while_compiling()

    def on_end(self, event):
        pass


def _threads_may_call_mpi():
    """Whether MPI was initialised with a thread level that lets a second thread call it
    (MPI_THREAD_SERIALIZED or more; mpi4py asks for MULTIPLE, MPICH's wheel gives it)."""
    MPI = sys.modules.get("mpi4py.MPI")
    return MPI is not None and MPI.Is_initialized() and \
        MPI.Query_thread() >= MPI.THREAD_SERIALIZED


def _handling_an_exception(thread):
    """Whether ``thread`` is handling an exception: what ``sys.exc_info()`` would give in it
    (its value; Python 3.11's ``sys._current_exceptions`` gives the whole triple)."""
    handled = sys._current_exceptions().get(thread.ident)
    if isinstance(handled, tuple):
        handled = handled[1]
    return handled is not None


def _raise_in_thread(thread_id, exception_class):
    """Have the interpreter raise ``exception_class`` in the thread ``thread_id`` at its next
    bytecode."""
    import ctypes
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id),
                                               ctypes.py_object(exception_class))


try:
    import ctypes
    _async_raise = _raise_in_thread if hasattr(ctypes, "pythonapi") else None
except ImportError:   # an interpreter without ctypes
    _async_raise = None


def _free_signal():
    """A real-time signal that nothing handles (at its default), for
    :meth:`Communicator.hearing_peers_while_busy` to have its handler run by the main thread
    (``_thread.interrupt_main`` trips it without sending it), or None where there is none.
    At its default for Python and for the system: a handler that a library installed in C
    after Python started (Python's table still says SIG_DFL) would be replaced by ours, and
    then by SIG_DFL as the block ends, the library's signal ending the process."""
    if not hasattr(signal, "SIGRTMIN"):
        return None
    for number in range(signal.SIGRTMAX - 1, signal.SIGRTMIN, -1):
        if signal.getsignal(number) == signal.SIG_DFL and not _handled_in_c(number):
            return number
    return None


def _handled_in_c(number):
    """Whether the system's action for signal ``number`` is other than its default (Linux's
    ``sigaction``; False where it cannot be asked: Python's table is then all there is)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes
        action = ctypes.create_string_buffer(512)   # larger than any libc's struct sigaction
        if ctypes.CDLL(None, use_errno=True).sigaction(number, None, action) != 0:
            return True
    except (OSError, AttributeError):
        return False
    # the handler is the struct's first member; SIG_DFL is 0
    return bool(ctypes.c_void_p.from_buffer(action).value)


def _raising(error, communicator):
    """A class whose instance, made with no arguments (as the interpreter makes an
    asynchronous exception, in the thread it raises it in), is ``error``'s
    :class:`PeerInterrupted`, and marks it delivered: ``communicator``'s
    :meth:`~Communicator.check_interrupts` then does not raise it again, wherever it landed
    (in the block, or in its end after the block's work, as the listener heard it then)."""
    def __init__(self):
        communicator._undelivered = None
        PeerInterrupted.__init__(self, error.rank, error.size, error.signal_number)
    return type("PeerInterrupted", (PeerInterrupted,), {
        "__init__": __init__, "__module__": PeerInterrupted.__module__})


def _close_stderr():
    """Point file descriptor 2 at /dev/null, so that what MPI prints as it aborts is not shown
    (the line that says why was printed)."""
    try:
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        pass
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    except OSError:
        pass


def periodic(comm, sync_every):
    """The communicator a ``fit(comm=comm, sync_every=sync_every)`` trains through (an mpi4py
    communicator wrapped by :func:`as_communicator`): ``comm`` itself for 1 (the exact path,
    or the K of a :class:`Periodic` that ``comm`` already is), a :class:`Periodic` view for
    K > 1. ValueError for a value that is not an integer >= 1, and
    for K > 1 without a communicator."""
    sync_every = check_int(sync_every, "sync_every (local steps between all-reduces)",
                           minimum=1)
    comm = as_communicator(comm)
    if comm is None:
        if sync_every > 1:
            raise ValueError(f"sync_every={sync_every} needs comm= (it is the period of "
                             "data-parallel training's all-reduces): pass the communicator of "
                             "dlcore.distributed.init(), or leave sync_every at 1")
        return None
    return comm if sync_every == 1 else Periodic(comm, sync_every)


#: The Communicator of each mpi4py communicator :func:`as_communicator` or ``init(comm=...)``
#: wrapped, by ``id``: one wrapper, one abort hook and one interruption watcher per communicator
#: (the mpi4py object is kept with it, so its ``id`` is not reused while listed).
_WRAPPED = {}


def as_communicator(comm):
    """``comm`` as data-parallel training takes it: None, a :class:`Communicator` and a
    :class:`Periodic` view as they are; an mpi4py intracommunicator (``MPI.COMM_WORLD``, a
    ``Split`` of it) wrapped as :func:`dlcore.distributed.init` wraps ``COMM_WORLD``, with
    the abort on error and the interruption watcher, the same wrapper every time (the first
    call is collective over its ranks, as ``fit`` is). TypeError in one line for anything
    else."""
    if comm is None or isinstance(comm, (Communicator, Periodic)):
        return comm
    known = _WRAPPED.get(id(comm))
    if known is not None and known[0] is comm:
        return known[1]
    return wrap(comm)


#: ``(rank, size)``: this process's rank among the job's ranks on its node and their number,
#: once a communicator of every rank of ``MPI.COMM_WORLD`` was wrapped (``init()``), or, for a
#: group wrapped first, as the launcher says them (:func:`job_on_the_node_from_the_launcher`):
#: what a later ``Split`` group's ranks take their GPUs by where the launcher does not say it,
#: and share the node's cores by (:func:`ranks_sharing_the_node`).
_JOB_ON_THE_NODE = []


def ranks_sharing_the_node(communicator):
    """How many of the job's ranks share this rank's node: as counted when ``init()`` joined
    the whole job or as the launcher says, else the ranks of ``communicator`` on the node (a
    ``Split`` group given to ``fit`` first, under a launcher that does not say, knows only its
    own)."""
    return _JOB_ON_THE_NODE[0][1] if _JOB_ON_THE_NODE else communicator.local_size


def rank_among_the_node_s_gpus(group_local_rank, world, environ=None, job_local_rank=None):
    """The node-local rank by which this process takes one of its node's GPUs: the launcher's
    (the rank among all the job's ranks on the node) where the launcher says it, else
    ``job_local_rank``, the same rank as MPI counted it when a communicator of the whole job
    was joined, else ``group_local_rank``, the rank among the node's ranks of the
    communicator joined.

    A ``Split`` numbers its groups' ranks afresh: two groups sharing a node took the same
    GPUs by their own node-local ranks (0 and 1 each, on a node of four GPUs), two ranks a
    GPU, while the other two GPUs stayed idle.

    Parameters
    ----------
    group_local_rank : int, the rank among the node's ranks of the communicator joined
    job_local_rank : int or None, the rank among the node's ranks of a communicator of the
        whole job joined before (``init()``): a launcher that says no local rank
        (``mpiexec.gforker``) left a ``Split`` group's ranks their group's numbers, and two
        groups on a node the same GPUs
    world : (rank, size) of this process in ``MPI.COMM_WORLD``. A launcher's local rank is
        taken only where the same launcher's rank and size are these: the variables of a
        launcher that started the launcher (``mpiexec`` inside a Slurm job, whose ranks all
        inherit the batch step's ``SLURM_LOCALID=0``) would put every rank on device 0
    environ : mapping, default ``os.environ``
    """
    environ = os.environ if environ is None else environ
    from dlcore._starting import LAUNCHER_LOCAL_RANK_VARIABLES, launcher_number
    rank, size = world
    for local_name, rank_name, size_name in LAUNCHER_LOCAL_RANK_VARIABLES:
        local_rank = launcher_number((local_name,), -1, environ)
        launched_size = launcher_number((size_name,), -1, environ)   # -1: not said
        if (local_rank >= 0 and launcher_number((rank_name,), -1, environ) == rank
                and launched_size in (-1, size)):
            return local_rank
    return group_local_rank if job_local_rank is None else job_local_rank


#: The launchers' variable of the number of the job's ranks on this node, by the name of their
#: node-local rank's (``dlcore._starting.LAUNCHER_LOCAL_RANK_VARIABLES``); Slurm's is
#: ``SLURM_STEP_TASKS_PER_NODE`` read at ``SLURM_NODEID``
_LAUNCHER_LOCAL_COUNT_VARIABLES = {"MPI_LOCALRANKID": "MPI_LOCALNRANKS",
                                   "OMPI_COMM_WORLD_LOCAL_RANK": "OMPI_COMM_WORLD_LOCAL_SIZE",
                                   "MV2_COMM_WORLD_LOCAL_RANK": "MV2_COMM_WORLD_LOCAL_SIZE",
                                   "PMI_LOCAL_RANK": "PMI_LOCAL_SIZE"}


def job_on_the_node_from_the_launcher(world, environ=None):
    """``(rank, count)``: this process's rank among the job's ranks on its node and their
    number, as the launcher that started the job says them, or None where it does not.

    MPICH's ``mpiexec.gforker`` says no node-local rank, but forks every rank on its own node
    and hands each a socket to itself (``PMI_FD``, with its ``MPI_APPNUM``; a launcher
    reaching other nodes gives a port, ``PMI_PORT``, and Hydra, which forks through a proxy
    on each node, ``HYDI_CONTROL_FD`` and the local rank): there the job's ranks on the node
    are all of them. ``world`` is (rank, size) of
    this process in ``MPI.COMM_WORLD``; a launcher's numbers are taken only where its rank and
    size are these (as in :func:`rank_among_the_node_s_gpus`).
    """
    environ = os.environ if environ is None else environ
    from dlcore._starting import LAUNCHER_LOCAL_RANK_VARIABLES, launcher_number
    rank, size = world
    for local_name, rank_name, size_name in LAUNCHER_LOCAL_RANK_VARIABLES:
        # the size said, not only left unsaid: a Slurm batch step's own SLURM_LOCALID=0,
        # SLURM_PROCID=0 and one task on the node, inherited by gforker's rank 0, are not its
        local_rank = launcher_number((local_name,), -1, environ)
        if (local_rank < 0 or launcher_number((rank_name,), -1, environ) != rank
                or launcher_number((size_name,), -1, environ) != size):
            continue
        if local_name == "SLURM_LOCALID":
            count = _slurm_tasks_on_this_node(environ)
        else:
            count = launcher_number((_LAUNCHER_LOCAL_COUNT_VARIABLES[local_name],), -1, environ)
        if local_rank < count <= size:
            return local_rank, count
    if ("PMI_FD" in environ and "MPI_APPNUM" in environ
            and not {"PMI_PORT", "HYDI_CONTROL_FD"} & environ.keys()
            and launcher_number(("PMI_RANK",), -1, environ) == rank
            and launcher_number(("PMI_SIZE",), -1, environ) == size):
        return rank, size
    return None


def _slurm_tasks_on_this_node(environ):
    """The tasks of this Slurm step on this node (``SLURM_STEP_TASKS_PER_NODE``, as
    ``2(x3),1``, at ``SLURM_NODEID``), -1 where they are not said."""
    from dlcore._starting import launcher_number
    node = launcher_number(("SLURM_NODEID",), -1, environ)
    counts = []
    for part in environ.get("SLURM_STEP_TASKS_PER_NODE", "").split(","):
        tasks, _, repeat = part.strip().partition("(x")
        if not tasks.isdigit() or (repeat and not repeat[:-1].isdigit()):
            return -1
        counts += [int(tasks)] * (int(repeat[:-1]) if repeat else 1)
    return counts[node] if 0 <= node < len(counts) else -1


def wrap(mpi_comm, timeout=DEFAULT_TIMEOUT):
    """A new :class:`Communicator` of the mpi4py intracommunicator ``mpi_comm``, with
    :func:`install_abort_on_error` and :meth:`Communicator.watch_interrupts` (collective over
    its ranks); the one :func:`as_communicator` gives for ``mpi_comm`` from now on."""
    MPI = sys.modules.get("mpi4py.MPI")   # an mpi4py communicator comes with its module loaded
    if MPI is None or not isinstance(mpi_comm, MPI.Intracomm):
        what = type(mpi_comm).__name__
        if MPI is not None and mpi_comm == MPI.COMM_NULL:
            what = "MPI.COMM_NULL (this rank is in no group of the Split: leave it out of fit)"
        raise TypeError(f"comm must be the Communicator of dlcore.distributed.init() or an "
                        f"mpi4py intracommunicator (MPI.COMM_WORLD, a Split of it), got {what}")
    communicator = Communicator(mpi_comm, timeout=timeout)
    node = mpi_comm.Split_type(MPI.COMM_TYPE_SHARED)
    communicator.local_rank, communicator.local_size = node.Get_rank(), node.Get_size()
    node.Free()
    world = (MPI.COMM_WORLD.Get_rank(), MPI.COMM_WORLD.Get_size())
    if communicator.size == world[1]:   # every rank of the job: their node-local ranks
        _JOB_ON_THE_NODE[:] = [(communicator.local_rank, communicator.local_size)]
    elif not _JOB_ON_THE_NODE:
        # a Split group joined with no init() first: the ranks of the other groups on the node
        # are known only to the launcher (a COMM_WORLD collective would hang, as ranks of no
        # group never call it); without them two groups took the same GPUs and cores
        launched = job_on_the_node_from_the_launcher(world)
        if launched is not None:
            _JOB_ON_THE_NODE[:] = [launched]
    # each rank of a node its own GPU (before the cuda backend makes its first context), not
    # every rank on device 0
    from dlcore.backend import use_node_local_rank
    warning = use_node_local_rank(rank_among_the_node_s_gpus(
        communicator.local_rank, world,
        job_local_rank=_JOB_ON_THE_NODE[0][0] if _JOB_ON_THE_NODE else None))
    if warning is not None:
        print(warning, file=sys.stderr, flush=True)
    install_abort_on_error(communicator)
    communicator.watch_interrupts()
    _WRAPPED[id(mpi_comm)] = (mpi_comm, communicator)
    return communicator


def differing_part(mine, reference, context=30):
    """``mine != reference`` as text, each cut to where they differ (with ``context``
    characters before): two long reprs, an optimiser's settings, cut at a fixed length showed
    the same text on both sides."""
    mine, reference = repr(mine), repr(reference)
    first = next((index for index, (a, b) in enumerate(zip(mine, reference)) if a != b),
                 min(len(mine), len(reference)))
    start = max(0, first - context)

    def window(text):
        cut = text[start:first + 2 * context]
        return ("..." if start else "") + cut + ("..." if len(text) > first + 2 * context else "")
    return f"{window(mine)} != {window(reference)}"


class Periodic:
    """``comm`` seen by a ``fit`` that averages the parameters every ``sync_every`` local
    steps (:mod:`dlcore.distributed.local_sgd`): every attribute and collective is ``comm``'s
    (its counters too). :func:`periodic` makes one for K > 1 only; ``Periodic(comm, 1)``
    averages after every step, which for an update linear in the gradient is the exact step
    again (how the tests check the averaging's weights)."""

    def __init__(self, comm, sync_every):
        comm = as_communicator(comm)
        self.comm = getattr(comm, "comm", comm)
        self.sync_every = sync_every

    def __getattr__(self, name):
        return getattr(self.comm, name)

    def __repr__(self):
        return f"<dlcore Communicator rank {self.rank} of {self.size}, sync every " \
               f"{self.sync_every} steps>"


def _exit_after_finalizing_mpi(exit_code, limit):
    """End the process with ``exit_code`` after MPI_Finalize, which mpi4py leaves to Python's
    own exit (``Py_AtExit``, not :mod:`atexit`) and ``os._exit`` skips: MPICH's launcher takes
    a rank that exits without it for a crashed one and kills every other rank at once (a rank 0
    still saving its checkpoint after the launcher's Ctrl-C was killed as rank 1 ended).
    MPI_Finalize waits for the other ranks to finalize too: past ``limit`` seconds (the
    collectives' timeout: another rank blocked in a call of its own), the process exits
    without it, and the launcher ends the job."""
    MPI = sys.modules.get("mpi4py.MPI")
    if MPI is not None and MPI.Is_initialized() and not MPI.Is_finalized():
        # faulthandler's watchdog is a C thread: it ends the process (code 1) while
        # MPI_Finalize holds the interpreter, which a Python thread would wait for
        import faulthandler
        with contextlib.suppress(OverflowError):   # no limit: timeout=math.inf
            faulthandler.dump_traceback_later(limit, exit=True,
                                              file=os.open(os.devnull, os.O_WRONLY))
        with contextlib.suppress(Exception):   # the exit code is what matters now
            MPI.Finalize()
    os._exit(exit_code)


def interruption_exit_code(error):
    """The exit code of a process that ``error`` (a KeyboardInterrupt) stopped: 128 + the
    signal that a :class:`dlcore.Terminated` or a :class:`PeerInterrupted` names (143 for a
    SIGTERM, this rank's or another's), else 130, a Ctrl-C's."""
    terminated = terminating_signal(error)
    return INTERRUPTED_EXIT_CODE if terminated is None else terminated.exit_code


def install_abort_on_error(communicator):
    """Make an exception that escapes on any rank stop every rank, with one message.

    Without it, the other ranks of a job whose rank 1 raised would wait in their next
    collective operation (until its timeout). The hook prints ``dlcore: rank r of R:
    ErrorType: message`` and calls ``MPI_Abort``; a KeyboardInterrupt (Ctrl-C) is no failure
    and ends the process with code 130, 128 + the signal of a SIGTERM
    (:meth:`Communicator.end_interrupted`). Only with more
    than one rank: a job of one process keeps Python's own traceback.
    """
    if communicator.size == 1:
        return

    def hook(kind, error, traceback):
        if issubclass(kind, KeyboardInterrupt):
            # a Ctrl-C is no failure: no MPI_Abort (its exit code 1), the job ends as one
            # process ends, with 130
            communicator.end_interrupted(error)
            # Python would end by killing itself with SIGINT, which the launcher reports in a
            # banner of its own: exit as one process's Ctrl-C exits, after what runs at exit
            # and MPI_Finalize
            atexit._run_exitfuncs()
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(OSError, ValueError, AttributeError):
                    stream.flush()
            _exit_after_finalizing_mpi(interruption_exit_code(error), communicator.timeout)
        communicator.abort(f"{kind.__name__}: {error}")

    sys.excepthook = hook
