"""The docs and docstrings say only what holds.

Oracles: the repository's own files (students have the lecture slides, not our plain-text
extractions, so a file name such as ``NNN_<16 hex digits>.txt`` or its number "lecture 0NN"
tells them nothing), the files on disk (the README's Layout section is the map of the code: every
module in it, nothing that is gone), and the code the docs describe."""
import re
import subprocess
from pathlib import Path

import dlcore

ROOT = Path(__file__).resolve().parents[1]
LECTURE_FILE_NAME = re.compile(r"\b\d{3}_[0-9a-f]{16}\b")
#: Our file numbers, 000-004, after "lecture": in a sentence, or in a name (a model builder, a
#: command's choice, a test) joined by nothing or an underscore.
LECTURE_NUMBER = re.compile(r"[Ll]ectures?[\s_]*0\d\d(?!\d)")
CODE_FOLDERS = ("dlcore", "cli", "datasets")
#: Where a ``folder/file.py`` mention points: our top-level folders, or dlcore's subpackages
#: (``rbm/trainer.py``). Any other path cites another project (``skimage/data/_fetchers.py``).
OUR_FOLDERS = {"dlcore", "cli", "datasets", "tests", "docs", ".ci"}
MENTIONED_PATH = re.compile(r"(?<![\w./-])((?:[\w-]+/)+[\w-]+\.(?:py|md))\b")
TEXT_SUFFIXES = {".py", ".md", ".cfg", ".toml", ".txt", ".rst", ".sh", ".ini", ".yml", ".yaml",
                 ".json", ".csv", ""}
SKIPPED_FOLDERS = {".git", "__pycache__", ".pytest_cache", "build", "dist", "runs", ".venv",
                   "venv", "node_modules", ".ruff_cache"}


def repository_text_files():
    for path in sorted(ROOT.rglob("*")):
        relative = path.relative_to(ROOT)
        if any(part in SKIPPED_FOLDERS or part.endswith(".egg-info")
               for part in relative.parts[:-1]):
            continue
        if path.is_file() and path.suffix in TEXT_SUFFIXES and path.stat().st_size < 2_000_000:
            yield relative, path


def test_no_lecture_file_names_remain_in_code_or_docs():
    found = []
    for relative, path in repository_text_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        found += [f"{relative}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}"
                  for m in LECTURE_FILE_NAME.finditer(text)]
    assert not found, ("cite the lecture by its title and topic (e.g. lecture \"Deep Neural "
                       "Networks\", slide \"RBM Weight Update\"), not its file name:\n"
                       + "\n".join(found))


def test_the_scan_covers_code_docs_and_tests():
    names = {str(relative) for relative, _ in repository_text_files()}
    assert {"README.md", "docs/networks.md", "dlcore/network.py",
            "tests/test_docs_truth.py"} <= names


def test_lenet_c3_is_fully_connected_as_networks_md_says():
    model = dlcore.models.lenet5(backend="reference")
    c3 = next(layer for layer in model.layers if layer.name == "c3")
    assert tuple(c3.params["kernel"].shape) == (16, 6, 5, 5)     # every filter sees all 6 maps
    text = (ROOT / "docs" / "networks.md").read_text(encoding="utf-8")
    assert "partial C3 connections are available" not in text
    assert "C3 is always fully connected" in text


def test_readme_warns_that_mnist_5k_is_sorted_next_to_the_five_line_example():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### The library in five lines"):]
    section = section[:section.index("\n### ", 1)]
    assert "sorted by class" in section and "holdout_split" in section


def text_files_under(*names):
    """The text files of the named files and folders, each as (path relative to ROOT, text)."""
    names = set(names)
    return [(str(relative), path.read_text(encoding="utf-8", errors="replace"))
            for relative, path in repository_text_files()
            if str(relative) in names or relative.parts[0] in names]


def line_of(text, position):
    return text.count("\n", 0, position) + 1


def test_lectures_are_cited_by_title_not_by_our_numbers():
    found = [f"{name}:{line_of(text, m.start())}: {m.group(0)}"
             for name, text in text_files_under(*CODE_FOLDERS, "tests", "docs", "README.md",
                                                "CHANGELOG.md")
             for m in LECTURE_NUMBER.finditer(text)]
    assert not found, ("cite the lecture by its title and topic (e.g. lecture \"Deep learning "
                       "I\", or \"Deep Neural Networks\", slide \"RBM Weight Update\"): the "
                       "numbers are our file names, not the students':\n" + "\n".join(found))


def tracked_files():
    """The repository's files as a clone holds them (``git ls-files``), relative to ROOT; outside
    a git checkout, every file but caches, virtualenvs and run outputs."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                            check=False)
    if listed.returncode == 0 and listed.stdout:
        return [Path(name) for name in listed.stdout.decode().split("\0") if name]
    return [relative for relative, path in
            ((path.relative_to(ROOT), path) for path in ROOT.rglob("*") if path.is_file())
            if not any(part in SKIPPED_FOLDERS or part.endswith(".egg-info")
                       or part.startswith(".") and part != ".ci" for part in relative.parts)]


def modules_and_docs():
    """Every module of the repository but the tests themselves (``test_*.py``: the Layout
    names them by pattern), every package's __init__.py included, and every page of docs/, as
    paths relative to ROOT."""
    return {str(relative) for relative in tracked_files()
            if relative.suffix == ".py" and not relative.name.startswith("test_")
            or relative.parts[0] == "docs" and relative.suffix == ".md"}


def tracked_folders():
    """Every folder that holds a tracked file, as ``folder/`` relative to ROOT."""
    return {"/".join(relative.parts[:depth]) + "/" for relative in tracked_files()
            for depth in range(1, len(relative.parts))}


def readme_layout_texts():
    """The README's Layout section, as {folder: its text}.

    The section is one code block: a line that starts with ``folder/`` opens that folder
    (``./`` the repository's top), the indented lines after it continue it."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("\n## Layout\n"):]
    block = re.search(r"```\n(.*?)```", section, re.DOTALL).group(1)
    texts, folder = {}, None
    for line in block.splitlines():
        if line and not line[0].isspace():
            folder, _, line = line.partition(" ")
            assert folder.endswith("/"), f"a Layout line starts with a folder: {folder!r}"
            folder = folder.removeprefix("./")
        texts[folder] = texts.get(folder, "") + " " + line
    return texts


def readme_layout():
    """The files the README's Layout section names, as paths relative to ROOT: every
    ``name.py`` or ``name.md`` in a folder's text is a file of that folder."""
    return {folder + name for folder, text in readme_layout_texts().items()
            for name in re.findall(r"(?<![\w./-])[\w/-]+\.(?:py|md)\b", text)}


def readme_layout_folders():
    """The folders the Layout section names: those that open a line, and a ``name/`` in a
    folder's text (a folder of that folder)."""
    texts = readme_layout_texts()
    return {folder for folder in texts if folder} | {
        folder + name for folder, text in texts.items()
        for name in re.findall(r"(?<![\w./<>-])[\w-]+/(?![\w.])", text)}


def test_the_readme_layout_names_every_module():
    missing = sorted(modules_and_docs() - readme_layout())
    assert not missing, ("the README's Layout section is the map of the code; add what each of "
                         "these holds:\n" + "\n".join(missing))


def test_the_readme_layout_names_only_files_that_exist():
    gone = sorted(name for name in readme_layout() if not (ROOT / name).is_file())
    assert not gone, ("the README's Layout section names files that do not exist:\n"
                      + "\n".join(gone))


def test_the_readme_layout_names_every_folder_and_only_folders_that_exist():
    listed = readme_layout_folders()
    missing = sorted(tracked_folders() - listed)
    assert not missing, ("the README's Layout section is the map of the repository; add what "
                         "each of these folders holds:\n" + "\n".join(missing))
    gone = sorted(folder for folder in listed if not (ROOT / folder).is_dir())
    assert not gone, ("the README's Layout section names folders that do not exist:\n"
                      + "\n".join(gone))


def test_the_layout_reader_finds_top_level_files_and_nested_folders():
    assert {"__init__.py", "dlcore/__init__.py", "tests/conftest.py"} <= modules_and_docs()
    assert {"datasets/mnist-5k/", "tests/fixtures/", "dlcore/rbm/"} <= tracked_folders()


def test_the_layout_reader_finds_files_of_nested_folders():
    assert {"dlcore/rbm/trainer.py", "cli/rbm.py", "datasets/idx.py", "docs/rbm.md",
            "dlcore/bench.py"} <= readme_layout()


def mentioned_file(path):
    """The file a ``folder/file.py`` mention names, or None when it cites another project.
    ``dlcore/cli/`` and ``dlcore/datasets/`` are where cli/ and datasets/ install."""
    top = path.split("/")[0]
    for installed in ("dlcore/cli/", "dlcore/datasets/"):
        if path.startswith(installed):
            return ROOT / path.removeprefix("dlcore/")
    if top in OUR_FOLDERS:
        return ROOT / path
    if (ROOT / "dlcore" / top).is_dir():
        return ROOT / "dlcore" / path
    return None


def test_docs_code_and_ci_mention_only_files_that_exist():
    found = []
    for name, text in text_files_under(*CODE_FOLDERS, "docs", "README.md", "CHANGELOG.md",
                                       ".ci/run", ".ci/gpu"):
        for m in MENTIONED_PATH.finditer(text):
            target = mentioned_file(m.group(1))
            if target is not None and not target.is_file():
                found.append(f"{name}:{line_of(text, m.start())}: {m.group(1)}")
    assert not found, "mentions of files that do not exist:\n" + "\n".join(found)


def test_bare_file_names_in_the_docs_exist_somewhere_in_the_repository():
    """``kernels.py`` in a sentence about dlcore/backend/ must still be a file of ours."""
    ours = {path.name for _, path in repository_text_files()}
    found = [f"{name}:{line_of(text, m.start())}: {m.group(1)}"
             for name, text in text_files_under("docs", "README.md", "CHANGELOG.md", ".ci/run",
                                                ".ci/gpu", "datasets/README.md", "dlcore/bench.py")
             for m in re.finditer(r"(?<![\w./-])([\w-]+\.(?:py|md))\b", text)
             if m.group(1) not in ours]
    assert not found, "mentions of files that do not exist:\n" + "\n".join(found)


def readme_cd1_lines():
    """The README's rendering of the CD-1 update: (slide line, code line) pairs of its block."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("The CD-1 update of `dlcore/rbm/trainer.py`"):]
    block = section[section.index("```python\n") + len("```python\n"):]
    block = block[:block.index("\n```")]
    lines = block.splitlines()
    return list(zip(lines[0::2], lines[1::2]))


def without_spaces(text):
    return re.sub(r"\s+", "", text)


def test_the_readme_cd1_update_is_the_trainers_code_line_by_line():
    # every call the README shows is in the trainer (its arguments up to the "..."), each
    # under the slide's line it does: a rename or a new fused call in the trainer fails here
    # until the README shows it
    code = without_spaces((ROOT / "dlcore" / "rbm" / "trainer.py").read_text(encoding="utf-8"))
    pairs = readme_cd1_lines()
    assert len(pairs) == 6
    for slide_line, call in pairs:
        assert slide_line.startswith("# ") and call.endswith(", ...)"), (slide_line, call)
        shown = without_spaces(call[:-len("...)")])
        assert shown in code, f"the README shows {call!r}, which is not the trainer's code"
    slides = " ".join(slide for slide, _ in pairs)
    for line in ("Q(h1i = 1 | x1)", "P(x2j = 1 | h1)", "Q(h2i = 1 | x2)", "b <- b + eps (x1 - x2)",
                 "W <- W + eps (h1 x1' - Q(h2. = 1 | x2) x2')",
                 "c <- c + eps (h1 - Q(h2. = 1 | x2))"):
        assert line in slides


def test_the_readme_names_the_trainer_methods_that_hold_its_cd1_calls():
    # a student follows the block in the methods the README names: the reconstruction's two
    # lines live in _reconstruction, past which a sentence naming step and update alone
    # sent them
    import inspect

    from dlcore.rbm.trainer import ContrastiveDivergence
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    sentence = readme[readme.index("The CD-1 update of `dlcore/rbm/trainer.py`"):]
    sentence = sentence[:sentence.index("```python")]
    named = {name for name in re.findall(r"`(?:ContrastiveDivergence\.)?(\w+)`", sentence)
             if hasattr(ContrastiveDivergence, name)}
    assert "step" in named
    sources = {name: without_spaces(inspect.getsource(getattr(ContrastiveDivergence, name)))
               for name in named}
    for _, call in readme_cd1_lines():
        shown = without_spaces(call[:-len("...)")])
        assert any(shown in source for source in sources.values()), (
            f"the README shows {call!r} as a line of {', '.join(sorted(named))}, which hold "
            f"no such call")


def test_docs_rbm_says_that_the_cd1_slide_swaps_the_letters_of_its_model_table():
    # the table writes Q(h_j = 1 | v) (hidden j) under a heading that cites "RBM Weight
    # Update", whose hidden units are i: the page must say which letters are whose
    text = without_spaces((ROOT / "docs" / "rbm.md").read_text(encoding="utf-8"))
    assert without_spaces('"RBM Weight Update" swaps them (hidden i, visible j') in text
    assert without_spaces("its W_ij is our `W[j, i]`") in text


def test_the_file_format_names_every_key_of_a_functional_models_json():
    """docs/hdf5-format.md describes a functional model's ``hyperparameters`` JSON key by key:
    the keys of dict inputs and outputs (``keras_input_keys``, ``keras_output_keys``, at the
    top and in a nested model's entry since this pass) were written but not documented."""
    from dlcore.layers import Dense, concatenate
    title, body = dlcore.Input((6,), name="title"), dlcore.Input((5,), name="body")
    joined = concatenate([title, body])
    inner = dlcore.Model({"title": title, "body": body}, {"score": Dense(1)(joined),
                                                          "group": Dense(3)(joined)})
    first, second = dlcore.Input((6,)), dlcore.Input((5,))
    called = inner({"title": first, "body": second})
    outer = dlcore.Model({"t": first, "b": second}, {"s": called["score"],
                                                     "g": Dense(2)(called["group"])})
    config = outer.get_config()
    keys = set(config) | set(config["models"][0])
    text = (ROOT / "docs" / "hdf5-format.md").read_text()
    missing = sorted(key for key in keys if f'"{key}"' not in text and f"`{key}`" not in text)
    assert not missing, missing
