"""The docs and docstrings say only what holds.

Oracles: the repository's own files (students have the lecture slides, not our plain-text
extractions, so a file name such as ``NNN_<16 hex digits>.txt`` tells them nothing), and the
code the docs describe."""
import re
from pathlib import Path

import dlcore

ROOT = Path(__file__).resolve().parents[1]
LECTURE_FILE_NAME = re.compile(r"\d{3}_[0-9a-f]{16}\.txt")
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
