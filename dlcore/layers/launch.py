"""Launching kernel bodies for a network: small work runs serially on the CPU.

A training step of a small network is some fifty operations, most of them tiny (a bias
gradient of 120 numbers, the update of an 850-weight layer). On the ``cpu`` backend every
``launch_rows``/``launch_1d`` is an OpenMP parallel region, and every region ends in a barrier
that waits for all threads; on a busy 2-core machine a thread that the scheduler has parked
makes that barrier wait a whole time slice (measured: 7-9 ms per region under load, for work of
10-50 microseconds). PyTorch avoids it the same way: below a grain size, work runs on the
calling thread.

:func:`launcher_for` returns a :class:`Launcher` whose ``rows``, ``one_d`` and ``gemm`` take the
same arguments as the backend's ``launch_rows``, ``launch_1d`` and ``gemm``. On the CPU, work
below :data:`SERIAL_ELEMENTS` elements (or :data:`SERIAL_MULTIPLY_ADDS` for products) runs in a
serial ``@njit`` loop over the same body (or a single-threaded BLAS call, BLAS being limited to
one thread inside ``backend.compute()``); larger work, and everything on CUDA, goes to the
backend unchanged.

(A generic capability that would sit well in :mod:`dlcore.backend.cpu`; it lives here so that
the backend files keep one owner.)
"""
import numpy as np
from numba import njit

from dlcore.backend.kernels import gather_rows_span

#: Below this many elements (rows x units, or the 1-D length) a CPU launch runs serially.
SERIAL_ELEMENTS = 1 << 15
#: Below this many multiply-adds a CPU product is one single-threaded BLAS call.
SERIAL_MULTIPLY_ADDS = 1 << 22

#: Mini-batch gathers up to this many elements are serial copies on the CPU.
SERIAL_GATHER_ELEMENTS = 1 << 20

_SERIAL_ROWS = {}
_SERIAL_1D = {}


def _serial_rows(body):
    kernel = _SERIAL_ROWS.get(body)
    if kernel is None:
        @njit(cache=True, nogil=True)
        def kernel(n_rows, n_units, *args):
            for row in range(n_rows):
                body(row, 0, n_units, *args)
        _SERIAL_ROWS[body] = kernel
    return kernel


def _serial_1d(body):
    kernel = _SERIAL_1D.get(body)
    if kernel is None:
        @njit(cache=True, nogil=True)
        def kernel(n, *args):
            body(0, n, *args)
        _SERIAL_1D[body] = kernel
    return kernel


class Launcher:
    """``rows``, ``one_d`` and ``gemm`` on ``backend``, serial on the CPU for small work."""

    def __init__(self, backend):
        self.backend = backend
        self.serial_allowed = backend.name == "cpu"

    def rows(self, body, n_rows, n_units, *args):
        """``backend.launch_rows(body, n_rows, n_units, *args)``."""
        if self.serial_allowed and n_rows * n_units < SERIAL_ELEMENTS:
            if n_rows > 0 and n_units > 0:
                _serial_rows(body)(n_rows, n_units, *args)
            return
        self.backend.launch_rows(body, n_rows, n_units, *args)

    def one_d(self, body, n, *args, work=None):
        """``backend.launch_1d(body, n, *args)``; ``work`` (default n) is the number of
        elements the launch touches, for the serial decision."""
        if self.serial_allowed and (n if work is None else work) < SERIAL_ELEMENTS:
            if n > 0:
                _serial_1d(body)(n, *args)
            return
        self.backend.launch_1d(body, n, *args)

    def gather_rows(self, source, indices, out):
        """``out[r] = source[indices[r]]`` (a mini-batch): serial on the CPU below
        :data:`SERIAL_GATHER_ELEMENTS`, a copy cheaper than waking the threads."""
        if self.serial_allowed and out.size < SERIAL_GATHER_ELEMENTS:
            _serial_rows(gather_rows_span)(out.shape[0], out.shape[1], source,
                                           np.ascontiguousarray(indices, dtype=np.int64), out)
            return
        self.backend.gather_rows(source, indices, out)

    def gemm(self, a, b, out, trans_a=False, trans_b=False):
        """out <- op(a) @ op(b)."""
        depth = a.shape[0] if trans_a else a.shape[1]
        if self.serial_allowed and out.size * depth < SERIAL_MULTIPLY_ADDS:
            np.matmul(a.T if trans_a else a, b.T if trans_b else b, out=out)
            return
        self.backend.gemm(a, b, out, trans_a=trans_a, trans_b=trans_b)


_LAUNCHERS = {}


def launcher_for(backend):
    """The :class:`Launcher` of a ``cpu`` or ``cuda`` backend (one per backend object)."""
    launcher = _LAUNCHERS.get(id(backend))
    if launcher is None or launcher.backend is not backend:
        launcher = _LAUNCHERS[id(backend)] = Launcher(backend)
    return launcher
