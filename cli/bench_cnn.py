"""``dlcore bench cnn``: one LeNet-5 training epoch and one inference pass, dlcore against
PyTorch at equal work, in alternation.

Both contenders train the same network (conv 6@5x5 padding 2, ReLU, 2x2 max pool, conv 16@5x5,
ReLU, 2x2 max pool, dense 120, 84, 10, softmax cross-entropy) with SGD (learning rate 0.01,
momentum 0.9) on mini-batches of 64 drawn in a new random order every epoch, then predict class
probabilities for 10,000 images in batches of 64, with the same number of threads. The rules
(warm-up, alternating repeats, min and median, equal work checked) are those of
:mod:`dlcore.bench`; the workloads are in :mod:`dlcore.bench_workloads`.
"""
import click
import numpy as np

import dlcore
from dlcore.bench import missing_contenders
from dlcore.cli._common import backend_option
from dlcore.cli.bench import bench, json_option, repeats_option, run_benchmark

LEARNING_RATE, MOMENTUM = 0.01, 0.9

#: Help of the options both network benchmarks share (the shared table's --batch-size and
#: --test-images said "one update of the weights each" and "test images": the batch is the
#: inference's too, and the inference's images are the first training images).
TRAIN_IMAGES_HELP = ("Images of the timed training epoch: the first of Fashion-MNIST's "
                     "training split (random images when it is not installed).")
INFERENCE_IMAGES_HELP = ("Images of the timed inference: the first of the same training "
                         "images.")
BATCH_SIZE_HELP = ("Images per mini-batch, of the timed epoch (one update of the weights "
                   "each) and of the timed inference.")


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


def torch_note(skip_torch):
    """``(note, missing lines)``: "included", "skipped" or why PyTorch cannot run."""
    if skip_torch:
        return "skipped", []
    missing = missing_contenders(["torch"])
    if missing:   # "not installed" or "cannot be imported"
        return missing[0].split(": ", 1)[1].split(" (")[0], missing
    return "included", []


@bench.command("cnn")
@click.option("--train-images", type=click.IntRange(min=64, max=60_000), default=60_000,
              show_default=True, help=TRAIN_IMAGES_HELP)
@click.option("--test-images", type=click.IntRange(min=64, max=60_000), default=10_000,
              show_default=True, help=INFERENCE_IMAGES_HELP)
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True,
              help=BATCH_SIZE_HELP)
@repeats_option(3)
@click.option("--skip-torch", is_flag=True, help="Time dlcore only.")
@backend_option
@json_option
def bench_cnn(train_images, test_images, batch_size, repeats, skip_torch, backend, as_json):
    """LeNet-5: one training epoch (60,000 images, batch 64, SGD with momentum) and inference
    (10,000 images), dlcore vs PyTorch (on its CUDA device for --backend cuda, else its CPU),
    min and median of --repeats alternating runs."""
    import numba

    from dlcore import bench_workloads as workloads
    threads = numba.get_num_threads()
    x, y, x_test, source = benchmark_images(train_images, test_images)
    note, missing = torch_note(skip_torch)

    def comparisons():
        model = dlcore.models.lenet5(backend=backend, seed=0)
        model.compile("cross_entropy", dlcore.optimizers.SGD(LEARNING_RATE, momentum=MOMENTUM))
        torch_network = ("torch_lenet5", ()) if note == "included" else None
        return workloads.network_comparisons(model, torch_network, x, y, x_test, batch_size,
                                             threads)

    setting = {"train_images": len(x), "test_images": len(x_test), "batch_size": batch_size,
               "data": source, "repeats": repeats, "torch": note,
               "learning_rate": LEARNING_RATE, "momentum": MOMENTUM}
    title = (f"LeNet-5, {source}: training epoch over {len(x):,} images and inference over "
             f"{len(x_test):,}, batch {batch_size}, SGD momentum {MOMENTUM}; {repeats} "
             "alternating runs after a warm-up")
    extra = [f"PyTorch: {note} (--skip-torch)"] if skip_torch else []
    run_benchmark("cnn", title, setting, comparisons, repeats, missing + extra, as_json)
