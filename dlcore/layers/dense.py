"""The fully connected layer: y = activation(x @ kernel + bias).

Lecture "Supervised learning" ("Fully Connected Layer", "Backward Propagation") and lecture
"Deep learning I" (Keras' ``Dense``). The kernel is ``(in_features, out_features)``, as
in Keras and as an RBM's ``W`` (``(n_visible, n_hidden)``), so a DBN hands its weights over
unchanged.

As Keras's, the layer also takes sequences and maps, and applies the same kernel to each
step's or pixel's features (a squeeze-and-excitation block's Dense on (C, 1, 1) maps): the
product of rows runs on a (steps * n, features) view of the batch, of a (n H W, C) copy of
maps with more than one pixel (dlcore's maps are channels first; Keras's last axis, its
channels, is their axis 1).
"""
import math

from dlcore.validation import check_int

from .base import WeightedLayer, check_shape


class Dense(WeightedLayer):
    """y = activation(x @ kernel + bias), (n, in) -> (n, units).

    Parameters
    ----------
    units : int, the number of outputs
    activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
    bias_regularizer, kernel_constraint, activity_regularizer, bias_constraint : see
        :class:`dlcore.layers.base.WeightedLayer`
    input_dim : int, optional, shorthand for ``input_shape=(input_dim,)`` (Keras)
    kernel_noise : see :class:`dlcore.layers.base.WeightedLayer`
    name, input_shape, trainable, dtype : see :class:`dlcore.layers.Layer`

    Initial weights given by the caller (a DBN's RBM, say) go in as arrays::

        Dense(500, activation="sigmoid", kernel_initializer=W, bias_initializer=hidden_bias)

    or, on a built layer, ``layer.set_weights([kernel, bias])``.

    Attributes
    ----------
    params["kernel"] : (in, units);  params["bias"] : (units,)

    Inputs and outputs, per sample (the kernel acts on the features, where Keras's last axis
    falls in dlcore's layout)::

        (in,)        -> (units,)         rows
        (T, in)      -> (T, units)       a sequence: each of its T steps (Keras's (T, in))
        (in, H, W)   -> (units, H, W)    maps: each pixel's channels (Keras's (H, W, in)),
                                         what Conv2D(units, 1) computes with the kernel's
                                         transpose

    A Dense on maps is not a classifier over the whole image: for that put a :class:`Flatten`
    (or a global pool) before it.
    """

    _units_axis = 1

    def __init__(self, units, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 name=None, input_shape=None, input_dim=None, activity_regularizer=None,
                 bias_constraint=None, trainable=True, kernel_noise=None, dtype=None):
        if input_dim is not None:
            input_shape = (check_int(input_dim, "input_dim", minimum=1),)
        super().__init__(activation, use_bias, kernel_initializer, bias_initializer,
                         kernel_regularizer, bias_regularizer, kernel_constraint, name,
                         input_shape, activity_regularizer, bias_constraint, trainable,
                         kernel_noise, dtype=dtype)
        self.units = check_int(units, "units", minimum=1)

    def _config(self):
        return {"units": self.units, **self._weighted_config()}

    def compute_output_shape(self, input_shape):
        input_shape = check_shape(input_shape)
        if len(input_shape) > 3:
            raise ValueError(f"Dense takes rows (features,), sequences (steps, features) or "
                             f"maps (C, H, W); got per-sample shape {input_shape}: put a "
                             f"Flatten() layer before it")
        if len(input_shape) == 3:
            return (self.units,) + input_shape[1:]
        return input_shape[:-1] + (self.units,)

    @staticmethod
    def _features(input_shape):
        """The number of features the kernel reads: a map's channels, else the last axis."""
        return input_shape[0] if len(input_shape) == 3 else input_shape[-1]

    def _initial_weights(self, input_shape, seed):
        features = self._features(input_shape)
        return self._draw_weights((features, self.units), features, self.units, seed)

    def flops(self):
        """2 * in * units per step or pixel: one multiply-add per weight and position."""
        if not self.built:
            return 0
        positions = math.prod(self.input_shape) // self._features(self.input_shape)
        return 2 * self.weight_count() * positions

    @staticmethod
    def _channels_first(shape):
        """Whether a batch of ``shape`` is maps of more than one pixel, whose rows (channels
        last) are a copy of it, not a view."""
        return len(shape) == 4 and shape[2] * shape[3] > 1

    @staticmethod
    def _row_shape(shape):
        """(n * positions, features): the rows of a batch of ``shape``."""
        features = shape[1] if len(shape) == 4 else shape[len(shape) - 1]
        return (math.prod(shape) // features, features)

    def _rows(self, array, key):
        """``array`` (n, ...) as the (n * positions, features) rows the product takes: a view
        of rows or sequences, or of maps with one pixel; a copy, channels last, of maps with
        more (in the buffer ``key``)."""
        rows = self._into(array, key)
        if self._channels_first(array.shape):
            n, features = array.shape[:2]
            self.ops.swap_axes(array.reshape(n, features, rows.shape[0] // n),
                               rows.reshape(n, rows.shape[0] // n, features))
        return rows

    def _into(self, array, key):
        """The rows the product writes for ``array`` (see :meth:`_rows`): a view of it, or the
        buffer ``key``, which :meth:`_from_rows` copies into it."""
        shape = self._row_shape(array.shape)
        if not self._channels_first(array.shape):
            return array.reshape(shape)
        return self._buffer(key, shape, array.dtype)

    def _from_rows(self, rows, array):
        """``array`` (n, ...) <- the product's ``rows`` (from :meth:`_into`)."""
        if self._channels_first(array.shape):
            n, features = array.shape[:2]
            self.ops.swap_axes(rows.reshape(n, rows.shape[0] // n, features),
                               array.reshape(n, features, rows.shape[0] // n))

    def forward(self, x, training=False, step=0, apply_activation=True):
        self._prepare(x)
        z = self._kernel_output((x.shape[0],) + self.output_shape, apply_activation)
        x_rows, z_rows = self._rows(x, "input_rows"), self._into(z, "output_rows")
        self.ops.dense_forward(x_rows, self._forward_kernel(training, step), self._bias(),
                               self._activation_for(apply_activation), z_rows, self._buffer)
        self._from_rows(z_rows, z)
        self._x, self._x_rows, self._y_rows = x, x_rows, z_rows
        self._y = self._activate(z, apply_activation)
        return self._y

    def backward(self, grad_y, need_input_gradient=True, apply_activation=True):
        grad_y = self._with_activity_gradient(grad_y, apply_activation)
        n = grad_y.shape[0]
        grad_x = self._buffer("grad_input", (n,) + self.input_shape) if need_input_gradient \
            else None
        grad_y = self._activation_gradient(grad_y, apply_activation)
        grad_x_rows = None if grad_x is None else self._into(grad_x, "grad_input_rows")
        self.ops.dense_backward(self._x_rows, self._used_kernel, self._y_rows,
                                self._rows(grad_y, "grad_output_rows"),
                                self._activation_for(apply_activation), self.grads["kernel"],
                                self._bias_gradient(), grad_x_rows, self._buffer,
                                self._kernel_step())
        if grad_x is not None:
            self._from_rows(grad_x_rows, grad_x)
        return grad_x
