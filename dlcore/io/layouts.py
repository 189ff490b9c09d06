"""What dlcore's own model classes expect in a file, checked before anything is read or built.

For each class this module knows (``BernoulliRBM``, ``GaussianBernoulliRBM``, ``DBN``,
``Sequential``, ``Model``, ``Autoencoder``, ``StackedAutoencoder``) a *layout check* validates
the type and range of every hyperparameter the loader relies on (integers are integers in
range, names come from allow-lists, lists have bounded length) and then checks the declared
shape and dtype of every dataset against the shape those hyperparameters imply, without reading
a byte of array data. Only then does :func:`dlcore.io.hdf5.load` read the arrays and build the
model, so a file cannot make dlcore allocate more than its own configuration and contents
justify.

The knowledge of the layouts stays here, beside the reader, rather than in the model classes;
docs/hdf5-format.md describes the same layouts for readers.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np

from dlcore.io.guarded import ModelFileReader
from dlcore.validation import MAX_MODEL_NAME, MAX_TEMPERATURES

#: The largest size (units, filters, visible units, ...) a hyperparameter may give.
MAX_SIZE = 2**31 - 1
#: Counters (updates, epochs, sample calls) stay below this.
MAX_COUNTER = 2**62
#: The most layers (of a network) or RBMs (of a DBN) a file may describe: as many as a Keras
#: model imports with (dlcore.io.keras.MAX_KERAS_LAYERS), so that an imported model can be
#: saved and read back (ResNet152V2 has 566 layers); dlcore.save refuses more before writing.
MAX_LAYERS = 4_000
#: A per-sample input or activation may have at most this many elements (a 4096x4096 RGB image
#: has 50 million); more would make predict allocate without bound.
MAX_SAMPLE_ELEMENTS = 2**26
#: The largest kernel, stride, pool window, padding or shift a layer may give: far beyond
#: any image the sample limit admits, and small enough that fitting a window stays cheap.
MAX_WINDOW = 2**16
#: The most units (Dense) or filters (Conv2D) a layer may give.
MAX_UNITS = 2**24
#: Integer entries of a layer's config (a number or a list of numbers) -> their upper bound,
#: checked before the layer is built so that a hostile value never reaches the layer code.
LAYER_INTEGER_LIMITS = {"units": MAX_UNITS, "filters": MAX_UNITS,
                        "kernel_size": MAX_WINDOW, "stride": MAX_WINDOW,
                        "pool_size": MAX_WINDOW, "padding": MAX_WINDOW, "size": MAX_WINDOW,
                        "max_shift": MAX_WINDOW, "input_shape": MAX_SAMPLE_ELEMENTS}
BACKENDS = ("auto", "cpu", "cuda", "reference")
#: The most weights the layers of an interrupted greedy pretraining that a file does not store
#: (a DBN's RBMs, a stack's autoencoders not reached yet) may declare in all: ``resume`` builds
#: them from their sizes alone, so the file's own size does not bound them. As many as a Keras
#: model built from JSON alone (dlcore.io.keras.MAX_PARAMETERS): 512 MiB of float32, 16 times
#: the RBMs of 784-4096-4096-4096.
MAX_UNSTORED_WEIGHTS = 2**27
CONFIG_FIX = "the hyperparameters were edited or damaged: save the model again"


class ConfigChecker:
    """Type and range checks of one JSON hyperparameter object, with messages that name it.

    Parameters
    ----------
    reader : the file's ModelFileReader (for the messages)
    config : the parsed JSON object
    label : how messages name it, e.g. ``"hyperparameters"``
    """

    def __init__(self, reader: ModelFileReader, config: Any, label: str):
        self.reader, self.label = reader, label
        if not isinstance(config, dict):
            raise self.fail(f"should be a JSON object; found {type(config).__name__}")
        self.config = config

    def fail(self, problem: str):
        return self.reader.error(f"{self.label} {problem}", CONFIG_FIX)

    def require(self, key: str) -> Any:
        if key not in self.config:
            raise self.fail(f"lack '{key}'")
        return self.config[key]

    def integer(self, key: str, low: int = 0, high: int = MAX_SIZE,
                required: bool = False) -> int | None:
        """An int in [low, high] (bools refused), or None when absent and not required."""
        if key not in self.config and not required:
            return None
        value = self.require(key)
        return self.integer_value(value, f"'{key}'", low, high)

    def integer_value(self, value: Any, what: str, low: int = 0, high: int = MAX_SIZE) -> int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) \
                or not low <= value <= high:
            raise self.fail(f"give {what} = {value!r:.60}; expected an integer in "
                            f"[{low}, {high}]")
        return int(value)

    def boolean(self, key: str, allow_none: bool = False) -> None:
        value = self.config.get(key, False)
        if not isinstance(value, bool) and not (allow_none and value is None):
            raise self.fail(f"give '{key}' = {value!r:.60}; expected true or false"
                            + (" or null" if allow_none else ""))

    def choice(self, key: str, choices: tuple, allow_none: bool = False) -> Any:
        value = self.config.get(key)
        if key not in self.config or (allow_none and value is None):
            return value
        if not isinstance(value, str) or value.lower() not in choices:
            raise self.fail(f"give '{key}' = {value!r:.60}; expected one of "
                            f"{', '.join(choices)}")
        return value.lower()

    def string(self, key: str, max_length: int = 256, allow_none: bool = True) -> None:
        value = self.config.get(key)
        if value is None and allow_none:
            return
        if not isinstance(value, str) or len(value) > max_length:
            raise self.fail(f"give '{key}' = {value!r:.60}; expected a string of at most "
                            f"{max_length} characters")

    def seed(self, key: str = "seed") -> None:
        """None, an int in [0, 2**64), or that int as decimal text."""
        value = self.config.get(key)
        if value is not None and not is_seed(value):
            raise self.fail(f"give '{key}' = {value!r:.60}; expected a non-negative integer "
                            f"below 2**64")


def is_seed(value: Any) -> bool:
    """Whether ``value`` is a seed as dlcore stores one: an int in [0, 2**64), or that int as
    decimal text (HDF5 attributes and JSON readers do not all hold 64-bit unsigned ints)."""
    if isinstance(value, str):
        return value.isascii() and value.isdigit() and len(value) <= 20 and \
            int(value) < 2**64
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and \
        0 <= value < 2**64


def check_counters(reader: ModelFileReader, group_path: str, seed: str = "seed",
                   counters: tuple = ()) -> None:
    """The attributes of a ``training`` group: the seed (see :func:`is_seed`) and
    non-negative counters."""
    group = reader.group(group_path)
    value = reader.attribute(group, seed, group_path)
    if not is_seed(value):
        raise reader.error(f"attribute '{seed}' of '{group_path}' is {value!r:.60}; expected "
                           f"a non-negative integer below 2**64 as decimal text")
    for name in counters:
        count = reader.attribute(group, name, group_path)
        if isinstance(count, bool) or not isinstance(count, int) or \
                not 0 <= count < MAX_COUNTER:
            raise reader.error(f"attribute '{name}' of '{group_path}' is {count!r:.60}; "
                               f"expected a non-negative integer")


# --------------------------------------------------------------------------------------------
# RBMs
# --------------------------------------------------------------------------------------------
RBM_COUNTERS = ("n_updates", "epochs_done", "sample_calls")
RBM_TRAINING_ARRAYS = ("velocity_W", "velocity_visible_bias", "velocity_hidden_bias",
                       "sparsity_mean")


def check_rbm(reader: ModelFileReader, config: Any, gaussian: bool, prefix: str = "",
              label: str = "the hyperparameters", n_visible: int | None = None,
              n_hidden: int | None = None) -> None:
    """A BernoulliRBM's or GaussianBernoulliRBM's hyperparameters and declared arrays.

    ``prefix`` is the group holding the RBM (``"rbms/rbm_0/"`` inside a DBN); ``n_visible`` and
    ``n_hidden``, when given, are the sizes the enclosing model implies.
    """
    checker = ConfigChecker(reader, config, label)
    hidden = checker.integer("n_hidden", low=1, required=True)
    if n_hidden is not None and hidden != n_hidden:
        raise checker.fail(f"give n_hidden = {hidden}; the DBN's layers imply {n_hidden}")
    batch_size = checker.integer("batch_size", low=1, required=True)
    for key in ("cd_k",):
        checker.integer(key, low=1)
    for key in ("epochs", "n_labels"):
        checker.integer(key)
    for key in ("persistent", "verbose", "learn_sigma"):
        checker.boolean(key)
    checker.boolean("sample_visible", allow_none=gaussian)
    checker.choice("backend", BACKENDS)
    checker.seed()
    W = reader.dataset(f"{prefix}W", (n_visible, hidden))
    visible = W.shape[0]
    if visible < 1:
        raise reader.error(f"dataset '{prefix}W' has shape {W.shape}; it needs at least one "
                           f"visible unit")
    n_labels = config.get("n_labels", 0)
    if n_labels >= visible:
        raise checker.fail(f"give n_labels = {n_labels} for an RBM of {visible} visible units")
    expected = {"visible_bias": (visible,), "hidden_bias": (hidden,),
                "training/velocity_W": (visible, hidden),
                "training/velocity_visible_bias": (visible,),
                "training/velocity_hidden_bias": (hidden,),
                "training/sparsity_mean": (hidden,)}
    if gaussian:
        expected.update({"visible_sigma": (visible,), "training/velocity_log_sigma": (visible,)})
    for path, shape in expected.items():
        reader.dataset(prefix + path, shape)
    rows = check_sampler(checker, batch_size)
    stored = reader.dataset(f"{prefix}training/persistent_chain", (rows, hidden),
                            required=False) is not None
    problem = unstored_chain_problem(rows, hidden, visible, stored)
    if problem is not None:
        raise checker.fail(problem)
    reader.dataset(f"{prefix}training/persistent_chain_unstarted", (rows,), kinds="iub",
                   required=False)
    reader.dataset(f"{prefix}training/fast_W", (visible, hidden), required=False)
    check_counters(reader, f"{prefix}training", counters=RBM_COUNTERS)
    if gaussian:
        sigma = reader.read_dataset(f"{prefix}visible_sigma", (visible,))
        if not (sigma > 0).all():
            raise reader.error(f"dataset '{prefix}visible_sigma' holds values <= 0; a standard "
                               f"deviation is positive")


def check_sampler(checker: ConfigChecker, batch_size: int) -> int:
    """An RBM's sampler hyperparameters (:mod:`dlcore.rbm.chains`); returns the rows of its
    persistent chains."""
    from dlcore.rbm.chains import SAMPLERS, chain_rows
    config = checker.config
    sampler = checker.choice("sampler", SAMPLERS, allow_none=True)
    for key in ("n_chains",):
        if config.get(key) is not None:
            checker.integer(key, low=1)
    checker.integer("n_temperatures", low=2, high=MAX_TEMPERATURES)
    temperatures = config.get("temperatures")
    if isinstance(temperatures, list) and len(temperatures) > MAX_TEMPERATURES:
        raise checker.fail(f"give 'temperatures' with at most {MAX_TEMPERATURES} entries")
    try:
        return chain_rows(sampler, config.get("persistent", False), config.get("n_chains"),
                          batch_size, config.get("n_temperatures", 10), temperatures)
    except ValueError as error:
        raise checker.fail(f"give other sampler settings: {error}") from None


def unstored_chain_problem(rows: int, hidden: int, visible: int = 0,
                           stored: bool = False) -> str | None:
    """What is wrong with persistent chains of ``rows`` x ``hidden`` states that a file
    declares (by an RBM's sampler settings), or None. Unless ``stored``, the next training
    creates them from those sizes alone; stored or not, each of its steps makes ``rows`` x
    ``visible`` visible states of them, which a file of a few weights and a few hidden states
    per chain does not bound. Shared by ``load`` and ``save``."""
    if rows * (hidden + visible) <= MAX_UNSTORED_WEIGHTS:
        return None
    states = (f"{rows} x {hidden} hidden and {rows} x {visible} visible states" if visible
              else f"{rows} x {hidden} states")
    unstored = "" if stored else ", which the file does not store (the next training starts them)"
    return (f"give persistent chains of {states}{unstored}, more than the "
            f"{MAX_UNSTORED_WEIGHTS} that training builds from sizes alone")


def check_bernoulli_rbm(reader: ModelFileReader, config: Any) -> None:
    check_rbm(reader, config, gaussian=False)


def check_gaussian_rbm(reader: ModelFileReader, config: Any) -> None:
    check_rbm(reader, config, gaussian=True)


# --------------------------------------------------------------------------------------------
# DBN
# --------------------------------------------------------------------------------------------
DBN_COUNTERS = ("sample_calls", "up_down_updates", "up_down_epochs_done")


def _stack_sizes(checker: ConfigChecker) -> list[int | None]:
    """A greedy stack's sizes (a DBN's, a stacked autoencoder's), visible first: its
    ``layers``, 2 to MAX_LAYERS + 1 positive sizes (the form of every file written before
    ``hidden`` existed), or ``[None, *hidden]``, the width then the bottom layer's own
    (:mod:`dlcore.layer_stack`)."""
    layers, hidden = checker.config.get("layers"), checker.config.get("hidden")
    if layers is not None and hidden is not None:
        raise checker.fail(f"give layers = {layers!r:.40} or hidden = {hidden!r:.40}, not both")
    if hidden is not None:
        if not isinstance(hidden, list) or not 1 <= len(hidden) <= MAX_LAYERS:
            raise checker.fail(f"give hidden = {hidden!r:.60}; expected a list of 1 to "
                               f"{MAX_LAYERS} sizes")
        return [None, *(checker.integer_value(size, "an entry of 'hidden'", 1)
                        for size in hidden)]
    layers = checker.require("layers")
    if not isinstance(layers, list) or not 2 <= len(layers) <= MAX_LAYERS + 1:
        raise checker.fail(f"give layers = {layers!r:.60}; expected a list of 2 to "
                           f"{MAX_LAYERS + 1} sizes")
    return [checker.integer_value(size, "an entry of 'layers'", 1) for size in layers]


def check_dbn(reader: ModelFileReader, config: Any) -> None:
    """The DBN's hyperparameters, then each RBM's group against ``layers``."""
    checker = ConfigChecker(reader, config, "the hyperparameters")
    sizes = _stack_sizes(checker)
    n_labels = checker.integer("n_labels") or 0
    for key in ("up_down_epochs", "up_down_gibbs_steps", "up_down_batch_size"):
        checker.integer(key)
    checker.boolean("verbose")
    visible = checker.choice("visible", ("bernoulli", "gaussian")) or "bernoulli"
    checker.choice("propagate", ("mean", "sample"))
    checker.choice("backend", BACKENDS)
    checker.seed()
    # the rbm= settings of the RBMs an interrupted pretraining had not reached are all the
    # file holds of them: their ladder is built from n_temperatures alone
    settings = config.get("rbm")
    for index, rbm in enumerate(settings if isinstance(settings, list) else [settings]):
        if isinstance(rbm, dict):
            where = (f"the hyperparameters' rbm[{index}]" if isinstance(settings, list)
                     else "the hyperparameters' rbm")
            ConfigChecker(reader, rbm, where).integer("n_temperatures", low=2,
                                                      high=MAX_TEMPERATURES)
    n_rbms = len(sizes) - 1
    reader.group("rbms")
    started = _rbms_started(reader, n_rbms)
    for index in range(started):
        path = f"rbms/rbm_{index}"
        group = reader.group(path)
        expected_class = ("GaussianBernoulliRBM" if index == 0 and visible == "gaussian"
                          else "BernoulliRBM")
        class_name = reader.attribute(group, "model_class", path)
        if class_name != expected_class:
            raise reader.error(f"attribute 'model_class' of '{path}' is {class_name!r:.60}; "
                               f"expected {expected_class!r}")
        inner = reader.json_attribute(group, "hyperparameters", path)
        labels = n_labels if n_labels and index == n_rbms - 1 else 0
        check_rbm(reader, inner, gaussian=expected_class == "GaussianBernoulliRBM",
                  prefix=f"{path}/", label=f"the hyperparameters of '{path}'",
                  n_visible=None if sizes[index] is None else sizes[index] + labels,
                  n_hidden=sizes[index + 1])
        if sizes[index] is None:   # given hidden: the width is the bottom RBM's
            sizes[index] = reader.dataset(f"{path}/W", (None, None)).shape[0] - labels
    check_unstored_layers(reader, sizes, started, n_labels, "DBN")
    if reader.group("generative", required=False) is not None:
        for index in range(n_rbms - 1):
            reader.dataset(f"generative/layer_{index}/W", (sizes[index], sizes[index + 1]))
            reader.dataset(f"generative/layer_{index}/visible_bias", (sizes[index],))
    check_counters(reader, "training", counters=DBN_COUNTERS)
    _check_dbn_classes(reader, n_labels)


def _check_dbn_classes(reader: ModelFileReader, n_labels: int) -> None:
    """The root attribute ``classes`` of a DBN with label units (optional: files written
    before it existed mean 0..n_labels-1): a JSON list of n_labels distinct numbers or
    strings, sorted; absent without label units."""
    from dlcore.dbn.dbn import classes_from_list
    classes = reader.json_attribute(reader.file, "classes", "/", default=None, limit_depth=1)
    if classes is None:
        return
    if not n_labels:
        raise reader.error("the 'classes' attribute is there, but the DBN has no label units "
                           "(n_labels = 0)")
    try:
        classes_from_list(classes, n_labels)
    except ValueError as error:
        raise reader.error(f"the 'classes' attribute {error}") from None


def unstored_weights(sizes: list[int], started: int, n_labels: int = 0) -> tuple[int, int]:
    """The weights of the layers of a greedy stack (``sizes``, visible first) that an
    interrupted pretraining had not reached (those from ``started`` on), which a file holds
    the sizes of only; ``n_labels`` label units join the top layer's inputs (a DBN's).
    Returns ``(weights in all, index of the largest layer)``."""
    weights = [(sizes[index] + (n_labels if index == len(sizes) - 2 else 0))
               * sizes[index + 1] for index in range(started, len(sizes) - 1)]
    if not weights:
        return 0, started
    return sum(weights), started + weights.index(max(weights))


#: A greedy stack's class -> what its layers are called.
STACK_LAYERS = {"DBN": "RBM", "StackedAutoencoder": "autoencoder"}


def unstored_layers_problem(sizes: list[int], started: int, n_labels: int,
                            class_name: str) -> str | None:
    """What is wrong with a greedy stack (a ``class_name`` of STACK_LAYERS) whose layers not
    reached by its interrupted pretraining declare more than MAX_UNSTORED_WEIGHTS weights, or
    None. Shared by ``load`` and ``save``, which must agree."""
    layer = STACK_LAYERS[class_name]
    weights, largest = unstored_weights(sizes, started, n_labels)
    if weights <= MAX_UNSTORED_WEIGHTS:
        return None
    inputs = sizes[largest] + (n_labels if largest == len(sizes) - 2 else 0)
    return (f"the {class_name}'s {layer}s not reached by its interrupted pretraining declare "
            f"{weights} weights in all ({layer} {largest + 1}: {inputs} x "
            f"{sizes[largest + 1]}), more than the {MAX_UNSTORED_WEIGHTS} that resume builds "
            f"from sizes alone")


def check_unstored_layers(reader: ModelFileReader, sizes: list[int], started: int,
                          n_labels: int, class_name: str) -> None:
    """Refuse a file whose layers not stored (see :func:`unstored_layers_problem`) would
    make ``resume`` allocate what the file's contents do not justify."""
    problem = unstored_layers_problem(sizes, started, n_labels, class_name)
    if problem is not None:
        raise reader.error(problem)


def _rbms_started(reader: ModelFileReader, n_rbms: int) -> int:
    """How many RBMs the file stores: ``training/rbms_started`` when a pretraining was
    interrupted before reaching every RBM (only those are saved), all of them otherwise."""
    training = reader.group("training")
    started = reader.attribute(training, "rbms_started", "training", default=n_rbms)
    if isinstance(started, bool) or not isinstance(started, int) or \
            not 1 <= started <= n_rbms:
        raise reader.error(f"attribute 'rbms_started' of 'training' is {started!r:.60}; "
                           f"expected an integer in [1, {n_rbms}]")
    return started


# --------------------------------------------------------------------------------------------
# Autoencoders
# --------------------------------------------------------------------------------------------
AUTOENCODER_COUNTERS = ("n_updates", "epochs_done")
AUTOENCODER_CHOICES = {"corruption_kind": ("masking", "salt_and_pepper", "gaussian",
                                           "dropout"),
                       "activation": ("sigmoid", "tanh", "relu", "linear"),
                       "decoder_activation": ("sigmoid", "linear"),
                       "loss": ("cross_entropy", "mse")}


def check_autoencoder(reader: ModelFileReader, config: Any, prefix: str = "",
                      label: str = "the hyperparameters", n_visible: int | None = None,
                      n_hidden: int | None = None) -> None:
    """An Autoencoder's hyperparameters and declared arrays (``prefix``: the group holding
    it, ``"autoencoders/ae_0/"`` inside a stack, whose ``layers`` imply ``n_visible`` and
    ``n_hidden``). The real-valued hyperparameters are checked by ``from_config``."""
    checker = ConfigChecker(reader, config, label)
    hidden = checker.integer("n_hidden", low=1, required=True)
    if n_hidden is not None and hidden != n_hidden:
        raise checker.fail(f"give n_hidden = {hidden}; the stack's layers imply {n_hidden}")
    checker.integer("batch_size", low=1, required=True)
    checker.integer("epochs")
    for key in ("tied_weights", "verbose"):
        checker.boolean(key)
    for key, choices in AUTOENCODER_CHOICES.items():
        checker.choice(key, choices)
    checker.choice("backend", BACKENDS)
    checker.seed()
    W = reader.dataset(f"{prefix}W", (n_visible, hidden))
    visible = W.shape[0]
    if visible < 1:
        raise reader.error(f"dataset '{prefix}W' has shape {W.shape}; it needs at least one "
                           f"visible unit")
    shapes = {"W": (visible, hidden), "hidden_bias": (hidden,), "visible_bias": (visible,)}
    if not config.get("tied_weights", True):
        shapes["W_decoder"] = (hidden, visible)
    for name, shape in shapes.items():
        reader.dataset(prefix + name, shape)
        reader.dataset(f"{prefix}training/velocity_{name}", shape)
    check_counters(reader, f"{prefix}training", counters=AUTOENCODER_COUNTERS)


def check_stacked_autoencoder(reader: ModelFileReader, config: Any) -> None:
    """The stack's ``layers``, then each autoencoder's group against them."""
    checker = ConfigChecker(reader, config, "the hyperparameters")
    sizes = _stack_sizes(checker)
    checker.boolean("verbose")
    checker.choice("backend", BACKENDS)
    checker.seed()
    n_layers = len(sizes) - 1
    reader.group("autoencoders")
    training = reader.group("training")
    started = reader.attribute(training, "layers_started", "training", default=n_layers)
    if isinstance(started, bool) or not isinstance(started, int) or \
            not 1 <= started <= n_layers:
        raise reader.error(f"attribute 'layers_started' of 'training' is {started!r:.60}; "
                           f"expected an integer in [1, {n_layers}]")
    for index in range(started):
        path = f"autoencoders/ae_{index}"
        group = reader.group(path)
        class_name = reader.attribute(group, "model_class", path)
        if class_name != "Autoencoder":
            raise reader.error(f"attribute 'model_class' of '{path}' is {class_name!r:.60}; "
                               f"expected 'Autoencoder'")
        inner = reader.json_attribute(group, "hyperparameters", path)
        check_autoencoder(reader, inner, prefix=f"{path}/",
                          label=f"the hyperparameters of '{path}'", n_visible=sizes[index],
                          n_hidden=sizes[index + 1])
        if sizes[index] is None:   # given hidden: the width is the bottom autoencoder's
            sizes[index] = reader.dataset(f"{path}/W", (None, None)).shape[0]
    check_unstored_layers(reader, sizes, started, 0, "StackedAutoencoder")
    check_counters(reader, "training")


# --------------------------------------------------------------------------------------------
# Sequential networks
# --------------------------------------------------------------------------------------------
NETWORK_COUNTERS = ("epochs_done", "n_updates")


def check_sequential(reader: ModelFileReader, config: Any) -> None:
    """The architecture (layer classes from dlcore's registry only), the per-sample shapes it
    implies, and every kernel, bias and optimiser slot against them."""
    checker = ConfigChecker(reader, config, "the hyperparameters")
    checker.string("name", MAX_MODEL_NAME)
    checker.choice("backend", BACKENDS)
    checker.seed()
    shape = _declared_shape(checker, checker.require("input_shape"), "input_shape",
                            "the input")
    entries = checker.require("layers")
    if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_LAYERS:
        raise checker.fail(f"give layers = {entries!r:.60}; expected a list of 1 to "
                           f"{MAX_LAYERS} layers")
    expected: dict[str, tuple] = {}
    for index, entry in enumerate(entries):
        where = f"layer {index}"
        layer = _layer_of_entry(checker, entry, where)
        try:
            output = tuple(layer.compute_output_shape(shape))
        except (ValueError, TypeError, KeyError, ArithmeticError) as error:
            raise checker.fail(f"give {where} ({entry['class_name']}) a config it rejects: "
                               f"{str(error)[:200]}") from None
        _check_sample_size(checker, output, f"the output of {where}")
        for weight, weight_shape in _weight_shapes(layer, shape).items():
            expected[f"layers/{layer.name}/{weight}"] = weight_shape
        shape = output
    _check_compile_settings(reader, config)
    _check_weights(reader, expected)
    _check_optimizer_group(reader, expected)
    check_counters(reader, "training", counters=NETWORK_COUNTERS)


def _layer_of_entry(checker, entry, where):
    """The layer a file's ``{"class_name": ..., "config": {...}}`` entry describes, built from
    its config once its class is registered (:func:`dlcore.layers.base.layer_class`: dlcore's
    own, or a class of one's own defined in this session) and its integers are bounded; the
    checker's one-line error otherwise."""
    from dlcore.layers.base import builtin_layer_names, is_builtin, layer_class
    if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
        raise checker.fail(f"describe {where} as {entry!r:.60}; expected "
                           f"{{'class_name': ..., 'config': {{...}}}}")
    class_name = entry.get("class_name")
    if layer_class(class_name) is None:
        raise checker.fail(f"name an unknown layer class {class_name!r:.60} for {where} "
                           f"(dlcore has {', '.join(builtin_layer_names())})")
    _check_layer_integers(checker, entry["config"], where)
    cls = layer_class(class_name)
    try:
        return cls.from_config(dict(entry["config"]))
    except (ValueError, TypeError, KeyError, ArithmeticError) as error:
        problem = f"give {where} ({class_name}) a config it rejects: {str(error)[:200]}"
        if is_builtin(cls):
            raise checker.fail(problem) from None
        # a class of one's own: its get_config, not the file, is the likely culprit
        raise checker.reader.error(f"{checker.label} {problem}",
                                   f"{cls.__name__}.get_config() must return the arguments "
                                   f"its __init__() takes") from None


def _check_layer_integers(checker: ConfigChecker, config: dict, where: str) -> None:
    """Every number in the sizes and window settings of a layer's config is an integer in
    [0, its bound] (see LAYER_INTEGER_LIMITS); text such as padding "same" is the layer's to
    check."""
    for key, limit in LAYER_INTEGER_LIMITS.items():
        values = config.get(key)
        pending = [values]
        while pending:
            value = pending.pop()
            if isinstance(value, list | tuple):
                if len(value) > 8:
                    raise checker.fail(f"give '{key}' of {where} {len(value)} entries; "
                                       f"expected a few")
                pending.extend(value)
            elif isinstance(value, numbers.Number):
                checker.integer_value(value, f"'{key}' of {where}", 0, limit)


def _declared_shape(checker: ConfigChecker, value: Any, what: str,
                    sample: str | None = None) -> tuple:
    """A per-sample shape a config declares (``what`` names it): a list of 1 to 4 positive
    sizes within :data:`MAX_SAMPLE_ELEMENTS` values (``sample`` names them, else ``what``)."""
    if not isinstance(value, list) or not 1 <= len(value) <= 4:
        raise checker.fail(f"give {what} = {value!r:.60}; expected a list of 1 to 4 sizes")
    shape = tuple(checker.integer_value(size, f"an entry of {what}", 1) for size in value)
    _check_sample_size(checker, shape, sample or what)
    return shape


def _check_sample_size(checker: ConfigChecker, shape: tuple, what: str) -> None:
    elements = 1
    for size in shape:
        elements *= size
    if elements > MAX_SAMPLE_ELEMENTS:
        raise checker.fail(f"make {what} {shape} per sample ({elements} values), more than "
                           f"{MAX_SAMPLE_ELEMENTS}")


def _weight_shapes(layer: Any, input_shape: tuple) -> dict[str, tuple]:
    """name -> shape of the arrays (parameters and state) of ``layer`` for per-sample inputs of
    ``input_shape``."""
    from dlcore.layers import (
        BatchNormalization,
        Conv2D,
        Conv2DTranspose,
        Dense,
        LayerNormalization,
        LocallyConnected2D,
    )
    names = tuple(getattr(layer, "array_names", ()))
    if isinstance(layer, (BatchNormalization, LayerNormalization)):
        shapes = dict.fromkeys(("gamma", "beta", "moving_mean", "moving_variance"),
                               (input_shape[0],))
    elif isinstance(layer, Dense):
        shapes = {"kernel": (input_shape[0], layer.units), "bias": (layer.units,)}
    elif isinstance(layer, Conv2D):
        kernel_height, kernel_width = layer.kernel_size
        shapes = {"kernel": (layer.filters, input_shape[0], kernel_height, kernel_width),
                  "bias": (layer.filters,)}
    elif isinstance(layer, LocallyConnected2D):
        kernel_height, kernel_width = layer.kernel_size
        filters, out_height, out_width = layer.compute_output_shape(input_shape)
        shapes = {"kernel": (out_height, out_width, filters, input_shape[0], kernel_height,
                             kernel_width),
                  "bias": (filters, out_height, out_width)}
    elif isinstance(layer, Conv2DTranspose):
        kernel_height, kernel_width = layer.kernel_size
        shapes = {"kernel": (input_shape[0], layer.filters, kernel_height, kernel_width),
                  "bias": (layer.filters,)}
    else:
        shapes = {}
    return {name: shapes[name] for name in names if name in shapes}


def _check_weights(reader: ModelFileReader, weights: dict[str, tuple]) -> None:
    """Every weight of a network (path -> shape) against its shape; where every one is stored
    in float64 (a float64 model's file), values beyond float32's range are read, as the network
    is built in float64 again (:meth:`dlcore.network.Network.set_state`)."""
    datasets = [reader.dataset(path, shape) for path, shape in weights.items()]
    if datasets and all(dataset.dtype == np.float64 for dataset in datasets):
        reader.parameter_type = np.dtype(np.float64)


def _check_optimizer_slots(reader: ModelFileReader, weights: dict[str, tuple]) -> None:
    """Every ``training/optimizer/slots/<layer>/<weight>/<slot>`` has its weight's shape."""
    slots = reader.group("training/optimizer/slots", required=False)
    if slots is None:
        return
    for layer_name in slots:
        for weight_name in reader.group(f"training/optimizer/slots/{layer_name}"):
            weight = f"layers/{layer_name}/{weight_name}"
            slot_group = f"training/optimizer/slots/{layer_name}/{weight_name}"
            if weight not in weights:
                raise reader.error(f"group '{slot_group}' holds optimiser state of a weight "
                                   f"the network does not have")
            for slot in reader.group(slot_group):
                reader.dataset(f"{slot_group}/{slot}", weights[weight])


# --------------------------------------------------------------------------------------------
# Functional models (dlcore.Model): the graph as JSON
# --------------------------------------------------------------------------------------------
#: The most inputs, calls of layers (nodes) and outputs a functional model's file may give.
MAX_GRAPH_INPUTS = 64
MAX_GRAPH_NODES = 4 * MAX_LAYERS
MAX_GRAPH_OUTPUTS = 64


def check_functional(reader: ModelFileReader, config: Any) -> None:
    """The graph of a functional model before anything is built: the inputs and their shapes,
    the layers (dlcore's registry only, sizes bounded), every node naming a layer in range and
    taking only inputs or outputs of earlier nodes (so no cycle and no dangling reference), a
    shared layer called on one shape, the shapes each node implies, and every kernel, bias and
    optimiser slot against them."""
    from dlcore.functional import MAX_NODE_INPUTS, check_nesting

    checker = ConfigChecker(reader, config, "the hyperparameters")
    checker.string("name", MAX_MODEL_NAME)
    if isinstance(config, dict):
        try:   # before anything walks the nested models' graphs
            check_nesting(config)
        except ValueError as error:
            raise reader.error(str(error), CONFIG_FIX) from None
    checker.choice("backend", BACKENDS)
    checker.seed()
    checker.boolean("several_inputs")
    checker.boolean("several_outputs")
    inputs = checker.require("inputs")
    if not isinstance(inputs, list) or not 1 <= len(inputs) <= MAX_GRAPH_INPUTS:
        raise checker.fail(f"give inputs = {inputs!r:.60}; expected a list of 1 to "
                           f"{MAX_GRAPH_INPUTS} inputs")
    shapes: list = []
    for index, entry in enumerate(inputs):
        shape = entry.get("shape") if isinstance(entry, dict) else None
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(shape, list) or not 1 <= len(shape) <= 4 or \
                not (name is None or (isinstance(name, str) and 0 < len(name) <= 256
                                      and "/" not in name)):
            raise checker.fail(f"describe input {index} as {entry!r:.60}; expected "
                               f"{{'name': ..., 'shape': [1 to 4 sizes]}}")
        shape = tuple(checker.integer_value(size, f"an entry of input {index}'s shape", 1)
                      for size in shape)
        _check_sample_size(checker, shape, f"input {index}")
        shapes.append(shape)
    entries = checker.require("layers")
    if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_LAYERS:
        raise checker.fail(f"give layers = {entries!r:.60}; expected a list of 1 to "
                           f"{MAX_LAYERS} layers")
    layers = [_layer_of_entry(checker, entry, f"layer {index}")
              for index, entry in enumerate(entries)]
    names = [layer.name for layer in layers]
    if any(not isinstance(name, str) for name in names) or len(set(names)) != len(names):
        raise checker.fail("name every layer, each name once")
    nodes = checker.require("nodes")
    if not isinstance(nodes, list) or not 1 <= len(nodes) <= MAX_GRAPH_NODES:
        raise checker.fail(f"give nodes = {nodes!r:.60}; expected a list of 1 to "
                           f"{MAX_GRAPH_NODES} layer calls")
    first_call: dict[int, Any] = {}
    expected: dict[str, tuple] = {}
    for index, node in enumerate(nodes):
        where = f"node {index}"
        if not isinstance(node, dict) or not isinstance(node.get("inputs"), list):
            raise checker.fail(f"describe {where} as {node!r:.60}; expected "
                               f"{{'layer': index, 'inputs': [tensor, ...]}}")
        number = checker.integer_value(node.get("layer"), f"the layer of {where}", 0,
                                       len(layers) - 1)
        references = node["inputs"]
        if not 1 <= len(references) <= MAX_NODE_INPUTS:
            raise checker.fail(f"give {where} {len(references)} input tensors; expected 1 to "
                               f"{MAX_NODE_INPUTS}")
        # a node takes inputs or outputs of earlier nodes only: the graph has no cycle
        arguments = [shapes[checker.integer_value(reference, f"an input tensor of {where}", 0,
                                                  len(shapes) - 1)]
                     for reference in references]
        layer = layers[number]
        takes_list = getattr(layer, "takes_list", False)
        if not takes_list and len(arguments) != 1:
            raise checker.fail(f"give {where} ({layer.name}) {len(arguments)} input tensors; "
                               f"it takes one")
        shape = arguments if takes_list else arguments[0]
        if number in first_call and first_call[number] != shape:
            raise checker.fail(f"call the shared layer {layer.name!r} on shapes "
                               f"{first_call[number]} and {shape}")
        try:
            output = tuple(layer.compute_output_shape(shape))
        except (ValueError, TypeError, KeyError, ArithmeticError) as error:
            raise checker.fail(f"give {where} ({layer.name}) inputs it rejects: "
                               f"{str(error)[:200]}") from None
        _check_sample_size(checker, output, f"the output of {where}")
        if number not in first_call:
            first_call[number] = shape
            if not takes_list:
                for weight, weight_shape in _weight_shapes(layer, shape).items():
                    expected[f"layers/{layer.name}/{weight}"] = weight_shape
        shapes.append(output)
    if len(first_call) != len(layers):
        raise checker.fail("list layers that no node calls")
    _check_nested_models(checker, config, layers, first_call)
    outputs = checker.require("outputs")
    if not isinstance(outputs, list) or not 1 <= len(outputs) <= MAX_GRAPH_OUTPUTS:
        raise checker.fail(f"give outputs = {outputs!r:.60}; expected a list of 1 to "
                           f"{MAX_GRAPH_OUTPUTS} tensors")
    for reference in outputs:
        checker.integer_value(reference, "an output tensor", 0, len(shapes) - 1)
    _check_compile_settings(reader, config)
    _check_weights(reader, expected)
    _check_optimizer_group(reader, expected)
    check_counters(reader, "training", counters=NETWORK_COUNTERS)


def _check_nested_models(checker: ConfigChecker, config: dict, layers: list,
                         first_call: dict[int, Any]) -> None:
    """Every model nested in a functional model's config, at any depth, against the graph
    checked before: loading builds each nested model on the input shapes it declares, which
    creates its layers' parameters on them, so each of its layers must be built on the shape
    the graph calls it on (``first_call``: layer number -> its checked input shape). A
    nested model declaring any other shape (a hostile ``input_shape`` of 10**12) is refused
    here, before anything is allocated. :func:`dlcore.functional.check_nesting` has bounded
    the depth and the number of the nested models."""
    from dlcore.functional import MAX_NODE_INPUTS

    def layer_number(value, what):
        return checker.integer_value(value, what, 0, len(layers) - 1)

    def called_on(number, shape, where):
        if shape != first_call[number]:
            raise checker.fail(f"build layer {number} ({layers[number].name}) in {where} on "
                               f"inputs of shape {shape}; the graph calls it on "
                               f"{first_call[number]}")
        return tuple(layers[number].compute_output_shape(shape))

    pending = list(config.get("models", []))
    while pending:
        entry = pending.pop()
        where = f"nested model {entry.get('name')!r:.60}"
        if entry["class_name"] == "Sequential":
            numbers = entry.get("layers")
            if not isinstance(numbers, list) or not 1 <= len(numbers) <= MAX_LAYERS:
                raise checker.fail(f"give {where} layers = {numbers!r:.60}; expected a list of "
                                   f"1 to {MAX_LAYERS} layer numbers")
            numbers = [layer_number(number, f"an entry of {where}") for number in numbers]
            shape = entry.get("input_shape")
            if shape is None:   # Sequential takes its first layer's, if that has one
                shape = getattr(layers[numbers[0]], "input_shape", None)
            if shape is None:   # built only when the graph calls it, on the checked shapes
                continue
            shape = _declared_shape(checker, list(shape) if isinstance(shape, tuple) else shape,
                                    f"the input_shape of {where}")
            for number in numbers:
                shape = called_on(number, shape, where)
            continue
        inputs = entry.get("inputs")
        if not isinstance(inputs, list) or not 1 <= len(inputs) <= MAX_GRAPH_INPUTS:
            raise checker.fail(f"give {where} inputs = {inputs!r:.60}; expected a list of 1 "
                               f"to {MAX_GRAPH_INPUTS} inputs")
        shapes: list = [_declared_shape(checker, spec.get("shape") if isinstance(spec, dict)
                                        else spec, f"the shape of input {index} of {where}")
                        for index, spec in enumerate(inputs)]
        nodes = entry.get("nodes")
        if not isinstance(nodes, list) or not 1 <= len(nodes) <= MAX_GRAPH_NODES:
            raise checker.fail(f"give {where} nodes = {nodes!r:.60}; expected a list of 1 to "
                               f"{MAX_GRAPH_NODES} layer calls")
        for index, node in enumerate(nodes):
            references = node.get("inputs") if isinstance(node, dict) else None
            if not isinstance(references, list) or not 1 <= len(references) <= \
                    MAX_NODE_INPUTS:
                raise checker.fail(f"describe node {index} of {where} as {node!r:.60}; "
                                   f"expected {{'layer': index, 'inputs': [tensor, ...]}}")
            number = layer_number(node.get("layer"), f"the layer of node {index} of {where}")
            arguments = [shapes[checker.integer_value(
                reference, f"an input tensor of node {index} of {where}", 0, len(shapes) - 1)]
                for reference in references]
            takes_list = getattr(layers[number], "takes_list", False)
            shapes.append(called_on(number, arguments if takes_list or len(arguments) > 1
                                    else arguments[0], f"node {index} of {where}"))
        models = entry.get("models", [])
        pending.extend(models if isinstance(models, list) else [])


def _check_compile_settings(reader: ModelFileReader, config: dict) -> None:
    """The optimizer's name and config and the metrics of a network's 'compile' entry."""
    from dlcore.optimizers import OPTIMIZERS
    compiled = config.get("compile")
    if compiled is None:
        return
    checker = ConfigChecker(reader, compiled, "the hyperparameters' 'compile'")
    optimizer = compiled.get("optimizer")
    name = optimizer.get("class_name") if isinstance(optimizer, dict) else optimizer
    if not isinstance(name, str) or name.lower() not in OPTIMIZERS:
        raise checker.fail(f"name the optimizer {name!r:.60}; expected one of "
                           f"{', '.join(OPTIMIZERS)}")
    if isinstance(optimizer, dict) and not isinstance(optimizer.get("config", {}), dict):
        raise checker.fail("give an optimizer 'config' that is not a JSON object")
    metrics = compiled.get("metrics") or []
    if not isinstance(metrics, list) or len(metrics) > 8 or \
            not all(isinstance(metric, str) for metric in metrics):
        raise checker.fail(f"give metrics = {metrics!r:.60}; expected a short list of names")
    chosen = compiled.get("metric_outputs")
    if chosen is not None and (not isinstance(chosen, list) or len(chosen) > 64 or not all(
            isinstance(flag, bool) or (isinstance(flag, list) and len(flag) <= 8 and all(
                isinstance(metric, str) for metric in flag)) for flag in chosen)):
        raise checker.fail(f"give metric_outputs = {chosen!r:.60}; expected a short list of "
                           f"true or false (or of metric names), one per output")
    order = compiled.get("loss_order")
    if order is not None and (not isinstance(order, list) or len(order) > 64 or not all(
            isinstance(index, int) and not isinstance(index, bool) for index in order)
            or sorted(order) != list(range(len(order)))):
        raise checker.fail(f"give loss_order = {order!r:.60}; expected the outputs' numbers "
                           f"0, 1, ... in some order")
    weights = compiled.get("loss_weights")
    if weights is not None and (not isinstance(weights, list) or len(weights) > 64 or not all(
            isinstance(weight, (int, float)) and not isinstance(weight, bool)
            and math.isfinite(weight) and weight >= 0 for weight in weights)):
        raise checker.fail(f"give loss_weights = {weights!r:.60}; expected a short list of "
                           f"non-negative numbers")


def _check_optimizer_group(reader: ModelFileReader, expected: dict[str, tuple]) -> None:
    optimizer_group = reader.group("training/optimizer", required=False)
    if optimizer_group is not None:
        iterations = reader.attribute(optimizer_group, "iterations", "training/optimizer",
                                      default=0)
        if isinstance(iterations, bool) or not isinstance(iterations, int) or \
                not 0 <= iterations < MAX_COUNTER:
            raise reader.error(f"attribute 'iterations' of 'training/optimizer' is "
                               f"{iterations!r:.60}; expected a non-negative integer")
        _check_optimizer_slots(reader, expected)


#: model class name -> its layout check, run before the arrays are read.
LAYOUT_CHECKS: dict[str, Callable[[ModelFileReader, Any], None]] = {
    "Model": check_functional,
    "BernoulliRBM": check_bernoulli_rbm,
    "GaussianBernoulliRBM": check_gaussian_rbm,
    "DBN": check_dbn,
    "Sequential": check_sequential,
    "Autoencoder": check_autoencoder,
    "StackedAutoencoder": check_stacked_autoencoder,
}
