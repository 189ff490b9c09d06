"""What Linux says about this machine's CPU: fields of ``/proc/cpuinfo``.

Read by the choice of BLAS (the vendor), the spin of the kernels' threads (the model: a
measurement kept per CPU model) and the reports of ``dlcore doctor`` and ``dlcore bench``
(model, vector flags).
"""


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
