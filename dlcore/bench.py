"""Benchmarks: dlcore side by side with the tools users would pick instead, in one process.

Rules, the same for every contender: a warm-up (Numba compiles, PyTorch allocates), then several
timed repeats of the same work; we report the minimum and the median, and compare only numbers
measured in the same run.

The RBM benchmark times one CD-1 epoch: shuffle, then for each mini-batch of B rows the five
products of the lecture's update (x1 W, h1 W', x2 W, x1' h1, x2' Q(h2|x2)), 2 B V H flops each,
plus the sigmoids, samples and parameter updates. Every contender does the same update with
momentum 0.5, weight decay 2e-4 and learning rate 0.1.
"""
import math
import os
import platform
import statistics
import time

import numpy as np

RBM_LEARNING_RATE, RBM_MOMENTUM, RBM_WEIGHT_DECAY = 0.1, 0.5, 2e-4


def time_repeats(run, repeats):
    """Seconds of ``repeats`` calls of ``run()`` (after the caller's warm-up)."""
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - started)
    return seconds


def sgemm_peak(size=2048, repeats=3):
    """The machine's single-precision GEMM rate in GFLOP/s: NumPy's BLAS on size^3, best of
    ``repeats`` after one warm-up (all BLAS threads)."""
    generator = np.random.default_rng(0)
    a = generator.random((size, size), dtype=np.float32)
    b = generator.random((size, size), dtype=np.float32)
    out = np.empty_like(a)
    np.matmul(a, b, out=out)
    best = min(time_repeats(lambda: np.matmul(a, b, out=out), repeats))
    return 2.0 * size ** 3 / best / 1e9


def rbm_epoch_flops(n_rows, n_visible, n_hidden, batch_size):
    """Flops of the five products of one CD-1 epoch (the last batch may be smaller)."""
    return 5 * 2 * n_rows * n_visible * n_hidden


# -- contenders: each is (name, warm_up(), run_epoch()) built from the data --------------------
def dlcore_contender(X, n_hidden, batch_size, backend):
    import dlcore
    from dlcore.backend import get_backend
    rbm = dlcore.BernoulliRBM(n_hidden=n_hidden, batch_size=batch_size, epochs=0,
                              learning_rate=RBM_LEARNING_RATE, momentum=RBM_MOMENTUM,
                              weight_decay=RBM_WEIGHT_DECAY, seed=0, backend=backend)
    rbm.fit(X)
    runs_on = get_backend(backend)
    label = f"dlcore {runs_on.name}" if runs_on.launches_kernels else "NumPy (dlcore reference)"
    return label, lambda: rbm.partial_fit(X[:max(batch_size, len(X) // 20)]), \
        lambda: rbm.partial_fit(X)


def sklearn_contender(X, n_hidden, batch_size):
    from sklearn.neural_network import BernoulliRBM

    def run(data):
        BernoulliRBM(n_components=n_hidden, learning_rate=RBM_LEARNING_RATE,
                     batch_size=batch_size, n_iter=1, random_state=0).fit(data)
    return "scikit-learn BernoulliRBM (PCD-1, float32)", \
        lambda: run(X[:max(batch_size, len(X) // 20)]), lambda: run(X)


def torch_contenders(X, n_hidden, batch_size, device, threads):
    """PyTorch written as a student would (new tensors each step) and as an expert would
    (preallocated buffers, in-place ``addmm_``, ``sigmoid_``, ``bernoulli_``)."""
    import torch
    torch.set_num_threads(threads)
    data = torch.from_numpy(X).to(device)
    n_visible = data.shape[1]
    generator = torch.Generator(device=device).manual_seed(0)
    lr, m, wd = RBM_LEARNING_RATE, RBM_MOMENTUM, RBM_WEIGHT_DECAY

    def parameters():
        W = torch.randn(n_visible, n_hidden, generator=generator, device=device) * 0.01
        return [W, torch.zeros(n_visible, device=device), torch.zeros(n_hidden, device=device),
                torch.zeros_like(W), torch.zeros(n_visible, device=device),
                torch.zeros(n_hidden, device=device)]

    plain_state = parameters()

    def plain_epoch(rows):
        W, b, c, vW, vb, vc = plain_state
        order = torch.randperm(len(rows), generator=generator, device=device)
        for start in range(0, len(rows), batch_size):
            v0 = rows[order[start:start + batch_size]]
            h0 = torch.bernoulli(torch.sigmoid(v0 @ W + c), generator=generator)
            v1 = torch.bernoulli(torch.sigmoid(h0 @ W.T + b), generator=generator)
            q1 = torch.sigmoid(v1 @ W + c)
            vW = m * vW + lr * ((v0.T @ h0 - v1.T @ q1) / len(v0) - wd * W)
            vb = m * vb + lr * (v0 - v1).mean(0)
            vc = m * vc + lr * (h0 - q1).mean(0)
            W, b, c = W + vW, b + vb, c + vc
        plain_state[:] = [W, b, c, vW, vb, vc]

    W, b, c, vW, vb, vc = parameters()
    v0 = torch.empty(batch_size, n_visible, device=device)
    h0, q1 = (torch.empty(batch_size, n_hidden, device=device) for _ in range(2))
    v1 = torch.empty(batch_size, n_visible, device=device)

    def in_place_epoch(rows):
        order = torch.randperm(len(rows), generator=generator, device=device)
        for start in range(0, len(rows), batch_size):
            index = order[start:start + batch_size]
            x, h, v, q = v0[:len(index)], h0[:len(index)], v1[:len(index)], q1[:len(index)]
            torch.index_select(rows, 0, index, out=x)
            torch.addmm(c, x, W, out=h).sigmoid_().bernoulli_(generator=generator)
            torch.addmm(b, h, W.T, out=v).sigmoid_().bernoulli_(generator=generator)
            torch.addmm(c, v, W, out=q).sigmoid_()
            scale = lr / len(index)
            vW.mul_(m).addmm_(x.T, h, alpha=scale).addmm_(v.T, q, alpha=-scale)
            vW.add_(W, alpha=-lr * wd)
            W.add_(vW)
            vb.mul_(m).add_((x - v).mean(0), alpha=lr)
            vc.mul_(m).add_((h - q).mean(0), alpha=lr)
            b.add_(vb)
            c.add_(vc)

    def synchronised(epoch, rows):
        def run():
            epoch(rows)
            if device != "cpu":
                torch.cuda.synchronize()
        return run

    warm_rows = data[:max(batch_size, len(data) // 20)]
    return [(f"PyTorch {device} in-place (addmm_)", synchronised(in_place_epoch, warm_rows),
             synchronised(in_place_epoch, data)),
            (f"PyTorch {device} plain", synchronised(plain_epoch, warm_rows),
             synchronised(plain_epoch, data))]


#: Contenders with no GPU implementation: on a GPU backend they are left out, installed or not.
CPU_ONLY_CONTENDERS = frozenset({"reference", "sklearn"})


def on_a_gpu(backend):
    """True when ``backend`` (a name or a backend) keeps its arrays on a GPU, as the backend
    says: it launches kernels, and not on host arrays. PyTorch then runs on its cuda device."""
    from dlcore.backend import get_backend
    backend = get_backend(backend)
    return backend.launches_kernels and not backend.host_kernels


def races_on(contender, backend):
    """True when ``contender`` (``"dlcore"``, ``"reference"``, ``"sklearn"`` or ``"torch"``)
    can be timed against dlcore on ``backend``: scikit-learn and the NumPy reference have no
    GPU version, so a GPU benchmark leaves them out (and does not report them missing)."""
    return contender not in CPU_ONLY_CONTENDERS or not on_a_gpu(backend)


def run_rbm_benchmark(X, n_hidden=500, batch_size=100, repeats=3, backend="cpu",
                      include=("dlcore", "reference", "sklearn", "torch"), slow_repeats=1,
                      report=None):
    """Time every available contender on ``X``; returns a list of result dicts.

    Each dict: ``name``, ``seconds`` (every repeat), ``min``, ``median``, ``gflops`` (from the
    minimum), ``ratio`` (its median over dlcore's median: 2.0 means twice as slow). The NumPy
    reference and scikit-learn get ``slow_repeats`` repeats: they are the slow ones. A
    contender that is not installed is left out: :func:`missing_contenders` names it.
    """
    import numba
    threads = numba.get_num_threads()
    flops = rbm_epoch_flops(X.shape[0], X.shape[1], n_hidden, batch_size)
    contenders = []
    if "dlcore" in include:
        contenders.append((*dlcore_contender(X, n_hidden, batch_size, backend), repeats))
    if "torch" in include and _importable("torch"):
        device = "cuda" if on_a_gpu(backend) else "cpu"
        contenders += [(*c, repeats)
                       for c in torch_contenders(X, n_hidden, batch_size, device, threads)]
    if "sklearn" in include and races_on("sklearn", backend) and _importable("sklearn"):
        contenders.append((*sklearn_contender(X, n_hidden, batch_size), slow_repeats))
    if "reference" in include and races_on("reference", backend):
        contenders.append((*dlcore_contender(X, n_hidden, batch_size, "reference"),
                           slow_repeats))
    results = []
    for name, warm_up, run, n_repeats in contenders:
        if report:
            report(f"timing {name} ({n_repeats} epochs after a warm-up)")
        warm_up()
        seconds = time_repeats(run, n_repeats)
        results.append({"name": name, "seconds": seconds, "min": min(seconds),
                        "median": statistics.median(seconds), "gflops": flops / min(seconds) / 1e9})
    reference = next((r["median"] for r in results if r["name"].startswith("dlcore")), math.nan)
    for result in results:
        result["ratio"] = result["median"] / reference
    return results


def machine_description():
    """The machine a benchmark ran on, for its header: CPU model, widest x86 vector ISA, cores.

    A speed-up measured on one kind of machine (AVX2 or AVX-512, 2 or 16 cores) says nothing
    about another, so every benchmark prints this line beside its figures.

    Returns
    -------
    dict with ``cpu`` (str), ``isa`` (str: "AVX-512", "AVX2", "AVX", "SSE", or the machine's
    architecture elsewhere) and ``cores`` (int, logical CPUs this process may use)
    """
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                if model and flags:
                    break
    except OSError:   # not Linux: the platform module's answer
        pass
    isa = next((name for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2"),
                                        ("avx", "AVX"), ("sse2", "SSE"))
                if flag in flags), platform.machine())
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": model, "isa": isa, "cores": cores}


def machine_line():
    """``machine_description`` as one line: ``machine: Intel(R) Xeon(R) ..., AVX-512, 2 cores``."""
    machine = machine_description()
    return f"machine: {machine['cpu']}, {machine['isa']}, {machine['cores']} cores"


#: The other libraries a benchmark compares with: module -> (name, how to install it).
CONTENDER_PACKAGES = {"torch": ("PyTorch", "pip install torch"),
                      "sklearn": ("scikit-learn", "pip install scikit-learn")}


def missing_contenders(modules):
    """One line per contender of ``modules`` (keys of :data:`CONTENDER_PACKAGES`) that cannot
    be imported, for the results table: ``"PyTorch: not installed (pip install torch)"``."""
    lines = []
    for module in modules:
        name, install = CONTENDER_PACKAGES[module]
        problem = import_problem(module)
        if problem is not None:
            lines.append(f"{name}: {problem} ({install})")
    return lines


def import_problem(module):
    """None when ``module`` imports, else why not: "not installed", or the import error of an
    installed but broken package (imported for real: a present but broken install is not a
    contender either)."""
    import importlib
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name == module or error.name is None:
            return "not installed"
        return f"cannot be imported ({error})"
    except (ImportError, OSError) as error:   # half installed (a missing library): say why
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        return f"cannot be imported ({reason})"
    return None


def _importable(module):
    return import_problem(module) is None
