"""The early-stopping state a network file carries: checked when the file is read, and continued
by the first fit after loading in an EarlyStopping of the same monitor (dlcore/network.py,
dlcore/callbacks.py)."""
import numpy as np
import pytest

import dlcore
from dlcore.callbacks import EarlyStopping


@pytest.fixture(scope="module")
def digits():
    images, labels = dlcore.datasets.load_mnist_5k()
    rows = np.random.default_rng(2).permutation(len(images))[:300]
    return dlcore.datasets.to_unit_interval(images)[rows], labels[rows].astype(np.int64)


def network():
    model = dlcore.models.mlp((784,), n_classes=10, backend="cpu", seed=3)
    return model.compile("cross_entropy", dlcore.optimizers.Adam(0.01), ["accuracy"])


FIT = {"batch_size": 32, "validation_split": 0.2, "verbose": 0}


@pytest.fixture(scope="module")
def two_epochs(digits):
    """The state of a network fitted 2 epochs with EarlyStopping(patience=1), keeping the
    best weights."""
    model = network()
    model.fit(*digits, epochs=2, callbacks=[EarlyStopping(patience=1, restore_best_weights=True)],
              **FIT)
    return model.get_state()


def stopping_state(state):
    return state["training"]["callbacks"]["EarlyStopping"]


def damaged(state, change):
    import copy
    state = copy.deepcopy(state)
    change(stopping_state(state))
    return state


@pytest.mark.parametrize("change, message", [
    (lambda s: s.update(best="low"), "no finite number 'best'"),
    (lambda s: s.update(best=float("nan")), "no finite number 'best'"),
    (lambda s: s.update(monitor=3), "no monitored quantity 'monitor'"),
    (lambda s: s.update(wait=-1), "no non-negative integer 'wait'"),
    (lambda s: s.update(wait=1.5), "no non-negative integer 'wait'"),
    (lambda s: s.update(best_epoch_index=-1), "no non-negative integer 'best_epoch_index'"),
    (lambda s: s.update(best_epoch=0), "no positive integer 'best_epoch'"),
    (lambda s: s["best_weights"].update({"0": np.zeros((3, 3), np.float32)}),
     r"best_weights 0 has shape \(3, 3\)"),
    (lambda s: s["best_weights"].pop("1"), "not the network's"),
])
def test_a_malformed_state_is_refused_when_the_file_is_read(two_epochs, change, message):
    fresh = network()
    fresh.build((784,))
    with pytest.raises(ValueError, match=message):
        fresh.set_state(damaged(two_epochs, change))


def test_the_first_fit_after_loading_continues_the_saved_state(digits, tmp_path):
    def stopper_():   # a finished fit restoring the best weights would not be a checkpoint
        return EarlyStopping(patience=2, restore_best_weights=False)

    full, stopper = network(), stopper_()
    full.fit(*digits, epochs=8, callbacks=[stopper], **FIT)
    part = network()
    # after epoch 4 (its best epoch 3 waited on once), a fresh stopper would not stop at 5:
    # the saved wait of 1 does, patience 2 reached (Keras's count)
    part.fit(*digits, epochs=4, callbacks=[stopper_()], **FIT)
    dlcore.save(part, tmp_path / "part.h5")
    resumed, resumed_stopper = dlcore.load(tmp_path / "part.h5"), stopper_()
    # no set_state: fit hands the file's state to the callback of the same monitor
    resumed.fit(*digits, epochs=8 - resumed.epochs_done, callbacks=[resumed_stopper], **FIT)
    assert resumed.history["loss"] == full.history["loss"]
    assert resumed.epochs_done == full.epochs_done < 8
    assert resumed_stopper.best_epoch == stopper.best_epoch
    for expected, actual in zip(full.get_weights(), resumed.get_weights()):
        assert np.array_equal(expected, actual)


def test_a_callback_of_another_monitor_starts_afresh(two_epochs, digits):
    model = network()
    model.build((784,))
    model.set_state(two_epochs)
    other = EarlyStopping(monitor="val_accuracy", patience=1)
    model.fit(*digits, epochs=1, callbacks=[other], **FIT)
    assert other.best_epoch == 2          # its first epoch (from 0): nothing carried over


def test_the_best_epoch_counts_from_0_and_older_files_counting_from_1_resume_alike(
        two_epochs):
    saved = stopping_state(two_epochs)
    # both epochs improved on a fresh network: the best is the second, index 1 (as Keras's)
    assert saved["best_epoch_index"] == 1 and "best_epoch" not in saved

    def older(state):      # as dlcore wrote it before December 2026: counted from 1
        state["best_epoch"] = state.pop("best_epoch_index") + 1
    for state in (two_epochs, damaged(two_epochs, older)):
        model = network()
        model.build((784,))
        model.set_state(state)          # the file's checks accept both
        stopper = EarlyStopping(patience=1)
        stopper.set_state(stopping_state(state))
        assert stopper.best_epoch == 1
