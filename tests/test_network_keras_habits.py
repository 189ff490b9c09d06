"""What a Keras user writes out of habit, taken as Keras takes it (or refused in one line that
names the fix): ``Sequential([Input(shape), ...])``, ``compile`` with the optimiser first,
``batch_size=None``, inputs given as a dict by input name, Keras files whose input is
(batch, H, W) without channels; and the summary of a model with several inputs, and the
message of ``dlcore.save`` on a scikit-learn wrapper. Each was a QA finding."""
import warnings

import numpy as np
import pytest

import dlcore
from conftest import requires_cuda
from dlcore.dbn import DBNClassifier
from dlcore.layers import Dense, Flatten, concatenate
from dlcore.wrappers import SKLearnClassifier


def rows(n, width, seed=0):
    return np.random.default_rng(seed).random((n, width)).astype(np.float32)


def test_a_sequential_may_start_with_an_input_as_in_keras_3():
    model = dlcore.Sequential([dlcore.Input(shape=(6,)), Dense(3, activation="softmax")],
                              backend="reference")
    assert model.built and model.input_shape == (6,) and model.output_shape == (3,)
    added = dlcore.Sequential(backend="reference")
    added.add(dlcore.Input((1, 4, 4)))
    added.add(Flatten())
    assert added.output_shape == (16,)
    with pytest.raises(ValueError, match="comes first in a Sequential"):
        dlcore.Sequential([Dense(3, input_shape=(6,)), dlcore.Input((6,))])
    with pytest.raises(ValueError, match=r"input_shape \(5,\) and its Input's shape \(6,\)"):
        dlcore.Sequential([dlcore.Input((6,))], input_shape=(5,))


def test_compile_takes_keras_order_and_keywords():
    model = dlcore.Sequential([Dense(3, activation="softmax")], input_shape=(4,),
                              backend="reference")
    model.compile("adam", "categorical_crossentropy", ["accuracy"])
    assert (model.loss.name, model.optimizer.name, model.metrics) == \
        ("cross_entropy", "adam", ["accuracy"])
    model.compile(optimizer=dlcore.optimizers.RMSProp(0.01), loss="cross_entropy")
    assert model.optimizer.name == "rmsprop"
    model.compile("cross_entropy", "sgd")           # dlcore's own order, as before
    assert model.optimizer.name == "sgd"
    with pytest.raises(ValueError) as error:
        model.compile("adam")
    assert "'adam' is an optimizer" in str(error.value)
    assert "compile(optimizer='adam', loss=...)" in str(error.value)
    inputs = dlcore.Input((4,))
    two = dlcore.Model(inputs, [Dense(2, activation="softmax")(inputs), Dense(1)(inputs)])
    two.compile("adam", ["cross_entropy", "mse"])
    assert [loss.name for loss in two.losses] == ["cross_entropy", "mse"]


def test_batch_size_none_is_taken_by_evaluate_and_predict():
    model = dlcore.Sequential([Dense(2, activation="softmax")], input_shape=(3,),
                              backend="reference")
    model.compile("cross_entropy", "sgd")
    x, y = rows(5, 3), np.array([0, 1, 0, 1, 1])
    np.testing.assert_array_equal(model.predict(x, batch_size=None), model.predict(x))
    assert model.evaluate(x, y, batch_size=None)["loss"] == model.evaluate(x, y)["loss"]


def two_input_model():
    a, b = dlcore.Input((3,), name="a"), dlcore.Input((2,), name="b")
    model = dlcore.Model([a, b], Dense(2, activation="softmax")(concatenate([a, b])),
                         backend="reference")
    return model.compile("cross_entropy", "sgd")


def test_several_inputs_may_come_as_a_dict_by_input_name():
    model = two_input_model()
    xa, xb = rows(4, 3), rows(4, 2, seed=1)
    np.testing.assert_array_equal(model.predict({"b": xb, "a": xa}), model.predict([xa, xb]))
    model.fit({"a": xa, "b": xb}, np.array([0, 1, 1, 0]), verbose=0)
    with pytest.raises(ValueError, match=r"keys \['a'\]; the model's inputs are named"):
        model.predict({"a": xa})


def test_one_array_for_several_inputs_is_refused_naming_the_inputs():
    with pytest.raises(ValueError) as error:
        two_input_model().predict(rows(4, 3))
    assert str(error.value) == ("x must be a list of 2 arrays, one per input (a, b), got one "
                                "array of shape (4, 3)")


def test_the_summary_lists_every_input():
    text = str(two_input_model().summary(print_fn=None))
    assert "a (Input)" in text and "b (Input)" in text
    lines = text.splitlines()
    assert lines.index(next(line for line in lines if line.startswith("a (Input)"))) + 1 == \
        lines.index(next(line for line in lines if line.startswith("b (Input)")))


def test_keras_files_with_an_input_without_channels_cross(tmp_path):
    """Keras's MNIST MLP takes (batch, 28, 28): such an input keeps its shape (it flattens
    alike in both)."""
    model = dlcore.Sequential([Flatten(), Dense(4, activation="relu"),
                               Dense(3, activation="softmax")], input_shape=(5, 4), seed=1)
    x = np.random.default_rng(2).random((3, 5, 4)).astype(np.float32)
    for suffix in (".keras", ".h5"):
        model.save(tmp_path / f"m{suffix}")
        loaded = dlcore.load(tmp_path / f"m{suffix}")
        assert loaded.input_shape == (5, 4)
        np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_saving_a_scikit_learn_wrapper_says_how_to_save_it(tmp_path):
    x, y = rows(30, 4), np.arange(30) % 2
    classifier = DBNClassifier(hidden=(3,), pretrain_epochs=1, epochs=1).fit(x, y)
    with pytest.raises(TypeError) as error:
        dlcore.save(classifier, tmp_path / "c.h5")
    assert "pickle or joblib.dump" in str(error.value)
    assert "dlcore.save(model.network_, path)" in str(error.value)
    assert "register_model" not in str(error.value)
    assert not (tmp_path / "c.h5").exists()


def test_the_wrapper_says_one_unit_per_class():
    network = dlcore.Sequential([Dense(3, activation="softmax")], input_shape=(4,))
    network.compile("cross_entropy", "sgd")
    with pytest.raises(ValueError, match="needs one unit per class "):
        SKLearnClassifier(network).fit(rows(6, 4), np.arange(6) % 2)


def two_output_model():
    inputs = dlcore.Input((4,))
    hidden = Dense(5, activation="relu")(inputs)
    return dlcore.Model(inputs, [Dense(3, activation="softmax", name="cls")(hidden),
                                 Dense(1, name="reg")(hidden)], backend="reference", seed=3)


def test_losses_and_loss_weights_by_output_name_weigh_the_cost():
    """compile(loss={...}, loss_weights={...}) as Keras's functional API guide writes it: the
    cost is sum_k w_k L_k, each L_k computed here by hand from the predictions."""
    x, labels = rows(20, 4), np.arange(20) % 3
    values = np.random.default_rng(4).random((20, 1)).astype(np.float32)
    model = two_output_model()
    assert model.output_names == ["cls", "reg"]
    model.compile(loss={"reg": "mse", "cls": "cross_entropy"}, optimizer="sgd",
                  loss_weights={"cls": 1.0, "reg": 0.25})
    assert [loss.name for loss in model.losses] == ["cross_entropy", "mse"]
    probabilities, predicted = model.predict(x)
    cross_entropy = -np.mean(np.log(probabilities[np.arange(20), labels]))
    squared = np.mean((predicted - values) ** 2)
    assert model.evaluate(x, [labels, values])["loss"] == pytest.approx(
        cross_entropy + 0.25 * squared, rel=1e-5)
    unweighted = two_output_model().compile(["cross_entropy", "mse"], "sgd")
    assert unweighted.evaluate(x, [labels, values])["loss"] == pytest.approx(
        cross_entropy + squared, rel=1e-5)


def test_loss_weights_weigh_the_gradient_too():
    """A step with the second output's weight 0 equals a step of the first output's loss
    alone on a model whose second head is frozen out of the cost."""
    x, labels = rows(8, 4), np.arange(8) % 3
    values = rows(8, 1, seed=5)
    weighted = two_output_model().compile(["cross_entropy", "mse"], "sgd",
                                          loss_weights=[1.0, 0.0])
    weighted.train_on_batch(x, [labels, values])
    alone = two_output_model()
    alone.compile(["cross_entropy", "mse"], "sgd")
    only_first = dlcore.Model(alone.inputs, alone.outputs[0])
    only_first.compile("cross_entropy", "sgd")
    only_first.train_on_batch(x, labels)
    for name in ("dense", "cls"):
        for a, b in zip(weighted.get_layer(name).get_weights(),
                        alone.get_layer(name).get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_loss_weights_keep_through_files_and_bad_ones_are_refused(tmp_path):
    model = two_output_model().compile(["cross_entropy", "mse"], "sgd", loss_weights=[1, 0.5])
    dlcore.save(model, tmp_path / "m.h5")
    assert dlcore.load(tmp_path / "m.h5").loss_weights == [1.0, 0.5]
    for bad, message in (({"cls": "cross_entropy"}, r"without \['reg'\]"),):
        with pytest.raises(ValueError, match=message):
            two_output_model().compile(bad, "sgd")
    with pytest.raises(ValueError, match=r"given for \['foo'\]; the model's outputs are named"):
        two_output_model().compile(["cross_entropy", "mse"], "sgd", loss_weights={"foo": 1})
    with pytest.raises(ValueError, match="a loss weight must be"):
        two_output_model().compile(["cross_entropy", "mse"], "sgd", loss_weights=[1, -1])
    with pytest.raises(ValueError, match="a Sequential has one output"):
        dlcore.Sequential([Dense(2)], input_shape=(3,)).compile("mse", "sgd", loss_weights=[2])


def test_calling_a_model_on_arrays_predicts_as_keras_does():
    sequential = dlcore.Sequential([Dense(3, activation="softmax")], input_shape=(4,),
                                   backend="reference")
    functional = two_input_model()
    x, both = rows(5, 4), [rows(5, 3), rows(5, 2, seed=1)]
    np.testing.assert_array_equal(sequential(x), sequential.predict(x))
    np.testing.assert_array_equal(functional(both), functional.predict(both))
    for model, inputs in ((sequential, x), (functional, both)):
        with pytest.raises(ValueError, match="training=True.*train_on_batch"):
            model(inputs, training=True)


def test_metrics_names_and_the_fits_params_as_keras():
    from dlcore.callbacks import Callback

    class Seen(Callback):
        def on_train_begin(self, logs=None):
            self.at_start = dict(self.params)

    model = dlcore.Sequential([Dense(3, activation="softmax")], input_shape=(4,),
                              backend="reference")
    model.compile("cross_entropy", "sgd")
    assert model.metrics_names == ["loss"]
    model.compile("cross_entropy", "sgd", ["accuracy"])
    x, y = rows(10, 4), np.arange(10) % 3
    assert model.metrics_names == ["loss", "accuracy"] == list(dict(model.evaluate(x, y)))
    seen = Seen()
    history = model.fit(x, y, epochs=2, batch_size=4, verbose=0, callbacks=[seen])
    assert seen.at_start == history.params == {"verbose": 0, "epochs": 2, "steps": 3}


@pytest.mark.parametrize("backend", ["reference", "cpu",
                                     pytest.param("cuda", marks=requires_cuda)])
def test_each_outputs_own_loss_is_reported_as_keras_does(backend):
    """Keras's <output>_loss in evaluate, train_on_batch and the history (val_ too): each
    output's mean loss before its loss weight, the total their weighted sum; with sample
    weights each weighted as the total is."""
    x, labels = rows(20, 4), np.arange(20) % 3
    values = rows(20, 1, seed=6)
    inputs = dlcore.Input((4,))
    hidden = Dense(5, activation="relu")(inputs)
    model = dlcore.Model(inputs, [Dense(3, activation="softmax", name="cls")(hidden),
                                  Dense(1, name="reg")(hidden)], backend=backend, seed=3)
    model.compile({"cls": "cross_entropy", "reg": "mse"}, "sgd", ["accuracy"],
                  loss_weights={"cls": 1.0, "reg": 0.5})
    assert model.metrics_names == ["loss", "cls_loss", "reg_loss", "cls_accuracy",
                                   "reg_accuracy"]
    probabilities, predicted = model.predict(x)
    cross_entropy = -np.log(probabilities[np.arange(20), labels])
    squared = ((predicted - values) ** 2)[:, 0]
    scores = model.evaluate(x, [labels, values])
    assert scores["cls_loss"] == pytest.approx(cross_entropy.mean(), rel=1e-5)
    assert scores["reg_loss"] == pytest.approx(squared.mean(), rel=1e-5)
    assert scores["loss"] == pytest.approx(cross_entropy.mean() + 0.5 * squared.mean(),
                                           rel=1e-5)
    weights = np.linspace(0.5, 2, 20)
    weighted = model.evaluate(x, [labels, values], sample_weight=weights)
    assert weighted["reg_loss"] == pytest.approx((weights * squared).mean(), rel=1e-5)
    history = model.fit(x, [labels, values], epochs=2, batch_size=8, verbose=0,
                        validation_split=0.25).history
    assert {"cls_loss", "reg_loss", "val_cls_loss", "val_reg_loss", "val_cls_accuracy",
            "val_reg_accuracy"} <= set(history)
    assert "accuracy" not in history and "val_accuracy" not in history   # as Keras
    step = model.train_on_batch(x, [labels, values], return_dict=True)
    assert list(step) == model.metrics_names
    with pytest.raises(ValueError, match="weights per output are not dlcore's"):
        model.evaluate(x, [labels, values], sample_weight={"cls": weights, "reg": weights})


def test_targets_by_output_name_and_one_array_in_a_list():
    x, labels = rows(12, 4), np.arange(12) % 3
    values = rows(12, 1, seed=7)
    by_list, by_name = two_output_model(), two_output_model()
    for model in (by_list, by_name):
        model.compile(["cross_entropy", "mse"], "sgd")
    by_list.fit(x, [labels, values], epochs=1, batch_size=4, verbose=0)
    by_name.fit(x, {"reg": values, "cls": labels}, epochs=1, batch_size=4, verbose=0,
                validation_data=(x, {"cls": labels, "reg": values}))
    for a, b in zip(by_list.get_weights(), by_name.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert by_name.evaluate(x, {"cls": labels, "reg": values})["loss"] == \
        by_list.evaluate(x, [labels, values])["loss"]
    with pytest.raises(ValueError, match=r"keys \['cls'\]; the model's outputs are named"):
        by_name.train_on_batch(x, {"cls": labels})
    single = dlcore.Sequential([Dense(2)], input_shape=(4,), backend="reference")
    np.testing.assert_array_equal(single.predict([x]), single.predict(x))
    assert single.predict([[0.1, 0.2, 0.3, 0.4]]).shape == (1, 2)   # one sample, as a list
    with pytest.raises(TypeError, match="x is a dict: a model with one input takes one array"):
        single.predict({"a": x})


def test_metrics_keras_gave_other_outputs_are_left_out_with_a_warning():
    from dlcore.io.keras_training import compile_from
    model = two_output_model()
    with pytest.warns(UserWarning, match=r"metric\(s\) mae \(of reg\) are left out"):
        compile_from(model, {"loss": ["sparse_categorical_crossentropy", "mse"],
                             "metrics": {"cls": ["accuracy"], "reg": ["mae", "accuracy"]},
                             "optimizer_config": {"class_name": "SGD", "config": {}}})
    # the accuracy asked of reg beside its mae is kept (it was dropped with the mae)
    assert model.metrics == ["accuracy"] and model.output_metrics == (True, True)
    assert model.metrics_names == ["loss", "cls_loss", "reg_loss", "cls_accuracy",
                                   "reg_accuracy"]


# (compile's metrics, the outputs that report, the name Keras logs their accuracy by)
METRICS_REPORTED = [
    (["accuracy"], ["cls", "other"], "accuracy"),          # tf.keras's rule: every output
    (["accuracy", None], ["cls"], "accuracy"),             # Keras 3's: one entry per output
    ([[], ["acc"]], ["other"], "acc"),
    ({"other": "categorical_accuracy"}, ["other"], "categorical_accuracy"),   # by output name
    ({"cls": ["accuracy"], "other": ["accuracy"]}, ["cls", "other"], "accuracy"),
    (None, [], "accuracy"),
]


# Which outputs report is decided before any kernel runs, so the simulated CUDA kernels (seconds
# a case) are held to it on the case that computes both outputs' accuracies only.
@pytest.mark.parametrize("backend, metrics, reported, metric", [
    *[(backend, *case) for backend in ("reference", "cpu") for case in METRICS_REPORTED],
    pytest.param("cuda", *METRICS_REPORTED[0], marks=requires_cuda)])
def test_each_outputs_accuracy_is_reported_in_keras_order(backend, metrics, reported, metric):
    """Keras 3 reports <output>_accuracy for each output compiled with it, after the losses
    (``loss, cls_loss, other_loss, cls_accuracy, other_accuracy = model.evaluate(...)``);
    only the first output's accuracy was reported, and before the losses, so that a Keras
    user's unpacking read the wrong numbers. The accuracies are not weighted by
    sample_weight (Keras's ``metrics``), the losses are."""
    x, labels, others = rows(30, 4), np.arange(30) % 3, (np.arange(30) * 7) % 4
    inputs = dlcore.Input((4,))
    hidden = Dense(6, activation="tanh")(inputs)
    model = dlcore.Model(inputs, [Dense(3, activation="softmax", name="cls")(hidden),
                                  Dense(4, activation="softmax", name="other")(hidden)],
                         backend=backend, seed=4)
    model.compile(["cross_entropy", "cross_entropy"], "sgd", metrics)
    names = ["loss", "cls_loss", "other_loss"] + [f"{name}_{metric}" for name in reported]
    assert model.metrics_names == names
    first, second = model.predict(x)
    accuracy = {"cls": np.mean(first.argmax(1) == labels),
                "other": np.mean(second.argmax(1) == others)}
    losses = {"cls": -np.log(first[np.arange(30), labels]),
              "other": -np.log(second[np.arange(30), others])}
    weights = np.linspace(0.2, 3.0, 30)
    scores = model.evaluate(x, [labels, others], batch_size=8, sample_weight=weights)
    assert scores.names == tuple(names) and len(scores) == len(names)
    for name in ("cls", "other"):
        assert scores[f"{name}_loss"] == pytest.approx((weights * losses[name]).mean(),
                                                       rel=1e-5)
    for name in reported:
        assert scores[f"{name}_{metric}"] == pytest.approx(accuracy[name], abs=1e-9)
    step = model.train_on_batch(x, [labels, others], return_dict=True)
    assert list(step) == names
    for name in reported:   # the batch's accuracy before its update
        assert step[f"{name}_{metric}"] == pytest.approx(accuracy[name], abs=1e-9)
    history = model.fit(x, [labels, others], epochs=1, batch_size=10, verbose=0,
                        validation_data=(x, [labels, others])).history
    assert sorted(key for key in history if key.endswith(metric)) == sorted(
        [f"{name}_{metric}" for name in reported] + [f"val_{name}_{metric}" for name in reported])


def test_per_output_metrics_survive_a_save_and_are_checked_in_one_line(tmp_path):
    model = two_output_model()
    model.compile(["cross_entropy", "mse"], "sgd", {"reg": "accuracy"})
    assert model.output_metrics == (False, True)
    model.save(tmp_path / "m.h5")
    loaded = dlcore.load(tmp_path / "m.h5")
    assert loaded.output_metrics == (False, True)
    assert loaded.metrics_names == ["loss", "cls_loss", "reg_loss", "reg_accuracy"]
    with pytest.raises(ValueError, match=r"metrics are given for \['rgb'\]; the model's outputs "
                                         r"are named \['cls', 'reg'\]"):
        model.compile(["cross_entropy", "mse"], "sgd", {"rgb": "accuracy"})
    with pytest.raises(ValueError, match=r"are 3 entries for 2 outputs \(cls, reg\): Keras 3 "
                                         r"takes one entry per output"):
        model.compile(["cross_entropy", "mse"], "sgd", [["accuracy"], None, None])
    with pytest.raises(ValueError, match=r"unknown metric\(s\) \['mae'\]: dlcore reports "
                                         r"accuracy"):
        model.compile(["cross_entropy", "mse"], "sgd", [None, ["mae"]])


@pytest.mark.parametrize("axis, keras_axis", [(1, 1), (2, 2), (-1, 2)])
def test_arrays_without_channels_concatenate_on_the_same_axis_in_keras(tmp_path, axis,
                                                                       keras_axis):
    """(H, W) inputs keep their axes in Keras (no channel axis to move): a Concatenate's axis
    is written as it is (it was written as -1 whatever it was) and read back so."""
    import json
    import zipfile
    inputs = dlcore.Input((6, 5))
    joined = concatenate([inputs, inputs], axis=axis)
    model = dlcore.Model(inputs, Dense(2)(Flatten()(joined)), seed=1)
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as archive:
        layers = json.loads(archive.read("config.json"))["config"]["layers"]
    assert [layer["config"]["axis"] for layer in layers
            if layer["class_name"] == "Concatenate"] == [keras_axis]
    x = np.random.default_rng(8).random((3, 6, 5)).astype(np.float32)
    np.testing.assert_allclose(dlcore.load(tmp_path / "m.keras").predict(x), model.predict(x),
                               atol=1e-6)


def test_targets_shaped_like_the_outputs_are_taken_as_their_rows():
    """A U-Net's (1, H, W) masks as targets (Keras takes targets of the outputs' shape): the
    same step as on their flat rows; Keras's NHWC layout is refused (its rows differ)."""
    from dlcore.models import unet_small
    x = np.random.default_rng(9).random((4, 1, 8, 8)).astype(np.float32)
    masks = (x > 0.5).astype(np.float32)
    shaped, flat = (unet_small(input_shape=(1, 8, 8), backend="reference", seed=2)
                    for _ in range(2))
    for model in (shaped, flat):
        model.compile("binary_cross_entropy", "sgd")
    assert shaped.train_on_batch(x, masks) == flat.train_on_batch(x, masks.reshape(4, -1))
    for a, b in zip(shaped.get_weights(), flat.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match=r"targets of shape \(8, 8, 1\); the network's outputs "
                                         r"are \(1, 8, 8\).*transpose"):
        shaped.train_on_batch(x, masks.transpose(0, 2, 3, 1))
    # a shape that is not the outputs' with channels last gets no transpose to try (the
    # U-Net's users were told to transpose targets that a wrong concatenate axis had caused)
    with pytest.raises(ValueError, match=r"targets of shape \(2, 8, 8\); the network's "
                                         r"outputs are \(1, 8, 8\)$"):
        shaped.train_on_batch(x, np.concatenate([masks, masks], axis=1))


def logistic_regression(backend="reference"):
    model = dlcore.Sequential([Dense(1, activation="sigmoid")], input_shape=(4,),
                              backend=backend, seed=5)
    return model.compile("binary_crossentropy", "sgd", ["accuracy"])


@pytest.mark.parametrize("codes", [(2, 4), (-1, 1), (1, 2)])
def test_binary_cross_entropy_refuses_labels_other_than_0_and_1(codes):
    """The breast-cancer file's 2/4 coding trained to a negative cross-entropy, and -1/+1
    counted every label as class 1, without a word (the lecture's logistic regression has
    y in {0, 1}); a softmax model already refused labels out of its range."""
    x, y = rows(10, 4), np.where(np.arange(10) % 2, codes[1], codes[0])
    model = logistic_regression()
    for call in (lambda: model.fit(x, y, epochs=1, verbose=0), lambda: model.evaluate(x, y)):
        with pytest.raises(ValueError, match=rf"y holds the values {codes[0]:g}, "
                                             rf"{codes[1]:g}; binary cross-entropy takes "
                                             rf"targets in \[0, 1\].*\(y == {codes[1]:g}\)"):
            call()


def test_binary_cross_entropy_on_8_bit_images_says_to_scale_them():
    """An autoencoder's 0-255 image targets were told y = (y == 255), keeping 0.6 % of the
    pixels."""
    model = dlcore.Sequential([Dense(16, activation="sigmoid")], input_shape=(16,),
                              backend="reference")
    model.compile("binary_cross_entropy", "sgd")
    images = (np.arange(64).reshape(4, 16) * 4).astype(np.uint8)
    with pytest.raises(ValueError, match=r"values in \[0, 252\]; binary cross-entropy .*: "
                                         r"scale them into \[0, 1\] \(8-bit images: y / 255\)"):
        model.fit(images / 255.0, images, verbose=0)


def test_one_outputs_targets_may_be_any_numbers_in_a_vector_as_in_keras():
    """A regression's (n,) float targets and smoothed 0.1/0.9 labels were refused as "class
    labels" (whole numbers were taken): Keras reads (n,) as the (n, 1) column."""
    x = rows(12, 4)
    values = np.linspace(-2.0, 3.0, 12)
    regression = dlcore.Sequential([Dense(1)], input_shape=(4,), backend="reference", seed=1)
    regression.compile("mse", "sgd")
    assert regression.evaluate(x, values) == regression.evaluate(x, values[:, None])
    smoothed = np.where(np.arange(12) % 2, 0.9, 0.1)
    model = logistic_regression()
    assert model.evaluate(x, smoothed)[0] == model.evaluate(x, smoothed[:, None])[0]
    inputs = dlcore.Input((4,))
    hidden = Dense(5, activation="relu")(inputs)
    two = dlcore.Model(inputs, [Dense(3, activation="softmax")(hidden), Dense(1)(hidden)])
    two.compile(["cross_entropy", "mse"], "sgd")
    two.fit(x, [np.arange(12) % 3, values], epochs=1, verbose=0)   # y[1] was refused


@pytest.mark.parametrize("labels", [np.array(["0", "1"] * 5),
                                    np.array(["cat", "dog"] * 5, dtype=object)])
def test_string_labels_are_refused_in_one_line(labels):
    model = dlcore.Sequential([Dense(2, activation="softmax")], input_shape=(4,),
                              backend="reference")
    model.compile("cross_entropy", "sgd")
    for call in (lambda: model.fit(rows(10, 4), labels, verbose=0),
                 lambda: model.evaluate(rows(10, 4), labels)):
        with pytest.raises(ValueError, match="y holds strings: a network takes integer class "
                                             "labels 0..k-1 .*LabelEncoder"):
            call()


def test_the_loss_alone_comes_back_as_a_number_as_in_keras():
    """The lecture compiles without metrics, then `loss_and_metrics = model.evaluate(...)`
    and a manual train_on_batch loop: Keras returns the scalar loss; dlcore's 1-tuple broke
    f"{loss:.3f}" and `loss < best`, and `loss * 2` doubled the tuple."""
    x, y = rows(10, 4), np.arange(10) % 2
    model = dlcore.Sequential([Dense(2, activation="softmax")], input_shape=(4,),
                              backend="reference")
    model.compile("cross_entropy", "sgd")
    loss = model.evaluate(x, y)
    assert f"{loss:.3f}" == f"{float(loss):.3f}" and loss < 10.0 and loss * 2 == 2 * float(loss)
    assert str(loss) == str(float(loss)) and f"{loss}" == f"{float(loss)}"
    assert loss["loss"] == float(loss) and dict(loss) == {"loss": float(loss)}
    assert model.evaluate(x, y, return_dict=True) == {"loss": float(loss)}
    step = model.train_on_batch(x, y)
    assert step == pytest.approx(float(loss)) and np.ndim(step) == 0
    model.compile("cross_entropy", "sgd", ["accuracy"])
    assert len(model.evaluate(x, y)) == 2


@pytest.mark.parametrize("named, trained_on, exported", [
    ("categorical_crossentropy", "labels", "categorical_crossentropy"),
    ("sparse_categorical_crossentropy", "rows", "sparse_categorical_crossentropy"),
    ("cross_entropy", "rows", "categorical_crossentropy"),      # dlcore's own: the data's form
    ("cross_entropy", "labels", "sparse_categorical_crossentropy")])
def test_the_keras_cross_entropy_named_at_compile_is_the_one_exported(
        tmp_path, named, trained_on, exported):
    """The lecture's loss=categorical_crossentropy was exported as the sparse one unless the
    model had trained on one-hot rows, and Keras's fit then refused the students' one-hot
    labels: the loss the user named is kept (in dlcore's files too)."""
    from test_io_keras_weights import exported_training_config
    x, labels = rows(9, 4), np.arange(9) % 3
    model = dlcore.Sequential([Dense(3, activation="softmax")], input_shape=(4,),
                              backend="reference")
    model.compile(named, "sgd")
    model.fit(x, labels if trained_on == "labels" else np.eye(3)[labels], verbose=0)
    assert exported_training_config(model, tmp_path / "m.h5")["loss"] == exported
    dlcore.save(model, tmp_path / "own.h5")       # dlcore's format keeps the name as given
    assert dlcore.load(tmp_path / "own.h5").loss.get_config() == model.loss.get_config()


def test_keras_loss_classes_and_accuracy_names_compile():
    from dlcore.losses import SparseCategoricalCrossentropy
    x, labels = rows(9, 4), np.arange(9) % 3
    model = dlcore.Sequential([Dense(3)], input_shape=(4,), backend="reference")
    model.compile(SparseCategoricalCrossentropy(from_logits=True), "sgd",
                  ["sparse_categorical_accuracy"])
    loss, accuracy = model.evaluate(x, labels)
    logits = model.predict(x).astype(np.float64)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    assert loss == pytest.approx(-log_p[np.arange(9), labels].mean(), rel=1e-5)
    assert accuracy == pytest.approx((logits.argmax(1) == labels).mean())


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_the_seeds_of_dropout_and_noise_cross_keras_files(tmp_path, suffix):
    """Dropout(seed=) and GaussianNoise(seed=) were left out of Keras files and to_json, so
    MC-dropout predictions changed by 0.1 after a round trip."""
    from dlcore.layers import Dropout, GaussianNoise
    model = dlcore.Sequential([Dense(8, activation="relu"), Dropout(0.5, seed=11),
                               GaussianNoise(0.1, seed=5), Dense(3, activation="softmax")],
                              input_shape=(4,), seed=1)
    x = rows(6, 4)
    model.save(tmp_path / f"m{suffix}")
    loaded = dlcore.load(tmp_path / f"m{suffix}")
    assert [layer.seed for layer in loaded.layers[1:3]] == [11, 5]
    np.testing.assert_array_equal(loaded.predict(x, mc_dropout=5), model.predict(x, mc_dropout=5))
    assert '"seed": 11' in model.to_json()


@pytest.mark.parametrize("method", ["fit", "evaluate", "predict", "compile", "save",
                                    "save_weights", "load_weights", "summary"])
def test_every_keyword_of_kerass_method_is_one_of_dlcores(method):
    """A Keras user's validation_batch_size=, validation_freq=, steps=, callbacks=,
    run_eagerly=, jit_compile=, save(filepath=..., overwrite=False), skip_mismatch=...
    stopped with Python's "unexpected keyword argument"."""
    import inspect
    pytest.importorskip("keras.models")
    import keras
    theirs = {name for name, parameter in
              inspect.signature(getattr(keras.Model, method)).parameters.items()
              if parameter.kind not in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL)}
    for cls in (dlcore.Sequential, dlcore.Model):
        assert theirs - set(inspect.signature(getattr(cls, method)).parameters) == set()


def test_kerass_other_keywords_are_taken_or_refused_in_one_line():
    x, y = rows(20, 5), np.arange(20) % 3

    def compiled(**keras_options):
        model = dlcore.Sequential([Dense(3, activation="softmax")], input_shape=(5,),
                                  backend="reference", seed=0)
        return model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                             metrics=["accuracy"], **keras_options)

    model = compiled(weighted_metrics=[], run_eagerly=True, steps_per_execution=8,
                     jit_compile=False, auto_scale_loss=True)
    history = model.fit(x, y, epochs=2, verbose=0, validation_split=0.25,
                        validation_batch_size=2, validation_freq=1)
    plain = compiled().fit(x, y, epochs=2, verbose=0, validation_split=0.25)
    for name in ("loss", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(history.history[name], plain.history[name], rtol=1e-6)
    assert model.evaluate(x, y, steps=None, callbacks=[]) == model.evaluate(x, y)
    np.testing.assert_array_equal(model.predict(x, 4, 0, None, None), model.predict(x))
    for call, message in (
            (lambda: model.fit(x, y, validation_freq=0, verbose=0),
             "validation_freq must be >= 1"),
            (lambda: model.fit(x, y, validation_freq="2", verbose=0),
             "validation_freq must be an int k >= 1 .* or a list of epoch numbers"),
            (lambda: model.fit(x, y, validation_batch_size=0, verbose=0),
             "validation_batch_size must be >= 1"),
            (lambda: model.evaluate(x, y, steps=3), "evaluate's steps must be None"),
            (lambda: model.predict(x, callbacks=[dlcore.callbacks.History()]),
             "predict takes no callbacks"),
            (lambda: model.compile("adam", "mse", weighted_metrics=["accuracy"]),
             "weighted_metrics must be None"),
            (lambda: model.compile("adam", "mse", jit_compile="xla"),
             "jit_compile must be True, False or 'auto'")):
        with pytest.raises(ValueError, match=message) as error:
            call()
        assert "\n" not in str(error.value)


def test_kerass_overwrite_and_skip_mismatch_keep_what_is_on_disk_and_in_the_model(tmp_path):
    model = dlcore.Sequential([Dense(3, activation="softmax")], input_shape=(5,),
                              backend="reference", seed=0)
    for method, name in (("save", "m.keras"), ("save", "m.h5"),
                         ("save_weights", "m.weights.h5")):
        path = tmp_path / name
        getattr(model, method)(filepath=path, overwrite=False)
        written = path.read_bytes()
        with pytest.raises(FileExistsError, match="exists and .* overwrite=False"):
            getattr(model, method)(path, overwrite=False)
        assert path.read_bytes() == written
        getattr(model, method)(path, overwrite=True)
    before = model.get_weights()
    other = dlcore.Sequential([Dense(3, activation="softmax")], input_shape=(5,),
                              backend="reference", seed=1)
    other.save_weights(tmp_path / "other.weights.h5")
    with pytest.raises(ValueError, match="skip_mismatch must be False"):
        model.load_weights(tmp_path / "other.weights.h5", skip_mismatch=True)
    for array, kept in zip(model.get_weights(), before):
        np.testing.assert_array_equal(array, kept)
    model.load_weights(filepath=tmp_path / "other.weights.h5", skip_mismatch=False)
    np.testing.assert_array_equal(model.get_weights()[0], other.get_weights()[0])
    with pytest.raises(ValueError, match="zipped must be None or True"):
        model.save(tmp_path / "folder.keras", zipped=False)
    with pytest.raises(ValueError, match="max_shard_size must be None"):
        model.save_weights(tmp_path / "w.weights.h5", max_shard_size="5GB")


def test_a_keras_callback_is_refused_naming_dlcores_own():
    """keras.callbacks.EarlyStopping given to dlcore's fit was refused as "got EarlyStopping",
    which reads as if EarlyStopping were not a callback; the line now names dlcore's."""
    pytest.importorskip("keras.callbacks")
    import keras
    model = dlcore.Sequential([Dense(2, activation="softmax")], input_shape=(3,),
                              backend="reference")
    model.compile("adam", "sparse_categorical_crossentropy")
    x, y = rows(4, 3), np.array([0, 1, 0, 1])
    for callback, message in (
            (keras.callbacks.EarlyStopping(), "use dlcore.callbacks.EarlyStopping, which takes "
                                              "Keras's arguments"),
            (keras.callbacks.TerminateOnNaN(), "TerminateOnNaN is built in"),
            (keras.callbacks.BackupAndRestore("unused"), "use dlcore.callbacks.BackupAndRestore, "
                                                         "which takes Keras's arguments"),
            (keras.callbacks.RemoteMonitor(), "RemoteMonitor, which dlcore has not; "
                                              "dlcore.callbacks has BackupAndRestore, CSVLogger, "
                                              "EarlyStopping")):
        with pytest.raises(TypeError, match=message):
            model.fit(x, y, verbose=0, callbacks=[callback])
    assert model.epochs_done == 0


def test_summary_takes_kerass_arguments_as_the_transfer_learning_guide_writes_them():
    """keras.io's transfer-learning guide prints model.summary(show_trainable=True) after
    freezing the base: it stopped with "unexpected keyword argument"."""
    model = dlcore.Sequential([Dense(4, activation="relu"), Dense(2, activation="softmax")],
                              input_shape=(3,), backend="reference")
    model.layers[0].trainable = False
    printed = []
    summary = model.summary(show_trainable=True, expand_nested=True, line_length=80,
                            positions=[0.4, 0.6, 0.8, 1.0], print_fn=printed.append)
    assert printed == [summary.table] and "non-trainable: 16" in printed[0]
    functional = dlcore.Model(model.input, model.output)
    assert str(functional.summary(show_trainable=True, print_fn=None)) == str(
        functional.summary(print_fn=None))
    for options, message in (({"layer_range": ["dense", "dense_1"]}, "layer_range must be None"),
                             ({"show_trainable": "yes"}, "show_trainable"),
                             ({"positions": "wide"}, "positions must be a list")):
        for owner in (model, functional):
            with pytest.raises(ValueError, match=message):
                owner.summary(print_fn=None, **options)


def test_kerass_model_functions_are_dlcores_with_kerass_arguments(tmp_path):
    """keras.models has clone_model and save_model beside load_model and model_from_json:
    dlcore.models lacked the first two (AttributeError) and model_from_json's
    custom_objects."""
    import inspect
    pytest.importorskip("keras.models")
    import keras

    import dlcore.models as models
    for name in ("load_model", "model_from_json", "clone_model", "save_model"):
        theirs = set(inspect.signature(getattr(keras.models, name)).parameters) - {"kwargs"}
        assert theirs - set(inspect.signature(getattr(models, name)).parameters) == set()
    model = dlcore.Sequential([Dense(4, activation="relu"), Dense(2, activation="softmax")],
                              input_shape=(3,), backend="reference", seed=5)
    initial = model.get_weights()
    model.layers[0].trainable = False
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(rows(8, 3), np.arange(8) % 2, verbose=0)
    clone = models.clone_model(model)
    assert clone is not model and clone.loss is None and not clone.layers[0].trainable
    assert [layer.name for layer in clone.layers] == [layer.name for layer in model.layers]
    for array, start in zip(clone.get_weights(), initial):
        np.testing.assert_array_equal(array, start)
    assert not np.array_equal(model.get_weights()[2], initial[2])
    models.save_model(model, tmp_path / "m.keras")
    np.testing.assert_allclose(models.load_model(tmp_path / "m.keras").predict(rows(4, 3)),
                               model.predict(rows(4, 3)), atol=1e-6)
    with pytest.raises(FileExistsError):
        models.save_model(model, tmp_path / "m.keras", overwrite=False)
    with pytest.raises(ValueError, match="clone_function must be None"):
        models.clone_model(model, clone_function=lambda layer: layer)
    with pytest.raises(ValueError, match="custom_objects name Python code"):
        models.model_from_json(model.to_json(), custom_objects={"Scale": object})


def test_fit_on_8_bit_pixels_warns_with_the_fix():
    """uint8 images (the loaders' pixels) trained silently: with SGD the first epoch's loss
    reached 1e12 and the next stopped as a divergence advising a lower learning rate."""
    images = (np.arange(64).reshape(4, 16) * 4).astype(np.uint8)
    labels = np.array([0, 1, 0, 1])
    model = dlcore.Sequential([Dense(2, activation="softmax")], input_shape=(16,),
                              backend="reference")
    model.compile("cross_entropy", "sgd")
    with pytest.warns(UserWarning, match=r"x holds 8-bit pixels \(uint8, 0-255\).*"
                                         r"x.astype\('float32'\) / 255.*Rescaling\(1 / 255\)"):
        model.fit(images, labels, verbose=0)
    scaled = dlcore.Sequential([dlcore.layers.Rescaling(1 / 255), Dense(2, activation="softmax")],
                               input_shape=(16,), backend="reference")
    scaled.compile("cross_entropy", "sgd")
    with warnings.catch_warnings():
        warnings.simplefilter("error")     # a model that rescales its inputs takes them as they are
        scaled.fit(images, labels, verbose=0)
        model.fit(images / 255.0, labels, verbose=0)


def test_a_wrapper_fitted_on_8_bit_pixels_warns_at_the_callers_line():
    # the wrapper converts X to float32 before the network's fit, which then saw no pixels
    def build(X, y):
        model = dlcore.Sequential([Dense(y.shape[1], activation="softmax")],
                                  input_shape=X.shape[1:], backend="reference")
        model.compile("cross_entropy", "sgd")
        return model
    images = (np.arange(64).reshape(4, 16) * 4).astype(np.uint8)
    with pytest.warns(UserWarning, match=r"x holds 8-bit pixels") as caught:
        SKLearnClassifier(build).fit(images, np.array([0, 1, 0, 1]))
    assert [record.filename for record in caught] == [__file__]


def test_an_optimiser_that_trained_another_network_starts_its_count_again_with_its_slots():
    # compile cleared the slots of an optimiser new to the network but kept its count of
    # batches: the second network Adam(...) trained bias-corrected its zero moments as a late
    # step's, so a wrapper's model_kwargs={"optimizer": opt} fitted twice trained otherwise
    rows = np.random.default_rng(0).random((40, 4)).astype(np.float32)
    labels = (rows[:, 0] > 0.5).astype(int)

    def trained(optimizer):
        network = dlcore.Sequential([Dense(3, activation="relu"),
                                     Dense(2, activation="softmax")],
                                    input_shape=(4,), backend="cpu", seed=1)
        network.compile("categorical_crossentropy", optimizer)
        network.fit(rows, labels, epochs=2, batch_size=10, verbose=0)
        return network
    shared = dlcore.optimizers.Adam(learning_rate=0.01)
    first, again = trained(shared), trained(shared)
    fresh = trained(dlcore.optimizers.Adam(learning_rate=0.01))
    assert shared.iterations == 8   # again's 2 epochs of 4 batches, not 16
    for network in (first, again):
        for weight, expected in zip(network.get_weights(), fresh.get_weights()):
            np.testing.assert_array_equal(weight, expected)
    again.compile("categorical_crossentropy", shared)   # its own again: the count goes on
    assert shared.iterations == 8


def test_keras_guides_names_stand_in_dlcore():
    # keras.io's guides, ported by swapping keras for dlcore: metric objects, the schedules'
    # namespace, layer.weights; each failed with a bare AttributeError
    model = dlcore.models.mlp(input_shape=(4,), hidden=(5,), n_classes=3, backend="reference")
    model.compile(optimizer=dlcore.optimizers.SGD(
        dlcore.optimizers.schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.9)),
        loss="sparse_categorical_crossentropy",
        metrics=[dlcore.metrics.SparseCategoricalAccuracy()])
    history = model.fit(rows(20, 4), np.arange(20) % 3, epochs=1, verbose=0,
                        validation_split=0.2)
    assert sorted(history.history) == ["loss", "sparse_categorical_accuracy", "val_loss",
                                       "val_sparse_categorical_accuracy"]
    assert dlcore.optimizers.schedules.ExponentialDecay is dlcore.optimizers.ExponentialDecay
    with pytest.raises(ValueError, match="leave threshold out"):
        dlcore.metrics.BinaryAccuracy(threshold=0.7)
    with pytest.raises(ValueError, match="reports this accuracy as 'categorical_accuracy'"):
        dlcore.metrics.CategoricalAccuracy(name="acc")
    dense = model.layers[0]
    assert [w.shape for w in dense.weights] == [(4, 5), (5,)]
    assert Dense(3).weights == []                                  # not built yet
    dense.trainable = False
    assert len(dense.weights) == 2 and dense.trainable_weights == []


def keras_schedule(name, **config):
    """An object as Keras's schedules are to dlcore (Keras is no test dependency): of a class
    of that name in Keras's module, with Keras's get_config (its settings and a name)."""
    cls = type(name, (), {"__module__": "keras.src.optimizers.schedules.learning_rate_schedule",
                          "get_config": lambda self: {**config, "name": name}})
    return cls()


def test_keras_schedules_given_to_a_dlcore_optimizer_become_dlcores():
    rate = dlcore.optimizers.SGD(keras_schedule(
        "ExponentialDecay", initial_learning_rate=0.1, decay_steps=100, decay_rate=0.9,
        staircase=True)).learning_rate
    assert isinstance(rate, dlcore.optimizers.ExponentialDecay)
    assert rate(250) == pytest.approx(0.1 * 0.9 ** 2)
    with pytest.raises(ValueError, match="Keras's CosineDecay, which dlcore has not"):
        dlcore.optimizers.SGD(keras_schedule("CosineDecay", initial_learning_rate=0.1,
                                             decay_steps=100))


def test_a_model_of_a_list_of_one_output_predicts_and_fits_as_keras_3s():
    inputs = dlcore.Input((3,))
    model = dlcore.Model(inputs, [Dense(2)(inputs)], backend="reference")
    x = rows(6, 3)
    assert isinstance(model.predict(x), np.ndarray) and model.predict(x).shape == (6, 2)
    model.compile("mse", "sgd")
    bare = model.fit(x, rows(6, 2, seed=1), epochs=1, verbose=0).history["loss"]
    listed = model.fit(x, rows(6, 2, seed=1).tolist(), epochs=1, verbose=0).history["loss"]
    assert np.isfinite(bare).all() and np.isfinite(listed).all()
    assert model.outputs == [model.output[0]]                     # the list, as given


def test_a_keras_habit_of_a_batch_axis_or_an_untrained_output_is_named_with_the_fix():
    with pytest.raises(ValueError, match=r"leaves out Keras's batch axis: give \(784,\)"):
        Dense(4).build((None, 784))
    inputs = dlcore.Input((3,))
    model = dlcore.Model(inputs, [Dense(2, name="aux")(inputs),
                                  Dense(2, activation="softmax", name="main")(inputs)])
    with pytest.raises(ValueError, match=r"no loss for the output\(s\) aux: Keras 3 leaves"):
        model.compile(loss=[None, "categorical_crossentropy"], optimizer="sgd")


def test_a_tensor_shows_the_shape_it_has_and_its_type():
    # its repr showed Keras's (None, 784) beside a .shape of (784,)
    inputs = dlcore.Input((784,))
    doubled = Dense(3, dtype="float64")(inputs)
    assert inputs.shape == (784,) and "shape=(784,)" in repr(inputs) and "None" not in \
        repr(inputs).split("shape=")[1]
    assert (inputs.dtype, Dense(3)(inputs).dtype, doubled.dtype) == \
        ("float32", "float32", "float64")


def test_a_loss_of_ones_own_is_refused_in_one_line_when_written():
    # Keras's guide subclasses keras.losses.Loss; dlcore's failed only when made, with
    # object.__init__'s TypeError, and a function got "unknown loss <function ...>"
    with pytest.raises(TypeError, match="dlcore trains on its own losses only") as refused:
        class MeanError(dlcore.losses.Loss):
            def call(self, y_true, y_pred):
                return y_pred - y_true
    assert "\n" not in str(refused.value)
    model = dlcore.Sequential([Dense(2)], input_shape=(3,), backend="reference")
    with pytest.raises(ValueError, match="is a function of your own: dlcore trains on its own"):
        model.compile(lambda y_true, y_pred: y_pred - y_true, "sgd")
