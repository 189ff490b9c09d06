"""A model trained by a library fit records what it was trained on (dlcore/records.py); a dlcore
command's richer record replaces it, and the commands that read records cope with the small one."""
import numpy as np
import pytest
from click.testing import CliRunner

import dlcore
from dlcore.cli import main


@pytest.fixture(scope="module")
def images():
    data, _ = dlcore.datasets.load_mnist_5k()
    return dlcore.datasets.to_unit_interval(data)[:200]


@pytest.mark.parametrize("make, fit, expected", [
    (lambda: dlcore.BernoulliRBM(n_hidden=4, epochs=1, backend="cpu"), lambda m, X: m.fit(X),
     {"epochs": 1, "n_valid": None}),
    (lambda: dlcore.GaussianBernoulliRBM(n_hidden=4, epochs=1, backend="cpu"),
     lambda m, X: m.fit(X, X_valid=X[:20]), {"epochs": 1, "n_valid": 20}),
    (lambda: dlcore.DBN(layers=[784, 8, 4], epochs=1, backend="cpu"), lambda m, X: m.fit(X),
     {"labels": False, "n_valid": None}),
    (lambda: dlcore.models.mlp((784,), n_classes=2, backend="cpu").compile(
        "cross_entropy", "sgd", ["accuracy"]),
     lambda m, X: m.fit(X, (X[:, 400] > 0.5).astype(np.int64), epochs=1, batch_size=50,
                        verbose=0),
     {"epochs": 1, "batch_size": 50, "validation_split": 0.0, "validation_data": False,
      "shuffle": True}),
])
def test_fit_records_the_data_shape_and_its_settings_and_the_file_keeps_them(
        images, tmp_path, make, fit, expected):
    model = make()
    fit(model, images)
    record = {"n_samples": 200, "n_features": 784, "fit": expected}
    assert model.training_record_ == record
    dlcore.save(model, tmp_path / "model.h5")
    assert dlcore.load(tmp_path / "model.h5").training_record_ == record


def test_rbm_reconstruct_of_a_library_model_marks_the_classes_unknown(images, tmp_path):
    model = dlcore.BernoulliRBM(n_hidden=4, epochs=1, backend="cpu").fit(images)
    dlcore.save(model, tmp_path / "model.h5")
    result = CliRunner().invoke(main, ["rbm", "reconstruct", str(tmp_path / "model.h5"),
                                       "--digits", "1-2", "--backend", "cpu",
                                       "--out", str(tmp_path / "r.png")])
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output
    assert (tmp_path / "r.png").exists()


def test_a_command_record_replaces_the_library_one(tmp_path):
    result = CliRunner().invoke(main, ["rbm", "train", "--digits", "1-2", "--hidden", "4",
                                       "--epochs", "1", "--backend", "cpu",
                                       "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    record = dlcore.load(tmp_path / "model.h5").training_record_
    assert record["classes"] == [1, 2] and "fit" not in record
