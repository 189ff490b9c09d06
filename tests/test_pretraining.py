"""``dlcore.pretraining.supervised_greedy`` (Bengio et al. 2007, "supervised pre-training").

Oracles: the recipe done by hand with dlcore's own networks (layer k is the hidden layer of a
one-hidden-layer softmax network trained on the outputs of layers 1 .. k-1, which stay fixed),
the returned network's structure, and a toy problem it must learn."""
import numpy as np
import pytest

import dlcore
from dlcore.backend import rng
from dlcore.layers import Dense
from dlcore.optimizers import SGD

SETTINGS = {"epochs": 2, "learning_rate": 0.1, "momentum": 0.9, "batch_size": 8,
            "backend": "cpu", "seed": 5}


def toy(n=64, seed=0):
    x = np.random.default_rng(seed).random((n, 10)).astype(np.float32)
    return x, (x[:, 0] > 0.5).astype(np.int64) + (x[:, 1] > 0.5)


def one_hidden_layer(x, y, units, seed):
    """The temporary network of one layer, trained as the recipe says; its hidden weights."""
    net = dlcore.Sequential([Dense(units, activation="sigmoid", name="hidden"),
                             Dense(3, activation="softmax", name="softmax")],
                            input_shape=(x.shape[1],), backend="cpu", seed=seed)
    net.compile(loss="cross_entropy", optimizer=SGD(learning_rate=0.1, momentum=0.9))
    net.fit(x, y, epochs=2, batch_size=8, verbose=0)
    return net.layers[0].get_weights()


def test_each_layer_is_the_hidden_layer_of_a_softmax_net_on_the_layers_below():
    x, y = toy()
    network = dlcore.pretraining.supervised_greedy([10, 6, 4], x, y, **SETTINGS)
    kernel1, bias1 = one_hidden_layer(x, y, 6, rng.layer_seed(5, 0))
    features = 1 / (1 + np.exp(-(x.astype(np.float64) @ kernel1 + bias1)))
    kernel2, bias2 = one_hidden_layer(features.astype(np.float32), y, 4, rng.layer_seed(5, 1))
    weights = network.get_weights()
    for got, expected in zip(weights[:4], (kernel1, bias1, kernel2, bias2)):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert [layer.name for layer in network.layers] == ["supervised1", "supervised2",
                                                        "classifier"]
    assert network.layers[-1].units == 3 and network.loss is None   # fresh, not compiled
    assert len(network.pretraining_history) == 2


def test_the_pretrained_network_fine_tunes_on_a_learnable_problem():
    x, y = toy(256)
    network = dlcore.pretraining.supervised_greedy([10, 16, 16], x, y,
                                                   **dict(SETTINGS, epochs=10))
    network.compile(loss="cross_entropy", optimizer=SGD(learning_rate=0.1, momentum=0.9),
                    metrics=["accuracy"])
    network.fit(x, y, epochs=20, batch_size=16, verbose=0)
    assert np.mean(network.predict(x).argmax(axis=1) == y) > 0.8


@pytest.mark.parametrize("arguments, message", [
    (([10], np.zeros((4, 10)), np.zeros(4, int)), "at least two sizes"),
    (([10, 4], np.zeros((4, 9)), np.zeros(4, int)), "9 columns but the model expects 10"),
    (([10, 4], np.zeros((4, 10)), np.zeros(3, int)), r"y must be \(4,\) non-negative integer"),
    (([10, 4], np.zeros((4, 10)), np.full(4, 0.5)), "integer labels"),
    (([10, 4], np.zeros((4, 10)), np.zeros(4, int)), "y holds class 0 only: .* two or more"),
])
def test_bad_input_is_one_clear_error(arguments, message):
    with pytest.raises(ValueError, match=message):
        dlcore.pretraining.supervised_greedy(*arguments, backend="cpu")
