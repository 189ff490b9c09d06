"""The operations of an autoencoder's training step, chosen once per backend.

The trainer (:mod:`dlcore.autoencoder.trainer`) is written once against four operations, each
writing into arrays the trainer allocated:

    corrupt    x~ ~ q(x~ | x)
    encode     h = s(x~ W + b)
    decode     r = s'(h W' + c)
    backward   every dJ/dtheta, and the epoch's monitors (loss, squared error, sparsity
               penalty, summed per unit)

* :class:`ReferenceOps` (a backend that does not launch kernels: the ``reference``) evaluates
  the NumPy functions of :mod:`dlcore.autoencoder.model` and
  :mod:`dlcore.autoencoder.corruption`: the equations a student reads, and the oracle.
* :class:`KernelOps` (``cpu`` and ``cuda``) runs the backend's GEMM and kernel bodies in place:
  the corruption body, the layers' bias-plus-activation and activation-gradient bodies
  (:mod:`dlcore.layers.bodies`) and the autoencoder's own (:mod:`dlcore.autoencoder.bodies`).

:func:`ops_for` picks one by asking the backend what it can do, as :mod:`dlcore.layers.ops`
does for the layers.
"""
from typing import NamedTuple

import numpy as np

from dlcore.backend.rng import STREAM_CORRUPT, key_from_seed
from dlcore.layers.bodies import (
    ACTIVATION_CODES,
    activation_gradient_rows,
    bias_gradient_span,
    unit_bias_activation_rows,
)

from . import model
from .bodies import LOSS_CODES, reconstruction_delta_span, sparsity_delta_span
from .corruption import CORRUPTION_CODES, corrupt, corrupt_rows


class Monitors(NamedTuple):
    """Per-unit sums over an epoch, on the backend: the loss and the squared error of every
    visible unit (n_visible,), the KL penalty of every hidden unit (n_hidden,)."""

    loss: object
    squared_error: object
    penalty: object


class Workspace(NamedTuple):
    """The batch buffers ``backward`` may use: delta_r (B, n_visible), the back-propagated
    error and delta_h (B, n_hidden), and a (n_hidden,) scratch vector; views of the first N
    rows are taken for a batch of N <= B."""

    delta_r: object
    back: object
    delta_h: object
    scratch: object


class BatchActivations(NamedTuple):
    """Data-parallel training: the batch a step sees is a shard of a global batch of ``rows``
    rows, whose hidden column sums ``sums`` (n_hidden,) give the sparsity penalty's rho^; one
    rank of the group adds the batch's KL penalty to its monitor (``penalty_weight`` 1), the
    others 0."""

    sums: object
    rows: int
    penalty_weight: float


class ReferenceOps:
    """The operations as the NumPy functions of :mod:`dlcore.autoencoder.model`."""

    def __init__(self, backend):
        self.backend = backend

    def corrupt(self, x, out, kind, level, seed, step, stream=STREAM_CORRUPT, first_row=0):
        out[...] = corrupt(x, kind, level, seed, step, stream, first_row)

    def encode(self, x, W, hidden_bias, activation, out):
        out[...] = model.encode(x, W, hidden_bias, activation)

    def decode(self, h, W, tied, visible_bias, decoder_activation, out):
        W_decoder = W.T if tied else W
        out[...] = model.decode(h, W_decoder, visible_bias, decoder_activation)

    def column_sums(self, h, out):
        out[...] = h.sum(axis=0)

    def backward(self, x, x_tilde, h, r, parameters, grads, options, monitors, workspace,
                 batch=None):
        batch_sums = None if batch is None else (batch.sums, batch.rows)
        for name, gradient in model.backward(x, x_tilde, h, r, parameters, **options,
                                             batch_sums=batch_sums).items():
            grads[name][...] = gradient
        monitors.loss[...] += model.pixel_losses(x, r, options["loss"]).sum(axis=0)
        monitors.squared_error[...] += ((r - x) ** 2).sum(axis=0)
        if options["sparsity_target"] is not None:
            penalty = model.unit_kl(h, options["sparsity_target"], batch_sums)
            monitors.penalty[...] += penalty if batch is None else batch.penalty_weight * penalty


class KernelOps:
    """The operations of :class:`ReferenceOps` as GEMMs and kernel bodies, in place, on a
    backend that ``launches_kernels``."""

    def __init__(self, backend):
        self.backend = backend

    def corrupt(self, x, out, kind, level, seed, step, stream=STREAM_CORRUPT, first_row=0):
        k0, k1 = key_from_seed(seed)
        n, m = x.shape
        self.backend.launch_rows(corrupt_rows, n, -(-m // 4), x, out, CORRUPTION_CODES[kind],
                                 np.float32(level), k0, k1, np.uint64(stream),
                                 np.uint64(step), np.uint64(first_row), work=x.size)

    def _bias_activation(self, out, bias, activation):
        """out <- activation(out + bias) of an (N, units) product, as a Dense layer does."""
        n, units = out.shape
        self.backend.launch_rows(unit_bias_activation_rows, n, units, out, bias,
                                 ACTIVATION_CODES[activation])

    def encode(self, x, W, hidden_bias, activation, out):
        self.backend.gemm(x, W, out)
        self._bias_activation(out, hidden_bias, activation)

    def decode(self, h, W, tied, visible_bias, decoder_activation, out):
        self.backend.gemm(h, W, out, trans_b=tied)     # tied: W' = W^T
        self._bias_activation(out, visible_bias, decoder_activation)

    def column_sums(self, h, out):
        """out[j] = sum_n h[n, j] (the layers' bias-gradient body)."""
        n, n_hidden = h.shape
        self.backend.launch_1d(bias_gradient_span, n_hidden, h.reshape(-1), out, n, 1,
                               n_hidden, 1, work=h.size)

    def backward(self, x, x_tilde, h, r, parameters, grads, options, monitors, workspace,
                 batch=None):
        """delta_r (reconstruction_delta_span); back = delta_r W'^T (gemm) plus the sparsity
        term (sparsity_delta_span); delta_h = back * s'(a_h) (activation_gradient_rows); the
        weight gradients (gemm: x~' delta_h, plus delta_r' h when tied, else h' delta_r) and
        the bias gradients (bias_gradient_span)."""
        be = self.backend
        n, n_visible = x.shape
        n_hidden = h.shape[1]
        delta_r, back = workspace.delta_r[:n], workspace.back[:n]
        delta_h = workspace.delta_h[:n]
        be.launch_1d(reconstruction_delta_span, n_visible, x, r, delta_r, monitors.loss,
                     monitors.squared_error, LOSS_CODES[options["loss"]],
                     options["decoder_activation"] == "sigmoid", np.float32(1.0 / n),
                     work=x.size)
        tied = options["tied"]
        be.gemm(delta_r, parameters["W"] if tied else parameters["W_decoder"], back,
                trans_b=not tied)
        if options["sparsity_target"] is not None:
            if batch is not None and batch.sums is not workspace.scratch:
                be.copy_into(workspace.scratch, batch.sums)   # the span reads them there
            be.launch_1d(sparsity_delta_span, n_hidden, h, back, workspace.scratch,
                         monitors.penalty, np.float32(options["sparsity_target"]),
                         np.float32(options["sparsity_cost"]),
                         np.float32(n if batch is None else batch.rows),
                         np.float32(1.0 if batch is None else batch.penalty_weight),
                         batch is not None, work=h.size)
        be.launch_rows(activation_gradient_rows, n, n_hidden, h.reshape(n, 1, n_hidden),
                       back.reshape(n, 1, n_hidden), delta_h.reshape(-1),
                       ACTIVATION_CODES[options["activation"]], n_hidden, 0)
        be.gemm(x_tilde, delta_h, grads["W"], trans_a=True)
        if tied:
            be.gemm(delta_r, h, grads["W"], trans_a=True, beta=1.0)
        else:
            be.gemm(h, delta_r, grads["W_decoder"], trans_a=True)
        be.launch_1d(bias_gradient_span, n_hidden, delta_h.reshape(-1), grads["hidden_bias"],
                     n, 1, n_hidden, 1, work=h.size)
        be.launch_1d(bias_gradient_span, n_visible, delta_r.reshape(-1),
                     grads["visible_bias"], n, 1, n_visible, 1, work=x.size)


def ops_for(backend):
    """The autoencoder operations of ``backend``: its kernels when it ``launches_kernels``,
    else the NumPy reference."""
    return KernelOps(backend) if backend.launches_kernels else ReferenceOps(backend)
