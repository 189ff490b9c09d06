"""``dlcore info model.h5``: what a model file holds."""
from pathlib import Path

import click

from dlcore.cli import main
from dlcore.io import describe, load


@main.command("info")
@click.argument("model_file", type=click.Path(path_type=Path))
def info(model_file):
    """Print the format, hyperparameters, training record, datasets and history of a dlcore
    model file.

    The file is read through the same guarded layer as dlcore.load: a damaged or hostile file
    is refused with one line naming it and the problem (exit status 1). A file whose layout can
    be listed but that would not load as a model (a parameter of the wrong shape, a value that
    is not finite) is listed, then refused the same way.
    """
    click.echo(describe(model_file))
    load(model_file)   # the listing reads no parameters: whether it loads is a separate check
