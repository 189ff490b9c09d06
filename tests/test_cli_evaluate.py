"""``dlcore rbm evaluate``, ``dlcore dbn evaluate`` and ``dlcore bench ais``: what they print,
the estimates against the exact values they can be checked with, and one-line errors."""
import json
import re

import numpy as np
import pytest
from click.testing import CliRunner

import dlcore
from dlcore.cli import main

AIS_OPTIONS = ["--temperatures", "300", "--runs", "20", "--reverse-rows", "30",
               "--backend", "cpu"]


def digits(rows=500):
    images, labels = dlcore.datasets.load_dataset("mnist-5k")
    order = dlcore.backend.rng.permutation(len(images), 0)[:rows]
    return dlcore.datasets.to_unit_interval(images[order])


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("evaluate")
    X = digits()
    rbm = dlcore.BernoulliRBM(n_hidden=10, epochs=1, learning_rate=0.05, seed=0,
                              backend="reference").fit(X)
    dlcore.save(rbm, folder / "rbm.h5")
    dbn = dlcore.DBN(layers=[784, 12, 8], epochs=1, learning_rate=0.05, seed=0,
                     backend="reference").fit(X)
    dlcore.save(dbn, folder / "dbn.h5")
    wide = dlcore.BernoulliRBM(n_hidden=30, epochs=1, seed=0, backend="reference").fit(X[:50])
    dlcore.save(wide, folder / "wide.h5")
    return folder


def numbers_after(text, label):
    """The first number on the line that starts with ``label``."""
    line = next(line for line in text.splitlines() if line.strip().startswith(label))
    return float(re.search(r"-?\d+\.\d+", line[len(label):]).group())


def test_rbm_evaluate_prints_every_monitor_and_ais_agrees_with_exact(model_files):
    result = CliRunner().invoke(main, ["rbm", "evaluate", str(model_files / "rbm.h5"),
                                       "--ais", "--exact", *AIS_OPTIONS])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert 0 < numbers_after(out, "reconstruction error:") < 0.2
    assert -500 < numbers_after(out, "pseudo-log-likelihood:") < 0
    log_z = numbers_after(out, "log-likelihood (exact log Z = ")
    exact_line = next(line for line in out.splitlines() if "(exact log Z" in line)
    exact_mean = float(exact_line.split(":")[1].split()[0])
    ais_mean = numbers_after(out, "log-likelihood (AIS):")
    assert log_z > 0 and abs(ais_mean - exact_mean) < 1.0
    assert "bracket:" in out and "log Z by RAISE" in out
    assert "AIS: 100%" in result.stderr and "RAISE: 100%" in result.stderr


def test_rbm_evaluate_without_ais_says_how_to_get_it(model_files):
    result = CliRunner().invoke(main, ["rbm", "evaluate", str(model_files / "rbm.h5"),
                                       "--backend", "cpu", "--binarize"])
    assert result.exit_code == 0, result.output
    assert "(binarised)" in result.stdout and "add --ais" in result.stdout


def test_dbn_evaluate_prints_the_bound_with_ais_and_exactly(model_files):
    runner = CliRunner()
    exact = runner.invoke(main, ["dbn", "evaluate", str(model_files / "dbn.h5"), "--exact",
                                 "--samples", "3", "--backend", "cpu"])
    assert exact.exit_code == 0, exact.output
    bound = float(exact.stdout.splitlines()[-1].split(":")[1].split()[0])
    estimate = runner.invoke(main, ["dbn", "evaluate", str(model_files / "dbn.h5"),
                                    "--samples", "3", *AIS_OPTIONS])
    assert estimate.exit_code == 0, estimate.output
    assert "784-12-8" in estimate.stdout and "bracket:" in estimate.stdout
    assert abs(numbers_after(estimate.stdout, "lower bound on log p(v) (AIS):") - bound) < 1.0


@pytest.mark.parametrize("command, message", [
    (["rbm", "evaluate", "dbn.h5"],
     "holds a DBN, not a BernoulliRBM: give the model.h5 of `dlcore rbm train`"),
    (["rbm", "evaluate", "wide.h5", "--exact"], "at most 24 units"),
    (["dbn", "evaluate", "rbm.h5"], "not a DBN"),
    (["rbm", "evaluate", "rbm.h5", "--runs", "1"], "--runs"),
    # options the other options leave unread were ignored: the user believed them taken
    (["rbm", "evaluate", "rbm.h5", "--exact", "--temperatures", "5000"],
     "--temperatures sets the AIS estimate, which runs with --ais only: add --ais, or drop "
     "--temperatures"),
    (["rbm", "evaluate", "rbm.h5", "--seed", "3"], "--seed seeds the draws of --ais and "
     "--binarize, and neither is given: add one of them, or drop --seed"),
    (["rbm", "reconstruct", "rbm.h5", "--seed", "3"], "--seed seeds the hidden states "
     "--sample-hidden draws, and it is not given: add --sample-hidden, or drop --seed"),
    (["dbn", "evaluate", "dbn.h5", "--exact", "--reverse-rows", "10"], "--reverse-rows sets "
     "the AIS estimate of log Z, which --exact replaces: drop --exact, or drop --reverse-rows"),
])
def test_bad_evaluations_are_one_line_errors(model_files, command, message):
    command = [*command[:2], str(model_files / command[2]), *command[3:], "--backend", "cpu"]
    result = CliRunner().invoke(main, command)
    assert result.exit_code in (1, 2)
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("command", [["rbm", "evaluate"], ["rbm", "reconstruct"]])
def test_split_seed_with_a_data_set_of_its_own_test_split_is_refused(model_files, command,
                                                                     tmp_path):
    # --split-seed chooses mnist-5k's held-out images; with a data set that has a test split
    # it was taken and ignored, the test split measured
    from dlcore.datasets import write_idx
    from dlcore.datasets.mnist import split_file_names
    images, labels = dlcore.datasets.load_mnist_5k()
    for split in ("train", "test"):
        images_name, labels_name = split_file_names(split)
        write_idx(tmp_path / images_name, images[:20])
        write_idx(tmp_path / labels_name, labels[:20])
    result = CliRunner().invoke(main, [*command, str(model_files / "rbm.h5"), "--dataset",
                                       str(tmp_path), "--split-seed", "3", "--backend", "cpu",
                                       *(["--out", str(tmp_path / "r.png")]
                                         if command[1] == "reconstruct" else [])])
    assert result.exit_code == 2, result.output
    [line] = result.stderr.strip().splitlines()
    assert (f"3 chooses which mnist-5k images are held out, but {tmp_path} has a test split "
            "of its own, which is what is measured: drop --split-seed") in line
    assert not (tmp_path / "r.png").exists()


def test_bench_ais_times_dlcore_and_numpy_on_the_same_work():
    """PyTorch is skipped here (its import alone takes seconds); the same code path."""
    result = CliRunner().invoke(main, ["bench", "ais", "--hidden", "12", "--runs", "8",
                                       "--temperatures", "40", "--backend", "cpu", "--json",
                                       "--skip", "torch"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    names = [r["name"] for r in report["results"]]
    assert names[0] == "dlcore cpu" and any(name.startswith("NumPy") for name in names)
    log_zs = [r["log_z"] for r in report["results"]]
    assert np.ptp(log_zs) < 1.0 and report["temperatures"] == 40
    assert all(r["min"] > 0 and r["median"] >= r["min"] for r in report["results"])


def test_exact_on_a_model_too_wide_to_enumerate_proposes_ais_first(model_files, tmp_path):
    # the refusal came after the other figures, from the library, as "use a smaller RBM"
    dbn = dlcore.DBN(layers=[784, 30, 30], epochs=1, seed=0, backend="reference")
    dlcore.save(dbn.fit(digits(50)), tmp_path / "wide_dbn.h5")
    for command, what in [(["rbm", "evaluate", str(model_files / "wide.h5")], "the model"),
                          (["dbn", "evaluate", str(tmp_path / "wide_dbn.h5")], "the top RBM")]:
        result = CliRunner().invoke(main, [*command, "--exact", "--backend", "cpu"])
        assert result.exit_code == 1, result.output
        assert result.stdout == ""
        assert re.fullmatch(rf"dlcore: error: --exact enumerates 2\*\*30 states of {what} of "
                            r".*: at most 24 units can be; estimate the log-likelihood with "
                            r"--ais instead", result.stderr.strip())


def test_exact_log_z_of_a_wide_rbm_in_python_proposes_ais():
    rbm = dlcore.BernoulliRBM(n_hidden=30, epochs=1, seed=0, backend="cpu").fit(digits(50))
    with pytest.raises(ValueError, match=r"at most 24 units are allowed: estimate it by AIS "
                       r"instead \(rbm.log_likelihood\(X\), whose method='ais' is the default"):
        rbm.log_likelihood(digits(50), method="exact")
