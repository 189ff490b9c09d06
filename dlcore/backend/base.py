"""The operations every backend provides, with their equations and shapes.

A model is written once against this interface (see ``dlcore/rbm/trainer.py``); a backend
decides where the arrays live and how the operations run:

* ``reference`` (:mod:`dlcore.backend.reference`): NumPy, one readable line per equation;
  the oracle of the tests.
* ``cpu`` (:mod:`dlcore.backend.cpu`) and ``cuda`` (:mod:`dlcore.backend.cuda`): matrix products
  through BLAS / cuBLAS, everything else in fused Numba kernels built from the element bodies of
  :mod:`dlcore.backend.kernel_backend`, which both compile from the same source.

Arrays are float32, C-contiguous, rows are samples. Random operations take the model's ``seed``
(the Philox key) and the ``stream`` and ``step`` counter words (see :mod:`dlcore.backend.rng`).
"""
import contextlib

import numpy as np


class Backend:
    """Abstract backend. Subclasses implement every method below."""

    name = "abstract"
    dtype = np.float32

    # -- what the backend can do: code outside dlcore/backend asks these, never the name -----
    #: Whether the backend runs the shared kernel bodies (:meth:`launch_rows` and
    #: :meth:`launch_1d` of :class:`dlcore.backend.kernel_backend.KernelBackend`). Without, a caller
    #: writes each operation as its NumPy equation: that is the reference.
    launches_kernels = False
    #: Whether its kernels are Numba loops over NumPy arrays in host memory, so that a
    #: host-only strategy (a convolution per sample that calls BLAS itself) may run on its
    #: arrays.
    host_kernels = False

    # -- memory -------------------------------------------------------------------------
    def asarray(self, array, dtype=np.float32):
        """The backend's C-contiguous copy (or view, on the host) of a NumPy ``array``."""
        raise NotImplementedError

    def empty(self, shape, dtype=np.float32):
        raise NotImplementedError

    def zeros(self, shape, dtype=np.float32):
        raise NotImplementedError

    def to_numpy(self, array):
        """A NumPy array with the values of a backend array (a copy when it lives on a GPU)."""
        raise NotImplementedError

    def copy_into(self, destination, source):
        """``destination[...] = source`` for two arrays of this backend."""
        raise NotImplementedError

    def synchronize(self):
        """Wait until queued work has finished (a no-op on the host)."""

    def compute(self, small_products=False):
        """A context manager around a stretch of work (a fit, a batch of samples): the CPU
        backend uses it to give its threads to the kernels (see :mod:`dlcore.backend.cpu`).
        ``small_products``: the stretch multiplies small matrices (a network's mini-batches),
        which the reference then runs on one BLAS thread."""
        return contextlib.nullcontext()

    # -- linear algebra -----------------------------------------------------------------
    def gemm(self, a, b, out, trans_a=False, trans_b=False, alpha=1.0, beta=0.0):
        """General matrix product into ``out``:

            out <- alpha * op(a) @ op(b) + beta * out,   op(x) = x.T if trans else x

        ``out`` (m, n); op(a) (m, k); op(b) (k, n). With ``beta != 0`` the product is folded
        into what ``out`` holds (a momentum buffer, say) without a temporary.
        """
        raise NotImplementedError

    # -- fused element-wise operations --------------------------------------------------
    def sigmoid_bernoulli(self, pre_activation, bias, sample, seed, stream, step, first_row=0):
        """Probabilities of binary units, and optionally a sample of them, in one pass:

            p[r, j] = sigm(pre_activation[r, j] + bias[j]),   sigm(x) = 1 / (1 + exp(-x))
            sample[r, j] = 1 if u[r, j] < p[r, j] else 0,     u from Philox(seed, stream, step)

        ``pre_activation`` (n, m) is overwritten with p; ``bias`` (m,); ``sample`` (n, m), or
        None to compute the probabilities only. ``first_row``: the Philox row of row 0 (u[r, j]
        is drawn at row first_row + r), non-zero for a shard of a data-parallel batch.
        """
        raise NotImplementedError

    def gemm_sigmoid_bernoulli(self, a, b, out, bias, sample, seed, stream, step,
                               trans_b=False, first_row=0, a_ones=None):
        """A product and the binary units it drives, in one call:

            out[r, j] = sigm((a @ op(b))[r, j] + bias[j]),    op(b) = b.T if trans_b else b
            sample[r, j] = 1 if u[r, j] < out[r, j] else 0    (u as in :meth:`sigmoid_bernoulli`)

        ``a`` (n, k); op(b) (k, m); ``out`` (n, m); ``bias`` (m,); ``sample`` (n, m) or None;
        ``first_row`` as for :meth:`sigmoid_bernoulli`.
        :meth:`gemm` then :meth:`sigmoid_bernoulli`, the same numbers; a backend may fuse them
        (the CPU applies the sigmoid to each block of the product right after computing it).
        ``a_ones``: what :meth:`list_ones` made of ``a``, a sample of binary units, or None;
        a backend may then sum the rows of op(b) that each row of ``a`` selects rather than
        multiply (the CPU does, :mod:`dlcore.backend.binary_products`): the same sums,
        rounded in another order.
        """
        self.gemm(a, b, out, trans_b=trans_b)
        self.sigmoid_bernoulli(out, bias, sample, seed, stream, step, first_row)

    def ones_lists(self, rows, width, other_width=None):
        """Buffers for :meth:`list_ones` to list the ones of a 0/1 sample of up to ``rows``
        rows and ``width`` columns (made once, where a trainer makes its other buffers), or
        None where this backend always multiplies (here). ``other_width``: the other dimension
        of the matrices the sample multiplies (an RBM's hidden sample: n_visible, for h W'
        and x' h), where known: a backend may then list nothing for products too small to
        take the sums."""
        return None

    def list_ones(self, sample, lists):
        """The ones of ``sample`` (n, width), a sample of binary units just drawn, listed
        into ``lists`` (:meth:`ones_lists`) for the products that take them (``a_ones`` of
        :meth:`gemm_sigmoid_bernoulli`, ``positive_ones`` and ``negative_ones`` of
        :meth:`contrastive_weight_step`), or None: those products are then multiplied (here:
        always). Valid until ``sample`` or ``lists`` change."""
        return None

    def contrastive_weight_step(self, weights, velocity, positive_a, positive_b, negative_a,
                                negative_b, positive_rate, negative_rate, momentum, decay,
                                positive_ones=None, negative_ones=None):
        """The contrastive-divergence step of a weight matrix, with momentum and weight decay:

            velocity <- momentum * velocity + rp pa' pb - rn na' nb - decay * weights
            weights <- weights + velocity

        ``weights``, ``velocity`` (v, h); ``positive_a``, ``negative_a`` (n, v);
        ``positive_b``, ``negative_b`` (n, h) (the negative phase may have another number of
        rows); rp = ``positive_rate``, rn = ``negative_rate``. Two :meth:`gemm` calls that
        fold the statistic into the momentum buffer, then :meth:`momentum_step`; a backend may
        fuse them (the CPU updates each block of the weights right after its products).
        ``positive_ones``, ``negative_ones``: what :meth:`list_ones` made of ``positive_b``
        and ``negative_a`` (samples of binary units), or None: their products may be summed
        rather than multiplied (as with ``a_ones`` of :meth:`gemm_sigmoid_bernoulli`).
        """
        self.gemm(positive_a, positive_b, velocity, trans_a=True, alpha=positive_rate,
                  beta=momentum)
        self.gemm(negative_a, negative_b, velocity, trans_a=True, alpha=-negative_rate,
                  beta=1.0)
        self.momentum_step(weights, velocity, decay)

    def parameter_steps(self):
        """A context for the steps of one update: :meth:`momentum_step` and :meth:`bias_step`
        called inside may run only as it ends, together (CUDA: one launch for an RBM's weight
        and two bias steps). Nothing inside may read what those steps write. Here: each runs
        when called."""
        return contextlib.nullcontext()

    def gaussian_sample(self, mean, bias, sigma, sample, seed, stream, step, first_row=0):
        """Means of Gaussian units, and optionally a sample of them, in one pass:

            mu[r, i] = bias[i] + sigma[i] * mean[r, i]
            sample[r, i] = mu[r, i] + sigma[i] * z[r, i],     z ~ N(0, 1) from Philox

        ``mean`` (n, m) holds the top-down input sum_j W_ij h_j on entry and mu on exit;
        ``bias``, ``sigma`` (m,); ``sample`` (n, m) or None; ``first_row`` as for
        :meth:`sigmoid_bernoulli`.
        """
        raise NotImplementedError

    def gather_rows(self, source, indices, out, first=0):
        """``out[r] = source[indices[first + r]]``: a mini-batch of rows. ``source`` (N, m)
        float32, ``indices`` (>= first + n,) int64 on the host or as ``asarray(indices,
        np.int64)`` put it on the backend (a pass's order, sent once; ``first`` its batch's
        first row), ``out`` (n, m)."""
        raise NotImplementedError

    def momentum_step(self, parameter, velocity, decay):
        """Finish a momentum update whose gradient step is already in ``velocity``:

            velocity <- velocity - decay * parameter     (L2 weight decay, decay = eps * lambda)
            parameter <- parameter + velocity

        Any shape; ``parameter`` and ``velocity`` alike.
        """
        raise NotImplementedError

    def fuses_weight_step(self, velocity, k):
        """Whether :meth:`dense_weight_step` on a weight (and momentum buffer) shaped like
        ``velocity`` from products of inner dimension ``k`` (the batch rows) beats computing
        the gradient first and updating every parameter in one optimiser launch. False unless
        a backend fuses the two (the CPU, for products it splits across its threads)."""
        return False

    def dense_weight_step(self, x, grad_z, weights, velocity, rate, momentum, grad_x=None):
        """Stochastic gradient descent with momentum on a Dense layer's kernel, straight from
        the product of its gradient (lecture "Supervised learning", "Stochastic Gradient
        Descent with Momentum"; :class:`dlcore.optimizers.SGD`):

            velocity <- momentum * velocity + x' grad_z          (x' grad_z = dL/dW)
            weights <- weights - rate * velocity

        with momentum 0: weights <- weights - rate * x' grad_z (``velocity`` untouched).
        ``x`` (n, in) the layer's inputs; ``grad_z`` (n, out) dL/d(pre-activations);
        ``weights``, ``velocity`` (in, out). The gradient itself is never stored: the product
        goes into the momentum buffer (``beta = momentum``), so the weights and the buffer are
        read once instead of the gradient being written, read back and the buffer read again.

        ``grad_x`` (n, in), when given, first receives the layer's input gradient from the
        weights before the step, dL/dx = grad_z weights' (lecture "Supervised learning",
        "Backward Propagation"): a backend may compute it while it has those weights in cache.
        """
        if grad_x is not None:
            self.gemm(grad_z, weights, grad_x, trans_b=True)
        if momentum == 0:
            self.gemm(x, grad_z, weights, trans_a=True, alpha=-rate, beta=1.0)
            return
        self.gemm(x, grad_z, velocity, trans_a=True, beta=momentum)
        self.descent_step(weights, velocity, rate)

    def descent_step(self, weights, velocity, rate):
        """weights <- weights - rate * velocity (any shape, the two alike)."""
        weights -= weights.dtype.type(rate) * velocity

    def bias_step(self, bias, velocity, positive, negative, learning_rate, momentum):
        """Contrastive update of a bias vector, averaged over the batch:

            velocity <- momentum * velocity + eps * mean_r(positive[r] - negative[r])
            bias <- bias + velocity

        ``positive``, ``negative`` (n, m); ``bias``, ``velocity`` (m,).
        """
        raise NotImplementedError

    def sparsity_step(self, hidden_probability, running_mean, hidden_bias, decay, rate, target):
        """Sparsity target on the hidden biases (Lee, Ekanadham & Ng 2008; Hinton 2010, sec. 11):

            q_j <- decay * q_j + (1 - decay) * mean_r p[r, j]
            c_j <- c_j - rate * (q_j - target)

        ``hidden_probability`` (n, m); ``running_mean``, ``hidden_bias`` (m,).
        """
        raise NotImplementedError

    def accumulate_squared_error(self, target, estimate, out):
        """``out[j] += sum_r (target[r, j] - estimate[r, j]) ** 2``: a per-column monitor that
        stays on the device until the end of the epoch. ``target``, ``estimate`` (n, m)."""
        raise NotImplementedError

    def __repr__(self):
        return f"<dlcore backend {self.name!r}>"


class HostMemory:
    """The memory operations of a backend whose arrays are NumPy arrays in host memory (the
    ``reference`` and the ``cpu``): listed before :class:`Backend` among the bases."""

    def asarray(self, array, dtype=np.float32):
        return np.ascontiguousarray(array, dtype=dtype)

    def empty(self, shape, dtype=np.float32):
        return np.empty(shape, dtype=dtype)

    def zeros(self, shape, dtype=np.float32):
        return np.zeros(shape, dtype=dtype)

    def to_numpy(self, array):
        return np.asarray(array)
