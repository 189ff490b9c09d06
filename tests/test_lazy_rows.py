"""Lazy rows (dlcore.lazy_rows): training reads its data from disk a mini-batch at a time.

Oracles: the eager arrays. Training from an IDX file memory-mapped or an HDF5 dataset gives
bit for bit the parameters that training from the arrays gives (one process), and under
``mpiexec -n 2`` the parameters of one process within 1e-5 while each rank reads only its
shard of every batch (the reads are recorded: disjoint across the ranks, together each row of
the epoch once). A damaged IDX file is refused by ``open_idx`` with read_idx's one line."""
import gc
import gzip
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dlcore
import dlcore.distributed
from conftest import requires_cuda
from distributed_worker import Network, binary_data
from dlcore.backend import get_backend
from dlcore.batches import mini_batches
from dlcore.datasets import (
    load_dataset,
    open_hdf5,
    open_idx,
    read_idx,
    select_classes,
    to_unit_interval,
    write_idx,
)
from dlcore.datasets.idx import format_idx
from dlcore.distributed.fingerprint import data_fingerprint
from dlcore.lazy_rows import LazyRows
from test_distributed import assert_equal_to_one_process, requires_mpi4py

HERE = Path(__file__).resolve().parent
FAST = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
RBM = dict(n_hidden=5, epochs=3, batch_size=7, learning_rate=0.1, momentum=0.5,
           weight_decay=1e-3, seed=4, backend="cpu")


@pytest.fixture
def files(tmp_path):
    """An IDX file of uint8 pixels and an HDF5 file of the same rows as float32 in [0, 1]."""
    pixels = (binary_data(23, 12) * 255).astype(np.uint8)
    pixels[::3] //= 3   # grey values too: the division by 255 is exercised
    write_idx(tmp_path / "x-idx", pixels)
    write_idx(tmp_path / "x-idx.gz", pixels)
    with h5py.File(tmp_path / "x.h5", "w") as file:
        file["x"] = to_unit_interval(pixels)
    return tmp_path, to_unit_interval(pixels)


def lazy_sources(folder):
    return {"idx": open_idx(folder / "x-idx").unit_interval(),
            "idx.gz": open_idx(folder / "x-idx.gz", unpack_to=folder / "unpacked")
            .unit_interval(),
            "hdf5": open_hdf5(folder / "x.h5", "x")}


# -- one process: the same values, the same training ----------------------------------------
def test_a_compressed_idx_file_with_no_writable_cache_is_held_in_memory(files, monkeypatch):
    """A read-only home (here: a cache folder below a plain file, which root cannot write
    either) leaves nowhere to unpack a gzip IDX file to: its rows are read from memory, the
    same rows, with the file's identity. A folder given for them stays an error."""
    folder, X = files
    (folder / "not-a-folder").write_bytes(b"")
    monkeypatch.setenv("XDG_CACHE_HOME", str(folder / "not-a-folder"))
    lazy = open_idx(folder / "x-idx.gz")
    assert lazy.reader.path is None
    np.testing.assert_array_equal(np.asarray(lazy.unit_interval()), X)
    np.testing.assert_array_equal(lazy.unit_interval().rows(np.array([3, 1])), X[[3, 1]])
    unpacked = open_idx(folder / "x-idx.gz", unpack_to=folder / "unpacked")
    assert lazy.reader.identity() == unpacked.reader.identity()
    with pytest.raises(OSError):
        open_idx(folder / "x-idx.gz", unpack_to=folder / "not-a-folder" / "unpacked")


def test_lazy_rows_read_the_values_of_the_eager_array_in_any_order(files):
    folder, X = files
    rows = np.array([5, 0, 22, 5, 17])
    for lazy in lazy_sources(folder).values():
        np.testing.assert_array_equal(lazy.rows(rows), X[rows])
        np.testing.assert_array_equal(np.asarray(lazy), X)
        np.testing.assert_array_equal(lazy.mean(axis=0, dtype=np.float64),
                                      X.mean(axis=0, dtype=np.float64))
        assert (lazy.min(), lazy.max()) == (X.min(), X.max())
        view = lazy[rows[::-1]][1:]
        np.testing.assert_array_equal(np.asarray(view), X[rows[::-1]][1:])


def test_a_lazy_view_reads_nothing_until_a_batch_is_asked_for(files):
    folder, X = files
    lazy = open_idx(folder / "x-idx")
    images, _ = select_classes(lazy, np.arange(23) % 3, [0, 2])
    view = to_unit_interval(images).reshape(len(images), 3, 4)
    assert lazy.rows_read == 0 and view.shape == (15, 3, 4)
    np.testing.assert_array_equal(view.rows(np.array([1, 0])),
                                  X[np.arange(23) % 3 != 1][[1, 0]].reshape(2, 3, 4))
    assert lazy.rows_read == 2


@pytest.mark.parametrize("source", ["idx", "idx.gz", "hdf5"])
def test_an_rbm_trained_from_lazy_rows_equals_the_one_trained_from_the_array(files, source):
    folder, X = files
    lazy = lazy_sources(folder)[source]
    alone = dlcore.BernoulliRBM(**RBM).fit(X)
    from_disk = dlcore.BernoulliRBM(**RBM).fit(lazy)
    assert np.max(np.abs(alone.W)) > 0.05   # it trained
    for name in ("W", "visible_bias", "hidden_bias"):
        np.testing.assert_array_equal(getattr(from_disk, name), getattr(alone, name))
    assert from_disk.history["reconstruction_error"] == alone.history["reconstruction_error"]


def test_an_autoencoder_trained_from_lazy_rows_equals_the_one_trained_from_the_array(files):
    folder, X = files
    options = dict(n_hidden=5, epochs=3, batch_size=7, learning_rate=0.1, corruption=0.3,
                   seed=4, backend="cpu")
    alone = dlcore.Autoencoder(**options).fit(X)
    from_disk = dlcore.Autoencoder(**options).fit(lazy_sources(folder)["idx"])
    for name in ("W", "visible_bias", "hidden_bias"):
        np.testing.assert_array_equal(getattr(from_disk, name), getattr(alone, name))
    assert alone.history["loss"][0] != alone.history["loss"][-1]


@pytest.mark.parametrize("source", ["idx", "hdf5"])
@pytest.mark.parametrize("convolutional", [False, True])
def test_a_network_trained_from_lazy_rows_equals_the_one_trained_from_the_array(
        files, source, convolutional):
    folder, X = files
    y = np.arange(23) % 3
    shape = (23, 1, 2, 6) if convolutional else (23, 12)
    lazy = lazy_sources(folder)[source].reshape(shape)
    alone = Network(convolutional, seed=4, backend="cpu")
    from_disk = Network(convolutional, seed=4, backend="cpu")
    if convolutional:   # the test's conv net takes 6x6 images: give it 2x6 ones
        from dlcore.layers import Conv2D, Dense, Flatten
        for network in (alone, from_disk):
            network.model = dlcore.Sequential(
                [Conv2D(2, 3, padding=1, activation="relu"), Flatten(),
                 Dense(3, activation="softmax")], input_shape=(1, 2, 6), backend="cpu", seed=4)
            network.model.compile(loss="cross_entropy", optimizer=dlcore.optimizers.SGD(0.1))
    alone.fit(X.reshape(shape), y)
    from_disk.fit(lazy, y)
    for got, expected in zip(from_disk.model.get_weights(), alone.model.get_weights()):
        np.testing.assert_array_equal(got, expected)
    assert alone.history["loss"][0] != alone.history["loss"][-1]


def test_values_outside_the_unit_interval_are_refused_when_their_batch_is_read(tmp_path):
    with h5py.File(tmp_path / "x.h5", "w") as file:
        file["x"] = np.linspace(0, 2, 40, dtype=np.float32).reshape(10, 4)
    with pytest.raises(ValueError, match=r"X: the values of .*x.h5:x must lie in \[0, 1\]"):
        dlcore.BernoulliRBM(n_hidden=2, epochs=1, backend="cpu").fit(
            open_hdf5(tmp_path / "x.h5", "x"))


def test_stored_values_within_float32_rounding_of_the_unit_interval_train_clipped(tmp_path):
    # a float32 MinMaxScaler's output saved to a file: its 1.0000001 was refused per batch
    X = (binary_data(20, 4) * np.float32(0.5) + np.float32(0.25)).astype(np.float32)
    X[3, 1], X[7, 2] = np.float32(1.0000001), np.float32(-6e-8)
    with h5py.File(tmp_path / "x.h5", "w") as file:
        file["x"] = X
    lazy = dlcore.BernoulliRBM(**RBM).fit(open_hdf5(tmp_path / "x.h5", "x"))
    eager = dlcore.BernoulliRBM(**RBM).fit(np.clip(X, 0, 1))
    np.testing.assert_array_equal(lazy.W, eager.W)


def test_held_out_rows_beyond_the_unit_interval_pass_lazily_as_they_pass_in_an_array(tmp_path):
    # a scaler fitted on the training rows maps held-out ones a little beyond [0, 1]: an
    # array of them passes transform as it is, and the same rows from a file were refused
    rbm = dlcore.BernoulliRBM(**RBM).fit(binary_data(20, 4))
    held_out = (binary_data(9, 4) * np.float32(1.04) - np.float32(0.02)).astype(np.float32)
    pixels = np.round(binary_data(9, 4) * 200).astype(np.float32)
    with h5py.File(tmp_path / "x.h5", "w") as file:
        file["held_out"], file["pixels"] = held_out, pixels
    np.testing.assert_array_equal(rbm.transform(open_hdf5(tmp_path / "x.h5", "held_out")),
                                  rbm.transform(held_out))
    with pytest.raises(ValueError, match=r"x.h5:pixels look like 8-bit pixels.*divide them by "
                                         r"255 \(dlcore.datasets.to_unit_interval\)"):
        rbm.transform(open_hdf5(tmp_path / "x.h5", "pixels"))
    with pytest.raises(ValueError, match=r"divide 8-bit images by 255"):
        rbm.transform(pixels)


def test_an_hdf5_file_without_the_dataset_names_the_ones_it_has(tmp_path):
    with h5py.File(tmp_path / "x.h5", "w") as file:
        file["images"] = np.zeros((3, 2), np.float32)
    with pytest.raises(ValueError, match="no dataset 'x'; its datasets: images"):
        open_hdf5(tmp_path / "x.h5", "x")
    (tmp_path / "not.h5").write_bytes(b"plain text")
    with pytest.raises(ValueError, match="not a readable HDF5 file"):
        open_hdf5(tmp_path / "not.h5", "x")


@pytest.mark.parametrize("backend_name", ["reference", "cpu",
                                          pytest.param("cuda", marks=requires_cuda)])
def test_a_shard_of_each_batch_is_all_a_rank_gathers_and_reads(files, backend_name):
    folder, X = files
    lazy = open_idx(folder / "x-idx").unit_interval()
    backend = get_backend(backend_name)
    buffer = backend.asarray(np.full((7, 12), -1.0, np.float32))
    order = np.arange(23)[::-1].copy()
    for batch in mini_batches(backend, (lazy,), (buffer,), order, 7,
                              shard=lambda n: (min(2, n), min(5, n))):
        rows = order[batch.index * 7:][:7]
        view = backend.to_numpy(batch.arrays[0])
        np.testing.assert_array_equal(view[2:5], X[rows[2:5]])
        assert (view[:2] == -1).all()   # the other ranks' rows: not gathered here
    assert lazy.rows_read == 3 * 3 + 0   # batches of 7, 7, 7 hold rows 2-4; the last (2) none


def test_the_fingerprint_reads_a_sample_and_tells_other_data_apart(files, tmp_path):
    folder, _ = files
    lazy = open_idx(folder / "x-idx").unit_interval()
    fingerprint = data_fingerprint(lazy)
    assert lazy.rows_read <= 16 and fingerprint == data_fingerprint(
        open_idx(folder / "x-idx").unit_interval())
    assert data_fingerprint(lazy[1:]) != fingerprint
    assert data_fingerprint(lazy[::-1]) != fingerprint
    other = read_idx(folder / "x-idx")
    other[0, 0] ^= 1   # a sampled row (the first) changed
    write_idx(tmp_path / "other-idx", other)
    assert data_fingerprint(open_idx(tmp_path / "other-idx").unit_interval())[-1] != \
        fingerprint[-1]


def test_fashion_mnist_opens_lazily_with_the_values_of_the_eager_loader():
    try:
        lazy, labels = load_dataset("fashion-mnist", "test", download=False, lazy=True)
    except dlcore.datasets.DatasetNotFoundError:
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    images, eager_labels = load_dataset("fashion-mnist", "test", download=False)
    rows = np.array([9999, 0, 4321])
    np.testing.assert_array_equal(to_unit_interval(lazy).rows(rows),
                                  to_unit_interval(images[rows]))
    np.testing.assert_array_equal(labels, eager_labels)


class OneRank:
    """A communicator of one rank (what --distributed gives a command run without mpiexec)."""
    rank, size = 0, 1

    def allreduce(self, buffer):
        return buffer


def test_distributed_commands_open_their_training_images_lazily_with_the_same_values():
    from dlcore.cli._digits import load_digit_split
    from dlcore.cli.cnn import train_and_test_sets
    eager = load_digit_split("mnist-5k", [0, 1], [0, 1], 3)
    lazy = load_digit_split("mnist-5k", [0, 1], [0, 1], 3, comm=OneRank())
    assert isinstance(lazy[0], LazyRows) and not isinstance(lazy[1], LazyRows)
    for got, expected in zip(lazy, eager):
        np.testing.assert_array_equal(np.asarray(got), expected)
    (x, y), test, _ = train_and_test_sets("mnist-5k", 3, lazy=True)
    (x_eager, y_eager), test_eager, _ = train_and_test_sets("mnist-5k", 3)
    assert isinstance(x, LazyRows) and x.shape == x_eager.shape
    np.testing.assert_array_equal(x.rows(np.array([7, 0])), x_eager[[7, 0]])
    for got, expected in zip((y, *test), (y_eager, *test_eager)):
        np.testing.assert_array_equal(got, expected)


# -- hostile files: read_idx's one line ------------------------------------------------------
def valid_idx_bytes():
    return format_idx(np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4))


def same_refusal(path, unpack_to):
    """open_idx refuses ``path`` with the ValueError line read_idx gives, or both accept."""
    try:
        expected = read_idx(path)
    except ValueError as error:
        with pytest.raises(ValueError) as caught:
            open_idx(path, unpack_to=unpack_to)
        assert str(caught.value) == str(error) and "\n" not in str(caught.value)
    else:
        np.testing.assert_array_equal(np.asarray(open_idx(path, unpack_to=unpack_to)),
                                      expected)


@FAST
@given(cut=st.integers(min_value=0, max_value=len(valid_idx_bytes()) - 1),
       compressed=st.booleans())
def test_a_truncated_idx_file_is_refused_as_read_idx_refuses_it(tmp_path, cut, compressed):
    content = gzip.compress(valid_idx_bytes()) if compressed else valid_idx_bytes()
    path = tmp_path / ("images-idx3-ubyte.gz" if compressed else "images-idx3-ubyte")
    path.write_bytes(content[:max(cut, 2) if compressed else cut])
    same_refusal(path, tmp_path / "unpacked")


@FAST
@given(content=st.binary(max_size=64), garbage=st.binary(max_size=8))
def test_random_and_trailing_bytes_are_refused_as_read_idx_refuses_them(tmp_path, content,
                                                                        garbage):
    for name, data in (("random", content), ("trailing", valid_idx_bytes() + garbage),
                       ("random.gz", b"\x1f\x8b" + content),
                       ("trailing.gz", gzip.compress(valid_idx_bytes()) + garbage)):
        (tmp_path / name).write_bytes(data)
        same_refusal(tmp_path / name, tmp_path / "unpacked")
    assert not any(name.startswith(".") for name in os.listdir(tmp_path / "unpacked")
                   if (tmp_path / "unpacked").exists())   # no half-written copy left


# -- under mpiexec: each rank reads its rows only ---------------------------------------------
def run_ranks(ranks, folder, *cases, timeout=600):
    """``timeout``: a hang's bound only: a job on a cold kernel cache (each rank compiling the
    RBM's and the network's kernels at once) took 56 s here at a load of 13, 5 s warm."""
    return subprocess.run([dlcore.distributed.launcher(), "-n", str(ranks), sys.executable,
                           str(HERE / "lazy_rows_worker.py"), str(folder), *cases],
                          capture_output=True, text=True, timeout=timeout, cwd=HERE,
                          # the worker next to this file, and this checkout's dlcore
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(
                              [str(HERE), str(HERE.parent)])}, check=False)


def assert_each_rank_read_its_shards(reads, passes):
    """``reads`` {rank: [(caller, rows)]} of ``passes`` epochs over 23 rows in batches of 7, 7,
    7, 2: rank 0 reads 4, 4, 4, 1 of them, rank 1 3, 3, 3, 1; never a row of the other's
    shard, and together every row once a pass."""
    batches = [[rows for caller, rows in reads[rank] if caller == "gather"] for rank in (0, 1)]
    assert [len(rows) for rows in batches[0]] == [4, 4, 4, 1] * passes
    assert [len(rows) for rows in batches[1]] == [3, 3, 3, 1] * passes
    for mine, theirs in zip(*batches):
        assert not set(mine) & set(theirs)
    for epoch in range(passes):
        seen = [row for rank in (0, 1) for rows in batches[rank][4 * epoch:4 * epoch + 4]
                for row in rows]
        assert sorted(seen) == list(range(23))


@requires_mpi4py
def test_two_ranks_train_from_lazy_rows_as_one_process_reading_only_their_rows(tmp_path):
    from lazy_rows_worker import write_data
    write_data(tmp_path)
    completed = run_ranks(2, tmp_path, "rbm", "network")
    assert completed.returncode == 0, completed.stderr[-3000:]
    for case in ("rbm", "network"):
        assert_equal_to_one_process(json.loads((tmp_path / f"{case}.json").read_text()))
        reads = {rank: json.loads((tmp_path / f"{case}-rank{rank}.json").read_text())["reads"]
                 for rank in (0, 1)}
        assert_each_rank_read_its_shards(reads, 3)
        others = {caller for rank in (0, 1) for caller, _ in reads[rank]} - {"gather"}
        if case == "rbm":   # the visible biases' mean: each rank its stripe of rows
            stripes = [[row for caller, rows in reads[rank] if caller == "mean" for row in rows]
                       for rank in (0, 1)]
            assert stripes == [list(range(12)), list(range(12, 23))]
        assert others <= {"mean", "fingerprint"}


# -- a DBN: the upper RBMs train on features computed a batch at a time -----------------------
DBN = dict(layers=[12, 6, 5, 4], epochs=2, batch_size=7, learning_rate=0.1, momentum=0.5,
           seed=4, backend="cpu")


@pytest.mark.parametrize("n_labels", [0, 3])
def test_a_dbn_pretrained_from_lazy_rows_equals_the_one_pretrained_from_the_array(files,
                                                                                  n_labels):
    folder, X = files
    y = np.arange(23) % 3 if n_labels else None
    lazy = lazy_sources(folder)["idx"]
    from_disk = dlcore.DBN(**DBN, n_labels=n_labels).fit(lazy, y)
    # every RBM: its visible mean, then each row once an epoch, read from the file (the upper
    # RBMs' rows computed from them): never an (N, hidden) pass of features in memory
    assert lazy.rows_read == 3 * (1 + DBN["epochs"]) * 23
    from_memory = dlcore.DBN(**DBN, n_labels=n_labels).fit(X, y)
    for lazy_rbm, rbm in zip(from_disk.rbms_, from_memory.rbms_, strict=True):
        for name in ("W", "visible_bias", "hidden_bias"):
            np.testing.assert_array_equal(getattr(lazy_rbm, name), getattr(rbm, name))
    assert ({name: value for name, value in from_disk.history.items() if "seconds" not in name}
            == {name: value for name, value in from_memory.history.items()
                if "seconds" not in name})


def test_up_down_from_lazy_rows_reads_a_batch_at_a_time_and_equals_the_arrays(files):
    folder, X = files
    y = np.arange(23) % 3
    settings = {**DBN, "n_labels": 3, "up_down_epochs": 2, "up_down_batch_size": 5}
    lazy = lazy_sources(folder)["idx"]
    from_disk = dlcore.DBN(**settings).fit(lazy, y)
    # pretraining as above, then each up-down epoch reads every row once, batch by batch
    assert lazy.rows_read == 3 * (1 + DBN["epochs"]) * 23 + 2 * 23
    from_memory = dlcore.DBN(**settings).fit(X, y)
    for (G, g), (G0, g0) in zip(from_disk.generative_, from_memory.generative_, strict=True):
        np.testing.assert_array_equal(G, G0)
        np.testing.assert_array_equal(g, g0)
    assert (from_disk.history["up_down_reconstruction_error"]
            == from_memory.history["up_down_reconstruction_error"])


def test_a_dbn_refuses_to_propagate_samples_from_lazy_rows_in_one_line(files):
    folder, _ = files
    with pytest.raises(ValueError, match='propagate="mean"') as caught:
        dlcore.DBN(**DBN, propagate="sample").fit(lazy_sources(folder)["idx"])
    assert "\n" not in str(caught.value)


def test_the_lazy_features_of_a_batch_are_the_up_pass_of_its_rows_only(files):
    from dlcore.dbn.stack import lazy_features
    folder, X = files
    model = dlcore.DBN(**DBN).fit(X)
    lazy = lazy_sources(folder)["idx"]
    features = lazy_features(lazy_features(lazy, model.rbms_[:1]), model.rbms_[1:2])
    rows = np.array([9, 2, 9])
    expected = model.rbms_[1].transform(model.rbms_[0].transform(X))[rows]
    np.testing.assert_allclose(features.rows(rows), expected, rtol=0, atol=1e-6)
    assert lazy.rows_read == 2 and features.shape == (23, 5)


@requires_mpi4py
@pytest.mark.slow
def test_two_ranks_pretrain_a_dbn_from_lazy_rows_as_one_process_reading_only_their_rows(
        tmp_path):
    from lazy_rows_worker import write_data
    write_data(tmp_path)
    completed = run_ranks(2, tmp_path, "dbn")
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert_equal_to_one_process(json.loads((tmp_path / "dbn.json").read_text()))
    reads = {rank: json.loads((tmp_path / f"dbn-rank{rank}.json").read_text())["reads"]
             for rank in (0, 1)}
    assert_each_rank_read_its_shards(reads, 2 * 3)   # 3 epochs of RBM 1, then of RBM 2
    stripes = [[row for caller, rows in reads[rank] if caller == "mean" for row in rows]
               for rank in (0, 1)]
    assert stripes == [list(range(12)) * 2, list(range(12, 23)) * 2]
    assert {caller for rank in (0, 1) for caller, _ in reads[rank]} <= {
        "gather", "mean", "fingerprint"}


@requires_mpi4py
@pytest.mark.slow
def test_two_ranks_run_up_down_from_lazy_rows_as_one_process_reading_only_their_rows(tmp_path):
    from lazy_rows_worker import write_data
    write_data(tmp_path)
    completed = run_ranks(2, tmp_path, "dbn-up-down")
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads((tmp_path / "dbn-up-down.json").read_text())
    assert any(name.startswith("generative") for name in result["differences"])
    assert_equal_to_one_process(result)
    reads = {rank: json.loads((tmp_path / f"dbn-up-down-rank{rank}.json").read_text())["reads"]
             for rank in (0, 1)}
    assert_each_rank_read_its_shards(reads, 2 * 3 + 2)   # then 2 epochs of up-down


# -- dbn pretrain / finetune --distributed: the training images stay on disk -------------------
def test_dbn_commands_load_their_training_images_lazily_with_the_same_values():
    from dlcore.cli._dbn import load_labelled_split, split_off_validation
    (x, y), test = load_labelled_split("mnist-5k", lazy=True)
    (x_eager, y_eager), test_eager = load_labelled_split("mnist-5k")
    assert isinstance(x, LazyRows) and not isinstance(test[0], LazyRows)
    np.testing.assert_array_equal(x.rows(np.array([7, 0])), x_eager[[7, 0]])
    for got, expected in zip((y, *test), (y_eager, *test_eager)):
        np.testing.assert_array_equal(got, expected)
    (fit, _), (valid, _) = split_off_validation(x, y, 0.1, 3)
    (fit_eager, _), (valid_eager, _) = split_off_validation(x_eager, y_eager, 0.1, 3)
    assert isinstance(fit, LazyRows) and isinstance(valid, np.ndarray)
    np.testing.assert_array_equal(valid, valid_eager)
    np.testing.assert_array_equal(fit.rows(np.array([3, 1])), fit_eager[[3, 1]])


def test_a_dbn_fine_tuned_from_lazy_rows_equals_the_one_fine_tuned_from_the_array():
    from dlcore.cli._dbn import fine_tune, load_labelled_split, make_optimizer
    from dlcore.cli.dbn import image_shifts
    (x, y), _ = load_labelled_split("mnist-5k", lazy=True)
    rows = np.arange(0, len(y), 40)   # 100 images of every class
    model = dlcore.DBN(layers=[784, 8], epochs=1, seed=2, backend="cpu").fit(
        np.asarray(x[rows[:30]]))
    networks = []
    for train_x in (x[rows], np.asarray(x[rows])):
        network = model.to_network(n_classes=10, seed=2, backend="cpu",
                                   augment=image_shifts(784, None, "mnist-5k", len(rows)))
        fine_tune(network, (train_x, y[rows]), (np.asarray(x[:20]), y[:20]),
                  make_optimizer("sgd", 0.1, 0.9), 2, 16, 5, verbose=0)
        networks.append(network.get_weights())
    for lazy, eager in zip(*networks, strict=True):
        np.testing.assert_array_equal(lazy, eager)


@pytest.mark.parametrize("command", ["pretrain", "finetune"])
def test_dbn_commands_under_distributed_train_from_lazy_rows(command, monkeypatch, tmp_path):
    from click.testing import CliRunner

    import dlcore.cli.dbn as dbn_cli
    from dlcore.cli import main
    seen = []

    def record(_model, X, *args, **options):
        seen.append(X if command == "pretrain" else X[0])
        raise RuntimeError("recorded")
    monkeypatch.setattr(dbn_cli, "pretrain" if command == "pretrain" else "fine_tune", record)
    dlcore.save(dlcore.DBN(layers=[784, 4], epochs=1, backend="cpu").fit(
        np.random.default_rng(0).random((10, 784), dtype=np.float32)), tmp_path / "dbn.h5")
    arguments = (["--layers", "784-4"] if command == "pretrain" else [str(tmp_path / "dbn.h5")])
    for distributed in ([], ["--distributed"]):
        CliRunner().invoke(main, ["dbn", command, *arguments, "--dataset", "mnist-5k",
                                  "--out", str(tmp_path / "run"), *distributed])
    assert [isinstance(X, LazyRows) for X in seen] == [False, True]
    assert len(seen[0]) == len(seen[1])


class _ManyRowsReader:
    """A reader of 2**40 rows of one value each, its value the row's number (nothing on disk)."""
    n_rows, row_shape, dtype, name, rows_read = 2**40, (1,), np.dtype(np.int64), "many", 0

    def read(self, indices):
        return np.asarray(indices, dtype=np.int64)[:, None]


def test_a_slice_of_lazy_rows_costs_its_own_rows_not_the_views():
    # lazy[:64] made np.arange(len(lazy)) first: 800 MB for 10**8 rows, and 8 TiB (a
    # MemoryError) for the 2**40 a hostile data file declared (data-file fuzz, seed 184)
    lazy = LazyRows(_ManyRowsReader())
    np.testing.assert_array_equal(lazy[:3].rows(np.arange(3)), [[0], [1], [2]])
    np.testing.assert_array_equal(lazy[-2:].rows(np.arange(2)), [[2**40 - 2], [2**40 - 1]])
    assert len(lazy[5:2**40:2**39]) == 2 and len(lazy[10:5]) == 0


def test_one_row_is_indexed_as_an_array_row_is(files):
    # lazy[-1] of compressed rows raised "OverflowError: can't convert negative value to
    # hsize_t" (the chunk of row -1), and lazy[23] of 23 rows said the file was damaged
    # (HDF5's "selection + offset not within extent"), where lazy[[23]] raised IndexError
    folder, eager = files
    with h5py.File(folder / "chunked.h5", "w") as file:   # the chunk check meets the index
        file.create_dataset("x", data=eager, chunks=(4, 12), compression="lzf")
    for whole in (open_hdf5(folder / "x.h5", "x"), open_hdf5(folder / "chunked.h5", "x"),
                  lazy_sources(folder)["idx"]):
        for lazy, expected in ((whole, eager), (whole[::-2], eager[::-2])):
            n_rows = len(expected)
            for row in (-1, -n_rows, 0, np.int64(n_rows - 1)):
                np.testing.assert_array_equal(lazy[row], expected[row])
            for row in (n_rows, -n_rows - 1):
                with pytest.raises(IndexError, match=f"row index out of range for {n_rows} rows"):
                    lazy[row]


def test_rows_open_beside_the_users_own_h5py_handles_of_the_file(tmp_path):
    # the labels beside the images: h5py.File(path) after open_hdf5(path, "images") raised
    # "file locking flag values don't match" (open_hdf5 held the file with locking=False,
    # which HDF5 refuses to mix in one process), and open_hdf5 beside a notebook's open
    # handle said the file was "not a readable HDF5 file"
    path = tmp_path / "data.h5"
    images, labels = (np.arange(60) % 7).astype(np.uint8).reshape(10, 6), np.arange(10)
    with h5py.File(path, "w") as file:
        file["images"], file["labels"] = images, labels
    rows = open_hdf5(path, "images")
    with h5py.File(path, "r") as file:
        np.testing.assert_array_equal(file["labels"][()], labels)
    np.testing.assert_array_equal(rows.rows(np.array([9, 0])), images[[9, 0]])
    for locking in (None, False, True):
        with h5py.File(path, "r", locking=locking) as file:
            beside = open_hdf5(path, "images")
            np.testing.assert_array_equal(file["labels"][()], labels)
            np.testing.assert_array_equal(np.asarray(beside), images)
        np.testing.assert_array_equal(beside.rows(np.array([3])), images[[3]])
    with warnings.catch_warnings(record=True) as caught:   # the file object closes with them
        warnings.simplefilter("always")
        del rows, beside
        gc.collect()
    assert not [warning for warning in caught if warning.category is ResourceWarning]
