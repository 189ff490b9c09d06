"""Runs that survive Ctrl-C: an interrupted fit leaves the model at its last finished epoch, a
training command saves it as checkpoint.h5 in --out, prints the command that resumes it and
exits 130, and resuming gives bit for bit the model of an uninterrupted run (cpu backend).
Also --checkpoint-every, at library and CLI level."""
import contextlib
import json
import math
import shlex
import shutil
import signal
import weakref
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import dlcore
import dlcore.network
from dlcore.cli import main
from dlcore.cli._common import (
    CHECKPOINT_FILE,
    INTERRUPTED_EXIT_CODE,
    resuming_line,
)
from dlcore.dbn.updown import UpDown
from dlcore.rbm.trainer import ContrastiveDivergence
from dlcore.wording import count


@pytest.fixture(scope="module")
def digits():
    images, labels = dlcore.datasets.load_mnist_5k()
    rows = np.random.default_rng(1).permutation(len(images))[:400]
    return dlcore.datasets.to_unit_interval(images)[rows], labels[rows].astype(np.int64)


def interrupt_after(monkeypatch, cls, method, calls):
    """Ctrl-C (KeyboardInterrupt) at the ``calls``-th call of ``cls.method``."""
    original = getattr(cls, method)
    count = {"calls": 0}

    def interrupted(self, *arguments, **options):
        count["calls"] += 1
        if count["calls"] == calls:
            raise KeyboardInterrupt
        return original(self, *arguments, **options)

    monkeypatch.setattr(cls, method, interrupted)


def arrays_of(model):
    if isinstance(model, dlcore.Sequential):
        return model.get_weights()
    if isinstance(model, dlcore.StackedAutoencoder):
        return [a for ae in model.autoencoders_ for a in arrays_of(ae)]
    if isinstance(model, dlcore.DBN):
        arrays = [a for rbm in model.rbms_ for a in arrays_of(rbm)]
        return arrays + [a for pair in model.generative_ or () for a in pair]
    state = model.get_state()
    return [state[name] for name in ("W", "visible_bias", "hidden_bias")] + [
        value for value in state["training"].values() if isinstance(value, np.ndarray)]


def assert_identical(expected, actual):
    expected, actual = arrays_of(expected), arrays_of(actual)
    assert len(expected) == len(actual)
    for a, b in zip(expected, actual):
        assert np.array_equal(a, b)


def reloaded(model, tmp_path, name="model.h5"):
    dlcore.save(model, tmp_path / name)
    return dlcore.load(tmp_path / name)


# -- library ------------------------------------------------------------------------------
@pytest.mark.parametrize("model_class, options", [
    (dlcore.BernoulliRBM, {"persistent": True, "sparsity_target": 0.1, "momentum": 0.9}),
    (dlcore.GaussianBernoulliRBM, {"sparsity_target": 0.1}),
])
def test_rbm_fit_k_epochs_saved_loaded_and_resumed_equals_one_fit(digits, tmp_path,
                                                                  model_class, options):
    X = digits[0]
    if model_class is dlcore.GaussianBernoulliRBM:
        X = (X - X.mean(axis=0)) / (X.std(axis=0) + 0.1)
    settings = {"n_hidden": 12, "batch_size": 40, "backend": "cpu", **options}
    full = model_class(epochs=5, **settings).fit(X, X_valid=X[:50])
    part = reloaded(model_class(epochs=2, **settings).fit(X, X_valid=X[:50]), tmp_path)
    part.set_params(epochs=5).resume(X, X_valid=X[:50])
    assert_identical(full, part)
    assert part.history["reconstruction_error"] == full.history["reconstruction_error"]
    assert part.epochs_done_ == 5 and part.n_updates_ == full.n_updates_


def test_rbm_interrupted_mid_epoch_keeps_its_last_finished_epoch(digits, tmp_path,
                                                                 monkeypatch):
    X = digits[0]
    settings = {"n_hidden": 12, "batch_size": 40, "persistent": True, "backend": "cpu"}
    full = dlcore.BernoulliRBM(epochs=4, **settings).fit(X)
    two = dlcore.BernoulliRBM(epochs=2, **settings).fit(X)
    rbm = dlcore.BernoulliRBM(epochs=4, **settings)
    interrupt_after(monkeypatch, ContrastiveDivergence, "step", 25)   # in epoch 3 of 10 steps
    with pytest.raises(KeyboardInterrupt):
        rbm.fit(X)
    assert rbm.epochs_done_ == 2 and len(rbm.history["reconstruction_error"]) == 2
    assert_identical(two, rbm)
    monkeypatch.undo()
    assert_identical(full, reloaded(rbm, tmp_path).resume(X))


@pytest.mark.parametrize("propagate, calls", [("mean", 4), ("sample", 4), ("mean", 7)])
def test_dbn_interrupted_in_any_layer_or_in_up_down_resumes_to_the_same_dbn(
        digits, tmp_path, monkeypatch, propagate, calls):
    X, y = digits
    settings = {"layers": [784, 16, 10], "epochs": 3, "n_labels": 10, "persistent": True,
                "up_down_epochs": 2, "up_down_batch_size": 40, "batch_size": 40,
                "backend": "cpu", "propagate": propagate}
    full = dlcore.DBN(**settings).fit(X, y)
    dbn = dlcore.DBN(**settings)
    # 3 + 3 CD epochs, then up-down: call 4 is RBM 2's first epoch, call 7 up-down's first
    interrupt_after(monkeypatch, ContrastiveDivergence, "epoch", calls)
    interrupt_after(monkeypatch, UpDown, "epoch", calls - 6)
    with pytest.raises(KeyboardInterrupt):
        dbn.fit(X, y)
    monkeypatch.undo()
    resumed = reloaded(dbn, tmp_path, "dbn.h5")
    if calls < 7:
        with pytest.raises(RuntimeError, match="interrupted in RBM 2 of 2"):
            resumed.transform(X)
    resumed.resume(X, y)
    assert_identical(full, resumed)
    for name, values in full.history.items():
        if "seconds" not in name and "gap" not in name:
            assert resumed.history[name] == values, name


def test_network_interrupted_with_early_stopping_resumes_to_the_same_network(
        digits, tmp_path, monkeypatch):
    from dlcore.callbacks import EarlyStopping
    X, y = digits

    def network():
        model = dlcore.models.mlp((784,), n_classes=10, dropout=0.2, backend="cpu", seed=3)
        rate = dlcore.optimizers.StepDecay(0.01, step_size=10, drop=0.9)
        return model.compile("cross_entropy", dlcore.optimizers.Adam(rate), ["accuracy"])

    fit = {"batch_size": 32, "validation_split": 0.2, "verbose": 0}
    full, stopper = network(), EarlyStopping(patience=1, restore_best_weights=True)
    full.fit(X, y, epochs=6, callbacks=[stopper], **fit)
    part = network()
    interrupt_after(monkeypatch, dlcore.network.Sequential, "_train_step", 10 * 2 + 4)
    with pytest.raises(KeyboardInterrupt):
        part.fit(X, y, epochs=6, callbacks=[EarlyStopping(patience=1, restore_best_weights=True)],
                 **fit)
    monkeypatch.undo()
    assert part.epochs_done == 2 and part.n_updates == 20
    resumed = reloaded(part, tmp_path)
    resumed_stopper = EarlyStopping(patience=1, restore_best_weights=True)
    resumed_stopper.set_state(resumed.callback_state["EarlyStopping"])
    resumed.fit(X, y, epochs=6 - resumed.epochs_done, callbacks=[resumed_stopper], **fit)
    assert_identical(full, resumed)
    assert resumed.history["loss"] == full.history["loss"]
    assert resumed_stopper.best_epoch == stopper.best_epoch


# -- command line -------------------------------------------------------------------------
def resume_words(output):
    """The command the interruption message says resumes the run ("resume with: dlcore ...",
    or after training "... with: dlcore ..."), without 'dlcore'."""
    line = next(line for line in output.splitlines() if " with: dlcore " in line)
    words = shlex.split(line.split(" with: ", 1)[1])
    assert words[0] == "dlcore"
    return words[1:]


def interrupted_then_resumed(monkeypatch, arguments, out, cls, method, calls):
    """Run ``arguments`` interrupted at call ``calls`` of ``cls.method``, check the Ctrl-C
    contract, then run the command it prints, which deletes the checkpoint as it saves the
    finished model. Returns (interrupted result, resumed result); the interrupted result's
    ``checkpoint`` is the model its checkpoint held."""
    runner = CliRunner()
    interrupt_after(monkeypatch, cls, method, calls)
    interrupted = runner.invoke(main, [*arguments, "--out", str(out)])
    monkeypatch.undo()
    assert interrupted.exit_code == INTERRUPTED_EXIT_CODE, interrupted.output
    messages = [line for line in interrupted.output.splitlines() if line.startswith("dlcore:")]
    assert len(messages) == 1
    assert any(f"saved the model after {what}" in messages[0]
               for what in ("epoch", "RBM", "autoencoder", "up-down"))
    assert str(out / CHECKPOINT_FILE) in messages[0]
    assert (out / CHECKPOINT_FILE).stat().st_size > 0
    words = resume_words(interrupted.output)
    assert words[-2:] == ["--resume", str(out / CHECKPOINT_FILE)]
    interrupted.checkpoint = dlcore.load(out / CHECKPOINT_FILE)
    resumed = runner.invoke(main, words)
    assert resumed.exit_code == 0, resumed.output
    assert not (out / CHECKPOINT_FILE).exists()
    return interrupted, resumed


RBM_TRAIN = ["rbm", "train", "--digits", "1-2", "--hidden", "10", "--epochs", "4",
             "--persistent", "--backend", "cpu"]


def test_rbm_train_ctrl_c_saves_a_checkpoint_and_resuming_it_is_bit_identical(
        tmp_path, monkeypatch):
    full = CliRunner().invoke(main, [*RBM_TRAIN, "--out", str(tmp_path / "full")])
    assert full.exit_code == 0, full.output
    # 800 training images, 40 steps an epoch: Ctrl-C in the middle of epoch 3
    interrupted, _ = interrupted_then_resumed(monkeypatch, RBM_TRAIN, tmp_path / "part",
                                              ContrastiveDivergence, "step", 40 * 2 + 17)
    assert interrupted.checkpoint.epochs_done_ == 2
    expected = dlcore.load(tmp_path / "full" / "model.h5")
    actual = dlcore.load(tmp_path / "part" / "model.h5")
    assert_identical(expected, actual)
    assert actual.history["reconstruction_error"] == expected.history["reconstruction_error"]


@pytest.mark.parametrize("arguments, same_files", [
    (["homework", "task1", "--train-digits", "1-2", "--test-digits", "1-3", "--hidden", "8",
      "--epochs", "3", "--backend", "cpu"], ["reconstruction_error.csv"]),
    (["homework", "task2", "--patch", "4", "--hidden", "6", "--epochs", "2", "--max-size", "40",
      "--backend", "cpu"], []),
], ids=["task1", "task2"])
def test_homework_task_resumes_bit_identically(tmp_path, monkeypatch, arguments, same_files):
    full = CliRunner().invoke(main, [*arguments, "--out", str(tmp_path / "full")])
    assert full.exit_code == 0, full.output
    interrupted_then_resumed(monkeypatch, arguments, tmp_path / "part", ContrastiveDivergence,
                             "epoch", 2)
    assert_identical(dlcore.load(tmp_path / "full" / "model.h5"),
                     dlcore.load(tmp_path / "part" / "model.h5"))
    for name in same_files:
        assert (tmp_path / "full" / name).read_text() == (tmp_path / "part" / name).read_text()


@pytest.mark.parametrize("options, interrupted, position, resuming, up_down_line", [
    # in the first RBM: the checkpoint holds one part-trained RBM of two
    ([], (ContrastiveDivergence, 2), "RBM 1 of 2",
     "1 of 4 epochs trained (RBM 1 of 2, epoch 1 of 2), training the 3", None),
    # in the second RBM (with labels and up-down to follow)
    (["--with-labels", "--up-down-epochs", "1"], (ContrastiveDivergence, 3),
     "after RBM 1 of 2, epoch 2 of 2",
     "2 of 5 epochs trained (RBM 1 of 2, epoch 2 of 2), training the 3",
     "up-down fine-tuning: 1 epoch (a line after each)"),
    # in up-down, after every RBM's last line
    (["--with-labels", "--up-down-epochs", "3"], (UpDown, 2), "after up-down epoch 1 of 3",
     "5 of 7 epochs trained (up-down epoch 1 of 3), training the 2",
     "up-down fine-tuning: 2 epochs (a line after each)")])
def test_dbn_pretrain_interrupted_resumes_bit_identically(tmp_path, monkeypatch, options,
                                                          interrupted, position, resuming,
                                                          up_down_line):
    arguments = ["dbn", "pretrain", "--layers", "784-16-10", "--epochs-per-layer", "2",
                 *options, "--backend", "cpu"]
    full = CliRunner().invoke(main, [*arguments, "--out", str(tmp_path / "full")])
    assert full.exit_code == 0, full.output
    trainer, calls = interrupted
    interrupted, resumed = interrupted_then_resumed(monkeypatch, arguments, tmp_path / "part",
                                                    trainer, "epoch", calls)
    assert position in interrupted.output
    # the one line every resumed command says (dbn pretrain said nothing)
    assert f"resuming: {resuming} left" in resumed.stderr
    # and the line up-down begins with, once, whether the resumed run reaches it or starts in it
    up_down_lines = [line for line in resumed.stderr.splitlines()
                     if line.startswith("up-down fine-tuning")]
    assert up_down_lines == ([up_down_line] if up_down_line else [])
    assert_identical(dlcore.load(tmp_path / "full" / "dbn.h5"),
                     dlcore.load(tmp_path / "part" / "dbn.h5"))


def test_dbn_pretrain_resumed_with_a_propagate_its_one_rbm_leaves_unread_is_refused(
        tmp_path, monkeypatch):
    # the refusal of --propagate with one RBM advised a second hidden size in --layers, which
    # a resumed run takes from its checkpoint: the advice is a new run's
    out = tmp_path / "run"
    interrupt_after(monkeypatch, ContrastiveDivergence, "epoch", 2)
    interrupted = CliRunner().invoke(main, ["dbn", "pretrain", "--layers", "784-8",
                                            "--epochs-per-layer", "3", "--backend", "cpu",
                                            "--out", str(out)])
    monkeypatch.undo()
    assert interrupted.exit_code == INTERRUPTED_EXIT_CODE, interrupted.output
    resumed = CliRunner().invoke(main, ["dbn", "pretrain", "--propagate", "mean", "--resume",
                                        str(out / CHECKPOINT_FILE)])
    assert resumed.exit_code == 2, resumed.output
    [line] = resumed.stderr.strip().splitlines()
    assert line.startswith("dlcore: error: --propagate sets what each RBM feeds the one above "
                           "it, and the checkpoint 784-8 stacks one RBM: give a second "
                           "hidden size (784-8-8) to a new run, or drop --propagate")
    assert (out / CHECKPOINT_FILE).exists()


def network_command_resumes_bit_identically(tmp_path, monkeypatch, arguments):
    runner = CliRunner()
    full = runner.invoke(main, [*arguments, "--out", str(tmp_path / "full")])
    assert full.exit_code == 0, full.output
    finished = dlcore.load(tmp_path / "full" / "model.h5")
    updates_per_epoch = finished.n_updates // finished.epochs_done
    interrupted, resumed = interrupted_then_resumed(monkeypatch, arguments, tmp_path / "part",
                                                    dlcore.network.Sequential, "_train_step",
                                                    2 * updates_per_epoch + 2)
    assert interrupted.checkpoint.epochs_done == 2
    # the one line every resumed command says (cnn train and dbn finetune said nothing)
    epochs = int(arguments[arguments.index("--epochs") + 1])
    assert (f"resuming: 2 of {epochs} epochs trained, training the {epochs - 2} left"
            in resumed.stderr)
    assert_identical(finished, dlcore.load(tmp_path / "part" / "model.h5"))


@pytest.mark.slow
def test_cnn_train_resumes_bit_identically(tmp_path, monkeypatch):
    network_command_resumes_bit_identically(tmp_path, monkeypatch, [
        "cnn", "train", "--model", "mlp", "--dataset", "mnist-5k", "--epochs", "3",
        "--train-size", "300", "--optimizer", "sgd", "--backend", "cpu"])


def test_dbn_finetune_resumes_bit_identically(tmp_path, monkeypatch):
    pretrained = CliRunner().invoke(main, ["dbn", "pretrain", "--layers", "784-16",
                                           "--epochs-per-layer", "1", "--backend", "cpu",
                                           "--out", str(tmp_path / "dbn")])
    assert pretrained.exit_code == 0, pretrained.output
    network_command_resumes_bit_identically(tmp_path, monkeypatch, [
        "dbn", "finetune", str(tmp_path / "dbn" / "dbn.h5"), "--epochs", "4", "--patience",
        "1", "--batch-size", "128", "--backend", "cpu"])


def test_dbn_finetune_resume_refuses_another_dbn_and_takes_a_moved_copy(tmp_path):
    import shutil
    runner = CliRunner()
    for name, layers, seed in (("first", "784-16", "0"), ("other", "784-16", "1"),
                               ("narrow", "784-12", "0")):
        pretrained = runner.invoke(main, ["dbn", "pretrain", "--layers", layers,
                                          "--epochs-per-layer", "1", "--seed", seed,
                                          "--backend", "cpu", "--out", str(tmp_path / name)])
        assert pretrained.exit_code == 0, pretrained.output
    finetune = ["dbn", "finetune", "--epochs", "2", "--batch-size", "256", "--backend", "cpu"]
    first = runner.invoke(main, [*finetune, str(tmp_path / "first" / "dbn.h5"), "--epochs",
                                 "1", "--checkpoint-every", "1", "--out", str(tmp_path / "ft")])
    assert first.exit_code == 0, first.output
    assert not (tmp_path / "ft" / CHECKPOINT_FILE).exists()    # model.h5 superseded it
    checkpoint = str(tmp_path / "ft" / "model.h5")    # 1 epoch of the 2 the resumes train
    other = runner.invoke(main, [*finetune, str(tmp_path / "other" / "dbn.h5"), "--resume",
                                 checkpoint, "--out", str(tmp_path / "resumed_other")])
    assert other.exit_code == 2, other.output
    assert "fine-tuned from another DBN than" in other.output
    assert "(other weights)" in other.output
    narrow = runner.invoke(main, [*finetune, str(tmp_path / "narrow" / "dbn.h5"), "--resume",
                                  checkpoint, "--out", str(tmp_path / "resumed_narrow")])
    assert narrow.exit_code == 2, narrow.output
    assert "with hidden layers 16, not from" in narrow.output
    assert not (tmp_path / "resumed_other").exists()
    finished = runner.invoke(main, [*finetune, str(tmp_path / "other" / "dbn.h5"), "--resume",
                                    str(tmp_path / "ft" / "model.h5"), "--out",
                                    str(tmp_path / "rewritten")])
    assert finished.exit_code == 2, finished.output
    assert "(other weights)" in finished.output
    # the same DBN elsewhere (a teacher's copy): its content, not its path, identifies it
    shutil.copy(tmp_path / "first" / "dbn.h5", tmp_path / "copy.h5")
    moved = runner.invoke(main, [*finetune, str(tmp_path / "copy.h5"), "--resume", checkpoint,
                                 "--out", str(tmp_path / "resumed")])
    assert moved.exit_code == 0, moved.output
    assert (tmp_path / "resumed" / "model.h5").exists()


def test_dbn_finetune_resumed_with_fewer_epochs_than_it_trained_is_refused(
        tmp_path, digit_files):
    """`dbn finetune --resume runs/x/checkpoint.h5 --epochs 1` of a run that had trained 2
    said "resuming: all 1 epoch trained already, none left" and wrote the outputs, then
    "best epoch 2 of 2"; `cnn train` and `rbm train` refused it in one line, as it now
    does."""
    runner = CliRunner()
    pretrained = runner.invoke(main, ["dbn", "pretrain", "--layers", "784-8",
                                      "--dataset", digit_files, "--epochs-per-layer", "1",
                                      "--backend", "cpu", "--out", str(tmp_path / "dbn")])
    assert pretrained.exit_code == 0, pretrained.output
    finetune = ["dbn", "finetune", str(tmp_path / "dbn" / "dbn.h5"), "--batch-size", "256",
                "--backend", "cpu"]
    first = runner.invoke(main, [*finetune, "--epochs", "2", "--out", str(tmp_path / "ft")])
    assert first.exit_code == 0, first.output
    model = tmp_path / "ft" / "model.h5"
    written = model.read_bytes()
    fewer = runner.invoke(main, [*finetune, "--epochs", "1", "--resume", str(model)])
    assert fewer.exit_code == 2, fewer.output
    assert error_lines(fewer) == [
        f"dlcore: error: Invalid value for --epochs: {model} has trained 2 epochs already; "
        f"give --epochs 2 or more (see 'main dbn finetune --help')"]
    assert model.read_bytes() == written


class Killed(Exception):
    """A process ended where no Ctrl-C handler runs (SIGKILL, a power cut): nothing is saved
    then but the periodic checkpoint."""


def test_checkpoint_every_n_epochs_is_resumable(tmp_path, monkeypatch):
    runner = CliRunner()
    full = runner.invoke(main, [*RBM_TRAIN, "--out", str(tmp_path / "full"),
                                "--checkpoint-every", "2"])
    assert full.exit_code == 0, full.output
    original = ContrastiveDivergence.epoch
    epochs = {"started": 0}

    def killed_in_the_third(self, *arguments, **options):
        epochs["started"] += 1
        if epochs["started"] == 3:
            raise Killed
        return original(self, *arguments, **options)

    monkeypatch.setattr(ContrastiveDivergence, "epoch", killed_in_the_third)
    killed = runner.invoke(main, [*RBM_TRAIN, "--out", str(tmp_path / "killed"),
                                  "--checkpoint-every", "2"])
    monkeypatch.undo()
    assert isinstance(killed.exception, Killed), killed.output
    assert dlcore.load(tmp_path / "killed" / CHECKPOINT_FILE).epochs_done_ == 2
    resumed = runner.invoke(main, [*RBM_TRAIN, "--out", str(tmp_path / "resumed"), "--resume",
                                   str(tmp_path / "killed" / CHECKPOINT_FILE)])
    assert resumed.exit_code == 0, resumed.output
    assert_identical(dlcore.load(tmp_path / "full" / "model.h5"),
                     dlcore.load(tmp_path / "resumed" / "model.h5"))


def test_ctrl_c_before_the_first_epoch_exits_130_and_leaves_no_folder(tmp_path, monkeypatch):
    interrupt_after(monkeypatch, ContrastiveDivergence, "epoch", 1)
    out = tmp_path / "run"
    result = CliRunner().invoke(main, [*RBM_TRAIN, "--out", str(out)])
    assert result.exit_code == INTERRUPTED_EXIT_CODE, result.output
    assert "interrupted before the first epoch finished: nothing was saved" in result.output
    assert not out.exists()


def test_ctrl_c_outside_training_exits_130(tmp_path, monkeypatch):
    import dlcore.cli.rbm as rbm_commands

    def interrupted(*arguments, **options):
        raise KeyboardInterrupt

    monkeypatch.setattr(rbm_commands, "load_digit_split", interrupted)
    result = CliRunner().invoke(main, [*RBM_TRAIN, "--out", str(tmp_path / "run")])
    assert result.exit_code == INTERRUPTED_EXIT_CODE, result.output
    assert "dlcore: interrupted" in result.output


def test_resume_from_a_file_of_another_model_class_is_one_line(digits, tmp_path):
    # saved by a script: no training record names a command, so the class decides
    rbm = dlcore.BernoulliRBM(n_hidden=4, epochs=1, backend="cpu").fit(digits[0][:40])
    dlcore.save(rbm, tmp_path / "rbm.h5")
    result = CliRunner().invoke(main, [
        "cnn", "train", "--model", "mlp", "--dataset", "mnist-5k", "--epochs", "1",
        "--train-size", "100", "--backend", "cpu", "--out", str(tmp_path / "cnn"),
        "--resume", str(tmp_path / "rbm.h5")])
    assert result.exit_code == 1
    assert "holds a BernoulliRBM, not a Sequential" in result.output


@pytest.mark.slow
def test_homework_pretraining_resumes_in_each_stage_bit_identically(tmp_path, monkeypatch):
    arguments = ["homework", "pretraining", "--layers", "784-16-10", "--epochs-per-layer", "1",
                 "--epochs", "3", "--backend", "cpu", "--rows", "dbn,deep,shallow"]
    full = CliRunner().invoke(main, [*arguments, "--out", str(tmp_path / "full")])
    assert full.exit_code == 0, full.output
    updates_per_epoch = dlcore.load(tmp_path / "full" / "deep_net.h5").n_updates // 3
    for stage, calls in (("deep", 3 * updates_per_epoch + 2),
                         ("shallow", 6 * updates_per_epoch + 2 * updates_per_epoch + 1)):
        out = tmp_path / stage
        interrupted_then_resumed(monkeypatch, arguments, out, dlcore.network.Sequential,
                                 "_train_step", calls)
        assert (tmp_path / "full" / "pretraining.csv").read_text() == \
            (out / "pretraining.csv").read_text()
        for name in ("pretrained_net.h5", "deep_net.h5", "shallow_net.h5"):
            assert_identical(dlcore.load(tmp_path / "full" / name), dlcore.load(out / name))


@pytest.fixture(scope="module")
def digit_files(tmp_path_factory):
    """A folder of IDX files like MNIST's: 40 training and 10 test digits of each class."""
    from dlcore.datasets import load_mnist_5k, write_idx
    from dlcore.datasets.mnist import split_file_names
    folder = tmp_path_factory.mktemp("digit_files")
    images, labels = load_mnist_5k()
    for split, (start, stop) in (("train", (0, 40)), ("test", (40, 50))):
        rows = np.concatenate([np.flatnonzero(labels == k)[start:stop] for k in range(10)])
        images_name, labels_name = split_file_names(split)
        write_idx(folder / images_name, images[rows])
        write_idx(folder / labels_name, labels[rows])
    return str(folder)


@pytest.mark.slow
def test_homework_pretraining_resumes_in_the_autoencoder_and_supervised_stages(
        tmp_path, monkeypatch, digit_files):
    from dlcore.autoencoder.trainer import AutoencoderTrainer
    arguments = ["homework", "pretraining", "--layers", "784-16-10", "--epochs-per-layer", "2",
                 "--epochs", "3", "--backend", "cpu", "--rows", "autoencoder,supervised",
                 "--dataset", digit_files]
    full = CliRunner().invoke(main, [*arguments, "--out", str(tmp_path / "full")])
    assert full.exit_code == 0, full.output
    updates_per_epoch = dlcore.load(tmp_path / "full" / "autoencoder_net.h5").n_updates // 3
    # the stack's second layer, its first epoch
    interrupted_then_resumed(monkeypatch, arguments, tmp_path / "stack", AutoencoderTrainer,
                             "epoch", 3)
    # inside the supervised pretraining, which keeps no checkpoint: the run goes on from the
    # stage before it, saved (the line said it saved "the model after epoch 3 of 3", that
    # stage's network, again as checkpoint.h5)
    out = tmp_path / "supervised"
    interrupt_after(monkeypatch, dlcore.network.Sequential, "_train_step",
                    3 * updates_per_epoch + updates_per_epoch + 2)
    interrupted = CliRunner().invoke(main, [*arguments, "--out", str(out)])
    monkeypatch.undo()
    assert interrupted.exit_code == INTERRUPTED_EXIT_CODE, interrupted.output
    [line] = error_lines(interrupted)
    assert line.startswith(f"dlcore: interrupted after training: {out / 'autoencoder_net.h5'} "
                           "is saved and complete, but the stages after it were not run"), line
    assert not (out / CHECKPOINT_FILE).exists()
    resumed = CliRunner().invoke(main, resume_words(interrupted.output))
    assert resumed.exit_code == 0, resumed.output
    for out in (tmp_path / "stack", tmp_path / "supervised"):
        assert (tmp_path / "full" / "pretraining.csv").read_text() == \
            (out / "pretraining.csv").read_text()
        for name in ("stacked_autoencoder.h5", "autoencoder_net.h5", "supervised_net.h5"):
            assert_identical(dlcore.load(tmp_path / "full" / name), dlcore.load(out / name))


@pytest.mark.parametrize("rows, finished", [("dbn,autoencoder", "pretrained_net.h5"),
                                            ("dbn,deep", "pretrained_net.h5")])
def test_ctrl_c_before_a_stage_s_first_epoch_names_the_stage_saved_before_it(
        tmp_path, monkeypatch, digit_files, rows, finished):
    """homework pretraining interrupted as a stage began (the autoencoders' first epoch, after
    the DBN's network was fine-tuned and saved): the line said "saved the model after epoch 3
    of 3 to checkpoint.h5", the finished stage's network written again as a checkpoint, while
    the user watched the next stage. It now names the stage saved and how to go on from it."""
    from dlcore.autoencoder.trainer import AutoencoderTrainer
    arguments = ["homework", "pretraining", "--layers", "784-16-10", "--epochs-per-layer", "1",
                 "--epochs", "2", "--backend", "cpu", "--rows", rows, "--dataset", digit_files]
    full = CliRunner().invoke(main, [*arguments, "--out", str(tmp_path / "full")])
    assert full.exit_code == 0, full.output
    out = tmp_path / "part"
    if rows == "dbn,autoencoder":
        interrupt_after(monkeypatch, AutoencoderTrainer, "epoch", 1)
    else:    # the deep net's first step, after the DBN's network's 2 epochs
        updates_per_epoch = dlcore.load(tmp_path / "full" / finished).n_updates // 2
        interrupt_after(monkeypatch, dlcore.network.Sequential, "_train_step",
                        2 * updates_per_epoch + 1)
    interrupted = CliRunner().invoke(main, [*arguments, "--out", str(out)])
    monkeypatch.undo()
    assert interrupted.exit_code == INTERRUPTED_EXIT_CODE, interrupted.output
    [line] = error_lines(interrupted)
    if rows == "dbn,autoencoder":
        assert line.startswith(f"dlcore: interrupted after training: {out / finished} is saved "
                               "and complete, but the stages after it were not run"), line
        assert not (out / CHECKPOINT_FILE).exists()
    else:    # the deep net, built and compiled, is saved untrained: its stage resumes
        assert line.startswith(f"dlcore: interrupted: saved the model after epoch 0 of 2 to "
                               f"{out / CHECKPOINT_FILE}"), line
    resumed = CliRunner().invoke(main, resume_words(interrupted.output))
    assert resumed.exit_code == 0, resumed.output
    assert not (out / CHECKPOINT_FILE).exists()
    assert (tmp_path / "full" / "pretraining.csv").read_text() == \
        (out / "pretraining.csv").read_text()


AE_TRAIN = ["ae", "train", "--digits", "1-2", "--hidden", "10", "--epochs", "3", "--untied",
            "--backend", "cpu"]


@pytest.mark.slow
def test_ae_train_ctrl_c_saves_a_checkpoint_and_resuming_it_is_bit_identical(
        tmp_path, monkeypatch):
    from dlcore.autoencoder.trainer import AutoencoderTrainer
    full = CliRunner().invoke(main, [*AE_TRAIN, "--out", str(tmp_path / "full")])
    assert full.exit_code == 0, full.output
    # 800 training images, 40 steps an epoch: Ctrl-C in the middle of epoch 2
    interrupted_then_resumed(monkeypatch, AE_TRAIN, tmp_path / "part", AutoencoderTrainer,
                             "step", 60)
    expected = dlcore.load(tmp_path / "full" / "model.h5")
    resumed = dlcore.load(tmp_path / "part" / "model.h5")
    assert_identical(expected, resumed)
    np.testing.assert_array_equal(expected.W_decoder, resumed.W_decoder)
    assert resumed.history["loss"] == expected.history["loss"]


def test_dbn_interrupted_in_its_first_rbm_saves_a_file_that_loads_and_resumes(
        digits, tmp_path, monkeypatch):
    X, y = digits
    settings = {"layers": [784, 16, 10], "epochs": 3, "n_labels": 10, "persistent": True,
                "up_down_epochs": 1, "up_down_batch_size": 40, "batch_size": 40,
                "backend": "cpu"}
    full = dlcore.DBN(**settings).fit(X, y)
    dbn = dlcore.DBN(**settings)
    interrupt_after(monkeypatch, ContrastiveDivergence, "epoch", 2)   # RBM 1's second epoch
    with pytest.raises(KeyboardInterrupt):
        dbn.fit(X, y)
    monkeypatch.undo()
    resumed = reloaded(dbn, tmp_path, "dbn.h5")   # only RBM 1 is in the file
    resumed.resume(X, y)
    assert_identical(full, resumed)


# -- what a resumed run trains, records and reports ---------------------------------------
def error_lines(result):
    return [line for line in result.output.splitlines() if line.startswith("dlcore:")]


@pytest.fixture
def two_epoch_rbm(tmp_path):
    """model.h5 of `rbm train` for 2 of 4 epochs at --learning-rate 0.05 (not the default)."""
    trained = CliRunner().invoke(main, [*RBM_TRAIN[:-4], "2", *RBM_TRAIN[-3:],
                                        "--learning-rate", "0.05", "--out", str(tmp_path / "a")])
    assert trained.exit_code == 0, trained.output
    return tmp_path / "a" / "model.h5"


@pytest.mark.parametrize("option, value, message", [
    ("--learning-rate", "0.001",
     "--learning-rate 0.001 differs from the 0.05 the checkpoint was trained with"),
    ("--hidden", "99", "--hidden 99 differs from the 10 the checkpoint was trained with"),
    ("--digits", "3-4", "--digits 3-4 differs from the 1-2 the checkpoint was trained with"),
    ("--sparsity-target", "0.1",
     "--sparsity-target 0.1 differs from the default value the checkpoint was trained with"),
])
def test_resume_refuses_an_option_that_differs_from_the_checkpoints_run(
        two_epoch_rbm, tmp_path, option, value, message):
    result = CliRunner().invoke(main, [*RBM_TRAIN, option, value, "--out", str(tmp_path / "b"),
                                       "--resume", str(two_epoch_rbm)])
    assert result.exit_code == 2, result.output
    assert len(error_lines(result)) == 1
    assert message in error_lines(result)[0]
    assert "drop the option or start a new run" in error_lines(result)[0]
    assert not (tmp_path / "b" / "model.h5").exists()


@pytest.mark.parametrize("option, value, shown", [
    ("digits", None, "--digits the value null"),
    ("n_chains", [1, 2], "--chains the value [1, 2]"),
    ("sparsity_target", {"a": 1}, '--sparsity-target the value {"a": 1}'),
    ("n_chains", "x", '--chains the value "x"'),
])
def test_resume_refuses_a_training_record_the_options_cannot_take(
        two_epoch_rbm, tmp_path, option, value, shown):
    """The record is the file's, as untrusted as the rest: a value its option does not take
    (a file edited or damaged) ended in a traceback (AttributeError: 'NoneType' object has no
    attribute 'split'; TypeError: int() argument must be ... not 'list')."""
    import json

    import h5py
    with h5py.File(two_epoch_rbm, "r+") as h5file:
        record = json.loads(h5file.attrs["training_record"])
        record["parameters"][option] = value
        h5file.attrs["training_record"] = json.dumps(record)
    result = CliRunner().invoke(main, [*RBM_TRAIN[:2], "--out", str(tmp_path / "b"),
                                       "--resume", str(two_epoch_rbm)])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    [line] = error_lines(result)
    assert f"{two_epoch_rbm}: its training record gives {shown}, which" in line
    assert "the file was edited or damaged: start a new run" in line
    assert not (tmp_path / "b" / "model.h5").exists()


def test_resume_takes_the_checkpoints_options_and_records_them(two_epoch_rbm, tmp_path):
    # the same value given again is accepted; --epochs (the new total) and --out may change
    result = CliRunner().invoke(main, [*RBM_TRAIN, "--hidden", "10", "--out",
                                       str(tmp_path / "b"), "--resume", str(two_epoch_rbm)])
    assert result.exit_code == 0, result.output
    resumed = dlcore.load(tmp_path / "b" / "model.h5")
    assert resumed.learning_rate == pytest.approx(0.05) and resumed.epochs_done_ == 4
    parameters = resumed.training_record_["parameters"]
    assert parameters["learning_rate"] == pytest.approx(0.05)
    assert parameters["hidden"] == 10 and parameters["epochs"] == 4
    # a resumed RBM counts its epochs over its life: 3 and 4 of 4, not 1 and 2 of 2
    assert "training: epoch 3/4" in result.output and "training: epoch 4/4" in result.output
    assert "epoch 1/2" not in result.output


def test_homework_task1_resumed_prints_the_size_of_the_checkpoints_model(tmp_path):
    runner = CliRunner()
    arguments = ["homework", "task1", "--train-digits", "1-2", "--test-digits", "1-3",
                 "--backend", "cpu"]
    first = runner.invoke(main, [*arguments, "--hidden", "8", "--epochs", "1",
                                 "--out", str(tmp_path / "a")])
    assert first.exit_code == 0, first.output
    resumed = runner.invoke(main, [*arguments, "--epochs", "2", "--out", str(tmp_path / "b"),
                                   "--resume", str(tmp_path / "a" / "model.h5")])
    assert resumed.exit_code == 0, resumed.output
    assert "training a 784-8 RBM" in resumed.output
    assert dlcore.load(tmp_path / "b" / "model.h5").training_record_["parameters"][
        "hidden"] == 8


# -- Ctrl-C after training keeps the trained model ------------------------------------------
def interrupted_after_training(monkeypatch, module, name):
    """Ctrl-C in ``module.name``, which the command calls once training has finished."""
    def interrupted(*arguments, **options):
        raise KeyboardInterrupt

    monkeypatch.setattr(module, name, interrupted)


@pytest.mark.parametrize("arguments, module, function, epochs", [
    (["homework", "task1", "--train-digits", "1-2", "--test-digits", "1-3", "--hidden", "8",
      "--epochs", "2"], "dlcore.cli.homework", "reconstruction_table", 2),
    (["homework", "task2", "--patch", "4", "--hidden", "6", "--epochs", "2", "--max-size",
      "40"], "dlcore.cli.homework_task2", "reconstruction_rows", 2),
    (["homework", "task2", "--patch", "4", "--hidden", "6", "--epochs", "2", "--max-size",
      "40"], "dlcore.cli.homework_task2", "rbm_feature_maps", 2),
    (["cnn", "train", "--model", "mlp", "--dataset", "mnist-5k", "--epochs", "1",
      "--train-size", "100", "--optimizer", "sgd"], "dlcore.network.Sequential", "evaluate", 1),
])
def test_ctrl_c_after_training_keeps_the_trained_model(tmp_path, monkeypatch, arguments, module,
                                                       function, epochs):
    import importlib
    path, _, attribute = module.rpartition(".")
    target = (getattr(importlib.import_module(path), attribute)
              if attribute == "Sequential" else importlib.import_module(module))
    interrupted_after_training(monkeypatch, target, function)
    out = tmp_path / "run"
    result = CliRunner().invoke(main, [*arguments, "--backend", "cpu", "--out", str(out)])
    assert result.exit_code == INTERRUPTED_EXIT_CODE, result.output
    model = dlcore.load(out / "model.h5")
    done = model.epochs_done if isinstance(model, dlcore.Sequential) else model.epochs_done_
    assert done == epochs
    assert model.training_record_["parameters"]["epochs"] == epochs


@pytest.mark.parametrize("arguments, module, function, outputs", [
    (["homework", "task1", "--train-digits", "1-2", "--test-digits", "1-3", "--hidden", "8",
      "--epochs", "2"], "dlcore.cli.homework", "reconstruction_table",
     ["filters.png", "reconstructions.png", "training_curve.png", "reconstruction_error.csv"]),
    (["homework", "task2", "--patch", "4", "--hidden", "6", "--epochs", "2", "--max-size",
      "40"], "dlcore.cli.homework_task2", "rbm_feature_maps",
     ["filters.png", "reconstructions.png", "feature_maps.png", "reconstruction_error.csv"]),
    (["rbm", "train", "--digits", "1-2", "--hidden", "10", "--epochs", "2"], "dlcore.cli.rbm",
     "save_training_curve", ["filters.png", "training_curve.png"]),
    (["ae", "train", "--digits", "1-2", "--hidden", "10", "--epochs", "2"], "dlcore.cli.ae",
     "save_loss_curve", ["filters.png", "reconstructions.png", "training_curve.png"]),
    (["cnn", "train", "--model", "mlp", "--dataset", "mnist-5k", "--epochs", "1",
      "--train-size", "100", "--optimizer", "sgd"], "dlcore.cli.cnn", "write_training_outputs",
     ["training_curve.png", "confusion_matrix.png", "metrics.json"]),
    (["dbn", "pretrain", "--layers", "784-16-8", "--epochs-per-layer", "1", "--with-labels",
      "--up-down-epochs", "1"], "dlcore.cli.dbn", "save_layer_filters",
     ["dbn.h5", "filters_layer1.png", "filters_layer2.png"]),
    (["dbn", "finetune", "{dbn}", "--epochs", "2", "--batch-size", "128"], "dlcore.viz",
     "save_confusion_matrix", ["training_curve.png", "confusion_matrix.png"]),
    (["homework", "pretraining", "--layers", "784-8-8", "--rows", "deep,shallow",
      "--train-size", "200", "--epochs", "2", "--checkpoint-every", "1"],
     "dlcore.cli.homework_pretraining", "write_csv",
     ["shallow_net.h5", "deep_net.h5", "pretraining.csv", "pretraining_curves.png"]),
], ids=["task1", "task2", "rbm train", "ae train", "cnn train", "dbn pretrain", "dbn finetune",
        "homework pretraining"])
def test_ctrl_c_after_training_says_the_model_is_complete_and_how_to_write_the_rest(
        tmp_path, monkeypatch, arguments, module, function, outputs):
    import importlib
    if "{dbn}" in arguments:
        arguments = [word.format(dbn=small_dbn(tmp_path)) for word in arguments]
    interrupted_after_training(monkeypatch, importlib.import_module(module), function)
    out = tmp_path / "run"
    result = CliRunner().invoke(main, [*arguments, "--backend", "cpu", "--out", str(out)])
    monkeypatch.undo()
    assert result.exit_code == INTERRUPTED_EXIT_CODE, result.output
    model_file = out / next((name for name in outputs if name.endswith(".h5")), "model.h5")
    assert error_lines(result) == [line for line in error_lines(result)
                                   if line.startswith("dlcore: interrupted after training: "
                                                      f"{model_file} is saved and complete")]
    assert len(error_lines(result)) == 1
    trained = dlcore.load(model_file)
    words = shlex.split(error_lines(result)[0].split("without training again with: ", 1)[1])
    assert words[0] == "dlcore"
    words = words[1:]
    assert words[-2:] == ["--resume", str(model_file)]
    finished = CliRunner().invoke(main, words)
    assert finished.exit_code == 0, finished.output
    assert "training: epoch" not in finished.output     # what was left: no epoch at all
    assert_identical(trained, dlcore.load(model_file))
    for name in outputs:
        assert (out / name).stat().st_size > 0, name


@pytest.mark.parametrize("function, call", [("evaluate", 1), ("random_network", 2)],
                         ids=["measuring the first", "building the second"])
def test_ctrl_c_between_the_stages_of_homework_pretraining_says_how_to_run_the_rest(
        tmp_path, monkeypatch, function, call):
    """A Ctrl-C as the first of two networks is measured, or as the second is built: the
    first's file is complete, and the command printed runs the second stage without training
    the first again, to the table of an uninterrupted run."""
    import dlcore.cli.homework_pretraining as homework_pretraining
    arguments = ["homework", "pretraining", "--layers", "784-8-8", "--rows", "deep,shallow",
                 "--train-size", "200", "--epochs", "2", "--backend", "cpu"]
    original, calls = getattr(homework_pretraining, function), []

    def interrupted(*arguments):
        calls.append(1)
        if len(calls) == call:
            raise KeyboardInterrupt
        return original(*arguments)

    monkeypatch.setattr(homework_pretraining, function, interrupted)
    out = tmp_path / "run"
    result = CliRunner().invoke(main, [*arguments, "--out", str(out)])
    monkeypatch.undo()
    assert result.exit_code == INTERRUPTED_EXIT_CODE, result.output
    [message] = error_lines(result)
    first = out / "deep_net.h5"
    assert message.startswith(f"dlcore: interrupted after training: {first} is saved and "
                              "complete, but the stages after it were not run; run them "
                              "without training it again with: dlcore homework pretraining ")
    assert sorted(path.name for path in out.iterdir()) == ["deep_net.h5"]
    trained = dlcore.load(first)
    words = shlex.split(message.split(" with: ", 1)[1])[1:]
    assert words[-2:] == ["--resume", str(first)]
    finished = CliRunner().invoke(main, words)
    assert finished.exit_code == 0, finished.output
    # the first stage has no epoch left, but the run does: it said "none left: the outputs
    # are written again without training", then trained the second
    [resuming] = [line for line in finished.stderr.splitlines() if line.startswith("resuming")]
    assert resuming.startswith("resuming: all 2 epochs trained already, none left: its file "
                               "is written again and the stages after it train")
    assert_identical(trained, dlcore.load(first))
    full = CliRunner().invoke(main, [*arguments, "--out", str(tmp_path / "full")])
    assert full.exit_code == 0, full.output
    assert (out / "pretraining.csv").read_text() == \
        (tmp_path / "full" / "pretraining.csv").read_text()


def small_dbn(folder):
    """The dbn.h5 of a 784-16 DBN pretrained for an epoch, in ``folder``."""
    path = folder / "dbn.h5"
    dbn = dlcore.DBN(layers=[784, 16], epochs=1, seed=0, backend="cpu")
    images, _ = dlcore.datasets.load_mnist_5k()
    dlcore.save(dbn.fit(dlcore.datasets.to_unit_interval(images[:500])), path)
    return path


def interrupt_the_saves(monkeypatch, lands):
    """A Ctrl-C in the first save of the commands: after the file landed (renamed into place)
    or before."""
    import dlcore.cli._common as common
    original_save, calls = common.save_model, []

    def interrupted_save(model, path):
        calls.append(path)
        if lands or len(calls) > 1:
            original_save(model, path)
        if len(calls) == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(common, "save_model", interrupted_save)


@pytest.mark.parametrize("lands", [True, False], ids=["after the file landed",
                                                      "before the file landed"])
def test_ctrl_c_inside_the_save_of_the_trained_model_says_what_the_folder_holds(
        tmp_path, monkeypatch, lands):
    """The race of a real Ctrl-C just as model.h5 appears: the save renames the file, then
    returns. Either way the trained model is not lost with the interruption: one that landed
    before the file did is saved again (the model is whole in memory)."""
    interrupt_the_saves(monkeypatch, lands)
    out = tmp_path / "run"
    result = CliRunner().invoke(main, [*TASK1, "--epochs", "2", "--out", str(out)])
    monkeypatch.undo()
    assert result.exit_code == INTERRUPTED_EXIT_CODE, result.output
    [message] = error_lines(result)
    assert message.startswith(f"dlcore: interrupted after training: {out / 'model.h5'} is "
                              "saved and complete, but the figures")
    assert message.endswith(f"--resume {out / 'model.h5'}")
    assert dlcore.load(out / "model.h5").epochs_done_ == 2


def test_ctrl_c_inside_a_checkpoint_save_reports_the_epoch_the_network_kept(tmp_path,
                                                                            monkeypatch):
    import dlcore.cli._common as common
    pretrained = CliRunner().invoke(main, ["dbn", "pretrain", "--layers", "784-16",
                                           "--epochs-per-layer", "1", "--backend", "cpu",
                                           "--out", str(tmp_path / "dbn")])
    assert pretrained.exit_code == 0, pretrained.output
    original_save, calls = common.save_model, {"n": 0}

    def save_interrupted_at_the_second_checkpoint(model, path):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original_save(model, path)

    monkeypatch.setattr(common, "save_model", save_interrupted_at_the_second_checkpoint)
    out = tmp_path / "run"
    result = CliRunner().invoke(main, [
        "dbn", "finetune", str(tmp_path / "dbn" / "dbn.h5"), "--epochs", "4", "--patience",
        "3", "--batch-size", "128", "--backend", "cpu", "--checkpoint-every", "1",
        "--out", str(out)])
    assert result.exit_code == INTERRUPTED_EXIT_CODE, result.output
    # the Ctrl-C in epoch 2's save rolls the network back to epoch 1: the message says so
    assert "saved the model after epoch 1 of 4" in error_lines(result)[0]
    assert dlcore.load(out / CHECKPOINT_FILE).epochs_done == 1


@pytest.mark.parametrize("lands", [True, False], ids=["after the file landed",
                                                      "before the file landed"])
def test_ctrl_c_at_the_first_checkpoint_says_what_the_folder_holds(tmp_path, monkeypatch,
                                                                   lands):
    """Ctrl-C as the first periodic checkpoint is written: the message follows the file on
    disk, not what the command had recorded before the save returned."""
    interrupt_the_saves(monkeypatch, lands)
    out = tmp_path / "run"
    result = CliRunner().invoke(main, [*RBM_TRAIN, "--checkpoint-every", "1",
                                       "--out", str(out)])
    monkeypatch.undo()
    assert result.exit_code == INTERRUPTED_EXIT_CODE, result.output
    [message] = error_lines(result)
    if not lands:
        assert message == ("dlcore: interrupted while the first checkpoint was being written: "
                           "nothing was saved")
        assert not (out / CHECKPOINT_FILE).exists()
        return
    assert message.startswith(f"dlcore: interrupted: saved the model after epoch 1 of 4 to "
                              f"{out / CHECKPOINT_FILE}; resume with: ")
    assert dlcore.load(out / CHECKPOINT_FILE).epochs_done_ == 1
    resumed = CliRunner().invoke(main, resume_words(result.output))
    assert resumed.exit_code == 0, resumed.output
    full = CliRunner().invoke(main, [*RBM_TRAIN, "--out", str(tmp_path / "full")])
    assert full.exit_code == 0, full.output
    assert_identical(dlcore.load(tmp_path / "full" / "model.h5"), dlcore.load(out / "model.h5"))


# -- a resumed run continues the command that wrote the file ----------------------------------
TASK1 = ["homework", "task1", "--train-digits", "1-2", "--test-digits", "1-3", "--hidden", "8",
         "--backend", "cpu"]


def test_resume_refuses_a_checkpoint_another_command_wrote(tmp_path, monkeypatch):
    # rbm train on digits 1-2, interrupted: task1 would claim its own digits for that model
    interrupt_after(monkeypatch, ContrastiveDivergence, "epoch", 2)
    interrupted = CliRunner().invoke(main, [*RBM_TRAIN, "--out", str(tmp_path / "int")])
    monkeypatch.undo()
    assert interrupted.exit_code == INTERRUPTED_EXIT_CODE, interrupted.output
    checkpoint = tmp_path / "int" / CHECKPOINT_FILE
    result = CliRunner().invoke(main, [*TASK1, "--epochs", "3", "--out", str(tmp_path / "x"),
                                       "--resume", str(checkpoint)])
    assert result.exit_code == 1, result.output
    assert error_lines(result) == [
        f"dlcore: error: {checkpoint} was written by 'dlcore rbm train', not by 'dlcore "
        "homework task1': a resumed run continues the same training; resume it with: "
        f"dlcore rbm train --resume {checkpoint}"]
    assert not (tmp_path / "x").exists()


def test_resume_refuses_the_finished_model_of_another_command(tmp_path):
    runner = CliRunner()
    first = runner.invoke(main, [*TASK1, "--epochs", "1", "--out", str(tmp_path / "task1")])
    assert first.exit_code == 0, first.output
    result = runner.invoke(main, [*RBM_TRAIN, "--out", str(tmp_path / "b"),
                                  "--resume", str(tmp_path / "task1" / "model.h5")])
    assert result.exit_code == 1, result.output
    assert len(error_lines(result)) == 1
    assert "was written by 'dlcore homework task1', not by 'dlcore rbm train'" in \
        error_lines(result)[0]
    assert not (tmp_path / "b").exists()


# -- a new run never overwrites an interrupted run's checkpoint -------------------------------
@pytest.fixture(scope="module")
def pending_work(tmp_path_factory):
    """The bytes of a readable model file, as an interrupted run's checkpoint.h5 (a tiny RBM
    on the reference backend: which model does not matter to the refusal)."""
    path = tmp_path_factory.mktemp("pending") / CHECKPOINT_FILE
    rbm = dlcore.BernoulliRBM(n_hidden=2, epochs=1, seed=0, backend="reference")
    dlcore.save(rbm.fit(np.zeros((4, 4), np.float32)), path)
    return path.read_bytes()


@pytest.mark.parametrize("arguments", [
    ["rbm", "train"], ["ae", "train"], ["cnn", "train"], ["dbn", "pretrain"],
    ["dbn", "finetune", "{model}"], ["homework", "task1"], ["homework", "task2"],
    ["homework", "pretraining"]], ids=lambda words: " ".join(words[:2]))
def test_a_new_run_refuses_an_out_folder_holding_a_checkpoint(tmp_path, arguments,
                                                              pending_work):
    out = tmp_path / "run"
    out.mkdir()
    (out / CHECKPOINT_FILE).write_bytes(pending_work)
    (tmp_path / "dbn.h5").write_bytes(b"")
    words = [word.format(model=tmp_path / "dbn.h5") for word in arguments]
    result = CliRunner().invoke(main, [*words, "--backend", "cpu", "--out", str(out)])
    assert result.exit_code == 1, result.output
    # the command that resumes it: the arguments and --out only, as the others come from
    # the file (this run's --backend might not be that run's)
    assert error_lines(result) == [
        f"dlcore: error: --out {out} holds the checkpoint of an interrupted run, which this run "
        f"would overwrite; resume it with: dlcore {' '.join(words)} --out {out} --resume "
        f"{out / CHECKPOINT_FILE} (or choose another --out, or delete {out / CHECKPOINT_FILE})"]
    assert (out / CHECKPOINT_FILE).read_bytes() == pending_work
    assert sorted(path.name for path in out.iterdir()) == [CHECKPOINT_FILE]


@pytest.mark.parametrize("command", [
    RBM_TRAIN,
    ["homework", "pretraining", "--layers", "784-8-8", "--rows", "deep,shallow",
     "--train-size", "200", "--epochs", "2", "--backend", "cpu"]],
    ids=["rbm train", "homework pretraining"])
def test_a_finished_checkpointing_run_may_be_run_again_in_its_out_folder(tmp_path, command,
                                                                         pending_work):
    """Its model.h5 (homework pretraining: each stage's file) supersedes its checkpoint, which
    is deleted once that is saved, as Keras's BackupAndRestore deletes its backup: running the
    command again there is not refused (an interrupted run's checkpoint is)."""
    out = tmp_path / "run"
    arguments = [*command, "--out", str(out), "--checkpoint-every", "2"]
    first = CliRunner().invoke(main, arguments)
    assert first.exit_code == 0, first.output
    assert not (out / CHECKPOINT_FILE).exists()
    again = CliRunner().invoke(main, arguments)
    assert again.exit_code == 0, again.output
    assert not (out / CHECKPOINT_FILE).exists()
    (out / CHECKPOINT_FILE).write_bytes(pending_work)     # newer than model.h5
    refused = CliRunner().invoke(main, arguments)
    assert refused.exit_code == 1 and "which this run would overwrite" in \
        error_lines(refused)[0]


@pytest.mark.parametrize("arguments", [
    RBM_TRAIN,
    ["homework", "task1", "--train-digits", "1-2", "--test-digits", "1-3", "--hidden", "8",
     "--epochs", "4", "--backend", "cpu"]], ids=["rbm train", "task1"])
def test_the_resume_line_of_a_run_that_then_finished_trains_nothing_again(
        tmp_path, monkeypatch, arguments):
    """A run interrupted, resumed with a larger --epochs and finished: its checkpoint, left in
    the folder, made the first interruption's "resume with" line (in the shell's history)
    train the run again from that epoch, to its first total, and replace the longer run's
    model.h5 without a word. The finished run deleted it: that line now names the model
    files there are, and the finished model stays."""
    out = tmp_path / "run"
    interrupt_after(monkeypatch, ContrastiveDivergence, "epoch", 2)
    interrupted = CliRunner().invoke(main, [*arguments, "--out", str(out)])
    monkeypatch.undo()
    assert interrupted.exit_code == INTERRUPTED_EXIT_CODE, interrupted.output
    resume_line = shlex.split(error_lines(interrupted)[-1].split("resume with: ", 1)[1])
    finished = CliRunner().invoke(main, [*arguments[:2], "--epochs", "6", "--resume",
                                         str(out / CHECKPOINT_FILE)])
    assert finished.exit_code == 0, finished.output
    assert not (out / CHECKPOINT_FILE).exists()
    written = (out / "model.h5").read_bytes()
    again = CliRunner().invoke(main, resume_line[1:])
    assert again.exit_code == 2, again.output
    assert error_lines(again) == [
        f"dlcore: error: Invalid value for '--resume': {out / CHECKPOINT_FILE} does not exist: "
        f"did you mean {out / 'model.h5'}? (see 'main {' '.join(arguments[:2])} --help')"]
    assert (out / "model.h5").read_bytes() == written
    assert dlcore.load(out / "model.h5").epochs_done_ == 6


def test_a_resumed_run_refuses_an_out_folder_holding_another_checkpoint(
        two_epoch_rbm, tmp_path, pending_work):
    out = tmp_path / "b"
    out.mkdir()
    (out / CHECKPOINT_FILE).write_bytes(pending_work)
    result = CliRunner().invoke(main, [*RBM_TRAIN, "--out", str(out),
                                       "--resume", str(two_epoch_rbm)])
    assert result.exit_code == 1, result.output
    assert "which this run would overwrite" in error_lines(result)[0]
    assert (out / CHECKPOINT_FILE).read_bytes() == pending_work


@pytest.mark.parametrize("arguments", [["rbm", "train"], ["homework", "task1"]],
                         ids=lambda words: " ".join(words))
@pytest.mark.parametrize("damage", ["truncated", "empty", "not HDF5"])
def test_a_damaged_checkpoint_in_out_is_not_offered_for_resuming(tmp_path, arguments, damage,
                                                                 pending_work):
    """A checkpoint.h5 that a copy cut short: the refusal said "resume it with: ... --resume
    run/checkpoint.h5", whose run then refused the file ("is truncated ...; save the model
    again or copy the complete file"), a loop for a student who wants to start again."""
    content = {"truncated": pending_work[:len(pending_work) // 2], "empty": b"",
               "not HDF5": b"pending work"}[damage]
    out = tmp_path / "run"
    out.mkdir()
    (out / CHECKPOINT_FILE).write_bytes(content)
    result = CliRunner().invoke(main, [*arguments, "--backend", "cpu", "--out", str(out)])
    assert result.exit_code == 1, result.output
    [line] = error_lines(result)
    assert line.startswith(f"dlcore: error: --out {out} holds the checkpoint of an "
                           f"interrupted run, but it cannot be resumed ({out / CHECKPOINT_FILE}")
    assert line.endswith(f"): delete {out / CHECKPOINT_FILE} to start again there, or choose "
                         f"another --out")
    assert "--resume" not in line and "save the model again" not in line
    assert (out / CHECKPOINT_FILE).read_bytes() == content
    assert sorted(path.name for path in out.iterdir()) == [CHECKPOINT_FILE]


def test_resume_without_out_goes_on_in_the_folder_of_its_file(two_epoch_rbm, tmp_path,
                                                              monkeypatch):
    """Not in the command's default folder (runs/rbm), which left the checkpoint pending and
    the run's files in two folders."""
    out = tmp_path / "x"
    out.mkdir()
    shutil.copyfile(two_epoch_rbm, out / CHECKPOINT_FILE)
    monkeypatch.chdir(tmp_path)
    resumed = CliRunner().invoke(main, ["rbm", "train", "--epochs", "3", "--backend", "cpu",
                                        "--resume", str(out / CHECKPOINT_FILE)])
    assert resumed.exit_code == 0, resumed.output
    assert dlcore.load(out / "model.h5").epochs_done_ == 3
    assert not (tmp_path / "runs").exists()


def test_the_command_a_refused_run_prints_resumes_the_checkpoint_in_a_folder_with_a_space(
        two_epoch_rbm, tmp_path):
    out = tmp_path / "my runs"
    out.mkdir()
    shutil.copyfile(two_epoch_rbm, out / CHECKPOINT_FILE)
    # another run in that folder, with options of its own (10 epochs, not the file's 4)
    refused = CliRunner().invoke(main, [*RBM_TRAIN[:-4], "10", *RBM_TRAIN[-3:],
                                        "--out", str(out)])
    assert refused.exit_code == 1, refused.output
    words = shlex.split(error_lines(refused)[0].split("resume it with: ", 1)[1].split(" (")[0])
    assert words[0] == "dlcore" and words[-2:] == ["--resume", str(out / CHECKPOINT_FILE)]
    resumed = CliRunner().invoke(main, words[1:])
    assert resumed.exit_code == 0, resumed.output
    assert dlcore.load(out / "model.h5").learning_rate == 0.05   # the file's run's


@pytest.mark.parametrize("command, new_total", [
    (["dbn", "pretrain"], None), (["rbm", "train"], "--epochs (the new total)"),
    (["homework", "pretraining"], "--epochs (the new total)")])
def test_the_resume_help_names_only_options_the_command_has(command, new_total):
    help_text = " ".join(CliRunner().invoke(main, [*command, "--help"]).stdout.split())
    start = help_text.index("--resume FILE")
    resume_help = help_text[start:help_text.index("may change", start)]
    if new_total is None:    # dbn pretrain has --epochs-per-layer, fixed by the checkpoint
        assert "--epochs" not in resume_help
        assert resume_help.endswith("--backend, --out and --checkpoint-every ")
    else:
        assert new_total in resume_help


# -- --resume FILE alone continues to the run's own total of epochs ----------------------------
@pytest.mark.parametrize("arguments", [
    ["homework", "task1", "--train-digits", "1-2", "--test-digits", "1-3", "--hidden", "8",
     "--epochs", "3"],
    ["homework", "task2", "--patch", "4", "--hidden", "6", "--epochs", "3", "--max-size", "40"],
    ["rbm", "train", "--digits", "1-2", "--hidden", "10", "--epochs", "3"],
    ["ae", "train", "--digits", "1-2", "--hidden", "10", "--epochs", "3"],
], ids=["task1", "task2", "rbm train", "ae train"])
def test_resume_without_epochs_trains_to_the_checkpoints_own_total(tmp_path, monkeypatch,
                                                                   arguments):
    """The --resume help: "with the options of that run, for the epochs it had left". A run of
    3 epochs (not the command's default) interrupted after 2 and resumed with --resume alone
    is the uninterrupted run of 3 epochs, as rbm.resume(X) trains towards its own epochs."""
    from dlcore.autoencoder.trainer import AutoencoderTrainer
    runner = CliRunner()
    full = runner.invoke(main, [*arguments, "--backend", "cpu", "--out", str(tmp_path / "full")])
    assert full.exit_code == 0, full.output
    trainer = AutoencoderTrainer if arguments[0] == "ae" else ContrastiveDivergence
    interrupt_after(monkeypatch, trainer, "epoch", 3)
    interrupted = runner.invoke(main, [*arguments, "--backend", "cpu",
                                       "--out", str(tmp_path / "part")])
    monkeypatch.undo()
    assert interrupted.exit_code == INTERRUPTED_EXIT_CODE, interrupted.output
    resumed = runner.invoke(main, [*arguments[:2], "--resume",
                                   str(tmp_path / "part" / CHECKPOINT_FILE),
                                   "--backend", "cpu", "--out", str(tmp_path / "part")])
    assert resumed.exit_code == 0, resumed.output
    expected = dlcore.load(tmp_path / "full" / "model.h5")
    actual = dlcore.load(tmp_path / "part" / "model.h5")
    assert actual.epochs_done_ == 3 and actual.training_record_["parameters"]["epochs"] == 3
    assert_identical(expected, actual)


@pytest.mark.parametrize("arguments", [
    ["homework", "task2", "--patch", "4", "--hidden", "6", "--epochs", "2", "--max-size", "40"],
    ["cnn", "train", "--model", "mlp", "--dataset", "mnist-5k", "--epochs", "1",
     "--train-size", "100", "--optimizer", "sgd"],
], ids=["task2", "cnn train"])
def test_resume_of_a_finished_model_without_epochs_trains_no_further(tmp_path, arguments):
    """A teacher rebuilding a hand-in's figures with --resume model.h5 gets the hand-in's
    model back, not one trained on to the command's default epochs."""
    runner = CliRunner()
    out = tmp_path / "hand-in"
    first = runner.invoke(main, [*arguments, "--backend", "cpu", "--out", str(out)])
    assert first.exit_code == 0, first.output
    before = dlcore.load(out / "model.h5")
    again = runner.invoke(main, [*arguments[:2], "--resume", str(out / "model.h5"),
                                 "--backend", "cpu", "--out", str(out)])
    assert again.exit_code == 0, again.output
    after = dlcore.load(out / "model.h5")
    assert_identical(before, after)
    epochs = int(arguments[arguments.index("--epochs") + 1])
    assert after.training_record_["parameters"]["epochs"] == epochs
    # and says so, as every resumed command does (cnn train said nothing)
    assert (f"{count(epochs, 'epoch')} trained already, none left: the outputs are written "
            "again without training (a larger --epochs trains on)") in again.stderr
    assert "all 1 epoch" not in again.stderr


@pytest.mark.slow
def test_a_resumed_cnn_train_s_training_seconds_are_those_of_all_its_epochs(tmp_path):
    # metrics.json's training_seconds counted only the part after the resume, then the
    # epochs before it and the wall clock of the resumed run (its set-up, not the first's)
    runner = CliRunner()
    arguments = ["cnn", "train", "--model", "mlp", "--dataset", "mnist-5k", "--train-size",
                 "100", "--optimizer", "sgd", "--backend", "cpu"]
    first = runner.invoke(main, [*arguments, "--epochs", "1", "--out", str(tmp_path / "a")])
    assert first.exit_code == 0, first.output
    before = dlcore.load(tmp_path / "a" / "model.h5").history["seconds"]
    resumed = runner.invoke(main, [*arguments[:2], "--resume", str(tmp_path / "a" / "model.h5"),
                                   "--epochs", "2", "--out", str(tmp_path / "b")])
    assert resumed.exit_code == 0, resumed.output
    metrics = json.loads((tmp_path / "b" / "metrics.json").read_text())
    after = metrics["history"]["seconds"]
    assert after[:1] == before and len(after) == 2
    # one definition, resumed or not (docs/networks.md): the seconds of the epochs
    assert metrics["training_seconds"] == math.fsum(after)


def test_resuming_task2_names_the_bundled_photograph_it_was_trained_on(tmp_path):
    """The checkpoint of a run on the bundled coffee cup (no --train-image) refuses another
    photograph naming the cup, not Python's None, and takes the cup by its name."""
    from dlcore.datasets import images
    runner = CliRunner()
    arguments = ["homework", "task2", "--patch", "4", "--hidden", "6", "--max-size", "30",
                 "--backend", "cpu"]
    first = runner.invoke(main, [*arguments, "--epochs", "1", "--out", str(tmp_path / "a")])
    assert first.exit_code == 0, first.output
    model = str(tmp_path / "a" / "model.h5")
    cat = str(images.bundled_image_path("chelsea"))
    refused = runner.invoke(main, [*arguments, "--train-image", cat, "--resume", model,
                                   "--out", str(tmp_path / "b")])
    assert refused.exit_code == 2, refused.output
    assert error_lines(refused)[0].startswith(
        f"dlcore: error: --train-image {cat} differs from the bundled coffee cup (coffee) the "
        "checkpoint was trained with")
    same = runner.invoke(main, [*arguments, "--train-image", "coffee", "--resume", model,
                                "--out", str(tmp_path / "c")])
    assert same.exit_code == 0, same.output


@contextlib.contextmanager
def interrupted_rbm_training(tmp_path, name, stopped_by=None):
    """The checkpoints of a `dlcore rbm train` of 3 epochs, over a fitted RBM, under the
    handler of signal ``name`` that the command line installs (SIGTERM's by
    interrupt_on_termination); yields (model, checkpoints, the raised TrainingInterrupted's
    pytest.raises info, the signal's number). ``stopped_by``: the signal the interruption
    names ("SIGINT" for a Ctrl-C), ``name`` unless given."""
    import click

    from dlcore.cli._common import Checkpoints, TrainingInterrupted
    from dlcore.cli.rbm import train
    from dlcore.termination import terminating_signal
    number = getattr(signal, name)
    model = dlcore.BernoulliRBM(n_hidden=2, epochs=1, seed=0).fit(
        np.random.default_rng(0).random((8, 4)))
    checkpoints = Checkpoints(tmp_path)
    as_the_command_line = (dlcore.interrupt_on_termination() if name != "SIGINT"
                           else contextlib.nullcontext())
    # Python's own Ctrl-C handler, as a command line starts with: the one the checkpoints
    # latch onto (a test run in the same worker process before may have left another)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with click.Context(train, info_name="dlcore rbm train") as context, as_the_command_line:
            context.params = {"epochs": 3, "resume": None}
            with pytest.raises(TrainingInterrupted) as stopped:
                yield model, checkpoints, stopped, number
            terminated = terminating_signal(stopped.value)
            stopped_by = stopped_by or name
            assert (terminated and terminated.signal_name) == (None if stopped_by == "SIGINT"
                                                               else stopped_by)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert (tmp_path / CHECKPOINT_FILE).exists()


def drop_a_signal(number):
    """Run the handler of signal ``number`` in a weakref callback, where Python drops what it
    raises ("Exception ignored in"), as it does in a C callback of Numba's compiler."""
    handler = signal.getsignal(number)

    class Garbage:
        pass

    garbage = Garbage()
    collected = weakref.ref(garbage, lambda _: handler(number, None))
    del garbage
    assert collected() is None


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")   # the drop
@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_a_ctrl_c_python_drops_stops_the_training_at_the_next_epochs_end(tmp_path, name):
    """Python drops an exception raised in a weakref callback ("Exception ignored in"): a
    Ctrl-C landing in garbage collection, such as of the h5py objects a checkpoint leaves, went
    unnoticed, and training ran on (a SIGINT to one rank under mpiexec never ended the job).
    The handler that training commands install also records it, and the epoch's end raises.
    So too a SIGTERM, which the command line makes an interruption (a cluster's, whose SIGKILL
    follows)."""
    default = signal.getsignal(getattr(signal, name))
    with interrupted_rbm_training(tmp_path, name) as (model, checkpoints, stopped, number):
        with checkpoints.on_interrupt():
            checkpoints.epoch_finished(model, "epoch 1 of 3")
            drop_a_signal(number)
            checkpoints.epoch_finished(model, "epoch 2 of 3")
            raise AssertionError("the training went on after the signal")
    assert "after epoch 2 of 3" in str(stopped.value)
    assert signal.getsignal(number) is default


def test_a_checkpoint_that_finds_no_room_is_one_line_naming_the_complete_one(
        tmp_path, monkeypatch):
    """--checkpoint-every whose second save finds the disk full: one error line, exit code 1,
    the file and the reason named, and the first epoch's checkpoint left whole and loadable."""
    import errno

    from dlcore.cli import _common
    from dlcore.io import NoRoomError
    saves = {"calls": 0}
    original = _common.save_model

    def full_after_one(model, path):
        saves["calls"] += 1
        if saves["calls"] == 2:
            raise NoRoomError(path, errno.ENOSPC)
        original(model, path)

    monkeypatch.setattr(_common, "save_model", full_after_one)
    out = tmp_path / "run"
    result = CliRunner().invoke(main, [
        "cnn", "train", "--model", "mlp", "--dataset", "mnist-5k", "--epochs", "3",
        "--train-size", "200", "--optimizer", "sgd", "--backend", "cpu",
        "--checkpoint-every", "1", "--out", str(out)])
    assert result.exit_code == 1, result.output
    errors = [line for line in error_lines(result) if line.startswith("dlcore: error:")]
    assert len(errors) == 1
    line = errors[0]
    assert f"cannot write {out / CHECKPOINT_FILE}: no space left on device" in line
    assert dlcore.load(out / CHECKPOINT_FILE).epochs_done == 1


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")   # the drop
@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_an_error_after_a_ctrl_c_python_dropped_is_that_interruption(tmp_path, name):
    """A Ctrl-C landing in a callback that Numba's compiler runs from C (Python drops it)
    leaves the kernel without machine code, and the compilation fails next: "dlcore: rank 1 of
    2: no compiled object yet for <Library '_half_product' ...>", exit code 1, for a Ctrl-C to
    one rank during its first epoch (1 time in 4). The interruption is what happened."""
    with interrupted_rbm_training(tmp_path, name) as (model, checkpoints, stopped, number):
        with checkpoints.on_interrupt():
            checkpoints.epoch_finished(model, "epoch 1 of 3")
            drop_a_signal(number)
            raise RuntimeError("no compiled object yet for <Library '_half_product'>")
    assert "after epoch 1 of 3" in str(stopped.value)
    # without a dropped Ctrl-C, an error is that error
    with pytest.raises(RuntimeError, match="no compiled object"), checkpoints.on_interrupt():
        raise RuntimeError("no compiled object yet for <Library '_half_product'>")


@pytest.mark.parametrize("during", ["before the file is written", "after it is renamed"])
def test_a_sigterm_during_the_save_of_a_ctrl_c_waits_and_the_ctrl_c_is_the_exit_code(
        tmp_path, monkeypatch, during):
    """Ctrl-C, then a SIGTERM (the cluster's time limit, `timeout`) while the checkpoint that
    the Ctrl-C asked for is written: the SIGTERM threw the checkpoint away (or left it on disk
    unannounced) and the line said "interrupted by SIGTERM" (exit 143) with no word of the
    epochs trained. The first interruption wins: the save finishes, the line names the file,
    the resume command and the held SIGTERM, and the exit code is the Ctrl-C's."""
    from dlcore.cli import _common
    original = _common.save_model

    def save_under_a_sigterm(model, path):
        if during.startswith("before"):
            signal.getsignal(signal.SIGTERM)(signal.SIGTERM, None)
        original(model, path)
        if during.startswith("after"):
            signal.getsignal(signal.SIGTERM)(signal.SIGTERM, None)

    with interrupted_rbm_training(tmp_path, "SIGTERM", stopped_by="SIGINT") as (
            model, checkpoints, stopped, _):
        monkeypatch.setattr(_common, "save_model", save_under_a_sigterm)
        with checkpoints.on_interrupt():
            checkpoints.epoch_finished(model, "epoch 1 of 3")
            raise KeyboardInterrupt     # Ctrl-C during epoch 2
    assert str(stopped.value).startswith(
        f"interrupted: saved the model after epoch 1 of 3 to {tmp_path / CHECKPOINT_FILE} (a "
        "SIGTERM came during the save and waited for the file to be whole); resume with: "
        "dlcore rbm train ")     # and the harness checks the exit code: the Ctrl-C's, 130
    np.testing.assert_array_equal(dlcore.load(tmp_path / CHECKPOINT_FILE).components_,
                                  model.components_)


def test_the_refusal_of_another_commands_file_gives_a_command_that_resumes_it(tmp_path):
    """`dbn finetune` takes its DBN as an argument: the refusal of its checkpoint by another
    command said "resume it with 'dlcore dbn finetune --resume X'", which Click refuses
    (missing argument DBN_FILE). It now gives the DBN the file was trained from, quoted, at
    the end of the line (copy-pasteable)."""
    model = dlcore.BernoulliRBM(n_hidden=2, epochs=1, seed=0).fit(
        np.random.default_rng(0).random((8, 4)))
    pretrained = tmp_path / "my runs" / "dbn.h5"
    model.training_record_ = {"command": "dlcore dbn finetune",
                              "parameters": {"dbn_file": str(pretrained), "epochs": 5}}
    checkpoint = tmp_path / CHECKPOINT_FILE
    dlcore.save(model, checkpoint)
    result = CliRunner().invoke(main, ["rbm", "train", "--resume", str(checkpoint),
                                       "--out", str(tmp_path / "x")])
    assert result.exit_code == 1, result.output
    assert error_lines(result)[0].endswith(
        f"resume it with: dlcore dbn finetune '{pretrained}' --resume {checkpoint}")


def test_resuming_a_finished_model_says_it_trains_nothing_and_a_checkpoint_what_is_left(
        tmp_path):
    # `--resume runs/x/model.h5` trains no epoch: under "training a ... RBM" it said nothing,
    # and went straight to the table, leaving the user to guess whether it had trained
    runner = CliRunner()
    arguments = ["homework", "task1", "--train-digits", "1-2", "--test-digits", "1-2",
                 "--hidden", "4", "--backend", "cpu"]
    first = runner.invoke(main, [*arguments, "--epochs", "1", "--out", str(tmp_path / "a")])
    assert first.exit_code == 0, first.output
    again = runner.invoke(main, ["homework", "task1", "--resume", str(tmp_path / "a" / "model.h5")])
    assert again.exit_code == 0, again.output
    assert "resuming: 1 epoch trained already, none left" in again.stderr
    assert "training: epoch" not in again.output
    more = runner.invoke(main, ["homework", "task1", "--epochs", "3", "--out", str(tmp_path / "b"),
                                "--resume", str(tmp_path / "a" / "model.h5")])
    assert more.exit_code == 0, more.output
    assert "resuming: 1 of 3 epochs trained, training the 2 left" in more.stderr
    assert "training: epoch 2/3" in more.output


@pytest.mark.parametrize("total, finished", [(1, "1 epoch"), (3, "all 3 epochs")])
def test_a_finished_run_s_resume_line_counts_its_epochs_in_english(total, finished):
    # a finished run of one epoch said "resuming: all 1 epoch trained already"
    assert resuming_line(total, total).startswith(f"resuming: {finished} trained already, none "
                                                  "left")


def test_a_resumed_fine_tuning_that_early_stopping_ended_says_that_nothing_is_left():
    line = resuming_line(7, 50, stopped=True)
    assert line.startswith("resuming: 7 of 50 epochs trained, early stopping ended the run")
    assert "none left" in line
    assert "--epochs" not in line   # a larger --epochs would not train on: the stop stays


@pytest.mark.parametrize("second, where", [
    ("SIGINT", "as the line is made"), ("SIGINT", "as the folder is released"),
    ("SIGTERM", "as the folder is released")])
def test_a_second_signal_just_after_the_checkpoint_is_saved_waits_for_the_line(
        tmp_path, monkeypatch, second, where):
    """A double Ctrl-C (or `timeout`'s SIGTERM after a Ctrl-C), the second landing after the
    checkpoint was whole but before the command had said so: it was raised as the line was
    made or the run's --out released, and the command said a bare "dlcore: interrupted",
    naming neither the saved checkpoint nor the command that resumes it. The first
    interruption's line is said, with its exit code."""
    from dlcore.cli import _common
    out = tmp_path / "run"
    sent = []

    def signalling(function):
        def call(*arguments, **options):
            if not sent:
                sent.append(second)
                signal.raise_signal(getattr(signal, second))
            return function(*arguments, **options)
        return call

    if where == "as the line is made":
        monkeypatch.setattr(_common, "resume_command", signalling(_common.resume_command))
    else:
        locking = _common.lock_folder

        def lock_folder(*arguments, **options):
            lock = locking(*arguments, **options)
            lock.release = signalling(lock.release)
            return lock

        monkeypatch.setattr(_common, "lock_folder", lock_folder)
    interrupt_after(monkeypatch, ContrastiveDivergence, "epoch", 2)
    handlers = [signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)]
    interrupted = CliRunner().invoke(main, [*RBM_TRAIN, "--out", str(out)])
    monkeypatch.undo()
    assert sent == [second]
    assert interrupted.exit_code == INTERRUPTED_EXIT_CODE, interrupted.output
    [line] = error_lines(interrupted)
    assert line.startswith(f"dlcore: interrupted: saved the model after epoch 1 of 4 to "
                           f"{out / CHECKPOINT_FILE}"), line
    assert "resume with: dlcore rbm train " in line
    assert dlcore.load(out / CHECKPOINT_FILE).epochs_done_ == 1
    # the handlers the command began with are back (Python's Ctrl-C, the default SIGTERM)
    assert [signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)] == handlers


def test_a_dataset_folder_given_relative_resumes_from_another_folder_and_as_dot_slash(
        tmp_path, monkeypatch, digit_files):
    """`rbm train --dataset idx` interrupted, then resumed: the checkpoint recorded "idx", so a
    resume from another folder (the run's, say) said "unknown data set 'idx'" (or read
    another folder of that name), and `--dataset ./idx` or `idx/` (the shell's completion)
    was refused as differing from "idx". A folder is its absolute path now."""
    shutil.copytree(digit_files, tmp_path / "idx")
    monkeypatch.chdir(tmp_path)
    arguments = ["rbm", "train", "--hidden", "6", "--epochs", "3", "--backend", "cpu"]
    full = CliRunner().invoke(main, [*arguments, "--dataset", "idx", "--out", "full"])
    assert full.exit_code == 0, full.output
    for run, given in enumerate((["--dataset", "./idx"], ["--dataset", "idx/"], [])):
        out = tmp_path / f"part{run}"
        interrupt_after(monkeypatch, ContrastiveDivergence, "epoch", 2)
        interrupted = CliRunner().invoke(main, [*arguments, "--dataset", "idx", "--out",
                                                out.name])
        monkeypatch.undo()
        monkeypatch.chdir(tmp_path)
        assert interrupted.exit_code == INTERRUPTED_EXIT_CODE, interrupted.output
        if not given:    # from the run's own folder
            monkeypatch.chdir(out)
        resumed = CliRunner().invoke(main, ["rbm", "train", *given, "--resume",
                                            str(out / CHECKPOINT_FILE)])
        assert resumed.exit_code == 0, resumed.output
        assert_identical(dlcore.load(tmp_path / "full" / "model.h5"),
                         dlcore.load(out / "model.h5"))
        monkeypatch.chdir(tmp_path)


def test_a_fine_tuning_dataset_folder_given_relative_resumes_from_another_folder(
        tmp_path, monkeypatch, digit_files):
    """`dbn finetune dbn.h5 --dataset idx`, resumed from another folder without --dataset:
    its --dataset (which defaults to the DBN file's data set) was recorded as typed, so the
    resume said "unknown data set 'idx'", as rbm train's did before its folder was recorded
    by its absolute path."""
    shutil.copytree(digit_files, tmp_path / "idx")
    monkeypatch.chdir(tmp_path)
    pretrained = CliRunner().invoke(main, ["dbn", "pretrain", "--layers", "784-12",
                                           "--epochs-per-layer", "1", "--dataset", "idx",
                                           "--backend", "cpu", "--out", "dbn"])
    assert pretrained.exit_code == 0, pretrained.output
    finetune = ["dbn", "finetune", "dbn/dbn.h5", "--batch-size", "128", "--backend", "cpu"]
    first = CliRunner().invoke(main, [*finetune, "--epochs", "1", "--dataset", "idx",
                                      "--out", "ft"])
    assert first.exit_code == 0, first.output
    monkeypatch.chdir(tmp_path / "ft")
    resumed = CliRunner().invoke(main, ["dbn", "finetune", "../dbn/dbn.h5", "--batch-size",
                                        "128", "--backend", "cpu", "--epochs", "2", "--resume",
                                        "model.h5", "--out", "../ft2"])
    assert resumed.exit_code == 0, resumed.output
    assert dlcore.load(tmp_path / "ft2" / "model.h5").epochs_done == 2


def test_a_photograph_given_relative_resumes_from_another_folder_and_as_dot_slash(
        tmp_path, monkeypatch):
    """task2's --train-image, a file given by a relative name, as --dataset's folder: a
    resume from another folder said "cup.png: no such image file" (or read another)."""
    import dlcore.datasets
    bundled = Path(dlcore.datasets.__file__).parent / "images" / "coffee.png"
    shutil.copyfile(bundled, tmp_path / "cup.png")
    monkeypatch.chdir(tmp_path)
    arguments = ["homework", "task2", "--patch", "4", "--hidden", "6", "--epochs", "3",
                 "--max-size", "40", "--backend", "cpu"]
    full = CliRunner().invoke(main, [*arguments, "--train-image", "cup.png", "--out", "full"])
    assert full.exit_code == 0, full.output
    for run, given in enumerate((["--train-image", "./cup.png"], [])):
        out = tmp_path / f"part{run}"
        interrupt_after(monkeypatch, ContrastiveDivergence, "epoch", 2)
        interrupted = CliRunner().invoke(main, [*arguments, "--train-image", "cup.png",
                                                "--out", out.name])
        monkeypatch.undo()
        assert interrupted.exit_code == INTERRUPTED_EXIT_CODE, interrupted.output
        monkeypatch.chdir(tmp_path if given else out)
        resumed = CliRunner().invoke(main, ["homework", "task2", *given, "--resume",
                                            str(out / CHECKPOINT_FILE)])
        assert resumed.exit_code == 0, resumed.output
        assert_identical(dlcore.load(tmp_path / "full" / "model.h5"),
                         dlcore.load(out / "model.h5"))
        monkeypatch.chdir(tmp_path)


def test_a_resumed_run_into_another_runs_out_says_it_replaces_its_outputs(two_epoch_rbm,
                                                                          tmp_path):
    """`rbm train --resume a/model.h5 --out b`, b holding an autoencoder's run: its model.h5
    was replaced without a word (a run without --resume says so), and its
    reconstructions.png stayed beside the RBM's files unnamed. A resume in the folder of its
    file goes on with its own run there, and says nothing of replacing."""
    other = tmp_path / "b"
    trained = CliRunner().invoke(main, [*AE_TRAIN, "--out", str(other)])
    assert trained.exit_code == 0, trained.output
    resumed = CliRunner().invoke(main, [*RBM_TRAIN[:2], "--epochs", "3", "--resume",
                                        str(two_epoch_rbm), "--out", str(other)])
    assert resumed.exit_code == 0, resumed.output
    assert (f"dlcore: replacing the outputs of an earlier run in {other}; "
            "reconstructions.png of another run stays") in error_lines(resumed)
    again = CliRunner().invoke(main, [*RBM_TRAIN[:2], "--epochs", "4", "--resume",
                                      str(two_epoch_rbm)])
    assert again.exit_code == 0, again.output
    assert not any("replacing" in line for line in error_lines(again))
