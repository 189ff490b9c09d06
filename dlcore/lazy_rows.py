"""Lazy rows: a data set that stays on disk and is read a mini-batch at a time.

Training touches its data one mini-batch at a time (:mod:`dlcore.batches`), so it never needs
the whole set in memory: a :class:`LazyRows` stands where the (N, ...) array would, and
:func:`dlcore.batches.mini_batches` asks it for the rows of each batch,

    batch = rows[order[s : s + B]]        read from the file, converted, copied to the device.

In a data-parallel run (:mod:`dlcore.distributed`) each rank asks only for its shard of every
global batch, so over an epoch a rank reads about N / R rows and holds at most one batch of
them: memory per rank is its buffers and the pages of the file it touched (the operating
system's page cache, shared between the ranks of one machine and given back under pressure),
never the data set. The values are exactly those of the eager arrays (the same conversion,
row by row), so training from a :class:`LazyRows` gives bit for bit the parameters that
training from the arrays gives.

A :class:`LazyRows` is a view: a *reader* of the file (an IDX file memory-mapped past its
header, :func:`dlcore.datasets.open_idx`; an HDF5 dataset, :func:`open_hdf5`), the file rows it
shows (``index``, after ``select_classes`` or a hold-out split) and their shape. Indexing with
a slice, an index array or a boolean mask gives another view and reads nothing; ``reshape``
likewise; :meth:`LazyRows.rows` reads; ``numpy.asarray`` reads every row of the view (what a
small validation subset wants, and what a full training set must not get).
"""
import itertools
import math
import os
import weakref
import zlib

import numpy as np

#: Rows read at a time by the passes over the whole view (:meth:`LazyRows.mean`, ``asarray``).
CHUNK_ROWS = 4096
#: How many rows, spread evenly over the view, the fingerprint reads and hashes.
FINGERPRINT_ROWS = 16


class LazyRows:
    """(N, ...) rows of a data set on disk, read only when asked for.

    Parameters
    ----------
    reader : what reads the file: ``n_rows``, ``row_shape``, ``dtype`` (of the stored values),
        ``name`` (for messages), ``rows_read`` (a count it starts at 0), ``identity()`` (a
        tuple naming the file: name, size, a CRC of its header) and ``read(indices)`` ->
        (k, *row_shape) values of the sorted, distinct file rows ``indices``
    index : (N,) int64 file rows this view shows, or None for all of them in order
    shape : (N, ...) the shape of the view's rows (a reshape of the stored rows)
    unit : bool, uint8 (or bool) values are turned into float32 in [0, 1] as
        :func:`dlcore.datasets.to_unit_interval` turns them: ``x.astype(float32) / 255``
        (bool: ``x.astype(float32)``, 0 and 1)
    checks : tuple of (what, unit_interval, held_out) value checks made on every batch read
        (float data, whose range is not known before it is read; :meth:`checked`)
    comm : a :class:`dlcore.distributed.Communicator` that shares :meth:`mean`, or None

    Attributes
    ----------
    shape, dtype, ndim : as an array's (dtype: float32 once converted, else the stored one)
    rows_read : int, how many file rows have been read through the reader (by this view and
        every other view of it)
    """

    def __init__(self, reader, index=None, shape=None, unit=False, checks=(), comm=None):
        self.reader = reader
        self.index = None if index is None else np.asarray(index, dtype=np.int64)
        n_rows = reader.n_rows if self.index is None else len(self.index)
        self.shape = tuple(int(size) for size in
                           ((n_rows,) + tuple(reader.row_shape) if shape is None else shape))
        self.unit = bool(unit)
        self.checks = tuple(checks)
        self.comm = comm
        self.dtype = np.dtype(np.float32) if self.unit else np.dtype(reader.dtype)
        self.ndim = len(self.shape)

    def __repr__(self):
        return (f"<dlcore LazyRows {'x'.join(map(str, self.shape))} {self.dtype} of "
                f"{self.reader.name}>")

    def __len__(self):
        return self.shape[0]

    @property
    def rows_read(self):
        return self.reader.rows_read

    @property
    def size(self):
        return int(np.prod(self.shape, dtype=np.int64))

    def _view(self, **changes):
        settings = {"index": self.index, "shape": self.shape, "unit": self.unit,
                    "checks": self.checks, "comm": self.comm}
        settings.update(changes)
        return type(self)(self.reader, **settings)

    # -- views: nothing is read -------------------------------------------------------------
    def take(self, indices):
        """The view of rows ``indices`` (ints into this view, any order, repeats allowed)."""
        if isinstance(indices, slice):   # not np.arange(len(self))[indices]: N int64s
            indices = np.arange(*indices.indices(len(self)))
        indices = np.asarray(indices)
        if indices.dtype == bool:
            if indices.shape != (len(self),):
                raise IndexError(f"a boolean mask of {len(self)} rows is needed, got shape "
                                 f"{indices.shape}")
            indices = np.flatnonzero(indices)
        integers = indices.size == 0 or np.issubdtype(indices.dtype, np.integer)
        if indices.ndim != 1 or not integers:
            raise IndexError("lazy rows are indexed by a slice, a 1-D integer array or a "
                             f"boolean mask, got {indices.dtype} of shape {indices.shape}")
        indices = indices.astype(np.int64)
        if indices.size and (indices.min() < -len(self) or indices.max() >= len(self)):
            raise IndexError(f"row index out of range for {len(self)} rows")
        indices = np.where(indices < 0, indices + len(self), indices)
        file_rows = indices if self.index is None else self.index[indices]
        return self._view(index=file_rows, shape=(len(indices),) + self.shape[1:])

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            # through take: a negative row counts from the end and one out of range is an
            # IndexError, as an array's (rows() hands its indices to the reader unchecked)
            return self.take([key]).rows(np.zeros(1, np.int64))[0]
        return self.take(key)

    def reshape(self, *shape):
        """The view with rows of another shape (same number of rows and values per row)."""
        shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], tuple) else shape
        per_row = int(np.prod(self.shape[1:], dtype=np.int64))
        rest = list(shape[1:])
        if rest.count(-1) == 1:
            known = int(np.prod([size for size in rest if size != -1], dtype=np.int64))
            rest[rest.index(-1)] = per_row // max(known, 1)
        if shape[0] not in (-1, len(self)) or int(np.prod(rest, dtype=np.int64)) != per_row:
            raise ValueError(f"cannot reshape lazy rows of shape {self.shape} into {shape}: "
                             "only the shape of each row can change")
        return self._view(shape=(len(self),) + tuple(rest))

    def unit_interval(self):
        """Rows flattened to float32 in [0, 1] (what :func:`dlcore.datasets.to_unit_interval`
        does to an array): uint8 divided by 255; bool as 0 and 1; floats kept, their range
        checked as they are read; other integers a TypeError."""
        flat = (len(self), int(np.prod(self.shape[1:], dtype=np.int64)))
        if self.unit or self.reader.dtype in (np.uint8, np.bool_):
            return self._view(shape=flat, unit=True)
        if not np.issubdtype(self.reader.dtype, np.floating):
            raise TypeError(f"to_unit_interval: expected uint8 or bool pixels or "
                            f"floats in [0, 1], got dtype {self.reader.dtype} in "
                            f"{self.reader.name}")
        return self.checked("to_unit_interval", unit_interval=True).reshape(flat)

    def checked(self, what, unit_interval=False, held_out=False):
        """The view that checks the values of every batch it reads: finite, and in [0, 1]
        with ``unit_interval`` (ValueError naming ``what`` and the file); ``held_out`` rows
        (a fitted model only applied to them) may lie beyond [0, 1] but for unscaled 8-bit
        pixels, as :func:`dlcore.validation.check_data` takes held-out arrays."""
        if self.unit:   # uint8 / 255: finite and in [0, 1] by construction
            return self
        check = (what, bool(unit_interval), bool(held_out))
        return self._view(checks=self.checks + (check,))

    def over(self, comm):
        """The view whose whole-data passes (:meth:`mean`) are shared by the ranks of
        ``comm``: each reads its stripe of rows, one all-reduce adds them. ``comm``: a
        :class:`dlcore.distributed.Communicator`, or an mpi4py communicator (wrapped)."""
        if type(comm).__module__ == "mpi4py.MPI":   # its allreduce returns the sum instead
            from dlcore.distributed.communicator import as_communicator
            comm = as_communicator(comm)
        return self._view(comm=comm)

    # -- reading ----------------------------------------------------------------------------
    def rows(self, indices):
        """The values of rows ``indices`` (ints into this view) as a NumPy array
        (len(indices), *shape[1:]): only those file rows are read, each once, in file order
        (sorted: sequential on disk, and what HDF5's selections need)."""
        indices = np.asarray(indices, dtype=np.int64)
        file_rows = indices if self.index is None else self.index[indices]
        distinct, inverse = np.unique(file_rows, return_inverse=True)
        values = self._read(distinct)
        self.reader.rows_read += len(distinct)
        values = values[inverse.reshape(-1)]
        if self.unit:
            values = values.astype(np.float32)
            if self.reader.dtype != np.bool_:
                values /= np.float32(255.0)
        for what, unit_interval, held_out in self.checks:
            values = _check_values(values, what, self.reader.name, unit_interval, held_out)
        return values.reshape((len(indices),) + self.shape[1:])

    def _read(self, file_rows):
        """The stored values of the sorted, distinct ``file_rows`` (a seam for tests that
        record what each rank reads)."""
        return self.reader.read(file_rows)

    def _chunks(self, first=0, stop=None):
        """The rows first .. stop - 1 (default: all), read :data:`CHUNK_ROWS` at a time."""
        stop = len(self) if stop is None else stop
        for start in range(first, stop, CHUNK_ROWS):
            yield self.rows(np.arange(start, min(start + CHUNK_ROWS, stop)))

    def __array__(self, dtype=None, copy=None):
        values = (np.concatenate(list(self._chunks())) if len(self)
                  else np.empty(self.shape, self.dtype))
        return values if dtype is None else values.astype(dtype, copy=False)

    def min(self):
        """The smallest value, every row read once (a chunk at a time)."""
        return min(chunk.min() for chunk in self._chunks())

    def max(self):
        """The largest value, every row read once (a chunk at a time)."""
        return max(chunk.max() for chunk in self._chunks())

    def mean(self, axis=0, dtype=None):
        """The mean row, ``1/N sum_r x_r``, as ``numpy.mean(x, axis=0, dtype)`` computes it:
        the rows added one after another in order, a chunk of rows read at a time, so the
        result equals the eager array's bit for bit. Over the ranks of :meth:`over`'s
        communicator each rank adds its stripe of rows and one all-reduce (in rank order)
        adds the stripes: equal to one process's up to that order of summation."""
        if axis != 0:
            raise ValueError("lazy rows give the mean over the rows only (axis=0)")
        dtype = np.dtype(np.float64 if dtype is None else dtype)
        first, stop = (0, len(self)) if self.comm is None else _stripe(self.comm, len(self))
        total = np.zeros(self.shape[1:], dtype)
        for chunk in self._chunks(first, stop):
            total = np.add.reduce(np.concatenate([total[None], chunk.astype(dtype)]), axis=0)
        if self.comm is not None:
            total = np.ascontiguousarray(total, dtype=np.float64)
            self.comm.allreduce(total)
        return (total / len(self)).astype(dtype)

    def fingerprint(self):
        """What ranks compare to be sure they train on the same data, without reading it:
        the view's shape, the file's identity (path, size, CRC-32 of its header), the CRC-32
        of the view's row map and of :data:`FINGERPRINT_ROWS` rows spread evenly over it.

        It catches another file, another size or header, another subset or order of rows
        (classes, hold-out split, seed), another conversion, and a file whose sampled rows
        differ; not a change confined to rows outside the sample."""
        sample = np.unique(np.linspace(0, len(self) - 1, min(FINGERPRINT_ROWS, len(self)))
                           .astype(np.int64)) if len(self) else np.zeros(0, np.int64)
        row_map = b"" if self.index is None else self.index.tobytes()
        values = np.ascontiguousarray(self.rows(sample)) if len(sample) else np.zeros(0)
        return (self.shape, str(self.dtype), self.reader.identity(), zlib.crc32(row_map),
                zlib.crc32(values.view(np.uint8).reshape(-1)))


def _stripe(comm, n_rows):
    q, m = divmod(n_rows, comm.size)
    first = comm.rank * q + min(comm.rank, m)
    return first, first + q + (1 if comm.rank < m else 0)


def _check_values(values, what, name, unit_interval, held_out=False):
    """``values`` when finite (and, with ``unit_interval``, in [0, 1]: those within float32
    rounding of it clipped into it, as :func:`dlcore.validation.check_data` takes them;
    ``held_out`` rows as they are, a little or far outside, unless they are unscaled 8-bit
    pixels), else ValueError naming ``what`` and the file ``name``."""
    # imported here: dlcore.validation imports this module
    from dlcore.validation import UNIT_INTERVAL_ROUNDING
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{what}: {name} holds NaN or infinite values: clean the data first")
    if not (unit_interval and values.size and (values.min() < 0 or values.max() > 1)):
        return values
    if held_out:
        if not (values.min() >= 0 and values.max() <= 255
                and np.all(values == np.round(values))):
            return values   # a scaler fitted on other rows maps these a little beyond
        raise ValueError(f"{what}: the values of {name} look like 8-bit pixels, got values in "
                         f"[{float(values.min()):g}, {float(values.max()):g}]: divide them by "
                         "255 (dlcore.datasets.to_unit_interval)")
    if values.min() >= -UNIT_INTERVAL_ROUNDING and values.max() <= 1 + UNIT_INTERVAL_ROUNDING:
        return np.clip(values, 0, 1)   # rows read here: no caller's array to change
    raise ValueError(f"{what}: the values of {name} must lie in [0, 1], got values in "
                     f"[{float(values.min()):g}, {float(values.max()):g}]: scale the data "
                     "first")


def file_identity(path, size, header):
    """(file name, size in bytes, CRC-32 of ``header``): a file's identity for
    :meth:`LazyRows.fingerprint` (the name without its folder: ranks on other machines may
    read their own copies)."""
    return (os.path.basename(os.fspath(path)), int(size), zlib.crc32(header))


#: What to do about a data file that the checks of :class:`Hdf5Reader` refuse.
DATA_FILE_FIX = ("copy the file again if it is damaged, or write its rows again with h5py, e.g. "
                 "h5py.File(path, 'w').create_dataset(name, data=rows, compression='gzip')")
#: What to do about rows stored through an HDF5 filter plugin (Blosc, Zstandard: hdf5plugin's),
#: with h5py alone: hdf5plugin registers the plugins with h5py when imported.
DATA_PLUGIN_FIX = ("write the rows again with gzip where the plugin is installed: pip install "
                   "hdf5plugin, then in Python import hdf5plugin, rows = h5py.File(path)[name][()] "
                   "and h5py.File(copy, 'w').create_dataset(name, data=rows, "
                   "compression='gzip'); then open the copy")


class Hdf5Reader:
    """The rows of one dataset of an HDF5 file (h5py), read by sorted selections.

    A data file may come from anyone (a classmate's, a download): it is checked as a model
    file is (:class:`dlcore.io.guarded.ModelFileReader`), but for its links: hard links and
    soft links inside the file (``images -> /train/x``), not external ones; numbers only,
    storage and filters HDF5 can read safely, a declared size the file can hold; the stored
    chunks of compressed rows are checked as batches reach them, and what HDF5 cannot read
    is one line. Errors are :class:`ValueError` (a :class:`dlcore.io.ModelFileError`)."""

    def __init__(self, path, dataset):
        import h5py

        from dlcore.io.guarded import ModelFileReader
        self.path = os.fspath(path)
        try:
            self.file, stream = _open_beside_this_process(self.path)
        except OSError as error:
            raise ValueError(f"{self.path}: not a readable HDF5 file ({error})") from None
        # the file, then the file object it is read through, closed with the last view of
        # the rows (no ResourceWarning for the file object) or by close()
        self._closer = weakref.finalize(self, _close_file, self.file, stream)
        try:
            # the file's size given: no walk of its global heap, which holds only the strings
            # and variable-length data that the checks below refuse unread
            self.guard = ModelFileReader(self.file, self.path, os.path.getsize(self.path))
            self.guard.fix = DATA_FILE_FIX
            self.guard.plugin_fix = DATA_PLUGIN_FIX
            self.guard.unread = "which dlcore does not read"
            item = self.guard.member(dataset, soft_links=True)
            if not isinstance(item, h5py.Dataset):
                dangling = ""
                if item is None and self.guard.dangling_link is not None:
                    link, target, absolute = self.guard.dangling_link
                    that_is = f", that is '{absolute}'" if absolute != target else ""
                    dangling = (f" ('{link}' is a soft link to '{target}'{that_is}, which the "
                                f"file does not hold)")
                raise self.guard.error(f"no dataset {dataset!r}{dangling}; its datasets: "
                                       f"{', '.join(self._dataset_names()) or 'none'}",
                                       "give one of them" + (", or point the link at one"
                                                             if dangling else ""))
            self.filters = self.guard.check_rows(item, dataset)
        except (OSError, KeyError, RuntimeError) as error:
            self.close()
            raise self._damaged(error) from None
        except BaseException:
            self.close()
            raise
        self.dataset = _with_chunk_cache(item) if item.chunks else item
        # bools stored as bit fields of 8 bits (HDF5's H5T_NATIVE_B8, as C and MATLAB programs
        # may write them): h5py reads uint8, each checked to be 0 or 1 and read as a bool
        self.bit_field = self.dataset.id.get_type().get_class() == h5py.h5t.BITFIELD
        # bool as h5py writes NumPy's (an enumeration the guard accepts only in that form):
        # binarised images stored as x > 127 are rows of 0/1 values
        numbers = (np.issubdtype(self.dataset.dtype, np.number)
                   and not np.iscomplexobj(np.empty(0, self.dataset.dtype)))
        if self.dataset.ndim < 1 or not (numbers or self.dataset.dtype == np.bool_):
            self.close()
            raise ValueError(f"{self.path}:{dataset}: rows of real numbers are needed, got "
                             f"{self.dataset.dtype} of shape {self.dataset.shape}")
        self.name = f"{self.path}:{dataset}"
        self.n_rows = self.dataset.shape[0]
        self.row_shape = self.dataset.shape[1:]
        self.dtype = (np.dtype(np.bool_) if self.bit_field
                      else self.dataset.dtype.newbyteorder("="))
        self.rows_read = 0
        self._checked_chunks = set()

    def close(self):
        """Close the file (the rows can no longer be read)."""
        self._closer()

    def _dataset_names(self, most=20):
        """The paths of the first ``most`` datasets of the file, group by group in file order,
        reached by hard links (at most MAX_GROUP_DEPTH deep, MAX_OBJECTS objects, each once:
        a file of link cycles lists what came before); soft and external links and names
        that are not UTF-8 are passed over."""
        import h5py

        from dlcore.io.guarded import MAX_GROUP_DEPTH, MAX_OBJECTS
        names, seen = [], set()
        pending = [(self.file, 0)]
        while pending and len(names) < most and len(seen) < MAX_OBJECTS:
            group, depth = pending.pop(0)
            for name in group:
                link = group.get(name, getlink=True) if isinstance(name, str) else None
                if not isinstance(link, h5py.HardLink):
                    continue
                item = group[name]
                if item.id in seen:
                    continue
                seen.add(item.id)
                if isinstance(item, h5py.Dataset):
                    names.append(item.name.lstrip("/"))
                elif isinstance(item, h5py.Group) and depth < MAX_GROUP_DEPTH:
                    pending.append((item, depth + 1))
        return names[:most]

    def identity(self):
        header = f"{self.dataset.name} {self.dataset.dtype.str} {self.dataset.shape}".encode()
        return file_identity(self.path, os.path.getsize(self.path), header)

    def read(self, indices):
        if len(indices) == 0:
            return np.empty((0,) + self.row_shape, self.dtype)
        try:
            if self.filters:
                # the chunk check reads the chunks' stored bytes: a damaged chunk index
                # (an address beyond the file) fails there first
                self._check_chunks_of(indices)
            values = self.dataset[indices]
        except (OSError, KeyError, RuntimeError) as error:
            raise self._damaged(error) from None
        if self.bit_field:
            values = self._bools(values)
        return values.astype(self.dtype, copy=False)

    def _bools(self, values):
        """The bit fields ``values`` (uint8) as bools, once each is known to be 0 or 1."""
        other = values[values > 1]
        if other.size:
            raise self.guard.error(f"dataset '{self.dataset.name.lstrip('/')}' holds bit "
                                   f"fields of values other than 0 and 1 (e.g. "
                                   f"{int(other[0])}), which are not bools",
                                   "write the rows again as bools or numbers with h5py, e.g. "
                                   "h5py.File(path, 'w').create_dataset(name, data=rows)")
        return values.astype(np.bool_)

    def _damaged(self, error):
        """The one-line error for h5py's ``error`` reading the file (a damaged block: h5py
        raises OSError, and KeyError or RuntimeError for some damaged headers); an error
        raised outside h5py is dlcore's own, and is raised as it is."""
        from dlcore.io.hdf5 import _raised_inside_h5py
        if not isinstance(error, OSError) and not _raised_inside_h5py(error):
            raise error
        reason = " ".join(str(error.args[0] if error.args else error).split())[:160]
        return self.guard.error(f"HDF5 cannot read it ({reason})", "the file is damaged: "
                                "copy it again, or write the rows again with h5py")

    def _check_chunks_of(self, indices):
        """Check the stored chunks that rows ``indices`` lie in, once each."""
        chunks = self.dataset.chunks
        first = np.unique(np.asarray(indices) // chunks[0]) * chunks[0]
        across = [range(0, length, chunk) for length, chunk in zip(self.row_shape, chunks[1:])]
        offsets = [offset for offset in itertools.product(first.tolist(), *across)
                   if offset not in self._checked_chunks]
        if offsets:
            self.guard.check_chunks(self.dataset, self.dataset.name.lstrip("/"), offsets)
            self._checked_chunks.update(offsets)


#: The most bytes of decompressed chunks an HDF5 data set keeps in memory (its chunk cache,
#: :func:`_with_chunk_cache`): a data set of up to this size is inflated once, not once a batch.
MAX_CHUNK_CACHE_BYTES = 64 * 2**20


def _with_chunk_cache(dataset):
    """``dataset`` opened again with a chunk cache sized to hold all its chunks, up to
    :data:`MAX_CHUNK_CACHE_BYTES`.

    HDF5 keeps the chunks it has read in a cache of 1 to 8 MiB a dataset (h5py's default):
    a shuffled epoch touches every chunk in nearly every batch, so a chunk of C rows was read
    and inflated again for each of its rows, C times an epoch (Fashion-MNIST gzipped in chunks
    of 64 rows: about 60 times). Its slots (a hash table) are about ten a chunk that fits,
    odd, as HDF5 advises. ``dataset`` itself is closed."""
    import h5py
    chunk_bytes = math.prod(dataset.chunks) * dataset.id.get_type().get_size()
    n_chunks = math.prod(-(-length // chunk) for length, chunk in
                         zip(dataset.shape, dataset.chunks))
    fitting = max(1, min(n_chunks, MAX_CHUNK_CACHE_BYTES // max(chunk_bytes, 1)))
    access = h5py.h5p.create(h5py.h5p.DATASET_ACCESS)
    access.set_chunk_cache(10 * fitting + 1, max(fitting * chunk_bytes, 2**20), 0.75)
    file_id, name = dataset.file.id, dataset.name.encode("utf-8")
    # HDF5 shares one cache among the opens of a dataset: the first's, while it is open
    dataset.id.close()
    return h5py.Dataset(h5py.h5d.open(file_id, name, access))


def _close_file(h5file, stream):
    h5file.close()
    stream.close()


def _open_beside_this_process(path):
    """``path`` opened read-only with h5py through a file object of its own, and that object.

    HDF5 refuses to open a file twice in one process with other locking settings ("file
    locking flag values don't match"), and the rows stay open for the whole training: opened
    by name, they made the user's own ``h5py.File(path)`` fail (the labels beside the images),
    and a notebook's open handle made them fail. HDF5 does not match a file object with a file
    it has open by name (``dlcore.load`` reads a model file so beside such a handle); reading
    through one costs about 0.2 s an epoch of Fashion-MNIST's 60,000 rows."""
    import h5py
    stream = open(path, "rb")  # noqa: SIM115 - kept open with the rows, as the file is
    try:
        return h5py.File(stream, "r"), stream
    except BaseException:
        stream.close()
        raise


def open_hdf5(path, dataset):
    """The rows of dataset ``dataset`` (e.g. ``"images"``) of the HDF5 file ``path`` as a
    :class:`LazyRows`: nothing is read until a batch is asked for. ValueError (one line)
    for a file that is not HDF5, a missing dataset (its datasets named), non-numeric values,
    and what :class:`Hdf5Reader` checks (links, storage, filters, declared size, chunks that
    would inflate beyond their size, unreadable rows)."""
    return LazyRows(Hdf5Reader(path, dataset))
