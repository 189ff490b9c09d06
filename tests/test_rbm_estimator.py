"""BernoulliRBM as a scikit-learn estimator, its input checks, and its model files."""
import copy
import inspect
import pickle

import numpy as np
import pytest

import dlcore
from dlcore import BernoulliRBM
from dlcore.backend import rng


@pytest.fixture
def digits_like(random_state):
    return (random_state.random((60, 12)) < 0.3).astype(np.float32)


def test_fit_returns_self_and_sets_the_documented_attributes(digits_like):
    rbm = BernoulliRBM(n_hidden=5, epochs=1, batch_size=10, backend="cpu")
    assert rbm.fit(digits_like) is rbm
    assert rbm.W.shape == (12, 5) and rbm.W.dtype == np.float32
    assert rbm.visible_bias.shape == (12,) and rbm.hidden_bias.shape == (5,)
    assert rbm.transform(digits_like).shape == (60, 5)
    assert rbm.n_features_in_ == 12


def test_initialisation_follows_hintons_guide(digits_like):
    rbm = BernoulliRBM(n_hidden=300, epochs=0, backend="cpu").fit(digits_like)
    assert abs(rbm.W.std() - 0.01) < 0.001 and abs(rbm.W.mean()) < 0.001
    assert not rbm.hidden_bias.any()
    p = np.clip(digits_like.mean(axis=0), 1e-4, 1 - 1e-4)
    np.testing.assert_allclose(rbm.visible_bias, np.log(p / (1 - p)), rtol=1e-5)


def test_get_and_set_params_round_trip():
    rbm = BernoulliRBM(n_hidden=7, learning_rate=0.05)
    params = rbm.get_params()
    assert params["n_hidden"] == 7 and params["learning_rate"] == 0.05
    assert rbm.set_params(cd_k=3, persistent=True) is rbm
    assert rbm.cd_k == 3 and rbm.persistent
    with pytest.raises(ValueError, match="invalid parameter 'hidden'"):
        rbm.set_params(hidden=3)


def test_repr_shows_the_parameters_that_differ_from_the_defaults():
    assert (repr(BernoulliRBM(n_hidden=7, backend="cpu"))
            == "BernoulliRBM(n_hidden=7, backend='cpu')")


def test_partial_fit_continues_where_fit_stopped(digits_like):
    rbm = BernoulliRBM(n_hidden=4, epochs=2, batch_size=10, backend="cpu").fit(digits_like)
    rbm.partial_fit(digits_like)
    assert rbm.epochs_done_ == 3 and len(rbm.history["reconstruction_error"]) == 3
    assert rbm.n_updates_ == 18


def test_initialize_starts_where_fit_starts_and_partial_fit_trains_on_from_it(digits_like):
    started = BernoulliRBM(n_hidden=4, epochs=2, batch_size=10, backend="cpu")
    assert started.initialize(digits_like) is started
    assert started.epochs_done_ == 0 and started.history["reconstruction_error"] == []
    assert started.get_params()["epochs"] == 2                 # no hyperparameter touched
    untrained = BernoulliRBM(n_hidden=4, epochs=0, batch_size=10, backend="cpu").fit(digits_like)
    for name in ("W", "visible_bias", "hidden_bias"):
        np.testing.assert_array_equal(getattr(started, name), getattr(untrained, name))
    started.partial_fit(digits_like)
    started.partial_fit(digits_like)
    fitted = BernoulliRBM(n_hidden=4, epochs=2, batch_size=10, backend="cpu").fit(digits_like)
    np.testing.assert_array_equal(started.W, fitted.W)


@pytest.mark.parametrize("backend_name", ["reference", "cpu"])
def test_transform_with_sample_draws_states_from_its_philox_counter(digits_like, backend_name):
    rbm = BernoulliRBM(n_hidden=5, epochs=1, batch_size=10, seed=9,
                       backend=backend_name).fit(digits_like)
    probabilities = rbm.transform(digits_like)
    states = rbm.transform(digits_like, sample=True, seed=4, stream=rng.STREAM_SAMPLE + 7, step=2)
    u = rng.uniform(60, 5, 4, rng.STREAM_SAMPLE + 7, 2)
    np.testing.assert_array_equal(states, (u < probabilities).astype(np.float32))
    own_seed = (rng.uniform(60, 5, rbm.seed_, rng.STREAM_SAMPLE, 0) < probabilities)
    np.testing.assert_array_equal(rbm.transform(digits_like, sample=True, step=0), own_seed)


def test_transform_with_sample_continues_the_models_sequence_as_gibbs_does(digits_like):
    # each call draws fresh states (it repeated step 0's), so that their mean tends to Q(h | x)
    rbm = BernoulliRBM(n_hidden=5, epochs=1, batch_size=10, seed=9,
                       backend="cpu").fit(digits_like)
    probabilities = rbm.transform(digits_like)
    draws = [rbm.transform(digits_like, sample=True) for _ in range(400)]
    for call, states in enumerate(draws[:3], start=1):   # the call counter is the Philox step
        u = rng.uniform(60, 5, rbm.seed_, rng.STREAM_SAMPLE, call)
        np.testing.assert_array_equal(states, (u < probabilities).astype(np.float32))
    assert np.abs(np.mean(draws, axis=0) - probabilities).max() < 0.1   # 400 draws: 4.5 sd
    twin = BernoulliRBM(n_hidden=5, epochs=1, batch_size=10, seed=9,
                        backend="cpu").fit(digits_like)   # same seed, same calls: same draws
    for states in draws[:2]:
        np.testing.assert_array_equal(twin.transform(digits_like, sample=True), states)
    again = pickle.loads(pickle.dumps(rbm))               # the counter travels with the model
    np.testing.assert_array_equal(again.transform(digits_like, sample=True),
                                  rbm.transform(digits_like, sample=True))


def test_sklearn_clone_and_pipeline_with_a_classifier():
    sklearn = pytest.importorskip("sklearn")
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    X, y = dlcore.datasets.load_mnist_5k()
    X = dlcore.datasets.to_unit_interval(X)
    train, test = dlcore.datasets.holdout_split(y, 20, seed=0)
    rbm = BernoulliRBM(n_hidden=32, epochs=3, learning_rate=0.05, backend="cpu")
    assert clone(rbm).get_params() == rbm.get_params()
    pipeline = Pipeline([("rbm", rbm), ("classifier", LogisticRegression(max_iter=300))])
    pipeline.fit(X[train[::4]], y[train[::4]])
    assert pipeline.score(X[test], y[test]) > 0.6  # ten classes: chance is 0.1
    assert sklearn.__version__


BAD_DATA = [
    (np.zeros(12), "2-D"),
    (np.zeros((3, 4, 4)), "flatten"),
    (np.zeros((0, 12)), "empty"),
    (np.full((5, 12), np.nan), "NaN"),
    (np.full((5, 12), np.inf), "NaN or infinite"),
    # one bad value among good ones: the two-pass check (min, max) still finds and counts it
    (np.where(np.arange(60).reshape(5, 12) == 37, np.nan, 0.5), "contains 1 NaN or infinite"),
    (np.where(np.arange(60).reshape(5, 12) == 3, -np.inf, 0.5), "contains 1 NaN or infinite"),
    (np.full((5, 12), 255.0), r"\[0, 1\].*divide 8-bit images by 255"),
    # held-out rows through a MinMaxScaler fitted on others: no pixels, so no "/ 255"
    (np.linspace(0, 35.857, 60).reshape(5, 12),
     r"\[0.0, 35.857\]: scale it into \[0, 1\].*MinMaxScaler\(clip=True\)"),
    # standardised data (StandardScaler's): the fix, and the RBM made for real values
    (np.full((5, 12), -0.5), r"\[0, 1\].*MinMaxScaler\(clip=True\), not StandardScaler.*"
                             r"dlcore.GaussianBernoulliRBM"),
    (np.array([["a"] * 12]), "numbers"),
]


@pytest.mark.parametrize("data, message", BAD_DATA)
def test_bad_training_data_is_refused_with_a_clear_message(data, message):
    with pytest.raises(ValueError, match=message):
        BernoulliRBM(epochs=1, backend="cpu").fit(data)


def test_an_overshoot_is_printed_beyond_one_not_rounded_into_the_interval(digits_like):
    # "[0, 1]" printed to 5 digits looked inside
    X = digits_like.copy()
    X[0, 0] = np.float32(1.0000153)
    with pytest.raises(ValueError, match=r"got values in \[0.0, 1.0000153\]"):
        BernoulliRBM(epochs=1, backend="cpu").fit(X)


def test_a_float32_scalers_rounding_beyond_one_trains_as_the_clipped_data(digits_like):
    # a float32 MinMaxScaler leaves 1.0000001 (one rounding step), which fit refused
    X = digits_like.copy()
    X[0, 0], X[1, 1] = np.float32(1.0000001), np.float32(-6e-8)
    given = X.copy()
    rbm = BernoulliRBM(n_hidden=3, epochs=2, seed=1, backend="cpu").fit(X)
    clipped = BernoulliRBM(n_hidden=3, epochs=2, seed=1, backend="cpu").fit(np.clip(X, 0, 1))
    np.testing.assert_array_equal(rbm.W, clipped.W)
    np.testing.assert_array_equal(X, given)


def test_readmes_pipeline_scores_float32_data_scaled_by_a_minmax_scaler():
    pytest.importorskip("sklearn")
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler
    # seed 4: the scaler fitted on two of the three training folds gives them a 1.0000001
    X = np.random.default_rng(4).normal(size=(90, 6)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    assert sum(MinMaxScaler().fit_transform(X[train]).max() > 1
               for train, _ in StratifiedKFold(3).split(X, y)) == 2
    pipeline = make_pipeline(MinMaxScaler(), BernoulliRBM(n_hidden=4, epochs=1, backend="cpu"),
                             LogisticRegression())
    assert len(cross_val_score(pipeline, X, y, cv=3, error_score="raise")) == 3


def test_held_out_rows_outside_the_unit_interval_go_through_the_up_pass(digits_like):
    # a scaler fitted on the training rows maps held-out ones a little beyond [0, 1]: the
    # lecture's Q(h = 1 | x) = sigm(c + x W) and F(x) take any real x (scikit-learn's RBM too)
    rbm = BernoulliRBM(n_hidden=3, epochs=1, backend="cpu").fit(digits_like)
    held_out = digits_like * 1.25 - 0.1
    W, c = rbm.W.astype(np.float64), rbm.hidden_bias.astype(np.float64)
    np.testing.assert_allclose(rbm.transform(held_out), 1 / (1 + np.exp(-(held_out @ W + c))),
                               rtol=1e-5, atol=1e-6)
    assert np.isfinite(rbm.score_samples(held_out)).all()
    assert np.isfinite(rbm.free_energy(held_out)).all()
    with pytest.raises(ValueError, match="must lie in"):   # training still refuses them
        rbm.partial_fit(held_out)


def test_unscaled_pixels_are_still_refused_after_fitting(digits_like):
    rbm = BernoulliRBM(n_hidden=3, epochs=1, backend="cpu").fit(digits_like)
    with pytest.raises(ValueError, match="divide 8-bit images by 255"):
        rbm.transform(digits_like * 255)


def test_cross_validated_min_max_scaler_pipeline_scores_every_fold():
    # scikit-learn's recipe: the scaler is fitted on the training folds, so the test folds hold
    # values outside [0, 1]; every fold was NaN (error_score="raise" makes that an error)
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler
    X, y = load_digits(return_X_y=True)
    pipeline = make_pipeline(MinMaxScaler(), BernoulliRBM(n_hidden=16, epochs=2, seed=0,
                                                          backend="cpu"),
                             LogisticRegression(max_iter=300))
    scores = cross_val_score(pipeline, X[::2], y[::2], cv=3, error_score="raise")
    assert np.all(scores > 0.5)   # ten classes: chance is 0.1


@pytest.mark.parametrize("make", [BernoulliRBM, dlcore.GaussianBernoulliRBM])
def test_a_sparse_matrix_is_refused_with_the_fix_the_readme_gives(digits_like, make):
    # scikit-learn's BernoulliRBM takes CSR; dlcore's RBMs take dense rows (README, docs/rbm.md)
    sparse = pytest.importorskip("scipy.sparse")
    expected = (rf"X is a sparse matrix and {make.__name__} does not support sparse input: "
                r"pass a dense array \(X.toarray\(\)\)")
    with pytest.raises(TypeError, match=expected):
        make(n_hidden=3, epochs=1, backend="cpu").fit(sparse.csr_matrix(digits_like))
    rbm = make(n_hidden=3, epochs=1, backend="cpu").fit(digits_like)
    for use in (rbm.transform, rbm.partial_fit):
        with pytest.raises(TypeError, match=expected):
            use(sparse.csr_matrix(digits_like))


def test_data_of_the_wrong_width_is_refused_after_fitting(digits_like):
    rbm = BernoulliRBM(n_hidden=3, epochs=1, backend="cpu").fit(digits_like)
    with pytest.raises(ValueError, match="has 11 columns but the model expects 12"):
        rbm.transform(digits_like[:, :11])
    with pytest.raises(ValueError, match="X_valid has 11 columns"):
        rbm.partial_fit(digits_like, X_valid=digits_like[:, :11])


@pytest.mark.parametrize("parameters, message", [
    ({"batch_size": 0}, "batch_size must be >= 1"),
    ({"batch_size": 2.5}, "batch_size must be an integer"),
    ({"n_hidden": 0}, "n_hidden must be >= 1"),
    ({"learning_rate": -1.0}, "learning_rate must be in"),
    ({"cd_k": 0}, "cd_k must be >= 1"),
    ({"momentum": 1.0}, "momentum must be in"),
    ({"sparsity_target": 1.5}, "sparsity_target must be in"),
    ({"backend": "gpu"}, "unknown backend 'gpu'"),
    ({"seed": -3}, "seed must be in"),
])
def test_bad_hyperparameters_are_stored_when_constructed_and_refused_at_fit(parameters, message):
    # issue 10 (scikit-learn's rule): __init__ and set_params only store; fit refuses
    rbm = BernoulliRBM(**parameters)
    with pytest.raises(ValueError, match=message):
        rbm.fit(np.zeros((4, 3), np.float32))
    rbm = BernoulliRBM()
    rbm.set_params(**parameters)
    with pytest.raises(ValueError, match=message):
        rbm.fit(np.zeros((4, 3), np.float32))


def test_using_an_unfitted_model_says_to_fit_first():
    # issue 10: dlcore.NotFittedError (a ValueError and an AttributeError), was RuntimeError
    with pytest.raises(dlcore.NotFittedError, match="not fitted yet"):
        BernoulliRBM().transform(np.zeros((2, 3)))


def test_models_pickle_and_deepcopy_into_independent_copies(digits_like):
    # issue 10: models pickle (through their file state) instead of refusing
    rbm = BernoulliRBM(n_hidden=3, epochs=1, backend="cpu").fit(digits_like)
    restored = pickle.loads(pickle.dumps(rbm))
    np.testing.assert_array_equal(restored.transform(digits_like), rbm.transform(digits_like))
    duplicate = copy.deepcopy(rbm)
    duplicate.W[0, 0] += 1
    assert duplicate.W[0, 0] != rbm.W[0, 0]


def test_seed_none_draws_a_seed_and_records_it(digits_like):
    rbm = BernoulliRBM(n_hidden=3, epochs=1, seed=None, backend="cpu").fit(digits_like)
    assert isinstance(rbm.seed_, int)
    again = BernoulliRBM(n_hidden=3, epochs=1, seed=rbm.seed_, backend="cpu").fit(digits_like)
    np.testing.assert_array_equal(again.W, rbm.W)


@pytest.mark.parametrize("persistent", [False, True], ids=["CD", "PCD"])
def test_save_then_load_gives_identical_outputs_and_resumes_training_identically(
        tmp_path, digits_like, persistent):
    options = dict(n_hidden=5, batch_size=7, persistent=persistent, momentum=0.9,
                   sparsity_target=0.2, backend="cpu", seed=11)
    straight = BernoulliRBM(epochs=3, **options).fit(digits_like)
    interrupted = BernoulliRBM(epochs=2, **options).fit(digits_like)
    interrupted.gibbs(digits_like[:4])                # the sampling counter is saved too
    dlcore.save(interrupted, tmp_path / "model.h5")
    loaded = dlcore.load(tmp_path / "model.h5")
    np.testing.assert_array_equal(loaded.transform(digits_like), interrupted.transform(digits_like))
    np.testing.assert_array_equal(loaded.gibbs(digits_like[:4]), interrupted.gibbs(digits_like[:4]))
    np.testing.assert_equal(loaded.history, interrupted.history)  # NaN gaps compare equal
    loaded.partial_fit(digits_like)
    np.testing.assert_array_equal(loaded.W, straight.W)
    np.testing.assert_array_equal(loaded.hidden_bias, straight.hidden_bias)


def test_the_model_file_opens_with_plain_h5py(tmp_path, digits_like):
    import h5py
    rbm = BernoulliRBM(n_hidden=5, epochs=1, backend="cpu").fit(digits_like)
    dlcore.save(rbm, tmp_path / "model.h5")
    with h5py.File(tmp_path / "model.h5", "r") as f:
        assert f.attrs["model_class"] == "BernoulliRBM"
        np.testing.assert_array_equal(f["W"][...], rbm.W)
        assert f["hidden_bias"].shape == (5,) and "training" in f and "history" in f


def test_a_file_with_a_mis_shaped_dataset_is_refused_without_a_half_built_model(
        tmp_path, digits_like):
    import h5py
    rbm = BernoulliRBM(n_hidden=5, epochs=1, backend="cpu").fit(digits_like)
    dlcore.save(rbm, tmp_path / "model.h5")
    with h5py.File(tmp_path / "model.h5", "r+") as f:
        del f["hidden_bias"]
        f["hidden_bias"] = np.zeros(4, np.float32)
    with pytest.raises(dlcore.io.ModelFileError, match="hidden_bias"):
        dlcore.load(tmp_path / "model.h5")


def test_a_read_only_array_assigned_by_hand_trains_on(digits_like):
    # ``rbm.W = np.load(f, mmap_mode="r")``: the compiled update kernels refused the read-only
    # weights with a Numba typing error; the estimator now keeps a writable copy
    rbm = BernoulliRBM(n_hidden=5, epochs=1, batch_size=10, backend="cpu").fit(digits_like)
    twin = copy.deepcopy(rbm)
    weights = rbm.W.copy()
    weights.flags.writeable = False
    twin.W = weights
    assert twin.W.flags.writeable and not weights.flags.writeable
    rbm.partial_fit(digits_like)
    twin.partial_fit(digits_like)
    np.testing.assert_array_equal(twin.W, rbm.W)


def test_an_autoencoders_read_only_weights_assigned_by_hand_are_copied(digits_like):
    # an autoencoder's optimiser wrote into read-only pages: a segmentation fault
    model = dlcore.Autoencoder(n_hidden=4, epochs=1, batch_size=10).fit(digits_like)
    weights = model.W.copy()
    weights.flags.writeable = False
    model.W = weights
    assert model.W.flags.writeable
    model.partial_fit(digits_like)
    np.testing.assert_array_equal(weights, weights.copy())   # the caller's array untouched


FIT_WITH_SAMPLE_WEIGHT = {
    "BernoulliRBM.fit": lambda X, w: BernoulliRBM(n_hidden=3, epochs=1).fit(X, sample_weight=w),
    "BernoulliRBM.partial_fit": lambda X, w: BernoulliRBM(n_hidden=3).partial_fit(
        X, sample_weight=w),
    "GaussianBernoulliRBM.fit": lambda X, w: dlcore.GaussianBernoulliRBM(n_hidden=3).fit(
        X, sample_weight=w),
    "Autoencoder.fit": lambda X, w: dlcore.Autoencoder(n_hidden=3).fit(X, sample_weight=w),
    "StackedAutoencoder.fit": lambda X, w: dlcore.StackedAutoencoder(layers=[12, 3]).fit(
        X, sample_weight=w),
    # DBNClassifier's fit takes it, as MLPClassifier's (tests/test_dbn_classifier.py)
    "DBN.fit": lambda X, w: dlcore.DBN(layers=[12, 3]).fit(X, sample_weight=w)}


@pytest.mark.parametrize("call", FIT_WITH_SAMPLE_WEIGHT.values(),
                         ids=FIT_WITH_SAMPLE_WEIGHT.keys())
def test_sample_weight_is_refused_in_one_line_naming_the_estimator(call, digits_like):
    # Python's "RBMBase.fit() got an unexpected keyword argument" named an internal class
    name = next(key for key, value in FIT_WITH_SAMPLE_WEIGHT.items() if value is call)
    with pytest.raises(TypeError) as refusal:
        call(digits_like, np.ones(len(digits_like)))
    message = str(refusal.value)
    assert message.startswith(f"{name} takes no sample_weight") and "np.repeat" in message
    assert "\n" not in message and "Base" not in message


def test_a_hyperparameter_given_to_fit_names_the_constructor(digits_like):
    # a Keras habit: model.fit(X, epochs=10)
    with pytest.raises(TypeError, match=r"BernoulliRBM.fit takes no epochs: it is a parameter "
                       r"of BernoulliRBM; give it when making the model \(BernoulliRBM\("
                       r"epochs=10\)\)"):
        BernoulliRBM(n_hidden=3).fit(digits_like, epochs=10)


def test_the_fit_signature_stays_the_methods_own_for_scikit_learn():
    # scikit-learn's BaggingClassifier passes weights where has_fit_parameter says fit takes
    # them: the keyword check must not change what inspect sees
    utils = pytest.importorskip("sklearn.utils.validation")
    assert not utils.has_fit_parameter(BernoulliRBM(), "sample_weight")
    assert "X_valid" in inspect.signature(BernoulliRBM.fit).parameters


@pytest.mark.parametrize("method", ["transform", "reconstruct", "free_energy", "partial_fit"])
def test_images_given_to_a_fitted_rbm_are_told_to_be_flattened(method, random_state):
    # a fitted RBM said "X has 4 features, but BernoulliRBM is expecting 16 features" of
    # (n, 4, 4) images: their second axis taken for the width
    X = (random_state.random((20, 16)) < 0.3).astype(np.float32)
    rbm = BernoulliRBM(n_hidden=3, epochs=1, batch_size=10, backend="cpu").fit(X)
    with pytest.raises(ValueError, match=r"X must be 2-D .* got shape \(20, 4, 4\); flatten "
                       r"images with X.reshape\(len\(X\), -1\)"):
        getattr(rbm, method)(X.reshape(20, 4, 4))


def test_images_given_to_a_fitted_dbn_classifier_are_told_to_be_flattened(random_state):
    X = (random_state.random((20, 16)) < 0.3).astype(np.float32)
    model = dlcore.DBNClassifier(hidden=(3,), pretrain_epochs=1, epochs=1, batch_size=10)
    model.fit(X, np.arange(20) % 2)
    with pytest.raises(ValueError, match=r"flatten images with X.reshape\(len\(X\), -1\)"):
        model.predict(X.reshape(20, 1, 4, 4))


def test_the_argument_check_leaves_fits_warnings_at_the_callers_line(digits_like):
    # a wrapper around fit (one way to refuse sample_weight) put its own frame between the
    # caller and the warnings fit gives, which then pointed into dlcore
    model = dlcore.DBNClassifier(hidden=(3,), pretrain_epochs=1, epochs=1, batch_size=10)
    with pytest.warns(Warning, match="column-vector y") as caught:
        model.fit(digits_like, (np.arange(len(digits_like)) % 2)[:, None])
    assert [record.filename for record in caught] == [__file__]


def test_gibbs_takes_the_seed_sample_takes_with_its_meaning(digits_like):
    # a DBN's seeded samples run their chains through its top RBM's gibbs, which had no seed
    rbm = BernoulliRBM(n_hidden=5, epochs=1, batch_size=10, seed=0, backend="cpu").fit(
        digits_like)
    untouched = copy.deepcopy(rbm)
    V = digits_like[:8]
    seeded = rbm.gibbs(V, steps=3, seed=4)
    np.testing.assert_array_equal(rbm.gibbs(V, steps=3, seed=4), seeded)
    assert not np.array_equal(rbm.gibbs(V, steps=3, seed=5), seeded)
    # None continues the model's own sequence, where the seeded calls left it
    assert rbm.sample_calls_ == untouched.sample_calls_
    np.testing.assert_array_equal(rbm.gibbs(V, steps=3), untouched.gibbs(V, steps=3))


def test_reconstruct_takes_the_seed_sample_takes_with_its_meaning(digits_like):
    # reconstruct(sample_hidden=True) had no seed: `rbm reconstruct --seed N` set the model's
    # key and drew at call 1, pictures a notebook could not draw again
    rbm = BernoulliRBM(n_hidden=5, epochs=1, batch_size=10, seed=0, backend="cpu").fit(
        digits_like)
    rbm.sample(2, 2)   # the model's own sequence is then past its start
    untouched = copy.deepcopy(rbm)
    X = digits_like[:8]
    seeded = rbm.reconstruct(X, sample_hidden=True, seed=4)
    np.testing.assert_array_equal(rbm.reconstruct(X, sample_hidden=True, seed=4), seeded)
    assert not np.array_equal(rbm.reconstruct(X, sample_hidden=True, seed=5), seeded)
    # the hidden states of transform(X, sample=True, seed=4), taken down as the mean field
    hidden = rbm.transform(X, sample=True, seed=4)
    np.testing.assert_allclose(
        seeded, 1 / (1 + np.exp(-(hidden @ rbm.W.T + rbm.visible_bias))), rtol=1e-5)
    # None continues the model's own sequence, where the seeded calls left it
    assert rbm.sample_calls_ == untouched.sample_calls_
    np.testing.assert_array_equal(rbm.reconstruct(X, sample_hidden=True),
                                  untouched.reconstruct(X, sample_hidden=True))
    # without sample_hidden the seed draws nothing: the mean-field pass
    np.testing.assert_array_equal(rbm.reconstruct(X, seed=4), rbm.reconstruct(X))
    with pytest.raises(TypeError, match="seed must be a non-negative integer"):
        rbm.reconstruct(X, sample_hidden=True, seed="4")
