"""Loss functions, each fused with the output activation it pairs with.

Lecture "Supervised learning" (CVPR 2014 tutorial), topic "softmax + negative log-likelihood":
with softmax outputs p(c_k | x) = exp(o_k) / sum_j exp(o_j)
and the negative log-likelihood L = -sum_j y_j log p(c_j | x), the gradient with respect to the
*pre-softmax* outputs o is

    dL/do = p(c | x) - y                      ("HOMEWORK: prove it!")

so a network that ends in a softmax hands its logits o to :class:`CrossEntropy`, which computes
log p stably (log-sum-exp: log sum_j exp(o_j) = m + log sum_j exp(o_j - m), m = max_j o_j) and
returns p - y. The same holds for a sigmoid output with :class:`BinaryCrossEntropy`
(dL/dz = sigm(z) - y). A softmax of 2 or more units before binary cross-entropy is still a
probability per output, and that loss then works on the outputs themselves (probabilities
clipped to [1e-7, 1 - 1e-7]); a sigmoid before categorical cross-entropy is not a
distribution over classes and is refused (see :func:`check_output_activation`).

``from_logits=True`` (Keras' spelling: ``CategoricalCrossentropy(from_logits=True)``) is for a
network whose last layer is linear: the loss then applies the softmax (or sigmoid) itself, with
the same fused computation and the same gradient p - y. Any other output is not a probability
and the cross-entropy of it is meaningless (a linear output gives losses in the tens and
exploding steps), so :func:`check_output_activation`, called by ``Sequential.compile``, refuses
it with the activation to add.

Every loss is averaged over the samples of the batch (and, for binary cross-entropy and the
mean squared error, over the outputs too, as Keras does); the gradients returned are those of
that mean. Targets are (n, k) arrays: one-hot rows for class labels (a network converts integer
labels), any rows summing to 1 for soft labels (the gradient is then p * sum(y) - y, which is
p - y for one-hot rows).

``label_smoothing=s`` (Keras's, on both cross-entropies) trains towards targets pulled
towards the uniform ones before the loss sees them: y <- y (1 - s) + s / K for the categorical
cross-entropy over K classes, y <- y (1 - s) + s / 2 for the binary one (each output a choice
of two). The loss and its gradient are then those of the smoothed targets, in training and in
``evaluate`` alike (as Keras's); the accuracy is unchanged, as the smoothing keeps each row's
argmax and each output's side of 0.5.

Each loss has a NumPy reference (:meth:`Loss.reference`) and a Numba kernel body run by the
``cpu`` and ``cuda`` backends (:meth:`Loss.loss_and_gradient`); both also report per sample
whether the prediction is right (argmax against argmax, or a 0.5 threshold for a single output).
"""
import math

import numpy as np

from dlcore.backend import reference
from dlcore.backend.kernel_math import max_and_exp_sum, sigmoid
from dlcore.backend.registry import body, shared
from dlcore.validation import check_float

CLIP = 1e-7
#: Keras's reductions of a loss object's call (``loss_fn(y_true, y_pred)``); None: "none"
REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None)
_ONE = np.float32(1.0)
_ZERO = np.float32(0.0)
#: 1 / CLIP, exact in float32: 1 over it is CLIP correctly rounded in either precision
_CLIP_INVERSE = np.float32(1e7)


@shared
def _clip_bound(scale):
    """CLIP in the type of ``scale`` (a positive finite number of the outputs' type): the
    float32 constant rounded a float64 network's clipped probabilities (a loss ~1e-8 off)."""
    return (scale * _ZERO + _ONE) / _CLIP_INVERSE


@body
def smooth_targets_span(first, last, targets, out, keep, add):
    """Elements first..last-1 of flat arrays: out <- keep targets + add (label smoothing:
    keep = 1 - s, add = s / K)."""
    for i in range(first, last):
        out[i] = keep * targets[i] + add


# -- per-row helpers shared by the bodies (compiled for the CPU and CUDA) -------------------
# Called, not inlined: Numba's IR inliner mis-scopes the loop variable of an inlined argmax.
@body
def _row_argmax(values, row):
    best = 0
    for k in range(1, values.shape[1]):
        if values[row, k] > values[row, best]:
            best = k
    return best


@body
def _row_correct(outputs, targets, row, threshold, channels):
    """The fraction of the row's positions predicted right, the row read as ``channels``
    blocks of positions (a (C, H, W) map: C blocks of H W; flat rows: one position): with one
    channel, each output against the threshold (0 for logits, 0.5 for probabilities), else the
    argmax over the channels at each position (Keras's binary and categorical accuracy; for
    flat rows 1.0 or 0.0)."""
    width = outputs.shape[1]
    right = 0
    if channels == 1:
        for k in range(width):
            predicted = outputs[row, k] > threshold
            if predicted == (targets[row, k] > np.float32(0.5)):
                right += 1
        return np.float32(right) / np.float32(width)
    if width == channels:
        return np.float32(_row_argmax(outputs, row) == _row_argmax(targets, row))
    positions = width // channels
    for position in range(positions):
        best_output = position
        best_target = position
        for k in range(position + positions, width, positions):
            if outputs[row, k] > outputs[row, best_output]:
                best_output = k
            if targets[row, k] > targets[row, best_target]:
                best_target = k
        if best_output == best_target:
            right += 1
    return np.float32(right) / np.float32(positions)


@body
def softmax_cross_entropy_rows(first, last, logits, targets, grad, row_loss, row_correct,
                               scale, channels):
    """Rows first..last-1, each read as ``channels`` blocks of positions (module docstring):
    at each position, over its channels, loss = sum(y) log sum exp(o) - sum y o (stable) and
    grad = scale * (softmax(o) sum(y) - y), written over ``grad``; a row's loss is the mean
    over its positions (one position for flat rows)."""
    positions = logits.shape[1] // channels
    for row in range(first, last):
        loss = _ZERO
        for position in range(positions):
            top, total = max_and_exp_sum(logits[row], position, positions, channels,
                                         logits[row, :0])
            log_total = math.log(total) + top   # log sum_c exp(o_c), stably, in o's type
            target_sum = _ZERO
            for k in range(position, logits.shape[1], positions):
                target_sum += targets[row, k]
                loss += targets[row, k] * (log_total - logits[row, k])
            for k in range(position, logits.shape[1], positions):
                p = math.exp(logits[row, k] - log_total)
                grad[row, k] = scale * (p * target_sum - targets[row, k])
        row_loss[row] = loss / np.float32(positions)
        row_correct[row] = _row_correct(logits, targets, row, _ZERO, channels)


@body
def probability_cross_entropy_rows(first, last, probabilities, targets, grad, row_loss,
                                   row_correct, scale, channels):
    """Cross-entropy of outputs that are already probabilities: -sum y log p over a
    position's channels, the mean over positions; grad -y / p."""
    low = _clip_bound(scale)
    positions = probabilities.shape[1] // channels
    for row in range(first, last):
        loss = _ZERO
        for k in range(probabilities.shape[1]):
            p = min(max(probabilities[row, k], low), _ONE - low)
            loss -= targets[row, k] * math.log(p)
            grad[row, k] = -scale * targets[row, k] / p
        row_loss[row] = loss / np.float32(positions)
        row_correct[row] = _row_correct(probabilities, targets, row, np.float32(0.5),
                                        channels)


@body
def sigmoid_binary_cross_entropy_rows(first, last, logits, targets, grad, row_loss,
                                      row_correct, scale, channels):
    """Binary cross-entropy on logits z: mean_k max(z, 0) - z y + log(1 + exp(-|z|)), and
    grad = scale * (sigm(z) - y)."""
    width = np.float32(logits.shape[1])
    for row in range(first, last):
        loss = _ZERO
        for k in range(logits.shape[1]):
            z = logits[row, k]
            loss += max(z, _ZERO) - z * targets[row, k] + math.log1p(math.exp(-abs(z)))
            grad[row, k] = scale * (sigmoid(z) - targets[row, k])
        row_loss[row] = loss / width
        row_correct[row] = _row_correct(logits, targets, row, _ZERO, channels)


@body
def probability_binary_cross_entropy_rows(first, last, probabilities, targets, grad, row_loss,
                                          row_correct, scale, channels):
    """Binary cross-entropy of probabilities: -mean_k y log p + (1 - y) log(1 - p)."""
    width = np.float32(probabilities.shape[1])
    low = _clip_bound(scale)
    for row in range(first, last):
        loss = _ZERO
        for k in range(probabilities.shape[1]):
            p = min(max(probabilities[row, k], low), _ONE - low)
            y = targets[row, k]
            loss -= y * math.log(p) + (_ONE - y) * math.log(_ONE - p)
            grad[row, k] = scale * (p - y) / (p * (_ONE - p))
        row_loss[row] = loss / width
        row_correct[row] = _row_correct(probabilities, targets, row, np.float32(0.5), channels)


@body
def squared_error_rows(first, last, outputs, targets, grad, row_loss, row_correct, scale,
                       channels):
    """Mean squared error: mean_k (out - y)^2, grad = scale * 2 (out - y)."""
    width = np.float32(outputs.shape[1])
    for row in range(first, last):
        loss = _ZERO
        for k in range(outputs.shape[1]):
            difference = outputs[row, k] - targets[row, k]
            loss += difference * difference
            grad[row, k] = scale * np.float32(2.0) * difference
        row_loss[row] = loss / width
        row_correct[row] = _row_correct(outputs, targets, row, np.float32(0.5), channels)


@shared
def _softened(target, inverse_temperature):
    """q^(1/T) of one teacher probability (0 for q <= 0)."""
    if target <= _ZERO:
        return _ZERO
    return math.exp(math.log(target) * inverse_temperature)


@shared
def _tempered_logit(output, logits, low, inverse_temperature):
    """z / T of one output: the logit z itself, or z = log p of a probability."""
    if logits:
        return output * inverse_temperature
    return math.log(max(output, low)) * inverse_temperature


@body
def distillation_rows(first, last, outputs, targets, grad, row_loss, row_correct, scale,
                      temperature, logits):
    """Distillation at temperature T: with p = softmax(z / T) and the soft targets
    q = t^(1/T) / sum t^(1/T), loss = T^2 sum q (log q - log p) and grad = scale T (p - q)
    (divided by the probability when the outputs are probabilities, z = log p)."""
    inverse = _ONE / temperature
    low = _clip_bound(scale)
    width = outputs.shape[1]
    for row in range(first, last):
        top = _tempered_logit(outputs[row, 0], logits, low, inverse)
        for k in range(1, width):
            top = max(top, _tempered_logit(outputs[row, k], logits, low, inverse))
        # sums in the outputs' precision (top * 0: a zero of that type; an infinite top
        # makes the sum NaN anyway)
        total = top * _ZERO
        target_total = top * _ZERO
        for k in range(width):
            total += math.exp(_tempered_logit(outputs[row, k], logits, low, inverse) - top)
            target_total += _softened(targets[row, k], inverse)
        log_total = math.log(total) + top
        has_targets = target_total > _ZERO
        norm = target_total if target_total > _ZERO else _ONE
        loss = _ZERO
        for k in range(width):
            q = _softened(targets[row, k], inverse) / norm
            log_p = _tempered_logit(outputs[row, k], logits, low, inverse) - log_total
            if q > _ZERO:
                loss += q * (math.log(q) - log_p)
            # p chosen, not multiplied by a float32 1 or 0: under the CUDA simulator exp is a
            # Python float, which NumPy 2 rounds to float32 beside one (a GPU types it float64)
            p = math.exp(log_p) if has_targets else _ZERO
            g = scale * temperature * (p - q)
            if not logits:
                g = g / max(outputs[row, k], low)
            grad[row, k] = g
        row_loss[row] = temperature * temperature * loss
        row_correct[row] = _row_correct(outputs, targets, row, np.float32(0.5),
                                        outputs.shape[1])


class Loss:
    """A loss (see the module docstring). ``fuses_with`` names the output activation whose
    derivative it folds in (None: none); ``from_logits`` says that the network's outputs are
    logits whatever its last activation (only the cross-entropies take it)."""

    name = None
    fuses_with = None
    averages_outputs = False
    from_logits = False
    #: s of the targets' smoothing (the cross-entropies' ``label_smoothing``; 0: none)
    label_smoothing = 0.0
    #: how a call reduces the samples' losses (Keras's ``reduction``); training takes the mean
    reduction = "sum_over_batch_size"

    def __init_subclass__(cls, **options):
        super().__init_subclass__(**options)
        if not cls.__module__.startswith("dlcore."):
            # a Keras-style subclass (its call(y_true, y_pred)) failed only when made, with
            # object.__init__'s TypeError
            raise TypeError(f"{cls.__name__}: {OWN_LOSSES}")

    def reference(self, outputs, targets, fused, channels=None):
        """NumPy: ``(per-sample losses (n,), dL/doutputs (n, k) of the batch mean)``.
        ``fused``: the outputs are the pre-activations of the activation ``fuses_with``;
        ``channels``: the rows hold (channels, positions) maps (None: flat rows)."""
        raise NotImplementedError

    def _body(self, fused):
        raise NotImplementedError

    def loss_and_gradient(self, backend, outputs, targets, grad, row_loss, row_correct, fused,
                          channels=None):
        """Per-sample losses and correctness, and the gradient of the batch mean, into the
        given arrays (on ``backend``). ``fused``: the network handed over the pre-activations
        of its final ``fuses_with`` activation (with ``from_logits`` they are logits anyway);
        ``channels``: the rows are (C, H, W) maps of C channels (:func:`output_channels`),
        None for flat rows."""
        logits = fused or self.from_logits
        n, width = outputs.shape
        channels = width if channels is None else int(channels)
        positions = width // channels
        scale = 1.0 / (n * width) if self.averages_outputs else 1.0 / (n * positions)
        targets = self._smoothed(backend, targets, channels)
        if not backend.launches_kernels:
            losses, gradient = self.reference(outputs, targets, logits, channels)
            row_loss[...], grad[...] = losses, gradient
            row_correct[...] = correct_predictions(outputs, targets,
                                                   0.0 if logits else 0.5, channels)
            return
        backend.launch_1d(self._body(logits), n, outputs, targets, grad, row_loss,
                          row_correct, outputs.dtype.type(scale), np.int64(channels),
                          work=n * width)

    def _smoothed(self, backend, targets, channels):
        """``targets``: no label smoothing but the cross-entropies'."""
        return targets

    def __call__(self, y_true, y_pred, sample_weight=None):
        """The loss of a batch, as a Keras loss object gives it (``loss_fn(y_true, y_pred)``):
        each sample's loss, summed over the n samples and divided by n (Keras's reduction
        ``"sum_over_batch_size"``; with ``sample_weight`` (n,), each sample's loss is weighted
        first, and the sum is still divided by n). The object's ``reduction`` as Keras's:
        ``"sum"``, ``"mean_with_sample_weight"`` (divided by the weights' sum), or ``"none"``
        (None): each sample's weighted loss, an (n,) array.

        Parameters
        ----------
        y_true : (n, k) targets (one-hot or soft rows), or for a categorical cross-entropy
            (n,) integer class labels
        y_pred : (n, k) outputs: probabilities (a categorical cross-entropy divides each row
            by its sum first, as Keras's), or logits with ``from_logits=True``
        sample_weight : (n,) weights, or one number scaling the loss (Keras's), optional

        Returns
        -------
        float, or the (n,) losses for the reduction ``"none"``
        """
        sample_losses = _per_sample(self, y_true, y_pred, self.from_logits,
                                    reads_floatx=True)
        losses = np.atleast_1d(sample_losses)
        weights = np.ones(1) if sample_weight is None else \
            np.asarray(sample_weight, dtype=np.float64)
        if weights.shape not in ((), (1,), (losses.size,), (losses.size, 1)):
            raise ValueError(f"sample_weight has shape {weights.shape}, but y_pred has "
                             f"{losses.size} samples: give one weight per sample, "
                             f"shape ({losses.size},), or one number for all")
        weighted = np.broadcast_to(weights.reshape(-1), losses.shape) * losses
        if self.reduction in ("none", None):
            return weighted.reshape(sample_losses.shape)
        if self.reduction == "sum":
            return float(weighted.sum())
        if self.reduction == "mean_with_sample_weight":
            return float(weighted.sum() / np.broadcast_to(weights.reshape(-1),
                                                          losses.shape).sum())
        return float(weighted.sum() / losses.size)

    def get_config(self):
        """The name, or ``{"name": ..., "from_logits": true}`` (what :func:`get_loss` takes)."""
        return {"name": self.name, "from_logits": True} if self.from_logits else self.name

    def __repr__(self):
        return f"<loss {self.name}{', from_logits' if self.from_logits else ''}>"


class _CrossEntropyLoss(Loss):
    """A cross-entropy: it takes probabilities, or logits with ``from_logits=True``; targets
    smoothed by ``label_smoothing`` s in [0, 1) (module docstring)."""

    keras_name = None

    def __init__(self, from_logits=False, label_smoothing=0.0, reduction="sum_over_batch_size"):
        if not isinstance(from_logits, (bool, np.bool_)):
            raise TypeError(f"from_logits must be True or False, got {from_logits!r}")
        self.from_logits = bool(from_logits)
        self.label_smoothing = check_float(label_smoothing, "label_smoothing", low=0.0,
                                           high=1.0, high_open=True)
        self.reduction = check_reduction(reduction)

    def smoothing_classes(self, channels):
        """K of the smoothing y (1 - s) + s / K: the number of classes."""
        return channels

    def smooth(self, targets, channels=None):
        """NumPy: the targets (n, k) smoothed, y (1 - s) + s / K (module docstring); the
        rows are (C, H, W) maps of ``channels`` = C classes (None: flat rows)."""
        classes = self.smoothing_classes(targets.shape[1] if channels is None else channels)
        return targets * (1.0 - self.label_smoothing) + self.label_smoothing / classes

    def _smoothed(self, backend, targets, channels):
        if self.label_smoothing == 0:
            return targets
        if not backend.launches_kernels:
            return self.smooth(targets, channels)
        out = backend.empty(targets.shape, targets.dtype)
        backend.launch_1d(smooth_targets_span, targets.size, targets.reshape(-1),
                          out.reshape(-1), targets.dtype.type(1.0 - self.label_smoothing),
                          targets.dtype.type(self.label_smoothing
                                             / self.smoothing_classes(channels)))
        return out

    def _config_with_options(self, name):
        """``name``, or ``{"name": name, ...}`` with the options set (from_logits,
        label_smoothing)."""
        options = {"from_logits": True} if self.from_logits else {}
        if self.label_smoothing:
            options["label_smoothing"] = self.label_smoothing
        return {"name": name, **options} if options else name

    def get_config(self):
        """The name, or ``{"name": ..., "from_logits": true, "label_smoothing": s}`` with the
        options set."""
        return self._config_with_options(self.name)

    def __repr__(self):
        smoothing = f", label_smoothing={self.label_smoothing:g}" if self.label_smoothing else ""
        return f"<loss {self.name}{', from_logits' if self.from_logits else ''}{smoothing}>"


class CrossEntropy(_CrossEntropyLoss):
    """Categorical cross-entropy L = -sum_k y_k log p_k, fused with a final softmax.

    Parameters
    ----------
    from_logits : bool, the network's outputs are logits o (a linear last layer) and
        p = softmax(o) is computed here, with the fused gradient p - y
    label_smoothing : float in [0, 1), s: the targets become y (1 - s) + s / K, K classes
        (Keras's ``CategoricalCrossentropy(label_smoothing=s)``)
    reduction : Keras's reduction of a call of the object (see :meth:`Loss.__call__`)
    """

    name = "cross_entropy"
    keras_name = "CategoricalCrossentropy"
    fuses_with = "softmax"
    #: the form of targets Keras's loss of this name takes ("rows": one-hot, "labels":
    #: integers), which a Keras export keeps; None: dlcore's, which takes both
    target_form = None
    config_name = "cross_entropy"

    def get_config(self):
        """The name (Keras's, when the model was compiled with it), or ``{"name": ...,
        "from_logits": true, "label_smoothing": s}`` with the options set."""
        return self._config_with_options(self.config_name)

    def reference(self, outputs, targets, fused, channels=None):
        """The softmax over each position's channels: L = mean over positions of
        -sum_c y_c log p_c (one position for flat rows)."""
        n, width = outputs.shape
        channels = width if channels is None else channels
        positions = width // channels
        # (n, C, P): the channels of each position along axis 1
        o, t = outputs.reshape(n, channels, positions), targets.reshape(n, channels, positions)
        if fused:
            log_total = reference.log_sum_exp(o)
            losses = (t * (log_total - o)).sum(axis=(1, 2)) / positions
            p = np.exp(o - log_total)
            grad = (p * t.sum(axis=1, keepdims=True) - t) / (n * positions)
            return losses, grad.reshape(n, width)
        p = np.clip(outputs, CLIP, 1 - CLIP)
        return (-(targets * np.log(p)).sum(axis=1) / positions,
                -targets / p / (n * positions))

    def _body(self, fused):
        return softmax_cross_entropy_rows if fused else probability_cross_entropy_rows


class BinaryCrossEntropy(_CrossEntropyLoss):
    """L = -mean_k [y_k log p_k + (1 - y_k) log(1 - p_k)], fused with a final sigmoid.

    Parameters
    ----------
    from_logits : bool, the network's outputs are logits z (a linear last layer) and
        p = sigm(z) is computed here, with the fused gradient p - y
    label_smoothing : float in [0, 1), s: the targets become y (1 - s) + s / 2 (Keras's
        ``BinaryCrossentropy(label_smoothing=s)``)
    reduction : Keras's reduction of a call of the object (see :meth:`Loss.__call__`)
    """

    name = "binary_cross_entropy"
    keras_name = "BinaryCrossentropy"
    fuses_with = "sigmoid"
    averages_outputs = True

    def smoothing_classes(self, channels):
        """2: each output is a choice of two (Keras's y (1 - s) + s / 2)."""
        return 2

    def reference(self, outputs, targets, fused, channels=None):
        n, width = outputs.shape
        if fused:
            z = outputs
            losses = (np.maximum(z, 0) - z * targets + np.log1p(np.exp(-np.abs(z))))
            p = reference.sigmoid(z)
            return losses.mean(axis=1), (p - targets) / (n * width)
        p = np.clip(outputs, CLIP, 1 - CLIP)
        losses = -(targets * np.log(p) + (1 - targets) * np.log(1 - p))
        return losses.mean(axis=1), (p - targets) / (p * (1 - p)) / (n * width)

    def _body(self, fused):
        return sigmoid_binary_cross_entropy_rows if fused else \
            probability_binary_cross_entropy_rows


class MeanSquaredError(Loss):
    """L = mean_k (out_k - y_k)^2.

    Parameters
    ----------
    reduction : Keras's reduction of a call of the object (see :meth:`Loss.__call__`)
    """

    name = "mse"
    averages_outputs = True

    def __init__(self, reduction="sum_over_batch_size"):
        self.reduction = check_reduction(reduction)

    def reference(self, outputs, targets, fused, channels=None):
        n, width = outputs.shape
        difference = outputs - targets
        return (difference ** 2).mean(axis=1), 2 * difference / (n * width)

    def _body(self, fused):
        return squared_error_rows


class Distillation(CrossEntropy):
    """Knowledge distillation (Hinton, Vinyals & Dean 2015; lecture "Convolutional neural
    networks" (2016), "Ensemble methods": "train a single final model to mimick the performance
    of the ensemble"): how far the student's class probabilities are from the teacher's, both
    softened by a temperature T,

        p_k = softmax(z / T)_k,   q_k = t_k^(1/T) / sum_j t_j^(1/T)
        L   = T^2 sum_k q_k (log q_k - log p_k),      dL/dz_k = T (p_k - q_k)

    (the paper's cross-entropy -T^2 sum q log p less the teacher's own entropy, which does not
    depend on the student: the same gradient, and L = 0 when the student matches the teacher;
    for one-hot targets it is the cross-entropy itself)
    with z the student's logits and t the teacher's ordinary (T = 1) probabilities, what
    ``teacher.predict(x)`` returns: raising them to 1/T and normalising is softening them,
    softmax(v / T) = softmax(v)^(1/T) / sum (exactly, for a teacher with logits v), so no
    teacher logits are needed. T > 1 lifts the small probabilities (which 2 is like a 3, which
    like a 7) that carry the teacher's knowledge; the T^2 keeps the gradient's size, which the
    softening divides by T^2, about the same whatever T (Hinton et al., section 2).

    Train the student with the teacher's probabilities as the targets::

        student.compile(loss=dlcore.losses.Distillation(temperature=4.0), optimizer=...)
        student.fit(x, teacher.predict(x), epochs=...)        # teacher: a net or an Ensemble

    ``loss="distillation"`` is T = 2. Fused with a final softmax, as the cross-entropy. The
    metric ``accuracy`` is then the agreement with the teacher's most probable class; evaluate
    against labels (one-hot targets stay one-hot when softened) for the error. Predictions stay
    at T = 1. The paper adds a hard-label term with a small weight; here the targets are the
    teacher's only (the labels enter through the teacher).

    Parameters
    ----------
    temperature : float > 0 (1: the plain cross-entropy with soft targets)
    from_logits : bool, as for :class:`CrossEntropy`
    """

    name = "distillation"
    keras_name = "Distillation"

    def __init__(self, temperature=2.0, from_logits=False):
        super().__init__(from_logits=from_logits)
        self.temperature = check_float(temperature, "temperature", low=0.0, low_open=True)

    def reference(self, outputs, targets, fused, channels=None):
        """The equations of the class docstring in NumPy: (n,) losses, (n, k) gradient of the
        batch mean (flat rows: the softening is over the whole row)."""
        t = self.temperature
        n = outputs.shape[0]
        logits = outputs if fused else np.log(np.maximum(outputs, CLIP))
        log_p = logits / t - reference.log_sum_exp(logits / t)
        q = soft_targets(targets, t)
        log_q = np.log(np.where(q > 0, q, 1.0))          # 0 log 0 = 0
        losses = t * t * (q * (log_q - log_p)).sum(axis=1)
        grad = t * (np.exp(log_p) * q.sum(axis=1, keepdims=True) - q) / n
        return losses, grad if fused else grad / np.maximum(outputs, CLIP)

    def loss_and_gradient(self, backend, outputs, targets, grad, row_loss, row_correct, fused,
                          channels=None):
        logits = fused or self.from_logits
        n, width = outputs.shape
        if not backend.launches_kernels:
            super().loss_and_gradient(backend, outputs, targets, grad, row_loss, row_correct,
                                      fused)
            return
        backend.launch_1d(distillation_rows, n, outputs, targets, grad, row_loss, row_correct,
                          outputs.dtype.type(1.0 / n), outputs.dtype.type(self.temperature),
                          bool(logits),
                          work=n * width)

    def get_config(self):
        """``{"name": "distillation", "temperature": T}`` (and ``"from_logits": true``)."""
        config = {"name": self.name, "temperature": self.temperature}
        if self.from_logits:
            config["from_logits"] = True
        return config

    def __repr__(self):
        return f"<loss distillation, temperature={self.temperature:g}" \
               f"{', from_logits' if self.from_logits else ''}>"


def check_reduction(reduction):
    """Keras's ``reduction`` of a loss object (:data:`REDUCTIONS`), or ValueError in one
    line."""
    if not (reduction is None or isinstance(reduction, str) and reduction in REDUCTIONS):
        raise ValueError(f"reduction must be one of {', '.join(map(repr, REDUCTIONS))}, got "
                         f"{reduction!r:.40}")
    return reduction


def soft_targets(targets, temperature):
    """NumPy: the teacher's probabilities t (n, k) softened to temperature T,
    q = t^(1/T) / sum_k t_k^(1/T) per row (entries <= 0 count as 0; a row of zeros stays 0)."""
    powered = np.maximum(targets, 0.0) ** (1.0 / temperature)
    total = powered.sum(axis=1, keepdims=True)
    return powered / np.where(total > 0, total, 1.0)


class CategoricalCrossentropy(CrossEntropy):
    """Keras's ``CategoricalCrossentropy`` (``"categorical_crossentropy"``): dlcore's
    :class:`CrossEntropy`, which a Keras export writes under this name (Keras's then takes
    one-hot targets)."""

    target_form = "rows"
    config_name = "categorical_crossentropy"


class SparseCategoricalCrossentropy(CrossEntropy):
    """Keras's ``SparseCategoricalCrossentropy`` (``"sparse_categorical_crossentropy"``):
    dlcore's :class:`CrossEntropy`, which a Keras export writes under this name (Keras's then
    takes integer labels)."""

    keras_name = "SparseCategoricalCrossentropy"
    target_form = "labels"
    config_name = "sparse_categorical_crossentropy"


#: Keras's class names for the same losses.
BinaryCrossentropy = BinaryCrossEntropy

#: Outputs that are probabilities: what a cross-entropy without ``from_logits`` can take.
PROBABILITY_ACTIVATIONS = ("softmax", "sigmoid")


def known_output_width(layer):
    """The number of outputs per sample of ``layer`` when it is known before the data is seen:
    its output shape once built, else its configured ``units`` (Dense); None otherwise (an
    ``Activation`` keeps the width of the layer before it, known only once built)."""
    if getattr(layer, "built", False):
        return int(np.prod(layer.output_shape))
    units = getattr(layer, "units", None)
    return units if isinstance(units, int) else None


def check_output_activation(loss, activation, layer_name, has_activation=True,
                            output_width=None):
    """Refuse a cross-entropy on outputs that are not probabilities of the kind it compares
    (or, with ``from_logits``, on outputs that are already probabilities), with one line
    saying what to change.

    Categorical cross-entropy compares one distribution over 2 or more classes: a softmax
    (or logits) of 2 or more units. On independent sigmoids -sum_k y_k log p_k only ever
    pushes the true class up, so every output saturates at 1 while the loss falls; on one
    output it is -y log p, which never learns class 0. Binary cross-entropy compares each
    output with its own 0/1 target: independent sigmoids (or logits), not a softmax, whose
    outputs are tied together (and a softmax of one unit is always 1).

    Parameters
    ----------
    loss : Loss
    activation : str or None, the last layer's activation (None or "linear": none)
    layer_name : str, the last layer's name, for the message
    has_activation : bool, the last layer takes an ``activation=`` (Dense, Conv2D, Activation);
        otherwise the fix is an ``Activation`` layer after it
    output_width : int or None, outputs per sample (see :func:`known_output_width`); None
        while unknown (the layers build from the first batch): the checks that need it are
        then left to the next call, once it is known

    Raises
    ------
    ValueError
    """
    if not isinstance(loss, _CrossEntropyLoss):
        return
    activation = activation or "linear"
    layer = f"the last layer {layer_name!r}"
    if output_width == 1 and isinstance(loss, CrossEntropy):
        raise ValueError(
            f"loss {loss.name!r} compares 2 or more classes, but {layer} has a single output: "
            f"for two classes use loss='binary_cross_entropy' with activation='sigmoid', or "
            f"give it one unit per class with activation='softmax'")
    if loss.from_logits:
        if activation in PROBABILITY_ACTIVATIONS:
            raise ValueError(
                f"loss {loss.name!r} with from_logits=True takes logits, but {layer} already "
                f"applies a {activation}: make that layer linear, or drop from_logits=True")
        return
    fix = (f"give it activation={loss.fuses_with!r}" if has_activation
           else f"add Activation({loss.fuses_with!r}) after it")
    if activation == "sigmoid" and isinstance(loss, CrossEntropy):
        outputs = f"{output_width} independent sigmoid outputs" if output_width else "sigmoids"
        raise ValueError(
            f"loss {loss.name!r} needs outputs that sum to 1, but {layer} has {outputs}: "
            f"{fix} (one class per sample), or use loss='binary_cross_entropy' (any number of "
            f"labels per sample)")
    if activation == "softmax" and isinstance(loss, BinaryCrossEntropy):
        single = "; a softmax of a single output is always 1" if output_width == 1 else ""
        raise ValueError(
            f"loss {loss.name!r} compares each output with its own 0/1 target, but {layer} "
            f"applies a softmax, which ties its outputs together{single}: {fix} (labels "
            f"independent of each other), or use loss='cross_entropy' (one class per sample)")
    if activation in PROBABILITY_ACTIVATIONS:
        return
    output = (f"has activation {activation!r}" if activation != "linear"
              else "is linear" if has_activation else "has no activation")
    raise ValueError(
        f"loss {loss.name!r} needs probabilities, but {layer} {output}: "
        f"{fix}, or train on logits with loss=dlcore.losses.{loss.keras_name}(from_logits=True)")


def correct_predictions(outputs, targets, threshold=0.5, channels=None):
    """NumPy: per row, the fraction of its positions predicted right (see
    :func:`_row_correct`): each output against the threshold for one channel, else the argmax
    over the channels at each position (flat rows: 1.0 or 0.0)."""
    n, width = outputs.shape
    channels = width if channels is None else channels
    if channels == 1:
        right = (outputs > threshold) == (targets > 0.5)
        return right.mean(axis=1).astype(outputs.dtype)
    o, t = outputs.reshape(n, channels, -1), targets.reshape(n, channels, -1)
    return (o.argmax(axis=1) == t.argmax(axis=1)).mean(axis=1).astype(outputs.dtype)


@body
def elementwise_correct_rows(first, last, outputs, targets, row_correct, threshold):
    """Rows first..last-1: the fraction of each row's outputs on the right side of the
    threshold (Keras's ``binary_accuracy``: every output is its own yes/no question)."""
    for row in range(first, last):
        row_correct[row] = _row_correct(outputs, targets, row, threshold, 1)


@body
def softmax_elementwise_correct_rows(first, last, logits, targets, row_correct, channels):
    """Rows first..last-1 of a softmax's logits o, each read as ``channels`` blocks of
    positions: the fraction of the row's outputs whose probability exp(o_k - m) / sum_c
    exp(o_c - m), over its position's channels, is on the right side of 0.5."""
    positions = logits.shape[1] // channels
    for row in range(first, last):
        right = 0
        for position in range(positions):
            top, total = max_and_exp_sum(logits[row], position, positions, channels,
                                         logits[row, :0])
            for k in range(position, logits.shape[1], positions):
                predicted = math.exp(logits[row, k] - top) / total > np.float32(0.5)
                if predicted == (targets[row, k] > np.float32(0.5)):
                    right += 1
        row_correct[row] = np.float32(right) / np.float32(logits.shape[1])


def elementwise_correct(backend, outputs, targets, row_correct, logits_of=None, channels=1):
    """Overwrite ``row_correct`` (n,) with each row's fraction of outputs right, each output's
    probability against 0.5 as its own yes/no question (Keras's ``binary_accuracy``, for
    multi-label sigmoid outputs), where the loss's own flags take the argmax of rows of
    several outputs. ``outputs``, ``targets``: (n, k) backend arrays; ``outputs`` are
    probabilities, or the logits of ``logits_of`` ("sigmoid": each against 0; "softmax":
    their softmax over ``channels``, so that the cross-entropy stays fused with its softmax
    whichever accuracy is asked, as Keras's loss does not depend on its metrics)."""
    if logits_of == "softmax":
        if not backend.launches_kernels:
            n, width = outputs.shape
            outputs = reference.softmax(outputs.reshape(n, channels, -1)).reshape(n, width)
        else:
            backend.launch_1d(softmax_elementwise_correct_rows, outputs.shape[0], outputs,
                              targets, row_correct, channels, work=outputs.size)
            return
    threshold = 0.0 if logits_of == "sigmoid" else 0.5
    if not backend.launches_kernels:
        row_correct[...] = correct_predictions(outputs, targets, threshold, channels=1)
        return
    backend.launch_1d(elementwise_correct_rows, outputs.shape[0], outputs, targets, row_correct,
                      outputs.dtype.type(threshold), work=outputs.size)


def output_channels(shape):
    """The channels the loss and the accuracy read a sample's output of ``shape`` in: C of
    (C, H, W) maps (a softmax per pixel over its channels, Keras's per-pixel accuracy), else
    the output's size (flat rows: one position)."""
    shape = tuple(shape)
    # math.prod, not NumPy's: called at every batch, where np.prod cost ~5 us
    return int(shape[0]) if len(shape) == 3 else int(math.prod(int(size) for size in shape))


LOSSES = {
    "cross_entropy": CrossEntropy, "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "binary_cross_entropy": BinaryCrossEntropy, "binary_crossentropy": BinaryCrossEntropy,
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "distillation": Distillation,
}


# -- Keras' loss functions (lecture "Deep learning I": ``model.compile(loss=
# keras.losses.categorical_crossentropy, ...)``): called on arrays they give each sample's loss,
# as Keras's do; given to ``compile`` they stand for the Loss class above.
def _per_sample(loss, y_true, y_pred, from_logits=False, reads_floatx=False):
    """(n,) losses of (n, k) NumPy targets and outputs; a categorical cross-entropy also takes
    (n,) integer labels as the targets, and divides rows of probabilities by their sums, as
    Keras's does. Shaped as Keras's, which reduce the last axis: a 1-D pair is one sample, whose
    loss is a number (0-d), and predictions (n,) beside labels (n, 1) are one output each.
    ``reads_floatx``: a loss object's call, which clips in float32 whatever ``y_pred`` is, as
    Keras's objects read it in floatx; a function clips a float64 array in float64, as
    Keras's functions keep an array's precision."""
    given = np.asarray(y_pred)
    predictions = given.astype(np.float64)
    labels = np.asarray(y_true)
    if predictions.ndim == 1 and labels.shape == (predictions.shape[0], 1):
        predictions = predictions[:, None]     # Keras expands the predictions to the labels
    one_sample = predictions.ndim == 1 and labels.ndim <= 1
    if one_sample and labels.ndim == 0:
        labels = labels.reshape(1)             # one sample's class label
    outputs = np.atleast_2d(predictions)
    if outputs.ndim != 2:
        # flattened maps are right for a mean over every output, not for a softmax per pixel
        fix = ("one distribution per row; model.evaluate(x, y) reports the loss of (n, C, H, W) "
               "maps, per pixel over its C channels" if isinstance(loss, CrossEntropy)
               else "flatten each sample's outputs first, y_pred.reshape(len(y_pred), -1)")
        raise ValueError(f"y_pred has shape {outputs.shape}: a loss function here takes rows "
                         f"(n, k), {fix}")
    if isinstance(loss, CrossEntropy) and outputs.shape[1] == 1:
        # a softmax of one column is 1, so the loss is 0 whatever the labels (Keras warns)
        raise ValueError("y_pred has one column: a categorical cross-entropy compares 2 or "
                         "more classes (one column each), as compile says; for one "
                         "probability per sample use binary_crossentropy")
    label_shapes = ((outputs.shape[0],), (outputs.shape[0], 1))
    # a sparse cross-entropy's y_true are labels whatever y_pred's width (Keras's: a label
    # beyond its columns is refused, not read as a target row)
    sparse = isinstance(loss, SparseCategoricalCrossentropy)
    if sparse and labels.shape not in label_shapes:
        raise ValueError(f"y_true has shape {np.shape(y_true)} beside y_pred {given.shape}: a "
                         f"sparse cross-entropy takes one class label per row of y_pred (n, k), "
                         f"y_true (n,) or (n, 1); one-hot rows are categorical_crossentropy's")
    if isinstance(loss, CrossEntropy) and labels.shape in label_shapes and (
            outputs.shape[1] > 1 or sparse):
        labels = labels.reshape(-1)
        classes = outputs.shape[1]
        if labels.dtype.kind not in "biuf" or labels.size and (
                not np.all(np.mod(labels, 1) == 0) or labels.min() < 0
                or labels.max() >= classes):
            raise ValueError(f"y_true holds {labels.shape[0]} labels, which must be whole "
                             f"numbers in [0, {classes}) for the {classes} columns of y_pred")
        labels = np.eye(classes)[labels.astype(np.int64)]
    elif labels.ndim == 1 and outputs.shape == (labels.shape[0], 1):
        labels = labels[:, None]     # one output per sample: Keras's loss objects take (n,)
    targets = np.atleast_2d(np.asarray(labels, dtype=np.float64))
    if outputs.shape != targets.shape:
        # the shapes given: those read here (one sample's row (1, n)) were never the user's
        raise ValueError(f"y_true has shape {np.shape(y_true)} and y_pred {given.shape}; they "
                         "must match")
    if loss.label_smoothing:
        targets = loss.smooth(targets)
    if isinstance(loss, CrossEntropy) and not from_logits:
        # Keras's categorical cross-entropies read each row of probabilities as a
        # distribution: divided by its sum (a softmax's rows already sum to 1)
        outputs = outputs / outputs.sum(axis=1, keepdims=True)
    if isinstance(loss, _CrossEntropyLoss) and not from_logits:
        # Keras clips in the predictions' precision: float32's 1 - 1e-7 is 1 - 1.19e-7, which
        # a saturated output's log(1 - p) reads (15.94, not float64's 16.12). float16's is 1.0,
        # no clip at all; Keras's loss objects, compile and evaluate read float16 in float32
        # (its floatx), and so does dlcore (its bare function's float16 log(0) costs 100 on
        # torch, inf on its other backends). Keras's objects read every y_pred so (float64
        # arrays, lists, integers), its functions a list (Keras's default float); Distillation
        # (no Keras loss) its kernels' precision
        in_float64 = given.dtype == np.float64 and (isinstance(loss, Distillation) or (
            not reads_floatx and hasattr(y_pred, "dtype")))
        low = CLIP if in_float64 else np.float32(CLIP)
        # distillation (no Keras loss) clips the low end alone, as its kernels: its log is a
        # logit, and a float64 student's 1.0 stays 1.0
        high = np.inf if isinstance(loss, Distillation) else float(1 - low)
        outputs = np.clip(outputs, float(low), high)
    losses = loss.reference(outputs, targets, from_logits)[0]
    return losses.reshape(()) if one_sample else losses


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0):
    """Each sample's -sum_k y_k log p_k (Keras' function; ``label_smoothing`` s: of the
    targets y (1 - s) + s / K); ``compile(loss=...)`` takes it for :class:`CrossEntropy`."""
    return _per_sample(CrossEntropy(label_smoothing=label_smoothing), y_true, y_pred,
                       from_logits)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False):
    """Each sample's -log p_y of integer class labels y (n,) (Keras' function);
    ``compile(loss=...)`` takes it for :class:`SparseCategoricalCrossentropy`."""
    return _per_sample(SparseCategoricalCrossentropy(), y_true, y_pred, from_logits)


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0):
    """Each sample's -mean_k [y_k log p_k + (1 - y_k) log(1 - p_k)] (Keras' function;
    ``label_smoothing`` s: of the targets y (1 - s) + s / 2); ``compile(loss=...)`` takes it
    for :class:`BinaryCrossEntropy`."""
    return _per_sample(BinaryCrossEntropy(label_smoothing=label_smoothing), y_true, y_pred,
                       from_logits)


def mean_squared_error(y_true, y_pred):
    """Each sample's mean_k (p_k - y_k)^2 (Keras' function); ``compile(loss=...)`` takes it for
    :class:`MeanSquaredError`."""
    return _per_sample(MeanSquaredError(), y_true, y_pred)


mse = mean_squared_error
LOSS_FUNCTIONS = {categorical_crossentropy: CategoricalCrossentropy,
                  sparse_categorical_crossentropy: SparseCategoricalCrossentropy,
                  binary_crossentropy: BinaryCrossEntropy, mean_squared_error: MeanSquaredError}


def is_loss(identifier):
    """Whether ``identifier`` names or is a loss (what :func:`get_loss` takes), or is a list of
    them (one per output of a model)."""
    if isinstance(identifier, (list, tuple)):
        return bool(identifier) and all(is_loss(item) for item in identifier)
    if isinstance(identifier, (Loss, dict)):
        return True
    if isinstance(identifier, str):
        return identifier.lower() in LOSSES
    return callable(identifier) and identifier in LOSS_FUNCTIONS


def get_loss(identifier):
    """A Loss from its name (``"cross_entropy"``, ``"binary_cross_entropy"``, ``"mse"``,
    ``"distillation"`` or the Keras spellings), from one of Keras' loss functions
    (``categorical_crossentropy``, ...), from :meth:`Loss.get_config`'s ``{"name": ...,
    "from_logits": true}`` (``{"name": "distillation", "temperature": T}``), or a Loss
    instance."""
    if isinstance(identifier, Loss):
        if identifier.reduction != "sum_over_batch_size":
            raise ValueError(f"{identifier!r} has reduction={identifier.reduction!r}, for "
                             f"calling it; compile trains on the mean over the batch: give it "
                             f"without reduction")
        return identifier
    if isinstance(identifier, dict):
        name, from_logits = identifier.get("name"), identifier.get("from_logits", False)
        if name == "distillation" and set(identifier) <= {"name", "from_logits", "temperature"} \
                and isinstance(from_logits, bool):
            return Distillation(identifier.get("temperature", 2.0), from_logits=from_logits)
        if (set(identifier) <= {"name", "from_logits", "label_smoothing"}
                and isinstance(name, str) and name.lower() in LOSSES
                and isinstance(from_logits, bool)
                and issubclass(LOSSES[name.lower()], _CrossEntropyLoss)):
            return LOSSES[name.lower()](from_logits=from_logits, label_smoothing=identifier.get(
                "label_smoothing", 0.0))
        raise ValueError(f"a loss config must be {{'name': 'cross_entropy' or "
                         f"'binary_cross_entropy', 'from_logits': true or false, "
                         f"'label_smoothing': s in [0, 1)}} or "
                         f"{{'name': 'distillation', 'temperature': T}}, got "
                         f"{identifier!r:.200}")
    if isinstance(identifier, str) and identifier.lower() in LOSSES:
        return LOSSES[identifier.lower()]()
    if callable(identifier) and identifier in LOSS_FUNCTIONS:
        return LOSS_FUNCTIONS[identifier]()
    if callable(identifier) and not isinstance(identifier, type):
        raise ValueError(f"the loss {identifier!r:.80} is a function of your own: "
                         f"{OWN_LOSSES}")
    raise ValueError(f"unknown loss {identifier!r:.200}: choose cross_entropy, "
                     f"binary_cross_entropy, mse or distillation")


#: Why a loss of one's own (a function, a Loss subclass) is refused, and what to take
OWN_LOSSES = ("dlcore trains on its own losses only, each fused with its gradient in the "
              "kernels (a cross-entropy's p - y): give 'cross_entropy', "
              "'binary_cross_entropy', 'mse' or 'distillation' (Keras's names too), or train "
              "your loss in Keras and load the model")
