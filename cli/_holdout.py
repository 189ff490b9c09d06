"""Which mnist-5k images a saved model was trained without: the rule of every command that
measures a model file on held-out images (``rbm evaluate``, ``rbm reconstruct``, ``cnn
evaluate``).

The bundled mnist-5k has no test split: the training commands hold 100 images per class out
of training with :func:`dlcore.datasets.holdout_split`, ``homework task1``, ``rbm train``,
``homework samplers`` and ``cnn train`` with their ``--seed``, ``dbn pretrain``, ``dbn
finetune`` and ``homework pretraining`` with a fixed seed (pretraining and fine-tuning must
share the split). The images held out by another seed are mostly training images of that
model, so a measuring command rebuilds the split the model file records.
"""
import click
import numpy as np

from dlcore.cli._common import recorded_training
from dlcore.cli._dbn import SPLIT_SEED
from dlcore.datasets import dataset_key

#: The commands whose mnist-5k split is SPLIT_SEED's whatever their --seed.
FIXED_SPLIT_COMMANDS = ("dbn pretrain", "dbn finetune", "homework pretraining")


def training_seed(model):
    """The --seed the model was trained with: its training record's, else its own ``seed``
    parameter (which every training command sets from --seed); None when neither is known."""
    record = recorded_training(model) or {}
    parameters = record.get("parameters")
    for seed in (parameters.get("seed") if isinstance(parameters, dict) else None,
                 getattr(model, "seed", None)):
        if isinstance(seed, (int, np.integer)) and not isinstance(seed, (bool, np.bool_)):
            return int(seed)
    return None


def fixed_split_command(model):
    """The command of :data:`FIXED_SPLIT_COMMANDS` that trained ``model`` (``"dlcore dbn
    finetune"``), from its training record; None for any other or no record."""
    command = (recorded_training(model) or {}).get("command")
    if not isinstance(command, str):
        return None
    words = command.split()
    return next((f"dlcore {name}" for name in FIXED_SPLIT_COMMANDS
                 if words[-len(name.split()):] == name.split()), None)


def held_out_split(model, model_file, dataset, split_seed):
    """The seed of the mnist-5k hold-out split that ``model`` is measured on, and the words
    that say which held-out images these are: the split the model was trained with
    (``split_seed`` None), or the one --split-seed asks for; the other data sets have an
    official test split, and --split-seed given with one is refused (it would be ignored)."""
    if dataset_key(dataset) != "mnist-5k":
        if split_seed is not None:
            raise click.BadParameter(
                f"{split_seed} chooses which mnist-5k images are held out, but {dataset} has "
                f"a test split of its own, which is what is measured: drop --split-seed",
                param_hint="--split-seed")
        return 0, f"the test split of {dataset}"
    split = "100 images per class by the hold-out split of"
    if split_seed is not None:
        return split_seed, f"{split} --split-seed {split_seed}"
    command = fixed_split_command(model)
    if command is not None:
        return SPLIT_SEED, f"{split} seed {SPLIT_SEED}, the one '{command}' holds out"
    seed = training_seed(model)
    if seed is None:
        return 0, (f"{split} seed 0: {model_file} does not say which seed it was trained "
                   "with (give --split-seed)")
    return seed, f"{split} seed {seed}, the --seed the model was trained with"


def split_seed_option(function):
    """``--split-seed``, the mnist-5k hold-out split a command measures a model on."""
    return click.option(
        "--split-seed", type=click.IntRange(0, 2 ** 63 - 1), default=None,
        help="Seed of mnist-5k's hold-out split (100 images per class) [default: the split "
             "the model was trained with: the --seed of the command that trained it, which "
             "chose its training images, or dbn's fixed split].")(function)
