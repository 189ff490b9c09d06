"""Initial weights, drawn from the Philox generator so that a seed gives the same network on
every backend and machine (:mod:`dlcore.backend.rng`, stream ``STREAM_INIT``).

Lecture "Deep learning I": "Almost always initialized with small random numbers drawn
from Gaussian or uniform distribution ... Xavier (or Glorot) initialization". With ``fan_in``
the inputs and ``fan_out`` the outputs of one unit (for a conv kernel (F, C, k_h, k_w):
fan_in = C k_h k_w, fan_out = F k_h k_w, as Keras counts them):

    glorot_uniform  U(-l, l), l = sqrt(6 / (fan_in + fan_out))   (Glorot & Bengio 2010)
    glorot_normal   N(0, s^2), s = sqrt(2 / (fan_in + fan_out))
    he_uniform      U(-l, l), l = sqrt(6 / fan_in)                 (He et al. 2015, for ReLU)
    he_normal       N(0, s^2), s = sqrt(2 / fan_in)
    zeros, ones     constants (biases start at zero)

Both normal variants are plain (untruncated) normals. A NumPy array of the right shape is
accepted as an initializer too: that is how a DBN hands its RBM weights to a network.
"""
import numpy as np

from dlcore.backend import rng

INITIALIZERS = ("glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "zeros", "ones")
#: What ``get_config`` records for weights given as an array: the values themselves travel in
#: the model file's state, and ``from_config`` alone starts such a layer from zeros.
FROM_ARRAY = "from_array"


def check_initializer(initializer, name):
    """A valid initializer name (lower-cased), or an array; else ValueError naming the choices."""
    if isinstance(initializer, np.ndarray):
        return initializer
    if isinstance(initializer, str) and initializer.lower() in INITIALIZERS + (FROM_ARRAY,):
        return initializer.lower()
    raise ValueError(f"{name} must be one of {', '.join(INITIALIZERS)} or a NumPy array, "
                     f"got {initializer!r}")


def config_name(initializer):
    """The JSON-able name of an initializer (arrays become ``"from_array"``)."""
    return FROM_ARRAY if isinstance(initializer, np.ndarray) else initializer


def initial_values(initializer, shape, fan_in, fan_out, seed, dtype=np.float32, what="weights"):
    """An array of ``shape`` drawn as ``initializer`` says (see the module docstring).

    The random draw is a (shape[0], prod(shape[1:])) Philox array with key ``seed``, stream
    ``STREAM_INIT`` and step 0, reshaped.
    """
    shape = tuple(int(v) for v in shape)
    if isinstance(initializer, np.ndarray):
        if initializer.shape != shape:
            raise ValueError(f"initial {what} have shape {initializer.shape}; this layer needs "
                             f"{shape}")
        if not np.all(np.isfinite(initializer)):
            raise ValueError(f"initial {what} contain NaN or infinite values")
        return np.array(initializer, dtype=dtype)
    if initializer in ("zeros", FROM_ARRAY):
        return np.zeros(shape, dtype=dtype)
    if initializer == "ones":
        return np.ones(shape, dtype=dtype)
    rows, columns = shape[0], int(np.prod(shape[1:], dtype=np.int64)) if len(shape) > 1 else 1
    fan = {"glorot": fan_in + fan_out, "he": fan_in}[initializer.split("_")[0]]
    if initializer.endswith("uniform"):
        limit = np.sqrt(6.0 / fan)
        u = rng.uniform(rows, columns, seed, rng.STREAM_INIT, 0).astype(np.float64)
        values = (2.0 * u - 1.0) * limit
    else:
        values = rng.normal(rows, columns, seed, rng.STREAM_INIT, 0).astype(np.float64)
        values *= np.sqrt(2.0 / fan)
    return values.reshape(shape).astype(dtype)

