"""Choosing a backend: names, $DLCORE_BACKEND, auto's fallback and the missing-GPU error."""
import os
import subprocess
import sys
import textwrap

import pytest

import dlcore.backend as backend_module
from dlcore.backend import get_backend, resolve_backend_name


@pytest.fixture
def fresh_selection(monkeypatch):
    """Forget earlier fallback messages and cached backends; no $DLCORE_BACKEND."""
    monkeypatch.setattr(backend_module, "_fallback_reported", False)
    monkeypatch.setattr(backend_module, "_instances", {})
    monkeypatch.delenv("DLCORE_BACKEND", raising=False)
    backend_module._auto_note.clear()   # one list, which the cpu backend holds too
    yield
    backend_module._auto_note.clear()


def auto_note():
    """Resolve ``auto`` and say its note, as the cpu's first kernel does."""
    name = resolve_backend_name("auto")
    backend_module.say_auto_note()
    return name


@pytest.fixture
def numba_cuda_installed(monkeypatch):
    """numba-cuda said to be installed (importlib's find_spec finds it), imported first:
    numba-cuda's redirect of ``numba.cuda`` asks find_spec too, and a test may be the first
    in its process to import it now that auto leaves it unimported without a driver."""
    import importlib.util

    import numba.cuda  # noqa: F401
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name: object() if name == "numba_cuda" else real_find_spec(name))


@pytest.mark.parametrize("name", ["cpu", "CPU", "reference"])
def test_explicit_names_resolve_to_themselves(name, fresh_selection):
    assert resolve_backend_name(name) == name.lower()
    assert get_backend(name).name == name.lower()


@pytest.mark.parametrize("name", ["gpu", "", None, 3])
def test_unknown_backend_names_are_refused_with_the_choices(name, fresh_selection):
    with pytest.raises(ValueError, match="auto, cpu, cuda, reference"):
        get_backend(name)


def test_dlcore_backend_environment_variable_decides_auto(monkeypatch, fresh_selection):
    monkeypatch.setenv("DLCORE_BACKEND", "reference")
    assert resolve_backend_name("auto") == "reference"
    assert resolve_backend_name("cpu") == "cpu"  # an explicit choice wins


def test_bad_dlcore_backend_environment_variable_is_named(monkeypatch, fresh_selection):
    monkeypatch.setenv("DLCORE_BACKEND", "tpu")
    with pytest.raises(ValueError, match=r"\$DLCORE_BACKEND"):
        resolve_backend_name("auto")


def test_auto_falls_back_to_cpu_and_says_so_once(monkeypatch, capsys, fresh_selection):
    monkeypatch.setattr(backend_module, "cuda_status", lambda: (False, "no driver here"))
    assert auto_note() == "cpu"
    assert auto_note() == "cpu"
    message = capsys.readouterr().err
    assert message.count("no driver here") == 1 and "CPU" in message


def test_autos_note_waits_for_the_first_stretch_of_work_on_the_cpu(monkeypatch, capsys,
                                                                   fresh_selection):
    # it was printed as auto was resolved: by every command that loaded a model, `dlcore
    # convert` too, and before the error line of a command refusing its input
    monkeypatch.setattr(backend_module, "cuda_status",
                        lambda: (False, backend_module.NO_DRIVER_REASON))
    cpu = get_backend("auto")
    assert cpu.name == "cpu" and capsys.readouterr().err == ""
    with cpu.compute():
        pass
    with cpu.compute():
        pass
    assert capsys.readouterr().err == \
        "dlcore: note: running on the CPU: no NVIDIA GPU driver was found.\n"


def test_the_cpus_first_kernel_says_autos_note(monkeypatch, capsys, fresh_selection):
    import numpy as np
    monkeypatch.setattr(backend_module, "cuda_status", lambda: (False, "no driver here"))
    cpu = get_backend("auto")
    values = np.zeros((2, 3), dtype=np.float32)
    cpu.sigmoid_bernoulli(values, np.zeros(3, dtype=np.float32), None, 0, 0, 0)
    assert capsys.readouterr().err == "dlcore: note: running on the CPU: no driver here.\n"


def notice_of_auto(_=None):
    """What resolving ``auto`` prints on stderr, with no GPU, here or in a worker."""
    import contextlib
    import io
    backend_module.cuda_status = lambda: (False, "no driver here")
    backend_module._fallback_reported = False
    printed = io.StringIO()
    with contextlib.redirect_stderr(printed):
        assert auto_note() == "cpu"
    return printed.getvalue()


def test_the_workers_of_joblib_leave_autos_notice_to_their_program(monkeypatch,
                                                                   fresh_selection):
    # GridSearchCV(n_jobs=2)'s workers each printed it, through the same terminal
    joblib = pytest.importorskip("joblib")
    monkeypatch.setattr(backend_module, "cuda_status", backend_module.cuda_status)
    assert "running on the CPU: no driver here" in notice_of_auto()
    assert joblib.Parallel(n_jobs=2)(joblib.delayed(notice_of_auto)(i) for i in range(2)) \
        == ["", ""]


@pytest.mark.parametrize("variable", ["PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK"])
def test_the_ranks_of_an_mpi_job_leave_autos_notice_to_rank_0(
        variable, monkeypatch, fresh_selection):
    # mpiexec -n 64 python -m your_script printed it 64 times, once a rank
    monkeypatch.setattr(backend_module, "cuda_status", backend_module.cuda_status)
    for name in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, "0")
    assert "running on the CPU: no driver here" in notice_of_auto()
    monkeypatch.setenv(variable, "3")
    assert notice_of_auto() == ""


def test_the_ranks_of_an_mpi_job_leave_the_compiling_notice_to_rank_0(
        monkeypatch, fresh_selection):
    from numba.core import event

    from dlcore.backend import cache
    monkeypatch.setattr(cache, "kernels_compiled_before", lambda: False)
    monkeypatch.setattr(cache, "remember_compiling", lambda: None)
    monkeypatch.setattr(backend_module, "_compiling_listener", [])
    monkeypatch.setenv("PMI_RANK", "1")
    get_backend("cpu")
    assert backend_module._compiling_listener == []   # a rank > 0 never says it
    monkeypatch.setattr(backend_module, "_instances", {})
    monkeypatch.setenv("PMI_RANK", "0")
    get_backend("cpu")
    assert len(backend_module._compiling_listener) == 1
    event.unregister("numba:compile", backend_module._compiling_listener[0])


def test_auto_never_picks_the_cuda_simulator(fresh_selection, capsys):
    from numba import config
    if not config.ENABLE_CUDASIM:
        pytest.skip("this test is about the simulator; a real GPU may be picked here")
    assert auto_note() == "cpu"
    assert "simulator" in capsys.readouterr().err


def test_asking_for_cuda_without_a_gpu_says_what_is_missing(monkeypatch, fresh_selection):
    reason = "the NVIDIA CUDA driver was not found or failed to start (libcuda.so)"
    monkeypatch.setattr(backend_module, "cuda_status", lambda: (False, reason))
    with pytest.raises(RuntimeError, match="driver was not found"):
        get_backend("cuda")


def test_cuda_status_names_a_missing_numba_cuda(monkeypatch):
    import importlib.util
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name: None if name == "numba_cuda" else real_find_spec(name))
    monkeypatch.setattr(backend_module, "nvidia_driver_present", lambda: True)
    usable, reason = backend_module.cuda_status()
    assert not usable and "numba-cuda" in reason and "pip install" in reason


_real_exists = os.path.exists


def test_a_machine_without_an_nvidia_driver_is_not_told_to_install_numba_cuda(monkeypatch):
    # a fresh `pip install .` on a laptop said "numba-cuda is not installed (pip install
    # 'dlcore[cuda]')" at every command: installing it would not have given it a GPU
    import ctypes.util
    import importlib.util
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name: None if name == "numba_cuda" else real_find_spec(name))
    monkeypatch.setattr(os.path, "exists",
                        lambda path: path != "/proc/driver/nvidia/version" and _real_exists(path))
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    usable, reason = backend_module.cuda_status()
    assert not usable and reason.startswith("no NVIDIA GPU driver was found")
    assert "numba-cuda" not in reason


def test_auto_on_a_machine_without_an_nvidia_driver_does_not_import_numba_cuda():
    """Importing numba.cuda (with its ml_dtypes) took a second of every command on a laptop
    without a GPU, a third of `homework task1`'s warm run: auto decides without it there."""
    script = textwrap.dedent("""
        import ctypes.util, os, sys
        real_exists = os.path.exists
        os.path.exists = lambda path: (path != "/proc/driver/nvidia/version"
                                       and real_exists(path))
        ctypes.util.find_library = lambda name: None
        from dlcore.backend import cuda_status, resolve_backend_name
        print(resolve_backend_name("auto"), cuda_status()[1].startswith("no NVIDIA GPU driver"),
              "numba.cuda" in sys.modules)
    """)
    environment = {name: value for name, value in os.environ.items()
                   if name not in ("DLCORE_BACKEND", "NUMBA_CUDA_DRIVER")}
    environment["NUMBA_ENABLE_CUDASIM"] = "0"
    answer = subprocess.run([sys.executable, "-c", script], env=environment, check=True,
                            capture_output=True, text=True, timeout=120)
    assert answer.stdout.split() == ["cpu", "True", "False"]


def test_numba_cudas_driver_error_is_told_in_a_students_words(
        monkeypatch, capsys, fresh_selection, numba_cuda_installed):
    """numba-cuda installed on a machine without NVIDIA's driver (a laptop, this project's
    virtualenv): auto's line quoted Numba, "the NVIDIA CUDA driver was not found or failed to
    start (Error at driver init CUDA driver library cannot be found)"."""
    import ctypes.util

    from numba import config
    monkeypatch.setattr(config, "ENABLE_CUDASIM", 0)

    def no_driver():   # numba-cuda's CudaSupportError, as it reads
        raise RuntimeError("Error at driver init: \nCUDA driver library cannot be found.")
    monkeypatch.setattr(backend_module, "_cuda_device_count", no_driver, raising=False)
    monkeypatch.setattr(backend_module, "_cuda_start_problem", [])
    monkeypatch.setattr(os.path, "exists",
                        lambda path: path != "/proc/driver/nvidia/version" and _real_exists(path))
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    assert auto_note() == "cpu"
    line = capsys.readouterr().err
    assert line == "dlcore: note: running on the CPU: no NVIDIA GPU driver was found.\n"


def _blas_threads():
    """The thread counts of the BLAS libraries that can run more than one (not the MKL that
    dlcore's cpu kernels load with its sequential layer: dlcore.backend.blas)."""
    from threadpoolctl import threadpool_info
    return [pool["num_threads"] for pool in threadpool_info()
            if pool["user_api"] == "blas" and pool.get("threading_layer") != "sequential"]


def test_the_reference_runs_small_products_on_one_blas_thread_and_large_ones_on_all():
    from threadpoolctl import threadpool_limits
    backend = get_backend("reference")
    with threadpool_limits(limits=2, user_api="blas"):
        with backend.compute():
            assert _blas_threads() and all(n == 2 for n in _blas_threads())
        with backend.compute(small_products=True):
            assert _blas_threads() and all(n == 1 for n in _blas_threads())


def test_a_gpu_whose_kernels_cannot_compile_is_not_usable_and_the_reason_names_the_fix():
    def numpy_too_new():
        raise AttributeError("module 'numpy' has no attribute 'row_stack'")

    reason = backend_module.kernel_compile_problem(numpy_too_new)
    assert reason.startswith("numba-cuda") and "row_stack" in reason
    assert 'pip install "numpy<' in reason and "\n" not in reason

    def nvvm_missing():
        raise RuntimeError("libNVVM cannot be found. Do `conda install cudatoolkit`:\nlibnvvm.so")

    reason = backend_module.kernel_compile_problem(nvvm_missing)
    assert "NVVM" in reason and "CUDA_HOME" in reason and "\n" not in reason
    assert backend_module.kernel_compile_problem(lambda: None) is None


@pytest.fixture
def gpu_that_refuses_a_context(monkeypatch, fresh_selection):
    """A GPU that passes the check (its probe compiles without a context) but refuses this
    process a context as the backend starts, as one held by another process in
    exclusive-process mode does."""
    import numba
    from numba import cuda
    from numba.cuda.cudadrv import driver

    import dlcore.backend.cuda as cuda_backend

    def refused():
        raise driver.CudaAPIError("Call to cuDevicePrimaryCtxRetain results in "
                                  "CUDA_ERROR_DEVICE_UNAVAILABLE")
    monkeypatch.setattr(numba.config, "ENABLE_CUDASIM", 0)   # the tests' simulator off
    monkeypatch.setattr(backend_module, "nvidia_driver_present", lambda: True)
    monkeypatch.setattr(cuda, "is_available", lambda: True)
    monkeypatch.setattr(backend_module, "_small_kernel_problem", lambda: None)
    monkeypatch.setattr(backend_module, "_cuda_start_problem", [], raising=False)
    monkeypatch.setattr(cuda_backend, "CUDABackend", refused)


def test_asking_for_a_gpu_that_refuses_a_context_says_so_in_one_line(
        gpu_that_refuses_a_context):
    assert backend_module.cuda_status()[0]
    with pytest.raises(RuntimeError) as raised:
        get_backend("cuda")
    message = str(raised.value)
    assert "backend 'cuda' is not usable here: CUDA device 0" in message
    assert "CUDA_ERROR_DEVICE_UNAVAILABLE" in message and "exclusive-process" in message
    assert message.endswith("choose the cpu or the auto backend") and "\n" not in message
    # the check says so from now on: no second try at the device
    assert not backend_module.cuda_status()[0]


def test_auto_takes_the_cpu_when_the_gpu_refuses_a_context(gpu_that_refuses_a_context, capsys):
    assert resolve_backend_name("auto") == "cuda"
    assert get_backend("auto").name == "cpu"
    backend_module.say_auto_note()
    notice = capsys.readouterr().err
    assert "dlcore: note: running on the CPU: CUDA device 0" in notice
    assert "CUDA_ERROR_DEVICE_UNAVAILABLE" in notice and notice.count("\n") == 1
    assert resolve_backend_name("auto") == "cpu"


def test_a_kernel_driver_without_its_cuda_library_is_not_called_a_driver_found(
        monkeypatch, capsys, fresh_selection, numba_cuda_installed):
    """A container started without the host's GPUs sees NVIDIA's kernel driver
    (/proc/driver/nvidia) but no libcuda: auto's line read "the NVIDIA CUDA driver was found
    but failed to start (Error at driver init CUDA driver library cannot be found)"."""
    import ctypes
    import ctypes.util

    from numba import config
    real_cdll = ctypes.CDLL
    monkeypatch.setattr(config, "ENABLE_CUDASIM", 0)

    def no_library():   # numba-cuda's CudaSupportError, as it reads
        raise RuntimeError("Error at driver init: \nCUDA driver library cannot be found.")

    def loader(name, *arguments, **options):
        if name and "cuda" in str(name):
            raise OSError(f"{name}: cannot open shared object file")
        return real_cdll(name, *arguments, **options)
    monkeypatch.setattr(backend_module, "_cuda_device_count", no_library)
    monkeypatch.setattr(backend_module, "_cuda_start_problem", [])
    monkeypatch.setattr(os.path, "exists",
                        lambda path: path == "/proc/driver/nvidia/version" or _real_exists(path))
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    monkeypatch.setattr(ctypes, "CDLL", loader)
    monkeypatch.delenv("NUMBA_CUDA_DRIVER", raising=False)
    assert auto_note() == "cpu"
    line = capsys.readouterr().err
    assert line.startswith("dlcore: note: running on the CPU: NVIDIA's kernel driver is "
                           "loaded but its CUDA library (libcuda.so) was not found")
    assert "was found but failed" not in line and "docker run --gpus all" in line
    assert line.count("\n") == 1


@pytest.mark.parametrize("visible", ["", "-1"])
def test_cuda_visible_devices_hiding_every_gpu_is_named_not_called_a_driver_failure(
        monkeypatch, capsys, fresh_selection, visible, numba_cuda_installed):
    """CUDA_VISIBLE_DEVICES="" (or -1, which a GPU-less job sets) makes the driver's cuInit
    fail with CUDA_ERROR_NO_DEVICE, not count 0 devices: auto's line read "the NVIDIA CUDA
    driver was found but failed to start (Error at driver init Call to cuInit results in
    CUDA_ERROR_NO_DEVICE (100))", the variable unnamed."""

    from numba import config
    monkeypatch.setattr(config, "ENABLE_CUDASIM", 0)

    def no_device():   # numba-cuda's CudaSupportError, as it reads
        raise RuntimeError("Error at driver init: Call to cuInit results in "
                           "CUDA_ERROR_NO_DEVICE (100)")
    monkeypatch.setattr(backend_module, "_cuda_device_count", no_device)
    monkeypatch.setattr(backend_module, "_cuda_start_problem", [])
    monkeypatch.setattr(backend_module, "nvidia_driver_present", lambda: True)
    monkeypatch.setattr(backend_module, "_cuda_library_loads", lambda: True)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert auto_note() == "cpu"
    line = capsys.readouterr().err
    assert line.startswith("dlcore: note: running on the CPU: the NVIDIA driver is present "
                           f"but no CUDA device is visible: CUDA_VISIBLE_DEVICES='{visible}'")
    assert "failed to start" not in line and line.count("\n") == 1
