"""``dlcore convert IN OUT [--to keras|dlcore]``: a model file in the other format.

OUT's suffix names the format where it can: ``.keras`` is Keras 3's archive, so ``--to keras``;
``.h5`` (and any other suffix) is refused without ``--to``, in one line naming it, before IN is
read: Keras's legacy HDF5 model files and dlcore's own both end in ``.h5``.

``--to keras`` writes a dlcore Sequential or Model (from a dlcore file, or a Keras file read
back) as a Keras file that ``keras.models.load_model`` loads: Keras 3's archive when OUT ends in
``.keras``, else a legacy Keras HDF5 model file; ``--to dlcore`` imports a Keras file (either
kind; or copies a dlcore file) into dlcore's own format. The mapping and what is refused:
docs/hdf5-format.md, "Keras files" (dlcore/io/keras.py, dlcore/io/keras_archive.py).
"""
import warnings
from pathlib import Path

import click

import dlcore
from dlcore.cli import main
from dlcore.cli._common import OutFile
from dlcore.io import load, save
from dlcore.io.atomic import shell_word
from dlcore.wording import with_article


@main.command("convert")
@click.argument("input_file", type=click.Path(path_type=Path))
@click.argument("output_file", type=OutFile(example="model.keras"))
@click.option("--to", "target", type=click.Choice(["keras", "dlcore"]), default=None,
              help="The format of OUTPUT_FILE (keras when its name ends in .keras; needed for "
                   "any other name: .h5 is the suffix of both).")
def convert(input_file, output_file, target):
    """Convert INPUT_FILE (a dlcore model file, a Keras HDF5 model file or a Keras 3 .keras
    archive) to OUTPUT_FILE in the format --to names (keras: an archive when OUTPUT_FILE ends
    in .keras, else an HDF5 file); without --to, an OUTPUT_FILE ending in .keras is a Keras
    archive. A layer without an equivalent in the target format is refused with one line
    naming it; layers that are the identity at inference (augmentation) are left out with a
    note."""
    target = _output_format(output_file, target)
    model = load(input_file)
    if target == "keras" and not isinstance(model, (dlcore.Sequential, dlcore.Model)):
        # save's "format='keras' writes a dlcore.Sequential or dlcore.Model; got DBN" spoke
        # Python to a command-line user and named no file that converts
        fine_tune = (f"; `dlcore dbn finetune {shell_word(str(input_file))}` makes a network "
                     "of this DBN" if isinstance(model, dlcore.DBN) else "")
        raise click.ClickException(
            f"{input_file} holds {with_article(type(model).__name__)}, which Keras has no "
            f"model for: only a network converts (the model.h5 of `dlcore cnn train` or "
            f"`dlcore dbn finetune`){fine_tune}")
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


def _output_format(output_file, target):
    """``--to``, else the format OUTPUT_FILE's suffix names (``.keras``: Keras's archive); a
    usage error in one line where the two disagree or the suffix names none, before the input
    is read."""
    is_archive = output_file.name.endswith(".keras")   # as dlcore.save and Keras tell it
    if target == "dlcore" and is_archive:
        raise click.UsageError(
            f"{output_file}: a .keras file is a Keras 3 archive, not dlcore's format: give "
            f"--to keras, or name the dlcore file {output_file.with_suffix('.h5').name}")
    if target is not None:
        return target
    if is_archive:
        return "keras"
    both = " (Keras's legacy HDF5 model files and dlcore's own both end in .h5)" \
        if output_file.suffix.lower() in (".h5", ".hdf5") else ""
    raise click.UsageError(
        f"cannot tell the format of {output_file} from its name{both}: give --to keras or "
        f"--to dlcore (a name ending in .keras is a Keras 3 archive)")
