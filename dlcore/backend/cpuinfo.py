"""What this machine's CPU is: fields of Linux's ``/proc/cpuinfo``, and whether it is x86.

Read by the choice of BLAS (the vendor), the spin of the kernels' threads (the model: a
measurement kept per CPU model; x86's ``pause``), the float modes of the fused weight step
(x86's MXCSR) and the reports of ``dlcore doctor`` and ``dlcore bench`` (model, vector flags).
"""
import platform

#: whether this is an x86-64 machine (whose instructions ``pause`` and ``ldmxcsr`` exist)
ON_X86 = platform.machine().lower() in ("x86_64", "amd64")


def cpuinfo_fields(names, cpuinfo="/proc/cpuinfo"):
    """``{name: value}``, the first value of each of ``names`` ("model name", "vendor_id",
    "flags", ...) in ``cpuinfo``, stripped; a name it lacks is left out, and an unreadable
    file (not Linux) gives ``{}``."""
    wanted, found = set(names), {}
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as lines:
            for line in lines:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in wanted and key not in found:
                    found[key] = value.strip()
                    if len(found) == len(wanted):
                        break
    except OSError:
        pass
    return found
