"""A bench with the code of both sides held below the CPU's widest vector ISA.

A lead measured on one kind of machine says nothing about another (:mod:`dlcore.bench`), and
most students' laptops and many cloud machines (AMD's Zen 2 and 3 among them) have AVX2 but not
AVX-512. An AVX-512 machine can still tell what the AVX2 code of every library does on it:
``dlcore bench --isa avx2 rbm ...`` runs the bench in a child process whose environment holds
every library below AVX-512, on both sides alike:

* dlcore's kernels: Numba compiles for LLVM's ``x86-64-v3`` (the x86-64 psABI's AVX2 level:
  AVX2, FMA, BMI2, F16C, MOVBE) and adds none of the host's features
  (``NUMBA_CPU_NAME``, ``NUMBA_CPU_FEATURES``);
* MKL, dlcore's and PyTorch's: ``MKL_ENABLE_INSTRUCTIONS=AVX2``;
* OpenBLAS, NumPy's and SciPy's: ``OPENBLAS_CORETYPE=Haswell`` (its AVX2 kernels);
* PyTorch's own kernels: ``ATEN_CPU_CAPABILITY=avx2``, and oneDNN's (its convolutions):
  ``ONEDNN_MAX_CPU_ISA=AVX2``.

What it cannot make is an AVX2 machine: the caches, clock and memory stay this machine's, so
the report names both the CPU and the cap (:func:`cap_in_effect`), and a figure measured so is
a figure for AVX2 code on this CPU, not for another CPU.
"""
import os
import subprocess
import sys

from dlcore.bench import ISA_LEVELS, cpu_description

#: Set in the child's environment: the cap it runs under (what the machine line reports).
CAP_VARIABLE = "DLCORE_BENCH_ISA"
#: What each cap sets, per library (see the module docstring), keyed by the /proc/cpuinfo flag
#: a CPU needs to run the cap's code at all.
CAPPED_VARIABLES = {
    "avx2": {"NUMBA_CPU_NAME": "x86-64-v3", "NUMBA_CPU_FEATURES": "",
             "MKL_ENABLE_INSTRUCTIONS": "AVX2", "OPENBLAS_CORETYPE": "Haswell",
             "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
}
#: The caps ``dlcore bench --isa`` takes: ``native`` is the CPU's own widest ISA (no cap).
CHOICES = ("native", *CAPPED_VARIABLES)


def cap_name(isa):
    """The name the reports print for a cap ("AVX2"), as the machine line names ISAs."""
    return dict(ISA_LEVELS)[isa]


def capped_environment(isa, environment=os.environ):
    """A copy of ``environment`` with every library held to ``isa`` (a key of
    :data:`CAPPED_VARIABLES`), and :data:`CAP_VARIABLE` saying so."""
    if isa not in CAPPED_VARIABLES:
        raise ValueError(f"unknown ISA cap {isa!r}: use one of {', '.join(CHOICES)}")
    return {**environment, **CAPPED_VARIABLES[isa], CAP_VARIABLE: isa}


def check_cpu_runs(isa, flags=None):
    """A ValueError naming the fix when a CPU with ``flags`` (default: this one's, from
    :func:`dlcore.bench.cpu_description`) cannot run ``isa``'s code (it would stop at its
    first AVX2 instruction)."""
    flags = cpu_description()["flags"] if flags is None else flags
    if isa not in flags:
        raise ValueError(f"--isa {isa} needs a CPU with {cap_name(isa)} and this one has "
                         "none: run the bench without --isa")


def run_capped(isa, arguments, environment=None):
    """Run ``python -m dlcore *arguments`` under ``isa``'s cap (its output goes where this
    process's goes) and return its exit status. A child process, because Numba, MKL and
    PyTorch read these variables once, when they load. ``environment`` defaults to the user's
    (:func:`dlcore.backend.threads.user_environment`): the child makes its own choices, such
    as how OpenMP threads wait, and PyTorch's process must not inherit this one's."""
    if environment is None:
        from dlcore.backend import threads
        environment = threads.user_environment()
    command = [sys.executable, "-m", "dlcore", *arguments]
    return subprocess.run(command, env=capped_environment(isa, environment),
                          check=False).returncode


def cap_in_effect(environment=os.environ):
    """None when this process runs uncapped; else what holds its code below the CPU's ISA:
    ``{"isa": "AVX2", "numba": the CPU (and features) Numba compiles for, "variables": the
    cap's variables as this process has them, "kept": whether they and Numba's settings, read
    when Numba loaded, are still the cap's}``: a report cannot claim a cap that was not kept
    (the machine line also prints the kernels MKL or OpenBLAS and PyTorch chose)."""
    isa = environment.get(CAP_VARIABLE)
    if isa not in CAPPED_VARIABLES:
        return None
    from numba.core import config
    wanted = CAPPED_VARIABLES[isa]
    features = config.CPU_FEATURES
    numba = (f"{config.CPU_NAME or 'this CPU'}"
             + (" with this CPU's features" if features is None
                else f" with {features}" if features else ""))
    kept = (all(environment.get(name) == value for name, value in wanted.items())
            and (config.CPU_NAME, config.CPU_FEATURES)
            == (wanted["NUMBA_CPU_NAME"], wanted["NUMBA_CPU_FEATURES"]))
    return {"isa": cap_name(isa), "numba": numba,
            "variables": {name: environment.get(name) for name in wanted}, "kept": kept}
