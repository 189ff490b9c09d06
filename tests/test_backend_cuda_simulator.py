"""The CUDA simulator must type and count as a real GPU does.

The tests run the CUDA backend under Numba's simulator (``tests/conftest.py``), which runs the
kernels as Python. Where Python's own rules differ from what numba-cuda compiles for a GPU, the
tests would pass on numbers a GPU never computes.
"""
import types

import numpy as np
import pytest

from conftest import requires_cuda
from dlcore.layers import Dense


@requires_cuda
@pytest.mark.parametrize("name", ["sigmoid", "gelu"])
def test_float64_layers_keep_float64_precision_on_cuda(name):
    # on a GPU, float32(1) + exp(float64) is a float64; in the simulator math.exp returned a
    # Python float, which NumPy 2 rounded to float32 next to a float32 (~1e-7 off)
    x = np.random.default_rng(3).random((4, 9)) * 6 - 3
    outputs = [np.asarray(Dense(5, activation=name).build((9,), backend=backend,
                                                          dtype=np.float64, seed=4).forward(x))
               for backend in ("cuda", "reference")]
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-12, atol=1e-14)


def _count_launches(monkeypatch):
    """{"kernel": n, "gemm": n}, counted from now on for every CUDA backend."""
    import collections

    from dlcore.backend.cuda import CUDABackend
    counts = collections.Counter()
    launch, gemm = CUDABackend._launch, CUDABackend.gemm

    def counted_launch(self, *arguments):
        counts["kernel"] += 1
        launch(self, *arguments)

    def counted_gemm(self, *arguments, **options):
        counts["gemm"] += 1
        gemm(self, *arguments, **options)
    monkeypatch.setattr(CUDABackend, "_launch", counted_launch)
    monkeypatch.setattr(CUDABackend, "gemm", counted_gemm)
    return counts


def _count_uploads(monkeypatch):
    """A list that gets one entry per copy from the host to the device (simulated, or a GPU's
    under NUMBA_ENABLE_CUDASIM=0, where every such copy goes through one driver call)."""
    from numba import config, cuda
    if not config.ENABLE_CUDASIM:
        from numba.cuda.cudadrv import driver
        uploads, host_to_device = [], driver.host_to_device

        def counted_host_to_device(destination, source, *arguments, **options):
            uploads.append(np.shape(source))
            return host_to_device(destination, source, *arguments, **options)
        monkeypatch.setattr(driver, "host_to_device", counted_host_to_device)
        return uploads
    from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray
    uploads, to_device, copy_to_device = [], cuda.to_device, FakeCUDAArray.copy_to_device

    def counted_to_device(array, *arguments, **options):
        uploads.append(np.shape(array))
        return to_device(array, *arguments, **options)

    def counted_copy_to_device(self, array, *arguments, **options):
        if not isinstance(array, FakeCUDAArray):   # a copy between device arrays stays there
            uploads.append(np.shape(array))
        return copy_to_device(self, array, *arguments, **options)
    monkeypatch.setattr(cuda, "to_device", counted_to_device)
    monkeypatch.setattr(FakeCUDAArray, "copy_to_device", counted_copy_to_device)
    return uploads


def _trainer(n_visible, n_hidden, **changes):
    """A CD trainer of a small RBM on the cuda backend (no estimator around it)."""
    from dlcore.backend import get_backend
    from dlcore.rbm.trainer import CDSettings, ContrastiveDivergence
    values = dict(learning_rate=0.5, cd_k=1, persistent=False, momentum=0.0, weight_decay=0.0,
                  sparsity_target=None, sparsity_cost=0.0, sparsity_decay=0.9,
                  sample_visible=True, batch_size=5, seed=3)
    values.update(changes)
    generator = np.random.default_rng(2)
    parameters = {"W": generator.standard_normal((n_visible, n_hidden), np.float32) * 0.1,
                  "visible_bias": np.zeros(n_visible, np.float32),
                  "hidden_bias": np.zeros(n_hidden, np.float32)}
    state = {"velocity_W": np.zeros((n_visible, n_hidden), np.float32),
             "velocity_visible_bias": np.zeros(n_visible, np.float32),
             "velocity_hidden_bias": np.zeros(n_hidden, np.float32),
             "sparsity_mean": np.zeros(n_hidden, np.float32), "persistent_chain": None}
    backend = get_backend("cuda")
    return backend, ContrastiveDivergence(backend, parameters, state, CDSettings(**values))


def _binary_rows(n_rows, n_columns):
    return (np.random.default_rng(1).random((n_rows, n_columns)) < 0.5).astype(np.float32)


@requires_cuda
def test_a_cd1_batch_makes_six_kernel_launches_five_products_and_no_copy_from_the_host(
        monkeypatch):
    # each launch costs 30-55 us of Python on a GPU's host, more than a batch's maths: a
    # change that adds one must change this count on purpose. The batch: the gather, three
    # sigmoid + Bernoulli passes, the squared error, the momentum and both bias steps as one;
    # the three products of the Gibbs step and the two of the weight gradient.
    # A copy from the host on CUDA's default stream waits for every launch before it: each
    # batch's indices (one copy per source: a network's data and targets, two) held the host
    # until the GPU had finished the batch before, so no launch was queued ahead. The pass's
    # order goes up once (dlcore.batches.mini_batches, which every trainer walks).
    backend, trainer = _trainer(8, 4)
    data = backend.asarray(_binary_rows(10, 8))
    counts = _count_launches(monkeypatch)
    uploads = _count_uploads(monkeypatch)
    per_epoch = []
    for n_batches in (1, 2):
        counts.clear()
        uploads.clear()
        trainer.epoch(data, np.arange(5 * n_batches), 1)
        per_epoch.append({**counts, "upload": len(uploads)})
    assert {name: per_epoch[1][name] - per_epoch[0][name] for name in per_epoch[0]} == {
        "kernel": 6, "gemm": 5, "upload": 0}


@requires_cuda
def test_the_fused_parameter_steps_give_the_separate_launches_numbers(monkeypatch):
    # n_chains != batch_size: both bias steps take means of rows, in buffers of their own
    from dlcore.backend.cuda import CUDABackend
    rows = _binary_rows(10, 6)

    def train():
        backend, trainer = _trainer(6, 6, persistent=True, n_chains=3, momentum=0.5,
                                    weight_decay=0.01)
        trainer.epoch(backend.asarray(rows), np.arange(10), 0)
        return [backend.to_numpy(array) for array in
                (trainer.W, trainer.visible_bias, trainer.hidden_bias)]
    fused = train()
    monkeypatch.setattr(CUDABackend, "fuses_parameter_steps", False)
    for got, expected in zip(fused, train()):
        np.testing.assert_array_equal(got, expected)


@requires_cuda
def test_a_thread_s_steps_are_not_held_back_by_another_thread_s_parameter_steps():
    # the backend is one object per process: a fit in a thread pool's other thread stepped
    # only when this thread's CD update ended (or never, were its step appended after the
    # held steps had run)
    import threading

    from dlcore.backend import get_backend
    backend = get_backend("cuda")
    bias, velocity = backend.zeros((4,)), backend.zeros((4,))
    positive, negative = backend.asarray(np.ones((2, 4))), backend.zeros((2, 4))
    seen = []

    def another_fit():
        backend.bias_step(bias, velocity, positive, negative, 0.5, 0.0)
        seen.append(backend.to_numpy(bias))

    with backend.parameter_steps():
        other = threading.Thread(target=another_fit)
        other.start()
        other.join()
        assert backend._held_steps == []   # this thread's block holds nothing of the other's
    np.testing.assert_array_equal(seen[0], np.full(4, 0.5, dtype=np.float32))


@requires_cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_what_overflows_on_cuda_is_inf_as_on_a_gpu_not_a_python_error(dtype):
    # math.exp(800.0) raised OverflowError in the simulator alone: a GPU's exp gives inf, and
    # the sigmoid of -800 is 0 (the reference's too)
    x = np.array([[-800.0, 800.0, 0.5]], dtype=dtype)
    outputs = [np.asarray(Dense(2, activation="sigmoid").build((3,), backend=backend,
                                                               dtype=dtype, seed=4).forward(x))
               for backend in ("cuda", "reference")]
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-6, atol=1e-30)


@requires_cuda
def test_the_tiled_gemm_is_right_when_its_threads_switch_while_taking_their_shared_tiles(
        monkeypatch, random_state, simulated_tiled_gemm):
    # The simulator runs a block's threads as Python threads and used to make a shared array
    # at a thread's first request unless one was there: threads switched between the look-up
    # and the store each took an array of their own and summed tiles the others never filled
    # (a U-Net mask's accuracy read 0.51 for 0.5 once, in a loaded full run). Two threads
    # that meet inside np.empty are what the load did by chance; where the arrays are made
    # one thread at a time, the first waits for a partner in vain and goes on.
    import threading
    make, meeting = np.empty, threading.Barrier(2, timeout=0.25)

    def meeting_empty(*arguments, **options):
        if threading.current_thread() is not threading.main_thread():
            try:
                meeting.wait()
            except threading.BrokenBarrierError:
                pass
        return make(*arguments, **options)

    from dlcore.backend import get_backend
    backend = get_backend("cuda")
    a = random_state.standard_normal((5, 11)).astype(np.float32)
    b = random_state.standard_normal((11, 6)).astype(np.float32)
    device_a, device_b, out = backend.asarray(a), backend.asarray(b), backend.zeros((5, 6))
    monkeypatch.setattr(np, "empty", meeting_empty)
    backend.gemm(device_a, device_b, out)
    monkeypatch.undo()
    np.testing.assert_allclose(backend.to_numpy(out), a @ b, rtol=1e-5, atol=1e-5)


def _fake_devices(monkeypatch):
    """Fake CUDA devices under the simulator, each thread with its stack of contexts as
    numba-cuda keeps it: device k's context is 100 + k, the current one the stack's top (none,
    0, on a new thread); ``numba.cuda.select_device(k)`` pushes k's (numba-cuda's
    ``_activate_context_for``), ``with numba.cuda.gpus[k]:`` pushes it and pops it after,
    checking that it is on top (numba-cuda's ``Context.pop`` asserts so). Returns (``selected``,
    (thread name, device) of each select_device; ``stack()``, the calling thread's stack).
    The backend starts on device 1."""
    import contextlib
    import threading
    import types

    from numba import cuda

    from dlcore.backend import cuda as cuda_module
    contexts, selected = threading.local(), []

    def stack():
        if not hasattr(contexts, "stack"):
            contexts.stack = []
        return contexts.stack

    def select_device(number):
        selected.append((threading.current_thread().name, number))
        stack().append(100 + number)

    @contextlib.contextmanager
    def gpu(number):
        stack().append(100 + number)
        yield
        assert stack().pop() == 100 + number, "popped another device's context"
    monkeypatch.setattr(cuda_module, "_current_context",
                        lambda: stack()[-1] if stack() else 0)
    monkeypatch.setattr(cuda, "get_current_device", lambda: types.SimpleNamespace(id=1))
    monkeypatch.setattr(cuda, "select_device", select_device)
    monkeypatch.setattr(cuda, "gpus", _Indexed(gpu))
    stack().append(101)          # the rank's device, chosen before the backend was built
    return selected, stack


class _Indexed:
    """``thing[k]`` as ``function(k)``: numba.cuda.gpus faked."""

    def __init__(self, function):
        self.function = function

    def __getitem__(self, number):
        return self.function(number)


@requires_cuda
def test_another_thread_uses_the_backend_on_the_backend_s_gpu_not_device_0(monkeypatch,
                                                                           random_state):
    # numba-cuda's contexts are per thread: a rank on device 1 whose model was used from
    # another thread (a grid search's thread pool) allocated and launched there on device 0
    import threading

    from dlcore.backend import cuda as cuda_module
    selected, _ = _fake_devices(monkeypatch)
    backend = cuda_module.CUDABackend()              # the rank's device, 1, on this thread
    rows = random_state.standard_normal((3, 4)).astype(np.float32)
    results = []

    def fit_in_a_thread():
        probability = backend.asarray(rows)
        backend.sigmoid_bernoulli(probability, backend.zeros(4), None, 1, 16, 0)
        results.append(backend.to_numpy(probability))
    worker = threading.Thread(target=fit_in_a_thread, name="pool worker")
    worker.start()
    worker.join()
    backend.zeros(2)                                 # the building thread is there already
    assert selected == [("pool worker", 1)]          # once, before the thread's first call
    np.testing.assert_allclose(results[0], 1 / (1 + np.exp(-rows)), rtol=1e-5)


@requires_cuda
def test_a_thread_that_makes_another_gpu_current_between_calls_gets_the_backend_s_back(
        monkeypatch):
    # the backend remembered per thread that it had selected its device there: a thread's own
    # numba.cuda.select_device(0) (or torch.cuda.set_device(0)) after the backend's first
    # call left the backend's next allocations and launches on device 0
    from numba import cuda

    from dlcore.backend import cuda as cuda_module
    _fake_devices(monkeypatch)
    backend = cuda_module.CUDABackend()
    allocated_on = _record_the_context_of_each_upload(monkeypatch, cuda_module)
    backend.zeros(2)
    cuda.select_device(0)                            # the user's own code, between two calls
    backend.zeros(2)
    backend.zeros(2)
    assert allocated_on == [101, 101, 101]


def _record_the_context_of_each_upload(monkeypatch, cuda_module):
    """A list that gets the current context of each ``numba.cuda.to_device`` from now on."""
    from numba import cuda
    contexts, to_device = [], cuda.to_device

    def recorded(*arguments, **options):
        contexts.append(cuda_module._current_context())
        return to_device(*arguments, **options)
    monkeypatch.setattr(cuda, "to_device", recorded)
    return contexts


@requires_cuda
def test_a_call_under_another_current_gpu_gives_the_caller_its_gpu_back(monkeypatch):
    # numba.cuda.select_device pushes a context and leaves it: the backend pushed its device's
    # at each call made while the caller had made another GPU current and never popped it, so
    # the caller's own next allocations (numba's, PyTorch's) went to the backend's GPU, the
    # thread's stack of contexts grew by one a call, and a `with numba.cuda.gpus[0]:` around
    # a call ended in numba-cuda's AssertionError (it popped the backend's context, not its own)
    from numba import cuda

    from dlcore.backend import cuda as cuda_module
    _, stack = _fake_devices(monkeypatch)
    backend = cuda_module.CUDABackend()
    allocated_on = _record_the_context_of_each_upload(monkeypatch, cuda_module)
    with cuda.gpus[0]:
        backend.zeros(2)
        assert cuda_module._current_context() == 100     # the caller's GPU, as it chose
        backend.zeros(2)
    assert stack() == [101] and allocated_on == [101, 101]


class _FakeCuPy:
    """CuPy as the backend's products see it: a cuBLAS handle per thread, each thread's current
    stream and its stack of ``with`` blocks (``stream.use()`` makes a stream current without
    the stack; leaving a block makes the stack's top current, cupy/cuda/stream.pyx), and a
    raw ``sgemm`` that first sets the current stream on the handle, as CuPy's
    ``cupy_backends.cuda.libs.cublas`` does (``_setStream(handle)``)."""

    def __init__(self, monkeypatch):
        import sys
        import threading
        import types

        from dlcore.backend import cuda as cuda_module
        self.handles, self.calls, self.handle_streams = {}, [], {}
        self._threads = threading.local()
        fake = self

        class Stream:
            def __init__(self, ptr):
                self.ptr = ptr

            def use(self):
                fake._threads.current = self
                return self

            def __enter__(self):
                fake._stack().append(self)
                return self.use()

            def __exit__(self, *exception):
                fake._stack().pop()
                fake._stack()[-1].use()
        Stream.null, Stream.ptds = Stream(0), Stream(2)
        self.Stream = Stream

        def set_stream(handle, pointer):
            self.handle_streams[handle] = pointer

        def sgemm(handle, *arguments):
            set_stream(handle, self.cuda.get_current_stream().ptr)
            self.calls.append((threading.current_thread().name, handle,
                               self.handle_streams[handle]))
        cublas = types.SimpleNamespace(CUBLAS_POINTER_MODE_HOST=0,
                                       setPointerMode=lambda *a: None, setStream=set_stream,
                                       sgemm=sgemm)
        libs = types.SimpleNamespace(cublas=cublas)
        monkeypatch.setitem(sys.modules, "cupy_backends", types.SimpleNamespace())
        monkeypatch.setitem(sys.modules, "cupy_backends.cuda", types.SimpleNamespace(libs=libs))
        monkeypatch.setitem(sys.modules, "cupy_backends.cuda.libs", libs)
        monkeypatch.setitem(sys.modules, "cupy_backends.cuda.libs.cublas", cublas)
        self.cuda = types.SimpleNamespace(
            Stream=Stream, get_current_stream=lambda: getattr(self._threads, "current",
                                                              Stream.null),
            device=types.SimpleNamespace(get_cublas_handle=lambda: self.handles.setdefault(
                threading.current_thread().name, 1000 + len(self.handles))))
        monkeypatch.setattr(cuda_module, "_import_cupy", lambda: self)

    def _stack(self):
        if not hasattr(self._threads, "stack"):
            self._threads.stack = [self.Stream.null]
        return self._threads.stack


class _FakeDeviceMatrix:
    """A 2 x 2 float32 device matrix as cuBLAS's caller reads it (no data)."""
    shape, ndim, size, dtype = (2, 2), 2, 4, np.dtype(np.float32)
    flags = {"C_CONTIGUOUS": True}
    device_ctypes_pointer = types.SimpleNamespace(value=0)


@requires_cuda
def test_each_thread_multiplies_with_its_own_cupy_cublas_handle(monkeypatch):
    # CuPy keeps a cuBLAS handle per thread and destroys it when the thread ends; the backend
    # took the handle of the thread that built it and gave it to every thread: a backend first
    # asked for in a thread pool's worker multiplied with a destroyed handle once the worker
    # had ended
    import threading

    from dlcore.backend import cuda as cuda_module
    cupy = _FakeCuPy(monkeypatch)
    built = []
    builder = threading.Thread(target=lambda: built.append(cuda_module.CUDABackend()),
                               name="pool worker")
    builder.start()
    builder.join()
    matrix = _FakeDeviceMatrix()
    built[0]._sgemm(matrix, matrix, matrix, False, False, 1.0, 0.0)
    assert [call[:2] for call in cupy.calls] == [("MainThread", cupy.handles.get("MainThread"))]


@requires_cuda
@pytest.mark.parametrize("per_thread_launches", [False, True])
def test_products_run_on_numba_s_stream_whatever_cupy_s_current_stream(
        monkeypatch, per_thread_launches):
    # CuPy's cuBLAS calls set the thread's current CuPy stream on the handle, over the backend's
    # setStream(handle, 0): in a user's `with cupy.cuda.Stream(non_blocking=True):` the
    # products ran on that stream, unordered with numba-cuda's launches on stream 0 (on a GPU:
    # a product reading a sample its kernel had not written yet, now and then)
    from dlcore.backend import cuda as cuda_module
    monkeypatch.setenv("CUDA_PYTHON_CUDA_PER_THREAD_DEFAULT_STREAM", str(int(per_thread_launches)))
    cupy = _FakeCuPy(monkeypatch)
    backend = cuda_module.CUDABackend()
    matrix = _FakeDeviceMatrix()
    users_stream, used_stream = cupy.Stream(0x5EED), cupy.Stream(0xF00D)
    with users_stream:
        backend.gemm(matrix, matrix, matrix)
        assert cupy.cuda.get_current_stream() is users_stream   # theirs again after the product
    backend.gemm(matrix, matrix, matrix)
    used_stream.use()   # current with no block around it: a `with` inside would not give it back
    backend.gemm(matrix, matrix, matrix)
    assert cupy.cuda.get_current_stream() is used_stream
    numba_s = 2 if per_thread_launches else 0   # cudaStreamPerThread, or the legacy stream
    assert [call[2] for call in cupy.calls] == [numba_s, 0, numba_s]


@requires_cuda
def test_a_fit_in_another_thread_does_not_change_this_thread_s_mini_batch_rows(monkeypatch):
    # the cuda backend staged every thread's mini-batch indices of one length in one device
    # buffer: a thread switched between its copy and its gather's launch (two fits of a thread
    # pool's grid search) gathered the other fit's rows
    import threading

    from dlcore.backend import get_backend
    backend = get_backend("cuda")
    rows = np.arange(40, dtype=np.float32).reshape(10, 4)
    source, mine, theirs = backend.asarray(rows), backend.zeros((3, 4)), backend.zeros((3, 4))
    launch_rows, switched = backend.launch_rows, []

    def launch_after_the_other_thread_s_gather(*arguments, **options):
        if not switched:
            switched.append(True)
            other = threading.Thread(target=backend.gather_rows, args=(source, [7, 8, 9], theirs))
            other.start()
            other.join()
        return launch_rows(*arguments, **options)

    monkeypatch.setattr(backend, "launch_rows", launch_after_the_other_thread_s_gather)
    backend.gather_rows(source, np.array([0, 1, 2]), mine)
    monkeypatch.undo()
    assert switched
    np.testing.assert_array_equal(backend.to_numpy(mine), rows[:3])
    np.testing.assert_array_equal(backend.to_numpy(theirs), rows[7:])



@requires_cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a, trans_b", [(False, False), (True, False), (False, True),
                                              (True, True)])
def test_simulated_products_run_on_the_host_as_the_tiled_kernel_computes_them(
        monkeypatch, dtype, trans_a, trans_b):
    """Under the simulator a product is NumPy's on the host arrays (the tiled kernel's barriers
    are slow simulated), with the kernel's meaning: alpha op(a) op(b) + beta out, in out's
    dtype, into a view of a larger array too; the tiled kernel is not asked for."""
    from numba import config

    from dlcore.backend import cuda as cuda_module
    from dlcore.backend import get_backend
    if not config.ENABLE_CUDASIM:
        pytest.skip("a real GPU runs cuBLAS or the tiled kernel: nothing runs on the host")
    backend = get_backend("cuda")
    assert backend.gemm_engine == "NumPy on the host (CUDA simulator)"
    rng = np.random.default_rng(5)
    a = rng.standard_normal((9, 5) if trans_a else (5, 9)).astype(dtype)
    b = rng.standard_normal((7, 9) if trans_b else (9, 7)).astype(dtype)
    start = rng.standard_normal((6, 7)).astype(dtype)
    results = []
    for on_host in (True, False):
        monkeypatch.setattr(cuda_module, "SIMULATED_PRODUCTS_ON_HOST", on_host)
        if on_host:   # a KeyError if the kernel were taken
            monkeypatch.setattr(cuda_module, "TILED_GEMMS", {})
        whole = backend.asarray(start, dtype)
        backend.gemm(backend.asarray(a, dtype), backend.asarray(b, dtype), whole[1:],
                     trans_a=trans_a, trans_b=trans_b, alpha=0.5, beta=2.0)
        monkeypatch.undo()
        results.append(backend.to_numpy(whole))
        assert results[-1].dtype == dtype
    expected = start.astype(np.float64)
    expected[1:] = 0.5 * ((a.T if trans_a else a) @ (b.T if trans_b else b)) + 2.0 * start[1:]
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    for result in results:
        np.testing.assert_allclose(result, expected, rtol=tolerance, atol=tolerance)
