"""``dlcore ae train`` on tiny settings, and ``dlcore info`` of what it writes. Oracles: the
files promised, the saved model's own behaviour and options, one-line errors with exit 2."""
import pytest
from click.testing import CliRunner

import dlcore
from conftest import assert_wrote
from dlcore.cli import main

AE_TRAIN = ["ae", "train", "--digits", "1-2", "--hidden", "9", "--epochs", "2",
            "--backend", "cpu"]
FILES = ("model.h5", "filters.png", "reconstructions.png", "training_curve.png")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("ae")
    result = CliRunner().invoke(main, [*AE_TRAIN, "--untied", "--corruption-kind",
                                       "salt_and_pepper", "--out", str(out)])
    return result, out


@pytest.mark.slow
def test_ae_train_writes_the_model_and_the_three_pictures(trained):
    result, out = trained
    assert_wrote(result, out, FILES)
    model = dlcore.load(out / "model.h5")
    assert isinstance(model, dlcore.Autoencoder) and model.W.shape == (784, 9)
    assert not model.tied_weights and model.corruption_kind == "salt_and_pepper"
    assert model.epochs_done_ == 2 and len(model.history["valid_loss"]) == 2
    assert model.training_record_["classes"] == [1, 2]
    assert "held-out (clean inputs)" in result.stdout
    epoch_lines = [line for line in result.stderr.splitlines() if "epoch" in line]
    assert len(epoch_lines) == 2 and all(
        line.endswith("per image (training, corrupted inputs)") for line in epoch_lines)


def test_the_last_line_says_the_squared_error_is_the_training_batches(trained):
    # "squared error 0.04038 per pixel" after the held-out loss read as the held-out images'
    result, out = trained
    assert result.exit_code == 0, result.output
    error = dlcore.load(out / "model.h5").history["reconstruction_error"][-1]
    assert (f"held-out (clean inputs); squared error {error:.5f} per pixel (training, "
            f"corrupted inputs), after 2 epochs") in result.stdout


@pytest.mark.slow
def test_info_lists_the_autoencoder_file(trained):
    _, out = trained
    result = CliRunner().invoke(main, ["info", str(out / "model.h5")])
    assert result.exit_code == 0, result.output
    assert "Autoencoder" in result.stdout and "W_decoder" in result.stdout
    assert "velocity_W_decoder" in result.stdout


@pytest.mark.parametrize("arguments, message", [
    # the library's checks, in the options' names (not loss='cross_entropy', ...)
    (["--loss", "cross_entropy", "--decoder-activation", "linear"],
     "--loss cross_entropy needs --decoder-activation sigmoid (its reconstructions must be "
     "probabilities); use --loss mse for a linear decoder"),
    (["--sparsity-target", "0.1", "--activation", "relu"],
     "--sparsity-target needs --activation sigmoid (the KL penalty compares mean activations "
     "in (0, 1)), got --activation relu"),
    # the Python code it quotes stays Python: it read Dense(..., --activation relu, ...)
    (["--sparsity-target", "0.1", "--activation", "relu"],
     "build the autoencoder as a Sequential with Dense(..., activation='relu', "
     "activity_regularizer=L1(...)) as its code layer"),
    (["--sparsity-cost", "0.5"], "--sparsity-cost 0.5 weighs the KL sparsity penalty, which "
                                 "needs a --sparsity-target"),
    (["--corruption", "1.5"], "--corruption must be in"),
    (["--corruption-kind", "blur"], "--corruption-kind"),
    # a kind of corruption without any corruption was taken and ignored
    (["--corruption", "0", "--corruption-kind", "gaussian"],
     "--corruption-kind sets how the inputs are corrupted, and --corruption 0 corrupts none: "
     "give a --corruption above 0, or drop --corruption-kind"),
    (["--digits", "1-12"], "--digits"),
])
def test_bad_options_are_one_line_and_exit_2(arguments, message, tmp_path):
    result = CliRunner().invoke(main, [*AE_TRAIN, *arguments, "--out", str(tmp_path / "x")])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("dlcore: error:") and message in lines[0]
    assert not (tmp_path / "x").exists()


def test_a_run_whose_code_saturated_says_so_in_one_line_and_saves_nothing(tmp_path):
    """--learning-rate 10 saturated every hidden unit and reconstructed worse than the mean
    image, and was saved without a word (the clipped cross-entropy never overflows)."""
    out = tmp_path / "run"
    result = CliRunner().invoke(main, [*AE_TRAIN, "--hidden", "50", "--learning-rate", "10",
                                       "--out", str(out)])
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("dlcore:")
              and "error" in line]
    assert len(errors) == 1, result.stderr
    assert "training diverged in epoch 1: the reconstruction loss" in errors[0]
    assert "no better than the mean image's" in errors[0]
    assert "lower the learning rate (now 10: --learning-rate on the command line)" in errors[0]
    assert not (out / "model.h5").exists()
