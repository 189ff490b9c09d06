"""Keras's ``training_config``: how a Keras model file says its model was compiled, mapped onto
dlcore's optimisers, losses and metrics, both ways.

Lecture "Deep learning I" on transfer learning: "use a pre-trained neural network ... then
fine-tune". A Keras file written from a compiled model holds, in the root attribute
``training_config``, the optimiser (``optimizer_config``: class name and settings), the loss and
the metrics. When all three have a dlcore equivalent the imported model is compiled with them,
so ``fit`` continues where Keras stopped (from a legacy file with fresh optimiser slots: the
momenta are not carried over; a ``.keras`` archive carries them, see
:mod:`dlcore.io.keras_archive`); otherwise it is loaded uncompiled, and a warning says so once,
naming what has no equivalent. A compiled dlcore model is exported with a ``training_config`` that
``keras.models.load_model`` compiles from.

    Keras                                   dlcore
    SGD(learning_rate, momentum, nesterov)  SGD(learning_rate, momentum, nesterov)
    Adam(learning_rate, beta_1, beta_2,     Adam(learning_rate, beta_1, beta_2, epsilon,
         epsilon, amsgrad)                       amsgrad)
    AdamW(learning_rate, weight_decay, ...) AdamW(learning_rate, weight_decay, ...)
    Nadam(learning_rate, beta_1, beta_2,    Nadam(learning_rate, beta_1, beta_2, epsilon)
          epsilon)
    RMSprop(learning_rate, rho, epsilon,    RMSProp(learning_rate, rho, epsilon, momentum,
            momentum, centered)                     centered)
    Adagrad(learning_rate,                  AdaGrad(learning_rate, initial_accumulator_value,
            initial_accumulator_value,              epsilon)
            epsilon)
    Adamax(learning_rate, beta_1, beta_2,   Adamax(learning_rate, beta_1, beta_2, epsilon)
           epsilon)
    Adadelta(learning_rate, rho, epsilon)   Adadelta(learning_rate, rho, epsilon)
    Lion(learning_rate, beta_1, beta_2)     Lion(learning_rate, beta_1, beta_2)
    Ftrl(learning_rate, ...)                Ftrl(learning_rate, ...) (all its settings)
    clipnorm, global_clipnorm, clipvalue    clipnorm, global_clipnorm, clipvalue
    use_ema, ema_momentum,                  use_ema, ema_momentum, ema_overwrite_frequency
        ema_overwrite_frequency                 (the averages cross with the state)
    gradient_accumulation_steps             gradient_accumulation_steps (its accumulators
                                                cross with the state)
    name                                    given_name (saved as name)
    loss_scale_factor (float16 training)    refused: dlcore trains no float16
    weight_decay (any of those optimisers)  weight_decay (the same decoupled decay)
    exclude_from_weight_decay(var_names)    exclude_from_weight_decay(var_names) (of an
        (of an optimiser object; its            optimiser object given to compile; in a file,
        config does not hold it)                dlcore's key, below)
    ExponentialDecay, InverseTimeDecay      ExponentialDecay, InverseTimeDecay
    decay (tf.keras 2's, of a number rate)  InverseTimeDecay(learning_rate, 1, decay)
    lr (Keras before 2.3)                   learning_rate
    (sparse_)categorical_crossentropy       cross_entropy (labels or one-hot rows)
    binary_crossentropy                     binary_cross_entropy
    mean_squared_error, mse                 mse
    from_logits (loss objects)              from_logits
    label_smoothing (Categorical- and       label_smoothing
        BinaryCrossentropy objects)
    accuracy (any of Keras's accuracies)    accuracy

The update rules differ in two places. Where the small epsilon enters: Keras's RMSprop
divides by sqrt(s + eps), dlcore's by sqrt(s) + eps, and Keras's Adam (AdamW too) adds eps to
sqrt(v) before the bias correction of v, dlcore after it (both eps = 1e-7 by default), and
Keras's Adagrad, as its RMSprop, by sqrt(s + eps); Keras's
Nadam adds it after, as dlcore's. And SGD's
momentum: Keras's velocity is v <- mu v - eta g, dlcore's Delta <- mu Delta + g stepped by
eta Delta, the same steps for a constant eta but not under the ExponentialDecay schedule
Keras files carry (RMSprop's momentum alike: Keras's b <- mu b + eta step, dlcore's and
PyTorch's b <- mu b + step stepped by eta b). An Adam, AdamW, RMSprop or Adagrad imported
from a file Keras wrote takes Keras's form (``epsilon_form="keras"``: RMSprop's momentum
too), an SGD Keras's momentum (``momentum_form="keras"``),
both kept in dlcore's files, so that training goes on with Keras's steps. Keras's optimisers
have one form and take no such setting: dlcore writes its optimiser's forms beside Keras's
settings, as ``dlcore_epsilon_form`` and ``dlcore_momentum_form`` (top-level keys of a legacy file's
``training_config``, which Keras reads key by key; in an archive's ``metadata.json``, which
Keras does not read), so that a model dlcore saved in a Keras file and loads back steps as
before; Keras takes its own steps. The same holds for the parameters left out of the weight
decay (``exclude_from_weight_decay``): Keras's ``get_config`` does not hold them, so that a
Keras file never carries them; dlcore writes them as ``dlcore_exclude_from_weight_decay``,
which dlcore reads back and Keras ignores (it decays every parameter of such a file, and the
export says so in a note). A Keras optimiser object given to ``compile`` keeps its
``var_names``; its ``var_list`` (Keras's variables, not dlcore's) is refused in one line.
dlcore's cross-entropy takes labels and one-hot rows alike; Keras tells them apart, and dlcore
writes the one the model last trained on (``categorical_crossentropy`` for one-hot rows), or
the one an imported model was compiled with, else ``sparse_categorical_crossentropy`` (labels,
the form its own examples train on); a cross-entropy with label smoothing is written as
Keras's categorical one (its sparse one does not smooth, and Keras 3 has no other way to
smooth labels), which takes one-hot rows; for a model that trained on integer labels (or was
compiled with ``SparseCategoricalCrossentropy``) the compile settings are left out with a note
naming the fix (fit on one-hot rows before saving), as Keras could not train it on the same
labels. Metrics
of a model with several outputs are written per output (dlcore's accuracy is its first
output's).
"""
from __future__ import annotations

import warnings

#: Keras's names of dlcore's losses (dlcore's cross-entropy takes labels: sparse in Keras).
_KERAS_LOSS_NAMES = {"cross_entropy": "sparse_categorical_crossentropy",
                     "binary_cross_entropy": "binary_crossentropy",
                     "mse": "mean_squared_error"}
# Keras's two cross-entropies stay named (dlcore's CategoricalCrossentropy and
# SparseCategoricalCrossentropy, its cross-entropy under those names), so that an export names
# the one the model was compiled with.
_LOSSES = {"categorical_crossentropy": "categorical_crossentropy",
           "sparse_categorical_crossentropy": "sparse_categorical_crossentropy",
           "binary_crossentropy": "binary_cross_entropy",
           "mean_squared_error": "mse", "mse": "mse"}
_LOSS_CLASSES = {"CategoricalCrossentropy": "categorical_crossentropy",
                 "SparseCategoricalCrossentropy": "sparse_categorical_crossentropy",
                 "BinaryCrossentropy": "binary_cross_entropy",
                 "MeanSquaredError": "mse"}
#: Keras's accuracies -> the name dlcore's compile takes (a string is kept as spelled, as
#: Keras names the logs after it: "acc" -> ``acc``). Not its ``Accuracy`` object, which
#: counts predictions equal to their targets (0 for probabilities), dlcore has no such metric;
#: the string "Accuracy" is Keras's "accuracy" (it resolves "accuracy" and "acc" in any case).
_ACCURACIES = {"accuracy": "accuracy", "acc": "acc",
               "CategoricalAccuracy": "categorical_accuracy",
               "SparseCategoricalAccuracy": "sparse_categorical_accuracy",
               "BinaryAccuracy": "binary_accuracy", "categorical_accuracy": "categorical_accuracy",
               "sparse_categorical_accuracy": "sparse_categorical_accuracy",
               "binary_accuracy": "binary_accuracy"}
#: The form of targets Keras's cross-entropies take (dlcore's takes both): rows or labels.
_TARGET_FORMS = {"categorical_crossentropy": "rows", "CategoricalCrossentropy": "rows",
                 "sparse_categorical_crossentropy": "labels",
                 "SparseCategoricalCrossentropy": "labels"}
#: Keras optimiser class -> (dlcore optimiser, settings carried, settings that must be off).
_OPTIMIZERS = {"SGD": ("sgd", ("momentum", "nesterov"), {}),
               "Adam": ("adam", ("beta_1", "beta_2", "epsilon", "amsgrad"), {}),
               "AdamW": ("adamw", ("beta_1", "beta_2", "epsilon", "amsgrad"), {}),
               "Nadam": ("nadam", ("beta_1", "beta_2", "epsilon"), {}),
               "Adagrad": ("adagrad", ("initial_accumulator_value", "epsilon"), {}),
               "RMSprop": ("rmsprop", ("rho", "epsilon", "momentum", "centered"), {}),
               "Adamax": ("adamax", ("beta_1", "beta_2", "epsilon"), {}),
               "Adadelta": ("adadelta", ("rho", "epsilon"), {}),
               "Lion": ("lion", ("beta_1", "beta_2"), {}),
               "Ftrl": ("ftrl", ("learning_rate_power", "initial_accumulator_value",
                                 "l1_regularization_strength", "l2_regularization_strength",
                                 "l2_shrinkage_regularization_strength", "beta"), {})}
#: Keras's moving-average settings, carried only where its use_ema is on (Keras saves their
#: defaults with every optimiser, and ignores them without it)
_EMA_SETTINGS = ("ema_momentum", "ema_overwrite_frequency")
#: Settings every Keras optimiser has, carried to dlcore's (Keras 3's base optimiser applies
#: its decoupled weight decay, and clips, for all of them as dlcore's does).
_CARRIED_BY_ALL = ("weight_decay", "clipnorm", "global_clipnorm", "clipvalue", "use_ema",
                   *_EMA_SETTINGS, "gradient_accumulation_steps", "name")
#: where a Keras file dlcore wrote keeps its optimiser's ``epsilon_form`` and
#: ``momentum_form`` (module docstring)
EPSILON_FORM_KEY = "dlcore_epsilon_form"
MOMENTUM_FORM_KEY = "dlcore_momentum_form"
FORM_KEYS = {"epsilon_form": EPSILON_FORM_KEY, "momentum_form": MOMENTUM_FORM_KEY}
#: where a Keras file dlcore wrote keeps the optimiser's exclusion from its weight decay
EXCLUSION_KEY = "dlcore_exclude_from_weight_decay"
#: the keys dlcore writes beside Keras's compile settings (module docstring)
DLCORE_KEYS = (*FORM_KEYS.values(), EXCLUSION_KEY)
#: dlcore's settings that Keras's optimisers do not take: left out of an export
_DLCORE_ONLY = ("learning_rate", "exclude_from_weight_decay", *FORM_KEYS)
#: Settings every Keras optimiser has that dlcore's do not: they must be off.
_OFF = {"loss_scale_factor": None}
_KERAS_OPTIMIZER_NAMES = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "nadam": "Nadam",
                          "rmsprop": "RMSprop", "adagrad": "Adagrad", "adamax": "Adamax",
                          "adadelta": "Adadelta", "lion": "Lion", "ftrl": "Ftrl"}


def _keras_object(value, where):
    """``(class_name, config)`` of a serialized Keras object, refused when it is not one of
    Keras's own (a custom or registered object)."""
    if not isinstance(value, dict) or not isinstance(value.get("class_name"), str) or \
            not isinstance(value.get("config", {}), dict):
        raise ValueError(f"{where} {str(value)[:60]!r} is not a Keras object")
    if value.get("registered_name") not in (None, value["class_name"]) or \
            not str(value.get("module", "keras")).startswith("keras"):
        raise ValueError(f"{where} {value['class_name'][:60]!r} is a custom object")
    return value["class_name"], value.get("config", {})


def _loss(value):
    from dlcore.losses import get_loss
    if isinstance(value, str):
        if value not in _LOSSES:
            raise ValueError(f"the loss {value[:60]!r} is not one dlcore has")
        return get_loss(_LOSSES[value])
    name, config = _keras_object(value, "the loss")
    if name not in _LOSS_CLASSES:
        raise ValueError(f"the loss {name[:60]!r} is not one dlcore has")
    smoothing = config.get("label_smoothing", 0.0)
    # Keras's categorical and binary cross-entropies smooth, as dlcore's
    smooths = name in ("CategoricalCrossentropy", "BinaryCrossentropy")
    for key, default in (("label_smoothing", 0.0), ("ignore_class", None), ("axis", -1)):
        if config.get(key, default) != default and not (key == "label_smoothing" and smooths):
            raise ValueError(f"the loss {name} sets {key}={str(config[key])[:20]}, which dlcore "
                             f"does not have")
    # dlcore trains on the batch mean ("mean" is Keras's other name for it)
    if config.get("reduction", "sum_over_batch_size") not in ("sum_over_batch_size", "mean"):
        raise ValueError(f"the loss {name} sets reduction={str(config['reduction'])[:30]}; "
                         f"dlcore trains on the mean over the batch")
    if _LOSS_CLASSES[name] == "mse":
        return get_loss("mse")
    from_logits = config.get("from_logits", False)
    if not isinstance(from_logits, bool):
        raise ValueError("the loss's from_logits is not true or false")
    if isinstance(smoothing, bool) or not isinstance(smoothing, (int, float)) \
            or not 0 <= smoothing < 1:
        raise ValueError(f"the loss's label_smoothing {str(smoothing)[:20]} is not a number in "
                         f"[0, 1)")
    return get_loss({"name": _LOSS_CLASSES[name], "from_logits": from_logits,
                     "label_smoothing": float(smoothing)})


def _compile_metrics(value, left_out=None, logits=False):
    """compile's ``metrics`` from Keras's: ``["accuracy"]`` or none, or per output (a list with
    a list or None per output) one of them for each; see :func:`_metrics` for ``left_out`` and
    ``logits``."""
    if isinstance(value, list) and len(value) <= 64 and any(
            item is None or isinstance(item, list) for item in value):
        return [_metrics(item, left_out, logits) for item in value]
    return _metrics(value, left_out, logits)


def _printable(name):
    """A file's ``name`` as one bounded line: its first 40 characters, a line break or other
    control character escaped (a warning quoting a hostile file's metric must not print
    lines of the file's making)."""
    return repr(str(name)[:40])[1:-1]


def _metrics(value, left_out=None, logits=False):
    """The accuracies among Keras's metrics ``value`` by dlcore's names (``["acc"]``,
    ``["binary_accuracy"]``; ``[]`` for none), those of the first one's kind (dlcore reports
    one accuracy per output: binary_accuracy or the argmax's); the names of the others, and
    of a ``BinaryAccuracy`` of another threshold than dlcore's 0.5 (or, with ``logits``, a
    binary cross-entropy on logits among the losses, 0: the one dlcore's export writes, see
    :func:`_logit_accuracies`), go into ``left_out`` (a list) when given, else are
    refused."""
    from dlcore.layers.geometry import stacklevel_outside_dlcore
    from dlcore.training import is_elementwise_accuracy
    items, others, pending = [], [], [value]
    thresholds = (0.5, 0.0) if logits else (0.5,)
    while pending:
        item = pending.pop(0)
        if item is None:
            continue
        if isinstance(item, list) and len(item) <= 16:
            pending[:0] = item
            continue
        name, config = (item, {}) if isinstance(item, str) else _keras_object(item, "a metric")
        if isinstance(item, str) and name.lower() in ("accuracy", "acc"):
            name = name.lower()
        if name == "Accuracy":
            others.append("Accuracy (keras.metrics.Accuracy counts predictions equal to their "
                          "targets, not the argmax 'accuracy')")
        elif name in _ACCURACIES and config.get("threshold", 0.5) in thresholds:
            # "accuracy" is Keras's BinaryAccuracy for a binary loss: one, so named (as
            # _logit_accuracies writes it), is that accuracy
            chosen = config["name"] if name == "BinaryAccuracy" and config.get("name") in (
                "accuracy", "acc") else _ACCURACIES[name]
            if chosen not in items:
                items.append(chosen)
            if config.get("name", chosen) != chosen:
                # Keras logs the object by its own name: a monitor="val_bin" must be told
                # the user's line, however deep the object stood in compile's metrics
                warnings.warn(f"the metric {_printable(config['name'])!r} (a {name}) is "
                              f"reported as {chosen}: dlcore names its accuracies by Keras's "
                              f"strings (monitor val_{chosen})",
                              stacklevel=stacklevel_outside_dlcore())
        else:
            others.append(_printable(name) if name not in _ACCURACIES else
                          f"{name}(threshold={_printable(config['threshold'])[:12]})")
    kind = is_elementwise_accuracy(items[:1])
    others += [name for name in items if is_elementwise_accuracy([name]) != kind]
    if others and left_out is None:
        raise ValueError(f"the metric {others[0]!r} is not one dlcore reports (accuracy, "
                         f"one per output)")
    if left_out is not None:
        left_out += others
    return [name for name in items if is_elementwise_accuracy([name]) == kind]


#: Keras's learning-rate schedules that dlcore has, by the name both give them
_SCHEDULES = ("ExponentialDecay", "InverseTimeDecay")


def _learning_rate(value):
    from dlcore.optimizers import SCHEDULES
    from dlcore.validation import check_float
    if isinstance(value, bool):
        raise ValueError("the learning rate is not a number")
    if isinstance(value, (int, float)):
        return check_float(value, "the learning rate")
    name, config = _keras_object(value, "the learning rate schedule")
    if name not in _SCHEDULES:
        raise ValueError(f"the learning rate schedule {name[:60]!r} is not one dlcore has "
                         f"({', '.join(_SCHEDULES)})")
    return SCHEDULES[name](config.get("initial_learning_rate"), config.get("decay_steps"),
                           config.get("decay_rate"), bool(config.get("staircase", False)))


def _with_legacy_decay(rate, decay, name):
    """The learning rate ``rate`` under Keras 2's ``decay`` of optimiser ``name`` (tf.keras 2's
    optimisers divide their rate by 1 + decay t at update t): Keras's InverseTimeDecay of one
    step; a schedule under such a decay is refused (dlcore does not compose schedules)."""
    from dlcore.optimizers import InverseTimeDecay, Schedule
    if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not decay >= 0:
        raise ValueError(f"the optimizer {name} sets Keras 2's decay={str(decay)[:20]}, not a "
                         f"number >= 0")
    if decay == 0:
        return rate
    if isinstance(rate, Schedule):
        raise ValueError(f"the optimizer {name} sets Keras 2's decay={decay:g} on top of a "
                         f"learning-rate schedule, which dlcore does not compose: compile it "
                         f"with one schedule")
    return InverseTimeDecay(rate, 1, decay)


def _optimizer(value):
    from dlcore.optimizers import OPTIMIZERS
    name, config = _keras_object(value, "the optimizer")
    if name not in _OPTIMIZERS:
        raise ValueError(f"the optimizer {name[:60]!r} is not one dlcore has (SGD, Adam, "
                         f"AdamW, Nadam, RMSprop, Adagrad, Adamax, Adadelta, Lion, Ftrl)")
    dlcore_name, carried, required = _OPTIMIZERS[name]
    for key, off in {**_OFF, **required}.items():
        if key not in carried and config.get(key, off) != off:
            raise ValueError(f"the optimizer {name} sets {key}={str(config[key])[:20]}, which "
                             f"dlcore's does not have")
    settings = {key: config[key] for key in carried if key in config}
    settings.update({key: config[key] for key in _CARRIED_BY_ALL
                     if config.get(key) is not None
                     and (key not in _EMA_SETTINGS or config.get("use_ema"))})
    # Keras before 2.3 wrote the rate as "lr"
    rate = _with_legacy_decay(_learning_rate(config.get("learning_rate",
                                                        config.get("lr", 0.01))),
                              config.get("decay", 0), name)
    return OPTIMIZERS[dlcore_name](learning_rate=rate, **settings)


def _loss_weights(value):
    """Keras's ``loss_weights`` (None, a list, or a dict by output name) with numbers checked;
    the model's ``compile`` matches them to its outputs."""
    if value is None:
        return None
    items = value.values() if isinstance(value, dict) else value
    if not isinstance(value, (list, dict)) or len(value) > 64 or any(
            isinstance(item, bool) or not isinstance(item, (int, float)) for item in items):
        raise ValueError(f"the loss_weights {str(value)[:60]} are not a list or dict of numbers")
    return value


def compile_arguments(training_config, left_out=None):
    """``(loss, optimizer, metrics)`` for ``model.compile`` from a Keras ``training_config``
    (parsed JSON), and its ``loss_weights`` as :func:`loss_weights` gives them; ValueError
    naming what has no dlcore equivalent (the metrics dlcore does not report go into
    ``left_out`` instead, when it is a list)."""
    if not isinstance(training_config, dict):
        raise ValueError("the training_config is not a JSON object")
    if training_config.get("weighted_metrics") is not None:
        raise ValueError("weighted metrics are not dlcore's")
    loss = training_config.get("loss")
    if loss is None:
        raise ValueError("it names no loss")
    if isinstance(loss, dict) and "class_name" not in loss:   # per output, by name
        if len(loss) > 64 or not all(isinstance(name, str) for name in loss):
            raise ValueError("the losses by output name are not a dict of names")
        losses = {name: _loss(item) for name, item in loss.items()}
        return losses, _compile_optimizer(training_config), \
            _compile_metrics(training_config.get("metrics"), left_out,
                             _binary_on_logits(losses.values()))
    losses = [_loss(item) for item in loss[:64]] if isinstance(loss, list) else _loss(loss)
    return (losses, _compile_optimizer(training_config),
            _compile_metrics(training_config.get("metrics"), left_out, _binary_on_logits(
                losses if isinstance(losses, list) else [losses])))


def _binary_on_logits(losses):
    """Whether one of ``losses`` (dlcore's) is a binary cross-entropy on logits."""
    return any(loss.name == "binary_cross_entropy" and loss.from_logits for loss in losses)


def _logit_accuracies(names, loss):
    """An output's accuracy ``names`` for Keras's ``metrics``: as they are, but for a binary
    cross-entropy on logits, whose "accuracy" Keras counts as logits above 0.5 (its
    BinaryAccuracy knows no from_logits) where dlcore counts logits above 0 (probabilities
    above 0.5): there a BinaryAccuracy of threshold 0 under the same name, so that Keras
    reports the accuracy dlcore did."""
    if loss.name != "binary_cross_entropy" or not loss.from_logits:
        return names
    return [{"module": "keras.metrics", "class_name": "BinaryAccuracy",
             "config": {"name": name, "dtype": "float32", "threshold": 0.0},
             "registered_name": None}
            if name in ("accuracy", "acc", "binary_accuracy") else name for name in names]


def _from_keras(value):
    """Whether ``value`` is one of Keras's objects (an optimiser, a loss or metric object, a
    loss function), told by its module without importing Keras."""
    module = getattr(value, "__module__", None) if callable(value) and not isinstance(
        value, type) and type(value).__name__ == "function" else type(value).__module__
    return isinstance(module, str) and module.split(".")[0] == "keras"


def _keras_serialized(value):
    import keras
    return keras.saving.serialize_keras_object(value)


def keras_objects_as_dlcores(loss, optimizer, metrics):
    """``compile``'s ``(loss, optimizer, metrics)`` with Keras's objects among them, as a Keras
    user fine-tuning writes them (``optimizer=keras.optimizers.Adam(1e-5)``,
    ``loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)``,
    ``metrics=[keras.metrics.SparseCategoricalAccuracy()]``), replaced by dlcore's: the ones a
    Keras file's compile settings import as (:func:`compile_from`), so that they take Keras's
    steps. Whatever dlcore has not is refused in one line naming it; anything else is
    returned as it is."""
    def converted(value):
        if not _from_keras(value):
            return value
        if type(value).__name__ == "function":   # keras.losses.categorical_crossentropy
            return _loss(value.__name__)
        serialized = _keras_serialized(value)
        if str(serialized.get("module", "")).startswith("keras.losses"):
            return _loss(serialized)
        optimizer = _compile_optimizer({"optimizer_config": serialized})
        optimizer.exclude_from_weight_decay(var_names=_excluded_var_names(value))
        return optimizer

    try:
        loss, optimizer = converted(loss), converted(optimizer)
        metrics = _metric_names(metrics)
    except ValueError as error:
        raise ValueError(f"compile was given a Keras object dlcore cannot take: {error}; give "
                         f"dlcore's (dlcore.optimizers, dlcore.losses, metrics=['accuracy'])"
                         ) from None
    return loss, optimizer, metrics


def _metric_names(metrics, depth=0):
    """compile's ``metrics`` with each of Keras's metric objects replaced, in its place, by
    the name dlcore reports it by: the lists and dicts around them are kept, so that each
    output keeps its own (Keras 3 takes objects in the forms it takes names in; a flat list
    of one per output, ``[BinaryAccuracy(), CategoricalAccuracy()]``, is one each)."""
    if isinstance(metrics, (list, tuple)):
        # a name passes without a call, and a list holding no object is returned itself: a
        # long list of names is neither walked call by call nor copied
        named = [item if isinstance(item, str) or depth >= 8 else
                 _metric_names(item, depth + 1) for item in metrics]
        return metrics if all(new is old for new, old in zip(named, metrics)) else named
    if isinstance(metrics, dict):
        return {key: item if depth >= 8 else _metric_names(item, depth + 1)
                for key, item in metrics.items()}
    if _from_keras(metrics):
        return _metrics([_keras_serialized(metrics)])[0]
    from dlcore.metrics import Metric
    if isinstance(metrics, Metric):   # dlcore.metrics' objects, as Keras's guides write them
        return metrics.name
    return metrics


def _excluded_var_names(optimizer):
    """The ``var_names`` a Keras optimiser object leaves out of its weight decay
    (``exclude_from_weight_decay``, which its config does not hold): Keras keeps them as one
    regular expression, which dlcore's ``var_names`` take as they are. ValueError for its
    ``var_list``, Keras's own variables, which name no dlcore parameter."""
    if getattr(optimizer, "_exclude_from_weight_decay", None):
        raise ValueError(f"its {type(optimizer).__name__} excludes variables from its weight "
                         f"decay by var_list, Keras's variables, not dlcore's: name them with "
                         f"exclude_from_weight_decay(var_names=['bias']) instead")
    pattern = getattr(optimizer, "_exclude_from_weight_decay_pattern", None)
    return None if pattern is None else [pattern.pattern]


def loss_weights(training_config):
    """The ``loss_weights`` of a Keras ``training_config``, checked: None, a list, or a dict
    by output name."""
    return _loss_weights(training_config.get("loss_weights")) \
        if isinstance(training_config, dict) else None


def _compile_optimizer(training_config):
    try:
        optimizer = _optimizer(training_config.get("optimizer_config"))
    except TypeError as error:
        raise ValueError(f"the optimizer's settings are not dlcore's: {error}") from None
    settings = optimizer.get_config()
    for setting, key in FORM_KEYS.items():
        if setting in settings:   # Nadam has one form, Keras's and dlcore's alike
            # Keras's steps, unless dlcore wrote the file from an optimiser of its own form
            setattr(optimizer, setting, _form(key, training_config.get(key, "keras")))
    excluded = training_config.get(EXCLUSION_KEY)
    if excluded is not None:
        if not isinstance(excluded, dict) or set(excluded) - {"var_list", "var_names"}:
            raise ValueError(f"its {EXCLUSION_KEY} {str(excluded)[:40]!r} is not a dict of "
                             f"var_list and var_names")
        optimizer.exclude_from_weight_decay(**excluded)
    return optimizer


def _form(key, value):
    from dlcore.optimizers import EPSILON_FORMS, MOMENTUM_FORMS
    forms = EPSILON_FORMS if key == EPSILON_FORM_KEY else MOMENTUM_FORMS
    if value not in forms:
        raise ValueError(f"its {key} {str(value)[:20]!r} is not one of {', '.join(forms)}")
    return value


def _target_form(value):
    """"rows" or "labels" for a Keras cross-entropy (by name or object), else None."""
    name = value.get("class_name") if isinstance(value, dict) else value
    return _TARGET_FORMS.get(name) if isinstance(name, str) else None


def _per_output_metrics(model, training_config, tf_keras=False):
    """``training_config`` with the metrics of a model with several outputs given per output
    (a dict by output name, or a list of one entry per output, as Keras 3 takes them) as
    dlcore's compile takes them: per output ``["accuracy"]`` or none (a model of one output:
    its entry of such a dict, as for one output). A flat list of names of a file of
    ``tf_keras`` (2 or older) gave every output every name, as it still does. An output's
    metrics that dlcore does not report are left out with a warning (its loss is still
    reported)."""
    from dlcore import Sequential
    from dlcore.training import every_output
    metrics = training_config.get("metrics") if isinstance(training_config, dict) else None
    outputs = 1 if isinstance(model, Sequential) else len(model.outputs)
    if outputs == 1 and isinstance(metrics, dict) and len(metrics) == 1:
        # one output's metrics by its name (or its key, for a Keras model's dict output)
        return {**training_config, "metrics": next(iter(metrics.values()))}
    if outputs < 2 or not isinstance(metrics, (dict, list)):
        return training_config
    names = model.output_names
    if isinstance(metrics, dict):
        per_output = [metrics.get(name) for name in names]
    elif tf_keras and len(metrics) <= 64 and every_output(metrics, outputs) is not metrics:
        per_output = every_output(metrics, outputs)
    elif len(metrics) == outputs:
        # Keras 3: one entry per output (a name, an object, a list of them or None)
        per_output = metrics
    else:
        return training_config
    chosen, dropped = [], []
    for name, items in zip(names, per_output):
        left_out = []
        chosen.append(_metrics(items, left_out))
        dropped += [f"{other} (of {str(name)[:40]})" for other in left_out]
    _warn_left_out(dropped)
    return {**training_config, "metrics": chosen}


def _warn_left_out(names):
    """One warning naming the Keras metrics that dlcore does not report."""
    from dlcore.layers.geometry import stacklevel_outside_dlcore
    if names:
        # the user's line (dlcore.load's), whichever reader of Keras's files got here
        warnings.warn(f"the metric(s) {', '.join(names[:8])} are left out: dlcore reports "
                      f"accuracy (and each output's loss)", stacklevel=stacklevel_outside_dlcore())


def compile_from(model, training_config, tf_keras=False):
    """Compile ``model`` as ``training_config`` says (of a file of ``tf_keras`` 2 or older:
    its flat list of metrics is every output's); the reason (one line) when it cannot be,
    None when it was compiled. The form of targets Keras's loss took is kept
    (``model.target_forms_``), so that an export names the same loss."""
    try:
        training_config = _per_output_metrics(model, training_config, tf_keras)
        left_out = []
        loss, optimizer, metrics = compile_arguments(training_config, left_out)
        _warn_left_out(left_out)
        weights = loss_weights(training_config)
        if weights is None:
            model.compile(loss, optimizer, metrics)
        else:
            model.compile(loss, optimizer, metrics, loss_weights=weights)
    except (ValueError, TypeError) as error:
        model.loss = model.optimizer = None
        return str(error).split("\n")[0][:300]
    keras_losses = training_config["loss"]
    if isinstance(keras_losses, dict) and "class_name" not in keras_losses:
        keras_losses = [keras_losses.get(name) for name in model.output_names]
    model.target_forms_ = tuple(_target_form(item) for item in (
        keras_losses if isinstance(keras_losses, list) else [keras_losses]))
    return None


def _keras_learning_rate(rate):
    if type(rate).__name__ in _SCHEDULES:
        return {"module": "keras.optimizers.schedules", "class_name": type(rate).__name__,
                "config": rate.get_config(), "registered_name": None}
    if isinstance(rate, (int, float)):
        return float(rate)
    raise ValueError(f"its learning-rate schedule {type(rate).__name__} has no Keras "
                     f"equivalent")


def _keras_loss(loss, target_form=None):
    """Keras's name (or object, for logits) of ``loss``; a cross-entropy is the one of
    Keras's two the model was compiled with, or for dlcore's own, Keras's categorical one when
    the model trained on target rows (``target_form`` "rows"), its sparse one otherwise. A
    smoothed cross-entropy of a model that trained on labels is refused: Keras's sparse
    cross-entropy does not smooth, and its categorical one does not take labels."""
    trained_on = target_form
    target_form = getattr(loss, "target_form", None) or target_form
    smoothing = loss.label_smoothing
    rows = loss.name == "cross_entropy" and target_form == "rows"
    if smoothing and loss.name == "cross_entropy" and (trained_on or target_form) == "labels":
        raise ValueError(f"its cross-entropy smooths (label_smoothing={smoothing:g}) integer "
                         f"labels, which Keras's SparseCategoricalCrossentropy cannot: fit it on "
                         f"one-hot rows (keras.utils.to_categorical(y)) before saving, which "
                         f"Keras's CategoricalCrossentropy takes, or save it in dlcore's format")
    if smoothing:   # Keras's sparse cross-entropy does not smooth: its categorical one does
        classes = {"cross_entropy": "CategoricalCrossentropy",
                   "binary_cross_entropy": "BinaryCrossentropy"}
        return {"module": "keras.losses", "class_name": classes[loss.name],
                "config": {"from_logits": loss.from_logits, "label_smoothing": smoothing},
                "registered_name": None}
    if loss.from_logits:
        classes = {"cross_entropy": "CategoricalCrossentropy" if rows
                   else "SparseCategoricalCrossentropy",
                   "binary_cross_entropy": "BinaryCrossentropy"}
        return {"module": "keras.losses", "class_name": classes[loss.name],
                "config": {"from_logits": True}, "registered_name": None}
    return "categorical_crossentropy" if rows else _KERAS_LOSS_NAMES[loss.name]


def keras_training_config(model, notes=None):
    """The ``training_config`` of a compiled dlcore model, as Keras writes it; None when it is
    not compiled; ValueError naming what Keras has no equivalent of. What Keras will not take
    from it goes into ``notes`` (a list) when given."""
    from dlcore import Sequential
    if model.loss is None or model.optimizer is None:
        return None
    optimizer = model.optimizer
    if optimizer.name not in _KERAS_OPTIMIZER_NAMES:
        raise ValueError(f"its optimizer {optimizer.name!r} is not exported (SGD, Adam, AdamW, "
                         f"Nadam, RMSprop, Adagrad, Adamax, Adadelta, Lion, Ftrl are)")
    if optimizer.clipnorm is not None and optimizer.global_clipnorm is not None:
        # Keras's constructor refuses the pair: its load_model would fail on the whole file
        raise ValueError("its optimizer clips by both clipnorm and global_clipnorm, which "
                         "Keras's optimizers refuse (they take one of clipnorm, clipvalue and "
                         "global_clipnorm)")
    config = {key: value for key, value in optimizer.get_config().items()
              if key not in _DLCORE_ONLY and value is not None}
    config["learning_rate"] = _keras_learning_rate(optimizer.learning_rate)
    losses = [model.loss] if isinstance(model, Sequential) else list(model.losses)
    forms = tuple(getattr(model, "target_forms_", None) or ())
    forms = forms if len(forms) == len(losses) else (None,) * len(losses)
    loss = [_keras_loss(item, form) for item, form in zip(losses, forms)]
    metrics = _logit_accuracies(list(model.metrics), losses[0]) or None
    if metrics and len(losses) > 1:   # Keras 3 takes a list per output
        metrics = [_logit_accuracies(names, item)
                   for names, item in zip(model._output_metric_names(), losses)]
    order = getattr(model, "output_loss_order", None)
    keys = getattr(model, "keras_output_keys_", None)
    if order is not None and keys and len(keys) == len(loss):
        # a dict of losses by key, in the order Keras lists their scores (its list of loss
        # weights and of metrics goes by sorted key, as dlcore writes them)
        loss = {keys[index]: loss[index] for index in order}
    training = {"loss": loss[0] if len(loss) == 1 else loss,
                "loss_weights": getattr(model, "loss_weights", None),
                "metrics": metrics, "weighted_metrics": None,
                "run_eagerly": False, "steps_per_execution": 1, "jit_compile": False,
                "optimizer_config": {"class_name": _KERAS_OPTIMIZER_NAMES[optimizer.name],
                                     "config": config}}
    settings = optimizer.get_config()
    for setting, key in FORM_KEYS.items():
        if setting in settings:
            training[key] = settings[setting]
    if "exclude_from_weight_decay" in settings:
        training[EXCLUSION_KEY] = settings["exclude_from_weight_decay"]
        if optimizer.weight_decay and notes is not None:
            notes.append("the optimizer's exclude_from_weight_decay is kept for dlcore only: "
                         "Keras's optimizer config has no place for it, and Keras decays every "
                         "weight of this file (call its exclude_from_weight_decay after "
                         "loading)")
    return training
