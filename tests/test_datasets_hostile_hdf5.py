"""Hostile HDF5 data files: ``dlcore.datasets.open_hdf5`` reads a file anyone may have written
(a classmate's, a download) with the checks a model file gets. Every file is written here,
small; the oracle of a sound file is the array written, that of a hostile one a refusal in one
line naming the file, the dataset and the problem."""
import struct
import zlib

import h5py
import numpy as np
import pytest

from dlcore.datasets import open_hdf5
from model_file_fuzzer import lzf_zeros

ROWS = (np.arange(16 * 6 * 6) % 251).astype(np.uint8).reshape(16, 6, 6)


def write_rows(path, **options):
    """The file ``path`` holding ROWS as dataset 'images', created with ``options``."""
    with h5py.File(path, "w") as h5file:
        return h5file.create_dataset("images", data=ROWS, **options).id.get_create_plist()


def external_storage(path):
    """Rows kept in another file's bytes (HDF5's external storage)."""
    (path.parent / "elsewhere.bin").write_bytes(ROWS.tobytes())
    with h5py.File(path, "w") as h5file:
        h5file.create_dataset("images", shape=ROWS.shape, dtype=ROWS.dtype,
                              external=[(str(path.parent / "elsewhere.bin"), 0, ROWS.nbytes)])


def external_link(path):
    """'images' an external link to another HDF5 file's dataset."""
    write_rows(path.parent / "other.h5")
    with h5py.File(path, "w") as h5file:
        h5file["images"] = h5py.ExternalLink(str(path.parent / "other.h5"), "images")


def declared_beyond_the_file(path):
    """A billion rows declared, none written: read as zeros for ever."""
    with h5py.File(path, "w") as h5file:
        h5file.create_dataset("images", shape=(10**9, 6, 6), dtype=np.uint8, chunks=(1, 6, 6))


def chunk_bomb(path):
    """Gzip-compressed rows whose first chunk's stream inflates to 4 MiB of zeros."""
    write_rows(path, chunks=(4, 6, 6), compression="gzip")
    with h5py.File(path, "r+") as h5file:
        h5file["images"].id.write_direct_chunk((0, 0, 0), zlib.compress(bytes(2**22)), 0)


def lzf_bomb(path):
    """LZF-compressed rows whose first chunk's stream stands for 4 MiB of zeros."""
    write_rows(path, chunks=(4, 6, 6), compression="lzf")
    with h5py.File(path, "r+") as h5file:
        h5file["images"].id.write_direct_chunk((0, 0, 0), lzf_zeros(2**22), 0)


def rows_of_no_values(path):
    """2**40 rows of shape (0, 0): no bytes to count against the file's size."""
    with h5py.File(path, "w") as h5file:
        h5file.create_dataset("images", shape=(2**40, 0, 0), dtype=np.uint8,
                              maxshape=(None, None, None), chunks=(1, 1, 1))


@pytest.mark.parametrize("make, refusal", [
    (external_storage, "dataset 'images' keeps its data in an external file"),
    (external_link, "'/images' is an external link to 'images' in the file '"),
    (declared_beyond_the_file, "dataset 'images' declares shape (1000000000, 6, 6) of uint8 "
                               "(33.5 GiB), more than this "),
    (chunk_bomb, "dataset 'images' has a chunk at (0, 0, 0) that inflates beyond the 144 bytes "
                 "of its chunk (a decompression bomb)"),
    (lzf_bomb, "dataset 'images' has a chunk at (0, 0, 0) that inflates beyond the 144 bytes "
               "of its chunk (a decompression bomb)"),
    (rows_of_no_values, "dataset 'images' declares shape (1099511627776, 0, 0): 1099511627776 "
                        "rows that hold no values"),
])
def test_a_hostile_data_file_is_refused_in_one_line_before_its_rows_are_used(
        tmp_path, make, refusal):
    # open_hdf5 read a data file without the checks of a model file: it trained on another
    # file's bytes (external storage), opened the file an external link named (a KeyError
    # traceback), went through a billion rows of a 1 kB file, and inflated a 1 MB file's chunk
    # to 1 GiB (1.1 GiB of memory a batch); 2**40 rows of no values (no bytes against the
    # file's size) were opened as a data set of 2**40 rows (data-file fuzz, seed 184)
    path = tmp_path / "data.h5"
    make(path)
    with pytest.raises(ValueError) as caught:
        open_hdf5(path, "images").rows(np.arange(8))
    message = str(caught.value)
    assert message.startswith(f"{path}: {refusal}")
    assert "\n" not in message and "never writes" not in message   # dlcore writes no data file
    assert "write its rows again with h5py" in message or "that file's 'images' itself" in message
    assert message.count("dlcore does not read") <= 1   # said once, not again by the fix


@pytest.mark.parametrize("options", [{}, {"chunks": (4, 6, 6), "compression": "gzip"},
                                     {"chunks": (1, 6, 6), "shuffle": True,
                                      "compression": "lzf", "fletcher32": True},
                                     {"chunks": (4, 6, 6), "compression": "szip"}])
def test_sound_data_files_read_the_rows_written(tmp_path, options):
    # the checks of a hostile file leave a sound one's rows alone, one row a chunk included
    write_rows(tmp_path / "data.h5", **options)
    rows = open_hdf5(tmp_path / "data.h5", "images")
    np.testing.assert_array_equal(rows.rows(np.array([9, 2, 2, 15])), ROWS[[9, 2, 2, 15]])
    np.testing.assert_array_equal(np.asarray(rows), ROWS)


def test_a_data_file_damaged_past_what_hdf5_opens_is_refused_in_one_line(tmp_path):
    # a flipped size in the dataset's header: h5py's KeyError ("invalid dataset size")
    # reached the user as a traceback (fuzz of open_hdf5, seed 180)
    write_rows(tmp_path / "data.h5")
    content = (tmp_path / "data.h5").read_bytes()
    shape = struct.pack("<3Q", *ROWS.shape)
    (tmp_path / "data.h5").write_bytes(content.replace(shape, struct.pack("<3Q", 2**62, 6, 6)))
    with pytest.raises(ValueError) as caught:
        open_hdf5(tmp_path / "data.h5", "images")
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'data.h5'}: HDF5 cannot read it (Unable to ")
    assert message.endswith("; the file is damaged: copy it again, or write the rows again "
                            "with h5py") and "\n" not in message


def test_a_compressed_chunk_indexed_beyond_the_file_is_refused_in_one_line(tmp_path):
    # a chunk's address in the chunk index flipped past the file's end: the chunk check's read
    # of its stored bytes raised h5py's OSError ("addr overflow") as a traceback (fuzz of
    # open_hdf5, seed 184)
    path = tmp_path / "data.h5"
    write_rows(path, chunks=(4, 6, 6), compression="gzip")
    with h5py.File(path, "r") as h5file:
        address = h5file["images"].id.get_chunk_info_by_coord((0, 0, 0)).byte_offset
    content = path.read_bytes()
    assert content.count(struct.pack("<Q", address)) == 1
    path.write_bytes(content.replace(struct.pack("<Q", address),
                                     struct.pack("<Q", len(content) + 10**6)))
    rows = open_hdf5(path, "images")
    np.testing.assert_array_equal(rows.rows(np.arange(4, 16)), ROWS[4:])   # chunks left sound
    with pytest.raises(ValueError) as caught:
        rows.rows(np.arange(4))
    message = str(caught.value)
    assert message.startswith(f"{path}: HDF5 cannot read it (Can't read unprocessed chunk data "
                              f"(addr overflow")
    assert message.endswith("; the file is damaged: copy it again, or write the rows again "
                            "with h5py") and "\n" not in message


def test_soft_links_inside_a_data_file_lead_to_their_rows(tmp_path):
    # h5py users alias a dataset by a soft link (f["images"] = h5py.SoftLink("/train/x")):
    # open_hdf5 refused such a file as a model file it deemed damaged ("which dlcore never
    # writes"); links inside the file are followed now, a cycle of them refused in one line
    with h5py.File(tmp_path / "data.h5", "w") as h5file:
        h5file.create_dataset("train/x", data=ROWS, chunks=(4, 6, 6), compression="gzip")
        h5file["images"] = h5py.SoftLink("/train/x")
        h5file["train/same"] = h5py.SoftLink("x")
        h5file["all"] = h5py.SoftLink("/train")
        h5file["loop"] = h5py.SoftLink("/loop/x")
        # a path of 200,000 names, each its own group again (a hard link back): 12 s of
        # HDF5 lookups, the time a file of such links could make it take grown with its size
        h5file["back"] = h5file["/"]
        h5file["deep"] = h5py.SoftLink("/" + "back/" * 200_000 + "train/x")
    for name in ("images", "train/same", "all/same", "all/x"):
        np.testing.assert_array_equal(np.asarray(open_hdf5(tmp_path / "data.h5", name)), ROWS)
    with pytest.raises(ValueError) as caught:
        open_hdf5(tmp_path / "data.h5", "loop")
    assert str(caught.value).startswith(f"{tmp_path / 'data.h5'}: 'loop' goes through more "
                                        f"than 16 soft links (a cycle of them?); ")
    with pytest.raises(ValueError, match="'/deep' is a soft link to a path of 200002 names, "
                                         "deeper than the 16 levels groups nest in a file "):
        open_hdf5(tmp_path / "data.h5", "deep")
    with pytest.raises(ValueError, match="no dataset 'trian/x'; its datasets: train/x; "):
        open_hdf5(tmp_path / "data.h5", "trian/x")


def test_bool_rows_as_h5py_writes_them_are_read_and_taken_as_0_and_1(tmp_path):
    # binarised images stored as x > 127 (h5py writes NumPy's bool as an HDF5 enumeration):
    # open_hdf5 refused them ("rows of real numbers are needed, got bool"), and
    # to_unit_interval refused a bool array
    from dlcore.datasets import to_unit_interval
    binary = ROWS > 127
    with h5py.File(tmp_path / "data.h5", "w") as h5file:
        h5file.create_dataset("images", data=binary, chunks=(4, 6, 6), compression="gzip")
    rows = open_hdf5(tmp_path / "data.h5", "images")
    assert rows.dtype == np.bool_
    np.testing.assert_array_equal(rows.rows(np.array([9, 2, 2])), binary[[9, 2, 2]])
    unit = to_unit_interval(rows)
    eager = to_unit_interval(binary)
    assert unit.dtype == eager.dtype == np.float32
    np.testing.assert_array_equal(unit.rows(np.arange(16)), eager)
    np.testing.assert_array_equal(eager, binary.reshape(16, -1))


def test_a_soft_link_to_a_missing_dataset_is_named_with_its_target(tmp_path):
    # a soft link left dangling (its dataset renamed or deleted) read as any absent name, "no
    # dataset 'images'; its datasets: train/x", though 'images' is there, a link to nothing
    with h5py.File(tmp_path / "data.h5", "w") as h5file:
        h5file["train/x"] = ROWS
        h5file["images"] = h5py.SoftLink("/train/images")
        h5file["alias"] = h5py.SoftLink("/images")
        h5file["all"] = h5py.SoftLink("/train")
    for name in ("images", "alias"):
        with pytest.raises(ValueError) as caught:
            open_hdf5(tmp_path / "data.h5", name)
        assert str(caught.value) == (
            f"{tmp_path / 'data.h5'}: no dataset '{name}' ('/images' is a soft link to "
            f"'/train/images', which the file does not hold); its datasets: train/x; give one "
            f"of them, or point the link at one")
    with pytest.raises(ValueError) as caught:   # the link leads somewhere: the name is wrong
        open_hdf5(tmp_path / "data.h5", "all/images")
    assert "soft link" not in str(caught.value)


def test_a_dangling_relative_soft_link_names_the_path_it_stands_for(tmp_path):
    # HDF5 looks a relative target up from the link's group: '/train/images' -> 'images_v1'
    # stands for '/train/images_v1', which the line gave as 'images_v1', a name the file's
    # root was then searched for by the reader of the line
    with h5py.File(tmp_path / "data.h5", "w") as h5file:
        h5file["train/x"] = ROWS
        h5file["train/images"] = h5py.SoftLink("images_v1")
    with pytest.raises(ValueError) as caught:
        open_hdf5(tmp_path / "data.h5", "train/images")
    assert ("('/train/images' is a soft link to 'images_v1', that is '/train/images_v1', "
            "which the file does not hold)") in str(caught.value)


def plugin_filtered(path, filter_ids, kind):
    """A data file ("data") or RBM model file ("model") at ``path`` whose rows or weights are
    stored through the filter plugins ``filter_ids``, as HDF5 writes them where the plugins
    are not installed (optional filters, skipped)."""
    import dlcore
    if kind == "model":
        data = (np.random.default_rng(0).random((16, 6)) < 0.5).astype(np.float32)
        dlcore.save(dlcore.BernoulliRBM(n_hidden=3, epochs=1, batch_size=8,
                                        backend="reference").fit(data), path)
    with h5py.File(path, "r+" if kind == "model" else "w") as h5file:
        name = "W" if kind == "model" else "images"
        values = h5file["W"][()] if kind == "model" else ROWS
        if kind == "model":
            del h5file["W"]
        creation = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        creation.set_chunk(values.shape)
        for filter_id in filter_ids:
            creation.set_filter(filter_id, h5py.h5z.FLAG_OPTIONAL, ())
        h5file.create_dataset(name, shape=values.shape, dtype=values.dtype,
                              dcpl=creation)[...] = values


@pytest.mark.parametrize("kind, filter_ids, named", [
    ("data", [32001], "'images' is compressed with Blosc (filter 32001), an HDF5 filter plugin "
                      "that dlcore does not load"),
    ("model", [32015], "'W' is compressed with Zstandard (filter 32015), an HDF5 filter plugin "
                       "that dlcore does not load"),
    ("data", [32008, 40000], "'images' is compressed with Bitshuffle (filter 32008) and filter "
                             "40000, HDF5 filter plugins that dlcore does not load")],
    ids=["blosc-data", "zstd-model", "two-plugins-data"])
def test_a_filter_plugin_is_named_with_the_conversion_that_reads_the_file(
        tmp_path, kind, filter_ids, named):
    # Blosc, Zstandard, Bitshuffle (hdf5plugin's) were named by number only, and a model file
    # stored through one was called damaged ("save the model again"): the line names the
    # compression and how to convert the file where the plugin is installed
    import dlcore
    path = tmp_path / "file.h5"
    plugin_filtered(path, filter_ids, kind)
    with pytest.raises(ValueError) as caught:
        (dlcore.load(path) if kind == "model" else open_hdf5(path, "images"))
    message = str(caught.value)
    assert message.startswith(f"{path}: dataset {named} (a plugin is code from outside HDF5); ")
    # h5repack comes with HDF5's tools, not with pip's h5py: the line said "h5repack -f GZIP=4
    # in.h5 out.h5, or h5py with hdf5plugin imported" and no more, as if both were at hand
    if kind == "data":   # the h5py way is a line: rows read with hdf5plugin, written again
        assert message.endswith(
            "; write the rows again with gzip where the plugin is installed: pip install "
            "hdf5plugin, then in Python import hdf5plugin, rows = h5py.File(path)[name][()] and "
            "h5py.File(copy, 'w').create_dataset(name, data=rows, compression='gzip'); then "
            "open the copy")
    else:   # a model file's groups and attributes must be kept: h5repack, or the docs' copy
        assert message.endswith(
            "; convert the file to gzip where the plugin is installed: h5repack -f GZIP=4 in.h5 "
            "out.h5 (HDF5's tools, not installed with h5py: apt install hdf5-tools), or with "
            "h5py after pip install hdf5plugin and import hdf5plugin, copying each dataset with "
            "compression='gzip' and the attributes (docs/hdf5-format.md shows how); then open "
            "the copy")
    assert "\n" not in message


def test_the_documented_h5py_copy_of_a_plugin_compressed_model_file_loads(tmp_path,
                                                                          monkeypatch):
    # the refusal of a model file stored through a filter plugin points to the docs' h5py
    # copy: run it (hdf5plugin stood in for: this file's W is stored unfiltered, as HDF5 writes
    # an optional filter it does not have) and load what it writes
    import sys
    import types
    from pathlib import Path

    import dlcore
    docs = (Path(__file__).resolve().parents[1] / "docs" / "hdf5-format.md").read_text()
    recipe = next(block for block in docs.split("```python\n")[1:]
                  if "def copy_with_gzip" in block).split("```")[0]
    plugin_filtered(tmp_path / "model-blosc.h5", [32001], "model")
    monkeypatch.setitem(sys.modules, "hdf5plugin", types.ModuleType("hdf5plugin"))
    monkeypatch.chdir(tmp_path)
    exec(compile(recipe, "docs/hdf5-format.md", "exec"), {})
    with pytest.raises(ValueError, match="Blosc"):
        dlcore.load(tmp_path / "model-blosc.h5")
    copy = dlcore.load(tmp_path / "model.h5")
    with h5py.File(tmp_path / "model-blosc.h5", "r") as old, \
            h5py.File(tmp_path / "model.h5", "r") as new:
        np.testing.assert_array_equal(copy.W, old["W"][()])
        assert new["W"].compression == "gzip" and dict(new.attrs) == dict(old.attrs)


@pytest.mark.parametrize("compression", ["gzip", "lzf"])
def test_bool_rows_of_a_wider_enumeration_are_read_not_called_a_bomb(tmp_path, compression):
    # h5py reads any enumeration of FALSE = 0 and TRUE = 1 as NumPy's bool, whatever its base
    # integer (a C program's of int32): the chunk check sized its chunks by NumPy's 1-byte bool
    # and refused the 4-byte elements' compressed chunks as a decompression bomb
    mask = ROWS > 100
    with h5py.File(tmp_path / "data.h5", "w") as h5file:
        boolean = h5py.h5t.enum_create(h5py.h5t.STD_I32LE)
        boolean.enum_insert(b"FALSE", 0)
        boolean.enum_insert(b"TRUE", 1)
        creation = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        creation.set_chunk(mask.shape)   # 2,304 bytes: more than 576 + the check's slack
        if compression == "gzip":
            creation.set_deflate(4)
        else:
            creation.set_filter(32000, h5py.h5z.FLAG_OPTIONAL, ())
        h5py.Dataset(h5py.h5d.create(h5file.id, b"images", boolean,
                                     h5py.h5s.create_simple(mask.shape), dcpl=creation))[...] = mask
    rows = open_hdf5(tmp_path / "data.h5", "images")
    np.testing.assert_array_equal(np.asarray(rows), mask)


def test_the_compiled_lzf_walk_counts_what_its_python_reference_counts():
    # the oracle: lzf_walk run by Python, and a hand-counted back-reference of the most bytes
    # (7 + 255 + 2 = 264: a length byte added as a uint8 would wrap round)
    from dlcore.io.guarded import _lzf_output_bytes, lzf_walk
    assert lzf_walk(bytes([0xE0, 0xFF, 0]), 10**6) == 264
    rng = np.random.default_rng(7)
    streams = [b"", bytes([0xE0]), bytes([0xE0, 0xFF]), bytes([31, 1]), lzf_zeros(2**16),
               bytes([0xE0, 0xFF, 0]) * 1000]
    streams += [rng.integers(0, 256, size, dtype=np.uint8).tobytes() for size in (1, 7, 4096)]
    for stream in streams:
        for limit in (0, 1, 263, 264, 3 * len(stream), 2**40):
            assert _lzf_output_bytes(stream, limit) == lzf_walk(stream, limit), (stream[:8], limit)


def write_bit_fields(path, values, stored=h5py.h5t.STD_B8LE, chunks=None):
    """``values`` (uint8) as dataset 'images' of HDF5 bit fields (``stored``), as a C program
    writes bools with H5T_NATIVE_B8."""
    with h5py.File(path, "w") as h5file:
        plist = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        if chunks:
            plist.set_chunk(chunks)
            plist.set_deflate(4)
        dataset = h5py.h5d.create(h5file.id, b"images", stored.copy(),
                                  h5py.h5s.create_simple(values.shape), dcpl=plist)
        dataset.write(h5py.h5s.ALL, h5py.h5s.ALL, values, mtype=h5py.h5t.NATIVE_B8)


@pytest.mark.parametrize("chunks", [None, (2, 6, 6)])
def test_bool_rows_stored_as_bit_fields_of_8_bits_are_read_as_bools(tmp_path, chunks):
    # "dataset 'images' holds bit fields, which dlcore does not read"
    rows = ROWS % 2 == 1
    write_bit_fields(tmp_path / "data.h5", rows.astype(np.uint8), chunks=chunks)
    read = open_hdf5(tmp_path / "data.h5", "images")
    assert read.dtype == np.bool_
    np.testing.assert_array_equal(read.rows(np.arange(len(rows))), rows)
    np.testing.assert_array_equal(np.asarray(read.unit_interval())[3],
                                  rows[3].reshape(-1).astype(np.float32))


def test_bit_fields_that_are_not_bools_are_refused_in_one_line(tmp_path):
    values = (ROWS % 2).astype(np.uint8)
    values[5, 0, 0] = 2
    write_bit_fields(tmp_path / "data.h5", values)
    read = open_hdf5(tmp_path / "data.h5", "images")
    read.rows(np.arange(5))   # the rows before it are bools
    with pytest.raises(ValueError, match=r"^[^\n]*'images' holds bit fields of values other "
                                         r"than 0 and 1 \(e.g. 2\), which are not bools[^\n]*$"):
        read.rows(np.arange(8))
    write_bit_fields(tmp_path / "wide.h5", values.astype(np.uint16), h5py.h5t.STD_B16LE)
    with pytest.raises(ValueError, match=r"^[^\n]*'images' holds bit fields of 16 bits; dlcore "
                                         r"reads bit fields of 8 bits only, as bools[^\n]*$"):
        open_hdf5(tmp_path / "wide.h5", "images")


def test_compressed_rows_keep_all_their_chunks_in_a_bounded_chunk_cache(tmp_path, monkeypatch):
    # HDF5's default cache (1 to 8 MiB) inflated a chunk again for nearly every batch of a
    # shuffled epoch; the cache now holds every chunk of the rows, up to a bound
    import dlcore.lazy_rows
    write_rows(tmp_path / "data.h5", chunks=(2, 6, 6), compression="gzip")
    rows = open_hdf5(tmp_path / "data.h5", "images")
    slots, n_bytes, _ = rows.reader.dataset.id.get_access_plist().get_chunk_cache()
    assert n_bytes >= ROWS.nbytes and slots > 8   # 8 chunks of 72 bytes
    order = np.random.default_rng(0).permutation(len(ROWS))
    np.testing.assert_array_equal(rows.rows(order), ROWS[order])
    monkeypatch.setattr(dlcore.lazy_rows, "MAX_CHUNK_CACHE_BYTES", 3 * 72)
    rows.reader.close()   # HDF5 shares one cache among the opens of a dataset
    bounded = open_hdf5(tmp_path / "data.h5", "images")
    assert bounded.reader.dataset.id.get_access_plist().get_chunk_cache()[1] == 2**20
