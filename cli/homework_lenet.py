"""``dlcore homework lenet-params``: lecture "Convolutional Neural Networks" (2019)'s LeNet
homework (slide "LeNet 1989 (Homework)"), "How many parameters?", with the arithmetic shown
layer by layer for LeNet-5 (1998), whose 5x5 filters and 2x2 pools are the slide's (the slide
names no widths: :mod:`dlcore.models` says why LeNet-5)."""
import click

import dlcore
from dlcore.cli.homework import homework
from dlcore.layers import Conv2D, Dense


def parameter_arithmetic(layer):
    """``(formula, total)`` of a layer's parameter count, e.g.
    ``("6 x (1 x 5 x 5) + 6", 156)``."""
    if isinstance(layer, Conv2D):
        filters, channels, kh, kw = layer.params["kernel"].shape
        text = f"{filters} x ({channels} x {kh} x {kw})"
    elif isinstance(layer, Dense):
        inputs, units = layer.params["kernel"].shape
        text = f"{inputs} x {units}"
    else:
        return "no parameters", 0
    if layer.use_bias:
        text += f" + {layer.bias_count()}"
    return text, layer.count_params()


def padding_text(padding):
    """A Conv2D's ``padding`` in words: ``2`` -> "2", "valid" or 0 -> "none"."""
    return "none" if padding in ("valid", 0) else str(padding)


@homework.command("lenet-params")
def lenet_params():
    """LeNet-5 (lecture "Convolutional Neural Networks" (2019), "How many parameters?"): the
    count of every layer, worked out."""
    model = dlcore.models.lenet5(backend="reference")
    # c1's padding is what keeps 28x28 (without it a student works out 24x24), so say it
    paddings = ", ".join(f"{padding_text(layer.padding)} in {layer.name}"
                         for layer in model.layers if isinstance(layer, Conv2D))
    click.echo(f"LeNet-5 on 1@28x28 inputs: 5x5 filters, stride 1, padding {paddings}; 2x2 "
               "pooling, stride 2")
    click.echo("weights + biases per layer (a conv filter sees every input channel):")
    total = 0
    for layer in model.layers:
        formula, count = parameter_arithmetic(layer)
        shape = "x".join(map(str, layer.output_shape))
        click.echo(f"  {layer.name:<8} {type(layer).__name__:<10} -> {shape:<9} {formula:<28}"
                   f"= {count:>6,}")
        total += count
    counts = [parameter_arithmetic(layer)[1] for layer in model.layers if layer.weight_names]
    click.echo(f"total: {' + '.join(f'{c:,}' for c in counts)} = {total:,} parameters")
