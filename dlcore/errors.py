"""What a model that is not fitted yet raises (:class:`NotFittedError`), and what a training run
that blows up raises: :class:`TrainingDiverged`, and the per-epoch check
every ``fit`` of dlcore runs (:class:`DivergenceCheck`).

A learning rate that is too large makes gradient steps overshoot: the parameters grow, the
monitored error jumps, and within a few epochs the arithmetic overflows to inf and NaN. Every
trainer (the RBMs, a DBN's layers and up-down, ``Sequential.fit``) checks after each epoch that
the monitored quantity and the parameters are finite and that the quantity has not grown by more
than :data:`DIVERGENCE_FACTOR` over its best value so far (a network's first epoch, with no best
yet: over its first batch's loss before any update, :meth:`DivergenceCheck.starts_at`);
otherwise it puts back the parameters of the last good epoch (a copy taken at the end of each
good epoch) and raises :class:`TrainingDiverged`. Nothing non-finite is ever left in the model,
so nothing non-finite can be saved.

A weight decay that is too large diverges by itself, whatever the gradient: each update takes
eta lambda W off W (eta the learning rate, lambda the decay), which overshoots zero, and grows
W, once eta lambda passes 2 (heavy-ball momentum mu through the same buffer, as an RBM's
update: 2 (1 + mu), the step's stability bound on the decay's quadratic). Where the settings
show that (:func:`decay_diverges`: the decay past that bound at a learning rate where a usual
one, :data:`USUAL_WEIGHT_DECAY`, would not be), the message names the weight decay, not the
learning rate alone.
"""
import functools
import math
import sys

import numpy as np

__all__ = ["DIVERGENCE_FACTOR", "GROWTH_FLOOR", "DivergenceCheck", "NotFittedError",
           "TrainingDiverged", "decay_diverges"]

#: An epoch whose monitored loss or error exceeds this multiple of the best epoch's has diverged.
#: Large on purpose: ordinary noise (a bad epoch of SGD, a PCD chain mixing) moves these
#: quantities by a few per cent, an overshooting learning rate by orders of magnitude.
DIVERGENCE_FACTOR = 1e3
#: Growth is measured from at least this value: a loss near zero (1e-7) that moves to 1e-4 is
#: noise at the floating-point resolution, not an overshooting learning rate.
GROWTH_FLOOR = 1e-3
#: A first epoch is measured from at least this value: one batch is a noisy measure (of one
#: row at ``batch_size=1``), and a network given trained weights without their history (a
#: Keras file, ``set_weights``) may score 1e-4 on its first batch and 0.5 over the epoch,
#: where a blown-up first epoch (4692, 8e10, 4.4e14 measured) lies far beyond 1000 times it.
FIRST_BATCH_FLOOR = 1.0
#: The largest weight decay in common use (Hinton 2010, sec. 10: the weight-cost of RBMs
#: typically 0.01 to 0.00001): a learning rate at which even this one diverges by itself is
#: the setting to blame, not the decay.
USUAL_WEIGHT_DECAY = 0.01


class NotFittedError(ValueError, AttributeError, RuntimeError):
    """A model was asked for something that needs training first (``transform`` before
    ``fit``). Both a ``ValueError`` and an ``AttributeError``, as scikit-learn's own
    ``sklearn.exceptions.NotFittedError`` is, so code written for either catches it; and a
    ``RuntimeError``, which dlcore raised before, so code written for that catches it too.

    Once scikit-learn is imported (dlcore never imports it), the error raised is also an
    instance of scikit-learn's class (a subclass of both, made on first use), as scikit-learn's
    ``check_estimators_unfitted`` asks of a classifier's ``predict``."""

    def __new__(cls, *args, **kwargs):
        if cls is NotFittedError and "sklearn" in sys.modules:
            cls = _also_sklearns()
        return super().__new__(cls, *args, **kwargs)

    def __reduce__(self):
        # rebuilt as NotFittedError, which picks its flavour in the receiving process
        return NotFittedError, self.args


@functools.cache
def _also_sklearns():
    """dlcore's NotFittedError that is scikit-learn's too."""
    from sklearn.exceptions import NotFittedError as SklearnNotFittedError
    return type("NotFittedError", (NotFittedError, SklearnNotFittedError),
                {"__module__": __name__, "__doc__": NotFittedError.__doc__})


def decay_diverges(learning_rate, weight_decay, momentum=0.0, setting="weight_decay",
                   option=None):
    """What makes the weight decay alone diverge, or None: a dict of the ``setting`` (the
    model parameter), its ``value``, the ``product`` eta lambda and the ``bound`` it reaches
    (2 (1 + ``momentum``), the heavy-ball step's stability bound on lambda |W|^2 / 2; 2 for a
    decay outside the momentum, as the optimisers' decoupled one: ``momentum`` 0), and the
    ``option`` that sets it in the message (default: the ``setting``'s argument). None too
    where the learning rate is what is off: a usual decay (:data:`USUAL_WEIGHT_DECAY`) would
    diverge at it as well."""
    try:
        product = float(learning_rate) * float(weight_decay or 0.0)
    except (TypeError, ValueError):   # a schedule's rate: no one number to judge
        return None
    bound = 2.0 * (1.0 + float(momentum or 0.0))
    if not math.isfinite(product) or product < bound \
            or float(learning_rate) * USUAL_WEIGHT_DECAY >= bound:
        return None
    return {"setting": setting, "value": float(weight_decay), "product": product,
            "bound": bound, "momentum": float(momentum or 0.0),
            "option": option or f"the {setting}= argument"}


class TrainingDiverged(FloatingPointError):
    """Training stopped because the monitored quantity became NaN or inf, or grew by more than
    :data:`DIVERGENCE_FACTOR` over its best; the model holds the parameters of the last good
    epoch.

    Attributes
    ----------
    epoch : int, the epoch (counted over the model's life) that diverged
    quantity : str, what diverged (``"reconstruction error"``, ``"loss"``...)
    value : float, its value in that epoch
    problem : str or None, what went wrong ("the loss is nan")
    learning_rate : float or None, the learning rate that was in use
    setting : str or None, the model parameter that sets it (``"learning_rate"``,
        ``"up_down_learning_rate"``): lets a caller name its own option in the advice
    where : str, the part of a larger model that diverged (``"RBM 2 of the DBN: "``) or ""
    decay : dict or None, the weight decay that diverges by itself at this learning rate
        (:func:`decay_diverges`): the message then names it
    """

    def __init__(self, message, epoch=None, quantity=None, value=None, problem=None,
                 learning_rate=None, setting=None, where="", decay=None):
        super().__init__(message)
        self.epoch, self.quantity, self.value = epoch, quantity, value
        self.problem, self.learning_rate, self.setting = problem, learning_rate, setting
        self.where, self.decay = where, decay

    def located(self, where):
        """The same error prefixed with ``where`` (``"RBM 2 of the DBN: "``)."""
        return TrainingDiverged(f"{where}{self}", self.epoch, self.quantity, self.value,
                                self.problem, self.learning_rate, self.setting,
                                where + self.where, self.decay)

    def describe(self, outcome, option=None, decay_option=None):
        """The one-line message with ``outcome`` (what was kept or saved) and the advice:
        lower the learning rate, naming ``option`` (the caller's name for :attr:`setting`;
        None: no option sets it), or, where :attr:`decay` says the weight decay diverges by
        itself, lower that, naming ``decay_option`` (the caller's name for its setting)."""
        how = f": {option}" if option else ""
        start = f"{self.where}training diverged in epoch {self.epoch}: {self.problem}; {outcome}"
        if self.decay is None:
            return (f"{start}; lower the learning rate (now {self.learning_rate:g}{how}) and "
                    "train again")
        decay = self.decay
        bound = (f"2 (1 + momentum {decay['momentum']:g}) = {decay['bound']:g}"
                 if decay["momentum"] else "2")
        return (f"{start}; the weight decay diverges by itself: learning rate x weight decay = "
                f"{self.learning_rate:g} x {decay['value']:g} = {decay['product']:g} is not "
                f"below {bound}, so each update takes the weights past zero and further out; "
                f"lower the weight decay (now {decay['value']:g}"
                f"{f': {decay_option}' if decay_option else ''}) or the learning rate (now "
                f"{self.learning_rate:g}{how}) until their product is well below that, and "
                f"train again")


class DivergenceCheck:
    """The end-of-epoch test of one monitored quantity (lower is better).

    Parameters
    ----------
    quantity : str, its name in the message ("reconstruction error", "loss")
    learning_rate : the learning rate in use, named in the message
    history : earlier values of the quantity (a resumed run keeps its best)
    factor : float, see :data:`DIVERGENCE_FACTOR`
    setting : str, the model parameter that sets the learning rate (carried by the error)
    decay : dict or None, :func:`decay_diverges` of the training's weight decay: a divergence
        then names the weight decay
    option : str or None, what the message tells the user to change; None (the default): the
        Python argument ``setting`` names (``the learning_rate= argument``), since the models
        train from Python. The command line names its own option instead: it rewrites the
        error with :meth:`TrainingDiverged.describe` (``Checkpoints.on_interrupt`` in
        ``cli/_common.py``)
    """

    def __init__(self, quantity, learning_rate, history=(), factor=DIVERGENCE_FACTOR,
                 setting="learning_rate", option=None, decay=None):
        self.quantity, self.learning_rate, self.factor = quantity, learning_rate, float(factor)
        self.setting, self.option, self.decay = setting, option, decay
        finite = [float(v) for v in history if math.isfinite(float(v))]
        self.best = min(finite, default=math.inf)
        #: the first batch's value, before any update: what a first epoch is measured from
        self.first_batch = None

    def starts_at(self, value):
        """Remember ``value``, the quantity on the first batch before its update, as what
        the first epoch's value is measured from (a training with no epoch behind it has no
        best: SGD at lr 1e4 took a network's loss from 2.3 to 4.4e14 in its first epoch, then
        to 2.6e12, and no epoch ever grew past 1000 times its best). Only a positive, finite
        value is taken: a loss of no fixed sign has no scale to grow from."""
        value = float(value)
        if self.best == math.inf and math.isfinite(value) and value > 0:
            self.first_batch = value

    def check(self, epoch, value, parameters=(), where=""):
        """Raise :class:`TrainingDiverged` when epoch ``epoch`` (1-based, over the model's life)
        ended with a non-finite ``value``, non-finite ``parameters`` (NumPy arrays), or a value
        above ``factor`` times the best (or times :data:`GROWTH_FLOOR`, when the best is
        smaller; in the first epoch of a training, above ``factor`` times the first batch's
        value given to :meth:`starts_at`, or :data:`FIRST_BATCH_FLOOR`); else remember the
        best. ``where`` prefixes the message
        (``"RBM 2 of the DBN: "``)."""
        value = float(value)
        problem = None
        if not math.isfinite(value):
            problem = f"the {self.quantity} is {value}"
        elif not all(np.isfinite(array).all() for array in parameters):
            problem = f"the parameters hold NaN or inf (the {self.quantity} is {value:.4g})"
        elif self.best < math.inf and value > self.factor * max(self.best, GROWTH_FLOOR):
            problem = (f"the {self.quantity} grew to {value:.4g}, over {self.factor:g} times its "
                       f"best ({self.best:.4g})")
        elif self.best == math.inf and self.first_batch is not None \
                and value > self.factor * max(self.first_batch, FIRST_BATCH_FLOOR):
            problem = (f"the {self.quantity} grew to {value:.4g}, over {self.factor:g} times "
                       f"the first batch's ({self.first_batch:.4g}, before any update)")
        if problem is not None:
            self.fail(epoch, value, problem, where)
        self.best = min(self.best, value)

    def fail(self, epoch, value, problem, where=""):
        """Raise :class:`TrainingDiverged` for epoch ``epoch`` ending at ``value`` with
        ``problem`` (what went wrong, "the loss is nan"): what :meth:`check` raises, for a
        failure a trainer finds by its own test (an autoencoder whose saturated code
        reconstructs no better than the mean image, :mod:`dlcore.autoencoder.estimator`)."""
        kept = ("its initial parameters" if epoch <= 1
                else f"its parameters of epoch {epoch - 1}")
        error = TrainingDiverged("", epoch, self.quantity, float(value), problem,
                                 self.learning_rate, self.setting, where, self.decay)
        option = self.option or f"the {self.setting}= argument"
        decay_option = None if self.decay is None else self.decay["option"]
        error.args = (error.describe(f"the model keeps {kept}", option, decay_option),)
        raise error
