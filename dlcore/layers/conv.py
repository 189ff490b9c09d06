"""The convolutional layer, and a dense layer rewritten as one.

Lecture "Supervised learning" ("Convolutional Layer"): with M input maps, N output maps and
K x K kernels, "the kernels have M x N x K x K coefficients" and the cost is
M K^2 N (D - K + 1)^2 multiply-adds; lecture "Convolutional Neural Networks" (2019) gives the output
size (N - F) / S + 1 and the zero padding P = (F - 1) / 2 that keeps the size, lecture "Deep
learning I" the output size with padding, (N - F + 2P) / S + 1 (Keras's "same" here, which is
P = (F - 1) / 2 for an odd F at stride 1: :mod:`dlcore.layers.geometry`). The operation is a
cross-correlation (lecture "Convolutional neural networks" (2016)):

    z[n, f, y, x] = b[f] + sum_{c, i, j} K[f, c, i, j] * xpad[n, c, S*y + i, S*x + j]

computed as im2col + one matrix product (see :mod:`dlcore.layers.reference`,
:mod:`dlcore.layers.bodies` and :mod:`dlcore.layers.cpu_convolution`).
"""
import numpy as np

from dlcore.validation import check_int

from .base import WindowedLayer
from .geometry import (
    Window,
    check_data_format,
    kernel_pair,
    one_stride,
    padding_sides,
    warn_if_channels_last,
)


class Conv2D(WindowedLayer):
    """2-D convolution (cross-correlation) of NCHW images, (n, C, H, W) -> (n, F, H', W').

    Parameters
    ----------
    filters : int, F, the number of output channels (feature maps)
    kernel_size : int or (k_h, k_w)
    stride : int or pair, S
    strides : Keras's spelling of ``stride`` (give one, or both the same)
    padding : "valid" (P = 0), "same" (Keras's: ceil(N / S) outputs, P = (k - 1) / 2 on each
        side for an odd k at stride 1, else the odd zero at the bottom or right:
        :func:`dlcore.layers.geometry.keras_same_padding`), an int, a pair, or
        ((top, bottom), (left, right)) per side
    activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
    bias_regularizer, kernel_constraint, activity_regularizer, bias_constraint,
    kernel_noise : see :class:`dlcore.layers.base.WeightedLayer`
    floor : bool, Keras's geometry rule: the remainder no window covers dropped (below)
    data_format : None or "channels_first" (Keras's keyword; dlcore's images are NCHW)
    name, input_shape, trainable, dtype : see :class:`dlcore.layers.Layer`

    Attributes
    ----------
    params["kernel"] : (F, C, k_h, k_w);  params["bias"] : (F,)
    window : :class:`dlcore.layers.geometry.Window`, the geometry once built

    A geometry where (N - F + 2P) / S + 1 is not a whole number is a ValueError naming N, F, P
    and S and the calls that fit, unless ``floor=True``: Keras's rule, the remainder no window
    covers dropped (the option that layers imported from Keras files set,
    :mod:`dlcore.io.keras`).
    """

    _units_axis = 0
    operation = "conv2d"

    def __init__(self, filters, kernel_size, stride=1, padding="valid", activation=None,
                 use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 name=None, input_shape=None, strides=None, floor=False,
                 activity_regularizer=None, bias_constraint=None, trainable=True,
                 kernel_noise=None, data_format=None, dtype=None):
        check_data_format(data_format, type(self).__name__)
        super().__init__(activation, use_bias, kernel_initializer, bias_initializer,
                         kernel_regularizer, bias_regularizer, kernel_constraint, name,
                         input_shape, activity_regularizer, bias_constraint, trainable,
                         kernel_noise, dtype=dtype)
        self._set_geometry(filters, kernel_size, one_stride(stride, strides, 1), padding, floor)

    def _set_geometry(self, filters, kernel_size, stride, padding, floor):
        """The checked filters, window size, stride and padding (``strides`` is Keras's
        name for ``stride``)."""
        self.filters = check_int(filters, "filters", minimum=1)
        self.kernel_size = kernel_pair(kernel_size, "kernel_size")
        self.stride = kernel_pair(stride, "stride")
        self.padding = padding.lower() if isinstance(padding, str) else padding
        self._given_padding = padding_sides(padding, self.kernel_size)
        self.floor = bool(floor)

    @property
    def _padding(self):
        """The zeros per side, ((top, bottom), (left, right)): the built window's ("same"
        depends on the input), else as given ("same" until built)."""
        window = getattr(self, "window", None)
        return window.sides if window is not None else self._given_padding

    def _config(self):
        if isinstance(self.padding, str):
            padding = self.padding
        else:
            (top, bottom), (left, right) = self._given_padding
            padding = [top, left] if (top, left) == (bottom, right) else \
                [[top, bottom], [left, right]]
        config = {"filters": self.filters, "kernel_size": list(self.kernel_size),
                  "stride": list(self.stride), "padding": padding, **self._weighted_config()}
        if self.floor:
            config["floor"] = True
        return config

    def compute_output_shape(self, input_shape):
        window = self._window(input_shape)
        return (self.filters, window.out_height, window.out_width)

    def _window(self, input_shape):
        return Window.fit(input_shape, self.kernel_size, self.stride, self._given_padding,
                          type(self).__name__, floor=self.floor, filters=self.filters)

    def build(self, input_shape, backend="auto", dtype=np.float32, seed=0):
        self.window = self._window(input_shape)
        warn_if_channels_last("Conv2D", input_shape, self.kernel_size)
        return super().build(input_shape, backend, dtype, seed)

    def _initial_weights(self, input_shape, seed):
        kh, kw = self.kernel_size
        channels = input_shape[0]
        return self._draw_weights((self.filters, channels, kh, kw), channels * kh * kw,
                                  self.filters * kh * kw, seed)

    def flops(self):
        """2 * (C k_h k_w) * F * H' W': the M K^2 N (D - K + 1)^2 multiply-adds of lecture
        "Supervised learning" ("Convolutional Layer"), times 2."""
        return 2 * self.weight_count() * self.window.out_pixels if self.built else 0

    def _forward_options(self, training):
        # the columns of the samples, for the backward pass that follows a training pass
        return {"keep_columns": training}


def dense_as_conv(dense, input_shape):
    """The Conv2D that computes what ``dense`` computes on flattened (C, H, W) inputs.

    Lecture "Supervised learning", slide "ConvNets: Training": a fully connected layer on a
    C x H x W input is a convolution whose kernel covers the whole input, one filter per
    output unit:

        K[f, c, i, j] = kernel[(c * H + i) * W + j, f],   bias unchanged,

    so ``conv(x)`` of shape (n, units, 1, 1) equals ``dense(x.reshape(n, -1))``, and on a
    larger input the same conv slides the classifier over every position.

    Parameters
    ----------
    dense : a built :class:`dlcore.layers.Dense` whose input has C * H * W features
    input_shape : (C, H, W), the shape that was flattened into the dense layer

    Returns
    -------
    Conv2D, built on the dense layer's backend, dtype and activation.
    """
    from .dense import Dense
    if not isinstance(dense, Dense) or not dense.built:
        raise ValueError("dense_as_conv needs a built Dense layer")
    channels, height, width = (check_int(v, "input_shape", minimum=1) for v in input_shape)
    kernel, *bias = dense.get_weights()
    if kernel.shape[0] != channels * height * width:
        raise ValueError(f"the dense layer has {kernel.shape[0]} inputs, but input_shape "
                         f"{tuple(input_shape)} flattens to {channels * height * width}")
    conv_kernel = kernel.T.reshape(dense.units, channels, height, width)
    conv = Conv2D(dense.units, (height, width), activation=dense.activation,
                  use_bias=dense.use_bias, kernel_initializer=conv_kernel,
                  bias_initializer=bias[0] if bias else "zeros",
                  name=None if dense.name is None else f"{dense.name}_as_conv")
    return conv.build((channels, height, width), dense.backend, dense.dtype)
