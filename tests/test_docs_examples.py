"""The Python examples of README.md and docs/*.md run as printed.

Each ```python block is either run here, on the reference backend with a few hundred bundled
digits and every ``epochs=N`` cut to ``epochs=1`` (what is checked is that the calls exist and
fit together, not the accuracy), or listed in NOT_RUN_HERE with the reason and the test that
covers it instead; a new block that is neither fails ``test_every_python_example_is_run_or_
accounted_for`` until it is classified. Other tests hold what the examples print (the summary's
counts, the receptive fields, the lecture's Keras code slide by slide). Every ``dlcore`` command
line of the pages' shell blocks is parsed by Click, running nothing (its options and choices
exist)."""
import re
import shlex
from pathlib import Path

import click
import numpy as np
import pytest

import dlcore

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["README.md"] + sorted(f"docs/{path.name}" for path in (ROOT / "docs").glob("*.md"))

#: (page, first line of the block) -> why it is not run here, and what covers it
NOT_RUN_HERE = {
    ("README.md", "# for all hidden units i"):
        "the trainer's lines, abridged: test_docs_truth.py holds them to dlcore/rbm/trainer.py",
    ("README.md", 'model = dlcore.load("trained.keras")'):
        "needs a Keras model: test_io_keras_archive.py and test_network_frozen_layers.py",
    ("README.md", "comm = dlcore.distributed.init()"): "needs mpiexec: test_distributed.py",
    ("README.md", "import h5py"):
        "reads runs/task1/model.h5 of `dlcore homework task1`; the docs/hdf5-format.md block "
        "that reads a model file the same way runs here",
    ("docs/hdf5-format.md", "import h5py"):
        "needs hdf5plugin and a plugin-compressed file: test_datasets_hostile_hdf5.py runs it "
        "(test_the_documented_h5py_copy_of_a_plugin_compressed_model_file_loads)",
    ("docs/distributed.md", "import dlcore, dlcore.distributed"):
        "needs mpiexec: test_distributed.py",
    ("docs/distributed.md", 'images, labels = dlcore.datasets.load_dataset("fashion-mnist"'):
        "needs mpiexec and Fashion-MNIST: test_lazy_rows.py",
    ("docs/networks.md", "import numpy as np"):
        "15 epochs of Fashion-MNIST; its calls are the README's LeNet-5 example, run here",
    ("docs/networks.md", 'Dense(500, activation="sigmoid", kernel_initializer=rbm.W'):
        "a fragment (rbm, kernel and bias are the reader's): test_dbn.py builds networks so",
    ("docs/networks.md", '# "Deep neural networks": layers are the building blocks'):
        "test_lecture_keras_api.py runs it slide by slide",
    ("docs/networks.md", "from dlcore.callbacks import CSVLogger, ModelCheckpoint"):
        "a crash and `callbacks=[...]` are the reader's: test_callbacks_keras.py",
    ("docs/networks.md", 'model = dlcore.load("pretrained.keras")'):
        "needs a Keras model: test_network_frozen_layers.py",
    ("docs/networks.md", "search = GridSearchCV(SKLearnClassifier(build"):
        "a fragment (build is the reader's): test_wrappers.py",
}


def python_blocks():
    """(page, first line, code) of every ```python block of the README and docs/."""
    blocks = []
    for page in PAGES:
        text = (ROOT / page).read_text(encoding="utf-8")
        for match in re.finditer(r"^```python\n(.*?)^```", text, re.DOTALL | re.MULTILINE):
            code = match.group(1)
            blocks.append((page, code.splitlines()[0], code))
    return blocks


def block(page, first_line):
    found = [code for p, line, code in python_blocks() if p == page and line.startswith(
        first_line)]
    assert len(found) == 1, f"{page}: {len(found)} python blocks start with {first_line!r}"
    return found[0]


@pytest.fixture
def digits(monkeypatch, tmp_path):
    """Reference backend, a scratch folder, and 30 bundled digits of each class."""
    monkeypatch.setenv("DLCORE_BACKEND", "reference")
    monkeypatch.chdir(tmp_path)
    images, labels = dlcore.datasets.load_mnist_5k()
    rows = np.concatenate([np.arange(500 * c, 500 * c + 30) for c in range(10)])
    X = dlcore.datasets.to_unit_interval(images[rows])
    x = X.reshape(-1, 1, 28, 28)
    return {"np": np, "dlcore": dlcore, "X": X, "y": labels[rows], "labels": labels[rows],
            "x": x, "x_train": x, "y_train": labels[rows], "X_test": X[::3],
            "x_test": x[::3], "y_test": labels[rows][::3]}


def run(code, namespace):
    """Run an example with every ``epochs=N`` cut to one epoch; returns its namespace."""
    exec(compile(re.sub(r"\bepochs=\d+", "epochs=1", code), "<example>", "exec"), namespace)
    return namespace


def lenet(namespace):
    model = dlcore.models.lenet5()
    model.compile("cross_entropy", "adam", ["accuracy"])
    return dict(namespace, model=model)


def with_a_model_file(namespace):
    dlcore.save(dlcore.BernoulliRBM(n_hidden=4, epochs=1).fit(namespace["X"]), "model.h5")
    return namespace


#: (page, first line) -> the reader's context the block assumes, made from the digits
RUN_HERE = {
    ("README.md", "import dlcore"): lambda ns: ns,
    ("README.md", "model = dlcore.models.lenet5()"): lambda ns: ns,
    ("README.md", "nets = [dlcore.models.mlp(seed=s) for s in range(5)]"): lambda ns: ns,
    ("README.md", "dbn = dlcore.DBN(hidden=[500, 500]"): lambda ns: ns,
    ("README.md", "ae = dlcore.Autoencoder(n_hidden=500"): lambda ns: ns,
    ("docs/autoencoders.md", "ae = dlcore.Autoencoder(n_hidden=500, tied_weights=True"):
        lambda ns: dict(ns, codes=np.full((4, 500), 0.5, np.float32)),
    ("docs/hdf5-format.md", "import json"): with_a_model_file,
    ("docs/networks.md", "from dlcore.layers import Conv2D, MaxPool2D, Flatten, Dense, Dropout"):
        lambda ns: ns,
    ("docs/networks.md", "inputs = dlcore.Input(shape=(1, 28, 28))"): lambda ns: ns,
    ("docs/networks.md", "from dlcore.callbacks import EarlyStopping"): lenet,
    ("docs/networks.md", "fields = dlcore.receptive_fields("): lambda ns: ns,
    ("docs/networks.md", "import dlcore.viz"): lenet,
    ("docs/networks.md", "# a little noise moves MNIST's exact zeros"): lenet,
    ("docs/regularisation.md", "members = [dlcore.models.mlp(seed=s) for s in range(5)]"):
        lambda ns: ns,
}


#: blocks that follow another, each run by a test of its own below
RUN_IN_TURN = {
    ("README.md", "from sklearn.linear_model import LogisticRegression"),
    ("docs/regularisation.md", "student = "),
    ("docs/regularisation.md", "x_adv = "),
    ("docs/rbm.md", "result = rbm.log_likelihood(X_test)"),
}


def test_every_python_example_is_run_or_accounted_for():
    keys = set(RUN_HERE) | set(NOT_RUN_HERE) | RUN_IN_TURN
    unclassified = [f"{page}: {line}" for page, line, _ in python_blocks()
                    if not any(page == p and line.startswith(first) for p, first in keys)]
    assert not unclassified, ("run these examples in tests/test_docs_examples.py, or say in "
                              "NOT_RUN_HERE which test covers them:\n" + "\n".join(unclassified))
    for page, first in keys:   # every entry still names a block
        block(page, first)


#: the examples that take over 5 s here (all 784-500 layers, or all 5,000 digits)
SLOW = {("README.md", "import dlcore"), ("README.md", "model = dlcore.models.lenet5()"),
        ("README.md", "dbn = dlcore.DBN(hidden=[500, 500]"),
        ("docs/autoencoders.md", "ae = dlcore.Autoencoder(n_hidden=500, tied_weights=True")}


@pytest.mark.parametrize("page, first_line", [
    pytest.param(*key, marks=[pytest.mark.slow] if key in SLOW else [])
    for key in sorted(RUN_HERE)], ids=lambda value: value[:40])
def test_the_example_runs(page, first_line, digits):
    run(block(page, first_line), RUN_HERE[(page, first_line)](dict(digits)))


@pytest.mark.parametrize("page, first_line", [
    ("README.md", "model = dlcore.models.lenet5()"),
    ("docs/networks.md", "# a little noise moves MNIST's exact zeros")])
def test_the_gradient_checks_of_the_docs_pass_on_a_correct_network(page, first_line, digits):
    """The examples show how to check gradients: on a correct network they must say ok."""
    code = block(page, first_line).replace("history = model.fit(", "model.fit(").replace(
        "dlcore.gradcheck(model", "errors = dlcore.gradcheck(model")
    code = "\n".join(line for line in code.splitlines() if ".fit(" not in line)
    namespace = run(code, lenet(digits))
    assert max(namespace["errors"].values()) < 1e-6


@pytest.mark.slow
def test_the_readme_tour_runs_in_order_and_scores_on_held_out_digits(monkeypatch, tmp_path):
    """The five lines load every digit; the pipeline after them splits with holdout_split."""
    monkeypatch.setenv("DLCORE_BACKEND", "reference")
    monkeypatch.chdir(tmp_path)
    namespace = run(block("README.md", "import dlcore"), {})
    pipeline = block("README.md", "from sklearn.linear_model import LogisticRegression")
    run(pipeline.replace("model.fit(X[train]", "score = model.fit(X[train]"), namespace)
    assert (tmp_path / "model.h5").is_file() and 0.5 < namespace["score"] <= 1.0


def test_the_regularisation_examples_follow_one_another(digits):
    """Distillation takes the ensemble the first example trained; FGSM one of its members."""
    namespace = run(block("docs/regularisation.md", "members = "), dict(digits))
    namespace = run(block("docs/regularisation.md", "student = "), namespace)
    namespace = run(block("docs/regularisation.md", "x_adv = "),
                    dict(namespace, model=namespace["members"][0]))
    assert namespace["x_adv"].shape == digits["x_test"].shape


@pytest.mark.slow
def test_the_rbm_likelihood_example_runs(digits):
    rbm = dlcore.BernoulliRBM(n_hidden=6, epochs=1, seed=0).fit(digits["X"])
    dbn = dlcore.DBN(layers=[784, 6, 4], epochs=1, seed=0).fit(digits["X"])
    namespace = run(block("docs/rbm.md", "result = rbm.log_likelihood(X_test)"),
                    dict(digits, rbm=rbm, dbn=dbn))
    assert namespace["low"] <= namespace["mean"] <= namespace["high"]


def command_lines():
    """(page, line number, arguments) of every ``dlcore`` command line in the ```bash and ```sh
    blocks of the README and docs/, and in their indented command examples (a synopsis with
    ``[--option]`` aside): after ``mpiexec -n R``, ``srun ...`` or ``python -m``, each command
    of an ``&&`` chain, comments and line continuations removed."""
    found = []
    for page in PAGES:
        text = (ROOT / page).read_text(encoding="utf-8")
        lines = [(match.start(), line) for match in re.finditer(
            r"^```(?:bash|sh)\n(.*?)^```", text, re.DOTALL | re.MULTILINE)
            for line in match.group(1).replace("\\\n", " ").splitlines()]
        lines += [(match.start(), match.group(1)) for match in re.finditer(
            r"^    (dlcore [^\[\n]*)$", text, re.MULTILINE)]
        for start, line in lines:
            for command in line.split(" #")[0].split("&&"):
                words = shlex.split(command)
                while words and words[0] in ("mpiexec", "srun", "python", "-m") or words[:1] and (
                        words[0].startswith("-") or words[0].isdigit()):
                    words = words[1:]   # the launcher and its options, up to dlcore
                if words[:1] != ["dlcore"]:
                    continue
                line_number = text.count("\n", 0, start) + 1
                found.append((page, line_number, words[1:]))
                if words[1] == "sweep" and "--" in words:   # the command it runs, first values
                    grid = [value.split("=") for option, value in zip(words, words[1:])
                            if option == "--grid"]
                    found.append((page, line_number, words[words.index("--") + 1:] + [
                        word for name, values in grid for word in (f"--{name}",
                                                                   values.split(",")[0])]))
    return found


def test_the_docs_show_command_lines_of_every_kind():
    commands = {" ".join(words[:2]) for _, _, words in command_lines()}
    assert {"homework task1", "rbm train", "cnn train", "dbn pretrain", "sweep --grid",
            "--version"} <= commands


def test_every_command_line_of_the_docs_parses(tmp_path, monkeypatch):
    """Each option and choice the docs show exists (Click parses the line; nothing runs): a
    renamed option or a dropped choice fails here, not in a student's terminal. The files the
    lines read are made empty in a scratch folder, so that every option after them is parsed."""
    from dlcore.cli import main
    monkeypatch.chdir(tmp_path)
    failed = []
    for page, line, words in command_lines():
        for word in words:
            if re.fullmatch(r"[\w./-]+\.(?:h5|keras|jpg|png|json)", word) and "*" not in word:
                (tmp_path / word).parent.mkdir(parents=True, exist_ok=True)
                (tmp_path / word).touch()
        try:
            parsed_options(main, words)
        except click.exceptions.Exit:   # --version, --help
            pass
        except click.ClickException as error:
            failed.append(f"{page}:{line}: dlcore {' '.join(words)}\n    {error.format_message()}")
    assert not failed, "command lines of the docs that dlcore refuses:\n" + "\n".join(failed)


def parsed_options(main, words):
    """The options (defaults included) of the ``dlcore`` command line ``words``, as Click
    parses them; nothing runs."""
    command, rest, context = main, list(words), None
    while isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
        context = click.Context(command, info_name=command.name, parent=context)
        command, rest = command.get_command(context, rest[0]), rest[1:]
        if command is None:
            raise click.UsageError(f"no such command {words[0]!r}")
    with command.make_context(command.name, rest, parent=context) as parsed:
        return dict(parsed.params)


def test_no_line_of_the_readme_tour_replaces_the_files_of_another(tmp_path, monkeypatch):
    """Run one after the other, as a student does, each line of the README's command-line
    tour writes its own --out (given or the command's default): a line that reused the one
    before's replaced that run's model and figures (a second task1 over runs/task1)."""
    from dlcore.cli import main
    monkeypatch.chdir(tmp_path)
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    tour = re.search(r"^### The command line\n\n```bash\n(.*?)^```", text,
                     re.DOTALL | re.MULTILINE).group(1)
    writers = {}
    for line in tour.splitlines():
        for command in line.split(" #")[0].split("&&"):
            words = shlex.split(command)
            if words[:1] != ["dlcore"]:
                continue   # python -m dlcore --version
            words = words[1:]
            for word in words:   # the files a line reads, present (empty) so that it parses
                if word.endswith(".h5"):
                    (tmp_path / word).parent.mkdir(parents=True, exist_ok=True)
                    (tmp_path / word).touch()
            if words[:1] == ["sweep"]:
                continue   # a sweep sets its runs' --out itself
            try:
                out = parsed_options(main, words).get("out")
            except click.exceptions.Exit:
                continue
            if out is not None:
                writers.setdefault(str(out), []).append(" ".join(words))
    shared = {out: lines for out, lines in writers.items() if len(lines) > 1}
    assert len(writers) > 10 and not shared, shared


def test_the_docstring_examples_of_the_package_run_as_printed(monkeypatch):
    """Every ``>>>`` example of dlcore's docstrings (``help()``'s Examples sections) gives the
    output its docstring prints; no test ran them before."""
    import doctest
    import importlib

    monkeypatch.setenv("DLCORE_BACKEND", "reference")
    package = ROOT / "dlcore"
    modules = sorted("dlcore." + ".".join(path.relative_to(package).with_suffix("").parts)
                     for path in package.rglob("*.py") if ">>>" in path.read_text("utf-8"))
    assert modules, "no docstring example found: has the package moved?"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for name in modules:
        for test in doctest.DocTestFinder().find(importlib.import_module(name)):
            runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
