"""``Sequential``: a stack of layers trained by back-propagation, with Keras' API.

Lecture "Deep learning I" introduces the Keras ``Sequential`` model, ``compile``, ``fit``,
``evaluate`` and ``predict``; lecture "Supervised learning" the training itself: forward
propagation through the layers, the loss, back-propagation of dL/do through every layer in
reverse ("given dL/dh^2 we can compute dL/dW^2 and dL/dh^1"), then the optimiser step. One
mini-batch update (:meth:`Sequential.train_on_batch`) is exactly::

    o = forward(x)                      # layer by layer, keeping what backward needs
    L, dL/do = loss(o, y)               # fused with the final softmax: dL/do = p - y
    for layer in reversed(layers):      # back-propagation
        dL/dinput = layer.backward(dL/doutput)    # fills layer.grads
    optimizer.apply(parameters)         # theta <- theta - eta * ..., plus weight decay

The network runs on one backend (``reference``, ``cpu`` or ``cuda``): the data go up once per
``fit``, the batches are gathered on the device, and every layer writes into buffers it
allocated on the first batch, so the loop allocates nothing. Results (``predict``, the
history, ``get_weights``) are NumPy.

Randomness comes from the network's ``seed`` through Philox: the initial weights of layer i
from its own key (:func:`dlcore.layers.initializers.layer_seed`), the validation split from
``STREAM_SPLIT``, the batch order of epoch e from ``STREAM_SHUFFLE`` at step e, dropout, noise
and augmentation at the update number. Saving a network (``dlcore.save``) keeps the epoch and
update counters with the optimiser's state, so a loaded network continues training exactly as
the original would have.
"""
import contextlib
import copy
import json
import re
import time

import numpy as np

from dlcore.backend import check_backend_name, get_backend, rng
from dlcore.backend.kernels import body
from dlcore.callbacks import Callback, EarlyStopping, History, ProgressBar
from dlcore.errors import DivergenceCheck
from dlcore.io import register_model
from dlcore.layers.base import LAYER_CLASSES, Layer, WeightedLayer, check_shape
from dlcore.layers.core import Activation
from dlcore.layers.initializers import layer_seed
from dlcore.losses import check_output_activation, get_loss, known_output_width
from dlcore.optimizers import Parameter, get_optimizer, serialize as serialize_optimizer
from dlcore.records import record_fit
from dlcore.validation import check_float, check_int

METRICS = ("accuracy",)
RESERVED_LAYER_NAMES = ("layer_names",)


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


@contextlib.contextmanager
def compute(backend):
    """The backend's compute context (see :meth:`dlcore.backend.base.Backend.compute`); on the
    reference backend, BLAS limited to one thread: a network's products are small, and
    OpenBLAS threads spinning on a busy 2-core machine made them up to 60x slower (measured)."""
    with backend.compute():
        if backend.name != "reference":
            yield
            return
        from threadpoolctl import threadpool_limits
        with threadpool_limits(limits=1, user_api="blas"):
            yield


def final_activation(layer):
    """The activation a layer ends with (None for layers without one)."""
    if isinstance(layer, (WeightedLayer, Activation)):
        return layer.activation
    return None


@register_model
class Sequential:
    """A linear stack of layers (Keras' ``Sequential``; lecture "Deep learning I").

    Parameters
    ----------
    layers : list of :class:`dlcore.layers.Layer`, optional (``add`` appends more)
    input_shape : tuple, optional, the per-sample input shape, e.g. ``(1, 28, 28)`` or
        ``(784,)``; else taken from the first layer's ``input_shape``, else from the data of
        the first ``fit``/``predict``
    backend : "auto", "cpu", "cuda" or "reference" (see :func:`dlcore.get_backend`)
    seed : int, the Philox key of every random draw (see the module docstring)
    name : str, optional

    Attributes
    ----------
    layers : list of layers, named uniquely (``conv2d``, ``conv2d_1``, ...)
    history : dict of per-epoch lists over every ``fit`` so far (``loss``, ``accuracy``,
        ``val_loss``, ``val_accuracy``, ``learning_rate``, ``seconds``)
    epochs_done, n_updates : counters of the training so far
    stop_training : set by a callback to end ``fit`` after the current epoch
    """

    def __init__(self, layers=None, input_shape=None, backend="auto", seed=0, name=None):
        self.name = name or "sequential"
        self.backend_name = check_backend_name(backend)
        self.seed = rng.check_seed(seed)
        self.input_shape = None if input_shape is None else check_shape(input_shape)
        self.layers = []
        self.built = False
        self.loss = self.optimizer = None
        self.metrics = []
        self.history = {}
        self.epochs_done = 0
        self.n_updates = 0
        self.stop_training = False
        self._parameters = []
        for layer in layers or []:
            self.add(layer)
        if self.input_shape is not None:
            self.build()

    # -- construction -------------------------------------------------------------------
    def add(self, layer):
        """Append a layer (named, if it has no name, after its class: ``dense``, ``dense_1``)."""
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add takes a dlcore layer, got {type(layer).__name__}")
        if self.built:
            raise ValueError("this network is already built; create a new Sequential to "
                             "change its layers")
        if layer.name is None:
            layer.name = self._unique_name(_snake_case(type(layer).__name__))
        if layer.name in RESERVED_LAYER_NAMES or any(l.name == layer.name for l in self.layers):
            raise ValueError(f"layer name {layer.name!r} is already used in this network"
                             if layer.name not in RESERVED_LAYER_NAMES
                             else f"layer name {layer.name!r} is reserved")
        if not self.layers and self.input_shape is None and layer.input_shape is not None:
            self.input_shape = layer.input_shape
        self.layers.append(layer)
        return self

    def _unique_name(self, base):
        taken = {layer.name for layer in self.layers}
        if base not in taken:
            return base
        index = 1
        while f"{base}_{index}" in taken:
            index += 1
        return f"{base}_{index}"

    def build(self, input_shape=None, dtype=np.float32):
        """Create every layer's parameters for per-sample inputs of ``input_shape``."""
        from dlcore.augment import ImageAugmentation
        if input_shape is not None:
            self.input_shape = check_shape(input_shape)
        if self.input_shape is None:
            raise ValueError("the input shape is unknown: give Sequential(input_shape=...), "
                             "input_shape= on the first layer, or call fit/predict first")
        if not self.layers:
            raise ValueError("the network has no layers: add some first")
        for index, layer in enumerate(self.layers[1:], start=1):
            if isinstance(layer, ImageAugmentation):
                raise ValueError(f"ImageAugmentation must be the first layer (it is layer "
                                 f"{index}, {layer.name!r})")
        backend = get_backend(self.backend_name)
        shape = self.input_shape
        for index, layer in enumerate(self.layers):
            layer.build(shape, backend, dtype, seed=layer_seed(self.seed, index))
            shape = layer.output_shape
        self.output_shape = shape
        self.backend = backend
        self.dtype = np.dtype(dtype)
        self.built = True
        self._collect_parameters()
        return self

    def _collect_parameters(self):
        previous = {p.key: p.slots for p in self._parameters}
        self._parameters = []
        for layer in self.layers:
            regularizers = layer.regularizers() if isinstance(layer, WeightedLayer) else {}
            constraints = layer.constraints() if isinstance(layer, WeightedLayer) else {}
            for name in layer.weight_names:
                regularizer = regularizers.get(name)
                constraint, axis = constraints.get(name, (None, 0))
                key = f"{layer.name}/{name}"
                self._parameters.append(Parameter(
                    key, layer.params[name], layer.grads[name],
                    l1=regularizer.l1 if regularizer else 0.0,
                    l2=regularizer.l2 if regularizer else 0.0,
                    constraint=constraint, units_axis=axis, slots=previous.get(key, {})))

    def _ensure_built(self, x):
        if not self.built:
            self.build(x.shape[1:])

    # -- compile ------------------------------------------------------------------------
    def compile(self, loss="cross_entropy", optimizer="sgd", metrics=None):
        """Choose the loss, the optimiser and the metrics.

        Parameters
        ----------
        loss : "cross_entropy" (fused with a final softmax), "binary_cross_entropy" (fused with
            a final sigmoid), "mse", or a :class:`dlcore.losses.Loss`, e.g.
            ``dlcore.losses.CategoricalCrossentropy(from_logits=True)`` for a linear last
            layer; a cross-entropy on outputs that are not probabilities is refused
        optimizer : "sgd", "adagrad", "rmsprop", "adam" or a :mod:`dlcore.optimizers` object
        metrics : list, ``["accuracy"]`` or empty

        Returns
        -------
        self
        """
        self.loss = self._checked_loss(get_loss(loss))
        self.optimizer = get_optimizer(optimizer)
        metrics = list(metrics or [])
        unknown = [m for m in metrics if str(m).lower() not in METRICS + ("acc",)]
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown}: dlcore reports {', '.join(METRICS)}")
        self.metrics = ["accuracy"] if metrics else []
        if self.built:
            self.optimizer.build(self._parameters, self.backend)
        return self

    def _checked_loss(self, loss):
        """``loss`` once it fits the last layer's output (see
        :func:`dlcore.losses.check_output_activation`): at compile, and again before training
        for layers added after compile."""
        if self.layers:
            last = self.layers[-1]
            check_output_activation(loss, final_activation(last), last.name,
                                    has_activation=isinstance(last, (WeightedLayer, Activation)),
                                    output_width=known_output_width(last))
        return loss

    def _check_compiled(self):
        if self.loss is None:
            raise RuntimeError("compile the network first: model.compile(loss=..., "
                               "optimizer=..., metrics=[...])")
        self._checked_loss(self.loss)
        if self.built and not hasattr(self.optimizer, "backend"):
            self.optimizer.build(self._parameters, self.backend)

    @property
    def _fused(self):
        """True when the loss absorbs the last layer's activation (softmax + cross-entropy,
        sigmoid + binary cross-entropy): the last layer then hands over pre-activations."""
        return (self.loss is not None and self.loss.fuses_with is not None
                and final_activation(self.layers[-1]) == self.loss.fuses_with)

    # -- data ---------------------------------------------------------------------------
    def _check_x(self, x, name="x"):
        array = np.asarray(x)
        if array.dtype == object or not (np.issubdtype(array.dtype, np.number)
                                         or array.dtype == bool):
            raise ValueError(f"{name} must hold numbers, got dtype {array.dtype}")
        if array.ndim < 2 or array.shape[0] == 0:
            raise ValueError(f"{name} must be a batch (n, ...) with n >= 1, got shape "
                             f"{array.shape}")
        if self.input_shape is not None and tuple(array.shape[1:]) != self.input_shape:
            hint = ""
            if int(np.prod(array.shape[1:])) == int(np.prod(self.input_shape)):
                shape = ", ".join(map(str, self.input_shape))
                hint = f"; reshape it with {name}.reshape(-1, {shape})"
            raise ValueError(f"{name} has samples of shape {tuple(array.shape[1:])}; the network "
                             f"expects {self.input_shape}{hint}")
        array = np.ascontiguousarray(array, dtype=np.float32 if not self.built else self.dtype)
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{name} contains NaN or infinite values")
        return array

    def _targets(self, y, n, name="y"):
        """Targets as (n, k) rows: integer labels become one-hot rows."""
        array = np.asarray(y)
        width = int(np.prod(self.output_shape))
        if array.shape[0:1] != (n,):
            raise ValueError(f"{name} has {array.shape[0] if array.ndim else 0} rows for {n} "
                             f"samples")
        if array.ndim == 1 or (array.ndim == 2 and array.shape[1] == 1 and width > 1):
            labels = array.reshape(-1)
            if not np.issubdtype(labels.dtype, np.integer):
                if not np.all(np.equal(np.mod(labels, 1), 0)):
                    raise ValueError(f"{name} must hold integer class labels (or (n, {width}) "
                                     f"target rows)")
                labels = labels.astype(np.int64)
            if width == 1:
                return labels.reshape(n, 1).astype(self.dtype)
            if labels.min() < 0 or labels.max() >= width:
                raise ValueError(f"{name} holds class labels in [{labels.min()}, {labels.max()}]"
                                 f"; the network has {width} outputs (labels 0..{width - 1})")
            return np.eye(width, dtype=self.dtype)[labels]
        if array.ndim != 2 or array.shape[1] != width:
            raise ValueError(f"{name} must be (n,) integer labels or (n, {width}) targets, got "
                             f"shape {array.shape}")
        targets = np.ascontiguousarray(array, dtype=self.dtype)
        if not np.all(np.isfinite(targets)):
            raise ValueError(f"{name} contains NaN or infinite values")
        return targets

    def _split(self, x, y, validation_split, validation_data):
        if validation_data is not None:
            if len(validation_data) != 2:
                raise ValueError("validation_data must be a pair (x_val, y_val)")
            x_val = self._check_x(validation_data[0], "validation_data x")
            return x, y, (x_val, self._targets(validation_data[1], len(x_val),
                                               "validation_data y"))
        validation_split = check_float(validation_split, "validation_split", low=0.0, high=1.0,
                                       high_open=True)
        n_valid = int(round(validation_split * len(x)))
        if n_valid == 0:
            return x, y, None
        if n_valid >= len(x):
            raise ValueError(f"validation_split={validation_split} leaves no training samples")
        order = rng.permutation(len(x), self.seed, rng.STREAM_SPLIT, 0)
        train, valid = np.sort(order[n_valid:]), np.sort(order[:n_valid])
        return x[train], y[train], (x[valid], y[valid])

    # -- training -----------------------------------------------------------------------
    def _resume_callbacks(self, callbacks):
        """After :meth:`set_state` (a loaded checkpoint), hand the saved early-stopping state to
        the first :class:`EarlyStopping` of ``callbacks`` that monitors the same quantity and
        was not given one with its own ``set_state``: the resumed fit then stops and restores
        the best weights as the uninterrupted one would. Only the first fit after loading."""
        if not getattr(self, "_resume_callback_state", False):
            return
        self._resume_callback_state = False
        saved = self.callback_state.get("EarlyStopping")
        for callback in callbacks:
            if (isinstance(callback, EarlyStopping) and saved is not None
                    and not callback._resumed and callback.monitor == saved.get("monitor")):
                callback.set_state(saved)
                return

    def fit(self, x, y, epochs=1, batch_size=32, validation_split=0.0, validation_data=None,
            shuffle=True, callbacks=None, verbose=1):
        """Train for ``epochs`` passes over (x, y) by mini-batch back-propagation.

        Parameters
        ----------
        x : (n, *input_shape) array, e.g. (n, 1, 28, 28) float32 images or (n, 784) rows
        y : (n,) integer class labels, or (n, outputs) targets
        epochs, batch_size : int
        validation_split : float in [0, 1), the fraction of (x, y) held out for validation,
            chosen by a seeded permutation (Keras takes the last rows instead; a class-sorted
            data set would then validate on one class)
        validation_data : (x_val, y_val), used instead of ``validation_split``
        shuffle : bool, a new seeded batch order every epoch
        callbacks : list of :class:`dlcore.callbacks.Callback`; the first fit of a loaded
            network continues the file's early-stopping state in an ``EarlyStopping`` of the
            same monitor (as ``dlcore`` commands do with --resume)
        verbose : 1 shows a progress bar per epoch on stderr, 0 is silent

        Returns
        -------
        :class:`dlcore.callbacks.History`; its ``history`` holds this call's epochs (the
        network's own ``history`` all of them).
        """
        self._check_compiled()
        epochs = check_int(epochs, "epochs", minimum=0)
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        x = self._check_x(x)
        self._ensure_built(x)
        self._check_compiled()
        y = self._targets(y, len(x))
        x, y, validation = self._split(x, y, validation_split, validation_data)
        n = len(x)
        record_fit(self, x, keep_command_record=True, epochs=epochs, batch_size=batch_size,
                   validation_split=validation_split,
                   validation_data=validation_data is not None, shuffle=bool(shuffle))
        n_batches = -(-n // batch_size)
        history = History()
        callbacks = [history] + list(callbacks or [])
        if verbose:
            callbacks.append(ProgressBar(n_batches, self.epochs_done + epochs))
        for callback in callbacks:
            if not isinstance(callback, Callback):
                raise TypeError(f"callbacks must be dlcore.callbacks.Callback objects, got "
                                f"{type(callback).__name__}")
            callback.set_model(self)
        self._resume_callbacks(callbacks)
        self.stop_training = False
        backend = self.backend
        data = backend.asarray(x.reshape(n, -1), dtype=self.dtype)
        targets = backend.asarray(y, dtype=self.dtype)
        batch = _BatchBuffers(backend, min(batch_size, n), x.shape[1:], y.shape[1], self.dtype)
        for callback in callbacks:
            callback.on_train_begin()
        # An epoch that diverges (dlcore.errors) or is interrupted (Ctrl-C) leaves the network
        # as the last finished epoch left it, optimiser state and counters included.
        divergence = DivergenceCheck("loss", self.optimizer.current_learning_rate(),
                                     self.history.get("loss", ()))
        last_good = self._training_snapshot()
        try:
            with compute(backend):
                for _ in range(epochs):
                    epoch = self.epochs_done + 1
                    for callback in callbacks:
                        callback.on_epoch_begin(epoch)
                    logs, rate, seconds = self._train_epoch(data, targets, batch, batch_size,
                                                            shuffle, callbacks)
                    divergence.check(epoch, logs["loss"], self.get_weights())
                    if validation is not None:
                        scores = self._evaluate_arrays(*validation,
                                                       batch_size=max(batch_size, 256))
                        logs.update({f"val_{name}": value for name, value in scores.items()})
                    logs.update(learning_rate=rate, seconds=seconds)
                    self.epochs_done += 1
                    self._record(logs)
                    # callback_state: what resuming needs of each callback, kept up to date as
                    # they run so that a checkpointing callback saves this epoch's
                    self.callback_state = {}
                    for callback in callbacks:
                        callback.on_epoch_end(epoch, logs)
                        if callable(getattr(callback, "get_state", None)):
                            self.callback_state[type(callback).__name__] = callback.get_state()
                    last_good = self._training_snapshot()
                    if self.stop_training:
                        break
        except BaseException:
            self._restore_snapshot(last_good)
            raise
        for callback in callbacks:
            callback.on_train_end()
        return history

    def _train_epoch(self, data, targets, batch, batch_size, shuffle, callbacks):
        started = time.perf_counter()
        backend = self.backend
        n = data.shape[0]
        order = (rng.permutation(n, self.seed, rng.STREAM_SHUFFLE, self.epochs_done)
                 if shuffle else np.arange(n))
        totals = backend.zeros((3,), np.float64)
        rate = self.optimizer.current_learning_rate()
        n_batches = -(-n // batch_size)
        report_every = max(1, n_batches // 50)
        for index, start in enumerate(range(0, n, batch_size)):
            rows = order[start:start + batch_size]
            x_batch, y_batch = batch.gather(data, targets, rows)
            self._train_step(x_batch, y_batch, batch, totals)
            if (index + 1) % report_every == 0 or index + 1 == n_batches:
                logs = self._epoch_logs(totals)
            else:
                logs = None
            for callback in callbacks:
                callback.on_batch_end(index, logs)
        logs = self._epoch_logs(totals)
        logs["loss"] += self._penalty()
        return logs, rate, time.perf_counter() - started

    def _train_step(self, x, targets, batch, totals):
        """One update: forward, loss, backward, optimiser (the module docstring)."""
        n = x.shape[0]
        outputs = self._forward(x, training=True, step=self.n_updates, fused=self._fused)
        grad, row_loss, row_correct = batch.loss_buffers(n, outputs.shape[1])
        self.loss.loss_and_gradient(self.backend, outputs, targets, grad, row_loss, row_correct,
                          self._fused)
        self._accumulate(row_loss, row_correct, totals)
        self._backward(grad, fused=self._fused)
        self.optimizer.apply(self._parameters)
        self.n_updates += 1

    def train_on_batch(self, x, y):
        """One update on one batch (lecture 004's manual training loop); returns the batch's
        loss and metrics as :class:`Scores`."""
        self._check_compiled()
        x = self._check_x(x)
        self._ensure_built(x)
        self._check_compiled()
        targets = self.backend.asarray(self._targets(y, len(x)), dtype=self.dtype)
        batch = _BatchBuffers(self.backend, len(x), x.shape[1:], targets.shape[1], self.dtype)
        totals = self.backend.zeros((3,), np.float64)
        with compute(self.backend):
            self._train_step(self.backend.asarray(x, dtype=self.dtype), targets, batch, totals)
        logs = self._epoch_logs(totals)
        return Scores(logs.keys(), logs.values())

    def _forward(self, x, training=False, step=0, fused=False):
        for layer in self.layers[:-1]:
            x = layer.forward(x, training=training, step=step)
        last = self.layers[-1]
        if fused:
            return last.forward(x, training=training, step=step, apply_activation=False)
        return last.forward(x, training=training, step=step)

    def _backward(self, grad, fused=False, need_input_gradient=False):
        """Back-propagate dL/doutputs; returns dL/dx when ``need_input_gradient``."""
        for index in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[index]
            needed = index > 0 or need_input_gradient
            if fused and index == len(self.layers) - 1:
                grad = layer.backward(grad, needed, apply_activation=False)
            else:
                grad = layer.backward(grad, needed)
        return grad

    def _accumulate(self, row_loss, row_correct, totals):
        if self.backend.name == "reference":
            totals += (row_loss.sum(dtype=np.float64), row_correct.sum(dtype=np.float64),
                       row_loss.shape[0])
        else:
            self.backend.launch_1d(accumulate_batch, 1, row_loss, row_correct, totals)

    def _epoch_logs(self, totals):
        loss, correct, count = self.backend.to_numpy(totals)
        logs = {"loss": float(loss / max(count, 1))}
        if self.metrics:
            logs["accuracy"] = float(correct / max(count, 1))
        return logs

    def _penalty(self):
        """The weight-decay term Omega(theta) of the cost (lecture 000), in float64."""
        total = 0.0
        for layer in self.layers:
            if isinstance(layer, WeightedLayer):
                weights = dict(zip(layer.weight_names, layer.get_weights())) \
                    if layer.regularizers() else {}
                for name, regularizer in layer.regularizers().items():
                    total += regularizer.penalty(weights[name])
        return total

    def _training_snapshot(self):
        """Copies of everything an epoch changes, for :meth:`_restore_snapshot`."""
        optimizer_state = (self.optimizer.get_state(self._parameters)
                           if hasattr(self.optimizer, "backend") else None)
        return {"weights": self.get_weights(), "optimizer": optimizer_state,
                "epochs_done": self.epochs_done, "n_updates": self.n_updates,
                "history": {name: len(values) for name, values in self.history.items()},
                "callback_state": getattr(self, "callback_state", {})}

    def _restore_snapshot(self, snapshot):
        self.set_weights(snapshot["weights"])
        if snapshot["optimizer"] is not None:
            self._restore_optimizer_state(snapshot["optimizer"])
        self.epochs_done, self.n_updates = snapshot["epochs_done"], snapshot["n_updates"]
        for name in list(self.history):
            del self.history[name][snapshot["history"].get(name, 0):]
            if not self.history[name]:
                del self.history[name]
        self.callback_state = snapshot["callback_state"]

    def _restore_optimizer_state(self, optimizer_state):
        """Check the slots of ``optimizer_state`` (``Optimizer.get_state``), then adopt them."""
        iterations, slots = self.optimizer.check_state(optimizer_state, self._parameters)
        for parameter in self._parameters:
            for name in self.optimizer.slot_names:
                self.backend.copy_into(parameter.slots[name], np.ascontiguousarray(
                    slots[(parameter.key, name)], dtype=self.dtype))
        self.optimizer.iterations = iterations

    def _record(self, logs):
        for name, value in logs.items():
            self.history.setdefault(name, []).append(float(value))

    # -- evaluation ---------------------------------------------------------------------
    def evaluate(self, x, y, batch_size=256, verbose=0):
        """The loss (with the weight-decay penalty) and the metrics on (x, y), in evaluation
        mode (no dropout, noise or augmentation).

        Returns
        -------
        :class:`Scores`: unpacks as ``loss, accuracy = model.evaluate(x, y)``, indexes as
        ``scores["accuracy"]``, and ``dict(scores)`` gives the names.
        """
        self._check_compiled()
        x = self._check_x(x)
        self._ensure_built(x)
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        with compute(self.backend):
            scores = self._evaluate_arrays(x, self._targets(y, len(x)), batch_size)
        return Scores(scores.keys(), scores.values())

    def _evaluate_arrays(self, x, targets, batch_size):
        backend = self.backend
        totals = backend.zeros((3,), np.float64)
        width = targets.shape[1]
        buffers = _BatchBuffers(backend, min(batch_size, len(x)), x.shape[1:], width,
                                self.dtype)
        for start in range(0, len(x), batch_size):
            x_batch = backend.asarray(x[start:start + batch_size], dtype=self.dtype)
            y_batch = backend.asarray(targets[start:start + batch_size], dtype=self.dtype)
            outputs = self._forward(x_batch, fused=self._fused)
            grad, row_loss, row_correct = buffers.loss_buffers(len(x_batch), width)
            self.loss.loss_and_gradient(backend, outputs, y_batch, grad, row_loss, row_correct,
                              self._fused)
            self._accumulate(row_loss, row_correct, totals)
        logs = self._epoch_logs(totals)
        logs["loss"] += self._penalty()
        return logs

    def predict(self, x, batch_size=256):
        """The network's outputs for x, in evaluation mode: (n, outputs) NumPy float32 (class
        probabilities when the network ends in a softmax)."""
        x = self._check_x(x)
        self._ensure_built(x)
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        backend = self.backend
        out = np.empty((len(x),) + tuple(self.output_shape), dtype=self.dtype)
        with compute(backend):
            for start in range(0, len(x), batch_size):
                x_batch = backend.asarray(x[start:start + batch_size], dtype=self.dtype)
                out[start:start + len(x_batch)] = backend.to_numpy(self._forward(x_batch))
        return out

    def predict_classes(self, x, batch_size=256):
        """Class labels: the argmax of :meth:`predict` (or, for one output, output > 0.5, or
        > 0 when the loss takes logits)."""
        probabilities = self.predict(x, batch_size).reshape(len(x), -1)
        if probabilities.shape[1] == 1:
            threshold = 0.0 if self.loss is not None and self.loss.from_logits else 0.5
            return (probabilities[:, 0] > threshold).astype(np.int64)
        return probabilities.argmax(axis=1)

    # -- weights ------------------------------------------------------------------------
    def get_weights(self):
        """All parameters as a list of NumPy arrays, layer by layer (kernel, then bias)."""
        self._require_built()
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights):
        """Assign the arrays of :meth:`get_weights` (shapes checked first)."""
        self._require_built()
        weights = list(weights)
        expected = sum(len(layer.weight_names) for layer in self.layers)
        if len(weights) != expected:
            raise ValueError(f"the network has {expected} weight arrays; got {len(weights)}")
        position = 0
        pending = []
        for layer in self.layers:
            count = len(layer.weight_names)
            chunk = weights[position:position + count]
            for name, value, current in zip(layer.weight_names, chunk, layer.params.values()):
                if np.shape(value) != tuple(current.shape):
                    raise ValueError(f"layer {layer.name!r}: {name} has shape "
                                     f"{np.shape(value)}; expected {tuple(current.shape)}")
            pending.append((layer, chunk))
            position += count
        for layer, chunk in pending:
            layer.set_weights(chunk)

    def count_params(self):
        """Number of trainable parameters."""
        self._require_built()
        return sum(layer.count_params() for layer in self.layers)

    def _require_built(self):
        if not self.built:
            raise RuntimeError("the network is not built: give it an input shape, or call "
                               "fit/predict first")

    def summary(self, print_fn=print):
        """Print, per layer, the output shape, the parameter count and the forward FLOPs per
        sample, then the totals (lecture 002: "compute flops and nr. params").

        FLOPs: a multiply-add counts 2 (so a Dense layer costs 2 * in * out and a Conv2D
        2 * C k_h k_w * F * H' W' per sample); element-wise layers count 0.

        Returns
        -------
        :class:`Summary` with the same numbers (``rows``, ``total_params``, ...).
        """
        self._require_built()
        summary = Summary([LayerSummary(layer.name, type(layer).__name__, layer.output_shape,
                                        layer.weight_count(), layer.bias_count(),
                                        layer.flops()) for layer in self.layers],
                          self.name, self.input_shape)
        if print_fn is not None:
            print_fn(str(summary))
        return summary

    # -- files (the dlcore.io protocol) -------------------------------------------------
    def get_config(self):
        """Architecture, backend, seed and compile settings, JSON-serialisable."""
        config = {"name": self.name, "backend": self.backend_name, "seed": str(self.seed),
                  "input_shape": None if self.input_shape is None else list(self.input_shape),
                  "layers": [{"class_name": type(layer).__name__, "config": layer.get_config()}
                             for layer in self.layers]}
        if self.loss is not None:
            config["compile"] = {"loss": self.loss.get_config(),
                                 "optimizer": serialize_optimizer(self.optimizer),
                                 "metrics": list(self.metrics)}
        return config

    @classmethod
    def from_config(cls, config):
        """A new network from :meth:`get_config`'s dict (built when the input shape is known,
        compiled when the config says how)."""
        layers = []
        for entry in config["layers"]:
            class_name = entry["class_name"]
            if class_name not in LAYER_CLASSES:
                raise ValueError(f"unknown layer class {class_name!r}")
            layers.append(LAYER_CLASSES[class_name].from_config(dict(entry["config"])))
        model = cls(layers, input_shape=config.get("input_shape"),
                    backend=config.get("backend", "auto"), seed=int(config.get("seed", 0)),
                    name=config.get("name"))
        compiled = config.get("compile")
        if compiled:
            model.compile(compiled["loss"], compiled["optimizer"], compiled.get("metrics"))
        return model

    def get_state(self):
        """Weights under ``layers/<layer>/kernel`` and ``bias`` (with the ``layer_names`` and
        ``weight_names`` index as JSON text), training counters and optimiser slots under
        ``training/`` (schema: docs/hdf5-format.md, "Sequential networks")."""
        self._require_built()
        layers = {"layer_names": json.dumps([layer.name for layer in self.layers])}
        for layer in self.layers:
            group = {"weight_names": json.dumps(list(layer.weight_names))}
            group.update(zip(layer.weight_names, layer.get_weights()))
            layers[layer.name] = group
        training = {"seed": str(self.seed), "epochs_done": int(self.epochs_done),
                    "n_updates": int(self.n_updates)}
        if self.optimizer is not None and hasattr(self.optimizer, "backend"):
            training["optimizer"] = self.optimizer.get_state(self._parameters)
        if getattr(self, "callback_state", None):
            # what a resumed fit needs of its callbacks (EarlyStopping's best epoch and weights)
            training["callbacks"] = self.callback_state
        return {"layers": layers, "training": training}

    def set_state(self, state):
        """Validate every array against the architecture, then assign (dlcore.io protocol)."""
        self._require_built()
        layers_state = state.get("layers")
        if not isinstance(layers_state, dict):
            raise ValueError("group 'layers' is missing")
        weights = []
        for layer in self.layers:
            group = layers_state.get(layer.name)
            if not isinstance(group, dict):
                raise ValueError(f"group 'layers/{layer.name}' is missing")
            for name, current in zip(layer.weight_names, layer.params.values()):
                value = group.get(name)
                if not isinstance(value, np.ndarray) or value.shape != tuple(current.shape):
                    raise ValueError(f"dataset 'layers/{layer.name}/{name}' has shape "
                                     f"{getattr(value, 'shape', None)}; expected "
                                     f"{tuple(current.shape)}")
                weights.append(value)
        training = state.get("training", {})
        callbacks = training.get("callbacks")
        callbacks = ({name: value for name, value in callbacks.items() if isinstance(value, dict)}
                     if isinstance(callbacks, dict) else {})
        if "EarlyStopping" in callbacks:   # checked here: a bad file fails at load, not in fit
            EarlyStopping.check_state(callbacks["EarlyStopping"],
                                      [weight.shape for weight in weights])
        optimizer_state = training.get("optimizer")
        slots = iterations = None
        if optimizer_state is not None and self.optimizer is not None:
            self.optimizer.build(self._parameters, self.backend)
            iterations, slots = self.optimizer.check_state(optimizer_state, self._parameters)
        self.set_weights(weights)
        if slots is not None:
            for parameter in self._parameters:
                for name in self.optimizer.slot_names:
                    self.backend.copy_into(parameter.slots[name], np.ascontiguousarray(
                        slots[(parameter.key, name)], dtype=self.dtype))
            self.optimizer.iterations = iterations
        self.seed = rng.check_seed(int(training.get("seed", self.seed)))
        self.epochs_done = int(training.get("epochs_done", 0))
        self.n_updates = int(training.get("n_updates", 0))
        self.callback_state = callbacks
        # the next fit continues this state in its callbacks of the same kind and monitor
        self._resume_callback_state = bool(callbacks)

    # -- copies -------------------------------------------------------------------------
    def clone(self, backend=None, dtype=None):
        """An independent copy with the same architecture, weights, counters and compile
        settings (not the optimiser's slots), optionally on another backend or dtype."""
        self._require_built()
        config = self.get_config()
        if backend is not None:
            config["backend"] = check_backend_name(backend)
        config["input_shape"] = None
        twin = Sequential.from_config(config)
        twin.build(self.input_shape, dtype=self.dtype if dtype is None else dtype)
        twin.set_weights(self.get_weights())
        twin.seed, twin.epochs_done, twin.n_updates = self.seed, self.epochs_done, self.n_updates
        twin.history = copy.deepcopy(self.history)
        if twin.optimizer is not None:
            twin.optimizer.build(twin._parameters, twin.backend)
        return twin

    def __reduce_ex__(self, protocol):
        raise TypeError("dlcore models are never pickled: save this Sequential with "
                        "dlcore.save(model, 'model.h5')")

    def __repr__(self):
        return (f"Sequential({len(self.layers)} layers, input_shape={self.input_shape}, "
                f"backend={self.backend_name!r})")


class _BatchBuffers:
    """The mini-batch arrays of one fit on the backend, allocated once."""

    def __init__(self, backend, capacity, sample_shape, width, dtype):
        self.backend = backend
        self.sample_shape = tuple(sample_shape)
        features = int(np.prod(sample_shape))
        self.x = backend.empty((capacity, features), dtype)
        self.y = backend.empty((capacity, width), dtype)
        self.grad = backend.empty((capacity, width), dtype)
        self.row_loss = backend.empty((capacity,), dtype)
        self.row_correct = backend.empty((capacity,), dtype)

    def gather(self, data, targets, rows):
        """The batch ``rows`` of (data, targets), gathered on the device."""
        n = len(rows)
        x, y = self.x[:n], self.y[:n]
        self.backend.gather_rows(data, rows, x)
        self.backend.gather_rows(targets, rows, y)
        return x.reshape((n,) + self.sample_shape), y

    def loss_buffers(self, n, width):
        if n > self.grad.shape[0]:
            self.__init__(self.backend, n, self.sample_shape, width, self.grad.dtype)
        return self.grad[:n], self.row_loss[:n], self.row_correct[:n]


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


class LayerSummary:
    """One row of :meth:`Sequential.summary`."""

    def __init__(self, name, class_name, output_shape, weights, biases, flops):
        self.name, self.class_name, self.output_shape = name, class_name, tuple(output_shape)
        self.weights, self.biases, self.flops = weights, biases, flops

    @property
    def params(self):
        return self.weights + self.biases


class Summary:
    """The numbers of :meth:`Sequential.summary`; ``str()`` is the table."""

    def __init__(self, rows, name, input_shape):
        self.rows, self.name, self.input_shape = rows, name, tuple(input_shape)
        self.total_weights = sum(r.weights for r in rows)
        self.total_biases = sum(r.biases for r in rows)
        self.total_params = self.total_weights + self.total_biases
        self.total_flops = sum(r.flops for r in rows)

    def __str__(self):
        header = ("Layer (type)", "Output shape", "Params", "Weights", "Biases", "FLOPs")
        table = [header, ("input", _shape_text(self.input_shape), "", "", "", "")]
        table += [(f"{r.name} ({r.class_name})", _shape_text(r.output_shape), f"{r.params:,}",
                   f"{r.weights:,}", f"{r.biases:,}", f"{r.flops:,}") for r in self.rows]
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]

        def line(row):
            return "  ".join([row[0].ljust(widths[0]), row[1].ljust(widths[1])]
                             + [cell.rjust(width) for cell, width in zip(row[2:], widths[2:])])

        rule = "-" * len(line(header))
        lines = [f'Network "{self.name}"', rule, line(header), rule]
        lines += [line(row) for row in table[1:]]
        lines += [rule,
                  f"Total parameters: {self.total_params:,} (weights {self.total_weights:,}, "
                  f"biases {self.total_biases:,})",
                  f"Forward FLOPs per sample: {self.total_flops:,} "
                  "(a multiply-add counts 2; element-wise layers 0)"]
        return "\n".join(lines)

    def __repr__(self):
        return (f"Summary(total_params={self.total_params}, total_weights={self.total_weights}"
                f", total_flops={self.total_flops})")


def _shape_text(shape):
    return "(None, " + ", ".join(str(v) for v in shape) + ")"


def _snake_case(name):
    """``MaxPool2D`` -> ``max_pool2d``, ``Conv2D`` -> ``conv2d``, ``ReLU`` -> ``relu``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z][a-z])", "_", name).lower()
