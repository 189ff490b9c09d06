"""How an autoencoder is trained: corrupt, encode, decode, back-propagate, step.

One step on a mini-batch x (N, n_visible), the equations of :mod:`dlcore.autoencoder.model`
line by line (:meth:`AutoencoderTrainer.step`):

    x~ ~ q(x~ | x)                               corrupt (skipped at corruption 0: x~ = x)
    h = s(x~ W + b)                              encode
    r = s'(h W' + c)                             decode, W' = W^T when tied
    dJ/dW, dJ/db, dJ/dc (and dJ/dW')             backward: J = mean_n L(x_n, r_n) + beta KL
    theta <- theta - eps Delta,  Delta <- mu Delta + dJ/dtheta      SGD with momentum

The last line is the optimiser every network of dlcore uses, :class:`dlcore.optimizers.SGD`
with momentum (lecture "Supervised learning", "Stochastic Gradient Descent with Momentum"), on
the autoencoder's parameter arrays; its velocities are the model's training state. The numbers
of the corruption come from Philox at (``seed``, ``STREAM_CORRUPT``, step = the update number),
so a run is reproducible and a resumed one continues the same sequence.

All arrays live on the backend; the batch buffers (of ``min(batch_size, rows of the data)``
rows) are allocated once per trainer and an epoch walks its mini-batches with
:func:`dlcore.batches.mini_batches`, as the RBM trainer does.
"""
from dataclasses import dataclass

import numpy as np

from dlcore.batches import mini_batches
from dlcore.optimizers import SGD, Parameter

from .ops import Monitors, Workspace, ops_for


@dataclass
class AESettings:
    """The hyperparameters one training step needs (see :class:`dlcore.Autoencoder`)."""

    tied: bool
    activation: str
    decoder_activation: str
    loss: str
    corruption: float
    corruption_kind: str
    sparsity_target: float | None
    sparsity_cost: float
    learning_rate: float
    momentum: float
    batch_size: int
    seed: int

    def model_options(self):
        """The keyword arguments of :func:`dlcore.autoencoder.model.cost` and ``backward``."""
        return {"tied": self.tied, "activation": self.activation,
                "decoder_activation": self.decoder_activation, "loss": self.loss,
                "sparsity_target": self.sparsity_target, "sparsity_cost": self.sparsity_cost}


def parameter_names(tied):
    """The autoencoder's parameter arrays: W, the biases and, untied, the decoder's W'."""
    return ("W", "hidden_bias", "visible_bias") + (() if tied else ("W_decoder",))


class AutoencoderTrainer:
    """SGD with momentum on one autoencoder's parameters, on one backend.

    Parameters
    ----------
    backend : dlcore.backend.Backend
    parameters : dict of NumPy float32 arrays: ``W`` (n_visible, n_hidden), ``hidden_bias``
        (n_hidden,), ``visible_bias`` (n_visible,) and, untied, ``W_decoder``
        (n_hidden, n_visible). On host backends they are updated in place.
    state : dict: ``velocity_<name>`` for every parameter (same shapes)
    settings : AESettings
    rows : int, optional
        The rows of the data it will train on: the batch buffers hold ``min(batch_size,
        rows)`` rows (a ``batch_size`` beyond the data allocates no more than the data;
        default ``batch_size``).
    """

    def __init__(self, backend, parameters, state, settings, rows=None):
        self.backend = be = backend
        self.settings = settings
        self.ops = ops_for(backend)
        self.options = settings.model_options()
        names = parameter_names(settings.tied)
        self.parameters = {name: be.asarray(parameters[name]) for name in names}
        self.grads = {name: be.zeros(self.parameters[name].shape) for name in names}
        self.slots = [Parameter(key=f"autoencoder/{name}", value=self.parameters[name],
                                grad=self.grads[name],
                                slots={"velocity": be.asarray(state[f"velocity_{name}"])})
                      for name in names]
        self.optimizer = SGD(learning_rate=settings.learning_rate, momentum=settings.momentum)
        self.optimizer.build(self.slots, be)
        n_visible, n_hidden = self.parameters["W"].shape
        batch = settings.batch_size if rows is None else max(1, min(settings.batch_size, int(rows)))
        self.x, self.x_tilde, self.r = (be.empty((batch, n_visible)) for _ in range(3))
        self.h = be.empty((batch, n_hidden))
        self.workspace = Workspace(be.empty((batch, n_visible)), be.empty((batch, n_hidden)),
                                   be.empty((batch, n_hidden)), be.empty((n_hidden,)))
        self.monitors = Monitors(be.zeros((n_visible,)), be.zeros((n_visible,)),
                                 be.zeros((n_hidden,)))

    def step(self, x, update, shard=None):
        """One update from the mini-batch ``x`` (N, n_visible) (module docstring); ``update``
        numbers it: the Philox step of its corruption. ``shard`` (data-parallel training,
        :mod:`dlcore.distributed.autoencoder`): ``x`` is rows ``shard.first_row ..`` of a
        global batch, corrupted as those rows, ``shard.sum_activations`` gives the sparsity
        penalty the global batch's column sums of h, and ``shard.sum_gradients`` turns the
        gradient of these rows into the global batch's before the step."""
        s, ops, p = self.settings, self.ops, self.parameters
        n = x.shape[0]
        first = 0 if shard is None else shard.first_row
        x_tilde, h, r = self.x_tilde[:n], self.h[:n], self.r[:n]
        # x~ ~ q(x~ | x)
        if s.corruption > 0:
            ops.corrupt(x, x_tilde, s.corruption_kind, s.corruption, s.seed, update,
                        first_row=first)
        else:
            x_tilde = x
        # h = s(x~ W + b)
        ops.encode(x_tilde, p["W"], p["hidden_bias"], s.activation, h)
        # r = s'(h W' + c)
        ops.decode(h, p["W"] if s.tied else p["W_decoder"], s.tied, p["visible_bias"],
                   s.decoder_activation, r)
        batch = None
        if shard is not None and s.sparsity_target is not None:
            # the sparsity penalty's rho^ is the global batch's mean activation
            batch = shard.sum_activations(ops, h, self.workspace.scratch)
        # dJ/dtheta, by back-propagation; the monitors summed per unit
        if n or shard is None:   # a rank's shard may hold no row
            ops.backward(x, x_tilde, h, r, p, self.grads, self.options, self.monitors,
                         self.workspace, batch)
        if shard is not None:
            shard.sum_gradients(self.slots, n)
        # Delta <- mu Delta + dJ/dtheta;  theta <- theta - eps Delta
        self.optimizer.apply(self.slots)

    def epoch(self, data, order, first_update, report=None, report_every=None):
        """One pass over ``data`` (N, n_visible, on the backend) in the row ``order``
        (:func:`dlcore.batches.epoch_order`), one :meth:`step` per mini-batch.

        Returns ``(next_update, monitors)``: ``monitors`` a dict of ``loss`` (the cost J of the
        pass: the reconstruction loss per sample plus beta times the batches' mean KL
        penalty), ``reconstruction_loss`` (that loss per sample alone) and
        ``reconstruction_error`` (the squared error per pixel between x and r).
        ``report(batches_done, n_batches, running_loss)`` is called about 50 times a pass.
        """
        be = self.backend
        for total in self.monitors:
            be.copy_into(total, be.zeros(total.shape))
        update = first_update
        for batch in mini_batches(be, (data,), (self.x,), order, self.settings.batch_size,
                                  report_every):
            self.step(batch.arrays[0], update)
            update += 1
            if report is not None and batch.reports:
                report(batch.index + 1, batch.n_batches,
                       self._means(batch.rows_done, batch.index + 1)["loss"])
        return update, self._means(len(order), -(-len(order) // self.settings.batch_size))

    def _means(self, n_rows, n_batches):
        loss, squared, penalty = (float(np.sum(self.backend.to_numpy(total), dtype=np.float64))
                                  for total in self.monitors)
        cost = loss / n_rows
        if self.settings.sparsity_target is not None:
            cost += self.settings.sparsity_cost * penalty / n_batches
        return {"loss": cost, "reconstruction_loss": loss / n_rows,
                "reconstruction_error": squared / (n_rows * self.monitors.loss.shape[0])}

    def download(self):
        """``(parameters, state)`` as NumPy arrays (copies from a GPU): the parameters and
        their momentum buffers ``velocity_<name>``."""
        to_numpy = self.backend.to_numpy
        parameters = {name: np.array(to_numpy(value)) for name, value in self.parameters.items()}
        state = {f"velocity_{slot.key.split('/')[1]}": np.array(to_numpy(slot.slots["velocity"]))
                 for slot in self.slots}
        return parameters, state
