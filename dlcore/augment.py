"""Data augmentation and noise injection (lecture "Convolutional neural networks" (2016)): the
layers :class:`ImageAugmentation` and :class:`GaussianNoise`, and the NumPy reference of the image
transformation. The implementation lives in :mod:`dlcore.layers.augmentation`."""
from dlcore.layers.augmentation import (GaussianNoise, ImageAugmentation, augment_images,
                                        augmentation_parameters)

__all__ = ["GaussianNoise", "ImageAugmentation", "augment_images", "augmentation_parameters"]
