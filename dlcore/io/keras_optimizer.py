"""The optimiser's state in Keras files: what lets training go on where the other library
stopped, both ways.

Keras keeps its optimiser's variables in one order, in a ``.keras`` archive (``optimizer/vars/0``,
``1``, ... of its ``model.weights.h5``) and in a legacy HDF5 model file alike (the datasets of
``optimizer_weights`` named, in order, by its ``weight_names`` attribute; dlcore reads them but
writes archives only: Keras 3.15 cannot train a model it loaded from a legacy file holding
them, its own files included): the update count, the learning rate (when it is a number, not a
schedule), then the slots of each trainable array (a frozen layer's have none) in turn, layer by
layer, kernel then bias (Keras interleaves them: Adam's m then v of the first kernel, of its
bias, ...), each in Keras's layout (a convolution's kernel HWIO). AMSGrad's largest v of each
array follow in one block of their own, after all the others (Keras builds them apart), as do
RMSprop's momenta, then its centred mean gradients (each a block: Keras builds each kind
apart; a PyTorch-form momentum b crosses as Keras's eta b at the current rate), and
Nadam ends with its product of momenta P_t (a scalar dlcore computes from t: written, not
read back). With ``use_ema`` the moving averages of the trainable arrays come first, in a
block of their own, and with ``gradient_accumulation_steps`` their gradient accumulators
after them (Keras's base optimiser builds both before the rule's slots): dlcore's ``average``
and ``gradient_accumulator`` slots.

Adam's m and v, RMSprop's mean square, Adagrad's accumulator, Adamax's m and u (Keras's
momentum and norm), Adadelta's two running means, Lion's momentum and Ftrl's accumulator and
linear term are the same numbers in both libraries.
Keras's SGD velocity is v = mu v - eta g; an SGD of ``momentum_form="keras"`` (what the Keras import
compiles) keeps that v itself, while the default form's is Delta = mu Delta + g (lecture
"Supervised learning"), crossing as v = -eta Delta at the current learning rate (exact for a
constant rate; under a schedule only Keras's form goes on with Keras's steps).

The state crosses for a model (Sequential or functional: Keras's variables follow its
``model.layers``, the order :func:`dlcore.io.keras_weights.layer_paths` gives) compiled with
SGD, Adam (AMSGrad too), AdamW, Nadam, RMSprop, Adagrad, Adamax, Adadelta, Lion or Ftrl; a
model compiled but never trained gets zero slots, which Keras expects.
A state whose variables do not match the model's starts afresh, with a warning.
"""
from __future__ import annotations

import numpy as np

#: dlcore's slots in the order Keras 3 stores each trainable array's optimiser variables.
KERAS_SLOTS = {"sgd": ("velocity",), "adam": ("m", "v"), "adamw": ("m", "v"),
               "nadam": ("m", "v"), "rmsprop": ("mean_square",), "adagrad": ("accumulator",),
               "adamax": ("m", "u"), "adadelta": ("accumulated_grad", "accumulated_delta_var"),
               "lion": ("m",), "ftrl": ("accumulator", "linear")}


def _exchanged_slots(model):
    """The slot names whose state crosses to and from Keras for ``model``'s optimiser, in
    Keras's order: those interleaved array by array, then those in a block of their own
    after them (AMSGrad's v_max); None when its state does not cross (a functional model,
    another optimiser, no optimiser)."""
    optimizer = model.optimizer
    if optimizer is None or optimizer.name not in KERAS_SLOTS:
        return None
    # Keras's base optimiser builds its moving averages and gradient accumulators first
    leading = tuple(name for name in _LEADING_BLOCKS if name in optimizer.state_slot_names)
    if optimizer.name == "sgd" and optimizer.momentum == 0:
        return leading   # Keras's SGD keeps no velocity without momentum
    blocks = tuple(name for name in _TRAILING_BLOCKS if name in optimizer.slot_names)
    return leading + KERAS_SLOTS[optimizer.name] + blocks


#: the slots Keras keeps in a block of their own before the rule's (``use_ema``'s averages,
#: then ``gradient_accumulation_steps``' accumulators), and after them (AMSGrad's v_max;
#: RMSprop's momentum, then its centred mean gradient: Keras builds each kind apart)
_LEADING_BLOCKS = ("average", "gradient_accumulator")
_TRAILING_BLOCKS = ("v_max", "momentum", "average_gradient")


def _interleaved(names):
    """The ones of ``names`` that Keras interleaves array by array (the others are blocks)."""
    return tuple(name for name in names if name not in _LEADING_BLOCKS + _TRAILING_BLOCKS)


def _groups(names):
    """``names`` grouped in Keras's order: each leading block, the interleaved slots, each
    trailing block."""
    interleaved = _interleaved(names)
    return (*((name,) for name in _LEADING_BLOCKS if name in names),
            *((interleaved,) if interleaved else ()),
            *((name,) for name in _TRAILING_BLOCKS if name in names))


def _trailing_scalars(optimizer, iterations, dtype=np.float32):
    """Keras's scalar variables after the slots, after ``iterations`` updates: Nadam's product
    of momenta P_t, of the model's ``dtype`` (as Keras builds it, from its first variable's)."""
    if optimizer.name == "nadam":
        return [np.dtype(dtype).type(optimizer.momentum_schedule(iterations)[1])]
    return []


def _learning_rate_now(optimizer, iterations=None):
    """The learning rate of the next update (after ``iterations`` updates: the optimiser's own
    count where None), and whether it is a number (a stored variable in Keras) rather than a
    schedule."""
    from dlcore.optimizers import Schedule
    rate = optimizer.learning_rate
    if isinstance(rate, Schedule):
        return float(rate(optimizer._iterations if iterations is None else iterations)), False
    return float(rate), True


def _slot_lists(model, slots):
    """``slots[(parameter key, slot)]`` per slot name as lists in :meth:`get_weights` order."""
    return {name: [slots[(parameter.key, name)] for parameter in model.parameters]
            for name in model.optimizer.state_slot_names}


def keras_arrays(model, exported):
    """``model``'s optimiser state as Keras's optimiser variables, in Keras's order (see the
    module docstring; zero slots for a model compiled but never trained, as Keras expects them
    all); None when the state does not cross. The slots are converted to Keras's layouts as the
    weights are: a model of the same architecture holding the slot as its weights is
    exported. They are of the model's type (a float64 model's float64, as Keras builds each
    slot from its array); the update count and the learning rate are Keras's int32 and
    float32 whatever the model."""
    from dlcore.io import keras, keras_weights
    names = _exchanged_slots(model)
    if names is None:
        return None
    optimizer = model.optimizer
    if hasattr(optimizer, "backend"):   # built by a first update
        iterations, slots = optimizer.check_state(optimizer.get_state(model.parameters),
                                                  model.parameters)
    else:
        iterations, slots = 0, {(parameter.key, name): np.zeros(parameter.value.shape,
                                                                model.dtype)
                                for parameter in model.parameters
                                for name in optimizer.state_slot_names}
    rate, stored_rate = _learning_rate_now(optimizer)
    arrays = [np.int32(min(iterations, 2**31 - 1))] + ([np.float32(rate)] if stored_rate else [])
    by_slot = {}
    for name, values in _slot_lists(model, slots).items():
        if name not in names:
            continue
        if name == "velocity" and optimizer.momentum_form != "keras":
            values = [-rate * value for value in values]     # Keras's v = -eta Delta
        if name == "momentum" and optimizer.epsilon_form != "keras":
            values = [rate * value for value in values]      # RMSprop's: Keras's b = eta b
        by_slot[name] = keras.exported(_holding(model, values)).weights
    trained = {layer.name: len(layer.weight_names) for layer in model.flat_layers
               if model._trains(layer)}
    for group in _groups(names):
        for layer_name, _ in keras_weights.layer_paths(exported.model_config()):
            if layer_name not in trained:   # Keras keeps variables of trainable arrays only
                continue
            for index in range(min(len(exported.weights.get(layer_name, [])),
                                   trained[layer_name])):
                arrays += [np.asarray(by_slot[name][layer_name][index], dtype=model.dtype)
                           for name in group]
    # Keras's Nadam multiplies its product once a step (not every accumulated batch)
    return arrays + _trailing_scalars(
        optimizer, iterations // (optimizer.gradient_accumulation_steps or 1), model.dtype)


def _holding(model, values):
    """A copy of ``model`` whose parameters hold ``values`` (one array per
    ``model.parameters``, in order), its state the model's."""
    shadow = model.clone()
    for parameter, value in zip(shadow.parameters, values):
        shadow.backend.copy_into(parameter.value, np.ascontiguousarray(
            value, dtype=parameter.value.dtype))
    return shadow


def adopt(model, imported, reader, paths, missing=None) -> list[str]:
    """Set the compiled ``model``'s optimiser state from the datasets at ``paths`` (Keras's
    optimiser variables in Keras's order, None when the file has none) when they match it;
    the notes (a warning each) otherwise. Every shape is checked before anything is set.

    ``missing``: where the file keeps the state when its format always holds one for a
    compiled model (a ``.keras`` archive; a legacy file saved with
    ``include_optimizer=False`` has none by choice): without it the state is lost, which
    is said, as Keras says it."""
    from dlcore.io import keras, keras_weights
    names = _exchanged_slots(model)
    if names is None:    # a functional model's starts afresh (docstring)
        return []
    if paths is None:
        if missing is None:
            return []
        return [f"it holds no optimizer state ({missing}): dlcore's {model.optimizer.name} "
                f"starts afresh (update count 0, its slots zero), so training resumed from "
                f"it does not go on as the run that saved it would have"]
    optimizer = model.optimizer
    rate, stored_rate = _learning_rate_now(optimizer)
    by_name = {layer.name: layer for layer in model.flat_layers}
    # the trainable arrays only (first in Keras's order): a BatchNormalization's moving
    # statistics have no optimiser variables
    shapes = [(layer_name, keras.keras_shapes(by_name[layer_name])[
                   :len(by_name[layer_name].weight_names)])
              for layer_name, _ in keras_weights.layer_paths(imported.config)
              if layer_name in imported.converters and model._trains(by_name[layer_name])]
    scalars = len(_trailing_scalars(optimizer, 0))
    count = 1 + stored_rate + len(names) * sum(len(layer_shapes) for _, layer_shapes in shapes) \
        + scalars
    if len(paths) == 1 + stored_rate and count > len(paths):
        return []   # an optimiser Keras never built (compiled, not trained): nothing to carry
    if len(paths) != count:
        return [f"the optimizer's state in the file has {len(paths)} variables where "
                f"dlcore's {optimizer.name} of this model has {count}: it starts afresh"]
    iterations = int(reader.read_dataset(paths[0], (), kinds="iu"))
    if iterations < 0:
        raise reader.error(f"the optimizer's update count is {iterations}")
    if stored_rate:
        rate = float(reader.read_dataset(paths[1], ()))
        if rate <= 0:
            raise reader.error(f"the optimizer's learning rate is {rate}")
    else:   # the schedule's rate at the update count read, which scaled the momenta written
        rate = _learning_rate_now(optimizer, iterations)[0]
    position = 1 + stored_rate
    keras_slots = {name: {} for name in names}
    for group in _groups(names):
        for layer_name, layer_shapes in shapes:
            for shape in layer_shapes:
                for name in group:
                    array = reader.read_dataset(paths[position], shape)
                    problem = optimizer.slot_problem(name, array)
                    if problem:
                        raise reader.error(f"dataset '{paths[position]}' ({optimizer.name}'s "
                                           f"{name} of layer '{layer_name}') {problem}")
                    keras_slots[name].setdefault(layer_name, []).append(array)
                    position += 1
    for layer_name, layer_shapes in shapes:
        # the layer's state (a BatchNormalization's moving statistics) completes its arrays
        state = by_name[layer_name].get_weights()[len(layer_shapes):]
        for name in names:
            keras_slots[name].setdefault(layer_name, []).extend(state)
    slots = {}
    trained = {parameter.key for parameter in model.trainable_parameters}
    for name in optimizer.state_slot_names:
        if name in names:
            shadow = model.clone()
            keras.set_weights(shadow, imported, keras_slots[name])
            values = [np.array(shadow.backend.to_numpy(parameter.value))
                      for parameter in shadow.parameters]
            if name == "velocity" and optimizer.momentum_form != "keras":
                values = [-value / rate for value in values]   # dlcore's Delta = -v / eta
            if name == "momentum" and optimizer.epsilon_form != "keras":
                values = [value / rate for value in values]    # RMSprop's b = Keras's / eta
        else:
            values = [np.zeros(parameter.value.shape, np.float32)
                      for parameter in model.parameters]
        # a frozen layer has no variables in Keras: its slots start at zero
        slots.update({(parameter.key, name): value if parameter.key in trained
                      else np.zeros(parameter.value.shape, np.float32)
                      for parameter, value in zip(model.parameters, values)})
    for parameter in model.parameters:
        problem = optimizer.slots_problem({name: slots[(parameter.key, name)]
                                           for name in optimizer.state_slot_names})
        if problem:
            raise reader.error(f"the optimizer's variables of {parameter.key}: {problem}")
    optimizer.build(model.parameters, model.backend)
    model._adopt_optimizer_state(iterations, slots)
    return []
