"""The Gaussian-Bernoulli RBM. Oracles: brute-force sums over hidden states, numerical
integration over the visible units, the CD gradients written out in NumPy, the reference
backend, and a generating model whose parameters we know."""
import itertools
import warnings

import numpy as np
import pytest
from scipy import integrate

import dlcore
from conftest import requires_cuda
from dlcore import GaussianBernoulliRBM
from dlcore.backend import get_backend, rng
from dlcore.rbm import gaussian_exact_log_partition, model
from dlcore.rbm.trainer import ContrastiveDivergence
from dlcore.rbm.units import GaussianVisible, gaussian_visible_step, scale_columns
from test_rbm_training import fresh_state, settings

ALL_BACKENDS = ["reference", "cpu", pytest.param("cuda", marks=requires_cuda)]
KERNEL_BACKENDS = ["cpu", pytest.param("cuda", marks=requires_cuda)]


def all_states(n):
    return np.array(list(itertools.product([0.0, 1.0], repeat=n)))


@pytest.fixture
def parameters(random_state):
    """W (5, 3), b, c and sigma of a small Gaussian-Bernoulli RBM, float64."""
    return (random_state.normal(0, 1, (5, 3)), random_state.normal(0, 1, 5),
            random_state.normal(0, 1, 3), random_state.uniform(0.5, 2.0, 5))


def test_free_energy_is_minus_log_of_the_sum_over_hidden_states(parameters, random_state):
    W, b, c, sigma = parameters
    v = random_state.normal(0, 2, (7, 5))
    energies = np.array([[model.gaussian_energy(row[None], h[None], W, b, c, sigma)[0]
                          for h in all_states(3)] for row in v])
    np.testing.assert_allclose(model.gaussian_free_energy(v, W, b, c, sigma),
                               -np.logaddexp.reduce(-energies, axis=1), rtol=1e-10)


def test_hidden_conditional_is_the_ratio_of_joint_probabilities(parameters, random_state):
    W, b, c, sigma = parameters
    v = random_state.normal(0, 1, (1, 5))
    hidden = all_states(3)
    joint = np.exp(-np.array([model.gaussian_energy(v, h[None], W, b, c, sigma)[0]
                              for h in hidden]))
    marginal_on = (joint[:, None] * hidden).sum(axis=0) / joint.sum()
    np.testing.assert_allclose(model.gaussian_hidden_probability(v, W, c, sigma)[0],
                               marginal_on, rtol=1e-10)


def test_visible_conditional_is_the_gaussian_with_the_stated_mean_and_variance(
        parameters, random_state):
    # exp(-E(v, h)) / exp(-E(v', h)) must equal N(v; mu, sigma^2) / N(v'; mu, sigma^2)
    W, b, c, sigma = parameters
    h = np.array([[1.0, 0.0, 1.0]])
    mean = model.gaussian_visible_mean(h, W, b, sigma)
    np.testing.assert_allclose(mean[0], b + sigma * (W @ h[0]), rtol=1e-12)
    v, v_other = random_state.normal(0, 2, (2, 1, 5))
    energy_difference = (model.gaussian_energy(v, h, W, b, c, sigma)
                         - model.gaussian_energy(v_other, h, W, b, c, sigma))[0]
    log_density = lambda x: (-((x - mean) / sigma) ** 2 / 2).sum()  # noqa: E731
    assert -energy_difference == pytest.approx(log_density(v) - log_density(v_other),
                                               rel=1e-10)


def test_exact_log_partition_matches_numerical_integration_over_the_visible_units():
    W = np.array([[0.8, -1.2]])
    b, c, sigma = np.array([0.3]), np.array([-0.5, 0.4]), np.array([1.7])
    density, _ = integrate.quad(
        lambda x: np.exp(-model.gaussian_free_energy(np.array([[x]]), W, b, c, sigma)[0]),
        -np.inf, np.inf)
    assert gaussian_exact_log_partition(W, b, c, sigma) == pytest.approx(np.log(density),
                                                                         rel=1e-9)


def test_estimator_facade_uses_the_visible_sigma(parameters, random_state):
    W, b, c, sigma = parameters
    rbm = GaussianBernoulliRBM(n_hidden=3, epochs=0, backend="reference").fit(
        random_state.normal(size=(4, 5)))
    rbm.W, rbm.visible_bias, rbm.hidden_bias, rbm.visible_sigma = (
        a.astype(np.float32) for a in (W, b, c, sigma))
    v = random_state.normal(0, 1, (6, 5)).astype(np.float32)
    expected_hidden = model.gaussian_hidden_probability(v, W, c, sigma)
    np.testing.assert_allclose(rbm.transform(v), expected_hidden, rtol=1e-5)
    np.testing.assert_allclose(rbm.reconstruct(v),
                               model.gaussian_visible_mean(expected_hidden, W, b, sigma),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(rbm.free_energy(v), model.gaussian_free_energy(v, W, b, c, sigma),
                               rtol=1e-5)


# -- training ---------------------------------------------------------------------------------
@pytest.mark.parametrize("backend_name", ALL_BACKENDS)
def test_one_cd1_step_with_learned_sigma_is_the_gradient_written_out(backend_name,
                                                                     random_state):
    W = random_state.normal(0, 0.5, (5, 3))
    b, c = random_state.normal(0, 0.5, 5), random_state.normal(0, 0.5, 3)
    sigma = random_state.uniform(0.6, 1.5, 5)
    x1 = random_state.normal(0, 1, (4, 5)).astype(np.float32).astype(np.float64)
    eps, eps_sigma, seed, update = 0.05, 0.02, 99, 3

    # h1 ~ Q(h | x1); x2 ~ N(b + sigma W h1, sigma^2); Q(h2 = 1 | x2), with the trainer's draws
    q1 = model.gaussian_hidden_probability(x1, W, c, sigma)
    h1 = (rng.uniform(4, 3, seed, rng.STREAM_GIBBS, update) < q1).astype(float)
    x2 = (model.gaussian_visible_mean(h1, W, b, sigma)
          + sigma * rng.normal(4, 5, seed, rng.STREAM_GIBBS + 1, update))
    q2 = model.gaussian_hidden_probability(x2, W, c, sigma)
    # data minus model statistics of -dE/dtheta, averaged over the batch
    W_new = W + eps * ((x1 / sigma).T @ h1 - (x2 / sigma).T @ q2) / 4
    b_new = b + eps * (x1 - x2).mean(axis=0) / sigma ** 2

    def minus_dE_dlogsigma(v, h):
        return ((v - b) / sigma) ** 2 - (v / sigma) * (h @ W.T)
    log_sigma_new = np.log(sigma) + eps_sigma * (minus_dE_dlogsigma(x1, h1)
                                                 - minus_dE_dlogsigma(x2, q2)).mean(axis=0)
    c_new = c + eps * (h1 - q2).mean(axis=0)

    backend = get_backend(backend_name)
    f32 = lambda a: np.array(a, np.float32)  # noqa: E731
    units = GaussianVisible(backend, f32(sigma), learn_sigma=True,
                            sigma_learning_rate=eps_sigma)
    trainer = ContrastiveDivergence(backend, {"W": f32(W), "visible_bias": f32(b),
                                              "hidden_bias": f32(c)},
                                    fresh_state(5, 3),
                                    settings(learning_rate=eps, batch_size=4, seed=seed), units)
    with backend.compute():
        trainer.step(backend.asarray(f32(x1)), update)
    learned, state = trainer.download()
    np.testing.assert_allclose(learned["W"], W_new, atol=2e-5)
    np.testing.assert_allclose(learned["visible_bias"], b_new, atol=2e-5)
    np.testing.assert_allclose(learned["hidden_bias"], c_new, atol=2e-5)
    np.testing.assert_allclose(np.log(learned["visible_sigma"]), log_sigma_new, atol=2e-5)
    assert state["velocity_log_sigma"].shape == (5,)


@pytest.mark.parametrize("backend_name", KERNEL_BACKENDS)
def test_fused_gaussian_operations_match_their_numpy_reference(backend_name, random_state):
    backend, reference = get_backend(backend_name), get_backend("reference")
    x1, x2, u1, u2 = random_state.normal(0, 1, (4, 6, 5)).astype(np.float32)
    vectors = [random_state.uniform(0.5, 1.5, 5).astype(np.float32) for _ in range(4)]
    results = {}
    for be in (backend, reference):
        bias, sigma, velocity_bias, velocity_log_sigma = (be.asarray(a.copy()) for a in vectors)
        scaled = be.empty((6, 5))
        scale_columns(be, be.asarray(x1), sigma, scaled)
        gaussian_visible_step(be, *(be.asarray(a) for a in (x1, x2, u1, u2)), bias, sigma,
                              velocity_bias, velocity_log_sigma, 0.1, 0.05, 0.5, np.log(0.9),
                              True)
        results[be.name] = [be.to_numpy(a) for a in (scaled, bias, sigma, velocity_bias,
                                                     velocity_log_sigma)]
    for got, expected in zip(results[backend_name], results["reference"]):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert results["reference"][2].min() >= 0.9 * (1 - 1e-6)  # the floor min_sigma holds


@pytest.mark.parametrize("backend_name", KERNEL_BACKENDS)
@pytest.mark.parametrize("options", [{"learn_sigma": True, "momentum": 0.9},
                                     {"persistent": True, "cd_k": 2, "sigma": 0.7}])
def test_kernel_backends_train_like_the_reference(backend_name, options, random_state):
    X = random_state.normal(0, 1, (16, 6)).astype(np.float32)
    common = dict(n_hidden=4, epochs=1, batch_size=8, seed=5, learning_rate=0.05, **options)
    expected = GaussianBernoulliRBM(backend="reference", **common).fit(X)
    got = GaussianBernoulliRBM(backend=backend_name, **common).fit(X)
    for name in ("W", "visible_bias", "hidden_bias", "visible_sigma"):
        np.testing.assert_allclose(getattr(got, name), getattr(expected, name), atol=5e-5)


def known_model_data(n=2000, seed=0):
    """Rows drawn exactly from a 12-visible, 3-hidden Gaussian-Bernoulli RBM: h from its
    marginal p(h) (8 states, enumerated), then v ~ N(b + sigma W h, sigma^2). Each hidden unit
    drives its own 4 visible units with weights +-2, and its bias makes it on half of the time,
    so the data vary well beyond sigma."""
    generator = np.random.default_rng(seed)
    W = np.kron(np.eye(3), np.ones((4, 1))) * generator.choice([-2.0, 2.0], size=(12, 1))
    b, sigma = generator.normal(0, 0.5, 12), generator.uniform(0.5, 1.5, 12)
    c = -((W ** 2).sum(axis=0) / 2 + (b / sigma) @ W)
    states = all_states(3)
    log_p = -model.gaussian_free_energy_of_hidden(states, W, b, c, sigma)
    p = np.exp(log_p - log_p.max())
    h = states[generator.choice(len(states), size=n, p=p / p.sum())]
    X = model.gaussian_visible_mean(h, W, b, sigma) + sigma * generator.normal(size=(n, 12))
    return X.astype(np.float32), sigma


def test_training_on_data_from_a_known_model_lowers_the_reconstruction_error():
    X, _ = known_model_data()
    rbm = GaussianBernoulliRBM(n_hidden=3, epochs=0, seed=1, backend="cpu").fit(X)
    before = float(np.mean((X - rbm.reconstruct(X)) ** 2))
    rbm.set_params(epochs=10).fit(X)
    after = float(np.mean((X - rbm.reconstruct(X)) ** 2))
    assert after < 0.8 * before, (before, after)
    assert rbm.history["reconstruction_error"][-1] < rbm.history["reconstruction_error"][0]


def test_learned_sigma_recovers_the_standard_deviations_of_the_generating_model():
    X, true_sigma = known_model_data()
    rbm = GaussianBernoulliRBM(n_hidden=3, learning_rate=0.05, learn_sigma=True,
                               sigma_learning_rate=0.005, epochs=30, seed=1,
                               backend="cpu").fit(X)
    # CD-1 leaves a bias of a few per cent; the data's own standard deviation is ~40 % off
    np.testing.assert_allclose(rbm.visible_sigma, true_sigma, rtol=0.15)
    assert np.mean(np.abs(rbm.visible_sigma / true_sigma - 1)) < 0.08
    assert np.min(X.std(axis=0) / true_sigma) > 1.3


def test_learning_sigma_without_sampling_the_visible_units_is_refused():
    # issue 10: refused at fit (scikit-learn's rule: __init__ only stores), was at construction
    rbm = GaussianBernoulliRBM(learn_sigma=True, sample_visible=False)
    with pytest.raises(ValueError, match="sample_visible"):
        rbm.fit(np.zeros((4, 3), np.float32))


def test_save_and_load_round_trip_resumes_training_exactly(tmp_path, random_state):
    X = random_state.normal(0, 1, (40, 6)).astype(np.float32)
    common = dict(n_hidden=4, batch_size=10, seed=3, learn_sigma=True, backend="cpu")
    straight = GaussianBernoulliRBM(epochs=2, **common).fit(X)
    first = GaussianBernoulliRBM(epochs=1, **common).fit(X)
    dlcore.save(first, tmp_path / "gaussian.h5")
    resumed = dlcore.load(tmp_path / "gaussian.h5")
    assert isinstance(resumed, GaussianBernoulliRBM) and resumed.sigma == 1.0
    resumed.partial_fit(X)
    for name in ("W", "visible_bias", "hidden_bias", "visible_sigma"):
        np.testing.assert_array_equal(getattr(resumed, name), getattr(straight, name))


def test_free_energy_gap_monitor_is_finite_with_held_out_data(random_state):
    X = random_state.normal(0, 1, (60, 5)).astype(np.float32)
    rbm = GaussianBernoulliRBM(n_hidden=3, epochs=2, batch_size=10, backend="cpu")
    rbm.fit(X[:40], X_valid=X[40:])
    assert np.isfinite(rbm.history["free_energy_gap"]).all()


def test_score_beyond_the_exact_limit_says_how_to_measure_instead():
    # GridSearchCV(GaussianBernoulliRBM(), {"n_hidden": [16, 64]}) without scoring= reported
    # "use a smaller RBM" for the 64-unit candidate
    X = np.random.default_rng(0).normal(size=(20, 3))
    rbm = GaussianBernoulliRBM(n_hidden=25, epochs=1, batch_size=10).fit(X)
    with pytest.raises(ValueError, match=r"at most 24 hidden units, this one has 25; estimate "
                                         r"it with log_likelihood\(X\) \(AIS\), or give "
                                         r"GridSearchCV or cross_val_score a scoring="):
        rbm.score(X)


def test_unscaled_pixels_are_warned_of_once_with_the_fix_and_standardised_ones_are_not():
    # 0-255 pixels against sigma = 1 trained silently to reconstruction errors in the thousands
    pixels = np.random.default_rng(0).integers(0, 256, (60, 12)).astype(np.uint8)
    with pytest.warns(UserWarning, match=r"standard deviation of 7\d\.\d.*sigma=1: standardise "
                                         r"each column first \(scikit-learn's StandardScaler") \
            as caught:
        GaussianBernoulliRBM(n_hidden=3, epochs=2, backend="reference").fit(pixels)
    assert len(caught) == 1 and caught[0].filename == __file__
    standardised = (pixels - pixels.mean(axis=0)) / pixels.std(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        GaussianBernoulliRBM(n_hidden=3, epochs=1, backend="reference").fit(standardised)
        GaussianBernoulliRBM(n_hidden=3, epochs=1, backend="reference").fit(pixels / 255)
        # a wider sigma is a model of wider columns: silent too
        GaussianBernoulliRBM(n_hidden=3, epochs=1, sigma=50.0, backend="reference").fit(pixels)
