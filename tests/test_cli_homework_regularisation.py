"""``dlcore homework regularisation`` on tiny settings; the networks it builds; the figure
helper it draws with.

Oracles: the files and rows promised, the table's own arithmetic (the change against ``none``
is the difference of the printed test errors), the networks' layers as the method says, and
one-line errors for bad options."""
import csv
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner

import dlcore
from conftest import assert_wrote
from dlcore import viz
from dlcore.cli import main
from dlcore.cli.homework_regularisation import METHODS, NETWORKS, parse_methods
from dlcore.layers import Dense, Dropout, GaussianNoise, ImageAugmentation
from dlcore.regularizers import L2, MaxNorm

TINY = ["--train-size", "40", "--epochs", "2", "--batch-size", "20", "--backend", "cpu"]
#: the small settings of the methods that read them (given without them, they are refused)
SMALL_ENSEMBLE, FEW_MASKS = ["--ensemble-size", "2"], ["--mc-dropout", "2"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("regularisation")
    result = CliRunner().invoke(main, ["homework", "regularisation", *TINY, *SMALL_ENSEMBLE,
                                       *FEW_MASKS, "--methods",
                                       "none,l2,dropout,distillation,adversarial", "--seeds",
                                       "2", "--out", str(out)])
    return result, out


@pytest.mark.slow
def test_the_command_writes_the_table_the_curves_and_the_adversarial_examples(tiny_run):
    result, out = tiny_run
    assert_wrote(result, out, ["regularisation.csv", "regularisation_curves.png",
                               "adversarial_examples.png"])


@pytest.mark.slow
def test_the_csv_has_a_row_per_method_and_seed_with_errors_in_range(tiny_run):
    _, out = tiny_run
    with open(out / "regularisation.csv") as handle:
        rows = list(csv.DictReader(handle))
    methods = [row["method"] for row in rows]
    assert len(rows) == 2 * 6 and methods[:6] == methods[6:]
    assert methods[:6] == ["none", "L2, lambda=3e-3", "dropout 0.5",
                           "distilled ensemble, T=2", "adversarial, eps=0.1",
                           "dropout, MC K=2"]
    assert {row["seed"] for row in rows} == {"0", "1"}
    assert all(0 <= float(row["test_error"]) <= 1 for row in rows)
    assert [row["fgsm_test_error"] == "" for row in rows[:6]] == [False] * 5 + [True]


@pytest.mark.slow
def test_the_printed_change_is_the_difference_of_the_mean_test_errors(tiny_run):
    result, out = tiny_run
    with open(out / "regularisation.csv") as handle:
        rows = list(csv.DictReader(handle))
    test = {}
    for row in rows:
        test.setdefault(row["method"], []).append(float(row["test_error"]))
    line = next(line for line in result.stdout.splitlines() if line.startswith("dropout 0.5"))
    change = 100 * (np.mean(test["dropout 0.5"]) - np.mean(test["none"]))
    assert f"{change:+.2f}" in line and "±" in line
    assert "(mean ± std over 2 seeds)" in result.stdout


def test_methods_parse_in_table_order_and_all_means_every_one():
    assert parse_methods("dropout, none") == ["none", "dropout"]
    assert parse_methods("all") == list(METHODS)


@pytest.mark.parametrize("arguments, words", [
    (["--methods", "none,weight-noise"], "choose from none, l2"),
    (["--train-size", "5000"], "more than the 4000 training images"),
    (["--model", "resnet"], "'resnet' is not one of"),
    # an option that only a method not run reads was ignored: a mistyped --methods looked
    # as if it had taken effect
    (["--methods", "none,l2", "--mc-dropout", "10"],
     "--mc-dropout sets the Monte Carlo row of dropout, which --methods none,l2 does not run: "
     "add dropout to --methods, or drop --mc-dropout"),
    (["--methods", "none,dropout", "--mc-dropout", "0", "--temperature", "4"],
     "--temperature sets the distillation, which --methods none,dropout does not run: add "
     "distillation to --methods, or drop --temperature"),
    (["--methods", "l1", "--ensemble-size", "3"], "add ensemble or distillation to --methods"),
    (["--methods", "ensemble", "--epsilon", "0.2"], "--epsilon sets the FGSM column"),
])
def test_bad_options_are_one_line_usage_errors(arguments, words, tmp_path):
    result = CliRunner().invoke(main, ["homework", "regularisation", *arguments, "--out",
                                       str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert words in result.output and len(result.output.strip().splitlines()) == 1


def test_the_resume_help_offers_no_checkpoint_every_and_resumes_by_rows():
    # it named --checkpoint-every, an option this command does not have, and "the epochs it
    # had left" where the command goes on at the next row of its table
    result = CliRunner().invoke(main, ["homework", "regularisation", "--help"],
                                terminal_width=1000)
    assert result.exit_code == 0, result.output
    resume, = [line for line in result.output.splitlines() if "--resume FILE" in line]
    assert "--checkpoint-every" not in resume and "epochs" not in resume, resume
    assert "next row" in resume


@pytest.mark.parametrize("builder", [dlcore.models.mlp, dlcore.models.lenet5])
def test_the_model_builders_take_the_regularisers_of_each_method(builder):
    model = builder(backend="reference", noise=0.3, augment={"max_shift": 2},
                    kernel_regularizer=L2(1e-3), kernel_constraint=MaxNorm(2.0), dropout=0.5)
    kinds = [type(layer) for layer in model.layers]
    assert kinds[:2] == [ImageAugmentation, GaussianNoise] and Dropout in kinds
    weighted = [layer for layer in model.layers if layer.weight_names]
    assert all(layer.kernel_regularizer.l2 == 1e-3 and layer.kernel_constraint.max_value == 2
               for layer in weighted)
    assert isinstance(model.layers[-1], Dense)


def test_every_method_names_a_network_the_builders_accept():
    for name, (label, options) in NETWORKS.items():
        model = dlcore.models.mlp(backend="reference", **options)
        assert label and model.built, name


def test_curve_panels_share_colours_and_refuse_empty_input(tmp_path):
    viz.save_curve_panels({"train": {"a": [0.5, 0.2], "b": [0.4, None, 0.1]},
                           "test": {"a": [0.6, 0.5]}}, tmp_path / "curves.png",
                          ylabel="error", title="t")
    assert (tmp_path / "curves.png").stat().st_size > 0
    for panels in ({}, {"train": {}}):
        with pytest.raises(ValueError, match="panels must be"):
            viz.save_curve_panels(panels, tmp_path / "x.png")


@pytest.mark.slow
def test_ctrl_c_saves_the_finished_rows_and_resuming_gives_the_uninterrupted_table(
        tmp_path, monkeypatch):
    """Ctrl-C in the third row of six (two seeds; the MC dropout row comes with dropout's):
    checkpoint.h5 holds the two rows finished, the message prints the command that resumes,
    and that command trains the rows left only, ending with the uninterrupted run's table and
    CSV (cpu backend: training is a function of the seed)."""
    import shlex

    import dlcore.cli.homework_regularisation as command
    from dlcore.cli._common import INTERRUPTED_EXIT_CODE
    arguments = ["homework", "regularisation", *TINY, *FEW_MASKS, "--methods",
                 "none,dropout,adversarial",
                 "--seeds", "2", "--train-size", "30", "--epochs", "1"]
    runner = CliRunner()
    whole = runner.invoke(main, [*arguments, "--out", str(tmp_path / "whole")])
    assert whole.exit_code == 0, whole.output
    trained = command.Experiment.run
    calls = []

    def counted(self, method, teacher=None):
        calls.append((method, self.seed))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return trained(self, method, teacher)

    monkeypatch.setattr(command.Experiment, "run", counted)
    out = tmp_path / "part"
    interrupted = runner.invoke(main, [*arguments, "--out", str(out)])
    assert interrupted.exit_code == INTERRUPTED_EXIT_CODE, interrupted.output
    message = [line for line in interrupted.output.splitlines() if line.startswith("dlcore:")]
    assert len(message) == 1
    assert (f"saved the finished rows after row 2 of 6 (dropout 0.5, seed 0) to "
            f"{out / 'checkpoint.h5'}; resume with: ") in message[0]
    assert [(name, seed) for name, seed, _ in dlcore.load(out / "checkpoint.h5").rows] == [
        ("none", 0), ("dropout", 0), (command.MC_DROPOUT_ROW, 0)]
    assert not (out / "regularisation.csv").exists()
    words = shlex.split(message[0].split("resume with: ", 1)[1])
    assert words[0] == "dlcore" and words[-2:] == ["--resume", str(out / "checkpoint.h5")]
    monkeypatch.undo()
    resumed_calls = []

    def recorded(self, method, teacher=None):
        resumed_calls.append((method, self.seed))
        return trained(self, method, teacher)

    monkeypatch.setattr(command.Experiment, "run", recorded)
    resumed = runner.invoke(main, words[1:])
    assert resumed.exit_code == 0, resumed.output
    # the one line of every resumed command (it said "resuming after row 2 of 6 (...)")
    assert ("resuming: 2 of 6 rows trained (the last: dropout 0.5, seed 0), training the 4 "
            "left") in resumed.stderr
    assert resumed_calls == [("adversarial", 0), ("none", 1), ("dropout", 1), ("adversarial", 1)]
    table = [line for line in whole.stdout.splitlines() if not line.startswith(("total", "wrote"))]
    assert table and table == [line for line in resumed.stdout.splitlines()
                               if not line.startswith(("total", "wrote"))]

    def without_seconds(folder):
        with open(folder / "regularisation.csv") as handle:
            return [row[:-1] for row in csv.reader(handle)]

    assert without_seconds(tmp_path / "whole") == without_seconds(out)
    assert (out / "adversarial_examples.png").read_bytes() == (
        tmp_path / "whole" / "adversarial_examples.png").read_bytes()


def test_ctrl_c_while_the_monte_carlo_dropout_row_runs_saves_neither_of_dropout_s_rows(
        tmp_path, monkeypatch):
    """A Ctrl-C as the K dropout masks ran saved the dropout row without its Monte Carlo row
    (the line saying the row before), and the resume failed with a KeyError traceback."""
    import dlcore.cli.homework_regularisation as command
    from dlcore.cli._common import INTERRUPTED_EXIT_CODE
    measured = command.Experiment.result

    def interrupted_in_the_masks(self, net, curves, attack=True, **options):
        if "mc_dropout" in options:
            raise KeyboardInterrupt
        return measured(self, net, curves, attack, **options)

    arguments = ["homework", "regularisation", *TINY, *FEW_MASKS, "--methods", "none,dropout",
                 "--train-size", "30", "--epochs", "1", "--out", str(tmp_path / "run")]
    with monkeypatch.context() as patched:
        patched.setattr(command.Experiment, "result", interrupted_in_the_masks)
        interrupted = CliRunner().invoke(main, arguments)
    assert interrupted.exit_code == INTERRUPTED_EXIT_CODE, interrupted.output
    checkpoint = tmp_path / "run" / "checkpoint.h5"
    assert [(name, seed) for name, seed, _ in dlcore.load(checkpoint).rows] == [("none", 0)]
    assert "saved the finished rows after row 1 of 2 (none, seed 0)" in interrupted.output
    resumed = CliRunner().invoke(main, [*arguments, "--resume", str(checkpoint)])
    assert resumed.exit_code == 0, resumed.output
    assert "training the 1 left" in resumed.stderr
    table = resumed.stdout.splitlines()[1:4]
    assert [line[:26].strip() for line in table] == ["none", "dropout 0.5", "dropout, MC K=2"]


@pytest.mark.parametrize("methods, title", [
    ("l2", "test digits (true: predicted by the L2, lambda=3e-3 net), their attack on the L2, "
           "lambda=3e-3 net"),
    ("none,adversarial", "test digits (true: predicted by the plain net), their attack on the "
                         "plain net, on the adversarially trained net"),
])
def test_the_adversarial_examples_figure_names_the_nets_it_attacks(methods, title, tmp_path,
                                                                   monkeypatch):
    # it called the first method's net (L2's) the plain net, and named an adversarially
    # trained net the run did not train
    figures = []
    monkeypatch.setattr(viz, "save_tiles", lambda tiles, path, **options: figures.append(
        options) if "tile_titles" in options else None)
    result = CliRunner().invoke(main, ["homework", "regularisation", *TINY, "--methods",
                                       methods, "--train-size", "30", "--epochs", "1",
                                       "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    options, = figures
    assert options["title"] == "FGSM, epsilon=0.1: " + title
    names = {row.split(":")[0] for row in options["tile_titles"][10:]}
    assert names == ({"l2"} if methods == "l2" else {"plain", "adv.-trained"})


def test_the_adversarial_examples_of_garments_are_not_called_digits(tmp_path, monkeypatch):
    from dlcore.cli.homework_regularisation import save_adversarial_examples
    figures = []
    monkeypatch.setattr(viz, "save_tiles", lambda tiles, path, **options: figures.append(
        options))
    images, labels = np.zeros((3, 1, 4, 4)), np.array([0, 1, 2])
    examples = {"predicted": labels, "attacked": images,
                "attacked_predicted": labels}
    save_adversarial_examples(examples, None, (images, labels), 0.1, tmp_path / "a.png",
                              noun="class")
    assert figures[0]["title"].startswith("FGSM, epsilon=0.1: test images (true: ")


def interrupted_in_its_second_row(tmp_path, monkeypatch, *more):
    """A run of the rows none and l2 (one epoch each; the options ``more`` too) in
    tmp_path/run, Ctrl-C'd as its second row trains; returns its arguments and its checkpoint
    (holding the first row)."""
    import dlcore.cli.homework_regularisation as command
    trained = command.Experiment.run
    calls = []

    def interrupted_second(self, method, teacher=None):
        calls.append(method)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return trained(self, method, teacher)

    with monkeypatch.context() as patched:
        patched.setattr(command.Experiment, "run", interrupted_second)
        arguments = ["homework", "regularisation", *TINY, "--methods", "none,l2",
                     "--train-size", "30", "--epochs", "1", *more, "--out",
                     str(tmp_path / "run")]
        CliRunner().invoke(main, arguments)
    return arguments, tmp_path / "run" / "checkpoint.h5"


def test_a_checkpoint_recording_options_of_methods_it_did_not_run_still_resumes(
        tmp_path, monkeypatch):
    # a run of an earlier version took --mc-dropout and --temperature without dropout and
    # distillation; its checkpoint, and the resume command its Ctrl-C printed, must go on
    import dlcore.cli.homework_regularisation as command
    with monkeypatch.context() as earlier:
        earlier.setattr(command, "OPTIONS_OF_METHODS", {})
        arguments, checkpoint = interrupted_in_its_second_row(
            tmp_path, monkeypatch, "--mc-dropout", "7", "--temperature", "3")
    assert checkpoint.exists()
    for resume in ([*arguments, "--resume", str(checkpoint)],
                   ["homework", "regularisation", "--resume", str(checkpoint)]):
        resumed = CliRunner().invoke(main, resume)
        assert resumed.exit_code == 0, resumed.output


def test_a_resumed_run_s_total_adds_the_training_of_the_rows_before_the_resume(
        tmp_path, monkeypatch):
    """The 'total N s' of a resumed run counted only the resumed part: a table of two rows
    resumed after the first said the second row's seconds."""
    arguments, checkpoint = interrupted_in_its_second_row(tmp_path, monkeypatch)
    import dlcore.cli.homework_regularisation as command
    [(_, _, kept)] = dlcore.load(checkpoint).rows
    # the second row's training is not what is tested: the first row's figures stand for it
    monkeypatch.setattr(command.Experiment, "run", lambda self, method, teacher=None: dict(
        kept, seconds=None, net=None))
    monkeypatch.setattr(command, "adversarial_examples", lambda net, test, epsilon: kept[
        "examples"])
    resumed = CliRunner().invoke(main, [*arguments, "--resume", str(checkpoint)])
    assert resumed.exit_code == 0, resumed.output
    [total] = [line for line in resumed.stdout.splitlines() if line.startswith("total ")]
    since = float(total.split("(")[1].split(" s since")[0])
    assert total == (f"total {since + kept['seconds']:.0f} s ({since:.0f} s since the resume, "
                     f"{kept['seconds']:.0f} s of training before it)")


def test_resume_refuses_another_epochs_and_a_new_run_refuses_the_pending_checkpoint(
        tmp_path, monkeypatch):
    arguments, checkpoint = interrupted_in_its_second_row(tmp_path, monkeypatch)
    assert checkpoint.exists()
    runner = CliRunner()
    again = runner.invoke(main, arguments)
    assert again.exit_code == 1 and f"--resume {checkpoint}" in again.output, again.output
    more = runner.invoke(main, [*arguments, "--epochs", "3", "--resume", str(checkpoint)])
    assert more.exit_code == 2, more.output
    assert "--epochs 3 differs from the 1 the checkpoint was trained with" in more.output


def test_a_checkpoint_whose_figure_examples_were_damaged_is_refused_in_one_line(
        tmp_path, monkeypatch):
    """Examples of another shape (another run's figure, an edited file) resumed, and the
    figure at the end failed with numpy's "all the input array dimensions ... must match",
    after every row left had trained; values out of [0, 1] or classes that are not integers
    loaded as if sound. Both are refused at --resume, in one line."""
    import h5py

    arguments, checkpoint = interrupted_in_its_second_row(tmp_path, monkeypatch)
    runner = CliRunner()
    rows = dlcore.load(checkpoint)
    examples = rows.rows[0][2]["examples"]
    assert examples["attacked"].ndim >= 2
    damages = {"another shape": ("attacked", examples["attacked"][:, ..., :-1]),
               "values out of [0, 1]": ("attacked", examples["attacked"] + 2),
               "classes that are not integers": ("predicted",
                                                 examples["predicted"].astype(np.float32))}
    for damage, (part, value) in damages.items():
        copy = tmp_path / f"{damage}.h5"
        copy.write_bytes(checkpoint.read_bytes())
        with h5py.File(copy, "r+") as h5file:
            dataset = next(name for name in _dataset_names(h5file)
                           if name.endswith(f"examples/{part}"))
            del h5file[dataset]
            h5file[dataset] = value
        resumed = runner.invoke(main, [*arguments[:-1], str(tmp_path / damage),
                                       "--resume", str(copy)])
        assert resumed.exit_code in (1, 2), (damage, resumed.output)
        errors = [line for line in resumed.output.splitlines() if line.startswith("dlcore:")]
        assert len(errors) == 1 and ("examples" in errors[0] or "classes" in errors[0]), \
            (damage, resumed.output)
        assert "Traceback" not in resumed.output
        assert not (tmp_path / damage / "regularisation.csv").exists()


def _dataset_names(h5file):
    names = []
    h5file.visititems(lambda name, item: names.append(name) if hasattr(item, "shape") else None)
    return names


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGTERM") or sys.platform == "win32",
                    reason="POSIX termination signals")
def test_sigterm_saves_the_finished_rows_and_prints_the_resume_line(tmp_path):
    """``kill -TERM`` of a running table (a cluster's time limit): exit code 143 and the one
    line that resumes from the checkpoint of the rows finished."""
    out = tmp_path / "run"
    command = ["dlcore", "homework", "regularisation", "--train-size", "30", "--methods",
               "none,l2", "--epochs", "1", "--seeds", "500", "--backend", "cpu", "--out",
               str(out)]
    running = subprocess.Popen([sys.executable, "-m", *command], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "NUMBA_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 120
        while not (out / "checkpoint.h5").exists() and running.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.05)          # its first row is saved
        assert running.poll() is None, running.communicate()[1]
        running.send_signal(signal.SIGTERM)
        _, stderr = running.communicate(timeout=120)
    finally:
        if running.poll() is None:
            running.kill()
            running.communicate()
    # (the first run after a change of dlcore's source also says it compiles its kernels)
    said = [line for line in stderr.splitlines()
            if line.startswith("dlcore:") and "compiling kernels" not in line]
    assert running.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    assert len(said) == 1 and said[0].startswith(
        "dlcore: interrupted by SIGTERM: saved the finished rows after row "), said
    assert said[0].endswith(f"--resume {out / 'checkpoint.h5'}"), said[0]
    rows = dlcore.load(out / "checkpoint.h5").rows
    assert f"after row {len(rows)} of 1000 " in said[0]


def test_ctrl_c_while_the_outputs_are_written_resumes_without_training(tmp_path, monkeypatch):
    import dlcore.cli.homework_regularisation as command
    from dlcore.cli._common import INTERRUPTED_EXIT_CODE

    def interrupted(*arguments, **options):
        raise KeyboardInterrupt

    monkeypatch.setattr(command.viz, "save_curve_panels", interrupted)
    out = tmp_path / "run"
    runner = CliRunner()
    result = runner.invoke(main, ["homework", "regularisation", *TINY, "--methods", "none",
                                  "--train-size", "30", "--epochs", "1", "--out", str(out)])
    assert result.exit_code == INTERRUPTED_EXIT_CODE, result.output
    assert "saved the finished rows after row 1 of 1 (none, seed 0)" in result.output
    monkeypatch.undo()
    trained = []
    monkeypatch.setattr(command.Experiment, "run", lambda *arguments: trained.append(1))
    resumed = runner.invoke(main, ["homework", "regularisation", "--out", str(out),
                                   "--resume", str(out / "checkpoint.h5")])
    assert resumed.exit_code == 0, resumed.output
    assert trained == [] and (out / "regularisation_curves.png").exists()


def saved_checkpoint(path, seed=3):
    """A regularisation checkpoint of one finished row, written to ``path``."""
    from dlcore.cli.homework_regularisation import RegularisationRows
    rows = RegularisationRows()
    rows.rows = [("none", seed, {"train": 0.25, "test": 0.5, "fgsm": 0.75, "seconds": 1.5,
                                 "curves": None, "examples": None})]
    dlcore.save(rows, path)
    return rows


def in_a_fresh_program(*arguments):
    """A new Python (a fresh notebook, another shell): neither the command module nor its class
    imported. Not simulated here by removing them from this process: a command module attaches
    itself to the dlcore command again when imported again, which later tests would run."""
    return subprocess.run([sys.executable, *arguments], capture_output=True, text=True,
                          timeout=300, check=False)


def test_dlcore_load_opens_the_checkpoint_in_a_program_that_never_imported_the_command(
        tmp_path):
    rows = saved_checkpoint(tmp_path / "checkpoint.h5")
    code = ("import sys, dlcore; loaded = dlcore.load(sys.argv[1]); "
            "print(type(loaded).__module__, type(loaded).__name__, loaded.rows[0][:2])")
    completed = in_a_fresh_program("-c", code, str(tmp_path / "checkpoint.h5"))
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.split(maxsplit=2) == [
        "dlcore.cli.homework_regularisation", "RegularisationRows", f"{rows.rows[0][:2]}\n"]


def test_dlcore_info_checks_that_the_checkpoint_loads(tmp_path):
    """It is dlcore's own class: info loads it (and finds a damaged row), not "not one of
    dlcore's model classes", in a program that has not imported the command. The command
    line imports every command module, which registers the class: the check that decides
    whether info loads the file is run first, before dlcore.cli is imported (else this test
    passed without the class's entry in dlcore's table of models outside the package top)."""
    import h5py
    path = tmp_path / "checkpoint.h5"
    saved_checkpoint(path)
    with h5py.File(path, "a") as h5file:
        h5file["rows/00000"].attrs["seed"] = -3
    code = ("import sys\n"
            "from dlcore.io.hdf5 import why_load_is_not_checked\n"
            "assert not [name for name in sys.modules if name.startswith('dlcore.cli')]\n"
            "print('not checked because:', why_load_is_not_checked(sys.argv[1]))\n"
            "from dlcore.cli import main\n"
            "main(['info', sys.argv[1]], prog_name='dlcore')\n")
    completed = in_a_fresh_program("-c", code, str(path))
    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert completed.stdout.splitlines()[0] == "not checked because: None"
    assert "RegularisationRows rejects the stored state: row 00000 has no seed" in \
        (completed.stdout + completed.stderr).strip().splitlines()[-1]


@pytest.mark.parametrize("damage", ["a dataset", "a group without test", "a table of numbers"])
def test_a_checkpoint_whose_learning_curves_were_damaged_is_refused_in_one_line(
        tmp_path, damage):
    """The model-file fuzzer's find: curves replaced by a dataset failed with NumPy's
    IndexError ("only integers, slices ...") out of dlcore.load."""
    import h5py

    from dlcore.cli.homework_regularisation import RegularisationRows
    from dlcore.io import ModelFileError
    rows = RegularisationRows()
    rows.rows = [("none", 3, {"train": 0.25, "test": 0.5, "fgsm": 0.75, "seconds": 1.5,
                              "curves": {"train": [0.5, 0.25], "test": [0.75, 0.5]},
                              "examples": None})]
    path = tmp_path / "checkpoint.h5"
    dlcore.save(rows, path)
    assert dlcore.load(path).rows[0][2]["curves"] == {"train": [0.5, 0.25], "test": [0.75, 0.5]}
    with h5py.File(path, "r+") as h5file:
        curves = next(name for name in _dataset_names(h5file) if name.endswith("curves/test"))
        group = curves.rsplit("/", 1)[0]
        if damage == "a dataset":
            del h5file[group]
            h5file[group] = np.arange(3.0)
        elif damage == "a group without test":
            del h5file[curves]
        else:
            del h5file[curves]
            h5file[curves] = np.ones((2, 2))
    with pytest.raises(ModelFileError, match="learning curves are not two lists of numbers"):
        dlcore.load(path)


@pytest.mark.parametrize("damaged, problem", [
    ("rows", "'rows' is not a group of finished rows"),
    ("rows/00000", "row 00000 is not a group"),
    ("rows/00000/examples", "row 00000's adversarial examples are not a group of images")])
def test_a_checkpoint_whose_rows_were_replaced_by_datasets_is_refused_in_one_line(
        tmp_path, damaged, problem):
    """The model-file fuzzer's find (seed 83): the group of rows replaced by a dataset failed
    with NumPy's IndexError out of dlcore.load, as a row or its examples would."""
    import h5py

    from dlcore.cli.homework_regularisation import RegularisationRows
    from dlcore.io import ModelFileError
    rows = RegularisationRows()
    examples = {"attacked": np.full((2, 1, 2, 2), 0.5), "predicted": np.arange(2),
                "attacked_predicted": np.arange(2)}
    rows.rows = [("none", 3, {"train": 0.25, "test": 0.5, "fgsm": 0.75, "seconds": 1.5,
                              "curves": None, "examples": examples})]
    path = tmp_path / "checkpoint.h5"
    dlcore.save(rows, path)
    assert dlcore.load(path).rows[0][2]["examples"]["predicted"].tolist() == [0, 1]
    with h5py.File(path, "r+") as h5file:
        del h5file[damaged]
        h5file[damaged] = np.arange(3.0)
    with pytest.raises(ModelFileError, match=problem):
        dlcore.load(path)


@pytest.mark.skipif(not hasattr(signal, "SIGTERM") or sys.platform == "win32",
                    reason="POSIX termination signals")
def test_a_sigterm_just_after_a_row_is_saved_names_the_rows_the_file_holds(
        tmp_path, monkeypatch):
    """The race of a real SIGTERM as a row's checkpoint lands: the line said the row before
    ("after row 1") of a file holding two rows."""
    import dlcore.cli._common as common
    original_save, calls = common.save_model, []

    def save_then_terminated(model, path):
        original_save(model, path)
        calls.append(path)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)   # lands before the command notes the row

    monkeypatch.setattr(common, "save_model", save_then_terminated)
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["homework", "regularisation", "--train-size", "30",
                                       "--methods", "none,l2", "--epochs", "1", "--seeds", "3",
                                       "--backend", "cpu", "--out", str(out)])
    monkeypatch.undo()
    assert result.exit_code == 128 + signal.SIGTERM, result.output
    rows = dlcore.load(out / "checkpoint.h5").rows
    [said] = [line for line in result.output.splitlines() if line.startswith("dlcore:")]
    assert f"after row {len(rows)} of " in said, (len(rows), said)
