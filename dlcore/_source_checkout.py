"""dlcore imported from a clone's own folder: python run in the repository's root, where
``./dlcore`` comes before the installed package on ``sys.path``.

That folder lacks ``cli/`` and ``datasets/``: they sit beside it, and setup.cfg maps them under
``dlcore`` on installation. Without them, ``import dlcore`` there failed with an ImportError
about a "circular import" that points nowhere, right after the README's ``pip install .``.
Imported first by ``dlcore/__init__.py``, this module adds the clone's root to the package's
search path, as the root's own ``__init__.py`` does for the folder above a clone; an installed
dlcore, which holds both folders, is left as it is.
"""
import os
import sys


def _join_the_clone_root(package):
    here = os.path.dirname(os.path.abspath(package.__file__))
    root = os.path.dirname(here)
    installed = os.path.isfile(os.path.join(here, "datasets", "__init__.py"))
    beside = all(os.path.isfile(os.path.join(root, name, "__init__.py"))
                 for name in ("cli", "datasets"))
    if not installed and beside and root not in package.__path__:
        package.__path__.append(root)


_join_the_clone_root(sys.modules[__package__])
