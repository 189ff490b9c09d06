"""Training that blows up stops at once with dlcore.TrainingDiverged, and the model keeps the
parameters of its last good epoch (dlcore/errors.py): RBMs, DBN pretraining and up-down,
Sequential networks, and the CLI (one line, exit 1, no file with NaN)."""
import numpy as np
import pytest
from click.testing import CliRunner

import dlcore
from dlcore.cli import main
from dlcore.errors import DIVERGENCE_FACTOR, DivergenceCheck, TrainingDiverged, decay_diverges


@pytest.fixture(scope="module")
def digits():
    """300 mnist-5k digits of all classes, in [0, 1], with their labels."""
    images, labels = dlcore.datasets.load_mnist_5k()
    rows = np.random.default_rng(0).permutation(len(images))[:300]
    return dlcore.datasets.to_unit_interval(images)[rows], labels[rows].astype(np.int64)


def rbm_arrays(rbm):
    return [np.array(a) for a in (rbm.W, rbm.visible_bias, rbm.hidden_bias)]


def assert_same_arrays(before, after):
    assert len(before) == len(after)
    for old, new in zip(before, after):
        assert np.isfinite(new).all()
        assert np.array_equal(old, new)


def test_training_diverged_is_a_floating_point_error_exported_by_dlcore():
    assert dlcore.TrainingDiverged is TrainingDiverged
    assert issubclass(TrainingDiverged, FloatingPointError)


@pytest.mark.parametrize("values, message", [
    ((0.5, 0.4, float("nan")), "the loss is nan"),
    ((0.5, 0.4, float("inf")), "the loss is inf"),
    ((0.5, 0.4, 0.4 * DIVERGENCE_FACTOR * 1.01), "over 1000 times its best"),
])
def test_the_check_names_epoch_quantity_and_fix(values, message):
    check = DivergenceCheck("loss", 0.5)
    check.check(1, values[0])
    check.check(2, values[1])
    with pytest.raises(TrainingDiverged, match=message) as caught:
        check.check(3, values[2])
    text = str(caught.value)
    assert "epoch 3" in text and "parameters of epoch 2" in text
    assert "lower the learning rate (now 0.5: the learning_rate= argument)" in text
    assert caught.value.epoch == 3 and caught.value.quantity == "loss"


def test_growth_below_the_factor_and_finite_parameters_pass():
    check = DivergenceCheck("loss", 0.1, history=[0.2])
    check.check(2, 0.2 * DIVERGENCE_FACTOR * 0.99, [np.ones(3)])
    with pytest.raises(TrainingDiverged, match="parameters hold NaN"):
        check.check(3, 0.3, [np.array([1.0, np.nan])])


@pytest.mark.parametrize("model_class, learning_rate", [
    (dlcore.BernoulliRBM, 1e20), (dlcore.GaussianBernoulliRBM, 1e4)])
def test_rbm_with_a_huge_learning_rate_keeps_its_last_good_epoch(digits, model_class,
                                                                 learning_rate):
    X = digits[0]
    if model_class is dlcore.GaussianBernoulliRBM:
        X = (X - X.mean(axis=0)) / (X.std(axis=0) + 0.1)
    rbm = model_class(n_hidden=8, epochs=2, batch_size=50, backend="cpu").fit(X)
    good, history = rbm_arrays(rbm), {k: list(v) for k, v in rbm.history.items()}
    rbm.set_params(learning_rate=learning_rate)
    with pytest.raises(TrainingDiverged, match="in epoch 3: .*reconstruction error"):
        rbm.partial_fit(X)
    assert_same_arrays(good, rbm_arrays(rbm))
    assert rbm.epochs_done_ == 2 and rbm.history == history


def test_rbm_diverging_in_its_first_epoch_keeps_its_initial_parameters(digits):
    rbm = dlcore.BernoulliRBM(n_hidden=8, epochs=3, batch_size=50, learning_rate=1e20,
                              backend="cpu")
    with pytest.raises(TrainingDiverged, match="keeps its initial parameters"):
        rbm.fit(digits[0])
    initial = dlcore.BernoulliRBM(n_hidden=8, epochs=0, batch_size=50, backend="cpu")
    assert_same_arrays(rbm_arrays(initial.fit(digits[0])), rbm_arrays(rbm))
    assert rbm.epochs_done_ == 0 and rbm.n_updates_ == 0
    assert rbm.history["reconstruction_error"] == []


def test_dbn_pretraining_names_the_layer_that_diverged(digits):
    dbn = dlcore.DBN(layers=[784, 16, 8], epochs=2, batch_size=50, backend="cpu",
                     rbm=[{}, {"learning_rate": 1e20}])
    with pytest.raises(TrainingDiverged, match="RBM 2 of the DBN: training diverged in "
                                               "epoch 1"):
        dbn.fit(digits[0])
    first, second = dbn.rbms_
    assert first.epochs_done_ == 2 and np.isfinite(first.W).all()
    assert second.epochs_done_ == 0
    fresh = dlcore.DBN(layers=[784, 16, 8], epochs=[2, 0], batch_size=50,
                       backend="cpu").fit(digits[0])
    assert_same_arrays(rbm_arrays(fresh.rbms_[0]), rbm_arrays(first))
    assert_same_arrays(rbm_arrays(fresh.rbms_[1]), rbm_arrays(second))


def test_dbn_up_down_that_turns_nan_mid_epoch_keeps_the_last_good_epoch(digits, monkeypatch):
    from dlcore.dbn.updown import UpDown
    X, y = digits
    dbn = dlcore.DBN(layers=[784, 16, 8], epochs=1, batch_size=50, n_labels=10,
                     up_down_batch_size=50, backend="cpu").fit(X, y)
    dbn.up_down(X, y, epochs=1)
    good = [np.array(a) for rbm in dbn.rbms_ for a in rbm_arrays(rbm)]
    good += [np.array(a) for pair in dbn.generative_ for a in pair]
    original_step = UpDown.step

    def poisoned_step(self, x, labels, update):
        original_step(self, x, labels, update)
        self.backend.to_numpy(self.generative[0][0])[0, 0] = np.nan

    monkeypatch.setattr(UpDown, "step", poisoned_step)
    with pytest.raises(TrainingDiverged, match="up-down fine-tuning of the DBN: training "
                                               "diverged in epoch 2"):
        dbn.up_down(X, y, epochs=2)
    after = [a for rbm in dbn.rbms_ for a in rbm_arrays(rbm)]
    after += [a for pair in dbn.generative_ for a in pair]
    assert_same_arrays(good, after)
    assert dbn.up_down_epochs_done_ == 1
    assert len(dbn.history["up_down_reconstruction_error"]) == 1


def test_network_with_a_huge_learning_rate_keeps_its_last_good_epoch(digits):
    X, y = digits
    network = dlcore.models.mlp((784,), n_classes=10, backend="cpu", seed=1)
    network.compile("cross_entropy", "sgd", ["accuracy"])
    network.fit(X, y, epochs=2, batch_size=32, verbose=0)
    good = network.get_weights()
    history = {k: list(v) for k, v in network.history.items()}
    network.compile("cross_entropy", dlcore.optimizers.SGD(1e5), ["accuracy"])
    with pytest.raises(TrainingDiverged, match="in epoch 3: the loss"):
        network.fit(X, y, epochs=3, batch_size=32, verbose=0)
    assert_same_arrays(good, network.get_weights())
    assert network.epochs_done == 2 and network.history == history


def test_a_network_that_blows_up_in_its_first_epoch_stops_against_its_first_batch(digits):
    # SGD at lr 1e4 took a network's loss from 2.3 to 4.4e14 in epoch 1, then to 2.6e12:
    # with no earlier epoch, no epoch grew past 1000 times its best, and fit ended as if
    # trained (here lr 10: 8e10 in epoch 1, where a larger rate turns it to NaN)
    X, y = digits
    network = dlcore.models.mlp((784,), n_classes=10, backend="cpu", seed=1)
    network.compile("cross_entropy", dlcore.optimizers.SGD(10.0), ["accuracy"])
    initial = network.get_weights()
    with pytest.raises(TrainingDiverged, match=r"in epoch 1: the loss grew to .*, over 1000 "
                                               r"times the first batch's \(2\.\d+, before any "
                                               r"update\); the model keeps its initial"):
        network.fit(X, y, epochs=2, batch_size=32, verbose=0)
    assert_same_arrays(initial, network.get_weights())
    # a first epoch that ends above its first batch's loss (lr 1: 6.0 against 2.4) but within
    # the factor trains on (lr 2, 4692 then 10935, then a dead net at chance, is refused)
    sane = dlcore.models.mlp((784,), n_classes=10, backend="cpu", seed=1)
    sane.compile("cross_entropy", dlcore.optimizers.SGD(1.0), ["accuracy"])
    sane.fit(X, y, epochs=1, batch_size=32, verbose=0)
    assert sane.epochs_done == 1 and sane.history["loss"][0] > 2.5


@pytest.mark.parametrize("first_weight", [1e-4, 0.0])
def test_a_first_batch_of_light_weights_stops_no_sane_first_epoch(digits, first_weight):
    # the weighted loss sums weight x loss over the batch's rows: a first batch of rows
    # weighed 1e-4 (or 0: a small L2 penalty alone) gave a baseline 1e4 times too small, and a
    # sane first epoch (2.0, near chance) stopped as grown "over 1000 times the first
    # batch's (0.0002342, before any update)"
    X, y = digits
    light = y < 2   # the rows of classes 0 and 1, first: the first batch holds only them
    order = np.argsort(~light, kind="stable")
    X, y, light = X[order], y[order], light[order]
    for options in ({"sample_weight": np.where(light, first_weight, 1.0)},
                    {"class_weight": {0: first_weight, 1: first_weight}}):
        network = dlcore.models.mlp((784,), n_classes=10, backend="cpu", seed=1,
                                    kernel_regularizer=dlcore.regularizers.l2(1e-7))
        network.compile("cross_entropy", dlcore.optimizers.SGD(0.1), ["accuracy"])
        network.fit(X, y, epochs=1, batch_size=32, shuffle=False, verbose=0, **options)
        assert network.epochs_done == 1 and 0.1 < network.history["loss"][0] < 3


def test_the_first_batch_is_a_baseline_for_a_first_epoch_only_and_when_positive():
    check = DivergenceCheck("loss", 0.5)
    check.starts_at(-3.0)   # a loss of no fixed sign: no scale
    check.check(1, 50.0)
    resumed = DivergenceCheck("loss", 0.5, history=[0.2])
    resumed.starts_at(1e-9)   # an epoch behind it: its best is the measure
    resumed.check(2, 150.0)
    # near zero (trained weights without their history, one row a batch): measured from
    # FIRST_BATCH_FLOOR, not from 1e-9
    for value, diverged in ((0.5, False), (999.0, False), (1001.0, True)):
        fresh = DivergenceCheck("loss", 0.5)
        fresh.starts_at(1e-9)
        if diverged:
            with pytest.raises(TrainingDiverged, match="over 1000 times the first batch's"):
                fresh.check(1, value)
        else:
            fresh.check(1, value)


def test_cli_divergence_is_one_line_exit_1_and_no_file(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["rbm", "train", "--digits", "1-2", "--hidden", "8",
                                       "--epochs", "2", "--learning-rate", "1e20",
                                       "--backend", "cpu", "--out", str(out)])
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("dlcore:")]
    assert len(errors) == 1
    assert "training diverged in epoch 1" in errors[0]
    assert "reconstruction error" in errors[0] and "--learning-rate" in errors[0]
    assert not out.exists()     # nothing written, and the empty folder is gone


def test_growth_is_measured_from_a_floor_not_from_a_loss_near_zero():
    check = DivergenceCheck("loss", 0.1, history=[1e-7])
    check.check(2, 1e-4)                  # a thousandfold on 1e-7: rounding, not divergence
    with pytest.raises(TrainingDiverged, match="grew to"):
        check.check(3, 1.01 * DIVERGENCE_FACTOR * 1e-3)


def test_the_advice_names_the_callers_option_or_the_models_parameter():
    check = DivergenceCheck("generative reconstruction error", 0.01, history=[0.1],
                            setting="up_down_learning_rate", option=None)
    with pytest.raises(TrainingDiverged) as caught:
        check.check(2, float("nan"))
    assert "--learning-rate" not in str(caught.value)
    assert "the up_down_learning_rate= argument" in str(caught.value)
    assert caught.value.setting == "up_down_learning_rate"


@pytest.mark.parametrize("make", [
    lambda: dlcore.BernoulliRBM(n_hidden=8, epochs=2, batch_size=50, learning_rate=1e20,
                                backend="cpu"),
    lambda: dlcore.Autoencoder(n_hidden=8, epochs=2, batch_size=50, learning_rate=1e3,
                               loss="mse", decoder_activation="linear", backend="cpu")])
def test_python_fit_names_the_python_argument_not_a_command_line_option(digits, make):
    # the same estimators trained by `dlcore rbm train` name --learning-rate (tests below)
    with pytest.raises(TrainingDiverged) as caught:
        make().fit(digits[0])
    text = str(caught.value)
    assert "the learning_rate= argument) and train again" in text
    assert "command line" not in text and "--learning-rate" not in text


def tiny_rows():
    return (np.random.default_rng(0).random((40, 6)) > 0.5).astype(np.float32)


def test_an_rbm_diverging_through_its_weight_decay_is_told_to_lower_the_decay():
    """learning_rate 0.1 with weight_decay 1e6 takes 1e5 W off W each update (momentum 0.5:
    unstable from 3 on): the line said "lower the learning rate (now 0.1...)", a rate that is
    fine; it names the weight decay, and what the product is to stay below."""
    rbm = dlcore.BernoulliRBM(n_hidden=4, weight_decay=1e6, epochs=3, batch_size=10, seed=0,
                              backend="reference")
    with pytest.warns(RuntimeWarning), pytest.raises(TrainingDiverged) as caught:
        rbm.fit(tiny_rows())
    text = str(caught.value)
    assert "\n" not in text and "the weight decay diverges by itself" in text
    assert "0.1 x 1e+06 = 100000 is not below 2 (1 + momentum 0.5) = 3" in text
    assert "lower the weight decay (now 1e+06: the weight_decay= argument)" in text
    assert caught.value.decay["setting"] == "weight_decay"


def test_a_network_diverging_through_its_decoupled_weight_decay_names_the_optimizers():
    network = dlcore.Sequential([dlcore.layers.Dense(3, activation="softmax")], input_shape=(6,),
                                backend="reference", seed=0)
    network.compile("cross_entropy", dlcore.optimizers.AdamW(0.1, weight_decay=1e6))
    with pytest.raises(TrainingDiverged) as caught:
        network.fit(tiny_rows(), np.arange(40) % 3, epochs=3, verbose=0)
    text = str(caught.value)
    assert "= 100000 is not below 2, so each update" in text
    assert "lower the weight decay (now 1e+06: the optimizer's weight_decay= argument)" in text


@pytest.mark.parametrize("learning_rate, weight_decay, momentum, blamed", [
    (0.1, 1e6, 0.5, True), (1.0, 2.0, 0.0, True), (1.0, 1.99, 0.0, False),
    (1.0, 5.0, 0.9, True), (1.0, 3.7, 0.9, False),
    (1e20, 2e-4, 0.5, False),    # the learning rate is off: a usual decay diverges there too
    (0.1, None, 0.0, False)])
def test_the_decay_is_blamed_where_it_diverges_by_itself(learning_rate, weight_decay,
                                                         momentum, blamed):
    decay = decay_diverges(learning_rate, weight_decay, momentum)
    check = DivergenceCheck("loss", learning_rate, history=[0.1], decay=decay)
    with pytest.raises(TrainingDiverged) as caught:
        check.check(2, float("nan"))
    assert ("lower the weight decay" in str(caught.value)) == blamed
    assert ("lower the learning rate" in str(caught.value)) != blamed


def test_the_cli_names_weight_decay_where_the_decay_diverges(tmp_path):
    result = CliRunner().invoke(main, ["rbm", "train", "--digits", "1-2", "--hidden", "8",
                                       "--epochs", "2", "--weight-decay", "1e6",
                                       "--backend", "reference", "--out", str(tmp_path / "r")])
    line = one_error_line(result)
    assert "lower the weight decay (now 1e+06: --weight-decay on the command line)" in line
    assert "--learning-rate on the command line" in line


def diverging_at(monkeypatch, cls, call):
    """``cls.epoch`` reports a NaN error from its ``call``-th call on."""
    original, calls = cls.epoch, {"n": 0}

    def epoch(self, *arguments, **options):
        updates, error = original(self, *arguments, **options)
        calls["n"] += 1
        return updates, (float("nan") if calls["n"] >= call else error)

    monkeypatch.setattr(cls, "epoch", epoch)


def one_error_line(result):
    errors = [line for line in result.output.splitlines() if line.startswith("dlcore:")]
    assert result.exit_code == 1, result.output
    assert len(errors) == 1
    return errors[0]


def test_cli_up_down_divergence_does_not_blame_the_cd_learning_rate(tmp_path, monkeypatch):
    from dlcore.dbn.updown import UpDown
    diverging_at(monkeypatch, UpDown, 1)
    result = CliRunner().invoke(main, ["dbn", "pretrain", "--layers", "784-16-10",
                                       "--epochs-per-layer", "1", "--up-down-epochs", "1",
                                       "--backend", "cpu", "--out", str(tmp_path / "run")])
    line = one_error_line(result)
    assert "training diverged in epoch 1: the generative reconstruction error is nan" in line
    assert "--learning-rate" not in line     # that option sets the CD rate, not up-down's
    assert "nothing was saved" in line and "the model keeps" not in line


def test_cli_homework_pretraining_rbm_divergence_does_not_blame_the_fine_tuning_rate(
        tmp_path, monkeypatch):
    from dlcore.rbm.trainer import ContrastiveDivergence
    diverging_at(monkeypatch, ContrastiveDivergence, 1)
    result = CliRunner().invoke(main, ["homework", "pretraining", "--layers", "784-16-10",
                                       "--epochs-per-layer", "1", "--epochs", "1",
                                       "--backend", "cpu", "--out", str(tmp_path / "run")])
    line = one_error_line(result)
    assert "RBM 1 of the DBN: training diverged in epoch 1" in line
    assert "--learning-rate" not in line and "nothing was saved" in line


def test_cli_divergence_names_the_checkpoint_this_run_wrote(tmp_path, monkeypatch):
    from dlcore.rbm.trainer import ContrastiveDivergence
    diverging_at(monkeypatch, ContrastiveDivergence, 2)
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["rbm", "train", "--digits", "1-2", "--hidden", "8",
                                       "--epochs", "3", "--checkpoint-every", "1",
                                       "--backend", "cpu", "--out", str(out)])
    line = one_error_line(result)
    assert "training diverged in epoch 2" in line
    assert (f"nothing was saved but the checkpoint after epoch 1 of 3 in "
            f"{out / 'checkpoint.h5'}") in line
    assert "--learning-rate on the command line" in line
    assert dlcore.load(out / "checkpoint.h5").epochs_done_ == 1
    assert not (out / "model.h5").exists()
