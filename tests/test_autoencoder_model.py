"""The autoencoder's NumPy reference (dlcore/autoencoder/model.py and corruption.py).

Oracles: central finite differences of the cost J (the gradient check of lecture "Supervised
learning", "Good To Know") for every loss, output and hidden activation, tied or untied
weights, with and without the sparsity penalty; hand-written identities (the tied gradient is
the sum of the encoder's and the decoder's uses; the KL penalty vanishes at its target); the
raw Philox numbers of dlcore.backend.rng for the corruption."""
import itertools

import numpy as np
import pytest

from dlcore.autoencoder import corruption, model
from dlcore.backend import rng

N, N_VISIBLE, N_HIDDEN = 4, 5, 3
#: (loss, decoder activation): every pair the Autoencoder accepts.
OUTPUTS = [("cross_entropy", "sigmoid"), ("mse", "sigmoid"), ("mse", "linear")]
SPARSITY = [(None, 0.0), (0.2, 0.7)]


def parameters(tied, seed=0):
    draw = np.random.default_rng(seed)
    values = {"W": draw.normal(0, 0.5, (N_VISIBLE, N_HIDDEN)),
              "hidden_bias": draw.normal(0, 0.3, N_HIDDEN),
              "visible_bias": draw.normal(0, 0.3, N_VISIBLE)}
    if not tied:
        values["W_decoder"] = draw.normal(0, 0.5, (N_HIDDEN, N_VISIBLE))
    return values


def batch(seed=1):
    draw = np.random.default_rng(seed)
    x = draw.uniform(0.05, 0.95, (N, N_VISIBLE))
    return x, np.clip(x + draw.normal(0, 0.2, x.shape), 0, 1)


def finite_differences(options, x, x_tilde, values, epsilon=1e-6):
    gradients = {}
    for name, array in values.items():
        numeric = np.empty(array.size)
        flat = array.reshape(-1)
        for i in range(array.size):
            saved = flat[i]
            flat[i] = saved + epsilon
            plus = model.cost(x, x_tilde, values, **options)
            flat[i] = saved - epsilon
            minus = model.cost(x, x_tilde, values, **options)
            flat[i] = saved
            numeric[i] = (plus - minus) / (2 * epsilon)
        gradients[name] = numeric.reshape(array.shape)
    return gradients


CASES = [(loss, output, hidden, tied, target, cost)
         for (loss, output), hidden, tied, (target, cost) in itertools.product(
             OUTPUTS, model.ENCODER_ACTIVATIONS, (True, False), SPARSITY)
         if target is None or hidden == "sigmoid"]


@pytest.mark.parametrize("loss, output, hidden, tied, target, cost", CASES)
def test_backpropagation_matches_finite_differences_of_the_cost(loss, output, hidden,
                                                                tied, target, cost):
    options = {"tied": tied, "activation": hidden, "decoder_activation": output, "loss": loss,
               "sparsity_target": target, "sparsity_cost": cost}
    x, x_tilde = batch()
    values = parameters(tied)
    analytic = model.gradients(x, x_tilde, values, **options)
    numeric = finite_differences(options, x, x_tilde, values)
    assert set(analytic) == set(values)
    for name in values:
        difference = np.linalg.norm(analytic[name] - numeric[name])
        relative = difference / max(np.linalg.norm(analytic[name]) + np.linalg.norm(
            numeric[name]), 1e-300)
        assert relative < 1e-6, (name, relative)


def test_every_combination_the_estimator_accepts_is_checked():
    assert len(CASES) == 3 * 2 * (4 + 1)


@pytest.mark.parametrize("loss, output", OUTPUTS)
def test_the_tied_gradient_is_the_encoders_plus_the_decoders_use_of_w(loss, output):
    options = {"activation": "sigmoid", "decoder_activation": output, "loss": loss}
    x, x_tilde = batch()
    tied = parameters(tied=True)
    untied = dict(tied, W_decoder=tied["W"].T.copy())
    g_tied = model.gradients(x, x_tilde, tied, tied=True, **options)
    g_untied = model.gradients(x, x_tilde, untied, tied=False, **options)
    np.testing.assert_allclose(g_tied["W"], g_untied["W"] + g_untied["W_decoder"].T,
                               rtol=1e-12)


def test_cross_entropy_through_a_sigmoid_gives_r_minus_x():
    x = np.array([[0.0, 1.0, 0.25]])
    r = np.array([[0.5, 0.75, 0.25]])
    np.testing.assert_array_equal(model.output_delta(x, r, "cross_entropy", "sigmoid"),
                                  [[0.5, -0.25, 0.0]])
    np.testing.assert_allclose(model.reconstruction_loss(x, r, "cross_entropy"),
                               [-np.log(0.5) - np.log(0.75)
                                - (0.25 * np.log(0.25) + 0.75 * np.log(0.75))])
    np.testing.assert_allclose(model.output_delta(x, r, "mse", "sigmoid"),
                               2 * (r - x) * r * (1 - r))


def test_the_kl_penalty_is_zero_at_its_target_and_positive_elsewhere():
    h = np.full((6, 2), 0.1)
    assert model.unit_kl(h, 0.1) == pytest.approx([0.0, 0.0], abs=1e-15)
    np.testing.assert_allclose(model.kl_sparsity_gradient(h, 0.1), 0.0, atol=1e-12)
    h[:, 1] = 0.4
    kl = model.unit_kl(h, 0.1)
    assert kl[0] == pytest.approx(0.0, abs=1e-15)
    assert kl[1] == pytest.approx(0.1 * np.log(0.1 / 0.4) + 0.9 * np.log(0.9 / 0.6))


# -- corruption q(x~ | x) ------------------------------------------------------------------
X = np.random.default_rng(3).uniform(0.1, 0.9, (40, 27)).astype(np.float32)


def test_masking_zeroes_the_inputs_whose_philox_uniform_is_below_the_level():
    u = rng.uniform(40, 27, 5, rng.STREAM_CORRUPT, 9)
    got = corruption.corrupt(X, "masking", 0.3, seed=5, step=9)
    np.testing.assert_array_equal(got, np.where(u < np.float32(0.3), 0.0, X))
    assert 0.2 < np.mean(got == 0) < 0.4


def test_salt_and_pepper_sets_a_fraction_to_zero_or_one_by_a_fair_coin():
    u = rng.uniform(40, 27, 5, rng.STREAM_CORRUPT, 2)
    got = corruption.corrupt(X, "salt_and_pepper", 0.5, seed=5, step=2)
    np.testing.assert_array_equal(got[u < 0.25], 0.0)
    np.testing.assert_array_equal(got[(u >= 0.25) & (u < 0.5)], 1.0)
    np.testing.assert_array_equal(got[u >= 0.5], X[u >= 0.5])


def test_gaussian_corruption_adds_philox_normals_of_the_given_deviation():
    z = rng.normal(40, 27, 5, rng.STREAM_CORRUPT, 4)
    got = corruption.corrupt(X, "gaussian", 0.2, seed=5, step=4)
    np.testing.assert_allclose(got, X + 0.2 * z, rtol=1e-6)
    assert abs(np.std(got - X) - 0.2) < 0.02


@pytest.mark.parametrize("kind", corruption.CORRUPTION_KINDS)
def test_corruption_level_zero_leaves_the_input_and_each_step_draws_afresh(kind):
    np.testing.assert_array_equal(corruption.corrupt(X, kind, 0.0, 1, 0), X)
    first = corruption.corrupt(X, kind, 0.3, 1, 0)
    np.testing.assert_array_equal(first, corruption.corrupt(X, kind, 0.3, 1, 0))
    assert not np.array_equal(first, corruption.corrupt(X, kind, 0.3, 1, 1))
