"""What a Bernoulli RBM *is*: its energy, its conditionals and its free energy, in NumPy.

The restricted Boltzmann machine (Smolensky 1986; lecture 001_43bbffd0393e553f.txt, "Restricted
Boltzmann Machine") has binary visible units v (n_visible,) and binary hidden units h
(n_hidden,), connected only across the layers:

    E(v, h) = - b.v - c.h - v' W h                    (energy)
    P(v, h) = exp(-E(v, h)) / Z,   Z = sum_{v,h} exp(-E(v, h))

with ``W`` (n_visible, n_hidden), visible bias ``b`` (n_visible,) and hidden bias ``c``
(n_hidden,). No hidden-hidden or visible-visible connections make the conditionals factorise
(the lecture's "for all hidden units i do ... compute Q(h_1i = 1 | x_1)"):

    Q(h_j = 1 | v) = sigm(c_j + sum_i v_i W_ij)
    P(v_i = 1 | h) = sigm(b_i + sum_j W_ij h_j)

and summing out the hidden units gives the free energy

    F(v) = - log sum_h exp(-E(v, h)) = - b.v - sum_j log(1 + exp(c_j + v.W_j)),

so that P(v) = exp(-F(v)) / Z. Arrays hold one sample per row; every function takes a batch.
These functions are the oracle of the kernels and of the tests; training itself goes through a
backend (:mod:`dlcore.rbm.trainer`).
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
