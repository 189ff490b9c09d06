"""StackedAutoencoder.partial_fit (dlcore/autoencoder/stacked.py): one pass of greedy training
over a batch, layer by layer, as dlcore's Autoencoder.partial_fit is one more pass for one.

Oracles: the greedy fit where it coincides with passes (a first pass is fit with epochs=1;
k passes of a one-layer stack are fit with epochs=k), bit for bit on cpu; scikit-learn's rule
for n_features_in_.
"""
import numpy as np
import pytest

import dlcore

X = np.random.default_rng(0).random((40, 10)).astype(np.float32)


def stack(hidden=(6, 4), epochs=5):
    return dlcore.StackedAutoencoder(hidden=list(hidden), epochs=epochs, batch_size=16, seed=3,
                                     backend="cpu")


def same_layers(first, second):
    return all(np.array_equal(a.W, b.W) for a, b in
               zip(first.autoencoders_, second.autoencoders_, strict=True))


def test_a_first_pass_is_the_greedy_fit_of_one_epoch_and_passes_of_one_layer_its_epochs():
    assert same_layers(stack().partial_fit(X), stack(epochs=1).fit(X))
    passes = stack(hidden=(6,))
    for _ in range(3):
        assert passes.partial_fit(X) is passes
    assert same_layers(passes, stack(hidden=(6,), epochs=3).fit(X))


def test_the_stack_is_usable_after_each_pass_and_refuses_another_width(tmp_path):
    model = stack().partial_fit(X[:20]).partial_fit(X[20:])
    assert model.n_features_in_ == 10 and model.get_params()["epochs"] == 5
    dlcore.save(model, tmp_path / "stack.h5")
    np.testing.assert_array_equal(dlcore.load(tmp_path / "stack.h5").transform(X),
                                  model.transform(X))
    with pytest.raises(ValueError, match="X has 3 features, but StackedAutoencoder is "
                       "expecting 10 features"):
        model.partial_fit(X[:, :3])


def test_a_pass_interrupted_in_an_upper_layer_is_undone_and_run_again_ends_as_uninterrupted(
        monkeypatch):
    from test_dbn_partial_fit import figures, interrupt_the_layer_of_width_once
    whole = stack().partial_fit(X).partial_fit(X)
    model = stack().partial_fit(X)
    interrupt_the_layer_of_width_once(monkeypatch, 6)
    with pytest.raises(KeyboardInterrupt):
        model.partial_fit(X)
    assert [layer.epochs_done_ for layer in model.autoencoders_] == [1, 1]
    model.partial_fit(X)
    assert same_layers(model, whole)
    assert figures(model.history) == figures(whole.history)


def test_resume_refuses_settings_changed_since_the_layers_were_set_up():
    """set_params(epochs=3).resume(X) after a fit of 2 epochs trained nothing and said nothing
    (each autoencoder keeps the settings it was built with): refused in one line naming the
    layer and the setting. A stack built by partial_fit (epochs: its passes) still resumes."""
    def reference_stack(epochs):
        return stack(epochs=epochs).set_params(backend="reference")

    fitted = reference_stack(2).fit(X)
    fitted.set_params(epochs=3)
    with pytest.raises(ValueError, match=r"layer 1 epochs=3, .* with epochs=2: .*fit\(X\)"):
        fitted.resume(X)
    streamed = reference_stack(5)
    streamed.partial_fit(X).resume(X)
    assert [layer.epochs_done_ for layer in streamed.autoencoders_] == [1, 1]
