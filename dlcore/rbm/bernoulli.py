"""``BernoulliRBM``: binary visible and hidden units, trained by CD-k or PCD."""
import numpy as np

from dlcore.io import register_model
from dlcore.validation import check_data, check_int

from . import monitors
from .estimator import RBMBase
from .model import free_energy, visible_probability
from .units import BernoulliVisible, SoftmaxLabelVisible


@register_model
class BernoulliRBM(RBMBase):
    """Restricted Boltzmann machine with binary units (lecture "Deep Neural Networks").

    Energy E(v, h) = -b.v - c.h - v'Wh; conditionals Q(h_j = 1 | v) = sigm(c_j + v.W_j) and
    P(v_i = 1 | h) = sigm(b_i + W_i.h); trained with the lecture's CD-1 update
    (:mod:`dlcore.rbm.trainer`), CD-k, or persistent CD.

    Parameters
    ----------
    n_hidden : int
        Number of hidden units (the lecture's demo uses 49).
    learning_rate : float
        eps in W <- W + eps (x1' h1 - x2' Q(h2 | x2)) / batch.
    cd_k : int
        Gibbs steps in the negative phase (1 is the lecture's CD-1).
    persistent : bool
        Persistent CD (Tieleman 2008): the negative chain carries over between mini-batches.
    momentum : float in [0, 1)
        velocity <- momentum * velocity + eps * gradient.
    weight_decay : float
        L2 penalty on W (not on biases): the gradient gains -weight_decay * W.
    sparsity_target : float in (0, 1) or None
        Desired mean activation of each hidden unit; pulls the hidden biases towards it.
    sparsity_cost, sparsity_decay : float
        Strength of the sparsity pull, and the decay of the running mean of activations.
    sample_visible : bool
        Sample the reconstruction x2 from P(x2 | h1), as in the lecture (True), or use the
        probabilities themselves (False).
    n_labels : int
        0 (default): every visible unit is binary. K > 0: the last K visible units are one
        softmax group, the label units of a DBN's top RBM (Hinton, Osindero & Teh 2006):
        P(label = k | h) = exp(a_k) / sum_l exp(a_l) with a = b + W h over those units, and
        training rows hold a one-hot label there (:class:`dlcore.rbm.units.SoftmaxLabelVisible`).
    batch_size, epochs : int
        Mini-batch size and number of passes over the data in :meth:`fit`.
    seed : int or None
        Key of the Philox generator: same seed, same samples and weights on every backend.
        None draws one from the operating system and keeps it in ``seed_``.
    backend : {"auto", "cpu", "cuda", "reference"}
        Where the training runs (see :mod:`dlcore.backend`).
    verbose : bool
        Print one line per epoch to stderr.

    Attributes
    ----------
    W : (n_visible, n_hidden) float32
    visible_bias : (n_visible,) float32
    hidden_bias : (n_hidden,) float32
    history : dict of per-epoch lists
        ``reconstruction_error`` (mean squared error per pixel between each mini-batch and
        P(x2 = 1 | h1), averaged over the epoch), ``free_energy_gap`` (mean F over ``X_valid``
        minus mean F over as many training rows; NaN without ``X_valid``), ``seconds``.
    seed_ : int
        The seed actually used.
    """

    def __init__(self, n_hidden=49, learning_rate=0.1, cd_k=1, persistent=False, momentum=0.5,
                 weight_decay=2e-4, sparsity_target=None, sparsity_cost=0.1, sparsity_decay=0.9,
                 sample_visible=True, batch_size=20, epochs=10, seed=0, backend="auto",
                 verbose=False, n_labels=0):
        self._init_params(locals())
        self._check_params()

    def _check_params(self):
        super()._check_params()
        check_int(self.n_labels, "n_labels", minimum=0)

    def _check_visible(self, X, name, fitted_width=False):
        width = self.W.shape[0] if fitted_width else None
        return check_data(X, name, n_columns=width, unit_interval=True,
                          columns_meaning="visible units")

    def _initial_visible_bias(self, X):
        """b_i = log(p_i / (1 - p_i)) with p_i the fraction of training vectors in which unit
        i is on (Hinton 2010, sec. 8), clipped so that always-off pixels stay finite."""
        p = np.clip(X.mean(axis=0, dtype=np.float64), 1e-4, 1 - 1e-4)
        return np.log(p / (1 - p)).astype(np.float32)

    def _visible_units(self, backend):
        return SoftmaxLabelVisible(self.n_labels) if self.n_labels else BernoulliVisible()

    def _visible_mean(self, hidden):
        """P(v = 1 | h); the label units (if any) as their softmax."""
        mean = visible_probability(hidden, self.W, self.visible_bias)
        if self.n_labels:
            a = hidden @ self.W[-self.n_labels:].T + self.visible_bias[-self.n_labels:]
            e = np.exp(a - a.max(axis=1, keepdims=True))
            mean[:, -self.n_labels:] = e / e.sum(axis=1, keepdims=True)
        return mean

    def free_energy(self, X):
        """F(v) = -b.v - sum_j log(1 + exp(c_j + v.W_j)) per row, (n, n_visible) -> (n,),
        in float64; P(v) = exp(-F(v)) / Z."""
        X = self._check_visible_input(X)
        return free_energy(X.astype(np.float64), *self._float64_parameters())

    def score_samples(self, X):
        """Pseudo-log-likelihood of each row, in nats, summed over the visible units:

            PL(v) = sum_i log P(v_i | v_-i)

        computed exactly for every unit (scikit-learn's BernoulliRBM instead flips one random
        unit and multiplies by n_visible). (n, n_visible) -> (n,) float64.
        """
        X = self._check_visible_input(X)
        return monitors.pseudo_log_likelihood(X, *self._float64_parameters())

    def log_partition(self):
        """log Z = log sum_v sum_h exp(-E(v, h)), exact in float64, by enumerating the smaller
        layer (:func:`~dlcore.rbm.monitors.exact_log_partition`; at most 24 units, ValueError
        beyond). Then log P(v) = -F(v) - log Z."""
        self._check_fitted()
        if self.n_labels:
            raise ValueError("log Z of an RBM with softmax label units is not enumerated (its "
                             "labels are one-hot, not binary): use an RBM with n_labels=0")
        return monitors.exact_log_partition(*self._float64_parameters())

    def _float64_parameters(self):
        return tuple(np.asarray(a, dtype=np.float64)
                     for a in (self.W, self.visible_bias, self.hidden_bias))
