"""Pooling layers: max, average and L2 pooling (lecture "Supervised learning").

    max:      h(y, x) = max over the pool N(y, x) of the input
    average:  h(y, x) = 1/K sum over the pool           (K pixels per pool)
    L2:       h(y, x) = sqrt(sum over the pool of the input squared)
    L2 over features (L2FeaturePool):  h_j(y, x) = sqrt(sum over the channels k of group j
              of h_k(y, x)^2)

Each channel is pooled on its own, so the number of maps is unchanged and there are no
parameters. The output size is (N - F) / S + 1 (lecture "Convolutional Neural Networks"
(2019)); the stride defaults to the pool size ("for 2x2 max pooling: kernel_size = 2, stride = 2",
lecture "Deep learning I"). Max pooling records where each maximum was, and
back-propagation sends the gradient there only.

``padding="same"`` is Keras's "same" (ceil(N / S) outputs; the odd padded row at the bottom,
the odd column at the right: :func:`dlcore.layers.geometry.keras_same_padding`), and a padding
per side, ``((top, bottom), (left, right))``, is what pools imported from Keras files set; the
padded cells are ignored, as Keras does: a pool's maximum is that of the real pixels it covers,
its mean their sum over their count K', and L2 pooling sums the real pixels' squares.
``floor=True`` is Keras's "valid": the remainder that no pool covers dropped.
"""
import numpy as np

from dlcore.validation import check_bool, check_int

from .base import Layer
from .geometry import (
    Window,
    check_data_format,
    kernel_pair,
    one_stride,
    padding_sides,
    warn_if_channels_last,
)


class _Pool2D(Layer):
    """Shared by the three poolings; ``kind`` says which."""

    kind = None

    def __init__(self, pool_size=2, stride=None, name=None, input_shape=None, strides=None,
                 floor=False, padding="valid", data_format=None, trainable=True, dtype=None):
        super().__init__(name=name, input_shape=input_shape, trainable=trainable,
                         dtype=dtype)
        check_data_format(data_format, type(self).__name__)
        self.floor = bool(floor)   # Keras's rule: the remainder dropped (imported layers)
        self.pool_size = kernel_pair(pool_size, "pool_size")
        stride = one_stride(stride, strides, None)
        self.stride = self.pool_size if stride is None else kernel_pair(stride, "stride")
        if isinstance(padding, str) and padding.lower() not in ("valid", "same"):
            raise ValueError(f"a pool's padding is 'valid', 'same' (Keras's) or ((top, bottom), "
                             f"(left, right)) of ignored cells, got {padding!r}")
        self.padding = padding_sides(padding, self.pool_size)
        # Keras's "same" never pads a whole pool: its sides are below F (keras_same_padding)
        for sides, size in zip(() if self.padding == "same" else self.padding, self.pool_size):
            if max(sides) >= size:
                # a window of padding alone would have no real pixel to pool
                raise ValueError(f"a pool's padding must be smaller than the pool on every "
                                 f"side: padding {self.padding} with pool size "
                                 f"{self.pool_size}")

    def _config(self):
        config = {"pool_size": list(self.pool_size), "stride": list(self.stride)}
        if self.floor:
            config["floor"] = True
        if self.padding == "same":
            config["padding"] = "same"
        elif any(any(sides) for sides in self.padding):
            config["padding"] = [list(sides) for sides in self.padding]
        return config

    def _window(self, input_shape):
        return Window.fit(input_shape, self.pool_size, self.stride, self.padding,
                          type(self).__name__, can_pad=False, floor=self.floor)

    def compute_output_shape(self, input_shape):
        window = self._window(input_shape)
        return (window.channels, window.out_height, window.out_width)

    def build(self, input_shape, backend="auto", dtype=np.float32, seed=0):
        self.window = self._window(input_shape)
        warn_if_channels_last(type(self).__name__, input_shape, self.pool_size)
        return super().build(input_shape, backend, dtype, seed)

    def forward(self, x, training=False, step=0):
        self._prepare(x)
        return _pool(self, x)

    def backward(self, grad_y, need_input_gradient=True):
        return _unpool(self, grad_y) if need_input_gradient else None


def _pool(layer, x):
    """The pooled maps (n, C, H', W') of ``layer.window`` over x, keeping what
    :func:`_unpool` needs."""
    n = x.shape[0]
    shape = (n, layer.window.channels, layer.window.out_height, layer.window.out_width)
    y = layer._buffer("output", shape)
    argmax = layer._buffer("argmax", shape, np.int32)
    layer.ops.pool_forward(layer.kind, x, layer.window, y, argmax)
    layer._x, layer._y, layer._argmax = x, y, argmax
    return y


def _unpool(layer, grad_y):
    """dL/dx of the last :func:`_pool` from dL/dy (n, C, H', W')."""
    shape = (grad_y.shape[0],) + layer.input_shape
    w = layer.window
    if w.out_height * w.stride_height < w.height or w.out_width * w.stride_width < w.width:
        # a floored pool (Keras's geometry) leaves rows or columns no pool covers, which the
        # kernels never write: their gradient is zero
        grad_x = layer.backend.zeros(shape, layer.dtype)
    else:
        grad_x = layer._buffer("grad_input", shape)
    layer.ops.pool_backward(layer.kind, layer._x, layer._y, layer._argmax, grad_y, w, grad_x)
    return grad_x


class MaxPool2D(_Pool2D):
    """Max pooling: each output is the largest input of its pool; the position of that input
    is kept (``argmax``) so that backward routes the whole gradient to it.

    Parameters
    ----------
    pool_size : int or pair (default 2)
    stride : int or pair (default: the pool size, non-overlapping pools)
    strides : Keras's spelling of ``stride`` (give one, or both the same)
    floor, padding : Keras's geometry, for imported pools (see the module docstring)
    data_format : None or "channels_first" (Keras's keyword; dlcore's images are NCHW)
    name, input_shape, trainable, dtype : see :class:`dlcore.layers.Layer`
    """

    kind = "max"
    keras_class_name = "MaxPooling2D"


class AvgPool2D(_Pool2D):
    """Average pooling: each output is the mean of its pool; backward shares the gradient
    equally among the pool's inputs. Parameters as :class:`MaxPool2D`."""

    keras_class_name = "AveragePooling2D"

    kind = "avg"


class L2Pool2D(_Pool2D):
    """L2 pooling: each output is the Euclidean norm of its pool, sqrt(sum x^2); backward
    multiplies by x / h. Parameters as :class:`MaxPool2D`."""

    kind = "l2"


class L2FeaturePool(Layer):
    """L2 pooling over features (lecture "Supervised learning", slide "Pooling Layer:
    Examples": "L2-pooling over features", h_j(x, y) = sqrt(sum over k in N(j) of
    h_k(x, y)^2)): the C channels of (C, H, W) maps, or the features of rows, taken in groups
    of ``group_size`` consecutive ones, N(j) = {j g, ..., j g + g - 1}, each group becoming one
    channel, the Euclidean norm of its values at each pixel: (C, H, W) -> (C / g, H, W).

    It pools along the channels where :class:`L2Pool2D` pools along the rows and columns, and
    runs on that layer's kernels on every backend: (n, C, H, W) in C order is (n, C / g, g, H W),
    a view, where a g x 1 pool of stride g over each (g, H W) "image" is the sum over a group.
    No parameters; no Keras equivalent (a file for Keras refuses it in one line).

    Parameters
    ----------
    group_size : int >= 1 that divides the number of channels (default 2)
    name, input_shape, trainable, dtype : see :class:`dlcore.layers.Layer`
    """

    kind = "l2"

    def __init__(self, group_size=2, name=None, input_shape=None, trainable=True, dtype=None):
        super().__init__(name=name, input_shape=input_shape, trainable=trainable,
                         dtype=dtype)
        self.group_size = check_int(group_size, "group_size", minimum=1)

    def _config(self):
        return {"group_size": self.group_size}

    def compute_output_shape(self, input_shape):
        channels = int(input_shape[0])
        if len(input_shape) not in (1, 3) or channels % self.group_size:
            raise ValueError(f"L2FeaturePool({self.group_size}) pools groups of "
                             f"{self.group_size} channels of (C, H, W) maps (or features of "
                             f"rows): C must be a multiple of {self.group_size}, got "
                             f"per-sample shape {tuple(input_shape)}; choose a group_size "
                             f"that divides {channels}")
        return (channels // self.group_size,) + tuple(input_shape[1:])

    def build(self, input_shape, backend="auto", dtype=np.float32, seed=0):
        groups = self.compute_output_shape(input_shape)[0]
        pixels = int(np.prod(input_shape[1:], dtype=np.int64))
        self.window = Window.fit((groups, self.group_size, pixels), (self.group_size, 1),
                                 (self.group_size, 1), ((0, 0), (0, 0)), type(self).__name__,
                                 can_pad=False)
        return super().build(input_shape, backend, dtype, seed)

    def _grouped_shape(self, n):
        return (n, self.window.channels, self.window.height, self.window.width)

    def forward(self, x, training=False, step=0):
        self._prepare(x)
        y = _pool(self, x.reshape(self._grouped_shape(x.shape[0])))
        return y.reshape((x.shape[0],) + self.output_shape)

    def backward(self, grad_y, need_input_gradient=True):
        if not need_input_gradient:
            return None
        n = grad_y.shape[0]
        grad_x = self._buffer("grad_input", (n,) + self.input_shape)
        self.ops.pool_backward(self.kind, self._x, self._y, self._argmax,
                               grad_y.reshape((n, self.window.channels, 1, self.window.width)),
                               self.window, grad_x.reshape(self._grouped_shape(n)))
        return grad_x


class _GlobalPool2D(Layer):
    """A pool as large as the map: each channel of (C, H, W) becomes one number, (C,) (or
    (C, 1, 1) with ``keepdims``). The pooling of the layers above with F = (H, W) and
    S = F, so it runs on their kernels; ``kind`` says which."""

    kind = None

    def __init__(self, keepdims=False, name=None, input_shape=None, data_format=None,
                 trainable=True, dtype=None):
        super().__init__(name=name, input_shape=input_shape, trainable=trainable,
                         dtype=dtype)
        check_data_format(data_format, type(self).__name__)
        self.keepdims = check_bool(keepdims, "keepdims")

    def _config(self):
        return {"keepdims": True} if self.keepdims else {}

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"{type(self).__name__} pools images (C, H, W); got per-sample "
                             f"shape {tuple(input_shape)}")
        return (input_shape[0], 1, 1) if self.keepdims else (input_shape[0],)

    def build(self, input_shape, backend="auto", dtype=np.float32, seed=0):
        whole = tuple(input_shape[1:]) if len(input_shape) == 3 else None
        if whole is not None:
            self.window = Window.fit(input_shape, whole, whole, padding_sides("valid", whole),
                                     type(self).__name__, can_pad=False)
        return super().build(input_shape, backend, dtype, seed)

    def forward(self, x, training=False, step=0):
        self._prepare(x)
        y = _pool(self, x)
        return y if self.keepdims else y.reshape(x.shape[0], self.input_shape[0])

    def backward(self, grad_y, need_input_gradient=True):
        if not need_input_gradient:
            return None
        return _unpool(self, grad_y.reshape(grad_y.shape[0], self.input_shape[0], 1, 1))


class GlobalAvgPool2D(_GlobalPool2D):
    """The mean of each map, (n, C, H, W) -> (n, C) (Keras's ``GlobalAveragePooling2D``): a
    classifier's head that needs no Flatten and no weights per pixel.

    Parameters
    ----------
    keepdims : bool, keep the pooled axes: (n, C, 1, 1)
    data_format : None or "channels_first" (Keras's argument; dlcore's images are NCHW)
    name, input_shape, trainable, dtype : see :class:`dlcore.layers.Layer`
    """

    kind = "avg"
    keras_class_name = "GlobalAveragePooling2D"


class GlobalMaxPool2D(_GlobalPool2D):
    """The largest value of each map, (n, C, H, W) -> (n, C) (Keras's ``GlobalMaxPooling2D``);
    backward routes each gradient to that value's pixel. Parameters as
    :class:`GlobalAvgPool2D`."""

    kind = "max"
    keras_class_name = "GlobalMaxPooling2D"


#: Keras's names of the global pools
GlobalAveragePooling2D, GlobalMaxPooling2D = GlobalAvgPool2D, GlobalMaxPool2D


# -- Keras' names (lecture "Deep learning I": ``from keras.layers import MaxPooling2D``) --------
def _keras_pooling(cls, pool_size, strides, padding, name, input_shape, data_format,
                   trainable, dtype):
    check_data_format(data_format, cls.keras_class_name)
    if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
        raise ValueError(f"pooling padding must be 'valid' or 'same', got {padding!r}")
    return cls(pool_size, name=name, input_shape=input_shape, strides=strides, floor=True,
               padding=padding, trainable=trainable, dtype=dtype)


def MaxPooling2D(pool_size=2, strides=None, padding="valid", name=None, input_shape=None,
                 data_format=None, trainable=True, dtype=None):
    """Keras' ``MaxPooling2D``: a :class:`MaxPool2D` with Keras' geometry rule, the rows and
    columns no pool covers dropped (``floor=True``), as the lecture's siamese model needs (2x2
    pools of 23x23 maps give 11x11), or ``padding="same"``, Keras's (ceil(N / S) outputs, the
    padded cells ignored). dlcore's own ``MaxPool2D`` refuses a geometry that drops pixels
    unless given ``floor=True``."""
    return _keras_pooling(MaxPool2D, pool_size, strides, padding, name, input_shape,
                          data_format, trainable, dtype)


def AveragePooling2D(pool_size=2, strides=None, padding="valid", name=None, input_shape=None,
                     data_format=None, trainable=True, dtype=None):
    """Keras' ``AveragePooling2D``: an :class:`AvgPool2D` with Keras' geometry rule (see
    :func:`MaxPooling2D`)."""
    return _keras_pooling(AvgPool2D, pool_size, strides, padding, name, input_shape,
                          data_format, trainable, dtype)
