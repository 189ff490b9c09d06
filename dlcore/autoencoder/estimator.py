"""``Autoencoder``: a denoising (and optionally sparse) autoencoder as a scikit-learn estimator.

A thin shell, as the RBMs' (:mod:`dlcore.rbm.estimator`), over the maths
(:mod:`dlcore.autoencoder.model`), the corruption (:mod:`dlcore.autoencoder.corruption`) and
the trainer (:mod:`dlcore.autoencoder.trainer`): ``fit`` returns self, ``partial_fit`` trains one
more epoch, ``transform`` is the code h = s(x W + b) of the clean input, ``get_params`` /
``set_params`` come from the constructor. ``__init__`` and ``set_params`` only store the
hyperparameters and ``fit`` checks them; what ``fit`` learns lives under names ending in ``_``
(``W_``, ``hidden_bias_``, ``history_``, ``n_features_in_``...) with the plain names as
aliases; a model used before ``fit`` raises :class:`dlcore.NotFittedError`.

Between calls the parameters and the training state (the momentum buffers, the Philox
position) are NumPy arrays on the estimator: ``dlcore.save`` then ``dlcore.load`` and
:meth:`Autoencoder.resume` continue a training bit for bit on the same backend, and ``pickle``
carries the model through the same state (:class:`dlcore.params.PicklesThroughState`).
"""
import sys

import numpy as np

from dlcore.backend import check_backend_name, get_backend, rng
from dlcore.distributed.communicator import periodic
from dlcore.epochs import EpochLoop
from dlcore.errors import NotFittedError
from dlcore.io import register_model
from dlcore.layers.initializers import initial_values
from dlcore.layers.reference import activation_backward
from dlcore.lazy_rows import LazyRows
from dlcore.params import (
    FittedAttribute,
    ParamsMixin,
    PicklesThroughState,
    SavesToFile,
    TransformerOutput,
    refuse_fit_arguments,
    sizes_call_wording,
    with_verbose_flag,
)
from dlcore.records import record_fit
from dlcore.validation import (
    check_data,
    check_estimator_verbose,
    check_float,
    check_int,
    check_matrix,
    check_width,
)
from dlcore.wording import duration

from . import model
from .corruption import CORRUPTION_KINDS
from .ops import ops_for
from .trainer import AESettings, AutoencoderTrainer, parameter_names

HISTORY_KEYS = ("loss", "reconstruction_error", "valid_loss", "seconds")
COUNTERS = ("n_updates", "epochs_done")
#: beta, the weight of the KL sparsity penalty when a ``sparsity_target`` is given without a
#: ``sparsity_cost`` (and the default of ``dlcore ae train --sparsity-cost``): one definition,
#: so that the Python API and the command line train the same sparse model. 3, the beta of
#: Ng's "Sparse autoencoder" notes: the penalty is a pull against the reconstruction loss (a
#: sum over 784 pixels here), not a constraint, and at 0.1 it barely moved the mean activation
#: (mnist-5k, 100 hidden units, 5 epochs, target 0.05: 0.22 against 0.25 without it; at 3:
#: 0.10, and 0.056 with 500 hidden units; figures at learning rate 0.1, the default then); much
#: above, the first steps, where every unit's mean is near 0.5, drove units to 0 for good at
#: that rate (at 10: 29 of 100 units dead). At the default rate 0.01 beta = 3 gives 0.12 and
#: 0.059 and kills no unit (docs/autoencoders.md, "The sparsity penalty's weight")
DEFAULT_SPARSITY_COST = 3.0
#: eps, the default learning rate (and that of ``dlcore ae train --learning-rate``): with the
#: default momentum 0.9 a step of eps / (1 - 0.9) = 0.1 per unit of gradient, the rate of
#: Vincent et al.'s denoising autoencoders (SGD without momentum). The loss is a sum over the
#: pixels, so the stable step shrinks as the images grow brighter: 0.1 (a step of 1) trained on
#: MNIST's sparse strokes but not on Fashion-MNIST's garments, whose training loss rose from the
#: third epoch (60,000 images, 100 hidden units); 0.01 lowers it on both, and reconstructs
#: better on both (docs/autoencoders.md, "The learning rate").
DEFAULT_LEARNING_RATE = 0.01
#: The largest slope of each hidden activation: the sigmoid's s(1 - s) at 0, 1 for the rest.
PEAK_SLOPES = {"sigmoid": 0.25, "tanh": 1.0, "relu": 1.0, "linear": 1.0}
#: A hidden activation is saturated where the slope of its activation function is below this
#: fraction of the function's peak slope (a sigmoid unit within about 2.5e-4 of 0 or 1, a relu
#: unit at 0): a gradient through it is (next to) nothing, and no step brings it back.
SATURATED_SLOPE = 1e-3
#: The fraction of saturated hidden activations at which a code that reconstructs no better
#: than the mean image has failed (:func:`learning_failure`). Measured on mnist-5k, 100 hidden
#: units, 2 epochs: 100 % at learning rates 1, 3 and 10 (losses 221 to 413, the mean image's
#: 206), 96 % at 0.3 (loss 163, learning), 76 % with 500 units at 0.1 (the homework's rate,
#: loss 93), 90 % with a sparsity cost of 10 at 0.1.
SATURATED_FRACTION = 0.99
#: Rows of the training data the mean image and the saturation are measured on (evenly
#: spaced): a fixed sample, so that the test costs one small forward pass, and every rank of a
#: data-parallel training decides the same.
FAILURE_SAMPLE_ROWS = 1000
#: Below this many training rows there is no test: the mean image of a few rows is close to
#: each of them (of one row, that row itself), no bar a model must clear.
FAILURE_MIN_ROWS = 100


@register_model
class Autoencoder(EpochLoop, PicklesThroughState, SavesToFile, TransformerOutput, ParamsMixin):
    """A denoising autoencoder (Vincent et al. 2008), sparse with a ``sparsity_target``.

    Lecture "Supervised learning" (the deep "sparse/denoising" autoencoder beside RBMs and
    DBNs) and lecture "Deep Neural Networks" (the "auto-associator pre-training" row of Bengio
    et al.'s table). Encoder h = s(x~ W + b), decoder r = s'(h W' + c), trained by SGD with
    momentum on the reconstruction loss of the clean x from a corrupted x~ (the equations and
    their gradient: :mod:`dlcore.autoencoder.model`).

    Parameters
    ----------
    n_hidden : int
        Units of the code h.
    tied_weights : bool
        W' = W^T (True, as in Vincent et al.) or a decoder matrix of its own (False).
    corruption : float
        The corruption level nu: the fraction of inputs masked or salted, or the standard
        deviation of the Gaussian noise; 0 trains a plain autoencoder (an auto-associator).
    corruption_kind : {"masking", "gaussian", "salt_and_pepper", "dropout"}
        q(x~ | x) (:mod:`dlcore.autoencoder.corruption`). Masking is Vincent et al.'s,
        unscaled: the encoder learns from inputs dimmer than the clean ones ``transform`` and
        ``reconstruct`` give it, and at a large level reconstructs a clean x worse than a
        corrupted one (mnist-5k, level 0.5: a squared error per pixel of 0.0183 against
        0.0162). ``"dropout"`` is masking with the kept inputs scaled by 1 / (1 - level), as
        Keras's Dropout layer trains, and reconstructs clean inputs better (0.0097); with
        masking, ``reconstruct(X * (1 - corruption))`` does the same at use (the lecture's
        dropout, weights scaled at test time).
    sparsity_target : float in (0, 1) or None
        rho, the "desired sparsity level" (lecture "Convolutional neural networks", slide
        "Sparse representations"): the mean activation each hidden unit is pulled towards by
        the KL penalty (needs sigmoid hidden units); None: no penalty.
    sparsity_cost : float >= 0 or None
        beta, the weight of that penalty; None: :data:`DEFAULT_SPARSITY_COST` (3, Ng's, as
        ``dlcore ae train``) with a ``sparsity_target``. A cost above 0 without a target is
        refused by ``fit`` (there is no penalty for it to weigh).
    activation : {"sigmoid", "tanh", "relu", "linear"}
        s, the hidden units.
    decoder_activation : {"sigmoid", "linear"}
        s', the reconstruction: sigmoid for data in [0, 1] (training data outside are
        refused, whatever the loss), linear for real-valued data.
    loss : {"cross_entropy", "mse"}
        L(x, r): the cross-entropy (data in [0, 1], sigmoid decoder) or the squared error,
        summed over the visible units, averaged over the batch.
    learning_rate, momentum : float
        eps and mu of SGD with momentum: Delta <- mu Delta + dJ/dtheta, theta -= eps Delta.
        The default eps, 0.01 (:data:`DEFAULT_LEARNING_RATE`), trains on bright images as on
        digits; the loss is a sum over the visible units, so more of them, or brighter data,
        may need a smaller one.
    batch_size, epochs : int
        Mini-batch size and passes over the data in :meth:`fit`.
    seed : int or None
        Key of the Philox generator (initial weights, batch order, corruption): the same seed
        gives the same model on every backend. None draws one, kept in ``seed_``.
    backend : {"auto", "cpu", "cuda", "reference"}
    verbose : bool or int >= 0 (scikit-learn's level: any level above 0 is True)
        One line per epoch on stderr.

    Attributes
    ----------
    W : (n_visible, n_hidden) float32, the encoder's weights (and, tied, the decoder's W^T)
    hidden_bias : (n_hidden,) float32, b
    visible_bias : (n_visible,) float32, c
    W_decoder : (n_hidden, n_visible) float32, W' (untied only)
    history : dict of per-epoch lists: ``loss`` (the cost J: reconstruction loss per sample
        plus the sparsity penalty), ``reconstruction_error`` (squared error per pixel between x
        and r), ``valid_loss`` (reconstruction loss per sample of the clean ``X_valid``; NaN
        without), ``seconds``
    seed_ : int, the seed actually used

    Notes
    -----
    ``model.save(path)`` writes the model to dlcore's HDF5 file, atomically, as
    ``dlcore.save(model, path)`` does; ``dlcore.load(path)`` reads it back.
    """

    W = FittedAttribute()
    hidden_bias = FittedAttribute()
    visible_bias = FittedAttribute()
    W_decoder = FittedAttribute()
    history = FittedAttribute()
    divergence_monitor = ("reconstruction loss", "loss")

    def __init__(self, n_hidden=500, tied_weights=True, corruption=0.3,
                 corruption_kind="masking", sparsity_target=None, sparsity_cost=None,
                 activation="sigmoid", decoder_activation="sigmoid", loss="cross_entropy",
                 learning_rate=DEFAULT_LEARNING_RATE, momentum=0.9, batch_size=20, epochs=10,
                 seed=0, backend="auto", verbose=False):
        self._init_params(locals())   # checked in fit (scikit-learn's rule)

    # -- hyperparameters ----------------------------------------------------------------
    def _check_params(self, new_training=False):
        """Refuse a bad hyperparameter in one line. ``new_training`` (``fit``, a first
        ``partial_fit``) also refuses a ``sparsity_cost`` without a ``sparsity_target``, which
        a model read from a file made before that rule may hold (the command line's default
        cost was stored with or without a target) and which it was trained without."""
        check_int(self.n_hidden, "n_hidden", minimum=1)
        if not isinstance(self.tied_weights, (bool, np.bool_)):
            raise ValueError(f"tied_weights must be True or False, got {self.tied_weights!r}")
        _check_choice(self.corruption_kind, "corruption_kind", CORRUPTION_KINDS)
        if self.corruption_kind == "gaussian":
            check_float(self.corruption, "corruption", low=0.0)
        else:
            check_float(self.corruption, "corruption", low=0.0, high=1.0, high_open=True)
        _check_choice(self.activation, "activation", model.ENCODER_ACTIVATIONS)
        _check_choice(self.decoder_activation, "decoder_activation", model.DECODER_ACTIVATIONS)
        _check_choice(self.loss, "loss", model.LOSSES)
        if self.loss == "cross_entropy" and self.decoder_activation != "sigmoid":
            raise ValueError("loss='cross_entropy' needs decoder_activation='sigmoid' (its "
                             "reconstructions must be probabilities); use loss='mse' for a "
                             "linear decoder")
        if self.sparsity_target is not None:
            check_float(self.sparsity_target, "sparsity_target", low=0.0, high=1.0,
                        low_open=True, high_open=True)
            if self.activation != "sigmoid":
                # Keras's sparse autoencoder puts an L1 penalty on relu codes
                # (activity_regularizer): name where dlcore has it
                raise ValueError(f"sparsity_target needs activation='sigmoid' (the KL penalty "
                                 f"compares mean activations in (0, 1)), got "
                                 f"activation={self.activation!r}, whose mean activation is no "
                                 f"rate in (0, 1) to compare with the target; for a sparse "
                                 f"code keep sigmoid units, or build the autoencoder as a "
                                 f"Sequential with Dense(..., activation="
                                 f"{self.activation!r}, activity_regularizer=L1(...)) as its "
                                 f"code layer (Keras's L1 penalty on the code)")
        if self.sparsity_cost is not None:
            check_float(self.sparsity_cost, "sparsity_cost", low=0.0)
            if new_training and self.sparsity_target is None and self.sparsity_cost > 0:
                raise ValueError(f"sparsity_cost={self.sparsity_cost!r} weighs the KL sparsity "
                                 f"penalty, which needs a sparsity_target (the mean activation "
                                 f"it pulls each hidden unit towards, e.g. sparsity_target=0.05);"
                                 f" without one nothing is penalised")
        check_float(self.learning_rate, "learning_rate", low=0.0, low_open=True)
        check_float(self.momentum, "momentum", low=0.0, high=1.0, high_open=True)
        check_int(self.batch_size, "batch_size", minimum=1)
        check_int(self.epochs, "epochs", minimum=0)
        check_backend_name(self.backend)
        if self.seed is not None:
            rng.check_seed(self.seed)
        check_estimator_verbose(self.verbose)

    def _settings(self):
        return AESettings(
            tied=bool(self.tied_weights), activation=self.activation,
            decoder_activation=self.decoder_activation, loss=self.loss,
            corruption=float(self.corruption), corruption_kind=self.corruption_kind,
            sparsity_target=None if self.sparsity_target is None else float(self.sparsity_target),
            sparsity_cost=self._sparsity_weight(), learning_rate=float(self.learning_rate),
            momentum=float(self.momentum), batch_size=int(self.batch_size), seed=self.seed_)

    def _sparsity_weight(self):
        """beta: ``sparsity_cost``, or :data:`DEFAULT_SPARSITY_COST` when only a target is
        given (0 without a target: no penalty)."""
        if self.sparsity_cost is None:
            return DEFAULT_SPARSITY_COST if self.sparsity_target is not None else 0.0
        return float(self.sparsity_cost)

    def _check_matrix(self, X, name):
        """``X`` as a 2-D NumPy array, in scikit-learn's words otherwise
        (:func:`dlcore.validation.check_matrix`); :meth:`_check_input` checks the values."""
        return check_matrix(X, name, type(self).__name__)

    def _check_input(self, X, name, fitted_width=False, held_out=False, width=None):
        """``X`` as float32 (n, n_visible) rows (of the fitted width with ``fitted_width``, or
        of ``width`` columns: the training rows' before the model is fitted to them): in
        [0, 1] for a sigmoid decoder (its
        reconstructions lie in (0, 1), so it could never reach the rest, whatever the loss),
        unless ``held_out``: rows a fitted model is only applied to, which may lie a little
        outside (the encoder s(x W + b) takes any real x, and a scaler fitted on the training
        rows maps others beyond [0, 1]), but for unscaled 8-bit pixels
        (:func:`dlcore.validation.check_data`)."""
        X = self._check_matrix(X, name)
        width = self.W.shape[0] if fitted_width else width
        check_width(X, name, type(self).__name__, width)
        if self.loss == "cross_entropy":
            reason = ("for the cross-entropy loss (real-valued data: loss='mse', "
                      "decoder_activation='linear')")
        else:
            reason = ("for the sigmoid decoder, whose reconstructions lie in (0, 1) "
                      "(real-valued data: decoder_activation='linear')")
        return check_data(X, name, n_columns=width,
                          unit_interval=self.decoder_activation == "sigmoid",
                          columns_meaning="visible units", unit_interval_reason=reason,
                          held_out=held_out)

    # -- training -----------------------------------------------------------------------
    def fit(self, X, y=None, X_valid=None, progress=None, on_epoch_end=None, comm=None,
            sync_every=1, **unexpected):
        """Initialise the parameters, then train ``epochs`` passes over ``X``.

        Parameters
        ----------
        X : (n_samples, n_visible) array (in [0, 1] for a sigmoid decoder)
        y : ignored (for scikit-learn pipelines)
        X_valid : (m, n_visible) array, optional: held-out rows whose clean reconstruction
            loss is recorded every epoch (``history["valid_loss"]``)
        progress : callable, optional
            ``progress(epoch, epochs, batches_done, n_batches, running_loss)``, epochs counted
            over the model's life.
        on_epoch_end : callable, optional
            ``on_epoch_end(self)`` after every finished epoch (what a checkpoint saves).
        comm : dlcore.distributed.Communicator or an mpi4py communicator, optional
            Train data-parallel over its ranks (:mod:`dlcore.distributed.autoencoder`).
        sync_every : int >= 1, with ``comm``: local SGD steps between two all-reduces; 1 (the
            default): the exact path; K > 1: the parameters and their velocities averaged
            every K steps and at every epoch's end (:mod:`dlcore.distributed.local_sgd`).

        Returns
        -------
        self

        Notes
        -----
        Interrupted (Ctrl-C, a notebook's Interrupt button: ``KeyboardInterrupt``), the model
        stays as its last finished epoch left it (parameters, velocities, counters,
        ``history``): it transforms and saves as trained so far, :meth:`resume` trains the
        epochs still missing, and ``fit`` starts again from scratch.
        """
        refuse_fit_arguments(self, "fit", unexpected)
        comm = periodic(comm, sync_every)
        self._check_params(new_training=True)
        given, X = X, self._check_input(X, "X")
        X_valid = self._check_valid_rows(X_valid, X.shape[1], self._check_input)
        # the table's names only once nothing can refuse the fit: a refused refit (another
        # table's bad values, a bad X_valid) left a fitted model the names of the table it
        # refused, so that it refused its own columns
        self._note_feature_names(given, reset=True)
        self._initialize(X)
        record_fit(self, X, epochs=int(self.epochs),
                   n_valid=None if X_valid is None else len(X_valid))
        return self._train(X, int(self.epochs), X_valid, progress, on_epoch_end, comm)

    def partial_fit(self, X, y=None, X_valid=None, progress=None, on_epoch_end=None,
                    comm=None, sync_every=1, **unexpected):
        """One more pass over ``X`` from the current parameters and state (the first call
        initialises, as :meth:`fit` does); ``comm``, ``sync_every`` as for :meth:`fit`.
        Returns self."""
        refuse_fit_arguments(self, "partial_fit", unexpected)
        comm = periodic(comm, sync_every)
        fitted = hasattr(self, "W")
        self._check_params(new_training=not fitted)
        if fitted:
            self._note_feature_names(X, reset=False)
        given, X = X, self._check_input(X, "X", fitted_width=fitted)
        X_valid = self._check_valid_rows(X_valid, X.shape[1], self._check_input)
        if not fitted:   # a first call: as fit, nothing set before every check has passed
            self._note_feature_names(given, reset=True)
            self._initialize(X)
        self._check_fitted_sizes("partial_fit")
        return self._train(X, 1, X_valid, progress, on_epoch_end, comm)

    def resume(self, X, X_valid=None, progress=None, on_epoch_end=None, comm=None,
               sync_every=1, **unexpected):
        """Train the epochs still missing towards ``epochs`` from the current parameters and
        training state: a model saved after k epochs (or by an interrupted fit), loaded and
        resumed on the same data ends bit for bit where an uninterrupted ``fit`` ends, on the
        same backend. ``comm``, ``sync_every`` as for :meth:`fit`. Returns self."""
        refuse_fit_arguments(self, "resume", unexpected)
        comm = periodic(comm, sync_every)
        self._check_params()
        self._check_fitted()
        self._check_fitted_sizes("resume")
        self._note_feature_names(X, reset=False)
        X = self._check_input(X, "X", fitted_width=True)
        return self._train(X, max(0, int(self.epochs) - self.epochs_done_), X_valid, progress,
                           on_epoch_end, comm)

    def _initialize(self, X):
        """Glorot & Bengio (2010): W ~ U(-l, l), l = sqrt(6 / (n_visible + n_hidden)), times 4
        for sigmoid units (as Vincent et al.'s code draws it); an untied decoder draws its own
        W' from the key of ``layer_seed(seed, 1)``; biases and momenta zero."""
        self.seed_ = rng.check_seed(self.seed)
        n_visible, n_hidden = X.shape[1], int(self.n_hidden)
        gain = 4.0 if self.activation == "sigmoid" else 1.0
        self.W = gain * initial_values("glorot_uniform", (n_visible, n_hidden), n_visible,
                                       n_hidden, self.seed_)
        if not self.tied_weights:
            self.W_decoder = gain * initial_values("glorot_uniform", (n_hidden, n_visible),
                                                   n_hidden, n_visible,
                                                   rng.layer_seed(self.seed_, 1))
        self.hidden_bias = np.zeros(n_hidden, dtype=np.float32)
        self.visible_bias = np.zeros(n_visible, dtype=np.float32)
        self._training = {f"velocity_{name}": np.zeros_like(getattr(self, name))
                          for name in self._parameter_names()}
        self.n_updates_ = 0
        self.epochs_done_ = 0
        self.n_features_in_ = n_visible
        self.history = {name: [] for name in HISTORY_KEYS}
        return self

    def _train(self, X, epochs, X_valid, progress, on_epoch_end, comm=None):
        if X_valid is not None:
            X_valid = self._check_input(X_valid, "X_valid", fitted_width=True)
        backend = get_backend(self.backend)
        trainer = AutoencoderTrainer(backend, self._parameters(), self._training,
                                     self._settings(), rows=X.shape[0])
        if comm is not None:
            from dlcore.distributed.autoencoder import data_parallel
            from dlcore.distributed.fingerprint import model_fingerprint
            trainer = data_parallel(trainer, comm, X,
                                    model_fingerprint(self._parameters(), epochs))
        data = X if isinstance(X, LazyRows) else backend.asarray(X)   # lazy: read per batch
        failed = learning_failure(self, X) if epochs else None
        with backend.compute():
            self._run_epochs(trainer, data, epochs, progress, on_epoch_end,
                             lambda monitors, seconds: self._record_epoch(
                                 monitors, X_valid, seconds), learning_failure=failed)
        return self

    def _epoch_loss(self, monitors):
        return monitors["loss"]

    def _store(self, parameters, training):
        for name, value in parameters.items():
            setattr(self, name, np.array(value))
        self._training = {name: np.array(value) for name, value in training.items()}

    def _record_epoch(self, monitors, X_valid, seconds):
        valid = (np.nan if X_valid is None
                 else float(np.mean(self.reconstruction_loss(X_valid), dtype=np.float64)))
        for name, value in (("loss", monitors["loss"]),
                            ("reconstruction_error", monitors["reconstruction_error"]),
                            ("valid_loss", valid), ("seconds", seconds)):
            self.history.setdefault(name, []).append(float(value))
        if self.verbose:
            valid_text = "" if X_valid is None else f", held-out loss {valid:.4f}"
            print(f"[Autoencoder] epoch {self.epochs_done_}: loss {monitors['loss']:.4f}, "
                  f"reconstruction error {monitors['reconstruction_error']:.5f}{valid_text}, "
                  f"{duration(seconds)}", file=sys.stderr)

    def _parameter_names(self):
        return parameter_names(bool(self.tied_weights))

    def _check_fitted_sizes(self, call):
        """As :meth:`dlcore.epochs.EpochLoop._check_fitted_sizes`, and ``tied_weights``, which
        says whether the model has a decoder matrix of its own: changed after fit, the
        fitted model has not the parameters the setting names."""
        super()._check_fitted_sizes(call)
        if hasattr(self, "W"):
            fitted_tied = "W_decoder_" not in vars(self)
            if bool(self.tied_weights) != fitted_tied:
                consequence, fix = sizes_call_wording(call)
                raise ValueError(f"tied_weights={self.tied_weights} differs from the "
                                 f"{'tied' if fitted_tied else 'untied'} weights this "
                                 f"Autoencoder was fitted with, {consequence}: call fit(X) to "
                                 f"train {'untied' if fitted_tied else 'tied'} weights from the "
                                 f"start, or set_params(tied_weights={fitted_tied}) {fix}")

    def _parameters(self):
        return {name: getattr(self, name) for name in self._parameter_names()}

    # -- using a trained model ----------------------------------------------------------
    def _check_fitted(self):
        if not hasattr(self, "W"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit(X) "
                                 "first, or dlcore.load() a saved model")

    def _n_features_out(self):
        return self.W.shape[1]

    def _checked_names(self, X):
        """``X`` as a public method was given it, once fitted and its table's column names
        checked against ``feature_names_in_``."""
        self._check_fitted()
        self._note_feature_names(X, reset=False)
        return X

    def _passes(self, X, corrupted=False, step=0, decode=True):
        """The rows of ``X`` on the model's backend: ``(x~, h, r)`` as NumPy float32, x~ the
        input the encoder sees (x itself, or with ``corrupted`` its corruption from Philox
        ``STREAM_SAMPLE`` at ``step``), h its code and r (with ``decode``, else None) the
        reconstruction."""
        self._check_fitted()
        X = self._check_input(X, "X", fitted_width=True, held_out=True)
        if corrupted:
            # Philox's counter holds a word of 64 bits: -1 was an OverflowError from NumPy's
            # insides, and 1.5 drew step 1's corruption without a word
            step = check_int(step, "step", minimum=0)
            if step >= 2 ** 64:
                raise ValueError(f"step must be below 2**64 (a Philox counter word), got {step}")
        backend = get_backend(self.backend)
        ops = ops_for(backend)
        n, n_hidden = X.shape[0], self.W.shape[1]
        with backend.compute():
            data = backend.asarray(X)
            if corrupted and self.corruption > 0:
                data = backend.empty(X.shape)
                ops.corrupt(backend.asarray(X), data, self.corruption_kind, self.corruption,
                            self.seed_, step, stream=rng.STREAM_SAMPLE)
            W = backend.asarray(self.W)
            h = backend.empty((n, n_hidden))
            ops.encode(data, W, backend.asarray(self.hidden_bias), self.activation, h)
            r = self._decoder_pass(backend, ops, h, W) if decode else None
            return tuple(None if array is None else np.array(backend.to_numpy(array))
                         for array in (data, h, r))

    def _decoder_pass(self, backend, ops, h, W=None):
        """r = s'(h W' + c) on ``backend`` from codes ``h`` (n, n_hidden) there; ``W``: the
        encoder's weights there already (the tied decoder's W^T)."""
        if self.tied_weights:
            weights = backend.asarray(self.W) if W is None else W
        else:
            weights = backend.asarray(self.W_decoder)
        r = backend.empty((h.shape[0], self.W.shape[0]))
        ops.decode(h, weights, bool(self.tied_weights), backend.asarray(self.visible_bias),
                   self.decoder_activation, r)
        return r

    def transform(self, X):
        """The code h = s(x W + b) of every clean row of ``X``: (n, n_visible) -> (n, n_hidden)
        float32 (what a stacked autoencoder feeds its next layer; a pandas or polars table
        after :meth:`set_output`)."""
        return self._wrap_output(X, self._passes(self._checked_names(X), decode=False)[1])

    def fit_transform(self, X, y=None, **fit_params):
        """``fit(X)`` then ``transform(X)``."""
        return self.fit(X, **fit_params).transform(X)

    def corrupt(self, X, step=0):
        """x~ ~ q(x~ | x) of every row of ``X``, drawn from Philox (``seed_``,
        ``STREAM_SAMPLE``, ``step``): what :meth:`reconstruct` with ``corrupted=True`` and the
        same ``step`` encodes. (n, n_visible) float32."""
        return self._passes(self._checked_names(X), corrupted=True, step=step,
                            decode=False)[0]

    def reconstruct(self, X, corrupted=False, step=0):
        """r = s'(h W' + c) of every row of ``X``, from the clean x, or with ``corrupted`` from
        its corruption :meth:`corrupt` ``(X, step)`` (the denoising the model learned):
        (n, n_visible) float32."""
        return self._passes(self._checked_names(X), corrupted, step)[2]

    def decode(self, codes):
        """r = s'(h W' + c) of every row h of ``codes``: the decoder alone, (n, n_hidden) ->
        (n, n_visible) float32, so that ``decode(transform(X))`` is :meth:`reconstruct`
        ``(X)``; what a code unit alone, or a blend of two codes, draws (the Keras tutorial's
        ``decoder`` model). Any finite codes (a table's too)."""
        self._check_fitted()
        n_hidden = self.W.shape[1]
        codes = check_data(self._check_matrix(codes, "codes"), "codes", n_columns=n_hidden,
                           columns_meaning="hidden units")
        backend = get_backend(self.backend)
        with backend.compute():
            r = self._decoder_pass(backend, ops_for(backend), backend.asarray(codes))
            return np.array(backend.to_numpy(r))

    def inverse_transform(self, X):
        """Codes back to reconstructions, (n, n_hidden) -> (n, n_visible): :meth:`decode`,
        under scikit-learn's name (as ``PCA.inverse_transform``)."""
        return self.decode(X)

    def reconstruction_loss(self, X):
        """L(x, r) of every clean row of ``X`` (the loss the model trains on, without the
        corruption and the sparsity penalty), (n,) float64."""
        X = self._check_input(self._checked_names(X), "X", fitted_width=True, held_out=True)
        r = self._passes(X)[2]
        return model.reconstruction_loss(X.astype(np.float64), r.astype(np.float64), self.loss)

    def score(self, X, y=None):
        """Minus the mean :meth:`reconstruction_loss` of the rows of ``X`` (higher is better),
        a float: what ``GridSearchCV`` and ``cross_val_score`` choose the hyperparameters by
        without a ``scoring=`` (as the RBMs' pseudo-log-likelihood). Losses of different
        kinds (cross-entropy, mse) do not compare: search over one. ``y`` is ignored."""
        return -float(np.mean(self.reconstruction_loss(X)))

    # -- files and copies ---------------------------------------------------------------
    def get_config(self):
        """The constructor arguments, JSON-serialisable (for the HDF5 file)."""
        return with_verbose_flag(self.get_params())

    @classmethod
    def from_config(cls, config):
        """The model of a file's config, its hyperparameters checked now."""
        autoencoder = cls(**config)
        autoencoder._check_params()
        return autoencoder

    def get_state(self):
        """The parameters at the root, the momentum buffers and counters under ``training``
        (docs/hdf5-format.md)."""
        self._check_fitted()
        training = {name: self._training[name] for name in sorted(self._training)}
        training.update(seed=str(self.seed_), n_updates=self.n_updates_,
                        epochs_done=self.epochs_done_)
        return {**self._parameters(), "training": training}

    def set_state(self, state):
        """Check every array's shape against ``n_hidden`` and ``tied_weights``, then adopt."""
        W = np.asarray(state["W"])
        if W.ndim != 2 or W.shape[1] != self.n_hidden or W.shape[0] < 1:
            raise ValueError(f"dataset 'W' has shape {W.shape}; expected (n_visible, "
                             f"{self.n_hidden}) from n_hidden={self.n_hidden}")
        n_visible, n_hidden = W.shape
        shapes = {"W": W.shape, "hidden_bias": (n_hidden,), "visible_bias": (n_visible,),
                  "W_decoder": (n_hidden, n_visible)}
        expected = {}
        for name in self._parameter_names():
            expected[name] = shapes[name]
            expected[f"training/velocity_{name}"] = shapes[name]
        training = state["training"]
        arrays = {}
        for path, shape in expected.items():
            group, _, name = path.rpartition("/")
            array = np.asarray((training if group else state)[name], dtype=np.float32)
            if array.shape != shape:
                raise ValueError(f"dataset {path!r} has shape {array.shape}; expected {shape}")
            arrays[path] = np.ascontiguousarray(array)
        counters = {name: int(training[name]) for name in ("seed",) + COUNTERS}
        for name in self._parameter_names():
            setattr(self, name, arrays[name])
        self._training = {f"velocity_{name}": arrays[f"training/velocity_{name}"]
                          for name in self._parameter_names()}
        self.seed_ = counters["seed"]
        self.n_updates_ = counters["n_updates"]
        self.epochs_done_ = counters["epochs_done"]
        self.n_features_in_ = n_visible
        if not hasattr(self, "history"):
            self.history = {name: [] for name in HISTORY_KEYS}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        tags.input_tags.positive_only = self.decoder_activation == "sigmoid"
        return tags


def learning_failure(autoencoder, X):
    """The test of an epoch that failed without diverging, for ``autoencoder`` training on
    ``X`` (an array or lazy rows): a function of the epoch's monitors giving what went wrong,
    or None; None (no test) for fewer than :data:`FAILURE_MIN_ROWS` rows.

    A step too large drives the hidden units into saturation, where the activation's slope is
    0 and no gradient brings them back; the decoder then sees a (near) constant code and the
    reconstruction ignores the input. The clipped cross-entropy is bounded (784 x 16.1 per
    image on MNIST), so the loss never grows by the divergence check's factor of 1000, nor
    becomes non-finite: a run at learning rate 10 (mnist-5k, 100 units) ended at a loss of 400,
    twice the 206 of the mean image, and was saved without a word. An epoch has failed when
    its reconstruction loss is no better than the mean image's (each row reconstructed as the
    mean of the training rows, the best a reconstruction that ignores its input can do) and
    at least :data:`SATURATED_FRACTION` of the hidden activations are saturated
    (:data:`SATURATED_SLOPE`), both on a sample of :data:`FAILURE_SAMPLE_ROWS` rows, where the
    training began with fewer saturated (no test otherwise: a code saturated by the data
    itself is no step's fault). Neither alone: a slow start (rate 1e-4: loss 420, then 267
    and 232, over the mean image's for three epochs) saturates nothing, and a code that
    learns may saturate most of its units (96 % at rate 0.3, loss 163)."""
    n_rows = X.shape[0]
    if n_rows < FAILURE_MIN_ROWS:
        return None
    picked = np.unique(np.linspace(0, n_rows - 1, min(n_rows, FAILURE_SAMPLE_ROWS)).astype(
        np.int64))
    sample = np.asarray(X.rows(picked) if isinstance(X, LazyRows) else X[picked],
                        dtype=np.float64)
    mean_image = np.broadcast_to(sample.mean(axis=0), sample.shape)
    floor = float(model.reconstruction_loss(sample, mean_image, autoencoder.loss).mean())
    activation = autoencoder.activation
    peak = PEAK_SLOPES[activation]

    def saturated_fraction():
        h = model.encode(sample, autoencoder.W.astype(np.float64),
                         autoencoder.hidden_bias.astype(np.float64), activation)
        return float(np.mean(activation_backward(activation, h, np.ones_like(h))
                             < SATURATED_SLOPE * peak))

    if saturated_fraction() >= SATURATED_FRACTION:
        # saturated before any step: the data's doing (real values far from 0, as
        # scikit-learn's checks' loc=100 give a linear decoder), which no smaller learning
        # rate mends, and which trains on (the decoder's bias learns the mean)
        return None

    def failed(monitors):
        loss = monitors["reconstruction_loss"]
        if loss < floor:
            return None
        saturated = saturated_fraction()
        if saturated < SATURATED_FRACTION:
            return None
        return (f"the reconstruction loss {loss:.4g} is no better than the mean image's "
                f"({floor:.4g}, a reconstruction that ignores the input), with "
                f"{saturated:.0%} of the hidden units' activations saturated, where no "
                "gradient brings them back")
    return failed


def _check_choice(value, name, choices):
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(repr(c) for c in choices)}, got "
                         f"{value!r}")
    return value
