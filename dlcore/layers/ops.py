"""The operations a layer runs, chosen once per backend.

A layer is written once against this small interface (``dense_forward``, ``conv2d_backward``,
``pool_forward``, ...). Every method writes its results into arrays the layer allocated (the
``out`` style of the backends), so the fast implementation can reuse its buffers:

* :class:`ReferenceOps` (a backend that does not launch kernels: the ``reference``) evaluates
  the readable NumPy functions of :mod:`dlcore.layers.reference` and copies the results in: what
  a student reads, and the oracle.
* :class:`KernelOps` (a backend that ``launches_kernels``: ``cpu`` and ``cuda``) runs the kernel
  bodies of :mod:`dlcore.layers.bodies` through the backend's launchers and its GEMM, in place,
  without temporaries. On a backend with ``host_kernels`` (the ``cpu``) convolutions take the
  CPU's own strategies of :mod:`dlcore.layers.cpu_convolution`, imported only then.

:func:`ops_for` picks one by asking the backend what it can do. The reference ignores the
workspace.
"""
import math

import numpy as np

from dlcore.backend.rng import STREAM_DROPOUT, key_from_seed
from dlcore.layers import reference as ref
from dlcore.layers.bodies import (
    ACTIVATION_CODES,
    POOL_CODES,
    SOFTMAX,
    accumulate_span,
    activation_gradient_rows,
    activity_gradient_span,
    activity_penalty_rows,
    batch_norm_gradient_rows,
    batch_norm_rows,
    bias_activation_rows,
    bias_gradient_span,
    broadcast_span,
    broadcast_sum_span,
    channel_gradient_sums_span,
    channel_moments_span,
    chosen_gradient_span,
    col2im_rows,
    conv_geometry,
    copy_span,
    dense_gradient_span,
    dot_gradient_rows,
    dot_rows,
    dropout_rows,
    extremum_span,
    im2col_rows,
    input_activation_gradient_span,
    layer_norm_affine_gradient_span,
    layer_norm_gradient_rows,
    layer_norm_rows,
    leaky_relu_gradient_span,
    leaky_relu_span,
    locally_connected_bias_gradient_span,
    locally_connected_input_rows,
    locally_connected_kernel_gradient_rows,
    locally_connected_rows,
    multiply_span,
    place_columns_rows,
    pool_gradient_rows,
    pool_gradient_tiles_rows,
    pool_rows,
    rescale_span,
    scale_columns_rows,
    softmax_rows,
    take_columns_rows,
    unit_bias_activation_rows,
    upsample_bilinear_gradient_rows,
    upsample_bilinear_rows,
    upsample_nearest_gradient_rows,
    upsample_nearest_rows,
)


def _windowed_backward(reference_backward, x, kernel, y, grad_y, window, activation,
                       grad_kernel, grad_bias, grad_x):
    """The reference backward pass of a windowed layer (convolution, transposed or locally
    connected): dL/dz through the activation, then ``reference_backward``'s gradients of the
    input, kernel and bias written into the layer's arrays (the input's when asked for)."""
    grad_z = ref.activation_backward(activation, y, grad_y)
    gx, gk, gb = reference_backward(x, kernel, grad_z, window)
    grad_kernel[...], grad_bias[...] = gk, gb
    if grad_x is not None:
        grad_x[...] = gx


class ReferenceOps:
    """Layer operations as the NumPy functions of :mod:`dlcore.layers.reference`."""

    name = "reference"

    def __init__(self, backend):
        self.backend = backend

    # dense
    def dense_forward(self, x, kernel, bias, activation, out, workspace):
        out[...] = ref.activation_forward(activation, ref.dense_forward(x, kernel, bias))

    def dense_backward(self, x, kernel, y, grad_y, activation, grad_kernel, grad_bias, grad_x,
                       workspace, kernel_step=None):
        """dL/dx into ``grad_x`` (unless None), dL/db into ``grad_bias``, and dL/dW into
        ``grad_kernel``, or, when ``kernel_step(x, grad_z)`` (a
        :meth:`dlcore.optimizers.Optimizer.product_step`) takes it, the optimiser's step on
        the kernel straight from the product (after dL/dx, which needs the old kernel; the
        kernels' ops hand ``grad_x`` to the step, which computes it first)."""
        grad_z = ref.activation_backward(activation, y, grad_y)
        gx, gk, gb = ref.dense_backward(x, kernel, grad_z)
        grad_bias[...] = gb
        if grad_x is not None:
            grad_x[...] = gx
        if kernel_step is None or not kernel_step(x, grad_z):
            grad_kernel[...] = gk

    # convolution
    def conv2d_forward(self, x, kernel, bias, window, activation, out, workspace,
                       keep_columns=True):
        out[...] = ref.activation_forward(activation,
                                          ref.conv2d_forward(x, kernel, bias, window))

    def conv2d_backward(self, x, kernel, y, grad_y, window, activation, grad_kernel,
                        grad_bias, grad_x, workspace):
        _windowed_backward(ref.conv2d_backward, x, kernel, y, grad_y, window, activation,
                           grad_kernel, grad_bias, grad_x)

    # locally connected: kernel (H', W', F, C, k_h, k_w), bias (F, H', W')
    def locally_connected_forward(self, x, kernel, bias, window, activation, out, workspace):
        out[...] = ref.activation_forward(
            activation, ref.locally_connected_forward(x, kernel, bias, window))

    def locally_connected_backward(self, x, kernel, y, grad_y, window, activation, grad_kernel,
                                   grad_bias, grad_x, workspace):
        _windowed_backward(ref.locally_connected_backward, x, kernel, y, grad_y, window, activation,
                           grad_kernel, grad_bias, grad_x)

    # pooling
    def pool_forward(self, kind, x, window, out, argmax):
        if kind == "max":
            out[...], argmax[...] = ref.max_pool_forward(x, window)
        elif kind == "avg":
            out[...] = ref.avg_pool_forward(x, window)
        else:
            out[...] = ref.l2_pool_forward(x, window)

    def pool_backward(self, kind, x, y, argmax, grad_y, window, grad_x):
        if kind == "max":
            grad_x[...] = ref.max_pool_backward(grad_y, argmax, window)
        elif kind == "avg":
            grad_x[...] = ref.avg_pool_backward(grad_y, window)
        else:
            grad_x[...] = ref.l2_pool_backward(x, y, grad_y, window)

    # up-sampling and transposed convolution
    def upsample_forward(self, x, size, interpolation, out):
        forward = ref.upsample_bilinear_forward if interpolation == "bilinear" else \
            ref.upsample_nearest_forward
        out[...] = forward(x, size)

    def upsample_backward(self, grad_y, size, interpolation, grad_x):
        backward = ref.upsample_bilinear_backward if interpolation == "bilinear" else \
            ref.upsample_nearest_backward
        grad_x[...] = backward(grad_y, size)

    def conv2d_transpose_forward(self, x, kernel, bias, window, activation, out, workspace):
        out[...] = ref.activation_forward(
            activation, ref.conv2d_transpose_forward(x, kernel, bias, window))

    def conv2d_transpose_backward(self, x, kernel, y, grad_y, window, activation, grad_kernel,
                                  grad_bias, grad_x, workspace):
        _windowed_backward(ref.conv2d_transpose_backward, x, kernel, y, grad_y, window, activation,
                           grad_kernel, grad_bias, grad_x)

    # element-wise
    def activation_forward(self, activation, x, out):
        out[...] = ref.activation_forward(activation, x)

    def activation_backward(self, activation, y, grad_y, grad_x):
        grad_x[...] = ref.activation_backward(activation, y, grad_y)

    def activation_input_backward(self, activation, z, grad_y, grad_z):
        grad_z[...] = ref.activation_input_backward(activation, z, grad_y)

    def dropout_forward(self, x, out, mask, rate, seed, step, stream=STREAM_DROPOUT,
                        first_row=0):
        rows = x.reshape(x.shape[0], -1)
        mask_rows = mask.reshape(rows.shape)
        mask_rows[...] = ref.dropout_mask(*rows.shape, rate, seed, step, stream,
                                          first_row).astype(mask.dtype)
        out[...] = x * mask

    def multiply(self, a, b, out):
        out[...] = a * b

    def scale_columns(self, x, scale, out):
        """out = x * scale, ``scale`` (1, *sample shape) the same for every sample."""
        out[...] = x * scale

    def rescale(self, x, scale, offset, out):
        out[...] = ref.rescale(x, scale, offset)

    def activity_penalty(self, h, l1, l2, row_loss):
        """row_loss (n,) += each sample's l1 ||h||_1 + l2 / 2 ||h||^2."""
        row_loss[...] += ref.activity_penalty(h, l1, l2).astype(row_loss.dtype)

    def activity_gradient(self, h, grad_y, l1, l2, scale, out):
        out[...] = ref.activity_penalty_gradient(h, grad_y, l1, l2, scale)

    def leaky_relu_forward(self, x, slope, out):
        out[...] = ref.leaky_relu(x, slope)

    def leaky_relu_backward(self, y, grad_y, slope, grad_x):
        grad_x[...] = ref.leaky_relu_backward(y, grad_y, slope)

    # batch normalisation: x, y, grads as (n, C, P); per-channel arrays (C,)
    def batch_moments(self, x, mean, variance, moving_mean, moving_variance, momentum):
        mean[...], variance[...] = ref.batch_moments(x)
        if moving_mean.shape[0]:
            moving_mean[...] = momentum * moving_mean + (1 - momentum) * mean
            moving_variance[...] = momentum * moving_variance + (1 - momentum) * variance

    def batch_norm_forward(self, x, mean, variance, gamma, beta, epsilon, y):
        y[...] = ref.batch_norm_forward(x, mean, variance, gamma, beta, epsilon)

    def batch_norm_backward(self, x, mean, variance, gamma, grad_y, epsilon, batch_statistics,
                            grad_gamma, grad_beta, grad_x):
        grad_x[...], grad_gamma[...], grad_beta[...] = ref.batch_norm_backward(
            x, mean, variance, gamma, grad_y, epsilon, batch_statistics)

    # layer normalisation: x, y, grads as (n, C, P); per-sample statistics (n, P)
    def layer_norm_forward(self, x, gamma, beta, epsilon, y, mean, inverse):
        y[...], mean[...], inverse[...] = ref.layer_norm_forward(x, gamma, beta, epsilon)

    def layer_norm_backward(self, x, mean, inverse, gamma, grad_y, grad_gamma, grad_beta,
                            grad_x):
        grad_x[...], grad_gamma[...], grad_beta[...] = ref.layer_norm_backward(
            x, mean, inverse, gamma, grad_y)

    # merging tensors, and the sums of a graph's backward pass
    def add_forward(self, xs, out):
        out[...] = ref.add_forward(xs)

    def average_forward(self, xs, out):
        out[...] = ref.average_forward(xs)

    def average_backward(self, grad_y, k, grad_x):
        grad_x[...] = ref.average_backward(grad_y, k)[0]

    def subtract_forward(self, xs, out):
        out[...] = ref.subtract_forward(xs)

    def subtract_backward(self, grad_y, grad_x2):
        grad_x2[...] = ref.subtract_backward(grad_y)[1]

    def multiply_forward(self, xs, out):
        out[...] = ref.multiply_forward(xs)

    def multiply_backward(self, xs, grad_y, grads):
        for grad, part in zip(grads, ref.multiply_backward(xs, grad_y)):
            grad[...] = part

    def extremum_forward(self, xs, sign, out, chosen):
        out[...], chosen[...] = ref.extremum_forward(xs, sign)

    def extremum_backward(self, chosen, grad_y, grads):
        for grad, part in zip(grads, ref.extremum_backward(chosen, grad_y, len(grads))):
            grad[...] = part

    def broadcast_forward(self, x, out):
        out[...] = ref.broadcast_forward(x, out.shape)

    def broadcast_backward(self, grad_y, grad_x):
        grad_x[...] = ref.broadcast_backward(grad_y, grad_x.shape)

    def dot_forward(self, a, b, normalize, epsilon, out, factors):
        out[...] = ref.dot_forward(a, b, normalize, epsilon)

    def dot_backward(self, a, b, y, grad_y, factors, normalize, epsilon, grad_a, grad_b):
        grad_a[...], grad_b[...] = ref.dot_backward(a, b, grad_y, normalize, epsilon)

    def concatenate_forward(self, xs, axis, out):
        out[...] = ref.concatenate_forward(xs, axis)

    def concatenate_backward(self, grad_y, axis, grads):
        parts = ref.concatenate_backward(grad_y, [grad.shape[axis] for grad in grads], axis)
        for grad, part in zip(grads, parts):
            grad[...] = part

    def copy(self, source, target):
        target[...] = source

    def swap_axes(self, x, out):
        """out (n, b, a) <- x (n, a, b) with its last two axes swapped (maps channels last,
        for a Dense on maps, and back)."""
        out[...] = x.transpose(0, 2, 1)

    def accumulate(self, source, target):
        target += source

    def place_columns(self, source, target, offset):
        target[:, offset:offset + source.shape[1]] = source

    def take_columns(self, source, target, offset):
        target[...] = source[:, offset:offset + target.shape[1]]


class KernelOps:
    """The operations of :class:`ReferenceOps`, as launches of the bodies of
    :mod:`dlcore.layers.bodies` on a backend that ``launches_kernels`` (see the module
    docstrings); small launches run serially on the CPU
    (:data:`dlcore.backend.cpu.SERIAL_ELEMENTS`)."""

    name = "kernels"

    def __init__(self, backend):
        self.backend = backend
        self._no_bias = backend.zeros((0,))
        self._cpu_convolution = None
        if backend.host_kernels:   # only then: the module imports the CPU backend
            from dlcore.layers.cpu_convolution import CPUConvolution
            self._cpu_convolution = CPUConvolution()

    # dense
    def dense_forward(self, x, kernel, bias, activation, out, workspace):
        code = ACTIVATION_CODES[activation]
        n, units = out.shape
        if code == SOFTMAX:   # normalised over the units: read from a separate product
            products = workspace("products", (n, units))
            self.backend.gemm(x, kernel, products)
            self._activate(products.reshape(-1), bias, out.reshape(n, units, 1), code, units, 1)
            return
        self.backend.gemm_then_rows(x, kernel, out, unit_bias_activation_rows, out, bias, code)

    def _activate(self, z, bias, y, code, n_stride, f_stride):
        """y (n, F, P) = activation(z + bias) read through the strides (see
        :func:`bias_activation_rows`); a softmax over f runs a row per sample."""
        n, maps, pixels = y.shape
        if code == SOFTMAX:
            self.backend.launch_rows(softmax_rows, n, pixels, z, bias, y, n_stride, f_stride,
                                     work=y.size)
        else:
            self.backend.launch_rows(bias_activation_rows, n * maps, pixels, z, bias, y, code,
                                     n_stride, f_stride)

    def dense_backward(self, x, kernel, y, grad_y, activation, grad_kernel, grad_bias, grad_x,
                       workspace, kernel_step=None):
        code = ACTIVATION_CODES[activation]
        n, units = y.shape
        g = workspace("grad_preactivation", (n, units))
        if code == SOFTMAX:
            self.backend.launch_rows(activation_gradient_rows, n * units, 1,
                                     y.reshape(n, units, 1), grad_y.reshape(n, units, 1),
                                     g.reshape(-1), code, units, 1)
            self.backend.launch_1d(bias_gradient_span, units, g.reshape(-1), grad_bias, n, 1,
                                   units, 1, work=n * units)
        else:
            self.backend.launch_1d(dense_gradient_span, units, y, grad_y, g.reshape(-1),
                                   grad_bias, code, work=n * units)
        if kernel_step is not None and kernel_step(x, g, grad_x):
            return   # the step, and dL/dx from the kernel before it
        if grad_x is not None:
            self.backend.gemm(g, kernel, grad_x, trans_b=True)
        self.backend.gemm(x, g, grad_kernel, trans_a=True)

    # convolution
    def _conv_path(self, window, activation):
        """How a convolution runs: "batched" (im2col, GEMM and bias launches over the whole
        batch: CUDA), or one of the CPU's strategies ("wide", "samples")."""
        if self._cpu_convolution is None:
            return "batched"
        return self._cpu_convolution.path(window, activation)

    def conv2d_forward(self, x, kernel, bias, window, activation, out, workspace,
                       keep_columns=True):
        path = self._conv_path(window, activation)
        self._columns_kept = keep_columns
        kernel2d = kernel.reshape(kernel.shape[0], window.patch_size)
        code = ACTIVATION_CODES[activation]
        if path == "batched":
            self._forward_batched(x, kernel2d, bias, window, code, out, workspace)
        else:
            self._cpu_convolution.forward(path, x, kernel2d, bias, window, code, out, workspace,
                                          keep_columns)

    def _forward_batched(self, x, kernel2d, bias, w, code, out, workspace):
        n, filters, pixels = x.shape[0], kernel2d.shape[0], w.out_pixels
        cols = workspace("cols", (w.patch_size, n * pixels))
        products = workspace("products", (filters, n * pixels))
        self.backend.launch_rows(im2col_rows, w.patch_size * n, w.out_height, x, cols,
                                 *conv_geometry(w), work=cols.size)
        self.backend.gemm(kernel2d, cols, products)
        self._activate(products.reshape(-1), bias, out.reshape(n, filters, pixels), code,
                       pixels, n * pixels)

    def conv2d_backward(self, x, kernel, y, grad_y, window, activation, grad_kernel, grad_bias,
                        grad_x, workspace):
        path = self._conv_path(window, activation)
        if path != "batched" and not getattr(self, "_columns_kept", False):
            # the forward pass ran without keeping its columns: build them again
            self.conv2d_forward(x, kernel, self._no_bias, window, activation,
                                workspace("recomputed_output", y.shape), workspace)
        kernel2d = kernel.reshape(kernel.shape[0], window.patch_size)
        arguments = (x, kernel2d, y, grad_y, window, ACTIVATION_CODES[activation], grad_kernel,
                     grad_bias, grad_x, workspace)
        if path == "batched":
            self._backward_batched(*arguments)
        else:
            self._cpu_convolution.backward(path, *arguments)

    def _backward_batched(self, x, kernel2d, y, grad_y, w, code, grad_kernel, grad_bias,
                          grad_x, workspace):
        n, filters, pixels = x.shape[0], kernel2d.shape[0], w.out_pixels
        cols = workspace("cols", (w.patch_size, n * pixels))   # as the forward pass left them
        products = workspace("products", (filters, n * pixels))
        self.backend.launch_rows(activation_gradient_rows, n * filters, pixels,
                                 y.reshape(n, filters, pixels),
                                 grad_y.reshape(n, filters, pixels), products.reshape(-1), code,
                                 pixels, n * pixels)
        self.backend.launch_1d(bias_gradient_span, filters, products.reshape(-1), grad_bias, n,
                               pixels, pixels, n * pixels, work=n * filters * pixels)
        self.backend.gemm(products, cols, grad_kernel.reshape(kernel2d.shape), trans_b=True)
        if grad_x is None:
            return
        grad_cols = workspace("grad_cols", (w.patch_size, n * pixels))
        self.backend.gemm(kernel2d, products, grad_cols, trans_a=True)
        self.backend.launch_rows(col2im_rows, n * w.channels, w.height, grad_cols, grad_x,
                                 *conv_geometry(w), work=grad_cols.size)

    # locally connected: the convolution's fields (im2col) and col2im, no GEMM (no sharing)
    def locally_connected_forward(self, x, kernel, bias, window, activation, out, workspace):
        n, filters, positions = x.shape[0], kernel.shape[2], window.out_pixels
        cols = workspace("cols", (window.patch_size, n * positions))
        z = workspace("preactivations", (n, filters, positions))
        self.backend.launch_rows(im2col_rows, window.patch_size * n, window.out_height, x, cols,
                                 *conv_geometry(window), work=cols.size)
        self.backend.launch_rows(locally_connected_rows, n * filters, positions, cols,
                                 kernel.reshape(positions, filters, -1),
                                 bias.reshape(filters, positions), z,
                                 work=n * kernel.size)
        self._activate(z.reshape(-1), self._no_bias, out.reshape(n, filters, positions),
                       ACTIVATION_CODES[activation], filters * positions, positions)

    def locally_connected_backward(self, x, kernel, y, grad_y, window, activation, grad_kernel,
                                   grad_bias, grad_x, workspace):
        n, filters, positions = x.shape[0], kernel.shape[2], window.out_pixels
        weights = kernel.reshape(positions, filters, -1)
        cols = workspace("cols", (window.patch_size, n * positions))   # the forward pass's
        g = workspace("grad_preactivations", (n, filters, positions))
        self.backend.launch_rows(activation_gradient_rows, n * filters, positions,
                                 y.reshape(n, filters, positions),
                                 grad_y.reshape(n, filters, positions), g.reshape(-1),
                                 ACTIVATION_CODES[activation], filters * positions, positions)
        self.backend.launch_1d(locally_connected_bias_gradient_span, filters * positions, g,
                               grad_bias.reshape(filters, positions), work=g.size)
        self.backend.launch_rows(locally_connected_kernel_gradient_rows, positions * filters,
                                 window.patch_size, g, cols,
                                 grad_kernel.reshape(weights.shape), work=n * kernel.size)
        if grad_x is None:
            return
        grad_cols = workspace("grad_cols", (window.patch_size, n * positions))
        self.backend.launch_rows(locally_connected_input_rows, window.patch_size, n * positions,
                                 g, weights, grad_cols, work=n * kernel.size)
        self.backend.launch_rows(col2im_rows, n * window.channels, window.height, grad_cols,
                                 grad_x, *conv_geometry(window), work=grad_cols.size)

    # pooling
    @staticmethod
    def _planes(array):
        return array.reshape(array.shape[0] * array.shape[1], array.shape[2], array.shape[3])

    @staticmethod
    def _pool_geometry(w):
        return w.kernel_height, w.kernel_width, w.stride_height, w.stride_width

    def pool_forward(self, kind, x, window, out, argmax):
        self.backend.launch_rows(pool_rows, x.shape[0] * x.shape[1], window.out_height,
                                 self._planes(x), self._planes(out), self._planes(argmax),
                                 POOL_CODES[kind], *self._pool_geometry(window),
                                 window.pad_height, window.pad_width, work=x.size)

    def pool_backward(self, kind, x, y, argmax, grad_y, window, grad_x):
        w = window
        arguments = (self._planes(x), self._planes(y), self._planes(argmax),
                     self._planes(grad_y), self._planes(grad_x), POOL_CODES[kind],
                     *self._pool_geometry(w))
        if w.stride_height >= w.kernel_height and w.stride_width >= w.kernel_width \
                and not w.padded:
            self.backend.launch_rows(pool_gradient_tiles_rows, x.shape[0] * x.shape[1],
                                     w.out_height, *arguments, work=x.size)
        else:   # the gather form, which also knows a padding (Keras's "same")
            self.backend.launch_rows(pool_gradient_rows, x.shape[0] * x.shape[1], w.height,
                                     *arguments, w.pad_height, w.pad_width, work=x.size)

    # up-sampling and transposed convolution (the convolution's im2col and col2im bodies)
    def upsample_forward(self, x, size, interpolation, out):
        if interpolation == "bilinear":
            tables = [array for axis in (0, 1) for array in self._bilinear_tables(
                out.shape[2 + axis], size[axis], x.shape[2 + axis], x.dtype)[:3]]
            self.backend.launch_rows(upsample_bilinear_rows, x.shape[0] * x.shape[1],
                                     out.shape[2], self._planes(x), self._planes(out),
                                     *tables, work=out.size)
            return
        self.backend.launch_rows(upsample_nearest_rows, x.shape[0] * x.shape[1], out.shape[2],
                                 self._planes(x), self._planes(out), *size, work=out.size)

    def upsample_backward(self, grad_y, size, interpolation, grad_x):
        matrices = () if interpolation != "bilinear" else tuple(
            self._bilinear_tables(grad_y.shape[2 + axis], size[axis], grad_x.shape[2 + axis],
                                  grad_x.dtype)[3] for axis in (0, 1))
        body = upsample_bilinear_gradient_rows if interpolation == "bilinear" else \
            upsample_nearest_gradient_rows
        self.backend.launch_rows(body, grad_x.shape[0] * grad_x.shape[1], grad_x.shape[2],
                                 self._planes(grad_y), self._planes(grad_x), *size,
                                 *matrices, work=grad_y.size)

    def _bilinear_tables(self, n_out, scale, n_in, dtype):
        """``(low, high, fraction, matrix)`` of one axis of a bilinear up-sampling
        (:func:`dlcore.layers.reference.bilinear_sources`, :func:`~dlcore.layers.reference.
        bilinear_matrix`) on the backend, in ``dtype``; made once per axis and type."""
        key = (n_out, scale, n_in, np.dtype(dtype).str)
        cache = self.__dict__.setdefault("_bilinear", {})
        if key not in cache:
            low, high, fraction = ref.bilinear_sources(n_out, scale, n_in, dtype)
            cache[key] = (self.backend.asarray(low, np.int64),
                          self.backend.asarray(high, np.int64),
                          self.backend.asarray(fraction, dtype),
                          self.backend.asarray(ref.bilinear_matrix(n_out, scale, n_in, dtype),
                                               dtype))
        return cache[key]

    @staticmethod
    def _pixels_geometry(w):
        """im2col/col2im geometry of a 1x1 window over the input (H, W) of a transposed
        convolution: with it im2col_rows turns (n, C, H, W) into (C, n H W) and col2im_rows
        turns it back."""
        return 1, 1, 1, 1, 0, 0, w.out_height, w.out_width

    def conv2d_transpose_forward(self, x, kernel, bias, window, activation, out, workspace):
        """inputs = x as (C, n H W) (im2col_rows, 1x1); cols = K' @ inputs (gemm);
        z = col2im(cols) (col2im_rows: the scatter-add, skipped rows cropped); y =
        activation(z + b)."""
        w, n, channels = window, x.shape[0], kernel.shape[0]
        filters, pixels = w.channels, w.height * w.width
        inputs = workspace("transpose_inputs", (channels, n * w.out_pixels))
        cols = workspace("cols", (w.patch_size, n * w.out_pixels))
        z = workspace("products", (n, filters, w.height, w.width))
        self.backend.launch_rows(im2col_rows, channels * n, w.out_height, x, inputs,
                                 *self._pixels_geometry(w), work=inputs.size)
        self.backend.gemm(kernel.reshape(channels, w.patch_size), inputs, cols, trans_a=True)
        self.backend.launch_rows(col2im_rows, n * filters, w.height, cols, z, *conv_geometry(w),
                                 work=cols.size)
        self._activate(z.reshape(-1), bias, out.reshape(n, filters, pixels),
                       ACTIVATION_CODES[activation], filters * pixels, pixels)

    def conv2d_transpose_backward(self, x, kernel, y, grad_y, window, activation, grad_kernel,
                                  grad_bias, grad_x, workspace):
        """G = dL/dz (activation_gradient_rows), dL/db = its sums; gcols = im2col(G)
        (im2col_rows); dL/dK = inputs @ gcols' and dL/dx = K @ gcols (gemm), back to NCHW
        (col2im_rows, 1x1)."""
        w, n, channels = window, x.shape[0], kernel.shape[0]
        filters, pixels = w.channels, w.height * w.width
        inputs = workspace("transpose_inputs", (channels, n * w.out_pixels))   # from forward
        g = workspace("grad_preactivation", (n, filters, w.height, w.width))
        grad_cols = workspace("grad_cols", (w.patch_size, n * w.out_pixels))
        self.backend.launch_rows(activation_gradient_rows, n * filters, pixels,
                                 y.reshape(n, filters, pixels),
                                 grad_y.reshape(n, filters, pixels), g.reshape(-1),
                                 ACTIVATION_CODES[activation], filters * pixels, pixels)
        self.backend.launch_1d(bias_gradient_span, filters, g.reshape(-1), grad_bias, n, pixels,
                               filters * pixels, pixels, work=n * filters * pixels)
        self.backend.launch_rows(im2col_rows, w.patch_size * n, w.out_height, g, grad_cols,
                                 *conv_geometry(w), work=grad_cols.size)
        kernel2d = kernel.reshape(channels, w.patch_size)
        self.backend.gemm(inputs, grad_cols, grad_kernel.reshape(kernel2d.shape), trans_b=True)
        if grad_x is None:
            return
        grad_inputs = workspace("grad_inputs", (channels, n * w.out_pixels))
        self.backend.gemm(kernel2d, grad_cols, grad_inputs)
        self.backend.launch_rows(col2im_rows, n * channels, w.out_height, grad_inputs, grad_x,
                                 *self._pixels_geometry(w), work=grad_inputs.size)

    # element-wise
    @staticmethod
    def _maps(array, activation):
        """(n, F, P) view for an activation: softmax along the features of (n, features), or
        along the channels of each pixel of (n, channels, H, W); element-wise ones over
        (n, channels, pixels)."""
        n = array.shape[0]
        if activation == "softmax" and array.ndim == 2:
            return array.reshape(n, -1, 1)
        return array.reshape(n, array.shape[1], -1) if array.ndim > 2 else \
            array.reshape(n, 1, -1)

    def activation_forward(self, activation, x, out):
        n, maps, pixels = self._maps(x, activation).shape
        self._activate(x.reshape(-1), self._no_bias, self._maps(out, activation),
                       ACTIVATION_CODES[activation], maps * pixels, pixels)

    def activation_backward(self, activation, y, grad_y, grad_x):
        view = self._maps(y, activation)
        n, maps, pixels = view.shape
        self.backend.launch_rows(activation_gradient_rows, n * maps, pixels, view,
                                 self._maps(grad_y, activation), grad_x.reshape(-1),
                                 ACTIVATION_CODES[activation], maps * pixels, pixels)

    def activation_input_backward(self, activation, z, grad_y, grad_z):
        """dL/dz from z and dL/dy, for the activations of ``NEEDS_PREACTIVATION``."""
        self.backend.launch_1d(input_activation_gradient_span, grad_z.size, z.reshape(-1),
                               grad_y.reshape(-1), grad_z.reshape(-1),
                               ACTIVATION_CODES[activation])

    def dropout_forward(self, x, out, mask, rate, seed, step, stream=STREAM_DROPOUT,
                        first_row=0):
        n = x.shape[0]
        k0, k1 = key_from_seed(seed)
        rows = x.reshape(n, -1)
        self.backend.launch_rows(dropout_rows, n, -(-rows.shape[1] // 4), rows,
                                 out.reshape(n, -1), mask.reshape(n, -1), np.float32(rate),
                                 np.float32(1.0 / (1.0 - rate)), k0, k1,
                                 np.uint64(stream), np.uint64(step), np.uint64(first_row),
                                 work=x.size)

    def multiply(self, a, b, out):
        self.backend.launch_1d(multiply_span, out.size, a.reshape(-1), b.reshape(-1),
                               out.reshape(-1))

    def scale_columns(self, x, scale, out):
        n = x.shape[0]
        self.backend.launch_rows(scale_columns_rows, n, scale.size, x.reshape(n, -1),
                                 scale.reshape(-1), out.reshape(n, -1), work=x.size)

    def rescale(self, x, scale, offset, out):
        self.backend.launch_1d(rescale_span, out.size, x.reshape(-1), out.reshape(-1),
                               x.dtype.type(scale), x.dtype.type(offset))

    def activity_penalty(self, h, l1, l2, row_loss):
        n = h.shape[0]
        rows = h.reshape(n, -1)
        self.backend.launch_rows(activity_penalty_rows, n, 1, rows, row_loss, h.dtype.type(l1),
                                 h.dtype.type(l2), work=h.size)

    def activity_gradient(self, h, grad_y, l1, l2, scale, out):
        cast = h.dtype.type
        self.backend.launch_1d(activity_gradient_span, out.size, h.reshape(-1),
                               grad_y.reshape(-1), out.reshape(-1), cast(l1), cast(l2),
                               cast(scale))

    def leaky_relu_forward(self, x, slope, out):
        self.backend.launch_1d(leaky_relu_span, out.size, x.reshape(-1), out.reshape(-1),
                               x.dtype.type(slope))

    def leaky_relu_backward(self, y, grad_y, slope, grad_x):
        self.backend.launch_1d(leaky_relu_gradient_span, grad_x.size, y.reshape(-1),
                               grad_y.reshape(-1), grad_x.reshape(-1), y.dtype.type(slope))

    # batch normalisation (as ReferenceOps')
    def batch_moments(self, x, mean, variance, moving_mean, moving_variance, momentum):
        self.backend.launch_1d(channel_moments_span, x.shape[1], x, mean, variance,
                               moving_mean, moving_variance, x.dtype.type(momentum),
                               work=2 * x.size)

    def batch_norm_forward(self, x, mean, variance, gamma, beta, epsilon, y):
        n, channels, pixels = x.shape
        self.backend.launch_rows(batch_norm_rows, n * channels, pixels, x, y, mean, variance,
                                 gamma, beta, x.dtype.type(epsilon))

    def batch_norm_backward(self, x, mean, variance, gamma, grad_y, epsilon, batch_statistics,
                            grad_gamma, grad_beta, grad_x):
        n, channels, pixels = x.shape
        epsilon = x.dtype.type(epsilon)
        self.backend.launch_1d(channel_gradient_sums_span, channels, x, grad_y, mean, variance,
                               epsilon, grad_gamma, grad_beta, work=2 * x.size)
        self.backend.launch_rows(batch_norm_gradient_rows, n * channels, pixels, x, grad_y,
                                 grad_x, mean, variance, gamma, epsilon, grad_gamma, grad_beta,
                                 bool(batch_statistics))

    # layer normalisation (as ReferenceOps')
    def layer_norm_forward(self, x, gamma, beta, epsilon, y, mean, inverse):
        n, channels, pixels = x.shape
        self.backend.launch_rows(layer_norm_rows, n, pixels, x, y, mean, inverse, gamma, beta,
                                 x.dtype.type(epsilon), work=3 * x.size)

    def layer_norm_backward(self, x, mean, inverse, gamma, grad_y, grad_gamma, grad_beta,
                            grad_x):
        n, channels, pixels = x.shape
        self.backend.launch_1d(layer_norm_affine_gradient_span, channels, x, grad_y, mean,
                               inverse, grad_gamma, grad_beta, work=2 * x.size)
        self.backend.launch_rows(layer_norm_gradient_rows, n, pixels, x, grad_y, grad_x, mean,
                                 inverse, gamma, work=3 * x.size)

    # merging tensors, and the sums of a graph's backward pass
    @staticmethod
    def _joined_columns(array, axis):
        """The 2-D view in which joining along ``axis`` joins columns: the axes before it as
        rows, the rest as columns."""
        rows = math.prod(array.shape[:axis])
        return array.reshape(rows, array.size // rows)

    def add_forward(self, xs, out):
        self.copy(xs[0], out)
        for x in xs[1:]:
            self.accumulate(x, out)

    def average_forward(self, xs, out):
        self.add_forward(xs, out)
        self.rescale(out, 1.0 / len(xs), 0.0, out)

    def average_backward(self, grad_y, k, grad_x):
        self.rescale(grad_y, 1.0 / k, 0.0, grad_x)

    def subtract_forward(self, xs, out):
        self.rescale(xs[1], -1.0, 0.0, out)
        self.accumulate(xs[0], out)

    def subtract_backward(self, grad_y, grad_x2):
        self.rescale(grad_y, -1.0, 0.0, grad_x2)

    def multiply_forward(self, xs, out):
        self.copy(xs[0], out)
        for x in xs[1:]:
            self.multiply(out, x, out)

    def multiply_backward(self, xs, grad_y, grads):
        for i, grad in enumerate(grads):
            self.copy(grad_y, grad)
            for j, x in enumerate(xs):
                if j != i:
                    self.multiply(grad, x, grad)

    def extremum_forward(self, xs, sign, out, chosen):
        for index, x in enumerate(xs):
            self.backend.launch_1d(extremum_span, out.size, x.reshape(-1), np.int32(index),
                                   x.dtype.type(sign), out.reshape(-1), chosen.reshape(-1))

    def extremum_backward(self, chosen, grad_y, grads):
        for index, grad in enumerate(grads):
            self.backend.launch_1d(chosen_gradient_span, grad.size, chosen.reshape(-1),
                                   np.int32(index), grad_y.reshape(-1), grad.reshape(-1))

    def _broadcast_tables(self, small, full):
        """``(small, full, source strides, repeats, full strides)``: the int64 tables of
        :func:`broadcast_span` and :func:`broadcast_sum_span` for an array of shape ``small``
        repeated along its axes of size 1 to ``full`` (strides in entries, the source's 0
        along the repeated axes), on the backend; made once per pair of shapes."""
        key = (tuple(small), tuple(full))
        cache = self.__dict__.setdefault("_broadcast", {})
        if key not in cache:
            def strides(shape):
                return np.cumprod((tuple(shape[1:]) + (1,))[::-1])[::-1]
            repeated = [size == 1 and whole != 1 for size, whole in zip(small, full)]
            tables = (small, full, np.where(repeated, 0, strides(small)),
                      np.where(repeated, full, 1), strides(full))
            cache[key] = tuple(self.backend.asarray(np.asarray(table, np.int64), np.int64)
                               for table in tables)
        return cache[key]

    def broadcast_forward(self, x, out):
        _, shape, source_strides, _, _ = self._broadcast_tables(x.shape, out.shape)
        self.backend.launch_1d(broadcast_span, out.size, x.reshape(-1), out.reshape(-1), shape,
                               source_strides)

    def broadcast_backward(self, grad_y, grad_x):
        shape, _, _, repeats, strides = self._broadcast_tables(grad_x.shape, grad_y.shape)
        self.backend.launch_1d(broadcast_sum_span, grad_x.size, grad_y.reshape(-1),
                               grad_x.reshape(-1), shape, repeats, strides,
                               np.int64(grad_y.size // grad_x.size), work=grad_y.size)

    def dot_forward(self, a, b, normalize, epsilon, out, factors):
        self.backend.launch_rows(dot_rows, a.shape[0], 1, a, b, bool(normalize),
                                 a.dtype.type(epsilon), out, factors, work=2 * a.size)

    def dot_backward(self, a, b, y, grad_y, factors, normalize, epsilon, grad_a, grad_b):
        self.backend.launch_rows(dot_gradient_rows, a.shape[0], a.shape[1], a, b, y, grad_y,
                                 factors, grad_a, grad_b, work=2 * a.size)

    def concatenate_forward(self, xs, axis, out):
        target, offset = self._joined_columns(out, axis), 0
        for x in xs:
            source = self._joined_columns(x, axis)
            self.place_columns(source, target, offset)
            offset += source.shape[1]

    def concatenate_backward(self, grad_y, axis, grads):
        source, offset = self._joined_columns(grad_y, axis), 0
        for grad in grads:
            target = self._joined_columns(grad, axis)
            self.take_columns(source, target, offset)
            offset += target.shape[1]

    def swap_axes(self, x, out):
        # a gather through x's strides read in out's order (broadcast_span, no axis repeated)
        n, a, b = x.shape
        key = ("swap_axes", n, a, b)
        cache = self.__dict__.setdefault("_broadcast", {})
        if key not in cache:
            cache[key] = tuple(self.backend.asarray(np.asarray(table, np.int64), np.int64)
                               for table in ((n, b, a), (a * b, 1, b)))
        shape, source_strides = cache[key]
        self.backend.launch_1d(broadcast_span, out.size, x.reshape(-1), out.reshape(-1), shape,
                               source_strides)

    def copy(self, source, target):
        self.backend.launch_1d(copy_span, target.size, source.reshape(-1), target.reshape(-1))

    def accumulate(self, source, target):
        self.backend.launch_1d(accumulate_span, target.size, source.reshape(-1),
                               target.reshape(-1))

    def place_columns(self, source, target, offset):
        self.backend.launch_rows(place_columns_rows, source.shape[0], source.shape[1], source,
                                 target, np.int64(offset))

    def take_columns(self, source, target, offset):
        self.backend.launch_rows(take_columns_rows, target.shape[0], target.shape[1], source,
                                 target, np.int64(offset))


def ops_for(backend):
    """The layer operations of ``backend`` (an object from :func:`dlcore.get_backend`): its
    kernels when it ``launches_kernels``, else the NumPy reference."""
    return KernelOps(backend) if backend.launches_kernels else ReferenceOps(backend)
