"""Executing notebooks: the one runner behind ``make course`` (full size) and ``make book`` (smoke size).

* :func:`execute_notebook` runs one notebook in a fresh kernel and returns a :class:`NotebookRun`:
  ``"ok"``, or one line of plain text saying where and how it failed — a cell that raised, a cell
  past its timeout, a kernel that died, a file that is no readable notebook;
* :func:`run_all` runs a set of them into a folder, in the smoke or the full size, and keeps that
  folder's ``summary.md`` (run time and status of each notebook, then the headline numbers the
  notebooks recorded) up to date after every notebook, so it is there whatever happens.  A run of
  some notebooks *adds to* the folder: the other notebooks' rows and numbers from earlier runs stay
  (marked as earlier), and a notebook's earlier numbers are replaced only once it has run again;
* :func:`run` is ``make course``: every solution at full size into ``build/course/``; a name that
  matches no notebook is an error listing them, before anything runs or changes.

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


#: The folder's record of every notebook run into it (name → seconds, status, when, size).
RUNS_FILE = "runs.json"
#: Marks a summary row that an earlier run wrote (the notebook did not run this time).
EARLIER = " (earlier run)"


def summary(runs: Iterable[NotebookRun], smoke: bool, results: Mapping[str, Mapping] | None = None) -> str:
    """``summary.md``: a table of each notebook's run time and status, then the recorded headline numbers."""
    lines = [f"# Course run ({'smoke' if smoke else 'full'} size)", "", "| notebook | seconds | status |", "|---|---:|---|"]
    lines += [f"| {r.name} | {r.seconds:.0f} | {_cell(r.status)} |" for r in runs]
    for section, values in (results or {}).items():
        lines += ["", f"## {section}", ""] + [f"- {k}: {v}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def load_json(path: Path) -> dict:
    """A JSON object from ``path``; empty when there is none or it is half-written."""
    try:
        value = json.loads(path.read_text()) if path.exists() else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@dataclass
class _Folder:
    """What a run folder held before this run: its runs and recorded results, kept until replaced."""

    out: Path
    smoke: bool
    runs: dict
    results: dict

    @classmethod
    def open(cls, out: Path, smoke: bool) -> "_Folder":
        runs = load_json(out / RUNS_FILE)
        sizes = {entry.get("smoke") for entry in runs.values()}
        if runs and sizes != {smoke}:
            raise ValueError(f"{out} holds a {'smoke' if not smoke else 'full'}-size run; run the "
                             f"{'smoke' if smoke else 'full'} size into another folder (--out), so neither overwrites "
                             "the other.")
        return cls(out, smoke, runs, load_json(out / "results.json"))

    def publish(self, runs: list[NotebookRun], new_results: Path | None) -> None:
        """Write ``runs.json``, ``results.json`` and ``summary.md``: this run's notebooks over the earlier ones."""
        now = time.strftime("%Y-%m-%d %H:%M")
        fresh = {r.name: {"seconds": round(r.seconds, 1), "status": r.status, "when": now, "smoke": self.smoke}
                 for r in runs}
        merged = {**self.runs, **fresh}
        _write_atomic(self.out / RUNS_FILE, json.dumps(merged, indent=2))
        ran = {Path(name).stem for name in fresh}
        results = {k: v for k, v in self.results.items() if k not in ran}
        results.update(load_json(new_results) if new_results else {})
        if new_results:
            _write_atomic(self.out / "results.json", json.dumps(results, indent=2, default=str))
        rows = [NotebookRun(Path(name), entry["status"] + ("" if name in fresh else f"{EARLIER}, {entry.get('when', '?')}"),
                            entry["seconds"]) for name, entry in sorted(merged.items())]
        ordered = {k: results[k] for k in sorted(results)}
        _write_atomic(self.out / "summary.md", summary(rows, self.smoke, ordered))


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
    folder = _Folder.open(out, smoke)
    new_results = (out / ".results.new.json").resolve() if results else None
    if new_results:
        new_results.unlink(missing_ok=True)  # this run's own records; results.json changes only as notebooks finish
    base = {SMOKE_ENV: "1" if smoke else None, RESULTS_ENV: str(new_results) if new_results else None,
            **(env or {})}
    runs: list[NotebookRun] = []
    try:
        for path in paths:
            print(f"running {Path(path).name} ...", flush=True)
            runs.append(execute_notebook(path, out, timeout=timeout, env={**base, "KDLIB_NOTEBOOK": Path(path).stem}))
            print(f"  {runs[-1].status} in {runs[-1].seconds:.0f} s", flush=True)
            folder.publish(runs, new_results)
    finally:
        folder.publish(runs, new_results)
        if new_results:
            new_results.unlink(missing_ok=True)
    return runs


def solutions(root: Path = ROOT, names: list[str] | None = None) -> list[Path]:
    """The solution notebooks of ``root``, sorted; only those whose file name contains one of ``names``."""
    return [p for p in sorted((root / "solutions").glob("*.ipynb")) if not names or any(n in p.name for n in names)]


def check_names(names: list[str] | None, root: Path = ROOT) -> None:
    """Raise ``ValueError`` listing the solution notebooks when a name matches none of them."""
    every = solutions(root)
    unknown = [n for n in names or [] if not any(n in p.name for p in every)]
    if unknown:
        raise ValueError(f"no solution notebook matches {', '.join(map(repr, unknown))}; the notebooks are: "
                         + ", ".join(p.stem for p in every))


def run(out: Path, names: list[str] | None = None, timeout: int = 1800, root: Path = ROOT) -> int:
    """``make course``: execute every solution notebook (or those matching ``names``) at full size into
    ``out`` with :func:`run_all`; return the number of notebooks that failed.  Unknown names are an
    error before anything runs (:func:`check_names`)."""
    check_names(names, root)
    runs = run_all(solutions(root, names), out, smoke=False, timeout=timeout)
    print(f"\nwrote {Path(out) / 'summary.md'}")
    return sum(not r.ok for r in runs)
