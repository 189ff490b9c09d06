"""``BernoulliRBM``: binary visible and hidden units, trained by CD-k or PCD."""
from dlcore.io import register_model
from dlcore.validation import check_bool, check_int

from . import monitors
from .estimator import RBMBase
from .units import BernoulliVisible, SoftmaxLabelVisible


@register_model
class BernoulliRBM(RBMBase):
    """Restricted Boltzmann machine with binary units (Lecture "Deep Neural Networks" (DBN/RBM),
    slides "Restricted Boltzmann Machine" and "RBM Weight Update").

    Energy E(v, h) = -b.v - c.h - v'Wh; conditionals Q(h_j = 1 | v) = sigm(c_j + v.W_j) and
    P(v_i = 1 | h) = sigm(b_i + W_i.h); trained with the lecture's CD-1 update
    (:mod:`dlcore.rbm.trainer`), CD-k, persistent CD, fast PCD or parallel tempering; draws
    from the model with :meth:`sample`.

    Parameters
    ----------
    n_hidden : int
        Number of hidden units (the lecture's demo uses 49).
    learning_rate : float
        eps in W <- W + eps (x1' h1 - x2' Q(h2 | x2)) / batch.
    cd_k : int
        Gibbs steps in the negative phase (1 is the lecture's CD-1).
    persistent : bool
        Persistent CD (Tieleman 2008): the negative chain carries over between mini-batches;
        the older spelling of ``sampler="pcd"``.
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
    sampler : {"cd", "pcd", "fpcd", "pt"} or None
        The negative phase (:mod:`dlcore.rbm.chains`): CD-k from the data, persistent chains
        (PCD, Tieleman 2008), fast PCD (Tieleman & Hinton 2009) or parallel tempering
        (Desjardins et al. 2010); ``cd_k`` Gibbs steps per update for each. None: "pcd" when
        ``persistent``, else "cd".
    n_chains : int or None
        Persistent chains (per temperature), independent of ``batch_size`` (None: as many as
        ``batch_size``).
    fast_learning_rate, fast_decay : float
        Fast PCD: W_fast <- fast_decay W_fast + fast_learning_rate g (None: ``learning_rate``;
        19/20 in the paper).
    n_temperatures, temperatures :
        Parallel tempering's ladder: ``temperatures`` (T_1 = 1 < T_2 < ..., inverse
        temperatures beta = 1 / T), or None / "geometric" for ``n_temperatures`` geometric
        rungs from T = 1 to T = 10. Swap acceptance rates go to ``history``.
    seed : int or None
        Key of the Philox generator: same seed, same samples and weights on every backend.
        None draws one from the operating system and keeps it in ``seed_``.
    backend : {"auto", "cpu", "cuda", "reference"}
        Where the training runs (see :mod:`dlcore.backend`).
    verbose : bool or int >= 0 (scikit-learn's level: any level above 0 is True)
        Print one line per epoch to stderr.

    Attributes
    ----------
    W : (n_visible, n_hidden) float32
    visible_bias : (n_visible,) float32
    hidden_bias : (n_hidden,) float32
    history : dict of per-epoch lists
        ``reconstruction_error`` (mean squared error per pixel between each mini-batch and
        P(x2 = 1 | h1), averaged over the epoch), ``free_energy_gap`` (mean F over ``X_valid``
        minus mean F over as many training rows; NaN without ``X_valid``), ``seconds``; with
        ``sampler="pt"`` also ``swap_acceptance`` and ``swap_acceptance_<k>`` (pair k, k+1).
    seed_ : int
        The seed actually used.
    epochs_done_ : int
        Epochs trained over the model's life (after a ``fit`` stopped by Ctrl-C: those it
        finished; :meth:`resume` trains the rest of ``epochs``).
    n_updates_ : int
        Parameter updates (mini-batches) trained.
    n_features_in_ : int, and ``feature_names_in_`` after a table with column names
        The visible units, as scikit-learn names them.

    Notes
    -----
    ``model.save(path)`` writes the model to dlcore's HDF5 file, atomically, as
    ``dlcore.save(model, path)`` does; ``dlcore.load(path)`` reads it back.
    """

    def __init__(self, n_hidden=49, learning_rate=0.1, cd_k=1, persistent=False, momentum=0.5,
                 weight_decay=2e-4, sparsity_target=None, sparsity_cost=0.1, sparsity_decay=0.9,
                 sample_visible=True, batch_size=20, epochs=10, seed=0, backend="auto",
                 verbose=False, n_labels=0, sampler=None, n_chains=None,
                 fast_learning_rate=None, fast_decay=0.95, n_temperatures=10, temperatures=None):
        self._init_params(locals())   # checked in fit (scikit-learn's rule)

    def _check_params(self):
        super()._check_params()
        check_bool(self.sample_visible, "sample_visible")
        check_int(self.n_labels, "n_labels", minimum=0)

    def _visible_units(self, backend=None, initial=False):
        return SoftmaxLabelVisible(self.n_labels) if self.n_labels else BernoulliVisible()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True   # binary units: data in [0, 1]
        return tags

    def score_samples(self, X):
        """Pseudo-log-likelihood of each row, in nats, summed over the visible units:

            PL(v) = sum_i log P(v_i | v_-i)

        computed exactly for every unit (scikit-learn's BernoulliRBM instead flips one random
        unit and multiplies by n_visible). (n, n_visible) -> (n,) float64.
        """
        X = self._check_visible_input(X)
        return monitors.pseudo_log_likelihood(X, *self._float64_parameters())
