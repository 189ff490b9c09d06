"""Numba's disk cache of dlcore's kernels: a per-user folder keyed by version and checkout,
never the installed package (whose stray .nbi/.nbc files break a later pip install -e)."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dlcore.backend import cache, cpu

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_FOLDERS = [ROOT / "dlcore", ROOT / "cli", ROOT / "datasets"]

# Compiles (or loads) one small cached kernel of dlcore/layers/cpu_convolution.py: quick.
RUN_A_KERNEL = """
from dlcore.layers.cpu_convolution import _wide_offset
print(_wide_offset(5, 3, 3, 10, 10))
"""


def numba_cache_files(folders):
    """{path: (size, mtime_ns)} of every .nbi/.nbc file under ``folders``."""
    return {path: (path.stat().st_size, path.stat().st_mtime_ns)
            for folder in folders for pattern in ("*.nbi", "*.nbc")
            for path in Path(folder).rglob(pattern)}


def run_a_kernel(tmp_path, dlcore_cache):
    (tmp_path / "tmp").mkdir()
    environment = {**os.environ, "DLCORE_CACHE": str(dlcore_cache), "TMPDIR": str(tmp_path / "tmp")}
    environment.pop("NUMBA_CACHE_DIR", None)
    return subprocess.run([sys.executable, "-c", RUN_A_KERNEL], cwd=tmp_path, env=environment,
                          capture_output=True, text=True, timeout=600, check=False)


def dlcore_cache_folder(py_file):
    """The cache folder of a function of dlcore defined in the file ``py_file``."""
    def kernel():
        pass
    kernel.__module__ = "dlcore.backend.example"
    py_file.parent.mkdir(parents=True, exist_ok=True)
    py_file.write_text("def kernel():\n    pass\n")
    return Path(cache.DlcoreCacheLocator.from_function(kernel, str(py_file)).get_cache_path())


def test_kernels_are_cached_under_dlcore_cache_and_never_in_the_package(tmp_path):
    before = numba_cache_files(PACKAGE_FOLDERS)
    completed = run_a_kernel(tmp_path, tmp_path / "kernels")
    assert completed.returncode == 0, completed.stderr[-3000:]
    written = numba_cache_files([tmp_path / "kernels" / cache.__version__])
    assert {path.suffix for path in written if "_wide_offset" in path.name} == {".nbi", ".nbc"}
    assert numba_cache_files(PACKAGE_FOLDERS) == before
    # named by the digest of their entry's key, not numbered (a race of two processes)
    assert all(re.search(r"\.[0-9a-f]{24}\.nbc$", path.name)
               for path in written if path.suffix == ".nbc"), written


def test_an_unwritable_cache_folder_falls_back_to_a_private_temporary_one(tmp_path):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    before = numba_cache_files(PACKAGE_FOLDERS)
    completed = run_a_kernel(tmp_path, not_a_folder / "kernels")
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stderr.count("dlcore: cannot write the kernel cache") == 1, completed.stderr
    assert "set DLCORE_CACHE to a writable folder" in completed.stderr
    assert not [*(tmp_path / "tmp").iterdir()], "the temporary kernel folder was left behind"
    assert numba_cache_files(PACKAGE_FOLDERS) == before


def test_the_cache_folder_is_dlcore_cache_else_xdg_cache_home_else_home(monkeypatch, tmp_path):
    monkeypatch.setenv("DLCORE_CACHE", str(tmp_path / "chosen"))
    assert cache.kernel_cache_folder() == tmp_path / "chosen" / cache.__version__
    monkeypatch.delenv("DLCORE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.kernel_cache_folder() == tmp_path / "xdg" / "dlcore" / "numba" / cache.__version__
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.kernel_cache_folder() == (tmp_path / "home" / ".cache" / "dlcore" / "numba"
                                           / cache.__version__)


def test_a_cache_folder_under_a_missing_home_falls_back_as_an_unwritable_one(
        monkeypatch, tmp_path):
    # DLCORE_CACHE="~/kernels" for a user without a home folder (a container's --user):
    # Path.expanduser's RuntimeError, as Path.home's, is the OSError of a folder that cannot
    # be used, which the locator, the doctor and the pause's timing catch
    from test_backend_threads import no_home_folder
    no_home_folder(monkeypatch)
    monkeypatch.setenv("DLCORE_CACHE", "~/kernels")
    with pytest.raises(OSError, match="DLCORE_CACHE=~/kernels names a home folder"):
        cache.kernel_cache_folder()
    monkeypatch.setattr(cache, "_unwritable_reported", [])
    folder = dlcore_cache_folder(tmp_path / "dlcore" / "backend" / "example.py")
    assert folder.is_relative_to(cache._temporary_folder())


def test_a_relative_cache_folder_is_taken_from_where_dlcore_starts(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DLCORE_CACHE", "kernels")
    assert cache.kernel_cache_folder() == tmp_path / "kernels" / cache.__version__
    monkeypatch.delenv("DLCORE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", "relative")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.kernel_cache_folder().is_relative_to(tmp_path / "home" / ".cache")


def test_two_versions_or_two_checkouts_never_share_a_cache_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("DLCORE_CACHE", str(tmp_path / "kernels"))
    folder = {}
    for version in ("0.1.0", "0.2.0"):
        monkeypatch.setattr(cache, "__version__", version)
        for checkout in ("one", "two"):
            folder[version, checkout] = dlcore_cache_folder(
                tmp_path / checkout / "dlcore" / "backend" / "example.py")
    assert len(set(folder.values())) == 4, folder
    assert all(path.is_relative_to(tmp_path / "kernels" / version)
               for (version, _), path in folder.items())


def test_functions_outside_dlcore_keep_numbas_own_cache_rules(tmp_path):
    def users_kernel():
        pass
    source = tmp_path / "mine.py"
    source.write_text("")
    assert cache.DlcoreCacheLocator.from_function(users_kernel, str(source)) is None
    from numba.core.caching import FunctionCache
    users_cache = FunctionCache(users_kernel)
    assert not isinstance(users_cache._impl.locator, cache.DlcoreCacheLocator)
    assert type(users_cache._cache_file) is cache._NUMBAS_CACHE_FILE   # numbered, as Numba's


def two_processes_cache_files(tmp_path):
    """Two processes' views of one dlcore kernel's cache (index and code files): Numba's own
    class, as Numba's Cache builds it, in a folder of :class:`DlcoreCacheLocator`."""
    from numba.core import caching
    folder = dlcore_cache_folder(tmp_path / "dlcore" / "backend" / "example.py")
    return [caching.IndexDataCacheFile(os.fspath(folder), "example.kernel-1.py311", "stamp")
            for _ in range(2)]


def test_a_kernel_saved_beside_another_process_never_overwrites_its_code(tmp_path):
    """Two processes compiling one kernel for two signatures at once (pytest's workers,
    GridSearchCV(n_jobs=2) on a fresh install) both read the index before either wrote it:
    Numba numbered both code files 1, and the index named, for the first signature, the second
    one's machine code (a crash without a traceback in a later process)."""
    first, second = two_processes_cache_files(tmp_path)
    first.save("float32 key", "float32 code")
    named_by_first = first._load_index()
    second._load_index = lambda: {}     # read before the first process wrote it
    second.save("float64 key", "float64 code")
    first._save_index(named_by_first)   # the first process's index written last
    del second._load_index
    assert first.load("float32 key") == second.load("float32 key") == "float32 code"


def test_a_code_file_of_another_signature_is_never_loaded(tmp_path):
    """An index left naming another entry's code file (by an older dlcore, or a race) gives
    a kernel compiled again, not the other signature's machine code."""
    first, _ = two_processes_cache_files(tmp_path)
    first.save("float32 key", "float32 code")
    named = first._load_index()[cache.with_code_settings("float32 key")]
    first._save_index({cache.with_code_settings("float64 key"): named})
    assert first.load("float64 key") is None
    assert first.load("float32 key") is None


def test_numbas_code_settings_keep_an_entry_each(tmp_path, monkeypatch):
    """NUMBA_BOUNDSCHECK=1 (looking for an index out of range in a kernel) loaded the kernels
    compiled without bounds checks: Numba's key of an entry leaves its settings out."""
    from numba.core import config
    first, _ = two_processes_cache_files(tmp_path)
    first.save("float32 key", "code without bounds checks")
    monkeypatch.setattr(config, "BOUNDSCHECK", 1)
    assert first.load("float32 key") is None
    first.save("float32 key", "code with bounds checks")
    assert first.load("float32 key") == "code with bounds checks"
    monkeypatch.undo()
    assert first.load("float32 key") == "code without bounds checks"


def test_two_signatures_of_one_text_keep_a_code_file_each(tmp_path):
    """A kernel taking ``*own`` is typed Tuple from Python and StarArgTuple from another
    kernel (dlcore.rbm.cpu_annealing's anneal_rows): both print 'Tuple((int64, float32))'.
    Named by repr(key), the two shared one code file, each save dropping the other's
    machine code, and that kernel compiled again in the runs that followed."""
    from numba.core import types
    elements = (types.int64, types.float32)
    from_python = ((types.Tuple(elements),), ("cpu",), ("code",))
    from_a_kernel = ((types.StarArgTuple(elements),), ("cpu",), ("code",))
    assert repr(from_python) == repr(from_a_kernel)   # the case at hand
    first, _ = two_processes_cache_files(tmp_path)
    first.save(from_python, "code typed from Python")
    first.save(from_a_kernel, "code typed from a kernel")
    assert first.load(from_python) == "code typed from Python"
    assert first.load(from_a_kernel) == "code typed from a kernel"


def test_code_compiled_from_another_source_is_never_loaded(tmp_path):
    """A run started before an edit of dlcore (or a git pull) and one started after save the
    same kernel, whose own code and key are unchanged, from two sources of the package. Named
    by the key alone, the older run's save replaced the newer source's code under the index
    the newer run wrote, and the next run loaded the old code (the stale tanh the package
    digest exists to prevent)."""
    from numba.core import caching
    folder = os.fspath(dlcore_cache_folder(tmp_path / "dlcore" / "backend" / "example.py"))
    # (Numba's stamp of the file, the package's digest), as DlcoreCacheLocator gives them
    before_the_edit, after_the_edit, touched = (
        caching.IndexDataCacheFile(folder, "example.kernel-1.py311", stamp)
        for stamp in (((1.0, 10), "digest before"), ((2.0, 12), "digest after"),
                      ((3.0, 12), "digest after")))
    after_the_edit.save("float32 key", "code of the edited source")
    index_after_the_edit = after_the_edit._load_index()
    before_the_edit._load_index = lambda: {}   # read the index before it was written
    before_the_edit.save("float32 key", "code of the source before the edit")
    after_the_edit._save_index(index_after_the_edit)   # the newer run's index written last
    assert after_the_edit.load("float32 key") in ("code of the edited source", None)
    # a file touched (a git checkout), its content unchanged, reuses the file: no new set
    assert touched.keyed_data_name("float32 key") == after_the_edit.keyed_data_name("float32 key")


def test_the_package_digest_follows_every_python_file_and_nothing_else(tmp_path):
    (tmp_path / "layers").mkdir()
    (tmp_path / "layers" / "bodies.py").write_text("ONE = 1\n")
    (tmp_path / "notes.txt").write_text("not code")
    first = cache.source_digest(tmp_path)
    assert cache.source_digest(tmp_path) == first
    (tmp_path / "notes.txt").write_text("still not code")
    assert cache.source_digest(tmp_path) == first
    (tmp_path / "layers" / "bodies.py").write_text("ONE = 2\n")
    assert cache.source_digest(tmp_path) != first
    (tmp_path / "layers" / "bodies.py").write_text("ONE = 1\n")
    assert cache.source_digest(tmp_path) == first
    (tmp_path / "new.py").write_text("")
    assert cache.source_digest(tmp_path) != first


def test_an_unreadable_file_of_the_package_does_not_stop_the_digest(tmp_path, monkeypatch):
    (tmp_path / "bodies.py").write_text("ONE = 1\n")
    readable = cache.source_digest(tmp_path)

    def refuse(path):
        raise PermissionError(f"[Errno 13] Permission denied: '{path}'")
    monkeypatch.setattr(Path, "read_bytes", refuse)
    (tmp_path / "bodies.py").write_text("ONE = 22\n")   # a new size: read again
    assert cache.source_digest(tmp_path) not in (readable, None)


# A linear convolution small enough for the direct strategy: its kernel, in
# dlcore/layers/cpu_convolution.py, compiles in the linear activation of dlcore/layers/bodies.py.
RUN_A_CONVOLUTION = """
import numpy as np
from dlcore.layers import Conv2D
layer = Conv2D(2, 3, padding=1, activation="linear").build((1, 6, 6), backend="cpu", seed=0)
print(float(layer.forward(np.ones((2, 1, 6, 6), np.float32)).sum()))
"""


@pytest.mark.slow
def test_a_cached_kernel_follows_a_change_in_another_file_of_the_package(tmp_path):
    """Numba checks a cached kernel against its own file only: a change to a body the kernel
    compiled in (another file) must not leave the old code in the cache."""
    shutil.copytree(ROOT / "dlcore", tmp_path / "copy" / "dlcore",
                    ignore=shutil.ignore_patterns("__pycache__"))
    environment = {**os.environ, "DLCORE_CACHE": str(tmp_path / "kernels"),
                   "PYTHONPATH": str(tmp_path / "copy")}

    def total():
        completed = subprocess.run([sys.executable, "-c", RUN_A_CONVOLUTION], cwd=tmp_path,
                                   env=environment, capture_output=True, text=True,
                                   timeout=600, check=False)
        assert completed.returncode == 0, completed.stderr[-3000:]
        return float(completed.stdout.split()[-1])
    before = total()
    bodies = tmp_path / "copy" / "dlcore" / "layers" / "bodies.py"
    linear = '    """z itself."""\n    return z\n'   # the scalar linear activation
    assert bodies.read_text().count(linear) == 1
    shifted = linear.replace("return z", "return z + _ONE")
    bodies.write_text(bodies.read_text().replace(linear, shifted))
    assert total() == pytest.approx(before + 2 * 2 * 6 * 6, abs=1e-3)


# Every cached dlcore kernel whose Python function has a closure, with the digest of that closure
# as Numba computes it for its cache index (a pickle of the cells): the loop kernels made for
# a body, the fused weight step, the convolutions made per activation.
CLOSURE_DIGESTS = """
import hashlib, importlib, json, pkgutil, sys
from numba.core.registry import CPUDispatcher
from numba.core.serialize import dumps
import dlcore
from dlcore.backend import cpu
from dlcore.backend.kernel_backend import sigmoid_bernoulli_span
for module in pkgutil.walk_packages(dlcore.__path__, "dlcore."):
    if not any(part in module.name for part in (".cli", "cuda", "distributed")):
        importlib.import_module(module.name)
for kind in cpu._LOOPS:
    cpu._kernel(kind, sigmoid_bernoulli_span)
kernels = {f"{name}.{attribute}": value for name, module in list(sys.modules.items())
           if name.startswith("dlcore") for attribute, value in vars(module).items()}
kernels.update({f"loop {kind}": kernel for (kind, _), kernel in cpu._KERNELS.items()})
print(json.dumps({name: hashlib.sha256(dumps(tuple(
    cell.cell_contents for cell in kernel.py_func.__closure__))).hexdigest()
    for name, kernel in kernels.items() if isinstance(kernel, CPUDispatcher)
    and kernel.py_func.__closure__ and type(kernel._cache).__name__ != "NullCache"}))
"""


def test_every_cached_kernel_with_a_closure_has_the_same_cache_key_in_every_process():
    """Numba keys a kernel's cache entry on a pickle of its closure; a compiled function in a
    closure pickles with an identifier drawn anew in each process, and such a kernel compiled
    again in every process (the fused weight step did: ~0.8 s a run, ~113 KB more cache)."""
    digests = [json.loads(subprocess.run(
        [sys.executable, "-c", CLOSURE_DIGESTS], capture_output=True, text=True, timeout=600,
        check=True).stdout) for _ in range(2)]
    assert "dlcore.backend.cpu._weight_step" in digests[0]
    assert sum(name.startswith("loop ") for name in digests[0]) == len(cpu._LOOPS)
    assert digests[0] == digests[1]


@pytest.mark.slow
def test_a_second_process_loads_every_kernel_of_an_rbm_fit_and_writes_nothing(tmp_path):
    """An RBM large enough for every fused CPU path (products split across the threads, inner
    halves, the fused weight step): the second run finds all its kernels in the cache."""
    script = ("import numpy as np, dlcore; x = (np.random.default_rng(0).random((256, 300)) "
              "< 0.5).astype(np.float32); dlcore.BernoulliRBM(n_hidden=160, batch_size=64, "
              "epochs=1, backend='cpu').fit(x)")
    environment = {**os.environ, "DLCORE_CACHE": str(tmp_path)}
    environment.pop("NUMBA_CACHE_DIR", None)

    def run():
        completed = subprocess.run([sys.executable, "-c", script], capture_output=True,
                                   text=True, env=environment, timeout=900, check=False)
        assert completed.returncode == 0, completed.stderr[-2000:]
        return numba_cache_files([tmp_path])

    first = run()
    assert any("_fused_weight_step" in path.name for path in first)
    assert run() == first


def test_a_new_source_removes_the_earlier_sources_kernels_only(monkeypatch, tmp_path):
    """Numba rewrites the index of a source that changed but keeps the code files it named:
    without this each change of dlcore added a whole set of kernels to the folder, for good."""
    monkeypatch.setenv("DLCORE_CACHE", str(tmp_path))
    mine = cache.checkout_kernel_folders()
    assert cache._cpu_kernel_folder() in mine and len(mine) > 1
    other_checkout = tmp_path / cache.__version__ / "backend_0123456789"
    kept = [other_checkout / "cpu.kernel-1.py311.1.nbc", mine[0] / "notes.txt"]
    kernels = [folder / name for folder in mine[:2]
               for name in ("cpu.kernel-1.py311.nbi", "cpu.kernel-1.py311.1.nbc")]
    # compiled by this process, after it started: the new source's kernels
    compiled_here = [mine[0] / "cpu.kernel-2.py311.nbi", mine[0] / "cpu.kernel-2.py311.1.nbc"]
    an_hour_ago = cache.PROCESS_STARTED - 3600
    for path in kept + kernels + compiled_here:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
        if path not in compiled_here:
            os.utime(path, (an_hour_ago, an_hour_ago))
    # the first compiling into an empty folder (no earlier stamp) removes nothing
    cache.remember_compiling()
    assert all(path.exists() for path in kept + kernels + compiled_here)
    monkeypatch.setattr(cache, "package_source_digest", lambda: "e" * 64)
    cache.remember_compiling()
    assert not any(path.exists() for path in kernels)
    assert all(path.exists() for path in kept + compiled_here)
    assert [path.name for path in cache._cpu_kernel_folder().glob("compiled-for-*")] == [
        "compiled-for-" + "e" * 16]
