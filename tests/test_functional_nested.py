"""Models used as layers keep their nesting, as in Keras (lecture "Deep learning I", "Defining a
functional model": a model is callable like a layer). Transfer learning's shape: a
``Sequential`` feature extractor called on the input under a new head. ``model.layers`` lists
the nested model as one entry, ``get_layer`` finds it, freezing it freezes its weights in
``fit``, ``summary`` gives it one row with its parameters, and dlcore's own file keeps the
nesting; the arithmetic is that of the same layers inlined (the whole model's ``flat_layers``).

Oracles: the weights a frozen base had before ``fit`` (compared bit for bit), the parameter
counts of the layers themselves, and predictions before and after a save and load.
"""
import json

import h5py
import numpy as np
import pytest

import dlcore
from dlcore.layers import Conv2D, Dense, Flatten


def _transfer_model(seed=0):
    """A small convolutional base (Sequential) under a new head: Keras's transfer-learning
    recipe, ``keras.Model(inputs, head(base(inputs)))``."""
    base = dlcore.Sequential([Conv2D(3, 3, activation="relu"), Flatten(),
                              Dense(5, activation="relu")], input_shape=(1, 6, 6),
                             backend="reference", seed=seed)
    inputs = dlcore.Input((1, 6, 6))
    outputs = Dense(3, activation="softmax", name="head")(base(inputs))
    return dlcore.Model(inputs, outputs, backend="reference", seed=seed), base


def _data(rows=12, seed=1):
    generator = np.random.default_rng(seed)
    return (generator.random((rows, 1, 6, 6)).astype(np.float32),
            np.eye(3, dtype=np.float32)[np.arange(rows) % 3])


def test_a_nested_model_is_one_layer_that_get_layer_finds():
    model, base = _transfer_model()
    assert model.layers == [base, model.get_layer("head")]
    assert model.get_layer("sequential") is base
    assert model.get_layer(index=0) is base
    assert [layer.name for layer in model.flat_layers] == ["conv2d", "flatten", "dense", "head"]
    # the weights are those of the layers in that order, as Keras's get_weights gives them
    assert [w.shape for w in model.get_weights()] == \
        [w.shape for w in base.get_weights()] + [(5, 3), (3,)]
    assert model.count_params() == base.count_params() + 5 * 3 + 3


def test_freezing_the_nested_model_keeps_its_weights_through_fit():
    model, base = _transfer_model()
    model.get_layer("sequential").trainable = False
    model.compile("cross_entropy", "sgd")
    before_base = [w.copy() for w in base.get_weights()]
    before_head = [w.copy() for w in model.get_layer("head").get_weights()]
    x, y = _data()
    model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    for old, new in zip(before_base, base.get_weights()):
        np.testing.assert_array_equal(old, new)
    assert any(not np.array_equal(old, new)
               for old, new in zip(before_head, model.get_layer("head").get_weights()))
    assert len(model.trainable_weights) == 2          # the head's kernel and bias


def test_a_nested_model_frozen_stays_frozen_when_one_of_its_layers_says_trainable():
    """Keras's rule: a frozen model trains none of its layers, whatever a layer's flag."""
    model, base = _transfer_model()
    base.trainable = False
    base.layers[0].trainable = True
    model.compile("cross_entropy", "sgd")
    kernel = base.layers[0].get_weights()[0].copy()
    model.fit(*_data(), epochs=1, batch_size=4, verbose=0)
    np.testing.assert_array_equal(base.layers[0].get_weights()[0], kernel)


def test_the_summary_gives_the_nested_model_one_row_with_its_parameters():
    model, base = _transfer_model()
    base.trainable = False
    summary = model.summary(print_fn=None)
    assert [(row.name, row.class_name) for row in summary.rows] == \
        [("sequential", "Sequential"), ("head", "Dense")]
    assert summary.rows[0].params == base.count_params()
    assert summary.rows[1].inputs == ["sequential"]
    assert summary.total_params == model.count_params()
    assert summary.non_trainable_params == base.count_params()
    assert "sequential (Sequential, frozen)" in str(summary)


def test_a_functional_model_nested_in_a_nested_model_saves_and_loads_with_its_nesting(
        tmp_path):
    """Two levels: a functional block inside a functional feature model inside the model;
    dlcore's file keeps all of it, frozen flags included, and predicts the same."""
    block_input = dlcore.Input((4,))
    block = dlcore.Model(block_input, Dense(4, activation="tanh")(block_input), name="block",
                         backend="reference")
    features_input = dlcore.Input((1, 6, 6))
    flat = Flatten()(Conv2D(2, 3)(features_input))
    features = dlcore.Model(features_input, block(Dense(4)(flat)), name="features",
                            backend="reference")
    inputs = dlcore.Input((1, 6, 6))
    model = dlcore.Model(inputs, Dense(2, activation="softmax")(features(inputs)),
                         backend="reference")
    block.trainable = False
    x, _ = _data()
    path = tmp_path / "nested.h5"
    dlcore.save(model, path)
    loaded = dlcore.load(path)
    assert [layer.name for layer in loaded.layers] == ["features", "dense_2"]
    inner = loaded.get_layer("features")
    assert isinstance(inner, dlcore.Model)
    assert [layer.name for layer in inner.layers] == ["conv2d", "flatten", "dense_1", "block"]
    assert not inner.get_layer("block").trainable and inner.trainable
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_a_sequential_nested_in_a_model_saves_and_loads_with_its_nesting(tmp_path):
    model, base = _transfer_model()
    base.trainable = False
    model.compile("cross_entropy", "adam")
    x, y = _data()
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    path = tmp_path / "transfer.h5"
    dlcore.save(model, path)
    loaded = dlcore.load(path)
    again = loaded.get_layer("sequential")
    assert isinstance(again, dlcore.Sequential) and not again.trainable
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    # training on goes on as it would have: the base stays frozen, the head moves alike
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    loaded.fit(x, y, epochs=1, batch_size=4, verbose=0)
    np.testing.assert_allclose(loaded.predict(x), model.predict(x), rtol=1e-6)
    np.testing.assert_array_equal(again.get_weights()[0], base.get_weights()[0])


def test_the_lectures_shared_vision_model_is_one_layer_called_twice(tmp_path):
    digit = dlcore.Input((1, 6, 6))
    vision = dlcore.Model(digit, Flatten()(Conv2D(2, 3)(digit)), name="vision",
                          backend="reference")
    first, second = dlcore.Input((1, 6, 6)), dlcore.Input((1, 6, 6))
    joined = dlcore.layers.concatenate([vision(first), vision(second)])
    model = dlcore.Model([first, second], Dense(1, activation="sigmoid")(joined),
                         backend="reference")
    assert [layer.name for layer in model.layers] == ["vision", "concatenate", "dense"]
    rows = model.summary(print_fn=None).rows
    assert [row.name for row in rows] == ["vision", "vision", "concatenate", "dense"]
    assert rows[1].params == 0 and rows[2].inputs == ["vision", "vision"]
    x = [_data(seed=2)[0], _data(seed=3)[0]]
    path = tmp_path / "siamese.h5"
    dlcore.save(model, path)
    loaded = dlcore.load(path)
    assert [layer.name for layer in loaded.layers] == ["vision", "concatenate", "dense"]
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def _nest_deeper(config, levels):
    """``config`` with its nested model wrapped in itself ``levels`` times: a file that nests a
    model inside itself over and over."""
    entry = config["models"][0]
    for _ in range(levels):
        entry = {**entry, "models": [entry]}
    config["models"] = [entry]


@pytest.mark.parametrize("levels, refusal", [(17, "nests models more than 16 deep"),
                                             (400, "nests arrays or objects more than")])
def test_a_file_that_nests_a_model_inside_itself_deeply_is_refused_in_one_line(
        tmp_path, levels, refusal):
    model, _ = _transfer_model()
    path = tmp_path / "deep.h5"
    dlcore.save(model, path)
    with h5py.File(path, "r+") as h5file:
        config = json.loads(h5file.attrs["hyperparameters"])
        _nest_deeper(config, levels)
        h5file.attrs["hyperparameters"] = json.dumps(config)
    with pytest.raises(dlcore.ModelFileError) as caught:
        dlcore.load(path)
    message = str(caught.value)
    assert refusal in message and "\n" not in message


def test_a_file_whose_nested_model_runs_other_layers_than_its_calls_is_refused(tmp_path):
    model, _ = _transfer_model()
    path = tmp_path / "mismatch.h5"
    dlcore.save(model, path)
    with h5py.File(path, "r+") as h5file:
        config = json.loads(h5file.attrs["hyperparameters"])
        config["models"][0]["layers"] = config["models"][0]["layers"][:2]
        h5file.attrs["hyperparameters"] = json.dumps(config)
    with pytest.raises(dlcore.ModelFileError, match="runs other layers than the model's own"):
        dlcore.load(path)


def test_a_layer_of_a_nested_model_called_on_the_outer_graph_too_is_listed_as_both(
        tmp_path):
    """A nested model's layer also called directly (shared, one set of weights) is an entry
    of ``model.layers`` besides the nested model, as Keras lists it, and has its own rows."""
    shared = Dense(4, activation="tanh", name="shared")
    inner_input = dlcore.Input((4,))
    inner = dlcore.Model(inner_input, shared(inner_input), name="inner", backend="reference")
    inputs = dlcore.Input((4,))
    outputs = Dense(2, name="out")(dlcore.layers.add([inner(inputs), shared(inputs)]))
    model = dlcore.Model(inputs, outputs, backend="reference")
    assert [layer.name for layer in model.layers][:2] == ["inner", "shared"]
    assert [row.name for row in model.summary(print_fn=None).rows].count("shared") == 1
    assert model.count_params() == 4 * 4 + 4 + 4 * 2 + 2
    path = tmp_path / "shared.h5"
    dlcore.save(model, path)
    loaded = dlcore.load(path)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    x = np.random.default_rng(4).random((5, 4)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_the_summary_counts_a_layer_shared_with_a_nested_model_once():
    """A layer the model and a model nested in it both call has its parameters in the nested
    model's row; its own row adds none (the totals counted them twice: 52 parameters of a
    model of 36), as a shared layer's later calls add none, and Keras's totals."""
    shared = Dense(4, name="shared")
    inner_input = dlcore.Input((3,))
    base = dlcore.Model(inner_input, Dense(4, name="inner")(shared(inner_input)), name="base",
                        backend="reference")
    inputs = dlcore.Input((3,))
    model = dlcore.Model(inputs, dlcore.layers.add([shared(inputs), base(inputs)]),
                         backend="reference")
    summary = model.summary(print_fn=None)
    rows = {row.name: row for row in summary.rows}
    assert rows["base"].params == base.count_params() and rows["shared"].params == 0
    assert summary.total_params == summary.trainable_params == model.count_params() == 36
    assert rows["shared"].flops == 2 * 3 * 4   # its call still costs its FLOPs


def test_the_summary_counts_a_layer_shared_by_two_nested_models_once():
    """A layer two sibling nested models both hold was counted in each model's row: the
    totals said 72 parameters of a model of 56 (``count_params()``, Keras's summary). The
    first model's row counts it; the second's adds only its own layers' (as a shared layer's
    later calls add none), its FLOPs still those of all its layers."""
    shared = Dense(4, name="shared")
    first_input, second_input = dlcore.Input((3,)), dlcore.Input((3,))
    first = dlcore.Model(first_input, Dense(4, name="head_a")(shared(first_input)),
                         name="first", backend="reference")
    second = dlcore.Model(second_input, Dense(4, name="head_b")(shared(second_input)),
                          name="second", backend="reference")
    inputs = dlcore.Input((3,))
    model = dlcore.Model(inputs, dlcore.layers.add([first(inputs), second(inputs)]),
                         backend="reference")
    summary = model.summary(print_fn=None)
    assert summary.total_params == summary.trainable_params == model.count_params() == 56
    rows = {row.name: row for row in summary.rows}
    assert sorted([rows["first"].params, rows["second"].params]) == [20, 36]
    assert rows["first"].flops == rows["second"].flops == 2 * (3 * 4 + 4 * 4)


def test_a_nested_model_keeps_the_name_its_user_gave_and_a_clash_is_refused():
    """Keras refuses two entries of one name ("The name 'base' is used 2 times in the
    model") and never renames the user's model: dlcore renamed ``base`` to ``base_1``, so
    ``get_layer("base")`` found the Dense."""
    base = dlcore.Sequential([Dense(3, name="features")], input_shape=(4,), name="base")
    inputs = dlcore.Input((4,))
    with pytest.raises(ValueError, match="the name 'base' is used by two layers of this "
                                         "model.*give one another name="):
        dlcore.Model(inputs, Dense(2, name="base")(base(inputs)))
    assert base.name == "base"
    model = dlcore.Model(inputs, Dense(2, name="head")(base(inputs)))
    assert model.get_layer("base") is base


def test_a_model_named_by_default_gets_a_free_name_once_and_keeps_it():
    """Two models named by default ("sequential") in one model: the second is named
    ``sequential_1``, as Keras names models when they are made; a model using it later finds
    it by that name, and a layer given its name there is refused (it no longer moves)."""
    base = dlcore.Sequential([Dense(3, name="features")], input_shape=(4,))
    head = dlcore.Sequential([Dense(2, name="scores")], input_shape=(3,))
    inputs = dlcore.Input((4,))
    first = dlcore.Model(inputs, head(base(inputs)))
    assert [layer.name for layer in first.layers] == ["sequential", "sequential_1"]
    other = dlcore.Input((3,))
    with pytest.raises(ValueError, match="the name 'sequential_1' is used by two layers"):
        dlcore.Model(other, head(Dense(3, name="sequential_1")(other)))
    assert first.get_layer("sequential_1") is head


def test_a_model_given_to_a_sequential_is_refused_naming_the_functional_api():
    """Keras's transfer learning writes keras.Sequential([base, Dense(2)]); dlcore nests a
    model with the functional API only, and its refusal said "got Sequential", not that."""
    base = dlcore.Sequential([Dense(3)], input_shape=(4,), name="base")
    with pytest.raises(TypeError, match=r"not a model \(Sequential 'base'\): nest it with "
                                        r"the functional API.*Dense\(\.\.\.\)\(base\(inputs"):
        dlcore.Sequential([base, Dense(2)], input_shape=(4,))


def test_two_sequentials_whose_layers_dlcore_named_combine_as_keras_names_them(tmp_path):
    """Keras's transfer learning, ``keras.Model(inputs, head(base(inputs)))`` with a base and a
    head whose layers have default names: Keras names layers uniquely when it makes them
    (``dense``, ``dense_1``), dlcore refused "layer name 'dense' is used by two layers of this
    model". The head's layer is renumbered; the head alone still trains it (its optimiser's
    keys follow the name), and the model's file keeps the names and the predictions."""
    base = dlcore.Sequential([Dense(4, activation="relu")], input_shape=(6,), name="base",
                             backend="reference")
    head = dlcore.Sequential([Dense(3)], input_shape=(4,), name="head", backend="reference")
    inputs = dlcore.Input((6,))
    model = dlcore.Model(inputs, head(base(inputs)), backend="reference")
    assert [layer.name for layer in model.flat_layers] == ["dense", "dense_1"]
    assert head.get_layer("dense_1") is head.layers[0]
    x = np.random.default_rng(5).random((4, 6)).astype(np.float32)
    path = tmp_path / "transfer.h5"
    model.save(path)
    np.testing.assert_array_equal(dlcore.load(path).predict(x), model.predict(x))
    head.compile(loss="mse", optimizer="sgd")
    kernel = head.get_weights()[0].copy()
    head.fit(x[:, :4], np.ones((4, 3), np.float32), epochs=1, batch_size=4, verbose=0)
    assert not np.allclose(head.get_weights()[0], kernel)


def test_a_name_the_user_gave_is_kept_and_a_clash_of_two_is_refused_naming_the_fix():
    """dlcore renumbers only the names it chose: the user's ``dense`` keeps its name even
    where a layer dlcore named ``dense`` comes first; two layers the user named alike are
    refused in one line saying what to do."""
    base = dlcore.Sequential([Dense(4)], input_shape=(6,), name="base")
    inputs = dlcore.Input((6,))
    model = dlcore.Model(inputs, Dense(2, name="dense")(base(inputs)))
    assert [layer.name for layer in model.flat_layers] == ["dense_1", "dense"]
    named = dlcore.Sequential([Dense(4, name="features")], input_shape=(6,), name="named")
    with pytest.raises(ValueError, match=r"^layer name 'features' is used by two layers of "
                                         r"this model: give one of them another name=$"):
        dlcore.Model(inputs, Dense(2, name="features")(named(inputs)))


def test_a_sequential_of_two_models_layers_named_by_default_numbers_them_on():
    """``Sequential([*base.layers, *head.layers])``: each had its ``dense``; the head's is
    renumbered as a Model renumbers it (it was "already used in this network"), and the head
    alone still finds its weights by the new name; a user's two alike are refused naming the
    fix."""
    base = dlcore.Sequential([Dense(4)], input_shape=(6,))
    head = dlcore.Sequential([Dense(3)], input_shape=(4,))
    joined = dlcore.Sequential([*base.layers, *head.layers], input_shape=(6,))
    assert [layer.name for layer in joined.layers] == ["dense", "dense_1"]
    assert [parameter.key for parameter in head.parameters] == ["dense_1/kernel",
                                                                "dense_1/bias"]
    with pytest.raises(ValueError, match="^layer name 'a' is already used in this network: "
                                         "give one of them another name=$"):
        dlcore.Sequential([Dense(2, name="a"), Dense(2, name="a")])


def test_a_layer_named_in_one_model_keeps_its_name_in_the_next_as_in_keras():
    """A layer dlcore named in one Sequential, then listed in another after a fresh layer of
    its class (or called after one in a functional model): Keras names a layer once, when it
    is made, so it keeps ``dense`` and the fresh one is numbered past it. dlcore renamed the
    shared layer ``dense_1``, in the first Sequential too (its get_layer("dense") failing)."""
    shared = Dense(2)
    first = dlcore.Sequential([shared], input_shape=(4,))
    second = dlcore.Sequential([Dense(4), shared], input_shape=(4,))
    assert [layer.name for layer in second.layers] == ["dense_1", "dense"]
    assert first.get_layer("dense") is shared
    inputs = dlcore.Input((4,))
    model = dlcore.Model(inputs, shared(Dense(4)(inputs)))
    assert [layer.name for layer in model.flat_layers] == ["dense_1", "dense"]
    assert first.get_layer("dense") is shared and second.get_layer("dense") is shared


def test_two_clones_of_a_net_named_by_default_combine_side_by_side():
    """An ensemble of copies, ``Model(i, Concatenate()([a(i), b(i)]))`` with ``a``, ``b``
    clones of one net (``clone()`` or Keras's ``clone_model``): Keras keeps each nested model's
    names apart; dlcore refused "layer name 'dense' is used by two layers", its copies' names
    no longer its own. The second copy's are numbered on, and each still predicts as the net."""
    from dlcore.layers import Concatenate
    net = dlcore.Sequential([Dense(4), Dense(2)], input_shape=(6,), backend="reference")
    first, second = net.clone(), dlcore.models.clone_model(net)
    second.set_weights(net.get_weights())
    inputs = dlcore.Input((6,))
    model = dlcore.Model(inputs, Concatenate()([first(inputs), second(inputs)]),
                         backend="reference")
    assert len({layer.name for layer in model.flat_layers}) == 5
    assert [entry.name for entry in model.layers[:2]] == ["sequential", "sequential_1"]
    x = np.random.default_rng(9).random((3, 6)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x), np.tile(net.predict(x), 2), rtol=1e-6)


def test_two_functional_models_of_one_builder_combine_side_by_side_as_keras_names_them(
        tmp_path):
    """keras.io's functional guide calls a model built by one function twice over, side by
    side (``Model(i, Add()([block()(i), block()(i)]))``): each block's layers have default
    names, ``dense`` and ``dense_1`` in each; Keras names them dense .. dense_3 when it makes
    them. dlcore refused "layer name 'dense' is used by two layers of this model"; the second
    block's are numbered on (past every name of the blocks), each block finds its layers by
    their names, its clone and pickled copy combine too, and the model's file keeps names and
    predictions."""
    import pickle

    from dlcore.layers import Add

    def block():
        rows = dlcore.Input((3,))
        return dlcore.Model(rows, Dense(2)(Dense(4)(rows)), backend="reference")
    first, second = block(), block()
    inputs = dlcore.Input((3,))
    model = dlcore.Model(inputs, Add()([first(inputs), second(inputs)]), backend="reference")
    assert sorted(layer.name for layer in model.flat_layers) == [
        "add", "dense", "dense_1", "dense_2", "dense_3"]
    assert [layer.name for layer in second.flat_layers] == ["dense_2", "dense_3"]
    assert model.get_layer("model_1").get_layer("dense_3") is second.flat_layers[1]
    x = np.random.default_rng(2).random((4, 3)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x), first.predict(x) + second.predict(x),
                               rtol=1e-6)
    dlcore.save(model, tmp_path / "blocks.h5")
    np.testing.assert_array_equal(dlcore.load(tmp_path / "blocks.h5").predict(x),
                                  model.predict(x))
    third = block()
    copies = [third, third.clone(), pickle.loads(pickle.dumps(third))]
    joined = dlcore.Model(inputs, Add()([each(inputs) for each in copies]),
                          backend="reference")
    assert len({layer.name for layer in joined.flat_layers}) == 7


@pytest.mark.parametrize("b_first", [False, True])
def test_two_nested_models_sharing_a_layer_are_listed_in_the_order_of_their_calls(b_first):
    """Two models ``A`` and ``B`` sharing their first layer, called side by side: Keras 3.15's
    ``model.layers`` lists them in the order of their calls (``A, B`` for
    ``Add()([A(x), B(x)])``, ``B, A`` for ``Add()([B(x), A(x)])``); dlcore listed the model
    that called the shared layer last first (B, A for both), and the summary's rows so."""
    from dlcore.layers import Add
    shared = Dense(4, name="shared")
    models = {}
    for name in ("A", "B"):
        rows = dlcore.Input((3,))
        models[name] = dlcore.Model(rows, Dense(2, name=f"{name}_out")(shared(rows)),
                                    name=name, backend="reference")
    order = ["B", "A"] if b_first else ["A", "B"]
    inputs = dlcore.Input((3,))
    model = dlcore.Model(inputs, Add()([models[name](inputs) for name in order]),
                         backend="reference")
    assert [entry.name for entry in model.layers] == [*order, "add"]
    lines = []
    model.summary(print_fn=lines.append)
    rows = [line.split()[0] for line in "\n".join(lines).splitlines()
            if line.split() and line.split()[0] in ("A", "B")]
    assert rows == order


@pytest.mark.parametrize("copying", ["pickle", "deepcopy"])
def test_two_pickled_copies_of_a_net_named_by_default_combine_side_by_side(copying):
    """pickle and copy.deepcopy go through the net's config as clone() does: they keep which
    names dlcore chose too (two copies were refused, "'dense' is used by two layers")."""
    import copy
    import pickle

    from dlcore.layers import Concatenate
    net = dlcore.Sequential([Dense(3)], input_shape=(4,), backend="reference")
    copies = [pickle.loads(pickle.dumps(net)) if copying == "pickle" else copy.deepcopy(net)
              for _ in range(2)]
    inputs = dlcore.Input((4,))
    model = dlcore.Model(inputs, Concatenate()([each(inputs) for each in copies]),
                         backend="reference")
    assert [layer.name for layer in model.flat_layers] == ["dense", "dense_1", "concatenate"]


def test_a_nested_output_the_model_leaves_unused_is_refused_by_its_file_in_one_line(tmp_path):
    """A nested model of two outputs whose second, made by a layer of its own, the model
    leaves unused: the model runs and holds only what its outputs need, so its file cannot
    list that layer. dlcore.save failed with a bare KeyError; it is refused in one line
    naming the layer and the fix, and no file is left."""
    rows = dlcore.Input((4,))
    hidden = Dense(3, name="hidden")(rows)
    two = dlcore.Model(rows, [Dense(2, name="first")(hidden), Dense(3, name="second")(hidden)],
                       name="two")
    inputs = dlcore.Input((4,))
    model = dlcore.Model(inputs, Dense(1, name="head")(two(inputs)[0]))
    with pytest.raises(ValueError, match=r"nested model 'two' has layers the model never "
                                         r"runs \(second: .*use that output") as caught:
        dlcore.save(model, tmp_path / "unused.h5")
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "unused.h5").exists()


def test_a_sequential_renumbered_by_the_model_calling_it_loads_its_earlier_weights(tmp_path):
    # a functional model calling a second Sequential renumbers its dense, dense_1 (dense_2,
    # dense_3 beside the first's): its own save_weights file of before was refused ("the
    # weights are for the layers dense, dense_1"); Keras reads a legacy file in order
    from dlcore.layers import Input
    base = dlcore.Sequential([Dense(4), Dense(2)], input_shape=(3,), backend="reference")
    head = dlcore.Sequential([Dense(4), Dense(2)], input_shape=(2,), backend="reference")
    head.save_weights(tmp_path / "head.h5")
    saved = head.get_weights()
    inputs = Input((3,))
    dlcore.Model(inputs, head(base(inputs)))
    assert [layer.name for layer in head.layers] == ["dense_2", "dense_3"]
    head.set_weights([np.zeros_like(array) for array in saved])
    head.load_weights(tmp_path / "head.h5")
    for got, expected in zip(head.get_weights(), saved):
        np.testing.assert_array_equal(got, expected)
    # a name the user gave is no name dlcore chose: such a file stays refused
    named = dlcore.Sequential([Dense(4, name="hidden"), Dense(2)], input_shape=(2,),
                              backend="reference")
    with pytest.raises(ValueError, match="the weights are for the layers dense, dense_1; the "
                                         "model's layers with weights are hidden, dense"):
        named.load_weights(tmp_path / "head.h5")
