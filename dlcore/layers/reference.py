"""The layers' maths in NumPy, one readable function per equation: the oracle of the tests.

Every function here is pure (it allocates its result) and works in any float dtype, which is what
:func:`dlcore.gradcheck` needs (float64). The kernel bodies of :mod:`dlcore.layers.bodies` (and
the CPU's convolutions, :mod:`dlcore.layers.cpu_convolution`) compute the same quantities in
place and in parallel; ``tests/test_layers_*.py`` hold them to these functions. The sigmoid and
softmax are the ones every reference shares (:mod:`dlcore.backend.reference`).

Conventions
-----------
* Images are NCHW: ``(n, channels, height, width)``. Conv kernels are
  ``(out_channels, in_channels, kernel_height, kernel_width)``; dense kernels ``(in, out)`` with
  ``y = x @ kernel + bias`` (as Keras, and as an RBM's ``W``).
* The convolution is a cross-correlation, as lecture "Convolutional neural networks" (2016) says
  ("the actual operation is cross-correlation")::

      z[n, f, y, x] = b[f] + sum_{c, i, j} K[f, c, i, j] * xpad[n, c, S*y + i, S*x + j]

  computed as one matrix product over *im2col* columns (each column one receptive field).
* ``window`` arguments are :class:`dlcore.layers.geometry.Window` objects.
"""
import math
from dataclasses import replace

import numpy as np

from dlcore.backend import rng
from dlcore.backend.reference import sigmoid, softmax

from .bodies import LEAKY_RELU_SLOPE, SELU_ALPHA, SELU_SCALE

# -- activations (lecture "Supervised learning"; derivatives from the outputs y) -----------


def relu(z):
    """max(0, z)."""
    return np.maximum(z, 0)


def elu(z):
    """z for z > 0, else exp(z) - 1 (alpha = 1)."""
    return np.where(z > 0, z, np.expm1(np.minimum(z, 0)))


def selu(z):
    """scale z for z > 0, else scale alpha (exp(z) - 1) (Klambauer et al. 2017)."""
    return SELU_SCALE * np.where(z > 0, z, SELU_ALPHA * np.expm1(np.minimum(z, 0)))


def softplus(z):
    """log(1 + exp(z)) = max(z, 0) + log(1 + exp(-|z|))."""
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


def leaky_relu(z, slope=LEAKY_RELU_SLOPE):
    """z for z > 0, else slope z."""
    return np.where(z > 0, z, slope * z)


def hard_sigmoid(z):
    """relu6(z + 3) / 6 (Keras 3's)."""
    return np.clip(z + 3, 0, 6) / 6


def erf(x):
    """The error function, element-wise (SciPy's): imported on first use, as importing
    scipy.special is a tenth of a second of every command's start and only GELU needs it."""
    from scipy.special import erf as scipy_erf
    return scipy_erf(x)


def gelu(z):
    """z Phi(z) = z (1 + erf(z / sqrt 2)) / 2 (the exact GELU, Keras's default)."""
    return z * (1 + erf(z / math.sqrt(2))) / 2


def mish(z):
    """z tanh(softplus(z))."""
    return z * np.tanh(softplus(z))


ACTIVATIONS = {
    "linear": lambda z: z,
    "relu": relu,
    "sigmoid": sigmoid,
    "tanh": np.tanh,
    "softmax": softmax,
    "elu": elu,
    "selu": selu,
    "softplus": softplus,
    "softsign": lambda z: z / (1 + np.abs(z)),
    "relu6": lambda z: np.clip(z, 0, 6),
    "leaky_relu": leaky_relu,
    "hard_sigmoid": hard_sigmoid,
    "exponential": np.exp,
    "gelu": gelu,
    "silu": lambda z: z * sigmoid(z),
    "mish": mish,
    "hard_silu": lambda z: z * hard_sigmoid(z),
}


def activation_forward(name, z):
    """y = activation(z) for ``name`` in :data:`ACTIVATIONS`."""
    return ACTIVATIONS[name](z)


def activation_backward(name, y, grad_y):
    """dL/dz from dL/dy and the outputs y = activation(z):

        relu:    dL/dz = dL/dy * [y > 0]
        sigmoid: dL/dz = dL/dy * y (1 - y)
        tanh:    dL/dz = dL/dy * (1 - y^2)
        softmax: dL/dz_k = y_k (dL/dy_k - sum_j dL/dy_j y_j)     (the Jacobian product along
                 axis 1: a row's classes, or the channels of each pixel of maps)
        elu:     dL/dz = dL/dy * (1 if y > 0 else y + 1)          (exp(z) = y + 1 for z <= 0)
        selu:    dL/dz = dL/dy * (scale if y > 0 else y + scale alpha)
        softplus: dL/dz = dL/dy * sigm(z) = dL/dy * (1 - exp(-y))
        softsign: dL/dz = dL/dy / (1 + |z|)^2 = dL/dy * (1 - |y|)^2
        relu6:   dL/dz = dL/dy * [0 < y < 6]
        leaky_relu: dL/dz = dL/dy * (1 if y > 0 else slope)
        hard_sigmoid: dL/dz = dL/dy * [0 < y < 1] / 6
        exponential: dL/dz = dL/dy * y

    The activations of ``NEEDS_PREACTIVATION`` (gelu, silu, mish, hard_silu) take z instead:
    :func:`activation_input_backward`.
    """
    if name == "linear":
        return grad_y.copy()
    if name == "relu":
        return grad_y * (y > 0)
    if name == "sigmoid":
        return grad_y * y * (1 - y)
    if name == "tanh":
        return grad_y * (1 - y * y)
    if name == "softmax":
        return y * (grad_y - (grad_y * y).sum(axis=1, keepdims=True))
    if name == "elu":
        return grad_y * np.where(y > 0, 1, y + 1)
    if name == "selu":
        return grad_y * np.where(y > 0, SELU_SCALE, y + SELU_SCALE * SELU_ALPHA)
    if name == "softplus":
        return -grad_y * np.expm1(-y)
    if name == "softsign":
        return grad_y * (1 - np.abs(y)) ** 2
    if name == "relu6":
        return grad_y * ((y > 0) & (y < 6))
    if name == "leaky_relu":
        return leaky_relu_backward(y, grad_y)
    if name == "hard_sigmoid":
        return grad_y * ((y > 0) & (y < 1)) / 6
    if name == "exponential":
        return grad_y * y
    raise ValueError(f"unknown activation {name!r}")


def activation_input_backward(name, z, grad_y):
    """dL/dz from dL/dy and the pre-activations z, for the activations whose derivative y
    does not tell (Phi and phi the standard normal's distribution and density):

        gelu:      dL/dz = dL/dy * (Phi(z) + z phi(z))
        silu:      dL/dz = dL/dy * sigm(z) (1 + z (1 - sigm(z)))
        mish:      dL/dz = dL/dy * (t + z sigm(z) (1 - t^2)),  t = tanh(softplus(z))
        hard_silu: dL/dz = dL/dy * (0 if z < -3, 1 if z > 3, else (2 z + 3) / 6)
    """
    if name == "gelu":
        return grad_y * ((1 + erf(z / math.sqrt(2))) / 2
                         + z * np.exp(-z * z / 2) / math.sqrt(2 * math.pi))
    if name == "silu":
        s = sigmoid(z)
        return grad_y * s * (1 + z * (1 - s))
    if name == "mish":
        t = np.tanh(softplus(z))
        return grad_y * (t + z * sigmoid(z) * (1 - t * t))
    if name == "hard_silu":
        return grad_y * np.where(z < -3, 0, np.where(z > 3, 1, (2 * z + 3) / 6))
    raise ValueError(f"activation {name!r} takes its derivative from y: activation_backward")


def leaky_relu_backward(y, grad_y, slope=LEAKY_RELU_SLOPE):
    """dL/dz = dL/dy * (1 if y > 0 else slope), from y = leaky_relu(z) (slope > 0)."""
    return np.where(y > 0, grad_y, slope * grad_y)


# -- dense (fully connected) layer ----------------------------------------------------------


def dense_forward(x, kernel, bias):
    """z = x @ kernel + bias: (n, in) @ (in, out) + (out,) -> (n, out)."""
    return x @ kernel + bias


def dense_backward(x, kernel, grad_z):
    """Back-propagation through z = x @ kernel + bias (lecture
    "Supervised learning", slide "Backward Propagation"):

        dL/dkernel = x' dL/dz        (in, out)
        dL/dbias   = sum_n dL/dz     (out,)
        dL/dx      = dL/dz kernel'   (n, in)
    """
    return grad_z @ kernel.T, x.T @ grad_z, grad_z.sum(axis=0)


# -- convolution ----------------------------------------------------------------------------


def pad(x, window, value=0):
    """Padding of P_h rows and P_w columns on each side of every NCHW image (the window's
    P_bottom and P_right at the bottom and the right), with zeros or ``value``."""
    return np.pad(x, ((0, 0), (0, 0), (window.pad_height, window.pad_bottom),
                      (window.pad_width, window.pad_right)), constant_values=value)


def _tap(padded, window, i, j):
    """The input pixels that filter tap (i, j) meets at every output position:
    padded[:, :, S_h*y + i, S_w*x + j] for all (y, x), shape (n, C, H_out, W_out)."""
    sh, sw = window.stride_height, window.stride_width
    return padded[:, :, i:i + sh * window.out_height:sh, j:j + sw * window.out_width:sw]


def im2col(x, window):
    """Receptive fields as columns: (n, C, H, W) -> (C * F_h * F_w, n * H_out * W_out).

    Row ``(c * F_h + i) * F_w + j`` holds the pixel that filter tap (c, i, j) meets, column
    ``(n * H_out + y) * W_out + x`` is output position (n, y, x).
    """
    padded = pad(x, window)
    n = x.shape[0]
    cols = np.empty((window.channels, window.kernel_height, window.kernel_width, n,
                     window.out_height, window.out_width), dtype=x.dtype)
    for i in range(window.kernel_height):
        for j in range(window.kernel_width):
            cols[:, i, j] = _tap(padded, window, i, j).transpose(1, 0, 2, 3)
    return cols.reshape(window.patch_size, n * window.out_pixels)


def col2im(cols, n, window):
    """The adjoint of :func:`im2col`: every column entry is added back onto the pixel it came
    from (pixels shared by overlapping fields receive the sum), padding cropped away.
    (C * F_h * F_w, n * H_out * W_out) -> (n, C, H, W)."""
    ph, pw = window.pad_height, window.pad_width
    padded = np.zeros((n, window.channels, window.height + ph + window.pad_bottom,
                       window.width + pw + window.pad_right), dtype=cols.dtype)
    fields = cols.reshape(window.channels, window.kernel_height, window.kernel_width, n,
                          window.out_height, window.out_width)
    for i in range(window.kernel_height):
        for j in range(window.kernel_width):
            _tap(padded, window, i, j)[...] += fields[:, i, j].transpose(1, 0, 2, 3)
    return padded[:, :, ph:ph + window.height, pw:pw + window.width]


def conv2d_forward(x, kernel, bias, window):
    """z[n, f] = b[f] + sum_c K[f, c] (x) x[n, c], (x) cross-correlation with stride and zero
    padding; as one product K (F, C*F_h*F_w) @ im2col(x). (n, C, H, W) -> (n, F, H_out, W_out).

    Cost (lecture "Supervised learning", "Convolutional Layer"): C F_h F_w multiply-adds per
    output value.
    """
    n_filters = kernel.shape[0]
    z = kernel.reshape(n_filters, -1) @ im2col(x, window) + bias[:, None]
    return z.reshape(n_filters, x.shape[0], window.out_height,
                     window.out_width).transpose(1, 0, 2, 3)


def conv2d_backward(x, kernel, grad_z, window):
    """Back-propagation through :func:`conv2d_forward`, with G = dL/dz as (F, n*H_out*W_out):

        dL/dK = G @ im2col(x)'             (the filters' gradient, summed over positions)
        dL/db = sum of G over positions
        dL/dx = col2im(K' @ G)             (a "full" correlation with the flipped kernel)

    Returns ``(dL/dx, dL/dK, dL/db)``.
    """
    n_filters = kernel.shape[0]
    g = grad_z.transpose(1, 0, 2, 3).reshape(n_filters, -1)
    grad_kernel = (g @ im2col(x, window).T).reshape(kernel.shape)
    grad_x = col2im(kernel.reshape(n_filters, -1).T @ g, x.shape[0], window)
    return grad_x, grad_kernel, g.sum(axis=1)


def locally_connected_forward(x, kernel, bias, window):
    """A convolution without weight sharing (lecture "Supervised learning", "Locally Connected
    Layer"): every output position (y, x) has filters of its own,

        z[n, f, y, x] = b[f, y, x] + sum_{c, i, j} K[y, x, f, c, i, j] xpad[n, c, S y + i, S x + j]

    with the receptive fields of :func:`im2col`. (n, C, H, W) -> (n, F, H_out, W_out)."""
    n, positions = x.shape[0], window.out_pixels
    filters = kernel.shape[2]
    cols = im2col(x, window).reshape(window.patch_size, n, positions)
    z = np.einsum("pfk,knp->nfp", kernel.reshape(positions, filters, -1), cols)
    return z.reshape(n, filters, window.out_height, window.out_width) + bias


def locally_connected_backward(x, kernel, grad_z, window):
    """Back-propagation through :func:`locally_connected_forward`, G = dL/dz as (n, F, P):

        dL/dK[p, f] = sum_n G[n, f, p] fields[n, p]      (each position's own filters)
        dL/db[f, p] = sum_n G[n, f, p]
        dL/dx       = col2im(sum_f K[p, f]' G[n, f, p])

    Returns ``(dL/dx, dL/dK, dL/db)``."""
    n, positions = x.shape[0], window.out_pixels
    filters = kernel.shape[2]
    weights = kernel.reshape(positions, filters, -1)
    g = grad_z.reshape(n, filters, positions)
    cols = im2col(x, window).reshape(window.patch_size, n, positions)
    grad_kernel = np.einsum("nfp,knp->pfk", g, cols).reshape(kernel.shape)
    grad_cols = np.einsum("pfk,nfp->knp", weights, g).reshape(window.patch_size, n * positions)
    grad_bias = g.sum(axis=0).reshape(filters, window.out_height, window.out_width)
    return col2im(grad_cols, n, window), grad_kernel, grad_bias


# -- pooling (lecture "Supervised learning", "Pooling Layer": max, average, L2; no weights) --


def pool_windows(x, window, value=0):
    """Every pool as a view: (n, C, H, W) -> (n, C, H_out, W_out, F_h, F_w); the padded cells
    of a pool with a padding (Keras's "same") hold ``value``."""
    if window.padded:
        x = pad(x, window, value)
    fields = np.lib.stride_tricks.sliding_window_view(
        x, (window.kernel_height, window.kernel_width), axis=(2, 3))
    return fields[:, :, ::window.stride_height, ::window.stride_width]


def pool_counts(window, dtype=np.float64):
    """K' per pool: how many real pixels (not padding) each pool covers, (H_out, W_out)."""
    ones = np.ones((1, 1, window.height, window.width), dtype=dtype)
    return pool_windows(ones, window).sum(axis=(-2, -1))[0, 0]


def max_pool_forward(x, window):
    """h(y, x) = max over the pool N(y, x) of the input (its real pixels: padded cells count as
    -inf); also the position of each maximum (``argmax``: index ``row * W + column`` within
    the input plane, the first maximum in row-major order on ties), which back-propagation
    routes the gradient to.

    Returns ``(y (n, C, H_out, W_out), argmax (n, C, H_out, W_out) int32)``.
    """
    fields = pool_windows(x, window, -np.inf)
    flat = fields.reshape(fields.shape[:4] + (-1,))
    best = flat.argmax(axis=-1)
    tap_row, tap_column = np.divmod(best, window.kernel_width)
    rows = (np.arange(window.out_height)[:, None] * window.stride_height + tap_row
            - window.pad_height)
    columns = (np.arange(window.out_width)[None, :] * window.stride_width + tap_column
               - window.pad_width)
    argmax = (rows * window.width + columns).astype(np.int32)
    return np.take_along_axis(flat, best[..., None], axis=-1)[..., 0], argmax


def max_pool_backward(grad_y, argmax, window):
    """dL/dx: each output's gradient goes to the input that was its maximum (summed when
    overlapping pools share one)."""
    n, channels = grad_y.shape[:2]
    grad_x = np.zeros((n, channels, window.height * window.width), dtype=grad_y.dtype)
    sample, channel = np.indices((n, channels))
    np.add.at(grad_x, (sample[:, :, None], channel[:, :, None], argmax.reshape(n, channels, -1)),
              grad_y.reshape(n, channels, -1))
    return grad_x.reshape(n, channels, window.height, window.width)


def avg_pool_forward(x, window):
    """h(y, x) = 1/K sum over the pool of the input, K = F_h F_w pixels per pool (K' real
    pixels for a pool with a padding, :func:`pool_counts`: the padding is not averaged)."""
    total = pool_windows(x, window).sum(axis=(-2, -1))
    return (total / pool_counts(window, x.dtype)).astype(x.dtype, copy=False)


def _crop_padding(grad_padded, window):
    """dL/dx from the gradient of the padded input: the padding cropped away."""
    return grad_padded[:, :, window.pad_height:window.pad_height + window.height,
                       window.pad_width:window.pad_width + window.width]


def _padded_zeros(n, channels, window, dtype):
    return np.zeros((n, channels, window.height + window.pad_height + window.pad_bottom,
                     window.width + window.pad_width + window.pad_right), dtype=dtype)


def avg_pool_backward(grad_y, window):
    """dL/dx: every input of a pool receives 1/K (1/K') of the pool's gradient."""
    n, channels = grad_y.shape[:2]
    grad_x = _padded_zeros(n, channels, window, grad_y.dtype)
    share = grad_y / pool_counts(window, grad_y.dtype)
    for i in range(window.kernel_height):
        for j in range(window.kernel_width):
            _tap(grad_x, window, i, j)[...] += share
    return _crop_padding(grad_x, window)


def l2_pool_forward(x, window):
    """h(y, x) = sqrt(sum over the pool of the input squared) (lecture
    "Supervised learning", "L2-pooling")."""
    return np.sqrt((pool_windows(x, window) ** 2).sum(axis=(-2, -1)))


def l2_pool_backward(x, y, grad_y, window):
    """dL/dx = sum over the pools containing x of dL/dh * x / h (0 where h = 0)."""
    n, channels = grad_y.shape[:2]
    grad_x = _padded_zeros(n, channels, window, x.dtype)
    padded = pad(x, window)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(y > 0, grad_y / y, 0)
    for i in range(window.kernel_height):
        for j in range(window.kernel_width):
            _tap(grad_x, window, i, j)[...] += ratio * _tap(padded, window, i, j)
    return _crop_padding(grad_x, window)


# -- dropout (lecture "Convolutional neural networks" (2016); Srivastava et al. 2014) ------


def activity_penalty(h, l1, l2):
    """Each sample's activity penalty Omega(h) = l1 ||h||_1 + l2 / 2 ||h||^2 over its outputs h
    (lecture "Convolutional neural networks" (2016), "Sparse representations": an L1 penalty on
    the hidden representation makes it sparse), (n,) in float64."""
    rows = np.asarray(h, dtype=np.float64).reshape(len(h), -1)
    return l1 * np.abs(rows).sum(axis=1) + 0.5 * l2 * (rows * rows).sum(axis=1)


def activity_penalty_gradient(h, grad_y, l1, l2, scale):
    """dL/dh with the activity penalty of ``scale`` (1 / n: the batch mean) added:
    grad_y + scale (l1 sign(h) + l2 h)."""
    return grad_y + scale * (l1 * np.sign(h) + l2 * h)


def rescale(x, scale, offset):
    """y = scale x + offset (Keras's Rescaling: 8-bit pixels into [0, 1] with scale 1/255)."""
    return x * scale + offset


# -- batch normalisation (Ioffe & Szegedy 2015; Keras's BatchNormalization) ---------------
# x is (n, C, P): channel c of every sample, P = H W pixels of an image, or P = 1 for rows.
def batch_moments(x):
    """The batch's mean and (biased, as Keras) variance of each channel: over (n, P), (C,)."""
    return x.mean(axis=(0, 2)), x.var(axis=(0, 2))


def batch_norm_forward(x, mean, variance, gamma, beta, epsilon):
    """y = gamma (x - mean) / sqrt(variance + epsilon) + beta, per channel."""
    x_hat = (x - mean[:, None]) / np.sqrt(variance + epsilon)[:, None]
    return gamma[:, None] * x_hat + beta[:, None]


def batch_norm_backward(x, mean, variance, gamma, grad_y, epsilon, batch_statistics):
    """(dL/dx, dL/dgamma, dL/dbeta). With the batch's own statistics (training), mean and
    variance depend on x, which adds the sums (M = n P values a channel):

        dL/dx = gamma / sqrt(variance + eps) (dL/dy - (sum dL/dy + x_hat sum dL/dy x_hat) / M)

    with fixed statistics (inference, a frozen layer) dL/dx = gamma / sqrt(variance + eps)
    dL/dy."""
    inverse = 1 / np.sqrt(variance + epsilon)[:, None]
    x_hat = (x - mean[:, None]) * inverse
    grad_beta = grad_y.sum(axis=(0, 2))
    grad_gamma = (grad_y * x_hat).sum(axis=(0, 2))
    grad_x = gamma[:, None] * inverse * grad_y
    if batch_statistics:
        count = x.shape[0] * x.shape[2]
        grad_x = gamma[:, None] * inverse * (
            grad_y - (grad_beta[:, None] + x_hat * grad_gamma[:, None]) / count)
    return grad_x, grad_gamma, grad_beta


# -- layer normalisation (Ba, Kiros & Hinton 2016; Keras's LayerNormalization) -----------
# x is (n, C, P) as above; the statistics are per sample and pixel, over the C channels.
def layer_moments(x):
    """The mean and the (biased) variance of each sample at each pixel, over the channels:
    (n, P) each."""
    return x.mean(axis=1), x.var(axis=1)


def layer_norm_forward(x, gamma, beta, epsilon):
    """y = gamma_c (x - mu) / sqrt(sigma2 + epsilon) + beta_c, mu and sigma2 over the channels
    of each sample at each pixel. Returns (y, mu (n, P), 1 / sqrt(sigma2 + epsilon) (n, P))."""
    mean, variance = layer_moments(x)
    inverse = 1 / np.sqrt(variance + epsilon)
    x_hat = (x - mean[:, None]) * inverse[:, None]
    return gamma[:, None] * x_hat + beta[:, None], mean, inverse


def layer_norm_backward(x, mean, inverse, gamma, grad_y):
    """(dL/dx, dL/dgamma, dL/dbeta). With g_c = gamma_c dL/dy_c and the means over the C
    channels of the same sample and pixel,

        dL/dx_c = (g_c - mean(g) - x_hat_c mean(g x_hat)) / sqrt(sigma2 + epsilon)

    (the two means: the statistics' own dependence on x), dL/dgamma_c = sum dL/dy_c x_hat_c
    and dL/dbeta_c = sum dL/dy_c over the samples and pixels."""
    x_hat = (x - mean[:, None]) * inverse[:, None]
    g = gamma[:, None] * grad_y
    grad_x = inverse[:, None] * (g - g.mean(axis=1, keepdims=True)
                                 - x_hat * (g * x_hat).mean(axis=1, keepdims=True))
    return grad_x, (grad_y * x_hat).sum(axis=(0, 2)), grad_y.sum(axis=(0, 2))


def dropout_mask(n, n_features, rate, seed, step, stream=rng.STREAM_DROPOUT, first_row=0):
    """The inverted-dropout mask m = [u >= rate] / (1 - rate), u ~ U[0, 1) from Philox with
    element (sample, feature) at counter (feature // 4, first_row + sample, step, stream): a
    unit is kept with probability 1 - rate, and E[m] = 1 so evaluation needs no rescaling.
    (n, n_features). ``first_row``: the global row of sample 0 (a data-parallel shard)."""
    keep = rng.uniform(n, n_features, seed, stream, step, first_row) >= np.float32(rate)
    return keep.astype(np.float32) / np.float32(1.0 - rate)


# -- up-sampling and transposed convolution (lecture "Deep learning I", "The U-Net architecture")


def upsample_nearest_forward(x, size):
    """Nearest-neighbour up-sampling by (S_h, S_w): y[n, c, h, w] = x[n, c, h // S_h, w // S_w]
    (every pixel repeated into an S_h x S_w block). (n, C, H, W) -> (n, C, S_h H, S_w W)."""
    sh, sw = size
    rows = np.arange(x.shape[2] * sh) // sh
    columns = np.arange(x.shape[3] * sw) // sw
    return x[:, :, rows[:, None], columns[None, :]]


def upsample_nearest_backward(grad_y, size):
    """dL/dx[n, c, h, w] = the sum of dL/dy over the block pixel (h, w) was copied to."""
    sh, sw = size
    n, channels, height, width = grad_y.shape
    return grad_y.reshape(n, channels, height // sh, sh, width // sw, sw).sum(axis=(3, 5))


def bilinear_sources(n_out, scale, n_in, dtype=np.float64):
    """``(low, high, fraction)``, arrays (n_out,): along one axis of a bilinear up-sampling
    with half-pixel centres (Keras's ``interpolation="bilinear"``, PyTorch's
    ``align_corners=False``) output d reads the input at s = max((d + 1/2) / S - 1/2, 0),
    between rows low = floor(s) and high = min(low + 1, n_in - 1), with weights 1 - fraction
    and fraction = s - low, computed in ``dtype`` (the kernels take them from here)."""
    source = np.maximum((np.arange(n_out, dtype=dtype) + 0.5) / scale - 0.5, 0).astype(dtype)
    low = np.floor(source).astype(np.int64)
    return low, np.minimum(low + 1, n_in - 1), (source - low).astype(dtype)


def bilinear_matrix(n_out, scale, n_in, dtype=np.float64):
    """The (n_out, n_in) matrix of bilinear up-sampling along one axis: row d holds the
    weights of :func:`bilinear_sources` (one 1 where low = high)."""
    low, high, fraction = bilinear_sources(n_out, scale, n_in, dtype)
    matrix = np.zeros((n_out, n_in), dtype=dtype)
    np.add.at(matrix, (np.arange(n_out), low), 1 - fraction)
    np.add.at(matrix, (np.arange(n_out), high), fraction)
    return matrix


def upsample_bilinear_forward(x, size):
    """Bilinear up-sampling by (S_h, S_w), one axis at a time: y = A_h x A_w', with A the
    :func:`bilinear_matrix` of each axis. (n, C, H, W) -> (n, C, S_h H, S_w W)."""
    rows = bilinear_matrix(x.shape[2] * size[0], size[0], x.shape[2], x.dtype)
    columns = bilinear_matrix(x.shape[3] * size[1], size[1], x.shape[3], x.dtype)
    return np.einsum("ah,nchw,bw->ncab", rows, x, columns)


def upsample_bilinear_backward(grad_y, size):
    """dL/dx = A_h' dL/dy A_w' (the forward map is linear)."""
    height, width = grad_y.shape[2] // size[0], grad_y.shape[3] // size[1]
    rows = bilinear_matrix(grad_y.shape[2], size[0], height, grad_y.dtype)
    columns = bilinear_matrix(grad_y.shape[3], size[1], width, grad_y.dtype)
    return np.einsum("ah,ncab,bw->nchw", rows, grad_y, columns)


def _scatter_window(window):
    """The window over the whole scatter-add of a transposed convolution, (N - 1) S + F rows
    and columns, nothing skipped (``window`` from
    :func:`dlcore.layers.geometry.transpose_window`)."""
    return replace(window, height=(window.out_height - 1) * window.stride_height
                   + window.kernel_height,
                   width=(window.out_width - 1) * window.stride_width + window.kernel_width,
                   pad_height=0, pad_width=0, pad_bottom=0, pad_right=0)


def _crop(full, window):
    """y[h, w] = full[h + skip_h, w + skip_w], zeros where that lies beyond ``full``."""
    n, channels = full.shape[:2]
    out = np.zeros((n, channels, window.height, window.width), dtype=full.dtype)
    ph, pw = window.pad_height, window.pad_width
    rows, columns = min(window.height, full.shape[2] - ph), min(window.width, full.shape[3] - pw)
    out[:, :, :rows, :columns] = full[:, :, ph:ph + rows, pw:pw + columns]
    return out


def _uncrop(grad, window, scatter):
    """The adjoint of :func:`_crop`: dL/dfull from dL/dy."""
    n, channels = grad.shape[:2]
    full = np.zeros((n, channels, scatter.height, scatter.width), dtype=grad.dtype)
    ph, pw = window.pad_height, window.pad_width
    rows, columns = min(window.height, scatter.height - ph), min(window.width, scatter.width - pw)
    full[:, :, ph:ph + rows, pw:pw + columns] = grad[:, :, :rows, :columns]
    return full


def conv2d_transpose_forward(x, kernel, bias, window):
    """The transposed convolution, the adjoint of :func:`conv2d_forward` (what a convolution's
    backward pass does to dL/dz, applied to an input): every input pixel scatters its value
    times the filter into the output,

        full[n, f, S_h y + i, S_w x + j] += sum_c K[c, f, i, j] x[n, c, y, x]
        z[n, f, h, w] = b[f] + full[n, f, h + skip_h, w + skip_w]

    as one product and a col2im: cols = K (C, F k_h k_w)' @ x (C, n H W), full = col2im(cols).
    The kernel is (C_in, F, k_h, k_w): the kernel of the Conv2D from F maps to C_in maps whose
    adjoint this is (PyTorch's ConvTranspose2d layout; Keras's (k_h, k_w, F, C_in) transposed
    by (3, 2, 0, 1), the same permutation as a Conv2D kernel's).
    (n, C_in, H, W) -> (n, F, H_out, W_out)."""
    channels, n = kernel.shape[0], x.shape[0]
    scatter = _scatter_window(window)
    inputs = x.transpose(1, 0, 2, 3).reshape(channels, -1)
    full = col2im(kernel.reshape(channels, -1).T @ inputs, n, scatter)
    return _crop(full, window) + bias[None, :, None, None]


def conv2d_transpose_backward(x, kernel, grad_z, window):
    """Back-propagation through :func:`conv2d_transpose_forward`: with
    G = im2col(dL/dfull) (F k_h k_w, n H W), a convolution of the output gradient,

        dL/dx = K (C, F k_h k_w) @ G,   dL/dK = x (C, n H W) @ G',   dL/db = sum of dL/dz.

    Returns ``(dL/dx, dL/dK, dL/db)``."""
    channels, n = kernel.shape[0], x.shape[0]
    scatter = _scatter_window(window)
    columns = im2col(_uncrop(grad_z, window, scatter), scatter)
    inputs = x.transpose(1, 0, 2, 3).reshape(channels, -1)
    grad_x = (kernel.reshape(channels, -1) @ columns).reshape(
        channels, n, x.shape[2], x.shape[3]).transpose(1, 0, 2, 3)
    grad_kernel = (inputs @ columns.T).reshape(kernel.shape)
    return grad_x, grad_kernel, grad_z.sum(axis=(0, 2, 3))


# -- merging tensors (lecture "Deep learning I", "Defining a functional model"; residual
# connections, lecture "Convolutional Neural Networks" (2019)) ----------------------------


def add_forward(xs):
    """y = x_1 + ... + x_k, tensors of one shape (a residual block's y = x + F(x))."""
    total = xs[0].copy()
    for x in xs[1:]:
        total += x
    return total


def add_backward(grad_y, k):
    """dL/dx_i = dL/dy for each of the k summands (the sum passes its gradient on unchanged)."""
    return [grad_y.copy() for _ in range(k)]


def concatenate_forward(xs, axis):
    """y = [x_1, ..., x_k] joined along ``axis`` of the batch tensor (1: the channels of NCHW
    images or the features of rows)."""
    return np.concatenate(xs, axis=axis)


def concatenate_backward(grad_y, sizes, axis):
    """dL/dx_i = the slice of dL/dy that x_i filled: ``sizes[i]`` entries of ``axis``, in
    order."""
    return np.split(grad_y, np.cumsum(sizes)[:-1], axis=axis)


def average_forward(xs):
    """y = (x_1 + ... + x_k) / k, tensors of one shape (the mean of an ensemble's outputs)."""
    return add_forward(xs) / len(xs)


def average_backward(grad_y, k):
    """dL/dx_i = dL/dy / k for each of the k averaged tensors."""
    return [grad_y / k for _ in range(k)]


def subtract_forward(xs):
    """y = x_1 - x_2 (two tensors of one shape)."""
    return xs[0] - xs[1]


def subtract_backward(grad_y):
    """dL/dx_1 = dL/dy, dL/dx_2 = -dL/dy."""
    return [grad_y.copy(), -grad_y]


def multiply_forward(xs):
    """y = x_1 * ... * x_k element by element (a gate: one branch scales another)."""
    product = xs[0].copy()
    for x in xs[1:]:
        product *= x
    return product


def multiply_backward(xs, grad_y):
    """dL/dx_i = dL/dy times the product of the other tensors."""
    grads = []
    for i in range(len(xs)):
        grad = grad_y.copy()
        for j, x in enumerate(xs):
            if j != i:
                grad *= x
        grads.append(grad)
    return grads


def broadcast_forward(x, shape):
    """x repeated along its axes of size 1 to the batch ``shape`` (Keras's and NumPy's
    broadcasting of a merge's input: a (C, 1, 1) gate over (C, H, W) maps)."""
    return np.broadcast_to(x, shape).copy()


def broadcast_backward(grad_y, shape):
    """dL/dx of an x of batch ``shape`` that was repeated to dL/dy's shape: dL/dy summed over
    the axes x was repeated along (each copy of an entry passes its gradient back to it)."""
    repeated = tuple(axis for axis, (size, full) in enumerate(zip(shape, grad_y.shape))
                     if size == 1 and full != 1)
    return grad_y.sum(axis=repeated, keepdims=True)


def extremum_forward(xs, sign):
    """y = the element-wise maximum (sign 1) or minimum (sign -1) of the tensors, and which
    input held it: the first in the list on a tie (np.argmax's rule, and TensorFlow's
    gradient of ``maximum``/``minimum``, which sends a tie to its first argument)."""
    stacked = np.stack(xs)
    chosen = np.argmax(sign * stacked, axis=0)
    return np.take_along_axis(stacked, chosen[None], axis=0)[0], chosen


def extremum_backward(chosen, grad_y, k):
    """dL/dx_i = dL/dy where x_i was chosen, 0 elsewhere: only the chosen input moved y."""
    return [np.where(chosen == i, grad_y, np.zeros_like(grad_y)) for i in range(k)]


def _unit_rows(x, epsilon):
    """``(u, inverse, projected)`` of rows ``x`` (n, F): u = x / max(||x||, epsilon) (Keras's
    ``normalize`` in ``Dot(normalize=True)``: x times min(1 / ||x||, 1 / epsilon)), the
    inverse norms (n, 1), and whether each row's norm exceeds epsilon (there u depends on the
    row's direction only; below it u = x / epsilon)."""
    norm = np.sqrt(np.sum(x * x, axis=1, keepdims=True))
    inverse = 1 / np.maximum(norm, epsilon)
    return x * inverse, inverse, norm > epsilon


def dot_forward(a, b, normalize, epsilon):
    """y[n] = sum_j a[n, j] b[n, j], the dot product of each pair of rows (Keras's ``Dot(axes=1)``
    of (n, F) tensors), as (n, 1); with ``normalize`` of the rows scaled to length 1 first:
    their cosine similarity (a siamese network's score)."""
    if normalize:
        a, b = _unit_rows(a, epsilon)[0], _unit_rows(b, epsilon)[0]
    return np.sum(a * b, axis=1, keepdims=True)


def dot_backward(a, b, grad_y, normalize, epsilon):
    """``(dL/da, dL/db)`` of :func:`dot_forward`: dL/da = dL/dy b and dL/db = dL/dy a; with
    ``normalize`` (u = a / ||a||, v = b / ||b||, y = u . v) the chain rule through the
    normalisation, du/da = (I - u u') / ||a||:

        dL/da = dL/dy (v - y u) / ||a||,   dL/db = dL/dy (u - y v) / ||b||

    (a row shorter than epsilon is only scaled, by 1 / epsilon: dL/da = dL/dy v / epsilon)."""
    if not normalize:
        return grad_y * b, grad_y * a
    u, inverse_a, projected_a = _unit_rows(a, epsilon)
    v, inverse_b, projected_b = _unit_rows(b, epsilon)
    y = np.sum(u * v, axis=1, keepdims=True)
    return (grad_y * inverse_a * (v - projected_a * y * u),
            grad_y * inverse_b * (u - projected_b * y * v))
