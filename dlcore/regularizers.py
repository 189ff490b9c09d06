"""Weight decay (L2, L1) and max-norm constraints: lecture "Convolutional neural networks" (2016),
"Weight decay (Tikhonov, 1943)".

A penalty Omega(theta) is added to the training cost, C = loss + Omega(theta):

    L2:  Omega = lambda / 2 * ||theta||^2     gradient  lambda * theta
    L1:  Omega = lambda * ||theta||_1         gradient  lambda * sign(theta)   (sparsity)

(the deck writes lambda/2 ||theta||_1 for L1 but gives the gradient lambda sign(theta); dlcore
keeps the gradient and writes the penalty to match it). Keras' ``l2(lambda)`` penalises
lambda ||theta||^2, twice dlcore's at the same lambda.

Max-norm (Srivastava et al. 2014) is a constraint, not a penalty: after every update each unit's
vector of incoming weights w_i is scaled back onto the ball ||w_i|| <= c (the deck writes the
bound on ||w_i||^2; dlcore bounds the norm itself, as the dropout paper and Keras do). For a
Dense kernel (in, out) a unit is a column; for a Conv2D kernel (F, C, k_h, k_w) a filter.

Layers take them as ``kernel_regularizer=L2(1e-4)``, ``bias_regularizer=...`` and
``kernel_constraint=MaxNorm(3.0)``; the optimiser adds the gradients inside its update kernel.
"""
import numpy as np

from dlcore.validation import check_float


class Regularizer:
    """A penalty lambda_1 ||theta||_1 + lambda_2 / 2 ||theta||^2 (see the module docstring)."""

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = check_float(l1, "l1", low=0.0)
        self.l2 = check_float(l2, "l2", low=0.0)

    def penalty(self, weights):
        """Omega(theta) for a NumPy array of weights, in float64."""
        w = np.asarray(weights, dtype=np.float64)
        return self.l1 * np.abs(w).sum() + 0.5 * self.l2 * (w * w).sum()

    def gradient(self, weights):
        """dOmega/dtheta = lambda_1 sign(theta) + lambda_2 theta (NumPy)."""
        return self.l1 * np.sign(weights) + self.l2 * weights

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}

    def __repr__(self):
        return f"{type(self).__name__}(l1={self.l1:g}, l2={self.l2:g})"


class L2(Regularizer):
    """L2 weight decay, Omega = l2 / 2 ||theta||^2 (a Gaussian prior on the weights)."""

    def __init__(self, l2=0.01):
        super().__init__(l2=l2)

    def get_config(self):
        return {"l2": self.l2}


class L1(Regularizer):
    """L1 weight decay, Omega = l1 ||theta||_1 (a Laplace prior; drives weights to zero)."""

    def __init__(self, l1=0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}


class L1L2(Regularizer):
    """Both penalties at once (the "elastic net")."""


class MaxNorm:
    """Keep every unit's incoming weight vector within ||w_i|| <= max_value (applied by the
    optimiser after each update): w_i <- w_i * min(1, c / ||w_i||)."""

    def __init__(self, max_value=3.0):
        self.max_value = check_float(max_value, "max_value", low=0.0, low_open=True)

    def apply(self, units):
        """The reference: ``units`` (n_units, fan_in) NumPy, rescaled in place."""
        norms = np.sqrt((units.astype(np.float64) ** 2).sum(axis=1, keepdims=True))
        scale = np.minimum(1.0, self.max_value / np.maximum(norms, 1e-30))
        units *= scale.astype(units.dtype)

    def get_config(self):
        return {"max_value": self.max_value}

    def __repr__(self):
        return f"MaxNorm(max_value={self.max_value:g})"


#: Keras' spellings: ``regularizers.l2(0.01)``, ``max_norm(3)``.
l1, l2, l1_l2, max_norm = L1, L2, L1L2, MaxNorm

_REGULARIZERS = {"l1": L1, "l2": L2, "l1_l2": L1L2, "l1l2": L1L2}
_CLASSES = {cls.__name__: cls for cls in (L1, L2, L1L2, MaxNorm)}


def get_regularizer(identifier, name="kernel_regularizer"):
    """None, a Regularizer, a name (``"l1"``, ``"l2"``, ``"l1_l2"`` with default strength
    0.01) or a ``{"class_name", "config"}`` dict -> a Regularizer or None."""
    return _resolve(identifier, name, Regularizer, _REGULARIZERS)


def get_constraint(identifier, name="kernel_constraint"):
    """None, a MaxNorm, ``"max_norm"`` or a config dict -> a MaxNorm or None."""
    return _resolve(identifier, name, MaxNorm, {"max_norm": MaxNorm, "maxnorm": MaxNorm})


def _resolve(identifier, name, base, by_name):
    if identifier is None or isinstance(identifier, base):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in by_name:
        return by_name[identifier.lower()]()
    if isinstance(identifier, dict) and identifier.get("class_name") in _CLASSES:
        cls = _CLASSES[identifier["class_name"]]
        if issubclass(cls, base):
            return cls(**identifier.get("config", {}))
    raise ValueError(f"{name} must be None, a {base.__name__}, one of "
                     f"{', '.join(by_name)} or a config dict; got {identifier!r}")


def serialize(item):
    """A regularizer or constraint as ``{"class_name", "config"}`` (None stays None)."""
    if item is None:
        return None
    return {"class_name": type(item).__name__, "config": item.get_config()}
