"""Layers that merge several tensors: ``Add``, ``Average``, ``Subtract``, ``Multiply``,
``Maximum``, ``Minimum``, ``Concatenate`` and ``Dot`` (and ``add``, ``average``, ...
``concatenate``, ``dot``).

Lecture "Deep learning I", "Defining a functional model": Keras' functional API joins branches
with ``keras.layers.add`` and ``keras.layers.concatenate``; lecture "Convolutional Neural
Networks" (2019), residual networks: a residual block adds its input to its output,
y = x + F(x). The maths:

* ``Add``: y = x_1 + ... + x_k; dL/dx_i = dL/dy for every i.
* ``Average``: y = (x_1 + ... + x_k) / k; dL/dx_i = dL/dy / k. Keras's functional API guide
  builds an ensemble with ``layers.average([y1, y2, y3])`` (lecture "Convolutional neural
  networks" (2016), regularisation: ensembles).
* ``Subtract``: y = x_1 - x_2, exactly two tensors (as Keras); dL/dx_1 = dL/dy,
  dL/dx_2 = -dL/dy.
* ``Multiply``: y = x_1 * ... * x_k element by element (a gate); dL/dx_i = dL/dy times the
  product of the other inputs.
* ``Maximum``, ``Minimum``: y = the element-wise extreme; dL/dx_i = dL/dy where x_i was
  chosen, 0 elsewhere. A tie goes to the first of the tied inputs, as TensorFlow's gradient of
  ``maximum`` sends it to its first argument (Keras on torch or JAX halves it instead); a NaN
  spreads to y.
* Broadcasting (all but ``Concatenate``, as Keras's and NumPy's): tensors of one rank may
  differ along an axis where one of them has size 1; that one is repeated along the axis
  before merging (a squeeze-and-excitation block scales (C, H, W) maps by a (C, 1, 1) gate,
  Keras's ``Reshape((1, 1, C))`` of NHWC maps), and its gradient is the merged gradient
  summed over the repeats (``broadcast_forward``, ``broadcast_backward``). A (C,) vector
  merged with (C, H, W) maps is read as (C, 1, 1), per channel, as Keras reads a (C,) tensor
  merged with (H, W, C) maps.
* ``Concatenate(axis)``: y = [x_1, ..., x_k] along ``axis`` (1, the channels of NCHW images or
  the features of rows, by default); dL/dx_i is the slice of dL/dy that x_i filled. Maps joined
  along H or W warn: a U-Net's skip connection copied from Keras, ``concatenate([up, conv],
  axis=3)`` or Keras's default ``axis=-1``, means the channels of NHWC maps, which are axis 1 of
  dlcore's NCHW ones.
* ``Dot(axes=1, normalize=False)``: y = sum_j a_j b_j of two rows (n, F), as (n, 1) (Keras's
  ``Dot`` of rows; a siamese network's score of two embeddings); dL/da = dL/dy b, dL/db =
  dL/dy a. With ``normalize`` the rows are first divided by max(||a||, 1e-7), as Keras's L2
  normalisation: y is their cosine similarity, and dL/da = dL/dy (v - y u) / ||a|| (u, v the
  unit rows). Keras also dots maps and sequences over one of their axes, keeping the others
  (attention's (steps, steps) scores); dlcore takes rows only and refuses those in one line.

All are written once: the NumPy reference in :mod:`dlcore.layers.reference`
(``add_forward``, ``average_forward``, ``extremum_forward``, ``concatenate_forward``,
``dot_forward``, ...) and
the kernel bodies in :mod:`dlcore.layers.bodies` (``copy_span``, ``accumulate_span``,
``rescale_span``, ``multiply_span``, ``extremum_span`` and ``chosen_gradient_span``,
``broadcast_span`` and ``broadcast_sum_span``, ``place_columns_rows``, ``take_columns_rows``:
a concatenation joins the columns of 2-D views; ``dot_rows`` and ``dot_gradient_rows``),
dispatched by :mod:`dlcore.layers.ops` as for every layer. A functional model sums the gradients
of a tensor used twice with the same operations.
"""
import warnings

import numpy as np

from .base import Layer, check_shape
from .geometry import stacklevel_outside_dlcore


class Merge(Layer):
    """A layer called on a list of tensors (``layer([a, b])``): ``input_shape`` is then the list
    of their per-sample shapes, ``forward`` takes a list of batches and ``backward`` returns
    the list of their gradients.

    Parameters (Keras's keywords of every merge)
    ----------
    name : str or None, see :class:`dlcore.layers.Layer`
    trainable : bool, as Keras's (a merge has no weights: ``layer.trainable`` only reads back)
    dtype : None, "float32" or "float64" (a NumPy type, Keras's ``DTypePolicy`` or its config):
        the type a merge built on its own (called on NumPy arrays) computes in, as Keras's
        layer; in a model, the model's (dlcore computes a model in one type: build it in
        float64 for float64), with a one-line warning where the two differ. float16 and
        mixed policies are refused in one line.
    """

    takes_list = True
    #: whether messages write shapes as the Keras file's NHWC ones ((C, H, W) maps as
    #: (H, W, C)): set by the Keras import while it calls the layer, so that a file it refuses
    #: is told in its own shapes
    keras_shapes = False

    def __init__(self, name=None, trainable=True, dtype=None):
        super().__init__(name=name, trainable=trainable, dtype=dtype)

    def _shown(self, shape):
        """A per-sample ``shape`` (or one of letters, ``("C", 1, 1)``) as messages write it:
        ``(C, 1, 1)``, or the Keras file's ``(1, 1, C)`` under :attr:`keras_shapes`."""
        shape = tuple(shape)
        if self.keras_shapes and len(shape) == 3:
            shape = shape[1:] + shape[:1]
        return "(" + ", ".join(str(size) for size in shape) + ("," if len(shape) == 1 else "") \
            + ")"

    def _shapes_text(self, shapes):
        return ", ".join(self._shown(shape) for shape in shapes)

    def build(self, input_shape, backend="auto", dtype=np.float32, seed=0):
        from dlcore.backend import get_backend
        shapes = self._checked_shapes(input_shape)
        self.output_shape = self.compute_output_shape(shapes)
        self.input_shape = shapes
        self.seed_ = int(seed)
        self._bind(get_backend(backend), dtype, {})
        self.built = True
        return self

    def _checked_shapes(self, shapes):
        if not isinstance(shapes, (list, tuple)) or len(shapes) < 2 \
                or not all(isinstance(s, (list, tuple)) for s in shapes):
            raise ValueError(f"{type(self).__name__} takes a list of at least two tensors, got "
                             f"{shapes!r}")
        return [check_shape(s) for s in shapes]

    def _check_inputs(self, xs):
        # a layer called on arrays (``Add()([a, b])``) has no name: its class names it
        label = f"layer {self.name!r}" if self.name else type(self).__name__
        if not isinstance(xs, (list, tuple)) or len(xs) != len(self.input_shape):
            raise ValueError(f"{label} takes a list of {len(self.input_shape)} batches")
        n = xs[0].shape[0]
        for x, shape in zip(xs, self.input_shape):
            if tuple(x.shape) != (n,) + shape:
                sizes = sorted({batch.shape[0] for batch in xs if len(batch.shape)})
                uneven = (f": batches of {' and '.join(map(str, sizes))} samples; a merge takes "
                          f"one sample from each input: give them as many samples"
                          if len(sizes) > 1 else "")
                raise ValueError(f"{label} expects inputs of shapes "
                                 f"{[(None,) + s for s in self.input_shape]}; got "
                                 f"{[tuple(x.shape) for x in xs]}{uneven}")
        return n

    def backward(self, grad_y, need_input_gradient=True):
        """The list of dL/dx_i, one per input (None when not needed: a merge has no weights
        of its own)."""
        if not need_input_gradient:
            return None
        return self._backward(grad_y)

    def _backward(self, grad_y):
        """dL/dx_i of each input from dL/dy (each merge's own)."""
        raise NotImplementedError

    def _gradient_buffers(self, shapes):
        """One gradient buffer per input, of the batch ``shapes``."""
        return [self._buffer(f"grad_x{index}", shape) for index, shape in enumerate(shapes)]

    def _checked_output(self, xs):
        """The (n, ...) output buffer of a forward pass, once the layer is known to be built and
        ``xs`` to match its input shapes (every merge's forward begins so)."""
        self._check_built()
        n = self._check_inputs(xs)
        return self._buffer("y", (n,) + self.output_shape)

    def __call__(self, x, training=False, step=0):
        """On symbolic tensors: a graph node; on a list of NumPy batches: the NumPy output."""
        from dlcore.functional import is_symbolic, refuse_keras_tensors
        if is_symbolic(x):
            return super().__call__(x)
        refuse_keras_tensors(f"layer {self.name or type(self).__name__!r}", x)
        xs = [np.asarray(v) for v in x]
        if not self.built:
            self.build([v.shape[1:] for v in xs], dtype=self.float_type or (
                np.float64 if xs[0].dtype == np.float64 else np.float32))
        y = self.forward([self.backend.asarray(v, dtype=self.dtype) for v in xs],
                         training=training, step=step)
        return np.array(self.backend.to_numpy(y))


class ElementwiseMerge(Merge):
    """A merge of tensors element by element. As Keras's (and NumPy's) broadcasting, tensors
    of one rank may differ along axes where one of them has size 1: that one is repeated along
    the axis (a squeeze-and-excitation block's (C, 1, 1) gate scales (C, H, W) maps), and its
    gradient is dL/dy summed over the axes it was repeated along. A (C,) vector among (C, H, W)
    maps is a (C, 1, 1) one (Keras's reading of a (C,) tensor with (H, W, C) maps)."""

    #: how the error names the merge ("add needs tensors of one shape")
    verb = "merge"

    def compute_output_shape(self, input_shape):
        checked = self._checked_shapes(input_shape)
        shapes = self._aligned_shapes(checked)
        output = []
        for sizes in zip(*shapes):
            repeated = set(sizes) - {1}
            if len(repeated) > 1:
                raise ValueError(f"{self.verb} needs tensors of one shape, or of shapes that "
                                 f"broadcast (an axis of size 1 repeats: a "
                                 f"{self._shown(('C', 1, 1))} gate scales "
                                 f"{self._shown('CHW')} maps); got {self._shapes_text(checked)}")
            output.append(repeated.pop() if repeated else 1)
        return tuple(output)

    def _aligned_shapes(self, shapes):
        """The per-sample ``shapes`` at one rank: a (k,) vector among (C, H, W) maps is a
        (k, 1, 1) one, per channel, as Keras reads a (C,) tensor merged with (H, W, C) maps
        (it inserts the axes after the batch axis); other ranks that differ are refused."""
        rank = max(len(shape) for shape in shapes)
        if rank == 3 and all(len(shape) in (1, 3) for shape in shapes):
            return [shape + (1, 1) if len(shape) == 1 else shape for shape in shapes]
        if any(len(shape) != rank for shape in shapes):
            raise ValueError(f"{self.verb} needs tensors of one rank, or (C,) vectors with "
                             f"{self._shown('CHW')} maps; got {self._shapes_text(shapes)}: "
                             f"reshape the smaller one first")
        return shapes

    def _output_and_inputs(self, xs):
        """The output buffer of a forward pass and the inputs at the output's shape: those
        that broadcast repeated into buffers of their own."""
        out = self._checked_output(xs)
        full = []
        aligned = self._aligned_shapes(self.input_shape)
        for index, (x, shape) in enumerate(zip(xs, aligned)):
            # a (C,) vector is read at its aligned (C, 1, 1), which (C, 1, 1) maps repeat not
            x = x.reshape((x.shape[0],) + shape)
            if shape != self.output_shape:
                repeated = self._buffer(f"broadcast_x{index}", out.shape)
                self.ops.broadcast_forward(x, repeated)
                x = repeated
            full.append(x)
        return out, full

    def forward(self, xs, training=False, step=0):
        out, full = self._output_and_inputs(xs)
        self._merge(full, out)
        return out

    def _backward(self, grad_y):
        """dL/dx_i: the merge's gradients at the output's shape (:meth:`_gradients`), summed
        over the axes an input that broadcasts was repeated along."""
        return self._input_gradients(self._gradients(grad_y))

    def _merge(self, xs, out):
        """y of inputs ``xs`` at the output's shape into ``out`` (each merge's own)."""
        raise NotImplementedError

    def _gradients(self, grad_y):
        """dL/dx_i at the output's shape, from dL/dy (each merge's own)."""
        raise NotImplementedError

    def _input_gradients(self, grads):
        """dL/dx_i from the gradients at the output's shape: summed over the axes an input
        that broadcasts was repeated along."""
        summed = []
        aligned = self._aligned_shapes(self.input_shape)
        for index, (grad, shape, own) in enumerate(zip(grads, aligned, self.input_shape)):
            if shape != self.output_shape:
                small = self._buffer(f"grad_broadcast_x{index}", (grad.shape[0],) + shape)
                self.ops.broadcast_backward(grad, small)
                grad = small
            summed.append(grad.reshape((grad.shape[0],) + own))
        return summed


class Add(ElementwiseMerge):
    """y = x_1 + ... + x_k (Keras' ``Add``; a residual connection)."""

    verb = "add"

    def _merge(self, xs, out):
        self.ops.add_forward(xs, out)

    def _gradients(self, grad_y):
        """dL/dx_i = dL/dy: the same array for every input (nothing is computed)."""
        return [grad_y] * len(self.input_shape)


class Average(ElementwiseMerge):
    """y = (x_1 + ... + x_k) / k (Keras' ``Average``: the mean of an ensemble's outputs)."""

    verb = "average"

    def _merge(self, xs, out):
        self.ops.average_forward(xs, out)

    def _gradients(self, grad_y):
        """dL/dx_i = dL/dy / k: one array, the same for every input."""
        grad = self._buffer("grad_x", grad_y.shape)
        self.ops.average_backward(grad_y, len(self.input_shape), grad)
        return [grad] * len(self.input_shape)


class Subtract(ElementwiseMerge):
    """y = x_1 - x_2, exactly two tensors (Keras' ``Subtract``)."""

    verb = "subtract"

    def _checked_shapes(self, shapes):
        if isinstance(shapes, (list, tuple)) and len(shapes) != 2:
            raise ValueError(f"Subtract takes exactly two tensors (x_1 - x_2), got "
                             f"{len(shapes)}; subtract a sum: subtract([a, add([b, c])])")
        return super()._checked_shapes(shapes)

    def _merge(self, xs, out):
        self.ops.subtract_forward(xs, out)

    def _gradients(self, grad_y):
        """dL/dx_1 = dL/dy, dL/dx_2 = -dL/dy."""
        grad_x2 = self._buffer("grad_x2", grad_y.shape)
        self.ops.subtract_backward(grad_y, grad_x2)
        return [grad_y, grad_x2]


class Multiply(ElementwiseMerge):
    """y = x_1 * ... * x_k element by element (Keras' ``Multiply``: a gate, one branch scaling
    another, as a squeeze-and-excitation block's (C, 1, 1) gate scales its (C, H, W) maps)."""

    verb = "multiply"

    def _merge(self, xs, out):
        self.ops.multiply_forward(xs, out)
        # the backward pass needs the factors (views of the inputs, as a Dense keeps its x)
        self._factors = list(xs)

    def _gradients(self, grad_y):
        """dL/dx_i = dL/dy times the product of the other inputs."""
        grads = self._gradient_buffers([grad_y.shape] * len(self.input_shape))
        self.ops.multiply_backward(self._factors, grad_y, grads)
        return grads


class Maximum(ElementwiseMerge):
    """y = the element-wise maximum of tensors (Keras' ``Maximum``). The gradient
    goes to the input that was chosen; on a tie, to the first of them in the list (as
    TensorFlow's; Keras on torch or JAX halves it between the tied inputs)."""

    verb = "maximum"
    #: 1: the largest value is chosen; -1 (Minimum): the smallest
    sign = 1

    def _merge(self, xs, out):
        chosen = self._buffer("chosen", out.shape, dtype=np.int32)
        self.ops.extremum_forward(xs, self.sign, out, chosen)

    def _gradients(self, grad_y):
        """dL/dx_i = dL/dy where x_i was chosen, 0 elsewhere."""
        chosen = self._buffer("chosen", grad_y.shape, dtype=np.int32)
        grads = self._gradient_buffers([grad_y.shape] * len(self.input_shape))
        self.ops.extremum_backward(chosen, grad_y, grads)
        return grads


class Minimum(Maximum):
    """y = the element-wise minimum of tensors (Keras' ``Minimum``); gradients as
    :class:`Maximum`'s."""

    verb = "minimum"
    sign = -1


class Concatenate(Merge):
    """y = [x_1, ..., x_k] along ``axis`` of the batch tensor (Keras' ``Concatenate``).

    Parameters
    ----------
    axis : int, the axis of the (n, ...) batch joined: 1 (default) the channels of NCHW images
        or the features of rows; negative counts from the end; 0 (the samples) is refused.
        Images joined along their height or width (axis 2, 3, -1 or -2 of NCHW maps) build
        with a UserWarning: that is Keras's channel axis, not dlcore's.
    name, trainable, dtype : see :class:`dlcore.layers.Layer`
    """

    #: whether joining (C, H, W) maps along H or W warns (the Keras import clears it: there
    #: the axis is the file's own, already moved from NHWC to NCHW)
    warn_spatial_join = True

    def __init__(self, axis=1, name=None, trainable=True, dtype=None):
        super().__init__(name=name, trainable=trainable, dtype=dtype)
        if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool) or axis == 0:
            raise ValueError(f"Concatenate's axis must be a non-zero integer (the batch axis 0 "
                             f"cannot be joined), got {axis!r}")
        self.axis = int(axis)

    def build(self, input_shape, backend="auto", dtype=np.float32, seed=0):
        super().build(input_shape, backend, dtype, seed)
        rank = len(self.output_shape)
        if rank == 3 and self._sample_axis(rank) != 0 and self.warn_spatial_join:
            joined = ("height", "width")[self._sample_axis(rank) - 1]
            warnings.warn(f"Concatenate(axis={self.axis}) joins (C, H, W) maps along their "
                          f"{joined}: dlcore's images are channels-first, so the channels "
                          f"(Keras's axis=-1 or 3 of NHWC maps) are axis=1 (or -3) here",
                          UserWarning, stacklevel=stacklevel_outside_dlcore())
        return self

    def _config(self):
        return {"axis": self.axis}

    def _sample_axis(self, rank):
        """The axis within a per-sample shape of ``rank`` dimensions."""
        axis = self.axis - 1 if self.axis > 0 else rank + self.axis
        if not 0 <= axis < rank:
            raise ValueError(f"Concatenate(axis={self.axis}) does not fit tensors of shape "
                             f"(None, {rank} dimensions)")
        return axis

    def compute_output_shape(self, input_shape):
        shapes = self._checked_shapes(input_shape)
        rank = len(shapes[0])
        axis = self._sample_axis(rank)
        for shape in shapes:
            if len(shape) != rank or shape[:axis] + shape[axis + 1:] != \
                    shapes[0][:axis] + shapes[0][axis + 1:]:
                channels = all(len(s) == 3 and s[1:] == shapes[0][1:] for s in shapes)
                # the Keras file's axis of NHWC maps (the import moved it to NCHW's)
                shown = {0: 3, 1: 1, 2: 2}[axis] if self.keras_shapes and rank == 3 \
                    else self.axis
                raise ValueError(f"concatenate along axis {shown} needs tensors equal in "
                                 f"every other axis; got {self._shapes_text(shapes)}"
                                 + ("; dlcore's images are channels-first: their channels are "
                                    "axis=1 (Keras's -1 or 3)" if channels and axis
                                    and not self.keras_shapes else ""))
        return shapes[0][:axis] + (sum(s[axis] for s in shapes),) + shapes[0][axis + 1:]

    def _batch_axis(self):
        """The joined axis of the (n, ...) batch tensor, counted from the front."""
        return self._sample_axis(len(self.output_shape)) + 1

    def forward(self, xs, training=False, step=0):
        out = self._checked_output(xs)
        self.ops.concatenate_forward(xs, self._batch_axis(), out)
        return out

    def _backward(self, grad_y):
        n = grad_y.shape[0]
        grads = self._gradient_buffers([(n,) + shape for shape in self.input_shape])
        self.ops.concatenate_backward(grad_y, self._batch_axis(), grads)
        return grads


class Dot(Merge):
    """y = sum_j a_j b_j, the dot product of two rows of each sample (Keras's ``Dot``), as an
    (n, 1) batch; with ``normalize=True`` each row is first divided by its length (Keras's
    L2 normalisation, by max(||a||, 1e-7)): y is their cosine similarity, a siamese network's
    score of two embeddings.

    Parameters
    ----------
    axes : int or (int, int), the axis of each (n, features) batch summed over, as Keras's:
        1 or -1, the features (the batch axis 0 is refused). Keras also takes tensors of more
        axes (sequences, (H, W, C) maps), summed over one axis, the others kept; dlcore's Dot
        takes rows only and refuses those in one line.
    normalize : bool, whether the rows are scaled to length 1 first (cosine similarity).
    name, trainable, dtype : see :class:`dlcore.layers.Layer`

    The gradients (u = a / ||a||, v = b / ||b|| when normalised, else u = a, v = b):
    dL/da = dL/dy b and dL/db = dL/dy a; normalised, dL/da = dL/dy (v - y u) / ||a|| and
    dL/db = dL/dy (u - y v) / ||b|| (a row shorter than 1e-7 is only scaled, by 1e7).
    """

    #: the smallest length a row is divided by (Keras's ``backend.epsilon()``)
    epsilon = 1e-7

    def __init__(self, axes, normalize=False, name=None, trainable=True, dtype=None):
        super().__init__(name=name, trainable=trainable, dtype=dtype)
        paired = isinstance(axes, (list, tuple))
        pair = list(axes) if paired else [axes]
        if paired and len(pair) != 2 or any(
                not isinstance(axis, (int, np.integer)) or isinstance(axis, bool) or axis == 0
                for axis in pair):
            raise ValueError(f"Dot's axes must be a non-zero integer or a pair of them (the "
                             f"batch axis 0 cannot be summed over), got {axes!r}")
        self.axes = tuple(int(axis) for axis in pair) if paired else int(axes)
        self.normalize = bool(normalize)

    def _config(self):
        return {"axes": self.axes if isinstance(self.axes, int) else list(self.axes),
                "normalize": self.normalize}

    def _checked_shapes(self, shapes):
        if isinstance(shapes, (list, tuple)) and len(shapes) != 2:
            raise ValueError(f"Dot takes exactly two tensors (a . b), got {len(shapes)}")
        return super()._checked_shapes(shapes)

    def compute_output_shape(self, input_shape):
        first, second = self._checked_shapes(input_shape)
        if len(first) != 1 or len(second) != 1:
            # flattening is no fix for Keras's meaning: Dot(axes=2) of (steps, F) sequences
            # is a (steps, steps) matrix of scores, not one number
            raise ValueError(f"Dot takes two batches of rows (n, features) in dlcore; got "
                             f"{self._shapes_text([first, second])}: Keras's Dot of sequences "
                             f"or maps, which sums over one axis and keeps the others "
                             f"(attention scores), is not implemented (Flatten both first "
                             f"only for the dot product of the whole tensors)")
        axes = [self.axes] * 2 if isinstance(self.axes, int) else list(self.axes)
        if any(axis not in (1, -1) for axis in axes):
            raise ValueError(f"Dot(axes={self.axes!r}) of rows (n, features) sums over axis 1 "
                             f"(or -1), their features: use Dot(axes=1)")
        if first != second:
            raise ValueError(f"Dot needs rows of one length; got "
                             f"{self._shapes_text([first, second])}")
        return (1,)

    def flops(self):
        """2 F: one multiply-add per feature (and as many for each row's squared length when
        normalised: 6 F)."""
        return (6 if self.normalize else 2) * self.input_shape[0][0]

    def forward(self, xs, training=False, step=0):
        out = self._checked_output(xs)
        factors = self._buffer("factors", (out.shape[0], 4))
        self.ops.dot_forward(xs[0], xs[1], self.normalize, self.epsilon, out, factors)
        # the backward pass needs both rows and the output (as Multiply keeps its factors)
        self._rows = list(xs)
        return out

    def _backward(self, grad_y):
        """dL/da and dL/db (see the class docstring)."""
        a, b = self._rows
        grads = self._gradient_buffers([a.shape, b.shape])
        self.ops.dot_backward(a, b, self._buffer("y", grad_y.shape), grad_y,
                              self._buffer("factors", (a.shape[0], 4)), self.normalize,
                              self.epsilon, *grads)
        return grads


def _merge_function(cls, what):
    """Keras's function of merge ``cls`` (``layers.add`` of ``Add``): ``cls(**kwargs)(inputs)``,
    ``what`` its docstring's summary."""
    def merge(inputs, **kwargs):
        return cls(**kwargs)(inputs)
    merge.__name__ = merge.__qualname__ = cls.__name__.lower()
    merge.__doc__ = (f"``{cls.__name__}(**kwargs)(inputs)``: {what} (Keras' "
                     f"``layers.{merge.__name__}``).")
    return merge


add = _merge_function(Add, "the sum of a list of tensors")
average = _merge_function(Average, "the mean of a list of tensors")
subtract = _merge_function(Subtract, "x_1 - x_2")
multiply = _merge_function(Multiply, "the element-wise product")
maximum = _merge_function(Maximum, "the element-wise maximum")
minimum = _merge_function(Minimum, "the element-wise minimum")


def concatenate(inputs, axis=1, **kwargs):
    """``Concatenate(axis, **kwargs)(inputs)`` (Keras' ``layers.concatenate``; NCHW, so the
    default axis 1 joins channels, where Keras's default -1 does)."""
    return Concatenate(axis=axis, **kwargs)(inputs)


def dot(inputs, axes=-1, **kwargs):
    """``Dot(axes, **kwargs)(inputs)``: the dot product of two rows, or with
    ``normalize=True`` their cosine similarity (Keras' ``layers.dot``)."""
    return Dot(axes=axes, **kwargs)(inputs)
