"""dlcore imported from a clone's own folder: python run in the repository's root, where
``./dlcore`` comes before the installed package on ``sys.path``.

That folder lacks ``cli/`` and ``datasets/``: they sit beside it, and setup.cfg maps them under
``dlcore`` on installation. Without them, ``import dlcore`` there failed with an ImportError
about a "circular import" that points nowhere, right after the README's ``pip install .``.
Imported first by ``dlcore/__init__.py``, this module lets ``dlcore.cli`` and
``dlcore.datasets`` (those two names, nothing else of the clone's root: not its tests, nor the
clone's ``dlcore/`` a second time) be found beside the package. An installed dlcore, which holds
both folders, is left as it is, and so is a copy of the ``dlcore/`` folder alone beside a
project's own ``cli/`` and ``datasets/`` (no setup.cfg of dlcore's there).
"""
import importlib.abc
import importlib.util
import os
import sys

#: The packages that live beside ``dlcore/`` in a clone and inside it once installed.
BESIDE_THE_PACKAGE = ("cli", "datasets")
#: What a clone's setup.cfg says, and no other folder's: dlcore.datasets comes from datasets/.
CLONE_MAPPING = "dlcore.datasets = datasets"


class BesideTheClone(importlib.abc.MetaPathFinder):
    """Finds ``dlcore.cli`` and ``dlcore.datasets`` in the clone's ``root``, and nothing else
    (their own modules then come from their folders, as any package's do)."""

    def __init__(self, root):
        self.root = root

    def find_spec(self, fullname, path=None, target=None):
        package, _, name = fullname.partition(".")
        if package != "dlcore" or name not in BESIDE_THE_PACKAGE:
            return None
        folder = os.path.join(self.root, name)
        return importlib.util.spec_from_file_location(
            fullname, os.path.join(folder, "__init__.py"), submodule_search_locations=[folder])


def _is_the_clone_root(root):
    """Whether ``root`` is dlcore's repository (or an unpacked source archive): its cli/ and
    datasets/ packages, and a setup.cfg that maps them under dlcore. A folder that merely has
    packages of those names (a project that copied the dlcore/ folder in) is not."""
    if not all(os.path.isfile(os.path.join(root, name, "__init__.py"))
               for name in BESIDE_THE_PACKAGE):
        return False
    try:
        with open(os.path.join(root, "setup.cfg"), encoding="utf-8") as stream:
            return any(line.strip() == CLONE_MAPPING for line in stream)
    except (OSError, UnicodeDecodeError):
        return False


def _find_beside_the_clone(package):
    here = os.path.dirname(os.path.abspath(package.__file__))
    root = os.path.dirname(here)
    installed = all(os.path.isfile(os.path.join(here, name, "__init__.py"))
                    for name in BESIDE_THE_PACKAGE)
    if installed or root in package.__path__ or not _is_the_clone_root(root):
        return   # installed, the folder above a clone (its __init__.py did it), or no clone
    if not any(isinstance(finder, BesideTheClone) and finder.root == root
               for finder in sys.meta_path):
        # first: an editable install's own finder may map these names to another clone
        sys.meta_path.insert(0, BesideTheClone(root))


_find_beside_the_clone(sys.modules[__package__])
