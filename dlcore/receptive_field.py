"""Receptive fields: how many input pixels one unit of each layer depends upon.

Lecture "Supervised learning" (CVPR 2014 tutorial), slide "Pooling Layer: Receptive Field
Size": "If convolutional filters have size K x K and stride 1, and pooling layer has pools of
size P x P, then each unit in the pooling layer depends upon a patch (at the input of the
preceding conv. layer) of size (P + K - 1) x (P + K - 1)"; and "after one stage ... the
receptive field gets bigger". Along each axis a layer with window F and stride S, whose input
units are ``j`` input pixels apart and each see ``r`` of them, gives

    r_out = r + (F - 1) j,        j_out = j S

(Araujo, Norris & Sim 2019, "Computing receptive fields of convolutional neural networks").
Padding moves where a field lies, not its size. A locally connected layer's fields are a
convolution's (its filters are not shared, its windows are the same). A Dense layer on rows
flattened from H x W maps is the convolution whose kernel covers the maps (lecture "Supervised
learning", slide "ConvNets: Training": "the first fully connected layer can be seen as a conv.
layer"), so its units see ``r + (H - 1) j`` pixels; a global pool likewise. Element-wise
layers (activations, dropout, noise, normalisation) change nothing; a join (``add``,
``concatenate``) sees what the widest of its inputs sees. The sizes are the theoretical ones:
a field may reach into the zero padding around the image, so it can be larger than the image
itself.
"""
from dataclasses import dataclass

from dlcore.validation import check_network

__all__ = ["ReceptiveField", "receptive_fields"]

#: The field of an input of rows (n, features): no layout until a Reshape makes them images.
_ROWS = object()


@dataclass(frozen=True)
class ReceptiveField:
    """The receptive field of one unit of a layer's output.

    Attributes
    ----------
    size : (height, width), the input pixels one unit depends upon along each axis
    jump : (height, width), the distance in input pixels between two neighbouring units
    """

    size: tuple
    jump: tuple


@dataclass(frozen=True)
class _Field:
    """A tensor's field while walking the graph; ``flat_from`` is the (H, W) of the maps a
    Flatten made its rows of (None for images; (1, 1) once a Dense has covered them)."""

    size: tuple
    jump: tuple
    flat_from: tuple = None


def receptive_fields(model):
    """The receptive field of every layer of a built network on image inputs.

    Parameters
    ----------
    model : dlcore.Sequential or dlcore.Model
        A built network whose inputs are images (C, H, W) (or rows that a first ``Reshape``
        makes images).

    Returns
    -------
    dict
        ``{layer name: ReceptiveField(size=(h, w), jump=(h, w))}`` in ``model.layers`` order
        (a layer called several times: the largest of its calls; a nested model: the field of
        its outputs, followed by its own layers'); None for a layer whose units
        have no one field in input pixels: an up-sampling or a transposed convolution (each
        input pixel spread over several outputs, a U-Net's way up), a Reshape of maps, and
        every layer that takes their outputs.

    Raises
    ------
    ValueError
        In one line, for a layer on an input of rows that no Reshape made images.

    Examples
    --------
    >>> import dlcore
    >>> fields = dlcore.receptive_fields(dlcore.models.lenet5(backend="reference"))
    >>> fields["s2"].size, fields["c3"].size, fields["c5"].size
    ((6, 6), (14, 14), (32, 32))
    """
    check_network(model, "receptive_fields")
    fields = {}
    for tensor in model.inputs:
        if len(tensor.shape) == 3:
            fields[id(tensor)] = _Field((1, 1), (1, 1))
        else:   # rows: only a Reshape into images gives them a layout (checked there)
            fields[id(tensor)] = _ROWS
    by_layer = {}
    for node in _graph_nodes(model):
        inputs = [fields[id(tensor)] for tensor in node.inputs]
        field = _layer_field(node.layer, node.inputs, inputs)
        fields[id(node.output)] = field
        name = node.layer.name
        by_layer[name] = _widest([by_layer[name], field]) if name in by_layer else field
    # a nested model (one entry of model.layers, as in Keras) sees what its outputs see
    nested_models = getattr(model, "nested_models", [])
    for call, _, outputs in model._model_calls() if nested_models else ():
        name, field = call.model.name, _widest([fields[id(tensor)] for tensor in outputs])
        by_layer[name] = _widest([by_layer[name], field]) if name in by_layer else field
    nested = {id(entry) for entry in nested_models}
    listed = []
    for entry in model.layers:
        listed.append(entry.name)
        if id(entry) in nested:
            listed.extend(layer.name for layer in entry.flat_layers)
    return {name: None if by_layer[name] is None
            else ReceptiveField(by_layer[name].size, by_layer[name].jump)
            for name in listed if name in by_layer}


def _graph_nodes(model):
    from dlcore.functional import topological_nodes
    return topological_nodes(model.inputs, model.outputs)


def _layer_field(layer, tensors, inputs):
    """The field of ``layer``'s output, given its input tensors and their fields."""
    from dlcore.layers import Conv2DTranspose, Dense, Flatten, Reshape, UpSampling2D
    from dlcore.layers.base import WindowedLayer
    from dlcore.layers.merge import Dot, Merge
    from dlcore.layers.pooling import _GlobalPool2D, _Pool2D
    label = f"layer {layer.name!r} ({type(layer).__name__})"
    if isinstance(layer, Dot):
        # a sum over every unit of its rows: as a Dense's, the whole of each flattened map
        return _widest([_whole_maps(field) for field in inputs])
    if isinstance(layer, Merge):
        return _widest(inputs)
    (field,), (tensor,) = inputs, tensors
    if (field is _ROWS and isinstance(layer, Reshape)
            and len(layer.compute_output_shape(tuple(tensor.shape))) == 3):
        return _Field((1, 1), (1, 1))     # the input rows made images
    if field is _ROWS:
        raise ValueError(f"{label} takes rows of shape {tuple(tensor.shape)}, not images "
                         f"(C, H, W): receptive fields are measured in the pixels of image "
                         f"inputs; build the network on images (input_shape=(1, 28, 28)) or "
                         f"put Reshape((1, 28, 28)) first")
    if field is None or isinstance(layer, (Conv2DTranspose, UpSampling2D)):
        return None
    if isinstance(layer, Flatten):
        return _Field(field.size, field.jump, field.flat_from or tuple(tensor.shape[1:]))
    if isinstance(layer, Reshape):
        return None     # its units rearranged: no longer a map of the input's layout
    if isinstance(layer, (WindowedLayer, _Pool2D)):
        # a convolution, or a locally connected layer: the same fields, whether or not the
        # filters are shared (a transposed convolution has none, above)
        window = layer._window(tuple(tensor.shape))
        return _grown(field, (window.kernel_height, window.kernel_width),
                      (window.stride_height, window.stride_width))
    if isinstance(layer, _GlobalPool2D):
        grown = _grown(field, tuple(tensor.shape[1:]), tuple(tensor.shape[1:]))
        return grown if layer.keepdims else _Field(grown.size, grown.jump, (1, 1))
    if isinstance(layer, Dense):
        return _whole_maps(field)
    return field    # element-wise: activations, dropout, noise, normalisation, rescaling


def _whole_maps(field):
    """The field of a unit that reads every unit of rows of ``field`` (a Dense's, a Dot's): for
    flattened maps that of the convolution whose kernel covers them, at its one position."""
    if field is None or field is _ROWS or field.flat_from is None:
        return field
    grown = _grown(field, field.flat_from, field.flat_from)
    return _Field(grown.size, grown.jump, (1, 1))


def _grown(field, kernel, stride):
    """r + (F - 1) j and j S along each axis."""
    size = tuple(r + (f - 1) * j for r, f, j in zip(field.size, kernel, field.jump))
    jump = tuple(j * s for j, s in zip(field.jump, stride))
    return _Field(size, jump)


def _widest(fields):
    if any(field is None or field is _ROWS for field in fields):
        return None
    return _Field(tuple(map(max, zip(*(f.size for f in fields)))),
                  tuple(map(max, zip(*(f.jump for f in fields)))),
                  fields[0].flat_from)
