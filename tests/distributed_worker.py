"""Run under ``mpiexec -n R`` by tests/test_distributed.py: ``python distributed_worker.py CASE
[CASE ...]``. A training case trains one small model data-parallel, then (rank 0) the same
model in one process, and prints one JSON line with the largest difference of every parameter;
the other cases exercise the communicator (sums, a rank that hangs, a rank that fails)."""
import json
import sys

import numpy as np

import dlcore
import dlcore.distributed


def binary_data(n_rows, n_columns, seed=3):
    generator = np.random.default_rng(seed)
    prototypes = generator.random((3, n_columns)) < 0.5
    rows = prototypes[generator.integers(0, 3, n_rows)]
    flips = generator.random((n_rows, n_columns)) < 0.1
    return (rows ^ flips).astype(np.float32)


def rbm_case(case):
    X = binary_data(23, 12)
    options = dict(n_hidden=5, epochs=3, batch_size=7, learning_rate=0.1, momentum=0.5,
                   weight_decay=1e-3, seed=4, backend="cpu")
    if case == "rbm-pcd":
        options.update(persistent=True, sparsity_target=0.2, sparsity_cost=0.1)
    if case == "rbm-cd2-mean-field":
        options.update(cd_k=2, sample_visible=False, backend="reference")
    if case == "gaussian":
        X = np.random.default_rng(5).normal(size=(23, 12)).astype(np.float32)
        return dlcore.GaussianBernoulliRBM, X, options
    return dlcore.BernoulliRBM, X, options


TRAINING = {"rbm": rbm_case, "rbm-pcd": rbm_case, "rbm-cd2-mean-field": rbm_case,
            "gaussian": rbm_case}


def allreduce_case(comm):
    """Every rank's sum, bit for bit, against the sum in rank order computed here."""
    parts = [np.random.default_rng(rank).normal(size=(5, 7)).astype(np.float32) * 10 ** rank
             for rank in range(comm.size)]
    expected = parts[0].copy()
    for part in parts[1:]:
        expected += part
    got = comm.allreduce(parts[comm.rank].copy())
    print(json.dumps({"rank": comm.rank, "equal": bool(np.array_equal(got, expected))}))


def main(cases):
    timeout = 2 if {"hang", "fail"} & set(cases) else 60
    comm = dlcore.distributed.init(timeout=timeout)
    for case in cases:
        if case == "allreduce":
            allreduce_case(comm)
        elif case == "hang":   # rank 1 never joins the sum: rank 0 must give up and stop all
            if comm.rank == 1:
                import time
                time.sleep(60)
            comm.allreduce(np.ones(3, np.float32))
        elif case == "fail":   # rank 1 fails before training: every rank must stop at once
            if comm.rank == 1:
                raise ValueError("rank 1 could not read its data")
            X = binary_data(4, 3)
            dlcore.BernoulliRBM(n_hidden=2, epochs=1, backend="cpu").fit(X, comm=comm)
        elif case == "other-data":
            X = binary_data(10, 4, seed=comm.rank)
            dlcore.BernoulliRBM(n_hidden=2, epochs=1, backend="cpu").fit(X, comm=comm)
        else:
            train(comm, case)


def train(comm, case):
    model_class, X, options = TRAINING[case](case)
    together = model_class(**options).fit(X, comm=comm)
    if not comm.is_root:
        return
    alone = model_class(**options).fit(X)
    differences = {name: float(np.max(np.abs(getattr(together, name) - getattr(alone, name))))
                   for name in ("W", "visible_bias", "hidden_bias")}
    errors = [together.history["reconstruction_error"], alone.history["reconstruction_error"]]
    print(json.dumps({"case": case, "ranks": comm.size, "differences": differences,
                      "errors": errors, "moved": float(np.max(np.abs(alone.W))),
                      "threads": comm.threads}))


if __name__ == "__main__":
    main(sys.argv[1:])
