"""dlcore asks OpenMP for passive waiting unless the user chose (dlcore/backend/threads.py)."""
import os
import subprocess
import sys

import pytest

from dlcore.backend import threads


@pytest.mark.parametrize("environment, expected", [
    ({}, "OMP_WAIT_POLICY=PASSIVE"),
    ({"OMP_WAIT_POLICY": "ACTIVE"}, "OMP_WAIT_POLICY=ACTIVE"),
    ({"GOMP_SPINCOUNT": "1000"}, "GOMP_SPINCOUNT=1000"),
])
def test_passive_waiting_is_the_default_and_the_users_choice_wins(environment, expected):
    given = dict(environment)
    assert threads.prefer_passive_waiting(environment) == expected
    if given:
        assert environment == given      # nothing added to what the user chose
    else:
        assert environment == {"OMP_WAIT_POLICY": "PASSIVE"}


def _policy_seen_by_a_parallel_kernel(extra_environment):
    """OMP_WAIT_POLICY in a fresh process that imports dlcore and then runs a parallel kernel
    (when OpenMP reads it), and in the environment dlcore gives another library's process
    (:func:`threads.user_environment`)."""
    code = ("import os, numpy as np, numba, dlcore.backend\n"
            "@numba.njit(parallel=True)\n"
            "def add(a):\n"
            "    for i in numba.prange(a.shape[0]): a[i] += 1\n"
            "add(np.zeros(8))\n"
            "from dlcore.backend.threads import user_environment\n"
            "print(os.environ.get('OMP_WAIT_POLICY'),"
            " user_environment().get('OMP_WAIT_POLICY'))\n")
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    environment.update(extra_environment)
    result = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return tuple(result.stdout.split())


def test_importing_dlcore_sets_passive_waiting_before_any_kernel_runs():
    # dlcore's own setting is left out of what another library's process gets; the user's not
    assert _policy_seen_by_a_parallel_kernel({}) == ("PASSIVE", "None")
    assert _policy_seen_by_a_parallel_kernel({"OMP_WAIT_POLICY": "active"}) == ("active",
                                                                                "active")
