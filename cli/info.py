"""``dlcore info model.h5``: what a model file holds."""
from pathlib import Path

import click

from dlcore.cli import main
from dlcore.io import describe


@main.command("info")
@click.argument("model_file", type=click.Path(path_type=Path))
def info(model_file):
    """Print the format, hyperparameters, training record, datasets and history of a dlcore
    model file.

    The file is read through the same guarded layer as dlcore.load: a damaged or hostile file
    is refused with one line naming it and the problem (exit status 1).
    """
    click.echo(describe(model_file))
