"""How a DBN's RBMs are built and fed: per-layer options, and the data each layer trains on.

Greedy layer-wise pretraining (Lecture "Deep Neural Networks" (DBN/RBM), slide "DBN Greedy
Learning"; Hinton, Osindero & Teh 2006) in three steps:

1. train RBM 1 on the data v;
2. fix W1 and feed h1 ~ Q(h1 | v) (``propagate="sample"``, the lecture's words) or its mean
   Q(h1 = 1 | v) (``propagate="mean"``) as the data of RBM 2;
3. continue: RBM k+1 trains on h_k ~ Q(h_k | h_{k-1}), "and so on".

With ``"sample"`` every epoch of RBM k+1 draws fresh binary states all the way up from the data,
h_1 ~ Q(h_1 | v), ..., h_k ~ Q(h_k | h_{k-1}), each layer j from Philox stream
``STREAM_PROPAGATE + j`` (:mod:`dlcore.backend.rng`) at step = the epoch: :func:`layer_input`
is that recipe.

When the data are :class:`~dlcore.lazy_rows.LazyRows` (on disk, a data-parallel rank reading
only its rows) RBM k+1 trains on :func:`lazy_features`: lazy rows whose values are the
mean-field up-pass of just the rows a mini-batch asks for, so no rank ever computes or holds
the (N, hidden) features of the whole set, at the cost of one up-pass per batch per layer below.
"""
import numpy as np

from dlcore.backend.rng import STREAM_PROPAGATE, layer_seed
from dlcore.lazy_rows import LazyRows
from dlcore.params import per_layer_options
from dlcore.rbm import BernoulliRBM, GaussianBernoulliRBM

PROPAGATE_MODES = ("mean", "sample")
VISIBLE_KINDS = ("bernoulli", "gaussian")
# DBN arguments that may be one value for every RBM or a list with one value per RBM.
PER_LAYER_OPTIONS = ("epochs", "learning_rate", "batch_size", "momentum", "weight_decay",
                     "cd_k", "persistent", "sparsity_target", "sampler")


def rbm_class(index, visible):
    """The RBM class of layer ``index``: Gaussian visible units only for a Gaussian first layer."""
    return GaussianBernoulliRBM if index == 0 and visible == "gaussian" else BernoulliRBM


def layer_options(dbn, index, seed=None):
    """Constructor arguments of RBM ``index`` (0 = the bottom one) of ``dbn``: its size, its
    seed (from ``seed``, by default the DBN's ``seed_``), the DBN-wide options (one value, or
    the index-th of a list; None leaves the RBM's own default), then ``dbn.rbm`` (one dict for
    all, or one per RBM) on top."""
    hidden = dbn._hidden_sizes()
    n_rbms = len(hidden)
    seed = dbn.seed_ if seed is None else seed
    options = {"n_hidden": hidden[index], "seed": layer_seed(seed, index),
               "backend": dbn.backend}
    options.update(per_layer_options(dbn, index, PER_LAYER_OPTIONS))
    if dbn.n_labels and index == n_rbms - 1:
        options["n_labels"] = int(dbn.n_labels)
    extra = dbn.rbm[index] if isinstance(dbn.rbm, (list, tuple)) else dbn.rbm
    options.update(extra or {})
    return options


def layer_input(rbms, X, index, propagate, seed, step):
    """The data RBM ``index`` trains on at epoch ``step`` (see the module docstring): X itself
    for the first RBM, else X passed up through ``rbms[:index]`` as means or binary samples."""
    data = X
    for below, rbm in enumerate(rbms[:index]):
        data = rbm.transform(data, sample=propagate == "sample", seed=seed,
                             stream=STREAM_PROPAGATE + below, step=step)
    return data


def with_labels(features, labels, n_labels):
    """[features | one-hot labels]: the visible rows of a top RBM trained with labels."""
    one_hot = np.zeros((len(features), n_labels), dtype=np.float32)
    one_hot[np.arange(len(features)), labels] = 1.0
    return np.ascontiguousarray(np.hstack([features, one_hot]), dtype=np.float32)


class LayerFeatures:
    """The reader of :func:`lazy_features` (the reader protocol of
    :class:`dlcore.lazy_rows.LazyRows`): row r is the row r of ``source`` passed up through
    ``rbms`` as means, Q(h = 1 | x_r), then [that | one-hot label of row r] with ``labels``.

    Parameters
    ----------
    source : (N, m) LazyRows, the rows below
    rbms : sequence of fitted RBMs, bottom up (empty: the rows themselves)
    labels : (N,) int labels or None; n_labels : int, the one-hot width
    """

    def __init__(self, source, rbms, labels=None, n_labels=0):
        self.source, self.rbms = source, list(rbms)
        self.labels = None if labels is None else np.asarray(labels)
        self.n_labels = int(n_labels) if labels is not None else 0
        width = int(self.rbms[-1].n_hidden) if self.rbms else int(source.shape[1])
        self.n_rows, self.row_shape = len(source), (width + self.n_labels,)
        self.dtype = np.dtype(np.float32)
        what = f"features of {len(self.rbms)} RBMs" if self.rbms else "labelled rows"
        self.name = f"{what} of {source.reader.name}"
        self.rows_read = 0

    def identity(self):
        return (self.name, self.source.fingerprint())

    def read(self, indices):
        data = self.source.rows(indices)
        for rbm in self.rbms:
            data = rbm.transform(data)
        if self.labels is not None:
            data = with_labels(data, self.labels[indices], self.n_labels)
        return np.asarray(data, dtype=np.float32)


def lazy_features(source, rbms, labels=None, n_labels=0):
    """:class:`LayerFeatures` of the LazyRows ``source`` as LazyRows (sharing its communicator):
    what a DBN's next RBM trains on from lazy data, computed a mini-batch at a time."""
    return LazyRows(LayerFeatures(source, rbms, labels, n_labels), comm=source.comm)
