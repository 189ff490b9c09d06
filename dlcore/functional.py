"""Functional models: ``Input``, layers called on tensors, and ``Model(inputs, outputs)``.

Lecture "Deep learning I", "Defining a functional model": with Keras' functional API a layer is
called on a tensor and returns a tensor, and a ``Model`` is defined by its input and output
tensors; it allows several inputs and outputs, shared layers (one layer object called twice,
as the lecture's siamese "tell digits apart" model calls one vision model on two digits) and
models used as layers. Lecture "Convolutional Neural Networks" (2019), residual connections:
``add([x, F(x)])``. dlcore's version, in NCHW::

    inputs = dlcore.Input(shape=(1, 28, 28))          # the per-sample shape, no batch axis
    x = dlcore.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    z = dlcore.layers.add([x, dlcore.layers.Conv2D(8, 3, padding="same")(x)])
    out = dlcore.layers.Dense(10, activation="softmax")(dlcore.layers.Flatten()(z))
    model = dlcore.Model(inputs=inputs, outputs=out)

The graph: every call of a layer on symbolic tensors is a node (the layer, its input tensors,
its output tensor). ``Model`` keeps the nodes that the outputs depend on in topological order:
``forward`` runs them in that order, ``backward`` in reverse, summing the gradients of a tensor
that feeds several nodes (fan-out). A layer called k times has k nodes; the last runs the
layer itself and each other a twin that shares its parameters but keeps its own activations
for the backward pass. A shared layer's gradient is the sum over its uses, accumulated into its
one gradient set as the backward pass reaches each call (the twins write through one scratch
set per model), so its gradient memory does not grow with the number of calls. A model called
on a tensor adds its own nodes again, on the same layers (weights and all shared).

Training is :class:`dlcore.training.TrainingLoop`'s, as for ``Sequential``. Several inputs are
given as a list of arrays; the loop sees them packed side by side as rows (``input_shape`` is
then the packed width), and ``forward`` takes them apart again.
"""
import collections
import copy
import os
import warnings

import numpy as np

from dlcore import wording
from dlcore.backend import check_backend_name, get_backend, rng
from dlcore.backend.rng import layer_seeds
from dlcore.io import register_model
from dlcore.keras_options import (
    check_keras_compile_options,
    check_keras_load_options,
    check_keras_save_options,
    check_keras_summary_options,
)
from dlcore.layers.base import (
    WeightedLayer,
    check_shape,
    computed_type,
    declared_float_type,
    layer_entry,
    weight_values,
)
from dlcore.layers.core import Activation
from dlcore.layers.geometry import stacklevel_outside_dlcore
from dlcore.layers.ops import ops_for
from dlcore.losses import (
    check_output_activation,
    elementwise_correct,
    get_loss,
    known_output_width,
    output_channels,
)
from dlcore.optimizers import Parameter, loss_then_optimizer
from dlcore.summary import LayerSummary, Summary, summarize
from dlcore.training import (
    TrainingLoop,
    accuracy_names,
    by_name,
    called_once,
    every_output,
    is_elementwise_accuracy,
    logits_of,
    one_call_at_a_time,
)
from dlcore.validation import check_batch, check_bool, check_float, check_model_name, is_integer

__all__ = ["Input", "Model", "ModelCall", "SymbolicTensor", "call_layer", "is_symbolic"]

#: The most tensors one node of a graph may take (a file's graph is checked against it).
MAX_NODE_INPUTS = 64


class Node:
    """One call of a layer: ``layer``, its ``inputs`` (symbolic tensors; a list when the layer
    takes a list) and its ``output`` tensor. An :func:`Input` is a node without a layer."""

    #: the :class:`ModelCall` this node belongs to when a model called on tensors made it
    call = None

    def __init__(self, layer, inputs, takes_list):
        self.layer, self.inputs, self.takes_list = layer, list(inputs), takes_list
        self.output = None


class ModelCall:
    """One call of a model on symbolic tensors (a model used as a layer): the nodes it adds to
    the graph carry it, so that the model that contains them lists the called ``model`` as one
    layer (Keras's ``model.layers``) while running its layers' nodes as its own."""

    def __init__(self, model):
        self.model = model


class SymbolicTensor:
    """A tensor of a graph: its per-sample ``shape`` and the node that makes it (``dlcore.Input``
    or a layer's call)."""

    def __init__(self, shape, node, name):
        self.shape, self.node, self.name = tuple(shape), node, name

    @property
    def is_input(self):
        return self.node.layer is None

    @property
    def dtype(self):
        """Keras's ``tensor.dtype``: the type its layer declares ("float64" for
        ``dtype="float64"``), else "float32", dlcore's default (a model computes in float64
        only where all its layers declare it)."""
        layer = self.node.layer
        declared = getattr(layer, "dtype", None) if getattr(layer, "built", False) else \
            getattr(layer, "float_type", None)
        return str(np.dtype(declared or np.float32))

    def __repr__(self):
        # the shape as .shape gives it, per sample: Keras's (None, ...) batch axis is not
        # dlcore's, and a repr that showed it contradicted the attribute
        return f"<SymbolicTensor {self.name!r} shape={self.shape} (per sample)>"


def Input(shape=None, name=None, *, batch_size=None, dtype=None, sparse=None, ragged=None,
          batch_shape=None, tensor=None, optional=False):
    """A symbolic input of per-sample ``shape`` (NCHW without the batch axis, e.g.
    ``(1, 28, 28)`` or ``(784,)``), Keras' ``Input``, whose keyword arguments it takes:
    ``batch_shape`` instead of ``shape`` (the batch axis first, its size left out as
    ``batch_size`` is: any batch size runs); ``dtype`` None or float32 (a model computes in its
    layers' dtype); the rest (sparse, ragged, an existing tensor, optional inputs) refused in
    one line. ``name`` is the second positional argument, as it always was here."""
    if shape is not None and batch_shape is not None:
        raise ValueError("give Input shape= (per sample) or batch_shape= (with the batch axis "
                         "first), not both")
    if batch_shape is not None:
        batch_shape = _checked_batch_shape(batch_shape)
        shape = batch_shape[1:]
    if shape is None:
        raise ValueError("Input needs the per-sample shape=, e.g. Input(shape=(784,)) or "
                         "Input(shape=(1, 28, 28))")
    shape = check_shape(shape, "Input shape")
    if batch_size is not None and (not is_integer(batch_size) or batch_size < 1):
        raise ValueError(f"Input batch_size must be a positive integer or None, got "
                         f"{batch_size!r:.40}")
    if computed_type(dtype) != np.float32:
        raise ValueError("Input dtype='float64': a dlcore model computes in its layers' dtype, "
                         "float32 unless they declare float64; leave dtype out, and for "
                         "float64 give the layers dtype='float64' (or model.clone("
                         "dtype=np.float64))")
    for argument, value in (("sparse", sparse), ("ragged", ragged), ("tensor", tensor),
                            ("optional", optional)):
        if value is not None and value is not False:
            raise ValueError(f"Input {argument}= is Keras's, which dlcore does not have: its "
                             f"inputs are dense float arrays, each given to fit and predict; "
                             f"leave {argument} out")
    if name is not None and (not isinstance(name, str) or not name or "/" in name):
        raise ValueError(f"an Input name must be a non-empty string without '/', got {name!r}")
    node = Node(None, [], False)
    node.output = SymbolicTensor(shape, node, name)
    return node.output


def _checked_batch_shape(batch_shape):
    """Keras's ``batch_shape``: a sequence whose first entry, the batch size, is None or a
    positive integer; the per-sample rest is checked as a shape."""
    try:
        batch_shape = tuple(batch_shape)
    except TypeError:
        batch_shape = ()
    if len(batch_shape) < 2 or not (batch_shape[0] is None or (
            is_integer(batch_shape[0]) and batch_shape[0] >= 1)):
        raise ValueError(f"Input batch_shape must be (batch size or None, then the per-sample "
                         f"shape), e.g. (None, 784); got {batch_shape!r:.80}")
    return batch_shape


def is_symbolic(x):
    """True for a symbolic tensor or a non-empty list of them."""
    if isinstance(x, SymbolicTensor):
        return True
    return (isinstance(x, (list, tuple)) and len(x) > 0
            and all(isinstance(t, SymbolicTensor) for t in x))


def refuse_keras_tensors(what, x):
    """A TypeError in one line when ``x`` (a tensor, a list or a dict of them) holds a Keras
    tensor (``keras.Input``, a Keras layer's output): the two libraries' graphs do not mix, and
    NumPy's reading of one ended in Keras's "A KerasTensor is symbolic ... You cannot convert
    it to a NumPy array". ``what`` names the layer or model called."""
    values = x.values() if isinstance(x, dict) else x if isinstance(x, (list, tuple)) else [x]
    if any(type(value).__name__ == "KerasTensor" and
           type(value).__module__.split(".")[0] in ("keras", "tf_keras") for value in values):
        raise TypeError(f"{what} was called on a Keras tensor (keras.Input or a Keras layer's "
                        f"output): dlcore's layers and models take dlcore.Input tensors or "
                        f"arrays; build the graph with dlcore.Input and dlcore.layers, or all "
                        f"of it in Keras and dlcore.load the file it saves")


def call_layer(layer, x):
    """``layer(x)`` on symbolic tensors: a new node and its output tensor (the shapes checked
    now, in one line naming the layer)."""
    takes_list = getattr(layer, "takes_list", False)
    if isinstance(x, (list, tuple)) and not takes_list:
        if len(x) != 1:
            raise ValueError(f"layer {layer.name or type(layer).__name__!r} takes one tensor, "
                             f"got a list of {len(x)}")
        x = x[0]
    if takes_list and not isinstance(x, (list, tuple)):
        raise ValueError(f"{type(layer).__name__} takes a list of tensors, got one tensor")
    inputs = list(x) if takes_list else [x]
    shape = [t.shape for t in inputs] if takes_list else inputs[0].shape
    first = getattr(layer, "_graph_input_shape", None)
    if first is None and layer.built:
        first = layer.input_shape
    label = layer.name or type(layer).__name__
    if first is not None and _shape_key(first) != _shape_key(shape):
        raise ValueError(f"layer {label!r} was first called (or built) on inputs of shape "
                         f"{first}; a shared layer needs the same shape, got {shape}")
    try:
        output_shape = layer.compute_output_shape(shape)
    except ValueError as error:
        raise ValueError(f"layer {label!r}: {error}") from None
    layer._graph_input_shape = shape
    node = Node(layer, inputs, takes_list)
    node.output = SymbolicTensor(output_shape, node, None)
    if getattr(layer, "_first_node", None) is None:
        layer._first_node = node   # its input and output, as Keras's layer.input and .output
    return node.output


def _shape_key(shape):
    if shape and isinstance(shape[0], (list, tuple)):
        return tuple(tuple(s) for s in shape)
    return tuple(shape)


def _keyed(value, what):
    """A dict of tensors (Keras's ``Model(inputs={...}, outputs={"score": ...})``) as its
    sorted keys, Keras's flattened order, and its tensors in that order; anything else as it
    is, without keys."""
    if not isinstance(value, dict):
        return None, value
    if not value or not all(isinstance(key, str) for key in value):
        raise TypeError(f"Model {what} given as a dict need string keys, one per tensor, got "
                        f"{sorted(map(repr, value))[:8]}")
    keys = sorted(value)
    return keys, [value[key] for key in keys]


def _warn_of_keys_not_named(keys, tensors):
    """A UserWarning for each key of a dict of inputs that is not its Input's name, as Keras's
    ``Model`` warns at build (it maps arrays by key: the tensor's name is then another name)."""
    for key, tensor in zip(keys, tensors):
        name = getattr(tensor, "name", key) if isinstance(tensor, SymbolicTensor) else key
        if name != key:
            named = f"the Input named {name!r}" if name is not None else "an unnamed Input"
            warnings.warn(f"Model inputs given as a dict: key {key!r} maps to {named}; Keras "
                          f"warns so too (a dict's keys must be its Inputs' names): name it "
                          f"Input(..., name={key!r})", UserWarning,
                          stacklevel=stacklevel_outside_dlcore())


def _as_list(value, what):
    if isinstance(value, SymbolicTensor):
        return [value], False
    if isinstance(value, (list, tuple)) and value:
        return list(value), True
    raise TypeError(f"Model {what} must be a symbolic tensor (from dlcore.Input or a layer "
                    f"call) or a list of them, got {type(value).__name__}")


def default_layer_name(layer):
    """Keras's default name of a layer of its class (``max_pooling2d``, ``conv2d_transpose``,
    ``leaky_re_lu``), so that Keras code addressing layers by name (``get_layer``) finds
    them: the snake case of the class's Keras name (``keras_class_name`` where dlcore's class
    is named otherwise)."""
    from dlcore.io.keras_weights import snake_case
    return snake_case(getattr(type(layer), "keras_class_name", type(layer).__name__))


class LayerParameter(Parameter):
    """A layer's weight array as the optimiser sees it, its ``key`` ("layer_name/weight_name")
    following the layer's name: a model assembled later may rename a layer dlcore named
    (:func:`name_layers_uniquely`), and the models that hold it already go on finding it."""

    def __init__(self, layer, weight_name, *arguments, **options):
        self._layer, self._weight_name = layer, weight_name
        super().__init__(None, *arguments, **options)

    @property
    def key(self):
        return f"{self._layer.name}/{self._weight_name}"

    @key.setter
    def key(self, _):
        """(the dataclass's __init__ sets it; the layer's name is the key)"""


def has_automatic_name(layer):
    """Whether ``layer``'s name is the one dlcore gave it (the user gave none)."""
    return layer.name is not None and getattr(layer, "_automatic_name", None) == layer.name


def automatic_names(model):
    """Which names of ``model`` dlcore chose, ``(its own?, [positions in flat_layers])``: what
    a copy made from its config (:func:`keep_automatic_names`, pickle) marks again."""
    return (getattr(model, "_automatic_name", None) == model.name,
            [index for index, layer in enumerate(model.flat_layers)
             if has_automatic_name(layer) or layer.name is not None
             and getattr(layer, "_dlcore_name", None) == layer.name])


def keep_automatic_names(model, copy, names=None):
    """Mark the names of ``copy`` (made from ``model``'s config) that dlcore chose in
    ``model`` (or ``names``, :func:`automatic_names`' of it) as its own again: a model
    assembled later numbers them on, as it would the original's (two clones of a net side by
    side, Keras's ``clone_model`` habit). Returns ``copy``."""
    own, positions = automatic_names(model) if names is None else names
    if own:
        copy._automatic_name = copy.name
    layers = copy.flat_layers
    for index in positions:
        if 0 <= index < len(layers):
            layers[index]._automatic_name = layers[index].name
    return copy


def _refuse_copies_side_by_side(models):
    """ValueError in one line when two different ``models`` called in one model share their
    name (two copies of one file: Keras refuses them, "The name 'functional' is used 2 times
    in the model"), or hold different layers of one name that the user or a file gave (Keras
    scopes a layer's name by its model; dlcore names a model's layers once, its nested
    models' included). The line gives the renaming that lets them side by side."""
    def fix(model, renamed=None):
        start = (f"rename one copy and its layers before calling it: copy.name = "
                 f"{renamed!r}; " if renamed else "rename the layers of one before calling it: ")
        return (f"{start}for layer in copy.flat_layers: layer.name = "
                f"'{renamed or model.name}_' + layer.name")

    seen, holder = {}, {}
    for model in models:
        other = seen.setdefault(model.name, model)
        if other is not model and getattr(model, "_automatic_name", None) != model.name:
            raise ValueError(f"two different models called here are both named "
                             f"{model.name!r} (two copies of one file?), which Keras refuses "
                             f"too (\"the name is used 2 times\"): "
                             f"{fix(model, model.name + '_copy')}")
        for layer in model.flat_layers:
            if layer.name is None or has_automatic_name(layer) or \
                    getattr(layer, "_dlcore_name", None) == layer.name:
                continue   # a name dlcore chose is numbered on (name_layers_uniquely)
            owner, first = holder.setdefault(layer.name, (model, layer))
            if first is not layer and owner is not model:
                raise ValueError(f"layer name {layer.name!r} is held by different layers of "
                                 f"the models {owner.name!r} and {model.name!r} called here "
                                 f"(two copies of one file?): dlcore names a model's layers "
                                 f"once, its nested models' included (Keras names them per "
                                 f"model): {fix(model)}")


def name_layers_uniquely(layers, where, avoid=()):
    """Give each of ``layers`` (in the order they are first called) a name of its own, as
    Keras's names are (it names a layer uniquely when it is made: ``dense``, ``dense_1``).

    A layer without a name gets its class's (:func:`default_layer_name`), numbered past those
    that the others hold (a layer named in another model keeps its name there and here, as a
    Keras layer keeps the name it was made with); so does one that dlcore named before (in
    another model: two Sequentials each with a ``dense``, combined as Keras's
    transfer-learning recipe combines a base and a head) whose name a layer listed earlier,
    or one the user named, holds. A name the user gave is never changed: two such, the same,
    are refused in one line naming the fix. A name numbered on is none of ``avoid`` either.
    """
    def automatic(layer):
        return layer.name is None or has_automatic_name(layer)

    taken = set()
    for layer in layers:
        if not automatic(layer):
            if layer.name in taken:
                raise ValueError(f"layer name {layer.name!r} is used by two layers of {where}: "
                                 f"give one of them another name=")
            taken.add(layer.name)
    if "layer_names" in taken:
        raise ValueError("layer name 'layer_names' is reserved (dlcore's files list the "
                         "layers under it): give the layer another name=")
    # the names dlcore gave before stay with the first layer holding each: a fresh layer is
    # named past them, not they past it (which renamed them in the models holding them)
    owner = {}
    for layer in layers:
        if automatic(layer) and layer.name is not None and layer.name not in taken:
            owner.setdefault(layer.name, layer)
    taken |= set(owner)
    for layer in layers:
        if not automatic(layer) or layer.name is not None and owner.get(layer.name) is layer:
            continue   # a name the user gave, or dlcore's, kept
        base, index = default_layer_name(layer), 1
        name = base
        while name in taken or name in avoid or name == "layer_names":
            name, index = f"{base}_{index}", index + 1
        layer.name = layer._automatic_name = name
        taken.add(name)


def topological_nodes(inputs, outputs):
    """The layer nodes the outputs depend on, each after the nodes of its inputs (iterative
    depth-first search: no recursion limit); ValueError in one line for a tensor that depends on
    an input not among ``inputs``."""
    order, state = [], {}
    input_ids = {id(t) for t in inputs}
    for output in outputs:
        stack = [(output, False)]
        while stack:
            tensor, done = stack.pop()
            node = tensor.node
            if done:
                if state.get(id(node)) != "done":
                    state[id(node)] = "done"
                    order.append(node)
                continue
            if id(tensor) in input_ids or state.get(id(node)) == "done":
                continue
            if node.layer is None:
                raise ValueError(f"output {output!r} is not connected to the model's inputs: it "
                                 f"depends on {tensor!r}, which is not among them")
            state[id(node)] = "open"
            stack.append((tensor, True))
            stack.extend((t, False) for t in reversed(node.inputs))
    return order


def keras_layer_order(inputs, outputs, nodes):
    """The layers of ``nodes`` (:func:`topological_nodes`) in the order of Keras's
    ``model.layers`` for the same graph (Keras's ``map_graph``,
    :func:`dlcore.io.keras_weights.map_graph`): by decreasing depth from the outputs, ties in
    the order a depth-first walk from the outputs first reaches them; a residual block's
    projection shortcut comes after the main path's first convolution, however the graph was
    written. ``get_weights``, ``set_weights`` and ``summary`` follow it, so that
    ``keras_model.set_weights(model.get_weights())`` fits the same architecture built in
    Keras (a model called inside this one is inlined: its layers take their places among
    these, where Keras lists the model as one layer)."""
    from dlcore.io.keras_weights import map_graph
    keys = {id(tensor.node): (("input", index), 0) for index, tensor in enumerate(inputs)}
    keys.update({id(node): (id(node.layer), index) for index, node in enumerate(nodes)})
    graph = {keys[id(tensor.node)]: [] for tensor in inputs}
    graph.update({keys[id(node)]: [keys[id(tensor.node)] for tensor in node.inputs]
                  for node in nodes})
    layer_of = {id(node.layer): node.layer for node in nodes}
    order = map_graph(graph, [keys[id(tensor.node)] for tensor in inputs],
                      [keys[id(tensor.node)] for tensor in outputs])
    return [layer_of[key] for key in order if key in layer_of]


@register_model
class Model(TrainingLoop):
    """A model defined by its input and output tensors (Keras' functional ``Model``; lecture
    "Deep learning I", "Defining a functional model"). :class:`dlcore.Sequential` is a Model too.

    Parameters
    ----------
    inputs : a tensor of :func:`Input`, a list of them, or a dict of them by name (Keras's
        ``inputs={"title": ..., "body": ...}``: ``model.inputs`` in sorted key order)
    outputs : a tensor the inputs lead to, a list of them, or a dict of them by name (Keras's
        ``outputs={"priority": ..., "class": ...}``: ``predict`` and ``model(tensors)`` give a
        dict by those keys; ``fit``, ``evaluate`` and ``compile`` take dicts by them)
    backend : "auto", "cpu", "cuda" or "reference"
    seed : int, the Philox key of the initial weights (layer i's from ``layer_seed(seed, i)``,
        i counting the layers in the order the graph first calls them), of the validation
        split and the batch order; None draws one from the operating system here, kept as
        the model's ``seed``
    name : str, optional

    ``layers`` is in Keras's order for the same graph (:func:`keras_layer_order`), and so are
    ``get_weights()``, ``set_weights()`` and the ``summary()`` table.

    ``fit``, ``evaluate``, ``predict`` and ``train_on_batch`` take a list of arrays for several
    inputs; ``predict`` returns a list for several outputs, and with several outputs ``y`` is a
    list of targets, one per output (a loss per output, or one for all).
    """

    #: (a Sequential has one input and one output, and its own single loss)
    _several_inputs = _several_outputs = False
    _is_sequential = False
    losses = ()
    loss_weights = None

    def __init__(self, inputs, outputs, backend="auto", seed=0, name=None):
        self.name = check_model_name(name, "model")
        #: the name dlcore chose (None when the user gave one): see :meth:`_nested_layers`
        self._automatic_name = None if name else self.name
        self.backend_name = check_backend_name(backend)
        self.seed = rng.check_seed(seed)
        input_keys, inputs = _keyed(inputs, "inputs")
        output_keys, outputs = _keyed(outputs, "outputs")
        self.inputs, _ = _as_list(inputs, "inputs")
        # a list of one input is that input: Keras's Model(model.inputs, ...) idiom
        self._several_inputs = len(self.inputs) > 1
        self.outputs, self._several_outputs = _as_list(outputs, "outputs")
        self._several_outputs = len(self.outputs) > 1 if output_keys else self._several_outputs
        # dicts' keys, by which fit, evaluate and predict take and give arrays, and model(...)
        # tensors, as Keras's; kept by dlcore's file and written to Keras's
        if input_keys:
            self.keras_input_keys_ = input_keys
        if output_keys:
            self.keras_output_keys_ = output_keys
        for tensor in self.inputs:
            if not isinstance(tensor, SymbolicTensor) or not tensor.is_input:
                raise ValueError(f"Model inputs must be tensors of dlcore.Input, got "
                                 f"{tensor!r}")
        if len({id(t) for t in self.inputs}) != len(self.inputs):
            raise ValueError("Model inputs list the same Input twice")
        if input_keys:   # once the values are known to be Inputs, which the warning names
            _warn_of_keys_not_named(input_keys, self.inputs)
        for tensor in self.outputs:
            if not isinstance(tensor, SymbolicTensor):
                raise TypeError(f"Model outputs must be symbolic tensors, got "
                                f"{type(tensor).__name__}")
        self.nodes = topological_nodes(self.inputs, self.outputs)
        #: the layers in the order of their first calls: what default names and initial
        #: weights are counted by (as before :attr:`layers` took Keras's order)
        self._first_called = []
        called = set()   # ids: a scan of the list for each node was quadratic in the layers
        for node in self.nodes:
            if id(node.layer) not in called:
                called.add(id(node.layer))
                self._first_called.append(node.layer)
        self._name_layers()
        #: every layer that runs, a nested model's own layers in its place (Keras's order)
        self._flat_layers = keras_layer_order(self.inputs, self.outputs, self.nodes)
        self.layers = self._nested_layers()
        self.input_names = self._tensor_names(self.inputs, "input")
        self.input_shape = (self.inputs[0].shape if not self._several_inputs
                            else (sum(int(np.prod(t.shape)) for t in self.inputs),))
        self.output_shape = (self.outputs[0].shape if not self._several_outputs
                             else (sum(int(np.prod(t.shape)) for t in self.outputs),))
        self.loss = self.optimizer = None
        self.metrics = []
        #: per output of a model with several, whether it reports its accuracy (compile's
        #: metrics); None otherwise
        self.output_metrics = None
        #: per output of a model with several, the names of its accuracy (compile's metrics
        #: for it); None otherwise
        self.output_metric_names = None
        #: the order of the outputs' ``<name>_loss`` scores where it is not theirs (a Keras
        #: model of dict outputs compiled with a dict of losses: :meth:`_loss_order`)
        self.output_loss_order = None
        self.built = False
        self._reset_training()
        self._parameters = []
        self.build()

    def _name_layers(self):
        nested = {id(node.call.model): node.call.model for node in self.nodes
                  if node.call is not None}
        _refuse_copies_side_by_side(list(nested.values()))
        for node in self.nodes:
            # a name dlcore chose in a model called here may be numbered on (two models of
            # one builder, each with its dense and dense_1, side by side: Keras names them
            # dense .. dense_3 when it makes them), past every name of the models called
            # here, so that it takes none of theirs
            if node.call is not None and node.layer.name is not None and \
                    getattr(node.layer, "_dlcore_name", None) == node.layer.name:
                node.layer._automatic_name = node.layer.name
        name_layers_uniquely(self._first_called, "this model", avoid={
            layer.name for model in nested.values() for layer in model.flat_layers})
        for layer in self._first_called:
            if has_automatic_name(layer):
                layer._dlcore_name = layer.name
            # fixed now, as a nested model's name (:meth:`_nested_layers`): renumbered again
            # in another model that does not call this one, it could take a name this one's
            # other layers hold
            layer._automatic_name = None

    def _nested_layers(self):
        """:attr:`layers` as Keras lists them: a model called on this graph's tensors is one
        entry, at the place of its first layer in :attr:`flat_layers` (its layers are not
        entries of their own); its name made unique among the entries as Keras's names are.
        Also ``_owner``: id(layer) -> the nested model that holds it."""
        self._owner, self._called_directly = {}, set()
        holders = collections.defaultdict(list)   # id(layer) -> the nested models holding it
        for node in self.nodes:
            if node.call is not None:
                self._owner[id(node.layer)] = node.call.model
                if all(model is not node.call.model for model in holders[id(node.layer)]):
                    holders[id(node.layer)].append(node.call.model)
            else:
                self._called_directly.add(id(node.layer))
        view, listed = [], set()
        for layer in self._flat_layers:
            # a layer of a nested model called on this graph's tensors too is both (Keras's);
            # a layer two nested models share puts each at its place, in the order of their
            # calls (Keras's, which lists the models as nodes of this graph)
            entries = list(holders.get(id(layer), ()))
            if id(layer) in self._called_directly:
                entries.append(layer)
            for entry in entries:
                if id(entry) not in listed:
                    listed.add(id(entry))
                    view.append(entry)
        # Keras names a model uniquely when it is made and refuses two entries of one name; a
        # name the user gave is kept (a clash refused, as Keras does), and only a model named
        # by default ("sequential", "model") gets a free name, once, as Keras's would have
        automatic = [entry for entry in view if isinstance(entry, Model)
                     and getattr(entry, "_automatic_name", None) == entry.name]
        names = set()
        for entry in view:
            if all(entry is not other for other in automatic):
                if entry.name in names or entry.name == "layer_names":
                    raise ValueError(
                        f"nested model {entry.name!r}: the name 'layer_names' is reserved"
                        if entry.name == "layer_names" else
                        f"the name {entry.name!r} is used by two layers of this model (a "
                        f"nested model is one); Keras refuses it too: give one another name=")
                names.add(entry.name)
        for entry in automatic:
            base, index = entry.name, 1
            while entry.name in names or entry.name == "layer_names":
                entry.name, index = f"{base}_{index}", index + 1
            entry._automatic_name = None   # fixed now, as a Keras model's name once made
            names.add(entry.name)
        return view

    @property
    def flat_layers(self):
        """Every layer that runs, in Keras's order, each nested model's layers in its place
        (:attr:`layers` lists a nested model as one entry): the layers whose arrays
        :meth:`get_weights` and the files hold."""
        return self.__dict__.get("_flat_layers", self.layers)

    def running_layers(self):
        """What runs the graph's calls, in order: a shared layer's twin for each of its calls
        but the last (:meth:`_shared_layer_runners`), each layer of a nested model in place."""
        return self._runners

    @property
    def nested_models(self):
        """The models called on this model's tensors (entries of :attr:`layers`)."""
        return [entry for entry in self.layers if isinstance(entry, Model)]

    def _model_calls(self):
        """``[(call, its input tensors, its output tensors)]`` in graph order: what a call of a
        nested model takes from outside it and gives to the rest of the graph."""
        calls, made = {}, {}
        for node in self.nodes:
            if node.call is not None:
                calls.setdefault(id(node.call), (node.call, []))[1].append(node)
                made[id(node.output)] = id(node.call)
        wanted = {id(t) for t in self.outputs}
        result = []
        for call, nodes in calls.values():
            inputs, seen = [], set()
            for node in nodes:
                for tensor in node.inputs:
                    if made.get(id(tensor)) != id(call) and id(tensor) not in seen:
                        seen.add(id(tensor))
                        inputs.append(tensor)
            used_outside = {id(t) for node in self.nodes if node.call is not call
                            for t in node.inputs} | wanted
            outputs = [node.output for node in nodes if id(node.output) in used_outside]
            result.append((call, inputs, outputs))
        return result

    @staticmethod
    def _tensor_names(tensors, base):
        names = []
        for index, tensor in enumerate(tensors):
            names.append(tensor.name or (base if len(tensors) == 1 else f"{base}_{index}"))
        return names

    # -- build --------------------------------------------------------------------------
    def build(self, input_shape=None, dtype=None):
        """Create (or move to the model's backend and dtype) every layer's parameters and the
        twins of shared layers. Layers built before (a model used inside another) keep their
        weights. A model on backend ``"auto"`` (the default) whose built layers share one
        backend, or given no ``dtype`` when they share one dtype, takes theirs (unbuilt, the
        ``dtype=`` every layer declares, else float32): part of a
        network, ``Model(net.input, layer.output)``, must leave that network's layers where they
        are, or its training would step arrays its layers no longer use; for that reason
        another backend named for such layers is a ValueError naming the copy to make."""
        if input_shape is not None and tuple(check_shape(input_shape)) != tuple(self.input_shape):
            raise ValueError(f"this model's inputs have shape {self.input_shape}; got "
                             f"{tuple(input_shape)}")
        built = [layer for layer in self._first_called if layer.built]
        backends = {id(layer.backend): layer.backend for layer in built}
        dtypes = {np.dtype(layer.dtype) for layer in built}
        if self.backend_name == "auto" and len(backends) == 1:
            backend, = backends.values()
        else:
            backend = get_backend(self.backend_name)
        moved = next((layer for layer in built if layer.backend is not backend), None)
        if moved is not None and len(backends) == 1 and self.backend_name != "auto":
            # moving it would leave the network it was built in stepping arrays it no longer uses
            raise ValueError(f"layer {moved.name!r} is built on the {moved.backend.name} backend "
                             f"(a network's layer); a model sharing it runs there too: leave "
                             f"backend= out, or give this model a copy, "
                             f"network.clone(backend={self.backend_name!r})")
        if dtype is None:
            dtype = dtypes.pop() if len(dtypes) == 1 else declared_float_type(self._first_called)
        dtype = computed_type(dtype)   # refused before any layer is built or moved
        seeds = layer_seeds(self.seed, len(self._first_called))
        for layer, seed in zip(self._first_called, seeds):
            shape = layer._graph_input_shape
            if not layer.built or _shape_key(layer.input_shape) != _shape_key(shape):
                layer.build(shape, backend, dtype, seed=seed)
            elif layer.backend is not backend or layer.dtype != dtype:
                layer.rebind(backend, dtype)
        self._runners = self._shared_layer_runners(backend, dtype)
        self.backend, self.dtype, self.built = backend, dtype, True
        self.ops = ops_for(backend)
        self._workspace = {}
        self._collect_parameters()
        if self.loss is not None:
            self._checked_loss(self.loss)
        return self

    def _product_step_layers(self):
        # a layer called at one node only: a shared layer's gradient sums its calls, so the
        # optimiser must wait for all of them (dlcore.training.TrainingLoop._product_steps)
        return called_once(self.flat_layers, [node.layer for node in self.nodes])

    def _shared_layer_runners(self, backend, dtype):
        """What runs each node: the layer itself for its last call, and for each earlier call of
        a shared layer a twin (a shallow copy: the same parameters, its own buffers, so each
        call keeps its activations for the backward pass). Every twin of every layer writes its
        gradients into one scratch set, as large as the largest shared layer's, which
        :meth:`_backward` adds to the layer's own gradients at once: a shared layer has one
        gradient set whatever the number of its calls. The last call runs first backward, so it
        writes the layer's gradients (no copy); earlier calls add to them."""
        last_call = {id(node.layer): index for index, node in enumerate(self.nodes)}
        twin_layers = [node.layer for index, node in enumerate(self.nodes)
                       if last_call[id(node.layer)] != index]
        sizes = [sum(int(np.prod(layer.grads[name].shape)) for name in layer.weight_names)
                 for layer in twin_layers]
        scratch = backend.zeros((max(sizes),), dtype=dtype) if sizes and max(sizes) else None
        runners = []
        for index, node in enumerate(self.nodes):
            layer = node.layer
            if last_call[id(layer)] == index:
                runners.append(layer)
                continue
            twin = copy.copy(layer)
            twin._workspace, twin.grads, offset = {}, {}, 0
            for name in layer.weight_names:
                shape = tuple(layer.grads[name].shape)
                size = int(np.prod(shape))
                twin.grads[name] = scratch[offset:offset + size].reshape(shape)
                offset += size
            runners.append(twin)
        return runners

    def _collect_parameters(self):
        previous = {p.key: p.slots for p in self._parameters}
        self._parameters = []
        self._plan = None   # the trainable ones are among these new Parameter objects
        for layer in self.flat_layers:
            regularizers = layer.regularizers() if isinstance(layer, WeightedLayer) else {}
            constraints = layer.constraints() if isinstance(layer, WeightedLayer) else {}
            for name in layer.weight_names:
                regularizer = regularizers.get(name)
                constraint, axis = constraints.get(name, (None, 0))
                key = f"{layer.name}/{name}"
                value = layer.params[name]
                slots = {slot: self._carried_slot(array, value)
                         for slot, array in previous.get(key, {}).items()}
                self._parameters.append(LayerParameter(
                    layer, name, value, layer.grads[name],
                    l1=regularizer.l1 if regularizer else 0.0,
                    l2=regularizer.l2 if regularizer else 0.0,
                    constraint=constraint, units_axis=axis, slots=slots))

    def _carried_slot(self, array, value):
        """An optimiser slot kept across a build, in the dtype and on the backend of its weight
        ``value``: a float32 network built again in float64 kept float32 slots (its momenta
        rounded to float32 at every step, though the weights step in float64)."""
        if type(array) is type(value) and array.dtype == value.dtype:
            return array
        host = array.copy_to_host() if hasattr(array, "copy_to_host") else array
        return self.backend.asarray(np.asarray(host), dtype=value.dtype)

    @property
    def parameters(self):
        """The :class:`dlcore.optimizers.Parameter` (value, grad, weight decay, constraint,
        optimiser slots) of every weight array, layer by layer; the optimiser updates those of
        :attr:`trainable_parameters`."""
        return self._parameters

    @property
    def input(self):
        """The input tensor (a list of them for several inputs; a dict by key for a model of
        dict inputs), Keras's ``model.input``."""
        keys = getattr(self, "keras_input_keys_", None)
        if keys and len(keys) == len(self.inputs):
            return dict(zip(keys, self.inputs))
        return self.inputs if self._several_inputs else self.inputs[0]

    @property
    def output(self):
        """The output tensor (a list for several outputs; a dict by key for a model of dict
        outputs, ``dlcore.Model(model.input, model.output["score"])``), Keras's
        ``model.output``: with the layers' ``output``, a model of part of this one shares its
        layers and weights, e.g. ``dlcore.Model(model.input,
        model.get_layer("conv2d").output)`` for feature maps."""
        keys = getattr(self, "keras_output_keys_", None)
        if keys and len(keys) == len(self.outputs):
            return dict(zip(keys, self.outputs))
        return self.outputs if self._several_outputs else self.outputs[0]

    # -- frozen layers ------------------------------------------------------------------
    _trainable = True

    @property
    def trainable(self):
        """False freezes the whole model (Keras's ``model.trainable = False``): setting it sets
        every layer's ``trainable``, and while it is False nothing is trained, whatever a layer
        says. A frozen layer keeps its weights through ``fit`` (:class:`dlcore.layers.Layer`)."""
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        self._trainable = check_bool(value, "trainable")
        for layer in self.layers:
            layer.trainable = self._trainable

    def _keep_trainable(self, config):
        """Set the model's own flag from a file's config (its layers keep their own flags: a
        layer unfrozen after ``model.trainable = False`` stays unfrozen), and what a model
        imported from Keras keeps of the Keras model for its way back: the Keras class of a
        Keras ``Sequential`` that nests a model (dlcore's Sequential holds layers only), so
        that it goes back to Keras a Sequential; the keys of dict inputs and outputs; the
        Keras model's own nesting (``keras_nested_config_``, ``keras_same_as_``,
        ``keras_file_names_``)."""
        self._trainable = check_bool(config.get("trainable", True), "trainable")
        if config.get("keras_class") == "Sequential" and not self._is_sequential:
            self.keras_sequential_ = True
        # the keys of a Keras model's dict inputs and outputs, which its export writes again
        for what in ("input", "output"):
            keys = config.get(f"keras_{what}_keys")
            if keys is None:
                continue
            tensors = self.inputs if what == "input" else self.outputs
            if not isinstance(keys, list) or len(keys) != len(tensors) or \
                    len(set(map(str, keys))) != len(keys) or \
                    not all(isinstance(key, str) for key in keys):
                raise ValueError(f"keras_{what}_keys {str(keys)[:80]} are not "
                                 f"{len(tensors)} distinct names, one per {what} of the model")
            setattr(self, f"keras_{what}_keys_", list(keys))
        if config.get("keras_nesting") is not None:
            from dlcore.io.keras import kept_keras_nesting
            self.keras_nested_config_, self.keras_same_as_, self.keras_file_names_ = \
                kept_keras_nesting(self, config["keras_nesting"])

    def _trains(self, layer):
        """Whether training updates ``layer``'s parameters: not while a nested model that holds
        it is frozen (Keras's ``model.get_layer("sequential").trainable = False``)."""
        owner = getattr(self, "_owner", {}).get(id(layer))
        return (self.trainable and layer.trainable and bool(layer.weight_names)
                and (owner is None or owner._trains(layer)))

    @property
    def trainable_parameters(self):
        """The :attr:`parameters` that training updates: those of the layers that are
        ``trainable``, none while the model is not."""
        return self._training_plan()[0]

    def _training_plan(self):
        """``(trainable parameters, which nodes the backward pass runs)`` for the layers'
        ``trainable`` flags as they are now (recomputed when one changes). A node runs
        backward when a layer that trains is at it or upstream of it: below the lowest such
        layer no gradient is needed (unless the input's is asked for)."""
        key = (self.trainable, tuple((id(layer), self._trains(layer))
                                     for layer in self.flat_layers))
        cached = getattr(self, "_plan", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        training = {layer.name for layer in self.flat_layers if self._trains(layer)}
        parameters = [p for p in self._parameters if p.key.split("/")[0] in training]
        plan = (parameters, self._backward_plan(training))
        self._plan = (key, plan)
        return plan

    def _backward_plan(self, training):
        """id(node) -> whether a layer named in ``training`` is at that node or upstream."""
        upstream = {}
        for node in self.nodes:   # topological order: producers first (an Input's: absent)
            upstream[id(node)] = node.layer.name in training or any(
                upstream.get(id(t.node), False) for t in node.inputs)
        return upstream

    @property
    def trainable_weights(self):
        """The weights that training updates, as NumPy arrays (Keras's
        ``model.trainable_weights``), layer by layer."""
        return [w for layer in self.flat_layers if self._trains(layer)
                for w in layer.get_weights()[:len(layer.weight_names)]]

    @property
    def weights(self):
        """Every weight array, layer by layer, as :meth:`get_weights` gives them (Keras's
        ``model.weights``, which ``get_weights`` reads: the trainable ones and the others, a
        BatchNormalization's moving statistics included); none before the model is built."""
        return self.get_weights() if self.built else []

    @property
    def non_trainable_weights(self):
        """The weights of the frozen layers (all of them while the model is frozen) and the
        layers' state (a BatchNormalization's moving statistics), as Keras lists them."""
        return [w for layer in self.flat_layers
                for w in layer.get_weights()[len(layer.weight_names) if self._trains(layer)
                                             else 0:]]

    def get_layer(self, name=None, index=None):
        """The layer called ``name``, or the one at ``index`` in :attr:`layers` (Keras's
        ``model.get_layer``); ValueError in one line naming the layers there are."""
        if (name is None) == (index is None):
            raise ValueError("give get_layer a name or an index (one of them)")
        if index is not None:
            if isinstance(index, bool) or not isinstance(index, (int, np.integer)) \
                    or not -len(self.layers) <= index < len(self.layers):
                raise ValueError(f"index {index!r} is out of range: the model has "
                                 f"{len(self.layers)} layers")
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        # Keras lists its inputs as InputLayers; here an input is a tensor, no layer (a
        # Sequential names none: its input is its first layer's)
        where = next((index for index, input_name in enumerate(getattr(self, "input_names", ()))
                      if input_name == name), None)
        what = (f"{name!r} is the model's input model.inputs[{where}] (a tensor: dlcore has "
                f"no InputLayer)" if where is not None else f"no layer named {name!r}")
        raise ValueError(f"{what}; the layers are: "
                         f"{', '.join(layer.name for layer in self.layers)}")

    # -- compile ------------------------------------------------------------------------
    @property
    def output_names(self):
        """The names of the outputs, as Keras's: those of the layers that make them."""
        return [tensor.node.layer.name if tensor.node.layer is not None
                else (tensor.name or f"output_{index}")
                for index, tensor in enumerate(self.outputs)]

    def _by_output_name(self, value):
        """``value`` (a compile setting) by output name where it is a dict by the keys of a
        Keras model's dict outputs (``keras_output_keys_``), as Keras's compile takes them for
        such a model; anything else as it is."""
        keys = getattr(self, "keras_output_keys_", None)
        names = self.output_names
        # by key first, as Keras's, also where a key is another output's name
        if not keys or len(keys) != len(names) or not isinstance(value, dict) or not value \
                or not set(value) <= set(keys):
            return value
        by_key = dict(zip(keys, names))
        return {by_key[key]: item for key, item in value.items()}

    def _loss_order(self, loss):
        """The outputs (their indices) in the order a Keras model of dict outputs compiled
        with a dict of losses lists their ``<key>_loss`` scores: the dict's (Keras 3 tracks a
        loss per key as it is given; ``evaluate``'s list unpacked by position swapped values
        when dlcore listed them by sorted key); None, the outputs' order, for any other model
        or ``loss``, as Keras's (a dict for list outputs is listed in their order)."""
        keys = getattr(self, "keras_output_keys_", None)
        names = self.output_names
        if not keys or len(keys) != len(names) or not isinstance(loss, dict) or \
                set(loss) != set(names):
            return None
        order = tuple(names.index(name) for name in loss)
        return None if order == tuple(range(len(names))) else order

    def _per_output(self, value, what):
        """``value`` as a list of one entry per output: a list of them, a dict of them by
        output name (Keras's way), or one for every output."""
        names = self.output_names
        # a dict of loss settings ({"name": ..., "from_logits": ...}) is one loss
        if isinstance(value, dict) and value and set(value) <= set(names) and \
                not set(value) <= {"name", "from_logits", "temperature"}:
            missing = [name for name in names if name not in value]
            if missing:
                raise ValueError(f"{what} are given by output name without {missing}: give "
                                 f"one for each of the outputs {names}")
            return [value[name] for name in names]
        if isinstance(value, dict) and value and what == "loss weights":
            raise ValueError(f"{what} are given for {sorted(map(str, value))[:8]}; the model's "
                             f"outputs are named {names}")
        values = list(value) if isinstance(value, (list, tuple)) else [value] * len(names)
        if len(values) != len(names):
            raise ValueError(f"give one {what[:-1]}, or one per output: {len(names)} output(s) "
                             f"({', '.join(names)}), {len(values)} {what}")
        return values

    def compile(self, loss="cross_entropy", optimizer="sgd", metrics=None, loss_weights=None,
                weighted_metrics=None, run_eagerly=False, steps_per_execution=1,
                jit_compile="auto", auto_scale_loss=True):
        """As :meth:`dlcore.Sequential.compile`; with several outputs ``loss`` is one loss for
        every output, a list of one per output or a dict of them by output name
        (:attr:`output_names`, as Keras), and the cost is their sum, or with ``loss_weights``
        (a list or dict, as Keras) the weighted sum sum_k w_k L_k; ``metrics=["accuracy"]``
        reports each output's accuracy (``<output>_accuracy``), and a list of one entry per
        output or a dict by output name (Keras 3's forms) chooses the outputs and the names
        each reports (``{"a": "acc", "b": "binary_accuracy"}``: ``a_acc``,
        ``b_binary_accuracy``); Keras's
        ``weighted_metrics``, ``run_eagerly``, ``steps_per_execution``, ``jit_compile`` and
        ``auto_scale_loss`` as :meth:`dlcore.Sequential.compile`."""
        check_keras_compile_options(weighted_metrics, run_eagerly, steps_per_execution,
                                    jit_compile, auto_scale_loss)
        from dlcore.io.keras_training import keras_objects_as_dlcores
        loss, optimizer, metrics = keras_objects_as_dlcores(loss, optimizer, metrics)
        loss, optimizer = loss_then_optimizer(loss, optimizer)
        loss, loss_weights, metrics = (self._by_output_name(value)
                                       for value in (loss, loss_weights, metrics))
        losses = self._per_output(loss, "losses")
        self.output_loss_order = self._loss_order(loss)
        self.loss_weights = None
        if loss_weights is not None:
            weights = [check_float(weight, "a loss weight", low=0.0)
                       for weight in self._per_output(loss_weights, "loss weights")]
            self.loss_weights = None if all(w == 1.0 for w in weights) else weights
        untrained = [name for name, item in zip(self.output_names, losses) if item is None]
        if untrained and len(losses) > 1:
            raise ValueError(f"no loss for the output(s) {', '.join(untrained)}: Keras 3 leaves "
                             f"an output with the loss None untrained, dlcore trains every "
                             f"output of the model it compiles; compile Model(inputs, [the "
                             f"outputs with a loss]), which shares the layers and weights")
        self.losses = [get_loss(item) for item in losses]
        for index, item in enumerate(self.losses):
            self._checked_loss(item, index)
        self.loss = self.losses[0]
        self.optimizer = self._compiled_optimizer(optimizer)
        asked = accuracy_names(metrics, self.output_names)
        # every output's names, each once; each output reports its own (Keras 3: a_acc and
        # b_binary_accuracy for [["acc"], ["binary_accuracy"]])
        self.metrics = list(dict.fromkeys(name for names in asked for name in names))
        several = self._several_outputs
        self.output_metrics = tuple(bool(names) for names in asked) if several else None
        self.output_metric_names = tuple(tuple(names) for names in asked) if several else None
        if self.built:
            self.optimizer.build(self._parameters, self.backend)
        return self

    def _output_layer(self, index=0):
        """The layer whose call makes output ``index``, or None for an Input."""
        return self.outputs[index].node.layer

    def _checked_loss(self, loss, index=0):
        last = self._output_layer(index)
        return loss if last is None else check_loss_fits(loss, last)

    def check_compiled(self):
        """RuntimeError unless compiled; ValueError when a loss does not fit its output."""
        if self.loss is None:
            raise RuntimeError("compile the model first: model.compile(loss=..., "
                               "optimizer=..., metrics=[...])")
        for index, loss in enumerate(self.losses):
            self._checked_loss(loss, index)

    def _fused_outputs(self):
        """Per output: whether its loss absorbs the final activation of its layer."""
        fused = []
        for index, loss in enumerate(self.losses if self.loss is not None else []):
            last = self._output_layer(index)
            fused.append(loss.fuses_with is not None and last is not None
                         and final_activation(last) == loss.fuses_with
                         and not penalises_outputs(last))
        return fused

    @property
    def _fused(self):
        return bool(self._fused_outputs()) and self._fused_outputs()[0]

    def _target_rows(self, y, n, name="y"):
        """Targets as rows; with several outputs a list of one per output, packed."""
        from dlcore.training import target_rows
        if not self._several_outputs:
            return TrainingLoop._target_rows(self, y, n, name)
        if len(self.outputs) == 1 and not (isinstance(y, (list, tuple)) and len(y) == 1):
            y = [y]   # Model(inputs, [output]) takes its one target alone, as Keras 3
        if not isinstance(y, (list, tuple)) or len(y) != len(self.outputs):
            raise ValueError(f"{name} must be a list of {len(self.outputs)} target arrays, one "
                             f"per output")
        losses = self.losses if self.loss is not None else [None] * len(self.outputs)
        parts = zip(y, self.outputs, losses)
        return np.concatenate([target_rows(item, n, int(np.prod(t.shape)), self.dtype,
                                           f"{name}[{index}]", t.shape, loss)
                               for index, (item, t, loss) in enumerate(parts)], axis=1)

    # -- inputs -------------------------------------------------------------------------
    def _checked_inputs(self, x, name="x"):
        """One array, a list of one array per input, or a dict of them by input name (as
        Keras takes them), packed side by side as rows."""
        if isinstance(x, dict):
            x = by_name(x, self.input_names, "inputs", name,
                        getattr(self, "keras_input_keys_", None))
        if not self._several_inputs or isinstance(x, np.ndarray):
            if isinstance(x, (list, tuple)) and len(x) == 1:
                x = x[0]
            if not self._several_inputs:
                return check_batch(x, name, self.input_shape, self.dtype)
            try:   # several inputs may also come packed, as the rows the training loop makes
                return check_batch(x, name, self.input_shape, self.dtype)
            except ValueError:
                raise ValueError(f"{name} must be a list of {len(self.inputs)} arrays, one per "
                                 f"input ({', '.join(self.input_names)}), got one array of "
                                 f"shape {np.shape(x)}") from None
        if not isinstance(x, (list, tuple)) or len(x) != len(self.inputs):
            raise ValueError(f"{name} must be a list of {len(self.inputs)} arrays, one per "
                             f"input ({', '.join(self.input_names)})")
        arrays = [check_batch(array, f"{name}[{index}]", tensor.shape, self.dtype)
                  for index, (array, tensor) in enumerate(zip(x, self.inputs))]
        if len({len(a) for a in arrays}) != 1:
            raise ValueError(f"the arrays of {name} have different numbers of samples: "
                             f"{[len(a) for a in arrays]}")
        return np.concatenate([a.reshape(len(a), -1) for a in arrays], axis=1)

    def pack_inputs(self, x):
        """``x`` checked, as the NumPy rows the training loop sees (several inputs packed side by
        side; one input as it is)."""
        return self._checked_inputs(x)

    def pack_targets(self, y, n):
        """``y`` checked, as the (n, k) target rows of the model's dtype the training loop
        uses (one list entry per output packed side by side)."""
        return self._target_rows(y, n)

    @one_call_at_a_time
    def predict(self, x, batch_size=256, verbose=0, steps=None, callbacks=None, *,
                mc_dropout=0):
        """The outputs for x (a list of arrays for several inputs): an array, or a list of
        arrays for several outputs (an array for a list of one, ``Model(inputs, [output])``,
        as Keras 3's predict gives it), or, for a model imported from a Keras model whose
        outputs were a dict (``keras_output_keys_``), a dict of them by those keys, as Keras's
        predict gives them (``verbose``, ``steps``, ``callbacks``, ``mc_dropout``: as
        :meth:`TrainingLoop.predict`)."""
        out = TrainingLoop.predict(self, x, batch_size, verbose, steps, callbacks,
                                   mc_dropout=mc_dropout)
        keys = getattr(self, "keras_output_keys_", None)
        if not self._several_outputs:
            return {keys[0]: out} if keys and len(keys) == 1 else out
        parts, offset = [], 0
        for tensor in self.outputs:
            width = int(np.prod(tensor.shape))
            parts.append(out[:, offset:offset + width].reshape((len(out),) + tensor.shape))
            offset += width
        if keys and len(keys) == len(parts):
            return dict(zip(keys, parts))
        return parts if len(parts) > 1 else parts[0]

    # -- computing ----------------------------------------------------------------------
    def _buffer(self, key, shape):
        size = int(np.prod(shape))
        flat = self._workspace.get(key)
        if flat is None or flat.shape[0] < size:
            flat = self.backend.empty((max(size, 1),), dtype=self.dtype)
            self._workspace[key] = flat
        return flat[:size].reshape(tuple(shape))

    def forward(self, x, training=False, step=0):
        """The outputs for a batch (backend arrays; several inputs packed as rows)."""
        return self._forward(x, training, step, fused=False)

    def backward(self, grad, need_input_gradient=False):
        """Back-propagate dL/doutputs through the graph; dL/dx when ``need_input_gradient``."""
        return self._backward(grad, fused=False, need_input_gradient=need_input_gradient)

    def loss_rows(self, x, targets, rows, training=False, step=0, gradient=False,
                  input_gradient=False, weights=None):
        """The training loop's seam (see :meth:`dlcore.Sequential.loss_rows`)."""
        fused = self._fused_outputs()
        if self._several_outputs:
            return self._several_loss_rows(x, targets, rows, training, step, gradient,
                                           input_gradient, fused, weights)
        outputs = self._forward(x, training, step, fused)
        n = outputs.shape[0]
        self.loss.loss_and_gradient(self.backend, outputs.reshape(n, -1), targets, rows.grad,
                                    rows.loss, rows.correct, fused[0],
                                    output_channels(self.outputs[0].shape))
        if is_elementwise_accuracy(self.metrics):
            elementwise_correct(self.backend, outputs.reshape(n, -1), targets, rows.correct,
                                logits_of(self.loss, fused[0]),
                                output_channels(self.outputs[0].shape))
        self._scale_by_loss_weight(0, rows.grad, rows.loss)
        if weights is not None:
            self._weigh(rows.grad.reshape(n, -1), weights)
            self._weigh(rows.loss.reshape(-1, 1), weights)
        add_activity_penalties(self, rows.loss)
        if gradient:
            return self._backward(rows.grad.reshape(outputs.shape), fused, input_gradient)
        return None

    def _scale_by_loss_weight(self, index, grad, row_loss):
        """Output ``index``'s gradient and per-sample losses times its loss weight w_k (the
        cost sum_k w_k L_k), in place; nothing without loss weights."""
        if self.loss_weights is not None and self.loss_weights[index] != 1.0:
            weight = self.loss_weights[index]
            self.ops.rescale(grad, weight, 0.0, grad)
            self.ops.rescale(row_loss, weight, 0.0, row_loss)

    def _several_loss_rows(self, x, targets, rows, training, step, gradient, input_gradient,
                           fused, weights=None):
        """loss_rows of a model with several outputs: each output's loss on its own rows, the
        per-sample losses summed, the correct flags the first output's (each output's in
        ``rows.parts`` with its loss); a sample's weight
        (``weights`` (n, 1)) weighs every output's loss (Keras's one sample_weight array)."""
        backend = self.backend
        n = x.shape[0]
        values = self._forward(x, training, step, fused, keep_outputs=True)
        elementwise = [is_elementwise_accuracy(names) for names in self._output_metric_names()]
        grads, offset = [], 0
        for index, (tensor, loss) in enumerate(zip(self.outputs, self.losses)):
            outputs = values[index].reshape(n, -1)
            width = outputs.shape[1]
            part = self._buffer(f"targets{index}", (n, width))
            self.ops.take_columns(targets, part, offset)
            offset += width
            grad = self._buffer(f"loss_grad{index}", (n, width))
            row_loss = rows.loss if index == 0 else self._buffer(f"row_loss{index}", (n,))
            row_correct = rows.correct if index == 0 else self._buffer(f"correct{index}", (n,))
            loss.loss_and_gradient(backend, outputs, part, grad, row_loss, row_correct,
                                   fused[index], output_channels(tensor.shape))
            if elementwise[index]:
                elementwise_correct(backend, outputs, part, row_correct,
                                    logits_of(loss, fused[index]), output_channels(tensor.shape))
            if rows.parts is not None:   # this output's own loss, before its loss weight
                self.ops.place_columns(row_loss.reshape(n, 1), rows.parts, index)
                self.ops.place_columns(row_correct.reshape(n, 1), rows.parts,
                                       rows.outputs + index)
            self._scale_by_loss_weight(index, grad, row_loss)
            if index > 0:
                self.ops.accumulate(row_loss, rows.loss)
            if weights is not None:
                self._weigh(grad, weights)
            grads.append(grad.reshape((n,) + tensor.shape))
        if weights is not None:
            self._weigh(rows.loss.reshape(-1, 1), weights)
            if rows.parts is not None:
                self._weigh(rows.parts, weights, rows.outputs)
        add_activity_penalties(self, rows.loss)
        if gradient:
            return self._backward(grads, fused, input_gradient)
        return None

    def _forward(self, x, training, step, fused, keep_outputs=False):
        """The outputs (packed as rows when several; the list of them with
        ``keep_outputs``); ``fused``: False, or per output whether it hands over
        pre-activations."""
        n = x.shape[0]
        values = {}
        if self._several_inputs:
            offset = 0
            for index, tensor in enumerate(self.inputs):
                part = self._buffer(f"input{index}", (n,) + tensor.shape)
                rows = part.reshape(n, -1)
                self.ops.take_columns(x, rows, offset)
                offset += rows.shape[1]
                values[id(tensor)] = part
        else:
            values[id(self.inputs[0])] = x
        fused_nodes = {id(t.node) for t, flag in zip(self.outputs, fused or []) if flag}
        # a layer's dtype= that the model's one type overrules, told by the layer, not by each
        # twin of a shared one
        for layer in self.flat_layers:
            layer.tell_overruled_dtype()
        for node, runner in zip(self.nodes, self._runners):
            arguments = [values[id(t)] for t in node.inputs]
            argument = arguments if node.takes_list else arguments[0]
            if id(node) in fused_nodes:
                y = runner.forward(argument, training=training, step=step,
                                   apply_activation=False)
            else:
                y = runner.forward(argument, training=training, step=step)
            values[id(node.output)] = y
        if keep_outputs:
            return [values[id(t)] for t in self.outputs]
        if not self._several_outputs:
            return values[id(self.outputs[0])]
        out = self._buffer("outputs", (n,) + self.output_shape)
        offset = 0
        for tensor in self.outputs:
            part = values[id(tensor)].reshape(n, -1)
            self.ops.place_columns(part, out, offset)
            offset += part.shape[1]
        return out

    def _backward(self, grad, fused, need_input_gradient):
        n = (grad[0] if isinstance(grad, list) else grad).shape[0]
        grads, owned = {}, set()

        def receive(tensor, value):
            key = id(tensor)
            if key not in grads:
                grads[key] = value
                return
            if key not in owned:
                target = self._buffer(f"grad{key}", tuple(value.shape))
                self.ops.copy(grads[key], target)
                grads[key], _ = target, owned.add(key)
            self.ops.accumulate(value, grads[key])

        if isinstance(grad, list):   # one gradient per output (several losses)
            for tensor, value in zip(self.outputs, grad):
                receive(tensor, value)
        elif self._several_outputs:
            offset = 0
            rows = grad.reshape(n, -1)
            for index, tensor in enumerate(self.outputs):
                part = self._buffer(f"grad_output{index}", (n,) + tensor.shape)
                self.ops.take_columns(rows, part.reshape(n, -1), offset)
                offset += int(np.prod(tensor.shape))
                receive(tensor, part)
        else:
            receive(self.outputs[0], grad)
        input_ids = {id(t) for t in self.inputs}
        fused_nodes = {id(t.node) for t, flag in zip(self.outputs, fused or []) if flag}
        written = set()   # the layers whose gradients this pass has set
        upstream = self._training_plan()[1]
        for node, runner in zip(reversed(self.nodes), reversed(self._runners)):
            g = grads.pop(id(node.output), None)
            if g is None or not (need_input_gradient or upstream[id(node)]):
                continue   # nothing that trains at or below this node
            needed = need_input_gradient or any(
                id(t) not in input_ids and upstream.get(id(t.node), True) for t in node.inputs)
            if id(node) in fused_nodes:
                result = runner.backward(g, needed, apply_activation=False)
            else:
                result = runner.backward(g, needed)
            self._gather_gradients(runner, node.layer, written)
            if not needed:
                continue
            results = result if node.takes_list else [result]
            for tensor, value in zip(node.inputs, results):
                if id(tensor) in input_ids and not need_input_gradient:
                    continue
                receive(tensor, value)
        if not need_input_gradient:
            return None
        if not self._several_inputs:
            return grads[id(self.inputs[0])]
        out = self._buffer("grad_inputs", (n,) + self.input_shape)
        offset = 0
        for tensor in self.inputs:
            part = grads.get(id(tensor))
            if part is None:   # an input no output depends on (Keras allows one): dL/dx = 0
                part = self.backend.zeros((n,) + tuple(tensor.shape), dtype=out.dtype)
            part = part.reshape(n, -1)
            self.ops.place_columns(part, out, offset)
            offset += part.shape[1]
        return out

    def _gather_gradients(self, runner, layer, written):
        """After a call's backward pass: a twin's gradients (the scratch set) go into the
        layer's, copied for the first call this pass reaches and added for the others (a shared
        layer's gradient is the sum over its uses)."""
        if runner is not layer:
            for name in layer.weight_names:
                if id(layer) in written:
                    self.ops.accumulate(runner.grads[name], layer.grads[name])
                else:
                    self.ops.copy(runner.grads[name], layer.grads[name])
        written.add(id(layer))

    def penalty(self):
        """The weight-decay term Omega(theta) of the cost (lecture "Convolutional neural
        networks" (2016), "Weight decay"), from the regularizers of every layer that trains,
        in float64."""
        total = 0.0
        for layer in self.flat_layers:
            # as Keras, a frozen layer's weights are not penalised: training cannot move them
            if isinstance(layer, WeightedLayer) and self._trains(layer) and layer.regularizers():
                weights = dict(zip(layer.weight_names, layer.get_weights()))
                for name, regularizer in layer.regularizers().items():
                    total += regularizer.penalty(weights[name])
        return total

    # -- weights ------------------------------------------------------------------------
    def get_weights(self, layout="dlcore"):
        """Every parameter as NumPy arrays, layer by layer (each shared layer once).

        Parameters
        ----------
        layout : "dlcore" (the default: dlcore's arrays as the layers hold them, Conv2D
            kernels (filters, channels, kh, kw)) or "keras": what ``keras_model.get_weights()``
            gives for the same architecture built in Keras (HWIO kernels, a Dense's rows after
            a ``Flatten`` of maps in Keras's H, W, C order), for ``keras_model.set_weights``
        """
        if _weights_layout(layout) == "keras":
            from dlcore.io.keras import keras_weights
            return keras_weights(self)
        return [w for layer in self.flat_layers for w in layer.get_weights()]

    def set_weights(self, weights, layout="dlcore"):
        """Assign the arrays of :meth:`get_weights` (every shape checked first); with
        ``layout="keras"`` those of ``keras_model.get_weights()`` for the same architecture.

        Arrays from Keras given without ``layout="keras"`` are refused where a shape tells
        (a Conv2D kernel in HWIO), in one line naming it; where both layouts have the same
        shape (a 3 x 3 kernel from 3 to 3 channels, a Dense after a Flatten of maps) no check
        can tell them from dlcore's own, and they are taken in dlcore's."""
        self._require_built()
        if _weights_layout(layout) == "keras":
            from dlcore.io.keras import set_keras_weights
            set_keras_weights(self, weights)
            return
        weights = list(weights)
        expected = sum(len(layer.array_names) for layer in self.flat_layers)
        if len(weights) != expected:
            raise ValueError(f"the model has {expected} weight arrays; got {len(weights)}")
        position, pending = 0, []
        for layer in self.flat_layers:
            count = len(layer.array_names)
            chunk = weights[position:position + count]
            for name, value in zip(layer.array_names, chunk):
                current = layer._array(name)
                weight_values(layer.name, name, value)   # every type too, before any is set
                if np.shape(value) != tuple(current.shape):
                    raise ValueError(f"layer {layer.name!r}: {name} has shape "
                                     f"{np.shape(value)}; expected {tuple(current.shape)}"
                                     f"{keras_layout_hint(layer, name, np.shape(value))}")
            pending.append((layer, chunk))
            position += count
        for layer, chunk in pending:
            layer.set_weights(chunk)

    def count_params(self):
        """Number of numbers in :meth:`get_weights`, as Keras counts them: frozen layers' and
        the layers' state included (each shared layer once)."""
        self._require_built()
        return sum(layer.count_params() for layer in self.flat_layers)

    def summary(self, line_length=None, positions=None, print_fn=print, expand_nested=False,
                show_trainable=False, layer_range=None):
        """The summary table (:mod:`dlcore.summary`) with a row per call of a layer and the
        tensors each takes ("inputs"); a shared layer's parameters are counted once. The rows
        are in the order of :attr:`layers` (Keras's), a shared layer's calls together. Keras's
        other arguments as :meth:`dlcore.Sequential.summary`."""
        check_keras_summary_options(line_length, positions, expand_nested, show_trainable,
                                    layer_range)
        own = [layer for layer in self.flat_layers if id(layer) in self._called_directly]
        by_layer = {id(layer): row for layer, row in
                    zip(own, summarize(self.name, (), own, self._trains).rows)}
        names = {id(t): name for t, name in zip(self.inputs, self.input_names)}
        names.update({id(node.output): (node.layer if node.call is None
                                        else node.call.model).name for node in self.nodes})
        calls = {id(entry): [] for entry in self.layers}
        steps = [(node.layer, node.inputs, [node.output]) for node in self.nodes
                 if node.call is None]
        steps += [(call.model, inputs, outputs) for call, inputs, outputs in self._model_calls()]
        counted = set()   # the layers a nested model's row has counted
        for entry, inputs, outputs in steps:
            if id(entry) not in by_layer:   # a nested model, at its first call
                by_layer[id(entry)] = self._nested_row(entry, counted)
                counted.update(id(layer) for layer in entry.flat_layers)
            row = copy.copy(by_layer[id(entry)])
            if calls[id(entry)] or id(entry) in self._owner:
                # counted once: at its first call, or in the row of the nested model holding it
                row.weights = row.biases = row.state = row.frozen = 0
            row.output_shape = outputs[0].shape if outputs else row.output_shape
            if getattr(entry, "_several_outputs", False):   # a nested model's: all, as Keras
                row.output_shape = tuple(tuple(t.shape) for t in entry.outputs)
            row.inputs = [names[id(t)] for t in inputs]
            calls[id(entry)].append(row)
        table = [row for entry in self.layers for row in calls[id(entry)]]
        # an input is shown by the name the rows' inputs give it (an unnamed one's "input")
        summary = Summary(table, self.name, self.inputs[0].shape,
                          [(f"{name} (Input)" if len(self.inputs) > 1 or t.name else "input",
                            t.shape) for name, t in zip(self.input_names, self.inputs)])
        summary.show(print_fn)
        return summary

    def _nested_row(self, model, counted=frozenset()):
        """The summary row of a nested model: one row, its layers' counts summed (Keras's
        summary without ``expand_nested``), but for the parameters of the layers ``counted``
        (ids) in the row of a model before it (a layer two nested models share counts once);
        its FLOPs those of all its layers; ``frozen`` counts its parameters that do not
        train here."""
        every_layer = model.flat_layers
        layers = [layer for layer in every_layer if id(layer) not in counted]
        # a model imported from a Keras Sequential that nests a model is one too in Keras
        sequential = model._is_sequential or getattr(model, "keras_sequential_", False)
        row = LayerSummary(model.name, "Sequential" if sequential else "Functional",
                           model.output_shape, sum(layer.weight_count() for layer in layers),
                           sum(layer.bias_count() for layer in layers),
                           sum(layer.flops() for layer in every_layer),
                           any(self._trains(layer) for layer in every_layer),
                           sum(layer.state_count() for layer in layers))
        row.frozen = sum(layer.weight_count() + layer.bias_count() for layer in layers
                         if not self._trains(layer))
        return row

    def _require_built(self):
        if not self.built:
            raise RuntimeError("the model is not built")

    # -- Keras files (dlcore.io.keras) --------------------------------------------------
    def to_json(self):
        """The architecture as Keras 3's ``model.to_json()`` writes it (NHWC), which
        ``keras.models.model_from_json`` and :func:`dlcore.models.model_from_json` read."""
        from dlcore.io import keras
        return keras.to_json(self)

    def to_yaml(self):
        """The architecture as YAML (lecture "Deep learning I", "Saving a model": ``yaml_string
        = model.to_yaml()``): the text of :meth:`to_json`, which YAML 1.2 parsers read as the
        same data (JSON is YAML's flow style). dlcore reads it back with
        :func:`dlcore.models.model_from_json`, never with a YAML loader (Keras 2.6 dropped
        ``to_yaml`` because loading YAML could construct arbitrary Python objects)."""
        return self.to_json()

    def save(self, filepath, overwrite=True, zipped=None):
        """Write the model as Keras's ``model.save(filepath)`` does: a Keras 3 archive when
        ``filepath`` ends in ``.keras``, a legacy Keras HDF5 model file when it ends in ``.h5``
        or ``.hdf5``, so that ``keras.models.load_model(filepath)`` and ``dlcore.load(filepath)``
        both read it (architecture, weights, compile settings; not the optimiser's momenta).
        ``dlcore.save(model, path)`` writes dlcore's own file instead, which keeps the whole
        training state for resuming. ``overwrite=False`` refuses an existing file (Keras asks
        on the terminal); ``zipped`` must be None or True (the archive is a zip file)."""
        from dlcore.io import save
        name = os.fspath(filepath)
        if not name.endswith((".keras", ".h5", ".hdf5")):
            raise ValueError(f"{name}: model.save writes Keras files: end the name in .keras "
                             f"(Keras 3's archive) or .h5 (the legacy HDF5 file); "
                             f"dlcore.save(model, path) writes dlcore's own")
        check_keras_save_options(name, "save", overwrite, zipped=zipped)
        save(self, filepath, format="keras")

    def save_weights(self, filepath, overwrite=True, max_shard_size=None):
        """Write the weights in Keras's HDF5 weights layout (``layer_names``, ``weight_names``,
        a group per layer; kernels in Keras's NHWC order; Keras 3's layout for a name ending in
        ``.weights.h5``, which Keras 3 requires of its own: lecture "Deep learning I"'s
        ``save_weights('model_weights.h5')`` is Keras 2's, the legacy layout, which Keras 3's
        ``load_weights`` reads). ``overwrite=False`` refuses an existing file; ``max_shard_size``
        must be None (one file)."""
        from dlcore.io import keras
        name = os.fspath(filepath)
        check_keras_save_options(name, "save_weights", overwrite, max_shard_size=max_shard_size)
        keras.save_weights(self, filepath)

    def load_weights(self, filepath, skip_mismatch=False):
        """Read weights written by :meth:`save_weights` or by Keras (Keras 3's
        ``.weights.h5``, a legacy ``.h5`` weights or model file: lecture "Deep learning I"'s
        ``model_weights.h5``), or those of a model file ``dlcore.save`` wrote for the same
        architecture, into this built model, every shape checked first: all or nothing, so
        Keras's ``skip_mismatch`` must be False."""
        from dlcore.io import keras
        check_keras_load_options(os.fspath(filepath), skip_mismatch)
        keras.load_weights(self, filepath)

    # -- files (the dlcore.io protocol) -------------------------------------------------
    def get_config(self):
        """The graph, JSON-serialisable (docs/hdf5-format.md, "Functional models"): the
        ``inputs`` (name, shape), the ``layers`` (each shared layer once), the ``nodes`` in
        topological order, each ``{"layer": index, "inputs": [tensor, ...]}`` where tensor k < m
        is input k and m + j the output of node j (always an earlier node), the ``outputs``
        (tensor numbers), and the compile settings."""
        from dlcore.optimizers import serialize as serialize_optimizer
        layer_index = {id(layer): index for index, layer in enumerate(self.flat_layers)}
        config = {"name": self.name, "backend": self.backend_name, "seed": str(self.seed),
                  "layers": [layer_entry(layer) for layer in self.flat_layers],
                  **_graph_config(self, layer_index)}
        if not self.trainable:
            config["trainable"] = False
        if getattr(self, "keras_sequential_", False):
            config["keras_class"] = "Sequential"
        config.update(_keys_config(self))
        if getattr(self, "keras_nested_config_", None) is not None:
            from dlcore.io.keras import forget_stale_keras_nesting
            forget_stale_keras_nesting(self)
        if getattr(self, "keras_nested_config_", None) is not None:
            # the Keras model's own nesting, which dlcore's may not follow (a layer shared
            # across it), for its weights files and get_weights(layout="keras")
            config["keras_nesting"] = {"config": self.keras_nested_config_,
                                       "same_as": dict(getattr(self, "keras_same_as_", {})),
                                       "file_names": dict(getattr(self, "keras_file_names_",
                                                                  {}))}
        if self.loss is not None:
            config["compile"] = {"loss": ([loss.get_config() for loss in self.losses]
                                          if self._several_outputs
                                          else self.loss.get_config()),
                                 "optimizer": serialize_optimizer(self.optimizer),
                                 "metrics": list(self.metrics)}
            per_output = self._output_metric_names() if self._several_outputs else []
            if any(names != self.metrics for names in per_output):
                # the outputs that report their accuracy: true/false (the form older dlcore
                # reads) when each reports all the names, else each output's names
                config["compile"]["metric_outputs"] = (
                    [bool(names) for names in per_output]
                    if all(names in ([], self.metrics) for names in per_output)
                    else per_output)
            if self.loss_weights is not None:
                config["compile"]["loss_weights"] = list(self.loss_weights)
            if getattr(self, "output_loss_order", None) is not None:
                config["compile"]["loss_order"] = list(self.output_loss_order)
        return config

    @classmethod
    def from_config(cls, config, dtype=np.float32):
        """A new model from :meth:`get_config`'s dict (ValueError in one line for a graph that
        refers to a tensor not yet made, a layer out of range, or too many nodes)."""
        from dlcore.layers.base import layer_class
        inputs = [Input(entry["shape"], name=entry.get("name")) for entry in config["inputs"]]
        if not inputs:
            raise ValueError("a functional model needs at least one input")
        layers = []
        for entry in config["layers"]:
            class_name = entry["class_name"]
            if layer_class(class_name) is None:
                raise ValueError(f"unknown layer class {class_name!r}")
            layers.append(layer_class(class_name).from_config(dict(entry["config"])))
        check_nesting(config)
        backend = config.get("backend", "auto")
        nested = [_nested_model_from_config(entry, layers, backend)
                  for entry in config.get("models", [])]
        calls = _calls_from_config(config, nested)
        tensors = list(inputs)
        for index, node in enumerate(config["nodes"]):
            layer_number = node["layer"]
            references = node["inputs"]
            if not is_integer(layer_number) \
                    or not 0 <= layer_number < len(layers):
                raise ValueError(f"node {index} names layer {layer_number!r:.40}; the model "
                                 f"has {len(layers)} layers")
            if not isinstance(references, list) or not 1 <= len(references) <= MAX_NODE_INPUTS:
                raise ValueError(f"node {index} should take 1 to {MAX_NODE_INPUTS} tensors")
            for reference in references:
                if not is_integer(reference) \
                        or not 0 <= reference < len(tensors):
                    raise ValueError(f"node {index} refers to tensor {reference!r:.40}, which "
                                     f"is not an input or the output of an earlier node")
            layer = layers[layer_number]
            arguments = [tensors[r] for r in references]
            takes_list = getattr(layer, "takes_list", False)
            tensors.append(call_layer(layer, arguments if takes_list else arguments[0]))
            tensors[-1].node.call = _node_call(node, calls, index)
        outputs = []
        for reference in config["outputs"]:
            if not is_integer(reference) \
                    or not 0 <= reference < len(tensors):
                raise ValueError(f"output {reference!r:.40} is not a tensor of the graph")
            outputs.append(tensors[reference])
        if not outputs:
            raise ValueError("a functional model needs at least one output")
        model = cls(inputs if config.get("several_inputs", len(inputs) > 1) else inputs[0],
                    outputs if config.get("several_outputs", len(outputs) > 1) else outputs[0],
                    backend=config.get("backend", "auto"), seed=int(config.get("seed", 0)),
                    name=config.get("name"))
        if np.dtype(dtype) != model.dtype:
            model.build(dtype=dtype)
        unused = [layer.name for layer in layers
                  if not any(layer is m for m in model.flat_layers)]
        if unused:
            raise ValueError(f"layer(s) {', '.join(unused)} are not used by the graph")
        _check_calls_hold_their_models(model)
        model._keep_trainable(config)
        compiled = config.get("compile")
        if compiled:
            chosen = compiled.get("metric_outputs")
            # without metric_outputs every output reported all the file's names, also where
            # they are as many as the outputs (which compile now takes one per output)
            metrics = (every_output(compiled.get("metrics"), len(model.outputs))
                       if chosen is None
                       else [list(flag) if isinstance(flag, list)
                             else list(compiled.get("metrics") or ["accuracy"]) if flag else []
                             for flag in chosen])
            model.compile(compiled["loss"], compiled["optimizer"], metrics,
                          loss_weights=compiled.get("loss_weights"))
            order = compiled.get("loss_order")
            if order is not None:
                if sorted(order) != list(range(len(model.outputs))):
                    raise ValueError(f"loss_order {str(order)[:80]} is not an order of the "
                                     f"model's {len(model.outputs)} outputs")
                model.output_loss_order = tuple(order)
        return model

    def get_state(self):
        """Weights, counters and optimiser slots, laid out as :class:`dlcore.Sequential`'s
        (``layers/<layer>/kernel``, ...; each shared layer once)."""
        from dlcore.network import Sequential
        return Sequential.get_state(self)

    def set_state(self, state):
        """Validate every array against the graph, then assign (dlcore.io protocol)."""
        from dlcore.network import Sequential
        Sequential.set_state(self, self._best_weights_in_layer_order(state))

    def _best_weights_in_layer_order(self, state):
        """``state`` with an EarlyStopping's ``best_weights`` (a list, as ``get_weights()``
        gave it to the model that wrote the file, whose layers the file's ``layer_names``
        lists in its order) put in the order of :attr:`layers`: files written before
        ``layers`` took Keras's order list a residual block's shortcut before its main path.
        The weights themselves are stored by layer name; a state this cannot map is left as it
        is, for :meth:`set_state`'s checks to name what is wrong."""
        from dlcore.io.guarded import parse_json
        try:
            # a flat list of names: a file nesting it 200,000 deep made json.loads recurse out
            # of the stack (RecursionError; model-file fuzzer, seed 70)
            written = parse_json(state["layers"]["layer_names"], limit_depth=1)
            early = dict(state["training"]["callbacks"]["EarlyStopping"])
            weights = early["best_weights"]
        except (KeyError, TypeError, ValueError, IndexError):   # an array indexed by a name
            return state
        counts = {layer.name: len(layer.array_names) for layer in self.flat_layers}
        if not isinstance(written, list) or sorted(map(str, written)) != sorted(counts) \
                or written == list(counts) or not isinstance(weights, dict) \
                or sorted(weights) != sorted(map(str, range(sum(counts.values())))):
            return state
        by_layer, position = {}, 0
        for name in written:
            by_layer[name] = [weights[str(position + i)] for i in range(counts[name])]
            position += counts[name]
        ordered = [array for name in counts for array in by_layer[name]]
        early["best_weights"] = {str(i): array for i, array in enumerate(ordered)}
        callbacks = {**state["training"]["callbacks"], "EarlyStopping": early}
        return {**state, "training": {**state["training"], "callbacks": callbacks}}

    def clone(self, backend=None, dtype=None):
        """An independent copy (its own layers) with the same graph, weights, counters and
        compile settings, optionally on another backend or dtype."""
        config = self.get_config()
        if backend is not None:
            config["backend"] = check_backend_name(backend)
        twin = type(self).from_config(config, dtype=self.dtype if dtype is None else dtype)
        keep_automatic_names(self, twin)
        twin.set_weights(self.get_weights())
        twin.seed, twin.epochs_done, twin.n_updates = self.seed, self.epochs_done, self.n_updates
        twin.history = copy.deepcopy(self.history)
        if twin.optimizer is not None:
            twin.optimizer.build(twin._parameters, twin.backend)
        return twin

    # -- models as layers ---------------------------------------------------------------
    def __call__(self, x, training=False):
        """The model on symbolic tensors: its nodes again on ``x`` (the same layers, weights
        shared), returning its output tensor(s). On arrays, as Keras's ``model(x)``: the
        outputs in evaluation mode, as :meth:`predict` gives them (NumPy arrays);
        ``training=True`` (dropout and noise drawing) is refused: use ``train_on_batch``.
        A model imported from a Keras model of dict inputs or outputs takes a dict of tensors
        by its input names or keys and returns a dict of tensors by its output keys, as
        Keras's model does on symbolic tensors."""
        if isinstance(x, dict) and x and all(isinstance(t, SymbolicTensor) for t in x.values()):
            x = by_name(x, self.input_names, "inputs", "x",
                        getattr(self, "keras_input_keys_", None))
        tensors = [x] if isinstance(x, SymbolicTensor) else list(x) if is_symbolic(x) else None
        if tensors is None:
            refuse_keras_tensors(f"model {self.name!r}", x)
            if training:
                raise ValueError("model(x, training=True) on arrays is not dlcore's: call "
                                 "model(x) (evaluation mode), or train with train_on_batch")
            return self.predict(x)
        if len(tensors) != len(self.inputs):
            raise ValueError(f"model {self.name!r} takes {len(self.inputs)} input tensor(s), "
                             f"got {len(tensors)}")
        mapping = {id(t): new for t, new in zip(self.inputs, tensors)}
        call = ModelCall(self)   # the outer model lists this model as one layer
        for node in self.nodes:
            arguments = [mapping[id(t)] for t in node.inputs]
            mapping[id(node.output)] = call_layer(node.layer, arguments if node.takes_list
                                                  else arguments[0])
            mapping[id(node.output)].node.call = call
        outputs = [mapping[id(t)] for t in self.outputs]
        keys = getattr(self, "keras_output_keys_", None)
        if keys and len(keys) == len(outputs):
            return dict(zip(keys, outputs))
        return outputs if self._several_outputs else outputs[0]

    def __reduce_ex__(self, protocol):
        """pickle and copy.deepcopy go through the file's config and state (arrays and plain
        values, :func:`dlcore.params.reduce_through_state`): the copy has its own layers."""
        from dlcore.params import reduce_through_state
        return reduce_through_state(self, fitted=True)

    def __repr__(self):
        return (f"Model({wording.count(len(self.inputs), 'input')}, "
                f"{wording.count(len(self.outputs), 'output')}, "
                f"{wording.count(len(self.layers), 'layer')}, "
                f"backend={self.backend_name!r})")


#: The deepest nesting of models (a model in a model in ...) a file may give: a file that nests
#: a model inside itself over and over is refused before anything recurses that deep.
MAX_NESTING_DEPTH = 16
#: The most nested models (at every depth together) a file may give.
MAX_NESTED_MODELS = 256


def _graph_config(model, layer_index):
    """The ``inputs``, ``nodes`` and ``outputs`` of ``model``'s graph (its layers numbered by
    ``layer_index``, their places in the outermost model's ``layers``), with the ``models``
    called on its tensors (each its own graph, so that a file keeps the nesting) and per node
    of such a call its number in ``calls`` (the model each call is of)."""
    numbers = {id(t): index for index, t in enumerate(model.inputs)}
    nested = model.nested_models
    calls, nodes = [], []
    for index, node in enumerate(model.nodes):
        entry = {"layer": layer_index[id(node.layer)],
                 "inputs": [numbers[id(t)] for t in node.inputs]}
        if node.call is not None:
            if not any(node.call is call for call in calls):
                calls.append(node.call)
            entry["call"] = next(number for number, call in enumerate(calls)
                                 if call is node.call)
        nodes.append(entry)
        numbers[id(node.output)] = len(model.inputs) + index
    config = {"inputs": [{"name": name, "shape": list(t.shape)}
                         for name, t in zip(model.input_names, model.inputs)],
              "several_inputs": model._several_inputs, "nodes": nodes,
              "outputs": [numbers[id(t)] for t in model.outputs],
              "several_outputs": model._several_outputs}
    if nested:
        config["models"] = [_nested_model_config(inner, layer_index) for inner in nested]
        config["calls"] = [next(number for number, inner in enumerate(nested)
                                if inner is call.model) for call in calls]
    return config


def _nested_model_config(model, layer_index):
    """A nested model's entry in its container's config: a Sequential's layers in order, a
    functional model's graph (with the models it nests in turn). ValueError in one line for
    a nested model with layers its container never runs (they make an output of it that the
    container leaves unused): the file lists the container's layers only."""
    lost = [layer.name for layer in model.flat_layers if id(layer) not in layer_index]
    if lost:
        raise ValueError(f"nested model {model.name!r} has layers the model never runs "
                         f"({', '.join(map(str, lost[:4]))}: they make an output of it that "
                         f"the model leaves unused), which dlcore's file cannot hold: use "
                         f"that output, or build the nested model without it")
    entry = {"class_name": "Sequential" if model._is_sequential else "Model",
             "name": model.name, "trainable": bool(model.trainable)}
    if model._is_sequential:
        entry["layers"] = [layer_index[id(layer)] for layer in model.layers]
        entry["input_shape"] = list(model.input_shape) if model.input_shape else None
    else:
        entry.update(_graph_config(model, layer_index))
        if getattr(model, "keras_sequential_", False):
            entry["keras_class"] = "Sequential"
        entry.update(_keys_config(model))
    return entry


def _keys_config(model):
    """``keras_input_keys`` and ``keras_output_keys`` of a config: the keys of a model's dict
    inputs and outputs (Keras's, or given to :class:`Model`), one per tensor, where it has
    them (:meth:`Model._keep_trainable` reads them back)."""
    config = {}
    for what in ("input", "output"):
        keys = getattr(model, f"keras_{what}_keys_", None)
        if keys and len(keys) == len(model.inputs if what == "input" else model.outputs):
            config[f"keras_{what}_keys"] = list(keys)
    return config


def check_nesting(config):
    """ValueError in one line when ``config`` nests models deeper than
    :data:`MAX_NESTING_DEPTH` or lists a nested model other than as a JSON object of a known
    class; walked without recursion, so a hostile file cannot exhaust the stack."""
    pending, seen = [(config, 0)], 0
    while pending:
        graph, depth = pending.pop()
        models = graph.get("models", [])
        if not isinstance(models, list):
            raise ValueError(f"the nested models are given as {type(models).__name__}; "
                             f"expected a list")
        seen += len(models)
        if seen > MAX_NESTED_MODELS:
            raise ValueError(f"the model nests more than {MAX_NESTED_MODELS} models; dlcore "
                             f"reads at most {MAX_NESTED_MODELS}")
        if models and depth >= MAX_NESTING_DEPTH:
            raise ValueError(f"the model nests models more than {MAX_NESTING_DEPTH} deep "
                             f"(a model inside itself?); dlcore reads at most "
                             f"{MAX_NESTING_DEPTH} levels")
        for entry in models:
            if not isinstance(entry, dict) or entry.get("class_name") not in (
                    "Sequential", "Model"):
                raise ValueError(f"a nested model is described as {entry!r:.60}; expected "
                                 f"an entry of class Sequential or Model")
            pending.append((entry, depth + 1))


def _nested_model_from_config(entry, layers, backend, depth=1):
    """The nested model of a config ``entry`` (:func:`_nested_model_config`), on the
    container's ``layers`` (its weights are theirs); depth bounded by :func:`check_nesting`."""
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"a nested model is unnamed ({name!r:.40})")

    def layer_at(number, where):
        if not is_integer(number) \
                or not 0 <= number < len(layers):
            raise ValueError(f"{where} of nested model {name!r} names layer {number!r:.40}; "
                             f"the model has {len(layers)} layers")
        return layers[number]

    if entry["class_name"] == "Sequential":
        from dlcore.network import Sequential
        numbers = entry.get("layers")
        if not isinstance(numbers, list) or not numbers:
            raise ValueError(f"nested Sequential {name!r} lists no layers")
        model = Sequential([layer_at(number, "an entry") for number in numbers],
                           input_shape=entry.get("input_shape"), backend=backend, name=name)
    else:
        if depth > MAX_NESTING_DEPTH:
            raise ValueError(f"the model nests models more than {MAX_NESTING_DEPTH} deep")
        nested = [_nested_model_from_config(inner, layers, backend, depth + 1)
                  for inner in entry.get("models", [])]
        calls = _calls_from_config(entry, nested)
        inputs = [Input(spec["shape"], name=spec.get("name")) for spec in entry["inputs"]]
        tensors = list(inputs)
        for index, node in enumerate(entry["nodes"]):
            references = node.get("inputs") if isinstance(node, dict) else None
            if not isinstance(references, list) or not 1 <= len(references) <= \
                    MAX_NODE_INPUTS or not all(is_integer(r)
                                               and 0 <= r < len(tensors) for r in references):
                raise ValueError(f"node {index} of nested model {name!r} refers to tensors "
                                 f"{references!r:.40} that are not inputs or outputs of "
                                 f"earlier nodes")
            layer = layer_at(node.get("layer"), f"node {index}")
            arguments = [tensors[r] for r in references]
            tensors.append(call_layer(layer, arguments if getattr(layer, "takes_list", False)
                                      else arguments[0]))
            tensors[-1].node.call = _node_call(node, calls, index)
        outputs = [tensors[r] for r in entry["outputs"]
                   if is_integer(r) and 0 <= r < len(tensors)]
        if not outputs or len(outputs) != len(entry["outputs"]):
            raise ValueError(f"the outputs of nested model {name!r} are not tensors of its "
                             f"graph")
        model = Model(inputs if entry.get("several_inputs", len(inputs) > 1) else inputs[0],
                      outputs if entry.get("several_outputs", len(outputs) > 1) else outputs[0],
                      backend=backend, name=name)
        _check_calls_hold_their_models(model)
    model._keep_trainable(entry)
    return model


def _calls_from_config(config, nested):
    """One :class:`ModelCall` per entry of a config's ``calls`` (the nested model of each)."""
    numbers = config.get("calls", [])
    if not isinstance(numbers, list) or not all(
            is_integer(n) and 0 <= n < len(nested)
            for n in numbers):
        raise ValueError(f"the calls of nested models {numbers!r:.60} name models the config "
                         f"does not list")
    return [ModelCall(nested[number]) for number in numbers]


def _node_call(node, calls, index):
    """The :class:`ModelCall` a config's node belongs to (None: a call of the model's own)."""
    number = node.get("call")
    if number is None:
        return None
    if not is_integer(number) or not 0 <= number < len(calls):
        raise ValueError(f"node {index} belongs to call {number!r:.40} of a nested model; "
                         f"there are {len(calls)} such calls")
    return calls[number]


def _check_calls_hold_their_models(model):
    """ValueError in one line when a call of a nested model runs other layers than the nested
    model's own (a file whose nesting does not match its graph)."""
    for call, _, _ in model._model_calls():
        own = {id(layer) for layer in call.model.flat_layers}
        used = {id(node.layer) for node in model.nodes if node.call is call}
        if own != used:
            raise ValueError(f"a call of nested model {call.model.name!r} runs other layers "
                             f"than the model's own")


def penalises_outputs(layer):
    """Whether ``layer`` has an ``activity_regularizer`` (a penalty on its outputs, after its
    activation): a network then never fuses that activation into its loss."""
    return getattr(layer, "activity_regularizer", None) is not None


def add_activity_penalties(model, row_loss):
    """``row_loss`` (n,) += the activity penalty of every layer of ``model`` that has one, on
    the outputs of the last forward pass (each call of a shared layer, the layers of nested
    models): Keras 3's penalty(h) / batch size, as each sample's share of the batch mean."""
    for runner in model.running_layers():
        if isinstance(runner, Model):
            add_activity_penalties(runner, row_loss)
        elif penalises_outputs(runner):
            runner.add_activity_penalty(row_loss)


def final_activation(layer):
    """The activation a layer ends with (None for layers without one)."""
    if isinstance(layer, (WeightedLayer, Activation)):
        return layer.activation
    return None


def check_loss_fits(loss, layer):
    """``loss`` once it fits the output of ``layer`` (see
    :func:`dlcore.losses.check_output_activation`); ValueError naming the layer otherwise."""
    check_output_activation(loss, final_activation(layer), layer.name,
                            has_activation=isinstance(layer, (WeightedLayer, Activation)),
                            output_width=known_output_width(layer))
    return loss


def _weights_layout(layout):
    """``layout`` of get_weights/set_weights, checked: "dlcore" or "keras"."""
    if layout not in ("dlcore", "keras"):
        raise ValueError(f"layout must be 'dlcore' (dlcore's arrays) or 'keras' (Keras's "
                         f"get_weights() order and layouts); got {layout!r}")
    return layout


def keras_layout_hint(layer, name, shape, of_model=True):
    """The fix to add to a shape mismatch when ``shape`` is the shape Keras stores the layer's
    array ``name`` in (a Conv2D kernel in HWIO): the arrays came from a Keras model. Arrays
    whose shape is the same in both layouts (a 3 x 3 kernel from 3 to 3 channels, a Dense
    after a Flatten of maps) cannot be told apart, so only the layout argument converts them.
    ``of_model``: the mismatch is in a model's ``set_weights``, else in a layer's (which takes
    dlcore's layout only: the fix is the model's, or the transposition)."""
    from dlcore.io.keras import keras_shapes
    position = list(layer.array_names).index(name)
    keras_shape = keras_shapes(layer)[position]
    if tuple(shape) != keras_shape:
        return ""
    if of_model:
        return (" (Keras's layout of the array: give keras_model.get_weights() as "
                "model.set_weights(weights, layout='keras'))")
    return (" (Keras's layout of the array, (k_h, k_w, ...): set the whole model's with "
            "model.set_weights(keras_model.get_weights(), layout='keras'), or give "
            "kernel.transpose(3, 2, 0, 1))")

