"""The transposed convolution ("deconvolution"): the U-Net's learned up-sampling (lecture
"Deep learning I", "The U-Net architecture").

A transposed convolution is the adjoint of a convolution, the map a Conv2D's backward pass
applies to dL/dz, used as a layer of its own: every input pixel scatters its value times the
filter into the output, S apart,

    full[n, f, S_h y + i, S_w x + j] += sum_c K[c, f, i, j] * x[n, c, y, x]
    z[n, f, h, w] = b[f] + full[n, f, h + skip_h, w + skip_w]

computed as one product and a col2im, K' @ x then col2im (the backward pass is an im2col and two
products): the convolution's own bodies, see :func:`dlcore.layers.reference.
conv2d_transpose_forward` and :class:`dlcore.layers.ops.KernelOps`. Output sizes follow Keras
(:func:`dlcore.layers.geometry.transpose_output_size`): "valid" gives N S + max(F - S, 0)
(= (N - 1) S + F for F >= S), "same" gives N S.

Kernel layout: (in_channels, filters, k_h, k_w), the kernel of the Conv2D from ``filters``
maps to ``in_channels`` maps whose adjoint this is (as PyTorch's ConvTranspose2d). Keras stores
(k_h, k_w, filters, in_channels); ``keras_kernel.transpose(3, 2, 0, 1)`` gives dlcore's, the same
permutation that turns a Keras Conv2D kernel into a dlcore one.
"""
import numpy as np

from dlcore.validation import check_int

from .base import WindowedLayer, refuse_kernel_constraint
from .geometry import check_data_format, kernel_pair, one_stride, transpose_window


class Conv2DTranspose(WindowedLayer):
    """Transposed 2-D convolution of NCHW images, (n, C, H, W) -> (n, F, H', W').

    Parameters
    ----------
    filters : int, F, the number of output channels
    kernel_size : int or (k_h, k_w)
    strides : int or pair, S
    stride : dlcore's Conv2D spelling of ``strides`` (give one, or both the same)
    padding : "valid" (H' = H S + max(k - S, 0)) or "same" (H' = H S), Keras's rules
    activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
    bias_regularizer, activity_regularizer, kernel_noise : see
        :class:`dlcore.layers.base.WeightedLayer`
    kernel_constraint, bias_constraint : None only (Keras's signature has them; dlcore's
        max-norm bounds Dense and Conv2D kernels), anything else refused in one line
    data_format : None or "channels_first" (Keras's keyword; dlcore's images are NCHW)
    name, input_shape, trainable, dtype : see :class:`dlcore.layers.Layer`

    Attributes
    ----------
    params["kernel"] : (C, F, k_h, k_w) (see the module docstring);  params["bias"] : (F,)
    window : the :class:`dlcore.layers.geometry.Window` of the adjoint convolution (over the
        output; its ``out_height``/``out_width`` are the input's)
    """

    _units_axis = 1
    operation = "conv2d_transpose"

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", activation=None,
                 use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, name=None, input_shape=None,
                 stride=None, trainable=True, activity_regularizer=None, kernel_noise=None,
                 kernel_constraint=None, bias_constraint=None, data_format=None, dtype=None):
        check_data_format(data_format, "Conv2DTranspose")
        refuse_kernel_constraint("Conv2DTranspose", kernel_constraint)
        super().__init__(activation, use_bias, kernel_initializer, bias_initializer,
                         kernel_regularizer, bias_regularizer, None, name, input_shape,
                         activity_regularizer=activity_regularizer, trainable=trainable,
                         kernel_noise=kernel_noise, bias_constraint=bias_constraint,
                         dtype=dtype)
        self.filters = check_int(filters, "filters", minimum=1)
        self.kernel_size = kernel_pair(kernel_size, "kernel_size")
        self.strides = kernel_pair(one_stride(strides, stride, (1, 1), "strides", "stride"),
                                   "strides")
        if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
            raise ValueError(f"Conv2DTranspose padding must be 'valid' or 'same', got "
                             f"{padding!r}")
        self.padding = padding.lower()

    @property
    def stride(self):
        return self.strides

    def _config(self):
        config = {"filters": self.filters, "kernel_size": list(self.kernel_size),
                  "stride": list(self.strides), "padding": self.padding,
                  **self._weighted_config()}
        del config["kernel_constraint"]
        return config

    def _window(self, input_shape):
        return transpose_window(input_shape, self.filters, self.kernel_size, self.strides,
                                self.padding, "Conv2DTranspose")

    def compute_output_shape(self, input_shape):
        window = self._window(input_shape)
        return (self.filters, window.height, window.width)

    def build(self, input_shape, backend="auto", dtype=np.float32, seed=0):
        self.window = self._window(input_shape)
        return super().build(input_shape, backend, dtype, seed)

    def _initial_weights(self, input_shape, seed):
        kh, kw = self.kernel_size
        channels = input_shape[0]
        # Keras's fans for its (k_h, k_w, filters, channels) kernel
        return self._draw_weights((channels, self.filters, kh, kw), self.filters * kh * kw,
                                  channels * kh * kw, seed)

    def flops(self):
        """2 * (C k_h k_w F) * H W: every input pixel meets every weight once."""
        return 2 * self.weight_count() * self.window.out_pixels if self.built else 0
