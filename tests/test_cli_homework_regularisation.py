"""``dlcore homework regularisation`` on tiny settings; the networks it builds; the figure
helper it draws with.

Oracles: the files and rows promised, the table's own arithmetic (the change against ``none``
is the difference of the printed test errors), the networks' layers as the method says, and
one-line errors for bad options."""
import csv

import numpy as np
import pytest
from click.testing import CliRunner

import dlcore
from conftest import assert_wrote
from dlcore import viz
from dlcore.cli import main
from dlcore.cli.homework_regularisation import METHODS, NETWORKS, parse_methods
from dlcore.layers import Dense, Dropout, GaussianNoise, ImageAugmentation
from dlcore.regularizers import L2, MaxNorm

TINY = ["--train-size", "40", "--epochs", "2", "--batch-size", "20", "--ensemble-size", "2",
        "--mc-dropout", "2", "--backend", "cpu"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("regularisation")
    result = CliRunner().invoke(main, ["homework", "regularisation", *TINY, "--methods",
                                       "none,l2,dropout,distillation,adversarial", "--seeds",
                                       "2", "--out", str(out)])
    return result, out


@pytest.mark.slow
def test_the_command_writes_the_table_the_curves_and_the_adversarial_examples(tiny_run):
    result, out = tiny_run
    assert_wrote(result, out, ["regularisation.csv", "regularisation_curves.png",
                               "adversarial_examples.png"])


@pytest.mark.slow
def test_the_csv_has_a_row_per_method_and_seed_with_errors_in_range(tiny_run):
    _, out = tiny_run
    with open(out / "regularisation.csv") as handle:
        rows = list(csv.DictReader(handle))
    methods = [row["method"] for row in rows]
    assert len(rows) == 2 * 6 and methods[:6] == methods[6:]
    assert methods[:6] == ["none", "L2, lambda=3e-3", "dropout 0.5",
                           "distilled ensemble, T=2", "adversarial, eps=0.1",
                           "dropout, MC K=2"]
    assert {row["seed"] for row in rows} == {"0", "1"}
    assert all(0 <= float(row["test_error"]) <= 1 for row in rows)
    assert [row["fgsm_test_error"] == "" for row in rows[:6]] == [False] * 5 + [True]


@pytest.mark.slow
def test_the_printed_change_is_the_difference_of_the_mean_test_errors(tiny_run):
    result, out = tiny_run
    with open(out / "regularisation.csv") as handle:
        rows = list(csv.DictReader(handle))
    test = {}
    for row in rows:
        test.setdefault(row["method"], []).append(float(row["test_error"]))
    line = next(line for line in result.stdout.splitlines() if line.startswith("dropout 0.5"))
    change = 100 * (np.mean(test["dropout 0.5"]) - np.mean(test["none"]))
    assert f"{change:+.2f}" in line and "±" in line
    assert "(mean ± std over 2 seeds)" in result.stdout


def test_methods_parse_in_table_order_and_all_means_every_one():
    assert parse_methods("dropout, none") == ["none", "dropout"]
    assert parse_methods("all") == list(METHODS)


@pytest.mark.parametrize("arguments, words", [
    (["--methods", "none,weight-noise"], "choose from none, l2"),
    (["--train-size", "5000"], "more than the 4000 training images"),
    (["--model", "resnet"], "'resnet' is not one of"),
])
def test_bad_options_are_one_line_usage_errors(arguments, words, tmp_path):
    result = CliRunner().invoke(main, ["homework", "regularisation", *arguments, "--out",
                                       str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert words in result.output and len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("builder", [dlcore.models.mlp, dlcore.models.lenet5])
def test_the_model_builders_take_the_regularisers_of_each_method(builder):
    model = builder(backend="reference", noise=0.3, augment={"max_shift": 2},
                    kernel_regularizer=L2(1e-3), kernel_constraint=MaxNorm(2.0), dropout=0.5)
    kinds = [type(layer) for layer in model.layers]
    assert kinds[:2] == [ImageAugmentation, GaussianNoise] and Dropout in kinds
    weighted = [layer for layer in model.layers if layer.weight_names]
    assert all(layer.kernel_regularizer.l2 == 1e-3 and layer.kernel_constraint.max_value == 2
               for layer in weighted)
    assert isinstance(model.layers[-1], Dense)


def test_every_method_names_a_network_the_builders_accept():
    for name, (label, options) in NETWORKS.items():
        model = dlcore.models.mlp(backend="reference", **options)
        assert label and model.built, name


def test_curve_panels_share_colours_and_refuse_empty_input(tmp_path):
    viz.save_curve_panels({"train": {"a": [0.5, 0.2], "b": [0.4, None, 0.1]},
                           "test": {"a": [0.6, 0.5]}}, tmp_path / "curves.png",
                          ylabel="error", title="t")
    assert (tmp_path / "curves.png").stat().st_size > 0
    for panels in ({}, {"train": {}}):
        with pytest.raises(ValueError, match="panels must be"):
            viz.save_curve_panels(panels, tmp_path / "x.png")


def test_ctrl_c_names_the_finished_rows_it_could_not_save(tmp_path, monkeypatch):
    import dlcore.cli.homework_regularisation as command
    from dlcore.cli._common import INTERRUPTED_EXIT_CODE
    trained = command.Experiment.run
    calls = []

    def interrupted_third(self, method, teacher=None):
        calls.append(method)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return trained(self, method, teacher)

    monkeypatch.setattr(command.Experiment, "run", interrupted_third)
    result = CliRunner().invoke(main, ["homework", "regularisation", *TINY, "--methods",
                                       "none,l2,dropout", "--out", str(tmp_path / "run")])
    assert result.exit_code == INTERRUPTED_EXIT_CODE, result.output
    assert calls == ["none", "l2", "dropout"]
    rows = f"{NETWORKS['none'][0]} (seed 0), {NETWORKS['l2'][0]} (seed 0)"
    assert f"the 2 finished rows ({rows}) were not saved" in result.output
    assert not (tmp_path / "run" / "regularisation.csv").exists()
