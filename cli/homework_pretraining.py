"""``dlcore homework pretraining``: the lecture's pretraining table, reproduced on your data.

Lecture "Deep Neural Networks", "Deep Neural Networks and Backpropagation": "backpropagation
does not work well (if randomly initialized): deep networks trained with backpropagation (no
pretraining) perform worse than shallow nets", with the table of Bengio, Lamblin, Popovici &
Larochelle ("Greedy layer-wise training of deep networks", NIPS 2007) on MNIST:

                                      train.   valid.   test
    DBN, unsupervised pre-training      0%      1.2%    1.2%
    Deep net, no pre-training         .004%     2.1%    2.4%
    Shallow net, no pre-training      .004%     1.8%    1.9%

Three networks are trained here on the same split, each fine-tuned the same way (cross-entropy,
the same optimiser, early stopping on the same validation set): the deep net initialised by
greedy DBN pretraining (``DBN.to_network``), the same deep net from a random (Glorot)
initialisation, and a shallow net with one hidden layer as wide as the deep net's first.
"""
import csv

import click

import dlcore
from dlcore import viz
from dlcore.cli._common import (
    CHECKPOINT_FILE,
    Checkpoints,
    backend_option,
    checkpoint_option,
    dataset_option,
    out_folder_option,
    output_folder,
    resume_option,
    resumed_options,
    seed_option,
)
from dlcore.cli._dbn import (
    FINETUNE_DEFAULTS,
    check_width,
    error_rate,
    fine_tune,
    load_labelled_split,
    make_optimizer,
    parse_layers,
    pretrain,
    split_off_validation,
)
from dlcore.cli.dbn import DEFAULT_EPOCHS_PER_LAYER, DEFAULT_LAYERS
from dlcore.cli.homework import homework
from dlcore.io import atomic_open

PUBLISHED = {"DBN, unsupervised pre-training": ("0%", "1.2%", "1.2%"),
             "Deep net, no pre-training": (".004%", "2.1%", "2.4%"),
             "Shallow net, no pre-training": (".004%", "1.8%", "1.9%")}
# The stages of the command, each saved in --out when it ends (so that --resume, given the
# checkpoint of the stage that was interrupted, finds the ones before it): the pretrained DBN,
# then each fine-tuned network, named in its file by its Sequential name.
DBN_FILE = "dbn.h5"
NETWORK_NAMES = {"DBN, unsupervised pre-training": "pretrained_net",
                 "Deep net, no pre-training": "deep_net",
                 "Shallow net, no pre-training": "shallow_net"}


def random_network(sizes, n_classes, seed, backend):
    """Sigmoid Dense layers of ``sizes`` (visible first) and a softmax layer, Glorot-uniform
    initialised from ``seed``: the nets without pretraining."""
    from dlcore.layers import Dense
    layers = [Dense(units, activation="sigmoid") for units in sizes[1:]]
    layers.append(Dense(n_classes, activation="softmax", name="classifier"))
    return dlcore.Sequential(layers, input_shape=(sizes[0],), seed=seed, backend=backend)


def network_file(name):
    return f"{NETWORK_NAMES[name]}.h5"


def resumed_stage(path, folder):
    """``(model, stage)`` of a --resume checkpoint: the DBN being pretrained (stage None) or
    the network being fine-tuned (its table name). The stages before it must be in ``folder``."""
    model = dlcore.load(path)
    if isinstance(model, dlcore.DBN):
        return model, None
    stage = next((name for name, network_name in NETWORK_NAMES.items()
                  if isinstance(model, dlcore.Sequential) and model.name == network_name), None)
    if stage is None:
        raise click.ClickException(f"{path} holds a {type(model).__name__} that is not a stage "
                                   f"of this command: --resume takes the {CHECKPOINT_FILE} of "
                                   "an interrupted run of it")
    earlier = list(NETWORK_NAMES)[:list(NETWORK_NAMES).index(stage)]
    missing = [network_file(name) for name in earlier if not (folder / network_file(name)).exists()]
    if missing:
        raise click.ClickException(f"cannot resume from {path}: the finished stages "
                                   f"{', '.join(missing)} are not in {folder}; give the --out "
                                   "of the interrupted run")
    return model, stage


def print_table(rows):
    click.echo(f"{'':34}{'train.':>9}{'valid.':>9}{'test':>9}   (Bengio et al. 2007, MNIST)")
    for name, errors, _ in rows:
        published = "  ".join(PUBLISHED[name])
        click.echo(f"{name:34}" + "".join(f"{100 * e:>8.2f}%" for e in errors)
                   + f"   {published}")


@homework.command("pretraining")
@dataset_option()
@click.option("--layers", "layers_text", default=DEFAULT_LAYERS, show_default=True,
              help="The deep net, visible first; the shallow net keeps the first hidden layer.")
@click.option("--epochs-per-layer", type=click.IntRange(min=1),
              default=DEFAULT_EPOCHS_PER_LAYER, show_default=True,
              help="CD epochs of each RBM of the pretraining.")
@click.option("--epochs", type=click.IntRange(min=1), default=FINETUNE_DEFAULTS["epochs"],
              show_default=True, help="Most fine-tuning epochs (early stopping ends sooner).")
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True),
              default=FINETUNE_DEFAULTS["learning_rate"], show_default=True,
              help="SGD learning rate of the fine-tuning (momentum 0.9).")
@click.option("--batch-size", type=click.IntRange(min=1),
              default=FINETUNE_DEFAULTS["batch_size"], show_default=True)
@click.option("--patience", type=click.IntRange(min=0), default=FINETUNE_DEFAULTS["patience"],
              show_default=True)
@seed_option
@backend_option
@out_folder_option("runs/pretraining")
@checkpoint_option
@resume_option
@resumed_options()
def pretraining(dataset, layers_text, epochs_per_layer, epochs, learning_rate, batch_size,
                patience, seed, backend, out, checkpoint_every, resume):
    """The lecture's table (Bengio et al., NIPS 2007): does pretraining help?

    Prints the train, validation and test error of a deep net with DBN pretraining, the same
    net without it, and a shallow net; writes pretraining.csv and pretraining_curves.png, and
    each stage's model as it ends: dbn.h5, pretrained_net.h5, deep_net.h5, shallow_net.h5.
    """
    layers = parse_layers(layers_text)
    if len(layers) < 3:
        raise click.BadParameter(f"{layers_text!r}: a deep net needs at least two hidden "
                                 "layers, e.g. 784-500-500", param_hint="--layers")
    folder = output_folder(out)
    (X, y), test = load_labelled_split(dataset)
    check_width(X.shape[1], layers[0], dataset)
    train, valid = split_off_validation(X, y, FINETUNE_DEFAULTS["validation_split"], seed)
    n_classes = int(y.max()) + 1
    checkpoints = Checkpoints(folder, checkpoint_every)
    resumed, resumed_name = (None, None) if resume is None else resumed_stage(resume, folder)
    stages = list(NETWORK_NAMES)
    first_stage = 0 if resumed_name is None else stages.index(resumed_name)
    if resumed_name is None:     # pretraining: from the start, or resumed
        dbn = resumed if resumed is not None else dlcore.DBN(
            layers=layers, epochs=epochs_per_layer, seed=seed, backend=backend)
        # --learning-rate is the fine-tuning's: no option sets the RBMs' rate
        pretrain(dbn, train[0], checkpoints=checkpoints, resuming=resumed is not None,
                 rate_options={})
        dlcore.save(dbn, folder / DBN_FILE)
    checkpoints.finished_files.append(DBN_FILE)
    rows = []
    for index, name in enumerate(stages):
        if index < first_stage:      # finished before the interruption
            network = dlcore.load(folder / network_file(name))
        else:
            click.echo(f"fine-tuning: {name}", err=True)
            if index == first_stage and resumed_name is not None:
                network, optimizer = resumed, None
            else:
                network = (dbn.to_network(n_classes) if index == 0 else random_network(
                    layers if index == 1 else layers[:2], n_classes, seed, backend))
                network.name = NETWORK_NAMES[name]
                optimizer = make_optimizer("sgd", learning_rate, 0.9)
            fine_tune(network, train, valid, optimizer, epochs, batch_size, patience,
                      checkpoints=checkpoints)
            dlcore.save(network, folder / network_file(name))
        checkpoints.finished_files.append(network_file(name))
        errors = tuple(error_rate(network, *data) for data in (train, valid, test))
        rows.append((name, errors, network.history))
    print_table(rows)
    with atomic_open(folder / "pretraining.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["model", "train_error", "valid_error", "test_error", "epochs"])
        for name, errors, history in rows:
            writer.writerow([name, *(f"{e:.6f}" for e in errors), len(history["loss"])])
    viz.save_curves({name: [1 - a for a in history["val_accuracy"]]
                     for name, _, history in rows}, folder / "pretraining_curves.png",
                    ylabel="validation error", title="fine-tuning with and without pretraining")
    click.echo(f"wrote pretraining.csv, pretraining_curves.png, {DBN_FILE} and "
               f"{', '.join(network_file(name) for name in stages)} to {folder}")
