"""``Sequential``: a stack of layers, composed, with Keras' API.

Lecture "Deep learning I" introduces the Keras ``Sequential`` model (``add``, ``compile``,
``fit``, ``evaluate``, ``predict``); lecture "Supervised learning" what it computes: forward
propagation through the layers, the loss, and back-propagation of dL/do through every layer in
reverse ("given dL/dh^2 we can compute dL/dW^2 and dL/dh^1"). This module is the model: it names
and builds its layers, chooses the loss and optimiser (``compile``), and offers::

    forward(x)                       o = layer_L(... layer_1(x))    (what predict returns)
    backward(dL/do)                  dL/dinput = layer.backward(dL/doutput), last layer
                                     first, filling every layer's grads
    loss_rows(x, y, rows, gradient)  the loss of each sample and, with gradient, its
                                     back-propagation: the seam the training loop uses

with the weights, the configuration and the state a model file stores. A loss that fuses with
the final activation (softmax + cross-entropy, sigmoid + binary cross-entropy) takes the last
layer's pre-activations inside ``loss_rows``, whose gradient is then simply dL/dz = p - y;
``forward`` and ``backward`` always work on the outputs themselves. Training (``fit``,
``evaluate``, ``predict``, ``train_on_batch``, ``loss_and_gradient``) is
:class:`dlcore.training.TrainingLoop`'s, shared with every model that offers the same seam; the
summary table is :mod:`dlcore.summary`'s.

The network runs on one backend (``reference``, ``cpu`` or ``cuda``): every layer writes into
buffers it allocated on the first batch, so a pass allocates nothing. Results (``predict``, the
history, ``get_weights``) are NumPy.

Randomness comes from the network's ``seed`` through Philox: the initial weights of layer i
from its own key (:func:`dlcore.backend.rng.layer_seed`), the validation split from
``STREAM_SPLIT``, the batch order of epoch e from ``STREAM_SHUFFLE`` at step e, dropout, noise
and augmentation at the update number. Saving a network (``dlcore.save``) keeps the epoch and
update counters with the optimiser's state, so a loaded network continues training exactly as
the original would have.
"""
import copy
import json

import numpy as np

from dlcore.backend import check_backend_name, get_backend, rng
from dlcore.backend.rng import layer_seeds
from dlcore.callbacks import EarlyStopping, ReduceLROnPlateau
from dlcore.functional import (
    Model,
    ModelCall,
    SymbolicTensor,
    add_activity_penalties,
    check_loss_fits,
    default_layer_name,
    final_activation,
    has_automatic_name,
    keep_automatic_names,
    penalises_outputs,
)
from dlcore.io import register_model
from dlcore.keras_options import check_keras_compile_options, check_keras_summary_options
from dlcore.layers.base import (
    Layer,
    check_shape,
    computed_type,
    declared_float_type,
    layer_class,
    layer_entry,
)
from dlcore.losses import elementwise_correct, get_loss, output_channels
from dlcore.optimizers import loss_then_optimizer
from dlcore.optimizers import serialize as serialize_optimizer
from dlcore.summary import summarize
from dlcore.training import (
    TrainingLoop,
    accuracy_names,
    called_once,
    is_elementwise_accuracy,
    logits_of,
)
from dlcore.validation import check_model_name
from dlcore.wording import count

RESERVED_LAYER_NAMES = ("layer_names",)


@register_model
class Sequential(Model):
    """A linear stack of layers (Keras' ``Sequential``; lecture "Deep learning I").

    A :class:`dlcore.Model` (``isinstance(Sequential(...), dlcore.Model)``) that keeps its own
    linear path: its layers run one after the other, without a graph.

    Parameters
    ----------
    layers : list of :class:`dlcore.layers.Layer`, optional (``add`` appends more); the first
        may be a ``dlcore.Input(shape)``, as Keras 3 writes ``Sequential([keras.Input(shape),
        ...])``: it gives the input shape
    input_shape : tuple, optional, the per-sample input shape, e.g. ``(1, 28, 28)`` or
        ``(784,)``; else taken from the first layer's ``input_shape``, else from the data of
        the first ``fit``/``predict``
    backend : "auto", "cpu", "cuda" or "reference" (see :func:`dlcore.get_backend`)
    seed : int or None, the Philox key of every random draw (see the module docstring); None
        draws one from the operating system here, kept as the model's ``seed``
    name : str, optional

    Attributes
    ----------
    layers : list of layers, named uniquely (``conv2d``, ``conv2d_1``, ...)
    history : dict of per-epoch lists over every ``fit`` so far (``loss``, ``accuracy``,
        ``val_loss``, ``val_accuracy``, ``learning_rate``, ``seconds``)
    epochs_done, n_updates : counters of the training so far
    stop_training : set by a callback to end ``fit`` after the current epoch
    parameters : the :class:`dlcore.optimizers.Parameter` of every weight array (once built)
    """

    # the training loop's own input checks and predict (one input, one output)
    _checked_inputs = TrainingLoop._checked_inputs
    predict = TrainingLoop.predict
    _is_sequential = True
    #: the dtype ``build(dtype=)`` was given (None: the type the layers declare, decided again
    #: as :meth:`add` adds one)
    _chosen_dtype = None

    def __init__(self, layers=None, input_shape=None, backend="auto", seed=0, name=None):
        self.name = check_model_name(name, "sequential")
        #: the name dlcore chose (None when the user gave one): see Model._nested_layers
        self._automatic_name = None if name else self.name
        self.backend_name = check_backend_name(backend)
        self.seed = rng.check_seed(seed)
        self.input_shape = None if input_shape is None else check_shape(input_shape)
        self.layers = []
        self.built = False
        self.loss = self.optimizer = None
        self.metrics = []
        self._reset_training()
        self._parameters = []
        # checked as add checks each layer, then built once: building each as it comes
        # would remake the graph of all the layers before it (quadratic in their number,
        # minutes for the thousands of layers a hostile Keras file may list)
        layers = list(layers or [])
        # a layer named before (in another model) keeps its name: a fresh one is named past
        # it, as Keras names a layer once, when it is made
        named = {layer.name for layer in layers if isinstance(layer, Layer) and
                 layer.name is not None}
        taken = set()
        for layer in layers:
            if isinstance(layer, SymbolicTensor) and layer.is_input:
                self._add_input(layer)
            else:
                self._append(layer, taken, named)
        if self.layers and self.input_shape is not None:
            self.build()

    # -- construction -------------------------------------------------------------------
    def add(self, layer):
        """Append a layer (named, if it has no name, after its class: ``dense``, ``dense_1``).
        Once the input shape is known (``input_shape=`` here or on the first layer, Keras'
        ``input_dim=``), the network is built as layers come, as Keras builds it: the new
        layer gets its weights and ``summary`` works at once; the earlier layers keep theirs.
        ``add(dlcore.Input(shape))`` first gives the input shape (Keras 3's way)."""
        if isinstance(layer, SymbolicTensor) and layer.is_input:
            return self._add_input(layer)
        self._append(layer, {other.name for other in self.layers})
        try:
            if self.built:
                # the type the constructor would choose for these layers: a Dense(2) added to
                # a model of Dense(4, dtype="float64") makes it float32, as
                # Sequential([Dense(4, dtype="float64"), Dense(2)]) is
                dtype = (self.dtype if self._chosen_dtype is not None
                         else declared_float_type(self.layers))
                before = self.dtype
                self._build_layers(len(self.layers) - 1, self.output_shape, self.backend,
                                   dtype)
                if self.dtype != before:   # the earlier layers keep their weights, retyped
                    for earlier in self.layers[:-1]:
                        earlier.rebind(self.backend, self.dtype)
                    self._collect_parameters()
            elif self.input_shape is not None:
                self.build()
        except BaseException:
            self.layers.pop()   # a layer that does not fit leaves the network as it was
            raise
        return self

    def _append(self, layer, taken, named=()):
        """Append ``layer`` unbuilt, named and checked as :meth:`add` says; ``taken``, the
        names of the layers so far, gets its name; a fresh name is none of ``named`` either
        (the names of the layers still to come)."""
        if isinstance(layer, Model):
            # Keras's transfer-learning recipe, keras.Sequential([base, Dense(...)]): dlcore
            # nests a model through the functional API only, where it is one entry too
            raise TypeError(
                f"Sequential.add takes dlcore layers, not a model ({type(layer).__name__} "
                f"{layer.name!r}): nest it with the functional API, inputs = "
                f"dlcore.Input(shape); outputs = Dense(...)({layer.name}(inputs)); "
                "dlcore.Model(inputs, outputs)")
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add takes a dlcore layer (or dlcore.Input(shape) "
                            f"first), got {type(layer).__name__}")
        if layer.name is None or layer.name in taken and has_automatic_name(layer):
            # dlcore's name (here or in another model, as name_layers_uniquely renumbers it)
            layer.name = self._unique_name(default_layer_name(layer),
                                           taken | (set(named) - {layer.name}))
            layer._automatic_name = layer.name
        if layer.name in RESERVED_LAYER_NAMES or layer.name in taken:
            raise ValueError(f"layer name {layer.name!r} is already used in this network: "
                             f"give one of them another name="
                             if layer.name not in RESERVED_LAYER_NAMES
                             else f"layer name {layer.name!r} is reserved: give the layer "
                                  f"another name=")
        if not self.layers and self.input_shape is None and layer.input_shape is not None:
            self.input_shape = layer.input_shape
        self.layers.append(layer)
        taken.add(layer.name)

    def _add_input(self, tensor):
        """The input shape from ``dlcore.Input(shape)``, before any layer."""
        if self.layers:
            raise ValueError("dlcore.Input(shape) comes first in a Sequential, before its "
                             "layers (as keras.Input does)")
        if self.input_shape is not None and tuple(self.input_shape) != tuple(tensor.shape):
            raise ValueError(f"the Sequential's input_shape {tuple(self.input_shape)} and its "
                             f"Input's shape {tuple(tensor.shape)} differ: give one")
        self.input_shape = tuple(tensor.shape)
        return self

    def pop(self):
        """Remove the last layer and return it (Keras's ``Sequential.pop``): e.g. to put a new
        classifier on a pretrained net (``pop()``, then ``add(Dense(k, activation="softmax"))``;
        ``fit`` checks that the loss fits the last layer)."""
        if not self.layers:
            raise ValueError("the network has no layers to pop")
        layer = self.layers.pop()
        if self.built:
            if self.layers:
                self.output_shape = self.layers[-1].output_shape
                self._collect_parameters()
                self._symbolic_graph()
            else:
                self.built, self._parameters = False, []
        return layer

    @staticmethod
    def _unique_name(base, taken):
        if base not in taken:
            return base
        index = 1
        while f"{base}_{index}" in taken:
            index += 1
        return f"{base}_{index}"

    def build(self, input_shape=None, dtype=None):
        """Create every layer's parameters for per-sample inputs of ``input_shape`` in
        ``dtype`` (None: float64 where every layer says ``dtype="float64"``, else float32); a
        compiled network then checks its loss against the output width, now known."""
        if input_shape is not None:
            self.input_shape = check_shape(input_shape)
        if self.input_shape is None:
            raise ValueError("the input shape is unknown: give Sequential(input_shape=...), "
                             "input_shape= on the first layer, or call fit/predict first")
        if not self.layers:
            raise ValueError("the network has no layers: add some first")
        self._build_layers(0, self.input_shape, get_backend(self.backend_name),
                           declared_float_type(self.layers) if dtype is None else dtype)
        self._chosen_dtype = None if dtype is None else self.dtype
        return self

    def _build_layers(self, first, shape, backend, dtype):
        """Build layers ``first``, ... from per-sample inputs of ``shape`` (the output of the
        layer before) on ``backend`` in ``dtype`` with the model's seeds, then collect the
        parameters."""
        from dlcore.layers import ImageAugmentation
        dtype = computed_type(dtype)   # refused before any layer is touched
        for index, layer in enumerate(self.layers[first:], start=first):
            if index > 0 and isinstance(layer, ImageAugmentation):
                raise ValueError(f"ImageAugmentation must be the first layer (it is layer "
                                 f"{index}, {layer.name!r})")
        seeds = layer_seeds(self.seed, len(self.layers) - first, first)
        for layer, seed in zip(self.layers[first:], seeds):
            layer.build(shape, backend, dtype, seed=seed)
            shape = layer.output_shape
        self.output_shape, self.backend, self.dtype = shape, backend, dtype
        self.built = True
        self._collect_parameters()
        self._symbolic_graph()
        if self.loss is not None:
            self._checked_loss(self.loss)
        return self

    # -- the network as a graph (Keras's model.inputs, layer.output) ---------------------
    @property
    def inputs(self):
        """``[input tensor]`` of the network as a graph, once built (Keras's
        ``model.inputs``)."""
        return [self._symbolic_graph()[0]]

    @property
    def outputs(self):
        """``[output tensor]`` of the network as a graph, once built."""
        return [self._symbolic_graph()[1]]

    @property
    def input(self):
        return self.inputs[0]

    @property
    def output(self):
        return self.outputs[0]

    def _symbolic_graph(self):
        """(input, output) tensors of the layers called in turn on a :func:`dlcore.Input`,
        made again when the layers change; each layer's ``input`` and ``output`` are then its
        tensors here, so that ``dlcore.Model(net.input, net.get_layer(name).output)`` is the
        network up to that layer, sharing its weights."""
        from dlcore.functional import Input, call_layer
        self._require_built()
        key = (tuple(self.input_shape), tuple(id(layer) for layer in self.layers))
        cached = getattr(self, "_graph", None)
        if cached is None or cached[0] != key:
            x = start = Input(self.input_shape, name="input")
            for layer in self.layers:
                # this network's call is the layer's own, on the shape it is built for
                layer._first_node = layer._graph_input_shape = None
                x = call_layer(layer, x)
            cached = self._graph = (key, (start, x))
        return cached[1]

    # -- compile ------------------------------------------------------------------------
    def compile(self, loss="cross_entropy", optimizer="sgd", metrics=None, loss_weights=None,
                weighted_metrics=None, run_eagerly=False, steps_per_execution=1,
                jit_compile="auto", auto_scale_loss=True):
        """Choose the loss, the optimiser and the metrics.

        Parameters
        ----------
        loss : "cross_entropy" (fused with a final softmax), "binary_cross_entropy" (fused with
            a final sigmoid), "mse", or a :class:`dlcore.losses.Loss`, e.g.
            ``dlcore.losses.CategoricalCrossentropy(from_logits=True)`` for a linear last
            layer; a cross-entropy on outputs that are not probabilities is refused
        optimizer : "sgd", "adagrad", "rmsprop", "adam" or a :mod:`dlcore.optimizers` object
        metrics : list, ``["accuracy"]`` (or Keras's names of it: "acc",
            "categorical_accuracy", ...) or empty; the logs name it as given (``acc``,
            ``val_acc``). ``"binary_accuracy"`` counts each output right against 0.5 (Keras's,
            for multi-label sigmoid outputs); the others, as Keras resolves "accuracy", take
            the argmax of a row of several outputs (a 0.5 threshold for one output); nested
            in lists or a dict (``{"dense": "acc"}``), as Keras 3 takes them, they are all
            this one output's
        loss_weights : None (Keras's argument: a :class:`dlcore.Model` with several outputs
            takes them)
        weighted_metrics : None (dlcore's metrics are not weighted; anything else is refused)
        run_eagerly, steps_per_execution, jit_compile, auto_scale_loss : Keras's, taken with
            any valid value: they change how Keras runs, not what it computes, and dlcore
            always runs its compiled kernels eagerly, a batch a step, in float32

        Keras's order, the optimiser first (``compile("adam", "categorical_crossentropy")``),
        is taken too, and its keywords (``compile(optimizer="adam", loss=...)``).

        Returns
        -------
        self
        """
        check_keras_compile_options(weighted_metrics, run_eagerly, steps_per_execution,
                                    jit_compile, auto_scale_loss)
        from dlcore.io.keras_training import keras_objects_as_dlcores
        loss, optimizer, metrics = keras_objects_as_dlcores(loss, optimizer, metrics)
        if loss_weights is not None:
            raise ValueError("loss_weights weigh the outputs of a dlcore.Model with several; a "
                             "Sequential has one output (scale the learning rate instead)")
        loss, optimizer = loss_then_optimizer(loss, optimizer)
        self.loss = self._checked_loss(get_loss(loss))
        self.optimizer = self._compiled_optimizer(optimizer)
        self.metrics = accuracy_names(metrics, ["output"])[0]
        if self.built:
            self.optimizer.build(self._parameters, self.backend)
        return self

    def _checked_loss(self, loss):
        """``loss`` once it fits the last layer's output (see
        :func:`dlcore.losses.check_output_activation`): at compile, at build (the output width is
        then known) and before training (for layers added after compile)."""
        return check_loss_fits(loss, self.layers[-1]) if self.layers else loss

    def check_compiled(self):
        """RuntimeError unless compiled; ValueError when the loss does not fit the last layer."""
        if self.loss is None:
            raise RuntimeError("compile the network first: model.compile(loss=..., "
                               "optimizer=..., metrics=[...])")
        self._checked_loss(self.loss)

    @property
    def _fused(self):
        """True when the loss absorbs the last layer's activation (softmax + cross-entropy,
        sigmoid + binary cross-entropy): the last layer then hands over pre-activations."""
        return (self.loss is not None and self.loss.fuses_with is not None
                and final_activation(self.layers[-1]) == self.loss.fuses_with
                and not penalises_outputs(self.layers[-1]))

    # -- computing ----------------------------------------------------------------------
    def forward(self, x, training=False, step=0):
        """The outputs of the network for a batch, on its backend.

        Parameters
        ----------
        x : (n, *input_shape) backend array of the network's dtype
        training : bool, switches on dropout, noise and augmentation
        step : int, their Philox step (the update number during ``fit``)

        Returns
        -------
        (n, *output_shape) backend array: the last layer's outputs (class probabilities after a
        softmax), as ``predict`` returns them. The layers keep what :meth:`backward` needs.
        """
        return self._forward(x, training, step, fused=False)

    def backward(self, grad, need_input_gradient=False):
        """Back-propagate dL/doutputs (``grad``, shaped as the outputs of the last
        :meth:`forward`) through every layer, last first, filling each layer's ``grads`` (so
        each Parameter's ``grad``) with dL/dweights. Returns dL/dx, (n, *input_shape), when
        ``need_input_gradient``, else None."""
        return self._backward(grad, fused=False, need_input_gradient=need_input_gradient)

    def running_layers(self):
        """The layers in the order they run (a nested model as one entry)."""
        return self.layers

    def _product_step_layers(self):
        # the same layer object twice in the stack would have one gradient for two calls
        return called_once(self.layers, self.layers)

    def loss_rows(self, x, targets, rows, training=False, step=0, gradient=False,
                  input_gradient=False, weights=None):
        """The loss of every sample of a batch, and with ``gradient`` its back-propagation.

        The last layer hands over its pre-activations when the loss fuses with its activation
        (softmax + cross-entropy: the loss computes log p stably, and dL/dz = p - y).

        Parameters
        ----------
        x : (n, *input_shape) backend array
        targets : (n, k) backend array (k outputs)
        rows : :class:`dlcore.training.LossRows` of n rows: receives ``grad`` (n, k), the
            gradient of the batch mean with respect to what the loss took, ``loss`` (n,) each
            sample's loss, ``correct`` (n,) 1.0 where the prediction is right
        training, step : as for :meth:`forward`
        gradient : also back-propagate: each Parameter's ``grad`` then holds d(mean loss)/d
            value (without weight decay, which the optimiser adds)
        input_gradient : with ``gradient``, return dL/dx ((n, *input_shape) backend array)
        weights : (n, 1) backend array or None: each sample's loss, and its part of the
            gradient, multiplied by its weight (``fit``'s sample and class weights)

        Returns
        -------
        dL/dx with ``input_gradient``, else None.
        """
        fused = self._fused
        outputs = self._forward(x, training, step, fused)
        n = outputs.shape[0]
        self.loss.loss_and_gradient(self.backend, outputs.reshape(n, -1), targets, rows.grad,
                                    rows.loss, rows.correct, fused,
                                    output_channels(self.output_shape))
        if is_elementwise_accuracy(self.metrics):
            elementwise_correct(self.backend, outputs.reshape(n, -1), targets, rows.correct,
                                logits_of(self.loss, fused), output_channels(self.output_shape))
        if weights is not None:
            self._weigh(rows.grad.reshape(len(weights), -1), weights)
            self._weigh(rows.loss.reshape(-1, 1), weights)
        add_activity_penalties(self, rows.loss)
        if gradient:
            return self._backward(rows.grad.reshape(outputs.shape), fused, input_gradient)
        return None

    def _forward(self, x, training, step, fused):
        for layer in self.layers:   # a layer's dtype= that the model's one type overrules
            layer.tell_overruled_dtype()
        for layer in self.layers[:-1]:
            x = layer.forward(x, training=training, step=step)
        last = self.layers[-1]
        if fused:
            return last.forward(x, training=training, step=step, apply_activation=False)
        return last.forward(x, training=training, step=step)

    def _backward_plan(self, training):
        """The index of the lowest layer named in ``training`` (the layers below it need no
        backward pass), None when there is none."""
        return next((index for index, layer in enumerate(self.layers)
                     if layer.name in training), None)

    def _backward(self, grad, fused, need_input_gradient):
        lowest = 0 if need_input_gradient else self._training_plan()[1]
        if lowest is None:
            return None   # nothing trains: no gradient is needed
        for index in range(len(self.layers) - 1, lowest - 1, -1):
            layer = self.layers[index]
            needed = index > lowest or need_input_gradient
            if fused and index == len(self.layers) - 1:
                grad = layer.backward(grad, needed, apply_activation=False)
            else:
                grad = layer.backward(grad, needed)
        return grad

    # -- weights ------------------------------------------------------------------------
    def get_weights(self, layout="dlcore"):
        """All parameters as a list of NumPy arrays, layer by layer (kernel, then bias);
        ``layout="keras"``: in the order and layouts of ``keras_model.get_weights()``
        (:meth:`dlcore.Model.get_weights`)."""
        self._require_built()
        return super().get_weights(layout)

    def _require_built(self):
        if not self.built:
            raise RuntimeError("the network is not built: give it an input shape, or call "
                               "fit/predict first")

    def summary(self, line_length=None, positions=None, print_fn=print, expand_nested=False,
                show_trainable=False, layer_range=None):
        """Print, per layer, the output shape, the parameter count and the forward FLOPs per
        sample, then the totals (lecture "Supervised learning": "Compute flops and nr.
        params."; the table is :mod:`dlcore.summary`'s). ``print_fn=None`` prints nothing
        (the table is returned). Keras's other arguments are taken: ``show_trainable`` and
        ``expand_nested`` with any bool (the table always marks frozen layers, and a model
        used as a layer is inlined, so always expanded), ``line_length`` and ``positions`` as
        Keras checks them (dlcore's columns are its own, sized to fit), ``layer_range`` None
        only.

        FLOPs: a multiply-add counts 2 (so a Dense layer costs 2 * in * out and a Conv2D
        2 * C k_h k_w * F * H' W' per sample); element-wise layers count 0.

        Returns
        -------
        :class:`dlcore.summary.Summary` with the same numbers (``rows``, ``total_params``, ...)
        and the table's text (``table``). Its ``str()`` is the table when ``print_fn=None``,
        else (the table printed) the one line of its repr, so that ``print(model.summary())``
        shows the table once, as Keras's (whose ``summary()`` returns None).
        """
        check_keras_summary_options(line_length, positions, expand_nested, show_trainable,
                                    layer_range)
        self._require_built()
        summary = summarize(self.name, self.input_shape, self.layers, self._trains)
        summary.show(print_fn)
        return summary

    # -- files (the dlcore.io protocol) -------------------------------------------------
    def get_config(self):
        """Architecture, backend, seed and compile settings, JSON-serialisable."""
        config = {"name": self.name, "backend": self.backend_name, "seed": str(self.seed),
                  "input_shape": None if self.input_shape is None else list(self.input_shape),
                  "layers": [layer_entry(layer) for layer in self.layers]}
        if not self.trainable:
            config["trainable"] = False
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
            if layer_class(class_name) is None:
                raise ValueError(f"unknown layer class {class_name!r}")
            layers.append(layer_class(class_name).from_config(dict(entry["config"])))
        model = cls(layers, input_shape=config.get("input_shape"),
                    backend=config.get("backend", "auto"), seed=int(config.get("seed", 0)),
                    name=config.get("name"))
        model._keep_trainable(config)
        compiled = config.get("compile")
        if compiled:
            model.compile(compiled["loss"], compiled["optimizer"], compiled.get("metrics"))
        return model

    def get_state(self):
        """Weights under ``layers/<layer>/kernel`` and ``bias`` (with the ``layer_names`` and
        ``weight_names`` index as JSON text), training counters and optimiser slots under
        ``training/`` (schema: docs/hdf5-format.md, "Sequential networks")."""
        self._require_built()
        layers = {"layer_names": json.dumps([layer.name for layer in self.flat_layers])}
        for layer in self.flat_layers:
            group = {"weight_names": json.dumps(list(layer.array_names))}
            group.update(zip(layer.array_names, layer.get_weights()))
            layers[layer.name] = group
        training = {"seed": str(self.seed), "epochs_done": int(self.epochs_done),
                    "n_updates": int(self.n_updates)}
        if self.optimizer is not None and hasattr(self.optimizer, "backend"):
            training["optimizer"] = self.optimizer.get_state(self._parameters)
        if self.callback_state:
            # what a resumed fit needs of its callbacks (EarlyStopping's best epoch and weights,
            # ReduceLROnPlateau's counts)
            training["callbacks"] = self.callback_state
        return {"layers": layers, "training": training}

    def set_state(self, state):
        """Validate every array against the architecture, then assign (dlcore.io protocol)."""
        self._require_built()
        layers_state = state.get("layers")
        if not isinstance(layers_state, dict):
            raise ValueError("group 'layers' is missing")
        weights = []
        for layer in self.flat_layers:
            group = layers_state.get(layer.name)
            if not isinstance(group, dict):
                raise ValueError(f"group 'layers/{layer.name}' is missing")
            for name in layer.array_names:
                current = layer._array(name)
                value = group.get(name)
                if not isinstance(value, np.ndarray) or value.shape != tuple(current.shape):
                    raise ValueError(f"dataset 'layers/{layer.name}/{name}' has shape "
                                     f"{getattr(value, 'shape', None)}; expected "
                                     f"{tuple(current.shape)}")
                weights.append(value)
        if weights and self.dtype != np.float64 \
                and all(weight.dtype == np.float64 for weight in weights):
            # a float64 model's file (a float64 Keras import): computed in float64 again,
            # its weights to the bit, not rounded into the float32 it was built in
            self.build(dtype=np.float64)
        training = state.get("training", {})
        callbacks = training.get("callbacks")
        callbacks = ({name: value for name, value in callbacks.items() if isinstance(value, dict)}
                     if isinstance(callbacks, dict) else {})
        if "EarlyStopping" in callbacks:   # checked here: a bad file fails at load, not in fit
            EarlyStopping.check_state(callbacks["EarlyStopping"],
                                      [weight.shape for weight in weights])
        if "ReduceLROnPlateau" in callbacks:
            ReduceLROnPlateau.check_state(callbacks["ReduceLROnPlateau"])
        optimizer_state = training.get("optimizer")
        optimizer = None
        if optimizer_state is not None and self.optimizer is not None:
            self.optimizer.build(self._parameters, self.backend)  # the slots the state fills
            optimizer = self.optimizer.check_state(optimizer_state, self._parameters)
        self.set_weights(weights)
        if optimizer is not None:
            self._adopt_optimizer_state(*optimizer)
        self.seed = rng.check_seed(int(training.get("seed", self.seed)))
        self.epochs_done = int(training.get("epochs_done", 0))
        self.n_updates = int(training.get("n_updates", 0))
        self.continue_callback_state(callbacks)

    # -- copies -------------------------------------------------------------------------
    def clone(self, backend=None, dtype=None):
        """An independent copy with the same architecture, weights, counters and compile
        settings (not the optimiser's slots), optionally on another backend or dtype."""
        self._require_built()
        config = self.get_config()
        if backend is not None:
            config["backend"] = check_backend_name(backend)
        config["input_shape"] = None
        twin = keep_automatic_names(self, Sequential.from_config(config))
        twin.build(self.input_shape, dtype=self._chosen_dtype if dtype is None else dtype)
        twin.set_weights(self.get_weights())
        twin.seed, twin.epochs_done, twin.n_updates = self.seed, self.epochs_done, self.n_updates
        twin.history = copy.deepcopy(self.history)
        if twin.optimizer is not None:
            twin.optimizer.build(twin._parameters, twin.backend)
        return twin

    def __call__(self, x, training=False):
        """On a symbolic tensor (a model used as a layer): its layers called in turn on it.
        On arrays, as Keras's ``model(x)``: :meth:`predict`'s outputs (evaluation mode;
        ``training=True`` is refused: use ``train_on_batch``)."""
        from dlcore.functional import is_symbolic
        if not is_symbolic(x):
            if training:
                raise ValueError("model(x, training=True) on arrays is not dlcore's: call "
                                 "model(x) (evaluation mode), or train with train_on_batch")
            return self.predict(x)
        call = ModelCall(self)   # the outer model lists this network as one layer
        for layer in self.layers:
            x = layer(x)
            x.node.call = call
        return x

    def __reduce_ex__(self, protocol):
        """pickle and copy.deepcopy go through the file's config and state (arrays and plain
        values, :func:`dlcore.params.reduce_through_state`); an unbuilt network has no state."""
        from dlcore.params import reduce_through_state
        return reduce_through_state(self, fitted=self.built)

    def __repr__(self):
        return (f"Sequential({count(len(self.layers), 'layer')}, input_shape={self.input_shape}, "
                f"backend={self.backend_name!r})")

