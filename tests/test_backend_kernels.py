"""Every kernel operation against its oracle, the NumPy reference backend, on random inputs.

Shapes are odd on purpose (widths that are not multiples of four, a single row) and small, so
that the CUDA simulator stays quick."""
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import requires_cuda
from dlcore.backend import get_backend

KERNEL_BACKENDS = ["cpu", pytest.param("cuda", marks=requires_cuda)]
SHAPES = [(1, 1), (3, 5), (7, 13), (4, 16)]


def run(backend_name, operation, *arrays, **scalars):
    """Apply ``operation`` on a backend to copies of the arrays; return them as NumPy."""
    backend = get_backend(backend_name)
    on_backend = [None if a is None else backend.asarray(np.array(a)) for a in arrays]
    with backend.compute():
        getattr(backend, operation)(*on_backend, **scalars)
    return [None if a is None else backend.to_numpy(a) for a in on_backend]


def both(operation, backend_name, *arrays, **scalars):
    return run("reference", operation, *arrays, **scalars), run(backend_name, operation, *arrays,
                                                                **scalars)


@pytest.mark.parametrize("backend_name", KERNEL_BACKENDS)
@pytest.mark.parametrize("shape", SHAPES)
def test_sigmoid_bernoulli_matches_reference(backend_name, shape, random_state):
    pre = random_state.normal(0, 3, shape).astype(np.float32)
    bias = random_state.normal(0, 1, shape[1]).astype(np.float32)
    sample = np.zeros(shape, np.float32)
    expected, got = both("sigmoid_bernoulli", backend_name, pre, bias, sample,
                         seed=11, stream=16, step=4)
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got[2], expected[2])


@pytest.mark.parametrize("backend_name", KERNEL_BACKENDS)
def test_same_probabilities_give_identical_bernoulli_samples_on_every_backend(backend_name):
    # pre-activations whose sigmoid is exact in float32 (0 -> 1/2) remove any rounding doubt
    pre = np.zeros((6, 11), np.float32)
    bias = np.zeros(11, np.float32)
    expected, got = both("sigmoid_bernoulli", backend_name, pre, bias, np.zeros_like(pre),
                         seed=2 ** 33 + 1, stream=17, step=123)
    np.testing.assert_array_equal(got[2], expected[2])
    assert 0.2 < expected[2].mean() < 0.8


# The simulator evaluates exp in Python floats; casting exp(88+) to float32 warns, harmlessly.
@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
@pytest.mark.parametrize("backend_name", KERNEL_BACKENDS)
def test_sigmoid_without_sampling_matches_reference(backend_name, random_state):
    pre = random_state.normal(0, 50, (5, 9)).astype(np.float32)  # saturates both ways
    bias = random_state.normal(0, 1, 9).astype(np.float32)
    expected, got = both("sigmoid_bernoulli", backend_name, pre, bias, None,
                         seed=0, stream=0, step=0)
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-5, atol=1e-7)
    assert np.isfinite(got[0]).all()


@pytest.mark.parametrize("backend_name", KERNEL_BACKENDS)
def test_gaussian_sample_matches_reference(backend_name, random_state):
    top_down = random_state.normal(size=(4, 7)).astype(np.float32)
    bias = random_state.normal(size=7).astype(np.float32)
    sigma = random_state.uniform(0.5, 2, 7).astype(np.float32)
    expected, got = both("gaussian_sample", backend_name, top_down, bias, sigma,
                         np.zeros((4, 7), np.float32), seed=5, stream=17, step=2)
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[3], expected[3], rtol=1e-4, atol=1e-5)


def test_gaussian_samples_have_the_requested_mean_and_spread():
    backend = get_backend("reference")
    mean = np.zeros((2000, 3), np.float32)
    sample = np.zeros_like(mean)
    backend.gaussian_sample(mean, np.array([1, -2, 0], np.float32),
                            np.array([1, 0.5, 2], np.float32), sample, 9, 17, 0)
    np.testing.assert_allclose(sample.mean(axis=0), [1, -2, 0], atol=0.1)
    np.testing.assert_allclose(sample.std(axis=0), [1, 0.5, 2], rtol=0.06)


@pytest.mark.parametrize("backend_name", KERNEL_BACKENDS)
def test_gather_rows_matches_reference(backend_name, random_state):
    source = random_state.random((10, 6)).astype(np.float32)
    indices = np.array([9, 0, 3, 3])
    backend = get_backend(backend_name)
    out = backend.zeros((4, 6))
    backend.gather_rows(backend.asarray(source), indices, out)
    np.testing.assert_array_equal(backend.to_numpy(out), source[indices])


@pytest.mark.parametrize("backend_name", KERNEL_BACKENDS)
def test_momentum_step_matches_reference(backend_name, random_state):
    parameter = random_state.normal(size=(9, 5)).astype(np.float32)
    velocity = random_state.normal(size=(9, 5)).astype(np.float32)
    expected, got = both("momentum_step", backend_name, parameter, velocity, decay=0.01)
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("backend_name", KERNEL_BACKENDS)
def test_bias_step_matches_reference(backend_name, random_state):
    bias, velocity = (random_state.normal(size=7).astype(np.float32) for _ in range(2))
    positive, negative = (random_state.random((5, 7)).astype(np.float32) for _ in range(2))
    expected, got = both("bias_step", backend_name, bias, velocity, positive, negative,
                         learning_rate=0.1, momentum=0.9)
    for e, g in zip(expected[:2], got[:2]):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend_name", KERNEL_BACKENDS)
def test_sparsity_step_matches_reference(backend_name, random_state):
    probability = random_state.random((6, 5)).astype(np.float32)
    running_mean = random_state.random(5).astype(np.float32)
    hidden_bias = random_state.normal(size=5).astype(np.float32)
    expected, got = both("sparsity_step", backend_name, probability, running_mean, hidden_bias,
                         decay=0.9, rate=0.01, target=0.1)
    for e, g in zip(expected[1:], got[1:]):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend_name", KERNEL_BACKENDS)
def test_squared_error_accumulates_like_reference(backend_name, random_state):
    target, estimate = (random_state.random((6, 9)).astype(np.float32) for _ in range(2))
    out = np.full(9, 0.5, np.float32)
    expected, got = both("accumulate_squared_error", backend_name, target, estimate, out)
    np.testing.assert_allclose(got[2], expected[2], rtol=1e-5)


GEMM_CASES = [(False, False), (True, False), (False, True), (True, True)]


@pytest.mark.parametrize("backend_name", KERNEL_BACKENDS)
@pytest.mark.parametrize("trans_a, trans_b", GEMM_CASES)
@pytest.mark.parametrize("alpha, beta", [(1.0, 0.0), (0.5, 2.0), (-0.25, 1.0)])
def test_gemm_matches_reference(backend_name, trans_a, trans_b, alpha, beta, random_state):
    m, k, n = 5, 7, 3
    a = random_state.normal(size=(k, m) if trans_a else (m, k)).astype(np.float32)
    b = random_state.normal(size=(n, k) if trans_b else (k, n)).astype(np.float32)
    out = random_state.normal(size=(m, n)).astype(np.float32)
    expected, got = both("gemm", backend_name, a, b, out, trans_a=trans_a, trans_b=trans_b,
                         alpha=alpha, beta=beta)
    np.testing.assert_allclose(got[2], expected[2], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("trans_a, trans_b", GEMM_CASES)
def test_cpu_gemm_split_across_threads_matches_reference(trans_a, trans_b, random_state):
    # big enough to be split into one block per thread, both along rows and along columns
    for m, k, n in [(70, 90, 130), (130, 90, 70)]:
        a = random_state.normal(size=(k, m) if trans_a else (m, k)).astype(np.float32)
        b = random_state.normal(size=(n, k) if trans_b else (k, n)).astype(np.float32)
        out = random_state.normal(size=(m, n)).astype(np.float32)
        expected, got = both("gemm", "cpu", a, b, out, trans_a=trans_a, trans_b=trans_b,
                             alpha=0.5, beta=0.5)
        np.testing.assert_allclose(got[2], expected[2], rtol=1e-4, atol=1e-4)


def test_cpu_gemm_outside_compute_context_writes_in_place(random_state):
    backend = get_backend("cpu")
    a, b = random_state.random((4, 6)), random_state.random((6, 3))
    a, b = a.astype(np.float32), b.astype(np.float32)
    out = np.ones((4, 3), np.float32)
    backend.gemm(a, b, out, alpha=2.0, beta=1.0)
    np.testing.assert_allclose(out, 2 * a @ b + 1, rtol=1e-5)


def test_cpu_gemm_works_in_float64(random_state):
    backend = get_backend("cpu")
    a, b = random_state.random((80, 70)), random_state.random((70, 90))
    out = np.zeros((80, 90))
    with backend.compute():
        backend.gemm(a, b, out)
    np.testing.assert_allclose(out, a @ b, rtol=1e-12)


@requires_cuda
def test_cuda_tiled_gemm_works_in_float64(random_state, simulated_tiled_gemm):
    """The CUDA GEMM of its own (the simulator's, and a GPU's without CuPy) staged its tiles in
    float32 shared memory: a float64 network's products were float32's ~1e-7 off."""
    backend = get_backend("cuda")
    trans_a, trans_b, beta = True, False, 0.5   # one tile of the output (the simulator is slow)
    a, b = random_state.random((10, 20)), random_state.random((20, 12))
    a = a.T.copy()
    start = random_state.random((10, 12))
    out = backend.asarray(start, np.float64)
    backend.gemm(backend.asarray(a, np.float64), backend.asarray(b, np.float64), out,
                 trans_a=trans_a, trans_b=trans_b, alpha=0.3, beta=beta)
    expected = 0.3 * (a.T if trans_a else a) @ (b.T if trans_b else b) + beta * start
    np.testing.assert_allclose(backend.to_numpy(out), expected, rtol=1e-13)


def test_cpu_kernel_cache_key_changes_when_a_helper_of_the_body_changes():
    from dlcore.backend.cpu import fingerprint
    from dlcore.backend.registry import register_for_kernels
    namespace = {}
    exec("def helper(x):\n    return x + 1\n\ndef body(first, last, out):\n"
         "    out[first] = helper(out[first])\n", namespace)
    register_for_kernels(namespace["helper"], inline="always")
    before = fingerprint(namespace["body"])
    assert fingerprint(namespace["body"]) == before          # stable: a cache can hit
    exec("def helper(x):\n    return x + 2\n", namespace)    # the helper is edited
    register_for_kernels(namespace["helper"], inline="always")
    assert fingerprint(namespace["body"]) != before


def test_cpu_kernel_cache_key_changes_when_the_cpu_implementation_of_a_helper_changes():
    from dlcore.backend.cpu import fingerprint
    from dlcore.backend.registry import register_for_kernels
    namespace = {}
    exec("def helper(x):\n    return x + 1\n\ndef on_cpu(x):\n    return x + 1\n\n"
         "def body(first, last, out):\n    out[first] = helper(out[first])\n", namespace)
    register_for_kernels(namespace["helper"], "always", namespace["on_cpu"])
    before = fingerprint(namespace["body"])
    exec("def on_cpu(x):\n    return x + 2\n", namespace)  # only the CPU's version is edited
    register_for_kernels(namespace["helper"], "always", namespace["on_cpu"])
    assert fingerprint(namespace["body"]) != before


def test_cpu_kernel_cache_key_follows_a_plain_dlcore_function_the_body_calls():
    """A plain function of dlcore's compiled through an overload (the kernels' exp, which takes
    its branch by type) is part of the key, and so is what it calls."""
    from dlcore.backend.cpu import fingerprint
    namespace = {"__name__": "dlcore.fake_module"}
    exec("def inner(x):\n    return x + 1\n\ndef helper(x):\n    return inner(x)\n\n"
         "def body(first, last, out):\n    out[first] = helper(out[first])\n", namespace)
    before = fingerprint(namespace["body"])
    assert fingerprint(namespace["body"]) == before
    exec("def inner(x):\n    return x + 2\n", namespace)     # two calls down, edited
    assert fingerprint(namespace["body"]) != before


def test_the_fused_weight_steps_cache_key_follows_the_steps_it_takes():
    """The fused weight step (cpu.py) runs steps written in kernel_backend.py and the
    float-mode switches of flush_to_zero.py: their fingerprints are in its closure, so that
    editing them recompiles it."""
    from dlcore.backend import cpu
    from dlcore.backend.flush_to_zero import flush_to_zero_on, restore_float_modes
    from dlcore.backend.kernel_backend import descent_span, momentum_step_span
    closure = "".join(str(cell.cell_contents)
                      for cell in cpu._weight_step.py_func.__closure__)
    for function in (descent_span, momentum_step_span, flush_to_zero_on.py_func,
                     restore_float_modes.py_func):
        assert cpu.fingerprint(function) in closure


def _launched_kinds(monkeypatch):
    """The loop kinds (serial or parallel) the cpu backend launches, recorded in a list."""
    from dlcore.backend import cpu
    kinds, kernel = [], cpu._kernel

    def recording(kind, body):
        kinds.append(kind)
        return kernel(kind, body)
    monkeypatch.setattr(cpu, "_kernel", recording)
    return kinds


def test_momentum_step_of_a_small_weight_matrix_stays_on_the_calling_thread(monkeypatch):
    # a parallel region for task 1's 784 x 49 weights cost 6-9 s of 2,000 launches when busy
    backend, kinds = get_backend("cpu"), _launched_kinds(monkeypatch)
    for shape in ((784, 49), (2000, 1000)):
        parameter, velocity = np.ones(shape, np.float32), np.ones(shape, np.float32)
        with backend.compute():
            backend.momentum_step(parameter, velocity, 0.5)
        np.testing.assert_array_equal(parameter, 1.5)
    assert kinds == ["serial chunk", "chunks"]


def test_sigmoids_without_samples_count_as_less_work_than_with_them(monkeypatch):
    # task 1's reconstruction of its 900 held-out digits (900 x 49 hidden units) compiled a
    # parallel kernel in a first run for 57 us of sigmoids; with samples the same array pays
    backend, kinds = get_backend("cpu"), _launched_kinds(monkeypatch)
    pre = np.zeros((900, 49), np.float32)
    with backend.compute():
        backend.sigmoid_bernoulli(pre.copy(), np.zeros(49, np.float32), None, 1, 2, 3)
        backend.sigmoid_bernoulli(pre.copy(), np.zeros(49, np.float32), np.empty_like(pre), 1,
                                  2, 3)
        backend.sigmoid_bernoulli(np.zeros((2000, 49), np.float32), np.zeros(49, np.float32),
                                  None, 1, 2, 3)
    assert kinds == ["serial rows", "rows", "rows"]


@requires_cuda
def test_the_cuda_backend_silences_only_numba_cudas_small_grid_warning():
    import warnings

    from dlcore.backend.cuda import quiet_small_grid_warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_small_grid_warnings()
        # numba-cuda's own wording, bold escapes included
        warnings.warn("\x1b[1mGrid size 2 will likely result in GPU under-utilization due to "
                      "low occupancy.\x1b[0m", RuntimeWarning, stacklevel=1)
        warnings.warn("Host array used in CUDA kernel will incur copy overhead", RuntimeWarning,
                      stacklevel=1)
    assert [str(warning.message) for warning in caught] == [
        "Host array used in CUDA kernel will incur copy overhead"]


BODY_IN_TWO_LOOPS = """
import numpy as np
from dlcore.backend.cpu import SERIAL_ELEMENTS, CPUBackend
from dlcore.backend.registry import CPU_DISPATCHERS
from dlcore.layers.bodies import multiply_span
for n in (10, 4 * SERIAL_ELEMENTS):   # the serial loop, then the parallel one
    a = np.arange(n, dtype=np.float32)
    out = np.empty_like(a)
    CPUBackend().launch_1d(multiply_span, n, a, a, out)
    assert np.array_equal(out, a * a)
print(len(CPU_DISPATCHERS[multiply_span].signatures))
"""


def test_a_body_run_by_the_serial_and_the_parallel_loop_compiles_once(tmp_path):
    """Numba compiles an overload once per caller's compile flags: each body was compiled again
    for every loop flavour that ran it, in every process with a cold cache. Its own dispatcher
    holds one compilation for both loops (an empty kernel cache, so that both loops compile)."""
    completed = subprocess.run(
        [sys.executable, "-c", BODY_IN_TWO_LOOPS], capture_output=True, text=True, timeout=600,
        env={**os.environ, "DLCORE_CACHE": str(tmp_path)}, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.split()[-1] == "1"


BODY_IN_ONE_LOOP = """
import sys
import numpy as np
from dlcore.backend.cpu import SERIAL_ELEMENTS, CPUBackend
from dlcore.backend.registry import CPU_DISPATCHERS
from dlcore.layers.bodies import multiply_span
n = 10 if sys.argv[1] == "serial" else 4 * SERIAL_ELEMENTS
a = np.arange(n, dtype=np.float32)
out = np.empty_like(a)
CPUBackend().launch_1d(multiply_span, n, a, a, out)
assert np.array_equal(out, a * a)
stats = CPU_DISPATCHERS[multiply_span].stats
print(sum(stats.cache_hits.values()), sum(stats.cache_misses.values()))
"""


def test_a_process_compiling_a_new_kernel_around_a_body_loads_the_body_from_the_cache(
        tmp_path):
    """A body's dispatcher is cached on disk: a process that compiles the parallel loop
    around a body that another process compiled for the serial loop loads the body (it was
    compiled again in every process that compiled any new kernel around it)."""
    def hits_and_misses(loop):
        completed = subprocess.run(
            [sys.executable, "-c", BODY_IN_ONE_LOOP, loop], capture_output=True, text=True,
            timeout=600, env={**os.environ, "DLCORE_CACHE": str(tmp_path)}, check=False)
        assert completed.returncode == 0, completed.stderr[-3000:]
        return completed.stdout.split()[-2:]
    assert hits_and_misses("serial") == ["0", "1"]
    assert hits_and_misses("parallel") == ["1", "0"]
