"""A batch_size beyond the data's rows (a whole-data batch, or a hostile model file's setting)
trains as one batch of the data: the trainers' per-batch buffers hold min(batch_size, rows)
rows, as scikit-learn's estimators take any batch_size."""
import numpy as np
import pytest

import dlcore

#: a batch_size whose buffers alone would need tens of GiB
HUGE = 2 ** 31 - 1


def binary_rows(rows=20, columns=6):
    return (np.random.default_rng(0).random((rows, columns)) > 0.5).astype(np.float32)


@pytest.mark.parametrize("estimator", [dlcore.BernoulliRBM, dlcore.Autoencoder])
def test_a_batch_beyond_the_data_is_one_batch_of_it(estimator):
    X = binary_rows()
    whole, huge = (estimator(n_hidden=4, batch_size=batch_size, epochs=2, seed=0,
                             backend="reference").fit(X) for batch_size in (len(X), HUGE))
    np.testing.assert_array_equal(huge.W, whole.W)
    assert huge.batch_size == HUGE   # the setting itself is kept (and saved)


def test_gaussian_rbm_and_resume_of_a_huge_batch_setting():
    X = np.random.default_rng(1).normal(size=(12, 5)).astype(np.float32)
    model = dlcore.GaussianBernoulliRBM(n_hidden=3, batch_size=12, epochs=1, seed=0,
                                        backend="reference").fit(X)
    model.set_params(batch_size=HUGE, epochs=2)   # as a file's config may give it
    model.resume(X)
    assert model.epochs_done_ == 2 and np.all(np.isfinite(model.W))


def test_dbn_up_down_batch_beyond_the_data_is_one_batch_of_it():
    X = binary_rows()

    def dbn(up_down_batch_size):
        return dlcore.DBN(layers=[6, 4, 3], epochs=1, batch_size=5, up_down_epochs=1,
                          up_down_batch_size=up_down_batch_size, seed=0,
                          backend="reference").fit(X)

    whole, huge = dbn(len(X)), dbn(HUGE)
    for (G, _), (G_whole, _) in zip(huge.generative_, whole.generative_):
        np.testing.assert_array_equal(G, G_whole)


def test_persistent_chains_beyond_memory_are_refused_in_one_line(monkeypatch):
    """PCD's chains are the model's state (n_chains, or one per batch row: batch_size rows,
    the saved chain's shape); chains that do not fit in memory are refused naming n_chains,
    not with NumPy's MemoryError traceback."""
    from dlcore.rbm import trainer

    def out_of_memory(*arguments, **keywords):
        raise MemoryError("Unable to allocate 32.0 GiB")

    monkeypatch.setattr(trainer, "Chains", out_of_memory)
    # within what a model file holds (chains beyond it are refused before training, by a
    # line of their own)
    chains = 10_000_000
    model = dlcore.BernoulliRBM(n_hidden=4, batch_size=chains, epochs=1, seed=0,
                                sampler="pcd", backend="reference")
    with pytest.raises(ValueError, match=f"{chains} persistent chains .* give a smaller "
                                         f"n_chains"):
        model.fit(binary_rows())


def test_chains_of_changed_settings_are_not_saved_into_a_file_load_refuses(tmp_path):
    """PCD's chains have batch_size rows (n_chains=None); set_params(batch_size=5) after
    training with 10 (or sampler="cd") made dlcore.save write a file that dlcore.load refused
    as damaged. The next training restarts such chains at the data, so they are left out: the
    file loads and resumes as the model in memory does."""
    X = binary_rows()
    model = dlcore.BernoulliRBM(n_hidden=3, batch_size=10, epochs=1, seed=0, sampler="pcd",
                                backend="reference").fit(X)
    model.set_params(batch_size=5, epochs=2)
    dlcore.save(model, tmp_path / "model.h5")
    loaded = dlcore.load(tmp_path / "model.h5")
    loaded.resume(X)
    model.resume(X)
    np.testing.assert_array_equal(loaded.W, model.W)
