"""``ModelFileError``: the one error a model file that cannot be loaded gives."""


class ModelFileError(ValueError):
    """A file that cannot be loaded as a dlcore model: missing, not HDF5, truncated, not a dlcore
    model, from a newer dlcore, damaged, hostile (huge declared shapes, links out of the file,
    class names that are not registered), or with contents the model class rejects.

    The message is one line, ``<file>: <problem>; <what to do>``.

    Attributes
    ----------
    path : str   the file concerned
    """

    def __init__(self, path: str, message: str):
        super().__init__(" ".join(str(message).split("\n")))
        self.path = path
