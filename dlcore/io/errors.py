"""``ModelFileError``: the one error a model file that cannot be loaded gives."""


class ModelFileError(ValueError):
    """A file that cannot be loaded as a dlcore model: missing, not HDF5, truncated, not a dlcore
    model, from a newer dlcore, damaged, hostile (huge declared shapes, links out of the file,
    class names that are not registered), or with contents the model class rejects.

    The message is one line, ``<file>: <problem>; <what to do>``.

    What stops a load or a save with a sound file, for want of room or permission on this
    machine, is no ModelFileError but an ``OSError``, as Python's own errors for those causes
    are: :class:`~dlcore.io.NoRoomError` (no room to write a file: a full disk or quota,
    ``ulimit -f``) and :class:`~dlcore.io.TemporaryFolderError` (no room, or no permission, in
    the temporary folder to unpack a ``.keras`` archive's weights). Their fix is the machine's
    (free space, set ``TMPDIR``), where a ModelFileError's is the file's (save it again, give
    another file): a program that sets aside the hand-ins that ``except ModelFileError``
    catches must not set aside an intact one because the disk was full. Catch
    ``(ModelFileError, OSError)`` for both.

    Attributes
    ----------
    path : str   the file concerned
    """

    def __init__(self, path: str, message: str):
        super().__init__(" ".join(str(message).split("\n")))
        self.path = path
