"""Compile's accuracy metrics as Keras resolves and names them: ``binary_accuracy`` counts each
output of a multi-label model against 0.5, "accuracy" / "acc" take the argmax of a row of
several outputs (Keras 3's rule for ``y_pred`` wider than 1), and the logs, history and
evaluate's dict name each as compile was given it (``acc``, ``val_acc``)."""

import csv
import pickle
import time

import numpy as np
import pytest

import dlcore
from conftest import requires_cuda
from dlcore.callbacks import CSVLogger, EarlyStopping
from dlcore.layers import Dense
from test_io_keras import real_keras


def multi_label_data(n=24, features=4, labels=3, seed=3):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype(np.float32)
    y = (rng.random((n, labels)) > 0.5).astype(np.float32)
    return x, y


def sigmoid_model(backend, metrics, loss="binary_crossentropy", activation="sigmoid"):
    model = dlcore.Sequential([Dense(3, activation=activation)], input_shape=(4,),
                              backend=backend, seed=5)
    model.compile(loss=loss, optimizer="sgd", metrics=metrics)
    return model


def keras_binary_accuracy(probabilities, y):
    """Keras's BinaryAccuracy of the formula: each output > 0.5 against its 0/1 label."""
    return float(np.mean((probabilities > 0.5) == (y > 0.5)))


# a fused softmax's probabilities are thresholded from its logits (the kernel is checked on
# every backend below)
@pytest.mark.parametrize("backend, loss, activation", [
    ("reference", "binary_crossentropy", "sigmoid"), ("cpu", "binary_crossentropy", "sigmoid"),
    pytest.param("cuda", "binary_crossentropy", "sigmoid", marks=requires_cuda),
    ("reference", "categorical_crossentropy", "softmax"),
    ("cpu", "categorical_crossentropy", "softmax")])
def test_binary_accuracy_counts_each_output_of_a_multi_label_model(backend, loss, activation):
    x, y = multi_label_data()
    model = sigmoid_model(backend, ["binary_accuracy"], loss, activation)
    expected = keras_binary_accuracy(model.predict(x), y)
    argmax = float(np.mean(model.predict(x).argmax(1) == y.argmax(1)))
    assert expected != pytest.approx(argmax)      # the two accuracies tell these apart
    scores = model.evaluate(x, y, return_dict=True)
    assert scores["binary_accuracy"] == pytest.approx(expected, abs=1e-6)
    history = model.fit(x, y, epochs=1, batch_size=8, verbose=0, validation_data=(x, y))
    assert history.history["val_binary_accuracy"][0] == pytest.approx(
        keras_binary_accuracy(model.predict(x), y), abs=1e-6)
    # "accuracy" stays the argmax of the row, as Keras 3 resolves it for 3 outputs
    model.compile(loss=loss, optimizer="sgd", metrics=["accuracy"])
    assert model.evaluate(x, y, return_dict=True)["accuracy"] == pytest.approx(
        float(np.mean(model.predict(x).argmax(1) == y.argmax(1))))


def test_accuracies_equal_keras_s_on_the_same_weights():
    keras = real_keras()
    x, y = multi_label_data()
    for metrics in (["binary_accuracy"], ["acc"], ["accuracy"], ["categorical_accuracy"]):
        model = sigmoid_model("cpu", metrics)
        in_keras = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, "sigmoid")])
        in_keras.compile(loss="binary_crossentropy", metrics=metrics)
        in_keras.set_weights(model.get_weights())
        theirs = in_keras.evaluate(x, y, verbose=0, return_dict=True)
        ours = model.evaluate(x, y, return_dict=True)
        assert sorted(ours) == sorted(theirs)
        assert ours[metrics[0]] == pytest.approx(theirs[metrics[0]], abs=1e-6)


def test_history_and_callbacks_use_the_names_compile_was_given(tmp_path):
    x, y = multi_label_data()
    model = sigmoid_model("reference", ["acc"])
    log = tmp_path / "log.csv"
    stop = EarlyStopping(monitor="val_acc", patience=0)
    history = model.fit(x, y, epochs=3, batch_size=8, verbose=0, validation_split=0.25,
                        callbacks=[stop, CSVLogger(str(log))])
    assert {"acc", "val_acc"} <= set(history.history)
    assert "accuracy" not in history.history
    assert stop.mode == "max" and stop.best == max(history.history["val_acc"])
    with open(log, newline="") as file:
        assert {"acc", "val_acc"} <= set(next(csv.reader(file)))
    assert model.metrics_names == ["loss", "acc"]
    assert list(model.evaluate(x, y, return_dict=True)) == ["loss", "acc"]


def test_binary_accuracy_is_kept_by_files_pickle_clone_and_keras_export(tmp_path):
    x, y = multi_label_data()
    model = sigmoid_model("reference", ["binary_accuracy"])
    expected = model.evaluate(x, y, return_dict=True)
    dlcore.save(model, str(tmp_path / "m.h5"))
    dlcore.save(model, str(tmp_path / "k.h5"), format="keras")
    copies = [dlcore.load(str(tmp_path / "m.h5")), pickle.loads(pickle.dumps(model)),
              dlcore.models.clone_model(model), dlcore.load(str(tmp_path / "k.h5"))]
    copies[2].compile(loss="binary_crossentropy", metrics=model.metrics)
    copies[2].set_weights(model.get_weights())
    for copy in copies:
        assert copy.metrics == ["binary_accuracy"]
        assert copy.evaluate(x, y, return_dict=True) == pytest.approx(expected, abs=1e-6)


def test_a_model_with_two_outputs_names_and_counts_binary_accuracy_per_output():
    x, y = multi_label_data()
    inputs = dlcore.Input((4,))
    first = Dense(3, activation="sigmoid", name="first")(inputs)
    second = Dense(3, activation="sigmoid", name="second")(inputs)
    model = dlcore.Model(inputs, [first, second], backend="reference", seed=2)
    model.compile(loss="binary_crossentropy", metrics=[["binary_accuracy"], []])
    scores = model.evaluate(x, [y, 1 - y], return_dict=True)
    assert "second_binary_accuracy" not in scores
    assert scores["first_binary_accuracy"] == pytest.approx(
        keras_binary_accuracy(model.predict(x)[0], y), abs=1e-6)


@pytest.mark.parametrize("metrics", [["binary_accuracy", "accuracy"],
                                     ["acc", "Binary_Accuracy"]])
def test_mixing_binary_accuracy_with_the_argmax_s_is_refused_in_one_line(metrics):
    with pytest.raises(ValueError, match="one accuracy per output") as error:
        sigmoid_model("reference", metrics)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("call, options", [("fit", {}), ("evaluate", {}),
                                           ("fit", {"class_weight": {0: 1.0, 1: 2.0}})])
def test_labels_left_out_are_named_in_one_line(call, options):
    x, _ = multi_label_data()
    model = sigmoid_model("reference", ["accuracy"])
    with pytest.raises(ValueError, match=r"^y is None: no labels .*fit\(x, y\)") as error:
        getattr(model, call)(x, None, verbose=0, **options)
    assert "\n" not in str(error.value)


def two_output_model(metrics):
    inputs = dlcore.Input((4,))
    first = Dense(3, activation="sigmoid", name="a")(inputs)
    second = Dense(3, activation="sigmoid", name="b")(inputs)
    model = dlcore.Model(inputs, [first, second], backend="reference", seed=2)
    model.compile(loss="binary_crossentropy", metrics=metrics)
    return model


# Keras 3 names each output's metrics as that output was given them (checked with Keras 3.15:
# [["acc"], ["binary_accuracy"]] logs a_acc and b_binary_accuracy, no a_binary_accuracy)
@pytest.mark.parametrize("metrics, keys", [
    ([["acc"], ["binary_accuracy"]], ["a_acc", "b_binary_accuracy"]),
    ({"a": "acc", "b": ["accuracy"]}, ["a_acc", "b_accuracy"])])
def test_each_output_reports_the_metrics_it_was_given_through_files(tmp_path, metrics, keys):
    x, y = multi_label_data()
    model = two_output_model(metrics)
    predicted = model.predict(x)
    right = {"a_acc": float(np.mean(predicted[0].argmax(1) == y.argmax(1))),
             "b_binary_accuracy": keras_binary_accuracy(predicted[1], 1 - y),
             "b_accuracy": float(np.mean(predicted[1].argmax(1) == (1 - y).argmax(1)))}
    dlcore.save(model, str(tmp_path / "m.h5"))
    dlcore.save(model, str(tmp_path / "k.h5"), format="keras")
    for copy in (model, dlcore.load(str(tmp_path / "m.h5")), pickle.loads(pickle.dumps(model)),
                 dlcore.load(str(tmp_path / "k.h5"))):
        scores = copy.evaluate(x, [y, 1 - y], return_dict=True)
        assert list(scores) == ["loss", "a_loss", "b_loss"] + keys
        assert copy.metrics_names == list(scores)
        for key in keys:
            assert scores[key] == pytest.approx(right[key], abs=1e-6)


def test_a_name_in_another_case_is_kept_as_keras_s_through_an_export(tmp_path):
    # Keras refuses "Binary_Accuracy": the export must write its own spelling
    model = sigmoid_model("reference", ["Binary_Accuracy"])
    assert model.metrics == ["binary_accuracy"]
    dlcore.save(model, str(tmp_path / "k.h5"), format="keras")
    assert dlcore.load(str(tmp_path / "k.h5")).metrics == ["binary_accuracy"]


@pytest.mark.parametrize("metrics, kept, warned", [
    (["accuracy", "binary_accuracy"], ["accuracy"], "binary_accuracy"),
    ([{"class_name": "BinaryAccuracy", "config": {"threshold": 0.7}}], [], "threshold=0.7")])
def test_a_keras_metric_dlcore_does_not_report_as_asked_is_left_out_with_a_warning(
        metrics, kept, warned):
    from dlcore.io.keras_training import compile_from
    model = sigmoid_model("reference", [])
    with pytest.warns(UserWarning, match=r"left out") as caught:
        assert compile_from(model, {"loss": "binary_crossentropy", "metrics": metrics,
                                    "optimizer_config": {"class_name": "SGD", "config": {}}}) \
            is None
    assert warned in str(caught[0].message)
    assert model.metrics == kept


@pytest.mark.parametrize("metric", ["auc\nall metrics restored",
                                    {"class_name": "BinaryAccuracy",
                                     "config": {"threshold": "0.7\nall metrics restored"}}])
def test_a_hostile_keras_file_s_metric_is_warned_about_in_one_line(metric):
    from dlcore.io.keras_training import compile_from
    model = sigmoid_model("reference", [])
    with pytest.warns(UserWarning, match=r"left out") as caught:
        compile_from(model, {"loss": "binary_crossentropy", "metrics": [metric],
                             "optimizer_config": {"class_name": "SGD", "config": {}}})
    assert "\n" not in str(caught[0].message)
    assert len(str(caught[0].message)) < 200


def per_output_accuracies(model, x, y):
    """Keras's value of each output's accuracy names, from the model's predictions on x:
    output a against y, output b against 1 - y."""
    predicted = model.predict(x)
    values = {}
    for name, probabilities, targets in zip("ab", predicted, (y, 1 - y)):
        argmax = float(np.mean(probabilities.argmax(1) == targets.argmax(1)))
        values.update({f"{name}_acc": argmax, f"{name}_accuracy": argmax,
                       f"{name}_binary_accuracy": keras_binary_accuracy(probabilities,
                                                                        targets)})
    return values


# Keras 3.15 (checked): a flat list of one name per output gives each output its own
# (["accuracy", "acc"]: a_accuracy and b_acc); tf.keras gave every output every name
@pytest.mark.parametrize("metrics, keys", [(["accuracy", "acc"], ["a_accuracy", "b_acc"]),
                                           (["acc", "binary_accuracy"],
                                            ["a_acc", "b_binary_accuracy"])])
def test_a_flat_list_of_one_name_per_output_is_taken_per_output_as_keras_3(
        tmp_path, metrics, keys):
    x, y = multi_label_data()
    model = two_output_model(metrics)
    right = per_output_accuracies(model, x, y)
    dlcore.save(model, str(tmp_path / "m.h5"))
    dlcore.save(model, str(tmp_path / "k.h5"), format="keras")
    for copy in (model, dlcore.load(str(tmp_path / "m.h5")), pickle.loads(pickle.dumps(model)),
                 dlcore.load(str(tmp_path / "k.h5")), model.clone()):
        scores = copy.evaluate(x, [y, 1 - y], return_dict=True)
        assert list(scores) == ["loss", "a_loss", "b_loss"] + keys
        for key in keys:
            assert scores[key] == pytest.approx(right[key], abs=1e-6)


@pytest.mark.parametrize("metrics, count", [(["acc", "accuracy", "binary_accuracy"],
                                             "are 3 entries"),
                                            ([["acc"], ["accuracy"], None], "are 3 entries"),
                                            ([["acc"]], "is 1 entry")])
def test_a_list_of_another_length_than_the_outputs_is_refused_in_one_line(metrics, count):
    # Keras 3 refuses these too ("Node arity mismatch; expected 2, but got 3")
    with pytest.raises(ValueError, match=count + r" for 2 outputs \(a, b\): Keras 3 "
                                                 r"takes one entry per output") as error:
        two_output_model(metrics)
    assert "\n" not in str(error.value) and len(str(error.value)) < 400


@pytest.mark.parametrize("metrics", [["acc", "binary_accuracy", "acc"],
                                     ["binary_accuracy", "accuracy", "acc"]])
def test_the_refusal_s_example_of_every_name_on_every_output_is_one_compile_takes(metrics):
    import ast
    with pytest.raises(ValueError, match="are 3 entries") as error:
        two_output_model(metrics)
    example = str(error.value).split("e.g. ")[1].split(" for every name")[0]
    assert two_output_model(ast.literal_eval(example)).metrics_names[3:]


@pytest.mark.parametrize("entry", ["acc", ["acc"]])
def test_a_very_long_metrics_list_is_refused_at_once(entry):
    # the refusal's example once compared each entry with all those before it (hours for a
    # million; 200,000 took half a minute)
    started = time.perf_counter()
    with pytest.raises(ValueError, match=r"are 200000 entries for 2 outputs \(a, b\)"):
        two_output_model([entry] * 200_000)
    assert time.perf_counter() - started < 5


def test_one_name_is_still_every_output_s_and_old_files_keep_their_names(tmp_path):
    x, y = multi_label_data()
    # ["acc"] for two outputs is tf.keras's (Keras 3 refuses it): every output's
    assert two_output_model(["acc"]).metrics_names[-2:] == ["a_acc", "b_acc"]
    # a file that stored one list for every output (dlcore's, before names went one per
    # output) still gives every output every name
    model = two_output_model([["accuracy", "acc"], ["accuracy", "acc"]])
    dlcore.save(model, str(tmp_path / "m.h5"))
    keys = ["a_accuracy", "a_acc", "b_accuracy", "b_acc"]
    assert list(dlcore.load(str(tmp_path / "m.h5")).evaluate(
        x, [y, 1 - y], return_dict=True))[3:] == keys


# a file without keras_version is Keras 1's, as Keras reads it (its legacy loader's
# original_keras_version = "1"): Keras 3 and tf.keras 2 always write the attribute
@pytest.mark.parametrize("version, keys", [("3.15.1", ["a_accuracy", "b_acc"]),
                                           ("2.15.0", ["a_accuracy", "a_acc", "b_accuracy",
                                                       "b_acc"]),
                                           (None, ["a_accuracy", "a_acc", "b_accuracy",
                                                   "b_acc"])])
def test_a_keras_file_s_flat_list_is_read_as_its_keras_read_it(tmp_path, version, keys):
    import json

    import h5py
    path = str(tmp_path / "k.h5")
    dlcore.save(two_output_model(["accuracy"]), path, format="keras")
    with h5py.File(path, "r+") as h5file:
        training = json.loads(h5file.attrs["training_config"])
        training["metrics"] = ["accuracy", "acc"]
        h5file.attrs["training_config"] = json.dumps(training)
        if version is None:
            del h5file.attrs["keras_version"]
        else:
            h5file.attrs["keras_version"] = version
    assert dlcore.load(path).metrics_names[3:] == keys


# tf.keras 2.13 to 2.15 write .keras archives too (metadata.json's keras_version "2.x"), with
# tf.keras's rule for a flat list: every output every name
@pytest.mark.parametrize("version, keys", [("3.15.1", ["a_accuracy", "b_acc"]),
                                           ("2.15.0", ["a_accuracy", "a_acc", "b_accuracy",
                                                       "b_acc"])])
def test_a_keras_archive_s_flat_list_is_read_as_its_keras_read_it(tmp_path, version, keys):
    import json
    import zipfile
    exported = tmp_path / "k.keras"
    dlcore.save(two_output_model(["accuracy"]), str(exported), format="keras")
    with zipfile.ZipFile(exported) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    config = json.loads(members["config.json"])
    config["compile_config"]["metrics"] = ["accuracy", "acc"]
    metadata = {**json.loads(members["metadata.json"]), "keras_version": version}
    members.update({"config.json": json.dumps(config), "metadata.json": json.dumps(metadata)})
    edited = tmp_path / "edited.keras"
    with zipfile.ZipFile(edited, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    assert dlcore.load(str(edited)).metrics_names[3:] == keys


def test_a_flat_list_per_output_reports_as_real_keras_3(tmp_path):
    keras = real_keras()
    x, y = multi_label_data()
    model = two_output_model(["accuracy", "acc"])
    inputs = keras.Input((4,))
    in_keras = keras.Model(inputs, [keras.layers.Dense(3, "sigmoid", name=name)(inputs)
                                    for name in "ab"])
    in_keras.compile(loss="binary_crossentropy", metrics=["accuracy", "acc"])
    in_keras.set_weights(model.get_weights())
    theirs = in_keras.evaluate(x, [y, 1 - y], verbose=0, return_dict=True)
    ours = model.evaluate(x, [y, 1 - y], return_dict=True)
    assert sorted(ours) == sorted(theirs)
    for key in ("a_accuracy", "b_acc"):
        assert ours[key] == pytest.approx(float(theirs[key]), abs=1e-6)
    # Keras's own file of it loads as Keras reads it
    in_keras.save(str(tmp_path / "k.keras"))
    assert dlcore.load(str(tmp_path / "k.keras")).metrics_names[3:] == ["a_accuracy", "b_acc"]


# Keras 3.15 (checked): a model of one output flattens its metrics, whatever their nesting:
# {"dense": "acc"} logs acc, [["acc"], ["accuracy"]] logs acc and accuracy
@pytest.mark.parametrize("metrics, keys", [({"dense": "acc"}, ["acc"]),
                                           ([["acc"], ["accuracy"]], ["acc", "accuracy"]),
                                           (["acc", ["accuracy"]], ["acc", "accuracy"])])
def test_a_model_of_one_output_takes_its_metrics_in_any_nesting_as_keras(metrics, keys):
    x, y = multi_label_data()
    sequential = dlcore.Sequential([Dense(3, activation="sigmoid", name="dense")],
                                   input_shape=(4,), backend="reference", seed=5)
    inputs = dlcore.Input((4,))
    functional = dlcore.Model(inputs, Dense(3, activation="sigmoid", name="dense")(inputs),
                              backend="reference", seed=5)
    for model in (sequential, functional):
        model.compile("binary_crossentropy", "sgd", metrics)
        assert list(model.evaluate(x, y, return_dict=True)) == ["loss"] + keys
    # as many names as given, as Keras (and dlcore before it flattened them) takes them
    for many in (["acc"] * 1000, [["acc"]] * 1000):
        sequential.compile("binary_crossentropy", "sgd", many)
        assert sequential.metrics == ["acc"]
    # a list holding itself (or nested past reason) is refused in one line, not followed
    deep, cyclic = ["acc"], ["acc"]
    cyclic.append(cyclic)
    for _ in range(40):
        deep = [deep]
    for hostile in (deep, cyclic):
        with pytest.raises(ValueError, match=r"^metrics are nested more than 16 deep") as error:
            sequential.compile("binary_crossentropy", "sgd", hostile)
        assert "\n" not in str(error.value)


# Keras 3.15 (checked): keras.metrics.Accuracy() counts predictions equal to their targets
# (0.0 on softmax probabilities, logged as "accuracy"); the string "Accuracy" is the argmax's
def test_keras_s_exact_accuracy_object_is_not_taken_for_the_argmax_accuracy():
    from dlcore.io.keras_training import compile_from
    exact = {"module": "keras.metrics", "class_name": "Accuracy",
             "config": {"name": "accuracy", "dtype": "float32"}, "registered_name": None}
    model = sigmoid_model("reference", [])
    with pytest.warns(UserWarning, match=r"keras.metrics.Accuracy counts predictions equal to "
                                         r"their targets.* are left out") as caught:
        assert compile_from(model, {"loss": "binary_crossentropy", "metrics": [exact],
                                    "optimizer_config": {"class_name": "SGD", "config": {}}}) \
            is None
    assert model.metrics == [] and "\n" not in str(caught[0].message)
    compile_from(model, {"loss": "binary_crossentropy", "metrics": ["Accuracy"],
                         "optimizer_config": {"class_name": "SGD", "config": {}}})
    assert model.metrics == ["accuracy"]


def test_compile_refuses_keras_s_exact_accuracy_object_in_one_line():
    keras = real_keras()
    model = sigmoid_model("reference", [])
    with pytest.raises(ValueError, match=r"Keras object dlcore cannot take: .*keras.metrics"
                                         r".Accuracy counts predictions equal") as error:
        model.compile("binary_crossentropy", "sgd", [keras.metrics.Accuracy()])
    assert "\n" not in str(error.value)
    model.compile("binary_crossentropy", "sgd", [keras.metrics.CategoricalAccuracy()])
    assert model.metrics == ["categorical_accuracy"]


# Keras 3.15 (checked): its metric objects are taken in compile's forms as names are, one
# entry per output (a flat list of one per output, lists, a dict by output name)
@pytest.mark.parametrize("metrics, keys", [
    (lambda k: [k.metrics.BinaryAccuracy(), k.metrics.CategoricalAccuracy()],
     ["a_binary_accuracy", "b_categorical_accuracy"]),
    (lambda k: [k.metrics.CategoricalAccuracy(), "binary_accuracy"],
     ["a_categorical_accuracy", "b_binary_accuracy"]),
    (lambda k: [[k.metrics.BinaryAccuracy()], [k.metrics.CategoricalAccuracy()]],
     ["a_binary_accuracy", "b_categorical_accuracy"]),
    (lambda k: {"b": [k.metrics.CategoricalAccuracy()], "a": k.metrics.BinaryAccuracy()},
     ["a_binary_accuracy", "b_categorical_accuracy"])],
    ids=["flat", "object-and-name", "lists", "dict"])
def test_keras_metric_objects_are_taken_per_output_as_names_are(metrics, keys):
    keras = real_keras()
    x, y = multi_label_data()
    model = two_output_model(metrics(keras))
    right = per_output_accuracies(model, x, y)
    scores = model.evaluate(x, [y, 1 - y], return_dict=True)
    assert list(scores)[3:] == keys
    for key in keys:
        assert scores[key] == pytest.approx(
            right[key.replace("categorical_accuracy", "accuracy")], abs=1e-6)
    # three entries for two outputs are refused, as Keras 3 refuses them
    with pytest.raises(ValueError, match="are 3 entries for 2 outputs"):
        two_output_model([keras.metrics.CategoricalAccuracy()] * 2 + ["acc"])
    # a model of one output: all its own, in any nesting
    for nested in ({"dense": keras.metrics.BinaryAccuracy()}, [[keras.metrics.BinaryAccuracy()]]):
        assert sigmoid_model("reference", nested).metrics == ["binary_accuracy"]


def test_a_keras_accuracy_of_its_own_name_is_told_the_name_dlcore_logs_it_under():
    from dlcore.io.keras_training import compile_from
    model = sigmoid_model("reference", [])
    metric = {"class_name": "BinaryAccuracy", "config": {"name": "bin", "threshold": 0.5}}
    with pytest.warns(UserWarning, match=r"'bin' \(a BinaryAccuracy\) is reported as "
                                         r"binary_accuracy") as caught:
        compile_from(model, {"loss": "binary_crossentropy", "metrics": [metric],
                             "optimizer_config": {"class_name": "SGD", "config": {}}})
    assert len(caught) == 1 and "\n" not in str(caught[0].message)
    assert model.metrics == ["binary_accuracy"]


# the warning that a Keras accuracy of its own name is logged under Keras's names the user's
# compile line, in whichever of compile's forms the object stands
@pytest.mark.parametrize("form", ["one output", "flat per output", "list per output", "dict"])
def test_a_renamed_keras_accuracy_s_warning_names_the_user_s_compile_line(form):
    keras = real_keras()
    named = keras.metrics.BinaryAccuracy(name="bin")
    with pytest.warns(UserWarning, match="'bin' .a BinaryAccuracy. is reported as") as caught:
        if form == "one output":
            sigmoid_model("reference", [named])
        else:
            two_output_model({"flat per output": [named, "acc"],
                              "list per output": [[named], ["acc"]],
                              "dict": {"a": [named], "b": "acc"}}[form])
    assert [warning.filename for warning in caught] == [__file__]


def test_a_keras_file_s_left_out_metrics_are_told_at_the_user_s_line():
    from dlcore.io.keras_training import compile_from
    auc = {"class_name": "AUC", "config": {"name": "auc"}}
    for model, metrics in ((sigmoid_model("reference", []), [auc]),
                           (two_output_model(None), [[auc], ["acc"]])):
        with pytest.warns(UserWarning, match="AUC.* are left out") as caught:
            compile_from(model, {"loss": "binary_crossentropy", "metrics": metrics,
                                 "optimizer_config": {"class_name": "SGD", "config": {}}})
        assert [warning.filename for warning in caught] == [__file__]


def test_asking_binary_accuracy_leaves_a_softmax_s_loss_and_training_as_they_were():
    # saturated softmax outputs: a cross-entropy on clipped probabilities reported 11.4
    # where the fused one reports 29.8, and trained other weights
    rng = np.random.default_rng(0)
    x, y = (rng.normal(size=(16, 4)) * 30).astype(np.float32), rng.integers(0, 3, 16)
    runs = []
    for metrics in (["accuracy"], ["binary_accuracy"]):
        model = sigmoid_model("cpu", metrics, "categorical_crossentropy", "softmax")
        before = model.evaluate(x, y, return_dict=True)["loss"]
        model.fit(x, y, epochs=1, batch_size=16, verbose=0, shuffle=False)
        runs.append((before, model.get_weights()))
        if metrics == ["binary_accuracy"]:
            expected = keras_binary_accuracy(model.predict(x), np.eye(3)[y])
            assert model.evaluate(x, y, return_dict=True)["binary_accuracy"] == pytest.approx(
                expected, abs=1e-6)
    assert runs[1][0] == runs[0][0]
    for theirs, ours in zip(runs[0][1], runs[1][1]):
        np.testing.assert_array_equal(theirs, ours)


@pytest.mark.parametrize("backend", ["reference", "cpu", pytest.param("cuda", marks=requires_cuda)])
def test_binary_accuracy_of_softmax_logits_thresholds_their_probabilities(backend):
    from dlcore.backend import get_backend
    from dlcore.backend.reference import softmax
    from dlcore.losses import elementwise_correct
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(6, 2 * 3)).astype(np.float32) * 2   # 2 channels at 3 positions
    targets = (rng.random((6, 6)) > 0.5).astype(np.float32)
    probabilities = softmax(logits.reshape(6, 2, 3)).reshape(6, 6)
    expected = ((probabilities > 0.5) == (targets > 0.5)).mean(axis=1)
    device = get_backend(backend)
    right = device.asarray(np.zeros(6, np.float32))
    elementwise_correct(device, device.asarray(logits), device.asarray(targets), right,
                        "softmax", channels=2)
    np.testing.assert_allclose(device.to_numpy(right), expected, atol=1e-7)


def test_binary_accuracy_under_a_from_logits_cross_entropy_reads_the_softmax_of_the_logits():
    x, y = multi_label_data()
    loss = dlcore.losses.CategoricalCrossentropy(from_logits=True)
    model = sigmoid_model("reference", ["binary_accuracy"], loss, activation=None)
    probabilities = dlcore.backend.reference.softmax(model.predict(x))
    assert model.evaluate(x, y, return_dict=True)["binary_accuracy"] == pytest.approx(
        keras_binary_accuracy(probabilities, y), abs=1e-6)
