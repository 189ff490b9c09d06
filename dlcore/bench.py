"""Benchmarks: dlcore side by side with the tools users would pick instead, in one run.

The rules every ``dlcore bench`` command follows:

* **Equal work.** A *comparison* times contenders that do the same work. Each contender states
  the work of one run (:attr:`Contender.work`: shapes, hyperparameters, the layers of a network),
  read from the very objects it runs, and :func:`check_equal_work` refuses a comparison whose
  contenders differ: a faster contender cannot be one that does less.
* **Alternation.** Every contender is warmed up first (Numba compiles, PyTorch allocates); then
  the timed repeats alternate, A, B, A, B, ... (:func:`time_alternating`): on a shared machine
  the load drifts over minutes, and running all of A then all of B would hand the drift to one
  side.
* **Min and median.** Each contender reports the minimum and the median of its repeats; ratios
  are taken of minima (the least disturbed runs) and, for the record, of medians.
* **The machine.** Every report starts with the machine (:func:`machine_description`): CPU model,
  widest vector ISA (AVX2, AVX-512), cores and threads, the BLAS library and its kernel, and the
  SGEMM rate measured on the spot at the RBM's own product shapes. A lead measured on one kind
  of machine says nothing about another.
* **Each side as it runs alone.** PyTorch's contenders run in a process of their own, under
  PyTorch's own OpenMP settings (:mod:`dlcore.bench_process`); the parent keeps the
  alternation and the clock.
* **JSON.** ``--json`` prints the report as one JSON object of one schema for every bench
  (:func:`report`; schema :data:`SCHEMA`), from which :mod:`dlcore.bench_table` writes the
  README's "Measured" table.

The workloads themselves (the CD-1 epoch, the networks, PyTorch's versions of them) are in
:mod:`dlcore.bench_workloads`.
"""
import datetime
import os
import platform
import statistics
import time
from dataclasses import dataclass, field

import numpy as np

from dlcore._version import __version__
from dlcore.backend.cpuinfo import cpuinfo_fields

#: Version of the JSON report's layout (:func:`report`).
SCHEMA = "dlcore-bench/1"


@dataclass
class Contender:
    """One side of a comparison.

    name : str, as the table shows it ("dlcore cpu", "PyTorch cpu in-place (addmm_)")
    run : callable, one timed run (an epoch, an inference pass)
    work : dict, what one run computes, read from the objects ``run`` uses (JSON-able)
    warm_up : callable or None, run once before the timed repeats
    repeats : int or None, fewer repeats than the comparison's (a slow contender): it takes part
        in the first ``repeats`` rounds only
    """

    name: str
    run: object
    work: dict
    warm_up: object = None
    repeats: int | None = None


@dataclass
class Comparison:
    """Contenders that do the same work, timed in alternation.

    task : str, what one run is ("CD-1 epoch, visible units sampled")
    contenders : list of :class:`Contender`, dlcore's first (the ratios are to it)
    flops : float or None, the useful floating-point operations of one run (GFLOP/s columns)
    note : str, a line the table prints under the task
    """

    task: str
    contenders: list
    flops: float | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)


def check_equal_work(contenders):
    """Raise ValueError naming the first difference when ``contenders`` do not all state the
    same :attr:`Contender.work`."""
    if not contenders:
        return
    first = contenders[0]
    for other in contenders[1:]:
        if other.work != first.work:
            keys = sorted(set(first.work) | set(other.work))
            differing = [key for key in keys if first.work.get(key) != other.work.get(key)]
            detail = "; ".join(f"{key}: {first.work.get(key)!r} vs {other.work.get(key)!r}"
                               for key in differing[:3])
            raise ValueError(f"unequal work: {first.name!r} and {other.name!r} differ in "
                             f"{detail}; a benchmark compares the same work only")


def time_alternating(contenders, repeats, report=None, clock=time.perf_counter):
    """Warm every contender up, then time ``repeats`` rounds, each running every contender once
    in turn (A, B, A, B, ...); a contender with fewer ``repeats`` sits out the later rounds.

    Returns ``(seconds, order)``: ``seconds[name]`` the list of its timed runs, ``order`` the
    names in the order they ran (warm-ups not included).
    """
    for contender in contenders:
        if contender.warm_up is not None:
            if report:
                report(f"warming up {contender.name}")
            contender.warm_up()
    seconds = {contender.name: [] for contender in contenders}
    order = []
    for round_index in range(repeats):
        if report:
            report(f"round {round_index + 1}/{repeats}")
        for contender in contenders:
            if round_index >= (contender.repeats or repeats):
                continue
            started = clock()
            contender.run()
            seconds[contender.name].append(clock() - started)
            order.append(contender.name)
    return seconds, order


def compare(comparison, repeats, report=None, clock=time.perf_counter):
    """Time ``comparison`` (:func:`time_alternating`, after :func:`check_equal_work`).

    Returns a dict: ``task``, ``note``, ``work``, ``flops``, ``order`` and ``results``, one dict
    per contender: ``name``, ``seconds`` (every repeat), ``min``, ``median``, ``ratio_min``
    (its minimum over the first contender's: 2.0 is twice as slow), ``ratio_median``, and
    ``gflops`` (from the minimum) when the comparison knows its flops.
    """
    contenders = comparison.contenders
    check_equal_work(contenders)
    if report:
        report(f"{comparison.task}: {', '.join(c.name for c in contenders)}")
    seconds, order = time_alternating(contenders, repeats, report, clock)
    results = []
    for contender in contenders:
        times = seconds[contender.name]
        row = {"name": contender.name, "seconds": times, "min": min(times),
               "median": statistics.median(times)}
        if comparison.flops:
            row["gflops"] = comparison.flops / row["min"] / 1e9
        results.append(row)
    for row in results:
        row["ratio_min"] = row["min"] / results[0]["min"]
        row["ratio_median"] = row["median"] / results[0]["median"]
    return {"task": comparison.task, "note": comparison.note, "flops": comparison.flops,
            "work": contenders[0].work if contenders else {}, "order": order,
            "results": results, **comparison.extra}


# -- the machine ---------------------------------------------------------------------------
#: x86 vector ISA levels, widest first: (the /proc/cpuinfo flag, the name we print).
ISA_LEVELS = (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX"), ("sse2", "SSE2"))
#: Flags worth a line in a bug report: the vector extensions BLAS kernels dispatch on.
NOTED_FLAGS = ("avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "amx_tile",
               "avx2", "fma")


def isa_level(flags):
    """The widest x86 vector ISA among CPU ``flags`` (a set of /proc/cpuinfo flag names), or
    None when none of :data:`ISA_LEVELS` is there."""
    return next((name for flag, name in ISA_LEVELS if flag in flags), None)


def cpu_description(cpuinfo="/proc/cpuinfo"):
    """``{"cpu", "isa", "flags", "cores"}``: the model name, the widest vector ISA (the machine's
    architecture off Linux), the noted flags it has, the logical CPUs this process may use."""
    fields = cpuinfo_fields(("model name", "flags"), cpuinfo)
    model, flags = fields.get("model name"), set(fields.get("flags", "").split())
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": model or platform.processor() or platform.machine(),
            "isa": isa_level(flags) or platform.machine(),
            "flags": [flag for flag in NOTED_FLAGS if flag in flags], "cores": cores}


def blas_description():
    """The BLAS libraries loaded in this process (NumPy's, SciPy's), as threadpoolctl sees them:
    a list of ``{"library", "version", "kernel", "threading", "threads", "file"}``, where
    ``kernel`` is the CPU kernel the library picked (OpenBLAS's "Haswell", "SkylakeX", ...;
    MKL's code branch, "AVX2", "AVX-512").
    ``used_by_dlcore`` marks the one dlcore's CPU kernels call, and its ``chosen`` says why
    (:mod:`dlcore.backend.blas`)."""
    import scipy.linalg.blas  # noqa: F401  (load SciPy's BLAS too, so that it is listed)
    from threadpoolctl import threadpool_info

    from dlcore.backend.blas import mkl_code_branch
    try:
        from dlcore.backend.cpu import BLAS
        BLAS_LIBRARY, chosen = BLAS.library_file, BLAS.reason
    except ImportError:   # numba or scipy missing: the cpu backend is not there
        BLAS_LIBRARY = chosen = None
    libraries = []
    for entry in threadpool_info():
        if entry.get("user_api") != "blas":
            continue
        path = entry.get("filepath") or ""
        libraries.append({"library": {"openblas": "OpenBLAS", "mkl": "MKL", "blis": "BLIS"}.get(
            entry.get("internal_api"), entry.get("internal_api")),
            "version": entry.get("version"),
            "kernel": entry.get("architecture") or (
                mkl_code_branch(path) if entry.get("internal_api") == "mkl" and path else None),
            "threading": entry.get("threading_layer"), "threads": entry.get("num_threads"),
            "file": os.path.basename(path),
            "used_by_dlcore": bool(BLAS_LIBRARY) and os.path.basename(path) == BLAS_LIBRARY})
        if libraries[-1]["used_by_dlcore"]:
            libraries[-1]["chosen"] = chosen
    return libraries


def torch_description():
    """PyTorch's version, BLAS and CPU capability (from ``torch.__config__.show()``), or None
    when it is not importable: PyTorch links its own BLAS (MKL on x86), which threadpoolctl
    does not see."""
    if import_problem("torch") is not None:
        return None
    import torch
    text = torch.__config__.show()
    blas = next((part.split("=", 1)[1] for part in text.replace(",", " ").split()
                 if part.startswith("BLAS_INFO=")), None)
    mkl = next((line.strip() for line in text.splitlines() if "Math Kernel Library" in line),
               None)
    capability = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                       if "CPU capability usage" in line), None)
    if mkl is not None:
        blas = "MKL " + mkl.split("Version", 1)[-1].strip().split("-")[0]
    return {"version": torch.__version__, "blas": blas, "cpu_capability": capability,
            "threads": torch.get_num_threads()}


def rbm_products(n_visible=784, n_hidden=500, batch_size=100):
    """The five products of one CD-1 mini-batch, as ``(m, n, k, trans_a, trans_b)`` of
    out (m, n) <- op(a) (m, k) op(b) (k, n): x1 W, h1 W', x2 W, x1' h1, x2' Q(h2 | x2)."""
    v, h, b = n_visible, n_hidden, batch_size
    return [(b, h, v, False, False), (b, v, h, False, True), (b, h, v, False, False),
            (v, h, b, True, False), (v, h, b, True, False)]


def sgemm_rate(products=None, batches=20, repeats=5, backend="cpu"):
    """The float32 GEMM rate in GFLOP/s this process reaches at the shapes of ``products``
    (default: :func:`rbm_products`, the RBM's own), a loop of ``batches`` times each product
    on preallocated arrays, best of ``repeats`` after a warm-up.

    On the CPU, measured two ways, as the engines would run them: NumPy's ``matmul`` on BLAS's
    own threads, and dlcore's cpu backend (one single-threaded BLAS call per Numba thread, the
    way a fit runs them). On a GPU ``backend`` (:func:`on_a_gpu`), that backend's own ``gemm``
    (cuBLAS) on device arrays, up to the GPU's last product. Returns ``{"gflops": the better,
    "numpy": ..., "dlcore_gemm": ..., "shapes": ..., "on": "cpu" or "gpu"}``; the better one is
    the ceiling a CD-1 epoch's rate is measured against.
    """
    products = products or rbm_products()
    generator = np.random.default_rng(0)
    operands = []
    for m, n, k, trans_a, trans_b in products:
        a = generator.random((k, m) if trans_a else (m, k), dtype=np.float32)
        b = generator.random((n, k) if trans_b else (k, n), dtype=np.float32)
        operands.append((a, b, np.empty((m, n), np.float32), trans_a, trans_b))
    flops = batches * sum(2.0 * m * n * k for m, n, k, _, _ in products)
    shapes = ", ".join(f"{m}x{k}{'^T' if ta else ''}.{k}x{n}{'^T' if tb else ''}"
                       for m, n, k, ta, tb in products)

    def numpy_loop():
        for _ in range(batches):
            for a, b, out, trans_a, trans_b in operands:
                np.matmul(a.T if trans_a else a, b.T if trans_b else b, out=out)

    def best_rate(loop):
        loop()
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            loop()
            best = min(best, time.perf_counter() - started)
        return flops / best / 1e9

    if on_a_gpu(backend):
        from dlcore.backend import get_backend
        device = get_backend(backend)
        on_device = [(device.asarray(a), device.asarray(b), device.asarray(out), ta, tb)
                     for a, b, out, ta, tb in operands]

        def device_loop():
            for _ in range(batches):
                for a, b, out, trans_a, trans_b in on_device:
                    device.gemm(a, b, out, trans_a=trans_a, trans_b=trans_b)
            device.synchronize()
        rate = best_rate(device_loop)
        return {"gflops": rate, "numpy": None, "dlcore_gemm": rate, "shapes": shapes,
                "on": "gpu", "engine": device.gemm_engine}
    rates = {"numpy": best_rate(numpy_loop), "dlcore_gemm": None}
    try:
        from dlcore.backend import get_backend
        backend = get_backend("cpu")
    except (ImportError, RuntimeError):
        backend = None
    if backend is not None:
        def dlcore_loop():
            for _ in range(batches):
                for a, b, out, trans_a, trans_b in operands:
                    backend.gemm(a, b, out, trans_a=trans_a, trans_b=trans_b)
        with backend.compute():
            rates["dlcore_gemm"] = best_rate(dlcore_loop)
    return {"gflops": max(rate for rate in rates.values() if rate is not None), **rates,
            "shapes": shapes, "on": "cpu"}


def best_sgemm(*measurements):
    """The :func:`sgemm_rate` measurement with the highest rate, each way's best kept."""
    best = dict(max(measurements, key=lambda m: m["gflops"]))
    for way in ("numpy", "dlcore_gemm"):
        rates = [m[way] for m in measurements if m.get(way) is not None]
        best[way] = max(rates) if rates else None
    return best


def machine_description(sgemm=True, backend="cpu"):
    """The machine a benchmark on ``backend`` ran on (see the module docstring).

    Returns
    -------
    dict: ``cpu`` (model name), ``isa`` ("AVX-512", "AVX2", ...; the architecture off x86),
    ``isa_cap`` (None, or the narrower ISA both sides' code was held to:
    :func:`dlcore.bench_isa.cap_in_effect`),
    ``flags`` (the noted vector flags present), ``cores`` (logical CPUs this process may use),
    ``threads`` (Numba's threads, which dlcore's kernels and PyTorch are both given), ``blas``
    (:func:`blas_description`), ``torch`` (:func:`torch_description`), ``openmp_wait`` (how
    OpenMP threads wait between regions: dlcore's, and PyTorch's in its own process,
    :mod:`dlcore.bench_process`), with ``sgemm``, ``sgemm`` (:func:`sgemm_rate` at the
    RBM's shapes, on ``backend``), and on a GPU backend ``gpu``
    (:func:`dlcore.doctor.gpu_description`: name, compute capability, CUDA versions).
    """
    import numba

    from dlcore.backend import threads
    from dlcore.bench_isa import cap_in_effect
    machine = cpu_description()
    machine["isa_cap"] = cap_in_effect()
    machine["threads"] = numba.get_num_threads()
    machine["blas"] = blas_description()
    machine["torch"] = torch_description()
    machine["openmp_wait"] = {"dlcore": threads.wait_policy(),
                              "torch": threads.wait_policy(threads.user_environment())}
    if on_a_gpu(backend):
        from dlcore.doctor import gpu_description
        machine["gpu"] = gpu_description()
    if sgemm:
        machine["sgemm"] = sgemm_rate(backend=backend)
    return machine


def machine_line(machine=None):
    """``machine`` (default: this one, without the SGEMM measurement) as one line::

        machine: AMD EPYC, AVX2, 2 cores, 2 threads; BLAS OpenBLAS 0.3.31 Haswell kernel
        (pthreads); SGEMM at the RBM's shapes 140 GFLOP/s
    """
    machine = machine_description(sgemm=False) if machine is None else machine
    line = "machine: "
    gpu = machine.get("gpu")
    if gpu:
        line += (f"GPU {gpu.get('name') or 'the CUDA simulator'}"
                 + (f" (compute capability {gpu['compute_capability']}, CUDA driver "
                    f"{gpu.get('driver')}, runtime {gpu.get('runtime')})"
                    if gpu.get("compute_capability") else "") + "; host: ")
    line += f"{machine['cpu']}, {machine['isa']}"
    cap = machine.get("isa_cap")
    if cap:
        line += (f" CPU, both sides' code held to {cap['isa']} (dlcore bench --isa; Numba "
                 f"compiles for {cap['numba']})" if cap["kept"] else
                 f" (an {cap['isa']} cap was asked but not kept: "
                 + ", ".join(f"{name}={value}" for name, value in cap["variables"].items())
                 + ")")
    line += f", {machine['cores']} cores"
    if machine.get("threads"):
        line += f", {machine['threads']} threads"
    blas = [entry for entry in machine.get("blas") or () if entry.get("used_by_dlcore")]
    blas = blas or list(machine.get("blas") or ())[:1]
    for entry in blas:
        kernel = f" {entry['kernel']} kernel" if entry.get("kernel") else ""
        line += f"; BLAS {entry['library']} {entry['version']}{kernel} ({entry['threading']})"
    torch = machine.get("torch")
    if torch:
        line += f"; PyTorch {torch['version']} ({torch['blas']}, {torch['cpu_capability']})"
    wait = machine.get("openmp_wait")
    if wait:
        line += (f"; OpenMP waiting: dlcore {wait['dlcore']}"
                 + (f", PyTorch (own process) {wait['torch']}" if torch else ""))
    if machine.get("sgemm"):
        where = (f" on the GPU ({machine['sgemm'].get('engine')})"
                 if machine["sgemm"].get("on") == "gpu" else "")
        line += f"; SGEMM{where} at the RBM's shapes {machine['sgemm']['gflops']:.0f} GFLOP/s"
    return line


# -- the report ----------------------------------------------------------------------------
def load_average():
    """The 1-, 5- and 15-minute load averages (None where the system has none): how busy the
    machine was, beside figures measured on it."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def report(benchmark, title, setting, comparisons, machine, missing=(), load_before=None,
           started=None):
    """The JSON report of one bench run (schema :data:`SCHEMA`).

    benchmark : str, the command ("rbm", "mlp", "cnn", "dbn")
    title : str, one line saying what was timed
    setting : dict, the command's options and the data used
    comparisons : list of :func:`compare` results
    machine : :func:`machine_description`
    missing : lines naming the contenders that could not run (:func:`missing_contenders`)
    load_before : the load averages when the run started (:func:`load_average`)
    started : the run's start, a ``datetime`` (default now)
    """
    started = started or datetime.datetime.now(datetime.timezone.utc)
    return {"schema": SCHEMA, "benchmark": benchmark, "title": title,
            "dlcore_version": __version__,
            "started": started.isoformat(timespec="seconds"),
            "load_average": {"before": load_before, "after": load_average()},
            "machine": machine, "setting": setting, "comparisons": list(comparisons),
            "missing": list(missing)}


#: A load average above this many times the cores marks a run as oversubscribed.
OVERSUBSCRIBED = 2


def oversubscription_note(highest_load, cores):
    """The sentence that says a run's times carry the load, or None: for a run whose load
    average (1 min) went above :data:`OVERSUBSCRIBED` times the ``cores`` (the printed report
    and the README's table both say it)."""
    if highest_load is None or highest_load <= OVERSUBSCRIBED * cores:
        return None
    return ("It was heavily oversubscribed: every parallel region waited for its threads to be "
            "scheduled, so the absolute times (and the SGEMM rate) are far above those of an "
            "idle machine; only the ratios compare the contenders, and they too carry that "
            "load.")


def format_report(run):
    """A :func:`report` as the lines the commands print: the machine, the load, then one
    table per comparison (min, median, GFLOP/s and share of the SGEMM rate when known, the
    ratio of minima to dlcore's)."""
    lines = [machine_line(run["machine"])]
    load = run.get("load_average") or {}
    if load.get("before") and load.get("after"):
        lines.append(f"load average (1 min): {load['before'][0]:.2f} before, "
                     f"{load['after'][0]:.2f} after; {run['machine']['cores']} cores")
        # a share of SGEMM of 207% or PyTorch 25 times slower, on a loaded machine, unsaid
        note = oversubscription_note(max(load["before"][0], load["after"][0]),
                                     run["machine"]["cores"])
        if note is not None:
            lines.append(note + " A share of SGEMM above 100% is one measured at a busier "
                         "moment than the run's; run the bench on an idle machine.")
    lines.append(run["title"])
    sgemm = (run["machine"].get("sgemm") or {}).get("gflops")
    for comparison in run["comparisons"]:
        lines.append("")
        lines.append(comparison["task"] + (f"  ({comparison['note']})" if comparison["note"]
                                           else ""))
        with_flops = comparison.get("flops") is not None
        header = f"  {'':40s} {'min s':>8} {'median s':>9}"
        if with_flops:
            header += f" {'GFLOP/s':>8}" + (f" {'of SGEMM':>9}" if sgemm else "")
        lines.append(header + f" {'vs dlcore (min)':>16} {'runs':>5}")
        for row in comparison["results"]:
            line = f"  {row['name']:40s} {row['min']:8.3f} {row['median']:9.3f}"
            if with_flops:
                line += f" {row['gflops']:8.1f}" + (f" {row['gflops'] / sgemm:9.0%}" if sgemm
                                                    else "")
            lines.append(line + f" {row['ratio_min']:15.2f}x {len(row['seconds']):5d}")
    lines += list(run.get("missing") or ())
    return lines


#: The backends whose arrays live on a GPU (as reports name them).
GPU_BACKENDS = ("cuda",)

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


def importable(module):
    """Whether ``module`` imports (:func:`import_problem` is None)."""
    return import_problem(module) is None
