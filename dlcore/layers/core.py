"""Layers without weights: activations, Reshape, Flatten and Cropping2D, Dropout and Rescaling.

Activations (lecture "Supervised learning") are computed element-wise, softmax along axis 1
(the classes of flat rows, the channels of each pixel of (C, H, W) maps); backward uses the
outputs y (relu: [y > 0]; sigmoid: y (1 - y); tanh: 1 - y^2; softmax: the Jacobian product
y * (g - sum(g y)); the others in :func:`dlcore.layers.reference.activation_backward`).
Dropout, from lecture "Convolutional neural networks"
(2016) (Srivastava et al. 2014), takes the "inverted" form that scales at training time so that
evaluation is the identity.
"""
import numbers

import numpy as np

from dlcore.backend.rng import STREAM_DROPOUT, STREAM_MC_DROPOUT
from dlcore.validation import check_float

from .base import ACTIVATION_NAMES, MC_DROPOUT, Layer, check_activation, draws_noise, own_seed
from .bodies import NEEDS_PREACTIVATION
from .geometry import check_data_format


class Activation(Layer):
    """y = activation(x) for ``activation`` one of :data:`ACTIVATION_NAMES` (Keras's names):
    linear, relu, sigmoid, tanh, softmax, elu, selu, softplus, softsign, relu6, leaky_relu
    (slope 0.2, Keras's; the :class:`LeakyReLU` layer takes any), hard_sigmoid (Keras 3's
    relu6(x + 3) / 6), exponential, gelu (exact, with erf), silu (alias swish), mish,
    hard_silu (alias hard_swish). The last four take their derivative from x (kept from the
    forward pass), the others from y.

    Softmax runs along axis 1: the classes of flat ``(n, classes)`` inputs, or the channels of
    each pixel of ``(n, C, H, W)`` maps (the per-pixel softmax of a segmentation net, the U-Net
    paper's "pixel-wise soft-max", as a Conv2D's ``activation="softmax"`` computes it and as
    Keras's softmax along its last axis, the channels of its (H, W, C) maps, does).
    """

    def __init__(self, activation, name=None, input_shape=None, trainable=True, dtype=None):
        super().__init__(name=name, input_shape=input_shape, trainable=trainable,
                         dtype=dtype)
        self.activation = check_activation(activation)

    def _config(self):
        return {"activation": self.activation}

    def compute_output_shape(self, input_shape):
        if self.activation == "softmax" and len(input_shape) not in (1, 3):
            raise ValueError(f"Softmax runs over the classes of flat inputs (n, classes) or the "
                             f"channels of (n, C, H, W) maps; got per-sample shape "
                             f"{tuple(input_shape)}: put a Flatten() layer before it")
        return tuple(input_shape)

    def forward(self, x, training=False, step=0, apply_activation=True):
        self._prepare(x)
        if not apply_activation:  # a network fusing this softmax/sigmoid into its loss
            self._y = x
            return x
        y = self._buffer("output", x.shape)
        self.ops.activation_forward(self.activation, x, y)
        self._x, self._y = x, y
        return y

    def backward(self, grad_y, need_input_gradient=True, apply_activation=True):
        if not need_input_gradient:
            return None
        if not apply_activation:
            return grad_y
        grad_x = self._buffer("grad_input", grad_y.shape)
        if self.activation in NEEDS_PREACTIVATION:
            self.ops.activation_input_backward(self.activation, self._x, grad_y, grad_x)
        else:
            self.ops.activation_backward(self.activation, self._y, grad_y, grad_x)
        return grad_x


class _FixedActivation(Activation):
    """An Activation whose function is fixed by the class (``function``)."""

    function = None

    def __init__(self, name=None, input_shape=None, trainable=True, dtype=None):
        super().__init__(self.function, name=name, input_shape=input_shape,
                         trainable=trainable, dtype=dtype)

    def _config(self):
        return {}


class ReLU(_FixedActivation):
    """y = max(0, x); dL/dx = dL/dy * [y > 0]."""

    function = "relu"


class Sigmoid(_FixedActivation):
    """y = 1 / (1 + exp(-x)); dL/dx = dL/dy * y (1 - y)."""

    function = "sigmoid"


class Tanh(_FixedActivation):
    """y = tanh(x); dL/dx = dL/dy * (1 - y^2)."""

    function = "tanh"


class ELU(_FixedActivation):
    """y = x for x > 0, else exp(x) - 1 (Keras's ELU layer with its default alpha = 1);
    dL/dx = dL/dy * (1 if y > 0 else y + 1)."""

    function = "elu"


class LeakyReLU(Layer):
    """y = x for x > 0, else negative_slope * x (Keras's ``LeakyReLU``, whose slope defaults
    to 0.3; the ``"leaky_relu"`` activation of Dense and Conv2D has Keras's 0.2);
    dL/dx = dL/dy * (1 if y > 0 else negative_slope).

    Parameters
    ----------
    negative_slope : float >= 0
    name, input_shape, trainable, dtype : see :class:`dlcore.layers.Layer`
    """

    def __init__(self, negative_slope=0.3, name=None, input_shape=None,
                 trainable=True, dtype=None):
        super().__init__(name=name, input_shape=input_shape, trainable=trainable,
                         dtype=dtype)
        self.negative_slope = check_float(negative_slope, "negative_slope", low=0.0)

    def _config(self):
        return {"negative_slope": self.negative_slope}

    def forward(self, x, training=False, step=0):
        self._prepare(x)
        y = self._buffer("output", x.shape)
        self.ops.leaky_relu_forward(x, self.negative_slope, y)
        self._y = y
        return y

    def backward(self, grad_y, need_input_gradient=True):
        if not need_input_gradient:
            return None
        grad_x = self._buffer("grad_input", grad_y.shape)
        self.ops.leaky_relu_backward(self._y, grad_y, self.negative_slope, grad_x)
        return grad_x


class Softmax(_FixedActivation):
    """y_k = exp(x_k) / sum_j exp(x_j) over the classes of each row, or over the channels of
    each pixel of (C, H, W) maps (computed as exp(x_k - max x) / sum exp(x_j - max x)). With
    ``loss="cross_entropy"`` a network fuses it into the loss, whose gradient with respect to
    x is then p - y (lecture "Supervised learning", "HOMEWORK: prove it!"), per pixel for maps.

    Parameters
    ----------
    axis : int, Keras's argument in dlcore's layout: 1 (or -1 for flat rows, -3 for maps),
        the classes or the channels, which is where Keras's default axis=-1 falls in its
        channels-last layout (dlcore's maps are channels first). A softmax along another axis
        is refused in one line when the layer is built.
    name, input_shape, trainable, dtype : see :class:`dlcore.layers.Layer`
    """

    function = "softmax"

    def __init__(self, axis=1, name=None, input_shape=None, trainable=True, dtype=None):
        super().__init__(name=name, input_shape=input_shape, trainable=trainable,
                         dtype=dtype)
        if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
            raise ValueError(f"Softmax's axis must be one integer (1: the classes, or the "
                             f"channels of maps), got {str(axis)[:40]}")
        self.axis = int(axis)

    def _config(self):
        return {"axis": self.axis}

    def compute_output_shape(self, input_shape):
        shape = super().compute_output_shape(input_shape)
        rank = len(shape) + 1   # with the batch
        if -rank <= self.axis < rank and self.axis % rank == 1:
            return shape
        along = ("is outside the tensor (n, *per-sample shape)" if not -rank <= self.axis < rank
                 else ("runs along the batch", "", "runs along the height",
                       "runs along the width")[self.axis % rank])
        raise ValueError(f"Softmax(axis={self.axis}) on per-sample shape {shape} {along}; "
                         f"dlcore's softmax runs over axis 1, the classes or the channels of "
                         f"each pixel (maps are channels first: Keras's axis=-1 of (H, W, C)): "
                         f"use Softmax() (axis=1)")


class Rescaling(Layer):
    """y = scale x + offset, element-wise (Keras's ``Rescaling``, the first layer of many Keras
    image models: ``Rescaling(1 / 255)`` takes 8-bit pixels into [0, 1]); dL/dx = scale dL/dy.

    Parameters
    ----------
    scale, offset : float (one number for every input; Keras's per-channel lists are not
        taken)
    name, input_shape, trainable, dtype : see :class:`dlcore.layers.Layer`
    """

    def __init__(self, scale, offset=0.0, name=None, input_shape=None, trainable=True, dtype=None):
        super().__init__(name=name, input_shape=input_shape, trainable=trainable,
                         dtype=dtype)
        # the layer computes in float32, where a larger number is infinite
        largest = float(np.finfo(np.float32).max)
        self.scale = check_float(scale, "scale", low=-largest, high=largest)
        self.offset = check_float(offset, "offset", low=-largest, high=largest)

    def _config(self):
        return {"scale": self.scale, "offset": self.offset}

    def forward(self, x, training=False, step=0):
        self._prepare(x)
        y = self._buffer("output", x.shape)
        self.ops.rescale(x, self.scale, self.offset, y)
        return y

    def backward(self, grad_y, need_input_gradient=True):
        if not need_input_gradient:
            return None
        grad_x = self._buffer("grad_input", grad_y.shape)
        self.ops.rescale(grad_y, self.scale, 0.0, grad_x)
        return grad_x


class Reshape(Layer):
    """(n, *input_shape) -> (n, *target_shape), the same numbers in C order: a view, no copy
    and no kernel (Keras's ``Reshape``; one entry of ``target_shape`` may be -1, the size that
    makes the counts agree). dlcore's images are channels first: flat MNIST rows become images
    with ``Reshape((1, 28, 28))`` where Keras writes ``Reshape((28, 28, 1))``.

    Parameters
    ----------
    target_shape : tuple of positive ints, at most one of them -1
    name, input_shape, trainable, dtype : see :class:`dlcore.layers.Layer`
    """

    def __init__(self, target_shape, name=None, input_shape=None, trainable=True, dtype=None):
        super().__init__(name=name, input_shape=input_shape, trainable=trainable,
                         dtype=dtype)
        self.target_shape = _check_target_shape(target_shape)

    def _config(self):
        return {"target_shape": list(self.target_shape)}

    def compute_output_shape(self, input_shape):
        size = int(np.prod(input_shape))
        known = int(np.prod([d for d in self.target_shape if d != -1]))
        if -1 in self.target_shape and size % known == 0:
            return tuple(size // known if d == -1 else d for d in self.target_shape)
        if -1 not in self.target_shape and known == size:
            return self.target_shape
        raise ValueError(f"{type(self).__name__} cannot make {size} values a sample (shape "
                         f"{tuple(input_shape)}) into shape {self.target_shape}: the numbers "
                         f"of values differ")

    def forward(self, x, training=False, step=0):
        self._prepare(x)
        return x.reshape((x.shape[0],) + self.output_shape)

    def backward(self, grad_y, need_input_gradient=True):
        if not need_input_gradient:
            return None
        return grad_y.reshape((grad_y.shape[0],) + self.input_shape)


def _check_target_shape(shape):
    """A reshape's target: a tuple of positive ints, at most one -1; else one line."""
    entries = tuple(shape) if isinstance(shape, (tuple, list)) else None
    if not entries or len(entries) > 8 or sum(d == -1 for d in entries) > 1 or not all(
            isinstance(d, numbers.Integral) and not isinstance(d, bool)
            and (d >= 1 or d == -1) and d < 2**31 for d in entries):
        raise ValueError(f"target_shape must be a tuple of positive integers (one of them may "
                         f"be -1), got {str(shape)[:60]}")
    return tuple(int(d) for d in entries)


class Flatten(Reshape):
    """(n, C, H, W) -> (n, C*H*W) in C order (channel, then row, then column): a view, no
    copy and no kernel (a :class:`Reshape` to ``(-1,)``).

    ``data_format="channels_first"`` is taken for Keras code that names dlcore's layout, but
    the order stays channel, row, column, where Keras's ``Flatten(data_format=
    "channels_first")`` orders row, column, channel; the Keras import and export permute the
    next Dense's rows between the two, so only the flat rows themselves differ from Keras's."""

    def __init__(self, name=None, input_shape=None, data_format=None, trainable=True, dtype=None):
        check_data_format(data_format, "Flatten")
        super().__init__((-1,), name=name, input_shape=input_shape, trainable=trainable,
                         dtype=dtype)

    def _config(self):
        return {}


class Cropping2D(Layer):
    """Cut rows and columns off the edges of NCHW maps (Keras's ``Cropping2D``, channels
    first): the "copy and crop" of the U-Net (lecture "Deep learning I", "The U-Net
    architecture"; Ronneberger et al. 2015), whose unpadded 3x3 convolutions leave the
    contracting path's maps larger than the expanding path's, so that a skip connection crops
    them to the centre before it concatenates::

        y[n, c, h, w] = x[n, c, top + h, left + w],
        (n, C, H, W) -> (n, C, H - top - bottom, W - left - right),

    and back-propagation puts the gradient back in place, zeros where the rows and columns
    were cut. No parameters, no kernel of its own: each pass is two column copies of the
    maps seen as rows (``take_columns`` / ``place_columns``, held to NumPy's slicing by the
    merge tests).

    Parameters
    ----------
    cropping : int, (sym_height, sym_width) or ((top, bottom), (left, right)), non-negative
        (Keras's three forms; default 0, the identity)
    data_format : None or "channels_first" (Keras's keyword; dlcore's images are NCHW)
    name, input_shape, trainable, dtype : see :class:`dlcore.layers.Layer`
    """

    def __init__(self, cropping=((0, 0), (0, 0)), name=None, input_shape=None,
                 data_format=None, trainable=True, dtype=None):
        super().__init__(name=name, input_shape=input_shape, trainable=trainable,
                         dtype=dtype)
        check_data_format(data_format, "Cropping2D")
        self.cropping = cropping_sides(cropping)

    def _config(self):
        return {"cropping": [list(side) for side in self.cropping]}

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"Cropping2D needs (channels, height, width) inputs, got shape "
                             f"{tuple(input_shape)}; images are NCHW")
        channels, height, width = input_shape
        (top, bottom), (left, right) = self.cropping
        if top + bottom >= height or left + right >= width:
            raise ValueError(f"Cropping2D({[list(side) for side in self.cropping]}) cuts "
                             f"{top + bottom} of {height} rows and {left + right} of {width} "
                             f"columns of its {tuple(input_shape)} input: it must leave at "
                             f"least one of each; crop less")
        return (channels, height - top - bottom, width - left - right)

    def forward(self, x, training=False, step=0):
        self._prepare(x)
        (top, _), (left, _) = self.cropping
        n, (channels, height, width), (_, out_height, out_width) = \
            x.shape[0], self.input_shape, self.output_shape
        y = self._buffer("output", (n,) + self.output_shape)
        if out_width == width:
            columns = x
        else:   # each row of each map, cut to its columns left, ..., left + W' - 1
            columns = self._buffer("columns", (n, channels, height, out_width))
            self.ops.take_columns(x.reshape(n * channels * height, width),
                                  columns.reshape(n * channels * height, out_width), left)
        # each map as one row of H W' numbers, cut to its rows top, ..., top + H' - 1
        self.ops.take_columns(columns.reshape(n * channels, height * out_width),
                              y.reshape(n * channels, out_height * out_width), top * out_width)
        return y

    def backward(self, grad_y, need_input_gradient=True):
        if not need_input_gradient:
            return None
        (top, _), (left, _) = self.cropping
        n, (channels, height, width), (_, out_height, out_width) = \
            grad_y.shape[0], self.input_shape, self.output_shape
        grad_x = self.backend.zeros((n,) + self.input_shape, self.dtype)
        columns = grad_x if out_width == width else \
            self.backend.zeros((n, channels, height, out_width), self.dtype)
        self.ops.place_columns(grad_y.reshape(n * channels, out_height * out_width),
                               columns.reshape(n * channels, height * out_width),
                               top * out_width)
        if columns is not grad_x:
            self.ops.place_columns(columns.reshape(n * channels * height, out_width),
                                   grad_x.reshape(n * channels * height, width), left)
        return grad_x


def cropping_sides(cropping):
    """Keras's ``Cropping2D`` argument as ``((top, bottom), (left, right))``: an int crops
    every side by it, a pair ``(h, w)`` the top and bottom by h and the sides by w; else one
    line."""
    def whole(value):
        return isinstance(value, numbers.Integral) and not isinstance(value, bool) and \
            0 <= value < 2**31
    if whole(cropping):
        return (int(cropping),) * 2, (int(cropping),) * 2
    if isinstance(cropping, (tuple, list)) and len(cropping) == 2:
        if all(whole(side) for side in cropping):
            return tuple((int(side), int(side)) for side in cropping)
        if all(isinstance(side, (tuple, list)) and len(side) == 2 and all(map(whole, side))
               for side in cropping):
            return tuple((int(a), int(b)) for a, b in cropping)
    raise ValueError(f"cropping must be a non-negative integer, a pair (height, width) of "
                     f"them or ((top, bottom), (left, right)), got {cropping!r:.60}")


class Dropout(Layer):
    """Inverted dropout: in training each input is kept with probability 1 - rate and scaled
    by 1 / (1 - rate), y = x * m with m = [u >= rate] / (1 - rate); in evaluation y = x.

    The uniforms u come from the layer's Philox key (``seed`` when given, else the one the
    model derives for the layer), stream ``STREAM_DROPOUT``, step = the network's update number
    and (row, column) = (sample in the batch, feature), so a seed gives the same masks on every
    backend (:func:`dlcore.layers.reference.dropout_mask`).
    In the mode ``training="mc_dropout"`` (``predict(x, mc_dropout=K)``: Monte Carlo dropout,
    "dropout as bagging") one mask, drawn as row 0 of ``STREAM_MC_DROPOUT`` at step = the
    draw, multiplies every sample: draw k is one thinned network, the same for every sample,
    so that a sample's prediction depends on the sample and the seed alone.

    Parameters
    ----------
    rate : float in [0, 1), the probability of dropping a unit
    noise_shape : None only (Keras's default: each unit dropped on its own); Keras's masks
        shared along some axes are refused in one line
    seed : int in [0, 2**64) or None, Keras's: the Philox key of this layer's masks, instead
        of the model's key for it (the same masks wherever the layer sits); kept in the
        layer's config and so in the model's files
    name, input_shape, trainable, dtype : see :class:`dlcore.layers.Layer`
    """

    stochastic = True
    #: The global row of the batch's first sample, whose Philox row keys the masks: 0 but in
    #: data-parallel training, where a rank's shard starts inside the global batch
    #: (:mod:`dlcore.distributed.network` sets it before each step).
    first_row = 0

    def __init__(self, rate, noise_shape=None, seed=None, name=None, input_shape=None,
                 trainable=True, dtype=None):
        super().__init__(name=name, input_shape=input_shape, trainable=trainable,
                         dtype=dtype)
        self.rate = check_float(rate, "rate", low=0.0, high=1.0, high_open=True)
        if noise_shape is not None:
            raise ValueError(f"Dropout's noise_shape must be None, got {noise_shape!r:.40}: "
                             f"dlcore drops each unit on its own (Keras's default); drop the "
                             f"argument")
        self.seed = own_seed(seed)

    def _config(self):
        return {"rate": self.rate, **({} if self.seed is None else {"seed": self.seed})}

    def build(self, input_shape, backend="auto", dtype=np.float32, seed=0):
        # a seed of its own keys the masks instead of the model's key for the layer
        return super().build(input_shape, backend, dtype, seed if self.seed is None else
                             self.seed)

    def forward(self, x, training=False, step=0):
        self._prepare(x)
        self._monte_carlo = isinstance(training, str) and training == MC_DROPOUT
        self._training = (self._monte_carlo or draws_noise(training)) and self.rate > 0
        if not self._training:
            return x
        y = self._buffer("output", x.shape)
        if self._monte_carlo:   # the thinned network of this draw: one mask for every sample
            one = (1,) + tuple(x.shape[1:])
            self._mask = self._buffer("mask", one)
            self.ops.dropout_forward(x[:1], self._buffer("first_output", one), self._mask,
                                     self.rate, self.seed_, step, STREAM_MC_DROPOUT)
            self.ops.scale_columns(x, self._mask, y)
            return y
        self._mask = self._buffer("mask", x.shape)
        self.ops.dropout_forward(x, y, self._mask, self.rate, self.seed_, step, STREAM_DROPOUT,
                                 self.first_row)
        return y

    def backward(self, grad_y, need_input_gradient=True):
        if not need_input_gradient:
            return None
        if not self._training:
            return grad_y
        grad_x = self._buffer("grad_input", grad_y.shape)
        if self._monte_carlo:
            self.ops.scale_columns(grad_y, self._mask, grad_x)
        else:
            self.ops.multiply(grad_y, self._mask, grad_x)
        return grad_x


__all__ = ["ACTIVATION_NAMES", "ELU", "Activation", "Dropout", "Flatten", "LeakyReLU", "ReLU",
           "Reshape", "Sigmoid", "Softmax", "Tanh"]
