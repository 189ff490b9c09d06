"""The ``dlcore`` command (Click). Sub-commands live one per module in this folder."""
import click

from dlcore._version import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dlcore")
def main():
    """dlcore: RBMs, Deep Belief Networks and convolutional networks for teaching."""
