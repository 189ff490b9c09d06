"""``dlcore homework ...``: the lectures' homework, one command per task."""
import click

from dlcore.cli import main


@main.group()
def homework():
    """The lectures' homework (lecture 001: Task 1 and Task 2; lecture 003: LeNet parameters)."""
