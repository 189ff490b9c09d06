"""The operations a layer runs, chosen once per backend.

A layer is written once against this small interface (``dense_forward``, ``conv2d_backward``,
``pool_forward``, ...). Every method writes its results into arrays the layer allocated (the
``out`` style of the backends), so the fast implementation can reuse its buffers:

* :class:`ReferenceOps` (the ``reference`` backend) evaluates the readable NumPy functions of
  :mod:`dlcore.layers.reference` and copies the results in: what a student reads, and the oracle.
* :class:`dlcore.layers.kernels.KernelOps` (``cpu`` and ``cuda``) runs Numba kernel bodies
  through the backend's launchers and its GEMM, in place, without temporaries.

:func:`ops_for` picks one. The reference ignores the workspace.
"""
from . import reference as ref


class ReferenceOps:
    """Layer operations as the NumPy functions of :mod:`dlcore.layers.reference`."""

    name = "reference"

    def __init__(self, backend):
        self.backend = backend

    # dense
    def dense_forward(self, x, kernel, bias, activation, out, workspace):
        out[...] = ref.activation_forward(activation, ref.dense_forward(x, kernel, bias))

    def dense_backward(self, x, kernel, y, grad_y, activation, grad_kernel, grad_bias, grad_x,
                       workspace):
        grad_z = ref.activation_backward(activation, y, grad_y)
        gx, gk, gb = ref.dense_backward(x, kernel, grad_z)
        grad_kernel[...], grad_bias[...] = gk, gb
        if grad_x is not None:
            grad_x[...] = gx

    # convolution
    def conv2d_forward(self, x, kernel, bias, window, activation, out, workspace,
                       keep_columns=True):
        out[...] = ref.activation_forward(activation,
                                          ref.conv2d_forward(x, kernel, bias, window))

    def conv2d_backward(self, x, kernel, y, grad_y, window, activation, grad_kernel,
                        grad_bias, grad_x, workspace):
        grad_z = ref.activation_backward(activation, y, grad_y)
        gx, gk, gb = ref.conv2d_backward(x, kernel, grad_z, window)
        grad_kernel[...], grad_bias[...] = gk, gb
        if grad_x is not None:
            grad_x[...] = gx

    # pooling
    def pool_forward(self, kind, x, window, out, argmax):
        if kind == "max":
            out[...], argmax[...] = ref.max_pool_forward(x, window)
        elif kind == "avg":
            out[...] = ref.avg_pool_forward(x, window)
        else:
            out[...] = ref.l2_pool_forward(x, window)

    def pool_backward(self, kind, x, y, argmax, grad_y, window, grad_x):
        if kind == "max":
            grad_x[...] = ref.max_pool_backward(grad_y, argmax, window)
        elif kind == "avg":
            grad_x[...] = ref.avg_pool_backward(grad_y, window)
        else:
            grad_x[...] = ref.l2_pool_backward(x, y, grad_y, window)

    # element-wise
    def activation_forward(self, activation, x, out):
        out[...] = ref.activation_forward(activation, x)

    def activation_backward(self, activation, y, grad_y, grad_x):
        grad_x[...] = ref.activation_backward(activation, y, grad_y)

    def dropout_forward(self, x, out, mask, rate, seed, step):
        rows = x.reshape(x.shape[0], -1)
        mask_rows = mask.reshape(rows.shape)
        mask_rows[...] = ref.dropout_mask(*rows.shape, rate, seed, step).astype(mask.dtype)
        out[...] = x * mask

    def multiply(self, a, b, out):
        out[...] = a * b


def ops_for(backend):
    """The layer operations of ``backend`` (an object from :func:`dlcore.get_backend`)."""
    if backend.name == "reference":
        return ReferenceOps(backend)
    from .kernels import KernelOps
    return KernelOps(backend)
