"""``dlcore gradcheck``: back-propagation against finite differences on a tiny batch (lecture
"Supervised learning": "Check gradients numerically by finite differences")."""
import click
import numpy as np

import dlcore
from dlcore.cli import main
from dlcore.cli._common import seed_option
from dlcore.gradient_check import TOLERANCE


@main.command("gradcheck")
@click.option("--model", "model_name", type=click.Choice(["lenet5", "mlp", "convnet_2016"]),
              default="lenet5", show_default=True, help="The network whose gradients are checked.")
@click.option("--batch", type=click.IntRange(min=1, max=64), default=2, show_default=True,
              help="Random images in the batch.")
@click.option("--entries", type=click.IntRange(min=1), default=20, show_default=True,
              help="Entries checked per tensor (chosen at random; each costs two forward "
                   "passes).")
@click.option("--epsilon", type=click.FloatRange(min=0, min_open=True), default=1e-6,
              show_default=True,
              help="Step h of the central differences (f(x + h) - f(x - h)) / 2h.")
@seed_option
def gradcheck(model_name, batch, entries, epsilon, seed):
    """Check every parameter tensor's gradient (and the input's) by central differences in
    float64; print the relative error per tensor. Exit status 1 if one exceeds 1e-6."""
    build = {"lenet5": dlcore.models.lenet5, "mlp": dlcore.models.mlp,
             "convnet_2016": dlcore.models.convnet_2016}[model_name]
    model = build(backend="reference", seed=seed)
    model.compile("cross_entropy", "sgd")
    generator = np.random.default_rng(seed)
    x = generator.random((batch,) + model.input_shape)
    y = generator.integers(0, int(np.prod(model.output_shape)), batch)
    click.echo(f"gradient check of {model_name}: {batch} random inputs, up to {entries} entries "
               f"per tensor, central differences with epsilon {epsilon:g}, float64")
    errors = dlcore.gradcheck(model, x, y, epsilon=epsilon, max_entries=entries, seed=seed)
    worst = max(errors.values())
    click.echo(f"largest relative error {worst:.2e}: "
               f"{'ok' if worst < TOLERANCE else 'CHECK THE BACKWARD PASS'}")
    if worst >= TOLERANCE:
        raise SystemExit(1)
