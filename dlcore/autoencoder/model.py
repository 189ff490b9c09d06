"""What an autoencoder computes, in NumPy, one function per equation: the oracle of the kernels.

Lecture "Supervised learning" (the CVPR 2014 tutorial) places the "Deep (sparse/denoising)
Autoencoder" beside the Restricted BM and the Deep Belief Net, and its learning protocols
"train each layer in sequence using regularized auto-encoders or RBMs"; lecture "Deep Neural
Networks" lists the "Deep net, auto-associator pre-training" row of Bengio et al.'s table. The
denoising autoencoder of Vincent, Larochelle, Bengio & Manzagol (2008), with our W stored as
(n_visible, n_hidden) like an RBM's, so that ``x @ W`` is the hidden input:

    x~ ~ q(x~ | x)                     corruption (:mod:`dlcore.autoencoder.corruption`)
    h = s(x~ W + b)                    encoder: W (n_visible, n_hidden), b = ``hidden_bias``
    r = s'(h W' + c)                   decoder: c = ``visible_bias``; W' (n_hidden, n_visible) is
                                       W^T (tied weights) or its own ``W_decoder`` (untied)

and the reconstruction of the *clean* x is scored, per sample, by

    L(x, r) = - sum_i [x_i log r_i + (1 - x_i) log(1 - r_i)]    cross-entropy (x in [0, 1],
                                                                 s' the sigmoid)
    L(x, r) = sum_i (r_i - x_i)^2                                squared error

A sparse autoencoder adds the KL penalty of each hidden unit's mean activation over the batch,
rho^_j = mean_n h_nj, towards a target rho, the "desired sparsity level" of lecture
"Convolutional neural networks", slide "Sparse representations" (Ng's "Sparse autoencoder"
notes; lecture "Supervised learning", "Good To Know": "hidden units are sparse across samples
and across features"):

    KL(rho || rho^_j) = rho log(rho / rho^_j) + (1 - rho) log((1 - rho) / (1 - rho^_j))

The cost of a mini-batch of N rows is J = (1/N) sum_n L(x_n, r_n) + beta sum_j KL(rho || rho^_j),
and back-propagation ("Supervised learning", slide "Backward Propagation") gives, with
a_r = h W' + c and a_h = x~ W + b the pre-activations:

    delta_r = dJ/da_r = (r - x) / N                  cross-entropy, sigmoid output (the same
                                                     "p - y" as softmax + NLL)
                      = 2 (r - x) / N                squared error, linear output
                      = 2 (r - x) r (1 - r) / N      squared error, sigmoid output
    dJ/dW' = h' delta_r,    dJ/dc = sum_n delta_r
    delta_h = dJ/da_h = (delta_r W'^T + (beta / N) (-rho / rho^ + (1 - rho) / (1 - rho^))) * s'(a_h)
    dJ/dW = x~' delta_h,    dJ/db = sum_n delta_h

and with tied weights W appears twice, in the encoder and (as W^T) in the decoder, so its
gradient is the sum of both uses:

    dJ/dW = x~' delta_h + (h' delta_r)' = x~' delta_h + delta_r' h

Shapes: x, x~, r, delta_r (N, n_visible); h, delta_h (N, n_hidden). Every function is pure and
works in float32 or float64 (the gradient checks use float64).
"""
import numpy as np

from dlcore.layers.reference import activation_backward, activation_forward
from dlcore.losses import CLIP

#: Hidden (encoder) and output (decoder) activations, and the reconstruction losses.
ENCODER_ACTIVATIONS = ("sigmoid", "tanh", "relu", "linear")
DECODER_ACTIVATIONS = ("sigmoid", "linear")
LOSSES = ("cross_entropy", "mse")


def decoder_weights(parameters, tied):
    """W' (n_hidden, n_visible): W^T with tied weights, else the decoder's own ``W_decoder``."""
    return parameters["W"].T if tied else parameters["W_decoder"]


def encode(x, W, hidden_bias, activation):
    """h = s(x W + b): (N, n_visible) -> (N, n_hidden)."""
    return activation_forward(activation, x @ W + hidden_bias)


def decode(h, W_decoder, visible_bias, decoder_activation):
    """r = s'(h W' + c): (N, n_hidden) -> (N, n_visible), with W' (n_hidden, n_visible)."""
    return activation_forward(decoder_activation, h @ W_decoder + visible_bias)


def pixel_losses(x, r, loss):
    """The loss of every element, (N, n_visible): -[x log r + (1 - x) log(1 - r)] (r clipped
    to [1e-7, 1 - 1e-7], as :mod:`dlcore.losses` clips probabilities) or (r - x)^2."""
    if loss == "cross_entropy":
        p = np.clip(r, CLIP, 1 - CLIP)
        return -(x * np.log(p) + (1 - x) * np.log(1 - p))
    return (r - x) ** 2


def reconstruction_loss(x, r, loss):
    """L(x, r) per sample: the sum over the visible units of :func:`pixel_losses`, (N,)."""
    return pixel_losses(x, r, loss).sum(axis=1)


def output_delta(x, r, loss, decoder_activation):
    """dL/da_r for one sample's loss, (N, n_visible) (the module docstring's delta_r times N):
    r - x (cross-entropy through a sigmoid), 2 (r - x) (squared error, linear output), or
    2 (r - x) r (1 - r) (squared error through a sigmoid)."""
    if loss == "cross_entropy":
        return r - x
    return activation_backward(decoder_activation, r, 2 * (r - x))


def mean_activation(h, batch_sums=None):
    """rho^_j = mean over the batch of h_nj, clipped to [1e-7, 1 - 1e-7] so that the KL stays
    finite; (N, n_hidden) -> (n_hidden,). ``batch_sums`` (data-parallel training: h is a shard
    of a larger batch): ``(sums, rows)``, the column sums (n_hidden,) of that whole batch and
    its number of rows, so rho^_j = sums_j / rows."""
    mean = h.mean(axis=0) if batch_sums is None else batch_sums[0] / batch_sums[1]
    return np.clip(mean, CLIP, 1 - CLIP)


def unit_kl(h, target, batch_sums=None):
    """KL(rho || rho^_j) of every hidden unit j, (n_hidden,), from a batch h (N, n_hidden) of
    activations in (0, 1) (``batch_sums`` as for :func:`mean_activation`)."""
    q = mean_activation(h, batch_sums)
    return target * np.log(target / q) + (1 - target) * np.log((1 - target) / (1 - q))


def kl_sparsity_gradient(h, target, batch_sums=None):
    """d/dh_nj of sum_j KL(rho || rho^_j) = (1/N) (-rho / rho^_j + (1 - rho) / (1 - rho^_j)),
    the same for every row n: (N, n_hidden). With ``batch_sums`` (:func:`mean_activation`)
    rho^ is the whole batch's; the 1/N stays h's own N, as the rest of the gradient of a
    shard is its mean, which data-parallel training weights by N / rows."""
    q = mean_activation(h, batch_sums)
    row = (-target / q + (1 - target) / (1 - q)) / h.shape[0]
    return np.broadcast_to(row, h.shape).astype(h.dtype)


def forward(x_tilde, parameters, tied, activation, decoder_activation):
    """``(h, r)``: the code h = s(x~ W + b) and the reconstruction r = s'(h W' + c)."""
    h = encode(x_tilde, parameters["W"], parameters["hidden_bias"], activation)
    return h, decode(h, decoder_weights(parameters, tied), parameters["visible_bias"],
                     decoder_activation)


def cost(x, x_tilde, parameters, tied, activation, decoder_activation, loss,
         sparsity_target=None, sparsity_cost=0.0):
    """J = (1/N) sum_n L(x_n, r_n) + beta sum_j KL(rho || rho^_j), r reconstructed from the
    corrupted x~ (a float, in the dtype's precision)."""
    h, r = forward(x_tilde, parameters, tied, activation, decoder_activation)
    value = float(reconstruction_loss(x, r, loss).mean())
    if sparsity_target is not None:
        value += sparsity_cost * float(unit_kl(h, sparsity_target).sum())
    return value


def backward(x, x_tilde, h, r, parameters, tied, activation, decoder_activation, loss,
             sparsity_target=None, sparsity_cost=0.0, batch_sums=None):
    """dJ/dtheta of :func:`cost` for every parameter, by the back-propagation of the module
    docstring, from the forward pass's ``h`` and ``r``.

    Parameters
    ----------
    x : (N, n_visible) the clean batch, the target of the reconstruction
    x_tilde : (N, n_visible) its corrupted copy, the encoder's input
    h, r : (N, n_hidden), (N, n_visible): :func:`forward` of x_tilde
    parameters : dict of ``W`` (n_visible, n_hidden), ``hidden_bias`` (n_hidden,),
        ``visible_bias`` (n_visible,) and, untied, ``W_decoder`` (n_hidden, n_visible)
    tied, activation, decoder_activation, loss, sparsity_target, sparsity_cost : the model's
    batch_sums : None, or ``(sums, rows)`` of a larger batch x is a shard of (data-parallel
        training): its hidden column sums, from which rho^ (:func:`mean_activation`)

    Returns
    -------
    dict with the same keys as ``parameters``: the gradients, same shapes.
    """
    n = x.shape[0]
    W_decoder = decoder_weights(parameters, tied)
    delta_r = output_delta(x, r, loss, decoder_activation) / n
    back = delta_r @ W_decoder.T
    if sparsity_target is not None:
        back = back + sparsity_cost * kl_sparsity_gradient(h, sparsity_target, batch_sums)
    delta_h = activation_backward(activation, h, back)
    grads = {"W": x_tilde.T @ delta_h, "hidden_bias": delta_h.sum(axis=0),
             "visible_bias": delta_r.sum(axis=0)}
    if tied:
        grads["W"] = grads["W"] + delta_r.T @ h       # the decoder's use of W, transposed
    else:
        grads["W_decoder"] = h.T @ delta_r
    return grads


def gradients(x, x_tilde, parameters, **model):
    """:func:`backward` after :func:`forward`: the gradient of :func:`cost` at ``parameters``
    (``model``: ``tied``, ``activation``, ``decoder_activation``, ``loss``,
    ``sparsity_target``, ``sparsity_cost``)."""
    h, r = forward(x_tilde, parameters, model["tied"], model["activation"],
                   model["decoder_activation"])
    return backward(x, x_tilde, h, r, parameters, **model)
