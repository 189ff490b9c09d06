"""The ``cpu`` backend: BLAS for matrix products, Numba parallel loops for everything else.

Element bodies come from :mod:`dlcore.backend.kernels`; here they are wrapped once each in a
``@njit(parallel=True, cache=True)`` loop whose outer index runs in ``prange`` (rows or
elements spread over the cores; the random numbers do not depend on the split, see
:mod:`dlcore.backend.rng`). Kernels compile on first use and are cached on disk, so later
processes load them in milliseconds.

Matrix products go to the BLAS NumPy and SciPy ship with. ``out = a @ b`` uses
``np.matmul(..., out=out)``; an accumulating product ``out = alpha a b + beta out`` calls SciPy's
``sgemm`` on Fortran-order views of our C-order arrays (C^T = B^T A^T), so that BLAS writes
into ``out`` itself, like PyTorch's ``addmm_``: the momentum update costs no temporary.
"""
import numpy as np
import scipy.linalg.blas as scipy_blas
from numba import njit, prange

from .kernels import KernelBackend

_KERNELS_1D = {}
_KERNELS_2D = {}


def _kernel_1d(body):
    kernel = _KERNELS_1D.get(body)
    if kernel is None:
        @njit(parallel=True, cache=True)
        def kernel(n, *args):
            for i in prange(n):
                body(i, *args)
        _KERNELS_1D[body] = kernel
    return kernel


def _kernel_2d(body):
    kernel = _KERNELS_2D.get(body)
    if kernel is None:
        @njit(parallel=True, cache=True)
        def kernel(n_rows, n_columns, *args):
            for row in prange(n_rows):
                for column in range(n_columns):
                    body(row, column, *args)
        _KERNELS_2D[body] = kernel
    return kernel


_BLAS_GEMM = {np.dtype(np.float32): scipy_blas.sgemm, np.dtype(np.float64): scipy_blas.dgemm}


class CPUBackend(KernelBackend):
    name = "cpu"
    _no_array = np.empty((0, 0), dtype=np.float32)

    def asarray(self, array, dtype=np.float32):
        return np.ascontiguousarray(array, dtype=dtype)

    def empty(self, shape, dtype=np.float32):
        return np.empty(shape, dtype=dtype)

    def zeros(self, shape, dtype=np.float32):
        return np.zeros(shape, dtype=dtype)

    def to_numpy(self, array):
        return np.asarray(array)

    def copy_into(self, destination, source):
        np.copyto(destination, source)

    def launch_1d(self, body, n, *args):
        if n > 0:
            _kernel_1d(body)(n, *args)

    def launch_2d(self, body, n_rows, n_columns, *args):
        if n_rows > 0 and n_columns > 0:
            _kernel_2d(body)(n_rows, n_columns, *args)

    def gemm(self, a, b, out, trans_a=False, trans_b=False, alpha=1.0, beta=0.0):
        if alpha == 1.0 and beta == 0.0:
            np.matmul(a.T if trans_a else a, b.T if trans_b else b, out=out)
            return
        # C = alpha op(A) op(B) + beta C  <=>  C^T = alpha op(B)^T op(A)^T + beta C^T, and the
        # transpose of a C-order array is a Fortran-order one: BLAS reads and writes in place.
        result = _BLAS_GEMM[out.dtype](alpha, b.T, a.T, beta=beta, c=out.T, overwrite_c=True,
                                       trans_a=trans_b, trans_b=trans_a)
        if result.ctypes.data != out.ctypes.data:  # BLAS had to copy: write the result back
            out[...] = result.T
