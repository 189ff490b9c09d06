"""Weight decay (L2, L1) and max-norm constraints: lecture "Convolutional neural networks" (2016),
"Weight decay (Tikhonov, 1943)".

A penalty Omega(theta) is added to the training cost, C = loss + Omega(theta):

    L2:  Omega = lambda / 2 * ||theta||^2     gradient  lambda * theta
    L1:  Omega = lambda * ||theta||_1         gradient  lambda * sign(theta)   (sparsity)

(the deck writes lambda/2 ||theta||_1 for L1 but gives the gradient lambda sign(theta); dlcore
keeps the gradient and writes the penalty to match it). Lecture "Deep learning I", "Other
regularization techniques", writes L2 without the half, J + lambda w^T w: that lecture's lambda
is ``l2(lambda)`` (Keras's meaning, below), ``L2(2 lambda)``. Keras's ``L2(lambda)`` penalises
lambda ||theta||^2, twice dlcore's ``L2`` at the same lambda; Keras's spellings here
(``l1(...)``, ``l2(...)``, ``l1_l2(...)``, ``max_norm(...)``, the strings ``"l1"``, ``"l2"``)
mean what they mean in Keras: ``l2(0.01)`` is ``L2(0.02)``, so that a model ported from a Keras
tutorial has Keras's cost.

Max-norm (Srivastava et al. 2014) is a constraint, not a penalty: after every update each unit's
vector of incoming weights w_i is scaled back onto the ball ||w_i|| <= c (the deck writes the
bound on ||w_i||^2; dlcore bounds the norm itself, as the dropout paper and Keras do). For a
Dense kernel (in, out) a unit is a column; for a Conv2D kernel (F, C, k_h, k_w) a filter.

Layers take them as ``kernel_regularizer=L2(1e-4)``, ``bias_regularizer=...`` and
``kernel_constraint=MaxNorm(3.0)``; the optimiser adds the gradients inside its update kernel.
Keras's own objects (``keras.regularizers.L2(1e-4)``, ``L1``, ``L1L2``,
``keras.constraints.MaxNorm(3)``) are taken too, with Keras's meaning.
"""
import numpy as np

from dlcore.validation import check_float, is_integer


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
    """L2 weight decay, Omega = l2 / 2 ||theta||^2, gradient l2 theta (a Gaussian prior on the
    weights; lecture "Convolutional neural networks" (2016), "Weight decay").

    Not Keras's class of the same name: Keras's ``L2(l2)``, like lecture "Deep learning I"
    ("Other regularization techniques": J + lambda w^T w), penalises l2 ||theta||^2, twice
    this one. Code ported from Keras or from that lecture writes ``l2(lambda)`` (Keras's
    meaning, this class at 2 lambda) or ``L2(2 * lambda)``."""

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


#: The axes of Keras's kernel of a layer over which Keras's MaxNorm takes the norm of each unit's
#: incoming weights: dlcore's max-norm (Keras's default axis 0 is a Conv2D's kernel rows).
KERAS_UNIT_AXES = {"Dense": (0,), "Conv2D": (0, 1, 2)}


class MaxNorm:
    """Keep every unit's incoming weight vector within ||w_i|| <= max_value (applied by the
    optimiser after each update): w_i <- w_i * min(1, c / ||w_i||). The bound is on the norm,
    as in Keras and Srivastava et al. 2014; lecture "Convolutional neural networks" (2016)
    writes it on the squared norm, ||w_i||^2 <= c, which is ``MaxNorm(sqrt(c))``.

    ``max_value`` c defaults to Keras's 2 (Srivastava et al. 2014 found 3 to 4 good with
    dropout). ``axis`` (Keras's argument) may be left out: dlcore's is always each unit's
    incoming weights, which is Keras's ``axis=0`` for a Dense kernel and ``axis=[0, 1, 2]``
    for a Conv2D's; a layer refuses another axis in one line."""

    def __init__(self, max_value=2.0, axis=None):
        self.max_value = check_float(max_value, "max_value", low=0.0, low_open=True)
        if axis is not None and not (is_integer(axis) or isinstance(axis, (list, tuple))):
            raise ValueError(f"axis must be an axis or a list of them, got {axis!r:.40}")
        self.axis = None if axis is None else tuple(axis) if isinstance(axis, (list, tuple)) \
            else (int(axis),)

    def check_axis(self, layer_kind):
        """ValueError in one line unless ``axis`` (when given) is the per-unit axis of Keras's
        kernel of a ``layer_kind`` layer."""
        expected = KERAS_UNIT_AXES.get(layer_kind)
        if self.axis is not None and self.axis != expected:
            per_unit = "; ".join(f"axis={list(axes) if len(axes) > 1 else axes[0]} for {kind}"
                                 for kind, axes in KERAS_UNIT_AXES.items())
            raise ValueError(f"MaxNorm(axis={list(self.axis)}) on a {layer_kind}: dlcore bounds "
                             f"each unit's incoming weights ({per_unit}, in Keras's kernel "
                             f"layout); leave axis out")

    def apply(self, units):
        """The reference: ``units`` (n_units, fan_in) NumPy, rescaled in place."""
        norms = np.sqrt((units.astype(np.float64) ** 2).sum(axis=1, keepdims=True))
        scale = np.minimum(1.0, self.max_value / np.maximum(norms, 1e-30))
        units *= scale.astype(units.dtype)

    def get_config(self):
        return {"max_value": self.max_value}

    def __repr__(self):
        return f"MaxNorm(max_value={self.max_value:g})"


# -- Keras's spellings, with Keras's meaning ------------------------------------------------
def l1(l1=0.01):
    """Keras's ``regularizers.l1(lambda)``: Omega = lambda ||theta||_1, dlcore's ``L1(lambda)``."""
    return L1(l1)


def l2(l2=0.01):
    """Keras's ``regularizers.l2(lambda)``: Omega = lambda ||theta||^2, dlcore's
    ``L2(2 lambda)`` (dlcore writes the lecture's lambda / 2 ||theta||^2)."""
    return L2(2 * check_float(l2, "l2", low=0.0))


def l1_l2(l1=0.0, l2=0.0):
    """Keras's ``regularizers.l1_l2(l1, l2)``: Omega = l1 ||theta||_1 + l2 ||theta||^2,
    dlcore's ``L1L2(l1, 2 l2)``."""
    return L1L2(l1, 2 * check_float(l2, "l2", low=0.0))


#: Keras's ``constraints.max_norm(max_value=2, axis=0)``.
max_norm = MaxNorm

#: the strings Keras takes, with Keras's strengths (its "l1l2" is no penalty: refused below)
_REGULARIZERS = {"l1": l1, "l2": l2}
_NO_STRENGTH = ("l1_l2", "l1l2")
_CLASSES = {cls.__name__: cls for cls in (L1, L2, L1L2, MaxNorm)}


def get_regularizer(identifier, name="kernel_regularizer"):
    """None, a Regularizer, Keras's names ``"l1"`` (``l1(0.01)``) and ``"l2"`` (``l2(0.01)``,
    Keras's 0.01 ||theta||^2) or a ``{"class_name", "config"}`` dict -> a Regularizer or None.
    ``"l1_l2"`` is refused: Keras's has strength 0, no penalty at all."""
    if isinstance(identifier, str) and identifier.lower() in _NO_STRENGTH:
        raise ValueError(f"{name}={identifier!r} has no strength (Keras's is l1=0, l2=0: no "
                         f"penalty); give dlcore.regularizers.L1L2(l1=..., l2=...)")
    return _resolve(identifier, name, Regularizer, _REGULARIZERS)


def get_constraint(identifier, name="kernel_constraint"):
    """None, a MaxNorm, ``"max_norm"`` or a config dict -> a MaxNorm or None."""
    return _resolve(identifier, name, MaxNorm, {"max_norm": MaxNorm, "maxnorm": MaxNorm})


def _resolve(identifier, name, base, by_name):
    if identifier is None or isinstance(identifier, base):
        return identifier
    ported = _from_keras(identifier)
    if ported is not None and isinstance(ported, base):
        return ported
    keras_class = _keras_class_name(identifier)
    if keras_class is not None:
        taken = "L1, L2 or L1L2" if base is Regularizer else "MaxNorm"
        raise ValueError(f"{name} takes Keras's {taken} (or dlcore's {base.__name__}); got "
                         f"Keras's {keras_class:.40}")
    if isinstance(identifier, str) and identifier.lower() in by_name:
        return by_name[identifier.lower()]()
    if isinstance(identifier, dict) and identifier.get("class_name") in _CLASSES:
        cls = _CLASSES[identifier["class_name"]]
        if issubclass(cls, base):
            return cls(**identifier.get("config", {}))
    raise ValueError(f"{name} must be None, a {base.__name__} (or Keras's), one of "
                     f"{', '.join(by_name)} or a config dict; got {identifier!r}")


#: Keras's regularizer and constraint classes, as dlcore's with Keras's meaning
#: (Keras's defaults where a config leaves a value out: 0.01, max_value 2, axis 0)
_KERAS_CLASSES = {"L1": lambda c: l1(c.get("l1", 0.01)), "L2": lambda c: l2(c.get("l2", 0.01)),
                  "L1L2": lambda c: l1_l2(c.get("l1", 0.0), c.get("l2", 0.0)),
                  "MaxNorm": lambda c: MaxNorm(c.get("max_value", 2.0), c.get("axis", 0))}


def _keras_class_name(identifier):
    """The class name of Keras's regularizer or constraint ``identifier``: an object of Keras's
    or Keras's serialisation of one (a dict with ``"module": "keras.regularizers"`` or
    ``"keras.constraints"``, as a Keras layer's ``get_config()`` holds it); None for anything
    else (dlcore's own dicts have no ``module``)."""
    if isinstance(identifier, dict):
        module, name = identifier.get("module"), identifier.get("class_name")
        keras_module = module in ("keras.regularizers", "keras.constraints")
        return name if keras_module and isinstance(name, str) else None
    cls = type(identifier)
    return cls.__name__ if cls.__module__.split(".")[0] == "keras" else None


def _from_keras(identifier):
    """Keras's own regularizer or constraint (``keras.regularizers.L2(1e-4)``, as a Keras
    model is written, or its serialised dict) as dlcore's with Keras's meaning
    (``l2(1e-4)``: Keras's ``L2(lambda)`` penalises lambda ||theta||^2, dlcore's L2 half
    that); None for anything else."""
    name = _keras_class_name(identifier)
    if name not in _KERAS_CLASSES:
        return None
    config = identifier.get("config") if isinstance(identifier, dict) else \
        identifier.get_config()
    if not isinstance(config, dict):
        raise ValueError(f"Keras's {name} needs a config dict, got {config!r:.40}")
    return _KERAS_CLASSES[name](config)


def serialize(item):
    """A regularizer or constraint as ``{"class_name", "config"}`` (None stays None)."""
    if item is None:
        return None
    return {"class_name": type(item).__name__, "config": item.get_config()}
