"""``dlcore convert IN OUT --to keras|dlcore``: a model file in the other format.

``--to keras`` writes a dlcore Sequential or Model (from a dlcore file, or a Keras file read
back) as a Keras file that ``keras.models.load_model`` loads: Keras 3's archive when OUT ends in
``.keras``, else a legacy Keras HDF5 model file; ``--to dlcore`` imports a Keras file (either
kind; or copies a dlcore file) into dlcore's own format. The mapping and what is refused:
docs/hdf5-format.md, "Keras files" (dlcore/io/keras.py, dlcore/io/keras_archive.py).
"""
import warnings
from pathlib import Path

import click

from dlcore.cli import main
from dlcore.io import load, save


@main.command("convert")
@click.argument("input_file", type=click.Path(path_type=Path))
@click.argument("output_file", type=click.Path(path_type=Path))
@click.option("--to", "target", type=click.Choice(["keras", "dlcore"]), required=True,
              help="The format of OUTPUT_FILE.")
def convert(input_file, output_file, target):
    """Convert INPUT_FILE (a dlcore model file, a Keras HDF5 model file or a Keras 3 .keras
    archive) to OUTPUT_FILE in the format --to names (keras: an archive when OUTPUT_FILE ends
    in .keras, else an HDF5 file). A layer without an equivalent in the target format is
    refused with one line naming it; layers that are the identity at inference (augmentation)
    are left out with a note."""
    model = load(input_file)
    with warnings.catch_warnings(record=True) as notes:
        warnings.simplefilter("always")
        try:
            save(model, output_file, format=target)
        except TypeError as error:  # a model Keras has no file for (an RBM, a DBN)
            raise click.ClickException(f"{input_file}: {error}") from None
    for note in notes:
        click.echo(f"note: {note.message}")
    click.echo(f"wrote {output_file} ({target} format, {type(model).__name__} of "
               f"{len(getattr(model, 'layers', []))} layers)")
