"""Keras's ``model.input``, ``model.output`` and ``layer.output``: a model of part of a network,
sharing its layers and weights, as Keras users build feature extractors and look at feature
maps (lecture "Supervised learning", "Good To Know": "Visualize features").

Oracle: the part model's predictions are the network's own layers applied in turn to the input
(each layer called on its own), before and after the network trains.
"""
import numpy as np
import pytest

import dlcore
from dlcore.layers import Concatenate, Conv2D, Dense, Flatten, MaxPool2D, add


def images(n=6, seed=0):
    return np.random.default_rng(seed).random((n, 1, 10, 10)).astype(np.float32)


def convnet():
    return dlcore.Sequential([Conv2D(4, 3, activation="relu", input_shape=(1, 10, 10),
                                     name="conv"),
                              MaxPool2D(2, name="pool"), Flatten(name="flat"),
                              Dense(5, activation="tanh", name="code"),
                              Dense(3, activation="softmax", name="out")], seed=2)


def by_hand(network, x, last):
    """The network's layers up to ``last``, each called on its own."""
    for layer in network.layers:
        x = layer(x)
        if layer.name == last:
            return x
    raise AssertionError(last)


@pytest.mark.parametrize("inputs", ["input", "inputs"])
@pytest.mark.parametrize("last", ["conv", "flat", "code"])
def test_a_sequential_part_model_is_its_layers_up_to_one_and_shares_their_weights(inputs,
                                                                                  last):
    network = convnet()
    part = dlcore.Model(getattr(network, inputs), network.get_layer(last).output)
    x = images()
    np.testing.assert_allclose(part.predict(x), by_hand(network, x, last), rtol=1e-6)
    network.compile(optimizer=dlcore.optimizers.SGD(0.5, momentum=0.9))
    before = part.predict(x)
    network.fit(x, np.arange(6) % 3, epochs=3, batch_size=2, verbose=0)
    after = part.predict(x)
    assert not np.allclose(before, after)           # the weights are the network's
    np.testing.assert_allclose(after, by_hand(network, x, last), rtol=1e-6)


def test_every_activation_of_a_graph_at_once():
    inputs = dlcore.Input((1, 10, 10))
    stem = Conv2D(3, 3, padding="same", activation="relu", name="stem")(inputs)
    joined = Concatenate(name="join")([add([stem, Conv2D(3, 3, padding="same", name="branch")(
        stem)]), stem])
    out = Dense(2, activation="softmax", name="out")(Flatten(name="flat")(joined))
    model = dlcore.Model(inputs, out)
    assert model.input is inputs and model.output is out
    probes = dlcore.Model(model.input, [layer.output for layer in model.layers])
    x = images(3)
    activations = probes.predict(x)
    assert [a.shape[1:] for a in activations] == [layer.output.shape for layer in model.layers]
    np.testing.assert_allclose(activations[-1], model.predict(x), rtol=1e-6)
    assert model.get_layer("branch").input is stem
    assert model.get_layer("join").input == [model.get_layer("join").input[0], stem]


def test_pop_and_add_keep_the_graph_current():
    network = convnet()
    network.pop()
    network.add(Dense(4, activation="softmax", name="new"))
    assert network.output is network.get_layer("new").output
    part = dlcore.Model(network.input, network.get_layer("code").output)
    x = images()
    np.testing.assert_allclose(part.predict(x), by_hand(network, x, "code"), rtol=1e-6)
    assert network.predict(x).shape == (6, 4)


def test_a_layer_without_a_graph_says_how_to_get_one():
    layer = Dense(3, name="lonely")
    with pytest.raises(AttributeError, match="'lonely' has not been called on a symbolic "
                                             "tensor.*build its network first"):
        _ = layer.output
    network = dlcore.Sequential([layer])   # no input shape yet: not built
    with pytest.raises(RuntimeError, match="not built"):
        _ = network.input
    network.build((4,))
    assert layer.output.shape == (3,) and layer.input is network.input


def test_model_inputs_as_a_list_of_one_is_that_input():
    """Keras's ``keras.Model(model.inputs, ...)``: one input in a list takes one array."""
    network = convnet()
    part = dlcore.Model([network.input], network.get_layer("conv").output)
    x = images()
    assert part.predict(x).shape == (6, 4, 8, 8)
    assert part.predict([x]).shape == (6, 4, 8, 8)
    first, second = dlcore.Input((2,)), dlcore.Input((3,))
    two = dlcore.Model([first, second], Dense(1)(Concatenate()([first, second])))
    assert two.input == [first, second]
    assert two.predict([np.ones((4, 2)), np.ones((4, 3))]).shape == (4, 1)


def test_a_sequential_built_again_for_another_input_has_a_graph_of_that_input():
    network = dlcore.Sequential([Dense(4, name="hidden"), Dense(2, name="out")])
    network.build((3,))
    assert network.get_layer("hidden").input.shape == (3,)
    network.build((5,))
    assert network.input.shape == (5,) and network.get_layer("hidden").input.shape == (5,)
    part = dlcore.Model(network.input, network.get_layer("hidden").output)
    x = np.ones((2, 5), np.float32)
    np.testing.assert_allclose(part.predict(x), network.get_layer("hidden")(x), rtol=1e-6)


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_a_part_model_leaves_the_networks_layers_on_its_backend(backend):
    # Model(...) defaulted to "auto" and moved the shared layers to the cpu: the network's own
    # fit then stepped the arrays the layers had left, and "conv" stopped learning, silently
    network = dlcore.Sequential(convnet().layers, input_shape=(1, 10, 10), backend=backend,
                                seed=2)
    network.compile("cross_entropy", dlcore.optimizers.SGD(0.5))
    part = dlcore.Model(network.input, network.get_layer("conv").output)
    before = part.predict(images())
    kernel = network.get_layer("conv").get_weights()[0].copy()
    network.fit(images(), np.arange(6) % 3, epochs=1, batch_size=3, verbose=0)
    assert part.backend is network.backend
    assert np.abs(network.get_layer("conv").get_weights()[0] - kernel).max() > 1e-4
    np.testing.assert_allclose(part.predict(images()), by_hand(network, images(), "conv"),
                               rtol=1e-5, atol=1e-6)
    assert np.abs(part.predict(images()) - before).max() > 1e-4


def test_a_part_model_on_another_backend_is_refused_with_the_copy_to_make():
    network = dlcore.Sequential(convnet().layers, input_shape=(1, 10, 10), backend="reference",
                                seed=2)
    with pytest.raises(ValueError, match="reference backend") as error:
        dlcore.Model(network.input, network.get_layer("conv").output, backend="cpu")
    assert "\n" not in str(error.value) and "network.clone(backend='cpu')" in str(error.value)
    assert network.get_layer("conv").backend is network.backend      # left where it was
    copy = network.clone(backend="cpu")
    part = dlcore.Model(copy.input, copy.get_layer("conv").output, backend="cpu")
    np.testing.assert_allclose(part.predict(images()), by_hand(network, images(), "conv"),
                               rtol=1e-5, atol=1e-6)
