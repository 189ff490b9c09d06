"""The Python work of a training step does not grow with the batches: what a fit can look up
once (the product blocks, a dropout layer's Philox key, a layer's buffers, the loss's output
size) is not looked up again at every batch, where each look-up cost microseconds of a
fine-tuning batch's ~0.7 ms (issue 11, ``dlcore bench mlp``)."""
import collections

import numpy as np

import dlcore


def counted_fits(monkeypatch, batch_counts):
    """Calls, by name, of the per-batch look-ups during a fit of each of ``batch_counts``
    batches of 32, on one warmed-up model (products of 32 x 256 x 256 multiply-adds: large
    enough for the cpu to split them); and the kinds of the keys of the layers' workspaces."""
    from dlcore.backend import cpu, rng
    from dlcore.layers import base
    calls = collections.Counter()

    def counting(name, function):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return function(*args, **kwargs)
        return wrapper
    monkeypatch.setattr(cpu, "product_parts", counting("product blocks", cpu.product_parts))
    monkeypatch.setattr(rng, "check_seed", counting("seed checks", rng.check_seed))
    monkeypatch.setattr(np, "prod", counting("np.prod", np.prod))
    monkeypatch.setattr(base.Layer, "_buffer", counting("buffers", base.Layer._buffer))
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
