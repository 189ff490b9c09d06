"""The command line: homework task1, rbm train/reconstruct/sample, info, and one-line errors."""
import csv
import subprocess
import sys

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import dlcore
from conftest import assert_wrote
from dlcore.cli import main

TINY = ["--epochs", "3", "--hidden", "25", "--backend", "cpu"]


@pytest.fixture(scope="module")
def task1_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("task1")
    result = CliRunner().invoke(main, ["homework", "task1", *TINY, "--out", str(out)])
    return result, out


def test_task1_writes_every_promised_file(task1_run):
    result, out = task1_run
    assert_wrote(result, out, ["model.h5", "filters.png", "reconstructions.png",
                               "training_curve.png", "reconstruction_error.csv"])


def test_task1_model_file_is_a_loadable_rbm_that_h5py_opens(task1_run):
    _, out = task1_run
    assert isinstance(dlcore.load(out / "model.h5"), dlcore.BernoulliRBM)
    with h5py.File(out / "model.h5", "r") as f:
        assert f["W"].shape == (784, 25)


def test_task1_filters_show_one_28x28_tile_per_hidden_unit(task1_run):
    _, out = task1_run
    width, height = Image.open(out / "filters.png").size
    assert width >= 2 * 5 * 28 and height >= 2 * 5 * 28   # 25 tiles: 5 x 5, zoomed twice


def test_task1_prints_and_writes_the_error_per_digit_marking_unseen_ones(task1_run):
    result, out = task1_run
    with open(out / "reconstruction_error.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["digit"]) for r in rows] == list(range(1, 10))
    assert [r["seen_in_training"] for r in rows] == ["true"] * 5 + ["false"] * 4
    assert all(int(r["n_images"]) == 100 and float(r["mse"]) > 0
               for r in rows)
    assert result.stdout.count("no (unseen)") == 4


def test_task1_says_that_its_table_measures_held_out_images_and_how(task1_run):
    # the training lines above the table measure training batches: a student must not read the
    # table's "seen in training: yes" rows as errors on images the RBM was trained on
    result, out = task1_run
    lines = result.stdout.splitlines()
    header = next(k for k, line in enumerate(lines) if "seen in training" in line)
    with open(out / "reconstruction_error.csv") as handle:
        n_images = sum(int(row["n_images"]) for row in csv.DictReader(handle))
    assert f"held-out images ({n_images}, none of them trained on)" in lines[header - 1]
    assert "Q(h = 1 | x)" in lines[header - 1], lines[header - 1]


def test_task1_names_the_measure_of_its_training_lines_table_and_csv(task1_run):
    # the training lines (training batches, sampled h) and the table (held-out images,
    # mean-field) are different measures: each says which, with its unit
    result, out = task1_run
    epoch_lines = [line for line in result.stderr.splitlines() if "epoch" in line]
    assert len(epoch_lines) == 3 and all(
        line.endswith("per pixel on the training batches") for line in epoch_lines), epoch_lines
    assert "mean squared error per pixel (the training lines': on the training batches" \
        in result.stdout
    with open(out / "reconstruction_error.csv") as handle:
        assert next(csv.reader(handle))[2] == "mse"


def test_task1_trains_the_slides_plain_update_when_asked_and_says_what_it_adds(tmp_path):
    # the slide "RBM Weight Update" has neither momentum nor weight decay; task1 added both
    # (0.5, 2e-4) unsaid and had no option to leave them out, as rbm train has
    runner = CliRunner()
    result = runner.invoke(main, ["homework", "task1", "--epochs", "1", "--hidden", "4",
                                  "--train-digits", "1", "--test-digits", "1",
                                  "--backend", "cpu", "--momentum", "0", "--weight-decay", "0",
                                  "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "CD-1, learning rate 0.1, momentum 0, weight decay 0" in result.stderr
    model = dlcore.load(tmp_path / "model.h5")
    assert (model.momentum, model.weight_decay) == (0.0, 0.0)
    refused = runner.invoke(main, ["homework", "task1", "--epochs", "2", "--momentum", "0.5",
                                   "--resume", str(tmp_path / "model.h5")])
    assert refused.exit_code == 2 and "--momentum" in refused.output, refused.output


def test_task1_unseen_digits_reconstruct_worse_than_seen_ones(task1_run):
    _, out = task1_run
    with open(out / "reconstruction_error.csv") as handle:
        rows = list(csv.DictReader(handle))
    errors = {seen: [float(r["mse"]) for r in rows
                     if r["seen_in_training"] == seen] for seen in ("true", "false")}
    seen, unseen = errors["true"], errors["false"]
    assert sum(unseen) / len(unseen) > sum(seen) / len(seen)


@pytest.mark.parametrize("arguments, message", [
    (["--train-digits", "5-1"], "--train-digits"),
    (["--test-digits", "x"], "--test-digits"),
    (["--backend", "tpu"], "--backend"),
    (["--epochs", "0"], "--epochs"),
    # a folder that does not exist was called an "unknown data set", which it is not
    (["--dataset", "/no/such/folder"], "the folder '/no/such/folder' does not exist: give a "
                                       "folder holding IDX files"),
    # a misspelt name says which one it is close to, as Click does for an option
    (["--dataset", "mnsit"], "unknown data set 'mnsit' (did you mean 'mnist'?): choose one of "
                             "mnist-5k, mnist, fashion-mnist, or a folder holding IDX files"),
    (["--dataset", "fashion"], "unknown data set 'fashion' (did you mean 'fashion-mnist'?)"),
    (["--dataset", "mnist5"], "(did you mean 'mnist' or 'mnist-5k'?)"),
    (["--dataset", "digits"], "unknown data set 'digits': choose one of mnist-5k, mnist"),
])
def test_task1_bad_input_is_one_line_on_stderr_and_a_nonzero_exit(arguments, message, tmp_path):
    result = CliRunner().invoke(main, ["homework", "task1", *arguments, "--out", str(tmp_path)])
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dlcore: error:") and message in lines[0]


def test_task1_unwritable_output_folder_is_one_line(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = CliRunner().invoke(main, ["homework", "task1", "--out", str(blocker / "sub")])
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert line == (f"dlcore: error: cannot create the output folder {blocker / 'sub'}: Not a "
                    f"directory; choose another with --out")


def test_rbm_train_then_reconstruct_then_sample_then_info(tmp_path):
    runner = CliRunner()
    trained = runner.invoke(main, ["rbm", "train", "--digits", "0-2", *TINY,
                                   "--out", str(tmp_path)])
    assert trained.exit_code == 0, trained.output
    assert "free-energy gap" in trained.stdout
    model = str(tmp_path / "model.h5")
    rebuilt = runner.invoke(main, ["rbm", "reconstruct", model, "--digits", "0-2",
                                   "--out", str(tmp_path / "rec.png")])
    assert rebuilt.exit_code == 0 and (tmp_path / "rec.png").exists()
    sampled = runner.invoke(main, ["rbm", "sample", model, "--n", "4", "--steps", "5",
                                   "--out", str(tmp_path / "samples.png")])
    assert sampled.exit_code == 0 and (tmp_path / "samples.png").exists()
    described = runner.invoke(main, ["info", model])
    assert described.exit_code == 0
    assert "BernoulliRBM" in described.stdout and "(784, 25)" in described.stdout


def test_info_on_a_file_that_is_not_a_model_is_one_line(tmp_path):
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"this is not HDF5")
    result = CliRunner().invoke(main, ["info", str(junk)])
    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1


def test_reconstruct_with_a_missing_model_file_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(main, ["rbm", "reconstruct", str(tmp_path / "none.h5")])
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_version_from_the_command_and_from_python_dash_m():
    assert CliRunner().invoke(main, ["--version"]).stdout.strip() == \
        f"dlcore, version {dlcore.__version__}"
    completed = subprocess.run([sys.executable, "-m", "dlcore", "--version"],
                               capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == f"dlcore, version {dlcore.__version__}"


def test_info_lists_a_file_that_would_not_load_then_refuses_it(tmp_path):
    """A declared shape that contradicts the hyperparameters is listed (nothing is read) and the
    command then fails as dlcore.load would, instead of reporting a healthy file."""
    model = tmp_path / "model.h5"
    dlcore.save(dlcore.BernoulliRBM(n_hidden=3, epochs=1, seed=0).fit(
        np.zeros((4, 6), np.float32)), model)
    with h5py.File(model, "a") as file:
        del file["W"]
        file.create_dataset("W", shape=(10 ** 6, 10 ** 6), chunks=(10, 10), dtype="f4")
    result = CliRunner().invoke(main, ["info", str(model)])
    assert result.exit_code == 1
    assert "(1000000, 1000000)" in result.stdout
    assert result.stderr.count("\n") == 1 and "'W' has shape (1000000, 1000000)" in result.stderr


@dlcore.io.register_model
class CliInfoTestModel:
    """A model class of a user's own: the command line cannot import it."""

    def __init__(self, size=3):
        self.size = size

    def get_config(self):
        return {"size": self.size}

    def get_state(self):
        return {"weights": np.arange(self.size, dtype=np.float32)}

    def set_state(self, state):
        self.weights = state["weights"]


def test_info_lists_a_file_of_a_users_own_class_without_checking_that_it_loads(tmp_path):
    model = tmp_path / "mine.h5"
    dlcore.save(CliInfoTestModel(), model)
    completed = subprocess.run([sys.executable, "-m", "dlcore", "info", str(model)],
                               capture_output=True, text=True, timeout=300, check=False)
    assert completed.returncode == 0, completed.stderr
    assert "CliInfoTestModel" in completed.stdout and "weights" in completed.stdout
    assert "not checked: whether it loads ('CliInfoTestModel' is not one of dlcore's" in \
        completed.stdout


def test_info_lists_a_newer_format_file_without_checking_that_it_loads(tmp_path):
    model = tmp_path / "model.h5"
    dlcore.save(dlcore.BernoulliRBM(n_hidden=3, epochs=1, seed=0).fit(
        np.zeros((4, 6), np.float32)), model)
    with h5py.File(model, "a") as file:
        file.attrs["format_version"] = np.int64(dlcore.io.FORMAT_VERSION + 1)
    result = CliRunner().invoke(main, ["info", str(model)])
    assert result.exit_code == 0, result.output
    newer = dlcore.io.FORMAT_VERSION + 1
    assert f"not checked: whether it loads (format {newer} is newer than this dlcore reads" in \
        result.stdout


@pytest.mark.parametrize("sampler, extra, history_key", [
    ("fpcd", ["--chains", "7"], None),
    ("pt", ["--temperatures", "3"], "swap_acceptance"),
])
def test_rbm_train_trains_with_the_chosen_sampler_and_records_it(sampler, extra,
                                                                 history_key, tmp_path):
    result = CliRunner().invoke(main, ["rbm", "train", "--digits", "0-2", *TINY,
                                       "--sampler", sampler, *extra, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    model = dlcore.load(tmp_path / "model.h5")
    assert model.sampler == sampler
    if sampler == "fpcd":
        assert model.n_chains == 7
    else:
        assert model.n_temperatures == 3 and history_key in model.history


@pytest.mark.parametrize("arguments, option", [
    (["--sampler", "pt", "--persistent"], "--sampler"),
    (["--sampler", "cd", "--chains", "5"], "--chains"),
    (["--chains", "5"], "--chains"),
    (["--sampler", "gibbs"], "--sampler"),
    # a ladder without parallel tempering was taken and ignored
    (["--temperatures", "5"], "--temperatures sets the rungs of parallel tempering's ladder, "
                              "and --sampler is cd: give --sampler pt, or drop --temperatures"),
    (["--persistent", "--temperatures", "5"], "and --sampler is pcd: give --sampler pt"),
])
def test_rbm_train_refuses_contradictory_sampler_options_in_one_line(arguments, option,
                                                                     tmp_path):
    result = CliRunner().invoke(main, ["rbm", "train", *TINY, *arguments,
                                       "--out", str(tmp_path)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and option in lines[0]
    assert not (tmp_path / "model.h5").exists()


# -- rbm evaluate and reconstruct measure on the images the model was trained without -------
@pytest.fixture(scope="module")
def seed_3_task1(tmp_path_factory):
    """A task1 hand-in trained with --seed 3: its mnist-5k hold-out split is seed 3's."""
    out = tmp_path_factory.mktemp("seed3")
    result = CliRunner().invoke(main, ["homework", "task1", "--train-digits", "1-2",
                                       "--test-digits", "1-3", "--hidden", "8", "--epochs", "1",
                                       "--seed", "3", "--backend", "cpu", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def held_out_error(model, split_seed, classes):
    """Oracle: the error per pixel on the held-out rows of holdout_split(seed=split_seed)."""
    images, labels = dlcore.datasets.load_mnist_5k()
    _, test = dlcore.datasets.holdout_split(labels, 100, seed=split_seed)
    rows = test[np.isin(labels[test], classes)]
    x = dlcore.datasets.to_unit_interval(images[rows])
    return float(np.mean((x - model.reconstruct(x)) ** 2))


def test_rbm_reconstruct_uses_the_split_seed_the_model_was_trained_with(
        seed_3_task1, tmp_path):
    result = CliRunner().invoke(main, ["rbm", "reconstruct", str(seed_3_task1 / "model.h5"),
                                       "--digits", "1-3", "--backend", "cpu",
                                       "--out", str(tmp_path / "rec.png")])
    assert result.exit_code == 0, result.output
    with open(seed_3_task1 / "reconstruction_error.csv") as handle:
        student = {row["digit"]: row["mse"]
                   for row in csv.DictReader(handle)}
    teacher = {line.split()[0]: line.split()[-2] for line in result.stdout.splitlines()
               if line.strip()[:1].isdigit()}
    assert {digit: f"{float(mse):.5f}" for digit, mse in student.items()} == teacher
    assert "hold-out split of seed 3, the --seed the model was trained with" in result.stdout


def test_rbm_evaluate_uses_the_split_seed_the_model_was_trained_with(seed_3_task1):
    model = dlcore.load(seed_3_task1 / "model.h5")
    runner = CliRunner()
    for options, split_seed in (([], 3), (["--split-seed", "0"], 0)):
        result = runner.invoke(main, ["rbm", "evaluate", str(seed_3_task1 / "model.h5"),
                                      "--digits", "1-2", "--backend", "cpu", *options])
        assert result.exit_code == 0, result.output
        line = next(line for line in result.stdout.splitlines()
                    if line.startswith("reconstruction error:"))
        assert float(line.split()[2]) == pytest.approx(
            held_out_error(model, split_seed, [1, 2]), abs=1e-5)
        assert f"hold-out split of {'--split-' if options else ''}seed {split_seed}" in \
            result.stdout


def test_rbm_reconstruct_sample_hidden_prints_the_errors_of_sampled_reconstructions(tmp_path):
    # the table printed the mean-field errors under a picture of sampled reconstructions
    from dlcore.cli._digits import load_digit_split
    images, _ = dlcore.datasets.load_mnist_5k()
    rbm = dlcore.BernoulliRBM(n_hidden=4, epochs=1, seed=0, backend="cpu")
    rbm.fit(dlcore.datasets.to_unit_interval(images[:50]))
    rbm.training_record_ = {"dataset": "mnist-5k", "classes": [0], "class_names": ["0"],
                            "n_images": 50, "command": "dlcore rbm train",
                            "parameters": {"seed": 0}}
    dlcore.save(rbm, tmp_path / "model.h5")
    printed = {}
    for options in ([], ["--sample-hidden", "--seed", "5"]):
        result = CliRunner().invoke(main, ["rbm", "reconstruct", str(tmp_path / "model.h5"),
                                           "--digits", "0-1", "--backend", "cpu", *options,
                                           "--out", str(tmp_path / "rec.png")])
        assert result.exit_code == 0, result.output
        printed[bool(options)] = [float(line.split()[-2]) for line in result.stdout.splitlines()
                                  if line.strip()[:1].isdigit()]
    _, held_out, labels = load_digit_split("mnist-5k", [0, 1], [0, 1], 0)
    model = dlcore.load(tmp_path / "model.h5")
    for sample_hidden in (False, True):
        reconstructed = model.reconstruct(held_out, sample_hidden=sample_hidden, seed=5)
        expected = [np.mean((held_out[labels == digit] - reconstructed[labels == digit]) ** 2)
                    for digit in (0, 1)]
        assert printed[sample_hidden] == pytest.approx(expected, abs=1e-5)
    assert printed[True] != pytest.approx(printed[False], abs=1e-5)


@pytest.mark.parametrize("flags, call", [
    (["--sample-hidden", "--seed", "5"], {"sample_hidden": True, "seed": 5}),
    (["--sample-hidden"], {"sample_hidden": True}),   # the model's sequence, from the file's
    ([], {}),
])
def test_rbm_reconstruct_draws_what_rbm_reconstruct_draws_from_the_same_file(
        flags, call, tmp_path, monkeypatch):
    # `rbm reconstruct --sample-hidden --seed N` set the model's key and drew each class at
    # calls 1, 2..., the pictures at further calls: reconstructions no notebook drew, and
    # pictures other than those whose errors the table printed
    from dlcore.cli._digits import load_digit_split
    images, _ = dlcore.datasets.load_mnist_5k()
    rbm = dlcore.BernoulliRBM(n_hidden=4, epochs=1, seed=0, backend="cpu")
    rbm.fit(dlcore.datasets.to_unit_interval(images[:50]))
    rbm.sample(2, 2)   # the file's call counter is then not 0
    dlcore.save(rbm, tmp_path / "model.h5")
    pictures = []
    monkeypatch.setattr(dlcore.viz, "save_image_rows",
                        lambda rows, path, **options: pictures.append(rows))
    result = CliRunner().invoke(main, ["rbm", "reconstruct", str(tmp_path / "model.h5"),
                                       "--digits", "0-1", "--per-digit", "3", "--backend",
                                       "cpu", *flags, "--out", str(tmp_path / "rec.png")])
    assert result.exit_code == 0, result.output
    _, held_out, labels = load_digit_split("mnist-5k", [0, 1], [0, 1], 0)
    expected = dlcore.load(tmp_path / "model.h5").reconstruct(held_out, **call)
    rows, = pictures
    for k, digit in enumerate((0, 1)):
        np.testing.assert_array_equal(rows[2 * k + 1].reshape(3, 784),
                                      expected[labels == digit][:3])
    printed = [float(line.split()[-2]) for line in result.stdout.splitlines()
               if line.strip()[:1].isdigit()]
    assert printed == pytest.approx(
        [np.mean((held_out[labels == digit] - expected[labels == digit]) ** 2)
         for digit in (0, 1)], abs=1e-5)


@pytest.mark.parametrize("trained_on, seen", [
    ("fashion-mnist", ["no (unseen)"] * 4),
    ("mnist-5k", ["no (unseen)", "yes", "yes", "no (unseen)"]),
])
def test_rbm_reconstruct_calls_a_class_seen_only_in_the_data_set_trained_on(
        tmp_path, monkeypatch, trained_on, seen):
    """Fashion-MNIST's classes 1 and 2 (trouser, pullover) are not the digits 1 and 2: a model
    trained on them has seen no digit."""
    images, _ = dlcore.datasets.load_mnist_5k()
    rbm = dlcore.BernoulliRBM(n_hidden=4, epochs=1, seed=0, backend="cpu")
    rbm.fit(dlcore.datasets.to_unit_interval(images[:50]))
    rbm.training_record_ = {"dataset": trained_on, "classes": [1, 2],
                            "class_names": ["1", "2"], "n_images": 50,
                            "command": "dlcore rbm train", "parameters": {"seed": 0}}
    dlcore.save(rbm, tmp_path / "model.h5")
    original = dlcore.viz.save_image_rows

    def recording(rows, path, row_labels=None, **options):
        recording.labels = row_labels
        return original(rows, path, row_labels=row_labels, **options)

    monkeypatch.setattr(dlcore.viz, "save_image_rows", recording)
    result = CliRunner().invoke(main, ["rbm", "reconstruct", str(tmp_path / "model.h5"),
                                       "--dataset", "mnist-5k", "--digits", "0-3",
                                       "--backend", "cpu", "--out", str(tmp_path / "rec.png")])
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert [line.split(None, 1)[1].rsplit(None, 2)[0].strip() for line in rows] == seen
    assert ("mean over seen digits" in result.stdout) == ("yes" in seen)
    row_labels = recording.labels[1::2]
    assert [label.endswith(", unseen") for label in row_labels] == \
        [word != "yes" for word in seen]


def test_a_batch_larger_than_the_training_images_is_said_once(tmp_path, capsys):
    """`rbm train --batch-size 100000` on 4,000 images trained one batch an epoch unsaid
    (scikit-learn's MLP warns that its batch size is clipped)."""
    arguments = ["rbm", "train", "--digits", "0", "--epochs", "2", "--hidden", "4",
                 "--backend", "cpu"]
    result = CliRunner().invoke(main, [*arguments, "--batch-size", "100000",
                                       "--out", str(tmp_path / "large")])
    assert result.exit_code == 0, result.output
    n_images = dlcore.load(tmp_path / "large" / "model.h5").training_record_["n_images"]
    notes = [line for line in result.stderr.splitlines() if "--batch-size" in line]
    assert notes == [f"dlcore: --batch-size 100000 is more than the {n_images:,} training "
                     f"images: each epoch is one batch of {n_images:,}, a single update (a "
                     "smaller --batch-size updates more often)"]
    from dlcore.cli._common import note_batch_size
    note_batch_size(n_images, n_images)   # a batch of them all, asked for: nothing to say
    assert capsys.readouterr().err == ""


def test_chains_past_what_a_model_file_holds_are_refused_before_training(tmp_path):
    """`--sampler pt --temperatures 1000 --batch-size 200`: 200,000 chains of 4 + 784 units
    trained (13 s here, hours on a data set) and then dlcore.save refused the model ("more
    than the 134217728 that training builds from sizes alone"), the training lost."""
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["rbm", "train", "--digits", "0", "--epochs", "1",
                                       "--hidden", "4", "--sampler", "pt", "--temperatures",
                                       "1000", "--batch-size", "200", "--out", str(out)])
    assert result.exit_code == 2, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("dlcore: error: the persistent chains would hold 200,000 x (4 "
                           "hidden + 784 visible) states, more than the 134,217,728 a model "
                           "file holds, so the trained model could not be saved; give a "
                           "smaller --chains, --batch-size or --temperatures")
    assert not (out / "model.h5").exists()


def drawn_tiles(monkeypatch):
    """The arrays the commands hand to ``viz.save_tiles``, in order (the pictures' numbers)."""
    drawn = []
    monkeypatch.setattr(dlcore.viz, "save_tiles",
                        lambda tiles, path, **options: drawn.append(np.asarray(tiles)))
    return drawn


@pytest.mark.parametrize("trained_with", ["cd", "pt"])
@pytest.mark.parametrize("flags, call", [
    (["--seed", "3"], {"seed": 3, "probabilities": True}),
    (["--seed", "3", "--binary"], {"seed": 3, "probabilities": False}),
    (["--seed", "3", "--sampler", "gibbs"], {"seed": 3, "sampler": "gibbs",
                                             "probabilities": True}),
    ([], {"probabilities": True}),   # the model's own sequence, from the file's counter
])
def test_rbm_sample_draws_what_rbm_sample_draws_from_the_same_file(trained_with, flags, call,
                                                                   tmp_path, monkeypatch):
    # `rbm sample --seed N` started its chains at random images, at another Philox step than
    # rbm.sample(seed=N) (random hidden states), and sampled a PT-trained model by Gibbs steps
    # where rbm.sample picks tempering: the command and the notebook drew other pictures
    X = (dlcore.backend.rng.uniform(40, 16, 2, dlcore.backend.rng.STREAM_SPLIT) < 0.3)
    rbm = dlcore.BernoulliRBM(n_hidden=5, epochs=2, batch_size=10, sampler=trained_with,
                              n_chains=None if trained_with == "cd" else 4, n_temperatures=3,
                              backend="cpu").fit(X.astype(np.float32))
    rbm.sample(2, 2)   # the file's call counter is then not 0
    dlcore.save(rbm, tmp_path / "model.h5")
    drawn = drawn_tiles(monkeypatch)
    result = CliRunner().invoke(main, ["rbm", "sample", str(tmp_path / "model.h5"), "--n", "6",
                                       "--steps", "3", *flags,
                                       "--out", str(tmp_path / "samples.png")])
    assert result.exit_code == 0, result.output
    expected = dlcore.load(tmp_path / "model.h5").sample(6, 3, **call)
    np.testing.assert_array_equal(drawn[0].reshape(6, 16), expected)
    method = call.get("sampler", "pt" if trained_with == "pt" else "gibbs")
    assert ("parallel tempering" in result.stdout) == (method == "pt")


@pytest.mark.parametrize("command, model_class", [("rbm", dlcore.BernoulliRBM),
                                                  ("dbn", dlcore.DBN)])
def test_sampling_a_model_of_no_square_images_names_the_library_call_in_one_line(
        command, model_class, tmp_path):
    # "cannot draw 12 visible units as a square image" said what failed, not what to do (and
    # dbn sample printed its note on CD-1 generators first)
    X = (dlcore.backend.rng.uniform(40, 12, 2, dlcore.backend.rng.STREAM_SPLIT) < 0.3)
    options = {"n_hidden": 4} if command == "rbm" else {"hidden": [4]}
    model = model_class(epochs=1, batch_size=10, backend="cpu", **options)
    dlcore.save(model.fit(X.astype(np.float32)), tmp_path / "model.h5")
    out = tmp_path / "pictures" / "samples.png"
    result = CliRunner().invoke(main, [command, "sample", str(tmp_path / "model.h5"), "--n", "5",
                                       "--steps", "7", "--out", str(out)])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "dlcore: error: cannot draw 12 visible units as a square image; sample it in Python, "
        f"whose rows need no picture: dlcore.load({str(tmp_path / 'model.h5')!r}).sample(5, 7)"]
    assert not out.parent.exists()
