"""The training loop of dlcore's networks: ``fit``, ``evaluate``, ``predict``, ``train_on_batch``.

Lecture "Deep learning I" trains a Keras model with ``model.fit(x_train, y_train, epochs=5,
batch_size=32)``, or by feeding "batches manually in a training loop" with
``model.train_on_batch``, then calls ``evaluate`` and ``predict``; lecture "Supervised learning"
gives the loop itself: mini-batch stochastic gradient descent, each update a forward pass, the
loss, back-propagation and the optimiser step. :class:`TrainingLoop` is that loop, written once
for every model class that offers the seam below (:class:`dlcore.Sequential` today, the
functional ``Model`` next). A model class inherits it and gets the Keras methods::

    class Sequential(TrainingLoop): ...     # fit, evaluate, predict, predict_classes,
                                            # train_on_batch, loss_and_gradient

One epoch of ``fit`` is::

    for x, y in mini_batches(data, order of the epoch):   # dlcore.batches
        model.loss_rows(x, y, rows, training=True, step=n_updates, gradient=True)
        totals += (sum of rows.loss, sum of rows.correct, n)  # on the device, in float64
        totals[0] += n * Omega(theta)       # the weight decay before the update (BatchPenalty)
        optimizer.apply(model.trainable_parameters)           # theta <- theta - eta * ...
        n_updates += 1
    loss = totals[0] / totals[2]    # Keras's: the mean over samples of each batch's cost

then the divergence check (:class:`dlcore.errors.DivergenceCheck`), validation, the history and
the callbacks. ``fit`` and ``evaluate`` send the data to the backend once per call and gather
each batch there into buffers allocated once per call; the per-sample losses are summed there
too, so an epoch allocates nothing and reads nothing back between progress reports.
``predict`` hands consecutive slices of x to ``forward``.

The seam: what the loop asks of a model
---------------------------------------
(:class:`dlcore.Sequential` has each; tests/test_network_training_loop.py writes them out for a
one-layer model in under fifty lines.)

``built``, ``build(input_shape)``
    whether the parameters exist; create them for per-sample inputs of ``input_shape`` (the loop
    builds an unbuilt model from the first data it sees).
``input_shape``, ``output_shape``
    per-sample shapes (tuples; ``input_shape`` None until known). Targets are rows of
    ``prod(output_shape)`` values; integer labels become one-hot rows.
``backend``, ``dtype``
    the :mod:`dlcore.backend` object the parameters live on, and their float dtype.
``seed``
    the Philox key of the validation split (``STREAM_SPLIT``) and of the batch order of epoch
    e (``STREAM_SHUFFLE`` at step e, :func:`dlcore.batches.epoch_order`).
``loss``, ``optimizer``, ``metrics``
    set by the model's ``compile``: a :class:`dlcore.losses.Loss`, a
    :class:`dlcore.optimizers.Optimizer` (before training, the loop has it create the slots of
    ``parameters`` that lack them), and ``[]`` or ``["accuracy"]``.
``check_compiled()``
    raise RuntimeError unless compiled (and ValueError when the loss does not fit the model);
    called once at the start of ``fit``, ``evaluate``, ``train_on_batch`` and
    ``loss_and_gradient``.
``parameters``
    the list of :class:`dlcore.optimizers.Parameter` the optimiser updates from their ``grad``;
    a model with frozen layers (``trainable = False``) overrides ``trainable_parameters`` (by
    default ``parameters``) to name the ones it updates.
``forward(x, training=False, step=0)``
    ``(n, *input_shape)`` backend array -> ``(n, *output_shape)`` backend array of outputs
    (class probabilities after a softmax): what ``predict`` returns.
``loss_rows(x, targets, rows, training=False, step=0, gradient=False, input_gradient=False)``
    the loss of each sample of ``x`` against ``targets`` ((n, k) backend array) into ``rows``
    (a :class:`LossRows` of n rows), and with ``gradient`` the back-propagation of the batch
    mean into every Parameter's ``grad`` (weight decay left to the optimiser); returns dL/dx
    with ``input_gradient``, else None. The model may fuse its final activation with the loss
    here (softmax + cross-entropy: dL/dz = p - y). A model that weighs samples (``fit``'s
    ``sample_weight`` and ``class_weight``) also takes ``weights``, an (n, 1) backend array
    multiplying each sample's loss and its part of the gradient (:meth:`TrainingLoop._weigh`);
    the loop passes it only when the caller gave weights.
``penalty()``
    the weight-decay term Omega(theta) of the cost (float), added to ``evaluate``'s loss.
    ``fit`` and ``train_on_batch`` compute each batch's on the backend instead, from the
    ``l1`` and ``l2`` of the trainable Parameters (the same number: tests hold them together).
``get_weights()``, ``set_weights(weights)``
    NumPy copies of the parameter values, and their assignment: snapshots, the divergence check,
    early stopping.
``history``, ``epochs_done``, ``n_updates``, ``stop_training``, ``callback_state``
    the training state the loop keeps on the model (:meth:`TrainingLoop._reset_training` sets
    them); a model's ``set_state`` hands saved callback state to the next ``fit`` with
    :meth:`TrainingLoop.continue_callback_state`, which it inherits.

Ctrl-C or a diverging epoch leaves the model as the last finished epoch left it: weights,
optimiser state, counters, history and callback state (a snapshot taken after every epoch).
A callback that raises in ``on_epoch_end`` (a ModelCheckpoint that cannot write) leaves the
epoch it was ending trained and in the history, as Keras does, and the error reaches the caller
once the callbacks after it have ended the epoch too (all callbacks' state is of that epoch).
"""
import collections
import collections.abc
import functools
import math
import numbers
import os
import threading
import time
import warnings
import weakref
from typing import NamedTuple

import click
import numpy as np

from dlcore.backend import rng
from dlcore.backend.registry import body
from dlcore.batches import epoch_order, mini_batches
from dlcore.callbacks import (
    BackupAndRestore,
    Callback,
    EarlyStopping,
    History,
    ModelCheckpoint,
    ProgressBar,
    ReduceLROnPlateau,
    forget_fit_settings,
    format_logs,
    giving_fit_settings,
)
from dlcore.distributed.communicator import periodic
from dlcore.errors import DivergenceCheck, decay_diverges
from dlcore.keras_options import (
    check_keras_fit_options,
    foreign_callback,
    refuse_steps_and_callbacks,
)
from dlcore.layers.base import EVALUATION_GRADIENT, MC_DROPOUT, declared_float_type
from dlcore.layers.geometry import stacklevel_outside_dlcore
from dlcore.lazy_rows import LazyRows
from dlcore.records import record_fit
from dlcore.validation import (
    FLOAT64_NETWORK,
    as_finite,
    check_batch,
    check_float,
    check_int,
    check_verbose,
    refuse_complex,
)
from dlcore.wording import as_typed, count

__all__ = ["ACCURACY_NAMES", "LossRows", "LossScore", "Scores", "TrainingLoop",
           "accumulate_batch", "accuracy_outputs", "by_name", "held_out", "scores",
           "split_validation", "target_forms", "target_rows"]


@body
def accumulate_batch(first, last, row_loss, row_correct, totals):
    """totals += (sum of row_loss, sum of row_correct, number of rows): one thread, in float64,
    so that the epoch's sums stay on the device until the epoch ends."""
    for _ in range(first, last):
        loss = 0.0
        correct = 0.0
        for row in range(row_loss.shape[0]):
            loss += row_loss[row]
            correct += row_correct[row]
        totals[0] += loss
        totals[1] += correct
        totals[2] += row_loss.shape[0]


@body
def accumulate_output_losses(first, last, parts, totals):
    """totals[3 + c] += the sum over rows of parts[row, c], for columns c = first .. last-1:
    each output's own loss, then each output's correct flags (a model with several outputs),
    in float64."""
    for column in range(first, last):
        total = 0.0
        for row in range(parts.shape[0]):
            total += parts[row, column]
        totals[3 + column] += total


@body
def penalty_blocks(block, first_unit, last_unit, theta, l1, l2, partial_sums, offset,
                   block_size):
    """partial_sums[offset + block] = the sum of l1 |w| + l2/2 w^2 over the block's elements of
    ``theta`` (flat), in float64: a block's share of the weight-decay term Omega(theta)."""
    total = 0.0
    for i in range(block * block_size, min(theta.shape[0], (block + 1) * block_size)):
        w = np.float64(theta[i])
        total += l1 * abs(w) + 0.5 * l2 * w * w
    partial_sums[offset + block] = total


@body
def add_batch_penalty(first, last, partial_sums, n_rows, totals):
    """totals[0] += n_rows * (the sum of partial_sums): the batch's weight-decay term, counted
    once per sample as the batch's losses are, so that the epoch's mean is Keras's."""
    for _ in range(first, last):
        total = 0.0
        for block in range(partial_sums.shape[0]):
            total += partial_sums[block]
        totals[0] += n_rows * total


#: one lock per network (:func:`one_call_at_a_time`)
_NETWORK_LOCKS = weakref.WeakKeyDictionary()
_NETWORK_LOCKS_GUARD = threading.Lock()


def network_lock(network):
    """The lock a network's ``fit``, ``train_on_batch``, ``evaluate`` and ``predict`` hold
    (re-entrant: a callback of a fit may predict with its network in the fit's thread)."""
    with _NETWORK_LOCKS_GUARD:
        lock = _NETWORK_LOCKS.get(network)
        if lock is None:
            lock = _NETWORK_LOCKS[network] = threading.RLock()
        return lock


def one_call_at_a_time(method):
    """``method`` of a network, run under :func:`network_lock`: a network's layers reuse their
    own buffers from one batch to the next, so two threads predicting with one network (a
    threaded web server, scikit-learn's ``permutation_importance`` under joblib's threading
    backend) mixed each other's numbers (probabilities off by 0.04), as a fit beside them
    would. Keras's and scikit-learn's models predict from several threads at once; here the
    calls on one network take turns (each runs its kernels on every core), and different
    networks (a grid search's candidates) still run side by side."""
    @functools.wraps(method)
    def taking_turns(self, *arguments, **options):
        with network_lock(self):
            return method(self, *arguments, **options)
    return taking_turns


#: The callbacks whose state a network's file keeps (``model.callback_state``, saved under
#: ``training/callbacks``) and hands to the first fit after loading.
RESUMED_CALLBACKS = (EarlyStopping, ReduceLROnPlateau)
#: elements of a weight tensor per block of :func:`penalty_blocks`
PENALTY_BLOCK = 4096


def _rescales_its_inputs(model):
    """Whether ``model`` (or a model nested in it) has a Rescaling layer, which takes 8-bit
    pixels into [0, 1] as Keras's image models do."""
    from dlcore.layers.core import Rescaling
    return any(isinstance(layer, Rescaling)
               or (hasattr(layer, "layers") and _rescales_its_inputs(layer))
               for layer in getattr(model, "layers", ()))


def warn_of_unscaled_pixels(model, x):
    """Warn, in one line with the fix, when ``fit`` is given 8-bit images (a uint8 array, as
    the data set loaders return the pixels) and no Rescaling layer scales them: on 0-255 the
    first epoch's loss reaches 1e12 with SGD, which then stops as a divergence whose advice
    (a lower learning rate) is not the fix, or a ReLU network sits at chance, silently. The
    warning points at the caller of the ``fit`` that calls this."""
    if isinstance(x, np.ndarray) and x.dtype == np.uint8 and not _rescales_its_inputs(model):
        warnings.warn("x holds 8-bit pixels (uint8, 0-255), which networks do not train on: "
                      "scale them into [0, 1] with x.astype('float32') / 255, or put "
                      "dlcore.layers.Rescaling(1 / 255) first in the model",
                      UserWarning, stacklevel=stacklevel_outside_dlcore())


class BatchPenalty:
    """The weight-decay term Omega(theta) of the weights as they are before a batch's update,
    added to the batch's loss sum (``totals[0]``) once per sample, on the backend: Keras's cost
    of a batch, its loss plus the regularisation of the weights it was computed with. Made for
    the trainable parameters that carry an L1 or L2 term (:meth:`of` gives None when none does,
    and the loop then adds nothing)."""

    def __init__(self, backend, parameters):
        self.backend = backend
        self.terms = [(parameter.value.reshape(-1), float(parameter.l1), float(parameter.l2))
                      for parameter in parameters]
        self.blocks = [-(-theta.shape[0] // PENALTY_BLOCK) for theta, _, _ in self.terms]
        self.partial_sums = backend.zeros((sum(self.blocks),), np.float64) \
            if backend.launches_kernels else None

    @classmethod
    def of(cls, model):
        """The penalty of ``model``'s trainable parameters with weight decay, or None."""
        decayed = [parameter for parameter in model.trainable_parameters
                   if parameter.l1 or parameter.l2]
        return cls(model.backend, decayed) if decayed else None

    def add(self, n_rows, totals):
        """totals[0] += n_rows * Omega(theta) (float64)."""
        if not self.backend.launches_kernels:
            totals[0] += n_rows * sum(
                l1 * np.abs(theta).sum(dtype=np.float64)
                + 0.5 * l2 * np.square(theta, dtype=np.float64).sum()
                for theta, l1, l2 in self.terms)
            return
        offset = 0
        for (theta, l1, l2), blocks in zip(self.terms, self.blocks):
            self.backend.launch_rows(penalty_blocks, blocks, 1, theta, np.float64(l1),
                                     np.float64(l2), self.partial_sums, offset, PENALTY_BLOCK,
                                     work=theta.shape[0])
            offset += blocks
        self.backend.launch_1d(add_batch_penalty, 1, self.partial_sums, np.float64(n_rows),
                               totals)


@body
def weigh_rows(row, first, last, values, weights):
    """values[row, first:last] *= weights[row, 0]: a sample's loss or its gradient scaled by its
    weight."""
    weight = weights[row, 0]
    for unit in range(first, last):
        values[row, unit] *= weight


def sample_weights(y, n, sample_weight, class_weight):
    """The weight of each of ``n`` samples, float64 (n,), or None for none: ``sample_weight``
    (n,) as given, or ``class_weight[label]`` for each sample's class (Keras's rule: the label,
    the argmax of a target row, or a single output rounded; 1 for a class the dict leaves
    out). Keras refuses both at once, and so does dlcore."""
    if sample_weight is not None and class_weight is not None:
        raise ValueError("fit takes sample_weight or class_weight, not both (as Keras): "
                         "multiply the class weights into sample_weight")
    if isinstance(sample_weight, (dict, list)) and sample_weight and isinstance(
            next(iter(sample_weight.values() if isinstance(sample_weight, dict)
                      else sample_weight)), (dict, list, tuple, np.ndarray)):
        raise ValueError("sample_weight weighs each sample for every output: give one array "
                         "(n,); weights per output are not dlcore's")
    if sample_weight is not None:
        weights = np.asarray(sample_weight, dtype=np.float64)
        if weights.ndim == 2 and weights.shape[1] == 1:
            weights = weights.ravel()
        if weights.shape != (n,):
            raise ValueError(f"sample_weight must hold one weight per sample, shape ({n},), "
                             f"got {weights.shape}")
    elif class_weight is not None:
        if not isinstance(class_weight, dict):
            raise TypeError(f"class_weight must be a dict {{class index: weight}}, got "
                            f"{type(class_weight).__name__}")
        for key in class_weight:
            if isinstance(key, (bool, np.bool_)) or not isinstance(key, numbers.Real) \
                    or key != int(key):
                # Keras's .get(label) would pass over it: that class trains unweighted,
                # silently (a dict read back from JSON has the key "0")
                raise ValueError(f"class_weight's keys must be class indices 0, 1, ..., got "
                                 f"{as_typed(key)}: write {{{_class_index_hint(key)}: "
                                 f"{as_typed(class_weight[key])}}}")
        check_labels_given(y, n)
        labels = np.asarray(y)
        if labels.ndim == 2:
            labels = labels.argmax(axis=1) if labels.shape[1] > 1 else labels[:, 0]
        labels = np.round(labels.astype(np.float64)).astype(np.int64)
        weights = np.array([class_weight.get(int(label), 1.0) for label in labels],
                           dtype=np.float64)
    else:
        return None
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise ValueError("sample weights must be finite and >= 0")
    return weights


def _stream_kind(data):
    """How to name ``data`` when it is a stream of batches, as Keras takes for ``x`` (a
    generator or iterator, a ``keras.utils.PyDataset``, a ``tf.data.Dataset``, a PyTorch
    ``DataLoader``), or None when it may be an array: NumPy arrays, tensors and HDF5 datasets
    (anything with a ``shape`` or ``__array__``), :class:`LazyRows`, and the lists, tuples and
    dicts that hold arrays."""
    if data is None or isinstance(data, (np.ndarray, LazyRows, list, tuple, dict, str, bytes)) \
            or hasattr(data, "shape") or hasattr(data, "__array__"):
        return None
    if isinstance(data, collections.abc.Generator):
        return "a generator"
    if isinstance(data, collections.abc.Iterator):
        return f"an iterator ({type(data).__name__})"
    indexed = hasattr(data, "__getitem__") and hasattr(data, "__len__")
    if isinstance(data, collections.abc.Iterable) or indexed:
        return f"a {type(data).__name__}"
    return None


def refuse_batch_stream(data, method, name="x"):
    """Refuse, in one line naming the fix, a stream of batches given as ``method``'s ``name``
    (see :func:`_stream_kind`). Keras draws ``steps_per_epoch`` batches from one an epoch;
    dlcore's epochs are seeded permutations of whole arrays (:mod:`dlcore.batches`), which a
    stream cannot give, and gathering an endless generator would never end."""
    kind = _stream_kind(data)
    if kind is not None:
        raise TypeError(f"{method}'s {name} is {kind} of batches: dlcore takes whole arrays, x "
                        f"and y apart; gather a finite stream first, x, y = (np.concatenate("
                        f"part) for part in zip(*batches)), or open data too large for memory "
                        f"as lazy rows (dlcore.datasets.open_idx, open_hdf5)")


def refuse_packed_targets(model, x, y, method):
    """Refuse, in one line, ``method(x=(x, y))`` on a model of one input: a tuple of two or
    three arrays of one length and no ``y`` is the (x, y[, sample_weight]) of a Keras batch,
    which NumPy would otherwise meet with its "inhomogeneous shape" error."""
    if y is not None or getattr(model, "_several_inputs", False) \
            or not isinstance(x, (list, tuple)) or len(x) not in (2, 3) \
            or not all(hasattr(part, "shape") and len(part.shape) for part in x) \
            or len({part.shape[0] for part in x}) != 1:
        return
    names = "(x, y)" if len(x) == 2 else "(x, y, sample_weight)"
    call = "x, y" if len(x) == 2 else "x, y, sample_weight=sample_weight"
    raise ValueError(f"{method}'s x is a {type(x).__name__} of {len(x)} arrays and y is None: "
                     f"for Keras's {names} pass them apart, model.{method}({call})")


def _class_index_hint(key):
    """The class index a mistyped ``class_weight`` key most likely meant (the number a string
    spells), else 0, for the example of the refusal."""
    try:
        return int(str(key).strip())
    except ValueError:
        return 0


class LossRows(NamedTuple):
    """What a model's ``loss_rows`` fills for a batch of n samples with k outputs each (backend
    arrays)."""

    #: (n, k): dL/d(the loss's input) of the batch mean (the pre-activations when the model fuses
    #: its final activation with the loss).
    grad: object
    #: (n,): each sample's loss.
    loss: object
    #: (n,): 1.0 where the prediction is right (argmax, or a threshold for one output), else 0.
    correct: object
    #: (n, 2 outputs) or None, for a model with several outputs: in column k each sample's loss
    #: of output k (Keras's ``<output>_loss``), before its loss weight; in column outputs + k
    #: its correct flag for output k (Keras's ``<output>_accuracy``)
    parts: object = None

    @classmethod
    def empty(cls, backend, n, width, dtype, outputs=0):
        """Uninitialised rows for n samples of ``width`` outputs on ``backend`` (and the
        per-output losses and correct flags of a model with ``outputs`` > 0 outputs)."""
        return cls(backend.empty((n, width), dtype), backend.empty((n,), dtype),
                   backend.empty((n,), dtype),
                   backend.empty((n, 2 * outputs), dtype) if outputs else None)

    @property
    def outputs(self):
        """How many outputs ``parts`` holds the losses and correct flags of."""
        return 0 if self.parts is None else self.parts.shape[1] // 2

    def first(self, n):
        """The first n rows (views)."""
        return LossRows(self.grad[:n], self.loss[:n], self.correct[:n],
                        None if self.parts is None else self.parts[:n])


class _BatchBuffers:
    """The arrays of one call's mini-batches on the backend, allocated once: the gathered inputs
    (as rows) and targets, and the loss rows."""

    def __init__(self, backend, capacity, features, width, dtype, weighted=False, outputs=0):
        self.x = backend.empty((capacity, features), dtype)
        self.y = backend.empty((capacity, width), dtype)
        self.w = backend.empty((capacity, 1), dtype) if weighted else None
        self.rows = LossRows.empty(backend, capacity, width, dtype, outputs)

    def loss_rows(self, n):
        """The loss rows of a batch of n samples (the whole buffers for a full batch)."""
        return self.rows if n == self.rows.loss.shape[0] else self.rows.first(n)


class Scores(tuple):
    """Loss and metrics: a tuple of numbers (``loss, accuracy = scores``) that also answers to
    names (``scores["accuracy"]``, ``scores.keys()``, ``dict(scores)``)."""

    def __new__(cls, names, values):
        scores = super().__new__(cls, [float(v) for v in values])
        scores.names = tuple(names)
        return scores

    def __getitem__(self, key):
        if isinstance(key, str):
            try:
                return tuple.__getitem__(self, self.names.index(key))
            except ValueError:
                raise KeyError(key) from None
        return tuple.__getitem__(self, key)

    def keys(self):
        return self.names

    def items(self):
        return tuple(zip(self.names, self))

    def __repr__(self):
        return "Scores(" + ", ".join(f"{k}={v:.6g}" for k, v in self.items()) + ")"


class LossScore(float):
    """The loss alone, what Keras returns for a model compiled without metrics: a number
    (``f"{loss:.3f}"``, ``loss < best``) that also answers to its name (``scores["loss"]``,
    ``dict(scores)``), as :class:`Scores` does."""

    names = ("loss",)

    def __getitem__(self, key):
        if key in ("loss", 0):
            return float(self)
        raise KeyError(key)

    def keys(self):
        return self.names

    def items(self):
        return (("loss", float(self)),)

    def __repr__(self):
        return f"LossScore({float(self):.6g})"

    def __str__(self):   # print(loss) and CSV rows show the number, as Keras's float
        return float.__repr__(self)


def scores(logs, return_dict=False):
    """What evaluate and train_on_batch return for ``logs``: a dict of them with
    ``return_dict``, the :class:`LossScore` alone when there is nothing else (Keras's scalar),
    else :class:`Scores`."""
    if return_dict:
        return dict(logs)
    if list(logs) == ["loss"]:
        return LossScore(logs["loss"])
    return Scores(logs.keys(), logs.values())


#: compile's metric names that dlcore reports, all as its accuracy (Keras's strings for it):
#: "binary_accuracy" counts each output right against a 0.5 threshold (Keras's, for multi-label
#: sigmoid outputs); the others, as Keras 3 resolves "accuracy", the argmax of a row of several
#: outputs, and a 0.5 threshold for one output.
ACCURACY_NAMES = ("accuracy", "acc", "categorical_accuracy", "sparse_categorical_accuracy",
                  "binary_accuracy")

#: the accuracy that takes every output as its own yes/no question
ELEMENTWISE_ACCURACY = "binary_accuracy"


def _accuracy_names(items):
    """One output's metrics (None, a name, or a list of names) as the names the logs report
    them by, in order, each once (Keras names a metric as asked: "acc" is logged as ``acc``;
    another case, "Binary_Accuracy", as its Keras name, which a Keras export must write);
    ValueError in one line for a metric dlcore does not report."""
    items = [] if items is None else [items] if isinstance(items, str) else items
    if not isinstance(items, (list, tuple)):
        raise ValueError(f"metrics must be names such as 'accuracy', got {items!r:.60}")
    unknown = [item for item in items
               if not isinstance(item, str) or item.lower() not in ACCURACY_NAMES]
    if unknown:
        raise ValueError(f"unknown metric(s) {[str(item)[:40] for item in unknown][:4]}: dlcore "
                         f"reports accuracy (and each loss)")
    names = list(dict.fromkeys(item.lower() for item in items))
    if 0 < sum(is_elementwise_accuracy([name]) for name in names) < len(names):
        raise ValueError(f"metrics {names[:4]} mix binary_accuracy (each output a yes/no "
                         f"question) with the argmax accuracy: dlcore reports one accuracy per "
                         f"output, so ask for one of them")
    return names


def is_elementwise_accuracy(names):
    """Whether compile's metric ``names`` (one output's, from :func:`accuracy_names`) ask for
    Keras's ``binary_accuracy``: each output right or wrong against a 0.5 threshold."""
    return any(name.lower() == ELEMENTWISE_ACCURACY for name in names)


def logits_of(loss, fused):
    """The activation whose logits the outputs a ``loss`` reads are ("sigmoid", "softmax"),
    None for probabilities: those of its fused final activation, or of a ``from_logits``
    loss (see :func:`dlcore.losses.elementwise_correct`)."""
    return loss.fuses_with if fused or loss.from_logits else None


def accuracy_names(metrics, names):
    """Per output (``names``, in order), the names of the accuracy compile's ``metrics`` ask
    for (``[]``: none; see :func:`_accuracy_names`).

    ``metrics``: None, one name for every output (``["accuracy"]``: each output's accuracy, as
    tf.keras; Keras 3 refuses it), or per output as Keras 3 takes them: a list with one entry
    (None, a name or a list of names) per output, or a dict of them by output name. A model
    of one output takes them in any nesting of lists and dicts, all its own, as Keras 3
    flattens them (``{"dense": "acc"}``, ``[["acc"], ["accuracy"]]``). Keras 3 gives a flat
    list of one name per output each its own (``["acc", "binary_accuracy"]``: ``a_acc``,
    ``b_binary_accuracy``) and refuses a flat list of another length: so does dlcore, in one
    line (tf.keras gave every output every name; :func:`every_output` keeps that for its
    files)."""
    if metrics is None or isinstance(metrics, str):
        return [_accuracy_names(metrics)] * len(names)
    if len(names) == 1:
        return [_accuracy_names(_flattened(metrics))]
    if isinstance(metrics, dict):
        strangers = [str(key)[:40] for key in metrics if key not in names]
        if strangers:
            raise ValueError(f"metrics are given for {strangers[:4]}; the model's outputs are "
                             f"named {list(names)[:8]}")
        return [_accuracy_names(metrics.get(name)) for name in names]
    if not isinstance(metrics, (list, tuple)):
        raise ValueError(f"metrics must be a list of names (or one per output), got "
                         f"{type(metrics).__name__}")
    nested = any(item is None or isinstance(item, (list, tuple)) for item in metrics)
    if not nested and (len(names) < 2 or len(metrics) < 2):
        # one output's names, or one name for every output
        return [_accuracy_names(list(metrics))] * len(names)
    if len(metrics) != len(names):
        # the example needs two names: the first entries give them (not a scan of a list
        # that may hold a million), of the first one's kind, since an output reports one
        head = list(metrics[:64])
        distinct = [item for index, item in enumerate(head) if item not in head[:index]
                    and is_elementwise_accuracy([str(item)])
                    == is_elementwise_accuracy([str(head[0])])]
        example = "" if nested else (f", e.g. {[distinct[:2]] * min(len(names), 2)!s:.90}"
                                     f"{' ...' if len(names) > 2 else ''} for every name on "
                                     f"every output")
        count = "is 1 entry" if len(metrics) == 1 else f"are {len(metrics)} entries"
        raise ValueError(f"metrics {_shown(metrics)} {count} for "
                         f"{len(names)} outputs ({', '.join(map(str, names[:8]))}): Keras 3 "
                         f"takes one entry per output (a name or a list of names each"
                         f"{example}), a dict by output name, or one name for every output")
    return [_accuracy_names(item) for item in metrics]


def _flattened(metrics, deepest=16):
    """The names in compile's ``metrics`` for a model of one output, in Keras 3's order (it
    flattens them: a dict's entries by sorted key, lists in order; None skipped), however
    many; refused in one line when nested more than ``deepest`` lists deep (a list holding
    itself)."""
    names, pending = [], [(metrics, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, (dict, list, tuple)):
            if depth == deepest:
                raise ValueError(f"metrics are nested more than {deepest} deep (a list holding "
                                 f"itself?): give the names of the accuracy to report, e.g. "
                                 f"['accuracy']")
            values = [item[key] for key in sorted(item, key=str)] if isinstance(item, dict) \
                else item
            # last first off the stack: the names come out in order
            pending.extend((value, depth + 1) for value in reversed(values))
        elif item is not None:
            names.append(item)
    return names


def _shown(metrics):
    """compile's ``metrics`` as a bounded piece of a message (a list of 64 names is cut)."""
    text = repr(list(metrics)[:5])
    return text[:80] + (" ...]" if len(text) > 80 or len(metrics) > 5 else "")


def every_output(metrics, outputs):
    """tf.keras's reading of a flat list of metric ``metrics`` (every output every name) in
    the per-output form compile takes for a model of ``outputs`` outputs: a dlcore file or a
    tf.keras file that stored one list for all its outputs loads as it was written."""
    if outputs < 2 or not isinstance(metrics, (list, tuple)) or any(
            item is None or isinstance(item, (list, tuple)) for item in metrics):
        return metrics
    return [list(metrics) for _ in range(outputs)]


def accuracy_outputs(metrics, names):
    """Per output (``names``, in order), whether compile's ``metrics`` ask for its accuracy
    (see :func:`accuracy_names`)."""
    return [bool(asked) for asked in accuracy_names(metrics, names)]


def one_output(predicted):
    """What ``predict`` gives for a model of one output as that output's array, also where
    it is a dict of it by its key (a Keras model's dict output, ``{"score": ...}``)."""
    if isinstance(predicted, dict) and len(predicted) == 1:
        return next(iter(predicted.values()))
    return predicted


def by_name(values, names, what, name, keys=None):
    """A dict of arrays by name (Keras's way of giving several inputs or targets) as the list
    of them in the order of ``names`` (or by ``keys``, one per name: the keys of a Keras
    model's dict inputs or outputs, which its fit and predict take); one line naming the names
    when its keys differ."""
    if keys and len(keys) == len(names) and set(values) == set(keys):
        # by key first, as Keras's, also where a key is another input's name (Keras warns)
        return [values[key] for key in keys]
    if set(values) != set(names):
        # a Keras model's dict keys are what its user wrote: named first
        keyed = f"keyed {list(keys)} (named {list(names)})" if keys and \
            len(keys) == len(names) else f"named {list(names)}"
        raise ValueError(f"{name} is a dict with the keys {sorted(map(str, values))[:8]}; the "
                         f"model's {what} are {keyed}: give one array per name")
    return [values[key] for key in names]


def target_forms(y, several_outputs=False):
    """Per output, ``"labels"`` where ``y`` holds class labels ((n,) or (n, 1)) and ``"rows"``
    where it holds target rows (n, width): the form a model last trained on, which a Keras
    export names its cross-entropy after (Keras's ``categorical_crossentropy`` takes rows, its
    ``sparse_categorical_crossentropy`` labels; dlcore's cross-entropy takes both)."""
    items = y if several_outputs and isinstance(y, (list, tuple)) else [y]
    return tuple("labels" if np.ndim(item) == 1 or np.shape(item)[1:] == (1,) else "rows"
                 for item in items)


def check_labels_given(y, n, name="y"):
    """ValueError in one line when ``y`` is None (``fit(x, None)``): NumPy would read it as an
    array of no rows, and the error named a count of rows rather than the missing labels."""
    if y is None:
        raise ValueError(f"{name} is None: no labels were given for the {n} samples; pass "
                         f"their targets with them, e.g. model.fit(x, y) or "
                         f"model.evaluate(x, y) (one label or row per sample)")


def target_rows(y, n, width, dtype, name="y", shape=None, loss=None):
    """Targets as (n, width) rows of ``dtype``: integer class labels (n,) or (n, 1) become
    one-hot rows; for a single output, (n,) values are its targets (0/1 labels, smoothed
    labels, a regression's numbers, as Keras reads them); (n, width) rows are checked and
    kept; targets of the outputs' own per-sample ``shape`` (a U-Net's (1, H, W) masks, an
    autoencoder's images) become their rows. A shape of the same size but another layout
    (Keras's (H, W, 1)) is refused: its rows would be in another order. Strings, and for a
    binary cross-entropy ``loss`` targets outside [0, 1], are refused in one line."""
    check_labels_given(y, n, name)
    array = np.asarray(y)
    if array.shape[0:1] != (n,):
        raise ValueError(f"{name} has {array.shape[0] if array.ndim else 0} rows for {n} "
                         f"samples")
    array = _numeric_targets(array, name)
    targets = _target_rows(array, n, width, dtype, name, shape)
    if getattr(loss, "name", None) == "binary_cross_entropy" and targets.size and (
            targets.min() < 0 or targets.max() > 1):
        values = np.unique(array)
        shown = (f"the values {', '.join(f'{v:g}' for v in values[:4])}" if len(values) <= 4
                 else f"values in [{values[0]:g}, {values[-1]:g}]")
        fix = (f"map them to 0 and 1, e.g. y = (y == {values[-1]:g}).astype(int)"
               if len(values) == 2 else
               "scale them into [0, 1] (8-bit images: y / 255)" if values[0] >= 0
               and values[-1] <= 255 else "scale them into [0, 1]")
        raise ValueError(f"{name} holds {shown}; binary cross-entropy takes targets in [0, 1] "
                         f"(0/1 labels or probabilities): {fix}")
    return targets


def _numeric_targets(array, name):
    """``array`` as numbers: strings (labels read from a CSV file) and complex numbers refused
    in one line."""
    if array.dtype.kind in "US" or (array.dtype.kind == "O" and any(
            isinstance(item, (str, bytes)) for item in array.reshape(-1)[:1000])):
        raise ValueError(f"{name} holds strings: a network takes integer class labels "
                         f"0..k-1 (encode them with sklearn.preprocessing.LabelEncoder), or use "
                         f"dlcore.wrappers.SKLearnClassifier, which takes any labels")
    refuse_complex(array, name)
    if array.dtype.kind not in "biuf":
        try:
            return array.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must hold numbers, got {array.dtype}") from None
    return array


def _pixel_labels(labels, classes, dtype, name):
    """(n, H, W) class labels as (n, classes H W) one-hot rows of (classes, H, W) maps."""
    if not np.all(np.equal(np.mod(labels, 1), 0)) or labels.min() < 0 \
            or labels.max() >= classes:
        raise ValueError(f"{name} holds a label per pixel in [{labels.min():g}, "
                         f"{labels.max():g}]; the network's outputs have {classes} channels "
                         f"(integer labels 0..{classes - 1})")
    one_hot = np.eye(classes, dtype=dtype)[labels.astype(np.int64)]   # (n, H, W, classes)
    return np.ascontiguousarray(one_hot.transpose(0, 3, 1, 2)).reshape(len(labels), -1)


def _wrapped_labels_hint(labels):
    """Why unsigned labels may lie near their type's top: arithmetic wrapped around.

    The dataset loaders (like Keras's ``mnist.load_data``) give uint8 labels, on which
    ``y - 1`` turns 0 into 255 and ``-y`` turns 1 into 255, with no error from NumPy.
    """
    if not np.issubdtype(labels.dtype, np.unsignedinteger):
        return ""
    if labels.max() <= np.iinfo(labels.dtype).max // 2:
        return ""
    return (f": these labels are {labels.dtype}, whose arithmetic wraps around (0 - 1 gives "
            f"{np.iinfo(labels.dtype).max}); convert first, y = y.astype(np.int64)")


def _refuse_one_label_for_many_positions(name, shape):
    """One class label per sample cannot be the target of outputs at several positions (a
    Dense or a convolution on maps, or on sequences, answers at each pixel or step, as Keras's):
    ``shape`` the per-sample output shape, (C, H, W) or (T, F)."""
    if shape is None or len(shape) < 2:
        return
    shape = tuple(shape)
    classes = shape[0] if len(shape) == 3 else shape[-1]
    positions = math.prod(shape) // max(classes, 1)
    if positions > 1:
        raise ValueError(f"{name} holds one class label per sample, but the network answers at "
                         f"{positions} positions (its outputs are {shape} per sample: a Dense on "
                         f"maps or sequences acts on each pixel or step): put a Flatten() (or a "
                         f"global pooling) before the last Dense for one answer per sample")


def _target_rows(array, n, width, dtype, name, shape):
    if array.ndim > 2 and shape is not None:
        given, shape = tuple(array.shape[1:]), tuple(shape)
        if len(shape) == 3 and shape[0] > 1 and given in (shape[1:], shape[1:] + (1,)):
            # a class label per pixel (Keras's sparse targets of a segmentation net): one-hot
            # along the channels, as the per-pixel softmax reads them
            return _pixel_labels(array.reshape((n,) + shape[1:]), shape[0], dtype, name)
        if given != shape:
            channels_last = len(shape) == 3 and given == shape[1:] + shape[:1]
            raise ValueError(f"{name} has targets of shape {given}; the network's outputs are "
                             f"{shape}" + (": dlcore's images are channels first, transpose "
                                           "these NHWC targets with .transpose(0, 3, 1, 2)"
                                           if channels_last else ""))
        array = array.reshape(n, -1)
    if array.ndim == 1 and width == 1:   # one output: its targets, whatever the values
        array = array.reshape(n, 1)
    if array.ndim == 1 or (array.ndim == 2 and array.shape[1] == 1 and width > 1):
        _refuse_one_label_for_many_positions(name, shape)
        labels = array.reshape(-1)
        if not np.issubdtype(labels.dtype, np.integer):
            if not np.all(np.equal(np.mod(labels, 1), 0)):
                raise ValueError(f"{name} must hold integer class labels (or (n, {width}) "
                                 f"target rows)")
            labels = labels.astype(np.int64)
        if width == 1:
            return labels.reshape(n, 1).astype(dtype)
        if labels.min() < 0 or labels.max() >= width:
            raise ValueError(f"{name} holds class labels in [{labels.min()}, {labels.max()}]"
                             f"; the network has {width} outputs (labels 0..{width - 1})"
                             + _wrapped_labels_hint(labels))
        return np.eye(width, dtype=dtype)[labels]
    if array.ndim != 2 or array.shape[1] != width:
        raise ValueError(f"{name} must be (n,) integer labels or (n, {width}) targets, got "
                         f"shape {array.shape}")
    return as_finite(array, dtype, name, FLOAT64_NETWORK)


def held_out(n, validation_split):
    """How many of ``n`` samples ``validation_split`` holds out: Keras 3's
    ``n - floor(n (1 - validation_split))`` (keras/src/trainers/data_adapters/
    array_slicing.py), at least one sample for any split above 0 (``round(0.1 n)`` held out
    none of 5 samples, silently)."""
    return n - int(np.floor(n * (1.0 - validation_split)))


def split_validation(x, y, validation_split, seed, weights=None):
    """``(x_train, y_train, (x_valid, y_valid) or None)``: the fraction ``validation_split`` of
    the rows held out, chosen by Philox(seed, STREAM_SPLIT) (Keras takes the last rows; a
    class-sorted data set would then validate on one class); both parts keep the data's order.
    With sample ``weights`` (n,): ``(x_train, y_train, w_train, (x_valid, y_valid, w_valid)
    or None)``, the weights following their rows."""
    if weights is not None:
        x, y_and_w, validation = split_validation(
            x, np.concatenate([y, weights.astype(y.dtype)[:, None]], axis=1),
            validation_split, seed)
        if validation is not None:
            validation = (validation[0], validation[1][:, :-1],
                          validation[1][:, -1].astype(np.float64))
        return x, y_and_w[:, :-1], y_and_w[:, -1].astype(np.float64), validation
    validation_split = check_float(validation_split, "validation_split", low=0.0, high=1.0,
                                   high_open=True)
    if validation_split == 0:
        return x, y, None
    n_valid = held_out(len(x), validation_split)
    if n_valid == 0 or n_valid == len(x):
        raise ValueError(f"validation_split={validation_split} of {len(x)} samples leaves "
                         f"{'no training' if n_valid else 'no validation'} samples (Keras's "
                         f"rule holds out n - floor(n (1 - validation_split))): give more "
                         f"data, another validation_split, or validation_data")
    order = rng.permutation(len(x), seed, rng.STREAM_SPLIT, 0)
    train, valid = np.sort(order[n_valid:]), np.sort(order[:n_valid])
    return x[train], y[train], (x[valid], y[valid])


def _has_dropout(model):
    """Whether ``model`` (or a model nested in it) has a Dropout layer that drops units."""
    from dlcore.layers import Dropout
    return any((isinstance(layer, Dropout) and layer.rate > 0) or _has_dropout(layer)
               for layer in getattr(model, "layers", ()))


def called_once(layers, calls):
    """The ``layers`` that appear exactly once in ``calls`` (the layer of each call, in a
    model's running order)."""
    counts = collections.Counter(id(layer) for layer in calls)
    return [layer for layer in layers if counts[id(layer)] == 1]


def checked_validation_freq(validation_freq):
    """Keras's ``validation_freq`` checked: an int k >= 1 (validate after epochs k, 2k, ...,
    counted from 1) or a collection of epoch numbers counted from 1 (validate after those),
    as a frozenset; one line naming what it must be otherwise."""
    if isinstance(validation_freq, (int, np.integer)) and not isinstance(validation_freq, bool):
        return check_int(validation_freq, "validation_freq", minimum=1)
    if isinstance(validation_freq, (list, tuple, set, frozenset, range)) and all(
            isinstance(number, (int, np.integer)) and not isinstance(number, bool)
            and number >= 1 for number in validation_freq):
        return frozenset(int(number) for number in validation_freq)
    raise ValueError(f"fit's validation_freq must be an int k >= 1 (validate after epochs k, "
                     f"2k, ...) or a list of epoch numbers counted from 1 (validate after "
                     f"those), got {validation_freq!r:.60}")


def validates_after(epoch, validation_freq):
    """Whether fit validates after the epoch of index ``epoch`` (from 0, as the callbacks
    number it) for a :func:`checked_validation_freq` (Keras's rule, on the epoch counted from
    1)."""
    number = epoch + 1
    if isinstance(validation_freq, frozenset):
        return number in validation_freq
    return number % validation_freq == 0


def _close_progress_bars(callbacks):
    """End the share of its stream each :class:`ProgressBar` of ``callbacks`` holds for this
    fit (:meth:`ProgressBar.close_fit`): a fit that ended by an exception, where Keras calls
    no ``on_train_end``, otherwise stayed on the stream, and every later fit's lines there were
    named as if another fit reported beside it."""
    for callback in callbacks:
        if isinstance(callback, ProgressBar):
            callback.close_fit()


class TrainingLoop:
    """Keras' training methods for a model that offers the seam of the module docstring."""

    #: whether the epoch whose callbacks run now skipped the validation of its fit
    #: (``validation_freq``): the callbacks that watch a val_ number pass over it, as Keras's
    epoch_without_validation = False

    @property
    def metrics_names(self):
        """The names of the numbers :meth:`evaluate` returns, in order (Keras's): "loss", then
        the accuracy by the name compile was given (``accuracy``, ``acc``, ``binary_accuracy``
        ...); with several outputs "loss", each output's "<name>_loss", then
        "<name>_<metric>" (``<name>_accuracy``) of each output compiled with accuracy."""
        if not self._output_count():
            return ["loss"] + list(self.metrics)
        names = self._score_names()
        order = getattr(self, "output_loss_order", None) or range(len(names))
        return (["loss"] + [f"{names[index]}_loss" for index in order]
                + [f"{name}_{metric}"
                   for name, metrics in zip(names, self._output_metric_names())
                   for metric in metrics])

    def _score_names(self):
        """What each output's scores are named after: the output's name (Keras's
        ``output_names``), or the key of a Keras model's dict outputs (``keras_output_keys_``),
        as Keras names them for such a model (``score_loss``)."""
        keys = getattr(self, "keras_output_keys_", None)
        names = self.output_names
        return list(keys) if keys and len(keys) == len(names) else names

    def _accuracy_outputs(self):
        """Per output of a model with several, whether it reports its accuracy (compile's
        ``metrics``: one list for every output, or per output, as Keras)."""
        chosen = getattr(self, "output_metrics", None)
        return list(chosen) if chosen is not None else [bool(self.metrics)] * len(self.outputs)

    def _output_metric_names(self):
        """Per output of a model with several, the names of the accuracy it reports, as
        compile was given them for that output (Keras 3 logs ``a_acc`` and
        ``b_binary_accuracy`` for ``[["acc"], ["binary_accuracy"]]``); ``[]`` for none."""
        names = getattr(self, "output_metric_names", None)
        if names is not None:
            return [list(items) for items in names]
        # a model compiled before names were kept per output: every output's are the model's
        return [list(self.metrics) if chosen else [] for chosen in self._accuracy_outputs()]

    @property
    def trainable_parameters(self):
        """The parameters the optimiser updates: all of ``parameters`` unless a model with
        frozen layers says otherwise."""
        return self.parameters

    def _compiled_optimizer(self, optimizer):
        """The optimiser ``compile`` takes (:func:`dlcore.optimizers.get_optimizer`). One that
        is not the model's already starts from empty slots, as Keras's compile gives a new
        optimiser fresh variables: the parameters kept the last one's moments (which the new
        one, its count at 0, bias-corrected as a first step's) and a half-full gradient
        accumulator. Its count of batches starts at 0 with them: an optimiser object that
        trained another network (``model_kwargs={"optimizer": Adam(...)}`` of a wrapper fitted
        twice, one built in a model function's module) kept that network's count, so Adam
        bias-corrected the fresh zero moments as a late step's and a schedule went on where
        it was (a refit trained otherwise than the first fit)."""
        from dlcore.optimizers import get_optimizer
        chosen = get_optimizer(optimizer)
        if chosen is not getattr(self, "optimizer", None) or not self._owns_optimizer(chosen):
            for parameter in getattr(self, "_parameters", None) or ():
                parameter.slots.clear()
            chosen._iterations = 0
        # the optimiser's count is this network's from now on: a network compiled with it
        # before is refused at its next update (_check_own_optimizer), as Keras refuses it
        chosen._network_token = self._optimizer_token = object()
        return chosen

    def _owns_optimizer(self, optimizer):
        """Whether ``optimizer``'s step count is this network's: the last network compiled
        with it (a copy or a pickle of the network keeps it with its own copy)."""
        return getattr(optimizer, "_network_token", None) is \
            getattr(self, "_optimizer_token", None)

    def _check_own_optimizer(self):
        """ValueError in one line when another network was compiled with this network's
        optimiser object since: one object keeps one step count (Adam's bias correction, a
        schedule's position), which two networks training in turn would share. Keras refuses
        an optimiser called for variables it was not built with."""
        if getattr(self.optimizer, "_network_token", None) is None:   # set, not compiled
            self.optimizer._network_token = self._optimizer_token = object()
        if not self._owns_optimizer(self.optimizer):
            name = type(self.optimizer).__name__
            raise ValueError(f"this network's {name} optimizer was compiled into another "
                             f"network since, and one optimizer keeps one network's step "
                             f"count: give each network its own (compile(optimizer="
                             f"{name}(...)) for each), as Keras asks")

    def _reset_training(self):
        """The training state of a new model: no history, no epochs or updates done."""
        self.history = {}
        self.epochs_done = 0
        self.n_updates = 0
        self.stop_training = False
        self.callback_state = {}
        self._resume_callback_state = False

    def continue_callback_state(self, callback_state):
        """Keep ``callback_state`` ({callback class name: its get_state()}, e.g. from a model
        file) for the next ``fit``, which continues it in its callbacks of the same kind and
        monitor (see :meth:`_resume_callbacks`); that fit resumes a run even when the state is
        empty (a best-only checkpoint continues from the loaded history)."""
        self.callback_state = callback_state
        self._resume_callback_state = True

    # -- inputs -------------------------------------------------------------------------
    def _checked_inputs(self, x, name="x"):
        """``x`` checked against the model's input shape (dlcore.validation.check_batch) as a
        NumPy array of the model's dtype; an unbuilt model is built from it. A list of one
        array is that array (Keras takes ``model.predict([x])`` too)."""
        if isinstance(x, (list, tuple)) and len(x) == 1 and isinstance(x[0], np.ndarray) \
                and x[0].ndim >= 2:   # not a list holding one sample's numbers
            x = x[0]
        if isinstance(x, dict):
            raise TypeError(f"{name} is a dict: a model with one input takes one array")
        # an unbuilt model is checked in the type it will be built in: a float64 one takes
        # values beyond float32's range (a model of the seam without layers: float32)
        array = check_batch(x, name, self.input_shape, self.dtype if self.built
                            else declared_float_type(getattr(self, "layers", ())))
        if not self.built:
            self.build(array.shape[1:])
        return array

    def _target_rows(self, y, n, name="y"):
        return target_rows(y, n, int(np.prod(self.output_shape)), self.dtype, name,
                           self.output_shape, self.loss)

    def _validation(self, x, y, weights, validation_split, validation_data):
        """``(x, y, weights, validation)`` where validation is ``(x_val, target rows,
        weights or None)`` or None."""
        if validation_data is None:
            if weights is not None:
                return split_validation(x, y, validation_split, self.seed, weights)
            x, y, validation = split_validation(x, y, validation_split, self.seed)
            return x, y, None, None if validation is None else (*validation, None)
        if len(validation_data) not in (2, 3):
            raise ValueError("validation_data must be (x_val, y_val) or (x_val, y_val, "
                             "sample_weight_val)")
        x_val = self._checked_inputs(validation_data[0], "validation_data x")
        weights_val = None
        if len(validation_data) == 3:
            weights_val = sample_weights(None, len(x_val), validation_data[2], None)
        y_val = self._targets_in_order(validation_data[1], "validation_data y")
        return x, y, weights, (x_val, self._target_rows(y_val, len(x_val), "validation_data y"),
                               weights_val)

    # -- fit ----------------------------------------------------------------------------
    @one_call_at_a_time
    def fit(self, x, y=None, batch_size=None, epochs=1, verbose=1, callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=None, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1, adversarial=0.0,
            adversarial_weight=0.5, comm=None, sync_every=1):
        """Train for ``epochs`` passes over (x, y) by mini-batch back-propagation. The
        parameters are Keras', in Keras' order (lecture "Deep learning I", "Model.fit()
        parameters"), then dlcore's adversarial training.

        Parameters
        ----------
        x : (n, *input_shape) array, e.g. (n, 1, 28, 28) float32 images or (n, 784) rows,
            or :class:`dlcore.lazy_rows.LazyRows` read a batch at a time. A stream of batches
            (Keras's generator, PyDataset or tf.data, a PyTorch DataLoader) is refused in one
            line: an epoch here is a seeded permutation of all n rows
        y : (n,) integer class labels, or (n, outputs) targets (None, the default in Keras's
            signature, is refused in one line: dlcore's networks learn from targets)
        batch_size : int, 32 when None (as Keras)
        epochs : int; with ``initial_epoch`` (Keras' resuming convention) the index of the last
            epoch: ``epochs - initial_epoch`` passes run
        initial_epoch : int >= 0 or None. An int is Keras's index of the first epoch: the
            callbacks, History.epoch and the progress bar number this fit's epochs
            ``initial_epoch``, ``initial_epoch + 1``, ... (Keras's ``epoch`` arguments), and a
            model that has trained fewer epochs (a new one, one loaded from a Keras file) has
            its ``epochs_done`` (and so the batch order of each epoch) moved on to it; the
            count of one that has trained more goes on. None (the default): the epochs are
            numbered from the model's own count, ``epochs_done``, over its life, so a second
            ``fit(epochs=3)`` numbers them 3, 4, 5 where Keras starts again at 0
        validation_split : float in [0, 1), the fraction of (x, y) held out for validation,
            chosen by a seeded permutation (Keras takes the last rows instead; a class-sorted
            data set would then validate on one class)
        validation_data : (x_val, y_val) or (x_val, y_val, sample_weight_val) arrays, used
            instead of ``validation_split`` (a stream of batches is refused, as x)
        shuffle : True (a new seeded order of the rows every epoch), False, or Keras's
            "batch": the batches stay runs of consecutive rows and only their order is drawn
            (the short last batch last), for data read from a file (lazy rows)
        callbacks : list of :class:`dlcore.callbacks.Callback` (or one, as Keras 3 takes it);
            the first fit of a loaded network continues the file's early-stopping state in an
            ``EarlyStopping`` of the same monitor (as ``dlcore`` commands do with --resume)
        verbose : 1 or "auto" shows a progress bar per epoch on stderr (on a terminal or in a
            Jupyter notebook) and the epoch's line, 2 the epoch's line alone, 0 nothing
            (Keras's values; others refused)
        class_weight : dict {class index: weight} or None: each training sample's loss (and
            gradient) weighted by its class's weight, 1 for a class left out (Keras's rule; the
            class of a target row is its argmax); the validation loss is not weighted by class
            (Keras's: only a ``validation_data`` triple's own weights weigh it)
        sample_weight : (n,) weights >= 0 or None: each sample's loss weighted, the batch's
            loss the sum of the weighted losses over the batch size (Keras's reduction); the
            validation rows keep theirs (``validation_data`` may be a triple with weights)
        steps_per_epoch, validation_steps : None only (Keras has them; dlcore runs whole epochs
            over arrays): any other value is refused in one line
        validation_batch_size : int, the batch size of validation (None: the larger of
            ``batch_size`` and 256; only the speed differs)
        validation_freq : int k >= 1 or a list of epoch numbers, Keras's: with validation data,
            validate after epochs k, 2k, ... (1, the default: every epoch), or after the epochs
            listed, counted from 1 as the callbacks number them plus one (from
            ``initial_epoch``, else over the model's life). The returned History has the val_
            numbers of those epochs only, as Keras's; the model's own ``history`` NaN for the
            others, so that its lists stay one number an epoch. On an epoch without them,
            ``EarlyStopping`` and ``ReduceLROnPlateau`` watching a val_ number pass over it (no
            count of waiting epochs, no cooldown step), as Keras's do, and a ``ModelCheckpoint``
            saving the best only does not save (Keras 3 saves, replacing the best epoch's file
            with one never validated)
        adversarial : float >= 0, epsilon of adversarial training (Goodfellow et al. 2015; see
            :mod:`dlcore.adversarial`): each batch also trains on its fast-gradient-sign
            examples, clipped to the range of x; 0 (default): off
        adversarial_weight : float in [0, 1], a in a J(x) + (1 - a) J(x_adv)
        comm : dlcore.distributed.Communicator, optional: train data-parallel over its ranks
            (:mod:`dlcore.distributed.network`), each back-propagating its shard of every
            global batch; every rank calls ``fit`` with the same data and ends with the
            weights of one process, up to the order of floating-point sums
        sync_every : int >= 1, with ``comm``: local optimiser steps between two all-reduces.
            1 (the default) is the exact path above; K > 1 is local SGD: each rank steps its
            own optimiser on its shards, and every parameter and optimiser slot (momentum,
            Adam's moments) is averaged over the ranks every K steps and at the end of every
            epoch (:mod:`dlcore.distributed.local_sgd`): K times fewer all-reduces, weights
            that are no longer one process's

        Returns
        -------
        :class:`dlcore.callbacks.History`; its ``history`` holds this call's epochs of the
        loss and metrics, as Keras's (the network's own ``history`` all of them, with the
        learning rate and the seconds).

        Notes
        -----
        Interrupted (Ctrl-C, a notebook's Interrupt button: ``KeyboardInterrupt``), the
        network stays as its last finished epoch left it (weights, optimiser state,
        ``epochs_done``, ``history``; Keras keeps the last finished batch's weights instead),
        and ``fit(x, y, epochs=remaining)`` goes on from there as the uninterrupted fit would.
        """
        self.check_compiled()
        refuse_batch_stream(x, "fit")
        refuse_packed_targets(self, x, y, "fit")
        if callbacks is not None and not isinstance(callbacks, (list, tuple)):
            callbacks = [callbacks]   # Keras 3 flattens callbacks=EarlyStopping() into a list
        if validation_data is not None:
            refuse_batch_stream(validation_data, "fit", "validation_data")
        comm = periodic(comm, sync_every)
        check_keras_fit_options(steps_per_epoch, validation_steps)
        check_verbose(verbose)
        batch_shuffle = isinstance(shuffle, str) and shuffle == "batch"
        if not (isinstance(shuffle, (bool, np.bool_)) or batch_shuffle):
            raise ValueError(f"shuffle must be True, False or 'batch' (as Keras), got "
                             f"{as_typed(shuffle)}")
        self._validation_freq = checked_validation_freq(validation_freq)
        self._validation_batch_size = (None if validation_batch_size is None else check_int(
            validation_batch_size, "validation_batch_size", minimum=1))
        if initial_epoch is not None:
            initial_epoch = check_int(initial_epoch, "initial_epoch", minimum=0)
        # Keras's fit ends by finalising the optimiser's variables whenever it is asked for
        # epochs, those initial_epoch or a backup leave to run none included
        epochs = check_int(epochs, "epochs", minimum=0)
        finalizes = epochs > 0
        epochs = max(epochs - (initial_epoch or 0), 0)
        batch_size = check_int(32 if batch_size is None else batch_size, "batch_size",
                               minimum=1)
        warn_of_unscaled_pixels(self, x)
        x = self._checked_inputs(x)
        self._check_own_optimizer()
        self.optimizer.build(self.parameters, self.backend)
        # the epochs done when the first epoch of this fit starts (Keras's initial_epoch may
        # move it on): the fit ends with first_epoch_done + epochs of them
        first_epoch_done = self.epochs_done if not (epochs and initial_epoch is not None) \
            else max(self.epochs_done, initial_epoch)
        # this fit's BackupAndRestore once it holds its folder, and the owner of that lock:
        # a fit refused inside it (a callback fitting the network again) frees nothing of it
        held = []
        # this call of fit, whose model and params its callbacks see in its thread until it
        # ends (dlcore.callbacks.Callback)
        fit = object()
        try:   # the backup's folder is this fit's until it ends, however it ends
            epochs, first_epoch_done = self._restore_backup(callbacks, first_epoch_done,
                                                            epochs, comm, held)
            if epochs and self.parameters and not self.trainable_parameters:
                # Keras says the same, and trains on: a frozen model still reports its loss
                warnings.warn("the model does not have any trainable weights: every layer is "
                              "frozen (trainable=False), so fit leaves the weights as they are; "
                              "set trainable = True on the layers to train",
                              stacklevel=stacklevel_outside_dlcore())
            y = self._targets_in_order(y)
            weights = sample_weights(y, len(x), sample_weight, class_weight)
            self.target_forms_ = target_forms(y, getattr(self, "_several_outputs", False))
            y = self._target_rows(y, len(x))
            x, y, weights, validation = self._validation(x, y, weights, validation_split,
                                                         validation_data)
            if class_weight is not None and validation is not None and validation_data is None:
                # Keras weighs the training rows alone by class: the held-out rows' loss is
                # the plain one (a validation_data triple's own weights still weigh theirs)
                validation = (*validation[:2], None)
            n = len(x)
            adversary = self._adversary_of(adversarial, adversarial_weight, x)
            if weights is not None and (adversary is not None or comm is not None):
                raise ValueError("sample and class weights are not taken with adversarial "
                                 "training or a data-parallel fit (comm): weigh by resampling "
                                 "the rows there")
            data_parallel = None
            if comm is not None:
                from dlcore.distributed.network import data_parallel as data_parallel_of
                data_parallel = data_parallel_of(
                    self, comm, x, y, {"batch_size": batch_size, "epochs": epochs,
                                       "shuffle": shuffle, "initial_epoch": initial_epoch},
                    validation)
            record_fit(self, x, keep_command_record=True, epochs=epochs, batch_size=batch_size,
                       validation_split=validation_split,
                       validation_data=validation_data is not None, shuffle=bool(shuffle),
                       **({} if weights is None else {"sample_weights": True}),
                       **({} if adversary is None else {"adversarial": adversary.epsilon,
                                                        "adversarial_weight": adversary.weight}))
            if epochs and initial_epoch is not None:
                # Keras's resuming convention: the first epoch's index is initial_epoch
                # (History.epoch [2, 3] for fit(epochs=4, initial_epoch=2) on a new model).
                # dlcore's own count, which seeds each epoch's batch order, never goes back: a
                # model trained further keeps it, and only the numbers the callbacks see start
                # at initial_epoch
                self.epochs_done = max(self.epochs_done, initial_epoch)
            self._epoch_offset = 0 if initial_epoch is None else initial_epoch - first_epoch_done
            history = History()
            callbacks = self._callbacks(history, callbacks, -(-n // batch_size),
                                        self.epochs_done + self._epoch_offset + epochs, verbose,
                                        fit)
            if data_parallel is not None:   # their decisions must be every rank's
                data_parallel.check_callbacks(callbacks)
            self.stop_training = False
            backend = self.backend
            data, targets, weights, buffers = self._batch_arrays(x, y, weights, batch_size)
            try:
                for callback in callbacks:
                    callback.on_train_begin({})   # Keras's: an empty dict, given by position
            except BaseException:   # one begun before the one that failed holds its stream
                _close_progress_bars(callbacks)
                raise
            # An epoch that diverges (dlcore.errors) or is interrupted (Ctrl-C) leaves the network
            # as the last finished epoch left it, optimiser state and counters included.
            rate = self.optimizer.current_learning_rate()
            # the optimisers' decoupled decay multiplies the weights by 1 - eta lambda
            divergence = DivergenceCheck("loss", rate, self.history.get("loss", ()),
                                         decay=decay_diverges(
                                             rate, getattr(self.optimizer, "weight_decay", None),
                                             option="the optimizer's weight_decay= argument"))
            last_good = self._training_snapshot()
            self._adversary = adversary
            self._data_parallel = data_parallel
            self._batch_penalty = BatchPenalty.of(self)
            ending_epoch = False
            logs = {}
            try:
                with backend.compute(small_products=True):
                    for _ in range(epochs):
                        epoch, logs = self._fit_epoch(data, targets, weights, x.shape[1:], buffers,
                                                      batch_size, shuffle, callbacks, divergence,
                                                      validation)
                        ending_epoch = True
                        self._end_epoch(callbacks, epoch, logs)
                        ending_epoch = False
                        last_good = self._training_snapshot()
                        if self.stop_training:
                            break
            except Exception:
                # A callback that fails at an epoch's end (a ModelCheckpoint that cannot write)
                # comes after the epoch was trained, checked and recorded: the epoch is kept, as
                # Keras keeps it, and only an error during the epoch puts back the last one
                if not ending_epoch:
                    self._restore_snapshot(last_good)
                raise
            except BaseException:
                # Ctrl-C (SIGTERM, SIGHUP) at any point, its callbacks' included, puts back the
                # last epoch whose callbacks all ran: a checkpoint of it resumes exactly
                self._restore_snapshot(last_good)
                raise
            finally:
                self._adversary = self._data_parallel = self._batch_penalty = None
                self.epoch_without_validation = False
                _close_progress_bars(callbacks)   # the stream a bar held, however it ends
                if data_parallel is not None:
                    data_parallel.finish()
            if finalizes:
                # Keras's fit ends so: with use_ema the weights take their moving averages
                self.optimizer.finalize_variable_values(self.trainable_parameters)
            for callback in callbacks:
                callback.on_train_end(dict(logs))   # the last epoch's, as Keras's
            started = vars(self).get("_backup_fit_started")
            if started is not None:
                # ended, its backup deleted: a fit run again is another. A backup kept
                # (delete_checkpoint=False, an Ensemble's members') still names this fit: run
                # again, it has nothing left to train, as on a new network
                if started[2]:
                    self._backup_fit_started = (*started[:3], True)
                else:
                    del self._backup_fit_started
            return history
        finally:
            self._release_backup(held)
            forget_fit_settings(fit)

    def _restore_backup(self, callbacks, first_epoch_done, epochs, comm=None, held=None):
        """Put the training state of a :class:`dlcore.callbacks.BackupAndRestore` among
        ``callbacks`` into the network when its backup exists (before the validation split,
        which the seed draws, and before the callbacks are given their saved state), and
        return how many of the fit's ``epochs`` (its passes from ``first_epoch_done``) are
        left, and the epochs done when the fit began: Keras's resumed fit runs the epochs from
        the backup's to ``epochs``. Run again on the network that the interrupted fit left
        (a notebook's cell run again after a Ctrl-C: the network is at the backup's epoch
        already), the fit began where the interrupted one did (``_backup_fit_started``: the
        folder, the epochs done as that fit began, whether its backup outlives it and whether
        it ended; kept until a fit with the backup ends and deletes it), so it ends as the
        uninterrupted one, not ``epochs`` further."""
        for callback in callbacks or ():   # refused before the backup changes the network
            if not isinstance(callback, Callback):
                raise TypeError(foreign_callback(callback))
        backups = [callback for callback in callbacks or ()
                   if isinstance(callback, BackupAndRestore)]
        if len(backups) > 1:
            raise ValueError("fit takes one BackupAndRestore callback, got "
                             f"{len(backups)}: the backups would restore different epochs")
        if backups:   # rank 0 alone writes it in a data-parallel fit
            backups[0]._writes = comm is None or comm.is_root
        elif comm is None:
            return epochs, first_epoch_done
        if backups:
            folder = os.path.realpath(backups[0].backup_dir)
            # its folder held until the fit ends: fit's clean-up (_release_backup) frees
            # what the callback holds for this fit (``held``, its owner), whatever the point a
            # Ctrl-C lands at
            held = [] if held is None else held
            held.append(backups[0])
            if comm is None:   # in a data-parallel fit, rank 0 holds it within the
                # collective (restore_backup)
                backups[0]._check_backup_dir()
                backups[0].hold(owner=held)
            interrupted = vars(self).get("_backup_fit_started")
        if comm is not None:
            # rank 0 restores, every rank takes its state: read on each rank's own disk, a
            # rank that found no backup (node-local storage) trained other epochs than the
            # others (one collective on every rank, with the callback or without)
            from dlcore.distributed.network import restore_backup
            restored = restore_backup(self, backups[0] if backups else None, comm, owner=held)
        else:
            restored = backups[0]._restore_into(self)
        if restored:
            if self.epochs_done < first_epoch_done:
                raise ValueError(f"BackupAndRestore's backup {backups[0].path} holds "
                                 f"{count(self.epochs_done, 'epoch')} of training, but "
                                 f"this fit starts after {first_epoch_done}: it is a "
                                 "backup of an earlier run; delete it, or give this run a "
                                 "backup_dir of its own")
            if interrupted is not None and interrupted[0] == folder and \
                    interrupted[1] <= first_epoch_done:
                first_epoch_done = interrupted[1]
        if backups:
            self._backup_fit_started = (folder, first_epoch_done,
                                        not backups[0].delete_checkpoint, False)
        if not restored:
            return epochs, first_epoch_done
        return max(first_epoch_done + epochs - self.epochs_done, 0), first_epoch_done

    def _release_backup(self, held):
        """Free the folder of the fit's :class:`dlcore.callbacks.BackupAndRestore` as the fit
        ends, however it ends (an error in its arguments after the backup was restored, a
        failing callback, Ctrl-C): the callback holds the folder from the fit's start, and a
        fit run again in the same session (a notebook) would otherwise find it held by the one
        that failed. ``held`` (what :meth:`_restore_backup` was given) owns the lock: a fit
        refused inside this one, on the same network, frees nothing of it."""
        for backup in held:
            backup.release(owner=held)

    def _adversary_of(self, epsilon, weight, x):
        """The :class:`dlcore.adversarial.AdversarialTraining` of ``fit``'s options (None when
        epsilon is 0), its examples clipped to the range of the training inputs x."""
        from dlcore.adversarial import AdversarialTraining, refuse_augmentation
        epsilon = check_float(epsilon, "adversarial", low=0.0)
        weight = check_float(weight, "adversarial_weight", low=0.0, high=1.0)
        if epsilon == 0:
            return None
        refuse_augmentation(self)
        return AdversarialTraining(epsilon, weight, float(x.min()), float(x.max()))

    def _callbacks(self, history, callbacks, n_batches, last_epoch, verbose, fit):
        """The caller's callbacks, History and the progress bar, each given the model and
        Keras's ``params`` (epochs, steps per epoch, verbose) as those of ``fit`` (a token of
        this call of fit: :func:`dlcore.callbacks.giving_fit_settings`). History after the
        caller's, as Keras adds it: it then keeps the ``learning_rate`` an LR callback writes
        into the epoch's logs."""
        callbacks = list(callbacks or []) + [history]
        if verbose:   # Keras's 2: one line an epoch, no bar
            callbacks.append(ProgressBar(n_batches, last_epoch, bar=verbose != 2))
        # checkpoints last: the file of an epoch then holds the other callbacks' state of it
        callbacks.sort(key=lambda callback: getattr(callback, "saves_model", False))
        for callback in callbacks:
            if not isinstance(callback, Callback):
                raise TypeError(foreign_callback(callback))
            # this fit's own in its thread: another thread's fit given the same callback
            # gives it its own (Callback.model)
            with giving_fit_settings(fit):
                callback.set_model(self)
                callback.set_params({"verbose": verbose, "epochs": last_epoch,
                                     "steps": n_batches})
        self._resume_callbacks(callbacks)
        return callbacks

    def _resume_callbacks(self, callbacks):
        """After the model's ``set_state`` (a loaded checkpoint), hand the saved state of each
        of :data:`RESUMED_CALLBACKS` to the first callback of its class in ``callbacks`` that
        monitors the same quantity and was not given one with its own ``set_state``: the
        resumed fit then stops, restores the best weights and reduces the learning rate as
        the uninterrupted one would; and a :class:`ModelCheckpoint` that saves the best epochs
        only starts from the best of the loaded history, so that its file is not replaced by
        a worse epoch. Only the first fit after loading."""
        if not self._resume_callback_state:
            return
        self._resume_callback_state = False
        for callback in callbacks:
            if isinstance(callback, ModelCheckpoint):
                callback.continue_from_history(self.history)
        for callback_class in RESUMED_CALLBACKS:
            saved = self.callback_state.get(callback_class.__name__)
            for callback in callbacks:
                if (isinstance(callback, callback_class) and saved is not None
                        and not callback._resumed
                        and callback.monitor == saved.get("monitor")):
                    callback.set_state(saved)
                    break

    def _fit_epoch(self, data, targets, weights, sample_shape, buffers, batch_size, shuffle,
                   callbacks, divergence, validation):
        """One epoch of ``fit`` up to its end: the callbacks' ``on_epoch_begin``, the updates,
        the divergence check, validation and the history; returns Keras's index of the epoch
        and its logs, for :meth:`_end_epoch`."""
        # Keras's index of the epoch: from initial_epoch when given, else over the model's life
        epoch = self.epochs_done + self._epoch_offset
        for callback in callbacks:
            callback.on_epoch_begin(epoch, {})
        started = time.perf_counter()
        rate = self.optimizer.current_learning_rate()
        logs = self._train_epoch(data, targets, weights, sample_shape, buffers, batch_size,
                                 shuffle, callbacks, divergence)
        seconds = time.perf_counter() - started
        divergence.check(self.epochs_done + 1, logs["loss"], self.get_weights())
        self.epoch_without_validation = validation is not None and not validates_after(
            epoch, self._validation_freq)
        # the model's own record keeps one number an epoch under every name
        skipped = {f"val_{name}": math.nan for name in logs} \
            if self.epoch_without_validation else {}
        if validation is not None and not self.epoch_without_validation:
            x_valid, y_valid, weights_valid = validation
            found = self._evaluate_arrays(
                x_valid, y_valid,
                self._validation_batch_size or max(batch_size, 256),
                weights_valid, callbacks)
            logs.update({f"val_{name}": value for name, value in found.items()})
        self.epochs_done += 1
        # the model's own record keeps dlcore's rate and duration of the epoch too; the logs
        # the callbacks get hold Keras's numbers (an LR callback adds learning_rate, as Keras's)
        self._record({**logs, **skipped, "learning_rate": rate, "seconds": seconds})
        return epoch, logs

    def _end_epoch(self, callbacks, epoch, logs):
        """The callbacks' ``on_epoch_end`` of a trained and recorded epoch, in order, and
        ``callback_state``, what resuming needs of each callback: kept up to date as they run
        so that a checkpointing callback saves this epoch's. One that raises does not keep the
        callbacks after it from ending the epoch: the epoch stays trained (as in Keras 3), so
        every callback's state, saved and resumed, is that of the same epoch; the first error
        is then raised (a later one is a warning)."""
        self.callback_state = {}
        failure = None
        for callback in callbacks:
            try:
                callback.on_epoch_end(epoch, logs)
            except Exception as error:
                if failure is not None:
                    warnings.warn(f"{type(callback).__name__}.on_epoch_end failed too: "
                                  f"{error}", RuntimeWarning, stacklevel=2)
                failure = failure or error
            if callable(getattr(callback, "get_state", None)):
                self.callback_state[type(callback).__name__] = callback.get_state()
        if failure is not None:
            raise failure

    def _train_epoch(self, data, targets, weights, sample_shape, buffers, batch_size, shuffle,
                     callbacks, divergence=None):
        """The updates of one pass over (data, targets), each sample's loss weighted by
        ``weights`` (n, 1) when given; returns the epoch's logs (the loss with the weight-decay
        penalty, and the metrics). A training's first batch gives ``divergence``
        (:class:`dlcore.errors.DivergenceCheck`) its loss before the update, what the first
        epoch is measured from; not over MPI ranks, whose first batches differ, so that
        every rank stops alike."""
        totals = self._new_totals()
        order = epoch_order(data.shape[0], self.seed, self.epochs_done, shuffle, batch_size)
        data_parallel = getattr(self, "_data_parallel", None)
        steps = self._product_steps()
        # the logs of every batch for a callback that overrides a batch hook (Keras's); the
        # others get those of the reporting batches: each log reads the sums off the device
        every_batch = [callback.wants_every_batch_logs() for callback in callbacks]
        for batch in mini_batches(self.backend, (data, targets, weights),
                                  (buffers.x, buffers.y, buffers.w), order, batch_size,
                                  shard=data_parallel and data_parallel.comm.shard):
            for callback in callbacks:
                callback.on_train_batch_begin(batch.index, {})
            x, y, w = batch.arrays
            data_parallel = getattr(self, "_data_parallel", None)
            if data_parallel is not None:   # this rank's rows of the global batch
                x, y = data_parallel.shard(x, y)
            n = x.shape[0]
            self._train_step(x.reshape((n,) + tuple(sample_shape)), y, buffers.loss_rows(n),
                             totals, steps, w)
            logs = self._logs(totals) if batch.reports or any(every_batch) else None
            if batch.index == 0 and divergence is not None and divergence.best == math.inf \
                    and data_parallel is None:
                self._first_batch_baseline(divergence, (logs or self._logs(totals))["loss"],
                                           weights, order[:n])
            for callback, every in zip(callbacks, every_batch):
                callback.on_train_batch_end(batch.index, logs if every or batch.reports
                                            else None)
        if getattr(self, "_data_parallel", None) is not None:
            self._data_parallel.sum_totals(totals)
        return self._logs(totals)

    def _first_batch_baseline(self, divergence, loss, weights, rows):
        """Give ``divergence`` the first batch's ``loss`` (on the rows ``rows``) as the
        first epoch's measure, on the scale of the epoch's: a weighted loss sums each row's
        weight times its loss, so a first batch of rows weighed 1e-4 (``sample_weight``, or a
        ``class_weight`` of the classes it holds) gave a baseline 1e4 times too small, and a
        sane first epoch was stopped as diverged. ``weights``: the backend's (n, 1) weights of
        every row, or None. A first batch of weight 0 gives no baseline."""
        if weights is not None:
            weights = np.asarray(self.backend.to_numpy(weights), dtype=np.float64).ravel()
            batch_weight, epoch_weight = weights[rows].mean(), weights.mean()
            if not batch_weight > 0:
                return
            loss = loss * epoch_weight / batch_weight
        divergence.starts_at(loss)

    def _train_step(self, x, targets, rows, totals, steps=None, weights=None):
        """One update (lecture "Supervised learning": forward, loss, back-propagation, then the
        optimiser step); the batch's sums go into ``totals``, its cost included: the loss
        plus the weight-decay term of the weights before the update (:class:`BatchPenalty`,
        as Keras's ``fit`` reports it). In adversarial training the gradient is that of the
        clean and the adversarial batch, weighted.

        ``steps`` (:meth:`_product_steps`, default: found here) lets the optimiser update a
        layer's weights during its backward pass, straight from their gradient's product
        (:meth:`dlcore.optimizers.Optimizer.product_step`): the same update, without writing
        the gradient and reading it back."""
        adversary = getattr(self, "_adversary", None)
        data_parallel = getattr(self, "_data_parallel", None)
        penalty = getattr(self, "_batch_penalty", None)
        if penalty is not None and x.shape[0]:
            # before the forward pass: a product step updates weights during the backward pass
            penalty.add(x.shape[0], totals)
        if adversary is not None and (x.shape[0] or data_parallel is None):
            adversary.update_gradients(self, x, targets, rows, totals)
        elif x.shape[0] or data_parallel is None:   # a rank's shard may hold no row
            steps = self._product_steps() if steps is None else steps
            for layer, layer_steps in steps:
                layer.product_steps = layer_steps
            try:
                # weights only when given: a model class of the seam may not weigh samples
                self.loss_rows(x, targets, rows, training=True, step=self.n_updates,
                               gradient=True, **({} if weights is None else
                                                 {"weights": weights}))
            finally:
                for layer, _ in steps:
                    del layer.product_steps
            self._accumulate(rows, totals)
        if data_parallel is not None:
            data_parallel.sum_gradients(x.shape[0])
        self.optimizer.apply(self.trainable_parameters)
        self.n_updates += 1

    def _product_steps(self):
        """``[(layer, {weight name: step})]``: the optimiser's :meth:`product_step` for each
        weight of a layer that :meth:`_product_step_layers` names, where it has one. Empty when
        the gradients must exist before the update: a data-parallel fit sums them across ranks
        first, adversarial training sums two batches'."""
        if getattr(self, "_data_parallel", None) is not None \
                or getattr(self, "_adversary", None) is not None:
            return []
        by_key = {parameter.key: parameter for parameter in self.trainable_parameters}
        found = []
        for layer in self._product_step_layers():
            layer_steps = {}
            for name in getattr(layer, "weight_names", ()):
                parameter = by_key.get(f"{layer.name}/{name}")
                step = None if parameter is None else self.optimizer.product_step(parameter)
                if step is not None:
                    layer_steps[name] = step
            if layer_steps:
                found.append((layer, layer_steps))
        return found

    def _product_step_layers(self):
        """The layers whose weights the optimiser may update in their backward pass: none by
        default (a model class lists those called at one place only, since a shared layer's
        gradient is the sum over its calls)."""
        return ()

    def _weigh(self, values, weights, columns=None):
        """values (n, k) *= weights (n, 1), row by row, in place; only the first ``columns``
        of each row when given (the losses of :attr:`LossRows.parts`, not its correct
        flags)."""
        columns = values.shape[1] if columns is None else columns
        if not self.backend.launches_kernels:
            values[:, :columns] *= weights
            return
        self.backend.launch_rows(weigh_rows, values.shape[0], columns, values, weights)

    def _targets_in_order(self, y, name="y"):
        """``y`` as the model takes it: a dict of targets by output name (Keras's way) as the
        list of them in the order of the outputs; anything else as it is."""
        if not isinstance(y, dict):
            return y
        keys = getattr(self, "keras_output_keys_", None)
        if not self._output_count():
            if keys and len(keys) == 1:
                # a Keras model of one output given as a dict: Keras's fit takes {key: y}
                return by_name(y, self.output_names, "outputs", name, keys)[0]
            raise ValueError(f"{name} is a dict: a model with one output takes its targets as "
                             f"one array")
        return by_name(y, self.output_names, "outputs", name, keys)

    def _output_count(self):
        """How many outputs report a loss of their own: a model's with several, else 0."""
        return len(self.outputs) if getattr(self, "_several_outputs", False) else 0

    def _new_totals(self):
        """Zeroed sums: (loss, correct flags, rows), then each output's own loss and each
        output's correct flags."""
        return self.backend.zeros((3 + 2 * self._output_count(),), np.float64)

    def _accumulate(self, rows, totals):
        """totals += (sum of the losses, sum of the correct flags, number of rows), and each
        output's own losses and correct flags when ``rows`` has them."""
        if not self.backend.launches_kernels:
            totals[:3] += (rows.loss.sum(dtype=np.float64), rows.correct.sum(dtype=np.float64),
                           rows.loss.shape[0])
            if rows.parts is not None and totals.shape[0] > 3:
                totals[3:] += rows.parts.sum(axis=0, dtype=np.float64)
            return
        self.backend.launch_1d(accumulate_batch, 1, rows.loss, rows.correct, totals)
        if rows.parts is not None and totals.shape[0] > 3:
            self.backend.launch_1d(accumulate_output_losses, rows.parts.shape[1], rows.parts,
                                   totals)

    def _logs(self, totals):
        """The mean loss and the metrics of the summed ``totals``, in
        :attr:`metrics_names`' order: a model with several outputs reports each output's mean
        loss as ``<output name>_loss`` (before the loss weights; in ``output_loss_order``, that of a
        Keras model of dict outputs compiled with a dict of losses) and the accuracy of those
        compiled with it as ``<output name>_<metric>`` (Keras's names, ``out_accuracy``; no bare
        "accuracy", whose output would be ambiguous); a model of one output names its accuracy
        as compile was given it (``acc``, ``binary_accuracy``: Keras's keys). The loss is what
        the totals sum: the cost, weight decay included, after :meth:`_train_step`'s batches,
        the loss alone otherwise."""
        sums = self.backend.to_numpy(totals)
        loss, correct, count = sums[:3]
        count = max(count, 1)
        logs = {"loss": float(loss / count)}
        outputs = (len(sums) - 3) // 2
        if not outputs:
            for metric in self.metrics:
                logs[metric] = float(correct / count)
            return logs
        names = self._score_names()
        parts = sums[3:3 + outputs]
        for index in getattr(self, "output_loss_order", None) or range(outputs):
            logs[f"{names[index]}_loss"] = float(parts[index] / count)
        for name, metrics, flags in zip(names, self._output_metric_names(),
                                        sums[3 + outputs:]):
            for metric in metrics:
                logs[f"{name}_{metric}"] = float(flags / count)
        return logs

    def _record(self, logs):
        for name, value in logs.items():
            self.history.setdefault(name, []).append(float(value))

    # -- snapshots (Ctrl-C, divergence) --------------------------------------------------
    def _training_snapshot(self):
        """Copies of everything an epoch changes, for :meth:`_restore_snapshot`."""
        optimizer_state = (self.optimizer.get_state(self.parameters)
                           if hasattr(self.optimizer, "backend") else None)
        return {"weights": self.get_weights(), "optimizer": optimizer_state,
                "epochs_done": self.epochs_done, "n_updates": self.n_updates,
                "history": {name: len(values) for name, values in self.history.items()},
                "callback_state": self.callback_state}

    def _restore_snapshot(self, snapshot):
        self.set_weights(snapshot["weights"])
        if snapshot["optimizer"] is not None:
            self._adopt_optimizer_state(*self.optimizer.check_state(snapshot["optimizer"],
                                                                    self.parameters))
        self.epochs_done, self.n_updates = snapshot["epochs_done"], snapshot["n_updates"]
        for name in list(self.history):
            del self.history[name][snapshot["history"].get(name, 0):]
            if not self.history[name]:
                del self.history[name]
        self.callback_state = snapshot["callback_state"]

    def _adopt_optimizer_state(self, iterations, slots):
        """Copy checked optimiser slots (``Optimizer.check_state``'s) into the parameters'."""
        for parameter in self.parameters:
            for name in self.optimizer.state_slot_names:
                self.backend.copy_into(parameter.slots[name], np.ascontiguousarray(
                    slots[(parameter.key, name)], dtype=self.dtype))
        self.optimizer._iterations = iterations   # the batches applied, as files hold them

    # -- one batch ----------------------------------------------------------------------
    @one_call_at_a_time
    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        """One update on one batch (lecture "Deep learning I": "feed batches manually in a
        training loop"), its samples weighted as :meth:`fit` weighs them (Keras's order of
        arguments); returns the batch's loss and metrics as :class:`Scores` (a dict of them
        with ``return_dict=True``, as Keras), computed before the update: the loss is the
        cost, the weight-decay term included, as in :meth:`fit` and :meth:`evaluate`."""
        self.check_compiled()
        refuse_batch_stream(x, "train_on_batch")
        x = self._checked_inputs(x)
        self._check_own_optimizer()
        self.optimizer.build(self.parameters, self.backend)
        y = self._targets_in_order(y)
        weights = sample_weights(y, len(x), sample_weight, class_weight)
        self.target_forms_ = target_forms(y, getattr(self, "_several_outputs", False))
        targets = self.backend.asarray(self._target_rows(y, len(x)), dtype=self.dtype)
        if weights is not None:
            weights = self.backend.asarray(weights.reshape(-1, 1), dtype=self.dtype)
        rows = LossRows.empty(self.backend, len(x), targets.shape[1], self.dtype,
                              self._output_count())
        totals = self._new_totals()
        self._batch_penalty = BatchPenalty.of(self)
        try:
            with self.backend.compute(small_products=True):
                self._train_step(self.backend.asarray(x, dtype=self.dtype), targets, rows,
                                 totals, weights=weights)
        finally:
            self._batch_penalty = None
        return scores(self._logs(totals), return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        """The loss and metrics of one batch in evaluation mode, without an update (Keras's
        ``test_on_batch``): :meth:`evaluate` on the batch as one."""
        refuse_batch_stream(x, "test_on_batch")
        return self.evaluate(x, y, batch_size=max(len(x), 1), return_dict=return_dict,
                             sample_weight=sample_weight)

    def reset_metrics(self):
        """Keras's ``reset_metrics``, which a Keras loop of ``train_on_batch`` calls between
        epochs: nothing to reset, as dlcore's metrics keep no state between calls (each epoch
        of ``fit``, each ``evaluate``, ``train_on_batch`` and ``test_on_batch`` reports its own
        numbers, as Keras 3's do from one call to the next)."""

    def predict_on_batch(self, x):
        """The outputs of one batch in evaluation mode (Keras's ``predict_on_batch``):
        :meth:`predict` on the batch as one."""
        refuse_batch_stream(x, "predict_on_batch")
        return self.predict(x, batch_size=max(len(x), 1))

    @one_call_at_a_time
    def loss_and_gradient(self, x, y, step=None, input_gradient=False, training=True):
        """The mean loss of the batch (x, y) and its gradient, in training mode (by default),
        without an update.

        Parameters
        ----------
        x : (n, *input_shape) array
        y : (n,) class labels or (n, outputs) targets (as ``fit``)
        step : int, the update number that draws dropout and noise (default: the next
            update's, ``n_updates``)
        input_gradient : bool, also return dL/dx
        training : bool, False: the gradient of the network as it predicts (no dropout, noise
            or augmentation), e.g. for adversarial examples (:func:`dlcore.adversarial.fgsm`)

        Returns
        -------
        float: (1/n) sum_i L(x_i, y_i), the value ``train_on_batch`` reports for the batch
        (the weight-decay term ``penalty()`` not included, as in ``fit``'s batch reports).
        With ``input_gradient``, the pair (loss, dL/dx as an (n, *input_shape) NumPy array).
        Each Parameter of ``parameters`` then holds ``grad`` = dL/dvalue (value's shape, on the
        backend; weight decay not included: the optimiser adds it), except, without
        ``input_gradient``, those of the frozen layers below the lowest layer that trains: the
        backward pass stops there.
        """
        self.check_compiled()
        x = self._checked_inputs(x)
        backend = self.backend
        targets = backend.asarray(self._target_rows(self._targets_in_order(y), len(x)),
                                  dtype=self.dtype)
        rows = LossRows.empty(backend, len(x), targets.shape[1], self.dtype)
        totals = self._new_totals()
        with backend.compute(small_products=True):
            grad_x = self.loss_rows(backend.asarray(x, dtype=self.dtype), targets, rows,
                                    training=True if training else EVALUATION_GRADIENT,
                                    step=self.n_updates if step is None else step,
                                    gradient=True, input_gradient=input_gradient)
            self._accumulate(rows, totals)
        loss = self._logs(totals)["loss"]
        return (loss, np.array(backend.to_numpy(grad_x))) if input_gradient else loss

    # -- evaluation ---------------------------------------------------------------------
    @one_call_at_a_time
    def evaluate(self, x, y=None, batch_size=256, verbose=0, return_dict=False, sample_weight=None,
                 steps=None, callbacks=None):
        """The loss (with the weight-decay penalty) and the metrics on (x, y), in evaluation
        mode (no dropout, noise or augmentation); with ``sample_weight`` (n,) the loss weighs
        each sample as :meth:`fit` does (the metrics do not, as Keras's ``metrics``).

        ``verbose`` 1, 2 or "auto" (as Keras) prints one line with the numbers on stderr when
        done; 0 is silent. ``return_dict=True`` returns a dict, as Keras. ``batch_size=None``
        is 256 (Keras's None is 32: only the speed differs). Keras's ``steps`` and
        ``callbacks`` must be None (or no callbacks): dlcore evaluates whole arrays and calls
        no evaluation hooks.

        Returns
        -------
        :class:`Scores`: unpacks as ``loss, accuracy = model.evaluate(x, y)``, indexes as
        ``scores["accuracy"]``, and ``dict(scores)`` gives the names; for a model compiled
        without metrics the loss alone (:class:`LossScore`, a number), as Keras.
        """
        self.check_compiled()
        refuse_batch_stream(x, "evaluate")
        refuse_packed_targets(self, x, y, "evaluate")
        refuse_steps_and_callbacks("evaluate", steps, callbacks)
        talk = check_verbose(verbose)
        x = self._checked_inputs(x)
        batch_size = check_int(256 if batch_size is None else batch_size, "batch_size",
                               minimum=1)
        y = self._targets_in_order(y)
        weights = sample_weights(y, len(x), sample_weight, None)
        targets = self._target_rows(y, len(x))
        started = time.perf_counter()
        with self.backend.compute(small_products=True):
            found = self._evaluate_arrays(x, targets, batch_size, weights)
        if talk:
            click.echo(f"evaluate: {len(x):,} samples in {time.perf_counter() - started:.2f} s: "
                       f"{format_logs(found)}", err=True)
        return scores(found, return_dict)

    def _batch_arrays(self, x, targets, weights, batch_size):
        """x (n, ...) as rows (n, features) on the backend (lazy rows stay on disk, read a
        batch at a time), targets (n, k) and weights (n,) when given (as (n, 1)), and the
        buffers of a mini-batch of them."""
        backend, n = self.backend, len(x)
        data = x.reshape(n, -1)
        data = data if isinstance(data, LazyRows) else backend.asarray(data, dtype=self.dtype)
        targets = backend.asarray(targets, dtype=self.dtype)
        if weights is not None:
            weights = backend.asarray(weights.reshape(n, 1), dtype=self.dtype)
        buffers = _BatchBuffers(backend, min(batch_size, n), data.shape[1], targets.shape[1],
                                self.dtype, weighted=weights is not None,
                                outputs=self._output_count())
        return data, targets, weights, buffers

    def _evaluate_arrays(self, x, targets, batch_size, weights=None, callbacks=()):
        """The logs of (x, targets) (NumPy, checked) in evaluation mode, penalty included; each
        sample's loss weighted by ``weights`` (n,) when given. ``callbacks``: fit's, told of
        its validation as Keras's fit tells them (``on_test_begin``, ``on_test_batch_begin``
        and ``_end`` with the running logs, ``on_test_end`` with the logs, without ``val_``)."""
        backend = self.backend
        data, targets, weights, buffers = self._batch_arrays(x, targets, weights, batch_size)
        totals = self._new_totals()
        # the running logs read the sums off the device: only for a callback that wants them
        batch_logs = [callback.wants_test_batch_hooks() for callback in callbacks]
        for callback in callbacks:
            callback.on_test_begin({})
        for batch in mini_batches(backend, (data, targets, weights),
                                  (buffers.x, buffers.y, buffers.w),
                                  epoch_order(len(x), self.seed, 0, shuffle=False), batch_size):
            for callback, wanted in zip(callbacks, batch_logs):
                if wanted:
                    callback.on_test_batch_begin(batch.index, {})
            x_batch, y_batch, w_batch = batch.arrays
            rows = buffers.loss_rows(x_batch.shape[0])
            # weighed inside, as fit's: a layer's activity penalty, added there after the
            # weights, is not weighted (Keras 3 neither); weights only when given, as fit
            # passes them (a model class of the seam may not weigh samples)
            self.loss_rows(x_batch.reshape((x_batch.shape[0],) + x.shape[1:]), y_batch, rows,
                           **({} if w_batch is None else {"weights": w_batch}))
            self._accumulate(rows, totals)
            if any(batch_logs):
                running = self._logs(totals)
                running["loss"] += float(self.penalty())
                for callback, wanted in zip(callbacks, batch_logs):
                    if wanted:
                        callback.on_test_batch_end(batch.index, dict(running))
        logs = self._logs(totals)
        logs["loss"] += float(self.penalty())
        for callback in callbacks:
            callback.on_test_end(dict(logs))
        return logs

    @one_call_at_a_time
    def predict(self, x, batch_size=256, verbose=0, steps=None, callbacks=None, *,
                mc_dropout=0):
        """The network's outputs for x, in evaluation mode: (n, outputs) NumPy float32 (class
        probabilities when the network ends in a softmax).

        ``mc_dropout=K`` > 0 averages the outputs of K passes with dropout on instead (Monte
        Carlo dropout; lecture "Convolutional neural networks" (2016), "Dropout as bagging":
        the average over K of the 2^|h| thinned networks dropout trains, rather than the one
        network with scaled weights that evaluation uses):

            p(y | x) ~ (1/K) sum_k p(y | x, mask_k)

        Mask k of a Dropout layer is the same for every sample (one thinned network per draw),
        from ``STREAM_MC_DROPOUT`` at step k: seeded, the same K masks on every call, so that
        a sample's prediction depends on it, the weights and the seed alone, not on its batch,
        ``batch_size`` or the other rows (``predict(x)[i] == predict(x[i:i + 1])[0]``). Noise
        and augmentation stay off. A network without a Dropout layer (of rate > 0) would give
        K times the plain prediction: it is computed once, with a warning.

        ``verbose`` 1, 2 or "auto" (as Keras) prints one line on stderr when done (how many
        samples, how long); 0 is silent. Keras's ``steps`` and ``callbacks`` must be None (or
        no callbacks): dlcore predicts whole arrays and calls no prediction hooks.
        """
        refuse_batch_stream(x, "predict")
        refuse_steps_and_callbacks("predict", steps, callbacks)
        talk = check_verbose(verbose)
        started = time.perf_counter()
        x = self._checked_inputs(x)
        batch_size = check_int(256 if batch_size is None else batch_size, "batch_size",
                               minimum=1)
        draws = check_int(mc_dropout, "mc_dropout", minimum=0)
        if draws and not _has_dropout(self):
            warnings.warn(f"predict(mc_dropout={draws}): the network has no Dropout layer (of "
                          f"rate > 0), so every pass would be the plain prediction: it is "
                          f"computed once; drop mc_dropout",
                          stacklevel=stacklevel_outside_dlcore())
            draws = 0
        backend = self.backend
        out = np.empty((len(x),) + tuple(self.output_shape), dtype=self.dtype)
        # consecutive slices: on the cpu, views of x (no gather)
        with backend.compute(small_products=True):
            for start in range(0, len(x), batch_size):
                x_batch = backend.asarray(x[start:start + batch_size], dtype=self.dtype)
                rows = slice(start, start + len(x_batch))
                if not draws:
                    out[rows] = backend.to_numpy(self.forward(x_batch))
                    continue
                total = np.zeros(out[rows].shape, dtype=np.float64)
                for draw in range(draws):   # draw k: the same thinned network for every batch
                    total += backend.to_numpy(self.forward(x_batch, training=MC_DROPOUT,
                                                           step=draw))
                out[rows] = total / draws
        if talk:
            click.echo(f"predict: {len(x):,} samples in {time.perf_counter() - started:.2f} s",
                       err=True)
        return out

    def predict_classes(self, x, batch_size=256):
        """Class labels: the argmax of :meth:`predict` (or, for one output, output > 0.5, or
        > 0 when the loss takes logits)."""
        probabilities = one_output(self.predict(x, batch_size)).reshape(len(x), -1)
        if probabilities.shape[1] == 1:
            threshold = 0.0 if self.loss is not None and self.loss.from_logits else 0.5
            return (probabilities[:, 0] > threshold).astype(np.int64)
        return probabilities.argmax(axis=1)

