"""A BackupAndRestore folder shared by fits (dlcore/callbacks.py, dlcore/training.py,
dlcore/wrappers.py): fits at once, and a grid search's fits in turn.

Oracles: a fit holds its backup folder from start to end (an OS-level lock), so a second
fit given it at the same time is refused in one line instead of restoring the first's
epochs; the scikit-learn wrappers give each fit a folder of its own, so that a grid search
with a BackupAndRestore (in turn, at once, and run again after an interruption) scores as
the same search without one (training is a pure function of the seed, the data and the
settings).
"""
import functools
import os
import re

import numpy as np
import pytest

import dlcore
from dlcore.callbacks import BackupAndRestore, LambdaCallback
from dlcore.io.atomic import lock_folder
from dlcore.layers import Dense
from dlcore.wrappers import SKLearnClassifier

X = np.random.default_rng(0).random((48, 5)).astype(np.float32)
Y = np.random.default_rng(1).integers(0, 2, 48)


def mlp(X, y, hidden=6, optimizer="adam"):
    network = dlcore.Sequential([Dense(hidden, activation="relu"),
                                 Dense(y.shape[1], activation="softmax")],
                                input_shape=(X.shape[1],), backend="cpu", seed=2)
    network.compile("categorical_crossentropy", optimizer)
    return network


def interrupt_at(epoch):
    """A callback pressing Ctrl-C as Keras's epoch ``epoch`` starts."""
    def press(index, logs):
        if index == epoch:
            raise KeyboardInterrupt
    return LambdaCallback(on_epoch_begin=press)


class CtrlCOnce:
    """An ``on_epoch_begin`` pressing Ctrl-C as Keras's epoch ``epoch`` starts, once, after
    :meth:`arm` (the fits before it run whole)."""

    def __init__(self, epoch):
        self.epoch, self.state = epoch, "waiting"

    def arm(self):
        self.state = "armed"

    def __call__(self, index, logs):
        if self.state == "armed" and index == self.epoch:
            self.state = "pressed"
            raise KeyboardInterrupt


def warm_start_wrapper(on_epoch_begin, backup_dir):
    """A warm-start wrapper of two epochs a fit, calling ``on_epoch_begin`` (the test's
    Ctrl-C) at each epoch, with a BackupAndRestore in ``backup_dir`` (None: without one)."""
    backups = [] if backup_dir is None else [BackupAndRestore(backup_dir)]
    return SKLearnClassifier(mlp, warm_start=True, fit_kwargs={
        "epochs": 2, "batch_size": 8,
        "callbacks": [LambdaCallback(on_epoch_begin=on_epoch_begin), *backups]})


def test_a_backup_dir_that_another_fit_holds_is_refused_in_one_line(tmp_path):
    other_fit = lock_folder(tmp_path, "pid 12345: a fit with BackupAndRestore")
    network = mlp(X, np.eye(2)[Y])
    before = [weight.copy() for weight in network.get_weights()]
    with pytest.raises(ValueError) as refused:
        network.fit(X, Y, epochs=1, verbose=0, callbacks=[BackupAndRestore(tmp_path)])
    message = str(refused.value)
    assert "\n" not in message and "in use by another fit (pid 12345" in message
    assert message.endswith("give each fit that runs at the same time a backup_dir of its own")
    for weight, old in zip(network.get_weights(), before):
        np.testing.assert_array_equal(weight, old)
    other_fit.release()
    backup = BackupAndRestore(tmp_path)
    nested = LambdaCallback(on_epoch_begin=lambda epoch, logs: mlp(X, np.eye(2)[Y]).fit(
        X, Y, epochs=1, verbose=0, callbacks=[backup]))
    with pytest.raises(ValueError, match="in use by another fit"):   # the same callback
        mlp(X, np.eye(2)[Y]).fit(X, Y, epochs=1, verbose=0, callbacks=[backup, nested])
    # a second callback on the same folder, in a fit started inside the running one: said
    # to be this process's own, where "another fit (pid <own pid>)" was left to be guessed
    inside = LambdaCallback(on_epoch_begin=lambda epoch, logs: mlp(X, np.eye(2)[Y]).fit(
        X, Y, epochs=1, verbose=0, callbacks=[BackupAndRestore(tmp_path)]))
    with pytest.raises(ValueError, match=r"in use by another fit in this process \(a "
                                         r"thread's, or the fit this one was started in\) "
                                         rf"\(pid {os.getpid()}: "):
        mlp(X, np.eye(2)[Y]).fit(X, Y, epochs=1, verbose=0,
                                 callbacks=[BackupAndRestore(tmp_path), inside])
    with pytest.raises(ValueError, match="validation_split"):   # fails after holding it
        network.fit(X, Y, epochs=1, verbose=0, callbacks=[backup], validation_split=2.0)
    # the failed fit let go of the folder: a fit run again in the same session takes it
    network.fit(X, Y, epochs=1, verbose=0, callbacks=[BackupAndRestore(tmp_path)])
    assert not tmp_path.exists()             # its backup and lock gone, then the folder


def test_a_wrapper_s_fits_each_restore_their_own_backup(tmp_path):
    first, second = slice(0, 24), slice(24, 48)
    armed = []

    def press_once(index, logs):   # Ctrl-C as epoch 2 of the fit armed starts, once
        if index == 2 and armed and not armed[0]:
            armed[0] = True
            raise KeyboardInterrupt

    def fitted(rows, backup=True):
        callbacks = [LambdaCallback(on_epoch_begin=press_once)]
        return SKLearnClassifier(mlp, fit_kwargs={
            "epochs": 3, "batch_size": 8,
            "callbacks": callbacks + ([BackupAndRestore(tmp_path)] if backup else [])}) \
            .fit(X[rows], Y[rows])
    whole = [fitted(rows, backup=False).model_.get_weights() for rows in (first, second)]
    fitted(first)
    armed.append(False)
    with pytest.raises(KeyboardInterrupt):   # the second fit, stopped after its epoch 2
        fitted(second)
    # the script run again: the first fit trains afresh (it had ended), the second resumes
    again = [fitted(rows) for rows in (first, second)]
    assert [len(fit.history_["loss"]) for fit in again] == [3, 1]
    for mine, theirs in zip(again, whole):
        for weight, expected in zip(mine.model_.get_weights(), theirs):
            np.testing.assert_array_equal(weight, expected)
    assert os.listdir(tmp_path) == []        # each fit's folder deleted as it ended


def test_a_wrapper_s_backup_dir_under_a_file_is_refused_in_one_line(tmp_path):
    (tmp_path / "notes").write_text("")
    wrapper = SKLearnClassifier(mlp, fit_kwargs={
        "epochs": 1, "callbacks": [BackupAndRestore(tmp_path / "notes" / "backup")]})
    # the folder of this fit's own backup inside it (BackupAndRestore.for_fit)
    with pytest.raises(OSError, match=f"^cannot write "
                                      f"{re.escape(str(tmp_path / 'notes' / 'backup'))}.*: "
                                      f"{re.escape(str(tmp_path / 'notes'))} on its way is a "
                                      r"file, not a folder \(errno 20\); write it to a folder "
                                      r"you may write to$"):
        wrapper.fit(X, Y)


def test_a_grid_search_with_two_jobs_at_once_scores_as_without_a_backup(tmp_path):
    from joblib import parallel_backend
    from sklearn.model_selection import GridSearchCV

    def scores(callbacks):
        search = GridSearchCV(
            SKLearnClassifier(mlp, fit_kwargs={"epochs": 2, "batch_size": 8,
                                               "callbacks": callbacks}),
            {"model_kwargs": [{"hidden": 4}, {"hidden": 6}]}, cv=2, n_jobs=2,
            error_score="raise")
        with parallel_backend("threading"):   # the fits at once in one process: quick
            search.fit(X, Y)
        return [search.cv_results_[f"split{fold}_test_score"] for fold in (0, 1)]
    np.testing.assert_array_equal(scores([BackupAndRestore(tmp_path)]), scores([]))
    assert os.listdir(tmp_path) == []


def test_a_warm_start_s_fits_on_the_same_data_each_restore_their_own_backup(tmp_path):
    press_once = CtrlCOnce(3)   # as the second fit's second epoch starts

    def wrapper(backup=True):
        return warm_start_wrapper(press_once, tmp_path if backup else None)
    whole = wrapper(backup=False).fit(X, Y).fit(X, Y)
    interrupted = wrapper().fit(X, Y)
    press_once.arm()
    with pytest.raises(KeyboardInterrupt):   # the second fit, stopped after its epoch 1
        interrupted.fit(X, Y)
    # the script run again: the first fit trains afresh, the second resumes its own backup
    again = wrapper().fit(X, Y)
    assert len(again.history_["loss"]) == 2
    again.fit(X, Y)
    assert len(again.history_["loss"]) == 1 and again.model_.epochs_done == 4
    for weight, expected in zip(again.model_.get_weights(), whole.model_.get_weights()):
        np.testing.assert_array_equal(weight, expected)


def test_candidates_that_differ_only_in_an_optimiser_object_each_have_their_backup(tmp_path):
    from dlcore.optimizers import Adam
    stop = [True]

    def press_once(index, logs):
        if index == 1 and stop:
            stop.clear()
            raise KeyboardInterrupt

    def fitted(rate):
        return SKLearnClassifier(mlp, model_kwargs={"optimizer": Adam(rate)}, fit_kwargs={
            "epochs": 2, "batch_size": 8, "callbacks": [
                LambdaCallback(on_epoch_begin=press_once), BackupAndRestore(tmp_path)]}) \
            .fit(X, Y)
    with pytest.raises(KeyboardInterrupt):   # the candidate of rate 0.001, after epoch 1
        fitted(0.001)
    # the other candidate (same seed and architecture) restored that backup as its own
    assert len(fitted(0.01).history_["loss"]) == 2


def test_a_wrapper_fit_run_again_in_the_same_session_resumes_with_its_early_stopping(tmp_path):
    """A notebook's cell run again after a Ctrl-C: the callbacks are the same objects, and
    their state of the interrupted fit (EarlyStopping's best, wait) names no other fit."""
    from dlcore.callbacks import EarlyStopping
    armed = [False]

    def press_once(index, logs):   # Ctrl-C as epoch 2 starts, once
        if index == 2 and not armed[0]:
            armed[0] = True
            raise KeyboardInterrupt

    def wrapper(backup):
        return SKLearnClassifier(mlp, fit_kwargs={
            "epochs": 3, "batch_size": 8, "callbacks": [
                EarlyStopping(monitor="loss", patience=5),
                LambdaCallback(on_epoch_begin=press_once)]
            + ([BackupAndRestore(tmp_path)] if backup else [])})
    armed[0] = True
    whole = wrapper(backup=False).fit(X, Y)
    armed[0] = False
    classifier = wrapper(backup=True)
    with pytest.raises(KeyboardInterrupt):
        classifier.fit(X, Y)
    classifier.fit(X, Y)   # the cell run again
    assert len(classifier.history_["loss"]) == 1
    for weight, expected in zip(classifier.model_.get_weights(), whole.model_.get_weights()):
        np.testing.assert_array_equal(weight, expected)
    assert os.listdir(tmp_path) == []


def test_a_warm_start_s_interrupted_fit_run_again_in_the_same_session_resumes(tmp_path):
    press_once = CtrlCOnce(3)   # as the second fit's second epoch starts

    def wrapper(backup=True):
        return warm_start_wrapper(press_once, tmp_path if backup else None)
    whole = wrapper(backup=False).fit(X, Y).fit(X, Y)
    classifier = wrapper().fit(X, Y)
    press_once.arm()
    with pytest.raises(KeyboardInterrupt):
        classifier.fit(X, Y)
    classifier.fit(X, Y)   # the cell run again, on the network the interruption left
    assert classifier.model_.epochs_done == 4 and len(classifier.history_["loss"]) == 1
    for weight, expected in zip(classifier.model_.get_weights(), whole.model_.get_weights()):
        np.testing.assert_array_equal(weight, expected)
    assert os.listdir(tmp_path) == []
    kept = SKLearnClassifier(mlp, warm_start=True, fit_kwargs={   # backups kept: each fit's own
        "epochs": 2, "batch_size": 8,
        "callbacks": [BackupAndRestore(tmp_path / "kept", delete_checkpoint=False)]})
    assert kept.fit(X, Y).fit(X, Y).model_.epochs_done == 4


def test_a_fit_refused_the_folder_leaves_it_held_by_the_fit_that_runs(tmp_path):
    from dlcore.io.atomic import FolderInUseError
    backup = BackupAndRestore(tmp_path)
    found = []

    def nested(index, logs):   # a fit given the running fit's callback, refused; then another
        if index == 0:
            with pytest.raises(ValueError, match="in use by another fit"):
                mlp(X, np.eye(2)[Y]).fit(X, Y, epochs=1, verbose=0, callbacks=[backup])
            try:
                lock_folder(tmp_path, "pid 1: another fit").release()
                found.append("taken")
            except FolderInUseError:
                found.append("held")
    mlp(X, np.eye(2)[Y]).fit(X, Y, epochs=1, verbose=0,
                             callbacks=[LambdaCallback(on_epoch_begin=nested), backup])
    assert found == ["held"]
    assert not tmp_path.exists()


def ctrl_c_after(function):
    """``function`` that presses Ctrl-C as it returns (a signal landing between its return
    and the caller's next bytecode)."""
    def pressed(*args, **kwargs):
        function(*args, **kwargs)
        raise KeyboardInterrupt
    return pressed


@pytest.mark.parametrize("where", ["lock taken", "hold returned", "lock file written"])
def test_a_ctrl_c_as_a_fit_takes_its_backup_folder_leaves_it_free(tmp_path, monkeypatch, where):
    import dlcore.io.atomic as atomic
    patches = {"lock taken": (atomic, "lock_folder", ctrl_c_after(atomic.lock_folder)),
               "hold returned": (BackupAndRestore, "hold", ctrl_c_after(BackupAndRestore.hold)),
               "lock file written": (os, "write", ctrl_c_after(os.write))}
    with monkeypatch.context() as patched:
        patched.setattr(*patches[where])
        with pytest.raises(KeyboardInterrupt):
            mlp(X, np.eye(2)[Y]).fit(X, Y, epochs=1, verbose=0,
                                     callbacks=[BackupAndRestore(tmp_path / "backup")])
    # the notebook's cell run again: the folder is free, and the fit leaves nothing behind
    mlp(X, np.eye(2)[Y]).fit(X, Y, epochs=1, verbose=0,
                             callbacks=[BackupAndRestore(tmp_path / "backup")])
    assert os.listdir(tmp_path) == []


def test_a_fit_that_fails_before_its_first_backup_leaves_no_folder(tmp_path):
    backup = BackupAndRestore(tmp_path / "runs" / "backup")
    with pytest.raises(ValueError, match="validation_split"):
        mlp(X, np.eye(2)[Y]).fit(X, Y, epochs=1, verbose=0, callbacks=[backup],
                                 validation_split=2.0)
    with pytest.raises(KeyboardInterrupt):
        mlp(X, np.eye(2)[Y]).fit(X, Y, epochs=2, verbose=0,
                                 callbacks=[interrupt_at(0), backup])
    assert os.listdir(tmp_path) == []
    (tmp_path / "mine").mkdir()   # a folder of the user's own stays, though empty
    with pytest.raises(KeyboardInterrupt):
        mlp(X, np.eye(2)[Y]).fit(X, Y, epochs=2, verbose=0,
                                 callbacks=[interrupt_at(0), BackupAndRestore(tmp_path / "mine")])
    assert os.listdir(tmp_path) == ["mine"] and os.listdir(tmp_path / "mine") == []
    with pytest.raises(KeyboardInterrupt):   # stopped after a backup: that is kept
        mlp(X, np.eye(2)[Y]).fit(X, Y, epochs=2, verbose=0,
                                 callbacks=[interrupt_at(1), backup])
    assert os.listdir(tmp_path / "runs" / "backup") == [BackupAndRestore.FILE_NAME]


def press_at(epoch, logs, at):
    """Ctrl-C as Keras's epoch ``at`` starts."""
    if epoch == at:
        raise KeyboardInterrupt


def test_grid_search_candidates_that_differ_in_a_callback_s_functions_have_their_own_backups(
        tmp_path):
    from sklearn.base import clone
    candidates = {   # the hook of a fit stopped after its epoch 1; that of another candidate
        "lambdas of other code": (lambda epoch, logs: press_at(epoch, logs, 1),
                                  lambda epoch, logs: None),
        "lambdas of other defaults": (lambda epoch, logs, at=1: press_at(epoch, logs, at),
                                      lambda epoch, logs, at=5: press_at(epoch, logs, at)),
        "partials of other arguments": (functools.partial(press_at, at=1),
                                        functools.partial(press_at, at=5))}
    for name, (stopped, other) in candidates.items():
        def wrapper(hook, folder=tmp_path / name):
            return SKLearnClassifier(mlp, fit_kwargs={
                "epochs": 3, "batch_size": 8,
                "callbacks": [LambdaCallback(on_epoch_begin=hook), BackupAndRestore(folder)]})
        with pytest.raises(KeyboardInterrupt):
            wrapper(stopped).fit(X, Y)
        # trained afresh: the other candidate's backup is not its own
        assert len(wrapper(other).fit(X, Y).history_["loss"]) == 3, name
    # the same candidate run again (a clone, as a search makes) resumes its own, though the
    # fit changed what its functions hold (a list they append to)
    pressed = []

    def press_once(epoch, logs):
        if epoch == 1 and not pressed:
            pressed.append(epoch)
            raise KeyboardInterrupt
    wrapper = SKLearnClassifier(mlp, fit_kwargs={"epochs": 3, "batch_size": 8, "callbacks": [
        LambdaCallback(on_epoch_begin=press_once), BackupAndRestore(tmp_path / "same")]})
    with pytest.raises(KeyboardInterrupt):
        clone(wrapper).fit(X, Y)
    assert len(clone(wrapper).fit(X, Y).history_["loss"]) == 2


def test_a_candidate_whose_function_counts_in_its_closure_resumes_its_own_backup(tmp_path):
    # a hook counting its calls in a variable of its scope (nonlocal): the fit changes the
    # number it closes over, and the candidate run again must still name the same fit
    def counting_hook():
        calls = 0

        def hook(epoch, logs):
            nonlocal calls
            calls += 1
            if calls == 2:   # Ctrl-C as Keras's epoch 1 starts, once
                raise KeyboardInterrupt
        return hook
    wrapper = SKLearnClassifier(mlp, fit_kwargs={"epochs": 3, "batch_size": 8, "callbacks": [
        LambdaCallback(on_epoch_begin=counting_hook()), BackupAndRestore(tmp_path)]})
    with pytest.raises(KeyboardInterrupt):
        wrapper.fit(X, Y)
    assert len(wrapper.fit(X, Y).history_["loss"]) == 2   # resumed after its epoch 0


def test_two_threads_fitting_with_one_callback_at_once_leave_no_lock_behind(
        tmp_path, monkeypatch):
    # two fits of a notebook's thread pool given the same callback start together: the
    # second was refused after both had passed hold()'s check, and its refusal cleared the
    # lock that the first took, which nothing then freed: the folder stayed locked by the
    # notebook's own kernel until it restarted
    import threading
    import time

    from dlcore import callbacks
    found = callbacks._missing_folders

    def slow_missing_folders(folder):   # a file system that takes its time to answer
        time.sleep(0.2)
        return found(folder)
    monkeypatch.setattr(callbacks, "_missing_folders", slow_missing_folders)
    backup, owners, refused = BackupAndRestore(tmp_path / "backup"), ("first", "second"), []

    def hold(owner):
        try:
            backup.hold(owner=owner)
        except ValueError as error:
            refused.append((owner, str(error)))
    threads = [threading.Thread(target=hold, args=(owner,)) for owner in owners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(refused) == 1 and "in use by another fit" in refused[0][1]
    for owner in owners:   # each fit's clean-up
        backup.release(owner=owner)
    lock_folder(tmp_path / "backup", "the next fit").release()   # free again


@pytest.mark.parametrize("inner_callback", ["the same", "another for the folder"])
def test_a_fit_refused_inside_a_fit_of_the_same_network_leaves_the_running_fit_s_lock(
        tmp_path, inner_callback):
    # a callback fitting its own network again (the same callback, or another given the
    # folder): the inner fit is refused, and its clean-up freed the running fit's lock (the
    # folder open to another process's fit while this one writes its backups) or, given
    # another callback, dropped the running fit's record of it (the lock left until the
    # process ended)
    from dlcore.io.atomic import FolderInUseError
    targets = np.eye(2)[Y]
    network, backup = mlp(X, targets), BackupAndRestore(tmp_path / "backup")
    inner_backup = backup if inner_callback == "the same" else BackupAndRestore(
        tmp_path / "backup")
    seen = []

    def fit_again(epoch, logs):
        if epoch == 0:
            with pytest.raises(ValueError, match="in use by another fit"):
                network.fit(X, targets, epochs=1, verbose=0, callbacks=[inner_backup])
            try:
                lock_folder(tmp_path / "backup", "another process's fit").release()
                seen.append("free")
            except FolderInUseError:
                seen.append("held")
    with pytest.raises(KeyboardInterrupt):   # Ctrl-C in its epoch 1
        network.fit(X, targets, epochs=3, verbose=0, callbacks=[
            LambdaCallback(on_epoch_end=fit_again), interrupt_at(1), backup])
    assert seen == ["held"]   # still the running fit's
    lock_folder(tmp_path / "backup", "the next fit").release()   # freed as it ended


def test_a_folder_removed_by_another_fit_s_end_as_this_one_takes_it_is_made_again_and_locked(
        tmp_path, monkeypatch):
    # another process's fit with the folder ended (removing it, empty) between this fit's
    # making it and locking it: the lock file could not be made, and this fit ran unlocked
    from dlcore.io import atomic
    from dlcore.io.atomic import FolderInUseError
    folder, found, calls = tmp_path / "backup", atomic.lock_folder, []

    def after_the_other_fit_ended(path, holder, into=None):
        if not calls:
            os.rmdir(path)
        calls.append(path)
        return found(path, holder, into=into)
    monkeypatch.setattr(atomic, "lock_folder", after_the_other_fit_ended)
    backup = BackupAndRestore(folder)
    backup.hold(owner="this fit")
    with pytest.raises(FolderInUseError):   # held: a second fit is refused
        found(folder, "another process's fit")
    backup.release(owner="this fit")
    assert not folder.exists()   # and made by this fit, it goes with it


def test_wrapper_fits_at_once_sharing_a_checkpoint_and_log_write_them_one_after_the_other(
        tmp_path, capfd):
    # a grid search's fits at once (n_jobs=2) all wrote the one ModelCheckpoint file and CSV
    # log in fit_kwargs: candidates overwrote each other's checkpoints, lost each other's rows
    import threading
    import time

    from dlcore.callbacks import CSVLogger, ModelCheckpoint
    # the checkpoint's folder missing, as ModelCheckpoint makes it: held from the start too
    options = {"epochs": 2, "batch_size": 8, "callbacks": [
        ModelCheckpoint(tmp_path / "runs" / "best.h5", monitor="loss"),
        CSVLogger(tmp_path / "log.csv")]}
    began, other = [], []

    def second_fit():
        began.append("second")
        SKLearnClassifier(mlp, fit_kwargs={**options, "epochs": 3, "callbacks": [
            LambdaCallback(on_train_begin=lambda logs: began.append("second trains")),
            options["callbacks"][0]]}).fit(X, Y)   # the checkpoint alone

    def start_another(epoch, logs):
        if epoch == 0:
            other.append(threading.Thread(target=second_fit))
            other[0].start()
            time.sleep(0.3)   # the second fit waits for this one's end to train
            began.append("first goes on")
            with pytest.raises(ValueError, match=r"^(CSVLogger|ModelCheckpoint)'s file .* is "
                                                 "written by the fit this one was started in"):
                SKLearnClassifier(mlp, fit_kwargs=options).fit(X, Y)   # would wait for ever
    SKLearnClassifier(mlp, fit_kwargs={**options, "callbacks": [
        LambdaCallback(on_epoch_begin=start_another), *options["callbacks"]]}).fit(X, Y)
    other[0].join()
    assert began == ["second", "first goes on", "second trains"]
    assert "waiting for another fit in this process (a thread's) writing ModelCheckpoint's " \
        "file" in capfd.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["log.csv", "runs"]   # no lock file left
    assert os.listdir(tmp_path / "runs") == ["best.h5"]
    # the checkpoint is the second fit's whole (its three epochs), the log the first's
    assert len(dlcore.load(tmp_path / "runs" / "best.h5").history["loss"]) == 3
    assert len((tmp_path / "log.csv").read_text().splitlines()) == 3
    with pytest.raises(ValueError, match="validation_split"):   # failed: no folder left
        SKLearnClassifier(mlp, fit_kwargs={**options, "validation_split": 2.0, "callbacks": [
            ModelCheckpoint(tmp_path / "new" / "best.h5")]}).fit(X, Y)
    assert not (tmp_path / "new").exists()


def test_the_backup_dir_a_wrapper_fit_made_goes_with_the_last_fit_though_another_made_it(
        tmp_path):
    # the fit that made backup_dir ended first, with another fit's folder in it; the other,
    # which had not made it, left it behind, empty
    import threading
    shared = tmp_path / "runs" / "backups"   # runs/ made by the first fit too
    second_trains, first_ended, failures = threading.Event(), threading.Event(), []

    def wrapper(on_epoch_begin, hidden):
        return SKLearnClassifier(mlp, model_kwargs={"hidden": hidden}, fit_kwargs={
            "epochs": 2, "batch_size": 8, "callbacks": [
                LambdaCallback(on_epoch_begin=on_epoch_begin), BackupAndRestore(shared)]})

    def second(epoch, logs):
        if epoch == 1:   # the first fit's folder and its own are in backup_dir now
            second_trains.set()
            first_ended.wait(60)

    def run_second():
        try:
            wrapper(second, 4).fit(X, Y)
        except BaseException as error:   # said by the test, not lost in the thread
            failures.append(error)
            second_trains.set()
    other = []

    def first(epoch, logs):
        if epoch == 1:
            other.append(threading.Thread(target=run_second))
            other[0].start()
            second_trains.wait(60)
    wrapper(first, 6).fit(X, Y)
    first_ended.set()
    other[0].join()
    assert failures == [] and os.listdir(tmp_path) == []


def test_a_fit_waiting_for_a_checkpoint_whose_folder_the_holder_s_end_removed_holds_it_again(
        tmp_path, monkeypatch):
    # the fit that held the checkpoint failed before its first save and removed the folder it
    # had made, empty: the waiting fit's lock file could no longer be made, and it (then every
    # later fit) wrote the checkpoint unlocked, one fit's over another's
    import threading
    import time
    import types

    from dlcore import wrappers
    from dlcore.callbacks import ModelCheckpoint
    waits = threading.Event()

    def wait(seconds):
        waits.set()
        time.sleep(0.01)
    monkeypatch.setattr(wrappers, "time", types.SimpleNamespace(sleep=wait))
    callbacks = [ModelCheckpoint(tmp_path / "runs" / "best.h5")]
    first, second = [], []
    wrappers._hold_written_files(callbacks, first)   # the failing fit's: it made runs/
    waiting = threading.Thread(target=wrappers._hold_written_files, args=(callbacks, second))
    waiting.start()
    assert waits.wait(5)   # the second fit waits for the file
    wrappers._release_written_files(first)   # the first fit's end: the empty runs/ goes
    waiting.join(5)
    assert not waiting.is_alive()
    try:
        assert second[0].descriptor is not None   # held, not unlocked
        assert (tmp_path / "runs" / ".best.h5.dlcore-fit.lock").is_file()
    finally:
        wrappers._release_written_files(second)
    assert not (tmp_path / "runs").exists()   # the second fit made it again: gone with it


def test_a_shared_backup_dir_the_last_fit_removed_as_another_started_goes_with_that_one(
        tmp_path, monkeypatch):
    # the last of a search's fits to leave removed backup_dir (its mark alone in it) as
    # another fit started, between that fit's finding the folder there and making its own in
    # it: the starting fit made backup_dir again, knew it not, and left it behind, empty
    from dlcore import callbacks
    shared, found, calls = tmp_path / "runs", callbacks._missing_folders, []
    shared.mkdir()

    def as_the_last_fit_leaves(folder):
        missing = found(folder)
        if not calls:
            shared.rmdir()
        calls.append(folder)
        return missing
    monkeypatch.setattr(callbacks, "_missing_folders", as_the_last_fit_leaves)
    backup = BackupAndRestore(shared).for_fit("key")
    backup.hold(owner="this fit")
    backup.release(owner="this fit")
    assert os.listdir(tmp_path) == []


def test_the_last_fit_removes_only_folders_above_backup_dir_that_its_mark_names(tmp_path):
    # the mark, left by a killed search in a folder moved since, named the folders above it
    # where it was: the last fit's end removed those (empty) folders of the user's elsewhere
    moved, elsewhere = tmp_path / "moved" / "backup", tmp_path / "runs"
    moved.mkdir(parents=True)
    elsewhere.mkdir()
    (moved / BackupAndRestore.MADE_BY_FITS).write_text(f"{elsewhere}\n{moved.parent}\n")
    backup = BackupAndRestore(moved).for_fit("key")
    backup.hold(owner="this fit")
    backup.release(owner="this fit")
    assert sorted(os.listdir(tmp_path)) == ["runs"]   # the mark's folder and moved/ went


def test_a_fit_nested_in_the_fit_holding_its_checkpoint_under_another_path_is_refused(
        tmp_path, monkeypatch):
    # the same file named through a symbolic link: the nested fit found its own thread's
    # lock held and waited for the fit it was started in, for ever
    import types

    from dlcore import wrappers
    from dlcore.callbacks import ModelCheckpoint

    def wait(seconds):
        raise AssertionError("waited for the fit it was started in")
    monkeypatch.setattr(wrappers, "time", types.SimpleNamespace(sleep=wait))
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    outer, inner = [], []
    wrappers._hold_written_files([ModelCheckpoint(tmp_path / "real" / "best.h5")], outer)
    try:
        with pytest.raises(ValueError, match=r"^ModelCheckpoint's file .*link.* is written by "
                                             "the fit this one was started in"):
            wrappers._hold_written_files([ModelCheckpoint(tmp_path / "link" / "best.h5")],
                                         inner)
    finally:
        wrappers._release_written_files(inner)
        wrappers._release_written_files(outer)
    assert sorted(os.listdir(tmp_path / "real")) == []


def test_a_backup_dir_that_cannot_be_made_leaves_none_of_the_folders_made_above_it(tmp_path):
    # runs/ made, then the over-long name refused: runs/ stayed, empty, after the fit failed
    backup = BackupAndRestore(tmp_path / "runs" / ("x" * 300))
    with pytest.raises(OSError):
        backup.hold(owner="this fit")
    backup.release(owner="this fit")
    assert os.listdir(tmp_path) == []


def test_a_fit_waiting_for_a_file_a_thread_of_this_process_holds_says_so(
        tmp_path, monkeypatch, capfd):
    # "waiting for another fit ... (pid <this process's own pid>: ...)" read as another
    # program, as BackupAndRestore's refusal did
    import threading
    import types

    from dlcore import wrappers
    from dlcore.callbacks import CSVLogger
    holder = []
    thread = threading.Thread(target=wrappers._hold_written_files,   # another thread's fit
                              args=([CSVLogger(tmp_path / "log.csv")], holder))
    thread.start()
    thread.join()

    def wait(seconds):   # the holder's end, as the waiting fit polls
        wrappers._release_written_files(holder)
    monkeypatch.setattr(wrappers, "time", types.SimpleNamespace(sleep=wait))
    waiting = []
    try:
        wrappers._hold_written_files([CSVLogger(tmp_path / "log.csv")], waiting)
    finally:
        wrappers._release_written_files(waiting)
    said = capfd.readouterr().err.strip().splitlines()
    assert len(said) == 1 and said[0].startswith(
        "waiting for another fit in this process (a thread's) writing CSVLogger's file "), said


def test_a_fit_of_another_process_that_has_this_process_s_pid_is_not_said_to_be_this_one_s(
        tmp_path, monkeypatch, capfd):
    # decided by the pid in the lock file: a fit in another container sharing the volume
    # (both pid 1) was said to be "in this process (a thread's ...)"; the waiting notice now
    # also says what to do where the holder is the fit this one was started in (waits for ever)
    import types

    from dlcore import wrappers
    from dlcore.callbacks import CSVLogger
    stand_in = f"pid {os.getpid()}: a fit with "   # the other container's process, pid alike
    other = lock_folder(tmp_path, stand_in + "BackupAndRestore")
    with pytest.raises(ValueError) as refused:
        BackupAndRestore(tmp_path).hold(owner="this fit")
    other.release()
    assert "in this process" not in str(refused.value)
    assert f"in use by another fit ({stand_in}BackupAndRestore)" in str(refused.value)
    other = lock_folder(tmp_path, stand_in + "CSVLogger", name=".log.csv.dlcore-fit.lock")
    monkeypatch.setattr(wrappers, "time", types.SimpleNamespace(
        sleep=lambda seconds: other.release()))   # the other fit ends as this one polls
    waiting = []
    try:
        wrappers._hold_written_files([CSVLogger(tmp_path / "log.csv")], waiting)
    finally:
        wrappers._release_written_files(waiting)
    said = capfd.readouterr().err.strip()
    assert said.startswith("waiting for another fit writing CSVLogger's file ") and \
        "\n" not in said, said
    assert said.endswith("if this fit was started inside that one, it waits for ever: stop "
                         "it and give it another CSVLogger file"), said
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("made_by", ["wrapper", "ensemble"])
def test_the_backup_dir_a_killed_run_made_goes_with_the_run_again(tmp_path, monkeypatch,
                                                                  made_by):
    # the mark naming backup_dir as the fits' own was written as the fit that made it ended:
    # a run killed (SIGKILL) before left none, and the run again, which found runs/backup
    # there, left both folders behind, empty
    from dlcore.ensemble import Ensemble
    shared = tmp_path / "runs" / "backup"

    def killed(self, owner=None):   # the system frees the lock of a killed process, no more
        if self._lock is not None and self._lock.descriptor is not None:
            os.close(self._lock.descriptor)
    monkeypatch.setattr(BackupAndRestore, "release", killed)

    press = CtrlCOnce(1)   # the same callbacks in both runs: the same fit, restored

    def run():
        callbacks = [BackupAndRestore(shared), LambdaCallback(on_epoch_begin=press)]
        if made_by == "wrapper":
            SKLearnClassifier(mlp, fit_kwargs={"epochs": 2, "batch_size": 16,
                                               "callbacks": callbacks}).fit(X, Y)
        else:
            Ensemble([mlp(X, np.eye(2)[Y])]).fit(X, np.eye(2)[Y], epochs=2, batch_size=16,
                                                 callbacks=callbacks)
    press.arm()
    with pytest.raises(KeyboardInterrupt):
        run()
    monkeypatch.undo()
    run()
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("copied_by", ["a search's clone", "a worker's pickle",
                                       "new ones made inside", "the very ones given"])
def test_a_fit_started_inside_the_holder_in_another_thread_with_its_copied_callbacks_is_refused(
        tmp_path, monkeypatch, copied_by):
    # a callback's own cross_val_score(n_jobs=2) of a wrapper with the running fit's
    # callbacks: its fits, in worker threads (or processes, given pickles), waited for the
    # fit they were started in, for ever; a copy made before that fit held the file waits
    import copy
    import pickle
    import threading
    import types

    from joblib import parallel_backend
    from sklearn.model_selection import cross_val_score

    from dlcore import wrappers
    from dlcore.callbacks import CSVLogger, ModelCheckpoint
    ended = []

    def wait(seconds):   # the old code's wait for ever; a copy made before: the holder ends
        if not ended:
            raise AssertionError("waited for the fit it was started in")
        wrappers._release_written_files(ended.pop())
    monkeypatch.setattr(wrappers, "time", types.SimpleNamespace(sleep=wait))
    callbacks = [ModelCheckpoint(tmp_path / "best.h5", monitor="loss"),
                 CSVLogger(tmp_path / "log.csv")]
    inner = SKLearnClassifier(mlp, fit_kwargs={"epochs": 1, "callbacks": callbacks})
    refused = []

    def search_inside(epoch, logs):
        if copied_by == "the very ones given":   # as fit parameters, never copied
            with parallel_backend("threading", n_jobs=2), pytest.raises(ValueError) as error:
                cross_val_score(SKLearnClassifier(mlp, fit_kwargs={"epochs": 1}), X, Y, cv=2,
                                params={"callbacks": callbacks}, error_score="raise")
            refused[:] = [str(error.value)]
            return
        if copied_by != "a worker's pickle":
            # new ones on the same files: they waited for ever, as nothing marked them
            searched = inner if copied_by == "a search's clone" else SKLearnClassifier(
                mlp, fit_kwargs={"epochs": 1, "callbacks": [
                    ModelCheckpoint(tmp_path / "best.h5", monitor="loss"),
                    CSVLogger(tmp_path / "log.csv")]})
            with parallel_backend("threading", n_jobs=2), pytest.raises(ValueError) as error:
                cross_val_score(searched, X, Y, cv=2, error_score="raise")
        else:
            copies = pickle.loads(pickle.dumps(callbacks))
            worker = threading.Thread(target=lambda: refused.append(pytest.raises(
                ValueError, wrappers._hold_written_files, copies, [])))
            worker.start()
            worker.join()
            error = refused[0]
        refused[:] = [str(error.value)]
    before = copy.deepcopy(callbacks)   # made before the fit held the files: no refusal
    SKLearnClassifier(mlp, fit_kwargs={"epochs": 1, "callbacks": [
        LambdaCallback(on_epoch_end=search_inside), *callbacks]}).fit(X, Y)
    how = "a worker of the parallel work that fit's callback waits for" \
        if copied_by == "the very ones given" else \
        "its callbacks were made, or copied, inside that fit as it ran"
    assert len(refused) == 1 and refused[0].startswith(
        f"ModelCheckpoint's file {str(tmp_path / 'best.h5')!r} is written by the fit this one "
        f"was started in ({how}), which holds it until it ends: give this fit's "
        "ModelCheckpoint another file"), refused
    assert sorted(os.listdir(tmp_path)) == ["best.h5", "log.csv"]   # no lock left
    holder = []   # a fit beside, in another thread, then the copy's
    thread = threading.Thread(target=wrappers._hold_written_files, args=(callbacks, holder))
    thread.start()
    thread.join()
    ended.append(holder)
    beside = []
    try:
        wrappers._hold_written_files(before, beside)
        assert not ended   # it waited for the holder's end, then held the files
    finally:
        wrappers._release_written_files(beside)
    assert sorted(os.listdir(tmp_path)) == ["best.h5", "log.csv"]


def test_on_a_file_system_that_locks_nothing_a_thread_s_end_keeps_another_s_nested_refusal(
        tmp_path, monkeypatch):
    # no locks: two threads' fits hold one file at once; the record kept one holder per file,
    # the second's entry replaced the first's and the first to end removed it, so a fit
    # nested in the one still running wrote the file beside it instead of being refused
    import threading

    from dlcore import wrappers
    from dlcore.callbacks import CSVLogger
    from dlcore.io import atomic

    def no_locks(descriptor):
        raise OSError(37, "No locks available")
    monkeypatch.setattr(atomic, "_lock_descriptor", no_locks)
    log = tmp_path / "log.csv"
    running, beside, nested = [], [], []
    try:
        wrappers._hold_written_files([CSVLogger(log)], running)
        thread = threading.Thread(target=wrappers._hold_written_files,
                                  args=([CSVLogger(log)], beside))
        thread.start()
        thread.join()
        assert beside and beside[0].descriptor is None   # held beside it, unlocked
        wrappers._release_written_files(beside)   # the other thread's fit ends first
        with pytest.raises(ValueError, match="is written by the fit this one was started in"):
            wrappers._hold_written_files([CSVLogger(log)], nested)
    finally:
        for held in (nested, beside, running):
            wrappers._release_written_files(held)
    from dlcore.callbacks import _holding_threads_here
    assert _holding_threads_here(log) == set()   # and every entry goes with its fit


def test_wrapper_fits_at_once_given_one_early_stopping_each_train_as_alone(tmp_path):
    # a grid search's fit parameters under joblib's threading backend: both fits trained with
    # the one EarlyStopping/ReduceLROnPlateau, whose set_model took the other fit's network
    # (its stop, its restored weights, its halved rate went there) and whose counts mixed
    import threading

    from dlcore.callbacks import EarlyStopping, ReduceLROnPlateau
    rows = np.random.default_rng(3).random((64, 5)).astype(np.float32)
    labels = (rows[:, 0] > 0.5).astype(int)

    def fit(callbacks, hidden, also=()):
        return SKLearnClassifier(mlp, model_kwargs={"hidden": hidden}, fit_kwargs={
            "epochs": 12, "batch_size": 16, "validation_split": 0.25,
            "callbacks": [*also, *callbacks]}).fit(rows, labels)

    def shared():
        return [EarlyStopping(patience=1, restore_best_weights=True),
                ReduceLROnPlateau(patience=1, factor=0.5)]
    alone = [fit(shared(), hidden) for hidden in (3, 8)]
    callbacks, beside = shared(), []

    def start_beside(epoch, logs):   # the other fit runs whole while this one is at epoch 1
        if epoch == 0:
            thread = threading.Thread(target=lambda: beside.append(fit(callbacks, 8)))
            thread.start()
            thread.join()
    first = fit(callbacks, 3, also=[LambdaCallback(on_epoch_end=start_beside)])
    for together, by_itself in zip((first, beside[0]), alone):
        timeless = [{name: values for name, values in history.items() if name != "seconds"}
                    for history in (together.history_, by_itself.history_)]
        assert timeless[0] == timeless[1]
        for weight, expected in zip(together.model_.get_weights(),
                                    by_itself.model_.get_weights()):
            np.testing.assert_array_equal(weight, expected)


def test_wrapper_fits_at_once_share_the_user_s_own_callback_which_records_both(tmp_path):
    # fits at once in threads trained with a copy of every callback the other fit used: the
    # user's thread-safe recorder (it holds a lock) could not be copied (TypeError "cannot
    # pickle '_thread.lock' object"), and one without a lock lost the second fit's rows
    import threading

    from dlcore.callbacks import Callback

    class Recorder(Callback):
        def __init__(self):
            self.epochs, self.lock = [], threading.Lock()

        def on_epoch_end(self, epoch, logs=None):
            with self.lock:
                self.epochs.append(epoch)

    recorder, beside, failed = Recorder(), [], []

    def fit(also=()):
        return SKLearnClassifier(mlp, fit_kwargs={"epochs": 3, "callbacks": [*also, recorder]}
                                 ).fit(X, Y)

    def fit_beside():
        try:
            beside.append(fit())
        except Exception as error:   # the thread's failure, for the assertion below
            failed.append(error)

    def start_beside(epoch, logs):   # the other fit runs whole while this one is at epoch 1
        if epoch == 0:
            thread = threading.Thread(target=fit_beside)
            thread.start()
            thread.join()
    fit(also=[LambdaCallback(on_epoch_end=start_beside)])
    assert failed == [] and len(beside) == 1
    assert sorted(recorder.epochs) == [0, 0, 1, 1, 2, 2]


def test_a_steering_callback_that_cannot_be_copied_for_a_fit_beside_is_refused_in_one_line():
    import threading

    from dlcore.callbacks import EarlyStopping

    class LockedStopping(EarlyStopping):
        def __init__(self):
            super().__init__(monitor="loss", patience=5)
            self.lock = threading.Lock()

    stopping, failed = LockedStopping(), []

    def fit(also=()):
        return SKLearnClassifier(mlp, fit_kwargs={"epochs": 2, "callbacks": [*also, stopping]}
                                 ).fit(X, Y)

    def fit_beside():
        try:
            fit()
        except Exception as error:   # the thread's failure, for the assertions below
            failed.append(error)

    def start_beside(epoch, logs):
        if epoch == 0:
            thread = threading.Thread(target=fit_beside)
            thread.start()
            thread.join()
    fit(also=[LambdaCallback(on_epoch_end=start_beside)])
    assert len(failed) == 1 and isinstance(failed[0], ValueError)
    message = str(failed[0])
    assert "\n" not in message and "LockedStopping is used by another wrapper fit" in message
    assert message.endswith("give each fit its own LockedStopping")


def test_a_checkpoint_folder_a_fit_made_goes_with_the_fit_that_took_its_file_as_it_ended(
        tmp_path):
    # the race behind a rare failure of the test above: the waiting fit made its lock file
    # between the ending fit's removal of its own and its removal of the folder it had made,
    # so that folder, not empty, stayed; the waiting fit had not made it, and left it too
    from dlcore import wrappers
    from dlcore.callbacks import ModelCheckpoint
    from dlcore.io.atomic import FolderLock
    callbacks = [ModelCheckpoint(tmp_path / "runs" / "deeper" / "best.h5")]
    first, second = [], []
    wrappers._hold_written_files(callbacks, first)   # it made runs/deeper/
    release = FolderLock.release

    def then_the_waiting_fit_holds_it(lock):
        release(lock)
        wrappers._hold_written_files(callbacks, second)
    first[0].release = then_the_waiting_fit_holds_it.__get__(first[0])
    wrappers._release_written_files(first)
    assert second[0].descriptor is not None and (tmp_path / "runs" / "deeper").is_dir()
    wrappers._release_written_files(second)
    assert os.listdir(tmp_path) == []
