"""``dlcore info model.h5``: what a model file holds."""
from pathlib import Path

import click

from dlcore.cli import main
from dlcore.io import describe


@main.command("info")
@click.argument("model_file", type=click.Path(path_type=Path))
def info(model_file):
    """Print the format, hyperparameters, datasets and history of a dlcore model file."""
    click.echo(describe(model_file))
