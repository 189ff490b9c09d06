"""What a training run that blows up raises: :class:`TrainingDiverged`, and the per-epoch check
every ``fit`` of dlcore runs (:class:`DivergenceCheck`).

A learning rate that is too large makes gradient steps overshoot: the parameters grow, the
monitored error jumps, and within a few epochs the arithmetic overflows to inf and NaN. Every
trainer (the RBMs, a DBN's layers and up-down, ``Sequential.fit``) checks after each epoch that
the monitored quantity and the parameters are finite and that the quantity has not grown by more
than :data:`DIVERGENCE_FACTOR` over its best value so far; otherwise it puts back the parameters
of the last good epoch (a copy taken at the end of each good epoch) and raises
:class:`TrainingDiverged`. Nothing non-finite is ever left in the model, so nothing non-finite can
be saved.
"""
import math

import numpy as np

__all__ = ["DIVERGENCE_FACTOR", "DivergenceCheck", "TrainingDiverged"]

#: An epoch whose monitored loss or error exceeds this multiple of the best epoch's has diverged.
#: Large on purpose: ordinary noise (a bad epoch of SGD, a PCD chain mixing) moves these
#: quantities by a few per cent, an overshooting learning rate by orders of magnitude.
DIVERGENCE_FACTOR = 1e3


class TrainingDiverged(FloatingPointError):
    """Training stopped because the monitored quantity became NaN or inf, or grew by more than
    :data:`DIVERGENCE_FACTOR` over its best; the model holds the parameters of the last good
    epoch.

    Attributes
    ----------
    epoch : int, the epoch (counted over the model's life) that diverged
    quantity : str, what diverged (``"reconstruction error"``, ``"loss"``...)
    value : float, its value in that epoch
    """

    def __init__(self, message, epoch=None, quantity=None, value=None):
        super().__init__(message)
        self.epoch, self.quantity, self.value = epoch, quantity, value


class DivergenceCheck:
    """The end-of-epoch test of one monitored quantity (lower is better).

    Parameters
    ----------
    quantity : str, its name in the message ("reconstruction error", "loss")
    learning_rate : the learning rate in use, named in the message
    history : earlier values of the quantity (a resumed run keeps its best)
    factor : float, see :data:`DIVERGENCE_FACTOR`
    """

    def __init__(self, quantity, learning_rate, history=(), factor=DIVERGENCE_FACTOR):
        self.quantity, self.learning_rate, self.factor = quantity, learning_rate, float(factor)
        finite = [float(v) for v in history if math.isfinite(float(v))]
        self.best = min(finite, default=math.inf)

    def check(self, epoch, value, parameters=(), where=""):
        """Raise :class:`TrainingDiverged` when epoch ``epoch`` (1-based, over the model's life)
        ended with a non-finite ``value``, non-finite ``parameters`` (NumPy arrays), or a value
        above ``factor`` times the best; else remember the best. ``where`` prefixes the message
        (``"RBM 2 of the DBN: "``)."""
        value = float(value)
        problem = None
        if not math.isfinite(value):
            problem = f"the {self.quantity} is {value}"
        elif not all(np.isfinite(array).all() for array in parameters):
            problem = f"the parameters hold NaN or inf (the {self.quantity} is {value:.4g})"
        elif 0 < self.best < math.inf and value > self.factor * self.best:
            problem = (f"the {self.quantity} grew to {value:.4g}, over {self.factor:g} times its "
                       f"best ({self.best:.4g})")
        if problem is not None:
            kept = ("its initial parameters" if epoch <= 1
                    else f"its parameters of epoch {epoch - 1}")
            raise TrainingDiverged(
                f"{where}training diverged in epoch {epoch}: {problem}; the model keeps "
                f"{kept}; lower the learning rate (now "
                f"{self.learning_rate:g}: --learning-rate on the command line) and train again",
                epoch=epoch, quantity=self.quantity, value=value)
        self.best = min(self.best, value)
