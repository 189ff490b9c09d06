"""Sizes of convolution and pooling outputs, and the errors for geometries that do not fit.

Lecture "Convolutional Neural Networks" (2019) gives the output size of a convolution or a
pooling along one axis without padding, (N - F) / S + 1, and lecture "Deep learning I", topic
"Convolutional neural networks", with the zero padding:

    output = (N - F + 2P) / S + 1

with N the input size, F the filter (or pool) size, P the zero padding on each side and S the
stride. The division must be exact: a filter that does not tile the padded input leaves pixels
that no output sees, which is almost always a mistake in the architecture, so dlcore refuses it
with a message that names N, F, P and S and the layers that fit, each written as the call that
makes it and checked by the same code that refused the first (:meth:`Window.fit`): for a
convolution the nearest padding (none exists when S is even and N - F odd; then the nearest
kernel size), for a pool the nearest pool size with its stride said (``MaxPool2D(F)`` strides
by F), and Keras's two rules below, ``padding="same"`` and ``floor=True``. An input shape
that looks like Keras's channels-last images, (28, 28, 1) or (32, 32, 3), is named as such
instead (:func:`looks_channels_last`): no padding or pool size makes that network right, and
where such a shape builds, the layer warns.

``padding="same"`` is Keras's "same" (what a Keras user means by it): the output is ceil(N / S)
and along an axis the padding is

    P_total = max((ceil(N / S) - 1) S + F - N, 0),   top = P_total // 2,   bottom = the rest,

so one more row at the bottom (and column at the right) when P_total is odd, which happens with
a stride above 1 or an even kernel (:func:`keras_same_padding`). With an odd F at stride 1, and
wherever (N - F + 2P) / S + 1 is whole with P = (F - 1) / 2, that is P = (F - 1) / 2 on both
sides, the lecture's "same"; the padding depends on the input, so :meth:`Window.fit` computes it.
When nothing is padded (S > F), the rows no window reaches are dropped, as Keras does. A pool
with a padding ignores the padded cells (Keras's rule): the maximum and the mean are those of
the real pixels its window covers.

Keras's other geometry, for the layers imported from Keras files (:mod:`dlcore.io.keras`), is an
explicit option of the layers: ``floor=True`` drops the remainder, floor((N - F + 2P) / S) + 1
(Keras's "valid"), and a padding given per side, ``((top, bottom), (left, right))``, pads
unequally (what the import sets for Keras's "same").
"""
import numbers
import os
import sys
import warnings
from dataclasses import dataclass


def _positive_pair(value, name):
    """``value`` as a pair of positive ints: ``5 -> (5, 5)``, ``(3, 5) -> (3, 5)``."""
    if isinstance(value, numbers.Integral):
        pair = (value, value)
    elif isinstance(value, (tuple, list)):
        pair = tuple(value)
    else:
        pair = ()
    if len(pair) != 2 or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool)
                                 and v >= 1 for v in pair):
        raise ValueError(f"{name} must be a positive integer or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


def kernel_pair(value, name="kernel_size"):
    """A kernel, pool or stride size as ``(height, width)``."""
    return _positive_pair(value, name)


def one_stride(given, keras_given, default, name="stride", keras_name="strides"):
    """The stride of a layer that takes both spellings, dlcore's ``name`` and Keras's
    ``keras_name``: the one given, or either when both say the same stride. Two different
    strides are refused, as ``SGD(learning_rate=..., lr=...)`` is, rather than one silently
    winning. ``given`` equal to ``default`` counts as not given (a signature cannot tell)."""
    if keras_given is None:
        return given
    if given is None or (default is not None
                         and kernel_pair(given, name) == kernel_pair(default, name)):
        return keras_given
    if kernel_pair(given, name) != kernel_pair(keras_given, keras_name):
        raise ValueError(f"give {name} or {keras_name} (the same setting), not both: "
                         f"{name}={given!r} and {keras_name}={keras_given!r} disagree")
    return given


def padding_pair(padding, kernel_size, name="padding"):
    """The zero padding ``(P_h, P_w)`` for ``padding`` = ``"valid"`` (0), an int or a pair
    (``"same"`` depends on the input: see :func:`padding_sides`)."""
    if isinstance(padding, str):
        if padding.lower() == "valid":
            return 0, 0
        raise ValueError(f"{name} must be 'valid', 'same', an integer or a pair of integers, "
                         f"got {padding!r}")
    pair = ((padding, padding) if isinstance(padding, numbers.Integral)
            else tuple(padding) if isinstance(padding, (tuple, list)) else ())
    if len(pair) != 2 or not all(isinstance(p, numbers.Integral) and not isinstance(p, bool)
                                 and p >= 0 for p in pair):
        raise ValueError(f"{name} must be 'valid', 'same', a non-negative integer or a pair "
                         f"of them, got {padding!r}")
    return int(pair[0]), int(pair[1])


def padding_sides(padding, kernel_size, name="padding"):
    """The zero padding ``((top, bottom), (left, right))`` for what :func:`padding_pair` takes,
    or for that form itself: a padding given per side (Keras's ``ZeroPadding2D`` form; what
    layers imported from Keras set for Keras's unequal ``"same"``); ``"same"`` for Keras's
    ``"same"``, whose sides depend on the input (:meth:`Window.fit` computes them)."""
    if isinstance(padding, str) and padding.lower() == "same":
        return "same"
    if isinstance(padding, (tuple, list)) and len(padding) == 2 and all(
            isinstance(side, (tuple, list)) for side in padding):
        sides = tuple(tuple(side) for side in padding)
        if not all(len(side) == 2 and all(isinstance(p, numbers.Integral)
                                          and not isinstance(p, bool) and p >= 0 for p in side)
                   for side in sides):
            raise ValueError(f"{name} per side must be ((top, bottom), (left, right)) of "
                             f"non-negative integers, got {padding!r}")
        return tuple((int(a), int(b)) for a, b in sides)
    ph, pw = padding_pair(padding, kernel_size, name)
    return (ph, ph), (pw, pw)


def keras_same_padding(n, f, s):
    """Keras's ``padding="same"`` along one axis of N pixels, filter F, stride S:
    ``(top, bottom)`` with top + bottom = max((ceil(N / S) - 1) S + F - N, 0) and the odd
    one at the bottom (or right)."""
    total = max((-(-n // s) - 1) * s + f - n, 0)
    return total // 2, total - total // 2


def output_size(n, f, p, s, what="convolution", axis="height", floor=False, p_end=None):
    """``(N - F + 2P) / S + 1``, or a ValueError naming N, F, P and S when it is not a whole
    number of at least 1 (:meth:`Window.fit` adds the layers that fit).
    ``p_end``: the padding at the end (bottom or right) when it differs from P at the start:
    then N + P + P_end takes the place of N + 2P.

    ``floor``: Keras's rule instead, floor((N - F + 2P) / S) + 1, the remainder dropped (the
    option that layers imported from Keras set, Keras's "valid")."""
    p_end = p if p_end is None else p_end
    span = n - f + p + p_end
    if floor and span >= 0:
        return span // s + 1
    if p_end != p:
        if span < 0 or span % s:
            raise ValueError(f"{what} does not fit along the {axis}: (N - F + P_start + P_end) "
                             f"/ S + 1 = ({n} - {f} + {p} + {p_end}) / {s} + 1 = "
                             f"{span / s + 1:g} is not a whole number of at least 1")
        return span // s + 1
    if span < 0:
        raise ValueError(f"{what} does not fit along the {axis}: the filter (F = {f}) is larger "
                         f"than the padded input (N + 2P = {n} + 2*{p} = {n + 2 * p})")
    if span % s:
        raise ValueError(f"{what} does not fit along the {axis}: (N - F + 2P) / S + 1 = "
                         f"({n} - {f} + 2*{p}) / {s} + 1 = {span / s + 1:g} is not a whole "
                         f"number (N = {n}, F = {f}, P = {p}, S = {s})")
    return span // s + 1


def _fits(n, f, p, s):
    return n - f + 2 * p >= 0 and (n - f + 2 * p) % s == 0


def fitting_padding(n, f, p, s):
    """The padding nearest to ``p`` (the smaller one on a tie) for which (N - F + 2P) / S + 1 is
    a whole number >= 1, or None when none does (S even and N - F odd: 2P is even)."""
    smallest = max(0, -(-(f - n) // 2))
    # N - F + 2P modulo S repeats with period S in P, so the nearest fit on each side of P (or
    # of the smallest padding that lets the filter fit) lies within S of it: searching only
    # there keeps a hostile P of 10**12 as quick to refuse as P = 1.
    centre = max(p, smallest)
    candidates = [q for q in range(max(smallest, centre - s), centre + s + 1)
                  if _fits(n, f, q, s)]
    return min(candidates, key=lambda q: (abs(q - p), q)) if candidates else None


def fitting_window(n, f, p, s):
    """The window size nearest to ``f`` (the larger one on a tie: a window of 1 sees little)
    that fits N, P and S; F = N + 2P always does."""
    # The sizes that fit are every S-th one below N + 2P, so the nearest on each side of F
    # (or N + 2P itself when F is larger) lies within S of it.
    largest = n + 2 * p
    centre = min(f, largest)
    return min((g for g in range(max(1, centre - s), min(largest, centre + s) + 1)
                if _fits(n, g, p, s)),
               key=lambda g: (abs(g - f), -g))


def _fitting_stride(n, f, p):
    """The largest stride up to F (pools that overlap rather than skip pixels) for which
    (N - F + 2P) / S + 1 is whole, or None (F larger than N + 2P)."""
    span = n - f + 2 * p
    if span < 0:
        return None
    # S = 1 always fits; looking at the largest few keeps a file's hostile F quick to refuse
    return next((s for s in range(f, max(f - 64, 1), -1) if span % s == 0), 1)


def looks_channels_last(input_shape):
    """Whether a per-sample (C, H, W) shape reads as Keras's channels-last (H, W, C) images:
    its last axis 1 to 4 long (grey, RGB, RGBA) and the two before it at least 8 and 4 times
    as long, e.g. (28, 28, 1) or (32, 32, 3), which channels-first maps rarely are."""
    if len(input_shape) != 3:
        return False
    height, width, channels = (int(v) for v in input_shape)
    return 1 <= channels <= 4 and min(height, width) >= max(8, 4 * channels)


def channels_last_advice(input_shape):
    """The fix for a channels-last input shape, in one clause."""
    height, width, channels = (int(v) for v in input_shape)
    first = (channels, height, width)
    return (f"the input shape {tuple(input_shape)} looks channels-last (Keras's H, W, C), but "
            f"dlcore's images are channels-first (C, H, W): give input_shape={first} (or "
            f"Input({first})) and move the data's channel axis with x.transpose(0, 3, 1, 2), "
            f"or, where a layer made this shape (Keras's Reshape({tuple(input_shape)})), have "
            f"it make {first}")


def check_data_format(data_format, layer):
    """Keras's ``data_format`` argument of the image layers: None or ``"channels_first"``,
    dlcore's only layout (NCHW); anything else (Keras's default ``"channels_last"``) refused in
    one line saying how to bring the data over."""
    if data_format not in (None, "channels_first"):
        raise ValueError(f"{layer}: dlcore's images are channels first (N, C, H, W), so "
                         f"data_format must be None or 'channels_first', got "
                         f"{data_format!r:.40}; give input_shape=(C, H, W) and move the data's "
                         f"channel axis with x.transpose(0, 3, 1, 2)")


def stacklevel_outside_dlcore():
    """The ``stacklevel`` of :func:`warnings.warn`, called by the caller of this function, that
    names the user's line (the first frame outside the dlcore package) rather than a line of
    dlcore's that built the layer."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
    frame, level = sys._getframe(2), 2
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def warn_if_channels_last(what, input_shape, kernel_size):
    """A UserWarning when a window wider than one pixel slides over an input that looks
    channels-last (:func:`looks_channels_last`): it then convolves or pools across the colour
    channels, which builds and trains without an error. A warning, not an error: a
    channels-first map can have that shape."""
    if kernel_size[1] > 1 and looks_channels_last(input_shape):
        height, width, channels = input_shape
        warnings.warn(f"{what} reads {height} channels of {width}x{channels} images: "
                      f"{channels_last_advice(input_shape)}", UserWarning,
                      stacklevel=stacklevel_outside_dlcore())


def _pair_text(pair):
    return str(pair[0]) if pair[0] == pair[1] else str(tuple(pair))


def layer_call(what, kernel_size, stride, padding, floor=False, filters=None, pool=False):
    """The call that makes a layer of this geometry, as a user would write it:
    ``Conv2D(16, 3, stride=2, padding=1)``, ``MaxPool2D(3, stride=2)`` (a pool's stride is said
    where it is not the pool size, ``MaxPool2D(F)``'s own). ``padding``: "same", (P_h, P_w) or
    ((top, bottom), (left, right))."""
    arguments = [] if filters is None else [str(filters)]
    arguments.append(_pair_text(kernel_size))
    if tuple(stride) != (tuple(kernel_size) if pool else (1, 1)):
        arguments.append(f"stride={_pair_text(stride)}")
    if padding == "same":
        arguments.append("padding='same'")
    else:
        (top, bottom), (left, right) = (padding if isinstance(padding[0], (tuple, list))
                                        else ((padding[0],) * 2, (padding[1],) * 2))
        if (top, left) != (bottom, right):
            arguments.append(f"padding={((top, bottom), (left, right))}")
        elif top or left:
            arguments.append(f"padding={_pair_text((top, left))}")
    if floor:
        arguments.append("floor=True")
    return f"{what}({', '.join(arguments)})"


def _layers_that_fit(shape, kernel_size, stride, sides, what, can_pad, floor, filters):
    """'; what fits: ...': the layers near the one refused that fit ``shape``, each as its call
    and its output, each checked with :meth:`Window.fit` (the rule that refused the first), so
    that the advice works when applied as written."""
    sizes = shape[1:]
    symmetric = all(top == bottom for top, bottom in sides)
    pads = tuple(top for top, _ in sides)
    near, why_no_padding = [], ""
    if symmetric and can_pad:
        fitting = [fitting_padding(n, f, p, s)
                   for n, f, p, s in zip(sizes, kernel_size, pads, stride)]
        if None not in fitting:
            near.append([(kernel_size, stride, tuple(fitting), floor, "")])
        else:
            axis = fitting.index(None)
            why_no_padding = (f" (no padding fits: S = {stride[axis]} is even and N - F = "
                              f"{sizes[axis] - kernel_size[axis]} is odd)")
    elif symmetric:
        # MaxPool2D(F) strides by F, so a pool size is proposed with its stride: the nearest
        # size as written, MaxPool2D(F'); else with the stride kept, where the pools still
        # cover every pixel (MaxPool2D(2) on a 7x7 map: MaxPool2D(3, stride=2)); else the size
        # kept with the largest stride that fits (overlapping pools); else the nearest size
        window = tuple(fitting_window(n, f, p, s)
                       for n, f, p, s in zip(sizes, kernel_size, pads, stride))
        choices = [(window, window, pads, floor, "")]
        if all(f >= s for f, s in zip(window, stride)):
            choices.append((window, stride, pads, floor, ""))
        strides = tuple(_fitting_stride(n, f, p) for n, f, p in zip(sizes, kernel_size, pads))
        if None not in strides:
            choices.append((kernel_size, strides, pads, floor, ""))
        near.append(choices + [(window, stride, pads, floor, "")])
    near.append([(kernel_size, stride, "same", False, "Keras's 'same': ")])
    if not floor:
        near.append([(kernel_size, stride, sides, True, "the remainder dropped, as Keras's "
                                                        "'valid': ")])
    if why_no_padding:
        window = tuple(fitting_window(n, f, p, s)
                       for n, f, p, s in zip(sizes, kernel_size, pads, stride))
        near.append([(window, stride, pads, floor, "")])
    fits = []
    for choices in near:
        for kernel, strides, padding, floors, note in choices:
            try:
                window = Window.fit(shape, kernel, strides, padding, what, can_pad, floors,
                                    advise=False)
            except ValueError:
                continue
            call = layer_call(what, kernel, strides, padding, floors, filters, not can_pad)
            fits.append(f"{call} ({note}{window.out_height}x{window.out_width})")
            break
    if not fits:
        return why_no_padding
    listed = ", ".join(fits[:-1]) + " or " + fits[-1] if len(fits) > 1 else fits[0]
    return f"{why_no_padding}; what fits: {listed}"


@dataclass(frozen=True)
class Window:
    """Where a sliding window (a convolution filter or a pool) goes over NCHW images.

    Attributes
    ----------
    channels, height, width : the input image (C, H, W)
    kernel_height, kernel_width : F along each axis
    stride_height, stride_width : S
    pad_height, pad_width : P, zeros added at the top and the left
    out_height, out_width : (N - F + 2P) / S + 1
    pad_bottom, pad_right : zeros added at the bottom and the right; the same as at the top
        and the left unless given (Keras's unequal "same", see the module docstring)
    """

    channels: int
    height: int
    width: int
    kernel_height: int
    kernel_width: int
    stride_height: int
    stride_width: int
    pad_height: int
    pad_width: int
    out_height: int
    out_width: int
    pad_bottom: int = None
    pad_right: int = None

    def __post_init__(self):
        if self.pad_bottom is None:
            object.__setattr__(self, "pad_bottom", self.pad_height)
        if self.pad_right is None:
            object.__setattr__(self, "pad_right", self.pad_width)

    @classmethod
    def fit(cls, input_shape, kernel_size, stride, padding, what, can_pad=True, floor=False,
            filters=None, advise=True):
        """The window of ``kernel_size``, ``stride`` and ``padding`` pairs over a (C, H, W)
        input; raises ValueError (naming N, F, P, S and a fix) when it does not tile the input.
        ``padding``: (P_h, P_w), ((top, bottom), (left, right)) per side, or ``"same"``
        (Keras's, :func:`keras_same_padding` on this input: ceil(N / S) outputs).
        ``can_pad``: the layer takes a padding (a convolution; pools do not). ``floor``: Keras's
        geometry, the remainder that no window covers dropped (see :func:`output_size`).
        ``filters``: a convolution's, for the calls the error proposes; ``advise=False``: the
        error without them (what checks a proposal)."""
        if len(input_shape) != 3:
            raise ValueError(f"{what} needs (channels, height, width) inputs, got shape "
                             f"{tuple(input_shape)}; images are NCHW")
        c, h, w = (int(v) for v in input_shape)
        (fh, fw), (sh, sw) = kernel_size, stride
        if isinstance(padding, str) and padding == "same":
            # Keras's "same" always fits; with nothing to pad (S > F) the floor drops the rows
            # no window reaches, as Keras does, which keeps ceil(N / S) outputs
            padding, floor = (keras_same_padding(h, fh, sh), keras_same_padding(w, fw, sw)), True
        (top, bottom), (left, right) = (padding if isinstance(padding[0], (tuple, list))
                                        else ((padding[0],) * 2, (padding[1],) * 2))
        try:
            out_h = output_size(h, fh, top, sh, what, "height", floor, bottom)
            out_w = output_size(w, fw, left, sw, what, "width", floor, right)
        except ValueError as error:
            if not advise:
                raise
            if looks_channels_last((c, h, w)):   # no padding or pool size makes that right
                raise ValueError(f"{error}; {channels_last_advice((c, h, w))}") from None
            fixes = _layers_that_fit((c, h, w), (fh, fw), (sh, sw),
                                     ((top, bottom), (left, right)), what, can_pad, floor,
                                     filters)
            raise ValueError(f"{error}{fixes}") from None
        return cls(c, h, w, fh, fw, sh, sw, top, left, out_h, out_w, bottom, right)

    @property
    def sides(self):
        """The zeros added per side, ``((top, bottom), (left, right))``."""
        return (self.pad_height, self.pad_bottom), (self.pad_width, self.pad_right)

    @property
    def padded(self):
        """Whether any side has a padding."""
        return bool(self.pad_height or self.pad_width or self.pad_bottom or self.pad_right)

    @property
    def patch_size(self):
        """C * F_h * F_w: the length of one receptive field (a column of im2col)."""
        return self.channels * self.kernel_height * self.kernel_width

    @property
    def out_pixels(self):
        return self.out_height * self.out_width


def transpose_output_size(n, f, s, padding):
    """The output size of a transposed convolution along one axis, and the rows its
    scatter-add skips at the start (Keras's rules, ``deconv_output_length``):

        "valid":  output = N S + max(F - S, 0)      (= (N - 1) S + F when F >= S), skip 0
        "same":   output = N S,                     skip max(F - S, 0) // 2

    The scatter-add of N inputs, S apart, with a filter of F covers (N - 1) S + F rows; the
    output is that span from row ``skip`` on, cropped (more at the end, as Keras does) or
    extended with zeros to ``output`` rows. Returns ``(output, skip)``."""
    if padding == "valid":
        return n * s + max(f - s, 0), 0
    if padding == "same":
        return n * s, max(f - s, 0) // 2
    raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")


def transpose_window(input_shape, filters, kernel_size, stride, padding, what):
    """The :class:`Window` of the convolution whose adjoint is a transposed convolution of
    ``filters`` output maps over a (C, H, W) input: it slides over the transposed output
    (``channels`` = filters, ``height``/``width`` = the output size, ``pad`` = the rows skipped
    at the start) and its ``out_height``/``out_width`` are the input's H and W."""
    if len(input_shape) != 3:
        raise ValueError(f"{what} needs (channels, height, width) inputs, got shape "
                         f"{tuple(input_shape)}; images are NCHW")
    _, h, w = (int(v) for v in input_shape)
    (fh, fw), (sh, sw) = kernel_size, stride
    out_h, skip_h = transpose_output_size(h, fh, sh, padding)
    out_w, skip_w = transpose_output_size(w, fw, sw, padding)
    return Window(int(filters), out_h, out_w, fh, fw, sh, sw, skip_h, skip_w, h, w)
