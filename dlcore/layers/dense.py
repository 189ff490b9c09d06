"""The fully connected layer: y = activation(x @ kernel + bias).

Lecture "Supervised learning" ("Fully Connected Layer", "Backward Propagation") and lecture
"Deep learning I" (Keras' ``Dense``). The kernel is ``(in_features, out_features)``, as
in Keras and as an RBM's ``W`` (``(n_visible, n_hidden)``), so a DBN hands its weights over
unchanged.
"""
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
    name, input_shape : see :class:`dlcore.layers.Layer`

    Initial weights given by the caller (a DBN's RBM, say) go in as arrays::

        Dense(500, activation="sigmoid", kernel_initializer=W, bias_initializer=hidden_bias)

    or, on a built layer, ``layer.set_weights([kernel, bias])``.

    Attributes
    ----------
    params["kernel"] : (in, units);  params["bias"] : (units,)

    Inputs must be flat ``(n, features)``: put a :class:`Flatten` after image layers.
    """

    _units_axis = 1

    def __init__(self, units, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 name=None, input_shape=None, input_dim=None, activity_regularizer=None,
                 bias_constraint=None, trainable=True, kernel_noise=None):
        if input_dim is not None:
            input_shape = (check_int(input_dim, "input_dim", minimum=1),)
        super().__init__(activation, use_bias, kernel_initializer, bias_initializer,
                         kernel_regularizer, bias_regularizer, kernel_constraint, name,
                         input_shape, activity_regularizer, bias_constraint, trainable,
                         kernel_noise)
        self.units = check_int(units, "units", minimum=1)

    def _config(self):
        return {"units": self.units, **self._weighted_config()}

    def compute_output_shape(self, input_shape):
        input_shape = check_shape(input_shape)
        if len(input_shape) != 1:
            raise ValueError(f"Dense needs flat inputs (n, features); got per-sample shape "
                             f"{input_shape}: put a Flatten() layer before it")
        return (self.units,)

    def _initial_weights(self, input_shape, seed):
        return self._draw_weights((input_shape[0], self.units), input_shape[0], self.units,
                                  seed)

    def flops(self):
        """2 * in * units: one multiply-add per weight."""
        return 2 * self.weight_count()

    def forward(self, x, training=False, step=0, apply_activation=True):
        self._prepare(x)
        n = x.shape[0]
        z = self._kernel_output((n, self.units), apply_activation)
        self.ops.dense_forward(x, self._forward_kernel(training, step), self._bias(),
                               self._activation_for(apply_activation), z, self._buffer)
        self._x, self._y = x, self._activate(z, apply_activation)
        return self._y

    def backward(self, grad_y, need_input_gradient=True, apply_activation=True):
        grad_y = self._with_activity_gradient(grad_y, apply_activation)
        n = grad_y.shape[0]
        grad_x = self._buffer("grad_input", (n,) + self.input_shape) if need_input_gradient \
            else None
        grad_y = self._activation_gradient(grad_y, apply_activation)
        self.ops.dense_backward(self._x, self._used_kernel, self._y, grad_y,
                                self._activation_for(apply_activation), self.grads["kernel"],
                                self._bias_gradient(), grad_x, self._buffer,
                                self._kernel_step())
        return grad_x
