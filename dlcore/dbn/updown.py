"""Up-down fine-tuning of a DBN's generative model: contrastive wake-sleep (Hinton, Osindero &
Teh 2006, "A fast learning algorithm for deep belief nets", sec. 5 and appendix B).

After greedy pretraining each lower layer uses one W both ways: up to recognise,
Q(h = 1 | v) = sigm(c + v W), and down to generate, P(v = 1 | h) = sigm(b + h W'). Up-down
*unties* them: the recognition weights R_i (with biases c_i) stay in the RBMs, the generative
weights G_i (with biases g_i) start as copies and live beside them. The top RBM stays an
undirected associative memory (with the label units, when the DBN has them). For a mini-batch
x (and its one-hot labels y), with L lower layers:

    wake (up):    s_0 = x;  s_{i+1} ~ sigm(s_i R_i + c_i)                       i = 0 .. L-1
    top RBM:      one CD-k update on v+ = [s_L, y] (:mod:`dlcore.rbm.trainer`), whose
                  negative phase ends in v- = [t_L, y-]
    sleep (down): t_i ~ sigm(t_{i+1} G_i' + g_i)  (t_0: the probabilities)       i = L-1 .. 0
    generative:   G_i += eps (s_i - sigm(s_{i+1} G_i' + g_i))' s_{i+1} / n,  g_i += eps mean(...)
    recognition:  R_i += eps t_i' (t_{i+1} - sigm(t_i R_i + c_i)) / n,      c_i += eps mean(...)

The generative weights learn to reconstruct each wake state from the one above it, the
recognition weights to recover each sleep state from the one below: the wake and sleep phases
of Hinton, Dayan, Frey & Neal (1995), with the top RBM's contrastive negative phase in place of
a fantasy from a fixed prior. Every product and sample runs on the DBN's backend; samples come
from Philox streams ``STREAM_WAKE + i`` and ``STREAM_SLEEP + i`` (:mod:`dlcore.backend.rng`)
at the update number; an epoch walks its mini-batches with :func:`dlcore.batches.mini_batches`.
"""
import dataclasses

import numpy as np

from dlcore.backend import get_backend
from dlcore.backend.registry import body
from dlcore.backend.rng import STREAM_SLEEP, STREAM_WAKE
from dlcore.batches import epoch_order, mini_batches
from dlcore.rbm.units import write_label_columns


@body
def copy_columns_span(row, first, last, source, source_first, destination,
                      destination_first):
    for column in range(first, last):
        destination[row, destination_first + column] = source[row, source_first + column]


def copy_columns(backend, source, source_first, destination, destination_first, n_columns):
    """destination[:, d:d + m] = source[:, s:s + m] for every row (both (n, .) backend arrays):
    a DBN's penultimate states in and out of its top RBM's [features | labels] rows."""
    if not backend.launches_kernels:
        destination[:, destination_first:destination_first + n_columns] = \
            source[:, source_first:source_first + n_columns]
        return
    backend.launch_rows(copy_columns_span, source.shape[0], n_columns, source, source_first,
                        destination, destination_first)


@dataclasses.dataclass
class Rule:
    """One learning rule of an update: ``weight += eps / n sum_k sign_k a_k' c_k`` over its
    ``products`` (a_k, c_k, sign_k), ``bias += eps mean_r(positive - negative)`` (through
    ``velocity``, momentum 0). Rows: the n of the batch."""

    weight: object
    bias: object
    velocity: object
    products: tuple
    positive: object
    negative: object


class UpDown:
    """Contrastive wake-sleep updates of a fitted DBN's weights (module docstring).

    Parameters
    ----------
    dbn : dlcore.DBN, fitted, binary visible units; its RBMs hold R_i, c_i and the top RBM,
        ``dbn.generative_`` the (G_i, g_i) of the L lower layers
    learning_rate : float, eps of every update
    gibbs_steps : int, k of the top RBM's CD-k
    batch_size : int
    rows : int, optional
        The rows of the data it will train on: a ``batch_size`` beyond them is one batch of
        the whole data, and the buffers hold no more (default ``batch_size``).
    """

    def __init__(self, dbn, learning_rate, gibbs_steps, batch_size, rows=None):
        self.dbn = dbn
        self.backend = be = get_backend(dbn.backend)
        self.rate, self.seed = float(learning_rate), dbn.seed_
        batch_size = int(batch_size) if rows is None else max(1, min(int(batch_size), int(rows)))
        lower, top = dbn.rbms_[:-1], dbn.rbms_[-1]
        self.recognition = [(be.asarray(r.W), be.asarray(r.hidden_bias)) for r in lower]
        self.generative = [(be.asarray(G), be.asarray(g)) for G, g in dbn.generative_]
        self.top = top.cd_trainer(be, learning_rate=self.rate, cd_k=int(gibbs_steps),
                                  persistent=False, sample_visible=True, batch_size=batch_size)
        sizes = dbn.layers_[:len(lower) + 1]                 # layers_[0 .. L]
        self.wake, self.sleep, self.scratch = (
            [be.empty((batch_size, size)) for size in sizes] for _ in range(3))
        self.top_visible = be.empty((batch_size, top.W.shape[0]))
        self.velocity = [be.zeros((size,)) for size in sizes]  # momentum 0: overwritten
        self.squared_error = be.zeros((sizes[0],))

    def step(self, x, labels, update, shard=None):
        """One update from the batch ``x`` (b, n_visible) on the backend, ``labels`` (b, K)
        one-hot or None; ``update`` numbers it (the Philox step of every sample).

        ``shard`` (data-parallel training, :mod:`dlcore.distributed.updown`): ``x`` is rows
        ``shard.first_row ..`` of a larger global batch; the draws are keyed by those global
        rows, the top RBM's CD step is ``shard.top``'s, and ``shard.learn`` sums the
        statistics of :meth:`rules` over the ranks before the updates."""
        be, b, L = self.backend, x.shape[0], len(self.recognition)
        first = 0 if shard is None else shard.first_row
        s = [x] + [buffer[:b] for buffer in self.wake[1:]]
        t = [buffer[:b] for buffer in self.sleep]
        scratch = [buffer[:b] for buffer in self.scratch]
        for i, (R, c) in enumerate(self.recognition):           # wake: s_{i+1} ~ Q(. | s_i)
            be.gemm(s[i], R, scratch[i + 1])
            be.sigmoid_bernoulli(scratch[i + 1], c, s[i + 1], self.seed, STREAM_WAKE + i, update,
                                 first)
        top_visible = s[L]
        if labels is not None:
            top_visible = self.top_visible[:b]
            copy_columns(be, s[L], 0, top_visible, 0, s[L].shape[1])
            write_label_columns(be, labels, labels, top_visible, None)
        self.top.step(top_visible, update,                       # CD-k of the top RBM
                      None if shard is None else shard.top)
        copy_columns(be, self.top.x2[:b], 0, t[L], 0, t[L].shape[1])
        for i in range(L - 1, -1, -1):                           # sleep: t_i ~ P(. | t_{i+1})
            G, g = self.generative[i]
            probability = scratch[i] if i > 0 else t[0]           # t_0: the probabilities
            be.gemm(t[i + 1], G, probability, trans_b=True)
            be.sigmoid_bernoulli(probability, g, t[i] if i > 0 else None, self.seed,
                                 STREAM_SLEEP + i, update, first)
        if shard is not None:
            shard.learn(self.rules(s, t, scratch))
            return
        rate = self.rate / b
        for rule in self.rules(s, t, scratch):
            for a, c, sign in rule.products:
                be.gemm(a, c, rule.weight, trans_a=True, alpha=sign * rate, beta=1.0)
            be.bias_step(rule.bias, rule.velocity, rule.positive, rule.negative, self.rate, 0.0)

    def rules(self, s, t, scratch):
        """The learning rules of one update, layer by layer, generative then recognition
        (a generator: each rule's prediction is computed when it is reached, into a scratch
        buffer the next rule may reuse, so each is applied or summed before the next):

            G_i += eps (s_i - sigm(s_{i+1} G_i' + g_i))' s_{i+1} / n,   g_i likewise
            R_i += eps t_i' (t_{i+1} - sigm(t_i R_i + c_i)) / n,        c_i likewise

        ``s``, ``t``: the wake and sleep states (b, layers[i]); ``scratch`` their buffers."""
        be = self.backend
        for i in range(len(self.recognition)):
            G, g = self.generative[i]
            prediction = scratch[i]
            be.gemm(s[i + 1], G, prediction, trans_b=True)
            be.sigmoid_bernoulli(prediction, g, None, self.seed, 0, 0)
            if i == 0:
                be.accumulate_squared_error(s[0], prediction, self.squared_error)
            yield Rule(G, g, self.velocity[i], ((s[i], s[i + 1], 1.0),
                                                (prediction, s[i + 1], -1.0)), s[i], prediction)
            R, c = self.recognition[i]
            prediction = scratch[i + 1]
            be.gemm(t[i], R, prediction)
            be.sigmoid_bernoulli(prediction, c, None, self.seed, 0, 0)
            yield Rule(R, c, self.velocity[i + 1], ((t[i], t[i + 1], 1.0),
                                                    (t[i], prediction, -1.0)),
                       t[i + 1], prediction)

    def epoch(self, data, labels, epoch, first_update):
        """One pass over ``data`` (N, n_visible) and ``labels`` (N, K) or None, both on the
        backend, in the order of Philox(seed, STREAM_SHUFFLE, step = epoch)
        (:func:`dlcore.batches.epoch_order`). Returns ``(next_update, error)``: error is the
        mean squared error per pixel of the generative model's reconstruction
        sigm(s_1 G_0' + g_0) of each wake batch."""
        be, batch_size = self.backend, self.wake[0].shape[0]
        be.copy_into(self.squared_error, be.zeros(self.squared_error.shape))
        order = epoch_order(data.shape[0], self.seed, epoch)
        label_buffer = None if labels is None else be.empty((batch_size, labels.shape[1]))
        update = first_update
        for batch in mini_batches(be, (data, labels), (self.wake[0], label_buffer), order,
                                  batch_size):
            self.step(*batch.arrays, update)
            update += 1
        total = float(np.sum(be.to_numpy(self.squared_error), dtype=np.float64))
        return update, total / (len(order) * data.shape[1])

    def download(self):
        """Write R_i, c_i, G_i, g_i and the top RBM back into the DBN (NumPy arrays)."""
        to_numpy = self.backend.to_numpy
        for rbm, (R, c) in zip(self.dbn.rbms_[:-1], self.recognition):
            rbm.W, rbm.hidden_bias = to_numpy(R).copy(), to_numpy(c).copy()
        self.dbn.generative_ = [(to_numpy(G).copy(), to_numpy(g).copy())
                                for G, g in self.generative]
        self.dbn.rbms_[-1].adopt_trainer(self.top)
