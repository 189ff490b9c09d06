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
