"""The ``cuda`` backend: device-resident arrays, ``numba.cuda`` kernels, cuBLAS or a tiled GEMM.

Every CUDA detail of dlcore lives in this module, so that moving from ``numba-cuda`` to its
successor touches one file. The kernel bodies are those of :mod:`dlcore.backend.kernel_backend`,
launched one thread per unit. Matrix products go to cuBLAS through CuPy when CuPy is importable
(arrays are shared zero-copy through ``__cuda_array_interface__``); otherwise to
:func:`tiled_gemm`, a shared-memory kernel of our own. Under the CUDA simulator
(``NUMBA_ENABLE_CUDASIM=1``, the tests') products run as NumPy's on the arrays' host memory
(:data:`SIMULATED_PRODUCTS_ON_HOST`), in the place of cuBLAS; the tiled kernel's own tests
switch that off.

Arrays here are ``numba.cuda`` device arrays. Models keep their parameters, momenta and
persistent chains on the device for a whole fit; only each pass's row order goes up (once, the
batches gather from slices of it) and only monitors come down.
"""
import functools
import math
import os
import sys
import threading
import types
import warnings

import numpy as np
from numba import config, cuda, float32, float64

from . import registry
from .kernel_backend import KernelBackend

SIMULATED = bool(config.ENABLE_CUDASIM)
# The simulator runs one Python thread per CUDA thread: keep its blocks small (the tiled
# GEMM's tiles too: its sums run over the inner dimension in the same order for any tile)
THREADS_1D = 32 if SIMULATED else 256
THREADS_2D = (8, 4) if SIMULATED else (32, 8)
TILE = 8 if SIMULATED else 16
#: Under the simulator, :meth:`CUDABackend.gemm` multiplies with NumPy on the host arrays, as
#: cuBLAS stands in for the tiled kernel on a GPU with CuPy: simulated, the tiled kernel's
#: barriers (each a wait of every Python thread of a block) took 86 % of a small two-output
#: network's simulated fit and evaluate. The kernels around the products run simulated as before.
SIMULATED_PRODUCTS_ON_HOST = SIMULATED
#: CUDA's limit on a grid's y (and z) dimension, which counts blocks of rows: past it, a kernel
#: strides over the rows (a transform of 600,000 rows needs 75,000 blocks of eight rows)
MAX_GRID_Y = 65535

_DEVICE_FUNCTIONS = {}


def device_function(function):
    """The CUDA device twin of a kernel body or shared function (:mod:`dlcore.backend.registry`).

    A fresh function is built from the same code, with every kernel function it calls replaced
    by that function's own twin, and compiled with ``cuda.jit(device=True)``: CUDA kernels never
    touch the CPU's registrations (see ``register_for_kernels``). Under the simulator the twin
    stays Python, its ``math`` replaced by :data:`SIMULATED_MATH`, which types float64 as a
    GPU does.
    """
    twin = _DEVICE_FUNCTIONS.get(function)
    if twin is None:
        namespace = dict(function.__globals__)
        for name in function.__code__.co_names:
            # co_names holds attribute names too: the shared tanh calls math.tanh, and its own
            # global name is not a call of itself
            value = namespace.get(name)
            if (isinstance(value, types.FunctionType) and value in registry.KERNEL_FUNCTIONS
                    and value is not function):
                namespace[name] = device_function(value)
            elif SIMULATED and value is math:
                namespace[name] = SIMULATED_MATH
        copy = types.FunctionType(function.__code__, namespace, function.__name__,
                                  function.__defaults__, function.__closure__)
        twin = _DEVICE_FUNCTIONS[function] = copy if SIMULATED else cuda.jit(device=True)(copy)
    return twin


def _as_on_a_gpu(name, function):
    # NumPy's ufunc of the same maths gives the IEEE answer (inf, nan) where math raises
    numpy_twin = getattr(np, {"pow": "power"}.get(name, name), None)

    def typed(*arguments):
        try:
            result = function(*arguments)
        except (OverflowError, ValueError):
            if not (isinstance(numpy_twin, np.ufunc) and numpy_twin.nin == len(arguments)):
                raise
            with np.errstate(all="ignore"):
                return numpy_twin(*arguments)
        if isinstance(result, float) and any(isinstance(a, np.float64) for a in arguments):
            return np.float64(result)
        return result
    return typed


#: ``math`` for the simulator's twins, as a GPU computes it: a float64 argument gives a NumPy
#: float64, as a GPU types ``math.exp`` of a float64 (Python's own float would be a "weak"
#: scalar to NumPy 2, so ``ONE + math.exp(-x)``, ONE a float32, rounded a float64 network's
#: sigmoid to float32 in the simulator alone); and what overflows or leaves the domain is inf
#: or nan, not Python's OverflowError or ValueError (``math.exp(800.0)``: the sigmoid of
#: -800 is 0 on a GPU, and raised "math range error" in the simulator alone).
SIMULATED_MATH = types.SimpleNamespace(**{
    name: _as_on_a_gpu(name, value) if callable(value) else value
    for name, value in vars(math).items() if not name.startswith("_")})


def _make_simulated_shared_arrays_atomic():
    """Under the simulator, have each ``cuda.shared.array`` line of a launch make its array
    once for all the threads of the block, however Python switches between them.

    The simulator runs a block's threads as Python threads; its ``cuda.shared.array`` looked
    up the array of the calling line and, when none was there, made one and stored it, with
    no lock between the look-up and the store. Threads switched in between (a loaded machine
    switches anywhere) each took an array of their own, and the tiled GEMM summed tiles that
    the other threads never filled (a product wrong in a few elements, now and then: a mask's
    accuracy read 0.51 for 0.5 once in a full test run). A GPU has one shared array per block
    by construction. Arrays are keyed as the simulator keys them, by the calling line.
    """
    from numba.cuda.simulator.kernelapi import FakeCUDAShared, numpy_support
    from numba.cuda.simulator.kernelapi import types as numba_types
    if getattr(FakeCUDAShared, "made_once_per_line", False):
        return
    unlocked = FakeCUDAShared.array
    lock = threading.Lock()

    def array(self, shape, dtype, alignment=None):
        if shape == 0 or alignment is not None:  # dynamic shared memory; unsupported options
            return unlocked(self, shape, dtype, alignment)
        caller = sys._getframe(1)
        line = (caller.f_code.co_filename, caller.f_lineno)
        with lock:
            made = self._allocations.get(line)
            if made is None:
                if isinstance(dtype, numba_types.Type):
                    dtype = numpy_support.as_dtype(dtype)
                made = self._allocations[line] = np.empty(shape, dtype)
        return made

    FakeCUDAShared.array = array
    FakeCUDAShared.made_once_per_line = True


if SIMULATED:
    _make_simulated_shared_arrays_atomic()


_KERNELS_ROWS = {}
_KERNELS_1D = {}


def _rows_kernel(body):
    kernel = _KERNELS_ROWS.get(body)
    if kernel is None:
        device_body = device_function(body)

        @cuda.jit
        def kernel(n_rows, n_units, arguments):
            unit, row = cuda.grid(2)  # x runs along a row: neighbouring threads, coalesced
            rows_per_grid = cuda.gridsize(2)[1]
            if unit < n_units:
                while row < n_rows:  # more rows than the grid's MAX_GRID_Y blocks hold
                    device_body(row, unit, unit + 1, *arguments)
                    row += rows_per_grid
        _KERNELS_ROWS[body] = kernel
    return kernel


def _elements_kernel(body):
    kernel = _KERNELS_1D.get(body)
    if kernel is None:
        device_body = device_function(body)

        @cuda.jit
        def kernel(n, arguments):
            i = cuda.grid(1)
            if i < n:
                device_body(i, i + 1, *arguments)
        _KERNELS_1D[body] = kernel
    return kernel


def rows_launch(body, n_rows, n_units, args):
    """``(kernel, arguments)``: the kernel that runs ``body(row, unit, unit + 1, *args)`` for
    every row and unit, and the arguments it is launched with.

    The body's own arguments travel as one tuple: numba-cuda's dispatcher types each launch
    argument as it is given and, unlike Numba's CPU dispatcher, does not fold a kernel's
    ``*args`` into a tuple (a real GPU then refuses the launch: "Signature mismatch: 11
    argument types given, but function takes 3 arguments"; the simulator does not check).
    """
    return _rows_kernel(body), (n_rows, n_units, tuple(args))


def elements_launch(body, n, args):
    """``(kernel, arguments)`` for ``body(i, i + 1, *args)`` over ``range(n)``, as
    :func:`rows_launch`."""
    return _elements_kernel(body), (n, tuple(args))


def _tiled_gemm_kernel(real):
    """:func:`tiled_gemm` for arrays of the Numba type ``real`` (float32 or float64): its tiles
    in shared memory and its sums of that type (float32 tiles rounded a float64 network's
    products to float32's ~6e-8)."""
    @cuda.jit
    def tiled_gemm(a, b, out, trans_a, trans_b, alpha, beta):
        """out <- alpha * op(a) @ op(b) + beta * out, one TILE x TILE block of ``out`` at a
        time per thread block (striding down the rows past :data:`MAX_GRID_Y` blocks), op(a)
        and op(b) staged through shared memory a TILE-wide slab at a time."""
        tile_a = cuda.shared.array((TILE, TILE), real)
        tile_b = cuda.shared.array((TILE, TILE), real)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        column = cuda.blockIdx.x * TILE + tx
        n_rows, n_columns = out.shape
        depth = a.shape[0] if trans_a else a.shape[1]
        # every thread of a block takes the same tiles of rows: the barriers stay uniform
        for row_tile in range(cuda.blockIdx.y, -(-n_rows // TILE), cuda.gridDim.y):
            row = row_tile * TILE + ty
            total = real(0.0)
            for start in range(0, depth, TILE):
                k = start + tx
                value = real(0.0)
                if row < n_rows and k < depth:
                    value = a[k, row] if trans_a else a[row, k]
                tile_a[ty, tx] = value
                k = start + ty
                value = real(0.0)
                if k < depth and column < n_columns:
                    value = b[column, k] if trans_b else b[k, column]
                tile_b[ty, tx] = value
                cuda.syncthreads()
                for i in range(TILE):
                    total += tile_a[ty, i] * tile_b[i, tx]
                cuda.syncthreads()
            if row < n_rows and column < n_columns:
                if beta == 0.0:
                    out[row, column] = alpha * total
                else:
                    out[row, column] = alpha * total + beta * out[row, column]
    return tiled_gemm


#: The shared-memory GEMM of float32 arrays, and {dtype: the one of that dtype}.
tiled_gemm = _tiled_gemm_kernel(float32)
TILED_GEMMS = {np.dtype(np.float32): tiled_gemm, np.dtype(np.float64): _tiled_gemm_kernel(float64)}


def _simulated_product(a, b, out, trans_a, trans_b, alpha, beta):
    """out <- alpha op(a) op(b) + beta out with NumPy, on simulated device arrays (or host
    arrays) a (m, k) or (k, m), b (k, n) or (n, k), out (m, n), in out's dtype."""
    def host(array):
        return array if isinstance(array, np.ndarray) else array.copy_to_host()
    a, b = host(a), host(b)
    real = out.dtype.type
    product = real(alpha) * ((a.T if trans_a else a) @ (b.T if trans_b else b))
    if beta != 0.0:
        product += real(beta) * host(out)
    out[...] = product   # a simulated device array's memory is the host's: no upload


def cupy_with_cublas():
    """``(cupy, "")`` when CuPy gives this process cuBLAS, else ``(None, why not)``: one line.

    CuPy loads the CUDA runtime and cuBLAS only when first used, so a CuPy built for another
    CUDA (``cupy-cuda11x`` beside a CUDA 12 driver) imports, then failed at the first product
    of a fit; a cuBLAS handle is asked for here instead, and the tiled kernel serves without.
    """
    if SIMULATED:
        return None, "the CUDA simulator multiplies with NumPy on the host"
    try:
        import cupy
        import cupy.cublas  # noqa: F401  (cupy.cublas is a submodule, not imported by cupy)
        cupy.cuda.device.get_cublas_handle()
    except ModuleNotFoundError as error:
        if error.name == "cupy":
            return None, "CuPy is not installed"
        return None, _one_line(error)
    except Exception as error:  # noqa: BLE001  (CuPy's runtime and library errors alike)
        return None, _one_line(error)
    return cupy, ""


def _one_line(error):
    return f"{type(error).__name__}: {' '.join(str(error).split())}"[:200]


def _import_cupy():
    return cupy_with_cublas()[0]


def quiet_small_grid_warnings():
    """Silence numba-cuda's "Grid size N will likely result in GPU under-utilization" warning.

    dlcore sizes each launch by the mini-batch and the layer, so a student's batch of 20 rows
    launches small grids by design; numba-cuda would print the warning for every new shape,
    through a homework's whole output. Other performance warnings still show.
    """
    warnings.filterwarnings("ignore", message=r".*Grid size \d+ will likely result in GPU "
                                              r"under-utilization")


def launch_key(arguments):
    """A key that tells apart every pair of launch ``arguments`` numba-cuda would type
    differently: per array its dtype, number of dimensions and layout (C, F or neither, and
    broadcast), per scalar its type (and, for a Python int, whether it fits int64). Computing
    it costs a few microseconds where numba-cuda's own typing of a tuple costs about 60."""
    return tuple(_argument_key(value) for value in arguments)


def _argument_key(value):
    if isinstance(value, tuple):
        return launch_key(value)
    if hasattr(value, "__cuda_array_interface__") or isinstance(value, np.ndarray):
        flags = value.flags
        # a host array also types as read-only or unaligned; a device array is neither
        host = ((bool(flags["WRITEABLE"]), bool(flags["ALIGNED"]))
                if isinstance(value, np.ndarray) else ())
        return (value.dtype.str, value.ndim, bool(flags["C_CONTIGUOUS"]),
                bool(flags["F_CONTIGUOUS"]), value.size != 0 and 0 in value.strides, *host)
    if type(value) is int:
        return (int, -2 ** 63 <= value < 2 ** 63)
    return type(value)


#: The pointers of CUDA's default streams as CuPy's current stream holds them: 0 (the null
#: stream), ``cudaStreamLegacy`` and ``cudaStreamPerThread``. The legacy stream waits for, and
#: is waited for by, the work of every blocking stream, the per-thread one among them, so a
#: product on any of them is ordered with the launches on numba-cuda's stream 0
_DEFAULT_STREAM_POINTERS = (0, 1, 2)


def _cupy_stream_of_the_launches(cupy):
    """CuPy's stream object for the stream numba-cuda launches on (its stream 0): the
    per-thread default stream where the CUDA Python driver binding was loaded with
    ``CUDA_PYTHON_CUDA_PER_THREAD_DEFAULT_STREAM=1`` (it then maps 0 to that stream), else the
    null stream, which cuBLAS takes as the legacy default stream."""
    if os.environ.get("CUDA_PYTHON_CUDA_PER_THREAD_DEFAULT_STREAM", "0").strip() not in ("", "0"):
        return cupy.cuda.Stream.ptds
    return cupy.cuda.Stream.null


def _column_major_gemm(cupy):
    """``(cupy_backends' cublas, its host pointer mode)``, for the raw ``sgemm``, or None where
    this CuPy lacks it."""
    if cupy is None:
        return None
    try:
        from cupy_backends.cuda.libs import cublas
        cublas.setPointerMode(cupy.cuda.device.get_cublas_handle(),
                              cublas.CUBLAS_POINTER_MODE_HOST)
    except Exception:  # another CuPy layout: its cublas.gemm wrapper serves
        return None
    return cublas, cublas.CUBLAS_POINTER_MODE_HOST


try:  # the binding numba-cuda itself calls the CUDA driver through
    from cuda.bindings import driver as _cuda_driver
except ImportError:  # an older numba-cuda's ctypes binding: ask numba-cuda (a microsecond more)
    _cuda_driver = None
try:  # int() of a binding's object is deprecated for its address since cuda-bindings 12.9.1
    from cuda.bindings.utils import get_cuda_native_handle as _native_handle
except ImportError:
    _native_handle = int


def _current_context():
    """The handle (an int) of the CUDA context current on the calling thread, 0 where it has
    none; under the simulator, 0 (its one device has no context to switch)."""
    if config.ENABLE_CUDASIM:
        return 0
    if _cuda_driver is None:
        from numba.cuda.cudadrv.driver import driver
        with driver.get_active_context() as active:
            return int(active.context_handle.value or 0) if active else 0
    error, context = _cuda_driver.cuCtxGetCurrent()
    return _native_handle(context) if error == _cuda_driver.CUresult.CUDA_SUCCESS else 0


#: Per thread, each backend's buffers that a call fills and a launch or cuBLAS then reads
#: ({id(backend): buffers}): fits in two threads (a thread pool's grid search) shared one of
#: each, and a thread switched between the two steps launched on the other fit's mini-batch
#: indices, or multiplied by its alpha and beta.
_THREAD_BUFFERS = threading.local()


def _on_the_backend_s_device(method):
    """``method`` run with the backend's device current on the calling thread: a rank's model
    on device 1 fitted or used from another thread (a thread pool's grid search, a notebook's
    background fit, a web server's request) allocated and launched on device 0, beside arrays
    that live on device 1. numba-cuda's contexts are per thread, and a thread with none gets
    device 0's at its first CUDA call; a thread's own code may also make another device
    current between two calls (``numba.cuda.select_device``, ``torch.cuda.set_device``), so
    the thread's current context is asked each call (one driver call, well under a
    microsecond), not remembered.

    A thread with no context keeps the backend's from its first call on, as numba-cuda's own
    first call keeps device 0's. Under another device's context, the backend's is pushed for
    the call and popped after it: ``numba.cuda.select_device`` pushes one and leaves it, so
    the caller's next allocations (PyTorch's, numba's) went to the backend's device, the
    thread's stack of contexts grew by one a call, and a ``with numba.cuda.gpus[0]:`` around
    a call failed as it ended (numba-cuda pops and checks its own context)."""
    @functools.wraps(method)
    def on_the_device(self, *arguments, **options):
        current = _current_context()
        if current == self.context:
            return method(self, *arguments, **options)
        if not current:
            cuda.select_device(self.device_number)
            return method(self, *arguments, **options)
        with cuda.gpus[self.device_number]:
            return method(self, *arguments, **options)
    return on_the_device


class CUDABackend(KernelBackend):
    name = "cuda"
    # a launch costs 30-55 us of Python on a GPU's host: a CD update's momentum step and two
    # bias steps go as one
    fuses_parameter_steps = True

    def __init__(self):
        quiet_small_grid_warnings()
        self._cupy = _import_cupy()
        self._no_array = cuda.device_array((0, 0), dtype=np.float32)
        # the device the process chose (a data-parallel rank's) and its primary context, which
        # numba-cuda made current here: every thread uses them (the simulator's one device has
        # no number: 0)
        self.device_number = getattr(cuda.get_current_device(), "id", 0)
        self.context = _current_context()
        self.gemm_engine = ("cuBLAS (CuPy)" if self._cupy is not None
                            else "NumPy on the host (CUDA simulator)" if SIMULATED_PRODUCTS_ON_HOST
                            else "tiled Numba kernel")
        self._raw_gemm = _column_major_gemm(self._cupy)
        if self._cupy is not None:
            self._cupy_current_stream = self._cupy.cuda.get_current_stream
            self._cupy_launch_stream = _cupy_stream_of_the_launches(self._cupy)
        self._compiled = {}
        self._stream = None

    @staticmethod
    def is_device_array(array):
        return not isinstance(array, np.ndarray) and hasattr(array, "copy_to_host")

    @_on_the_backend_s_device
    def asarray(self, array, dtype=np.float32):
        if self.is_device_array(array):
            return array
        return cuda.to_device(np.ascontiguousarray(array, dtype=dtype))

    @_on_the_backend_s_device
    def empty(self, shape, dtype=np.float32):
        return cuda.device_array(shape, dtype=dtype)

    @_on_the_backend_s_device
    def zeros(self, shape, dtype=np.float32):
        return cuda.to_device(np.zeros(shape, dtype=dtype))

    @_on_the_backend_s_device
    def to_numpy(self, array):
        if self.is_device_array(array):
            return array.copy_to_host()
        return np.asarray(array)

    @_on_the_backend_s_device
    def copy_into(self, destination, source):
        destination.copy_to_device(source)

    @_on_the_backend_s_device
    def synchronize(self):
        cuda.synchronize()

    def launch_rows(self, body, n_rows, n_units, *args, work=None):
        if n_rows > 0 and n_units > 0:
            threads_x, threads_y = THREADS_2D
            blocks = (-(-n_units // threads_x), min(-(-n_rows // threads_y), MAX_GRID_Y), 1)
            self._launch(*rows_launch(body, n_rows, n_units, args), blocks,
                         (threads_x, threads_y, 1))

    def launch_1d(self, body, n, *args, work=None):
        if n > 0:
            self._launch(*elements_launch(body, n, args), (-(-n // THREADS_1D), 1, 1),
                         (THREADS_1D, 1, 1))

    @_on_the_backend_s_device
    def _launch(self, kernel, arguments, blocks, threads):
        """``kernel[blocks, threads](*arguments)``, through numba-cuda's own dispatch the first
        time for each :func:`launch_key`, then straight to the compiled kernel it chose.

        numba-cuda's dispatch types every argument on every launch (about 120 us a launch on
        an H200 host, half of it typing the argument tuple; a CD-1 batch makes six
        launches, besides five products).
        The compiled kernel is the one numba-cuda itself compiled for those types, so the
        numbers are the same. The simulator keeps the plain path.
        """
        if SIMULATED:
            kernel[blocks, threads](*arguments)
            return
        key = (kernel, launch_key(arguments))
        compiled = self._compiled.get(key)
        if compiled is not None:
            compiled.launch(arguments, blocks, threads, self._stream, 0)
            return
        configured = kernel[blocks, threads]
        configured(*arguments)
        compiled = kernel.overloads.get(tuple(kernel.typeof_pyval(a) for a in arguments))
        stream = getattr(configured, "stream", None)
        if compiled is not None and hasattr(compiled, "launch") and stream is not None:
            self._stream = stream
            self._compiled[key] = compiled

    @_on_the_backend_s_device
    def gemm(self, a, b, out, trans_a=False, trans_b=False, alpha=1.0, beta=0.0):
        if self._cupy is not None:
            if self._cupy_current_stream().ptr in _DEFAULT_STREAM_POINTERS:
                self._cublas_gemm(a, b, out, trans_a, trans_b, alpha, beta)
                return
            # CuPy's cuBLAS calls set the thread's current CuPy stream on the handle: under a
            # user's `with cupy.cuda.Stream(non_blocking=True):` (or with any stream of their
            # own where numba-cuda launches on the per-thread stream) the product ran beside
            # the launches that write its operands and read its result, unordered with them.
            # use() and back, not `with`: leaving a `with` block makes the top of CuPy's stack
            # current, the default stream where the user's came by `stream.use()`
            users = self._cupy_current_stream()
            self._cupy_launch_stream.use()
            try:
                self._cublas_gemm(a, b, out, trans_a, trans_b, alpha, beta)
            finally:
                users.use()
            return
        if SIMULATED_PRODUCTS_ON_HOST:
            _simulated_product(a, b, out, trans_a, trans_b, alpha, beta)
            return
        n_rows, n_columns = out.shape
        blocks = (-(-n_columns // TILE), min(-(-n_rows // TILE), MAX_GRID_Y))
        real = out.dtype.type
        TILED_GEMMS[out.dtype][blocks, (TILE, TILE)](a, b, out, bool(trans_a), bool(trans_b),
                                                     real(alpha), real(beta))

    def _cublas_gemm(self, a, b, out, trans_a, trans_b, alpha, beta):
        """cuBLAS's product through CuPy, on CuPy's current stream."""
        if self._raw_gemm is not None and _row_major(a, b, out):
            self._sgemm(a, b, out, trans_a, trans_b, alpha, beta)
            return
        cp = self._cupy
        cp.cublas.gemm("T" if trans_a else "N", "T" if trans_b else "N", cp.asarray(a),
                       cp.asarray(b), out=cp.asarray(out), alpha=alpha, beta=beta)

    def _sgemm(self, a, b, out, trans_a, trans_b, alpha, beta):
        """cuBLAS's SGEMM on the arrays' device pointers: CuPy's ``cublas.gemm`` wrapper and the
        three CuPy views it needs cost 59 us a call on an H200 host, this 21 us.

        cuBLAS is column-major, and a row-major (r, c) array is the column-major (c, r) array
        of its transpose, so out = op(a) op(b) is computed as out' = op(b)' op(a)', each
        leading dimension the row length of the array as stored."""
        cublas, host_pointers = self._raw_gemm
        # CuPy keeps a cuBLAS handle per thread (and device) and destroys it when the thread
        # ends: one taken on the thread that built the backend was shared by every thread, and
        # was a destroyed handle once that thread had ended (a backend first asked for in a
        # thread pool's worker)
        handle = self._cupy.cuda.device.get_cublas_handle()
        n_rows, n_columns = out.shape
        depth = a.shape[0] if trans_a else a.shape[1]
        host_scalars = self._thread_s_buffers().scalars
        host_scalars[0], host_scalars[1] = alpha, beta
        scalars = host_scalars.ctypes.data
        # the handle is CuPy's for this thread: its own calls may leave another stream or
        # pointer mode set (CuPy's sgemm then sets its current stream, a default one here)
        cublas.setStream(handle, self._cupy_launch_stream.ptr)
        cublas.setPointerMode(handle, host_pointers)
        cublas.sgemm(handle, int(bool(trans_b)), int(bool(trans_a)), n_columns, n_rows, depth,
                     scalars, _pointer(b), b.shape[1], _pointer(a), a.shape[1],
                     scalars + 4, _pointer(out), n_columns)

    def _thread_s_buffers(self):
        """The calling thread's host buffers of this backend (:data:`_THREAD_BUFFERS`)."""
        by_backend = getattr(_THREAD_BUFFERS, "by_backend", None)
        if by_backend is None:
            by_backend = _THREAD_BUFFERS.by_backend = {}
        buffers = by_backend.get(id(self))
        if buffers is None:
            # alpha and beta, read by cuBLAS from the host as it is called; index buffers by length
            buffers = by_backend[id(self)] = types.SimpleNamespace(
                scalars=np.zeros(2, dtype=np.float32), index_buffers={})
        return buffers

    @_on_the_backend_s_device
    def _indices(self, indices):
        """``indices`` (n,) as int64 on the device, staged through a pinned host buffer kept
        per length and per thread: a fresh device array and a pageable copy cost 155 us a
        batch on an H200 host. The copy runs on the legacy default stream, after the launches
        that read the buffer's previous contents. Indices already on the device (a pass's
        order, :func:`dlcore.batches.mini_batches`) are used as they are."""
        if self.is_device_array(indices):
            return indices
        indices = np.asarray(indices)
        index_buffers = self._thread_s_buffers().index_buffers
        buffers = index_buffers.get(len(indices))
        if buffers is None:
            if len(index_buffers) >= 8:  # a few batch sizes recur; bound the rest
                index_buffers.clear()
            buffers = index_buffers[len(indices)] = (
                cuda.pinned_array(len(indices), dtype=np.int64),
                cuda.device_array(len(indices), dtype=np.int64))
        host, device = buffers
        host[:] = indices
        device.copy_to_device(host)
        return device


def _row_major(*arrays):
    """Whether every array is a non-empty C-contiguous float32 matrix (what :meth:`_sgemm`
    takes)."""
    return all(hasattr(array, "device_ctypes_pointer") and array.ndim == 2 and array.size > 0
               and array.dtype == np.float32 and array.flags["C_CONTIGUOUS"]
               for array in arrays)


def _pointer(array):
    return array.device_ctypes_pointer.value
