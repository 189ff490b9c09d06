"""Keras's BackupAndRestore (dlcore/callbacks.py, restored by fit in dlcore/training.py).

Oracles: training is a pure function of the seed and the epoch counter, so a fit interrupted
(Ctrl-C) and run again as it was, with the same callback, ends with the weights, optimiser
state and history of the uninterrupted fit, bit for bit on cpu; Keras's rules for what the
resumed fit runs (the epochs from the backup's to ``epochs``) and for deleting the backup.
"""
import errno
import os
import re

import numpy as np
import pytest

import dlcore
from dlcore.callbacks import (
    BackupAndRestore,
    EarlyStopping,
    LambdaCallback,
    ModelCheckpoint,
    ReduceLROnPlateau,
)
from dlcore.ensemble import Ensemble
from dlcore.layers import Dense, Dropout
from dlcore.optimizers import Adam

X = np.random.default_rng(0).random((96, 6)).astype(np.float32)
Y = np.random.default_rng(1).integers(0, 3, 96)


def network(seed=4):
    model = dlcore.Sequential([Dense(10, activation="relu", input_shape=(6,)), Dropout(0.3),
                               Dense(3, activation="softmax")], backend="cpu", seed=seed)
    model.compile(optimizer=Adam(0.01), metrics=["accuracy"])
    return model


def fit(model, callbacks, epochs=4, **options):
    return model.fit(X, Y, epochs=epochs, batch_size=16, validation_split=0.25, verbose=0,
                     callbacks=callbacks, **options)


def interrupt_at(epoch):
    """A callback pressing Ctrl-C as Keras's epoch ``epoch`` starts."""
    def press(index, logs):
        if index == epoch:
            raise KeyboardInterrupt
    return LambdaCallback(on_epoch_begin=press)


def test_an_interrupted_fit_run_again_ends_as_the_uninterrupted_one(tmp_path):
    whole = network()
    fit(whole, [EarlyStopping(patience=10)])
    backup = tmp_path / "backup"
    with pytest.raises(KeyboardInterrupt):
        fit(network(), [BackupAndRestore(backup), EarlyStopping(patience=10), interrupt_at(2)])
    assert dlcore.load(backup / "backup.h5").epochs_done == 2
    resumed = network()                       # the script run again, as it was
    history = fit(resumed, [BackupAndRestore(backup), EarlyStopping(patience=10)])
    assert history.epoch == [2, 3]            # Keras: the epochs the interrupted fit had left
    for mine, theirs in zip(resumed.get_weights(), whole.get_weights()):
        np.testing.assert_array_equal(mine, theirs)
    assert resumed.history["val_loss"] == whole.history["val_loss"]
    assert resumed.optimizer.iterations == whole.optimizer.iterations
    assert not backup.exists()                # delete_checkpoint=True: the fit ended


def test_a_fit_run_again_on_the_interrupted_network_ends_as_the_uninterrupted_one(tmp_path):
    """A notebook's cell run again after its Ctrl-C, on the same network object (which the
    interruption left at its last finished epoch): Keras trains to the interrupted fit's
    ``epochs``, not that many more."""
    whole = network()
    fit(whole, [])
    resumed = network()
    with pytest.raises(KeyboardInterrupt):
        fit(resumed, [BackupAndRestore(tmp_path), interrupt_at(2)])
    assert resumed.epochs_done == 2
    history = fit(resumed, [BackupAndRestore(tmp_path)])   # the cell run again
    assert history.epoch == [2, 3]
    for mine, theirs in zip(resumed.get_weights(), whole.get_weights()):
        np.testing.assert_array_equal(mine, theirs)
    assert fit(resumed, [BackupAndRestore(tmp_path)], epochs=1).epoch == [4]   # then more


def test_initial_epoch_and_a_finished_backup_follow_keras(tmp_path):
    (tmp_path / "notes.txt").write_text("the user's")
    whole = network()
    fit(whole, [], epochs=5, initial_epoch=2)
    with pytest.raises(KeyboardInterrupt):
        fit(network(), [BackupAndRestore(tmp_path), interrupt_at(3)], epochs=5,
            initial_epoch=2)
    resumed = network()
    history = fit(resumed, [BackupAndRestore(tmp_path, delete_checkpoint=False)], epochs=5,
                  initial_epoch=2)
    assert history.epoch == [3, 4]
    np.testing.assert_array_equal(resumed.get_weights()[0], whole.get_weights()[0])
    assert (tmp_path / "backup.h5").exists()  # kept when asked
    again = network()                         # a third run: nothing is left to train
    assert fit(again, [BackupAndRestore(tmp_path)], epochs=5, initial_epoch=2).epoch == []
    np.testing.assert_array_equal(again.get_weights()[0], whole.get_weights()[0])
    assert os.listdir(tmp_path) == ["notes.txt"]    # not Keras's rmtree: the user's file stays


def test_a_damaged_or_foreign_backup_is_refused_in_one_line(tmp_path):
    backup = tmp_path / "backup"
    fit(network(), [BackupAndRestore(backup, delete_checkpoint=False)], epochs=1)
    saved = (backup / "backup.h5").read_bytes()
    (backup / "backup.h5").write_bytes(saved[:len(saved) // 2])
    with pytest.raises(ValueError, match=r"^BackupAndRestore cannot restore .*backup\.h5: .*"
                       r"delete the backup to start the fit over$") as refused:
        fit(network(), [BackupAndRestore(backup)])
    assert "\n" not in str(refused.value)
    (backup / "backup.h5").write_bytes(saved)
    with pytest.raises(ValueError, match="seed 4, not 5: build the network with seed=4"):
        fit(network(seed=5), [BackupAndRestore(backup)])
    wider = dlcore.Sequential([Dense(11, activation="relu", input_shape=(6,)),
                               Dense(3, activation="softmax")], backend="cpu", seed=4)
    wider.compile(optimizer=Adam(0.01))
    with pytest.raises(ValueError, match="another architecture"):
        fit(wider, [BackupAndRestore(backup)])
    trained = network()
    fit(trained, [], epochs=2)
    with pytest.raises(ValueError, match="holds 1 epoch of training, but this fit starts "
                       "after 2: it is a backup of an earlier run"):
        fit(trained, [BackupAndRestore(backup)])
    with pytest.raises(ValueError, match="save_freq must be 'epoch'"):
        BackupAndRestore(backup, save_freq=10)


@pytest.mark.parametrize("hard_links", [True, False])
def test_double_checkpoint_falls_back_on_the_previous_epoch(tmp_path, monkeypatch, hard_links):
    if not hard_links:     # a FAT stick, some network shares: os.link fails
        def refuse(*arguments):
            raise PermissionError(1, "Operation not permitted")
        monkeypatch.setattr(os, "link", refuse)
    backup = tmp_path / "backup"
    with pytest.raises(KeyboardInterrupt):
        fit(network(), [BackupAndRestore(backup, double_checkpoint=True), interrupt_at(2)])
    assert dlcore.load(backup / "backup.h5.bkp").epochs_done == 1
    (backup / "backup.h5").write_bytes(b"not a file")
    resumed = network()
    assert fit(resumed, [BackupAndRestore(backup, double_checkpoint=True)]).epoch == [1, 2, 3]
    assert not backup.exists()                # its own files deleted, then the empty folder


def test_a_data_parallel_fit_restores_it_as_one_process_does(tmp_path):
    """It was refused (each rank would restore from its own disk); rank 0 now restores and
    hands the state to the others (tests/test_distributed.py runs it on 2 ranks)."""
    from dlcore.distributed import Communicator

    class OneOfOne:     # what Communicator reads of an mpi4py communicator
        def Get_rank(self):  # noqa: N802 (mpi4py's name)
            return 0

        def Get_size(self):  # noqa: N802
            return 1

    whole = network()
    fit(whole, [])
    with pytest.raises(KeyboardInterrupt):
        fit(network(), [BackupAndRestore(tmp_path / "backup"), interrupt_at(2)])
    resumed = network()
    history = fit(resumed, [BackupAndRestore(tmp_path / "backup")],
                  comm=Communicator(OneOfOne()))
    assert history.epoch == [2, 3]
    for mine, theirs in zip(resumed.get_weights(), whole.get_weights()):
        np.testing.assert_array_equal(mine, theirs)
    assert not (tmp_path / "backup").exists()


@pytest.mark.parametrize("data_parallel", [False, True])
def test_a_backup_of_an_optimiser_without_use_ema_is_refused_naming_it(
        tmp_path, data_parallel):
    # the run again compiled with use_ema=True: "ValueError: optimizer slot
    # hidden_1/kernel/average is missing", naming neither the backup nor a fix
    from dlcore.distributed import Communicator

    class OneOfOne:     # what Communicator reads of an mpi4py communicator
        def Get_rank(self):  # noqa: N802 (mpi4py's name)
            return 0

        def Get_size(self):  # noqa: N802
            return 1

    def small(**settings):
        model = dlcore.models.mlp(input_shape=(6,), hidden=(4,), n_classes=3,
                                  backend="reference", seed=3)
        model.compile("cross_entropy", Adam(0.01, **settings))
        return model

    with pytest.raises(KeyboardInterrupt):
        fit(small(), [BackupAndRestore(tmp_path / "backup"), interrupt_at(1)], epochs=3)
    backup = tmp_path / "backup" / "backup.h5"
    saved = backup.read_bytes()
    options = {"comm": Communicator(OneOfOne())} if data_parallel else {}
    with pytest.raises(ValueError, match=f"^BackupAndRestore's backup {re.escape(str(backup))} "
                                         f"does not fit this fit's optimiser \\(optimizer slot "
                                         f".*average is missing\\): compile with the "
                                         f"optimiser settings of the interrupted run") as caught:
        fit(small(use_ema=True), [BackupAndRestore(tmp_path / "backup")], epochs=3, **options)
    assert "\n" not in str(caught.value)
    assert backup.read_bytes() == saved


def test_an_ensemble_s_members_each_restore_their_own_backup(tmp_path):
    # Ensemble.fit passed the one BackupAndRestore to every member's fit: run again after an
    # interruption in member 1, member 0 restored member 1's backup (refused, "build the
    # network with seed=5"; with equal seeds and bagging, silently member 1's training)
    whole = Ensemble([network(4), network(5)], bagging=True)
    whole.fit(X, Y, epochs=3, batch_size=16)
    backup = tmp_path / "backup"
    starts = []

    def press_in_member_1(index, logs):
        starts.append(index)
        if len(starts) == 3 + 2:   # member 1's epoch 2 (Keras's index 1)
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        Ensemble([network(4), network(5)], bagging=True).fit(
            X, Y, epochs=3, batch_size=16,
            callbacks=[BackupAndRestore(backup), LambdaCallback(on_epoch_begin=press_in_member_1)])
    resumed = Ensemble([network(4), network(5)], bagging=True)   # run again, as it was
    histories = resumed.fit(X, Y, epochs=3, batch_size=16, callbacks=[BackupAndRestore(backup)])
    assert [history.epoch for history in histories] == [[], [1, 2]]   # member 0 was done
    for member, reference in zip(resumed.models, whole.models):
        for mine, theirs in zip(member.get_weights(), reference.get_weights()):
            np.testing.assert_array_equal(mine, theirs)
    assert not backup.exists()   # delete_checkpoint=True: the ensemble's fit ended


def test_an_ensemble_s_fit_leaves_no_folder_it_made_above_its_backup_dir(tmp_path):
    # BackupAndRestore("runs/backup") with runs/ missing: the members' backups and backup/
    # went as the fit ended, runs/ (made by member 0's fit, forgotten as it ended) stayed
    Ensemble([network(4), network(5)]).fit(
        X, Y, epochs=1, batch_size=16, callbacks=[BackupAndRestore(tmp_path / "runs" / "backup")])
    assert os.listdir(tmp_path) == []


def test_an_ensemble_s_fit_run_again_after_an_interruption_leaves_no_folder_it_made(tmp_path):
    # runs/backup made by the interrupted run: the run again, which found them there, left
    # runs/ behind, empty (only the folders it found missing itself were its own)
    def press_in_member_1(index, logs):
        if member_epochs.append(index) or len(member_epochs) == 2:   # member 1's first
            raise KeyboardInterrupt
    member_epochs, backup = [], BackupAndRestore(tmp_path / "runs" / "backup")
    with pytest.raises(KeyboardInterrupt):
        Ensemble([network(4), network(5)]).fit(
            X, Y, epochs=1, batch_size=16,
            callbacks=[backup, LambdaCallback(on_epoch_begin=press_in_member_1)])
    assert os.listdir(tmp_path / "runs" / "backup") != []   # member 0's backup, kept
    Ensemble([network(4), network(5)]).fit(X, Y, epochs=1, batch_size=16, callbacks=[backup])
    assert os.listdir(tmp_path) == []


def test_an_ensemble_s_fit_leaves_no_mark_beside_the_users_files_in_a_folder_it_made(tmp_path):
    # BackupAndRestore("runs") and ModelCheckpoint("runs/best.h5"), runs/ missing: member 0's
    # fit made runs/ and marked it as the fits' own; the checkpoint made it the user's
    # results folder, where the hidden mark stayed for good (and would have had a later
    # run remove runs/ once emptied of the user's files)
    runs = tmp_path / "runs"
    Ensemble([network(4), network(5)]).fit(
        X, Y, epochs=1, batch_size=16,
        callbacks=[BackupAndRestore(runs), ModelCheckpoint(runs / "best.h5")])
    assert os.listdir(runs) == ["best.h5"]


def test_an_ensemble_s_fit_keeps_another_fits_backup_and_a_folder_it_found(tmp_path):
    # a single network's fit had kept runs/backup.h5 (delete_checkpoint=False, or interrupted,
    # for its run again); the ensemble's end deleted it through the user's callback, though
    # its members had backed up in runs/member-<m> alone; and an empty folder the user had
    # made went too
    runs, made = tmp_path / "runs", tmp_path / "made"
    fit(network(7), [BackupAndRestore(runs, delete_checkpoint=False)], epochs=1)
    kept = (runs / "backup.h5").read_bytes()
    made.mkdir()
    for backup_dir in (runs, made):
        Ensemble([network(4), network(5)]).fit(X, Y, epochs=1, batch_size=16,
                                               callbacks=[BackupAndRestore(backup_dir)])
    assert os.listdir(runs) == ["backup.h5"] and (runs / "backup.h5").read_bytes() == kept
    assert os.listdir(made) == []


def test_an_ensemble_s_fit_run_again_on_its_interrupted_members_ends_as_uninterrupted(tmp_path):
    """The notebook's cell run again on the same Ensemble: member 0 had ended (its backup
    kept for the run again), member 1 was interrupted; neither trains more than asked."""
    whole = Ensemble([network(4), network(5)])
    whole.fit(X, Y, epochs=2, batch_size=16)
    starts = []

    def press_in_member_1(index, logs):
        starts.append(index)
        if len(starts) == 2 + 2:   # member 1's second epoch
            raise KeyboardInterrupt
    resumed = Ensemble([network(4), network(5)])
    callbacks = [BackupAndRestore(tmp_path), LambdaCallback(on_epoch_begin=press_in_member_1)]
    with pytest.raises(KeyboardInterrupt):
        resumed.fit(X, Y, epochs=2, batch_size=16, callbacks=callbacks)
    histories = resumed.fit(X, Y, epochs=2, batch_size=16, callbacks=callbacks)
    assert [history.epoch for history in histories] == [[], [1]]
    for member, reference in zip(resumed.models, whole.models):
        for mine, theirs in zip(member.get_weights(), reference.get_weights()):
            np.testing.assert_array_equal(mine, theirs)


def test_a_rate_that_reduce_lr_on_plateau_lowered_is_restored(tmp_path):
    # the backup's optimiser state held the slots but not the rate ReduceLROnPlateau had
    # lowered: the resumed epochs trained at the compiled rate (Keras 3 restores it, a
    # variable of its optimiser)
    def callbacks(*more):
        return [ReduceLROnPlateau(factor=0.5, patience=0, min_delta=10.0), *more]
    whole = network()
    fit(whole, callbacks())
    backup = tmp_path / "backup"
    with pytest.raises(KeyboardInterrupt):
        fit(network(), callbacks(BackupAndRestore(backup), interrupt_at(3)))
    resumed = network()
    fit(resumed, callbacks(BackupAndRestore(backup)))
    assert resumed.history["learning_rate"] == whole.history["learning_rate"]
    assert whole.history["learning_rate"][-1] < whole.history["learning_rate"][0]
    for mine, theirs in zip(resumed.get_weights(), whole.get_weights()):
        np.testing.assert_array_equal(mine, theirs)


def test_after_falling_back_the_damaged_backup_never_becomes_the_previous_one(tmp_path):
    # restored from backup.h5.bkp because backup.h5 was damaged, the fit's next epoch made the
    # damaged file the previous backup (a hard link to it): a second damage then found no
    # backup to restore. Keras copies the previous backup over the damaged one as it restores
    backup = tmp_path / "backup"
    with pytest.raises(KeyboardInterrupt):
        fit(network(), [BackupAndRestore(backup, double_checkpoint=True), interrupt_at(2)])
    (backup / "backup.h5").write_bytes(b"not a file")
    with pytest.raises(KeyboardInterrupt):    # epoch 1 again from the previous backup
        fit(network(), [BackupAndRestore(backup, double_checkpoint=True), interrupt_at(2)])
    assert dlcore.load(backup / "backup.h5.bkp").epochs_done == 1
    (backup / "backup.h5").write_bytes(b"not a file")
    assert fit(network(), [BackupAndRestore(backup, double_checkpoint=True)]).epoch == [1, 2, 3]


def test_a_backup_dir_under_a_file_is_refused_in_one_line_before_training(tmp_path):
    (tmp_path / "notes").write_text("")
    backup = tmp_path / "notes" / "backup"
    model = network()
    with pytest.raises(OSError, match=f"^cannot write {re.escape(str(backup))}: "
                                      f"{re.escape(str(tmp_path / 'notes'))} on its way is a "
                                      r"file, not a folder \(errno 20\); write it to a folder "
                                      r"you may write to$") as caught:
        fit(model, [BackupAndRestore(backup)])
    assert caught.value.errno == errno.ENOTDIR and model.epochs_done == 0   # nothing trained


@pytest.mark.parametrize("error_number", [errno.EACCES, errno.EROFS], ids=["EACCES", "EROFS"])
def test_a_backup_dir_where_no_folder_may_be_made_is_refused_in_one_line(
        tmp_path, monkeypatch, error_number):
    # as root, no permission is ever missing: the system's refusal is given instead
    def refuse(path, *arguments, **options):
        raise OSError(error_number, os.strerror(error_number), os.fspath(path))
    monkeypatch.setattr(os, "mkdir", refuse)
    backup = tmp_path / "runs" / "backup"
    reason = os.strerror(error_number)
    with pytest.raises(PermissionError, match=f"^cannot write {re.escape(str(backup))}: "
                                              f"{reason[:1].lower() + reason[1:]} in its folder "
                                              f"{re.escape(str(tmp_path))} \\(errno "
                                              f"{error_number}\\); write it to a folder you may "
                                              f"write to$"):
        fit(network(), [BackupAndRestore(backup)])
