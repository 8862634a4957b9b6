"""``lessons/`` generated from ``solutions/``: one source of truth for each lesson (nbgrader's idea).

Each notebook is written once, in ``solutions/``, with
exercise regions marked in its code cells::

    def kd_loss(student_logits, teacher_logits, labels, T, alpha):
        ### BEGIN SOLUTION
        ...the answer...
        ### END SOLUTION

:func:`make_lesson` turns it into the student copy in ``lessons/``: each region becomes
``raise NotImplementedError()`` under a ``# YOUR CODE HERE`` line, at the same indentation.
A region at the top level of a cell (not inside a function) makes that cell raise, so the cell
is tagged ``raises-exception`` for nbval and JupyterLab's *Run All*; a region inside a function
raises only when called, and the exercise's check cell (:mod:`kdlib.checks`) reports that as
"not done yet" by raising, tagged the same way, so the lesson continues with kdlib's reference
implementation.  ``tests/test_course.py`` fails when
``lessons/`` is not exactly what the generator makes of ``solutions/``.
"""
from __future__ import annotations

import re
from pathlib import Path

from . import ROOT, notebook_text, read_notebook
from .grading import BEGIN, END, grade_cells, strip_solution
from .pairing import sync_pairs

BANNER_ID = "generated-banner"
SETUP_ID = "generated-setup"
# The stored data sets a lesson loads, for its setup cell.
_LOADS = re.compile(r"""kd\.load\(\s*["'](fashion_mnist|shakespeare|bible)["']""")


def setup_cell(datasets=()) -> str:
    """The source of a lesson's first code cell: make the notebook run where only it was copied.

    Outside the course repository (a fresh virtualenv, JupyterHub, Colab) it installs kdlib when it is
    missing — from the wheel or repository that ``KDLIB_WHEEL`` names, since kdlib is not on PyPI — and
    fetches the lesson's data sets when they are absent (:func:`kdlib.data.ensure`).  In the
    repository both are already there and it does nothing.
    """
    ensure = f"\nkdlib.data.ensure({', '.join(f'{d!r}'.replace(chr(39), chr(34)) for d in datasets)})" if datasets else ""
    return f"""\
# Setup: lets this notebook run where only the notebook was copied (a fresh virtualenv, JupyterHub, Colab);
# in the course repository it does nothing. kdlib is not on PyPI: where it is missing, set KDLIB_WHEEL to a
# kdlib wheel (a path or URL; see the README, "Use kdlib in your own work") or to "git+" followed by the
# course repository's address, and run this cell again.
import importlib.util
import os
import subprocess
import sys

if importlib.util.find_spec("kdlib") is None:
    KDLIB_WHEEL = os.environ.get("KDLIB_WHEEL", "")  # or write the wheel's path or URL here, in quotes
    if not KDLIB_WHEEL:
        raise ModuleNotFoundError(
            "kdlib is not installed here. Set KDLIB_WHEEL to a kdlib wheel (made in the course repository "
            "with `pip wheel . --no-deps -w dist`) or to git+ and the course repository's address, then run "
            "this cell again; or install it yourself: pip install <the wheel or the repository folder>.")
    subprocess.run([sys.executable, "-m", "pip", "install", KDLIB_WHEEL], check=True)
    importlib.invalidate_caches()
kdlib = importlib.import_module("kdlib"){ensure}"""


def datasets_used(notebook) -> list[str]:
    """The stored data sets (Fashion-MNIST, Shakespeare) a notebook loads with ``kd.load``, in order."""
    found = _LOADS.findall("\n".join(c.source for c in notebook.cells if c.cell_type == "code"))
    return list(dict.fromkeys(found))


def make_lesson(solution, solution_name: str):
    """The student notebook generated from a solution notebook (an ``nbformat`` node).

    Solution regions become nbgrader's stub; the cells of exercise checks (nbgrader's ``grade``
    cells, which raise until the exercise is done) are tagged ``raises-exception``; a banner and the
    :func:`setup_cell` come first.
    """
    import copy

    import nbformat

    lesson = grade_cells(copy.deepcopy(solution), solution_name)
    lesson.metadata.pop("jupytext", None)  # lessons are not paired with text files
    for i, cell in enumerate(lesson.cells):
        if cell.cell_type != "code":
            continue
        cell.update(outputs=[], execution_count=None)
        if BEGIN in cell.source or END in cell.source:
            cell.source, top_level = strip_solution(cell.source, f"{solution_name} cell {i}")
            tags = [t for t in cell.metadata.get("tags", []) if t != "raises-exception"]
            if top_level:
                tags.append("raises-exception")
            cell.metadata["tags"] = tags
        elif cell.metadata.get("nbgrader", {}).get("grade"):
            tags = [t for t in cell.metadata.get("tags", []) if t != "raises-exception"]
            cell.metadata["tags"] = tags + ["raises-exception"]
    banner = nbformat.v4.new_markdown_cell(
        f"*Generated from `solutions/{solution_name}` by `python -m kdlib course build`; "
        "edit the solution, not this file.* The first code cell sets up kdlib and the data where only this "
        "notebook was copied; in the course repository it does nothing.")
    banner.id = BANNER_ID
    setup = nbformat.v4.new_code_cell(setup_cell(datasets_used(solution)))
    setup.id = SETUP_ID
    lesson.cells[:0] = [banner, setup]
    return lesson



def expected_lessons(root: Path = ROOT) -> dict[str, str]:
    """File name → the JSON text ``lessons/`` should hold, generated from ``solutions/``."""
    return {p.name: notebook_text(make_lesson(read_notebook(p), p.name)) for p in sorted((root / "solutions").glob("*.ipynb"))}



def build(root: Path = ROOT) -> list[Path]:
    """``make lessons``: sync the ``.py`` pairs, write ``lessons/`` from ``solutions/``; return what changed.

    Lessons whose solution is gone are removed.
    """
    written = sync_pairs(root)
    lessons = root / "lessons"
    lessons.mkdir(exist_ok=True)
    wanted = expected_lessons(root)
    for name, text in wanted.items():
        path = lessons / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            written.append(path)
    for stale in lessons.glob("*.ipynb"):
        if stale.name not in wanted:
            stale.unlink()
    return written


