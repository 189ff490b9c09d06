"""Restricted Boltzmann machines, split as PyDeep splits them: what the model *is*
(:mod:`~dlcore.rbm.model`), how it is *sampled* (:mod:`~dlcore.rbm.sampler`), how it is *trained*
(:mod:`~dlcore.rbm.trainer`), how it is *measured* (:mod:`~dlcore.rbm.monitors`), and the
scikit-learn estimator built on them (:mod:`~dlcore.rbm.estimator`), whose two RBMs
(:class:`BernoulliRBM`, :class:`GaussianBernoulliRBM`) are hyperparameters and documentation.
Everything the visible units decide, binary, with softmax labels or Gaussian, is one strategy
object (:mod:`~dlcore.rbm.units`)."""
from .ais import ais_log_partition, raise_log_probability
from .bernoulli import BernoulliRBM
from .gaussian import GaussianBernoulliRBM
from .monitors import (
    average_log_likelihood,
    exact_log_partition,
    free_energy_gap,
    gaussian_exact_log_partition,
    pseudo_log_likelihood,
)

__all__ = ["BernoulliRBM", "GaussianBernoulliRBM", "ais_log_partition",
           "average_log_likelihood", "exact_log_partition", "free_energy_gap",
           "gaussian_exact_log_partition", "pseudo_log_likelihood", "raise_log_probability"]
