"""Keras 3's weights-only files (``model.save_weights("m.weights.h5")``), read and written.

Keras 3 writes a model's weights without its architecture, addressed by the path of each layer
in the model rather than by the layer's name (names are often generated):

    layers/<layer>/vars/0, 1, ...    the layer's arrays in Keras's order (kernel, then bias),
                                     the group ``vars`` with the attribute ``name`` (the
                                     layer's name; Keras 3.15 writes it)
    vars                             the model's own (none), attribute ``name``
    optimizer/vars/0, 1, ...         the optimiser's state, when compiled (not read)

``<layer>`` is the layer's class name in snake case (``conv2d``, ``max_pooling2d``, ``re_lu``),
with ``_1``, ``_2``, ... for the second, third, ... layer of a class, counted in the order of
Keras's ``model.layers``: the layers of a Sequential (no InputLayer), or of a functional model
ordered by depth from the inputs (InputLayers included; :func:`keras_layer_order` follows
Keras's own ``map_graph``). The arrays are in Keras's layouts, as in the legacy files
(:mod:`dlcore.io.keras`).

So the weights are read against an architecture (``dlcore.load(path, architecture=...)``,
``model.load_weights(path)``): a layer's arrays are found by its path, as Keras finds them (the
layers' names may differ), and every array's shape is checked against the architecture before
any is read; a file whose arrays differ in number, place or shape is refused in one line.
"""
from __future__ import annotations

import collections
import re

import h5py
import numpy as np

from dlcore.io.guarded import MAX_OBJECTS

MISMATCH_FIX = ("the weights are for another architecture: give the one they were saved from "
                "(dlcore.load(path, architecture=model or its JSON))")


def snake_case(class_name: str) -> str:
    """Keras's ``to_snake_case`` of a class name: ``MaxPooling2D`` -> ``max_pooling2d``."""
    name = re.sub(r"\W+", "", class_name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def is_weights_file(h5file: h5py.File) -> bool:
    """Whether an open HDF5 file has Keras 3's weights layout (a ``layers`` group at the root,
    no model config)."""
    return isinstance(h5file.get("layers", getlink=True), h5py.HardLink) and \
        isinstance(h5file.get("layers"), h5py.Group) and "model_config" not in h5file.attrs


def keras_layer_order(config) -> list[tuple[str, str]]:
    """``(name, class_name)`` of every layer of a Keras model config (validated: see
    :func:`dlcore.io.keras.model_from_config`) in the order of Keras's ``model.layers``."""
    entries = config["config"]["layers"]
    if config.get("class_name") == "Sequential":
        return [(entry["config"]["name"], entry["class_name"]) for entry in entries
                if entry["class_name"] != "InputLayer"]
    classes = {entry["config"]["name"]: entry["class_name"] for entry in entries}
    nodes = {}
    for entry in entries:
        name = entry["config"]["name"]
        if entry["class_name"] == "InputLayer":
            nodes[(name, 0)] = []
            continue
        for index, node in enumerate(entry.get("inbound_nodes", [])):
            items = call_tensors(node["args"][0])
            nodes[(name, index)] = [tuple(item["config"]["keras_history"][:2]) for item in items]
    outputs = [tuple(reference[:2]) for reference in output_references(config["config"])]
    inputs = _references(config["config"]["input_layers"])
    return [(name, classes[name]) for name in map_graph(nodes, inputs, outputs)]


def call_tensors(arg):
    """The tensors a Keras 3 inbound node's first argument gives a layer, as a list: a list
    as it is, a dict of tensors by key (a model of dict inputs called as
    ``model({"title": t, "body": b})``) by sorted key, Keras's order of ``model.inputs``
    (:func:`flattened_references`), one tensor as a list of it."""
    if isinstance(arg, list):
        return arg
    if isinstance(arg, dict) and arg.get("class_name") != "__keras_tensor__" and \
            0 < len(arg) <= 64 and all(isinstance(key, str) for key in arg):
        return [arg[key] for key in sorted(arg)]
    return [arg]


def flattened_references(value):
    """Keras's ``input_layers`` or ``output_layers`` given as a dict (a model of named inputs or
    outputs, ``keras.Model(inputs={"title": ...}, outputs={"priority": ...})``, as keras.io's
    functional API guide builds them) as the list of its references in Keras's order of
    ``model.inputs``/``model.outputs`` (``keras.tree.flatten``: by sorted key); any other
    value as it is."""
    if isinstance(value, dict) and 0 < len(value) <= 64 and all(
            isinstance(key, str) for key in value):
        return [value[key] for key in sorted(value)]
    return value


def output_references(body) -> list:
    """The ``output_layers`` of a Keras functional config's ``body`` as ``[layer, node index,
    tensor index]`` each, the node index of a nested functional model's output its call's:
    Keras 3's ``get_config`` numbers that model's calls from 1 (for a node such models once
    started with) and ``functional_from_config`` takes the 1 away again, so that a 0 there is
    the model's last call (Python's index -1), as Keras reads it. Other entries as they are."""
    value = flattened_references(body.get("output_layers") if isinstance(body, dict) else None)
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        value = [value]
    if not isinstance(value, list) or not 0 < len(value) <= 64:
        return [value]
    calls = {}
    for entry in body.get("layers") if isinstance(body.get("layers"), list) else ():
        config = entry.get("config") if isinstance(entry, dict) else None
        if entry_is_functional(entry) and isinstance(config, dict) and \
                isinstance(entry.get("inbound_nodes"), list) and entry["inbound_nodes"]:
            calls[config.get("name")] = len(entry["inbound_nodes"])
    references = []
    for reference in value:
        if isinstance(reference, list) and len(reference) == 3 and \
                isinstance(reference[0], str) and reference[0] in calls and \
                isinstance(reference[1], int) and not isinstance(reference[1], bool) and \
                reference[1] >= 0:
            node = reference[1] - 1
            reference = [reference[0], node + calls[reference[0]] if node < 0 else node,
                         reference[2]]
        references.append(reference)
    return references


def entry_is_functional(entry) -> bool:
    """Whether the Keras layer ``entry`` is a functional model (Keras's class ``Functional``,
    or ``Model`` with a graph), whose calls ``output_layers`` numbers from 1."""
    return isinstance(entry, dict) and (entry.get("class_name") == "Functional" or (
        entry.get("class_name") == "Model" and isinstance(entry.get("config"), dict) and
        "output_layers" in entry["config"]))


def _references(value):
    value = flattened_references(value)
    return [tuple(value[:2])] if isinstance(value[0], str) else [tuple(v[:2]) for v in value]


def map_graph(nodes, inputs, outputs):
    """Keras's ``map_graph`` (keras/src/ops/function.py) on node keys ``(layer, index)``: a
    depth-first walk from the outputs (each layer numbered when first reached), depths from
    the outputs back (a layer at the largest depth of its nodes), then the layers by
    decreasing depth, ties in walk order. Iterative: a deep graph needs no deep recursion.

    ``nodes`` maps every node key to the keys of the nodes making its inputs (in the order the
    call takes them; an input's node has none), ``inputs`` and ``outputs`` are node keys; the
    layers (any hashable, the keys' first items) come back in Keras's ``model.layers`` order,
    inputs included. Keras files use names; :class:`dlcore.Model` its own layers."""
    finished, in_progress, walk, first_seen = set(), set(), [], {}

    def enter(node):
        first_seen.setdefault(node[0], len(first_seen))
        in_progress.add(node)

    for output in outputs:
        if output in finished:
            continue
        enter(output)
        stack = [(output, iter(nodes[output]))]
        while stack:
            node, parents = stack[-1]
            parent = next(parents, None)
            if parent is None:
                stack.pop()
                in_progress.discard(node)
                finished.add(node)
                walk.append(node)
            elif parent not in finished:
                if parent in in_progress:
                    raise ValueError(f"the graph has a cycle through {parent[0]!r}")
                enter(parent)
                stack.append((parent, iter(nodes[parent])))
    in_graph = set(walk)
    node_depths, layer_depths = {}, {}
    for node in reversed(walk):
        depth = max(node_depths.setdefault(node, 0), layer_depths.get(node[0], 0))
        layer_depths[node[0]] = node_depths[node] = depth
        for parent in nodes[node]:
            if parent in in_graph:
                node_depths[parent] = max(depth + 1, node_depths.get(parent, 0))
    for key in inputs:   # inputs no output depends on
        if key[0] not in layer_depths:
            layer_depths[key[0]], first_seen[key[0]] = 0, -1
    by_depth = collections.defaultdict(list)
    for layer, depth in layer_depths.items():
        by_depth[depth].append(layer)
    return [layer for depth in sorted(by_depth, reverse=True)
            for layer in sorted(by_depth[depth], key=lambda name: first_seen[name])]


def layer_paths(config) -> list[tuple[str, str]]:
    """``(layer name, path of its vars group)`` in Keras's order; a model nested in the model
    (which dlcore inlines) gives its layers' paths inside its own group,
    ``layers/sequential/layers/<layer>/vars`` (``layers/functional/...``), their names counted
    anew within it, and so on for a model nested in it (the importer bounds the depth)."""
    return _scoped_paths(config, "layers")


def _scoped_paths(config, prefix):
    # an entry of no name (an InputLayer may have none) is no nested model to look into
    entries = {entry["config"].get("name"): entry for entry in config["config"]["layers"]
               if isinstance(entry, dict) and isinstance(entry.get("config"), dict)}
    counts, paths = {}, []
    for name, class_name in keras_layer_order(config):
        base = snake_case(class_name)
        counts[base] = counts.get(base, -1) + 1
        group = f"{prefix}/{base}_{counts[base]}" if counts[base] else f"{prefix}/{base}"
        entry = entries.get(name)
        if class_name in ("Sequential", "Functional") and entry is not None:
            paths += _scoped_paths({"class_name": class_name, "config": entry["config"]},
                                   f"{group}/layers")
        else:
            paths.append((name, f"{group}/vars"))
    return paths


def read(reader, h5file, imported, model) -> dict:
    """Keras layer name -> its arrays (Keras's layouts) from a Keras 3 weights file, for the
    architecture ``imported`` (:class:`dlcore.io.keras._Imported`) of ``model``; every shape is
    checked before any array is read."""
    from dlcore.io.keras import keras_shapes
    layers_group = reader.group("layers")
    present = list(reader.names(layers_group, "layers"))
    if len(present) > MAX_OBJECTS:
        raise reader.error(f"group 'layers' holds {len(present)} layers", MISMATCH_FIX)
    expected = _shared_read_where_written(reader, layer_paths(imported.config), imported)
    known = {path.split("/")[1] for _, path in expected}
    # a layer without arrays (a padding, a pool) may be missing or extra: only arrays count
    stray = [f"layers/{name}/vars" for name in present if name not in known
             and _array_count(reader, f"layers/{name}/vars")]
    if stray:
        raise reader.error(f"the file holds arrays at {', '.join(stray)[:200]}, for layers the "
                           f"architecture lacks", MISMATCH_FIX)
    by_name = {layer.name: layer for layer in model.flat_layers}
    arrays_of = {}
    for name, path in expected:
        group = reader.group(path, required=False)
        stored = [] if group is None else sorted(reader.names(group, path))
        with_weights = name in imported.converters
        shapes = keras_shapes(by_name[name]) if with_weights else []
        if stored != sorted(str(i) for i in range(len(shapes))):
            raise reader.error(f"layer {name!r} has the arrays {', '.join(stored)[:80] or 'none'} "
                               f"at '{path}'; the architecture's has {len(shapes)}", MISMATCH_FIX)
        if with_weights:
            arrays_of[name] = [reader.read_dataset(f"{path}/{i}", shape)
                               for i, shape in enumerate(shapes)]
    return arrays_of


def written_once(reader, imported):
    """Whether a Keras 3 weights file holds a layer's arrays at the place of one of layers
    ``name`` and ``renamed`` and none at the other's
    (:func:`dlcore.io.keras.shared_across_nesting`): Keras writes the arrays of a layer it
    reaches twice (shared across a nesting) once, at the place it reaches first."""
    paths = dict(layer_paths(imported.config))

    def holds(renamed, name):
        return renamed in paths and name in paths and sorted(
            bool(_array_count(reader, paths[place])) for place in (renamed, name)) == \
            [False, True]
    return holds


def _shared_read_where_written(reader, expected, imported):
    """``expected`` (``(layer name, path)`` in Keras's order) with the places of a layer
    shared across a nesting and of its renamed entry swapped where Keras wrote its arrays at
    the nested model's place (the nested model comes first in ``model.layers``): the one
    dlcore layer, under ``name``, reads them there."""
    same_as = getattr(imported, "same_as", {})
    paths = dict(expected)
    swapped = {}
    for renamed, name in same_as.items():
        if renamed in paths and name in paths and _array_count(reader, paths[renamed]):
            swapped[renamed], swapped[name] = paths[name], paths[renamed]
    return [(name, swapped.get(name, path)) for name, path in expected]


def is_subclassed_weights_file(h5file: h5py.File) -> bool:
    """Whether an open HDF5 file is Keras 3's weights file of a subclassed ``keras.Model``:
    the model's own ``vars`` at the root, its layers under the names of the attributes that
    hold them (``dense1/vars``) instead of under ``layers``."""
    own = h5file.get("vars", getlink=True)
    return (isinstance(own, h5py.HardLink) and isinstance(h5file.get("vars"), h5py.Group)
            and "layers" not in h5file and "model_config" not in h5file.attrs
            and "layer_names" not in h5file.attrs)


def read_subclassed(reader, h5file, imported, model) -> dict:
    """Keras layer name -> its arrays from the weights file of a subclassed Keras model, whose
    paths are its attributes' names, which no architecture tells: each of the architecture's
    layers with weights is found by the Keras name its ``vars`` group records (``dense``,
    ``dense_1``: Keras's default names are dlcore's), and read when exactly one group has it,
    with the shapes of the layer; anything else is refused in one line."""
    from dlcore.io.keras import keras_shapes
    recorded = {}   # Keras layer name -> the paths of the vars groups that record it
    groups = []

    def collect(path, item):
        if len(groups) > MAX_OBJECTS:
            return True
        if isinstance(item, h5py.Group) and path.split("/")[-1] == "vars" and path != "vars":
            groups.append(path)
            name = reader.attribute(item, "name", path, default=None)
            if isinstance(name, str) and len(item):
                recorded.setdefault(name, []).append(path)
        return None

    h5file.visititems(collect)
    if len(groups) > MAX_OBJECTS:
        raise reader.error(f"the file holds more than {MAX_OBJECTS} groups", MISMATCH_FIX)
    by_name = {layer.name: layer for layer in model.flat_layers}
    wanted = [name for name in imported.keras_names if name in imported.converters]
    found = ", ".join(f"{path.rsplit('/', 1)[0]} ({name})" for name, paths in recorded.items()
                      for path in paths)[:200] or "none"
    fix = ("name the architecture's layers as Keras named the subclassed model's (its "
           "weights are found by those names), or save the Keras model with "
           "model.save('m.keras') from a Sequential or functional model")
    missing = [name for name in wanted if len(recorded.get(name, [])) != 1]
    extra = [name for name in recorded if name not in wanted]
    if missing or extra:
        raise reader.error(f"the file holds a subclassed Keras model's weights, stored under "
                           f"its attributes' names: {found}; the architecture's layers with "
                           f"weights are {', '.join(wanted)[:200] or 'none'}", fix)
    arrays_of = {}
    for name in wanted:
        path = recorded[name][0]
        shapes = keras_shapes(by_name[name])
        stored = sorted(reader.names(reader.group(path), path))
        if stored != sorted(str(i) for i in range(len(shapes))):
            raise reader.error(f"layer {name!r} has the arrays {', '.join(stored)[:80]} at "
                               f"'{path}'; the architecture's has {len(shapes)}", fix)
        arrays_of[name] = [reader.read_dataset(f"{path}/{i}", shape)
                           for i, shape in enumerate(shapes)]
    return arrays_of


def _array_count(reader, path):
    group = reader.group(path, required=False)
    return 0 if group is None else len(group)


def write(h5file, exported, config=None, same_as=None) -> None:
    """Keras 3's weights layout of an exported model (:class:`dlcore.io.keras._Exported`):
    what ``keras.Model.load_weights("m.weights.h5")`` reads into the same architecture.

    ``config``: the Keras config whose layout to write instead of the export's, with
    ``same_as`` (:func:`dlcore.io.keras.shared_across_nesting`): a model imported from a Keras
    model that shares a layer across its nesting, which the export writes flat while Keras's
    own model of it is nested. Such a layer's arrays are written once, at the first of its
    places, as Keras writes them."""
    same_as, written = same_as or {}, set()
    for name, path in layer_paths(config or exported.model_config()):
        name = same_as.get(name, name)
        if name in written:
            continue
        written.add(name)
        group = h5file.create_group(path)
        group.attrs["name"] = name
        for index, array in enumerate(exported.weights.get(name, [])):
            group.create_dataset(str(index), data=np.ascontiguousarray(
                array, dtype=exported.float_type))
    h5file.create_group("vars").attrs["name"] = exported.name
