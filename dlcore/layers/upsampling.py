"""Up-sampling: the U-Net's way back up (lecture "Deep learning I", "The U-Net architecture").

Nearest-neighbour up-sampling by (S_h, S_w) repeats every pixel into an S_h x S_w block,

    y[n, c, h, w] = x[n, c, h // S_h, w // S_w],      (n, C, H, W) -> (n, C, S_h H, S_w W),

so back-propagation sums the gradient over each block. Bilinear up-sampling interpolates
between the four input pixels around each output's source point, with half-pixel centres
(Keras's and PyTorch's ``align_corners=False``): along each axis output d reads the input at
max((d + 1/2) / S - 1/2, 0). No parameters; each channel on its own. The maths is
:func:`dlcore.layers.reference.upsample_nearest_forward` and
:func:`~dlcore.layers.reference.upsample_bilinear_forward` (the oracles) and the bodies
``upsample_*_rows`` of :mod:`dlcore.layers.bodies` for ``cpu`` and ``cuda``.
"""
from .base import Layer
from .geometry import check_data_format, kernel_pair

INTERPOLATIONS = ("nearest", "bilinear")


class UpSampling2D(Layer):
    """Up-sampling of NCHW images (Keras's ``UpSampling2D``, channels first).

    Parameters
    ----------
    size : int or (S_h, S_w), the factor along the height and the width (default 2)
    interpolation : "nearest" (repeat each pixel) or "bilinear"
    data_format : None or "channels_first" (Keras's keyword; dlcore's images are NCHW)
    name, input_shape, trainable, dtype : see :class:`dlcore.layers.Layer`
    """

    def __init__(self, size=(2, 2), interpolation="nearest", name=None, input_shape=None,
                 data_format=None, trainable=True, dtype=None):
        super().__init__(name=name, input_shape=input_shape, trainable=trainable,
                         dtype=dtype)
        check_data_format(data_format, "UpSampling2D")
        self.size = kernel_pair(size, "size")
        if not isinstance(interpolation, str) or interpolation.lower() not in INTERPOLATIONS:
            raise ValueError(f"UpSampling2D interpolation must be 'nearest' or 'bilinear', got "
                             f"{interpolation!r}")
        self.interpolation = interpolation.lower()

    def _config(self):
        return {"size": list(self.size), "interpolation": self.interpolation}

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"UpSampling2D needs (channels, height, width) inputs, got shape "
                             f"{tuple(input_shape)}; images are NCHW")
        channels, height, width = input_shape
        return (channels, height * self.size[0], width * self.size[1])

    def forward(self, x, training=False, step=0):
        self._prepare(x)
        y = self._buffer("output", (x.shape[0],) + self.output_shape)
        self.ops.upsample_forward(x, self.size, self.interpolation, y)
        return y

    def backward(self, grad_y, need_input_gradient=True):
        if not need_input_gradient:
            return None
        grad_x = self._buffer("grad_input", (grad_y.shape[0],) + self.input_shape)
        self.ops.upsample_backward(grad_y, self.size, self.interpolation, grad_x)
        return grad_x
