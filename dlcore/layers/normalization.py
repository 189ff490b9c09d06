"""Normalisation layers, as Keras's ``BatchNormalization`` and ``LayerNormalization``.

Batch normalisation (Ioffe & Szegedy 2015): each channel c (a feature of flat rows, a map of
NCHW images) is normalised with the mean and variance of its M = n H W values in the batch,
then scaled and shifted by two parameters::

    mu_c = 1/M sum x,   sigma2_c = 1/M sum (x - mu_c)^2                 (training)
    y = gamma_c (x - mu_c) / sqrt(sigma2_c + epsilon) + beta_c
    moving_mu <- momentum moving_mu + (1 - momentum) mu_c              (likewise sigma2)

In evaluation (``predict``, ``evaluate``) the moving averages take the batch's place, so a
sample's output does not depend on the others. A frozen layer (``trainable = False``) uses them
in training too and leaves them as they are: Keras's rule for fine-tuning a pretrained net.
The gradient through the batch statistics is :func:`dlcore.layers.reference.batch_norm_backward`.
The moving statistics are the layer's state, not parameters: ``get_weights`` lists them after
gamma and beta (Keras's order), the optimiser never steps them, files keep them.

Layer normalisation (Ba, Kiros & Hinton 2016) normalises each sample on its own, over the C
channels at each pixel (the features of a row), the same in training and evaluation::

    mu = 1/C sum_c x_c,   sigma2 = 1/C sum_c (x_c - mu)^2,   y_c = gamma_c x_hat_c + beta_c

with x_hat_c = (x_c - mu) / sqrt(sigma2 + epsilon); its gradient is
:func:`dlcore.layers.reference.layer_norm_backward`.
"""
import math

import numpy as np

from dlcore.validation import check_bool, check_float

from .base import Layer, check_shape, draws_noise


class _Normalization(Layer):
    """What both normalisations share: the channel axis, epsilon, the optional gamma and beta
    (C,), and the (n, C, P) view of a batch their kernels take."""

    def __init__(self, axis, epsilon, center, scale, name, input_shape, trainable, dtype=None):
        super().__init__(name=name, input_shape=input_shape, trainable=trainable,
                         dtype=dtype)
        if isinstance(axis, bool) or axis not in (1, -1):
            raise ValueError(f"axis must be 1 (the channels of NCHW images, the features of "
                             f"rows) or -1 for rows, got {axis!r}")
        self.axis = axis
        self.epsilon = check_float(epsilon, "epsilon", low=0.0, low_open=True)
        self.center = check_bool(center, "center")
        self.scale = check_bool(scale, "scale")
        self.weight_names = tuple(name for name, wanted in (("gamma", self.scale),
                                                            ("beta", self.center)) if wanted)

    def _config(self):
        config = {"epsilon": self.epsilon, "center": self.center, "scale": self.scale}
        if self.axis != 1:
            config["axis"] = self.axis
        return config

    def compute_output_shape(self, input_shape):
        input_shape = check_shape(input_shape)
        kind = type(self).__name__
        if len(input_shape) not in (1, 3):
            raise ValueError(f"{kind} takes rows (features,) or images (C, H, W); got "
                             f"per-sample shape {input_shape}")
        if self.axis == -1 and len(input_shape) == 3:
            raise ValueError(f"axis=-1 would normalise the width of NCHW images: dlcore's "
                             f"channels are axis 1 ({kind}() or axis=1)")
        return input_shape

    def _initial_weights(self, input_shape, seed):
        channels = input_shape[0]
        return {"gamma": np.ones(channels), "beta": np.zeros(channels)}

    def weight_count(self):
        return int(self.params["gamma"].shape[0]) if self.built and self.scale else 0

    def bias_count(self):
        return int(self.params["beta"].shape[0]) if self.built and self.center else 0

    def _channels(self, n):
        """(n, C, P): how the kernels see a batch of n."""
        channels = self.input_shape[0]
        return (n, channels, math.prod(self.input_shape) // channels)

    def _affine(self):
        """gamma and beta, or the constants they are when not learnt."""
        channels = self.input_shape[0]
        gamma = self.params.get("gamma")
        if gamma is None:
            gamma = self._constant("unit_scale", channels, 1.0)
        beta = self.params.get("beta")
        if beta is None:
            beta = self._constant("zero_shift", channels, 0.0)
        return gamma, beta

    def backward(self, grad_y, need_input_gradient=True):
        shape = self._channels(grad_y.shape[0])
        gamma, _ = self._affine()
        grad_gamma = self.grads.get("gamma")   # a scratch buffer for one not learnt
        if grad_gamma is None:
            grad_gamma = self._buffer("unused_gamma_gradient", shape[1:2])
        grad_beta = self.grads.get("beta")
        if grad_beta is None:
            grad_beta = self._buffer("unused_beta_gradient", shape[1:2])
        grad_x = self._buffer("grad_input", tuple(grad_y.shape))
        self._backward(grad_y.reshape(shape), gamma, grad_gamma, grad_beta,
                       grad_x.reshape(shape))
        return grad_x if need_input_gradient else None

    def _backward(self, grad_y3, gamma, grad_gamma, grad_beta, grad_x3):
        """The subclass's backward kernels on the (n, C, P) views: dL/dx, dL/dgamma,
        dL/dbeta from what its forward pass kept."""
        raise NotImplementedError

    def _constant(self, key, size, value):
        array = self._workspace.get(key)
        if array is None:
            array = self._workspace[key] = self.backend.asarray(np.full(size, value),
                                                                dtype=self.dtype)
        return array


class BatchNormalization(_Normalization):
    """Normalise each channel over the batch, then scale and shift it (module docstring).

    Parameters
    ----------
    axis : 1 (the channels of NCHW images, the features of rows), or -1 for rows (the same
        axis); dlcore's images are channels first, so Keras's default -1 on images is refused
        with the fix
    momentum : float in [0, 1), of the moving averages (Keras's 0.99)
    epsilon : float > 0, added to the variance (Keras's 1e-3)
    center, scale : bool, learn beta (a shift) and gamma (a scale); off: 0 and 1
    trainable : bool, False freezes the layer (see :class:`Layer`): it then normalises with
        its moving statistics, in training too, as Keras does
    name, input_shape, dtype : see :class:`dlcore.layers.Layer`
    """

    state_names = ("moving_mean", "moving_variance")

    def __init__(self, axis=1, momentum=0.99, epsilon=1e-3, center=True, scale=True, name=None,
                 input_shape=None, trainable=True, dtype=None):
        super().__init__(axis, epsilon, center, scale, name, input_shape, trainable, dtype)
        self.momentum = check_float(momentum, "momentum", low=0.0, high=1.0, high_open=True)

    def _config(self):
        return {"momentum": self.momentum, **super()._config()}

    def _initial_weights(self, input_shape, seed):
        channels = input_shape[0]   # four arrays: a backend may keep them as they are
        return {**super()._initial_weights(input_shape, seed),
                "moving_mean": np.zeros(channels), "moving_variance": np.ones(channels)}

    def _value_problem(self, name, value):
        """A moving variance is never negative: one that epsilon does not lift above 0 (a
        damaged file's) makes every output NaN, the square root of a negative number. Less
        negative values are rounding (a writer's E[x^2] - E[x]^2 of a channel that never
        varies, about -1e-12), which epsilon keeps harmless, as Keras reads them."""
        if name != "moving_variance":
            return None
        negative = int(np.count_nonzero(value + value.dtype.type(self.epsilon) <= 0))
        if not negative:
            return None
        return (f"holds {negative} negative value{'s' if negative > 1 else ''} (down to "
                f"{float(value.min()):.3g}), which a variance never does")

    def forward(self, x, training=False, step=0):
        self._prepare(x)
        shape = self._channels(x.shape[0])
        x3 = x.reshape(shape)
        y = self._buffer("output", x.shape)
        batch = draws_noise(training) and self.trainable
        if batch:
            mean = self._buffer("batch_mean", shape[1:2])
            variance = self._buffer("batch_variance", shape[1:2])
            self.ops.batch_moments(x3, mean, variance, self.state["moving_mean"],
                                   self.state["moving_variance"], self.momentum)
        else:
            mean, variance = self.state["moving_mean"], self.state["moving_variance"]
        gamma, beta = self._affine()
        self.ops.batch_norm_forward(x3, mean, variance, gamma, beta, self.epsilon,
                                    y.reshape(shape))
        self._x3, self._mean, self._variance, self._batch = x3, mean, variance, batch
        return y

    def _backward(self, grad_y3, gamma, grad_gamma, grad_beta, grad_x3):
        self.ops.batch_norm_backward(self._x3, self._mean, self._variance, gamma, grad_y3,
                                     self.epsilon, self._batch, grad_gamma, grad_beta, grad_x3)


class LayerNormalization(_Normalization):
    """Normalise each sample over its channels (at each pixel of an image; over the features
    of a row), then scale and shift each channel (module docstring): no batch statistics, the
    same in training and evaluation.

    Parameters
    ----------
    axis : 1 (the channels of NCHW images, the features of rows), or -1 for rows; Keras's
        default -1 on NHWC images is dlcore's 1
    epsilon : float > 0, added to the variance (Keras's 1e-3)
    center, scale : bool, learn beta (a shift) and gamma (a scale) per channel; off: 0 and 1
    name, input_shape, trainable, dtype : see :class:`dlcore.layers.Layer`
    """

    def __init__(self, axis=1, epsilon=1e-3, center=True, scale=True, name=None,
                 input_shape=None, trainable=True, dtype=None):
        super().__init__(axis, epsilon, center, scale, name, input_shape, trainable, dtype)

    def forward(self, x, training=False, step=0):
        self._prepare(x)
        shape = self._channels(x.shape[0])
        x3 = x.reshape(shape)
        y = self._buffer("output", x.shape)
        mean = self._buffer("sample_mean", (shape[0], shape[2]))
        inverse_deviation = self._buffer("sample_inverse_deviation", (shape[0], shape[2]))
        gamma, beta = self._affine()
        self.ops.layer_norm_forward(x3, gamma, beta, self.epsilon, y.reshape(shape), mean,
                                    inverse_deviation)
        self._x3, self._mean, self._inverse_deviation = x3, mean, inverse_deviation
        return y

    def _backward(self, grad_y3, gamma, grad_gamma, grad_beta, grad_x3):
        self.ops.layer_norm_backward(self._x3, self._mean, self._inverse_deviation, gamma,
                                     grad_y3, grad_gamma, grad_beta, grad_x3)
