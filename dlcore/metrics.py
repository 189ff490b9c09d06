"""Keras's accuracy metrics as objects, as Keras's guides write them in ``compile``::

    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=[dlcore.metrics.SparseCategoricalAccuracy()])

Each stands for the name that ``compile`` takes as a string and that the logs report it by
(``"sparse_categorical_accuracy"``, ``val_sparse_categorical_accuracy``): the fraction of samples
whose predicted class (the argmax of the outputs, the positive class above 0.5 for one sigmoid
output) is their label, or, for :class:`BinaryAccuracy`, the fraction of outputs right against
the 0.5 threshold. dlcore reports accuracies only; Keras's other metrics (AUC, precision, mean
absolute error, ...), and ``keras.metrics.Accuracy``, which counts predictions *equal* to their
targets, are not here. Keras's own metric objects are taken by ``compile`` too.
"""

__all__ = ["BinaryAccuracy", "CategoricalAccuracy", "Metric", "SparseCategoricalAccuracy"]


class Metric:
    """An accuracy that ``compile`` reports under :attr:`name`; ``name`` and ``dtype`` are
    Keras's arguments, taken only with the values dlcore reports (its own name, float32)."""

    #: the name compile takes as a string, and the logs' key
    keras_name = None

    def __init__(self, name=None, dtype=None):
        if name not in (None, self.keras_name):
            raise ValueError(f"{type(self).__name__}(name={name!r}): dlcore reports this "
                             f"accuracy as {self.keras_name!r} (the logs' key "
                             f"{self.keras_name}, val_{self.keras_name}); leave name out")
        if dtype not in (None, "float32"):
            raise ValueError(f"{type(self).__name__}(dtype={dtype!r}): dlcore computes its "
                             f"metrics in float32; leave dtype out")
        self.name = self.keras_name

    def __repr__(self):
        return f"{type(self).__name__}()"


class CategoricalAccuracy(Metric):
    """The argmax of the outputs against one-hot (or probability) target rows."""

    keras_name = "categorical_accuracy"


class SparseCategoricalAccuracy(Metric):
    """The argmax of the outputs against integer labels."""

    keras_name = "sparse_categorical_accuracy"


class BinaryAccuracy(Metric):
    """Each output right or wrong against ``threshold`` 0.5, averaged (Keras's
    ``BinaryAccuracy``; another threshold is refused: dlcore's is 0.5)."""

    keras_name = "binary_accuracy"

    def __init__(self, name=None, dtype=None, threshold=0.5):
        super().__init__(name, dtype)
        if threshold != 0.5:
            raise ValueError(f"BinaryAccuracy(threshold={threshold!r}): dlcore's binary "
                             f"accuracy thresholds at 0.5; leave threshold out")
        self.threshold = 0.5
