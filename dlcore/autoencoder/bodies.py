"""The autoencoder's own kernel bodies, written once for the ``cpu`` and ``cuda`` backends.

Everything else of a training step is shared with the rest of dlcore: the products go to the
backend's GEMM (BLAS, cuBLAS or the tiled kernel), the activations and their derivatives are the
layers' bodies (:mod:`dlcore.layers.bodies`), the corruption is
:func:`dlcore.autoencoder.corruption.corrupt_rows` and the update is the SGD-with-momentum body
of :mod:`dlcore.optimizers`. What is left is the autoencoder's own maths, each the kernel twin of
a function of :mod:`dlcore.autoencoder.model`:

* :func:`reconstruction_delta_span`: delta_r = dJ/da_r of the reconstruction loss through the
  output activation (:func:`~dlcore.autoencoder.model.output_delta`), with the loss and the
  squared error summed per visible unit for the epoch's monitors;
* :func:`sparsity_delta_span`: the KL sparsity penalty's gradient added to the hidden units'
  back-propagated error (:func:`~dlcore.autoencoder.model.kl_sparsity_gradient`), with the
  penalty summed per hidden unit.

Both run one column (visible or hidden unit) per index of ``launch_1d``, over every row of the
batch: the sums per unit need no atomics, and the CPU reads each row's span contiguously.
The cross-entropy here is summed over the visible units (Vincent et al. 2008), where
:mod:`dlcore.losses` averages it over the outputs as Keras does, and it works from the
reconstruction r itself, which the autoencoder keeps for its monitors and its picture.
"""
import math

import numpy as np

from dlcore.backend.registry import body
from dlcore.losses import CLIP

CROSS_ENTROPY, SQUARED_ERROR = 0, 1
LOSS_CODES = {"cross_entropy": CROSS_ENTROPY, "mse": SQUARED_ERROR}
_ONE = np.float32(1.0)
_TWO = np.float32(2.0)


@body
def reconstruction_delta_span(first, last, x, r, delta, loss_sum, squared_sum, loss_code,
                              sigmoid_output, scale):
    """Visible units first..last-1 of a batch x, r (N, n_visible):

        delta = scale (r - x)                      cross-entropy (sigmoid output)
        delta = scale 2 (r - x) [r (1 - r)]        squared error [through a sigmoid output]
        loss_sum += sum_n l(x_n, r_n),  squared_sum += sum_n (r_n - x_n)^2   per unit
    """
    low = np.float32(CLIP)
    loss_sum, squared_sum = loss_sum[first:last], squared_sum[first:last]
    for row in range(x.shape[0]):
        targets, outputs, deltas = x[row, first:last], r[row, first:last], \
            delta[row, first:last]
        for i in range(deltas.shape[0]):
            target, output = targets[i], outputs[i]
            difference = output - target
            squared_sum[i] += difference * difference
            if loss_code == CROSS_ENTROPY:
                p = min(max(output, low), _ONE - low)
                loss_sum[i] -= target * np.float32(math.log(p)) + (_ONE - target) * np.float32(
                    math.log(_ONE - p))
                deltas[i] = scale * difference
            else:
                loss_sum[i] += difference * difference
                gradient = _TWO * difference
                if sigmoid_output:
                    gradient *= output * (_ONE - output)
                deltas[i] = scale * gradient


@body
def sparsity_delta_span(first, last, h, back, scratch, penalty_sum, target, cost, batch_rows,
                        penalty_weight, sums_given):
    """Hidden units first..last-1 of a batch h (N, n_hidden): rho^_j = mean_n h_nj (clipped to
    [1e-7, 1 - 1e-7]), then for every row

        back[n, j] += cost (-rho / rho^_j + (1 - rho) / (1 - rho^_j)) / N
        penalty_sum[j] += penalty_weight KL(rho || rho^_j)

    ``scratch`` (n_hidden,) holds the column sums, then the terms: rows outside, units inside,
    so that the CPU reads every row's span contiguously. One process: ``batch_rows`` = N,
    ``penalty_weight`` 1, ``sums_given`` False. A shard of a larger batch (data-parallel
    training): ``sums_given``, ``scratch`` holds that batch's column sums already and
    ``batch_rows`` its rows (:func:`~dlcore.autoencoder.model.mean_activation`)."""
    low = np.float32(CLIP)
    n = np.float32(h.shape[0])
    terms, penalties = scratch[first:last], penalty_sum[first:last]
    if not sums_given:
        for i in range(terms.shape[0]):
            terms[i] = np.float32(0.0)
        for row in range(h.shape[0]):
            values = h[row, first:last]
            for i in range(terms.shape[0]):
                terms[i] += values[i]
    for i in range(terms.shape[0]):
        q = min(max(terms[i] / batch_rows, low), _ONE - low)
        penalties[i] += penalty_weight * (target * np.float32(math.log(target / q)) + (
            _ONE - target) * np.float32(math.log((_ONE - target) / (_ONE - q))))
        terms[i] = cost * (-target / q + (_ONE - target) / (_ONE - q)) / n
    for row in range(back.shape[0]):
        errors = back[row, first:last]
        for i in range(terms.shape[0]):
            errors[i] += terms[i]
