"""Keras's keyword arguments that change nothing in dlcore, or that dlcore has not: checked or
refused in one line, in one place.

Lecture "Deep learning I" writes Keras's calls (``model.compile(...)``, ``model.fit(x_train,
y_train, epochs=5, batch_size=32)``, ``model.evaluate``, ``model.predict``,
``model.save_weights('model_weights.h5')``, ``model.load_weights``), and a Keras script also
passes these methods' (and ``summary``'s and ``save``'s) options of Keras's own running: how
many steps an epoch takes, whether to compile a graph, how wide the summary's lines are.
dlcore accepts each of them where every value gives the same numbers (checked for its type, as
Keras checks it), and refuses, naming what to do instead, those that would change what is
computed, reported or written.
The models (:class:`dlcore.training.TrainingLoop`, :class:`dlcore.Sequential`,
:class:`dlcore.Model`) call these; the arguments themselves stay in their signatures, in
Keras's order.
"""
import os

import numpy as np

from dlcore.validation import check_bool, check_int

__all__ = ["check_keras_compile_options", "check_keras_fit_options", "check_keras_load_options",
           "check_keras_save_options", "check_keras_summary_options", "foreign_callback",
           "refuse_overwriting", "refuse_steps_and_callbacks"]


def check_keras_fit_options(steps_per_epoch=None, validation_steps=None):
    """Keras's ``fit`` options of partial epochs, which dlcore has not: ``steps_per_epoch`` and
    ``validation_steps`` must be None, anything else refused in one line (``validation_freq``
    dlcore has: :func:`dlcore.training.checked_validation_freq`)."""
    for name, value in (("steps_per_epoch", steps_per_epoch),
                        ("validation_steps", validation_steps)):
        if value is not None:
            raise ValueError(f"fit's {name} must be None: dlcore trains over whole epochs "
                             f"(subset the arrays instead)")


def refuse_steps_and_callbacks(method, steps, callbacks):
    """Keras's ``steps`` and ``callbacks`` of evaluate and predict, which dlcore has not: None
    (or an empty list of callbacks) only, anything else refused in one line."""
    if steps is not None:
        raise ValueError(f"{method}'s steps must be None: dlcore {method}s whole arrays "
                         f"(subset the arrays instead)")
    if callbacks:
        raise ValueError(f"{method} takes no callbacks: dlcore calls none during {method} "
                         f"(time it around the call, or give the callbacks to fit)")


def check_keras_compile_options(weighted_metrics=None, run_eagerly=False, steps_per_execution=1,
                                jit_compile="auto", auto_scale_loss=True):
    """Keras 3's ``compile`` options that change how Keras runs, not what it computes: dlcore
    always runs its own compiled kernels eagerly, one batch a step, in float32, so any value
    of ``run_eagerly``, ``jit_compile``, ``steps_per_execution`` and ``auto_scale_loss`` gives
    the same training (each checked for its type); ``weighted_metrics``, which would change
    the numbers reported, is refused in one line unless None or empty."""
    if weighted_metrics:
        raise ValueError("compile's weighted_metrics must be None: dlcore's metrics are not "
                         "weighted by sample_weight (its loss is); give metrics=[...] instead")
    for name, value in (("run_eagerly", run_eagerly), ("auto_scale_loss", auto_scale_loss)):
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"compile's {name} must be True or False; got {value!r}")
    if not (isinstance(jit_compile, (bool, np.bool_)) or jit_compile == "auto"):
        raise ValueError(f"compile's jit_compile must be True, False or 'auto'; got "
                         f"{jit_compile!r}")
    if steps_per_execution != "auto":
        check_int(steps_per_execution, "steps_per_execution", minimum=1)


def foreign_callback(callback):
    """The one line refusing a callback that is not dlcore's: for a Keras callback, the
    dlcore callback of the same name and arguments, or the ones dlcore has."""
    from dlcore import callbacks as dlcore_callbacks
    from dlcore.callbacks import Callback
    kind = type(callback)
    name = kind.__name__
    where = f"{kind.__module__.split('.')[0]}'s {name}"
    if kind.__module__.split(".")[0] != "keras":
        return f"callbacks must be dlcore.callbacks.Callback objects, got {name}"
    if name == "TerminateOnNaN":
        return ("callbacks must be dlcore's: Keras's TerminateOnNaN is built in (an epoch whose "
                "loss is NaN or infinite raises dlcore.TrainingDiverged and puts back the last "
                "good epoch's weights): leave it out")
    own = getattr(dlcore_callbacks, name, None)
    if isinstance(own, type) and issubclass(own, Callback):
        return (f"callbacks must be dlcore's, got {where}: use dlcore.callbacks.{name}, which "
                f"takes Keras's arguments")
    have = ", ".join(sorted(n for n in dir(dlcore_callbacks) if isinstance(
        getattr(dlcore_callbacks, n), type) and issubclass(getattr(dlcore_callbacks, n), Callback)
        and not n.startswith("_") and n not in ("Callback", "ProgressBar")))
    return (f"callbacks must be dlcore's, got {where}, which dlcore has not; dlcore.callbacks "
            f"has {have}, and Callback to subclass")


def check_keras_summary_options(line_length=None, positions=None, expand_nested=False,
                                show_trainable=False, layer_range=None):
    """Keras's ``summary`` arguments that dlcore's table has no use for, checked as Keras
    checks them; ``layer_range``, which would leave rows out, is refused unless None."""
    check_bool(expand_nested, "expand_nested")
    check_bool(show_trainable, "show_trainable")
    if line_length is not None:
        check_int(line_length, "line_length", minimum=1)
    if positions is not None and (isinstance(positions, str) or not all(
            isinstance(p, (int, float)) and not isinstance(p, bool) for p in positions)):
        raise ValueError(f"summary's positions must be a list of numbers; got {positions!r}")
    if layer_range is not None:
        raise ValueError("summary's layer_range must be None: dlcore's table lists every "
                         "layer (read summary().rows for a part of it)")


def refuse_overwriting(name, overwrite, method):
    """Keras's ``overwrite=False`` of save and save_weights: an existing file is refused in
    one line (Keras asks on the terminal, which a script or notebook cannot answer)."""
    check_bool(overwrite, "overwrite")
    if not overwrite and os.path.exists(name):
        raise FileExistsError(f"{name} exists and {method} was given overwrite=False: choose "
                              f"another name, or remove the file first")


def check_keras_save_options(name, method, overwrite=True, zipped=None, max_shard_size=None):
    """Keras's options of ``save`` (``zipped``: None or True, the archive is a zip file) and
    ``save_weights`` (``max_shard_size``: None, one file), and the ``overwrite`` of both
    (:func:`refuse_overwriting`), for the file ``name`` that ``method`` writes."""
    if zipped not in (None, True):
        raise ValueError(f"{name}: model.save's zipped must be None or True: dlcore "
                         f"writes Keras's archive as a zip file only")
    if max_shard_size is not None:
        raise ValueError(f"{name}: save_weights' max_shard_size must be None: dlcore "
                         f"writes the weights as one file")
    refuse_overwriting(name, overwrite, method)


def check_keras_load_options(name, skip_mismatch=False):
    """Keras's ``skip_mismatch`` of ``load_weights``: False only, dlcore loads every array of
    the file ``name`` or none."""
    if skip_mismatch:
        raise ValueError(f"{name}: load_weights' skip_mismatch must be False: dlcore loads "
                         f"every array or none (build the model the weights were saved from)")
