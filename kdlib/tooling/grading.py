"""nbgrader's conventions in the solutions: solution regions, nbgrader's stub, answer and check cells.

The solutions are also nbgrader's source notebooks, so an instructor can release and autograde
them with nbgrader itself (README, "For instructors").  :func:`grade_cells` makes that so on every
``make lessons``: an exercise cell's check call (``from kdlib.checks import check_x`` and
``check_x(...)`` after the solution region; the check is imported in the locked cell itself, so an
answer cell that rebinds ``kd`` or ``check_x`` cannot stand in for it) is moved into a cell of its
own, the exercise cell gets nbgrader's *autograded answer* metadata (``solution``, ``grade_id = "x"``) and the check cell nbgrader's *autograder test* metadata
(``grade``, ``locked``, 1 point, ``grade_id = "check_x"``).  A check raises when the answer is wrong
or missing (:mod:`kdlib.checks`), which is how nbgrader scores the cell 0; the lessons tag those
cells ``raises-exception``.  The stub is nbgrader's own (``raise NotImplementedError()``), so
``nbgrader generate_assignment`` and :func:`kdlib.tooling.lessons.make_lesson` write the same code cells; a lesson adds
only the banner and a setup cell (:func:`kdlib.tooling.lessons.setup_cell`) that installs kdlib and fetches the data where
only the notebook was copied.
"""
from __future__ import annotations

import re

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
#: What replaces a solution region in a lesson: nbgrader's default stub for Python, so that
#: ``nbgrader generate_assignment`` and :func:`kdlib.tooling.lessons.make_lesson` write the same code.
STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
#: nbgrader's cell-metadata schema version written by :func:`grade_cells`.
NBGRADER_SCHEMA = 3
#: Points for each exercise's check cell.
POINTS = 1
#: A check cell: ``from kdlib.checks import check_x`` then ``check_x(...)`` (the check taken from kdlib in the
#: locked cell itself, so an answer cell that rebinds ``kd`` or ``check_x`` cannot stand in for it), or
#: ``kd.checks.check_x(...)``.
_CHECK = re.compile(r"^(?:[\w, ]+=\s*)?(?:kd\.checks\.)?(check_\w+)\(", re.M)
_CHECK_IMPORT = re.compile(r"^from kdlib\.checks import (check_\w+)\s*$", re.M)


def _check_name(source: str) -> str | None:
    """The ``check_x`` a check cell calls (``kd.checks.check_x(...)``, or ``check_x(...)`` after importing it
    from ``kdlib.checks`` in the same cell), else ``None``."""
    for found in _CHECK.finditer(source):
        if found.group(0).rstrip("(").endswith("kd.checks." + found.group(1)) or \
                found.group(1) in _CHECK_IMPORT.findall(source):
            return found.group(1)
    return None


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
    if _check_name(rest) is None:
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
    the code cell right after it, which must call a check (``from kdlib.checks import check_x`` and
    ``check_x(...)``, or ``kd.checks.check_x(...)``), an *autograder test* cell
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
        found = _check_name(test.source) if test is not None and BEGIN not in test.source else None
        name = found[len("check_"):] if found else f"exercise_{n}"  # no check: nothing to autograde
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


