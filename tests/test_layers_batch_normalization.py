"""Batch normalisation (dlcore/layers/normalization.py; Ioffe & Szegedy 2015, Keras's
BatchNormalization).

Oracles: in training each channel of the output has mean beta and standard deviation gamma
(up to epsilon) whatever the input; the gradient by finite differences; the cpu and cuda
(simulator) kernels against the NumPy reference, moving statistics included; models written by
Keras (tests/fixtures/keras_batch_norm.*, JAX) predict as Keras did and take Keras's own next
training step (batch statistics, moving averages and momenta all take part).
"""
import pickle
import warnings

import numpy as np
import pytest

import dlcore
from conftest import requires_cuda
from dlcore.layers import BatchNormalization, Conv2D, Dense, Flatten, ReLU
from dlcore.optimizers import SGD
from test_io_keras import fixture

BACKENDS = ["reference", "cpu", pytest.param("cuda", marks=requires_cuda)]


def images(*shape, seed=0):
    return (np.random.default_rng(seed).standard_normal(shape) * 3 + 2).astype(np.float32)


def run(backend, x, grad_y, training=True, trainable=True, **options):
    """Forward, backward and the moving statistics after them, as NumPy arrays."""
    layer = BatchNormalization(momentum=0.8, **options).build(x.shape[1:], backend=backend)
    layer.trainable = trainable
    rng = np.random.default_rng(5)
    channels = x.shape[1]
    weights = [rng.random(channels) + 0.5 for _ in layer.weight_names]
    layer.set_weights(weights + [rng.standard_normal(channels), rng.random(channels) + 0.5])
    be = layer.backend
    y = np.array(be.to_numpy(layer.forward(be.asarray(x), training=training)))
    grad_x = np.array(be.to_numpy(layer.backward(be.asarray(grad_y))))
    grads = [np.array(be.to_numpy(layer.grads[name])) for name in layer.weight_names]
    return [y, grad_x, *grads, *layer.get_weights()[len(layer.weight_names):]]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [(5, 3, 4, 6), (7, 4)], ids=["images", "rows"])
@pytest.mark.parametrize("training, trainable", [(True, True), (False, True), (True, False)],
                         ids=["training", "evaluation", "frozen"])
def test_kernels_follow_the_reference(backend, shape, training, trainable):
    x = images(*shape)
    grad_y = images(*shape, seed=1)
    expected = run("reference", x, grad_y, training, trainable)
    got = run(backend, x, grad_y, training, trainable)
    for index, (a, b) in enumerate(zip(got, expected)):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5, err_msg=f"result {index}")


@pytest.mark.parametrize("center, scale", [(True, True), (False, True), (True, False)])
def test_training_outputs_have_each_channels_beta_mean_and_gamma_deviation(center, scale):
    x = images(8, 3, 5, 5)
    layer = BatchNormalization(center=center, scale=scale, epsilon=1e-6).build(
        (3, 5, 5), backend="cpu")
    gamma, beta = np.array([0.5, 2.0, 3.0]), np.array([-1.0, 0.0, 4.0])
    layer.set_weights(([gamma] if scale else []) + ([beta] if center else [])
                      + [np.zeros(3), np.ones(3)])
    gamma, beta = (gamma if scale else np.ones(3)), (beta if center else np.zeros(3))
    y = layer.forward(x, training=True)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), beta, atol=1e-5)
    np.testing.assert_allclose(y.std(axis=(0, 2, 3)), gamma, rtol=1e-4)
    # the moving averages took one step from (0, 1) towards the batch's statistics
    moving_mean, moving_variance = layer.get_weights()[-2:]
    np.testing.assert_allclose(moving_mean, 0.01 * x.mean(axis=(0, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(moving_variance, 0.99 + 0.01 * x.var(axis=(0, 2, 3)), rtol=1e-5)
    # evaluation normalises by the moving statistics, not the batch's
    evaluated = layer.forward(x[:1], training=False)
    np.testing.assert_allclose(
        evaluated, (gamma[:, None, None] * (x[:1] - moving_mean[:, None, None])
                    / np.sqrt(moving_variance + 1e-6)[:, None, None] + beta[:, None, None]),
        rtol=1e-5, atol=1e-5)


def test_a_net_with_batch_normalization_passes_the_gradient_check():
    model = dlcore.Sequential([Conv2D(3, 3, use_bias=False, input_shape=(2, 5, 5)),
                               BatchNormalization(), ReLU(), Flatten(),
                               Dense(4, use_bias=False), BatchNormalization(center=False),
                               Dense(2, activation="softmax")], backend="reference")
    model.compile(optimizer="sgd")
    x = np.random.default_rng(2).random((6, 2, 5, 5))
    errors = dlcore.gradcheck(model, x, [0, 1, 1, 0, 1, 0], verbose=False)
    assert max(errors.values()) < 1e-6, errors


def network(backend="cpu"):
    return dlcore.Sequential([Conv2D(3, 3, use_bias=False, input_shape=(1, 6, 6)),
                              BatchNormalization(momentum=0.9, name="norm"), ReLU(), Flatten(),
                              Dense(3, activation="softmax")], backend=backend, seed=1)


def test_the_moving_statistics_are_state_kept_by_files_pickles_and_clones(tmp_path):
    x = images(16, 1, 6, 6)
    model = network()
    model.compile(optimizer=SGD(0.1, momentum=0.9))
    model.fit(x, np.arange(16) % 3, epochs=2, batch_size=4, verbose=0)
    norm = model.get_layer("norm")
    assert norm.weight_names == ("gamma", "beta")
    assert norm.array_names == ("gamma", "beta", "moving_mean", "moving_variance")
    assert not np.allclose(norm.get_weights()[2], 0)        # the averages moved
    assert [p.key for p in model.parameters if p.key.startswith("norm")] == \
        ["norm/gamma", "norm/beta"]                          # the optimiser never steps them
    # kernel; gamma, beta; kernel, bias trained; the moving mean and variance kept
    assert len(model.trainable_weights) == 5 and len(model.non_trainable_weights) == 2
    summary = model.summary(print_fn=None)
    assert summary.non_trainable_params == 6
    assert summary.total_params == 3 * 9 + 4 * 3 + (3 * 4 * 4 + 1) * 3
    for suffix in (".h5", ".keras"):
        path = tmp_path / f"m{suffix}"
        (dlcore.save(model, path) if suffix == ".h5" else model.save(path))
        np.testing.assert_array_equal(dlcore.load(path).predict(x), model.predict(x))
    for copy in (pickle.loads(pickle.dumps(model)), model.clone()):
        np.testing.assert_array_equal(copy.predict(x), model.predict(x))


def test_a_frozen_layer_normalises_by_its_moving_statistics_and_keeps_them():
    x = images(16, 1, 6, 6)
    model = network()
    model.compile(optimizer=SGD(0.1))
    model.fit(x, np.arange(16) % 3, epochs=1, batch_size=4, verbose=0)
    norm = model.get_layer("norm")
    norm.trainable = False
    before = norm.get_weights()
    model.fit(x, np.arange(16) % 3, epochs=2, batch_size=4, verbose=0)
    for a, b in zip(before, norm.get_weights()):
        np.testing.assert_array_equal(a, b)
    training = model.layers[1].forward(model.layers[0](x), training=True)
    np.testing.assert_allclose(training, model.layers[1](model.layers[0](x)), rtol=1e-6)


def test_refusals_name_the_problem_and_the_fix():
    with pytest.raises(ValueError, match="channels are axis 1"):
        dlcore.Sequential([BatchNormalization(axis=-1, input_shape=(3, 4, 4))])
    assert BatchNormalization(axis=-1).build((5,)).output_shape == (5,)
    with pytest.raises(ValueError, match="axis must be 1"):
        BatchNormalization(axis=2)
    with pytest.raises(ValueError, match="momentum must be"):
        BatchNormalization(momentum=1.0)
    flattened = dlcore.Sequential([Conv2D(2, 3, input_shape=(1, 5, 5)), Flatten(),
                                   BatchNormalization(), Dense(2)])
    with pytest.raises(ValueError, match="put it before the Flatten"):
        flattened.save("never-written.keras")


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_keras_model_with_batch_normalization_trains_on_in_dlcore_as_in_keras(suffix):
    saved = np.load(fixture("keras_batch_norm.keras.npz"))
    x, labels = saved["x"].transpose(0, 3, 1, 2), saved["labels"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = dlcore.load(fixture(f"keras_batch_norm{suffix}"))
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("BatchNormalization") == 2
    norm = model.get_layer("hidden_norm")
    assert (norm.center, norm.scale, norm.epsilon) == (False, True, 1e-2)
    np.testing.assert_allclose(model.predict(x), saved["y"], atol=1e-6)
    model.train_on_batch(x[:8], labels[:8])
    assert np.abs(saved["y_next"] - saved["y"]).max() > 0.01
    np.testing.assert_allclose(model.predict(x), saved["y_next"], atol=1e-6)


def test_a_data_parallel_fit_refuses_batch_normalization_before_training():
    from dlcore.distributed.communicator import Communicator
    from test_distributed import OneOfMany
    model = network()
    model.compile(optimizer="sgd")
    before = model.get_weights()
    with pytest.raises(ValueError, match="'norm' \\(BatchNormalization\\) normalises by its "
                                         "batch's statistics.*train it in one process"):
        model.fit(images(8, 1, 6, 6), np.arange(8) % 3, epochs=1, verbose=0,
                  comm=Communicator(OneOfMany(0, 1)))
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_the_gradient_check_calls_a_bias_before_a_normalisation_zero_not_wrong(capsys):
    """The normalisation removes any constant, so the bias before it has a zero gradient both
    ways; its relative error is noise over noise, which neither the table nor the returned
    errors may flag: both give 0, and the verdicts stay in one column."""
    model = dlcore.Sequential([Dense(4, input_shape=(3,), name="before"),
                               BatchNormalization(), Dense(2, activation="softmax")],
                              backend="reference")
    model.compile(optimizer="sgd")
    errors = dlcore.gradcheck(model, np.random.default_rng(3).random((6, 3)), [0, 1] * 3)
    table = capsys.readouterr().out
    bias_line = next(line for line in table.splitlines() if line.startswith("before/bias"))
    assert bias_line.endswith("ok (zero)") and "CHECK" not in table
    assert float(bias_line.split()[-3]) == 0.0      # noise over noise: printed as returned
    assert errors["before/bias"] == 0.0
    rows = table.splitlines()[2:]
    assert len({row.index(" ok") for row in rows}) == 1   # one column of verdicts
    assert max(errors.values()) < 1e-6 and errors["before/kernel"] > 0
