"""How messages name and count things (dlcore/wording.py): the article by the word's first
sound, the noun's number by the count. Oracle: English, worked by hand."""
import pytest
from click.testing import CliRunner

from dlcore.cli import main
from dlcore.wording import count, duration, with_article


@pytest.mark.parametrize("word, expected", [
    ("Autoencoder", "an Autoencoder"), ("Ensemble", "an Ensemble"), ("DBN", "a DBN"),
    ("RBM", "an RBM"), ("MLP", "an MLP"), ("BernoulliRBM", "a BernoulliRBM"),
    ("Sequential", "a Sequential"), ("StackedAutoencoder", "a StackedAutoencoder"),
    ("network", "a network"), ("image", "an image")])
def test_the_article_follows_the_words_first_sound(word, expected):
    assert with_article(word) == expected


@pytest.mark.parametrize("number, expected", [(0, "0 epochs"), (1, "1 epoch"),
                                              (2, "2 epochs")])
def test_the_noun_is_singular_for_one_only(number, expected):
    assert count(number, "epoch") == expected
    assert count(number, "step", "steps").endswith("step" if number == 1 else "steps")


def test_commands_say_an_autoencoder_and_1_epoch(tmp_path):
    runner = CliRunner()
    trained = runner.invoke(main, ["ae", "train", "--digits", "1", "--hidden", "3",
                                   "--epochs", "1", "--backend", "cpu",
                                   "--out", str(tmp_path / "ae")])
    assert trained.exit_code == 0, trained.output
    assert "after 1 epoch\n" in trained.stdout
    result = runner.invoke(main, ["cnn", "evaluate", str(tmp_path / "ae" / "model.h5"),
                                  "--backend", "cpu"])
    assert result.exit_code == 1, result.output
    assert "holds an Autoencoder, not a network" in result.output


@pytest.mark.parametrize("seconds, expected", [(12.34, "12.3 s"), (0.1, "0.1 s"),
                                               (0.0234, "23 ms"), (0.001, "1 ms"),
                                               (0.0004, "<1 ms")])
def test_a_duration_is_never_shown_as_zero(seconds, expected):
    assert duration(seconds) == expected


def test_an_epoch_under_a_tenth_of_a_second_prints_its_milliseconds():
    from dlcore.callbacks import format_logs
    assert format_logs({"loss": 0.5, "seconds": 0.012}) == "loss 0.5000 - 12 ms"
