"""tf.keras 2's LocallyConnected2D (Keras 3 removed it) in tf.keras 2's legacy .h5 files and
JSON configs: imported as dlcore's LocallyConnected2D, its kernel read in the layout of the
file's ``implementation`` (1, 2 or 3: tf.keras 2 stores the kernel differently in each).

Oracle: tf.keras 2.x's own computation of each implementation written out in NumPy from its
source (keras/layers/locally_connected/locally_connected_utils.py and keras/utils/conv_utils.py
at the 2.x tags): implementation 1 multiplies each output position's (k_h, k_w, C) patch by its
(k_h k_w C, F) matrix (``local_conv``); 2 multiplies the flat input by the masked
(H W C, H' W' F) kernel (``local_conv_matmul``, the mask from ``conv_connected_inputs``); 3
by the sparse (H' W' F, H W C) matrix whose values are listed at the sorted
``conv_kernel_idxs`` pairs (``local_conv_sparse_matmul``). Each test writes a file as tf.keras
2.15 writes one (``model_config``, ``model_weights/<layer>/<layer>/kernel:0``) with random
arrays and checks dlcore's predictions against that computation.
"""
import itertools
import json

import h5py
import numpy as np
import pytest

import dlcore


def _connected(size, kernel, stride, padding, position):
    """tf.keras 2's ``conv_connected_inputs`` along one axis."""
    left = kernel // 2
    centre = position * stride + (left if padding == "valid" else 0)
    return range(max(0, centre - left), min(size, centre - left + kernel))


def _output_size(size, kernel, stride, padding):
    length = size if padding == "same" else size - kernel + 1
    return (length + stride - 1) // stride


def _tf_keras_2(x, kernel, bias, kernel_size, stride, padding, implementation):
    """tf.keras 2's LocallyConnected2D on NHWC ``x`` (no activation)."""
    n, height, width, channels = x.shape
    (kh, kw), s = kernel_size, stride
    rows, columns = (_output_size(height, kh, s, padding), _output_size(width, kw, s, padding))
    filters = bias.shape[-1]
    if implementation == 1:
        out = np.zeros((n, rows, columns, filters))
        for y, col in itertools.product(range(rows), range(columns)):
            patch = x[:, y * s:y * s + kh, col * s:col * s + kw, :].reshape(n, -1)
            out[:, y, col] = patch @ kernel[y * columns + col]
    elif implementation == 2:
        mask = np.zeros((height, width, 1, rows, columns, 1))
        for y, col in itertools.product(range(rows), range(columns)):
            for iy, ix in itertools.product(_connected(height, kh, s, padding, y),
                                            _connected(width, kw, s, padding, col)):
                mask[iy, ix, 0, y, col, 0] = 1
        out = x.reshape(n, -1) @ (kernel * mask).reshape(height * width * channels, -1)
    else:
        pairs = sorted(
            (np.ravel_multi_index((y, col, f), (rows, columns, filters)),
             np.ravel_multi_index((iy, ix, c), (height, width, channels)))
            for y, col in itertools.product(range(rows), range(columns))
            for iy, ix in itertools.product(_connected(height, kh, s, padding, y),
                                            _connected(width, kw, s, padding, col))
            for c in range(channels) for f in range(filters))
        matrix = np.zeros((rows * columns * filters, height * width * channels))
        for value, (o, i) in zip(kernel, pairs):
            matrix[o, i] = value
        out = (matrix @ x.reshape(n, -1).T).T
    return out.reshape(n, rows, columns, filters) + bias


def _kernel_shape(height, width, channels, kernel_size, stride, padding, filters,
                  implementation):
    (kh, kw), s = kernel_size, stride
    rows, columns = (_output_size(height, kh, s, padding), _output_size(width, kw, s, padding))
    if implementation == 1:
        return (rows * columns, kh * kw * channels, filters), (rows, columns, filters)
    if implementation == 2:
        return (height, width, channels, rows, columns, filters), (rows, columns, filters)
    cells = sum(len(_connected(height, kh, s, padding, y)) for y in range(rows)) * \
        sum(len(_connected(width, kw, s, padding, col)) for col in range(columns))
    return (cells * channels * filters,), (rows, columns, filters)


def _tf_keras_2_file(path, layer_config, kernel, bias, input_shape):
    """A legacy .h5 file as tf.keras 2.15 writes a Sequential of one LocallyConnected2D."""
    config = {"class_name": "Sequential", "config": {"name": "sequential", "layers": [
        {"class_name": "InputLayer", "config": {
            "batch_input_shape": [None, *input_shape], "dtype": "float32", "sparse": False,
            "ragged": False, "name": "input_1"}},
        {"class_name": "LocallyConnected2D", "config": {
            "name": "locally_connected2d", "trainable": True, "dtype": "float32",
            "data_format": "channels_last", "activation": "linear", "use_bias": True,
            **layer_config}}]}}
    with h5py.File(path, "w") as h5file:
        h5file.attrs["model_config"] = json.dumps(config)
        h5file.attrs["keras_version"] = "2.15.0"
        h5file.attrs["backend"] = "tensorflow"
        weights = h5file.create_group("model_weights")
        weights.attrs["layer_names"] = np.array([b"locally_connected2d"])
        group = weights.create_group("locally_connected2d")
        names = [b"locally_connected2d/kernel:0", b"locally_connected2d/bias:0"]
        group.attrs["weight_names"] = np.array(names)
        group.create_dataset(names[0].decode(), data=kernel)
        group.create_dataset(names[1].decode(), data=bias)


@pytest.mark.parametrize("implementation, kernel_size, stride, padding", [
    (1, (3, 2), 1, "valid"), (1, (2, 2), 2, "valid"),
    (2, (3, 2), 1, "valid"), (2, (3, 3), 2, "same"), (2, (2, 2), 1, "same"),
    (3, (2, 3), 2, "valid"), (3, (3, 3), 1, "same"), (3, (2, 2), 2, "same"),
])
def test_tf_keras_2_locally_connected_imports_with_its_weights_in_place(
        tmp_path, implementation, kernel_size, stride, padding):
    """Each implementation's kernel layout lands on the right positions, filters, channels and
    window cells: dlcore predicts as tf.keras 2 computes (masked weights of implementation 2
    unused), and the layer is dlcore's LocallyConnected2D."""
    generator = np.random.default_rng(implementation)
    height, width, channels, filters = 5, 6, 2, 3
    kernel_shape, bias_shape = _kernel_shape(height, width, channels, kernel_size, stride,
                                             padding, filters, implementation)
    kernel = generator.normal(size=kernel_shape).astype(np.float32)
    bias = generator.normal(size=bias_shape).astype(np.float32)
    path = tmp_path / "tf_keras_2.h5"
    _tf_keras_2_file(path, {"filters": filters, "kernel_size": list(kernel_size),
                            "strides": [stride, stride], "padding": padding,
                            "implementation": implementation},
                     kernel, bias, (height, width, channels))
    model = dlcore.load(path)
    layer = model.layers[0]
    assert type(layer).__name__ == "LocallyConnected2D"
    x = generator.normal(size=(3, height, width, channels)).astype(np.float32)
    expected = _tf_keras_2(x.astype(np.float64), kernel, bias, kernel_size, stride, padding,
                           implementation)
    np.testing.assert_allclose(model.predict(x.transpose(0, 3, 1, 2)),
                               expected.transpose(0, 3, 1, 2), atol=1e-4)


def test_tf_keras_2_locally_connected_arrays_of_another_implementation_are_refused(tmp_path):
    """An implementation 2 kernel in a file whose config says implementation 1 is refused in
    one line naming the layer's shapes, not read into the wrong places."""
    kernel_shape, bias_shape = _kernel_shape(4, 4, 1, (3, 3), 1, "valid", 2, 2)
    path = tmp_path / "mixed.h5"
    _tf_keras_2_file(path, {"filters": 2, "kernel_size": [3, 3], "strides": [1, 1],
                            "padding": "valid", "implementation": 1},
                     np.zeros(kernel_shape, np.float32), np.zeros(bias_shape, np.float32),
                     (4, 4, 1))
    with pytest.raises(dlcore.ModelFileError,
                       match=r"has shape \(4, 4, 1, 2, 2, 2\); expected \(4, 9, 2\)") as caught:
        dlcore.load(path)
    assert "\n" not in str(caught.value)


def test_tf_keras_2_locally_connected_from_json_builds_and_keras_3_export_is_refused(tmp_path):
    """A tf.keras 2 JSON config builds dlcore's layer (fresh weights, tf.keras 2's parameter
    count); writing it to a Keras file is refused in one line (Keras 3 has no such layer)."""
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 6, 6, 2],
                                                "name": "input_1"}},
        {"class_name": "LocallyConnected2D", "config": {
            "name": "local", "filters": 3, "kernel_size": [3, 3], "strides": [1, 1],
            "padding": "valid", "data_format": "channels_last", "implementation": 2}}]}}
    model = dlcore.models.model_from_json(json.dumps(config))
    assert model.count_params() == 4 * 4 * (3 * 3 * 2 + 1) * 3    # the slides' count
    with pytest.raises(ValueError, match="Keras 3 removed LocallyConnected2D") as caught:
        model.save(tmp_path / "local.keras")
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "local.keras").exists()


def test_tf_keras_2_locally_connected_implementation_3_loads_in_memory_of_its_kernel(tmp_path):
    """Implementation 3's sorted pairs are read in the kernel's own size: dlcore made the whole
    (H' W' F, H W C) matrix and a Python list of the pairs first, 300 times the kernel's bytes
    for 48 x 48 images (6 GB for a 64 x 64 x 3 image's 32 filters)."""
    import tracemalloc
    height = width = 48
    kernel_shape, bias_shape = _kernel_shape(height, width, 1, (3, 3), 1, "valid", 2, 3)
    generator = np.random.default_rng(9)
    kernel = generator.normal(size=kernel_shape).astype(np.float32)
    path = tmp_path / "wide.h5"
    _tf_keras_2_file(path, {"filters": 2, "kernel_size": [3, 3], "strides": [1, 1],
                            "padding": "valid", "implementation": 3},
                     kernel, generator.normal(size=bias_shape).astype(np.float32),
                     (height, width, 1))
    tracemalloc.start()
    try:
        model = dlcore.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 40 * kernel.nbytes
    # each value in a cell of its own (where: the tests above, on small images)
    loaded = model.layers[0].get_weights()[0]
    assert np.count_nonzero(loaded) == kernel.size
    np.testing.assert_allclose(np.sort(loaded[loaded != 0]), np.sort(kernel), rtol=1e-6)


@pytest.mark.parametrize("kernel_size, stride", [((3, 3), 1), ((2, 3), 2)])
def test_tf_keras_2_locally_connected_same_counts_its_parameters_as_tf_keras_2(
        tmp_path, kernel_size, stride):
    """With padding 'same' tf.keras 2 (implementation 3) keeps a weight only where a field
    reads an input pixel: its count_params is its kernel's size and bias's, 1,089 for 5x5x2
    images, 3 filters of 3x3. dlcore's kernel keeps a (zero) place for the cells in the
    padding, and its count_params and summary counted them (1,425): they count as tf.keras
    2's now."""
    height, width, channels, filters = 5, 5, 2, 3
    kernel_shape, bias_shape = _kernel_shape(height, width, channels, kernel_size, stride,
                                             "same", filters, 3)
    path = tmp_path / "same.h5"
    _tf_keras_2_file(path, {"filters": filters, "kernel_size": list(kernel_size),
                            "strides": [stride, stride], "padding": "same",
                            "implementation": 3},
                     np.ones(kernel_shape, np.float32), np.ones(bias_shape, np.float32),
                     (height, width, channels))
    model = dlcore.load(path)
    expected = int(np.prod(kernel_shape)) + int(np.prod(bias_shape))
    assert model.count_params() == expected
    assert model.summary(print_fn=None).total_params == expected
    if kernel_size == (3, 3):
        assert expected == 1089


@pytest.mark.parametrize("implementation, padding", [(1, "valid"), (3, "same")])
def test_a_tf_keras_2_functional_model_with_locally_connected_loads(
        tmp_path, implementation, padding):
    """tf.keras 2's functional models (``model.save("m.h5")`` of tf.keras 2.x) list each call
    as Keras 2's ``[[layer, node, tensor, kwargs]]``: a LocallyConnected2D under a Dense there
    loads and predicts as tf.keras 2 computes. Such files were refused ("its inbound_nodes are
    not Keras 3's"), Keras 3 itself reading them."""
    generator = np.random.default_rng(20 + implementation)
    height, width, channels, filters, kernel_size = 5, 5, 2, 3, (3, 3)
    kernel_shape, bias_shape = _kernel_shape(height, width, channels, kernel_size, 1, padding,
                                             filters, implementation)
    kernel = generator.normal(size=kernel_shape).astype(np.float32)
    bias = generator.normal(size=bias_shape).astype(np.float32)
    dense = generator.normal(size=(int(np.prod(bias_shape)), 2)).astype(np.float32)

    def node(source):
        return [[[source, 0, 0, {}]]]

    config = {"class_name": "Functional", "config": {"name": "model", "layers": [
        {"class_name": "InputLayer", "name": "input_1", "inbound_nodes": [], "config": {
            "batch_input_shape": [None, height, width, channels], "name": "input_1"}},
        {"class_name": "LocallyConnected2D", "name": "local", "inbound_nodes": node("input_1"),
         "config": {"name": "local", "filters": filters, "kernel_size": list(kernel_size),
                    "strides": [1, 1], "padding": padding, "data_format": "channels_last",
                    "activation": "linear", "use_bias": True,
                    "implementation": implementation}},
        {"class_name": "Flatten", "name": "flatten", "inbound_nodes": node("local"),
         "config": {"name": "flatten", "data_format": "channels_last"}},
        {"class_name": "Dense", "name": "dense", "inbound_nodes": node("flatten"),
         "config": {"name": "dense", "units": 2, "activation": "linear", "use_bias": False}}],
        "input_layers": [["input_1", 0, 0]], "output_layers": [["dense", 0, 0]]}}
    path = tmp_path / "functional.h5"
    with h5py.File(path, "w") as h5file:
        h5file.attrs["model_config"] = json.dumps(config)
        h5file.attrs["keras_version"] = "2.15.0"
        h5file.attrs["backend"] = "tensorflow"
        weights = h5file.create_group("model_weights")
        weights.attrs["layer_names"] = np.array([b"input_1", b"local", b"flatten", b"dense"])
        for name, arrays in (("input_1", {}), ("flatten", {}),
                             ("local", {"kernel:0": kernel, "bias:0": bias}),
                             ("dense", {"kernel:0": dense})):
            group = weights.create_group(name)
            group.attrs["weight_names"] = np.array([f"{name}/{array}".encode()
                                                    for array in arrays])
            for array, value in arrays.items():
                group.create_dataset(f"{name}/{array}", data=value)
    model = dlcore.load(path)
    assert [type(layer).__name__ for layer in model.layers] == \
        ["LocallyConnected2D", "Flatten", "Dense"]
    x = generator.normal(size=(3, height, width, channels)).astype(np.float32)
    local = _tf_keras_2(x.astype(np.float64), kernel, bias, kernel_size, 1, padding,
                        implementation)
    np.testing.assert_allclose(model.predict(x.transpose(0, 3, 1, 2)),
                               local.reshape(3, -1) @ dense, atol=1e-4)
