"""What a model trained by a library ``fit`` records about its training.

A ``dlcore`` command stores a full training record in the model file (the data set, its
classes, the command line: ``dlcore.cli._common.training_record``). A model trained from Python
gets this smaller one from ``fit``, saved the same way (the file's ``training_record``)::

    {"n_samples": 4000, "n_features": 784, "fit": {"epochs": 10, "batch_size": 20, ...}}

The command's record replaces it when a command trains the model.
"""
import numbers

import numpy as np

__all__ = ["record_fit"]


def record_fit(model, X, keep_command_record=False, **parameters):
    """Set ``model.training_record_`` to the shape of ``X`` and the scalar ``parameters`` of the
    fit call (numbers, strings, booleans, None; others are left out).

    Parameters
    ----------
    model : the model being trained
    X : (n_samples, ...) array, the training inputs
    keep_command_record : bool, leave a record written by a ``dlcore`` command in place (a fit
        that continues that command's training)
    parameters : the fit call's settings, e.g. ``epochs=10, batch_size=32``
    """
    current = getattr(model, "training_record_", None)
    if keep_command_record and isinstance(current, dict) and "command" in current:
        return
    shape = np.shape(X)
    scalars = {}
    for name, value in parameters.items():
        if isinstance(value, np.generic):
            value = value.item()
        if value is None or isinstance(value, (bool, str, numbers.Number)):
            scalars[name] = value
    model.training_record_ = {"n_samples": int(shape[0]),
                              "n_features": int(np.prod(shape[1:], dtype=np.int64)),
                              "fit": scalars}
