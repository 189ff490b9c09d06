"""``DBN``: a Deep Belief Network, pretrained greedily, turned into a network or a generator."""
import copy
import functools
import json
import math
import numbers
import sys
import warnings

import numpy as np

from dlcore.backend import check_backend_name, rng
from dlcore.backend.reference import softmax
from dlcore.backend.rng import STREAM_GENERATE
from dlcore.distributed.communicator import periodic
from dlcore.errors import DivergenceCheck, TrainingDiverged
from dlcore.io import register_model, require_array
from dlcore.io.hdf5 import json_text
from dlcore.layer_stack import LayerStack, fitting
from dlcore.lazy_rows import LazyRows
from dlcore.params import (
    AccuracyScore,
    LogProbabilities,
    ParamsMixin,
    PicklesThroughState,
    SavesToFile,
    TransformerOutput,
    check_per_layer,
    inner_layer,
    refuse_fit_arguments,
    with_verbose_flag,
)
from dlcore.rbm import BernoulliRBM, GaussianBernoulliRBM
from dlcore.rbm.chains import SAMPLING_METHODS, default_sampling_method
from dlcore.rbm.model import softplus, visible_probability
from dlcore.records import record_fit
from dlcore.validation import (
    as_array,
    check_bool,
    check_data,
    check_estimator_verbose,
    check_float,
    check_int,
    check_matrix,
    check_same_classes,
    check_width,
    data_conversion_warning,
)
from dlcore.wording import count

from .stack import (
    PER_LAYER_OPTIONS,
    PROPAGATE_MODES,
    VISIBLE_KINDS,
    layer_input,
    layer_options,
    lazy_features,
    rbm_class,
    with_labels,
)
from .updown import UpDown

RBM_CLASSES = {cls.__name__: cls for cls in (BernoulliRBM, GaussianBernoulliRBM)}


class NoLabelUnitsError(AttributeError, RuntimeError):
    """A classifier's method asked of a DBN without label units. An ``AttributeError``, so
    that ``hasattr(dbn, "predict")`` is False, as scikit-learn's ``available_if`` makes a
    method absent (its checks, ``Pipeline`` and ``cross_val_predict`` ask ``hasattr``); and a
    ``RuntimeError``, which dlcore raised before, so code written for that catches it too."""


class WithLabelUnits:
    """A method only a DBN with label units has (scikit-learn's ``available_if``): reading it
    from one without raises :class:`NoLabelUnitsError`, naming the two ways to classify."""

    def __init__(self, method):
        self.method = method
        functools.update_wrapper(self, method)

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        if not instance.n_labels:
            raise NoLabelUnitsError(f"{self.method.__name__} needs a DBN trained with label "
                                    f"units: DBN(..., n_labels=10).fit(X, y); or use "
                                    f"to_network(n_classes=10) and fine-tune it")
        return self.method.__get__(instance, owner)


def _listed(values, most=12):
    """The values as a short text list, the first and last ones when there are many."""
    values = [repr(value.item() if isinstance(value, np.generic) else value)
              for value in values]
    if len(values) > most:
        values = values[:most - 3] + ["..."] + values[-2:]
    return ", ".join(values)


def _numbers_or_strings(labels, y_name):
    """``labels`` (1-D) as an array of numbers (finite, whole when floats: class labels) or
    of strings, the labels a model file can hold (:func:`classes_from_list`); else
    ValueError."""
    if labels.dtype == object and all(isinstance(label, str) for label in labels):
        labels = labels.astype(str)
    if labels.dtype.kind not in "biufU":
        raise ValueError(f"{y_name} must hold class labels that are numbers or strings, got "
                         f"dtype {labels.dtype}")
    if labels.dtype.kind == "f":
        with np.errstate(invalid="ignore"):   # inf mod 1 is NaN, which NumPy warns of
            whole = np.isfinite(labels) & (np.mod(labels, 1) == 0)
    if labels.dtype.kind == "f" and not whole.all():
        examples = _listed(labels[~whole][:3])
        raise ValueError(f"{y_name} holds continuous values, not class labels (NaN, infinite "
                         f"or not whole numbers, e.g. {examples}): a classifier needs class "
                         "labels")
    return labels


def _codes(labels, classes, y_name):
    """The index of every label among the sorted ``classes`` (int64), or ValueError naming
    the labels that are not among them."""
    index = np.clip(np.searchsorted(classes, labels), 0, len(classes) - 1)
    try:
        unknown = classes[index] != labels
    except TypeError:   # strings against numbers
        unknown = np.ones(len(labels), bool)
    if np.any(unknown):
        raise ValueError(f"{y_name} holds labels that are not classes of the DBN: "
                         f"{_listed(np.unique(labels[unknown]))} (its classes_ are "
                         f"{_listed(classes)})")
    return index.astype(np.int64)


def classes_from_list(values, n_labels):
    """The ``classes_`` of a DBN with ``n_labels`` label units from the JSON list its file
    stores: n_labels distinct numbers (finite) or strings, sorted; else ValueError (what
    :mod:`dlcore.io.layouts` and :meth:`DBN.set_state` check)."""
    if not isinstance(values, list) or len(values) != n_labels:
        raise ValueError(f"should list the {n_labels} classes of the label units; found "
                         f"{str(values)[:60]!r}")
    kinds = {bool if isinstance(value, bool) else str if isinstance(value, str)
             else numbers.Real if isinstance(value, numbers.Real) else None
             for value in values}
    if len(kinds) > 1 or None in kinds or (numbers.Real in kinds
                                           and not all(map(math.isfinite, values))):
        raise ValueError(f"should hold finite numbers only or strings only; found "
                         f"{str(values)[:60]!r}")
    classes = np.asarray(values)
    if not np.all(classes[1:] > classes[:-1]):
        raise ValueError(f"should list distinct classes in increasing order; found "
                         f"{str(values)[:60]!r}")
    return classes


class _DefaultSteps(int):
    """:meth:`DBN.sample`'s default ``steps``, 1000: the number its signature and ``help``
    show, but an object of its own, which ``sample`` tells from a ``steps=1000`` given (so
    that one given with a disagreeing ``gibbs_steps`` is refused, not silently replaced)."""

    __slots__ = ()


_DEFAULT_SAMPLE_STEPS = _DefaultSteps(1000)


@register_model
class DBN(LayerStack, LogProbabilities, PicklesThroughState, SavesToFile, TransformerOutput,
          ParamsMixin):
    """Deep Belief Network: a stack of RBMs trained greedily, layer by layer.

    Lecture "Deep Neural Networks" (DBN/RBM), slides "Deep Belief Networks (DBNs)" and "DBN
    Greedy Learning" (Hinton, Osindero & Teh 2006): "Unsupervised pre-learning provides a good
    initialization of the network; supervised fine-tuning". ``hidden=[500, 500, 2000]`` fitted
    on 784 pixels stacks three RBMs, 784-500, 500-500 and 500-2000, trained in the lecture's
    three steps: RBM 1 on the data v; then, W1 fixed, RBM 2 on h1 ~ Q(h1 | v) (or its mean);
    then RBM 3 on h2 ~ Q(h2 | h1); "and so on" (:mod:`dlcore.dbn.stack`). Afterwards the DBN

    * extracts features: :meth:`transform` (the top layer's Q(h = 1 | ...), means all the way);
    * becomes a feed-forward network for supervised fine-tuning: :meth:`to_network` (a
      :class:`dlcore.Sequential` whose Dense layers start from the RBM weights, topped by a
      softmax layer);
    * generates: :meth:`sample` (Gibbs sampling in the top RBM, then one pass down);
    * with ``n_labels`` (Hinton et al. 2006, fig. 1) trains its top RBM on [features, one-hot
      label], classifies by the top RBM's free energy (:meth:`predict`) and draws digits of a
      chosen class (``sample(label=3)``);
    * can fine-tune its generative model by up-down (contrastive wake-sleep, :meth:`up_down`),
      which unties generative from recognition weights (:mod:`dlcore.dbn.updown`).

    Parameters
    ----------
    hidden : list of int, int, or None
        [n_hidden_1, ..., n_hidden_top], the hidden layers: at least one size (one number
        is one layer, as ``hidden_layer_sizes=100`` in scikit-learn). The visible units are as
        many as the columns of the ``X`` that ``fit`` is given (as scikit-learn's
        ``MLPClassifier(hidden_layer_sizes=...)`` takes its input width). None (the default)
        with no ``layers``: [500, 500].
    layers : list of int, or None
        The older form, [n_visible, n_hidden_1, ..., n_hidden_top] (at least two sizes): the
        same hidden layers, and ``fit`` refuses data not ``layers[0]`` wide. Kept so that the
        code, model files and ``dlcore dbn pretrain`` that give it keep working; give
        ``hidden`` or ``layers``, not both (:mod:`dlcore.layer_stack`).
    epochs, learning_rate, batch_size, momentum, weight_decay, cd_k, persistent,
    sparsity_target : value, list of values (one per RBM), or None
        CD hyperparameters of the RBMs (see :class:`dlcore.BernoulliRBM`); None leaves each
        RBM's own default (learning rate 0.1 for binary, 0.01 for Gaussian visible units).
    sampler : {"cd", "pcd", "fpcd", "pt"}, list of them, or None
        Each RBM's negative phase (:mod:`dlcore.rbm.chains`; None: the RBM's default); its
        options (``n_chains``, ``n_temperatures``...) go in ``rbm``.
    propagate : {"mean", "sample"}
        What each RBM feeds the next: Q(h = 1 | v) itself (default: less noise, the common
        practice, Hinton 2010 sec. 3.4) or binary samples h ~ Q(h | v) (the lecture's words),
        drawn afresh every epoch.
    visible : {"bernoulli", "gaussian"}
        Visible units of the first RBM: binary (data in [0, 1]) or Gaussian (standardised
        real-valued data, :class:`dlcore.GaussianBernoulliRBM`).
    n_labels : int
        0, or the number of classes: the top RBM then also sees the one-hot label, and
        ``fit`` needs ``y``.
    rbm : dict, list of dicts, or None
        Any further RBM arguments: one dict for every RBM, or one per RBM (they override the
        options above), e.g. ``[{"learning_rate": 0.05}, {}, {"cd_k": 3}]``.
    up_down_epochs : int
        Epochs of up-down fine-tuning run at the end of :meth:`fit` (0: none).
    up_down_learning_rate, up_down_gibbs_steps, up_down_batch_size : float, int, int
        Its learning rate, Gibbs steps in the top RBM, and mini-batch size.
    seed : int or None
        Every RBM gets its own key derived from it (``dlcore.backend.rng.layer_seed``). None
        draws one from the operating system at ``fit``, kept in ``seed_``.
    backend : {"auto", "cpu", "cuda", "reference"}
    verbose : bool or int >= 0 (scikit-learn's level: any level above 0 is True)
        One line per RBM epoch on stderr.

    Attributes
    ----------
    rbms_ : list of RBMs, bottom first
    seed_ : int, the seed actually used (``seed=model.seed_`` trains the same DBN again)
    n_features_in_ : int, the visible units of the bottom RBM (the width of ``X``)
    layers_ : list of int, [n_features_in_, n_hidden_1, ..., n_hidden_top]
    classes_ : (n_labels,) array, with label units: the class of each label unit (the labels
        of ``y``, sorted, or 0..n_labels-1), what :meth:`predict` answers and ``sample(label=)``
        takes
    generative_ : list of (G_i, g_i) per lower layer after :meth:`up_down`, else None (tied)
    history : dict of per-epoch lists: ``rbm<k>_reconstruction_error``,
        ``rbm<k>_free_energy_gap``, ``rbm<k>_seconds`` for every RBM, and
        ``up_down_reconstruction_error``

    Notes
    -----
    ``model.save(path)`` writes the model to dlcore's HDF5 file, atomically, as
    ``dlcore.save(model, path)`` does; ``dlcore.load(path)`` reads it back.
    """

    layers_attribute = "rbms_"
    history_prefix = "rbm"
    layer_noun = "RBM"
    layer_options_parameter = "rbm"
    resume_hint = "dbn.resume(X) (or `dlcore dbn pretrain --resume FILE`)"
    bottom_noun = "bottom RBM"

    # ``hidden`` comes last: code that gives the older ``layers`` by position keeps working
    def __init__(self, layers=None, epochs=10, learning_rate=None, batch_size=None,
                 momentum=None, weight_decay=None, cd_k=None, persistent=None,
                 sparsity_target=None, propagate="mean", visible="bernoulli", n_labels=0,
                 rbm=None, up_down_epochs=0, up_down_learning_rate=0.01, up_down_gibbs_steps=3,
                 up_down_batch_size=100, seed=0, backend="auto", verbose=False, sampler=None,
                 hidden=None):
        self._init_params(locals())   # checked in fit (scikit-learn's rule), as the RBMs do

    # -- hyperparameters ----------------------------------------------------------------
    def _check_params(self):
        """Each hyperparameter against what it may be: one line naming it (``fit``,
        ``resume``, ``up_down`` and loading a file call this; ``__init__`` and ``set_params``
        only store)."""
        self._check_sizes()
        n_rbms = len(self._hidden_sizes())
        check_per_layer(self, PER_LAYER_OPTIONS, n_rbms, "RBMs")
        if self.propagate not in PROPAGATE_MODES:
            raise ValueError(f"propagate must be 'mean' or 'sample', got {self.propagate!r}")
        if self.visible not in VISIBLE_KINDS:
            raise ValueError(f"visible must be 'bernoulli' or 'gaussian', got {self.visible!r}")
        check_int(self.n_labels, "n_labels", minimum=0)
        if self.n_labels and self.visible == "gaussian" and n_rbms == 1:
            # the label units are binary visible units of the top RBM, which here is the
            # Gaussian one of the data
            raise ValueError(f"n_labels={self.n_labels} with visible='gaussian' needs two RBMs "
                             "or more: the label units join the top RBM's binary visible "
                             "units, and this DBN's one RBM has the data's Gaussian ones; "
                             "give two hidden layers (e.g. hidden=[16, 16])")
        if isinstance(self.rbm, (list, tuple)):
            if len(self.rbm) != n_rbms or not all(isinstance(d, dict) or d is None
                                                  for d in self.rbm):
                raise ValueError(f"rbm must be one dict, or a list of {count(n_rbms, 'dict')} "
                                 f"(one per RBM), got {self.rbm!r}")
        elif self.rbm is not None and not isinstance(self.rbm, dict):
            raise ValueError(f"rbm must be a dict of RBM arguments or a list of them, got "
                             f"{self.rbm!r}")
        check_int(self.up_down_epochs, "up_down_epochs", minimum=0)
        check_float(self.up_down_learning_rate, "up_down_learning_rate", low=0.0,
                    low_open=True)
        check_int(self.up_down_gibbs_steps, "up_down_gibbs_steps", minimum=1)
        check_int(self.up_down_batch_size, "up_down_batch_size", minimum=1)
        check_backend_name(self.backend)
        if self.seed is not None:
            rng.check_seed(self.seed)
        check_estimator_verbose(self.verbose)
        # each RBM's options, as its own _check_params takes them (a set_params(batch_size=0)
        # after fit is refused here, not by the file it would write)
        self._build_rbms(rng.check_seed(self.seed if self.seed is not None else 0))

    def _build_rbms(self, seed=None):
        """The RBMs, bottom first, from the hyperparameters (checked here, each RBM's own
        ``_check_params``) and ``seed`` (by default the DBN's ``seed_``)."""
        rbms = []
        for index in range(len(self._hidden_sizes())):
            options = layer_options(self, index, seed)
            options.setdefault("verbose", self.verbose)
            try:
                rbm = inner_layer(rbm_class(index, self.visible)(**options))
                rbm._check_params()
                rbms.append(rbm)
            except (TypeError, ValueError) as error:
                raise ValueError(f"RBM {index + 1} of the DBN: {error}") from None
        return rbms

    def _check_saveable_chains(self, rbms, n_features):
        """Each of ``rbms``' persistent chains against what a model file holds
        (:meth:`dlcore.BernoulliRBM._check_saveable_chains`), all before the first RBM trains:
        an RBM past it was refused after its RBMs below had trained (by ``dlcore.save``, after
        the whole pretraining, until the RBMs checked their own)."""
        sizes = [int(n_features), *self._hidden_sizes()]
        for index, rbm in enumerate(rbms):
            labels = int(self.n_labels) if self._is_labelled_top(index) else 0
            try:
                rbm._check_saveable_chains(sizes[index] + labels)
            except ValueError as error:
                raise ValueError(f"RBM {index + 1} of the DBN: {error}") from None

    # -- greedy pretraining -------------------------------------------------------------
    def fit(self, X, y=None, X_valid=None, y_valid=None, progress=None, on_epoch_end=None,
            comm=None, sync_every=1, **unexpected):
        """Greedy layer-wise pretraining (then up-down, if ``up_down_epochs``).

        Parameters
        ----------
        X : (n, n_visible) array, in [0, 1] for binary visible units (``layers[0]`` columns
            when ``layers`` is given); or
            :class:`dlcore.lazy_rows.LazyRows` (read a batch at a time; the upper RBMs then
            train on :func:`~dlcore.dbn.stack.lazy_features`, needs ``propagate="mean"``)
        y : (n,) class labels, needed when ``n_labels`` > 0: numbers or strings, as any
            scikit-learn classifier takes them (``classes_`` holds them sorted, one per label
            unit: n_labels distinct labels), or the integers 0..n_labels-1 (then the label
            units' codes themselves, classes missing from ``y`` allowed)
        X_valid, y_valid : held-out data for each RBM's free-energy gap monitor, optional
        progress : callable, optional
            ``progress(layer, n_layers, epoch, epochs, batches_done, n_batches, error)``.
        on_epoch_end : callable, optional
            ``on_epoch_end(self)`` after every finished epoch of an RBM or of up-down, the DBN
            then at that epoch (what a checkpoint saves; :meth:`resume` continues from it).
        comm : dlcore.distributed.Communicator or an mpi4py communicator, optional
            Pretrain each RBM and run up-down data-parallel over its ranks
            (:mod:`dlcore.distributed`); the features passed up are computed alike on every
            rank.
        sync_every : int >= 1, with ``comm``: each RBM's local CD steps between two
            all-reduces (:meth:`dlcore.BernoulliRBM.fit`); 1 (the default): the exact path.
            Pretraining only: the up-down epochs never average parameters.

        Returns
        -------
        self

        Notes
        -----
        Interrupted (Ctrl-C, a notebook's Interrupt button: ``KeyboardInterrupt``), the RBM
        (or up-down pass) in training stays at its last finished epoch and the DBN refuses
        ``transform`` in one line until :meth:`resume` has trained the rest; it saves as it is
        (a checkpoint).
        """
        refuse_fit_arguments(self, "fit", unexpected)
        comm = periodic(comm, sync_every)
        self._check_params()
        self._check_up_down_possible()
        given = X
        X, y, classes = self._check_training_data(X, y, "X", "y", fitting=True)
        if X_valid is not None:
            X_valid, y_valid, _ = self._check_training_data(X_valid, y_valid, "X_valid",
                                                            "y_valid", classes,
                                                            width=X.shape[1])
        # the table's names only once nothing can refuse the fit: a refused refit (another
        # table's bad values or labels) left a fitted DBN the names of the table it refused,
        # so that it refused its own columns
        self._note_feature_names(given, reset=True)
        self._start_afresh(X, classes, labels=y is not None,
                           n_valid=None if X_valid is None else len(X_valid))
        return self._pretrain(X, y, X_valid, y_valid, progress, on_epoch_end, comm)

    def resume(self, X, y=None, X_valid=None, y_valid=None, progress=None, on_epoch_end=None,
               comm=None, sync_every=1, **unexpected):
        """Finish the training that :meth:`fit` started and an interruption stopped: the RBMs
        not trained yet, the epochs missing from a partly trained one, and the up-down epochs
        missing towards ``up_down_epochs``. With the same data, a DBN saved by an interrupted
        fit, loaded and resumed ends bit for bit where the uninterrupted fit ends (on the same
        backend). Arguments as for :meth:`fit`; returns self."""
        refuse_fit_arguments(self, "resume", unexpected)
        comm = periodic(comm, sync_every)
        self._check_started()
        self._check_params()
        self._check_up_down_possible()
        self._check_fitted_sizes("resume")
        self._check_resumed_settings()
        self._note_feature_names(X, reset=False)
        X, y, _ = self._check_training_data(X, y, "X", "y")
        if X_valid is not None:
            X_valid, y_valid, _ = self._check_training_data(X_valid, y_valid, "X_valid",
                                                            "y_valid")
        return self._pretrain(X, y, X_valid, y_valid, progress, on_epoch_end, comm)

    def _up_down_can_run(self, n_rbms=None):
        """Whether up-down fine-tuning can run on this DBN (of ``n_rbms`` RBMs; default: as
        its settings give): binary visible units and two RBMs or more. A fitted DBN that
        cannot owes no up-down epochs, whatever ``up_down_epochs`` says (a file of a dlcore
        that let such a DBN pretrain)."""
        n_rbms = len(self._hidden_sizes()) if n_rbms is None else n_rbms
        return self.visible == "bernoulli" and n_rbms >= 2

    def _check_up_down_possible(self):
        """``up_down_epochs`` where up-down cannot run, refused before the pretraining (it
        was refused after it, and the DBN left owing the epochs)."""
        if int(self.up_down_epochs) and not self._up_down_can_run():
            raise ValueError(f"up_down_epochs={self.up_down_epochs}: up-down fine-tuning needs "
                             f"binary visible units and at least two RBMs (layers with three "
                             f"or more sizes); give up_down_epochs=0, or such a DBN")

    def _layer_settings(self, index):
        return layer_options(self, index)

    def _start_afresh(self, X, classes, **record):
        """The state of a DBN that starts training on ``X`` (n, v) from nothing (``fit``, and
        ``partial_fit``'s first call): ``classes`` (or none), seed, layer sizes, fresh RBMs, no
        history; ``record`` goes to :func:`record_fit`. RBMs whose chains a model file
        cannot hold are refused first, the DBN left as it was."""
        seed = rng.check_seed(self.seed)
        rbms = self._build_rbms(seed)
        self._check_layers_follow_the_stack(rbms)
        for index, rbm in enumerate(rbms):
            # the label units are the DBN's: its top RBM's, one-hot rows the DBN builds
            wanted = int(self.n_labels) if self._is_labelled_top(index) else 0
            if getattr(rbm, "n_labels", 0) != wanted:
                raise ValueError(f"rbm gives RBM {index + 1} n_labels={rbm.n_labels!r}, but the "
                                 f"DBN's n_labels={self.n_labels!r} gives it {wanted}: give "
                                 f"the label units as DBN(n_labels=...) only (its top RBM's)")
        self._check_saveable_chains(rbms, X.shape[1])
        if classes is None:
            self.__dict__.pop("classes_", None)
        else:
            self.classes_ = classes
        self.seed_ = seed
        self.n_features_in_ = X.shape[1]
        self.layers_ = [X.shape[1], *self._hidden_sizes()]
        self.rbms_ = rbms
        self.generative_ = None
        self.history = {}
        self.sample_calls_ = self.up_down_updates_ = self.up_down_epochs_done_ = 0
        record_fit(self, X, **record)

    def partial_fit(self, X, y=None, classes=None, **unexpected):
        """One pass of greedy pretraining over the batch ``X``, layer by layer, continuing
        from the current RBMs (the first call builds them, as :meth:`fit` does): RBM 1 trains
        one epoch on ``X`` (:meth:`dlcore.BernoulliRBM.partial_fit`), then RBM 2 one epoch on
        ``X`` passed up through the RBM 1 just updated, and so on; with label units the top
        RBM sees the one-hot ``y``. For data that comes in parts (a stream, a data set larger
        than memory), as scikit-learn's ``BernoulliRBM.partial_fit`` and ``MLPClassifier``'s.

        What is sound, after lecture "Deep Neural Networks" (slide "DBN Greedy Learning"):
        the greedy scheme trains RBM 2 on the features of an RBM 1 that is *fixed*, since the
        bound that each added layer improves holds for the lower layers' weights as they are.
        A pass of partial_fit keeps that within the pass (each RBM trains on the features of
        the layers below as they are after their own update), but over several passes the
        upper RBMs learn from features that keep changing: the lecture's scheme is
        :meth:`fit` (one RBM to the end of its epochs before the next). Hence the one case
        where both agree: a first ``partial_fit(X)`` is ``fit(X)`` with ``epochs=1`` (the same
        weights, bit for bit on cpu), and so are k passes of a DBN of one RBM and
        ``epochs=k``; a DBN of several RBMs trained by k passes is not the greedy one of k
        epochs. Up-down fine-tuning (``up_down_epochs``) is not run: call :meth:`up_down`
        when the pretraining is done.

        Parameters
        ----------
        X : (n, n_visible) array, the batch (the width of the first call's ``X`` after it)
        y : (n,) labels, needed with label units (``n_labels`` > 0)
        classes : array of all the labels, or None: with label units on the first call, the
            labels of every batch to come (scikit-learn's argument: a first batch may lack
            some); None takes those of ``y`` (or the codes 0..n_labels-1). Afterwards the
            same classes or None (others are refused, as scikit-learn refuses them)

        Returns
        -------
        self. After each call every RBM counts as trained (its ``epochs`` is the passes it has
        had): the DBN transforms, samples, saves and loads as a fitted one. A call that ends
        in an exception (Ctrl-C, a diverged RBM) leaves the DBN as it found it, every RBM
        included (each RBM's own ``partial_fit`` does so for its pass): run again on the same
        batch, it ends as the uninterrupted call.
        """
        refuse_fit_arguments(self, "partial_fit", unexpected)
        with self._whole_pass_or_none():   # the whole pass, or none of it
            first = not hasattr(self, "rbms_")
            if not first:
                if self.generative_ is not None:
                    raise RuntimeError("this DBN was fine-tuned by up-down, which untied its "
                                       "generative weights from the RBMs: partial_fit would "
                                       "pretrain the RBMs under them; call fit(X) to start over")
                self._check_fitted()   # an interrupted fit: finish it with resume first
            self._check_params()
            if not first:
                self._check_fitted_sizes("partial_fit")
                self._take_new_settings(self._build_rbms())
            self._note_feature_names(X, reset=first)
            if first:
                known = None
                if classes is not None and self.n_labels:
                    known = self._classes_of(_numbers_or_strings(np.unique(np.asarray(classes)),
                                                                 "classes"), "classes")
                X, y, known = self._check_training_data(X, y, "X", "y", classes=known,
                                                        fitting=True)
                self._start_afresh(X, known, labels=y is not None, partial=True)
            else:
                if classes is not None and self.n_labels:
                    check_same_classes(self._classes_of(_numbers_or_strings(
                        np.unique(np.asarray(classes)), "classes"), "classes"),
                        getattr(self, "classes_", np.arange(int(self.n_labels))), "DBN")
                X, y, _ = self._check_training_data(X, y, "X", "y")
            if isinstance(X, LazyRows) and self.propagate == "sample" and len(self.rbms_) > 1:
                raise ValueError('propagate="sample" draws every row\'s states afresh each pass, '
                                 'which lazy rows (data on disk) cannot give: use propagate="mean" '
                                 "or pass the data as an array")
            features = X
            for index, rbm in enumerate(self.rbms_):
                if self.propagate == "sample" and index > 0:
                    # states drawn afresh for the pass, from the stream fit draws that epoch's
                    step = rbm.epochs_done_ if hasattr(rbm, "W") else 0
                    features = layer_input(self.rbms_, X, index, "sample", self.seed_, step)
                if hasattr(rbm, "W"):
                    self._restore_layer_history(index, rbm)
                self._announce_layer(index)
                try:
                    rbm.partial_fit(self._visible_rows(index, features, y))
                except TrainingDiverged as error:
                    raise error.located(f"RBM {index + 1} of the DBN: ") from None
                finally:
                    if hasattr(rbm, "W"):
                        self._record_layer(index, rbm)
                        rbm.epochs = max(rbm.epochs_done_, 1)   # trained: transform, save take it
                if index + 1 < len(self.rbms_) and self.propagate == "mean":
                    features = (lazy_features(features, [rbm]) if isinstance(X, LazyRows)
                                else rbm.transform(features))
            return self

    def _pretrain(self, X, y, X_valid, y_valid, progress, on_epoch_end=None, comm=None):
        """Train every RBM that is not fully trained yet, bottom up, then the missing up-down
        epochs. A layer that diverges or is interrupted keeps its last finished epoch, and its
        history so far is recorded (what :meth:`resume` continues from)."""
        with fitting(self):
            return self._pretrain_layers(X, y, X_valid, y_valid, progress, on_epoch_end, comm)

    def _pretrain_layers(self, X, y, X_valid, y_valid, progress, on_epoch_end=None,
                         comm=None):
        features, valid_features = X, X_valid
        lazy = isinstance(X, LazyRows)
        if lazy and self.propagate == "sample" and len(self.rbms_) > 1:
            raise ValueError('propagate="sample" draws every row\'s states afresh each epoch, '
                             'which lazy rows (data on disk) cannot give: use propagate="mean" '
                             "or pass the data as an array")
        for index, rbm in enumerate(self.rbms_):
            if not self._layer_trained(index):
                report = None if progress is None else (
                    lambda *arguments, index=index: progress(index + 1, len(self.rbms_),
                                                             *arguments))
                valid_rows = (None if valid_features is None
                              else self._visible_rows(index, valid_features, y_valid))

                def layer_epoch_end(rbm, index=index):
                    self._record_layer(index, rbm)
                    if on_epoch_end is not None:
                        on_epoch_end(self)
                self._announce_layer(index)
                try:
                    self._train_layer(index, features, X, y, valid_rows, report, layer_epoch_end,
                                      comm)
                except TrainingDiverged as error:
                    raise error.located(f"RBM {index + 1} of the DBN: ") from None
                finally:
                    if hasattr(rbm, "W"):
                        self._record_layer(index, rbm)
            if index + 1 < len(self.rbms_) and lazy:   # computed a batch at a time
                features = lazy_features(features, [rbm])
            elif index + 1 < len(self.rbms_):
                features = rbm.transform(features) if self.propagate == "mean" else X
                if valid_features is not None:
                    valid_features = rbm.transform(valid_features)
        remaining = int(self.up_down_epochs) - self.up_down_epochs_done_
        if remaining > 0:
            self._up_down(X, y, remaining, on_epoch_end=on_epoch_end, comm=comm)
        return self

    def _train_layer(self, index, features, X, y, valid_rows, report, on_epoch_end, comm=None):
        """Train RBM ``index`` from its start, or on from its last finished epoch."""
        rbm = self.rbms_[index]
        if self.propagate == "sample" and index > 0:
            self._fit_on_fresh_samples(index, X, y, valid_rows, report, on_epoch_end, comm)
            return
        rows = self._visible_rows(index, features, y)
        if not hasattr(rbm, "W"):
            rbm.fit(rows, X_valid=valid_rows, progress=report, on_epoch_end=on_epoch_end,
                    comm=comm)
            return
        self._restore_layer_history(index, rbm)
        rbm.resume(rows, X_valid=valid_rows, progress=report, on_epoch_end=on_epoch_end,
                   comm=comm)

    def _check_training_data(self, X, y, x_name, y_name, classes=None, fitting=False,
                             width=None):
        """``(X, codes, classes)``: the rows checked (``width`` columns: by default the fitted
        ``n_features_in_``; ``fitting``, any width ``layers`` allows) and, with label units, the
        label unit of each label of ``y`` (int64 codes) among ``classes`` (given; the fitted
        ``classes_``; or, ``fitting``, those of ``y`` as :meth:`_classes_of` finds them); None, None
        without label units."""
        X = check_matrix(X, x_name, "DBN")
        if fitting:   # what fit is given decides the width
            self._check_fit_width(X, x_name)
        else:
            check_width(X, x_name, "DBN", self.n_features_in_ if width is None else width)
        X = check_data(X, x_name, unit_interval=self.visible == "bernoulli")
        if not self.n_labels:
            return X, None, None
        if y is None:
            # in scikit-learn's words, which its checks (and users of its classifiers) know
            raise ValueError(f"DBN requires {y_name} to be passed, but the target {y_name} is "
                             f"None: this DBN has n_labels={self.n_labels} label units on its "
                             "top RBM")
        labels = as_array(y, y_name)
        if labels.ndim == 2 and labels.shape[1] == 1:
            warnings.warn(f"A column-vector {y_name} was passed when a 1d array was expected: "
                          f"{y_name} is read as {y_name}.ravel()", data_conversion_warning(),
                          stacklevel=3)
            labels = labels.ravel()
        if labels.shape != (len(X),):
            raise ValueError(f"{y_name} must hold one class label per row of {x_name}, shape "
                             f"({len(X)},), got shape {labels.shape}")
        labels = _numbers_or_strings(labels, y_name)
        if classes is None:
            classes = self._classes_of(labels, y_name) if fitting else self.classes_
        return X, _codes(labels, classes, y_name), classes

    def _classes_of(self, labels, y_name):
        """``classes_`` of the labels ``fit`` is given: the integers 0..n_labels-1 (as the
        labels' dtype) when every label is one of them, the label units' own codes (a class
        may then be missing, as in a small fold); else the sorted distinct labels, which must
        be n_labels many (scikit-learn's LabelEncoder: labels 1..10, strings)."""
        n_labels = int(self.n_labels)
        classes = np.unique(labels)
        if labels.dtype.kind in "biuf" and classes[0] >= 0 and classes[-1] < n_labels:
            return np.arange(n_labels).astype(labels.dtype)
        if len(classes) != n_labels:
            # one class is no classification: n_labels=1 would be no fix
            resized = f"n_labels={len(classes)}, or " if len(classes) > 1 else ""
            raise ValueError(f"{y_name} holds {count(len(classes), 'class', 'classes')} "
                             f"({_listed(classes)}) for "
                             f"the DBN's n_labels={n_labels} label units: give {resized}"
                             f"y with {n_labels} distinct labels "
                             f"(or the label units' codes 0..{n_labels - 1}, which may leave "
                             f"classes out)")
        return classes

    def _is_labelled_top(self, index):
        return bool(self.n_labels) and index == len(self._hidden_sizes()) - 1

    def _visible_rows(self, index, features, y):
        """What RBM ``index`` sees: the features, with the one-hot label on the top RBM."""
        if not self._is_labelled_top(index):
            return features
        if isinstance(features, LazyRows):
            return lazy_features(features, [], y, int(self.n_labels))
        return with_labels(features, y, int(self.n_labels))

    def _fit_on_fresh_samples(self, index, X, y, valid_rows, report, on_epoch_end=None,
                              comm=None):
        """``propagate="sample"``: RBM ``index`` trains epoch e on binary states drawn afresh
        from the data up (stack.layer_input at step e); initialised from epoch 0's states."""
        rbm = self.rbms_[index]
        epochs = rbm.epochs

        def rows(epoch):
            states = layer_input(self.rbms_, X, index, "sample", self.seed_, epoch)
            return self._visible_rows(index, states, y)

        if hasattr(rbm, "W"):
            self._restore_layer_history(index, rbm)
        else:
            first_rows = rows(0)
            rbm.initialize(first_rows)
            record_fit(rbm, first_rows, epochs=int(epochs),
                       n_valid=None if valid_rows is None else len(valid_rows))
        for epoch in range(rbm.epochs_done_, epochs):
            step_report = None if report is None else (
                lambda _e, _n, *rest, epoch=epoch: report(epoch + 1, epochs, *rest))
            rbm.partial_fit(rows(epoch), X_valid=valid_rows, progress=step_report,
                            on_epoch_end=on_epoch_end, comm=comm)

    # -- using the stack ----------------------------------------------------------------
    def _check_fitted(self):
        """Every RBM trained, and the up-down epochs that ``fit`` owes done: a DBN that an
        interruption stopped before (or during) its up-down fine-tuning is not the model its
        settings describe (up-down moves the recognition weights too), so it is refused in
        one line naming ``resume``. A DBN built by ``partial_fit`` owes none (it never runs
        up-down: :meth:`up_down` fine-tunes it); the DBN that ``on_epoch_end`` is given
        between up-down epochs is the model so far, in use as Keras's callbacks use theirs."""
        super()._check_fitted()
        if self._built_by_partial_fit() or getattr(self, "_fine_tuning", False) \
                or not self._up_down_can_run(len(self.rbms_)):
            return
        done, owed = self.up_down_epochs_done_, int(self.up_down_epochs)
        if done < owed:
            # (a fit's settings are not stored apart: up_down_epochs raised since the fit
            # owes epochs too)
            raise RuntimeError(f"this DBN has done up-down epoch {done} of {owed} (its training "
                               f"was interrupted before its up-down fine-tuning ended, or "
                               f"up_down_epochs was raised since): finish it with "
                               f"dbn.resume(X{', y' if self.n_labels else ''}) (or `dlcore dbn "
                               f"pretrain --resume FILE`), or set_params(up_down_epochs={done}) "
                               f"to use it as it is")

    def _lower_features(self, X):
        """Q(h = 1 | ...) of the penultimate layer: the means up through every RBM but the top."""
        self._check_fitted()
        self._note_feature_names(X, reset=False)
        features = check_matrix(X, "X", "DBN")
        self._check_fitted_width(features, "X")
        features = check_data(features, "X")
        for rbm in self.rbms_[:-1]:
            features = rbm.transform(features)
        return features

    def transform(self, X):
        """Top-layer features: Q(h = 1 | ...) passed up as means through every RBM,
        (n, n_features_in_) -> (n, layers_[-1]) float32 (a pandas or polars table after
        :meth:`set_output`). With label units the top RBM sees no label (its label units off),
        as the network of :meth:`to_network` does."""
        features = self._lower_features(X)
        top = self.rbms_[-1]
        if self.n_labels:
            features = np.hstack([features, np.zeros((len(features), int(self.n_labels)),
                                                     np.float32)])
        return self._wrap_output(X, top.transform(features))

    def fit_transform(self, X, y=None, **fit_params):
        """``fit(X, y, **fit_params)`` then :meth:`transform` of ``X`` (scikit-learn's
        ``TransformerMixin``): the top-layer features of the rows it was trained on."""
        return self.fit(X, y, **fit_params).transform(X)

    def to_network(self, n_classes=None, activation="sigmoid", dropout=0.0, input_dropout=0.0,
                   seed=None, backend=None, augment=None):
        """A :class:`dlcore.Sequential` initialised from the RBMs, ready for fine-tuning.

        One ``Dense`` layer per RBM whose kernel is the RBM's W (n_visible, n_hidden) (a Dense
        kernel is (in, out)) and whose bias is the RBM's hidden bias, so that before any
        training its hidden layers compute :meth:`transform`'s Q(h = 1 | ...) exactly (with
        ``activation="sigmoid"``; a Gaussian first layer's W is divided by sigma, a labelled top
        RBM's label rows are left out). On top: ``Dense(n_classes, activation="softmax")``
        with Glorot-uniform weights from the network's seed. Compile it with any loss,
        optimiser and regulariser of :mod:`dlcore.network`.

        Parameters
        ----------
        n_classes : int, the number of outputs (default: ``n_labels``)
        activation : activation of the hidden layers
        dropout, input_dropout : float in [0, 1), rates of ``Dropout`` layers after every
            hidden layer and before the first (0: none; they are the identity outside
            training, so the hidden layers still compute :meth:`transform`)
        seed : int, the network's seed (default: the DBN's)
        backend : the network's backend (default: the DBN's)
        augment : dict or None, arguments of a first
            :class:`dlcore.layers.ImageAugmentation` layer that moves the training images
            (``image_shape`` says how the rows hold them, e.g. ``{"max_shift": 2,
            "image_shape": (1, 28, 28)}``); the identity outside training

        Returns
        -------
        Sequential, built for inputs (n_features_in_,)
        """
        from dlcore.models import stacked_network
        self._check_fitted()
        if n_classes is None and not self.n_labels:
            # the default is n_labels, which a DBN without label units does not have
            raise ValueError("to_network() needs n_classes=K, the number of outputs of its "
                             "softmax layer, for a DBN without label units (n_labels=0): e.g. "
                             "dbn.to_network(n_classes=10)")
        n_classes = self.n_labels if n_classes is None else n_classes
        check_int(n_classes, "n_classes", minimum=1)
        weights = []
        for index, rbm in enumerate(self.rbms_):
            # the first layer takes raw data: its visible units say which weights act on it
            kernel = rbm._visible_units().weights_on_data(rbm._parameters())
            if self._is_labelled_top(index):
                kernel = kernel[:-int(self.n_labels)]
            weights.append((kernel, rbm.hidden_bias))
        return stacked_network(weights, n_classes, activation=activation, dropout=dropout,
                               input_dropout=input_dropout, prefix="rbm", name="dbn",
                               backend=self.backend if backend is None else backend,
                               seed=self.seed_ if seed is None else seed, augment=augment)

    def log_likelihood_bound(self, X, method="ais", **options):
        """Salakhutdinov & Murray's (2008) variational lower bound on the mean log p(v) of the
        rows of ``X``, in nats per sample, with log Z of the top RBM by AIS (and RAISE's
        bracket) or exact (``method="exact"``); ``options`` as for
        :func:`dlcore.dbn.bound.log_likelihood_bound`. Returns a
        :class:`~dlcore.rbm.ais.LogLikelihood` (``mean`` is the bound)."""
        from .bound import log_likelihood_bound
        return log_likelihood_bound(self, X, method=method, **options)

    # -- labels: classification by free energy ------------------------------------------
    @WithLabelUnits
    def decision_function(self, X):
        """-F([features(x), e_k]) for every class k: minus the top RBM's free energy with the
        label clamped to k, in float64 (n, n_labels); with two label units scikit-learn's one
        score per row, (n,), that of the second class: -F(.., e_1) + F(.., e_0), the log-odds
        of ``classes_[1]`` (what ``roc_auc`` scoring and ``RocCurveDisplay`` take). With
        a = c + f W_f (the features' hidden input) and W_k the row of label unit k:

            F(f, e_k) = -b_f . f - b_k - sum_j softplus(a_j + W_kj)
        """
        scores = self._minus_free_energies(X)
        return scores[:, 1] - scores[:, 0] if scores.shape[1] == 2 else scores

    def _minus_free_energies(self, X):
        """-F([features(x), e_k]), (n, n_labels) float64: :meth:`decision_function`'s scores
        of every class."""
        features = self._lower_features(X).astype(np.float64)
        top = self.rbms_[-1]
        W, b, c = (np.asarray(a, np.float64) for a in (top.W, top.visible_bias, top.hidden_bias))
        K = int(self.n_labels)
        hidden_input = features @ W[:-K] + c
        scores = np.empty((len(features), K))
        for k in range(K):
            scores[:, k] = (features @ b[:-K] + b[-K + k]
                            + softplus(hidden_input + W[-K + k]).sum(axis=1))
        return scores

    @WithLabelUnits
    def predict_proba(self, X):
        """P(label = k | x) = softmax_k(-F(features(x), e_k)), (n, n_labels) float64, columns
        in the order of ``classes_``."""
        return softmax(self._minus_free_energies(X))

    @WithLabelUnits
    def predict(self, X):
        """The class whose label gives the lowest free energy of the top RBM, (n,) labels of
        ``classes_``."""
        scores = self._minus_free_energies(X)   # first: an unfitted DBN has no classes_
        return self.classes_[scores.argmax(axis=1)]

    predict_log_proba = WithLabelUnits(LogProbabilities.predict_log_proba)

    @property
    def score(self):
        """``score(X, y, sample_weight=None)``: the mean accuracy of :meth:`predict` on
        (X, y), scikit-learn's ``ClassifierMixin.score``, so that ``cross_val_score`` and
        ``GridSearchCV`` need no ``scoring=``. Only a DBN with label units has it (as
        scikit-learn's ``available_if``): without them there is nothing to score, and
        scikit-learn then asks for a ``scoring=``."""
        if not self.n_labels:
            raise AttributeError("score is the accuracy of a DBN with label units "
                                 "(n_labels > 0); this DBN has none: score a classifier on "
                                 "its transform, or fine-tune to_network(n_classes=K)")
        return self._accuracy

    def _accuracy(self, X, y, sample_weight=None):
        return AccuracyScore.score(self, X, y, sample_weight)

    # -- generation ---------------------------------------------------------------------
    def sample(self, n_samples=100, steps=_DEFAULT_SAMPLE_STEPS, label=None, sampler=None,
               seed=None, *, gibbs_steps=None, probabilities=True):
        """Fantasies of the generative model: ``steps`` of block Gibbs sampling (or parallel
        tempering) in the top RBM (label units clamped to ``label`` when given), then one pass
        down through the lower layers, each a sample of P(h_i | h_{i+1}) = sigm(g_i + h_{i+1}
        G_i') but the last, the data's units, returned as their probabilities P(v = 1 | h_1)
        (binary visible units) or means E[v | h_1] (Gaussian), or with ``probabilities=False``
        as a sample drawn from them.

        Parameters
        ----------
        n_samples : int
        steps : int >= 1
            Gibbs steps in the top RBM, the name :meth:`dlcore.BernoulliRBM.sample` gives them.
        gibbs_steps : int >= 1, optional
            The older name of ``steps``, still taken (keyword only); given with ``steps``, the
            two must agree (an explicit ``steps=1000`` too: ValueError).
        label : a class of ``classes_`` or (n_samples,) of them, optional (DBNs with label
            units)
        sampler : {"gibbs", "pt"} or None
            Block Gibbs chains in the top RBM from a random start, or parallel tempering on
            the top RBM's ladder (:meth:`dlcore.BernoulliRBM.sample`; not with ``label``).
            None (the default): the top RBM's own, by the rule of
            :meth:`dlcore.BernoulliRBM.sample`: "pt" when the top RBM was trained with
            ``sampler="pt"`` (``DBN(sampler=[..., "pt"])`` or ``rbm=``; its file records it),
            else "gibbs"; with ``label``, "gibbs" (clamping the label units needs Gibbs
            steps).
        seed : int or None
            Philox key of the draws; None continues the model's own sequence (successive
            calls draw fresh samples). Same seed, same samples on every backend.
        probabilities : bool, keyword only
            True (the default, unlike :meth:`dlcore.BernoulliRBM.sample`'s): return the
            probabilities P(v = 1 | h_1) of the data's units (means E[v | h_1] for Gaussian
            ones) given the sampled h_1, the expected picture of each sample without the
            pixel noise of one draw; what this method has always returned. False: a sample
            drawn from them, binary states (real values for Gaussian units), what
            :meth:`dlcore.BernoulliRBM.sample` returns by default (``dlcore dbn sample
            --binary``). The same chains either way: with the same seed, the sample is a draw
            from the probabilities returned with True.

        Returns
        -------
        (n_samples, n_features_in_) float32
        """
        self._check_fitted()
        n_samples = check_int(n_samples, "n_samples", minimum=1)
        if gibbs_steps is not None:
            # the default object, not the number: an explicit steps=1000 disagrees with
            # gibbs_steps=3 as any other number would
            if steps is not _DEFAULT_SAMPLE_STEPS and steps != gibbs_steps:
                raise ValueError(f"give steps or gibbs_steps (its older name), not both: "
                                 f"steps={steps!r} and gibbs_steps={gibbs_steps!r} disagree")
            steps = gibbs_steps
        steps = check_int(steps, "steps", minimum=1)
        top = self.rbms_[-1]
        K = int(self.n_labels)
        if sampler is not None and sampler not in SAMPLING_METHODS:
            raise ValueError(f"sampler must be 'gibbs' or 'pt', got {sampler!r}")
        probabilities = check_bool(probabilities, "probabilities")
        # a refused call draws nothing: the call counter, the position of the samples in
        # the model's Philox stream, moves only for a call that samples
        requested = None
        if seed is not None:
            seed = rng.check_seed(seed)
        if label is not None:
            if not K:
                raise ValueError("label= needs a DBN trained with label units: "
                                 "DBN(..., n_labels=10).fit(X, y)")
            if sampler == "pt":
                raise ValueError("label= clamps the label units, which parallel tempering "
                                 "does not: sample with sampler='gibbs'")
            requested = self._label_rows(label, n_samples, K)
            sampler = "gibbs"
        elif sampler is None:
            sampler = default_sampling_method(top.sampler)
        # the Philox key and step of every draw (the start, the labels, the top RBM's chains,
        # the pass down): a seed given is its own sequence from its start, as the RBM's, and
        # leaves the model's (the DBN's and its top RBM's call counters) where it was
        if seed is None:
            self.sample_calls_ += 1
            draws = (self.seed_, self.sample_calls_)
        else:
            draws = (seed, 0)
        # a DBN of one RBM has no pass down: its last Gibbs step gives the probabilities, or
        # the sample drawn from them
        last_step_probabilities = probabilities and len(self.rbms_) == 1
        if sampler == "pt":
            visible = top.sample(n_samples, steps, sampler="pt", seed=seed,
                                 probabilities=last_step_probabilities)
            return self._down_pass(visible[:, :visible.shape[1] - K], draws,
                                   probabilities).astype(np.float32)
        start = (rng.uniform(n_samples, top.W.shape[0], draws[0], STREAM_GENERATE,
                             2 * draws[1]) < 0.5).astype(np.float32)
        clamped = None
        if K:
            start_labels = (requested if requested is not None
                            else self._label_rows(None, n_samples, K, draws))
            start[:, -K:] = start_labels
            clamped = requested
        visible = top.gibbs(start, steps=steps, clamped=clamped,
                            probabilities=last_step_probabilities, seed=seed)
        states = visible[:, :visible.shape[1] - K]
        return self._down_pass(states, draws, probabilities).astype(np.float32)

    def _label_rows(self, label, n_samples, n_labels, draws=None):
        """One-hot rows of the requested labels, or when ``label`` is None of random ones,
        drawn at ``draws``, the (key, call) of :meth:`sample`."""
        if label is None:
            key, call = draws
            labels = (rng.uniform(n_samples, 1, key, STREAM_GENERATE,
                                  2 * call + 1)[:, 0] * n_labels).astype(int)
        else:
            labels = np.asarray(label)
            if labels.ndim > 1 or (labels.ndim == 1 and len(labels) != n_samples):
                raise ValueError(f"label must be one class of classes_ or one per sample "
                                 f"({n_samples}), got shape {labels.shape}")
            labels = _codes(_numbers_or_strings(np.broadcast_to(labels, (n_samples,)),
                                                "label"), self.classes_, "label")
        return np.eye(n_labels, dtype=np.float32)[labels]

    def _generative_weights(self, index):
        """(G_i, g_i): untied after up-down, else the RBM's own W and visible bias."""
        if self.generative_ is not None:
            return self.generative_[index]
        return self.rbms_[index].W, self.rbms_[index].visible_bias

    def _down_pass(self, states, draws, probabilities=True):
        """The samples of P(h_i | h_{i+1}) from the top down, drawn at ``draws``, the
        (key, call) of :meth:`sample`; the bottom layer's means, or without ``probabilities``
        a sample of them (drawn at stream STREAM_GENERATE + 1, the bottom layer's)."""
        key, call = draws
        for index in range(len(self.rbms_) - 2, -1, -1):
            G, g = (np.asarray(a, np.float64) for a in self._generative_weights(index))
            if index == 0:  # the data's own units: their mean, E[v | h1] (a sigmoid if binary)
                bottom = self.rbms_[0]
                means = bottom._visible_units().visible_mean(
                    states, dict(bottom._parameters(), W=G, visible_bias=g))
                if probabilities:
                    return means
                if self.visible == "gaussian":   # v ~ N(E[v | h1], sigma^2)
                    return means + bottom.visible_sigma * rng.normal(
                        *means.shape, key, STREAM_GENERATE + 1, call)
                return (rng.uniform(*means.shape, key, STREAM_GENERATE + 1, call)
                        < means).astype(np.float64)
            probability = visible_probability(states, G, g)
            u = rng.uniform(*probability.shape, key, STREAM_GENERATE + 1 + index, call)
            states = (u < probability).astype(np.float64)
        return states

    # -- up-down fine-tuning ------------------------------------------------------------
    def up_down(self, X, y=None, epochs=1, learning_rate=None, gibbs_steps=None,
                batch_size=None, progress=None, on_epoch_end=None, comm=None):
        """Fine-tune the generative model by up-down (contrastive wake-sleep), untying the
        generative weights ``generative_`` from the recognition weights (the RBMs' W and
        hidden biases); see :mod:`dlcore.dbn.updown`. Needs binary visible units and at least
        two RBMs. ``on_epoch_end(self)``, then ``progress(epoch, epochs, error)``, after each
        epoch.
        ``comm`` (a :class:`dlcore.distributed.Communicator`): train data-parallel over its
        ranks (:mod:`dlcore.distributed.updown`). Returns self."""
        LayerStack._check_fitted(self)   # every RBM trained (up-down epochs may be owed)
        self._check_params()
        X, codes, _ = self._check_training_data(X, y, "X", "y")
        return self._up_down(X, codes, epochs, learning_rate, gibbs_steps, batch_size,
                             progress, on_epoch_end, comm)

    def _up_down(self, X, y, epochs, learning_rate=None, gibbs_steps=None, batch_size=None,
                 progress=None, on_epoch_end=None, comm=None):
        """:meth:`up_down` on checked rows ``X`` and label-unit codes ``y`` (None without
        label units): what ``fit`` runs after pretraining, whose labels are codes already
        (given to :meth:`up_down` again, they were looked up among ``classes_`` a second
        time, and a fit on string labels failed)."""
        if self.visible != "bernoulli" or len(self.rbms_) < 2:
            raise ValueError("up-down fine-tuning needs binary visible units and at least two "
                             "RBMs (layers with three or more sizes)")
        epochs = check_int(epochs, "epochs", minimum=0)
        if self.generative_ is None:
            self.generative_ = [(rbm.W.copy(), rbm.visible_bias.copy())
                                for rbm in self.rbms_[:-1]]
        learner = UpDown(self, learning_rate or self.up_down_learning_rate,
                         gibbs_steps or self.up_down_gibbs_steps,
                         batch_size or self.up_down_batch_size, rows=X.shape[0])
        be = learner.backend
        passes = learner
        if comm is not None:
            from dlcore.distributed.updown import data_parallel
            passes = data_parallel(learner, comm, X, y, epochs)
        data = X if isinstance(X, LazyRows) else be.asarray(X)   # lazy: a batch at a time
        labels = None if y is None else be.asarray(np.eye(int(self.n_labels),
                                                          dtype=np.float32)[y])
        errors = self.history.setdefault("up_down_reconstruction_error", [])
        # no command-line option sets this rate: the advice names the parameter
        divergence = DivergenceCheck("generative reconstruction error",
                                     learning_rate or self.up_down_learning_rate, errors,
                                     setting="up_down_learning_rate", option=None)
        # The learner updates the arrays it was given in place on host backends: the DBN keeps
        # copies, refreshed after every good epoch and kept when an epoch fails.
        last_good = self._up_down_snapshot(learner)
        # the DBN that on_epoch_end is given between up-down epochs is in use, not stopped
        self._fine_tuning = True
        try:
            with be.compute():
                for epoch in range(epochs):
                    updates, error = passes.epoch(data, labels, self.up_down_epochs_done_,
                                                  self.up_down_updates_)
                    divergence.check(self.up_down_epochs_done_ + 1, error,
                                     [array for pair in learner.recognition + learner.generative
                                      for array in (be.to_numpy(pair[0]),
                                                    be.to_numpy(pair[1]))],
                                     where="up-down fine-tuning of the DBN: ")
                    self.up_down_updates_ = updates
                    self.up_down_epochs_done_ += 1
                    errors.append(error)
                    last_good = self._up_down_snapshot(learner)
                    if self.verbose:
                        print(f"[DBN] up-down epoch {self.up_down_epochs_done_}: generative "
                              f"reconstruction error {error:.5f}", file=sys.stderr)
                    # the epoch's line once its checkpoint is written: what a Ctrl-C after
                    # the line saves is the epoch the line names
                    if on_epoch_end is not None:
                        on_epoch_end(self)
                    if progress is not None:
                        progress(epoch + 1, epochs, error)
        except BaseException:
            self.rbms_, self.generative_ = last_good
            raise
        finally:
            self.__dict__.pop("_fine_tuning", None)
        return self

    def _up_down_snapshot(self, learner):
        """``(rbms_, generative_)``: copies of the learner's weights, now the DBN's own."""
        learner.download()
        self.rbms_ = [copy.deepcopy(rbm) for rbm in self.rbms_]
        return list(self.rbms_), list(self.generative_)

    # -- files --------------------------------------------------------------------------
    def get_config(self):
        """The constructor arguments, JSON-serialisable (hidden, layers and per-layer lists as
        lists)."""
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
        """The DBN of a file's config, its hyperparameters checked now (``__init__`` only
        stores them), so that a file with bad ones is refused at load."""
        model = cls(**config)
        model._check_params()
        return model

    def get_state(self):
        """``rbms/rbm_<i>``: each RBM's own state (:meth:`dlcore.BernoulliRBM.get_state`) with
        its class and hyperparameters as attributes; ``generative/layer_<i>`` (``W``,
        ``visible_bias``) once up-down has untied them; ``training``: counters, and
        ``rbms_started`` when an interrupted pretraining has not reached every RBM yet (only
        those RBMs are stored; :meth:`resume` trains the others); with label units,
        ``classes``: ``classes_`` as a JSON list of numbers or strings."""
        if not hasattr(self, "rbms_"):
            self._check_fitted()
        started = [rbm for rbm in self.rbms_ if hasattr(rbm, "W")]
        if not started:
            raise RuntimeError("this DBN has not finished an epoch yet: there is nothing to save")
        rbms = {}
        for index, rbm in enumerate(started):
            group = dict(rbm.get_state())
            group["model_class"] = type(rbm).__name__
            what = f"{type(rbm).__name__}.get_config()"
            group["hyperparameters"] = json_text(rbm.get_config(), what)
            rbms[f"rbm_{index}"] = group
        state = {"rbms": rbms,
                 "training": {"seed": str(self.seed_), "sample_calls": self.sample_calls_,
                              "up_down_updates": self.up_down_updates_,
                              "up_down_epochs_done": self.up_down_epochs_done_}}
        if len(started) < len(self.rbms_):
            state["training"]["rbms_started"] = len(started)
        if self.generative_ is not None:
            state["generative"] = {f"layer_{i}": {"W": G, "visible_bias": g}
                                   for i, (G, g) in enumerate(self.generative_)}
        if self.n_labels:   # numbers or strings, as JSON text: never a pickle
            state["classes"] = json.dumps(self.classes_.tolist())
        return state

    def set_state(self, state):
        """Rebuild every RBM from its group and check every shape against ``layers``, or, with
        ``hidden``, against it and the width of the bottom RBM; assign only when all of it is
        valid."""
        n_rbms = len(self._hidden_sizes())
        sizes = None
        training = state["training"]
        n_started = int(training.get("rbms_started", n_rbms))
        if not 1 <= n_started <= n_rbms:
            raise ValueError(f"training/rbms_started = {n_started} is not in [1, {n_rbms}]")
        rbms = []
        for index in range(n_started):
            group = dict(state["rbms"][f"rbm_{index}"])
            class_name = group.pop("model_class")
            if class_name not in RBM_CLASSES:
                raise ValueError(f"rbms/rbm_{index} has unknown model_class {class_name!r}")
            rbm = inner_layer(RBM_CLASSES[class_name].from_config(
                json.loads(group.pop("hyperparameters"))))
            rbm.set_state(group)
            labels = int(self.n_labels) if self._is_labelled_top(index) else 0
            if sizes is None:   # the width: layers[0], or the bottom RBM's own
                sizes = [int(self.layers[0]) if self.layers is not None
                         else max(rbm.W.shape[0] - labels, 0), *self._hidden_sizes()]
            expected = (sizes[index] + labels, sizes[index + 1])
            if rbm.W.shape != expected:
                given = (f"layers={self._listed('layers')}" if self.layers is not None
                         else f"hidden={sizes[1:]}")
                raise ValueError(f"dataset 'rbms/rbm_{index}/W' has shape {rbm.W.shape}; "
                                 f"expected {expected} from {given}")
            rbms.append(rbm)
        generative = None
        if "generative" in state:
            generative = []
            for index in range(n_rbms - 1):
                key = f"generative/layer_{index}"
                shape = (sizes[index], sizes[index + 1])
                generative.append((
                    np.array(require_array(state, f"{key}/W", shape), np.float32),
                    np.array(require_array(state, f"{key}/visible_bias", shape[:1]),
                             np.float32)))
        counters = {name: int(training[name]) for name in
                    ("seed", "sample_calls", "up_down_updates", "up_down_epochs_done")}
        classes = None
        if self.n_labels:   # files written before classes_ existed: the codes 0..K-1
            classes = (np.arange(int(self.n_labels)) if "classes" not in state else
                       classes_from_list(json.loads(state["classes"]), int(self.n_labels)))
        elif "classes" in state:
            raise ValueError("'classes' is stored for a DBN without label units")
        self.seed_ = counters["seed"]
        # RBMs an interrupted pretraining had not reached: built as fit builds them
        rbms += self._build_rbms()[n_started:]
        self.rbms_, self.generative_ = rbms, generative
        self.sample_calls_ = counters["sample_calls"]
        self.up_down_updates_ = counters["up_down_updates"]
        self.up_down_epochs_done_ = counters["up_down_epochs_done"]
        self.n_features_in_, self.layers_ = sizes[0], sizes
        if classes is None:
            self.__dict__.pop("classes_", None)
        else:
            self.classes_ = classes
        if not hasattr(self, "history"):
            self.history = {}

    def __sklearn_tags__(self):
        """A classifier for scikit-learn (stratified folds, ``is_classifier``) when it has
        label units, else a transformer; float32 features; data in [0, 1] (non-negative) for
        binary visible units."""
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]   # computes and returns float32
        tags.input_tags.positive_only = self.visible == "bernoulli"
        if self.n_labels:
            from sklearn.utils import ClassifierTags
            tags.estimator_type = "classifier"
            tags.classifier_tags = ClassifierTags()
            tags.target_tags.required = True
        return tags

    def _has_state(self):
        """pickle goes through the file's config and state (arrays and plain values,
        :func:`dlcore.params.reduce_through_state`); a DBN none of whose RBMs has trained an
        epoch has no state."""
        return any(hasattr(rbm, "W") for rbm in getattr(self, "rbms_", ()))
