"""One counter-based random number generator for every backend: Philox4x32-10.

Philox4x32-10 (Salmon, Moraes, Dror & Shaw, "Parallel random numbers: as easy as 1, 2, 3",
SC 2011) is the generator behind cuRAND's default and JAX. It is a *pure function*

    (w0, w1, w2, w3) = philox(counter = (c0, c1, c2, c3), key = (k0, k1))

of a 128-bit counter and a 64-bit key to four 32-bit words, so a random number depends only on
where it is used, never on which thread or device computes it or in what order. dlcore assigns
the counter words as

    c0 = column // 4     (one call gives the uniforms of four neighbouring units)
    c1 = row             (sample index within the array)
    c2 = step            (mini-batch update number, epoch, or call number)
    c3 = stream          (which random quantity: see the ``STREAM_*`` constants)

and the key is the model's 64-bit ``seed``. The word for element ``(row, column)`` is word
``column % 4``. The same seed therefore gives the same Bernoulli samples on the NumPy
reference, on any number of CPU threads and on the GPU, and a run can be resumed exactly by
remembering the step.

The functions decorated with :func:`dlcore.backend.registry.shared` are written once in plain
Python: NumPy calls them on arrays (the reference backend), Numba compiles them for the CPU
kernels and for ``numba.cuda`` device code. They use only integer arithmetic on ``np.uint64``
values below 2**32, so all three agree bit for bit; the known-answer vectors of the Random123
distribution are the oracle in ``tests/test_backend_rng.py``.
"""
import math
import secrets

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from .registry import shared

# Philox4x32 multipliers and Weyl key increments (Random123, philox.h).
PHILOX_M0 = np.uint64(0xD2511F53)
PHILOX_M1 = np.uint64(0xCD9E8D57)
PHILOX_W0 = np.uint64(0x9E3779B9)
PHILOX_W1 = np.uint64(0xBB67AE85)
MASK32 = np.uint64(0xFFFFFFFF)
SHIFT32 = np.uint64(32)
SHIFT8 = np.uint64(8)
TWO_TO_MINUS_24 = np.float32(1.0 / 16777216.0)
TWO_PI = np.float32(2.0 * math.pi)

# Streams: which random quantity a number feeds. Keep them distinct so that no two uses of
# randomness in a model ever share a counter.
STREAM_INIT = 0          # weight initialisation (step = 0)
STREAM_SHUFFLE = 1       # mini-batch order (step = epoch)
STREAM_BINARIZE = 2      # stochastic binarisation of data (step = call)
STREAM_SPLIT = 3         # train/validation splits (step = call)
STREAM_DROPOUT = 4       # dropout masks (step = update)
STREAM_AUGMENT = 5       # data augmentation (step = epoch)
STREAM_NOISE = 6         # input noise injection (step = update)
STREAM_CORRUPT = 7       # a denoising autoencoder's corruption q(x~ | x) (step = update)
STREAM_WEIGHT_NOISE = 8  # kernel_noise=, noise on weights (row = kernel row, step = update)
STREAM_BOOTSTRAP = 10    # an ensemble's bootstrap samples (step = member)
STREAM_MC_DROPOUT = 11   # Monte Carlo dropout masks of predict (row 0, step = draw)
STREAM_GIBBS = 16        # training chains: STREAM_GIBBS + 2 * t + (0 hidden | 1 visible)
STREAM_SWAP = 12         # parallel tempering's swaps in training (row = chain, column = pair,
#                          step = update)
STREAM_SAMPLE_START = (1 << 20) - 1   # rbm.sample's random start (step = call)
STREAM_SAMPLE = 1 << 20  # user sampling (gibbs, reconstruct): STREAM_SAMPLE + 2 * t + layer
# A DBN's streams, far above the RBMs' own (STREAM_GIBBS + 2k, STREAM_SAMPLE + 2k + layer):
STREAM_PROPAGATE = 1 << 24                   # states fed upwards: + layer (step = epoch)
STREAM_WAKE = (1 << 24) + (1 << 16)          # up-down's wake phase: + layer (step = update)
STREAM_SLEEP = (1 << 24) + (2 << 16)         # up-down's sleep phase: + layer (step = update)
STREAM_GENERATE = (1 << 24) + (3 << 16)      # generation: the start (step = 2 * call), random
#   labels (step = 2 * call + 1); STREAM_GENERATE + 1 + layer: the pass down (step = call)
# Likelihood estimates (dlcore.rbm.annealing, dlcore.dbn.bound), above every model's streams:
STREAM_AIS = 1 << 25     # AIS: + 0 the start (step 0), + 1 hidden, + 2 visible (step = temperature)
STREAM_RAISE = STREAM_AIS + 4    # RAISE's reverse chains: + 1 hidden, + 2 visible (same steps)
STREAM_BOUND = STREAM_AIS + 8    # a DBN's bound: + layer, the samples h ~ Q (step = sample)
# rbm.sample's parallel tempering: STREAM_SAMPLE_SWAP + t the swaps after Gibbs step t
# (row = chain, column = pair, step = call); below STREAM_PROPAGATE for t < 2**23
STREAM_SAMPLE_SWAP = 1 << 23


@shared
def philox_round(c0, c1, c2, c3, k0, k1):
    """One Philox S-box round: two 32x32 -> 64-bit products, their halves XOR-mixed."""
    product0 = PHILOX_M0 * c0
    product1 = PHILOX_M1 * c2
    return ((product1 >> SHIFT32) ^ c1 ^ k0, product1 & MASK32,
            (product0 >> SHIFT32) ^ c3 ^ k1, product0 & MASK32)


@shared
def _keyed_round(x0, x1, x2, x3, k0, k1, number):
    """Round ``number`` (0-9) of Philox: the key bumped ``number`` times by the Weyl constants."""
    bumps = np.uint64(number)
    return philox_round(x0, x1, x2, x3, (k0 + bumps * PHILOX_W0) & MASK32,
                        (k1 + bumps * PHILOX_W1) & MASK32)


@intrinsic
def _philox4x32_instructions(typingctx, c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 emitted straight as LLVM instructions: the same ten rounds as
    :func:`philox4x32`, on 64-bit registers holding 32-bit values (the products of two 32-bit
    words fit in 64 bits, so nothing wraps and the words agree bit for bit)."""
    word = types.uint64
    signature = types.UniTuple(word, 4)(word, word, word, word, word, word)

    def codegen(context, builder, signature, arguments):
        def constant(value):
            return ir.Constant(ir.IntType(64), int(value) & 0xFFFFFFFFFFFFFFFF)
        mask, shift = constant(MASK32), constant(SHIFT32)
        x0, x1, x2, x3, k0, k1 = arguments
        for number in range(10):
            round_k0 = builder.and_(builder.add(k0, constant(number * int(PHILOX_W0))), mask)
            round_k1 = builder.and_(builder.add(k1, constant(number * int(PHILOX_W1))), mask)
            product0 = builder.mul(constant(PHILOX_M0), x0)
            product1 = builder.mul(constant(PHILOX_M1), x2)
            x0, x1, x2, x3 = (
                builder.xor(builder.xor(builder.lshr(product1, shift), x1), round_k0),
                builder.and_(product1, mask),
                builder.xor(builder.xor(builder.lshr(product0, shift), x3), round_k1),
                builder.and_(product0, mask))
        return context.make_tuple(builder, signature.return_type, [x0, x1, x2, x3])
    return signature, codegen


def _philox4x32_on_cpu(c0, c1, c2, c3, k0, k1):
    """The CPU kernels' Philox: the instructions above, so that a kernel compiles in seconds.

    Numba types and inlines a registered function call by call; the forty calls of the written
    out rounds cost every kernel that draws random numbers 10-30 s of compilation on a 2-core
    machine, against 1-3 s for this one call (the machine code is the same)."""
    return _philox4x32_instructions(np.uint64(c0), np.uint64(c1), np.uint64(c2),
                                    np.uint64(c3), np.uint64(k0), np.uint64(k1))


@shared(cpu_implementation=_philox4x32_on_cpu)
def philox4x32(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10: four random 32-bit words from a 128-bit counter and a 64-bit key.

    Every argument and result is an ``np.uint64`` (scalar or array) holding a 32-bit value.
    Ten rounds, the key bumped by the Weyl constants between rounds, written out: a loop here,
    inlined into a kernel's own loop, trips Numba's IR checks.
    """
    x0, x1, x2, x3 = _keyed_round(c0, c1, c2, c3, k0, k1, 0)
    x0, x1, x2, x3 = _keyed_round(x0, x1, x2, x3, k0, k1, 1)
    x0, x1, x2, x3 = _keyed_round(x0, x1, x2, x3, k0, k1, 2)
    x0, x1, x2, x3 = _keyed_round(x0, x1, x2, x3, k0, k1, 3)
    x0, x1, x2, x3 = _keyed_round(x0, x1, x2, x3, k0, k1, 4)
    x0, x1, x2, x3 = _keyed_round(x0, x1, x2, x3, k0, k1, 5)
    x0, x1, x2, x3 = _keyed_round(x0, x1, x2, x3, k0, k1, 6)
    x0, x1, x2, x3 = _keyed_round(x0, x1, x2, x3, k0, k1, 7)
    x0, x1, x2, x3 = _keyed_round(x0, x1, x2, x3, k0, k1, 8)
    return _keyed_round(x0, x1, x2, x3, k0, k1, 9)


@shared
def uniform_from_bits(word):
    """A float32 uniform on [0, 1) from the top 24 bits of a 32-bit word (exact in float32)."""
    return np.float32(word >> SHIFT8) * TWO_TO_MINUS_24


@shared
def bernoulli(probability, word):
    """1 with the given probability, else 0: ``u < p`` with ``u`` from the word."""
    return np.float32(uniform_from_bits(word) < probability)


@shared
def normal_from_bits(word_a, word_b, use_sine):
    """A standard normal by the Box-Muller transform of two words.

    z = sqrt(-2 ln u1) * cos(2 pi u2)   (or sin: the pair's second, independent normal)
    with u1 on (0, 1] so that the logarithm is finite.
    """
    u1 = (np.float32(word_a >> SHIFT8) + np.float32(1.0)) * TWO_TO_MINUS_24
    u2 = uniform_from_bits(word_b)
    radius = math.sqrt(np.float32(-2.0) * math.log(u1))
    if use_sine:
        return np.float32(radius * math.sin(TWO_PI * u2))
    return np.float32(radius * math.cos(TWO_PI * u2))


@shared
def normal_at(row, column, k0, k1, stream, step):
    """The standard normal of element (row, column): words (0, 1) give columns 4b and 4b+1,
    words (2, 3) give 4b+2 and 4b+3 (cosine, then sine of each pair)."""
    w0, w1, w2, w3 = philox4x32(np.uint64(column // 4), np.uint64(row), step, stream, k0, k1)
    lane = column % 4
    if lane < 2:
        return normal_from_bits(w0, w1, lane == 1)
    return normal_from_bits(w2, w3, lane == 3)


def new_seed():
    """A fresh 63-bit seed from the operating system, for ``seed=None``: it is recorded in the
    model so that the run can still be repeated."""
    return secrets.randbits(63)


def check_seed(seed):
    """Return ``seed`` as an int in [0, 2**64), or a fresh one for None; reject anything else."""
    if seed is None:
        return new_seed()
    if isinstance(seed, (np.random.RandomState, np.random.Generator)):
        # scikit-learn's random_state takes these; a Philox key is a number
        draw = ("rs.randint(2**31)" if isinstance(seed, np.random.RandomState)
                else "int(rs.integers(2**32))")
        raise TypeError(f"seed must be a non-negative integer or None, got a "
                        f"{type(seed).__name__} rs: dlcore's seed is the key of its "
                        f"counter-based generator, not a generator object; pass an integer "
                        f"(seed=0), or one drawn from it (seed={draw})")
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be a non-negative integer or None, got {seed!r}")
    seed = int(seed)
    if not 0 <= seed < 2 ** 64:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    return seed


#: {seed: its key words}: the kernels ask for a model's key at every batch (a dropout
#: layer's, an RBM's), where checking the seed and making the words cost ~2 us a call
_KEYS = {}


def key_from_seed(seed):
    """The Philox key words (k0, k1) of a seed: its low and high 32 bits."""
    if type(seed) is int:
        key = _KEYS.get(seed)
        if key is not None:
            return key
    seed = check_seed(seed)
    key = np.uint64(seed & 0xFFFFFFFF), np.uint64(seed >> 32)
    if len(_KEYS) >= 256:   # a caller drawing fresh seeds: keep the few in use
        _KEYS.clear()
    _KEYS[seed] = key
    return key


def random_words(n_rows, n_columns, seed, stream, step=0, first_row=0):
    """The raw 32-bit words of a (n_rows, n_columns) array, as uint64, in pure NumPy.

    Element (r, c) is word ``c % 4`` of ``philox4x32((c // 4, first_row + r, step, stream),
    key(seed))``: exactly what every kernel draws for that element. ``first_row``: the global
    row of the array's first row, when it is a shard of a larger batch (data-parallel
    training, :mod:`dlcore.distributed`), so that a shard draws what the whole batch would.
    """
    k0, k1 = key_from_seed(seed)
    n_blocks = -(-n_columns // 4)
    block = np.broadcast_to(np.arange(n_blocks, dtype=np.uint64), (n_rows, n_blocks))
    rows = np.arange(first_row, first_row + n_rows, dtype=np.uint64)
    row = np.broadcast_to(rows[:, None], (n_rows, n_blocks))
    words = philox4x32(block, row, np.uint64(step), np.uint64(stream), k0, k1)
    return np.stack(words, axis=-1).reshape(n_rows, 4 * n_blocks)[:, :n_columns]


def uniform(n_rows, n_columns, seed, stream, step=0, first_row=0):
    """float32 uniforms on [0, 1) of shape (n_rows, n_columns), as every backend draws them
    (``first_row`` as for :func:`random_words`)."""
    return uniform_from_bits(random_words(n_rows, n_columns, seed, stream, step, first_row))


@njit(cache=True)
def _fill_normal(out, k0, k1, stream, step, first_row):
    for row in range(out.shape[0]):
        for column in range(out.shape[1]):
            out[row, column] = normal_at(np.uint64(row) + first_row, column, k0, k1, stream,
                                         step)


def normal(n_rows, n_columns, seed, stream, step=0, scale=1.0, first_row=0):
    """float32 normals N(0, scale**2) of shape (n_rows, n_columns), element (r, c) drawn as by
    :func:`normal_at` at row ``first_row + r`` (the same compiled code the kernels use)."""
    k0, k1 = key_from_seed(seed)
    out = np.empty((n_rows, n_columns), dtype=np.float32)
    _fill_normal(out, k0, k1, np.uint64(stream), np.uint64(step), np.uint64(first_row))
    if scale != 1.0:
        out *= np.float32(scale)
    return out


def permutation(n, seed, stream=STREAM_SHUFFLE, step=0):
    """A permutation of range(n), the argsort of one random word per index (stable on ties).

    Sorted as the 64-bit numbers ``word * 2^32 + index``, whose low halves are then that
    argsort: distinct, so any sort gives it, and NumPy sorts 64-bit integers with the CPU's
    vector units (60,000 indices in 0.6 ms against 3.8 ms for a stable argsort)."""
    keys = random_words(n, 1, seed, stream, step)[:, 0]
    if n >= 1 << 32:
        return np.argsort(keys, kind="stable")
    indices = np.arange(n, dtype=np.uint64)
    packed = np.sort((keys << np.uint64(32)) | indices)
    return (packed & np.uint64(0xFFFFFFFF)).astype(np.int64)


def layer_seed(model_seed, layer_index):
    """A 64-bit key for layer ``layer_index`` of a model seeded with ``model_seed``: the first
    two Philox words of counter (0, layer_index, 0, STREAM_INIT),

        key = w0 + 2^32 w1,   (w0, w1, w2, w3) = philox4x32((0, layer_index, 0, STREAM_INIT), seed)

    A network's layers draw their initial weights and dropout masks from their own key, a DBN's
    RBMs their chains, so adding a layer leaves the others' draws unchanged."""
    return layer_seeds(model_seed, 1, int(layer_index))[0]


def layer_seeds(model_seed, count, first_index=0):
    """The keys :func:`layer_seed` gives layers ``first_index`` to ``first_index + count - 1``,
    drawn at once: a network builds its layers from them (one draw per layer cost about 0.1 ms,
    seconds for the thousands of layers of a large imported model, built three times when its
    optimiser's state is adopted)."""
    words = random_words(int(count), 2, model_seed, STREAM_INIT, 0,
                         first_row=int(first_index)).tolist()
    return [low | (high << 32) for low, high in words]
