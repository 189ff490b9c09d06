"""The CPU's own convolution strategies: a sample at a time inside one parallel region.

On a GPU a convolution is three launches over the whole batch (im2col, one GEMM, a bias and
activation pass: :class:`dlcore.layers.ops.KernelOps`). On the CPU the samples are split into
shares, as many as a product's blocks whatever the threads in use (so that the gradients' sums
are the same on any number of threads: :meth:`CPUConvolution._parts`); a Numba thread takes a
share and runs every step of a sample while its data sit in the thread's cache,
multiplying with single-threaded BLAS ``?gemm`` calls made from inside the kernel through the
CPU backend's BLAS entry (:data:`dlcore.backend.cpu.BLAS_GEMM`,
:func:`dlcore.backend.cpu.serial_gemm`).
Three strategies, chosen per layer by :meth:`CPUConvolution.path`:

* ``samples`` (any stride): per sample, cols = im2col(x[s]) (C k_h k_w, H' W'), Z = K @ cols,
  y = activation(Z + b); backward G = dL/dy * activation'(y), dL/dK += G @ cols',
  dL/dx[s] = col2im(K' @ G). The element work runs in the shared bodies of
  :mod:`dlcore.layers.bodies`, on one-sample views.
* ``wide`` (stride 1, element-wise activation): the columns are whole rows of the padded image
  (see the comment above :func:`conv2d_forward_wide`), and the forward product takes
  :data:`WIDE_GROUP` samples' columns side by side at once;
* ``direct`` (a ``wide`` pass with at most :data:`DIRECT_MAX_PATCH` weights per filter):
  products straight from the padded image, without columns, and in training dL/dK the same
  way (a dot product per weight), so that no columns are kept.

This module imports :mod:`dlcore.backend.cpu`: only :class:`dlcore.layers.ops.KernelOps` of a
backend with ``host_kernels`` imports it, so the CUDA path never loads the CPU backend.
"""
import functools

import numpy as np
from numba import njit, prange

from dlcore.backend.cpu import BLAS_GEMM, product_parts, serial_gemm  # its BLAS entry
from dlcore.layers.bodies import (
    ELEMENTWISE_ACTIVATIONS,
    LINEAR,
    RELU,
    SIGMOID,
    SOFTMAX,
    TANH,
    activation_gradient_rows,
    bias_activation_rows,
    col2im_rows,
    conv_geometry,
    im2col_rows,
    softmax_rows,
)

#: Convolutions on the CPU run a sample at a time in one parallel region (see
#: conv2d_forward_samples); False sends them down the batched path the GPU takes.
CPU_SAMPLE_KERNELS = True
#: A stride-1 convolution with at most this many weights per filter multiplies straight from the
#: padded image, without columns (:func:`_direct_forward_kernel`), and in training its backward
#: pass takes dL/dK from the padded image too (:func:`_direct_wide_kernel_gradient`). LeNet-5's
#: first layer (25 weights, 6 filters), batch 64, 2 cores: forward 220 against 204 us through
#: the columns, backward 280 against 515 us; its second (150 weights, 16 filters) 4.4 ms
#: against 0.34 ms forward (the unrolled taps no longer fit the registers).
DIRECT_MAX_PATCH = 32
#: A ``wide`` convolution with columns multiplies this many samples at once: one product of
#: the kernel (F, C k_h k_w) by the columns of the group side by side (C k_h k_w, G L). Measured
#: on an Intel Xeon (MKL, one thread), LeNet-5's second layer (16 x 150 by 150 x 136 a sample):
#: 9.7 us a sample one at a time, 4.8 four at a time, 4.5 eight at a time, 5.2 sixteen.
WIDE_GROUP = 8
_ZERO = np.float32(0.0)


# -- the CPU's convolutions: one parallel region per pass, a sample at a time -----------------
# The batched path (im2col of the whole batch, one GEMM, a bias pass) suits a GPU. On the CPU
# it costs three parallel regions per pass and streams the batch's columns through memory
# between them; here each thread takes a share of the samples and, per sample, builds the
# columns, multiplies and applies the activation while the data sit in its cache (the same
# bodies, on one-sample views). The columns are kept for the backward pass, which would
# otherwise build them again. Products are single-threaded BLAS calls made from the kernel,
# through the CPU backend's BLAS entry (MKL or OpenBLAS: dlcore.backend.blas; OpenBLAS measured
# 2-2.7x faster than Numba's np.dot on these 6x25x784 and 16x150x100 products).


@njit(cache=True, fastmath=True)
def _row_sum(values):
    """The sum of a 1-D array, kept in registers (summing into an array element stores at every
    step) and vectorised (fastmath lets the compiler reorder the additions)."""
    total = _ZERO
    for p in range(values.shape[0]):
        total += values[p]
    return total


@njit(parallel=True, cache=True)
def conv2d_forward_samples(x, kernel2d, bias, out, cols, products, kh, kw, sh, sw, ph, pw,
                           out_h, out_w, code, blas, integers):
    """out[s] = activation(K @ cols[s] + b), cols[s] = im2col(x[s]), for every sample s;
    ``cols`` (n, C k_h k_w, P) to keep them for the backward pass, or (T, C k_h k_w, P), one
    per share, when they are not needed; ``products`` (T, F, P) the shares' scratch; ``out``
    (n, F, P)."""
    n, n_parts = x.shape[0], products.shape[0]
    filters, patch, pixels = kernel2d.shape[0], kernel2d.shape[1], out.shape[2]
    chunk = -(-n // n_parts)
    for part in prange(n_parts):
        for sample in range(part * chunk, min(n, (part + 1) * chunk)):
            columns = cols[sample] if cols.shape[0] == n else cols[part]
            for k in range(patch):
                im2col_rows(k, 0, out_h, x[sample:sample + 1], columns, kh, kw, sh, sw, ph, pw,
                            out_h, out_w)
            serial_gemm(blas, integers, kernel2d, columns, products[part],
                        False, False, 1.0, 0.0)
            if code == SOFTMAX:
                softmax_rows(0, 0, pixels, products[part].reshape(-1), bias,
                             out[sample:sample + 1], 0, pixels)
                continue
            for f in range(filters):
                bias_activation_rows(f, 0, pixels, products[part].reshape(-1), bias,
                                     out[sample:sample + 1], code, 0, pixels)


# In the backward passes each share sums dL/dK' = cols @ G' (C k_h k_w, F), transposed once
# a batch, rather than dL/dK = G @ cols': the same products, measured 1.5x faster in that
# order (LeNet-5's second layer, MKL, one thread: 5.0 against 7.7 us a sample).
@njit(parallel=True, cache=True)
def conv2d_backward_samples(x, kernel2d, y, grad_y, grad_kernel, grad_bias, grad_x, cols,
                            grads, grad_cols, kernel_parts, bias_parts, kh, kw, sh, sw, ph,
                            pw, out_h, out_w, code, need_input_gradient, blas, integers):
    """Per sample s: G = dL/dy[s] * activation'(y[s]) (F, P); dL/db += row sums of G;
    dL/dK' += cols[s] @ G' (the forward pass's columns); dL/dx[s] = col2im(K' @ G). Each
    share of the samples sums its parameter gradients in ``kernel_parts[t]`` (C k_h k_w, F:
    see above) and ``bias_parts[t]``, added up in order at the end. Scratch per share: grads
    (T, F, P), grad_cols (T, C k_h k_w, P)."""
    n, n_parts = x.shape[0], grads.shape[0]
    filters, pixels = kernel2d.shape[0], y.shape[2]
    channels, height = x.shape[1], x.shape[2]
    chunk = -(-n // n_parts)
    for part in prange(n_parts):
        kernel_sum, bias_sum, g = kernel_parts[part], bias_parts[part], grads[part]
        kernel_sum[:] = 0
        bias_sum[:] = 0
        for sample in range(part * chunk, min(n, (part + 1) * chunk)):
            for f in range(filters):
                activation_gradient_rows(f, 0, pixels, y[sample:sample + 1],
                                         grad_y[sample:sample + 1], g.reshape(-1), code, 0,
                                         pixels)
                bias_sum[f] += _row_sum(g[f])
            serial_gemm(blas, integers, cols[sample], g, kernel_sum,
                        False, True, 1.0, 1.0)
            if need_input_gradient:
                serial_gemm(blas, integers, kernel2d, g, grad_cols[part],
                            True, False, 1.0, 0.0)
                for c in range(channels):
                    col2im_rows(c, 0, height, grad_cols[part], grad_x[sample:sample + 1], kh,
                                kw, sh, sw, ph, pw, out_h, out_w)
    grad_kernel[:] = kernel_parts.sum(axis=0).T
    grad_bias[:] = bias_parts.sum(axis=0)


# -- stride 1 on the CPU: "wide" columns, whole rows of the padded image ----------------------
# With stride 1, output pixel (y, x) of filter tap k = (c, i, j) reads padded pixel
# (c, y + i, x + j), at flat offset a_k + (y W_p + x) with a_k = (c H_p + i) W_p + j. Computing
# the output for all W_p columns of each row (the last k_w - 1 of them are discarded) makes
# column index p = y W_p + x, and row k of the im2col matrix becomes one contiguous slice of the
# flat padded image, xpad[a_k : a_k + L]: im2col is C k_h k_w copies of L numbers instead of
# C k_h k_w H' copies of W' numbers, and col2im as many vector additions. The products grow by
# W_p / W' (LeNet-5: 32/28 and 14/10); measured faster overall on both of LeNet-5's layers.


@njit(cache=True)
def _pad_into(image, padded, ph, pw):
    """padded (C, H + 2 P_h, W + 2 P_w) <- image (C, H, W) with zero borders."""
    padded[:] = 0
    height, width = image.shape[1], image.shape[2]
    # element loops, not a slice assignment: Numba compiles a broadcasting assignment with
    # its error messages' string formatting, seconds of a first run for one copy
    for c in range(image.shape[0]):
        for y in range(height):
            source, target = image[c, y], padded[c, ph + y, pw:pw + width]
            for x in range(width):
                target[x] = source[x]


def _wide_passes(activation, backward):
    """The two passes between a wide product and the images, compiled for one element-wise
    activation (``activation(z)`` and ``backward(y, dL/dy)`` of
    :data:`~dlcore.layers.bodies.ELEMENTWISE_ACTIVATIONS`): the loops know their activation
    when they compile. The same loops choosing the activation by its code at run time measured
    1.2-7x slower inside the kernels (LeNet-5's first layer, a sample, Intel Xeon: dL/dy *
    sigm'(y) 11.2 against 1.6 us, sigm(z + b) 6.5 against 5.3 us, ReLU's forward 4.3 against
    0.9 us).

    Returns ``(to_images, to_wide_gradient)``:

    * ``to_images(products, offset, bias, images, width_p)``: images (F, H', W') <-
      activation(products[f, offset + y W_p + x] + b[f]) for x < W' (the wide rows' last
      W_p - W' entries are dropped);
    * ``to_wide_gradient(outputs, grad_outputs, grads, offset, width_p)``: grads (F, G L)[f,
      offset + y W_p + x] <- dL/dy * activation'(y) for x < W', 0 in the gaps. Each entry is
      written once: zeroing the whole row first and then writing the pixels measured 5x slower
      (LeNet-5's first layer: 6.9 against 1.4 us a sample).

    An offset, not a view of the sample's columns: a 2-D slice would be a strided array, which
    the compiler does not vectorise."""
    @njit(cache=True, error_model="numpy")
    def to_images(products, offset, bias, images, width_p):
        for f in range(images.shape[0]):
            shift = bias[f] if bias.shape[0] > 0 else _ZERO
            for y in range(images.shape[1]):
                source, target = products[f, offset + y * width_p:], images[f, y]
                for x in range(target.shape[0]):
                    target[x] = activation(source[x] + shift)

    @njit(cache=True, error_model="numpy")
    def to_wide_gradient(outputs, grad_outputs, grads, offset, width_p):
        height, width = outputs.shape[1], outputs.shape[2]
        span = (height - 1) * width_p + width
        for f in range(outputs.shape[0]):
            row = grads[f, offset:offset + span]
            for y in range(height):
                start = y * width_p
                target = row[start:start + width]
                output, grad_output = outputs[f, y], grad_outputs[f, y]
                for x in range(width):
                    target[x] = backward(output[x], grad_output[x])
                _zero_gap(row, start + width, min(span, start + width_p))

    return to_images, to_wide_gradient


_relu_to_images, _relu_to_wide_gradient = _wide_passes(*ELEMENTWISE_ACTIVATIONS[RELU])
_sigmoid_to_images, _sigmoid_to_wide_gradient = _wide_passes(*ELEMENTWISE_ACTIVATIONS[SIGMOID])
_tanh_to_images, _tanh_to_wide_gradient = _wide_passes(*ELEMENTWISE_ACTIVATIONS[TANH])
_linear_to_images, _linear_to_wide_gradient = _wide_passes(*ELEMENTWISE_ACTIVATIONS[LINEAR])
#: The activations with wide passes of their own; the others (ELU, softplus, ...: less common,
#: each pair of passes costs its compile time) run on the samples path.
WIDE_ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh")


# The two dispatchers below are copied into each kernel that calls them (inline="always", in
# Numba's intermediate code, before type inference): a kernel that holds its activation's code as
# a constant (:func:`_wide_kernels`, :func:`_direct_forward_kernel`) then keeps only that
# activation's branch, and compiles only its passes.
@njit(inline="always")
def _wide_to_images(products, offset, bias, images, width_p, code):
    """The ``to_images`` pass of :func:`_wide_passes` for the element-wise activation
    ``code``."""
    if code == RELU:
        _relu_to_images(products, offset, bias, images, width_p)
    elif code == SIGMOID:
        _sigmoid_to_images(products, offset, bias, images, width_p)
    elif code == TANH:
        _tanh_to_images(products, offset, bias, images, width_p)
    else:
        _linear_to_images(products, offset, bias, images, width_p)


@njit(inline="always")
def _images_to_wide_gradient(outputs, grad_outputs, grads, offset, width_p, code):
    """The ``to_wide_gradient`` pass of :func:`_wide_passes` for the element-wise activation
    ``code``."""
    if code == RELU:
        _relu_to_wide_gradient(outputs, grad_outputs, grads, offset, width_p)
    elif code == SIGMOID:
        _sigmoid_to_wide_gradient(outputs, grad_outputs, grads, offset, width_p)
    elif code == TANH:
        _tanh_to_wide_gradient(outputs, grad_outputs, grads, offset, width_p)
    else:
        _linear_to_wide_gradient(outputs, grad_outputs, grads, offset, width_p)


@njit(cache=True)
def _zero_gap(row, start, stop):
    for p in range(start, stop):
        row[p] = _ZERO


@njit(cache=True)
def _wide_offset(k, kh, kw, height_p, width_p):
    """a_k = (c H_p + i) W_p + j for filter tap k = (c k_h + i) k_w + j."""
    c, tap = k // (kh * kw), k % (kh * kw)
    return (c * height_p + tap // kw) * width_p + tap % kw


@njit(cache=True)
def _wide_geometry(outputs, padded, scratch):
    """What both wide kernels read off their arrays: ``(n, T, H_p, W_p, L, G, samples per
    share)`` for ``outputs`` (n, F, H', W'), the shares' ``padded`` images (T, C, H_p, W_p)
    and a share's scratch (T, ., G L), with L = (H' - 1) W_p + W' the span of one sample."""
    n, n_parts = outputs.shape[0], padded.shape[0]
    height_p, width_p = padded.shape[2], padded.shape[3]
    span = (outputs.shape[2] - 1) * width_p + outputs.shape[3]
    return n, n_parts, height_p, width_p, span, scratch.shape[2] // span, -(-n // n_parts)


@njit(cache=True)
def _wide_columns(flat, columns, offset, span, kh, kw, height_p, width_p):
    """columns (C k_h k_w, G L)[k, offset : offset + L] <- xpad[a_k : a_k + L] of the flat
    padded image. A loop, not a slice assignment: the compiler copies a slice element by
    element, measured 3.4x slower here (LeNet-5's second layer: 8.3 against 2.4 us a
    sample)."""
    for k in range(columns.shape[0]):
        start = _wide_offset(k, kh, kw, height_p, width_p)
        target, source = columns[k, offset:offset + span], flat[start:start + span]
        for p in range(span):
            target[p] = source[p]


@njit(cache=True, fastmath=True)
def _direct_wide_kernel_gradient(grads, flat, kernel_sum, kh, kw, height_p, width_p):
    """kernel_sum (C k_h k_w, F)[k, f] += G[f] . xpad[a_k : a_k + L]: the same sum as
    cols @ G' without building cols, vectorised dot products of L numbers (fastmath lets the
    compiler split each sum into vector lanes), three filters at a time so that each slice of
    the image is loaded once for three sums (LeNet-5's first layer: 6.0 -> 4.0 us a sample,
    the same numbers)."""
    span, filters = grads.shape[1], kernel_sum.shape[1]
    whole = filters - filters % 3
    for f in range(0, whole, 3):
        row0, row1, row2 = grads[f], grads[f + 1], grads[f + 2]
        for k in range(kernel_sum.shape[0]):
            start = _wide_offset(k, kh, kw, height_p, width_p)
            source = flat[start:start + span]
            total0, total1, total2 = _ZERO, _ZERO, _ZERO
            for p in range(span):
                value = source[p]
                total0 += row0[p] * value
                total1 += row1[p] * value
                total2 += row2[p] * value
            kernel_sum[k, f] += total0
            kernel_sum[k, f + 1] += total1
            kernel_sum[k, f + 2] += total2
    for f in range(whole, filters):
        row = grads[f]
        for k in range(kernel_sum.shape[0]):
            start = _wide_offset(k, kh, kw, height_p, width_p)
            source = flat[start:start + span]
            total = _ZERO
            for p in range(span):
                total += row[p] * source[p]
            kernel_sum[k, f] += total


def _direct_forward_kernel(channels, kh, kw, code):
    """The kernel of the ``direct`` strategy for one filter geometry (C, k_h, k_w) and
    element-wise activation ``code``, made once per geometry and activation
    (:data:`_DIRECT_FORWARD`) and cached on disk like the module's other kernels (the four
    integers, closure values, are part of Numba's cache key; the activation's alone is compiled
    in, as in :func:`_wide_kernels`).

    Per sample, per filter f and wide column p (see the comment above
    :func:`conv2d_forward_wide`): products[f, p] = sum_k K[f, k] xpad[a_k + p], the taps k in
    order, so the numbers are those of ``K @ cols`` summed tap by tap. The geometry is fixed so
    that the compiler unrolls the taps: each filter's weights stay in registers, one sum per
    column builds up in a register and is stored once. A loop over taps outside the loop over
    columns (the geometry at run time) loads and stores every partial sum: LeNet-5's first
    layer, batch 64 on 2 cores, 400 -> 257 us. The indices are unsigned: with signed ones the
    compiler guards each against a negative index and gathers instead of loading (8x slower).
    """
    @njit(parallel=True, cache=True, error_model="numpy")
    def conv2d_forward_direct(x, kernel2d, bias, out, padded, products, ph, pw):
        """out (n, F, H', W') <- activation(products + b), products (T, F, L) each share's
        scratch, ``padded`` (T, C, H_p, W_p); element-wise activations only."""
        n, n_parts = x.shape[0], padded.shape[0]
        height_p, width_p = padded.shape[2], padded.shape[3]
        span = products.shape[2]
        chunk = -(-n // n_parts)
        for part in prange(n_parts):
            image, block = padded[part], products[part]
            flat = image.reshape(-1)
            for sample in range(part * chunk, min(n, (part + 1) * chunk)):
                _pad_into(x[sample], image, ph, pw)
                for f in range(block.shape[0]):
                    row, weights = block[f], kernel2d[f]
                    for p in range(span):
                        total = _ZERO
                        for c in range(channels):
                            for i in range(kh):
                                for j in range(kw):
                                    total += (weights[np.uintp((c * kh + i) * kw + j)]
                                              * flat[np.uintp((c * height_p + i) * width_p
                                                              + j + p)])
                        row[p] = total
                _wide_to_images(block, 0, bias, out[sample], width_p, code)
    return conv2d_forward_direct


#: {(C, k_h, k_w, activation code): the ``direct`` kernel of that geometry and activation}
#: (:func:`_direct_forward_kernel`).
_DIRECT_FORWARD = {}


@functools.cache
def _wide_kernels(code):
    """The ``wide`` strategy's kernels ``(conv2d_forward_wide, conv2d_backward_wide)`` for the
    element-wise activation ``code``, made on first use and cached on disk like the module's
    other kernels (``code``, a closure value, is part of Numba's cache key).

    ``code`` is a constant of each kernel, so its passes of :func:`_wide_to_images` and
    :func:`_images_to_wide_gradient` are those of its activation alone: with the activation
    given at run time each kernel compiled the passes of all four (``dlcore doctor``'s ReLU
    conv2d check: 9.7 s of one core compiling, 6.6 s with its own activation's alone).
    """
    @njit(parallel=True, cache=True)
    def conv2d_forward_wide(x, kernel2d, bias, out, cols, padded, products, kh, kw, ph, pw, blas,
                            integers):
        """Stride-1 convolution of every sample through wide columns (see above): each share
        takes its samples in groups of G = :data:`WIDE_GROUP` whose columns lie side by side in
        its ``cols`` (T, C k_h k_w, G L), and multiplies them at once; ``padded`` (T, C, H_p, W_p),
        ``products`` (T, F, G L), ``out`` (n, F, H', W'), L = (H' - 1) W_p + W'. Element-wise
        activations only."""
        n, n_parts, height_p, width_p, span, group, chunk = _wide_geometry(out, padded,
                                                                           products)
        for part in prange(n_parts):
            image, columns, block = padded[part], cols[part], products[part]
            flat = image.reshape(-1)
            first, last = part * chunk, min(n, (part + 1) * chunk)
            for start in range(first, last, group):
                count = min(group, last - start)
                for j in range(count):
                    _pad_into(x[start + j], image, ph, pw)
                    _wide_columns(flat, columns, j * span, span, kh, kw, height_p, width_p)
                # K @ the group's columns side by side (the first count of them)
                serial_gemm(blas, integers, kernel2d, columns[:, :count * span],
                            block[:, :count * span], False, False, 1.0, 0.0)
                for j in range(count):
                    _wide_to_images(block, j * span, bias, out[start + j], width_p, code)


    @njit(parallel=True, cache=True)
    def conv2d_backward_wide(x, kernel2d, y, grad_y, grad_x, cols, direct,
                             padded, grads, grad_cols, kernel_parts, bias_parts, kh, kw, ph, pw,
                             need_input_gradient, blas, integers):
        """The backward pass of :func:`conv2d_forward_wide`, a group of G samples at a time as
        the forward pass took them (G = 1: ``direct``): G (F, G L) with zeros in the gaps;
        dL/db += sums of G; dL/dK' += cols @ G', the group's columns built again in ``cols``
        (T, C k_h k_w, G L) (``direct``: from the padded x by :func:`_direct_wide_kernel_gradient`,
        without columns); dL/dx[s] = the interior of the wide col2im of the sample's part of
        K' @ G (row k added onto xpad[a_k : a_k + L]). ``grads`` (T, F, G L) and ``grad_cols``
        (T, C k_h k_w, G L) are the shares' scratch.

        The forward pass keeps no columns: building a group's columns again here, while they
        stay in the thread's cache, measured faster than reading back the whole batch's columns
        (LeNet-5's second layer, batch 64, 2 cores, alternating processes: forward and backward
        415 + 702 -> 311 + 718 us)."""
        n, n_parts, height_p, width_p, span, group, chunk = _wide_geometry(y, padded, grads)
        filters, patch = kernel2d.shape
        height, width = grad_x.shape[2], grad_x.shape[3]
        for part in prange(n_parts):
            kernel_sum, bias_sum, block = kernel_parts[part], bias_parts[part], grads[part]
            kernel_sum[:] = 0
            bias_sum[:] = 0
            image, columns, block_cols = padded[part], cols[part], grad_cols[part]
            flat = image.reshape(-1)
            first, last = part * chunk, min(n, (part + 1) * chunk)
            for start in range(first, last, group):
                count = min(group, last - start)
                used = count * span
                for j in range(count):
                    _images_to_wide_gradient(y[start + j], grad_y[start + j], block, j * span,
                                             width_p, code)
                for f in range(filters):
                    bias_sum[f] += _row_sum(block[f, :used])
                if direct:
                    _pad_into(x[start], image, ph, pw)
                    _direct_wide_kernel_gradient(block, flat, kernel_sum, kh, kw, height_p, width_p)
                else:
                    for j in range(count):
                        _pad_into(x[start + j], image, ph, pw)
                        _wide_columns(flat, columns, j * span, span, kh, kw, height_p, width_p)
                    serial_gemm(blas, integers, columns[:, :used], block[:, :used], kernel_sum,
                                False, True, 1.0, 1.0)
                if not need_input_gradient:
                    continue
                serial_gemm(blas, integers, kernel2d, block[:, :used], block_cols[:, :used],
                            True, False, 1.0, 0.0)
                for j in range(count):
                    image[:] = 0
                    for k in range(patch):
                        a_k = _wide_offset(k, kh, kw, height_p, width_p)
                        target = flat[a_k:a_k + span]
                        source = block_cols[k, j * span:(j + 1) * span]
                        for p in range(span):
                            target[p] += source[p]
                    for c in range(grad_x.shape[1]):
                        for row in range(height):
                            source = image[c, ph + row, pw:pw + width]
                            target = grad_x[start + j, c, row]
                            for column in range(width):
                                target[column] = source[column]

    return conv2d_forward_wide, conv2d_backward_wide


class CPUConvolution:
    """The ``samples``, ``wide`` and ``direct`` strategies of the module docstring, with the
    per-share scratch arrays they take from a layer's ``workspace``."""

    @staticmethod
    def path(window, activation):
        """"wide" (stride 1, an activation of :data:`WIDE_ACTIVATIONS`), "samples" (otherwise),
        or "batched" when :data:`CPU_SAMPLE_KERNELS` is off (the GPU's path, for the tests)."""
        if not CPU_SAMPLE_KERNELS:
            return "batched"
        stride_one = window.stride_height == 1 and window.stride_width == 1
        return "wide" if stride_one and activation in WIDE_ACTIVATIONS else "samples"

    @staticmethod
    def _blas(dtype):
        """The CPU backend's BLAS ?gemm entry for ``dtype`` and a probe of its integer type."""
        function, integer_type = BLAS_GEMM[np.dtype(dtype)]
        return function, np.empty(0, integer_type)

    @staticmethod
    def _parts(n):
        """The shares the samples are split into, each with its own scratch and its own sums
        of the parameter gradients, added up in order: as many as a product's blocks
        (:func:`dlcore.backend.cpu.product_parts`: ``$DLCORE_PRODUCT_BLOCKS``, else the size
        of the thread pool), not the threads in use, so that the sums, and a ``wide`` group's
        samples, are the same on 1, 2 or more threads; with fewer threads each takes several
        shares. At most one a sample."""
        return max(1, min(product_parts(), n))

    def forward(self, path, x, kernel2d, bias, w, code, out, workspace, keep_columns):
        """out (n, F, H', W') <- activation(K @ im2col(x) + b) by ``path`` ("wide" or
        "samples"); the ``samples`` columns are kept in the workspace when ``keep_columns``
        (the ``wide`` backward pass builds its columns again)."""
        if path == "wide":
            self._forward_wide(x, kernel2d, bias, w, code, out, workspace)
        else:
            self._forward_samples(x, kernel2d, bias, w, code, out, workspace, keep_columns)

    def backward(self, path, x, kernel2d, y, grad_y, w, code, grad_kernel, grad_bias, grad_x,
                 workspace):
        """dL/dK, dL/db and (unless ``grad_x`` is None) dL/dx by ``path`` (``samples``: from
        the columns the forward pass kept)."""
        if path == "wide":
            self._backward_wide(x, kernel2d, y, grad_y, w, code, grad_kernel, grad_bias, grad_x,
                                workspace)
        else:
            self._backward_samples(x, kernel2d, y, grad_y, w, code, grad_kernel, grad_bias,
                                   grad_x, workspace)

    @staticmethod
    def _direct(w):
        """Whether a ``wide`` convolution multiplies straight from the padded image: then it
        builds no columns, and its backward pass takes dL/dK from the padded image too."""
        return w.patch_size <= DIRECT_MAX_PATCH

    def _wide_scratch(self, w, parts, rows, workspace, name):
        """Each share's (rows, G L) scratch for a group of :data:`WIDE_GROUP` samples."""
        return workspace(name, (parts, rows, WIDE_GROUP * self._wide_span(w)))

    def _forward_wide(self, x, kernel2d, bias, w, code, out, workspace):
        parts, span = self._parts(x.shape[0]), self._wide_span(w)
        padded = self._padded(w, parts, workspace)
        if self._direct(w):
            key = (w.channels, w.kernel_height, w.kernel_width, code)
            if key not in _DIRECT_FORWARD:
                _DIRECT_FORWARD[key] = _direct_forward_kernel(*key)
            _DIRECT_FORWARD[key](
                x, kernel2d, bias, out, padded,
                workspace("thread_products", (parts, kernel2d.shape[0], span)),
                w.pad_height, w.pad_width)
            return
        conv2d_forward_wide, _ = _wide_kernels(code)
        conv2d_forward_wide(x, kernel2d, bias, out,
                            self._wide_scratch(w, parts, w.patch_size, workspace,
                                               "thread_wide_cols"), padded,
                            self._wide_scratch(w, parts, kernel2d.shape[0], workspace,
                                               "thread_group_products"),
                            w.kernel_height, w.kernel_width, w.pad_height, w.pad_width,
                            *self._blas(x.dtype))

    def _forward_samples(self, x, kernel2d, bias, w, code, out, workspace, keep_columns):
        n, parts, pixels = x.shape[0], self._parts(x.shape[0]), w.out_pixels
        cols = workspace("sample_cols" if keep_columns else "thread_cols",
                         (n if keep_columns else parts, w.patch_size, pixels))
        conv2d_forward_samples(x, kernel2d, bias, out.reshape(n, kernel2d.shape[0], pixels),
                               cols, workspace("thread_products",
                                               (parts, kernel2d.shape[0], pixels)),
                               *conv_geometry(w), code, *self._blas(x.dtype))

    def _parameter_parts(self, workspace, parts, kernel2d):
        return (workspace("thread_kernel_gradients", (parts,) + kernel2d.shape[::-1]),
                workspace("thread_bias_gradients", (parts, kernel2d.shape[0])))

    def _backward_wide(self, x, kernel2d, y, grad_y, w, code, grad_kernel, grad_bias, grad_x,
                       workspace):
        parts, span = self._parts(x.shape[0]), self._wide_span(w)
        direct = self._direct(w)
        group = 1 if direct else WIDE_GROUP
        kernel_parts, bias_parts = self._parameter_parts(workspace, parts, kernel2d)
        _, conv2d_backward_wide = _wide_kernels(code)
        conv2d_backward_wide(
            x, kernel2d, y, grad_y, x if grad_x is None else grad_x,
            np.empty((parts, 0, 0), x.dtype) if direct else
            self._wide_scratch(w, parts, w.patch_size, workspace, "thread_wide_cols"), direct,
            self._padded(w, parts, workspace),
            workspace("thread_grads", (parts, kernel2d.shape[0], group * span)),
            workspace("thread_grad_cols", (parts, w.patch_size, group * span)),
            kernel_parts, bias_parts, w.kernel_height, w.kernel_width, w.pad_height,
            w.pad_width, grad_x is not None, *self._blas(x.dtype))
        # the shares' sums added up in order, as the kernel did (NumPy: nothing to compile)
        np.sum(kernel_parts, axis=0, out=grad_kernel.reshape(kernel2d.shape).T)
        np.sum(bias_parts, axis=0, out=grad_bias)

    def _backward_samples(self, x, kernel2d, y, grad_y, w, code, grad_kernel, grad_bias,
                          grad_x, workspace):
        n, parts, pixels = x.shape[0], self._parts(x.shape[0]), w.out_pixels
        filters = kernel2d.shape[0]
        conv2d_backward_samples(
            x, kernel2d, y.reshape(n, filters, pixels), grad_y.reshape(n, filters, pixels),
            grad_kernel.reshape(kernel2d.shape), grad_bias, x if grad_x is None else grad_x,
            workspace("sample_cols", (n, w.patch_size, pixels)),
            workspace("thread_products", (parts, filters, pixels)),
            workspace("thread_grad_cols", (parts, w.patch_size, pixels)),
            *self._parameter_parts(workspace, parts, kernel2d), *conv_geometry(w), code,
            grad_x is not None, *self._blas(x.dtype))

    @staticmethod
    def _wide_span(w):
        """L = (H' - 1) W_p + W': a wide row of the columns of a stride-1 convolution."""
        return (w.out_height - 1) * (w.width + w.pad_width + w.pad_right) + w.out_width

    def _padded(self, w, parts, workspace):
        return workspace("thread_padded", (parts, w.channels,
                                           w.height + w.pad_height + w.pad_bottom,
                                           w.width + w.pad_width + w.pad_right))
