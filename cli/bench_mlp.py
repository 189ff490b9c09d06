"""``dlcore bench mlp``: one fine-tuning epoch of a DBN's network and one inference pass,
dlcore against PyTorch at equal work, in alternation.

The network is the one :meth:`dlcore.DBN.to_network` makes of a 784-500-500 DBN, with dropout:
784 -> Dense 500, sigmoid, Dropout 0.2 -> Dense 500, sigmoid, Dropout 0.2 -> Dense 10, softmax
cross-entropy, trained by SGD (learning rate 0.1, momentum 0.9) on mini-batches of 32 drawn in a
new order every epoch; inference gives class probabilities (dropout off). Both sides start from
their own random weights (the speed does not depend on them). The rules are those of
:mod:`dlcore.bench`; the workloads are in :mod:`dlcore.bench_workloads`.
"""
import click

import dlcore
from dlcore.cli._common import backend_option
from dlcore.cli._dbn import parse_layers
from dlcore.cli.bench import bench, json_option, repeats_option, run_benchmark
from dlcore.cli.bench_cnn import (
    BATCH_SIZE_HELP,
    INFERENCE_IMAGES_HELP,
    TRAIN_IMAGES_HELP,
    benchmark_images,
    torch_note,
)


@bench.command("mlp")
@click.option("--layers", "layers_text", default="784-500-500-10", show_default=True,
              help="Inputs, hidden layers, classes.")
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=0.2,
              show_default=True, help="Dropout rate after each hidden layer.")
@click.option("--train-images", type=click.IntRange(min=32, max=60_000), default=60_000,
              show_default=True, help=TRAIN_IMAGES_HELP)
@click.option("--test-images", type=click.IntRange(min=32, max=60_000), default=10_000,
              show_default=True, help=INFERENCE_IMAGES_HELP)
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True,
              help=BATCH_SIZE_HELP)
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), default=0.1,
              show_default=True)
@click.option("--momentum", type=click.FloatRange(0, 1, max_open=True), default=0.9,
              show_default=True)
@repeats_option(3)
@click.option("--skip-torch", is_flag=True, help="Time dlcore only.")
@backend_option
@json_option
def bench_mlp(layers_text, dropout, train_images, test_images, batch_size, learning_rate,
              momentum, repeats, skip_torch, backend, as_json):
    """Fine-tuning a DBN's net (784-500-500-10, sigmoid, dropout 0.2, batch 32, SGD with
    momentum): one training epoch and inference, dlcore vs PyTorch (on its CUDA device for
    --backend cuda, else its CPU)."""
    import numba

    from dlcore import bench_workloads as workloads
    layers = parse_layers(layers_text)
    if len(layers) < 3 or layers[0] != 784:
        raise click.BadParameter(f"give 784 inputs, at least one hidden layer and the classes "
                                 f"(784-500-500-10), got {layers_text!r}",
                                 param_hint="--layers")
    threads = numba.get_num_threads()
    images, labels, test, source = benchmark_images(train_images, test_images)
    x, x_test = images.reshape(len(images), -1), test.reshape(len(test), -1)
    y = labels % layers[-1]
    note, missing = torch_note(skip_torch)
    hidden = tuple(layers[1:-1])

    def comparisons():
        model = dlcore.models.mlp(input_shape=(layers[0],), hidden=hidden,
                                  n_classes=layers[-1], activation="sigmoid", dropout=dropout,
                                  backend=backend, seed=0)
        model.compile("cross_entropy", dlcore.optimizers.SGD(learning_rate, momentum=momentum))
        torch_network = (("torch_mlp", (layers[0], hidden, layers[-1], dropout))
                         if note == "included" else None)
        return workloads.network_comparisons(model, torch_network, x, y, x_test, batch_size,
                                             threads)

    setting = {"layers": layers, "dropout": dropout, "train_images": len(x),
               "test_images": len(x_test), "batch_size": batch_size, "data": source,
               "learning_rate": learning_rate, "momentum": momentum, "repeats": repeats,
               "torch": note}
    title = (f"fine-tuning net {layers_text}, sigmoid, dropout {dropout}, {source}: training "
             f"epoch over {len(x):,} images and inference over {len(x_test):,}, batch "
             f"{batch_size}, SGD {learning_rate} momentum {momentum}; {repeats} alternating "
             "runs after a warm-up")
    extra = [f"PyTorch: {note} (--skip-torch)"] if skip_torch else []
    run_benchmark("mlp", title, setting, comparisons, repeats, missing + extra, as_json)
