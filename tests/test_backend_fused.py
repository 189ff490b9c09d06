"""The fused operations of the CD-1 step (a product and its sigmoids; the weight statistic and
its momentum step) give the numbers of the operations they fuse.

Oracles: the reference backend (the same two or three operations in NumPy), and the cpu
backend's own unfused path (the same products and kernels one after the other), which the fused
path must match bit for bit: the trained weights of a seed do not change with the fusion."""
import functools
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import assert_same_on_any_number_of_threads, cpu_product
from dlcore.backend import get_backend
from dlcore.backend.base import Backend

# (n, k, m): an RBM's products (split by columns), a tall product the unfused path splits by
# rows and a width that is not a multiple of four (fused), a square one (split by rows), and
# two below the size at which the cpu splits a product across threads (they take the unfused
# path).
SHAPES = [(100, 784, 500), (1000, 100, 202), (500, 100, 500), (7, 13, 9), (64, 300, 130)]
# (n, v, h) of the weight step: velocity (v, h) split by rows, then one wider than tall, which
# the unfused products split by columns, and a square one (a DBN's 500-500 layer: rows)
WEIGHT_SHAPES = [(100, 784, 500), (100, 301, 1003), (100, 500, 500), (7, 13, 9)]


def operands(n, k, m, seed=0):
    generator = np.random.default_rng(seed)
    a = (generator.random((n, k)) < 0.3).astype(np.float32)
    W = (generator.standard_normal((k, m)) * 0.05).astype(np.float32)
    bias = (generator.standard_normal(m) * 0.1).astype(np.float32)
    return a, W, bias


def unfused_gemm_sigmoid_bernoulli(backend, a, b, out, bias, sample, seed, stream, step,
                                   trans_b=False, first_row=0, a_ones=None):
    """The cpu's gemm_sigmoid_bernoulli as separate operations: the product (as the sum of
    its two halves where the cpu sums them: an RBM's product along the dimension its weight
    step splits W), then the sigmoids and samples. Products, never the sums of a binary
    ``a`` (tests/test_binary_products.py holds those to these)."""
    if backend.sums_inner_halves(a, b, trans_b):
        cpu_product(backend, a, b, out, trans_b)
        backend.sigmoid_bernoulli(out, bias, sample, seed, stream, step, first_row)
    else:
        Backend.gemm_sigmoid_bernoulli(backend, a, b, out, bias, sample, seed, stream, step,
                                       trans_b, first_row)


def fused_and_unfused(backend, a, b, bias, trans_b, sampling, first_row=0):
    n, m = a.shape[0], (b.shape[0] if trans_b else b.shape[1])
    results = []
    for fuse in (True, False):
        out, sample = np.empty((n, m), np.float32), np.empty((n, m), np.float32)
        with backend.compute():
            step = backend.gemm_sigmoid_bernoulli if fuse else \
                functools.partial(unfused_gemm_sigmoid_bernoulli, backend)
            step(a, b, out, bias, sample if sampling else None, 5, 2, 9, trans_b=trans_b,
                 first_row=first_row)
        results.append((out, sample if sampling else None))
    return results


@pytest.mark.parametrize("n, k, m", SHAPES)
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("first_row", [0, 7])  # 7: a shard of a data-parallel batch
def test_fused_product_and_sigmoid_match_the_unfused_path_bit_for_bit(n, k, m, trans_b,
                                                                      first_row):
    a, W, bias = operands(n, k, m)
    b = np.ascontiguousarray(W.T) if trans_b else W
    (fused, fused_sample), (plain, plain_sample) = fused_and_unfused(
        get_backend("cpu"), a, b, bias, trans_b, sampling=True, first_row=first_row)
    np.testing.assert_array_equal(fused, plain)
    np.testing.assert_array_equal(fused_sample, plain_sample)


@pytest.mark.parametrize("n, k, m", SHAPES)
def test_fused_product_and_sigmoid_follow_the_reference(n, k, m):
    a, W, bias = operands(n, k, m, seed=1)
    results = []
    for name in ("cpu", "reference"):
        backend = get_backend(name)
        out, sample = np.empty((n, m), np.float32), np.empty((n, m), np.float32)
        with backend.compute():
            backend.gemm_sigmoid_bernoulli(a, W, out, bias, sample, 3, 1, 4)
        results.append((out, sample))
    (cpu_p, cpu_s), (ref_p, ref_s) = results
    np.testing.assert_allclose(cpu_p, ref_p, rtol=2e-5, atol=2e-6)
    # a sample differs only where u falls between the two roundings of p
    assert np.mean(cpu_s != ref_s) < 1e-3


@pytest.mark.parametrize("n, v, h", WEIGHT_SHAPES)
def test_fused_weight_step_matches_the_unfused_path_and_the_reference(n, v, h):
    generator = np.random.default_rng(2)
    x1, x2 = (generator.random((n, v)).astype(np.float32) for _ in range(2))
    h1, q2 = (generator.random((n, h)).astype(np.float32) for _ in range(2))
    start_W = (generator.standard_normal((v, h)) * 0.01).astype(np.float32)
    start_velocity = (generator.standard_normal((v, h)) * 0.001).astype(np.float32)
    results = {}
    for name, fuse in (("cpu", True), ("cpu", False), ("reference", True)):
        backend = get_backend(name)
        W, velocity = start_W.copy(), start_velocity.copy()
        step = type(backend).contrastive_weight_step if fuse else Backend.contrastive_weight_step
        with backend.compute():
            step(backend, W, velocity, x1, h1, x2, q2, 0.1 / n, 0.1 / n, 0.5, 2e-5)
        results[(name, fuse)] = (W, velocity)
    for fused, plain in zip(results[("cpu", True)], results[("cpu", False)]):
        np.testing.assert_array_equal(fused, plain)
    for fused, reference in zip(results[("cpu", True)], results[("reference", True)]):
        np.testing.assert_allclose(fused, reference, rtol=1e-5, atol=1e-7)


# CD-1; PCD with a chain per batch row (the trainer's own calls) and with 50 chains (the
# chains' calls, dlcore.rbm.chains)
SAMPLERS = [{}, {"sampler": "pcd"}, {"sampler": "pcd", "n_chains": 50}]


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_fusion_does_not_change_the_weights_a_seed_trains(monkeypatch, sampler):
    import dlcore
    from dlcore.backend import cpu
    data = (np.random.default_rng(3).random((300, 784)) < 0.2).astype(np.float32)
    weights = []
    # the binary samples' products multiplied on both sides, as the unfused path does
    monkeypatch.setattr(cpu, "BINARY_DENSITY_LIMIT", -1.0)
    for fuse in (True, False):
        if not fuse:  # the products, then the kernels, one call each
            monkeypatch.setattr(cpu.CPUBackend, "gemm_sigmoid_bernoulli",
                                unfused_gemm_sigmoid_bernoulli)
            monkeypatch.setattr(cpu.CPUBackend, "contrastive_weight_step",
                                Backend.contrastive_weight_step)
        rbm = dlcore.BernoulliRBM(n_hidden=500, batch_size=100, epochs=2, momentum=0.5,
                                  weight_decay=1e-4, seed=7, backend="cpu", verbose=False,
                                  **sampler)
        rbm.fit(data)
        weights.append((rbm.W_, rbm.visible_bias_, rbm.hidden_bias_))
    for fused, plain in zip(*weights):
        np.testing.assert_array_equal(fused, plain)


def test_an_rbm_sums_the_halves_of_the_products_along_which_its_weight_step_splits_w():
    """784 x 500 weights (split by rows): the hidden inputs x W sum two halves of the visible
    units, the visible inputs h W' do not; 500 x 2000 (split by columns): the other way
    round; short inner dimensions never."""
    backend = get_backend("cpu")
    W, tall = np.zeros((784, 500), np.float32), np.zeros((500, 2000), np.float32)
    with backend.compute():
        assert backend.sums_inner_halves(np.zeros((100, 784), np.float32), W, False)
        assert not backend.sums_inner_halves(np.zeros((100, 500), np.float32), W, True)
        assert not backend.sums_inner_halves(np.zeros((100, 500), np.float32), tall, False)
        assert backend.sums_inner_halves(np.zeros((100, 2000), np.float32), tall, True)
        assert not backend.sums_inner_halves(np.zeros((100, 100), np.float32),
                                             np.zeros((100, 50), np.float32), False)
    assert not backend.sums_inner_halves(np.zeros((100, 784), np.float32), W, False)


def test_the_second_halves_buffer_is_one_per_dtype_whatever_the_batch_sizes():
    """Dense layers' forward passes sum halves into a scratch buffer: predicting on inputs of
    every length keeps one buffer (the largest), not one per shape."""
    import dlcore
    from dlcore.backend.cpu import _PER_THREAD
    from dlcore.layers import Dense
    model = dlcore.Sequential([Dense(300, activation="sigmoid", input_shape=(784,))],
                              backend="cpu", seed=0)
    x = np.random.default_rng(0).random((64, 784)).astype(np.float32)
    expected = model.predict(x)
    for n in (64, 1, 17, 40, 3):
        np.testing.assert_allclose(model.predict(x[:n]), expected[:n], rtol=1e-5)
    halves = {dtype: buffer for (purpose, dtype), buffer in _PER_THREAD.scratch.items()
              if purpose == "second half"}
    assert set(halves) <= {np.dtype(np.float32), np.dtype(np.float64)}
    assert halves[np.dtype(np.float32)].size >= 64 * 300


@pytest.mark.parametrize("n_hidden, sampler", [(500, {}), (2000, {}), (500, SAMPLERS[1]),
                                               (500, SAMPLERS[2])])
def test_a_seed_trains_the_same_weights_on_any_number_of_threads(n_hidden, sampler):
    """The promise of docs/rbm.md ("Reproducibility"): bit-identical weights whatever the
    number of threads, the halves of the products included (one, two and three threads)."""
    import dlcore
    data = (np.random.default_rng(4).random((200, 784 if n_hidden == 500 else 300)) < 0.2
            ).astype(np.float32)

    def train():
        rbm = dlcore.BernoulliRBM(n_hidden=n_hidden, batch_size=100, epochs=2, momentum=0.5,
                                  seed=11, backend="cpu", verbose=False, **sampler)
        rbm.fit(data)
        return [rbm.W_, rbm.visible_bias_, rbm.hidden_bias_]
    assert_same_on_any_number_of_threads(train)


_RUN_HALVES_KERNEL = """
import sys
import numpy as np
from dlcore.backend import cpu
from dlcore.layers.bodies import scale_columns_rows
out = np.empty((8, 8), np.float32)
blas, integer_type = cpu.BLAS_GEMM[out.dtype]
kernel = cpu._kernel(sys.argv[1], scale_columns_rows)
kernel(np.ones((8, 256), np.float32), np.ones((256, 8), np.float32), out, np.empty_like(out),
       False, blas, np.empty(0, integer_type), 2, 1, out, np.full(8, 2, np.float32), out)
assert np.all(out == 512), out
print(sum(kernel.stats.cache_hits.values()), sum(kernel.stats.cache_misses.values()))
"""


@pytest.mark.slow
def test_the_serial_and_parallel_halves_kernels_never_share_compiled_code(tmp_path):
    """The two flavours of the halves kernel come from one source line, and Numba's disk cache
    does not key on compile flags: compiled serially first (a small RBM trained first), the
    parallel flavour loaded that code and ran on one thread (an RBM's hidden inputs 390 ->
    700 us a batch). In fresh processes on one cache, each flavour compiles its own code
    once, then loads it. The epilogue is the smallest body (a product by a row): with an
    activation's body, whose switch holds every activation, each flavour took 20-40 s to
    compile, the suite's slowest test but one, for the same question."""
    environment = {**os.environ, "DLCORE_CACHE": str(tmp_path / "cache")}

    def hits_and_misses(kind):
        result = subprocess.run([sys.executable, "-c", _RUN_HALVES_KERNEL, kind],
                                env=environment, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr
        return tuple(int(word) for word in result.stdout.split()[-2:])
    compiled, loaded = (0, 1), (1, 0)
    assert hits_and_misses("serial halves then rows") == compiled
    assert hits_and_misses("halves then rows") == compiled
    assert hits_and_misses("halves then rows") == loaded
    assert hits_and_misses("serial halves then rows") == loaded


def test_products_are_split_by_the_pool_unless_a_number_is_given():
    from dlcore.backend import cpu
    numba = pytest.importorskip("numba")
    try:
        assert cpu.product_parts() == numba.config.NUMBA_NUM_THREADS
        cpu.use_product_parts(3)
        assert cpu.product_parts() == 3
    finally:
        cpu.use_product_parts(None)
    assert cpu.product_parts() == numba.config.NUMBA_NUM_THREADS
