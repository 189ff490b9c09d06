"""Keras's HDF5 files: export dlcore models to Keras, import Keras models.

Sequential models map onto Sequential models, functional ones (``dlcore.Model``) onto Keras's
``Functional`` (layers with their ``inbound_nodes``; a shared layer once, a node per call).

A Keras HDF5 model file (``keras.Model.save("m.h5")``, the layout lecture "Deep learning I"
shows for Keras) holds the architecture as JSON in the root attribute ``model_config``, the
root attributes ``keras_version`` and ``backend``, the compile settings in ``training_config``
(:mod:`dlcore.io.keras_training`) and the weights in the group ``model_weights``: its attribute
``layer_names`` lists every layer in the order of Keras's ``model.layers`` (Keras's loader gives
the arrays to its layers by that position), and each layer's group lists its arrays in the attribute
``weight_names`` (paths inside that group, such as ``sequential/dense/kernel``). A weights file
(``save_weights("m.h5")``) has the same layout at its root; Keras 3's ``.weights.h5`` files have
another (:mod:`dlcore.io.keras_weights`). The mapping between dlcore's layers and Keras's is
documented in docs/hdf5-format.md ("Keras files").

dlcore's images are NCHW; Keras's default (and the only layout every Keras backend runs on a
CPU) is NHWC (``channels_last``). So:

- a Conv2D kernel (filters, channels, kh, kw) is stored as Keras's HWIO (kh, kw, channels,
  filters), a Conv2DTranspose kernel (channels, filters, kh, kw) as Keras's (kh, kw, filters,
  channels): the same permutation;
- the first Dense after a Flatten of a (C, H, W) image gets its rows permuted from C,H,W order to
  H,W,C order (Keras flattens NHWC maps): without this the file loads and predicts wrong. Rows
  joined by a Concatenate are permuted block by block (a row layout, :func:`_keras_rows`), rows
  merged by an Add (Average, Multiply, ...) must share one order; a Reshape of rows into
  (C, H, W) maps (Keras's target (H, W, C)) takes rows in Keras's H, W, C order: a flattened
  map's, or a Dense's whose units are reordered (:func:`_reshaped_units`);
- an integer padding P becomes ``ZeroPadding2D(P)`` followed by a ``valid`` convolution.

Import reads every byte through :class:`dlcore.io.guarded.ModelFileReader` and builds only the
layers named in :data:`IMPORTED_LAYERS`; anything else (``Lambda`` and any serialized Python
code above all: it is refused, never run), ``channels_first``, dilation or groups is refused
with one line naming the layer, before any model is built. Keras's geometry holds exactly for
imported layers, through explicit options of dlcore's layers that only they set
(:mod:`dlcore.layers.geometry`): ``floor`` (``valid`` drops the remainder) and a padding per
side (Keras's ``same`` pads one more row at the bottom, or column at the right, when its total
is odd; pools ignore their padded cells). Augmentation layers (the identity at inference) map
onto dlcore's :class:`~dlcore.layers.ImageAugmentation` where it does what they do, and are
left out with a warning naming them otherwise. A functional model's nodes are built in the
order of their inputs, as Keras does, whatever the order of ``layers`` in the file.
"""
from __future__ import annotations

import collections
import copy
import json
import os
import warnings

import h5py
import numpy as np

from dlcore.io.atomic import atomic_output_path
from dlcore.io.errors import ModelFileError
from dlcore.io.guarded import (
    DAMAGED_FIX,
    MAX_OBJECTS,
    OTHER_MODEL_FIX,
    ModelFileReader,
    parse_json,
    shape_text,
)
from dlcore.io.keras_weights import entry_is_functional, output_references
from dlcore.io.layouts import MAX_GRAPH_INPUTS, MAX_LAYERS
from dlcore.layers.base import ACTIVATION_NAMES, policy_name
from dlcore.layers.geometry import keras_same_padding
from dlcore.regularizers import KERAS_UNIT_AXES
from dlcore.wording import with_article

#: The Keras version whose legacy HDF5 layout dlcore writes (and checked its files against).
KERAS_VERSION = "3.15.1"
#: What ``backend`` says in a file dlcore writes (the arrays are backend-independent).
KERAS_BACKEND = "dlcore"
#: The Keras layers dlcore imports (and, in functional models, the merges and Concatenate).
IMPORTED_LAYERS = ("InputLayer", "Dense", "Conv2D", "Conv2DTranspose", "MaxPooling2D",
                   "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D",
                   "UpSampling2D", "Flatten", "Dropout", "GaussianNoise", "ZeroPadding2D",
                   "RandomFlip", "RandomTranslation", "Activation", "ReLU", "Softmax",
                   "LeakyReLU", "ELU", "BatchNormalization", "LayerNormalization",
                   "Rescaling", "Reshape", "RandomRotation", "RandomZoom", "RandomContrast",
                   "RandomBrightness", "LocallyConnected2D", "Cropping2D")
#: Keras's model classes, which a model may nest (see _FunctionalImported._inlined)
_MODEL_CLASSES = ("Sequential", "Functional", "Model")
#: The normalisation layers: their arrays are as Keras stores them (1-D, per channel)
_NORMALIZATIONS = ("BatchNormalization", "LayerNormalization")
#: dlcore's global pools by Keras's names
_GLOBAL_POOLS = {"GlobalAveragePooling2D": "GlobalAvgPool2D",
                 "GlobalMaxPooling2D": "GlobalMaxPool2D"}
#: Keras's element-wise merges of tensors of one shape (dlcore's classes of the same names)
_ELEMENTWISE_MERGES = ("Add", "Average", "Subtract", "Multiply", "Maximum", "Minimum")
#: Keras's merges, which a functional model may have besides the layers above
_MERGES = _ELEMENTWISE_MERGES + ("Concatenate", "Dot")
#: The layers a functional model may have: these, and its joins.
_GRAPH_LAYERS = IMPORTED_LAYERS + _MERGES
#: Keras's augmentation layers (the identity at inference) that dlcore imports: the first two
#: as its ImageAugmentation where it does what they do, the others left out with a note.
_AUGMENTATION = ("RandomFlip", "RandomTranslation", "RandomRotation", "RandomZoom",
                 "RandomContrast", "RandomBrightness")
#: Layers that keep the rows of a flattened map in their order (a Dense after them is the
#: first Dense after the Flatten).
_ROW_KEEPING = ("Dropout", "GaussianNoise", "Activation", "ReLU", "Sigmoid", "Tanh", "Softmax",
                "LeakyReLU", "ELU", "Rescaling")
#: The Keras names of dlcore's activations (Keras's own names, the same functions).
_ACTIVATIONS = ACTIVATION_NAMES
#: The most numbers one sample may have at any layer of an imported model (a hostile config must
#: not make dlcore allocate without bound: 2**24 floats are 64 MiB per sample).
MAX_UNITS = 2**24
#: The most parameters a model built from JSON alone may have (a file's arrays must also fit in
#: the file itself).
MAX_PARAMETERS = 2**27
#: The most layers, and calls of layers, a Keras model imports with, its nested models'
#: included: about four times keras.applications' largest (NASNetLarge, 1,041 layers;
#: EfficientNetB7 has 816, ResNet152V2 566). A config at the limit imports in seconds; the
#: JSON limit alone let a config list 20,000 layers, half a minute to build. A dlcore model
#: file holds as many, so that an imported model is saved and read back.
MAX_KERAS_LAYERS = MAX_LAYERS
#: The longest name read from a ``layer_names`` or ``weight_names`` attribute.
_MAX_NAME = 1_000
#: why a ZeroPadding2D elsewhere is refused, and the fix: dlcore has no padding layer, so the
#: padding becomes the next convolution's
_PADDING_PLACE = ("a ZeroPadding2D must be followed by a 'valid' Conv2D, whose padding it "
                  "becomes; put it right before a Conv2D with padding='valid' (or drop it, "
                  "for a Conv2D with padding='same')")


# --------------------------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------------------------
def kind_of(layer) -> str:
    """The name of the dlcore layer class that ``layer`` is written to Keras as: its own class's
    for dlcore's layers, the nearest of dlcore's for a class of one's own derived from one (a
    model file refuses it unless it changes none of that class's methods:
    :func:`check_keras_layer`), else the class's qualified name, which no Keras layer has."""
    cls = type(layer)
    base = _builtin_base(cls)
    return base.__name__ if base is not None else f"{cls.__module__}.{cls.__qualname__}"


def _builtin_base(cls):
    from dlcore.layers.base import LAYER_CLASSES, is_builtin
    return next((klass for klass in cls.__mro__
                 if is_builtin(klass) and LAYER_CLASSES.get(klass.__name__) is klass), None)


def check_keras_layer(layer) -> None:
    """ValueError in one line, naming the layer and the way to Keras, for a layer of a class
    of one's own that a Keras model file cannot hold: derived from one of dlcore's layers but
    overriding its methods (the file would name the base class, and Keras would run that
    class's forward pass, not the one the model runs), or derived from none. A subclass that
    only sets other defaults or adds methods of its own is written as its base class."""
    cls = type(layer)
    base = _builtin_base(cls)
    changed = [] if base is None else _overridden_methods(cls, base)
    if cls is base or (base is not None and not changed):
        return
    what, keras_reads = ((f"a class of one's own that overrides {base.__name__}'s "
                          f"{', '.join(changed)}", f"a plain {base.__name__}, which computes "
                                                   f"something else")
                         if base is not None else ("a layer class of one's own", "no such layer"))
    raise ValueError(f"layer {layer.name!r} is {cls.__module__}.{cls.__qualname__}, {what}: a "
                     f"Keras file would hold {keras_reads}; keep the model in dlcore's own "
                     f"file (dlcore.save(model, path)), or write the layer for Keras too (a "
                     f"keras.layers.Layer, which Keras loads through custom_objects), build "
                     f"the model there and load these weights into it "
                     f"(model.save_weights('w.h5'))")


def _overridden_methods(cls, base) -> list[str]:
    """The methods (properties included) of ``base`` that ``cls`` or a class between them
    defines again, its constructor aside (what a constructor sets, the export reads)."""
    import inspect
    names = []
    for klass in cls.__mro__[:cls.__mro__.index(base)]:
        for name in vars(klass):
            inherited = inspect.getattr_static(base, name, None)
            if name != "__init__" and name not in names and (
                    callable(inherited) or isinstance(inherited, (property, staticmethod,
                                                                  classmethod))):
                names.append(name)
    return names


def _window_padding(window):
    """How Keras says a built window's padding: "valid" (none), "same" (the sides are exactly
    Keras's rule for this input, :func:`dlcore.layers.geometry.keras_same_padding`), or None
    (neither)."""
    sides = ((window.pad_height, window.pad_bottom), (window.pad_width, window.pad_right))
    if sides == ((0, 0), (0, 0)):
        return "valid"
    same = (keras_same_padding(window.height, window.kernel_height, window.stride_height),
            keras_same_padding(window.width, window.kernel_width, window.stride_width))
    return "same" if sides == same else None


class _Exported:
    """A dlcore Sequential or Model as Keras layer configs and weight arrays (in Keras's
    layout)."""

    def __init__(self, model, architecture=True, nest=False):
        from dlcore import Model, Sequential
        self._nest_models = nest
        if not isinstance(model, Model):
            raise TypeError(f"format='keras' writes a dlcore.Sequential or dlcore.Model; got "
                            f"{type(model).__name__}")
        model._require_built()
        if architecture:   # a weights file holds arrays only: a layer's own code is no matter
            for layer in model.flat_layers:
                check_keras_layer(layer)
        self.name = model.name
        self.trainable = bool(model.trainable)
        # Keras's dtype policy of every layer, and its arrays' type: the model's
        self.float_type = "float64" if model.dtype == np.float64 else "float32"
        self.notes = []
        self.normalization_arrays = {}   # layer name -> its arrays' names
        self.functional = not isinstance(model, Sequential)
        # a Keras Sequential that nested a model, imported as a dlcore Model
        self.keras_sequential = bool(getattr(model, "keras_sequential_", False))
        # the keys of a Keras model's dict inputs and outputs (Keras's flattened order)
        self.input_keys = _tensor_keys(model, "keras_input_keys_", model.inputs)
        self.output_keys = _tensor_keys(model, "keras_output_keys_", model.outputs)
        if self.functional:
            self._graph(model)
            return
        self.layers = [{"class_name": "InputLayer",
                        "config": {"batch_shape": [None, *_nhwc(model.input_shape)],
                                   "dtype": "float32", "name": "input_layer"}}]
        self.weights = {}   # Keras layer name -> [arrays]
        self._flattened = None
        self._columns = _reshaped_units(model)
        for layer in model.layers:
            self._add(layer)
        if model.layers and len(model.output_shape) == 1:
            _note_output_order(self.notes, model.layers[-1].name, self._flattened)

    def _add(self, layer):
        """Append the Keras layer entries of ``layer``, frozen when it is."""
        before = len(self.layers)
        self._add_entries(layer)
        if getattr(layer, "kernel_noise", None):
            self.notes.append(f"layer {layer.name!r}: its kernel_noise={layer.kernel_noise:g} "
                              f"(noise on the weights while training) is left out of the Keras "
                              f"file: Keras has none")
        for entry in self.layers[before:]:
            entry["config"]["trainable"] = bool(layer.trainable)

    def _add_entries(self, layer):   # noqa: C901 - one case per layer class
        kind = kind_of(layer)
        if kind == "Conv2D":
            self._conv(layer)
        elif kind == "Conv2DTranspose":
            self.layers.append(_layer("Conv2DTranspose", layer.name, filters=layer.filters,
                                      kernel_size=list(layer.kernel_size),
                                      strides=list(layer.strides), padding=layer.padding,
                                      output_padding=None, data_format="channels_last",
                                      dilation_rate=[1, 1], activation=layer.activation,
                                      use_bias=layer.use_bias, **_weight_settings(layer)))
            kernel, *bias = layer.get_weights()
            self.weights[layer.name] = [kernel.transpose(2, 3, 1, 0), *bias]
            self._flattened = None
        elif kind == "Dense":
            kernel, *bias = layer.get_weights()
            kernel = _keras_rows(kernel, self._flattened)
            self._flattened = self._columns.get(id(layer))
            kernel, bias = _keras_columns(kernel, bias, self._flattened)
            self.layers.append(_layer("Dense", layer.name, units=layer.units,
                                      activation=layer.activation, use_bias=layer.use_bias,
                                      **_weight_settings(layer)))
            self.weights[layer.name] = [kernel, *bias]
        elif kind in ("MaxPool2D", "AvgPool2D"):
            padding = _window_padding(layer.window)
            if padding is None:
                raise ValueError(f"layer {layer.name!r} ({kind}) pads {layer.padding}, which "
                                 f"is not Keras's 'same' for its input: Keras's pools take "
                                 f"no other padding")
            self.layers.append(_layer(type(layer).keras_class_name, layer.name,
                                      pool_size=list(layer.pool_size),
                                      strides=list(layer.stride), padding=padding,
                                      data_format="channels_last"))
        elif kind in _GLOBAL_POOLS.values():
            self._flattened = None   # one value a channel: the same order in both
            keras_kind = type(layer).keras_class_name
            self.layers.append(_layer(keras_kind, layer.name, data_format="channels_last",
                                      keepdims=layer.keepdims))
        elif kind == "UpSampling2D":
            self.layers.append(_layer("UpSampling2D", layer.name, size=list(layer.size),
                                      interpolation=layer.interpolation,
                                      data_format="channels_last"))
        elif kind == "Cropping2D":   # the same rows and columns of NHWC maps
            self.layers.append(_layer("Cropping2D", layer.name,
                                      cropping=[list(side) for side in layer.cropping],
                                      data_format="channels_last"))
        elif kind == "Flatten":   # of flat rows, it keeps their layout
            self._flattened = _relation(layer.input_shape, self._flattened)
            self.layers.append(_layer("Flatten", layer.name, data_format="channels_last"))
        elif kind == "Reshape":
            self._flattened = _reshaped_layout(layer.name, layer.input_shape, self._flattened,
                                               layer.output_shape)
            self.layers.append(_layer("Reshape", layer.name,
                                      target_shape=_keras_target_shape(layer.output_shape)))
        elif kind in _NORMALIZATIONS:
            _check_not_flattened_maps(layer.name, kind, self._flattened)
            options = ({"momentum": layer.momentum} if kind == "BatchNormalization" else
                       {"rms_scaling": False})
            self.layers.append(_layer(kind, layer.name, axis=-1, epsilon=layer.epsilon,
                                      center=layer.center, scale=layer.scale, **options))
            self.weights[layer.name] = layer.get_weights()   # 1-D: the same in both layouts
            self.normalization_arrays[layer.name] = layer.array_names
        elif kind == "Dropout":   # the seed of its own masks, when given, as Keras's
            self.layers.append(_layer("Dropout", layer.name, rate=layer.rate,
                                      **({} if layer.seed is None else {"seed": layer.seed})))
        elif kind == "Rescaling":
            self.layers.append(_layer("Rescaling", layer.name, scale=layer.scale,
                                      offset=layer.offset))
        elif kind == "GaussianNoise":
            if layer.stddev > 1:
                # Keras 3 refuses the layer, and so the whole file, on loading it
                raise ValueError(f"layer {layer.name!r} (GaussianNoise) has stddev "
                                 f"{layer.stddev}, which Keras refuses (Keras takes [0, 1]): "
                                 f"scale the inputs first (Rescaling(1 / 255)) and the noise "
                                 f"with them, or keep it in dlcore's own file, "
                                 f"dlcore.save(model, path)")
            self.layers.append(_layer("GaussianNoise", layer.name, stddev=layer.stddev,
                                      **({} if layer.seed is None else {"seed": layer.seed})))
        elif kind in ("Activation", "ReLU", "Sigmoid", "Tanh", "Softmax", "ELU"):
            self.layers.append(_layer("Activation", layer.name, activation=layer.activation))
        elif kind == "LeakyReLU":
            self.layers.append(_layer("LeakyReLU", layer.name,
                                      negative_slope=layer.negative_slope))
        elif kind == "ImageAugmentation":
            self._augmentation(layer)
        elif kind == "LocallyConnected2D":
            raise ValueError(f"layer {layer.name!r} (LocallyConnected2D) cannot be written to a "
                             f"Keras file: Keras 3 removed LocallyConnected2D (tf.keras 2 had "
                             f"it); dlcore.save(model, path) writes dlcore's own file, which "
                             f"keeps it")
        else:
            raise ValueError(f"layer {layer.name!r} ({kind}) has no Keras equivalent; "
                             f"format='keras' writes Dense, Conv2D, Conv2DTranspose, "
                             f"MaxPool2D, AvgPool2D, GlobalAvgPool2D, GlobalMaxPool2D, "
                             f"UpSampling2D, Cropping2D, Flatten, Reshape, Dropout, "
                             f"Rescaling, "
                             f"BatchNormalization, "
                             f"LayerNormalization, LeakyReLU, "
                             f"GaussianNoise, ImageAugmentation and activation layers")

    def _augmentation(self, layer):
        """Keras's RandomFlip("horizontal") for the mirror images, RandomTranslation (zeros
        filled, nearest pixel) for the whole-pixel shifts: the same augmentation, the identity
        at inference. A rotation has no such match: the layer is left out, with a note."""
        if layer.max_rotation or layer.max_zoom or layer.image_shape is not None or not (
                layer.max_shift or layer.horizontal_flip):
            why = ("Keras's RandomRotation and RandomZoom draw other angles and scales and "
                   "fill otherwise" if layer.max_rotation or layer.max_zoom else
                   "Keras's RandomTranslation takes images, this layer flat rows"
                   if layer.image_shape is not None else "it changes nothing")
            self.notes.append(f"layer {layer.name!r} (ImageAugmentation, the identity at "
                              f"inference) is left out of the Keras file: {why}")
            return
        if layer.horizontal_flip:
            self.layers.append(_layer("RandomFlip", layer.name, mode="horizontal", seed=None,
                                      data_format="channels_last"))
        _, height, width = layer.input_shape
        if layer.max_shift >= min(height, width):
            # Keras refuses a factor above 1; dlcore refuses to train with such a shift
            self.notes.append(f"layer {layer.name!r} (ImageAugmentation)'s max_shift="
                              f"{layer.max_shift} is left out of the Keras file: it moves "
                              f"{height}x{width} images entirely out of the picture")
        elif layer.max_shift:
            self.layers.append(_layer(
                "RandomTranslation",
                f"{layer.name}_shift" if layer.horizontal_flip else layer.name,
                height_factor=layer.max_shift / height, width_factor=layer.max_shift / width,
                fill_mode="constant", interpolation="nearest", seed=None, fill_value=0.0,
                data_format="channels_last"))

    def _conv(self, layer):
        """A convolution's padding as Keras says it: 'same' where Keras's rule gives its sides
        (dlcore's own "same", and the per-side padding of imported layers), else integers as a
        ZeroPadding2D followed by a 'valid' convolution (Keras's 'valid' floors, as
        ``floor`` does)."""
        window = layer.window
        padding = _window_padding(window)
        per_side = isinstance(layer.padding, (list, tuple)) and \
            isinstance(layer.padding[0], (list, tuple))
        if padding == "same" and not (layer.padding == "same" or per_side):
            padding = None   # integers: ZeroPadding2D, as the lecture's padding P reads
        if padding is None:
            self.layers.append(_layer("ZeroPadding2D", f"{layer.name}_padding",
                                      padding=[[window.pad_height, window.pad_bottom],
                                               [window.pad_width, window.pad_right]],
                                      data_format="channels_last"))
            padding = "valid"
        self.layers.append(_layer("Conv2D", layer.name, filters=layer.filters,
                                  kernel_size=list(layer.kernel_size),
                                  strides=list(layer.stride), padding=padding,
                                  data_format="channels_last", dilation_rate=[1, 1], groups=1,
                                  activation=layer.activation, use_bias=layer.use_bias,
                                  **_weight_settings(layer)))
        kernel, *bias = layer.get_weights()
        self.weights[layer.name] = [kernel.transpose(2, 3, 1, 0), *bias]
        self._flattened = None

    def _graph(self, model):   # noqa: C901 - one walk over the graph
        """A functional model: each node of the graph as a Keras inbound node."""
        self.layers, self.weights, self._flattened = [], {}, None
        refs, flat_from, entries_of, calls, dense_flattened = {}, {}, {}, {}, {}
        self._columns = _reshaped_units(model)
        for index, tensor in enumerate(model.inputs):
            name = model.input_names[index]
            self.layers.append({"class_name": "InputLayer", "name": name, "inbound_nodes": [],
                                "config": {"batch_shape": [None, *_nhwc(tensor.shape)],
                                           "dtype": "float32", "name": name}})
            refs[id(tensor)] = (name, 0, tensor.shape)
        for node in model.nodes:
            layer, inputs = node.layer, node.inputs
            kind = kind_of(layer)
            first = inputs[0]
            if kind == "Dense":
                _check_one_row_order(layer.name, dense_flattened.setdefault(
                    id(layer), flat_from.get(id(first))), flat_from.get(id(first)))
            if id(layer) not in entries_of:
                before = len(self.layers)
                self._flattened = flat_from.get(id(first))
                if kind in _MERGES:
                    self.layers.append(_layer(kind, layer.name, **_merge_config(kind, layer,
                                                                                first)))
                else:
                    self._add(layer)
                entries_of[id(layer)] = self.layers[before:]
            flat_from[id(node.output)] = _row_layout(kind, layer.name, inputs, node.output,
                                                     flat_from, self._columns.get(id(layer)))
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
                if position < len(entries) - 1:
                    shape = first.shape   # augmentation keeps the shape; a padding grows it
                    if entry["class_name"] == "ZeroPadding2D":
                        (top, bottom), (left, right) = entry["config"]["padding"]
                        shape = (shape[0], shape[1] + top + bottom, shape[2] + left + right)
                arg = _tensor_ref((name, calls[name], shape))
            refs[id(node.output)] = (entries[-1]["config"]["name"],
                                     calls[entries[-1]["config"]["name"]], node.output.shape)
        self._inputs = [[refs[id(t)][0], refs[id(t)][1], 0] for t in model.inputs]
        self._outputs = [[refs[id(t)][0], refs[id(t)][1], 0] for t in model.outputs]
        for name, tensor in zip(model.output_names, model.outputs):
            _note_output_order(self.notes, name, flat_from.get(id(tensor)))
        if self._nest_models:
            self._nest(model, refs, entries_of)

    def _as_sequential(self):
        """A model imported from a Keras Sequential that nests a model (a dlcore ``Model``,
        dlcore's Sequential holding layers only) as the Keras ``Sequential`` config it came
        from, when its graph is still that chain: Keras's weights files name a nested model
        by its class (``layers/sequential/...``), so Keras's model of the architecture loads
        them. None otherwise."""
        if not getattr(self, "keras_sequential", False):
            return None
        layers = _chain_layers(self.layers, self._inputs, self._outputs)
        if layers is None:
            return None
        return {"class_name": "Sequential",
                "config": {"name": self.name, "trainable": self.trainable, "layers": layers,
                           "build_input_shape": layers[0]["config"]["batch_shape"]}}

    def _nest(self, model, refs, entries_of):
        """Put the Keras entries of each model called on this graph back into one nested Keras
        model entry (a ``Sequential`` or a ``Functional``, Keras's own layout, which Keras's
        loader and dlcore's read back as one layer), called once for each of its calls, where
        its first layer was; the tensors of its outputs are then the nested model's (its
        output k of call i: ``[model, i, k]``). The arrays stay those of the flat export (the
        weights paths follow from the config). A nested model Keras could not call so (a layer
        of it also called on this graph, a call that gives the graph a tensor other than its
        outputs) stays flat, with a warning; a model nested in it is nested in it in turn."""
        renamed_tensors = {}   # (flat layer name, node index) -> (nested model, call, output)
        calls_of = {}
        for call, _, _ in model._model_calls():
            calls_of.setdefault(id(call.model), (call.model, []))[1].append(call)
        for inner, calls in calls_of.values():
            entry = self._nested_entry(model, inner, calls, refs, entries_of, renamed_tensors)
            if entry is None:
                continue
            names = set(_leaf_names(entry["config"]["layers"]))
            place = next(index for index, layer in enumerate(self.layers)
                         if layer.get("name") in names)
            self.layers = [layer for layer in self.layers if layer.get("name") not in names]
            self.layers.insert(place, entry)

        def renamed(history):   # a tensor a nested model's output layer made is the model's
            return list(renamed_tensors.get((history[0], history[1]), history))

        if renamed_tensors:
            for entry in self.layers:
                if "inbound_nodes" in entry:
                    entry["inbound_nodes"] = _with_history(entry["inbound_nodes"], renamed)
            self._outputs = [renamed(ref) for ref in self._outputs]

    def _nested_entry(self, model, inner, calls, refs, entries_of, renamed_tensors):
        """The Keras entry of the model ``inner`` called on ``model``'s graph as ``calls``
        (its :class:`~dlcore.functional.ModelCall` objects), or None when it stays flat; the
        tensors its calls give the graph are noted in ``renamed_tensors``."""
        own = inner.flat_layers

        def flat(why):
            self.notes.append(f"the nested model {inner.name!r} is written flat (its layers "
                              f"the model's, get_layer({inner.name!r}) then failing in Keras): "
                              f"{why}")

        if any(id(layer) in model._called_directly for layer in own):
            return flat("a layer of it is also called on the model's own tensors")
        own_ids = {id(layer) for layer in own}
        if any(id(node.layer) in own_ids and node.call.model is not inner
               for node in model.nodes if node.call is not None):
            return flat("a layer of it is also a layer of another nested model")
        nodes_of = {id(call): [] for call in calls}
        for node in model.nodes:
            if node.call is not None and id(node.call) in nodes_of:
                nodes_of[id(node.call)].append(node)
        used_outside = {id(t) for t in model.outputs}
        for node in model.nodes:
            used_outside.update(id(t) for t in node.inputs
                                if t.node.call is not node.call or node.call is None)
        matched = []   # per call: (its input tensors, {id(output tensor): output number})
        for call in calls:
            image = _matched_call(inner, nodes_of[id(call)])
            if image is None:
                return flat("its calls on the model's tensors could not be matched to its own "
                            "graph")
            given = [image.get(id(tensor)) for tensor in inner.inputs]
            if any(tensor is None for tensor in given):
                return flat("an input of it is read by no layer the model runs")
            numbers = {}
            for number, tensor in enumerate(inner.outputs):
                if id(tensor) in image:
                    numbers.setdefault(id(image[id(tensor)]), number)
            if any(id(node.output) in used_outside and id(node.output) not in numbers
                   for node in nodes_of[id(call)]):
                return flat("a call of it gives the model a tensor other than its outputs")
            matched.append((given, numbers))
        names = [entry["config"]["name"] for layer in own
                 for entry in entries_of.get(id(layer), [])]
        for call, (_, numbers) in zip(calls, matched):
            for node in nodes_of[id(call)]:
                if id(node.output) in numbers and refs[id(node.output)][0] not in names:
                    return flat("a layer giving one of its outputs is left out of the file")
        try:   # the nested model's own config: its layers called on its own input
            inner_exported = _Exported(inner, nest=True)
            config = inner_exported.model_config()
        except ValueError:
            return None   # a layer Keras has no match for: the flat export refuses it
        layers = config["config"]["layers"]
        # Keras's default InputLayer names are unique in a session: the nested model's own
        # (its inputs come first, in order)
        count = len(inner.inputs)
        new_names = {layer["config"]["name"]: f"{inner.name}_input" + (f"_{k}" if k else "")
                     for k, layer in enumerate(layers[:count])}
        keys = _tensor_keys(inner, "keras_input_keys_", inner.inputs)
        taken = {layer.name for layer in model.flat_layers} | set(model.input_names) | \
            {layer.name for layer in own}
        if keys and not taken & set(keys):
            # dict inputs: Keras wants each InputLayer named as its key (a warning else)
            by_input = dict(zip(inner.input_names, keys))
            new_names = {layer["config"]["name"]: by_input[layer["config"]["name"]]
                         for layer in layers[:count]}
        for layer in layers[:count]:
            layer["config"]["name"] = new_names[layer["config"]["name"]]
            if config["class_name"] == "Functional":
                layer["name"] = layer["config"]["name"]
        for layer in layers[count:]:
            if "inbound_nodes" in layer:
                layer["inbound_nodes"] = _with_history(
                    layer["inbound_nodes"],
                    lambda history: [new_names.get(history[0], history[0]), *history[1:]])
        if config["class_name"] == "Functional":
            input_layers = [[layer["name"], 0, 0] for layer in layers[:count]]
            config["config"]["input_layers"] = dict(zip(keys, input_layers)) if keys else \
                input_layers if count > 1 else input_layers[0]
        config["config"].update(name=inner.name, trainable=bool(inner.trainable))
        # the arrays of a layer the model's graph does not run (it makes an output of the
        # nested model that the model leaves unused) as the nested model alone has them
        for name in _leaf_names(layers):
            if name not in self.weights and name in inner_exported.weights:
                self.weights[name] = inner_exported.weights[name]
                if name in inner_exported.normalization_arrays:
                    self.normalization_arrays[name] = inner_exported.normalization_arrays[name]
        from dlcore.io.keras_archive import serialized_config
        entry = serialized_config(config)
        # a model of dict inputs is called on a dict of tensors by its keys, as in Keras
        entry.update(name=inner.name, inbound_nodes=[
            {"args": [{key: _tensor_ref(refs[id(t)]) for key, t in zip(keys, given)} if keys
                      else [_tensor_ref(refs[id(t)]) for t in given] if count > 1
                      else _tensor_ref(refs[id(given[0])])], "kwargs": {}}
            for given, _ in matched])
        for index, (call, (_, numbers)) in enumerate(zip(calls, matched)):
            for node in nodes_of[id(call)]:
                if id(node.output) in numbers:
                    name, node_index, _ = refs[id(node.output)]
                    renamed_tensors[(name, node_index)] = \
                        [inner.name, index, numbers[id(node.output)]]
        return entry

    def model_config(self):
        config = self._model_config()
        if self.float_type != "float32":
            _set_float_type(config["config"]["layers"], self.float_type)
        return config

    def _model_config(self):
        sequential = self._as_sequential() if self.functional else None
        if sequential is not None:
            return sequential
        if self.functional:
            # Keras numbers a nested functional model's calls from 1 there (output_references)
            functional = {entry["name"] for entry in self.layers if entry_is_functional(entry)}
            outputs = [[name, node + 1 if name in functional else node, tensor]
                       for name, node, tensor in self._outputs]
            inputs = self._inputs
            return {"class_name": "Functional",
                    "config": {"name": self.name, "trainable": self.trainable,
                               "layers": self.layers,
                               "input_layers": dict(zip(self.input_keys, inputs))
                               if self.input_keys else inputs if len(inputs) > 1
                               else inputs[0],
                               "output_layers": dict(zip(self.output_keys, outputs))
                               if self.output_keys else outputs if len(outputs) > 1
                               else outputs[0]}}
        return {"class_name": "Sequential",
                "config": {"name": self.name, "trainable": self.trainable,
                           "layers": self.layers,
                           "build_input_shape": self.layers[0]["config"]["batch_shape"]}}


def _set_float_type(entries, float_type):
    """Give each of a Keras config's layer ``entries`` (nested models' included) the dtype
    ``float_type``: an input's dtype, every other layer's dtype policy."""
    for entry in entries:
        config = entry["config"]
        if entry["class_name"] in _MODEL_CLASSES:
            _set_float_type(config["layers"], float_type)
        elif entry["class_name"] == "InputLayer":
            config["dtype"] = float_type
        else:
            config["dtype"] = {"module": "keras", "class_name": "DTypePolicy",
                               "config": {"name": float_type}, "registered_name": None}


def _keras_float_type(entries, notes):
    """The one dtype dlcore computes the model of a Keras config's layer ``entries`` in:
    "float64" where each layer's policy is float64 (``dtype="float64"``, or
    ``keras.config.set_floatx("float64")``), else "float32", with a note in ``notes`` where
    some layer computes in another type (float64 beside float32 layers, float16, a mixed
    policy): dlcore's models compute in one."""
    names = {}

    def collect(items, depth=0):
        for entry in items if isinstance(items, list) and depth < 64 else ():
            config = entry.get("config") if isinstance(entry, dict) else None
            if not isinstance(config, dict):
                continue
            if entry.get("class_name") in _MODEL_CLASSES:
                collect(config.get("layers"), depth + 1)
            elif entry.get("class_name") != "InputLayer":
                name = policy_name(config.get("dtype")) or "float32"
                names.setdefault(name, str(config.get("name"))[:80])

    collect(entries)
    if set(names) == {"float64"}:
        return "float64"
    if set(names) - {"float32"}:
        notes.append(f"Keras layers compute in {', '.join(sorted(names))} (layer "
                     f"{', '.join(repr(names[name]) for name in sorted(names))}): dlcore "
                     f"computes a model in one dtype, float32 or float64 in every layer, so "
                     f"this one imports in float32")
    return "float32"


def _tensor_keys(model, attribute, tensors):
    """The keys of a Keras model's dict inputs or outputs (``model.keras_input_keys_``,
    ``keras_output_keys_``: sorted, Keras's flattened order, one per tensor), or None when the
    model has none or no longer one per tensor."""
    keys = getattr(model, attribute, None)
    return list(keys) if keys and len(keys) == len(tensors) else None


def _chain_layers(layers, inputs, outputs):
    """The Keras entries ``layers`` of a functional config as a Keras Sequential's (no inbound
    nodes), when they form one chain of single calls from one input to the output; else
    None."""
    if len(inputs) != 1 or len(outputs) != 1 or not layers or \
            layers[0]["class_name"] != "InputLayer":
        return None
    previous = (layers[0]["name"], 0)
    chain = [{key: value for key, value in layers[0].items()
              if key not in ("name", "inbound_nodes")}]
    for entry in layers[1:]:
        nodes = entry.get("inbound_nodes") or []
        arg = nodes[0]["args"][0] if len(nodes) == 1 and len(nodes[0]["args"]) == 1 else None
        if not isinstance(arg, dict) or \
                tuple(arg["config"]["keras_history"][:2]) != previous:
            return None
        chain.append({key: value for key, value in entry.items()
                      if key not in ("name", "inbound_nodes")})
        previous = (entry["name"], 0)
    return chain if list(previous) == list(outputs[0][:2]) else None


def _reshaped_units(model):
    """{id(Dense layer): the layout of its units} for each Dense of ``model`` whose outputs a
    Reshape makes a (C, H, W) map of (through layers that keep rows in order): Keras's units
    are then in H, W, C order, and the Reshape computes the same map in both."""
    from dlcore import Sequential
    columns = {}

    def units_of(dense, shape):
        if int(np.prod(shape)) != dense.units:   # a Dense on maps makes maps, not rows
            return
        needed = _flattened_layout(shape)
        if columns.get(id(dense), needed) != needed:
            raise ValueError(f"layer {dense.name!r} (Dense) feeds reshapes to different maps")
        if needed is not None:
            columns[id(dense)] = needed

    if isinstance(model, Sequential):
        dense = None
        for layer in model.layers:
            kind = kind_of(layer)
            if kind == "Reshape" and dense is not None and len(layer.output_shape) == 3:
                units_of(dense, layer.output_shape)
            dense = layer if kind == "Dense" else dense if kind in _ROW_KEEPING else None
        return columns
    for node in model.nodes:
        if kind_of(node.layer) != "Reshape" or len(node.output.shape) != 3:
            continue
        source = node.inputs[0].node
        while source.layer is not None and kind_of(source.layer) in _ROW_KEEPING:
            source = source.inputs[0].node
        if source.layer is not None and kind_of(source.layer) == "Dense":
            units_of(source.layer, node.output.shape)
    return columns


def exported(model, nest=False) -> _Exported:
    """``model`` (a built dlcore Sequential or Model) as Keras layer configs and arrays;
    ``nest``: each nested model as a nested Keras model (else its layers are the model's)."""
    return _Exported(model, nest=nest)


# -- the order of flattened rows --------------------------------------------------------------
# dlcore flattens a (C, H, W) map in C, H, W order, Keras its (H, W, C) map in H, W, C order. A
# flat tensor's *row layout* says where its rows differ: None (the same order), or a tuple of
# blocks, each a width (rows in the same order) or the (C, H, W) of a flattened map. A Dense
# reading the tensor has its kernel's rows permuted block by block.

def _flattened_layout(shape):
    """The layout of the rows a Flatten makes of a per-sample ``shape``: None unless it is a
    (C, H, W) map whose order differs (C > 1 and H W > 1)."""
    shape = tuple(shape)
    if len(shape) == 3 and shape[0] > 1 and shape[1] * shape[2] > 1:
        return (shape,)
    return None


def _row_layout(kind, name, inputs, output, layouts, columns=None, keras_shapes=False):
    """The row layout of the ``output`` tensor of a layer of class ``kind`` called on
    ``inputs`` (one tensor or a list), ``layouts`` the layouts found so far by tensor id;
    ``columns``: a Dense's units' layout (that of the map a Reshape makes of them);
    ``keras_shapes``: a refusal names maps as the Keras file's (H, W, C) (the import's)."""
    inputs = inputs if isinstance(inputs, list) else [inputs]
    found = [layouts.get(id(tensor)) for tensor in inputs]
    if kind == "Flatten":   # of flat rows, it keeps their layout
        return _relation(inputs[0].shape, found[0])
    if kind == "Dense":
        return columns
    if kind == "Reshape":
        return _reshaped_layout(name, inputs[0].shape, found[0], output.shape)
    if kind in _ROW_KEEPING:
        return found[0]
    if kind in _ELEMENTWISE_MERGES + ("Dot",):
        # an input broadcast along the rows (one row, (1,)) is the same in either order; maps
        # that each broadcast ((C, H, 1) with (C, 1, W)) leave no input of the output's shape
        found = [layout for layout, tensor in zip(found, inputs)
                 if tuple(tensor.shape) == tuple(output.shape)] or found
        if any(layout != found[0] for layout in found):
            verb, result = ("add", "sum") if kind == "Add" else ("merge", "result")
            # a Dot of maps is refused: a Dense after the Flatten takes the maps in either order
            fix = ("dot rows flattened from maps of one shape, or put a Dense between the "
                   "Flatten and the Dot" if kind == "Dot"
                   else f"{verb} the maps before flattening them")
            raise ValueError(f"layer {name!r} ({kind}) {verb}s rows in different orders "
                             f"({'; '.join(_layout_text(layout, keras_shapes) for layout in found)}"
                             f"): dlcore flattens maps C, H, W and Keras H, W, C, so the "
                             f"{result} differs; {fix}")
        # a dot product of rows in one order is a sum over them: the same in either order
        return found[0] if kind != "Dot" else None
    if kind == "Concatenate" and len(output.shape) == 1 and any(found):
        return tuple(block for layout, tensor in zip(found, inputs)
                     for block in (layout or (tensor.shape[0],)))
    return None


def _layout_text(layout, keras_shapes):
    """Row ``layout`` in words: "rows flattened from (4, 4, 2) maps" (the maps as the Keras
    file's under ``keras_shapes``, else dlcore's (C, H, W)), or "rows in the same order in
    both libraries"."""
    if layout is None:
        return "rows in the same order in both libraries"
    blocks = [f"{shape_text(_nhwc(block) if keras_shapes else block)} maps"
              if isinstance(block, tuple) else f"{block} other rows" for block in layout]
    return "rows flattened from " + " and ".join(blocks)


def _relation(shape, layout):
    """How Keras's flat order of a tensor of dlcore shape ``shape`` relates to dlcore's: a
    (C, H, W) map's is its flattened layout, a flat tensor's its row ``layout``, any other's
    the same (None)."""
    shape = tuple(shape)
    if len(shape) == 3:
        return _flattened_layout(shape)
    return layout if len(shape) == 1 else None


def _reshaped_layout(name, input_shape, layout, output_shape):
    """The row layout of a Reshape's output, the input's ``layout`` given. Both libraries
    reshape their own flat order (C order), so Keras's Reshape computes dlcore's when the
    input's flat orders relate as the output's must: a (C, H, W) map's as a flattened map of
    that shape (Keras's target is then (H, W, C)), a 2-D array's as the same; a flat output
    takes the input's. ValueError in one line otherwise."""
    relation = _relation(input_shape, layout)
    output_shape = tuple(output_shape)
    if len(output_shape) == 1:
        return relation
    needed = _flattened_layout(output_shape) if len(output_shape) == 3 else None
    if relation != needed:
        raise ValueError(f"layer {name!r} (Reshape): Keras and dlcore would order its outputs "
                         f"differently (Keras's {shape_text(_keras_target_shape(output_shape))}"
                         f", dlcore's {shape_text(output_shape)}): reshape a Dense's outputs "
                         f"(its units are then reordered) or rows flattened from maps of that "
                         f"shape")
    return None


def _note_output_order(notes, name, layout):
    """A note when a model's output ``name`` holds rows whose order differs between the two
    libraries (``layout``: rows of (C, H, W) maps, flattened or a Dense's units made maps):
    each library is right in itself, their numbers compare only once reordered."""
    maps = [block for block in layout or () if not isinstance(block, int)]
    if maps:
        notes.append(f"the model's output {str(name)[:80]!r} holds rows of "
                     f"{', '.join(str(tuple(block)) for block in maps)} maps, which dlcore "
                     f"orders C, H, W and Keras H, W, C: the same values in another order "
                     f"(end on a global pool or a Dense for outputs that compare as they are)")


def _keras_target_shape(shape):
    """A Reshape's dlcore output shape as Keras's ``target_shape``: (C, H, W) -> (H, W, C)."""
    shape = [int(d) for d in shape]
    return [shape[1], shape[2], shape[0]] if len(shape) == 3 else shape


def _resolved_target(target, size):
    """A Keras ``target_shape`` with its -1 (if any) resolved for ``size`` numbers, or the
    target as it is when it cannot be."""
    known = [d for d in target if d != -1]
    if target.count(-1) != 1 or not isinstance(size, int) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in known):
        return target
    product = int(np.prod(known))
    return [size // product if d == -1 else d for d in target] if size % product == 0 \
        else target


def _reshape_map(target):
    """The (C, H, W) map a Keras ``target_shape`` (H, W, C) makes, or None for another rank;
    for a Dense whose units a Reshape turns into that map."""
    if isinstance(target, (list, tuple)) and len(target) == 3 and all(
            isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in target):
        return _flattened_layout((target[2], target[0], target[1]))
    return None


def _keras_columns(kernel, bias, layout, to_keras=True):
    """A Dense's kernel (in, units) and bias (units,) [or none] with its units reordered as
    :func:`_keras_rows` reorders rows: the units a Reshape makes a (C, H, W) map of."""
    if layout is None:
        return kernel, bias
    kernel = _keras_rows(kernel.T, layout, to_keras).T
    bias = [_keras_rows(b.reshape(-1, 1), layout, to_keras).reshape(-1) for b in bias]
    return np.ascontiguousarray(kernel), bias


def _keras_rows(kernel, layout, to_keras=True):
    """A Dense kernel (in, units) whose rows follow dlcore's ``layout`` with its rows in
    Keras's order (``to_keras=False``: Keras's rows in dlcore's order)."""
    if layout is None:
        return kernel
    parts, start = [], 0
    for block in layout:
        size = block if isinstance(block, int) else int(np.prod(block))
        part = kernel[start:start + size]
        if not isinstance(block, int):
            channels, height, width = block
            part = (part.reshape(channels, height, width, -1).transpose(1, 2, 0, 3)
                    if to_keras else
                    part.reshape(height, width, channels, -1).transpose(2, 0, 1, 3))
        parts.append(part.reshape(size, -1))
        start += size
    if start != kernel.shape[0]:
        raise ValueError(f"a Dense kernel of {kernel.shape[0]} rows reads {start} rows")
    return np.concatenate(parts)


def _check_one_row_order(name, first_flattened, flattened):
    """A shared Dense must see one input layout: that of the inputs it was first called on
    (its rows are permuted to Keras's order for those). Inputs in another order would need
    other rows, which no one Keras kernel has."""
    if first_flattened != flattened:
        raise ValueError(f"layer {name!r} (Dense) is shared by inputs flattened from "
                         f"different maps ({first_flattened} and {flattened}): Keras's "
                         "channels-last rows differ between them, so no one kernel serves both")


# -- weight decay and max-norm, both ways -----------------------------------------------------
# Keras's L2(l2) penalises l2 ||w||^2 where dlcore's L2(lambda) penalises lambda / 2 ||w||^2
# (dlcore.regularizers): the same decay is l2 = lambda / 2. L1 is the same number in both.
# Keras's MaxNorm bounds the norm over ``axis`` of its kernel: the inputs of a Dense unit
# (axis 0 of (in, out)), of a convolution's filter (axes 0, 1, 2 of (k_h, k_w, in, out)):
# dlcore's MaxNorm, which bounds each unit's incoming weights (regularizers.KERAS_UNIT_AXES).


def _keras_object_text(value):
    """A Keras object's config as ``ClassName(key=value, ...)``, short, for a warning."""
    if isinstance(value, dict) and isinstance(value.get("class_name"), str) \
            and isinstance(value.get("config"), dict):
        arguments = ", ".join(f"{str(key)[:20]}={str(item)[:20]}"
                              for key, item in list(value["config"].items())[:4])
        return f"{value['class_name'][:40]}({arguments})"
    return str(value)[:80]


def _keras_regularizer(regularizer):
    if regularizer is None:
        return None
    l1, l2 = regularizer.l1, regularizer.l2 / 2
    name, config = (("L1L2", {"l1": l1, "l2": l2}) if l1 and l2 else
                    ("L2", {"l2": l2}) if l2 else ("L1", {"l1": l1}))
    return {"module": "keras.regularizers", "class_name": name, "config": config,
            "registered_name": None}


def _weight_settings(layer):
    """A Dense or convolution's weight decay and max-norm as Keras's layer arguments."""
    settings = {"kernel_regularizer": _keras_regularizer(layer.kernel_regularizer),
                "bias_regularizer": _keras_regularizer(layer.bias_regularizer),
                "activity_regularizer": _keras_regularizer(layer.activity_regularizer)}
    constraint = layer.kernel_constraint
    if constraint is not None:
        axes = KERAS_UNIT_AXES[kind_of(layer)]
        settings["kernel_constraint"] = {
            "module": "keras.constraints", "class_name": "MaxNorm", "registered_name": None,
            "config": {"max_value": constraint.max_value,
                       "axis": axes[0] if len(axes) == 1 else list(axes)}}
    return settings


def _imported_weight_settings(kind, config, notes, name):
    """dlcore's kernel_regularizer, bias_regularizer, activity_regularizer and
    kernel_constraint for a Keras layer's config; what dlcore has no match for (another
    regulariser or constraint, a bias constraint) goes into ``notes`` (a warning each: it only
    trains)."""
    from dlcore.regularizers import MaxNorm, Regularizer, _from_keras
    settings = {}
    for key in ("kernel_regularizer", "bias_regularizer", "activity_regularizer"):
        value = config.get(key)
        if value is None:
            continue
        if isinstance(value, dict) and value.get("module") is None:
            # Keras 2 names no module: in a Keras file the class is Keras's (L2's lambda
            # twice dlcore's), never dlcore's own
            value = {**value, "module": "keras.regularizers"}
        try:
            ported = _from_keras(value)
        except (ValueError, TypeError):
            ported = None
        if isinstance(ported, Regularizer):
            settings[key] = ported
            continue
        notes.append(f"Keras layer {name!r} ({kind}): its {key} {_keras_object_text(value)} is "
                     f"left out (dlcore imports L1, L2 and L1L2)")
    constraint = config.get("kernel_constraint")
    if constraint is not None:
        inner = constraint.get("config") if isinstance(constraint, dict) else None
        axes = inner.get("axis", 0) if isinstance(inner, dict) else None
        axes = tuple(axes) if isinstance(axes, list) else (axes,)
        if isinstance(constraint, dict) and constraint.get("class_name") == "MaxNorm" \
                and axes == KERAS_UNIT_AXES.get(kind):
            try:
                settings["kernel_constraint"] = MaxNorm(inner.get("max_value", 2.0))
            except (ValueError, TypeError):
                pass
        if "kernel_constraint" not in settings:
            expected = KERAS_UNIT_AXES.get(kind)
            axis = None if expected is None else \
                expected[0] if len(expected) == 1 else list(expected)
            notes.append(f"Keras layer {name!r} ({kind}): its kernel_constraint "
                         f"{_keras_object_text(constraint)} is left out (dlcore imports a "
                         f"MaxNorm over each unit's incoming weights"
                         + (f": axis={axis} for a {kind})" if expected else ")"))
    if config.get("bias_constraint") is not None:
        notes.append(f"Keras layer {name!r} ({kind}): its bias_constraint is left out (dlcore "
                     f"has none)")
    return settings


def _check_not_flattened_maps(name, kind, layout):
    """A normalisation of rows flattened from (C, H, W) maps has one parameter per pixel of
    each map, in dlcore's C, H, W order where Keras's are H, W, C: refused both ways (put it
    before the Flatten, where it normalises channels). ``layout``: the rows' (see
    :func:`_row_layout`)."""
    maps = [block for block in layout or () if not isinstance(block, int)]
    if maps:
        raise ValueError(f"layer {name!r} ({kind}) normalises rows flattened from "
                         f"{', '.join(str(tuple(block)) for block in maps)} maps, whose order "
                         f"differs between dlcore (C, H, W) and Keras (H, W, C): put it before "
                         f"the Flatten")


def _with_history(item, renamed):
    """``item`` (inbound nodes, or a part of them) with each Keras tensor's ``keras_history``
    replaced by ``renamed(history)``."""
    if isinstance(item, list):
        return [_with_history(part, renamed) for part in item]
    if isinstance(item, dict):
        history = item.get("config", {}).get("keras_history") \
            if item.get("class_name") == "__keras_tensor__" else None
        if history:
            return {**item, "config": {**item["config"], "keras_history": renamed(history)}}
        return {key: _with_history(value, renamed) for key, value in item.items()}
    return item


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
    if rank == 2:   # (H, W) without channels: the same axes in both
        return axis
    return -1


def _layer(class_name, name, **config):
    if name is not None:
        config = {"name": name, "trainable": True, **config}
    return {"class_name": class_name, "config": config}


def _nhwc(shape):
    shape = tuple(int(v) for v in shape)
    return [shape[1], shape[2], shape[0]] if len(shape) == 3 else list(shape)


def _flat_config(model) -> dict:
    """The Keras config of ``model`` with every nested model's layers in the one model: the
    layout of dlcore's Keras weights files and of ``get_weights(layout="keras")``, as before
    archives kept a nested Sequential."""
    from dlcore.io.keras_archive import serialized_model
    return serialized_model(_Exported(model))


def to_json(model) -> str:
    """The architecture of a built dlcore Sequential or Model as Keras 3's ``to_json`` writes
    it (``model.to_json()``): what ``keras.models.model_from_json`` and
    :func:`dlcore.models.model_from_json` read."""
    from dlcore.io.keras_archive import serialized_model
    return json.dumps(serialized_model(_Exported(model, nest=True)))


def _write_weights(group: h5py.Group, exported: _Exported, config=None, same_as=None) -> None:
    """Keras's legacy weights layout of an exported model into ``group``. ``config`` and
    ``same_as`` as for :func:`dlcore.io.keras_weights.write`: the layout of Keras's own
    (nested) model of a model imported with a layer shared across its nesting, whose export
    is flat. Keras's legacy file holds such a layer's arrays at each of its places (a nested
    model's group holds all its weights), so they are written at each."""
    from dlcore.io.keras_weights import keras_layer_order
    # Keras's legacy loader gives the groups with arrays to its model.layers by position, so
    # they are listed in that order (map_graph's for a graph), not in the order of the config
    config = config or exported.model_config()
    same_as = same_as or {}
    names = [name for name, kind in keras_layer_order(config) if kind != "InputLayer"]
    _string_list_attribute(group, "layer_names", names)
    group.attrs["backend"] = KERAS_BACKEND
    group.attrs["keras_version"] = KERAS_VERSION
    entries = {entry["config"]["name"]: entry for entry in config["config"]["layers"]}
    for name in names:
        layer_group = group.create_group(name)
        entry = entries[name]
        if entry["class_name"] in ("Sequential", "Functional"):
            # a nested model's group holds its layers' arrays as <layer>/<array>, in the order
            # of Keras's legacy weights of a model: its trainable arrays, then the others
            arrays = _nested_legacy_arrays(exported, entry, same_as)
        else:
            arrays = [(f"{exported.name}/{name}/{weight}", array)
                      for weight, array, _ in _named_arrays(exported, entry, same_as)]
        _string_list_attribute(layer_group, "weight_names", [path for path, _ in arrays])
        for path, array in arrays:
            layer_group.create_dataset(path, data=np.ascontiguousarray(
                array, dtype=exported.float_type))


def _leaf_names(entries, skipped=()) -> list[str]:
    """The names of the layers (no InputLayer, none of the classes ``skipped``) of Keras layer
    ``entries``, those of a model nested in them included (in its place)."""
    names = []
    for entry in entries:
        if entry["class_name"] in ("Sequential", "Functional"):
            names += _leaf_names(entry["config"]["layers"], skipped)
        elif entry["class_name"] != "InputLayer" and entry["class_name"] not in skipped:
            names.append(entry["config"]["name"])
    return names


def _matched_call(inner, nodes, budget=100_000):
    """{id(tensor of ``inner``'s graph): the tensor of one call of it that stands for it} for
    the ``nodes`` a call of the nested model ``inner`` added to a graph (the same layers on
    other tensors), or None when no match is found within ``budget`` steps. Each node of
    ``inner`` in turn is matched to a node of the call of its layer on the tensors matched to
    its inputs, an input of ``inner`` taking the tensor found in its place; a choice that
    later fails is undone (a layer called on each of two inputs is matched by what reads its
    outputs). A node the graph does not run (it makes an output of ``inner`` that the graph
    leaves unused) is left unmatched; every node of the call must be matched."""
    from dlcore.functional import topological_nodes
    inner_nodes = inner.nodes if hasattr(inner, "nodes") else \
        topological_nodes(inner.inputs, inner.outputs)   # a Sequential's chain
    by_layer = collections.defaultdict(list)
    for node in nodes:
        by_layer[id(node.layer)].append(node)
    inputs = {id(tensor) for tensor in inner.inputs}
    image, used = {}, set()

    def candidates(node):
        """The call's nodes ``node`` may be, and for each the inputs of ``inner`` it binds;
        then None: the node left unmatched."""
        for other in by_layer.get(id(node.layer), ()):
            if id(other) in used or len(other.inputs) != len(node.inputs) or \
                    other.takes_list != node.takes_list:
                continue
            bound, fits = {}, True
            for mine, theirs in zip(node.inputs, other.inputs):
                known = image.get(id(mine), bound.get(id(mine)))
                if known is None and id(mine) in inputs:
                    bound[id(mine)] = theirs
                elif known is not theirs:
                    fits = False
                    break
            if fits:
                yield other, bound
        yield None, {}

    # a depth-first search over the choices, without recursion (graphs of thousands of nodes)
    stack, position = [], 0
    while position < len(inner_nodes):
        budget -= 1
        if budget < 0:
            return None
        if len(stack) == position:
            stack.append((candidates(inner_nodes[position]), None, {}))
        choices, chosen, bound = stack[position]
        if chosen is not None:   # undo the last choice before the next
            used.discard(id(chosen))
            image.pop(id(inner_nodes[position].output), None)
        for key in bound:
            image.pop(key, None)
        try:
            chosen, bound = next(choices)
        except StopIteration:
            stack.pop()
            position -= 1
            if position < 0:
                return None
            continue
        if chosen is not None:
            used.add(id(chosen))
            image.update(bound)
            image[id(inner_nodes[position].output)] = chosen.output
        stack[position] = (choices, chosen, bound)
        position += 1
        if position == len(inner_nodes) and len(used) != len(nodes):
            position -= 1   # a call's node is left over: look further
    return image


def _named_arrays(exported: _Exported, entry, same_as=None) -> list:
    """``[(Keras's variable name, array, trainable)]`` of the layer of Keras ``entry`` (the
    layer ``same_as`` names for it, if any): a normalisation's own names (its moving
    statistics not trainable), else kernel and bias."""
    name = (same_as or {}).get(entry["config"]["name"], entry["config"]["name"])
    arrays = exported.weights.get(name, [])
    weights = (exported.normalization_arrays.get(name) if entry["class_name"] in _NORMALIZATIONS
               else ("kernel", "bias"))
    trainable = entry["config"].get("trainable", True)
    return [(weight, array, trainable and not weight.startswith("moving_"))
            for weight, array in zip(weights, arrays)]


def _nested_legacy_arrays(exported: _Exported, entry, same_as=None) -> list:
    """``[(weight name, array)]`` of the nested model of Keras ``entry`` as Keras's legacy file
    holds them (Keras's ``trainable_weights + non_trainable_weights`` of the model: with the
    model frozen, every array in its layers' order)."""
    named = _nested_named_arrays(exported, entry, "", same_as or {})
    if not entry["config"].get("trainable", True):
        return [(path, array) for path, array, _ in named]
    return [(path, array) for path, array, trainable in named if trainable] + \
        [(path, array) for path, array, trainable in named if not trainable]


def _nested_named_arrays(exported: _Exported, entry, prefix, same_as) -> list:
    """``[(path, array, trainable)]`` of the layers of the nested model of Keras ``entry`` in
    its layers' order, a model nested in it giving its own in its place
    (``<model>/<layer>/<array>``), trainable only when every model around it is."""
    from dlcore.io.keras_weights import keras_layer_order
    inner = {layer["config"]["name"]: layer for layer in entry["config"]["layers"]}
    named = []
    for name, kind in keras_layer_order(entry):
        if kind in ("Sequential", "Functional"):
            frozen = not inner[name]["config"].get("trainable", True)
            named += [(path, array, trainable and not frozen) for path, array, trainable in
                      _nested_named_arrays(exported, inner[name], f"{prefix}{name}/",
                                           same_as)]
        elif kind != "InputLayer":
            named += [(f"{prefix}{same_as.get(name, name)}/{weight}", array, trainable)
                      for weight, array, trainable in _named_arrays(exported, inner[name],
                                                                    same_as)]
    return named


def _string_list_attribute(group, name, values):
    if values:
        group.attrs.create(name, np.array(values, dtype=h5py.string_dtype()))
    else:
        group.attrs[name] = np.zeros(0)   # what Keras itself writes for an empty list


def exported_training_config(model, exported: _Exported) -> dict | None:
    """The ``training_config`` Keras gets for ``model`` (:mod:`dlcore.io.keras_training`);
    None when it is not compiled, or, with a note, when Keras has no equivalent of a setting
    (the model then loads uncompiled in Keras)."""
    from dlcore.io.keras_training import keras_training_config
    try:
        return keras_training_config(model, exported.notes)
    except ValueError as error:
        exported.notes.append(f"the compile settings are left out of the Keras file (the model "
                              f"loads uncompiled in Keras): {error}")
        return None


def save_keras(model, path: str | os.PathLike) -> list[str]:
    """Write ``model`` (a built Sequential or Model) as a Keras legacy HDF5 model file,
    atomically, with a ``training_config`` when it is compiled (and Keras has its optimiser,
    loss and metrics: :mod:`dlcore.io.keras_training`).

    Returns the notes (layers and settings left out); raises ValueError naming a layer without
    a Keras equivalent (L2Pool2D) and TypeError for anything but a dlcore model, before writing.
    """
    exported = _Exported(model, nest=True)
    config = json.dumps(exported.model_config())
    training = exported_training_config(model, exported)
    # No optimizer_weights, though Keras reads them (and dlcore.load does): Keras 3.15 cannot
    # train a model loaded with them ("Unknown variable: ..." on fit, its own files too).
    with atomic_output_path(path) as temporary, h5py.File(temporary, "w") as h5file:
        h5file.attrs["model_config"] = config
        h5file.attrs["keras_version"] = KERAS_VERSION
        h5file.attrs["backend"] = KERAS_BACKEND
        if training is not None:
            h5file.attrs["training_config"] = json.dumps(training)
        _write_weights(h5file.create_group("model_weights"), exported)
        h5file.flush()
    return exported.notes


def save_weights(model, path: str | os.PathLike) -> None:
    """``model.save_weights(path)``: Keras's HDF5 weights layout, kernels in Keras's NHWC
    order: Keras 3's (:mod:`dlcore.io.keras_weights`) when the name ends in ``.weights.h5``, as
    Keras 3 requires of its weights files, else the legacy one (``layer_names`` at the root, a
    group per layer with ``weight_names``). A nested model keeps its nesting as Keras's own
    model of the architecture holds it (its layers' arrays inside its group), so that Keras's
    ``load_weights`` reads the file; one dlcore cannot nest in Keras is written flat."""
    exported = _Exported(model, architecture=False, nest=True)
    forget_stale_keras_nesting(model)
    same_as = getattr(model, "keras_same_as_", None)
    with atomic_output_path(path) as temporary, h5py.File(temporary, "w") as h5file:
        if str(path).endswith(".weights.h5"):
            from dlcore.io import keras_weights
            # a layer shared across the nesting of the Keras model it came from: the export
            # is flat, Keras's own model nested (its load_weights reads that layout)
            keras_weights.write(h5file, exported, same_as and model.keras_nested_config_,
                                same_as)
        else:
            _write_weights(h5file, exported, same_as and model.keras_nested_config_, same_as)
        h5file.flush()


# --------------------------------------------------------------------------------------------
# import
# --------------------------------------------------------------------------------------------
def is_keras_file(h5file: h5py.File) -> bool:
    """Whether an open HDF5 file is a Keras model file (a ``model_config`` root attribute and no
    dlcore ``format``)."""
    return "model_config" in h5file.attrs and "format" not in h5file.attrs


def is_keras_weights_file(h5file: h5py.File) -> bool:
    """Whether an open HDF5 file holds Keras weights without an architecture: the legacy
    layout (``layer_names`` at the root) or Keras 3's (a ``layers`` group)."""
    from dlcore.io import keras_weights
    if "format" in h5file.attrs or "model_config" in h5file.attrs:
        return False
    return "layer_names" in h5file.attrs or keras_weights.is_weights_file(h5file)


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
            if not isinstance(config, dict):   # a damaged file's JSON list, string or number
                raise _config_error(filename, f"the Keras model config is a JSON "
                                              f"{type(config).__name__}, not an object of a "
                                              f"class_name and a config; the file is damaged "
                                              f"or was not written by Keras")
            kind = config.get("class_name")
            raise _config_error(filename, f"the Keras model is a {str(kind)[:60]!r}; dlcore "
                                          f"imports Keras Sequential and Functional models")
        body = config["config"]
        entries = body.get("layers")
        if not isinstance(entries, list) or not entries:
            raise _config_error(filename, "the Keras model_config lists no layers")
        _check_layer_count(filename, len(entries), "layers")
        self.name = body.get("name") if isinstance(body.get("name"), str) else "sequential"
        # a Sequential that nests a model comes as a functional config (_as_functional)
        self.nested_models = {}
        self.input_shape = self._batch_shape(body.get("build_input_shape"))
        self.layers = []          # dlcore layers
        self.converters = {}      # Keras layer name -> (dlcore layer name, function on arrays)
        self.keras_names = []
        self.keras_classes = {}   # Keras layer name -> its class name
        self.notes = []           # Keras layers left out
        self._padding = None
        self._current = None
        self._flat_maps = None    # the current rows' layout (see _row_layout)
        self.dense_inputs = {}    # Keras Dense name -> the layout of its input rows
        named = [(entry["config"].get("name"), entry.get("class_name"), entry["config"])
                 for entry in entries
                 if isinstance(entry, dict) and isinstance(entry.get("config"), dict)]
        self.dense_columns = _reshaped_dense_units(
            (name, kind, config, [previous[0]])   # each takes the layer before
            for previous, (name, kind, config) in zip([(None,)] + named, named))
        self.n_parameters = 0
        for entry in entries:
            self._add(entry)
        if self._padding is not None:
            raise self._unsupported(self._padding[0], "ZeroPadding2D", _PADDING_PLACE)
        if self.input_shape is None:
            raise _config_error(self.filename, "the Keras model does not say its input shape "
                                               "(no InputLayer or batch_shape); start it with "
                                               "keras.Input(shape=...) and save it again")
        if self.keras_names and self._current is not None and len(self._current) == 1:
            _note_output_order(self.notes, self.keras_names[-1], self._flat_maps)

    def _note_nested(self, entry, inner):
        """Record the nested model of layer ``entry`` and its layers' names: only Keras's own
        models (a custom subclass may compute otherwise), and ``inner`` holding no model (the
        functional importer inlines deeper models first: :meth:`_flattened_inner`)."""
        name, kind = entry["config"].get("name"), entry.get("class_name")
        if entry.get("registered_name") not in (None, kind) or entry.get("module") not in (
                None, "keras", "keras.models", "keras.src.models.functional"):
            raise self._unsupported(name, kind, "it is a custom model class (only Keras's own "
                                                "Sequential and functional models are "
                                                "inlined); rebuild it in Keras as a "
                                                "keras.Sequential or keras.Model(inputs, "
                                                "outputs) and save it again")
        if any(isinstance(layer, dict) and layer.get("class_name") in _MODEL_CLASSES
               for layer in inner):
            raise self._unsupported(name, entry.get("class_name"),
                                    "a model nested in a nested model is not imported (one "
                                    "level is)")
        names = [(layer.get("config") or {}).get("name") for layer in inner
                 if isinstance(layer, dict) and layer.get("class_name") != "InputLayer"]
        if not isinstance(name, str) or not all(isinstance(n, str) for n in names):
            raise _config_error(self.filename, f"a model nested in the Keras model has an "
                                               f"invalid name {str(name)[:60]!r}")
        self.nested_models[name] = names

    def _unsupported(self, name, kind, why=None, imported=IMPORTED_LAYERS, custom=False):
        """The error naming Keras layer ``name`` of class ``kind`` and ``why`` it is not
        imported; without ``why``, that dlcore has no such layer (or, ``custom``, that it is a
        class of one's own), and the fix: a model of the ``imported`` classes (a Sequential's,
        or a functional model's with the merges)."""
        why = why or (("it is a custom layer, whose code dlcore never runs" if custom else
                       "a Lambda layer holds Python code, which dlcore never runs" if kind ==
                       "Lambda" else f"dlcore has no {str(kind)[:60]} layer")
                      + "; rebuild the model in Keras from the layers dlcore imports ("
                      + ", ".join(k for k in imported if k != "InputLayer")
                      + ") and save it again")
        return _config_error(self.filename, f"Keras layer {str(name)[:80]!r} ({str(kind)[:60]}) "
                                            f"cannot be imported: {why}")

    def _batch_shape(self, value):
        if value is None:
            return None
        if not isinstance(value, list) or len(value) not in (2, 3, 4) or any(
                isinstance(v, bool) or not isinstance(v, int) or not 0 < v < 2**31
                for v in value[1:]):
            raise _config_error(self.filename, f"the Keras input shape {str(value)[:80]} is not "
                                               f"(batch, features), (batch, H, W) or (batch, H, "
                                               f"W, C) of positive integers")
        shape = tuple(value[1:])
        # (H, W, C) images become dlcore's (C, H, W); (H, W) arrays without channels (Keras's
        # MNIST MLP) keep their shape, and flatten alike in both
        return (shape[2], shape[0], shape[1]) if len(shape) == 3 else shape

    def _entry(self, entry, kinds):
        """``(class_name, config, name)`` of a layer entry, refused in one line unless it is
        one of Keras's own layers in ``kinds`` with a valid name, channels last."""
        if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
            raise _config_error(self.filename, "a layer of the Keras model_config is not an "
                                               "object with a config")
        kind, config = entry.get("class_name"), entry["config"]
        name = config.get("name")
        if not isinstance(name, str) or not name or "/" in name or len(name) > _MAX_NAME:
            raise _config_error(self.filename, f"a Keras {str(kind)[:60]} layer has the invalid "
                                               f"name {str(name)[:80]!r}")
        custom = entry.get("registered_name") not in (None, kind) or \
            entry.get("module") not in (None, "keras.layers")
        if kind not in kinds or custom:
            raise self._unsupported(name, kind, imported=kinds, custom=custom)
        if config.get("data_format", "channels_last") != "channels_last":
            raise self._unsupported(name, kind, "only channels_last (Keras's default) is "
                                                "imported; build the Keras model with "
                                                "data_format='channels_last' and save it again")
        if name in self.keras_classes:
            raise _config_error(self.filename, f"the Keras model_config names two layers "
                                               f"{name[:80]!r}")
        return kind, config, name

    def _add(self, entry):
        from dlcore import layers
        from dlcore.layers import ImageAugmentation

        kind, config, name = self._entry(entry, IMPORTED_LAYERS)
        shape = config.get("batch_shape", config.get("batch_input_shape"))
        if kind == "InputLayer" or shape is not None:
            self.input_shape = self._batch_shape(shape)
            if kind == "InputLayer":
                return
        if self._padding is not None and kind != "Conv2D":
            raise self._unsupported(self._padding[0], "ZeroPadding2D", _PADDING_PLACE)
        self.keras_names.append(name)
        self.keras_classes[name] = kind
        incoming = self._current or self.input_shape
        try:
            if kind in _NORMALIZATIONS:
                _check_not_flattened_maps(name, kind, self._flat_maps)
            previous = self._flat_maps
            if kind == "Dense":
                self.dense_inputs[name] = previous
            self._flat_maps = (_relation(incoming, previous) if kind == "Flatten" and incoming
                               is not None else self.dense_columns.get(name) if kind == "Dense"
                               else self._flat_maps if kind in _ROW_KEEPING else None)
            if kind in _AUGMENTATION:
                at_input = all(isinstance(layer, ImageAugmentation) for layer in self.layers)
                layer = self._augmentation(kind, name, config, self.layers[-1] if at_input
                                           and self.layers else None, at_input)
            else:
                layer = self._layer(kind, name, config, layers)
            if layer is not None and self.input_shape is not None:
                # the first layer whose geometry does not fit its input is named here
                if self._current is None:
                    self._current = self._checked_shape(self.input_shape)
                self.n_parameters += _parameter_count(layer, self._current)
                self._current = self._checked_shape(layer.compute_output_shape(self._current))
            if kind == "Reshape":
                if incoming is None:
                    raise ValueError("a Reshape needs the model's input shape")
                self._flat_maps = _reshaped_layout(name, incoming, previous, self._current)
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

    def _image_shape(self, what):
        shape = self._current or self.input_shape
        if shape is None or len(shape) != 3:
            raise ValueError(f"{what} needs (height, width, channels) inputs")
        return shape

    def _same_padding(self, kernel, strides):
        """Keras's 'same' on this layer's input, per side: ((top, bottom), (left, right)),
        the odd row or column at the bottom or right
        (:func:`dlcore.layers.geometry.keras_same_padding`)."""
        shape = self._image_shape("padding='same'")
        return [list(keras_same_padding(n, k, s)) for n, k, s in zip(shape[1:], kernel, strides)]

    def _activation(self, config):
        activation = config.get("activation", "linear")
        if activation is None:
            activation = "linear"
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation {str(activation)[:60]!r} is not one of "
                             f"{', '.join(_ACTIVATIONS)}")
        return activation

    def _augmentation(self, kind, name, config, previous, at_input):
        """dlcore's ImageAugmentation for a Keras RandomFlip("horizontal") or a
        RandomTranslation by whole pixels filled with zeros at the input (merged into the
        ImageAugmentation ``previous`` made for the layer before, when it can hold both); None
        when merged, or when it is left out (the identity at inference), with a note why."""
        from dlcore.layers import ImageAugmentation
        shape = self._current or self.input_shape
        shift, why = 0, None
        if kind not in ("RandomFlip", "RandomTranslation"):
            why = ("dlcore's ImageAugmentation has no transformation like it (Keras's own "
                   "angles, zooms, colours and fill)")
        elif shape is None or len(shape) != 3:
            why = "it does not act on images"
        elif not at_input:
            why = "it is not at the input (dlcore's ImageAugmentation is a network's first layer)"
        elif kind == "RandomFlip":
            mode = config.get("mode", "horizontal_and_vertical")
            if mode != "horizontal":
                why = (f"its mode {str(mode)[:40]!r} flips upside down; dlcore's "
                       f"ImageAugmentation mirrors left-right only")
        else:
            shift, why = _whole_shift(config, shape)
        if why is None and previous is not None:
            if kind == "RandomFlip" and not previous.horizontal_flip:
                previous.horizontal_flip = True
                return None
            if kind == "RandomTranslation" and not previous.max_shift:
                previous.max_shift = shift
                return None
        if why is not None:
            self.notes.append(f"Keras layer {name!r} ({kind}) is left out (the identity at "
                              f"inference): {why}")
            return None
        return ImageAugmentation(max_shift=shift, horizontal_flip=kind == "RandomFlip",
                                 name=name)

    def _layer(self, kind, name, config, layers):
        """The dlcore layer of one Keras layer entry (None for a ZeroPadding2D, merged into the
        convolution it feeds), frozen when Keras's is."""
        layer = self._new_layer(kind, name, config, layers)
        if layer is not None:
            layer.trainable = config.get("trainable", True)
        if config.get("activity_regularizer") is not None and \
                not hasattr(layer, "activity_regularizer"):
            # Keras lets every layer penalise its outputs; dlcore's weighted layers only: the
            # penalty would be gone from the loss without a word
            self.notes.append(f"Keras layer {name!r} ({kind}): its activity_regularizer "
                              f"{_keras_object_text(config['activity_regularizer'])} is left "
                              f"out (dlcore's layers with weights take one: give it to the "
                              f"Dense or convolution whose outputs this layer passes on)")
        return layer

    def _new_layer(self, kind, name, config, layers):   # noqa: C901 - one case per layer class
        if kind == "ZeroPadding2D":
            self._padding = (name, _zero_padding(config.get("padding")))
            return None
        if kind in ("Conv2D", "Conv2DTranspose"):
            if _pair(config.get("dilation_rate", 1)) != (1, 1) or config.get("groups", 1) != 1:
                raise ValueError("dilation and grouped convolutions are not imported (dlcore's "
                                 "convolutions have neither); build the layer with "
                                 "dilation_rate=1 and groups=1")
            padding = config.get("padding", "valid")
            if padding not in ("valid", "same"):
                raise ValueError(f"padding {str(padding)[:20]!r} is not imported ('valid' and "
                                 f"'same' are)")
            kernel, strides = _pair(config.get("kernel_size")), _pair(config.get("strides", 1))
            options = {"activation": self._activation(config), "name": name,
                       "use_bias": config.get("use_bias", True),
                       **_imported_weight_settings(kind, config, self.notes, name)}
            self.converters[name] = (name, _kernel_converter)
            if kind == "Conv2DTranspose":
                if config.get("output_padding") is not None:
                    raise ValueError("an output_padding is not imported")
                return layers.Conv2DTranspose(config.get("filters"), kernel, strides=strides,
                                              padding=padding, **options)
            if self._padding is not None:
                if padding != "valid":
                    raise ValueError(_PADDING_PLACE)
                padding = self._padding[1]
                self._padding = None
            elif padding == "same":
                padding = self._same_padding(kernel, strides)
            return layers.Conv2D(config.get("filters"), kernel, stride=strides, padding=padding,
                                 floor=True, **options)
        if kind == "LocallyConnected2D":
            return self._locally_connected(name, config, layers)
        if kind == "Dense":   # of rows, or of each step's or pixel's features (channels)
            layer = layers.Dense(config.get("units"), activation=self._activation(config),
                                 use_bias=config.get("use_bias", True), name=name,
                                 **_imported_weight_settings(kind, config, self.notes, name))
            self.converters[name] = (name, _dense_converter())
            return layer
        if kind in ("MaxPooling2D", "AveragePooling2D"):
            pool_size = _pair(config.get("pool_size", 2))
            strides = config.get("strides")
            strides = pool_size if strides is None else _pair(strides)
            padding = config.get("padding", "valid")
            if padding not in ("valid", "same"):
                raise ValueError(f"padding {str(padding)[:20]!r} is not imported ('valid' and "
                                 f"'same' are)")
            cls = layers.MaxPool2D if kind == "MaxPooling2D" else layers.AvgPool2D
            return cls(pool_size, stride=strides, name=name, floor=True,
                       padding=self._same_padding(pool_size, strides) if padding == "same"
                       else "valid")
        if kind in _NORMALIZATIONS:
            return self._normalization(kind, name, config, layers)
        if kind == "Rescaling":
            if isinstance(config.get("scale"), (list, dict)) or \
                    isinstance(config.get("offset"), (list, dict)):
                raise ValueError("a per-channel scale or offset is not imported (one number "
                                 "each is)")
            return layers.Rescaling(config.get("scale"), config.get("offset", 0.0), name=name)
        if kind in _GLOBAL_POOLS:
            return getattr(layers, _GLOBAL_POOLS[kind])(config.get("keepdims", False),
                                                        name=name)
        if kind == "UpSampling2D":
            return layers.UpSampling2D(_pair(config.get("size", 2)),
                                       config.get("interpolation", "nearest"), name=name)
        if kind == "Cropping2D":
            return layers.Cropping2D(config.get("cropping", 0), name=name)
        if kind == "Flatten":
            return layers.Flatten(name=name)
        if kind == "Reshape":
            target = config.get("target_shape")
            if not isinstance(target, list) or not 1 <= len(target) <= 3 or \
                    target.count(-1) > 1 or not all(
                        isinstance(d, int) and not isinstance(d, bool) and
                        (0 < d < 2**31 or d == -1) for d in target):
                raise ValueError(f"its target_shape {str(target)[:60]} is not 1 to 3 positive "
                                 f"sizes (one may be -1)")
            incoming = self._current or self.input_shape
            size, known = int(np.prod(incoming or ())), int(np.prod([d for d in target
                                                                    if d != -1]))
            if incoming is not None and (size % known if -1 in target else size != known):
                raise ValueError(f"its target_shape {target} does not hold the {size} values "
                                 f"of a sample")
            return layers.Reshape([target[2], target[0], target[1]] if len(target) == 3
                                  else target, name=name)
        if kind == "Dropout":
            if config.get("noise_shape") is not None:
                raise ValueError("a Dropout with a noise_shape is not imported (dlcore drops "
                                 "each value on its own); build it without noise_shape")
            return layers.Dropout(config.get("rate"), seed=config.get("seed"), name=name)
        if kind == "GaussianNoise":
            return layers.GaussianNoise(config.get("stddev"), seed=config.get("seed"), name=name)
        if kind == "Activation":
            return layers.Activation(self._activation(config), name=name)
        if kind == "ReLU":
            return self._relu(name, config, layers)
        if kind == "LeakyReLU":
            # Keras 2 called the slope alpha
            slope = config.get("negative_slope", config.get("alpha", 0.3))
            return layers.LeakyReLU(slope, name=name)
        if kind == "ELU":
            if config.get("alpha", 1.0) != 1.0:
                raise ValueError(f"an ELU with alpha {str(config.get('alpha'))[:30]} is not "
                                 f"imported (dlcore's ELU has Keras's default alpha 1)")
            return layers.ELU(name=name)
        return layers.Softmax(self._softmax_axis(config.get("axis", -1)), name=name)

    def _locally_connected(self, name, config, layers):
        """tf.keras 2's LocallyConnected2D (Keras 3 removed it) as dlcore's: its 'same'
        windows start ``k // 2`` before ``stride * position`` (tf.keras 2's
        ``conv_connected_inputs``), dlcore's padding of that many zeros at the top and left,
        and as many at the bottom and right as the last window needs."""
        implementation = config.get("implementation", 1)
        if implementation not in (1, 2, 3) or isinstance(implementation, bool):
            raise ValueError(f"its implementation {str(implementation)[:20]} is not tf.keras "
                             f"2's 1, 2 or 3")
        padding = config.get("padding", "valid")
        if padding not in ("valid", "same") or (padding == "same" and implementation == 1):
            raise ValueError(f"padding {str(padding)[:20]!r} is not imported ('valid', and "
                             f"'same' with implementation 2 or 3, are)")
        kernel, strides = _pair(config.get("kernel_size")), _pair(config.get("strides", 1))
        if padding == "same":
            shape = self._current or self.input_shape
            if shape is None or len(shape) != 3:
                raise ValueError("a 'same' LocallyConnected2D needs images of a known size")
            padding = [[k // 2, max(0, (-(-n // s) - 1) * s + k - k // 2 - n)]
                       for n, k, s in zip(shape[1:], kernel, strides)]
        options = {"activation": self._activation(config), "name": name,
                   "use_bias": config.get("use_bias", True),
                   **_imported_weight_settings("LocallyConnected2D", config, self.notes, name)}
        self.converters[name] = (name, _locally_connected_converter(implementation))
        return layers.LocallyConnected2D(config.get("filters"), kernel, stride=strides,
                                         padding=padding, floor=True, **options)

    def _softmax_axis(self, axis):
        """dlcore's axis of Keras's Softmax over ``axis``: its last (the channels of (H, W, C)
        maps, the classes of rows) is dlcore's 1; any other is refused."""
        axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
        rank = len(self._current or getattr(self, "input_shape", None) or ())
        if isinstance(axis, int) and not isinstance(axis, bool) and axis in (-1, rank or -1):
            return 1
        raise ValueError(f"only a softmax over the last axis (the channels; axis -1) is "
                         f"imported, not axis {str(axis)[:20]}: dlcore's maps are channels "
                         f"first and its softmax runs over their channels alone")

    @staticmethod
    def _relu(name, config, layers):
        """Keras's ReLU layer: the plain one, its max_value 6 (relu6), or its negative slope
        alone (a LeakyReLU); a threshold or another cap is refused."""
        cap, slope = config.get("max_value"), config.get("negative_slope", 0.0)
        if config.get("threshold", 0.0) not in (None, 0.0) or cap not in (None, 6.0) or (
                cap is not None and slope not in (None, 0.0)):
            raise ValueError("a ReLU with a threshold, a max_value other than 6, or both a "
                             "max_value and a slope is not imported")
        if cap is not None:
            return layers.Activation("relu6", name=name)
        if slope not in (None, 0.0):
            return layers.LeakyReLU(slope, name=name)
        return layers.ReLU(name=name)

    def _normalization(self, kind, name, config, layers):
        """Keras's BatchNormalization or LayerNormalization over the channels (its axis -1,
        channels last), without regularisers or constraints on gamma and beta (nor
        LayerNormalization's rms_scaling); its arrays are dlcore's as they are."""
        rank = len(self._current or getattr(self, "input_shape", None) or ())
        axis = config.get("axis", -1)
        axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
        if axis not in (-1, rank):
            raise ValueError(f"only a normalisation over the channels (axis -1) is imported, not "
                             f"axis {str(axis)[:20]}; build the layer with axis=-1 on "
                             f"channels-last maps")
        for key in ("beta_regularizer", "gamma_regularizer", "beta_constraint",
                    "gamma_constraint"):
            if config.get(key) is not None:
                raise ValueError(f"a {key} is not imported")
        options = {"epsilon": config.get("epsilon", 1e-3), "center": config.get("center", True),
                   "scale": config.get("scale", True), "name": name}
        # a LayerNormalization without gamma and beta has no arrays in Keras's file (a
        # BatchNormalization keeps its moving statistics)
        if kind == "BatchNormalization" or options["center"] or options["scale"]:
            self.converters[name] = (name, _as_stored)
        if kind == "LayerNormalization":
            if config.get("rms_scaling", False) is not False:
                raise ValueError("a LayerNormalization with rms_scaling is not imported")
            return layers.LayerNormalization(**options)
        return layers.BatchNormalization(momentum=config.get("momentum", 0.99), **options)


def _as_stored(arrays):
    """Arrays whose layout is the same in Keras and dlcore (a normalisation's)."""
    return list(arrays)


def _zero_padding(value):
    """Keras's ZeroPadding2D padding (an int, (symmetric_h, symmetric_w) or ((top, bottom),
    (left, right))) as ((top, bottom), (left, right))."""
    def whole(v):
        return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**20
    if whole(value):
        return ((value, value), (value, value))
    if isinstance(value, list) and len(value) == 2:
        if all(whole(v) for v in value):
            return ((value[0], value[0]), (value[1], value[1]))
        if all(isinstance(v, list) and len(v) == 2 and all(whole(p) for p in v)
               for v in value):
            return tuple(tuple(v) for v in value)
    raise ValueError(f"the padding {str(value)[:60]} is not an integer, a pair or "
                     f"((top, bottom), (left, right)) of them")


def _whole_shift(config, shape):
    """``(max_shift, None)`` for a RandomTranslation that shifts by up to the same whole number
    of pixels along both axes and fills with zeros, as ImageAugmentation does, else
    ``(0, why not)``."""
    shifts = []
    for key, size in (("height_factor", shape[1]), ("width_factor", shape[2])):
        factor = config.get(key)
        if isinstance(factor, list) and len(factor) == 2 and all(
                isinstance(f, (int, float)) and not isinstance(f, bool) for f in factor) \
                and factor[0] == -factor[1]:
            factor = factor[1]
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or \
                not 0 <= abs(factor) <= 1:
            return 0, f"its {key} {str(factor)[:40]} is not a factor up to 1 either way"
        pixels = abs(factor) * size
        if abs(pixels - round(pixels)) > 1e-3:
            return 0, (f"its {key} {factor:g} shifts by up to {pixels:g} pixels; dlcore's "
                       f"ImageAugmentation shifts by whole pixels")
        shifts.append(int(round(pixels)))
    if shifts[0] != shifts[1]:
        return 0, (f"it shifts by up to {shifts[0]} rows and {shifts[1]} columns; dlcore's "
                   f"ImageAugmentation shifts as far along both")
    if shifts[0] >= min(shape[1:]):
        # ImageAugmentation refuses to train with such a shift (a blank image with a label)
        height, width = (min(shape[1:]) / size for size in shape[1:])
        return 0, (f"it shifts {shape[1]}x{shape[2]} images by up to {shifts[0]} pixels, "
                   f"entirely out of the picture (a blank training image with a label); "
                   f"give a height_factor below {height:g} and a width_factor below {width:g}")
    if config.get("fill_mode", "reflect") != "constant" or config.get("fill_value", 0.0) != 0:
        return 0, (f"it fills with {str(config.get('fill_mode', 'reflect'))[:20]!r}; dlcore's "
                   f"ImageAugmentation fills with zeros")
    if config.get("interpolation", "bilinear") != "nearest":
        return 0, ("it interpolates between pixels; dlcore's ImageAugmentation shifts by "
                   "whole pixels (Keras's interpolation='nearest')")
    return shifts[0], None


class _Waiting(Exception):
    """A node's input that no layer has made yet: the node waits for it."""

    def __init__(self, key):
        super().__init__(key)
        self.key = key


class _FunctionalImported(_Imported):
    """A Keras functional model (``class_name`` Functional): its layers called on tensors as
    ``inbound_nodes`` say (Keras 3's form), shared layers and several inputs and outputs
    included; builds a :class:`dlcore.Model`.

    Keras lists a layer once, with every call (node) of it, in an order where a later call of
    a shared layer may read a layer listed after it; Keras then defers that call until its
    input exists. So does this: a layer's calls run in their order, each as soon as its inputs
    exist (a node waiting for a tensor is woken when that tensor is made), and a call whose
    input never appears is refused in one line."""

    graph = True

    def __init__(self, config, filename, same_as=None):
        from dlcore import Input
        self.filename = filename
        # a nested model's layer (renamed by _nested_names_unique) -> the layer of the model it
        # is (:func:`shared_across_nesting`): its calls call that one dlcore layer
        self.same_as = dict(same_as or {})
        body = config.get("config")
        entries = body.get("layers") if isinstance(body, dict) else None
        if not isinstance(entries, list) or not entries:
            raise _config_error(filename, "the Keras model_config lists no layers")
        _check_layer_count(filename, len(entries), "layers")
        self._aliases, self.nested_models = {}, {}
        # Keras layer name -> (its nested model's name, its nodes per call of that model);
        # (nested model, call number) -> the ModelCall and the nodes it made
        self._nested_of, self._nested_entries, self._model_calls = {}, {}, {}
        # nested model -> how the models nested in it were inlined into it (_flattened_inner);
        # id(node) -> (Keras layer name, node index) of each node a nested model's call made
        self._plans, self._node_keys = {}, {}
        entries = self._inlined(entries)
        _check_layer_count(filename, len(entries), "layers, its nested models' included")
        _check_layer_count(filename, sum(len(entry.get("inbound_nodes") or ())
                                         for entry in entries
                                         if isinstance(entry, dict) and
                                         isinstance(entry.get("inbound_nodes"), list)),
                           "calls of layers")
        self.name = body.get("name") if isinstance(body.get("name"), str) else "model"
        self.converters, self.keras_names, self.dense_inputs = {}, [], {}
        renamed = {nested: layer for (nested, _, _), (layer, _) in self._aliases.items()}
        self.dense_columns = _reshaped_dense_units(
            (entry["config"].get("name"), entry.get("class_name"), entry["config"],
             [renamed.get(_first_input_name(entry), _first_input_name(entry))])
            for entry in entries
            if isinstance(entry, dict) and isinstance(entry.get("config"), dict))
        self.keras_classes, self.notes = {}, []
        self.n_parameters, self._padding, self.input_shape, self._current = 0, None, None, None
        # (layer name, node index) -> tensor; tensor id -> flattened map; built layers; the
        # ImageAugmentation that made a tensor
        self._tensors, self._flat_from, self._built, self._augmented = {}, {}, {}, {}
        pending, order = {}, []
        for entry in entries:
            kind, layer_config, name = self._entry(entry, _GRAPH_LAYERS)
            self.keras_classes[name] = kind
            if kind == "InputLayer":
                shape = self._batch_shape(layer_config.get("batch_shape",
                                                           layer_config.get("batch_input_shape")))
                if shape is None:
                    raise self._unsupported(name, kind, "it has no batch_shape")
                try:
                    self._tensors[(name, 0)] = Input(self._checked_shape(shape), name=name)
                except ValueError as error:
                    raise self._unsupported(name, kind, str(error)[:300]) from None
                continue
            nodes = entry.get("inbound_nodes")
            if not isinstance(nodes, list) or not nodes or len(nodes) > MAX_OBJECTS:
                raise self._unsupported(name, kind, "its inbound_nodes are not Keras 3's list")
            self.keras_names.append(name)
            pending[name] = (kind, layer_config, collections.deque(enumerate(nodes)))
            order.append(name)
        self._call_in_order(order, pending)
        self.inputs = [self._tensor(ref) for ref in _references(body.get("input_layers"))]
        # Keras's own numbering of a nested functional model's calls there (see
        # output_references), on the entries before their nested models were inlined
        outputs = output_references(body)
        self.outputs = [self._tensor(ref) for ref in outputs]
        for reference, tensor in zip(outputs, self.outputs):
            _note_output_order(self.notes, reference[0], self._flat_from.get(id(tensor)))

    def _call_in_order(self, order, pending):
        """Run every layer's calls, each once its inputs exist (see the class docstring)."""
        ready, waiting = collections.deque(order), {}
        while ready:
            name = ready.popleft()
            kind, layer_config, queue = pending[name]
            while queue:
                index, node = queue[0]
                try:
                    inputs = self._node_inputs(node)
                    self._call(kind, name, layer_config, index, inputs)
                except _Waiting as missing:
                    waiting.setdefault(missing.key, []).append(name)
                    break
                except (ValueError, TypeError, KeyError) as error:
                    raise self._unsupported(name, kind, str(error).split("\n")[0][:300]) \
                        from None
                queue.popleft()
                ready.extend(waiting.pop((name, index), ()))
        for name in order:
            kind, _, queue = pending[name]
            if queue:
                try:
                    self._node_inputs(queue[0][1])
                except _Waiting as missing:
                    raise self._unsupported(name, kind, f"its input {list(missing.key)} is "
                                                        f"made by no layer of the model "
                                                        f"(or only through this one)") \
                        from None

    def _call(self, kind, name, layer_config, index, inputs):   # noqa: C901 - one call
        """Call (building it on its first call) the dlcore layer of Keras layer ``name`` on
        node ``index``'s inputs, and record its output tensor."""
        from dlcore import layers
        tensors, built = self._tensors, self._built
        # the tensors keep the file's name of the call; the layer is the one it shares
        tensor_name, name = name, self.same_as.get(name, name)
        if kind == "ZeroPadding2D":   # merged into the convolution it feeds
            self._layer(kind, name, layer_config, None)
            tensors[(tensor_name, index)] = _Padded(inputs, self._padding)
            self._padding = None
            return
        padded = [t for t in (inputs if isinstance(inputs, list) else [inputs])
                  if isinstance(t, _Padded)]
        if padded and (kind != "Conv2D" or isinstance(inputs, list)):
            raise ValueError(_PADDING_PLACE)
        if padded:
            if name in built and _sides(built[name]) != padded[0].padding[1]:
                raise ValueError("a shared Conv2D takes one padding")
            self._padding = padded[0].padding if name not in built else None
            inputs = padded[0].tensor
        first = inputs[0] if isinstance(inputs, list) else inputs
        self._current = first.shape
        if kind in _AUGMENTATION:
            if name not in built:
                previous = self._augmented.get(id(first))
                layer = self._augmentation(kind, name, layer_config, previous,
                                           first.is_input or previous is not None)
                if layer is None:   # merged into the layer before, or left out
                    tensors[(tensor_name, index)] = first
                    return
                built[name] = layer
            output = built[name](first)
            self._augmented[id(output)] = built[name]
            tensors[(tensor_name, index)] = output
            self._note_call(tensor_name, index, output)
            return
        if kind in _NORMALIZATIONS:
            _check_not_flattened_maps(name, kind, self._flat_from.get(id(first)))
        if name not in built:
            if kind in _ELEMENTWISE_MERGES:
                built[name] = getattr(layers, kind)(name=name)
            elif kind == "Concatenate":
                built[name] = layers.Concatenate(self._axis(layer_config.get("axis", -1),
                                                            len(first.shape)), name=name)
                built[name].warn_spatial_join = False   # the file's own axis, moved to NCHW
            elif kind == "Dot":
                built[name] = layers.Dot(**_dot_settings(name, layer_config), name=name)
            else:
                built[name] = self._layer(kind, name, layer_config, layers)
            if not isinstance(inputs, list):
                self.n_parameters += _parameter_count(built[name], first.shape)
        if kind in _MERGES:   # a refusal names the file's (H, W, C) shapes, not dlcore's
            built[name].keras_shapes = True
        try:
            output = built[name](inputs)
        finally:
            built[name].__dict__.pop("keras_shapes", None)
        self._checked_shape(output.shape)
        tensors[(tensor_name, index)] = output
        self._note_call(tensor_name, index, output)
        flat_from = self._flat_from
        flat_from[id(output)] = _row_layout(kind, name, inputs, output, flat_from,
                                            self.dense_columns.get(name), keras_shapes=True)
        if kind == "Dense":
            _check_one_row_order(name, self.dense_inputs.get(name, flat_from.get(id(first))),
                                 flat_from.get(id(first)))
            self.dense_inputs[name] = flat_from.get(id(first))

    def _inlined(self, entries, depth=0):
        """``entries`` with each Keras model nested in the model replaced by its layers:
        keras.io's ``data_augmentation = keras.Sequential([...])`` called on the input, a
        trained base under a new head, the lecture's shared ``vision_model`` called on two
        digits. Each call of the nested model becomes calls of its layers (shared: their
        weights are the nested model's), its inputs the call's tensors; a reference to one of
        its outputs then names the call of the layer making it (``_aliases``: (model, call,
        output) -> (layer, node)); the nodes of each call are marked (:meth:`_note_call`) so
        that the dlcore model lists the nested model as one layer
        (:meth:`nested_model_objects`). A model nested in a nested model is inlined into it
        first (:meth:`_flattened_inner`), as deep as dlcore's own files nest
        (``MAX_NESTING_DEPTH``, ``MAX_NESTED_MODELS`` in all)."""
        from dlcore.functional import MAX_NESTED_MODELS, MAX_NESTING_DEPTH
        inlined = []
        for entry in entries:
            kind = entry.get("class_name") if isinstance(entry, dict) else None
            config = entry.get("config") if isinstance(entry, dict) else None
            if kind not in _MODEL_CLASSES or not isinstance(config, dict):
                inlined.append(entry)
                continue
            name = str(config.get("name"))[:80]
            self._model_count = getattr(self, "_model_count", 0) + 1
            if depth >= MAX_NESTING_DEPTH or self._model_count > MAX_NESTED_MODELS:
                raise self._unsupported(name, kind, f"the Keras model nests models more than "
                                                    f"{MAX_NESTING_DEPTH} deep or more than "
                                                    f"{MAX_NESTED_MODELS} in all; dlcore "
                                                    f"imports at most that")
            inner = config.get("layers")
            calls = entry.get("inbound_nodes")
            if not isinstance(inner, list) or not inner or \
                    not all(isinstance(layer, dict) and isinstance(layer.get("config"), dict)
                            for layer in inner):
                raise self._unsupported(name, kind, "it lists no layers")
            _check_nested_count(self.filename, name, len(inner), "layers")
            if not isinstance(calls, list) or not calls:
                raise self._unsupported(name, kind, "its calls are not Keras 3's list")
            _check_nested_count(self.filename, name, len(calls), "calls")
            _check_nested_names(self.filename, name, inner)
            layers, inputs, output = self._nested_graph(name, kind, config, inner)
            if any(layer.get("class_name") in _MODEL_CLASSES for layer in layers):
                layers, output = self._flattened_inner(config.get("name"), layers, output,
                                                       depth)
            if any(len(key) == 3 and key[2] != 0 for key in output):
                raise self._unsupported(name, kind, f"its output_layers {str(output)[:60]} "
                                                    f"name an output its layer does not have")
            output = [tuple(key[:2]) for key in output]
            self._note_nested(entry, layers)
            counts = {layer["config"].get("name"): len(layer["inbound_nodes"])
                      for layer in layers}
            self._nested_entries[config.get("name")] = (kind, config)
            self._nested_of.update({layer: (config.get("name"), count)
                                    for layer, count in counts.items() if count})
            if len(calls) * sum(counts.values()) > MAX_OBJECTS:
                raise self._unsupported(name, kind, "it is called too often")
            for layer in layers:
                layer = dict(layer)
                layer["inbound_nodes"] = [
                    self._nested_node(name, kind, node, call, inputs, counts, index)
                    for index, call in enumerate(calls) for node in layer["inbound_nodes"]]
                inlined.append(layer)
            for index in range(len(calls)):
                for number, (layer, node) in enumerate(output):
                    self._aliases[(config.get("name"), index, number)] = \
                        (layer, node + index * counts[layer])
        return inlined

    def _flattened_inner(self, name, layers, output, depth):
        """``(layers, output)`` of a nested model (:meth:`_nested_graph`'s) with each model
        nested in it replaced by its layers, recursively, and every reference to such a
        model's output turned into one to its output layer's call: the nested model's own
        layers then form one graph, inlined as one level is. How they were inlined is kept
        (``_plans[name]``) so that the dlcore model of ``name`` nests them in turn
        (:meth:`_model_of`)."""
        saved = (self._aliases, self._nested_of, self._nested_entries, self.nested_models,
                 self._plans)
        self._aliases, self._nested_of, self._nested_entries, self.nested_models, \
            self._plans = {}, {}, {}, {}, {}
        try:
            flat = self._inlined(layers, depth + 1)
            aliases = self._aliases
            plan = (self._nested_of, self._nested_entries, aliases, self._plans)
        finally:
            self._aliases, self._nested_of, self._nested_entries, self.nested_models, \
                self._plans = saved
        self._plans[name] = plan

        def resolved(item):
            if isinstance(item, list):
                return [resolved(part) for part in item]
            tensor = item.get("config") if isinstance(item, dict) else None
            history = tensor.get("keras_history") if isinstance(tensor, dict) else None
            if not isinstance(history, list) or len(history) != 3 or \
                    not isinstance(history[0], str) or isinstance(history[1], bool) or \
                    not isinstance(history[1], int):
                return item
            key = aliases.get((history[0], history[1], history[2]))
            return item if key is None else _keras_tensor(key[0], key[1])

        flat = [{**layer, "inbound_nodes": [{**node, "args": resolved(node.get("args"))}
                                            if isinstance(node, dict) else node
                                            for node in layer["inbound_nodes"]]}
                for layer in flat]
        return flat, [aliases.get(tuple(key), key) for key in output]

    def _nested_graph(self, name, kind, config, inner):
        """``(layers, input names, outputs [(layer, node, tensor)])`` of a nested model: a
        Sequential's layers one after the other from its input, a functional model's as its
        config says."""
        if kind == "Sequential":
            first = next((layer["config"].get("name") for layer in inner
                          if layer.get("class_name") == "InputLayer"), None)
            previous = first = first if isinstance(first, str) else f"{name}/input"
            layers = []
            for layer in inner:
                if layer.get("class_name") == "InputLayer":
                    continue
                layers.append({**layer, "inbound_nodes": [{"args": [_keras_tensor(previous, 0)],
                                                           "kwargs": {}}]})
                previous = layer["config"].get("name")
            return layers, [first], [(previous, 0, 0)]
        inputs = [reference[0] for reference in _references(config.get("input_layers"))
                  if isinstance(reference, list) and len(reference) == 3]
        outputs = [reference for reference in output_references(config)
                   if isinstance(reference, list) and len(reference) == 3]
        if not outputs or len(outputs) > MAX_OBJECTS or any(
                any(isinstance(part, bool) or not isinstance(part, int) or part < 0
                    for part in output[1:]) for output in outputs):
            raise self._unsupported(name, kind, f"its output_layers "
                                                f"{str(config.get('output_layers'))[:60]} are "
                                                f"not Keras 3's tensors of its layers")
        layers = [layer for layer in inner if layer.get("class_name") != "InputLayer"]
        if not all(isinstance(layer.get("inbound_nodes"), list) for layer in layers):
            raise self._unsupported(name, kind, "its layers' inbound_nodes are not Keras 3's")
        own_inputs = {layer["config"].get("name") for layer in inner
                      if layer.get("class_name") == "InputLayer"}
        own_layers = {layer["config"].get("name") for layer in layers}
        # (names checked to be strings before they are hashed: a list is not)
        if not inputs or not all(isinstance(given, str) for given in inputs) or \
                not set(inputs) <= own_inputs or \
                any(not isinstance(output[0], str) or output[0] not in own_layers
                    for output in outputs):
            raise self._unsupported(name, kind, f"its input_layers {str(inputs)[:60]} or "
                                                f"output_layers {str(outputs)[:60]} are not "
                                                f"its own")
        return layers, inputs, [tuple(output) for output in outputs]

    def _nested_node(self, name, kind, node, call, inputs, counts, index):
        """An inner ``node`` of a nested model for its call number ``index`` (``call``): its
        inputs the call's tensors, its other references that call's nodes of the inner
        layers (each layer's nodes repeat, one set a call)."""
        args = call.get("args") if isinstance(call, dict) else None
        given = args[0] if isinstance(args, list) and len(args) == 1 else None
        given = given if isinstance(given, list) else [given]
        if len(given) != len(inputs) or not isinstance(node, dict):
            raise self._unsupported(name, kind, "a call of it does not give its inputs")
        by_input = dict(zip(inputs, given))

        def moved(item):
            if isinstance(item, list):
                return [moved(part) for part in item]
            tensor = item.get("config") if isinstance(item, dict) else None
            history = tensor.get("keras_history") if isinstance(tensor, dict) else None
            if not isinstance(history, list) or len(history) != 3:
                return item
            node_index = history[1]
            if isinstance(history[0], str) and history[0] in by_input and node_index == 0 \
                    and history[2] == 0:
                return by_input[history[0]]
            if not isinstance(history[0], str) or history[0] not in counts or \
                    isinstance(node_index, bool) or not isinstance(node_index, int) or \
                    not 0 <= node_index < counts[history[0]]:
                raise self._unsupported(name, kind, f"its layers take the tensor "
                                                    f"{str(history)[:60]}, which it does not "
                                                    f"make")
            return _keras_tensor(history[0], history[1] + index * counts[history[0]],
                                 history[2])

        node_args = node.get("args")
        return {"args": moved(node_args) if isinstance(node_args, list) else node_args,
                "kwargs": {}}

    def _note_call(self, name, index, output):
        """Mark the node that made ``output`` as part of its nested model's call (Keras layer
        ``name``'s node ``index``), so that the model lists the nested model as one layer."""
        from dlcore.functional import ModelCall
        owner = self._nested_of.get(name)
        if owner is not None:
            key = (owner[0], index // owner[1])
            call, nodes = self._model_calls.setdefault(key, (ModelCall(None), []))
            output.node.call = call
            nodes.append(output.node)
            self._node_keys[id(output.node)] = (name, index - key[1] * owner[1])

    def nested_model_objects(self):
        """Give each call of a nested model its dlcore model: a ``Sequential`` (a Keras
        Sequential whose layers form a chain) or a ``Model`` on the same layers, replayed from
        its first call on inputs of its own; a nested model whose layers all were left out
        (augmentation dlcore has no match for) stays inlined."""
        for (name, number), (_, nodes) in self._model_calls.items():
            if number != 0:
                continue
            kind, config = self._nested_entries[name]
            outputs = [self._tensors.get(key) for key in _output_keys(self._aliases, name, 0)]
            model = None if any(output is None for output in outputs) else self._model_of(
                name, kind, config, nodes, self._node_keys, self._plans.get(name), outputs)
            for (other, _), (each, each_nodes) in self._model_calls.items():
                if other == name:
                    each.model = model
                    for node in each_nodes if model is None else ():
                        node.call = None

    def _model_of(self, name, kind, config, nodes, keys, plan, outputs):
        """The dlcore model of nested model ``name`` replayed from the ``nodes`` of one call
        (``keys``: id(node) -> (Keras layer, node index within the model)), its output tensors
        ``outputs``; the models nested in it (``plan``, :meth:`_flattened_inner`) are built so
        in turn and called in it, as Keras nests them. None when an output is not its own."""
        from dlcore import Input, Model, Sequential
        from dlcore.functional import call_layer
        made = {id(node.output) for node in nodes}
        if any(output is None or id(output) not in made for output in outputs):
            return None
        outside = []
        for node in nodes:
            outside += [t for t in node.inputs
                        if id(t) not in made and all(t is not o for o in outside)]
        nested_of, entries, aliases, plans = plan if plan is not None else ({}, {}, {}, {})
        groups = {}   # (model nested in this one, call number) -> its nodes
        for node in nodes:
            layer, index = keys[id(node)]
            owner = nested_of.get(layer)
            if owner is not None:
                groups.setdefault((owner[0], index // owner[1]), []).append(node)
        if not groups and kind == "Sequential" and len(outside) == 1 and not any(
                node.takes_list for node in nodes):
            model = Sequential([node.layer for node in nodes], input_shape=outside[0].shape,
                               name=name)
            model._keep_trainable(config)
            return model
        by_key = {keys[id(node)]: node for node in nodes}
        inner_models, group_of, group_output, group_keys = {}, {}, {}, {}
        for (inner, number), group in groups.items():
            group_output[(inner, number)] = [
                by_key[key].output if key in by_key else None
                for key in _output_keys(aliases, inner, number)]
            for node in group:
                group_of[id(node)] = (inner, number)
            if number == 0:
                count = nested_of[keys[id(group[0])][0]][1]
                inner_keys = {id(node): (keys[id(node)][0], keys[id(node)][1] % count)
                              for node in group}
                inner_kind, inner_config = entries[inner]
                inner_models[inner] = self._model_of(
                    inner, inner_kind, inner_config, group, inner_keys, plans.get(inner),
                    group_output[(inner, 0)])
                group_keys[inner] = (inner_config, inner_keys, count)
        group_given = {}   # (model nested in this one, call number) -> the tensors it takes
        for group, members in groups.items():
            own = {id(member.output) for member in members}
            given = []
            for member in members:
                given += [t for t in member.inputs
                          if id(t) not in own and all(t is not g for g in given)]
            # in the order of the inputs of the inner model (Keras's input_layers; its own
            # making noted an order that cannot be told)
            inner_config, _, count = group_keys[group[0]]
            group_given[group] = _in_input_order(inner_config, given, members, {
                id(member): (keys[id(member)][0], keys[id(member)][1] % count)
                for member in members}, [])
        given_twice = None if groups else _one_tensor_given_twice(config, nodes, keys, made)
        outside = _in_input_order(config, outside, nodes, keys, self.notes, group_given) \
            if given_twice is None else []
        inputs = [Input(tensor.shape) for tensor in outside]
        mapping = {id(t): new for t, new in zip(outside, inputs)}
        if given_twice is not None:
            names, reads, shapes = given_twice
            by_name = {name: Input(shapes[name]) for name in names}
            inputs = [by_name[name] for name in names]
        called = set()
        for node in nodes:
            group = group_of.get(id(node))
            if group is not None and inner_models.get(group[0]) is not None:
                if group not in called:
                    called.add(group)
                    given = group_given[group]
                    result = inner_models[group[0]]([mapping[id(t)] for t in given]
                                                    if len(given) > 1 else mapping[id(given[0])])
                    # (a model of dict outputs gives them by key: its outputs' order)
                    results = list(result.values()) if isinstance(result, dict) else \
                        result if isinstance(result, list) else [result]
                    for tensor, made_here in zip(group_output[group], results):
                        if tensor is not None:
                            mapping[id(tensor)] = made_here
                continue
            if given_twice is None:
                arguments = [mapping[id(t)] for t in node.inputs]
            else:   # each argument the input its config reads there
                arguments = [mapping[id(t)] if id(t) in made else
                             by_name[reads[(*keys[id(node)], position)]]
                             for position, t in enumerate(node.inputs)]
            mapping[id(node.output)] = call_layer(
                node.layer, arguments if node.takes_list else arguments[0])
        outputs = [mapping[id(output)] for output in outputs]
        model = Model(inputs if len(inputs) > 1 else inputs[0],
                      outputs if len(outputs) > 1 else outputs[0], name=name)
        model._keep_trainable(config)
        _keep_dict_keys(model, config)
        # dlcore's Sequential holds layers only: the Keras class is kept for the export
        model.keras_sequential_ = kind == "Sequential"
        return model

    def _tensor(self, reference):
        key = self._aliases.get(tuple(reference)) if isinstance(reference, list) and \
            len(reference) == 3 and all(isinstance(part, (str, int)) for part in reference) \
            else None
        # a name or node index of another type (a list: unhashable) names no tensor
        if key is None and isinstance(reference, list) and len(reference) == 3 and \
                isinstance(reference[0], str) and isinstance(reference[1], int) and \
                reference[2] == 0:
            key = (reference[0], reference[1])
        if key is None and isinstance(reference, list) and len(reference) > MAX_MODEL_TENSORS \
                and all(isinstance(item, list) for item in reference[:MAX_MODEL_TENSORS + 1]):
            # _references leaves a longer list whole: it is not one tensor's name
            raise _config_error(self.filename, f"the Keras model lists {len(reference)} "
                                               f"tensors as its inputs or outputs "
                                               f"(input_layers, output_layers), more than the "
                                               f"{MAX_MODEL_TENSORS} dlcore imports")
        if key not in self._tensors or isinstance(self._tensors[key], _Padded):
            raise _config_error(self.filename, f"the Keras model names the tensor "
                                               f"{str(reference)[:80]}, which no layer makes")
        return self._tensors[key]

    def _node_inputs(self, node):
        """The tensors a node (one call) takes: one, or a list; :class:`_Waiting` for the
        first that no layer has made yet."""
        args = node.get("args") if isinstance(node, dict) else None
        if not isinstance(args, list) or len(args) != 1:
            raise ValueError("its inbound_nodes are not Keras 3's (one argument of tensors)")
        arg = args[0]
        if isinstance(arg, list):
            if not arg or len(arg) > MAX_MODEL_TENSORS:
                raise ValueError(f"it takes a list of {len(arg)} tensors; dlcore imports a "
                                 f"list of 1 to {MAX_MODEL_TENSORS}")
            return [self._history(item) for item in arg]
        return self._history(arg)

    def _history(self, item):
        tensor = item.get("config") if isinstance(item, dict) and \
            item.get("class_name") == "__keras_tensor__" else None
        history = tensor.get("keras_history") if isinstance(tensor, dict) else None
        if not isinstance(history, list) or len(history) != 3 or \
                not isinstance(history[0], str) or any(
                    isinstance(part, bool) or not isinstance(part, int) for part in history[1:]):
            raise ValueError("an input is not a Keras tensor of one layer's output")
        key = self._aliases.get(tuple(history))
        if key is None:
            if history[2] != 0:
                raise ValueError(f"an input {str(history)[:60]} names an output its layer "
                                 f"does not have")
            key = (history[0], history[1])
        if key not in self._tensors:
            raise _Waiting(key)
        return self._tensors[key]

    @staticmethod
    def _axis(axis, rank):
        """Keras's NHWC (or rows') axis as dlcore's NCHW one."""
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise ValueError(f"Concatenate's axis {str(axis)[:40]} is not an integer")
        axis = axis + rank + 1 if axis < 0 else axis
        if rank == 3 and axis in (1, 2, 3):
            return {1: 2, 2: 3, 3: 1}[axis]
        if rank == 1 and axis == 1 or rank == 2 and axis in (1, 2):
            return axis   # rows, or (H, W) without channels: the same axes in both
        raise ValueError(f"Concatenate's axis {axis} does not fit tensors of rank {rank}")


def _dot_settings(name, config):
    """The ``axes`` and ``normalize`` of Keras's Dot layer ``name`` from its ``config``: axes
    as Keras writes them (an integer or a pair; for rows (n, features) both count alike in
    dlcore's rows), normalize a JSON boolean; ValueError in one line otherwise."""
    axes, normalize = config.get("axes"), config.get("normalize", False)
    pair = axes if isinstance(axes, list) and len(axes) == 2 else [axes]
    if any(isinstance(axis, bool) or not isinstance(axis, int) for axis in pair):
        raise ValueError(f"Dot layer {name!r}: axes {str(axes)[:40]} is not an integer or a "
                         f"pair of integers")
    if not isinstance(normalize, bool):
        raise ValueError(f"Dot layer {name!r}: normalize {str(normalize)[:40]} is not true or "
                         f"false")
    return {"axes": tuple(pair) if len(pair) == 2 else axes, "normalize": normalize}


def _merge_config(kind, layer, first):
    """The Keras config of dlcore's merge ``layer`` of class ``kind`` (its first input the
    tensor ``first``): a Concatenate's axis moved to NHWC, a Dot's axes (rows: the same in
    both) and normalize; the element-wise merges have none."""
    if kind == "Concatenate":
        return {"axis": _keras_axis(layer.axis, len(first.shape))}
    if kind == "Dot":
        return layer._config()
    return {}


def _output_keys(aliases, name, call):
    """The (Keras layer, node index) of each output, in order, of call ``call`` of the nested
    model ``name`` (``aliases``: (model, call, output) -> (layer, node))."""
    keys = []
    while (name, call, len(keys)) in aliases:
        keys.append(aliases[(name, call, len(keys))])
    return keys


def _one_tensor_given_twice(config, nodes, keys, made):
    """``(input names, reads, shapes)`` when one call of the nested Keras model ``config``
    gives one tensor for several of its inputs (``pair([x, x])``), else None: Keras's model
    keeps its inputs, so the dlcore model gets one for each name of its ``input_layers``, and
    ``reads`` says which one each node's argument is ((Keras layer, node index, position) ->
    input name); ``shapes`` the shape of each. ``keys``: id(node) -> (Keras layer, node index
    within the model); ``made``: the ids of the tensors the call's own nodes make."""
    names = [reference[0] for reference in _references(config.get("input_layers"))
             if isinstance(reference, list) and reference and isinstance(reference[0], str)]
    given = {id(t) for node in nodes for t in node.inputs if id(t) not in made}
    if len(names) < 2 or len(set(names)) != len(names) or len(given) >= len(names):
        return None
    reads = {}
    for layer in config.get("layers") or ():
        layer_config = layer.get("config") if isinstance(layer, dict) else None
        calls = layer.get("inbound_nodes") if isinstance(layer, dict) else None
        if not isinstance(layer_config, dict) or not isinstance(calls, list):
            continue
        for index, call in enumerate(calls):
            args = call.get("args") if isinstance(call, dict) else None
            if not isinstance(args, list) or not args:
                continue
            items = args[0] if isinstance(args[0], list) else [args[0]]
            for position, item in enumerate(items):
                tensor = item.get("config") if isinstance(item, dict) else None
                history = tensor.get("keras_history") if isinstance(tensor, dict) else None
                if isinstance(history, list) and history and history[0] in names:
                    reads[(layer_config.get("name"), index, position)] = history[0]
    shapes = {}
    for node in nodes:
        for position, tensor in enumerate(node.inputs):
            if id(tensor) in made:
                continue
            name = reads.get((*keys[id(node)], position))
            if name is None:
                return None   # an argument from outside that reads no input: not Keras's
            shapes.setdefault(name, tensor.shape)
    return (names, reads, shapes) if set(shapes) == set(names) else None


def _in_input_order(config, tensors, nodes, keys, notes, nested_given=None):
    """``tensors``, the tensors from outside that the ``nodes`` of one call of the nested
    Keras model ``config`` take (in the order its layers first take them), in the order of its
    ``input_layers`` (``keys``: id(node) -> (Keras layer, node index within the model)): each
    input is the tensor given where its config first reads it, by a layer or by a model nested
    in it (``nested_given``: (that model, call number) -> the tensors that call takes, in its
    inputs' order), or the one left when a single input cannot be told so. As they are, with
    a note in ``notes``, when that cannot be told (inputs read first by models nested deeper
    in it)."""
    names = [reference[0] for reference in _references(config.get("input_layers"))
             if isinstance(reference, list) and reference]
    if len(tensors) < 2 or len(names) != len(tensors):
        return tensors
    by_key = {keys[id(node)]: node for node in nodes}
    first_read = {}   # input name -> the tensor its first reader takes there
    for layer in config.get("layers") or ():
        layer_config = layer.get("config") if isinstance(layer, dict) else None
        calls = layer.get("inbound_nodes") if isinstance(layer, dict) else None
        if not isinstance(layer_config, dict) or not isinstance(calls, list):
            continue
        if layer.get("class_name") in _MODEL_CLASSES:   # a model nested in it: its calls
            for index, call in enumerate(calls):
                given = (nested_given or {}).get((layer_config.get("name"), index)) or ()
                args = call.get("args") if isinstance(call, dict) else None
                if not isinstance(args, list) or not args:
                    continue
                items = args[0] if isinstance(args[0], list) else [args[0]]
                for item, tensor in zip(items, given if len(given) == len(items) else ()):
                    history = item.get("config", {}).get("keras_history") \
                        if isinstance(item, dict) and isinstance(item.get("config"), dict) \
                        else None
                    if isinstance(history, list) and history and history[0] in names:
                        first_read.setdefault(history[0], tensor)
            continue
        for index, call in enumerate(calls):
            node = by_key.get((layer_config.get("name"), index))
            args = call.get("args") if isinstance(call, dict) else None
            if node is None or not isinstance(args, list) or not args:
                continue
            items = args[0] if isinstance(args[0], list) else [args[0]]
            for position, item in enumerate(items[:len(node.inputs)]):
                tensor = item.get("config") if isinstance(item, dict) else None
                history = tensor.get("keras_history") if isinstance(tensor, dict) else None
                if isinstance(history, list) and history and history[0] in names:
                    first_read.setdefault(history[0], node.inputs[position])
    ordered = [first_read.get(name) for name in names]
    left = [t for t in tensors if all(t is not o for o in ordered)]
    if sum(tensor is None for tensor in ordered) == 1 and len(left) == 1:
        # the one input its own layers do not read first (a model nested in it does)
        ordered[[tensor is None for tensor in ordered].index(True)] = left[0]
    if any(tensor is None for tensor in ordered) or \
            sorted(map(id, ordered)) != sorted(map(id, tensors)):
        notes.append(f"the nested model {str(config.get('name'))[:80]!r} takes its inputs in "
                     f"the order its layers first read them, which may not be Keras's "
                     f"{names[:8]} (models nested in it read them first): check the order "
                     f"before calling it on its own")
        return tensors
    return ordered


class _Padded:
    """A ZeroPadding2D's output in a graph: its input and padding, for the Conv2D it feeds."""

    def __init__(self, tensor, padding):
        if not hasattr(tensor, "shape"):
            raise ValueError("a ZeroPadding2D takes one tensor")
        self.tensor, self.padding = tensor, padding


def _check_layer_count(filename, count, what):
    """Refuse a Keras model of more than :data:`MAX_KERAS_LAYERS` layers (or calls of layers),
    ``what`` saying which were counted, before any is built."""
    if count > MAX_KERAS_LAYERS:
        raise _config_error(filename, f"the Keras model has {count} {what}, more than the "
                                      f"{MAX_KERAS_LAYERS} dlcore imports (keras.applications' "
                                      f"largest model, NASNetLarge, has 1,041 layers); the "
                                      f"file is damaged or hostile")


def _check_nested_count(filename, name, count, what):
    """Refuse a nested model (Keras name ``name``) listing more than
    :data:`MAX_KERAS_LAYERS` layers or calls (``what``), before its entries are looked at."""
    _check_layer_count(filename, count, f"{what} in its nested model {str(name)[:80]!r}")


def _sides(conv):
    """A dlcore Conv2D's padding per side, as ``_zero_padding`` gives it."""
    return tuple(tuple(side) for side in conv._padding)


#: The most inputs or outputs of a model, and tensors into one call, that an import takes: as
#: many as a dlcore model file holds (docs/hdf5-format.md).
MAX_MODEL_TENSORS = MAX_GRAPH_INPUTS


def _references(value):
    """Keras's ``input_layers``/``output_layers``: ``[name, 0, 0]``, a list of them, or a dict
    of them (:func:`dlcore.io.keras_weights.flattened_references`)."""
    from dlcore.io.keras_weights import flattened_references
    value = flattened_references(value)
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        return [value]
    if isinstance(value, list) and 0 < len(value) <= MAX_MODEL_TENSORS:
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
    if kind in ("Conv2D", "Conv2DTranspose"):
        kh, kw = layer.kernel_size
        return (input_shape[0] * kh * kw + layer.use_bias) * layer.filters
    if kind == "LocallyConnected2D":   # a Conv2D's at each output position
        kh, kw = layer.kernel_size
        _, rows, columns = layer.compute_output_shape(tuple(input_shape))
        return (input_shape[0] * kh * kw + layer.use_bias) * layer.filters * rows * columns
    if kind == "BatchNormalization":
        return 4 * int(input_shape[0])
    if kind == "LayerNormalization":
        return 2 * int(input_shape[0])
    return 0


def _pair(value):
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value, value]
    if isinstance(value, list) and len(value) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) and 0 < v < 2**20 for v in value):
        return tuple(value)
    raise ValueError(f"{str(value)[:60]} is not a positive integer or a pair of them")


def _kernel_converter(arrays):
    """Keras's (k_h, k_w, in, out) kernel as dlcore's (out, in, k_h, k_w) for a Conv2D, and
    Keras's (k_h, k_w, filters, channels) as dlcore's (channels, filters, k_h, k_w) for a
    Conv2DTranspose: one permutation."""
    return [arrays[0].transpose(3, 2, 0, 1), *arrays[1:]]


def _locally_connected_windows(layer):
    """``(ys, xs)`` of a built LocallyConnected2D: the input row of each (output row, window
    row) and the input column of each (output column, window column), -1 in the padding."""
    _, height, width = layer.input_shape
    _, rows, columns = layer.output_shape
    (kh, kw), (sh, sw), window = layer.kernel_size, layer.stride, layer.window
    ys = np.arange(rows)[:, None] * sh - window.pad_height + np.arange(kh)[None, :]
    xs = np.arange(columns)[:, None] * sw - window.pad_width + np.arange(kw)[None, :]
    ys[(ys < 0) | (ys >= height)], xs[(xs < 0) | (xs >= width)] = -1, -1
    return ys, xs


def _sorted_pairs_kernel(values, layer):
    """dlcore's kernel (H', W', F, C, k_h, k_w) of a built LocallyConnected2D from tf.keras 2's
    implementation 3 ``values``: the weights of the connected (output, input) pairs of its
    (H' W' F, H W C) matrix, sorted (``conv_kernel_idxs``), each pair a cell of dlcore's kernel.
    Indexed in the kernel's own size: that matrix, H W / (k_h k_w) times larger (gigabytes for
    64 x 64 images), is never made."""
    channels, height, width = layer.input_shape
    filters, rows, columns = layer.output_shape
    (kh, kw), (ys, xs) = layer.kernel_size, _locally_connected_windows(layer)
    y, x, f, dy, dx, c = np.ogrid[:rows, :columns, :filters, :kh, :kw, :channels]
    in_y, in_x = ys[y, dy], xs[x, dx]
    shape = (rows, columns, filters, kh, kw, channels)
    cells = np.flatnonzero(np.broadcast_to((in_y >= 0) & (in_x >= 0), shape))
    outputs = np.broadcast_to((y * columns + x) * filters + f, shape).ravel()[cells]
    inputs = np.broadcast_to((in_y * width + in_x) * channels + c, shape).ravel()[cells]
    kernel = np.zeros(int(np.prod(shape)), values.dtype)
    kernel[cells[np.lexsort((inputs, outputs))]] = values
    return np.ascontiguousarray(kernel.reshape(shape).transpose(0, 1, 2, 5, 3, 4))


def _locally_connected_converter(implementation):
    """tf.keras 2's LocallyConnected2D arrays (channels last) as dlcore's kernel
    (H', W', F, C, k_h, k_w) and bias (F, H', W'), for ``implementation``
    (``convert(arrays, layer)``, ``layer`` the built dlcore layer; ``convert.keras_shapes(layer)``
    the shapes the file holds):

    1. kernel (H' W', k_h k_w C, F): position (y, x)'s row ``y W' + x``, its patch in
       (k_h, k_w, C) order (tf.keras 2's ``local_conv``);
    2. kernel (H, W, C, H', W', F): the weight from each input unit to each output unit, those
       outside an output's window unused (masked);
    3. kernel (n,): the weights of the sorted (output, input) index pairs of a (H' W' F,
       H W C) matrix, each connected pair once (``conv_kernel_idxs``; :func:`_sorted_pairs_kernel`).

    A window cell in dlcore's padding (tf.keras 2's 'same' edges) weighs nothing: zero."""
    def keras_shapes(layer):
        channels, height, width = layer.input_shape
        filters, rows, columns = layer.output_shape
        (kh, kw), (ys, xs) = layer.kernel_size, _locally_connected_windows(layer)
        kernel = {1: (rows * columns, kh * kw * channels, filters),
                  2: (height, width, channels, rows, columns, filters),
                  3: (int((ys >= 0).sum(axis=1).sum() * (xs >= 0).sum(axis=1).sum()) *
                      channels * filters,)}[implementation]
        return [kernel] + [(rows, columns, filters)] * layer.use_bias

    def convert(arrays, layer):
        kernel, *bias = [np.asarray(array) for array in arrays]
        channels, height, width = layer.input_shape
        filters, rows, columns = layer.output_shape
        (kh, kw), (ys, xs) = layer.kernel_size, _locally_connected_windows(layer)
        expected = keras_shapes(layer)
        if [tuple(array.shape) for array in [kernel, *bias]] != expected:
            raise ValueError(f"layer {layer.name!r}: tf.keras 2's LocallyConnected2D "
                             f"(implementation {implementation}) arrays "
                             f"{[tuple(a.shape) for a in [kernel, *bias]]} are not those of "
                             f"its config {expected}")
        bias = [b.transpose(2, 0, 1) for b in bias]
        if implementation == 1:
            return [np.ascontiguousarray(kernel.reshape(rows, columns, kh, kw, channels,
                                                        filters).transpose(0, 1, 5, 4, 2, 3)),
                    *bias]
        if implementation == 3:
            return [_sorted_pairs_kernel(kernel, layer), *bias]
        dense = np.zeros((rows, columns, filters, channels, kh, kw), kernel.dtype)
        for y in range(rows):
            for x in range(columns):
                for dy, iy in enumerate(ys[y]):
                    for dx, ix in enumerate(xs[x]):
                        if iy >= 0 and ix >= 0:
                            dense[y, x, :, :, dy, dx] = kernel[iy, ix, :, y, x, :].T
        return [dense, *bias]

    convert.keras_shapes = keras_shapes
    return convert


def _dense_converter():
    def convert(arrays, layout=None, columns=None):
        kernel, *bias = arrays
        kernel, bias = _keras_columns(_keras_rows(kernel, layout, to_keras=False), bias,
                                      columns, to_keras=False)
        return [kernel, *bias]
    return convert


def _layer_names(entries):
    """The names of the layers (not nested models) a Keras config lists."""
    return {entry["config"].get("name") for entry in entries
            if isinstance(entry, dict) and isinstance(entry.get("config"), dict)
            and entry.get("class_name") not in _MODEL_CLASSES
            and isinstance(entry["config"].get("name"), str)}


def _keras_tensor(layer, node, tensor=0):
    """A reference to output ``tensor`` of call ``node`` of ``layer``, as Keras 3 writes it."""
    return {"class_name": "__keras_tensor__", "config": {"keras_history": [layer, node, tensor]}}


def _first_input_name(entry):
    """The name of the layer whose output a Keras layer entry's first call takes first, or
    None."""
    nodes = entry.get("inbound_nodes")
    args = nodes[0].get("args") if isinstance(nodes, list) and nodes and \
        isinstance(nodes[0], dict) else None
    arg = args[0] if isinstance(args, list) and args else None
    arg = arg[0] if isinstance(arg, list) and arg else arg
    tensor = arg.get("config") if isinstance(arg, dict) else None
    history = tensor.get("keras_history") if isinstance(tensor, dict) else None
    return history[0] if isinstance(history, list) and history and \
        isinstance(history[0], str) else None


def _reshaped_dense_units(entries):
    """{Keras Dense name: the layout of its units} for each Dense whose outputs a Reshape
    makes a map of (through layers that keep rows in order; see :func:`_reshaped_units`).
    ``entries``: (name, class name, config, [name of the layer it takes]) of each layer."""
    entries = [entry for entry in entries if isinstance(entry[0], str)]
    kinds = {name: kind for name, kind, _, _ in entries}
    configs = {name: config for name, _, config, _ in entries}
    sources = {name: inputs[0] for name, _, _, inputs in entries}
    columns = {}
    for _, kind, config, inputs in entries:
        target = config.get("target_shape") if kind == "Reshape" else None
        if not isinstance(target, list) or len(target) != 3:
            continue
        source, steps = inputs[0], 0
        # a config naming layers in a loop is refused later; here the walk stays bounded
        while kinds.get(source) in _ROW_KEEPING and steps < len(entries):
            source, steps = sources.get(source), steps + 1
        if kinds.get(source) != "Dense":
            continue
        units = configs[source].get("units")
        target = _resolved_target(target, units)
        needed = _reshape_map(target)
        if needed is not None and target[0] * target[1] * target[2] == units:
            # (not a Dense on maps of more than one pixel: it makes maps, reshaped as maps)
            if columns.get(source, needed) != needed:
                raise ValueError(f"layer {source!r} (Dense) feeds reshapes to different maps")
            columns[source] = needed
    return columns


def _keras_3_nodes(config):
    """A tf.keras 2 functional ``config`` (``model.save("m.h5")`` or ``to_json`` of tf.keras
    2.x: each inbound node a list of ``[layer, node index, tensor index, kwargs]``) with its
    nodes in Keras 3's form (``{"args": [tensor or list of tensors], "kwargs": {}}``), as Keras
    3's own loader reads them (keras.src.models.functional.deserialize_node); any other
    ``config`` as it is. One that nests a model stays as it is (refused by the importer in
    one line): tf.keras 2 numbered a nested model's calls otherwise."""
    body = config.get("config") if isinstance(config, dict) else None
    entries = body.get("layers") if isinstance(body, dict) else None
    if not isinstance(entries, list) or config.get("class_name") not in ("Functional", "Model") \
            or len(entries) > MAX_OBJECTS or \
            not all(isinstance(entry, dict) for entry in entries) or \
            any(entry.get("class_name") in _MODEL_CLASSES for entry in entries):
        return config

    def keras_3(node):
        if not isinstance(node, list) or not 0 < len(node) <= MAX_OBJECTS or not all(
                isinstance(item, list) and len(item) in (3, 4) for item in node):
            return node   # not Keras 2's form either: the importer names the problem
        tensors = [_keras_tensor(item[0], item[1], item[2]) for item in node]
        return {"args": [tensors[0] if len(tensors) == 1 else tensors], "kwargs": {}}

    layers = []
    for entry in entries:
        nodes = entry.get("inbound_nodes")
        if isinstance(nodes, list) and len(nodes) <= MAX_OBJECTS:
            entry = {**entry, "inbound_nodes": [keras_3(node) for node in nodes]}
        layers.append(entry)
    return {**config, "config": {**body, "layers": layers}}


def _listed_dict_calls(config, depth=0):
    """``config`` with every call of a model of dict inputs on a dict of tensors
    (``model({"title": t, "body": b})``, an inbound node whose argument is that dict) given
    as the list of them in the model's input order (:func:`~dlcore.io.keras_weights.
    call_tensors`), in the models it nests too, so that the importer reads one form; anything
    else as it is."""
    from dlcore.functional import MAX_NESTING_DEPTH
    from dlcore.io.keras_weights import call_tensors
    body = config.get("config") if isinstance(config, dict) else None
    entries = body.get("layers") if isinstance(body, dict) else None
    if not isinstance(entries, list) or len(entries) > MAX_OBJECTS or \
            depth > MAX_NESTING_DEPTH:
        return config

    def listed(node):
        args = node.get("args") if isinstance(node, dict) else None
        if isinstance(args, list) and len(args) == 1 and isinstance(args[0], dict) and \
                call_tensors(args[0]) != [args[0]]:
            return {**node, "args": [call_tensors(args[0])]}
        return node

    layers = []
    for entry in entries:
        if isinstance(entry, dict) and entry.get("class_name") in _MODEL_CLASSES:
            entry = _listed_dict_calls(entry, depth + 1)
        nodes = entry.get("inbound_nodes") if isinstance(entry, dict) else None
        if isinstance(nodes, list) and len(nodes) <= MAX_OBJECTS:
            entry = {**entry, "inbound_nodes": [listed(node) for node in nodes]}
        layers.append(entry)
    return {**config, "config": {**body, "layers": layers}}


def _as_functional(config, filename="<json>"):
    """A Keras ``Sequential`` config that lists a model among its layers (a Sequential base
    under a Sequential head) as the functional config of the same chain of calls, whose nested
    models dlcore imports as Keras lists them (one entry of ``model.layers``, ``get_layer``);
    any other ``config`` as it is. The weights' paths stay those of the Sequential (Keras
    counts them by ``model.layers``, the same in both). A damaged one is refused in one line
    (the functional importer checks the names, calls and shapes)."""
    config = _listed_dict_calls(_keras_3_nodes(config))
    body = config.get("config") if isinstance(config, dict) else None
    if not isinstance(body, dict) or config.get("class_name") != "Sequential" or \
            not isinstance(body.get("layers"), list) or len(body["layers"]) > MAX_OBJECTS or \
            not any(isinstance(entry, dict) and entry.get("class_name") in _MODEL_CLASSES
                    for entry in body["layers"]):
        return config
    entries = body["layers"]
    if not all(isinstance(entry, dict) and isinstance(entry.get("config"), dict)
               for entry in entries):
        raise _config_error(filename, "a layer of the Keras model_config is not an object "
                                      "with a config")
    first = entries[0]
    if first.get("class_name") == "InputLayer":
        entries = entries[1:]
    else:
        shape = body.get("build_input_shape")
        if shape is None:
            raise _config_error(filename, "the Keras model does not say its input shape (no "
                                          "InputLayer or build_input_shape)")
        first = {"class_name": "InputLayer",
                 "config": {"batch_shape": shape, "dtype": "float32", "name": "input_layer"}}
    previous = first["config"].get("name")
    layers = [{**first, "name": previous, "inbound_nodes": []}]
    for entry in entries:
        layers.append({**entry, "name": entry["config"].get("name"), "inbound_nodes": [
            {"args": [_keras_tensor(previous, 0)], "kwargs": {}}]})
        previous = entry["config"].get("name")
    return {**{key: value for key, value in config.items() if key != "module"},
            "class_name": "Functional",
            "config": {**{key: value for key, value in body.items()
                          if key not in ("layers", "build_input_shape")},
                       "layers": layers, "input_layers": [layers[0]["name"], 0, 0],
                       "output_layers": [previous, 0, 0]}}


def _nested_names_unique(config):
    """``(config, file_names)``: a Keras functional ``config`` whose nested models' layers
    have names of their own, and ``{new name: the name in the file}`` for each layer renamed.
    Keras needs a name unique only among a model's own layers, so a base loaded from a file
    keeps its ``dense`` beside a new head's ``dense`` (and two such bases each keep theirs);
    dlcore's layers are one namespace. A clashing layer of a nested model is numbered on
    (``dense_1``), the later one, as dlcore names its own (``name_layers_uniquely``), and the
    references inside its model follow; a config without such a clash is returned as it is."""
    body = config.get("config") if isinstance(config, dict) else None
    entries = body.get("layers") if isinstance(body, dict) else None
    if not isinstance(entries, list) or not any(
            isinstance(entry, dict) and entry.get("class_name") in _MODEL_CLASSES
            for entry in entries):
        return config, {}
    config = copy.deepcopy(config)
    entries = config["config"]["layers"]
    taken, file_names = set(_layer_names(entries)), {}
    numbers = {}   # name -> the next number to try: a hostile file's thousands of one name
    pending = collections.deque(entry for entry in entries if isinstance(entry, dict)
                                and entry.get("class_name") in _MODEL_CLASSES)
    while pending:
        model_config = pending.popleft().get("config")
        inner = model_config.get("layers") if isinstance(model_config, dict) else None
        if not isinstance(inner, list):
            continue   # the importer refuses it
        renamed = {}
        for layer in inner:
            kind = layer.get("class_name") if isinstance(layer, dict) else None
            layer_config = layer.get("config") if isinstance(layer, dict) else None
            name = layer_config.get("name") if isinstance(layer_config, dict) else None
            if kind in _MODEL_CLASSES:
                pending.append(layer)
            elif isinstance(name, str) and kind != "InputLayer":
                if name in taken:
                    number = numbers.get(name, 1)
                    while f"{name}_{number}" in taken:
                        number += 1
                    numbers[name] = number + 1
                    renamed[name] = layer_config["name"] = f"{name}_{number}"
                    if "name" in layer:
                        layer["name"] = renamed[name]
                    file_names[renamed[name]] = name
                taken.add(layer_config["name"])
        if renamed:
            _rename_references(model_config, renamed)
    return config, file_names


def _rename_references(model_config, renamed):
    """Each reference to a layer of ``renamed`` (old name -> new) inside a nested model's
    config (its layers' ``keras_history``, its ``input_layers`` and ``output_layers``), not
    inside the models nested in it (a scope of their own)."""
    def moved(item):
        if isinstance(item, list):
            if len(item) == 3 and isinstance(item[0], str) and item[0] in renamed:
                return [renamed[item[0]], *item[1:]]   # a keras_history or a layer reference
            return [moved(part) for part in item]
        if isinstance(item, dict):
            return {key: moved(value) for key, value in item.items()}
        return item

    for key in ("input_layers", "output_layers"):
        if key in model_config:
            model_config[key] = moved(model_config[key])
    for layer in model_config.get("layers") or ():
        if isinstance(layer, dict) and layer.get("class_name") not in _MODEL_CLASSES and \
                "inbound_nodes" in layer:
            layer["inbound_nodes"] = moved(layer["inbound_nodes"])


def parameter_count(config, filename="<json>") -> int:
    """The number of parameters the Keras model ``config`` declares, from the config alone
    (nothing is built); a ModelFileError for a config dlcore cannot import."""
    config, _ = _nested_names_unique(_as_functional(config, filename))
    functional = isinstance(config, dict) and config.get("class_name") in ("Functional",
                                                                           "Model")
    return (_FunctionalImported if functional else _Imported)(config, filename).n_parameters


def _check_nested_names(filename, model_name, inner):
    """Refuse a nested model ``model_name`` whose layers (``inner``, its config's entries)
    are not all named by strings (an InputLayer may have no name: its model's own is used),
    before its graph is read: a list or an object for a name failed there as
    "unhashable type"."""
    for layer in inner:
        layer_name = layer["config"].get("name")
        if not isinstance(layer_name, str) and not (
                layer_name is None and layer.get("class_name") == "InputLayer"):
            raise _config_error(filename, f"a layer of the model {model_name!r} nested in the "
                                          f"Keras model has the invalid name "
                                          f"{str(layer_name)[:60]!r}; Keras names every "
                                          f"layer by a string: the config was edited or "
                                          f"damaged")


def _dlcore_model_name(name):
    """A Keras model's name as its dlcore model's: None (the default name) for one that a
    dlcore model file could not keep (a '/', or longer than MAX_MODEL_NAME)."""
    from dlcore.validation import MAX_MODEL_NAME
    return name if "/" not in name and len(name) <= MAX_MODEL_NAME else None


def _keep_dict_keys(model, body):
    """Keep the keys of a Keras functional model's dict inputs and outputs (``body``, its
    config's ``config``: ``outputs={"score": ...}``) on its dlcore ``model``, sorted (Keras's
    order): its compile, fit and predict take and give dicts by them, its calls on tensors
    too, and its export writes them again (Keras's predict then gives a dict)."""
    for what, tensors in (("input", model.inputs), ("output", model.outputs)):
        references = body.get(f"{what}_layers")
        if isinstance(references, dict) and len(references) == len(tensors):
            setattr(model, f"keras_{what}_keys_", sorted(references))


def model_from_config(config, filename="<json>", file_size=None, same_as=None):
    """A built dlcore Sequential or Model (fresh weights) from a Keras model config, and the
    :class:`_Imported` that says how to convert Keras's arrays. With ``file_size`` the
    parameters must fit in the file (4 bytes each) before any is created. ``same_as``: the
    layers of nested models that are one layer with another of the model
    (:func:`shared_across_nesting`)."""
    from dlcore import Model, Sequential
    keras_sequential = isinstance(config, dict) and config.get("class_name") == "Sequential"
    config, file_names = _nested_names_unique(_as_functional(config, filename))
    functional = isinstance(config, dict) and config.get("class_name") in ("Functional",
                                                                           "Model")
    imported = (_FunctionalImported(config, filename, same_as) if functional
                else _Imported(config, filename))
    imported.config, imported.file_names = config, file_names
    limit = MAX_PARAMETERS if file_size is None else file_size // 4
    if imported.n_parameters > limit:
        raise _config_error(filename, f"the Keras model_config declares {imported.n_parameters} "
                                      f"parameters, more than "
                                      f"{'this file can hold' if file_size else limit}; the "
                                      f"file is damaged or hostile")
    try:
        if functional:
            imported.nested_model_objects()
            model = Model(imported.inputs if len(imported.inputs) > 1 else imported.inputs[0],
                          imported.outputs if len(imported.outputs) > 1 else imported.outputs[0],
                          name=_dlcore_model_name(imported.name))
            # a Keras Sequential that nests a model: it goes back to Keras a Sequential
            model.keras_sequential_ = keras_sequential
            _keep_dict_keys(model, config["config"])
        else:
            model = Sequential(imported.layers, input_shape=imported.input_shape,
                               name=_dlcore_model_name(imported.name))
        model._keep_trainable(config["config"])
        if _keras_float_type(config["config"].get("layers"), imported.notes) == "float64" \
                and (functional or model.input_shape is not None):
            # Keras's float64 policy: the layers' own dtype, which dlcore's layers take
            model.build(**({"input_shape": model.input_shape} if not functional else {}),
                        dtype=np.float64)
    except (ValueError, TypeError) as error:
        raise _config_error(filename, f"the Keras model does not build in dlcore: "
                                      f"{str(error).splitlines()[0][:300]}") from None
    _check_nested_layers_run(model, filename)
    if imported.nested_models:
        # Keras's own weights files of it keep the nested layout: load_weights reads them
        # (a legacy one under the names in the file of the layers renamed here)
        model.keras_nested_config_, model.keras_file_names_ = config, file_names
        model.keras_same_as_ = dict(same_as or {})
    return model, imported


def shared_across_nesting(imported, holds_its_arrays) -> dict:
    """``{layer of a nested model: the layer of the model it is}`` for the layers Keras shares
    across a nesting (``d = Dense(4)`` called in a model and in a model nested in it: one
    layer, one set of weights, trained by both calls), told from the file, since Keras's
    config lists such a layer in each model (a name a nested model may give a layer of its
    own too: a base loaded from a file keeps its ``dense`` beside a new head's ``dense``).
    A layer renamed on import (:func:`_nested_names_unique`) is the one whose name it had
    when it has the same class and settings and ``holds_its_arrays(renamed, name)`` says the
    file holds its weights so (a Keras archive writes a shared layer's arrays once, at its
    first place: none at the other; a legacy file writes them at each, the same values)."""
    entries, pending = {}, [imported.config]
    while pending:
        body = pending.pop().get("config")
        for entry in (body.get("layers") if isinstance(body, dict) else None) or ():
            if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
                continue
            if entry.get("class_name") in _MODEL_CLASSES:
                pending.append(entry)
            elif isinstance(entry["config"].get("name"), str):
                entries.setdefault(entry["config"]["name"], entry)

    def settings(value, top=True):
        # (Keras's archive marks an object it serialises again, the same dtype policy of
        # another layer, with its shared_object_id: not a setting)
        if isinstance(value, dict):
            return {key: settings(item, False) for key, item in value.items()
                    if key != "shared_object_id" and not (top and key == "name")}
        return [settings(item, False) for item in value] if isinstance(value, list) else value

    same_as = {}
    for renamed, name in getattr(imported, "file_names", {}).items():
        if renamed in entries and name in entries and name in imported.converters and \
                entries[renamed].get("class_name") == entries[name].get("class_name") and \
                settings(entries[renamed]["config"]) == settings(entries[name]["config"]) and \
                holds_its_arrays(renamed, name):
            same_as[renamed] = name
    return same_as


def _check_nested_layers_run(model, filename):
    """Refuse in one line a Keras model whose nested model has layers the model never runs
    (they make an output of it that the model leaves unused): a dlcore model runs, holds and
    saves only what its outputs need, so their weights would have no place in it."""
    pending = [model]
    while pending:
        outer = pending.pop()
        running = {id(layer) for layer in outer.flat_layers}
        for inner in getattr(outer, "nested_models", ()):
            lost = [layer.name for layer in inner.flat_layers if id(layer) not in running]
            if lost:
                raise _config_error(filename, f"the nested model {inner.name!r} gives an output "
                                              f"that {outer.name!r} leaves unused, made by "
                                              f"{', '.join(lost[:4])[:200]}: a dlcore model "
                                              f"runs only what its outputs need, so those "
                                              f"layers would be lost; use that output, or "
                                              f"leave it out of the nested model, in Keras")
            pending.append(inner)


def warn_notes(notes, filename):
    """Each note as a UserWarning naming the file."""
    for note in notes:
        warnings.warn(f"{filename}: {note}", UserWarning, stacklevel=3)


def model_from_json(text: str):
    """``dlcore.models.model_from_json``: a dlcore Sequential or Model from Keras's ``to_json()``
    text (weights freshly initialised); ModelFileError naming what cannot be imported, a
    warning naming each augmentation layer left out. Bytes are read as UTF-8 (text read from a
    file opened ``"rb"``), as ``json.loads`` reads them."""
    if not isinstance(text, (str, bytes, bytearray)):
        raise TypeError(f"model_from_json takes the JSON text of a model (what Keras's "
                        f"model.to_json() returns), got {type(text).__name__}")
    try:
        if not isinstance(text, str):
            text = bytes(text).decode("utf-8")
        config = parse_json(text)
    except ValueError as error:   # UnicodeDecodeError is one
        raise _config_error("<json>", f"the Keras model JSON is not valid: {error}") from None
    model, imported = model_from_config(config)
    warn_notes(imported.notes, "<json>")
    return model


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
        dtype = reader.element_dtype(attribute_id, f"attribute '{key}' of '{where}'")
        space = attribute_id.get_space()
        count = (0 if space.get_simple_extent_type() == h5py.h5s.NULL
                 else space.get_simple_extent_npoints())
        if count == 0:
            continue
        if count > MAX_OBJECTS or len(attribute_id.shape or ()) != 1 or \
                h5py.check_string_dtype(dtype) is None:
            raise reader.error(f"attribute '{key}' of '{where}' should be a list of names; "
                               f"found shape {shape_text(attribute_id.shape or ())} of "
                               f"{dtype}")
        if h5py.check_string_dtype(dtype).length is not None and \
                h5py.check_string_dtype(dtype).length > _MAX_NAME:
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


def keras_shapes(layer) -> list[tuple]:
    """The shapes Keras stores ``layer``'s arrays in: HWIO kernels for Conv2D (and
    (k_h, k_w, filters, channels) for Conv2DTranspose), dlcore's own otherwise."""
    shapes = [tuple(array.shape) for array in layer.get_weights()]
    if kind_of(layer) in ("Conv2D", "Conv2DTranspose"):
        shapes = [(s[2], s[3], s[1], s[0]) if len(s) == 4 else s for s in shapes]
    return shapes


def _legacy_arrays(reader: ModelFileReader, group: h5py.Group, where: str,
                   imported: _Imported, model) -> dict:
    """Keras layer name -> its arrays, from a legacy Keras weights group, every shape checked
    before reading (against ``model``, built from ``imported``)."""
    layer_names = _string_list(reader, group, "layer_names", where)
    by_name = {layer.name: layer for layer in model.flat_layers}
    expected = [name for name in imported.keras_names if name in imported.converters]
    with_weights = []
    nested = getattr(imported, "nested_models", {})
    file_names = getattr(imported, "file_names", {})   # a nested layer renamed at import
    for name in layer_names:
        layer_group = reader.group(f"{where}/{name}".lstrip("/"))
        paths = _string_list(reader, layer_group, "weight_names", f"{where}/{name}")
        if paths and name in nested:
            # a nested model's group lists its layers' arrays as [<model>/]<layer>/<array>
            for inner in nested[name]:
                if inner in getattr(imported, "same_as", {}):
                    continue   # the model's own layer, whose arrays are read at its place
                # under its name in Keras's file, or under dlcore's, which dlcore's own
                # legacy files write (renamed from a clash, it is a name the file has not)
                mine = [path for path in paths if path.split("/")[-2:-1] in
                        ([file_names.get(inner, inner)], [inner])]
                if mine:
                    with_weights.append((inner, layer_group, mine))
        elif paths:
            with_weights.append((name, layer_group, paths))
    # by name, whatever the order (Keras lists a graph's layers by depth, not as its config)
    if sorted(name for name, _, _ in with_weights) != sorted(expected) and not nested:
        with_weights = _renumbered_in_order(model, with_weights, expected) or with_weights
    if sorted(name for name, _, _ in with_weights) != sorted(expected):
        raise reader.error(f"the weights are for the layers "
                           f"{', '.join(n for n, _, _ in with_weights)[:200] or 'none'}; the "
                           f"model's layers with weights are "
                           f"{', '.join(expected)[:200] or 'none'}")
    arrays_of = {}
    for name, layer_group, paths in with_weights:
        # tf.keras 2's LocallyConnected2D: its implementation's shapes
        shapes = getattr(imported.converters[name][1], "keras_shapes", keras_shapes)(
            by_name[name])
        if len(paths) != len(shapes):
            raise reader.error(f"layer '{name}' has {len(paths)} weight arrays; the "
                               f"model's layer has {len(shapes)}")
        arrays_of[name] = [reader.read_dataset(f"{layer_group.name}/{path}".lstrip("/"), shape)
                           for path, shape in zip(paths, shapes)]
    return arrays_of


def set_weights(model, imported: _Imported, arrays_of: dict) -> None:
    """Convert Keras's arrays to dlcore's layouts (kernels; a Dense's rows as its input's row
    layout says, its units as a Reshape after it needs) and set them."""
    for layer in model.flat_layers:
        if layer.name in arrays_of:
            _, convert = imported.converters[layer.name]
            arrays = arrays_of[layer.name]
            if kind_of(layer) == "Dense":
                arrays = convert(arrays, imported.dense_inputs.get(layer.name),
                                 imported.dense_columns.get(layer.name))
            elif kind_of(layer) == "LocallyConnected2D":
                arrays = convert(arrays, layer)
            else:
                arrays = convert(arrays)
            try:
                layer.set_weights([np.asarray(a, dtype=layer.dtype) for a in arrays])
            except ValueError as error:   # values out of a layer's range (shapes: checked)
                raise ModelFileError(imported.filename, f"{imported.filename}: {error}; "
                                                        f"{DAMAGED_FIX}") from None


def _renumbered_in_order(model, with_weights: list, expected: list) -> list | None:
    """``with_weights`` (a legacy file's layers with arrays, in its order) under the names of
    ``expected`` (the model's, in its order) where a dlcore Sequential's layers differ from
    the file's only in names dlcore gave, which a functional model that called it renumbered
    (``dense``, ``dense_1`` become ``dense_2``, ``dense_3``; docs/networks.md, "What is
    renamed"): then its own weights file, written before, reads in order, as Keras's
    ``load_weights`` reads a legacy file. None otherwise (a graph's order is no proof)."""
    from dlcore.functional import has_automatic_name
    from dlcore.network import Sequential
    if not isinstance(model, Sequential) or len(with_weights) != len(expected):
        return None
    by_name = {layer.name: layer for layer in model.flat_layers}
    for (name, _, _), mine in zip(with_weights, expected):
        layer = by_name.get(mine)
        if name != mine and (layer is None or not (
                has_automatic_name(layer) or getattr(layer, "_dlcore_name", None) == mine)):
            return None
    return [(mine, group, paths) for (_, group, paths), mine in zip(with_weights, expected)]


def _weights_of(reader: ModelFileReader, h5file: h5py.File, imported: _Imported, model):
    """Keras layer name -> arrays from whichever Keras layout the file has: a model file's
    ``model_weights``, a legacy weights file, or Keras 3's ``.weights.h5``."""
    from dlcore.io import keras_weights
    reader.parameter_type = model.dtype   # a float64 model takes float64's range
    if "model_weights" in h5file:
        return _legacy_arrays(reader, reader.group("model_weights"), "model_weights", imported,
                              model)
    if keras_weights.is_subclassed_weights_file(h5file):
        return keras_weights.read_subclassed(reader, h5file, imported, model)
    if "layer_names" in h5file.attrs or not keras_weights.is_weights_file(h5file):
        return _legacy_arrays(reader, h5file, "", imported, model)
    return keras_weights.read(reader, h5file, imported, model)


def load_keras(filename: str, h5file: h5py.File):
    """The dlcore model of an open Keras HDF5 model file (``dlcore.load`` calls this), compiled
    as its ``training_config`` says when dlcore has those settings
    (:mod:`dlcore.io.keras_training`); a warning for each layer left out and for compile
    settings dlcore does not have."""
    reader = ModelFileReader(h5file, filename)
    config = reader.json_attribute(h5file, "model_config", "/")
    model, imported = model_from_config(config, filename, reader.file_size)
    reader.parameter_type = model.dtype   # a float64 model takes float64's range
    arrays_of = _legacy_arrays(reader, reader.group("model_weights"), "model_weights",
                               imported, model)

    def same_arrays(renamed, name):
        # equal constants prove nothing: two distinct untrained layers hold their initial
        # values (a fresh BatchNormalization's 1, 0, 0, 1; a zero-initialised Dense) alike
        return name in arrays_of and len(arrays_of[renamed]) == len(arrays_of[name]) and all(
            np.array_equal(mine, theirs)
            for mine, theirs in zip(arrays_of[renamed], arrays_of[name])) and any(
            np.size(array) > 1 and np.ptp(array) > 0 for array in arrays_of[name])

    same_as = shared_across_nesting(imported, same_arrays)
    if same_as:   # built again with one layer where Keras has one
        model, imported = model_from_config(config, filename, reader.file_size, same_as)
    set_weights(model, imported, arrays_of)
    notes = list(imported.notes)
    training = reader.json_attribute(h5file, "training_config", "/", default=None)
    if training is not None:
        notes += compile_as_keras_did(model, imported, reader, training, "training_config",
                                      _optimizer_weight_paths(reader),
                                      tf_keras=_written_by_tf_keras(reader, h5file))
    warn_notes(notes, filename)
    return model


def compile_as_keras_did(model, imported, reader, training, where, variable_paths,
                         state_missing=None, tf_keras=False):
    """Compile an imported ``model`` with the settings of a Keras ``training_config``
    (``where`` names the file's entry they came from; ``tf_keras``: written by Keras 2 or
    older) and adopt the optimiser's state stored at ``variable_paths``
    (:mod:`dlcore.io.keras_optimizer`); the notes (a warning each) for what cannot be carried
    over. ``state_missing``: where the state should be, when the file's format always holds
    it (``keras_optimizer.adopt``'s ``missing``)."""
    from dlcore.io import keras_optimizer
    from dlcore.io.keras_training import compile_from
    why = compile_from(model, _by_output_name(model, training), tf_keras)
    if why is not None:
        return [f"the model is loaded uncompiled (compile it before fit): its Keras {where} "
                f"does not map onto dlcore's: {why}"]
    return keras_optimizer.adopt(model, imported, reader, variable_paths, state_missing)


def _written_by_tf_keras(reader, h5file):
    """Whether a legacy HDF5 file was written by Keras 2 or older (tf.keras), whose flat list
    of metrics was every output's (Keras 3 takes it as one per output). A file without the
    version is Keras 1's, as Keras's own loader takes it (Keras 3 and tf.keras 2 always write
    it); a version that cannot be read is taken for Keras 3's, the writer of legacy files
    today."""
    try:
        version = reader.attribute(h5file, "keras_version", "/", default="1")
    except ModelFileError:
        return False
    return is_tf_keras_version(version)


def is_tf_keras_version(version):
    """Whether a file's ``keras_version`` is Keras 2's or older (tf.keras: a flat list of
    metrics was every output's), not Keras 3's."""
    return isinstance(version, str) and version.split(".")[0] in ("1", "2")


def _by_output_name(model, training):
    """``training`` (a Keras ``training_config``) with its losses, loss weights and metrics by
    output given by the names of the model's outputs (Keras's ``output_names``, those of the
    layers making them), where the Keras model named its outputs by the keys of a dict
    (``outputs={"score": ...}``: ``model.keras_output_keys_``), which Keras's compile then
    takes them by."""
    keys = getattr(model, "keras_output_keys_", None)
    if not keys or not isinstance(training, dict):
        return training
    names = dict(zip(keys, model.output_names))
    renamed = dict(training)
    for what in ("loss", "loss_weights", "metrics"):
        value = training.get(what)
        if isinstance(value, dict) and "class_name" not in value and set(value) <= set(names):
            renamed[what] = {names[key]: item for key, item in value.items()}
    return renamed


def _optimizer_weight_paths(reader: ModelFileReader) -> list[str] | None:
    """The paths of a legacy file's optimiser variables in Keras's order (its
    ``optimizer_weights`` group's ``weight_names``), or None when it holds none."""
    group = reader.group("optimizer_weights", required=False)
    if group is None:
        return None
    return [f"optimizer_weights/{name}" for name in
            _string_list(reader, group, "weight_names", "optimizer_weights")]


def load_weights(model, path: str | os.PathLike, imported: _Imported | None = None) -> None:
    """``model.load_weights(path)`` from a Keras HDF5 weights layout (a weights file, the
    ``model_weights`` group of a model file, or Keras 3's ``.weights.h5``); every shape is
    checked before anything is set. ``imported``: the Keras architecture ``model`` was built
    from (by default the model's own export)."""
    from dlcore.io.hdf5 import _existing_file, _open_model_file
    filename = _existing_file(path)
    if _is_dlcore_model_file(filename):
        _load_dlcore_model_weights(model, filename)
        return None
    if imported is None:
        _, imported = model_from_config(_flat_config(model), filename)
        nested = _nested_keras_config(model)
        if nested is not None:
            try:   # the flat layout (dlcore's files before 2026-12) first; then Keras's nested
                return load_weights(model, path, imported)
            except ModelFileError:
                _, imported = model_from_config(nested, filename,
                                                same_as=getattr(model, "keras_same_as_", None))
                imported.file_names = getattr(model, "keras_file_names_", {})
    backup = model.get_weights()
    from dlcore.io import keras_archive
    if keras_archive.is_archive(filename):   # the weights member of a Keras 3 archive
        with keras_archive.weights_file(filename, imported.n_parameters) as reader:
            reader.fix = OTHER_MODEL_FIX
            arrays_of = _weights_of(reader, reader.file, imported, model)
    else:
        with _open_model_file(filename) as h5file:
            reader = ModelFileReader(h5file, filename)
            reader.fix = OTHER_MODEL_FIX
            arrays_of = _weights_of(reader, h5file, imported, model)
    try:
        set_weights(model, imported, arrays_of)
    except BaseException:
        model.set_weights(backup)
        raise


def _nested_keras_config(model) -> dict | None:
    """The Keras config of ``model`` with its nested models nested, as Keras's own model of the
    architecture holds them (the Keras model it was imported from, else dlcore's export), or
    None when that is the flat one."""
    forget_stale_keras_nesting(model)
    nested = getattr(model, "keras_nested_config_", None)
    if nested is not None or not model.nested_models:
        return nested
    from dlcore.io.keras_archive import serialized_model
    config = serialized_model(_Exported(model, nest=True))
    return None if config == _flat_config(model) else config


def keras_weights(model) -> list:
    """``model.get_weights(layout="keras")``: the arrays ``keras_model.get_weights()`` gives
    for the same architecture built in Keras, in its order (Keras's ``model.layers``) and
    layouts (HWIO kernels, a Dense's rows after a ``Flatten`` of maps in H, W, C order), so
    that ``keras_model.set_weights(...)`` computes what ``model`` does."""
    exported = _Exported(model, architecture=False)
    return [np.array(array, dtype=exported.float_type)
            for name in _keras_weights_order(model, exported.model_config())
            for array in exported.weights.get(name, [])]


def _nests_the_layers(model, config, same_as) -> bool:
    """Whether the Keras ``config`` nests the layers of ``model`` (``same_as``: the names of
    the layers it shares across its nesting, by the name of the one dlcore layer)."""
    names = {layer.name for layer in model.flat_layers}
    # the import merges or leaves out some layers (an augmentation that is the identity at
    # inference, a ZeroPadding2D folded into its convolution): the model has the others
    try:
        listed, built = ({same_as.get(name, name)
                          for name in _leaf_names(config["config"]["layers"], skipped)}
                         for skipped in ((), _AUGMENTATION + ("ZeroPadding2D",)))
        kind = config.get("class_name")
    except (KeyError, TypeError, AttributeError, RecursionError):
        return False
    # a layer shared across the nesting has one dlcore layer, named as its first place: a
    # same_as key that is a layer of the model would send its weights to another layer
    return built <= names <= listed and set(same_as.values()) <= names and \
        kind in _MODEL_CLASSES and not set(same_as) & names


def forget_stale_keras_nesting(model) -> None:
    """Drop the Keras nesting ``model`` was imported with (``keras_nested_config_``,
    ``keras_same_as_``, ``keras_file_names_``) once its layers no longer are the ones it
    nests (a layer renamed since): the model then goes to Keras, and into dlcore's file, as
    dlcore nests it, rather than into a file that would not load again."""
    config = getattr(model, "keras_nested_config_", None)
    if config is not None and not _nests_the_layers(
            model, config, getattr(model, "keras_same_as_", None) or {}):
        for attribute in ("keras_nested_config_", "keras_same_as_", "keras_file_names_"):
            if hasattr(model, attribute):
                delattr(model, attribute)


def kept_keras_nesting(model, kept) -> tuple:
    """``(keras_nested_config_, keras_same_as_, keras_file_names_)`` of ``model`` from the
    ``keras_nesting`` its dlcore file (or pickle, clone) kept: ValueError in one line unless
    the config is a Keras config the importer takes, nesting the model's layers (those
    ``same_as`` names for the others, besides the layers the import merges or leaves out),
    and the two maps are of layer names."""
    problem = "keras_nesting is not the Keras nesting of this model's layers"
    if not isinstance(kept, dict):
        raise ValueError(problem)
    config, same_as, file_names = (kept.get(key) for key in ("config", "same_as",
                                                             "file_names"))
    for mapping in (same_as, file_names):
        if not isinstance(mapping, dict) or not all(
                isinstance(key, str) and isinstance(value, str)
                for key, value in mapping.items()):
            raise ValueError(problem)
    if not _nests_the_layers(model, config, same_as):
        raise ValueError(problem)
    # the weights files and get_weights(layout="keras") walk the config's graph as an import
    # does, trusting what the import checked: a damaged graph is refused here, not there
    try:
        parameter_count(copy.deepcopy(config), "<keras_nesting>")
    except ModelFileError:
        raise ValueError(problem) from None
    return config, dict(same_as), dict(file_names)


def _keras_weights_order(model, flat_config) -> list[str]:
    """The names of ``model``'s layers in the order of Keras's ``get_weights()``: that of the
    flat model dlcore exports (``flat_config``), or, for a model that nests models, that of
    the Keras model it came from (imported: its nested models inlined here) or of its nested
    export, where each nested model's layers come together at its place."""
    from dlcore.io.keras_weights import keras_layer_order
    flat = [name for name, class_name in keras_layer_order(flat_config)
            if class_name != "InputLayer"]
    # a dlcore model that nests models goes to Keras nested (its export), where each nested
    # model's weights come together, not in the flat graph's order (two nested side by side)
    nested = _nested_keras_config(model)
    if nested is None:
        return flat

    def expanded(config):
        entries = {entry["config"]["name"]: entry for entry in config["config"]["layers"]}
        names = []
        for name, class_name in keras_layer_order(config):
            if class_name in ("Sequential", "Functional"):
                names += expanded(entries[name])
            elif class_name != "InputLayer":
                names.append(name)
        return names

    # a layer shared across the nesting is listed in each model that calls it; Keras's
    # get_weights() gives its arrays once, at its first place (the nested model's, where
    # that model comes first), the one dlcore layer's name
    same_as = getattr(model, "keras_same_as_", {})
    order = list(dict.fromkeys(same_as.get(name, name) for name in expanded(nested)))
    # a layer renamed on import (a clash of names across the nesting) leaves the flat order
    return order if sorted(order) == sorted(flat) else flat


def set_keras_weights(model, weights) -> None:
    """``model.set_weights(weights, layout="keras")``: assign what ``keras_model.get_weights()``
    gives for the same architecture (:func:`keras_weights`'s order and layouts), every array's
    number and shape checked before any is set."""
    model._require_built()
    weights = list(weights)
    config = _flat_config(model)
    _, imported = model_from_config(config, "<weights>")
    by_name = {layer.name: layer for layer in model.flat_layers}
    order = [name for name in _keras_weights_order(model, config)
             if name in imported.converters]
    expected = sum(len(keras_shapes(by_name[name])) for name in order)
    if len(weights) != expected:
        raise ValueError(f"the model has {expected} weight arrays in Keras's order; got "
                         f"{len(weights)}: give keras_model.get_weights() of the same "
                         f"architecture")
    arrays_of, position = {}, 0
    for name in order:
        shapes = keras_shapes(by_name[name])
        own_shapes = [tuple(array.shape) for array in by_name[name].get_weights()]
        chunk = [np.asarray(value) for value in weights[position:position + len(shapes)]]
        for value, shape, own_shape in zip(chunk, shapes, own_shapes):
            if value.shape != shape:
                why = ("dlcore's layout: give model.get_weights()'s arrays without "
                       "layout='keras'") if value.shape == own_shape \
                    else "Keras's layout of the layer's arrays"
                raise ValueError(f"layer {name!r}: Keras's array has shape {value.shape}; "
                                 f"expected {shape} ({why})")
        arrays_of[name] = chunk
        position += len(shapes)
    backup = model.get_weights()
    try:
        set_weights(model, imported, arrays_of)
    except BaseException:
        model.set_weights(backup)
        raise


def _is_dlcore_model_file(filename: str) -> bool:
    """Whether ``filename`` is a model file ``dlcore.save`` wrote (an HDF5 file whose root
    ``format`` is dlcore's); False for anything else, which the Keras readers then judge."""
    from dlcore.io import keras_archive
    from dlcore.io.hdf5 import FORMAT_NAME, _open_model_file
    if keras_archive.is_archive(filename):
        return False
    with _open_model_file(filename) as h5file:
        reader = ModelFileReader(h5file, filename)
        return reader.attribute(h5file, "format", "/", default=None) == FORMAT_NAME


def _load_dlcore_model_weights(model, filename: str) -> None:
    """Keras's ``load_weights`` of a full model file, for dlcore's own: the weights of the
    network ``dlcore.save`` wrote (read through :func:`dlcore.load`, so every guard applies)
    into ``model``, when its arrays have the same shapes in the same order."""
    from dlcore.io.hdf5 import load
    saved = load(filename)
    if not callable(getattr(saved, "get_weights", None)) or not hasattr(saved, "layers"):
        raise ModelFileError(filename, f"{filename} is a dlcore model file of "
                                       f"{with_article(type(saved).__name__)}, which has no "
                                       f"network weights to load; load it with "
                                       f"dlcore.load(path)")
    theirs, ours = saved.get_weights(), model.get_weights()
    mismatch = next((index for index, (stored, own) in enumerate(zip(theirs, ours))
                     if stored.shape != own.shape), None)
    if mismatch is not None or len(theirs) != len(ours):
        detail = (f"its weight array {mismatch + 1} has shape {theirs[mismatch].shape}, this "
                  f"model's {ours[mismatch].shape}" if mismatch is not None else
                  f"it holds {len(theirs)} weight arrays, this model {len(ours)}")
        raise ModelFileError(filename, f"{filename} is a dlcore model file of another "
                                       f"architecture: {detail}; build the model it was saved "
                                       f"from (the same layers and sizes), or load the whole "
                                       f"model with dlcore.load(path)")
    model.set_weights(theirs)


def load_with_architecture(path: str | os.PathLike, architecture):
    """``dlcore.load(path, architecture=...)``: a new model of ``architecture`` (a built dlcore
    Sequential or Model, left untouched; a Keras model, read through its ``to_json()``, as
    ``keras_model.load_weights(path)`` takes the model it was saved from; or Keras's model
    JSON, e.g. ``to_json()``'s text or a file's ``model_config``) holding the weights of the
    Keras file at ``path`` (any Keras layout: Keras 3's ``.weights.h5``, a legacy weights
    file, a model file's weights)."""
    from dlcore import Model
    if _is_keras_model(architecture):
        if not _is_keras_model(architecture, own_class=True):
            raise TypeError(f"architecture is a subclassed Keras model "
                            f"({type(architecture).__name__}), whose layers no JSON "
                            f"describes; pass a dlcore model built with the same layers, "
                            f"named as Keras names them")
        # its JSON, never the object: what it names is parsed as a file's config is, and the
        # Keras model is left untouched
        architecture = architecture.to_json()
    if isinstance(architecture, Model):
        model, imported = architecture.clone(), None
        nested = getattr(architecture, "keras_nested_config_", None)
        if nested is not None:
            model.keras_nested_config_ = nested
            model.keras_file_names_ = getattr(architecture, "keras_file_names_", {})
            model.keras_same_as_ = getattr(architecture, "keras_same_as_", {})
    elif isinstance(architecture, (str, bytes, dict)):
        config = architecture
        if not isinstance(config, dict):
            try:
                config = parse_json(config.decode() if isinstance(config, bytes) else config)
            except ValueError as error:
                raise _config_error("<json>", f"the architecture is not valid JSON: "
                                              f"{error}") from None
        model, imported = model_from_config(config)
        warn_notes(imported.notes, "<json>")
    else:
        raise TypeError(f"architecture must be a dlcore Sequential or Model, a Keras model or "
                        f"Keras's model JSON; got {type(architecture).__name__}")
    load_weights(model, path, imported)
    return model


def _is_keras_model(value, own_class=False) -> bool:
    """Whether ``value`` is a Keras model, of one of Keras's own classes (Sequential,
    functional) with ``own_class``, else of any class derived from one (a subclassed model).
    Told by the classes' modules, so that Keras is never imported here: it is no dependency of
    dlcore."""
    classes = type(value).__mro__[:1] if own_class else type(value).__mro__
    return (callable(getattr(value, "to_json", None))
            and any(cls.__module__.split(".")[0] in ("keras", "tf_keras") for cls in classes))


def describe_keras(filename: str, h5file: h5py.File) -> str:
    """What ``dlcore info`` prints for a Keras HDF5 file: who wrote it, its layers (from
    ``model_config``) and every array with its shape (weights-only files: the arrays); read
    through the guarded layer, parameters unread."""
    reader = ModelFileReader(h5file, filename)
    if not is_keras_file(h5file):
        return "\n".join([f"file           {filename}",
                          "format         Keras HDF5 weights file (no architecture: "
                          "dlcore.load(path, architecture=...) or model.load_weights reads it)",
                          "", "weights"] + array_lines(reader, h5file, ""))
    config = reader.json_attribute(h5file, "model_config", "/")
    lines = [f"file           {filename}",
             "format         Keras HDF5 model file (legacy .h5; dlcore imports it, NHWC -> NCHW)"]
    for name in ("keras_version", "backend"):
        value = reader.attribute(h5file, name, "/", default=None)
        if value is not None:
            lines.append(f"{name:<15}{str(value)[:80]}")
    if "training_config" in h5file.attrs:
        lines.append("training       compiled (training_config)")
    lines += layer_lines(config)
    weights = reader.group("model_weights", required=False)
    if weights is not None:
        lines += ["", "weights"] + array_lines(reader, weights, "model_weights")
    return "\n".join(lines)


def layer_lines(config) -> list[str]:
    """The lines of ``dlcore info`` naming a Keras model config's class and its layers."""
    body = config.get("config") if isinstance(config, dict) else None
    kind = config.get("class_name") if isinstance(config, dict) else None
    lines = [f"model          {str(kind)[:60]}"]
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
    return lines


def array_lines(reader, group, where):
    """A line per dataset under ``group``: its path, shape and dtype (nothing read)."""
    lines = []
    for path, item in reader.walk(group, where):
        if isinstance(item, h5py.Dataset):
            reader.check_dtype(item, path)
            lines.append(f"  {path[:160]}  {shape_text(item.shape or ())} {item.dtype}")
    return lines
