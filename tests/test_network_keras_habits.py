"""What a Keras user writes out of habit, taken as Keras takes it (or refused in one line that
names the fix): ``Sequential([Input(shape), ...])``, ``compile`` with the optimiser first,
``batch_size=None``, inputs given as a dict by input name, Keras files whose input is
(batch, H, W) without channels; and the summary of a model with several inputs, and the
message of ``dlcore.save`` on a scikit-learn wrapper. Each was a QA finding."""
import numpy as np
import pytest

import dlcore
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
