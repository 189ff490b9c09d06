"""The scikit-learn estimator contract, without depending on scikit-learn.

``get_params``/``set_params`` read the constructor's signature (as ``sklearn.base.BaseEstimator``
does), so an estimator works with ``sklearn.base.clone``, ``Pipeline`` and grid search. A
transformer (:class:`TransformerOutput`) also keeps the column names of the table it was fitted
on (``feature_names_in_``), names its own outputs (``get_feature_names_out``) and returns
pandas or polars tables when asked (``set_output``), so that ``Pipeline.set_output`` and
``ColumnTransformer`` take it as one of scikit-learn's own.

In-memory copies (``pickle``, ``copy.deepcopy``, joblib shipping a model to a worker process)
go through the state of the HDF5 files (:mod:`dlcore.io.hdf5`): :func:`reduce_through_state`
makes a model's ``__reduce_ex__`` return the config, the state dict (arrays and plain values),
the history and the training record, and :func:`rebuild_from_state` builds the model again
with ``from_config`` and ``set_state``, as ``dlcore.load`` does. What is pickled is a
reference to the model's class and those plain values, never the model's ``__dict__``. Model
files stay pickle-free: ``dlcore.load`` reads HDF5 only and never unpickles.
:class:`SavesToFile` gives the layer-wise models ``model.save(path)``, that same file.
"""
import copy
import inspect
import sys
import warnings

import numpy as np

from dlcore.validation import as_array, is_integer
from dlcore.wording import as_typed, count, listed


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
        # Training updates the parameters in place: a read-only array assigned by hand (a
        # memory map from ``np.load(f, mmap_mode="r")``, a read-only view) made the compiled
        # kernels refuse it with a typing error, so the estimator keeps its own copy.
        if isinstance(value, np.ndarray) and not value.flags.writeable:
            value = np.array(value)
        instance.__dict__[self.key] = value


#: scikit-learn's (and Keras's) names of what dlcore's estimators call otherwise: a student who
#: swaps ``sklearn.neural_network.BernoulliRBM(n_components=100, n_iter=20, random_state=0)``
#: for dlcore's is told each name, not only that it is unexpected.
SCIKIT_LEARN_NAMES = {"n_components": "n_hidden", "n_iter": "epochs", "max_iter": "epochs",
                      "random_state": "seed", "hidden_layer_sizes": "hidden",
                      "learning_rate_init": "learning_rate"}


#: dlcore's own two names of the hidden sizes: one layer's ``n_hidden`` (``BernoulliRBM``,
#: ``GaussianBernoulliRBM``, ``Autoencoder``) and a stack's ``hidden`` (``DBN``,
#: ``StackedAutoencoder``, ``DBNClassifier``); the one given to an estimator that takes the
#: other is answered with it, not with Python's bare "unexpected keyword argument".
SIZE_NAMES = {"n_hidden": "hidden", "hidden": "n_hidden"}


def _size_name_refusal(cls_name, name, value):
    """The one line answering ``name`` (one of :data:`SIZE_NAMES`) given as ``value`` to
    ``cls_name``, which takes the other name."""
    ours = SIZE_NAMES[name]
    if ours == "hidden":
        return (f"{cls_name} has no parameter 'n_hidden' (a single RBM's or autoencoder's): "
                f"its hidden layers' sizes are hidden, e.g. {cls_name}(hidden="
                f"{as_typed(value):.40}) (one number is one hidden layer)")
    example = as_typed(value) if is_integer(value) else "500"
    stack = "StackedAutoencoder" if cls_name.endswith("Autoencoder") else "DBN"
    return (f"{cls_name} has no parameter 'hidden' (the stacks' list of layer sizes): its "
            f"hidden units are n_hidden, e.g. {cls_name}(n_hidden={example:.40}); several "
            f"layers stacked are a {stack}'s, {stack}(hidden=[500, 200])")


class ParamsMixin:
    """get_params / set_params / repr from the names of ``__init__``'s arguments."""

    def __init_subclass__(cls, **options):
        super().__init_subclass__(**options)
        # the class's signature is its __init__'s: Python 3.10's inspect.signature of a class
        # that inherits its __init__ (SKLearnClassifier) read the __new__ below instead,
        # (*args, **kwargs), for help(), an editor's hints and scikit-learn's checks
        if cls.__init__ is object.__init__:   # an abstract base (RBMBase)
            return
        signature = inspect.signature(cls.__init__)
        cls.__signature__ = signature.replace(parameters=[
            parameter for name, parameter in signature.parameters.items() if name != "self"])

    def __new__(cls, *args, **kwargs):
        """Refuse scikit-learn's names of dlcore's parameters (:data:`SCIKIT_LEARN_NAMES`) in
        one line giving dlcore's, before Python's bare "unexpected keyword argument"."""
        valid = cls._param_names()
        # all of them at once: scikit-learn's example gives n_components, n_iter and
        # random_state together, and a student should not meet them one run at a time
        theirs = [name for name in kwargs
                  if name not in valid and SCIKIT_LEARN_NAMES.get(name) in valid]
        if theirs:
            ours = [SCIKIT_LEARN_NAMES[name] for name in theirs]
            example = ", ".join(f"{mine}={kwargs[name]!r:.40}" for name, mine in zip(theirs, ours))
            if len(theirs) == 1:
                raise TypeError(f"{cls.__name__} has no parameter {theirs[0]!r} (scikit-learn's "
                                f"name): dlcore calls it {ours[0]}, e.g. "
                                f"{cls.__name__}({example})")
            raise TypeError(f"{cls.__name__} has no parameters "
                            f"{listed([repr(name) for name in theirs])} (scikit-learn's "
                            f"names): dlcore calls them {listed(ours)}, e.g. "
                            f"{cls.__name__}({example})")
        for name, value in kwargs.items():
            if name not in valid and SIZE_NAMES.get(name) in valid:
                raise TypeError(_size_name_refusal(cls.__name__, name, value))
        return super().__new__(cls)

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
                raise ValueError(f"invalid parameter {name!r} for {type(self).__name__}"
                                 f"{_parameter_hint(name, valid)}; valid parameters: "
                                 f"{', '.join(valid)}")
            setattr(self, name, value)
        if params and any(key.endswith("_") and not key.startswith("_") for key in vars(self)):
            # set on a fitted model (scikit-learn's rule: what fit adds ends in _): pickling
            # then reads its copy back before writing it (check_read_back)
            self.__dict__["_set_after_fit"] = True
        return self

    def __repr__(self):
        """The class and the arguments that differ from their defaults, compared by their
        ``repr`` as scikit-learn's estimators do: ``==`` on an array argument (``layers``
        or ``temperatures`` given as a NumPy array) is an array, whose truth is an error.
        Every argument after scikit-learn's ``set_config(print_changed_only=False)``, as its
        own estimators beside this one in a Pipeline then show theirs."""
        signature = inspect.signature(type(self).__init__)
        sklearn = sys.modules.get("sklearn")
        every = sklearn is not None and not sklearn.get_config().get("print_changed_only", True)
        shown = [f"{name}={getattr(self, name)!r}" for name in self._param_names()
                 if every
                 or repr(getattr(self, name)) != repr(signature.parameters[name].default)]
        return f"{type(self).__name__}({', '.join(shown)})"

    @property
    def _repr_html_(self):
        """The HTML of :meth:`_repr_mimebundle_` (scikit-learn's diagram), for tools that ask
        for this alone; as scikit-learn's own property, there only while scikit-learn is
        imported with its ``display`` "diagram"."""
        sklearn = sys.modules.get("sklearn")
        if sklearn is None or sklearn.get_config().get("display") != "diagram":
            raise AttributeError("_repr_html_ is only defined when scikit-learn is imported "
                                 "and its display setting is 'diagram'")
        from sklearn.utils import estimator_html_repr
        return lambda: estimator_html_repr(self)

    def _repr_mimebundle_(self, **kwargs):
        """What a Jupyter notebook shows for the estimator: its repr and, once scikit-learn
        is imported and its ``display`` setting is "diagram" (the default), scikit-learn's
        HTML diagram, as for its own estimators (dlcore itself never imports scikit-learn)."""
        bundle = {"text/plain": repr(self)}
        sklearn = sys.modules.get("sklearn")
        if sklearn is not None and sklearn.get_config().get("display") == "diagram":
            from sklearn.utils import estimator_html_repr
            bundle["text/html"] = estimator_html_repr(self)
        return bundle

    def __sklearn_tags__(self):
        """Tags for scikit-learn >= 1.6, which asks every estimator in a Pipeline for them."""
        from sklearn.utils import InputTags, Tags, TargetTags, TransformerTags
        return Tags(estimator_type=None, target_tags=TargetTags(required=False),
                    transformer_tags=TransformerTags(), input_tags=InputTags())


def _parameter_hint(name, valid):
    """What the unknown parameter ``name`` of ``set_params`` (a grid's key) was likely meant
    as, in parentheses, or "": scikit-learn's name of one of ours, or a nested key
    ``option__inner`` (scikit-learn's syntax for an estimator inside an estimator, and
    scikeras's ``model__hidden``) where the option is a dict of options, searched over as
    whole dicts."""
    ours = SCIKIT_LEARN_NAMES.get(name)
    if ours in valid:
        return f" ({name} is scikit-learn's name: dlcore calls it {ours})"
    if SIZE_NAMES.get(name) in valid:
        return (f" (the sizes are {SIZE_NAMES[name]} here: n_hidden is a single layer's, "
                f"hidden a stack's)")
    option, _, inner = name.partition("__")
    if inner and option == "model" and "model_kwargs" in valid:
        option = "model_kwargs"   # the model function's own arguments
    if inner in valid:   # rbm__cd_k where the DBN has cd_k itself
        return f" ({inner} is a parameter of its own: search over {{'{inner}': [...]}})"
    if inner and option in valid:
        return (f" ({option} is a dict of options, not an estimator: give whole dicts, e.g. "
                f"the grid {{'{option}': [{{'{inner}': ...}}, {{'{inner}': ...}}]}})")
    return ""


def refuse_fit_arguments(estimator, method_name, unexpected):
    """Refuse the keyword arguments ``unexpected`` that ``estimator.method_name`` (``fit``,
    ``partial_fit``, ``resume``) collected in its ``**unexpected`` in one line naming the
    estimator and the fix, where Python's "RBMBase.fit() got an unexpected keyword argument"
    named an internal class: ``sample_weight`` (which scikit-learn's ``Pipeline`` passes on as
    ``rbm__sample_weight``), and Keras's habit of giving ``epochs`` or ``batch_size`` to
    ``fit``, when they are the estimator's parameters. The method's named parameters stay
    what ``inspect`` sees (scikit-learn's ``has_fit_parameter``, which tells
    ``BaggingClassifier`` whether to pass weights, answers no); a wrapper would have put its
    own frame between the caller and the warnings ``fit`` gives."""
    if unexpected:
        signature = inspect.signature(getattr(type(estimator), method_name))
        raise TypeError(_fit_argument_problem(estimator, method_name, signature, unexpected))


def _fit_argument_problem(estimator, method_name, signature, kwargs):
    """The line that says which argument of ``estimator.method_name(...)`` is wrong."""
    call = f"{type(estimator).__name__}.{method_name}"
    unknown = list(kwargs)
    if "sample_weight" in unknown:
        return (f"{call} takes no sample_weight: dlcore's RBMs, DBNs and autoencoders do not "
                "weigh their samples; repeat each row in proportion to its weight instead "
                "(X[np.repeat(np.arange(len(X)), counts)]), or train a network, whose fit "
                "takes sample_weight")
    parameters = estimator._param_names()
    for name in unknown:
        if name in parameters:
            return (f"{call} takes no {name}: it is a parameter of {type(estimator).__name__}; "
                    f"give it when making the model ({type(estimator).__name__}({name}="
                    f"{kwargs[name]!r:.40})) or with set_params({name}=...)")
    taken = ", ".join(name for name, parameter in signature.parameters.items()
                      if name != "self" and parameter.kind != parameter.VAR_KEYWORD)
    return f"{call} got an unexpected argument {unknown[0]!r}; it takes {taken}"


def with_verbose_flag(config):
    """``config`` (a model's constructor arguments, for its file) with an integer ``verbose``
    of 0 or more, scikit-learn's ``verbose=1`` that ``fit`` takes, as the True or False it
    stands for: a model file holds true or false there, and ``dlcore.load`` refused the file
    of a model trained with ``verbose=1`` as damaged. Any other value is left as it is, for
    the checks to refuse. Returns ``config``, changed in place."""
    verbose = config.get("verbose")
    if is_integer(verbose) and verbose >= 0:
        config["verbose"] = bool(verbose)
    return config


class ConfigIsParams:
    """Mixin: an estimator whose config (what pickling stores beside its state) is its
    constructor arguments, rebuilt by calling the constructor with them."""

    def get_config(self):
        """The constructor arguments (what pickling stores, with the state)."""
        return self.get_params()

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class AccuracyScore:
    """Mixin: scikit-learn's ``ClassifierMixin.score`` for a classifier with ``predict``."""

    def score(self, X, y, sample_weight=None):
        """Mean accuracy of :meth:`predict` on (X, y), weighted by ``sample_weight`` when given
        (scikit-learn's ``ClassifierMixin.score``)."""
        predicted = self.predict(X)
        truth, weights = score_targets(len(predicted), y, sample_weight)
        correct = (predicted == truth.ravel()).astype(np.float64)
        return float(np.average(correct, weights=weights))


def score_targets(n_rows, y, sample_weight):
    """``(y, sample_weight)`` of a ``score(X, y, sample_weight)`` as arrays of one entry per
    row of ``X`` (``n_rows``; the weights None when not given), or one line naming the one of
    another length, in place of NumPy's "operands could not be broadcast together with shapes
    (30,) (29,)" or "Axis must be specified when shapes of a and weights differ"."""
    truth = as_array(y, "y")
    if truth.ndim == 0 or len(truth) != n_rows:
        given = "a single value" if truth.ndim == 0 else count(len(truth), "row")
        raise ValueError(f"y has {given} but X has {count(n_rows, 'row')}: give one target "
                         "per row of X")
    if sample_weight is None:
        return truth, None
    weights = as_array(sample_weight, "sample_weight")
    if weights.ndim != 1 or len(weights) != n_rows:
        raise ValueError(f"sample_weight has shape {weights.shape} but X has "
                         f"{count(n_rows, 'row')}: give one weight per row, shape ({n_rows},)")
    return truth, weights


#: scikit-learn's value of a ``set_<method>_request`` argument left as it was
UNCHANGED = "$UNCHANGED$"


class _RequestOfRoutedMethod:
    """``set_<method>_request`` where the class routes ``sample_weight`` to ``method`` (lists it
    in ``_ROUTED_METHODS``), and no attribute where it does not: scikit-learn's estimators
    have a request method for each method of theirs that takes the weights only (a
    transformer without ``score`` has no ``set_score_request``)."""

    def __init__(self, method, function):
        self.method, self.function = method, function
        self.__doc__ = function.__doc__

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, instance, owner=None):
        owner = type(instance) if owner is None else owner
        if self.method not in owner._ROUTED_METHODS:
            raise AttributeError(f"{owner.__name__!r} object has no attribute {self.name!r} "
                                 f"(it has no {self.method} that takes sample_weight)")
        return self.function if instance is None else self.function.__get__(instance, owner)


def _request_of(method):
    return lambda function: _RequestOfRoutedMethod(method, function)


class RoutesSampleWeight:
    """Mixin: scikit-learn's metadata routing of ``sample_weight``
    (``sklearn.set_config(enable_metadata_routing=True)``): ``set_fit_request``,
    ``set_score_request`` (where the class lists ``score`` in ``_ROUTED_METHODS``; and
    ``set_partial_fit_request`` where it lists ``partial_fit``) and ``get_metadata_routing``,
    as ``sklearn.base.BaseEstimator`` gives scikit-learn's own estimators. Without them a
    Pipeline or a search with routing on refused the weights ("sample_weight ... not routed
    to any object") with no way to ask for them.
    The choices are a ``sklearn.utils.metadata_routing.MetadataRequest`` in
    ``_metadata_request``, which ``sklearn.base.clone`` copies (dlcore itself imports
    scikit-learn only here, once routing is on)."""

    #: the methods that take ``sample_weight``
    _ROUTED_METHODS = ("fit", "score")

    def get_metadata_routing(self):
        """The estimator's ``MetadataRequest``: ``sample_weight`` of each method that takes
        it, as ``set_<method>_request`` chose (None, scikit-learn's default, where not). A
        copy, as scikit-learn's: what is done to it leaves the estimator's choices as they
        are (only ``set_<method>_request`` changes them)."""
        chosen = vars(self).get("_metadata_request")
        if chosen is not None:
            return copy.deepcopy(chosen)
        from sklearn.utils.metadata_routing import MetadataRequest
        request = MetadataRequest(owner=type(self).__name__)
        for method in self._ROUTED_METHODS:
            getattr(request, method).add_request(param="sample_weight", alias=None)
        return request

    def _set_request(self, method, sample_weight):
        import sklearn
        if not sklearn.get_config().get("enable_metadata_routing", False):
            raise RuntimeError("This method is only available when metadata routing is enabled."
                               " You can enable it using"
                               " sklearn.set_config(enable_metadata_routing=True).")
        request = self.get_metadata_routing()
        if not (isinstance(sample_weight, str) and sample_weight == UNCHANGED):
            getattr(request, method).add_request(param="sample_weight", alias=sample_weight)
        self._metadata_request = request
        return self

    def set_fit_request(self, *, sample_weight=UNCHANGED):
        """Whether ``fit`` gets ``sample_weight`` under metadata routing: True, False, None
        (an error where given) or another name to take it from; returns self."""
        return self._set_request("fit", sample_weight)

    @_request_of("score")
    def set_score_request(self, *, sample_weight=UNCHANGED):
        """Whether ``score`` gets ``sample_weight`` under metadata routing (as
        :meth:`set_fit_request`); returns self."""
        return self._set_request("score", sample_weight)


class LogProbabilities:
    """Mixin: ``predict_log_proba``, the logarithm of a classifier's ``predict_proba``
    (scikit-learn's classifiers, ``MLPClassifier`` among them, have both)."""

    def predict_log_proba(self, X):
        """log P(class | x), (n, n_classes), columns in the order of ``classes_``: the
        logarithm of :meth:`predict_proba` (-inf where a probability is 0, as scikit-learn's
        ``MLPClassifier`` gives)."""
        probabilities = self.predict_proba(X)
        with np.errstate(divide="ignore"):
            return np.log(probabilities)


def table_column_names(X):
    """The column names of a pandas or polars table (or any with ``__dataframe__``) as an
    object array, when every one is a string; None for an array, a table without names, or one
    whose names are not all strings (scikit-learn's rule: mixed names are an error)."""
    columns = getattr(X, "columns", None)
    if columns is None or isinstance(X, np.ndarray):
        if not hasattr(X, "__dataframe__"):
            return None
        columns = list(X.__dataframe__().column_names())
    names = np.asarray(list(columns), dtype=object)
    if len(names) == 0:
        return None
    kinds = {type(name) for name in names}
    if kinds == {str}:
        return names
    if str in kinds:
        raise TypeError(f"feature names are supported only when every column's name is a "
                        f"string; this table's are of the types "
                        f"{sorted(kind.__qualname__ for kind in kinds)}: rename them, "
                        f"e.g. X.columns = X.columns.astype(str)")
    return None


class FeatureNamesIn:
    """Mixin: ``feature_names_in_``, the column names of the pandas or polars table ``fit``
    saw (strings only), as scikit-learn's estimators keep them: a table with other names given
    later (to ``transform``, ``predict``, ``score``...) is refused, in scikit-learn's words, and
    a table where the model was fitted on an array (or the reverse) is warned about.

    A subclass calls :meth:`_note_feature_names` with the ``X`` a public method was given,
    before turning it into an array (``reset`` on fit).
    """

    def _note_feature_names(self, X, reset):
        names = table_column_names(X)
        if reset:
            if names is not None:
                self.feature_names_in_ = names
            else:
                self.__dict__.pop("feature_names_in_", None)
            return
        fitted = getattr(self, "feature_names_in_", None)
        model = type(self).__name__
        # the user's line, however deep in dlcore this check runs (transform is a call deeper
        # than fit): a fixed stacklevel named dlcore's own transform under the warning
        from dlcore.layers.geometry import stacklevel_outside_dlcore
        if fitted is None and names is not None:
            warnings.warn(f"X has feature names, but {model} was fitted without feature names",
                          UserWarning, stacklevel=stacklevel_outside_dlcore())
        elif fitted is not None and names is None:
            warnings.warn(f"X does not have valid feature names, but {model} was fitted with "
                          f"feature names", UserWarning, stacklevel=stacklevel_outside_dlcore())
        elif fitted is not None and (len(fitted) != len(names) or np.any(fitted != names)):
            raise ValueError(feature_name_mismatch(fitted, names))


class TransformerOutput(FeatureNamesIn):
    """Mixin: scikit-learn's conventions for a transformer, :class:`FeatureNamesIn` and:

    * ``get_feature_names_out()``: the output columns' names, the class name in lower case and
      the column number (``bernoullirbm0``, ``bernoullirbm1``, ...), as scikit-learn's own
      ``BernoulliRBM`` names them.
    * ``set_output(transform="pandas" | "polars" | "default")``: what ``transform`` returns;
      without it, scikit-learn's global ``set_config(transform_output=...)`` when scikit-learn
      is imported, else a NumPy array.

    A subclass also returns ``self._wrap_output(X, result)`` from ``transform`` and says its
    number of outputs in :meth:`_n_features_out`.
    """

    def _n_features_out(self):
        raise NotImplementedError

    def get_feature_names_out(self, input_features=None):
        """The names of ``transform``'s output columns, an object array of strings:
        ``<class name in lower case><column>``. ``input_features``, when given, must be the
        names of the inputs (``feature_names_in_`` when fitted on a table)."""
        self._check_fitted()
        if input_features is not None:
            given = np.asarray(input_features, dtype=object)
            if len(given) != self.n_features_in_:
                raise ValueError(f"input_features should have length equal to number of "
                                 f"features ({self.n_features_in_}), got {len(given)}")
            fitted = getattr(self, "feature_names_in_", None)
            if fitted is not None and np.any(given != fitted):
                raise ValueError("input_features is not equal to feature_names_in_")
        prefix = type(self).__name__.lower()
        return np.asarray([f"{prefix}{column}" for column in range(self._n_features_out())],
                          dtype=object)

    def set_output(self, *, transform=None):
        """What ``transform`` and ``fit_transform`` return: ``"default"`` (a NumPy array),
        ``"pandas"`` or ``"polars"`` (a table whose columns are :meth:`get_feature_names_out`
        and, for pandas, whose index is the input table's), or None to leave it as it is.
        Returns self."""
        if transform is None:
            return self
        if transform not in OUTPUT_CONTAINERS:
            raise ValueError(f"set_output's transform must be one of "
                             f"{', '.join(OUTPUT_CONTAINERS)} or None, got {transform!r}")
        # the attribute scikit-learn's clone copies and its own set_output keeps
        self._sklearn_output_config = {"transform": transform}
        return self

    def _output_container(self):
        chosen = getattr(self, "_sklearn_output_config", {}).get("transform")
        if chosen is None and "sklearn" in sys.modules:
            chosen = sys.modules["sklearn"].get_config().get("transform_output", "default")
        return chosen or "default"

    def _wrap_output(self, X, result):
        container = self._output_container()
        if container == "default":
            return result
        columns = list(self.get_feature_names_out())
        if container == "pandas":
            pandas = _import_table_library("pandas")
            index = X.index if isinstance(X, pandas.DataFrame) else None
            return pandas.DataFrame(result, index=index, columns=columns)
        polars = _import_table_library("polars")
        return polars.DataFrame(result, schema=columns, orient="row")


def inner_layer(model):
    """``model`` (an RBM of a DBN, an autoencoder of a stack) set to return NumPy arrays from
    ``transform`` whatever scikit-learn's global ``transform_output``: its output feeds the
    next layer inside the stack, never the caller. Returns the model."""
    return model.set_output(transform="default")


#: The output containers :meth:`TransformerOutput.set_output` knows.
OUTPUT_CONTAINERS = ("default", "pandas", "polars")


def _import_table_library(name):
    try:
        return __import__(name)
    except ImportError:
        raise ImportError(f"set_output(transform={name!r}) needs {name}: pip install {name}, "
                          f"or set_output(transform='default') for NumPy arrays") from None


def feature_name_mismatch(fitted, given):
    """scikit-learn's message for a table whose column names are not those of fit (its
    estimator checks look for these words), listing what is new and what is missing, then
    the fix: the columns of fit, in their order (``feature_names_in_``)."""
    fitted_set, given_set = set(fitted), set(given)
    unseen = sorted(given_set - fitted_set)
    missing = sorted(fitted_set - given_set)
    message = "The feature names should match those that were passed during fit.\n"

    def bulleted(names):
        shown = "".join(f"- {name}\n" for name in names[:5])
        return shown + ("- ...\n" if len(names) > 5 else "")
    if unseen:
        message += "Feature names unseen at fit time:\n" + bulleted(unseen)
    if missing:
        message += "Feature names seen at fit time, yet now missing:\n" + bulleted(missing)
    if not unseen and not missing:
        message += "Feature names must be in the same order as they were in fit.\n"
        return message + "Reorder the columns as at fit: X[model.feature_names_in_]."
    return message + "Give the columns the model was fitted on: model.feature_names_in_."


class SavesToFile:
    """Mixin: ``model.save(path)`` writes dlcore's HDF5 model file, as ``dlcore.save(model,
    path)`` does (the RBMs, DBN and autoencoders; a network's ``save`` writes Keras's
    formats instead, as Keras's does)."""

    def save(self, path):
        """Write this model to ``path`` in dlcore's HDF5 format (docs/hdf5-format.md):
        ``dlcore.save(self, path)``. The file is written under a temporary name and renamed
        when complete, so an interrupted save leaves the previous file intact;
        ``dlcore.load(path)`` reads the model back.

        Parameters
        ----------
        path : str or os.PathLike, the file (``model.h5``), replaced if it exists; its folder
            must exist
        """
        from dlcore.io import save
        save(self, path)


def sizes_call_wording(call):
    """``(consequence, fix)``: the words of a refusal by ``call`` of sizes that a
    ``set_params`` changed after ``fit``, e.g. "which partial_fit would train on" and "to go
    on"; "save" and "pickle" would write a copy that no reading could rebuild."""
    if call in ("save", "pickle"):
        return (f"and {call} would write a copy that could not be read back",
                f"before you {call} it")
    return f"which {call} would train on", "to go on"


def check_read_back(model, config, state, call):
    """Refuse in one line to ``call`` ("save", "pickle") a fitted estimator whose
    hyperparameters no longer describe what it was fitted with (a ``set_params`` after
    ``fit``, which scikit-learn's estimators take and check at the next ``fit``): its file or
    pickle would be refused when read back, and ``dlcore.save`` would have replaced a good
    file with it. The check is the reading itself, ``from_config(config)`` then
    ``set_state(state)`` on a throwaway model, after the fitted sizes, whose message names
    both fixes; a pickle (every estimator a joblib worker receives or returns) reads back
    only a model that ``set_params`` changed after fit. Returns None."""
    from dlcore.io.hdf5 import MODEL_REJECTION_ERRORS
    if hasattr(model, "_check_fitted_sizes"):
        model._check_fitted_sizes(call)
    if call == "pickle" and not vars(model).get("_set_after_fit"):
        # a pickle (a joblib worker's every estimator) rebuilds nothing more unless a
        # set_params after fit may have made the copy unreadable
        return
    name = type(model).__name__
    try:
        rebuilt = type(model).from_config(config)
    except MODEL_REJECTION_ERRORS as error:
        raise ValueError(f"cannot {call} this {name}: a hyperparameter set after fit is "
                         f"refused ({str(error)[:300]}), and the copy could not be read back; "
                         f"set_params to a valid value first") from None
    try:
        rebuilt.set_state(state)
    except MODEL_REJECTION_ERRORS as error:
        raise ValueError(f"cannot {call} this {name}: its hyperparameters no longer describe "
                         f"the model it was fitted as ({str(error)[:300]}), so the copy could "
                         f"not be read back; set_params back to the values it was fitted "
                         f"with, or fit it again") from None


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
    state), ``history``, ``training_record_``, ``feature_names_in_``, the ``set_output``
    choice and, where made, the ``set_<method>_request`` choices (copies: the pickled payload
    never aliases the live model's arrays or lists)."""
    if fitted and hasattr(model, "_check_fitted_sizes"):
        model._check_fitted_sizes("pickle")   # before get_state, which may fail on them
    payload = {"config": model.get_config(),
               "state": model.get_state() if fitted else None,
               "params": model.get_params(deep=False) if isinstance(model, ParamsMixin)
               else None,
               "history": getattr(model, "history", None),
               "training_record": getattr(model, "training_record_", None),
               "feature_names_in": getattr(model, "feature_names_in_", None),
               "output_config": getattr(model, "_sklearn_output_config", None)}
    if fitted and payload["params"] is not None:
        check_read_back(model, payload["config"], payload["state"], "pickle")
    request = vars(model).get("_metadata_request")
    if request is not None:   # set_fit_request's choices, as plain data
        payload["metadata_request"] = {method: dict(getattr(request, method).requests)
                                       for method in model._ROUTED_METHODS}
    if hasattr(model, "flat_layers"):   # a network: which names dlcore chose
        from dlcore.functional import automatic_names
        payload["automatic_names"] = automatic_names(model)
    return rebuild_from_state, (type(model), copy.deepcopy(payload))


def rebuild_from_state(cls, payload):
    """The model that :func:`reduce_through_state` took apart: ``cls.from_config(config)``,
    then ``set_state(state)``, then its history and training record."""
    params = payload.get("params")
    if payload["state"] is None and issubclass(cls, ParamsMixin):
        # an unfitted estimator: only fit checks its values
        model = cls(**(params if params is not None else payload["config"]))
    else:
        model = cls.from_config(payload["config"])
    if payload["state"] is not None:
        model.set_state(_writable_arrays(payload["state"]))
        if params is not None:
            # the values as given (verbose=1, hidden=(4, 3)), where the config, a file's,
            # holds them in JSON's types (True, [4, 3]); the same values: no set after fit
            model.set_params(**params)
            model.__dict__.pop("_set_after_fit", None)
    if payload["history"] is not None:
        model.history = payload["history"]
    if payload["training_record"] is not None:
        model.training_record_ = payload["training_record"]
    if payload.get("feature_names_in") is not None:
        model.feature_names_in_ = payload["feature_names_in"]
    if payload.get("output_config") is not None:
        model._sklearn_output_config = payload["output_config"]
    if payload.get("metadata_request") is not None:
        model._metadata_request = model.get_metadata_routing()
        for method, requests in payload["metadata_request"].items():
            for param, alias in requests.items():
                getattr(model._metadata_request, method).add_request(param=param, alias=alias)
    if payload.get("automatic_names") is not None:
        from dlcore.functional import keep_automatic_names
        keep_automatic_names(None, model, payload["automatic_names"])
    return model


def _writable_arrays(value):
    """``value`` (a state: dicts and lists of arrays and plain values) with every read-only
    array replaced by a writable copy. ``joblib.load(path, mmap_mode="r")``, and joblib
    handing a worker process a model whose arrays are larger than its ``max_nbytes``, give
    read-only memory maps, and training updates the parameters and momenta in place: the
    compiled kernels refused them or wrote into read-only pages (a segmentation fault)."""
    if isinstance(value, np.ndarray):
        return value if value.flags.writeable else np.array(value)
    if isinstance(value, dict):
        return {key: _writable_arrays(item) for key, item in value.items()}
    if type(value) in (list, tuple):
        return type(value)(_writable_arrays(item) for item in value)
    return value


def check_per_layer(model, names, n_layers, what):
    """Each option in ``names`` of a stack of ``n_layers`` models (a DBN's RBMs, a stacked
    autoencoder's layers) is one value for all or a list of exactly one value per layer
    (``what`` names them in the message, e.g. "RBMs")."""
    for name in names:
        value = getattr(model, name)
        if isinstance(value, (list, tuple)) and len(value) != n_layers:
            raise ValueError(f"{name} lists {count(len(value), 'value')} for {n_layers} {what} "
                             f"({model._sizes_given()})")


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
