"""The estimator facade shared by dlcore's RBMs: fit, partial_fit, transform, sampling, files.

A thin scikit-learn-style shell (``fit`` returns self, ``transform``, ``partial_fit``,
``get_params``) over the model maths (:mod:`dlcore.rbm.model`), the trainer
(:mod:`dlcore.rbm.trainer`), the sampler (:mod:`dlcore.rbm.sampler`) and the monitors
(:mod:`dlcore.rbm.monitors`). What the visible units are (how data is checked, where the visible
parameters start, the free energy, the visible mean, log Z, a Gaussian layer's own sigma) is one
strategy object of :mod:`dlcore.rbm.units`, which a subclass builds from its hyperparameters in
``_visible_units``: :class:`~dlcore.BernoulliRBM` and :class:`~dlcore.GaussianBernoulliRBM` are
hyperparameters and documentation.

One public name for the up-pass: scikit-learn's ``transform(X)``, Q(h = 1 | x), which also
draws binary states h ~ Q(h | x) with ``sample=True`` and a Philox counter (what a DBN feeds its
next layer); it runs on the model's backend through :func:`dlcore.rbm.sampler.up_pass`.

Between calls the parameters and the training state (momenta, persistent chain, sparsity
average, Philox step) are NumPy arrays on the estimator, which is what makes ``dlcore.save``
followed by ``dlcore.load`` resume training exactly, and what ``pickle`` and joblib carry
(:class:`dlcore.params.PicklesThroughState`: config and state, as in the file).

scikit-learn's estimator contract (its ``check_estimator`` runs in tests/test_sklearn_contract.py):
``__init__`` and ``set_params`` only store the hyperparameters, ``fit`` checks them; what ``fit``
learns lives under names ending in ``_`` (``W_``, ``visible_bias_``, ``hidden_bias_``,
``history_``, ``n_features_in_``...), with the familiar ``W``, ``visible_bias``... as read/write
aliases of them; a model used before ``fit`` raises :class:`dlcore.NotFittedError`.
"""
import sys

import numpy as np

from dlcore.backend import check_backend_name, get_backend, rng
from dlcore.distributed.communicator import periodic
from dlcore.epochs import EpochLoop
from dlcore.errors import NotFittedError
from dlcore.lazy_rows import LazyRows
from dlcore.params import (
    FittedAttribute,
    ParamsMixin,
    PicklesThroughState,
    SavesToFile,
    TransformerOutput,
    refuse_fit_arguments,
    with_verbose_flag,
)
from dlcore.records import record_fit
from dlcore.validation import (
    check_bool,
    check_data,
    check_estimator_verbose,
    check_float,
    check_int,
    check_matrix,
)
from dlcore.wording import duration

from . import chains, monitors, sampler
from .trainer import CDSettings, ContrastiveDivergence

# Subset of the training data whose free energy is compared with the validation data's.
MAX_FREE_ENERGY_ROWS = 10_000
_TRAINING_STATE_ARRAYS = ("velocity_W", "velocity_visible_bias", "velocity_hidden_bias",
                          "sparsity_mean")


class RBMBase(EpochLoop, PicklesThroughState, SavesToFile, TransformerOutput, ParamsMixin):
    """Shared machinery; see :class:`dlcore.BernoulliRBM` for the parameters."""

    W = FittedAttribute()
    visible_bias = FittedAttribute()
    hidden_bias = FittedAttribute()
    history = FittedAttribute()
    divergence_monitor = ("reconstruction error", "reconstruction_error")

    # -- scikit-learn's names of the learned parameters (its BernoulliRBM's), read-only views:
    # its examples plot ``rbm.components_[i].reshape(28, 28)`` as unit i's filter
    @property
    def components_(self):
        """``W`` transposed, (n_hidden, n_visible): row i holds hidden unit i's weights, as
        scikit-learn's ``BernoulliRBM.components_`` (a view of ``W_``)."""
        return self.W.T

    @property
    def intercept_hidden_(self):
        """scikit-learn's name of ``hidden_bias_``, (n_hidden,)."""
        return self.hidden_bias

    @property
    def intercept_visible_(self):
        """scikit-learn's name of ``visible_bias_``, (n_visible,)."""
        return self.visible_bias

    # -- what a subclass provides: its visible layer ---------------------------------------
    def _visible_units(self, backend=None, initial=False):
        """The visible layer (a :class:`dlcore.rbm.units.VisibleUnits`) of this model, its own
        arrays on ``backend`` (None: NumPy): with the fitted parameters, or where training
        starts (the hyperparameters' values) before fitting or with ``initial``."""
        raise NotImplementedError

    def _check_visible(self, X, name, fitted_width=False, held_out=False, width=None):
        """``X`` checked by the visible layer: a 2-D array of numbers (of the fitted width
        with ``fitted_width``, or of ``width`` columns: the training rows' before the model
        is fitted to them), in the layer's domain for training, or ``held_out`` rows a
        fitted model is applied to (:meth:`dlcore.rbm.units.VisibleUnits.check`)."""
        X = self._check_matrix(X, name)
        width = self.W.shape[0] if fitted_width else width
        # images (n, 28, 28) are left to the visible layer, which says to flatten them: their
        # second axis is no number of features
        if width is not None and len(X.shape) == 2 and X.shape[1] != width:
            raise ValueError(f"{name} has {X.shape[1]} features, but {type(self).__name__} is "
                             f"expecting {width} features as input ({name} has {X.shape[1]} "
                             f"columns but the model expects {width} visible units)")
        return self._visible_units().check(X, name, n_columns=width, held_out=held_out)

    def _check_matrix(self, X, name):
        """``X`` as a 2-D NumPy array (:func:`dlcore.validation.check_matrix`); the visible
        layer checks the values after."""
        return check_matrix(X, name, type(self).__name__)

    # -- hyperparameters ----------------------------------------------------------------
    def _check_params(self):
        check_int(self.n_hidden, "n_hidden", minimum=1)
        check_float(self.learning_rate, "learning_rate", low=0.0, low_open=True)
        check_int(self.cd_k, "cd_k", minimum=1)
        check_float(self.momentum, "momentum", low=0.0, high=1.0, high_open=True)
        check_float(self.weight_decay, "weight_decay", low=0.0)
        if self.sparsity_target is not None:
            check_float(self.sparsity_target, "sparsity_target", low=0.0, high=1.0,
                        low_open=True, high_open=True)
        check_float(self.sparsity_cost, "sparsity_cost", low=0.0)
        check_float(self.sparsity_decay, "sparsity_decay", low=0.0, high=1.0, high_open=True)
        check_int(self.batch_size, "batch_size", minimum=1)
        check_int(self.epochs, "epochs", minimum=0)
        check_backend_name(self.backend)
        if self.seed is not None:
            rng.check_seed(self.seed)
        # a string's truth decided these without a word: persistent="no" trained PCD
        check_bool(self.persistent, "persistent")
        check_estimator_verbose(self.verbose)
        self._check_sampler_params()

    def _check_sampler_params(self):
        """``sampler`` and its options (:mod:`dlcore.rbm.chains`), one line naming the fix."""
        sampler_name = chains.resolve_sampler(self.sampler, self.persistent)
        if self.n_chains is not None:
            if sampler_name == "cd":
                raise ValueError("n_chains is the number of persistent chains: give "
                                 "sampler='pcd', 'fpcd' or 'pt' with it, or leave it None")
            check_int(self.n_chains, "n_chains", minimum=1)
        if self.fast_learning_rate is not None:
            check_float(self.fast_learning_rate, "fast_learning_rate", low=0.0)
        check_float(self.fast_decay, "fast_decay", low=0.0, high=1.0, high_open=True)
        check_int(self.n_temperatures, "n_temperatures", minimum=2)
        chains.temperature_ladder(self.n_temperatures, self.temperatures)
        return sampler_name

    def _check_saveable_chains(self, n_visible):
        """Refuse, before training, persistent chains of more states than a model file holds
        (:func:`dlcore.io.layouts.unstored_chain_problem`, which ``dlcore.save`` and
        ``dlcore.load`` apply): ``sampler="pt", n_temperatures=1000, batch_size=200`` trained
        in full and only then was refused by ``dlcore.save``, its training lost."""
        from dlcore.io.layouts import MAX_UNSTORED_WEIGHTS, unstored_chain_problem
        rows = chains.chain_rows(self.sampler, self.persistent, self.n_chains, self.batch_size,
                                 self.n_temperatures, self.temperatures)
        n_hidden = int(self.n_hidden)
        if unstored_chain_problem(rows, n_hidden, n_visible) is None:
            return
        rungs = (" or n_temperatures (or temperatures)"
                 if chains.resolve_sampler(self.sampler, self.persistent) == "pt" else "")
        raise ValueError(
            f"the persistent chains would hold {rows:,} x ({n_hidden:,} hidden + "
            f"{n_visible:,} visible) states, more than the {MAX_UNSTORED_WEIGHTS:,} a model "
            f"file holds, so the trained model could not be saved; give a smaller n_chains "
            f"(or batch_size, with n_chains=None){rungs}")

    def _settings(self):
        return CDSettings(
            learning_rate=float(self.learning_rate), cd_k=int(self.cd_k),
            persistent=chains.resolve_sampler(self.sampler, self.persistent) == "pcd",
            momentum=float(self.momentum),
            weight_decay=float(self.weight_decay),
            sparsity_target=None if self.sparsity_target is None else float(self.sparsity_target),
            sparsity_cost=float(self.sparsity_cost), sparsity_decay=float(self.sparsity_decay),
            sample_visible=bool(self.sample_visible), batch_size=int(self.batch_size),
            seed=self.seed_, sampler=chains.resolve_sampler(self.sampler, self.persistent),
            n_chains=int(self.n_chains or 0),
            fast_learning_rate=float(self.learning_rate if self.fast_learning_rate is None
                                     else self.fast_learning_rate),
            fast_decay=float(self.fast_decay),
            betas=tuple(chains.temperature_ladder(self.n_temperatures, self.temperatures)))

    # -- training -----------------------------------------------------------------------
    def fit(self, X, y=None, X_valid=None, progress=None, on_epoch_end=None, comm=None,
            sync_every=1, **unexpected):
        """Initialise the parameters, then train for ``epochs`` passes over ``X``.

        Parameters
        ----------
        X : (n_samples, n_visible) array
        y : ignored (for scikit-learn pipelines)
        X_valid : (m, n_visible) array, optional
            Held-out data for the free-energy gap monitor.
        progress : callable, optional
            ``progress(epoch, epochs, batches_done, n_batches, running_error)`` during training;
            ``epoch`` and ``epochs`` count over the model's life (:meth:`resume` reports the
            epochs it trains as "3 of 4", "4 of 4").
        on_epoch_end : callable, optional
            ``on_epoch_end(self)`` after every finished epoch, the model then at that epoch
            (what a checkpoint saves).
        comm : dlcore.distributed.Communicator or an mpi4py communicator, optional
            Train data-parallel over its ranks (:mod:`dlcore.distributed`): every rank calls
            ``fit`` with the same ``X`` and settings and ends with the parameters one process
            would reach, up to the order of floating-point sums.
        sync_every : int >= 1, with ``comm``: local CD steps between two all-reduces. 1 (the
            default) is the exact path above; K > 1 is local SGD, each rank stepping on its
            shards alone and the parameters and their velocities averaged every K steps and at
            the end of every epoch (:mod:`dlcore.distributed.local_sgd`): K times fewer
            all-reduces, a result that is no longer one process's.
        **unexpected : any other keyword, refused in one line naming the fix
            (:func:`dlcore.params.refuse_fit_arguments`): ``sample_weight`` (RBMs weigh no
            samples), or a hyperparameter such as ``epochs``, given to the constructor.

        Returns
        -------
        self

        Notes
        -----
        Interrupted (Ctrl-C, a notebook's Interrupt button: ``KeyboardInterrupt``), the model
        stays as its last finished epoch left it (parameters, momenta, chains, counters,
        ``history``): it transforms and saves as trained so far, :meth:`resume` trains the
        epochs still missing, and ``fit`` starts again from scratch.
        """
        refuse_fit_arguments(self, "fit", unexpected)
        comm = periodic(comm, sync_every)
        self._check_params()
        given, X = X, self._check_visible(X, "X")
        X_valid = self._check_valid_rows(X_valid, X.shape[1], self._check_visible)
        self._check_saveable_chains(X.shape[1])
        # the table's names only once nothing can refuse the fit: a refused refit (another
        # table's bad values, a bad X_valid) left a fitted model the names of the table it
        # refused, so that it refused its own columns
        self._note_feature_names(given, reset=True)
        self._initialize(X)
        record_fit(self, X, epochs=int(self.epochs),
                   n_valid=None if X_valid is None else len(X_valid))
        return self._train(X, self.epochs, X_valid, progress, on_epoch_end, comm)

    def partial_fit(self, X, y=None, X_valid=None, progress=None, on_epoch_end=None,
                    comm=None, sync_every=1, **unexpected):
        """One more pass over ``X``, continuing from the current parameters and state (the
        first call initialises, as :meth:`fit` does); ``comm`` and ``sync_every`` as for
        :meth:`fit`. Returns self."""
        refuse_fit_arguments(self, "partial_fit", unexpected)
        comm = periodic(comm, sync_every)
        self._check_params()
        fitted = hasattr(self, "W")
        if fitted:
            self._note_feature_names(X, reset=False)
        given, X = X, self._check_visible(X, "X", fitted_width=fitted)
        X_valid = self._check_valid_rows(X_valid, X.shape[1], self._check_visible)
        self._check_saveable_chains(X.shape[1])
        if not fitted:   # a first call: as fit, nothing set before every check has passed
            self._note_feature_names(given, reset=True)
            self._initialize(X)
        self._check_fitted_sizes("partial_fit")
        return self._train(X, 1, X_valid, progress, on_epoch_end, comm)

    def resume(self, X, X_valid=None, progress=None, on_epoch_end=None, comm=None,
               sync_every=1, **unexpected):
        """Train the epochs still missing towards ``epochs`` (``epochs - epochs_done_`` of them)
        from the current parameters and training state (momenta, persistent chain, Philox
        counters): a model saved after k epochs (or by an interrupted :meth:`fit`), loaded with
        ``dlcore.load`` and resumed on the same data ends bit for bit where an uninterrupted
        ``fit`` of ``epochs`` epochs ends, on the same backend. ``comm``, ``sync_every`` as for
        :meth:`fit`. Returns self."""
        refuse_fit_arguments(self, "resume", unexpected)
        comm = periodic(comm, sync_every)
        self._check_params()
        self._check_fitted()
        self._check_fitted_sizes("resume")
        self._note_feature_names(X, reset=False)
        X = self._check_visible(X, "X", fitted_width=True)
        return self._train(X, max(0, int(self.epochs) - self.epochs_done_), X_valid, progress,
                           on_epoch_end, comm)

    def initialize(self, X):
        """Set the parameters and the training state to where training on ``X`` starts, and
        train nothing: what :meth:`fit` does before its first epoch. Then :meth:`partial_fit`
        trains one epoch at a time from there (a DBN's layer fed fresh samples every epoch
        does so). Hinton (2010, sec. 8): W ~ N(0, 0.01^2), hidden biases 0, visible parameters
        from the data (:meth:`dlcore.rbm.units.VisibleUnits.initial_parameters`); momenta
        zero; the Philox counters at their start. Returns self."""
        self._check_params()
        given, X = X, self._check_visible(X, "X")
        self._note_feature_names(given, reset=True)
        return self._initialize(X)

    def _initialize(self, X):
        self.seed_ = rng.check_seed(self.seed)
        n_visible, n_hidden = X.shape[1], int(self.n_hidden)
        W = rng.normal(n_visible, n_hidden, self.seed_, rng.STREAM_INIT, scale=0.01)
        # the data's pass first: W tells a fitted RBM (hasattr), and an RBM interrupted in that
        # pass (a Ctrl-C as its first kernels compile) is then no half-fitted one
        visible, visible_training = self._visible_units(initial=True).initial_parameters(X)
        self.W = W
        self.visible_bias = visible.pop("visible_bias")
        self.hidden_bias = np.zeros(n_hidden, dtype=np.float32)
        self._training = {name: np.zeros_like(getattr(self, name[len("velocity_"):]))
                          for name in _TRAINING_STATE_ARRAYS[:3]}
        self._training["sparsity_mean"] = np.full(
            n_hidden, self.sparsity_target or 0.0, dtype=np.float32)
        self._training["persistent_chain"] = None
        self._training["persistent_chain_unstarted"] = None
        self._training["fast_W"] = None
        for name, value in visible.items():
            setattr(self, name, value)
        self._training.update(visible_training)
        self.n_updates_ = 0
        self.epochs_done_ = 0
        self.sample_calls_ = 0
        self.n_features_in_ = n_visible
        self.history = {"reconstruction_error": [], "free_energy_gap": [], "seconds": []}
        if chains.resolve_sampler(self.sampler, self.persistent) == "pt":
            rungs = len(chains.temperature_ladder(self.n_temperatures, self.temperatures))
            for name in ["swap_acceptance"] + [f"swap_acceptance_{k}" for k in range(1, rungs)]:
                self.history[name] = []
        return self

    def _train(self, X, epochs, X_valid, progress, on_epoch_end=None, comm=None):
        if X_valid is not None:
            X_valid = self._check_visible(X_valid, "X_valid", fitted_width=True)
        backend = get_backend(self.backend)
        trainer = self.cd_trainer(backend, rows=X.shape[0])
        if comm is not None:
            from dlcore.distributed.fingerprint import model_fingerprint
            from dlcore.distributed.rbm import data_parallel
            trainer = data_parallel(trainer, comm, X,
                                    model_fingerprint(self._parameters(), epochs))
        data = X if isinstance(X, LazyRows) else backend.asarray(X)   # lazy: read per batch
        training_subset = self._free_energy_subset(X, X_valid)
        with backend.compute():
            self._run_epochs(trainer, data, epochs, progress, on_epoch_end,
                             lambda error, seconds: self._record_epoch(
                                 error, training_subset, X_valid, seconds, trainer))
        self.adopt_trainer(trainer)
        return self

    def cd_trainer(self, backend=None, rows=None, **settings):
        """A :class:`~dlcore.rbm.trainer.ContrastiveDivergence` on this RBM's parameters and
        training state, on ``backend`` (default: the model's), with CD settings replaced by
        keyword (``learning_rate=0.01``, ``cd_k=3``...). For training loops of their own (a
        DBN's up-down fine-tuning); :meth:`adopt_trainer` takes the results back. ``rows``:
        the rows of the data it will train on, which bound its per-batch buffers."""
        self._check_fitted()
        backend = get_backend(self.backend if backend is None else backend)
        cd_settings = self._settings()
        if "persistent" in settings and "sampler" not in settings:
            settings["sampler"] = "pcd" if settings["persistent"] else "cd"
        for name, value in settings.items():
            if not hasattr(cd_settings, name):
                raise ValueError(f"unknown CD setting {name!r}")
            setattr(cd_settings, name, value)
        return ContrastiveDivergence(backend, self._parameters(), self._training, cd_settings,
                                     self._visible_units(backend), rows=rows)

    def adopt_trainer(self, trainer):
        """Take the parameters and training state of ``trainer`` (from :meth:`cd_trainer`)."""
        self._store(*trainer.download())

    def _free_energy_subset(self, X, X_valid):
        if X_valid is None:
            return None
        size = min(X.shape[0], X_valid.shape[0], MAX_FREE_ENERGY_ROWS)
        return np.asarray(
            X[np.sort(rng.permutation(X.shape[0], self.seed_, rng.STREAM_SPLIT)[:size])])

    def _record_epoch(self, error, training_subset, X_valid, seconds, trainer=None):
        gap = (np.nan if X_valid is None
               else monitors.free_energy_gap(self._parameters(), training_subset, X_valid,
                                             self._visible_units()))
        self.history["reconstruction_error"].append(float(error))
        self.history["free_energy_gap"].append(float(gap))
        self.history["seconds"].append(float(seconds))
        # the sampler's own figures (parallel tempering's swap acceptance rates)
        statistics = getattr(trainer, "take_statistics", dict)   # (data-parallel CD: none)
        for name, value in statistics().items():
            self.history.setdefault(name, []).append(value)
        if self.verbose:
            gap_text = "" if X_valid is None else f", free-energy gap {gap:.3f}"
            print(f"[{type(self).__name__}] epoch {self.epochs_done_}: reconstruction error "
                  f"{error:.5f}{gap_text}, {duration(seconds)}", file=sys.stderr)

    def _parameter_names(self):
        visible_units = self._visible_units(initial=True)
        return ("W", "visible_bias", "hidden_bias") + visible_units.parameter_names

    def _parameters(self):
        return {name: getattr(self, name) for name in self._parameter_names()}

    def _float64_parameters(self):
        """(W, b, c) and the visible layer's own parameters, in float64."""
        return self._visible_units().float64_parameters(self._parameters())

    def _visible_training_names(self):
        return self._visible_units(initial=True).training_arrays

    def _store(self, parameters, state):
        for name, value in parameters.items():
            setattr(self, name, value)
        self._training.update(state)

    # -- using a trained model ----------------------------------------------------------
    def _check_fitted(self):
        if not hasattr(self, "W"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit(X) "
                                 "first, or dlcore.load() a saved model")

    def _check_visible_input(self, X, name="X"):
        """The rows a public method was given, checked: fitted, the width, the values, and
        (for ``X``) the column names of a table against ``feature_names_in_``. Binary units
        take values outside [0, 1] here (held-out rows a scaler maps a little beyond, as in
        scikit-learn's cross-validation); only training refuses them."""
        self._check_fitted()
        if name == "X":
            self._note_feature_names(X, reset=False)
        return self._check_visible(X, name, fitted_width=True, held_out=True)

    def _n_features_out(self):
        return self.W.shape[1]

    def transform(self, X, sample=False, seed=None, stream=rng.STREAM_SAMPLE, step=None):
        """The hidden layer of every row of ``X``: Q(h = 1 | x), or with ``sample`` one binary
        sample h ~ Q(h | x), computed on the model's backend (:func:`dlcore.rbm.sampler.up_pass`).

        Parameters
        ----------
        X : (n, n_visible) array
        sample : bool, draw binary states instead of returning the probabilities (what a DBN
            feeds its next layer with ``propagate="sample"``)
        seed, stream, step : the Philox counter of the sample: h[r, j] = 1 when
            ``rng.uniform(n, n_hidden, seed, stream, step)[r, j]`` < Q(h_j = 1 | x_r);
            ``seed`` None means the model's own ``seed_``. ``step`` None continues the model's
            sequence, as :meth:`gibbs`, :meth:`reconstruct` and :meth:`sample` do: successive
            calls draw fresh states (a Monte-Carlo average of them tends to Q(h = 1 | x)),
            reproducibly (same seed, same calls, same states; the call counter is saved in
            the model file); with an explicit ``seed`` it means step 0. An explicit ``step``
            draws that step's states whatever came before (a DBN's ``propagate="sample"``
            draws epoch e's at step e).

        Returns
        -------
        (n, n_hidden) float32 (a pandas or polars table after :meth:`set_output`)
        """
        rows = self._check_visible_input(X)
        # a string's truth decided it without a word: sample="no" drew binary states
        sample = check_bool(sample, "sample")
        if step is None:
            step = self._next_sample_call() if sample and seed is None else 0
        return self._wrap_output(X, self._hidden_layer(rows, sample, seed, stream, step))

    def _hidden_layer(self, rows, sample=False, seed=None, stream=rng.STREAM_SAMPLE, step=0):
        """:meth:`transform` of checked ``rows``, always a NumPy array."""
        backend = get_backend(self.backend)
        return sampler.up_pass(backend, self._parameters(), rows, self._visible_units(backend),
                               sample, self.seed_ if seed is None else seed, stream, step)

    def fit_transform(self, X, y=None, **fit_params):
        """``fit(X)`` then ``transform(X)``."""
        return self.fit(X, **fit_params).transform(X)

    def reconstruct(self, X, sample_hidden=False, seed=None):
        """One up-down pass: h = Q(h = 1 | x) (or a sample of it), then the visible mean
        E[x' | h].

        Parameters
        ----------
        X : (n, n_visible) array
        sample_hidden : bool
            Go down from binary hidden states h ~ Q(h | x) instead of their probabilities.
        seed : int or None
            As :meth:`sample`'s, for ``sample_hidden``: the Philox key of the hidden states, a
            sequence of its own from its start that leaves the model's own sequence where it
            was (the hidden states of ``transform(X, sample=True, seed=seed)``); None
            continues the model's own sequence (successive calls draw fresh states). Same
            seed, same reconstructions on every backend. Unused without ``sample_hidden``.

        Returns
        -------
        (n, n_visible) float32
        """
        X = self._check_visible_input(X)
        sample_hidden = check_bool(sample_hidden, "sample_hidden")
        if seed is not None:
            seed = rng.check_seed(seed)
        if sample_hidden:
            # a seed given: its own sequence from its start, the model's left where it was
            step = self._next_sample_call() if seed is None else 0
            hidden = self._hidden_layer(X, sample=True, seed=seed, step=step)
        else:
            hidden = self._hidden_layer(X)
        return self._visible_units().visible_mean(hidden, self._parameters()).astype(np.float32)

    def score(self, X, y=None):
        """The mean of :meth:`score_samples` over the rows of ``X`` (n, n_visible): a Bernoulli
        RBM's mean pseudo-log-likelihood, a Gaussian-Bernoulli RBM's mean exact log density (at
        most 24 hidden units, as its ``score_samples``), in nats per sample (higher is better).
        A float.

        What scikit-learn's ``PCA.score`` and ``GaussianMixture.score`` are to their own
        ``score_samples``, so that ``GridSearchCV`` and ``cross_val_score`` can choose an RBM's
        hyperparameters on held-out rows without a ``scoring=``. ``y`` is ignored (the
        scikit-learn signature)."""
        return float(np.mean(self.score_samples(X)))

    def free_energy(self, X):
        """F(v) per row, (n, n_visible) -> (n,), in float64, such that p(v) = exp(-F(v)) / Z
        (the visible layer's: :mod:`dlcore.rbm.units`)."""
        X = self._check_visible_input(X)
        return self._visible_units().free_energy(X, self._parameters())

    def log_partition(self):
        """log Z = log sum_v sum_h exp(-E(v, h)) (an integral over Gaussian visible units),
        exact in float64: binary units enumerate the smaller layer, Gaussian units integrate
        out and the hidden states are enumerated (at most 24 units; ValueError beyond; see
        :mod:`dlcore.rbm.monitors`). Then log p(v) = -F(v) - log Z."""
        self._check_fitted()
        return self._visible_units().log_partition(self._parameters())

    def log_likelihood(self, X, method="ais", **options):
        """The mean log-probability of the rows of ``X`` (n, n_visible), in nats per sample,

            mean_v log p(v) = mean_v [-F(v)] - log Z,

        with log Z by annealed importance sampling (``method="ais"``: Salakhutdinov & Murray's
        base model fitted to the data's marginals, and RAISE's conservative bracket) or exact
        (``method="exact"``: at most 24 units in the smaller layer). ``options``: ``n_runs``,
        ``n_temperatures``, ``seed``, ``data``, ``reverse_rows``, ``backend``, ``progress``,
        ``verbose`` (:func:`dlcore.rbm.ais.log_likelihood`). Returns a
        :class:`~dlcore.rbm.ais.LogLikelihood`, which unpacks as ``mean, (low, high)``."""
        from .ais import log_likelihood
        return log_likelihood(self, X, method=method, **options)

    def gibbs(self, V, steps=1, clamped=None, probabilities=False, seed=None):
        """Visible samples after ``steps`` block Gibbs steps v -> h -> v from each row of ``V``
        (n, n_visible). Reproducible: successive calls continue one Philox sequence.

        ``clamped`` (n, K), optional, holds the last K visible units fixed at its values (the
        label units of a DBN's top RBM, to generate a chosen class). ``probabilities=True``
        returns the last step's P(v = 1 | h) (the visible means of Gaussian units) instead of
        the sample drawn from it: smoother pictures of the same chains (needs steps >= 1).
        ``seed`` (int or None), as :meth:`sample`'s: Philox key of the draws; None continues
        the model's own sequence (successive calls draw fresh samples). Same seed, same
        samples on every backend."""
        V = self._check_visible_input(V, "V")
        probabilities = check_bool(probabilities, "probabilities")
        steps = check_int(steps, "steps", minimum=1 if probabilities else 0)
        if clamped is not None:
            clamped = check_data(clamped, "clamped")
            if clamped.shape[0] != V.shape[0] or clamped.shape[1] > V.shape[1]:
                raise ValueError(f"clamped has shape {clamped.shape}; expected "
                                 f"({V.shape[0]}, K) with K <= {V.shape[1]} visible units")
        # a seed given: its own sequence from its start, the model's left where it was
        call = self._next_sample_call() if seed is None else 0
        seed = self.seed_ if seed is None else rng.check_seed(seed)
        backend = get_backend(self.backend)
        return sampler.gibbs_chain(backend, self._parameters(), V, steps, seed, call,
                                   self._visible_units(backend),
                                   return_probabilities=probabilities, clamped=clamped)

    def sample(self, n_samples=100, steps=1000, sampler=None, seed=None, probabilities=False):
        """``n_samples`` samples from the model: the visible states after ``steps`` Gibbs
        steps of as many independent chains started at random binary hidden states
        (:func:`dlcore.rbm.chains.sample`).

        Parameters
        ----------
        n_samples : int
        steps : int >= 1
        sampler : {"gibbs", "pt"} or None
            Plain block Gibbs sampling, or parallel tempering on the model's ladder
            (``n_temperatures``/``temperatures``; neighbours swap after every step). None:
            "pt" for a model trained with ``sampler="pt"``, else "gibbs".
        seed : int or None
            Philox key of the draws; None continues the model's own sequence (successive
            calls draw fresh samples). Same seed, same samples on every backend.
        probabilities : bool
            Return the last step's P(v = 1 | h) (visible means) instead of its sample.

        Returns
        -------
        (n_samples, n_visible) float32: binary states (real values for Gaussian units).
        """
        self._check_fitted()
        n_samples = check_int(n_samples, "n_samples", minimum=1)
        steps = check_int(steps, "steps", minimum=1)
        # a string's truth decided it without a word: probabilities="no" returned them
        probabilities = check_bool(probabilities, "probabilities")
        if sampler is None:
            sampler = chains.default_sampling_method(self.sampler)
        if sampler not in chains.SAMPLING_METHODS:
            raise ValueError(f"sampler must be 'gibbs' or 'pt' to draw samples (the training "
                             f"samplers cd, pcd and fpcd all sample by Gibbs steps), got "
                             f"{sampler!r}")
        betas = chains.temperature_ladder(self.n_temperatures, self.temperatures)
        call = self._next_sample_call() if seed is None else 0
        seed = self.seed_ if seed is None else rng.check_seed(seed)
        backend = get_backend(self.backend)
        return chains.sample(backend, self._parameters(), self._visible_units(backend),
                             n_samples, steps, sampler, betas, seed, call,
                             probabilities=probabilities)

    def _chain_rows(self):
        """Rows of the persistent chains: K * n_chains (:func:`dlcore.rbm.chains.chain_rows`)."""
        return chains.chain_rows(self.sampler, self.persistent, self.n_chains,
                                 self.batch_size, self.n_temperatures, self.temperatures)

    def _next_sample_call(self):
        self.sample_calls_ += 1
        return self.sample_calls_

    # -- files and copies ---------------------------------------------------------------
    def get_config(self):
        """The constructor arguments, JSON-serialisable (for the HDF5 file)."""
        return with_verbose_flag(self.get_params())

    @classmethod
    def from_config(cls, config):
        """The model of a file's config: its hyperparameters checked now (``__init__`` only
        stores them), so that a file with bad ones is refused at load."""
        model = cls(**config)
        model._check_params()
        return model

    def get_state(self):
        """Parameters and what resuming needs, as the nested dict of :mod:`dlcore.io`."""
        self._check_fitted()
        training = {name: self._training[name]
                    for name in _TRAINING_STATE_ARRAYS + self._visible_training_names()}
        for name in ("persistent_chain", "fast_W"):
            if self._training.get(name) is not None:
                training[name] = self._training[name]
        chain = training.get("persistent_chain")
        if chain is not None and tuple(chain.shape) != (self._chain_rows(), self.W.shape[1]):
            # chains of settings changed since (set_params(batch_size=...), sampler="cd"):
            # the next training starts them again at the data, and load checks the chain
            # against the settings, so they are left out (the file then loads)
            del training["persistent_chain"]
        unstarted = self._training.get("persistent_chain_unstarted")
        if "persistent_chain" in training and unstarted is not None:
            # the row-aligned chains that no batch has reached yet (a partial_fit chunk
            # shorter than batch_size): a file saved between chunks starts them at their
            # rows' data when a later chunk reaches them, as the model that saved it would
            training["persistent_chain_unstarted"] = np.asarray(unstarted, dtype=np.uint8)
        training.update(seed=str(self.seed_), n_updates=self.n_updates_,
                        epochs_done=self.epochs_done_, sample_calls=self.sample_calls_)
        return {**self._parameters(), "training": training}

    def set_state(self, state):
        """Validate every array's shape against the hyperparameters, then adopt them."""
        W = np.asarray(state["W"])
        if W.ndim != 2 or W.shape[1] != self.n_hidden:
            raise ValueError(f"dataset 'W' has shape {W.shape}; expected (n_visible, "
                             f"{self.n_hidden}) from n_hidden={self.n_hidden}")
        n_visible, n_hidden = W.shape
        training = state["training"]
        expected = {"visible_bias": (n_visible,), "hidden_bias": (n_hidden,),
                    "training/velocity_W": (n_visible, n_hidden),
                    "training/velocity_visible_bias": (n_visible,),
                    "training/velocity_hidden_bias": (n_hidden,),
                    "training/sparsity_mean": (n_hidden,)}
        for name in self._parameter_names()[3:]:
            expected[name] = (n_visible,)
        for name in self._visible_training_names():
            expected[f"training/{name}"] = (n_visible,)
        if "persistent_chain" in training:
            expected["training/persistent_chain"] = (self._chain_rows(), n_hidden)
        if "fast_W" in training:
            expected["training/fast_W"] = (n_visible, n_hidden)
        unstarted = None
        if "persistent_chain" in training and "persistent_chain_unstarted" in training:
            unstarted = np.asarray(training["persistent_chain_unstarted"])
            if unstarted.shape != (self._chain_rows(),):
                raise ValueError(f"dataset 'training/persistent_chain_unstarted' has shape "
                                 f"{unstarted.shape}; expected ({self._chain_rows()},), a "
                                 "flag per chain")
            if not np.isin(unstarted, (0, 1)).all():
                raise ValueError("dataset 'training/persistent_chain_unstarted' holds values "
                                 "other than 0 and 1; expected a flag per chain (1: not "
                                 "started yet)")
            unstarted = unstarted.astype(bool) if unstarted.any() else None
        arrays = {}
        for path, shape in expected.items():
            group, _, name = path.rpartition("/")
            array = np.asarray((training if group else state)[name], dtype=np.float32)
            if array.shape != shape:
                raise ValueError(f"dataset {path!r} has shape {array.shape}; expected {shape}")
            arrays[path] = np.ascontiguousarray(array)
        counters = {name: int(training[name])
                    for name in ("seed", "n_updates", "epochs_done", "sample_calls")}
        self.W = np.ascontiguousarray(W, dtype=np.float32)
        for name in self._parameter_names()[1:]:
            setattr(self, name, arrays[name])
        self._training = {name: arrays.get(f"training/{name}")
                          for name in _TRAINING_STATE_ARRAYS + self._visible_training_names()
                          + ("persistent_chain", "fast_W")}
        # a file without the flags (saved before they were kept) counts every chain started
        self._training["persistent_chain_unstarted"] = unstarted
        self.seed_ = counters["seed"]
        self.n_updates_ = counters["n_updates"]
        self.epochs_done_ = counters["epochs_done"]
        self.sample_calls_ = counters["sample_calls"]
        self.n_features_in_ = n_visible
        if not hasattr(self, "history"):
            self.history = {"reconstruction_error": [], "free_energy_gap": [], "seconds": []}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]   # computes and returns float32
        return tags
