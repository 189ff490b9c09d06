"""The scikit-learn estimator contract, without depending on scikit-learn.

``get_params``/``set_params`` read the constructor's signature (as ``sklearn.base.BaseEstimator``
does), so an estimator works with ``sklearn.base.clone``, ``Pipeline`` and grid search.

In-memory copies (``pickle``, ``copy.deepcopy``, joblib shipping a model to a worker process)
go through the state of the HDF5 files (:mod:`dlcore.io.hdf5`): :func:`reduce_through_state`
makes a model's ``__reduce_ex__`` return the config, the state dict (arrays and plain values),
the history and the training record, and :func:`rebuild_from_state` builds the model again
with ``from_config`` and ``set_state``, as ``dlcore.load`` does. What is pickled is a
reference to the model's class and those plain values, never the model's ``__dict__``. Model
files stay pickle-free: ``dlcore.load`` reads HDF5 only and never unpickles.
"""
import copy
import inspect


class FittedAttribute:
    """A learned attribute of an estimator, kept in the instance under its name plus ``_``
    (scikit-learn's rule for what ``fit`` adds: ``W`` lives in ``W_``) and read or assigned
    under its plain name too; AttributeError before it is set, so ``hasattr(rbm, "W")`` tells
    whether the model is fitted."""

    def __set_name__(self, owner, name):
        self.key = name + "_"

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        try:
            return instance.__dict__[self.key]
        except KeyError:
            raise AttributeError(f"{type(instance).__name__} has no {self.key[:-1]!r} before "
                                 "fit") from None

    def __set__(self, instance, value):
        instance.__dict__[self.key] = value


class ParamsMixin:
    """get_params / set_params / repr from the names of ``__init__``'s arguments."""

    @classmethod
    def _param_names(cls):
        signature = inspect.signature(cls.__init__)
        return [name for name, parameter in signature.parameters.items()
                if name != "self" and parameter.kind == parameter.POSITIONAL_OR_KEYWORD]

    def _init_params(self, arguments):
        """Store every constructor argument under its own name, unchanged (scikit-learn's rule:
        checks happen in ``_check_params`` and ``fit``); ``arguments`` is ``locals()``."""
        for name in self._param_names():
            setattr(self, name, arguments[name])

    def get_params(self, deep=True):
        """The constructor arguments as a dict (``deep`` is accepted for scikit-learn)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        """Set constructor arguments by name; returns self. Unknown names are an error."""
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for {type(self).__name__}; "
                                 f"valid parameters: {', '.join(valid)}")
            setattr(self, name, value)
        return self

    def __repr__(self):
        signature = inspect.signature(type(self).__init__)
        changed = [f"{name}={getattr(self, name)!r}" for name in self._param_names()
                   if getattr(self, name) != signature.parameters[name].default]
        return f"{type(self).__name__}({', '.join(changed)})"

    def __sklearn_tags__(self):
        """Tags for scikit-learn >= 1.6, which asks every estimator in a Pipeline for them."""
        from sklearn.utils import InputTags, Tags, TargetTags, TransformerTags
        return Tags(estimator_type=None, target_tags=TargetTags(required=False),
                    transformer_tags=TransformerTags(), input_tags=InputTags())


class PicklesThroughState:
    """Mixin: ``pickle`` (and joblib) carry the model as its file does, through
    :func:`reduce_through_state`, with a state when :meth:`_has_state`; ``copy.copy`` and
    ``copy.deepcopy`` copy the attributes themselves, training state included."""

    def _has_state(self):
        return hasattr(self, "W")

    def __deepcopy__(self, memo):
        clone = type(self).__new__(type(self))
        clone.__dict__.update(copy.deepcopy(self.__dict__, memo))
        return clone

    def __copy__(self):
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        return clone

    def __reduce_ex__(self, protocol):
        return reduce_through_state(self, fitted=self._has_state())


def reduce_through_state(model, fitted):
    """``model.__reduce_ex__``'s value: rebuild with :func:`rebuild_from_state` from the class,
    ``get_config()``, ``get_state()`` (None when ``fitted`` is false: an unfitted model has no
    state), ``history`` and ``training_record_`` (copies: the pickled payload never aliases the
    live model's arrays or lists)."""
    payload = {"config": model.get_config(),
               "state": model.get_state() if fitted else None,
               "history": getattr(model, "history", None),
               "training_record": getattr(model, "training_record_", None)}
    return rebuild_from_state, (type(model), copy.deepcopy(payload))


def rebuild_from_state(cls, payload):
    """The model that :func:`reduce_through_state` took apart: ``cls.from_config(config)``,
    then ``set_state(state)``, then its history and training record."""
    if payload["state"] is None and issubclass(cls, ParamsMixin):
        model = cls(**payload["config"])  # an unfitted estimator: only fit checks its values
    else:
        model = cls.from_config(payload["config"])
    if payload["state"] is not None:
        model.set_state(payload["state"])
    if payload["history"] is not None:
        model.history = payload["history"]
    if payload["training_record"] is not None:
        model.training_record_ = payload["training_record"]
    return model


def check_per_layer(model, names, n_layers, what):
    """Each option in ``names`` of a stack of ``n_layers`` models (a DBN's RBMs, a stacked
    autoencoder's layers) is one value for all or a list of exactly one value per layer
    (``what`` names them in the message, e.g. "RBMs")."""
    for name in names:
        value = getattr(model, name)
        if isinstance(value, (list, tuple)) and len(value) != n_layers:
            raise ValueError(f"{name} lists {len(value)} values for {n_layers} {what} "
                             f"(layers={list(model.layers)})")


def per_layer_options(model, index, names):
    """The options in ``names`` of layer ``index`` of a stack: the model's value, or the
    index-th of a list; a None is left out (the layer keeps its own default)."""
    options = {}
    for name in names:
        value = getattr(model, name)
        if isinstance(value, (list, tuple)):
            value = value[index]
        if value is not None:
            options[name] = value
    return options
