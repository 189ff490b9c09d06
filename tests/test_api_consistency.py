"""One name per concept across the public API, and aliases that behave as one.

Each test holds a place where two spellings of one setting, or two classes doing the same job,
disagreed: a keyword one class took and its sibling refused, or two spellings given together
where one silently won."""
import copy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import dlcore
from dlcore import layers
from dlcore.cli import main

#: the layers that take dlcore's ``stride`` and Keras's ``strides``
STRIDED = {
    "Conv2D": lambda **kw: layers.Conv2D(2, 2, **kw),
    "LocallyConnected2D": lambda **kw: layers.LocallyConnected2D(2, 2, **kw),
    "Conv2DTranspose": lambda **kw: layers.Conv2DTranspose(2, 2, **kw),
    "MaxPool2D": lambda **kw: layers.MaxPool2D(2, **kw),
    "AvgPool2D": lambda **kw: layers.AvgPool2D(2, **kw),
    "L2Pool2D": lambda **kw: layers.L2Pool2D(2, **kw),
}


@pytest.mark.parametrize("name", sorted(STRIDED))
def test_stride_and_strides_that_disagree_are_refused_in_one_line(name):
    with pytest.raises(ValueError, match=r"^give (stride|strides) or (strides|stride) \(the same "
                                         r"setting\), not both: .*disagree$"):
        STRIDED[name](stride=3, strides=2)


@pytest.mark.parametrize("name", sorted(STRIDED))
def test_either_spelling_of_the_stride_or_both_agreeing_give_that_stride(name):
    for keywords in ({"stride": 2}, {"strides": 2}, {"stride": (2, 2), "strides": 2}):
        assert tuple(STRIDED[name](**keywords).stride) == (2, 2), keywords


def test_mlp_takes_one_whole_number_as_one_hidden_layer_as_the_dbn_does():
    """``hidden=100`` is one hidden layer for DBN, DBNClassifier, StackedAutoencoder and
    scikit-learn's MLPClassifier; models.mlp raised "'int' object is not iterable"."""
    model = dlcore.models.mlp(input_shape=(16,), hidden=8, n_classes=3)
    assert [layer.name for layer in model.layers] == ["hidden_1", "output"]
    assert model.get_layer("hidden_1").units == 8


@pytest.mark.parametrize("hidden", ["100", None, 2.5])
def test_mlp_refuses_a_hidden_that_is_no_size_in_one_line(hidden):
    with pytest.raises(ValueError, match=r"^hidden must be a whole number of units \(one hidden "
                                         r"layer, as hidden=100\) or a list of them"):
        dlcore.models.mlp(input_shape=(16,), hidden=hidden)


@pytest.fixture(scope="module")
def small_dbn():
    X = (np.random.default_rng(0).random((40, 16)) < 0.5).astype(np.float32)
    return dlcore.DBN(hidden=[6, 3], epochs=1, seed=0, backend="reference").fit(X)


def test_dbn_sample_names_its_gibbs_steps_steps_as_the_rbm_sample_does(small_dbn):
    """``rbm.sample(n, steps=...)`` and ``dbn.sample(n, gibbs_steps=...)`` named one setting
    twice; both now take ``steps``, and the DBN's older ``gibbs_steps=`` keeps working."""
    by_new_name = copy.deepcopy(small_dbn).sample(4, steps=3)
    by_old_name = copy.deepcopy(small_dbn).sample(4, gibbs_steps=3)
    by_position = copy.deepcopy(small_dbn).sample(4, 3)
    np.testing.assert_array_equal(by_new_name, by_old_name)
    np.testing.assert_array_equal(by_new_name, by_position)
    with pytest.raises(ValueError, match=r"^give steps or gibbs_steps \(its older name\), not "
                                         r"both: steps=5 and gibbs_steps=3 disagree$"):
        copy.deepcopy(small_dbn).sample(4, steps=5, gibbs_steps=3)
    with pytest.raises(ValueError, match=r"^steps must be >= 1, got 0$"):
        copy.deepcopy(small_dbn).sample(4, steps=0)


@pytest.mark.parametrize("given", [{"steps": 1000}, {}])
def test_dbn_sample_tells_an_explicit_steps_1000_from_the_default(small_dbn, given):
    # steps=1000 with gibbs_steps=3 drew 3 steps: 1000 was taken for the default, unasked
    import inspect
    if given:
        with pytest.raises(ValueError, match=r"^give steps or gibbs_steps \(its older name\), "
                                             r"not both: steps=1000 and gibbs_steps=3 disagree$"):
            copy.deepcopy(small_dbn).sample(4, gibbs_steps=3, **given)
    else:   # the default (still 1000 in the signature and help) gives way to gibbs_steps
        np.testing.assert_array_equal(copy.deepcopy(small_dbn).sample(4, gibbs_steps=3),
                                      copy.deepcopy(small_dbn).sample(4, steps=3))
    assert str(inspect.signature(dlcore.DBN.sample).parameters["steps"]) == "steps=1000"
    assert copy.deepcopy(small_dbn).sample(2, steps=1000, gibbs_steps=1000).shape == (2, 16)


def test_dbn_sample_command_takes_steps_as_rbm_sample_does_and_the_older_option(small_dbn,
                                                                                tmp_path):
    small_dbn.save(tmp_path / "dbn.h5")
    for option in ("--steps", "--gibbs-steps"):
        out = tmp_path / f"{option.strip('-')}.png"
        result = CliRunner().invoke(main, ["dbn", "sample", str(tmp_path / "dbn.h5"), "--n", "4",
                                           option, "2", "--out", str(out), "--backend",
                                           "reference"])
        assert result.exit_code == 0, result.output
        assert "after 2 Gibbs steps" in result.output and out.is_file()


def test_the_subpackages_the_readme_calls_after_import_dlcore_are_there():
    """``dlcore.wrappers.SKLearnClassifier(...)`` (the README's tour) and
    ``dlcore.viz.save_curves(...)`` raised AttributeError after a plain ``import dlcore``, where
    ``keras.wrappers`` is there after ``import keras``; they load on first use, not at start."""
    script = ("import sys, dlcore\n"
              "print('dlcore.wrappers' in sys.modules, 'dlcore.viz' in sys.modules)\n"
              "print(dlcore.wrappers.SKLearnClassifier.__name__, dlcore.viz.save_curves.__name__)\n"
              "print(sorted(set(dlcore.__all__) - set(dir(dlcore))))\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300, cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines() == ["False False", "SKLearnClassifier save_curves", "[]"]


@pytest.mark.parametrize("hidden, message", [
    ([], "hidden must list at least one size [n_hidden, ...], got []"),
    # a string (the command line's "500-200") was told it listed no size
    ("5", "hidden must be a whole number of units (one hidden layer, as hidden=100) or a list "
          "of them [n_hidden, ...], got '5': give hidden=5")])
def test_dbn_classifier_refuses_an_empty_hidden_in_the_words_of_dbn_and_the_stacks(
        hidden, message):
    X, y = np.zeros((6, 4), np.float32), np.arange(6) % 2
    messages = []
    for estimator in (dlcore.DBN, dlcore.StackedAutoencoder, dlcore.DBNClassifier):
        with pytest.raises(ValueError) as refusal:
            estimator(hidden=hidden).fit(X, y)
        messages.append(str(refusal.value))
    if hidden:   # mlp takes no hidden layer (softmax regression), the stacks at least one
        with pytest.raises(ValueError) as refusal:
            dlcore.models.mlp(input_shape=(4,), hidden=hidden)
        messages.append(str(refusal.value))
    assert messages == [message] * len(messages)


def test_the_keras_spelling_adagrad_takes_keras_defaults_where_adagrad_keeps_duchis():
    """``dlcore.optimizers.Adagrad`` was ``AdaGrad`` itself: Keras code ported by its name
    stepped at ten times Keras's rate from an empty accumulator (Keras: 0.001 and 0.1)."""
    keras_spelling = dlcore.optimizers.Adagrad()
    assert (keras_spelling.learning_rate, keras_spelling.initial_accumulator_value) == (0.001,
                                                                                        0.1)
    duchi = dlcore.optimizers.AdaGrad()
    assert (duchi.learning_rate, duchi.initial_accumulator_value) == (0.01, 0.0)
    assert isinstance(keras_spelling, dlcore.optimizers.AdaGrad)
    assert keras_spelling.name == "adagrad"   # the same rule, saved under the same name



@pytest.mark.parametrize("make, given, message", [
    (dlcore.DBN, {"n_hidden": 5}, r"^DBN has no parameter 'n_hidden' \(a single RBM's or "
                                  r"autoencoder's\): its hidden layers' sizes are hidden, e\.g\. "
                                  r"DBN\(hidden=5\) \(one number is one hidden layer\)$"),
    (dlcore.StackedAutoencoder, {"n_hidden": np.int64(5)}, r"StackedAutoencoder\(hidden=5\)"),
    (dlcore.DBNClassifier, {"n_hidden": [5, 3]}, r"DBNClassifier\(hidden=\[5, 3\]\)"),
    (dlcore.BernoulliRBM, {"hidden": 5}, r"^BernoulliRBM has no parameter 'hidden' \(the "
                                         r"stacks' list of layer sizes\): its hidden units are "
                                         r"n_hidden, e\.g\. BernoulliRBM\(n_hidden=5\); "
                                         r"several layers stacked are a DBN's, "
                                         r"DBN\(hidden=\[500, 200\]\)$"),
    (dlcore.GaussianBernoulliRBM, {"hidden": [500, 200]}, r"\(n_hidden=500\); .* DBN\(hidden="),
    (dlcore.Autoencoder, {"hidden": 7}, r"\(n_hidden=7\); .*StackedAutoencoder\(hidden=")])
def test_one_layers_name_of_the_sizes_given_to_a_stack_is_answered_with_its_own(make, given,
                                                                                message):
    """BernoulliRBM(n_hidden=500) and DBN(hidden=[500, 500]): DBN(n_hidden=500) and
    BernoulliRBM(hidden=500), a name of dlcore's own, met Python's bare "unexpected keyword
    argument", where scikit-learn's names (hidden_layer_sizes, n_components) were answered."""
    with pytest.raises(TypeError, match=message):
        make(**given)
    (name, value), = given.items()
    with pytest.raises(ValueError, match=f"invalid parameter '{name}' for {make.__name__} "
                                         r"\(the sizes are \w+ here: n_hidden is a single "
                                         r"layer's, hidden a stack's\)"):
        make().set_params(**given)


def test_each_estimator_s_signature_is_its_constructor_s():
    # Python 3.10 gave the classes that inherit their __init__ (SKLearnClassifier and
    # SKLearnRegressor) the signature (*args, **kwargs) of ParamsMixin's __new__: help() showed
    # no parameter, and scikit-learn's check_do_not_raise_errors_in_init_or_set_params passed
    # them an argument named args
    import inspect

    import dlcore.wrappers  # noqa: F401 (its classes among the subclasses)
    from dlcore.params import ParamsMixin

    def subclasses(cls):
        for subclass in cls.__subclasses__():
            yield subclass
            yield from subclasses(subclass)
    public = [cls for cls in subclasses(ParamsMixin) if cls.__module__.startswith("dlcore")
              and not cls.__name__.startswith("_") and cls.__init__ is not object.__init__]
    assert {"SKLearnClassifier", "SKLearnRegressor", "BernoulliRBM"} <= {
        cls.__name__ for cls in public}
    for cls in public:
        assert list(inspect.signature(cls).parameters) == cls._param_names(), cls
