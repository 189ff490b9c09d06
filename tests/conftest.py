"""Test-wide set-up.

The CUDA kernels are tested under Numba's CUDA simulator unless a real GPU is asked for:
``NUMBA_ENABLE_CUDASIM`` must be set before Numba is first imported, which is why it is set here,
at the top of the first file pytest loads. Run ``NUMBA_ENABLE_CUDASIM=0 pytest`` on a machine with
an NVIDIA GPU to test the real device instead.
"""
import os
import subprocess
import sys

os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")
# a subprocess that crashes (SIGSEGV, SIGABRT) prints its Python stack in the failure's stderr:
# without it, a crash seen once under load left nothing to find it by
os.environ.setdefault("PYTHONFAULTHANDLER", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def no_compiling_notice_in_the_tests_output():
    """The notice that kernels compile, said once per process at its first compile, is said by
    no test run in this process: whichever test compiled first in a cold kernel cache (a
    test file run alone on a fresh machine) saw it among the lines it asserts. The tests of
    the notice itself reset it, or run a command of their own."""
    from dlcore import backend
    backend._compiling_said.append(True)
    yield


def cuda_backend_available():
    """True when the cuda backend can run here (the simulator counts)."""
    from dlcore.backend import cuda_status
    return cuda_status()[0]


requires_cuda = pytest.mark.skipif(not cuda_backend_available(),
                                   reason="numba-cuda is not installed")


@pytest.fixture
def simulated_tiled_gemm(monkeypatch):
    """The CUDA backend's products run by its tiled kernel under the simulator too (they run
    as NumPy's on the host there otherwise: the kernel's barriers are slow simulated)."""
    from dlcore.backend import cuda as cuda_module
    monkeypatch.setattr(cuda_module, "SIMULATED_PRODUCTS_ON_HOST", False)


@pytest.fixture
def ipython_stand_in(monkeypatch):
    """IPython as a notebook's cell sees it, stood in for: ``(shell, shown)``, the shell whose
    ``execution_count`` numbers the running cell (set it to move to a later cell) and the list
    of the texts ``IPython.display.display`` was given."""
    import types
    shell = types.SimpleNamespace(execution_count=3)
    shown = []
    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: shell
    display = types.ModuleType("IPython.display")
    display.display = lambda data, raw=False: shown.append(data["text/plain"])
    ipython.display = display
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", display)
    return shell, shown


@pytest.fixture
def random_state():
    """A NumPy generator for test inputs (never for the code under test)."""
    return np.random.default_rng(12345)


def ptx_compile_report(script):
    """stdout of ``script`` run in a fresh interpreter (no simulator, no CPU kernel compiled
    first); skips the calling tests when numba-cuda's NVVM is missing (the script prints
    NO-NVVM)."""
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                               timeout=900)
    assert completed.returncode == 0, completed.stderr[-3000:]
    if "NO-NVVM" in completed.stdout:
        pytest.skip(f"numba-cuda's NVVM is not installed here: {completed.stdout.strip()}")
    return completed.stdout


def assert_wrote(result, folder, names):
    """A CLI run exited 0 and left every file in ``names`` non-empty in ``folder``."""
    assert result.exit_code == 0, result.output
    for name in names:
        assert (folder / name).stat().st_size > 0, name


def cpu_product(backend, a, b, out, trans_b=False):
    """out <- a op(b) as the cpu's fused kernels compute it, in separate operations: where
    ``backend.sums_inner_halves`` (a product along the dimension the weight step splits W:
    an RBM's hidden inputs, a Dense layer's forward pass), the sum of the products over the
    two halves of the inner dimension, each in the kernel's blocks of columns (one BLAS call
    per block, as the kernel makes them); else one ``backend.gemm``."""
    if not backend.sums_inner_halves(a, b, trans_b):
        backend.gemm(a, b, out, trans_b=trans_b)
        return
    from dlcore.backend.cpu import BLAS_GEMM, _half_product, half_column_block, product_parts
    blas, integer_type = BLAS_GEMM[out.dtype]
    middle, parts = -(-a.shape[1] // 2), product_parts()
    second = np.empty_like(out)
    for first, last, target in ((0, middle, out), (middle, a.shape[1], second)):
        for block in range(parts):  # the blocks past the last are empty
            start, stop = half_column_block(block, parts, out.shape[1])
            if stop > start:
                _half_product(a, b, target, trans_b, blas, np.empty(0, integer_type), first,
                              last, start, stop)
    out += second


def assert_same_on_any_number_of_threads(train):
    """``train()`` (a list of arrays: trained weights) run on one, two and three Numba threads
    (as many of those as this machine has) gives the same arrays bit for bit."""
    import numba
    results, threads = [], numba.get_num_threads()
    try:
        for count in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS),
                             min(3, numba.config.NUMBA_NUM_THREADS)}):
            numba.set_num_threads(count)
            results.append(train())
    finally:
        numba.set_num_threads(threads)
    assert len(results) >= 2 or numba.config.NUMBA_NUM_THREADS == 1
    for other in results[1:]:
        for first, second in zip(results[0], other, strict=True):
            np.testing.assert_array_equal(first, second)


def assert_fits_as_keras(model, in_keras, x, targets, *, epochs, batch_size, loss_tolerance,
                         weight_tolerance):
    """``model`` (dlcore's, compiled) given the weights of ``in_keras`` (Keras's, compiled),
    then both fit on ``x`` and ``targets`` alike, unshuffled: dlcore reports Keras's losses
    and ends with its weights, within ``loss_tolerance`` and ``weight_tolerance``
    (``np.testing.assert_allclose``'s rtol and atol)."""
    model.build(x.shape[1:])
    model.set_weights(in_keras.get_weights())
    theirs = in_keras.fit(x, targets, epochs=epochs, batch_size=batch_size, shuffle=False,
                          verbose=0)
    mine = model.fit(x, targets, epochs=epochs, batch_size=batch_size, shuffle=False,
                     verbose=0)
    np.testing.assert_allclose(mine.history["loss"], theirs.history["loss"], **loss_tolerance)
    for got, expected in zip(model.get_weights(), in_keras.get_weights(), strict=True):
        np.testing.assert_allclose(got, expected, **weight_tolerance)
