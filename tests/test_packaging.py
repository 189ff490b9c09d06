"""Packaging: the README's commands, and a plain (non-editable) install that maps cli/ and
datasets/ under dlcore with the bundled data, never as top-level packages. Offline: the wheel is
built in-process with setuptools and installed with --no-deps. The slow tests run the README's
two set-up commands in fresh virtualenvs, as a user does (pip's index and cache needed)."""
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def readme_commands():
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)
    return [line.strip() for line in blocks[0].splitlines() + blocks[1].splitlines()
            if line.strip()]


def test_readme_starts_with_exactly_two_set_up_commands():
    main_job, test_command = readme_commands()
    assert main_job.startswith("python -m pip install .") and "dlcore homework task1" in main_job
    assert 'install -e ".[test,distributed]"' in test_command and "pytest" in test_command
    assert "ruff check ." in test_command                   # lint and import order, ruff.toml


def test_ci_runs_exactly_the_readme_test_command():
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert readme_commands()[1] in ci_lines


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    setuptools_build = pytest.importorskip("setuptools.build_meta")
    out = tmp_path_factory.mktemp("wheel")
    script = ("import setuptools.build_meta as b, sys; "
              f"print(b.build_wheel({str(out)!r}))")
    # built from a copy: setuptools writes build/ and the egg-info into the source folder, where
    # another pytest-xdist worker building its own wheel at the same time would meet them
    source = copy_of_the_repository(tmp_path_factory.mktemp("source"))
    completed = subprocess.run([sys.executable, "-c", script], cwd=source, capture_output=True,
                               text=True, check=False)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert setuptools_build
    return out / completed.stdout.strip().splitlines()[-1]


def test_wheel_maps_cli_and_datasets_under_dlcore_with_the_bundled_data(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "dlcore/cli/__init__.py" in names and "dlcore/datasets/__init__.py" in names
    assert "dlcore/datasets/mnist-5k/train-images-idx3-ubyte.gz" in names
    assert "dlcore/datasets/README.md" in names
    top_level = {name.split("/")[0] for name in names}
    assert not top_level & {"cli", "datasets", "tests", "__init__.py"}, top_level


def test_the_wheel_carries_the_code_and_the_data_licences(wheel):
    archive = zipfile.ZipFile(wheel)
    licences = {Path(name).name: archive.read(name).decode() for name in archive.namelist()
                if ".dist-info/" in name and Path(name).name.startswith("LICENSE")}
    assert "MIT License" in licences["LICENSE"]
    assert "CC BY-SA 3.0" in licences["LICENSE-data"] and "CC0 1.0" in licences["LICENSE-data"]


def test_plain_install_of_the_wheel_imports_and_finds_the_digits(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-index", "--target", str(target), str(wheel)], check=True)
    code = ("import dlcore, dlcore.cli; x, y = dlcore.datasets.load_mnist_5k(); "
            "print(dlcore.__file__, x.shape)")
    completed = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                               text=True, env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin",
                                               "HOME": str(tmp_path)}, check=False)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert str(target) in completed.stdout and "(5000, 28, 28)" in completed.stdout


def copy_of_the_repository(destination):
    """The files a clone of this checkout would hold (tracked and not ignored), in
    ``destination``: installs from it never see build folders, caches or virtualenvs here."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, check=False)
    if listed.returncode != 0:  # not a git checkout: everything but what .gitignore names
        shutil.copytree(ROOT, destination, ignore=shutil.ignore_patterns(
            ".git", ".ci", "__pycache__", "*.egg-info", "build", "dist", "runs", ".*venv*"))
        return destination
    for name in filter(None, listed.stdout.decode().split("\0")):
        if (ROOT / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, destination / name)
    return destination


def users_shell(tmp_path):
    """Run a command line in a fresh virtualenv, from a fresh copy of the repository (named
    dlcore, as a clone is) with the virtualenv first on PATH; the kernel cache in tmp_path."""
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True)
    clone = copy_of_the_repository(tmp_path / "dlcore")
    environment = {name: value for name, value in os.environ.items()
                   if name not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
                   and not name.startswith(("NUMBA_", "DLCORE_"))}
    environment.update(PATH=f"{tmp_path / 'venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
                       VIRTUAL_ENV=str(tmp_path / "venv"), DLCORE_CACHE=str(tmp_path / "kernels"))

    def run(command_line):
        completed = subprocess.run(["bash", "-c", command_line], cwd=clone, env=environment,
                                   capture_output=True, text=True, timeout=1200, check=False)
        assert completed.returncode == 0, (command_line, completed.stdout[-2000:],
                                           completed.stderr[-3000:])
        return completed.stdout
    return run


def assert_dlcore_works(run, tmp_path, installed_from):
    """The dlcore command reports its version; the last install is the one imported and no
    compiled kernel was written into the virtualenv."""
    from dlcore import __version__
    assert __version__ in run("dlcore --version")
    imported = run("cd / && python -c 'import dlcore, dlcore.cli; print(dlcore.__file__)'")
    assert Path(imported.strip()).is_relative_to(installed_from), imported
    assert not [*(tmp_path / "venv").rglob("*.nb[ic]")], "kernel cache files in the virtualenv"


@pytest.mark.slow
def test_the_readme_commands_work_one_after_the_other_in_either_order_in_one_virtualenv(
        tmp_path):
    """Command 1, the install of command 2, command 1 again, in one fresh virtualenv: each
    order of the two (plain install then editable, editable then plain) leaves a dlcore that
    works and imports from the last install. One chain rather than two fresh virtualenvs: the
    dependencies are installed once (this test is the suite's slowest)."""
    main_job, test_command = readme_commands()
    run = users_shell(tmp_path)
    run(main_job)
    run(test_command.split("&&")[0])
    # no training here: the editable install is the one the rest of the suite trains with
    assert_dlcore_works(run, tmp_path, installed_from=tmp_path / "dlcore")
    run(main_job)   # trains: command 1 is `pip install . && dlcore homework task1`
    assert_dlcore_works(run, tmp_path, installed_from=tmp_path / "venv")


IMPORT_FROM_THE_PARENT_FOLDER = """
import dlcore, dlcore.cli, dlcore.datasets
images, labels = dlcore.datasets.load_mnist_5k()
print(dlcore.__file__, dlcore.cli.__file__, dlcore.BernoulliRBM.__name__, images.shape)
"""


def run_beside_a_clone_named_dlcore(tmp_path, environment, python_options=()):
    """A script and ``python -c`` run in the folder that holds a clone named dlcore (here a
    link to this checkout): stdout of each."""
    (tmp_path / "dlcore").symlink_to(ROOT, target_is_directory=True)
    (tmp_path / "script.py").write_text(IMPORT_FROM_THE_PARENT_FOLDER)
    outputs = []
    for arguments in (["script.py"], ["-c", IMPORT_FROM_THE_PARENT_FOLDER]):
        command = [sys.executable, *python_options, *arguments]
        completed = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True,
                                   env={**environment, "DLCORE_CACHE": str(tmp_path / "kernels")},
                                   check=False)
        assert completed.returncode == 0, completed.stderr[-2000:]
        outputs.append(completed.stdout)
    return outputs


def test_the_folder_above_a_clone_imports_the_whole_package_with_the_editable_install(tmp_path):
    environment = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    for output in run_beside_a_clone_named_dlcore(tmp_path, environment):
        assert "BernoulliRBM (5000, 28, 28)" in output
        assert f"{tmp_path / 'dlcore' / 'cli' / '__init__.py'}" in output, output


def test_the_folder_above_a_clone_imports_the_whole_package_with_a_plain_install(
        wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-index", "--target", str(target), str(wheel)], check=True)
    # python -S: no .pth file runs, so no editable finder of this environment; its
    # site-packages only lend the dependencies.
    dependencies = sysconfig.get_paths()["purelib"]
    environment = {"PYTHONPATH": f"{target}{os.pathsep}{dependencies}", "PATH": "/usr/bin:/bin",
                   "HOME": str(tmp_path)}
    for output in run_beside_a_clone_named_dlcore(tmp_path, environment, ["-S"]):
        assert "BernoulliRBM (5000, 28, 28)" in output


def package_linked_into(folder):
    """``folder``, made, holding a dlcore/ of links to this checkout's package files, without
    cli/ and datasets/ (which a clone keeps beside dlcore/); so that no link a developer made
    inside dlcore/ hides what is tested. Returns ``folder``."""
    (folder / "dlcore").mkdir(parents=True)
    for entry in (ROOT / "dlcore").iterdir():
        if entry.name not in ("cli", "datasets", "__pycache__"):
            (folder / "dlcore" / entry.name).symlink_to(entry)
    return folder


def run_uninstalled(code, folder, tmp_path):
    """Python ``code`` run in ``folder`` where no dlcore is installed: -S, no editable finder
    of this environment, whose site-packages only lend the dependencies; -B, nothing written
    beside the sources; HOME and the kernel cache under ``tmp_path``."""
    return subprocess.run(
        [sys.executable, "-S", "-B", "-c", code], cwd=folder, capture_output=True, text=True,
        check=False, env={"PYTHONPATH": sysconfig.get_paths()["purelib"],
                          "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                          "DLCORE_CACHE": str(tmp_path / "kernels")})


def test_the_clone_s_own_folder_imports_the_whole_package(tmp_path):
    # README command 1 (`pip install .`) leaves the user in the clone's root, where ./dlcore
    # comes first on sys.path, before any installed dlcore, but holds neither cli/ nor
    # datasets/: `import dlcore` there failed with a "circular import". The clone is rebuilt
    # from links, so that no link a developer made inside dlcore/ (to cli/ or datasets/) hides
    # the failure; no dlcore is installed, as the clone's own folder is found first anyway.
    clone = package_linked_into(tmp_path / "clone")
    for name in ("cli", "datasets"):
        (clone / name).symlink_to(ROOT / name, target_is_directory=True)
    (clone / "setup.cfg").symlink_to(ROOT / "setup.cfg")   # what makes the folder a clone's
    completed = run_uninstalled(IMPORT_FROM_THE_PARENT_FOLDER, clone, tmp_path)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "BernoulliRBM (5000, 28, 28)" in completed.stdout
    assert f"{clone / 'cli' / '__init__.py'}" in completed.stdout, completed.stdout


def test_a_copy_of_the_package_beside_a_project_s_own_datasets_is_not_joined_to_them(tmp_path):
    # a student's project folder with the dlcore/ folder copied in, beside its own cli/ and
    # datasets/ packages: `import dlcore` there took them for the clone's and ran the
    # project's datasets/__init__.py as dlcore.datasets. Only a clone's root (its setup.cfg
    # maps dlcore.datasets to datasets/) is joined to the package
    project = package_linked_into(tmp_path / "project")
    for name in ("cli", "datasets"):
        (project / name).mkdir()
        (project / name / "__init__.py").write_text(f"print('the project s own {name}')\n")
    completed = run_uninstalled("import dlcore", project, tmp_path)
    assert "the project s own" not in completed.stdout, completed.stdout


def test_setup_cfg_lists_every_package_folder_of_dlcore():
    # setup.cfg names its packages one by one: a new folder left out installs in editable mode
    # but is missing from a plain install (README command 1), so `dlcore homework` breaks there.
    import configparser
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    listed = set(config["options"]["packages"].split())
    folders = {"dlcore." + path.parent.name for path in (ROOT / "dlcore").glob("*/__init__.py")}
    assert folders - listed == set(), f"setup.cfg [options] packages lacks {folders - listed}"


def test_the_code_uses_nothing_newer_than_the_oldest_python_it_claims():
    # `datetime.UTC` (Python 3.11) in the model file's writer made every save fail on Python
    # 3.10, which setup.cfg admits; CI runs one newer Python. vermin reads the code for the
    # standard library's names, modules and syntax by the version that brought them
    import configparser
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    oldest = re.fullmatch(r">=\s*(3\.\d+)", config["options"]["python_requires"].strip())
    assert oldest is not None, config["options"]["python_requires"]
    vermin = subprocess.run(
        [sys.executable, "-c", "import sys, vermin; sys.exit(vermin.main())",
         f"--target={oldest.group(1)}-", "--violations",
         "--no-tips", "-q", "dlcore", "cli", "datasets", "tests"],
        cwd=ROOT, capture_output=True, text=True, check=False)
    assert vermin.returncode == 0, vermin.stdout + vermin.stderr


def test_the_gpu_script_parses_and_its_steps_fit_one_ten_minute_lease():
    """``.ci/gpu`` runs on a lent GPU machine whose commands stop at ten minutes: the steps' own
    limits (the bench step runs once per bench of its loop) must add up to less."""
    script = (ROOT / ".ci" / "gpu").read_text()
    parsed = subprocess.run(["bash", "-n", str(ROOT / ".ci" / "gpu")], capture_output=True,
                            text=True, check=False)
    assert parsed.returncode == 0, parsed.stderr
    benches = re.search(r"^for work in ([\w ]+); do$", script, re.MULTILINE).group(1).split()
    assert set(benches) == {"rbm", "mlp", "cnn"}
    limits = [(name, int(limit)) for name, limit
              in re.findall(r"^\s*step (\S+) (\d+) ", script, re.MULTILINE)]
    assert [name for name, _ in limits] == ["install", "doctor", "cuda-tests", '"bench-$work"']
    total = sum(limit * (len(benches) if name.startswith('"bench') else 1)
                for name, limit in limits)
    assert total < 600, f"the steps may take {total} s in all"
