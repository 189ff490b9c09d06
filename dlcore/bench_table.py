"""The README's "Measured" table, written from the JSON reports of one bench run.

Run the benches with ``--json`` on one machine, one after another, then write the table::

    dlcore bench rbm --json > docs/measured/rbm.json     # and mlp, cnn, dbn
    dlcore bench table docs/measured/*.json --readme README.md

The table says only what the reports hold: every
row is one comparison of equal work, with dlcore's and the other contender's minimum and median
and the ratio of the minima, under the setting each report ran with (its options: ``dlcore bench
dbn --epochs 1`` is not the default ten epochs), the machine line and the load averages of the
run. Each bench measures the SGEMM rate at the RBM's shapes before and after its runs; on a
shared machine the reports disagree, so the table takes the highest of them as the ceiling, in
the machine line and in every row's share of SGEMM (never a share of a lower one).

Reports of different machines (:func:`machine_identity`) are refused: a table holds one machine.
Reports of one machine measured under different conditions (another OpenMP waiting policy,
BLAS kernel, PyTorch build: the rest of :func:`dlcore.bench.machine_line`) each keep their own
machine line, printed once with the benches it applies to, and their own SGEMM ceiling. A report
given twice is refused. In the README the table sits between the two :data:`BEGIN` /
:data:`END` markers, which ``--readme`` rewrites in place.
"""
import json
from pathlib import Path

from dlcore.bench import GPU_BACKENDS, SCHEMA, machine_line, oversubscription_note

BEGIN = "<!-- measured: written by `dlcore bench table` from the JSON reports; do not edit -->"
END = "<!-- measured: end -->"
#: What identifies a machine in a report: two reports differing here (or in the ISA both sides'
#: code was held to, :func:`machine_identity`) are two machines.
MACHINE_KEYS = ("cpu", "isa", "cores", "threads")
COMMANDS = {"rbm": "dlcore bench rbm", "mlp": "dlcore bench mlp", "cnn": "dlcore bench cnn",
            "dbn": "dlcore bench dbn"}


def machine_identity(machine):
    """What :data:`MACHINE_KEYS` hold, and the ISA cap of ``dlcore bench --isa`` (None when
    the code ran uncapped): AVX2 code on an AVX-512 CPU is not that CPU's native figure."""
    return (tuple(machine.get(key) for key in MACHINE_KEYS)
            + ((machine.get("isa_cap") or {}).get("isa"),))


def read_reports(paths):
    """The JSON reports in ``paths``, checked: each of schema :data:`dlcore.bench.SCHEMA`,
    each given once, all of one machine (ValueError naming the file otherwise)."""
    reports, seen = [], {}
    for path in paths:
        try:
            run = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ValueError(f"{path}: not a readable JSON bench report ({error})") from None
        if not isinstance(run, dict) or run.get("schema") != SCHEMA:
            raise ValueError(f"{path}: not a bench report of schema {SCHEMA} (run "
                             "`dlcore bench ... --json` to write one)")
        # the same report twice would print its rows twice, as if measured twice
        content = json.dumps(run, sort_keys=True)
        if content in seen:
            earlier = seen[content]
            again = ("" if Path(earlier).resolve() == Path(path).resolve()
                     else f" (the same report as {earlier})")
            raise ValueError(f"{path}: given twice{again}; give each report once")
        seen[content] = path
        reports.append(run)
    if not reports:
        raise ValueError("no bench report given")
    first = reports[0]["machine"]
    for path, run in zip(paths, reports):
        machine = run["machine"]
        if machine_identity(machine) != machine_identity(first):
            raise ValueError(f"{path}: measured on another machine ({machine_line(machine)}) "
                             f"than {paths[0]} ({machine_line(first)}); a table holds one "
                             "machine")
    return reports


def seconds(row):
    return f"{row['min']:.3g} / {row['median']:.3g} s"


def dlcore_cell(row, sgemm):
    text = seconds(row)
    if "gflops" in row:
        text += f", {row['gflops']:.0f} GFLOP/s"
        if sgemm:
            text += f" ({row['gflops'] / sgemm:.0%} of SGEMM)"
    return text


def table_rows(run, sgemm=None):
    """Markdown rows ``| work | dlcore | other | ratio |`` of one report: one per other
    contender of each comparison (a comparison of dlcore alone gets one row). GFLOP/s are
    shares of ``sgemm`` (default: the report's own SGEMM rate)."""
    if sgemm is None:
        sgemm = _sgemm_rate(run)
    command = COMMANDS.get(run["benchmark"], run["benchmark"])
    rows = []
    for comparison in run["comparisons"]:
        first, *others = comparison["results"]
        work = f"`{command}`: {comparison['task']}"
        if comparison.get("note"):
            work += f" ({comparison['note']})"
        for other in others or [None]:
            if other is None:
                rows.append(f"| {work} | {first['name']} {dlcore_cell(first, sgemm)} | | |")
                continue
            ratio = first["min"] / other["min"]
            # within the table's two decimals of 1 is a tie, not a lead either way
            verdict = "level" if round(ratio, 2) == 1 else (
                "dlcore faster" if ratio < 1 else "dlcore slower")
            rows.append(f"| {work} | {first['name']} {dlcore_cell(first, sgemm)} | "
                        f"{other['name']} {seconds(other)} | {ratio:.2f} ({verdict}) |")
    return rows


def machine_groups(reports):
    """``reports`` grouped by their machine line without the SGEMM rate (what differs between
    the reports of one machine run under other conditions: the OpenMP waiting policy, the BLAS
    kernel, the PyTorch build), in the order of their first report.

    Returns a list of ``(machine, runs)``: ``machine`` the first report's machine of the group
    with ``sgemm`` the highest ceiling of the group (:func:`_sgemm_rate`; absent when none),
    ``runs`` the group's reports in the order given.
    """
    groups = {}
    for run in reports:
        description = machine_line({key: value for key, value in run["machine"].items()
                                    if key != "sgemm"})
        groups.setdefault(description, []).append(run)
    found = []
    for runs in groups.values():
        machine = dict(runs[0]["machine"])
        rated = [run for run in runs if _sgemm_rate(run)]
        if rated:
            machine["sgemm"] = max((run["machine"]["sgemm"] for run in rated),
                                   key=lambda sgemm: sgemm["gflops"])
        else:  # none, or none that is a ceiling for these runs (_sgemm_rate)
            machine.pop("sgemm", None)
        found.append((machine, runs))
    return found


def _commands(runs):
    return ", ".join(f"`{COMMANDS.get(run['benchmark'], run['benchmark'])}`" for run in runs)


def measured_table(reports):
    """The Markdown the README holds between the markers, for ``reports`` (read_reports)."""
    rates = [rate for rate in map(_sgemm_rate, reports) if rate]
    groups = machine_groups(reports)
    machine = groups[0][0]
    dates = sorted(run["started"] for run in reports)
    loads = [value for run in reports for value in (run["load_average"]["before"],
                                                    run["load_average"]["after"]) if value]
    repeats = sorted({len(row["seconds"]) for run in reports
                      for comparison in run["comparisons"] for row in comparison["results"]})
    lines = [BEGIN,
             f"Measured on {_days(dates)} (UTC), on one machine, by these commands with "
             "`--json`, each with the setting its report records:", ""]
    lines += [f"- {_commands([run])}: {setting_text(run.get('setting') or {})}"
              for run in reports]
    lines.append("")
    if len(groups) > 1:
        lines += [f"Under {len(groups)} machine lines, each for the rows of its benches:", ""]
    for group_machine, runs in groups:
        if len(groups) > 1:
            lines += [f"For {_commands(runs)}:", ""]
        lines += [f"    {machine_line(group_machine)}", ""]
    if len(rates) > 1 and round(min(rates)) != round(max(rates)):
        lines.append(f"The SGEMM rate, measured by each bench before and after its runs, ranged "
                     f"{min(rates):.0f} to {max(rates):.0f} GFLOP/s; the shares of SGEMM below "
                     "are of the highest" + ("" if len(groups) == 1 else
                                             " under the same machine line") + ".")
    if loads:
        highest = max(v[0] for v in loads)
        lines.append(f"The machine was shared: load average (1 min) "
                     f"{min(v[0] for v in loads):.1f} to {highest:.1f} on "
                     f"{machine['cores']} cores during the runs.")
        note = oversubscription_note(highest, machine["cores"])
        if note is not None:
            lines.append(note)
    lines += [f"Each cell is the minimum / median of {', '.join(map(str, repeats))} runs per "
              "contender, alternating between the contenders after a warm-up each; the ratio is "
              "dlcore's minimum over the other's (below 1: dlcore faster). Both sides of a row do "
              "the same work (checked by the bench). These figures hold for this machine only "
              f"({where_measured(machine, reports)}); run `dlcore bench` on yours.", "",
              "| work | dlcore | other | ratio of minima |", "|---|---|---|---|"]
    ceiling = {id(run): (group_machine.get("sgemm") or {}).get("gflops")
               for group_machine, runs in groups for run in runs}
    for run in reports:
        lines += table_rows(run, ceiling[id(run)])
    lines.append(END)
    return "\n".join(lines) + "\n"


def setting_text(setting):
    """A report's ``setting`` (the options it ran with and its data) as the table prints it:
    ``layers 784-500-500-2000, epochs 1, batch size 100``; the header claims no more than
    was run (``dlcore bench dbn`` trains 10 epochs a layer unless told otherwise)."""
    def value_text(value):
        if isinstance(value, (list, tuple)):
            return "-".join(map(value_text, value))
        return f"{value:g}" if isinstance(value, float) else str(value)
    return ", ".join(f"{key.replace('_', ' ')} {value_text(value)}"
                     for key, value in setting.items()) or "no setting recorded"


def held_to(machine):
    cap = machine.get("isa_cap")
    return f", both sides' code held to {cap['isa']}" if cap else ""


def replace_table(readme, table):
    """``readme`` (text) with what lies between :data:`BEGIN` and :data:`END` (markers
    included) replaced by ``table``; ValueError when the markers are missing."""
    start, stop = readme.find(BEGIN), readme.find(END)
    if start < 0 or stop < start:
        raise ValueError(f"the README has no measured-table markers: put the lines {BEGIN!r} "
                         f"and {END!r} where the table goes")
    end = stop + len(END)
    if readme[end:end + 1] == "\n":
        end += 1
    return readme[:start] + table + readme[end:]


def _sgemm_rate(run):
    """The report's SGEMM rate in GFLOP/s, or None where it has none, or where the run was on a
    GPU and the rate is not the GPU's (a report from before the bench measured it there): the
    host CPU's GEMM is no ceiling for a GPU's epoch."""
    sgemm = run["machine"].get("sgemm") or {}
    on_gpu = run.get("setting", {}).get("backend") in GPU_BACKENDS
    if on_gpu and sgemm.get("on") != "gpu":
        return None
    return sgemm.get("gflops")


def where_measured(machine, reports):
    """What the figures hold for, in the table's closing words: the ISA (and cap) of the CPU,
    or the GPU."""
    if any(run.get("setting", {}).get("backend") in GPU_BACKENDS for run in reports):
        gpu = machine.get("gpu") or {}
        return (f"the GPU {gpu['name']}" if gpu.get("name") else
                "a GPU this report does not name, on this host")
    return f"{machine['isa']}{held_to(machine)}"


def _days(timestamps):
    """The days of ISO ``timestamps``: ``2026-12-02`` or ``2026-12-02 to 2026-12-03``."""
    days = sorted({timestamp[:10] for timestamp in timestamps})
    return days[0] if len(days) == 1 else f"{days[0]} to {days[-1]}"
