"""Data augmentation and noise injection, as layers that act only while training.

Lecture "Convolutional neural networks" (2016): "Augmented data by image-specific
transformations. E.g. cropping just 2 pixels gets you 9 times the data!" and "Injecting noise
(Sietsma and Dow, 1991): inject random noise during training separately in each epoch; can be
applied to input data, to hidden activations, or to weights".

* :class:`ImageAugmentation` moves each training image by a random whole number of pixels (the
  same as zero-padding by ``max_shift`` and cropping at a random place), optionally mirrors it
  left-right, optionally rotates it by a small random angle and optionally scales it by a
  random factor about its centre (bilinear interpolation, zeros outside): lecture "Supervised
  learning", "Architecture for Classification": "random translation, left/right flipping,
  scaling". It must be a network's first layer: it prepares the data and passes no gradient.
* :class:`GaussianNoise` adds N(0, stddev^2) noise to its input, wherever it is placed: the
  slide's noise on input data (first layer) or on hidden activations (after a hidden layer).
  The slide's third kind, noise on the weights, is the ``kernel_noise=`` argument of Dense,
  Conv2D, Conv2DTranspose and LocallyConnected2D (:func:`add_gaussian_noise` draws both).

Both draw from the layer's Philox key with the network's update number as the step, so every
batch gets fresh randomness, and a seed gives the same images on every backend. In evaluation
(``predict``, ``evaluate``) both are the identity.

Per image n (its row in the batch; in data-parallel training, in the global batch: the layers'
``first_row``), the four uniforms u_0..u_3 of Philox counter (0, n, step, ``STREAM_AUGMENT``) give

    shift_y = floor(u_0 (2 s + 1)) - s,   shift_x = floor(u_1 (2 s + 1)) - s   (s = max_shift)
    flip    = horizontal_flip and u_2 < 1/2
    angle   = (2 u_3 - 1) * max_rotation   (degrees)
    scale   = 1 + (2 u_4 - 1) * max_zoom     (u_4: the first uniform of Philox counter
                                              (1, n, step, STREAM_AUGMENT); drawn only with
                                              a zoom, so that the other draws stay as they were)

and output pixel (y, x) reads the input at the point found by undoing the shift, then the flip,
then the rotation and the scaling about the image centre:

    (y', x') = (y - shift_y, x - shift_x);  x' <- W - 1 - x' if flip
    y_s = c_y + (cos(a) (y' - c_y) + sin(a) (x' - c_x)) / scale
    x_s = c_x + (-sin(a) (y' - c_y) + cos(a) (x' - c_x)) / scale

(a scale above 1 enlarges the picture, cropping its border; below 1 it shrinks it inside zeros).
"""
import math

import numpy as np

from dlcore.backend import rng
from dlcore.backend.registry import body, shared
from dlcore.backend.rng import normal_at, philox4x32, uniform_from_bits
from dlcore.layers.base import Layer, draws_noise, own_seed
from dlcore.validation import check_float, check_int


# -- reference ------------------------------------------------------------------------------
def augmentation_parameters(n, seed, step, max_shift, horizontal_flip, max_rotation,
                            first_row=0, max_zoom=0.0):
    """NumPy: per image (shift_y, shift_x, flip, angle in radians, scale), each an (n,) array;
    image n drawn at Philox row ``first_row + n`` (its row in a data-parallel global batch)."""
    u = rng.uniform(n, 5 if max_zoom else 4, seed, rng.STREAM_AUGMENT, step,
                    first_row).astype(np.float64)
    width = 2 * max_shift + 1
    shift_y = np.floor(u[:, 0] * width) - max_shift
    shift_x = np.floor(u[:, 1] * width) - max_shift
    flip = np.logical_and(horizontal_flip, u[:, 2] < 0.5)
    angle = (2 * u[:, 3] - 1) * math.radians(max_rotation)
    scale = 1.0 + (2 * u[:, 4] - 1) * max_zoom if max_zoom else np.ones(n)
    return shift_y, shift_x, flip, angle, scale


def augment_images(x, shift_y, shift_x, flip, angle, scale=None):
    """NumPy reference: every image of x (n, C, H, W) moved, mirrored, rotated and scaled as
    the module docstring says, sampled bilinearly with zeros outside (``scale`` None: 1)."""
    n, channels, height, width = x.shape
    cy, cx = (height - 1) / 2, (width - 1) / 2
    y, xx = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    yt = y[None] - shift_y[:, None, None]
    xt = xx[None] - shift_x[:, None, None]
    xt = np.where(flip[:, None, None], width - 1 - xt, xt)
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    scale = np.ones(n) if scale is None else np.asarray(scale, dtype=np.float64)
    scale = scale[:, None, None]
    ys = cy + (cos * (yt - cy) + sin * (xt - cx)) / scale
    xs = cx + (-sin * (yt - cy) + cos * (xt - cx)) / scale
    y0, x0 = np.floor(ys), np.floor(xs)
    out = np.zeros_like(x)
    samples = np.arange(n)[:, None, None]
    for dy in (0, 1):
        for dx in (0, 1):
            weight = (1 - np.abs(ys - (y0 + dy))) * (1 - np.abs(xs - (x0 + dx)))
            yi, xi = (y0 + dy).astype(np.int64), (x0 + dx).astype(np.int64)
            inside = (yi >= 0) & (yi < height) & (xi >= 0) & (xi < width) & (weight > 0)
            pixels = x[samples, :, np.clip(yi, 0, height - 1), np.clip(xi, 0, width - 1)]
            # fancy indexing put the channel axis last: (n, H, W, C)
            contribution = np.where(inside[..., None], weight[..., None] * pixels, 0)
            out += contribution.transpose(0, 3, 1, 2).astype(x.dtype)
    return out


# -- kernels --------------------------------------------------------------------------------
@body
def augment_rows(row, first, last, x, out, k0, k1, step, stream, max_shift, flip_allowed,
                 max_radians, first_row, max_zoom):
    """Output rows first..last-1 of plane ``row`` (= sample * C + channel); the sample's
    Philox row is ``first_row + sample``."""
    channels, height, width = x.shape[1], x.shape[2], x.shape[3]
    sample, channel = row // channels, row % channels
    w0, w1, w2, w3 = philox4x32(np.uint64(0), np.uint64(sample) + first_row, step, stream, k0,
                                k1)
    span = 2 * max_shift + 1
    shift_y = math.floor(np.float64(uniform_from_bits(w0)) * span) - max_shift
    shift_x = math.floor(np.float64(uniform_from_bits(w1)) * span) - max_shift
    flip = flip_allowed and uniform_from_bits(w2) < np.float32(0.5)
    angle = (2.0 * np.float64(uniform_from_bits(w3)) - 1.0) * max_radians
    scale = 1.0
    if max_zoom > 0.0:
        z0 = philox4x32(np.uint64(1), np.uint64(sample) + first_row, step, stream, k0, k1)[0]
        scale = 1.0 + (2.0 * np.float64(uniform_from_bits(z0)) - 1.0) * max_zoom
    cos, sin = math.cos(angle), math.sin(angle)
    cy, cx = (height - 1) / 2.0, (width - 1) / 2.0
    for y in range(first, last):
        for x_out in range(width):
            yt = y - shift_y
            xt = x_out - shift_x
            if flip:
                xt = width - 1 - xt
            ys = cy + (cos * (yt - cy) + sin * (xt - cx)) / scale
            xs = cx + (-sin * (yt - cy) + cos * (xt - cx)) / scale
            out[sample, channel, y, x_out] = _bilinear(x, sample, channel, ys, xs)


@shared
def _bilinear(x, sample, channel, ys, xs):
    height, width = x.shape[2], x.shape[3]
    y0, x0 = math.floor(ys), math.floor(xs)
    total = 0.0
    for dy in range(2):
        for dx in range(2):
            yi, xi = y0 + dy, x0 + dx
            weight = (1.0 - abs(ys - yi)) * (1.0 - abs(xs - xi))
            if weight > 0.0 and 0 <= yi < height and 0 <= xi < width:
                total += weight * x[sample, channel, int(yi), int(xi)]
    return np.float32(total)


@body
def gaussian_noise_rows(row, first, last, x, out, stddev, k0, k1, stream, step, first_row):
    """out = x + stddev * z, z = normal_at(first_row + row, column) from Philox."""
    global_row = np.uint64(row) + first_row
    for column in range(first, last):
        out[row, column] = x[row, column] + stddev * normal_at(global_row, column, k0, k1,
                                                               stream, step)


def add_gaussian_noise(backend, x, out, stddev, seed, stream, step, first_row=0):
    """out = x + stddev * z on ``backend``, x and out (rows, columns), z[r, c] the Philox
    normal of (key ``seed``, row ``first_row + r``, column c, ``stream``, ``step``): the same
    numbers on the reference (:func:`dlcore.backend.rng.normal`) and the kernels."""
    n, columns = x.shape
    if not backend.launches_kernels:
        noise = rng.normal(n, columns, seed, stream, step, first_row=first_row)
        out[...] = x + stddev * noise.astype(x.dtype)
        return
    k0, k1 = rng.key_from_seed(seed)
    backend.launch_rows(gaussian_noise_rows, n, columns, x, out, x.dtype.type(stddev), k0, k1,
                        np.uint64(stream), np.uint64(step), np.uint64(first_row))


# -- layers ---------------------------------------------------------------------------------
class ImageAugmentation(Layer):
    """Random shifts, mirror images and small rotations of NCHW training images.

    Parameters
    ----------
    max_shift : int >= 0, the largest shift in pixels along each axis (pad-and-crop):
        (2 max_shift + 1)^2 placements of each image, so 1 is the lecture's "cropping just 2
        pixels gets you 9 times the data" and the default, 2, gives 25; below the images'
        height and width (a shift by either would leave a blank image: training refuses it)
    horizontal_flip : bool, mirror half of the images left-right (right for clothes, wrong
        for digits)
    max_rotation : float >= 0, the largest rotation in degrees
    max_zoom : float in [0, 1), the largest change of scale: each image is scaled about its
        centre by a factor drawn uniformly from [1 - max_zoom, 1 + max_zoom] (0.1: up to 10 %
        larger or smaller)
    image_shape : (channels, height, width) or None. None: the inputs are images, (n, C, H, W).
        Given: the inputs are flat rows (n, C * H * W) holding such images in the order
        ``Flatten`` writes them, as a DBN's or an MLP's inputs do; the output is flat too.
    name, input_shape, trainable, dtype : see :class:`dlcore.layers.Layer`

    The first layer of a network only (while augmenting it passes no gradient to its input);
    the identity outside training, whose gradient (an adversarial example's) it passes on.
    """

    stochastic = True
    #: The global row of the batch's first sample, whose Philox row keys its draws: 0 but in
    #: data-parallel training (as :attr:`dlcore.layers.Dropout.first_row`).
    first_row = 0

    def __init__(self, max_shift=2, horizontal_flip=False, max_rotation=0.0, image_shape=None,
                 max_zoom=0.0, name=None, input_shape=None, trainable=True, dtype=None):
        super().__init__(name=name, input_shape=input_shape, trainable=trainable,
                         dtype=dtype)
        self.max_shift = check_int(max_shift, "max_shift", minimum=0)
        self.horizontal_flip = bool(horizontal_flip)
        self.max_rotation = check_float(max_rotation, "max_rotation", low=0.0, high=180.0)
        self.max_zoom = check_float(max_zoom, "max_zoom", low=0.0, high=1.0, high_open=True)
        if image_shape is not None:
            if isinstance(image_shape, (str, bytes)) or not hasattr(image_shape, "__len__") \
                    or len(image_shape) != 3:
                raise ValueError(f"image_shape must be (channels, height, width), got "
                                 f"{image_shape!r:.60}")
            image_shape = tuple(check_int(size, "an image_shape size", minimum=1)
                                for size in image_shape)
        self.image_shape = image_shape

    def _config(self):
        # max_zoom only when set: a file without a zoom stays readable by older versions
        return {"max_shift": self.max_shift, "horizontal_flip": self.horizontal_flip,
                "max_rotation": self.max_rotation,
                "image_shape": None if self.image_shape is None else list(self.image_shape),
                **({"max_zoom": self.max_zoom} if self.max_zoom else {})}

    def compute_output_shape(self, input_shape):
        if self.image_shape is not None:
            if tuple(input_shape) != (math.prod(self.image_shape),):
                raise ValueError(f"ImageAugmentation with image_shape {self.image_shape} needs "
                                 f"flat rows of {math.prod(self.image_shape)} values, got "
                                 f"per-sample shape {tuple(input_shape)}")
        elif len(input_shape) != 3:
            raise ValueError(f"ImageAugmentation needs (channels, height, width) images (or "
                             f"image_shape= for flat rows), got per-sample shape "
                             f"{tuple(input_shape)}")
        return tuple(input_shape)

    def _check_shift(self, height, width):
        """ValueError unless every shift leaves part of a ``height`` x ``width`` image in the
        picture. Checked when training, not when built: a network saved with such a shift
        (before dlcore refused it) still loads and predicts, and its weights are not lost."""
        if self.max_shift >= min(height, width):
            # a shift by the whole height or width leaves a blank image that keeps its label
            raise ValueError(f"ImageAugmentation's max_shift={self.max_shift} can move a "
                             f"{height}x{width} image entirely out of the picture, leaving a "
                             f"blank training image with a label: give max_shift below "
                             f"{min(height, width)} (a few pixels, as the lecture's 2)")

    def forward(self, x, training=False, step=0):
        self._prepare(x)
        self._augmenting = draws_noise(training)
        if not self._augmenting:
            return x
        rows = x
        if self.image_shape is not None:   # flat rows: the same pixels seen as images
            x = x.reshape((x.shape[0], *self.image_shape))
        self._check_shift(*x.shape[2:])
        y = self._buffer("output", x.shape)
        if not self.backend.launches_kernels:
            parameters = augmentation_parameters(x.shape[0], self.seed_, step, self.max_shift,
                                                 self.horizontal_flip, self.max_rotation,
                                                 self.first_row, self.max_zoom)
            y[...] = augment_images(x, *parameters)
        else:
            k0, k1 = rng.key_from_seed(self.seed_)
            n, channels, height = x.shape[:3]
            self.backend.launch_rows(augment_rows, n * channels, height, x, y, k0, k1,
                                     np.uint64(step), np.uint64(rng.STREAM_AUGMENT),
                                     self.max_shift, self.horizontal_flip,
                                     math.radians(self.max_rotation), np.uint64(self.first_row),
                                     float(self.max_zoom), work=x.size)
        return y.reshape(rows.shape)

    def backward(self, grad_y, need_input_gradient=True):
        if not need_input_gradient:
            return None
        if not getattr(self, "_augmenting", False):
            return grad_y      # the identity (evaluation): the gradient of an input image
        raise ValueError("ImageAugmentation passes no gradient while it augments: it must be "
                         "the first layer")


class GaussianNoise(Layer):
    """y = x + stddev * z, z ~ N(0, 1) drawn afresh for every update (training only).

    Parameters
    ----------
    stddev : float >= 0 (0 adds nothing, as Keras's ``GaussianNoise(0)``: the first of a sweep
        of noise levels)
    seed : int in [0, 2**64) or None, Keras's: the Philox key of this layer's noise, instead of
        the model's key for it (the same noise wherever the layer sits); kept in the layer's
        config and so in the model's files
    name, input_shape, trainable, dtype : see :class:`dlcore.layers.Layer`
    """

    stochastic = True
    #: The global row of the batch's first sample, whose Philox row keys its draws: 0 but in
    #: data-parallel training (as :attr:`dlcore.layers.Dropout.first_row`).
    first_row = 0

    def __init__(self, stddev, seed=None, name=None, input_shape=None, trainable=True, dtype=None):
        super().__init__(name=name, input_shape=input_shape, trainable=trainable,
                         dtype=dtype)
        self.stddev = check_float(stddev, "stddev", low=0.0)
        self.seed = own_seed(seed)

    def _config(self):
        return {"stddev": self.stddev, **({} if self.seed is None else {"seed": self.seed})}

    def build(self, input_shape, backend="auto", dtype=np.float32, seed=0):
        # a seed of its own keys the noise instead of the model's key for the layer
        return super().build(input_shape, backend, dtype, seed if self.seed is None else
                             self.seed)

    def forward(self, x, training=False, step=0):
        self._prepare(x)
        if not draws_noise(training) or not self.stddev:
            return x
        n = x.shape[0]
        y = self._buffer("output", x.shape)
        add_gaussian_noise(self.backend, x.reshape(n, -1), y.reshape(n, -1), self.stddev,
                           self.seed_, rng.STREAM_NOISE, step, self.first_row)
        return y

    def backward(self, grad_y, need_input_gradient=True):
        return grad_y if need_input_gradient else None
