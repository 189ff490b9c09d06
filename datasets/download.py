"""Download files from a list of mirrors, verify their sha256, and keep only good ones.

Each file is streamed into a hidden temporary file in the target directory
(:mod:`dlcore.io.atomic`) while its sha256 is computed; the partial file is renamed to
``<name>`` only when the transfer is complete and the digest equals the pinned one, and
deleted otherwise. A failed, interrupted or corrupted download therefore never leaves a file
that a later run could mistake for data.

Mirrors are tried in order for each file; the first that delivers a verified file wins.
:func:`download_files` takes the ``{file name: sha256}`` table as an argument, so tests and
private mirrors can use their own files.
"""
import hashlib
import http.client
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from dlcore.datasets._atomic import atomic_writer
from dlcore.datasets.errors import ChecksumError, DownloadError

CHUNK_BYTES = 1 << 16
DEFAULT_TIMEOUT_S = 30.0
USER_AGENT = "dlcore-datasets (https://pypi.org/project/dlcore/)"


def sha256_of_file(path):
    """The hex sha256 of a file, read in chunks (the 47 MB MNIST images never sit in memory
    twice)."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def human_size(n_bytes):
    """'9.9 MB', '28.9 kB', '60 B' (decimal units, as download sizes are quoted)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.1f} {unit}"
    return f"{n_bytes} B"


class ProgressBar:
    """A one-line progress bar on stderr for one download.

    On a terminal the line is redrawn in place (at most ten times a second); elsewhere
    (a log, a CI job, pytest's capture) only the final line is written, so logs stay short.
    A disabled bar writes nothing.

    Parameters
    ----------
    label : str         the file name shown at the start of the line
    total : int or None the expected size in bytes (None when the server did not say)
    enabled : bool      False for silence (``progress=False``)
    stream : file       where to write; default ``sys.stderr`` at construction time
    """

    WIDTH = 30

    def __init__(self, label, total, enabled=True, stream=None):
        self.label, self.total, self.enabled = label, total, enabled
        self.stream = sys.stderr if stream is None else stream
        self.received = 0
        self.last_drawn = 0.0
        self.interactive = enabled and getattr(self.stream, "isatty", lambda: False)()

    def line(self):
        if not self.total:
            return f"{self.label}  {human_size(self.received)}"
        fraction = min(self.received / self.total, 1.0)
        filled = int(round(fraction * self.WIDTH))
        bar = "#" * filled + "." * (self.WIDTH - filled)
        return (f"{self.label}  [{bar}] {fraction:4.0%}  "
                f"{human_size(self.received)} / {human_size(self.total)}")

    def update(self, n_bytes):
        self.received += n_bytes
        now = time.monotonic()
        if self.interactive and now - self.last_drawn >= 0.1:
            self.last_drawn = now
            self.stream.write("\r" + self.line())
            self.stream.flush()

    def close(self, outcome="done"):
        """End the line with ``outcome`` ('done', 'failed: ...')."""
        if not self.enabled:
            return
        prefix = "\r" if self.interactive else ""
        self.stream.write(f"{prefix}{self.line()}  {outcome}\n")
        self.stream.flush()


def open_url(url, timeout):
    """Open ``url`` for reading (the one place the network is touched: tests replace it to
    make sure no test ever reaches a real mirror)."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    return urllib.request.urlopen(request, timeout=timeout)


def mirror_url(mirror, name):
    """``mirror`` (with or without its final slash) joined with the file name."""
    return mirror.rstrip("/") + "/" + name


def describe_failure(error):
    """One short phrase for why a URL failed."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        return f"{error.reason}"
    if isinstance(error, http.client.IncompleteRead):
        return (f"connection closed after {len(error.partial):,} bytes, "
                f"{error.expected:,} more were expected")
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _content_length(response):
    value = response.headers.get("Content-Length")
    return int(value) if value is not None and value.isdigit() else None


def fetch(url, target, expected_sha256, progress=True, timeout=DEFAULT_TIMEOUT_S):
    """Download one URL to ``target`` if, and only if, its sha256 is ``expected_sha256``.

    Raises
    ------
    ChecksumError
        The transfer completed but the digest differs (nothing is kept).
    OSError, http.client.HTTPException
        Network and HTTP failures, a transfer cut short (nothing is kept).
    """
    target = Path(target)
    with open_url(url, timeout) as response, atomic_writer(target) as file:
        total = _content_length(response)
        bar = ProgressBar(target.name, total, enabled=progress)
        digest = hashlib.sha256()
        try:
            for chunk in iter(lambda: response.read(CHUNK_BYTES), b""):
                file.write(chunk)
                digest.update(chunk)
                bar.update(len(chunk))
            if total is not None and bar.received != total:
                raise http.client.IncompleteRead(b"\0" * bar.received, total - bar.received)
        except BaseException:
            bar.close("failed")
            raise
        actual = digest.hexdigest()
        if actual != expected_sha256:
            bar.close("failed: wrong sha256")
            raise ChecksumError(
                f"{target.name}: the download from {url} is corrupted: sha256 {actual}, "
                f"expected {expected_sha256} ({bar.received:,} bytes received); "
                "it was not kept")
        bar.close()


def download_file(name, directory, mirrors, sha256, progress=True,
                  timeout=DEFAULT_TIMEOUT_S):
    """Fetch ``name`` into ``directory`` from the first mirror that delivers a verified copy.

    Returns
    -------
    pathlib.Path
        ``directory / name``.

    Raises
    ------
    ChecksumError
        When no mirror delivered a good copy and at least one delivered a corrupted one.
    DownloadError
        When every mirror failed to deliver the file at all; the message lists each URL and
        why it failed.
    """
    target = Path(directory) / name
    failures, corrupted = [], []
    for mirror in mirrors:
        url = mirror_url(mirror, name)
        try:
            fetch(url, target, sha256, progress=progress, timeout=timeout)
            return target
        except ChecksumError as error:
            corrupted.append(error)
            failures.append(f"{url}: wrong sha256")
        except (OSError, http.client.HTTPException, ValueError) as error:
            # ValueError: urllib's answer to a malformed mirror URL.
            failures.append(f"{url}: {describe_failure(error)}")
    if corrupted:
        raise corrupted[0]
    raise DownloadError(f"could not download {name}: " + "; ".join(failures))


def download_files(names, directory, mirrors, checksums, progress=True,
                   timeout=DEFAULT_TIMEOUT_S):
    """Download files from mirrors into a directory, each verified by its sha256.

    Parameters
    ----------
    names : iterable of str
        File names, appended to each mirror URL (``mirror + name``).
    directory : str or os.PathLike
        Where the files go; created if missing.
    mirrors : sequence of str
        Base URLs tried in order, e.g. ``["https://ossci-datasets.s3.amazonaws.com/mnist/"]``
        (``http://``, ``https://`` and ``file://`` all work).
    checksums : mapping of str to str
        ``{file name: hex sha256}``; every name must have an entry: nothing is downloaded
        unverified.
    progress : bool
        Show a one-line progress bar per file on stderr.
    timeout : float
        Seconds without an answer before a mirror counts as failed.

    Returns
    -------
    list of pathlib.Path
        The downloaded files, in the order of ``names``.

    Raises
    ------
    ValueError
        No mirrors, or a name without a checksum.
    ChecksumError, DownloadError
        As :func:`download_file`, for the first file that could not be fetched (the files
        before it are kept: they are verified).
    """
    names = list(names)
    mirrors = [mirrors] if isinstance(mirrors, str) else list(mirrors)
    if not mirrors:
        raise ValueError("download_files: mirrors is empty; give at least one base URL")
    unpinned = [name for name in names if name not in checksums]
    if unpinned:
        raise ValueError(f"download_files: no sha256 for {', '.join(unpinned)} in checksums; "
                         "every file is verified before it is kept")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return [download_file(name, directory, mirrors, checksums[name], progress, timeout)
            for name in names]
