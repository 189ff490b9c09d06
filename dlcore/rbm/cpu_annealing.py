"""The CPU's annealing: every chain's temperatures inside one parallel region.

On a GPU a temperature of AIS is four launches over all chains (:func:`dlcore.rbm.annealing.
anneal`). On the CPU that would be four parallel regions per temperature, 58,000 for Salakhutdinov
& Murray's 14,500 temperatures, each ending in a barrier: on a busy 2-core machine a barrier
waits for a descheduled thread (:mod:`dlcore.backend.cpu` measured 7-9 ms). The chains are
independent, so here each Numba thread takes a share of them and runs a block of temperatures
on its share alone: the products are single-threaded BLAS ``sgemm`` calls made from inside the
kernel through the CPU backend's BLAS entry, around the same kernel bodies the GPU launches
(:func:`dlcore.rbm.annealing.hidden_step_rows` and the path's visible step). One parallel region
per block of temperatures: 1% of them (where progress is reported), or more when that is less
than :data:`MIN_REGION_MULTIPLY_ADDS` of work. Below the CPU backend's ``SERIAL_MULTIPLY_ADDS``
per temperature (chains x visible x hidden) the chains run on the calling thread: every parallel
region ends in a barrier, measured at 25 ms on a 2-core machine under a load of 15, against
0.03 ms of work per temperature for 100 chains of a 196-40 RBM.

This module imports :mod:`dlcore.backend.cpu`: only :func:`dlcore.rbm.annealing.anneal` on a
backend with ``host_kernels`` imports it, so the CUDA path never loads the CPU backend.
"""
import numba
import numpy as np
from numba import njit, prange

from dlcore.backend import rng
from dlcore.backend.cpu import (  # the backend's BLAS entry, and when to stay on one thread
    BLAS_GEMM,
    SERIAL_MULTIPLY_ADDS,
    fingerprint,
    serial_gemm,
)

from .annealing import chain_arrays, hidden_step_rows

#: A parallel region anneals at least this many multiply-adds (about 5 ms of work), however
#: fine the progress: the barrier's cost stays small beside it.
MIN_REGION_MULTIPLY_ADDS = 2 * 10 ** 8

_KERNELS = {}


def _annealing_kernels(visible_body):
    """``(serial, parallel)``: the compiled blocks of temperatures around ``visible_body`` (one
    pair per visible kind)."""
    kernels = _KERNELS.get(visible_body)
    if kernels is None:
        kernels = _KERNELS[visible_body] = _make_kernels(
            visible_body, fingerprint(visible_body) + fingerprint(hidden_step_rows))
    return kernels


def _make_kernels(visible_body, body_fingerprint):
    @njit(cache=True, nogil=True, error_model="numpy")
    def anneal_rows(start, stop, weight_input, x, h, top, W, c, zeros, betas, first, last,
                    data_term, log_weights, k0, k1, hidden_stream, visible_stream, blas,
                    integers, *own):
        """Temperatures first..last-1 of chains start..stop-1: x = u(v) W, the hidden step,
        top = h W', the visible step (see dlcore.rbm.annealing)."""
        body_fingerprint  # noqa: B018  (part of the cache key, see dlcore.backend.cpu)
        for k in range(first, last):
            step = np.uint64(k)
            serial_gemm(blas, integers, weight_input[start:stop], W, x[start:stop], False,
                        False, 1.0, 0.0)
            for row in range(start, stop):
                hidden_step_rows(row, 0, 1, x, c, betas[k - 1], betas[k], data_term,
                                 log_weights, zeros, h, k0, k1, hidden_stream, step)
            serial_gemm(blas, integers, h[start:stop], W, top[start:stop], False, True, 1.0,
                        0.0)
            for row in range(start, stop):
                visible_body(row, 0, 1, top, betas[k], k0, k1, visible_stream, step, data_term,
                             *own)

    @njit(parallel=True, cache=True, error_model="numpy")
    def anneal_parts(n_parts, *arguments):
        """:func:`anneal_rows` on ``n_parts`` shares of the chains, one per thread."""
        body_fingerprint  # noqa: B018
        n = arguments[1].shape[0]
        chunk = -(-n // n_parts)
        for part in prange(n_parts):
            start, stop = part * chunk, min(n, (part + 1) * chunk)
            if stop > start:
                anneal_rows(start, stop, *arguments)

    return anneal_rows, anneal_parts


def anneal_on_host(backend, path, visible, betas, seed, stream, log_weights, report):
    """:func:`dlcore.rbm.annealing.anneal` on the CPU (same arguments, same results)."""
    be = backend
    n, (n_visible, n_hidden) = visible.shape[0], path.W.shape
    weight_input, states, own, W, c, zeros, x, h, top = chain_arrays(be, path, visible)
    data_term = np.ascontiguousarray(path.data_term(visible), np.float64)
    k0, k1 = rng.key_from_seed(seed)
    blas, integer_type = BLAS_GEMM[np.dtype(np.float32)]
    serial, parallel = _annealing_kernels(path.visible_body)
    steps = len(betas) - 1
    block = max(1, steps // 100)   # progress about every 1%
    work = n * n_visible * n_hidden
    n_parts = max(1, min(numba.get_num_threads(), n))
    if work < SERIAL_MULTIPLY_ADDS or n_parts == 1:
        def run(*arguments):
            serial(0, n, *arguments)
    else:
        block = max(block, -(-MIN_REGION_MULTIPLY_ADDS // work))

        def run(*arguments):
            parallel(n_parts, *arguments)
    with be.compute():   # BLAS on one thread: each of our threads calls it (cpu.py: why)
        for first in range(1, steps + 1, block):
            last = min(steps + 1, first + block)
            run(weight_input, x, h, top, W, c, zeros, betas, first, last, data_term,
                log_weights, k0, k1, np.uint64(stream + 1), np.uint64(stream + 2), blas,
                np.empty(0, integer_type), *own)
            report(last - 1)
    return log_weights, states
