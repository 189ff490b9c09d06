"""Where Numba keeps dlcore's compiled kernels: a per-user folder, never the installed package.

Numba's ``cache=True`` writes its ``.nbi``/``.nbc`` files next to the source, in
``site-packages/dlcore/.../__pycache__``. pip does not know those files: a later
``pip install -e .`` into the same environment removes the package but not them, and the
half-empty ``site-packages/dlcore`` left behind shadows the editable package. A read-only
installation (system-wide, a container image) cannot be written at all.

So the functions of dlcore's own modules (``dlcore`` and ``dlcore.*``) are cached in::

    $DLCORE_CACHE, else $XDG_CACHE_HOME/dlcore/numba, else ~/.cache/dlcore/numba

in the sub-folder ``<dlcore version>/<source folder>_<digest of its absolute path>``, so two
versions or two checkouts never load each other's machine code (Numba's own index adds the
Python and Numba versions and a digest of each source file). The functions of every other
module, yours included, are cached where Numba's own settings (``NUMBA_CACHE_DIR``) say.

When that folder cannot be written (or there is none: no home folder, as in a container started
with ``--user <number>``), this run caches its kernels in a private temporary folder, removed at
exit, and one line says so and how to fix it: the kernels compile again next time.

Numba checks a cached kernel against its own source file only, but a kernel carries the code of
every function it calls, compiled in: after a change to ``dlcore/layers/bodies.py`` the kernels
of ``dlcore/layers/cpu_convolution.py`` that call its bodies would load the old code (an
editable install after ``git pull``, a developer's edit: found when a tanh network kept running
the old tanh). So a dlcore kernel's cache entry is also keyed on a digest of every Python file of
the ``dlcore`` package (:func:`package_source_digest`): any change to dlcore compiles every kernel
again once.

Numba names a kernel's code files by number, in the order its signatures were first saved,
and two processes that compile one kernel at the same moment (pytest's workers, a
``GridSearchCV(n_jobs=2)``, two students' runs on a fresh install) can both take number 1 for
two different signatures: the index then names, for one signature, a file holding the other's
machine code, which every later process loads and calls on arguments of the wrong types (a
crash without a traceback, or wrong numbers; Numba's own issue 4807). dlcore's entries are
written by :class:`KeyedIndexDataCacheFile` instead: each code file is named by a digest of its
entry's key and of the package's source (a run started before an edit never replaces the code
of a run started after it) and holds them, written whole before the index names it, and a file
whose key or source is not the one looked up is never loaded (the kernel compiles again). At
worst, two processes saving at once leave one entry out of the index: compiled again next time,
never wrong. An entry is also keyed on the Numba settings that change machine code but not
Numba's own key (:data:`CODE_SETTINGS`: ``NUMBA_BOUNDSCHECK``, ``NUMBA_OPT``, ...), so that a
run with bounds checks on compiles its kernels with the checks, once, beside the others.
"""
import atexit
import functools
import hashlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from numba.core import caching
from numba.core import types as numba_types

from dlcore._version import __version__

# CacheImpl was called _CacheImpl before Numba 0.61.
_CACHE_IMPL = getattr(caching, "CacheImpl", None) or caching._CacheImpl
_unwritable_reported = []


def kernel_cache_folder():
    """The folder holding this dlcore version's compiled kernels (it may not exist yet).

    ``$DLCORE_CACHE``, else ``$XDG_CACHE_HOME/dlcore/numba``, else ``~/.cache/dlcore/numba``,
    followed by the dlcore version. A relative ``$DLCORE_CACHE`` is taken from the current
    folder; a relative ``$XDG_CACHE_HOME`` is ignored, as the XDG specification asks.

    Raises
    ------
    NoHomeFolderError
        (an OSError, as an unwritable folder's) where neither variable names a folder and the
        user has no home folder: ``$HOME`` unset and no entry in the password database, as a
        container started with ``--user <number>`` runs.
    """
    chosen = os.environ.get("DLCORE_CACHE")
    if chosen:
        try:
            expanded = Path(chosen).expanduser()
        except RuntimeError as error:   # "~/kernels" without a home folder, "~nobody-here"
            raise NoHomeFolderError(f"DLCORE_CACHE={chosen} names a home folder that this "
                                    "user does not have") from error
        return Path(os.path.abspath(expanded)) / __version__
    cache_home = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(cache_home):
        cache_home = home_folder() / ".cache"
    return Path(cache_home) / "dlcore" / "numba" / __version__


class NoHomeFolderError(OSError):
    """The user has no home folder to keep a per-user cache in (see :func:`home_folder`)."""


def home_folder():
    """``Path.home()``, or :class:`NoHomeFolderError` where there is none.

    Python's RuntimeError ("Could not determine home directory.") escaped every caller that
    expects the OSError of a folder it cannot use: ``import dlcore`` failed on an idle machine
    (the spin's timing is kept in the cache folder), and so did ``dlcore doctor``.
    """
    try:
        return Path.home()
    except RuntimeError as error:
        raise NoHomeFolderError(
            "no home folder: HOME is unset and this user has no entry in the password "
            "database") from error


@functools.cache
def _temporary_folder():
    """A folder only this process can write, removed when it exits: a stable folder in a shared
    temporary directory could hold another user's machine code."""
    folder = tempfile.mkdtemp(prefix="dlcore-kernels-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


#: The folder of the ``dlcore`` package, whose Python files every kernel's cache entry depends on.
PACKAGE_FOLDER = Path(__file__).resolve().parent.parent


def source_digest(folder):
    """A digest of the names and contents of the Python files under ``folder`` (recursively).
    Files are read again only when their size or modification time changed."""
    folder = Path(folder)
    entries = []
    for path in sorted(folder.rglob("*.py")):
        stat = path.stat()
        entries.append((path.relative_to(folder).as_posix(), stat.st_mtime_ns, stat.st_size))
    return _digest_of_files(os.fspath(folder), tuple(entries))


@functools.cache
def _digest_of_files(folder, entries):
    digest = hashlib.sha256()
    for name, modified, size in entries:
        try:
            content = (Path(folder) / name).read_bytes()
        except OSError:   # unreadable: its size and time stand for it, rather than no import
            content = f"{modified} {size}".encode()
        digest.update(name.encode() + b"\0" + content + b"\0")
    return digest.hexdigest()


@functools.cache
def package_source_digest():
    """:func:`source_digest` of :data:`PACKAGE_FOLDER`, once per process (Numba asks for every
    cached function)."""
    return source_digest(PACKAGE_FOLDER)


def _is_dlcore_function(py_func):
    module = getattr(py_func, "__module__", None) or ""
    return module == "dlcore" or module.startswith("dlcore.")


class DlcoreCacheLocator(caching._SourceFileBackedLocatorMixin, caching._CacheLocator):
    """Numba cache locator for dlcore's own functions: the folder of :func:`kernel_cache_folder`,
    else a private temporary folder; returns no locator for any other function."""

    def __init__(self, py_func, py_file, folder):
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        self._cache_path = os.path.join(folder, self.get_suitable_cache_subpath(py_file))

    def get_cache_path(self):
        return self._cache_path

    def get_source_stamp(self):
        """Numba's stamp of the function's own file, and the digest of the whole package (see
        the module docstring)."""
        return super().get_source_stamp(), package_source_digest()

    @classmethod
    def from_function(cls, py_func, py_file):
        if not (_is_dlcore_function(py_func) and os.path.exists(py_file)):
            return None
        try:
            return cls._ready(py_func, py_file, os.fspath(kernel_cache_folder()))
        except OSError as error:
            _report_unwritable(error)
        try:
            return cls._ready(py_func, py_file, _temporary_folder())
        except OSError:
            return None  # not even a temporary folder: Numba's own rules apply

    @classmethod
    def _ready(cls, py_func, py_file, folder):
        """A locator for ``folder``, which exists and is writable (else OSError)."""
        locator = cls(py_func, py_file, folder)
        locator.ensure_cache_path()
        _DLCORE_CACHE_PATHS.add(os.path.normpath(locator.get_cache_path()))
        return locator


#: Numba's own index-and-data cache file (before :func:`install` put dlcore's in its place).
_NUMBAS_CACHE_FILE = getattr(caching.IndexDataCacheFile, "numbas_class", caching.IndexDataCacheFile)


class KeyedIndexDataCacheFile(_NUMBAS_CACHE_FILE):
    """Numba's index and code files of one function's cache, safe for processes that save
    entries of it at the same moment (see the module docstring), in the folders of
    :class:`DlcoreCacheLocator`; anywhere else (your own functions) exactly Numba's.

    A code file is named ``<function>.<digest of its key and the package's digest>.nbc`` and
    holds ``((key, package's digest), data)``.
    """

    numbas_class = _NUMBAS_CACHE_FILE

    def __new__(cls, cache_path, filename_base, source_stamp):
        if os.path.normpath(cache_path) not in _DLCORE_CACHE_PATHS:
            # not one of dlcore's folders: Numba's own class, untouched
            return _NUMBAS_CACHE_FILE(cache_path, filename_base, source_stamp)
        return super().__new__(cls)

    def __init__(self, cache_path, filename_base, source_stamp):
        super().__init__(cache_path, filename_base, source_stamp)
        self._filename_base = filename_base
        # the package's content digest that DlcoreCacheLocator's stamp ends with, not Numba's
        # part (the file's time): a touch or a git checkout of unchanged files would otherwise
        # leave a whole set of code files behind each time
        self._source_digest = (source_stamp[-1] if isinstance(source_stamp, tuple)
                               else source_stamp)

    def save(self, key, data):
        key = with_code_settings(key)
        data_name = self.keyed_data_name(key)
        # the code first: an index never names a file that is not whole yet
        self._save_data(data_name, ((key, self._source_digest), data))
        overloads = self._load_index()
        if overloads.get(key) != data_name:
            overloads[key] = data_name
            self._save_index(overloads)

    def load(self, key):
        key = with_code_settings(key)
        data_name = self._load_index().get(key)
        if data_name is None:
            return None
        try:
            stored = self._load_data(data_name)
        except OSError:   # removed since the index was read
            return None
        if not (isinstance(stored, tuple) and len(stored) == 2
                and stored[0] == (key, self._source_digest)):
            # another entry's code, or another source's (an older layout, a digest's
            # collision): compiled again, never run
            return None
        return stored[1]

    def keyed_data_name(self, key):
        """The code file's name of the entry ``key`` (Numba's signature, target and digests
        of the function's code) for this source of the package: the same in every process,
        different for every key and source. Two runs of two sources of dlcore (one started
        before an edit or a ``git pull``, one after) save a kernel of one key with different
        machine code: one file for both could leave the newer index naming the older code."""
        text = stable_text((key, self._source_digest))
        digest = hashlib.sha256(text.encode()).hexdigest()[:24]
        return f"{self._filename_base}.{digest}.nbc"


#: Numba's settings (``numba.core.config``, from ``NUMBA_*`` variables) that change the machine
#: code of a kernel but not Numba's key of its cache entry (the signature, the CPU, the code).
CODE_SETTINGS = ("BOUNDSCHECK", "OPT", "DEBUGINFO_DEFAULT", "LOOP_VECTORIZE", "SLP_VECTORIZE",
                 "ENABLE_AVX")


def with_code_settings(key):
    """Numba's key of a cache entry, with the values of :data:`CODE_SETTINGS` in this process.

    Numba's key leaves them out: ``NUMBA_BOUNDSCHECK=1``, set to find an index out of range in a
    kernel, loaded the kernels compiled without the checks (no IndexError, the wrong memory
    read as before), and ``NUMBA_OPT=0`` the optimised ones. An entry per setting instead, side
    by side in one index: going back to the default loads the default's kernels again.
    """
    from numba.core import config
    return key, tuple((name, repr(getattr(config, name, None))) for name in CODE_SETTINGS)


def stable_text(value):
    """``repr(value)`` with the class of every Numba type in it, the same in every process.

    Numba types of different classes may print alike (``Tuple`` and ``StarArgTuple``, which
    a kernel taking ``*args`` is given from Python and from another kernel): a code file
    named by ``repr`` alone would be shared by two signatures, each save dropping the other's.
    """
    if isinstance(value, numba_types.Type):
        kind = type(value)
        parts = f"{{{stable_text(value.key)}}}" if isinstance(value.key, tuple) else ""
        return f"{kind.__module__}.{kind.__qualname__}:{value!r}{parts}"
    if isinstance(value, tuple):
        return "(" + ", ".join(stable_text(part) for part in value) + ",)"
    if isinstance(value, list):
        return "[" + ", ".join(stable_text(part) for part in value) + "]"
    return repr(value)


#: The cache folders :class:`DlcoreCacheLocator` handed to Numba (normalised paths).
_DLCORE_CACHE_PATHS = set()


def write_error():
    """The error that kept this process from writing the kernel cache folder (its kernels
    then compile into a temporary folder, again in every run), or None: known once dlcore's
    first cached function is defined, as ``import dlcore`` does."""
    return _unwritable_reported[0] if _unwritable_reported else None


def _report_unwritable(error):
    """Say once per run that the kernel cache cannot be written, and what to do."""
    if not _unwritable_reported:
        _unwritable_reported.append(error)
        print(f"dlcore: cannot write the kernel cache ({error}); kernels will compile again in "
              "every run: set DLCORE_CACHE to a writable folder.", file=sys.stderr)


def _cpu_kernel_folder():
    """The cache folder of ``dlcore/backend/cpu.py``'s kernels."""
    cpu_module = Path(__file__).parent / "cpu.py"  # unresolved, as Numba sees it
    return kernel_cache_folder() / DlcoreCacheLocator.get_suitable_cache_subpath(
        os.fspath(cpu_module))


def _compiled_stamp():
    return _cpu_kernel_folder() / f"compiled-for-{package_source_digest()[:16]}"


def kernels_compiled_before():
    """Whether this dlcore (version, checkout and source: :func:`package_source_digest`) has
    compiled its kernels into the cache folder before (:func:`remember_compiling` left its
    stamp there). A heuristic for the "compiling kernels" notice, never for correctness (Numba
    checks every entry): an edit of dlcore, or a ``git pull`` of an editable install, compiles
    every kernel again, and the notice says so again."""
    try:
        return _compiled_stamp().exists()
    except OSError:   # no home folder, unreadable cache: say nothing
        return True


def checkout_kernel_folders():
    """The cache folders of this checkout's dlcore functions: one per folder of the package
    that holds Python files, named as Numba names them (from the unresolved path it sees)."""
    package = Path(__file__).parent.parent
    return sorted({kernel_cache_folder() / DlcoreCacheLocator.get_suitable_cache_subpath(
        os.fspath(path)) for path in package.rglob("*.py")})


#: When this process started using the cache (its first import of dlcore's backend).
PROCESS_STARTED = time.time()


def remove_compiled_kernels(written_before=None):
    """Remove the compiled kernels (Numba's .nbi index and .nbc code files) of this checkout's
    cache folders, nothing else. After a change of source every kernel compiles again, and
    Numba rewrites an index whose source changed but leaves the code files it named: each
    edit, ``git pull`` or upgrade of an editable install would otherwise add a whole set of
    kernels (~10 MB) to the folder, for good.

    ``written_before`` (a ``time.time()``): only files last written before it go, so that the
    kernels this process (or another one running beside it) compiled for the new source stay.
    """
    for folder in checkout_kernel_folders():
        for pattern in ("*.nbi", "*.nbc"):
            for path in folder.glob(pattern):
                try:
                    if written_before is None or path.stat().st_mtime < written_before:
                        path.unlink(missing_ok=True)
                except FileNotFoundError:  # removed by a process beside this one
                    pass


def remember_compiling():
    """Leave the stamp that :func:`kernels_compiled_before` looks for: the notice is said once
    per source. Where the stamp of an earlier source is found, that source's kernels are
    removed with it (:func:`remove_compiled_kernels`): none of them can load again. Nothing
    happens where the cache folder cannot be written (the kernels compile in every run then,
    and a line says so)."""
    from dlcore.io.atomic import atomic_open
    try:
        stamp = _compiled_stamp()
        stamp.parent.mkdir(parents=True, exist_ok=True)
        earlier = [path for path in stamp.parent.glob("compiled-for-*") if path != stamp]
        if earlier:
            # kernels compiled earlier in this process (the kernels' self-test, say) stay
            remove_compiled_kernels(written_before=PROCESS_STARTED)
        for path in earlier:
            path.unlink(missing_ok=True)
        with atomic_open(stamp) as stream:
            stream.write("the kernels of this dlcore source have been compiled here\n")
    except OSError:
        pass


def install():
    """Put :class:`DlcoreCacheLocator` first in Numba's list of locators (once). It must run
    before the first dlcore function is decorated with ``cache=True``: Numba picks a function's
    cache folder when it is decorated. Numba's caches then write their entries through
    :class:`KeyedIndexDataCacheFile` (Numba's own behaviour outside dlcore's folders)."""
    if DlcoreCacheLocator not in _CACHE_IMPL._locator_classes:
        _CACHE_IMPL._locator_classes.insert(0, DlcoreCacheLocator)
    # Numba's Cache builds its index-and-data file from this module-level name
    caching.IndexDataCacheFile = KeyedIndexDataCacheFile


install()
