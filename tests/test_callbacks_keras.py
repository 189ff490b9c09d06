"""Keras's other callbacks: ModelCheckpoint, ReduceLROnPlateau, LearningRateScheduler, CSVLogger,
LambdaCallback (dlcore/callbacks.py).

Oracles: training is a pure function of the seed and the epoch counter, so a fit resumed from
an epoch's checkpoint ends with the weights of the uninterrupted fit; a learning rate set per
epoch by a callback trains as the same rates set by hand between fits; ReduceLROnPlateau's
sequence of rates is worked by hand from Keras's rule (Keras 3.15's own callback gives the same
sequence); the CSV rows are the history's numbers.
"""
import csv
import io
import os
import re

import numpy as np
import pytest

import dlcore
from dlcore.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    LambdaCallback,
    LearningRateScheduler,
    ModelCheckpoint,
    ProgressBar,
    ReduceLROnPlateau,
)
from dlcore.layers import Dense
from dlcore.optimizers import SGD, StepDecay
from dlcore.training import held_out

X = np.random.default_rng(0).random((120, 8)).astype(np.float32)
Y = np.random.default_rng(1).integers(0, 3, 120)


def network(learning_rate=0.2):
    model = dlcore.Sequential([Dense(12, activation="relu", input_shape=(8,)),
                               Dense(3, activation="softmax")], backend="cpu", seed=4)
    model.compile(optimizer=SGD(learning_rate, momentum=0.9), metrics=["accuracy"])
    return model


def fit(model, epochs, callbacks=()):
    return model.fit(X, Y, epochs=epochs, batch_size=16, validation_split=0.25, verbose=0,
                     callbacks=list(callbacks))


def test_a_fit_resumed_from_an_epochs_checkpoint_ends_as_the_uninterrupted_one(tmp_path):
    whole = network()
    fit(whole, 5, [EarlyStopping(patience=10)])
    interrupted = network()
    pattern = str(tmp_path / "ckpt" / "epoch{epoch:02d}-{val_loss:.4f}.h5")
    fit(interrupted, 3, [ModelCheckpoint(pattern), EarlyStopping(patience=10)])
    names = sorted(os.listdir(tmp_path / "ckpt"))
    losses = interrupted.history["val_loss"]
    assert names == [f"epoch{e:02d}-{loss:.4f}.h5" for e, loss in zip((1, 2, 3), losses)]
    resumed = dlcore.load(tmp_path / "ckpt" / names[1])     # as if stopped after epoch 2
    assert resumed.epochs_done == 2
    fit(resumed, 5 - resumed.epochs_done, [EarlyStopping(patience=10)])
    for mine, theirs in zip(resumed.get_weights(), whole.get_weights()):
        np.testing.assert_array_equal(mine, theirs)
    assert resumed.history["val_loss"] == whole.history["val_loss"]


def test_a_checkpoint_holds_the_early_stopping_state_of_its_epoch_wherever_it_is_listed(
        tmp_path):
    model = network()
    stopper = EarlyStopping(patience=10)
    waits = []
    path = tmp_path / "last.h5"
    # listed first, the checkpoint still runs after the early stopping of the same epoch
    fit(model, 4, [ModelCheckpoint(path), stopper,
                   LambdaCallback(on_epoch_end=lambda epoch, logs: waits.append(stopper.wait))])
    saved = dlcore.load(path).callback_state["EarlyStopping"]
    assert int(saved["wait"]) == waits[-1] and float(saved["best"]) == stopper.best


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_save_best_only_saves_the_epochs_that_improve_and_the_file_is_the_best_model(
        tmp_path, suffix):
    model = network(0.5)
    weights, saved_at = [], []
    path = tmp_path / f"best{suffix}"

    def remember(epoch, logs):
        weights.append(model.get_weights())
        if path.exists():
            saved_at.append(os.stat(path).st_mtime_ns)
    fit(model, 8, [ModelCheckpoint(path, save_best_only=True, monitor="val_accuracy"),
                   LambdaCallback(on_epoch_end=remember)])
    accuracy = model.history["val_accuracy"]
    best = int(np.argmax(accuracy))            # the first epoch of the highest accuracy
    best_model = dlcore.load(path)
    for mine, expected in zip(best_model.get_weights(), weights[best]):
        np.testing.assert_array_equal(mine, expected)
    improved = [epoch for epoch in range(len(accuracy))
                if accuracy[epoch] > max(accuracy[:epoch], default=-1)]
    assert len(set(saved_at)) == len(improved) >= 1


def test_a_resumed_fit_replaces_the_best_checkpoint_only_with_a_better_epoch(tmp_path):
    """A run that keeps its best epoch (save_best_only) and its last, interrupted after epoch
    3 and resumed from the last: the best file still holds epoch 2, as the uninterrupted
    run's does. The resumed fit's checkpoint started from no best, so that epoch 4, worse
    than epoch 2, replaced it: the best model of the run was lost."""
    def checkpoints(folder):
        return [ModelCheckpoint(folder / "best.h5", save_best_only=True),
                ModelCheckpoint(folder / "last.h5")]

    whole = network()
    fit(whole, 5, checkpoints(tmp_path / "whole"))
    losses = whole.history["val_loss"]
    best_epoch = int(np.argmin(losses)) + 1
    assert best_epoch <= 3 and min(losses[3:]) > min(losses[:3])   # no better epoch after 3
    interrupted = network()
    fit(interrupted, 3, checkpoints(tmp_path / "part"))
    resumed = dlcore.load(tmp_path / "part" / "last.h5")
    fit(resumed, 5 - resumed.epochs_done, checkpoints(tmp_path / "part"))
    for folder in ("whole", "part"):
        assert dlcore.load(tmp_path / folder / "best.h5").epochs_done == best_epoch
    # given a threshold of its own, a resumed checkpoint takes it
    again = dlcore.load(tmp_path / "part" / "last.h5")
    fit(again, 1, [ModelCheckpoint(tmp_path / "new.h5", save_best_only=True,
                                   initial_value_threshold=10.0)])
    assert os.path.exists(tmp_path / "new.h5")


def test_weights_only_checkpoints_and_bad_settings(tmp_path):
    model = network()
    fit(model, 1, [ModelCheckpoint(tmp_path / "w.weights.h5", save_weights_only=True)])
    fresh = network()
    fresh.load_weights(tmp_path / "w.weights.h5")
    for mine, theirs in zip(fresh.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(mine, theirs)
    with pytest.raises(ValueError, match="save_freq must be 'epoch'"):
        ModelCheckpoint("m.h5", save_freq=100)
    with pytest.raises(ValueError, match="name it .weights.h5"):
        ModelCheckpoint("m.keras", save_weights_only=True)
    with pytest.raises(ValueError, match=r"names \{val_auc\}, which this fit does not report"):
        fit(network(), 1, [ModelCheckpoint(str(tmp_path / "{val_auc:.2f}.h5"))])
    with pytest.raises(ValueError, match="ModelCheckpoint monitors 'val_loss'"):
        network().fit(X, Y, epochs=1, verbose=0,
                      callbacks=[ModelCheckpoint(tmp_path / "b.h5", save_best_only=True)])


def test_a_checkpoint_whose_folder_is_a_file_is_refused_in_one_line(tmp_path):
    (tmp_path / "notes").write_text("")
    for path, reason in ((tmp_path / "notes" / "m.h5", r"it is a file, not a folder \(errno 17\)"),
                         (tmp_path / "notes" / "runs" / "m.h5",
                          f"{re.escape(str(tmp_path / 'notes'))} on its way is a file, not a "
                          r"folder \(errno 20\)")):
        with pytest.raises(OSError, match=f"^cannot write {re.escape(str(path.parent))}: "
                                          f"{reason}; write it to a folder you may write to$"):
            fit(network(), 1, [ModelCheckpoint(path)])


class _Optimizer:
    def __init__(self, rate):
        self.learning_rate = rate


class _Model:
    def __init__(self, rate):
        self.optimizer = _Optimizer(rate)


def test_reduce_lr_on_plateau_follows_keras_rule_worked_by_hand():
    callback = ReduceLROnPlateau(factor=0.5, patience=2, cooldown=1, min_lr=0.03,
                                 min_delta=0.0)
    callback.set_model(_Model(0.2))
    callback.on_train_begin()
    # Keras's rule: in cooldown the counter is decremented first, so the epoch after a
    # reduction already counts. val_loss: improves (e1); stalls e2, e3: 0.1; e4 (cooldown
    # ends) counts, e5: 0.05; e6 counts; e7 improves; e8, e9: 0.03 (factor would give
    # 0.025 < min_lr); e10, e11 would reduce but the rate is at min_lr: it stays
    losses = [1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 0.5, 0.6, 0.7, 0.8, 0.9, 0.9, 0.9, 0.9]
    rates = []
    for epoch, loss in enumerate(losses, start=1):
        callback.on_epoch_end(epoch, {"val_loss": loss})
        rates.append(callback.model.optimizer.learning_rate)
    assert rates == pytest.approx([0.2, 0.2, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.03, 0.03,
                                   0.03, 0.03, 0.03, 0.03])


class _WeightsModel:
    """What EarlyStopping touches: the weights (the epoch they were taken at) and the stop."""

    def __init__(self):
        self.epoch, self.stop_training = 0, False

    def get_weights(self):
        return [self.epoch]

    def set_weights(self, weights):
        self.epoch = weights[0]


def epochs_trained(stopper, losses, monitor="val_loss"):
    """How many of ``losses`` (``monitor`` per epoch) a fit with ``stopper`` trains (epochs
    counted from 0, as Keras's and dlcore's fit pass them)."""
    model = _WeightsModel()
    stopper.set_model(model)
    stopper.on_train_begin()
    for epoch, loss in enumerate(losses):
        model.epoch = epoch
        stopper.on_epoch_end(epoch, {monitor: loss})
        if model.stop_training:
            break
    stopper.on_train_end()
    return epoch + 1


@pytest.mark.parametrize("patience, trained", [(0, 2), (1, 2), (2, 3), (3, 4)])
def test_early_stopping_stops_after_patience_epochs_without_improvement_as_keras(
        patience, trained):
    # Keras's docstring example: patience=3 on a loss that never improves after the first
    # epoch runs 4 epochs (Keras 3's rule: stop once `wait` reaches `patience`; Keras 3.15's
    # own callback, driven by these losses, trains 2, 2, 3, 4 epochs)
    assert epochs_trained(EarlyStopping(patience=patience),
                          [1.0, 1.1, 1.2, 1.3, 1.4, 1.5]) == trained


@pytest.mark.parametrize("logs, fix", [
    ({"loss": 1.0}, "give validation_split or validation_data for val_ monitors"),
    ({"loss": 1.0, "val_loss": 1.0}, "monitor one of those")])
def test_early_stopping_of_a_number_the_fit_lacks_names_the_fix_that_fits(logs, fix):
    # a fit that validates but reports no val_auc was told to give validation data
    stopper = EarlyStopping(monitor="val_auc")
    stopper.set_model(_WeightsModel())
    stopper.on_train_begin()
    with pytest.raises(ValueError, match=f"monitors 'val_auc', which this fit does not "
                                         f"report \\(it reports [a-z_, ]+\\); {fix}$"):
        stopper.on_epoch_end(0, logs)


def test_early_stopping_counts_from_the_last_improvement_by_more_than_min_delta():
    # epoch 1 improves by 0.05 <= min_delta (not counted), epoch 2 by 0.2 (counted): wait
    # restarts at 2, then 3 and 4 stall and patience 2 stops at 4, restoring 2's weights (Keras
    # 3.15's own callback, driven by these losses: best_epoch 2, stopped_epoch 4)
    stopper = EarlyStopping(patience=2, min_delta=0.1, restore_best_weights=True)
    assert epochs_trained(stopper, [1.0, 0.95, 0.8, 0.79, 0.9, 0.5, 0.4]) == 5
    assert stopper.best_epoch == 2 and stopper.stopped_epoch == 4
    assert stopper.model.epoch == 2


# Keras 3.15's own EarlyStopping driven by the same values (restoring the best weights where
# the settings say so): (epochs trained, best_epoch,
# stopped_epoch, the epoch whose weights the model ends with)
@pytest.mark.parametrize("settings, values, keras", [
    # improving, but above the baseline until epoch 5: the count runs on from epoch 0 and
    # starts again at 5; 7 and 8 stall, and patience 2 stops at 8
    ({"patience": 2, "baseline": 0.5, "restore_best_weights": True},
     [1.0, 0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.35, 0.36, 0.37, 0.2], (9, 6, 8, 6)),
    ({"patience": 2, "baseline": 0.95, "restore_best_weights": True},
     [1.0, 0.9, 0.91, 0.92, 0.93], (4, 1, 3, 1)),
    ({"monitor": "val_accuracy", "patience": 3, "baseline": 0.9,
      "restore_best_weights": False},
     [0.5, 0.6, 0.7, 0.8, 0.95, 0.94, 0.93, 0.92, 0.91], (8, 4, 7, 7)),
    # epochs 0..2 are a warm-up: monitoring starts at 3, whose value is the first best
    ({"patience": 1, "start_from_epoch": 3, "restore_best_weights": True},
     [1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6], (5, 3, 4, 3)),
    ({"patience": 2, "start_from_epoch": 2, "restore_best_weights": True},
     [0.1, 1.1, 1.2, 1.0, 1.4, 1.5, 1.6], (6, 3, 5, 3)),
], ids=["baseline-late", "baseline-beaten", "baseline-accuracy", "warm-up", "warm-up-best"])
def test_early_stopping_baseline_and_start_from_epoch_follow_keras(settings, values, keras):
    stopper = EarlyStopping(**settings)
    trained = epochs_trained(stopper, values, settings.get("monitor", "val_loss"))
    assert (trained, stopper.best_epoch, stopper.stopped_epoch, stopper.model.epoch) == keras


def test_early_stopping_takes_kerass_arguments_in_kerass_order(capsys):
    # keras.callbacks.EarlyStopping(monitor, min_delta, patience, verbose, mode, baseline,
    # restore_best_weights, start_from_epoch)
    stopper = EarlyStopping("val_accuracy", 0.01, 3, 1, "max", 0.9, False, 2)
    assert (stopper.monitor, stopper.min_delta, stopper.patience, stopper.verbose, stopper.mode,
            stopper.baseline, stopper.restore_best_weights, stopper.start_from_epoch) == (
        "val_accuracy", 0.01, 3, 1, "max", 0.9, False, 2)
    # verbose: Keras's two messages, with its epochs counted from 1 ("Epoch 9: early stopping",
    # "Restoring model weights from the end of the best epoch: 7.")
    epochs_trained(EarlyStopping(patience=2, baseline=0.5, verbose=1, restore_best_weights=True),
                   [1.0, 0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.35, 0.36, 0.37, 0.2])
    assert capsys.readouterr().err.splitlines() == [
        "epoch 9: early stopping", "restoring the weights of the best epoch, 7"]
    with pytest.raises(ValueError, match="fourth argument is verbose .* give mode= by name"):
        EarlyStopping("val_loss", 0, 3, "min")
    with pytest.raises(ValueError, match="start_from_epoch must be >= 0"):
        EarlyStopping(start_from_epoch=-1)
    with pytest.raises(ValueError, match="baseline must be a finite number"):
        EarlyStopping(baseline="0.5")


def test_a_checkpoint_in_the_warm_up_of_start_from_epoch_resumes(tmp_path):
    # nothing monitored yet: the saved state has no best, and the file still loads
    model = network()
    fit(model, 2, [EarlyStopping(start_from_epoch=3), ModelCheckpoint(tmp_path / "m.h5")])
    resumed = dlcore.load(tmp_path / "m.h5")
    assert "best" not in resumed.callback_state["EarlyStopping"]
    stopper = EarlyStopping(patience=1, start_from_epoch=3)
    fit(resumed, 2, [stopper])
    assert stopper.best_epoch == 3 and stopper.stopped_epoch is None


def test_a_fit_resumed_from_a_checkpoint_reduces_the_rate_as_the_uninterrupted_one(tmp_path):
    """docs/networks.md's recipe, ModelCheckpoint beside ReduceLROnPlateau: the plateau's
    counts (best, wait, cooldown) of the checkpoint's epoch are in the file, so that the
    resumed fit halves the rate at the epochs the uninterrupted one does. They started again
    at 0: the rates were 0.5, 0.5, 0.25, 0.125, 0.125, 0.125, ... against 0.125, 0.0625."""
    def plateau():
        return ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_delta=0.05,
                                 cooldown=1)

    whole = network(0.5)
    fit(whole, 8, [plateau()])
    interrupted = network(0.5)
    fit(interrupted, 5, [ModelCheckpoint(tmp_path / "ckpt.h5"), plateau()])
    resumed = dlcore.load(tmp_path / "ckpt.h5")
    fit(resumed, 8 - resumed.epochs_done, [plateau()])
    assert resumed.history["learning_rate"] == whole.history["learning_rate"]
    assert len(set(whole.history["learning_rate"][5:])) > 1   # a reduction after the resume
    for mine, theirs in zip(resumed.get_weights(), whole.get_weights()):
        np.testing.assert_array_equal(mine, theirs)
    state = resumed.callback_state["ReduceLROnPlateau"]
    assert state["monitor"] == "loss" and state["wait"] >= 0 and "best" in state


def test_a_damaged_reduce_lr_on_plateau_state_is_refused_at_load(tmp_path):
    import h5py
    model = network(0.5)
    fit(model, 2, [ModelCheckpoint(tmp_path / "ckpt.h5"), ReduceLROnPlateau(monitor="loss")])
    with h5py.File(tmp_path / "ckpt.h5", "r+") as h5file:
        h5file["training/callbacks/ReduceLROnPlateau"].attrs["wait"] = -3
    with pytest.raises(dlcore.ModelFileError,
                       match="ReduceLROnPlateau state has no non-negative integer 'wait'"):
        dlcore.load(tmp_path / "ckpt.h5")


def test_reduce_lr_on_plateau_in_a_fit_and_its_refusals():
    model = network()
    fit(model, 4, [ReduceLROnPlateau(monitor="val_loss", mode="max", patience=0,
                                     factor=0.5)])
    # mode "max" on a loss: each epoch but the first counts as a stall (rates logged at the
    # start of each epoch)
    assert model.history["learning_rate"] == pytest.approx([0.2, 0.2, 0.1, 0.05])
    scheduled = network()
    scheduled.compile(optimizer=SGD(StepDecay(0.1, 10)))
    with pytest.raises(ValueError, match="follows the schedule StepDecay"):
        fit(scheduled, 1, [ReduceLROnPlateau()])
    with pytest.raises(ValueError, match="factor must be"):
        ReduceLROnPlateau(factor=1.5)


def test_a_learning_rate_scheduler_trains_as_rates_set_by_hand():
    calls = []

    def schedule(epoch, rate):
        calls.append((epoch, rate))
        return 0.2 if epoch < 2 else 0.02
    scheduled = network()
    fit(scheduled, 4, [LearningRateScheduler(schedule)])
    by_hand = network()
    fit(by_hand, 2)
    by_hand.optimizer.learning_rate = 0.02
    fit(by_hand, 2)
    for mine, theirs in zip(scheduled.get_weights(), by_hand.get_weights()):
        np.testing.assert_array_equal(mine, theirs)
    assert calls == [(0, 0.2), (1, 0.2), (2, 0.2), (3, 0.02)]
    assert scheduled.history["learning_rate"] == [0.2, 0.2, 0.02, 0.02]
    with pytest.raises(ValueError, match="learning rate must be in"):
        fit(network(), 1, [LearningRateScheduler(lambda epoch, rate: -1.0)])


def test_csv_logger_writes_the_history_and_appends_for_a_resumed_fit(tmp_path):
    path = tmp_path / "log.csv"
    model = network()
    fit(model, 2, [CSVLogger(path)])
    fit(model, 1, [CSVLogger(path, append=True)])
    with open(path, newline="") as file:
        rows = list(csv.DictReader(file))
    assert [int(row["epoch"]) for row in rows] == [0, 1, 2]      # Keras's epoch indices
    assert list(rows[0]) == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    for name in list(rows[0])[1:]:
        np.testing.assert_allclose([float(row[name]) for row in rows], model.history[name])
    assert os.listdir(tmp_path) == ["log.csv"]      # no temporary file left behind
    fit(model, 1, [CSVLogger(path)])                # not appending: a fresh file
    with open(path, newline="") as file:
        assert [row["epoch"] for row in csv.DictReader(file)] == ["3"]
    with pytest.raises(FileNotFoundError, match="directory .* does not exist"):
        fit(model, 1, [CSVLogger(tmp_path / "missing" / "log.csv")])
    assert model.epochs_done == 4                   # refused before the epoch, not after it


def test_lambda_callback_calls_each_function_with_its_arguments():
    events = []
    callback = LambdaCallback(
        on_train_begin=lambda logs: events.append(("train_begin", logs)),
        on_epoch_begin=lambda epoch, logs: events.append(("epoch_begin", epoch)),
        on_epoch_end=lambda epoch, logs: events.append(("epoch_end", epoch, sorted(logs))),
        on_train_batch_end=lambda batch, logs: events.append(("batch", batch)),
        on_train_end=lambda logs: events.append(("train_end", logs)))
    model = network()
    fit(model, 2, [callback])
    # Keras's: {} at the beginning, the last epoch's logs at the end
    assert events[0] == ("train_begin", {}) and events[-1][0] == "train_end"
    assert sorted(events[-1][1]) == sorted(["loss", "accuracy", "val_loss", "val_accuracy"])
    assert [e[1] for e in events if e[0] == "epoch_begin"] == [0, 1]   # Keras's: from 0
    assert [e for e in events if e[0] == "epoch_end"][0][2] == sorted(
        ["loss", "accuracy", "val_loss", "val_accuracy"])
    assert [e[1] for e in events if e[0] == "batch"] == list(range(6)) * 2
    with pytest.raises(ValueError, match="dlcore calls no on_predict_batch_end"):
        LambdaCallback(on_predict_batch_end=print)
    with pytest.raises(ValueError, match="give on_batch_end or on_train_batch_end"):
        LambdaCallback(on_batch_end=print, on_train_batch_end=print)
    with pytest.raises(ValueError, match="on_epoch_end must be a function"):
        LambdaCallback(on_epoch_end=3)


def test_history_holds_keras_keys_and_epochs_and_callbacks_see_keras_epochs(tmp_path):
    # Keras 3.15, the same fit: History.epoch [0, 1], then [2, 3] for fit(epochs=4,
    # initial_epoch=2); history keys accuracy, loss, val_accuracy, val_loss, and learning_rate
    # only under an LR callback (LearningRateScheduler, ReduceLROnPlateau)
    model = network()
    seen = []
    history = fit(model, 2, [LambdaCallback(
        on_epoch_begin=lambda epoch, logs: seen.append(("begin", epoch)),
        on_epoch_end=lambda epoch, logs: seen.append(("end", epoch)))])
    assert history.epoch == [0, 1]
    assert seen == [("begin", 0), ("end", 0), ("begin", 1), ("end", 1)]
    assert sorted(history.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert len(history.seconds) == 2 and min(history.seconds) > 0
    # the model's own record keeps the rest, as the files and the commands use it
    assert model.history["seconds"][-2:] == history.seconds and "learning_rate" in model.history
    later = model.fit(X, Y, epochs=4, initial_epoch=2, batch_size=16, verbose=0)
    assert later.epoch == [2, 3]
    for callback in (ReduceLROnPlateau(), LearningRateScheduler(lambda epoch, rate: rate)):
        history = fit(network(), 2, [callback])
        assert sorted(history.history) == ["accuracy", "learning_rate", "loss", "val_accuracy",
                                           "val_loss"]
        assert history.history["learning_rate"] == [0.2, 0.2]


def test_checkpoint_names_and_messages_count_epochs_from_1_as_keras(tmp_path, capsys):
    model = network()
    fit(model, 2, [ModelCheckpoint(str(tmp_path / "e{epoch}.h5"), verbose=1),
                   LearningRateScheduler(lambda epoch, rate: rate, verbose=1)])
    assert sorted(os.listdir(tmp_path)) == ["e1.h5", "e2.h5"]     # Keras: epoch + 1
    messages = capsys.readouterr().err
    assert "epoch 1: saved" in messages and "epoch 2: learning rate" in messages
    assert "epoch 0" not in messages


class BatchLosses(Callback):
    """keras.io's "Writing your own callbacks" (Keras 3): per-batch losses recorded with
    on_train_batch_end."""

    def on_train_begin(self, logs=None):
        self.started, self.losses = [], []

    def on_train_batch_begin(self, batch, logs=None):
        self.started.append(batch)

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(logs["loss"])


class Keras2BatchEnds(Callback):
    """A Keras 2 callback: Keras 3's on_train_batch_end calls its on_batch_end."""

    def __init__(self):
        self.batches = []

    def on_batch_begin(self, batch, logs=None):
        self.batches.append(("begin", batch))

    def on_batch_end(self, batch, logs=None):
        self.batches.append(("end", batch, logs is not None))


def test_a_keras_callback_gets_every_batchs_hooks_and_running_logs():
    model, recorder, keras_2 = network(), BatchLosses(), Keras2BatchEnds()
    fit(model, 2, [recorder, keras_2])            # 90 training rows, batches of 16: 6 a pass
    assert recorder.started == list(range(6)) * 2 and len(recorder.losses) == 12
    # the logs are the running means of the epoch so far: the last batch's is the epoch's loss
    assert [recorder.losses[5], recorder.losses[11]] == model.history["loss"]
    assert keras_2.batches[:2] == [("begin", 0), ("end", 0, True)] and len(keras_2.batches) == 24


class SpyBar(ProgressBar):
    def __init__(self, seen):
        super().__init__(150, 1, file=io.StringIO())
        self.seen = seen

    def on_batch_end(self, batch, logs=None):
        self.seen.append(logs is not None)


def test_batch_logs_are_read_only_where_a_callback_asks_for_them_and_the_bar_keeps_its_pace():
    x, y = X[:100].repeat(3, axis=0), Y[:100].repeat(3)       # 150 batches of 2

    def reads_and_reports(callbacks):
        model = network()
        logs, calls, bar_saw = model._logs, [], []
        model._logs = lambda *args, **kwargs: calls.append(1) or logs(*args, **kwargs)
        model.fit(x, y, epochs=1, batch_size=2, verbose=0,
                  callbacks=[SpyBar(bar_saw), *callbacks])
        return len(calls), sum(bar_saw)
    counts = {name: reads_and_reports(callbacks) for name, callbacks in (
        ("none", []), ("epoch hooks", [EarlyStopping("loss")]),
        ("batch hooks", [BatchLosses()]))}
    # a report every 150 // 50 = 3 batches, the epoch's logs and the first batch's (what a
    # first epoch's divergence is measured from): 52 reads; 151 for a callback that records
    # every batch (the first batch's among them), while the bar still gets its 50 reports
    assert counts == {"none": (52, 50), "epoch hooks": (52, 50), "batch hooks": (151, 50)}


@pytest.mark.parametrize("scheduler_first", [False, True])
def test_epoch_logs_and_csv_columns_are_kerass_and_lr_callbacks_add_the_rate(
        tmp_path, scheduler_first):
    """Keras 3.15: the logs at on_epoch_end hold the loss and metrics and their val_ twins; a
    LearningRateScheduler or ReduceLROnPlateau adds learning_rate to them, so a CSVLogger
    listed after one has the column and one listed before it has not (dlcore's logs held
    learning_rate and seconds always)."""
    seen = []
    spy = LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(sorted(logs)))
    fit(network(), 1, [spy, CSVLogger(tmp_path / "plain.csv")])
    assert seen == [["accuracy", "loss", "val_accuracy", "val_loss"]]
    with open(tmp_path / "plain.csv", newline="") as file:
        assert next(csv.reader(file)) == ["epoch", "accuracy", "loss", "val_accuracy",
                                          "val_loss"]
    logger = CSVLogger(tmp_path / "log.csv")
    for scheduler in (LearningRateScheduler(lambda epoch, rate: rate / 2),
                      ReduceLROnPlateau()):
        model = network()
        history = fit(model, 2, [scheduler, logger] if scheduler_first else [logger, scheduler])
        with open(tmp_path / "log.csv", newline="") as file:
            columns = next(csv.reader(file))
        assert ("learning_rate" in columns) is scheduler_first
        assert "seconds" not in columns and "seconds" not in history.history
        assert history.history["learning_rate"] == model.history["learning_rate"]
    assert len(model.history["seconds"]) == 2      # dlcore's record keeps the timing


def test_a_callback_failing_at_an_epochs_end_keeps_that_epoch_as_keras(tmp_path):
    """Keras 3's fit calls on_epoch_end after the epoch's updates and lets its error through,
    the weights those of the trained epoch; the epoch is in the history, and the optimiser's
    state and the counters are those after it, so that fitting on gives the uninterrupted
    weights (training is a pure function of the seed and the epoch counter)."""
    class FailsAtEpoch(Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise OSError(f"cannot write epoch {epoch + 1}: no space left on device")

    whole = network()
    uninterrupted_stopping = EarlyStopping(monitor="loss", patience=10)
    fit(whole, 2, [uninterrupted_stopping])
    after_one = network()
    fit(after_one, 1)
    failed = network()
    stopping = EarlyStopping(monitor="loss", patience=10)
    with pytest.raises(OSError, match="no space left"):
        fit(failed, 2, [FailsAtEpoch(), stopping])
    assert failed.epochs_done == 2 and failed.n_updates == whole.n_updates
    assert failed.history["loss"] == whole.history["loss"]
    for mine, theirs, before in zip(failed.get_weights(), whole.get_weights(),
                                    after_one.get_weights()):
        np.testing.assert_array_equal(mine, theirs)
        assert not np.array_equal(mine, before)
    # the callbacks after the failing one end the epoch too: the state a resumed fit takes
    # is the uninterrupted run's, not one epoch behind
    assert failed.callback_state["EarlyStopping"] == uninterrupted_stopping.get_state()
    assert stopping.get_state() == uninterrupted_stopping.get_state()
    fit(failed, 1)
    fit(whole, 1)
    for mine, theirs in zip(failed.get_weights(), whole.get_weights()):
        np.testing.assert_array_equal(mine, theirs)


def test_two_callbacks_failing_at_an_epochs_end_raise_the_first_and_warn_of_the_second():
    class Fails(Callback):
        def __init__(self, reason):
            self.reason = reason

        def on_epoch_end(self, epoch, logs=None):
            raise OSError(self.reason)

    model = network()
    stopping = EarlyStopping(monitor="loss", patience=10)
    with pytest.raises(OSError, match="first"), \
            pytest.warns(RuntimeWarning, match="Fails.on_epoch_end failed too: second"):
        fit(model, 1, [Fails("first"), Fails("second"), stopping])
    assert stopping.best == model.history["loss"][0]


def test_a_checkpoint_that_cannot_write_keeps_the_epoch_and_its_best(tmp_path, monkeypatch):
    """A ModelCheckpoint whose save fails (a full disk) raises, the model keeps the epoch, and
    the best to beat is not the unsaved epoch's: a later fit saves an equal epoch."""
    import dlcore.io
    model = network()
    checkpoint = ModelCheckpoint(str(tmp_path / "best.h5"), save_best_only=True)

    def no_room(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(dlcore.io, "save", no_room)
    with pytest.raises(OSError, match="No space left"):
        fit(model, 1, [checkpoint])
    assert model.epochs_done == 1 and len(model.history["loss"]) == 1
    assert checkpoint.best == np.inf and not (tmp_path / "best.h5").exists()


def test_a_csv_log_resumed_after_ctrl_c_in_an_epochs_end_has_each_epoch_once(tmp_path):
    """Ctrl-C while a later callback (a checkpoint) ends epoch 1 puts the model back to epoch
    0, after the CSVLogger wrote epoch 1's row: the resumed fit trains epoch 1 again, and the
    file holds it once, as an uninterrupted run's does."""
    class CtrlCAtEpoch(Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    whole = network()
    fit(whole, 3, [CSVLogger(tmp_path / "whole.csv")])
    interrupted = network()
    with pytest.raises(KeyboardInterrupt):
        fit(interrupted, 3, [CSVLogger(tmp_path / "log.csv"), CtrlCAtEpoch()])
    assert interrupted.epochs_done == 1
    fit(interrupted, 2, [CSVLogger(tmp_path / "log.csv", append=True)])
    with open(tmp_path / "log.csv") as log, open(tmp_path / "whole.csv") as uninterrupted:
        assert log.read() == uninterrupted.read()


def test_a_csv_log_appended_to_keeps_the_rows_of_the_runs_before(tmp_path):
    """Keras's append=True keeps every row: one file for the runs of a comparison (a new model
    for each learning rate, each from epoch 0), or a run after an older one. The resumed fit's
    rule (drop the epochs it trains again) dropped every row of the runs before."""
    path = tmp_path / "log.csv"
    for learning_rate in (0.2, 0.05):
        fit(network(learning_rate), 2, [CSVLogger(path, append=True)])
    resumed = network()
    fit(resumed, 2)
    fit(resumed, 1, [CSVLogger(path, append=True)])     # epoch 2
    with open(path, newline="") as file:
        assert [row["epoch"] for row in csv.DictReader(file)] == ["0", "1", "0", "1", "2"]


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("shared", [True, False], ids=["one ProgressBar", "verbose=1"])
def test_fits_at_once_in_threads_report_their_own_epochs_whole_and_named(monkeypatch, shared):
    """Two fits in threads (a threading grid search with verbose=1) drew their bars over each
    other on one terminal line, and a ProgressBar they shared counted both fits' batches.
    Each fit's epoch lines now come whole, in order, named by its network while both run."""
    import re
    import sys
    import threading
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    x = np.random.default_rng(0).random((40, 3))
    y = np.arange(40) % 2
    both_running = threading.Barrier(2, timeout=60)
    bar = ProgressBar(4, 3)
    failures = []

    def fit(name):
        model = dlcore.Sequential([Dense(2, activation="softmax")], input_shape=(3,),
                                  backend="reference", seed=0, name=name)
        model.compile("cross_entropy", SGD(0.1))
        together = LambdaCallback(on_epoch_begin=lambda epoch, logs: both_running.wait())
        try:
            model.fit(x, y, epochs=3, batch_size=10, verbose=0 if shared else 1,
                      callbacks=[together] + ([bar] if shared else []))
        except Exception as error:   # noqa: BLE001 - reported below
            failures.append(error)

    threads = [threading.Thread(target=fit, args=(name,)) for name in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    written = [part.replace("\x1b[2K", "") for part in re.split(r"[\r\n]", terminal.getvalue())
               if ": epoch" in part]
    assert len(written) == 6, terminal.getvalue()
    for name in ("first", "second"):
        epochs = [re.fullmatch(rf"{name}: epoch (\d)/3: loss \d\.\d+ .*", part)
                  for part in written if part.startswith(name)]
        assert [int(match.group(1)) for match in epochs] == [1, 2, 3], written
    assert not sys.modules["dlcore.callbacks"]._PROGRESS_FITS   # none left once they ended


def test_a_callback_fits_in_threads_share_sees_the_model_and_params_of_the_fit_calling_it():
    """A user's progress callback given to two fits at once in threads (a threading grid
    search's fit parameters) saw, in the hooks of both, the network and the steps of the fit
    set up last: it reported (stopped, saved) the other fit's network. Its own attributes
    the fits share, as Keras's: it records both."""
    import sys
    import threading
    x = np.random.default_rng(0).random((40, 3))
    y = np.arange(40) % 2
    both_set_up = threading.Barrier(2, timeout=60)
    failures = []

    class Progress(Callback):
        def __init__(self):
            self.seen = []

        def on_epoch_begin(self, epoch, logs=None):
            both_set_up.wait()

        def on_epoch_end(self, epoch, logs=None):
            self.seen.append((threading.current_thread().name, self.model.name,
                              self.params["steps"]))
    progress = Progress()

    def fit(name, batch_size):
        model = dlcore.Sequential([Dense(2, activation="softmax")], input_shape=(3,),
                                  backend="reference", seed=0, name=name)
        model.compile("cross_entropy", SGD(0.1))
        try:
            model.fit(x, y, epochs=2, batch_size=batch_size, verbose=0, callbacks=[progress])
        except Exception as error:   # noqa: BLE001 - reported below
            failures.append(error)

    threads = [threading.Thread(target=fit, args=(name, batch_size), name=name)
               for name, batch_size in (("first", 10), ("second", 20))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    # each fit's steps: 40 rows in batches of 10 and of 20
    assert sorted(progress.seen) == [("first", "first", 4)] * 2 + [("second", "second", 2)] * 2
    assert progress.model.name in ("first", "second")   # after the fits: the last one set
    assert not sys.modules["dlcore.callbacks"]._FIT_SETTINGS   # none left once they ended


def test_a_model_a_callback_sets_in_its_own_hook_is_the_one_its_later_hooks_see():
    """A user's callback that wraps the network it is given (``self.model = Wrapped(...)`` in
    on_train_begin, as a Keras 2 callback may) saw the fit's network again in its later hooks:
    the fit's own setting hid the assignment until the fit ended."""
    x = np.random.default_rng(0).random((20, 3))
    y = np.arange(20) % 2

    class Wrapped:
        def __init__(self, network):
            self.network = network

    class Wrapping(Callback):
        def __init__(self):
            self.seen = []

        def on_train_begin(self, logs=None):
            self.model = Wrapped(self.model)

        def on_epoch_end(self, epoch, logs=None):
            self.seen.append(self.model)

    network = dlcore.Sequential([Dense(2, activation="softmax")], input_shape=(3,),
                                backend="reference", seed=0)
    network.compile("cross_entropy", SGD(0.1))
    wrapping = Wrapping()
    network.fit(x, y, epochs=2, batch_size=10, verbose=0, callbacks=[wrapping])
    assert [type(model) for model in wrapping.seen] == [Wrapped, Wrapped]
    assert all(model.network is network for model in wrapping.seen)
    assert wrapping.model is wrapping.seen[-1]   # after the fit, as in it


def test_a_fit_whose_callback_failed_to_begin_leaves_no_fit_on_the_stream(monkeypatch):
    """A callback whose on_train_begin raised after a ProgressBar's (a ProgressBar given
    before it) left that fit on the stream for good: every later fit of the program, alone,
    started its lines with its network's name, as if another fit reported beside it."""
    import sys

    class FailsToBegin(Callback):
        def on_train_begin(self, logs=None):
            raise RuntimeError("cannot begin")
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    x = np.random.default_rng(0).random((8, 3))
    y = np.arange(8) % 2
    model = dlcore.Sequential([Dense(2, activation="softmax")], input_shape=(3,),
                              backend="reference", seed=0).compile("cross_entropy", SGD(0.1))
    with pytest.raises(RuntimeError, match="cannot begin"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[ProgressBar(1, 1), FailsToBegin()])
    model.fit(x, y, epochs=1, verbose=1)
    assert stream.getvalue().startswith("epoch 1/1: loss "), stream.getvalue()


def test_a_history_pickled_before_its_epoch_lists_existed_works_in_a_new_fit():
    import pickle

    from dlcore.callbacks import History
    old = History()
    for name in ("seconds", "_logged_epochs"):   # as a dlcore of before them pickled it
        del old.__dict__[name]
    history = pickle.loads(pickle.dumps(old))
    fit(network(), 2, [history])
    assert history.epoch == [0, 1] and len(history.history["loss"]) == 2
    assert history.epochs_of("val_loss") == [0, 1] and len(history.seconds) == 2


class EveryHook(Callback):
    """Keras's guide "Writing your own callbacks": every hook, its logs taken by position and
    used as the dict Keras gives (its ``logs.keys()`` failed on dlcore's None)."""

    def __init__(self):
        super().__init__()
        self.events = []

    def on_train_begin(self, logs):
        self.events.append(("train_begin", sorted(logs.keys())))

    def on_epoch_begin(self, epoch, logs):
        self.events.append(("epoch_begin", epoch, sorted(logs.keys())))

    def on_train_batch_begin(self, batch, logs):
        self.events.append(("train_batch_begin", batch, sorted(logs.keys())))

    def on_test_begin(self, logs):
        self.events.append(("test_begin", sorted(logs.keys())))

    def on_test_batch_begin(self, batch, logs):
        self.events.append(("test_batch_begin", batch, sorted(logs.keys())))

    def on_test_batch_end(self, batch, logs):
        self.events.append(("test_batch_end", batch, dict(logs)))

    def on_test_end(self, logs):
        self.events.append(("test_end", dict(logs)))

    def on_epoch_end(self, epoch, logs):
        self.events.append(("epoch_end", epoch, dict(logs)))

    def on_train_end(self, logs):
        self.events.append(("train_end", dict(logs)))


def test_every_hook_gets_keras_logs_and_fits_validation_calls_the_test_hooks():
    # Keras 3's order and logs: {} at every beginning; the validation of each epoch runs the
    # test hooks (logs without val_); on_train_end gets the last epoch's logs
    recorder = EveryHook()
    model = network()
    model.fit(X, Y, epochs=2, batch_size=16, validation_split=0.25, validation_batch_size=10,
              verbose=0, callbacks=[recorder])
    kinds = [event[0] for event in recorder.events]
    n_valid = held_out(len(X), 0.25)
    train_batches, valid_batches = -(-(len(X) - n_valid) // 16), -(-n_valid // 10)
    epoch_kinds = (["epoch_begin"] + ["train_batch_begin"] * train_batches + ["test_begin"]
                   + ["test_batch_begin", "test_batch_end"] * valid_batches
                   + ["test_end", "epoch_end"])
    assert kinds == ["train_begin", *epoch_kinds, *epoch_kinds, "train_end"]
    assert all(event[-1] == [] for event in recorder.events if event[0].endswith("begin"))
    test_ends = [event[1] for event in recorder.events if event[0] == "test_end"]
    epoch_ends = [event[2] for event in recorder.events if event[0] == "epoch_end"]
    for test_logs, epoch_logs in zip(test_ends, epoch_ends, strict=True):
        assert test_logs == {name[4:]: value for name, value in epoch_logs.items()
                             if name.startswith("val_")}
    last_batch = [event[2] for event in recorder.events if event[0] == "test_batch_end"][-1]
    assert last_batch == test_ends[-1]       # running means: the last one is the whole set
    assert recorder.events[-1] == ("train_end", epoch_ends[-1])


def test_a_recorder_whose_hooks_take_logs_without_a_default_runs():
    # Keras's guide "Training & evaluation with the built-in methods": its LossHistory
    class LossHistory(Callback):
        def on_train_begin(self, logs):
            self.per_batch_losses = []

        def on_batch_end(self, batch, logs):
            self.per_batch_losses.append(logs.get("loss"))

    history = LossHistory()
    fit(network(), 1, [history])
    assert len(history.per_batch_losses) == 6 and all(
        isinstance(loss, float) for loss in history.per_batch_losses)
