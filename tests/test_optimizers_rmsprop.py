"""RMSprop's momentum and centring (Keras 3's ``RMSprop(momentum=, centered=)``, PyTorch's
``torch.optim.RMSprop(momentum=, centered=)``), which dlcore refused in one line.

Oracles: a case worked by hand; PyTorch's and Keras's own optimisers, step by step on the
same float32 weights and gradients (skipped where either is not installed); dlcore's own
training uninterrupted (a model saved and loaded mid-way goes on bit for bit). The kernels
against the NumPy reference: tests/test_optimizers.py (the "rmsprop-momentum..." rules).
"""
import numpy as np
import pytest

import dlcore
from dlcore.layers import Dense
from dlcore.optimizers import SGD, ExponentialDecay, RMSProp
from test_optimizers import run


def test_centred_rmsprop_with_momentum_worked_by_hand():
    """rho = 0.5, mu = 0.5, eta = 0.1, g = 2 then 1 (eps negligible):
    s = 2, a = 1, step = 2 / sqrt(2 - 1) = 2, b = 2, theta = -0.2;
    s = 1.5, a = 1, step = 1 / sqrt(0.5), b = 1 + sqrt(2), theta = -0.2 - 0.1 b.
    Keras's form keeps b scaled by eta, and takes the same steps at this constant rate."""
    gradients = [[2.0], [1.0]]
    b = 1 + np.sqrt(2.0)
    for form, scaled in (("dlcore", 1.0), ("keras", 0.1)):
        theta, slots = run(RMSProp(0.1, rho=0.5, epsilon=1e-12, momentum=0.5, centered=True,
                                   epsilon_form=form), gradients, [0.0])
        np.testing.assert_allclose(theta, [-0.2 - 0.1 * b], rtol=1e-6)
        np.testing.assert_allclose(slots["mean_square"], [1.5], rtol=1e-6)
        np.testing.assert_allclose(slots["average_gradient"], [1.0], rtol=1e-6)
        np.testing.assert_allclose(slots["momentum"], [scaled * b], rtol=1e-6)


STEPS = 20
#: (momentum, centered) as both libraries take them
SETTINGS = [(0.9, False), (0.0, True), (0.9, True)]


def _trajectories(step, gradients):
    """theta after each of the updates ``step(g)`` takes, as an array (steps, ...)."""
    return np.array([np.array(step(g), copy=True) for g in gradients])


def _tolerance(expected):
    """8 float32 ulps at the weights' largest magnitude: each update rounds theta, s, a, b a
    few times, in another order than the other library does (PyTorch's centred mean is a
    lerp, Keras computes 1 - rho and eta g before dividing); measured over 20 steps: at most
    3 ulps. The two libraries' forms are 30-400 ulps apart here (where eps enters; Keras's
    momentum under a schedule), so that the form taken is what the test sees."""
    return 8 * float(np.spacing(np.float32(np.abs(expected).max())))


@pytest.fixture(scope="module")
def problem():
    generator = np.random.default_rng(3)
    return (generator.standard_normal((STEPS, 7, 5)).astype(np.float32),
            generator.standard_normal((7, 5)).astype(np.float32))


@pytest.mark.parametrize("backend", ["reference", "cpu"])
@pytest.mark.parametrize("momentum, centered", SETTINGS, ids=["momentum", "centred", "both"])
def test_rmsprop_steps_as_pytorchs_to_float32_precision(momentum, centered, backend, problem):
    """PyTorch's RMSprop (alpha = rho; eps outside the root, momentum b <- mu b + step):
    dlcore's default forms, 20 steps, every step within :func:`_tolerance`."""
    torch = pytest.importorskip("torch")
    gradients, theta0 = problem
    weights = torch.nn.Parameter(torch.tensor(theta0))
    theirs = torch.optim.RMSprop([weights], lr=0.01, alpha=0.9, eps=1e-7, momentum=momentum,
                                 centered=centered)

    def step(g):
        weights.grad = torch.tensor(g)
        theirs.step()
        return weights.detach().numpy()

    expected = _trajectories(step, gradients)
    be = dlcore.backend.get_backend(backend)
    got = _stepped(RMSProp(0.01, rho=0.9, epsilon=1e-7, momentum=momentum, centered=centered),
                   gradients, theta0, be)
    tolerance = _tolerance(expected)
    np.testing.assert_allclose(got, expected, rtol=0, atol=tolerance)
    kerass = _stepped(RMSProp(0.01, rho=0.9, epsilon=1e-7, momentum=momentum,
                              centered=centered, epsilon_form="keras"), gradients, theta0, be)
    assert np.abs(kerass - expected).max() > 2 * tolerance   # the test tells the forms apart


@pytest.mark.parametrize("backend", ["reference", "cpu"])
@pytest.mark.parametrize("momentum, centered, schedule", [
    (0.9, False, False), (0.0, True, False), (0.9, True, False), (0.9, True, True)],
    ids=["momentum", "centred", "both", "both-schedule"])
def test_rmsprop_steps_as_kerass_to_float32_precision(momentum, centered, schedule, backend,
                                                      problem):
    """Keras's RMSprop (eps inside the root, momentum b <- mu b + eta step): dlcore's Keras
    form, which a model compiled from Keras gets, 20 steps, every step within
    :func:`_tolerance`, a decaying rate included (where the momentum's two forms differ)."""
    from test_io_keras import real_keras
    keras = real_keras()
    gradients, theta0 = problem
    rate = keras.optimizers.schedules.ExponentialDecay(0.01, 2, 0.5) if schedule else 0.01
    theirs = keras.optimizers.RMSprop(rate, rho=0.9, momentum=momentum, centered=centered)
    weights = keras.Variable(theta0)

    def step(g):
        theirs.apply_gradients([(keras.ops.convert_to_tensor(g), weights)])
        return np.array(weights.numpy())

    expected = _trajectories(step, gradients)
    be = dlcore.backend.get_backend(backend)

    def ours(form):
        mine = ExponentialDecay(0.01, 2, 0.5) if schedule else 0.01
        return _stepped(RMSProp(mine, rho=0.9, momentum=momentum, centered=centered,
                                epsilon_form=form), gradients, theta0, be)

    tolerance = _tolerance(expected)
    np.testing.assert_allclose(ours("keras"), expected, rtol=0, atol=tolerance)
    assert np.abs(ours("dlcore") - expected).max() > 2 * tolerance   # the forms told apart


def _stepped(optimizer, gradients, theta0, be):
    """theta after each update of ``optimizer`` on ``gradients`` (steps, ...)."""
    from dlcore.optimizers import Parameter
    theta, grad = be.asarray(theta0.copy()), be.zeros(theta0.shape)
    parameter = Parameter("layer/kernel", theta, grad)
    optimizer.build([parameter], be)
    trajectory = []
    for g in gradients:
        be.copy_into(grad, g)
        optimizer.apply([parameter])
        trajectory.append(np.array(be.to_numpy(theta), copy=True))
    return np.array(trajectory)


def test_a_plain_rmsprops_settings_are_those_older_dlcores_wrote_and_read():
    """The momentum and the centring enter the settings a file keeps only where they are on:
    a plain RMSprop's file is read by an older dlcore as before (one with them is refused
    there in one line, its RMSProp naming the setting it had not: no other key is new)."""
    assert set(RMSProp(0.01).get_config()) == {
        "learning_rate", "clipnorm", "global_clipnorm", "weight_decay", "rho", "epsilon",
        "epsilon_form"}
    config = RMSProp(0.01, momentum=0.5, centered=True).get_config()
    assert (config["momentum"], config["centered"]) == (0.5, True)
    assert RMSProp.from_config(config).get_config() == config


@pytest.mark.parametrize("form", ["dlcore", "keras"])
def test_a_network_saved_mid_training_goes_on_as_one_that_was_not(form, tmp_path):
    """2 epochs, saved in dlcore's file, loaded, 2 more: the 4 epochs straight, bit for bit
    (the momentum b and the mean gradient a are saved beside the mean square)."""
    x = np.random.default_rng(0).random((20, 5)).astype(np.float32)
    labels = np.random.default_rng(1).integers(0, 3, 20)

    def network():
        model = dlcore.Sequential([Dense(4, activation="relu", input_shape=(5,)),
                                   Dense(3, activation="softmax")], backend="cpu", seed=2)
        return model.compile("cross_entropy", RMSProp(0.01, momentum=0.9, centered=True,
                                                      epsilon_form=form))

    straight = network()
    straight.fit(x, labels, epochs=4, batch_size=8, shuffle=False, verbose=0)
    part = network()
    part.fit(x, labels, epochs=2, batch_size=8, shuffle=False, verbose=0)
    dlcore.save(part, tmp_path / "model.h5")
    resumed = dlcore.load(tmp_path / "model.h5")
    assert resumed.optimizer.get_config() == part.optimizer.get_config()
    resumed.fit(x, labels, epochs=2, batch_size=8, shuffle=False, verbose=0)
    for got, expected in zip(resumed.get_weights(), straight.get_weights(), strict=True):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("optimizer", [
    lambda rate: RMSProp(rate, momentum=0.9, centered=True),
    lambda rate: SGD(rate, momentum=0.9)], ids=["rmsprop", "sgd"])
def test_a_pytorch_form_momentum_crosses_a_keras_archive_at_the_rate_it_was_scaled_by(
        optimizer, tmp_path):
    """dlcore's own momentum (RMSprop's b, SGD's Delta) crosses a ``.keras`` archive as
    Keras's eta b at the rate of the next update, and is read back divided by that same rate:
    under a schedule, the rate at the saved update count, not the schedule's first (which
    left b 8 times too large after 6 updates here: the resumed run stepped off at once)."""
    x = np.random.default_rng(0).random((20, 5)).astype(np.float32)
    labels = np.random.default_rng(1).integers(0, 3, 20)
    model = dlcore.Sequential([Dense(4, activation="relu", input_shape=(5,)),
                               Dense(3, activation="softmax")], backend="cpu", seed=2)
    model.compile("cross_entropy", optimizer(ExponentialDecay(0.01, 2, 0.5)))
    model.fit(x, labels, epochs=2, batch_size=8, shuffle=False, verbose=0)
    dlcore.save(model, tmp_path / "model.keras", format="keras")
    back = dlcore.load(tmp_path / "model.keras")
    assert back.optimizer.iterations == model.optimizer.iterations == 6
    name = model.optimizer.slot_names[-1 if isinstance(model.optimizer, SGD) else 1]
    for saved, read in zip(model.trainable_parameters, back.trainable_parameters, strict=True):
        np.testing.assert_allclose(read.slots[name], saved.slots[name], rtol=1e-6,
                                   atol=1e-6 * float(np.abs(saved.slots[name]).max()))


def _centred_model(tmp_path, suffix):
    x = np.random.default_rng(0).random((20, 5)).astype(np.float32)
    labels = np.random.default_rng(1).integers(0, 3, 20)
    model = dlcore.Sequential([Dense(4, activation="relu", input_shape=(5,)),
                               Dense(3, activation="softmax")], backend="cpu", seed=2)
    model.compile("cross_entropy", RMSProp(0.01, momentum=0.9, centered=True,
                                           epsilon_form="keras"))
    model.fit(x, labels, epochs=1, batch_size=8, shuffle=False, verbose=0)
    path = tmp_path / f"model{suffix}"
    dlcore.save(model, path, **({"format": "keras"} if suffix == ".keras" else {}))
    return path


def _with_mean_gradients_of(path, value, tmp_path):
    """``path`` with every centred mean gradient a set to ``value``: in dlcore's file the
    ``average_gradient`` slots, in a ``.keras`` archive Keras's last block of 4 variables
    (the count, the rate, then 4 mean squares, 4 momenta, 4 mean gradients)."""
    import zipfile

    import h5py
    if path.suffix == ".h5":
        with h5py.File(path, "r+") as file:
            slots = file["training/optimizer/slots"]
            for layer in slots:
                for weight in slots[layer]:
                    slots[layer][weight]["average_gradient"][...] = value
        return path
    damaged = tmp_path / "damaged.keras"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(damaged, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "model.weights.h5":
                (tmp_path / "weights.h5").write_bytes(data)
                with h5py.File(tmp_path / "weights.h5", "r+") as file:
                    for index in range(10, 14):
                        file[f"optimizer/vars/{index}"][...] = value
                data = (tmp_path / "weights.h5").read_bytes()
            target.writestr(item, data)
    return damaged


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_a_file_whose_mean_gradients_square_above_the_mean_squares_is_refused(suffix,
                                                                              tmp_path):
    """A centred RMSprop's a^2 is never above s (a weighted mean's square is at most the
    mean of the squares, with weights summing to at most 1): s - a^2 under the root then is
    the gradients' variance. A damaged file with a = 100 loaded, and its first update took
    the root of a negative number, NaN (reported as a diverging training run: 'lower the
    learning rate'). It is refused in one line naming the slot; its own values load."""
    path = _centred_model(tmp_path, suffix)
    dlcore.load(path)
    with pytest.raises(dlcore.ModelFileError,
                       match=r"average_gradient.*square.*above.*mean_square") as caught:
        dlcore.load(_with_mean_gradients_of(path, 100.0, tmp_path))
    assert "\n" not in str(caught.value)
