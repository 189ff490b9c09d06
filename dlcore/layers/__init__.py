"""Layers of a network: each one a shape map with a forward and a backward pass.

=====================  ===============================================================
``Dense(units)``       y = activation(x @ kernel + bias), kernel (in, out); on sequences
                       (T, in) and maps (in, H, W) each step's or pixel's (as Keras's)
``Conv2D(filters, k)`` cross-correlation of NCHW images, kernel (F, C, k_h, k_w)
``MaxPool2D``,         max, average and L2 pooling (pool size and stride); Keras'
``AvgPool2D``,         ``MaxPooling2D`` and ``AveragePooling2D`` make the first two with
``L2Pool2D``           Keras' rule (a remainder no pool covers is dropped)
``L2FeaturePool(g)``   L2 pooling over features: groups of g channels, (C, H, W) -> (C/g, H, W)
``GlobalAvgPool2D``,   the mean or the largest value of each map, (n, C, H, W) -> (n, C)
``GlobalMaxPool2D``    (Keras' ``GlobalAveragePooling2D``, ``GlobalMaxPooling2D``)
``LocallyConnected2D`` a convolution without weight sharing: filters of its own per output
                       position, kernel (H', W', F, C, k_h, k_w) (not in Keras 3)
``Conv2DTranspose``    transposed convolution (U-Net up-sampling), kernel (C, F, k_h, k_w)
``UpSampling2D``       nearest-neighbour or bilinear up-sampling by (S_h, S_w)
``Flatten``            (n, C, H, W) -> (n, C*H*W)
``Reshape(shape)``     (n, *input_shape) -> (n, *shape), e.g. flat rows into (1, 28, 28)
``Cropping2D(c)``      cut rows and columns off the edges of maps (the U-Net's "copy and crop")
``ReLU``, ``Sigmoid``, activations (``Activation(name)`` for any of them, and for selu,
``Tanh``, ``Softmax``, softplus, softsign, relu6, leaky_relu; Dense and Conv2D also take
``ELU``                ``activation=``)
``LeakyReLU(slope)``   y = x for x > 0, else slope x (Keras' default slope 0.3)
``Dropout(rate)``      inverted dropout, the identity in evaluation (Keras's ``seed=``)
``Rescaling(scale)``   y = scale x + offset (Keras' first layer of image models)
``BatchNormalization`` each channel normalised over the batch, then scaled and shifted (in
                       :mod:`dlcore.layers.normalization`)
``LayerNormalization`` each sample normalised over its channels, then scaled and shifted
``Add``, ``add``,      merge a list of tensors of a functional model: sum, or join
``Concatenate``,       along an axis (channels by default); in :mod:`dlcore.layers.merge`
``concatenate``        (also ``Average``, ``Subtract``, ``Multiply``, ``Maximum``,
                       ``Minimum`` and their functions ``average``, ... as Keras's)
``Dot``, ``dot``       the dot product of two rows (their cosine similarity with
                       ``normalize=True``), (n, F), (n, F) -> (n, 1)
``Input(shape)``       a functional model's input, :func:`dlcore.Input` (Keras has it here too)
``GaussianNoise``,     noise injection and data augmentation (training only; in
``ImageAugmentation``  :mod:`dlcore.layers.augmentation`)
=====================  ===============================================================

``dense_as_conv(dense, input_shape)`` rewrites a Dense layer as the equivalent Conv2D
(lecture "Supervised learning": "the first fully connected layer can be seen as a conv.
layer").

Every layer's maths is written in NumPy in :mod:`dlcore.layers.reference` (the oracle) and as
kernel bodies for the ``cpu`` and ``cuda`` backends in :mod:`dlcore.layers.bodies` (the CPU's
own convolutions in :mod:`dlcore.layers.cpu_convolution`); :mod:`dlcore.layers.ops` runs one or
the other, as the backend can.
"""
from dlcore.layers.augmentation import GaussianNoise, ImageAugmentation
from dlcore.layers.base import Layer, WeightedLayer
from dlcore.layers.conv import Conv2D, dense_as_conv
from dlcore.layers.conv_transpose import Conv2DTranspose
from dlcore.layers.core import (
    ELU,
    Activation,
    Cropping2D,
    Dropout,
    Flatten,
    LeakyReLU,
    ReLU,
    Rescaling,
    Reshape,
    Sigmoid,
    Softmax,
    Tanh,
)
from dlcore.layers.dense import Dense
from dlcore.layers.locally_connected import LocallyConnected2D
from dlcore.layers.merge import (
    Add,
    Average,
    Concatenate,
    Dot,
    Maximum,
    Minimum,
    Multiply,
    Subtract,
    add,
    average,
    concatenate,
    dot,
    maximum,
    minimum,
    multiply,
    subtract,
)
from dlcore.layers.normalization import BatchNormalization, LayerNormalization
from dlcore.layers.pooling import (
    AveragePooling2D,
    AvgPool2D,
    GlobalAveragePooling2D,
    GlobalAvgPool2D,
    GlobalMaxPool2D,
    GlobalMaxPooling2D,
    L2FeaturePool,
    L2Pool2D,
    MaxPool2D,
    MaxPooling2D,
)
from dlcore.layers.upsampling import UpSampling2D

__all__ = ["Activation", "Add", "AvgPool2D", "BatchNormalization", "Concatenate", "Conv2D",
           "Conv2DTranspose", "Cropping2D", "Dense", "Dropout", "ELU", "Flatten", "GaussianNoise",
           "GlobalAvgPool2D", "GlobalMaxPool2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D",
           "ImageAugmentation", "L2FeaturePool", "L2Pool2D", "Layer", "LayerNormalization",
           "LeakyReLU", "LocallyConnected2D", "MaxPool2D", "ReLU", "Rescaling", "Reshape",
           "Sigmoid", "Softmax", "Tanh", "UpSampling2D", "WeightedLayer", "AveragePooling2D",
           "Input", "MaxPooling2D", "add", "concatenate", "dense_as_conv", "Average",
           "Subtract", "Multiply", "Maximum", "Minimum", "average", "subtract", "multiply",
           "maximum", "minimum", "Dot", "dot"]

# Keras also offers Input among its layers (``from keras.layers import Input, Dense``, lecture
# "Deep learning I"); imported last, as the functional module builds on the layers above.
from dlcore.functional import Input  # noqa: E402
