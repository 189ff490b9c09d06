"""The Parameters sections of the public API's NumPy docstrings name the real parameters.

``help(dlcore.layers.MaxPool2D)`` is where a student looks up a keyword: a section that leaves
out ``strides`` or names a parameter that was renamed sends them wrong. For every public class
(its constructor and its own public methods) and function of the modules below, a docstring
with a Parameters section must name every parameter of the signature (``self``, and the
``**unexpected`` that only refuses, aside) and nothing else. The section is parsed here (the
numpydoc package is not a dependency): an entry is a line at the section's indentation,
``name : description`` or ``name1, name2 : description``; a name list may run over lines that
end with a comma. A docstring without a Parameters section (one-line methods, helpers whose
arguments the prose names) is not judged here."""
import importlib
import inspect
import re
import types

import pytest

MODULES = ["dlcore", "dlcore.layers", "dlcore.losses", "dlcore.optimizers", "dlcore.callbacks",
           "dlcore.metrics", "dlcore.regularizers", "dlcore.models", "dlcore.datasets",
           "dlcore.viz", "dlcore.rbm", "dlcore.dbn", "dlcore.autoencoder", "dlcore.wrappers",
           "dlcore.adversarial", "dlcore.ensemble", "dlcore.pretraining", "dlcore.functional",
           "dlcore.io", "dlcore.receptive_field", "dlcore.gradient_check", "dlcore.training"]

#: keyword catch-alls that only refuse what they catch (``refuse_fit_arguments``)
REFUSING = {"unexpected"}

ENTRY = re.compile(r"^((?:\*{0,2}[A-Za-z_]\w*)(?:\s*,\s*\*{0,2}[A-Za-z_]\w*)*)\s*(?::.*)?$")


def sections(doc):
    """{section title: its lines} of a NumPy docstring."""
    lines = inspect.cleandoc(doc).splitlines()
    found, current = {}, None
    for index, line in enumerate(lines):
        if index + 1 < len(lines) and re.fullmatch(r"\s*-{3,}\s*", lines[index + 1]) \
                and line.strip() and not re.fullmatch(r"\s*-{3,}\s*", line):
            current = line.strip()
            found[current] = []
        elif current is not None and not re.fullmatch(r"\s*-{3,}\s*", line):
            found[current].append(line)
    return found


def documented_names(lines):
    """The parameter names of a Parameters section's entries."""
    lines = [line for line in lines if line.strip()]
    if not lines:
        return set()
    base = min(len(line) - len(line.lstrip()) for line in lines)
    heads = []
    for line in lines:
        if len(line) - len(line.lstrip()) != base:
            continue
        if heads and heads[-1].endswith(",") and ":" not in heads[-1]:
            heads[-1] += " " + line.strip()   # a list of names running over lines
        else:
            heads.append(line.strip())
    names = set()
    for head in heads:
        match = ENTRY.match(head)
        if match:
            names.update(name.strip().lstrip("*") for name in match.group(1).split(","))
    return names


def public_callables():
    """(qualified name, callable whose signature counts, docstring) of the public API."""
    seen, found = set(), []
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        names = getattr(module, "__all__", None) or [
            name for name, value in vars(module).items() if not name.startswith("_")
            and getattr(value, "__module__", "").startswith(module_name)]
        for name in names:
            value = getattr(module, name)
            if isinstance(value, types.ModuleType) or id(value) in seen \
                    or not (inspect.isclass(value) or inspect.isfunction(value)) \
                    or not getattr(value, "__module__", "").startswith("dlcore"):
                continue
            seen.add(id(value))
            found.append((f"{module_name}.{name}", value, value.__doc__))
            if inspect.isclass(value):
                for method_name, method in vars(value).items():
                    method = getattr(method, "__func__", method)
                    if not method_name.startswith("_") and inspect.isfunction(method):
                        found.append((f"{module_name}.{name}.{method_name}", method,
                                      method.__doc__))
    return found


def mismatches():
    problems = []
    for name, function, doc in public_callables():
        if not doc or "Parameters" not in sections(doc):
            continue
        try:
            signature = inspect.signature(function)
            if inspect.isclass(function) and [p.kind for p in signature.parameters.values()] \
                    == [inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD]:
                signature = inspect.signature(function.__init__)   # a __new__ that passes on
        except (TypeError, ValueError):
            continue
        real = [p for p in signature.parameters if p not in ("self", "cls")
                and p not in REFUSING]
        section = sections(doc)
        named = documented_names(section["Parameters"] + section.get("Other Parameters", []))
        missing = [p for p in real if p not in named]
        stale = sorted(named - set(real))
        if missing or stale:
            problems.append(f"{name}: not documented {missing}, not parameters {stale}")
    return problems


def test_the_parser_reads_entries_name_lists_and_lists_running_over_lines():
    doc = """Summary.

    Parameters
    ----------
    x : (n, d) array
        The data.
    a, b : int
    c, d,
    e : float, what each is
    **options : see elsewhere

    Returns
    -------
    y : float
    """
    assert documented_names(sections(doc)["Parameters"]) == {"x", "a", "b", "c", "d", "e",
                                                             "options"}


def test_every_parameters_section_of_the_public_api_names_exactly_the_real_parameters():
    problems = mismatches()
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", [
    "dlcore.load", "dlcore.models.mlp", "dlcore.models.lenet5", "dlcore.BernoulliRBM",
    "dlcore.DBN", "dlcore.Autoencoder", "dlcore.optimizers.SGD", "dlcore.optimizers.Adam",
    "dlcore.optimizers.AdaGrad", "dlcore.optimizers.RMSProp", "dlcore.optimizers.ExponentialDecay",
    "dlcore.optimizers.StepDecay", "dlcore.optimizers.InverseTimeDecay",
    "dlcore.models.stacked_network", "dlcore.models.convnet_2016", "dlcore.models.resnet_small",
    "dlcore.models.unet_small"])
def test_the_entry_points_a_first_session_meets_have_a_parameters_section(name):
    function = dict((qualified, doc) for qualified, _, doc in public_callables())[name]
    assert "Parameters" in sections(function)
