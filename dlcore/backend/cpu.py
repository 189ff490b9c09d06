"""The ``cpu`` backend: Numba parallel kernels, and BLAS matrix products run on Numba's threads.

Element-wise work runs in kernel bodies (:mod:`dlcore.backend.kernel_backend`), each wrapped
once in an ``@njit(parallel=True, cache=True)`` loop whose outer index runs in ``prange`` (rows,
or one chunk per thread). The random numbers do not depend on that split
(:mod:`dlcore.backend.rng`).
Kernels use NumPy's error model (a division by zero gives inf, no per-element test), which lets
the compiler vectorise their loops.

**One thread pool.** A mini-batch step alternates small BLAS products and short parallel kernels
a few hundred microseconds long. Left to itself, OpenBLAS keeps its own worker threads spinning
after each product, and Numba's OpenMP workers spin after each kernel: on a 2-core machine the
two pools then steal the cores from each other and every call waits a scheduler tick (measured:
~8 ms per call instead of 0.05-0.5 ms, a 25x slower RBM epoch). So inside :meth:`CPUBackend.compute`
BLAS is limited to one thread (``threadpoolctl``) and :func:`_parallel_gemm` splits each product
into one block of output columns (or rows) per Numba thread, each block a single-threaded BLAS
``?gemm`` call through a function pointer (MKL's or OpenBLAS's: :mod:`dlcore.backend.blas`). The
product ``C <- alpha op(A) op(B) + beta C`` is written into ``C`` itself, like PyTorch's
``addmm_``: a momentum update needs no temporary. Outside ``compute()`` products go to NumPy and
SciPy unchanged (BLAS's own threads), so the backend is never slow by accident.

Kernels compile on first use and are cached on disk (``cache=True``): later processes load them
in milliseconds. The cache lives in a per-user folder, never in the installed package (see
:mod:`dlcore.backend.cache`).
"""
import contextlib
import hashlib
import math
import os
import threading
import types

import numba
import numpy as np
import scipy.linalg.blas as scipy_blas
from llvmlite import ir
from numba import carray, njit, prange
from numba.core import types as numba_types
from numba.extending import intrinsic

from . import _auto_note, registry, say_auto_note
from .base import HostMemory
from .binary_products import (
    BLOCK_COLUMNS,
    SampleOnes,
    selected_columns_block,
    selected_rows_block,
    selected_transposed_block,
)
from .blas import choose_blas, function_address, one_blas_thread
from .flush_to_zero import flush_to_zero_on, restore_float_modes
from .kernel_backend import (
    KernelBackend,
    Tensors,
    descent_span,
    momentum_step_span,
    sigmoid_bernoulli_span,
)
from .rng import key_from_seed

#: Below this many elements a launch runs on the calling thread. Every parallel region ends in a
#: barrier; waking the pool costs more than small work, and on a busy machine a parked thread
#: makes the barrier wait a whole time slice (measured 7-9 ms for 10-50 us of work).
SERIAL_ELEMENTS = 1 << 15
#: Below this many multiply-adds a product is one single-threaded BLAS call. 2^21: LeNet-5's
#: c5 layer (batch 64: 64 x 400 x 120, 3.1 million) split across 2 cores trained an epoch 2.4 %
#: faster than on one (Intel Xeon, MKL, alternating in one process).
SERIAL_MULTIPLY_ADDS = 1 << 21
#: The shortest inner dimension that :meth:`CPUBackend.sums_inner_halves` splits in two.
HALVES_FROM = 128

_KERNELS = {}


def _kernel(kind, body):
    """The compiled loop of ``kind`` around ``body`` (one per body, compiled on first use)."""
    if _auto_note:   # auto chose this backend: the first kernel it runs says why
        say_auto_note()
    kernel = _KERNELS.get((kind, body))
    if kernel is None:
        kernel = _KERNELS[(kind, body)] = _LOOPS[kind](body, fingerprint(body))
    return kernel


def fingerprint(function):
    """A digest of ``function``'s code and of every kernel function and constant it reaches.

    Numba's disk cache keys a kernel on its own source file and its closure: a loop here around
    a body defined elsewhere would otherwise keep running the old body after the body (or a
    helper it calls) is edited. The loops hold this digest in their closure.
    """
    digest = hashlib.sha256()
    pending, seen = [function], set()
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        codes = [current.__code__]
        while codes:
            code = codes.pop()
            digest.update(code.co_code + repr(code.co_names).encode())
            for constant in code.co_consts:
                if isinstance(constant, types.CodeType):
                    codes.append(constant)
                else:
                    digest.update(repr(constant).encode())
        for name in current.__code__.co_names:
            value = current.__globals__.get(name)
            if value in registry.KERNEL_FUNCTIONS:
                pending.append(value)
                if value in registry.CPU_IMPLEMENTATIONS:
                    pending.append(registry.CPU_IMPLEMENTATIONS[value])
            elif _compiled_source(value) is not None:
                pending.append(_compiled_source(value))
            elif isinstance(value, types.FunctionType) \
                    and (value.__module__ or "").startswith("dlcore."):
                pending.append(value)   # a plain function compiled through an overload
            elif isinstance(value, (int, float, np.number)):
                digest.update(f"{name}={value!r}".encode())
    return digest.hexdigest()


def _binary_products_fingerprint():
    """The :func:`fingerprint` of the sums of :mod:`.binary_products` that kernels here call
    (their module is another file, which Numba's cache key of these kernels does not cover)."""
    return "".join(fingerprint(function.py_func) for function in (
        selected_rows_block, selected_columns_block, selected_transposed_block))


def _compiled_source(value):
    """The Python function behind a Numba function or intrinsic (CPU implementations call
    them), else None."""
    for attribute in ("py_func", "_defn"):
        function = getattr(value, attribute, None)
        if isinstance(function, types.FunctionType):
            return function
    return None


# The parallel and serial launchers are separate functions, not one with parallel= as an argument:
# Numba's disk cache is indexed by the function's name and line, its bytecode and the values it
# reads from its closure, not by its compile flags, so two flavours of one function would load
# each other's machine code (a flavour made by one factory must read the flag it was made with,
# as _halves_then_rows does).
def _parallel_rows(body, body_fingerprint):
    @njit(parallel=True, cache=True, error_model="numpy")
    def kernel(n_rows, n_units, *args):
        body_fingerprint  # noqa: B018  (part of the cache key, see fingerprint)
        for row in prange(n_rows):
            body(row, 0, n_units, *args)
    return kernel


def _serial_rows(body, body_fingerprint):
    @njit(cache=True, nogil=True, error_model="numpy")
    def kernel(n_rows, n_units, *args):
        body_fingerprint  # noqa: B018
        for row in range(n_rows):
            body(row, 0, n_units, *args)
    return kernel


def _parallel_chunks(body, body_fingerprint):
    @njit(parallel=True, cache=True, error_model="numpy")
    def kernel(n, n_chunks, *args):
        body_fingerprint  # noqa: B018
        chunk = -(-n // n_chunks)
        for index in prange(n_chunks):
            body(index * chunk, min(n, (index + 1) * chunk), *args)
    return kernel


def _serial_chunk(body, body_fingerprint):
    @njit(cache=True, nogil=True, error_model="numpy")
    def kernel(n, *args):
        body_fingerprint  # noqa: B018
        body(0, n, *args)
    return kernel


def _gemm_then_rows(body, body_fingerprint):
    """out <- a op(b) split across threads exactly as :func:`_parallel_gemm` splits it (so the
    products are the same numbers, bit for bit), then the epilogue ``body(row, first, last,
    *args)`` of every row, ``first .. last-1`` counting units of ``unit_width`` columns.

    A block of rows takes its epilogue at once, while the block is in cache: one parallel
    region instead of two. Blocks of columns are followed by a second region that splits the
    rows, which also needs no unit cut by a block boundary to wait for both blocks: two threads
    each running the epilogue over its half of every row get in each other's way (the CPU's
    prefetcher reads on past the end of a half-row into the other thread's half). Measured on
    an Intel Xeon (2 threads), sigmoids of a 100 x 784 array in place: 27 us by halves of rows,
    15.6 by rows; inside this kernel, where half the rows then come from the other core, an
    RBM's P(x2 | h1) and its samples 244 -> 241 and 273 -> 270 us (the product alone 211)."""
    @njit(parallel=True, cache=True, error_model="numpy")
    def kernel(a, b, out, trans_b, blas, integer_probe, parts, unit_width, *args):
        body_fingerprint  # noqa: B018  (part of the cache key, see fingerprint)
        m, n = out.shape
        n_units = -(-n // unit_width)
        by_columns = splits_columns(m, n)
        for part in prange(parts):
            start, stop = product_block(part, parts, m, n)
            if stop <= start:
                continue
            if by_columns:
                _gemm_column_block(a, b, out, False, trans_b, 1.0, 0.0, blas, integer_probe,
                                   start, stop)
            else:
                _gemm_row_block(a, b, out, False, trans_b, 1.0, 0.0, blas, integer_probe,
                                start, stop)
                for row in range(start, stop):
                    body(row, 0, n_units, *args)
        if by_columns:
            row_chunk = -(-m // parts)
            for part in prange(parts):
                for row in range(part * row_chunk, min(m, (part + 1) * row_chunk)):
                    body(row, 0, n_units, *args)
    return kernel


def _selected_then_rows(body, body_fingerprint):
    """out <- a op(b) for a binary ``a`` given as lists of its ones (``SampleOnes.by_rows``:
    ``indices``, ``bounds``): each row of out the sum of the rows of op(b) its row of a selects
    (:mod:`.binary_products`), in ``parts`` blocks of columns; then the epilogue
    ``body(row, first, last, *args)`` of every row, as :func:`_gemm_then_rows` runs it.
    ``transposed`` (parts, b's columns, BLOCK_COLUMNS): each block's copy of the rows of b it
    sums as columns (``trans_b``)."""
    sums_fingerprint = _binary_products_fingerprint()

    @njit(parallel=True, cache=True, error_model="numpy")
    def kernel(b, out, trans_b, indices, bounds, transposed, parts, unit_width, *args):
        body_fingerprint, sums_fingerprint  # noqa: B018  (both part of the cache key)
        m, n = out.shape
        blocks = -(-n // BLOCK_COLUMNS)
        for part in prange(parts):
            start = min(n, part * blocks // parts * BLOCK_COLUMNS)
            stop = min(n, (part + 1) * blocks // parts * BLOCK_COLUMNS)
            if stop <= start:
                continue
            if trans_b:
                selected_columns_block(b, indices, bounds, out, start, stop, transposed[part])
            else:
                selected_rows_block(b, indices, bounds, out, start, stop, 1.0, False)
        n_units = -(-n // unit_width)
        row_chunk = -(-m // parts)
        for part in prange(parts):
            for row in range(part * row_chunk, min(m, (part + 1) * row_chunk)):
                body(row, 0, n_units, *args)
    return kernel


def _halves_then_rows(parallel):
    """The loop kind :func:`_parallel_halves_then_rows` or its serial twin (``parallel``
    False: a product too small to wake the threads for, the same numbers). The kernel reads
    ``parallel``, which puts the flavour in its disk-cache key: the two flavours share their
    source line, and without it whichever compiled first served both (measured: an RBM's
    hidden inputs took 700 instead of 390 us a batch, on one thread, once a small RBM had
    been trained first)."""
    def make(body, body_fingerprint):
        @njit(parallel=parallel, cache=True, error_model="numpy")
        def kernel(a, b, out, second, trans_b, blas, integer_probe, parts, unit_width, *args):
            body_fingerprint, parallel  # noqa: B018  (both part of the cache key)
            m, n = out.shape
            k = a.shape[1]
            middle = -(-k // 2)
            blocks = max(1, parts // 2)
            for task in prange(2 * blocks):
                start, stop = half_column_block(task % blocks, parts, n)
                if stop <= start:
                    continue
                if task < blocks:
                    _half_product(a, b, out, trans_b, blas, integer_probe, 0, middle, start,
                                  stop)
                else:
                    _half_product(a, b, second, trans_b, blas, integer_probe, middle, k,
                                  start, stop)
            n_units = -(-n // unit_width)
            row_chunk = -(-m // parts)
            for part in prange(parts):
                for row in range(part * row_chunk, min(m, (part + 1) * row_chunk)):
                    for column in range(n):
                        out[row, column] += second[row, column]
                    body(row, 0, n_units, *args)
        return kernel
    return make


#: out <- a op(b) as two products over the two halves of the inner dimension k (the first
#: ceil(k / 2) terms, then the rest), added first + second, then ``body(row, 0, n_units,
#: *args)`` on every row (``second``: an (m, n) buffer for the second half's product). For a
#: product whose inner dimension is the one along which the weight step splits W between the
#: threads (:meth:`CPUBackend.sums_inner_halves`): with two threads each one then multiplies
#: by the half of W that it steps, which stays in its core's cache (measured, an RBM's CD-1 on
#: 784 x 500 weights: the weight step 830-910 -> 660-730 us a batch). The halves are fixed
#: whatever the number of threads, so that the numbers are too.
_parallel_halves_then_rows = _halves_then_rows(True)
_serial_halves_then_rows = _halves_then_rows(False)


@njit(cache=True)
def half_column_block(block, parts, n):
    """``(start, stop)``: block ``block`` of the max(1, parts // 2) blocks of columns in which
    each half of a sum-of-halves product (n columns) is computed, so that both halves make
    ``parts`` tasks: ceil(n / blocks) columns each, the last shorter, empty past the end."""
    chunk = -(-n // max(1, parts // 2))
    start = min(n, block * chunk)
    return start, min(n, start + chunk)


@njit(cache=True)
def _half_product(a, b, out, trans_b, blas, integer_probe, first, last, start, stop):
    """Columns start..stop-1 of out <- a[:, first:last] op(b)[first:last]."""
    if trans_b:
        serial_gemm(blas, integer_probe, a[:, first:last], b[start:stop, first:last],
                    out[:, start:stop], False, True, 1.0, 0.0)
    else:
        serial_gemm(blas, integer_probe, a[:, first:last], b[first:last, start:stop],
                    out[:, start:stop], False, False, 1.0, 0.0)


@intrinsic
def _vector_at(typingctx, address, probe):
    """A pointer to ``probe``'s element type at ``address`` (an int64 from ``.ctypes.data``),
    for :func:`_tensor_views` to view a tensor's memory with ``numba.carray``."""
    pointer = numba_types.CPointer(probe.dtype)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(pointer))
    return pointer(address, probe), codegen


@njit(cache=True)
def _tensor_views(addresses, tensor, size, probe):
    """The five 1-D arrays of ``size`` elements at row ``tensor`` of ``addresses``."""
    return (carray(_vector_at(addresses[tensor, 0], probe), size),
            carray(_vector_at(addresses[tensor, 1], probe), size),
            carray(_vector_at(addresses[tensor, 2], probe), size),
            carray(_vector_at(addresses[tensor, 3], probe), size),
            carray(_vector_at(addresses[tensor, 4], probe), size))


# The tensor loops call body(a - o, b - o, *tensor t's five arrays, *shared, *per_tensor[t]) for
# every tensor t whose elements o .. o' - 1 in the concatenation of all of them overlap the
# chunk (a .. b - 1 the overlap). The loop is written in each of the two flavours: a helper
# holding ``body`` would be a new object in every process, and Numba's disk cache would then
# miss every time.
def _parallel_tensors(body, body_fingerprint):
    @njit(parallel=True, cache=True, error_model="numpy")
    def kernel(n_chunks, offsets, addresses, per_tensor, probe, *shared):
        body_fingerprint  # noqa: B018
        n = offsets[offsets.shape[0] - 1]
        chunk = -(-n // n_chunks)
        for index in prange(n_chunks):
            first, last = index * chunk, min(n, (index + 1) * chunk)
            for tensor in range(offsets.shape[0] - 1):
                start, stop = offsets[tensor], offsets[tensor + 1]
                if max(first, start) < min(last, stop):
                    scalars = per_tensor[tensor]
                    body(max(first, start) - start, min(last, stop) - start,
                         *_tensor_views(addresses, tensor, stop - start, probe), *shared,
                         scalars[0], scalars[1], scalars[2], scalars[3])
    return kernel


def _serial_tensors(body, body_fingerprint):
    @njit(cache=True, nogil=True, error_model="numpy")
    def kernel(offsets, addresses, per_tensor, probe, *shared):
        body_fingerprint  # noqa: B018
        for tensor in range(offsets.shape[0] - 1):
            start, stop = offsets[tensor], offsets[tensor + 1]
            scalars = per_tensor[tensor]
            body(0, stop - start, *_tensor_views(addresses, tensor, stop - start, probe),
                 *shared, scalars[0], scalars[1], scalars[2], scalars[3])
    return kernel


_LOOPS = {"rows": _parallel_rows, "serial rows": _serial_rows, "chunks": _parallel_chunks,
          "serial chunk": _serial_chunk, "gemm then rows": _gemm_then_rows,
          "selected then rows": _selected_then_rows,
          "halves then rows": _parallel_halves_then_rows,
          "serial halves then rows": _serial_halves_then_rows,
          "tensors": _parallel_tensors, "serial tensors": _serial_tensors}


NO_TRANSPOSE, TRANSPOSE = ord("N"), ord("T")

#: The BLAS library the kernels call (:mod:`dlcore.backend.blas`: MKL on an Intel CPU where it
#: is installed, else OpenBLAS; ``$DLCORE_BLAS`` decides when set).
BLAS = choose_blas()
#: {dtype: (the address of the Fortran ?gemm function, its integer type)} for calls made from
#: inside kernels (:func:`fortran_gemm`), and the file name of the library they are in (for
#: ``dlcore doctor`` and the benchmarks). An address, not the ctypes function: Numba types and
#: unboxes a ctypes function argument in Python on every launch (~1 us, 1.7 % of a batch-32
#: fine-tuning epoch), an integer in C.
BLAS_GEMM = {dtype: (function_address(function), integer_type)
             for dtype, (function, integer_type) in BLAS.gemm.items()}
#: {dtype: an empty array of BLAS_GEMM's integer type}: the ``integer_probe`` that types the
#: kernels' BLAS calls, made once rather than at every launch
_INTEGER_PROBES = {dtype: np.empty(0, integer_type)
                   for dtype, (_, integer_type) in BLAS_GEMM.items()}
BLAS_LIBRARY = BLAS.library_file


@intrinsic
def _call_gemm(typingctx, address, trans_first, trans_second, m, n, k, alpha, first, ld_first,
               second, ld_second, beta, out, ld_out):
    """Call the Fortran ``?gemm`` at ``address`` with its thirteen arguments, each a pointer
    given as an integer (``.ctypes.data``), as ``void f(void *, ... 13)``."""
    arguments = (trans_first, trans_second, m, n, k, alpha, first, ld_first, second, ld_second,
                 beta, out, ld_out)

    def codegen(context, builder, signature, values):
        byte_pointer = ir.IntType(8).as_pointer()
        function_type = ir.FunctionType(ir.VoidType(), [byte_pointer] * 13)
        function = builder.inttoptr(values[0], function_type.as_pointer())
        builder.call(function, [builder.inttoptr(value, byte_pointer) for value in values[1:]])
        return context.get_dummy_value()
    if not all(isinstance(value, numba_types.Integer) for value in (address, *arguments)):
        return None
    return numba_types.void(address, *arguments), codegen


@njit(cache=True)
def splits_columns(m, n):
    """Whether a product into a C-order (m, n) output is split into blocks of columns (a wider
    output) rather than of rows. A square one is split into rows: blocks of whole rows share no
    cache line, and measured on an Intel Xeon (MKL, 2 threads) a weight gradient
    500 x 32 -> 500 took 61 us in rows against 79 in columns, 500 x 500 -> 500 853 against
    926."""
    return n > m


_product_parts = []  # [parts] while use_product_parts holds a number


def use_product_parts(parts):
    """Split products into ``parts`` blocks from now on; None: :func:`product_parts`' default.
    :func:`dlcore.distributed.init` gives each rank as many blocks as its share of the node's
    cores (its threads): the pool's size would cut a rank's products into thin blocks, one
    BLAS call each, on a node of many cores."""
    _product_parts[:] = [] if parts is None else [max(1, int(parts))]


def product_parts():
    """The number of blocks a product is split into across the threads: ``$DLCORE_PRODUCT_BLOCKS``
    when set, else the size of Numba's thread pool (``NUMBA_NUM_THREADS``, the cores unless
    set), not the threads in use now (``numba.set_num_threads``), unless
    :func:`use_product_parts` says otherwise. With fewer threads, each takes several blocks.

    The blocks must not depend on the threads in use: a BLAS may round a product's entries
    differently when it is computed in other blocks. OpenBLAS's AVX2 (Haswell) kernels do:
    measured on an AMD EPYC, a 100 x 392 x 500 product computed whole and as two blocks of
    250 columns differ in 26 of its columns (MKL's and OpenBLAS's AVX-512 kernels agree bit
    for bit). So a seed trains the same weights on 1, 2 or more threads of one machine, and
    the fused kernels make the calls of the products they fuse, whatever the BLAS. Machines
    with other core counts give the same weights with such a BLAS only when they split
    products alike: a class sets ``DLCORE_PRODUCT_BLOCKS`` to one number on every machine."""
    if _product_parts:
        return _product_parts[0]
    chosen = os.environ.get("DLCORE_PRODUCT_BLOCKS", "").strip()
    if chosen:
        if not chosen.isdigit() or not 1 <= int(chosen) <= 4096:
            raise ValueError(f"$DLCORE_PRODUCT_BLOCKS must be a whole number from 1 to 4096 "
                             f"(the blocks each product is split into), got {chosen[:20]!r}")
        return int(chosen)
    return int(numba.config.NUMBA_NUM_THREADS)


@njit(cache=True)
def product_block(part, parts, m, n):
    """``(start, stop)``: block ``part`` of the ``parts`` into which a product with an (m, n)
    output is split across the threads, along its larger side (columns where
    :func:`splits_columns`, else rows): ceil(size / parts) each, the last shorter, empty past
    the end. Every kernel that splits a product takes its blocks from here, so a fused kernel
    makes the BLAS calls of the product it fuses and gets its numbers bit for bit."""
    size = max(m, n)
    chunk = -(-size // parts)
    start = min(size, part * chunk)
    return start, min(size, start + chunk)


@njit(cache=True)
def fortran_gemm(blas, trans_first, trans_second, m, n, k, alpha, first, ld_first, second,
                 ld_second, beta, out, ld_out, scalar_probe, integer_probe):
    """One Fortran ``?gemm`` call: out(m x n) = alpha op(first) op(second) + beta out
    (``blas``: the function's address, :data:`BLAS_GEMM`; ``first``, ``second``, ``out``: the
    operands' addresses)."""
    codes = np.empty(2, np.uint8)
    codes[0] = trans_first
    codes[1] = trans_second
    sizes = np.empty(6, integer_probe.dtype)
    sizes[0], sizes[1], sizes[2] = m, n, k
    # an empty operand's leading dimension is 0 here; BLAS asks for at least 1 (MKL refuses
    # the call and leaves out unscaled: a data-parallel rank whose shard has no row)
    sizes[3], sizes[4], sizes[5] = max(1, ld_first), max(1, ld_second), max(1, ld_out)
    scalars = np.empty(2, scalar_probe.dtype)
    scalars[0], scalars[1] = alpha, beta
    _call_gemm(blas, codes.ctypes.data, codes[1:].ctypes.data, sizes.ctypes.data,
               sizes[1:].ctypes.data, sizes[2:].ctypes.data, scalars.ctypes.data, first,
               sizes[3:].ctypes.data, second, sizes[4:].ctypes.data, scalars[1:].ctypes.data,
               out, sizes[5:].ctypes.data)


@njit(cache=True)
def serial_gemm(blas, integer_probe, a, b, out, trans_a, trans_b, alpha, beta):
    """out <- alpha op(a) op(b) + beta out for arrays whose rows are contiguous (C-order, or a
    block of columns of one: the leading dimension is the row stride), one single-threaded
    ?gemm call (from a kernel or a serial caller): BLAS computes out' = op(b)' op(a)'."""
    m, n = out.shape
    k = a.shape[0] if trans_a else a.shape[1]
    fortran_gemm(blas, TRANSPOSE if trans_b else NO_TRANSPOSE,
                 TRANSPOSE if trans_a else NO_TRANSPOSE, n, m, k, alpha, b.ctypes.data,
                 _row_stride(b), a.ctypes.data, _row_stride(a), beta, out.ctypes.data,
                 _row_stride(out), out, integer_probe)


@njit(cache=True)
def _row_stride(matrix):
    """The leading dimension of a 2-D array with contiguous rows, in elements (an empty
    array's strides are 0: then its width)."""
    return max(matrix.shape[1], matrix.strides[0] // matrix.itemsize)


@njit(cache=True)
def _gemm_column_block(a, b, out, trans_a, trans_b, alpha, beta, blas, integer_probe, start,
                       stop):
    """Columns start..stop-1 of out <- alpha op(a) op(b) + beta out: rows of the Fortran problem
    out' = op(b)' op(a)' (C-order arrays are the transposes of Fortran ones)."""
    m, n = out.shape
    k = a.shape[0] if trans_a else a.shape[1]
    b_block = b[start:stop].ctypes.data if trans_b else b[:, start:stop].ctypes.data
    fortran_gemm(blas, TRANSPOSE if trans_b else NO_TRANSPOSE,
                 TRANSPOSE if trans_a else NO_TRANSPOSE, stop - start, m, k, alpha, b_block,
                 b.shape[1], a.ctypes.data, a.shape[1], beta, out[:, start:stop].ctypes.data, n,
                 out, integer_probe)


@njit(parallel=True, cache=True, error_model="numpy")
def _parallel_gemm(a, b, out, trans_a, trans_b, alpha, beta, blas, integer_probe, parts):
    """out (m, n) <- alpha op(a) op(b) + beta out, in ``parts`` blocks run on Numba's threads.

    The larger of m and n is split (:func:`splits_columns`): columns of ``out`` (a slice of
    ``b``), or its rows (a slice of ``a``, computed as the columns of out' = op(b)' op(a)').
    """
    m, n = out.shape
    for part in prange(parts):
        start, stop = product_block(part, parts, m, n)
        if stop <= start:
            continue
        if splits_columns(m, n):
            _gemm_column_block(a, b, out, trans_a, trans_b, alpha, beta, blas, integer_probe,
                               start, stop)
        else:
            _gemm_row_block(a, b, out, trans_a, trans_b, alpha, beta, blas, integer_probe,
                            start, stop)


@njit(cache=True)
def _gemm_row_block(a, b, out, trans_a, trans_b, alpha, beta, blas, integer_probe, start,
                    stop):
    """Rows start..stop-1 of out <- alpha op(a) op(b) + beta out: columns of the Fortran
    problem out' = op(b)' op(a)'."""
    n = out.shape[1]
    k = a.shape[0] if trans_a else a.shape[1]
    a_block = a[:, start:stop].ctypes.data if trans_a else a[start:stop].ctypes.data
    fortran_gemm(blas, TRANSPOSE if trans_b else NO_TRANSPOSE,
                 TRANSPOSE if trans_a else NO_TRANSPOSE, n, stop - start, k, alpha,
                 b.ctypes.data, b.shape[1], a_block, a.shape[1], beta,
                 out[start:stop].ctypes.data, n, out, integer_probe)


@njit(cache=True)
def _step_span(first, last, weights, velocity, descend, scalar):
    """The step of :data:`_weight_step` on ``weights[first:last]`` (flat)."""
    if descend:
        descent_span(first, last, weights, velocity, scalar)
    else:
        momentum_step_span(first, last, weights, velocity, scalar)


def _fused_weight_step(steps_fingerprint):
    """The kernel of :data:`_weight_step`. The :func:`fingerprint` of the two steps it may take
    (bodies of kernel_backend.py) and of the float-mode switches sits in its closure: Numba's
    disk cache keys a function on its own source file only, and would otherwise keep them as
    they were when it compiled. Nothing else may sit there: Numba keys the cache on a pickle of
    the closure, and a compiled function pickles with an identifier drawn anew in every
    process, so a kernel holding one in its closure never loads from the disk (measured: each
    process compiled this kernel again and left another ~113 KB file in the cache folder).
    Each thread's share runs with subnormals flushed to 0 (:mod:`.flush_to_zero`): BLAS writes
    the velocity, and a velocity that decays with a zero gradient would otherwise go through
    ~150 slow subnormal updates."""
    @njit(parallel=True, cache=True, error_model="numpy")
    def kernel(weights, velocity, first_a, first_b, first_rate, second_a, second_b,
               second_rate, momentum, descend, scalar, blas, integer_probe, parts,
               input_gradient, grad_z, first_indices, first_bounds, second_indices,
               second_bounds, gathered, transposed):
        steps_fingerprint  # noqa: B018
        m, n = velocity.shape
        flat_weights, flat_velocity = weights.reshape(-1), velocity.reshape(-1)
        for part in prange(parts):
            start, stop = product_block(part, parts, m, n)
            if stop <= start:
                continue
            if input_gradient.shape[0] > 0:   # before the step, with the float modes as NumPy's
                _gemm_column_block(grad_z, weights, input_gradient, False, True, 1.0, 0.0, blas,
                                   integer_probe, start, stop)
            saved_modes = flush_to_zero_on()
            if splits_columns(m, n):
                if first_indices.shape[0] > 0:
                    selected_transposed_block(first_a, first_indices, first_bounds, velocity, 0,
                                              m, start, stop, first_rate, momentum,
                                              gathered[part], transposed[part])
                else:
                    _gemm_column_block(first_a, first_b, velocity, True, False, first_rate,
                                       momentum, blas, integer_probe, start, stop)
                if second_indices.shape[0] > 0:
                    selected_rows_block(second_b, second_indices, second_bounds, velocity,
                                        start, stop, second_rate, True)
                elif second_a.shape[0] > 0:
                    _gemm_column_block(second_a, second_b, velocity, True, False, second_rate,
                                       1.0, blas, integer_probe, start, stop)
                for row in range(m):
                    _step_span(row * n + start, row * n + stop, flat_weights, flat_velocity,
                               descend, scalar)
            else:
                if first_indices.shape[0] > 0:
                    selected_transposed_block(first_a, first_indices, first_bounds, velocity,
                                              start, stop, 0, n, first_rate, momentum,
                                              gathered[part], transposed[part])
                else:
                    _gemm_row_block(first_a, first_b, velocity, True, False, first_rate,
                                    momentum, blas, integer_probe, start, stop)
                if second_indices.shape[0] > 0:
                    selected_rows_block(second_b, second_indices, second_bounds[start:stop],
                                        velocity[start:stop], 0, n, second_rate, True)
                elif second_a.shape[0] > 0:
                    _gemm_row_block(second_a, second_b, velocity, True, False, second_rate, 1.0,
                                    blas, integer_probe, start, stop)
                _step_span(start * n, stop * n, flat_weights, flat_velocity, descend, scalar)
            restore_float_modes(saved_modes)

    return kernel


#: A weight matrix's step from products, in ``parts`` blocks, one per Numba thread, split as
#: :func:`_parallel_gemm` splits a product (the same numbers, bit for bit): each block's
#: products folded into the momentum buffer,
#:
#:     velocity <- momentum velocity + first_rate first_a' first_b
#:                 (+ second_rate second_a' second_b, unless second_a has no rows),
#:
#: then its step while the block is still in cache: ``descend``, weights -= scalar velocity
#: (:meth:`CPUBackend.dense_weight_step`); else velocity -= scalar weights, weights +=
#: velocity (:meth:`CPUBackend.contrastive_weight_step`, scalar the weight decay). Arguments:
#: ``(weights, velocity, first_a, first_b, first_rate, second_a, second_b, second_rate,
#: momentum, descend, scalar, blas, integer_probe, parts, input_gradient, grad_z,
#: first_indices, first_bounds, second_indices, second_bounds, gathered, transposed)``: unless
#: ``input_gradient`` has no rows, each block first puts columns start..stop-1 of
#: input_gradient <- grad_z weights' (a Dense layer's dL/dx, from the weights before the step),
#: which are that block's rows of the weights; only for a W split by rows into the blocks that
#: :func:`_parallel_gemm` gives that product (:meth:`CPUBackend.dense_weight_step` checks).
#: Unless ``second_indices`` is empty, second_a is binary and listed by its columns
#: (``SampleOnes.by_columns``: ``second_indices``, ``second_bounds``), and its product is summed,
#: not multiplied (:mod:`.binary_products`); unless ``first_indices`` is empty, first_b is
#: binary, listed by its columns, and first_a' first_b is summed
#: (:func:`selected_transposed_block`, in each thread's ``gathered[part]`` and
#: ``transposed[part]``, (n, BLOCK_COLUMNS) and (BLOCK_COLUMNS, n)).
_weight_step = _fused_weight_step(
    "".join(fingerprint(function) for function in (descent_span, momentum_step_span,
                                                   flush_to_zero_on.py_func,
                                                   restore_float_modes.py_func))
    + _binary_products_fingerprint())


#: buffers a Python thread reuses from one call to the next (the backend is shared)
_PER_THREAD = threading.local()


def _scratch(purpose, shape, dtype):
    """A ``shape`` array of ``dtype`` for ``purpose``: a view of one buffer per purpose, dtype
    and Python thread (a backend is shared between them), as large as the largest asked so
    far. One per shape would grow without bound with the batch sizes a caller uses (predict on
    inputs of every length)."""
    buffers = _PER_THREAD.__dict__.setdefault("scratch", {})
    size = math.prod(shape)   # np.prod costs ~1 us, and this runs at every batch
    buffer = buffers.get((purpose, np.dtype(dtype)))
    if buffer is None or buffer.size < size:
        # zeros: the sums read whole vectors of a block's buffer past the columns they store
        buffer = buffers[(purpose, np.dtype(dtype))] = np.zeros(size, dtype)
    return buffer[:size].reshape(shape)


#: The largest share of ones in a binary sample whose products are summed rather than
#: multiplied (:mod:`.binary_products`): measured on an AMD EPYC (Zen 4, AVX-512), one thread,
#: a 100 x 784 sample times 784 x 500 weights, the sums take 290, 390 and 510 us at shares
#: 0.2, 0.29 and 0.4 against OpenBLAS's 780 us (a share near 0.6 would break even); listing
#: the sample's ones for all of its products costs ~85 us on two threads.
BINARY_DENSITY_LIMIT = 0.5
#: The largest sample (rows x columns) whose ones are listed (:meth:`CPUBackend.ones_lists`):
#: the lists take two int32 arrays of its size, beside the trainer's float32 buffers of it;
#: a batch of more than ~5,000 rows of 784 pixels multiplies (BLAS is efficient there anyway)
LISTED_ELEMENTS_LIMIT = 1 << 22
#: The lists of a product multiplied, not summed (:data:`_weight_step`'s arguments), and the
#: per-thread blocks its sums would need
_NO_LISTS = (np.empty(0, np.int32), np.empty((0, 1), np.int64))
_NO_BLOCKS = {np.dtype(dtype): np.empty((0, 0, BLOCK_COLUMNS), dtype)
              for dtype in (np.float32, np.float64)}

_SCIPY_GEMM = {np.dtype(np.float32): scipy_blas.sgemm, np.dtype(np.float64): scipy_blas.dgemm}


class CPUBackend(HostMemory, KernelBackend):
    name = "cpu"
    host_kernels = True
    _no_array = np.empty((0, 0), dtype=np.float32)

    def __init__(self):
        self._compute_depth = 0
        self._compute_parts = None

    def copy_into(self, destination, source):
        np.copyto(destination, source)

    @contextlib.contextmanager
    def compute(self, small_products=False):
        if _auto_note:   # a stretch of work (a fit, AIS) on the backend auto chose
            say_auto_note()
        with one_blas_thread():
            self._compute_depth += 1
            try:
                yield self
            finally:
                self._compute_depth -= 1
                if self._compute_depth == 0:
                    self._compute_parts = None

    def launch_rows(self, body, n_rows, n_units, *args, work=None):
        if n_rows > 0 and n_units > 0:
            if (n_rows * n_units if work is None else work) < SERIAL_ELEMENTS:
                _kernel("serial rows", body)(n_rows, n_units, *args)
            else:
                _kernel("rows", body)(n_rows, n_units, *args)

    def launch_1d(self, body, n, *args, work=None):
        if n > 0:
            if (n if work is None else work) < SERIAL_ELEMENTS:
                _kernel("serial chunk", body)(n, *args)
            else:
                n_chunks = max(1, min(numba.get_num_threads(), n // 64))
                _kernel("chunks", body)(n, n_chunks, *args)

    def launch_tensors(self, body, tensors, shared, per_tensor):
        # One launch, one parallel region, for all of them (an optimiser's step over a
        # network's weights and biases: 6 launches cost 160 us against 97 us for one, measured
        # on a 784-500-500-10 net). The tensors are passed by address so that the kernel's type
        # does not depend on their number: one compilation serves every network.
        layout = self._tensor_layout(tensors)
        # in the tensors' precision (float32 settings would round a float64 step's); an
        # optimiser passes an array of that type already, taken as it is
        scalars = np.asarray(per_tensor, dtype=np.float32 if layout is None else layout[2].dtype)
        if layout is None or scalars.shape != (len(tensors), 4):
            super().launch_tensors(body, tensors, shared, per_tensor)
            return
        offsets, addresses, probe = layout
        total = int(offsets[-1])
        if total < SERIAL_ELEMENTS:
            _kernel("serial tensors", body)(offsets, addresses, scalars, probe, *shared)
        else:
            n_chunks = max(1, min(numba.get_num_threads(), total // 64))
            _kernel("tensors", body)(n_chunks, offsets, addresses, scalars, probe, *shared)

    def _tensor_layout(self, tensors):
        """``(offsets, addresses, probe)`` of :meth:`launch_tensors`' tensors, or None when
        they are not five C-contiguous arrays each of one dtype and length. Kept on a
        :class:`Tensors` (an optimiser passes the same one at every step; looking the
        addresses up costs ~2 us an array)."""
        layout = getattr(tensors, "cpu_layout", False)
        if layout is not False:
            return layout
        layout = None
        # the kernel reads each tensor's five arrays at their addresses for the first one's
        # length: anything else goes the safe way, one launch per tensor
        if tensors and all(len(arrays) == 5 and all(
                array.dtype == tensors[0][0].dtype and array.flags.c_contiguous
                and array.ndim == 1 and array.size == arrays[0].size for array in arrays)
                for arrays in tensors):
            offsets = np.zeros(len(tensors) + 1, np.int64)
            np.cumsum([arrays[0].size for arrays in tensors], out=offsets[1:])
            addresses = np.array([[array.ctypes.data for array in arrays]
                                  for arrays in tensors], dtype=np.int64)
            layout = (offsets, addresses, tensors[0][0][:0])
        if isinstance(tensors, Tensors):
            tensors.cpu_layout = layout
        return layout

    def _parts(self):
        """:func:`product_parts`, read once inside :meth:`compute` (a fit): looking
        ``$DLCORE_PRODUCT_BLOCKS`` up cost ~1 us at each of a batch's five split products."""
        parts = self._compute_parts
        if parts is None:
            parts = product_parts()
            if self._compute_depth > 0:
                self._compute_parts = parts
        return parts

    def _splits_products(self, out, k):
        """Whether a product into ``out`` with inner dimension ``k`` is split across Numba's
        threads (inside :meth:`compute`, and large enough)."""
        return (self._compute_depth > 0
                and out.shape[0] * out.shape[1] * k >= SERIAL_MULTIPLY_ADDS)

    def sums_inner_halves(self, a, b, trans_b):
        """Whether :meth:`gemm_sigmoid_bernoulli` and :meth:`gemm_then_rows` compute
        ``a op(b)`` as the sum of the two halves of its inner dimension
        (:data:`_parallel_halves_then_rows`): inside :meth:`compute`, for an inner dimension
        of at least :data:`HALVES_FROM` that is the one along which the weight step of a
        matrix shaped like ``b`` splits it (:func:`splits_columns`): an RBM's hidden units'
        inputs x W when W is split by rows, its visible units' inputs h W' when by columns; a
        Dense layer's forward pass x W for a kernel no wider than tall. A rule on the shapes
        alone, never on the number of threads or rows: the numbers of a model do not depend
        on them."""
        rows, columns = b.shape
        return (self._compute_depth > 0 and a.shape[1] >= HALVES_FROM
                and splits_columns(rows, columns) == bool(trans_b))

    def _second_half(self, out):
        """An (m, n) buffer for :meth:`sums_inner_halves`' second product."""
        return _scratch("second half", out.shape, out.dtype)

    def ones_lists(self, rows, width, other_width=None):
        if rows * width > LISTED_ELEMENTS_LIMIT:
            return None
        return SampleOnes(rows, width, other_width)

    def list_ones(self, sample, lists):
        # the sums are float32 kernels, and pay only where the products would be split
        # between the threads (inside compute(), large enough: _sums_ones checks at each use)
        if (lists is None or self._compute_depth == 0 or sample.dtype != np.float32
                or sample.size == 0 or sample.shape[1] != lists.width):
            return None
        # every product of a (b, k) sample with a (k, n) matrix (and of its transpose with a
        # (b, n) one) takes b k n multiply-adds: too few to split, none of them is summed, and
        # listing would cost its time and, in a first run, the compilation of the lists
        if (lists.other_width is not None
                and sample.size * lists.other_width < SERIAL_MULTIPLY_ADDS):
            return None
        if lists.fill(sample, self._parts()) > BINARY_DENSITY_LIMIT * sample.size:
            return None
        return lists

    def _sums_ones(self, ones, sample, other, out, inner):
        """Whether the product of ``sample`` (listed in ``ones``, or None) and ``other`` into
        ``out``, ``inner`` terms each, is summed (:mod:`.binary_products`) rather than
        multiplied: inside :meth:`compute`, large enough to split between the threads, float32
        operands with contiguous rows, and ``ones`` listed from an array of ``sample``'s
        shape."""
        return (ones is not None and ones.shape == sample.shape
                and self._splits_products(out, inner)
                and all(array.dtype == np.float32 and array.strides[-1] == 4
                        for array in (other, out)))

    def gemm_sigmoid_bernoulli(self, a, b, out, bias, sample, seed, stream, step,
                               trans_b=False, first_row=0, a_ones=None):
        if self._sums_ones(a_ones, a, b, out, a.shape[1]):
            transposed = _scratch("transposed rows",
                                  (self._parts(), b.shape[1] if trans_b else 0, BLOCK_COLUMNS),
                                  np.float32)
            k0, k1 = key_from_seed(seed)
            _kernel("selected then rows", sigmoid_bernoulli_span)(
                b, out, bool(trans_b), *a_ones.by_rows, transposed, self._parts(), 4, out, bias,
                self._optional(sample), k0, k1, np.uint64(stream), np.uint64(step),
                np.uint64(first_row))
            return
        if self.sums_inner_halves(a, b, trans_b):
            k0, k1 = key_from_seed(seed)
            blas = BLAS_GEMM[out.dtype][0]
            kind = ("halves then rows" if self._splits_products(out, a.shape[1])
                    else "serial halves then rows")
            _kernel(kind, sigmoid_bernoulli_span)(
                a, b, out, self._second_half(out), bool(trans_b), blas,
                _INTEGER_PROBES[out.dtype], self._parts(), 4, out, bias,
                self._optional(sample), k0, k1, np.uint64(stream), np.uint64(step),
                np.uint64(first_row))
            return
        if not self._splits_products(out, a.shape[1]):
            super().gemm_sigmoid_bernoulli(a, b, out, bias, sample, seed, stream, step,
                                           trans_b, first_row)
            return
        k0, k1 = key_from_seed(seed)
        blas = BLAS_GEMM[out.dtype][0]
        _kernel("gemm then rows", sigmoid_bernoulli_span)(
            a, b, out, bool(trans_b), blas, _INTEGER_PROBES[out.dtype], self._parts(),
            4, out, bias, self._optional(sample), k0, k1, np.uint64(stream), np.uint64(step),
            np.uint64(first_row))

    def gemm_then_rows(self, a, b, out, body, *args):
        if self.sums_inner_halves(a, b, False):
            blas = BLAS_GEMM[out.dtype][0]
            kind = ("halves then rows" if self._splits_products(out, a.shape[1])
                    else "serial halves then rows")
            _kernel(kind, body)(a, b, out, self._second_half(out), False, blas,
                                _INTEGER_PROBES[out.dtype], self._parts(), 1, *args)
            return
        if not self._splits_products(out, a.shape[1]):
            super().gemm_then_rows(a, b, out, body, *args)
            return
        blas = BLAS_GEMM[out.dtype][0]
        _kernel("gemm then rows", body)(a, b, out, False, blas, _INTEGER_PROBES[out.dtype],
                                        self._parts(), 1, *args)

    def contrastive_weight_step(self, weights, velocity, positive_a, positive_b, negative_a,
                                negative_b, positive_rate, negative_rate, momentum, decay,
                                positive_ones=None, negative_ones=None):
        # fused only where both products would be split (the same blocks, the same numbers)
        if not (self._splits_products(velocity, positive_a.shape[0])
                and self._splits_products(velocity, negative_a.shape[0])):
            super().contrastive_weight_step(weights, velocity, positive_a, positive_b,
                                            negative_a, negative_b, positive_rate,
                                            negative_rate, momentum, decay)
            return
        if self._sums_ones(positive_ones, positive_b, positive_a, velocity, positive_a.shape[0]):
            positive = positive_ones.by_columns
        else:
            positive = None
        negative = (negative_ones.by_columns if self._sums_ones(
            negative_ones, negative_a, negative_b, velocity, negative_a.shape[0]) else None)
        if positive is None:
            positive = _NO_LISTS
            gathered = transposed = _NO_BLOCKS[velocity.dtype]
        else:
            gathered = _scratch("gathered rows", (self._parts(), velocity.shape[1],
                                                  BLOCK_COLUMNS), np.float32)
            transposed = _scratch("transposed sums", (self._parts(), BLOCK_COLUMNS,
                                                      velocity.shape[1]), np.float32)
        blas = BLAS_GEMM[velocity.dtype][0]
        _weight_step(weights, velocity, positive_a, positive_b, float(positive_rate),
                     negative_a, negative_b, -float(negative_rate), float(momentum), False,
                     velocity.dtype.type(decay), blas, _INTEGER_PROBES[velocity.dtype],
                     self._parts(), velocity[:0], velocity[:0], *positive,
                     *(_NO_LISTS if negative is None else negative), gathered, transposed)

    def fuses_weight_step(self, velocity, k):
        # measured on an Intel Xeon (MKL, 2 threads), batch 32, gradient product and its
        # share of the optimiser's launch against the fused step: 784 x 500 weights 307-331 us
        # -> 253-265 us, 500 x 500 273-292 -> 185-219 us; a product too small to split keeps
        # the single optimiser launch
        return self._splits_products(velocity, k)

    def dense_weight_step(self, x, grad_z, weights, velocity, rate, momentum, grad_x=None):
        if momentum == 0 or not self.fuses_weight_step(velocity, x.shape[0]):
            super().dense_weight_step(x, grad_z, weights, velocity, rate, momentum, grad_x)
            return
        if grad_x is not None and not self._steps_input_gradient_blocks(grad_x, weights):
            self.gemm(grad_z, weights, grad_x, trans_b=True)
            grad_x = None
        blas = BLAS_GEMM[velocity.dtype][0]
        _weight_step(weights, velocity, x, grad_z, 1.0, x[:0], grad_z[:0], 0.0,
                     float(momentum), True, velocity.dtype.type(rate), blas,
                     _INTEGER_PROBES[velocity.dtype], self._parts(),
                     velocity[:0] if grad_x is None else grad_x, grad_z, *_NO_LISTS,
                     *_NO_LISTS, _NO_BLOCKS[velocity.dtype], _NO_BLOCKS[velocity.dtype])

    def _steps_input_gradient_blocks(self, grad_x, weights):
        """Whether the fused weight step's blocks of the weights' rows are the blocks of
        columns in which :meth:`gemm` splits dL/dx = grad_z weights' (n, in)
        (:func:`product_block` of either: ``in`` the larger side of both): W no wider than
        tall (split by rows), dL/dx wider than tall (split by columns) and large enough to
        split. Then the step computes those columns in the same calls, the same numbers, while
        each thread has its rows of W in cache (measured on an Intel Xeon, 2 threads, a
        500 x 500 layer at batch 32 in the fine-tuning epoch: the product then the step
        148 + 193 us, both in the step 240 us)."""
        n, inputs = grad_x.shape
        return (not splits_columns(*weights.shape) and splits_columns(n, inputs)
                and self._splits_products(grad_x, weights.shape[1]))

    def gemm(self, a, b, out, trans_a=False, trans_b=False, alpha=1.0, beta=0.0):
        k = a.shape[0] if trans_a else a.shape[1]
        if self._compute_depth > 0:
            blas = BLAS_GEMM[out.dtype][0]
            if out.shape[0] * out.shape[1] * k < SERIAL_MULTIPLY_ADDS:
                serial_gemm(blas, _INTEGER_PROBES[out.dtype], a, b, out, bool(trans_a),
                            bool(trans_b), alpha, beta)
            else:
                _parallel_gemm(a, b, out, bool(trans_a), bool(trans_b), alpha, beta, blas,
                               _INTEGER_PROBES[out.dtype], self._parts())
        elif alpha == 1.0 and beta == 0.0:
            np.matmul(a.T if trans_a else a, b.T if trans_b else b, out=out)
        else:  # C^T = alpha op(B)^T op(A)^T + beta C^T, on Fortran views, in place
            _SCIPY_GEMM[out.dtype](alpha, b.T, a.T, beta=beta, c=out.T, overwrite_c=True,
                                   trans_a=trans_b, trans_b=trans_a)
