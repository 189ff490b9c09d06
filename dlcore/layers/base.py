"""What every layer is: a shape map, parameters, a forward and a backward pass.

Lecture "Deep learning I", back-propagation: "For every layer: given the input and the
'gradient term' passed from the layer above compute (1) the gradient w.r.t. the parameters and
(2) the gradient term for the layer below". A :class:`Layer` is exactly that contract:

* ``build(input_shape, backend, dtype, seed)`` fixes the per-sample input shape, creates the
  parameters (``params``: name -> array, ``kernel`` and ``bias`` for the layers that have them)
  and their gradients (``grads``), on the chosen backend;
* ``forward(x, training, step)`` maps a batch ``(n, *input_shape)`` to ``(n, *output_shape)``
  and keeps what ``backward`` needs;
* ``backward(grad_y)`` fills ``grads`` with dL/dparameters and returns dL/dx (or None when the
  caller says the input gradient is not needed, as for the first layer of a network).

The arrays live on the layer's backend (NumPy on ``reference`` and ``cpu``, device arrays on
``cuda``); outputs are buffers owned by the layer and overwritten by its next call, so a
network allocates nothing per batch. ``layer(x)`` is the convenience for a NumPy batch: it builds
the layer on first use and returns a NumPy copy.
"""
import inspect
import math
import numbers
import warnings

import numpy as np

from dlcore.backend import get_backend
from dlcore.backend.rng import STREAM_WEIGHT_NOISE
from dlcore.validation import check_bool, check_float, check_int

from . import initializers
from .bodies import ACTIVATION_CODES, NEEDS_PREACTIVATION
from .geometry import stacklevel_outside_dlcore
from .ops import ops_for

#: Layer classes by the name a config gives them (:func:`registered_name`), for the model
#: files and every copy made through a config (``clone``, ``gradcheck``, the wrappers).
LAYER_CLASSES = {}
#: dlcore's classes that hold what layers share and are no layer of their own
ABSTRACT_LAYERS = ("WeightedLayer", "Merge")
#: The activations of Dense, Conv2D and Activation layers (Keras's names), by code.
ACTIVATION_NAMES = tuple(ACTIVATION_CODES)
#: Keras's other names of the same functions (its configs write the first name)
ACTIVATION_ALIASES = {"swish": "silu", "hard_swish": "hard_silu"}

# The ``training`` argument of ``forward`` is True (training: dropout, noise and augmentation
# draw afresh), False (evaluation), or one of two modes that compute the evaluation maths:
#: keep what ``backward`` needs, for the gradient of the network as it predicts (the input
#: gradient of an adversarial example, :mod:`dlcore.adversarial`)
EVALUATION_GRADIENT = "evaluation_gradient"
#: dropout alone draws masks, from ``STREAM_MC_DROPOUT`` (Monte Carlo dropout, ``predict(x,
#: mc_dropout=K)``); noise and augmentation stay off
MC_DROPOUT = "mc_dropout"


def draws_noise(training):
    """Whether ``training`` switches on noise injection and augmentation: True, not a mode."""
    return bool(training) and not isinstance(training, str)


def own_seed(seed):
    """Keras's ``seed=`` of a layer that draws (Dropout, GaussianNoise): None (the layer's
    draws take the key the model derives for it), or an integer in [0, 2**64): the Philox key
    of the layer's draws, wherever the layer sits."""
    if seed is None:
        return None
    seed = check_int(seed, "seed", minimum=0)
    if seed >= 2 ** 64:
        raise ValueError(f"seed must be below 2**64 (a Philox key), got {seed}")
    return seed


def check_activation(activation):
    """None -> "linear"; a known name (lower-cased, Keras's aliases "swish" and "hard_swish"
    as "silu" and "hard_silu"); else ValueError naming the choices."""
    if activation is None:
        return "linear"
    if isinstance(activation, str):
        name = ACTIVATION_ALIASES.get(activation.lower(), activation.lower())
        if name in ACTIVATION_NAMES:
            return name
    raise ValueError(f"activation must be one of {', '.join(ACTIVATION_NAMES)} or None, got "
                     f"{activation!r}")


def check_shape(shape, name="input_shape"):
    """A per-sample shape as a tuple of positive ints."""
    if isinstance(shape, numbers.Integral):
        shape = (shape,)
    try:
        shape = tuple(shape)
    except TypeError:
        raise ValueError(f"{name} must be a tuple of positive integers, got {shape!r}") from None
    if not shape or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool)
                            and v >= 1 for v in shape):
        batch = ""
        if len(shape) > 1 and shape[0] is None:   # Keras's (batch, ...) with its None
            sample = tuple(shape[1:])
            if len(sample) == 3:   # Keras's images are (height, width, channels)
                sample = (sample[2], sample[0], sample[1])
            batch = (f" (one sample's shape: dlcore leaves out Keras's batch axis and puts an "
                     f"image's channels first: give {sample!r})" if len(shape) == 4 else
                     f" (one sample's shape: dlcore leaves out Keras's batch axis: give "
                     f"{sample!r})")
        raise ValueError(f"{name} must be a tuple of positive integers{batch}, got {shape!r}")
    return tuple(int(v) for v in shape)


def is_builtin(cls):
    """Whether a layer class is one of dlcore's own."""
    return cls.__module__ == "dlcore" or cls.__module__.startswith("dlcore.")


def registered_name(cls):
    """The name a config writes for a layer class, which :func:`layer_class` reads back:
    dlcore's own by their class name; a class of one's own by its module-qualified name
    (``__main__.Dense``), so that a student's ``class Dense(dlcore.layers.Dense)`` never takes
    the place of dlcore's ``Dense`` in a file, a clone or a gradient check (Keras, too, never
    lets a custom object override a built-in name: it registers it under a package)."""
    return cls.__name__ if is_builtin(cls) else f"{cls.__module__}.{cls.__qualname__}"


def layer_class(class_name):
    """The layer class a config's ``class_name`` names, or None (unknown, or abstract).

    A name that is neither dlcore's nor a registered module-qualified one (a file written
    in a notebook, ``__main__.Scale``, read where ``Scale`` lives in a module; or before such
    names were qualified, ``Scale``) names the class of one's own of that name, when exactly
    one is defined; dlcore's names always name dlcore's classes."""
    cls = LAYER_CLASSES.get(class_name) if isinstance(class_name, str) else None
    if cls is None and isinstance(class_name, str):
        bare = class_name.rsplit(".", 1)[-1]
        own = [c for c in LAYER_CLASSES.values() if not is_builtin(c) and c.__name__ == bare]
        cls = own[0] if len(own) == 1 else None
    if cls is not None and is_builtin(cls) and (cls.__name__.startswith("_")
                                                or cls.__name__ in ABSTRACT_LAYERS):
        return None
    return cls


def layer_entry(layer):
    """A layer's ``{"class_name", "config"}`` in a model's config, checked for a class of one's
    own: a config must name every argument its ``__init__`` requires (``from_config`` calls
    ``cls(**config)``), else NotImplementedError in one line naming the fix, when the model is
    saved or copied rather than when its file is read (Keras's rule for custom layers)."""
    cls = type(layer)
    config = layer.get_config()
    if not is_builtin(cls):
        required = [name for name, parameter in _init_parameters(cls)
                    if parameter.default is inspect.Parameter.empty
                    and parameter.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                           inspect.Parameter.KEYWORD_ONLY)]
        missing = [name for name in required if name not in config]
        if missing:
            raise NotImplementedError(
                f"layer {layer.name!r} ({cls.__name__}) has the arguments {missing} in "
                f"__init__() that its get_config() leaves out, so it cannot be saved or "
                f"copied: make {cls.__name__}.get_config() return them (super().get_config() "
                f"updated with them)")
    return {"class_name": registered_name(cls), "config": config}


def _init_parameters(cls):
    """``(name, inspect.Parameter)`` of ``cls.__init__`` after ``self``."""
    return list(inspect.signature(cls.__init__).parameters.items())[1:]


def _config_written_for_init(cls):
    """Whether the ``_config``/``get_config`` a class inherits was written for the ``__init__``
    it inherits: not so for a class of one's own that defines ``__init__`` and no config."""
    classes = cls.__mro__
    init_at = next(i for i, c in enumerate(classes) if "__init__" in c.__dict__)
    config_at = next(i for i, c in enumerate(classes)
                     if "_config" in c.__dict__ or "get_config" in c.__dict__)
    return config_at <= init_at


def _json_value(value):
    """``value`` as JSON holds it (NumPy scalars as numbers, tuples as lists), or raise
    TypeError."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (numbers.Integral, numbers.Real)) and np.ndim(value) == 0:
        return value.item() if isinstance(value, np.generic) else value
    if isinstance(value, (list, tuple)):
        return [_json_value(item) for item in value]
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {key: _json_value(item) for key, item in value.items()}
    raise TypeError(type(value).__name__)


def _constructor_arguments(cls, args, kwargs):
    """The arguments a layer of one's own was made with, by name (defaults filled in, those of
    ``**kwargs`` spread out, ``name`` and ``input_shape`` left to :meth:`Layer.get_config`):
    Keras 3's automatic config. A string saying why not, when a config cannot name them."""
    signature = inspect.signature(cls.__init__)
    try:
        bound = signature.bind(None, *args, **kwargs)
    except TypeError:
        return None   # __init__ itself says what is wrong
    bound.apply_defaults()
    arguments = {}
    for name, value in list(bound.arguments.items())[1:]:
        kind = signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            arguments.update(value)
        elif kind is inspect.Parameter.VAR_POSITIONAL and value or \
                kind is inspect.Parameter.POSITIONAL_ONLY:
            return f"its __init__() takes the positional-only or *{name} argument"
        elif kind is not inspect.Parameter.VAR_POSITIONAL:
            arguments[name] = value
    arguments.pop("name", None)
    arguments.pop("input_shape", None)
    for name, value in arguments.items():
        try:
            arguments[name] = _json_value(value)
        except TypeError:
            return f"it was given {name}={value!r:.40}, which is no JSON value"
    return arguments


def builtin_layer_names():
    """dlcore's own layer classes a config may name, sorted (for the messages)."""
    return sorted(name for name, cls in LAYER_CLASSES.items()
                  if is_builtin(cls) and layer_class(name) is cls)


def policy_name(dtype):
    """The name of a Keras layer config's ``dtype``: a string (Keras 2, an input's) or a
    (DType)Policy object (Keras 3: ``{"class_name": "DTypePolicy", "config": {"name":
    "float64"}}``); None for none."""
    if isinstance(dtype, dict):
        dtype = dtype.get("config", {}).get("name") if isinstance(dtype.get("config"),
                                                                  dict) else None
    return dtype if isinstance(dtype, str) else None


#: The types dlcore computes in: its kernels (Numba's, on the CPU and CUDA) have no other.
COMPUTED_TYPES = (np.dtype(np.float32), np.dtype(np.float64))


def computed_type(dtype):
    """``dtype`` as the NumPy type a layer or model computes in, float32 or float64 (by name,
    NumPy type, Keras DTypePolicy or its config); ValueError in one line for any other
    (float16, a mixed policy, an integer type): the CPU and CUDA kernels cannot compile for
    it, and Numba's traceback (``NotImplementedError: float16``) was all a model built in
    float16 said. A byte-swapped float32 or float64 (the ``'>f4'`` of an array read from a
    big-endian file) is that type in this machine's order. None is dlcore's default, float32
    (NumPy reads None as float64)."""
    if dtype is None:
        return COMPUTED_TYPES[0]
    # a Keras DTypePolicy's config (a Keras layer's get_config), a DTypePolicy, a NumPy dtype
    serialised = isinstance(dtype, dict)
    name = policy_name(dtype) if serialised else getattr(dtype, "name", dtype)
    try:
        # np.dtype(None) is float64: a policy config without a name is no type
        chosen = None if serialised and name is None else np.dtype(name).newbyteorder("=")
    except (TypeError, ValueError):   # NumPy's own words ("entry not a 2- or 3- tuple")
        chosen = None
    # "is None" first: NumPy takes None for float64, so None == float64 is True
    if chosen is None or chosen not in COMPUTED_TYPES:
        shown = chosen.name if chosen is not None else str(dtype if name is None else name)[:40]
        raise ValueError(f"dtype={shown!r}: dlcore computes in float32 or float64 "
                         f"(dtype='float32', 'float64' or None)")
    return chosen


def declared_float_type(layers):
    """The type a model of ``layers`` computes in when not told: the one every layer declares
    (Keras's ``dtype="float64"`` on each: a Keras model whose layers are all float64 computes
    in float64), else float32."""
    declared = {getattr(layer, "float_type", None) for layer in layers}
    return declared.pop() if len(declared) == 1 and None not in declared \
        else np.dtype(np.float32)


def weight_values(layer, name, value):
    """``value``, given for the array ``name`` of the layer named ``layer``, as a NumPy array of
    real numbers, else one line naming both: a TypeError for strings and other objects
    (NumPy's isfinite said "ufunc 'isfinite' not supported for the input types"), a
    ValueError for complex numbers (whose imaginary parts the cast dropped with only NumPy's
    ComplexWarning)."""
    array = np.asarray(value)
    if array.dtype.kind == "c":
        raise ValueError(f"layer {layer!r}: {name} holds complex numbers; weights are real: "
                         f"give its real part (.real), if that is what you mean")
    if array.dtype.kind not in "biuf":
        raise TypeError(f"layer {layer!r}: {name} must hold real numbers, got dtype "
                        f"{array.dtype}")
    return array


class Layer:
    """Base class of the layers (see the module docstring).

    Parameters
    ----------
    name : str, optional
        Unique within a network (a network names unnamed layers ``dense``, ``dense_1``, ...).
    input_shape : tuple, optional
        The per-sample input shape, e.g. ``(1, 28, 28)``; needed only on a network's first
        layer, and only when the network is not given ``input_shape`` itself.
    trainable : bool, Keras's keyword: False freezes the layer (see the attribute; a layer
        without weights only reads it back)
    dtype : None, "float32" or "float64" (a NumPy type, Keras's ``DTypePolicy`` or its config):
        the type a layer built on its own (called on NumPy arrays) computes in, as Keras's
        layer; in a model, the model's (dlcore computes a model in one type: build it in
        float64 for float64), with a one-line warning where the two differ at its first
        forward pass in the model's type. float16 and mixed policies are refused in one line.

    Attributes
    ----------
    trainable : bool, True unless set otherwise (Keras's ``layer.trainable = False``): a frozen
        layer's parameters are left as they are by ``fit`` and ``train_on_batch`` (no step, no
        weight decay, no constraint), while its forward pass and the gradient it passes to the
        layers below are unchanged: lecture "Supervised learning"'s protocol "hold fix the
        feature extractor, train linear classifier on features" (slide "Deep Learning is
        BIG"), or fine-tuning part of a pretrained net
    """

    #: The parameter names, in the order of :meth:`get_weights`.
    weight_names = ()
    #: Arrays a layer keeps that are not parameters (no gradient; the optimiser never steps
    #: them): a BatchNormalization's moving statistics. :meth:`get_weights` lists them after
    #: the parameters, as Keras lists its non-trainable weights, and the files keep them.
    state_names = ()
    #: Layers whose forward pass differs between training and evaluation (dropout, noise).
    stochastic = False
    _trainable = True
    #: the layer's own ``dtype=`` (None: none given)
    float_type = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        LAYER_CLASSES[registered_name(cls)] = cls

    def __new__(cls, *args, **kwargs):
        layer = super().__new__(cls)
        if not is_builtin(cls) and not _config_written_for_init(cls):
            # a layer of one's own without a config: its arguments are its config, as Keras 3
            # records them, so that it saves, clones and is gradient-checked as it is
            layer._constructor_arguments = _constructor_arguments(cls, args, kwargs)
        return layer

    def __init__(self, name=None, input_shape=None, trainable=True, dtype=None):
        if name is not None and (not isinstance(name, str) or not name or "/" in name):
            raise ValueError(f"a layer name must be a non-empty string without '/', got "
                             f"{name!r}")
        self.name = name
        self.trainable = trainable
        self.float_type = None if dtype is None else computed_type(dtype)
        self.input_shape = None if input_shape is None else check_shape(input_shape)
        self._given_input_shape = self.input_shape
        self.built = False
        self.params = {}
        self.grads = {}
        self.state = {}

    # -- configuration ------------------------------------------------------------------
    def _config(self):
        """The constructor arguments of the subclass (JSON-serialisable)."""
        return {}

    def get_config(self):
        """The constructor arguments as a JSON-serialisable dict (the model file keeps it).

        A layer of one's own that defines ``__init__`` but neither ``_config`` nor
        ``get_config`` gives the arguments it was made with (Keras 3's automatic config), or,
        when a config cannot hold them, NotImplementedError in one line naming the fix."""
        config = {"name": self.name}
        if self._given_input_shape is not None:
            config["input_shape"] = list(self._given_input_shape)
        if "_constructor_arguments" in self.__dict__:
            arguments = self._constructor_arguments
            if not isinstance(arguments, dict):
                kind = type(self).__name__
                raise NotImplementedError(
                    f"layer {self.name!r} ({kind}) cannot be saved or copied: {arguments}; "
                    f"define {kind}.get_config() returning super().get_config() updated with "
                    f"its constructor arguments as JSON values (and a from_config() that "
                    f"turns them back)")
            config.update(arguments)
        else:
            config.update(self._config())
        if not self.trainable:
            config["trainable"] = False
        if self.float_type is not None:
            config["dtype"] = self.float_type.name
        return config

    @classmethod
    def from_config(cls, config):
        """A new, unbuilt layer from :meth:`get_config`'s dict."""
        config = dict(config)
        trainable = config.pop("trainable", True)
        layer = cls(**config)
        layer.trainable = trainable
        return layer

    @property
    def trainable(self):
        """Whether training updates this layer's parameters (see the class docstring)."""
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        self._trainable = check_bool(value, "trainable")

    @property
    def input(self):
        """The symbolic tensor this layer was first called on in a graph (Keras's
        ``layer.input``; a list for a layer that takes several)."""
        node = self._called_node()
        return node.inputs if node.takes_list else node.inputs[0]

    @property
    def output(self):
        """The symbolic tensor of this layer's first call in a graph (Keras's ``layer.output``):
        ``dlcore.Model(model.input, model.get_layer(name).output)`` is the model up to this
        layer, sharing its weights (feature maps, intermediate codes). A Sequential's layers
        have one once it is built."""
        return self._called_node().output

    def _called_node(self):
        node = getattr(self, "_first_node", None)
        if node is None:
            raise AttributeError(f"layer {self.name or type(self).__name__!r} has not been "
                                 f"called on a symbolic tensor, so it has no input or output "
                                 f"tensor: build its network first (a Sequential with an input "
                                 f"shape, or call the layer on dlcore.Input(...))")
        return node

    @property
    def trainable_weights(self):
        """The parameters that training updates, as NumPy arrays: all of them, or none for a
        frozen layer."""
        weights = self.get_weights()[:len(self.weight_names)]
        return weights if self.trainable else []

    @property
    def non_trainable_weights(self):
        """What training does not step: a frozen layer's parameters, and every state array."""
        weights = self.get_weights()
        return weights[len(self.weight_names):] if self.trainable else weights

    @property
    def weights(self):
        """Every array of the layer, the trainable ones first (Keras's ``layer.weights``: the
        ``trainable_weights`` then the ``non_trainable_weights``), as NumPy arrays; none
        before the layer is built."""
        return self.trainable_weights + self.non_trainable_weights if self.built else []

    def __repr__(self):
        settings = {**self._config(), **({} if self.trainable else {"trainable": False})}
        arguments = ", ".join(f"{key}={value!r}" for key, value in settings.items())
        return f"{type(self).__name__}({arguments})"

    # -- shapes and parameters ----------------------------------------------------------
    def compute_output_shape(self, input_shape):
        """The per-sample output shape for a per-sample ``input_shape`` (checks it fits)."""
        return tuple(input_shape)

    def _initial_weights(self, input_shape, seed):
        """name -> NumPy array of the initial parameters (none for most layers)."""
        return {}

    def build(self, input_shape, backend="auto", dtype=np.float32, seed=0):
        """Fix the input shape and create the parameters on ``backend``.

        Parameters
        ----------
        input_shape : tuple, the per-sample input shape
        backend : name or backend object (see :func:`dlcore.get_backend`)
        dtype : float32 (training) or float64 (gradient checks on the reference backend); None:
            the layer's own ``dtype=``, else float32; any other (float16) is a ValueError in
            one line (:func:`computed_type`)
        seed : int, the layer's Philox key (initial weights, dropout masks)

        Returns
        -------
        self
        """
        input_shape = check_shape(input_shape)
        output_shape = self.compute_output_shape(input_shape)
        weights = self._initial_weights(input_shape, seed)
        self.input_shape, self.output_shape = input_shape, output_shape
        self.seed_ = int(seed)
        self._bind(get_backend(backend), self.float_type if dtype is None else dtype, weights)
        self.built = True
        return self

    def _bind(self, backend, dtype, weights):
        dtype = computed_type(dtype)   # refused before the layer changes (a rebind moves it)
        self.backend = backend
        self.ops = ops_for(backend)
        self.dtype = dtype
        self.params = {name: backend.asarray(weights[name], dtype=self.dtype)
                       for name in self.weight_names}
        self.grads = {name: backend.zeros(weights[name].shape, dtype=self.dtype)
                      for name in self.weight_names}
        self.state = {name: backend.asarray(weights[name], dtype=self.dtype)
                      for name in self.state_names}
        self._workspace = {}

    def rebind(self, backend, dtype=None):
        """Move a built layer (its current weights) to another backend and/or dtype."""
        self._check_built()
        self._bind(get_backend(backend), self.dtype if dtype is None else dtype,
                   dict(zip(self.array_names, self.get_weights())))
        return self

    @property
    def array_names(self):
        """The names of :meth:`get_weights`' arrays: the parameters, then the state."""
        return tuple(self.weight_names) + tuple(self.state_names)

    def _array(self, name):
        return self.params[name] if name in self.params else self.state[name]

    def count_params(self):
        """Number of weights, biases and state numbers (as Keras counts: the state too): the
        numbers of :meth:`get_weights`, but for a ``LocallyConnected2D`` with padding, whose
        weights in the padding are kept and not counted (:meth:`weight_count`)."""
        return self.weight_count() + self.bias_count() + self.state_count()

    def state_count(self):
        """Number of numbers in the state arrays (``state_names``)."""
        return sum(int(np.prod(self.state[name].shape)) for name in self.state_names) \
            if self.built else 0

    def weight_count(self):
        """Number of weights, biases not included (the count of lecture
        "Convolutional neural networks" (2016), "Convolutional vs. non-convolutional")."""
        return 0

    def bias_count(self):
        return 0

    def flops(self):
        """Floating-point operations of the forward pass for one sample. Convention: a
        multiply-add counts as 2 (K products, K - 1 sums and 1 bias addition make 2K for a
        unit with K inputs); element-wise layers (activations, pooling, dropout, reshapes)
        count 0, the cost lecture "Supervised learning" ("Pooling Layer") calls negligible next to
        the products."""
        return 0

    # -- weights ------------------------------------------------------------------------
    def get_weights(self):
        """The parameters as NumPy arrays, in the order of ``weight_names``
        (``[kernel, bias]`` for Dense and Conv2D), then the state (``state_names``)."""
        self._check_built()
        return [np.array(self.backend.to_numpy(self._array(name))) for name in self.array_names]

    def set_weights(self, weights):
        """Replace the parameters (and the state) by NumPy arrays given in the order of
        :meth:`get_weights`; every shape is checked before anything is assigned."""
        self._check_built()
        weights = list(weights)
        names = self.array_names
        if len(weights) != len(names):
            raise ValueError(f"layer {self.name!r} has {len(names)} weight arrays "
                             f"({', '.join(names) or 'none'}); got {len(weights)}")
        arrays = []
        for name, value in zip(names, weights):
            value = weight_values(self.name, name, value)
            expected = tuple(self._array(name).shape)
            if value.shape != expected:
                from dlcore.functional import keras_layout_hint
                raise ValueError(f"layer {self.name!r}: {name} has shape {value.shape}; "
                                 f"expected {expected}"
                                 f"{keras_layout_hint(self, name, value.shape, of_model=False)}")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"layer {self.name!r}: {name} contains NaN or infinite values")
            with np.errstate(over="ignore"):
                cast = np.ascontiguousarray(value, dtype=self.dtype)
            if not np.all(np.isfinite(cast)):
                raise ValueError(f"layer {self.name!r}: {name} holds values beyond "
                                 f"{self.dtype.name}'s range (up to "
                                 f"{float(np.abs(value).max()):.3g}), which would be infinite")
            problem = self._value_problem(name, cast)
            if problem is not None:
                raise ValueError(f"layer {self.name!r}: {name} {problem}")
            arrays.append(cast)
        for name, value in zip(names, arrays):
            self.backend.copy_into(self._array(name), value)

    def _value_problem(self, name, value):
        """What is wrong with the finite values ``value`` given for array ``name`` (a
        sentence after the name), or None: a layer whose arrays have a range (a variance is
        never negative) refuses values outside it."""
        return None

    # -- computing ----------------------------------------------------------------------
    def forward(self, x, training=False, step=0):
        """``(n, *input_shape) -> (n, *output_shape)`` on the layer's backend. ``training``
        switches on dropout and noise; ``step`` numbers the update (their Philox step). An
        unbuilt layer builds itself from the first batch it sees."""
        raise NotImplementedError

    def backward(self, grad_y, need_input_gradient=True):
        """dL/dy -> dL/dx (None when not needed), filling ``grads`` with dL/dparameters.
        Uses what the last ``forward`` kept."""
        raise NotImplementedError

    def __call__(self, x, training=False, step=0):
        """Forward a NumPy batch: builds the layer from ``x.shape[1:]`` (backend ``auto``,
        seed 0) on first use; returns a NumPy array. On a symbolic tensor of
        :func:`dlcore.Input` (or a list of them), a node of a functional model's graph instead
        (:mod:`dlcore.functional`)."""
        from dlcore.functional import call_layer, is_symbolic, refuse_keras_tensors
        if is_symbolic(x):
            return call_layer(self, x)
        refuse_keras_tensors(f"layer {self.name or type(self).__name__!r}", x)
        x = np.asarray(x)
        if not self.built:
            self.build(x.shape[1:], dtype=self._own_type(x))
        y = self.forward(self.backend.asarray(x, dtype=self.dtype), training=training,
                         step=step)
        return np.array(self.backend.to_numpy(y))

    # -- helpers for subclasses ---------------------------------------------------------
    def _check_built(self):
        if not self.built:
            raise RuntimeError(f"layer {self.name or type(self).__name__} is not built yet: "
                               "add it to a network with an input shape, or call "
                               "layer.build(input_shape)")

    def _own_type(self, x):
        """The type a layer built on its own computes batch ``x`` in: its ``dtype=``, else
        float64 for float64 data, float32 for any other."""
        return self.float_type or (np.float64 if x.dtype == np.float64 else np.float32)

    def tell_overruled_dtype(self):
        """Warn once, in one line, where the model's one type overrules the layer's ``dtype=``
        (at its first forward pass in that type: a model is built in float32 before any
        ``model.build(dtype=np.float64)``). The models call it before each forward pass."""
        if self.float_type is None or not self.built or self.dtype == self.float_type \
                or getattr(self, "_overruled_dtype_told", None) == self.dtype:
            return
        self._overruled_dtype_told = self.dtype
        warnings.warn(f"layer {self.name!r}: dtype={self.float_type.name!r} is not this "
                      f"model's {self.dtype.name} (dlcore computes a model in one type), so it "
                      f"computes in {self.dtype.name}: leave dtype= out, or build the model in "
                      f"{self.float_type.name}", UserWarning,
                      stacklevel=stacklevel_outside_dlcore())

    def _prepare(self, x):
        """Before a forward pass: build an unbuilt layer from the batch (``x.shape[1:]``, the
        ``auto`` backend, its ``dtype=``, else float64 for float64 data, else float32), then
        check the shape."""
        if not self.built:
            self.build(x.shape[1:], dtype=self._own_type(x))
        self._check_input(x)

    def _check_input(self, x):
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"layer {self.name!r} expects inputs of shape (n, "
                             f"{', '.join(map(str, self.input_shape))}); got {tuple(x.shape)}")

    def _buffer(self, key, shape, dtype=None):
        """A reusable array of ``shape`` (a view of a flat allocation that only ever grows):
        the layer's outputs, gradients and workspace, allocated once per batch size."""
        workspace = self._workspace
        # the same view again for the same request (a layer asks for its buffers at every
        # batch, where making the view cost ~1 us)
        view_key = (key, tuple(shape), dtype)
        view = workspace.get(view_key)
        if view is not None:
            return view
        dtype = self.dtype if dtype is None else np.dtype(dtype)
        size = math.prod(shape)
        flat = workspace.get(key)
        if flat is None or flat.shape[0] < size or flat.dtype != dtype:
            flat = self.backend.empty((max(size, 1),), dtype=dtype)
            for stale in [name for name in workspace if isinstance(name, tuple)]:
                del workspace[stale]   # views of the array this one replaces
            workspace[key] = flat
        view = workspace[view_key] = flat[:size].reshape(tuple(shape))
        return view


class WeightedLayer(Layer):
    """A layer with a kernel, an optional bias and an ``activation=`` shortcut (Dense, Conv2D).

    The activation is applied in the same kernel pass as the bias, except for those whose
    derivative needs the pre-activations z (gelu, silu, mish, hard_silu): the kernel writes z,
    kept for the backward pass, and the activation runs as a pass of its own. A network that
    fuses its loss with a final softmax or sigmoid asks for the pre-activations instead
    (``apply_activation=False`` in forward and backward). Its parameters below are those
    Dense, Conv2D and the other weighted layers share.

    Parameters
    ----------
    activation : None (linear) or one of :data:`ACTIVATION_NAMES` (Keras's names: "relu",
        "sigmoid", "tanh", "softmax", "gelu", "silu", ...)
    use_bias : bool
    kernel_initializer : "glorot_uniform" (default), "glorot_normal", "he_uniform",
        "he_normal", "zeros", "ones", or a NumPy array of the kernel's shape (initial weights
        given by the caller, e.g. a DBN's RBM weights)
    bias_initializer : "zeros" (default), another name, or an array of shape (units,)
    kernel_regularizer, bias_regularizer : None, "l1", "l2" (Keras's l1(0.01), l2(0.01)) or a
        :mod:`dlcore.regularizers` object (weight decay)
    kernel_constraint : None, "max_norm" or :class:`dlcore.regularizers.MaxNorm`
    activity_regularizer : None, "l1", "l2" or a :mod:`dlcore.regularizers` object: a penalty
        on the layer's outputs h (after its activation), lecture "Convolutional neural networks"
        (2016), "Sparse representations": an L1 penalty on the hidden representation makes it
        sparse. As in Keras 3, each sample's Omega(h) is averaged over the batch and added to
        the loss (``fit``, ``evaluate`` and the reported loss), and its gradient
        (l1 sign(h) + l2 h) / n to dL/dh. Not the RBMs' and the autoencoder's
        ``sparsity_target``, which pulls each unit's mean activation towards a target rate
        (a KL penalty on the batch mean); this penalises every output of every sample.
    kernel_noise : float >= 0 or None, the standard deviation sigma of noise on the weights
        (not in Keras): lecture "Convolutional neural networks" (2016), slide "Injecting noise"
        (Sietsma and Dow, 1991): "Inject random noise during training separately in each
        epoch. Can be applied to input data, to hidden activations, or to weights" (the first
        two are :class:`dlcore.layers.GaussianNoise`). While training, every update computes
        the layer with kernel + sigma z, z ~ N(0, 1) drawn afresh from the layer's Philox key
        (stream ``STREAM_WEIGHT_NOISE``, step the update: the same noise on every backend),
        and back-propagates through that noisy kernel, whose gradient is the kernel's; the
        bias is left as it is, and ``predict`` and ``evaluate`` use the kernel itself
    bias_constraint : None only: Keras' signature has it (lecture "Deep learning I" lists
        Dense's parameters); dlcore constrains kernels only, so any other value is refused in
        one line
    trainable : bool, False freezes the layer (see :class:`Layer`)
    name, input_shape, dtype : see :class:`Layer`
    """

    #: {weight name: the optimiser's step straight from that weight's gradient product}, set
    #: by the training loop for the backward pass of one update only
    #: (:meth:`dlcore.training.TrainingLoop._train_step`); empty otherwise, and never mutated
    product_steps = {}

    def __init__(self, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 kernel_constraint=None, name=None, input_shape=None, activity_regularizer=None,
                 bias_constraint=None, trainable=True, kernel_noise=None, dtype=None):
        from dlcore import regularizers
        if bias_constraint is not None:
            raise ValueError(f"bias_constraint={bias_constraint!r}: dlcore constrains kernels "
                             f"only (kernel_constraint='max_norm')")
        super().__init__(name=name, input_shape=input_shape, trainable=trainable,
                         dtype=dtype)
        self.activation = check_activation(activation)
        if not isinstance(use_bias, (bool, np.bool_)):
            raise ValueError(f"use_bias must be True or False, got {use_bias!r}")
        self.use_bias = bool(use_bias)
        self.weight_names = ("kernel", "bias") if self.use_bias else ("kernel",)
        self.kernel_initializer = initializers.check_initializer(kernel_initializer,
                                                                 "kernel_initializer")
        self.bias_initializer = initializers.check_initializer(bias_initializer,
                                                               "bias_initializer")
        self.kernel_regularizer = regularizers.get_regularizer(kernel_regularizer,
                                                               "kernel_regularizer")
        self.bias_regularizer = regularizers.get_regularizer(bias_regularizer,
                                                             "bias_regularizer")
        self.activity_regularizer = regularizers.get_regularizer(activity_regularizer,
                                                                 "activity_regularizer")
        self.kernel_noise = None if kernel_noise is None else \
            check_float(kernel_noise, "kernel_noise", low=0.0)
        self.kernel_constraint = regularizers.get_constraint(kernel_constraint)
        if self.kernel_constraint is not None:
            self.kernel_constraint.check_axis(type(self).__name__)

    def _weighted_config(self):
        from dlcore.regularizers import serialize
        return {"activation": self.activation, "use_bias": self.use_bias,
                "kernel_initializer": initializers.config_name(self.kernel_initializer),
                "bias_initializer": initializers.config_name(self.bias_initializer),
                "kernel_regularizer": serialize(self.kernel_regularizer),
                "bias_regularizer": serialize(self.bias_regularizer),
                "kernel_constraint": serialize(self.kernel_constraint),
                **({} if self.activity_regularizer is None else
                   {"activity_regularizer": serialize(self.activity_regularizer)}),
                **({} if not self.kernel_noise else {"kernel_noise": self.kernel_noise})}

    def _draw_weights(self, kernel_shape, fan_in, fan_out, seed):
        weights = {"kernel": initializers.initial_values(
            self.kernel_initializer, kernel_shape, fan_in, fan_out, seed, what="kernel")}
        if self.use_bias:
            weights["bias"] = initializers.initial_values(
                self.bias_initializer, (kernel_shape[self._units_axis],), fan_in, fan_out,
                seed, what="bias")
        return weights

    def regularizers(self):
        """parameter name -> regularizer, for the parameters that have one."""
        found = {"kernel": self.kernel_regularizer, "bias": self.bias_regularizer}
        return {name: found[name] for name in self.weight_names if found[name] is not None}

    def constraints(self):
        """parameter name -> (constraint, units layout) for the optimiser."""
        if self.kernel_constraint is None:
            return {}
        return {"kernel": (self.kernel_constraint, self._units_axis)}

    def _forward_kernel(self, training, step):
        """The kernel this forward pass computes with, kept for its backward pass: the kernel
        itself, or while training with ``kernel_noise`` sigma, kernel + sigma z (fresh z each
        update, see the class docstring)."""
        kernel = self.params["kernel"]
        if self.kernel_noise and draws_noise(training):
            from .augmentation import add_gaussian_noise
            noisy = self._buffer("noisy_kernel", kernel.shape)
            rows = kernel.shape[0]
            add_gaussian_noise(self.backend, kernel.reshape(rows, -1), noisy.reshape(rows, -1),
                               self.kernel_noise, self.seed_, STREAM_WEIGHT_NOISE, step)
            kernel = noisy
        self._used_kernel = kernel
        return kernel

    def _kernel_step(self):
        """The optimiser's step from the kernel's gradient product (see
        :attr:`product_steps`), or None where the backward pass ran on a noisy kernel: the
        step computes dL/dx from the kernel itself."""
        if self._used_kernel is not self.params["kernel"]:
            return None
        return self.product_steps.get("kernel")

    def add_activity_penalty(self, row_loss):
        """``row_loss`` (n,) += each sample's activity penalty Omega(h) of the outputs of the
        last forward pass (nothing without an ``activity_regularizer``)."""
        if self.activity_regularizer is not None:
            self.ops.activity_penalty(self._y, self.activity_regularizer.l1,
                                      self.activity_regularizer.l2, row_loss)

    def _with_activity_gradient(self, grad_y, apply_activation):
        """dL/dh plus the activity penalty's gradient (l1 sign(h) + l2 h) / n, in a buffer of
        the layer's own (``grad_y`` is the caller's); ``grad_y`` itself without a penalty."""
        if self.activity_regularizer is None:
            return grad_y
        if not apply_activation and self.activation != "linear":
            # a network never fuses such a layer into its loss (see penalises_outputs)
            raise RuntimeError(f"layer {self.name!r}: its activity penalty is on its "
                               f"activations, which a backward pass without them has not")
        out = self._buffer("grad_with_activity", grad_y.shape)
        regularizer = self.activity_regularizer
        self.ops.activity_gradient(self._y, grad_y, regularizer.l1, regularizer.l2,
                                   1.0 / grad_y.shape[0], out)
        return out

    def weight_count(self):
        return int(np.prod(self.params["kernel"].shape)) if self.built else 0

    def bias_count(self):
        return int(self.params["bias"].shape[0]) if self.built and self.use_bias else 0

    def _activation_for(self, apply_activation):
        """The activation the layer's kernel applies: linear where the network fuses it into
        its loss, or where it needs z and runs on its own (:meth:`_activate`)."""
        if not apply_activation or self.activation in NEEDS_PREACTIVATION:
            return "linear"
        return self.activation

    def _kernel_output(self, shape, apply_activation):
        """The buffer the kernel writes: the output y, or z where :meth:`_activate` follows."""
        own_pass = apply_activation and self.activation in NEEDS_PREACTIVATION
        return self._buffer("before_activation" if own_pass else "output", shape)

    def _activate(self, z, apply_activation):
        """y from the kernel's result z: z itself, or activation(z) for an activation whose
        derivative needs z (z is kept for :meth:`_activation_gradient`)."""
        if not apply_activation or self.activation not in NEEDS_PREACTIVATION:
            return z
        self._z = z
        y = self._buffer("output", z.shape)
        self.ops.activation_forward(self.activation, z, y)
        return y

    def _activation_gradient(self, grad_y, apply_activation):
        """dL/dz for the kernel's backward pass: dL/dy itself, or dL/dy activation'(z) where
        the activation ran on its own."""
        if not apply_activation or self.activation not in NEEDS_PREACTIVATION:
            return grad_y
        grad_z = self._buffer("grad_before_activation", grad_y.shape)
        self.ops.activation_input_backward(self.activation, self._z, grad_y, grad_z)
        return grad_z

    def _bias(self):
        """The bias, or zeros for ``use_bias=False`` (the kernels always add one)."""
        if self.use_bias:
            return self.params["bias"]
        units = self.params["kernel"].shape[self._units_axis]
        zeros = self._workspace.get("zero_bias")
        if zeros is None:
            zeros = self._workspace["zero_bias"] = self.backend.zeros((units,), self.dtype)
        return zeros

    def _bias_gradient(self):
        if self.use_bias:
            return self.grads["bias"]
        return self._buffer("unused_bias_gradient", (self.params["kernel"].shape[
            self._units_axis],))


def refuse_kernel_constraint(layer_kind, kernel_constraint):
    """ValueError in one line for a ``kernel_constraint`` (Keras's argument, which Keras 3's
    Conv2DTranspose and tf.keras 2's LocallyConnected2D take) on a ``layer_kind`` layer, whose
    units' incoming weights dlcore's max-norm does not bound; None passes."""
    if kernel_constraint is not None:
        raise ValueError(f"kernel_constraint={kernel_constraint!r:.60}: dlcore's max-norm bounds "
                         f"the kernels of Dense and Conv2D only, not a {layer_kind}'s; leave it "
                         f"out (or use a Conv2D)")


class WindowedLayer(WeightedLayer):
    """A weighted layer that slides a window over (C, H, W) maps (Conv2D, Conv2DTranspose,
    LocallyConnected2D): its two passes are the backend's ``<operation>_forward`` and
    ``<operation>_backward``, which take the layer's :class:`Window` besides what a Dense
    layer's take. The subclass names ``operation`` and builds ``self.window``."""

    #: the stem of the layer's two backend operations ("conv2d": conv2d_forward, ...)
    operation = ""

    def _forward_options(self, training):
        """Keyword arguments of the forward operation beyond the shared ones."""
        return {}

    def forward(self, x, training=False, step=0, apply_activation=True):
        self._prepare(x)
        z = self._kernel_output((x.shape[0],) + self.output_shape, apply_activation)
        forward = getattr(self.ops, f"{self.operation}_forward")
        forward(x, self._forward_kernel(training, step), self._bias(), self.window,
                self._activation_for(apply_activation), z, self._buffer,
                **self._forward_options(training))
        self._x, self._y = x, self._activate(z, apply_activation)
        return self._y

    def backward(self, grad_y, need_input_gradient=True, apply_activation=True):
        grad_y = self._with_activity_gradient(grad_y, apply_activation)
        grad_x = self._buffer("grad_input", (grad_y.shape[0],) + self.input_shape) \
            if need_input_gradient else None
        grad_y = self._activation_gradient(grad_y, apply_activation)
        backward = getattr(self.ops, f"{self.operation}_backward")
        backward(self._x, self._used_kernel, self._y, grad_y, self.window,
                 self._activation_for(apply_activation), self.grads["kernel"],
                 self._bias_gradient(), grad_x, self._buffer)
        return grad_x
