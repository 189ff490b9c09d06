"""The guarded reading layer: every byte a model file gives dlcore goes through here.

A model file may be damaged (a cut copy, a flipped bit) or hostile (written to hurt whoever opens
it). Reading one must never run code named in it, never allocate more memory than its own
contents justify, never recurse without bound, and never fail with anything but a
:class:`~dlcore.io.errors.ModelFileError` whose one line names the file, the problem and what to
do. :class:`ModelFileReader` is the only way :mod:`dlcore.io.hdf5` (and any later format, such as
a Keras import) reads an HDF5 file:

- ``dataset(path, shape, kinds)`` checks a dataset's declared shape and dtype against the shape
  the hyperparameters imply *before* reading it, then refuses NaN and infinity, and float64
  values beyond the range of the model's parameters (float32 unless its loader says float64:
  :attr:`ModelFileReader.parameter_type`), where they would be infinite;
- ``read_array(dataset, path)`` reads any other dataset only after checking its dtype (numbers
  only: no strings, compound or complex types), its rank, its storage (no virtual or external
  data, no filter plugins, scale-offset and N-bit parameters that fit the dataset, no stored
  chunk inflating beyond its chunk's size: :meth:`~ModelFileReader.check_chunks`) and its
  declared size against what the file could hold: an uncompressed array cannot be larger than
  the file, and all arrays together neither;
- ``attribute(owner, name)`` reads a single number or string, checking the attribute's type and
  size first; the global heap where HDF5 keeps strings is checked once, when the reader is
  made (:func:`global_heap_problem`);
- ``json_attribute(owner, name)`` refuses JSON over a size limit or nested deeper than a limit
  (found by scanning the brackets, without recursion) before ``json.loads`` sees it, and refuses
  ``NaN``, ``Infinity`` and numbers that overflow a float;
- ``group(path)`` / ``member(path)`` follow hard links only (a soft or external link could point
  outside the file or make a cycle; a data file's reader has ``member`` follow soft links inside
  the file too, a bounded number of them); ``walk(group)``, the one traversal (``read_tree`` and
  ``describe`` use it), bounds nesting depth and the objects of the whole file and visits each
  object once: a second hard link to an object is refused, so a DAG of links cannot multiply
  the work. A dataset read twice (by a layout check, then by ``read_tree``) is charged once
  against the file-size budget;
- ``names(group, where)`` lists a group's members for every traversal (``walk``, the history,
  Keras's layer groups): h5py hands back a name that is not valid UTF-8 as ``bytes``, which no
  path lookup finds again, so such a name is refused there, once for every reader;
- ``attribute_names(owner)`` lists the attributes that ``read_tree`` reads: one whose name is
  not valid UTF-8 (``bytes`` from h5py) is left out unread, since no state that
  ``dlcore.save`` writes can hold one, as a model ignores the attributes it does not read.

The limits are module constants; the checks of the hyperparameters of each model class are in
:mod:`dlcore.io.layouts`.
"""
from __future__ import annotations

import json
import math
import mmap
import os
import re
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

import h5py
import numpy as np

from dlcore.io.errors import ModelFileError

#: The largest JSON attribute read (the hyperparameters of a deep network are a few KiB).
MAX_JSON_BYTES = 4 * 2**20
#: The deepest nesting of JSON arrays and objects read (a network config nests about 6 deep).
MAX_JSON_DEPTH = 64
#: The deepest nesting of HDF5 groups read (a model file nests at most 6 deep).
MAX_GROUP_DEPTH = 16
#: The most groups and datasets read from one file.
MAX_OBJECTS = 20_000
#: The most attributes read from one group or dataset.
MAX_ATTRIBUTES = 1_000
#: The type of every parameter dlcore holds: a float array read as parameters must fit it.
FLOAT32 = np.dtype(np.float32)
#: The largest rank of a dataset (an NCHW kernel has 4).
MAX_NDIM = 8
#: Filtered (compressed) data may expand by at most this factor over its size in the file...
MAX_COMPRESSION_RATIO = 1_000
#: ... and, beyond :data:`SMALL_INFLATION_BYTES` in all, by at most
#: :data:`MAX_LARGE_INFLATION_RATIO` (Keras's own archive check allows 100): real parameters
#: barely compress (Keras stores its archives' members, and neither dlcore nor Keras compresses
#: an HDF5 dataset), so a file of 1.6 MB inflating to 1.6 GB holds zeros or a bomb, not a model.
SMALL_INFLATION_BYTES = 64 * 2**20
MAX_LARGE_INFLATION_RATIO = 100
#: The largest chunk of a dataset read, unless the dataset itself is larger: HDF5 inflates a
#: whole chunk to read any element of it, and a chunk may be declared far larger than its
#: dataset (up to 4 GiB for a dataset of one number; h5py and Keras write chunks of at most
#: 1 MiB).
MAX_CHUNK_BYTES = 16 * 2**20
#: A dataset may be stored in at most this many chunks, or one chunk per
#: :data:`MIN_BYTES_PER_CHUNK` of its data if more: HDF5 spends kilobytes of memory on every
#: chunk it reads (a 2.7 MB file storing a 400 x 120 kernel in 48,000 chunks of one number
#: took 182 MiB to read). dlcore and Keras write their arrays unchunked, and h5py's automatic
#: chunks hold kilobytes each (a dataset grown row by row from one row can have smaller ones).
MAX_SMALL_CHUNKS = 1024
MIN_BYTES_PER_CHUNK = 4096
#: A filter's output may exceed its chunk's bytes by this much: Fletcher-32's checksum and
#: scale-offset's header are kept with the data they guard. A deflated chunk inflating to
#: more is refused unread: HDF5's deflate filter doubles its buffer until the stream ends,
#: whatever the chunk's size (a chunk of 100 numbers inflating to 1 GiB of zeros, 1 MB in the
#: file, took 1.1 GiB of memory), and its SZIP filter allocates the size a chunk's first four
#: bytes declare (up to 4 GiB).
CHUNK_SLACK_BYTES = 1024
#: The most soft links followed to reach one dataset of a data file (HDF5's own bound on
#: the links it follows in one lookup).
MAX_SOFT_LINKS = 16
#: h5py's LZF filter.
FILTER_LZF = 32000
#: HDF5's own filters and h5py's LZF: anything else would make HDF5 load a filter plugin.
BUILTIN_FILTERS = frozenset({h5py.h5z.FILTER_DEFLATE, h5py.h5z.FILTER_SHUFFLE,
                             h5py.h5z.FILTER_FLETCHER32, h5py.h5z.FILTER_NBIT,
                             h5py.h5z.FILTER_SCALEOFFSET, FILTER_LZF})
#: The filter plugins h5py users meet (those of hdf5plugin, registered with The HDF Group),
#: named in the refusal of a dataset stored through one.
PLUGIN_FILTER_NAMES = {305: "LZO", 307: "bzip2", 32001: "Blosc", 32004: "LZ4",
                       32008: "Bitshuffle", 32013: "ZFP", 32015: "Zstandard", 32017: "SZ",
                       32018: "FCIDECOMP", 32024: "SZ3", 32026: "Blosc2", 32028: "SPERR"}
#: What to do about a model file stored through a filter plugin: h5repack keeps the groups
#: and attributes, but comes with HDF5's tools, not with h5py (pip's h5py has no commands);
#: the h5py way copies them itself (docs/hdf5-format.md, "Reading a file without dlcore").
PLUGIN_FIX = ("convert the file to gzip where the plugin is installed: h5repack -f GZIP=4 "
              "in.h5 out.h5 (HDF5's tools, not installed with h5py: apt install hdf5-tools), "
              "or with h5py after pip install hdf5plugin and import hdf5plugin, copying each "
              "dataset with compression='gzip' and the attributes (docs/hdf5-format.md shows "
              "how); then open the copy")
#: HDF5's SZIP filter (libaec), when this HDF5 can decode it: HDF5 divides by its parameters
#: unchecked (a pixels-per-block of 0 killed the process with SIGFPE), so they must be those
#: HDF5 derives from the dataset (:meth:`ModelFileReader._check_szip`); without a decoder it
#: is refused as unsupported.
SZIP_DECODES = bool(h5py.h5z.filter_avail(h5py.h5z.FILTER_SZIP)) and bool(
    h5py.h5z.get_filter_info(h5py.h5z.FILTER_SZIP) & h5py.h5z.FILTER_CONFIG_DECODE_ENABLED)
#: SZIP's option bits as HDF5 stores them: K13 and raw always, the byte order of the type,
#: and the coding the writer chose (entropy coding, nearest neighbour), free.
SZIP_ALWAYS, SZIP_LSB, SZIP_MSB, SZIP_CODINGS = 1 | 128, 8, 16, 4 | 32
#: HDF5's bounds on SZIP's pixels: at most 32 a block, and 128 blocks (4,096 pixels) a scanline.
SZIP_MAX_PIXELS_PER_BLOCK, SZIP_MAX_BLOCKS_PER_SCANLINE = 32, 128

#: HDF5 type classes whose description h5py may decode: numbers, strings (attributes, names),
#: enumerations (h5py stores NumPy's bool as one: any other enumeration is refused) and
#: compound types (complex numbers are one; the callers refuse them by their NumPy dtype). Any
#: other class is refused before h5py decodes it (it decodes references and variable-length
#: sequences into Python objects), and a type whose bytes were damaged past decoding (a string
#: encoding of 15: h5py's TypeError) is refused in one line.
_READ_TYPE_CLASSES = frozenset({h5py.h5t.INTEGER, h5py.h5t.FLOAT, h5py.h5t.STRING,
                                h5py.h5t.ENUM, h5py.h5t.COMPOUND})
_TYPE_CLASS_NAMES = {h5py.h5t.REFERENCE: "references", h5py.h5t.VLEN:
                     "variable-length sequences", h5py.h5t.COMPOUND: "a compound type",
                     h5py.h5t.ARRAY: "an array type", h5py.h5t.OPAQUE: "opaque bytes",
                     h5py.h5t.BITFIELD: "bit fields", h5py.h5t.TIME: "a time type",
                     h5py.h5t.ENUM: "an enumeration"}
#: The character sets of HDF5 strings: h5py decodes no other.
_STRING_CHARSETS = frozenset({h5py.h5t.CSET_ASCII, h5py.h5t.CSET_UTF8})
#: What h5py raises when it cannot describe a type: TypeError for an unknown string encoding,
#: the others for HDF5's own failures, an unreadable type header among them (h5py reports an
#: HDF5 I/O failure as an OSError).
_TYPE_ERRORS = (TypeError, ValueError, KeyError, RuntimeError, OSError)

#: What to do about a file that is damaged or was not written by dlcore.
DAMAGED_FIX = "the file is damaged or was not written by dlcore: save the model again"
#: What to do about weights that do not fit the model they are loaded into.
OTHER_MODEL_FIX = ("the weights are another model's (or the file is damaged): build the model "
                   "they were saved from, with the same layers and sizes, or load the whole "
                   "model with dlcore.load")
DIVERGED_FIX = ("a model that diverged was saved: train it again with a lower learning rate, "
                "or load an earlier file")

_JSON_SYNTAX = re.compile(r'[\[\]{}"\\]')


def size_text(n_bytes: int) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    value = float(n_bytes)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def shape_text(shape: Iterable[int | None]) -> str:
    """``(3,)``, ``(any, 4)``: a shape as in messages (``None`` matches any length)."""
    parts = ["any" if length is None else str(length) for length in shape]
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


def inflation_limit(stored_bytes: int) -> int:
    """The most bytes that ``stored_bytes`` of compressed data (a zip member, the filtered
    datasets of an HDF5 file) may inflate to: :data:`MAX_COMPRESSION_RATIO` times as much, and
    no more than :data:`SMALL_INFLATION_BYTES` or :data:`MAX_LARGE_INFLATION_RATIO` times as
    much, whichever is more."""
    stored_bytes = max(int(stored_bytes), 1)
    return min(MAX_COMPRESSION_RATIO * stored_bytes,
               max(SMALL_INFLATION_BYTES, MAX_LARGE_INFLATION_RATIO * stored_bytes))


def json_nesting_depth(text: str, limit: int) -> int:
    """The nesting depth of the JSON arrays and objects in ``text``, without recursion.

    Brackets inside strings do not count. The scan stops as soon as the depth exceeds
    ``limit`` and returns that depth, so a hostile text of millions of brackets costs little.
    """
    depth = deepest = 0
    in_string = False
    escaped = -1
    for match in _JSON_SYNTAX.finditer(text):
        position, char = match.start(), match.group()
        if position == escaped:
            continue
        if in_string:
            if char == "\\":
                escaped = position + 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if depth > limit:
                break
        elif char in "]}":
            depth -= 1
    return deepest


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} overflows a float")
    return value


def parse_json(text: str, limit_bytes: int = MAX_JSON_BYTES,
               limit_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` of untrusted text within limits; ValueError naming the problem otherwise.

    Refuses text longer than ``limit_bytes`` characters, nesting deeper than ``limit_depth``,
    ``NaN``/``Infinity``, floats that overflow, integers of more than 4300 digits and strings
    holding a lone surrogate (``"\\udcaa"``, or a byte that is not UTF-8 as h5py decodes it):
    no HDF5 file can store such a name, so a model loaded with one could not be saved.
    """
    if len(text) > limit_bytes:
        raise ValueError(f"it is {size_text(len(text))} long, more than the "
                         f"{size_text(limit_bytes)} a model file needs")
    depth = json_nesting_depth(text, limit_depth)
    if depth > limit_depth:
        raise ValueError(f"it nests arrays or objects more than {limit_depth} deep")
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except (ValueError, RecursionError) as error:  # JSONDecodeError is a ValueError
        problem = str(error)
        if "integer string conversion" in problem:
            # Python's own limit on int() of long digit strings, whose message advises
            # sys.set_int_max_str_digits(): no fix for a file's reader
            problem = "it holds an integer of more than 4300 digits"
        raise ValueError(problem[:200]) from None
    problem = _lone_surrogate(text, value)
    if problem is not None:
        raise ValueError(problem)
    return value


#: A JSON escape of a surrogate code point: only text with one (or with a raw surrogate) needs
#: the exact check, so that the check of a plain config costs one scan.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _lone_surrogate(text: str, value: Any) -> str | None:
    """What is wrong with the first string of ``value`` (parsed from ``text``) that holds a
    lone surrogate, or None. A pair of escapes is one character, fine."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        pass
    else:
        if _SURROGATE_ESCAPE.search(text) is None:
            return None
    pending = [value]
    while pending:   # flat, as the depth of a hostile config is only bounded, not small
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as error:
                start = max(0, error.start - 30)
                return (f"it holds the string {ascii(item[start:error.start + 30])}, whose "
                        f"'\\u{ord(item[error.start]):04x}' is a lone surrogate, not a "
                        f"character: no file can store it")
    return None


#: The signature of an HDF5 global heap collection, where HDF5 keeps variable-length data
#: (every string attribute h5py writes, a model file's JSON among them), its header's size and
#: its least size (HDF5's H5HG_MINSIZE); an object's header is 16 bytes too.
GLOBAL_HEAP_SIGNATURE = b"GCOL"
GLOBAL_HEAP_HEADER_BYTES = 16
GLOBAL_HEAP_MIN_BYTES = 4096
#: At most this many objects in one collection: 65,535 indexed (16-bit) and its free space.
MAX_GLOBAL_HEAP_OBJECTS = 2**16 + 1


def global_heap_problem(content: Any) -> str | None:
    """What is wrong with the first damaged global heap collection of the HDF5 file
    ``content`` (bytes, or a memory map of the file), or None.

    HDF5 walks a collection's objects trusting each one's size: a free-space object (index
    0) of 0 bytes makes it loop forever, holding the interpreter (Ctrl-C does not stop it), at
    the first string attribute read. A collection is found by its signature, version 1 and
    reserved zeros, and checked as HDF5 walks it: its objects must tile it, at most 65,536
    (HDF5's indexes are 16-bit). HDF5's collections never overlap, and each object's header
    takes 16 bytes, so a file's objects are at most one per 16 bytes of it: a file whose
    signatures start collections inside collections (a 4 MB file of them took the walk an hour
    when each was walked in full) is refused when its objects pass that count, which keeps
    the check linear in the file's size.
    """
    objects_left = len(content) // GLOBAL_HEAP_HEADER_BYTES + MAX_GLOBAL_HEAP_OBJECTS
    position = content.find(GLOBAL_HEAP_SIGNATURE)
    while position >= 0:
        header = bytes(content[position:position + GLOBAL_HEAP_HEADER_BYTES])
        size = int.from_bytes(header[8:16], "little")
        if len(header) == GLOBAL_HEAP_HEADER_BYTES and header[4:8] == b"\x01\x00\x00\x00" \
                and GLOBAL_HEAP_MIN_BYTES <= size <= len(content) - position:
            problem, walked = _collection_problem(content, position, size, objects_left)
            objects_left -= walked
            if problem is None and objects_left <= 0:
                problem = (f"its collections hold more objects than a file of {len(content)} "
                           f"bytes has room for (they overlap, which HDF5 never writes)")
            if problem is not None:
                return (f"its global heap (where HDF5 keeps strings) at byte {position} is "
                        f"damaged: {problem}")
        position = content.find(GLOBAL_HEAP_SIGNATURE, position + 1)
    return None


def _collection_problem(content: Any, start: int, size: int,
                        objects_left: int) -> tuple[str | None, int]:
    """What is wrong with the global heap collection of ``size`` bytes at ``start`` (or None),
    and the number of its objects walked, at most ``objects_left``."""
    end, position = start + size, start + GLOBAL_HEAP_HEADER_BYTES
    for walked in range(min(MAX_GLOBAL_HEAP_OBJECTS, objects_left)):
        if position + GLOBAL_HEAP_HEADER_BYTES > end:
            # HDF5 takes a tail too short for an object's header as free space
            return None, walked
        index = int.from_bytes(content[position:position + 2], "little")
        length = int.from_bytes(content[position + 8:position + 16], "little")
        # as HDF5 steps: free space (index 0) by its size alone, an object by its header
        # and its data padded to 8 bytes
        step = length if index == 0 else GLOBAL_HEAP_HEADER_BYTES + -(-length // 8) * 8
        if step == 0:
            return (f"a free-space object of 0 bytes at byte {position}, on which HDF5 "
                    f"would loop forever"), walked
        if position + step > end:
            return f"the object at byte {position} runs past the collection's end", walked
        position += step
        if position == end:
            return None, walked + 1
    if objects_left < MAX_GLOBAL_HEAP_OBJECTS:
        return None, objects_left   # the caller refuses the file: its objects are too many
    return "it holds more objects than HDF5 can index", MAX_GLOBAL_HEAP_OBJECTS


class ModelFileReader:
    """Guarded access to an open HDF5 file (see the module docstring).

    Parameters
    ----------
    h5file : h5py.File, open for reading
    filename : str, the path named in every message
    file_size : int, the file's size in bytes (by default that of the file ``filename``; given
        for an HDF5 file read out of an archive)
    stored_size : int, the bytes the file takes where it is stored (by default ``file_size``;
        for an HDF5 file inflated out of an archive, its compressed size there): its filtered
        datasets may inflate to :func:`inflation_limit` of it in all, so that a file inflated
        from a zip member cannot inflate as much again
    content : bytes-like, the file's bytes when it is not at the path ``filename`` (an archive's
        member), for the check of its global heap (:func:`global_heap_problem`) that a file at
        a path gets from its path
    """

    def __init__(self, h5file: h5py.File, filename: str, file_size: int | None = None,
                 stored_size: int | None = None, content: Any = None):
        self.file = h5file
        self.filename = filename
        self.file_size = os.path.getsize(filename) if file_size is None else file_size
        self.stored_size = self.file_size if stored_size is None else stored_size
        self._bytes_read = 0
        self._compressed_bytes_read = 0
        self._objects_read = 0
        # object id -> the path it was first reached by: a second hard link to a group or
        # dataset is refused (dlcore never writes one), so a DAG of links costs one visit per
        # object, and the byte budget is charged once per dataset however often it is read.
        self._first_paths: dict[Any, str] = {}
        self._charged: set = set()
        #: the fix an error names unless it names its own: a model file's is
        #: :data:`DAMAGED_FIX`; weights read into a model the caller built
        #: (``load_weights``) may be another model's (:data:`OTHER_MODEL_FIX`)
        self.fix = DAMAGED_FIX
        #: what follows what the reader refuses as foreign to a model file: a data file's
        #: reader (:class:`dlcore.lazy_rows.Hdf5Reader`) says "which dlcore does not read",
        #: since dlcore writes no data file
        self.unread = "which dlcore never writes"
        #: the fix of a dataset stored through a filter plugin (a data file's reader names
        #: the rewrite of its rows)
        self.plugin_fix = PLUGIN_FIX
        #: the type of the parameters the arrays read go into: float64 values beyond its
        #: range are refused (infinite there); a float64 model's loader sets float64
        self.parameter_type = FLOAT32
        #: the soft link whose missing target made :meth:`member`'s last path absent
        self.dangling_link: tuple[str, str, str] | None = None
        if content is not None:
            problem = global_heap_problem(content)
            if problem is not None:
                raise self.error(problem)
        elif file_size is None:
            self._check_global_heaps()

    def _check_global_heaps(self) -> None:
        """Refuse a file whose global heap would make HDF5 loop forever (see
        :func:`global_heap_problem`), before any string is read."""
        if self.file_size == 0:
            return
        try:
            with open(self.filename, "rb") as stream, \
                    mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as content:
                problem = global_heap_problem(content)
        except (OSError, ValueError):
            return   # not a mappable file (a pipe): HDF5's own reading decides
        if problem is not None:
            raise self.error(problem)

    # -- errors ---------------------------------------------------------------------------
    def error(self, problem: str, fix: str | None = None) -> ModelFileError:
        """The ModelFileError ``<file>: <problem>; <fix>`` (to raise; by default the
        reader's :attr:`fix`)."""
        return ModelFileError(self.filename,
                              f"{self.filename}: {problem}; {self.fix if fix is None else fix}")

    # -- navigation -----------------------------------------------------------------------
    def member(self, path: str, soft_links: bool = False) -> Any:
        """The group or dataset at ``path`` (``"rbms/rbm_0/W"``), or None when absent.

        Only hard links are followed: a soft link could form a cycle and an external link
        would open another file, and dlcore writes neither. ``soft_links``: follow soft links
        too (a data file's ``images -> /train/x``, as h5py users write them), at most
        :data:`MAX_SOFT_LINKS` of them, so that a cycle of them ends in one line. When
        ``path`` is absent because a soft link's target is, :attr:`dangling_link` is that
        link, its target as stored and the path that stands for (``("/train/images",
        "images_v1", "/train/images_v1")``: a relative target is looked up from the link's
        group), else None.
        """
        # the names still to look up, the next one last (a path read from a file may be long:
        # taking from the end keeps the walk linear in it)
        parts = [part for part in reversed(path.split("/")) if part not in ("", ".")]
        item: Any = self.file
        followed = 0
        self.dangling_link = None
        # the last soft link followed, and the length ``parts`` has once its target is found
        last_link: tuple[str, str, str] | None = None
        target_found_at = 0
        while parts:
            part = parts.pop()
            link = None
            if isinstance(item, h5py.Group):
                if not _encodes_as_utf8(part):
                    # a name read from the file (a Keras weight_names entry) whose bytes are
                    # not UTF-8: h5py gave it with surrogates, which it cannot encode to look
                    # it up
                    shown = path.encode("utf-8", errors="backslashreplace").decode("ascii")
                    raise self.error(f"the file names '{shown}', which is not a valid UTF-8 "
                                     f"name and {self.unread}")
                link = item.get(part, getlink=True)
            if link is None:
                if last_link is not None and len(parts) >= target_found_at:
                    self.dangling_link = last_link
                return None
            where = f"{item.name.rstrip('/')}/{part}"
            if soft_links and isinstance(link, h5py.SoftLink):
                followed += 1
                if followed > MAX_SOFT_LINKS:
                    raise self.error(f"'{path}' goes through more than {MAX_SOFT_LINKS} soft "
                                     f"links (a cycle of them?)")
                # a relative target is looked up from the link's own group
                base = [] if link.path.startswith("/") else item.name.split("/")
                target = [name for name in base + link.path.split("/") if name not in ("", ".")]
                if len(target) > MAX_GROUP_DEPTH + 1:
                    # HDF5 looks a name up in tens of microseconds: a file's path of a
                    # million names through a hard link back to its own group took 30 s
                    raise self.error(f"'{where}' is a soft link to a path of {len(target)} "
                                     f"names, deeper than the {MAX_GROUP_DEPTH} levels groups "
                                     f"nest in a file dlcore reads")
                last_link = (where, link.path, "/" + "/".join(target))
                target_found_at = len(parts)
                parts.extend(reversed(target))
                item = self.file
                continue
            if soft_links and isinstance(link, h5py.ExternalLink):
                raise self.error(f"'{where}' is an external link to '{link.path}' in the file "
                                 f"'{link.filename}', {self.unread} (it opens no other file)",
                                 f"open that file's '{link.path}' itself")
            if not isinstance(link, h5py.HardLink):
                raise self.error(f"'{where}' is a {type(link).__name__} (to "
                                 f"{getattr(link, 'filename', '') or ''}"
                                 f"{getattr(link, 'path', '')}), {self.unread}")
            item = item[part]
        return item

    def group(self, path: str, required: bool = True) -> h5py.Group | None:
        """The group at ``path``; a ModelFileError when it is missing (if ``required``) or is
        not a group."""
        item = self.member(path)
        if item is None:
            if required:
                raise self.error(f"group '{path}' is missing")
            return None
        if not isinstance(item, h5py.Group):
            raise self.error(f"'{path}' should be a group; found a {_kind_of(item)}")
        return item

    def names(self, group: h5py.Group, where: str) -> Iterator[str]:
        """The names of the members of ``group`` (at path ``where``), in file order.

        h5py gives a link name that is not valid UTF-8 (written by a non-Python HDF5 writer in
        Latin-1, or by h5py's low-level API) as ``bytes``; such a name can be neither looked up
        as a path nor printed, and dlcore never writes one, so it is refused here.
        """
        for name in group:
            if not isinstance(name, str):
                shown = name_text(name)
                prefix = f"{where.strip('/')}/" if where.strip("/") else ""
                raise self.error(f"'{prefix}{shown}' is not a valid UTF-8 name, "
                                 f"{self.unread}")
            yield name

    # -- datasets -------------------------------------------------------------------------
    def dataset(self, path: str, shape: tuple, kinds: str = "f",
                required: bool = True) -> h5py.Dataset | None:
        """The dataset at ``path`` after checking its declared shape and dtype, unread.

        Parameters
        ----------
        path : str
        shape : tuple of int or None (None accepts any length on that axis)
        kinds : str, the allowed NumPy dtype kinds (``"f"`` float, ``"iu"`` integer, ``"b"``)
        required : bool, False returns None for a missing dataset
        """
        item = self.member(path)
        if item is None:
            if required:
                raise self.error(f"dataset '{path}' is missing (expected shape "
                                 f"{shape_text(shape)})")
            return None
        if not isinstance(item, h5py.Dataset):
            raise self.error(f"'{path}' should be a dataset of shape {shape_text(shape)}; "
                             f"found a {_kind_of(item)}")
        declared = item.shape
        if declared is None or len(declared) != len(shape) or any(
                expected is not None and actual != expected
                for actual, expected in zip(declared, shape)):
            raise self.error(f"dataset '{path}' has shape {shape_text(declared or ())}; "
                             f"expected {shape_text(shape)}")
        self.check_dtype(item, path, kinds)
        return item

    def element_dtype(self, object_id: Any, label: str, bit_fields: bool = False) -> np.dtype:
        """The NumPy dtype of the elements of a dataset or attribute (``object_id``: its
        low-level id, ``dataset.id`` or ``attrs.get_id(name)``; ``label`` names it in
        messages), once its HDF5 type is known to be a number, a string of a known encoding,
        h5py's bool or a compound type (for the caller to refuse by its dtype): anything else
        (references, variable-length sequences, other enumerations, a type damaged past
        decoding) is refused in one line before h5py decodes it.

        ``bit_fields``: accept bit fields of 8 bits too (what some writers store bools as),
        which h5py reads as uint8 (the caller reads them as bools); wider ones are refused."""
        try:
            type_id = object_id.get_type()
            type_class = type_id.get_class()
            charset = type_id.get_cset() if type_class == h5py.h5t.STRING else None
            size = type_id.get_size()
        except _TYPE_ERRORS as error:
            raise self._undecodable(label, error) from None
        if bit_fields and type_class == h5py.h5t.BITFIELD:
            if size != 1:
                raise self.error(f"{label} holds bit fields of {8 * size} bits; dlcore reads "
                                 f"bit fields of 8 bits only, as bools")
            return np.dtype(np.uint8)
        if type_class not in _READ_TYPE_CLASSES:
            raise self.error(f"{label} holds "
                             f"{_TYPE_CLASS_NAMES.get(type_class, 'an unknown HDF5 type')}, "
                             f"{self.unread}")
        if charset is not None and charset not in _STRING_CHARSETS:
            raise self.error(f"{label} holds strings in an unknown character set (HDF5 code "
                             f"{charset})")
        try:
            dtype = object_id.dtype
        except _TYPE_ERRORS as error:
            raise self._undecodable(label, error) from None
        if type_class == h5py.h5t.ENUM and h5py.check_enum_dtype(dtype) is not None:
            raise self.error(f"{label} holds an enumeration, {self.unread}")
        return dtype

    def _undecodable(self, label: str, error: Exception) -> ModelFileError:
        """h5py's own failure to decode a type's description (its bytes damaged)."""
        # (a conversion after a conditional expression applies to the whole of it: the text
        # is chosen first, so that h5py's message is not shown as a quoted repr)
        reason = str(error).splitlines()[0][:120] if str(error) else repr(error)
        return self.error(f"{label} has an HDF5 type that cannot be decoded ({reason})")

    def check_dtype(self, dataset: h5py.Dataset, path: str, kinds: str = "biuf") -> None:
        """Refuse a dataset whose element type is not a number of one of ``kinds``."""
        dtype = self.element_dtype(dataset.id, f"dataset '{path}'")
        if dtype.fields is not None or h5py.check_vlen_dtype(dtype) is not None \
                or h5py.check_string_dtype(dtype) is not None or dtype.kind not in "biuf" \
                or dtype.itemsize > 8:
            raise self.error(f"dataset '{path}' holds {_dtype_text(dtype)}; a model file holds "
                             f"bool, integer and float arrays only")
        if dtype.kind not in kinds:
            raise self.error(f"dataset '{path}' has dtype {dtype}; expected "
                             f"{' or '.join(_KIND_NAMES[kind] for kind in kinds)}")

    def read_array(self, dataset: h5py.Dataset, path: str, finite: bool = True) -> np.ndarray:
        """Read ``dataset`` once its storage and declared size are known to be sound.

        ``finite``: refuse NaN and infinity in a float array (parameters must be finite).
        """
        shape = dataset.shape
        if shape is None:
            raise self.error(f"dataset '{path}' has no shape (an empty dataspace)")
        if len(shape) > MAX_NDIM:
            raise self.error(f"dataset '{path}' has {len(shape)} dimensions; a model file "
                             f"uses at most {MAX_NDIM}")
        self.check_dtype(dataset, path)
        filters = self._check_storage(dataset, path)
        n_bytes = math.prod(shape) * stored_itemsize(dataset)
        if filters:
            # HDF5 inflates every chunk the array touches whole, the part of the edge chunks
            # beyond the array included: that is what reading it costs.
            n_bytes = self._chunked_bytes(dataset, path, n_bytes)
        charged = dataset.id in self._charged
        if charged:
            budget = math.inf   # read (and counted) before, e.g. by a layout check
        elif filters:
            budget = inflation_limit(self.stored_size) - self._compressed_bytes_read
        else:
            budget = self.file_size - self._bytes_read
        if n_bytes > budget:
            raise self.error(f"dataset '{path}' declares shape {shape_text(shape)} of "
                             f"{dataset.dtype} ({size_text(n_bytes)}), more than this "
                             f"{size_text(self.file_size)} file can hold"
                             + (f" (its compressed data may inflate to "
                                f"{size_text(inflation_limit(self.stored_size))} in all)"
                                if filters else ""))
        self._check_chunk_count(dataset, path, n_bytes)
        if filters and not charged:
            self.check_chunks(dataset, path)
        if not charged:
            self._charged.add(dataset.id)
            if filters:
                self._compressed_bytes_read += n_bytes
            else:
                self._bytes_read += n_bytes
        array = np.asarray(dataset[()])
        if finite and array.dtype.kind == "f":
            bad = array.size - int(np.count_nonzero(np.isfinite(array)))
            if bad:
                raise self.error(f"dataset '{path}' holds {bad} NaN or infinite value"
                                 f"{'s' if bad > 1 else ''}", DIVERGED_FIX)
            target = self.parameter_type
            if array.dtype.itemsize > target.itemsize and array.size:
                # a float64 value beyond a float32 model's range would be loaded as infinity
                beyond = int(np.count_nonzero(np.abs(array) > np.finfo(target).max))
                if beyond:
                    raise self.error(f"dataset '{path}' holds {beyond} value"
                                     f"{'s' if beyond > 1 else ''} beyond {target}'s range "
                                     f"(up to {float(np.abs(array).max()):.3g}), infinite "
                                     f"as dlcore's {target} parameters", DIVERGED_FIX)
        return array

    def read_dataset(self, path: str, shape: tuple, kinds: str = "f",
                     finite: bool = True) -> np.ndarray:
        """:meth:`dataset` then :meth:`read_array`."""
        return self.read_array(self.dataset(path, shape, kinds), path, finite)

    def check_rows(self, dataset: h5py.Dataset, path: str) -> list:
        """Check a dataset read a few rows at a time (a data set's rows:
        :func:`dlcore.datasets.open_hdf5`) as :meth:`read_array` checks one it reads whole,
        before any of it is read, and return its filters' ids.

        Its type must be a number's and its storage sound (no virtual or external data, no
        filter plugins, filter parameters that fit it); its declared size must fit the file
        (:data:`MAX_COMPRESSION_RATIO` times it, compressed: a data set is large, and read in
        batches, not whole), so that a small file cannot declare rows that training would go
        through for ever; a compressed chunk may not be larger than both the dataset and
        :data:`MAX_CHUNK_BYTES`. Its stored chunks are checked as batches reach them
        (:meth:`check_chunks`); the count of its chunks is not bounded, as a batch reads only
        the chunks of its rows (a data set stored a row a chunk is common). Bit fields of 8
        bits are accepted (:meth:`element_dtype`): the caller reads them as bools."""
        self.element_dtype(dataset.id, f"dataset '{path}'", bit_fields=True)
        if dataset.shape is None or len(dataset.shape) > MAX_NDIM:
            raise self.error(f"dataset '{path}' has "
                             f"{'no shape' if dataset.shape is None else len(dataset.shape)} "
                             f"dimensions; rows have at most {MAX_NDIM}")
        if dataset.shape and dataset.shape[0] and not math.prod(dataset.shape[1:]):
            # the size budget below counts bytes: rows of no values escape it, and training
            # would go through 2**40 of them, declared by a file of a few kB
            raise self.error(f"dataset '{path}' declares shape {shape_text(dataset.shape)}: "
                             f"{dataset.shape[0]} rows that hold no values")
        filters = self._check_storage(dataset, path)
        n_bytes = math.prod(dataset.shape) * stored_itemsize(dataset)
        budget = self.file_size
        if filters:
            n_bytes = self._chunked_bytes(dataset, path, n_bytes)
            budget = MAX_COMPRESSION_RATIO * max(self.file_size, 1)
        if n_bytes > budget:
            raise self.error(f"dataset '{path}' declares shape {shape_text(dataset.shape)} of "
                             f"{dataset.dtype} ({size_text(n_bytes)}), more than this "
                             f"{size_text(self.file_size)} file can hold"
                             + (" compressed" if filters else ""))
        return filters

    def _chunked_bytes(self, dataset: h5py.Dataset, path: str, n_bytes: int) -> int:
        """The bytes HDF5 inflates to read the whole of the filtered ``dataset`` (``n_bytes``
        of array): its chunks, edge chunks whole. A chunk larger than both the array and
        :data:`MAX_CHUNK_BYTES` is refused, since reading one number of it allocates and
        inflates all of it (a decompression bomb of a few MB declared a 2 GiB chunk for an
        array of one number)."""
        chunks = dataset.chunks
        if not chunks or len(chunks) != len(dataset.shape):
            return n_bytes
        itemsize = stored_itemsize(dataset)
        chunk_bytes = math.prod(chunks) * itemsize
        if chunk_bytes > max(n_bytes, MAX_CHUNK_BYTES):
            raise self.error(f"dataset '{path}' of shape {shape_text(dataset.shape)} "
                             f"({size_text(n_bytes)}) is stored in compressed chunks of shape "
                             f"{shape_text(chunks)} ({size_text(chunk_bytes)}), which reading "
                             f"it would inflate whole (a decompression bomb)")
        return math.prod(-(-length // chunk) * chunk
                         for length, chunk in zip(dataset.shape, chunks)) * itemsize

    def _check_chunk_count(self, dataset: h5py.Dataset, path: str, n_bytes: int) -> None:
        """Refuse a chunked ``dataset`` (``n_bytes`` of data) stored in more chunks than
        :data:`MAX_SMALL_CHUNKS` and one per :data:`MIN_BYTES_PER_CHUNK` of its data."""
        chunks = dataset.chunks
        if not chunks or len(chunks) != len(dataset.shape):
            return
        n_chunks = math.prod(-(-length // chunk) for length, chunk in zip(dataset.shape, chunks))
        if n_chunks > max(MAX_SMALL_CHUNKS, n_bytes // MIN_BYTES_PER_CHUNK):
            chunk_bytes = math.prod(chunks) * stored_itemsize(dataset)
            raise self.error(f"dataset '{path}' of shape {shape_text(dataset.shape)} "
                             f"({size_text(n_bytes)}) is stored in {n_chunks} chunks of shape "
                             f"{shape_text(chunks)} ({size_text(chunk_bytes)} each), which "
                             f"HDF5 would read one by one at kilobytes of memory each "
                             f"(dlcore and Keras write arrays unchunked)")

    def check_chunks(self, dataset: h5py.Dataset, path: str,
                     chunk_offsets: Iterable[tuple] | None = None) -> None:
        """Refuse the filtered ``dataset`` if one of its stored chunks (those at
        ``chunk_offsets``, by default all) would inflate beyond its chunk's size.

        Each chunk's stored bytes are followed back through the filters as HDF5 reads them:
        Fletcher-32 and shuffle as HDF5 undoes them, deflate inflated here up to the chunk's
        size plus :data:`CHUNK_SLACK_BYTES`, LZF's tokens counted up to that size
        (:func:`_lzf_output_bytes`), SZIP's declared size read from its first four bytes.
        Scale-offset's and N-bit's outputs are sized by their checked parameters; a deflate,
        LZF or SZIP stage after one of those cannot be followed, and is refused.
        """
        plist = dataset.id.get_create_plist()
        pipeline = [plist.get_filter(index) for index in range(plist.get_nfilters())]
        chunk_bytes = math.prod(dataset.chunks) * stored_itemsize(dataset)
        if chunk_offsets is None:
            stored: list = []
            dataset.id.chunk_iter(stored.append)
        else:
            stored = [dataset.id.get_chunk_info_by_coord(offset) for offset in chunk_offsets]
        for info in stored:
            if info.byte_offset is None or not info.size:
                continue   # never written: read as the fill value
            if info.size > self.file_size:
                raise self.error(f"dataset '{path}' has a chunk of {size_text(info.size)} at "
                                 f"{shape_text(info.chunk_offset)}, more than the file holds "
                                 f"(its chunk index is damaged)")
            filter_mask, raw = dataset.id.read_direct_chunk(info.chunk_offset)
            problem = _inflated_chunk_problem(pipeline, filter_mask, raw, chunk_bytes,
                                              stored_itemsize(dataset))
            if problem is not None:
                raise self.error(f"dataset '{path}' has a chunk at "
                                 f"{shape_text(info.chunk_offset)} that {problem}")

    def _check_storage(self, dataset: h5py.Dataset, path: str) -> list:
        if dataset.is_virtual:
            raise self.error(f"dataset '{path}' is a virtual dataset (its data would come "
                             f"from other files), {self.unread}")
        plist = dataset.id.get_create_plist()
        if plist.get_external_count():
            raise self.error(f"dataset '{path}' keeps its data in an external file, "
                             f"{self.unread}")
        pipeline = [plist.get_filter(index) for index in range(plist.get_nfilters())]
        filters = [filter_id for filter_id, *_ in pipeline]
        if h5py.h5z.FILTER_SZIP in filters and not SZIP_DECODES:
            raise self.error(f"dataset '{path}' is stored with HDF5's SZIP filter, which this "
                             f"HDF5 cannot decode (it was built without libaec)",
                             "convert the file with h5repack -f NONE where HDF5 has SZIP, or "
                             "install an h5py built with it")
        unknown = sorted(set(filters) - BUILTIN_FILTERS - {h5py.h5z.FILTER_SZIP})
        if unknown and unknown[0] < 256:   # HDF5 keeps 0-255 for its own: a damaged id
            raise self.error(f"dataset '{path}' is stored through HDF5 filter {unknown[0]}, "
                             f"which HDF5 does not define")
        if unknown:
            names = [f"{PLUGIN_FILTER_NAMES[filter_id]} (filter {filter_id})"
                     if filter_id in PLUGIN_FILTER_NAMES else f"filter {filter_id}"
                     for filter_id in unknown]
            kind = "HDF5 filter plugins" if len(unknown) > 1 else "an HDF5 filter plugin"
            raise self.error(f"dataset '{path}' is compressed with {' and '.join(names)}, "
                             f"{kind} that dlcore does not load (a plugin is code from outside "
                             f"HDF5)", self.plugin_fix)
        for filter_id, _, values, _ in pipeline:
            if filter_id == h5py.h5z.FILTER_SCALEOFFSET:
                self._check_scale_offset(dataset, path, values)
            elif filter_id == h5py.h5z.FILTER_NBIT:
                self._check_nbit(dataset, path, values)
            elif filter_id == h5py.h5z.FILTER_SZIP:
                self._check_szip(dataset, path, values)
        return filters

    def _check_szip(self, dataset: h5py.Dataset, path: str, values: tuple) -> None:
        """Refuse SZIP parameters other than those HDF5 derives from the dataset when it writes
        one (H5Z's set_local of the SZIP filter): HDF5 divides by them unchecked. They are the
        options (:data:`SZIP_ALWAYS`, the byte order, any of :data:`SZIP_CODINGS`), the pixels
        a block (even, 2 to 32), the bits a pixel (the type's precision, 25 to 32 bits
        stored as 32, more as 64) and the pixels a scanline (the chunk's last axis, within 128
        blocks; the chunk's elements when the axis holds less than a block)."""
        stored = dataset.id.get_type()
        size_bits = 8 * dataset.dtype.itemsize
        if isinstance(stored, h5py.h5t.TypeAtomicID):
            precision = stored.get_precision()
            if precision < size_bits and stored.get_offset() != 0:
                precision = size_bits
        else:   # h5py's bool, an enumeration of one byte
            precision = size_bits
        if precision > 24:
            precision = 32 if precision <= 32 else 64
        if len(values) != 4:
            self._check_filter_parameters(path, "SZIP", (len(values),),
                                          {0: ("parameter count", 4)})
        options, per_block = values[0], values[1]
        if per_block % 2 or not 2 <= per_block <= min(SZIP_MAX_PIXELS_PER_BLOCK,
                                                      math.prod(dataset.chunks or (0,))):
            self._check_filter_parameters(path, "SZIP", values, {1: (
                "pixels a block", "an even number from 2 to 32 within the chunk")})
        chunks = dataset.chunks or (0,)
        scanline = chunks[-1]
        if scanline < per_block:
            scanline = min(per_block * SZIP_MAX_BLOCKS_PER_SCANLINE, math.prod(chunks))
        elif scanline <= SZIP_MAX_PIXELS_PER_BLOCK * SZIP_MAX_BLOCKS_PER_SCANLINE:
            scanline = min(per_block * SZIP_MAX_BLOCKS_PER_SCANLINE, scanline)
        else:
            scanline = per_block * SZIP_MAX_BLOCKS_PER_SCANLINE
        order = SZIP_MSB if dataset.dtype.byteorder == ">" else SZIP_LSB
        expected = {0: ("options", (options & SZIP_CODINGS) | SZIP_ALWAYS | order),
                    1: ("pixels a block", per_block), 2: ("bits a pixel", precision),
                    3: ("pixels a scanline", scanline)}
        self._check_filter_parameters(path, "SZIP", values, expected)

    def _check_scale_offset(self, dataset: h5py.Dataset, path: str, values: tuple) -> None:
        """Refuse scale-offset parameters other than those HDF5 derives from the dataset when
        it writes one: HDF5 reads them back unchecked, and the chunk's element count sizes the
        buffer it inflates into (2**31 - 1 of them crashed the process; 2**26, 256 MiB a
        chunk of a few bytes)."""
        expected = {2: ("elements a chunk", math.prod(dataset.chunks or (0,))),
                    3: ("type class", 1 if dataset.dtype.kind == "f" else 0),
                    4: ("element size", dataset.dtype.itemsize),
                    6: ("byte order", 1 if dataset.dtype.byteorder == ">" else 0)}
        self._check_filter_parameters(path, "scale-offset", values, expected)

    def _check_nbit(self, dataset: h5py.Dataset, path: str, values: tuple) -> None:
        """Refuse N-bit parameters other than those HDF5 derives from the dataset when it
        writes one (H5Z's set_local of the N-bit filter): as scale-offset's, they are read back
        unchecked, and a chunk of 2**26 elements where it holds 18 crashed the process
        (SIGSEGV). A number's are its count, whether it needs no packing (full precision at
        offset 0), the chunk's elements, the class (1: a number), its size, byte order,
        precision and offset; h5py's bool, an enumeration, needs no packing at all."""
        n_elements = math.prod(dataset.chunks or (0,))
        if dataset.dtype.kind == "b":
            layout = (("parameter count", 3), ("no-packing flag", 1),
                      ("elements a chunk", n_elements))
        else:
            stored = dataset.id.get_type()
            size, precision, offset = (dataset.dtype.itemsize, stored.get_precision(),
                                       stored.get_offset())
            layout = (("parameter count", 8),
                      ("no-packing flag", int(precision == 8 * size and offset == 0)),
                      ("elements a chunk", n_elements), ("type class", 1),
                      ("element size", size),
                      ("byte order", int(stored.get_order() == h5py.h5t.ORDER_BE)),
                      ("precision", precision), ("offset", offset))
        expected = dict(enumerate(layout))
        if len(values) != len(layout):   # a count that does not fit: named as the first
            values = (len(values), *values[1:])
        self._check_filter_parameters(path, "N-bit", values, expected)

    def _check_filter_parameters(self, path: str, filter_name: str, values: tuple,
                                 expected: dict[int, tuple[str, int]]) -> None:
        """Refuse the dataset at ``path`` unless its filter's parameters ``values`` hold each
        ``expected`` (index: (name, value))."""
        for index, (name, value) in expected.items():
            found = values[index] if len(values) > index else None
            if found != value:
                raise self.error(f"dataset '{path}' is stored with HDF5's {filter_name} filter, "
                                 f"whose parameters do not fit it ({name} {found}, not "
                                 f"{value}) and would make HDF5 overrun or oversize its "
                                 f"buffers")

    # -- attributes -----------------------------------------------------------------------
    def attribute(self, owner: Any, name: str, where: str, default: Any = ...,
                  finite: bool = True) -> Any:
        """A single number or string attribute as a Python value (bool, int, float, str).

        ``default`` is returned when the attribute is absent; without one, its absence is an
        error. Arrays, compound, complex and empty attributes are refused unread (a 1-element
        array, as MATLAB writes, counts as a single value); so are NaN and infinity when
        ``finite``.
        """
        label = f"attribute '{name}' of '{where}'"
        if name not in owner.attrs:
            if default is ...:
                raise self.error(f"{label} is missing")
            return default
        attribute_id = owner.attrs.get_id(name)
        dtype = self.element_dtype(attribute_id, label)
        space = attribute_id.get_space()
        if space.get_simple_extent_type() == h5py.h5s.NULL:
            raise self.error(f"{label} is empty (no value)")
        if space.get_simple_extent_npoints() != 1:
            raise self.error(f"{label} is an array of shape {shape_text(attribute_id.shape)}; "
                             f"expected a single number or string")
        is_string = h5py.check_string_dtype(dtype) is not None
        if not is_string and (dtype.fields is not None or dtype.kind not in "biuf"
                              or h5py.check_vlen_dtype(dtype) is not None):
            raise self.error(f"{label} holds {_dtype_text(dtype)}; expected a number or a "
                             f"string")
        value = owner.attrs[name]
        if isinstance(value, np.ndarray):
            value = value.reshape(())[()]  # e.g. a 1x1 array written by MATLAB's h5writeatt
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, bytes):
            value = value.decode("utf-8", errors="replace")  # fixed-length strings
        elif isinstance(value, str):
            # h5py turns invalid UTF-8 into lone surrogates, which printing cannot encode.
            value = value.encode("utf-8", errors="surrogatepass").decode("utf-8",
                                                                         errors="replace")
        if finite and isinstance(value, float) and not math.isfinite(value):
            raise self.error(f"{label} is {value}; expected a finite number")
        if isinstance(value, str) and len(value) > MAX_JSON_BYTES:
            raise self.error(f"{label} is a string of {size_text(len(value))}, more than a "
                             f"model file holds")
        return value

    def json_attribute(self, owner: Any, name: str, where: str, default: Any = ...,
                       limit_bytes: int = MAX_JSON_BYTES,
                       limit_depth: int = MAX_JSON_DEPTH) -> Any:
        """A string attribute holding JSON, parsed within the limits (see :func:`parse_json`)."""
        text = self.attribute(owner, name, where, default=default)
        if text is default and default is not ...:
            return default
        label = f"the '{name}' attribute" + ("" if where == "/" else f" of '{where}'")
        if not isinstance(text, str):
            raise self.error(f"{label} should be a JSON string; found "
                             f"{type(text).__name__} {text!r:.60}")
        try:
            return parse_json(text, limit_bytes, limit_depth)
        except ValueError as error:
            raise self.error(f"{label} is not valid JSON: {error}") from None

    # -- whole trees ----------------------------------------------------------------------
    def walk(self, group: h5py.Group, where: str = "", skip: frozenset = frozenset(),
             depth: int = 0) -> Iterator[tuple[str, Any]]:
        """``(path, object)`` for every group, dataset (and other object) below ``group``,
        depth first in file order, leaving out the members of ``group`` named in ``skip``.

        Hard links only; nesting deeper than MAX_GROUP_DEPTH, more than MAX_OBJECTS objects in
        the whole file (counted across every walk of this reader) and a second hard link to an
        object already reached are refused, so the cost is bounded by the file's own objects.
        """
        if depth > MAX_GROUP_DEPTH:
            raise self.error(f"groups nest more than {MAX_GROUP_DEPTH} deep at '{where}' "
                             f"(a link cycle?)")
        self._first_paths.setdefault(group.id, where or "/")
        for name in self.names(group, where):
            if name in skip:
                continue
            path = f"{where}/{name}" if where else name
            item = self.member(path)
            if item is None:
                # listed by the group's iteration but not found by its name: a damaged index
                # (a flipped byte in a name that the lookup's search tree sorts elsewhere)
                raise self.error(f"'{path}' is listed in its group but cannot be opened by "
                                 f"its name (the group's index is damaged)")
            self._objects_read += 1
            if self._objects_read > MAX_OBJECTS:
                raise self.error(f"the file holds more than {MAX_OBJECTS} groups and datasets "
                                 f"(a link cycle?)")
            first_path = self._first_paths.setdefault(item.id, path)
            if first_path != path:
                cycle = first_path == "/" or path.startswith(f"{first_path}/")
                raise self.error(f"'{path}' is a hard link back to '{first_path}' (a link "
                                 f"cycle?)" if cycle else
                                 f"'{path}' is a second hard link to '{first_path}'; dlcore "
                                 f"never writes one")
            yield path, item
            if isinstance(item, h5py.Group):
                yield from self.walk(item, path, depth=depth + 1)

    def read_tree(self, group: h5py.Group, where: str = "", skip: frozenset = frozenset(),
                  finite: bool = True) -> dict:
        """A group as a nested dict: attributes as Python scalars, datasets as arrays (each
        through :meth:`read_array`), groups as dicts, all reached by :meth:`walk`; ``skip``
        names members and attributes of ``group`` to leave out; ``finite`` refuses NaN and
        infinity in float arrays and attributes."""
        tree = self._attributes(group, where, skip, finite)
        groups = {where: tree}
        for path, item in self.walk(group, where, skip):
            parent, _, name = path.rpartition("/")
            if isinstance(item, h5py.Group):
                groups[path] = groups[parent][name] = self._attributes(item, path,
                                                                       frozenset(), finite)
            elif isinstance(item, h5py.Dataset):
                groups[parent][name] = self.read_array(item, path, finite)
            else:
                raise self.error(f"'{path}' is a {_kind_of(item)}, which dlcore never writes")
        return tree

    def attribute_names(self, owner: Any) -> list[str]:
        """The names of ``owner``'s attributes that can be part of a model's state, in file
        order.

        h5py gives an attribute name that is not valid UTF-8 (a Latin-1 writer's, such as a
        tool a teacher annotates files with, or h5py's low-level API's) as ``bytes``.
        ``dlcore.save`` writes only ``str`` names, which h5py stores as UTF-8, so no model's
        state holds such an attribute: it is left out unread, as a model ignores the
        attributes it does not know, rather than handed to ``set_state`` under a ``bytes``
        key that no class looks up (and that ``sorted`` cannot compare with the others).
        """
        return [name for name in owner.attrs if isinstance(name, str)]

    def _attributes(self, owner: Any, where: str, skip: frozenset, finite: bool) -> dict:
        label = where or "/"
        if len(owner.attrs) > MAX_ATTRIBUTES:
            raise self.error(f"'{label}' has {len(owner.attrs)} attributes, more than a model "
                             f"file holds ({MAX_ATTRIBUTES})")
        return {name: self.attribute(owner, name, label, finite=finite)
                for name in self.attribute_names(owner) if name not in skip}


def stored_itemsize(dataset: h5py.Dataset) -> int:
    """The bytes of one element of ``dataset`` as the file stores it, which its chunks and
    declared size are made of: NumPy's itemsize but for h5py's bool, which h5py reads from an
    enumeration of FALSE and TRUE on any integer (a C program's of 4 bytes), not only on the
    1-byte one h5py writes."""
    return max(dataset.id.get_type().get_size(), dataset.dtype.itemsize)


#: The filters :func:`_inflated_chunk_problem` follows a chunk's bytes through, by name: a
#: stage of them after one it cannot follow (scale-offset, N-bit, SZIP, LZF) is refused.
_FOLLOWED_FILTERS = {h5py.h5z.FILTER_DEFLATE: "deflate", h5py.h5z.FILTER_SZIP: "SZIP",
                     h5py.h5z.FILTER_FLETCHER32: "Fletcher-32", FILTER_LZF: "LZF"}
#: The most bytes one byte of an LZF stream can stand for: a back-reference of 3 bytes copies
#: up to 264.
LZF_MAX_RATIO = 88


def _inflated_chunk_problem(pipeline: list, filter_mask: int, raw: bytes, chunk_bytes: int,
                            itemsize: int) -> str | None:
    """How the chunk stored as ``raw`` would inflate beyond its ``chunk_bytes`` (and
    :data:`CHUNK_SLACK_BYTES`), or crash HDF5, through the filter
    ``pipeline`` (HDF5's (id, flags, parameters, name) tuples, undone last to first, those
    whose bit is set in ``filter_mask`` skipped for this chunk), or None."""
    limit = chunk_bytes + CHUNK_SLACK_BYTES
    beyond = f"beyond the {size_text(chunk_bytes)} of its chunk (a decompression bomb)"
    data: bytes | None = raw   # None once a stage's output cannot be followed here
    for index in reversed(range(len(pipeline))):
        if filter_mask & (1 << index):
            continue
        filter_id, values = pipeline[index][0], pipeline[index][2]
        if filter_id in _FOLLOWED_FILTERS and data is None:
            return (f"is undone by {_FOLLOWED_FILTERS[filter_id]} after a filter whose output "
                    f"dlcore cannot follow (an order of filters h5py never writes): its size "
                    f"cannot be checked")
        if filter_id == h5py.h5z.FILTER_FLETCHER32:
            if len(data) < 4:
                # HDF5 takes the 4-byte checksum off unchecked: fewer bytes crashed it
                # (SIGSEGV; fuzzer seed 177, a chunk cut to 3 bytes)
                return (f"holds {len(data)} byte{'s' if len(data) > 1 else ''}, fewer than the "
                        f"4 of the Fletcher-32 checksum it must end with (a damaged chunk)")
            data = data[:-4]
        elif filter_id == h5py.h5z.FILTER_SHUFFLE:
            data = None if data is None else _unshuffled(data, values[0] if values else itemsize)
        elif filter_id == h5py.h5z.FILTER_DEFLATE:
            try:
                data = zlib.decompressobj().decompress(data, limit + 1)
            except zlib.error:
                return None   # HDF5's own reading reports the damage
            if len(data) > limit:
                return f"inflates {beyond}"
        elif filter_id == h5py.h5z.FILTER_SZIP:
            declared = int.from_bytes(data[:4], "little")
            if declared > limit:
                return f"declares {size_text(declared)} of SZIP data, {beyond}"
            data = None
        elif filter_id == FILTER_LZF:
            if LZF_MAX_RATIO * len(data) > limit and _lzf_output_bytes(data, limit) > limit:
                return f"inflates {beyond}"
            data = None
        else:   # scale-offset, N-bit: sized by their checked parameters
            data = None
    return None


#: :func:`lzf_walk` compiled, once :func:`_lzf_output_bytes` first needs it.
_compiled_lzf_walk = None


def _lzf_output_bytes(stream: bytes, limit: int) -> int:
    """The bytes that the LZF ``stream`` decodes to, counted up to just past ``limit`` (a
    damaged stream counts what precedes the damage; HDF5's reading reports it), by
    :func:`lzf_walk` compiled with Numba on the first call (cached on disk, as the kernels are:
    a stream of 1 MiB takes milliseconds, where Python's walk took about a second). Importing
    dlcore compiles nothing."""
    global _compiled_lzf_walk
    if _compiled_lzf_walk is None:
        from numba import njit

        from dlcore.backend import cache  # kept in dlcore's kernel folder, as the kernels
        cache.install()
        _compiled_lzf_walk = njit(cache=True, nogil=True)(lzf_walk)
    return int(_compiled_lzf_walk(np.frombuffer(stream, np.uint8), limit))


def lzf_walk(stream: Any, limit: int) -> int:
    """The reference of :func:`_lzf_output_bytes` (which compiles it): the bytes that the LZF
    ``stream`` (bytes, or uint8 array of shape (n,)) decodes to, counted up to just past
    ``limit``.

    h5py's LZF filter grows its output buffer step by step until the stream fits, whatever
    the chunk's size: a stream of 1 MiB standing for 88 MiB took 28 s and 90 MiB to read a
    chunk of 100 numbers. Its tokens are walked here, not decoded: a
    control byte below 32 starts a run of that many plus one literal bytes; any other is a
    back-reference of its top three bits plus two bytes (plus a length byte when those bits
    are all set), then one byte of distance."""
    end, position, produced = len(stream), 0, 0
    while position < end and produced <= limit:
        control = int(stream[position])
        if control < 32:
            position += control + 2
            produced += control + 1
        else:
            length = control >> 5
            if length == 7:
                length += int(stream[position + 1]) if position + 1 < end else 0
                position += 1
            position += 2
            produced += length + 2
    return produced


def _unshuffled(data: bytes, size: int) -> bytes:
    """``data`` as HDF5's shuffle filter restores it: the k-th bytes of its ``size``-byte
    elements were stored together; bytes beyond the last whole element stay in place."""
    count = len(data) // size if size > 0 else 0
    if size <= 1 or count <= 1:
        return data
    body = np.frombuffer(data, np.uint8, count * size).reshape(size, count).T
    return body.tobytes() + data[count * size:]


def _encodes_as_utf8(text: str) -> bool:
    """Whether ``text`` holds no lone surrogates (h5py's stand-ins for bytes of a stored
    string that are not UTF-8), so that it can be encoded to look a name up."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def name_text(name: str | bytes) -> str:
    """A member or attribute name as messages show it: a name that is not valid UTF-8
    (``bytes`` from h5py) with its undecodable bytes escaped (``Gew\\xe4chte``)."""
    return name if isinstance(name, str) else bytes(name).decode("utf-8",
                                                                 errors="backslashreplace")


_KIND_NAMES = {"f": "float", "i": "integer", "u": "unsigned integer", "b": "bool"}


def _kind_of(item: Any) -> str:
    if isinstance(item, h5py.Dataset):
        return f"dataset of shape {shape_text(item.shape or ())}"
    if isinstance(item, h5py.Group):
        return "group"
    return type(item).__name__


def _dtype_text(dtype: np.dtype) -> str:
    if dtype.fields is not None:
        return "a compound type"
    if h5py.check_string_dtype(dtype) is not None:
        return "strings"
    if h5py.check_vlen_dtype(dtype) is not None:
        return "variable-length sequences"
    if dtype.kind == "c":
        return "complex numbers"
    return f"dtype {dtype}"
