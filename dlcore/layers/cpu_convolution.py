"""The CPU's own convolution strategies: a sample at a time inside one parallel region.

On a GPU a convolution is three launches over the whole batch (im2col, one GEMM, a bias and
activation pass: :class:`dlcore.layers.ops.KernelOps`). On the CPU each Numba thread takes a
share of the samples and runs every step of a sample while its data sit in the thread's cache,
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
import numba
import numpy as np
from numba import njit, prange

from dlcore.backend.cpu import BLAS_GEMM, serial_gemm  # the backend's BLAS entry
from dlcore.layers.bodies import (
    SOFTMAX,
    _activation_gradient,
    _shifted_activation,
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
#: padded image, without columns: measured 1.5x faster than the GEMM for LeNet-5's first layer
#: (25 weights, 6 filters), 1.7x slower for its second (150, 16). In training its backward pass
#: takes dL/dK as one dot product per weight from the padded image too: LeNet-5's first layer,
#: batch 64, forward 595 -> 433 us and backward 600 -> 497 us against the kept columns' GEMMs
#: (building a sample's columns again in the backward pass instead measured 825 us).
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
    per thread, when they are not needed; ``products`` (T, F, P) the threads' scratch; ``out``
    (n, F, P)."""
    n, n_threads = x.shape[0], products.shape[0]
    filters, patch, pixels = kernel2d.shape[0], kernel2d.shape[1], out.shape[2]
    chunk = -(-n // n_threads)
    for thread in prange(n_threads):
        for sample in range(thread * chunk, min(n, (thread + 1) * chunk)):
            columns = cols[sample] if cols.shape[0] == n else cols[thread]
            for k in range(patch):
                im2col_rows(k, 0, out_h, x[sample:sample + 1], columns, kh, kw, sh, sw, ph, pw,
                            out_h, out_w)
            serial_gemm(blas, integers, kernel2d, columns, products[thread],
                        False, False, 1.0, 0.0)
            if code == SOFTMAX:
                softmax_rows(0, 0, pixels, products[thread].reshape(-1), bias,
                             out[sample:sample + 1], 0, pixels)
                continue
            for f in range(filters):
                bias_activation_rows(f, 0, pixels, products[thread].reshape(-1), bias,
                                     out[sample:sample + 1], code, 0, pixels)


@njit(parallel=True, cache=True)
def conv2d_backward_samples(x, kernel2d, y, grad_y, grad_kernel, grad_bias, grad_x, cols,
                            grads, grad_cols, kernel_parts, bias_parts, kh, kw, sh, sw, ph,
                            pw, out_h, out_w, code, need_input_gradient, blas, integers):
    """Per sample s: G = dL/dy[s] * activation'(y[s]) (F, P); dL/db += row sums of G;
    dL/dK += G @ cols[s]' (the forward pass's columns); dL/dx[s] = col2im(K' @ G). Each
    thread sums its samples' parameter gradients in ``kernel_parts[t]``/``bias_parts[t]``,
    added up at the end. Scratch per thread: grads (T, F, P), grad_cols (T, C k_h k_w, P)."""
    n, n_threads = x.shape[0], grads.shape[0]
    filters, pixels = kernel2d.shape[0], y.shape[2]
    channels, height = x.shape[1], x.shape[2]
    chunk = -(-n // n_threads)
    for thread in prange(n_threads):
        kernel_sum, bias_sum, g = kernel_parts[thread], bias_parts[thread], grads[thread]
        kernel_sum[:] = 0
        bias_sum[:] = 0
        for sample in range(thread * chunk, min(n, (thread + 1) * chunk)):
            for f in range(filters):
                activation_gradient_rows(f, 0, pixels, y[sample:sample + 1],
                                         grad_y[sample:sample + 1], g.reshape(-1), code, 0,
                                         pixels)
                bias_sum[f] += _row_sum(g[f])
            serial_gemm(blas, integers, g, cols[sample], kernel_sum,
                        False, True, 1.0, 1.0)
            if need_input_gradient:
                serial_gemm(blas, integers, kernel2d, g, grad_cols[thread],
                            True, False, 1.0, 0.0)
                for c in range(channels):
                    col2im_rows(c, 0, height, grad_cols[thread], grad_x[sample:sample + 1], kh,
                                kw, sh, sw, ph, pw, out_h, out_w)
    grad_kernel[:] = kernel_parts.sum(axis=0)
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
    for c in range(image.shape[0]):
        padded[c, ph:ph + height, pw:pw + width] = image[c]


@njit(cache=True)
def _wide_to_images(products, offset, bias, images, width_p, code):
    """images (F, H', W') <- activation(products[f, offset + y W_p + x] + b[f]) for x < W'
    (element-wise activations only; the wide rows' last W_p - W' entries are dropped). An
    offset, not a view of the sample's columns: a 2-D slice would be a strided array, which
    the compiler does not vectorise."""
    for f in range(images.shape[0]):
        shift = bias[f] if bias.shape[0] > 0 else _ZERO
        for y in range(images.shape[1]):
            _shifted_activation(products[f, offset + y * width_p:], images[f, y], shift, code)


@njit(cache=True)
def _images_to_wide_gradient(outputs, grad_outputs, grads, width_p, code):
    """grads (F, L)[f, y W_p + x] <- dL/dy * activation'(y) for x < W', 0 in the gaps."""
    grads[:] = 0
    for f in range(outputs.shape[0]):
        for y in range(outputs.shape[1]):
            _activation_gradient(outputs[f, y], grad_outputs[f, y],
                                 grads[f, y * width_p:y * width_p + outputs.shape[2]], code)


@njit(cache=True)
def _wide_offset(k, kh, kw, height_p, width_p):
    """a_k = (c H_p + i) W_p + j for filter tap k = (c k_h + i) k_w + j."""
    c, tap = k // (kh * kw), k % (kh * kw)
    return (c * height_p + tap // kw) * width_p + tap % kw


@njit(cache=True)
def _wide_columns(flat, columns, offset, span, kh, kw, height_p, width_p):
    """columns (C k_h k_w, G L)[k, offset : offset + L] <- xpad[a_k : a_k + L] of the flat
    padded image."""
    for k in range(columns.shape[0]):
        start = _wide_offset(k, kh, kw, height_p, width_p)
        columns[k, offset:offset + span] = flat[start:start + span]


@njit(cache=True, fastmath=True)
def _direct_wide_kernel_gradient(grads, flat, kernel_sum, kh, kw, height_p, width_p):
    """kernel_sum (F, C k_h k_w)[f, k] += G[f] . xpad[a_k : a_k + L]: the same sum as
    G @ cols' without building cols, one vectorised dot product of L numbers per weight
    (fastmath lets the compiler split each sum into vector lanes)."""
    span = grads.shape[1]
    for f in range(kernel_sum.shape[0]):
        row = grads[f]
        for k in range(kernel_sum.shape[1]):
            start = _wide_offset(k, kh, kw, height_p, width_p)
            source = flat[start:start + span]
            total = _ZERO
            for p in range(span):
                total += row[p] * source[p]
            kernel_sum[f, k] += total


@njit(cache=True, error_model="numpy")
def _direct_wide_products(kernel2d, flat, products, kh, kw, height_p, width_p):
    """products (F, L)[f] = sum_k K[f, k] xpad[a_k : a_k + L]: the same product as K @ cols
    without building cols, one vectorised multiply-add of L numbers per weight."""
    span = products.shape[1]
    for f in range(products.shape[0]):
        row = products[f]
        row[:] = 0
        for k in range(kernel2d.shape[1]):
            weight = kernel2d[f, k]
            start = _wide_offset(k, kh, kw, height_p, width_p)
            source = flat[start:start + span]
            for p in range(span):
                row[p] += weight * source[p]


@njit(cache=True)
def _group_of(sample, chunk, groups_per_thread, group):
    """(the index of a sample's group among every thread's groups, its place in the group):
    thread t takes samples t chunk .. (t + 1) chunk - 1, in groups of ``group``."""
    thread, local = sample // chunk, sample % chunk
    return thread * groups_per_thread + local // group, local % group


@njit(parallel=True, cache=True)
def conv2d_forward_wide(x, kernel2d, bias, out, cols, padded, products, kh, kw, ph, pw, code,
                        direct, blas, integers):
    """Stride-1 convolution of every sample through wide columns (see above): ``cols``
    (T g or T, C k_h k_w, G L), each thread's samples in groups of G = :data:`WIDE_GROUP`
    whose columns lie side by side, every group kept (T g of them) or one per thread;
    ``padded`` (T, C, H_p, W_p), ``products`` (T, F, G L) (direct: (T, F, L)), ``out``
    (n, F, H', W'),
    L = (H' - 1) W_p + W'. Element-wise activations only. ``direct``: no columns (nothing kept
    for a backward pass), products by :func:`_direct_wide_products`, a sample at a time."""
    n, n_threads = x.shape[0], padded.shape[0]
    height_p, width_p = padded.shape[2], padded.shape[3]
    span = (out.shape[2] - 1) * width_p + out.shape[3]
    group = products.shape[2] // span
    chunk = -(-n // n_threads)
    groups_per_thread = -(-chunk // group)
    for thread in prange(n_threads):
        image = padded[thread]
        flat = image.reshape(-1)
        block = products[thread]
        first, last = thread * chunk, min(n, (thread + 1) * chunk)
        for start in range(first, last, group):
            count = min(group, last - start)
            if direct:   # products (T, F, L): a sample at a time
                for sample in range(start, start + count):
                    _pad_into(x[sample], image, ph, pw)
                    _direct_wide_products(kernel2d, flat, block, kh, kw, height_p, width_p)
                    _wide_to_images(block, 0, bias, out[sample], width_p, code)
                continue
            # every group kept for the backward pass, or one buffer per thread (the same
            # array when a thread has one group)
            columns = cols[_group_of(start, chunk, groups_per_thread, group)[0]] \
                if cols.shape[0] == n_threads * groups_per_thread else cols[thread]
            for j in range(count):
                _pad_into(x[start + j], image, ph, pw)
                _wide_columns(flat, columns, j * span, span, kh, kw, height_p, width_p)
            # K @ the group's columns side by side (the first count of them)
            serial_gemm(blas, integers, kernel2d, columns[:, :count * span],
                        block[:, :count * span], False, False, 1.0, 0.0)
            for j in range(count):
                _wide_to_images(block, j * span, bias, out[start + j], width_p, code)


@njit(parallel=True, cache=True)
def conv2d_backward_wide(x, kernel2d, y, grad_y, grad_kernel, grad_bias, grad_x, cols,
                         columns_kept, padded, grads, grad_cols, kernel_parts, bias_parts, kh, kw,
                         ph, pw, code, need_input_gradient, blas, integers):
    """The backward pass of :func:`conv2d_forward_wide`, per sample: G (F, L) with zeros in
    the gaps; dL/db += sums of G; dL/dK += G @ cols[s]'; dL/dx[s] = the interior of the wide
    col2im of K' @ G (row k added onto xpad[a_k : a_k + L]). ``cols`` (T g, C k_h k_w, G L)
    as the forward pass kept them, in groups (``columns_kept``); else empty, and dL/dK comes
    from the padded x by :func:`_direct_wide_kernel_gradient`."""
    n, n_threads = y.shape[0], padded.shape[0]
    filters, patch = kernel2d.shape
    height_p, width_p = padded.shape[2], padded.shape[3]
    height, width = grad_x.shape[2], grad_x.shape[3]
    span = grads.shape[2]
    chunk = -(-n // n_threads)
    groups_per_thread = cols.shape[0] // n_threads
    group = cols.shape[2] // span if columns_kept else 1
    for thread in prange(n_threads):
        kernel_sum, bias_sum, g = kernel_parts[thread], bias_parts[thread], grads[thread]
        kernel_sum[:] = 0
        bias_sum[:] = 0
        image = padded[thread]
        flat = image.reshape(-1)
        for sample in range(thread * chunk, min(n, (thread + 1) * chunk)):
            _images_to_wide_gradient(y[sample], grad_y[sample], g, width_p, code)
            for f in range(filters):
                bias_sum[f] += _row_sum(g[f])
            if columns_kept:   # dL/dK += G cols', the sample's columns in its group's rows
                index, place = _group_of(sample, chunk, groups_per_thread, group)
                serial_gemm(blas, integers, g, cols[index, :, place * span:(place + 1) * span],
                            kernel_sum, False, True, 1.0, 1.0)
            else:
                _pad_into(x[sample], image, ph, pw)
                _direct_wide_kernel_gradient(g, flat, kernel_sum, kh, kw, height_p, width_p)
            if not need_input_gradient:
                continue
            serial_gemm(blas, integers, kernel2d, g, grad_cols[thread],
                        True, False, 1.0, 0.0)
            image[:] = 0
            for k in range(patch):
                start = _wide_offset(k, kh, kw, height_p, width_p)
                target, source = flat[start:start + span], grad_cols[thread, k]
                for p in range(span):
                    target[p] += source[p]
            for c in range(grad_x.shape[1]):
                grad_x[sample, c] = image[c, ph:ph + height, pw:pw + width]
    grad_kernel[:] = kernel_parts.sum(axis=0)
    grad_bias[:] = bias_parts.sum(axis=0)


class CPUConvolution:
    """The ``samples``, ``wide`` and ``direct`` strategies of the module docstring, with the
    per-thread scratch arrays they take from a layer's ``workspace``."""

    @staticmethod
    def path(window, activation):
        """"wide" (stride 1, element-wise activation), "samples" (otherwise), or "batched"
        when :data:`CPU_SAMPLE_KERNELS` is off (the GPU's path, for the tests)."""
        if not CPU_SAMPLE_KERNELS:
            return "batched"
        stride_one = window.stride_height == 1 and window.stride_width == 1
        return "wide" if stride_one and activation != "softmax" else "samples"

    @staticmethod
    def _blas(dtype):
        """The CPU backend's BLAS ?gemm entry for ``dtype`` and a probe of its integer type."""
        function, integer_type = BLAS_GEMM[np.dtype(dtype)]
        return function, np.empty(0, integer_type)

    @staticmethod
    def _threads(n):
        return max(1, min(numba.get_num_threads(), n))

    def forward(self, path, x, kernel2d, bias, w, code, out, workspace, keep_columns):
        """out (n, F, H', W') <- activation(K @ im2col(x) + b) by ``path`` ("wide" or
        "samples"); the columns are kept in the workspace when ``keep_columns``."""
        if path == "wide":
            self._forward_wide(x, kernel2d, bias, w, code, out, workspace, keep_columns)
        else:
            self._forward_samples(x, kernel2d, bias, w, code, out, workspace, keep_columns)

    def backward(self, path, x, kernel2d, y, grad_y, w, code, grad_kernel, grad_bias, grad_x,
                 workspace):
        """dL/dK, dL/db and (unless ``grad_x`` is None) dL/dx by ``path``, from the columns the
        forward pass kept."""
        if path == "wide":
            self._backward_wide(x, kernel2d, y, grad_y, w, code, grad_kernel, grad_bias, grad_x,
                                workspace)
        else:
            self._backward_samples(x, kernel2d, y, grad_y, w, code, grad_kernel, grad_bias,
                                   grad_x, workspace)

    @staticmethod
    def _direct(w):
        """Whether a ``wide`` convolution multiplies straight from the padded image: then it
        keeps no columns, and its backward pass takes dL/dK from the padded image too."""
        return w.patch_size <= DIRECT_MAX_PATCH

    def _wide_cols(self, w, n, threads, workspace, kept):
        """The wide columns of every group of :data:`WIDE_GROUP` samples (kept), or of one
        group per thread, each (C k_h k_w, G L)."""
        samples_per_thread = -(-n // threads)
        groups = -(-samples_per_thread // WIDE_GROUP) if kept else 1
        return workspace("wide_cols" if kept else "thread_wide_cols",
                         (threads * groups, w.patch_size, WIDE_GROUP * self._wide_span(w)))

    def _forward_wide(self, x, kernel2d, bias, w, code, out, workspace, keep_columns):
        n, threads, span = x.shape[0], self._threads(x.shape[0]), self._wide_span(w)
        kept = keep_columns and not self._direct(w)
        conv2d_forward_wide(x, kernel2d, bias, out, self._wide_cols(w, n, threads, workspace, kept),
                            self._padded(w, threads, workspace),
                            workspace("thread_group_products",
                                      (threads, kernel2d.shape[0],
                                       span if self._direct(w) else WIDE_GROUP * span)),
                            w.kernel_height, w.kernel_width, w.pad_height, w.pad_width, code,
                            self._direct(w), *self._blas(x.dtype))

    def _forward_samples(self, x, kernel2d, bias, w, code, out, workspace, keep_columns):
        n, threads, pixels = x.shape[0], self._threads(x.shape[0]), w.out_pixels
        cols = workspace("sample_cols" if keep_columns else "thread_cols",
                         (n if keep_columns else threads, w.patch_size, pixels))
        conv2d_forward_samples(x, kernel2d, bias, out.reshape(n, kernel2d.shape[0], pixels),
                               cols, workspace("thread_products",
                                               (threads, kernel2d.shape[0], pixels)),
                               *conv_geometry(w), code, *self._blas(x.dtype))

    def _parameter_parts(self, workspace, threads, kernel2d):
        return (workspace("thread_kernel_gradients", (threads,) + kernel2d.shape),
                workspace("thread_bias_gradients", (threads, kernel2d.shape[0])))

    def _backward_wide(self, x, kernel2d, y, grad_y, w, code, grad_kernel, grad_bias, grad_x,
                       workspace):
        n, threads, span = x.shape[0], self._threads(x.shape[0]), self._wide_span(w)
        kept = not self._direct(w)
        conv2d_backward_wide(
            x, kernel2d, y, grad_y, grad_kernel.reshape(kernel2d.shape), grad_bias,
            x if grad_x is None else grad_x,
            self._wide_cols(w, n, threads, workspace, kept) if kept else
            np.empty((0, 0, 0), x.dtype), kept,
            self._padded(w, threads, workspace),
            workspace("thread_products", (threads, kernel2d.shape[0], span)),
            workspace("thread_grad_cols", (threads, w.patch_size, span)),
            *self._parameter_parts(workspace, threads, kernel2d), w.kernel_height,
            w.kernel_width, w.pad_height, w.pad_width, code, grad_x is not None,
            *self._blas(x.dtype))

    def _backward_samples(self, x, kernel2d, y, grad_y, w, code, grad_kernel, grad_bias,
                          grad_x, workspace):
        n, threads, pixels = x.shape[0], self._threads(x.shape[0]), w.out_pixels
        filters = kernel2d.shape[0]
        conv2d_backward_samples(
            x, kernel2d, y.reshape(n, filters, pixels), grad_y.reshape(n, filters, pixels),
            grad_kernel.reshape(kernel2d.shape), grad_bias, x if grad_x is None else grad_x,
            workspace("sample_cols", (n, w.patch_size, pixels)),
            workspace("thread_products", (threads, filters, pixels)),
            workspace("thread_grad_cols", (threads, w.patch_size, pixels)),
            *self._parameter_parts(workspace, threads, kernel2d), *conv_geometry(w), code,
            grad_x is not None, *self._blas(x.dtype))

    @staticmethod
    def _wide_span(w):
        """L = (H' - 1) W_p + W': a wide row of the columns of a stride-1 convolution."""
        return (w.out_height - 1) * (w.width + w.pad_width + w.pad_right) + w.out_width

    def _padded(self, w, threads, workspace):
        return workspace("thread_padded", (threads, w.channels,
                                           w.height + w.pad_height + w.pad_bottom,
                                           w.width + w.pad_width + w.pad_right))
