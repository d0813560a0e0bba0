"""Documentation checks: docstring examples run, public names are documented and well formed.

The Sphinx build itself (with warnings as errors) runs in ``make test`` after pytest.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import re
from pathlib import Path

import numpy as np
import pytest

import pcrsolve

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
API = DOCS / "api"
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE | doctest.IGNORE_EXCEPTION_DETAIL


def _modules():
    """(module name, module) of the public namespaces that exist in this build."""
    mods = [("pcrsolve", pcrsolve)]
    for name in ("pcrsolve.adapters", "pcrsolve.dask"):
        try:
            mods.append((name, importlib.import_module(name)))
        except ImportError:  # pragma: no cover - not in this build (or Dask not installed)
            pass
    return mods


def _public():
    """(qualified name, object) of every name in the public ``__all__`` lists."""
    out = []
    for modname, mod in _modules():
        for name in getattr(mod, "__all__", []):
            out.append((f"{modname}.{name}", getattr(mod, name, None)))
    return out


PUBLIC = _public()
# Callables and classes, whose docstrings are checked (constants such as __version__ are not).
DOCUMENTED = [(q, o) for q, o in PUBLIC if inspect.isclass(o) or inspect.isroutine(o)]


def _methods(cls):
    """Public methods of ``cls`` defined in pcrsolve (inherited ones included, builtins' not)."""
    seen = set()
    for klass in cls.__mro__:
        if not klass.__module__.startswith("pcrsolve"):
            continue
        for name, member in vars(klass).items():
            if name.startswith("_") or name in seen:
                continue
            seen.add(name)
            if inspect.isfunction(member) or isinstance(member, (classmethod, staticmethod)):
                yield name


# ----------------------------------------------------------------------- exported and documented


@pytest.mark.parametrize(("qualname", "obj"), PUBLIC, ids=[q for q, _ in PUBLIC])
def test_public_name_is_exported(qualname, obj):
    assert obj is not None, f"{qualname} is in __all__ but not importable"


def _api_text() -> dict[str, str]:
    """Every directive target on the API pages, resolved against ``currentmodule``."""
    documented: dict[str, str] = {}
    directive = re.compile(
        r"^\.\. (?:auto)?(?:function|class|exception|data|attribute|method|module)::\s+(\S+)", re.M
    )
    for page in sorted(API.glob("*.rst")):
        current = "pcrsolve"
        for line in page.read_text().splitlines():
            m = re.match(r"^\.\. currentmodule::\s+(\S+)", line)
            if m:
                current = m.group(1)
                continue
            m = directive.match(line)
            if m:
                target = m.group(1)
                full = target if target.startswith("pcrsolve") else f"{current}.{target}"
                documented[full] = page.name
    return documented


@pytest.mark.parametrize(("qualname", "obj"), PUBLIC, ids=[q for q, _ in PUBLIC])
def test_public_name_is_in_api_reference(qualname, obj):
    assert qualname in _api_text(), (
        f"{qualname} is public (in __all__) but no page under docs/api/ documents it; add an "
        "autofunction/autoclass entry (and an autosummary line) to the page of its concept."
    )


def test_api_pages_are_in_the_toctree():
    index = (API / "index.rst").read_text()
    for page in API.glob("*.rst"):
        if page.name != "index.rst":
            assert re.search(rf"^\s+{page.stem}\s*$", index, re.M), f"{page.name} is not in api/index.rst"


# ----------------------------------------------------------------------- numpydoc

# The subset of numpydoc's rules this project holds every public docstring to. A method may have
# a one-line docstring (protocol methods such as ``step``/``jac`` are described on their class);
# once it has a Parameters section, that section must be complete and a Returns section given.
FUNCTION_RULES = {"GL08", "SS01", "SS03", "PR01", "PR02", "RT01", "EX01"}
METHOD_RULES = {"GL08", "SS01", "SS03", "PR02"}
FULL_METHOD_RULES = METHOD_RULES | {"PR01", "RT01"}
CLASS_RULES = {"GL08", "SS01", "SS03"}


def _validate(qualname: str, rules: set[str]) -> list[str]:
    from numpydoc.validate import validate

    result = validate(qualname)
    if rules is METHOD_RULES and re.search(r"^\s*Parameters\n\s*-{3,}", result["docstring"] or "", re.M):
        rules = FULL_METHOD_RULES
    return [f"{code}: {msg}" for code, msg in result["errors"] if code in rules]


# Known docstring gaps, each to be fixed in the named file; strict: the test fails once it passes.
KNOWN_GAPS: dict[str, str] = {}


@pytest.mark.parametrize(
    ("qualname", "obj"),
    [
        pytest.param(q, o, marks=pytest.mark.xfail(reason=KNOWN_GAPS[q], strict=True))
        if q in KNOWN_GAPS
        else (q, o)
        for q, o in DOCUMENTED
    ],
    ids=[q for q, _ in DOCUMENTED],
)
def test_numpydoc(qualname, obj):
    problems = _validate(qualname, CLASS_RULES if inspect.isclass(obj) else FUNCTION_RULES)
    if inspect.isclass(obj) and not issubclass(obj, BaseException):
        for name in _methods(obj):
            problems += [f"{name}: {p}" for p in _validate(f"{qualname}.{name}", METHOD_RULES)]
    assert not problems, f"{qualname}: " + "; ".join(problems)


# ----------------------------------------------------------------------- doctests


def _doctests():
    finder = doctest.DocTestFinder(recurse=False)
    tests = []
    for qualname, obj in DOCUMENTED:
        module = inspect.getmodule(obj)
        for t in finder.find(obj, qualname, module=module, globs={}):
            if t.examples:
                tests.append(t)
        if inspect.isclass(obj):
            for name in _methods(obj):
                for t in finder.find(getattr(obj, name), f"{qualname}.{name}", module=module, globs={}):
                    if t.examples:
                        tests.append(t)
    return tests


DOCTESTS = _doctests()


@pytest.fixture
def doc_printoptions():
    old = np.get_printoptions()
    np.set_printoptions(legacy=False)
    yield
    np.set_printoptions(**old)


@pytest.mark.parametrize("test", DOCTESTS, ids=[t.name for t in DOCTESTS])
def test_docstring_examples(test, doc_printoptions):
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    runner.run(test, out=lambda s: None)
    result = runner.summarize(verbose=False)
    if result.failed:
        out: list[str] = []
        doctest.DocTestRunner(optionflags=FLAGS).run(test, out=out.append)
        pytest.fail("".join(out))


def test_every_public_function_has_an_example():
    names = {t.name for t in DOCTESTS}
    missing = [q for q, o in DOCUMENTED if inspect.isfunction(o) and q not in names]
    assert not missing, f"public functions without an Examples section: {missing}"


PAGES = sorted(p for p in DOCS.glob("*.rst") if ">>>" in p.read_text())


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_page_examples(page, doc_printoptions):
    result = doctest.testfile(str(page), module_relative=False, optionflags=FLAGS, verbose=False, report=True)
    assert result.failed == 0, f"{page.name}: {result.failed} of {result.attempted} examples failed"


def _code_block(text: str, start: str, end: str) -> str:
    body = text.split(start, 1)[1].split(end, 1)[0]
    lines = body.splitlines()
    indent = min((len(x) - len(x.lstrip()) for x in lines if x.strip()), default=0)
    return "\n".join(x[indent:] for x in lines)


@pytest.mark.parametrize(
    ("path", "start", "end"),
    [("README.md", "```python\n", "```"), ("docs/index.rst", ".. code-block:: python\n", "\nInstall")],
    ids=["README", "index"],
)
def test_front_page_example_runs(path, start, end, capsys):
    code = _code_block((ROOT / path).read_text(), start, end)
    assert len([x for x in code.splitlines() if x.strip()]) <= 12, "the front-page example should stay short"
    exec(compile(code, path, "exec"), {"__name__": "__example__"})
