"""SGD's step on a Dense kernel taken straight from its gradient's product during the backward
pass (Backend.dense_weight_step, Optimizer.product_step): the same update as computing the
gradient and stepping afterwards, taken only where the rule allows it.

Oracles: the update written in NumPy (float64), and the same training with the product steps
switched off (the gradient written, then the optimiser's launch over every parameter)."""
import numpy as np
import pytest

import dlcore
from conftest import assert_same_on_any_number_of_threads
from dlcore.backend import get_backend
from dlcore.backend.kernel_backend import KernelBackend
from dlcore.layers import Dense, Dropout
from dlcore.optimizers import SGD

#: a product the cpu backend splits across its threads (in x out x batch >= 4 M multiply-adds)
N_IN, N_HIDDEN, BATCH = 512, 400, 32


def _operands(seed=0):
    generator = np.random.default_rng(seed)
    x = generator.random((BATCH, N_IN)).astype(np.float32)
    grad_z = (generator.standard_normal((BATCH, N_HIDDEN)) * 0.01).astype(np.float32)
    weights = (generator.standard_normal((N_IN, N_HIDDEN)) * 0.05).astype(np.float32)
    velocity = (generator.standard_normal((N_IN, N_HIDDEN)) * 0.001).astype(np.float32)
    return x, grad_z, weights, velocity


def _expected(x, grad_z, weights, velocity, rate, momentum):
    gradient = x.astype(np.float64).T @ grad_z.astype(np.float64)
    if momentum == 0:
        return weights - rate * gradient, velocity
    velocity = momentum * velocity + gradient
    return weights - rate * velocity, velocity


@pytest.mark.parametrize("momentum", [0.9, 0.0])
@pytest.mark.parametrize("way", ["cpu fused", "cpu unfused", "outside compute", "reference"])
def test_the_weight_step_is_sgd_with_momentum_on_the_product(momentum, way):
    x, grad_z, weights, velocity = _operands()
    expected_weights, expected_velocity = _expected(x, grad_z, weights, velocity, 0.05,
                                                    momentum)
    backend = get_backend("reference" if way == "reference" else "cpu")
    if way == "outside compute":
        backend.dense_weight_step(x, grad_z, weights, velocity, 0.05, momentum)
    else:
        with backend.compute():
            step = KernelBackend.dense_weight_step if way == "cpu unfused" else \
                type(backend).dense_weight_step
            step(backend, x, grad_z, weights, velocity, 0.05, momentum)
    np.testing.assert_allclose(weights, expected_weights, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(velocity, expected_velocity, rtol=1e-5, atol=1e-7)


def test_the_fused_step_flushes_a_decaying_velocity_and_leaves_the_float_modes_as_they_were():
    """Rows of x that are 0 (a feature 0 in every sample, a dead unit upstream) give a zero
    gradient: their velocity decays by mu each step, and where it would turn subnormal (slow
    on x86) the fused step's flush-to-zero mode makes it 0. The calling thread's MXCSR is put
    back: NumPy and the user's code never run in that mode."""
    from dlcore.backend.flush_to_zero import FLUSH_TO_ZERO_BITS, ON_X86, float_modes
    x, grad_z, weights, velocity = _operands()
    x[:, :4] = 0.0
    velocity[:4] = np.float32(1.2e-38)             # * 0.9: subnormal
    velocity[4] = np.float32(2e-38)                # * 0.9: still normal, but for the product
    expected_weights, expected_velocity = _expected(x, grad_z, weights, velocity, 0.05, 0.9)
    backend = get_backend("cpu")
    modes = float_modes()
    with backend.compute():
        backend.dense_weight_step(x, grad_z, weights, velocity, 0.05, 0.9)
    assert float_modes() == modes and not modes & FLUSH_TO_ZERO_BITS
    assert np.all(expected_velocity[:4] != 0)
    if ON_X86:
        assert np.all(velocity[:4] == 0)
    np.testing.assert_allclose(velocity[4:], expected_velocity[4:], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(weights, expected_weights, rtol=1e-5, atol=1e-6)
    assert np.float32(1e-39) * np.float32(0.5) != 0       # this thread: subnormals as ever


@pytest.mark.parametrize("inputs, units", [(N_IN, N_HIDDEN), (300, 600)],
                         ids=["W split by rows", "W wider than tall"])
def test_the_step_gives_the_input_gradient_from_the_kernel_before_it(inputs, units):
    """dL/dx = grad_z W' (lecture "Supervised learning", "Backward Propagation") from the
    kernel before the step: inside the cpu's fused step where each thread's rows of W are the
    columns of dL/dx it would compute anyway (W no wider than tall), by the product first
    otherwise; bit for bit the numbers of the product then the step, and the reference's."""
    generator = np.random.default_rng(5)
    x = generator.random((BATCH, inputs)).astype(np.float32)
    grad_z = (generator.standard_normal((BATCH, units)) * 0.01).astype(np.float32)
    weights = (generator.standard_normal((inputs, units)) * 0.05).astype(np.float32)
    velocity = (generator.standard_normal((inputs, units)) * 0.001).astype(np.float32)
    expected_weights, expected_velocity = _expected(x, grad_z, weights, velocity, 0.05, 0.9)
    expected_grad_x = grad_z.astype(np.float64) @ weights.astype(np.float64).T
    cpu = get_backend("cpu")
    results = {}
    for way in ("fused", "product then step", "reference"):
        w, v = weights.copy(), velocity.copy()
        grad_x = np.full((BATCH, inputs), np.nan, np.float32)
        backend = get_backend("reference") if way == "reference" else cpu
        with backend.compute():
            if way == "product then step":
                cpu.gemm(grad_z, w, grad_x, trans_b=True)
                cpu.dense_weight_step(x, grad_z, w, v, 0.05, 0.9)
            else:
                backend.dense_weight_step(x, grad_z, w, v, 0.05, 0.9, grad_x)
        results[way] = (grad_x, w, v)
        np.testing.assert_allclose(grad_x, expected_grad_x, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(w, expected_weights, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(v, expected_velocity, rtol=1e-5, atol=1e-7)
    for fused, separate in zip(results["fused"], results["product then step"]):
        np.testing.assert_array_equal(fused, separate)
    with cpu.compute():
        assert cpu._steps_input_gradient_blocks(grad_x, weights) == (inputs >= units)


def test_a_seed_trains_the_same_network_on_any_number_of_threads():
    """Bit-identical weights on one, two and three threads: the Dense layers' products split
    by the shapes alone (the halves of the inputs in the forward pass, the input gradient in
    the weight step's blocks), never by the number of threads."""
    x, y = _data()

    def train():
        model = dlcore.Sequential(
            [Dense(N_HIDDEN, activation="sigmoid", input_shape=(N_IN,)), Dropout(0.2),
             Dense(N_HIDDEN, activation="sigmoid"), Dense(10, activation="softmax")],
            backend="cpu", seed=3)
        model.compile("cross_entropy", SGD(0.1, momentum=0.9))
        model.fit(x, y, epochs=2, batch_size=BATCH, verbose=0)
        return model.get_weights()
    assert_same_on_any_number_of_threads(train)


def test_only_the_cpu_fuses_and_only_products_it_splits():
    cpu = get_backend("cpu")
    large, small = np.empty((N_IN, N_HIDDEN), np.float32), np.empty((84, 10), np.float32)
    assert not cpu.fuses_weight_step(large, BATCH)          # outside compute(): NumPy's BLAS
    with cpu.compute():
        assert cpu.fuses_weight_step(large, BATCH)
        assert not cpu.fuses_weight_step(small, BATCH)
    assert not get_backend("reference").fuses_weight_step(large, BATCH)


def _network(optimizer, backend="cpu", seed=3, **dense):
    model = dlcore.Sequential([Dense(N_HIDDEN, activation="sigmoid", input_shape=(N_IN,),
                                     **dense),
                               Dropout(0.2), Dense(10, activation="softmax")],
                              backend=backend, seed=seed)
    model.compile("cross_entropy", optimizer)
    return model


def _data(rows=4 * BATCH):
    generator = np.random.default_rng(1)
    return generator.random((rows, N_IN)).astype(np.float32), generator.integers(0, 10, rows)


def _train(monkeypatch, optimizer, fused, fit=True, **dense):
    """Weights and velocities after an epoch of four batches, and how many product steps
    ran (``fused`` False: SGD offers none)."""
    calls = []
    original = type(get_backend("cpu")).dense_weight_step

    def counted(self, *args):
        calls.append(args[2].shape)
        original(self, *args)
    with monkeypatch.context() as patch:
        patch.setattr(type(get_backend("cpu")), "dense_weight_step", counted)
        if not fused:
            patch.setattr(SGD, "product_step", lambda self, parameter: None)
        model = _network(optimizer, **dense)
        initial = np.array(model.layers[0].params["kernel"])
        x, y = _data()
        if fit:
            model.fit(x, y, epochs=1, batch_size=BATCH, shuffle=False, verbose=0)
        else:
            for start in range(0, len(x), BATCH):
                model.train_on_batch(x[start:start + BATCH], y[start:start + BATCH])
    state = [np.array(p.value) for p in model.parameters] + \
        [np.array(p.slots["velocity"]) for p in model.parameters]
    return state, calls, model, initial


@pytest.mark.parametrize("momentum", [0.9, 0.0])
@pytest.mark.parametrize("fit", [True, False], ids=["fit", "train_on_batch"])
def test_training_with_product_steps_gives_the_weights_of_the_unfused_update(
        monkeypatch, momentum, fit):
    fused, calls, model, initial = _train(monkeypatch, SGD(0.1, momentum=momentum), True, fit)
    plain, no_calls, _, _ = _train(monkeypatch, SGD(0.1, momentum=momentum), False, fit)
    # the hidden layer's kernel only (the 400 x 10 product is too small to fuse), every batch
    assert calls == [(N_IN, N_HIDDEN)] * 4 and no_calls == []
    assert not np.allclose(fused[0], initial)            # the steps moved the kernel
    for with_steps, without in zip(fused, plain):
        np.testing.assert_allclose(with_steps, without, rtol=1e-4, atol=1e-6)
    # nothing left on the layers: a later backward pass writes gradients again
    assert all("product_steps" not in vars(layer) for layer in model.layers)
    x, y = _data(BATCH)
    model.loss_and_gradient(x, y)
    kernel = model.parameters[0]
    assert np.abs(np.asarray(kernel.grad)).max() > 0


@pytest.mark.parametrize("case", ["nesterov", "clipnorm", "weight decay", "adversarial",
                                  "decoupled weight decay"])
def test_rules_that_need_the_gradient_itself_take_no_product_step(monkeypatch, case):
    optimizer = SGD(0.1, momentum=0.9, nesterov=case == "nesterov",
                    clipnorm=1.0 if case == "clipnorm" else None,
                    weight_decay=0.1 if case == "decoupled weight decay" else None)
    dense = {"kernel_regularizer": dlcore.regularizers.l2(1e-3)} if case == "weight decay" \
        else {}
    calls = []
    original = type(get_backend("cpu")).dense_weight_step
    monkeypatch.setattr(type(get_backend("cpu")), "dense_weight_step",
                        lambda self, *args: calls.append(1) or original(self, *args))
    model = _network(optimizer, **dense)
    x, y = _data()
    model.fit(x, y, epochs=1, batch_size=BATCH, verbose=0,
              **({"adversarial": 0.05} if case == "adversarial" else {}))
    assert calls == []
    assert model.optimizer.iterations == 4


def test_a_shared_layer_waits_for_the_gradient_of_all_its_calls(monkeypatch):
    """A Dense layer called twice in a functional model: its gradient is the sum of both
    calls, so the optimiser steps after the backward pass, from that sum."""
    calls = []
    original = type(get_backend("cpu")).dense_weight_step
    monkeypatch.setattr(type(get_backend("cpu")), "dense_weight_step",
                        lambda self, *args: calls.append(args[2].shape) or original(self, *args))
    shared = Dense(N_IN, activation="sigmoid")
    inputs = dlcore.Input(shape=(N_IN,))
    hidden = Dense(N_HIDDEN, activation="sigmoid")(shared(shared(inputs)))
    model = dlcore.Model(inputs, Dense(10, activation="softmax")(hidden), backend="cpu")
    model.compile("cross_entropy", SGD(0.1, momentum=0.9))
    x, y = _data()
    before = np.array(shared.params["kernel"])
    model.fit(x, y, epochs=1, batch_size=BATCH, verbose=0)
    assert calls == [(N_IN, N_HIDDEN)] * 4       # the layer called once; never the shared one
    assert not np.allclose(before, shared.params["kernel"])


def test_an_error_in_the_backward_pass_leaves_no_step_on_the_layers(monkeypatch):
    model = _network(SGD(0.1, momentum=0.9))
    x, y = _data()

    def broken(grad_y, need_input_gradient=True):
        raise RuntimeError("broken on purpose")
    monkeypatch.setattr(model.layers[1], "backward", broken)
    with pytest.raises(RuntimeError, match="broken on purpose"):
        model.fit(x, y, epochs=1, batch_size=BATCH, verbose=0)
    assert all("product_steps" not in vars(layer) for layer in model.layers)
