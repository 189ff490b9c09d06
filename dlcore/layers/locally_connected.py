"""The locally connected layer: a convolution without weight sharing.

Lecture "Supervised learning" (CVPR 2014), slide "Locally Connected Layer": every hidden unit
sees a small field of the image, as in a convolution, but each output position has filters of
its own (200x200 image, 40K hidden units, 10x10 filters: 4M parameters; "good when input image
is registered (e.g., face recognition)"); its second version asks "STATIONARITY? Statistics is
similar at different locations", and the next slide, "Convolutional Layer", answers it: "Share
the same parameters across different locations". Lecture "Deep
Neural Networks", slide "Fully Connected vs. Convolutional Net", counts the same for 400,000
hidden units: fully connected 16 billion parameters, locally connected with 10x10 fields 40
million.

    z[n, f, y, x] = b[f, y, x] + sum_{c, i, j} K[y, x, f, c, i, j] xpad[n, c, S y + i, S x + j]

The fields are a convolution's (im2col, the same padding and strides, :mod:`.geometry`); the
reference is :func:`dlcore.layers.reference.locally_connected_forward`, the kernels' bodies
``locally_connected_*`` in :mod:`dlcore.layers.bodies` (no GEMM: each position multiplies its
own small matrix).

Keras 3 has no such layer (tf.keras 2's ``LocallyConnected2D`` was removed), so a model with
one is refused by ``format="keras"`` in one line; dlcore's own model files keep it.
"""
import numpy as np

from .base import WindowedLayer, refuse_kernel_constraint
from .conv import Conv2D
from .geometry import check_data_format, one_stride, warn_if_channels_last


class LocallyConnected2D(WindowedLayer):
    """Like :class:`Conv2D`, (n, C, H, W) -> (n, F, H', W'), but with one filter bank per
    output position (see the module docstring).

    Parameters
    ----------
    filters : int, F, the outputs per position
    kernel_size : int or (k_h, k_w), each field's size
    stride : int or pair
    strides : Keras's spelling of ``stride`` (give one, or both the same)
    padding, floor : as :class:`Conv2D`'s (padding "valid", "same", an int, a pair or per
        side; ``floor=True`` drops a remainder no field covers)
    activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
    bias_regularizer, activity_regularizer, kernel_noise : see
        :class:`dlcore.layers.base.WeightedLayer`
    kernel_constraint, bias_constraint : None only (tf.keras 2's signature had them; a unit's
        incoming weights lie along no single axis of the kernel), anything else refused in
        one line
    data_format : None or "channels_first" (Keras's keyword; dlcore's images are NCHW)
    name, input_shape, trainable, dtype : see :class:`dlcore.layers.Layer`

    Attributes
    ----------
    params["kernel"] : (H', W', F, C, k_h, k_w): ``kernel[y, x]`` is position (y, x)'s filters,
        shaped as a Conv2D kernel;  params["bias"] : (F, H', W'), one bias per output unit
    """

    _units_axis = 2
    operation = "locally_connected"

    def __init__(self, filters, kernel_size, stride=1, padding="valid", activation=None,
                 use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, name=None, input_shape=None,
                 strides=None, floor=False, activity_regularizer=None, trainable=True,
                 kernel_noise=None, kernel_constraint=None, bias_constraint=None,
                 data_format=None, dtype=None):
        check_data_format(data_format, "LocallyConnected2D")
        refuse_kernel_constraint("LocallyConnected2D", kernel_constraint)
        super().__init__(activation, use_bias, kernel_initializer, bias_initializer,
                         kernel_regularizer, bias_regularizer, None, name, input_shape,
                         activity_regularizer, bias_constraint, trainable, kernel_noise,
                         dtype=dtype)
        Conv2D._set_geometry(self, filters, kernel_size, one_stride(stride, strides, 1),
                             padding, floor)

    # the geometry is a convolution's
    compute_output_shape = Conv2D.compute_output_shape
    _window = Conv2D._window

    def _config(self):
        config = Conv2D._config(self)
        del config["kernel_constraint"]
        return config

    def build(self, input_shape, backend="auto", dtype=np.float32, seed=0):
        self.window = self._window(input_shape)
        warn_if_channels_last("LocallyConnected2D", input_shape, self.kernel_size)
        return super().build(input_shape, backend, dtype, seed)

    def _initial_weights(self, input_shape, seed):
        window = self._window(input_shape)
        kh, kw = self.kernel_size
        channels = input_shape[0]
        # the fans of one position's filters, as a Conv2D's (Keras's LocallyConnected2D too)
        weights = self._draw_weights(
            (window.out_height, window.out_width, self.filters, channels, kh, kw),
            channels * kh * kw, self.filters * kh * kw, seed)
        if self.use_bias:
            weights["bias"] = np.broadcast_to(
                weights["bias"].reshape(-1, 1, 1),
                (self.filters, window.out_height, window.out_width)).copy()
        return weights

    def weight_count(self):
        """The weights that read an input pixel: a field's cells in the padding (zeros) are
        not counted, though the kernel keeps a place for them (one small matrix per position,
        as a convolution's field). tf.keras 2 kept only the others (its implementation 3's
        count, 1,014 weights for 5x5x2 inputs, 3 filters of 3x3, padding "same"), and its
        ``count_params`` counted those: so do dlcore's, its ``summary`` and ``flops``."""
        if not self.built:
            return 0
        window = self.window

        def cells(size, kernel, stride, before, outputs):
            return sum(min(kernel, size + before - stride * position) -
                       max(0, before - stride * position) for position in range(outputs))

        return self.filters * window.channels * \
            cells(window.height, window.kernel_height, window.stride_height,
                  window.pad_height, window.out_height) * \
            cells(window.width, window.kernel_width, window.stride_width, window.pad_width,
                  window.out_width)

    def bias_count(self):
        return int(self.params["bias"].size) if self.built and self.use_bias else 0

    def _bias(self):
        if self.use_bias:
            return self.params["bias"]
        zeros = self._workspace.get("zero_bias")
        if zeros is None:
            zeros = self._workspace["zero_bias"] = self.backend.zeros(self.output_shape,
                                                                      self.dtype)
        return zeros

    def _bias_gradient(self):
        if self.use_bias:
            return self.grads["bias"]
        return self._buffer("unused_bias_gradient", self.output_shape)

    def flops(self):
        """2 * the weights: each weight one multiply-add per sample (as a Dense layer)."""
        return 2 * self.weight_count()
