"""``GaussianBernoulliRBM``: real-valued visible units with Gaussian noise, binary hidden units."""
import warnings

import numpy as np

from dlcore.io import register_model
from dlcore.validation import check_bool, check_float

from .estimator import FittedAttribute, RBMBase
from .monitors import MAX_ENUMERATED_UNITS
from .units import GaussianVisible


@register_model
class GaussianBernoulliRBM(RBMBase):
    """RBM with Gaussian visible units for real-valued data, such as image patches.

    Lecture "Deep Neural Networks" (DBN/RBM), slide "Demo: RBM for an Image" ("Weights 49 x
    10x10 obtained from training on image patches 10x10px", reconstructions "from binary" and
    "from non-binary features"), needs visible units that take any real value. With standard
    deviations sigma_i (Hinton 2010, "A practical guide to training RBMs", sec. 13.2):

        E(v, h) = sum_i (v_i - b_i)^2 / (2 sigma_i^2) - c.h - sum_ij (v_i / sigma_i) W_ij h_j

        Q(h_j = 1 | v) = sigm(c_j + sum_i (v_i / sigma_i) W_ij)
        P(v_i | h)     = N(b_i + sigma_i sum_j W_ij h_j, sigma_i^2)

        F(v) = sum_i (v_i - b_i)^2 / (2 sigma_i^2) - sum_j softplus(c_j + sum_i (v_i/sigma_i) W_ij)

    with softplus(x) = log(1 + exp(x)), so p(v) = exp(-F(v)) / Z is a density. Training is the
    lecture's CD update (:mod:`dlcore.rbm.trainer`) with x / sigma in place of x on the hidden
    side; the visible biases step by eps mean(x1 - x2) / sigma^2, and learned variances follow
    the gradient in :mod:`dlcore.rbm.units`.

    **Standardise the data first.** By default sigma = 1 is fixed: the model assumes every
    input has unit variance, which is what (per-patch or global) standardisation gives
    (:func:`dlcore.datasets.images.standardize`). Learning sigma (``learn_sigma=True``) is the
    option for data that cannot be standardised; it is the touchiest part of the model and has
    its own, smaller learning rate and a floor ``min_sigma``. Training data whose columns
    spread more than ten times ``sigma`` (0-255 pixels) is warned of, with the fix.

    **Learning rates.** Gaussian visible units have no squashing non-linearity: a reconstruction
    can overshoot without bound, and a learning rate that suits binary units (0.1) makes the
    weights explode. Hinton (2010, sec. 13.2) advises one or two orders of magnitude less; the
    default 0.01 with momentum 0.5, batch 20 and weight decay 2e-4 trains 10x10 natural-image
    patches (homework Task 2) into edge and grating filters; use 0.001-0.01. For the same
    reason reconstructions use the mean b + sigma W h (``sample_visible=False`` in training,
    :meth:`reconstruct` always), which adds no noise.

    Parameters
    ----------
    n_hidden : int
        Number of hidden units (the lecture's demo uses 49).
    learning_rate : float
        eps of W, b and c (see "Learning rates" above).
    cd_k, persistent, momentum, weight_decay, sparsity_target, sparsity_cost, sparsity_decay :
        As in :class:`dlcore.BernoulliRBM`.
    sample_visible : bool or None
        Sample the negative-phase visible units from N(b + sigma W h, sigma^2) (True) or use the
        mean (False). None (default) means False, or True with ``learn_sigma``: a noiseless
        negative phase would drive every sigma to zero.
    sigma : float > 0
        The standard deviation of every visible unit (fixed), or the starting value when
        ``learn_sigma``; the values in use are the array ``visible_sigma``.
    learn_sigma : bool
        Learn one sigma per visible unit (as log sigma, so that it stays positive).
    sigma_learning_rate : float or None
        eps of log sigma; None means learning_rate / 10.
    min_sigma : float > 0
        Floor of the learned sigma.
    batch_size, epochs, seed, backend, verbose :
        As in :class:`dlcore.BernoulliRBM`.
    sampler, n_chains, fast_learning_rate, fast_decay, n_temperatures, temperatures :
        The negative phase, as in :class:`dlcore.BernoulliRBM`; parallel tempering tempers
        the interaction: P_beta(v_i | h) = N(b_i + beta sigma_i sum_j W_ij h_j, sigma_i^2).

    Attributes
    ----------
    W : (n_visible, n_hidden) float32
    visible_bias : (n_visible,) float32
    hidden_bias : (n_hidden,) float32
    visible_sigma : (n_visible,) float32, the standard deviations sigma_i
    history : dict of per-epoch lists
        ``reconstruction_error`` (mean squared error per visible unit between each mini-batch
        and its mean reconstruction b + sigma W h1, in the units of the data), ``free_energy_gap``
        and ``seconds``, as for the Bernoulli RBM.
    epochs_done_, n_updates_, n_features_in_ : int
        As for :class:`dlcore.BernoulliRBM`: the epochs trained over the model's life (those
        a ``fit`` stopped by Ctrl-C finished), the updates, the visible units.

    Notes
    -----
    ``model.save(path)`` writes the model to dlcore's HDF5 file, atomically, as
    ``dlcore.save(model, path)`` does; ``dlcore.load(path)`` reads it back.
    """

    visible_sigma = FittedAttribute()

    def __init__(self, n_hidden=49, learning_rate=0.01, cd_k=1, persistent=False, momentum=0.5,
                 weight_decay=2e-4, sparsity_target=None, sparsity_cost=0.1, sparsity_decay=0.9,
                 sample_visible=None, sigma=1.0, learn_sigma=False, sigma_learning_rate=None,
                 min_sigma=1e-2, batch_size=20, epochs=10, seed=0, backend="auto",
                 verbose=False, sampler=None, n_chains=None, fast_learning_rate=None,
                 fast_decay=0.95, n_temperatures=10, temperatures=None):
        self._init_params(locals())   # checked in fit (scikit-learn's rule)

    def _check_params(self):
        super()._check_params()
        check_bool(self.sample_visible, "sample_visible", allow_none=True)
        check_bool(self.learn_sigma, "learn_sigma")
        check_float(self.sigma, "sigma", low=0.0, low_open=True)
        check_float(self.min_sigma, "min_sigma", low=0.0, low_open=True)
        if self.sigma_learning_rate is not None:
            check_float(self.sigma_learning_rate, "sigma_learning_rate", low=0.0)
        if self.learn_sigma and self.sample_visible is False:
            raise ValueError("learn_sigma=True needs sample_visible=True (or None): with mean "
                             "reconstructions the negative phase has no noise and every "
                             "sigma would shrink to min_sigma")

    def _initialize(self, X):
        self._warn_of_unscaled_data(X)
        return super()._initialize(X)

    def _warn_of_unscaled_data(self, X):
        """Warn, in one line with the fix, when the columns of ``X`` spread far wider than the
        sigma the model starts from (0-255 pixels against sigma = 1): CD then trains without
        a word to a reconstruction error in the thousands per pixel. Rows of any scale a
        standardisation or [0, 1] pixels give stay silent; only a spread ten times sigma
        speaks. A strided sample of rows is enough for so clear a sign."""
        if not isinstance(X, np.ndarray):   # LazyRows: not read twice for a warning
            return
        sample = X[::max(1, len(X) // 1000)]
        spread = float(np.sqrt(np.mean(sample.var(axis=0, dtype=np.float64))))
        if spread > 10 * float(self.sigma):
            warnings.warn(f"X's columns have a typical standard deviation of {spread:.3g}, "
                          f"but {type(self).__name__} starts from sigma={self.sigma:g}: "
                          f"standardise each column first (scikit-learn's StandardScaler, or "
                          f"dlcore.datasets.images.standardize for patches), as unscaled "
                          f"data (0-255 pixels) trains to reconstruction errors in the "
                          f"thousands", UserWarning, stacklevel=4)

    def _settings(self):
        settings = super()._settings()
        settings.sample_visible = (bool(self.learn_sigma) if self.sample_visible is None
                                   else bool(self.sample_visible))
        return settings

    def _visible_units(self, backend=None, initial=False):
        sigma, velocity = self.sigma, None
        if not initial and hasattr(self, "visible_sigma"):
            sigma, velocity = self.visible_sigma, self._training.get("velocity_log_sigma")
        sigma_rate = (self.learning_rate / 10 if self.sigma_learning_rate is None
                      else self.sigma_learning_rate)
        return GaussianVisible(backend, sigma, velocity, bool(self.learn_sigma), sigma_rate,
                               float(self.min_sigma))

    def score_samples(self, X):
        """Exact log density log p(v) = -F(v) - log Z of each row, in nats (float64), for RBMs
        with at most 24 hidden units. (n, n_visible) -> (n,)."""
        self._check_fitted()
        n_hidden = self.W.shape[1]
        if n_hidden > MAX_ENUMERATED_UNITS:
            # GridSearchCV without scoring= lands here: "use a smaller RBM" misled
            raise ValueError(f"score_samples and score are a GaussianBernoulliRBM's exact log "
                             f"density, whose log Z enumerates 2**n_hidden hidden states: at "
                             f"most {MAX_ENUMERATED_UNITS} hidden units, this one has "
                             f"{n_hidden}; estimate it with log_likelihood(X) (AIS), or give "
                             f"GridSearchCV or cross_val_score a scoring=")
        return -self.free_energy(X) - self.log_partition()
