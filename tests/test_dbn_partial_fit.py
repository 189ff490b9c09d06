"""DBN.partial_fit (dlcore/dbn/dbn.py): one pass of greedy pretraining over a batch, layer by
layer, as scikit-learn's BernoulliRBM.partial_fit is one more pass for one RBM.

Oracles: the greedy fit of lecture "Deep Neural Networks" where it coincides with passes (a
first pass is fit with epochs=1, for any number of RBMs and both propagations; k passes of a
one-RBM DBN are fit with epochs=k), bit for bit on cpu; scikit-learn's rules for
n_features_in_ and for the ``classes`` of a first batch.
"""
import pickle

import numpy as np
import pytest

import dlcore

X = (np.random.default_rng(0).random((48, 10)) > 0.5).astype(np.float32)
Y = np.random.default_rng(1).integers(0, 3, 48)


def dbn(hidden=(6, 4), epochs=5, **options):
    return dlcore.DBN(hidden=list(hidden), epochs=epochs, batch_size=16, seed=3, backend="cpu",
                      **options)


def same_rbms(first, second):
    return all(np.array_equal(a.W, b.W) and np.array_equal(a.hidden_bias, b.hidden_bias)
               for a, b in zip(first.rbms_, second.rbms_, strict=True))


@pytest.mark.parametrize("propagate", ["mean", "sample"])
def test_a_first_pass_is_the_greedy_fit_of_one_epoch(propagate):
    assert same_rbms(dbn(propagate=propagate).partial_fit(X),
                     dbn(epochs=1, propagate=propagate).fit(X))


def test_passes_of_one_rbm_are_its_epochs_and_the_dbn_is_usable_after_each(tmp_path):
    passes = dbn(hidden=(6,))
    for _ in range(3):
        assert passes.partial_fit(X) is passes
    assert same_rbms(passes, dbn(hidden=(6,), epochs=3).fit(X))
    assert passes.get_params()["epochs"] == 5       # hyperparameters untouched
    stacked = dbn().partial_fit(X[:20]).partial_fit(X[20:])
    assert stacked.n_features_in_ == 10 and len(stacked.history["rbm2_seconds"]) == 2
    dlcore.save(stacked, tmp_path / "dbn.h5")
    np.testing.assert_array_equal(dlcore.load(tmp_path / "dbn.h5").transform(X),
                                  stacked.transform(X))


def test_a_batch_of_another_width_or_an_up_down_dbn_is_refused():
    model = dbn().partial_fit(X)
    with pytest.raises(ValueError, match="X has 4 features, but DBN is expecting 10 features"):
        model.partial_fit(X[:, :4])
    model.up_down(X, epochs=1)
    with pytest.raises(RuntimeError, match="fine-tuned by up-down.*call fit"):
        model.partial_fit(X)


def test_classes_of_the_first_batch_name_the_labels_to_come():
    names = np.array(["cat", "dog", "owl"])[Y]
    model = dbn(n_labels=3)
    model.partial_fit(X[:8], names[:8], classes=["owl", "dog", "cat"])
    model.partial_fit(X[8:], names[8:])
    assert model.classes_.tolist() == ["cat", "dog", "owl"]
    assert set(model.predict(X)) <= {"cat", "dog", "owl"}
    with pytest.raises(ValueError, match="emu"):
        model.partial_fit(X[:4], np.array(["emu"] * 4))
    # scikit-learn's partial_fit refuses other classes after the first call (ignored before)
    with pytest.raises(ValueError, match=r"classes=\['cat', 'dog', 'emu'\] are not the first "
                                         "call's"):
        model.partial_fit(X[:4], names[:4], classes=["cat", "dog", "emu"])


def interrupt_the_layer_of_width_once(monkeypatch, width):
    """Ctrl-C as the layer whose visible units are ``width`` starts its pass, once."""
    from dlcore.epochs import EpochLoop
    run, armed = EpochLoop._run_epochs, [True]

    def run_or_interrupt(layer, *arguments, **keywords):
        if layer.n_features_in_ == width and armed:
            armed.clear()
            raise KeyboardInterrupt
        return run(layer, *arguments, **keywords)
    monkeypatch.setattr(EpochLoop, "_run_epochs", run_or_interrupt)


def figures(history):
    """A history without its seconds, which no two runs share."""
    return {name: values for name, values in history.items() if not name.endswith("seconds")}


@pytest.mark.parametrize("passes_before", [0, 2])
def test_a_pass_interrupted_in_an_upper_rbm_is_undone_and_run_again_ends_as_uninterrupted(
        monkeypatch, passes_before):
    whole = dbn()
    for _ in range(passes_before + 1):
        whole.partial_fit(X)
    model = dbn()
    for _ in range(passes_before):
        model.partial_fit(X)
    interrupt_the_layer_of_width_once(monkeypatch, 6)
    with pytest.raises(KeyboardInterrupt):
        model.partial_fit(X)
    # as the call found it: RBM 1's pass undone too (it was a pass ahead of RBM 2, and RBM 2
    # of a first call untrained, which every later use refused, asking for resume(X))
    if passes_before:
        assert [rbm.epochs_done_ for rbm in model.rbms_] == [passes_before] * 2
    else:
        assert not hasattr(model, "rbms_")
    model.partial_fit(X)                       # the call run again
    assert same_rbms(model, whole)
    assert figures(model.history) == figures(whole.history)
    np.testing.assert_array_equal(model.transform(X), whole.transform(X))


@pytest.mark.parametrize("make, sizes", [
    (lambda: dbn(), {"hidden": [8, 3]}),
    (lambda: dlcore.StackedAutoencoder(hidden=[6, 4], epochs=2, batch_size=16, seed=3,
                                       backend="cpu"), {"hidden": [8, 3]}),
    (lambda: dlcore.BernoulliRBM(n_hidden=6, epochs=2, batch_size=16, seed=3, backend="cpu"),
     {"n_hidden": 8}),
    (lambda: dlcore.Autoencoder(n_hidden=6, epochs=2, batch_size=16, seed=3, backend="cpu"),
     {"n_hidden": 8})])
def test_sizes_changed_by_set_params_after_training_started_are_refused(make, sizes):
    model = make().partial_fit(X)
    name, value = next(iter(sizes.items()))
    fitted = model.get_params()[name]
    model.set_params(**sizes)
    for call in (model.partial_fit, model.resume):   # trained the fitted sizes on, silently
        with pytest.raises(ValueError) as refused:
            call(X)
        message = str(refused.value)
        assert "\n" not in message and f"{name}={value}" in message
        assert message.endswith(f"set_params({name}={fitted}) to go on")
    model.set_params(**{name: fitted})
    assert model.partial_fit(X) is model


def test_the_warnings_of_partial_fit_s_checks_name_the_caller_s_line():
    with pytest.warns(UserWarning, match="column-vector y") as caught:
        dbn(n_labels=3).partial_fit(X, Y.reshape(-1, 1))
    assert [record.filename for record in caught] == [__file__]


@pytest.mark.parametrize("make, layers", [
    (lambda: dbn(), "rbms_"),
    (lambda: dlcore.StackedAutoencoder(hidden=[6, 4], epochs=2, batch_size=16, seed=3,
                                       backend="cpu"), "autoencoders_")])
def test_a_pass_takes_the_settings_set_params_gave_since_and_refuses_bad_ones(make, layers):
    # scikit-learn's rule, as a single RBM's partial_fit: the next pass trains with what
    # set_params set; the stack's layers kept the settings they were built with, and a
    # batch_size of 0 went unnoticed until the saved file was refused at load
    model = make().partial_fit(X)
    untouched = make().partial_fit(X)
    model.set_params(learning_rate=0.05, batch_size=8)
    model.partial_fit(X)
    untouched.partial_fit(X)
    trained = getattr(model, layers)
    assert [(layer.learning_rate, layer.batch_size) for layer in trained] == [(0.05, 8)] * 2
    assert not np.array_equal(trained[0].W, getattr(untouched, layers)[0].W)
    assert [layer.epochs_done_ for layer in trained] == [2, 2]      # the passes, as before
    before = [layer.W.copy() for layer in trained]
    model.set_params(batch_size=0)
    with pytest.raises(ValueError, match=r"^\w+ 1 of the \w+: batch_size") as refused:
        model.partial_fit(X)
    assert "\n" not in str(refused.value)
    assert all(np.array_equal(layer.W, W) for layer, W in zip(trained, before, strict=True))


@pytest.mark.parametrize("make, change, fitted", [
    (lambda: dlcore.StackedAutoencoder(hidden=[6, 4], epochs=1, batch_size=16, seed=3,
                                       backend="cpu"), {"tied_weights": False},
     "tied_weights=True"),
    (lambda: dlcore.StackedAutoencoder(hidden=[6, 4], epochs=1, batch_size=16, seed=3,
                                       backend="cpu"), {"activation": "tanh"},
     "activation='sigmoid'"),
    (lambda: dbn(), {"visible": "gaussian"}, "a BernoulliRBM")])
def test_a_pass_refuses_a_setting_that_changes_what_a_fitted_layer_is(make, change, fitted):
    # copied onto the fitted layers, tied_weights=False left an autoencoder without its
    # decoder (AttributeError at the pass, then at every save and pickle), an activation
    # turned sigmoid encoders into tanh ones silently, and visible="gaussian" gave "invalid
    # parameter 'sigma' for BernoulliRBM"
    model = make().partial_fit(X)
    before = pickle.dumps(model)
    model.set_params(**change)
    with pytest.raises(ValueError, match="call fit") as refused:
        model.partial_fit(X)
    assert fitted in str(refused.value) and "\n" not in str(refused.value)
    model.set_params(**{name: getattr(pickle.loads(before), name) for name in change})
    assert pickle.dumps(model) and model.partial_fit(X) is model   # nothing was changed


def test_an_autoencoder_whose_tied_weights_changed_after_fit_is_refused_by_name(tmp_path):
    # it has no decoder matrix of its own: partial_fit, pickle and save met an AttributeError
    model = dlcore.Autoencoder(n_hidden=4, epochs=1, batch_size=16, backend="cpu").fit(X)
    model.set_params(tied_weights=False)
    for call in (lambda: model.partial_fit(X), lambda: pickle.dumps(model),
                 lambda: dlcore.save(model, tmp_path / "model.h5")):
        with pytest.raises(ValueError, match=r"tied_weights=False differs from the tied "
                                             r"weights this Autoencoder was fitted with"):
            call()
    assert not (tmp_path / "model.h5").exists()
