"""The autoencoder's kernels (``cpu``, and ``cuda`` under the simulator) against its NumPy
reference: the corruption bit for bit, every operation of a training step (encode, decode,
the gradients and the monitors) for every combination of loss, activations, tied weights and
sparsity, and whole trainings.

Oracle: :class:`dlcore.autoencoder.ops.ReferenceOps`, the functions of
dlcore/autoencoder/model.py, themselves held to finite differences in
test_autoencoder_model.py."""
import itertools
import textwrap

import numpy as np
import pytest

import dlcore
from conftest import ptx_compile_report, requires_cuda
from dlcore.autoencoder import corruption, model
from dlcore.autoencoder.ops import KernelOps, Monitors, ReferenceOps, Workspace
from dlcore.backend import get_backend

RTOL, ATOL = 2e-5, 2e-5
KERNEL_BACKENDS = ["cpu", pytest.param("cuda", marks=requires_cuda)]
OUTPUTS = [("cross_entropy", "sigmoid"), ("mse", "sigmoid"), ("mse", "linear")]
CASES = [(loss, output, hidden, tied, target)
         for (loss, output), hidden, tied, target in itertools.product(
             OUTPUTS, model.ENCODER_ACTIVATIONS, (True, False), (None, 0.2))
         if target is None or hidden == "sigmoid"]


def data(n=6, n_visible=7, seed=0):
    draw = np.random.default_rng(seed)
    return draw.uniform(0, 1, (n, n_visible)).astype(np.float32)


@pytest.mark.parametrize("backend", KERNEL_BACKENDS)
@pytest.mark.parametrize("kind", corruption.CORRUPTION_KINDS)
@pytest.mark.parametrize("width", [1, 4, 9])
def test_the_corruption_kernel_draws_what_the_reference_draws(backend, kind, width):
    x = data(5, width, seed=width)
    expected = corruption.corrupt(x, kind, 0.4, seed=11, step=7)
    be = get_backend(backend)
    out = be.empty(x.shape)
    KernelOps(be).corrupt(be.asarray(x), out, kind, 0.4, 11, 7)
    got = be.to_numpy(out)
    if kind == "gaussian":   # Box-Muller's log, sin and cos round differently per library
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    else:
        np.testing.assert_array_equal(got, expected)


def run_step(backend, case, x, x_tilde, values):
    """encode, decode and backward on ``backend``: [h, r, gradients..., monitors...]."""
    loss, output, hidden, tied, target = case
    be = get_backend(backend)
    ops = KernelOps(be) if be.launches_kernels else ReferenceOps(be)
    n, n_visible = x.shape
    n_hidden = values["W"].shape[1]
    options = {"tied": tied, "activation": hidden, "decoder_activation": output, "loss": loss,
               "sparsity_target": target, "sparsity_cost": 0.5}
    p = {name: be.asarray(value) for name, value in values.items()}
    grads = {name: be.zeros(value.shape) for name, value in values.items()}
    h, r = be.empty((n, n_hidden)), be.empty((n, n_visible))
    monitors = Monitors(be.zeros((n_visible,)), be.zeros((n_visible,)), be.zeros((n_hidden,)))
    workspace = Workspace(be.empty((n + 2, n_visible)), be.empty((n + 2, n_hidden)),
                          be.empty((n + 2, n_hidden)), be.empty((n_hidden,)))
    xt = be.asarray(x_tilde)
    ops.encode(xt, p["W"], p["hidden_bias"], hidden, h)
    ops.decode(h, p["W"] if tied else p["W_decoder"], tied, p["visible_bias"], output, r)
    ops.backward(be.asarray(x), xt, h, r, p, grads, options, monitors, workspace)
    return ([be.to_numpy(h), be.to_numpy(r)] + [be.to_numpy(grads[name]) for name in values]
            + [be.to_numpy(total) for total in monitors])


def quick_on_the_simulator(case):
    """Each output with sigmoid units, tied without sparsity and untied with it, and every other
    hidden activation once: the cuda cases of the quick suite (the rest are marked slow)."""
    loss, output, hidden, tied, target = case
    if hidden == "sigmoid":
        return (tied, target) in ((True, None), (False, 0.2))
    return (loss, output, tied) == ("mse", "linear", False)


STEP_CASES = [pytest.param("cpu", case, id="cpu-" + "-".join(map(str, case)))
              for case in CASES] + [
    pytest.param("cuda", case, id="cuda-" + "-".join(map(str, case)),
                 marks=[requires_cuda] + ([] if quick_on_the_simulator(case)
                                          else [pytest.mark.slow]))
    for case in CASES]


@pytest.mark.parametrize("backend, case", STEP_CASES)
def test_a_kernel_step_follows_the_reference(backend, case):
    tied = case[3]
    draw = np.random.default_rng(2)
    values = {"W": draw.normal(0, 0.5, (7, 5)).astype(np.float32),
              "hidden_bias": draw.normal(0, 0.2, 5).astype(np.float32),
              "visible_bias": draw.normal(0, 0.2, 7).astype(np.float32)}
    if not tied:
        values["W_decoder"] = draw.normal(0, 0.5, (5, 7)).astype(np.float32)
    x = data()
    x_tilde = corruption.corrupt(x, "masking", 0.3, 1, 0)
    expected = run_step("reference", case, x, x_tilde, values)
    got = run_step(backend, case, x, x_tilde, values)
    for index, (a, b) in enumerate(zip(got, expected)):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL, err_msg=f"result {index}")


def test_the_reference_step_computes_the_model_gradients():
    case = ("cross_entropy", "sigmoid", "sigmoid", False, 0.2)
    draw = np.random.default_rng(4)
    values = {"W": draw.normal(0, 0.5, (7, 5)), "hidden_bias": draw.normal(0, 0.2, 5),
              "visible_bias": draw.normal(0, 0.2, 7), "W_decoder": draw.normal(0, 0.5, (5, 7))}
    values = {name: value.astype(np.float32) for name, value in values.items()}
    x = data()
    results = run_step("reference", case, x, x, values)
    expected = model.gradients(x, x, values, tied=False, activation="sigmoid",
                               decoder_activation="sigmoid", loss="cross_entropy",
                               sparsity_target=0.2, sparsity_cost=0.5)
    for got, name in zip(results[2:6], values):
        np.testing.assert_allclose(got, expected[name], rtol=1e-5, atol=1e-7)


TRAINING = [{}, {"tied_weights": False, "corruption_kind": "gaussian", "corruption": 0.2,
                 "sparsity_target": 0.1, "sparsity_cost": 0.5},
            {"loss": "mse", "decoder_activation": "linear", "activation": "tanh",
             "corruption_kind": "salt_and_pepper"}]


# the simulator takes seconds per training: one quick cuda case, the others marked slow
TRAINING_CASES = [("cpu", options) for options in TRAINING] + [
    pytest.param("cuda", options, marks=[requires_cuda] + ([pytest.mark.slow] if index else []))
    for index, options in enumerate(TRAINING)]


@pytest.mark.parametrize("backend, options", TRAINING_CASES)
def test_training_on_a_kernel_backend_follows_the_reference(backend, options):
    X = (data(12, 6, seed=5) < 0.4).astype(np.float32)   # tiny: the simulator is slow
    settings = {"n_hidden": 5, "epochs": 2, "batch_size": 6, "seed": 3, **options}
    expected = dlcore.Autoencoder(backend="reference", **settings).fit(X)
    got = dlcore.Autoencoder(backend=backend, **settings).fit(X)
    for name in expected._parameters():
        np.testing.assert_allclose(getattr(got, name), getattr(expected, name), rtol=1e-4,
                                   atol=1e-5, err_msg=name)
    for name in ("loss", "reconstruction_error"):
        np.testing.assert_allclose(got.history[name], expected.history[name], rtol=1e-5)
    np.testing.assert_allclose(got.reconstruct(X[:3], corrupted=True),
                               expected.reconstruct(X[:3], corrupted=True), rtol=1e-4, atol=1e-5)


# Appended to the PTX script of test_backend_cuda_ptx (its CompilingBackend ``backend`` compiles
# the CUDA twin of every launch): training steps of every kind of autoencoder.
AE_LAUNCHES = textwrap.dedent(r'''
    from dlcore.autoencoder.trainer import AESettings, AutoencoderTrainer, parameter_names
    shapes = {"W": (6, 5), "hidden_bias": (5,), "visible_bias": (6,), "W_decoder": (5, 6)}
    for tied, kind, target, loss, output, hidden in (
            (True, "masking", 0.1, "cross_entropy", "sigmoid", "sigmoid"),
            (False, "gaussian", None, "mse", "linear", "tanh"),
            (True, "salt_and_pepper", None, "mse", "sigmoid", "relu")):
        settings = AESettings(tied=tied, activation=hidden, decoder_activation=output,
                              loss=loss, corruption=0.3, corruption_kind=kind,
                              sparsity_target=target, sparsity_cost=0.1, learning_rate=0.1,
                              momentum=0.9, batch_size=4, seed=3)
        names = parameter_names(tied)
        trainer = AutoencoderTrainer(
            backend, {name: f32(*shapes[name]) for name in names},
            {f"velocity_{name}": np.zeros(shapes[name], np.float32) for name in names},
            settings)
        with backend.compute():
            trainer.epoch(backend.asarray(f32(12, 6)), np.arange(12), 0)
    for (name, signature), size in sorted(compiled.items()):
        print("COMPILED", name, size)
''')


@pytest.mark.slow
def test_the_autoencoder_kernels_compile_to_ptx_for_a_real_gpu():
    from test_backend_cuda_ptx import SCRIPT
    report = ptx_compile_report(SCRIPT + AE_LAUNCHES)
    for kernel in ("corrupt_rows", "reconstruction_delta_span", "sparsity_delta_span",
                   "unit_bias_activation_rows", "activation_gradient_rows",
                   "bias_gradient_span", "sgd_span"):
        assert f"COMPILED {kernel} " in report
