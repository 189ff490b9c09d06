"""Packaging: the README's commands, and a plain (non-editable) install that maps cli/ and
datasets/ under dlcore with the bundled data, never as top-level packages. Offline: the wheel is
built in-process with setuptools and installed with --no-deps."""
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def readme_commands():
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    return [line.strip() for line in blocks[0].splitlines() + blocks[1].splitlines()
            if line.strip()]


def test_readme_starts_with_exactly_two_set_up_commands():
    main_job, test_command = readme_commands()
    assert main_job.startswith("python -m pip install .") and "dlcore homework task1" in main_job
    assert 'install -e ".[test]"' in test_command and "pytest" in test_command


def test_ci_runs_exactly_the_readme_test_command():
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert readme_commands()[1] in ci_lines


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    setuptools_build = pytest.importorskip("setuptools.build_meta")
    out = tmp_path_factory.mktemp("wheel")
    script = ("import setuptools.build_meta as b, sys; "
              f"print(b.build_wheel({str(out)!r}))")
    completed = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                               text=True)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert setuptools_build
    return out / completed.stdout.strip().splitlines()[-1]


def test_wheel_maps_cli_and_datasets_under_dlcore_with_the_bundled_data(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "dlcore/cli/__init__.py" in names and "dlcore/datasets/__init__.py" in names
    assert "dlcore/datasets/mnist-5k/train-images-idx3-ubyte.gz" in names
    assert "dlcore/datasets/README.md" in names
    top_level = {name.split("/")[0] for name in names}
    assert not top_level & {"cli", "datasets", "tests"}, top_level


def test_plain_install_of_the_wheel_imports_and_finds_the_digits(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-index", "--target", str(target), str(wheel)], check=True)
    code = ("import dlcore, dlcore.cli; x, y = dlcore.datasets.load_mnist_5k(); "
            "print(dlcore.__file__, x.shape)")
    completed = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                               text=True, env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin",
                                               "HOME": str(tmp_path)})
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert str(target) in completed.stdout and "(5000, 28, 28)" in completed.stdout
