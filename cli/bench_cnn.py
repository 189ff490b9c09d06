"""``dlcore bench cnn``: one LeNet-5 training epoch and one inference pass, dlcore against
PyTorch in the same run.

Both contenders train the same network (conv 6@5x5 padding 2, ReLU, 2x2 max pool, conv 16@5x5,
ReLU, 2x2 max pool, dense 120, 84, 10, softmax cross-entropy) with SGD (learning rate 0.01,
momentum 0.9) on mini-batches of 64 drawn in a new random order every epoch, then predict class
probabilities for 10,000 images in batches of 64, with the same number of threads. Each gets a
warm-up (Numba compiles, PyTorch allocates), then ``--repeats`` timed runs; we report the
minimum and the median (the rules of :mod:`dlcore.bench`).
"""
import json
import statistics

import click
import numpy as np

import dlcore
from dlcore.bench import machine_description, machine_line, missing_contenders, time_repeats
from dlcore.cli._common import backend_option
from dlcore.cli.bench import bench

LEARNING_RATE, MOMENTUM = 0.01, 0.9


def benchmark_images(n_train, n_test):
    """Fashion-MNIST images in [0, 1] as (n, 1, 28, 28) float32 when installed, else random
    ones; with labels."""
    from dlcore.backend import rng
    try:
        images, labels = dlcore.datasets.load_fashion_mnist("train", download=False,
                                                            progress=False)
        x = dlcore.datasets.to_unit_interval(images).reshape(-1, 1, 28, 28)
        source = "Fashion-MNIST"
    except (OSError, ValueError):
        x = rng.uniform(60_000, 784, 0, rng.STREAM_SPLIT).reshape(-1, 1, 28, 28)
        labels = (rng.uniform(60_000, 1, 0, rng.STREAM_SPLIT, 1)[:, 0] * 10).astype(np.int64)
        source = "random images (Fashion-MNIST not installed)"
    x = np.ascontiguousarray(x, dtype=np.float32)
    return x[:n_train], labels[:n_train].astype(np.int64), x[:n_test], source


def dlcore_contender(x, y, x_test, batch_size, backend):
    model = dlcore.models.lenet5(backend=backend, seed=0)
    model.compile("cross_entropy", dlcore.optimizers.SGD(LEARNING_RATE, momentum=MOMENTUM))

    def train():
        model.fit(x, y, epochs=1, batch_size=batch_size, verbose=0)

    def infer():
        model.predict(x_test, batch_size=batch_size)

    model.fit(x[:10 * batch_size], y[:10 * batch_size], epochs=1, batch_size=batch_size,
              verbose=0)
    infer()
    return f"dlcore {model.backend.name}", train, infer


def torch_contender(x, y, x_test, batch_size, threads):
    import torch
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                          nn.Linear(84, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM)
    images, labels, test = torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(x_test)
    loss_function, n_images = nn.CrossEntropyLoss(), len(images)

    def train(n=n_images):
        order = torch.randperm(n)
        for start in range(0, n, batch_size):
            rows = order[start:start + batch_size]
            optimizer.zero_grad()
            loss_function(model(images[rows]), labels[rows]).backward()
            optimizer.step()

    def infer():
        with torch.no_grad():
            for start in range(0, len(test), batch_size):
                torch.softmax(model(test[start:start + batch_size]), dim=1)

    train(min(10 * batch_size, len(images)))
    infer()
    return f"PyTorch {torch.__version__} cpu", train, infer


def row(task, name, seconds, n_images, reference):
    best, median = min(seconds), statistics.median(seconds)
    return {"task": task, "name": name, "min": best, "median": median,
            "images_per_second": n_images / median,
            "ratio": median / reference if reference else 1.0, "seconds": seconds}


@bench.command("cnn")
@click.option("--train-images", type=click.IntRange(min=64, max=60_000), default=60_000,
              show_default=True)
@click.option("--test-images", type=click.IntRange(min=64, max=60_000), default=10_000,
              show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--skip-torch", is_flag=True, help="Time dlcore only.")
@backend_option
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def bench_cnn(train_images, test_images, batch_size, repeats, skip_torch, backend, as_json):
    """LeNet-5: one training epoch (60,000 images, batch 64, SGD with momentum) and inference
    (10,000 images), dlcore vs PyTorch CPU, min and median of --repeats runs."""
    import numba
    threads = numba.get_num_threads()
    x, y, x_test, source = benchmark_images(train_images, test_images)
    contenders = [dlcore_contender(x, y, x_test, batch_size, backend)]
    torch_note, missing = "skipped", []
    if not skip_torch:
        missing = missing_contenders(["torch"])
        if missing:   # "not installed" or "cannot be imported"
            torch_note = missing[0].split(": ", 1)[1].split(" (")[0]
        else:
            contenders.append(torch_contender(x, y, x_test, batch_size, threads))
            torch_note = "included"
    results = []
    for task, index, n in (("training epoch", 1, len(x)), ("inference", 2, len(x_test))):
        reference = None
        for contender in contenders:
            seconds = time_repeats(contender[index], repeats)
            results.append(row(task, contender[0], seconds, n, reference))
            reference = reference or statistics.median(seconds)
    setting = {"benchmark": "lenet5", "train_images": len(x), "test_images": len(x_test),
               "batch_size": batch_size, "data": source, "threads": threads,
               "repeats": repeats, "torch": torch_note, "machine": machine_description()}
    if as_json:
        click.echo(json.dumps({**setting, "results": results, "missing": missing}, indent=2))
        return
    click.echo(machine_line())
    click.echo(f"LeNet-5, {source}: training epoch over {len(x):,} images and inference over "
               f"{len(x_test):,}, batch {batch_size}, SGD momentum {MOMENTUM}; {threads} threads;"
               f" {repeats} repeats after a warm-up")
    click.echo(f"{'':16s}{'':24s}{'min s':>8}{'median s':>10}{'images/s':>11}"
               f"{'vs dlcore':>11}")
    for r in results:
        click.echo(f"{r['task']:16s}{r['name']:24s}{r['min']:8.3f}{r['median']:10.3f}"
                   f"{r['images_per_second']:11,.0f}{r['ratio']:10.2f}x")
    for line in missing or ([f"PyTorch: {torch_note} (--skip-torch)"] if skip_torch else []):
        click.echo(line)
