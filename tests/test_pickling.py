"""In-memory copies of every model (issue 10, "The scikit-learn and joblib contract"): pickle and
copy.deepcopy go through the state of the HDF5 files (config and state: arrays and plain values),
so joblib can ship a model to a worker process; model files stay pickle-free."""
import copy
import pickle

import numpy as np
import pytest

import dlcore
from dlcore.params import rebuild_from_state


def binary(n=40, width=8, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.uniform(size=(n, width)) < 0.4).astype(np.float32)


def pickled(model):
    return pickle.loads(pickle.dumps(model))


def plain(value):
    """True when ``value`` holds only what a model file holds: dicts, lists, arrays, numbers,
    strings, booleans and None (no object of dlcore, no __dict__)."""
    if isinstance(value, dict):
        return all(isinstance(key, str) and plain(item) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return all(plain(item) for item in value)
    return value is None or isinstance(value, (np.ndarray, np.generic, str, int, float, bool))


RBMS = [
    lambda: dlcore.BernoulliRBM(n_hidden=5, epochs=2, batch_size=10, persistent=True,
                                backend="cpu"),
    lambda: dlcore.BernoulliRBM(n_hidden=5, epochs=2, batch_size=10, sparsity_target=0.1,
                                backend="reference"),
    lambda: dlcore.GaussianBernoulliRBM(n_hidden=5, epochs=2, batch_size=10, learn_sigma=True,
                                        backend="cpu"),
]


@pytest.mark.parametrize("make", RBMS)
@pytest.mark.parametrize("duplicate", [pickled, copy.deepcopy])
def test_an_rbm_copy_transforms_alike_and_trains_on_alike(make, duplicate):
    X = binary()
    rbm = make().fit(X)
    twin = duplicate(rbm)
    assert twin is not rbm and twin.get_params() == rbm.get_params()
    np.testing.assert_array_equal(twin.transform(X), rbm.transform(X))
    np.testing.assert_array_equal(twin.gibbs(X, steps=2), rbm.gibbs(X, steps=2))
    np.testing.assert_equal(twin.history, rbm.history)   # NaN gaps compare equal here
    assert twin.training_record_ == rbm.training_record_
    rbm.partial_fit(X)
    twin.partial_fit(X)
    for name, value in rbm.get_state().items():
        if name != "training":
            np.testing.assert_array_equal(getattr(twin, name), value, err_msg=name)
    twin.W[0, 0] += 1                          # independent arrays
    assert twin.W[0, 0] != rbm.W[0, 0]


@pytest.mark.parametrize("model", [dlcore.BernoulliRBM(n_hidden=3, learning_rate=0.2),
                                   dlcore.DBN(layers=(8, 4, 3), epochs=1),
                                   dlcore.Sequential([dlcore.layers.Dense(2)])])
def test_an_unfitted_model_pickles_as_its_hyperparameters(model):
    twin = pickled(model)
    assert type(twin) is type(model) and twin.get_config() == model.get_config()


def test_the_pickle_holds_the_file_state_only():
    rbm = RBMS[0]().fit(binary())
    rebuild, (cls, payload) = rbm.__reduce_ex__(pickle.HIGHEST_PROTOCOL)
    assert rebuild is rebuild_from_state and cls is dlcore.BernoulliRBM
    assert set(payload) == {"config", "state", "params", "history", "training_record",
                            "feature_names_in", "output_config"}
    assert plain(payload)
    assert payload["state"]["W"] is not rbm.W   # a copy, not the live array


def test_a_dbn_copy_predicts_alike_and_resumes_alike():
    X = binary(60, 8)
    y = (X[:, :4].sum(axis=1) > X[:, 4:].sum(axis=1)).astype(int)
    dbn = dlcore.DBN(layers=(8, 6, 5), epochs=1, n_labels=2, batch_size=10, up_down_epochs=1,
                     up_down_batch_size=20, backend="cpu").fit(X, y)
    for twin in (pickled(dbn), copy.deepcopy(dbn)):
        np.testing.assert_array_equal(twin.transform(X), dbn.transform(X))
        np.testing.assert_array_equal(twin.predict_proba(X), dbn.predict_proba(X))
        assert plain(dbn.__reduce_ex__(4)[1][1])
    twin = pickled(dbn)
    for model in (dbn, twin):
        model.set_params(up_down_epochs=2).resume(X, y)
    np.testing.assert_array_equal(twin.predict_proba(X), dbn.predict_proba(X))


def sequential():
    model = dlcore.models.mlp(input_shape=(8,), hidden=(6,), n_classes=3)
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


def test_a_sequential_copy_predicts_alike_and_trains_on_alike():
    X = binary(30, 8)
    Y = np.eye(3, dtype=np.float32)[np.arange(30) % 3]
    model = sequential()
    model.fit(X, Y, epochs=1, batch_size=10, verbose=0)
    for twin in (pickled(model), copy.deepcopy(model)):
        np.testing.assert_array_equal(twin.predict(X), model.predict(X))
        np.testing.assert_equal(twin.history, model.history)
    twin = pickled(model)
    model.fit(X, Y, epochs=1, batch_size=10, verbose=0)
    twin.fit(X, Y, epochs=1, batch_size=10, verbose=0)
    np.testing.assert_array_equal(twin.predict(X), model.predict(X))
    for mine, theirs in zip(model.get_weights(), twin.get_weights()):
        np.testing.assert_array_equal(mine, theirs)


def test_load_never_unpickles(tmp_path, monkeypatch):
    rbm = RBMS[0]().fit(binary())
    path = tmp_path / "rbm.h5"
    dlcore.save(rbm, path)

    def refuse(*args, **kwargs):
        raise AssertionError("dlcore.load unpickled something")
    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    loaded = dlcore.load(path)
    np.testing.assert_array_equal(loaded.W, rbm.W)


def test_clone_of_scikit_learn_gives_an_unfitted_copy():
    base = pytest.importorskip("sklearn.base")
    rbm = RBMS[0]().fit(binary())
    twin = base.clone(rbm)
    assert twin.get_params() == rbm.get_params() and not hasattr(twin, "W")


def test_grid_search_ships_rbms_to_worker_processes():
    pytest.importorskip("sklearn")
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline
    X, y = two_blobs()
    pipeline = Pipeline([("rbm", dlcore.BernoulliRBM(n_hidden=8, epochs=3, batch_size=10,
                                                     backend="reference")),
                         ("clf", LogisticRegression())])
    search = GridSearchCV(pipeline, {"rbm__n_hidden": [4, 8], "rbm__learning_rate": [0.05, 0.1]},
                          cv=2, n_jobs=2).fit(X, y)
    assert search.best_score_ > 0.8
    best = pickled(search.best_estimator_)
    np.testing.assert_array_equal(best.predict(X), search.predict(X))


def test_grid_search_scores_an_rbm_alone_by_its_held_out_pseudo_log_likelihood():
    # no scoring= and no classifier: GridSearchCV calls rbm.score on the held-out fold, the
    # mean exact pseudo-log-likelihood, and one hidden unit models the two blobs worse than 8
    pytest.importorskip("sklearn")
    from sklearn.model_selection import GridSearchCV
    X, _ = two_blobs()
    search = GridSearchCV(dlcore.BernoulliRBM(epochs=20, batch_size=10, learning_rate=0.1,
                                              seed=0, backend="cpu"),
                          {"n_hidden": [1, 8]}, cv=2, n_jobs=2).fit(X)
    assert search.best_params_ == {"n_hidden": 8}
    low, high = search.cv_results_["mean_test_score"]
    assert np.isfinite(low) and low < high < 0
    best = search.best_estimator_
    assert best.score(X) == pytest.approx(np.mean(best.score_samples(X)), rel=1e-12)
    assert isinstance(best.score(X), float)


def two_blobs(n=80, width=16, seed=0):
    """Two classes of binary rows: class 0 turns on the left half more, class 1 the right."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    p = np.where((np.arange(width) < width // 2) ^ y[:, None].astype(bool), 0.8, 0.1)
    return (rng.uniform(size=(n, width)) < p).astype(np.float32), y


def test_an_unfitted_estimator_with_a_bad_hyperparameter_pickles_and_fit_refuses_it():
    """scikit-learn's rule holds through joblib: only fit checks hyperparameters."""
    rbm = pickle.loads(pickle.dumps(dlcore.BernoulliRBM(n_hidden=-1)))
    assert rbm.n_hidden == -1
    with pytest.raises(ValueError, match="n_hidden"):
        rbm.fit(np.zeros((4, 3), np.float32))


def test_not_fitted_is_still_the_runtime_error_dlcore_raised_before():
    for model in (dlcore.BernoulliRBM(), dlcore.DBN(layers=(4, 3))):
        with pytest.raises(RuntimeError, match="not fitted"):
            model.transform(np.zeros((2, 4), np.float32))
        with pytest.raises(dlcore.NotFittedError):
            model.transform(np.zeros((2, 4), np.float32))


def all_arrays(value):
    """Every array in a state (dicts and lists of arrays and plain values)."""
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, dict):
        return [array for item in value.values() for array in all_arrays(item)]
    if isinstance(value, (list, tuple)):
        return [array for item in value for array in all_arrays(item)]
    return []


def memory_mapped(model, tmp_path):
    """``model`` through ``joblib.dump`` and ``joblib.load(mmap_mode="r")``: its arrays read-only
    memory maps, as joblib also hands a worker process a model larger than ``max_nbytes``."""
    joblib = pytest.importorskip("joblib")
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    return joblib.load(path, mmap_mode="r")


def test_an_rbm_loaded_memory_mapped_by_joblib_trains_on_alike(tmp_path):
    # the compiled update kernels refused the read-only arrays with a Numba TypingError
    X = binary()
    rbm = RBMS[0]().fit(X)
    twin = memory_mapped(rbm, tmp_path)
    rbm.partial_fit(X)
    twin.partial_fit(X)
    np.testing.assert_array_equal(twin.W, rbm.W)
    np.testing.assert_array_equal(twin.transform(X), rbm.transform(X))


FITTED_MODELS = {
    "Autoencoder": lambda X: dlcore.Autoencoder(n_hidden=4, epochs=1, batch_size=10).fit(X),
    "DBN": lambda X: dlcore.DBN(layers=(8, 4, 3), epochs=1, batch_size=10).fit(X),
    "DBNClassifier": lambda X: dlcore.DBNClassifier(hidden=(4,), pretrain_epochs=1, epochs=1,
                                                    batch_size=10).fit(X, np.arange(len(X)) % 2)}


@pytest.mark.parametrize("make", FITTED_MODELS.values(), ids=FITTED_MODELS.keys())
def test_a_model_loaded_memory_mapped_by_joblib_owns_writable_arrays(make, tmp_path):
    # training writes the weights and momenta in place: an autoencoder's optimiser wrote into
    # the read-only pages of the memory map, a segmentation fault that killed the notebook
    X = binary()
    twin = memory_mapped(make(X), tmp_path)
    arrays = all_arrays(twin.get_state())
    assert arrays and all(array.flags.writeable for array in arrays)
    if isinstance(twin, dlcore.Autoencoder):
        twin.partial_fit(X)


@pytest.mark.parametrize("make", [
    lambda: dlcore.DBN(layers=[8, 4], epochs=np.int64(1), batch_size=np.int64(10),
                       persistent=np.True_),
    lambda: dlcore.StackedAutoencoder(layers=[8, 4], epochs=np.int64(1),
                                      batch_size=np.int64(10))], ids=["DBN", "StackedAutoencoder"])
def test_a_stack_with_numpy_hyperparameters_saves_pickles_and_copies(make, tmp_path):
    # a grid search's values are NumPy scalars (np.arange, scipy.stats.randint): the layers'
    # configs went through a bare json.dumps, "Object of type int64 is not JSON serializable"
    # in dlcore.save, pickle, joblib.dump and copy.deepcopy of the best estimator
    X = binary()
    model = make().fit(X)
    dlcore.save(model, tmp_path / "model.h5")
    for twin in (dlcore.load(tmp_path / "model.h5"), pickled(model), copy.deepcopy(model)):
        np.testing.assert_array_equal(twin.transform(X), model.transform(X))


def test_saving_a_grid_search_names_joblib_and_the_dlcore_step_to_save(tmp_path):
    # the end of the grid-search journey: dlcore.save(search) said "save ... other libraries'
    # models with their own tools", naming neither joblib nor the RBM inside
    pytest.importorskip("sklearn")
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    X, y = two_blobs(40, 8)
    pipeline = make_pipeline(dlcore.BernoulliRBM(n_hidden=3, epochs=1, batch_size=10),
                             LogisticRegression())
    search = GridSearchCV(pipeline, {"logisticregression__C": [1.0]}, cv=2).fit(X, y)
    with pytest.raises(TypeError, match=r"save it with joblib\.dump\(model, 'model\.joblib'\).*"
                                        r"dlcore\.save\(model\.best_estimator_\.named_steps"
                                        r"\['bernoullirbm'\], path\)"):
        dlcore.save(search, tmp_path / "search.h5")
    assert not list(tmp_path.iterdir())
    dlcore.save(search.best_estimator_.named_steps["bernoullirbm"], tmp_path / "rbm.h5")


FITTED_THEN_CHANGED = [
    (lambda: dlcore.BernoulliRBM(n_hidden=4, epochs=1, batch_size=10, seed=3, backend="cpu"),
     {"n_hidden": 6}, "set_params(n_hidden=4) before you {call} it"),
    (lambda: dlcore.Autoencoder(n_hidden=4, epochs=1, batch_size=10, seed=3, backend="cpu"),
     {"n_hidden": 6}, "set_params(n_hidden=4) before you {call} it"),
    (lambda: dlcore.DBN(hidden=[4, 3], epochs=1, batch_size=10, seed=3, backend="cpu"),
     {"hidden": [5, 3]}, "set_params(hidden=[4, 3]) before you {call} it"),
    (lambda: dlcore.StackedAutoencoder(hidden=[4, 3], epochs=1, batch_size=10, seed=3,
                                       backend="cpu"),
     {"hidden": [4]}, "set_params(hidden=[4, 3]) before you {call} it"),
    (lambda: dlcore.BernoulliRBM(n_hidden=4, epochs=1, batch_size=10, seed=3, backend="cpu"),
     {"learning_rate": -1.0}, "learning_rate must be in"),
    (lambda: dlcore.DBN(hidden=[4, 3], epochs=1, batch_size=10, seed=3, backend="cpu"),
     {"batch_size": 0}, "RBM 1 of the DBN: batch_size"),
]


@pytest.mark.parametrize("make, change, fix", FITTED_THEN_CHANGED)
def test_save_and_pickle_refuse_what_could_not_be_read_back_and_keep_the_good_file(
        make, change, fix, tmp_path):
    # scikit-learn's set_params stores and fit checks; a model whose settings no longer
    # describe its fitted state was saved over a good file that load then called damaged,
    # and pickled into a joblib file that no unpickling could rebuild
    X = binary()
    model = make().fit(X)
    path = tmp_path / "model.h5"
    dlcore.save(model, path)
    features = model.transform(X)
    model.set_params(**change)
    for call, write in (("save", lambda: dlcore.save(model, path)),
                        ("pickle", lambda: pickle.dumps(model))):
        with pytest.raises(ValueError) as refused:
            write()
        message = str(refused.value)
        assert "\n" not in message and fix.format(call=call) in message, message
    np.testing.assert_array_equal(dlcore.load(path).transform(X), features)
    twin = copy.deepcopy(model)                    # the attributes themselves: still a copy
    assert twin.get_params() == model.get_params()
    np.testing.assert_array_equal(twin.transform(X), features)


@pytest.mark.parametrize("make", [
    lambda: dlcore.BernoulliRBM(n_hidden=4, epochs=1, verbose=np.int64(0)),
    lambda: dlcore.DBN(hidden=(4, 3), epochs=1),
    lambda: dlcore.StackedAutoencoder(hidden=4, epochs=1)])
@pytest.mark.parametrize("fit", [False, True])
def test_a_copy_has_the_hyperparameters_as_given_not_as_the_file_writes_them(make, fit):
    # the file's config holds JSON's types ([4, 3] for (4, 3), a bool for verbose); a pickled
    # model's get_params, and so its repr, came back in them
    model = make()
    if fit:
        model.fit(binary())
    for twin in (pickled(model), copy.deepcopy(model)):
        params = twin.get_params()
        assert params == model.get_params()
        assert {name: type(value) for name, value in params.items()} == \
            {name: type(value) for name, value in model.get_params().items()}
