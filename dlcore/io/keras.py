"""Keras's legacy HDF5 files: export dlcore models to Keras, import Keras models.

Sequential models map onto Sequential models, functional ones (``dlcore.Model``) onto Keras's
``Functional`` (layers with their ``inbound_nodes``; a shared layer once, a node per call).

A Keras HDF5 model file (``keras.Model.save("m.h5")``, the layout lecture "Deep learning I"
shows for Keras) holds the architecture as JSON in the root attribute ``model_config``, the
root attributes ``keras_version`` and ``backend``, and the weights in the group
``model_weights``: its attribute ``layer_names`` lists every layer, and each layer's group lists
its arrays in the attribute ``weight_names`` (paths inside that group, such as
``sequential/dense/kernel``). A weights file (``save_weights``) has the same layout at its root.
The mapping between dlcore's layers and Keras's is documented in docs/hdf5-format.md ("Keras
files").

dlcore's images are NCHW; Keras's default (and the only layout every Keras backend runs on a
CPU) is NHWC (``channels_last``). So:

- a Conv2D kernel (filters, channels, kh, kw) is stored as Keras's HWIO (kh, kw, channels,
  filters);
- the first Dense after a Flatten of a (C, H, W) image gets its rows permuted from C,H,W order to
  H,W,C order (Keras flattens NHWC maps): without this the file loads and predicts wrong;
- an integer padding P becomes ``ZeroPadding2D(P)`` followed by a ``valid`` convolution.

Import reads every byte through :class:`dlcore.io.guarded.ModelFileReader` and builds only the
layers named in :data:`IMPORTED_LAYERS`; anything else (``Lambda`` and any serialized Python
code above all: it is refused, never run), ``channels_first``, dilation, groups or a ``same``
padding Keras makes unequal (one more row at the bottom) is refused with one line naming the
layer, before any model is built. Imported convolutions and pools set the explicit ``floor``
option of dlcore's layers, so that Keras's geometry holds: ``valid`` drops the remainder.
"""
from __future__ import annotations

import json
import os

import h5py
import numpy as np

from dlcore.io.atomic import atomic_output_path
from dlcore.io.errors import ModelFileError
from dlcore.io.guarded import MAX_OBJECTS, ModelFileReader, parse_json, shape_text

#: The Keras version whose legacy HDF5 layout dlcore writes (and checked its files against).
KERAS_VERSION = "3.15.1"
#: What ``backend`` says in a file dlcore writes (the arrays are backend-independent).
KERAS_BACKEND = "dlcore"
#: The Keras layers dlcore imports.
IMPORTED_LAYERS = ("InputLayer", "Dense", "Conv2D", "MaxPooling2D", "AveragePooling2D",
                   "Flatten", "Dropout", "GaussianNoise", "ZeroPadding2D", "Activation", "ReLU",
                   "Softmax")
#: The Keras names of dlcore's activations.
_ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "softmax")
#: The most numbers one sample may have at any layer of an imported model (a hostile config must
#: not make dlcore allocate without bound: 2**24 floats are 64 MiB per sample).
MAX_UNITS = 2**24
#: The most parameters a model built from JSON alone may have (a file's arrays must also fit in
#: the file itself).
MAX_PARAMETERS = 2**27
#: The longest name read from a ``layer_names`` or ``weight_names`` attribute.
_MAX_NAME = 1_000
_SUPPORTED = ", ".join(IMPORTED_LAYERS[1:])


# --------------------------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------------------------
class _Exported:
    """A dlcore Sequential as Keras layer configs and weight arrays (in Keras's layout)."""

    def __init__(self, model):
        from dlcore import Model, Sequential
        if not isinstance(model, Model):
            raise TypeError(f"format='keras' writes a dlcore.Sequential or dlcore.Model; got "
                            f"{type(model).__name__}")
        model._require_built()
        self.name = model.name
        self.notes = []
        self.functional = not isinstance(model, Sequential)
        if self.functional:
            self._graph(model)
            return
        self.layers = [{"class_name": "InputLayer",
                        "config": {"batch_shape": [None, *_nhwc(model.input_shape)],
                                   "dtype": "float32", "name": "input_layer"}}]
        self.weights = {}   # Keras layer name -> [arrays]
        self._flattened = None
        for layer in model.layers:
            self._add(layer)

    def _add(self, layer):
        kind = type(layer).__name__
        if kind == "Conv2D":
            self._conv(layer)
        elif kind == "Dense":
            kernel, *bias = layer.get_weights()
            if self._flattened is not None:
                channels, height, width = self._flattened
                kernel = (kernel.reshape(channels, height, width, -1).transpose(1, 2, 0, 3)
                          .reshape(kernel.shape))
            self._flattened = None
            self.layers.append(_layer("Dense", layer.name, units=layer.units,
                                      activation=layer.activation, use_bias=layer.use_bias))
            self.weights[layer.name] = [kernel, *bias]
        elif kind in ("MaxPool2D", "AvgPool2D"):
            self.layers.append(_layer({"MaxPool2D": "MaxPooling2D",
                                       "AvgPool2D": "AveragePooling2D"}[kind], layer.name,
                                      pool_size=list(layer.pool_size),
                                      strides=list(layer.stride), padding="valid",
                                      data_format="channels_last"))
        elif kind == "Flatten":
            shape = tuple(layer.input_shape)
            self._flattened = shape if len(shape) == 3 else None
            self.layers.append(_layer("Flatten", layer.name, data_format="channels_last"))
        elif kind == "Dropout":
            self.layers.append(_layer("Dropout", layer.name, rate=layer.rate))
        elif kind == "GaussianNoise":
            self.layers.append(_layer("GaussianNoise", layer.name, stddev=layer.stddev))
        elif kind in ("Activation", "ReLU", "Sigmoid", "Tanh", "Softmax"):
            self.layers.append(_layer("Activation", layer.name, activation=layer.activation))
        elif kind == "ImageAugmentation":
            self.notes.append(f"layer {layer.name!r} (ImageAugmentation, the identity at "
                              f"inference) is left out of the Keras file")
        else:
            raise ValueError(f"layer {layer.name!r} ({kind}) has no Keras equivalent; "
                             f"format='keras' writes Dense, Conv2D, MaxPool2D, AvgPool2D, "
                             f"Flatten, Dropout, GaussianNoise and activation layers")

    def _conv(self, layer):
        padding = layer.padding
        if not isinstance(padding, str) or layer.floor:   # floor: 'same' as its integers
            pad_h, pad_w = layer.window.pad_height, layer.window.pad_width
            if pad_h or pad_w:
                self.layers.append(_layer("ZeroPadding2D", f"{layer.name}_padding",
                                          padding=[[pad_h, pad_h], [pad_w, pad_w]],
                                          data_format="channels_last"))
            padding = "valid"
        # dlcore's "same" fits exactly (odd kernel, (N - 1) / S whole), where Keras's "same"
        # pads (F - 1) / 2 on both sides too.
        self.layers.append(_layer("Conv2D", layer.name, filters=layer.filters,
                                  kernel_size=list(layer.kernel_size),
                                  strides=list(layer.stride), padding=padding,
                                  data_format="channels_last", dilation_rate=[1, 1], groups=1,
                                  activation=layer.activation, use_bias=layer.use_bias))
        kernel, *bias = layer.get_weights()
        self.weights[layer.name] = [kernel.transpose(2, 3, 1, 0), *bias]
        self._flattened = None

    def _graph(self, model):
        """A functional model: each node of the graph as a Keras inbound node."""
        self.layers, self.weights, self._flattened = [], {}, None
        refs, flat_from, entries_of, calls, dense_flattened = {}, {}, {}, {}, {}
        for index, tensor in enumerate(model.inputs):
            name = model.input_names[index]
            self.layers.append({"class_name": "InputLayer", "name": name, "inbound_nodes": [],
                                "config": {"batch_shape": [None, *_nhwc(tensor.shape)],
                                           "dtype": "float32", "name": name}})
            refs[id(tensor)] = (name, 0, tensor.shape)
        for node in model.nodes:
            layer, inputs = node.layer, node.inputs
            kind = type(layer).__name__
            first = inputs[0]
            if kind == "Dense":
                _check_one_row_order(layer.name, dense_flattened.setdefault(
                    id(layer), flat_from.get(id(first))), flat_from.get(id(first)))
            if id(layer) not in entries_of:
                before = len(self.layers)
                self._flattened = flat_from.get(id(first))
                if kind in ("Add", "Concatenate"):
                    config = {} if kind == "Add" else {"axis": _keras_axis(layer.axis,
                                                                           len(first.shape))}
                    self.layers.append(_layer(kind, layer.name, **config))
                else:
                    self._add(layer)
                entries_of[id(layer)] = self.layers[before:]
            if kind == "Flatten":
                flat_from[id(node.output)] = first.shape if len(first.shape) == 3 else None
            elif kind in ("Dropout", "GaussianNoise", "Activation", "ReLU", "Sigmoid", "Tanh",
                          "Softmax") and id(first) in flat_from:
                flat_from[id(node.output)] = flat_from[id(first)]
            arg = [_tensor_ref(refs[id(t)]) for t in inputs] if node.takes_list \
                else _tensor_ref(refs[id(first)])
            entries = entries_of[id(layer)]
            if not entries:   # left out (augmentation): the identity
                refs[id(node.output)] = refs[id(first)]
                continue
            for position, entry in enumerate(entries):
                name = entry["config"]["name"]
                entry["name"] = name
                entry.setdefault("inbound_nodes", []).append({"args": [arg], "kwargs": {}})
                calls[name] = calls.get(name, -1) + 1
                shape = node.output.shape
                if position < len(entries) - 1:   # a ZeroPadding2D before its convolution
                    pad_h, pad_w = (p[0] for p in entry["config"]["padding"])
                    shape = (first.shape[0], first.shape[1] + 2 * pad_h,
                             first.shape[2] + 2 * pad_w)
                arg = _tensor_ref((name, calls[name], shape))
            refs[id(node.output)] = (entries[-1]["config"]["name"],
                                     calls[entries[-1]["config"]["name"]], node.output.shape)
        self._inputs = [[refs[id(t)][0], refs[id(t)][1], 0] for t in model.inputs]
        self._outputs = [[refs[id(t)][0], refs[id(t)][1], 0] for t in model.outputs]

    def model_config(self):
        if self.functional:
            return {"class_name": "Functional",
                    "config": {"name": self.name, "trainable": True, "layers": self.layers,
                               "input_layers": self._inputs if len(self._inputs) > 1
                               else self._inputs[0],
                               "output_layers": self._outputs if len(self._outputs) > 1
                               else self._outputs[0]}}
        return {"class_name": "Sequential",
                "config": {"name": self.name, "trainable": True, "layers": self.layers,
                           "build_input_shape": self.layers[0]["config"]["batch_shape"]}}


def _check_one_row_order(name, first_flattened, flattened):
    """A shared Dense must see one input layout: the (C, H, W) maps it was first called on
    flattened (its rows are permuted to Keras's H, W, C order for those), or none. Inputs
    flattened from other maps would need other rows, which no one Keras kernel has."""
    if first_flattened != flattened:
        raise ValueError(f"layer {name!r} (Dense) is shared by inputs flattened from "
                         f"different maps ({first_flattened} and {flattened}): Keras's "
                         "channels-last rows differ between them, so no one kernel serves both")

def _tensor_ref(ref):
    name, node_index, shape = ref
    return {"class_name": "__keras_tensor__",
            "config": {"shape": [None, *_nhwc(shape)], "dtype": "float32",
                       "keras_history": [name, node_index, 0]}}


def _keras_axis(axis, rank):
    """dlcore's NCHW (or rows') axis of a Concatenate as Keras's NHWC one."""
    axis = axis if axis > 0 else axis + rank + 1
    if rank == 3:
        return {1: -1, 2: 1, 3: 2}[axis]
    return -1


def _layer(class_name, name, **config):
    if name is not None:
        config = {"name": name, "trainable": True, **config}
    return {"class_name": class_name, "config": config}


def _nhwc(shape):
    shape = tuple(int(v) for v in shape)
    return [shape[1], shape[2], shape[0]] if len(shape) == 3 else list(shape)


def to_json(model) -> str:
    """The Keras ``model_config`` JSON of a built dlcore Sequential or Model
    (``model.to_json()``)."""
    return json.dumps(_Exported(model).model_config())


def _write_weights(group: h5py.Group, exported: _Exported) -> None:
    names = [entry["config"]["name"] for entry in exported.layers
             if entry["class_name"] != "InputLayer"]
    _string_list_attribute(group, "layer_names", names)
    group.attrs["backend"] = KERAS_BACKEND
    group.attrs["keras_version"] = KERAS_VERSION
    for name in names:
        layer_group = group.create_group(name)
        arrays = exported.weights.get(name, [])
        paths = [f"{exported.name}/{name}/{weight}" for weight in ("kernel", "bias")[:len(arrays)]]
        _string_list_attribute(layer_group, "weight_names", paths)
        for path, array in zip(paths, arrays):
            layer_group.create_dataset(path, data=np.ascontiguousarray(array, dtype=np.float32))


def _string_list_attribute(group, name, values):
    if values:
        group.attrs.create(name, np.array(values, dtype=h5py.string_dtype()))
    else:
        group.attrs[name] = np.zeros(0)   # what Keras itself writes for an empty list


def save_keras(model, path: str | os.PathLike) -> list[str]:
    """Write ``model`` (a built Sequential) as a Keras legacy HDF5 model file, atomically.

    Returns the notes (layers left out); raises ValueError naming a layer without a Keras
    equivalent (L2Pool2D) and TypeError for anything but a Sequential, before writing.
    """
    exported = _Exported(model)
    config = json.dumps(exported.model_config())
    with atomic_output_path(path) as temporary, h5py.File(temporary, "w") as h5file:
        h5file.attrs["model_config"] = config
        h5file.attrs["keras_version"] = KERAS_VERSION
        h5file.attrs["backend"] = KERAS_BACKEND
        _write_weights(h5file.create_group("model_weights"), exported)
        h5file.flush()
    return exported.notes


def save_weights(model, path: str | os.PathLike) -> None:
    """``model.save_weights(path)``: Keras's HDF5 weights layout (``layer_names`` at the root,
    a group per layer with ``weight_names``), kernels in Keras's NHWC order."""
    exported = _Exported(model)
    with atomic_output_path(path) as temporary, h5py.File(temporary, "w") as h5file:
        _write_weights(h5file, exported)
        h5file.flush()


# --------------------------------------------------------------------------------------------
# import
# --------------------------------------------------------------------------------------------
def is_keras_file(h5file: h5py.File) -> bool:
    """Whether an open HDF5 file is a Keras model file (a ``model_config`` root attribute and no
    dlcore ``format``)."""
    return "model_config" in h5file.attrs and "format" not in h5file.attrs


def _config_error(filename, problem):
    return ModelFileError(filename, f"{filename}: {problem}")


class _Imported:
    """The dlcore layers of a Keras Sequential config, and how to turn its arrays into
    dlcore's (a function per Keras layer with weights)."""

    graph = False

    def __init__(self, config, filename):
        self.filename = filename
        if not isinstance(config, dict) or config.get("class_name") != "Sequential" \
                or not isinstance(config.get("config"), dict):
            kind = config.get("class_name") if isinstance(config, dict) else None
            raise _config_error(filename, f"the Keras model is a {str(kind)[:60]!r}; dlcore "
                                          f"imports Keras Sequential and Functional models")
        body = config["config"]
        entries = body.get("layers")
        if not isinstance(entries, list) or not entries or len(entries) > MAX_OBJECTS:
            raise _config_error(filename, "the Keras model_config lists no layers")
        self.name = body.get("name") if isinstance(body.get("name"), str) else "sequential"
        self.input_shape = self._batch_shape(body.get("build_input_shape"))
        self.layers = []          # dlcore layers
        self.converters = {}      # Keras layer name -> (dlcore layer name, function on arrays)
        self.keras_names = []
        self._padding = None
        self._current = None
        self.n_parameters = 0
        for entry in entries:
            self._add(entry)
        if self._padding is not None:
            raise self._unsupported(self._padding[0], "ZeroPadding2D",
                                    "a ZeroPadding2D must be followed by a 'valid' Conv2D")
        if self.input_shape is None:
            raise _config_error(self.filename, "the Keras model does not say its input shape "
                                               "(no InputLayer or batch_shape)")

    def _unsupported(self, name, kind, why=None):
        why = why or (f"dlcore imports {_SUPPORTED}" + (
            "; a Lambda layer holds Python code, which dlcore never runs" if kind == "Lambda"
            else ""))
        return _config_error(self.filename, f"Keras layer {str(name)[:80]!r} ({str(kind)[:60]}) "
                                            f"cannot be imported: {why}")

    def _batch_shape(self, value):
        if value is None:
            return None
        if not isinstance(value, list) or len(value) not in (2, 4) or any(
                isinstance(v, bool) or not isinstance(v, int) or not 0 < v < 2**31
                for v in value[1:]):
            raise _config_error(self.filename, f"the Keras input shape {str(value)[:80]} is not "
                                               f"(batch, features) or (batch, H, W, C) of "
                                               f"positive integers")
        shape = tuple(value[1:])
        return (shape[2], shape[0], shape[1]) if len(shape) == 3 else shape

    def _add(self, entry):
        from dlcore import layers

        if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
            raise _config_error(self.filename, "a layer of the Keras model_config is not an "
                                               "object with a config")
        kind, config = entry.get("class_name"), entry["config"]
        name = config.get("name")
        if not isinstance(name, str) or not name or "/" in name or len(name) > _MAX_NAME:
            raise _config_error(self.filename, f"a Keras {str(kind)[:60]} layer has the invalid "
                                               f"name {str(name)[:80]!r}")
        if kind not in IMPORTED_LAYERS or entry.get("registered_name") not in (None, kind) or \
                entry.get("module") not in (None, "keras.layers"):
            raise self._unsupported(name, kind)
        if config.get("data_format", "channels_last") != "channels_last":
            raise self._unsupported(name, kind, "only channels_last (Keras's default) is "
                                                "imported")
        shape = config.get("batch_shape", config.get("batch_input_shape"))
        if kind == "InputLayer" or shape is not None:
            self.input_shape = self._batch_shape(shape)
            if kind == "InputLayer":
                return
        if self._padding is not None and kind != "Conv2D":
            raise self._unsupported(self._padding[0], "ZeroPadding2D",
                                    "a ZeroPadding2D must be followed by a 'valid' Conv2D")
        self.keras_names.append(name)
        try:
            layer = self._layer(kind, name, config, layers)
            if layer is not None and self.input_shape is not None:
                # Keras's geometry holds exactly where dlcore's layers tile their input
                # ('valid' and pools without remainder, 'same' with (N - 1) / S whole); the
                # first layer whose geometry does not is named here.
                if self._current is None:
                    self._current = self._checked_shape(self.input_shape)
                self.n_parameters += _parameter_count(layer, self._current)
                self._current = self._checked_shape(layer.compute_output_shape(self._current))
        except (ValueError, TypeError) as error:
            raise self._unsupported(name, kind, str(error).split("\n")[0][:300]) from None
        if layer is not None:
            self.layers.append(layer)

    def _checked_shape(self, shape):
        size = 1
        for length in shape:
            size *= int(length)
        if size > MAX_UNITS:
            raise ValueError(f"a sample of shape {shape_text(shape)} has more than {MAX_UNITS} "
                             f"numbers")
        return tuple(shape)

    def _same_padding(self, kernel, strides):
        """Keras's 'same' on this layer's input as dlcore's integer padding: Keras pads
        max((out - 1) S + F - N, 0) in all, out = ceil(N / S), half on each side and the odd one
        at the bottom/right; dlcore's layers pad equally, so an odd total is refused."""
        shape = self._current or self.input_shape
        if shape is None or len(shape) != 3:
            raise ValueError("padding='same' needs (height, width, channels) inputs")
        padding = []
        for n, k, s in zip(shape[1:], kernel, strides):
            total = max((-(-n // s) - 1) * s + k - n, 0)
            if total % 2:
                raise ValueError(f"padding='same' pads {total} rows or columns here, one more "
                                 f"at the bottom/right (Keras's rule for a stride above 1 or an "
                                 f"even kernel), which dlcore's layers cannot do yet")
            padding.append(total // 2)
        return padding

    def _activation(self, config):
        activation = config.get("activation", "linear")
        if activation is None:
            activation = "linear"
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation {str(activation)[:60]!r} is not one of "
                             f"{', '.join(_ACTIVATIONS)}")
        return activation

    def _layer(self, kind, name, config, layers):
        if kind == "ZeroPadding2D":
            padding = config.get("padding")
            if isinstance(padding, int):
                padding = [[padding, padding], [padding, padding]]
            if not (isinstance(padding, list) and len(padding) == 2 and all(
                    isinstance(p, list) and len(p) == 2 and p[0] == p[1]
                    and isinstance(p[0], int) and not isinstance(p[0], bool) and 0 <= p[0] < 2**20
                    for p in padding)):
                raise ValueError("only a padding equal on both sides of each axis is imported")
            self._padding = (name, (padding[0][0], padding[1][0]))
            return None
        if kind == "Conv2D":
            padding = config.get("padding", "valid")
            if self._padding is not None:
                if padding != "valid":
                    raise ValueError("a ZeroPadding2D must be followed by a 'valid' Conv2D")
                padding = list(self._padding[1])
                self._padding = None
            if _pair(config.get("dilation_rate", 1)) != (1, 1) or config.get("groups", 1) != 1:
                raise ValueError("dilation and grouped convolutions are not imported")
            use_bias = config.get("use_bias", True)
            kernel, strides = _pair(config.get("kernel_size")), _pair(config.get("strides", 1))
            if padding == "same":
                padding = self._same_padding(kernel, strides)
            layer = layers.Conv2D(config.get("filters"), kernel, stride=strides,
                                  padding=padding, activation=self._activation(config),
                                  use_bias=use_bias, name=name, floor=True)
            self.converters[name] = (name, lambda arrays: [arrays[0].transpose(3, 2, 0, 1),
                                                           *arrays[1:]])
            return layer
        if kind == "Dense":
            layer = layers.Dense(config.get("units"), activation=self._activation(config),
                                 use_bias=config.get("use_bias", True), name=name)
            self.converters[name] = (name, _dense_converter())
            return layer
        if kind in ("MaxPooling2D", "AveragePooling2D"):
            if config.get("padding", "valid") != "valid":
                raise ValueError("only 'valid' pooling is imported")
            strides = config.get("strides")
            cls = layers.MaxPool2D if kind == "MaxPooling2D" else layers.AvgPool2D
            return cls(_pair(config.get("pool_size", 2)),
                       stride=None if strides is None else _pair(strides), name=name,
                       floor=True)
        if kind == "Flatten":
            return layers.Flatten(name=name)
        if kind == "Dropout":
            if config.get("noise_shape") is not None:
                raise ValueError("a Dropout with a noise_shape is not imported")
            return layers.Dropout(config.get("rate"), name=name)
        if kind == "GaussianNoise":
            return layers.GaussianNoise(config.get("stddev"), name=name)
        if kind == "Activation":
            return layers.Activation(self._activation(config), name=name)
        if kind == "ReLU":
            if any(config.get(key) not in (None, default) for key, default in
                   (("max_value", None), ("negative_slope", 0.0), ("threshold", 0.0))):
                raise ValueError("only the plain ReLU (no max_value, slope or threshold) is "
                                 "imported")
            return layers.ReLU(name=name)
        if config.get("axis", -1) not in (-1, [-1]):
            raise ValueError("only a softmax over the last axis is imported")
        return layers.Softmax(name=name)


class _FunctionalImported(_Imported):
    """A Keras functional model (``class_name`` Functional): its layers called on tensors as
    ``inbound_nodes`` say (Keras 3's form), shared layers and several inputs and outputs
    included; builds a :class:`dlcore.Model`."""

    graph = True
    _IDENTITY = ("Dropout", "GaussianNoise", "Activation", "ReLU", "Softmax")

    def __init__(self, config, filename):   # noqa: C901 - one walk over the graph
        from dlcore import Input
        from dlcore.layers import Add, Concatenate
        self.filename = filename
        body = config.get("config")
        entries = body.get("layers") if isinstance(body, dict) else None
        if not isinstance(entries, list) or not entries or len(entries) > MAX_OBJECTS:
            raise _config_error(filename, "the Keras model_config lists no layers")
        self.name = body.get("name") if isinstance(body.get("name"), str) else "model"
        self.converters, self.keras_names, self.dense_inputs = {}, [], {}
        self.n_parameters, self._padding, self.input_shape = 0, None, None
        tensors, flat_from, built = {}, {}, {}
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
                raise _config_error(filename, "a layer of the Keras model_config is not an "
                                              "object with a config")
            kind, layer_config = entry.get("class_name"), entry["config"]
            name = layer_config.get("name")
            if not isinstance(name, str) or not name or "/" in name or len(name) > _MAX_NAME:
                raise _config_error(filename, f"a Keras {str(kind)[:60]} layer has the "
                                              f"invalid name {str(name)[:80]!r}")
            if kind not in IMPORTED_LAYERS + ("Add", "Concatenate") \
                    or entry.get("module") not in (None, "keras.layers") \
                    or entry.get("registered_name") not in (None, kind):
                raise self._unsupported(name, kind)
            if layer_config.get("data_format", "channels_last") != "channels_last":
                raise self._unsupported(name, kind, "only channels_last (Keras's default) is "
                                                    "imported")
            if kind == "InputLayer":
                shape = self._batch_shape(layer_config.get("batch_shape",
                                                           layer_config.get("batch_input_shape")))
                if shape is None:
                    raise self._unsupported(name, kind, "it has no batch_shape")
                try:
                    tensors[(name, 0)] = Input(self._checked_shape(shape), name=name)
                except ValueError as error:
                    raise self._unsupported(name, kind, str(error)[:300]) from None
                continue
            nodes = entry.get("inbound_nodes")
            if not isinstance(nodes, list) or not nodes or len(nodes) > MAX_OBJECTS:
                raise self._unsupported(name, kind, "its inbound_nodes are not Keras 3's list")
            self.keras_names.append(name)
            for index, node in enumerate(nodes):
                try:
                    inputs = self._node_inputs(node, tensors)
                    if kind == "ZeroPadding2D":   # merged into the convolution it feeds
                        self._layer(kind, name, layer_config, None)
                        tensors[(name, index)] = _Padded(inputs, self._padding)
                        self._padding = None
                        continue
                    padded = [t for t in (inputs if isinstance(inputs, list) else [inputs])
                              if isinstance(t, _Padded)]
                    if padded and (kind != "Conv2D" or isinstance(inputs, list)):
                        raise ValueError("a ZeroPadding2D must be followed by a 'valid' Conv2D")
                    if padded:
                        if name in built and tuple(built[name]._padding) != padded[0].padding[1]:
                            raise ValueError("a shared Conv2D takes one padding")
                        self._padding = padded[0].padding if name not in built else None
                        inputs = padded[0].tensor
                    first = inputs[0] if isinstance(inputs, list) else inputs
                    if name not in built:
                        self._current = first.shape
                        if kind == "Add":
                            built[name] = Add(name=name)
                        elif kind == "Concatenate":
                            built[name] = Concatenate(self._axis(layer_config.get("axis", -1),
                                                                 len(first.shape)), name=name)
                        else:
                            from dlcore import layers
                            built[name] = self._layer(kind, name, layer_config, layers)
                        if not isinstance(inputs, list):
                            self.n_parameters += _parameter_count(built[name], first.shape)
                    output = built[name](inputs)
                    self._checked_shape(output.shape)
                except (ValueError, TypeError, KeyError) as error:
                    raise self._unsupported(name, kind, str(error).split("\n")[0][:300]) \
                        from None
                tensors[(name, index)] = output
                if kind == "Flatten":
                    flat_from[id(output)] = first.shape if len(first.shape) == 3 else None
                elif kind in self._IDENTITY and id(first) in flat_from:
                    flat_from[id(output)] = flat_from[id(first)]
                elif kind == "Dense":
                    try:
                        _check_one_row_order(name, self.dense_inputs.get(
                            name, flat_from.get(id(first))), flat_from.get(id(first)))
                    except ValueError as error:
                        raise self._unsupported(name, kind, str(error)) from None
                    self.dense_inputs[name] = flat_from.get(id(first))
        self.inputs = [self._tensor(ref, tensors) for ref in _references(body.get("input_layers"))]
        self.outputs = [self._tensor(ref, tensors)
                        for ref in _references(body.get("output_layers"))]

    def _tensor(self, reference, tensors):
        key = (reference[0], reference[1]) if isinstance(reference, list) and \
            len(reference) == 3 else None
        if key not in tensors or isinstance(tensors[key], _Padded):
            raise _config_error(self.filename, f"the Keras model names the tensor "
                                               f"{str(reference)[:80]}, which no layer makes")
        return tensors[key]

    def _node_inputs(self, node, tensors):
        args = node.get("args") if isinstance(node, dict) else None
        if not isinstance(args, list) or len(args) != 1:
            raise ValueError("its inbound_nodes are not Keras 3's (one argument of tensors)")
        arg = args[0]
        if isinstance(arg, list):
            if not arg or len(arg) > 64:
                raise ValueError("it takes an empty or too long list of tensors")
            return [self._history(item, tensors) for item in arg]
        return self._history(arg, tensors)

    def _history(self, item, tensors):
        history = item.get("config", {}).get("keras_history") if isinstance(item, dict) and \
            item.get("class_name") == "__keras_tensor__" else None
        if not isinstance(history, list) or len(history) != 3 or history[2] != 0:
            raise ValueError("an input is not a Keras tensor of one layer's output")
        key = (history[0], history[1])
        if key not in tensors:
            raise ValueError(f"its input {str(history)[:80]} is made by no earlier layer")
        return tensors[key]

    @staticmethod
    def _axis(axis, rank):
        """Keras's NHWC (or rows') axis as dlcore's NCHW one."""
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise ValueError(f"Concatenate's axis {str(axis)[:40]} is not an integer")
        axis = axis + rank + 1 if axis < 0 else axis
        if rank == 3 and axis in (1, 2, 3):
            return {1: 2, 2: 3, 3: 1}[axis]
        if rank == 1 and axis == 1:
            return 1
        raise ValueError(f"Concatenate's axis {axis} does not fit tensors of rank {rank}")


class _Padded:
    """A ZeroPadding2D's output in a graph: its input and padding, for the Conv2D it feeds."""

    def __init__(self, tensor, padding):
        if not hasattr(tensor, "shape"):
            raise ValueError("a ZeroPadding2D takes one tensor")
        self.tensor, self.padding = tensor, padding


def _references(value):
    """Keras's ``input_layers``/``output_layers``: ``[name, 0, 0]`` or a list of them."""
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        return [value]
    if isinstance(value, list) and 0 < len(value) <= 64:
        return value
    return [value]


def _parameter_count(layer, input_shape):
    """The number of parameters ``layer`` will create on ``input_shape`` (before it does)."""
    kind = type(layer).__name__
    if kind == "Dense":
        inputs = 1
        for length in input_shape:
            inputs *= int(length)
        return (inputs + layer.use_bias) * layer.units
    if kind == "Conv2D":
        kh, kw = layer.kernel_size
        return (input_shape[0] * kh * kw + layer.use_bias) * layer.filters
    return 0


def _pair(value):
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value)
    if isinstance(value, list) and len(value) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) and 0 < v < 2**20 for v in value):
        return tuple(value)
    raise ValueError(f"{str(value)[:60]} is not a positive integer or a pair of them")


def _dense_converter():
    def convert(arrays, shape=None):
        kernel, *bias = arrays
        if shape is not None:
            channels, height, width = shape
            kernel = (kernel.reshape(height, width, channels, -1).transpose(2, 0, 1, 3)
                      .reshape(kernel.shape))
        return [kernel, *bias]
    return convert


def model_from_config(config, filename="<json>", file_size=None):
    """A built dlcore Sequential (fresh weights) from a Keras model config, and the
    :class:`_Imported` that says how to convert Keras's arrays. With ``file_size`` the
    parameters must fit in the file (4 bytes each) before any is created."""
    from dlcore import Model, Sequential
    functional = isinstance(config, dict) and config.get("class_name") in ("Functional",
                                                                           "Model")
    imported = (_FunctionalImported if functional else _Imported)(config, filename)
    limit = MAX_PARAMETERS if file_size is None else file_size // 4
    if imported.n_parameters > limit:
        raise _config_error(filename, f"the Keras model_config declares {imported.n_parameters} "
                                      f"parameters, more than "
                                      f"{'this file can hold' if file_size else limit}; the "
                                      f"file is damaged or hostile")
    try:
        if functional:
            model = Model(imported.inputs if len(imported.inputs) > 1 else imported.inputs[0],
                          imported.outputs if len(imported.outputs) > 1 else imported.outputs[0],
                          name=imported.name if "/" not in imported.name else None)
        else:
            model = Sequential(imported.layers, input_shape=imported.input_shape,
                               name=imported.name if "/" not in imported.name else None)
    except (ValueError, TypeError) as error:
        raise _config_error(filename, f"the Keras model does not build in dlcore: "
                                      f"{str(error).splitlines()[0][:300]}") from None
    return model, imported


def model_from_json(text: str):
    """``dlcore.models.model_from_json``: a dlcore Sequential or Model from Keras's ``to_json()``
    text (weights freshly initialised); ModelFileError naming what cannot be imported."""
    try:
        config = parse_json(text)
    except ValueError as error:
        raise _config_error("<json>", f"the Keras model JSON is not valid: {error}") from None
    return model_from_config(config)[0]


def _string_list(reader: ModelFileReader, owner, name: str, where: str) -> list[str]:
    """A Keras list-of-names attribute (possibly split as ``name0``, ``name1``, ... as Keras
    does above 64 KiB), each name checked, bounded in count and length."""
    keys = [name] if name in owner.attrs else []
    while not keys or f"{name}{len(keys) - 1}" in owner.attrs:
        if f"{name}{len(keys)}" not in owner.attrs:
            break
        keys.append(f"{name}{len(keys)}")
        if len(keys) > 1_000:
            raise reader.error(f"attribute '{name}' of '{where}' is split in too many chunks")
    if not keys:
        raise reader.error(f"attribute '{name}' of '{where}' is missing (not a Keras file?)")
    names = []
    for key in keys:
        attribute_id = owner.attrs.get_id(key)
        space = attribute_id.get_space()
        count = (0 if space.get_simple_extent_type() == h5py.h5s.NULL
                 else space.get_simple_extent_npoints())
        if count == 0:
            continue
        if count > MAX_OBJECTS or len(attribute_id.shape or ()) != 1 or \
                h5py.check_string_dtype(attribute_id.dtype) is None:
            raise reader.error(f"attribute '{key}' of '{where}' should be a list of names; "
                               f"found shape {shape_text(attribute_id.shape or ())} of "
                               f"{attribute_id.dtype}")
        if h5py.check_string_dtype(attribute_id.dtype).length is not None and \
                h5py.check_string_dtype(attribute_id.dtype).length > _MAX_NAME:
            raise reader.error(f"attribute '{key}' of '{where}' holds names longer than "
                               f"{_MAX_NAME} characters")
        for value in owner.attrs[key]:
            if isinstance(value, bytes):
                value = value.decode("utf-8", errors="replace")
            if not isinstance(value, str) or not value or len(value) > _MAX_NAME:
                raise reader.error(f"attribute '{key}' of '{where}' holds an empty or too long "
                                   f"name")
            names.append(value)
    return names


def _read_weights(reader: ModelFileReader, group: h5py.Group, where: str,
                  imported: _Imported, model) -> None:
    """Fill ``model`` (built) from a Keras weights group, every shape checked before reading."""
    layer_names = _string_list(reader, group, "layer_names", where)
    by_name = {layer.name: layer for layer in model.layers}
    expected = [name for name in imported.keras_names if name in imported.converters]
    with_weights = []
    for name in layer_names:
        layer_group = reader.group(f"{where}/{name}".lstrip("/"))
        paths = _string_list(reader, layer_group, "weight_names", f"{where}/{name}")
        if paths:
            with_weights.append((name, layer_group, paths))
    if [name for name, _, _ in with_weights] != expected:
        raise reader.error(f"the weights are for the layers "
                           f"{', '.join(n for n, _, _ in with_weights)[:200] or 'none'}; the "
                           f"model_config's layers with weights are "
                           f"{', '.join(expected)[:200] or 'none'}")
    arrays_of = {}
    for name, layer_group, paths in with_weights:
        layer = by_name[name]
        shapes = [tuple(array.shape) for array in layer.get_weights()]
        if kind_of(layer) == "Conv2D":
            shapes = [(s[2], s[3], s[1], s[0]) if len(s) == 4 else s for s in shapes]
        if len(paths) != len(shapes):
            raise reader.error(f"layer '{name}' has {len(paths)} weight arrays; the "
                               f"model_config's layer has {len(shapes)}")
        arrays_of[name] = [reader.read_dataset(f"{layer_group.name}/{path}".lstrip("/"), shape)
                           for path, shape in zip(paths, shapes)]
    flattened = None
    for layer in model.layers:
        kind = kind_of(layer)
        if kind == "Flatten":
            flattened = tuple(layer.input_shape) if len(layer.input_shape) == 3 else None
        elif layer.name in arrays_of:
            _, convert = imported.converters[layer.name]
            arrays = arrays_of[layer.name]
            if kind == "Dense":
                if imported.graph:
                    flattened = imported.dense_inputs.get(layer.name)
                arrays = convert(arrays, flattened)
            else:
                arrays = convert(arrays)
            layer.set_weights([np.asarray(a, dtype=np.float32) for a in arrays])
            flattened = None
        elif kind not in ("Dropout", "GaussianNoise", "Activation", "ReLU", "Softmax"):
            flattened = None


def kind_of(layer) -> str:
    return type(layer).__name__


def load_keras(filename: str, h5file: h5py.File):
    """The dlcore Sequential of an open Keras HDF5 model file (``dlcore.load`` calls this)."""
    reader = ModelFileReader(h5file, filename)
    config = reader.json_attribute(h5file, "model_config", "/")
    model, imported = model_from_config(config, filename, reader.file_size)
    _read_weights(reader, reader.group("model_weights"), "model_weights", imported, model)
    return model


def load_weights(model, path: str | os.PathLike) -> None:
    """``model.load_weights(path)`` from Keras's HDF5 weights layout (a weights file or the
    ``model_weights`` group of a model file); every shape is checked before anything is set."""
    from dlcore.io.hdf5 import _existing_file, _open_model_file
    filename = _existing_file(path)
    config = json.loads(to_json(model))
    _, imported = model_from_config(config, filename)
    backup = model.get_weights()
    with _open_model_file(filename) as h5file:
        reader = ModelFileReader(h5file, filename)
        where = "model_weights" if "model_weights" in h5file else ""
        group = reader.group(where) if where else h5file
        try:
            _read_weights(reader, group, where, imported, model)
        except BaseException:
            model.set_weights(backup)
            raise


def describe_keras(filename: str, h5file: h5py.File) -> str:
    """What ``dlcore info`` prints for a Keras HDF5 model file: who wrote it, its layers (from
    ``model_config``) and every array under ``model_weights`` with its shape; read through the
    guarded layer, parameters unread."""
    reader = ModelFileReader(h5file, filename)
    config = reader.json_attribute(h5file, "model_config", "/")
    lines = [f"file           {filename}",
             "format         Keras HDF5 model file (legacy .h5; dlcore imports it, NHWC -> NCHW)"]
    for name in ("keras_version", "backend"):
        value = reader.attribute(h5file, name, "/", default=None)
        if value is not None:
            lines.append(f"{name:<15}{str(value)[:80]}")
    body = config.get("config") if isinstance(config, dict) else None
    kind = config.get("class_name") if isinstance(config, dict) else None
    lines.append(f"model          {str(kind)[:60]}")
    entries = body.get("layers") if isinstance(body, dict) else None
    if isinstance(entries, list):
        lines += ["", "layers"]
        for entry in entries[:1000]:
            entry = entry if isinstance(entry, dict) else {}
            layer_config = entry.get("config") if isinstance(entry.get("config"), dict) else {}
            lines.append(f"  {str(layer_config.get('name'))[:60]} "
                         f"({str(entry.get('class_name'))[:60]})")
        if len(entries) > 1000:
            lines.append(f"  ... {len(entries) - 1000} more")
    weights = reader.group("model_weights", required=False)
    if weights is not None:
        lines += ["", "weights"]
        for path, item in reader.walk(weights, "model_weights"):
            if isinstance(item, h5py.Dataset):
                reader.check_dtype(item, path)
                lines.append(f"  {path[:160]}  {shape_text(item.shape or ())} {item.dtype}")
    return "\n".join(lines)
