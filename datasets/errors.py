"""The exceptions of :mod:`dlcore.datasets`, each a subclass of the built-in one a caller
would already catch."""


class DatasetNotFoundError(FileNotFoundError):
    """The files of a data set are in none of the searched directories and could not be
    downloaded. The message lists the missing files, the directories searched, what each
    mirror answered, and where to put the files by hand."""


class DownloadError(OSError):
    """Every mirror failed to deliver a file (network error, HTTP error, cut transfer).
    The message lists each URL tried and its failure."""


class ChecksumError(ValueError):
    """A file's sha256 is not the pinned one: a corrupted download or a damaged bundled
    file. The message names the file, the expected and the actual sha256."""
