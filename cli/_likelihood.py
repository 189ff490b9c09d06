"""What ``dlcore rbm evaluate`` and ``dlcore dbn evaluate`` share: the AIS options and the
lines that report a log-likelihood with its interval and its RAISE to AIS bracket."""
import click

from dlcore.rbm.ais import DEFAULT_REVERSE_ROWS, DEFAULT_RUNS, DEFAULT_TEMPERATURES
from dlcore.rbm.monitors import MAX_ENUMERATED_UNITS, enumerated_units


def ais_options(function):
    """``--runs``, ``--temperatures`` and ``--reverse-rows`` of the AIS estimate."""
    function = click.option(
        "--reverse-rows", type=click.IntRange(min=0), default=DEFAULT_REVERSE_ROWS,
        show_default=True,
        help="Held-out rows whose reverse chains (RAISE) give the other end of the bracket; "
             "0: AIS alone.")(function)
    function = click.option(
        "--temperatures", type=click.IntRange(min=1), default=DEFAULT_TEMPERATURES,
        show_default=True,
        help="Inverse temperatures of AIS (Salakhutdinov & Murray used 14500).")(function)
    return click.option("--runs", type=click.IntRange(min=2), default=DEFAULT_RUNS,
                        show_default=True, help="AIS runs.")(function)


def check_exact_fits(rbm, model_file, what="the model"):
    """Refuse ``--exact`` for ``rbm`` (``what`` names it: "the model", "the top RBM") when its
    log Z cannot be enumerated, in the command line's words (``--ais``), before anything is
    measured: the library's message names its Python calls."""
    units = enumerated_units(rbm)
    if units > MAX_ENUMERATED_UNITS:
        raise click.ClickException(
            f"--exact enumerates 2**{units} states of {what} of {model_file}: at most "
            f"{MAX_ENUMERATED_UNITS} units can be; estimate the log-likelihood with --ais "
            "instead")


def echo_log_likelihood(result, what="log-likelihood"):
    """Print a :class:`dlcore.rbm.ais.LogLikelihood`: the mean with its 95% interval, the
    bracket and both estimates of log Z (stdout)."""
    if result.method == "exact":
        click.echo(f"{what} (exact log Z = {result.log_z:.3f}): {result.mean:.3f} nats per "
                   "sample")
        return
    low, high = result.interval
    click.echo(f"{what} (AIS): {result.mean:.3f} nats per sample, 95% interval {low:.3f} to "
               f"{high:.3f}")
    click.echo(f"  log Z by AIS {result.log_z:.3f} +- {result.log_z_standard_error:.3f} "
               "(biased low)")
    if result.bracket is not None:
        click.echo(f"  log Z by RAISE {result.log_z_upper:.3f} +- "
                   f"{result.log_z_upper_standard_error:.3f} (reverse annealing: usually "
                   "biased high)")
        click.echo(f"  bracket: {result.bracket[0]:.3f} (RAISE) to {result.bracket[1]:.3f} "
                   "(AIS) nats per sample; a wide one asks for more --temperatures")
