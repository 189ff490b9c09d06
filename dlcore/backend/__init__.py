"""Choosing where the maths runs: ``reference``, ``cpu``, ``cuda`` or ``auto``.

``get_backend(name)`` returns the (shared) backend object for a name:

* ``"reference"``: readable NumPy, the oracle of the tests;
* ``"cpu"``: Numba parallel kernels and BLAS;
* ``"cuda"``: ``numba.cuda`` kernels with cuBLAS (via CuPy) or a tiled GEMM; asking for it
  without a usable GPU raises an error that says what is missing;
* ``"auto"`` (the default everywhere): ``$DLCORE_BACKEND`` when it is set, else ``cuda`` when a
  GPU is usable, else ``cpu``, noting once why the GPU is not used as the cpu's kernels first
  run (a program that only loads or converts a model does not say it). ``auto`` never picks the
  CUDA simulator.
"""
import contextlib
import functools
import importlib.util
import os
import sys

from . import (
    cache,  # noqa: F401  (before any kernel is decorated: the kernels' cache folder)
    threads,  # noqa: F401  (before any kernel runs: how OpenMP threads wait)
)
from .base import Backend

BACKEND_NAMES = ("auto", "cpu", "cuda", "reference")
_instances = {}
_fallback_reported = False


def check_backend_name(name):
    """Return ``name`` lower-cased, or raise ValueError naming the allowed values."""
    if not isinstance(name, str) or name.lower() not in BACKEND_NAMES:
        raise ValueError(f"unknown backend {name!r}: choose one of {', '.join(BACKEND_NAMES)}")
    return name.lower()


#: Why the ``cuda`` backend cannot run on a machine without NVIDIA's driver.
NO_DRIVER_REASON = ("no NVIDIA GPU driver was found (a GPU needs an NVIDIA card and its "
                    "driver; the CPU runs everything)")
#: Why the ``cuda`` backend cannot run where NVIDIA's kernel driver is loaded but its CUDA
#: library is missing: mostly a container started without the host's GPUs.
NO_CUDA_LIBRARY_REASON = (
    "NVIDIA's kernel driver is loaded but its CUDA library (libcuda.so) was not found: start "
    "a container with the host's GPUs (docker run --gpus all, apptainer --nv), else reinstall "
    "the NVIDIA driver; the CPU runs everything")


def cuda_status():
    """``(usable, reason)``: whether the ``cuda`` backend can run here, and if not, why.

    Checks, in order: numba-cuda installed, the NVIDIA driver found, a device visible, a small
    kernel compiled for it (:func:`kernel_compile_problem`). With
    ``NUMBA_ENABLE_CUDASIM=1`` the simulator counts as usable (for tests), with that reason.
    """
    if importlib.util.find_spec("numba_cuda") is None:
        if not nvidia_driver_present():
            # numba-cuda would not help: a laptop's student is not sent to install it
            return False, NO_DRIVER_REASON
        return False, "numba-cuda is not installed (pip install 'dlcore[cuda]')"
    from numba import config
    if config.ENABLE_CUDASIM:
        return True, "the Numba CUDA simulator is active (NUMBA_ENABLE_CUDASIM=1)"
    if _cuda_start_problem:
        return False, _cuda_start_problem[0]
    if not (nvidia_driver_present() or os.environ.get("NUMBA_CUDA_DRIVER")):
        # decided before importing numba.cuda, which takes a second of every command on a
        # machine without a GPU (`homework task1`'s warm run: 3.8 -> 2.4 s on 2 cores)
        return False, NO_DRIVER_REASON
    from numba import cuda
    try:
        n_devices = _cuda_device_count()
    except Exception as error:  # the driver raises several types; each means "no driver"
        if not nvidia_driver_present():
            # Numba's own words ("Error at driver init CUDA driver library cannot be found")
            # tell a student nothing: say what is missing and what would give a GPU
            return False, NO_DRIVER_REASON
        if not _cuda_library_loads():
            # "the driver was found but failed to start (... driver library cannot be found)"
            # contradicted itself: the kernel's driver is there, its library is not
            return False, NO_CUDA_LIBRARY_REASON
        if "CUDA_ERROR_NO_DEVICE" in str(error):
            # the driver starts only with a device to show: CUDA_VISIBLE_DEVICES="" (or -1, a
            # GPU-less job's) makes cuInit itself fail, never a count of 0
            return False, no_visible_device_reason()
        detail = " ".join(str(error).replace(":", " ").split()).split(".")[0]
        detail = detail or type(error).__name__
        return False, f"the NVIDIA CUDA driver was found but failed to start ({detail})"
    if n_devices == 0:
        return False, no_visible_device_reason()
    if not cuda.is_available():
        return False, ("a CUDA device is present but Numba cannot use it "
                       "(run `numba -s` for details)")
    problem = kernel_compile_problem()
    if problem is not None:
        return False, problem
    return True, "a CUDA device is available"


def no_visible_device_reason(environ=None):
    """Why the ``cuda`` backend cannot run where the NVIDIA driver is present but shows no
    device: one line, naming ``CUDA_VISIBLE_DEVICES`` where it is set."""
    environ = os.environ if environ is None else environ
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return ("the NVIDIA driver is present but shows no CUDA device (nvidia-smi lists the "
                "GPUs it sees)")
    return (f"the NVIDIA driver is present but no CUDA device is visible: "
            f"CUDA_VISIBLE_DEVICES={visible!r} hides them (unset it, or name a GPU as "
            "nvidia-smi numbers them: CUDA_VISIBLE_DEVICES=0)")


def _cuda_device_count():
    """The CUDA devices numba-cuda's driver sees; raises when the driver cannot start."""
    from numba.cuda.cudadrv.driver import driver
    return driver.get_device_count()


def _cuda_library_loads():
    """Whether NVIDIA's CUDA driver library loads, where numba-cuda looks for it
    (``$NUMBA_CUDA_DRIVER`` of older versions, else the loader's search path, /usr/lib and
    /usr/lib64)."""
    import ctypes
    named = os.environ.get("NUMBA_CUDA_DRIVER")
    names = ("libcuda.so.1", "libcuda.so")
    candidates = (named,) if named else names + tuple(
        os.path.join(folder, name) for folder in ("/usr/lib", "/usr/lib64") for name in names
    ) + ("nvcuda.dll",)
    for name in candidates:
        try:
            ctypes.CDLL(name)
        except OSError:
            continue
        return True
    return False


def nvidia_driver_present():
    """Whether this machine has an NVIDIA driver (its kernel module on Linux, or its CUDA
    driver library anywhere), without numba-cuda, which may be missing."""
    import ctypes.util
    return (os.path.exists("/proc/driver/nvidia/version")
            or _cuda_driver_library_found(ctypes.util.find_library))


@functools.cache
def _cuda_driver_library_found(find_library):
    """Whether ``find_library`` (ctypes's) finds the CUDA driver library; kept per finder, as
    each search runs ``ldconfig`` (~10 ms, and the backend is asked once per model)."""
    return any(find_library(name) for name in ("cuda", "nvcuda"))


def kernel_compile_problem(compile_probe=None):
    """None when numba-cuda compiles a small kernel for this GPU, else one line saying why not
    and what to do; the default probe's answer is kept for the process.

    A GPU and its driver can be present while numba-cuda still cannot compile, and then every
    kernel launch would fail with a long traceback: NVVM missing from the CUDA toolkit, or a
    NumPy newer than the installed numba-cuda knows (numba-cuda 0.30 calls ``np.row_stack``,
    which NumPy 2.5 removed). ``compile_probe`` (a no-argument callable; tests pass their own)
    defaults to compiling one float32 kernel to PTX for the current device.
    """
    if compile_probe is None:
        return _small_kernel_problem()
    try:
        compile_probe()
    except Exception as error:  # NVVM, numba-cuda and NumPy each raise their own types
        return describe_compile_failure(error)
    return None


@functools.cache
def _small_kernel_problem():
    return kernel_compile_problem(_compile_small_kernel)


def _compile_small_kernel():
    from numba import cuda, float32
    from numba.cuda.cudadrv.driver import driver

    def scale(values, factor):
        index = cuda.grid(1)
        if index < values.shape[0]:
            values[index] *= factor

    # for the device this process will use, read without a context: one made here would sit
    # on device 0, which a data-parallel rank could then never leave (use_node_local_rank)
    device = driver.get_device(cuda_device_index(driver.get_device_count()))
    cuda.compile_ptx(scale, (float32[::1], float32), cc=device.compute_capability)


#: The node-local rank of this process in a data-parallel job, once joined
#: (:func:`use_node_local_rank`): which of the node's CUDA devices it uses.
_node_local_rank = []
#: Holds True once the cuda backend started on the device of the rank's job
#: (:func:`_enter_rank_device`), not on device 0 before a job was joined.
_started_on_a_rank_s_device = []


def cuda_device_for_rank(local_rank, device_count):
    """The CUDA device (an index among those visible to the process) on which the rank
    ``local_rank`` of its node trains: ``local_rank % device_count``, Horovod's choice of
    ``local_rank``, the ranks sharing the devices in turn when the node has more ranks than
    GPUs. Where a launcher gives each rank a GPU of its own (``CUDA_VISIBLE_DEVICES`` of one
    device), that one: index 0."""
    return local_rank % device_count if device_count > 0 else 0


def cuda_device_index(device_count):
    """The device this process uses among ``device_count`` visible: its node-local rank's
    (:func:`cuda_device_for_rank`) in a data-parallel job, else 0 (Numba's default)."""
    if not _node_local_rank:
        return 0
    return cuda_device_for_rank(_node_local_rank[0], device_count)


def use_node_local_rank(local_rank):
    """Make this process, the rank ``local_rank`` of its node in a data-parallel job, create
    its CUDA context on its own device (:func:`cuda_device_for_rank`) when the ``cuda``
    backend starts, instead of every rank on device 0. Returns a one-line warning where the
    backend had already started on another device (a model built before the job was joined),
    else None; nothing is started here (a cpu run never touches a GPU)."""
    _node_local_rank[:] = [int(local_rank)]
    if "cuda" not in _instances or _started_on_a_rank_s_device:
        # started on the device of the job it joined first: a Split's group (fit(comm=group)
        # after init()) numbers its ranks afresh, and its rank 0 is not told to move
        return None
    from numba import config, cuda
    from numba.cuda.cudadrv.driver import driver
    if config.ENABLE_CUDASIM:
        return None
    wanted = cuda_device_index(driver.get_device_count())
    current = cuda.get_current_device().id
    if current == wanted:
        return None
    return (f"dlcore: warning: node-local rank {local_rank} trains on CUDA device {current}, "
            f"not its own device {wanted}: the cuda backend started before the job was "
            "joined; call dlcore.distributed.init() before building or fitting a model")


#: Why the cuda backend could not start in this process (:func:`_start_cuda_backend`), once it
#: failed: :func:`cuda_status` says so from then on, and ``auto`` picks the cpu.
_cuda_start_problem = []


def _start_cuda_backend():
    """The :class:`~dlcore.backend.cuda.CUDABackend`, on this process's device; a CUDA driver
    error as it starts (the device's context) becomes :data:`_cuda_start_problem` and a
    RuntimeError of one line.

    The GPU check's probe compiles without a context (a rank must not make one on device 0), so
    a device that refuses this process a context passes it: one held by another process in
    exclusive-process mode (a data-parallel rank sharing a node's GPU with another rank, a
    lab's GPU in use), or whose memory another process has taken."""
    from numba.cuda.cudadrv import driver as cuda_driver

    from .cuda import CUDABackend
    driver_errors = tuple(getattr(cuda_driver, name) for name in
                          ("CudaDriverError", "CudaAPIError", "CudaSupportError")
                          if isinstance(getattr(cuda_driver, name, None), type))
    try:
        _enter_rank_device()
        return CUDABackend()
    except driver_errors as error:
        detail = " ".join(str(error).split())[:200] or type(error).__name__
        _cuda_start_problem[:] = [
            f"CUDA device {_device_named()} did not start for this process ({detail}): another "
            "process may hold it (exclusive-process compute mode) or all its memory; "
            "nvidia-smi lists them"]
        raise _CudaStartFailure(_cuda_start_problem[0]) from None


class _CudaStartFailure(RuntimeError):
    """The cuda backend could not start here (:func:`_start_cuda_backend`)."""


def _device_named():
    try:
        from numba.cuda.cudadrv.driver import driver
        return cuda_device_index(driver.get_device_count())
    except Exception:  # noqa: BLE001  (the driver that just failed may fail again)
        return cuda_device_index(1)


def _enter_rank_device():
    """Create the CUDA context on this process's device (:func:`cuda_device_index`) before the
    backend's first allocation would create it on device 0."""
    from numba import config, cuda
    from numba.cuda.cudadrv.driver import driver
    if _node_local_rank and not config.ENABLE_CUDASIM:
        cuda.select_device(cuda_device_index(driver.get_device_count()))
        _started_on_a_rank_s_device.append(True)


def describe_compile_failure(error):
    """The one-line reason :func:`kernel_compile_problem` gives for ``error``, with the fix."""
    from importlib.metadata import PackageNotFoundError, version

    import numpy as np
    try:
        numba_cuda = f"numba-cuda {version('numba-cuda')}"
    except PackageNotFoundError:
        numba_cuda = "numba-cuda"
    message = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, AttributeError) and "module 'numpy'" in message:
        major, minor = (int(part) for part in np.__version__.split(".")[:2])
        return (f"{numba_cuda} cannot compile kernels with NumPy {np.__version__} ({message}): "
                f"pip install \"numpy<{major}.{minor}\" or a numba-cuda release that supports "
                f"NumPy {major}.{minor}")
    if "nvvm" in message.lower():
        return (f"{numba_cuda} cannot find NVVM, CUDA's compiler library ({message[:160]}): "
                "pip install \"numba-cuda[cu12]\" (or [cu13]) or set CUDA_HOME to a CUDA "
                "toolkit")
    return (f"{numba_cuda} cannot compile a kernel for this GPU ({type(error).__name__}: "
            f"{message[:160]}): run `numba -s` for details")


def resolve_backend_name(name="auto"):
    """The concrete backend ``auto`` (or an explicit name) stands for, as a string."""
    global _fallback_reported
    name = check_backend_name(name)
    if name != "auto":
        return name
    from_environment = os.environ.get("DLCORE_BACKEND", "").strip()
    if from_environment and from_environment.lower() != "auto":
        try:
            return check_backend_name(from_environment)
        except ValueError as error:
            raise ValueError(f"$DLCORE_BACKEND: {error}") from None
    usable, reason = cuda_status()
    from numba import config
    if usable and not config.ENABLE_CUDASIM:
        return "cuda"
    if not _fallback_reported:
        _fallback_reported = True
        if usable:  # only the simulator is "usable" without being picked
            reason = "the CUDA simulator is active and auto never picks it"
        if not (started_by_multiprocessing() or started_as_another_rank()):
            # the parenthesis of no driver ("the CPU runs everything") is what the note says
            reason = "no NVIDIA GPU driver was found" if reason == NO_DRIVER_REASON else reason
            _auto_note[:] = [f"dlcore: note: running on the CPU: {reason}."]
    return "cpu"


#: The note auto's choice of the cpu leaves for the cpu's first kernel (empty: none left).
#: Said at the choice, it was printed by every command that loaded a model, ``dlcore convert``
#: too, and before the error line of a command refusing its input, where it read as an error.
_auto_note = []


def say_auto_note():
    """Print the note of auto's choice of the cpu, if it is left to say (once per process):
    the cpu backend calls this as a kernel of it runs, or a stretch of work begins."""
    while _auto_note:
        try:
            note = _auto_note.pop()
        except IndexError:   # another thread's kernel said it between the test and the pop
            return
        print(note, file=sys.stderr)


def started_by_multiprocessing():
    """Whether this process is a worker that :mod:`multiprocessing` or joblib started (the
    workers of ``GridSearchCV(n_jobs=2)``): those leave auto's notice to the program that
    started them, which would otherwise read it once per worker on one terminal."""
    import multiprocessing
    return multiprocessing.parent_process() is not None


def started_as_another_rank():
    """Whether this process is a rank other than 0 of a job an MPI launcher started
    (``mpiexec -n 64 python -m your_script``): rank 0 says the notices every rank would say alike,
    which were otherwise one line per rank."""
    from dlcore.distributed import launched_rank
    return launched_rank() != 0


#: What a process says as Numba starts compiling its first dlcore kernel.
#: Measured cold on a loaded 2-core machine: ~7 s for `homework task1`'s RBM, ~15 s for
#: `dlcore doctor`, ~35 s of CPU (a minute's wait) for LeNet-5's `cnn train`.
COMPILING_NOTICE = ("dlcore: compiling kernels not yet compiled on this machine (once: "
                    "later runs load them from the kernel cache); seconds for an RBM, up to "
                    "a minute for a convolutional network")
#: The notice where the kernel cache cannot be written (said just before it, by
#: :mod:`dlcore.backend.cache`): "once: later runs load them" would be untrue there.
COMPILING_EVERY_RUN_NOTICE = ("dlcore: compiling kernels, again in every run while the kernel "
                              "cache cannot be written (see above); seconds for an RBM, up to "
                              "a minute for a convolutional network")
_compiling_listener = []
#: Holds True once the notice was said in this process (by whichever listener heard first).
_compiling_said = []


def _announce_compiling():
    """Say once per process (not in the workers multiprocessing or joblib starts), as Numba
    starts compiling a dlcore kernel that the kernel cache did not hold, that it compiles
    (once), after what the program wrote to stdout so far: each kind of model compiles its
    own kernels on its first run (an RBM's ~15 s, LeNet-5's a minute on a busy 2-core
    machine), not only the first command after an install, which was all a notice at the
    backend's creation knew."""
    from numba.core import event

    from .cache import _is_dlcore_function

    class CompilingNotice(event.Listener):
        def on_start(self, compiling):
            dispatcher = compiling.data.get("dispatcher") if compiling.data else None
            if not _compiling_said and _is_dlcore_function(getattr(dispatcher, "py_func",
                                                                   None)):
                _compiling_said.append(True)
                if started_by_multiprocessing():   # a fork of a process that listened
                    return
                # after the lines the program has written so far: on one pipe or file
                # (2>&1 | tee), stdout's buffered lines came after it ('dlcore doctor'); a
                # program with no stdout (pythonw, '>&-': None) or a closed or broken one
                # ('| head') compiles on, the notice said as before
                with contextlib.suppress(AttributeError, ValueError, OSError):
                    sys.stdout.flush()
                from .cache import write_error
                print(COMPILING_NOTICE if write_error() is None else COMPILING_EVERY_RUN_NOTICE,
                      file=sys.stderr, flush=True)

        def on_end(self, compiling):
            pass

    if not _compiling_listener:
        _compiling_listener.append(CompilingNotice())
        event.register("numba:compile", _compiling_listener[0])


def get_backend(name="auto"):
    """The backend object for ``name`` (see the module docstring); a Backend passes through."""
    if isinstance(name, Backend):
        return name
    asked, name = name, resolve_backend_name(name)
    if name not in _instances:
        if name == "reference":
            from .reference import ReferenceBackend
            _instances[name] = ReferenceBackend()
        elif name == "cpu":
            from .cache import kernels_compiled_before, remember_compiling
            from .cpu import CPUBackend
            if not kernels_compiled_before():
                remember_compiling()
            # a worker of GridSearchCV(n_jobs=2) leaves it to the program that started it:
            # each worker said it, one line each on one terminal
            if not (started_as_another_rank() or started_by_multiprocessing()):
                _announce_compiling()
            _instances[name] = CPUBackend()
        else:
            usable, reason = cuda_status()
            if not usable:
                raise RuntimeError(f"backend 'cuda' is not usable here: {reason}; "
                                   "choose the cpu or the auto backend")
            try:
                _instances[name] = _start_cuda_backend()
            except _CudaStartFailure as failure:
                # auto chose the GPU by a check that makes no context: now it says why not
                if check_backend_name(asked) == "auto" and resolve_backend_name(asked) == "cpu":
                    return get_backend("cpu")
                raise RuntimeError(f"backend 'cuda' is not usable here: {failure}; choose the "
                                   "cpu or the auto backend") from None
    return _instances[name]


__all__ = ["Backend", "BACKEND_NAMES", "check_backend_name", "cuda_status",
           "describe_compile_failure", "get_backend", "kernel_compile_problem",
           "resolve_backend_name"]
