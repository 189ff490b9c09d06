"""Keras's ``trainable=`` and ``dtype=`` keywords on every layer (dlcore/layers/base.py).

Keras's layers all take them (``Dense(4, dtype="float64")``, ``Flatten(trainable=False)``);
dlcore's non-merge layers refused them with Python's "unexpected keyword argument", and a merge's
``dtype=`` was lost by save and load. Now every layer takes both with the merges' meaning:
``trainable`` reads back and is saved (False freezes a layer's parameters in fit); ``dtype``
is the type a layer computes in on its own, a model whose every layer says float64 computes in
float64, and a model of one type overruling a layer's says so in one line.
"""
import warnings

import numpy as np
import pytest

import dlcore
from dlcore import layers

#: one of each kind of layer, as Keras users type them (the image layers on (2, 4, 4) maps)
MAKERS = {
    "Dense": (lambda **kw: layers.Dense(3, **kw), (5,)),
    "Activation": (lambda **kw: layers.Activation("tanh", **kw), (5,)),
    "ReLU": (lambda **kw: layers.ReLU(**kw), (5,)),
    "LeakyReLU": (lambda **kw: layers.LeakyReLU(**kw), (5,)),
    "Dropout": (lambda **kw: layers.Dropout(0.5, **kw), (5,)),
    "GaussianNoise": (lambda **kw: layers.GaussianNoise(0.1, **kw), (5,)),
    "Rescaling": (lambda **kw: layers.Rescaling(0.5, **kw), (5,)),
    "Reshape": (lambda **kw: layers.Reshape((5, 1), **kw), (5,)),
    "Flatten": (lambda **kw: layers.Flatten(**kw), (2, 4, 4)),
    "BatchNormalization": (lambda **kw: layers.BatchNormalization(**kw), (2, 4, 4)),
    "LayerNormalization": (lambda **kw: layers.LayerNormalization(**kw), (5,)),
    "Conv2D": (lambda **kw: layers.Conv2D(2, 3, **kw), (2, 4, 4)),
    "Conv2DTranspose": (lambda **kw: layers.Conv2DTranspose(2, 3, **kw), (2, 4, 4)),
    "LocallyConnected2D": (lambda **kw: layers.LocallyConnected2D(2, 3, **kw), (2, 4, 4)),
    "MaxPooling2D": (lambda **kw: layers.MaxPooling2D(2, **kw), (2, 4, 4)),
    "AvgPool2D": (lambda **kw: layers.AvgPool2D(2, **kw), (2, 4, 4)),
    "GlobalAveragePooling2D": (lambda **kw: layers.GlobalAveragePooling2D(**kw), (2, 4, 4)),
    "L2FeaturePool": (lambda **kw: layers.L2FeaturePool(**kw), (4,)),
    "UpSampling2D": (lambda **kw: layers.UpSampling2D(**kw), (2, 4, 4)),
    "Cropping2D": (lambda **kw: layers.Cropping2D(1, **kw), (2, 4, 4)),
}


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_every_layer_takes_kerass_trainable_and_dtype_and_keeps_them_in_its_config(name):
    make, shape = MAKERS[name]
    layer = make(trainable=False, dtype="float64")
    assert layer.trainable is False and layer.float_type == np.float64
    again = type(layer).from_config(layer.get_config())
    assert again.trainable is False and again.float_type == np.float64
    x = np.random.default_rng(0).random((2,) + shape).astype(np.float32)
    assert layer(x).dtype == np.float64      # on its own, in its dtype, as Keras's layer
    with pytest.raises(ValueError, match=r"^dtype='mixed_float16': dlcore computes in float32 "
                                         r"or float64 \(dtype='float32', 'float64' or None\)$"):
        make(dtype="mixed_float16")


def test_a_model_whose_every_layer_says_float64_computes_in_float64_without_a_word():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = dlcore.Sequential([layers.Dense(4, activation="tanh", dtype="float64"),
                                   layers.Dense(2, dtype="float64")], input_shape=(3,),
                                  backend="reference")
        assert model.dtype == np.float64
        x = np.random.default_rng(1).random((4, 3))
        assert model.predict(x, verbose=0).dtype == np.float64
        inputs = dlcore.Input((3,))
        functional = dlcore.Model(inputs, layers.Dense(2, dtype="float64")(inputs))
        assert functional.dtype == np.float64


def test_a_layers_dtype_a_model_of_another_type_overrules_is_told_once_in_one_line():
    model = dlcore.Sequential([layers.Dense(4, dtype="float64", name="wide"), layers.Dense(2)],
                              input_shape=(3,), backend="reference")
    assert model.dtype == np.float32
    x = np.ones((2, 3), np.float32)
    with pytest.warns(UserWarning, match=r"^layer 'wide': dtype='float64' is not this model's "
                                         r"float32 \(dlcore computes a model in one type\)") \
            as told:
        model.predict(x, verbose=0)
        model.predict(x, verbose=0)
    assert len(told) == 1 and "\n" not in str(told[0].message)


def test_trainable_false_given_to_the_constructor_freezes_the_layer_in_fit():
    model = dlcore.Sequential([layers.Dense(4, trainable=False, name="frozen"),
                               layers.Flatten(trainable=False), layers.Dense(2)],
                              input_shape=(3,), backend="reference", seed=2)
    model.compile("mse", dlcore.optimizers.SGD(0.1))
    before = model.get_layer("frozen").get_weights()
    last = model.layers[-1].get_weights()
    model.fit(np.ones((4, 3), np.float32), np.ones((4, 2), np.float32), epochs=2, verbose=0)
    for kept, now in zip(before, model.get_layer("frozen").get_weights()):
        np.testing.assert_array_equal(kept, now)
    assert not np.array_equal(last[0], model.layers[-1].get_weights()[0])


def test_a_layers_and_a_merges_dtype_survive_save_and_load(tmp_path):
    inputs = dlcore.Input((3,))
    wide = layers.Dense(3, dtype="float64", name="wide")(inputs)
    joined = layers.Add(dtype="float64", name="joined")([wide, inputs])
    model = dlcore.Model(inputs, layers.Dense(2, dtype="float64", name="out")(joined),
                         backend="reference")
    assert model.dtype == np.float64
    dlcore.save(model, tmp_path / "model.h5")
    loaded = dlcore.load(tmp_path / "model.h5")
    assert loaded.dtype == np.float64
    assert [loaded.get_layer(name).float_type for name in ("wide", "joined", "out")] == \
        [np.float64] * 3
    x = np.random.default_rng(3).random((2, 3))
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_a_merges_dtype_survives_save_and_load(tmp_path):
    """A merge's dtype= was left out of its config, so a loaded model lost it."""
    inputs = dlcore.Input((3,))
    model = dlcore.Model(inputs, layers.Add(dtype="float64", name="joined")([inputs, inputs]),
                         backend="reference")
    model.build(dtype=np.float64)
    dlcore.save(model, tmp_path / "model.h5")
    assert dlcore.load(tmp_path / "model.h5").get_layer("joined").float_type == np.float64


@pytest.mark.parametrize("make", [lambda: layers.Dense(3, dtype="float64", name="shared"),
                                  lambda: layers.Add(dtype="float64", name="shared")],
                         ids=["Dense", "Add"])
def test_a_shared_layers_overruled_dtype_is_told_once_whatever_its_calls(make):
    """A layer called at three nodes runs as three copies (twins of one layer): the warning
    is the layer's, once, not once a copy."""
    shared = make()
    inputs = dlcore.Input((3,))
    if isinstance(shared, layers.Add):
        first = shared([inputs, inputs])
        outputs = shared([shared([first, inputs]), first])
    else:
        outputs = shared(shared(shared(inputs)))
    model = dlcore.Model(inputs, layers.Dense(2)(outputs), backend="reference")
    assert model.dtype == np.float32
    with pytest.warns(UserWarning, match=r"^layer 'shared': dtype='float64'") as told:
        model.predict(np.ones((2, 3), np.float32), verbose=0)
        model.predict(np.ones((2, 3), np.float32), verbose=0)
    assert len(told) == 1


def test_kerass_serialised_dtype_policy_is_taken_and_a_bad_one_refused_in_dlcores_line():
    """A Keras layer's get_config holds its dtype as a serialised DTypePolicy, which Keras's
    layers take as dtype=; any dtype NumPy refuses with its own words (a dict: "entry not a 2-
    or 3- tuple") gets dlcore's line."""
    policy = {"module": "keras", "class_name": "DTypePolicy",
              "config": {"name": "float64"}, "registered_name": None}
    assert layers.Dense(2, dtype=policy).float_type == np.float64
    for bad in ({"class_name": "DTypePolicy", "config": {}}, {"a": 1},
                {"class_name": "DTypePolicy", "config": {"name": "mixed_float16"}}):
        with pytest.raises(ValueError, match=r"^dtype=.*: dlcore computes in float32 or "
                                             r"float64 \(dtype='float32', 'float64' or None\)$"):
            layers.Dense(2, dtype=bad)


FLOAT64_POLICY = {"module": "keras", "class_name": "DTypePolicy",
                  "config": {"name": "float64"}, "registered_name": None}


@pytest.mark.parametrize("given, computed", [(">f4", np.float32), (np.dtype(">f8"), np.float64),
                                             (FLOAT64_POLICY, np.float64)])
def test_a_layers_dtype_and_a_models_take_every_form_in_native_byte_order(given, computed):
    """A layer's dtype= and a model's build(dtype=) are read by one function: a big-endian
    type (rows read from a big-endian file) was refused as a layer's dtype=, a serialised
    Keras policy as a model's, in NumPy's words."""
    layer = layers.Dense(2, dtype=given)
    model = dlcore.Sequential([layers.Dense(2)], input_shape=(3,)).build(dtype=given)
    for chosen in (layer.float_type, model.dtype):
        assert chosen == np.dtype(computed) and chosen.isnative


@pytest.mark.parametrize("given, shown", [
    (np.float16, "float16"), ("int32", "int32"),
    ({"class_name": "DTypePolicy", "config": {"name": "mixed_float16"}}, "mixed_float16")])
def test_a_layers_dtype_and_a_models_are_refused_in_the_same_line(given, shown):
    line = (f"^dtype='{shown}': dlcore computes in float32 or float64 "
            r"\(dtype='float32', 'float64' or None\)$")
    with pytest.raises(ValueError, match=line):
        layers.Dense(2, dtype=given)
    with pytest.raises(ValueError, match=line):
        dlcore.Sequential([layers.Dense(2)], input_shape=(3,)).build(dtype=given)


@pytest.mark.parametrize("declared, computed", [(None, np.float32), ("float64", np.float64),
                                                ("float32", np.float32)])
def test_a_layer_built_with_dtype_none_computes_in_its_own_dtype_else_float32(declared,
                                                                              computed):
    # NumPy reads None as float64: a layer built on its own with dtype=None computed in it
    layer = layers.Dense(2, dtype=declared).build((3,), backend="reference", dtype=None)
    assert layer.dtype == np.dtype(computed)
    assert layer.get_weights()[0].dtype == np.dtype(computed)


def test_layers_added_one_by_one_give_the_type_and_weights_the_constructor_gives():
    """Sequential([Dense(4, dtype="float64"), Dense(2)]) computed in float32 while the same
    layers added one by one computed in float64: the type was fixed at the first add."""
    together = dlcore.Sequential([layers.Dense(4, dtype="float64"), layers.Dense(2)],
                                 input_shape=(3,), backend="reference")
    one_by_one = dlcore.Sequential(input_shape=(3,), backend="reference")
    one_by_one.add(layers.Dense(4, dtype="float64"))
    assert one_by_one.dtype == np.float64
    one_by_one.add(layers.Dense(2))
    assert one_by_one.dtype == together.dtype == np.float32
    for own, constructed in zip(one_by_one.get_weights(), together.get_weights(), strict=True):
        assert own.dtype == np.float32
        np.testing.assert_array_equal(own, constructed)
    x = np.ones((5, 3), np.float32)
    np.testing.assert_array_equal(one_by_one.predict(x), together.predict(x))
    # a type the model was built in on purpose stays
    chosen = dlcore.Sequential([layers.Dense(4)], input_shape=(3,), backend="reference")
    chosen.build(dtype="float64")
    chosen.add(layers.Dense(2))
    assert chosen.dtype == np.float64 and chosen.get_weights()[-1].dtype == np.float64
