"""The visible layer of an RBM, modelled once (dlcore/rbm/units.py): each strategy gives the
estimator its data checks, starting values, free energy, visible mean and log Z. Oracles: the
NumPy model functions of dlcore/rbm/model.py, Hinton's guide for the starting values, and the
strategy's own sampler pass on the reference backend."""
import numpy as np
import pytest

from dlcore import BernoulliRBM, GaussianBernoulliRBM
from dlcore.backend import get_backend
from dlcore.rbm import model
from dlcore.rbm.units import BernoulliVisible, GaussianVisible, SoftmaxLabelVisible


@pytest.fixture
def parameters(random_state):
    return {"W": random_state.normal(0, 0.5, (7, 4)).astype(np.float32),
            "visible_bias": random_state.normal(0, 0.5, 7).astype(np.float32),
            "hidden_bias": random_state.normal(0, 0.5, 4).astype(np.float32),
            "visible_sigma": random_state.uniform(0.5, 1.5, 7).astype(np.float32)}


def test_each_layer_gives_the_free_energy_and_visible_mean_of_its_model(parameters, random_state):
    v = (random_state.random((5, 7)) < 0.5).astype(np.float32)
    h = (random_state.random((5, 4)) < 0.5).astype(np.float32)
    W, b, c, sigma = (parameters[k].astype(np.float64)
                      for k in ("W", "visible_bias", "hidden_bias", "visible_sigma"))
    binary, gaussian = BernoulliVisible(), GaussianVisible(None, parameters["visible_sigma"])
    np.testing.assert_array_equal(binary.free_energy(v, parameters),
                                  model.free_energy(v.astype(np.float64), W, b, c))
    np.testing.assert_array_equal(gaussian.free_energy(v, parameters),
                                  model.gaussian_free_energy(v.astype(np.float64), W, b, c,
                                                             sigma))
    np.testing.assert_array_equal(
        binary.visible_mean(h, parameters),
        model.visible_probability(h, parameters["W"], parameters["visible_bias"]))
    np.testing.assert_array_equal(
        gaussian.visible_mean(h, parameters),
        model.gaussian_visible_mean(h, parameters["W"], parameters["visible_bias"],
                                    parameters["visible_sigma"]))


def test_the_label_units_mean_is_the_softmax_their_sampler_draws_from(parameters, random_state):
    h = (random_state.random((6, 4)) < 0.5).astype(np.float32)
    labels = SoftmaxLabelVisible(3)
    mean = labels.visible_mean(h, parameters)
    reference = get_backend("reference")
    sampled_means = h @ parameters["W"].T
    labels.sample(reference, sampled_means, parameters["visible_bias"], None, 0, 0, 0)
    np.testing.assert_array_equal(mean, sampled_means)
    np.testing.assert_allclose(mean[:, -3:].sum(axis=1), 1, rtol=1e-6)
    binary = BernoulliVisible().visible_mean(h, parameters)
    np.testing.assert_array_equal(mean[:, :-3], binary[:, :-3])
    with pytest.raises(ValueError, match="label units"):
        labels.log_partition(parameters)


def test_starting_values_follow_hintons_guide_for_each_layer(random_state):
    X = (random_state.random((40, 6)) < 0.3).astype(np.float32)
    start, training = BernoulliVisible().initial_parameters(X)
    p = np.clip(X.mean(axis=0), 1e-4, 1 - 1e-4)
    np.testing.assert_allclose(start["visible_bias"], np.log(p / (1 - p)), rtol=1e-5)
    assert training == {}
    start, training = GaussianVisible(None, 0.7).initial_parameters(X)
    np.testing.assert_allclose(start["visible_bias"], X.mean(axis=0), rtol=1e-6)
    np.testing.assert_array_equal(start["visible_sigma"], np.full(6, 0.7, np.float32))
    np.testing.assert_array_equal(training["velocity_log_sigma"], np.zeros(6, np.float32))


def test_each_layer_checks_its_own_data():
    real = np.array([[0.5, 2.0], [-1.0, 0.0]])
    with pytest.raises(ValueError, match=r"\[0, 1\] for binary"):
        BernoulliVisible().check(real, "X")
    assert GaussianVisible(None, 1.0).check(real, "X").dtype == np.float32
    with pytest.raises(ValueError, match="expects 3 visible units"):
        GaussianVisible(None, 1.0).check(real, "X", n_columns=3)


@pytest.mark.parametrize("n_labels, label_columns, message", [
    (6, None, "X has 6 columns, but n_labels=6 takes its last 6 as label units"),
    (7, None, "X has 6 columns, but n_labels=7"),
    (2, [[1, 1]], r"row 0 holds \[1.0, 1.0\]: put each row's label there as np.eye\(2\)\[y\]"),
    (2, [[0, 0]], r"row 0 holds \[0.0, 0.0\]"),
    (2, [[0.5, 0.5]], r"row 0 holds \[0.5, 0.5\]")])
def test_label_units_take_the_last_columns_of_wider_rows_holding_one_hot_labels(
        n_labels, label_columns, message):
    """BernoulliRBM(n_labels=7) fitted 6 columns as one softmax group of all six, and any
    values in the label columns trained without a word."""
    X = np.zeros((4, 6), np.float32)
    X[:, -2:] = np.eye(2)[[0, 1, 0, 1]]
    if label_columns is not None:
        X[0, -2:] = label_columns[0]
    with pytest.raises(ValueError, match=message):
        BernoulliRBM(n_hidden=2, epochs=1, n_labels=n_labels, backend="reference").fit(X)
    fitted = BernoulliRBM(n_hidden=2, epochs=1, n_labels=2, backend="reference").fit(
        np.vstack([X[1:]] * 2))
    assert fitted.transform(X).shape == (4, 2)   # rows it is applied to: any label columns


MODELS = {
    "bernoulli": lambda: BernoulliRBM(n_hidden=3, epochs=1, batch_size=5, backend="reference"),
    "labels": lambda: BernoulliRBM(n_hidden=3, epochs=1, batch_size=5, n_labels=2,
                                   backend="reference"),
    "gaussian": lambda: GaussianBernoulliRBM(n_hidden=3, epochs=1, batch_size=5, sigma=0.8,
                                             learn_sigma=True, backend="reference")}


@pytest.mark.parametrize("make", MODELS.values(), ids=MODELS.keys())
def test_the_estimators_free_energy_and_reconstruction_are_their_layers(make, random_state):
    X = (random_state.random((20, 6)) < 0.4).astype(np.float32)
    X[:, -2:] = np.eye(2, dtype=np.float32)[np.arange(20) % 2]
    rbm = make().fit(X)
    layer, parameters = rbm._visible_units(), rbm._parameters()
    np.testing.assert_array_equal(rbm.free_energy(X), layer.free_energy(X, parameters))
    np.testing.assert_array_equal(rbm.reconstruct(X),
                                  layer.visible_mean(rbm.transform(X), parameters))
    assert set(parameters) == {"W", "visible_bias", "hidden_bias", *layer.parameter_names}


def test_weights_on_data_take_raw_rows_to_the_hidden_input_of_each_layer(parameters,
                                                                         random_state):
    """v W* = weight_input(v) W: what a network's first Dense layer built from the RBM needs."""
    v = random_state.normal(0, 1, (5, 7)).astype(np.float32)
    backend = get_backend("reference")
    for layer in (BernoulliVisible(), GaussianVisible(backend, parameters["visible_sigma"])):
        expected = backend.to_numpy(layer.weight_input(backend, v, "data")) @ parameters["W"]
        np.testing.assert_allclose(v @ layer.weights_on_data(parameters), expected, rtol=1e-5,
                                   atol=1e-6)
    assert not np.allclose(GaussianVisible(backend, parameters["visible_sigma"])
                           .weights_on_data(parameters), parameters["W"])
