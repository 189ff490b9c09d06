"""The CUDA backend's per-launch plumbing: what it caches must be what numba-cuda would do.

On a real GPU the backend launches a kernel straight through the compiled kernel numba-cuda chose
for a :func:`~dlcore.backend.cuda.launch_key`; the key must tell apart every pair of arguments
Numba types differently, or a kernel would read its arguments with the wrong layout.
"""
import itertools

import numpy as np
import pytest
from numba import typeof

from conftest import requires_cuda
from dlcore.batches import leading_rows


def _arguments():
    matrix = np.zeros((2, 3), np.float32)
    read_only = np.zeros((2, 3), np.float32)
    read_only.flags.writeable = False
    return [matrix, np.zeros((4, 5), np.float32), np.zeros((2, 3), np.float64),
            np.zeros(3, np.float32), np.asfortranarray(np.zeros((2, 3), np.float32)),
            np.zeros((4, 6), np.float32)[:, ::2], np.broadcast_to(np.zeros(3, np.float32), (2, 3)),
            read_only, np.zeros((2, 3), np.int64), 1.0, np.float32(1.0), np.float64(2.0), 3,
            -7, 2 ** 63, True, np.int64(3), np.int32(3), None, (matrix, 1.0), (matrix, 2.5),
            (matrix, np.float32(1.0))]


@requires_cuda
def test_arguments_numba_types_differently_never_share_a_launch_key():
    # a finer key (a Python float and a NumPy float64) only costs one more cache entry
    from dlcore.backend.cuda import launch_key
    values = _arguments()
    distinct_keys = {launch_key((value,)) for value in values}
    assert len(distinct_keys) >= len({typeof(value) for value in values})
    for first, second in itertools.combinations(values, 2):
        if launch_key((first,)) == launch_key((second,)):
            assert typeof(first) == typeof(second), (first, second)
    assert launch_key((values[0],)) == launch_key((values[1],))  # shapes do not matter


@requires_cuda
def test_batch_indices_reuse_one_device_buffer_per_length_and_hold_the_new_values():
    from dlcore.backend import get_backend
    backend = get_backend("cuda")
    first = backend._indices(np.array([4, 1, 3]))
    second = backend._indices(np.array([0, 2, 5]))
    assert second is first  # no allocation per batch
    np.testing.assert_array_equal(backend.to_numpy(second), [0, 2, 5])
    shorter = backend._indices(np.array([7, 6]))
    np.testing.assert_array_equal(backend.to_numpy(shorter), [7, 6])
    np.testing.assert_array_equal(backend.to_numpy(backend._indices(np.arange(3))), [0, 1, 2])


@pytest.mark.parametrize("stop, start, expected", [(5, 0, "whole"), (3, 0, [0, 1, 2]),
                                                   (5, 2, [2, 3, 4])])
def test_leading_rows_slices_only_when_the_view_is_not_the_whole_buffer(stop, start, expected):
    buffer = np.arange(5)
    view = leading_rows(buffer, stop, start)
    if expected == "whole":
        assert view is buffer
    else:
        np.testing.assert_array_equal(view, expected)


@requires_cuda
def test_a_launch_over_more_rows_than_a_grid_holds_stays_within_cudas_grid_limit(monkeypatch):
    # a transform of 600,000 rows asked a real GPU for gridDim.y = 75,000 > 65,535 blocks
    # (CUDA_ERROR_INVALID_VALUE); the simulator does not check the limit, so the grid is read
    from dlcore.backend import get_backend
    from dlcore.backend.cuda import CUDABackend
    grids = []
    monkeypatch.setattr(CUDABackend, "_launch",
                        lambda self, kernel, arguments, blocks, threads: grids.append(blocks))
    backend = get_backend("cuda")
    backend.launch_rows(lambda *args: None, 600_000, 196, np.zeros(0, np.float32))
    assert grids and grids[0][1] <= 65535


@requires_cuda
@pytest.mark.parametrize("trans_a", [False, True])
def test_kernels_stride_over_rows_past_the_grids_last_block(monkeypatch, random_state, trans_a,
                                                            simulated_tiled_gemm):
    # a grid of two blocks of rows must still reach every row: the rows kernel and the tiled GEMM
    from dlcore.backend import cuda as cuda_module
    from dlcore.backend import get_backend
    monkeypatch.setattr(cuda_module, "MAX_GRID_Y", 2)
    backend = get_backend("cuda")
    pre = random_state.standard_normal((45, 6)).astype(np.float32)
    bias = random_state.standard_normal(6).astype(np.float32)
    probability = backend.asarray(pre)
    backend.sigmoid_bernoulli(probability, backend.asarray(bias), None, 1, 16, 0)
    np.testing.assert_allclose(backend.to_numpy(probability), 1 / (1 + np.exp(-(pre + bias))),
                               rtol=1e-5)
    # 40 rows of the product: three tiles of sixteen rows on a grid of two
    a = random_state.standard_normal((7, 40) if trans_a else (40, 7)).astype(np.float32)
    b = random_state.standard_normal((7, 5)).astype(np.float32)
    out = backend.zeros((40, 5))
    backend.gemm(backend.asarray(a), backend.asarray(b), out, trans_a=trans_a)
    np.testing.assert_allclose(backend.to_numpy(out), (a.T if trans_a else a) @ b, rtol=1e-5,
                               atol=1e-5)


@pytest.fixture
def cupy_for_another_cuda(monkeypatch):
    """A CuPy that imports but fails at its first cuBLAS call (built for another CUDA), on
    what the CUDA backend takes for a real GPU."""
    import importlib.machinery
    import sys
    import types

    from dlcore.backend import cuda as cuda_module

    def no_cublas():
        raise RuntimeError("CUDA driver version is insufficient for CUDA runtime version")
    cupy = types.ModuleType("cupy")
    cupy.__spec__ = importlib.machinery.ModuleSpec("cupy", None)
    cupy.cuda = types.SimpleNamespace(device=types.SimpleNamespace(get_cublas_handle=no_cublas))
    cupy.cublas = types.ModuleType("cupy.cublas")
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    monkeypatch.setitem(sys.modules, "cupy.cublas", cupy.cublas)
    monkeypatch.setattr(cuda_module, "SIMULATED", False)
    monkeypatch.setattr(cuda_module, "SIMULATED_PRODUCTS_ON_HOST", False)


@requires_cuda
def test_a_cupy_for_another_cuda_leaves_the_tiled_gemm(cupy_for_another_cuda, random_state):
    # such a CuPy imports, then failed at the first product of a fit
    from dlcore.backend.cuda import CUDABackend, cupy_with_cublas
    cupy, problem = cupy_with_cublas()
    assert cupy is None and "driver version is insufficient" in problem
    backend = CUDABackend()
    assert backend.gemm_engine == "tiled Numba kernel"
    a, b = random_state.random((3, 4), np.float32), random_state.random((4, 2), np.float32)
    out = backend.zeros((3, 2))
    backend.gemm(backend.asarray(a), backend.asarray(b), out)
    np.testing.assert_allclose(backend.to_numpy(out), a @ b, rtol=1e-5)


@requires_cuda
def test_doctor_on_a_gpu_says_a_cupy_for_another_cuda_is_no_cublas(monkeypatch,
                                                                   cupy_for_another_cuda):
    from numba import config

    import dlcore.backend
    from dlcore import doctor
    monkeypatch.setattr(dlcore.backend, "cuda_status", lambda: (True, "a GPU"))
    monkeypatch.setattr(config, "ENABLE_CUDASIM", 0)  # the device's own details: unread here
    gpu = doctor.gpu_description()
    assert gpu["cublas"] is False and "driver version is insufficient" in gpu["cublas_problem"]
    env = {"versions": {}, "blas": [], "gpu": gpu,
           "cpu": {"cpu": "x", "isa": "AVX2", "flags": [], "cores": 2, "threads": 2},
           "cache": {"folder": "f", "exists": False}}
    line = next(line for line in doctor.environment_lines(env) if line.startswith("gpu:"))
    assert "CuPy (cuBLAS) no: tiled GEMM (RuntimeError: CUDA driver version" in line
