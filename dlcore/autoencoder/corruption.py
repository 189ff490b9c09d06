"""The corruption q(x~ | x) of a denoising autoencoder: the reference and the kernel body.

A denoising autoencoder (Vincent, Larochelle, Bengio & Manzagol 2008; Vincent et al. 2010)
encodes a corrupted copy x~ of each input and is trained to reconstruct the clean x. With nu the
corruption level (``corruption``) and, for element (n, i), u the uniform and z the standard
normal that Philox draws for it:

    masking           x~ = x [u >= nu]          each input forced to 0 with probability nu
    dropout           x~ = x [u >= nu] / (1-nu)  masking with the kept inputs scaled up, so
                                                 that E[x~] = x (Keras's Dropout(nu) in
                                                 training, "inverted" dropout)
    salt_and_pepper   x~ = 0 if u < nu / 2,     a fraction nu of the inputs set to their minimum
                      x~ = 1 if nu/2 <= u < nu,  or maximum (0 or 1) by a fair coin, the rest
                      x~ = x otherwise           kept
    gaussian          x~ = x + nu z              additive isotropic Gaussian noise, std nu

The numbers come from the counter-based generator (:mod:`dlcore.backend.rng`) at counter
(column // 4, row, step, ``STREAM_CORRUPT``), with the row of the mini-batch and the update number
as the step: one Philox call gives the four uniforms (or, by Box-Muller, the four normals) of
four neighbouring inputs, exactly as :func:`dlcore.backend.rng.uniform` and
:func:`dlcore.backend.rng.normal` draw them. A seed therefore corrupts a batch identically on
the reference, the CPU and the GPU.

Masking is Vincent et al.'s: unscaled, the clean input given unscaled to the trained encoder.
The encoder then learns from inputs a fraction nu dimmer than the clean ones it is used on, so
its code of a clean x is off, the more so the larger nu: on mnist-5k (500 hidden units, 10
epochs) at nu = 0.5 the held-out squared error per pixel was 0.0183 from the clean inputs and
0.0162 from corrupted ones. ``dropout`` removes that mismatch, as Keras's Dropout does in
training (the lecture's dropout keeps training unscaled and divides the weights at test time
instead: the same expectation): 0.0097 from clean inputs at nu = 0.5, 0.0063 at nu = 0.3
(masking: 0.0102). docs/autoencoders.md, "The corruption".
"""
import numpy as np

from dlcore.backend import rng
from dlcore.backend.registry import body
from dlcore.backend.rng import normal_from_bits, philox4x32, uniform_from_bits

CORRUPTION_KINDS = ("masking", "salt_and_pepper", "gaussian", "dropout")
MASKING, SALT_AND_PEPPER, GAUSSIAN, DROPOUT = 0, 1, 2, 3
CORRUPTION_CODES = dict(zip(CORRUPTION_KINDS, (MASKING, SALT_AND_PEPPER, GAUSSIAN, DROPOUT)))
_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)
_HALF = np.float32(0.5)


# -- reference ------------------------------------------------------------------------------
def corrupt(x, kind, level, seed, step, stream=rng.STREAM_CORRUPT, first_row=0):
    """x~ ~ q(x~ | x) (module docstring) of a batch x (N, n_visible), in x's dtype.

    ``level`` 0 returns x unchanged; ``step`` numbers the draw (the update number in
    training); ``stream`` is training's own unless a caller draws for something else;
    ``first_row``: the Philox row of row 0 (a shard of a data-parallel batch).
    """
    n, m = x.shape
    if kind == "gaussian":
        return (x + level * rng.normal(n, m, seed, stream, step,
                                       first_row=first_row)).astype(x.dtype)
    u = rng.uniform(n, m, seed, stream, step, first_row)
    if kind == "masking":
        return np.where(u >= np.float32(level), x, 0).astype(x.dtype)
    if kind == "dropout":   # float32 throughout, as the kernel computes it
        scale = _ONE / (_ONE - np.float32(level))
        return np.where(u >= np.float32(level), x.astype(np.float32) * scale, 0).astype(x.dtype)
    salt_or_pepper = np.where(u < np.float32(level) * _HALF, 0, 1)
    return np.where(u < np.float32(level), salt_or_pepper, x).astype(x.dtype)


# -- kernel ---------------------------------------------------------------------------------
@body
def corrupt_rows(row, first_block, last_block, x, out, kind, level, k0, k1, stream, step,
                 first_row):
    """Blocks of four inputs of one row: out = x~ (module docstring), the four uniforms (or
    normals) of one Philox call at counter (block, first_row + row, step, stream)."""
    n_columns = x.shape[1]
    half = level * _HALF
    scale = _ONE / (_ONE - level)
    global_row = np.uint64(row) + first_row
    for block in range(first_block, last_block):
        w0, w1, w2, w3 = philox4x32(np.uint64(block), global_row, step, stream, k0, k1)
        for lane in range(4):
            column = 4 * block + lane
            if column >= n_columns:
                break
            value = x[row, column]
            if kind == GAUSSIAN:   # normal_at's pairing: lanes 0, 1 from (w0, w1), 2, 3 (w2, w3)
                if lane < 2:
                    noise = normal_from_bits(w0, w1, lane == 1)
                else:
                    noise = normal_from_bits(w2, w3, lane == 3)
                out[row, column] = value + level * noise
                continue
            word = w0 if lane == 0 else (w1 if lane == 1 else (w2 if lane == 2 else w3))
            u = uniform_from_bits(word)
            if u >= level:
                out[row, column] = value * scale if kind == DROPOUT else value
            elif kind == MASKING or kind == DROPOUT:
                out[row, column] = _ZERO
            else:
                out[row, column] = _ZERO if u < half else _ONE
