"""``dlcore homework samplers`` on a tiny run: every row trained, measured and drawn."""
import csv
import tempfile

import pytest
from click.testing import CliRunner

import dlcore
from conftest import assert_wrote
from dlcore.cli import main
from dlcore.io import atomic
from test_atomic_writes import _full_disk_in

TINY = ["--hidden", "4", "--epochs", "1", "--batch-size", "1000", "--ais-runs", "2",
        "--ais-temperatures", "10", "--sample-steps", "2", "--backend", "reference"]
#: the small settings of the samplers that read them (given without them, they are refused)
FEW_CHAINS, SHORT_LADDERS = ["--chains", "7"], ["--pt-chains", "3", "--temperatures", "3"]


@pytest.mark.slow
def test_homework_samplers_writes_the_table_the_samples_and_the_models(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["homework", "samplers", "--samplers", "cd1,fpcd,pt",
                                       *TINY, *FEW_CHAINS, *SHORT_LADDERS, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert_wrote(result, out, ["samplers.csv", "samples.png", "cd1.h5", "fpcd.h5", "pt.h5"])
    with open(out / "samplers.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["sampler"] for row in rows] == ["CD-1", "FPCD", "PT", "independent pixels"]
    assert all(row["updates"] == "4" for row in rows[:3])
    assert all(-784 * 0.7 < float(row["ais_log_likelihood"]) < 0 for row in rows)
    assert 0 <= float(rows[2]["swap_acceptance"]) <= 1
    assert "temperatures=1/1.22/1.5" in rows[2]["options"]


def test_homework_samplers_names_an_unknown_row():
    result = CliRunner().invoke(main, ["homework", "samplers", "--samplers", "cd1,gibbs"])
    assert result.exit_code == 2 and "cd1, cd10, pcd, fpcd, pt" in result.output


@pytest.mark.parametrize("samplers, options, said", [
    ("cd1,cd10", ["--chains", "50"], "--chains sets the persistent chains of pcd and fpcd, "
     "which --samplers cd1,cd10 does not train: add pcd or fpcd to --samplers, or drop "
     "--chains"),
    ("pcd", ["--chains", "50", "--max-temperature", "3"], "--max-temperature sets the ladders "
     "of pt, which --samplers pcd does not train: add pt to --samplers, or drop "
     "--max-temperature"),
    ("cd1,fpcd", ["--temperatures", "4"], "add pt to --samplers, or drop --temperatures"),
])
def test_homework_samplers_refuses_the_options_of_samplers_it_does_not_train(
        samplers, options, said, tmp_path):
    # --chains without pcd or fpcd, or a ladder without pt, was ignored: a mistyped
    # --samplers looked as if the option had taken effect
    result = CliRunner().invoke(main, ["homework", "samplers", "--samplers", samplers,
                                       *options, "--out", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert said in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_homework_samplers_trains_on_a_seeded_subset_of_train_size(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["homework", "samplers", "--samplers", "cd1", *TINY,
                                       "--train-size", "2500", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "2500 training and 1000 held-out" in result.output
    assert f"wrote samplers.csv, samples.png and 1 model (cd1.h5) to {out}" in result.output
    with open(out / "samplers.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["updates"] == "3"   # ceil(2,500 / 1,000), one epoch


def test_a_rows_training_time_is_printed_as_the_csv_has_it(capsys):
    # a row trained in 0.3 s (samplers.csv's train_seconds) was printed "trained in 0 s"
    from types import SimpleNamespace

    from dlcore.cli.homework_samplers import table_row
    result = SimpleNamespace(mean=-150.0, interval=(-151.0, -149.0), bracket=None)
    row = table_row("cd1", SimpleNamespace(history={}), result, 4, 0.3, {})
    assert "trained in 0.3 s" in capsys.readouterr().out
    assert row["train_seconds"] == "0.3"


def test_homework_samplers_refuses_a_train_size_above_the_training_images():
    result = CliRunner().invoke(main, ["homework", "samplers", "--train-size", "4001"])
    assert result.exit_code == 2
    assert "4001 is more than the 4000 training images of mnist-5k" in result.output


def test_a_trained_rbm_without_room_in_out_is_saved_elsewhere_and_named(tmp_path, monkeypatch):
    """As rbm train does: one line naming cd1.h5 and the fix, and the trained model kept in
    the temporary folder (it was lost)."""
    out, spare = tmp_path / "out", tmp_path / "spare"
    out.mkdir()
    spare.mkdir()
    monkeypatch.setattr(atomic, "_fsync_file", _full_disk_in(out))
    monkeypatch.setattr(tempfile, "tempdir", str(spare))
    result = CliRunner().invoke(main, ["homework", "samplers", "--samplers", "cd1", *TINY,
                                       "--out", str(out)])
    assert result.exit_code == 1
    rescued = next(spare.glob("dlcore-rescued-*/cd1.h5"))
    assert result.stderr.strip().splitlines()[-1] == (
        f"dlcore: error: cannot write {out / 'cd1.h5'}: no space left on device (errno 28); "
        f"free space or choose another --out (the trained model was saved to {rescued} "
        f"instead: move it there)")
    assert dlcore.load(rescued).W.shape == (784, 4)
    assert not list(out.iterdir())


def test_rbm_evaluate_binarize_reproduces_the_samplers_figure(tmp_path):
    """A teacher re-checks a row of samplers.csv with `rbm evaluate --binarize` on its model:
    the same held-out images, binarised the same way, the same AIS (seed, runs, temperatures)
    give the same figure; and --exact agrees with the exact log-likelihood of the held-out
    split of --seed 2 binarised by Philox(2 + 1), computed here."""
    out = tmp_path / "run"
    runner = CliRunner()
    result = runner.invoke(main, ["homework", "samplers", "--samplers", "cd1", *TINY[:-2],
                                  "--backend", "cpu", "--train-size", "200", "--seed", "2",
                                  "--out", str(out)])
    assert result.exit_code == 0, result.output
    with open(out / "samplers.csv", newline="") as handle:
        figure = next(csv.DictReader(handle))["ais_log_likelihood"]
    model = out / "cd1.h5"
    evaluated = runner.invoke(main, ["rbm", "evaluate", str(model), "--binarize", "--ais",
                                     "--runs", "2", "--temperatures", "10", "--reverse-rows",
                                     "0", "--exact", "--backend", "cpu"])
    assert evaluated.exit_code == 0, evaluated.output
    lines = evaluated.stdout.splitlines()
    ais = next(line for line in lines if line.startswith("log-likelihood (AIS):"))
    assert f"{float(ais.split()[2]):.2f}" == figure
    images, labels = dlcore.datasets.load_mnist_5k()
    _, test = dlcore.datasets.holdout_split(labels, 100, seed=2)
    x = dlcore.datasets.binarize(dlcore.datasets.to_unit_interval(images[test]),
                                 mode="stochastic", seed=3)
    exact = next(line for line in lines if "(exact log Z" in line)
    expected = dlcore.load(model).log_likelihood(x, method="exact").mean
    assert float(exact.split(":")[1].split()[0]) == pytest.approx(expected, abs=1e-3)
    assert dlcore.load(model).training_record_["dataset"] == "mnist-5k"


@pytest.mark.parametrize("interrupted_call", [1, 2], ids=["first fit", "second AIS"])
def test_ctrl_c_names_the_saved_models_and_the_command_that_measures_one(
        tmp_path, monkeypatch, interrupted_call):
    """samplers has no --resume: a Ctrl-C says which models are saved and prints the rbm
    evaluate command that gives a saved model's figure, which then is the run's."""
    import shlex

    from dlcore.cli._common import INTERRUPTED_EXIT_CODE
    name = "fit" if interrupted_call == 1 else "log_likelihood"
    original, calls = getattr(dlcore.BernoulliRBM, name), []

    def interrupted(self, *arguments, **options):
        calls.append(1)
        if len(calls) == interrupted_call:
            raise KeyboardInterrupt
        return original(self, *arguments, **options)

    monkeypatch.setattr(dlcore.BernoulliRBM, name, interrupted)
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["homework", "samplers", "--samplers", "cd1,pcd", *TINY,
                                       *FEW_CHAINS, "--out", str(out)])
    monkeypatch.undo()
    assert result.exit_code == INTERRUPTED_EXIT_CODE, result.output
    [message] = [line for line in result.output.splitlines() if line.startswith("dlcore:")]
    if interrupted_call == 1:
        assert message == "dlcore: interrupted before the first model was saved: nothing was saved"
        return
    assert message.startswith(f"dlcore: interrupted: {out / 'cd1.h5'}, {out / 'pcd.h5'} are "
                              "saved and complete, but samplers.csv and samples.png were not "
                              "all written; ")
    printed = next(line for line in result.output.splitlines() if line.strip().startswith(
        "CD-1:")).split()[1]
    words = shlex.split(message.split(" with: ", 1)[1])
    assert words[:4] == ["dlcore", "rbm", "evaluate", str(out / "cd1.h5")]
    evaluated = CliRunner().invoke(main, [*words[1:], "--backend", "reference"])
    assert evaluated.exit_code == 0, evaluated.output
    line = next(line for line in evaluated.output.splitlines()
                if line.startswith("log-likelihood (AIS):"))
    assert f"{float(line.split()[2]):.2f}" == printed
