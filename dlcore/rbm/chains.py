"""The negative phase of RBM training, and the samplers that draw from a trained RBM.

The log-likelihood gradient of an RBM is a data average minus a model average (Lecture "Deep
Neural Networks" (DBN/RBM), slide "RBM Weight Update"; Hinton 2010, sec. 2):

    d log p(v) / dW = <v h'>_data - <v h'>_model

and the samplers below are four ways to estimate the model average (the *negative phase*):

``"cd"``  (CD-k, Hinton 2002): k Gibbs steps from the mini-batch itself;
``"pcd"`` (persistent CD, Tieleman 2008): ``n_chains`` Markov chains ("fantasy particles") that
          carry over from one update to the next, k Gibbs steps per update; the number of
          chains is independent of the mini-batch size: the update is

              W <- W + eps [ (1/b) sum_r x1_r' h1_r - (1/m) sum_s x2_s' Q(h2 | x2_s) ]

          for b data rows and m chains;
``"fpcd"`` (fast PCD, Tieleman & Hinton 2009): PCD whose chains run on W + W_fast, where the
          fast weights learn with the same gradient g but their own rate and a strong decay,

              W_fast <- fast_decay W_fast + eps_fast g          (fast_decay = 19/20 in the paper)

          so that the chains are pushed away from modes they have just visited (the fast weights
          raise the energy there) and mix faster than the slow weights alone let them (here the
          weights W have fast copies, the biases do not; the negative statistics Q(h | x2) are
          computed on W + W_fast, as the chains move);
``"pt"``  (parallel tempering, Desjardins, Courville, Bengio, Vincent & Delalleau 2010): each
          of the m chains is a ladder of K replicas at inverse temperatures
          1 = beta_1 > beta_2 > ... > beta_K > 0, replica k sampling

              p_beta(v, h) ∝ exp(-E_0(v, h) + beta I(v, h)),
              E_0 = -b.v - c.h,   I(v, h) = v' W h   (Gaussian units: (v / sigma)' W h,
                                                     and the quadratic term in E_0)

          (the interaction is tempered, the biases are not: at beta -> 0 the units are
          independent with the model's own biases, which is Salakhutdinov & Murray's AIS base
          model when the visible biases are the data's marginals; every conditional stays the
          model's with W scaled by beta). After each Gibbs step neighbours k, k + 1 swap their
          states with probability

              min(1, exp((beta_k - beta_{k+1}) (I(x_{k+1}) - I(x_k))))

          (the Metropolis ratio of the swap), for k = 1 .. K-1 in turn; replica 1 (beta = 1)
          provides the negative statistics. The acceptance rate of each pair is recorded in
          ``history["swap_acceptance_<k>"]`` (and their mean in ``history["swap_acceptance"]``):
          rates near 0 mean the ladder is too coarse, near 1 wasteful.

The chains keep their hidden states, ``persistent_chain`` (K m, n_hidden): replica k of chain i
is row k m + i. Every step of every sampler is a composition of the backend's operations (the
products, the fused sigmoid + Bernoulli kernel, the visible layer's sampling) and, for the
swaps, one row-wise dot product (:func:`row_dot`: a NumPy reference and one kernel body for the
cpu and cuda backends); the swap decisions themselves are made on the host from Philox uniforms
(stream ``STREAM_SWAP``), so a seed gives the same chains on every backend (up to the float
rounding of I on the swap's threshold).

:func:`sample` draws from a trained model with plain block Gibbs chains (``"gibbs"``) or
parallel tempering (``"pt"``), from a random binary start.
"""
import numpy as np

from dlcore.backend import rng
from dlcore.backend.registry import body
from dlcore.backend.rng import STREAM_SAMPLE, STREAM_SAMPLE_SWAP
from dlcore.validation import MAX_TEMPERATURES
from dlcore.wording import as_typed

SAMPLERS = ("cd", "pcd", "fpcd", "pt")
SAMPLING_METHODS = ("gibbs", "pt")
#: The geometric ladder's hottest replica: beta_K = 1 / MAX_TEMPERATURE.
MAX_TEMPERATURE = 10.0


def resolve_sampler(sampler, persistent):
    """The sampler meant by ``sampler`` and the older ``persistent`` flag: None means "pcd"
    with ``persistent=True``, else "cd"; ``persistent=True`` with ``sampler="cd"`` is refused
    (the two spellings disagree)."""
    if sampler is None:
        return "pcd" if persistent else "cd"
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {', '.join(map(repr, SAMPLERS))}, got "
                         f"{sampler!r}")
    if persistent and sampler == "cd":
        raise ValueError("persistent=True and sampler='cd' disagree: persistent=True is the "
                         "older spelling of sampler='pcd'; pass one of them")
    return sampler


def default_sampling_method(training_sampler):
    """The method that draws samples from a model trained with ``training_sampler`` when none
    is asked for: "pt" for a model trained by parallel tempering (its ladder, learned with the
    model, mixes where plain chains stick in one mode), else "gibbs" (cd, pcd and fpcd all
    sample by Gibbs steps). What ``rbm.sample(sampler=None)``, ``dbn.sample(sampler=None)`` (of
    its top RBM) and the ``sample`` commands without ``--sampler`` use."""
    return "pt" if training_sampler == "pt" else "gibbs"


def temperature_ladder(n_temperatures, temperatures=None):
    """The inverse temperatures (beta_1 = 1 > ... > beta_K > 0) of a parallel-tempering ladder,
    float64 (K,): ``temperatures`` given (T_1 = 1 < T_2 < ... , beta = 1 / T), else the
    geometric ladder T_k = MAX_TEMPERATURE ** ((k - 1) / (K - 1)) of ``n_temperatures`` rungs.
    ValueError naming the fix otherwise."""
    if temperatures is None or isinstance(temperatures, str) and temperatures == "geometric":
        K = int(n_temperatures)
        if not 2 <= K <= MAX_TEMPERATURES:
            raise ValueError(f"n_temperatures must be from 2 to {MAX_TEMPERATURES} (the rungs "
                             f"a dlcore model file holds), got {as_typed(n_temperatures)}")
        return MAX_TEMPERATURE ** (-np.arange(K) / (K - 1))
    try:
        T = np.asarray(temperatures, dtype=np.float64)
    except (TypeError, ValueError):
        T = None
    if T is None or T.ndim != 1 or not 2 <= T.size <= MAX_TEMPERATURES \
            or not np.all(np.isfinite(T)) or T[0] != 1 or np.any(np.diff(T) <= 0):
        raise ValueError(f"temperatures must be 'geometric' or an increasing list starting at "
                         f"1.0 with from 2 to {MAX_TEMPERATURES} entries (e.g. [1, 2, 4, 8]), "
                         f"got {as_typed(temperatures):.200}")
    return 1.0 / T


def chain_rows(sampler, persistent, n_chains, batch_size, n_temperatures, temperatures):
    """The rows of ``persistent_chain`` for these hyperparameters: K m, with m = ``n_chains``
    (None: ``batch_size``) and K the rungs of the ladder ("pt"; else 1); 0 for "cd"."""
    sampler = resolve_sampler(sampler, persistent)
    if sampler == "cd":
        return 0
    rungs = len(temperature_ladder(n_temperatures, temperatures)) if sampler == "pt" else 1
    return rungs * int(n_chains or batch_size)


# -- one row-wise dot product: NumPy reference and kernel body --------------------------------
@body
def row_dot_span(row, first, last, a, b, out):
    total = 0.0
    for column in range(a.shape[1]):
        total += np.float64(a[row, column]) * np.float64(b[row, column])
    out[row] = total


def row_dot(backend, a, b, out):
    """out[r] = sum_j a[r, j] b[r, j] in float64: a, b (n, m) float32; out (n,) float64 on the
    backend. The interaction I(v, h) = (v W) . h of each chain, from a = v W and b = h."""
    if not backend.launches_kernels:
        out[...] = np.einsum("rj,rj->r", a.astype(np.float64), b.astype(np.float64))
        return
    backend.launch_rows(row_dot_span, a.shape[0], 1, a, b, out, work=a.size)


def swap_replicas(interaction, betas, uniforms):
    """One sweep of neighbour swaps over m independent ladders.

    ``interaction`` (K, m) float64: I of the state at rung k of ladder i; ``betas`` (K,);
    ``uniforms`` (m, K - 1): u[i, k] decides the swap of rungs k, k + 1 of ladder i, accepted
    when u < exp((beta_k - beta_{k+1}) (I_{k+1} - I_k)) (the pairs k = 0 .. K-2 in turn, each
    seeing the states the previous swaps left). Returns ``(source, accepted)``: ``source``
    (K m,) int64, the row (k m + i) whose state moves to row k m + i, and ``accepted`` (K - 1,)
    the number of swaps accepted per pair.
    """
    K, m = interaction.shape
    source = np.arange(K * m, dtype=np.int64).reshape(K, m)
    energy = np.array(interaction, dtype=np.float64)
    accepted = np.zeros(K - 1, dtype=np.int64)
    for k in range(K - 1):
        log_ratio = (betas[k] - betas[k + 1]) * (energy[k + 1] - energy[k])
        swap = uniforms[:, k] < np.exp(np.minimum(log_ratio, 0.0))
        for array in (source, energy):
            array[k, swap], array[k + 1, swap] = array[k + 1, swap], array[k, swap].copy()
        accepted[k] = int(swap.sum())
    return source.reshape(-1), accepted


class Chains:
    """The persistent chains of one sampler (``"pcd"``, ``"fpcd"`` or ``"pt"``) on a backend:
    the state and the buffers of the negative phase (see the module docstring).

    Parameters
    ----------
    backend, visible_units : as the trainer's
    n_visible, n_hidden : int
    n_chains : int, m
    betas : (K,) inverse temperatures (K = 1 but for "pt")
    chain : (K m, n_hidden) hidden states to continue from, or None (started by :meth:`start`)
    fast_W : (n_visible, n_hidden) the fast weights of "fpcd" (None: zeros, or no fast weights)
    fast : bool, whether the chains run on W + W_fast
    unstarted : (K m,) bool, the rows of ``chain`` not started yet (None: all started)
    """

    def __init__(self, backend, visible_units, n_visible, n_hidden, n_chains, betas,
                 chain=None, fast_W=None, fast=False, unstarted=None):
        be = self.backend = backend
        self.units = visible_units
        self.m = int(n_chains)
        self.betas = np.asarray(betas, dtype=np.float64)
        rows = len(self.betas) * self.m
        continued = chain is not None and tuple(chain.shape) == (rows, n_hidden)
        self.hidden = be.asarray(chain) if continued else be.zeros((rows, n_hidden))
        #: the rows not started at the data yet (host bools): PCD with a chain per batch row
        #: starts each when a batch first reaches it, and a first batch shorter than the
        #: chains (partial_fit's first chunk) leaves the rows beyond it for a later one
        self.unstarted = np.full(rows, not continued)
        if continued and unstarted is not None and np.shape(unstarted) == (rows,):
            self.unstarted[...] = unstarted
        self.fast_W = None
        if fast:
            self.fast_W = (be.asarray(fast_W) if fast_W is not None
                           and tuple(fast_W.shape) == (n_visible, n_hidden)
                           else be.zeros((n_visible, n_hidden)))
        self.top_down, self.visible = be.empty((rows, n_visible)), be.empty((rows, n_visible))
        self.up = be.empty((rows, n_hidden))
        #: PCD's chains (one rung, no fast weights) take the trainer's fused calls, which sum
        #: the products of a binary sample (Backend.list_ones: where the backend lists the
        #: ones of the hidden and visible states); tempered rungs and fast weights multiply
        self.sums = len(self.betas) == 1 and self.fast_W is None
        self.hidden_ones = be.ones_lists(rows, n_hidden, n_visible) if self.sums else None
        self.visible_ones = (be.ones_lists(rows, n_visible, n_hidden)
                             if self.sums and visible_units.binary_samples else None)
        #: the ones of the visible states the last :meth:`gibbs_step` drew, as the backend
        #: listed them for the weight step's negative statistic (None: not listed)
        self.visible_listed = None
        if len(self.betas) > 1:
            self.interaction = be.empty((rows,), dtype=np.float64)
            self.swapped = be.empty((rows, n_hidden))
        self.accepted = np.zeros(max(len(self.betas) - 1, 0), dtype=np.int64)
        self.sweeps = 0

    @property
    def started(self):
        """Whether the chains have started at the data (some of them, for PCD with a chain
        per batch row: ``unstarted`` says which not)."""
        return not self.unstarted.all()

    @started.setter
    def started(self, started):
        self.unstarted[...] = not started

    def start(self, hidden):
        """Start every chain at a hidden row of the first mini-batch (row r at ``hidden``'s
        row r mod b): the fantasy particles begin at the data (Tieleman 2008)."""
        indices = np.arange(self.hidden.shape[0]) % hidden.shape[0]
        self.backend.gather_rows(hidden, indices, self.hidden)
        self.started = True

    def start_rows(self, hidden, first):
        """Start the chains of rows ``first .. first + b`` not started yet at the same rows
        of ``hidden`` (b, n_hidden), a batch's hidden sample of its data (PCD with a chain
        per batch row); the others go on from where they are."""
        unstarted = self.unstarted[first:first + hidden.shape[0]]
        if not unstarted.any():   # every batch after the first: nothing to start
            return
        chain = self.hidden[first:first + hidden.shape[0]]
        if unstarted.all():
            self.backend.copy_into(chain, hidden)
        else:
            # each run of consecutive unstarted rows (the tail beyond a shorter first batch)
            edges = np.flatnonzero(np.diff(np.concatenate(([0], unstarted.view(np.int8),
                                                           [0]))))
            for begin, end in zip(edges[::2], edges[1::2]):
                self.backend.copy_into(chain[begin:end], hidden[begin:end])
        unstarted[...] = False

    def _product(self, x, W, out, trans_b):
        """out = beta_k x_k op(W) (+ beta_k x_k op(W_fast)) for each block k of K."""
        be, m = self.backend, self.m
        for k, beta in enumerate(self.betas):
            rows = slice(k * m, (k + 1) * m)
            be.gemm(x[rows], W, out[rows], trans_b=trans_b, alpha=float(beta))
            if self.fast_W is not None:
                be.gemm(x[rows], self.fast_W, out[rows], trans_b=trans_b, alpha=float(beta),
                        beta=1.0)

    def gibbs_step(self, W, visible_bias, hidden_bias, sample_visible, seed, streams, step):
        """h -> v -> h on every chain: v ~ P_beta(v | h), then h ~ Q_beta(h | v), with the
        Philox ``streams`` (visible, hidden) at ``step``. Returns ``(visible, weight_input,
        Q(h = 1 | v))`` of the new state, (K m, .) each; ``visible`` is the visible means
        without ``sample_visible``."""
        be, units = self.backend, self.units
        sample = self.visible if sample_visible else None
        self.visible_listed = None
        # PCD: the same draws, each product with its sigmoids in one call, as the trainer's CD
        if self.sums:
            units.sample_from_hidden(be, self.hidden, W, self.top_down, visible_bias, sample,
                                     seed, streams[0], step,
                                     hidden_ones=be.list_ones(self.hidden, self.hidden_ones))
        else:
            self._product(self.hidden, W, self.top_down, trans_b=True)
            units.sample(be, self.top_down, visible_bias, sample, seed, streams[0], step)
        visible = self.visible if sample_visible else self.top_down
        weight_input = units.weight_input(be, visible, "model")
        if self.sums:
            if sample_visible and units.binary_samples:
                self.visible_listed = be.list_ones(weight_input, self.visible_ones)
            be.gemm_sigmoid_bernoulli(weight_input, W, self.up, hidden_bias, self.hidden, seed,
                                      streams[1], step, a_ones=self.visible_listed)
        else:
            self._product(weight_input, W, self.up, trans_b=False)
            be.sigmoid_bernoulli(self.up, hidden_bias, self.hidden, seed, streams[1], step)
        return visible, weight_input, self.up

    def swap(self, weight_input, W, seed, stream, step):
        """One sweep of neighbour swaps (:func:`swap_replicas`) between the replicas of the
        state (v, h) the last :meth:`gibbs_step` left, I = (input(v) W) . h, with the Philox
        uniforms of (``stream``, ``step``): row i, column k for pair k of chain i."""
        be, K, m = self.backend, len(self.betas), self.m
        # the interaction at beta = 1 (the slow weights: "pt" has no fast ones)
        be.gemm(weight_input, W, self.swapped)
        row_dot(be, self.swapped, self.hidden, self.interaction)
        interaction = be.to_numpy(self.interaction).reshape(K, m)
        uniforms = rng.uniform(m, K - 1, seed, stream, step)
        source, accepted = swap_replicas(interaction, self.betas, uniforms)
        self.accepted += accepted
        self.sweeps += 1
        be.gather_rows(self.hidden, source, self.swapped)
        be.copy_into(self.hidden, self.swapped)

    def take_acceptance(self):
        """The swap acceptance rate of each neighbour pair since the last call, (K - 1,)
        float64 (NaN before any sweep), and start counting again."""
        rates = self.accepted / max(self.sweeps * self.m, 1)
        if self.sweeps == 0:
            rates = np.full(len(self.accepted), np.nan)
        self.accepted[:] = 0
        self.sweeps = 0
        return rates


def sample(backend, parameters, visible_units, n_samples, steps, method, betas, seed, call,
           probabilities=False):
    """``n_samples`` visible samples of an RBM after ``steps`` Gibbs steps of ``n_samples``
    independent chains from random binary hidden states, by plain block Gibbs sampling
    (``method="gibbs"``) or parallel tempering (``"pt"``: each chain a ladder of the inverse
    temperatures ``betas``, neighbours swapping after every step; the beta = 1 replicas are
    returned).

    The chains start at random binary hidden states, h0 = [u < 1/2] with the uniforms of
    ``STREAM_SAMPLE_START`` at step ``call``; the
    Gibbs step t draws from ``STREAM_SAMPLE + 2 t`` (visible) and ``+ 2 t + 1`` (hidden), the
    swaps after it from ``STREAM_SAMPLE_SWAP + t``, all at step ``call``. Returns
    (n_samples, n_visible) float32: binary states (the visible sample of the last step; for
    Gaussian units the real-valued sample), or with ``probabilities`` the last step's
    P(v = 1 | h) (the visible means of Gaussian units).
    """
    be = backend
    W = be.asarray(parameters["W"])
    visible_bias = be.asarray(parameters["visible_bias"])
    hidden_bias = be.asarray(parameters["hidden_bias"])
    n_visible, n_hidden = W.shape
    betas = np.ones(1) if method == "gibbs" else np.asarray(betas, dtype=np.float64)
    rows = len(betas) * n_samples
    chains = Chains(be, visible_units, n_visible, n_hidden, n_samples, betas)
    start = rng.uniform(rows, n_hidden, seed, rng.STREAM_SAMPLE_START, call) < 0.5
    be.copy_into(chains.hidden, be.asarray(start.astype(np.float32)))
    with be.compute():
        for t in range(steps):
            _, weight_input, _ = chains.gibbs_step(
                W, visible_bias, hidden_bias, True, seed,
                (STREAM_SAMPLE + 2 * t, STREAM_SAMPLE + 2 * t + 1), call)
            if method == "pt" and t + 1 < steps:
                chains.swap(weight_input, W, seed, STREAM_SAMPLE_SWAP + t, call)
    last = chains.top_down if probabilities else chains.visible
    return be.to_numpy(last[:n_samples]).copy()
