"""``dlcore doctor``: the environment a bug report needs, and a self-test that tells a broken
kernel from a working one.

Oracles: the installed packages' metadata and this machine's own answers (the lines must name
them); the NumPy reference backend (the self-test's own oracle); and kernels broken on purpose
(a product off by a little, one flipped sample, a kernel that raises): each must turn its check,
and only its check, into FAIL with exit code 1."""
import importlib.metadata
import json
import sys
import threading
import time

import numpy as np
import pytest
from click.testing import CliRunner

import dlcore
from dlcore import doctor
from dlcore.backend.cpu import CPUBackend
from dlcore.backend.kernel_backend import KernelBackend
from dlcore.cli import main
from test_backend_threads import no_home_folder


@pytest.fixture
def no_gpu(monkeypatch):
    """A machine without a usable GPU, whatever this one has (the simulator included)."""
    import dlcore.backend
    monkeypatch.setattr(dlcore.backend, "cuda_status",
                        lambda: (False, "the NVIDIA CUDA driver was not found"))


def doctor_run(*arguments):
    return CliRunner().invoke(main, ["doctor", "--backend", "cpu", *arguments])


def test_doctor_names_versions_cpu_blas_gpu_cache_and_passes_every_cpu_check(no_gpu):
    result = doctor_run()
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    versions = next(line for line in lines if line.startswith("versions: "))
    assert f"dlcore {dlcore.__version__}" in versions
    assert f"numba {importlib.metadata.version('numba')}" in versions
    assert f"numpy {np.__version__}" in versions and "h5py " in versions
    cpu = next(line for line in lines if line.startswith("cpu: "))
    assert dlcore.bench.cpu_description()["isa"] in cpu and "Numba threads" in cpu
    assert f"waiting {dlcore.backend.threads.wait_policy()}" in cpu
    assert any(line.startswith("blas: ") and "the one dlcore's kernels call" in line
               for line in lines)
    assert ("gpu: none usable: the NVIDIA CUDA driver was not found; CuPy "
            in result.stdout)
    assert any(line.startswith("kernel cache: ") for line in lines)
    checks = [line for line in lines if line.startswith("  cpu ")]
    assert len(checks) == len(doctor.CHECKS) and all(" ok " in line for line in checks)
    assert lines[-1].startswith("cpu: ok (5 checks against the reference")


def test_a_product_off_by_a_little_fails_the_rbm_check_only(monkeypatch, no_gpu):
    gemm = CPUBackend.gemm

    def slightly_wrong(self, a, b, out, *args, **kwargs):
        gemm(self, a, b, out, *args, **kwargs)
        out *= np.float32(1.001)
    monkeypatch.setattr(CPUBackend, "gemm", slightly_wrong)
    result = doctor_run()
    assert result.exit_code == 1
    rbm_line = next(line for line in result.stdout.splitlines() if "RBM CD-1 step" in line)
    assert " FAIL " in rbm_line
    assert result.stdout.splitlines()[-1] == "cpu: FAIL (RBM CD-1 step)"


def test_one_flipped_sample_fails_the_sampling_stream_check(monkeypatch, no_gpu):
    sigmoid_bernoulli = KernelBackend.sigmoid_bernoulli

    def one_flipped(self, pre, bias, sample, *args):
        sigmoid_bernoulli(self, pre, bias, sample, *args)
        if sample is not None:
            sample[0, 0] = 1 - sample[0, 0]
    monkeypatch.setattr(KernelBackend, "sigmoid_bernoulli", one_flipped)
    checks = doctor.self_test(["cpu"])
    failed = {check.name: check.detail for check in checks if not check.ok}
    assert "sampling stream" in failed and failed["sampling stream"].startswith("1 of 91")


def test_a_kernel_that_raises_is_a_fail_naming_the_error(monkeypatch):
    def broken(self, *args, **kwargs):
        raise RuntimeError("kernel exploded")
    monkeypatch.setattr(CPUBackend, "gemm", broken)
    checks = doctor.self_test(["cpu"])
    rbm = next(check for check in checks if check.name == "RBM CD-1 step")
    assert not rbm.ok and rbm.detail == "RuntimeError: kernel exploded"


def test_doctor_json_holds_the_environment_and_every_check(no_gpu):
    result = doctor_run("--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["versions"]["dlcore"] == dlcore.__version__
    # the CuPy wheels installed, from their metadata, for the pip line the text report gives
    assert report["gpu"] == {"usable": False, "reason": "the NVIDIA CUDA driver was not found",
                             "cublas": report["gpu"]["cublas"],
                             "cupy_wheels": list(doctor.installed_cupy_wheels())}
    assert [check["name"] for check in report["self_test"]] == [n for n, _ in doctor.CHECKS]
    assert all(check["ok"] and check["backend"] == "cpu" for check in report["self_test"])
    assert report["cache"]["folder"].endswith(dlcore.__version__)


def test_a_backend_asked_for_that_cannot_run_here_is_named_with_why_not_failed_check_by_check(
        no_gpu):
    # `dlcore doctor --backend cuda` on a laptop printed four "cuda ... FAIL RuntimeError:
    # backend 'cuda' is not usable here" lines and "cuda: FAIL (RBM CD-1 step, ...)", blaming
    # kernels that never ran
    result = CliRunner().invoke(main, ["doctor", "--backend", "cuda"])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert not any("FAIL" in line for line in lines), result.stdout
    assert lines[lines.index("self-test against the NumPy reference:") + 1:] == [
        "cuda: not tested, not usable here: the NVIDIA CUDA driver was not found"]
    report = json.loads(CliRunner().invoke(main, ["doctor", "--backend", "cuda",
                                                  "--json"]).stdout)
    assert report["self_test"] == []
    assert report["not_tested"] == {"cuda": "the NVIDIA CUDA driver was not found"}


@pytest.mark.parametrize("isa, kernel, coretype, said", [
    ("AVX-512", "Haswell", "Haswell", True), ("AVX-512", "SkylakeX", "SkylakeX", False),
    ("AVX-512", "Haswell", None, False), ("AVX2", "Haswell", "Haswell", False)])
def test_doctor_says_when_openblas_coretype_holds_dlcores_blas_below_the_cpu(isa, kernel,
                                                                             coretype, said):
    from dlcore.doctor import openblas_held_below_the_cpu
    blas = [{"library": "OpenBLAS", "kernel": "SkylakeX", "used_by_dlcore": False},
            {"library": "OpenBLAS", "kernel": kernel, "used_by_dlcore": True}]
    line = openblas_held_below_the_cpu({"isa": isa}, blas, coretype)
    assert bool(line) == said
    if said:
        assert f"OPENBLAS_CORETYPE={coretype}" in line and "unset it" in line


def test_the_conv_check_compiles_the_direct_kernel_of_lenet5s_first_layer(monkeypatch):
    """The CPU compiles its direct convolution once per (channels, kernel height, kernel
    width), ~15-50 s on a first run of a busy machine: the check's own geometry (2 channels,
    3x3) was compiled for the doctor alone (78 s for the check, "in seconds" promised). It is
    now LeNet-5's first layer's, whose kernel a training compiles into the cache too."""
    from dlcore.layers import cpu_convolution
    from dlcore.models import lenet5

    class Recording(dict):
        asked = set()

        def __getitem__(self, geometry):
            self.asked.add(geometry)
            return super().__getitem__(geometry)

    monkeypatch.setattr(cpu_convolution, "_DIRECT_FORWARD",
                        Recording(cpu_convolution._DIRECT_FORWARD))
    ok, detail = doctor.check_conv("cpu")
    assert ok, detail
    first_conv = next(layer for layer in lenet5(seed=0).build().layers
                      if "kernel" in layer.weight_names)
    asked_geometries = {key[:3] for key in Recording.asked}
    assert asked_geometries == {tuple(first_conv.params["kernel"].shape[1:])} == {(1, 5, 5)}


def test_the_cache_line_does_not_promise_that_every_kernel_is_compiled(monkeypatch, no_gpu):
    # "CPU kernels compiled before" preceded 72 s of compiling the conv2d check's kernels:
    # the stamp says that some kernels of this dlcore were, each model compiles its own
    monkeypatch.setattr(doctor, "cache_description", lambda: {
        "folder": "/cache", "exists": True, "files": 3, "megabytes": 1.0,
        "cpu_kernels_compiled": True})
    line, = [line for line in doctor.environment_lines(doctor.environment())
             if line.startswith("kernel cache: ")]
    assert line == ("kernel cache: /cache (3 files, 1.0 MB; this dlcore's CPU kernels compiled "
                    "before, those of each kind of model on its first run; set DLCORE_CACHE to "
                    "move it)")


def test_the_cache_line_says_when_the_kernels_cannot_be_kept(monkeypatch, no_gpu, tmp_path):
    # an unwritable cache folder (a shared machine's read-only home, a container's --user
    # without a home): the kernels compile into a temporary folder in every run, where the
    # line said "empty: the first run compiles", and without a home the doctor itself ended
    # in "dlcore: error: Could not determine home directory."
    from dlcore.backend import cache
    monkeypatch.setenv("DLCORE_CACHE", str(tmp_path))
    monkeypatch.setattr(cache, "_unwritable_reported", [PermissionError(
        13, "Permission denied", "/nonexistent")])
    line, = [line for line in doctor.environment_lines(doctor.environment())
             if line.startswith("kernel cache: ")]
    assert line == (f"kernel cache: {tmp_path / dlcore.__version__} (cannot be written: "
                    "[Errno 13] Permission denied: '/nonexistent'; kernels compile again in "
                    "every run: set DLCORE_CACHE to a writable folder)")
    no_home_folder(monkeypatch)
    result = doctor_run()
    assert result.exit_code == 0, result.output
    line, = [line for line in result.stdout.splitlines() if line.startswith("kernel cache: ")]
    assert line.startswith("kernel cache: none (cannot be written: no home folder: HOME is "
                           "unset"), line


def test_the_self_test_tells_its_own_seconds_from_a_first_runs_compiling(monkeypatch):
    """A first run compiles the checks' kernels (the conv2d check's took 73 s of a busy
    2-core machine, its run 0.2 s): the lines said "(72.71 s)", read as a kernel 300 times
    too slow. The compiling is now told apart, and said to happen once."""
    from numba import njit

    def compiling_check(backend):
        njit(lambda value: value + 1)(1)   # a function of its own: compiled here, never cached
        return True, "fine"

    monkeypatch.setattr(doctor, "CHECKS", (("compiling", compiling_check),
                                           ("compiled", lambda backend: (True, "fine"))))
    # the note's threshold (a few hundredths of a second) is above this small compile on a
    # quiet machine: the test is of what is said once there was compiling
    monkeypatch.setattr(doctor, "COMPILE_NOTE_SECONDS", 1e-9)
    compiled_now, compiled_before = doctor.self_test(["cpu"])
    assert 0 < compiled_now.compile_seconds <= compiled_now.seconds
    assert compiled_before.compile_seconds == 0
    own = compiled_now.seconds - compiled_now.compile_seconds
    assert doctor.check_line(compiled_now).endswith(
        f"({own:.2f} s, after {compiled_now.compile_seconds:.1f} s compiling its kernels "
        "(first run only))")
    assert doctor.check_line(compiled_before).endswith(f"({compiled_before.seconds:.2f} s)")
    summary, = doctor.summary_lines([compiled_now, compiled_before])
    assert f"compiling their kernels took {compiled_now.compile_seconds:.1f} s more, first " \
        "run only" in summary


def test_the_self_test_does_not_promise_a_first_run_only_where_kernels_cannot_be_kept(
        monkeypatch):
    from dlcore.backend import cache
    monkeypatch.setattr(cache, "_unwritable_reported", [PermissionError(13, "denied")])
    compiled_now = doctor.Check("cpu", "conv2d", True, "fine", seconds=9.5, compile_seconds=9.0)
    assert doctor.check_line(compiled_now).endswith(
        "(0.50 s, after 9.0 s compiling its kernels (every run: the cache cannot be written))")
    summary, = doctor.summary_lines([compiled_now])
    assert summary.endswith("compiling their kernels took 9.0 s more, in every run while the "
                            "kernel cache cannot be written)"), summary


def test_the_conv_kernels_copy_their_padding_without_numpys_broadcasting_code():
    """A first `dlcore doctor` spent most of its time compiling the conv2d check's two
    kernels (25 s of a 35 s run on a busy 2-core machine): the padding copy and the input
    gradient's copy were slice assignments, which Numba compiles with its broadcasting
    errors' string formatting (366 kB of LLVM IR for the padding helper alone, 2 s), and
    the parameter gradients' sums a NumPy reduction compiled inside the kernel. The copies
    are element loops and the sums NumPy's, after the kernel: no string code is compiled."""
    from numba import njit

    from dlcore.layers import cpu_convolution
    fresh = njit(cache=False)(cpu_convolution._pad_into.py_func)
    padded = np.zeros((1, 6, 6), np.float32)
    fresh(np.ones((1, 2, 2), np.float32), padded, 2, 2)
    assert padded.sum() == 4 and padded[0, 2:4, 2:4].all()
    code = "".join(fresh.inspect_llvm().values())
    assert "unicode" not in code


def test_the_cache_line_counts_a_cache_that_other_processes_write_meanwhile(
        monkeypatch, tmp_path):
    # the doctor test failed now and then in a full run: the cache_description read the size
    # of each file it had listed, and another process's files went meanwhile (Numba's index
    # written aside and renamed, a first run after an edit removing the earlier kernels):
    # `dlcore doctor` ended in a FileNotFoundError traceback. Here a thread churns files
    # while the GIL switches threads as often as it can.
    monkeypatch.setenv("DLCORE_CACHE", str(tmp_path))
    kernels = tmp_path / dlcore.__version__ / "kernels"
    kernels.mkdir(parents=True)
    (kernels / "kept.nbi").write_bytes(b"0123456789")
    stop = threading.Event()

    def churn():
        while not stop.is_set():
            for index in range(20):
                path = kernels / f"index-{index}.nbi.tmp"
                path.write_bytes(b"x")
                path.unlink()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    churning = threading.Thread(target=churn)
    churning.start()
    try:
        started, seen = time.perf_counter(), []
        while time.perf_counter() - started < 0.4:
            seen.append(doctor.cache_description())
    finally:
        stop.set()
        churning.join()
        sys.setswitchinterval(interval)
    assert seen and all(report["exists"] and report["files"] >= 1 for report in seen)


def _installed(monkeypatch, versions):
    """importlib.metadata as it reads where only the distributions ``versions`` are installed."""
    import importlib.metadata

    def version(name):
        if name not in versions:
            raise importlib.metadata.PackageNotFoundError(name)
        return versions[name]
    monkeypatch.setattr(importlib.metadata, "version", version)


@pytest.mark.parametrize("gpu, installed, install", [
    ({"usable": True, "runtime": "13.0", "cublas": False,
      "cublas_problem": "CuPy is not installed"}, {}, 'pip install -U "cupy-cuda13x[ctk]"'),
    # a CuPy for CUDA 11 beside CUDA 12: a second wheel beside it writes the same cupy package
    ({"usable": True, "runtime": "12.9", "cublas": False, "cupy_wheels": ["cupy-cuda11x"],
      "cublas_problem": "ImportError: libcublas.so.11: cannot open shared object file"}, {},
     'pip uninstall cupy-cuda11x, then pip install -U "cupy-cuda12x[ctk]"'),
    # the right wheel, beside the CUDA of dlcore[cuda] from PyPI, which has no cuBLAS
    ({"usable": True, "runtime": "12.9", "cublas": False, "cupy_wheels": ["cupy-cuda12x"],
      "cublas_problem": "ImportError: libcublas.so.12: cannot open shared object file"}, {},
     'pip install -U "cupy-cuda12x[ctk]"'),
    # no GPU here: the CUDA numba-cuda was installed for
    ({"usable": False, "reason": "the NVIDIA CUDA driver was not found", "cublas": False},
     {"cuda-bindings": "13.0.2"}, 'pip install -U "cupy-cuda13x[ctk]"'),
    ({"usable": False, "reason": "numba-cuda is not installed", "cublas": False}, {},
     'pip install -U "cupy-cuda12x[ctk]"'),
    ({"usable": True, "runtime": "11.8", "cublas": False,
      "cublas_problem": "CuPy is not installed"}, {}, "pip install cupy-cuda11x")])
def test_doctor_names_the_cupy_wheel_to_install_where_cupy_gives_no_cublas(
        monkeypatch, gpu, installed, install):
    # the gpu line said "CuPy is not installed" (or a CuPy for another CUDA's error) and left
    # the user to find which of CuPy's wheels, one per CUDA major version, gives cuBLAS; then
    # it named one to install beside a CuPy for another CUDA (two CuPy distributions write one
    # cupy package), the same wheel again where it was there without the CUDA libraries, and
    # CUDA 12's where no GPU was found whatever CUDA numba-cuda was installed for
    _installed(monkeypatch, installed)
    env = {"versions": {}, "blas": [], "gpu": gpu,
           "cpu": {"cpu": "x", "isa": "AVX2", "flags": [], "cores": 2, "threads": 2},
           "cache": {"folder": "f", "exists": False}}
    line, = [line for line in doctor.environment_lines(env) if line.startswith("gpu:")]
    assert line.endswith(f"{install})")


def test_doctor_gives_the_version_of_a_cupy_for_any_cuda(monkeypatch):
    # only cupy-cuda12x's version was read: a CUDA 13 machine's CuPy showed as "installed"
    _installed(monkeypatch, {"numpy": "2.3.0", "cupy-cuda13x": "14.0.1"})
    versions = doctor.package_versions()
    assert versions["cupy"] == "14.0.1 (cupy-cuda13x)" and versions["numpy"] == "2.3.0"
    assert versions["torch"] is None
