"""The structured fuzz of model files (tests/model_file_fuzzer.py), a quick run.

40 (and, marked slow, 150) damaged or hostile copies of saved BernoulliRBM, GaussianBernoulliRBM,
DBN, LeNet-5, functional-model, Autoencoder and StackedAutoencoder files, and of Keras files
(LeNet-5 exported by dlcore; model files written by Keras itself, tests/fixtures/: a convnet, a
residual net, unequal 'same' padding, a U-Net, a compiled model, augmentation, a graph out of call
order; Keras 3 ``.weights.h5`` files loaded with their architecture) are loaded (and described, as
``dlcore info`` does) in a worker process limited to 4 GiB of address space and 20 s per file:
every one must be refused with a one-line ModelFileError naming the file, or load into a model
that holds only finite parameters and runs. The 1,000-file run is
``python tests/model_file_fuzzer.py --files 1000 --seed 0``.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

import pytest

import model_file_fuzzer


def assert_every_file_refused_clearly_or_works(n_files, seed, folder):
    counts, _, records = model_file_fuzzer.run_fuzz(n_files, seed=seed, folder=str(folder))
    bad = [f"{outcome}: {mutations} -> {detail}" for _, _, mutations, outcome, detail in records
           if outcome not in model_file_fuzzer.GOOD_OUTCOMES]
    assert not bad, "\n".join(bad[:20])
    assert sum(counts.values()) == n_files
    return counts


def test_forty_fuzzed_model_files_are_refused_clearly_or_load_and_work(tmp_path):
    assert_every_file_refused_clearly_or_works(40, 0, tmp_path)


@pytest.mark.slow
def test_no_fuzzed_model_file_gives_an_internal_error_a_non_finite_model_or_a_hang(tmp_path):
    counts = assert_every_file_refused_clearly_or_works(150, 7, tmp_path)
    # The mutations are not all fatal: some copies still load (e.g. a deleted history series).
    assert counts["refused-clearly"] > 0 and counts["loaded-and-works"] > 0


@pytest.mark.parametrize("mutation, copies", [(model_file_fuzzer.chunk_bomb, 2),
                                              (model_file_fuzzer.odd_storage, 10),
                                              (model_file_fuzzer.odd_dtype_attribute, 10),
                                              (model_file_fuzzer.odd_dtype_dataset, 10),
                                              (model_file_fuzzer.filtered_storage, 10),
                                              (model_file_fuzzer.filter_parameters, 10),
                                              (model_file_fuzzer.stored_chunks, 10)])
def test_the_storage_and_type_mutations_make_files_that_are_refused_or_work(
        tmp_path, mutation, copies):
    """The fuzzer's mutations of a dataset's storage (a decompression bomb's chunk, data
    outside the file, HDF5's filters, their parameters damaged, a stored chunk replaced) and
    of the types of attributes and datasets, each applied to copies of a saved RBM, give
    files that are refused in one line or load and work."""
    import h5py
    import numpy as np

    import dlcore
    from dlcore.io import ModelFileError, describe
    data = (np.random.default_rng(0).random((16, 6)) < 0.5).astype(np.float32)
    base = tmp_path / "rbm.h5"
    dlcore.save(dlcore.BernoulliRBM(n_hidden=3, epochs=1, batch_size=8,
                                    backend="reference").fit(data), base)
    rng = np.random.default_rng(48)
    for index in range(copies):
        path = tmp_path / f"copy{index}.h5"
        path.write_bytes(base.read_bytes())
        with h5py.File(path, "r+") as h5file:
            what = mutation(h5file, rng)
        model_file_fuzzer.apply_pending_patches(str(path))
        outcome, detail = model_file_fuzzer.classify(str(path), dlcore.load, ModelFileError,
                                                     describe)
        assert outcome in model_file_fuzzer.GOOD_OUTCOMES, f"{what}: {outcome}: {detail}"


def test_the_nested_shape_mutation_of_a_model_nesting_two_deep_is_refused_before_building(
        tmp_path):
    """The shapes that the nested models of the fuzzer's nested base declare (a Sequential one
    deep, a Sequential in a block model two deep), set just over the limits, absurd, one off or
    of another rank, are refused in one line before any nested model is built (one of 10**12
    made NumPy allocate 7.28 TiB; seed 69)."""
    import h5py
    import numpy as np

    import dlcore
    from dlcore.io import ModelFileError, describe
    base = tmp_path / "nested.h5"
    dlcore.save(model_file_fuzzer._nested_model(np.random.default_rng(0)), base)
    rng = np.random.default_rng(69)
    refused = []
    for index in range(12):
        path = tmp_path / f"copy{index}.h5"
        path.write_bytes(base.read_bytes())
        with h5py.File(path, "r+") as h5file:
            what = model_file_fuzzer.nested_shape(h5file, rng)
        outcome, detail = model_file_fuzzer.classify(str(path), dlcore.load, ModelFileError,
                                                     describe)
        assert outcome in model_file_fuzzer.GOOD_OUTCOMES, f"{what}: {outcome}: {detail}"
        refused += ["nested model" in detail and "'models'" in what]
    assert sum(refused) >= 6, refused   # the nested models' shapes above all


def test_the_chunk_bombs_zlib_stream_assembled_without_deflating_its_zeros_reads_back():
    """The fuzzer assembles a bomb's chunk as a zlib stream (deflating 256 MiB of zeros took
    seconds a file): HDF5 must read it as the dataset's own values (a smaller chunk here)."""
    import io

    import h5py
    import numpy as np
    values = np.arange(1, 19, dtype=np.float32).reshape(6, 3)
    chunks = (1000, 1100)   # 4.2 MiB: whole MiB of zeros and a part of one
    memory = io.BytesIO()
    with h5py.File(memory, "w") as h5file:
        dataset = h5file.create_dataset("W", shape=values.shape, dtype=values.dtype,
                                        maxshape=(None, None), chunks=chunks,
                                        compression="gzip")
        dataset.id.write_direct_chunk((0, 0), model_file_fuzzer._gzipped_chunk(values, chunks))
        np.testing.assert_array_equal(h5file["W"][()], values)


def test_the_many_attributes_mutation_adds_attributes_and_replaces_none(tmp_path):
    """Drawn twice on one owner, the mutation rewrote the first draw's thousands of attributes,
    and HDF5 replaces one in dense storage slowly (a tenth of a second or more each): the
    data-file fuzz of seed 181 never finished writing its file. Each draw adds names of its
    own, so what the owner held is kept."""
    import h5py
    import numpy as np
    with h5py.File(tmp_path / "owner.h5", "w") as h5file:
        h5file.attrs["a0"] = "kept"
        model_file_fuzzer.many_attributes(h5file, np.random.default_rng(1))   # 1,001
        count = len(h5file.attrs)
        assert h5file.attrs["a0"] == "kept" and count > 1_000
        model_file_fuzzer.many_attributes(h5file, np.random.default_rng(1))   # 1,001
        assert len(h5file.attrs) == 2 * count - 1


# slow: the worker process's start (importing dlcore and h5py) is most of its 2-4 s, and the
# files need a worker of their own, which reads data files rather than loading models
@pytest.mark.slow
def test_fuzzed_data_files_are_refused_clearly_or_read_as_training_reads_them(tmp_path):
    """``--data-files``: copies of data files (uint8 images, gzipped float rows, rows behind a
    soft link) changed by the mutations of a dataset and what surrounds it, each read by
    ``open_hdf5`` as training reads it, in the worker under the same limits."""
    counts, _, records = model_file_fuzzer.run_fuzz(24, seed=0, folder=str(tmp_path),
                                                    data_files=True)
    bad = [f"{outcome}: {mutations} -> {detail}" for _, _, mutations, outcome, detail in records
           if outcome not in model_file_fuzzer.GOOD_OUTCOMES]
    assert not bad, "\n".join(bad)
    assert counts["refused-clearly"] > 0 and counts["loaded-and-works"] > 0
    assert {base for _, base, _, _, _ in records} == set(model_file_fuzzer.DATA_BASE_NAMES)


def test_a_file_whose_writing_takes_too_long_is_abandoned_and_the_next_is_written(tmp_path):
    # the fuzzer's writing had no time limit: a mutation that never ended stopped the run
    import time

    import h5py
    import numpy as np
    with h5py.File(tmp_path / "base.h5", "w") as h5file:
        h5file["x"] = np.zeros(3)

    def slow_once(h5file, rng, calls=[]):   # noqa: B006 - the calls so far
        calls.append(1)
        if len(calls) == 1:
            time.sleep(30)
        return "touched"

    started = time.perf_counter()
    files = model_file_fuzzer.make_fuzzed_files({"base": str(tmp_path / "base.h5")},
                                                str(tmp_path), 2, 0, [(slow_once, 1)],
                                                ["base"], write_timeout=0.5)
    assert time.perf_counter() - started < 20
    (first, _, timed_out), (second, _, written) = files
    assert timed_out.startswith(model_file_fuzzer.WRITE_TIMED_OUT) and not os.path.exists(first)
    assert written.startswith("touched") and os.path.exists(second)
