"""``dlcore sweep`` (cli/sweep.py): a grid of CLI trainings, one CSV row per run, and the seam
the training commands hand their final figures through (cli._common.publish_metrics).

The oracle of a row's figures is the model file its run wrote (the history saved in it); the
oracle of the distributed sweep is the same sweep in one process."""
import csv
import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import dlcore
from dlcore.cli import main
from dlcore.cli._common import RunMetrics, publish_metrics
from test_distributed import mpiexec, requires_mpi4py

RBM_TRAIN = ["rbm", "train", "--hidden", "4", "--epochs", "1", "--batch-size", "50"]
#: A training command that takes about a second: 1 epoch of 4 hidden units on one digit.
TINY_RBM = [*RBM_TRAIN, "--backend", "reference", "--digits", "0"]


def sweep(*arguments):
    return CliRunner().invoke(main, ["sweep", *map(str, arguments)])


def read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def rbm_sweep(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep")
    result = sweep("--grid", "seed=0,1", "--grid", "learning-rate=0.1,0.05", "--out",
                   folder / "sweep.csv", "--", *TINY_RBM, "--out", folder / "rbm")
    return result, folder


def test_a_sweep_runs_the_grid_first_option_outermost_one_row_per_run(rbm_sweep):
    result, folder = rbm_sweep
    assert result.exit_code == 0, result.output
    rows = read_rows(folder / "sweep.csv")
    assert [(row["run"], row["seed"], row["learning-rate"]) for row in rows] == [
        ("0", "0", "0.1"), ("1", "0", "0.05"), ("2", "1", "0.1"), ("3", "1", "0.05")]
    assert [(row["status"], row["error"], row["rank"]) for row in rows] == [("ok", "", "0")] * 4
    assert all(float(row["seconds"]) > 0 for row in rows)
    assert rows[3]["command"] == " ".join(
        ["dlcore", *TINY_RBM, "--seed", "1", "--learning-rate", "0.05", "--out",
         str(folder / "rbm" / "run-3")])
    assert "4 runs, all ok; wrote" in result.stdout


def test_each_row_holds_the_final_figures_of_the_model_its_run_wrote(rbm_sweep):
    _, folder = rbm_sweep
    rows = read_rows(folder / "sweep.csv")
    assert list(rows[0])[:7] == ["run", "seed", "learning-rate", "status", "error",
                                 "reconstruction_error", "free_energy_gap"]
    for row in rows:
        model = dlcore.load(folder / "rbm" / f"run-{row['run']}" / "model.h5")
        assert (model.seed, model.learning_rate) == (int(row["seed"]),
                                                     float(row["learning-rate"]))
        assert float(row["reconstruction_error"]) == model.history["reconstruction_error"][-1]
        assert float(row["free_energy_gap"]) == model.history["free_energy_gap"][-1]
        assert model.training_record_["command_line"] == row["command"]
    assert len({row["reconstruction_error"] for row in rows}) == 4   # four different trainings


def test_each_run_writes_its_own_folder_with_what_it_printed(rbm_sweep):
    _, folder = rbm_sweep
    assert sorted(path.name for path in (folder / "rbm").iterdir()) == [
        "run-0", "run-1", "run-2", "run-3"]
    printed = (folder / "rbm" / "run-2" / "output.txt").read_text()
    assert "reconstruction error" in printed and "run-2" in printed


def test_a_failing_run_is_a_row_with_its_error_and_the_other_runs_go_on(tmp_path):
    result = sweep("--grid", "digits=0,7-3", "--grid", "seed=0,1", "--out",
                   tmp_path / "sweep.csv", "--", *RBM_TRAIN, "--backend", "reference",
                   "--out", tmp_path / "rbm")
    assert result.exit_code == 1, result.output
    rows = read_rows(tmp_path / "sweep.csv")
    assert [(row["digits"], row["seed"], row["status"]) for row in rows] == [
        ("0", "0", "ok"), ("0", "1", "ok"), ("7-3", "0", "error"), ("7-3", "1", "error")]
    assert "--digits" in rows[2]["error"] and "\n" not in rows[2]["error"]
    assert rows[2]["reconstruction_error"] == "" and float(rows[1]["reconstruction_error"]) > 0
    assert "4 runs, 2 failed: see the error column" in result.stdout


def test_ctrl_c_stops_the_sweep_and_writes_the_rows_of_the_finished_runs(
        tmp_path, monkeypatch):
    calls = []

    def interrupted_in_the_second_run(model, path):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr("dlcore.cli.rbm.save_filters", interrupted_in_the_second_run)
    result = sweep("--grid", "seed=0,1,2", "--out", tmp_path / "sweep.csv", "--", *TINY_RBM,
                   "--out", tmp_path / "rbm")
    assert result.exit_code == 130, result.output
    # the run's own line says that its model.h5 was saved before the interruption
    assert "sweep interrupted in run 1 (interrupted after train" in result.output
    assert f"; wrote the 1 finished run to {tmp_path / 'sweep.csv'}" in result.output
    assert [(row["run"], row["status"]) for row in read_rows(tmp_path / "sweep.csv")] == [
        ("0", "ok")]
    assert len(calls) == 2      # run 2 never started
    # what the stopped run printed, and where it saved, is kept in its folder (it was lost)
    stopped_output = (tmp_path / "rbm" / "run-1" / "output.txt").read_text()
    assert "epoch 1/1" in stopped_output.lower() and "interrupted after train" in stopped_output
    # it said nothing of how to finish the sweep, and a second sweep redid every run
    resume = (f"dlcore sweep --grid seed=0,1,2 --out {tmp_path / 'sweep.csv'} --resume -- "
              f"{' '.join(TINY_RBM)} --out {tmp_path / 'rbm'}")
    assert result.output.strip().endswith(
        f"(runs 1 and 2 missing); run the missing ones with: {resume}"), result.output
    first = read_rows(tmp_path / "sweep.csv")[0]
    trained = []
    fit = dlcore.BernoulliRBM.fit
    monkeypatch.setattr(dlcore.BernoulliRBM, "fit",
                        lambda self, *args, **kwargs: trained.append(self.seed) or fit(
                            self, *args, **kwargs))
    resumed = sweep(*resume.split()[2:])
    assert resumed.exit_code == 0, resumed.output
    assert len(calls) == 4      # runs 1 and 2 only
    # run 1's model.h5 was saved whole before the interruption: its row is written from it,
    # it is not trained again (it was: an interrupted sweep of long runs redid them)
    assert trained == [2], resumed.output
    rows = read_rows(tmp_path / "sweep.csv")
    assert [(row["run"], row["status"]) for row in rows] == [("0", "ok"), ("1", "ok"),
                                                             ("2", "ok")]
    assert rows[0] == first
    for row in rows:    # the row of the run its model file was trained by, command and all
        model = dlcore.load(tmp_path / "rbm" / f"run-{row['run']}" / "model.h5")
        assert float(row["reconstruction_error"]) == model.history["reconstruction_error"][-1]
        assert row["command"] == " ".join(["dlcore", *TINY_RBM, "--seed", row["run"], "--out",
                                           str(tmp_path / "rbm" / f"run-{row['run']}")])


def test_a_sweep_interrupted_in_its_first_run_says_how_to_resume_the_sweep(
        monkeypatch, tmp_path):
    # its line was the run's own, "resume with: dlcore rbm train ... --resume
    # run-0/checkpoint.h5", which trains that run alone, and no CSV for --resume to go on from
    from dlcore.cli import sweep as sweep_module
    from dlcore.cli._common import TrainingInterrupted

    def interrupted_run(self, index, rank=0, resume=False, comm=None):
        raise TrainingInterrupted("interrupted: saved the model after epoch 3 of 9 to "
                                  "run-0/checkpoint.h5; resume with: dlcore rbm train ...")

    monkeypatch.setattr(sweep_module.Sweep, "run", interrupted_run)
    arguments = ["--grid", "seed=0,1", "--out", tmp_path / "sweep.csv", "--", *TINY_RBM,
                 "--out", tmp_path / "rbm"]
    result = sweep(*arguments)
    assert result.exit_code == 130, result.output
    said = result.output.strip().splitlines()[-1]
    # the run's own resume line is left out: the sweep's alone, one command to copy
    assert said.startswith("dlcore: sweep interrupted in run 0 (interrupted: saved the model "
                           "after epoch 3 of 9 to run-0/checkpoint.h5); wrote "), said
    assert said.endswith("wrote no finished run (none had finished: its header) to "
                         f"{tmp_path / 'sweep.csv'} (runs 0 and 1 missing); run the missing "
                         "ones with: dlcore sweep "
                         f"--grid seed=0,1 --out {tmp_path / 'sweep.csv'} --resume -- "
                         f"{' '.join(TINY_RBM)} --out {tmp_path / 'rbm'}"), said
    assert read_rows(tmp_path / "sweep.csv") == []
    resumed = sweep("--resume", "--dry-run", *arguments)   # the CSV it names is there
    assert resumed.exit_code == 0, resumed.output
    assert [line.split(":")[0] for line in resumed.output.splitlines()] == ["run 0", "run 1"]


def test_a_resumed_run_s_output_goes_on_after_what_it_printed_before_the_interruption(
        tmp_path):
    stopped = tmp_path / "rbm" / "run-0"
    stopped.mkdir(parents=True)
    (stopped / "checkpoint.h5").write_bytes(b"")            # its checkpoint: here, damaged
    (stopped / "output.txt").write_text("epoch 1 of the stopped run\n")
    (tmp_path / "sweep.csv").write_text("run,seed,status,command\n")
    resumed = sweep("--grid", "seed=0", "--out", tmp_path / "sweep.csv", "--resume", "--",
                    *TINY_RBM, "--out", tmp_path / "rbm")
    assert "checkpoint.h5" in read_rows(tmp_path / "sweep.csv")[0]["error"], resumed.output
    printed = (stopped / "output.txt").read_text()
    assert printed.startswith("epoch 1 of the stopped run\n")   # it was overwritten


def test_resume_refuses_a_csv_of_another_sweep_in_one_line(tmp_path):
    with open(tmp_path / "sweep.csv", "w") as handle:
        handle.write("run,seed,status,command\n0,0,ok,dlcore rbm train --seed 0\n")
    result = sweep("--grid", "seed=0,1", "--out", tmp_path / "sweep.csv", "--resume", "--",
                   *TINY_RBM, "--out", tmp_path / "rbm")
    assert result.exit_code == 2
    assert result.output.startswith(f"dlcore: error: --resume: {tmp_path / 'sweep.csv'} holds "
                                    "a run of another sweep (run 0: dlcore rbm train --seed 0)")
    missing = sweep("--grid", "seed=0,1", "--out", tmp_path / "none.csv", "--resume", "--",
                    *TINY_RBM)
    assert missing.exit_code == 2 and "none.csv does not exist" in missing.output
    assert not (tmp_path / "rbm").exists()


@pytest.mark.parametrize("edit, said", [
    # saved by a spreadsheet (Excel's "CSV UTF-8" begins with a byte-order mark): it was
    # refused as another sweep's, "run ?", though its runs were this sweep's
    (lambda lines: ["\ufeff" + lines[0], lines[1]], None),
    # a value too many: written back under a column without a name, as "['0.5']"
    (lambda lines: [lines[0], lines[1] + ",0.5", lines[2]],
     "row 2 of {csv} has 9 values for 8 columns; mend it or delete it"),
    # a value too few: "holds a run of another sweep (run 0: no command)"
    (lambda lines: [lines[0], lines[1].rsplit(",", 2)[0]],
     "row 2 of {csv} has 6 values for 8 columns"),
    (lambda lines: [line.replace(",", ";") for line in lines],
     "{csv} is not the CSV of a sweep: its first line names the columns "
     "'run;seed;status;error;loss;seconds;rank;command', with no 'run' or 'command'"),
    # a run number that str.isdigit passes but int() does not take: a ValueError traceback
    (lambda lines: [lines[0], "\u00b2" + lines[1][1:]],
     "{csv} holds a run of another sweep (run \u00b2: dlcore rbm train"),
    (lambda lines: [lines[0], "9" * 5000 + lines[1][1:]],
     "{csv} holds a run of another sweep (run 99999999999999999999...: dlcore rbm train"),
], ids=["spreadsheet-byte-order-mark", "a-value-too-many", "a-value-too-few",
        "another-separator", "a-superscript-run", "a-run-of-5000-digits"])
def test_resume_reads_an_edited_csv_or_names_what_is_wrong_with_it(edit, said, monkeypatch,
                                                                   tmp_path):
    from dlcore.cli import sweep as sweep_module

    def finished_run(self, index, rank=0, resume=False, comm=None):
        return {"run": index, "seed": str(index), "status": "ok", "error": "", "loss": 0.5,
                "seconds": 1.0, "rank": rank, "command": self.command_line(index)}

    monkeypatch.setattr(sweep_module.Sweep, "run", finished_run)
    arguments = ["--grid", "seed=0,1", "--out", tmp_path / "sweep.csv", "--", *TINY_RBM,
                 "--out", tmp_path / "rbm"]
    assert sweep(*arguments).exit_code == 0
    written = (tmp_path / "sweep.csv").read_text()
    edited = "\n".join(edit(written.splitlines())) + "\n"
    (tmp_path / "sweep.csv").write_text(edited, encoding="utf-8")
    resumed = sweep("--resume", *arguments)
    if said is None:
        assert resumed.exit_code == 0, resumed.output
        assert "(1 finished before, kept)" in resumed.output
        assert (tmp_path / "sweep.csv").read_text() == written
    else:
        assert resumed.exit_code == 2
        assert resumed.output.startswith("dlcore: error: --resume: " + said.format(
            csv=tmp_path / "sweep.csv")), resumed.output
        assert (tmp_path / "sweep.csv").read_text(encoding="utf-8") == edited


@pytest.mark.parametrize("grid, message", [
    (["seed"], "'seed': give NAME=V1,V2,..."),
    (["seed="], "'seed=': a value is empty"),
    (["seed=0,,1"], "'seed=0,,1': a value is empty"),
    (["colour=red"], "dlcore rbm train has no option --colour (see 'dlcore rbm train --help')"),
    # a misspelling, as Click's "Did you mean" for the command line's own options
    (["epoch=1,2"], "dlcore rbm train has no option --epoch (did you mean --epochs?) (see "),
    (["learning_rat=0.1"], "has no option --learning_rat (did you mean --learning-rate?)"),
    (["out=a,b"], "the sweep gives each run its own --out"),
    (["seed=0", "seed=1"], "--seed is in the grid twice"),
    (["persistent=maybe"], "--persistent is a flag: its values are true or false"),
    (["learning-rate=0.1,fast"], "run 1 (learning-rate=fast): Invalid value for "
                                 "'--learning-rate'"),
    (["backend=numpy"], "run 0 (backend=numpy): Invalid value for '--backend'"),
])
def test_a_bad_grid_is_one_line_exit_2_before_any_run(grid, message, tmp_path):
    specs = [word for spec in grid for word in ("--grid", spec)]
    result = sweep(*specs, "--out", tmp_path / "sweep.csv", "--", *RBM_TRAIN, "--out",
                   tmp_path / "rbm")
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dlcore: error: ") and message in lines[0]
    assert lines[0].count("--help')") == 1      # one hint, not the command's and the sweep's
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command, message", [
    (["rbm", "fly"], "'dlcore rbm fly' is not a dlcore command"),
    ([*TINY_RBM, "--seed", "3"], "--seed is both in the command and in --grid"),
    ([*TINY_RBM, "--distributed"], "drop --distributed from the command"),
    ([*TINY_RBM, "--sync-every", "4"], "--sync-every sets data-parallel training"),
    ([*TINY_RBM, "--epochs", "0"], "the command: Invalid value for '--epochs'"),
])
def test_a_command_the_sweep_cannot_run_is_refused_in_one_line(command, message, tmp_path):
    result = sweep("--grid", "seed=0,1", "--out", tmp_path / "sweep.csv", "--", *command)
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and message in result.output
    assert list(tmp_path.iterdir()) == []


def test_a_grid_over_sync_every_is_refused_in_one_line(tmp_path):
    result = sweep("--grid", "sync-every=1,4", "--out", tmp_path / "sweep.csv", "--",
                   *TINY_RBM)
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and "--sync-every sets data-parallel" in result.output
    assert list(tmp_path.iterdir()) == []


def test_dry_run_prints_each_command_line_with_flags_set_from_true_and_false(tmp_path):
    result = sweep("--dry-run", "--grid", "persistent=true,false", "--grid", "hidden=4,8",
                   "rbm", "train", "--epochs", "1", "--out", tmp_path / "rbm")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"run {k}: dlcore rbm train --epochs 1{flag} --hidden {hidden} --out "
        f"{tmp_path / 'rbm' / f'run-{k}'}"
        for k, (flag, hidden) in enumerate([(" --persistent", 4), (" --persistent", 8),
                                            ("", 4), ("", 8)])]
    assert list(tmp_path.iterdir()) == []


def test_a_dry_run_of_a_resume_prints_the_runs_it_would_run(tmp_path):
    # it printed every run of the grid, the finished ones too, and none with its checkpoint
    runs = tmp_path / "rbm"
    (runs / "run-2").mkdir(parents=True)
    (runs / "run-2" / "checkpoint.h5").write_bytes(b"")
    arguments = ["--grid", "seed=0,1,2,3", "--out", tmp_path / "sweep.csv", "--", *TINY_RBM,
                 "--out", runs]
    dry = sweep("--dry-run", *arguments)
    lines = [line for line in dry.output.splitlines() if line.startswith("run ")]
    command_of = {int(line.split(":")[0][4:]): line.split(": ", 1)[1] for line in lines}
    with open(tmp_path / "sweep.csv", "w") as handle:
        handle.write("run,seed,status,command\n")
        handle.write(f"0,0,ok,{command_of[0]}\n3,3,ok,{command_of[3]}\n")
    resumed = sweep("--dry-run", "--resume", *arguments)
    assert resumed.exit_code == 0, resumed.output
    assert resumed.output.splitlines() == [
        f"run 1: {command_of[1]}",
        f"run 2: {command_of[2]} --resume {runs / 'run-2' / 'checkpoint.h5'}",
        f"(2 finished before, in {tmp_path / 'sweep.csv'}, kept)"]


def test_run_folders_are_numbered_to_the_width_of_the_last_run(tmp_path):
    result = sweep("--dry-run", "--grid", "seed=" + ",".join(map(str, range(11))),
                   "--", *TINY_RBM, "--out", tmp_path)
    assert result.stdout.splitlines()[0].endswith(str(tmp_path / "run-00"))
    assert result.stdout.splitlines()[10].endswith(str(tmp_path / "run-10"))


def test_a_command_that_writes_one_file_writes_one_numbered_file_per_run(tmp_path):
    model = tmp_path / "model.h5"
    model.write_bytes(b"")          # the dry run parses the command line only: it must exist
    result = sweep("--dry-run", "--grid", "steps=10,20", "--", "rbm", "sample", model,
                   "--out", tmp_path / "samples.png")
    assert [line.split()[-1] for line in result.stdout.splitlines()] == [
        str(tmp_path / "samples-run-0.png"), str(tmp_path / "samples-run-1.png")]


def test_publish_metrics_fills_the_runs_metrics_and_does_nothing_outside_a_sweep():
    import click
    publish_metrics(loss=1.0)                 # no Click context: nothing to fill, no error
    metrics = RunMetrics()
    with click.Context(main, obj=metrics):
        publish_metrics(loss=0.5, best_epoch=3)
    assert metrics == {"loss": 0.5, "best_epoch": 3}


# -- the other training commands hand over their figures ------------------------------------
@pytest.mark.slow
def test_dbn_pretrain_and_finetune_hand_their_final_figures_to_the_sweep(tmp_path):
    dbn = sweep("--grid", "seed=0", "--out", tmp_path / "dbn.csv", "--", "dbn", "pretrain",
                "--layers", "784-8", "--epochs-per-layer", "1", "--backend", "reference",
                "--out", tmp_path / "dbn")
    assert dbn.exit_code == 0, dbn.output
    pretrained = dlcore.load(tmp_path / "dbn" / "run-0" / "dbn.h5")
    assert float(read_rows(tmp_path / "dbn.csv")[0]["rbm1_reconstruction_error"]) == \
        pretrained.history["rbm1_reconstruction_error"][-1]
    finetune = sweep("--grid", "seed=0", "--out", tmp_path / "finetune.csv", "--", "dbn",
                     "finetune", tmp_path / "dbn" / "run-0" / "dbn.h5", "--epochs", "1",
                     "--backend", "reference", "--out", tmp_path / "finetune")
    assert finetune.exit_code == 0, finetune.output
    row = read_rows(tmp_path / "finetune.csv")[0]
    network = dlcore.load(tmp_path / "finetune" / "run-0" / "model.h5")
    assert float(row["val_accuracy"]) == network.history["val_accuracy"][
        int(np.argmin(network.history["val_loss"]))]    # the epoch kept
    assert (row["best_epoch"], row["epochs_trained"]) == ("1", "1")
    assert f"test accuracy {float(row['test_accuracy']):.4f}" in (
        tmp_path / "finetune" / "run-0" / "output.txt").read_text()


def test_cnn_train_hands_its_final_figures_to_the_sweep(tmp_path, monkeypatch):
    # the MLP's 256 titled filter tiles take most of the run's time; the figures are not tested
    monkeypatch.setattr("dlcore.cli.cnn.save_first_layer_filters", lambda model, path: None)
    cnn = sweep("--grid", "seed=0", "--out", tmp_path / "cnn.csv", "--", "cnn", "train",
                "--model", "mlp", "--dataset", "mnist-5k", "--train-size", "100", "--epochs",
                "1", "--backend", "reference", "--out", tmp_path / "cnn")
    assert cnn.exit_code == 0, cnn.output
    row = read_rows(tmp_path / "cnn.csv")[0]
    written = json.loads((tmp_path / "cnn" / "run-0" / "metrics.json").read_text())
    assert float(row["test_accuracy"]) == written["test_accuracy"]
    assert float(row["val_loss"]) == written["history"]["val_loss"][-1]


def test_ae_train_hands_its_final_figures_to_the_sweep(tmp_path):
    ae = sweep("--grid", "seed=0", "--out", tmp_path / "ae.csv", "--", "ae", "train",
               "--digits", "0-1", "--hidden", "8", "--epochs", "1", "--backend", "reference",
               "--out", tmp_path / "ae")
    assert ae.exit_code == 0, ae.output
    row = read_rows(tmp_path / "ae.csv")[0]
    history = dlcore.load(tmp_path / "ae" / "run-0" / "model.h5").history
    assert [float(row[name]) for name in ("loss", "valid_loss", "reconstruction_error")] == [
        history[name][-1] for name in ("loss", "valid_loss", "reconstruction_error")]


def test_the_pretraining_table_over_seeds_is_one_row_per_seed_with_every_rows_errors(tmp_path):
    result = sweep("--grid", "seed=0,1", "--out", tmp_path / "sweep.csv", "--", "homework",
                   "pretraining", "--train-size", "50", "--layers", "784-4-4", "--rows",
                   "dbn,deep", "--epochs", "1", "--epochs-per-layer", "1", "--backend",
                   "reference", "--out", tmp_path / "table")
    assert result.exit_code == 0, result.output
    rows = read_rows(tmp_path / "sweep.csv")
    assert [row["seed"] for row in rows] == ["0", "1"]
    for row in rows:
        table = read_rows(tmp_path / "table" / f"run-{row['run']}" / "pretraining.csv")
        published = {f"{key}_{kind}_error": f"{float(row[f'{key}_{kind}_error']):.6f}"
                     for key in ("dbn", "deep") for kind in ("train", "valid", "test")}
        assert published == {f"{key}_{kind}_error": line[f"{kind}_error"]
                             for key, line in zip(("dbn", "deep"), table)
                             for kind in ("train", "valid", "test")}


def samplers_figures(folder, row):
    table = {line["sampler"]: line["ais_log_likelihood"]
             for line in read_rows(folder / "samplers.csv")}
    return ([f"{float(row[name]):.2f}" for name in ("cd1_log_likelihood",
                                                    "independent_pixels_log_likelihood")],
            [table["CD-1"], table["independent pixels"]])


def regularisation_figures(folder, row):
    table = read_rows(folder / "regularisation.csv")
    return ([f"{float(row[name]):.6f}" for name in ("none_train_error", "none_test_error")],
            [table[0]["train_error"], table[0]["test_error"]])


def task1_figures(folder, row):
    printed = (folder / "output.txt").read_text()
    return ([f"mean over {name} digits: {float(row[f'{name}_error']):.5f}"
             for name in ("seen", "unseen")],
            [line for line in printed.splitlines() if line.startswith("mean over")])


def task2_figures(folder, row):
    return ([float(row["reconstruction_error"])],
            [dlcore.load(folder / "model.h5").history["reconstruction_error"][-1]])


@pytest.mark.parametrize("command, figures", [
    (["homework", "samplers", "--samplers", "cd1", "--hidden", "4", "--epochs", "1",
      "--batch-size", "1000", "--ais-runs", "2", "--ais-temperatures", "10", "--sample-steps",
      "2"], samplers_figures),
    (["homework", "regularisation", "--methods", "none", "--train-size", "40", "--epochs", "1",
      "--batch-size", "20"], regularisation_figures),
    (["homework", "task1", "--hidden", "4", "--epochs", "1", "--train-digits", "0-1",
      "--test-digits", "0-2"], task1_figures),
    pytest.param(["homework", "task2", "--patch", "4", "--hidden", "6", "--epochs", "1",
                  "--max-size", "4000"], task2_figures, marks=pytest.mark.slow)])
def test_the_homework_commands_hand_over_the_figures_of_their_tables(
        command, figures, tmp_path):
    result = sweep("--grid", "seed=0", "--out", tmp_path / "sweep.csv", "--", *command,
                   "--backend", "reference", "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    handed_over, written = figures(tmp_path / "run" / "run-0",
                                   read_rows(tmp_path / "sweep.csv")[0])
    assert handed_over == written and written


def test_distributed_without_mpi4py_is_one_line_naming_the_extra(monkeypatch, tmp_path):
    import importlib.util
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "mpi4py"
                        else real_find_spec(name, *args))
    result = sweep("--distributed", "--grid", "seed=0,1", "--out", tmp_path / "sweep.csv",
                   "--", *TINY_RBM, "--out", tmp_path / "rbm")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        'dlcore: error: distributed training needs mpi4py and an MPI library: pip install '
        '"dlcore[distributed]"']
    assert not (tmp_path / "rbm").exists() and not (tmp_path / "sweep.csv").exists()


# -- over MPI --------------------------------------------------------------------------------
@pytest.mark.slow
@requires_mpi4py
def test_a_distributed_sweep_splits_the_runs_over_the_ranks_and_writes_the_same_rows(
        tmp_path):
    arguments = ["-m", "dlcore", "sweep", "--grid", "seed=0,1,2", "--out", "sweep.csv", "--",
                 *TINY_RBM, "--out", "rbm"]
    for name, launch in (("alone", [sys.executable]),
                         ("together", [mpiexec(), "-n", "2", sys.executable])):
        (tmp_path / name).mkdir()
        command = [*launch, *arguments]
        if name == "together":
            command.insert(command.index("--grid"), "--distributed")
        completed = subprocess.run(command, capture_output=True, text=True, timeout=300,
                                   cwd=tmp_path / name, check=False)
        assert completed.returncode == 0, completed.stderr[-3000:]
    assert "3 runs over 2 ranks, all ok" in completed.stdout
    alone, together = (read_rows(tmp_path / name / "sweep.csv")
                       for name in ("alone", "together"))
    assert [row["rank"] for row in together] == ["0", "1", "0"]
    for row in (*alone, *together):
        del row["seconds"], row["rank"]
    assert together == alone and len(alone) == 3
    assert sorted(path.name for path in (tmp_path / "together" / "rbm").iterdir()) == [
        "run-0", "run-1", "run-2"]


@pytest.mark.parametrize("environ, ranks", [
    ({}, 1), ({"PMI_SIZE": "3"}, 3), ({"OMPI_COMM_WORLD_SIZE": "2"}, 2),
    ({"PMI_SIZE": "junk", "PMIX_SIZE": "4"}, 4),
])
def test_the_ranks_an_mpi_launcher_started_are_read_from_its_environment(environ, ranks):
    from dlcore.cli._distributed import launched_ranks
    assert launched_ranks(environ) == ranks


def test_a_launched_command_without_distributed_warns_once_and_a_sweeps_runs_do_not(
        tmp_path, monkeypatch):
    monkeypatch.setenv("PMI_SIZE", "2")
    trained = CliRunner().invoke(main, [*TINY_RBM, "--out", str(tmp_path / "alone")])
    assert trained.exit_code == 0, trained.output
    warnings = [line for line in trained.stderr.splitlines() if "MPI processes" in line]
    assert len(warnings) == 1 and "add --distributed" in warnings[0]
    swept = sweep("--grid", "seed=0,1", "--out", tmp_path / "s.csv", "--", *TINY_RBM,
                  "--out", tmp_path / "runs")
    assert swept.exit_code == 0, swept.output
    warnings = [line for line in swept.stderr.splitlines() if "MPI processes" in line]
    assert len(warnings) == 1 and "runs every run" in warnings[0]
    # rank 1 of the job meets the same warning: rank 0 says it for the job (each rank did)
    monkeypatch.setenv("PMI_RANK", "1")
    other_rank = CliRunner().invoke(main, [*TINY_RBM, "--out", str(tmp_path / "rank1")])
    assert other_rank.exit_code == 0, other_rank.output
    assert "MPI processes" not in other_rank.stderr
    monkeypatch.delenv("PMI_RANK")
    monkeypatch.delenv("PMI_SIZE")
    quiet = CliRunner().invoke(main, [*TINY_RBM, "--out", str(tmp_path / "quiet")])
    assert "MPI processes" not in quiet.stderr


class SweepRank:
    """Rank ``rank`` of a 2-rank distributed sweep, without MPI: ``peer_signal`` arrives (a
    PeerInterrupted) once ``runs_before_peer`` runs have started; records what it tells."""

    def __init__(self, rank, peer_signal=None, runs_before_peer=0):
        self.rank, self.size, self.is_root, self.threads = rank, 2, rank == 0, 1
        self.peer_signal, self.runs_before_peer = peer_signal, runs_before_peer
        self.checked = 0
        self.told = None

    def check_interrupts(self):
        self.checked += 1
        if self.peer_signal is not None and self.checked > self.runs_before_peer:
            from dlcore.distributed import PeerInterrupted
            raise PeerInterrupted(1 - self.rank, self.size, self.peer_signal)

    def interrupt_others(self, signal_number):
        self.told = signal_number

    def gather(self, value, what):
        raise AssertionError(f"the sweep reached {what}: it should have stopped")

    def gather_arrived(self, value, seconds):
        """Rank 1 stopped in run 3, after run 1."""
        if not self.is_root:
            return None
        return {0: value, 1: (3, [{"run": 1, "seed": "1", "status": "ok", "error": "",
                                   "seconds": 1.0, "rank": 1}])}


def stand_in_sweep(monkeypatch, tmp_path, communicator, run):
    import dlcore.distributed
    from dlcore.cli import sweep as sweep_module
    monkeypatch.setattr(dlcore.distributed, "init", lambda timeout: communicator)
    ran = []

    def fake_run(self, index, rank=0, resume=False, comm=None):
        ran.append(index)
        return run(index)

    monkeypatch.setattr(sweep_module.Sweep, "run", fake_run)
    # no launcher among the ancestors (a rank on another node than the launcher's)
    monkeypatch.setattr("dlcore.cli._distributed._ancestor_command_lines", lambda: [])
    result = sweep("--distributed", "--grid", "seed=0,1,2,3,4,5", "--out",
                   tmp_path / "sweep.csv", "--", *TINY_RBM, "--out", tmp_path / "rbm")
    return result, ran


def test_a_distributed_sweep_rank_stopped_by_sigterm_tells_the_others_which_signal(
        monkeypatch, tmp_path):
    # it told nobody: the other ranks ran every run of theirs (hours, on a cluster) and then
    # failed at the gather, "rank 1 ended (a sys.exit, ...)", exit code 1, no CSV
    import signal

    from dlcore import Terminated
    from dlcore.cli._common import TrainingInterrupted

    def interrupted_run(index):
        try:
            raise Terminated(signal.SIGTERM)
        except KeyboardInterrupt:
            raise TrainingInterrupted("interrupted: saved the model after epoch 3 of 9") \
                from None

    communicator = SweepRank(1)
    result, ran = stand_in_sweep(monkeypatch, tmp_path, communicator, interrupted_run)
    assert ran == [1]
    assert communicator.told == signal.SIGTERM
    assert result.exit_code == 143, result.output


@pytest.mark.parametrize("rank, printed", [("0", 2), ("1", 0)])
def test_a_distributed_dry_run_prints_its_plan_once_for_the_job(monkeypatch, tmp_path, rank,
                                                                printed):
    # under mpiexec -n 2, every rank printed the whole plan: each run's line twice
    monkeypatch.setenv("PMI_RANK", rank)
    monkeypatch.setenv("PMI_SIZE", "2")
    result = sweep("--distributed", "--dry-run", "--grid", "seed=0,1", "--out",
                   tmp_path / "sweep.csv", "--", *TINY_RBM, "--out", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    assert len(result.output.splitlines()) == printed, result.output


def test_resume_trains_again_a_run_whose_finished_model_file_no_longer_loads(tmp_path):
    # its record named the run's command line, so it was trusted: every --resume gave the run
    # an error row, "dataset 'W' is missing ...: save the model again", which no sweep can
    import h5py
    arguments = ["--grid", "seed=0", "--out", tmp_path / "sweep.csv", "--", *TINY_RBM,
                 "--out", tmp_path / "runs"]
    (tmp_path / "sweep.csv").write_text("run,seed,status,error,seconds,rank,command\n")
    model = tmp_path / "runs" / "run-0" / "model.h5"
    model.parent.mkdir(parents=True)
    rbm = dlcore.BernoulliRBM(n_hidden=4, epochs=1, backend="reference", seed=0)
    dlcore.save(rbm.fit(np.random.default_rng(0).random((20, 784)).astype(np.float32)), model)
    line = " ".join(["dlcore", *TINY_RBM, "--seed", "0", "--out", str(model.parent)])
    with h5py.File(model, "a") as handle:
        handle.attrs["training_record"] = json.dumps({"command_line": line})
    whole = sweep("--resume", "--dry-run", *arguments)
    assert whole.output.splitlines() == [f"run 0: {line} --resume {model}"], whole.output
    with h5py.File(model, "a") as handle:
        del handle["W"]
    damaged = sweep("--resume", "--dry-run", *arguments)
    assert damaged.exit_code == 0, damaged.output
    assert damaged.output.splitlines() == [f"run 0: {line}"], damaged.output


@pytest.mark.parametrize("trouble", ["locked by another program", "no memory"])
def test_resume_trains_no_finished_run_again_for_a_file_this_machine_cannot_read_now(
        monkeypatch, tmp_path, trouble):
    # the check above took any error for damage: a model file locked by a program holding it
    # open (HDF5's lock), or a MemoryError, trained the finished run again over its file
    import fcntl

    import h5py
    arguments = ["--grid", "seed=0", "--out", tmp_path / "sweep.csv", "--", *TINY_RBM,
                 "--out", tmp_path / "runs"]
    (tmp_path / "sweep.csv").write_text("run,seed,status,error,seconds,rank,command\n")
    model = tmp_path / "runs" / "run-0" / "model.h5"
    model.parent.mkdir(parents=True)
    rbm = dlcore.BernoulliRBM(n_hidden=4, epochs=1, batch_size=50, backend="reference",
                              seed=0)
    dlcore.save(rbm.fit(np.random.default_rng(0).random((20, 784)).astype(np.float32)), model)
    line = " ".join(["dlcore", *TINY_RBM, "--seed", "0", "--out", str(model.parent)])
    with h5py.File(model, "a") as handle:
        handle.attrs["training_record"] = json.dumps({"command_line": line})
    written = model.read_bytes()
    with open(model, "rb") as holder:
        if trouble == "no memory":
            def no_memory(path):
                raise MemoryError
            monkeypatch.setattr(dlcore, "load", no_memory)
        else:   # as HDF5 locks a file it writes (h5py.File(path, "a") in a notebook)
            fcntl.flock(holder, fcntl.LOCK_EX)
        planned = sweep("--resume", "--dry-run", *arguments)
        ran = sweep("--resume", *arguments)
    if trouble == "no memory":
        for result in (planned, ran):
            assert result.exit_code == 1, result.output
            said = result.output.strip().splitlines()
            assert len(said) == 1 and said[0].startswith(
                "dlcore: error: cannot tell whether run 0 finished: reading "), said
        assert read_rows(tmp_path / "sweep.csv") == [] and model.read_bytes() == written
    else:   # readable, as dlcore.load reads it: the finished run is resumed, not retrained
        assert planned.output.splitlines() == [f"run 0: {line} --resume {model}"], planned.output
        assert ran.exit_code == 0, ran.output


class SweepRankWhosePeerCannotRead(SweepRank):
    """Rank ``rank`` of a 2-rank distributed sweep --resume whose rank 1 could not read a
    finished run's model file (run 1's, the stand-in rank 1 reading none); records what it
    was asked to share."""

    CANNOT = ("cannot tell whether run 1 finished: reading run-1/model.h5 failed (Permission "
              "denied); run the sweep with --resume again once that is resolved")

    def gather(self, value, what):
        self.gathered = value
        return [value, self.CANNOT] if self.is_root else None

    def broadcast(self, value, what):
        return value if self.is_root else self.CANNOT


@pytest.mark.parametrize("rank, said", [(0, 1), (1, 0)])
def test_a_distributed_sweep_resumed_stops_on_every_rank_when_one_cannot_read_a_run_s_file(
        monkeypatch, tmp_path, rank, said):
    # the rank that could not read stopped alone: the others trained all their runs (hours)
    # and then stopped the job at the gather, "rank 1 ended (a sys.exit, ...)", with no CSV;
    # rank 0 says the line for the job
    communicator = SweepRankWhosePeerCannotRead(rank)
    import dlcore.distributed
    from dlcore.cli import sweep as sweep_module
    monkeypatch.setattr(dlcore.distributed, "init", lambda timeout: communicator)
    ran = []
    monkeypatch.setattr(sweep_module.Sweep, "run", lambda self, index, *rest, **options:
                        ran.append(index))
    monkeypatch.setattr("dlcore.cli._distributed._ancestor_command_lines", lambda: [])
    (tmp_path / "sweep.csv").write_text("run,seed,status,error,seconds,rank,command\n")
    result = sweep("--distributed", "--resume", "--grid", "seed=0,1,2,3", "--out",
                   tmp_path / "sweep.csv", "--", *TINY_RBM, "--out", tmp_path / "rbm")
    assert ran == []
    assert communicator.gathered is None   # this rank read its runs' files
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines() == [
        f"dlcore: error: {SweepRankWhosePeerCannotRead.CANNOT}"][:said], result.output


@pytest.mark.parametrize("held", ["SIGTERM", "SIGINT"])
def test_a_distributed_sweep_interrupted_as_it_started_says_so_in_one_plain_line(
        monkeypatch, tmp_path, held):
    # "sweep interrupted by SIGTERM (interrupted as it started (loading its libraries):
    # nothing was run); wrote ...": a run's words, nested parentheses, for a sweep with no run
    import signal

    from dlcore import _starting
    monkeypatch.setattr(_starting, "_HELD", [getattr(signal, held)])
    result, ran = stand_in_sweep(monkeypatch, tmp_path, SweepRank(0), lambda index: None)
    assert ran == []
    assert result.exit_code == 128 + getattr(signal, held), result.output
    named = "" if held == "SIGINT" else " by SIGTERM"
    said = result.output.strip().splitlines()[-1]
    # (the stand-in rank 1 hands over a finished run 1)
    assert said.startswith(f"dlcore: sweep interrupted{named} as it started, before any run; "
                           f"wrote the 1 finished run to {tmp_path / 'sweep.csv'} (runs 0, 2, "
                           "3, 4 and 5 missing); run the missing ones with: mpiexec "), said
    assert "((" not in said and "))" not in said, said


class SweepRankDoneFirst(SweepRank):
    """Rank ``rank`` of a 2-rank distributed sweep that ran all its runs: the other rank's
    interruption (SIGTERM) reaches it while it waits at the end, in the gather of the rows on
    rank 0, in the broadcast of the outcome on the others (their part of the gather left
    at once, as a small message does); records what it handed over."""

    def gather(self, value, what):
        if not self.is_root:
            return None
        self.interrupted()

    def broadcast(self, value, what):
        self.interrupted()

    def interrupted(self):
        import signal

        from dlcore.distributed import PeerInterrupted
        raise PeerInterrupted(1 - self.rank, self.size, signal.SIGTERM)

    def gather_arrived(self, value, seconds):
        self.handed_over = value
        return super().gather_arrived(value, seconds)


def test_a_distributed_sweep_keeps_the_rows_of_a_rank_that_had_finished_its_runs(
        monkeypatch, tmp_path):
    # rank 0, done with runs 0, 2 and 4, heard of rank 1's interruption in the gather: the
    # interruption left the sweep there, no CSV, every finished run of every rank lost
    def finished_run(index):
        return {"run": index, "status": "ok", "error": "", "seconds": 1.0}

    import types

    from dlcore.cli import sweep as sweep_module
    from dlcore.cli._distributed import _silence_mpi_at_exit
    at_exit = []
    monkeypatch.setattr(sweep_module, "atexit", types.SimpleNamespace(register=at_exit.append))
    communicator = SweepRankDoneFirst(0)
    result, ran = stand_in_sweep(monkeypatch, tmp_path, communicator, finished_run)
    assert ran == [0, 2, 4]
    assert result.exit_code == 143, result.output
    said = result.output.strip().splitlines()[-1]
    assert said.startswith("dlcore: sweep interrupted by SIGTERM to rank 1 of 2 in run 3 ("), said
    assert f"wrote the 4 finished runs to {tmp_path / 'sweep.csv'} (runs 3 and 5 missing)" \
        in said
    assert [row["run"] for row in read_rows(tmp_path / "sweep.csv")] == ["0", "1", "2", "4"]
    # MPICH's note at MPI_Finalize of the requests left pending is silenced, as a training
    # command's is: it printed "Builtin communicator 44000000 has pending 1 references"
    assert _silence_mpi_at_exit in at_exit
    # rank 1, done with runs 1, 3 and 5 while rank 0 is in a run: its rows are handed over
    communicator = SweepRankDoneFirst(1)
    result, ran = stand_in_sweep(monkeypatch, tmp_path / "rank1", communicator, finished_run)
    assert ran == [1, 3, 5]
    assert result.exit_code == 143, result.output
    stopped_in, handed_over = communicator.handed_over
    assert stopped_in is None and [row["run"] for row in handed_over] == [1, 3, 5]


def test_a_distributed_sweep_rank_stops_before_its_next_run_when_another_is_interrupted(
        monkeypatch, tmp_path):
    import signal
    communicator = SweepRank(0, peer_signal=signal.SIGTERM, runs_before_peer=1)
    result, ran = stand_in_sweep(
        monkeypatch, tmp_path, communicator,
        lambda index: {"run": index, "status": "ok", "error": "", "seconds": 1.0})
    assert ran == [0]   # runs 2 and 4 were not started
    assert result.exit_code == 143, result.output
    # the finished runs of every rank were lost: no CSV
    said = result.output.strip().splitlines()[-1]
    # rank 0 stopped before it started run 2: rank 1 alone was in a run (the line said "in
    # runs 2 and 3")
    assert said.startswith("dlcore: sweep interrupted by SIGTERM to rank 1 of 2 in run 3 ("), \
        said
    assert said.endswith(f"wrote the 2 finished runs to {tmp_path / 'sweep.csv'} (runs 2, 3, "
                         "4 and 5 missing); run the missing ones with: mpiexec -n 2 dlcore "
                         f"sweep --grid seed=0,1,2,3,4,5 --out {tmp_path / 'sweep.csv'} "
                         f"--distributed --resume -- {' '.join(TINY_RBM)} --out "
                         f"{tmp_path / 'rbm'} (start it as you started this job: add the "
                         "launcher's other options, such as its host file)"), said
    assert [(row["run"], row["rank"]) for row in read_rows(tmp_path / "sweep.csv")] == [
        ("0", ""), ("1", "1")]


def test_a_csv_that_cannot_be_written_is_refused_in_one_line_before_any_run(tmp_path):
    """--out /proc/x.csv: /proc takes no new file, even from root, whom os.access lets write
    it; the sweep ran every run, then said a raw '[Errno 2]' and lost the rows."""
    result = sweep("--grid", "seed=0,1", "--out", "/proc/x.csv", "--", *TINY_RBM, "--out",
                   tmp_path / "rbm")
    assert result.exit_code == 1, result.output
    [line] = result.output.splitlines()
    assert line.startswith("dlcore: error: cannot write in the output folder /proc: ")
    assert line.endswith("; choose another with --out") and "Errno" not in line
    assert list(tmp_path.iterdir()) == []


def test_a_csv_out_in_a_hand_in_folder_is_refused_only_where_it_is_a_new_file(
        monkeypatch, tmp_path):
    """A hand-in folder (mode 555) of files the student may write (mode 666): `sweep --out
    handin/sweep.csv` was refused at start ("cannot write in the output folder"), where the
    CSV is written in place as open() writes it and as `rbm sample --out handin/s.png` now is;
    a new file there is still refused before any run."""
    import os

    from dlcore.cli import sweep as sweep_module
    handin = tmp_path / "handin"
    handin.mkdir()
    (handin / "sweep.csv").write_text("the student's old table\n")
    real_access = os.access
    # root may write anywhere: the system's answers for a student in the hand-in folder
    monkeypatch.setattr(os, "access", lambda path, mode, **options: (
        os.fspath(path) != str(handin) and real_access(path, mode, **options)))
    monkeypatch.setattr("dlcore.cli._common._why_unwritable", lambda folder: "Permission denied")
    runs = []

    def finished_run(self, index, rank=0, resume=False, comm=None):
        runs.append(index)
        return {"run": index, "seed": str(index), "status": "ok", "error": "", "loss": 0.5,
                "seconds": 1.0, "rank": rank, "command": self.command_line(index)}
    monkeypatch.setattr(sweep_module.Sweep, "run", finished_run)
    for name in ("sweep.csv", "new.csv"):
        result = sweep("--grid", "seed=0", "--out", handin / name, "--", *TINY_RBM,
                       "--out", tmp_path / "rbm")
        if name == "sweep.csv":
            assert result.exit_code == 0, result.output
            assert (handin / name).read_text().startswith("run,")
    assert result.exit_code == 1 and result.output.splitlines()[-1] == (
        f"dlcore: error: cannot write in the output folder {handin}: Permission denied; choose "
        f"another with --out")
    assert runs == [0]


@pytest.mark.parametrize("name, reason", [
    ("x" * 260 + ".csv", "its name is 264 bytes, more than the 255 a file name may have there; "
                         "give a shorter name"),
    ("loop.csv", "its symbolic links lead in a loop; remove the link or give another name"),
])
def test_a_csv_name_no_file_can_have_is_refused_before_the_runs_in_one_line(
        tmp_path, name, reason):
    # after every run: "dlcore: error: [Errno 36] File name too long: '.../.xxx...tmp.7051efb7'
    # -> '...'", and "[Errno 40] cannot write loop.csv: ..."
    (tmp_path / "loop.csv").symlink_to("loop.csv")
    result = sweep("--grid", "seed=0,1", "--out", tmp_path / name, "--dry-run", "--",
                   *TINY_RBM, "--out", tmp_path / "rbm")
    assert result.exit_code == 2, result.output
    assert f"cannot write {tmp_path / name}: {reason}" in result.output
    assert "Errno" not in result.output and ".tmp." not in result.output
    assert result.output.count("\n") == 1 and "run 0" not in result.output


def test_a_csv_name_ending_in_a_slash_is_refused_in_one_line(tmp_path):
    # Path("sub/") is "sub": the sweep wrote its table as a file named sub
    result = sweep("--grid", "seed=0,1", "--out", f"{tmp_path / 'sub'}/", "--dry-run", "--",
                   *TINY_RBM, "--out", tmp_path / "rbm")
    assert result.exit_code == 2, result.output
    assert (f"cannot write {tmp_path / 'sub'}/: a name ending in '/' names a folder, not a "
            f"file; add the file's name after the '/'" in result.output)
    assert result.output.count("\n") == 1 and not (tmp_path / "sub").exists()
