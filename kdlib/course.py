"""Course tooling: generate student lessons from solutions, run the course, record results.

One source of truth (nbgrader's idea): each notebook is written once, in ``solutions/``, with
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

The solutions are also nbgrader's source notebooks, so an instructor can release and autograde
them with nbgrader itself (README, "For instructors").  :func:`grade_cells` makes that so on every
:func:`build`: an exercise cell's check call (``kd.checks.check_x(...)`` after the solution region)
is moved into a cell of its own, the exercise cell gets nbgrader's *autograded answer* metadata
(``solution``, ``grade_id = "x"``) and the check cell nbgrader's *autograder test* metadata
(``grade``, ``locked``, 1 point, ``grade_id = "check_x"``).  A check raises when the answer is wrong
or missing (:mod:`kdlib.checks`), which is how nbgrader scores the cell 0; the lessons tag those
cells ``raises-exception``.  The stub is nbgrader's own (``raise NotImplementedError()``), so
``nbgrader generate_assignment`` and :func:`make_lesson` write the same code cells; a lesson adds
only the banner and a setup cell (:func:`setup_cell`) that installs kdlib and fetches the data where
only the notebook was copied.

Each solution notebook is also kept as paired plain text, ``solutions/NN_name.py`` in jupytext's
percent format (``# %%`` cell markers), which reviewers diff and ruff lints.  The ``.ipynb`` is
the source: :func:`build` (``make lessons``) rewrites each pair from its notebook.  The notebook's
``jupytext`` metadata pairs the two, so JupyterLab with jupytext saves both whichever one is open;
a ``.py`` edited elsewhere goes back into its notebook with ``jupytext --sync`` (keeping cell ids),
and :func:`build` refuses to overwrite a pair that differs from its notebook and is newer than it.
"""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
#: What replaces a solution region in a lesson: nbgrader's default stub for Python, so that
#: ``nbgrader generate_assignment`` and :func:`make_lesson` write the same code.
STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
RESULTS_ENV = "KDLIB_RESULTS"
BANNER_ID = "generated-banner"
SETUP_ID = "generated-setup"
PAIR_FORMAT = "py:percent"
# Notebook metadata that pairs a solution with its text file.  The filter keeps jupytext's own
# version out of the text header, so a different jupytext release does not rewrite every pair;
# nbgrader's cell metadata stays out of the .py too (build() derives it from the code).
PAIRING = {"formats": "ipynb,py:percent",
           "notebook_metadata_filter": "-jupytext.text_representation.jupytext_version",
           "cell_metadata_filter": "-nbgrader"}
#: nbgrader's cell-metadata schema version written by :func:`grade_cells`.
NBGRADER_SCHEMA = 3
#: Points for each exercise's check cell.
POINTS = 1
# A check call at the top level of a cell: ``kd.checks.check_x(...)`` or ``name = kd.checks.check_x(...)``.
_CHECK = re.compile(r"^(?:[\w, ]+=\s*)?kd\.checks\.(check_\w+)\(", re.M)
# The stored data sets a lesson loads, for its setup cell.
_LOADS = re.compile(r"""kd\.load\(\s*["'](fashion_mnist|shakespeare)["']""")

ROOT = Path(__file__).resolve().parent.parent


def strip_solution(source: str, where: str) -> tuple[str, bool]:
    """Replace every marked region in ``source``; return (new source, any region at top level)."""
    out, top_level, inside, indent = [], False, False, ""
    for line in source.splitlines():
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise ValueError(f"{where}: nested '{BEGIN}'.")
            inside, indent = True, line[: len(line) - len(line.lstrip())]
            top_level |= indent == ""
            out += [indent + stub for stub in STUB]
        elif stripped == END:
            if not inside:
                raise ValueError(f"{where}: '{END}' without '{BEGIN}'.")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{where}: '{BEGIN}' is never closed by '{END}'.")
    return "\n".join(out), top_level


def _split_check(cell):
    """Cut an exercise cell's trailing top-level code (its check call) into a new cell; None if there is none."""
    import nbformat

    lines = cell.source.split("\n")
    last_end = max(i for i, line in enumerate(lines) if line.strip() == END)
    tail = [i for i in range(last_end + 1, len(lines)) if lines[i].strip() and not lines[i][0].isspace()]
    if not tail:
        return None
    head, rest = "\n".join(lines[: tail[0]]).rstrip(), "\n".join(lines[tail[0]:]).strip("\n")
    if not _CHECK.search(rest):
        return None  # not a check: the code stays where it is
    cell.source = head
    check = nbformat.v4.new_code_cell(rest)
    check.id = f"{cell.id}-check"[:64] if cell.get("id") else None
    if check.id is None:
        del check["id"]
    return check


def grade_cells(solution, solution_name: str = "notebook"):
    """Give a solution notebook nbgrader's cell metadata, in place; return it.

    Every cell with a solution region becomes an *autograded answer* cell (``solution: true``), and
    the code cell right after it, which must call a ``kd.checks.check_x``, an *autograder test* cell
    (``grade: true``, ``locked``, :data:`POINTS` points); an exercise with no check gets the grade id
    ``exercise_N`` and nothing to autograde.  A check call at the end of the exercise cell
    itself is first moved into a cell of its own (id: the exercise's id + ``-check``).  The grade ids
    come from the check's name: ``x`` for the answer, ``check_x`` for its test.  Metadata on any
    other cell is removed, so running this twice changes nothing.
    """
    cells, exercises = [], []
    for i, cell in enumerate(solution.cells):
        cells.append(cell)
        if cell.cell_type == "code" and BEGIN in cell.source:
            strip_solution(cell.source, f"{solution_name} cell {i}")  # raises on broken markers
            check = _split_check(cell)
            if check is not None:
                cells.append(check)
            exercises.append(len(cells) - (2 if check is not None else 1))
    solution.cells = cells
    for cell in cells:
        cell.metadata.pop("nbgrader", None)
    used = set()
    for n, k in enumerate(exercises, start=1):
        answer = cells[k]
        test = next((c for c in cells[k + 1:] if c.cell_type == "code"), None)
        found = _CHECK.search(test.source) if test is not None and BEGIN not in test.source else None
        name = found.group(1)[len("check_"):] if found else f"exercise_{n}"  # no check: nothing to autograde
        while name in used:
            name += "_2"
        used.add(name)
        answer.metadata["nbgrader"] = {"grade": False, "grade_id": name, "locked": False,
                                       "schema_version": NBGRADER_SCHEMA, "solution": True, "task": False}
        if found:
            test.metadata["nbgrader"] = {"grade": True, "grade_id": f"check_{name}", "locked": True,
                                         "points": POINTS, "schema_version": NBGRADER_SCHEMA, "solution": False,
                                         "task": False}
    return solution


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


def _read(path: Path):
    import nbformat

    return nbformat.read(path, as_version=4)


def _nb_text(nb) -> str:
    """A notebook as the JSON text written to disk (nbformat's layout, final newline)."""
    import nbformat

    return nbformat.writes(nb) + "\n"


def paired(solution):
    """``solution`` with the ``jupytext`` metadata that pairs it with its percent-format ``.py``."""
    solution.metadata["jupytext"] = {**solution.metadata.get("jupytext", {}), **PAIRING}
    return solution


def pair_text(solution) -> str:
    """The paired text of a solution notebook: jupytext's percent format, as jupytext writes it."""
    import jupytext

    return jupytext.writes(paired(solution), PAIR_FORMAT)


def expected_pairs(root: Path = ROOT) -> dict[str, str]:
    """File name → the text each ``solutions/NN_name.py`` should hold, from its ``.ipynb``."""
    return {p.with_suffix(".py").name: pair_text(_read(p)) for p in sorted((root / "solutions").glob("*.ipynb"))}


def expected_lessons(root: Path = ROOT) -> dict[str, str]:
    """File name → the JSON text ``lessons/`` should hold, generated from ``solutions/``."""
    return {p.name: _nb_text(make_lesson(_read(p), p.name)) for p in sorted((root / "solutions").glob("*.ipynb"))}


class PairConflictError(ValueError):
    """A solution's ``.py`` pair was edited after its notebook: :func:`build` will not overwrite it."""


def _notebook_from_text(path: Path):
    """A new solution notebook read from a percent-format ``.py`` that has none yet.

    Cell ids follow the course's ``NN-MM`` convention (lesson number, cell number).
    """
    import jupytext

    nb = paired(jupytext.read(path, fmt=PAIR_FORMAT))
    for key in ("text_representation", "main_language"):  # they describe the .py; the kernelspec says Python
        nb.metadata["jupytext"].pop(key, None)
    nb.metadata.setdefault("kernelspec", {"display_name": "Python 3 (ipykernel)", "language": "python",
                                          "name": "python3"})
    for i, cell in enumerate(nb.cells):
        cell.id = f"{path.stem.split('_')[0]}-{i:02d}"
    return nb


def sync_pairs(root: Path = ROOT) -> list[Path]:
    """Write each ``solutions/*.py`` pair from its notebook; return the files written.

    The notebook is the source.  A notebook missing the pairing metadata gets it; a ``.py`` with no
    notebook (a lesson started as text) becomes one.  Nothing is written when a ``.py`` differs
    from its notebook and was modified after it — that is an edit made outside JupyterLab, which
    would be lost: :class:`PairConflictError` says how to keep or drop it.
    """
    solutions = root / "solutions"
    notebooks = {ipynb: _read(ipynb) for ipynb in sorted(solutions.glob("*.ipynb"))}
    notebooks.update({py.with_suffix(".ipynb"): _notebook_from_text(py) for py in sorted(solutions.glob("*.py"))
                      if not py.with_suffix(".ipynb").exists()})
    plan, conflicts = [], []
    for ipynb, nb in sorted(notebooks.items()):
        grade_cells(nb, ipynb.name)
        text = pair_text(nb)  # also adds the pairing metadata to nb
        py = ipynb.with_suffix(".py")
        if (ipynb.exists() and py.exists() and py.read_text() != text
                and py.stat().st_mtime_ns > ipynb.stat().st_mtime_ns):
            conflicts.append(py)
        plan += [(ipynb, _nb_text(nb)), (py, text)]
    if conflicts:
        names = " ".join(f"solutions/{p.name}" for p in conflicts)
        raise PairConflictError(
            f"{names}: changed after the notebook and now different from it, so nothing was written. "
            f"To keep the change, carry it into the notebook (cell ids are kept): `jupytext --sync {names}`; "
            "to drop it, delete the .py. Then run `make lessons` again.")
    written = []
    for path, content in plan:
        if not path.exists() or path.read_text() != content:
            path.write_text(content)
            written.append(path)
    return written


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


def record(key: str, value, notebook: str | None = None) -> None:
    """Add a headline result to the course summary (a no-op unless ``KDLIB_RESULTS`` is set).

    ``make course`` sets it; the summary then lists each notebook's key numbers.
    """
    target = os.environ.get(RESULTS_ENV)
    if not target:
        return
    path = Path(target)
    results = json.loads(path.read_text()) if path.exists() else {}
    section = notebook or os.environ.get("KDLIB_NOTEBOOK", "unknown")
    results.setdefault(section, {})[key] = value
    path.write_text(json.dumps(results, indent=2, default=str))


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # terminal colour codes, as in IPython tracebacks


def _plain(text: str) -> str:
    """``text`` as one line of plain text for a Markdown table: no colour codes, newlines or bare pipes."""
    return " ".join(_ANSI.sub("", text).split()).replace("|", "\\|")


def _execute(nb, folder: Path, timeout: int) -> str:
    """Run ``nb`` in a fresh kernel; return ``"ok"`` or ``"FAILED at cell N of M: what happened"``.

    A cell that raises, a cell still running after ``timeout`` seconds, and a kernel that dies are
    all reported this way (the kernel is shut down), so the caller can go on with the next notebook.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    current: list[int] = []
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(folder)}},
                            on_cell_start=lambda cell, cell_index: current.append(cell_index))
    try:
        client.execute()
        return "ok"
    except Exception as err:  # noqa: BLE001 - any failure is reported, and the course run goes on
        if isinstance(err, CellTimeoutError):
            what = f"timed out after {timeout} s"
        elif isinstance(err, DeadKernelError):
            what = "the kernel died (out of memory, a crash, or the process exited)"
        elif isinstance(err, CellExecutionError):  # its last line is the exception, e.g. "ValueError: ..."
            what = ([line for line in str(err).splitlines() if line.strip()] or [type(err).__name__])[-1]
        else:
            what = f"{type(err).__name__}: {err}"
        where = f"cell {current[-1] + 1} of {len(nb.cells)}" if current else "before the first cell"
        return _plain(f"FAILED at {where}: {what}")[:300]


def run(out: Path, names: list[str] | None = None, timeout: int = 1800, root: Path = ROOT) -> int:
    """Execute every solution notebook at full size into ``out``; write ``summary.md``.

    Each notebook runs in a fresh kernel with a per-cell ``timeout`` in seconds.  A notebook that
    fails — a cell raises or times out, or its kernel dies — is reported with its cell number in
    plain text, and the run goes on with the next; the summary is always written.  Returns the
    number of notebooks that failed.
    """
    import nbformat

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.json"
    results_path.unlink(missing_ok=True)
    env_before = {k: os.environ.get(k) for k in ("KDLIB_SMOKE", RESULTS_ENV, "KDLIB_NOTEBOOK")}
    os.environ.pop("KDLIB_SMOKE", None)
    os.environ[RESULTS_ENV] = str(results_path.resolve())
    rows, failures = [], 0
    try:
        for path in sorted((root / "solutions").glob("*.ipynb")):
            if names and not any(n in path.name for n in names):
                continue
            os.environ["KDLIB_NOTEBOOK"] = path.stem
            nb = _read(path)
            print(f"running {path.name} ...", flush=True)
            start = time.perf_counter()
            status = _execute(nb, path.parent, timeout)
            failures += status != "ok"
            seconds = time.perf_counter() - start
            nbformat.write(nb, out / path.name)
            rows.append((path.name, seconds, status))
            print(f"  {status} in {seconds:.0f} s", flush=True)
    finally:
        for k, v in env_before.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    lines = ["# Course run (full size)", "", "| notebook | seconds | status |", "|---|---:|---|"]
    lines += [f"| {n} | {s:.0f} | {st} |" for n, s, st in rows]
    for section, values in results.items():
        lines += ["", f"## {section}", ""] + [f"- {k}: {v}" for k, v in values.items()]
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print(f"\nwrote {out / 'summary.md'}")
    return failures
