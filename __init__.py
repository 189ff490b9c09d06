"""dlcore, imported from the folder that holds this repository (a clone named ``dlcore``).

Without this file, ``import dlcore`` run there (a script, a notebook, ``python -c``) would find
the clone itself before the installed package and make it an empty namespace package: every
name missing, errors that point nowhere. Instead the package is made whole, with the same modules
as installed: ``dlcore.*`` from ``dlcore/``, ``dlcore.cli`` from ``cli/`` and
``dlcore.datasets`` from ``datasets/``, and ``dlcore/__init__.py`` runs as the package's code.
It is never part of an installation (setup.cfg lists the packages); imported under another name
(pytest collects this folder as a package), it does nothing.
"""
import os as _os

if __name__ == "dlcore":  # not when a test runner imports the folder under its own name
    _root = _os.path.dirname(_os.path.abspath(__file__))
    __path__ = [_os.path.join(_root, "dlcore"), _root]
    __file__ = _os.path.join(__path__[0], "__init__.py")
    with open(__file__, encoding="utf-8") as _source:
        exec(compile(_source.read(), __file__, "exec"))  # noqa: S102  (dlcore's own __init__.py)
    del _root, _source
del _os
