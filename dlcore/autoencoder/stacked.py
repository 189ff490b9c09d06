"""``StackedAutoencoder``: autoencoders trained greedily, layer by layer, then a network.

Lecture "Supervised learning", slide "Deep Learning is BIG": of its learning protocols,
"Layer-wise unsupervised + supervised backprop" ("Train each layer in sequence", "Backprop
through the whole system"), where the protocol before it trains each layer "using regularized
auto-encoders or RBMs"; and lecture "Deep Neural Networks" (the "Deep net, auto-associator
pre-training" row of Bengio et al. 2007). ``hidden=[500, 500]`` fitted on 784 pixels stacks
two autoencoders, 784-500 and 500-500: the first trains on the data x (corrupting its input,
reconstructing the clean x); then, its weights fixed, the second trains on the first's clean
codes h_1 = s(x W_1 + b_1) (Vincent et al. 2008: "the corruption is only used for the initial
training of each layer; once the mapping f is learned, it is used on uncorrupted inputs"); and
so on. Afterwards :meth:`to_network` stacks the encoders as sigmoid ``Dense`` layers under a
softmax, ready for supervised fine-tuning, as :meth:`dlcore.DBN.to_network` does with RBMs.

The codes of sigmoid units lie in (0, 1), and the next autoencoder reconstructs them as it
would data in [0, 1]: a sigmoid decoder and the cross-entropy, the defaults. The codes of tanh,
relu or linear units do not, so an autoencoder over them defaults to the squared error through
a linear decoder, as Vincent et al. (2010, "Stacked denoising autoencoders") reconstruct
real-valued inputs (an affine decoder and the squared error; the sigmoid and the
cross-entropy for inputs in [0, 1]); a sigmoid decoder chosen over them is refused before any
layer trains.
"""
import contextlib
import json

import numpy as np

from dlcore.backend import check_backend_name, rng
from dlcore.errors import TrainingDiverged
from dlcore.io import register_model
from dlcore.io.hdf5 import json_text
from dlcore.layer_stack import LayerStack, fitting
from dlcore.params import (
    ParamsMixin,
    PicklesThroughState,
    SavesToFile,
    TransformerOutput,
    check_per_layer,
    inner_layer,
    per_layer_options,
    refuse_fit_arguments,
    with_verbose_flag,
)
from dlcore.records import record_fit
from dlcore.validation import check_estimator_verbose, check_matrix, check_width
from dlcore.wording import count

from . import model
from .estimator import Autoencoder

#: What the codes of each kind of hidden unit (other than the sigmoid's) hold.
CODE_RANGES = {"tanh": "values in (-1, 1)", "relu": "values in [0, inf)",
               "linear": "any real values"}
#: Options that may be one value for every autoencoder or a list with one value per layer.
PER_LAYER_OPTIONS = ("epochs", "learning_rate", "batch_size", "momentum", "corruption",
                     "corruption_kind", "sparsity_target", "sparsity_cost", "tied_weights",
                     "activation")


@register_model
class StackedAutoencoder(LayerStack, PicklesThroughState, SavesToFile, TransformerOutput,
                         ParamsMixin):
    """Denoising autoencoders stacked and trained greedily (module docstring).

    Parameters
    ----------
    hidden : list of int, int, or None
        [n_hidden_1, ..., n_hidden_top], the codes' sizes: at least one (one number is one
        layer). The bottom autoencoder's visible units are as many as the columns of the ``X``
        that ``fit`` is given (as scikit-learn's ``MLPClassifier(hidden_layer_sizes=...)``
        takes its input width). None (the default) with no ``layers``: [500, 500].
    layers : list of int, or None
        The older form, [n_visible, n_hidden_1, ..., n_hidden_top] (at least two sizes): the
        same codes, and ``fit`` refuses data not ``layers[0]`` wide. Kept so that the code,
        model files and commands that give it keep working; give ``hidden`` or ``layers``, not
        both (:mod:`dlcore.layer_stack`).
    epochs, learning_rate, batch_size, momentum, corruption, corruption_kind, sparsity_target,
    sparsity_cost, tied_weights, activation : value, list of values (one per autoencoder), or None
        The autoencoders' hyperparameters (see :class:`dlcore.Autoencoder`); None leaves each
        its own default (a ``sparsity_target`` alone weighs its penalty by
        ``dlcore.autoencoder.estimator.DEFAULT_SPARSITY_COST``, as for one autoencoder).
    autoencoder : dict, list of dicts, or None
        Any further Autoencoder arguments, for all of them or one dict per layer (they override
        the options above), e.g. ``{"loss": "mse", "decoder_activation": "linear"}`` for
        real-valued data in the first layer only: ``[{"loss": "mse", ...}, {}]``. Above a
        layer of tanh, relu or linear units these two default to ``"mse"`` and ``"linear"``
        (module docstring).
    seed : int or None
        Every autoencoder gets its own key derived from it (``dlcore.backend.rng.layer_seed``).
        None draws one from the operating system at ``fit``, kept in ``seed_``.
    backend : {"auto", "cpu", "cuda", "reference"}
    verbose : bool or int >= 0 (scikit-learn's level: any level above 0 is True)

    Attributes
    ----------
    autoencoders_ : list of Autoencoder, bottom first
    seed_ : int, the seed actually used (``seed=model.seed_`` trains the same stack again)
    n_features_in_ : int, the visible units of the bottom autoencoder (the width of ``X``)
    layers_ : list of int, [n_features_in_, n_hidden_1, ..., n_hidden_top]
    history : dict of per-epoch lists ``ae<k>_loss``, ``ae<k>_reconstruction_error``,
        ``ae<k>_valid_loss``, ``ae<k>_seconds`` of autoencoder k (1 = the bottom one)

    Notes
    -----
    ``model.save(path)`` writes the model to dlcore's HDF5 file, atomically, as
    ``dlcore.save(model, path)`` does; ``dlcore.load(path)`` reads it back.
    """

    layers_attribute = "autoencoders_"
    history_prefix = "ae"
    layer_noun = "layer"
    layer_options_parameter = "autoencoder"
    resume_hint = "resume(X)"
    bottom_noun = "first autoencoder"

    # ``hidden`` comes last: code that gives the older ``layers`` by position keeps working
    def __init__(self, layers=None, epochs=10, learning_rate=None, batch_size=None,
                 momentum=None, corruption=None, corruption_kind=None, sparsity_target=None,
                 sparsity_cost=None, tied_weights=None, activation=None, autoencoder=None,
                 seed=0, backend="auto", verbose=False, hidden=None):
        self._init_params(locals())   # checked in fit

    # -- hyperparameters ----------------------------------------------------------------
    def _check_params(self, new_training=False):
        """Refuse a bad option in one line, each autoencoder's as its own ``_check_params``
        does (``new_training``: as a fresh ``fit`` checks them)."""
        self._check_sizes()
        n_layers = len(self._hidden_sizes())
        check_per_layer(self, PER_LAYER_OPTIONS, n_layers, "autoencoders")
        extra = self.autoencoder
        if isinstance(extra, (list, tuple)):
            if len(extra) != n_layers or not all(isinstance(d, dict) or d is None
                                                 for d in extra):
                raise ValueError(f"autoencoder must be one dict, or a list of "
                                 f"{count(n_layers, 'dict')} (one per layer), got {extra!r}")
        elif extra is not None and not isinstance(extra, dict):
            raise ValueError(f"autoencoder must be a dict of Autoencoder arguments or a list of "
                             f"them, got {extra!r}")
        check_backend_name(self.backend)
        if self.seed is not None:
            rng.check_seed(self.seed)
        check_estimator_verbose(self.verbose)
        self._build_autoencoders(rng.check_seed(self.seed if self.seed is not None else 0),
                                 new_training)

    def _layer_options(self, index, seed, below=None):
        """Constructor arguments of autoencoder ``index``: its size, its own key, the stack's
        options, the reconstruction its input needs, then ``autoencoder`` on top. ``below``:
        the autoencoder under it, whose codes are its input; codes of other units than the
        sigmoid's (tanh, relu, linear) are not in [0, 1], so their default reconstruction is
        the squared error through a linear decoder (module docstring)."""
        options = {"n_hidden": self._hidden_sizes()[index], "seed": rng.layer_seed(seed, index),
                   "backend": self.backend, "verbose": self.verbose}
        options.update(per_layer_options(self, index, PER_LAYER_OPTIONS))
        extra = (self.autoencoder[index] if isinstance(self.autoencoder, (list, tuple))
                 else self.autoencoder) or {}
        if below is not None and below.activation != "sigmoid":
            # a cross-entropy asked for keeps its own decoder, for the refusal to name the codes
            cross_entropy = extra.get("loss") == "cross_entropy"
            options.update(loss="mse",
                           decoder_activation="sigmoid" if cross_entropy else "linear")
        options.update(extra)
        return options

    def _layer_settings(self, index):
        below = self.autoencoders_[index - 1] if index else None
        return self._layer_options(index, 0, below)   # (the seeds are not compared)

    def _build_autoencoders(self, seed, new_training=False):
        """The autoencoders, bottom first, each checked (its own ``_check_params``, with
        ``new_training`` for a fresh ``fit``), and its reconstruction against the codes of the
        one below: a sigmoid decoder, whose reconstructions lie in (0, 1), over the codes of
        tanh, relu or linear units is refused before any layer trains."""
        autoencoders = []
        below = None
        for index in range(len(self._hidden_sizes())):
            try:
                autoencoder = inner_layer(Autoencoder(**self._layer_options(index, seed, below)))
                autoencoder._check_params(new_training)
                if below is not None and below.activation != "sigmoid" \
                        and autoencoder.decoder_activation != "linear":
                    raise ValueError(
                        f"decoder_activation={autoencoder.decoder_activation!r} reconstructs "
                        f"values in (0, 1), but it trains on the codes of autoencoder {index}, "
                        f"whose activation={below.activation!r} units give "
                        f"{CODE_RANGES[below.activation]}: leave its loss and "
                        f"decoder_activation to their defaults over such codes (loss='mse', "
                        f"decoder_activation='linear'), or give autoencoder {index} "
                        f"activation='sigmoid'")
            except (TypeError, ValueError) as error:
                raise ValueError(f"autoencoder {index + 1} of the stack: {error}") from None
            autoencoders.append(autoencoder)
            below = autoencoder
        if new_training:
            self._check_layers_follow_the_stack(autoencoders)
        return autoencoders

    # -- greedy training ----------------------------------------------------------------
    def fit(self, X, y=None, X_valid=None, progress=None, on_epoch_end=None, comm=None,
            **unexpected):
        """Greedy layer-wise training: autoencoder k on the clean codes of autoencoders
        1 .. k-1.

        Parameters
        ----------
        X : (n, n_visible) array (in [0, 1] for a sigmoid decoder; ``layers[0]`` columns when
            ``layers`` is given)
        y : ignored
        X_valid : held-out rows, passed up the stack, for each layer's ``valid_loss``
        progress : callable, optional
            ``progress(layer, n_layers, epoch, epochs, batches_done, n_batches, loss)``.
        on_epoch_end : callable, optional
            ``on_epoch_end(self)`` after every finished epoch of any layer (what a checkpoint
            saves; :meth:`resume` continues from it).
        comm : dlcore.distributed.Communicator or an mpi4py communicator, optional
            Train each autoencoder data-parallel over its ranks
            (:mod:`dlcore.distributed.autoencoder`); the codes passed up are computed alike on
            every rank. Fine-tuning is the network's (``to_network``, then ``fit`` with
            ``comm``).

        Returns
        -------
        self

        Notes
        -----
        Interrupted (Ctrl-C, a notebook's Interrupt button: ``KeyboardInterrupt``), the layer
        in training stays at its last finished epoch and the stack refuses ``transform`` in
        one line until :meth:`resume` has trained the rest; it saves as it is (a checkpoint).
        """
        refuse_fit_arguments(self, "fit", unexpected)
        self._check_params(new_training=True)
        given = X
        X = self._check_rows(X, "X", fitting=True)
        seed = rng.check_seed(self.seed)
        autoencoders = self._build_autoencoders(seed)
        # the bottom autoencoder's check of the values (in [0, 1] for a sigmoid decoder),
        # before anything is replaced: refused data leave a fitted stack as it was
        autoencoders[0]._check_input(X, "X")
        if X_valid is not None:   # likewise: the bottom autoencoder's fit refused it too late
            X_valid = check_matrix(X_valid, "X_valid", type(self).__name__)
            check_width(X_valid, "X_valid", type(self).__name__, X.shape[1])
            autoencoders[0]._check_input(X_valid, "X_valid")
        self._note_feature_names(given, reset=True)
        self.seed_, self.autoencoders_ = seed, autoencoders
        self.history = {}
        self.n_features_in_ = X.shape[1]
        self.layers_ = [X.shape[1], *self._hidden_sizes()]
        record_fit(self, X, n_valid=None if X_valid is None else len(X_valid))
        return self._train(X, X_valid, progress, on_epoch_end, comm)

    def resume(self, X, y=None, X_valid=None, progress=None, on_epoch_end=None, comm=None,
               **unexpected):
        """Finish a training an interruption stopped: the layers not trained yet and the
        epochs missing from a partly trained one. With the same data, a stack saved by an
        interrupted fit, loaded and resumed ends bit for bit where the uninterrupted fit ends
        (on the same backend); ``comm`` as for :meth:`fit`. Returns self."""
        refuse_fit_arguments(self, "resume", unexpected)
        self._check_started()
        self._check_params()
        self._check_fitted_sizes("resume")
        self._check_resumed_settings()
        self._note_feature_names(X, reset=False)
        return self._train(self._check_rows(X, "X"), X_valid, progress, on_epoch_end, comm)

    def partial_fit(self, X, y=None, **unexpected):
        """One pass of greedy training over the batch ``X``, layer by layer, continuing from
        the current autoencoders (the first call builds them, as :meth:`fit` does):
        autoencoder 1 trains one epoch on ``X`` (:meth:`dlcore.Autoencoder.partial_fit`),
        then autoencoder 2 one epoch on the clean codes of the autoencoder 1 just updated,
        and so on. For data that comes in parts (a stream, more than memory holds), as
        scikit-learn's ``partial_fit``.

        What is sound, after lecture "Deep Neural Networks" (greedy layer-wise training): a
        layer trains on the codes of the layers below *fixed*. Within a pass that holds (each
        layer sees the codes of the layers as updated before it), but over several passes the
        upper layers learn from codes that keep changing: the lecture's scheme is :meth:`fit`
        (one layer to the end of its epochs before the next). Both agree where both are one
        pass: a first ``partial_fit(X)`` is ``fit(X)`` with ``epochs=1``, and k passes of a
        one-layer stack are ``epochs=k`` (bit for bit on cpu).

        Parameters
        ----------
        X : (n, n_visible) array, the batch (the width of the first call's ``X`` after it)
        y : ignored

        Returns
        -------
        self. After each call every autoencoder counts as trained (its ``epochs`` is the
        passes it has had): the stack transforms, saves and loads as a fitted one. A call
        that ends in an exception (Ctrl-C, a diverged layer) leaves the stack as it found it:
        run again on the same batch, it ends as the uninterrupted call.
        """
        refuse_fit_arguments(self, "partial_fit", unexpected)
        with self._whole_pass_or_none():   # the whole pass, or none of it
            first = not hasattr(self, "autoencoders_")
            if not first:
                self._check_fitted()   # an interrupted fit: finish it with resume first
            self._check_params(new_training=first)
            if not first:
                self._check_fitted_sizes("partial_fit")
                self._take_new_settings(self._build_autoencoders(self.seed_))
            self._note_feature_names(X, reset=first)
            X = self._check_rows(X, "X", fitting=first)
            if first:
                self.seed_ = rng.check_seed(self.seed)
                self.autoencoders_ = self._build_autoencoders(self.seed_, new_training=True)
                self.history = {}
                self.n_features_in_ = X.shape[1]
                self.layers_ = [X.shape[1], *self._hidden_sizes()]
                record_fit(self, X, partial=True)
            features = X
            for index, autoencoder in enumerate(self.autoencoders_):
                if hasattr(autoencoder, "W"):
                    self._restore_layer_history(index, autoencoder)
                self._announce_layer(index)
                try:
                    with self._training_layer(index, autoencoder):
                        autoencoder.partial_fit(features)
                finally:
                    if hasattr(autoencoder, "W"):   # trained: transform and save take it
                        autoencoder.epochs = max(autoencoder.epochs_done_, 1)
                if index + 1 < len(self.autoencoders_):
                    features = autoencoder.transform(features)
            return self

    @contextlib.contextmanager
    def _training_layer(self, index, autoencoder):
        """Train the stack's autoencoder ``index`` in the block: its errors name it in the
        stack, and what it trained is recorded however the block ends (a Ctrl-C included)."""
        try:
            yield
        except TrainingDiverged as error:
            raise error.located(f"autoencoder {index + 1} of the stack: ") from None
        except ValueError as error:
            raise ValueError(f"autoencoder {index + 1} of the stack: {error}") from None
        finally:
            if hasattr(autoencoder, "W"):
                self._record_layer(index, autoencoder)

    def _check_rows(self, X, name, fitting=False):
        """``X`` 2-D, of any width ``layers`` allows when ``fitting``, else of the fitted
        width; one line naming the stack otherwise."""
        X = check_matrix(X, name, type(self).__name__)
        if fitting:
            self._check_fit_width(X, name)
        else:
            self._check_fitted_width(X, name)
        return X

    def _train(self, X, X_valid, progress, on_epoch_end, comm=None):
        with fitting(self):
            return self._train_layers(X, X_valid, progress, on_epoch_end, comm)

    def _train_layers(self, X, X_valid, progress, on_epoch_end, comm=None):
        features, valid = X, X_valid
        for index, autoencoder in enumerate(self.autoencoders_):
            if not self._layer_trained(index):
                report = None if progress is None else (
                    lambda *arguments, index=index: progress(index + 1, len(self.autoencoders_),
                                                             *arguments))

                def layer_epoch_end(trained, index=index):
                    self._record_layer(index, trained)
                    if on_epoch_end is not None:
                        on_epoch_end(self)
                self._announce_layer(index)
                with self._training_layer(index, autoencoder):
                    if hasattr(autoencoder, "W"):
                        self._restore_layer_history(index, autoencoder)
                        autoencoder.resume(features, X_valid=valid, progress=report,
                                           on_epoch_end=layer_epoch_end, comm=comm)
                    else:
                        autoencoder.fit(features, X_valid=valid, progress=report,
                                        on_epoch_end=layer_epoch_end, comm=comm)
            if index + 1 < len(self.autoencoders_):
                features = autoencoder.transform(features)
                if valid is not None:
                    valid = autoencoder.transform(valid)
        return self

    # -- using the stack ----------------------------------------------------------------
    def transform(self, X):
        """The top code: the clean codes passed up through every encoder,
        (n, n_features_in_) -> (n, layers_[-1]) float32 (a pandas or polars table after
        :meth:`set_output`)."""
        return self._wrap_output(X, self._encode(X))

    def fit_transform(self, X, y=None, **fit_params):
        """``fit(X, **fit_params)`` then ``transform(X)`` (scikit-learn's TransformerMixin)."""
        return self.fit(X, **fit_params).transform(X)

    def _encode(self, X):
        """The top code of ``X`` as a NumPy array, once fitted and the names checked."""
        self._check_fitted()
        self._note_feature_names(X, reset=False)
        features = self._check_rows(X, "X")
        for autoencoder in self.autoencoders_:
            features = autoencoder.transform(features)
        return features

    def decode(self, codes):
        """Top codes back to the data's space through every decoder, the top one first:
        r = s'_1(... s'_K(h W'_K + c_K) ... W'_1 + c_1), (n, layers_[-1]) -> (n, layers_[0])
        float32 (the deep autoencoder's decoder: each autoencoder's :meth:`Autoencoder.decode`
        in reverse order)."""
        self._check_fitted()
        for autoencoder in reversed(self.autoencoders_):
            codes = autoencoder.decode(codes)
        return codes

    def inverse_transform(self, X):
        """:meth:`decode` under scikit-learn's name (as ``PCA.inverse_transform``)."""
        return self.decode(X)

    def reconstruct(self, X):
        """The deep autoencoder's reconstruction of every clean row of ``X``: up through every
        encoder, then down through every decoder, ``decode(transform(X))``,
        (n, n_features_in_) float32."""
        return self.decode(self._encode(X))

    def reconstruction_loss(self, X):
        """L(x, r) of every clean row of ``X`` and its :meth:`reconstruct` r, with the bottom
        autoencoder's loss (the data's: the cross-entropy or the squared error, summed over
        the visible units, as :meth:`Autoencoder.reconstruction_loss`), (n,) float64."""
        r = self.reconstruct(X)
        bottom = self.autoencoders_[0]
        X = bottom._check_input(X, "X", fitted_width=True, held_out=True)
        return model.reconstruction_loss(X.astype(np.float64), r.astype(np.float64),
                                         bottom.loss)

    def score(self, X, y=None):
        """Minus the mean :meth:`reconstruction_loss` of the rows of ``X`` (higher is better),
        as :meth:`Autoencoder.score`: what ``GridSearchCV`` and ``cross_val_score`` choose the
        stack's hyperparameters by without a ``scoring=``. ``y`` is ignored."""
        return -float(np.mean(self.reconstruction_loss(X)))

    def to_network(self, n_classes=10, activation=None, dropout=0.0, input_dropout=0.0,
                   seed=None, backend=None):
        """A :class:`dlcore.Sequential` initialised from the encoders, ready for fine-tuning:
        one ``Dense`` layer per autoencoder (kernel W, bias b, named ``ae1``, ``ae2``...), so
        that before training its hidden layers compute :meth:`transform`; a softmax layer on
        top (:func:`dlcore.models.stacked_network`).

        Parameters
        ----------
        n_classes : int
        activation : activation of the hidden layers (default: each autoencoder's own)
        dropout, input_dropout : float in [0, 1), as for :meth:`dlcore.DBN.to_network`
        seed : int, the network's seed (default: the stack's)
        backend : the network's backend (default: the stack's)
        """
        from dlcore.models import stacked_network
        self._check_fitted()
        activations = activation or [autoencoder.activation for autoencoder in
                                     self.autoencoders_]
        return stacked_network([(ae.W, ae.hidden_bias) for ae in self.autoencoders_],
                               n_classes, activation=activations, dropout=dropout,
                               input_dropout=input_dropout, prefix="ae",
                               name="stacked_autoencoder",
                               backend=self.backend if backend is None else backend,
                               seed=self.seed_ if seed is None else seed)

    # -- files --------------------------------------------------------------------------
    def get_config(self):
        """The constructor arguments, JSON-serialisable (tuples as lists)."""
        config = with_verbose_flag(self.get_params())
        # one number is one hidden layer, an array of sizes is its list: the file holds the
        # list of Python ints they stand for
        config["hidden"], config["layers"] = self._listed("hidden"), self._listed("layers")
        for name, value in config.items():
            if isinstance(value, tuple):
                config[name] = list(value)
        return config

    @classmethod
    def from_config(cls, config):
        stack = cls(**config)
        stack._check_params()
        return stack

    def get_state(self):
        """``autoencoders/ae_<i>``: each autoencoder's own state with its class and
        hyperparameters as attributes; ``training``: the seed, and ``layers_started`` when an
        interrupted training has not reached every layer (only those are stored)."""
        if not hasattr(self, "autoencoders_"):
            self._check_fitted()
        started = [ae for ae in self.autoencoders_ if hasattr(ae, "W")]
        if not started:
            raise RuntimeError("this StackedAutoencoder has not finished an epoch yet: there "
                               "is nothing to save")
        groups = {}
        for index, autoencoder in enumerate(started):
            group = dict(autoencoder.get_state())
            group["model_class"] = type(autoencoder).__name__
            what = f"{type(autoencoder).__name__}.get_config()"
            group["hyperparameters"] = json_text(autoencoder.get_config(), what)
            groups[f"ae_{index}"] = group
        state = {"autoencoders": groups, "training": {"seed": str(self.seed_)}}
        if len(started) < len(self.autoencoders_):
            state["training"]["layers_started"] = len(started)
        return state

    def set_state(self, state):
        """Rebuild every autoencoder from its group and check its size against ``layers``, or,
        with ``hidden``, against it and the width of the bottom autoencoder; assign only when
        all of it is valid."""
        n_layers = len(self._hidden_sizes())
        sizes = None
        training = state["training"]
        n_started = int(training.get("layers_started", n_layers))
        if not 1 <= n_started <= n_layers:
            raise ValueError(f"training/layers_started = {n_started} is not in [1, {n_layers}]")
        seed = int(training["seed"])
        autoencoders = []
        for index in range(n_started):
            group = dict(state["autoencoders"][f"ae_{index}"])
            class_name = group.pop("model_class")
            if class_name != "Autoencoder":
                raise ValueError(f"autoencoders/ae_{index} has model_class {class_name!r}; "
                                 "expected 'Autoencoder'")
            autoencoder = inner_layer(
                Autoencoder.from_config(json.loads(group.pop("hyperparameters"))))
            autoencoder.set_state(group)
            if sizes is None:   # the width: layers[0], or the bottom autoencoder's own
                sizes = [int(self.layers[0]) if self.layers is not None
                         else autoencoder.W.shape[0], *self._hidden_sizes()]
            expected = (sizes[index], sizes[index + 1])
            if autoencoder.W.shape != expected:
                given = (f"layers={self._listed('layers')}" if self.layers is not None
                         else f"hidden={sizes[1:]}")
                raise ValueError(f"dataset 'autoencoders/ae_{index}/W' has shape "
                                 f"{autoencoder.W.shape}; expected {expected} from {given}")
            autoencoders.append(autoencoder)
        # layers an interrupted training had not reached: built as fit builds them, with the
        # defaults the run started with
        autoencoders += self._started_defaults(self._build_autoencoders(seed), autoencoders,
                                               seed)[n_started:]
        self.seed_ = seed
        self.autoencoders_ = autoencoders
        self.n_features_in_, self.layers_ = sizes[0], sizes
        if not hasattr(self, "history"):
            self.history = {}

    def _started_defaults(self, built, started, seed):
        """``built`` (every layer as the stack's settings make it today) with each setting that
        neither the stack nor ``autoencoder=`` gives, for the layer nor for the bottom one, set
        as the bottom one (``started[0]``, read from the file) recorded it: the Autoencoder
        default the run started with. A default changed since (the learning rate: 0.1 until
        2026-12-07, 0.01 since) would otherwise train the layers an interruption had not
        reached yet at the new one, where an uninterrupted run trained them all at the old."""
        recorded = started[0].get_params(deep=False)
        given_bottom = self._layer_options(0, seed)
        for index in range(len(started), len(built)):
            given = self._layer_options(index, seed, built[index - 1])
            own = built[index].get_params(deep=False)
            inherited = {name: value for name, value in recorded.items()
                         if name not in given and name not in given_bottom
                         and name not in ("backend", "verbose")
                         and own.get(name) != value}
            if inherited:
                built[index].set_params(**inherited)
        return built

    def __sklearn_tags__(self):
        """Float32 codes; data in [0, 1] (non-negative) when the bottom autoencoder
        reconstructs it through a sigmoid decoder (the default), as :class:`Autoencoder`'s."""
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]   # computes and returns float32
        try:
            bottom = Autoencoder(**self._layer_options(0, 0))
        except (TypeError, ValueError):   # fit refuses these options, in its own words
            bottom = Autoencoder()
        tags.input_tags.positive_only = bottom.decoder_activation == "sigmoid"
        return tags

    def _has_state(self):
        return any(hasattr(ae, "W") for ae in getattr(self, "autoencoders_", ()))
