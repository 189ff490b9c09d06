"""What a Bernoulli RBM *is*: its energy, its conditionals and its free energy, in NumPy.

The restricted Boltzmann machine (Smolensky 1986; Lecture "Deep Neural Networks" (DBN/RBM), slide
"Restricted Boltzmann Machine") has binary visible units v (n_visible,) and binary hidden units h
(n_hidden,), connected only across the layers ("We restrict the connectivity", "No connections
between hidden units"). The slides draw it and do not write its energy; that and the free energy
below are the standard ones (Hinton 2010, "A Practical Guide to Training RBMs"):

    E(v, h) = - b.v - c.h - v' W h                    (energy)
    P(v, h) = exp(-E(v, h)) / Z,   Z = sum_{v,h} exp(-E(v, h))

with ``W`` (n_visible, n_hidden), visible bias ``b`` (n_visible,) and hidden bias ``c``
(n_hidden,). No hidden-hidden or visible-visible connections make the conditionals factorise:

    Q(h_j = 1 | v) = sigm(c_j + sum_i v_i W_ij)
    P(v_i = 1 | h) = sigm(b_i + sum_j W_ij h_j)

The letters are those of the lecture's slide "Learning an RBM" (Delta w_ij = eps (<v_i h_j>^0 -
<v_i h_j>^1)): visible unit i, hidden unit j, W_ij = ``W[i, j]``. Its slide "RBM Weight Update"
names them the other way round, hidden unit i and visible unit j, and writes x for v, so that
its W_ij, from visible unit j to hidden unit i, is our ``W[j, i]`` (its W is our ``W`` transposed).
The same two lines in that slide's letters, as :mod:`dlcore.rbm.trainer` quotes them:

    Q(h_1i = 1 | x_1) = sigm(c_i + sum_j W_ij x_1j)      here: hidden_probability(x1, W, c)[:, i]
    P(x_2j = 1 | h_1) = sigm(b_j + sum_i W_ij h_1i)      here: visible_probability(h1, W, b)[:, j]

and summing out the hidden units gives the free energy

    F(v) = - log sum_h exp(-E(v, h)) = - b.v - sum_j log(1 + exp(c_j + v.W_j)),

so that P(v) = exp(-F(v)) / Z. Arrays hold one sample per row; every function takes a batch.
These functions are the oracle of the kernels and of the tests; training itself goes through a
backend (:mod:`dlcore.rbm.trainer`).

Gaussian visible units
----------------------
For real-valued data (image patches: the lecture's "Demo: RBM for an Image", homework Task 2) the
visible units are Gaussian with standard deviations sigma (n_visible,) (Hinton 2010, sec. 13.2;
Krizhevsky 2009, ch. 1.4.1), and the hidden units stay binary:

    E(v, h) = sum_i (v_i - b_i)^2 / (2 sigma_i^2) - c.h - sum_ij (v_i / sigma_i) W_ij h_j

    Q(h_j = 1 | v) = sigm(c_j + sum_i (v_i / sigma_i) W_ij)
    P(v_i | h)     = N(b_i + sigma_i sum_j W_ij h_j, sigma_i^2)
    F(v) = sum_i (v_i - b_i)^2 / (2 sigma_i^2) - sum_j softplus(c_j + sum_i (v_i / sigma_i) W_ij)

The ``gaussian_*`` functions below are those lines; with sigma = 1 (standardised data, the
default of :class:`dlcore.GaussianBernoulliRBM`) the hidden side is the Bernoulli RBM's.
"""
import numpy as np

from dlcore.backend.reference import sigmoid


def softplus(x):
    """log(1 + exp(x)), computed without overflow as logaddexp(0, x)."""
    return np.logaddexp(0, x)


def hidden_probability(visible, W, hidden_bias):
    """Q(h_j = 1 | v) = sigm(c_j + sum_i v_i W_ij).

    visible (n, n_visible), W (n_visible, n_hidden), hidden_bias (n_hidden,) -> (n, n_hidden).
    """
    return sigmoid(visible @ W + hidden_bias)


def visible_probability(hidden, W, visible_bias):
    """P(v_i = 1 | h) = sigm(b_i + sum_j W_ij h_j).

    hidden (n, n_hidden), W (n_visible, n_hidden), visible_bias (n_visible,) -> (n, n_visible).
    """
    return sigmoid(hidden @ W.T + visible_bias)


def energy(visible, hidden, W, visible_bias, hidden_bias):
    """E(v, h) = -b.v - c.h - v'Wh for each row pair; (n, n_visible), (n, n_hidden) -> (n,)."""
    interaction = np.einsum("ni,ij,nj->n", visible, W, hidden)
    return -(visible @ visible_bias) - (hidden @ hidden_bias) - interaction


def free_energy(visible, W, visible_bias, hidden_bias):
    """F(v) = -b.v - sum_j log(1 + exp(c_j + v.W_j)); (n, n_visible) -> (n,)."""
    return -(visible @ visible_bias) - softplus(visible @ W + hidden_bias).sum(axis=1)


def free_energy_of_hidden(hidden, W, visible_bias, hidden_bias):
    """The free energy with the *visible* units summed out, the mirror image of F(v):

        F(h) = -c.h - sum_i log(1 + exp(b_i + W_i.h));   (n, n_hidden) -> (n,).
    """
    return -(hidden @ hidden_bias) - softplus(hidden @ W.T + visible_bias).sum(axis=1)


# -- Gaussian visible units ---------------------------------------------------------------
def gaussian_hidden_probability(visible, W, hidden_bias, sigma):
    """Q(h_j = 1 | v) = sigm(c_j + sum_i (v_i / sigma_i) W_ij).

    visible (n, n_visible), W (n_visible, n_hidden), hidden_bias (n_hidden,),
    sigma (n_visible,) -> (n, n_hidden).
    """
    return sigmoid((visible / sigma) @ W + hidden_bias)


def gaussian_visible_mean(hidden, W, visible_bias, sigma):
    """E[v_i | h] = b_i + sigma_i sum_j W_ij h_j, the mean of P(v_i | h) = N(mean, sigma_i^2).

    hidden (n, n_hidden) -> (n, n_visible).
    """
    return visible_bias + sigma * (hidden @ W.T)


def gaussian_energy(visible, hidden, W, visible_bias, hidden_bias, sigma):
    """E(v, h) = sum_i (v_i - b_i)^2 / (2 sigma_i^2) - c.h - sum_ij (v_i / sigma_i) W_ij h_j
    for each row pair; (n, n_visible), (n, n_hidden) -> (n,)."""
    quadratic = (((visible - visible_bias) / sigma) ** 2).sum(axis=1) / 2
    interaction = np.einsum("ni,ij,nj->n", visible / sigma, W, hidden)
    return quadratic - hidden @ hidden_bias - interaction


def gaussian_free_energy(visible, W, visible_bias, hidden_bias, sigma):
    """F(v) = sum_i (v_i - b_i)^2 / (2 sigma_i^2) - sum_j softplus(c_j + (v / sigma).W_j);
    (n, n_visible) -> (n,). p(v) = exp(-F(v)) / Z is a density over real vectors."""
    quadratic = (((visible - visible_bias) / sigma) ** 2).sum(axis=1) / 2
    return quadratic - softplus((visible / sigma) @ W + hidden_bias).sum(axis=1)


def gaussian_free_energy_of_hidden(hidden, W, visible_bias, hidden_bias, sigma):
    """The visible units integrated out: with u = W h (n, n_visible),

        -log integral exp(-E(v, h)) dv
            = -c.h - sum_i [u_i^2 / 2 + b_i u_i / sigma_i + log(sqrt(2 pi) sigma_i)]

    (complete the square: v_i = b_i + sigma_i (y_i + u_i) with y_i ~ N(0, 1)).
    (n, n_hidden) -> (n,).
    """
    top_down = hidden @ W.T
    per_unit = top_down ** 2 / 2 + top_down * (visible_bias / sigma)
    normaliser = np.sum(np.log(np.sqrt(2 * np.pi) * sigma))
    return -(hidden @ hidden_bias) - per_unit.sum(axis=1) - normaliser
