"""Functional models (lecture "Deep learning I", "Defining a functional model", shared layers,
the siamese tell-digits-apart model; lecture "Convolutional Neural Networks" (2019), residual
connections): Input, Model, add, concatenate, shared layers and models used as layers."""
import numpy as np
import pytest

import dlcore
from dlcore.layers import (
    Add,
    Concatenate,
    Conv2D,
    Dense,
    Flatten,
    MaxPool2D,
    add,
    concatenate,
    merge,
)
from test_io_keras import real_keras

TOLERANCE = 1e-6
#: Keras's merge functions (``add``, ``concatenate``, ...) as dlcore.layers exports them: its
#: export list is the one source, so that a merge added there is checked here too
MERGE_FUNCTIONS = {name: getattr(dlcore.layers, name) for name in dlcore.layers.__all__
                   if getattr(merge, name, None) is getattr(dlcore.layers, name)
                   and name.islower()}
# the merges that broadcast as Keras's element-wise ones do: told by their layer's class, so
# a merge added to the package (Dot: rows only) is not taken for one by its absence here
ELEMENTWISE_MERGES = {
    name: function for name, function in MERGE_FUNCTIONS.items()
    if issubclass(getattr(dlcore.layers, name.capitalize()), merge.ElementwiseMerge)}


def _images(n=4, shape=(1, 6, 6), seed=0):
    return np.random.default_rng(seed).random((n,) + shape).astype(np.float32)


def _residual_model(backend="reference", seed=0):
    inputs = dlcore.Input(shape=(1, 6, 6))
    x = Conv2D(3, 3, padding="same", activation="tanh")(inputs)
    y = Conv2D(3, 3, padding="same")(x)
    z = add([x, y])
    out = Dense(3, activation="softmax")(Flatten()(z))
    return dlcore.Model(inputs=inputs, outputs=out, backend=backend, seed=seed)


def _siamese(backend="reference"):
    """The lecture's model: one vision model applied to two digits, whose features are joined
    and classified ("are these the same digit?")."""
    digit_input = dlcore.Input(shape=(1, 6, 6))
    x = Conv2D(4, 3, activation="tanh")(digit_input)
    x = Conv2D(4, 3, activation="tanh")(x)
    x = MaxPool2D(2)(x)
    features = Flatten()(x)
    vision_model = dlcore.Model(digit_input, features, backend=backend)
    digit_a = dlcore.Input(shape=(1, 6, 6))
    digit_b = dlcore.Input(shape=(1, 6, 6))
    joined = concatenate([vision_model(digit_a), vision_model(digit_b)])
    out = Dense(1, activation="sigmoid")(joined)
    return dlcore.Model([digit_a, digit_b], out, backend=backend), vision_model


# -- the merge layers ---------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_add_and_concatenate_against_numpy(backend):
    rng = np.random.default_rng(1)
    a, b = rng.random((2, 3, 4, 4)), rng.random((2, 3, 4, 4))
    c = rng.random((2, 5, 4, 4))
    layer = Add()
    layer.build([(3, 4, 4), (3, 4, 4)], backend=backend)
    np.testing.assert_allclose(layer([a, b]), a + b, rtol=1e-6)
    join = Concatenate()
    join.build([(3, 4, 4), (5, 4, 4)], backend=backend)
    np.testing.assert_allclose(join([a, c]), np.concatenate([a, c], axis=1), rtol=1e-6)
    grad = join.backward(join.backend.asarray(np.arange(2 * 8 * 16, dtype=np.float32)
                                              .reshape(2, 8, 4, 4)))
    full = np.arange(2 * 8 * 16, dtype=np.float32).reshape(2, 8, 4, 4)
    np.testing.assert_array_equal(grad[0], full[:, :3])
    np.testing.assert_array_equal(grad[1], full[:, 3:])
    last = Concatenate(axis=-1)
    np.testing.assert_allclose(last([a, b]), np.concatenate([a, b], axis=-1), rtol=1e-6)


def test_every_merge_layer_is_exported_with_its_keras_function():
    # Keras has a function for each merge layer (Add and add, ...): so has dlcore.layers
    layers = {name for name in dlcore.layers.__all__
              if isinstance(getattr(dlcore.layers, name), type)
              and issubclass(getattr(dlcore.layers, name), merge.Merge)}
    assert {name.lower() for name in layers} == set(MERGE_FUNCTIONS)
    for name, function in MERGE_FUNCTIONS.items():
        inputs = [dlcore.Input(shape=(3,)), dlcore.Input(shape=(3,))]
        assert type(function(inputs).node.layer).__name__.lower() == name


@pytest.mark.parametrize("merge_function", MERGE_FUNCTIONS.values(), ids=MERGE_FUNCTIONS)
def test_merge_gradcheck(merge_function):
    inputs = dlcore.Input(shape=(4,))
    x = Dense(3, activation="tanh")(inputs)
    y = Dense(3, activation="sigmoid")(inputs)
    out = Dense(2, activation="softmax")(merge_function([x, y]))
    model = dlcore.Model(inputs, out, backend="reference")
    model.compile("cross_entropy", "sgd")
    errors = dlcore.gradcheck(model, np.random.default_rng(2).random((3, 4)), [0, 1, 1],
                              verbose=False)
    assert max(errors.values()) < TOLERANCE, errors


@pytest.mark.parametrize("merge_function", ELEMENTWISE_MERGES.values(),
                         ids=ELEMENTWISE_MERGES)
def test_a_merge_that_broadcasts_a_gate_over_maps_gradchecks(merge_function):
    """A squeeze-and-excitation block (Keras's ``Multiply()([x, Reshape((1, 1, C))(gate)])``):
    (C, H, W) maps merged with a (C, 1, 1) gate; the gate's gradient is summed over the
    pixels it scaled. Was refused ("needs tensors of one shape")."""
    from dlcore.layers import GlobalAveragePooling2D, Reshape
    inputs = dlcore.Input(shape=(1, 4, 4))
    maps = Conv2D(2, 3, padding="same", activation="tanh")(inputs)
    gate = Dense(2, activation="sigmoid")(GlobalAveragePooling2D()(maps))
    merged = merge_function([maps, Reshape((2, 1, 1))(gate)])
    model = dlcore.Model(inputs, Dense(3, activation="softmax")(Flatten()(merged)),
                         backend="reference")
    model.compile("cross_entropy", "sgd")
    errors = dlcore.gradcheck(model, _images(3, (1, 4, 4)).astype(np.float64), [0, 1, 2],
                              verbose=False)
    assert {"dense/kernel", "input"} <= set(errors)
    assert max(errors.values()) < TOLERANCE, errors


def test_a_model_with_an_input_its_output_does_not_read_gradchecks():
    """Keras builds a model one of whose inputs no output reads; its input gradient (asked by
    gradcheck) is 0 there. The backward pass raised a bare KeyError."""
    used, unused = dlcore.Input((3,), name="used"), dlcore.Input((2,), name="unused")
    model = dlcore.Model([used, unused], Dense(2, activation="softmax")(used),
                         backend="reference")
    model.compile("cross_entropy", "sgd")
    x = [np.random.default_rng(3).random((3, 3)), np.random.default_rng(4).random((3, 2))]
    errors = dlcore.gradcheck(model, x, [0, 1, 1], verbose=False)
    assert "input" in errors and max(errors.values()) < TOLERANCE, errors


# -- whole graphs against finite differences ------------------------------------------------
def test_residual_net_gradcheck():
    model = _residual_model()
    model.compile("cross_entropy", "sgd")
    errors = dlcore.gradcheck(model, _images(3).astype(np.float64), [0, 1, 2], verbose=False)
    assert set(errors) == {"conv2d/kernel", "conv2d/bias", "conv2d_1/kernel", "conv2d_1/bias",
                           "dense/kernel", "dense/bias", "input"}
    assert max(errors.values()) < TOLERANCE, errors


def test_siamese_model_gradcheck_with_a_shared_vision_model():
    model, vision = _siamese()
    # the vision model is one layer (Keras's model.layers); its two convolutions run once
    # each in the whole model's layers: shared, weights and all
    assert [layer.name for layer in model.layers] == [vision.name, "concatenate", "dense"]
    assert [layer.name for layer in model.flat_layers].count("conv2d") == 1
    assert len(model.nodes) == 2 * len(vision.nodes) + 2
    model.compile("binary_cross_entropy", "sgd")
    x = [_images(3, seed=3).astype(np.float64), _images(3, seed=4).astype(np.float64)]
    errors = dlcore.gradcheck(model, x, [0, 1, 1], verbose=False)
    assert max(errors.values()) < TOLERANCE, errors


def test_shared_layer_gradients_accumulate_over_its_uses():
    inputs = dlcore.Input(shape=(3,))
    shared = Dense(3, activation="linear", use_bias=False)
    out = shared(shared(inputs))   # y = x W W
    model = dlcore.Model(inputs, out, backend="reference")
    model.compile("mse", "sgd")
    w = np.random.default_rng(5).random((3, 3))
    model.set_weights([w])
    x = np.random.default_rng(6).random((4, 3))
    y = np.random.default_rng(7).random((4, 3))
    model.loss_and_gradient(x, y)
    # finite differences of the same cost agree with the sum of both uses' gradients
    errors = dlcore.gradcheck(model, x, y, verbose=False)
    assert errors["dense/kernel"] < TOLERANCE
    # and the gradient is not that of either use alone
    grad = np.array(model.layers[0].grads["kernel"])
    outer_only = (x @ w).T @ (x @ w @ w - y)
    assert not np.allclose(grad / np.abs(grad).max(),
                           outer_only / np.abs(outer_only).max())


def _dense_called(times, units=4, backend="reference", bias=True):
    """One Dense layer called ``times`` times in a chain: y = f(... f(x W + b) ... W + b)."""
    inputs = dlcore.Input(shape=(units,))
    shared = Dense(units, activation="tanh", use_bias=bias)
    x = inputs
    for _ in range(times):
        x = shared(x)
    return dlcore.Model(inputs, x, backend=backend, seed=3)


def _gradient_buffers(model):
    """The distinct arrays (by the allocation they view) that the model's calls write
    gradients into."""
    roots = {}
    for runner in model._runners:
        for grad in runner.grads.values():
            root = grad if grad.base is None else grad.base
            roots[id(root)] = root
    return list(roots.values())


def test_a_layer_called_five_times_keeps_one_gradient_set_not_one_per_call():
    """Memory per shared layer does not grow with its calls: the five calls of one Dense write
    their gradients into the layer's own set and one scratch set, as two calls do (a gradient
    set per call would make 5 allocations of the kernel's size, not 2)."""
    five, two = _dense_called(5), _dense_called(2)
    kernel_and_bias = sum(w.nbytes for w in five.get_weights())
    for model in (five, two):
        buffers = _gradient_buffers(model)
        assert len(model.parameters) == 2   # kernel, bias: the layer once
        assert sum(b.nbytes for b in buffers) == 2 * kernel_and_bias, len(buffers)
    assert len(_gradient_buffers(five)) == len(_gradient_buffers(two))
    # and the parameters stay one set: every call reads the same arrays
    kernels = {id(runner.params["kernel"]) for runner in five._runners}
    assert kernels == {id(five.layers[0].params["kernel"])}


def test_the_memory_of_building_a_shared_layer_does_not_grow_with_its_calls():
    """Black box (tracemalloc sees NumPy's allocations): building a model that calls a
    128 x 128 Dense 12 times allocates less than one more gradient set than calling it twice."""
    import tracemalloc

    def build_cost(times):
        inputs = dlcore.Input(shape=(128,))
        shared = Dense(128, use_bias=False)
        x = inputs
        for _ in range(times):
            x = shared(x)
        tracemalloc.start()
        dlcore.Model(inputs, x, backend="reference")
        cost = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return cost

    one_set = 128 * 128 * 4
    assert build_cost(12) - build_cost(2) < one_set


@pytest.mark.parametrize("backend", ["reference", "cpu"])
@pytest.mark.parametrize("bias", [True, False])
def test_a_layer_called_five_times_gets_the_sum_of_its_gradients(backend, bias):
    """Finite differences on the reference backend (float64), and the cpu kernels (the calls
    writing through the scratch set) against the reference."""
    x = np.random.default_rng(8).standard_normal((6, 4))
    y = np.random.default_rng(9).standard_normal((6, 4))
    model = _dense_called(5, backend=backend, bias=bias)
    model.compile("mse", "sgd")
    if backend == "reference":
        errors = dlcore.gradcheck(model, x, y, verbose=False)
        assert max(errors.values()) < TOLERANCE, errors
        return
    expected = _dense_called(5, bias=bias)
    expected.compile("mse", "sgd")
    for _ in range(2):   # a second pass must not add to the first one's gradients
        loss = model.loss_and_gradient(x.astype(np.float32), y)
        reference_loss = expected.loss_and_gradient(x.astype(np.float32), y)
    assert loss == pytest.approx(reference_loss, rel=1e-5)
    for got, want in zip(model.parameters, expected.parameters):
        np.testing.assert_allclose(model.backend.to_numpy(got.grad), want.grad, rtol=1e-4,
                                   atol=1e-6)


# -- the same network as a Sequential --------------------------------------------------------
@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_functional_model_equals_the_same_sequential(backend):
    layers = [Conv2D(3, 3, activation="relu"), MaxPool2D(2), Flatten(),
              Dense(3, activation="softmax")]
    sequential = dlcore.Sequential(layers, input_shape=(1, 6, 6), backend=backend, seed=3)
    inputs = dlcore.Input(shape=(1, 6, 6))
    x = inputs
    for layer in [Conv2D(3, 3, activation="relu"), MaxPool2D(2), Flatten(),
                  Dense(3, activation="softmax")]:
        x = layer(x)
    model = dlcore.Model(inputs, x, backend=backend)
    model.set_weights(sequential.get_weights())
    assert isinstance(sequential, dlcore.Model)
    data, labels = _images(16, seed=8), np.arange(16) % 3
    np.testing.assert_allclose(model.predict(data), sequential.predict(data), rtol=1e-5,
                               atol=1e-6)
    for network in (sequential, model):
        network.compile("cross_entropy", "adam", ["accuracy"])
    model.seed = sequential.seed
    first = sequential.fit(data, labels, epochs=2, batch_size=4, verbose=0).history
    second = model.fit(data, labels, epochs=2, batch_size=4, verbose=0).history
    np.testing.assert_allclose(second["loss"], first["loss"], rtol=1e-5)
    for a, b in zip(model.get_weights(), sequential.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_fit_with_two_inputs_learns_and_predicts():
    model, _ = _siamese(backend="cpu")
    model.compile("binary_cross_entropy", "adam", ["accuracy"])
    a, b = _images(40, seed=9), _images(40, seed=10)
    labels = (a.mean(axis=(1, 2, 3)) > b.mean(axis=(1, 2, 3))).astype(np.int64)
    history = model.fit([a, b], labels, epochs=8, batch_size=8, verbose=0,
                        validation_split=0.2).history
    assert history["loss"][-1] < history["loss"][0]
    assert model.predict([a, b]).shape == (40, 1)
    loss, accuracy = model.evaluate([a, b], labels)
    assert np.isfinite(loss) and 0 <= accuracy <= 1
    model.train_on_batch([a[:4], b[:4]], labels[:4])


def _two_outputs(backend="reference"):
    inputs = dlcore.Input(shape=(4,))
    hidden = Dense(5, activation="tanh")(inputs)
    first, second = Dense(2)(hidden), Dense(3, activation="softmax")(hidden)
    return dlcore.Model(inputs, [first, second], backend=backend)


def test_several_outputs_predict_a_list_and_train_with_a_loss_per_output():
    model = _two_outputs()
    outputs = model.predict(np.ones((2, 4), np.float32))
    assert [o.shape for o in outputs] == [(2, 2), (2, 3)]
    with pytest.raises(ValueError, match="one per output"):
        model.compile(["mse"] * 3, "sgd")
    model.compile(["mse", "cross_entropy"], "sgd")
    x = np.random.default_rng(17).random((3, 4))
    targets = [np.random.default_rng(18).random((3, 2)), [0, 2, 1]]
    errors = dlcore.gradcheck(model, x, targets, verbose=False)
    assert max(errors.values()) < TOLERANCE, errors
    # the cost is the sum of the two losses
    total = model.loss_and_gradient(x, targets)
    single = []
    for index, loss in enumerate(["mse", "cross_entropy"]):
        branch = dlcore.Model(model.inputs[0], model.outputs[index], backend="reference")
        branch.compile(loss, "sgd")
        single.append(branch.loss_and_gradient(x, targets[index]))
    assert total == pytest.approx(sum(single), rel=1e-6)


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_several_outputs_fit_evaluate_save_and_load(backend, tmp_path):
    model = _two_outputs(backend)
    model.compile(["mse", "cross_entropy"], "adam", ["accuracy"])
    x = np.random.default_rng(19).random((12, 4)).astype(np.float32)
    y = [np.random.default_rng(20).random((12, 2)), np.arange(12) % 3]
    history = model.fit(x, y, epochs=5, batch_size=4, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]
    scores = model.evaluate(x, y)   # Keras's: the total, then each output's own loss
    assert scores.names == ("loss", "dense_1_loss", "dense_2_loss", "dense_1_accuracy",
                            "dense_2_accuracy")      # Keras's names and order
    assert scores["loss"] == pytest.approx(scores["dense_1_loss"] + scores["dense_2_loss"],
                                           rel=1e-6)
    assert history["dense_2_loss"][-1] < history["dense_2_loss"][0]
    dlcore.save(model, tmp_path / "two.h5")
    loaded = dlcore.load(tmp_path / "two.h5")
    for a, b in zip(loaded.predict(x), model.predict(x)):
        np.testing.assert_array_equal(a, b)
    assert [loss.name for loss in loaded.losses] == [loss.name for loss in model.losses]


def test_summary_shows_each_layers_inputs():
    model = _residual_model()
    text = []
    summary = model.summary(print_fn=text.append)
    assert "Inputs" in text[0]
    assert any("add (Add)" in line and "conv2d, conv2d_1" in line for line in text[0].split("\n"))
    assert summary.total_params == model.count_params()


def test_the_summary_row_of_a_named_input_has_the_name_the_layers_rows_give_it():
    """Before, a model's one input was the row "input" whatever its name, while the row of the
    layer taking it named it ("pixels"), as no row did."""
    inputs = dlcore.Input((3,), name="pixels")
    model = dlcore.Model(inputs, Dense(2, name="scores")(inputs))
    lines = str(model.summary(print_fn=None)).split("\n")
    assert any(line.startswith("pixels (Input)") for line in lines), lines
    assert any(line.startswith("scores (Dense)") and line.endswith("pixels") for line in lines)
    unnamed = dlcore.Input((3,))
    lines = str(dlcore.Model(unnamed, Dense(2)(unnamed)).summary(print_fn=None)).split("\n")
    assert any(line.startswith("input ") for line in lines)
    assert any(line.startswith("dense (Dense)") and line.endswith(" input") for line in lines)


def test_get_layer_of_an_input_name_says_it_is_an_input_tensor_not_a_layer():
    """Keras's ``get_layer("pixels")`` finds the InputLayer; dlcore has none, and said only
    "no layer named 'pixels'" of the name its summary shows."""
    inputs = dlcore.Input((3,), name="pixels")
    model = dlcore.Model(inputs, Dense(2, name="scores")(inputs))
    with pytest.raises(ValueError, match=r"^'pixels' is the model's input model\.inputs\[0\] "
                                         r"\(a tensor: dlcore has no InputLayer\); the layers "
                                         r"are: scores$"):
        model.get_layer("pixels")
    with pytest.raises(ValueError, match=r"^no layer named 'pixel'; the layers are: scores$"):
        model.get_layer("pixel")


def test_input_takes_kerass_keyword_arguments():
    """``keras.Input(shape=(4,), dtype="float32")`` or ``Input(batch_shape=(None, 4))``, as
    Keras users write them, failed with Python's "Input() got an unexpected keyword argument"."""
    for tensor in (dlcore.Input(shape=(2, 6, 6), dtype="float32", batch_size=8, name="maps"),
                   dlcore.Input(batch_shape=(None, 2, 6, 6), name="maps"),
                   dlcore.Input(batch_shape=[16, 2, 6, 6], sparse=False, name="maps")):
        assert tensor.shape == (2, 6, 6) and tensor.name == "maps"
        model = dlcore.Model(tensor, Dense(3)(dlcore.layers.Flatten()(tensor)),
                             backend="reference")
        assert model.predict(_images(5, (2, 6, 6))).shape == (5, 3)


@pytest.mark.parametrize("arguments, message", [
    ({"shape": (4,), "batch_shape": (None, 4)}, "give Input shape= (per sample) or "
                                                "batch_shape= (with the batch axis first), "
                                                "not both"),
    ({}, "Input needs the per-sample shape=, e.g. Input(shape=(784,))"),
    ({"batch_shape": (4,)}, "Input batch_shape must be (batch size or None, then the "
                            "per-sample shape), e.g. (None, 784); got (4,)"),
    ({"shape": (4,), "batch_size": 0}, "Input batch_size must be a positive integer or None"),
    ({"shape": (4,), "dtype": "float64"}, "Input dtype='float64': a dlcore model computes in "
                                          "its layers' dtype"),
    ({"shape": (4,), "dtype": "int32"}, "dtype='int32': dlcore computes in float32 or float64"),
    ({"shape": (4,), "sparse": True}, "Input sparse= is Keras's, which dlcore does not have"),
    ({"shape": (4,), "optional": True}, "Input optional= is Keras's"),
])
def test_input_refuses_what_it_cannot_honour_in_one_line(arguments, message):
    with pytest.raises(ValueError) as caught:
        dlcore.Input(**arguments)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


@pytest.mark.slow   # Keras's import (PyTorch's) takes seconds
def test_a_keras_tensor_given_to_a_dlcore_layer_or_model_is_refused_in_one_line():
    """Keras's ``keras.Input`` given to a dlcore layer (a Keras user mixing the two APIs) ended
    in Keras's "A KerasTensor is symbolic ... You cannot convert it to a NumPy array"."""
    keras = real_keras()
    inputs = dlcore.Input((4,))
    model = dlcore.Model(inputs, Dense(2)(inputs), backend="reference")
    for call, what in ((lambda: Dense(2, name="head")(keras.Input((4,))), "layer 'head'"),
                       (lambda: dlcore.layers.concatenate([keras.Input((4,))] * 2),
                        "layer 'Concatenate'"),
                       (lambda: model(keras.Input((4,))), "model 'model'")):
        with pytest.raises(TypeError, match=rf"^{what} was called on a Keras tensor \(keras\."
                                            rf"Input or a Keras layer's output\): dlcore's "
                                            rf"layers and models take dlcore\.Input tensors or "
                                            rf"arrays; [^\n]*dlcore\.load the file it saves$"):
            call()


def test_clone_and_config_round_trip():
    model, _ = _siamese()
    model.compile("binary_cross_entropy", "sgd")
    twin = model.clone()
    x = [_images(2, seed=11), _images(2, seed=12)]
    np.testing.assert_allclose(twin.predict(x), model.predict(x), rtol=1e-6)
    assert twin.get_config() == model.get_config()


# -- errors in one line ----------------------------------------------------------------------
def test_errors_are_one_clear_line():
    a = dlcore.Input(shape=(4,))
    b = dlcore.Input(shape=(4,))
    out = Dense(2)(add([a, b]))
    with pytest.raises(ValueError, match="not connected to the model's inputs") as error:
        dlcore.Model(a, out)
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="add needs tensors of one shape"):
        add([a, dlcore.Input(shape=(5,))])
    hidden = Dense(3)(a)
    with pytest.raises(ValueError, match="must be tensors of dlcore.Input"):
        dlcore.Model(hidden, Dense(2)(hidden))
    with pytest.raises(TypeError, match="symbolic tensor"):
        dlcore.Model(np.zeros(3), out)
    shared = Dense(2)
    shared(a)
    with pytest.raises(ValueError, match="shared layer needs the same shape"):
        shared(dlcore.Input(shape=(6,)))
    with pytest.raises(ValueError, match="Flatten"):
        Dense(2)(dlcore.Input(shape=(2, 1, 4, 4)))
    model = dlcore.Model([a, b], out)
    with pytest.raises(ValueError, match="list of 2 arrays"):
        model.predict([np.zeros((2, 4), np.float32)] * 3)


# -- files -----------------------------------------------------------------------------------
def _model_of_dict_inputs_and_outputs():
    """keras.io's functional API guide's model: named inputs and outputs, as dicts."""
    title, body = dlcore.Input((6,), name="title"), dlcore.Input((5,), name="body")
    joined = concatenate([title, body])
    return dlcore.Model(inputs={"title": title, "body": body},
                        outputs={"score": Dense(1, name="priority")(joined),
                                 "group": Dense(3, activation="softmax",
                                                name="department")(joined)},
                        backend="reference")


def test_a_model_of_dict_outputs_called_on_tensors_gives_a_dict_of_tensors(tmp_path):
    """Keras's ``Model(inputs={...}, outputs={"score": ..., "group": ...})``, then
    ``inner({"title": t, "body": b})`` inside another model: Keras gives a dict of tensors by
    the output keys. dlcore refused dicts in Model (TypeError), a dict of tensors in the call
    (read as arrays), and gave a list. Now dicts, through dlcore's file, pickle and clone."""
    import pickle
    inner = _model_of_dict_inputs_and_outputs()
    rows = np.random.default_rng(4)
    x = {"title": rows.random((3, 6), np.float32), "body": rows.random((3, 5), np.float32)}
    assert sorted(inner.predict(x)) == ["group", "score"]
    title, body = dlcore.Input((6,)), dlcore.Input((5,))
    got = inner({"body": body, "title": title})
    assert sorted(got) == ["group", "score"] and got["score"].shape == (1,)
    outer = dlcore.Model([title, body], {"s": got["score"], "g": Dense(2)(got["group"])},
                         backend="reference")
    expected = outer.predict([x["title"], x["body"]])
    assert sorted(expected) == ["g", "s"]
    np.testing.assert_allclose(expected["s"], inner.predict(x)["score"], rtol=1e-6)
    dlcore.save(outer, tmp_path / "outer.h5")
    for name, copy in [("file", dlcore.load(tmp_path / "outer.h5")),
                       ("pickle", pickle.loads(pickle.dumps(outer))), ("clone", outer.clone())]:
        nested = copy.get_layer(inner.name)
        again = nested({"title": dlcore.Input((6,)), "body": dlcore.Input((5,))})
        assert sorted(again) == ["group", "score"], name
        predicted = copy.predict([x["title"], x["body"]])
        for key in ("g", "s"):
            np.testing.assert_allclose(predicted[key], expected[key], rtol=1e-6, err_msg=name)


def test_two_copies_of_one_file_side_by_side_are_refused_in_one_line_naming_the_fix(
        tmp_path):
    """Two copies of one loaded Keras file called side by side: Keras refuses their one
    model name ("The name 'functional' is used 2 times"), and with one copy renamed takes
    them (it names layers per model). dlcore refused both ways with "layer name 'dense_1'
    is used by two layers of this model: give one of them another name=", which a loaded
    model has no place for. Now one line each says which models clash and the renaming
    that works, and does."""
    inputs = dlcore.Input((4,))
    base = dlcore.Model(inputs, Dense(2)(Dense(3)(inputs)), backend="reference",
                        name="functional")
    base.save(tmp_path / "base.keras")
    first, copy = (dlcore.load(tmp_path / "base.keras") for _ in range(2))
    x = dlcore.Input((4,))
    with pytest.raises(ValueError, match=r"^two different models called here are both named "
                                         r"'functional' \(two copies of one file\?\), which "
                                         r"Keras refuses too .*: rename one copy and its "
                                         r"layers .*copy.name = 'functional_copy'; "):
        dlcore.Model(x, add([first(x), copy(x)]))
    copy.name = "functional_copy"
    with pytest.raises(ValueError, match=r"^layer name 'dense(_1)?' is held by different "
                                         r"layers of the models 'functional' and "
                                         r"'functional_copy' called here .*: rename the "
                                         r"layers of one before calling it: for layer in "):
        dlcore.Model(x, add([first(x), copy(x)]))
    for layer in copy.flat_layers:
        layer.name = "functional_copy_" + layer.name
    model = dlcore.Model(x, add([first(x), copy(x)]))
    rows = _images(3, (4,))
    np.testing.assert_allclose(model.predict(rows), 2 * first.predict(rows), rtol=1e-6)


def test_a_dict_model_takes_arrays_by_its_keys_where_they_are_other_inputs_names():
    """Keras maps a dict model's arrays by its keys, also where a key is another input's name
    (``Model({"a": Input(name="b"), "b": Input(name="a")}, ...)``: Keras warns, then reads
    x["a"] into the input keyed "a"). dlcore read them by the inputs' names: the two arrays
    swapped silently (12 for Keras's 21), the targets of crossed output keys too."""
    keyed_a, keyed_b = dlcore.Input((1,), name="b"), dlcore.Input((1,), name="a")
    joined = concatenate([keyed_a, dlcore.layers.Rescaling(10.0)(keyed_b)])
    first, second = Dense(1, name="second"), Dense(1, name="first")
    with pytest.warns(UserWarning, match="key 'a' maps to the Input named 'b'"):
        model = dlcore.Model({"a": keyed_a, "b": keyed_b},
                             {"first": first(joined), "second": second(joined)},
                             backend="reference")
    for layer in (first, second):
        layer.set_weights([np.array([[1.0], [1.0]], np.float32), np.zeros(1, np.float32)])
    first.set_weights([np.array([[2.0], [2.0]], np.float32), np.zeros(1, np.float32)])
    x = {"a": np.array([[1.0]], np.float32), "b": np.array([[2.0]], np.float32)}
    predicted = model.predict(x)
    assert predicted["first"][0, 0] == pytest.approx(42.0)   # 2 (1 + 10 * 2), as Keras's
    assert predicted["second"][0, 0] == pytest.approx(21.0)
    model.compile("mse", "sgd")
    assert model.evaluate(x, {"first": np.array([[42.0]]), "second": np.array([[21.0]])},
                          verbose=0)[0] == pytest.approx(0.0, abs=1e-9)


def test_a_dict_model_whose_keys_are_not_its_inputs_names_warns_as_keras():
    """Keras's ``Model`` warns for each key of a dict of inputs that is not its Input's name
    (an unnamed Input included): dlcore said nothing, though the file it exports names the
    inputs otherwise than the dict the user reads by."""
    import warnings
    left, right = dlcore.Input((2,), name="left"), dlcore.Input((2,))
    output = Dense(1)(concatenate([left, right]))
    with pytest.warns(UserWarning) as caught:
        dlcore.Model({"left": left, "right": right}, output, backend="reference")
    assert [str(w.message) for w in caught] == [
        "Model inputs given as a dict: key 'right' maps to an unnamed Input; Keras warns so "
        "too (a dict's keys must be its Inputs' names): name it Input(..., name='right')"]
    assert caught[0].filename == __file__
    with pytest.warns(UserWarning, match="key 'a' maps to the Input named 'left'; "):
        dlcore.Model({"a": left}, Dense(1)(left), backend="reference")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        named = dlcore.Input((2,), name="right")
        dlcore.Model({"left": left, "right": named}, Dense(1)(concatenate([left, named])),
                     backend="reference")


def test_a_dict_of_inputs_holding_another_tensor_is_refused_without_a_false_warning():
    """A dict of inputs whose value is a layer's output, not an Input, is refused in one line;
    it first warned that the key "maps to an unnamed Input", which it does not."""
    import warnings
    image = dlcore.Input((2,), name="image")
    hidden = Dense(3)(image)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match="Model inputs must be tensors of dlcore.Input"):
            dlcore.Model({"hidden": hidden}, Dense(1)(hidden), backend="reference")
    assert [str(w.message) for w in caught if "Input" in str(w.message)] == []


def test_a_dict_models_input_and_output_are_dicts_as_kerass():
    """Keras's ``model.input`` and ``model.output`` of a model of dict inputs and outputs
    are those dicts: ``Model(model.input, model.output["score"])`` takes the score head
    alone. dlcore gave lists ("list indices must be integers")."""
    model = _model_of_dict_inputs_and_outputs()
    assert sorted(model.input) == ["body", "title"]
    assert model.input["title"] is model.inputs[1]
    assert sorted(model.output) == ["group", "score"]
    head = dlcore.Model(model.input, model.output["score"])
    rows = np.random.default_rng(2)
    x = {"title": rows.random((2, 6), np.float32), "body": rows.random((2, 5), np.float32)}
    np.testing.assert_allclose(head.predict(x), model.predict(x)["score"], rtol=1e-6)


def test_save_and_load_a_functional_model_continues_training_exactly(tmp_path):
    model, _ = _siamese()
    model.compile("binary_cross_entropy", "adam", ["accuracy"])
    x, labels = [_images(8, seed=13), _images(8, seed=14)], np.arange(8) % 2
    model.fit(x, labels, epochs=1, batch_size=4, verbose=0)
    dlcore.save(model, tmp_path / "siamese.h5")
    loaded = dlcore.load(tmp_path / "siamese.h5")
    assert type(loaded) is dlcore.Model and loaded.epochs_done == 1
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    first = model.fit(x, labels, epochs=1, batch_size=4, verbose=0).history["loss"]
    second = loaded.fit(x, labels, epochs=1, batch_size=4, verbose=0).history["loss"]
    assert first == second


def _rewrite_graph(path, change):
    import json

    import h5py
    with h5py.File(path, "r+") as h5file:
        config = json.loads(h5file.attrs["hyperparameters"])
        change(config)
        h5file.attrs["hyperparameters"] = json.dumps(config)


def _cycle(config):
    config["nodes"][0]["inputs"] = [len(config["inputs"]) + 1]   # a later node's output


def _self_reference(config):
    config["nodes"][1]["inputs"] = [len(config["inputs"]) + 1]   # its own output


def _dangling(config):
    config["nodes"][-1]["inputs"] = [10**6]


def _layer_out_of_range(config):
    config["nodes"][0]["layer"] = 99


def _huge_fan_out(config):
    config["nodes"] += [{"layer": 0, "inputs": [0]}] * 10**5


def _wide_node(config):
    config["nodes"][-2]["inputs"] = [0] * 10**4


def _unused_layer(config):
    config["layers"].append({"class_name": "Dense", "config": {"units": 2, "name": "spare"}})


def _not_a_list(config):
    config["nodes"] = {"layer": 0}


def _unknown_class(config):
    config["layers"][0]["class_name"] = "Lambda"


def _list_as_class(config):
    config["layers"][0]["class_name"] = [2**40, 2**40]   # found by the model-file fuzzer


@pytest.mark.parametrize("change", [_cycle, _self_reference, _dangling, _layer_out_of_range,
                                    _huge_fan_out, _wide_node, _unused_layer, _not_a_list,
                                    _unknown_class, _list_as_class])
def test_a_hostile_graph_is_refused_in_one_line(tmp_path, change):
    model = _residual_model()
    path = str(tmp_path / "graph.h5")
    dlcore.save(model, path)
    _rewrite_graph(path, change)
    with pytest.raises(dlcore.ModelFileError) as error:
        dlcore.load(path)
    assert "\n" not in str(error.value) and path in str(error.value)


def test_a_functional_model_pickles_and_deep_copies_through_its_state():
    import copy
    import pickle
    model, _ = _siamese()
    model.compile("binary_cross_entropy", "sgd")
    x = [_images(2, seed=15), _images(2, seed=16)]
    for twin in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model)):
        assert twin.layers[0] is not model.layers[0]
        np.testing.assert_array_equal(twin.predict(x), model.predict(x))


# -- ready-made functional models ------------------------------------------------------------
def test_resnet_small_is_residual_checks_its_gradient_and_trains_a_bit():
    small = dlcore.models.resnet_small(input_shape=(1, 8, 8), n_classes=3, filters=2, blocks=1,
                                       backend="reference")
    assert any(isinstance(layer, Add) for layer in small.layers)
    small.compile("cross_entropy", "sgd")
    errors = dlcore.gradcheck(small, _images(2, (1, 8, 8), seed=21).astype(np.float64), [0, 2],
                              max_entries=20, verbose=False)
    assert max(errors.values()) < TOLERANCE, errors
    images, labels = dlcore.datasets.load_mnist_5k()
    x = (images[:256].reshape(-1, 1, 28, 28) / 255.0).astype(np.float32)
    model = dlcore.models.resnet_small(backend="cpu", seed=0)
    model.compile("cross_entropy", "adam", ["accuracy"])
    history = model.fit(x, labels[:256], epochs=3, batch_size=32, verbose=0).history
    assert history["loss"][-1] < 0.8 * history["loss"][0]
    assert history["accuracy"][-1] > 0.3


def test_unet_small_gives_a_mask_of_the_input_size_and_trains_a_bit():
    model = dlcore.models.unet_small(backend="cpu", seed=1)
    assert model.output_shape == (1, 28, 28)
    assert any(isinstance(layer, Concatenate) for layer in model.layers)
    model.compile("binary_cross_entropy", "adam")
    x = _images(32, (1, 28, 28), seed=22)
    masks = (x > 0.5).reshape(32, -1)
    history = model.fit(x, masks, epochs=3, batch_size=16, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]


# -- the merge and graph kernels compile for a real GPU ----------------------------------------
def _functional_ptx_script():
    import textwrap

    from test_layers_cuda_ptx import SCRIPT
    preamble = SCRIPT.split("rs = np.random.default_rng(0)")[0]
    return preamble + textwrap.dedent('''
        rs = np.random.default_rng(0)
        a, b = dlcore.Input(shape=(1, 6, 6)), dlcore.Input(shape=(1, 6, 6))
        shared = Conv2D(2, 3, padding="same", activation="relu")
        # the pooled (2, 1, 1) map broadcasts over the other's pixels
        joined = Flatten()(concatenate([add([shared(a), MaxPool2D(6)(shared(b))]), b]))
        score = Dot(axes=1, normalize=True)([Dense(4)(joined), Dense(4)(joined)])
        model = dlcore.Model([a, b], [Dense(3, activation="softmax")(joined), score],
                             backend="cpu")
        model.compile(["cross_entropy", "mse"], "sgd")
        x = [rs.random((4, 1, 6, 6), dtype=np.float32), rs.random((4, 1, 6, 6), dtype=np.float32)]
        model.train_on_batch(x, [rs.integers(0, 3, 4), rs.random((4, 1)).astype(np.float32)])
        model.loss_and_gradient(x, [rs.integers(0, 3, 4), rs.random((4, 1))], input_gradient=True)
        for name in sorted({name for name, _ in compiled}):
            print("COMPILED", name)
    ''')


@pytest.mark.slow
def test_the_merge_and_graph_kernels_compile_to_ptx_for_a_real_gpu():
    from conftest import ptx_compile_report
    report = ptx_compile_report(_functional_ptx_script())
    for kernel in ("copy_span", "accumulate_span", "place_columns_rows", "take_columns_rows",
                   "broadcast_span", "broadcast_sum_span", "dot_rows", "dot_gradient_rows"):
        assert f"COMPILED {kernel}" in report, report[-2000:]


def test_a_functional_model_has_keras_json_and_weights_files(tmp_path):
    """to_json / model_from_json and save_weights / load_weights, as Sequential has them."""
    from dlcore.layers import Conv2D, Dense, Flatten, add
    x = dlcore.Input(shape=(1, 6, 6))
    first = Conv2D(2, 3, padding=1, activation="relu")(x)
    second = Conv2D(2, 3, padding=1)(first)
    model = dlcore.Model(inputs=x, outputs=Dense(3, activation="softmax")(
        Flatten()(add([first, second]))), backend="cpu", seed=1)
    data = np.random.default_rng(0).random((4, 1, 6, 6), dtype=np.float32)
    twin = dlcore.models.model_from_json(model.to_json())
    assert isinstance(twin, dlcore.Model) and not isinstance(twin, dlcore.Sequential)
    assert np.abs(twin.predict(data) - model.predict(data)).max() > 1e-3  # fresh weights
    model.save_weights(tmp_path / "weights.h5")
    twin.load_weights(tmp_path / "weights.h5")
    np.testing.assert_allclose(twin.predict(data), model.predict(data), atol=1e-6)


def test_a_models_weights_are_kerass_model_weights():
    """keras.io's Sequential guide reads ``model.weights`` (empty before the model is built,
    then every weight, the trainable and the others, as ``get_weights`` gives them): dlcore
    had ``trainable_weights`` and ``non_trainable_weights`` but no ``weights``
    (AttributeError), on a Sequential and a functional Model alike."""
    from dlcore.layers import BatchNormalization
    assert dlcore.Sequential(name="my_sequential").weights == []
    sequential = dlcore.Sequential([Dense(2), BatchNormalization(), Dense(3)], input_shape=(4,),
                                   backend="reference")
    inputs = dlcore.Input((4,))
    functional = dlcore.Model(inputs, Dense(3)(BatchNormalization()(Dense(2)(inputs))),
                              backend="reference")
    for model in (sequential, functional):
        weights = model.weights
        assert [w.shape for w in weights] == [(4, 2), (2,), (2,), (2,), (2,), (2,), (2, 3),
                                              (3,)]
        for got, expected in zip(weights, model.get_weights()):
            np.testing.assert_array_equal(got, expected)
        assert len(weights) == len(model.trainable_weights) + len(model.non_trainable_weights)


def _one_dict_output_model(**_):
    """A compiled model as dlcore imports ``keras.Model(x, {"score": softmax})``."""
    import json

    from dlcore.models import model_from_json
    rows = dlcore.Input((4,), name="features")
    config = json.loads(dlcore.Model(rows, Dense(3, activation="softmax", name="group")(rows),
                                     name="one").to_json())
    config["config"]["output_layers"] = {"score": config["config"]["output_layers"]}
    model = model_from_json(json.dumps(config))
    model.compile(loss="categorical_crossentropy", optimizer="sgd", metrics=["accuracy"])
    return model


def test_a_scikit_learn_wrapper_of_a_keras_model_of_one_dict_output_predicts():
    """SKLearnClassifier around a model whose predict gives ``{"score": ...}`` (a Keras
    model of one dict output) fitted, then predict died with ``TypeError: len() of unsized
    object``."""
    from dlcore.wrappers import SKLearnClassifier
    generator = np.random.default_rng(5)
    x, labels = generator.random((6, 4), np.float32), np.array([0, 1, 2, 0, 1, 2])
    classifier = SKLearnClassifier(_one_dict_output_model,
                                   fit_kwargs={"epochs": 1, "verbose": 0}).fit(x, labels)
    probabilities = classifier.predict_proba(x)
    np.testing.assert_allclose(probabilities, classifier.model_.predict(x)["score"],
                               rtol=1e-6)
    np.testing.assert_array_equal(classifier.predict(x), probabilities.argmax(axis=1))


def test_a_keras_model_of_one_dict_output_trains_and_classifies_by_its_key():
    """A Keras model of one output given as a dict, ``keras.Model(x, {"score": ...})``, whose
    predict gives ``{"score": ...}`` as Keras's: ``fit`` and ``evaluate`` refused the targets
    as Keras takes them, ``{"score": y}`` ("a model with one output takes its targets as one
    array"); ``predict_classes`` died with ``AttributeError: 'dict' object has no attribute
    'reshape'`` and an ``Ensemble`` of such models with a TypeError."""
    from dlcore.ensemble import Ensemble
    model = _one_dict_output_model()
    generator = np.random.default_rng(4)
    x = generator.random((6, 4), np.float32)
    y = np.eye(3, dtype=np.float32)[generator.integers(0, 3, 6)]
    probabilities = model.predict(x)["score"]
    assert model.evaluate(x, {"score": y}) == model.evaluate(x, y)
    assert model.evaluate(x, {"group": y}) == model.evaluate(x, y)
    np.testing.assert_array_equal(model.predict_classes(x), probabilities.argmax(axis=1))
    np.testing.assert_allclose(Ensemble([model, model]).predict(x), probabilities, rtol=1e-6)
    history = model.fit(x, {"score": y}, epochs=1, batch_size=6, verbose=0).history
    assert sorted(history) == ["accuracy", "loss"]
    with pytest.raises(ValueError, match=r"the model's outputs are keyed \['score'\] \(named "
                                         r"\['group'\]\): give one array per name"):
        model.evaluate(x, {"scores": y})


def test_a_file_whose_loss_order_is_no_order_of_the_outputs_is_refused(tmp_path):
    # "loss_order" (a Keras model of dict outputs compiled with a dict of losses: the order
    # of its <key>_loss scores) is checked before the model is built, in one line
    import json

    import h5py
    model = _two_outputs()
    model.compile(["mse", "cross_entropy"], "sgd")
    dlcore.save(model, tmp_path / "two.h5")
    refused = {(0, 0): r"give loss_order = \[0, 0\]; expected the outputs' numbers 0, 1, "
                       r"\.\.\. in some order",
               (0, 1, 2): r"loss_order \[0, 1, 2\] is not an order of the model's 2 outputs"}
    for order, loads in [([1, 0], True), ([0, 0], False), ([0, 1, 2], False)]:
        with h5py.File(tmp_path / "two.h5", "r+") as f:
            config = json.loads(f.attrs["hyperparameters"])
            config["compile"]["loss_order"] = order
            f.attrs["hyperparameters"] = json.dumps(config)
        if loads:
            loaded = dlcore.load(tmp_path / "two.h5")
            assert loaded.metrics_names == ["loss", "dense_2_loss", "dense_1_loss"]
            continue
        with pytest.raises(ValueError, match=refused[tuple(order)]) as error:
            dlcore.load(tmp_path / "two.h5")
        assert "\n" not in str(error.value)


def _two_inputs_joined(backend):
    """Two (3,) inputs joined by concatenate, whose gradient is split back with the
    ``take_columns`` kernel, then a Dense."""
    first, second = dlcore.Input(shape=(3,)), dlcore.Input(shape=(3,))
    model = dlcore.Model([first, second], Dense(1)(concatenate([first, second])),
                         backend=backend, seed=0)
    model.compile(loss="mse", optimizer="sgd")
    return model


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_a_model_built_in_float16_is_refused_in_one_line(backend):
    """model.build(dtype=np.float16) on the cpu backend failed at the first kernel (the
    take_columns of concatenate's gradient) with Numba's traceback, "NotImplementedError:
    float16", where the reference backend trained in float16. Both refuse it in one line."""
    model = _two_inputs_joined(backend)
    with pytest.raises(ValueError) as caught:
        model.build(dtype=np.float16)
    assert str(caught.value) == ("dtype='float16': dlcore computes in float32 or float64 "
                                 "(dtype='float32', 'float64' or None)")
    with pytest.raises(ValueError, match=r"^dtype='float16': "):
        Concatenate().build([(3,), (3,)], backend=backend, dtype=np.float16)


@pytest.mark.parametrize("swapped", [">f4", np.dtype(np.float32).newbyteorder()],
                         ids=["big-endian name", "byte-swapped type"])
def test_a_byte_swapped_float32_builds_a_model_in_float32(swapped):
    """model.build(dtype=rows.dtype) of rows read from a big-endian file ('>f4') was refused
    as "dtype='float32': dlcore computes in float32 or float64": it is float32, built and
    trained in this machine's byte order."""
    rows = np.random.default_rng(0).random((4, 3)).astype(swapped)
    for model in (_two_inputs_joined("cpu"),
                  dlcore.Sequential([Dense(1)], input_shape=(3,), backend="cpu", seed=0)):
        model.compile(loss="mse", optimizer="sgd")
        model.build(dtype=rows.dtype)
        assert model.dtype == np.float32 and model.dtype.isnative
        data = rows if isinstance(model, dlcore.Sequential) else [rows, rows]
        model.fit(data, np.ones((4, 1), np.float32), epochs=1, batch_size=2, verbose=0)
        assert all(weight.dtype.isnative for weight in model.get_weights())


def test_a_refused_type_leaves_a_built_layer_where_it_was():
    # a rebind to another backend in float16 moved the layer, then refused the type: its
    # weights stayed on the first backend, the layer said it was on the second
    layer = Dense(2).build((3,), "reference")
    with pytest.raises(ValueError, match=r"^dtype='float16': "):
        layer.rebind("cpu", np.float16)
    assert layer.backend.name == "reference" and layer.dtype == np.float32


def test_float16_data_trains_a_model_in_its_own_float32(tmp_path):
    # float16 rows, in an array or in an HDF5 data file, are read in the model's float32:
    # the same weights from both
    import h5py
    rows = np.random.default_rng(0).random((4, 6)).astype(np.float16)
    with h5py.File(tmp_path / "data.h5", "w") as h5file:
        h5file["images"] = rows
    weights = []
    for data in (rows, dlcore.datasets.open_hdf5(tmp_path / "data.h5", "images")):
        model = dlcore.Sequential([Dense(1)], input_shape=(6,), backend="cpu", seed=0)
        model.compile(loss="mse", optimizer="sgd")
        model.fit(data, np.ones((4, 1), np.float32), epochs=1, batch_size=2, verbose=0)
        assert model.dtype == np.float32
        weights.append(model.get_weights())
    for from_array, from_file in zip(*weights):
        np.testing.assert_array_equal(from_array, from_file)
