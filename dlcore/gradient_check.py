"""Gradient checking by central finite differences (lecture "Supervised learning", "Good To
Know": "Check gradients numerically by finite differences"; "BPROP is buggy -> numerical
gradient checking").

For the cost C(theta) of a network on a small batch (the loss plus the weight-decay penalty),
every checked entry theta_i of every parameter tensor, and of the input x, is compared with

    dC/dtheta_i ~ (C(theta + eps e_i) - C(theta - eps e_i)) / (2 eps)

(error O(eps^2)). The check runs on a float64 copy of the network on the ``reference``
backend, so the rounding error of the difference stays near 1e-10 and a correct
back-propagation agrees to about 1e-7 or better. Per tensor the relative error is

    ||g_backprop - g_numeric|| / max(||g_backprop|| + ||g_numeric||, 1e-300)

over the checked entries. Stochastic layers are frozen: dropout and noise use the same Philox
draws in every evaluation (the same step), and :class:`dlcore.layers.ImageAugmentation`, which
prepares data rather than computing a function of the weights, is left out.
"""
import pprint

import numpy as np

from dlcore.backend import rng
from dlcore.summary import _ipython_cell
from dlcore.training import LossRows, target_rows
from dlcore.validation import check_network

TOLERANCE = 1e-6
#: a tensor whose two gradients differ by less than this everywhere has a zero gradient (a
#: bias just before a batch normalisation, which removes any constant): its relative error is
#: rounding noise over rounding noise; gradcheck returns 0 and the table prints 0 with "ok (zero)"
ZERO_GRADIENT = 1e-8


def _cost(model, x, targets, rows, step):
    """C(theta) in float64: mean loss over the batch + the weight-decay penalty (the model's
    ``loss_rows`` on float64 arrays of the reference backend: x and targets as they are)."""
    model.loss_rows(x, targets, rows, training=True, step=step)
    return float(rows.loss.mean()) + model.penalty()


def _analytic_gradients(model, x, y, step):
    """dC/dtheta of every weight array (``loss_and_gradient`` plus the weight-decay
    gradient of the layers that train: a frozen layer's weights are not in the penalty, as
    :meth:`penalty` says) and dC/dx."""
    _, grad_x = model.loss_and_gradient(x, y, step=step, input_gradient=True)
    trained = {parameter.key for parameter in model.trainable_parameters}
    gradients = {}
    for layer in getattr(model, "flat_layers", model.layers):
        regularizers = layer.regularizers() if hasattr(layer, "regularizers") else {}
        for name in layer.weight_names:
            g = np.array(layer.grads[name])
            if name in regularizers and f"{layer.name}/{name}" in trained:
                g += regularizers[name].gradient(layer.params[name])
            gradients[f"{layer.name}/{name}"] = g
    gradients["input"] = np.array(grad_x)
    return gradients


def _checked_entries(size, max_entries, seed, index):
    if max_entries is None or size <= max_entries:
        return np.arange(size)
    return np.sort(rng.permutation(size, seed, rng.STREAM_SPLIT, index)[:max_entries])


def _numeric_gradient(cost, array, entries, epsilon):
    flat = array.reshape(-1)
    numeric = np.empty(len(entries))
    for k, i in enumerate(entries):
        saved = flat[i]
        flat[i] = saved + epsilon
        plus = cost()
        flat[i] = saved - epsilon
        minus = cost()
        flat[i] = saved
        numeric[k] = (plus - minus) / (2 * epsilon)
    return numeric


class GradientErrors(dict):
    """What :func:`gradcheck` returns: a dict, tensor name -> relative error. As the last line
    of a notebook's cell that printed the table (``verbose``), IPython shows nothing more: the
    same numbers followed the table as a dict, as a ``Summary(...)`` line followed
    ``model.summary()``'s table; elsewhere it shows the dict."""

    def __init__(self, errors, shown_in_cell=None):
        super().__init__(errors)
        #: the IPython cell that printed the table (None: none did)
        self.shown_in_cell = shown_in_cell

    def _ipython_display_(self):
        cell = self.shown_in_cell
        if cell is not None and cell == _ipython_cell():
            return
        from IPython.display import display
        display({"text/plain": pprint.pformat(dict(self), sort_dicts=False)}, raw=True)


def gradcheck(model, x, y, epsilon=1e-6, max_entries=200, seed=0, verbose=True, step=0):
    """Compare back-propagation with central differences for every parameter tensor and the
    input (see the module docstring).

    Parameters
    ----------
    model : a built, compiled :class:`dlcore.Sequential` or :class:`dlcore.Model` (left
        unchanged: the check runs on a float64 reference copy)
    x : a small batch of inputs (n, *input_shape) (a few samples are enough), or a list of
        batches for a model with several inputs (checked packed side by side, as ``input``)
    y : its labels or targets, as for ``fit``
    epsilon : float, the step of the differences
    max_entries : int or None, check at most this many entries per tensor (all of a smaller
        tensor), chosen by a seeded permutation; None checks every entry (LeNet-5 has 61,706
        weights: two forward passes each)
    seed : int, for that choice
    verbose : bool, print the table
    step : int, the Philox step that freezes dropout and noise

    Returns
    -------
    :class:`GradientErrors`, a dict: tensor name (``"conv2d/kernel"``, ..., ``"input"``) ->
    relative error (float); 0.0 for a tensor whose two gradients are both zero to rounding
    (the table's "ok (zero)": every difference below :data:`ZERO_GRADIENT`, the relative
    error noise over noise), so that ``max(errors.values()) < 1e-6`` holds for a correct
    network.
    """
    check_network(model, "gradcheck")
    if model.loss is None:
        raise RuntimeError("gradcheck needs a compiled network (it checks the gradient of its "
                           "loss): call model.compile(...) first")
    if isinstance(x, (list, tuple)):   # a model with several inputs: packed as its rows
        x = model.pack_inputs(x)
    x64 = np.asarray(x, dtype=np.float64)
    if not model.built:
        model.build(x64.shape[1:])
    try:
        twin = model.clone(backend="reference", dtype=np.float64)
    except (NotImplementedError, TypeError) as error:   # a layer of one's own's config
        raise type(error)(f"gradcheck checks a float64 copy of the network made through its "
                          f"layers' get_config(), and {error}") from None
    with twin.backend.compute(small_products=True):
        results, rows = _check(twin, x64, y, epsilon, max_entries, seed, step)
    if verbose:
        print(format_table(rows))
    return GradientErrors(results, _ipython_cell() if verbose else None)


def _check(twin, x64, y, epsilon, max_entries, seed, step):
    from dlcore.layers import ImageAugmentation
    twin.layers = [layer for layer in twin.layers if not isinstance(layer, ImageAugmentation)]
    analytic = _analytic_gradients(twin, x64, y, step)
    x64 = np.array(x64, dtype=np.float64)
    targets = (twin.pack_targets(y, len(x64)) if hasattr(twin, "pack_targets")
               else target_rows(y, len(x64), int(np.prod(twin.output_shape)), np.float64))
    buffers = LossRows.empty(twin.backend, len(x64), targets.shape[1], np.float64)
    layers = getattr(twin, "flat_layers", twin.layers)   # a nested model's layers too
    tensors = {f"{layer.name}/{name}": layer.params[name]
               for layer in layers for name in layer.weight_names}
    tensors["input"] = x64

    def cost():
        return _cost(twin, x64, targets, buffers, step)

    results, rows = {}, []
    for index, (name, array) in enumerate(tensors.items()):
        entries = _checked_entries(array.size, max_entries, seed, index)
        numeric = _numeric_gradient(cost, array, entries, epsilon)
        backprop = analytic[name].reshape(-1)[entries]
        difference = np.linalg.norm(backprop - numeric)
        error = difference / max(np.linalg.norm(backprop) + np.linalg.norm(numeric), 1e-300)
        largest = float(np.abs(backprop - numeric).max())
        verdict = _verdict(largest, error)
        # both zero to rounding: they agree, whatever the noise over noise says
        results[name] = 0.0 if verdict == "ok (zero)" else float(error)
        rows.append((name, str(array.shape), len(entries), largest, results[name], verdict))
    return results, rows


def format_table(rows):
    """The gradient-check table: tensor, shape, entries checked, max |difference|, relative
    error (0 where both gradients are zero, as :func:`gradcheck` returns) and a verdict (ok
    below 1e-6; "ok (zero)" where both gradients are zero)."""
    header = ("tensor", "shape", "checked", "max |diff|", "relative error", "")
    lines = [header] + [(name, shape, str(count), f"{diff:.2e}", f"{error:.2e}", verdict)
                        for name, shape, count, diff, error, verdict in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    # names and verdicts read from the left, numbers line up on the right
    numbers = range(2, 5)
    text = ["  ".join(cell.rjust(width) if i in numbers else cell.ljust(width)
                      for i, (cell, width) in enumerate(zip(line, widths))).rstrip()
            for line in lines]
    text.insert(1, "-" * len(text[0]))
    if any(verdict == "CHECK" for *_, verdict in rows):
        text.append(KINK_NOTE)
    return "\n".join(text)


def _verdict(difference, error):
    if error < TOLERANCE:
        return "ok"
    return "ok (zero)" if difference < ZERO_GRADIENT else "CHECK"


KINK_NOTE = ("CHECK is not always a bug: ReLU at 0 and ties in max-pooling are kinks, and a "
             "difference taken across one disagrees with the gradient. Inputs with exact zeros "
             "(MNIST's background) put units right on a kink: check with random inputs too.")
