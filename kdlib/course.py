"""Course tooling: generate student lessons from solutions, run the course, record results.

One source of truth (nbgrader's idea): each notebook is written once, in ``solutions/``, with
exercise regions marked in its code cells::

    def kd_loss(student_logits, teacher_logits, labels, T, alpha):
        ### BEGIN SOLUTION
        ...the answer...
        ### END SOLUTION

:func:`make_lesson` turns it into the student copy in ``lessons/``: each region becomes
``raise NotImplementedError(...)`` under a ``# YOUR CODE HERE`` line, at the same indentation.
A region at the top level of a cell (not inside a function) makes that cell raise, so the cell
is tagged ``raises-exception`` for nbval; a region inside a function raises only when called,
and the exercise checks (:mod:`kdlib.checks`) report that as "not done yet" and let the lesson
continue with kdlib's reference implementation.  ``tests/test_course.py`` fails when
``lessons/`` is not exactly what the generator makes of ``solutions/``.
"""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
RESULTS_ENV = "KDLIB_RESULTS"
BANNER_ID = "generated-banner"

ROOT = Path(__file__).resolve().parent.parent


def _strip_region(source: str, where: str) -> tuple[str, bool]:
    """Replace every marked region in ``source``; return (new source, any region at top level)."""
    out, top_level, inside, indent = [], False, False, ""
    for line in source.splitlines():
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise ValueError(f"{where}: nested '{BEGIN}'.")
            inside, indent = True, line[: len(line) - len(line.lstrip())]
            top_level |= indent == ""
            out += [f"{indent}# YOUR CODE HERE", f'{indent}raise NotImplementedError("Exercise: your code goes here")']
        elif stripped == END:
            if not inside:
                raise ValueError(f"{where}: '{END}' without '{BEGIN}'.")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{where}: '{BEGIN}' is never closed by '{END}'.")
    return "\n".join(out), top_level


def make_lesson(solution, solution_name: str):
    """The student notebook generated from a solution notebook (an ``nbformat`` node)."""
    import copy

    import nbformat

    lesson = copy.deepcopy(solution)
    for i, cell in enumerate(lesson.cells):
        if cell.cell_type != "code":
            continue
        cell.update(outputs=[], execution_count=None)
        if BEGIN in cell.source or END in cell.source:
            cell.source, top_level = _strip_region(cell.source, f"{solution_name} cell {i}")
            tags = [t for t in cell.metadata.get("tags", []) if t != "raises-exception"]
            if top_level:
                tags.append("raises-exception")
            cell.metadata["tags"] = tags
    banner = nbformat.v4.new_markdown_cell(
        f"*Generated from `solutions/{solution_name}` by `python -m kdlib course build`; "
        "edit the solution, not this file.*")
    banner.id = BANNER_ID
    lesson.cells.insert(0, banner)
    return lesson


def _read(path: Path):
    import nbformat

    return nbformat.read(path, as_version=4)


def expected_lessons(root: Path = ROOT) -> dict[str, str]:
    """File name → the JSON text ``lessons/`` should hold, generated from ``solutions/``."""
    import nbformat

    return {p.name: nbformat.writes(make_lesson(_read(p), p.name)) + "\n"
            for p in sorted((root / "solutions").glob("*.ipynb"))}


def build(root: Path = ROOT) -> list[Path]:
    """Write ``lessons/`` from ``solutions/``; remove lessons whose solution is gone."""
    lessons = root / "lessons"
    lessons.mkdir(exist_ok=True)
    wanted = expected_lessons(root)
    written = []
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


def run(out: Path, names: list[str] | None = None, timeout: int = 1800, root: Path = ROOT) -> int:
    """Execute every solution notebook at full size into ``out``; write ``summary.md``.

    Returns the number of notebooks that failed.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

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
            status = "ok"
            try:
                NotebookClient(nb, timeout=timeout, kernel_name="python3",
                               resources={"metadata": {"path": str(path.parent)}}).execute()
            except CellExecutionError as err:
                status, failures = f"FAILED: {str(err).strip().splitlines()[-1][:200]}", failures + 1
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
