"""Philox4x32-10: oracles are the Random123 known-answer vectors and the NumPy evaluation of the
same source; every compiled copy (Numba CPU, CUDA simulator) must agree bit for bit."""
import numpy as np
import pytest
from numba import cuda, njit

from conftest import requires_cuda
from dlcore.backend import rng

U = np.uint64

# Random123's kat_vectors, philox4x32 10: counter (4 words), key (2 words) -> output (4 words).
KNOWN_ANSWERS = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF, 0xFFFFFFFF), (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@njit(cache=True)
def _compiled_philox(counter, key):
    return rng.philox4x32(counter[0], counter[1], counter[2], counter[3], key[0], key[1])


@pytest.mark.parametrize("counter, key, expected", KNOWN_ANSWERS)
def test_philox_matches_random123_known_answers_in_numpy(counter, key, expected):
    words = rng.philox4x32(*(U(c) for c in counter), *(U(k) for k in key))
    assert [int(w) for w in words] == list(expected)


@pytest.mark.parametrize("counter, key, expected", KNOWN_ANSWERS)
def test_philox_matches_random123_known_answers_when_compiled(counter, key, expected):
    words = _compiled_philox(np.array(counter, dtype=np.uint64), np.array(key, dtype=np.uint64))
    assert [int(w) for w in words] == list(expected)


def test_compiled_philox_equals_numpy_philox_on_random_counters(random_state):
    counters = random_state.integers(0, 2 ** 32, size=(200, 4), dtype=np.uint64)
    keys = random_state.integers(0, 2 ** 32, size=(200, 2), dtype=np.uint64)
    vectorised = np.stack(rng.philox4x32(*counters.T, *keys.T), axis=1)
    compiled = np.array([_compiled_philox(c, k) for c, k in zip(counters, keys)])
    np.testing.assert_array_equal(vectorised, compiled)


@requires_cuda
def test_cuda_philox_equals_numpy_philox():
    from dlcore.backend.cuda import device_function
    philox = device_function(rng.philox4x32)

    # (``cuda`` must be a module global: the simulator swaps it inside kernels)
    @cuda.jit
    def words_kernel(out, counters, k0, k1):
        i = cuda.grid(1)
        if i < counters.shape[0]:
            w0, w1, w2, w3 = philox(counters[i, 0], counters[i, 1], counters[i, 2],
                                    counters[i, 3], k0, k1)
            out[i, 0], out[i, 1], out[i, 2], out[i, 3] = w0, w1, w2, w3

    counters = np.arange(24, dtype=np.uint64).reshape(6, 4) * U(0x9E3779B9) % U(2 ** 32)
    out = cuda.to_device(np.zeros((6, 4), dtype=np.uint64))
    words_kernel[1, 8](out, cuda.to_device(counters), U(7), U(11))
    expected = np.stack(rng.philox4x32(*counters.T, U(7), U(11)), axis=1)
    np.testing.assert_array_equal(out.copy_to_host(), expected)


def test_element_uses_word_column_mod_four_of_its_block():
    seed, stream, step = 2 ** 40 + 5, 17, 3
    words = rng.random_words(3, 9, seed, stream, step)
    k0, k1 = rng.key_from_seed(seed)
    block = rng.philox4x32(U(2), U(1), U(step), U(stream), k0, k1)   # columns 8..11 of row 1
    assert int(words[1, 8]) == int(block[0])


def test_uniforms_are_in_unit_interval_and_reproducible():
    first = rng.uniform(100, 37, seed=3, stream=rng.STREAM_GIBBS, step=9)
    again = rng.uniform(100, 37, seed=3, stream=rng.STREAM_GIBBS, step=9)
    assert first.dtype == np.float32 and first.shape == (100, 37)
    assert first.min() >= 0.0 and first.max() < 1.0
    np.testing.assert_array_equal(first, again)
    assert abs(first.mean() - 0.5) < 0.02


@pytest.mark.parametrize("change", [{"seed": 4}, {"stream": rng.STREAM_GIBBS + 1}, {"step": 10}])
def test_changing_seed_stream_or_step_changes_the_numbers(change):
    arguments = {"seed": 3, "stream": rng.STREAM_GIBBS, "step": 9}
    base = rng.uniform(10, 10, **arguments)
    other = rng.uniform(10, 10, **{**arguments, **change})
    assert np.mean(base == other) < 0.05


def test_normals_have_zero_mean_and_unit_variance():
    z = rng.normal(400, 250, seed=1, stream=rng.STREAM_INIT)
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1.0) < 0.01
    np.testing.assert_array_equal(z, rng.normal(400, 250, seed=1, stream=rng.STREAM_INIT))


def test_permutation_is_a_reproducible_shuffle():
    order = rng.permutation(1000, seed=5, step=2)
    np.testing.assert_array_equal(np.sort(order), np.arange(1000))
    np.testing.assert_array_equal(order, rng.permutation(1000, seed=5, step=2))
    assert not np.array_equal(order, rng.permutation(1000, seed=5, step=3))


def test_permutation_is_the_stable_argsort_of_the_words_ties_included():
    n = 200_000                  # ~5 equal pairs among 32-bit words (birthday bound)
    words = rng.random_words(n, 1, 11, rng.STREAM_SHUFFLE, 4)[:, 0]
    assert len(np.unique(words)) < n
    np.testing.assert_array_equal(rng.permutation(n, 11, rng.STREAM_SHUFFLE, 4),
                                  np.argsort(words, kind="stable"))


@pytest.mark.parametrize("seed", [-1, 2 ** 64, 1.5, "7", True])
def test_bad_seeds_are_refused(seed):
    with pytest.raises((ValueError, TypeError), match="seed"):
        rng.check_seed(seed)


def test_every_stream_constant_is_distinct():
    """No two uses of randomness share a counter (the rule above the STREAM_* constants)."""
    streams = {name: value for name, value in vars(rng).items() if name.startswith("STREAM_")}
    assert len(set(streams.values())) == len(streams), streams


@pytest.mark.parametrize("layer_index", [0, 5, 2 ** 32 - 1])
def test_layer_seed_is_its_own_row_of_philox_without_the_rows_before(layer_index):
    # each layer's key is drawn alone: drawing every row up to it made a network of n layers
    # cost n**2 / 2 rows (and a large index a MemoryError)
    seed = 2 ** 63 + 12345
    k0, k1 = rng.key_from_seed(seed)
    w0, w1, _, _ = rng.philox4x32(U(0), U(layer_index), U(0), U(rng.STREAM_INIT), k0, k1)
    expected = int(w0) | (int(w1) << 32)
    assert rng.layer_seed(seed, layer_index) == expected
    assert rng.layer_seeds(seed, 3, layer_index)[0] == expected


def test_layer_seeds_at_once_are_the_layer_seeds_one_by_one():
    assert rng.layer_seeds(7, 6, 2) == [rng.layer_seed(7, index) for index in range(2, 8)]
    assert rng.layer_seeds(7, 0) == []
