"""The ``dlcore`` command (Click). Each sub-command lives in its own module of this folder; the
modules named in ``_COMMAND_MODULES`` attach themselves to :func:`main` when imported."""
import importlib

import click

from dlcore._version import __version__
from dlcore.cli._common import (
    OneLineErrorGroup,
    describe_shared_options,
    refuse_counts_past_model_files,
    refuse_non_finite_numbers,
)


@click.group(cls=OneLineErrorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dlcore")
def main():
    """dlcore: RBMs, Deep Belief Networks and convolutional networks for teaching."""


_COMMAND_MODULES = ["homework", "rbm", "info", "bench", "cnn", "gradcheck", "homework_lenet",
                    "bench_cnn", "homework_task2", "dbn", "homework_pretraining",
                    "bench_dbn", "convert", "bench_mlp", "doctor", "bench_ais",
                    "homework_regularisation", "ae", "bench_distributed",
                    "homework_samplers", "sweep"]

for _module in _COMMAND_MODULES:
    importlib.import_module(f"{__name__}.{_module}")

describe_shared_options(main)
refuse_non_finite_numbers(main)
refuse_counts_past_model_files(main)
