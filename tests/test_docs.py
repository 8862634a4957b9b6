"""Docstrings name the lesson that introduces them, and that lesson really uses them (d2l's "Defined in").

Every public kdlib function or class that a lesson uses says ``Introduced in lesson N.`` in its
docstring, N being the first lesson whose text pair ``solutions/NN_*.py`` uses it; and every such
line is true.  A use is spelled as a lesson spells it: ``kd.name`` (names exported by
``import kdlib as kd``), ``kd.module.name``, ``module.name`` after ``from kdlib import module``,
or ``name`` after ``from kdlib.module import name``.  Cheap: the text pairs and kdlib's sources
are read as text and parsed with ``ast``; nothing is imported or run.
"""
from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PHRASE = re.compile(r"Introduced in lesson (\d+)\.")


@cache
def lessons() -> dict[int, str]:
    texts = {int(p.name[:2]): p.read_text() for p in sorted((ROOT / "solutions").glob("[0-9][0-9]_*.py"))}
    assert texts, "no solutions/NN_*.py text pairs found"
    return texts


def _dotted(path: Path) -> str:
    """``kdlib/experiments/fashion.py`` → ``experiments.fashion``; a package's ``__init__.py`` → its name
    (``experiments``), kdlib's own → ``__init__``."""
    parts = list(path.relative_to(ROOT / "kdlib").with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


@cache
def sources() -> dict[str, ast.Module]:
    """Every module of kdlib, subpackages included, by its dotted name below ``kdlib``."""
    return {_dotted(p): ast.parse(p.read_text()) for p in sorted((ROOT / "kdlib").rglob("*.py"))}


def _absolute(module: str, node: ast.ImportFrom) -> str | None:
    """The dotted name below ``kdlib`` that a relative ``from .x import y`` in ``module`` names."""
    if node.level == 0:
        return None
    is_package = module == "__init__" or (ROOT / "kdlib" / module.replace(".", "/") / "__init__.py").exists()
    package = [] if module == "__init__" else module.split(".")[: None if is_package else -1]
    base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
    return ".".join(base + ([node.module] if node.module else []))


def public_objects() -> list[tuple[str, str, str]]:
    """``(module, name, docstring)`` of every public top-level function and class of kdlib."""
    found = []
    for module, tree in sources().items():
        if module.startswith("__") or module.startswith("tooling"):  # the tooling is no lesson's to use
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                found.append((module, node.name, ast.get_docstring(node) or ""))
    return found


@cache
def homes(name: str, module: str) -> tuple[set[str], bool]:
    """The modules through which ``name`` (defined in ``module``) is reachable, and whether ``kd.name`` is."""
    through, top = {module}, False
    for other, tree in sources().items():
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and _absolute(other, node) == module \
                    and any(alias.name == name and alias.asname is None for alias in node.names):
                if other == "__init__":
                    top = True
                else:
                    through.add(other)
    return through, top


def uses(text: str, module: str, name: str) -> bool:
    """True if lesson ``text`` uses kdlib's ``module.name`` in one of the spellings in this file's docstring."""
    through, top = homes(name, module)
    word = rf"{re.escape(name)}\b"
    patterns = [rf"\bkd(?:lib)?\.{re.escape(m)}\.{word}" for m in through]
    if top:
        patterns.append(rf"\bkd\.{word}")
    for m in through:
        if re.search(rf"^from kdlib import .*\b{re.escape(m)}\b", text, re.M):
            patterns.append(rf"(?<![\w.]){re.escape(m)}\.{word}")
        if re.search(rf"^from kdlib\.{re.escape(m)} import .*\b{re.escape(name)}\b", text, re.M):
            patterns.append(rf"(?<![\w.]){word}")
    return any(re.search(p, text) for p in patterns)


def first_lesson(module: str, name: str) -> int | None:
    return next((n for n, text in lessons().items() if uses(text, module, name)), None)


CASES = public_objects()


@pytest.mark.parametrize("module,name,doc", CASES, ids=[f"{m}.{n}" for m, n, _ in CASES])
def test_docstring_names_the_lesson_that_introduces_it(module, name, doc):
    claimed = [int(n) for n in PHRASE.findall(doc)]
    first = first_lesson(module, name)
    assert len(claimed) <= 1, f"kdlib.{module}.{name} names several lessons: {claimed}"
    if first is None:
        assert not claimed, (f"kdlib.{module}.{name} says 'Introduced in lesson {claimed[0]}.' but no lesson "
                             "uses it; drop the line (or use it in that lesson).")
        return
    assert claimed, f"kdlib.{module}.{name} is first used in lesson {first}: add 'Introduced in lesson {first}.'"
    assert uses(lessons()[claimed[0]], module, name), \
        f"kdlib.{module}.{name} says 'Introduced in lesson {claimed[0]}.' but that lesson does not use it"
    assert claimed[0] == first, (f"kdlib.{module}.{name} says lesson {claimed[0]}, but lesson {first} already "
                                 "uses it: name the first lesson")


def test_the_phrase_is_checked_somewhere():
    """Guards the test itself: the spellings above do find the lessons' uses."""
    assert first_lesson("energy", "EnergyMeter") is not None and first_lesson("ledger", "Ledger") == 4
    assert uses("import kdlib as kd\nkd.ledger.Ledger()", "ledger", "Ledger")
    assert not uses("ledger.break_even('a', 'b')", "ledger", "break_even")   # a method of a lesson's object


def _private(name: str) -> bool:
    return name.startswith("_") and not name.endswith("__")


def private_uses(module: str, tree: ast.Module) -> list[str]:
    """Where kdlib ``module`` takes another kdlib module's private name: ``from .x import _y``, or
    ``x._y`` on a module it imported (``from .. import x``, ``from .. import x as z``), anywhere in it."""
    bad, modules = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level >= 1:
            source = _absolute(module, node)
            for alias in node.names:
                if _private(alias.name):
                    bad.append(f"kdlib.{module} imports {alias.name} from kdlib.{source}")
                elif ".".join(filter(None, (source, alias.name))) in sources():
                    modules[alias.asname or alias.name] = ".".join(filter(None, (source, alias.name)))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules \
                and _private(node.attr) and modules[node.value.id] != module:
            bad.append(f"kdlib.{module} uses {node.value.id}.{node.attr} of kdlib.{modules[node.value.id]} "
                       f"(line {node.lineno})")
    return bad


def test_no_private_imports_across_modules():
    """Modules share only public names (e.g. ``runtime.synchronize``, not ``perf._sync``)."""
    bad = [line for module, tree in sources().items() for line in private_uses(module, tree)]
    assert not bad, "\n".join(bad)


def test_private_uses_are_caught():
    """Guards the test above: both spellings of a private use are found, public ones are not."""
    assert private_uses("tooling.bench", ast.parse("from .. import data as kdata\nkdata._fashion_arrays()")) == [
        "kdlib.tooling.bench uses kdata._fashion_arrays of kdlib.data (line 2)"]
    assert private_uses("doctor", ast.parse("def f():\n    from . import text\n    return text._corpus"))
    assert private_uses("text", ast.parse("from .data import _finish"))
    assert not private_uses("doctor", ast.parse("from . import text\ntext.locate_corpus()\ntext.__name__"))


def test_the_graded_checks_cannot_be_replaced_by_an_answer_cell():
    import pytest

    import kdlib as kd

    real = kd.checks.check_kd_loss if hasattr(kd.checks, "check_kd_loss") else None
    name = next(n for n in dir(kd.checks) if n.startswith("check_"))
    with pytest.raises(AttributeError, match="cannot be replaced"):
        setattr(kd.checks, name, lambda *a, **k: None)
    with pytest.raises(AttributeError, match="cannot be deleted"):
        delattr(kd.checks, name)
    with pytest.raises(AttributeError, match="cannot be replaced"):
        kd.checks = object()
    with pytest.raises(AttributeError, match="cannot be replaced"):
        kd.checks.CheckFailed = AssertionError
    assert callable(getattr(kd.checks, name)) and (real is None or kd.checks.check_kd_loss is real)
    kd.checks.helper_note = "other names stay writable"  # only the checks are sealed
    del kd.checks.helper_note
