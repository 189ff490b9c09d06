"""Mini-batches: one pass over the rows of a data set, in a seeded order, gathered on the device.

The RBM trainer, a DBN's up-down fine-tuning and network training all walk their data the same
way (Hinton, "A Practical Guide to Training Restricted Boltzmann Machines", section 4: small
mini-batches of a shuffled training set). The epoch's order is a permutation drawn from the
counter-based RNG, ``Philox(seed, STREAM_SHUFFLE, step = epoch)`` (:mod:`dlcore.backend.rng`),
so it is the same on every backend and thread count; each batch of rows is copied from the
device-resident data into buffers allocated once per fit (``backend.gather_rows``, from the
pass's order sent to the device once), or read from a file, only those rows, when the data is
:class:`dlcore.lazy_rows.LazyRows`; progress is
reported about fifty times a pass, and always after the last batch. A data-parallel rank
(:mod:`dlcore.distributed`) gathers only its shard of each batch.
"""
from typing import NamedTuple

import numpy as np

from dlcore.backend import rng
from dlcore.lazy_rows import LazyRows

#: How many progress reports a pass makes at most (a report every n_batches // 50 batches).
REPORTS_PER_PASS = 50


def leading_rows(array, stop, start=0):
    """``array[start:stop]``, or ``array`` itself when that covers all of it.

    A batch takes views of buffers allocated for the full batch size, so nearly every batch
    covers them whole; slicing a numba-cuda device array costs tens of microseconds of Python
    (about 40 us on an H200 host), paid several times per batch, which a whole view skips.
    """
    if start == 0 and stop == array.shape[0]:
        return array
    return array[start:stop]


def epoch_order(n_rows, seed, epoch, shuffle=True, batch_size=None):
    """The row order of pass ``epoch``: Philox(seed, STREAM_SHUFFLE, step = epoch), or
    ``0 .. n_rows - 1`` without ``shuffle``. ``shuffle="batch"`` (Keras's, with
    ``batch_size``) keeps each batch the consecutive rows ``b * batch_size ...`` and draws the
    order of the full batches instead, the short last one staying last, so that every batch
    keeps its rows: a file is then read in runs of rows. Returns an (n_rows,) int64 array."""
    if not shuffle:
        return np.arange(n_rows)
    if isinstance(shuffle, str) and shuffle == "batch":
        full = n_rows // batch_size
        batches = rng.permutation(full, seed, rng.STREAM_SHUFFLE, epoch)
        rows = (batches[:, None] * batch_size + np.arange(batch_size)).ravel()
        return np.concatenate([rows, np.arange(full * batch_size, n_rows)]).astype(np.int64)
    return rng.permutation(n_rows, seed, rng.STREAM_SHUFFLE, epoch)


class Batch(NamedTuple):
    """One mini-batch of a pass."""

    #: 0-based number of the batch in the pass.
    index: int
    #: How many batches the pass has.
    n_batches: int
    #: How many rows of the pass have been gathered, this batch's included.
    rows_done: int
    #: One gathered view (len(rows), ...) per source array, None where the source is None.
    arrays: tuple
    #: Whether the progress cadence falls on this batch (every ``report_every``, and the last).
    reports: bool


def mini_batches(backend, sources, buffers, order, batch_size, report_every=None, shard=None):
    """Yield the :class:`Batch` es of one pass over ``sources`` in the row ``order``.

    Parameters
    ----------
    backend : a dlcore backend (where ``sources`` and ``buffers`` live)
    sources : sequence of (N, m_k) backend arrays, or :class:`~dlcore.lazy_rows.LazyRows` (read
        from disk a batch at a time), or None for a source a caller lacks
    buffers : sequence of (capacity, m_k) backend arrays, capacity >= min(batch_size, N); the
        batch ``rows = order[start:start + batch_size]`` is gathered into ``buffer[:len(rows)]``
    order : (N,) int64 host array, e.g. from :func:`epoch_order`; it is sent to the backend
        once (``backend.asarray``) and every batch gathers from its own slice of that copy
    batch_size : int >= 1; the last batch holds what is left
    report_every : int or None; default max(1, n_batches // 50)
    shard : callable or None; ``shard(len(rows)) -> (first, stop)``: only the rows
        ``[first, stop)`` of each batch are gathered, into ``buffer[first:stop]`` (a
        data-parallel rank's own rows, ``Communicator.shard``: a lazy source reads nothing
        else); the rest of each view is left as it was
    """
    n_batches = -(-len(order) // batch_size)
    report_every = report_every or max(1, n_batches // REPORTS_PER_PASS)
    # the order goes up once a pass and each batch gathers from its slice: a copy from the
    # host per batch (per source) waited on CUDA for every launch before it, so the host never
    # queued a batch's launches while the device ran the last batch's
    on_backend = None
    if any(source is not None and not isinstance(source, LazyRows) for source in sources):
        on_backend = backend.asarray(order, dtype=np.int64)
    for index, start in enumerate(range(0, len(order), batch_size)):
        rows = order[start:start + batch_size]
        first, stop = (0, len(rows)) if shard is None else shard(len(rows))
        views = []
        for source, buffer in zip(sources, buffers):
            if source is None:
                views.append(None)
                continue
            view = leading_rows(buffer, len(rows))
            if stop > first:
                gather(backend, source, rows[first:stop], leading_rows(view, stop, first),
                       on_backend, start + first)
            views.append(view)
        reports = (index + 1) % report_every == 0 or index + 1 == n_batches
        yield Batch(index, n_batches, start + len(rows), tuple(views), reports)


def gather(backend, source, rows, out, on_backend, first):
    """``out[r] = source[rows[r]]``: from device-resident data (``backend.gather_rows`` of
    ``on_backend``, the pass's order on the backend, whose rows ``first ..`` are ``rows``), or
    read from a :class:`~dlcore.lazy_rows.LazyRows` (only those rows) and copied in."""
    if isinstance(source, LazyRows):
        values = np.ascontiguousarray(source.rows(rows).reshape(out.shape), dtype=out.dtype)
        backend.copy_into(out, values)
    else:
        backend.gather_rows(source, on_backend, out, first)
