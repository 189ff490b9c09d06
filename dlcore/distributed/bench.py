"""What ``dlcore bench distributed`` measures, and the alpha-beta model that extrapolates it.

Run under ``mpiexec -n R python -m dlcore.distributed.bench ROWS HIDDEN BATCH REPEATS``, rank 0
prints one JSON line: for R ranks training a (784, HIDDEN) RBM by CD-1 on ROWS synthetic binary
rows with global batch BATCH, the seconds per global step (min and median over REPEATS epochs)
and the part of them spent in the sum over the ranks; with R = 1 also the fastest LeNet-5
update on 64 images (the compute of its prediction); with R > 1 also the time of one
all-reduce for message sizes 1 KiB .. 4 MiB, from which :func:`fit_alpha_beta` takes the
latency alpha and the time per byte beta of the reduce-scatter + all-gather of
:mod:`dlcore.distributed.communicator`:

    t_allreduce(n bytes, R) = 2 ceil(log2 R) alpha + 2 (R - 1) / R n beta

and :func:`predicted_efficiency` the parallel efficiency of a step whose compute t_1 divides
over R ranks:  E(R) = (t_1 / R) / (t_1 / R + t_allreduce(n, R)).
"""
import json
import math
import statistics
import sys
import time

import numpy as np

#: Message sizes of the all-reduce micro-benchmark (bytes).
MESSAGE_BYTES = (1 << 10, 1 << 14, 1 << 18, 1 << 20, 1 << 22)


def allreduce_seconds(n_bytes, ranks, alpha, beta):
    """The alpha-beta time of one all-reduce of ``n_bytes`` over ``ranks`` ranks (module
    docstring); 0 for one rank."""
    if ranks <= 1:
        return 0.0
    return 2 * math.ceil(math.log2(ranks)) * alpha + 2 * (ranks - 1) / ranks * n_bytes * beta


def fit_alpha_beta(measurements, ranks):
    """``(alpha, beta)`` (seconds, seconds per byte) by least squares from ``measurements``,
    a list of (bytes, seconds) of all-reduces over ``ranks`` ranks."""
    sizes = np.array([2 * (ranks - 1) / ranks * n for n, _ in measurements], dtype=np.float64)
    seconds = np.array([t for _, t in measurements], dtype=np.float64)
    design = np.stack([np.full_like(sizes, 2 * math.ceil(math.log2(ranks))), sizes], axis=1)
    (alpha, beta), *_ = np.linalg.lstsq(design, seconds, rcond=None)
    return max(float(alpha), 0.0), max(float(beta), 0.0)


def predicted_efficiency(step_seconds, n_bytes, ranks, alpha, beta):
    """E(R) = (t_1 / R) / (t_1 / R + t_allreduce): ``step_seconds`` t_1 is one process's
    compute per global step, ``n_bytes`` what a step sums."""
    compute = step_seconds / ranks
    return compute / (compute + allreduce_seconds(n_bytes, ranks, alpha, beta))


def rbm_step_bytes(n_visible, n_hidden):
    """Bytes one data-parallel CD step sums (:mod:`dlcore.distributed.rbm`): the velocity of
    W and five column sums, float32."""
    return 4 * (n_visible * n_hidden + 2 * n_visible + 3 * n_hidden)


def measure(comm, rows, hidden, batch, repeats):
    """The measurements of the module docstring on this rank (a dict; rank 0's is printed)."""
    import dlcore
    X = (np.random.default_rng(0).random((rows, 784)) < 0.2).astype(np.float32)
    rbm = dlcore.BernoulliRBM(n_hidden=hidden, batch_size=batch, epochs=1, seed=0,
                              backend="cpu").fit(X[:batch], comm=comm)   # compiles, warms up
    steps = -(-rows // batch)
    per_step, reduce_per_step = [], []
    for _ in range(repeats):
        before = comm.allreduce_seconds
        comm.barrier()
        started = time.perf_counter()
        rbm.partial_fit(X, comm=comm)
        per_step.append((time.perf_counter() - started) / steps)
        reduce_per_step.append((comm.allreduce_seconds - before) / steps)
    result = {"ranks": comm.size, "rows": rows, "hidden": hidden, "batch": batch,
              "steps": steps, "step_seconds": [min(per_step), statistics.median(per_step)],
              "allreduce_seconds": [min(reduce_per_step), statistics.median(reduce_per_step)],
              "step_bytes": rbm_step_bytes(784, hidden)}
    if comm.size == 1:
        result["lenet5_step_seconds"] = lenet5_step_seconds(batch=64, repeats=5)
    if comm.size > 1:
        result["allreduce"] = []
        for n_bytes in MESSAGE_BYTES:
            buffer = np.ones(n_bytes // 4, np.float32)
            times = []
            for _ in range(20):
                comm.barrier()
                started = time.perf_counter()
                comm.allreduce(buffer)
                times.append(time.perf_counter() - started)
            result["allreduce"].append([n_bytes, min(times)])
    return result


def lenet5_step_seconds(batch, repeats):
    """The fastest of ``repeats`` LeNet-5 updates (``train_on_batch``) on ``batch`` images, one
    process: the compute t_1 of the LeNet-5 prediction."""
    import dlcore
    model = dlcore.models.lenet5(backend="cpu")
    model.compile("cross_entropy", dlcore.optimizers.SGD(learning_rate=0.01, momentum=0.9))
    x = np.random.default_rng(1).random((batch, 1, 28, 28)).astype(np.float32)
    y = np.arange(batch) % 10
    model.train_on_batch(x, y)   # compiles, warms up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - started)
    return min(times)


def main(arguments):
    import dlcore.distributed
    rows, hidden, batch, repeats = (int(value) for value in arguments)
    comm = dlcore.distributed.init(timeout=600)
    result = measure(comm, rows, hidden, batch, repeats)
    if comm.is_root:
        result["threads"] = comm.threads
        print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
