"""IDX reader and writer. Oracles: the array written (round trips), the format's byte layout
written out by hand (header tests), and 'a ValueError naming the file' for every damage."""
import gzip
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dlcore.datasets import open_idx, read_idx, write_idx
from dlcore.datasets.idx import format_idx

IDX_DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]
FAST = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

arrays = st.sampled_from(IDX_DTYPES).flatmap(lambda dtype: hnp.arrays(
    dtype, hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=6)))


def valid_idx_bytes():
    return format_idx(np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4))


@FAST
@given(array=arrays, suffix=st.sampled_from(["", ".gz"]))
def test_written_arrays_read_back_bit_for_bit(tmp_path, array, suffix):
    path = tmp_path / f"array-idx{suffix}"
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == array.dtype and back.shape == array.shape
    assert back.tobytes() == array.tobytes()       # bitwise: NaNs and -0.0 included


def test_header_is_big_endian_as_the_format_says(tmp_path):
    path = tmp_path / "t-idx2-int"
    write_idx(path, np.array([[1, -2, 3]], dtype=np.int32))
    assert path.read_bytes() == (b"\x00\x00\x0c\x02" + struct.pack(">II", 1, 3)
                                 + struct.pack(">3i", 1, -2, 3))


def test_big_endian_arrays_are_written_and_read_back_in_native_order(tmp_path):
    big = np.array([1.5, -2.25], dtype=">f8")
    write_idx(tmp_path / "x", big)
    back = read_idx(tmp_path / "x")
    assert back.dtype == np.float64 and back.dtype.isnative and back.tolist() == [1.5, -2.25]


def test_gzip_output_is_deterministic_and_has_no_name_or_time(tmp_path):
    array = np.arange(1000, dtype=np.uint8)
    write_idx(tmp_path / "a.gz", array)
    write_idx(tmp_path / "b.gz", array)
    content = (tmp_path / "a.gz").read_bytes()
    assert content == (tmp_path / "b.gz").read_bytes()
    assert content[3] == 0 and content[4:8] == b"\0\0\0\0"     # no FNAME flag, mtime 0
    assert gzip.decompress(content) == format_idx(array)


def test_compression_is_recognised_by_content_not_by_name(tmp_path):
    array = np.arange(6, dtype=np.int16).reshape(2, 3)
    (tmp_path / "compressed-without-suffix").write_bytes(gzip.compress(format_idx(array)))
    (tmp_path / "raw.gz").write_bytes(format_idx(array))
    assert np.array_equal(read_idx(tmp_path / "compressed-without-suffix"), array)
    assert np.array_equal(read_idx(tmp_path / "raw.gz"), array)


def test_read_arrays_are_writeable_copies(tmp_path):
    write_idx(tmp_path / "x", np.zeros(3, dtype=np.uint8))
    array = read_idx(tmp_path / "x")
    array[0] = 7
    assert array[0] == 7


@pytest.mark.parametrize("bad", [np.zeros(2, dtype=np.int64), np.zeros(2, dtype=bool),
                                 np.zeros(2, dtype=np.complex64)])
def test_dtypes_without_an_idx_code_are_refused_with_the_allowed_list(tmp_path, bad):
    with pytest.raises(TypeError, match="uint8.*float64"):
        write_idx(tmp_path / "x", bad)


def test_a_zero_dimensional_array_is_refused(tmp_path):
    with pytest.raises(ValueError, match="1 to 255 dimensions"):
        write_idx(tmp_path / "x", np.uint8(3))


@FAST
@given(cut=st.integers(min_value=0, max_value=len(valid_idx_bytes()) - 1),
       compressed=st.booleans())
def test_a_truncated_file_is_a_value_error_that_names_the_file(tmp_path, cut, compressed):
    content = valid_idx_bytes()
    if compressed:
        content = gzip.compress(content)
        cut = cut * len(content) // len(valid_idx_bytes())
        if cut < 2:   # fewer than the two magic bytes: reads as a (truncated) raw file
            cut = 2
    path = tmp_path / ("images-idx3-ubyte.gz" if compressed else "images-idx3-ubyte")
    path.write_bytes(content[:cut])
    with pytest.raises(ValueError, match="truncated") as caught:
        read_idx(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_the_truncation_message_states_what_the_header_promised(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(valid_idx_bytes()[:16 + 5])
    with pytest.raises(ValueError) as caught:
        read_idx(path)
    assert str(caught.value) == (f"{path}: truncated: the header promises 2x3x4 uint8 = 24 "
                                 "bytes of data but only 5 follow")


@pytest.mark.parametrize("compressed", [False, True])
def test_a_header_of_255_huge_dimensions_is_refused_in_a_short_line(tmp_path, compressed):
    # a forged header of 255 dimensions of 4,294,967,295 each: its shape and byte count
    # (2,457 digits) made a refusal of 6,171 characters
    content = b"\x00\x00\x08\xff" + b"\xff" * (4 * 255) + b"rows"
    path = tmp_path / ("x-idx.gz" if compressed else "x-idx")
    path.write_bytes(gzip.compress(content) if compressed else content)
    with pytest.raises(ValueError) as caught:
        read_idx(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: truncated: the header promises 4294967295x4294967295x"
                              f"4294967295x4294967295x...x4294967295x4294967295x4294967295x"
                              f"4294967295 (255 dimensions) uint8 = about 2.5e2456 bytes of "
                              f"data but ")
    assert len(message) < 300 + len(str(path)) and "\n" not in message


@FAST
@given(garbage=st.binary(min_size=1, max_size=50))
def test_trailing_bytes_after_the_data_are_a_value_error(tmp_path, garbage):
    path = tmp_path / "labels-idx1-ubyte"
    path.write_bytes(valid_idx_bytes() + garbage)
    with pytest.raises(ValueError, match=f"{len(garbage)} bytes of trailing garbage"):
        read_idx(path)


def test_trailing_bytes_after_the_gzip_stream_are_a_value_error(tmp_path):
    path = tmp_path / "labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(valid_idx_bytes()) + b"junk at the end")
    with pytest.raises(ValueError, match="trailing garbage"):
        read_idx(path)


def test_nonzero_magic_bytes_are_not_an_idx_file(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(b"\x01\x00" + valid_idx_bytes()[2:])
    with pytest.raises(ValueError, match="not an IDX file.*two zero bytes"):
        read_idx(path)


@pytest.mark.parametrize("code", [0x00, 0x07, 0x0A, 0x0F, 0xFF])
def test_an_unknown_type_code_is_named_with_the_known_ones(tmp_path, code):
    path = tmp_path / "x"
    path.write_bytes(b"\x00\x00" + bytes([code]) + valid_idx_bytes()[3:])
    with pytest.raises(ValueError, match=f"unknown IDX type code 0x{code:02X}.*0x08 uint8"):
        read_idx(path)


def test_a_png_is_recognised_as_a_png(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(30))
    with pytest.raises(ValueError, match="PNG image") as caught:
        read_idx(path)
    assert str(caught.value).startswith(str(path))


def test_an_html_error_page_is_recognised_as_one(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(b"<!DOCTYPE html><html><body>404</body></html>")
    with pytest.raises(ValueError, match="HTML page"):
        read_idx(path)


def test_a_header_promising_terabytes_fails_fast_without_allocating(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(b"\x00\x00\x0e\x03" + struct.pack(">3I", 2**32 - 1, 2**32 - 1, 9))
    with pytest.raises(ValueError, match="truncated"):
        read_idx(path)


def gzip_bomb(path, header, mebibytes):
    """A gzip file of ``header`` followed by ``mebibytes`` MiB of zeros (a few kB a MiB)."""
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)   # 31: a gzip stream
    zeros = bytes(2**20)
    path.write_bytes(compressor.compress(header) + b"".join(
        compressor.compress(zeros) for _ in range(mebibytes)) + compressor.flush())


@pytest.mark.parametrize("reader", ["read_idx", "open_idx"])
def test_a_gzip_bomb_behind_a_small_header_is_refused_uninflated(tmp_path, reader):
    # 64 KiB of gzip: a header promising 10 labels, then 64 MiB of zeros, which read_idx
    # inflated whole into memory (a 1 MB file took 2 GB) and open_idx onto the cache's disk,
    # left there, before either said "trailing garbage"
    path = tmp_path / "labels-idx1-ubyte.gz"
    gzip_bomb(path, b"\x00\x00\x08\x01" + struct.pack(">I", 10) + bytes(10), 64)
    unpacked = tmp_path / "unpacked"
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="trailing garbage: the header promises 10 uint8 "
                           "= 10 bytes of data but more bytes follow") as caught:
            read_idx(path) if reader == "read_idx" else open_idx(path, unpack_to=unpacked)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)
    assert peak < 8 * 2**20, peak
    assert not unpacked.exists() or not list(unpacked.iterdir())


@pytest.mark.parametrize("reader", ["read_idx", "open_idx"])
def test_a_header_promising_more_than_its_gzip_can_inflate_to_is_refused_uninflated(
        tmp_path, reader):
    # the header's promise bounded the inflating, but a header promising a TiB let a bomb
    # inflate whole (a 4 MB file, 4 GB of zeros) before "truncated" was said: deflate gives
    # at most 1032 bytes a byte, so the shortfall shows from the file's size
    path = tmp_path / "images-idx3-ubyte.gz"
    gzip_bomb(path, b"\x00\x00\x08\x03" + struct.pack(">3I", 2**24, 256, 256), 16)
    unpacked = tmp_path / "unpacked"
    tracemalloc.start()
    try:
        with pytest.raises(ValueError) as caught:
            read_idx(path) if reader == "read_idx" else open_idx(path, unpack_to=unpacked)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    size = path.stat().st_size
    assert str(caught.value) == (f"{path}: truncated: the header promises 16777216x256x256 "
                                 f"uint8 = {2**40:,} bytes of data but {size:,} bytes of gzip "
                                 f"inflate to at most {1032 * size:,}")
    assert peak < 4 * 2**20, peak
    assert not unpacked.exists() or not list(unpacked.iterdir())


@pytest.mark.parametrize("cut", [0, 10])
def test_a_gzip_stream_cut_in_its_data_says_what_the_header_promised(tmp_path, cut):
    # the data are inflated a piece at a time, counted against what the header promises
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(valid_idx_bytes()[:16 + cut]))
    with pytest.raises(ValueError) as caught:
        read_idx(path)
    assert str(caught.value) == (f"{path}: truncated: the header promises 2x3x4 uint8 = 24 "
                                 f"bytes of data but only {cut} follow")


@FAST
@given(content=st.binary(max_size=64))
def test_random_bytes_either_parse_or_raise_a_value_error(tmp_path, content):
    path = tmp_path / "random"
    path.write_bytes(content)
    try:
        array = read_idx(path)
    except ValueError as error:
        assert str(error).startswith(str(path))
    else:
        assert array.size * array.itemsize <= len(content)


@FAST
@given(content=st.binary(max_size=64))
def test_random_bytes_behind_a_gzip_magic_raise_a_value_error(tmp_path, content):
    path = tmp_path / "random.gz"
    path.write_bytes(b"\x1f\x8b" + content)
    with pytest.raises(ValueError):
        read_idx(path)


def test_a_missing_file_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nothing-here")
