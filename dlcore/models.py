"""Ready-made networks: LeNet-5, a multi-layer perceptron, the small convnet of lecture
"Convolutional neural networks" (2016), and two functional models: a small residual net
(``resnet_small``) and a small U-Net (``unet_small``).

LeNet-5 (LeCun, Bottou, Bengio & Haffner 1998), for the homework of lecture "Convolutional
Neural Networks" (2019), slide "LeNet 1989 (Homework)": "Filters are of size 5x5, stride 1
Pooling is 2x2, with stride 2", "How many parameters?". The slide's words give no layer widths
(its drawing is not in the text) and its title names 1989, the year of LeCun et al.'s first
convolutional network; dlcore answers for LeNet-5, the LeNet courses draw, whose filters and
pools are those:

    input 1@28x28  (MNIST; the paper padded to 32x32, here: padding 2 in the first conv;
                    a 32x32 input, the paper's own, gets none: the same geometry from C1 on)
    conv  6@5x5, padding 2   -> 6@28x28      6 * (1 * 5 * 5) + 6   =    156 parameters
    pool  2x2, stride 2      -> 6@14x14
    conv 16@5x5              -> 16@10x10    16 * (6 * 5 * 5) + 16  =  2,416
    pool  2x2, stride 2      -> 16@5x5
    dense 400 -> 120                        400 * 120 + 120        = 48,120
    dense 120 -> 84                         120 * 84 + 84          = 10,164
    dense 84 -> 10, softmax                 84 * 10 + 10           =    850
                                                            total    61,706

The 1998 network used scaled tanh units, trainable average ("subsampling") pooling, a
partially connected C3 layer and RBF outputs; dlcore's default is the form most courses teach
today: ReLU activations, max pooling, a fully connected C3 and a softmax output trained with
cross-entropy (``activation="tanh"``, ``pooling="avg"`` give the older flavour).
"""
import numpy as np

from dlcore.functional import Model  # noqa: F401  (Keras: from keras.models import Model)
from dlcore.layer_stack import check_size_list
from dlcore.layers import (
    AvgPool2D,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GaussianNoise,
    ImageAugmentation,
    L2Pool2D,
    MaxPool2D,
)
from dlcore.layers.base import check_shape
from dlcore.network import Sequential
from dlcore.validation import check_float, check_int

POOLINGS = {"max": MaxPool2D, "avg": AvgPool2D, "l2": L2Pool2D}


def _pooling(name):
    if name not in POOLINGS:
        raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {name!r}")
    return POOLINGS[name]


def _augmentation(augment):
    """The augmentation layer ``augment`` asks for, as a list: True, ImageAugmentation's
    defaults (shifts of up to 2 pixels, what the CLI's ``--augment`` switches on); a dict, its
    arguments; None, False or {}: none."""
    if augment is None or isinstance(augment, (bool, np.bool_)):
        return [ImageAugmentation()] if augment else []
    if not isinstance(augment, dict):
        raise ValueError(f"augment takes True (shifts of up to 2 pixels), a dict of "
                         f"ImageAugmentation arguments, e.g. {{'max_shift': 2, "
                         f"'horizontal_flip': True}}, or None; got {augment!r:.60}")
    return [ImageAugmentation(**augment)] if augment else []


def _input_layers(augment, noise):
    """The layers that prepare a network's input: augmentation (first), then input noise."""
    layers = _augmentation(augment)
    if check_float(noise, "noise", low=0.0):
        layers.append(GaussianNoise(noise, name="input_noise"))
    return layers


def lenet5(input_shape=(1, 28, 28), n_classes=10, activation="relu", pooling="max",
           dropout=0.0, augment=None, backend="auto", seed=0, noise=0.0,
           kernel_regularizer=None, kernel_constraint=None):
    """LeNet-5 as a :class:`dlcore.Sequential` (layers and parameter counts in the module
    docstring): input (1, 28, 28), 10 class probabilities.

    Parameters
    ----------
    input_shape : (channels, height, width); 28x28 (MNIST: c1 pads 2, which keeps 28) or
        32x32 (the paper's input: no padding, C1 6@28x28), the same 61,706 parameters with
        one channel; c1 pads 2 along a side shorter than 32, none along a longer one
    n_classes : int
    activation : "relu" (default), "tanh" or "sigmoid" for the hidden layers
    pooling : "max" (default), "avg" or "l2"
    dropout : float in [0, 1), the rate of a Dropout layer after each of the two hidden dense
        layers (c5 and f6); 0: none
    augment : dict of :class:`dlcore.layers.ImageAugmentation` arguments (e.g.
        ``{"max_shift": 2, "horizontal_flip": True}``) for a first augmentation layer, True
        for its defaults (shifts of up to 2 pixels, as ``dlcore cnn train --augment``), or
        None
    backend, seed : as for :class:`dlcore.Sequential`
    noise : float >= 0, the stddev of a :class:`dlcore.layers.GaussianNoise` on the input
        (after the augmentation); 0: none
    kernel_regularizer, kernel_constraint : given to every Conv2D and Dense layer (e.g.
        ``dlcore.regularizers.L2(1e-3)``, ``dlcore.regularizers.MaxNorm(3.0)``)
    """
    pool = _pooling(pooling)
    dropout = check_float(dropout, "dropout", low=0.0, high=1.0, high_open=True)
    weights = {"kernel_regularizer": kernel_regularizer, "kernel_constraint": kernel_constraint}
    layers = _input_layers(augment, noise)
    # LeNet-5's geometry is that of a 32x32 input: MNIST's 28x28 digits are padded to it
    padding = tuple(2 if size < 32 else 0 for size in check_shape(input_shape)[1:])
    padding = padding if len(padding) == 2 else (2, 2)   # not an image: Conv2D says so
    layers += [
        Conv2D(6, 5, padding=padding[0] if padding[0] == padding[1] else padding,
               activation=activation, name="c1", **weights),
        pool(2, name="s2"),
        Conv2D(16, 5, activation=activation, name="c3", **weights),
        pool(2, name="s4"),
        Flatten(name="flatten"),
        Dense(120, activation=activation, name="c5", **weights),
    ]
    if dropout:
        layers.append(Dropout(dropout, name="dropout_c5"))
    layers.append(Dense(84, activation=activation, name="f6", **weights))
    if dropout:
        layers.append(Dropout(dropout, name="dropout_f6"))
    layers.append(Dense(check_int(n_classes, "n_classes", minimum=1), activation="softmax",
                        name="output", **weights))
    return Sequential(layers, input_shape=input_shape, backend=backend, seed=seed,
                      name="lenet5")


def mlp(input_shape=(1, 28, 28), hidden=(256, 128), n_classes=10, activation="relu",
        dropout=0.0, backend="auto", seed=0, augment=None, noise=0.0, kernel_regularizer=None,
        kernel_constraint=None):
    """A multi-layer perceptron: Flatten, ``Dense(h, activation)`` for every h in ``hidden``
    (each followed by Dropout when ``dropout`` > 0), then ``Dense(n_classes, softmax)``.

    Parameters
    ----------
    input_shape : tuple of int
        Flat, ``(784,)``, or an image shape (C, H, W), which a Flatten comes first for.
    hidden : int or sequence of int
        The hidden layers' sizes, input side first; one number is one hidden layer
        (``hidden=100``, as :class:`dlcore.DBN` and scikit-learn's ``MLPClassifier`` take it);
        an empty sequence: softmax regression.
    n_classes : int
        Outputs of the softmax layer.
    activation : str
        The hidden layers' activation (a :class:`dlcore.layers.Dense` activation name).
    dropout : float in [0, 1)
        The rate of a Dropout layer after each hidden layer; 0: none.
    backend, seed : as for :class:`dlcore.Sequential`
    augment, noise, kernel_regularizer, kernel_constraint : as for :func:`lenet5`
        (augmentation needs an image shape).

    Returns
    -------
    dlcore.Sequential
        Built for ``input_shape``, not compiled.
    """
    dropout = check_float(dropout, "dropout", low=0.0, high=1.0, high_open=True)
    hidden = check_size_list(hidden, least=0)   # as DBN's: a list, an array, one number
    weights = {"kernel_regularizer": kernel_regularizer, "kernel_constraint": kernel_constraint}
    layers = _input_layers(augment, noise)
    input_shape = check_shape(input_shape)   # 784 or (784,): rows; (1, 28, 28): images
    layers += [Flatten(name="flatten")] if len(input_shape) > 1 else []
    for index, units in enumerate(hidden):
        layers.append(Dense(units, activation=activation, name=f"hidden_{index + 1}", **weights))
        if dropout:
            layers.append(Dropout(dropout, name=f"dropout_{index + 1}"))
    layers.append(Dense(check_int(n_classes, "n_classes", minimum=1), activation="softmax",
                        name="output", **weights))
    return Sequential(layers, input_shape=input_shape, backend=backend, seed=seed, name="mlp")


def stacked_network(weights, n_classes, activation="sigmoid", dropout=0.0, input_dropout=0.0,
                    prefix="hidden", name="stacked", backend="auto", seed=0, augment=None):
    """A :class:`dlcore.Sequential` whose hidden layers start from pretrained weights: what a
    DBN, a stacked autoencoder and supervised pretraining hand over for fine-tuning (lecture
    "Deep Neural Networks": "add a classifier layer, and retrain the whole network
    supervised").

    One ``Dense`` layer per ``(kernel, bias)`` pair of ``weights`` (kernel (in, out), bias
    (out,)), named ``<prefix>1``, ``<prefix>2``..., with ``activation`` (one name, or one per
    layer); ``Dropout(dropout)`` after each when ``dropout`` > 0 and ``Dropout(input_dropout)``
    first when ``input_dropout`` > 0; then ``Dense(n_classes, activation="softmax")`` named
    ``classifier``, Glorot-uniform from the network's ``seed``. ``augment``: a dict of
    :class:`dlcore.layers.ImageAugmentation` arguments with ``image_shape`` (the flat rows'
    images), whose layer goes first (lecture "Convolutional neural networks": augmented data by
    image-specific transformations); None: none. Built for inputs (kernel_1.shape[0],), not
    compiled.

    Parameters
    ----------
    weights : list of (kernel, bias) pairs, kernel (in, out) and bias (out,), input side first
    n_classes : int >= 1, the softmax layer's outputs
    activation : str, or one per hidden layer
    dropout, input_dropout : floats in [0, 1); 0: no such Dropout layer
    prefix : str, the hidden layers' names before their number
    name : str, the network's name
    backend, seed : as for :class:`dlcore.Sequential`
    augment : dict of :class:`dlcore.layers.ImageAugmentation` arguments with ``image_shape``,
        or None

    Returns
    -------
    dlcore.Sequential
    """
    activations = [activation] * len(weights) if isinstance(activation, str) else \
        list(activation)
    if len(activations) != len(weights):
        raise ValueError(f"activation lists {len(activations)} names for {len(weights)} "
                         "hidden layers")
    layers = _augmentation(augment)
    if input_dropout:
        layers.append(Dropout(input_dropout, name="input_dropout"))
    for index, ((kernel, bias), layer_activation) in enumerate(zip(weights, activations)):
        kernel = np.array(kernel, np.float32)
        layers.append(Dense(kernel.shape[1], activation=layer_activation,
                            kernel_initializer=kernel,
                            bias_initializer=np.array(bias, np.float32),
                            name=f"{prefix}{index + 1}"))
        if dropout:
            layers.append(Dropout(dropout, name=f"dropout{index + 1}"))
    layers.append(Dense(check_int(n_classes, "n_classes", minimum=1), activation="softmax",
                        name="classifier"))
    return Sequential(layers, input_shape=(int(np.shape(weights[0][0])[0]),), backend=backend,
                      seed=seed, name=name)


def convnet_2016(backend="auto", seed=0, use_bias=True):
    """The MNIST convnet of lecture "Convolutional neural networks" (2016), slide
    "Convolutional vs. non-convolutional": 5x5 convolutions with 9 and then 16 channels, each
    keeping the size ("padding: input can be padded with zeroes to keep the same size") and
    followed by 2x2 max pooling, then a dense layer to the 10 classes::

        1@28x28 -> conv 9@5x5 -> 9@28x28 -> pool -> 9@14x14 -> conv 16@5x5 -> 16@14x14
                -> pool -> 16@7x7 -> dense 10

    Weights (biases not counted, as on the slide):
    5*5*9 + 5*5*9*16 + 7*7*16*10 = 225 + 3,600 + 7,840 = 11,665 (the slide writes the middle
    term as 5*5*16; 3,600 needs the 9 input channels).

    Parameters
    ----------
    backend, seed : as for :class:`dlcore.Sequential`
    use_bias : bool, biases in every layer (False: the slide's count is the whole count)

    Returns
    -------
    dlcore.Sequential, built for (1, 28, 28) inputs, not compiled
    """
    return Sequential([
        Conv2D(9, 5, padding="same", activation="relu", use_bias=use_bias),
        MaxPool2D(2),
        Conv2D(16, 5, padding="same", activation="relu", use_bias=use_bias),
        MaxPool2D(2),
        Flatten(),
        Dense(10, activation="softmax", use_bias=use_bias),
    ], input_shape=(1, 28, 28), backend=backend, seed=seed, name="convnet_2016")


def resnet_small(input_shape=(1, 28, 28), n_classes=10, filters=8, blocks=2, backend="auto",
                 seed=0):
    """A small residual network (lecture "Convolutional Neural Networks" (2019), residual
    connections: a block learns F(x) and outputs relu(x + F(x))), a functional
    :class:`dlcore.Model` for MNIST-size input::

        input -> conv filters@3x3 (same, relu) -> pool 2x2
              -> ``blocks`` x [x + conv(relu(conv(x))), then relu] -> pool 2x2
              -> flatten -> dense n_classes, softmax

    Parameters
    ----------
    input_shape : (channels, height, width)
    n_classes : int, the softmax layer's outputs
    filters : int >= 1, the channels of every convolution
    blocks : int >= 1, the residual blocks
    backend, seed : as for :class:`dlcore.Model`

    Returns
    -------
    dlcore.Model, not compiled
    """
    import dlcore
    from dlcore.layers import ReLU, add
    filters = check_int(filters, "filters", minimum=1)
    blocks = check_int(blocks, "blocks", minimum=1)
    inputs = dlcore.Input(shape=input_shape)
    x = Conv2D(filters, 3, padding="same", activation="relu", name="stem")(inputs)
    x = MaxPool2D(2, name="stem_pool")(x)
    for index in range(1, blocks + 1):
        y = Conv2D(filters, 3, padding="same", activation="relu", name=f"block{index}_a")(x)
        y = Conv2D(filters, 3, padding="same", name=f"block{index}_b")(y)
        x = ReLU(name=f"block{index}_relu")(add([x, y], name=f"block{index}_add"))
    x = MaxPool2D(2, name="pool")(x)
    outputs = Dense(check_int(n_classes, "n_classes", minimum=1), activation="softmax",
                    name="output")(Flatten(name="flatten")(x))
    return dlcore.Model(inputs, outputs, backend=backend, seed=seed, name="resnet_small")


def unet_small(input_shape=(1, 28, 28), filters=8, backend="auto", seed=0):
    """A small U-Net (lecture "Deep learning I": the U-Net's contracting path, then an
    expanding path that up-samples and concatenates the contracting path's features of the same
    size) for binary segmentation, a functional :class:`dlcore.Model`::

        input -> conv filters@3x3 (relu) = c1 -> pool 2x2 -> conv 2*filters@3x3 (relu)
              -> Conv2DTranspose filters@2x2, stride 2 -> concatenate with c1
              -> conv filters@3x3 (relu) -> conv 1@1x1, sigmoid: a mask of the input's size

    Height and width must be even; train with ``binary_cross_entropy`` on (n, H*W) masks.

    Parameters
    ----------
    input_shape : (channels, height, width), height and width even
    filters : int >= 1, the channels of the first level (the second has twice as many)
    backend, seed : as for :class:`dlcore.Model`

    Returns
    -------
    dlcore.Model, not compiled: (n, *input_shape) -> (n, 1, height, width) probabilities
    """
    import dlcore
    from dlcore.layers import Conv2DTranspose, concatenate
    filters = check_int(filters, "filters", minimum=1)
    inputs = dlcore.Input(shape=input_shape)
    c1 = Conv2D(filters, 3, padding="same", activation="relu", name="down1")(inputs)
    c2 = Conv2D(2 * filters, 3, padding="same", activation="relu", name="down2")(
        MaxPool2D(2, name="pool1")(c1))
    u1 = Conv2DTranspose(filters, 2, strides=2, name="up1")(c2)
    x = concatenate([c1, u1], name="skip1")
    x = Conv2D(filters, 3, padding="same", activation="relu", name="up1_conv")(x)
    outputs = Conv2D(1, 1, activation="sigmoid", name="mask")(x)
    return dlcore.Model(inputs, outputs, backend=backend, seed=seed, name="unet_small")


MODELS = {"lenet5": lenet5, "mlp": mlp}


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):  # noqa: A002
    """Keras's ``keras.models.load_model``: the network in a Keras file (a ``.keras`` archive
    or a legacy ``.h5``) or in a dlcore model file, read as :func:`dlcore.load` reads it.

    ``compile=False`` returns it uncompiled (Keras's meaning: compile it yourself). Keras's
    ``custom_objects`` name Python code for custom layers, which dlcore never runs: only None
    is taken. Loading is always safe in dlcore (no code in a file is run), whatever
    ``safe_mode`` says."""
    from dlcore.io import load
    from dlcore.validation import check_bool
    _refuse_custom_objects(custom_objects)
    check_bool(safe_mode, "safe_mode")
    model = load(filepath)
    if not check_bool(compile, "compile") and isinstance(model, Model):
        model.loss = model.optimizer = None
        model.metrics = []
    return model


def model_from_json(json_string, custom_objects=None):
    """A :class:`dlcore.Sequential` from Keras's ``model.to_json()`` text (or dlcore's own
    :meth:`~dlcore.Sequential.to_json`), NHWC shapes turned into NCHW, weights freshly
    initialised (load them with ``load_weights``); a one-line ModelFileError names a layer
    dlcore does not import. No code in the text is ever run, so Keras's ``custom_objects``
    is taken as None only."""
    from dlcore.io.keras import model_from_json as from_json
    _refuse_custom_objects(custom_objects)
    return from_json(json_string)


def _refuse_custom_objects(custom_objects):
    if custom_objects:
        raise ValueError("custom_objects name Python code for custom Keras layers, which "
                         "dlcore never runs: leave it out (dlcore imports Keras's own layers)")


def save_model(model, filepath, overwrite=True, zipped=None):
    """Keras's ``keras.models.save_model``: ``model.save(filepath, overwrite, zipped)``, a
    Keras file (:meth:`dlcore.Model.save`)."""
    if not isinstance(model, Model):
        raise TypeError(f"save_model writes a dlcore.Sequential or dlcore.Model as a Keras "
                        f"file; got {type(model).__name__} (dlcore.save writes the others)")
    model.save(filepath, overwrite=overwrite, zipped=zipped)


def clone_model(model, input_tensors=None, clone_function=None, call_function=None,
                recursive=False):
    """Keras's ``keras.models.clone_model``: a new model of the same architecture (layers,
    names, frozen flags), uncompiled, with initial weights (the architecture's seed's, where
    Keras draws new ones: dlcore's initial weights are a function of the seed). Keras's
    arguments that rewrite the layers (``clone_function``, ``call_function``,
    ``input_tensors``) are taken as None only; ``recursive`` does not matter, a nested model
    being inlined. :meth:`dlcore.Model.clone` copies the weights and training state instead."""
    from dlcore.validation import check_bool
    if not isinstance(model, Model):
        raise TypeError(f"clone_model clones a dlcore.Sequential or dlcore.Model; got "
                        f"{type(model).__name__}")
    for name, value in (("input_tensors", input_tensors), ("clone_function", clone_function),
                        ("call_function", call_function)):
        if value is not None:
            raise ValueError(f"clone_model's {name} must be None: dlcore clones the layers as "
                             f"they are (build the changed model with its layers instead)")
    check_bool(recursive, "recursive")
    from dlcore.functional import keep_automatic_names
    config = model.get_config()
    config.pop("compile", None)
    return keep_automatic_names(model, type(model).from_config(config))
