"""Every command checks its inputs before the first epoch: inputs that used to fail only after
training (non-square images that cannot be drawn, a class selection with no images, a network
fed images of another size) are refused first, in one line, with no output folder left behind.

Oracles: the exit code, a single ``dlcore: error:`` line naming the problem, and the absence of
both the training progress and the --out folder."""
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner

from dlcore import datasets
from dlcore.cli import main
from dlcore.cli._common import OneLineErrorGroup
from dlcore.datasets.mnist import split_file_names


def write_idx_folder(folder, images, labels):
    """The same images and labels as the train and the test split of an IDX folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        images_name, labels_name = split_file_names(split)
        datasets.write_idx(folder / images_name, images)
        datasets.write_idx(folder / labels_name, labels)
    return str(folder)


@pytest.fixture(scope="module")
def wide_images(tmp_path_factory):
    """20 x 30 images of classes 0-4 (8 each): not square, so no filter can be drawn."""
    images = np.random.default_rng(0).integers(0, 256, (40, 20, 30), dtype=np.uint8)
    labels = np.repeat(np.arange(5, dtype=np.uint8), 8)
    return write_idx_folder(tmp_path_factory.mktemp("wide"), images, labels)


@pytest.fixture(scope="module")
def small_digits(tmp_path_factory):
    """20 digits of each of the classes 0-4 from mnist-5k, 28 x 28."""
    images, labels = datasets.load_mnist_5k()
    rows = np.concatenate([np.flatnonzero(labels == k)[:20] for k in range(5)])
    return write_idx_folder(tmp_path_factory.mktemp("digits04"), images[rows], labels[rows])


def assert_refused_before_training(result, out, *words):
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dlcore: error:"), result.stderr
    for word in words:
        assert word in lines[0]
    assert "epoch" not in result.stderr and not out.exists()


@pytest.mark.parametrize("command", [
    ["homework", "task1", "--train-digits", "0-2", "--test-digits", "0-4"],
    ["rbm", "train", "--digits", "0-4"],
])
def test_rbm_commands_refuse_non_square_images_before_training(command, wide_images, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [*command, "--dataset", wide_images, "--epochs", "1",
                                       "--hidden", "4", "--backend", "cpu", "--out", str(out)])
    assert_refused_before_training(result, out, "600 visible units as a square image")


@pytest.mark.parametrize("layers", ["600-8", "784-8"])
def test_dbn_pretrain_refuses_non_square_images_before_training(wide_images, tmp_path, layers):
    """Whatever --layers: the square images come first (the advice to start --layers with
    600 would lead to this refusal)."""
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["dbn", "pretrain", "--layers", layers,
                                       "--dataset", wide_images, "--epochs-per-layer", "1",
                                       "--backend", "cpu", "--out", str(out)])
    assert_refused_before_training(result, out, "600 visible units as a square image")


def test_task1_refuses_test_classes_without_images_before_training(small_digits, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["homework", "task1", "--dataset", small_digits,
                                       "--train-digits", "0-2", "--test-digits", "7-8",
                                       "--epochs", "1", "--hidden", "4", "--backend", "cpu",
                                       "--out", str(out)])
    assert_refused_before_training(result, out, "--test-digits", "no held-out images")


def test_rbm_train_names_its_own_option_for_an_empty_selection(small_digits, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["rbm", "train", "--dataset", small_digits, "--digits",
                                       "8-9", "--epochs", "1", "--backend", "cpu",
                                       "--out", str(out)])
    assert_refused_before_training(result, out, "--digits", "no training images")


def evaluate_error_lines(folder, n_classes, dataset):
    """``cnn evaluate`` of a saved 28x28 MLP with ``n_classes`` outputs on ``dataset``: it must
    fail with exit code 1; its stderr lines."""
    import dlcore
    network = dlcore.models.mlp((1, 28, 28), n_classes=n_classes, backend="cpu")
    network.compile("cross_entropy", "sgd", ["accuracy"])
    dlcore.save(network, folder / "net.h5")
    result = CliRunner().invoke(main, ["cnn", "evaluate", str(folder / "net.h5"),
                                       "--dataset", dataset, "--backend", "cpu"])
    assert result.exit_code == 1
    return result.stderr.strip().splitlines()


def test_cnn_evaluate_refuses_images_of_another_size_in_one_line(tmp_path, wide_images):
    lines = evaluate_error_lines(tmp_path, 5, wide_images)
    assert len(lines) == 1 and "images are 1x20x30" in lines[0] \
        and "inputs of 1x28x28" in lines[0]


def test_cnn_evaluate_refuses_labels_beyond_the_outputs(tmp_path, small_digits):
    lines = evaluate_error_lines(tmp_path, 3, small_digits)
    assert len(lines) == 1 and "labels up to 4" in lines[0] and "3 outputs" in lines[0]


def test_a_missing_choice_option_lists_its_choices_on_one_readable_line():
    # Click lists the choices one per line ("Choose from:", "keras,", "dlcore"): joined with
    # "; " they read "Choose from:; keras,; dlcore" (no dlcore command has a required choice
    # since `convert` takes the format from a .keras name: a command of the test's own)
    group = OneLineErrorGroup("dlcore")

    @group.command("pick")
    @click.option("--to", type=click.Choice(["keras", "dlcore"]), required=True)
    def pick(to):
        """A required choice."""
    result = CliRunner().invoke(group, ["pick"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert "Missing option '--to'. Choose from: keras, dlcore (see '" in lines[0]


def test_convert_takes_a_keras_name_as_the_format_and_asks_for_to_where_a_name_is_either(
        tmp_path):
    """`dlcore convert IN OUT.keras` was refused "Missing option '--to'" though .keras names
    Keras's archive; a .h5 name is either format (Keras's legacy HDF5 model file, dlcore's
    own), so there --to is still asked for, in one line, before IN is read; `--to dlcore` of
    a .keras name is refused before IN is read too (it was refused after loading it, with
    advice for the Python API)."""
    import zipfile

    import dlcore
    from dlcore.layers import Dense
    model_file = tmp_path / "model.h5"
    dlcore.save(dlcore.models.Sequential([Dense(2, input_shape=(3,))]).build(), model_file)
    archive = tmp_path / "out.keras"
    result = CliRunner().invoke(main, ["convert", str(model_file), str(archive)])
    assert result.exit_code == 0, result.output
    assert zipfile.is_zipfile(archive) and "keras format" in result.output
    missing = str(tmp_path / "not-there.h5")   # refused before it is read
    for name, to, said in [("out.h5", [], "give --to keras or --to dlcore"),
                           ("out", [], "give --to keras or --to dlcore"),
                           ("x.keras", ["--to", "dlcore"], "give --to keras, or name the "
                                                           "dlcore file x.h5")]:
        result = CliRunner().invoke(main, ["convert", missing, str(tmp_path / name), *to])
        assert result.exit_code == 2, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and said in lines[0], lines
        assert not (tmp_path / name).exists()


def test_fashion_mnist_classes_are_taken_by_the_names_the_outputs_print():
    from dlcore.cli._digits import parse_digits
    assert parse_digits("--train-digits", "Sandal, sneaker", "fashion-mnist") == [5, 7]
    assert parse_digits("--train-digits", "0,Bag,T-shirt/top,ankle boot",
                        "fashion-mnist") == [0, 8, 9]
    assert parse_digits("--train-digits", "1-3,Bag", "fashion-mnist") == [1, 2, 3, 8]


def test_a_class_name_that_is_not_one_lists_every_number_and_name(tmp_path):
    result = CliRunner().invoke(main, ["homework", "task1", "--dataset", "fashion-mnist",
                                       "--train-digits", "Sandals,Sneaker", "--out",
                                       str(tmp_path)])
    assert result.exit_code == 2
    [line] = result.stderr.strip().splitlines()
    assert "cannot read 'Sandals'" in line and "'Sandals,Sneaker'" in line
    assert "write a class '3'" in line and "(classes 0-9)" in line and "a digit" not in line
    assert ("the classes of fashion-mnist: 0 T-shirt/top, 1 Trouser, 2 Pullover, 3 Dress, "
            "4 Coat, 5 Sandal, 6 Shirt, 7 Sneaker, 8 Bag, 9 Ankle boot") in line


@pytest.mark.parametrize("classes, problem", [
    ("12", "12 is not a class 0-9"),
    ("3-1", "the range 3-1 runs backwards"),
    ("Sandal,", "cannot read ''"),
])
def test_a_garment_selection_out_of_range_never_speaks_of_digits(classes, problem):
    from dlcore.cli._digits import parse_digits
    with pytest.raises(click.BadParameter) as error:
        parse_digits("--train-digits", classes, "fashion-mnist")
    message = str(error.value)
    assert problem in message and "(classes 0-9)" in message
    assert "digit" not in message


def test_a_digit_selection_out_of_range_still_speaks_of_digits():
    from dlcore.cli._digits import parse_digits
    with pytest.raises(click.BadParameter) as error:
        parse_digits("--digits", "12", "mnist-5k")
    assert "12 is not a digit 0-9" in str(error.value) and "(digits 0-9)" in str(error.value)


def test_digits_have_no_names_to_list():
    from dlcore.cli._digits import parse_digits
    with pytest.raises(click.BadParameter) as error:
        parse_digits("--digits", "Sandal", "mnist-5k")
    assert "the classes of" not in str(error.value)


def test_the_fix_for_missing_mnist_files_names_the_command_lines_way_too():
    """The message ends with the fix; `path=` is the Python function's, which the command
    line cannot pass: its way is --dataset FOLDER."""
    from pathlib import Path

    from dlcore.datasets.mnist import MNIST, missing_message
    message = missing_message(MNIST, "train", [(Path("/nowhere/mnist"), "cache")],
                              download_failure="no network", target=Path("/nowhere/mnist"))
    fix = message.splitlines()[-1]
    assert fix.endswith("or pass their folder as path= (on the command line: --dataset "
                        "FOLDER).")


@pytest.mark.parametrize("arguments", [
    ["dbn", "pretrain", "--layers", "784-4", "--epochs-per-layer", "1", "--dataset", "MNIST-5k"],
    ["ae", "train", "--digits", "1-2", "--hidden", "4", "--epochs", "1", "--dataset",
     "mnist_5k"],
    ["homework", "task1", "--train-digits", "1", "--test-digits", "1-2", "--hidden", "4",
     "--epochs", "1", "--dataset", " Mnist-5K"],
], ids=lambda words: " ".join(words[:2]))
def test_the_bundled_data_set_by_any_name_the_loaders_take_gets_its_held_out_split(
        tmp_path, arguments):
    """The loaders take mnist-5k as MNIST-5k or mnist_5k; the commands gave such a name the
    official test split mnist-5k lacks, and Python's advice to hold one out."""
    from dlcore import load
    result = CliRunner().invoke(main, [*arguments, "--backend", "cpu", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    model = next(path for path in tmp_path.iterdir() if path.suffix == ".h5")
    assert load(model).training_record_["dataset"] == "mnist-5k"


@pytest.mark.parametrize("command", ["finetune", "evaluate"])
def test_a_dbn_given_images_of_another_width_asks_for_its_data_set(command, wide_images,
                                                                   tmp_path):
    from dlcore import DBN, save
    images, _ = datasets.load_mnist_5k()
    dbn = DBN(layers=[784, 4], epochs=1, backend="cpu")
    save(dbn.fit(datasets.to_unit_interval(images[:100])), tmp_path / "dbn.h5")
    result = CliRunner().invoke(main, ["dbn", command, str(tmp_path / "dbn.h5"),
                                       "--dataset", wide_images, "--backend", "cpu",
                                       "--out" if command == "finetune" else "--samples",
                                       str(tmp_path / "out") if command == "finetune" else "1"])
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        f"dlcore: error: {wide_images} images have 600 pixels but the first layer has 784 "
        f"units: give the --dataset {tmp_path / 'dbn.h5'} was trained on")


@pytest.mark.parametrize("command", ["cnn train", "dbn finetune"])
def test_a_validation_split_that_leaves_nothing_to_train_on_is_one_line(command, tmp_path):
    """It met the library's "step_size must be >= 1, got 0" (cnn train) or an empty batch
    (dbn finetune) instead."""
    from dlcore import DBN, save
    if command == "cnn train":
        arguments = ["cnn", "train", "--model", "mlp", "--dataset", "mnist-5k", "--train-size",
                     "10", "--validation-split", "0.95"]
        expected = "0.95 holds out 10 of the 10 training images"
    else:
        images, _ = datasets.load_mnist_5k()
        dbn = DBN(layers=[784, 4], epochs=1, backend="cpu")
        save(dbn.fit(datasets.to_unit_interval(images[:100])), tmp_path / "dbn.h5")
        arguments = ["dbn", "finetune", str(tmp_path / "dbn.h5"), "--validation-split", "0.9999"]
        expected = "0.9999 holds out 4000 of the 4000 training images"
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [*arguments, "--epochs", "1", "--backend", "cpu",
                                       "--out", str(out)])
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == (
        f"dlcore: error: Invalid value for --validation-split: {expected}, which leaves none "
        f"to train on: give a smaller one (see 'main {command} --help')")   # CliRunner's name
    assert not out.exists()


def test_lenet5_on_images_its_layers_do_not_fit_is_one_line_with_the_commands_fix(
        wide_images, tmp_path):
    """The library's advice (MaxPool2D((2, 3), stride=2), padding='same', ...) changes layers
    the command line cannot reach."""
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["cnn", "train", "--dataset", wide_images, "--epochs", "1",
                                       "--backend", "cpu", "--out", str(out)])
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        f"dlcore: error: LeNet-5's layers do not fit the 20 x 30 images of {wide_images} "
        "(MaxPool2D does not fit along the width): train --model mlp on them")
    assert not out.exists()


def test_a_size_too_large_for_memory_is_one_line_naming_the_fix(tmp_path):
    # 784 x (2**31 - 1) float32 weights are 6 TiB: more than any machine here has, so NumPy's
    # allocation fails at once, before any training (a larger --hidden is no model file's)
    result = CliRunner().invoke(main, ["rbm", "train", "--hidden", str(2 ** 31 - 1), "--epochs",
                                       "1", "--out", str(tmp_path / "run")])
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("dlcore: error: out of memory (unable to allocate ")
    assert "(784, 2147483647)" in line and "choose smaller sizes (such as --hidden" in line
    assert not (tmp_path / "run" / "model.h5").exists()


def test_a_size_past_any_array_is_one_line_naming_the_fix(tmp_path):
    """`--hidden 100000000000000000000` (a typo's extra zeros) said NumPy's "Maximum allowed
    dimension exceeded", naming no option and no fix: NumPy refuses such a shape with a
    ValueError before asking for memory. Such an option is now refused as no model file's;
    a size computed past any array's still gets the line."""
    @click.group(cls=OneLineErrorGroup)
    def probe():
        pass

    @probe.command()
    def allocate():
        np.zeros((10 ** 20, 784), np.float32)

    result = CliRunner().invoke(probe, ["allocate"])
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert line == ("dlcore: error: a size too large for any array (maximum allowed dimension "
                    "exceeded); choose smaller sizes (such as --hidden, --batch-size or the "
                    "number of images)")
    assert not (tmp_path / "run" / "model.h5").exists()


def _every_command(command, path=()):
    if isinstance(command, click.Group):
        for name, sub_command in command.commands.items():
            yield from _every_command(sub_command, (*path, name))
    else:
        yield " ".join(path), command


def test_every_option_of_every_command_says_what_it_is_in_its_help():
    bare = [f"{path} {option.opts[0]}" for path, command in _every_command(main)
            for option in command.params
            if isinstance(option, click.Option) and not (option.help or "").strip()]
    assert bare == []


def test_a_shared_options_help_says_its_unit_on_the_help_page():
    result = CliRunner().invoke(main, ["rbm", "train", "--help"], terminal_width=200)
    assert result.exit_code == 0
    page = " ".join(result.output.split())
    assert ("--batch-size INTEGER RANGE Training images per mini-batch: "
            "one update of the weights each. [default: 20; x>=1]") in page
    assert "--hidden INTEGER RANGE Hidden units. [default: 100; x>=1]" in page


def _help_page(*words):
    result = CliRunner().invoke(main, [*words, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def test_only_task2_speaks_of_patches_in_its_batch_size_help():
    # every --batch-size said "Training examples (images, or patches)": only task2 has patches
    assert "--batch-size INTEGER RANGE Training patches per mini-batch" in \
        _help_page("homework", "task2")
    for command in (("rbm", "train"), ("homework", "task1"), ("ae", "train")):
        page = _help_page(*command)
        assert "--batch-size INTEGER RANGE Training images per mini-batch" in page, command


def test_per_digit_says_it_sets_the_png_only_not_the_table():
    assert ("--per-digit INTEGER RANGE Held-out images of each class the PNG shows (the "
            "printed errors are of every held-out image of the class).") in \
        _help_page("rbm", "reconstruct")


def test_the_homework_groups_help_names_every_homework():
    summary = _help_page("homework").split("Options:")[0]
    for homework in ("Task 1", "Task 2", "LeNet", "pretraining", "regularisation", "samplers"):
        assert homework in summary, homework


def test_a_size_too_large_for_the_gpus_memory_is_one_line_naming_the_fix(tmp_path, monkeypatch):
    """On a GPU (--backend auto), a size that fits the machine's memory but not the GPU's is
    Numba's CudaAPIError, not a MemoryError: it ended in a traceback through Numba's driver."""
    class CudaAPIError(Exception):
        """Numba's driver's (numba.cuda.cudadrv.driver; the suite runs Numba's simulator,
        whose class of that name is another): an Exception, ``code`` and ``msg``."""

        def __init__(self, code, msg):
            super().__init__(code, msg)
            self.code, self.msg = code, msg

        def __str__(self):
            return f"[{self.code}] {self.msg}"

    def gpu_out_of_memory(path):
        # as Numba's driver raises it when cuMemAlloc fails (code CUDA_ERROR_OUT_OF_MEMORY)
        raise CudaAPIError(2, "Call to cuMemAlloc results in CUDA_ERROR_OUT_OF_MEMORY")
    monkeypatch.setattr("dlcore.cli.info.describe", gpu_out_of_memory)
    (tmp_path / "model.h5").write_bytes(b"")    # info refuses a missing file before describe
    result = CliRunner().invoke(main, ["info", str(tmp_path / "model.h5")])
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert line == ("dlcore: error: out of GPU memory (call to cuMemAlloc results in "
                    "CUDA_ERROR_OUT_OF_MEMORY); choose smaller sizes (such as --hidden, "
                    "--batch-size or the number of images), or run on the CPU (--backend cpu)")


@pytest.mark.parametrize("network", ["cnn", "mlp"])
def test_a_network_benchmarks_help_says_its_batch_and_images_are_the_inferences_too(network):
    """bench cnn/mlp time an epoch and an inference of --batch-size images a batch, the
    inference's images the first training images: --help said "one update of the weights
    each" of the batch and called those images "Fashion-MNIST test images"."""
    result = CliRunner().invoke(main, ["bench", network, "--help"], terminal_width=200)
    assert result.exit_code == 0
    page = " ".join(result.output.split())
    assert ("--batch-size INTEGER RANGE Images per mini-batch, of the timed epoch (one update "
            "of the weights each) and of the timed inference.") in page
    assert "Images of the timed inference: the first of the same training images." in page
    assert "test images" not in page


def _float_options(command, path=()):
    """(command words, option) of every number-range option of ``command`` and below."""
    for parameter in command.params:
        if isinstance(parameter.type, click.FloatRange):
            yield path, parameter
    for name, sub_command in getattr(command, "commands", {}).items():
        yield from _float_options(sub_command, (*path, name))


@pytest.mark.parametrize("value", ["nan", "inf", "1e400"])
def test_a_number_option_refuses_nan_and_inf_naming_itself(value):
    """Click's FloatRange lets nan pass (it compares false with both bounds) and inf pass an
    open top: `cnn train --validation-split nan` ended in "cannot convert float NaN to
    integer", `rbm train --learning-rate nan` named the Python argument learning_rate."""
    options = list(_float_options(main))
    assert len(options) > 30
    for words, option in options:
        result = CliRunner().invoke(main, [*words, option.opts[0], value])
        assert result.exit_code == 2, (words, option.opts[0], result.output)
        line = result.stderr.strip()
        assert len(line.splitlines()) == 1 and option.opts[0] in line
        assert "not a finite number" in line or "not in the range" in line


def _number_range_options(command, path=()):
    """(command words, option) of every option that takes a number in a range."""
    for parameter in command.params:
        if isinstance(parameter.type, (click.IntRange, click.FloatRange)):
            yield path, parameter
    for name, sub_command in getattr(command, "commands", {}).items():
        yield from _number_range_options(sub_command, (*path, name))


@pytest.mark.parametrize("value", ["1.5", "ten"])
def test_text_that_is_no_number_names_the_number_the_option_takes(value):
    """`homework task1 --epochs 1.5` said "'1.5' is not a valid integer range.": Click's
    name of its type, which reads as if a range such as 1-5 were wanted, and no fix."""
    options = list(_number_range_options(main))
    assert len(options) > 60
    for words, option in options:
        whole = isinstance(option.type, click.IntRange)
        if not whole and value == "1.5":
            continue        # a number for a float option: the command would run
        result = CliRunner().invoke(main, [*words, option.opts[0], value])
        assert result.exit_code == 2, (words, option.opts[0], result.output)
        [line] = result.stderr.strip().splitlines()
        number = "a whole number" if whole else "a number"
        # Click names an option of several spellings by all of them: '--steps' / '--gibbs-steps'
        names = " / ".join(f"'{name}'" for name in option.opts)
        assert (f"Invalid value for {names}: '{value}' is not {number}; give "
                f"{number} in the range {option.type._describe_range()} (see ") in line, words
        assert "valid integer" not in line and "valid float" not in line


def _count_options(command, path=()):
    """(command words, option) of every integer-range option without a top, seeds aside."""
    for parameter in command.params:
        if isinstance(parameter.type, click.IntRange) and parameter.type.max is None \
                and "seed" not in parameter.name:
            yield path, parameter
    for name, sub_command in getattr(command, "commands", {}).items():
        yield from _count_options(sub_command, (*path, name))


def test_a_count_past_what_a_model_file_holds_is_refused_naming_the_option(
        tmp_path, monkeypatch):
    """`rbm train --batch-size 100000000000000000000` trained and saved a model.h5 that
    dlcore.load refused ("'batch_size' = 100000000000000000000; expected an integer in [1,
    2147483647]"): its training was lost. A count is refused before any work; the largest
    a model file holds still passes."""
    monkeypatch.chdir(tmp_path)
    options = list(_count_options(main))
    assert (("rbm", "train"), "batch_size") in {(words, o.name) for words, o in options}
    assert len(options) > 60
    for words, option in options:
        result = CliRunner().invoke(main, [*words, option.opts[0], str(2**31)])
        assert result.exit_code == 2, (words, option.opts[0], result.output)
        line = result.stderr.strip()
        assert len(line.splitlines()) == 1 and option.opts[0] in line
        assert "2147483648 is more than 2,147,483,647, the largest count a dlcore model file " \
               "holds" in line
        largest = option.type.convert(str(2**31 - 1), option, None)
        assert largest == 2**31 - 1
    assert list(tmp_path.iterdir()) == []


def _out_folder_commands(command, path=()):
    for parameter in command.params:
        if parameter.name == "out" and getattr(parameter.type, "file_okay", True) is False:
            yield path
    for name, sub_command in getattr(command, "commands", {}).items():
        yield from _out_folder_commands(sub_command, (*path, name))


def test_an_empty_out_folder_is_refused_not_taken_for_the_current_folder(tmp_path, monkeypatch):
    """`rbm train --out "$RUNS"` with $RUNS unset wrote model.h5 and its pictures into the
    current folder, replacing a model.h5 there."""
    monkeypatch.chdir(tmp_path)
    commands = list(_out_folder_commands(main))
    assert ("rbm", "train") in commands and ("homework", "task1") in commands
    for words in commands:
        result = CliRunner().invoke(main, [*words, "--out", ""])
        assert result.exit_code == 2, (words, result.output)
        assert "empty folder name" in result.stderr and len(result.stderr.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_an_out_folder_that_is_a_file_says_that_out_names_a_folder(tmp_path):
    """`homework task1 --out runs/task1/model.h5` got Click's "Directory
    'runs/task1/model.h5' is a file.", which does not say what --out takes."""
    model = tmp_path / "model.h5"
    model.write_bytes(b"the user's model")
    for words in _out_folder_commands(main):
        result = CliRunner().invoke(main, [*words, "--out", str(model)])
        assert result.exit_code == 2, (words, result.output)
        assert result.stderr.startswith(
            f"dlcore: error: Invalid value for '--out': '{model}' is a file: --out names the "
            f"folder the command writes its files into, such as {tmp_path} (see "), words
        assert len(result.stderr.splitlines()) == 1
    assert model.read_bytes() == b"the user's model"


def _out_file_commands(command, path=()):
    for parameter in command.params:
        if parameter.name == "out" and getattr(parameter.type, "dir_okay", True) is False:
            yield path, command
    for name, sub_command in getattr(command, "commands", {}).items():
        yield from _out_file_commands(sub_command, (*path, name))


def _run_each_out_file_command(out, model):
    """``(words, command, result)`` of every command whose ``--out`` names a file, run with
    ``--out out`` and ``model`` for each of its required arguments (sweep: a dry run)."""
    for words, command in _out_file_commands(main):
        if words == ("sweep",):
            arguments = ["--dry-run", "--grid", "seed=0", "--", "rbm", "train"]
        else:
            arguments = [str(model) for parameter in command.params
                         if isinstance(parameter, click.Argument) and parameter.required]
        yield words, command, CliRunner().invoke(main, [*words, "--out", out, *arguments])


def test_an_empty_out_file_is_refused_before_the_command_works(tmp_path, monkeypatch):
    """`sweep --out "$CSV"` with $CSV unset ran every run and only then failed to write its
    table ("cannot write .: it is a directory"); `rbm sample --out ""` said "PosixPath('.')
    has an empty name"."""
    monkeypatch.chdir(tmp_path)
    model = tmp_path / "model.h5"
    model.write_bytes(b"")
    assert {("sweep",), ("rbm", "sample"), ("dbn", "sample")} <= set(
        dict(_out_file_commands(main)))
    for words, _, result in _run_each_out_file_command("", model):
        assert result.exit_code == 2, (words, result.output)
        assert "empty file name" in result.stderr and len(result.stderr.splitlines()) == 1
    assert list(tmp_path.iterdir()) == [model]


@pytest.mark.parametrize("group", [[], ["homework"], ["rbm"]])
def test_a_command_group_alone_shows_its_help_as_help_not_squashed_into_one_line(group):
    result = CliRunner().invoke(main, group)
    alone = CliRunner().invoke(main, [*group, "--help"])
    assert result.exit_code == 2
    assert "dlcore: error:" not in result.stderr
    # the group's help, one command a line, as --help prints it
    assert result.stderr.strip() == alone.stdout.strip()
    assert len(result.stderr.strip().splitlines()) > 5


def _model_file_parameters(command, path=()):
    """(command words, parameter) of every model file a command reads: its argument (the
    model or the DBN it works on), --resume (sweep's --resume is a flag: its CSV's)."""
    for parameter in command.params:
        if parameter.name in ("model_file", "dbn_file", "resume") \
                and isinstance(parameter.type, click.Path):
            yield path, parameter
    for name, sub_command in getattr(command, "commands", {}).items():
        yield from _model_file_parameters(sub_command, (*path, name))


def _given(words, parameter, path):
    """The command line of ``words`` giving ``path`` for ``parameter`` and nothing else:
    Click converts what the command line gives first, before it asks for a missing
    argument."""
    if isinstance(parameter, click.Argument):
        return [*words, str(path)]
    return [*words, f"--{parameter.name}", str(path)]


def test_a_run_folder_given_for_a_model_file_offers_the_model_file_in_it(tmp_path):
    """`rbm reconstruct runs/task1` (the run's folder, not runs/task1/model.h5) got Click's
    "File 'runs/task1' is a directory.", which named no fix; `dlcore info` said "give the
    path of a .h5 file" without naming the one there."""
    folder = tmp_path / "task1"
    folder.mkdir()
    (folder / "model.h5").write_bytes(b"a model")
    (folder / "filters.png").write_bytes(b"a figure")
    parameters = list(_model_file_parameters(main))
    assert {("rbm", "reconstruct"), ("cnn", "evaluate"), ("dbn", "finetune"), ("info",),
            ("homework", "task1"), ("cnn", "train")} <= {words for words, _ in parameters}
    for words, parameter in parameters:
        result = CliRunner().invoke(main, _given(words, parameter, folder))
        assert result.exit_code == 2, (words, parameter.name, result.output)
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and (f"{folder} is a folder, not a model file: did you mean "
                                    f"{folder / 'model.h5'}? (see ") in lines[0], (words, lines)


def test_a_misspelt_model_file_offers_the_model_files_beside_it(tmp_path):
    """`dbn pretrain --resume runs/dbn/checkpoint.h5` of a run that finished (it wrote
    dbn.h5) got "File '...' does not exist." alone."""
    (tmp_path / "dbn.h5").write_bytes(b"a DBN")
    (tmp_path / "model.h5").write_bytes(b"a network")
    for words, parameter in _model_file_parameters(main):
        result = CliRunner().invoke(main, _given(words, parameter, tmp_path / "checkpoint.h5"))
        assert result.exit_code == 2, (words, parameter.name, result.output)
        assert (f"{tmp_path / 'checkpoint.h5'} does not exist: did you mean "
                f"{tmp_path / 'dbn.h5'} or {tmp_path / 'model.h5'}? (see ") in result.stderr
    # a misspelt name gets the names like it; a name like none of them, none
    result = CliRunner().invoke(main, ["info", str(tmp_path / "modle.h5")])
    assert result.exit_code == 2
    assert f"modle.h5 does not exist: did you mean {tmp_path / 'model.h5'}? (see " in \
        result.stderr
    for missing in (tmp_path / "zzz", tmp_path / "none" / "model.h5"):
        result = CliRunner().invoke(main, ["rbm", "evaluate", str(missing)])
        assert result.exit_code == 2
        assert f"{missing} does not exist: give the path of a model file (.h5) that a dlcore " \
               f"command saved (see " in result.stderr, result.stderr


def test_a_folder_given_for_a_file_to_write_offers_a_name_in_it(tmp_path):
    """`rbm sample model.h5 --out runs` got Click's "File 'runs' is a directory.", which did
    not say that --out wants the name of the PNG file."""
    model = tmp_path / "model.h5"
    model.write_bytes(b"")
    folder = tmp_path / "runs"
    folder.mkdir()
    for words, command, result in _run_each_out_file_command(str(folder), model):
        assert result.exit_code == 2, (words, result.output)
        default = next(parameter.default for parameter in command.params
                       if parameter.name == "out")
        assert (f"{folder} is a folder, not a file: give the name of the file to write in "
                f"it, such as {folder / Path(default).name} (see ") in result.stderr, words
        assert len(result.stderr.splitlines()) == 1
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("words", [["homework", "task1", "--out"], ["rbm", "sample", "--n"],
                                   ["sweep", "--grid"]], ids=lambda words: " ".join(words))
def test_an_option_without_its_value_points_at_its_own_command_s_help(words):
    """`dlcore homework task1 --out` said "(see 'dlcore --help')": Click's parser raises
    "requires an argument" without the command's context, and the hint fell back on the
    group's help, which lists no option of task1."""
    result = CliRunner().invoke(main, words, prog_name="dlcore")
    assert result.exit_code == 2
    command = " ".join(words[:-1])
    assert result.stderr == (f"dlcore: error: Option '{words[-1]}' requires an argument. "
                             f"(see 'dlcore {command} --help')\n")


@pytest.mark.parametrize("kind", ["rbm", "dbn"])
def test_converting_a_model_keras_has_none_for_names_the_files_that_convert(kind, tmp_path):
    """`dlcore convert runs/dbn/dbn.h5 dbn.keras` said "format='keras' writes a
    dlcore.Sequential or dlcore.Model; got DBN": Python's words, and no file that converts."""
    import dlcore
    rows = np.eye(4, dtype=np.float32)
    model = (dlcore.BernoulliRBM(n_hidden=2, epochs=1, backend="reference") if kind == "rbm"
             else dlcore.DBN(hidden=[2], epochs=1, backend="reference"))
    model_file, archive = tmp_path / "model.h5", tmp_path / "model.keras"
    dlcore.save(model.fit(rows), model_file)
    result = CliRunner().invoke(main, ["convert", str(model_file), str(archive)])
    assert result.exit_code == 1, result.output
    name = type(model).__name__
    expected = (f"dlcore: error: {model_file} holds a {name}, which Keras has no model for: "
                f"only a network converts (the model.h5 of `dlcore cnn train` or `dlcore dbn "
                f"finetune`)")
    if kind == "dbn":
        expected += f"; `dlcore dbn finetune {model_file}` makes a network of this DBN"
    assert result.output.strip().splitlines() == [expected]
    assert not archive.exists()


def test_an_out_folder_given_as_an_argument_names_the_option(tmp_path):
    """`dlcore homework task1 runs/task1`, the folder typed as `rbm reconstruct` takes its
    model file, got Click's "Got unexpected extra argument (runs/task1)" and no fix."""
    out = tmp_path / "task1"
    result = CliRunner().invoke(main, ["homework", "task1", str(out)], prog_name="dlcore")
    assert result.exit_code == 2
    assert result.stderr == (f"dlcore: error: Got unexpected extra argument ({out}): the output "
                             f"folder is given as an option, --out {out} (see 'dlcore homework "
                             f"task1 --help')\n")
    assert not out.exists()
    # a command without an --out folder, or several words, gets Click's line alone
    for words in (["rbm", "sample", str(tmp_path / "model.h5"), "extra"],
                  ["homework", "task1", "a", "b"]):
        result = CliRunner().invoke(main, words, prog_name="dlcore")
        assert result.exit_code == 2 and "--out" not in result.stderr.split(" (see ")[0]


@pytest.mark.parametrize("where", ["command", "option"])
def test_a_ctrl_c_that_reaches_click_is_one_line_with_no_blank_line_before_it(where):
    """A Ctrl-C that the command left to Click (in its parsing, or before its training) was
    said by a blank line, then "dlcore: interrupted": Click's ``main`` prints the blank line
    before its Abort. It is now the one line the other ways of interrupting a command say."""
    def interrupt(*_):
        raise KeyboardInterrupt

    @click.group(cls=OneLineErrorGroup)
    def probe():
        pass

    @probe.command()
    @click.option("--model", callback=interrupt if where == "option" else None)
    def load(model):
        interrupt()

    result = CliRunner().invoke(probe, ["load", "--model", "model.h5"])
    assert result.exit_code == 130
    assert result.stderr == "dlcore: interrupted\n"
