"""``dlcore dbn pretrain/finetune/sample``, ``dlcore homework pretraining`` and ``dlcore bench dbn``
on tiny settings. Oracles: the files and lines promised, the saved models' own behaviour, and
one-line errors with a non-zero exit."""
import csv
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner

import dlcore
from dlcore.cli import main
from dlcore.datasets import load_mnist_5k, to_unit_interval, write_idx
from dlcore.datasets.mnist import split_file_names

TINY_DBN = ["--layers", "784-24-16", "--epochs-per-layer", "1", "--backend", "cpu"]


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """A folder of IDX files like MNIST's: 40 training and 10 test digits of each class from
    mnist-5k (the --dataset option takes such a folder), so the commands run in seconds."""
    folder = tmp_path_factory.mktemp("digits")
    images, labels = load_mnist_5k()
    for split, (start, stop) in (("train", (0, 40)), ("test", (40, 50))):
        rows = np.concatenate([np.flatnonzero(labels == k)[start:stop] for k in range(10)])
        images_name, labels_name = split_file_names(split)
        write_idx(folder / images_name, images[rows])
        write_idx(folder / labels_name, labels[rows])
    return str(folder)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, digits):
    out = tmp_path_factory.mktemp("dbn")
    result = CliRunner().invoke(main, ["dbn", "pretrain", *TINY_DBN, "--with-labels",
                                       "--dataset", digits, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def finetuned(pretrained, digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("finetune")
    result = CliRunner().invoke(main, ["dbn", "finetune", str(pretrained / "dbn.h5"),
                                       "--dataset", digits, "--epochs", "1", "--backend", "cpu",
                                       "--weight-decay", "0.25", "--out", str(out)])
    return result, out


def test_finetunes_confusion_matrix_has_a_title_and_says_its_cells_count_test_images(
        pretrained, digits, tmp_path, monkeypatch):
    # it had no title and an unlabelled colour bar: counts of what?
    drawn = []
    monkeypatch.setattr(dlcore.viz, "save_confusion_matrix",
                        lambda matrix, path, **options: drawn.append((matrix, options)))
    result = CliRunner().invoke(main, ["dbn", "finetune", str(pretrained / "dbn.h5"),
                                       "--dataset", digits, "--epochs", "1", "--backend", "cpu",
                                       "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    (matrix, options), = drawn
    accuracy = result.output.split("test accuracy ")[1].split()[0]
    assert options["title"] == f"fine-tuned DBN: accuracy {accuracy}"
    assert options["counts_of"] == "held-out test images (of 100, none trained on)"
    assert matrix.sum() == 100


def test_finetune_takes_a_weight_decay_checked_in_one_line(pretrained, finetuned, tmp_path):
    """dbn finetune's optimisers (adamw's fixed 0.004, none for the others) now take
    --weight-decay, as cnn train's: recorded with the model, refused where it would zero the
    weights."""
    result, out = finetuned
    assert result.exit_code == 0, result.output
    assert dlcore.load(out / "model.h5").optimizer.weight_decay == 0.25
    refused = CliRunner().invoke(main, ["dbn", "finetune", str(pretrained / "dbn.h5"),
                                        "--learning-rate", "0.5", "--weight-decay", "2",
                                        "--out", str(tmp_path / "bad")])
    assert refused.exit_code == 2 and "zeroes or flips them" in refused.output, refused.output
    assert not (tmp_path / "bad").exists()


def test_pretrain_writes_the_dbn_and_the_filters_of_every_layer(pretrained):
    model = dlcore.load(pretrained / "dbn.h5")
    assert isinstance(model, dlcore.DBN) and model.layers == [784, 24, 16]
    assert model.n_labels == 10 and model.rbms_[-1].W.shape == (24 + 10, 16)
    for name in ("filters_layer1.png", "filters_layer2.png"):
        assert (pretrained / name).stat().st_size > 0


def test_finetune_writes_a_model_that_takes_flat_images_and_prints_test_accuracy(finetuned):
    result, out = finetuned
    assert result.exit_code == 0, result.output
    assert "test accuracy" in result.stdout
    for name in ("model.h5", "training_curve.png", "confusion_matrix.png"):
        assert (out / name).stat().st_size > 0
    images, _ = load_mnist_5k()
    probabilities = dlcore.load(out / "model.h5").predict(to_unit_interval(images[:7]))
    assert probabilities.shape == (7, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)


def test_with_labels_pretrains_a_generator_by_default_pcd_and_up_down(pretrained):
    model = dlcore.load(pretrained / "dbn.h5")
    assert all(rbm.persistent for rbm in model.rbms_)
    assert model.up_down_epochs == 10 and model.generative_ is not None


def test_pretrain_says_when_up_down_begins_and_each_epoch_it_finishes(digits, tmp_path):
    # up-down runs after the last RBM with no progress of its own: the homework's defaults
    # left the screen silent for its epochs (~14 s with the first compilation)
    result = CliRunner().invoke(main, ["dbn", "pretrain", *TINY_DBN, "--with-labels",
                                       "--up-down-epochs", "2", "--dataset", digits,
                                       "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    last_rbm = max(i for i, line in enumerate(lines) if line.startswith("RBM 2/2"))
    errors = dlcore.load(tmp_path / "dbn.h5").history["up_down_reconstruction_error"]
    assert lines[last_rbm + 1:last_rbm + 4] == [
        "up-down fine-tuning: 2 epochs (a line after each)",
        f"up-down: epoch 1/2  generative reconstruction error {errors[0]:.4f}",
        f"up-down: epoch 2/2  generative reconstruction error {errors[1]:.4f}"]


def test_sampling_a_cd1_dbn_says_how_to_pretrain_a_generator(digits, tmp_path):
    runner = CliRunner()
    for flags, folder in (([], "cd1"), (["--persistent", "--up-down-epochs", "1"], "pcd")):
        result = runner.invoke(main, ["dbn", "pretrain", *TINY_DBN, *flags, "--dataset",
                                      digits, "--out", str(tmp_path / folder)])
        assert result.exit_code == 0, result.output
    notes = []
    for folder in ("cd1", "pcd"):
        result = runner.invoke(main, ["dbn", "sample", str(tmp_path / folder / "dbn.h5"),
                                      "--n", "2", "--gibbs-steps", "1",
                                      "--out", str(tmp_path / f"{folder}.png")])
        assert result.exit_code == 0, result.output
        notes.append("--persistent --up-down-epochs 10" in result.stderr)
    assert notes == [True, False]


def test_sample_of_a_chosen_label_writes_samples_png(pretrained, tmp_path):
    result = CliRunner().invoke(main, ["dbn", "sample", str(pretrained / "dbn.h5"), "--label",
                                       "3", "--n", "4", "--gibbs-steps", "2",
                                       "--out", str(tmp_path / "samples.png")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "samples.png").stat().st_size > 0 and "of class 3" in result.stdout


TABLE = ["DBN, unsupervised pre-training", "Deep net, auto-associator pre-training",
         "Deep net, supervised pre-training", "Deep net, no pre-training",
         "Shallow net, no pre-training"]


def test_homework_pretraining_prints_and_writes_the_five_rows_of_the_table(digits, tmp_path):
    result = CliRunner().invoke(main, ["homework", "pretraining", "--layers", "784-16-16",
                                       "--dataset", digits, "--epochs-per-layer", "1",
                                       "--epochs", "1", "--backend", "cpu",
                                       "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    with open(tmp_path / "pretraining.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["model"] for r in rows] == TABLE and {r["seed"] for r in rows} == {"0"}
    assert all(0 <= float(r[k]) <= 1
               for r in rows for k in ("train_error", "valid_error", "test_error"))
    assert (tmp_path / "pretraining_curves.png").stat().st_size > 0
    assert result.stdout.count("%") >= 30      # measured and published, 3 columns, 5 rows
    stack = dlcore.load(tmp_path / "stacked_autoencoder.h5")
    assert isinstance(stack, dlcore.StackedAutoencoder) and stack.layers == [784, 16, 16]
    assert [layer.name for layer in dlcore.load(tmp_path / "supervised_net.h5").layers] == [
        "supervised1", "supervised2", "classifier"]


@pytest.mark.parametrize("full_at, written_before", [("dbn.h5", []),
                                                     ("pretrained_net.h5", ["dbn.h5"])])
def test_homework_pretraining_keeps_a_model_without_room_in_out_in_the_temporary_folder(
        digits, tmp_path, monkeypatch, full_at, written_before):
    """As dbn pretrain does: one line naming the file and the fix, where the model went (it
    was lost), and which of the stages' files the run wrote before (each complete)."""
    import tempfile

    from dlcore.io import atomic
    from test_atomic_writes import _full_disk_in
    out, spare = tmp_path / "out", tmp_path / "spare"
    out.mkdir()
    spare.mkdir()
    full_disk = _full_disk_in(out)   # for the files of out; the real fsync for the others
    monkeypatch.setattr(atomic, "_fsync_file", lambda path, real=atomic._fsync_file: (
        full_disk(path) if full_at[:-3] in str(path) else real(path)))
    monkeypatch.setattr(tempfile, "tempdir", str(spare))
    result = CliRunner().invoke(main, ["homework", "pretraining", "--layers", "784-8-8",
                                       "--dataset", digits, "--rows", "dbn",
                                       "--epochs-per-layer", "1", "--epochs", "1",
                                       "--backend", "cpu", "--out", str(out)])
    assert result.exit_code == 1, result.output
    rescued = next(spare.glob(f"dlcore-rescued-*/{full_at}"))
    line = result.stderr.strip().splitlines()[-1]
    expected = (f"dlcore: error: cannot write {out / full_at}: no space left on device "
                f"(errno 28); free space or choose another --out (the trained model was "
                f"saved to {rescued} instead: move it there)")
    if written_before:
        expected += (f"; this run wrote {', '.join(written_before)} in {out} before, which "
                     f"are complete")
    assert line == expected
    assert isinstance(dlcore.load(rescued), dlcore.DBN if full_at == "dbn.h5"
                      else dlcore.Sequential)
    assert sorted(path.name for path in out.iterdir()) == written_before


def test_homework_pretraining_trains_on_train_size_images_drawn_from_the_training_split(
        digits, tmp_path):
    result = CliRunner().invoke(main, ["homework", "pretraining", "--layers", "784-8-8",
                                       "--dataset", digits, "--rows", "shallow",
                                       "--train-size", "100", "--epochs", "1",
                                       "--backend", "cpu", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    record = dlcore.load(tmp_path / "shallow_net.h5").training_record_
    assert record["n_images"] == 90          # 100 drawn, a tenth held out for validation


@pytest.mark.slow
def test_homework_pretraining_repeats_chosen_rows_over_seeds_with_mean_and_std(digits,
                                                                               tmp_path):
    result = CliRunner().invoke(main, ["homework", "pretraining", "--layers", "784-16-16",
                                       "--dataset", digits, "--rows", "shallow,supervised",
                                       "--seeds", "2", "--epochs-per-layer", "1",
                                       "--epochs", "1", "--backend", "cpu",
                                       "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    with open(tmp_path / "pretraining.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["model"], r["seed"]) for r in rows] == [
        (name, seed) for name in (TABLE[2], TABLE[4]) for seed in ("0", "1", "mean", "std")]
    for name in (TABLE[2], TABLE[4]):
        errors = [float(r["test_error"]) for r in rows if r["model"] == name]
        assert errors[2] == pytest.approx((errors[0] + errors[1]) / 2, abs=1e-6)
        assert errors[3] == pytest.approx(abs(errors[0] - errors[1]) / 2 ** 0.5, abs=1e-6)
    assert "±" in result.stdout and "mean ± std over 2 seeds" in result.stdout
    assert {path.name for path in tmp_path.glob("*.h5")} == {
        f"{stem}_seed{seed}.h5" for stem in ("supervised_net", "shallow_net") for seed in (0, 1)}


@pytest.mark.slow
def test_bench_dbn_times_dlcore_and_pytorch_side_by_side():
    pytest.importorskip("torch")
    result = CliRunner().invoke(main, ["bench", "dbn", "--layers", "784-16-8", "--rows", "200",
                                       "--epochs", "1", "--backend", "cpu"])
    assert result.exit_code == 0, result.output
    assert "dlcore cpu" in result.stdout and "PyTorch cpu in-place" in result.stdout


@pytest.mark.parametrize("arguments, message", [
    (["dbn", "pretrain", "--layers", "100-50"],
     "784 pixels but the first layer has 100 units: start --layers with 784 (e.g. 784-500-500)"),
    (["dbn", "pretrain", "--layers", "784"], "--layers"),
    (["dbn", "pretrain", "--layers", "784-8-8", "--epochs-per-layer", "1,2,3"],
     "--epochs-per-layer"),
    (["dbn", "finetune", "/no/such/dbn.h5"], "does not exist"),
    (["dbn", "sample", "/no/such/dbn.h5"], "does not exist"),
    (["homework", "pretraining", "--layers", "784-20"], "two hidden layers"),
    (["homework", "pretraining", "--rows", "dbn,auto"], "--rows"),
    (["homework", "pretraining", "--train-size", "99999"], "more than the"),
    # options only rows not in --rows read were taken and ignored
    (["homework", "pretraining", "--rows", "dbn,deep", "--corruption", "0.1"],
     "--corruption sets the denoising autoencoders of the autoencoder row, which --rows "
     "dbn,deep does not train: add autoencoder to --rows, or drop --corruption"),
    (["homework", "pretraining", "--rows", "deep,shallow", "--epochs-per-layer", "2"],
     "--epochs-per-layer sets the pretraining, which --rows deep,shallow does not run: add "
     "dbn, autoencoder or supervised to --rows, or drop --epochs-per-layer"),
    (["bench", "dbn", "--layers", "100-10", "--rows", "100"], "--layers"),
])
def test_bad_input_is_one_line_on_stderr_and_a_nonzero_exit(arguments, message, tmp_path):
    if arguments[1] in ("pretrain", "pretraining"):
        arguments = arguments + ["--out", str(tmp_path)]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dlcore: error:") and message in lines[0]


def test_finetune_refuses_a_momentum_its_optimizer_does_not_take(pretrained, tmp_path):
    # --optimizer adam --momentum 0.5 fine-tuned with adam alone, unsaid
    result = CliRunner().invoke(main, ["dbn", "finetune", str(pretrained / "dbn.h5"),
                                       "--optimizer", "adam", "--momentum", "0.5", "--out",
                                       str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("dlcore: error: --momentum sets SGD's momentum, and --optimizer "
                           "adam is not sgd: give --optimizer sgd, or drop --momentum")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("with_labels", [[], ["--with-labels"]], ids=["images", "labels"])
def test_pretrain_refuses_a_propagate_that_one_rbm_leaves_unread(with_labels, tmp_path):
    # --layers 784-100 --propagate sample trained one RBM on the images, the option unsaid:
    # there is no RBM above it to feed (the top RBM of --with-labels reads the images too)
    result = CliRunner().invoke(main, ["dbn", "pretrain", "--layers", "784-100", "--propagate",
                                       "sample", *with_labels, "--out", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("dlcore: error: --propagate sets what each RBM feeds the one above "
                           "it, and --layers 784-100 stacks one RBM: give a second hidden size "
                           "(784-100-100), or drop --propagate")
    assert not (tmp_path / "run").exists()


def test_pretrain_refuses_up_down_epochs_with_one_rbm_in_the_command_line_s_words(tmp_path):
    # the library's line named its parameter and advice: "up_down_epochs=3: ... give
    # up_down_epochs=0, or such a DBN", exit code 1 for what is a usage error
    result = CliRunner().invoke(main, ["dbn", "pretrain", "--layers", "784-100",
                                       "--up-down-epochs", "3", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("dlcore: error: --up-down-epochs 3: up-down fine-tuning needs two "
                           "RBMs, and --layers 784-100 stacks one RBM: give a second hidden "
                           "size (784-100-100), or drop --up-down-epochs")
    assert not (tmp_path / "run").exists()


def test_finetune_and_sample_refuse_what_they_cannot_use(pretrained, finetuned, tmp_path):
    _, finetune_folder = finetuned
    not_a_dbn = CliRunner().invoke(main, ["dbn", "finetune", str(finetune_folder / "model.h5"),
                                          "--out", str(tmp_path)])
    assert not_a_dbn.exit_code == 1 and "not a DBN" in not_a_dbn.stderr
    bad_label = CliRunner().invoke(main, ["dbn", "sample", str(pretrained / "dbn.h5"),
                                          "--label", "12", "--out", str(tmp_path / "s.png")])
    assert bad_label.exit_code == 2 and len(bad_label.stderr.strip().splitlines()) == 1


def test_evaluate_refuses_a_dbn_with_labels_in_the_command_lines_words(pretrained, digits):
    result = CliRunner().invoke(main, ["dbn", "evaluate", str(pretrained / "dbn.h5"),
                                       "--dataset", digits, "--backend", "cpu"])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"dlcore: error: {pretrained / 'dbn.h5'} was pretrained --with-labels: its top RBM "
        "models the labels too, and the bound is on log p(v) of the images alone; evaluate a "
        "DBN pretrained without --with-labels"]


def test_sample_titles_its_class_and_is_reproducible_with_a_seed(pretrained, tmp_path):
    from PIL import Image
    pictures = []
    for name, flags in (("a", ["--seed", "5"]), ("b", ["--seed", "5"]), ("c", ["--seed", "6"]),
                        ("d", ["--seed", "5", "--binary"])):
        result = CliRunner().invoke(main, ["dbn", "sample", str(pretrained / "dbn.h5"),
                                           "--label", "3", "--n", "4", "--gibbs-steps", "2",
                                           "--backend", "cpu", *flags,
                                           "--out", str(tmp_path / f"{name}.png")])
        assert result.exit_code == 0, result.output
        assert "of class 3" in result.stdout
        with Image.open(tmp_path / f"{name}.png") as image:
            pictures.append(np.asarray(image.convert("L")))
    assert np.array_equal(pictures[0], pictures[1])
    assert not np.array_equal(pictures[0], pictures[2])
    assert not np.array_equal(pictures[0], pictures[3])     # binary pixels, not probabilities


def test_pretrain_and_finetune_record_what_they_trained_on(pretrained, finetuned, digits):
    _, finetune_folder = finetuned
    dbn_record = dlcore.load(pretrained / "dbn.h5").training_record_
    assert dbn_record["classes"] == list(range(10)) and dbn_record["n_images"] == 400
    assert dbn_record["dataset"] == str(Path(digits).resolve())
    network_record = dlcore.load(finetune_folder / "model.h5").training_record_
    assert network_record["pretraining"] == dbn_record
    assert network_record["command"].endswith("dbn finetune")


def test_finetune_warns_when_the_dbn_was_pretrained_on_another_data_set(pretrained, tmp_path):
    result = CliRunner().invoke(main, ["dbn", "finetune", str(pretrained / "dbn.h5"),
                                       "--dataset", "mnist-5k", "--epochs", "1",
                                       "--backend", "cpu", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "not on mnist-5k" in warnings[0]


def test_finetune_shifts_square_training_images_by_default_and_not_with_no_augment(finetuned,
                                                                                   pretrained,
                                                                                   digits,
                                                                                   tmp_path):
    _, out = finetuned
    first = dlcore.load(out / "model.h5").layers[0]
    assert isinstance(first, dlcore.layers.ImageAugmentation)
    assert first.max_shift == 2 and first.image_shape == (1, 28, 28)
    plain = CliRunner().invoke(main, ["dbn", "finetune", str(pretrained / "dbn.h5"),
                                      "--dataset", digits, "--epochs", "1", "--no-augment",
                                      "--out", str(tmp_path)])
    assert plain.exit_code == 0, plain.output
    layers = dlcore.load(tmp_path / "model.h5").layers
    assert not any(isinstance(layer, dlcore.layers.ImageAugmentation) for layer in layers)


def test_finetune_shifts_only_square_images_of_a_small_data_set_by_default():
    from dlcore.cli.dbn import image_shifts
    shifts = image_shifts(784, None, "mnist-5k", 3_600)
    assert shifts == {"max_shift": 2, "horizontal_flip": False, "image_shape": (1, 28, 28)}
    assert image_shifts(784, None, "fashion-mnist", 54_000) is None
    assert image_shifts(784, True, "fashion-mnist", 54_000)["image_shape"] == (1, 28, 28)
    assert image_shifts(500, None, "features", 100) is None
    assert image_shifts(784, False, "mnist-5k", 3_600) is None
    with pytest.raises(click.BadParameter, match="not square images"):
        image_shifts(500, True, "features", 100)


def test_finetune_does_not_shift_images_the_shifts_can_move_out_of_the_picture_by_default():
    """Oracle: a shift of up to 2 pixels moves a 2x2 image entirely out of the picture,
    which ImageAugmentation refuses to train: finetune on a small set of 2x2 images stopped
    with "give max_shift below 2", an option the command does not have; 3x3 images keep a
    row and a column."""
    from dlcore.cli.dbn import image_shifts
    assert image_shifts(4, None, "tiny", 60) is None
    assert image_shifts(9, None, "small", 60)["max_shift"] == 2
    with pytest.raises(click.BadParameter, match="are 2x2 images, which shifts of up to 2 "
                                                 "pixels can move .*: drop --augment"):
        image_shifts(4, True, "tiny", 60)


def test_finetune_flip_mirrors_square_images_without_shifting_a_large_set():
    from dlcore.cli.dbn import image_shifts
    assert image_shifts(784, None, "fashion-mnist", 54_000, flip=True) == \
        {"max_shift": 0, "horizontal_flip": True, "image_shape": (1, 28, 28)}
    assert image_shifts(784, None, "mnist-5k", 3_600, flip=True)["max_shift"] == 2
    with pytest.raises(click.BadParameter, match="which mirroring needs: drop --flip"):
        image_shifts(500, None, "features", 100, flip=True)


def test_finetune_defaults_depend_on_the_training_set_size_and_say_so_in_help():
    from dlcore.cli.dbn import size_defaults
    assert size_defaults(3_600, 100, None, None, None) == (0.3, 0.1, 1.0)   # mnist-5k's rows
    assert size_defaults(9_999, 100, None, None, None) == (0.3, 0.1, 1.0)
    dropout, input_dropout, decay = size_defaults(54_000, 100, None, None, None)  # Fashion's
    assert (dropout, input_dropout) == (0.2, 0.0) and decay ** 100 == pytest.approx(0.1)
    assert size_defaults(54_000, 40, None, None, None)[2] ** 40 == pytest.approx(0.1)
    assert size_defaults(54_000, 40, 0.5, 0.2, 0.9) == (0.5, 0.2, 0.9)      # as given
    help_text = " ".join(CliRunner().invoke(main, ["dbn", "finetune", "--help"]).stdout.split())
    assert "Default: 0.3 below 10,000 training images, else 0.2." in help_text
    assert "ends at 0.1 of its start" in help_text


def test_finetune_lr_decay_multiplies_the_rate_after_every_epoch(pretrained, digits, tmp_path):
    result = CliRunner().invoke(main, ["dbn", "finetune", str(pretrained / "dbn.h5"),
                                       "--dataset", digits, "--epochs", "3", "--patience", "5",
                                       "--lr-decay", "0.5", "--backend", "cpu",
                                       "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    network = dlcore.load(tmp_path / "model.h5")
    assert network.history["learning_rate"] == pytest.approx([0.1, 0.05, 0.025])
    parameters = network.training_record_["parameters"]
    assert (parameters["lr_decay"], parameters["dropout"], parameters["input_dropout"]) == \
        (0.5, 0.3, 0.1)                                  # resolved, not None


def test_finetune_flip_puts_a_mirroring_layer_first(pretrained, digits, tmp_path):
    result = CliRunner().invoke(main, ["dbn", "finetune", str(pretrained / "dbn.h5"),
                                       "--dataset", digits, "--epochs", "1", "--no-augment",
                                       "--flip", "--backend", "cpu", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    first = dlcore.load(tmp_path / "model.h5").layers[0]
    assert isinstance(first, dlcore.layers.ImageAugmentation)
    assert (first.horizontal_flip, first.max_shift) == (True, 0)


def test_pretraining_defaults_depend_on_the_training_set_size_and_say_so_in_help():
    from dlcore.cli.dbn import pretrain_size_defaults
    assert pretrain_size_defaults(4_000, None, None) == (20, 20)      # mnist-5k
    assert pretrain_size_defaults(60_000, None, None) == (10, 100)    # Fashion-MNIST
    assert pretrain_size_defaults(60_000, [5, 3], 7) == ([5, 3], 7)   # as given
    help_text = " ".join(CliRunner().invoke(main, ["dbn", "pretrain", "--help"]).stdout.split())
    assert "Default: 20 below 10,000 training images, else 10." in help_text
    assert "Default: 20 below 10,000 training images, else 100." in help_text


def test_pretrain_records_the_epochs_and_batch_size_it_trained_with(pretrained):
    parameters = dlcore.load(pretrained / "dbn.h5").training_record_["parameters"]
    model = dlcore.load(pretrained / "dbn.h5")
    assert parameters["batch_size"] == model.batch_size
    assert parse_epochs_text(parameters["epochs_per_layer"]) == model.epochs


def parse_epochs_text(text):
    values = [int(part) for part in text.split(",")]
    return values[0] if len(values) == 1 else values


def test_finetune_and_evaluate_take_the_data_set_the_dbn_was_pretrained_on(digits, tmp_path):
    """dbn pretrain --dataset FOLDER, then finetune and evaluate without --dataset: the
    folder's images (they took mnist-5k, warned that the DBN was trained on another set)."""
    runner = CliRunner()
    pretrained = tmp_path / "dbn"
    result = runner.invoke(main, ["dbn", "pretrain", "--layers", "784-4", "--epochs-per-layer",
                                  "1", "--dataset", digits, "--backend", "cpu",
                                  "--out", str(pretrained)])
    assert result.exit_code == 0, result.output
    finetuned = runner.invoke(main, ["dbn", "finetune", str(pretrained / "dbn.h5"),
                                     "--epochs", "1", "--backend", "cpu",
                                     "--out", str(tmp_path / "net")])
    assert finetuned.exit_code == 0, finetuned.output
    assert "warning" not in finetuned.stderr
    record = dlcore.load(tmp_path / "net" / "model.h5").training_record_
    assert record["dataset"] == str(Path(digits).resolve()) and record["n_images"] == 360
    evaluated = runner.invoke(main, ["dbn", "evaluate", str(pretrained / "dbn.h5"),
                                     "--exact", "--samples", "2", "--backend", "cpu"])
    assert evaluated.exit_code == 0, evaluated.output
    assert evaluated.stdout.startswith(f"100 held-out {Path(digits).resolve()} images")


def test_a_recorded_folder_that_is_gone_asks_for_dataset_in_one_line(digits, tmp_path):
    import shutil
    folder = tmp_path / "images"
    shutil.copytree(digits, folder)
    pretrained = CliRunner().invoke(main, ["dbn", "pretrain", "--layers", "784-4",
                                           "--epochs-per-layer", "1", "--dataset", str(folder),
                                           "--backend", "cpu", "--out", str(tmp_path / "dbn")])
    assert pretrained.exit_code == 0, pretrained.output
    shutil.rmtree(folder)
    result = CliRunner().invoke(main, ["dbn", "evaluate", str(tmp_path / "dbn" / "dbn.h5")])
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"dlcore: error: {tmp_path / 'dbn' / 'dbn.h5'} was trained on the images in "
        f"{folder.resolve()}, which is no longer a folder: give their place with --dataset")


def test_finetune_prints_the_validation_accuracy_of_the_epoch_it_keeps(tmp_path):
    """Early stopping keeps the epoch of the lowest validation loss (here the 8th); the line
    "best epoch 8 of 8: validation accuracy ..." gave the highest accuracy of any epoch (the
    6th's)."""
    images, _ = load_mnist_5k()
    dbn = dlcore.DBN(layers=[784, 16], epochs=1, seed=0, backend="cpu")
    dlcore.save(dbn.fit(dlcore.datasets.to_unit_interval(images[:500])), tmp_path / "dbn.h5")
    result = CliRunner().invoke(main, ["dbn", "finetune", str(tmp_path / "dbn.h5"), "--epochs",
                                       "8", "--learning-rate", "0.5", "--batch-size", "256",
                                       "--backend", "cpu", "--out", str(tmp_path / "net")])
    assert result.exit_code == 0, result.output
    history = dlcore.load(tmp_path / "net" / "model.h5").history
    kept = int(np.argmin(history["val_loss"]))
    line = next(line for line in result.stdout.splitlines() if line.startswith("best epoch"))
    assert line == (f"best epoch {kept + 1} of {len(history['loss'])}: validation accuracy "
                    f"{history['val_accuracy'][kept]:.4f}")


def test_finetune_takes_a_dbn_given_its_hidden_layers_only(tmp_path):
    """A DBN fitted in Python with hidden=[16] (the width from the data, no layers) is
    fine-tuned by the command as one given layers=[784, 16]."""
    images, _ = load_mnist_5k()
    dbn = dlcore.DBN(hidden=[16], epochs=1, seed=0, backend="cpu")
    dlcore.save(dbn.fit(to_unit_interval(images[:200])), tmp_path / "dbn.h5")
    result = CliRunner().invoke(main, ["dbn", "finetune", str(tmp_path / "dbn.h5"), "--epochs",
                                       "1", "--backend", "cpu", "--out", str(tmp_path / "net")])
    assert result.exit_code == 0, result.output
    network = dlcore.load(tmp_path / "net" / "model.h5")
    assert network.predict(to_unit_interval(images[:3])).shape == (3, 10)


def test_with_labels_on_one_rbm_pretrains_without_up_down(digits, tmp_path):
    """--with-labels defaults to up-down fine-tuning, which needs two RBMs: a one-RBM DBN
    (--layers 784-16) failed after its pretraining; it now pretrains without up-down."""
    result = CliRunner().invoke(main, ["dbn", "pretrain", "--layers", "784-16",
                                       "--epochs-per-layer", "1", "--backend", "reference",
                                       "--with-labels", "--dataset", digits,
                                       "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert dlcore.load(tmp_path / "dbn.h5").up_down_epochs == 0


def test_a_batch_larger_than_the_training_images_is_said_once(digits, pretrained, tmp_path):
    """`dbn pretrain --batch-size 100000` (and finetune) trained one batch an epoch unsaid,
    as `rbm train` did."""
    result = CliRunner().invoke(main, ["dbn", "pretrain", "--layers", "784-4",
                                       "--epochs-per-layer", "1", "--backend", "cpu",
                                       "--dataset", digits, "--batch-size", "100000",
                                       "--out", str(tmp_path / "dbn")])
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stderr.splitlines() if "--batch-size 100000" in line]
    assert notes == ["dlcore: --batch-size 100000 is more than the 400 training images: each "
                     "epoch is one batch of 400, a single update (a smaller --batch-size "
                     "updates more often)"]
    tuned = CliRunner().invoke(main, ["dbn", "finetune", str(pretrained / "dbn.h5"),
                                      "--dataset", digits, "--epochs", "1", "--backend", "cpu",
                                      "--batch-size", "100000", "--out", str(tmp_path / "net")])
    assert tuned.exit_code == 0, tuned.output
    assert sum("--batch-size 100000 is more than the" in line
               for line in tuned.stderr.splitlines()) == 1


def tempering_top_dbn(tmp_path, labels=None, **options):
    """A small DBN saved to ``tmp_path / "dbn.h5"`` whose top RBM trained by parallel
    tempering (with label units of ``labels``' classes when given); its file's path."""
    X = (dlcore.backend.rng.uniform(60, 16, 2, dlcore.backend.rng.STREAM_SPLIT) < 0.3)
    dbn = dlcore.DBN(hidden=[8, 6], epochs=2, batch_size=10, backend="cpu",
                     n_labels=0 if labels is None else len(set(labels)),
                     rbm=[{}, {"sampler": "pt", "n_temperatures": 3}], **options)
    dbn.fit(X.astype(np.float32), None if labels is None else np.resize(labels, 60))
    dbn.sample(2, 2)   # the file's call counters are then not 0
    dlcore.save(dbn, tmp_path / "dbn.h5")
    return tmp_path / "dbn.h5"


@pytest.mark.parametrize("flags, call", [
    (["--seed", "3"], {"seed": 3}),
    (["--seed", "3", "--binary"], {"seed": 3, "probabilities": False}),
    (["--seed", "3", "--sampler", "gibbs"], {"seed": 3, "sampler": "gibbs"}),
    (["--binary"], {"probabilities": False}),   # the model's own sequence, from the file's
    (["--seed", "3", "--label", "dog"], {"seed": 3, "label": "dog"}),
    (["--seed", "3", "--label", "dog", "--binary"], {"seed": 3, "label": "dog",
                                                     "probabilities": False}),
])
def test_dbn_sample_draws_what_dbn_sample_draws_from_the_same_file(flags, call, tmp_path,
                                                                   monkeypatch):
    # `dbn sample --seed N` set the model's key and drew at call 1 where dbn.sample(seed=N)
    # draws at 0, drew --binary's pixels itself, and sampled a PT-trained top RBM by Gibbs
    # steps: the command and the notebook drew other pictures
    path = tempering_top_dbn(tmp_path, labels=["cat", "dog", "emu"])
    drawn = []
    monkeypatch.setattr(dlcore.viz, "save_tiles",
                        lambda tiles, out, **options: drawn.append(np.asarray(tiles)))
    result = CliRunner().invoke(main, ["dbn", "sample", str(path), "--n", "6", "--steps", "3",
                                       *flags, "--out", str(tmp_path / "samples.png")])
    assert result.exit_code == 0, result.output
    expected = dlcore.load(path).sample(6, 3, **call)
    np.testing.assert_array_equal(drawn[0].reshape(6, 16), expected)
    tempering = "label" not in call and call.get("sampler") != "gibbs"
    assert ("parallel tempering" in result.stdout) == tempering
    assert ("of class dog" in result.stdout) == ("label" in call)


@pytest.mark.parametrize("flags, steps", [
    (["--gibbs-steps", "3"], 3), (["--steps", "3", "--gibbs-steps", "3"], 3),
    (["--steps", "1000", "--gibbs-steps", "2"], None),
    (["--gibbs-steps", "2", "--steps", "3"], None),
])
def test_dbn_sample_refuses_steps_and_its_older_name_gibbs_steps_disagreeing(
        flags, steps, tmp_path, monkeypatch):
    # two names of one option: click took the last given, `--steps 5 --gibbs-steps 100` ran
    # 100 steps silently; dbn.sample(steps=5, gibbs_steps=100) refuses the pair
    path = tempering_top_dbn(tmp_path)
    drawn = []
    monkeypatch.setattr(dlcore.viz, "save_tiles",
                        lambda tiles, out, **options: drawn.append(np.asarray(tiles)))
    result = CliRunner().invoke(main, ["dbn", "sample", str(path), "--n", "2", "--seed", "1",
                                       *flags, "--out", str(tmp_path / "samples.png")])
    if steps is None:
        given = dict(zip(flags[::2], flags[1::2]))
        assert result.exit_code == 2 and not drawn, result.output
        [said] = result.output.strip().splitlines()
        assert said.startswith(
            f"dlcore: error: give --steps or --gibbs-steps (its older name), not both: --steps "
            f"{given['--steps']} and --gibbs-steps {given['--gibbs-steps']} disagree (see "), said
        return
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(drawn[0].reshape(2, 16),
                                  dlcore.load(path).sample(2, steps, seed=1))


@pytest.mark.parametrize("visible, flags, kind, scale, key", [
    ("gaussian", [], "means E[v | h]", "all", "visible mean E[v | h]"),
    ("gaussian", ["--binary"], "real values drawn", "all", "visible value"),
    ("bernoulli", [], "probabilities", None, None),
    ("bernoulli", ["--binary"], "binary pixels", None, None),
])
def test_dbn_sample_names_and_shows_a_gaussian_dbns_real_values_as_such(
        visible, flags, kind, scale, key, tmp_path, monkeypatch):
    # a Gaussian DBN's samples were titled "probabilities" / "binary pixels" and clipped to
    # [0, 1]: its standardised means and values mostly black or white
    X = dlcore.backend.rng.uniform(40, 16, 2, dlcore.backend.rng.STREAM_SPLIT)
    X = (X - 0.5) * 4 if visible == "gaussian" else (X < 0.3)
    dbn = dlcore.DBN(hidden=[6], visible=visible, epochs=1, batch_size=10, seed=0,
                     backend="cpu").fit(X.astype(np.float32))
    dlcore.save(dbn, tmp_path / "dbn.h5")
    drawn = []
    monkeypatch.setattr(dlcore.viz, "save_tiles",
                        lambda tiles, out, **options: drawn.append(options))
    result = CliRunner().invoke(main, ["dbn", "sample", str(tmp_path / "dbn.h5"), "--n", "4",
                                       "--steps", "2", *flags,
                                       "--out", str(tmp_path / "samples.png")])
    assert result.exit_code == 0, result.output
    options, = drawn
    assert options["title"] == f"DBN samples, 2 Gibbs steps ({kind})"
    assert (options["scale"], options["key"]) == (scale, key)


def test_dbn_sample_label_names_a_class_of_the_file_or_says_which_there_are(
        tmp_path, monkeypatch):
    # --label took 0..n_labels-1 only: the classes 1-3 of a DBN fitted on y in 1..3 were
    # refused at 3 and failed inside the library at 0, and string classes not at all
    monkeypatch.setattr(dlcore.viz, "save_tiles", lambda tiles, out, **options: None)
    numbered = tempering_top_dbn(tmp_path, labels=[1, 2, 3])
    sample = ["dbn", "sample", str(numbered), "--n", "2", "--steps", "2",
              "--out", str(tmp_path / "s.png")]
    result = CliRunner().invoke(main, [*sample, "--label", "3"])
    assert result.exit_code == 0 and "of class 3" in result.stdout, result.output
    refused = CliRunner().invoke(main, [*sample, "--label", "0"])
    assert refused.exit_code == 2
    assert len(refused.stderr.strip().splitlines()) == 1
    assert f"--label: '0' is not a class of {numbered} (1, 2, 3)" in refused.stderr
    # a training record that names the classes (Fashion-MNIST's garments): the name too
    garments = dlcore.load(numbered)
    garments.training_record_ = {"classes": [1, 2, 3],
                                 "class_names": ["Trouser", "Pullover", "Dress"]}
    dlcore.save(garments, tmp_path / "garments.h5")
    sample[2] = str(tmp_path / "garments.h5")
    result = CliRunner().invoke(main, [*sample, "--label", "dress"])
    assert result.exit_code == 0 and "of class 3 (Dress)" in result.stdout, result.output
    refused = CliRunner().invoke(main, [*sample, "--label", "Sandal"])
    assert refused.exit_code == 2 and "or by name: Trouser, Pullover, Dress" in refused.stderr


def test_dbn_sample_of_an_interrupted_pretraining_is_refused_in_one_line(tmp_path):
    # the note on CD-1 generators and the progress bar came first, the refusal third
    X = (dlcore.backend.rng.uniform(60, 16, 2, dlcore.backend.rng.STREAM_SPLIT) < 0.3)
    dbn = dlcore.DBN(hidden=[8, 6], epochs=2, batch_size=10, backend="cpu")
    epochs = []

    def interrupt_in_the_second_rbm(model):
        epochs.append(model)
        if len(epochs) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        dbn.fit(X.astype(np.float32), on_epoch_end=interrupt_in_the_second_rbm)
    dlcore.save(dbn, tmp_path / "checkpoint.h5")
    result = CliRunner().invoke(main, ["dbn", "sample", str(tmp_path / "checkpoint.h5"),
                                       "--n", "2", "--steps", "2",
                                       "--out", str(tmp_path / "s.png")])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "interrupted in RBM 2 of 2" in lines[0]
    assert "dlcore dbn pretrain --resume" in lines[0] and not (tmp_path / "s.png").exists()
