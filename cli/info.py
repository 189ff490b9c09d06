"""``dlcore info model.h5``: what a model file holds."""
import click

from dlcore.cli import main
from dlcore.cli._common import ModelFile
from dlcore.io import describe, load
from dlcore.io.hdf5 import why_load_is_not_checked


@main.command("info")
@click.argument("model_file", type=ModelFile())
def info(model_file):
    """Print the format, hyperparameters, training record, datasets and history of a dlcore
    model file.

    The file is read through the same guarded layer as dlcore.load: a damaged or hostile file
    is refused with one line naming it and the problem (exit status 1). A file of one of
    dlcore's model classes whose layout can be listed but that would not load (a parameter of
    the wrong shape, a value that is not finite) is listed, then refused the same way. A file
    of a model class of your own, or of a newer format, is listed with a line saying that
    whether it loads was not checked.
    """
    click.echo(describe(model_file))
    # The listing reads no parameters: whether the file loads is a separate check.
    reason = why_load_is_not_checked(model_file)
    if reason is None:
        load(model_file)
    else:
        click.echo(f"\nnot checked: {reason}")
