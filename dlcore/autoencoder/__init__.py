"""Autoencoders, split as the RBMs are: what the model computes (:mod:`~dlcore.autoencoder.model`,
the NumPy reference of every equation), how its input is corrupted
(:mod:`~dlcore.autoencoder.corruption`), its kernel bodies (:mod:`~dlcore.autoencoder.bodies`)
and the operations chosen per backend (:mod:`~dlcore.autoencoder.ops`), how it is trained
(:mod:`~dlcore.autoencoder.trainer`), the scikit-learn estimator (:class:`Autoencoder`,
:mod:`~dlcore.autoencoder.estimator`) and the greedy stack of them
(:class:`StackedAutoencoder`, :mod:`~dlcore.autoencoder.stacked`)."""
from .estimator import Autoencoder
from .stacked import StackedAutoencoder

__all__ = ["Autoencoder", "StackedAutoencoder"]
