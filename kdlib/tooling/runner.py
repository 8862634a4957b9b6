"""Executing the solution notebooks: ``make course``'s full-size run, its results and its summary."""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from ..experiments.results import RESULTS_ENV
from . import ROOT, read_notebook

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
            nb = read_notebook(path)
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
