"""Weight decay and max-norm as lecture "Convolutional neural networks" (2016, "Weight decay")
writes them, as the manual training loop reports them, and under Keras's spellings.

Oracles: the cost C = loss + Omega(theta) computed from the lecture's formulas (Omega = lambda/2
||theta||^2 for dlcore's L2; Keras's l2(lambda) = lambda ||theta||^2), and gradcheck's own two
sides (a correct network passes)."""
import numpy as np
import pytest

import dlcore
from dlcore.layers import Conv2D, Dense, Flatten, MaxPool2D
from dlcore.regularizers import L1, L1L2, L2, MaxNorm, l1, l1_l2, l2, max_norm


def rows(n, width, seed=0):
    return np.random.default_rng(seed).random((n, width)).astype(np.float32)


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_train_on_batch_reports_the_cost_as_fit_and_evaluate_do(backend):
    """The lecture's manual loop (`model.train_on_batch`) reports the cost C = loss +
    Omega(theta) of the weights the batch was computed with, as test_on_batch, evaluate, fit
    and Keras do: it reported the loss alone (1.32 where the others said 3.48)."""
    x, labels = rows(12, 5), np.arange(12) % 3
    model = dlcore.Sequential([Dense(3, activation="softmax", kernel_regularizer=L2(1.0))],
                              input_shape=(5,), backend=backend, seed=2)
    model.compile("cross_entropy", "sgd")
    probabilities = model.predict(x)
    kernel = model.get_weights()[0].astype(np.float64)
    cost = -np.log(probabilities[np.arange(12), labels]).mean() + 0.5 * (kernel ** 2).sum()
    assert model.test_on_batch(x, labels)[0] == pytest.approx(cost, rel=1e-6)
    assert model.train_on_batch(x, labels)[0] == pytest.approx(cost, rel=1e-6)


def test_gradcheck_passes_a_frozen_layer_with_a_regulariser():
    """A frozen layer's weights are not in the penalty (Keras's rule, :meth:`penalty`): the
    analytic side added their decay anyway, and gradcheck said CHECK (relative error 0.04)
    of a correct network."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((3, 1, 8, 8)).astype(np.float32), np.array([0, 1, 2])
    model = dlcore.Sequential([Conv2D(3, 3, padding=1, activation="tanh",
                                      kernel_regularizer=L2(0.1)),
                               MaxPool2D(2), Flatten(), Dense(3, activation="softmax")],
                              input_shape=(1, 8, 8), seed=0, backend="reference")
    model.layers[0].trainable = False
    model.compile("cross_entropy", "sgd")
    errors = dlcore.gradcheck(model, x, y, verbose=False)
    assert max(errors.values()) < 1e-6, errors


def test_keras_spellings_mean_what_they_mean_in_keras():
    """Keras's l2(0.01) penalises 0.01 ||w||^2: dlcore's L2(0.02). The alias was dlcore's
    L2 itself, half Keras's decay, while a Keras file of the same model had the full one."""
    weights = np.arange(-3.0, 3.0).reshape(2, 3)
    squares, absolutes = (weights ** 2).sum(), np.abs(weights).sum()
    assert l2(0.01).penalty(weights) == pytest.approx(0.01 * squares)
    assert l1(0.01).penalty(weights) == pytest.approx(0.01 * absolutes)
    both = 0.1 * absolutes + 0.01 * squares
    assert l1_l2(0.1, 0.01).penalty(weights) == pytest.approx(both)
    assert L2(0.01).penalty(weights) == pytest.approx(0.005 * squares)   # the lecture's
    layer = Dense(3, kernel_regularizer="l2", bias_regularizer="l1")
    assert layer.kernel_regularizer.penalty(weights) == pytest.approx(0.01 * squares)
    assert isinstance(layer.bias_regularizer, L1) and layer.bias_regularizer.l1 == 0.01
    assert max_norm().max_value == MaxNorm().max_value == 2.0     # Keras's default
    assert isinstance(l1_l2(0.1, 0.0), L1L2)


def test_keras_regulariser_objects_penalise_as_keras_computes_them():
    """Keras 3 (torch backend) as the oracle: a Keras regulariser object given to a dlcore layer
    (Keras code ported as it is) penalises what Keras's computes, to float32 rounding; it was
    refused, and writing dlcore for keras (``dlcore.regularizers.L2``) halves Keras's L2."""
    from test_io_keras import real_keras
    keras = real_keras()
    weights = np.arange(-3.0, 3.0, dtype=np.float32).reshape(2, 3)
    for theirs in (keras.regularizers.L2(0.01), keras.regularizers.L1(0.02),
                   keras.regularizers.L1L2(0.1, 0.01)):
        mine = Dense(3, kernel_regularizer=theirs).kernel_regularizer
        assert mine.penalty(weights) == pytest.approx(
            float(keras.ops.convert_to_numpy(theirs(weights))), rel=1e-6)
    assert L2(0.01).penalty(weights) == pytest.approx(
        0.5 * float(keras.ops.convert_to_numpy(keras.regularizers.L2(0.01)(weights))), rel=1e-6)
    constraint = Dense(3, kernel_constraint=keras.constraints.MaxNorm(3)).kernel_constraint
    assert isinstance(constraint, MaxNorm) and constraint.max_value == 3
    with pytest.raises(ValueError, match=r"MaxNorm\(axis=\[0\]\) on a Conv2D"):
        Conv2D(3, 3, kernel_constraint=keras.constraints.MaxNorm(3))   # Keras's axis=0

def test_keras_serialised_regularisers_keep_kerass_strength():
    """A Keras layer's config holds its regulariser as Keras's dict (``{"module":
    "keras.regularizers", "class_name": "L2", "config": {"l2": 1e-4}}``, what
    ``keras.layers.Dense(...).get_config()`` gives, the way a ported config passes it); dlcore
    read it as its own ``L2(1e-4)``: half Keras's penalty, silently. Keras 3 is the oracle."""
    from test_io_keras import real_keras
    keras = real_keras()
    weights = np.arange(-3.0, 3.0, dtype=np.float32).reshape(2, 3)
    for theirs in (keras.regularizers.L2(0.01), keras.regularizers.L1(0.02),
                   keras.regularizers.L1L2(0.1, 0.01)):
        config = keras.layers.Dense(3, kernel_regularizer=theirs).get_config()
        mine = Dense(3, kernel_regularizer=config["kernel_regularizer"]).kernel_regularizer
        assert mine.penalty(weights) == pytest.approx(
            float(keras.ops.convert_to_numpy(theirs(weights))), rel=1e-6)
    config = keras.layers.Dense(3, kernel_constraint=keras.constraints.MaxNorm(3)).get_config()
    assert Dense(3, kernel_constraint=config["kernel_constraint"]).kernel_constraint.max_value == 3
    with pytest.raises(ValueError, match=r"MaxNorm\(axis=\[0\]\) on a Conv2D"):
        Conv2D(3, 3, kernel_constraint=config["kernel_constraint"])   # Keras's axis=0
    ours = {"class_name": "L2", "config": {"l2": 0.01}}     # dlcore's own dict: dlcore's L2
    assert Dense(3, kernel_regularizer=ours).kernel_regularizer.l2 == 0.01


def test_keras_objects_dlcore_has_no_match_for_are_named_in_the_refusal():
    """``keras.regularizers.OrthogonalRegularizer()`` was refused with "must be None, a
    Regularizer (or Keras's)": the message said Keras's were taken. It names the ones that
    are."""
    from test_io_keras import real_keras
    keras = real_keras()
    with pytest.raises(ValueError, match=r"Keras's L1, L2 or L1L2 .*; got Keras's "
                                         r"OrthogonalRegularizer\b[^\n]*$"):
        Dense(3, kernel_regularizer=keras.regularizers.OrthogonalRegularizer())
    with pytest.raises(ValueError, match=r"Keras's MaxNorm .*; got Keras's NonNeg\b[^\n]*$"):
        Dense(3, kernel_constraint=keras.constraints.NonNeg())


def test_a_regulariser_named_without_strength_is_refused():
    """Keras's "l1l2" is L1L2(0, 0): no penalty. dlcore's "l1_l2" silently trained
    unregularised while its docstring promised 0.01."""
    for name in ("l1_l2", "l1l2"):
        with pytest.raises(ValueError, match=r"has no strength.*L1L2\(l1=\.\.\., l2=\.\.\.\)"):
            Dense(3, kernel_regularizer=name)


def test_max_norm_takes_keras_per_unit_axis_and_refuses_another():
    assert Dense(3, kernel_constraint=MaxNorm(2, axis=0)).kernel_constraint.max_value == 2
    assert Dense(3, kernel_constraint=MaxNorm(2, axis=np.int64(0))).kernel_constraint.axis \
        == (0,)   # a grid's NumPy integer, as every count and axis takes
    assert Conv2D(3, 3, kernel_constraint=max_norm(3, axis=[0, 1, 2])).kernel_constraint
    with pytest.raises(ValueError, match=r"MaxNorm\(axis=\[0\]\) on a Conv2D: dlcore bounds "
                                         r"each unit's incoming weights.*leave axis out"):
        Conv2D(3, 3, kernel_constraint=max_norm(2, axis=0))
    with pytest.raises(ValueError, match=r"MaxNorm\(axis=\[1\]\) on a Dense"):
        Dense(3, kernel_constraint=MaxNorm(2, axis=1))
    dense = Dense(3, kernel_constraint=MaxNorm(2, axis=0))
    assert Dense.from_config(dense.get_config()).kernel_constraint.max_value == 2
