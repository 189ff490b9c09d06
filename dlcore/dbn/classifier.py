"""``DBNClassifier``: a Deep Belief Network as a scikit-learn style classifier, in one line.

Lecture "Deep Neural Networks" (DBN/RBM): "Unsupervised pre-learning provides a good
initialization of the network; supervised fine-tuning". ``fit`` does both, with the defaults of
``dlcore dbn pretrain`` and ``dlcore dbn finetune`` below 10,000 training images: greedy
layer-wise pretraining of a :class:`dlcore.DBN` (slide "DBN Greedy Learning"), then
:meth:`dlcore.DBN.to_network` (the RBMs' weights as sigmoid ``Dense`` layers, with dropout,
under a softmax layer, the training images shifted at random by up to ``shift`` pixels) trained
by back-propagation with cross-entropy and early stopping on a validation split::

    clf = dlcore.DBNClassifier(hidden=(500, 500)).fit(X_train, y_train)   # rows in [0, 1]
    clf.score(X_test, y_test)

The scikit-learn contract without importing scikit-learn: ``__init__`` only stores the
hyperparameters (``fit`` checks them), ``fit`` returns self, ``classes_`` holds the labels of
``y`` (any labels: strings too; ``predict`` maps back to them), ``score`` is the mean accuracy
(``ClassifierMixin.score``), ``predict`` before ``fit`` raises :class:`dlcore.NotFittedError`
(scikit-learn's own class too, once scikit-learn is imported), and the model pickles through the
state of its two parts (:func:`dlcore.params.reduce_through_state`), so that
``GridSearchCV(..., n_jobs=2)`` ships it.
"""

import math
import warnings

import numpy as np

from dlcore.backend import check_backend_name, rng
from dlcore.errors import NotFittedError
from dlcore.layer_stack import as_size_list, check_size_list
from dlcore.params import (
    UNCHANGED,
    AccuracyScore,
    ConfigIsParams,
    FeatureNamesIn,
    LogProbabilities,
    ParamsMixin,
    PicklesThroughState,
    RoutesSampleWeight,
    refuse_fit_arguments,
)
from dlcore.validation import (
    check_class_labels,
    check_estimator_verbose,
    check_float,
    check_int,
    check_matrix,
    check_same_classes,
    check_width,
    data_conversion_warning,
)
from dlcore.wording import count

from .dbn import DBN

#: The defaults of ``dlcore dbn pretrain`` (cli/dbn.py) below 10,000 training images;
#: tests/test_dbn_classifier.py holds them to the command's.
PRETRAIN_DEFAULTS = {"hidden": (500, 500), "pretrain_epochs": 20,
                     "pretrain_learning_rate": 0.1, "pretrain_batch_size": 20,
                     "propagate": "mean"}
#: The fine-tuning recipe of ``dlcore dbn finetune`` below 10,000 training images, the one
#: source of both: cli/dbn.py reads its epochs, patience, shift and dropout rates from here
#: (docs/dbn.md, "Fine-tuning defaults": chosen on mnist-5k's validation split). Random shifts
#: of up to ``shift`` pixels need many epochs and patience to pay off; patience counts as
#: Keras's EarlyStopping does, and the documented results were measured when dlcore stopped
#: one epoch later, so the default is one more than the 15 then used.
#: tests/test_dbn_classifier.py holds them to the command's option defaults.
FINETUNE_DEFAULTS = {"optimizer": "sgd", "learning_rate": 0.1, "momentum": 0.9,
                     "batch_size": 32, "epochs": 100, "patience": 16, "validation_split": 0.1,
                     "dropout": 0.3, "input_dropout": 0.1, "shift": 2}
#: shift="auto" moves square images of at least this many pixels a side only (MNIST's 28)
AUTO_SHIFT_SIDE = 28
#: the fine-tuning optimisers by name (``dbn finetune``'s --optimizer too)
OPTIMIZERS = ("sgd", "adam", "rmsprop", "adagrad", "adamw", "nadam", "adamax", "adadelta",
              "lion", "ftrl")


class DBNClassifier(AccuracyScore, LogProbabilities, RoutesSampleWeight, ConfigIsParams,
                    FeatureNamesIn, PicklesThroughState, ParamsMixin):
    """Greedy DBN pretraining, then supervised fine-tuning of the network it gives.

    Parameters
    ----------
    hidden : sequence of int, or int
        Sizes of the hidden layers (the visible layer is the width of ``X``); one number is
        one hidden layer, as scikit-learn's ``hidden_layer_sizes`` takes it.
    pretrain_epochs, pretrain_learning_rate, pretrain_batch_size, propagate :
        The DBN's ``epochs``, ``learning_rate``, ``batch_size`` and ``propagate``.
    epochs : int
        Most epochs of fine-tuning; early stopping usually ends sooner.
    optimizer : {"sgd", "adam", "rmsprop", "adagrad", "adamw", "nadam", "adamax", "adadelta",
        "lion", "ftrl"}
    learning_rate, momentum : float
        Of the fine-tuning optimiser (``momentum``: SGD only).
    batch_size : int
        Fine-tuning mini-batch size.
    patience : int
        Epochs without a better validation loss before stopping (the best epoch's weights are
        kept).
    validation_split : float in [0, 1)
        Fraction of the training rows held out for early stopping (seeded); 0 trains all
        ``epochs`` on every row.
    dropout, input_dropout : float in [0, 1)
        Dropout after every hidden layer, and of the inputs.
    shift : "auto" or int >= 0
        Move every training image by a random shift of up to this many pixels in each epoch
        (a first :class:`dlcore.layers.ImageAugmentation` layer, the identity in ``predict``;
        ``dlcore dbn finetune --augment``). The rows must then be square images (784 values:
        28 x 28 pixels); 0 turns the shifts off. "auto" (the default) is the command's
        ``FINETUNE_DEFAULTS["shift"]`` pixels for rows that are square images of at least
        28 x 28 pixels, the data the recipe was chosen on, and 0 for any other rows (tables of
        features, small images), so that ``fit`` takes any data as scikit-learn's do.
    seed : int or None
        Seed of the pretraining, the network and the validation split. None draws one from
        the operating system at ``fit`` (or a first ``partial_fit``), used for all three and
        kept in ``seed_``, as :class:`dlcore.BernoulliRBM` keeps it: ``seed=model.seed_``
        fits the same model again.
    backend : {"auto", "cpu", "cuda", "reference"}
    verbose : bool or int >= 0 (scikit-learn's level: any level above 0 is True)
        Print the progress of both phases.

    Attributes
    ----------
    classes_ : (n_classes,) array, the sorted labels of ``y``
    seed_ : int
        The seed actually used (``seed``, or the one drawn for None).
    n_features_in_ : int
    dbn_ : the pretrained :class:`dlcore.DBN`
    network_ : the fine-tuned :class:`dlcore.Sequential` (``predict`` gives the probabilities)
    loss_curve_ : list of float
        The mean training cross-entropy of every fine-tuning epoch (``MLPClassifier``'s
        ``loss_curve_``; the pretraining's figures are in ``dbn_.history``).
    n_iter_ : int
        The fine-tuning epochs run (``len(loss_curve_)``): early stopping usually ends below
        ``epochs``.
    best_loss_ : float or None
        The lowest of ``loss_curve_``; None with early stopping (``validation_split`` > 0),
        as ``MLPClassifier``'s: the validation figures below then choose the weights.
    validation_scores_ : list of float or None
        The accuracy on the held-out rows after every epoch (``MLPClassifier``'s
        ``validation_scores_``); None without a validation split.
    best_validation_score_ : float or None
        The validation accuracy of the epoch whose weights are kept. Early stopping here
        monitors the validation loss (as ``dlcore dbn finetune`` does), not the accuracy as
        ``MLPClassifier``'s does, so this is the accuracy of the epoch of lowest validation
        loss, which may lie below ``max(validation_scores_)``. None without a validation
        split.
    """

    def __init__(self, hidden=PRETRAIN_DEFAULTS["hidden"],
                 pretrain_epochs=PRETRAIN_DEFAULTS["pretrain_epochs"],
                 pretrain_learning_rate=PRETRAIN_DEFAULTS["pretrain_learning_rate"],
                 pretrain_batch_size=PRETRAIN_DEFAULTS["pretrain_batch_size"],
                 propagate=PRETRAIN_DEFAULTS["propagate"],
                 epochs=FINETUNE_DEFAULTS["epochs"], optimizer=FINETUNE_DEFAULTS["optimizer"],
                 learning_rate=FINETUNE_DEFAULTS["learning_rate"],
                 momentum=FINETUNE_DEFAULTS["momentum"],
                 batch_size=FINETUNE_DEFAULTS["batch_size"],
                 patience=FINETUNE_DEFAULTS["patience"],
                 validation_split=FINETUNE_DEFAULTS["validation_split"],
                 dropout=FINETUNE_DEFAULTS["dropout"],
                 input_dropout=FINETUNE_DEFAULTS["input_dropout"],
                 shift="auto", seed=0, backend="auto", verbose=False):
        self._init_params(locals())   # checked in fit (scikit-learn's rule)

    def _check_params(self):
        check_size_list(self.hidden)   # as DBN's and StackedAutoencoder's (LayerStack)
        for name in ("epochs", "patience"):
            check_int(getattr(self, name), name, minimum=0)
        if not (isinstance(self.shift, str) and self.shift == "auto"):
            check_int(self.shift, "shift (or 'auto')", minimum=0)
        for name in ("pretrain_epochs", "pretrain_batch_size", "batch_size"):
            check_int(getattr(self, name), name, minimum=1)
        for name in ("pretrain_learning_rate", "learning_rate"):
            check_float(getattr(self, name), name, low=0.0, low_open=True)
        check_float(self.momentum, "momentum", low=0.0, high=1.0, high_open=True)
        for name in ("validation_split", "dropout", "input_dropout"):
            check_float(getattr(self, name), name, low=0.0, high=1.0, high_open=True)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got "
                             f"{self.optimizer!r}")
        check_backend_name(self.backend)
        rng.check_seed(self.seed)
        check_estimator_verbose(self.verbose)

    # -- training -----------------------------------------------------------------------
    def fit(self, X, y, sample_weight=None, **unexpected):
        """Pretrain the DBN on ``X`` (rows in [0, 1]: its bottom units are binary), then
        fine-tune its network on (X, y). Returns self.

        ``sample_weight`` : (n,) weights >= 0 or None, as ``MLPClassifier.fit``'s: each row's
        loss in fine-tuning weighted (the held-out rows' too, in the validation loss that
        early stopping watches), the losses a weighted mean, so that weights scaled as a
        whole (counts) train the same model; the pretraining, which sees no labels, weighs
        every row alike."""
        refuse_fit_arguments(self, "fit", unexpected)
        self._check_params()
        classes, targets = self._check_labels(y)
        found_names = vars(self).get("feature_names_in_")
        try:   # the names of this fit's X only once its network is this fit's too
            self._note_feature_names(X, reset=True)
            X = self._rows(X, "X")
            self._check_lengths(X, targets)   # before the weights: y's length is at fault
            weights = self._weights(sample_weight, len(targets))
            # one seed for everything the fit draws: with seed=None, drawn once here
            seed = rng.check_seed(self.seed)
            dbn, network = self._fit_network(X, targets, classes, seed, weights)
        except BaseException:
            self._put_back_feature_names(found_names)
            raise
        self.classes_, self.n_features_in_ = classes, X.shape[1]
        self.dbn_, self.network_, self.seed_ = dbn, network, seed
        self._note_learning_curves()
        return self

    def _put_back_feature_names(self, names):
        """``feature_names_in_`` as a fit that failed found it (its network is the old one)."""
        if names is None:
            self.__dict__.pop("feature_names_in_", None)
        else:
            self.feature_names_in_ = names

    @staticmethod
    def _check_lengths(X, targets):
        if len(X) != len(targets):
            raise ValueError(f"X has {count(len(X), 'row')} but y has "
                             f"{count(len(targets), 'label')}")

    @staticmethod
    def _weights(sample_weight, n):
        """``sample_weight`` checked (one weight >= 0 per label, not all zero), float64, or
        None."""
        from dlcore.training import sample_weights
        weights = sample_weights(None, n, sample_weight, None)
        return None if weights is None else _mean_one(weights)

    def _fit_and_held_out_weights(self, weights, fit_rows, valid_rows):
        """The weights of the rows fine-tuning trains on and of those it holds out, each
        part's scaled to a mean of 1 (:func:`_mean_one`), refused in one line where a part's
        are all zero."""
        parts, split = [], f"validation_split={self.validation_split} holds out"
        rows_held = f"{len(valid_rows)} of {count(len(weights), 'row')}"
        for rows, which in ((fit_rows, f"fine-tuning trains on ({split} the other {rows_held})"),
                            (valid_rows, f"{split} ({rows_held}, at random)")):
            part = weights[rows]
            if not part.any():
                raise ValueError(f"sample_weight is zero for every row that {which}: give some "
                                 "of them a weight above 0, or set validation_split=0")
            parts.append(_mean_one(part))
        return parts

    def _fit_network(self, X, targets, classes, seed, weights=None):
        """``(dbn, network)`` of :meth:`fit`: the DBN pretrained on ``X``, its network
        fine-tuned on (X, targets), each row's loss weighted by ``weights`` (or None), early
        stopping on the held-out part; every draw (split, pretraining, network) from the int
        ``seed``."""
        from dlcore.callbacks import EarlyStopping
        self._check_lengths(X, targets)
        fit_rows, valid_rows = self._split_rows(len(X), seed)   # refused before anything trains
        dbn, network = self._pretrained_network(X, len(classes), seed)
        train, fit_weights, valid, callbacks = (X, targets), weights, None, []
        if valid_rows is not None:
            train = (X[fit_rows], targets[fit_rows])
            valid = (X[valid_rows], targets[valid_rows])
            if weights is not None:
                fit_weights, valid_weights = self._fit_and_held_out_weights(
                    weights, fit_rows, valid_rows)
                valid = (*valid, valid_weights)
            callbacks.append(EarlyStopping(monitor="val_loss", patience=int(self.patience),
                                           restore_best_weights=True))
        network.fit(*train, epochs=int(self.epochs), batch_size=int(self.batch_size),
                    validation_data=valid, callbacks=callbacks, verbose=int(bool(self.verbose)),
                    sample_weight=fit_weights)
        return dbn, network

    _ROUTED_METHODS = ("fit", "partial_fit", "score")

    def set_partial_fit_request(self, *, sample_weight=UNCHANGED):
        """Whether ``partial_fit`` gets ``sample_weight`` under scikit-learn's metadata routing
        (as :meth:`set_fit_request`); returns self."""
        return self._set_request("partial_fit", sample_weight)

    def partial_fit(self, X, y, classes=None, sample_weight=None, **unexpected):
        """One step of training on the batch (X, y), as ``MLPClassifier.partial_fit``: the
        first call pretrains the DBN with one pass over the batch (:meth:`dlcore.DBN.partial_fit`),
        builds its network and fine-tunes it one epoch; every later call fine-tunes the
        network one more epoch on its batch (no validation split, no early stopping, as
        MLPClassifier's ``partial_fit`` has neither). Returns self.

        Lecture "Deep Neural Networks": pretraining, then supervised fine-tuning of the
        network it initialises. Once the network is built its weights are its own (copies of
        the RBMs'), so later batches cannot pretrain further: fine-tuning is what a stream of
        labelled batches can still improve. A first ``partial_fit`` therefore equals ``fit``
        with ``pretrain_epochs=1, epochs=1, validation_split=0``, and k calls on the same
        batch ``epochs=k`` (bit for bit on cpu); ``pretrain_epochs``, ``epochs``,
        ``patience`` and ``validation_split`` are ``fit``'s.

        Parameters
        ----------
        X : (n, n_features) rows in [0, 1] (the first call's width after it)
        y : (n,) labels, each one of ``classes``
        classes : array of every label, or None: on the first call, the labels of all the
            batches to come (scikit-learn's argument: a first batch may lack some); None takes
            those of ``y``. Afterwards the same classes or None (``classes_`` is fixed; others
            are refused, as scikit-learn refuses them). Repeats are taken once (scikit-learn's
            ``np.unique(classes)``) where they cannot be weights given third: ``classes=y``,
            or another length than y's (with a UserWarning unless ``classes`` is ``y``: weights
            of every row given third unsliced look the same; said once per estimator)
        sample_weight : (n,) weights >= 0 or None: each row's loss in fine-tuning weighted,
            the batch's loss their weighted mean (as :meth:`fit`'s;
            ``SGDClassifier.partial_fit``'s order of arguments); a first call's one pass of
            pretraining weighs every row alike
        """
        refuse_fit_arguments(self, "partial_fit", unexpected)
        first = not hasattr(self, "network_")
        self._check_params()
        if first:
            known = self._check_labels(y)[0] if classes is None else self._checked_classes(
                classes, y)
        else:
            known = self.classes_
            if classes is not None:
                check_same_classes(self._checked_classes(classes, y), known, "DBNClassifier")
        labels = np.asarray(y)
        labels = labels.ravel() if labels.ndim == 2 and labels.shape[1] == 1 else labels
        if labels.ndim != 1:
            raise ValueError(f"y must be 1-D (n_samples,), got shape {labels.shape}")
        unknown = labels[~np.isin(labels, known)]
        if len(unknown):
            raise ValueError(f"y holds {unknown[0].item()!r}, which is not one of the classes "
                             f"{known.tolist()!r:.200}: give every label in the first call's "
                             f"classes")
        targets = np.searchsorted(known, labels).astype(np.int64)
        found_names = vars(self).get("feature_names_in_")
        try:   # a first call's names only once it has fitted the model, as in fit
            self._note_feature_names(X, reset=first)
            X = self._rows(X, "X", fitted_width=not first)
            self._check_lengths(X, targets)
            weights = self._weights(sample_weight, len(targets))
            if first:
                seed = rng.check_seed(self.seed)   # drawn once for seed=None, as in fit
                dbn, network = self._pretrained_network(X, len(known), seed, one_pass=True)
            else:
                dbn, network, seed = self.dbn_, self.network_, self.seed_
            network.fit(X, targets, epochs=1, batch_size=int(self.batch_size),
                        verbose=int(bool(self.verbose)), sample_weight=weights)
        except BaseException:
            if first:   # left on the unfitted model, check_is_fitted took it for fitted
                self._put_back_feature_names(found_names)
            raise
        self.classes_, self.n_features_in_ = known, X.shape[1]
        self.dbn_, self.network_, self.seed_ = dbn, network, seed
        self._note_learning_curves()
        return self

    def _pretrained_network(self, X, n_classes, seed, one_pass=False):
        """``(dbn, network)``: the DBN pretrained on ``X`` (``pretrain_epochs`` of greedy
        training, or with ``one_pass`` the one pass of :meth:`DBN.partial_fit`) and the
        network of ``n_classes`` outputs it initialises, compiled for fine-tuning, both seeded
        with the int ``seed``: what :meth:`fit` and a first :meth:`partial_fit` build alike."""
        shifts = self._image_shifts(X.shape[1])   # refused before anything trains
        dbn = DBN(hidden=[int(size) for size in as_size_list(self.hidden)],
                  epochs=1 if one_pass else self.pretrain_epochs,
                  learning_rate=self.pretrain_learning_rate,
                  batch_size=self.pretrain_batch_size, propagate=self.propagate,
                  seed=seed, backend=self.backend, verbose=bool(self.verbose))
        if one_pass:
            dbn.partial_fit(X)
        else:
            dbn.fit(X)
        network = dbn.to_network(n_classes=n_classes, dropout=self.dropout,
                                 input_dropout=self.input_dropout, seed=seed,
                                 backend=self.backend, augment=shifts)
        network.compile(loss="cross_entropy", optimizer=self._optimizer(),
                        metrics=["accuracy"])
        return dbn, network

    def _note_learning_curves(self):
        """``loss_curve_``, ``n_iter_``, ``best_loss_``, ``validation_scores_`` and
        ``best_validation_score_`` (MLPClassifier's names) from the network's history, the one
        record of the fine-tuning, which a pickle carries too."""
        history = self.network_.history
        self.loss_curve_ = [float(value) for value in history.get("loss", [])]
        self.n_iter_ = len(self.loss_curve_)
        if "val_loss" not in history:
            self.best_loss_ = min(self.loss_curve_) if self.loss_curve_ else None
            self.validation_scores_ = self.best_validation_score_ = None
            return
        self.best_loss_ = None
        self.validation_scores_ = [float(value) for value in history["val_accuracy"]]
        # the epoch EarlyStopping restores: the first of lowest validation loss
        losses = np.asarray(history["val_loss"], dtype=np.float64)
        finite = np.isfinite(losses)
        self.best_validation_score_ = (
            self.validation_scores_[int(np.argmin(np.where(finite, losses, np.inf)))]
            if finite.any() else None)

    def _rows(self, X, name, fitted_width=False):
        """``X`` checked as the DBN's bottom RBM checks it (2-D numbers in [0, 1]; the fitted
        width with ``fitted_width``, then held-out rows, which may lie a little outside), before
        anything trains. The shape is checked here first, so that its messages name the
        DBNClassifier the user called rather than the RBM inside."""
        X = check_matrix(X, name, type(self).__name__)
        if fitted_width:
            check_width(X, name, type(self).__name__, self.n_features_in_)
            return self.dbn_.rbms_[0]._check_visible(X, name, fitted_width=True, held_out=True)
        from dlcore.rbm import BernoulliRBM
        return BernoulliRBM()._check_visible(X, name)

    def _image_shifts(self, width):
        """The ImageAugmentation arguments of ``shift`` for rows of ``width`` values (square
        images of one channel, as ``dlcore dbn finetune --augment`` shifts them), or None
        with ``shift=0`` (and with "auto" for rows that are no square image of at least
        AUTO_SHIFT_SIDE pixels a side)."""
        side = math.isqrt(width)
        shift = self.shift
        if isinstance(shift, str):
            shift = FINETUNE_DEFAULTS["shift"] if side * side == width \
                and side >= AUTO_SHIFT_SIDE else 0
        if not shift:
            return None
        if side * side != width:
            raise ValueError(f"shift={self.shift} moves square images, but rows of {width} "
                             f"values are not one (28 x 28 pixels are 784): pass shift=0 for "
                             f"other data")
        if shift >= side:
            # ImageAugmentation would refuse it only once the DBN is pretrained
            raise ValueError(f"shift={self.shift} can move the {side}x{side} images of rows of "
                             f"{width} values entirely out of the picture (a blank training "
                             f"image with a label): pass a shift below {side}, or 0")
        return {"max_shift": int(shift), "image_shape": (1, side, side)}

    def _check_labels(self, y):
        return check_class_labels(y, "DBNClassifier", data_conversion_warning())

    def _checked_classes(self, classes, y):
        """The class labels of :meth:`partial_fit`'s ``classes``, refused in its own words:
        weights given third, as ``MLPClassifier.partial_fit`` takes them, land here. Labels
        given twice are taken once, as scikit-learn's ``np.unique(classes)`` takes them,
        where they cannot be weights given third of this batch: ``classes=y`` itself, or a
        length other than y's (``classes=y_all``). Other repeats, one per row of y, are
        refused: integer count weights whose values happen to be labels (0, 1, 2 with y in
        {0, 1}) were taken as classes, the weights ignored and a phantom class learnt.

        Repeats of another length than y's are still what weights of every row given third
        unsliced (``partial_fit(X_batch, y_batch, w_all)``) look like, and the values cannot
        tell them from ``y_all``: they are taken, as scikit-learn takes them, with a
        UserWarning saying so, unless they are ``y`` itself: once per estimator, as a stream's
        every call passes ``classes=y_all`` (under ``warnings.simplefilter("always")``, or
        from calls at several lines, it said so at every call)."""
        values = np.asarray(classes, dtype=object).ravel()
        rows = np.asarray(y, dtype=object).ravel()
        try:
            labels = self._check_labels(classes)[0]
        except ValueError:
            labels, problem = None, "are no class labels"
        else:
            repeats = len(labels) < len(values)
            is_y = len(values) == len(rows) and np.array_equal(values, rows)
            problem = (f"repeat labels ({len(labels)} distinct)"
                       if repeats and not is_y and len(values) == len(rows) else None)
        shown = ", ".join(repr(value.item() if isinstance(value, np.generic) else value)[:8]
                          for value in values[:3]) + (", ..." if len(values) > 3 else "")
        if problem is None:
            if repeats and not is_y and not vars(self).get("_told_repeated_classes"):
                warnings.warn(
                    f"classes [{shown}] ({count(len(values), 'value')}) repeat labels, taken "
                    f"once (np.unique(classes): {count(len(labels), 'class', 'classes')}); if "
                    "these are sample weights, pass them by name: partial_fit(X, y, "
                    "sample_weight=w)", UserWarning, stacklevel=3)
                # told only once it was said: a warning made an error (-W error) stopped
                # the call, and the same call again must stop too
                self._told_repeated_classes = True
            return labels
        raise ValueError(f"classes [{shown}] ({count(len(values), 'value')}) {problem}: give "
                         "every batch's labels once, np.unique(y_all), and the weights by "
                         "name, partial_fit(X, y, sample_weight=w) (MLPClassifier's third "
                         "argument is sample_weight; DBNClassifier's is classes, as "
                         "SGDClassifier's)")

    def _optimizer(self):
        from dlcore import optimizers
        if self.optimizer == "sgd":
            return optimizers.SGD(learning_rate=self.learning_rate, momentum=self.momentum)
        return optimizers.OPTIMIZERS[self.optimizer](learning_rate=self.learning_rate)

    def _split_rows(self, n, seed):
        """``(fit_rows, valid_rows)`` of ``n`` rows: a random ``validation_split`` of them
        held out, drawn from the int ``seed`` (as ``dlcore dbn finetune`` splits), each in
        order; valid_rows None without one."""
        if not self.validation_split:
            return np.arange(n), None
        n_valid = max(1, int(round(self.validation_split * n)))
        if n_valid >= n:
            raise ValueError(f"validation_split={self.validation_split} leaves no row of "
                             f"{n} to train on; lower it or set it to 0")
        order = rng.permutation(n, seed, rng.STREAM_SPLIT, 1)
        return np.sort(order[n_valid:]), np.sort(order[:n_valid])

    # -- using a trained model ----------------------------------------------------------
    def _check_fitted(self):
        if not hasattr(self, "network_"):
            raise NotFittedError("this DBNClassifier is not fitted yet: call fit(X, y) first")

    def predict_proba(self, X):
        """P(class | x) from the fine-tuned network, (n, n_classes) float32, columns in the
        order of ``classes_``."""
        self._check_fitted()
        self._note_feature_names(X, reset=False)
        return self.network_.predict(self._rows(X, "X", fitted_width=True))

    def predict(self, X):
        """The most probable class of each row, as labels of ``classes_``: (n, n_features_in_)
        -> (n,)."""
        probabilities = self.predict_proba(X)
        return self.classes_[probabilities.argmax(axis=1)]

    # -- copies (pickle, deepcopy, joblib) ------------------------------------------------
    def get_state(self):
        """The classes and the config and state of both parts (arrays and plain values)."""
        self._check_fitted()
        return {"classes": np.array(self.classes_),
                "dbn": {"config": self.dbn_.get_config(), "state": self.dbn_.get_state()},
                "network": {"config": self.network_.get_config(),
                            "state": self.network_.get_state(),
                            "history": self.network_.history}}

    def set_state(self, state):
        from dlcore.network import Sequential
        dbn = DBN.from_config(state["dbn"]["config"])
        dbn.set_state(state["dbn"]["state"])
        network = Sequential.from_config(state["network"]["config"])
        network.set_state(state["network"]["state"])
        network.history = state["network"]["history"]
        self.classes_, self.n_features_in_ = np.asarray(state["classes"]), dbn.n_features_in_
        # the fit gave its DBN its own seed: the state holds it there
        self.dbn_, self.network_, self.seed_ = dbn, network, dbn.seed_
        self._note_learning_curves()

    def _has_state(self):
        return hasattr(self, "network_")

    def __sklearn_tags__(self):
        from sklearn.utils import ClassifierTags
        tags = super().__sklearn_tags__()
        tags.estimator_type = "classifier"
        tags.classifier_tags = ClassifierTags()
        tags.target_tags.required = True
        tags.input_tags.positive_only = True   # the bottom RBM's binary units: data in [0, 1]
        return tags


def _mean_one(weights):
    """``weights`` (>= 0) scaled to a mean of 1, as MLPClassifier's weighted mean loss takes
    them (weights given as counts train as their proportions; the fine-tuning network's loss
    sums the weighted losses over the batch size, Keras's reduction, where all 40s would be a
    40 times larger step); refused in one line when all are zero."""
    mean = weights.mean()
    if not mean > 0:
        raise ValueError("sample_weight is zero for every row: fine-tuning would learn "
                         "nothing; give the rows to learn from a weight above 0")
    return weights / mean
