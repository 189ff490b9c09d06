"""The sums that stand for a binary sample's products (dlcore.backend.binary_products) give
the products' numbers up to float32 rounding, in every shape; the cpu takes them only inside
compute() and below the density where they pay, and otherwise multiplies as before.

Oracles: the products in float64 NumPy, the reference backend, and the cpu's own products
(BINARY_DENSITY_LIMIT below 0 turns the sums off). That a seed still trains the same weights
on any number of threads is tests/test_backend_fused.py's (its RBMs sample their visible
units, so their negative phases take the sums)."""
import contextlib

import numpy as np
import pytest

from dlcore.backend import cpu, get_backend
from dlcore.backend.binary_products import (
    BLOCK_COLUMNS,
    TILE_ROWS,
    SampleOnes,
    selected_columns_block,
    selected_rows_block,
    selected_transposed_block,
    transpose_rows,
)

# (b, k, n): an RBM's batch; odd widths below a vector; lists longer than a tile with a width
# one past a block; a sample wider than two tiles; one entry
SHAPES = [(100, 784, 500), (7, 33, 70), (2 * TILE_ROWS + 5, 17, BLOCK_COLUMNS + 1),
          (3, 2 * TILE_ROWS + 1, 16), (1, 1, 1)]


def binary(generator, shape, density):
    return (generator.random(shape) < density).astype(np.float32)


def listed(sample, by_columns, rows=None):
    """(indices, bounds, ones) of ``sample`` by rows or columns, in buffers for ``rows``."""
    ones = SampleOnes(rows or sample.shape[0], sample.shape[1])
    count = ones.fill(sample, 2)
    return (*(ones.by_columns if by_columns else ones.by_rows), count)


@pytest.mark.parametrize("b, k, n", SHAPES)
@pytest.mark.parametrize("by_columns", [False, True])
@pytest.mark.parametrize("spare_rows", [0, 3])  # buffers for a batch longer than this one
def test_the_lists_hold_each_rows_ones_in_order_and_where_each_tile_begins(b, k, n, by_columns,
                                                                           spare_rows):
    sample = binary(np.random.default_rng(0), (b, k), 0.4)
    indices, bounds, ones = listed(sample, by_columns, b + spare_rows)
    assert ones == int(sample.sum())
    lines = sample.T if by_columns else sample
    for line, ones_of_line in enumerate(lines):
        first = line * (lines.shape[1] + 1)
        np.testing.assert_array_equal(indices[first:bounds[line, -1]],
                                      np.flatnonzero(ones_of_line))
        assert bounds[line, 0] == first
        for tile in range(bounds.shape[1] - 1):
            in_tile = indices[bounds[line, tile]:bounds[line, tile + 1]]
            assert np.all((in_tile >= tile * TILE_ROWS) & (in_tile < (tile + 1) * TILE_ROWS))


@pytest.mark.parametrize("b, k, n", SHAPES)
@pytest.mark.parametrize("density", [0.0, 0.3, 1.0])
def test_the_sums_are_the_products(b, k, n, density):
    generator = np.random.default_rng(1)
    x, h = binary(generator, (b, k), density), binary(generator, (b, n), density)
    W = generator.standard_normal((k, n)).astype(np.float32)
    q = generator.random((b, n)).astype(np.float32)
    start = generator.standard_normal((k, n)).astype(np.float32)
    x_rows, x_row_bounds, _ = listed(x, False)
    x_columns, x_column_bounds, _ = listed(x, True)
    h_rows, h_row_bounds, _ = listed(h, False)

    hidden_inputs = np.empty((b, n), np.float32)
    selected_rows_block(W, x_rows, x_row_bounds, hidden_inputs, 0, n, 1.0, False)
    np.testing.assert_allclose(hidden_inputs, x.astype(np.float64) @ W, rtol=1e-5, atol=1e-4)

    statistic = start.copy()  # accumulated, scaled: a momentum buffer's negative statistic
    selected_rows_block(q, x_columns, x_column_bounds, statistic, 0, n, -0.5, True)
    np.testing.assert_allclose(statistic, start - 0.5 * (x.T.astype(np.float64) @ q),
                               rtol=1e-5, atol=1e-4)

    visible_inputs = np.empty((b, k), np.float32)
    selected_columns_block(W, h_rows, h_row_bounds, visible_inputs, 0, k,
                           np.empty((n, BLOCK_COLUMNS), np.float32))
    np.testing.assert_allclose(visible_inputs, h.astype(np.float64) @ W.T, rtol=1e-5,
                               atol=1e-4)


@pytest.mark.parametrize("b, k, n", SHAPES)
@pytest.mark.parametrize("density", [0.0, 0.3, 1.0])
def test_the_transposed_sums_are_the_positive_statistic_in_any_block(b, k, n, density):
    """x' h for a binary h, folded into a momentum buffer (keep velocity + scale x' h) as
    sgemm folds it, for all of the buffer and for a block of its rows and one of its columns
    (the threads' blocks), which leave the rest as it was."""
    generator = np.random.default_rng(9)
    x, h = generator.random((b, k)).astype(np.float32), binary(generator, (b, n), density)
    start = generator.standard_normal((k, n)).astype(np.float32)
    h_columns, h_bounds, _ = listed(h, True)
    gathered = np.empty((n, BLOCK_COLUMNS), np.float32)
    transposed = np.empty((BLOCK_COLUMNS, n), np.float32)
    expected = 0.5 * start.astype(np.float64) + 0.25 * (x.T.astype(np.float64) @ h)
    whole = start.copy()
    selected_transposed_block(x, h_columns, h_bounds, whole, 0, k, 0, n, 0.25, 0.5, gathered,
                              transposed)
    np.testing.assert_allclose(whole, expected, rtol=1e-5, atol=1e-4)
    for rows, columns in (((k // 3, k - 1), (0, n)), ((0, k), (n // 3, n - 1))):
        block = start.copy()
        selected_transposed_block(x, h_columns, h_bounds, block, *rows, *columns, 0.25, 0.5,
                                  gathered, transposed)
        inside = (slice(*rows), slice(*columns))
        np.testing.assert_array_equal(block[inside], whole[inside])
        outside = np.ones(start.shape, bool)
        outside[inside] = False
        np.testing.assert_array_equal(block[outside], start[outside])


@pytest.mark.parametrize("b, k, n", [(100, 784, 500), (9, 40, 3 * BLOCK_COLUMNS + 5)])
def test_a_block_of_columns_is_those_columns_of_the_whole_bit_for_bit_and_nothing_else(b, k, n):
    """The threads each sum blocks of columns: a block's numbers must not depend on the
    blocks (a seed's weights on any number of threads), and a block must leave the others'
    columns alone."""
    generator = np.random.default_rng(2)
    x, h = binary(generator, (b, k), 0.3), binary(generator, (b, n), 0.3)
    W = generator.standard_normal((k, n)).astype(np.float32)
    x_rows, x_bounds, _ = listed(x, False)
    h_rows, h_bounds, _ = listed(h, False)
    transposed = np.empty((n, BLOCK_COLUMNS), np.float32)
    whole, whole_visible = np.empty((b, n), np.float32), np.empty((b, k), np.float32)
    selected_rows_block(W, x_rows, x_bounds, whole, 0, n, 1.0, False)
    selected_columns_block(W, h_rows, h_bounds, whole_visible, 0, k, transposed)
    # a block that ends short of W's last columns (its last vectors read past its stop); one
    # that ends at W's edge (its last block moved left, its first lanes another block's
    # columns); a block of h W'
    for start, stop, width in ((BLOCK_COLUMNS, 2 * BLOCK_COLUMNS + 3, n),
                               (n - 7, n, n), (BLOCK_COLUMNS, k - 1, k)):
        block = np.full((b, width), np.nan, np.float32)
        if width == n:
            selected_rows_block(W, x_rows, x_bounds, block, start, stop, 1.0, False)
            expected = whole
        else:
            selected_columns_block(W, h_rows, h_bounds, block, start, stop, transposed)
            expected = whole_visible
        np.testing.assert_array_equal(block[:, start:stop], expected[:, start:stop])
        assert np.isnan(block[:, :start]).all() and np.isnan(block[:, stop:]).all()


@pytest.mark.parametrize("rows, columns, first, width",
                         [(40, 37, 3, 35), (16, 16, 0, 16), (70, 500, 6, 64), (5, 3, 1, 4)])
def test_rows_are_transposed_whole_squares_and_edges_alike(rows, columns, first, width):
    matrix = np.random.default_rng(3).standard_normal((rows, columns)).astype(np.float32)
    transposed = np.full((columns, BLOCK_COLUMNS), np.nan, np.float32)
    transpose_rows(matrix, first, width, transposed)
    np.testing.assert_array_equal(transposed[:, :width], matrix[first:first + width].T)
    assert np.isnan(transposed[:, width:]).all()


@pytest.fixture
def sums_taken(monkeypatch):
    """For each product given the ones of a sample, whether the cpu summed it (True) or
    multiplied it (False)."""
    taken = []
    decide = cpu.CPUBackend._sums_ones

    def counted(self, ones, *args):
        summed = decide(self, ones, *args)
        if ones is not None:
            taken.append(summed)
        return summed
    monkeypatch.setattr(cpu.CPUBackend, "_sums_ones", counted)
    return taken


def sigmoids_of(backend_name, a, b, trans_b, listed_ones, compute=True):
    backend = get_backend(backend_name)
    m = b.shape[0] if trans_b else b.shape[1]
    bias = np.linspace(-1, 1, m).astype(np.float32)
    out, sample = (np.empty((a.shape[0], m), np.float32) for _ in range(2))

    def product():
        ones = backend.list_ones(a, backend.ones_lists(*a.shape)) if listed_ones else None
        backend.gemm_sigmoid_bernoulli(a, b, out, bias, sample, 3, 1, 4, trans_b=trans_b,
                                       a_ones=ones)
    if compute:
        with backend.compute():
            product()
    else:
        product()
    return out, sample


@pytest.mark.parametrize("trans_b", [False, True])
def test_the_cpu_sums_a_binary_sample_and_follows_the_reference(trans_b, sums_taken):
    generator = np.random.default_rng(4)
    a = binary(generator, (100, 500 if trans_b else 784), 0.3)
    W = (generator.standard_normal((784, 500)) * 0.05).astype(np.float32)
    cpu_p, cpu_s = sigmoids_of("cpu", a, W, trans_b, listed_ones=True)
    assert sums_taken == [True]
    reference_p, reference_s = sigmoids_of("reference", a, W, trans_b, listed_ones=True)
    np.testing.assert_allclose(cpu_p, reference_p, rtol=2e-5, atol=2e-6)
    # a sample differs only where u falls between the two roundings of p
    assert np.mean(cpu_s != reference_s) < 1e-3


@pytest.mark.parametrize("density, compute", [(0.8, True), (0.3, False)])
def test_a_dense_sample_or_a_product_outside_compute_is_multiplied(density, compute,
                                                                   sums_taken):
    """Above BINARY_DENSITY_LIMIT BLAS is faster, and outside compute() nothing is listed:
    the same numbers as without the lists."""
    generator = np.random.default_rng(5)
    a = binary(generator, (100, 784), density)
    W = (generator.standard_normal((784, 500)) * 0.05).astype(np.float32)
    backend = get_backend("cpu")
    with backend.compute() if compute else contextlib.nullcontext():
        assert backend.list_ones(a, backend.ones_lists(*a.shape)) is None
    listed_ones = sigmoids_of("cpu", a, W, False, listed_ones=True, compute=compute)
    plain = sigmoids_of("cpu", a, W, False, listed_ones=False, compute=compute)
    for with_lists, without in zip(listed_ones, plain):
        np.testing.assert_array_equal(with_lists, without)
    assert not any(sums_taken)


@pytest.mark.parametrize("n, v, h", [(100, 784, 500), (100, 301, 1003), (100, 500, 500)])
@pytest.mark.parametrize("positive_listed", [False, True])
def test_the_weight_step_sums_binary_statistics_and_follows_the_reference(n, v, h,
                                                                          positive_listed,
                                                                          sums_taken):
    generator = np.random.default_rng(6)
    x1, x2 = generator.random((n, v)).astype(np.float32), binary(generator, (n, v), 0.3)
    h1, q2 = binary(generator, (n, h), 0.2), generator.random((n, h)).astype(np.float32)
    start_W = (generator.standard_normal((v, h)) * 0.01).astype(np.float32)
    start_velocity = (generator.standard_normal((v, h)) * 0.001).astype(np.float32)
    results = []
    for name in ("cpu", "reference"):
        backend = get_backend(name)
        W, velocity = start_W.copy(), start_velocity.copy()
        with backend.compute():
            h1_ones = backend.list_ones(h1, backend.ones_lists(n, h)) if positive_listed else None
            x2_ones = backend.list_ones(x2, backend.ones_lists(n, v))
            backend.contrastive_weight_step(W, velocity, x1, h1, x2, q2, 0.1 / n, 0.1 / n, 0.5,
                                            2e-5, positive_ones=h1_ones, negative_ones=x2_ones)
        results.append((W, velocity))
    assert sums_taken == [True, True] if positive_listed else [True]
    for summed, reference in zip(*results):
        np.testing.assert_allclose(summed, reference, rtol=1e-5, atol=1e-7)


def test_an_rbm_trained_with_the_sums_ends_where_the_products_take_it(monkeypatch,
                                                                      sums_taken):
    """CD-1 with sampled visible units: its four products of samples summed (visible
    inputs from h1, hidden inputs from x2, both statistics) against all multiplied.
    Only rounding differs (and, rarely, a sample where u falls between two roundings)."""
    import dlcore
    data = np.random.default_rng(7).random((400, 784)).astype(np.float32) ** 3
    weights = []
    for limit in (cpu.BINARY_DENSITY_LIMIT, -1.0):
        monkeypatch.setattr(cpu, "BINARY_DENSITY_LIMIT", limit)
        rbm = dlcore.BernoulliRBM(n_hidden=500, batch_size=100, epochs=2, momentum=0.5,
                                  seed=8, backend="cpu", verbose=False)
        rbm.fit(data)
        weights.append(rbm.W_)
        if limit > 0:  # 8 updates, four products summed in each
            assert sums_taken == [True] * 32
    difference = np.abs(weights[0] - weights[1])
    assert difference.mean() < 1e-6 and difference.max() < 1e-3
    assert not np.array_equal(weights[0], weights[1])  # the sums did run: other roundings


@pytest.mark.parametrize("n_chains", [None, 50])
def test_a_pcd_rbm_trained_with_the_sums_ends_where_the_products_take_it(monkeypatch, n_chains,
                                                                         sums_taken):
    """PCD, its chains the batch's rows (n_chains=0) or their own (dlcore.rbm.chains): the
    monitor's P(x2 | h1) from the data's h1, the chains' visible and hidden inputs from their
    binary states, and both statistics summed, against all multiplied."""
    import dlcore
    data = np.random.default_rng(7).random((400, 784)).astype(np.float32) ** 3
    weights = []
    for limit in (cpu.BINARY_DENSITY_LIMIT, -1.0):
        monkeypatch.setattr(cpu, "BINARY_DENSITY_LIMIT", limit)
        rbm = dlcore.BernoulliRBM(n_hidden=500, batch_size=100, epochs=2, momentum=0.5,
                                  sampler="pcd", n_chains=n_chains, seed=8, backend="cpu",
                                  verbose=False)
        rbm.fit(data)
        weights.append(rbm.W_)
        if limit > 0:
            # 8 updates of five products of samples each (two where only the data's h1 sums),
            # but a chains' state drawn with more than half ones (BINARY_DENSITY_LIMIT)
            assert all(sums_taken) and 8 * 4 <= len(sums_taken) <= 8 * 5
    difference = np.abs(weights[0] - weights[1])
    assert difference.mean() < 1e-5 and difference.max() < 1e-2
    assert not np.array_equal(weights[0], weights[1])  # the sums did run: other roundings


def test_a_sample_whose_products_are_too_small_to_sum_is_not_listed(monkeypatch):
    """`dlcore homework task1`'s RBM (batch 20, 784 x 49): its products are too small to
    split between the threads, so none is summed, and listing its samples would only cost
    time and, in a first run, the compilation of the lists."""
    import dlcore
    backend = get_backend("cpu")
    with backend.compute():
        small = binary(np.random.default_rng(0), (20, 49), 0.3)
        assert backend.list_ones(small, backend.ones_lists(20, 49, 784)) is None
        large = binary(np.random.default_rng(0), (100, 500), 0.3)
        assert backend.list_ones(large, backend.ones_lists(100, 500, 784)) is not None
        # the other side unknown: listed whatever the size, as before
        assert backend.list_ones(small, backend.ones_lists(20, 49)) is not None
    fills = []
    real_fill = cpu.SampleOnes.fill
    monkeypatch.setattr(cpu.SampleOnes, "fill",
                        lambda self, *args: fills.append(1) or real_fill(self, *args))
    data = (np.random.default_rng(1).random((100, 784)) < 0.2).astype(np.float32)
    dlcore.BernoulliRBM(n_hidden=49, batch_size=20, epochs=1, seed=0, backend="cpu",
                        verbose=False).fit(data)
    assert fills == []
    dlcore.BernoulliRBM(n_hidden=500, batch_size=100, epochs=1, seed=0, backend="cpu",
                        verbose=False).fit(data)
    assert len(fills) == 2   # h1 and x2 of its one batch


def test_a_batch_too_large_to_list_is_multiplied():
    """The lists cost two int32 arrays the size of the sample: past LISTED_ELEMENTS_LIMIT a
    trainer gets no buffers for them, and its products are multiplied."""
    backend = get_backend("cpu")
    assert backend.ones_lists(1, cpu.LISTED_ELEMENTS_LIMIT) is not None
    assert backend.ones_lists(2, cpu.LISTED_ELEMENTS_LIMIT // 2 + 1) is None
    with backend.compute():
        assert backend.list_ones(np.ones((2, 3), np.float32), None) is None


def test_the_doctors_check_runs_the_sums_and_would_see_them_wrong(monkeypatch, sums_taken):
    """`dlcore doctor` checks this CPU's vector code of the sums (LLVM's, made for it): its
    products are large enough to be summed, and a wrong sum fails the check."""
    from dlcore import doctor
    ok, detail = doctor.check_sample_products("cpu")
    assert ok, detail
    assert sums_taken == [True] * 4
    real_fill = cpu.SampleOnes.fill

    def one_missing(self, sample, parts):
        ones = real_fill(self, sample, parts)
        self.by_rows[1][0, 0] += 1   # row 0's list starts one later: its first one dropped
        return ones
    monkeypatch.setattr(cpu.SampleOnes, "fill", one_missing)
    ok, detail = doctor.check_sample_products("cpu")
    assert not ok, detail
