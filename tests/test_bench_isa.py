"""``dlcore bench --isa avx2``: both sides' code held to AVX2 on a wider CPU, and said so.

Oracles: a child Python started with the capped environment reports what Numba compiles for
and which kernels its BLAS chose (MKL's own code branch, OpenBLAS's core type); the CLI's
re-run is observed through a recording stand-in for the child; the machine line and the
table are read back from hand-made machine records."""
import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from dlcore import bench, bench_isa, bench_table
from dlcore.backend import cpuinfo
from dlcore.cli import main

HOST_FLAGS = set(cpuinfo.cpuinfo_fields(("flags",)).get("flags", "").split())

CHILD = """
import json
from numba.core.registry import cpu_target
from dlcore import bench, bench_isa
codegen = cpu_target.target_context.codegen()
blas = [entry for entry in bench.blas_description() if entry["used_by_dlcore"]]
print(json.dumps({"cap": bench_isa.cap_in_effect(), "cpu": codegen._get_host_cpu_name(),
                  "features": codegen._tm_features, "blas": blas}))
"""


def child_report(environment):
    completed = subprocess.run([sys.executable, "-c", CHILD], env=environment,
                               capture_output=True, text=True, timeout=300, check=True)
    return json.loads(completed.stdout.splitlines()[-1])


def test_the_avx2_cap_sets_every_librarys_variable_and_keeps_the_rest():
    environment = bench_isa.capped_environment("avx2", {"PATH": "/bin", "OMP_NUM_THREADS": "2"})
    assert environment == {"PATH": "/bin", "OMP_NUM_THREADS": "2",
                           "NUMBA_CPU_NAME": "x86-64-v3", "NUMBA_CPU_FEATURES": "",
                           "MKL_ENABLE_INSTRUCTIONS": "AVX2", "OPENBLAS_CORETYPE": "Haswell",
                           "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
                           "DLCORE_BENCH_ISA": "avx2"}
    with pytest.raises(ValueError, match="unknown ISA cap 'avx3'"):
        bench_isa.capped_environment("avx3", {})


@pytest.mark.skipif("avx2" not in HOST_FLAGS, reason="AVX2 code cannot run on this CPU")
def test_a_capped_process_compiles_for_avx2_and_its_blas_runs_avx2_kernels():
    capped = child_report(bench_isa.capped_environment("avx2", os.environ))
    assert capped["cap"]["isa"] == "AVX2" and capped["cap"]["kept"]
    assert (capped["cpu"], capped["features"]) == ("x86-64-v3", "")
    [blas] = capped["blas"]
    assert blas["kernel"] == {"MKL": "AVX2", "OpenBLAS": "Haswell"}[blas["library"]]
    native = child_report({name: value for name, value in os.environ.items()
                           if name not in bench_isa.CAPPED_VARIABLES["avx2"]
                           and name != bench_isa.CAP_VARIABLE})
    assert native["cap"] is None and native["cpu"] != "x86-64-v3"
    if "avx512f" in HOST_FLAGS:
        # the cap is what removes AVX-512: uncapped, Numba and the BLAS use it
        assert "+avx512f" in native["features"]
        assert native["blas"][0]["kernel"] in ("AVX-512", "SkylakeX", "Cooperlake",
                                               "SapphireRapids")


def test_a_cap_changed_after_numba_loaded_is_reported_as_not_kept(monkeypatch):
    environment = bench_isa.capped_environment("avx2", {})
    environment["MKL_ENABLE_INSTRUCTIONS"] = "AVX512"
    cap = bench_isa.cap_in_effect(environment)
    assert cap["isa"] == "AVX2" and not cap["kept"]
    assert bench_isa.cap_in_effect({}) is None
    machine = {"cpu": "Some CPU", "isa": "AVX-512", "cores": 2, "isa_cap": cap}
    assert "an AVX2 cap was asked but not kept" in bench.machine_line(machine)
    assert "MKL_ENABLE_INSTRUCTIONS=AVX512" in bench.machine_line(machine)


def test_the_machine_line_and_the_table_say_the_code_was_held_to_avx2(tmp_path):
    cap = {"isa": "AVX2", "numba": "x86-64-v3", "kept": True, "variables": {}}
    machine = {"cpu": "Some CPU", "isa": "AVX-512", "cores": 2, "threads": 2, "isa_cap": cap}
    assert bench.machine_line(machine) == (
        "machine: Some CPU, AVX-512 CPU, both sides' code held to AVX2 (dlcore bench --isa; "
        "Numba compiles for x86-64-v3), 2 cores, 2 threads")
    native = dict(machine, isa_cap=None)
    assert bench_table.held_to(machine) == ", both sides' code held to AVX2"
    assert bench_table.machine_identity(machine) != bench_table.machine_identity(native)
    assert bench_table.machine_identity(native) == bench_table.machine_identity(
        {key: value for key, value in native.items() if key != "isa_cap"})


def test_bench_isa_runs_the_same_bench_again_in_a_capped_child(monkeypatch):
    calls = []
    monkeypatch.delenv(bench_isa.CAP_VARIABLE, raising=False)
    monkeypatch.setattr(bench_isa, "run_capped", lambda isa, arguments: calls.append(
        (isa, arguments)) or 3)
    monkeypatch.setattr(bench_isa, "cpu_description", lambda: {"flags": ["avx2", "fma"]})
    arguments = ["bench", "--isa", "avx2", "rbm", "--rows", "100", "--skip", "torch"]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 3, result.output
    assert calls == [("avx2", arguments)]
    # in the child (the cap already set) the bench itself runs
    monkeypatch.setenv(bench_isa.CAP_VARIABLE, "avx2")
    result = CliRunner().invoke(main, ["bench", "--isa", "avx2", "table", "no-such.json"])
    assert result.exit_code != 0 and calls == [("avx2", arguments)]
    assert "no-such.json" in result.output


def test_bench_isa_avx2_refuses_a_cpu_without_avx2_in_one_line(monkeypatch):
    monkeypatch.delenv(bench_isa.CAP_VARIABLE, raising=False)
    monkeypatch.setattr(bench_isa, "run_capped", lambda isa, arguments: pytest.fail("ran"))
    monkeypatch.setattr(bench_isa, "cpu_description", lambda: {"flags": []})
    result = CliRunner().invoke(main, ["bench", "--isa", "avx2", "rbm"])
    assert result.exit_code == 2
    assert "--isa avx2 needs a CPU with AVX2 and this one has none" in result.output


def test_the_capped_child_gets_the_users_environment_not_what_dlcore_set(monkeypatch):
    from dlcore.backend import threads
    seen = {}
    monkeypatch.setattr(threads, "SET_BY_DLCORE", {"GOMP_SPINCOUNT": "31000"})
    monkeypatch.setenv("GOMP_SPINCOUNT", "31000")
    monkeypatch.setenv("SOME_USER_SETTING", "kept")
    monkeypatch.setattr(subprocess, "run", lambda command, env, check: seen.update(
        command=command, env=env) or subprocess.CompletedProcess(command, 0))
    assert bench_isa.run_capped("avx2", ["bench", "rbm"]) == 0
    assert seen["command"] == [sys.executable, "-m", "dlcore", "bench", "rbm"]
    assert "GOMP_SPINCOUNT" not in seen["env"] and seen["env"]["SOME_USER_SETTING"] == "kept"
    assert seen["env"]["NUMBA_CPU_NAME"] == "x86-64-v3"
