"""The RBM's maths against closed forms and brute-force sums, and its sampling methods."""
import itertools

import numpy as np
import pytest

from conftest import requires_cuda
from dlcore import BernoulliRBM
from dlcore.rbm import model


@pytest.fixture
def tiny_rbm(random_state):
    """A fitted 6x4 RBM whose parameters are then replaced by random ones."""
    X = (random_state.random((40, 6)) < 0.4).astype(np.float32)
    rbm = BernoulliRBM(n_hidden=4, epochs=1, batch_size=8, backend="cpu").fit(X)
    rbm.W = random_state.normal(0, 1, (6, 4)).astype(np.float32)
    rbm.visible_bias = random_state.normal(0, 1, 6).astype(np.float32)
    rbm.hidden_bias = random_state.normal(0, 1, 4).astype(np.float32)
    return rbm


def all_states(n):
    return np.array(list(itertools.product([0.0, 1.0], repeat=n)))


def parameters64(rbm):
    return [np.asarray(a, np.float64) for a in (rbm.W, rbm.visible_bias, rbm.hidden_bias)]


def test_free_energy_is_minus_log_of_the_sum_over_hidden_states(tiny_rbm):
    W, b, c = parameters64(tiny_rbm)
    visible = all_states(6)
    hidden = all_states(4)
    energies = np.array([[model.energy(v[None], h[None], W, b, c)[0] for h in hidden]
                         for v in visible])
    brute_force = -np.logaddexp.reduce(-energies, axis=1)
    np.testing.assert_allclose(tiny_rbm.free_energy(visible), brute_force, rtol=1e-9)


def test_transform_is_the_hidden_conditional(tiny_rbm):
    visible = all_states(6)[::5].astype(np.float32)
    W, b, c = parameters64(tiny_rbm)
    expected = 1 / (1 + np.exp(-(visible @ W + c)))
    np.testing.assert_allclose(tiny_rbm.transform(visible), expected, rtol=1e-5)
    assert tiny_rbm.transform(visible).dtype == np.float32


def test_the_slide_rbm_weight_update_read_with_its_own_letters_gives_the_conditionals(
        tiny_rbm):
    # the slide "RBM Weight Update" indexes hidden units by i and visible units by j, the other
    # way round from "Learning an RBM" and from W's storage: the model's docstring must say so
    # (a student reading W_ij on both finds opposite units) and the mapping it gives must hold
    doc = model.__doc__
    assert "its W_ij, from visible unit j to hidden unit i, is our ``W[j, i]``" in doc
    assert "Q(h_1i = 1 | x_1) = sigm(c_i + sum_j W_ij x_1j)" in doc
    assert "P(x_2j = 1 | h_1) = sigm(b_j + sum_i W_ij h_1i)" in doc
    W, b, c = parameters64(tiny_rbm)
    slide_W = W.T                                   # slide_W[i, j]: hidden i, visible j
    x1, h1 = all_states(6)[7], all_states(4)[5]
    for i in range(4):
        q = 1 / (1 + np.exp(-(c[i] + sum(slide_W[i, j] * x1[j] for j in range(6)))))
        assert model.hidden_probability(x1[None], W, c)[0, i] == pytest.approx(q, rel=1e-12)
    for j in range(6):
        p = 1 / (1 + np.exp(-(b[j] + sum(slide_W[i, j] * h1[i] for i in range(4)))))
        assert model.visible_probability(h1[None], W, b)[0, j] == pytest.approx(p, rel=1e-12)


def test_hidden_conditional_matches_ratio_of_joint_probabilities(tiny_rbm):
    W, b, c = parameters64(tiny_rbm)
    v = np.array([[1, 0, 1, 1, 0, 0]], float)
    hidden = all_states(4)
    joint = np.exp(-np.array([model.energy(v, h[None], W, b, c)[0] for h in hidden]))
    marginal_on = (joint[:, None] * hidden).sum(axis=0) / joint.sum()
    np.testing.assert_allclose(model.hidden_probability(v, W, c)[0], marginal_on, rtol=1e-9)


def test_score_samples_is_the_exact_pseudo_log_likelihood(tiny_rbm):
    visible = all_states(6)[[3, 17, 40, 63]]
    W, b, c = parameters64(tiny_rbm)
    expected = []
    for v in visible:
        total = 0.0
        for i in range(6):
            flipped = v.copy()
            flipped[i] = 1 - flipped[i]
            f_v = model.free_energy(v[None], W, b, c)[0]
            f_flip = model.free_energy(flipped[None], W, b, c)[0]
            total += -np.logaddexp(0, -(f_flip - f_v))   # log sigm(F(flip) - F(v))
        expected.append(total)
    np.testing.assert_allclose(tiny_rbm.score_samples(visible), expected, rtol=1e-9)


def test_reconstruct_is_one_mean_field_up_down_pass(tiny_rbm):
    visible = all_states(6)[::7].astype(np.float32)
    W, b, c = parameters64(tiny_rbm)
    hidden = 1 / (1 + np.exp(-(visible @ W + c)))
    expected = 1 / (1 + np.exp(-(hidden @ W.T + b)))
    np.testing.assert_allclose(tiny_rbm.reconstruct(visible), expected, rtol=1e-5)


def test_reconstruct_with_sampled_hidden_units_differs_but_stays_a_probability(tiny_rbm):
    visible = all_states(6).astype(np.float32)
    sampled = tiny_rbm.reconstruct(visible, sample_hidden=True)
    assert sampled.shape == visible.shape and 0 <= sampled.min() and sampled.max() <= 1
    assert not np.allclose(sampled, tiny_rbm.reconstruct(visible))


def test_gibbs_returns_binary_samples_and_successive_calls_differ(tiny_rbm):
    start = np.zeros((50, 6), np.float32)
    first, second = tiny_rbm.gibbs(start, steps=3), tiny_rbm.gibbs(start, steps=3)
    assert set(np.unique(first)) <= {0.0, 1.0} and first.shape == (50, 6)
    assert not np.array_equal(first, second)


def test_gibbs_zero_steps_returns_the_start(tiny_rbm):
    start = all_states(6)[:5].astype(np.float32)
    np.testing.assert_array_equal(tiny_rbm.gibbs(start, steps=0), start)


@pytest.mark.parametrize("backend_name", ["reference", pytest.param("cuda", marks=requires_cuda)])
def test_gibbs_samples_are_identical_across_backends(tiny_rbm, backend_name):
    start = all_states(6)[::9].astype(np.float32)
    on_cpu = tiny_rbm.gibbs(start, steps=1)
    tiny_rbm.sample_calls_ -= 1          # replay the same call on the other backend
    tiny_rbm.backend = backend_name
    np.testing.assert_array_equal(tiny_rbm.gibbs(start, steps=1), on_cpu)


def test_long_gibbs_chains_visit_states_in_proportion_to_their_probability(tiny_rbm):
    from dlcore.rbm import exact_log_partition
    W, b, c = parameters64(tiny_rbm)
    log_z = exact_log_partition(W, b, c)
    states = all_states(6)
    exact = np.exp(-model.free_energy(states, W, b, c) - log_z)
    samples = tiny_rbm.gibbs(np.zeros((4000, 6), np.float32), steps=30)
    codes = samples @ (2 ** np.arange(5, -1, -1))
    empirical = np.bincount(codes.astype(int), minlength=64) / len(samples)
    assert 0.5 * np.abs(empirical - exact).sum() < 0.06   # total variation distance
