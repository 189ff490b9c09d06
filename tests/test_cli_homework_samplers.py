"""``dlcore homework samplers`` on a tiny run: every row trained, measured and drawn."""
import csv

import pytest
from click.testing import CliRunner

from conftest import assert_wrote
from dlcore.cli import main

TINY = ["--hidden", "4", "--epochs", "1", "--batch-size", "1000", "--ais-runs", "2",
        "--ais-temperatures", "10", "--sample-steps", "2", "--chains", "7", "--pt-chains", "3",
        "--temperatures", "3", "--backend", "reference"]


@pytest.mark.slow
def test_homework_samplers_writes_the_table_the_samples_and_the_models(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["homework", "samplers", "--samplers", "cd1,fpcd,pt",
                                       *TINY, "--out", str(out)])
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


def test_homework_samplers_trains_on_a_seeded_subset_of_train_size(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["homework", "samplers", "--samplers", "cd1", *TINY,
                                       "--train-size", "2500", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "2500 training and 1000 held-out" in result.output
    with open(out / "samplers.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["updates"] == "3"   # ceil(2,500 / 1,000), one epoch


def test_homework_samplers_refuses_a_train_size_above_the_training_images():
    result = CliRunner().invoke(main, ["homework", "samplers", "--train-size", "4001"])
    assert result.exit_code == 2
    assert "4001 is more than the 4000 training images of mnist-5k" in result.output
