"""Executing notebooks: the one runner behind ``make course`` (full size) and ``make book`` (smoke size).

* :func:`execute_notebook` runs one notebook in a fresh kernel and returns a :class:`NotebookRun`:
  ``"ok"``, or one line of plain text saying where and how it failed — a cell that raised, a cell
  past its timeout, a kernel that died, a file that is no readable notebook;
* :func:`run_all` runs a set of them into a folder, in the smoke or the full size, and keeps that
  folder's ``summary.md`` (run time and status of each notebook, then the headline numbers the
  notebooks recorded) up to date after every notebook, so it is there whatever happens;
* :func:`run` is ``make course``: every solution at full size into ``build/course/``.

The environment is given to each kernel, never changed in this process.
"""
from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from ..experiments.results import RESULTS_ENV
from ..runtime import SMOKE_ENV
from . import ROOT

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # terminal colour codes, as in IPython tracebacks
#: Longest status line kept in a summary.
STATUS_CHARS = 300


def _plain(text: str) -> str:
    """``text`` as one line of plain text: no colour codes, no newlines."""
    return " ".join(_ANSI.sub("", text).split())


def _cell(text: str) -> str:
    """``text`` for a cell of a Markdown table: its pipes escaped."""
    return text.replace("|", r"\|")


@dataclass(frozen=True)
class NotebookRun:
    """What running one notebook gave: its ``status`` (``"ok"`` or ``"FAILED ..."``, one line of
    plain text), its wall time in ``seconds``, and the executed copy it ``wrote`` (``None`` if none)."""

    path: Path
    status: str
    seconds: float
    wrote: Path | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def name(self) -> str:
        return self.path.name


def _failure(err: Exception, timeout: int) -> str:
    """What went wrong in a notebook run, in words."""
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    if isinstance(err, CellTimeoutError):
        return f"timed out after {timeout} s"
    if isinstance(err, DeadKernelError):
        return "the kernel died (out of memory, a crash, or the process exited)"
    if isinstance(err, CellExecutionError):  # its last line is the exception, e.g. "ValueError: ..."
        return ([line for line in str(err).splitlines() if line.strip()] or [type(err).__name__])[-1]
    return f"{type(err).__name__}: {err}"


def _execute(nb, folder: Path, timeout: int, env: Mapping[str, str]) -> str:
    """Run ``nb`` in place in a fresh kernel (working folder ``folder``, environment ``env``); return
    ``"ok"`` or ``"FAILED at cell N of M: what happened"``.  The kernel is shut down either way."""
    from nbclient import NotebookClient

    current: list[int] = []
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(folder)}},
                            on_cell_start=lambda cell, cell_index: current.append(cell_index))
    try:
        client.execute(env=dict(env))
        return "ok"
    except Exception as err:  # noqa: BLE001 - any failure is reported, and the caller goes on
        where = f"cell {current[-1] + 1} of {len(nb.cells)}" if current else "before the first cell"
        return _plain(f"FAILED at {where}: {_failure(err, timeout)}")[:STATUS_CHARS]


def _read(path: Path):
    """The notebook at ``path`` (nbformat 4), or a ``"FAILED: ..."`` line if it is none."""
    import nbformat

    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        return nb
    except Exception as err:  # noqa: BLE001 - unreadable JSON, a schema error, a missing file
        return _plain(f"FAILED: not a readable notebook ({type(err).__name__}: {err})")[:STATUS_CHARS]


def _kernel_env(changes: Mapping[str, str | None]) -> dict[str, str]:
    """This process's environment with ``changes`` applied (a value of ``None`` removes the variable)."""
    env = dict(os.environ)
    for key, value in changes.items():
        env.pop(key, None) if value is None else env.__setitem__(key, str(value))
    return env


def execute_notebook(path: Path, out: Path | None = None, *, timeout: int = 1800,
                     env: Mapping[str, str | None] | None = None) -> NotebookRun:
    """Execute the notebook at ``path`` in a fresh kernel; write the executed copy into folder ``out``.

    The kernel runs in the notebook's own folder, with this process's environment changed by
    ``env`` (``None`` removes a variable), and each cell may take ``timeout`` seconds.  A failing
    notebook raises nothing: the failure is the returned status, and the copy is written with the
    outputs so far (no copy when the file is no readable notebook).
    """
    import nbformat

    path, start = Path(path), time.perf_counter()
    nb = _read(path)
    if isinstance(nb, str):
        return NotebookRun(path, nb, time.perf_counter() - start)
    status = _execute(nb, path.parent, timeout, _kernel_env(env or {}))
    wrote = None
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        wrote = Path(out) / path.name
        nbformat.write(nb, wrote)
    return NotebookRun(path, status, time.perf_counter() - start, wrote)


def summary(runs: Iterable[NotebookRun], smoke: bool, results: Mapping[str, Mapping] | None = None) -> str:
    """``summary.md``: a table of each notebook's run time and status, then the recorded headline numbers."""
    lines = [f"# Course run ({'smoke' if smoke else 'full'} size)", "", "| notebook | seconds | status |", "|---|---:|---|"]
    lines += [f"| {r.name} | {r.seconds:.0f} | {_cell(r.status)} |" for r in runs]
    for section, values in (results or {}).items():
        lines += ["", f"## {section}", ""] + [f"- {k}: {v}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def _write_summary(out: Path, runs: list[NotebookRun], smoke: bool, results_path: Path | None) -> None:
    try:
        results = json.loads(results_path.read_text()) if results_path and results_path.exists() else {}
    except ValueError:  # a notebook left the file half-written: the table still matters most
        results = {}
    (out / "summary.md").write_text(summary(runs, smoke, results))


def run_all(paths: Iterable[Path], out: Path, *, smoke: bool, timeout: int = 1800, results: bool = True,
            env: Mapping[str, str | None] | None = None) -> list[NotebookRun]:
    """Execute each notebook of ``paths`` in its own fresh kernel into ``out``; keep ``out/summary.md``.

    ``smoke`` sets ``KDLIB_SMOKE=1`` for the kernels (else it is removed: the full size); each also
    gets ``KDLIB_NOTEBOOK`` (its name) and, with ``results``, ``KDLIB_RESULTS``, so that what the
    notebooks record (:func:`kdlib.experiments.record`) lands in ``out/results.json`` and in the
    summary.  ``env`` changes further variables.  A failure is reported and the run goes on; the
    summary is rewritten after every notebook, and at the end even when the run is interrupted.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results_path = (out / "results.json").resolve() if results else None
    if results_path:
        results_path.unlink(missing_ok=True)
    base = {SMOKE_ENV: "1" if smoke else None, RESULTS_ENV: str(results_path) if results_path else None,
            **(env or {})}
    runs: list[NotebookRun] = []
    try:
        for path in paths:
            print(f"running {Path(path).name} ...", flush=True)
            runs.append(execute_notebook(path, out, timeout=timeout, env={**base, "KDLIB_NOTEBOOK": Path(path).stem}))
            print(f"  {runs[-1].status} in {runs[-1].seconds:.0f} s", flush=True)
            _write_summary(out, runs, smoke, results_path)
    finally:
        _write_summary(out, runs, smoke, results_path)
    return runs


def solutions(root: Path = ROOT, names: list[str] | None = None) -> list[Path]:
    """The solution notebooks of ``root``, sorted; only those whose file name contains one of ``names``."""
    return [p for p in sorted((root / "solutions").glob("*.ipynb")) if not names or any(n in p.name for n in names)]


def run(out: Path, names: list[str] | None = None, timeout: int = 1800, root: Path = ROOT) -> int:
    """``make course``: execute every solution notebook (or those matching ``names``) at full size into
    ``out`` with :func:`run_all`; return the number of notebooks that failed."""
    runs = run_all(solutions(root, names), out, smoke=False, timeout=timeout)
    print(f"\nwrote {Path(out) / 'summary.md'}")
    return sum(not r.ok for r in runs)
