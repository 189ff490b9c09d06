"""The command line of networks: cnn train/evaluate, gradcheck, homework lenet-params, bench cnn;
and one-line errors for bad input."""
import csv
import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import dlcore
from conftest import assert_wrote
from dlcore.cli import main

TINY = ["--dataset", "mnist-5k", "--train-size", "256", "--epochs", "1", "--batch-size", "32",
        "--backend", "cpu"]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cnn")
    result = CliRunner().invoke(main, ["cnn", "train", *TINY, "--dropout", "0.2", "--augment",
                                       "--weight-decay", "0.25", "--out", str(out)])
    return result, out


def test_train_writes_every_promised_file(trained_run):
    result, out = trained_run
    assert_wrote(result, out, ["model.h5", "training_curve.png", "filters.png",
                               "confusion_matrix.png", "metrics.json"])


def test_train_prints_the_test_accuracy_it_records(trained_run):
    result, out = trained_run
    metrics = json.loads((out / "metrics.json").read_text())
    assert f"test accuracy: {metrics['test_accuracy']:.4f}" in result.stdout
    assert metrics["test_images"] == 1000 and len(metrics["history"]["val_loss"]) == 1


def test_training_seconds_are_the_seconds_of_the_epochs(trained_run):
    # not the wall clock of the command, whose set-up a resumed run's total did not count
    _, out = trained_run
    metrics = json.loads((out / "metrics.json").read_text())
    seconds = dlcore.load(out / "model.h5").history["seconds"]
    assert metrics["training_seconds"] == math.fsum(seconds) > 0


def test_trained_model_file_loads_and_predicts_images(trained_run):
    _, out = trained_run
    model = dlcore.load(out / "model.h5")
    probabilities = model.predict(np.zeros((3, 1, 28, 28), dtype=np.float32))
    assert probabilities.shape == (3, 10)


def test_filters_image_shows_the_six_first_layer_kernels(trained_run):
    _, out = trained_run
    width, height = Image.open(out / "filters.png").size
    assert width > height > 0   # 3 x 2 tiles of 5x5, zoomed


def test_evaluate_prints_loss_and_accuracy(trained_run):
    _, out = trained_run
    result = CliRunner().invoke(main, ["cnn", "evaluate", str(out / "model.h5"),
                                       "--dataset", "mnist-5k"])
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.stdout and "1,000 mnist-5k test images" in result.stdout


def test_evaluate_prints_the_classes_accuracy_whatever_its_compile(trained_run, tmp_path):
    """A model compiled with binary_accuracy (each of its 10 outputs against 0.5) printed that
    as its accuracy; the command reports how many images it classifies right."""
    _, out = trained_run
    model = dlcore.load(out / "model.h5")
    model.compile(model.loss, model.optimizer, ["binary_accuracy"])
    dlcore.save(model, tmp_path / "binary.h5")
    printed = [CliRunner().invoke(main, ["cnn", "evaluate", str(path), "--dataset",
                                         "mnist-5k"]).stdout.split(":", 1)[-1]
               for path in (out / "model.h5", tmp_path / "binary.h5")]
    assert "accuracy" in printed[0] and printed[0] == printed[1]


def test_flips_and_a_decaying_learning_rate_are_recorded(tmp_path):
    result = CliRunner().invoke(main, ["cnn", "train", *TINY, "--epochs", "2", "--flip",
                                       "--optimizer", "sgd", "--lr-decay", "0.5", "--out",
                                       str(tmp_path)])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["flip"] and metrics["history"]["learning_rate"] == [0.01, 0.005]


def test_mlp_trains_from_the_command_line(tmp_path):
    result = CliRunner().invoke(main, ["cnn", "train", *TINY, "--model", "mlp",
                                       "--optimizer", "rmsprop", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "metrics.json").read_text())["optimizer"] == "rmsprop"


@pytest.mark.parametrize("arguments, code", [
    (["cnn", "train", "--model", "vgg16"], 2),
    (["cnn", "train", "--optimizer", "lbfgs"], 2),
    (["cnn", "train", "--dataset", "no-such-set", "--train-size", "10"], 1),
    (["cnn", "evaluate", "/no/such/model.h5"], 2),   # a usage error, as rbm evaluate
    (["gradcheck", "--model", "resnet"], 2),
    (["cnn", "train", "--model", "mlp", "--augment"], 2),
], ids=["model", "optimizer", "dataset", "missing-file", "gradcheck-model", "mlp-augment"])
def test_bad_input_is_one_line_on_stderr_and_a_nonzero_exit(arguments, code, tmp_path):
    result = CliRunner().invoke(main, arguments + (["--out", str(tmp_path)]
                                                   if arguments[:2] == ["cnn", "train"] else []))
    assert result.exit_code == code
    assert len(result.stderr.strip().splitlines()) == 1 and "error" in result.stderr


@pytest.mark.parametrize("options, said", [
    (["--momentum", "0.5"], "--momentum sets SGD's momentum, and --optimizer adam is not sgd: "
                            "give --optimizer sgd, or drop --momentum"),
    (["--optimizer", "rmsprop", "--momentum", "0.9"], "--optimizer rmsprop is not sgd"),
    (["--validation-split", "0", "--validation-freq", "2"],
     "--validation-freq sets how often the held-out images are validated, and "
     "--validation-split 0 holds none out: give a --validation-split above 0, or drop "
     "--validation-freq"),
])
def test_an_option_the_others_leave_unread_is_refused_in_one_line(options, said, tmp_path):
    # --momentum with adam (the default optimiser) and --validation-freq without held-out
    # images were taken and ignored: the run trained without them, unsaid
    result = CliRunner().invoke(main, ["cnn", "train", *TINY, *options, "--out",
                                       str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    [line] = result.stderr.strip().splitlines()
    assert said in line and not (tmp_path / "run").exists()


def test_a_train_size_above_the_training_images_is_one_line_not_a_smaller_run(tmp_path):
    # mnist-5k keeps 1,000 of its 5,000 images for the test: 4,000 to train on
    result = CliRunner().invoke(main, ["cnn", "train", "--dataset", "mnist-5k", "--train-size",
                                       "100000", "--epochs", "1", "--out", str(tmp_path)])
    assert result.exit_code == 2
    [line] = result.stderr.strip().splitlines()
    assert "--train-size: 100000 is more than the 4000 training images of mnist-5k" in line
    assert not (tmp_path / "model.h5").exists()


def test_an_unwritable_output_folder_is_one_line_and_exit_1(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = CliRunner().invoke(main, ["cnn", "train", *TINY, "--out", str(blocker / "out")])
    assert result.exit_code == 1
    assert "output folder" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_evaluate_refuses_a_file_that_is_not_a_network(tmp_path):
    rbm = dlcore.BernoulliRBM(n_hidden=3, epochs=1).fit(np.zeros((4, 6), dtype=np.float32))
    dlcore.save(rbm, tmp_path / "rbm.h5")
    result = CliRunner().invoke(main, ["cnn", "evaluate", str(tmp_path / "rbm.h5")])
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert "holds a BernoulliRBM, not a network: give the model.h5 of `dlcore cnn train`" in line


def test_gradcheck_prints_the_table_and_passes():
    result = CliRunner().invoke(main, ["gradcheck", "--model", "lenet5", "--entries", "3"])
    assert result.exit_code == 0, result.output
    assert "c1/kernel" in result.stdout and "input" in result.stdout
    assert "largest relative error" in result.stdout


def test_gradcheck_names_the_2016_lectures_convnet_by_its_year():
    # the choice was our file number of that lecture, which students never see
    result = CliRunner().invoke(main, ["gradcheck", "--model", "convnet_2016", "--entries", "2",
                                       "--batch", "1"])
    assert result.exit_code == 0, result.output
    assert "gradient check of convnet_2016" in result.stdout and "conv2d/kernel" in result.stdout


def test_homework_lenet_params_shows_the_arithmetic():
    result = CliRunner().invoke(main, ["homework", "lenet-params"])
    assert result.exit_code == 0, result.output
    # c1's padding of 2 is what keeps 28x28 (a student without it gets 24x24)
    for text in ("padding 2 in c1, none in c3;", "6 x (1 x 5 x 5) + 6", "16 x (6 x 5 x 5) + 16",
                 "400 x 120 + 120", "= 61,706 parameters"):
        assert text in result.stdout


@pytest.mark.slow
def test_bench_cnn_reports_both_tasks_as_json():
    result = CliRunner().invoke(main, ["bench", "cnn", "--train-images", "128",
                                       "--test-images", "64", "--repeats", "1", "--backend",
                                       "cpu", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    tasks = {(c["work"]["task"], r["name"].split()[0]) for c in report["comparisons"]
             for r in c["results"]}
    assert ("training epoch", "dlcore") in tasks and ("inference", "dlcore") in tasks
    if report["setting"]["torch"] == "included":
        assert ("training epoch", "PyTorch") in tasks


def test_filters_image_enlarges_every_kernel_to_be_readable(trained_run):
    _, out = trained_run
    with Image.open(out / "filters.png") as figure:
        width, height = figure.size
    assert height >= 80 + 25 and width >= 6 * 80   # 5x5 kernels drawn 80 px a side, titled


def test_evaluate_warns_in_one_line_when_the_data_set_is_not_the_training_one(trained_run,
                                                                              tmp_path):
    _, out = trained_run
    images, labels = dlcore.datasets.load_mnist_5k()
    rows = np.arange(0, 5000, 50)
    for split in ("train", "t10k"):
        dlcore.datasets.write_idx(tmp_path / f"{split}-images-idx3-ubyte", images[rows])
        dlcore.datasets.write_idx(tmp_path / f"{split}-labels-idx1-ubyte", labels[rows])
    same = CliRunner().invoke(main, ["cnn", "evaluate", str(out / "model.h5"), "--dataset",
                                     "mnist-5k", "--backend", "cpu"])
    other = CliRunner().invoke(main, ["cnn", "evaluate", str(out / "model.h5"), "--dataset",
                                      str(tmp_path), "--backend", "cpu"])
    assert same.exit_code == 0 and other.exit_code == 0, other.output
    assert "warning" not in same.stderr
    warnings = [line for line in other.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "was trained on mnist-5k" in warnings[0]


def test_train_records_the_data_set_and_its_classes_in_the_model_file(trained_run):
    _, out = trained_run
    record = dlcore.load(out / "model.h5").training_record_
    assert record["dataset"] == "mnist-5k" and record["classes"] == list(range(10))
    assert record["n_images"] == 256 and record["parameters"]["train_size"] == 256
    assert record["command"].endswith("cnn train")


def test_evaluate_runs_on_the_backend_asked(trained_run):
    _, out = trained_run
    result = CliRunner().invoke(main, ["cnn", "evaluate", str(out / "model.h5"), "--dataset",
                                       "mnist-5k", "--backend", "reference"])
    assert result.exit_code == 0, result.output


def test_defaults_depend_on_the_training_set_size_and_say_so_in_help():
    from dlcore.cli.cnn import size_defaults
    epochs, decay, dropout = size_defaults(3_600, None, None, None)   # mnist-5k's training rows
    assert (epochs, dropout) == (60, 0.2) and decay ** 60 == pytest.approx(0.2)
    epochs, decay, dropout = size_defaults(54_000, None, None, None)  # Fashion-MNIST's
    assert (epochs, dropout) == (40, 0.0) and decay ** 40 == pytest.approx(0.2)
    assert size_defaults(54_000, 7, 0.5, 0.3) == (7, 0.5, 0.3)
    help_text = " ".join(CliRunner().invoke(main, ["cnn", "train", "--help"]).stdout.split())
    assert "60 below 10,000 training images, 40 from there" in help_text
    assert "Default: 0.2 below 10,000 training images, 0 from there" in help_text


def test_lenet5_shifts_its_training_images_by_default_and_not_with_no_augment(tmp_path):
    for flag, expected in (([], True), (["--no-augment"], False)):
        out = tmp_path / str(expected)
        result = CliRunner().invoke(main, ["cnn", "train", *TINY, "--train-size", "64", *flag,
                                           "--out", str(out)])
        assert result.exit_code == 0, result.output
        first = dlcore.load(out / "model.h5").layers[0]
        assert isinstance(first, dlcore.layers.ImageAugmentation) == expected
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["augment"] is expected
        assert metrics["learning_rate"] == pytest.approx(0.002)     # LeNet-5's Adam default
        assert metrics["dropout"] == 0.2    # the default below 10,000 images
        assert sum(isinstance(layer, dlcore.layers.Dropout)
                   for layer in dlcore.load(out / "model.h5").layers) == 2


def test_augment_true_is_the_augmentation_of_the_command_lines_augment():
    """lenet5(augment=True) and mlp(augment=True), the Python twin of ``--augment``, died
    with "argument after ** must be a mapping, not bool"; anything but True, a dict or None
    is refused in one line naming them."""
    from dlcore.cli.cnn import build_model
    switched_on = build_model("lenet5", (1, 28, 28), 10, 0.0, True, False, "reference", 0)
    for build in (dlcore.models.lenet5, dlcore.models.mlp):
        first = build(augment=True, backend="reference").layers[0]
        assert first.get_config() == switched_on.layers[0].get_config()
        assert not isinstance(build(augment=False).layers[0],
                              dlcore.layers.ImageAugmentation)
        with pytest.raises(ValueError, match=r"^augment takes True \(shifts of up to 2 pixels\)"
                                             r", a dict of ImageAugmentation arguments, e\.g\. "
                                             r"\{'max_shift': 2, 'horizontal_flip': True\}, or "
                                             r"None; got 'yes'$"):
            build(augment="yes")


def held_out_accuracy(model, split_seed):
    """Oracle: the accuracy on the 100 images per class of mnist-5k that
    holdout_split(seed=split_seed) holds out."""
    images, labels = dlcore.datasets.load_mnist_5k()
    _, test = dlcore.datasets.holdout_split(labels, 100, seed=split_seed)
    x = dlcore.datasets.to_unit_interval(images[test]).reshape(-1, *model.input_shape)
    return float(np.mean(model.predict(x).argmax(axis=1) == labels[test]))


def evaluated_accuracy(result):
    assert result.exit_code == 0, result.output
    return float(result.stdout.split("accuracy ", 1)[1].split()[0])


def test_evaluate_measures_on_the_mnist_5k_images_the_network_was_trained_without(tmp_path):
    """Trained with --seed 3, the network held out holdout_split(seed=3)'s images: evaluate
    finds that split in the model file, as the metrics.json of the run measured it."""
    out = tmp_path / "seed3"
    trained = CliRunner().invoke(main, ["cnn", "train", "--model", "mlp", *TINY, "--seed", "3",
                                        "--out", str(out)])
    assert trained.exit_code == 0, trained.output
    model = dlcore.load(out / "model.h5")
    runner = CliRunner()
    result = runner.invoke(main, ["cnn", "evaluate", str(out / "model.h5"),
                                  "--dataset", "mnist-5k"])
    accuracy = evaluated_accuracy(result)
    assert accuracy == pytest.approx(held_out_accuracy(model, 3), abs=1e-4)
    assert accuracy == pytest.approx(json.loads((out / "metrics.json").read_text())[
        "test_accuracy"], abs=1e-4)
    assert "hold-out split of seed 3, the --seed the model was trained with" in result.stdout
    other = runner.invoke(main, ["cnn", "evaluate", str(out / "model.h5"),
                                 "--dataset", "mnist-5k", "--split-seed", "0"])
    assert evaluated_accuracy(other) == pytest.approx(held_out_accuracy(model, 0), abs=1e-4)
    assert "hold-out split of --split-seed 0" in other.stdout


def test_evaluate_measures_a_dbn_finetune_network_on_dbns_fixed_split(tmp_path):
    """dbn finetune holds out seed 0's split whatever its --seed."""
    runner = CliRunner()
    pretrained = runner.invoke(main, ["dbn", "pretrain", "--layers", "784-16",
                                      "--epochs-per-layer", "1", "--backend", "cpu",
                                      "--out", str(tmp_path / "dbn")])
    assert pretrained.exit_code == 0, pretrained.output
    finetuned = runner.invoke(main, ["dbn", "finetune", str(tmp_path / "dbn" / "dbn.h5"),
                                     "--epochs", "1", "--seed", "4", "--backend", "cpu",
                                     "--out", str(tmp_path / "net")])
    assert finetuned.exit_code == 0, finetuned.output
    printed = float(finetuned.stdout.split("test accuracy ", 1)[1].split()[0])
    result = runner.invoke(main, ["cnn", "evaluate", str(tmp_path / "net" / "model.h5"),
                                  "--dataset", "mnist-5k"])
    assert evaluated_accuracy(result) == pytest.approx(printed, abs=1e-4)
    assert "seed 0, the one 'dlcore dbn finetune' holds out" in result.stdout


def test_evaluate_measures_a_homework_pretraining_network_on_dbns_fixed_split(tmp_path):
    """homework pretraining tests on seed 0's split whatever its --seed; its network files
    say which command trained them."""
    out = tmp_path / "table"
    trained = CliRunner().invoke(main, ["homework", "pretraining", "--dataset", "mnist-5k",
                                        "--layers", "784-8-8", "--rows", "shallow",
                                        "--train-size", "100", "--epochs", "1", "--seed", "2",
                                        "--backend", "cpu", "--out", str(out)])
    assert trained.exit_code == 0, trained.output
    with open(out / "pretraining.csv") as handle:
        test_error = float(next(csv.DictReader(handle))["test_error"])
    result = CliRunner().invoke(main, ["cnn", "evaluate", str(out / "shallow_net.h5"),
                                       "--dataset", "mnist-5k"])
    assert evaluated_accuracy(result) == pytest.approx(1 - test_error, abs=1e-4)
    assert "seed 0, the one 'dlcore homework pretraining' holds out" in result.stdout


def test_evaluate_measures_a_network_on_the_data_set_it_was_trained_on_by_default(trained_run):
    """A teacher's `cnn evaluate model.h5` of a network trained on mnist-5k: mnist-5k's
    held-out digits, not Fashion-MNIST's test images (the option's fallback)."""
    _, out = trained_run
    result = CliRunner().invoke(main, ["cnn", "evaluate", str(out / "model.h5"),
                                       "--backend", "cpu"])
    assert result.exit_code == 0, result.output
    assert "on 1,000 mnist-5k test images" in result.stdout
    assert "warning" not in result.stderr


def test_validation_freq_validates_every_kth_epoch_and_metrics_json_stays_json(tmp_path):
    """--validation-freq 2 over 3 epochs validates after epoch 2 only (it was no option):
    metrics.json, strict JSON, has null at the others; the model file keeps NaN there."""
    result = CliRunner().invoke(main, ["cnn", "train", *TINY, "--model", "mlp", "--epochs", "3",
                                       "--validation-freq", "2", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "metrics.json").read_text()
    metrics = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))
    assert metrics["validation_freq"] == 2
    assert [value is None for value in metrics["history"]["val_loss"]] == [True, False, True]
    assert len(metrics["history"]["loss"]) == 3 and None not in metrics["history"]["loss"]
    history = dlcore.load(tmp_path / "model.h5").history
    assert history["val_accuracy"][1] == metrics["history"]["val_accuracy"][1]
    assert np.isnan(history["val_accuracy"][0])
    assert CliRunner().invoke(main, ["cnn", "train", *TINY, "--validation-freq", "0", "--out",
                                     str(tmp_path / "zero")]).exit_code == 2


@pytest.mark.parametrize("optimizer, name", [("adamw", "AdamW"), ("nadam", "Nadam")])
def test_train_takes_adamw_and_nadam(tmp_path, optimizer, name):
    """--optimizer adamw / nadam (Keras's AdamW and Nadam, which it did not offer) train the
    network with them, at 0.001 by default, kept in its file."""
    result = CliRunner().invoke(main, ["cnn", "train", *TINY, "--model", "mlp", "--optimizer",
                                       optimizer, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    model = dlcore.load(tmp_path / "model.h5")
    assert type(model.optimizer).__name__ == name
    assert model.optimizer.learning_rate.initial_learning_rate == 0.001


@pytest.mark.slow   # a whole cnn train run (mnist-5k read, its pictures drawn): ~3-7 s
def test_train_takes_adamax_adadelta_lion_and_ftrl(tmp_path):
    """--optimizer adamax / adadelta / lion / ftrl, which the library and Keras files had,
    were no choice of cnn train nor of dbn finetune: they are (a resumed run takes its
    record's optimiser through the same choice), and adadelta, the one with a default rate
    of its own, Zeiler's 1, trains and is recorded. One optimiser runs: each run costs
    seconds."""
    from dlcore.cli.cnn import train
    from dlcore.cli.dbn import finetune_command
    for command in (train, finetune_command):
        choices = next(param.type.choices for param in command.params
                       if param.name == "optimizer")
        assert {"adamax", "adadelta", "lion", "ftrl"} <= set(choices)
    optimizer, name = "adadelta", "Adadelta"
    runner = CliRunner()
    result = runner.invoke(main, ["cnn", "train", *TINY, "--model", "mlp", "--optimizer",
                                  optimizer, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "metrics.json").read_text())["optimizer"] == optimizer
    model = dlcore.load(tmp_path / "model.h5")
    assert type(model.optimizer).__name__ == name
    assert model.optimizer.learning_rate.initial_learning_rate == 1.0


def test_weight_decay_is_an_option_of_every_optimizer_recorded_and_resumed(trained_run,
                                                                           tmp_path):
    """cnn train had no --weight-decay (adamw's was a fixed 0.004): it now sets any
    optimiser's (the run's Adam), is refused in one line where it would zero the weights, is
    recorded, and a resumed run keeps the checkpoint's (another value refused)."""
    _, out = trained_run
    assert json.loads((out / "metrics.json").read_text())["weight_decay"] == 0.25
    assert dlcore.load(out / "model.h5").optimizer.weight_decay == 0.25
    runner = CliRunner()
    refused = runner.invoke(main, ["cnn", "train", "--resume", str(out / "model.h5"),
                                   "--weight-decay", "0.5", "--out", str(tmp_path / "more")])
    assert refused.exit_code == 2 and "--weight-decay 0.5 differs" in refused.output \
        and "start a new run" in refused.output, refused.output
    for bad, message in [("200", "zeroes or flips them"), ("-1", "x>=0")]:
        result = runner.invoke(main, ["cnn", "train", "--optimizer", "sgd", "--weight-decay",
                                      bad, "--out", str(tmp_path / "bad")])
        assert result.exit_code == 2 and message in result.output, result.output
        assert "Traceback" not in result.output and not (tmp_path / "bad").exists()


@pytest.mark.slow   # two whole cnn train runs (a run and its resumption): ~6-8 s
def test_a_resumed_adamw_run_takes_its_default_weight_decay_given_again(tmp_path):
    """A run of adamw without --weight-decay trains with Keras's 0.004: resumed with
    --weight-decay 0.004, the same decay, it was refused as differing "from the default
    value" (its record's None); now it goes on, and another value is still refused."""
    runner = CliRunner()
    result = runner.invoke(main, ["cnn", "train", *TINY, "--model", "mlp", "--optimizer",
                                  "adamw", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    checkpoint = str(tmp_path / "model.h5")
    refused = runner.invoke(main, ["cnn", "train", "--resume", checkpoint, "--epochs", "2",
                                   "--weight-decay", "0.01", "--out", str(tmp_path / "other")])
    assert refused.exit_code == 2 and "--weight-decay 0.01 differs from the 0.004" in \
        refused.output, refused.output
    resumed = runner.invoke(main, ["cnn", "train", "--resume", checkpoint, "--epochs", "2",
                                   "--weight-decay", "0.004", "--out", str(tmp_path / "more")])
    assert resumed.exit_code == 0, resumed.output
    assert json.loads((tmp_path / "more" / "metrics.json").read_text())["weight_decay"] == 0.004


def test_a_resumed_run_refuses_a_weight_decay_its_checkpoint_did_not_train_with(tmp_path):
    """A checkpoint whose record has no --weight-decay (written before it existed): a value
    given on resuming, which the checkpoint's optimiser would silently not take, is refused."""
    import click

    from dlcore.cli.cnn import resumed_weight_decay
    model = dlcore.Sequential([dlcore.layers.Dense(2, input_shape=(3,))]).compile(
        "mse", dlcore.optimizers.AdamW())
    assert resumed_weight_decay(model, None) == 0.004
    assert resumed_weight_decay(model, 0.004) == 0.004
    with pytest.raises(click.UsageError, match="--weight-decay 0.1 differs from the weight "
                                               "decay 0.004"):
        resumed_weight_decay(model, 0.1)
