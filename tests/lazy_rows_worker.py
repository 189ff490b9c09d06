"""Run under ``mpiexec -n R`` by tests/test_lazy_rows.py: ``python lazy_rows_worker.py FOLDER
CASE [CASE ...]``. A case trains a small model data-parallel from lazy rows on disk (FOLDER
holds them: ``rbm-idx``, an IDX file of uint8 pixels; ``network.h5``, an HDF5 dataset of
float32 rows), records every read of the file (which rows, and for what), then (rank 0) trains
the same model in one process from the eager array. Every rank writes its reads to
FOLDER/CASE-rank<r>.json (the ranks' printed lines could interleave); rank 0 also writes the
largest difference of every parameter to FOLDER/CASE.json."""
import json
import sys

import h5py
import numpy as np

import dlcore
import dlcore.distributed
from distributed_worker import Network, binary_data, history, parameters
from dlcore.datasets import open_hdf5, open_idx, read_idx, to_unit_interval
from dlcore.lazy_rows import LazyRows

READS = []


CALLERS = ("gather", "mean", "fingerprint")


class Recording(LazyRows):
    """Lazy rows that record each read: the caller (``gather`` for a mini-batch, ``mean``,
    ``fingerprint``: the nearest of them up the stack, through the chunked whole-view passes
    and the lazy features of a DBN's upper layers) and the file rows read."""

    def _read(self, file_rows):
        caller = sys._getframe(1)
        while caller.f_back is not None and caller.f_code.co_name not in CALLERS:
            caller = caller.f_back
        READS.append((caller.f_code.co_name, file_rows.tolist()))
        return super()._read(file_rows)


def labels():
    return np.arange(23) % 3


def rbm_case(folder, comm):
    X = Recording(open_idx(f"{folder}/rbm-idx").reader).unit_interval()
    options = dict(n_hidden=5, epochs=3, batch_size=7, learning_rate=0.1, momentum=0.5,
                   weight_decay=1e-3, seed=4, backend="cpu")
    together = dlcore.BernoulliRBM(**options).fit(X.over(comm), comm=comm)

    def alone():
        return dlcore.BernoulliRBM(**options).fit(to_unit_interval(read_idx(f"{folder}/rbm-idx")))
    return together, alone


def network_case(folder, comm):
    x = Recording(open_hdf5(f"{folder}/network.h5", "x").reader)
    together = Network(False, seed=4, backend="cpu").fit(x, labels(), comm=comm)

    def alone():
        with h5py.File(f"{folder}/network.h5", "r") as file:
            return Network(False, seed=4, backend="cpu").fit(file["x"][...], labels())
    return together, alone


def dbn_case(folder, comm):
    """A 12-6-5 DBN: RBM 2 trains on lazy features, computed for the rank's rows only."""
    X = Recording(open_idx(f"{folder}/rbm-idx").reader).unit_interval()
    options = dict(layers=[12, 6, 5], epochs=3, batch_size=7, learning_rate=0.1, momentum=0.5,
                   seed=4, backend="cpu")
    together = dlcore.DBN(**options).fit(X.over(comm), comm=comm)

    def alone():
        return dlcore.DBN(**options).fit(to_unit_interval(read_idx(f"{folder}/rbm-idx")))
    return together, alone


def dbn_up_down_case(folder, comm):
    """The same DBN, then 2 epochs of up-down: its batches read the rank's rows only too."""
    X = Recording(open_idx(f"{folder}/rbm-idx").reader).unit_interval()
    options = dict(layers=[12, 6, 5], epochs=3, batch_size=7, learning_rate=0.1, momentum=0.5,
                   up_down_epochs=2, up_down_batch_size=7, seed=4, backend="cpu")
    together = dlcore.DBN(**options).fit(X.over(comm), comm=comm)

    def alone():
        return dlcore.DBN(**options).fit(to_unit_interval(read_idx(f"{folder}/rbm-idx")))
    return together, alone


def write_data(folder):
    """The files the cases read (called by the test before mpiexec)."""
    dlcore.datasets.write_idx(f"{folder}/rbm-idx", (binary_data(23, 12) * 255).astype(np.uint8))
    with h5py.File(f"{folder}/network.h5", "w") as file:
        file["x"] = binary_data(23, 12, seed=5)


def main(folder, cases):
    comm = dlcore.distributed.init(timeout=60)
    for case in cases:
        READS.clear()
        cases = {"rbm": rbm_case, "network": network_case, "dbn": dbn_case,
                 "dbn-up-down": dbn_up_down_case}
        together, alone = cases[case](folder, comm)
        with open(f"{folder}/{case}-rank{comm.rank}.json", "w") as file:
            json.dump({"case": case, "rank": comm.rank, "reads": list(READS)}, file)
        if not comm.is_root:
            continue
        alone = alone()
        alone_parameters, together_parameters = parameters(alone), parameters(together)
        differences = {name: float(np.max(np.abs(together_parameters[name] - value)))
                       for name, value in alone_parameters.items()}
        with open(f"{folder}/{case}.json", "w") as file:
            json.dump({"case": case, "differences": differences,
                       "errors": [history(together), history(alone)],
                       "moved": float(np.max(np.abs(alone_parameters[next(iter(differences))])))},
                      file)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
