"""Which BLAS library the CPU kernels call for their matrix products, chosen once at import.

The kernels of the ``cpu`` backend call a Fortran ``?gemm`` through a function pointer, one
single-threaded call per Numba thread (:mod:`dlcore.backend.cpu`). Any BLAS with that entry
point serves; they differ in speed, most at the small products of mini-batch training:

* ``mkl``: Intel's MKL, from the ``mkl`` package on PyPI (``pip install mkl``; dlcore's ``mkl``
  extra). On an Intel Xeon with AVX-512, one thread, MKL 2026.2 against OpenBLAS 0.3.31: batch
  32 x 784 -> 500 121 against 101 GFLOP/s, 500 x 32 -> 500 (a weight gradient) 130 against 97,
  the RBM's 100 x 784 -> 500 127 against 116. On an AMD EPYC (Zen 3) MKL ran 66-79 GFLOP/s a
  thread where OpenBLAS ran 128-142, so ``auto`` takes MKL on Intel CPUs only.
* ``openblas``: NumPy's bundled OpenBLAS (64-bit integers), else SciPy's through its
  ``cython_blas`` (the interface Numba's own ``np.dot`` uses).

``$DLCORE_BLAS`` (``auto``, ``mkl`` or ``openblas``) overrides the choice. MKL is loaded with
its sequential threading layer: dlcore splits a product across its own threads, and MKL's
OpenMP threads started inside them would fight them for the cores. That setting is
process-wide, so an MKL that another library loaded first (NumPy built against MKL, as conda's
is) is used as it is, its threading layer untouched: its users keep their threads, and inside
``compute()`` threadpoolctl limits it to one thread as it does OpenBLAS.
"""
import ctypes
import glob
import os
from dataclasses import dataclass

import numpy as np

from .cpuinfo import cpuinfo_fields

#: The values ``$DLCORE_BLAS`` takes.
CHOICES = ("auto", "mkl", "openblas")
#: MKL_Set_Threading_Layer's code for the sequential layer (mkl_service.h).
MKL_THREADING_SEQUENTIAL = 1

# Fortran BLAS ?gemm(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc): every
# argument is a pointer. The kernels take the function object as an argument (not a global) so
# that they can be cached on disk whichever library it comes from.
_POINTER = ctypes.c_void_p
GEMM_TYPE = ctypes.CFUNCTYPE(None, *([_POINTER] * 13))


@dataclass(frozen=True)
class Blas:
    """The chosen library: ``gemm`` maps float32 and float64 to ``(Fortran ?gemm function,
    the integer dtype of its size arguments)``; ``library_file`` is the shared library's file
    name (as threadpoolctl lists it), ``name`` "MKL" or "OpenBLAS", ``reason`` one line saying
    why this one (for ``dlcore doctor`` and the benchmarks' machine line)."""

    gemm: dict
    library_file: str
    name: str
    reason: str


def requested_blas(environ=os.environ):
    """``$DLCORE_BLAS`` lower-cased, ``"auto"`` when unset; a clear ValueError otherwise."""
    value = environ.get("DLCORE_BLAS", "").strip().lower() or "auto"
    if value not in CHOICES:
        raise ValueError(f"$DLCORE_BLAS is {environ['DLCORE_BLAS']!r}: set it to one of "
                         f"{', '.join(CHOICES)} (or unset it)")
    return value


def cpu_vendor(cpuinfo="/proc/cpuinfo"):
    """The CPU's vendor string ("GenuineIntel", "AuthenticAMD", ...), or None where
    ``cpuinfo`` cannot be read (not Linux)."""
    return cpuinfo_fields(("vendor_id",), cpuinfo).get("vendor_id")


def mkl_runtime_paths():
    """Where the ``mkl`` package's single dynamic library (``libmkl_rt``) may be: the files
    its installed distribution lists, then the usual library folders of this Python."""
    import importlib.metadata
    import sys
    paths = []
    try:
        distribution = importlib.metadata.distribution("mkl")
        paths += [str(distribution.locate_file(file)) for file in distribution.files or ()
                  if os.path.basename(str(file)).startswith("libmkl_rt.so")]
    except importlib.metadata.PackageNotFoundError:
        pass
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix)):
        paths += sorted(glob.glob(os.path.join(prefix, "lib", "libmkl_rt.so*")))
    return list(dict.fromkeys(paths))


def loaded_mkl_runtime(maps="/proc/self/maps"):
    """The path of a ``libmkl_rt`` this process has loaded already (NumPy built against MKL,
    as conda's is), or None."""
    try:
        with open(maps, encoding="utf-8", errors="replace") as lines:
            for line in lines:
                path = line.split(maxsplit=5)[-1].strip()
                if os.path.basename(path).startswith("libmkl_rt.so"):
                    return path
    except OSError:
        pass
    return None


def load_mkl(paths=None, maps="/proc/self/maps"):
    """``(Blas, None)`` for MKL's ``?gemm_64``, or ``(None, why not)``.

    An MKL another library loaded first keeps its threading layer (its own users keep their
    threads; inside ``compute()`` threadpoolctl limits it to one thread all the same); one
    dlcore loads gets the sequential layer."""
    loaded = loaded_mkl_runtime(maps)
    paths = ([loaded] if loaded else mkl_runtime_paths()) if paths is None else paths
    if not paths:
        return None, "MKL is not installed (pip install mkl)"
    problems = []
    for path in paths:
        try:
            library = ctypes.CDLL(path)
            if path != loaded:
                library.MKL_Set_Threading_Layer.restype = ctypes.c_int
                library.MKL_Set_Threading_Layer(MKL_THREADING_SEQUENTIAL)
            # the 64-bit integer entry points whatever $MKL_INTERFACE_LAYER says
            gemm = {np.dtype(dtype): (_function(library, name), np.int64)
                    for dtype, name in ((np.float32, "sgemm_64"), (np.float64, "dgemm_64"))}
            for dtype, (function, integer_type) in gemm.items():
                first_call(function, dtype, integer_type)
        except (OSError, AttributeError) as error:
            problems.append(f"{os.path.basename(path)}: {error}")
            continue
        return Blas(gemm, os.path.basename(path), "MKL", ""), None
    return None, "MKL could not be loaded (" + "; ".join(problems) + ")"


def load_openblas():
    """NumPy's bundled OpenBLAS (measured ~13 % faster than SciPy's on the RBM's products: the
    newer build), else SciPy's ``cython_blas``."""
    libraries = glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs",
                                       "libscipy_openblas64_*.so"))
    for path in libraries:
        try:
            library = ctypes.CDLL(path)
            gemm = {np.dtype(dtype): (_function(library, name), np.int64)
                    for dtype, name in ((np.float32, "scipy_sgemm_64_"),
                                        (np.float64, "scipy_dgemm_64_"))}
        except (OSError, AttributeError):
            continue
        return Blas(gemm, os.path.basename(path), "OpenBLAS", "")
    import scipy.linalg.blas as scipy_blas
    from numba.extending import get_cython_function_address
    scipy_libraries = glob.glob(os.path.join(os.path.dirname(scipy_blas.__file__), os.pardir,
                                             os.pardir, "scipy.libs", "lib*blas*.so*"))
    gemm = {np.dtype(dtype): (GEMM_TYPE(get_cython_function_address(
        "scipy.linalg.cython_blas", name)), np.int32)
        for dtype, name in ((np.float32, "sgemm"), (np.float64, "dgemm"))}
    return Blas(gemm, os.path.basename(scipy_libraries[0]) if scipy_libraries else None,
                "OpenBLAS", "")


def first_call(gemm, dtype, integer_type):
    """One 1 x 1 product through the Fortran ``?gemm`` function ``gemm``, on the calling thread.

    MKL sets itself up (its kernels for this CPU) on its first call, and two threads making
    that first call at once race: measured with MKL 2026.2, a product split across two threads
    as the first call in a process gave wrong numbers, or "Parameter 1 was incorrect on entry
    to SGEMM", in 4 runs of 16 (none of 16 after this call). dlcore's kernels call it from
    every thread, so MKL makes its first call here, when it is loaded."""
    no_transpose = np.frombuffer(b"N", np.uint8)
    one, result = np.ones(1, dtype), np.zeros(1, dtype)
    alpha, beta = np.ones(1, dtype), np.zeros(1, dtype)
    size = np.ones(1, integer_type)
    gemm(no_transpose.ctypes.data, no_transpose.ctypes.data, size.ctypes.data,
         size.ctypes.data, size.ctypes.data, alpha.ctypes.data, one.ctypes.data,
         size.ctypes.data, one.ctypes.data, size.ctypes.data, beta.ctypes.data,
         result.ctypes.data, size.ctypes.data)
    if result[0] != 1:
        raise OSError(f"its {np.dtype(dtype).char}gemm computed 1 x 1 = {result[0]}")


#: MKL's code branches (``mkl_cbwr_get_auto_branch``'s ``MKL_CBWR_*`` values, mkl_cbwr.h), by
#: the ISA names the reports print: the kernels MKL chose for this CPU, within
#: ``$MKL_ENABLE_INSTRUCTIONS``.
MKL_BRANCHES = {4: "SSE2", 6: "SSSE3", 7: "SSE4.1", 8: "SSE4.2", 9: "AVX", 10: "AVX2",
                12: "AVX-512", 14: "AVX-512"}


def mkl_code_branch(path):
    """The ISA of the kernels the MKL at ``path`` (already loaded) runs on this CPU, as
    :data:`MKL_BRANCHES` names it, or None when it cannot tell."""
    try:
        branch = ctypes.CDLL(path).mkl_cbwr_get_auto_branch
    except (OSError, AttributeError):
        return None
    branch.restype = ctypes.c_int
    code = branch()
    return MKL_BRANCHES.get(code, f"branch {code}")


def function_address(function):
    """The address of a ctypes function, as an integer (what the kernels call, cpu.BLAS_GEMM)."""
    return ctypes.cast(function, _POINTER).value


def _function(library, name):
    return GEMM_TYPE(ctypes.cast(getattr(library, name), _POINTER).value)


def choose_blas(requested=None, vendor=None, mkl_paths=None):
    """The :class:`Blas` for ``requested`` (default ``$DLCORE_BLAS``): ``mkl`` or an error
    naming the fix; ``openblas``; ``auto``: MKL on an Intel CPU when it loads, else OpenBLAS.
    The reason says which rule chose."""
    requested = requested_blas() if requested is None else requested
    vendor = cpu_vendor() if vendor is None else vendor
    if requested == "openblas":
        return _because(load_openblas(), "DLCORE_BLAS=openblas")
    if requested == "mkl":
        blas, problem = load_mkl(mkl_paths)
        if blas is None:
            raise RuntimeError(f"DLCORE_BLAS=mkl but {problem}; install it or unset "
                               "DLCORE_BLAS")
        return _because(blas, "DLCORE_BLAS=mkl")
    if vendor != "GenuineIntel":
        return _because(load_openblas(), f"auto: {vendor or 'unknown'} CPU (MKL is taken on "
                                         "Intel CPUs only)")
    blas, problem = load_mkl(mkl_paths)
    if blas is None:
        return _because(load_openblas(), f"auto: Intel CPU, but {problem}")
    return _because(blas, "auto: Intel CPU and MKL installed")


def _because(blas, reason):
    return Blas(blas.gemm, blas.library_file, blas.name, reason)


#: ``(len(sys.modules) when it was made, threadpoolctl.ThreadpoolController)``: finding the
#: loaded BLAS libraries walks every shared object of the process (3.7 ms with NumPy, SciPy and
#: Numba loaded, more beside pandas or PyTorch), which ``threadpool_limits`` did at each
#: ``compute()``, a fixed price on every fit and transform, larger than a small transform's
#: work. A library is loaded with the module that needs it, so the list is made again only
#: after new modules were imported.
_BLAS_POOLS = [None, None]


def one_blas_thread():
    """A context manager: inside it every BLAS library loaded in the process runs on one thread
    (threadpoolctl); on leaving, each goes back to the thread count it had."""
    import sys

    from threadpoolctl import ThreadpoolController
    if _BLAS_POOLS[0] != len(sys.modules):
        _BLAS_POOLS[:] = [len(sys.modules), ThreadpoolController()]
    return _BLAS_POOLS[1].limit(limits=1, user_api="blas")
