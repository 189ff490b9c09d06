"""Ctrl-C on ``mpiexec -n R dlcore ... --distributed`` (cli/_distributed.py): rank 0 alone says
what it saved and how to resume (with ``mpiexec -n R``), the other ranks remove their private
folders and end quietly, and no rank aborts the job (MPI_Abort's exit code 1 and its lines).
Oracles: the single-process behaviour the README documents (exit code 130, one line, the
command that resumes), played by a stand-in communicator, so no MPI is needed."""
import atexit
import os
import sys

import click
import pytest

import dlcore.distributed
from dlcore.cli import _distributed
from dlcore.cli._common import TrainingInterrupted, resume_command


class StandInCommunicator:
    """Rank ``rank`` of two; records an abort instead of stopping the process."""

    def __init__(self, rank):
        self.rank, self.size, self.is_root, self.threads = rank, 2, rank == 0, 1
        self.aborted = None

    def abort(self, message, exit_code=1):
        self.aborted = (message, exit_code)


@pytest.fixture
def rank(monkeypatch):
    """``rank(r)`` makes data_parallel run as rank r of 2; the streams it silences and the
    stderr it closes at exit are this test's own (restored, never closed)."""
    monkeypatch.setattr(sys, "stdout", sys.stdout)
    monkeypatch.setattr(sys, "stderr", sys.stderr)
    at_exit = []
    monkeypatch.setattr(atexit, "register", at_exit.append)

    def as_rank(number):
        communicator = StandInCommunicator(number)
        monkeypatch.setattr(dlcore.distributed, "init", lambda: communicator)
        monkeypatch.setattr(dlcore.distributed, "periodic", lambda comm, every: comm)
        return communicator, at_exit

    return as_rank


@pytest.mark.parametrize("number", [0, 1])
def test_a_ctrl_c_ends_every_rank_without_aborting_the_job(rank, tmp_path, number):
    communicator, at_exit = rank(number)
    interruption = TrainingInterrupted("interrupted: saved the model after epoch 5 of 60")
    with pytest.raises(TrainingInterrupted) as caught, \
            _distributed.data_parallel(True, tmp_path / "run") as (comm, folder):
        private = folder
        raise interruption
    assert caught.value is interruption    # OneLineErrorGroup prints it (rank 0) and exits 130
    assert communicator.aborted is None
    assert _distributed._silence_mpi_at_exit in at_exit
    if number == 1:
        assert private != tmp_path / "run" and "dlcore-rank1-" in str(private)
        assert not os.path.exists(private)   # its checkpoint went with it


def test_a_failure_on_a_rank_still_stops_every_rank_with_its_line(rank, tmp_path):
    communicator, _ = rank(1)
    with pytest.raises(ValueError), \
            _distributed.data_parallel(True, tmp_path / "run") as (comm, folder):
        raise ValueError("rank 1 could not read its data")
    assert communicator.aborted == ("rank 1 could not read its data", 1)


def test_the_resume_command_of_a_distributed_run_starts_as_many_ranks(monkeypatch, tmp_path):
    @click.command()
    @click.option("--epochs", type=int, default=10)
    @click.option("--distributed", is_flag=True)
    @click.option("--resume", default=None)
    def train(epochs, distributed, resume):
        """A training command's options."""

    monkeypatch.setenv("PMI_SIZE", "2")
    with click.Context(train, info_name="dlcore rbm train") as context:
        context.params = {"epochs": 60, "distributed": True, "resume": None}
        assert resume_command(tmp_path / "checkpoint.h5") == (
            f"mpiexec -n 2 dlcore rbm train --epochs 60 --distributed --resume "
            f"{tmp_path / 'checkpoint.h5'}")
        context.params["distributed"] = False
        assert resume_command("c.h5") == "dlcore rbm train --epochs 60 --resume c.h5"
