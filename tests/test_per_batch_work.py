"""The Python work of a training step does not grow with the batches: what a fit can look up
once (the product blocks, a dropout layer's Philox key, a layer's buffers, the loss's output
size) is not looked up again at every batch, where each look-up cost microseconds of a
fine-tuning batch's ~0.7 ms (issue 11, ``dlcore bench mlp``)."""
import collections

import numpy as np
import pytest

import dlcore


def counting(calls, name, function):
    """``function``, counting its calls in ``calls[name]``."""
    def wrapper(*args, **kwargs):
        calls[name] += 1
        return function(*args, **kwargs)
    return wrapper


def counted_fits(monkeypatch, batch_counts):
    """Calls, by name, of the per-batch look-ups during a fit of each of ``batch_counts``
    batches of 32, on one warmed-up model (products of 32 x 256 x 256 multiply-adds: large
    enough for the cpu to split them); and the kinds of the keys of the layers' workspaces."""
    from dlcore.backend import cpu, rng
    from dlcore.layers import base
    calls = collections.Counter()
    monkeypatch.setattr(cpu, "product_parts",
                        counting(calls, "product blocks", cpu.product_parts))
    monkeypatch.setattr(rng, "check_seed", counting(calls, "seed checks", rng.check_seed))
    monkeypatch.setattr(np, "prod", counting(calls, "np.prod", np.prod))
    monkeypatch.setattr(base.Layer, "_buffer", counting(calls, "buffers", base.Layer._buffer))
    data = np.random.default_rng(0).random((32 * max(batch_counts), 256), dtype=np.float32)
    labels = np.arange(len(data)) % 10
    model = dlcore.models.mlp(input_shape=(256,), hidden=(256,), n_classes=10,
                              activation="sigmoid", dropout=0.2, backend="cpu", seed=0)
    model.compile("cross_entropy", dlcore.optimizers.SGD(0.1, momentum=0.9))
    model.fit(data[:32], labels[:32], epochs=1, batch_size=32, verbose=0, shuffle=False)
    counts = []
    for n_batches in batch_counts:
        calls.clear()
        model.fit(data[:32 * n_batches], labels[:32 * n_batches], epochs=1, batch_size=32,
                  verbose=0, shuffle=False)
        counts.append(dict(calls))
    views = collections.Counter()
    for layer in model.layers:
        views.update(type(key).__name__ for key in layer._workspace)
    return counts, views


def test_a_fit_looks_up_its_blocks_keys_and_sizes_once_not_at_every_batch(monkeypatch):
    (few, many), views = counted_fits(monkeypatch, (2, 6))
    for name in ("product blocks", "seed checks", "np.prod"):
        assert many.get(name, 0) == few.get(name, 0), (name, few, many)
    # the buffers are asked for at every batch: each shape's view is made once and kept
    assert many["buffers"] > few["buffers"] > 0
    assert views["tuple"] > 0


@pytest.mark.parametrize("activation", ["sigmoid", "relu", "tanh", "linear"])
@pytest.mark.parametrize("n, units", [(32, 500), (100, 500), (7, 13)])  # (100, 500): threads
def test_a_dense_layers_gradients_are_one_launch_with_the_numbers_of_two(
        monkeypatch, activation, n, units):
    """dL/dz and dL/db of a Dense layer come from one launch, bit for bit those of the two
    launches they fuse (the activation's gradient, then the bias gradient's sums)."""
    from dlcore.backend import get_backend
    from dlcore.layers.bodies import (
        ACTIVATION_CODES,
        activation_gradient_rows,
        bias_gradient_span,
    )
    from dlcore.layers.ops import KernelOps
    be = get_backend("cpu")
    rng = np.random.default_rng(1)
    x = rng.random((n, 9), dtype=np.float32)
    y = rng.random((n, units), dtype=np.float32)
    grad_y = rng.standard_normal((n, units)).astype(np.float32)
    code = ACTIVATION_CODES[activation]
    expected_g, expected_bias = np.empty(n * units, np.float32), np.empty(units, np.float32)
    grad_kernel, grad_bias = np.empty((9, units), np.float32), np.empty(units, np.float32)
    workspace = {}
    launches = collections.Counter()

    def buffer(key, shape):
        return workspace.setdefault(key, np.empty(shape, np.float32))
    with be.compute():
        be.launch_rows(activation_gradient_rows, n, units, y.reshape(n, 1, units),
                       grad_y.reshape(n, 1, units), expected_g, code, units, 0)
        be.launch_1d(bias_gradient_span, units, expected_g, expected_bias, n, 1, units, 1,
                     work=n * units)
        for name in ("launch_rows", "launch_1d"):
            monkeypatch.setattr(be, name, counting(launches, name, getattr(be, name)))
        KernelOps(be).dense_backward(x, np.ones((9, units), np.float32), y, grad_y, activation,
                                     grad_kernel, grad_bias, None, buffer)
    assert sum(launches.values()) == 1
    np.testing.assert_array_equal(workspace["grad_preactivation"].reshape(-1), expected_g)
    np.testing.assert_array_equal(grad_bias, expected_bias)


def test_the_optimisers_scalars_launch_as_one_array_kept_while_they_hold(monkeypatch):
    """The (scale, l1, l2, keep) of each parameter reach the optimiser's launch as one array,
    the same one at every batch while they do not change, and a new one when they do (weight
    decay set between two fits changes keep = 1 - eta lambda)."""
    from dlcore.backend import cpu
    seen = []
    launch = cpu.CPUBackend.launch_tensors

    def spying(self, body, tensors, shared, per_tensor):
        seen.append((per_tensor, np.array(per_tensor, dtype=np.float32)))
        return launch(self, body, tensors, shared, per_tensor)
    monkeypatch.setattr(cpu.CPUBackend, "launch_tensors", spying)
    data = np.random.default_rng(0).random((96, 20), dtype=np.float32)
    labels = np.arange(96) % 3
    model = dlcore.models.mlp(input_shape=(20,), hidden=(8,), n_classes=3, backend="cpu",
                              seed=0)
    model.compile("cross_entropy", dlcore.optimizers.SGD(0.1))
    model.fit(data, labels, epochs=1, batch_size=32, verbose=0)
    model.optimizer.weight_decay = 0.5
    model.fit(data, labels, epochs=1, batch_size=32, verbose=0)
    assert len(seen) == 6
    first, second = seen[:3], seen[3:]
    assert all(per_tensor is first[0][0] for per_tensor, _ in first)
    assert all(per_tensor is second[0][0] for per_tensor, _ in second)
    np.testing.assert_array_equal(first[0][1][:, 3], 1)
    np.testing.assert_array_equal(second[0][1][:, 3], np.float32(1 - 0.1 * 0.5))
    np.testing.assert_array_equal(second[0][1][:, :3], first[0][1][:, :3])
