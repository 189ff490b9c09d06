"""Greedy layer-wise *supervised* pretraining (Bengio, Lamblin, Popovici & Larochelle 2007).

Lecture "Deep Neural Networks" shows the table of Bengio et al. (NIPS 2007), whose row "Deep
net, supervised pre-training" initialises a deep network greedily, as a DBN does, but with the
labels: "we trained each new layer as the hidden layer of a one-hidden-layer supervised neural
network, taking as input the output of the last previously trained layer, and then threw away
the output layer and used the parameters of the hidden layer as initialisation of the new
layer". For the sizes [n_0, n_1, ..., n_L] and data x with classes y:

    f_0 = x
    for k = 1 .. L:
        train  p(y | f_{k-1}) = softmax(s(f_{k-1} W_k + b_k) V_k + d_k)   (cross-entropy, SGD)
        keep   W_k, b_k;  drop the temporary softmax layer (V_k, d_k)
        f_k = s(f_{k-1} W_k + b_k)                                           (W_k held fixed)

and the deep network is the stack of the kept layers under a fresh softmax layer
(:func:`dlcore.models.stacked_network`), to be fine-tuned as a whole like the DBN's and the
stacked autoencoder's (:meth:`dlcore.DBN.to_network`,
:meth:`dlcore.StackedAutoencoder.to_network`). Bengio et al. found it better than no
pretraining, and worse than the unsupervised kinds, which keep information the labels of the
early layers do not ask for.
"""
import numpy as np

from dlcore.backend import rng
from dlcore.layer_stack import check_size_list
from dlcore.layers import Dense
from dlcore.models import stacked_network
from dlcore.network import Sequential
from dlcore.optimizers import SGD
from dlcore.validation import check_data, check_int

__all__ = ["supervised_greedy"]


def supervised_greedy(layers, X, y, n_classes=None, epochs=5, learning_rate=0.1, momentum=0.9,
                      batch_size=32, activation="sigmoid", seed=0, backend="auto", verbose=0):
    """Pretrain a deep network greedily with the labels (module docstring): one
    one-hidden-layer softmax network per hidden layer, each on the previous layers' outputs.

    Parameters
    ----------
    layers : list of int
        [n_inputs, n_hidden_1, ..., n_hidden_L], at least two sizes.
    X : (n, layers[0]) array
    y : (n,) integer class labels in [0, n_classes)
    n_classes : int, default ``y.max() + 1``
    epochs : int
        Epochs of each temporary network.
    learning_rate, momentum, batch_size : SGD with momentum of each temporary network
    activation : activation of the hidden layers
    seed : int
        Layer k's temporary network draws its initial weights from
        ``rng.layer_seed(seed, k - 1)``; the returned network's softmax from ``seed``.
    backend : {"auto", "cpu", "cuda", "reference"}
    verbose : 1 shows each temporary network's progress bars

    Returns
    -------
    :class:`dlcore.Sequential`, not compiled: Dense layers ``supervised1``, ... with the
    pretrained weights, and ``classifier``, a fresh softmax layer; it carries
    ``pretraining_history``, the history (loss, accuracy) of each temporary network.
    """
    # as DBN(layers=...) takes them: a list, a tuple, a NumPy integer array
    sizes = check_size_list(layers, "layers", 2, "[n_inputs, n_hidden, ...]")
    features = check_data(X, "X", n_columns=sizes[0], columns_meaning="inputs")
    labels = np.asarray(y)
    if labels.shape != (len(features),) or not np.issubdtype(labels.dtype, np.integer) \
            or labels.min() < 0:
        raise ValueError(f"y must be ({len(features)},) non-negative integer labels, got shape "
                         f"{labels.shape}, dtype {labels.dtype}")
    n_classes = int(labels.max()) + 1 if n_classes is None else check_int(
        n_classes, "n_classes", minimum=int(labels.max()) + 1)
    if n_classes < 2:
        # a softmax over one class has nothing to learn (and dlcore's cross-entropy refuses
        # it with a message about a layer the caller never made)
        raise ValueError("y holds class 0 only: supervised pretraining trains a softmax over "
                         "two or more classes; give labels of several classes (a slice of "
                         "mnist-5k, which is sorted by class, holds one: shuffle it or use "
                         "dlcore.datasets.holdout_split), or give n_classes")
    epochs = check_int(epochs, "epochs", minimum=1)
    weights, histories = [], []
    for index, units in enumerate(sizes[1:]):
        temporary = Sequential([Dense(units, activation=activation, name="hidden"),
                                Dense(n_classes, activation="softmax", name="softmax")],
                               input_shape=(features.shape[1],), backend=backend,
                               seed=rng.layer_seed(seed, index),
                               name=f"supervised_layer{index + 1}")
        temporary.compile(loss="cross_entropy", metrics=["accuracy"],
                          optimizer=SGD(learning_rate=learning_rate, momentum=momentum))
        temporary.fit(features, labels, epochs=epochs, batch_size=batch_size, verbose=verbose)
        kernel, bias = temporary.layers[0].get_weights()
        weights.append((kernel, bias))
        histories.append(temporary.history)
        if index + 1 < len(sizes) - 1:   # f_k = s(f_{k-1} W_k + b_k), W_k fixed from now on
            encoder = Sequential([Dense(units, activation=activation, kernel_initializer=kernel,
                                        bias_initializer=bias)],
                                 input_shape=(features.shape[1],), backend=backend)
            features = encoder.predict(features)
    network = stacked_network(weights, n_classes, activation=activation, prefix="supervised",
                              name="supervised_pretrained", backend=backend, seed=seed)
    network.pretraining_history = histories
    return network
