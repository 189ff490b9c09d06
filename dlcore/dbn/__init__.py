"""Deep Belief Networks: a stack of RBMs trained greedily (Lecture "Deep Neural Networks"
(DBN/RBM), slides "Deep Belief Networks (DBNs)" and "DBN Greedy Learning").

:class:`DBN` is the estimator (:mod:`~dlcore.dbn.dbn`); :mod:`~dlcore.dbn.stack` builds its
RBMs and says what each layer is fed; :mod:`~dlcore.dbn.updown` is the up-down (contrastive
wake-sleep) fine-tuning of the generative model. :class:`DBNClassifier`
(:mod:`~dlcore.dbn.classifier`) is pretraining then supervised fine-tuning in one ``fit``.
"""
from .classifier import DBNClassifier
from .dbn import DBN

__all__ = ["DBN", "DBNClassifier"]
