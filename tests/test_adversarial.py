"""Adversarial examples (FGSM) and adversarial training (Goodfellow et al. 2015).

Oracles: hand-computed small cases of x + eps sign(g) clipped; the input gradient of a softmax
regression written out, (p - y) W' / n; the NumPy references for the kernel bodies; the
training gradient a g(x) + (1 - a) g(x_adv) assembled from ``loss_and_gradient`` by hand."""
import numpy as np
import pytest

import dlcore
from conftest import requires_cuda
from dlcore.adversarial import (
    AdversarialTraining,
    _axpby,
    _fgsm_into,
    axpby_reference,
    fgsm,
    fgsm_reference,
)
from dlcore.backend import get_backend
from dlcore.layers import Dense, Dropout, Flatten, GaussianNoise, ImageAugmentation
from dlcore.optimizers import SGD


def test_fgsm_reference_steps_by_epsilon_along_the_sign_and_clips():
    x = np.array([[0.0, 0.5, 0.95, 0.3]], dtype=np.float32)
    g = np.array([[-1.0, 2.0, 3.0, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(fgsm_reference(x, g, 0.1, 0.0, 1.0), [[0.0, 0.6, 1.0, 0.3]])


@pytest.mark.parametrize("backend", ["cpu", pytest.param("cuda", marks=requires_cuda)])
def test_kernels_follow_the_references(backend, random_state):
    be = get_backend(backend)
    x = random_state.random((3, 7)).astype(np.float32)
    g = random_state.standard_normal((3, 7)).astype(np.float32)
    g[0, :3] = 0.0
    out = be.empty((3, 7))
    _fgsm_into(be, be.asarray(x), be.asarray(g), out, 0.2, 0.1, 0.9)
    np.testing.assert_array_equal(be.to_numpy(out), fgsm_reference(x, g, 0.2, 0.1, 0.9))
    for beta in (0.0, 0.25):
        y = random_state.standard_normal(11).astype(np.float32)
        source = random_state.standard_normal(11).astype(np.float32)
        expected = y.copy()
        axpby_reference(0.5, source, beta, expected)
        device = be.asarray(y.copy())
        _axpby(be, 0.5, be.asarray(source), beta, device)
        np.testing.assert_allclose(be.to_numpy(device), expected, rtol=1e-6)


def softmax_regression(backend="reference", extra=()):
    model = dlcore.Sequential(list(extra) + [Flatten(), Dense(3, activation="softmax")],
                              input_shape=(1, 2, 3), backend=backend, seed=2)
    model.compile("cross_entropy", SGD(0.1), ["accuracy"])
    return model


def test_fgsm_moves_every_pixel_against_the_softmax_regression_gradient(random_state):
    model = softmax_regression()
    x = random_state.random((4, 1, 2, 3)).astype(np.float32)
    y = np.array([0, 1, 2, 1])
    kernel, bias = model.get_weights()
    z = x.reshape(4, -1) @ kernel + bias
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    grad_x = ((p - np.eye(3)[y]) @ kernel.T / 4).reshape(x.shape)
    expected = np.clip(x + 0.05 * np.sign(grad_x), 0.0, 1.0)
    np.testing.assert_allclose(fgsm(model, x, y, 0.05, clip=(0.0, 1.0)), expected, atol=1e-6)


def test_fgsm_raises_the_loss_and_is_clipped_to_the_data_range(random_state):
    model = softmax_regression()
    x = random_state.random((20, 1, 2, 3)).astype(np.float32)
    y = random_state.integers(0, 3, 20)
    attacked = fgsm(model, x, y, 0.3)
    assert attacked.min() >= x.min() and attacked.max() <= x.max()
    assert model.evaluate(attacked, y)["loss"] > model.evaluate(x, y)["loss"]


def test_fgsm_attacks_the_network_as_it_predicts_without_dropout_or_noise(random_state):
    """With dropout, noise and augmentation the gradient is that of evaluation mode: the same
    examples as for the network without those layers (same weights)."""
    x = random_state.random((5, 1, 2, 3)).astype(np.float32)
    y = random_state.integers(0, 3, 5)
    plain = softmax_regression()
    noisy = softmax_regression(extra=(ImageAugmentation(1), GaussianNoise(0.5)))
    noisy.layers.insert(3, Dropout(0.5))
    noisy = dlcore.Sequential.from_config({**noisy.get_config(), "input_shape": [1, 2, 3]})
    noisy.set_weights(plain.get_weights())
    np.testing.assert_allclose(fgsm(noisy, x, y, 0.1), fgsm(plain, x, y, 0.1), atol=1e-7)


def test_cpu_fgsm_follows_the_reference_backend(random_state):
    x = random_state.random((6, 1, 2, 3)).astype(np.float32)
    y = random_state.integers(0, 3, 6)
    np.testing.assert_array_equal(fgsm(softmax_regression("cpu"), x, y, 0.1, batch_size=4),
                                  fgsm(softmax_regression(), x, y, 0.1, batch_size=4))


def test_loss_and_gradient_in_evaluation_mode_ignores_dropout(random_state):
    x = random_state.random((5, 1, 2, 3)).astype(np.float32)
    y = random_state.integers(0, 3, 5)
    with_dropout = softmax_regression(extra=(Dropout(0.5),))
    plain = softmax_regression()
    plain.set_weights(with_dropout.get_weights())
    loss, grad = with_dropout.loss_and_gradient(x, y, input_gradient=True, training=False)
    expected_loss, expected = plain.loss_and_gradient(x, y, input_gradient=True)
    assert loss == pytest.approx(expected_loss)
    np.testing.assert_allclose(grad, expected, atol=1e-7)
    trained_loss, _ = with_dropout.loss_and_gradient(x, y, input_gradient=True)
    assert trained_loss != pytest.approx(expected_loss)


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_adversarial_training_steps_along_the_weighted_clean_and_adversarial_gradients(
        backend, random_state):
    x = random_state.random((8, 1, 2, 3)).astype(np.float32)
    y = random_state.integers(0, 3, 8)
    model = softmax_regression(backend)
    twin = softmax_regression(backend)
    # by hand: the gradient of the clean batch and of its FGSM examples (training mode)
    _, grad_x = twin.loss_and_gradient(x, y, input_gradient=True)
    clean = [np.array(twin.backend.to_numpy(p.grad)) for p in twin.parameters]
    x_adv = fgsm_reference(x, grad_x, 0.1, float(x.min()), float(x.max()))
    twin.loss_and_gradient(x_adv, y)
    adversarial = [np.array(twin.backend.to_numpy(p.grad)) for p in twin.parameters]
    before = model.get_weights()
    model.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0, adversarial=0.1,
              adversarial_weight=0.3)
    for old, new, g, g_adv in zip(before, model.get_weights(), clean, adversarial):
        np.testing.assert_allclose(new, old - 0.1 * (0.3 * g + 0.7 * g_adv), rtol=1e-5,
                                   atol=1e-7)
    assert model.training_record_["fit"]["adversarial"] == 0.1


def test_adversarial_training_reports_the_clean_examples_loss(random_state):
    x = random_state.random((8, 1, 2, 3)).astype(np.float32)
    y = random_state.integers(0, 3, 8)
    model = softmax_regression()
    clean_loss = model.loss_and_gradient(x, y)
    history = model.fit(x, y, epochs=1, batch_size=8, verbose=0, adversarial=0.2)
    assert history.history["loss"][0] == pytest.approx(clean_loss)


def test_adversarial_training_makes_a_network_more_robust_to_fgsm():
    rs = np.random.default_rng(3)
    y = rs.integers(0, 3, 240)
    centres = rs.random((3, 6)).astype(np.float32)
    x = np.clip(centres[y] + 0.15 * rs.standard_normal((240, 6)), 0, 1).astype(np.float32)
    x = x.reshape(-1, 1, 2, 3)
    errors = {}
    for epsilon in (0.0, 0.2):
        model = softmax_regression()
        model.compile("cross_entropy", SGD(0.1, momentum=0.9))
        model.fit(x, y, epochs=30, batch_size=16, verbose=0, adversarial=epsilon)
        attacked = fgsm(model, x, y, 0.2, clip=(0.0, 1.0))
        errors[epsilon] = np.mean(model.predict_classes(attacked) != y)
    assert errors[0.2] < errors[0.0] - 0.05


def test_adversarial_training_refuses_an_augmenting_network(random_state):
    model = softmax_regression(extra=(ImageAugmentation(1),))
    x = random_state.random((4, 1, 2, 3)).astype(np.float32)
    with pytest.raises(ValueError, match="ImageAugmentation"):
        model.fit(x, [0, 1, 2, 0], epochs=1, verbose=0, adversarial=0.1)
    assert model.epochs_done == 0


@pytest.mark.parametrize("options, words", [
    ({"adversarial": -0.1}, "adversarial must be in"),
    ({"adversarial": 0.1, "adversarial_weight": 1.5}, "adversarial_weight must be in"),
])
def test_bad_adversarial_options_are_one_line_errors(options, words, random_state):
    x = random_state.random((4, 1, 2, 3)).astype(np.float32)
    with pytest.raises(ValueError, match=words):
        softmax_regression().fit(x, [0, 1, 2, 0], epochs=1, verbose=0, **options)


def test_bad_fgsm_clip_is_a_one_line_error(random_state):
    x = random_state.random((2, 1, 2, 3)).astype(np.float32)
    with pytest.raises(ValueError, match="clip must be"):
        fgsm(softmax_regression(), x, [0, 1], 0.1, clip=(1.0, 0.0))


def test_the_update_object_checks_its_settings():
    with pytest.raises(ValueError, match="adversarial must be in"):
        AdversarialTraining(0.0, 0.5, 0.0, 1.0)
