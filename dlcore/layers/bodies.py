"""The layers' kernel bodies, written once for the ``cpu`` and ``cuda`` backends.

Each body computes a span of one result in place and is written once (see
:mod:`dlcore.backend.kernel_backend`): ``launch_rows(body, n_rows, n_units, ...)`` runs
``body(row, first, last, ...)`` over every row (the CPU: rows in ``prange``, all units of a row
in one call, so the inner loops are long and contiguous; CUDA: one thread per (row, unit)), and
``launch_1d(body, n, ...)`` runs ``body(first, last, ...)`` over ``range(n)``. Matrix products go
to the backend's ``gemm`` (BLAS on the CPU, cuBLAS or a tiled kernel on CUDA). Which bodies run
with which arguments is :class:`dlcore.layers.ops.KernelOps`'s business; this module imports
nothing of a particular backend, so that CUDA never loads the CPU's (a test holds it to that).

How a convolution runs (the reference computes the same in :mod:`dlcore.layers.reference`):

    forward   cols = im2col(x)                      (C k_h k_w, n H' W')    im2col_rows
              Z = K (F, C k_h k_w) @ cols           (F, n H' W')            gemm
              y = activation(Z + b), as NCHW        (n, F, H', W')          bias_activation_rows
                                                                            (softmax_rows)
    backward  G = dL/dy * activation'(y), as (F, n H' W')                   activation_gradient_rows
              dL/db = row sums of G                                         bias_gradient_span
              dL/dK = G @ cols'                                             gemm
              dL/dx = col2im(K' @ G)                                        gemm, col2im_rows

im2col + GEMM was measured against a direct convolution on LeNet-5's layers (2 cores): the
GEMM of the first layer takes 0.4 ms per batch of 64 and the whole im2col path beats a direct
Numba loop nest by 2-3x on the second layer, so convolutions go through the GEMM. The CPU runs
these same bodies a sample at a time instead (:mod:`dlcore.layers.cpu_convolution`).

Activations are indexed through a view (n, f, p) of the pre-activations with strides
(n_stride, f_stride, 1), so that one body serves Dense outputs (n, units), the channel-major
products of a convolution (F, n H' W') and the outputs of activation layers. A softmax runs
over the f axis (the classes of a Dense layer, the channels of a convolution).
"""
import math

import numpy as np

from dlcore.backend.kernel_math import max_and_exp_sum, sigmoid, tanh
from dlcore.backend.registry import body, called, shared
from dlcore.backend.rng import bernoulli, philox4x32

LINEAR, RELU, SIGMOID, TANH, SOFTMAX = 0, 1, 2, 3, 4
ELU, SELU, SOFTPLUS, SOFTSIGN, RELU6, LEAKY_RELU = 5, 6, 7, 8, 9, 10
HARD_SIGMOID, EXPONENTIAL, GELU, SILU, MISH, HARD_SILU = 11, 12, 13, 14, 15, 16
ACTIVATION_CODES = {"linear": LINEAR, "relu": RELU, "sigmoid": SIGMOID, "tanh": TANH,
                    "softmax": SOFTMAX, "elu": ELU, "selu": SELU, "softplus": SOFTPLUS,
                    "softsign": SOFTSIGN, "relu6": RELU6, "leaky_relu": LEAKY_RELU,
                    "hard_sigmoid": HARD_SIGMOID, "exponential": EXPONENTIAL, "gelu": GELU,
                    "silu": SILU, "mish": MISH, "hard_silu": HARD_SILU}
#: The activations whose derivative needs the pre-activation z, not only y = activation(z)
#: (none of them is monotonic, or y would tell z): a layer with one of them keeps z
#: (:meth:`dlcore.layers.base.WeightedLayer._activate`).
NEEDS_PREACTIVATION = ("gelu", "silu", "mish", "hard_silu")
#: SELU's alpha and scale (Klambauer et al. 2017, as Keras and PyTorch write them)
SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
#: the slope of ``leaky_relu`` for z < 0: Keras's ``keras.activations.leaky_relu`` default
#: (its LeakyReLU *layer* defaults to 0.3: :class:`dlcore.layers.LeakyReLU` takes any slope)
LEAKY_RELU_SLOPE = 0.2
POOL_CODES = {"max": 0, "avg": 1, "l2": 2}
_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)
_SIX = np.float32(6.0)
_THREE = np.float32(3.0)
_HALF = np.float32(0.5)
#: 1 / sqrt(2) and 1 / sqrt(2 pi): the normal distribution's constants in GELU
_INVERSE_SQRT2 = 0.70710678118654752440
_INVERSE_SQRT_2PI = 0.39894228040143267794


# -- activations ----------------------------------------------------------------------------
@body
def bias_activation_rows(row, first, last, z, bias, y, code, n_stride, f_stride):
    """y[n, f, p] = activation(z[n n_stride + f f_stride + p] + bias[f]), row = n * F + f, for
    the element-wise codes (a softmax runs in :func:`softmax_rows`). ``bias`` is indexed by f,
    or empty for none."""
    n_maps = y.shape[1]
    n, f = row // n_maps, row % n_maps
    start = n * n_stride + f * f_stride + first
    source = z[start:start + last - first]
    _activation_span(source, source, y[n, f, first:last],
                     bias[f] if bias.shape[0] > 0 else _ZERO, code, SHIFTED)


@body
def unit_bias_activation_rows(row, first, last, y, bias, code):
    """y[n, u] <- activation(y[n, u] + bias[u]) in place, row = n, for a Dense layer's (N, U)
    product; ``bias`` (U,) or empty for none; element-wise codes.

    In place through one view, the bias in its own pass, then a loop per activation: the CPU
    compiler left the one-pass loop scalar whether it read and wrote two views of the same
    memory, loaded the bias conditionally or chose the activation inside (each measured 6x
    slower: 95-110 us against 15 us for 32 x 500 sigmoids)."""
    out = y[row, first:last]
    if bias.shape[0] > 0:
        unit_bias = bias[first:last]
        for u in range(out.shape[0]):
            out[u] += unit_bias[u]
    _activation_span(out, out, out, _ZERO, code, IN_PLACE)


@shared
def relu(z):
    """max(z, 0)."""
    return z if z > _ZERO else _ZERO


@shared
def linear(z):
    """z itself."""
    return z


@shared
def relu_backward(y, grad_y):
    """dL/dz = dL/dy relu'(z), written with y = relu(z): dL/dy where y > 0."""
    return grad_y if y > _ZERO else _ZERO


@shared
def sigmoid_backward(y, grad_y):
    """dL/dz = dL/dy sigm'(z) = dL/dy y (1 - y), y = sigm(z)."""
    return grad_y * (y * (_ONE - y))


@shared
def tanh_backward(y, grad_y):
    """dL/dz = dL/dy tanh'(z) = dL/dy (1 - y^2), y = tanh(z)."""
    return grad_y * (_ONE - y * y)


@shared
def linear_backward(y, grad_y):
    """dL/dz = dL/dy."""
    return grad_y


# The activations past tanh, each with dL/dz written from its output y (as the layers keep y,
# not z): every one is monotonic, so the sign of y tells the branch of z.
@shared
def elu(z):
    """z for z > 0, else exp(z) - 1 (Clevert et al. 2015, alpha = 1: Keras's default)."""
    return z if z > _ZERO else math.expm1(z)


@shared
def elu_backward(y, grad_y):
    """dL/dz = dL/dy for y > 0, else dL/dy exp(z) = dL/dy (y + 1)."""
    return grad_y if y > _ZERO else grad_y * (y + _ONE)


@shared
def selu(z):
    """scale z for z > 0, else scale alpha (exp(z) - 1)."""
    return SELU_SCALE * z if z > _ZERO else SELU_SCALE * SELU_ALPHA * math.expm1(z)


@shared
def selu_backward(y, grad_y):
    """dL/dz = dL/dy scale for y > 0, else dL/dy scale alpha exp(z) = dL/dy (y + scale alpha)."""
    return grad_y * SELU_SCALE if y > _ZERO else grad_y * (y + SELU_SCALE * SELU_ALPHA)


@shared
def softplus(z):
    """log(1 + exp(z)), as max(z, 0) + log(1 + exp(-|z|)): no overflow for large z."""
    return max(z, _ZERO) + math.log1p(math.exp(-abs(z)))


@shared
def softplus_backward(y, grad_y):
    """dL/dz = dL/dy sigm(z) = dL/dy (1 - exp(-y)), as -expm1(-y): exact for small y."""
    return -grad_y * math.expm1(-y)


@shared
def softsign(z):
    """z / (1 + |z|)."""
    return z / (_ONE + abs(z))


@shared
def softsign_backward(y, grad_y):
    """dL/dz = dL/dy / (1 + |z|)^2 = dL/dy (1 - |y|)^2."""
    complement = _ONE - abs(y)
    return grad_y * (complement * complement)


@shared
def relu6(z):
    """min(max(z, 0), 6)."""
    return min(max(z, _ZERO), _SIX)


@shared
def relu6_backward(y, grad_y):
    """dL/dz = dL/dy where 0 < y < 6."""
    return grad_y if _ZERO < y < _SIX else _ZERO


@shared
def leaky_relu(z, slope):
    """z for z > 0, else slope z."""
    return z if z > _ZERO else slope * z


@shared
def leaky_relu_backward(y, grad_y, slope):
    """dL/dz = dL/dy for y > 0, else slope dL/dy (slope >= 0: y > 0 exactly where z > 0)."""
    return grad_y if y > _ZERO else slope * grad_y


@shared
def hard_sigmoid(z):
    """relu6(z + 3) / 6: Keras 3's piecewise-linear sigmoid (Keras 2's was clip(0.2 z + 0.5))."""
    return min(max(z + _THREE, _ZERO), _SIX) / _SIX


@shared
def hard_sigmoid_backward(y, grad_y):
    """dL/dz = dL/dy / 6 where 0 < y < 1."""
    return grad_y / _SIX if _ZERO < y < _ONE else _ZERO


@shared
def exponential_backward(y, grad_y):
    """dL/dz = dL/dy exp(z) = dL/dy y."""
    return grad_y * y


# The activations of NEEDS_PREACTIVATION, each with dL/dz written from z.
@shared
def gelu(z):
    """z Phi(z) = z (1 + erf(z / sqrt 2)) / 2, Phi the standard normal distribution function
    (Hendrycks and Gimpel 2016; Keras's ``gelu`` with its default ``approximate=False``)."""
    return _HALF * z * (_ONE + math.erf(z * _INVERSE_SQRT2))


@shared
def gelu_backward(z, grad_y):
    """dL/dz = dL/dy (Phi(z) + z phi(z)), phi(z) = exp(-z^2 / 2) / sqrt(2 pi)."""
    return grad_y * (_HALF * (_ONE + math.erf(z * _INVERSE_SQRT2))
                     + z * _INVERSE_SQRT_2PI * math.exp(-_HALF * z * z))


@shared
def silu(z):
    """z sigm(z) (Keras's ``silu``, alias ``swish``)."""
    return z * sigmoid(z)


@shared
def silu_backward(z, grad_y):
    """dL/dz = dL/dy sigm(z) (1 + z (1 - sigm(z)))."""
    s = sigmoid(z)
    return grad_y * (s * (_ONE + z * (_ONE - s)))


@shared
def mish(z):
    """z tanh(softplus(z)) (Misra 2019)."""
    return z * math.tanh(softplus(z))


@shared
def mish_backward(z, grad_y):
    """dL/dz = dL/dy (t + z sigm(z) (1 - t^2)), t = tanh(softplus(z))."""
    t = math.tanh(softplus(z))
    return grad_y * (t + z * sigmoid(z) * (_ONE - t * t))


@shared
def hard_silu(z):
    """z hard_sigmoid(z) (Keras's ``hard_silu``, alias ``hard_swish``)."""
    return z * hard_sigmoid(z)


@shared
def hard_silu_backward(z, grad_y):
    """dL/dz = dL/dy times 0 for z < -3, (2 z + 3) / 6 for -3 <= z <= 3, 1 for z > 3."""
    if z < -_THREE:
        return _ZERO * grad_y
    if z > _THREE:
        return grad_y
    return grad_y * (z + z + _THREE) / _SIX


# Each activation is chosen from its code in one function per direction, below: activation(z),
# dL/dz from y and dL/dz from z. Numba calls them rather than inlining them (the less common
# activations' code is compiled once, not into every kernel); where the code is a constant (the
# loops of :func:`_activation_span`) the CPU compiler inlines them itself, keeping only that
# code's branch, and the loop vectorises: measured as fast as the loops calling relu, sigmoid or
# tanh by name that they replace (an Activation layer's 131,072 outputs forward and backward, a
# Dense layer's 32 x 500 in place, 2 cores).
@called
def activation(z, code):
    """activation(z) for an element-wise ``code``; z itself for another."""
    if code == RELU:
        return relu(z)
    if code == SIGMOID:
        return sigmoid(z)
    if code == TANH:
        return tanh(z)
    if code == ELU:
        return elu(z)
    if code == SELU:
        return selu(z)
    if code == SOFTPLUS:
        return softplus(z)
    if code == SOFTSIGN:
        return softsign(z)
    if code == RELU6:
        return relu6(z)
    if code == LEAKY_RELU:
        return leaky_relu(z, LEAKY_RELU_SLOPE)
    if code == HARD_SIGMOID:
        return hard_sigmoid(z)
    if code == EXPONENTIAL:
        return math.exp(z)
    if code == GELU:
        return gelu(z)
    if code == SILU:
        return silu(z)
    if code == MISH:
        return mish(z)
    if code == HARD_SILU:
        return hard_silu(z)
    return linear(z)


@called
def activation_gradient(y, grad_y, code):
    """dL/dz from y = activation(z) and dL/dy, for the element-wise codes outside
    :data:`NEEDS_PREACTIVATION` (:func:`activation_input_gradient` has those); dL/dy itself
    for another code."""
    if code == RELU:
        return relu_backward(y, grad_y)
    if code == SIGMOID:
        return sigmoid_backward(y, grad_y)
    if code == TANH:
        return tanh_backward(y, grad_y)
    if code == ELU:
        return elu_backward(y, grad_y)
    if code == SELU:
        return selu_backward(y, grad_y)
    if code == SOFTPLUS:
        return softplus_backward(y, grad_y)
    if code == SOFTSIGN:
        return softsign_backward(y, grad_y)
    if code == RELU6:
        return relu6_backward(y, grad_y)
    if code == LEAKY_RELU:
        return leaky_relu_backward(y, grad_y, LEAKY_RELU_SLOPE)
    if code == HARD_SIGMOID:
        return hard_sigmoid_backward(y, grad_y)
    if code == EXPONENTIAL:
        return exponential_backward(y, grad_y)
    return linear_backward(y, grad_y)


@called
def activation_input_gradient(z, grad_y, code):
    """dL/dz from the pre-activation z and dL/dy, for the codes of
    :data:`NEEDS_PREACTIVATION`; dL/dy itself for another code."""
    if code == GELU:
        return gelu_backward(z, grad_y)
    if code == SILU:
        return silu_backward(z, grad_y)
    if code == MISH:
        return mish_backward(z, grad_y)
    if code == HARD_SILU:
        return hard_silu_backward(z, grad_y)
    return grad_y


#: The element-wise activations: code -> (activation(z), dL/dz from y and dL/dy), for loops
#: compiled one activation at a time (the CPU's wide convolution passes).
ELEMENTWISE_ACTIVATIONS = {RELU: (relu, relu_backward), SIGMOID: (sigmoid, sigmoid_backward),
                           TANH: (tanh, tanh_backward), LINEAR: (linear, linear_backward)}
#: What :func:`_activation_span` computes over its views
SHIFTED, IN_PLACE, GRADIENT = 0, 1, 2


@shared
def _activation_span(source, incoming, target, shift, code, direction):
    """Over 1-D views: target = activation(source + shift) (``direction`` SHIFTED), target <-
    activation(target) (IN_PLACE), or target = dL/dz from y = ``source`` and dL/dy =
    ``incoming`` (GRADIENT).

    A loop compiled for each of ReLU, sigmoid, tanh and linear, which then vectorises: the CPU
    compiler leaves a loop that chooses the activation inside it scalar (as the one loop of
    the less common codes is). In place through one view: two views of the same memory leave
    the loop scalar too (see :func:`unit_bias_activation_rows`). Inlined into each body that
    calls it with a constant ``direction``, whose other loops fold away: as a body of its own,
    called, a Dense layer's 32 x 500 in place took 15% longer (4.4 against 3.8 us)."""
    if code == RELU:
        _span(source, incoming, target, shift, RELU, direction)
    elif code == SIGMOID:
        _span(source, incoming, target, shift, SIGMOID, direction)
    elif code == TANH:
        _span(source, incoming, target, shift, TANH, direction)
    elif code == LINEAR:
        _span(source, incoming, target, shift, LINEAR, direction)
    else:
        _span(source, incoming, target, shift, code, direction)


@shared
def _span(source, incoming, target, shift, code, direction):
    """The loop of :func:`_activation_span` for ``direction``."""
    if direction == SHIFTED:
        for p in range(target.shape[0]):
            target[p] = activation(source[p] + shift, code)
    elif direction == IN_PLACE:
        for p in range(target.shape[0]):
            target[p] = activation(target[p], code)
    else:
        for p in range(target.shape[0]):
            target[p] = activation_gradient(source[p], incoming[p], code)


@body
def softmax_rows(row, first, last, z, bias, y, n_stride, f_stride):
    """y[n, f, p] = exp(a_f - m) / sum_f' exp(a_f' - m), m = max_f' a_f', for every f and for
    p = first .. last-1 of sample n = row, with a_f = z[n n_stride + f f_stride + p] + bias[f]
    (no bias when ``bias`` is empty). Each column's m and sum are computed once."""
    n_maps = y.shape[1]
    has_bias = bias.shape[0] > 0
    for p in range(first, last):
        top, total = max_and_exp_sum(z, row * n_stride + p, f_stride, n_maps, bias)
        for f in range(n_maps):
            value = z[row * n_stride + f * f_stride + p] + (bias[f] if has_bias else _ZERO)
            y[row, f, p] = math.exp(value - top) / total


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
        _activation_span(outputs, grads, out, _ZERO, code, GRADIENT)
    else:
        for p in range(first, last):
            dot = _ZERO
            for other in range(n_maps):
                dot += grad_y[n, other, p] * y[n, other, p]
            g[start - first + p] = y[n, f, p] * (grad_y[n, f, p] - dot)


@body
def dense_gradient_span(first, last, y, grad_y, g, grad_bias, code):
    """A Dense layer's gradients on its units first..last-1 of (n, units) rows, in one launch:
    g[n units + f] = dL/dz from y and dL/dy (:func:`activation_gradient_rows`; not a softmax)
    and grad_bias[f] = the sum over n of g (:func:`bias_gradient_span`: the same sums, added
    in the same order), while the units' rows of g are in cache. Two launches and a pass over
    g less at every batch (measured: 3 of the fine-tuning net's six launches)."""
    n_samples, units = y.shape
    sums = grad_bias[first:last]
    for f in range(sums.shape[0]):
        sums[f] = _ZERO
    for n in range(n_samples):
        start = n * units + first
        out = g[start:start + last - first]
        _activation_span(y[n, first:last], grad_y[n, first:last], out, _ZERO, code, GRADIENT)
        for f in range(sums.shape[0]):
            sums[f] += out[f]


@body
def bias_gradient_span(first, last, g, out, n_samples, n_pixels, n_stride, f_stride):
    """out[f] = sum over n and p of g[n n_stride + f f_stride + p] (dL/db), f in first..last-1."""
    if n_pixels == 1 and f_stride == 1:
        # A Dense layer's (n, F): samples outside, features inside, so that the inner loop reads
        # contiguous memory and vectorises (measured 14 -> 2 us for 32 x 500); the same sums,
        # added in the same order, as the loop below.
        sums = out[first:last]
        for f in range(sums.shape[0]):
            sums[f] = _ZERO
        for n in range(n_samples):
            values = g[n * n_stride + first:n * n_stride + last]
            for f in range(sums.shape[0]):
                sums[f] += values[f]
        return
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
    channels, width = dx.shape[1], dx.shape[3]
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
@shared
def pool_extent(o, stride, pad, size, n_in):
    """``(first, stop)``: the real input rows (or columns) pool ``o`` covers, rows
    o S - P .. o S - P + F - 1 clipped to the image (a pool with a padding ignores the rest)."""
    start = o * stride - pad
    return max(start, 0), min(start + size, n_in)


@body
def pool_rows(row, first, last, x, y, argmax, kind, kh, kw, sh, sw, ph, pw):
    """Output rows first..last-1 of plane ``row`` (x, y as (planes, H, W)): max (with the
    argmax index h W + w, first maximum on ties), mean, or root of the sum of squares, over
    the real pixels of each pool (P_h rows and P_w columns of padding before them ignored, and
    any beyond the image: Keras's "same")."""
    height, width, out_w = x.shape[1], x.shape[2], y.shape[2]
    if kind == 0 and kh == 2 and kw == 2 and sh == 2 and sw == 2 and ph == 0 and pw == 0 \
            and 2 * y.shape[1] <= height and 2 * out_w <= width:
        _max_pool_2x2(row, first, last, x, y, argmax)
        return
    for oy in range(first, last):
        top_row, stop_row = pool_extent(oy, sh, ph, kh, height)
        for ox in range(out_w):
            left, stop_column = pool_extent(ox, sw, pw, kw, width)
            top, where, total = x[row, top_row, left], top_row * width + left, _ZERO
            for h in range(top_row, stop_row):
                for w in range(left, stop_column):
                    value = x[row, h, w]
                    if value > top:
                        top, where = value, h * width + w
                    total += value * value if kind == 2 else value
            if kind == 0:
                y[row, oy, ox] = top
                argmax[row, oy, ox] = where
            elif kind == 1:
                y[row, oy, ox] = total / np.float32((stop_row - top_row) * (stop_column - left))
            else:
                y[row, oy, ox] = math.sqrt(total)


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
def pool_gradient_rows(row, first, last, x, y, argmax, grad_y, grad_x, kind, kh, kw, sh, sw, ph,
                       pw):
    """Input rows first..last-1 of plane ``row``: each pixel gathers the gradient of every pool
    that contains it (max: only where it was the maximum; average: 1/K', K' the real pixels of
    the pool; L2: x / h); P_h, P_w the padding before the image (see :func:`pool_rows`)."""
    height, width = x.shape[1], x.shape[2]
    out_h, out_w = y.shape[1], y.shape[2]
    for h in range(first, last):
        first_oy, last_oy = max(0, (h + ph - kh + sh) // sh), min(out_h - 1, (h + ph) // sh)
        for w in range(width):
            first_ox, last_ox = max(0, (w + pw - kw + sw) // sw), min(out_w - 1, (w + pw) // sw)
            total = _ZERO
            for oy in range(first_oy, last_oy + 1):
                for ox in range(first_ox, last_ox + 1):
                    if kind == 0:
                        if argmax[row, oy, ox] == h * width + w:
                            total += grad_y[row, oy, ox]
                    elif kind == 1:
                        top_row, stop_row = pool_extent(oy, sh, ph, kh, height)
                        left, stop_column = pool_extent(ox, sw, pw, kw, width)
                        total += grad_y[row, oy, ox] / np.float32(
                            (stop_row - top_row) * (stop_column - left))
                    elif y[row, oy, ox] > _ZERO:
                        total += grad_y[row, oy, ox] * x[row, h, w] / y[row, oy, ox]
            grad_x[row, h, w] = total


@body
def pool_gradient_tiles_rows(row, first, last, x, y, argmax, grad_y, grad_x, kind, kh, kw, sh,
                             sw):
    """The same as :func:`pool_gradient_rows` for pools that do not overlap (S >= F), by
    output rows: each output row owns input rows S oy .. S oy + S - 1 (the rows a stride
    skips get zeros), so no two threads write one pixel and no search is needed. Max pools
    write each gradient at its flat argmax in the plane: finding its row and column took an
    integer division per pool (LeNet-5's pools, batch 64, 2 cores: 113 -> 36 and 59 -> 32 us).
    Their rows are zeroed one at a time: one loop over the plane's span measured 2x slower in
    the CPU kernel."""
    height, width = x.shape[1], x.shape[2]
    out_w = y.shape[2]
    if kind == 0:
        plane, where, grads = grad_x[row].reshape(-1), argmax[row], grad_y[row]
        for h in range(first * sh, min(height, last * sh)):
            pixels = plane[h * width:(h + 1) * width]
            for w in range(width):
                pixels[w] = _ZERO
        for oy in range(first, last):
            for ox in range(out_w):
                plane[where[oy, ox]] = grads[oy, ox]
        return
    # g / K as the reference divides: g times a float32 1 / K put a float64 network's
    # gradients ~1e-8 from float64's where 1 / K is inexact (a 3 x 3 pool)
    count = np.float32(kh * kw)
    for oy in range(first, last):
        for h in range(oy * sh, min(height, oy * sh + sh)):
            for w in range(width):
                grad_x[row, h, w] = _ZERO
        for ox in range(out_w):
            g = grad_y[row, oy, ox]
            for i in range(kh):
                for j in range(kw):
                    h, w = oy * sh + i, ox * sw + j
                    if kind == 1:
                        grad_x[row, h, w] = g / count
                    elif y[row, oy, ox] > _ZERO:
                        grad_x[row, h, w] = g * x[row, h, w] / y[row, oy, ox]


# -- dropout and products -------------------------------------------------------------------
@body
def dropout_rows(row, first_block, last_block, x, out, mask, rate, scale, k0, k1, stream,
                 step, first_row):
    """Blocks of four features of one sample: keep = [u >= rate] with the four uniforms of
    one Philox call (counter (block, first_row + row, step, stream)); mask = keep / (1 - rate).

    Whole blocks first, their four lanes written out and counted from the span's start (no
    branch inside: the CPU vectorises Philox too, measured 3x faster than a loop over lanes or
    over absolute block numbers), then a last block cut by the row's end."""
    start = 4 * first_block
    stop = min(4 * last_block, x.shape[1])
    inputs, outputs, masks = x[row, start:stop], out[row, start:stop], mask[row, start:stop]
    global_row = np.uint64(row) + first_row
    whole_blocks = masks.shape[0] // 4
    for offset in range(whole_blocks):
        w0, w1, w2, w3 = philox4x32(np.uint64(first_block + offset), global_row, step, stream,
                                    k0, k1)
        i = 4 * offset
        _drop(inputs, outputs, masks, i, w0, rate, scale)
        _drop(inputs, outputs, masks, i + 1, w1, rate, scale)
        _drop(inputs, outputs, masks, i + 2, w2, rate, scale)
        _drop(inputs, outputs, masks, i + 3, w3, rate, scale)
    i = 4 * whole_blocks
    if i < masks.shape[0]:
        w0, w1, w2, w3 = philox4x32(np.uint64(first_block + whole_blocks), global_row, step,
                                    stream, k0, k1)
        for lane in range(masks.shape[0] - i):
            word = w0 if lane == 0 else (w1 if lane == 1 else (w2 if lane == 2 else w3))
            _drop(inputs, outputs, masks, i + lane, word, rate, scale)


@body
def scale_columns_rows(row, first, last, x, scale, out):
    """out[row, j] = x[row, j] scale[j] for j = first .. last-1: every sample times the same
    row (one dropout mask for a whole batch, Monte Carlo dropout's thinned network)."""
    for column in range(first, last):
        out[row, column] = x[row, column] * scale[column]


@shared
def _drop(inputs, outputs, masks, column, word, rate, scale):
    """Feature ``column`` of :func:`dropout_rows`'s 1-D views of a sample: keep or drop it."""
    keep = _ONE - bernoulli(rate, word)   # bernoulli(rate) = [u < rate]
    masks[column] = keep * scale
    outputs[column] = inputs[column] * keep * scale


# -- batch normalisation: x viewed as (n, C, P) (see dlcore.layers.reference) ----------------
@body
def channel_moments_span(first, last, x, mean, variance, moving_mean, moving_variance,
                         momentum):
    """mean[c], variance[c] (biased) of channels first .. last over (n, P), two passes in
    float64; then moving <- momentum moving + (1 - momentum) batch (an empty ``moving_mean``:
    no update)."""
    n, _, p = x.shape
    count = n * p
    for c in range(first, last):
        total = 0.0
        for i in range(n):
            for j in range(p):
                total += x[i, c, j]
        m = total / count
        squares = 0.0
        for i in range(n):
            for j in range(p):
                d = x[i, c, j] - m
                squares += d * d
        v = squares / count
        mean[c] = m
        variance[c] = v
        if moving_mean.shape[0] > 0:
            moving_mean[c] = momentum * moving_mean[c] + (1 - momentum) * m
            moving_variance[c] = momentum * moving_variance[c] + (1 - momentum) * v


@body
def batch_norm_rows(row, first, last, x, y, mean, variance, gamma, beta, epsilon):
    """y[i, c, p] = gamma[c] (x[i, c, p] - mean[c]) / sqrt(variance[c] + epsilon) + beta[c],
    row = i C + c."""
    channels = x.shape[1]
    i, c = row // channels, row % channels
    scale = gamma[c] / math.sqrt(variance[c] + epsilon)
    for p in range(first, last):
        y[i, c, p] = (x[i, c, p] - mean[c]) * scale + beta[c]


@body
def channel_gradient_sums_span(first, last, x, grad_y, mean, variance, epsilon, grad_gamma,
                               grad_beta):
    """grad_beta[c] = sum dL/dy, grad_gamma[c] = sum dL/dy x_hat over (n, P), in float64."""
    n, _, p = x.shape
    for c in range(first, last):
        inverse = 1.0 / math.sqrt(variance[c] + epsilon)
        total = 0.0
        weighted = 0.0
        for i in range(n):
            for j in range(p):
                g = grad_y[i, c, j]
                total += g
                weighted += g * (x[i, c, j] - mean[c]) * inverse
        grad_beta[c] = total
        grad_gamma[c] = weighted


@body
def batch_norm_gradient_rows(row, first, last, x, grad_y, grad_x, mean, variance, gamma,
                             epsilon, grad_gamma, grad_beta, batch_statistics):
    """dL/dx of :func:`dlcore.layers.reference.batch_norm_backward`, row = i C + c."""
    n, channels, p = x.shape
    i, c = row // channels, row % channels
    inverse = 1.0 / math.sqrt(variance[c] + epsilon)
    scale = gamma[c] * inverse
    count = n * p
    for j in range(first, last):
        g = grad_y[i, c, j]
        if batch_statistics:
            x_hat = (x[i, c, j] - mean[c]) * inverse
            g = g - (grad_beta[c] + x_hat * grad_gamma[c]) / count
        grad_x[i, c, j] = scale * g


@body
def layer_norm_rows(row, first, last, x, y, mean, inverse, gamma, beta, epsilon):
    """y[i, c, p] = gamma[c] (x[i, c, p] - mu) inverse + beta[c] over the channels c, for
    sample i = row and pixels p = first .. last - 1, where mu and the variance are taken over
    those channels (two passes, in float64) and kept: mean[i, p] = mu and inverse[i, p] =
    1 / sqrt(variance + epsilon)."""
    channels = x.shape[1]
    for p in range(first, last):
        total = 0.0
        for c in range(channels):
            total += x[row, c, p]
        m = total / channels
        squares = 0.0
        for c in range(channels):
            d = x[row, c, p] - m
            squares += d * d
        factor = 1.0 / math.sqrt(squares / channels + epsilon)
        mean[row, p] = m
        inverse[row, p] = factor
        for c in range(channels):
            y[row, c, p] = gamma[c] * ((x[row, c, p] - m) * factor) + beta[c]


@body
def layer_norm_gradient_rows(row, first, last, x, grad_y, grad_x, mean, inverse, gamma):
    """dL/dx of :func:`dlcore.layers.reference.layer_norm_backward` for sample i = row at
    pixels first .. last - 1 (its two means over the channels in float64)."""
    channels = x.shape[1]
    for p in range(first, last):
        m, factor = mean[row, p], inverse[row, p]
        total = 0.0
        weighted = 0.0
        for c in range(channels):
            g = gamma[c] * grad_y[row, c, p]
            total += g
            weighted += g * ((x[row, c, p] - m) * factor)
        total /= channels
        weighted /= channels
        for c in range(channels):
            x_hat = (x[row, c, p] - m) * factor
            grad_x[row, c, p] = factor * (gamma[c] * grad_y[row, c, p] - total - x_hat * weighted)


@body
def layer_norm_affine_gradient_span(first, last, x, grad_y, mean, inverse, grad_gamma,
                                    grad_beta):
    """grad_beta[c] = sum dL/dy, grad_gamma[c] = sum dL/dy x_hat over the samples and pixels,
    for channels c = first .. last - 1, in float64."""
    n, _, pixels = x.shape
    for c in range(first, last):
        total = 0.0
        weighted = 0.0
        for i in range(n):
            for p in range(pixels):
                g = grad_y[i, c, p]
                total += g
                weighted += g * ((x[i, c, p] - mean[i, p]) * inverse[i, p])
        grad_beta[c] = total
        grad_gamma[c] = weighted


@body
def rescale_span(first, last, x, out, scale, offset):
    """out[i] = scale x[i] + offset."""
    for i in range(first, last):
        out[i] = x[i] * scale + offset


# -- locally connected layer: kernel (P, F, K), fields cols (K, n P), maps (n, F, P) --------
@body
def locally_connected_rows(row, first, last, cols, kernel, bias, z):
    """z[n, f, p] = bias[f, p] + sum_k kernel[p, f, k] cols[k, n P + p] for the positions p
    first .. last-1, row = n F + f: each position's own filter."""
    n_filters, positions = z.shape[1], z.shape[2]
    n, f = row // n_filters, row % n_filters
    for p in range(first, last):
        total = bias[f, p]
        for k in range(kernel.shape[2]):
            total += kernel[p, f, k] * cols[k, n * positions + p]
        z[n, f, p] = total


@body
def locally_connected_kernel_gradient_rows(row, first, last, g, cols, grad_kernel):
    """grad_kernel[p, f, k] = sum_n g[n, f, p] cols[k, n P + p], row = p F + f, k in
    first .. last-1."""
    n_samples, n_filters, positions = g.shape
    p, f = row // n_filters, row % n_filters
    for k in range(first, last):
        total = _ZERO
        for n in range(n_samples):
            total += g[n, f, p] * cols[k, n * positions + p]
        grad_kernel[p, f, k] = total


@body
def locally_connected_bias_gradient_span(first, last, g, grad_bias):
    """grad_bias[f, p] = sum_n g[n, f, p], over the flat indices f P + p first .. last-1."""
    n_samples, _, positions = g.shape
    for index in range(first, last):
        f, p = index // positions, index % positions
        total = _ZERO
        for n in range(n_samples):
            total += g[n, f, p]
        grad_bias[f, p] = total


@body
def locally_connected_input_rows(row, first, last, g, kernel, grad_cols):
    """grad_cols[k, n P + p] = sum_f kernel[p, f, k] g[n, f, p], row = k, columns
    first .. last-1 (what :func:`col2im_rows` adds back onto the pixels)."""
    n_filters, positions = g.shape[1], g.shape[2]
    for column in range(first, last):
        n, p = column // positions, column % positions
        total = _ZERO
        for f in range(n_filters):
            total += kernel[p, f, row] * g[n, f, p]
        grad_cols[row, column] = total


@body
def activity_penalty_rows(row, first, last, h, row_loss, l1, l2):
    """row_loss[row] += l1 sum_j |h[row, j]| + l2 / 2 sum_j h[row, j]^2, summed in float64
    (launched with one unit a row: the whole row is one sum)."""
    absolute = 0.0
    squares = 0.0
    for j in range(h.shape[1]):
        value = h[row, j]
        absolute += abs(value)
        squares += value * value
    row_loss[row] += l1 * absolute + 0.5 * l2 * squares


@body
def activity_gradient_span(first, last, h, grad_y, out, l1, l2, scale):
    """out[i] = grad_y[i] + scale (l1 sign(h[i]) + l2 h[i])."""
    for i in range(first, last):
        value = h[i]
        sign = 1.0 if value > 0 else -1.0 if value < 0 else 0.0
        out[i] = grad_y[i] + scale * (l1 * sign + l2 * value)


@body
def leaky_relu_span(first, last, x, out, slope):
    """out[i] = x[i] for x[i] > 0, else slope x[i] (the LeakyReLU layer's own slope)."""
    for i in range(first, last):
        out[i] = leaky_relu(x[i], slope)


@body
def leaky_relu_gradient_span(first, last, y, grad_y, grad_x, slope):
    """grad_x[i] = dL/dz from y[i] = leaky_relu(z) and dL/dy."""
    for i in range(first, last):
        grad_x[i] = leaky_relu_backward(y[i], grad_y[i], slope)


@body
def input_activation_gradient_span(first, last, z, grad_y, grad_z, code):
    """grad_z[i] = dL/dz from z[i] and dL/dy, for the codes of :data:`NEEDS_PREACTIVATION`."""
    for i in range(first, last):
        grad_z[i] = activation_input_gradient(z[i], grad_y[i], code)


@body
def multiply_span(first, last, a, b, out):
    left, right, target = a[first:last], b[first:last], out[first:last]
    for i in range(target.shape[0]):
        target[i] = left[i] * right[i]


def conv_geometry(window):
    """The window's ``(k_h, k_w, S_h, S_w, P_h, P_w, H', W')``: the trailing arguments of
    :func:`im2col_rows` and :func:`col2im_rows`."""
    w = window
    return (w.kernel_height, w.kernel_width, w.stride_height, w.stride_width, w.pad_height,
            w.pad_width, w.out_height, w.out_width)


# -- up-sampling (the transposed convolution reuses im2col_rows and col2im_rows) ------------
@body
def upsample_nearest_rows(row, first, last, x, y, sh, sw):
    """Output rows first..last-1 of plane ``row`` (x, y as (planes, H, W)):
    y[row, h, w] = x[row, h // S_h, w // S_w]."""
    for h in range(first, last):
        source, target = x[row, h // sh], y[row, h]
        for w in range(target.shape[0]):
            target[w] = source[w // sw]


@body
def upsample_nearest_gradient_rows(row, first, last, grad_y, grad_x, sh, sw):
    """Input rows first..last-1 of plane ``row``: dL/dx[row, h, w] = the sum of dL/dy over the
    S_h x S_w block the pixel was copied to (each thread owns its input pixels)."""
    for h in range(first, last):
        target = grad_x[row, h]
        for w in range(target.shape[0]):
            total = _ZERO
            for i in range(sh):
                for j in range(sw):
                    total += grad_y[row, h * sh + i, w * sw + j]
            target[w] = total


@body
def upsample_bilinear_rows(row, first, last, x, y, rows_low, rows_high, rows_fraction,
                           columns_low, columns_high, columns_fraction):
    """Output rows first..last-1 of plane ``row``: the bilinear interpolation of the four
    input pixels around the output's source point, each axis's rows and weights given
    (:func:`dlcore.layers.reference.bilinear_sources`, in the planes' precision: float32
    weights rounded a float64 network's outputs by ~1e-6)."""
    for h in range(first, last):
        top, bottom, fy = rows_low[h], rows_high[h], rows_fraction[h]
        for w in range(y.shape[2]):
            left, right, fx = columns_low[w], columns_high[w], columns_fraction[w]
            upper = (_ONE - fx) * x[row, top, left] + fx * x[row, top, right]
            lower = (_ONE - fx) * x[row, bottom, left] + fx * x[row, bottom, right]
            y[row, h, w] = (_ONE - fy) * upper + fy * lower


@body
def upsample_bilinear_gradient_rows(row, first, last, grad_y, grad_x, sh, sw, rows_weights,
                                    columns_weights):
    """Input rows first..last-1 of plane ``row``: dL/dx[h, w] gathers the gradient of every
    output that read pixel (h, w), times its weight (the axes' matrices of
    :func:`dlcore.layers.reference.bilinear_matrix`); only outputs (h - 1) S .. (h + 2) S - 1
    can (each thread owns its input pixels)."""
    width = grad_x.shape[2]
    out_h, out_w = grad_y.shape[1], grad_y.shape[2]
    for h in range(first, last):
        for w in range(width):
            total = _ZERO
            for d in range(max(0, (h - 1) * sh), min(out_h, (h + 2) * sh)):
                weight_y = rows_weights[d, h]
                if weight_y != _ZERO:
                    for e in range(max(0, (w - 1) * sw), min(out_w, (w + 2) * sw)):
                        total += weight_y * columns_weights[e, w] * grad_y[row, d, e]
            grad_x[row, h, w] = total


# -- merging tensors (Add, Concatenate) and summing gradients in a graph --------------------
# A concatenation along an axis joins the columns of 2-D views (samples and the axes before the
# joined one as rows, the rest as columns): x_i's columns go to offset sum_{j<i} width_j.
@body
def copy_span(first, last, source, target):
    """target[i] = source[i] (1-D views)."""
    for i in range(first, last):
        target[i] = source[i]


@body
def accumulate_span(first, last, source, target):
    """target[i] += source[i] (1-D views): a sum of tensors, a gradient summed over uses."""
    for i in range(first, last):
        target[i] += source[i]


@body
def place_columns_rows(row, first, last, source, target, offset):
    """target[row, offset + c] = source[row, c] (2-D arrays)."""
    for c in range(first, last):
        target[row, offset + c] = source[row, c]


@body
def take_columns_rows(row, first, last, source, target, offset):
    """target[row, c] = source[row, offset + c] (2-D arrays)."""
    for c in range(first, last):
        target[row, c] = source[row, offset + c]


# -- broadcasting a merge's input: axes of size 1 repeated (a (C, 1, 1) gate over (C, H, W)) --
# Both bodies walk flat C-order indices: an index's position along each axis comes from the
# last axis first, so one body serves every rank (the shapes and strides are small tables).
@body
def broadcast_span(first, last, source, target, shape, source_strides):
    """target[i] = source[the entry target's flat index i repeats]: ``shape`` is target's
    shape, ``source_strides`` source's strides in entries, 0 along the axes it repeats."""
    for i in range(first, last):
        rest, offset = i, 0
        for axis in range(shape.shape[0] - 1, -1, -1):
            offset += (rest % shape[axis]) * source_strides[axis]
            rest //= shape[axis]
        target[i] = source[offset]


@body
def broadcast_sum_span(first, last, grad_y, grad_x, shape, repeats, strides, copies):
    """grad_x[j] = the sum of grad_y over the ``copies`` entries that repeated x's entry j:
    ``shape`` is grad_x's shape, ``repeats`` how often each axis of x was repeated (1 where
    it was not), ``strides`` grad_y's strides in entries."""
    for j in range(first, last):
        total = _ZERO
        for copy in range(copies):
            rest, rest_copy, offset = j, copy, 0
            for axis in range(shape.shape[0] - 1, -1, -1):
                offset += (rest % shape[axis] + rest_copy % repeats[axis]) * strides[axis]
                rest //= shape[axis]
                rest_copy //= repeats[axis]
            total += grad_y[offset]
        grad_x[j] = total


# -- Dot: the dot product of two rows (a cosine similarity when normalised) ------------------
@body
def dot_rows(row, first, last, a, b, normalize, epsilon, out, factors):
    """out[row, 0] = sum_j a[row, j] b[row, j], summed in float64 (launched with one unit a
    row); with ``normalize`` each row is divided by max(its norm, epsilon) first. factors[row]
    = (1 / ||a||, 1 / ||b||, p_a, p_b) for :func:`dot_gradient_rows`: the inverse norms (1
    without ``normalize``) and 1 where a row's norm exceeds epsilon (its normalisation then
    projects the gradient), else 0."""
    product = 0.0
    squares_a = 0.0
    squares_b = 0.0
    for j in range(a.shape[1]):
        product += a[row, j] * b[row, j]
        squares_a += a[row, j] * a[row, j]
        squares_b += b[row, j] * b[row, j]
    inverse_a, inverse_b, projected_a, projected_b = 1.0, 1.0, 0.0, 0.0
    if normalize:
        norm_a, norm_b = math.sqrt(squares_a), math.sqrt(squares_b)
        inverse_a, inverse_b = 1.0 / max(norm_a, epsilon), 1.0 / max(norm_b, epsilon)
        projected_a = 1.0 if norm_a > epsilon else 0.0
        projected_b = 1.0 if norm_b > epsilon else 0.0
    out[row, 0] = product * inverse_a * inverse_b
    factors[row, 0] = inverse_a
    factors[row, 1] = inverse_b
    factors[row, 2] = projected_a
    factors[row, 3] = projected_b


@body
def dot_gradient_rows(row, first, last, a, b, y, grad_y, factors, grad_a, grad_b):
    """grad_a[row, j] = g r_a (v_j - p_a y u_j), grad_b[row, j] = g r_b (u_j - p_b y v_j) for
    j = first .. last-1, with g = dL/dy[row], u = r_a a[row], v = r_b b[row] and r, p the
    ``factors`` of :func:`dot_rows` (without normalisation: g b[row, j] and g a[row, j])."""
    g, product = grad_y[row, 0], y[row, 0]
    inverse_a, inverse_b = factors[row, 0], factors[row, 1]
    projected_a, projected_b = factors[row, 2], factors[row, 3]
    for j in range(first, last):
        u, v = a[row, j] * inverse_a, b[row, j] * inverse_b
        grad_a[row, j] = g * inverse_a * (v - projected_a * product * u)
        grad_b[row, j] = g * inverse_b * (u - projected_b * product * v)


# -- Maximum and Minimum: the extreme of k tensors, and which input held it ------------------
@body
def extremum_span(first, last, x, index, sign, out, chosen):
    """Merge input number ``index`` into the running extreme: out[i] = x[i] and chosen[i] =
    index where sign x[i] > sign out[i] (sign 1: the maximum, -1: the minimum), or a NaN
    arrives (it spreads, as in Keras); input 0 starts the extreme. The comparison is strict, so
    a tie stays with the earlier input (TensorFlow's gradient of ``maximum``)."""
    for i in range(first, last):
        if index == 0 or sign * x[i] > sign * out[i] or (x[i] != x[i] and out[i] == out[i]):
            out[i] = x[i]
            chosen[i] = index


@body
def chosen_gradient_span(first, last, chosen, index, grad_y, grad_x):
    """grad_x[i] = dL/dy[i] where input number ``index`` held the extreme, else 0."""
    for i in range(first, last):
        if chosen[i] == index:
            grad_x[i] = grad_y[i]
        else:
            grad_x[i] = _ZERO
