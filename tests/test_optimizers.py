"""Update rules of the optimisers.

Oracles: the rules worked by hand on small vectors (the momentum of lecture "Supervised
learning", Adam's first step of size eta, AdaGrad's eta / sqrt(sum g^2)); the kernel bodies
against the NumPy reference."""
import numpy as np
import pytest

from conftest import requires_cuda
from dlcore.backend import get_backend
from dlcore.optimizers import (
    SGD,
    Adadelta,
    AdaGrad,
    Adam,
    Adamax,
    AdamW,
    Ftrl,
    Lion,
    Nadam,
    Parameter,
    RMSProp,
    get_optimizer,
)
from dlcore.regularizers import MaxNorm


def run(optimizer, gradients, theta0, backend="reference", **parameter_options):
    be = get_backend(backend)
    theta = be.asarray(np.array(theta0, dtype=np.float32))
    grad = be.zeros(theta.shape)
    parameter = Parameter("layer/kernel", theta, grad, **parameter_options)
    optimizer.build([parameter], be)
    for g in gradients:
        be.copy_into(grad, np.asarray(g, dtype=np.float32))
        optimizer.apply([parameter])
    return be.to_numpy(theta), {k: be.to_numpy(v) for k, v in parameter.slots.items()}


def test_momentum_follows_the_supervised_learning_lecture():
    """Lecture "Supervised learning", "Optimization": Delta <- 0.9 Delta + g; theta <- theta -
    eta Delta, twice."""
    theta, slots = run(SGD(0.1, momentum=0.9), [[1.0], [2.0]], [0.0])
    # Delta_1 = 1, theta_1 = -0.1; Delta_2 = 0.9 + 2 = 2.9, theta_2 = -0.1 - 0.29
    np.testing.assert_allclose(theta, [-0.39], rtol=1e-6)
    np.testing.assert_allclose(slots["velocity"], [2.9], rtol=1e-6)


def test_nesterov_looks_ahead_along_the_velocity():
    theta, _ = run(SGD(0.1, momentum=0.9, nesterov=True), [[1.0]], [0.0])
    np.testing.assert_allclose(theta, [-0.1 * (1 + 0.9 * 1)], rtol=1e-6)


def test_adam_first_step_has_the_size_of_the_learning_rate():
    theta, _ = run(Adam(0.01), [[3.0, -0.5]], [0.0, 0.0])
    np.testing.assert_allclose(theta, [-0.01, 0.01], rtol=1e-4)


def test_adagrad_divides_by_the_root_of_the_summed_squares():
    theta, _ = run(AdaGrad(1.0, epsilon=1e-12), [[3.0], [4.0]], [0.0])
    np.testing.assert_allclose(theta, [-1.0 - 4.0 / 5.0], rtol=1e-6)


def test_rmsprop_divides_by_the_running_rms():
    theta, slots = run(RMSProp(0.1, rho=0.5, epsilon=1e-12), [[2.0]], [1.0])
    np.testing.assert_allclose(slots["mean_square"], [2.0])
    np.testing.assert_allclose(theta, [1.0 - 0.1 * 2.0 / np.sqrt(2.0)], rtol=1e-6)


def test_l2_weight_decay_adds_lambda_theta_to_the_gradient():
    theta, _ = run(SGD(0.1), [[0.0]], [2.0], l2=0.5)
    np.testing.assert_allclose(theta, [2.0 - 0.1 * 0.5 * 2.0])


def test_l1_weight_decay_adds_lambda_sign_theta():
    theta, _ = run(SGD(0.1), [[0.0, 0.0]], [2.0, -3.0], l1=0.5)
    np.testing.assert_allclose(theta, [2.0 - 0.05, -3.0 + 0.05])


def test_clipnorm_rescales_each_gradient_to_the_bound():
    theta, _ = run(SGD(1.0, clipnorm=1.0), [[3.0, 4.0]], [0.0, 0.0])
    np.testing.assert_allclose(theta, [-0.6, -0.8], rtol=1e-6)


@pytest.mark.parametrize("backend", ["reference", "cpu",
                                     pytest.param("cuda", marks=requires_cuda)])
def test_clipping_takes_the_gradient_of_the_cost_weight_decay_included(backend):
    """Keras clips the gradient of its loss with the regularisation losses in it: with a zero
    data gradient, theta = (3, 4) and lambda_2 = 1 the cost's gradient is (3, 4), clipped to
    (0.6, 0.8) (it was left unclipped: theta went to 0). global_clipnorm likewise, over both
    tensors: (3, 4) and (0, 0) with lambda_1 = 1 on (0, 0) -> joint norm 5."""
    theta, _ = run(SGD(1.0, clipnorm=1.0), [[0.0, 0.0]], [3.0, 4.0], backend, l2=1.0)
    np.testing.assert_allclose(theta, [2.4, 3.2], rtol=1e-6)
    theta, _ = run(SGD(1.0, global_clipnorm=1.0), [[0.0, 0.0]], [3.0, -4.0], backend, l1=2.5)
    # cost gradient 2.5 * sign(theta) = (2.5, -2.5), norm 3.54 -> scaled by 1 / 3.54
    np.testing.assert_allclose(theta, [3.0 - 0.5 ** 0.5, -4.0 + 0.5 ** 0.5], rtol=1e-6)


def test_max_norm_rescales_long_units_only():
    theta, _ = run(SGD(0.0 + 1e-9), [[[0.0, 0.0], [0.0, 0.0]]], [[3.0, 0.1], [4.0, 0.1]],
                   constraint=MaxNorm(1.0), units_axis=1)
    np.testing.assert_allclose(theta, [[0.6, 0.1], [0.8, 0.1]], rtol=1e-5)


def adam_family_by_formula(gradients, theta0, rate, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                           weight_decay=0.0, amsgrad=False, nadam=False):
    """Keras 3's steps written out in float64 (its adam.py, adamw.py via the base optimiser's
    weight decay, nadam.py): Adam's alpha = eta sqrt(1 - b2^t) / (1 - b1^t) before
    m / (sqrt(v) + eps); AdamW's theta <- theta - eta lambda theta first; AMSGrad's running
    maximum of v; Nadam's momentum schedule and its running product, as Keras keeps it."""
    theta = np.array(theta0, dtype=np.float64)
    m, v, v_max, u_product = np.zeros_like(theta), np.zeros_like(theta), \
        np.zeros_like(theta), 1.0
    for t, g in enumerate(np.asarray(gradients, dtype=np.float64), start=1):
        theta = theta - theta * weight_decay * rate
        m = m + (g - m) * (1 - beta_1)
        v = v + (g * g - v) * (1 - beta_2)
        if nadam:
            u_t = beta_1 * (1 - 0.5 * 0.96 ** t)
            u_next = beta_1 * (1 - 0.5 * 0.96 ** (t + 1))
            u_product *= u_t
            m_hat = u_next * m / (1 - u_product * u_next) + (1 - u_t) * g / (1 - u_product)
            theta = theta - m_hat * rate / (np.sqrt(v / (1 - beta_2 ** t)) + epsilon)
            continue
        v_max = np.maximum(v_max, v)
        alpha = rate * np.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)
        theta = theta - m * alpha / (np.sqrt(v_max if amsgrad else v) + epsilon)
    return theta


#: gradients that shrink, so that AMSGrad's largest v and Adam's v part; of several signs and
#: sizes so that every term of Nadam's m^ counts
SHRINKING = [[3.0, -0.2, 1.0], [0.1, 0.4, -2.0], [0.05, -0.3, 0.01], [0.02, 1.0, 0.5]]


@pytest.mark.parametrize("backend", ["reference", "cpu"])
@pytest.mark.parametrize("make, formula", [
    (lambda: Adam(0.1, amsgrad=True, beta_2=0.5, epsilon=1e-3, epsilon_form="keras"),
     {"amsgrad": True, "beta_2": 0.5, "epsilon": 1e-3}),
    (lambda: AdamW(0.1, weight_decay=0.3, epsilon_form="keras"), {"weight_decay": 0.3}),
    (lambda: AdamW(0.1, weight_decay=0.3, amsgrad=True, beta_1=0.5, beta_2=0.5,
                   epsilon_form="keras"),
     {"weight_decay": 0.3, "amsgrad": True, "beta_1": 0.5, "beta_2": 0.5}),
    (lambda: Nadam(0.1, epsilon=1e-3), {"nadam": True, "epsilon": 1e-3}),
    (lambda: Nadam(0.1, beta_1=0.6, beta_2=0.9),
     {"nadam": True, "beta_1": 0.6, "beta_2": 0.9}),
], ids=["amsgrad", "adamw", "adamw-amsgrad", "nadam", "nadam-betas"])
def test_adams_variants_take_kerass_steps(make, formula, backend):
    """AMSGrad, AdamW and Nadam over four updates, on the NumPy reference and the cpu's
    kernel, against Keras's equations written out (dlcore had none of them: a Keras model
    compiled with one loaded uncompiled)."""
    theta0 = [1.0, -2.0, 0.5]
    theta, slots = run(make(), SHRINKING, theta0, backend)
    np.testing.assert_allclose(theta, adam_family_by_formula(SHRINKING, theta0, 0.1, **formula),
                               rtol=2e-6, atol=1e-6)
    # the variants differ from Adam's steps by more than that
    plain = adam_family_by_formula(SHRINKING, theta0, 0.1, **{
        key: value for key, value in formula.items()
        if key not in ("amsgrad", "weight_decay", "nadam")})
    assert np.abs(theta - plain).max() > 1e-3
    if formula.get("amsgrad"):
        v = slots["v"]
        assert np.all(slots["v_max"] >= v) and np.any(slots["v_max"] > v)


def test_amsgrad_keeps_its_largest_v_as_a_slot_of_its_own():
    assert Adam().slot_names == ("m", "v") and Adam(amsgrad=True).slot_names == ("m", "v", "v_max")
    assert Nadam().slot_names == ("m", "v") and "epsilon_form" not in Nadam().get_config()
    assert isinstance(get_optimizer("adamw"), AdamW) and get_optimizer("nadam").name == "nadam"
    restored = get_optimizer({"class_name": "adamw", "config": AdamW(
        0.01, weight_decay=0.2, amsgrad=True).get_config()})
    assert restored.weight_decay == 0.2 and restored.amsgrad
    with pytest.raises(TypeError, match="amsgrad must be True or False"):
        Adam(amsgrad="yes")
    with pytest.raises(ValueError, match="weight_decay"):
        AdamW(weight_decay=-0.1)


def test_optimizers_are_found_by_name():
    assert isinstance(get_optimizer("adam"), Adam)
    with pytest.raises(ValueError, match="unknown optimizer"):
        get_optimizer("lbfgs")


OPTIMIZERS = [lambda: SGD(0.05, momentum=0.9, nesterov=True, clipnorm=2.0), lambda: AdaGrad(0.1),
              lambda: RMSProp(0.01), lambda: Adam(0.01, global_clipnorm=3.0),
              lambda: RMSProp(0.01, epsilon=0.5, epsilon_form="keras"),
              lambda: Adam(0.01, epsilon=0.5, epsilon_form="keras"),
              lambda: SGD(0.05, momentum=0.9, momentum_form="keras"),
              lambda: SGD(0.05, momentum=0.9, nesterov=True, clipnorm=2.0,
                          momentum_form="keras"),
              lambda: Adam(0.01, amsgrad=True, clipnorm=1.0),
              lambda: AdamW(0.01, weight_decay=0.5, epsilon_form="keras"),
              lambda: Nadam(0.01, global_clipnorm=3.0),
              lambda: SGD(0.05, momentum=0.9, weight_decay=0.2),
              lambda: AdaGrad(0.1, weight_decay=0.2),
              lambda: RMSProp(0.01, epsilon_form="keras", weight_decay=0.2),
              lambda: Nadam(0.01, weight_decay=0.2),
              lambda: AdaGrad(0.1, epsilon=0.5, epsilon_form="keras",
                              initial_accumulator_value=0.1),
              lambda: RMSProp(0.01, momentum=0.9, centered=True, weight_decay=0.2),
              lambda: RMSProp(0.01, momentum=0.9, epsilon_form="keras", clipnorm=1.0),
              lambda: RMSProp(0.01, centered=True, epsilon=0.5, epsilon_form="keras")]
OPTIMIZER_IDS = ["sgd", "adagrad", "rmsprop", "adam", "rmsprop-keras", "adam-keras",
                 "sgd-keras", "sgd-nesterov-keras", "amsgrad", "adamw-keras", "nadam",
                 "sgd-decay", "adagrad-decay", "rmsprop-decay", "nadam-decay", "adagrad-keras",
                 "rmsprop-momentum-centred", "rmsprop-momentum-keras", "rmsprop-centred-keras"]
#: every rule, for the tests of the rules themselves (the cpu's one launch over all tensors is
#: the same loop around any rule: it is tested on the ones above, without compiling its
#: parallel kernel for two more)
EVERY_RULE = OPTIMIZERS + [lambda: Adamax(0.01, clipnorm=1.0),
                           lambda: Adadelta(1.0, weight_decay=0.2),
                           lambda: Lion(0.01, global_clipnorm=3.0, weight_decay=0.2),
                           lambda: Ftrl(0.1, l1_regularization_strength=0.01,
                                        l2_regularization_strength=0.1, beta=0.5,
                                        l2_shrinkage_regularization_strength=0.05)]
EVERY_RULE_IDS = OPTIMIZER_IDS + ["adamax", "adadelta", "lion", "ftrl"]


@pytest.mark.parametrize("backend, shape, units_axis", [
    ("cpu", (7, 5), 1), pytest.param("cuda", (3, 4), 0, marks=requires_cuda)])
@pytest.mark.parametrize("make", EVERY_RULE, ids=EVERY_RULE_IDS)
def test_kernels_follow_the_reference(make, backend, shape, units_axis, random_state):
    """cpu kernels on a Dense-like kernel (units are columns), cuda (simulator, tiny) on a
    Conv-like one (units are rows)."""
    gradients = random_state.standard_normal((3,) + shape)
    theta0 = random_state.standard_normal(shape)
    options = dict(l1=0.01, l2=0.1, constraint=MaxNorm(1.5), units_axis=units_axis)
    expected, _ = run(make(), gradients, theta0, "reference", **options)
    got, _ = run(make(), gradients, theta0, backend, **options)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make", [lambda: Adam(0.01), lambda: Nadam(0.01)],
                         ids=["adam", "nadam"])
def test_the_adam_kernels_moments_are_the_references_to_float32_rounding(make, random_state):
    """The kernels computed 1 - b2 in float32, 1 - float32(0.999) = 0.00099998713: v 1.3e-5
    off PyTorch's, Keras's and the reference's, whose 1 - b2 is rounded once (float32(0.001)),
    and five Adam steps on the cpu 3.3e-7 off PyTorch's where the reference is 3e-8 off."""
    gradients = random_state.standard_normal((3, 7, 5))
    theta0 = random_state.standard_normal((7, 5))
    expected_theta, expected = run(make(), gradients, theta0, "reference")
    theta, slots = run(make(), gradients, theta0, "cpu")
    for name in ("v", "m"):
        np.testing.assert_allclose(slots[name], expected[name], rtol=5e-7, err_msg=name)
    np.testing.assert_allclose(theta, expected_theta, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("make", [lambda: RMSProp(0.01, rho=0.999),
                                  lambda: RMSProp(0.01, rho=0.999, epsilon_form="keras"),
                                  lambda: Adadelta(1.0, rho=0.999)],
                         ids=["rmsprop", "rmsprop-keras", "adadelta"])
def test_the_running_means_kernels_are_the_references_to_float32_rounding(make, random_state):
    """As Adam's: the RMSprop and Adadelta kernels computed 1 - rho in float32, 1 -
    float32(0.999) = 0.00099998713, their running means 1.3e-5 off the reference's, PyTorch's
    and Keras's (20 RMSprop steps 1.3e-5 from PyTorch's on the cpu, 2.4e-7 on the
    reference)."""
    gradients = random_state.standard_normal((3, 7, 5))
    theta0 = random_state.standard_normal((7, 5))
    expected_theta, expected = run(make(), gradients, theta0, "reference")
    theta, slots = run(make(), gradients, theta0, "cpu")
    for name, values in expected.items():
        np.testing.assert_allclose(slots[name], values, rtol=5e-7, err_msg=name)
    np.testing.assert_allclose(theta, expected_theta, rtol=1e-6, atol=1e-7)


def _keras_steps(gradients, theta0, rate, epsilon, nadam):
    """Keras 3's ``Adam.update_step`` and ``Nadam.update_step`` line by line, in float32 as
    Keras computes them for float32 weights (its powers b^t and 0.96^t included)."""
    f = np.float32
    theta, m, v = f(theta0), np.zeros_like(f(theta0)), np.zeros_like(f(theta0))
    b1, b2, lr, product = f(0.9), f(0.999), f(rate), f(1)
    for step, g in enumerate(f(gradients), start=1):
        t = f(step)
        m += (g - m) * f(1 - 0.9)
        v += (g * g - v) * f(1 - 0.999)
        if nadam:
            mu, mu_next = (b1 * (f(1) - f(0.5) * f(0.96) ** power) for power in (t, t + f(1)))
            product = product * mu
            m_hat = mu_next * m / (f(1) - product * mu_next) + (f(1) - mu) * g / (f(1) - product)
            theta -= m_hat * lr / (np.sqrt(v / (f(1) - b2 ** t)) + f(epsilon))
        else:
            alpha = lr * np.sqrt(f(1) - b2 ** t) / (f(1) - b1 ** t)
            theta -= m * alpha / (np.sqrt(v) + f(epsilon))
    return theta


@pytest.mark.parametrize("backend", ["reference", "cpu"])
@pytest.mark.parametrize("nadam", [False, True], ids=["adam-keras", "nadam"])
def test_adams_keras_form_and_nadam_take_kerass_float32_steps(nadam, backend, random_state):
    """Keras computes 1 - b2^t in the weights' precision: float32's 1 - 0.999 is 1.3e-5 off,
    6.4e-6 of its first step; dlcore's Keras form (and Nadam, Keras's rule) computed it in
    float64, five steps of an MLP 3.8e-7 off Keras's (now 3e-8)."""
    # Nadam's first step only: later ones differ from this emulation by float32 roundings
    # (test_nadam_steps_as_kerass_to_float32_precision)
    gradients = random_state.standard_normal((1 if nadam else 4, 7, 5))
    theta0 = random_state.standard_normal((7, 5))
    optimizer = Nadam(0.01) if nadam else Adam(0.01, epsilon_form="keras")
    theta, _ = run(optimizer, gradients, theta0, backend)
    expected = _keras_steps(gradients, theta0, 0.01, 1e-7, nadam)
    np.testing.assert_allclose(theta - theta0, expected - theta0, rtol=1e-6)


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_nadam_steps_as_kerass_to_float32_precision(backend, random_state):
    """Keras's Nadam itself, 20 steps: within 4 float32 ulps of the weights' largest
    magnitude (measured: 1, as Adam's Keras form). Keras keeps its product of momenta P_t as
    a float32 running product, dlcore computes it from t in float64; taking Keras's float32
    product instead (tried) leaves that one ulp where it is: the rest is the order of
    Keras's operations (its torch backend divides m^'s two terms apart, and v by 1 - b2^t,
    where the kernel multiplies by coefficients computed once), itself not the same in
    Keras's other backends. Equal to float32 precision is what a state slot would not
    improve."""
    from test_io_keras import real_keras
    keras = real_keras()
    gradients = random_state.standard_normal((20, 7, 5)).astype(np.float32)
    theta0 = random_state.standard_normal((7, 5)).astype(np.float32)
    theirs, weights = keras.optimizers.Nadam(0.01), keras.Variable(theta0)
    for g in gradients:
        theirs.apply_gradients([(keras.ops.convert_to_tensor(g), weights)])
    expected = np.array(weights.numpy())
    theta, _ = run(Nadam(0.01), gradients, theta0, backend)
    ulp = float(np.spacing(np.float32(np.abs(expected).max())))
    np.testing.assert_allclose(theta, expected, rtol=0, atol=4 * ulp)


#: states whose decay (state * factor, gradient 0) gives: a subnormal, a normal number, a
#: subnormal again, a negative subnormal; NaN and infinity pass through
DECAYING = [1.2e-38, 2e-38, 1e-39, -1.2e-38, np.nan, np.inf]
SUBNORMAL_AFTER_DECAY = np.array([True, False, True, True, False, False])


@pytest.mark.parametrize("backend", ["cpu", pytest.param("cuda", marks=requires_cuda)])
@pytest.mark.parametrize("make, slot", [(lambda: SGD(0.1, momentum=0.9), "velocity"),
                                        (lambda: RMSProp(0.01, rho=0.9), "mean_square"),
                                        (lambda: Adam(0.01, beta_2=0.9), "m"),
                                        (lambda: Adam(0.01, beta_2=0.9), "v")],
                         ids=["sgd", "rmsprop", "adam m", "adam v"])
def test_the_kernels_flush_a_state_that_decays_below_the_smallest_normal_float32(
        make, slot, backend):
    """A state decaying with a zero gradient (a dead unit's) becomes 0 where the reference's
    becomes subnormal (slow on x86); everything else is the reference's."""
    def decayed(backend):
        be = get_backend(backend)
        parameter = Parameter("layer/kernel", be.asarray(np.zeros(6, np.float32)),
                              be.zeros((6,)))
        optimizer = make()
        optimizer.build([parameter], be)
        state = np.array(DECAYING, np.float32)
        if slot in ("v", "mean_square"):     # a mean square is never negative
            state = np.abs(state)
        be.copy_into(parameter.slots[slot], state)
        optimizer.apply([parameter])
        return be.to_numpy(parameter.slots[slot])

    expected, got = decayed("reference"), decayed(backend)
    tiny = np.finfo(np.float32).tiny
    assert np.all((np.abs(expected[SUBNORMAL_AFTER_DECAY]) < tiny)
                  & (expected[SUBNORMAL_AFTER_DECAY] != 0))       # the reference keeps them
    assert np.all(got[SUBNORMAL_AFTER_DECAY] == 0)
    np.testing.assert_array_equal(got[~SUBNORMAL_AFTER_DECAY], expected[~SUBNORMAL_AFTER_DECAY])


@pytest.mark.parametrize("make", OPTIMIZERS, ids=OPTIMIZER_IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_cpu_updates_every_tensor_in_one_launch_as_one_launch_each_would(
        make, dtype, random_state, monkeypatch):
    """The cpu's single launch over all the tensors (parallel above SERIAL_ELEMENTS, serial
    below) gives the numbers of one launch per tensor, bit for bit, each tensor with its own
    weight decay and clipping factor; a tensor added later is picked up."""
    from types import MethodType

    from dlcore.backend import cpu
    from dlcore.backend.kernel_backend import KernelBackend
    backend = get_backend("cpu")
    shapes = [(100, 200), (200,), (7, 3), (1,), (40, 1000)]

    def train(one_launch_each, n_tensors):
        if one_launch_each:
            monkeypatch.setattr(backend, "launch_tensors",
                                MethodType(KernelBackend.launch_tensors, backend))
        generator = np.random.default_rng(5)
        parameters = [Parameter(f"layer{i}/kernel", generator.standard_normal(shape).astype(dtype),
                                np.zeros(shape, dtype), l1=0.001 * i, l2=0.01 * (i % 2))
                      for i, shape in enumerate(shapes[:n_tensors])]
        optimizer = make()
        optimizer.build(parameters, backend)
        for step in range(3):
            if step == 2:      # a network grown after its first steps
                parameters.append(Parameter("late/bias", np.ones(5, dtype), np.zeros(5, dtype)))
                optimizer.build(parameters, backend)
            for parameter in parameters:
                parameter.grad[...] = generator.standard_normal(parameter.grad.shape)
            optimizer.apply(parameters)
        monkeypatch.undo()
        return [np.concatenate([p.value.ravel()] + [s.ravel() for s in p.slots.values()])
                for p in parameters]

    for n_tensors in (2, len(shapes)):   # 20,200 elements: serial; 60,222: parallel
        one_launch = train(False, n_tensors)
        for got, expected in zip(one_launch, train(True, n_tensors), strict=True):
            np.testing.assert_array_equal(got, expected)
    assert 20_200 < cpu.SERIAL_ELEMENTS <= 60_222


def test_a_copied_or_pickled_optimizer_updates_its_own_arrays(random_state):
    """The cpu keeps the addresses of the arrays it updates on the optimiser: a deep copy or a
    pickle of it (with its parameters) must update the copies, never the original arrays."""
    import copy
    import pickle
    backend = get_backend("cpu")
    parameters = [Parameter("dense/kernel", random_state.standard_normal((300, 200)).astype(
        np.float32), np.ones((300, 200), np.float32)),
                  Parameter("dense/bias", np.zeros(200, np.float32), np.ones(200, np.float32))]
    optimizer = SGD(0.1, momentum=0.9)
    optimizer.build(parameters, backend)
    optimizer.apply(parameters)
    original = [p.value.copy() for p in parameters]
    for clone in (copy.deepcopy, lambda thing: pickle.loads(pickle.dumps(thing))):
        optimizer_copy, parameters_copy = clone((optimizer, parameters))
        optimizer_copy.build(parameters_copy, backend)
        optimizer_copy.apply(parameters_copy)
        for before, parameter, copied in zip(original, parameters, parameters_copy):
            np.testing.assert_array_equal(parameter.value, before)      # untouched
            assert not np.array_equal(copied.value, before)             # the copy moved


@pytest.mark.parametrize("backend, shape", [("cpu", (7, 5)),
                                            pytest.param("cuda", (3, 4), marks=requires_cuda)])
@pytest.mark.parametrize("make", EVERY_RULE, ids=EVERY_RULE_IDS)
def test_a_float64_network_steps_in_float64_as_the_reference(make, backend, shape,
                                                             random_state):
    """The kernels took their settings (learning rate, betas, epsilon, weight decay, the
    parameters' L1/L2 and clipping factors) as float32 in float64 networks too: the cpu was
    ~1e-8 from the reference. Now float64 throughout, max-norm included: float64's
    precision (cuda: the simulator, tiny)."""
    gradients = random_state.standard_normal((3,) + shape)
    theta0 = random_state.standard_normal(shape)

    def trained(backend):
        be = get_backend(backend)
        theta = be.asarray(theta0.copy(), np.float64)   # the reference's is a view
        grad = be.zeros(shape, np.float64)
        parameter = Parameter("layer/kernel", theta, grad, l1=0.01, l2=0.1,
                              constraint=MaxNorm(1.5), units_axis=1)
        optimizer = make()
        optimizer.build([parameter], be)
        for g in gradients:
            be.copy_into(grad, g)
            optimizer.apply([parameter])
        return be.to_numpy(theta), {k: be.to_numpy(v) for k, v in parameter.slots.items()}

    expected, expected_slots = trained("reference")
    got, got_slots = trained(backend)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-14)
    for name, slot in expected_slots.items():
        np.testing.assert_allclose(got_slots[name], slot, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("activation, loss", [
    ("softmax", "cross_entropy"),
    ("softmax", "label_smoothing"),
    ("linear", "mse"),
    ("softmax", "distillation"),
    ("sigmoid", "binary_crossentropy"),
    ("softmax", "probabilities")])
def test_a_float64_network_trains_in_float64_as_the_reference(activation, loss):
    """A float64 network's step came from float32 numbers on the cpu: the softmax's sum of
    exponentials (its outputs ~6e-8 from the reference's), and the loss gradient's 1 / n,
    label smoothing's and distillation's factors, and the binary cross-entropies' and the
    cross-entropy of probabilities' logs in the loss. Now the cpu's losses and weights after a
    few steps are the reference's to float64's precision."""
    import dlcore
    from dlcore import layers, losses
    generator = np.random.default_rng(0)
    x = generator.standard_normal((12, 4))
    labels = generator.integers(0, 3, 12)
    targets = {"mse": np.eye(3)[labels], "label_smoothing": np.eye(3)[labels],
               "distillation": generator.dirichlet(np.ones(3), 12),
               "binary_crossentropy": generator.integers(0, 2, (12, 3)).astype(float),
               "probabilities": np.eye(3)[labels]}.get(loss, labels)
    loss = {"label_smoothing": losses.CategoricalCrossentropy(label_smoothing=0.1),
            "distillation": losses.Distillation(temperature=2.0),
            "probabilities": losses.CrossEntropy()}.get(loss, loss)

    def trained(backend):
        model = dlcore.Sequential([layers.Dense(5, activation="sigmoid"),
                                   layers.Dense(3, activation=activation)],
                                  input_shape=(4,), backend=backend, seed=1)
        model.build(dtype=np.float64)
        model.compile(loss, SGD(0.5, momentum=0.5))
        predicted = model.predict(x)
        history = model.fit(x, targets, epochs=2, batch_size=6, verbose=0, shuffle=False)
        return [predicted, np.array(history.history["loss"])] + model.get_weights()

    for got, expected in zip(trained("cpu"), trained("reference"), strict=True):
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-15)


def test_a_network_built_again_in_float64_steps_its_optimiser_slots_in_float64():
    """The slots a network's optimiser had kept their float32 type when the network was built
    again in float64 (model.build(dtype=np.float64)): Adam's moments were rounded to float32
    at every step of a float64 network. They now follow their weights' type, values kept."""
    import dlcore
    from dlcore import layers
    generator = np.random.default_rng(0)
    x, labels = generator.standard_normal((12, 4)), generator.integers(0, 3, 12)
    model = dlcore.Sequential([layers.Dense(3, activation="softmax")], input_shape=(4,),
                              backend="cpu", seed=1)
    model.compile("cross_entropy", Adam(0.1))
    model.fit(x.astype(np.float32), labels, epochs=1, batch_size=6, verbose=0)
    before = {p.key: {name: slot.copy() for name, slot in p.slots.items()}
              for p in model.parameters}
    model.build(dtype=np.float64)
    for parameter in model.parameters:
        for name, slot in parameter.slots.items():
            assert slot.dtype == np.float64, (parameter.key, name)
            np.testing.assert_array_equal(slot, before[parameter.key][name])
    model.fit(x, labels, epochs=1, batch_size=6, verbose=0)
    assert all(slot.dtype == np.float64 for p in model.parameters for slot in p.slots.values())


def adamax_by_kerass_equations(gradients, theta0, rate, beta_1=0.9, beta_2=0.999,
                               epsilon=1e-7):
    """Keras 3's Adamax update_step (its adamax.py) written out in float64."""
    theta = np.array(theta0, dtype=np.float64)
    m, u = np.zeros_like(theta), np.zeros_like(theta)
    for t, g in enumerate(np.asarray(gradients, dtype=np.float64), start=1):
        m = m + (g - m) * (1 - beta_1)
        u = np.maximum(beta_2 * u, np.abs(g))
        theta = theta - rate * m / ((1 - beta_1 ** t) * (u + epsilon))
    return theta


def adadelta_by_kerass_equations(gradients, theta0, rate, rho=0.95, epsilon=1e-7):
    """Keras 3's Adadelta update_step (its adadelta.py) written out in float64."""
    theta = np.array(theta0, dtype=np.float64)
    accumulated_grad, accumulated_delta_var = np.zeros_like(theta), np.zeros_like(theta)
    for g in np.asarray(gradients, dtype=np.float64):
        accumulated_grad = rho * accumulated_grad + (1 - rho) * g ** 2
        delta_var = -np.sqrt(accumulated_delta_var + epsilon) * g / np.sqrt(
            accumulated_grad + epsilon)
        accumulated_delta_var = rho * accumulated_delta_var + (1 - rho) * delta_var ** 2
        theta = theta + rate * delta_var
    return theta


def lion_by_kerass_equations(gradients, theta0, rate, beta_1=0.9, beta_2=0.99):
    """Keras 3's Lion update_step (its lion.py) written out in float64."""
    theta = np.array(theta0, dtype=np.float64)
    m = np.zeros_like(theta)
    for g in np.asarray(gradients, dtype=np.float64):
        theta = theta - rate * np.sign(m * beta_1 + g * (1 - beta_1))
        m = m * beta_2 + g * (1 - beta_2)
    return theta


def ftrl_by_kerass_equations(gradients, theta0, rate, power=-0.5, initial=0.1, l1=0.0, l2=0.0,
                             shrinkage=0.0, beta=0.0):
    """Keras 3's Ftrl update_step (its ftrl.py) written out in float64."""
    theta = np.array(theta0, dtype=np.float64)
    accum, linear = np.full_like(theta, initial), np.zeros_like(theta)
    for g in np.asarray(gradients, dtype=np.float64):
        l2_reg = l2 + beta / (2.0 * rate)
        grad_to_use = g + 2 * shrinkage * theta
        new_accum = accum + g ** 2
        linear = linear + grad_to_use - (new_accum ** -power - accum ** -power) / rate * theta
        quadratic = new_accum ** -power / rate + 2 * l2_reg
        theta = (np.clip(linear, -l1, l1) - linear) / quadratic
        accum = new_accum
    return theta


@pytest.mark.parametrize("backend", ["reference", "cpu"])
@pytest.mark.parametrize("make, by_kerass_equations", [
    (lambda: Adamax(0.1), lambda *args: adamax_by_kerass_equations(*args, 0.1)),
    (lambda: Adamax(0.1, beta_1=0.5, beta_2=0.6, epsilon=1e-3),
     lambda *args: adamax_by_kerass_equations(*args, 0.1, 0.5, 0.6, 1e-3)),
    (lambda: Adadelta(1.0), lambda *args: adadelta_by_kerass_equations(*args, 1.0)),
    (lambda: Adadelta(0.5, rho=0.5, epsilon=1e-3),
     lambda *args: adadelta_by_kerass_equations(*args, 0.5, 0.5, 1e-3)),
    (lambda: Lion(0.1), lambda *args: lion_by_kerass_equations(*args, 0.1)),
    (lambda: Lion(0.1, beta_1=0.3, beta_2=0.5),
     lambda *args: lion_by_kerass_equations(*args, 0.1, 0.3, 0.5)),
    (lambda: Ftrl(0.1), lambda *args: ftrl_by_kerass_equations(*args, 0.1)),
    (lambda: Ftrl(0.1, learning_rate_power=-0.7, initial_accumulator_value=0.5,
                  l1_regularization_strength=0.05, l2_regularization_strength=0.1,
                  l2_shrinkage_regularization_strength=0.2, beta=0.3),
     lambda *args: ftrl_by_kerass_equations(*args, 0.1, -0.7, 0.5, 0.05, 0.1, 0.2, 0.3)),
], ids=["adamax", "adamax-settings", "adadelta", "adadelta-settings", "lion", "lion-settings",
        "ftrl", "ftrl-settings"])
def test_adamax_adadelta_and_lion_take_kerass_steps(make, by_kerass_equations, backend):
    """Adamax, Adadelta and Lion (dlcore had none: a Keras model compiled with one loaded
    uncompiled) over four updates, on the NumPy reference and the cpu's kernel, against
    Keras's update equations written out; Keras's names and defaults."""
    theta0 = [1.0, -2.0, 0.5]
    theta, slots = run(make(), SHRINKING, theta0, backend)
    np.testing.assert_allclose(theta, by_kerass_equations(SHRINKING, theta0), rtol=2e-6,
                               atol=1e-6)
    assert np.abs(theta - np.array(theta0)).max() > 1e-3      # they moved
    assert Adamax().get_config() == {**Adamax().get_config(), "learning_rate": 0.001,
                                     "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}
    assert Adadelta().get_config() == {**Adadelta().get_config(), "learning_rate": 0.001,
                                       "rho": 0.95, "epsilon": 1e-7}
    assert Lion().get_config() == {**Lion().get_config(), "learning_rate": 0.001,
                                   "beta_1": 0.9, "beta_2": 0.99}
    assert isinstance(get_optimizer("adamax"), Adamax) and isinstance(
        get_optimizer("adadelta"), Adadelta) and isinstance(get_optimizer("lion"), Lion)
    with pytest.raises(ValueError, match="beta_1"):
        Lion(beta_1=0.0)


def test_a_learning_rate_set_on_the_optimizer_is_checked_and_taken(random_state):
    """Keras's fine-tuning idiom ``model.optimizer.learning_rate = 1e-5``: a negative rate
    (gradient ascent), a string or None was taken silently or failed later with an unrelated
    TypeError; Keras 2's ``optimizer.lr = ...`` set an attribute no update read. Both now set
    the rate the updates take, checked in one line."""
    optimizer = SGD(0.1)
    # the interval open at inf, which is refused (it said "(0.0, inf]")
    for bad, message in [(-1.0, r"learning_rate must be in \(0.0, inf\), got -1.0"),
                         (float("inf"), "learning_rate must be a finite number"),
                         ("0.1", "learning_rate must be a finite number"),
                         (None, "learning_rate must be a finite number")]:
        with pytest.raises(ValueError, match=message) as raised:
            optimizer.learning_rate = bad
        assert "\n" not in str(raised.value)
    assert optimizer.learning_rate == 0.1
    optimizer.lr = 0.5
    assert optimizer.learning_rate == 0.5 and optimizer.get_config()["learning_rate"] == 0.5
    theta, _ = run(optimizer, [[1.0]], [0.0])
    np.testing.assert_allclose(theta, [-0.5])


def test_one_optimizer_compiled_into_a_second_network_is_refused_for_the_first():
    """Two live networks shared the step count of one Adam object (the second's first update
    bias-corrected as a late step's); as Keras, the network it was built for first is refused
    in one line, while a copy, a pickle and a recompile train on."""
    import copy
    import pickle

    import dlcore
    from dlcore import layers
    x = np.random.default_rng(0).random((8, 3))
    y = np.arange(8) % 2
    shared = Adam(0.01)

    def compiled():
        model = dlcore.Sequential([layers.Dense(2, activation="softmax")], input_shape=(3,),
                                  backend="reference", seed=0)
        return model.compile("cross_entropy", shared)

    first, second = compiled(), compiled()
    second.fit(x, y, epochs=1, verbose=0)
    for train in (lambda: first.fit(x, y, epochs=1, verbose=0),
                  lambda: first.train_on_batch(x, y)):
        with pytest.raises(ValueError, match=r"^this network's Adam optimizer was compiled "
                                             r"into another network since.*give each "
                                             r"network its own"):
            train()
    assert shared.iterations == 1 and first.n_updates == 0
    for copied in (copy.deepcopy(second), pickle.loads(pickle.dumps(second))):
        copied.fit(x, y, epochs=1, verbose=0)
    first.compile("cross_entropy", shared)   # its own again, counted from 0
    assert shared.iterations == 0
    first.fit(x, y, epochs=1, verbose=0)
    assert shared.iterations == 1
