"""The IDX file format of MNIST: read and write, raw or gzip-compressed.

An IDX file (LeCun & Cortes, the MNIST page) is a big-endian header and then the data::

    offset  bytes  content
    0       2      0x00 0x00
    2       1      type code: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
                              0x0D float32, 0x0E float64
    3       1      ndim, the number of dimensions (at least 1 here)
    4       4*ndim the size of each dimension, unsigned 32-bit big-endian
    4+4*ndim ...   prod(dims) values, big-endian, C order (last index fastest)

``train-images-idx3-ubyte`` is type 0x08 with ndim 3: 60000 x 28 x 28 bytes.

Every check of :func:`read_idx` fails with one ``ValueError`` line that starts with the file's
path and says what is wrong, so that a damaged download or a wrong file is recognised at once.
"""
import contextlib
import gzip
import io
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from dlcore.datasets._atomic import atomic_writer

# type code -> big-endian dtype, as the format defines them.
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
TYPE_CODES = {dtype.newbyteorder("="): code for code, dtype in IDX_DTYPES.items()}
GZIP_MAGIC = b"\x1f\x8b"
MAX_DIMENSION = 2 ** 32 - 1

# Signatures of files that people hand to an IDX reader by mistake, to name them in the error.
FOREIGN_SIGNATURES = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"PK\x03\x04": "a zip archive",
    b"\x93NUMPY": "a NumPy .npy file",
    b"\x89HDF": "an HDF5 file",
    b"%PDF": "a PDF document",
    b"<!DOCTYPE": "an HTML page (a download error page?)",
    b"<html": "an HTML page (a download error page?)",
    b"<?xml": "an XML document (a download error page?)",
}


def _type_names():
    return ", ".join(f"0x{code:02X} {dtype.newbyteorder('=').name}"
                     for code, dtype in IDX_DTYPES.items())


def _describe_start(data):
    """'it starts with 89 50 4e 47 (a PNG image)': the first bytes, and what they look like."""
    shown = data[:8].hex(" ")
    for signature, meaning in FOREIGN_SIGNATURES.items():
        if data[:16].lower().startswith(signature.lower()):
            return f"it starts with {shown} ({meaning})"
    return f"it starts with {shown}"


#: A header's dimensions shown in a message: more are elided (a forged header may declare 255
#: of 4,294,967,295 each, whose shape and byte count filled 6,000 characters of one line).
SHOWN_DIMENSIONS = 8
#: The most digits of a byte count written out; a larger count is written as a power of ten.
SHOWN_DIGITS = 24


def _shape_text(dims):
    """``2x3x4``; a shape of more than :data:`SHOWN_DIMENSIONS` dimensions shows its first and
    last ones and their count."""
    if len(dims) > SHOWN_DIMENSIONS:
        half = SHOWN_DIMENSIONS // 2
        return (f"{_shape_text(dims[:half])}x...x{_shape_text(dims[-half:])} "
                f"({len(dims)} dimensions)")
    return "x".join(str(size) for size in dims)


def _count_text(count):
    """``1,234`` for a count of bytes; ``about 7.9e2461`` for one of more than
    :data:`SHOWN_DIGITS` digits (a Python integer: no float could hold it)."""
    digits = str(count)
    if len(digits) <= SHOWN_DIGITS:
        return f"{count:,}"
    return f"about {digits[0]}.{digits[1]}e{len(digits) - 1}"


def parse_header(data, file_size, source="<bytes>"):
    """Check the header of an IDX file against its size; return ``(dtype, dims, header
    size)``.

    Parameters
    ----------
    data : bytes, the start of the file: at least its header (all of it when shorter)
    file_size : int, the size in bytes of the whole (uncompressed) file
    source : str, the file's name, put at the start of every error message

    Raises
    ------
    ValueError
        For bad magic bytes, an unknown type code, zero dimensions, a truncated header or
        data section, or bytes after the data (one line, as :func:`parse_idx`).
    """
    dtype, dims, header_size = _header_fields(data, file_size, source)
    _check_data_size(dtype, dims, file_size - header_size, source)
    return dtype, dims, header_size


def _header_fields(data, file_size, source):
    """``(dtype, dims, header size)`` of the header at the start of ``data`` (a file of
    ``file_size`` bytes), checked as :func:`parse_header` checks it but for the size of the
    data after it."""
    if file_size < 4:
        raise ValueError(f"{source}: truncated: {file_size} bytes, too short for the 4-byte "
                         "IDX magic number")
    if data[0] != 0 or data[1] != 0:
        raise ValueError(f"{source}: not an IDX file: an IDX file starts with two zero bytes, "
                         f"but {_describe_start(data)}")
    type_code, ndim = data[2], data[3]
    if type_code not in IDX_DTYPES:
        raise ValueError(f"{source}: unknown IDX type code 0x{type_code:02X} in byte 2; "
                         f"known codes: {_type_names()}")
    if ndim == 0:
        raise ValueError(f"{source}: the IDX header declares 0 dimensions; at least 1 needed")
    header_size = 4 + 4 * ndim
    if min(len(data), file_size) < header_size:
        raise ValueError(f"{source}: truncated: the header declares {ndim} dimensions, which "
                         f"need {header_size} header bytes, but the file has only {file_size}")
    dims = struct.unpack(f">{ndim}I", data[4:header_size])
    return IDX_DTYPES[type_code], dims, header_size


def _data_bytes(dtype, dims):
    """The bytes of data a header of ``dims`` and ``dtype`` promises (a Python integer: a
    forged header cannot overflow it or make us allocate it)."""
    return math.prod(dims) * dtype.itemsize


def _promised_text(dtype, dims):
    """What a header of ``dims`` and ``dtype`` promises, in words (``2x3 uint8 = 6 bytes of
    data``)."""
    return (f"{_shape_text(dims)} {dtype.newbyteorder('=').name} = "
            f"{_count_text(_data_bytes(dtype, dims))} bytes of data")


def _check_data_size(dtype, dims, present, source, more=False):
    """A ValueError line unless ``present`` bytes of data are what the header promises;
    ``more``: bytes follow the ``present`` ones, left uninflated (counted as one)."""
    expected = _data_bytes(dtype, dims)
    what = _promised_text(dtype, dims)
    if present < expected:
        raise ValueError(f"{source}: truncated: the header promises {what} but only "
                         f"{present:,} follow")
    if more:
        raise ValueError(f"{source}: trailing garbage: the header promises {what} but more "
                         f"bytes follow in the gzip stream (not inflated: a few MB of gzip "
                         f"can inflate to gigabytes)")
    if present > expected:
        raise ValueError(f"{source}: {present - expected:,} bytes of trailing garbage: the "
                         f"header promises {what} but {present:,} follow")


def parse_idx(data, source="<bytes>"):
    """Decode the bytes of an (uncompressed) IDX file into a native-endian array.

    Parameters
    ----------
    data : bytes
        The whole file, header included.
    source : str
        The file's name, put at the start of every error message.

    Returns
    -------
    numpy.ndarray
        An array of shape ``dims`` and the dtype of the type code, in the machine's byte
        order, writeable (a copy, not a view of ``data``).

    Raises
    ------
    ValueError
        For bad magic bytes, an unknown type code, zero dimensions, a truncated header or
        data section, or bytes after the data.
    """
    dtype, dims, header_size = parse_header(data, len(data), source)
    values = np.frombuffer(data, dtype=dtype, count=math.prod(dims), offset=header_size)
    return values.astype(dtype.newbyteorder("="), copy=True).reshape(dims)


@contextlib.contextmanager
def _gzip_errors(source, size):
    """gzip's errors as one ValueError line naming ``source`` (``size`` bytes compressed)."""
    try:
        yield
    except EOFError as error:
        raise ValueError(f"{source}: truncated gzip data ({size:,} bytes): {error}") from None
    except (gzip.BadGzipFile, zlib.error) as error:
        # gzip reads trailing bytes as the start of another member: say so plainly.
        raise ValueError(f"{source}: damaged gzip data or trailing garbage after it: "
                         f"{error}") from None


#: The most bytes deflate inflates out of one (zlib's FAQ: 1032 to 1, each repeat of 258 bytes
#: costing two bits at least); a gzip file's headers, one per member, only lower it.
MAX_INFLATION_RATIO = 1032


def _inflate(compressed, size, source, write):
    """Inflate the gzip stream of an IDX file (``compressed``, a binary file of ``size``
    bytes), handing its bytes to ``write`` in pieces, and stop where its header says the data
    ends: a few MB of gzip can inflate to gigabytes (a decompression bomb), so what lies
    beyond that end is refused uninflated rather than held in memory or on disk. Every
    problem is one ValueError line, as :func:`parse_header` gives."""
    with _gzip_errors(source, size), gzip.GzipFile(fileobj=compressed, mode="rb") as stream:
        head = stream.read(4)
        if len(head) == 4:
            head += stream.read(4 * head[3])
        dtype, dims, _ = _header_fields(head, len(head), source)
        remaining = _data_bytes(dtype, dims)
        if remaining > MAX_INFLATION_RATIO * size:
            # its data cannot all be there: said before inflating, where a bomb of zeros
            # behind the header was inflated in full (a 4 MB file, 4 GB) to find it short
            raise ValueError(f"{source}: truncated: the header promises "
                             f"{_promised_text(dtype, dims)} but {size:,} bytes of gzip "
                             f"inflate to at most {MAX_INFLATION_RATIO * size:,}")
        write(head)
        while remaining:
            piece = stream.read(min(remaining, UNPACK_CHUNK_BYTES))
            if not piece:
                break
            write(piece)
            remaining -= len(piece)
        # one byte more, if any: also makes gzip check the stream's CRC and length
        more = stream.read(1) if not remaining else b""
    _check_data_size(dtype, dims, _data_bytes(dtype, dims) - remaining, source, bool(more))


def _decompress(compressed, source):
    pieces = []
    _inflate(io.BytesIO(compressed), len(compressed), source, pieces.append)
    return b"".join(pieces)


def read_idx(path):
    """Read an IDX file, gzip-compressed or raw, into a NumPy array.

    Compression is recognised by the gzip magic bytes ``1f 8b``, so a raw file named
    ``*.gz`` or a compressed one without the suffix still reads; a ``*.gz`` name whose
    content is neither gzip nor IDX gets an error that says so.

    Parameters
    ----------
    path : str or os.PathLike
        The file, e.g. ``train-images-idx3-ubyte.gz``.

    Returns
    -------
    numpy.ndarray
        Shape as in the header (MNIST images: ``(n, 28, 28)`` uint8; labels ``(n,)`` uint8),
        native byte order.

    Raises
    ------
    ValueError
        A one-line message naming the file and the problem (truncated, trailing garbage,
        not an IDX file, unknown type code, damaged gzip stream).
    FileNotFoundError
        When the file does not exist.
    """
    return decode_idx(Path(path).read_bytes(), os.fspath(path))


def decode_idx(content, source="<bytes>"):
    """Decode the bytes of an IDX file, gzip-compressed or raw (see :func:`read_idx`)."""
    if content.startswith(GZIP_MAGIC):
        return parse_idx(_decompress(content, source), source)
    if source.endswith(".gz") and not content.startswith(b"\x00\x00"):
        raise ValueError(f"{source}: not gzip data although the name ends in .gz, and not an "
                         f"IDX file either: {_describe_start(content)}")
    return parse_idx(content, source)


#: The longest IDX header: 4 bytes, then 4 per dimension, at most 255 dimensions.
MAX_HEADER_BYTES = 4 + 4 * 255
UNPACK_CHUNK_BYTES = 1 << 20


class IdxReader:
    """The rows of an uncompressed IDX file, memory-mapped past its header (the reader of a
    :class:`dlcore.lazy_rows.LazyRows`): only the pages of the rows read are loaded. Given
    ``content``, the bytes of such a file, the rows are read from those instead (``path``
    unused)."""

    def __init__(self, path, source, content=None):
        self.path, self.name = (None if content is not None else os.fspath(path)), source
        if content is None:
            file_size = os.path.getsize(self.path)
            with open(self.path, "rb") as file:
                self.header = file.read(MAX_HEADER_BYTES)
        else:
            file_size, self.header = len(content), content[:MAX_HEADER_BYTES]
        stored, dims, header_size = parse_header(self.header, file_size, source)
        self.header = self.header[:header_size]
        self.file_size = file_size
        self.n_rows, self.row_shape = dims[0], tuple(dims[1:])
        self.dtype = stored.newbyteorder("=")
        self.rows_read = 0
        if not math.prod(dims):
            self.values = np.zeros(dims, stored)
        elif content is None:
            self.values = np.memmap(self.path, dtype=stored, mode="r", offset=header_size,
                                    shape=tuple(dims))
        else:
            self.values = np.frombuffer(content, dtype=stored, count=math.prod(dims),
                                        offset=header_size).reshape(dims)

    def identity(self):
        from dlcore.lazy_rows import file_identity
        return file_identity(self.name, self.file_size, self.header)

    def read(self, indices):
        return self.values[indices].astype(self.dtype, copy=False)


def open_idx(path, unpack_to=None):
    """An IDX file as :class:`dlcore.lazy_rows.LazyRows`: rows read from disk when asked for.

    The file is checked as :func:`read_idx` checks it (the same one-line errors) from its
    header and size alone, and memory-mapped past the header. A gzip-compressed file cannot
    be read a row at a time: it is unpacked once, streaming, into ``unpack_to`` (default
    ``$XDG_CACHE_HOME/dlcore/unpacked``), under a name made of its own name, size and
    modification time, written atomically, and mapped from there. Where that default folder
    cannot be written (a read-only home, a full disk), the unpacked rows are held in memory
    instead, as :func:`read_idx` holds them.

    Parameters
    ----------
    path : str or os.PathLike, e.g. ``train-images-idx3-ubyte.gz``
    unpack_to : folder for the unpacked copy of a compressed file

    Returns
    -------
    LazyRows of shape ``dims`` and the stored dtype (``.unit_interval()`` gives float32 rows
    in [0, 1], as :func:`dlcore.datasets.to_unit_interval` gives of the eager array)
    """
    from dlcore.lazy_rows import LazyRows
    source = os.fspath(path)
    with open(source, "rb") as file:
        start = file.read(MAX_HEADER_BYTES)
    if start.startswith(GZIP_MAGIC):
        if unpack_to is not None:
            return LazyRows(IdxReader(_unpacked(source, unpack_to), source))
        try:
            return LazyRows(IdxReader(_unpacked(source, None), source))
        except OSError:
            # nowhere to keep the unpacked copy: a run on a read-only home still trains
            with open(source, "rb") as compressed:
                return LazyRows(IdxReader(None, source, content=_decompress(compressed.read(),
                                                                            source)))
    if source.endswith(".gz") and not start.startswith(b"\x00\x00"):
        raise ValueError(f"{source}: not gzip data although the name ends in .gz, and not an "
                         f"IDX file either: {_describe_start(start)}")
    return LazyRows(IdxReader(source, source))


def _unpacked(source, folder):
    """The path of the unpacked copy of the gzip file ``source`` (made when missing)."""
    if folder is None:
        from dlcore.datasets.mnist import cache_directory
        folder = cache_directory("unpacked")
    status = os.stat(source)
    name = Path(source).name.removesuffix(".gz")
    target = Path(folder) / f"{name}-{status.st_size}-{status.st_mtime_ns}"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(source, "rb") as compressed, atomic_writer(target) as file:
        _inflate(compressed, status.st_size, source, file.write)
    return target


def _check_writable(array):
    """The array as C-contiguous native data, or a TypeError/ValueError naming what is wrong."""
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in TYPE_CODES:
        raise TypeError(f"write_idx: dtype {array.dtype} has no IDX type code; allowed: "
                        f"{_type_names()}")
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"write_idx: an IDX file holds 1 to 255 dimensions, got an array "
                         f"of shape {array.shape}")
    if max(array.shape) > MAX_DIMENSION:
        raise ValueError(f"write_idx: each dimension must fit in 32 bits, got shape "
                         f"{array.shape}")
    return array, TYPE_CODES[native]


def format_idx(array):
    """The bytes of an uncompressed IDX file holding ``array`` (see :func:`write_idx`)."""
    array, type_code = _check_writable(array)
    header = struct.pack(f">2xBB{array.ndim}I", type_code, array.ndim, *array.shape)
    big_endian = array.astype(IDX_DTYPES[type_code], copy=False)
    return header + np.ascontiguousarray(big_endian).tobytes()


def gzip_deterministic(content):
    """gzip ``content`` (level 9) with a fixed header: no file name, mtime 0, OS 255.

    The header is built here rather than by :func:`gzip.compress` because its OS byte has
    changed between Python versions; the deflate stream is zlib's.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    deflated = compressor.compress(content) + compressor.flush()
    header = GZIP_MAGIC + bytes([8, 0, 0, 0, 0, 0, 2, 255])   # deflate, no flags, mtime 0
    trailer = struct.pack("<II", zlib.crc32(content), len(content) & 0xFFFFFFFF)
    return header + deflated + trailer


def write_idx(path, array):
    """Write ``array`` as an IDX file, gzip-compressed when ``path`` ends in ``.gz``.

    The gzip header stores no file name and a zero modification time, so the same array
    always gives the same bytes (and the same sha256). The file is written under a
    temporary name and renamed, so an interrupted write never leaves half a file.

    Parameters
    ----------
    path : str or os.PathLike
        Destination; ``*.gz`` selects compression.
    array : array_like
        1 to 255 dimensions, each below 2**32, of dtype uint8, int8, int16, int32, float32
        or float64 (any byte order: it is stored big-endian).

    Raises
    ------
    TypeError
        For a dtype without an IDX type code (int64, bool, complex, ...).
    ValueError
        For 0 or more than 255 dimensions, or a dimension of 2**32 or more.
    """
    content = format_idx(array)
    path = Path(path)
    if path.name.endswith(".gz"):
        content = gzip_deterministic(content)
    with atomic_writer(path) as file:
        file.write(content)
