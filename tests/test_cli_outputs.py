"""Outputs that tell the truth: training records in model files, seen/unseen classes from them,
warnings when a model is evaluated on another data set, Fashion-MNIST's class names, samples
with a seed, the compiling notice, per-epoch progress off a terminal, --backend everywhere.

Oracles: what the commands were told (classes, data set, parameters), the records they wrote,
the words they print, and the pixels of PNGs written twice."""
import csv
import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import dlcore
from dlcore import datasets
from dlcore.backend import cache
from dlcore.cli import main
from dlcore.datasets.mnist import split_file_names

TINY_RBM = ["--epochs", "2", "--hidden", "16", "--backend", "cpu"]


def write_idx_folder(folder, per_class_train=30, per_class_test=10, classes=range(10)):
    """MNIST-like IDX files of mnist-5k digits of ``classes`` in ``folder``."""
    images, labels = datasets.load_mnist_5k()
    folder.mkdir(parents=True, exist_ok=True)
    for split, (start, stop) in (("train", (0, per_class_train)),
                                 ("test", (per_class_train, per_class_train + per_class_test))):
        rows = np.concatenate([np.flatnonzero(labels == k)[start:stop] for k in classes])
        images_name, labels_name = split_file_names(split)
        datasets.write_idx(folder / images_name, images[rows])
        datasets.write_idx(folder / labels_name, labels[rows])
    return folder


@pytest.fixture(scope="module")
def fake_fashion(tmp_path_factory):
    """$DLCORE_DATA with a fashion-mnist/ folder (digits standing in for garments: the command
    only needs the files, the names come from the data set's name)."""
    root = tmp_path_factory.mktemp("data")
    write_idx_folder(root / "fashion-mnist")
    return root


@pytest.fixture(scope="module")
def rbm_on_1_and_2(tmp_path_factory):
    out = tmp_path_factory.mktemp("rbm12")
    result = CliRunner().invoke(main, ["rbm", "train", "--digits", "1-2", *TINY_RBM,
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    return result, out / "model.h5"


# --------------------------------------------------------------------------------------------
# Training records
# --------------------------------------------------------------------------------------------
def test_rbm_train_records_the_data_set_classes_images_and_parameters(rbm_on_1_and_2):
    _, path = rbm_on_1_and_2
    record = dlcore.load(path).training_record_
    assert record["dataset"] == "mnist-5k" and record["classes"] == [1, 2]
    assert record["class_names"] == ["1", "2"]
    assert record["n_images"] == 2 * (500 - 100)          # 100 per class held out
    assert record["command"].endswith("rbm train")
    assert record["parameters"]["hidden"] == 16 and record["parameters"]["digits"] == "1-2"
    assert isinstance(record["command_line"], str)


def test_reconstruct_marks_classes_seen_and_unseen_from_the_record(rbm_on_1_and_2, tmp_path):
    _, path = rbm_on_1_and_2
    result = CliRunner().invoke(main, ["rbm", "reconstruct", str(path), "--digits", "0-3",
                                       "--backend", "cpu", "--out", str(tmp_path / "r.png")])
    assert result.exit_code == 0, result.output
    marks = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()[1:5]}
    assert marks == {"0": "no", "1": "yes", "2": "yes", "3": "no"}
    assert result.stdout.count("no (unseen)") == 2
    assert "mean over unseen digits" in result.stdout


def test_reconstruct_says_unknown_for_a_model_without_a_record(tmp_path):
    images, _ = datasets.load_mnist_5k()
    model = dlcore.BernoulliRBM(n_hidden=8, epochs=1, backend="cpu").fit(
        datasets.to_unit_interval(images[:200]))
    dlcore.save(model, tmp_path / "plain.h5")
    result = CliRunner().invoke(main, ["rbm", "reconstruct", str(tmp_path / "plain.h5"),
                                       "--digits", "0-1", "--backend", "cpu",
                                       "--out", str(tmp_path / "r.png")])
    assert result.exit_code == 0, result.output
    assert "yes" not in result.stdout and result.stdout.count("unknown") >= 2
    assert "no training record" in result.stdout


def test_reconstruct_warns_when_the_data_set_is_not_the_training_one(rbm_on_1_and_2, tmp_path):
    _, path = rbm_on_1_and_2
    folder = write_idx_folder(tmp_path / "digits", classes=(1, 2))
    result = CliRunner().invoke(main, ["rbm", "reconstruct", str(path), "--digits", "1-2",
                                       "--dataset", str(folder), "--backend", "cpu",
                                       "--out", str(tmp_path / "r.png")])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "trained on mnist-5k" in warnings[0]


# --------------------------------------------------------------------------------------------
# Fashion-MNIST's class names
# --------------------------------------------------------------------------------------------
def test_a_home_folder_given_quoted_or_after_an_equals_sign_is_expanded(tmp_path, monkeypatch):
    """The shell expands ~ neither in quotes (--dataset '~/idx') nor after an equals sign
    (--out=~/runs), and Click does not: the command looked for a folder named ~ in the
    current one ("the folder '~/idx' does not exist"), and --out made one there."""
    home, work = tmp_path / "home", tmp_path / "work"
    write_idx_folder(home / "idx", per_class_train=5, per_class_test=2, classes=range(1, 6))
    work.mkdir()
    # the compiled kernels stay where they are (their folder is under ~ unless set)
    monkeypatch.setenv("DLCORE_CACHE", str(cache.kernel_cache_folder().parent))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    # its figures (most of its second) are not in question
    from dlcore.cli import homework
    monkeypatch.setattr(homework, "write_task1_outputs", lambda *arguments: None)
    result = CliRunner().invoke(main, ["homework", "task1", "--dataset", "~/idx", "--epochs", "1",
                                       "--hidden", "2", "--test-digits", "1-5",
                                       "--backend", "cpu", "--out=~/runs"])
    assert result.exit_code == 0, result.output
    assert dlcore.load(home / "runs" / "model.h5").training_record_["dataset"] == str(
        home / "idx")
    assert not list(work.iterdir())


def test_class_names_live_beside_the_loaders():
    assert datasets.class_names("fashion-mnist")[:2] == ["T-shirt/top", "Trouser"]
    assert datasets.class_names("Fashion_MNIST")[9] == "Ankle boot"
    assert datasets.class_names("mnist-5k") == [str(k) for k in range(10)]
    assert datasets.class_names("/some/idx/folder", 3) == ["0", "1", "2"]
    assert datasets.class_noun("mnist") == "digit" and datasets.class_noun("fashion-mnist") \
        == "class"


def test_task1_on_fashion_mnist_names_garments_never_digits(fake_fashion, tmp_path,
                                                            monkeypatch):
    monkeypatch.setenv("DLCORE_DATA", str(fake_fashion))
    result = CliRunner().invoke(main, ["homework", "task1", "--dataset", "fashion-mnist",
                                       "--train-digits", "0-1", "--test-digits", "0-2",
                                       *TINY_RBM, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "digit" not in result.stdout
    for name in ("T-shirt/top", "Trouser", "Pullover", "mean over unseen classes"):
        assert name in result.stdout
    with open(tmp_path / "reconstruction_error.csv") as handle:
        assert next(csv.reader(handle))[0] == "class"
    record = dlcore.load(tmp_path / "model.h5").training_record_
    assert record["dataset"] == "fashion-mnist"
    assert record["class_names"] == ["T-shirt/top", "Trouser"]


def test_task1_on_fashion_mnist_echoes_the_class_names_and_writes_them_in_the_csv(
        fake_fashion, tmp_path, monkeypatch):
    # "--train-digits Sandal,Sneaker" was echoed "classes 5,7", and the CSV had class numbers
    # where the printed table has names
    monkeypatch.setenv("DLCORE_DATA", str(fake_fashion))
    result = CliRunner().invoke(main, ["homework", "task1", "--dataset", "fashion-mnist",
                                       "--train-digits", "Sandal,Sneaker", "--test-digits",
                                       "5-7", *TINY_RBM, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "images of classes Sandal (5), Sneaker (7) (fashion-mnist)" in result.stderr
    with open(tmp_path / "reconstruction_error.csv") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["class", "seen_in_training", "mse", "n_images", "class_name"]
    assert [(row[0], row[-1]) for row in rows[1:]] == [("5", "Sandal"), ("6", "Shirt"),
                                                       ("7", "Sneaker")]


def test_task1_on_digits_echoes_the_digits_alone(tmp_path):
    from dlcore.cli.homework import named_classes
    assert named_classes([1, 2, 3], "mnist-5k") == "1,2,3"


def test_task1_on_fashion_mnist_reconstructs_every_class_by_default(fake_fashion, tmp_path,
                                                                    monkeypatch):
    # the digits' homework leaves 0 out ("reconstruction on digits from 1 to 9"); a garment
    # data set has no such rule, and its class 0 (T-shirt/top) was missing from the table
    monkeypatch.setenv("DLCORE_DATA", str(fake_fashion))
    result = CliRunner().invoke(main, ["homework", "task1", "--dataset", "fashion-mnist",
                                       "--train-digits", "Sandal", *TINY_RBM,
                                       "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    with open(tmp_path / "reconstruction_error.csv") as handle:
        assert [row["class"] for row in csv.DictReader(handle)] == [str(k) for k in range(10)]
    assert "T-shirt/top" in result.stdout   # (digits keep 1-9: test_cli_rbm's task1 tests)


# --------------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------------
def pixels(path):
    with Image.open(path) as image:
        return np.asarray(image.convert("L"))


def test_rbm_sample_with_a_seed_is_reproducible_and_another_seed_differs(rbm_on_1_and_2,
                                                                         tmp_path):
    _, path = rbm_on_1_and_2
    runs = {}
    for name, seed in (("a", "7"), ("b", "7"), ("c", "8")):
        result = CliRunner().invoke(main, ["rbm", "sample", str(path), "--n", "4", "--steps",
                                           "3", "--seed", seed, "--backend", "cpu",
                                           "--out", str(tmp_path / f"{name}.png")])
        assert result.exit_code == 0, result.output
        runs[name] = pixels(tmp_path / f"{name}.png")
    assert np.array_equal(runs["a"], runs["b"]) and not np.array_equal(runs["a"], runs["c"])


def test_rbm_sample_shows_probabilities_unless_binary_is_asked(rbm_on_1_and_2, tmp_path):
    _, path = rbm_on_1_and_2
    for flag, kind in (([], "probabilities"), (["--binary"], "binary states")):
        result = CliRunner().invoke(main, ["rbm", "sample", str(path), "--n", "2", "--steps",
                                           "2", *flag, "--out", str(tmp_path / "s.png")])
        assert result.exit_code == 0, result.output
        assert kind in result.stdout


def test_gibbs_probabilities_are_those_of_the_last_step():
    rbm = dlcore.BernoulliRBM(n_hidden=6, epochs=1, backend="cpu").fit(
        datasets.to_unit_interval(datasets.load_mnist_5k()[0][:100]))
    start = (np.arange(2 * 784).reshape(2, 784) % 3 == 0).astype(np.float32)
    calls = rbm.sample_calls_
    probabilities = rbm.gibbs(start, steps=3, probabilities=True)
    rbm.sample_calls_ = calls                       # the same Philox draws again
    states = rbm.gibbs(start, steps=3)
    assert probabilities.dtype == np.float32 and 0 < probabilities.min()
    assert probabilities.max() < 1 and not np.isin(probabilities, (0, 1)).all()
    assert set(np.unique(states)) <= {0.0, 1.0}
    # the binary states of the last step were drawn from exactly these probabilities
    assert np.all(probabilities[states == 1] > 0) and probabilities.shape == states.shape


# --------------------------------------------------------------------------------------------
# --backend on every command that computes; its errors in neutral words
# --------------------------------------------------------------------------------------------
def test_rbm_reconstruct_and_sample_take_backend(rbm_on_1_and_2, tmp_path):
    _, path = rbm_on_1_and_2
    for arguments in (["rbm", "reconstruct", str(path), "--digits", "1"],
                      ["rbm", "sample", str(path), "--n", "2", "--steps", "1"]):
        result = CliRunner().invoke(main, [*arguments, "--backend", "reference",
                                           "--out", str(tmp_path / "x.png")])
        assert result.exit_code == 0, result.output


def test_an_unusable_cuda_backend_is_explained_without_python_spelling(monkeypatch):
    import dlcore.backend as backend
    monkeypatch.setattr(backend, "cuda_status", lambda: (False, "no GPU here"))
    monkeypatch.setattr(backend, "_instances", {})
    with pytest.raises(RuntimeError) as error:
        backend.get_backend("cuda")
    assert "no GPU here" in str(error.value) and "cpu" in str(error.value)
    assert "backend=" not in str(error.value)


# --------------------------------------------------------------------------------------------
# Progress and the compiling notice
# --------------------------------------------------------------------------------------------
def test_training_off_a_terminal_prints_one_line_per_epoch(rbm_on_1_and_2):
    result, _ = rbm_on_1_and_2
    lines = [line for line in result.stderr.splitlines() if line.startswith("training: epoch")]
    assert [line.split()[2] for line in lines] == ["1/2", "2/2"]
    assert all("reconstruction error" in line for line in lines)


def test_the_cache_stamp_is_left_once_per_source_of_dlcore(tmp_path, monkeypatch):
    import dlcore.backend as backend

    def create_the_cpu_backend():
        monkeypatch.setattr(backend, "_instances", {})
        backend.get_backend("cpu")

    monkeypatch.setenv("DLCORE_CACHE", str(tmp_path))
    assert not cache.kernels_compiled_before()
    create_the_cpu_backend()
    assert cache.kernels_compiled_before()
    # an edit of any dlcore file (or a git pull of an editable install) compiles every
    # kernel again: only the newest stamp stays
    monkeypatch.setattr(cache, "package_source_digest", lambda: "f" * 64)
    assert not cache.kernels_compiled_before()
    create_the_cpu_backend()
    assert cache.kernels_compiled_before()
    stamps = list(cache._cpu_kernel_folder().glob("compiled-for-*"))
    assert [stamp.name for stamp in stamps] == ["compiled-for-" + "f" * 16]


def test_the_compiling_notice_is_said_as_a_dlcore_kernel_compiles_once_a_process(
        monkeypatch, capsys):
    # said once after an install, at the backend's creation ("about 15 s"), the notice was
    # missing where each kind of model first compiles its own kernels: cnn train's first
    # epoch took 67 s, the doctor's conv2d check 73 s, unannounced
    from types import SimpleNamespace

    from numba.core import event

    import dlcore.backend as backend
    from dlcore.rbm import trainer

    def compiling(py_func):
        with event.trigger_event("numba:compile",
                                 data={"dispatcher": SimpleNamespace(py_func=py_func)}):
            pass
        return capsys.readouterr().err.count("dlcore: compiling kernels")

    monkeypatch.setattr(backend, "_compiling_listener", [])
    monkeypatch.setattr(backend, "_compiling_said", [])
    backend._announce_compiling()
    try:
        assert compiling(lambda: None) == 0            # not dlcore's: nothing said
        assert compiling(trainer.ContrastiveDivergence.step) == 1
        assert compiling(trainer.ContrastiveDivergence.step) == 0   # once a process
    finally:
        event.unregister("numba:compile", backend._compiling_listener[0])


def test_a_cache_folder_that_cannot_be_made_keeps_the_notice_without_failing(tmp_path,
                                                                             monkeypatch):
    blocked = tmp_path / "file"
    blocked.write_bytes(b"")   # a file where the cache folder would be
    monkeypatch.setenv("DLCORE_CACHE", str(blocked / "cache"))
    cache.remember_compiling()   # no exception: the kernels compile in every run there
    assert cache.kernels_compiled_before() is False


@pytest.mark.slow
def test_a_cold_cache_says_compiling_once_and_a_warm_one_says_nothing(tmp_path):
    script = ("import numpy as np, dlcore; dlcore.BernoulliRBM(n_hidden=4, epochs=1, "
              "backend='cpu').fit(np.zeros((20, 9), np.float32))")
    environment = {**os.environ, "DLCORE_CACHE": str(tmp_path)}
    runs = [subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           env=environment, timeout=900) for _ in range(2)]
    assert all(run.returncode == 0 for run in runs), runs[0].stderr[-2000:]
    assert runs[0].stderr.count("dlcore: compiling kernels") == 1
    assert "compiling kernels" not in runs[1].stderr


def test_the_rbm_curve_shows_the_free_energy_gap_when_it_was_measured(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from dlcore import viz
    from dlcore.cli._digits import save_training_curve
    figures = []
    save = viz._save_figure
    monkeypatch.setattr(viz, "_save_figure",
                        lambda figure, path, **options: (figures.append(figure),
                                                         save(figure, path, **options)))
    measured = SimpleNamespace(history={"reconstruction_error": [0.05, 0.04],
                                        "free_energy_gap": [1.5, 2.5]})
    unmeasured = SimpleNamespace(history={"reconstruction_error": [0.05, 0.04],
                                          "free_energy_gap": [float("nan")] * 2})
    save_training_curve(measured, tmp_path / "with_gap.png")
    save_training_curve(unmeasured, tmp_path / "without_gap.png")
    with_gap, without_gap = figures
    assert len(with_gap.axes) == 2 and "free-energy gap" in with_gap.axes[1].get_ylabel()
    assert len(without_gap.axes) == 1


def test_a_dbns_upper_rbms_error_is_per_visible_unit_not_per_pixel(capsys):
    from types import SimpleNamespace

    from dlcore.cli._dbn import LayerProgress
    progress = LayerProgress(SimpleNamespace(layers_=[784, 50, 30]))
    for layer in (1, 2):
        progress(layer, 2, 1, 1, 10, 10, 0.05)
    progress.close()
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["RBM 1/2 (784-50): epoch 1/1  reconstruction error 0.0500 per visible unit "
                     "on the training batches",
                     "RBM 2/2 (50-30): epoch 1/1  reconstruction error 0.0500 per visible unit "
                     "on the training batches"]


@pytest.fixture
def auto_picks_the_cpu_afresh(monkeypatch):
    """auto not yet resolved in this process, and no GPU: what a laptop's command meets."""
    import dlcore.backend as backend_module
    monkeypatch.setattr(backend_module, "_fallback_reported", False)
    monkeypatch.setattr(backend_module, "cuda_status",
                        lambda: (False, backend_module.NO_DRIVER_REASON))
    pending = getattr(backend_module, "_auto_note", [])
    pending.clear()
    yield
    pending.clear()


NOTE_OF_THE_CPU = "dlcore: note: running on the CPU: no NVIDIA GPU driver was found."


def test_convert_and_a_refused_input_say_no_backend_note(tmp_path, auto_picks_the_cpu_afresh):
    # "dlcore: backend 'auto' uses the cpu: ..." came before convert's output and before the
    # error line of a refused input, where it read as one more error
    from dlcore.layers import Dense
    model_file = tmp_path / "model.h5"
    dlcore.save(dlcore.models.Sequential([Dense(2, input_shape=(3,))]).build(), model_file)
    import dlcore.backend as backend_module
    backend_module._fallback_reported = False   # the build above resolved auto
    getattr(backend_module, "_auto_note", []).clear()
    converted = CliRunner().invoke(main, ["convert", str(model_file),
                                          str(tmp_path / "out.keras")])
    refused = CliRunner().invoke(main, ["rbm", "evaluate", str(model_file), "--digits", "x"])
    assert converted.exit_code == 0, converted.output
    assert "note" not in converted.stderr and "cpu" not in converted.stderr.lower()
    assert refused.exit_code != 0 and refused.stderr.startswith("dlcore: error:"), \
        refused.stderr


def test_a_command_that_trains_on_the_cpu_auto_chose_says_so_as_a_note(
        tmp_path, auto_picks_the_cpu_afresh):
    result = CliRunner().invoke(main, ["rbm", "train", "--digits", "1", "--epochs", "1",
                                       "--hidden", "4", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines().count(NOTE_OF_THE_CPU) == 1, result.stderr


def test_a_run_into_a_folder_of_an_earlier_runs_outputs_says_it_replaces_them(tmp_path):
    # the outputs were replaced silently, and another command's files stayed mixed in
    run = ["rbm", "train", "--digits", "1", *TINY_RBM, "--out", str(tmp_path / "run")]
    first, second = (CliRunner().invoke(main, run) for _ in range(2))
    assert first.exit_code == second.exit_code == 0, second.output
    line = f"dlcore: replacing the outputs of an earlier run in {tmp_path / 'run'}"
    assert line not in first.stderr and f"{line}\n" in second.stderr
    (tmp_path / "run" / "reconstruction_error.csv").write_text("task1's table")
    third = CliRunner().invoke(main, run)
    assert f"{line}; reconstruction_error.csv of another run stays" in third.stderr


class _Terminal:
    """A stream that says it is a terminal, and the screen it would show: a line longer than
    ``columns`` wraps, ``\\r`` goes back to the start of the row the cursor is on."""

    def __init__(self, columns):
        self.columns, self.written = columns, []

    def isatty(self):
        return True

    def write(self, text):
        self.written.append(text)

    def flush(self):
        pass

    def screen(self):
        rows, row, column = [[]], 0, 0
        for char in "".join(self.written):
            if char in "\r\n":
                column = 0
                if char == "\n":
                    row += 1
                    rows.append([])
                continue
            if column == self.columns:
                row, column = row + 1, 0
                rows.append([])
            rows[row][column:column + 1] = [char]
            column += 1
        return ["".join(chars).rstrip() for chars in rows if "".join(chars).strip()]


@pytest.mark.parametrize("label, unit", [
    ("training", "per standardised pixel on the training batches"),
    ("RBM 2/3 (500-500)", "per visible unit on the training batches")])
def test_the_progress_line_fits_an_80_column_terminal_and_keeps_each_epochs_line(
        monkeypatch, label, unit):
    from dlcore.cli._common import EpochProgress
    terminal = _Terminal(80)
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setattr(EpochProgress, "REDRAW_EVERY", 0)
    progress = EpochProgress(label, "reconstruction error", unit)
    for epoch in (1, 2, 3):
        for batch in range(1, 51):
            progress(epoch, 3, batch, 50, 0.05 / epoch)
    progress.close()
    screen = terminal.screen()
    assert all(len(piece) < 80 for text in terminal.written
               for piece in text.replace("\n", "\r").split("\r")), "a line wraps"
    key = f"{label}: reconstruction error {unit}"
    assert screen == [key if len(key) < 80 else f"reconstruction error {unit}",
                      f"{label}: epoch 1/3  reconstruction error 0.0500",
                      f"{label}: epoch 2/3  reconstruction error 0.0250",
                      f"{label}: epoch 3/3  reconstruction error 0.0167"]


def test_a_running_progress_line_draws_a_bar_and_the_unit_where_they_fit(monkeypatch):
    from dlcore.cli._common import EpochProgress
    terminal = _Terminal(200)
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setenv("COLUMNS", "200")
    progress = EpochProgress("training", "loss", "per image")
    progress(1, 2, 5, 10, 0.5)
    assert terminal.screen()[-1].startswith("training  [#########---------")
    assert "25%  epoch 1/2  loss 0.5000 per image" in terminal.screen()[-1]
    progress(1, 2, 10, 10, 0.25)
    progress(2, 2, 3, 10, 0.2)
    progress.close()   # as after Ctrl-C: the cursor on a new line
    assert terminal.screen()[0] == "training: epoch 1/2  loss 0.2500 per image"
    assert "".join(terminal.written).endswith("\n")


def test_the_filters_figure_says_what_it_shows_and_that_mid_grey_is_zero(tmp_path,
                                                                         monkeypatch):
    from types import SimpleNamespace

    from dlcore import viz
    from dlcore.cli._digits import save_filters
    figures = []
    save = viz._save_figure
    monkeypatch.setattr(viz, "_save_figure",
                        lambda figure, path, **options: (figures.append(figure),
                                                         save(figure, path, **options)))
    # two filters of 2x2 pixels: one mostly positive, one mostly negative, each with a zero
    weights = np.array([[[0.0, 0.5], [2.0, -1.0]], [[0.0, -0.3], [-0.6, 0.2]]])
    save_filters(SimpleNamespace(W=weights.reshape(2, 4).T), tmp_path / "filters.png")
    figure, = figures
    assert "filters" in figure.texts[0].get_text() and "2 tiles of 2x2" in \
        figure.texts[0].get_text()
    grid_axes, key_axes = figure.axes
    grid = grid_axes.images[0].get_array()
    zoom = 2
    # a weight of zero is mid-grey in both tiles; each tile's largest |weight| is black or white
    assert grid[0, 0] == grid[0, 3 * zoom] == 128
    assert grid[2, 0] == 255 and grid[2, 3 * zoom] == 0
    assert [label.get_text() for label in key_axes.get_xticklabels()] == ["-m", "0", "+m"]
    assert "weight" in key_axes.get_xlabel() and "0.6 to 2" in key_axes.get_xlabel()


@pytest.mark.parametrize("sample_hidden, up", [(False, "Q(h = 1 | x)"), (True, "h ~ Q(h | x)")])
def test_the_reconstructions_figure_says_they_are_held_out_images_after_one_up_down_pass(
        tmp_path, monkeypatch, sample_hidden, up):
    # task1's reconstructions.png had row labels and no title: of which images, made how?
    from types import SimpleNamespace

    from dlcore import viz
    from dlcore.cli._digits import save_reconstruction_grid
    figures = []
    save = viz._save_figure
    monkeypatch.setattr(viz, "_save_figure",
                        lambda figure, path, **options: (figures.append(figure),
                                                         save(figure, path, **options)))
    images, labels = np.zeros((4, 16)), np.array([1, 1, 2, 2])
    rbm = SimpleNamespace(reconstruct=lambda rows: rows)
    save_reconstruction_grid(rbm, images, labels, [(1, True, 0, 2), (2, False, 0, 2)],
                             tmp_path / "reconstructions.png", sample_hidden=sample_hidden)
    figure, = figures
    assert figure.texts[0].get_text() == ("held-out images above their reconstructions: one "
                                          f"up-down pass x -> {up} -> P(x' = 1 | h)")


# --------------------------------------------------------------------------------------------
# Outputs the user may not write
# --------------------------------------------------------------------------------------------
_INVOKE_EACH = """
import json, sys
from click.testing import CliRunner
from dlcore.cli import main
print(json.dumps([(result.exit_code, result.output.strip().splitlines())
                  for result in (CliRunner().invoke(main, words)
                                 for words in json.loads(sys.argv[1]))]))
"""


def without_root_rights():
    """The words that start a process that file permissions bind: none for a user; for root
    (these tests' helpers run as root, whom no permission stops), setpriv dropping root's
    capabilities, which still reaches pytest's folders (another user, nobody, could not:
    they are root's alone). Skips the test where setpriv is missing or may not drop them."""
    if os.geteuid() != 0:
        return []
    prefix = ["setpriv", "--bounding-set=-all", "--inh-caps=-all"]
    if shutil.which("setpriv") is None or subprocess.run(
            [*prefix, "true"], capture_output=True).returncode != 0:
        pytest.skip("needs setpriv, allowed to drop root's rights (CAP_SETPCAP)")
    return prefix


def run_without_root_rights(commands, temporary_folder=None):
    """Each dlcore command line of ``commands`` in one process that file permissions bind:
    as root (these tests' helpers run as root, whom no permission stops), root without its
    capabilities (setpriv), which still reaches pytest's folders (another user, nobody, could
    not: they are root's alone). [(exit code, output lines)] per command.
    ``temporary_folder``: the process's $TMPDIR (where a command rescues a trained model)."""
    prefix = without_root_rights()
    environment = dict(os.environ, **({"TMPDIR": str(temporary_folder)}
                                      if temporary_folder is not None else {}))
    result = subprocess.run([*prefix, sys.executable, "-c", _INVOKE_EACH, json.dumps(commands)],
                            capture_output=True, text=True, timeout=300, env=environment)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_outputs_the_user_may_not_write_are_refused_in_one_line_and_nothing_is_written(
        rbm_on_1_and_2, tmp_path):
    """A write-protected --out file (chmod a-w) was replaced, its protection dropped (the new
    file is renamed over it, which the folder allows); a folder the user may not write in was
    refused without a reason. Now one line each, before the command works, and nothing is
    written."""
    _, model_file = rbm_on_1_and_2
    protected = tmp_path / "keep.png"
    protected.write_bytes(b"the user's own picture")
    protected.chmod(0o444)
    closed = tmp_path / "closed"
    closed.mkdir()
    closed.chmod(0o555)
    outcomes = run_without_root_rights([
        ["rbm", "sample", str(model_file), "--n", "4", "--steps", "1", "--out", str(protected)],
        ["rbm", "sample", str(model_file), "--n", "4", "--steps", "1",
         "--out", str(closed / "samples.png")],
        ["homework", "task1", "--out", str(closed)],
        ["homework", "task1", "--out", str(closed / "task1")]])
    said = [(code, [line for line in lines if line.startswith("dlcore: error")])
            for code, lines in outcomes]
    assert said[0][0] == 2 and len(said[0][1]) == 1 and "is write-protected" in said[0][1][0]
    assert f"chmod u+w {protected}" in said[0][1][0]
    for code, lines in said[1:3]:
        assert code == 1 and len(lines) == 1, lines
        assert "cannot write in the output folder" in lines[0] and "Permission denied" in lines[0]
    code, lines = said[3]
    assert code == 1 and lines == [f"dlcore: error: cannot create the output folder "
                                   f"{closed / 'task1'}: Permission denied; choose another "
                                   f"with --out"]
    assert protected.read_bytes() == b"the user's own picture"
    assert list(closed.iterdir()) == []
    assert not any("training:" in line for _, lines in outcomes for line in lines)


def test_a_png_out_in_a_hand_in_folder_is_refused_only_where_it_is_a_new_file(
        rbm_on_1_and_2, tmp_path, monkeypatch):
    """A hand-in folder (mode 555) of files the student may write (mode 666): `rbm sample
    --out handin/samples.png` was refused ("cannot write in the output folder"), where the
    file is written in place as open() writes it (dlcore.io.atomic's own real-permission test
    writes it so); a new file there is still refused."""
    handin = tmp_path / "handin"
    handin.mkdir()
    (handin / "samples.png").write_bytes(b"the student's old picture")
    real_access = os.access
    # root may write anywhere: the system's answers for a student in the hand-in folder
    monkeypatch.setattr(os, "access", lambda path, mode, **options: (
        os.fspath(path) != str(handin) and real_access(path, mode, **options)))
    monkeypatch.setattr("dlcore.cli._common._why_unwritable", lambda folder: "Permission denied")
    sample = ["rbm", "sample", str(rbm_on_1_and_2[1]), "--n", "4", "--steps", "1", "--out"]
    monkeypatch.setattr("dlcore.viz.save_tiles", lambda *arguments, **options: None)
    result = CliRunner().invoke(main, [*sample, str(handin / "samples.png")])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, [*sample, str(handin / "new.png")])
    assert result.exit_code == 1 and result.stderr.splitlines()[-1] == (
        f"dlcore: error: cannot write in the output folder {handin}: Permission denied; choose "
        f"another with --out")


def test_model_files_the_user_write_protected_are_kept_and_refused_in_one_line(
        rbm_on_1_and_2, tmp_path):
    """dlcore.save onto a write-protected file (chmod 444), and so `convert`'s output and a
    training command's model.h5 in --out, replaced it and dropped its protection (the atomic
    rename); now one line naming the file and chmod u+w, the file untouched: a training
    command's own model file, and its figures, before it trains."""
    _, model_file = rbm_on_1_and_2
    runs, figures, converted = tmp_path / "runs", tmp_path / "figures", tmp_path / "out.h5"
    runs.mkdir()
    figures.mkdir()
    protected_files = (converted, runs / "model.h5", figures / "filters.png")
    for protected in protected_files:
        protected.write_bytes(b"the user's own file")
        protected.chmod(0o444)
    outcomes = run_without_root_rights([
        ["convert", str(model_file), str(converted), "--to", "dlcore"],
        ["rbm", "train", "--digits", "1-2", *TINY_RBM, "--out", str(runs)],
        ["rbm", "train", "--digits", "1-2", *TINY_RBM, "--out", str(figures)]], tmp_path)
    said = [(code, [line for line in lines if line.startswith("dlcore: error")])
            for code, lines in outcomes]
    for (code, lines), protected in zip(said, protected_files):
        assert code == 2 and len(lines) == 1, lines   # convert's too: before it reads
        assert f"'{protected}'" in lines[0] and "is write-protected: " in lines[0]
        assert f"(chmod u+w {protected})" in lines[0]
        assert protected.read_bytes() == b"the user's own file"
        assert protected.stat().st_mode & 0o777 == 0o444
    assert "choose another --out" in said[1][1][0] and "choose another --out" in said[2][1][0]
    # refused before training
    assert os.listdir(runs) == ["model.h5"] and os.listdir(figures) == ["filters.png"]


@pytest.mark.parametrize("command, protected", [
    (["homework", "pretraining", "--rows", "dbn,shallow", "--layers", "784-8-8", "--epochs",
      "1"], "pretraining_curves.png"),
    (["homework", "pretraining", "--rows", "shallow", "--layers", "784-8-8", "--epochs", "1"],
     "shallow_net.h5"),
    (["homework", "regularisation", "--methods", "none", "--epochs", "1"],
     "adversarial_examples.png"),
    (["homework", "samplers", "--samplers", "cd1,pcd", "--epochs", "1"], "pcd.h5"),
    (["homework", "samplers", "--samplers", "cd1", "--epochs", "1"], "samples.png"),
    (["homework", "task1", "--epochs", "1"], "reconstruction_error.csv"),
    (["rbm", "train", "--digits", "1-2", "--epochs", "1"], "training_curve.png"),
    (["dbn", "pretrain", "--layers", "784-8-8", "--epochs-per-layer", "1"],
     "filters_layer2.png")])
def test_every_file_a_training_command_writes_is_checked_before_it_trains(
        command, protected, tmp_path, monkeypatch):
    """homework pretraining, regularisation and samplers checked none of their files (its
    models, table, figures) before training, and the others their model alone: a
    write-protected figure or table was refused only after the training, minutes later.
    Each is now refused in one line before anything is trained."""
    out = tmp_path / "out"
    out.mkdir()
    (out / protected).write_bytes(b"the user's own file")
    real_access = os.access
    # root may write any file: the system's answer for a student (chmod 444)
    monkeypatch.setattr(os, "access", lambda path, mode, **options: (
        os.path.basename(path) != protected and real_access(path, mode, **options)))
    result = CliRunner().invoke(main, [*command, "--backend", "cpu", "--out", str(out)])
    assert result.exit_code == 2, result.output
    line, = result.stderr.splitlines()   # no line announcing a training that will not run
    assert line.startswith("dlcore: error")
    assert f"'{out / protected}', which this command writes, is write-protected" in line
    assert os.listdir(out) == [protected]
    assert (out / protected).read_bytes() == b"the user's own file"


def test_a_trained_model_whose_file_is_found_write_protected_is_saved_elsewhere(
        rbm_on_1_and_2, tmp_path, monkeypatch):
    """A model file found write-protected only as the trained model is saved (one the
    command did not check before training: homework samplers' cd1.h5, or protected
    meanwhile) is refused, and the trained model saved to the temporary folder, not lost."""
    from dlcore.cli._common import save_trained_model
    from dlcore.io import WriteProtectedError, atomic
    target, spare = tmp_path / "cd1.h5", tmp_path / "spare"
    spare.mkdir()
    target.write_bytes(b"the user's own file")

    def protected(path):   # root may write any file: the check's answer for a student
        if os.path.abspath(path) == str(target):
            raise WriteProtectedError(path)
    monkeypatch.setattr(atomic, "refuse_write_protected", protected)
    monkeypatch.setattr(tempfile, "tempdir", str(spare))
    with pytest.raises(WriteProtectedError) as refused:
        save_trained_model(dlcore.load(rbm_on_1_and_2[1]), target)
    rescued, = spare.glob("dlcore-rescued-*/cd1.h5")
    assert refused.value.rescued == rescued and dlcore.load(rescued).n_hidden == 16
    assert target.read_bytes() == b"the user's own file"


def test_a_model_file_on_a_read_only_disk_is_not_called_write_protected(
        rbm_on_1_and_2, tmp_path, monkeypatch):
    """A model file on a read-only file system (a mounted hand-in) was refused as
    write-protected, naming chmod u+w, which cannot help there; and, so refused once the
    model was trained, the model was rescued only by that wrong name. It is a folder that
    takes no file, with a read-only disk's words, and the trained model is still rescued."""
    from dlcore.cli._common import save_trained_model
    from dlcore.io import FolderNotWritableError
    target, spare = tmp_path / "model.h5", tmp_path / "spare"
    spare.mkdir()
    target.write_bytes(b"the hand-in's file")
    real_access, real_statvfs = os.access, os.statvfs

    class ReadOnly:   # only os.statvfs's flag is read
        f_flag = os.ST_RDONLY

    def on_the_read_only_disk(path):
        return os.path.abspath(path).startswith(str(tmp_path / "model"))
    # root may write any file and mount no disk in a test: the system's answers for the disk
    monkeypatch.setattr(os, "access", lambda path, mode, **options: (
        False if on_the_read_only_disk(path) else real_access(path, mode, **options)))
    monkeypatch.setattr(os, "statvfs", lambda path: (
        ReadOnly() if on_the_read_only_disk(path) else real_statvfs(path)))
    monkeypatch.setattr(tempfile, "tempdir", str(spare))
    with pytest.raises(FolderNotWritableError) as refused:
        save_trained_model(dlcore.load(rbm_on_1_and_2[1]), target)
    message = str(refused.value)
    assert refused.value.errno == errno.EROFS and "\n" not in message
    assert message.startswith(f"cannot write {target}: read-only file system in its folder")
    assert "chmod" not in message
    rescued, = spare.glob("dlcore-rescued-*/model.h5")
    assert refused.value.rescued == rescued and dlcore.load(rescued).n_hidden == 16
    assert target.read_bytes() == b"the hand-in's file"


def test_the_compiling_notice_comes_after_the_lines_before_it_and_not_from_workers():
    # 'dlcore doctor 2>&1 | tee': its buffered stdout lines came after the notice, which was
    # said in the middle of them; each worker of GridSearchCV(n_jobs=2) said it again
    script = """
import multiprocessing
from types import SimpleNamespace
from numba.core import event
import dlcore.backend as backend
from dlcore.rbm import trainer

def compiling():
    data = {"dispatcher": SimpleNamespace(py_func=trainer.ContrastiveDivergence.step)}
    with event.trigger_event("numba:compile", data=data):
        pass

backend._announce_compiling()
print("a line before")
worker = multiprocessing.get_context("fork").Process(target=compiling)
worker.start()
worker.join()
compiling()
print("a line after")
"""
    run = subprocess.run([sys.executable, "-c", script], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:]
    lines = [line for line in run.stdout.splitlines() if line.strip()]
    assert lines == ["a line before", dlcore.backend.COMPILING_NOTICE, "a line after"], lines


@pytest.mark.parametrize("stdout", ["None", "closed"])
def test_the_compiling_notice_is_said_by_a_program_without_a_stdout(stdout):
    # the flush of stdout before the notice raised inside Numba's compilation (a program run
    # with pythonw or '>&-' has sys.stdout None; one whose stdout was closed, a ValueError)
    script = f"""
import sys
from types import SimpleNamespace
from numba.core import event
import dlcore.backend as backend
from dlcore.rbm import trainer

backend._announce_compiling()
if {stdout == "closed"}:
    sys.stdout.close()
else:
    sys.stdout = None
data = {{"dispatcher": SimpleNamespace(py_func=trainer.ContrastiveDivergence.step)}}
with event.trigger_event("numba:compile", data=data):
    pass
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stderr.strip() == dlcore.backend.COMPILING_NOTICE


def test_the_compiling_notice_promises_no_later_run_where_the_cache_cannot_be_written(tmp_path):
    # after "cannot write the kernel cache ...; kernels will compile again in every run" the
    # notice said "(once: later runs load them from the kernel cache)"
    script = """
from types import SimpleNamespace
from numba.core import event
import dlcore.backend as backend
from dlcore.rbm import trainer

backend._announce_compiling()
data = {"dispatcher": SimpleNamespace(py_func=trainer.ContrastiveDivergence.step)}
with event.trigger_event("numba:compile", data=data):
    pass
"""
    (tmp_path / "file").write_text("")
    environment = {**os.environ, "DLCORE_CACHE": str(tmp_path / "file" / "kernels")}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=environment, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stderr.strip().splitlines()
    assert lines[0].startswith("dlcore: cannot write the kernel cache"), lines
    assert "later runs load them" not in run.stderr, lines
    assert lines[1:] == [dlcore.backend.COMPILING_EVERY_RUN_NOTICE], lines
