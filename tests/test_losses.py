"""The losses: values, gradients (p - y) and stability; kernels against the reference.

Oracles: dL/do = p - y (lecture "Supervised learning", "HOMEWORK: prove it!"); finite differences
of the loss value; the NumPy reference for the kernel bodies."""
import re

import numpy as np
import pytest

import dlcore
from conftest import requires_cuda
from dlcore.backend import get_backend
from dlcore.layers import Activation, Dense, Dropout
from dlcore.losses import (
    BinaryCrossEntropy,
    BinaryCrossentropy,
    CategoricalCrossentropy,
    CrossEntropy,
    Distillation,
    MeanSquaredError,
    check_output_activation,
    get_loss,
    known_output_width,
)

LOSSES = [(CrossEntropy(), True), (CrossEntropy(), False), (BinaryCrossEntropy(), True),
          (BinaryCrossEntropy(), False), (MeanSquaredError(), False)]
IDS = ["ce-softmax", "ce-probabilities", "bce-sigmoid", "bce-probabilities", "mse"]


def outputs_and_targets(loss, fused, rs, n=5, k=4):
    targets = np.eye(k)[rs.integers(0, k, n)]
    if fused:
        return rs.standard_normal((n, k)) * 3, targets
    if isinstance(loss, BinaryCrossEntropy):
        return rs.uniform(0.05, 0.95, (n, k)), rs.integers(0, 2, (n, k)).astype(float)
    return rs.dirichlet(np.ones(k), n), targets


def test_softmax_cross_entropy_gradient_is_p_minus_y(random_state):
    logits = random_state.standard_normal((3, 5))
    targets = np.eye(5)[[0, 3, 4]]
    _, grad = CrossEntropy().reference(logits, targets, fused=True)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(grad, (p - targets) / 3)


def test_cross_entropy_is_finite_for_huge_logits():
    losses, grad = CrossEntropy().reference(np.array([[1000.0, -1000.0]]), np.array([[0, 1.0]]),
                                            fused=True)
    assert losses[0] == pytest.approx(2000.0) and np.all(np.isfinite(grad))


@pytest.mark.parametrize("loss, fused", LOSSES, ids=IDS)
def test_gradient_is_the_derivative_of_the_mean_loss(loss, fused, random_state):
    outputs, targets = outputs_and_targets(loss, fused, random_state)
    _, grad = loss.reference(outputs, targets, fused)
    eps = 1e-6
    for index in [(0, 0), (2, 1), (4, 3)]:
        bumped = outputs.copy()
        bumped[index] += eps
        plus = loss.reference(bumped, targets, fused)[0].mean()
        bumped[index] -= 2 * eps
        minus = loss.reference(bumped, targets, fused)[0].mean()
        assert grad[index] == pytest.approx((plus - minus) / (2 * eps), rel=1e-5, abs=1e-9)


def run(loss, fused, outputs, targets, backend):
    be = get_backend(backend)
    n, k = outputs.shape
    arrays = [be.asarray(a) for a in (outputs, targets)]
    grad, row_loss, row_correct = be.empty((n, k)), be.empty((n,)), be.empty((n,))
    loss.loss_and_gradient(be, *arrays, grad, row_loss, row_correct, fused)
    return [be.to_numpy(a) for a in (grad, row_loss, row_correct)]


@pytest.mark.parametrize("loss, fused", LOSSES, ids=IDS)
def test_cpu_kernels_follow_the_reference(loss, fused, random_state):
    outputs, targets = outputs_and_targets(loss, fused, random_state)
    outputs, targets = outputs.astype(np.float32), targets.astype(np.float32)
    for got, expected in zip(run(loss, fused, outputs, targets, "cpu"),
                             run(loss, fused, outputs, targets, "reference")):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", ["cpu", pytest.param("cuda", marks=requires_cuda)])
@pytest.mark.parametrize("loss", [CrossEntropy(), BinaryCrossEntropy(),
                                  Distillation(temperature=2.0)],
                         ids=["ce-probabilities", "bce-probabilities", "distillation"])
def test_float64_probabilities_are_clipped_at_float64s_bound(loss, backend):
    """The kernels clipped probabilities at float32's 1e-7 (1.0000000117e-7): a float64
    network's loss and gradient at a clipped probability were ~1e-8 from NumPy's float64
    (the reference, np.clip(p, 1e-7, 1 - 1e-7)); now float64's bound, within 1e-13."""
    outputs = np.array([[1e-9, 1 - 1e-9 - 1e-12, 1e-12], [0.2, 1 - 1e-8 - 0.2, 1e-8],
                        [0.5, 0.25, 0.25]])
    targets = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    if isinstance(loss, Distillation):
        targets = np.array([[0.6, 0.2, 0.2], [0.1, 0.3, 0.6], [0.2, 0.3, 0.5]])
    be = get_backend(backend)
    grad, row_loss, row_correct = (be.empty(shape, np.float64)
                                   for shape in ((3, 3), (3,), (3,)))
    loss.loss_and_gradient(be, be.asarray(outputs, np.float64), be.asarray(targets, np.float64),
                           grad, row_loss, row_correct, False)
    expected_loss, expected_grad = loss.reference(outputs, targets, False)
    np.testing.assert_allclose(be.to_numpy(row_loss), expected_loss, rtol=1e-13, atol=0)
    np.testing.assert_allclose(be.to_numpy(grad), expected_grad, rtol=1e-13, atol=0)


@requires_cuda
@pytest.mark.parametrize("loss, fused", LOSSES[:3], ids=IDS[:3])
def test_cuda_kernels_follow_the_reference(loss, fused, random_state):
    outputs, targets = outputs_and_targets(loss, fused, random_state, n=3, k=3)
    outputs, targets = outputs.astype(np.float32), targets.astype(np.float32)
    for got, expected in zip(run(loss, fused, outputs, targets, "cuda"),
                             run(loss, fused, outputs, targets, "reference")):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_unknown_loss_names_the_choices():
    with pytest.raises(ValueError, match="binary_cross_entropy, mse or distillation"):
        get_loss("hinge")


# -- cross-entropy on the wrong output, and from_logits ----------------------------------------
# Oracle: the fused softmax (sigmoid) + cross-entropy the network already computes; a logits
# loss must give the same numbers from a linear last layer with the same weights.


@pytest.mark.parametrize("layers, loss, words", [
    ([Dense(3)], "cross_entropy", "'dense' is linear: give it activation='softmax'"),
    ([Dense(3, activation="relu")], "cross_entropy", "activation 'relu'"),
    ([Dense(1, activation="tanh")], "binary_cross_entropy", "activation='sigmoid'"),
    ([Dense(3, activation="softmax"), Dropout(0.5)], "cross_entropy",
     "add Activation('softmax') after it"),
])
def test_cross_entropy_on_outputs_that_are_not_probabilities_is_refused_at_compile(
        layers, loss, words):
    model = dlcore.Sequential(layers, backend="reference")   # not built: no input shape yet
    with pytest.raises(ValueError, match="from_logits=True") as refused:
        model.compile(loss, "sgd")
    assert words in str(refused.value) and "\n" not in str(refused.value)
    assert model.loss is None


def test_probability_outputs_and_mse_stay_accepted():
    for last, loss in [("softmax", "cross_entropy"), ("sigmoid", "binary_cross_entropy"),
                       ("linear", "mse"), ("relu", "mse")]:
        dlcore.Sequential([Dense(3, activation=last)]).compile(loss, "sgd")


def test_from_logits_on_a_softmax_output_is_refused():
    model = dlcore.Sequential([Dense(3), Activation("softmax")])
    with pytest.raises(ValueError, match="already applies a softmax"):
        model.compile(CategoricalCrossentropy(from_logits=True))


def test_a_layer_added_after_compile_is_checked_before_training():
    model = dlcore.Sequential([Dense(3, activation="softmax")], backend="reference")
    model.compile("cross_entropy", "sgd")
    model.layers.append(Dense(3, name="late"))
    with pytest.raises(ValueError, match="'late' is linear"):
        model.fit(np.ones((2, 4)), [0, 1], verbose=0)


def twin_networks(loss_name, units, backend):
    """The same weights twice: probability output + fused loss, linear output + from_logits."""
    last, logits_loss = (("softmax", CategoricalCrossentropy(from_logits=True))
                         if loss_name == "cross_entropy"
                         else ("sigmoid", BinaryCrossentropy(from_logits=True)))
    fused = dlcore.Sequential([Dense(5, activation="tanh"), Dense(units, activation=last)],
                              input_shape=(4,), backend=backend, seed=3)
    logits = dlcore.Sequential([Dense(5, activation="tanh"), Dense(units)], input_shape=(4,),
                               backend=backend, seed=3)
    logits.set_weights(fused.get_weights())
    fused.compile(loss_name, "sgd", ["accuracy"])
    logits.compile(logits_loss, "sgd", ["accuracy"])
    return fused, logits


@pytest.mark.parametrize("backend", ["reference", "cpu"])
@pytest.mark.parametrize("loss_name, units", [("cross_entropy", 3),
                                              ("binary_cross_entropy", 1)])
def test_from_logits_equals_the_fused_probability_output(loss_name, units, backend,
                                                         random_state):
    fused, logits = twin_networks(loss_name, units, backend)
    x = random_state.standard_normal((6, 4)).astype(np.float32)
    y = random_state.integers(0, max(units, 2), 6)
    before = fused.evaluate(x, y)
    np.testing.assert_allclose(logits.evaluate(x, y), before, rtol=1e-5)
    np.testing.assert_allclose(logits.train_on_batch(x, y), fused.train_on_batch(x, y),
                               rtol=1e-5)
    for mine, theirs in zip(logits.get_weights(), fused.get_weights()):   # the same step
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(logits.predict_classes(x), fused.predict_classes(x))


@pytest.mark.parametrize("loss", [CrossEntropy, BinaryCrossEntropy])
def test_from_logits_loss_computes_the_fused_values_on_unfused_outputs(loss, random_state):
    outputs = random_state.standard_normal((5, 4)).astype(np.float32)
    targets = np.eye(4, dtype=np.float32)[random_state.integers(0, 4, 5)]
    for backend in ("reference", "cpu"):
        expected = run(loss(), True, outputs, targets, backend)
        got = run(loss(from_logits=True), False, outputs, targets, backend)
        for a, b in zip(got, expected):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("loss, units", [(CategoricalCrossentropy(from_logits=True), 3),
                                         (BinaryCrossentropy(from_logits=True), 2)])
def test_gradcheck_of_a_from_logits_network(loss, units, random_state):
    model = dlcore.Sequential([Dense(4, activation="tanh"), Dense(units)], input_shape=(5,),
                              backend="reference", seed=1)
    model.compile(loss, "sgd")
    x = random_state.standard_normal((3, 5))
    y = random_state.integers(0, units, 3) if units == 3 else random_state.random((3, units))
    errors = dlcore.gradcheck(model, x, y, verbose=False)
    assert errors and max(errors.values()) < 1e-6, errors


def test_a_from_logits_network_learns_three_blobs():
    rs = np.random.default_rng(7)
    centres = np.array([[3.0, 0.0], [-3.0, 0.0], [0.0, 3.0]])
    y = rs.integers(0, 3, 300)
    x = (centres[y] + rs.standard_normal((300, 2))).astype(np.float32)
    model = dlcore.Sequential([Dense(3)], input_shape=(2,), backend="reference", seed=0)
    model.compile(CategoricalCrossentropy(from_logits=True), dlcore.optimizers.SGD(0.1),
                  ["accuracy"])
    model.fit(x, y, epochs=15, batch_size=20, verbose=0)
    assert model.history["loss"][-1] < 0.5 * model.history["loss"][0]
    assert model.evaluate(x, y)["accuracy"] > 0.9
    assert np.mean(model.predict_classes(x) == y) > 0.9


def test_from_logits_survives_the_config_round_trip():
    model = dlcore.Sequential([Dense(3)], input_shape=(2,), backend="reference")
    model.compile(BinaryCrossentropy(from_logits=True), "sgd")
    twin = dlcore.Sequential.from_config(model.get_config())
    assert isinstance(twin.loss, BinaryCrossEntropy) and twin.loss.from_logits
    assert get_loss("cross_entropy").get_config() == "cross_entropy"


@pytest.mark.parametrize("config", [{"name": "mse", "from_logits": True},
                                    {"name": "cross_entropy", "from_logits": "yes"},
                                    {"name": ["cross_entropy"]}, {"name": "cross_entropy", "x": 1}])
def test_bad_loss_configs_are_refused_in_one_line(config):
    with pytest.raises(ValueError, match="a loss config must be"):
        get_loss(config)


# -- the output width: what a cross-entropy compares ---------------------------------------
# Oracle, measured on three 2-D blobs (600 samples, Dense(8, tanh) + the output, adam, 20
# epochs): softmax + cross_entropy 0.88 accuracy; 3 sigmoids + cross_entropy a lower loss (0.16
# against 0.38) but 0.81 accuracy, since -sum y log p never pushes a wrong class down; one
# sigmoid + cross_entropy learns only class 1 (0.73, the share of class 1); one softmax unit +
# binary_cross_entropy is constant. Softmax + binary_cross_entropy (0.88 there) is refused all
# the same: binary cross-entropy is for independent labels, a softmax for one class of several.


@pytest.mark.parametrize("loss, activation, width, words", [
    (CrossEntropy(), "sigmoid", 3, ("3 independent sigmoid outputs: give it "
                                    "activation='softmax'")),
    (CrossEntropy(), "sigmoid", 1, ("single output: for two classes use "
                                    "loss='binary_cross_entropy'")),
    (CrossEntropy(), "softmax", 1, "single output"),
    (CategoricalCrossentropy(from_logits=True), "linear", 1, "single output"),
    (BinaryCrossEntropy(), "softmax", 1, ("a softmax of a single output is always 1: give it "
                                          "activation='sigmoid'")),
    (BinaryCrossEntropy(), "softmax", 3, ("applies a softmax, which ties its outputs together: "
                                          "give it activation='sigmoid'")),
    (CrossEntropy(), "sigmoid", None, "has sigmoids: give it activation='softmax'"),
])
def test_cross_entropy_on_an_output_of_the_wrong_width_is_refused(
        loss, activation, width, words):
    with pytest.raises(ValueError) as refused:
        check_output_activation(loss, activation, "dense", output_width=width)
    assert words in str(refused.value) and "'dense'" in str(refused.value)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("loss, activation, width", [
    (CrossEntropy(), "softmax", 2), (CrossEntropy(), "softmax", 10),
    (CategoricalCrossentropy(from_logits=True), "linear", 3),
    (BinaryCrossEntropy(), "sigmoid", 1), (BinaryCrossEntropy(), "sigmoid", 5),
    (BinaryCrossentropy(from_logits=True), None, 1),
    (MeanSquaredError(), "softmax", 1),
])
def test_cross_entropy_on_an_output_of_a_fitting_width_is_accepted(loss, activation, width):
    check_output_activation(loss, activation, "dense", output_width=width)


def test_the_add_activation_fix_is_named_for_a_layer_without_an_activation():
    with pytest.raises(ValueError, match=r"add Activation\('softmax'\) after it"):
        check_output_activation(CrossEntropy(), "sigmoid", "pool", has_activation=False,
                                output_width=4)


def test_the_output_width_is_known_from_units_before_the_build_and_from_the_shape_after():
    dense, activation = Dense(3, activation="sigmoid"), Activation("sigmoid")
    assert known_output_width(dense) == 3
    assert known_output_width(activation) is None
    model = dlcore.Sequential([Dense(4), activation], input_shape=(2,), backend="reference")
    model.predict(np.ones((1, 2)))
    assert known_output_width(activation) == 4


def smoothed_by_formula(loss_name, outputs, targets, s, fused):
    """Keras's label smoothing written out (float64): y (1 - s) + s / K for the categorical
    cross-entropy over K classes, y (1 - s) + s / 2 for the binary one; each sample's loss
    of the smoothed targets."""
    n, k = outputs.shape
    if loss_name == "cross_entropy":
        smoothed = targets * (1 - s) + s / k
        p = np.exp(outputs) / np.exp(outputs).sum(axis=1, keepdims=True) if fused else outputs
        return -(smoothed * np.log(p)).sum(axis=1)
    smoothed = targets * (1 - s) + s / 2
    p = 1 / (1 + np.exp(-outputs)) if fused else outputs
    return -(smoothed * np.log(p) + (1 - smoothed) * np.log(1 - p)).mean(axis=1)


@pytest.mark.parametrize("backend", ["reference", "cpu"])
@pytest.mark.parametrize("loss_name, fused", [("cross_entropy", True),
                                              ("cross_entropy", False),
                                              ("binary_cross_entropy", True),
                                              ("binary_cross_entropy", False)],
                         ids=["ce-softmax", "ce-probabilities", "bce-sigmoid",
                              "bce-probabilities"])
def test_label_smoothing_is_kerass(loss_name, fused, backend, random_state):
    """Each sample's loss against the formula, its gradient against finite differences of the
    mean loss, the accuracy that of the targets as given (dlcore had no label_smoothing: a
    Keras model compiled with it loaded uncompiled)."""
    loss = get_loss({"name": loss_name, "label_smoothing": 0.2})
    outputs, targets = outputs_and_targets(loss, fused, random_state)
    grad, row_loss, row_correct = run(loss, fused, outputs.astype(np.float32),
                                      targets.astype(np.float32), backend)
    np.testing.assert_allclose(row_loss, smoothed_by_formula(loss_name, outputs, targets, 0.2,
                                                             fused), rtol=1e-5)
    step = 1e-6
    for index in [(0, 0), (2, 1), (4, 3)]:
        shifted = outputs.copy()
        shifted[index] += step
        numeric = (smoothed_by_formula(loss_name, shifted, targets, 0.2, fused).mean()
                   - smoothed_by_formula(loss_name, outputs, targets, 0.2, fused).mean()) / step
        assert grad[index] == pytest.approx(numeric, rel=1e-3, abs=1e-5)
    _, _, plain_correct = run(get_loss(loss_name), fused, outputs.astype(np.float32),
                              targets.astype(np.float32), backend)
    np.testing.assert_array_equal(row_correct, plain_correct)
    assert get_loss(loss.get_config()).label_smoothing == pytest.approx(0.2)
    with pytest.raises(ValueError, match="label_smoothing"):
        get_loss({"name": loss_name, "label_smoothing": 1.5})


@pytest.mark.parametrize("function, loss_name", [
    (dlcore.losses.categorical_crossentropy, "cross_entropy"),
    (dlcore.losses.binary_crossentropy, "binary_cross_entropy")])
def test_kerass_loss_functions_take_label_smoothing(function, loss_name, random_state):
    """keras.losses.categorical_crossentropy(y, p, label_smoothing=s), called on arrays, and
    its binary twin: each sample's loss of the smoothed targets (the keyword was refused)."""
    outputs, targets = outputs_and_targets(get_loss(loss_name), False, random_state)
    np.testing.assert_allclose(function(targets, outputs, label_smoothing=0.2),
                               smoothed_by_formula(loss_name, outputs, targets, 0.2, False),
                               rtol=1e-10)


def test_a_loss_object_called_on_arrays_gives_kerass_batch_loss(random_state):
    """loss_fn = CategoricalCrossentropy(); loss_fn(y, p): Keras's loss objects are callable
    and give the batch's loss, the mean of each sample's -sum_j y_j log p_j (lecture
    "Supervised learning", "How Good is a Network?"); with sample_weight the weighted sum
    over n (Keras's "sum_over_batch_size"). dlcore's were not callable (TypeError)."""
    probabilities = random_state.dirichlet(np.ones(4), 5)
    labels = np.array([0, 3, 1, 2, 2])
    by_formula = -np.log(probabilities[np.arange(5), labels])
    weights = np.array([1.0, 0.5, 2.0, 0.0, 1.0])
    loss_fn = CategoricalCrossentropy()
    assert loss_fn(np.eye(4)[labels], probabilities) == pytest.approx(by_formula.mean())
    assert loss_fn(labels, probabilities) == pytest.approx(by_formula.mean())
    assert loss_fn(labels, probabilities, sample_weight=weights) == pytest.approx(
        (weights * by_formula).sum() / 5)
    logits = np.log(probabilities) + 3.0       # the same softmax
    assert dlcore.losses.SparseCategoricalCrossentropy(from_logits=True)(
        labels, logits) == pytest.approx(by_formula.mean())
    with pytest.raises(ValueError, match=r"sample_weight has shape \(2,\).*shape \(5,\)"):
        loss_fn(labels, probabilities, sample_weight=[1.0, 2.0])


def test_kerass_sparse_categorical_crossentropy_function_takes_integer_labels(random_state):
    """keras.losses.sparse_categorical_crossentropy(labels, p): each sample's -log p_label,
    and compile(loss=...) takes it (it did not exist)."""
    probabilities = random_state.dirichlet(np.ones(3), 4)
    labels = np.array([2, 0, 1, 2])
    np.testing.assert_allclose(
        dlcore.losses.sparse_categorical_crossentropy(labels, probabilities),
        -np.log(probabilities[np.arange(4), labels]), rtol=1e-12)
    assert get_loss(dlcore.losses.sparse_categorical_crossentropy).get_config() == \
        "sparse_categorical_crossentropy"
    with pytest.raises(ValueError, match=r"whole numbers in \[0, 3\)"):
        dlcore.losses.sparse_categorical_crossentropy(np.array([2, 0, 3, 2]), probabilities)


def test_a_loss_object_takes_one_target_per_sample_for_a_single_output():
    """BinaryCrossentropy()(y, p) with labels (n,) and a sigmoid's (n, 1) outputs, as Keras's
    loss objects take them: dlcore read the labels as one row and refused the shapes."""
    labels = np.array([0.0, 1.0, 1.0, 0.0])
    outputs = np.array([[0.2], [0.7], [0.9], [0.4]])
    by_formula = -np.log(np.where(labels == 1, outputs[:, 0], 1 - outputs[:, 0])).mean()
    assert BinaryCrossentropy()(labels, outputs) == pytest.approx(by_formula)
    assert MeanSquaredError()(labels, outputs) == pytest.approx(
        ((outputs[:, 0] - labels) ** 2).mean())


def test_a_categorical_loss_of_rows_not_summing_to_one_and_a_scalar_weight_are_kerass():
    """Keras's categorical cross-entropies divide probability rows by their sum before the
    log (a student's hand-made p = [0.1, 0.3, 0.1] is [0.2, 0.6, 0.2]), and Keras's loss
    objects take a scalar ``sample_weight`` as a factor of the loss. dlcore took the log of
    the raw rows (-log 0.3 for Keras's -log 0.6) and refused the scalar weight."""
    targets = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    raw = np.array([[0.1, 0.3, 0.1], [0.5, 0.25, 0.25]])
    expected = -np.log([0.6, 0.5])
    np.testing.assert_allclose(dlcore.losses.categorical_crossentropy(targets, raw), expected,
                               rtol=1e-12)
    np.testing.assert_allclose(dlcore.losses.sparse_categorical_crossentropy([1, 0], raw),
                               expected, rtol=1e-12)
    assert CategoricalCrossentropy()(targets, raw) == pytest.approx(expected.mean())
    assert CategoricalCrossentropy()(targets, raw, sample_weight=2.5) == pytest.approx(
        2.5 * expected.mean())
    assert MeanSquaredError()(targets, raw, sample_weight=0.5) == pytest.approx(
        0.5 * ((raw - targets) ** 2).mean())


def test_a_loss_of_maps_called_on_arrays_says_what_gives_the_per_pixel_loss():
    """CategoricalCrossentropy()(y, p) on (n, C, H, W) maps said "flatten each sample's outputs
    first", which gives one softmax over the whole map, not Keras's loss per pixel (a number
    H W times too large); it now points to evaluate. For the mean squared error flattening is
    right and still advised."""
    maps = np.full((2, 3, 2, 2), 1 / 3)
    with pytest.raises(ValueError, match=r"one distribution per row; model.evaluate\(x, y\) "
                                         r"reports the loss of \(n, C, H, W\) maps"):
        CategoricalCrossentropy()(maps, maps)
    with pytest.raises(ValueError, match="flatten each sample's outputs first"):
        MeanSquaredError()(maps, maps)


def test_a_loss_object_takes_kerass_reduction_when_called_and_compile_refuses_it():
    """Keras's custom training loops write ``CategoricalCrossentropy(reduction=None)`` for
    each sample's loss (or ``"sum"``); dlcore's loss objects died with ``TypeError: unexpected
    keyword argument 'reduction'``. Called, they now reduce as Keras's do; ``compile`` trains
    on the batch mean and refuses another reduction in one line rather than ignore it."""
    targets = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    outputs = np.array([[0.2, 0.8], [0.6, 0.4], [0.5, 0.5]])
    weights = np.array([1.0, 2.0, 0.0])
    each = -np.log([0.8, 0.6, 0.5])
    np.testing.assert_allclose(CategoricalCrossentropy(reduction=None)(targets, outputs), each,
                               rtol=1e-12)
    np.testing.assert_allclose(CategoricalCrossentropy(reduction="none")(
        targets, outputs, sample_weight=weights), weights * each, rtol=1e-12)
    assert CategoricalCrossentropy(reduction="sum")(targets, outputs) == pytest.approx(
        each.sum())
    assert MeanSquaredError(reduction="mean_with_sample_weight")(
        targets, outputs, sample_weight=weights) == pytest.approx(
        (weights * ((outputs - targets) ** 2).mean(axis=1)).sum() / weights.sum())
    with pytest.raises(ValueError, match="reduction must be one of"):
        BinaryCrossentropy(reduction="max")
    model = dlcore.Sequential([Dense(2, activation="softmax")], input_shape=(3,))
    with pytest.raises(ValueError, match=r"reduction='sum'.*compile trains on the mean"):
        model.compile(loss=CategoricalCrossentropy(reduction="sum"), optimizer="sgd")


def test_a_loss_function_shapes_its_result_as_kerass():
    """Keras's loss functions reduce the last axis: labels (n, 1) beside predictions (n,)
    (``model.predict(x).ravel()``) are one output per sample, and a 1-D pair is one sample,
    whose loss is a number. dlcore read 1-D predictions as one row: it refused the first
    ("y_true has shape (3, 1) and y_pred (1, 3)", shapes the user never gave) and gave the
    second as a (1,) array."""
    labels = np.array([[1.0], [0.0], [1.0]])
    predictions = np.array([0.5, 0.25, 0.75])
    np.testing.assert_allclose(dlcore.losses.mean_squared_error(labels, predictions),
                               (predictions - labels[:, 0]) ** 2, rtol=1e-12)
    by_formula = -np.log([0.5, 0.75, 0.75])
    np.testing.assert_allclose(dlcore.losses.binary_crossentropy(labels, predictions),
                               by_formula, rtol=1e-12)
    assert BinaryCrossentropy()(labels, predictions) == pytest.approx(by_formula.mean())
    one = dlcore.losses.categorical_crossentropy(np.array([0.0, 1.0, 0.0]),
                                                 np.array([0.2, 0.5, 0.3]))
    assert np.shape(one) == () and one == pytest.approx(-np.log(0.5))
    one = dlcore.losses.sparse_categorical_crossentropy(1, np.array([0.2, 0.5, 0.3]))
    assert np.shape(one) == () and one == pytest.approx(-np.log(0.5))
    assert np.shape(CategoricalCrossentropy(reduction=None)(np.array([0.0, 1.0]),
                                                            np.array([0.4, 0.6]))) == ()


def test_a_loss_function_clips_float32_predictions_at_float32s_bound_as_kerass():
    """Keras's loss functions clip probabilities to [1e-7, 1 - 1e-7] in the predictions'
    precision: a saturated float32 sigmoid's 1.0 beside the label 0 costs
    -log(1 - float32(1 - 1e-7)) = 15.94, as dlcore's float32 kernels clip. Called on arrays,
    dlcore clipped in float64 (16.12): 0.5% off Keras for each saturated output."""
    labels = np.array([[0.0], [1.0], [1.0]])
    predictions = np.array([[1.0], [0.0], [0.5]], dtype=np.float32)
    upper = np.float32(1) - np.float32(1e-7)
    expected = -np.log([1 - np.float64(upper), np.float64(np.float32(1e-7)), 0.5])
    np.testing.assert_allclose(dlcore.losses.binary_crossentropy(labels, predictions),
                               expected, rtol=1e-7)
    assert BinaryCrossentropy()(labels, predictions) == pytest.approx(expected.mean(), rel=1e-7)
    # float64 predictions keep float64's bound: -log(1e-7)
    assert dlcore.losses.binary_crossentropy(labels[0], predictions[0].astype(np.float64)) \
        == pytest.approx(-np.log(1e-7), rel=1e-9)


@pytest.mark.parametrize("loss", [dlcore.losses.binary_crossentropy,
                                  BinaryCrossentropy(reduction=None),
                                  dlcore.losses.categorical_crossentropy,
                                  CategoricalCrossentropy(reduction=None)],
                         ids=["binary_crossentropy", "BinaryCrossentropy",
                              "categorical_crossentropy", "CategoricalCrossentropy"])
def test_float16_predictions_are_clipped_as_their_float32_values_as_kerass_loss_objects(loss):
    """float16's 1 - 1e-7 is 1.0, so a clip in float16 leaves a saturated 1.0: the float64
    clip behind it then cost 16.12 beside the label 0 where Keras's loss objects, compile and
    evaluate (which read float16 in float32) give float32's 15.94, and the two saturated ends
    swapped their costs. Now float16 predictions cost what their float32 values do."""
    labels = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    predictions = np.array([[1.0, 0.0], [0.0, 1.0], [0.3, 0.7]], dtype=np.float16)
    as_float32 = loss(labels, predictions.astype(np.float32))
    np.testing.assert_allclose(loss(labels, predictions), as_float32, rtol=1e-12)


def test_a_saturated_float16_sigmoid_beside_the_label_0_costs_float32s_bound():
    upper = np.float32(1) - np.float32(1e-7)
    assert dlcore.losses.binary_crossentropy(np.array([0.0]), np.array([1.0], np.float16)) \
        == pytest.approx(-np.log(1 - np.float64(upper)), rel=1e-7)


#: float32's bounds of Keras's clip [1e-7, 1 - 1e-7]: 1 - 1e-7 is 1 - 1.19e-7 there
FLOAT32_LOW, FLOAT32_HIGH = np.float64(np.float32(1e-7)), \
    np.float64(np.float32(1) - np.float32(1e-7))
#: -log(1 - p) of a saturated sigmoid's p = 1.0 beside the label 0, as Keras's clip leaves it
SATURATED_AT_FLOAT32 = -np.log(1 - FLOAT32_HIGH)


@pytest.mark.parametrize("kind", ["float64", "list", "integers"])
def test_a_loss_object_clips_at_float32s_bound_whatever_the_predictions_type_as_kerass(kind):
    """Keras's loss objects read y_pred in floatx, float32 (``convert_to_tensor(y_pred,
    dtype=self.dtype)``), whatever it is: a saturated 1.0 beside the label 0 costs 15.94,
    a softmax's 1.0 beside its label 1.19e-7. dlcore's objects clipped float64 arrays, lists
    and integers in float64: 16.12 and 1.0e-7."""
    def given(rows):
        return {"float64": np.array(rows, dtype=np.float64), "list": rows,
                "integers": np.array(rows, dtype=np.int64)}[kind]
    labels = np.array([[0.0, 1.0]])
    binary = BinaryCrossentropy(reduction=None)(labels, given([[1, 0]]))
    np.testing.assert_allclose(binary, [(SATURATED_AT_FLOAT32 - np.log(FLOAT32_LOW)) / 2],
                               rtol=1e-7)
    categorical = CategoricalCrossentropy(reduction=None)(labels, given([[0, 1]]))
    np.testing.assert_allclose(categorical, [-np.log(FLOAT32_HIGH)], rtol=1e-6)


def test_a_loss_function_reads_a_list_in_float32_and_a_float64_array_in_float64_as_kerass():
    """Keras's functions keep an array's precision but read a Python list in float32 (its
    default float): ``binary_crossentropy([0.0], [1.0])`` is 15.94 in Keras, was float64's
    16.12 here."""
    assert dlcore.losses.binary_crossentropy([0.0], [1.0]) \
        == pytest.approx(SATURATED_AT_FLOAT32, rel=1e-7)
    assert dlcore.losses.binary_crossentropy(np.array([0.0]), np.array([1.0])) \
        == pytest.approx(-np.log(1e-7), rel=1e-9)


def test_a_distillation_object_called_on_float64_arrays_is_its_kernels_loss():
    """Distillation clips only the low end of the student's probabilities (its log is a
    logit), its kernels as its reference: called on float64 arrays the loss object is the
    kernels' loss, as it was before the float32 clip of Keras's cross-entropies, which also
    cut a saturated 1.0 to 1 - 1e-7 here (a loss 5e-8 off its fit's)."""
    student = np.array([[1.0, 0.0, 0.0], [0.2, 0.7, 0.1]])
    teacher = np.array([[0.9, 0.05, 0.05], [0.1, 0.3, 0.6]])
    loss = Distillation(temperature=2.0)
    be = get_backend("cpu")
    grad, row_loss, row_correct = (be.empty(shape, np.float64)
                                   for shape in ((2, 3), (2,), (2,)))
    loss.loss_and_gradient(be, be.asarray(student, np.float64), be.asarray(teacher, np.float64),
                           grad, row_loss, row_correct, False)
    assert loss(teacher, student) == pytest.approx(be.to_numpy(row_loss).mean(), rel=1e-13)


@pytest.mark.parametrize("label_shape, prediction_shape", [((4, 3), (4,)), ((4,), (4, 3)),
                                                           ((3,), (4,))])
def test_a_loss_function_refuses_shapes_that_do_not_match_naming_the_shapes_given(
        label_shape, prediction_shape):
    # labels (4, 3) beside predictions (4,) were refused as "y_pred (1, 4)", a shape the
    # user never gave (the predictions read as one sample)
    labels, predictions = np.ones(label_shape), np.full(prediction_shape, 0.5)
    with pytest.raises(ValueError, match=re.escape(
            f"y_true has shape {label_shape} and y_pred {prediction_shape}")):
        dlcore.losses.mean_squared_error(labels, predictions)
def test_a_sparse_cross_entropy_refuses_what_are_not_labels_of_its_columns_as_kerass():
    """Keras's sparse cross-entropy (function and object) reads y_true as class labels and
    refuses labels beyond y_pred's columns ("Target 1 is out of bounds"). dlcore's gave a
    number: 0 for labels [0, 1, 1] beside one column of probabilities (a sigmoid's (n, 1),
    or its ``.ravel()`` beside labels (n, 1)), and for a 1-D pair of n labels and n
    probabilities the labels read as one row of targets (1.64)."""
    labels, column = np.array([0, 1, 1]), np.array([[0.2], [0.7], [0.9]])
    for y_true, y_pred in [(labels, column), (labels[:, None], column.ravel())]:
        with pytest.raises(ValueError, match=r"y_pred has one column: .*binary_crossentropy"):
            dlcore.losses.sparse_categorical_crossentropy(y_true, y_pred)
        with pytest.raises(ValueError, match=r"y_pred has one column"):
            dlcore.losses.SparseCategoricalCrossentropy()(y_true, y_pred)
    with pytest.raises(ValueError, match=r"^y_true holds 3 labels, which must be whole numbers "
                                         r"in \[0, 2\) for the 2 columns of y_pred$"):
        dlcore.losses.sparse_categorical_crossentropy(labels * 2, np.hstack([column, column]))
    with pytest.raises(ValueError, match=r"^y_true has shape \(3,\) beside y_pred \(3,\): a "
                                         r"sparse cross-entropy takes one class label per "
                                         r"row of y_pred \(n, k\).*$"):
        dlcore.losses.sparse_categorical_crossentropy(labels, column.ravel())
    # one-hot rows stay categorical's
    np.testing.assert_allclose(
        dlcore.losses.categorical_crossentropy(np.eye(2)[[1, 0]], [[0.4, 0.6], [0.5, 0.5]]),
        -np.log([0.6, 0.5]), rtol=1e-12)


@pytest.mark.parametrize("loss", [dlcore.losses.categorical_crossentropy,
                                  dlcore.losses.CategoricalCrossentropy(),
                                  dlcore.losses.sparse_categorical_crossentropy])
def test_a_categorical_cross_entropy_of_one_column_is_refused_as_compile_refuses_it(loss):
    """A softmax of one column is 1 whatever the data, so a categorical cross-entropy of one
    column is 0 whatever the labels (Keras warns, or refuses unlike shapes): compile refuses
    it in one line, but called on arrays it gave 0 for labels (n, 1) beside a sigmoid's
    ``predict(x).ravel()`` (refused before this pass expanded them) and beside (n, 1)
    probabilities. Now the same line as compile's, naming binary_crossentropy."""
    for y_true, y_pred in [(np.array([[0.0], [0.0]]), np.array([0.3, 0.8])),
                           (np.array([[0.0], [0.0]]), np.array([[0.3], [0.8]]))]:
        with pytest.raises(ValueError, match=r"^y_pred has one column: a categorical cross-"
                                             r"entropy compares 2 or more classes.*binary_"
                                             r"crossentropy.*$"):
            loss(y_true, y_pred)
