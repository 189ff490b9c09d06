"""What the greedy stacks share: a DBN's RBMs and a stacked autoencoder's layers.

Lecture "Deep Neural Networks" trains a deep model one layer at a time, each layer on the
codes of the layers below. :class:`dlcore.DBN` (RBMs) and :class:`dlcore.StackedAutoencoder`
(autoencoders) keep their layers, bottom first, in a list of estimators; this mixin holds what
they do alike with that list: whether a layer has finished its epochs, the stack's history
(layer k's figures under ``<prefix><k>_<name>``, so that one file holds them all), and the check
that refuses to use a stack whose training an interruption stopped.

The sizes of the layers: ``hidden=[500, 500]`` names the hidden layers only, and the width of
the bottom layer comes from the ``X`` that ``fit`` is given, as scikit-learn's estimators take
it (``MLPClassifier(hidden_layer_sizes=...)``, ``BernoulliRBM(n_components=...)``), so one
estimator fits data of any width (a grid search, a pipeline after a feature selector,
scikit-learn's estimator checks). ``layers=[784, 500, 500]``, the width first, is the older
form, kept as it was: the code, model files and command lines that give it keep working, and
``fit`` then refuses data of another width. ``layers_`` is the fitted stack's sizes in that
form, whichever was given.
"""
import contextlib
import math
import numbers
import re
import sys
from collections.abc import Sequence

import numpy as np

from dlcore.errors import NotFittedError
from dlcore.params import FittedAttribute, sizes_call_wording
from dlcore.validation import check_width, is_integer
from dlcore.wording import as_typed, count

#: The hidden layers of a stack given neither ``hidden`` nor ``layers``.
DEFAULT_HIDDEN = (500, 500)


def as_size_list(sizes):
    """``hidden`` as a list of sizes: one whole number is one hidden layer (``hidden=100``, as
    scikit-learn's ``MLPClassifier(hidden_layer_sizes=100)`` takes it); anything else as it
    is, for the checks to judge."""
    if isinstance(sizes, numbers.Integral) and not isinstance(sizes, bool):
        return [sizes]
    return sizes


def check_hidden_sizes(hidden):
    """:func:`as_size_list` of ``hidden``, refusing in one line a number that is not whole
    (``100.0``, a grid's ``np.linspace`` value) or a bool, which a list-only message would
    tell to give a list where one whole number does."""
    if isinstance(hidden, (bool, np.bool_)) or (isinstance(hidden, numbers.Real) and
                                                not isinstance(hidden, numbers.Integral)):
        whole = (not isinstance(hidden, (bool, np.bool_)) and math.isfinite(hidden)
                 and hidden == int(hidden) and hidden >= 1)
        raise ValueError(f"hidden must be a whole number of units (one hidden layer, as "
                         f"hidden=100) or a list of them [n_hidden, ...], got {hidden!r:.40}"
                         + (f": give hidden={int(hidden)}" if whole else ""))
    return as_size_list(hidden)


def check_size_list(sizes, name="hidden", least=1, form="[n_hidden, ...]"):
    """``sizes`` (``hidden``, or ``layers`` with the width first) as a list of Python ints.

    What every estimator and model builder taking layer sizes accepts alike (``DBN``,
    ``StackedAutoencoder``, ``DBNClassifier``, ``models.mlp``), as scikit-learn's
    ``hidden_layer_sizes`` takes them: any sequence of whole numbers >= 1 (a list, a tuple, a
    ``range``, a 1-D NumPy integer array from a grid, NumPy integers inside a list) with at
    least ``least`` entries, and for ``hidden`` one whole number too (one hidden layer).
    Anything else (a float, a size below 1, a string, too few sizes) is a ValueError of one
    line naming ``name`` and what to give instead.
    """
    example = "[500, 200]" if name == "hidden" else "[784, 500, 200]"
    if name == "hidden":
        sizes = check_hidden_sizes(sizes)
    if isinstance(sizes, np.ndarray) and sizes.ndim != 1:
        raise ValueError(f"{name} must be one size per layer {form}, got an array of shape "
                         f"{sizes.shape}: give a flat list, e.g. {name}={example}")
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, (Sequence, np.ndarray)):
        # a set or a generator has no order or no length to check; a string is the command
        # line's form ("500-200"), whose sizes the fix spells out
        words = (f"a whole number of units (one hidden layer, as hidden=100) or a list of "
                 f"them {form}" if name == "hidden" else f"a list of sizes {form}")
        parts = re.split(r"[-,\s]+", sizes.strip()) if isinstance(sizes, str) else [""]
        spelled = [int(part) for part in parts if part.isdigit() and int(part) >= 1]
        fix = (f"e.g. {name}={example}" if len(spelled) < len(parts) else
               f"hidden={spelled[0]}" if name == "hidden" and len(spelled) == 1 else
               f"{name}={spelled}")
        raise ValueError(f"{name} must be {words}, got {as_typed(sizes):.80}: give {fix}")
    if len(sizes) < least:
        words = {1: "one size", 2: "two sizes"}.get(least) or count(least, "size")
        raise ValueError(f"{name} must list at least {words} {form}, got "
                         f"{as_typed(sizes):.80}")
    for size in sizes:
        if is_integer(size):
            if size < 1:
                raise ValueError(f"every entry of {name} must be >= 1, got {as_typed(size)} "
                                 f"in {name}={as_typed(sizes):.80}: give every layer at "
                                 f"least one unit")
            continue
        whole = all(isinstance(each, numbers.Real) and not isinstance(each, (bool, np.bool_))
                    and math.isfinite(each) and each == int(each) and each >= 1
                    for each in sizes)
        fix = (f": give {name}={[int(each) for each in sizes]}" if whole else
               f": give whole numbers of units, e.g. {name}={example}")
        raise ValueError(f"every entry of {name} must be a whole number of units, got "
                         f"{as_typed(size):.40} in {name}={as_typed(sizes):.80}{fix}")
    return [int(size) for size in sizes]


#: A layer's settings that say what the fitted layer is, not how it trains: changed after fit,
#: the layer's parameters are not those the setting names (``tied_weights``) or compute
#: another function of them (an ``activation``)
STRUCTURAL_SETTINGS = ("tied_weights", "activation", "decoder_activation")


def _same_setting(current, new):
    """Whether two values of a setting are the same (NumPy scalars and arrays included)."""
    try:
        return bool(np.all(np.asarray(current == new)))
    except (TypeError, ValueError):
        return current is new

class LayerStack:
    """Mixin; a class sets where its layers live and how its messages name them."""

    #: attribute holding the layer estimators, bottom first
    layers_attribute = "layers_"
    #: history keys of layer k (1 = the bottom one): f"{history_prefix}{k}_{name}"
    history_prefix = "layer"
    #: the word for one layer in messages
    layer_noun = "layer"
    #: the parameter of the layers' own options (one dict for all, or one per layer)
    layer_options_parameter = None
    #: how to finish an interrupted training, for the message that asks for it
    resume_hint = "resume(X)"
    #: the layer whose visible units take the data, for the messages about its width
    bottom_noun = "bottom layer"
    #: the per-epoch figures of every layer, kept in ``history_`` (scikit-learn's rule for
    #: what fit adds) and read under the name the layers' own histories have
    history = FittedAttribute()

    # -- sizes: ``hidden``, or ``layers`` with the width first (module docstring) ------------
    def _check_sizes(self):
        """``hidden`` and ``layers`` each a list of positive sizes (``hidden`` also one
        number, one hidden layer), at most one of them given; else one line naming the
        argument."""
        forms = {"layers": (2, "[n_visible, n_hidden, ...]"), "hidden": (1, "[n_hidden, ...]")}
        for name, (least, form) in forms.items():
            if getattr(self, name) is not None:
                check_size_list(getattr(self, name), name, least, form)
        if self.layers is not None and self.hidden is not None:
            raise ValueError(f"give hidden={self._listed('hidden')} (the hidden layers; the "
                             f"width comes from X) or layers={self._listed('layers')} (the "
                             f"width first), not both")

    def _listed(self, name):
        """``hidden`` or ``layers`` as the list of Python ints it stands for (a NumPy array,
        a tuple, one number: as the user would type it back, and as a file's JSON holds it);
        None when not given."""
        sizes = getattr(self, name)
        if sizes is None:
            return None
        return [int(size) if is_integer(size) else size for size in as_size_list(sizes)]

    def _hidden_sizes(self):
        """The hidden layers' sizes, bottom first: ``layers[1:]``, ``hidden``, or
        :data:`DEFAULT_HIDDEN` when neither is given."""
        if self.layers is not None:
            return [int(size) for size in self.layers[1:]]
        return [int(size) for size in (DEFAULT_HIDDEN if self.hidden is None
                                       else as_size_list(self.hidden))]

    def _sizes_given(self):
        """How the sizes were given, for messages: ``hidden=[...]`` or ``layers=[...]``."""
        if self.layers is not None:
            return f"layers={self._listed('layers')}"
        return f"hidden={self._hidden_sizes()}"

    def _check_layers_follow_the_stack(self, layers):
        """Refuse, before a fresh training, built ``layers`` (bottom first) whose own options
        (``rbm={"n_hidden": 5}``) gave them another size than the stack's: it trained layers
        of other sizes than ``layers_`` says, whose file ``dlcore.load`` then refused as
        damaged. A file holding such options (where they agree) still loads."""
        for index, (layer, size) in enumerate(zip(layers, self._hidden_sizes())):
            if layer.n_hidden != size:
                raise ValueError(f"{self.layer_options_parameter} gives {self.layer_noun} "
                                 f"{index + 1} n_hidden={layer.n_hidden!r}, but "
                                 f"{self._sizes_given()} gives it {size}: leave n_hidden "
                                 f"out of {self.layer_options_parameter} and give the sizes "
                                 f"there")

    def _check_fit_width(self, X, name):
        """With ``layers`` given, refuse rows that are not ``layers[0]`` wide, naming both
        fixes; ``hidden`` takes any width."""
        if self.layers is None or np.ndim(X) != 2 or X.shape[1] == int(self.layers[0]):
            return
        width, hidden = X.shape[1], self._hidden_sizes()
        raise ValueError(f"{name} has {width} columns but layers[0] is {int(self.layers[0])}, "
                         f"the {self.bottom_noun}'s visible units: start layers with {width} "
                         f"(e.g. layers=[{width}, {', '.join(map(str, hidden))}]), or give "
                         f"hidden={hidden} alone and the width comes from {name}")

    def _check_fitted_width(self, X, name):
        """Rows of a fitted stack's width, refused in scikit-learn's words."""
        check_width(X, name, type(self).__name__, self.n_features_in_)

    def _n_features_out(self):
        return self._hidden_sizes()[-1]

    def _layer_trained(self, index):
        layer = getattr(self, self.layers_attribute)[index]
        return hasattr(layer, "W") and layer.epochs_done_ >= int(layer.epochs)

    def _announce_layer(self, index):
        """With ``verbose``, a line on stderr naming the layer whose epoch lines follow: each
        layer writes "[BernoulliRBM] epoch 1: ..." alike, so a DBN's second RBM read as a
        second run of its first."""
        if not self.verbose:
            return
        layers = getattr(self, self.layers_attribute)
        below, above = self.layers_[index], self.layers_[index + 1]
        labels = int(getattr(layers[index], "n_labels", 0) or 0)
        with_labels = f" (+ {labels} label units)" if labels else ""
        print(f"[{type(self).__name__}] {self.layer_noun} {index + 1} of {len(layers)}: "
              f"{below} units{with_labels} -> {above} units", file=sys.stderr)

    def _record_layer(self, index, layer):
        # a layer interrupted while it was set up (a Ctrl-C as its first kernels compile) has
        # weights but no history yet: nothing to record, and the interruption must go on up
        for name, values in getattr(layer, "history", {}).items():
            self.history[f"{self.history_prefix}{index + 1}_{name}"] = list(values)

    def _restore_layer_history(self, index, layer):
        """A loaded layer's history is in the stack's: give it back to the layer."""
        prefix = f"{self.history_prefix}{index + 1}_"
        layer.history = {name[len(prefix):]: list(values)
                         for name, values in self.history.items()
                         if name.startswith(prefix)} or layer.history

    def _check_fitted_sizes(self, call):
        """``hidden`` (or ``layers``) that a ``set_params`` changed after training started is
        refused by ``call`` (``partial_fit``, ``resume``, which would train the fitted layers
        on while ``get_params`` names others; ``save``, ``pickle``, whose copy would not be
        read back): one line naming both fixes; nothing before fit."""
        if not hasattr(self, "layers_"):
            return
        fitted = [int(size) for size in self.layers_]
        if self.layers is not None:
            name, given, kept = "layers", [int(size) for size in self.layers], fitted
        else:
            name, given, kept = "hidden", self._hidden_sizes(), fitted[1:]
        if given != kept:
            consequence, fix = sizes_call_wording(call)
            raise ValueError(f"{name}={given} differs from the sizes this "
                             f"{type(self).__name__} was fitted with, {name}={kept}, "
                             f"{consequence}: call fit(X) to train the new sizes from the "
                             f"start, or set_params({name}={kept}) {fix}")

    def _take_new_settings(self, built):
        """The training settings that a ``set_params`` gave the stack after its layers were
        built (``learning_rate``, ``batch_size``, ...), onto its layers, as a single layer's
        ``partial_fit`` takes its own; ``built``: the layers the settings make now, each
        checked (:meth:`_check_params`). Sizes, seeds and epochs stay the layers' own; a
        setting that changes what a fitted layer is (its class, ``tied_weights``, its units'
        ``activation``) is refused in one line before any layer changes."""
        kept = ("n_hidden", "seed", "epochs", "n_labels")
        changes = []
        for index, (layer, new) in enumerate(zip(getattr(self, self.layers_attribute), built)):
            what = f"{self.layer_noun} {index + 1} of the {type(self).__name__}"
            if type(new) is not type(layer):
                raise ValueError(f"the settings make {what} a {type(new).__name__}, the fitted "
                                 f"one is a {type(layer).__name__}, which partial_fit would "
                                 f"train on: call fit(X) to train the new kind from the start, "
                                 f"or set_params back to the settings it was fitted with")
            current = layer.get_params(deep=False)
            changed = {name: value for name, value in new.get_params(deep=False).items()
                       if name not in kept and not _same_setting(current.get(name), value)}
            structural = sorted(set(changed) & set(STRUCTURAL_SETTINGS))
            if structural:
                name = structural[0]
                raise ValueError(f"{name}={changed[name]!r} would change {what}, fitted with "
                                 f"{name}={current[name]!r}, which partial_fit would train on: "
                                 f"call fit(X) to train the new setting from the start, or "
                                 f"set_params({name}={current[name]!r}) to go on")
            changes.append((layer, changed))
        for layer, changed in changes:
            layer.set_params(**changed)

    @contextlib.contextmanager
    def _whole_pass_or_none(self):
        """``partial_fit``'s pass over every layer in the block, or, when the block ends in an
        exception (Ctrl-C, SIGTERM, a diverged layer), none: the stack is put back as the
        call found it, as each layer's own ``partial_fit`` puts back its pass. A pass stopped
        halfway would leave the lower layers one pass ahead of the upper ones (a layer not
        trained at all after a first call, which every later use refused with the advice to
        ``resume``, whose epochs are ``fit``'s, not a pass), so the call run again, on the
        same batch, ends as the uninterrupted one."""
        found = dict(vars(self))
        history = {name: list(values) for name, values in found.get("history_", {}).items()}
        layers = [(layer, layer.training_snapshot(), layer.epochs,
                   {name: list(values) for name, values in layer.history.items()})
                  for layer in found.get(self.layers_attribute, ()) if hasattr(layer, "W")]
        try:
            yield
        except BaseException:
            for layer, snapshot, epochs, layer_history in layers:
                layer.history = layer_history
                layer.restore_snapshot(snapshot)
                layer.epochs = epochs
            self.__dict__.clear()
            self.__dict__.update(found)
            if "history_" in found:
                self.history = history
            raise

    def _built_by_partial_fit(self):
        """Whether ``partial_fit`` started this stack (its layers' ``epochs`` are the passes
        they had), by its training record."""
        record = getattr(self, "training_record_", None)
        fit_record = record.get("fit") if isinstance(record, dict) else None
        return isinstance(fit_record, dict) and fit_record.get("partial") is True

    def _layer_settings(self, index):
        """The constructor arguments that the stack's settings give layer ``index`` now."""
        raise NotImplementedError

    def _check_resumed_settings(self):
        """``resume`` continues the training that the layers were set up for: a stack setting
        changed since (``set_params(epochs=20)``) would be ignored by the layers it was built
        into, so it is refused in one line naming the layer, the setting and the fix. A
        layer's ``epochs`` above the stack's, all done, is no change: ``partial_fit`` after
        ``fit`` sets it to the passes the layer has had, and resume then has nothing to
        train (as Keras's fit whose ``initial_epoch`` is its ``epochs``)."""
        passes = self._built_by_partial_fit()
        for index, layer in enumerate(getattr(self, self.layers_attribute)):
            own = layer.get_params()
            for name, wanted in self._layer_settings(index).items():
                if name in ("seed", "backend", "verbose") or (name == "epochs" and passes):
                    continue
                # any whole number: epochs=np.int64(2), a grid's value, was refused as a change
                if name == "epochs" and _whole(wanted) is not None and \
                        _whole(own.get(name)) == getattr(layer, "epochs_done_", None) and \
                        _whole(own.get(name)) is not None and wanted <= own[name]:
                    continue
                if name in own and not _same_setting(own[name], wanted):
                    raise ValueError(
                        f"this {type(self).__name__}'s settings give {self.layer_noun} "
                        f"{index + 1} {name}={as_typed(wanted)}, but it was set up (and "
                        f"trained) with {name}={as_typed(own[name])}: resume continues "
                        "that training; call fit(X) to train afresh with the new settings, or "
                        f"{self._setting_restored(index, name, own[name])} back to resume")

    def _setting_restored(self, index, name, value):
        """The ``set_params`` call that gives layer ``index`` its setting ``name=value`` back:
        in the layers' own options where they set it (``rbm={"cd_k": 1}``: the stack has no
        ``cd_k``), the stack's list with that layer's entry put back where the stack gives
        one per layer (``epochs=[1, 2]``: ``epochs=2`` set every layer's)."""
        params = self.get_params(deep=False)
        options = params.get(self.layer_options_parameter)
        own = options[index] if isinstance(options, (list, tuple)) else options
        if isinstance(own, dict) and name in own:
            name, value, given = self.layer_options_parameter, {**own, name: value}, options
        else:
            given = params.get(name)
        if isinstance(given, (list, tuple)):
            value = type(given)(value if position == index else item
                                for position, item in enumerate(given))
        return f"set_params({name}={as_typed(value)})"

    def _check_started(self):
        """Refuse :meth:`resume` of a stack that has not started training: a NotFittedError,
        as an unfitted RBM's or autoencoder's ``resume`` raises, which code written for
        scikit-learn catches as a ValueError or AttributeError (and dlcore's old RuntimeError
        still catches)."""
        if not hasattr(self, self.layers_attribute):
            raise NotFittedError(f"this {type(self).__name__} has not started training: call "
                                 "fit(X) instead")

    def _check_fitted(self):
        name = type(self).__name__
        if not hasattr(self, self.layers_attribute):
            raise NotFittedError(f"this {name} is not fitted yet: call fit(X) first, or "
                                 "dlcore.load() a saved one")
        layers = getattr(self, self.layers_attribute)
        unfinished = [index for index in range(len(layers)) if not self._layer_trained(index)]
        if unfinished and id(self) in _IN_FIT:
            done = unfinished[0]
            trained = (f", and its trained {self.layer_noun}s used "
                       f"({self.layers_attribute}[:{done}])" if done else "")
            raise RuntimeError(f"this {name} is in the middle of its fit ({self.layer_noun} "
                               f"{done + 1} of {len(layers)} not trained yet), as "
                               f"on_epoch_end is given it: it can be saved (dlcore.save, a "
                               f"checkpoint that resume finishes){trained}; use the whole "
                               f"{name} once fit returns")
        if unfinished:
            raise RuntimeError(f"this {name}'s training was interrupted in {self.layer_noun} "
                               f"{unfinished[0] + 1} of {len(layers)}: finish it with "
                               f"{self.resume_hint}")


def _whole(value):
    """``value`` as an int where it is a whole number of any integer type (NumPy's too, not
    a bool), else None."""
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    return None


#: The ids of the stacks whose fit (or resume) runs now: the stack that ``on_epoch_end`` is
#: given between two epochs is not one whose training an interruption stopped
_IN_FIT = set()


@contextlib.contextmanager
def fitting(stack):
    """Mark ``stack`` as in its fit while the block runs (:meth:`LayerStack._check_fitted`'s
    words for it); a copy taken meanwhile is a stack whose training stopped."""
    _IN_FIT.add(id(stack))
    try:
        yield
    finally:
        _IN_FIT.discard(id(stack))


def _same_setting(own, wanted):
    """Whether a layer's setting ``own`` is the stack's ``wanted`` (a list, a tuple and a NumPy
    array of the same numbers alike: ``temperatures=np.array([1.0, 2.0])`` is a setting the
    layers take, whose ``==`` is no truth value)."""
    own, wanted = (value.tolist() if isinstance(value, np.ndarray) else value
                   for value in (own, wanted))
    if isinstance(own, (list, tuple)) and isinstance(wanted, (list, tuple)):
        return len(own) == len(wanted) and all(map(_same_setting, own, wanted))
    return own == wanted
