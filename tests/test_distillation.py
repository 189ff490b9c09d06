"""The distillation loss (Hinton, Vinyals & Dean 2015): its equations, its T^2 scaling, kernels
against the reference, a gradient check through a network, and its place in model files.

Oracles: the softmax at temperature T of the teacher's logits (the soft targets the paper
defines), the hand formula dL/dz = T (softmax(z / T) - q), finite differences of the loss value,
the NumPy reference for the kernel bodies, and the plain cross-entropy it reduces to at T = 1."""
import numpy as np
import pytest

import dlcore
from conftest import requires_cuda
from dlcore.backend import get_backend
from dlcore.layers import Dense
from dlcore.losses import CrossEntropy, Distillation, get_loss, soft_targets


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_softened_probabilities_are_the_teachers_softmax_at_temperature_t(random_state):
    teacher_logits = random_state.standard_normal((6, 5)) * 4
    np.testing.assert_allclose(soft_targets(softmax(teacher_logits), 3.0),
                               softmax(teacher_logits / 3.0), rtol=1e-10)


def test_the_gradient_is_t_times_p_minus_q_and_the_loss_t_squared_kl_divergence(random_state):
    z = random_state.standard_normal((4, 3)) * 2
    teacher = softmax(random_state.standard_normal((4, 3)))
    t = 2.5
    losses, grad = Distillation(t).reference(z, teacher, fused=True)
    p, q = softmax(z / t), softmax(np.log(teacher) / t)
    np.testing.assert_allclose(grad, t * (p - q) / 4, rtol=1e-10)
    np.testing.assert_allclose(losses, t * t * (q * np.log(q / p)).sum(axis=1), rtol=1e-10)


def test_temperature_one_is_the_cross_entropy_less_the_teachers_entropy(random_state):
    z = random_state.standard_normal((5, 4))
    teacher = softmax(random_state.standard_normal((5, 4)))
    entropy = -(teacher * np.log(teacher)).sum(axis=1)
    losses, grad = Distillation(1.0).reference(z, teacher, True)
    ce_losses, ce_grad = CrossEntropy().reference(z, teacher, True)
    np.testing.assert_allclose(losses, ce_losses - entropy, rtol=1e-6)
    np.testing.assert_allclose(grad, ce_grad, rtol=1e-6, atol=1e-12)
    hard = np.eye(4)[[0, 3, 1, 1, 2]]            # one-hot targets: the cross-entropy itself
    np.testing.assert_allclose(Distillation(1.0).reference(z, hard, True)[0],
                               CrossEntropy().reference(z, hard, True)[0], rtol=1e-6)
    # on probabilities the losses agree up to the entropy (the gradients differ along
    # (1, ..., 1), which the softmax before them cancels)
    np.testing.assert_allclose(Distillation(1.0).reference(softmax(z), teacher, False)[0],
                               CrossEntropy().reference(softmax(z), teacher, False)[0]
                               - entropy, rtol=1e-6)


def test_t_squared_keeps_the_gradient_size_as_the_temperature_grows(random_state):
    """Without the T^2 factor the soft targets' gradient shrinks like 1/T^2 (Hinton et al.,
    section 2); with it the size stays within a small factor from T = 4 to T = 16."""
    z = random_state.standard_normal((50, 10))
    teacher = softmax(random_state.standard_normal((50, 10)) * 2)
    sizes = [np.linalg.norm(Distillation(t).reference(z, teacher, True)[1]) for t in (4, 16)]
    assert 0.5 < sizes[1] / sizes[0] < 2.0
    unscaled = [size / t ** 2 for size, t in zip(sizes, (4, 16))]
    assert unscaled[1] / unscaled[0] < 0.1


@pytest.mark.parametrize("fused", [True, False], ids=["logits", "probabilities"])
def test_gradient_is_the_derivative_of_the_mean_loss(fused, random_state):
    loss = Distillation(3.0)
    outputs = random_state.standard_normal((5, 4)) * 3 if fused else \
        random_state.dirichlet(np.ones(4), 5)
    teacher = random_state.dirichlet(np.ones(4) * 0.5, 5)
    _, grad = loss.reference(outputs, teacher, fused)
    eps = 1e-6
    for index in [(0, 0), (2, 1), (4, 3), (3, 2)]:
        bumped = outputs.copy()
        bumped[index] += eps
        plus = loss.reference(bumped, teacher, fused)[0].mean()
        bumped[index] -= 2 * eps
        minus = loss.reference(bumped, teacher, fused)[0].mean()
        assert grad[index] == pytest.approx((plus - minus) / (2 * eps), rel=1e-5, abs=1e-9)


def run(loss, fused, outputs, targets, backend):
    be = get_backend(backend)
    n, k = outputs.shape
    arrays = [be.asarray(a.astype(np.float32)) for a in (outputs, targets)]
    grad, row_loss, row_correct = be.empty((n, k)), be.empty((n,)), be.empty((n,))
    loss.loss_and_gradient(be, *arrays, grad, row_loss, row_correct, fused)
    return [be.to_numpy(a) for a in (grad, row_loss, row_correct)]


def cases(random_state, n=6, k=5):
    teacher = random_state.dirichlet(np.ones(k) * 0.5, n)
    teacher[0] = np.eye(k)[2]          # a hard label: its zeros stay zero when softened
    teacher[1] = 0.0                   # no target at all: no gradient from the targets
    return random_state.standard_normal((n, k)) * 3, random_state.dirichlet(np.ones(k), n), \
        teacher


@pytest.mark.parametrize("fused", [True, False], ids=["logits", "probabilities"])
def test_cpu_kernel_follows_the_reference(fused, random_state):
    logits, probabilities, teacher = cases(random_state)
    outputs = logits if fused else probabilities
    for got, expected in zip(run(Distillation(2.5), fused, outputs, teacher, "cpu"),
                             run(Distillation(2.5), fused, outputs, teacher, "reference")):
        np.testing.assert_allclose(got, expected, rtol=2e-5, atol=2e-6)


@requires_cuda
def test_cuda_kernel_follows_the_reference(random_state):
    logits, _, teacher = cases(random_state, n=3, k=3)
    for got, expected in zip(run(Distillation(2.0), True, logits, teacher, "cuda"),
                             run(Distillation(2.0), True, logits, teacher, "reference")):
        np.testing.assert_allclose(got, expected, rtol=2e-5, atol=2e-6)


def student(loss="distillation"):
    model = dlcore.Sequential([Dense(6, activation="tanh"), Dense(3, activation="softmax")],
                              input_shape=(4,), backend="reference", seed=1)
    model.compile(loss, dlcore.optimizers.SGD(0.1, momentum=0.9), ["accuracy"])
    return model


def test_gradcheck_of_a_student_network(random_state):
    model = student(Distillation(3.0))
    x = random_state.standard_normal((5, 4))
    teacher = softmax(random_state.standard_normal((5, 3)) * 2)
    errors = dlcore.gradcheck(model, x, teacher, verbose=False)
    assert max(errors.values()) < 1e-6, errors


def test_a_student_learns_to_agree_with_its_teacher(random_state):
    x = random_state.standard_normal((60, 4)).astype(np.float32)
    teacher = softmax(x[:, :3] * 3)          # the teacher's knowledge: the first three inputs
    model = student(Distillation(2.0))
    before = model.evaluate(x, teacher)
    model.fit(x, teacher, epochs=40, batch_size=10, verbose=0)
    after = model.evaluate(x, teacher)
    assert after["loss"] < 0.2 * before["loss"]        # 0: the student is the teacher
    assert after["accuracy"] > 0.9


def test_loss_name_config_and_model_file_round_trip(tmp_path):
    assert get_loss("distillation").temperature == 2.0
    loss = get_loss({"name": "distillation", "temperature": 5.0, "from_logits": False})
    assert isinstance(loss, Distillation) and loss.temperature == 5.0
    model = student(Distillation(5.0))
    dlcore.save(model, tmp_path / "student.h5")
    again = dlcore.load(tmp_path / "student.h5")
    assert isinstance(again.loss, Distillation) and again.loss.temperature == 5.0


@pytest.mark.parametrize("config, words", [
    ({"name": "distillation", "temperature": -1.0}, "temperature must be in"),
    ({"name": "distillation", "temperature": "hot"}, "temperature must be a finite number"),
    ({"name": "distillation", "alpha": 0.5}, "a loss config must be"),
])
def test_bad_distillation_configs_are_one_line_errors(config, words):
    with pytest.raises(ValueError, match=words):
        get_loss(config)


def test_distillation_on_a_linear_output_asks_for_a_softmax_or_from_logits():
    model = dlcore.Sequential([Dense(3)], input_shape=(4,), backend="reference")
    with pytest.raises(ValueError, match="Distillation\\(from_logits=True\\)"):
        model.compile("distillation", "sgd")
