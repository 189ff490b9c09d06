"""Which BLAS the CPU kernels call (dlcore.backend.blas): the rules of the choice, and the
products of each library held to NumPy's."""
import os
import subprocess
import sys

import numpy as np
import pytest

from dlcore.backend import blas

MKL_PATHS = blas.mkl_runtime_paths()
needs_mkl = pytest.mark.skipif(not MKL_PATHS, reason="the mkl package is not installed (the "
                               "test extras install it on x86-64 Linux and Windows)")


def test_dlcore_blas_is_auto_when_unset_and_any_other_value_is_one_clear_error():
    assert blas.requested_blas({}) == "auto"
    assert blas.requested_blas({"DLCORE_BLAS": " MKL "}) == "mkl"
    assert blas.requested_blas({"DLCORE_BLAS": "openblas"}) == "openblas"
    with pytest.raises(ValueError, match=r"\$DLCORE_BLAS is 'atlas': set it to one of auto, "
                                         r"mkl, openblas"):
        blas.requested_blas({"DLCORE_BLAS": "atlas"})


def test_the_cpu_vendor_is_read_from_cpuinfo_and_unknown_without_it(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\n")
    assert blas.cpu_vendor(str(cpuinfo)) == "AuthenticAMD"
    assert blas.cpu_vendor(str(tmp_path / "missing")) is None


def test_openblas_when_asked_for_and_on_a_cpu_that_is_not_intel_even_with_mkl_installed():
    chosen = blas.choose_blas("openblas", vendor="GenuineIntel")
    assert (chosen.name, chosen.reason) == ("OpenBLAS", "DLCORE_BLAS=openblas")
    chosen = blas.choose_blas("auto", vendor="AuthenticAMD")
    assert chosen.name == "OpenBLAS"
    assert chosen.reason == "auto: AuthenticAMD CPU (MKL is taken on Intel CPUs only)"


def test_an_intel_cpu_without_mkl_gets_openblas_and_the_reason_names_the_install():
    chosen = blas.choose_blas("auto", vendor="GenuineIntel", mkl_paths=[])
    assert chosen.name == "OpenBLAS"
    assert chosen.reason == ('auto: Intel CPU, but MKL is not installed '
                             '(pip install mkl)')


def test_asking_for_mkl_where_it_cannot_load_says_what_to_do(tmp_path):
    with pytest.raises(RuntimeError, match=r"DLCORE_BLAS=mkl but MKL is not installed "
                                           r"\(pip install mkl\); install it"):
        blas.choose_blas("mkl", mkl_paths=[])
    broken = tmp_path / "libmkl_rt.so.3"
    broken.write_bytes(b"not a shared library")
    with pytest.raises(RuntimeError, match="MKL could not be loaded .libmkl_rt.so.3: "):
        blas.choose_blas("mkl", mkl_paths=[str(broken)])
    # auto falls back instead of failing
    assert blas.choose_blas("auto", vendor="GenuineIntel",
                            mkl_paths=[str(broken)]).name == "OpenBLAS"


def test_an_mkl_already_loaded_is_found_in_the_process_maps(tmp_path):
    maps = tmp_path / "maps"
    maps.write_text(
        "7f00-7f01 r-xp 00000000 00:1f 42  /usr/lib/libc.so.6\n"
        "7f02-7f03 r-xp 00000000 00:1f 43  /opt/conda/lib/libmkl_rt.so.2\n"
        "7ffd-7ffe rw-p 00000000 00:00 0  [stack]\n")
    assert blas.loaded_mkl_runtime(str(maps)) == "/opt/conda/lib/libmkl_rt.so.2"
    maps.write_text("7f00-7f01 r-xp 00000000 00:1f 42  /usr/lib/libc.so.6\n")
    assert blas.loaded_mkl_runtime(str(maps)) is None
    assert blas.loaded_mkl_runtime(str(tmp_path / "missing")) is None


def _products(chosen, dtype):
    """Every transpose combination of a few shapes through ``chosen``'s ?gemm, against NumPy,
    with alpha and beta (the beta term read from the output)."""
    from dlcore.backend.cpu import serial_gemm
    function, integer_type = chosen.gemm[np.dtype(dtype)]
    rng = np.random.default_rng(0)
    # k = 0: out <- beta out (a data-parallel rank whose shard has no row); m = 0: nothing
    for m, n, k in ((32, 500, 784), (500, 500, 32), (7, 3, 5), (5, 4, 0), (0, 4, 3)):
        for trans_a in (False, True):
            for trans_b in (False, True):
                a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
                b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
                out = rng.standard_normal((m, n)).astype(dtype)
                expected = (0.5 * (a.T if trans_a else a).astype(np.float64)
                            @ (b.T if trans_b else b).astype(np.float64) - 2.0 * out)
                serial_gemm(blas.function_address(function), np.empty(0, integer_type), a, b,
                            out, trans_a, trans_b, 0.5, -2.0)
                tolerance = 1e-4 if dtype == np.float32 else 1e-11
                np.testing.assert_allclose(out, expected, rtol=tolerance,
                                           atol=tolerance * np.sqrt(max(k, 1)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_openblas_products_match_numpy(dtype):
    _products(blas.choose_blas("openblas"), dtype)


@needs_mkl
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mkl_products_match_numpy_with_64_bit_sizes_whatever_the_interface_layer(dtype):
    chosen = blas.choose_blas("mkl")
    assert (chosen.name, chosen.reason) == ("MKL", "DLCORE_BLAS=mkl")
    assert chosen.library_file.startswith("libmkl_rt.so")
    _products(chosen, dtype)
    # loaded now: found in the process, used as it is
    assert blas.loaded_mkl_runtime() is not None
    _products(blas.choose_blas("mkl"), dtype)


@needs_mkl
@pytest.mark.slow
def test_the_kernels_pass_the_doctors_self_test_on_mkl_and_on_openblas():
    """The fused kernels (the RBM step's split products and momentum step, the convolution's
    products) against the NumPy reference, once with each library, in a process of its own.
    The cpu's checks alone: the CUDA simulator this suite sets up would add its own (~7 s a
    run), which no BLAS takes part in."""
    for choice, library in (("mkl", "MKL"), ("openblas", "OpenBLAS")):
        run = subprocess.run([sys.executable, "-m", "dlcore", "doctor", "--backend", "cpu"],
                             capture_output=True, text=True, timeout=600,
                             env={**os.environ, "DLCORE_BLAS": choice, "DLCORE_BACKEND": "cpu"})
        assert run.returncode == 0, run.stdout + run.stderr
        chosen = [line for line in run.stdout.splitlines()
                  if "the one dlcore's kernels call" in line]
        assert len(chosen) == 1 and chosen[0].startswith(f"blas: {library} ")
        assert chosen[0].endswith(f": DLCORE_BLAS={choice})")
        assert "cpu: ok (5 checks against the reference" in run.stdout


_FIRST_PRODUCT_SPLIT = """
import numpy as np
from dlcore.backend import cpu
out = np.empty((8, 300), np.float32)
blas, integer_type = cpu.BLAS_GEMM[out.dtype]
cpu._parallel_gemm(np.ones((8, 256), np.float32), np.ones((256, 300), np.float32), out, False,
                   False, 1.0, 0.0, blas, np.empty(0, integer_type), 2)
print(int(np.all(out == 256)))
"""


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_first_call_multiplies_one_by_one_through_the_library(dtype):
    libraries = [blas.choose_blas("openblas")] + ([blas.choose_blas("mkl")] if MKL_PATHS else [])
    for chosen in libraries:
        function, integer_type = chosen.gemm[np.dtype(dtype)]
        blas.first_call(function, dtype, integer_type)   # raises unless 1 x 1 = 1


@needs_mkl
@pytest.mark.slow
def test_a_product_split_across_threads_as_the_first_call_of_a_process_is_right():
    """MKL sets itself up on its first call, and two threads making it at once raced (wrong
    numbers or "Parameter 1 was incorrect on entry to SGEMM" in 4 runs of 16): loading MKL now
    makes one call first. Eight fresh processes whose first product is split on two threads."""
    environment = {**os.environ, "DLCORE_BLAS": "mkl", "NUMBA_NUM_THREADS": "2"}
    for _ in range(8):
        run = subprocess.run([sys.executable, "-c", _FIRST_PRODUCT_SPLIT], env=environment,
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0 and run.stdout.split()[-1:] == ["1"], run.stdout + run.stderr


@pytest.mark.parametrize("name", ["cpu", "reference"])
def test_compute_finds_the_blas_libraries_once_not_at_every_fit(name, monkeypatch):
    # threadpoolctl walked every shared object of the process at each compute() (3.7 ms, a
    # fixed price on each fit and transform); the list is kept until a module is imported
    import threadpoolctl

    from dlcore.backend import get_backend
    made, original_init = [], threadpoolctl.ThreadpoolController.__init__

    def counted_init(self, *arguments, **options):
        made.append(self)
        original_init(self, *arguments, **options)

    monkeypatch.setattr(threadpoolctl.ThreadpoolController, "__init__", counted_init)
    backend = get_backend(name)
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        made.clear()
        for _ in range(3):
            with backend.compute(small_products=True):
                inside = [pool["num_threads"] for pool in threadpoolctl.threadpool_info()
                          if pool["user_api"] == "blas"
                          and pool.get("threading_layer") != "sequential"]
                assert inside and all(count == 1 for count in inside)
        found_inside = len(made) - 3    # threadpool_info above makes one each time
        assert found_inside <= 1
        assert all(pool["num_threads"] == 2 for pool in threadpoolctl.threadpool_info()
                   if pool["user_api"] == "blas"
                   and pool.get("threading_layer") != "sequential")
        monkeypatch.setitem(sys.modules, "a_module_that_may_load_a_blas", object())
        made.clear()
        with backend.compute(small_products=True):
            assert len(made) == 1
