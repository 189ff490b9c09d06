"""``dlcore bench ...``: speed measured side by side with the tools users would pick instead."""
import click

from dlcore.cli import main


@main.group()
def bench():
    """Benchmarks: dlcore against NumPy, scikit-learn and PyTorch, in one run."""
