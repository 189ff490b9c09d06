"""How the CPU kernels' threads wait between parallel regions: asleep, not spinning.

Numba's default threading layer on Linux is OpenMP (GNU libgomp). Out of the box, a libgomp
thread that finishes its share of a parallel region spins for about 300,000 iterations before it
sleeps, so that the next region starts a few microseconds sooner. That pays only while every
thread has a core to itself. When anything else runs on the machine (a browser, a second
training, the test suite, another user of a shared machine), a spinning thread holds a core that
a thread of the same region needs, and every region ends by waiting a scheduler time slice:
measured on a 2-core AMD EPYC with a load average of 10, one fine-tuning epoch of a
784-500-500-10 net (3,600 rows, batch 32) took 14-33 s with the default and 0.6-1.5 s with
``OMP_WAIT_POLICY=PASSIVE`` (3.2-3.6 s with one thread). A training that crawls whenever the
machine is busy is worse than one that starts each region a few microseconds later, so dlcore
asks for passive waiting.

The OpenMP runtime reads its settings once, when Numba first loads it (the first parallel
kernel), so this module sets them at import, before any kernel runs, and only where the user
has not chosen: ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` already in the environment win.
"""
import os

#: what dlcore asks of OpenMP when the environment does not say
WAIT_POLICY = "PASSIVE"

#: the variables dlcore itself put into this process's environment, with their values
SET_BY_DLCORE = {}


def prefer_passive_waiting(environment=os.environ):
    """Set ``OMP_WAIT_POLICY=PASSIVE`` in ``environment`` unless it or ``GOMP_SPINCOUNT`` is
    set; returns the policy in force (the user's, or dlcore's) for ``dlcore doctor``."""
    if "OMP_WAIT_POLICY" not in environment and "GOMP_SPINCOUNT" not in environment:
        environment["OMP_WAIT_POLICY"] = WAIT_POLICY
        if environment is os.environ:
            SET_BY_DLCORE["OMP_WAIT_POLICY"] = WAIT_POLICY
    return wait_policy(environment)


def user_environment(environment=os.environ):
    """A copy of ``environment`` without what dlcore added to it: the settings another
    library's process gets when it should run as it would without dlcore (``dlcore bench``
    starts PyTorch's contenders in one)."""
    return {name: value for name, value in environment.items()
            if SET_BY_DLCORE.get(name) != value}


def wait_policy(environment=os.environ):
    """A line for reports: how OpenMP threads wait in this process."""
    if "GOMP_SPINCOUNT" in environment:
        return f"GOMP_SPINCOUNT={environment['GOMP_SPINCOUNT']}"
    return f"OMP_WAIT_POLICY={environment.get('OMP_WAIT_POLICY', 'default')}"


prefer_passive_waiting()
