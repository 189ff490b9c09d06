"""``dlcore doctor``: what a bug report needs, and a self-test of every usable backend.

:func:`environment` gathers the versions (dlcore, Python, NumPy, SciPy, Numba, numba-cuda,
llvmlite, h5py, threadpoolctl; PyTorch and CuPy when present), the CPU (model, vector ISA,
cores, Numba's threads), the BLAS libraries and their kernels, the GPU (CUDA driver and runtime,
device name and memory, or why there is none) and the kernel cache folder. It reads nothing from
the network.

:func:`self_test` holds every usable kernel backend (``cpu``; ``cuda`` on a GPU or under the
simulator) to the NumPy reference in seconds once its kernels are compiled (a first run
compiles them: see :data:`CONV_CHECK_LAYER`), on tiny inputs, with the oracles the test
suite uses:

* ``RBM CD-1 step``: two CD-1 epochs of a 12 -> 6 :class:`~dlcore.BernoulliRBM` (batches of 10,
  momentum, weight decay) give the reference's W and biases (the samples come from the same
  Philox stream, so the trained weights agree to float32 rounding);
* ``sampling stream``: Bernoulli samples at p = 0.5 exactly, and Gaussian samples, are the
  reference's (the same (seed, stream, step, index) counters, whatever the thread count);
* ``conv2d forward+backward`` (LeNet-5's first layer's geometry) and ``max pool
  forward+backward``: output, input gradient and parameter gradients of a layer, as the layer
  tests compare them.

Each check is ok or FAIL with the largest deviation it saw; an exception is a FAIL that names it.
"""
import importlib.metadata
import importlib.util
import os
import platform
import stat
import time
from dataclasses import dataclass

import numpy as np

from dlcore._version import __version__
from dlcore.backend import threads

#: Packages whose versions a bug report needs: (distribution name, shown name).
PACKAGES = (("numpy", "numpy"), ("scipy", "scipy"), ("numba", "numba"),
            ("numba-cuda", "numba-cuda"), ("llvmlite", "llvmlite"), ("h5py", "h5py"),
            ("threadpoolctl", "threadpoolctl"), ("torch", "torch"))
#: CuPy's distributions: its wheels, one per CUDA major version, and its source package
CUPY_DISTRIBUTIONS = ("cupy-cuda13x", "cupy-cuda12x", "cupy-cuda11x", "cupy")
#: Tolerances of the self-test, those of the kernel tests.
RTOL, ATOL = 2e-5, 2e-5


def package_versions():
    """``{shown name: version or None}`` of :data:`PACKAGES`, from the installed metadata (no
    import: a broken package still reports its version)."""
    versions = {"dlcore": __version__, "python": platform.python_version()}
    for distribution, name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    # the wheel says which CUDA the CuPy was built for: a CUDA 13 machine's cupy-cuda13x
    # showed as "installed", with no version
    wheels = installed_cupy_wheels()
    versions["cupy"] = (", ".join(f"{version} ({name})" for name, version in wheels.items())
                        or ("installed" if importlib.util.find_spec("cupy") is not None
                            else None))
    return versions


def installed_cupy_wheels():
    """``{distribution: version}`` of the CuPy distributions installed
    (:data:`CUPY_DISTRIBUTIONS`), from their metadata: nothing is imported."""
    wheels = {}
    for name in CUPY_DISTRIBUTIONS:
        try:
            wheels[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return wheels


def gpu_description():
    """``{"usable", "reason", ...}``: whether the ``cuda`` backend can run, and why not; on a
    real GPU also ``name``, ``compute_capability``, ``memory_gib``, ``driver`` and ``runtime``
    (CUDA versions) and ``cublas`` (whether CuPy gives dlcore cuBLAS; ``cublas_problem``:
    why not). Without a usable GPU, ``cublas`` says whether CuPy is installed."""
    from dlcore.backend import cuda_status
    usable, reason = cuda_status()
    description = {"usable": usable, "reason": reason,
                   "cublas": importlib.util.find_spec("cupy") is not None,
                   "cupy_wheels": list(installed_cupy_wheels())}
    if not usable:
        return description
    from numba import config
    if config.ENABLE_CUDASIM:
        description["simulator"] = True
        return description
    try:
        from numba import cuda
        device = cuda.get_current_device()
        name = device.name
        description["name"] = name.decode() if isinstance(name, bytes) else str(name)
        description["compute_capability"] = ".".join(map(str, device.compute_capability))
        _, total = cuda.current_context().get_memory_info()
        description["memory_gib"] = round(total / 2 ** 30, 1)
        from numba.cuda.cudadrv.driver import driver
        description["driver"] = ".".join(map(str, driver.get_version()))
        description["runtime"] = ".".join(map(str, cuda.runtime.get_version()))
    except Exception as error:   # noqa: BLE001  (any driver error: report it, do not crash)
        description["error"] = f"{type(error).__name__}: {error}"
    # installed is not usable: a CuPy for another CUDA leaves the backend the tiled GEMM
    from dlcore.backend.cuda import cupy_with_cublas
    cupy, problem = cupy_with_cublas()
    description["cublas"] = cupy is not None
    if problem:
        description["cublas_problem"] = problem
    return description


def cache_description():
    """The kernel cache: its folder, whether it exists, its files and size, and whether the
    CPU kernels have been compiled into it before (:mod:`dlcore.backend.cache`)."""
    from dlcore.backend.cache import kernel_cache_folder, kernels_compiled_before, write_error
    try:
        folder = kernel_cache_folder()
    except OSError as error:   # no home folder: the kernels compile in a temporary folder
        return {"folder": None, "exists": False, "files": 0, "megabytes": 0.0,
                "cpu_kernels_compiled": False, "write_error": str(error)}
    files, size = _files_and_bytes(folder)
    error = write_error()
    return {"folder": str(folder), "exists": folder.is_dir(), "files": files,
            "megabytes": round(size / 1e6, 1), "cpu_kernels_compiled": kernels_compiled_before(),
            "write_error": None if error is None else str(error)}


def _files_and_bytes(folder):
    """``(files, bytes)`` under ``folder`` (0, 0 where it is missing), counting the files that
    are still there when read: other dlcore processes write and remove files in the cache as
    the doctor counts them (Numba's index written aside and renamed, the kernels of an earlier
    source removed by a first run after an edit), and a file listed and gone before its size
    was read made ``dlcore doctor`` end in a FileNotFoundError traceback."""
    files = size = 0
    for root, _, names in os.walk(folder):   # passes over folders removed meanwhile
        for name in names:
            try:
                info = os.stat(os.path.join(root, name))
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode):
                files, size = files + 1, size + info.st_size
    return files, size


def environment():
    """Everything :func:`report_lines` prints but the self-test: versions, CPU, BLAS, GPU,
    kernel cache (see the module docstring)."""
    import numba

    from dlcore.bench import blas_description, cpu_description
    cpu = cpu_description()
    cpu["threads"] = numba.get_num_threads()
    cpu["thread_wait"] = threads.wait_policy()
    return {"versions": package_versions(), "cpu": cpu, "blas": blas_description(),
            "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
            "gpu": gpu_description(), "cache": cache_description()}


#: OpenBLAS's kernels for AVX-512 CPUs (the names threadpoolctl reports).
OPENBLAS_AVX512_KERNELS = ("SkylakeX", "Cooperlake", "SapphireRapids")


def openblas_held_below_the_cpu(cpu, blas, coretype):
    """One line when ``$OPENBLAS_CORETYPE`` (``coretype``) holds the OpenBLAS that dlcore calls
    to kernels below an AVX-512 CPU's, else None. Some machines set it for every process (one
    such AMD EPYC here: Haswell, AVX2): dlcore's products then run at its AVX2 rate, 223
    against 371 GFLOP/s at the RBM's shapes on that machine, while PyTorch's MKL is not held."""
    if not coretype or cpu.get("isa") != "AVX-512":
        return None
    for entry in blas:
        if (entry.get("used_by_dlcore") and entry.get("library") == "OpenBLAS"
                and entry.get("kernel") not in OPENBLAS_AVX512_KERNELS):
            return (f"OPENBLAS_CORETYPE={coretype} in the environment holds OpenBLAS to its "
                    f"{entry.get('kernel')} kernels on this AVX-512 CPU; unset it (before "
                    "Python starts) for OpenBLAS's own choice and faster products")
    return None


def threading_layer():
    """Numba's threading layer (omp, tbb, workqueue) once a parallel kernel has run, else None."""
    import numba
    try:
        return numba.threading_layer()
    except ValueError:   # no parallel region has run in this process yet
        return None


# -- the self-test -------------------------------------------------------------------------
@dataclass
class Check:
    """One self-test result: ``backend``, ``name``, ``ok``, ``detail`` (the deviation, or the
    error), ``seconds`` (in all) and ``compile_seconds`` (of them, compiling kernels that the
    cache did not hold: a first run's)."""

    backend: str
    name: str
    ok: bool
    detail: str
    seconds: float
    compile_seconds: float = 0.0


def _deviation(got, expected):
    """(within tolerance, the largest |got - expected| over tolerance-scaled arrays)."""
    worst, ok = 0.0, True
    for a, b in zip(got, expected):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        if a.shape != b.shape:
            return False, f"shape {a.shape} instead of {b.shape}"
        worst = max(worst, float(np.max(np.abs(a - b))) if a.size else 0.0)
        ok = ok and bool(np.allclose(a, b, rtol=RTOL, atol=ATOL))
    return ok, f"max |difference| {worst:.1e}"


def check_rbm_step(backend):
    """Two CD-1 epochs of a small BernoulliRBM against the reference's."""
    import dlcore
    X = (np.random.default_rng(3).random((20, 12)) < 0.4).astype(np.float32)

    def trained(name):
        rbm = dlcore.BernoulliRBM(n_hidden=6, batch_size=10, epochs=2, learning_rate=0.1,
                                  momentum=0.5, weight_decay=2e-4, seed=7, backend=name)
        rbm.fit(X)
        return [rbm.W, rbm.visible_bias, rbm.hidden_bias]
    return _deviation(trained(backend), trained("reference"))


def check_sampling_stream(backend):
    """Bernoulli samples at p = 0.5 exactly and Gaussian samples against the reference."""
    from dlcore.backend import get_backend
    shape, seed, stream, step = (7, 13), 5, 3, 11

    def draw(name):
        be = get_backend(name)
        pre, sample = be.asarray(np.zeros(shape, np.float32)), be.empty(shape)
        be.sigmoid_bernoulli(pre, be.zeros((shape[1],)), sample, seed, stream, step)
        mean, normal = be.asarray(np.zeros(shape, np.float32)), be.empty(shape)
        be.gaussian_sample(mean, be.zeros((shape[1],)),
                           be.asarray(np.ones(shape[1], np.float32)), normal, seed, stream, step)
        return be.to_numpy(sample), be.to_numpy(normal)
    (bits, normal), (expected_bits, expected_normal) = draw(backend), draw("reference")
    differing = int(np.sum(bits != expected_bits))
    if differing:
        return False, f"{differing} of {bits.size} Bernoulli samples differ"
    ok, detail = _deviation([normal], [expected_normal])
    return ok, f"Bernoulli samples identical; Gaussian {detail}"


def check_sample_products(backend):
    """The products of a sample of binary units, which the cpu sums rather than multiplies
    (its vector code, LLVM's for this CPU: docs/backends.md): P(x | h) from h W', Q(h | x)
    from x W, and CD's weight step from the statistics x1' h and x' Q(h | x), against the
    reference's products. At 64 rows of 200 visible and 180 hidden units, large enough for the
    cpu to sum them."""
    from dlcore.backend import get_backend
    generator = np.random.default_rng(5)
    rows, n_visible, n_hidden = 64, 200, 180
    data = generator.random((rows, n_visible)).astype(np.float32)
    visible = (generator.random((rows, n_visible)) < 0.3).astype(np.float32)
    hidden = (generator.random((rows, n_hidden)) < 0.3).astype(np.float32)
    W = (generator.standard_normal((n_visible, n_hidden)) * 0.1).astype(np.float32)
    velocity = (generator.standard_normal((n_visible, n_hidden)) * 0.01).astype(np.float32)

    def computed(name):
        be = get_backend(name)
        # copies: a host backend steps the weights in place
        on = [be.asarray(array.copy()) for array in (data, visible, hidden, W, velocity)]
        x1, x, h, weights, momenta = on
        p, q = be.empty((rows, n_visible)), be.empty((rows, n_hidden))
        with be.compute():
            h_ones = be.list_ones(h, be.ones_lists(rows, n_hidden))
            x_ones = be.list_ones(x, be.ones_lists(rows, n_visible))
            be.gemm_sigmoid_bernoulli(h, weights, p, be.zeros((n_visible,)), None, 1, 2, 3,
                                      trans_b=True, a_ones=h_ones)
            be.gemm_sigmoid_bernoulli(x, weights, q, be.zeros((n_hidden,)), None, 1, 2, 3,
                                      a_ones=x_ones)
            be.contrastive_weight_step(weights, momenta, x1, h, x, q, 0.1 / rows, 0.1 / rows,
                                       0.5, 2e-5, positive_ones=h_ones, negative_ones=x_ones)
        return [be.to_numpy(array) for array in (p, q, weights, momenta)]
    return _deviation(computed(backend), computed("reference"))


def _layer_results(make_layer, backend, x, grad_y):
    layer = make_layer().build(x.shape[1:], backend=backend, seed=11)
    be = layer.backend
    y = layer.forward(be.asarray(x), training=True, step=3)
    results = [np.array(be.to_numpy(y))]
    grad_x = layer.backward(be.asarray(grad_y), need_input_gradient=True)
    results.append(np.array(be.to_numpy(grad_x)))
    return results + [np.array(be.to_numpy(layer.grads[name])) for name in layer.weight_names]


def _check_layer(make_layer, input_shape, backend):
    generator = np.random.default_rng(0)
    x = generator.standard_normal(input_shape).astype(np.float32)
    output_shape = make_layer().compute_output_shape(input_shape[1:])
    grad_y = generator.standard_normal((input_shape[0],) + tuple(output_shape)).astype(
        np.float32)
    return _deviation(_layer_results(make_layer, backend, x, grad_y),
                      _layer_results(make_layer, "reference", x, grad_y))


#: The conv2d check's layer, (filters, kernel size, padding), on one-channel 8x8 images: the
#: geometry of LeNet-5's first layer (:func:`dlcore.models.lenet5`, ``dlcore cnn train``), so
#: that the CPU compiles the kernels a LeNet-5 training compiles and finds in the kernel cache.
#: A first run compiles its kernels for ~10 s of CPU (30 s on a busy 2-core machine); a
#: geometry of the check's own (it was 2 channels, 3x3) had a forward kernel compiled for the
#: doctor alone (the CPU's direct convolution is compiled once per channels x kernel size).
CONV_CHECK_LAYER = (3, 5, 2)


def check_conv(backend):
    """Conv2D (LeNet-5's first layer's geometry: 1 channel, 5x5 filters, padding 2; 3 of them,
    ReLU) forward and backward against the reference."""
    from dlcore.layers import Conv2D
    filters, size, padding = CONV_CHECK_LAYER
    return _check_layer(lambda: Conv2D(filters, size, padding=padding, activation="relu"),
                        (2, 1, 8, 8), backend)


def check_max_pool(backend):
    """MaxPool2D(2) forward and backward against the reference."""
    from dlcore.layers import MaxPool2D
    return _check_layer(lambda: MaxPool2D(2), (2, 3, 6, 6), backend)


#: The self-test's checks, in the order they run.
CHECKS = (("RBM CD-1 step", check_rbm_step), ("sampling stream", check_sampling_stream),
          ("products of a binary sample", check_sample_products),
          ("conv2d forward+backward", check_conv),
          ("max pool forward+backward", check_max_pool))


def kernel_backends():
    """The names of the kernel backends usable here: ``cpu``, and ``cuda`` when
    :func:`dlcore.backend.cuda_status` says so (a GPU, or the simulator when it is on)."""
    from dlcore.backend import cuda_status
    return ["cpu"] + (["cuda"] if cuda_status()[0] else [])


def unusable_backends(backends):
    """``{name: reason}`` for each of ``backends`` that cannot run here (``cuda`` without a
    usable GPU, :func:`dlcore.backend.cuda_status`'s reason): the self-test says so in one line
    instead of a FAIL per check, which would blame kernels that never ran."""
    from dlcore.backend import cuda_status
    if "cuda" not in backends:
        return {}
    usable, reason = cuda_status()
    return {} if usable else {"cuda": reason}


def unusable_line(backend, reason):
    """``cuda: not tested, not usable here: <reason>``, the summary line of a backend asked for
    that cannot run."""
    return f"{backend}: not tested, not usable here: {reason}"


def self_test(backends=None, report=None):
    """Run :data:`CHECKS` on every backend of ``backends`` (default :func:`kernel_backends`);
    ``report(check)`` is called after each. Returns the list of :class:`Check`, each with the
    seconds Numba spent compiling for it (a first run's, ~10 s of one core for the conv2d
    check's kernels, several times that on a busy machine) told apart from its own (about a
    second for all the checks), so that a first run's wait is not read as a slow kernel."""
    from numba.core import event
    checks = []
    for backend in backends or kernel_backends():
        for name, check in CHECKS:
            started, compiling = time.perf_counter(), []
            # the outermost compilations only: a kernel's callees compile within it
            with event.install_timer("numba:compile", compiling.append):
                try:
                    ok, detail = check(backend)
                except Exception as error:   # noqa: BLE001  (a crashing kernel is a FAIL, named)
                    ok, detail = False, f"{type(error).__name__}: {error}".splitlines()[0]
            checks.append(Check(backend, name, ok, detail, time.perf_counter() - started,
                                sum(compiling)))
            if report is not None:
                report(checks[-1])
    return checks


# -- the report ----------------------------------------------------------------------------
def cupy_install_line(runtime=None, installed=()):
    """The pip line that gives CuPy's cuBLAS for the CUDA ``runtime`` ("12.9") that numba-cuda
    runs on; without ``runtime`` (no usable GPU), for the CUDA of numba-cuda's
    ``cuda-bindings``, else CUDA 12's (``dlcore[cuda]`` installs numba-cuda for CUDA 12).

    CuPy's wheels are named by the CUDA major version, and one for another CUDA imports but
    gives no cuBLAS: ``installed`` (the CuPy distributions installed) other than the one wanted
    are uninstalled first, as two write the same ``cupy`` package. The CUDA that
    ``dlcore[cuda]`` installs from PyPI has no cuBLAS: the ``ctk`` extra of CuPy 14's wheels
    (CUDA 12 and 13) installs it, ``-U`` where an older CuPy without it is there."""
    major = str(runtime or "").split(".")[0] or _cuda_major_of_the_bindings()
    major = major if major in ("11", "12", "13") else "12"
    wanted = f"cupy-cuda{major}x"
    install = "pip install cupy-cuda11x" if major == "11" else f'pip install -U "{wanted}[ctk]"'
    others = [name for name in installed if name != wanted]
    return f"pip uninstall {' '.join(others)}, then {install}" if others else install


def _cuda_major_of_the_bindings():
    """The CUDA major version of the installed ``cuda-bindings`` (numba-cuda's, "12"), or ""
    where it is not installed."""
    try:
        return importlib.metadata.version("cuda-bindings").split(".")[0]
    except importlib.metadata.PackageNotFoundError:
        return ""


def _version_text(versions):
    return "  ".join(f"{name} {version or '-'}" for name, version in versions.items())


def environment_lines(env):
    """The environment as the lines ``dlcore doctor`` prints."""
    cpu, gpu, cache = env["cpu"], env["gpu"], env["cache"]
    lines = [f"versions: {_version_text(env['versions'])}   (-: not installed)",
             f"cpu: {cpu['cpu']}, {cpu['isa']} ({' '.join(cpu['flags']) or 'no AVX flags'}), "
             f"{cpu['cores']} cores; {cpu['threads']} Numba threads"
             + (f" ({env['threading_layer']} threading layer)"
                if env.get("threading_layer") else "")
             + (f", waiting {cpu['thread_wait']}" if cpu.get("thread_wait") else "")]
    for entry in env["blas"]:
        lines.append(f"blas: {entry['library']} {entry['version']}, "
                     + (f"{entry['kernel']} kernel, " if entry.get("kernel") else "")
                     + f"{entry['threading']}, {entry['threads']} threads ({entry['file']}"
                     + (", the one dlcore's kernels call" if entry["used_by_dlcore"] else "")
                     + (f": {entry['chosen']}" if entry.get("chosen") else "")
                     + ")")
    if not env["blas"]:
        lines.append("blas: threadpoolctl found no BLAS library")
    held = openblas_held_below_the_cpu(cpu, env["blas"], env.get("openblas_coretype"))
    if held:
        lines.append(f"blas: {held}")
    if gpu.get("simulator"):
        lines.append("gpu: the Numba CUDA simulator (NUMBA_ENABLE_CUDASIM=1), no real GPU")
    elif gpu["usable"]:
        lines.append(f"gpu: {gpu.get('name', '?')}, compute capability "
                     f"{gpu.get('compute_capability', '?')}, {gpu.get('memory_gib', '?')} GiB; "
                     f"CUDA driver {gpu.get('driver', '?')}, runtime {gpu.get('runtime', '?')}"
                     f"; CuPy (cuBLAS) {'yes' if gpu['cublas'] else 'no: tiled GEMM'}"
                     + (f" ({gpu.get('cublas_problem', 'no cuBLAS from CuPy')}; for cuBLAS: "
                        f"{cupy_install_line(gpu.get('runtime'), gpu.get('cupy_wheels', ()))})"
                        if not gpu["cublas"] else "")
                     + (f"; {gpu['error']}" if gpu.get("error") else ""))
    else:
        lines.append(f"gpu: none usable: {gpu['reason']}; CuPy "
                     + ("installed" if gpu["cublas"] else
                        f"not installed (cuBLAS on a GPU: "
                        f"{cupy_install_line(installed=gpu.get('cupy_wheels', ()))})"))
    if cache.get("write_error"):
        # the kernels went to a temporary folder: "the first run compiles" would be untrue
        lines.append(f"kernel cache: {cache['folder'] or 'none'} (cannot be written: "
                     f"{cache['write_error']}; kernels compile again in every run: set "
                     "DLCORE_CACHE to a writable folder)")
        return lines
    lines.append(f"kernel cache: {cache['folder']} ("
                 + (f"{cache['files']} files, {cache['megabytes']} MB; "
                    + ("this dlcore's CPU kernels compiled before, those of each kind of model "
                       "on its first run" if cache["cpu_kernels_compiled"]
                       else "this dlcore's CPU kernels not compiled yet")
                    if cache["exists"] else "empty: the first run compiles")
                 + "; set DLCORE_CACHE to move it)")
    return lines


#: Compiling shorter than this is not worth a word.
COMPILE_NOTE_SECONDS = 0.05


def _kernels_kept():
    """Whether compiled kernels are kept for the next run (the cache folder can be written)."""
    from dlcore.backend.cache import write_error
    return write_error() is None


def _compiling_note(seconds):
    return (f", after {seconds:.1f} s compiling its kernels "
            f"({'first run only' if _kernels_kept() else 'every run: the cache cannot be written'})"
            if seconds >= COMPILE_NOTE_SECONDS else "")


def check_line(check):
    """``  cpu   RBM CD-1 step               ok    max |difference| 3.0e-08  (0.41 s)``, the
    check's own time; a first run adds ``, after 21.3 s compiling its kernels (first run
    only)``."""
    return (f"  {check.backend:5s} {check.name:27s} {'ok' if check.ok else 'FAIL':5s} "
            f"{check.detail}  ({check.seconds - check.compile_seconds:.2f} s"
            f"{_compiling_note(check.compile_seconds)})")


def summary_lines(checks):
    """One line per backend: ``cpu: ok (5 checks)`` or ``cpu: FAIL (conv2d ...)``."""
    lines = []
    for backend in dict.fromkeys(check.backend for check in checks):
        failed = [check.name for check in checks if check.backend == backend and not check.ok]
        compiling = sum(check.compile_seconds for check in checks if check.backend == backend)
        total = sum(check.seconds for check in checks if check.backend == backend) - compiling
        count = sum(check.backend == backend for check in checks)
        kept = ("first run only: a training finds them compiled" if _kernels_kept() else
                "in every run while the kernel cache cannot be written")
        note = (f"; compiling their kernels took {compiling:.1f} s more, {kept}"
                if compiling >= COMPILE_NOTE_SECONDS else "")
        verdict = (f"FAIL ({', '.join(failed)})" if failed
                   else f"ok ({count} checks against the reference, {total:.1f} s{note})")
        lines.append(f"{backend}: {verdict}")
    return lines
