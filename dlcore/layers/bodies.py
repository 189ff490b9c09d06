"""The layers' operations as Numba kernel bodies, for the ``cpu`` and ``cuda`` backends.

Each body computes a span of one result in place and is written once (see
:mod:`dlcore.backend.kernels`): ``launch_rows(body, n_rows, n_units, ...)`` runs
``body(row, first, last, ...)`` over every row (the CPU: rows in ``prange``, all units of a row
in one call, so the inner loops are long and contiguous; CUDA: one thread per (row, unit)), and
``launch_1d(body, n, ...)`` runs ``body(first, last, ...)`` over ``range(n)``. Matrix products go
to the backend's ``gemm`` (BLAS on the CPU, cuBLAS or a tiled kernel on CUDA).

How a convolution runs (the reference computes the same in :mod:`dlcore.layers.reference`):

    forward   cols = im2col(x)                      (C k_h k_w, n H' W')    im2col_rows
              Z = K (F, C k_h k_w) @ cols           (F, n H' W')            gemm
              y = activation(Z + b), as NCHW        (n, F, H', W')          bias_activation_rows
    backward  G = dL/dy * activation'(y), as (F, n H' W')                   activation_gradient_rows
              dL/db = row sums of G                                         bias_gradient_span
              dL/dK = G @ cols'                                             gemm
              dL/dx = col2im(K' @ G)                                        gemm, col2im_rows

im2col + GEMM was measured against a direct convolution on LeNet-5's layers (2 cores): the
GEMM of the first layer takes 0.4 ms per batch of 64 and the whole im2col path beats a direct
Numba loop nest by 2-3x on the second layer, so convolutions go through the GEMM.

Activations are indexed through a view (n, f, p) of the pre-activations with strides
(n_stride, f_stride, 1), so that one body serves Dense outputs (n, units), the channel-major
products of a convolution (F, n H' W') and the outputs of activation layers. A softmax runs
over the f axis (the classes of a Dense layer, the channels of a convolution).
"""
import math

import numba
import numpy as np
from numba import njit, prange

from dlcore.backend.kernels import body
from dlcore.backend.rng import STREAM_DROPOUT, bernoulli, key_from_seed, philox4x32, shared

from dlcore.backend.cpu import BLAS_GEMM, serial_gemm  # the backend's BLAS entry


LINEAR, RELU, SIGMOID, TANH, SOFTMAX = 0, 1, 2, 3, 4
ACTIVATION_CODES = {"linear": LINEAR, "relu": RELU, "sigmoid": SIGMOID, "tanh": TANH,
                    "softmax": SOFTMAX}
POOL_CODES = {"max": 0, "avg": 1, "l2": 2}
#: Convolutions on the CPU run a sample at a time in one parallel region (see
#: conv2d_forward_samples); False sends them down the batched path the GPU takes.
CPU_SAMPLE_KERNELS = True
#: Inference through a stride-1 convolution with at most this many weights per filter multiplies
#: straight from the padded image, without columns: measured 1.5x faster than the GEMM for
#: LeNet-5's first layer (25 weights, 6 filters), 1.7x slower for its second (150, 16).
DIRECT_MAX_PATCH = 32
_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)


# -- activations ----------------------------------------------------------------------------
@shared
def activate(code, z):
    """The element-wise activations (not softmax) in float32."""
    if code == RELU:
        return z if z > _ZERO else _ZERO
    if code == SIGMOID:
        return _ONE / (_ONE + np.float32(math.exp(-z)))
    if code == TANH:
        return np.float32(math.tanh(z))
    return z


@shared
def derivative_from_output(code, y):
    """activation'(z) written with y = activation(z): [y > 0], y (1 - y), 1 - y^2, 1."""
    if code == RELU:
        return _ONE if y > _ZERO else _ZERO
    if code == SIGMOID:
        return y * (_ONE - y)
    if code == TANH:
        return _ONE - y * y
    return _ONE


@body
def bias_activation_rows(row, first, last, z, bias, y, code, n_stride, f_stride,
                         bias_on_units):
    """y[n, f, p] = activation(z[n n_stride + f f_stride + p] + bias), row = n * F + f.
    ``bias`` is indexed by f (or by p when ``bias_on_units``), or empty for none. Softmax
    normalises over f (each element recomputes its column's max and sum: F is small)."""
    n_maps = y.shape[1]
    n, f = row // n_maps, row % n_maps
    if code == SOFTMAX:
        _softmax_span(n, f, first, last, z, bias, y, n_stride, f_stride)
        return
    start = n * n_stride + f * f_stride + first
    pre, out = z[start:start + last - first], y[n, f, first:last]
    if bias_on_units and bias.shape[0] > 0:
        unit_bias = bias[first:last]
        for p in range(out.shape[0]):
            out[p] = activate(code, pre[p] + unit_bias[p])
        return
    _shifted_activation(pre, out, bias[f] if bias.shape[0] > 0 else _ZERO, code)


@body
def _shifted_activation(source, target, shift, code):
    """target = activation(source + shift), element-wise codes, over two 1-D views."""
    if code == RELU:   # the common case, as a loop the compiler vectorises
        for p in range(target.shape[0]):
            value = source[p] + shift
            target[p] = value if value > _ZERO else _ZERO
    else:
        for p in range(target.shape[0]):
            target[p] = activate(code, source[p] + shift)


@body
def _activation_gradient(outputs, incoming, target, code):
    """target = dL/dy * activation'(y) from y (``outputs``), element-wise codes, 1-D views."""
    if code == RELU:
        for p in range(target.shape[0]):
            target[p] = incoming[p] if outputs[p] > _ZERO else _ZERO
    else:
        for p in range(target.shape[0]):
            target[p] = incoming[p] * derivative_from_output(code, outputs[p])


@body
def _softmax_span(n, f, first, last, z, bias, y, n_stride, f_stride):
    """y[n, f, p] = exp(a_f - max_f' a_f') / sum_f' exp(a_f' - max), a_f = z[..] + bias[f]."""
    n_maps = y.shape[1]
    has_bias = bias.shape[0] > 0
    for p in range(first, last):
        top = z[n * n_stride + p] + (bias[0] if has_bias else _ZERO)
        for other in range(n_maps):
            value = z[n * n_stride + other * f_stride + p] + (bias[other] if has_bias
                                                              else _ZERO)
            top = max(top, value)
        total = _ZERO
        for other in range(n_maps):
            value = z[n * n_stride + other * f_stride + p] + (bias[other] if has_bias
                                                              else _ZERO)
            total += np.float32(math.exp(value - top))
        value = z[n * n_stride + f * f_stride + p] + (bias[f] if has_bias else _ZERO)
        y[n, f, p] = np.float32(math.exp(value - top)) / total


@body
def activation_gradient_rows(row, first, last, y, grad_y, g, code, n_stride, f_stride):
    """g[n n_stride + f f_stride + p] = dL/dz from dL/dy and y (n, F, P), row = n * F + f;
    softmax: y_f (dL/dy_f - sum_f' dL/dy_f' y_f')."""
    n_maps = y.shape[1]
    n, f = row // n_maps, row % n_maps
    start = n * n_stride + f * f_stride + first
    out, outputs, grads = g[start:start + last - first], y[n, f, first:last], \
        grad_y[n, f, first:last]
    if code != SOFTMAX:
        _activation_gradient(outputs, grads, out, code)
    else:
        for p in range(first, last):
            dot = _ZERO
            for other in range(n_maps):
                dot += grad_y[n, other, p] * y[n, other, p]
            g[start - first + p] = y[n, f, p] * (grad_y[n, f, p] - dot)


@body
def bias_gradient_span(first, last, g, out, n_samples, n_pixels, n_stride, f_stride):
    """out[f] = sum over n and p of g[n n_stride + f f_stride + p] (dL/db), f in first..last-1."""
    for f in range(first, last):
        total = _ZERO
        for n in range(n_samples):
            start = n * n_stride + f * f_stride
            values = g[start:start + n_pixels]
            for p in range(n_pixels):
                total += values[p]
        out[f] = total


# -- convolution: im2col and col2im ---------------------------------------------------------
@body
def im2col_rows(row, first, last, x, cols, kh, kw, sh, sw, ph, pw, out_h, out_w):
    """cols[k, (n H' + y) W' + x'] = xpad[n, c, S_h y + i - P_h, S_w x' + j - P_w] for the
    output rows y in first..last-1; row = k * n_samples + n, k = (c k_h + i) k_w + j."""
    n_samples, height, width = x.shape[0], x.shape[2], x.shape[3]
    k, n = row // n_samples, row % n_samples
    c, tap = k // (kh * kw), k % (kh * kw)
    i, j = tap // kw, tap % kw
    # output columns whose source column S_w x' + j - P_w lies inside the image
    inside_from = max(0, -(-(pw - j) // sw))
    inside_to = max(inside_from, min(out_w, (width - 1 + pw - j) // sw + 1))
    # Loops run from 0 over views: an index that might be negative costs Numba a wrap-around
    # test per element and the loop its vectorisation (measured: 5x slower).
    for y in range(first, last):
        source_y = y * sh + i - ph
        base = (n * out_h + y) * out_w
        target = cols[k, base:base + out_w]
        if source_y < 0 or source_y >= height:
            for column in range(out_w):
                target[column] = _ZERO
            continue
        for column in range(inside_from):
            target[column] = _ZERO
        inside = target[inside_from:inside_to]
        source = x[n, c, source_y, inside_from * sw + j - pw:]
        if sw == 1:   # a contiguous copy, which the compiler vectorises
            for column in range(inside.shape[0]):
                inside[column] = source[column]
        else:
            for column in range(inside.shape[0]):
                inside[column] = source[column * sw]
        for column in range(inside_to, out_w):
            target[column] = _ZERO


@body
def col2im_rows(row, first, last, cols, dx, kh, kw, sh, sw, ph, pw, out_h, out_w):
    """dx[n, c, h, w] = sum of the column entries im2col took from pixel (h, w): the gather
    form of col2im (no two threads write one pixel). row = n * C + c, input rows first..last-1."""
    channels, height, width = dx.shape[1], dx.shape[2], dx.shape[3]
    n, c = row // channels, row % channels
    for h in range(first, last):
        pixels = dx[n, c, h]
        for w in range(width):
            pixels[w] = _ZERO
        for i in range(kh):
            offset_y = h + ph - i
            if offset_y < 0 or offset_y % sh != 0 or offset_y // sh >= out_h:
                continue
            base = (n * out_h + offset_y // sh) * out_w
            for j in range(kw):
                k = (c * kh + i) * kw + j
                if sw == 1:   # contiguous: pixels w <- output columns w + P_w - j (from 0, views)
                    low, high = max(0, j - pw), min(width, out_w + j - pw)
                    if high <= low:
                        continue
                    target = pixels[low:high]
                    source = cols[k, base + low + pw - j:]
                    for w in range(target.shape[0]):
                        target[w] += source[w]
                    continue
                for w in range(width):
                    offset_x = w + pw - j
                    if offset_x >= 0 and offset_x % sw == 0 and offset_x // sw < out_w:
                        pixels[w] += cols[k, base + offset_x // sw]


# -- pooling --------------------------------------------------------------------------------
@body
def pool_rows(row, first, last, x, y, argmax, kind, kh, kw, sh, sw):
    """Output rows first..last-1 of plane ``row`` (x, y as (planes, H, W)): max (with the
    argmax index h W + w, first maximum on ties), mean, or root of the sum of squares."""
    width, out_w = x.shape[2], y.shape[2]
    if kind == 0 and kh == 2 and kw == 2 and sh == 2 and sw == 2:
        _max_pool_2x2(row, first, last, x, y, argmax)
        return
    scale = _ONE / np.float32(kh * kw)
    for oy in range(first, last):
        for ox in range(out_w):
            top, where, total = x[row, oy * sh, ox * sw], (oy * sh) * width + ox * sw, _ZERO
            for i in range(kh):
                for j in range(kw):
                    value = x[row, oy * sh + i, ox * sw + j]
                    if value > top:
                        top, where = value, (oy * sh + i) * width + ox * sw + j
                    total += value * value if kind == 2 else value
            if kind == 0:
                y[row, oy, ox] = top
                argmax[row, oy, ox] = where
            elif kind == 1:
                y[row, oy, ox] = total * scale
            else:
                y[row, oy, ox] = np.float32(math.sqrt(total))


@body
def _max_pool_2x2(row, first, last, x, y, argmax):
    """LeNet's pooling (2x2, stride 2), written out: four comparisons per output."""
    width = x.shape[2]
    for oy in range(first, last):
        top_row, bottom_row = 2 * oy, 2 * oy + 1
        for ox in range(y.shape[2]):
            left = 2 * ox
            top, where = x[row, top_row, left], top_row * width + left
            if x[row, top_row, left + 1] > top:
                top, where = x[row, top_row, left + 1], where + 1
            if x[row, bottom_row, left] > top:
                top, where = x[row, bottom_row, left], bottom_row * width + left
            if x[row, bottom_row, left + 1] > top:
                top, where = x[row, bottom_row, left + 1], bottom_row * width + left + 1
            y[row, oy, ox] = top
            argmax[row, oy, ox] = where


@body
def pool_gradient_rows(row, first, last, x, y, argmax, grad_y, grad_x, kind, kh, kw, sh, sw):
    """Input rows first..last-1 of plane ``row``: each pixel gathers the gradient of every pool
    that contains it (max: only where it was the maximum; average: 1/K; L2: x / h)."""
    height, width = x.shape[1], x.shape[2]
    out_h, out_w = y.shape[1], y.shape[2]
    scale = _ONE / np.float32(kh * kw)
    for h in range(first, last):
        first_oy, last_oy = max(0, (h - kh + sh) // sh), min(out_h - 1, h // sh)
        for w in range(width):
            first_ox, last_ox = max(0, (w - kw + sw) // sw), min(out_w - 1, w // sw)
            total = _ZERO
            for oy in range(first_oy, last_oy + 1):
                for ox in range(first_ox, last_ox + 1):
                    if kind == 0:
                        if argmax[row, oy, ox] == h * width + w:
                            total += grad_y[row, oy, ox]
                    elif kind == 1:
                        total += grad_y[row, oy, ox] * scale
                    elif y[row, oy, ox] > _ZERO:
                        total += grad_y[row, oy, ox] * x[row, h, w] / y[row, oy, ox]
            grad_x[row, h, w] = total


@body
def pool_gradient_tiles_rows(row, first, last, x, y, argmax, grad_y, grad_x, kind, kh, kw, sh,
                             sw):
    """The same as :func:`pool_gradient_rows` for pools that do not overlap (S >= F), by
    output rows: each output row owns input rows S oy .. S oy + S - 1 (the rows a stride
    skips get zeros), so no two threads write one pixel and no search is needed."""
    height, width = x.shape[1], x.shape[2]
    out_w = y.shape[2]
    scale = _ONE / np.float32(kh * kw)
    for oy in range(first, last):
        for h in range(oy * sh, min(height, oy * sh + sh)):
            for w in range(width):
                grad_x[row, h, w] = _ZERO
        for ox in range(out_w):
            g = grad_y[row, oy, ox]
            if kind == 0:
                where = argmax[row, oy, ox]
                grad_x[row, where // width, where % width] = g
                continue
            for i in range(kh):
                for j in range(kw):
                    h, w = oy * sh + i, ox * sw + j
                    if kind == 1:
                        grad_x[row, h, w] = g * scale
                    elif y[row, oy, ox] > _ZERO:
                        grad_x[row, h, w] = g * x[row, h, w] / y[row, oy, ox]


# -- dropout and products -------------------------------------------------------------------
@body
def dropout_rows(row, first_block, last_block, x, out, mask, rate, scale, k0, k1, stream,
                 step):
    """Blocks of four features of one sample: keep = [u >= rate] with the four uniforms of
    one Philox call (counter (block, row, step, stream)); mask = keep / (1 - rate)."""
    n_columns = x.shape[1]
    for block in range(first_block, last_block):
        w0, w1, w2, w3 = philox4x32(np.uint64(block), np.uint64(row), step, stream, k0, k1)
        for lane in range(4):
            column = 4 * block + lane
            if column >= n_columns:
                break
            word = w0 if lane == 0 else (w1 if lane == 1 else (w2 if lane == 2 else w3))
            keep = _ONE - bernoulli(rate, word)   # bernoulli(rate) = [u < rate]
            mask[row, column] = keep * scale
            out[row, column] = x[row, column] * keep * scale


@body
def multiply_span(first, last, a, b, out):
    left, right, target = a[first:last], b[first:last], out[first:last]
    for i in range(target.shape[0]):
        target[i] = left[i] * right[i]


# -- the CPU's convolutions: one parallel region per pass, a sample at a time -----------------
# The batched path (im2col of the whole batch, one GEMM, a bias pass) suits a GPU. On the CPU
# it costs three parallel regions per pass and streams the batch's columns through memory
# between them; here each thread takes a share of the samples and, per sample, builds the
# columns, multiplies and applies the activation while the data sit in its cache (the same
# bodies, on one-sample views). The columns are kept for the backward pass, which would
# otherwise build them again. Products are single-threaded BLAS calls made from the kernel,
# through the CPU backend's BLAS entry (NumPy's bundled OpenBLAS when found: measured 2-2.7x
# faster than Numba's np.dot on these 6x25x784 and 16x150x100 products).


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
            for f in range(filters):
                bias_activation_rows(f, 0, pixels, products[thread].reshape(-1), bias,
                                     out[sample:sample + 1], code, 0, pixels, False)


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
def _wide_to_images(products, bias, images, width_p, code):
    """images (F, H', W') <- activation(products[f, y W_p + x] + b[f]) for x < W' (element-wise
    activations only; the wide rows' last W_p - W' entries are dropped)."""
    for f in range(images.shape[0]):
        shift = bias[f] if bias.shape[0] > 0 else _ZERO
        for y in range(images.shape[1]):
            _shifted_activation(products[f, y * width_p:], images[f, y], shift, code)


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


@njit(parallel=True, cache=True)
def conv2d_forward_wide(x, kernel2d, bias, out, cols, padded, products, kh, kw, ph, pw, code,
                        direct, blas, integers):
    """Stride-1 convolution of every sample through wide columns (see above): ``cols``
    (n or T, C k_h k_w, L), ``padded`` (T, C, H_p, W_p), ``products`` (T, F, L), ``out``
    (n, F, H', W'), L = (H' - 1) W_p + W'. Element-wise activations only. ``direct``: no
    columns (nothing kept for a backward pass), products by :func:`_direct_wide_products`."""
    n, n_threads = x.shape[0], padded.shape[0]
    patch = kernel2d.shape[1]
    height_p, width_p = padded.shape[2], padded.shape[3]
    span = cols.shape[2]
    chunk = -(-n // n_threads)
    for thread in prange(n_threads):
        image = padded[thread]
        flat = image.reshape(-1)
        for sample in range(thread * chunk, min(n, (thread + 1) * chunk)):
            _pad_into(x[sample], image, ph, pw)
            if direct:
                _direct_wide_products(kernel2d, flat, products[thread], kh, kw, height_p,
                                      width_p)
            else:
                columns = cols[sample] if cols.shape[0] == n else cols[thread]
                for k in range(patch):
                    start = _wide_offset(k, kh, kw, height_p, width_p)
                    columns[k] = flat[start:start + span]
                serial_gemm(blas, integers, kernel2d, columns, products[thread],
                            False, False, 1.0, 0.0)
            _wide_to_images(products[thread], bias, out[sample], width_p, code)


@njit(parallel=True, cache=True)
def conv2d_backward_wide(kernel2d, y, grad_y, grad_kernel, grad_bias, grad_x, cols, padded,
                         grads, grad_cols, kernel_parts, bias_parts, kh, kw, ph, pw, code,
                         need_input_gradient, blas, integers):
    """The backward pass of :func:`conv2d_forward_wide`, per sample: G (F, L) with zeros in
    the gaps; dL/db += sums of G; dL/dK += G @ cols[s]'; dL/dx[s] = the interior of the wide
    col2im of K' @ G (row k added onto xpad[a_k : a_k + L])."""
    n, n_threads = y.shape[0], padded.shape[0]
    filters, patch = kernel2d.shape
    height_p, width_p = padded.shape[2], padded.shape[3]
    height, width = grad_x.shape[2], grad_x.shape[3]
    span = cols.shape[2]
    chunk = -(-n // n_threads)
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
            serial_gemm(blas, integers, g, cols[sample], kernel_sum,
                        False, True, 1.0, 1.0)
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


class KernelOps:
    """The operations of :class:`dlcore.layers.ops.ReferenceOps`, as launches of the bodies
    above on a ``cpu`` or ``cuda`` backend (see the module docstring); small launches run
    serially on the CPU (:data:`dlcore.backend.cpu.SERIAL_ELEMENTS`)."""

    name = "kernels"

    def __init__(self, backend):
        self.backend = backend
        self.samples_on_cpu = backend.name == "cpu"
        self._no_bias = backend.zeros((0,))

    # dense
    def dense_forward(self, x, kernel, bias, activation, out, workspace):
        code = ACTIVATION_CODES[activation]
        n, units = out.shape
        if code == SOFTMAX:   # normalised over the units: read from a separate product
            products = workspace("products", (n, units))
            self.backend.gemm(x, kernel, products)
            self.backend.launch_rows(bias_activation_rows, n * units, 1, products.reshape(-1), bias,
                             out.reshape(n, units, 1), code, units, 1, False)
            return
        self.backend.gemm(x, kernel, out)
        self.backend.launch_rows(bias_activation_rows, n, units, out.reshape(-1), bias,
                         out.reshape(n, 1, units), code, units, 0, True)

    def dense_backward(self, x, kernel, y, grad_y, activation, grad_kernel, grad_bias, grad_x,
                       workspace):
        code = ACTIVATION_CODES[activation]
        n, units = y.shape
        g = workspace("grad_preactivation", (n, units))
        if code == SOFTMAX:
            self.backend.launch_rows(activation_gradient_rows, n * units, 1, y.reshape(n, units, 1),
                             grad_y.reshape(n, units, 1), g.reshape(-1), code, units, 1)
        else:
            self.backend.launch_rows(activation_gradient_rows, n, units, y.reshape(n, 1, units),
                             grad_y.reshape(n, 1, units), g.reshape(-1), code, units, 0)
        self.backend.launch_1d(bias_gradient_span, units, g.reshape(-1), grad_bias, n, 1, units, 1,
                          work=n * units)
        self.backend.gemm(x, g, grad_kernel, trans_a=True)
        if grad_x is not None:
            self.backend.gemm(g, kernel, grad_x, trans_b=True)

    # convolution
    @staticmethod
    def _geometry(w):
        return (w.kernel_height, w.kernel_width, w.stride_height, w.stride_width, w.pad_height,
                w.pad_width, w.out_height, w.out_width)

    @staticmethod
    def _blas(dtype):
        """The CPU backend's BLAS ?gemm entry for ``dtype`` and a probe of its integer type."""
        function, integer_type = BLAS_GEMM[np.dtype(dtype)]
        return function, np.empty(0, integer_type)

    def _threads(self, n):
        return max(1, min(numba.get_num_threads(), n))

    def _conv_path(self, window, activation):
        """How a convolution runs: "wide" (CPU, stride 1, element-wise activation),
        "samples" (CPU, otherwise) or "batched" (CUDA; see the comments above each)."""
        if not (self.samples_on_cpu and CPU_SAMPLE_KERNELS):
            return "batched"
        stride_one = window.stride_height == 1 and window.stride_width == 1
        return "wide" if stride_one and activation != "softmax" else "samples"

    def conv2d_forward(self, x, kernel, bias, window, activation, out, workspace,
                       keep_columns=True):
        path = self._conv_path(window, activation)
        self._columns_kept = keep_columns
        arguments = (x, kernel.reshape(kernel.shape[0], window.patch_size), bias, window,
                     ACTIVATION_CODES[activation], out, workspace, keep_columns)
        {"wide": self._forward_wide, "samples": self._forward_samples,
         "batched": self._forward_batched}[path](*arguments)

    def _forward_wide(self, x, kernel2d, bias, w, code, out, workspace, keep_columns):
        n, threads, span = x.shape[0], self._threads(x.shape[0]), self._wide_span(w)
        cols = workspace("wide_cols" if keep_columns else "thread_wide_cols",
                         (n if keep_columns else threads, w.patch_size, span))
        conv2d_forward_wide(x, kernel2d, bias, out, cols, self._padded(w, threads, workspace),
                            workspace("thread_products", (threads, kernel2d.shape[0], span)),
                            w.kernel_height, w.kernel_width, w.pad_height, w.pad_width, code,
                            not keep_columns and w.patch_size <= DIRECT_MAX_PATCH,
                            *self._blas(x.dtype))

    def _forward_samples(self, x, kernel2d, bias, w, code, out, workspace, keep_columns):
        n, threads, pixels = x.shape[0], self._threads(x.shape[0]), w.out_pixels
        cols = workspace("sample_cols" if keep_columns else "thread_cols",
                         (n if keep_columns else threads, w.patch_size, pixels))
        conv2d_forward_samples(x, kernel2d, bias, out.reshape(n, kernel2d.shape[0], pixels),
                               cols, workspace("thread_products",
                                               (threads, kernel2d.shape[0], pixels)),
                               *self._geometry(w), code, *self._blas(x.dtype))

    def _forward_batched(self, x, kernel2d, bias, w, code, out, workspace, keep_columns):
        n, filters, pixels = x.shape[0], kernel2d.shape[0], w.out_pixels
        cols = workspace("cols", (w.patch_size, n * pixels))
        products = workspace("products", (filters, n * pixels))
        self.backend.launch_rows(im2col_rows, w.patch_size * n, w.out_height, x, cols,
                         *self._geometry(w))
        self.backend.gemm(kernel2d, cols, products)
        self.backend.launch_rows(bias_activation_rows, n * filters, pixels, products.reshape(-1), bias,
                         out.reshape(n, filters, pixels), code, pixels, n * pixels, False)

    def conv2d_backward(self, x, kernel, y, grad_y, window, activation, grad_kernel, grad_bias,
                        grad_x, workspace):
        path = self._conv_path(window, activation)
        if path != "batched" and not getattr(self, "_columns_kept", False):
            # the forward pass ran without keeping its columns: build them again
            self.conv2d_forward(x, kernel, self._no_bias, window, activation,
                                workspace("recomputed_output", y.shape), workspace)
        arguments = (x, kernel.reshape(kernel.shape[0], window.patch_size), y, grad_y, window,
                     ACTIVATION_CODES[activation], grad_kernel, grad_bias, grad_x, workspace)
        {"wide": self._backward_wide, "samples": self._backward_samples,
         "batched": self._backward_batched}[path](*arguments)

    def _parameter_parts(self, workspace, threads, kernel2d):
        return (workspace("thread_kernel_gradients", (threads,) + kernel2d.shape),
                workspace("thread_bias_gradients", (threads, kernel2d.shape[0])))

    def _backward_wide(self, x, kernel2d, y, grad_y, w, code, grad_kernel, grad_bias, grad_x,
                       workspace):
        n, threads, span = x.shape[0], self._threads(x.shape[0]), self._wide_span(w)
        conv2d_backward_wide(
            kernel2d, y, grad_y, grad_kernel.reshape(kernel2d.shape), grad_bias,
            x if grad_x is None else grad_x, workspace("wide_cols", (n, w.patch_size, span)),
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
            *self._parameter_parts(workspace, threads, kernel2d), *self._geometry(w), code,
            grad_x is not None, *self._blas(x.dtype))

    def _backward_batched(self, x, kernel2d, y, grad_y, w, code, grad_kernel, grad_bias,
                          grad_x, workspace):
        n, filters, pixels = x.shape[0], kernel2d.shape[0], w.out_pixels
        cols = workspace("cols", (w.patch_size, n * pixels))   # as the forward pass left them
        products = workspace("products", (filters, n * pixels))
        self.backend.launch_rows(activation_gradient_rows, n * filters, pixels,
                         y.reshape(n, filters, pixels), grad_y.reshape(n, filters, pixels),
                         products.reshape(-1), code, pixels, n * pixels)
        self.backend.launch_1d(bias_gradient_span, filters, products.reshape(-1), grad_bias, n,
                          pixels, pixels, n * pixels, work=n * filters * pixels)
        self.backend.gemm(products, cols, grad_kernel.reshape(kernel2d.shape), trans_b=True)
        if grad_x is None:
            return
        grad_cols = workspace("grad_cols", (w.patch_size, n * pixels))
        self.backend.gemm(kernel2d, products, grad_cols, trans_a=True)
        self.backend.launch_rows(col2im_rows, n * w.channels, w.height, grad_cols, grad_x,
                         *self._geometry(w))

    @staticmethod
    def _wide_span(w):
        """L = (H' - 1) W_p + W': a wide row of the columns of a stride-1 convolution."""
        return (w.out_height - 1) * (w.width + 2 * w.pad_width) + w.out_width

    def _padded(self, w, threads, workspace):
        return workspace("thread_padded", (threads, w.channels, w.height + 2 * w.pad_height,
                                           w.width + 2 * w.pad_width))

    # pooling
    @staticmethod
    def _planes(array):
        return array.reshape(array.shape[0] * array.shape[1], array.shape[2], array.shape[3])

    def _pool_geometry(self, w):
        return w.kernel_height, w.kernel_width, w.stride_height, w.stride_width

    def pool_forward(self, kind, x, window, out, argmax):
        self.backend.launch_rows(pool_rows, x.shape[0] * x.shape[1], window.out_height,
                         self._planes(x), self._planes(out), self._planes(argmax),
                         POOL_CODES[kind], *self._pool_geometry(window))

    def pool_backward(self, kind, x, y, argmax, grad_y, window, grad_x):
        w = window
        if w.stride_height >= w.kernel_height and w.stride_width >= w.kernel_width:
            body, units = pool_gradient_tiles_rows, w.out_height
        else:
            body, units = pool_gradient_rows, w.height
        self.backend.launch_rows(body, x.shape[0] * x.shape[1], units, self._planes(x), self._planes(y),
                         self._planes(argmax), self._planes(grad_y), self._planes(grad_x),
                         POOL_CODES[kind], *self._pool_geometry(w))

    # element-wise
    @staticmethod
    def _maps(array, activation):
        """(n, F, P) view for an activation: softmax along the features of (n, features);
        element-wise ones over (n, channels, pixels)."""
        n = array.shape[0]
        if activation == "softmax":
            return array.reshape(n, -1, 1)
        return array.reshape(n, array.shape[1], -1) if array.ndim > 2 else \
            array.reshape(n, 1, -1)

    def activation_forward(self, activation, x, out):
        n, maps, pixels = self._maps(x, activation).shape
        self.backend.launch_rows(bias_activation_rows, n * maps, pixels, x.reshape(-1), self._no_bias,
                         self._maps(out, activation), ACTIVATION_CODES[activation],
                         maps * pixels, pixels, False)

    def activation_backward(self, activation, y, grad_y, grad_x):
        view = self._maps(y, activation)
        n, maps, pixels = view.shape
        self.backend.launch_rows(activation_gradient_rows, n * maps, pixels, view,
                         self._maps(grad_y, activation), grad_x.reshape(-1),
                         ACTIVATION_CODES[activation], maps * pixels, pixels)

    def dropout_forward(self, x, out, mask, rate, seed, step):
        n = x.shape[0]
        k0, k1 = key_from_seed(seed)
        rows = x.reshape(n, -1)
        self.backend.launch_rows(dropout_rows, n, -(-rows.shape[1] // 4), rows, out.reshape(n, -1),
                         mask.reshape(n, -1), np.float32(rate), np.float32(1.0 / (1.0 - rate)),
                         k0, k1, np.uint64(STREAM_DROPOUT), np.uint64(step))

    def multiply(self, a, b, out):
        self.backend.launch_1d(multiply_span, out.size, a.reshape(-1), b.reshape(-1),
                          out.reshape(-1))
