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

import numpy as np

from dlcore.backend.kernels import body
from dlcore.backend.rng import bernoulli, key_from_seed, philox4x32, shared, STREAM_DROPOUT

LINEAR, RELU, SIGMOID, TANH, SOFTMAX = 0, 1, 2, 3, 4
ACTIVATION_CODES = {"linear": LINEAR, "relu": RELU, "sigmoid": SIGMOID, "tanh": TANH,
                    "softmax": SOFTMAX}
POOL_CODES = {"max": 0, "avg": 1, "l2": 2}
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


@shared
def _pre(z, bias, n, f, p, n_stride, f_stride, bias_on_units):
    value = z[n * n_stride + f * f_stride + p]
    if bias.shape[0] > 0:
        value += bias[p] if bias_on_units else bias[f]
    return value


@body
def bias_activation_rows(row, first, last, z, bias, y, code, n_stride, f_stride,
                         bias_on_units):
    """y[n, f, p] = activation(z[n n_stride + f f_stride + p] + bias), row = n * F + f.
    ``bias`` is indexed by f (or by p when ``bias_on_units``), or empty for none. Softmax
    normalises over f (each element recomputes its column's max and sum: F is small)."""
    n_maps = y.shape[1]
    n, f = row // n_maps, row % n_maps
    for p in range(first, last):
        value = _pre(z, bias, n, f, p, n_stride, f_stride, bias_on_units)
        if code != SOFTMAX:
            y[n, f, p] = activate(code, value)
            continue
        top = value
        for other in range(n_maps):
            top = max(top, _pre(z, bias, n, other, p, n_stride, f_stride, bias_on_units))
        total = _ZERO
        for other in range(n_maps):
            total += np.float32(math.exp(_pre(z, bias, n, other, p, n_stride, f_stride,
                                              bias_on_units) - top))
        y[n, f, p] = np.float32(math.exp(value - top)) / total


@body
def activation_gradient_rows(row, first, last, y, grad_y, g, code, n_stride, f_stride):
    """g[n n_stride + f f_stride + p] = dL/dz from dL/dy and y (n, F, P), row = n * F + f;
    softmax: y_f (dL/dy_f - sum_f' dL/dy_f' y_f')."""
    n_maps = y.shape[1]
    n, f = row // n_maps, row % n_maps
    for p in range(first, last):
        if code != SOFTMAX:
            g[n * n_stride + f * f_stride + p] = grad_y[n, f, p] * derivative_from_output(
                code, y[n, f, p])
            continue
        dot = _ZERO
        for other in range(n_maps):
            dot += grad_y[n, other, p] * y[n, other, p]
        g[n * n_stride + f * f_stride + p] = y[n, f, p] * (grad_y[n, f, p] - dot)


@body
def bias_gradient_span(first, last, g, out, n_samples, n_pixels, n_stride, f_stride):
    """out[f] = sum over n and p of g[n n_stride + f f_stride + p] (dL/db), f in first..last-1."""
    for f in range(first, last):
        total = _ZERO
        for n in range(n_samples):
            start = n * n_stride + f * f_stride
            for p in range(n_pixels):
                total += g[start + p]
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
    for y in range(first, last):
        source_y = y * sh + i - ph
        base = (n * out_h + y) * out_w
        if source_y < 0 or source_y >= height:
            for column in range(out_w):
                cols[k, base + column] = _ZERO
            continue
        for column in range(inside_from):
            cols[k, base + column] = _ZERO
        for column in range(inside_from, inside_to):
            cols[k, base + column] = x[n, c, source_y, column * sw + j - pw]
        for column in range(inside_to, out_w):
            cols[k, base + column] = _ZERO


@body
def col2im_rows(row, first, last, cols, dx, kh, kw, sh, sw, ph, pw, out_h, out_w):
    """dx[n, c, h, w] = sum of the column entries im2col took from pixel (h, w): the gather
    form of col2im (no two threads write one pixel). row = n * C + c, input rows first..last-1."""
    channels, height, width = dx.shape[1], dx.shape[2], dx.shape[3]
    n, c = row // channels, row % channels
    for h in range(first, last):
        for w in range(width):
            dx[n, c, h, w] = _ZERO
        for i in range(kh):
            offset_y = h + ph - i
            if offset_y < 0 or offset_y % sh != 0 or offset_y // sh >= out_h:
                continue
            base = (n * out_h + offset_y // sh) * out_w
            for j in range(kw):
                k = (c * kh + i) * kw + j
                if sw == 1:   # the contiguous case: pixels w <- output columns w + P_w - j
                    for w in range(max(0, j - pw), min(width, out_w + j - pw)):
                        dx[n, c, h, w] += cols[k, base + w + pw - j]
                    continue
                for w in range(width):
                    offset_x = w + pw - j
                    if offset_x >= 0 and offset_x % sw == 0 and offset_x // sw < out_w:
                        dx[n, c, h, w] += cols[k, base + offset_x // sw]


# -- pooling --------------------------------------------------------------------------------
@body
def pool_rows(row, first, last, x, y, argmax, kind, kh, kw, sh, sw):
    """Output rows first..last-1 of plane ``row`` (x, y as (planes, H, W)): max (with the
    argmax index h W + w, first maximum on ties), mean, or root of the sum of squares."""
    width, out_w = x.shape[2], y.shape[2]
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
    for i in range(first, last):
        out[i] = a[i] * b[i]


class KernelOps:
    """The operations of :class:`dlcore.layers.ops.ReferenceOps`, as launches of the bodies
    above on a ``cpu`` or ``cuda`` backend (see the module docstring)."""

    name = "kernels"

    def __init__(self, backend):
        self.backend = backend
        self._no_bias = backend.zeros((0,))

    # dense
    def dense_forward(self, x, kernel, bias, activation, out, scratch):
        be, code = self.backend, ACTIVATION_CODES[activation]
        n, units = out.shape
        if code == SOFTMAX:   # normalised over the units: read from a separate product
            be.gemm(x, kernel, scratch)
            be.launch_rows(bias_activation_rows, n * units, 1, scratch.reshape(-1), bias,
                           out.reshape(n, units, 1), code, units, 1, False)
            return
        be.gemm(x, kernel, out)
        be.launch_rows(bias_activation_rows, n, units, out.reshape(-1), bias,
                       out.reshape(n, 1, units), code, units, 0, True)

    def dense_backward(self, x, kernel, y, grad_y, activation, grad_kernel, grad_bias, grad_x,
                       scratch):
        be, code = self.backend, ACTIVATION_CODES[activation]
        n, units = y.shape
        if code == SOFTMAX:
            be.launch_rows(activation_gradient_rows, n * units, 1, y.reshape(n, units, 1),
                           grad_y.reshape(n, units, 1), scratch.reshape(-1), code, units, 1)
        else:
            be.launch_rows(activation_gradient_rows, n, units, y.reshape(n, 1, units),
                           grad_y.reshape(n, 1, units), scratch.reshape(-1), code, units, 0)
        be.launch_1d(bias_gradient_span, units, scratch.reshape(-1), grad_bias, n, 1, units, 1)
        be.gemm(x, scratch, grad_kernel, trans_a=True)
        if grad_x is not None:
            be.gemm(scratch, kernel, grad_x, trans_b=True)

    # convolution
    def conv2d_forward(self, x, kernel, bias, window, activation, out, cols, products):
        be, w = self.backend, window
        n, filters, pixels = x.shape[0], kernel.shape[0], window.out_pixels
        be.launch_rows(im2col_rows, w.patch_size * n, w.out_height, x, cols, w.kernel_height,
                       w.kernel_width, w.stride_height, w.stride_width, w.pad_height,
                       w.pad_width, w.out_height, w.out_width)
        be.gemm(kernel.reshape(filters, w.patch_size), cols, products)
        be.launch_rows(bias_activation_rows, n * filters, pixels, products.reshape(-1), bias,
                       out.reshape(n, filters, pixels), ACTIVATION_CODES[activation], pixels,
                       n * pixels, False)

    def conv2d_backward(self, x, kernel, y, grad_y, window, activation, grad_kernel, grad_bias,
                        grad_x, cols, scratch):
        be, w = self.backend, window
        products, grad_cols = scratch
        n, filters, pixels = x.shape[0], kernel.shape[0], window.out_pixels
        be.launch_rows(activation_gradient_rows, n * filters, pixels,
                       y.reshape(n, filters, pixels), grad_y.reshape(n, filters, pixels),
                       products.reshape(-1), ACTIVATION_CODES[activation], pixels, n * pixels)
        be.launch_1d(bias_gradient_span, filters, products.reshape(-1), grad_bias, n, pixels,
                     pixels, n * pixels)
        kernel_matrix = kernel.reshape(filters, w.patch_size)
        be.gemm(products, cols, grad_kernel.reshape(filters, w.patch_size), trans_b=True)
        if grad_x is None:
            return
        be.gemm(kernel_matrix, products, grad_cols, trans_a=True)
        be.launch_rows(col2im_rows, n * w.channels, w.height, grad_cols, grad_x,
                       w.kernel_height, w.kernel_width, w.stride_height, w.stride_width,
                       w.pad_height, w.pad_width, w.out_height, w.out_width)

    # pooling
    def _planes(self, array):
        return array.reshape(array.shape[0] * array.shape[1], array.shape[2], array.shape[3])

    def pool_forward(self, kind, x, window, out, argmax):
        w = window
        self.backend.launch_rows(pool_rows, x.shape[0] * x.shape[1], w.out_height,
                                 self._planes(x), self._planes(out), self._planes(argmax),
                                 POOL_CODES[kind], w.kernel_height, w.kernel_width,
                                 w.stride_height, w.stride_width)

    def pool_backward(self, kind, x, y, argmax, grad_y, window, grad_x):
        w = window
        if w.stride_height >= w.kernel_height and w.stride_width >= w.kernel_width:
            body, units = pool_gradient_tiles_rows, w.out_height
        else:
            body, units = pool_gradient_rows, w.height
        self.backend.launch_rows(body, x.shape[0] * x.shape[1], units,
                                 self._planes(x), self._planes(y), self._planes(argmax),
                                 self._planes(grad_y), self._planes(grad_x), POOL_CODES[kind],
                                 w.kernel_height, w.kernel_width, w.stride_height,
                                 w.stride_width)

    # element-wise
    def _maps(self, array, activation):
        """(n, F, P) view for an activation: softmax along the features of (n, features);
        element-wise ones over (n, channels, pixels)."""
        n = array.shape[0]
        if activation == "softmax":
            return array.reshape(n, -1, 1)
        return array.reshape(n, array.shape[1], -1) if array.ndim > 2 else \
            array.reshape(n, 1, -1)

    def activation_forward(self, activation, x, out):
        view = self._maps(x, activation)
        n, maps, pixels = view.shape
        self.backend.launch_rows(bias_activation_rows, n * maps, pixels, x.reshape(-1),
                                 self._no_bias, self._maps(out, activation),
                                 ACTIVATION_CODES[activation], maps * pixels, pixels, False)

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
        self.backend.launch_rows(dropout_rows, n, -(-rows.shape[1] // 4), rows,
                                 out.reshape(n, -1), mask.reshape(n, -1), np.float32(rate),
                                 np.float32(1.0 / (1.0 - rate)), k0, k1,
                                 np.uint64(STREAM_DROPOUT), np.uint64(step))

    def multiply(self, a, b, out):
        self.backend.launch_1d(multiply_span, out.size, a.reshape(-1), b.reshape(-1),
                               out.reshape(-1))
