"""The seams of dlcore's design, held by reading the source (issue 9, items 1 and 2).

1. One way to choose the implementation: code outside ``dlcore/backend/`` asks a backend what it
   can do (``backend.launches_kernels``, ``backend.host_kernels``), never which one it is. An AST
   scan of dlcore/, cli/ and datasets/ refuses a backend's name compared with "cpu", "cuda" or
   "reference", an ``isinstance``/``issubclass`` test against a ``*Backend`` class, and the
   import of a ``*Backend`` class from ``dlcore.backend``.
2. Kernel bodies shared by the CPU and CUDA never import the CPU backend: each module of
   ``dlcore.layers`` that holds bodies is imported in a fresh interpreter, which must not have
   loaded ``dlcore.backend.cpu``, and has no import of it in its source.

The scanner itself is held to planted violations, so that a scan that finds nothing means
something.
"""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCANNED_FOLDERS = [ROOT / "dlcore", ROOT / "cli", ROOT / "datasets"]
BACKEND_FOLDER = ROOT / "dlcore" / "backend"
LAYERS_FOLDER = ROOT / "dlcore" / "layers"
BACKEND_NAMES = {"cpu", "cuda", "reference"}
NAME_ATTRIBUTES = {"name", "backend_name"}
ADVICE = "ask backend.launches_kernels / backend.host_kernels instead"
CPU_BACKEND = "dlcore.backend.cpu"


# -- the scanner ------------------------------------------------------------------------------
def _is_backend_name(node):
    """``<anything>.name`` / ``<anything>.backend_name``, or a variable ``backend_name``."""
    if isinstance(node, ast.Attribute):
        return node.attr in NAME_ATTRIBUTES
    return isinstance(node, ast.Name) and node.id == "backend_name"


def _backend_strings(node):
    """The strings "cpu", "cuda", "reference" in ``node``: a constant, or a tuple/list/set of
    constants (the right side of ``in``)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value} & BACKEND_NAMES
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return set().union(*(_backend_strings(element) for element in node.elts))
    return set()


def _dotted_name(node):
    """``a.b.C`` of a Name/Attribute chain, or None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted_name(node.value)
        return None if inner is None else f"{inner}.{node.attr}"
    return None


def _backend_classes(node):
    """The ``*Backend`` class names in the second argument of isinstance/issubclass."""
    candidates = node.elts if isinstance(node, ast.Tuple) else [node]
    names = (_dotted_name(candidate) for candidate in candidates)
    return [name for name in names if name is not None and name.endswith("Backend")]


def _imported_module(node, module_path):
    """The absolute module a ``from ... import`` reads, for relative imports resolved against
    ``module_path`` (a dotted name such as ``dlcore.layers.ops``)."""
    if node.level == 0:
        return node.module or ""
    package = module_path.split(".")[:-node.level]
    return ".".join(package + ([node.module] if node.module else []))


def backend_choices(source, filename="<source>", module_path="dlcore.module"):
    """Every place in ``source`` that picks an implementation by a backend's name or class, as
    ``"filename:line: what"`` strings (empty when the code asks capabilities instead)."""
    found = []

    def report(node, what):
        found.append(f"{filename}:{node.lineno}: {what}")

    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for operator, left, right in zip(node.ops, operands[:-1], operands[1:]):
                if not isinstance(operator, (ast.Eq, ast.NotEq, ast.In, ast.NotIn)):
                    continue
                for name, other in ((left, right), (right, left)):
                    strings = _backend_strings(other)
                    if _is_backend_name(name) and strings:
                        report(node, f"a backend's name compared with {sorted(strings)}")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("isinstance", "issubclass") and len(node.args) == 2):
            for name in _backend_classes(node.args[1]):
                report(node, f"{node.func.id}(..., {name})")
        elif isinstance(node, ast.ImportFrom):
            module = _imported_module(node, module_path)
            if module == "dlcore.backend" or module.startswith("dlcore.backend."):
                for alias in node.names:
                    if alias.name.endswith("Backend"):
                        report(node, f"import of the class {alias.name} from {module}")
    return found


def _python_files(folders, excluded=()):
    for folder in folders:
        for path in sorted(folder.rglob("*.py")):
            if not any(part in path.parts for part in ("__pycache__", "build")) and \
                    not any(path.is_relative_to(skipped) for skipped in excluded):
                yield path


def _module_path(path):
    """dlcore/layers/ops.py -> dlcore.layers.ops; a package's ``__init__`` keeps its name, so
    that its relative imports resolve inside the package. (cli/ and datasets/ install as
    dlcore.cli and dlcore.datasets; their relative imports never reach dlcore.backend.)"""
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


# -- the scanner finds what it must, and only that --------------------------------------------
PLANTED = {
    "name-equals": 'if backend.name == "reference":\n    pass\n',
    "name-not-equals": 'use_numpy = self.backend.name != "cpu"\n',
    "string-on-the-left": 'on_gpu = "cuda" == layer.backend.name\n',
    "name-in-tuple": 'fast = model.backend.name in ("cpu", "cuda")\n',
    "name-not-in-list": 'slow = b.name not in ["cuda"]\n',
    "backend-name-attribute": 'if run.backend_name == "cpu":\n    pass\n',
    "backend-name-variable": 'gpu = backend_name == "cuda"\n',
    "isinstance": "if isinstance(backend, KernelBackend):\n    pass\n",
    "isinstance-tuple": "ok = isinstance(b, (int, backends.CUDABackend))\n",
    "issubclass": "ok = issubclass(type(b), ReferenceBackend)\n",
    "import-absolute": "from dlcore.backend.kernel_backend import KernelBackend\n",
    "import-relative": "from ..backend.cpu import CPUBackend\n",
    "import-package": "from dlcore.backend import Backend, get_backend\n",
}
ALLOWED = {
    "capability": "if not backend.launches_kernels:\n    pass\n",
    "host-capability": "strategies = backend.host_kernels and small\n",
    "layer-name": 'if layer.name == "dense":\n    pass\n',
    "other-string": 'if backend.name == "float32":\n    pass\n',
    "activation": 'if activation in ("relu", "cuda_like"):\n    pass\n',
    "isinstance-array": "ok = isinstance(x, np.ndarray)\n",
    "import-function": "from dlcore.backend import get_backend, rng\n",
    "import-elsewhere": "from dlcore.layers import Dense\n",
    "resolve": 'gpu = resolve_backend_name(name) == "cuda"\n',
}


@pytest.mark.parametrize("source", PLANTED.values(), ids=PLANTED.keys())
def test_the_scanner_reports_each_way_of_choosing_by_name_or_class(source):
    found = backend_choices(source, "planted.py", "dlcore.layers.planted")
    assert len(found) == 1 and found[0].startswith("planted.py:"), found


@pytest.mark.parametrize("source", ALLOWED.values(), ids=ALLOWED.keys())
def test_the_scanner_leaves_capabilities_and_other_names_alone(source):
    assert backend_choices(source, "allowed.py", "dlcore.layers.allowed") == []


def test_the_scanner_names_the_line():
    source = "import numpy\n\n\nif backend.name == 'cpu':\n    pass\n"
    assert backend_choices(source, "dlcore/x.py") == [
        "dlcore/x.py:4: a backend's name compared with ['cpu']"]


# -- the scan ------------------------------------------------------------------------------
def test_no_module_outside_the_backend_chooses_by_a_backends_name_or_class():
    found = []
    for path in _python_files(SCANNED_FOLDERS, excluded=[BACKEND_FOLDER]):
        found += backend_choices(path.read_text(), str(path.relative_to(ROOT)),
                                 _module_path(path))
    assert not found, (f"{len(found)} place(s) choose the implementation by a backend's name or "
                       f"class; {ADVICE}:\n  " + "\n  ".join(found))


# -- kernel bodies shared by the CPU and CUDA never import the CPU backend -----------------
def _holds_kernel_functions(path):
    """Whether a module defines functions registered with ``@body`` or ``@shared``."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef):
            for decorator in node.decorator_list:
                target = decorator.func if isinstance(decorator, ast.Call) else decorator
                if _dotted_name(target) in ("body", "shared"):
                    return True
    return False


BODY_MODULES = [_module_path(path) for path in _python_files([LAYERS_FOLDER])
                if _holds_kernel_functions(path)]
# the dispatcher and the package are what the CUDA path imports too
CUDA_PATH_MODULES = sorted(set(BODY_MODULES) | {"dlcore.layers", "dlcore.layers.ops"})


def test_the_body_modules_are_found():
    assert {"dlcore.layers.bodies", "dlcore.layers.augmentation"} <= set(BODY_MODULES)


def _imports_of_cpu_backend(path, module_path):
    """Module-level or not, every import in ``path`` that names dlcore.backend.cpu."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [f"{path.name}:{node.lineno}" for alias in node.names
                      if alias.name == CPU_BACKEND or alias.name.startswith(CPU_BACKEND + ".")]
        elif isinstance(node, ast.ImportFrom):
            module = _imported_module(node, module_path)
            if module == CPU_BACKEND or module.startswith(CPU_BACKEND + ".") or (
                    module == "dlcore.backend" and any(a.name == "cpu" for a in node.names)):
                found.append(f"{path.name}:{node.lineno}")
    return found


@pytest.mark.parametrize("module", BODY_MODULES)
def test_a_body_module_has_no_import_of_the_cpu_backend(module):
    path = ROOT / (module.replace(".", "/") + ".py")
    assert _imports_of_cpu_backend(path, module) == []


@pytest.mark.parametrize("source", [
    "from dlcore.backend.cpu import BLAS_GEMM\n", "from ..backend.cpu import serial_gemm\n",
    "from dlcore.backend import cpu\n", "import dlcore.backend.cpu\n",
    "def f():\n    from dlcore.backend.cpu import serial_gemm\n"])
def test_the_import_check_sees_every_spelling(tmp_path, source):
    path = tmp_path / "planted.py"
    path.write_text(source)
    assert len(_imports_of_cpu_backend(path, "dlcore.layers.planted")) == 1


IMPORT_AND_REPORT = """
import sys
import numpy as np
import importlib
importlib.import_module({module!r})
if {build_ops}:
    from dlcore.layers.ops import ops_for

    class DeviceLike:   # a backend that launches kernels on arrays that are not the host's
        launches_kernels, host_kernels = True, False

        def zeros(self, shape, dtype=np.float32):
            return np.zeros(shape, dtype)

    ops_for(DeviceLike())
print({cpu!r} in sys.modules)
"""


def _loads_cpu_backend(module, build_ops=False):
    result = subprocess.run([sys.executable, "-c", IMPORT_AND_REPORT.format(
        module=module, build_ops=build_ops, cpu=CPU_BACKEND)], capture_output=True, text=True,
        cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1] == "True"


@pytest.mark.parametrize("module", CUDA_PATH_MODULES)
def test_importing_a_module_with_shared_bodies_leaves_the_cpu_backend_unloaded(module):
    assert not _loads_cpu_backend(module)


def test_layer_operations_of_a_device_backend_leave_the_cpu_backend_unloaded():
    assert not _loads_cpu_backend("dlcore.layers.ops", build_ops=True)


def test_the_subprocess_check_sees_a_loaded_cpu_backend():
    assert _loads_cpu_backend("dlcore.layers.cpu_convolution")


def test_importing_dlcore_leaves_scipy_special_unimported():
    """scipy.special (a tenth of a second of every command's start) serves the reference
    GELU alone: imported on its first use."""
    script = ("import sys, numpy as np, dlcore\n"
              "from dlcore.layers import reference\n"
              "print('scipy.special' in sys.modules)\n"
              "reference.gelu(np.zeros(2))\n"
              "print('scipy.special' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == ["False", "True"]
