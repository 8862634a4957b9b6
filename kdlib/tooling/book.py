"""``make book``: the course as a static HTML site (Jupyter Book), from the executed notebooks.

:func:`build` turns executed solution notebooks into a Jupyter Book project and builds it with
``jupyter-book build``, offline (MathJax is served from the site itself by ``sphinx-mathjax-offline``):

* the notebooks come from ``build/course/`` (``make course``, full size) when all of them are there;
  otherwise every solution is executed in the smoke size into ``build/book-smoke/`` first, and the
  site says so on its front page;
* the front page has the lesson table (title, run time) and the headline numbers of ``summary.md``;
* exercise answers are left out, as in ``lessons/``: each solution region is replaced by nbgrader's
  stub, while the outputs of the solved run (the checks' ✓) stay;
* an ipywidget, which needs a live kernel, is replaced by its fallback: the figure or text it showed
  when the notebook ran (read from the widget state saved in the notebook) and its slider settings.

The site is written to ``build/book/_build/html/`` (``index.html`` is the front page).
"""
from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from . import ROOT, NotebookError, read_notebook, runner
from .grading import BEGIN, strip_solution

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
#: At most this many headline numbers per lesson in the front page's table (all are listed below it).
HEADLINES_PER_LESSON = 3


def execute(out: Path, names: list[str] | None = None, smoke: bool = True, timeout: int = 1800,
            root: Path = ROOT) -> list[Path]:
    """Execute solution notebooks (all, or those whose name contains one of ``names``) into ``out``.

    In the smoke size by default, as a stand-in when the full-size run of ``make course`` is absent;
    the course's one runner (:func:`kdlib.tooling.runner.run_all`) does it and writes ``summary.md``,
    without headline numbers.  Returns the executed copies; raises ``RuntimeError`` naming the
    notebooks that failed, and how (the summary says it too).
    """
    runs = runner.run_all(runner.solutions(root, names), out, smoke=smoke, timeout=timeout, results=False)
    failed = [f"{r.name} ({r.status})" for r in runs if not r.ok]
    if failed:
        raise RuntimeError(f"these notebooks failed to run: {'; '.join(failed)} (see their outputs in {out})")
    return [r.wrote for r in runs]


def parse_summary(text: str) -> tuple[dict[str, float], dict[str, list[tuple[str, str]]]]:
    """``summary.md`` → (notebook file name → seconds, notebook stem → [(headline, value), ...])."""
    seconds = {m.group(1): float(m.group(2)) for m in re.finditer(r"^\| (\S+\.ipynb) \| ([\d.]+) \|", text, re.M)}
    results: dict[str, list[tuple[str, str]]] = {}
    section = None
    for line in text.splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
            results[section] = []
        elif section and line.startswith("- ") and ": " in line:
            key, value = line[2:].rsplit(": ", 1)
            results[section].append((key.strip(), value.strip()))
    return seconds, results


def _bar(value: float, total: float, width: int = 10) -> str:
    """A progress bar's fill as text: ``width`` cells, full ones for the share done."""
    done = min(max(value / total, 0.0), 1.0) if total else 0.0
    return ("█" * round(done * width)).ljust(width)


def _widget_fallback(output: dict, state: dict) -> list:
    """The outputs that stand in for a widget in a static page: what it showed, and its settings.

    A progress bar (tqdm in a notebook) is no interactive widget: it is kept as its final text line.
    """
    import nbformat

    view = output["data"][WIDGET_VIEW]
    settings, shown, progress, parts = [], [], [], []

    def walk(model_id: str) -> None:
        model = state.get(model_id)
        if model is None:
            return
        s = model.get("state", {})
        name = model.get("model_name", "")
        if name.endswith("ProgressModel"):
            progress.append(name)
            parts.append(_bar(s.get("value") or 0, s.get("max") or 0))
        elif name == "HTMLModel":
            text = html.unescape(re.sub(r"<[^>]+>", "", s.get("value") or "")).replace("\u2007", " ")  # tqdm's figure spaces
            parts.append(text.strip())
        if name.endswith("SliderModel"):
            settings.append(f"{s.get('description') or 'value'} = {s.get('value')}")
        elif name == "OutputModel":
            shown.extend(s.get("outputs", []))
        elif name == "HTMLModel" and s.get("value"):
            shown.append({"output_type": "display_data", "metadata": {}, "data": {"text/html": s["value"]}})
        for child in s.get("children", []):
            walk(str(child).removeprefix("IPY_MODEL_"))

    walk(view.get("model_id", ""))
    if progress and not settings:
        # the bar's last state (the widget state saved when the notebook finished), as tqdm prints it on a
        # console: "left|██████████| right"; the text/plain copy is only the first frame
        text = "|".join(p for p in parts if p) if len(parts) > 1 else "".join(output["data"].get("text/plain", ""))
        return [nbformat.v4.new_output("stream", name="stdout", text=text + "\n")] if text else []
    note = ("<p><em>An interactive widget: below is what it showed when this notebook ran"
            + (f" ({html.escape(', '.join(settings))})" if settings else "")
            + ". Run the lesson in Jupyter to move its sliders.</em></p>")
    return [nbformat.v4.new_output("display_data", data={"text/html": note})] + [nbformat.from_dict(o) for o in shown]


def for_the_book(nb):
    """An executed solution notebook as the book shows it: no answers, widgets replaced by their fallback."""
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if BEGIN in cell.source:
            cell.source = strip_solution(cell.source, f"cell {i}")[0]
        outputs = []
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(WIDGET_VIEW)
            outputs += _widget_fallback(output, state) if view else [output]
        cell.outputs = outputs
    nb.metadata.pop("widgets", None)  # nothing left for the widget JavaScript (a CDN download) to render
    nb.metadata.pop("jupytext", None)
    return nb


def _title(nb, fallback: str) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            m = re.search(r"^#\s+(.+)$", cell.source, re.M)
            if m:
                return m.group(1).strip()
    return fallback


def _front_page(lessons: list[tuple[str, str]], summary: str, smoke: bool) -> str:
    seconds, results = parse_summary(summary)
    readme = (ROOT / "README.md").read_text() if (ROOT / "README.md").exists() else ""
    intro = readme.split("\n\n")[1].strip() if readme.count("\n\n") > 1 else ""
    lines = ["# Distilled Giants", "", intro, ""]
    if smoke:
        lines += ["```{note}", "This site was built from **smoke-size** runs (a slice of the data, one epoch): its numbers "
                  "are not the course's results. Run `make course`, then `make book`, for the full-size book.", "```", ""]
    else:
        lines += ["Every lesson below was executed at full size by `make course`; its code and outputs are shown as "
                  "they ran, except the exercises' answers, which stay with the instructors (as in `lessons/`).", ""]
    lines += ["## The lessons", "", "| # | lesson | run time | headline numbers |", "|---|---|---:|---|"]
    for stem, title in lessons:
        heads = results.get(stem, [])[:HEADLINES_PER_LESSON]
        cell = "<br>".join(f"{html.escape(k)}: **{html.escape(v)}**" for k, v in heads) or "—"
        run = f"{seconds[stem + '.ipynb']:.0f} s" if stem + ".ipynb" in seconds else "—"
        lines.append(f"| {stem[:2]} | [{title}]({stem}.ipynb) | {run} | {cell} |")
    if any(results.values()):
        lines += ["", "## All headline numbers", "",
                  "Recorded by the notebooks themselves (`kd.experiments.record`) in the run this site shows.", ""]
        for stem, title in lessons:
            if results.get(stem):
                lines += [f"### {title}", ""] + [f"- {k}: **{v}**" for k, v in results[stem]] + [""]
    return "\n".join(lines) + "\n"


def _config(smoke: bool) -> str:
    return f"""\
# Written by `make book` (kdlib/book.py); edit that, not this file.
title: "Distilled Giants{' (smoke size)' if smoke else ''}"
author: "the Distilled Giants course"
copyright: "{time.strftime('%Y')}"
only_build_toc_files: true
execute:
  execute_notebooks: "off"    # the notebooks were executed by `make course` (or in the smoke size)
parse:
  myst_enable_extensions: [amsmath, colon_fence, dollarmath]
html:
  home_page_in_navbar: true
  use_repository_button: false
  use_issues_button: false
  use_edit_page_button: false
launch_buttons:
  thebe: false
sphinx:
  extra_extensions: ["sphinx-mathjax-offline"]   # MathJax from the site itself, not a CDN
  config:
    mathjax_path: "mathjax/tex-chtml.js"
    html_show_sourcelink: false
    nb_ipywidgets_js: {{}}
    suppress_warnings: ["mystnb.unknown_mime_type"]
"""


def full_size_available(source: Path, root: Path = ROOT) -> bool:
    """Whether ``source`` holds a *successful* executed copy of every solution notebook, and its summary.

    Success is read from the run folder's record (:data:`kdlib.tooling.runner.RUNS_FILE`, else the
    summary's table): a notebook that failed, or that the record does not list, makes the run incomplete.
    """
    from .runner import RUNS_FILE, load_json

    wanted = [p.name for p in (root / "solutions").glob("*.ipynb")]
    if not (source / "summary.md").is_file() or not all((source / n).is_file() for n in wanted):
        return False
    runs = load_json(source / RUNS_FILE)
    if runs:
        return all(runs.get(n, {}).get("status") == "ok" for n in wanted)
    statuses = {line.split("|")[1].strip(): line.split("|")[3].strip()
                for line in (source / "summary.md").read_text().splitlines()
                if line.startswith("| ") and line.count("|") >= 4 and ".ipynb" in line}
    return all(statuses.get(n, "").startswith("ok") for n in wanted)


def _pick_source(source: Path | None, root: Path) -> tuple[Path, bool]:
    """The folder of executed notebooks to publish, and whether they ran in the smoke size.

    By default ``build/course/`` when it is complete, else the smoke-size run in ``build/book-smoke/``,
    executed now if it is missing.  A given ``source`` is smoke-size unless its summary says otherwise.
    """
    if source is not None:
        if not Path(source).is_dir():
            raise FileNotFoundError(f"--source {source} is not a folder of executed notebooks (make course writes "
                                    "build/course/).")
        summary = Path(source) / "summary.md"
        return Path(source), ("smoke size" in summary.read_text().splitlines()[0]) if summary.exists() else True
    if full_size_available(root / "build" / "course", root):
        return root / "build" / "course", False
    source = root / "build" / "book-smoke"
    if not full_size_available(source, root):  # missing, or left incomplete or failed by an earlier run
        print(f"No complete full-size run in build/course/ (make course): executing every lesson in the smoke "
              f"size into {source} first...", flush=True)
        execute(source, root=root)
    return source, True


def _write_project(src: Path, source: Path, names: list[str] | None, smoke: bool) -> int:
    """The Jupyter Book project in ``src``: the notebooks as the book shows them, the front page,
    ``_config.yml`` and ``_toc.yml``.  Returns how many lessons it holds."""
    import nbformat

    src.mkdir(parents=True)
    lessons = []
    for path in sorted(source.glob("[0-9]*.ipynb")):
        if names and not any(n in path.name for n in names):
            continue
        nb = read_notebook(path)  # broken JSON: a NotebookError naming the file
        try:
            nb = for_the_book(nb)
        except ValueError as err:  # an unclosed or stray solution marker: say which notebook
            raise NotebookError(f"{path}: {err}") from err
        nbformat.write(nb, src / path.name)
        lessons.append((path.stem, _title(nb, path.stem)))
    if not lessons:
        raise FileNotFoundError(f"no executed notebooks in {source}")
    summary = (source / "summary.md").read_text() if (source / "summary.md").exists() else ""
    (src / "index.md").write_text(_front_page(lessons, summary, smoke))
    (src / "_config.yml").write_text(_config(smoke))
    (src / "_toc.yml").write_text("format: jb-book\nroot: index\nchapters:\n"
                                  + "".join(f"  - file: {stem}\n" for stem, _ in lessons))
    return len(lessons)


def build(out: Path = ROOT / "build" / "book", source: Path | None = None, names: list[str] | None = None,
          root: Path = ROOT) -> Path:
    """Build the site; return the path of its front page (``index.html``).

    ``source`` is a folder of executed notebooks with its ``summary.md``; by default ``build/course/``
    when it is complete, else the smoke-size run in ``build/book-smoke/`` (made now if it is missing).
    ``names`` keeps only the notebooks whose file name contains one of them.
    """
    out = Path(out)
    source, smoke = _pick_source(source, root)
    new = out / ".new"  # the new project and site are made here; out's old ones are replaced only on success
    shutil.rmtree(new, ignore_errors=True)
    count = _write_project(new / "src", source, names, smoke)
    tool = Path(sys.executable).parent / "jupyter-book"
    cmd = [str(tool) if tool.exists() else "jupyter-book", "build", str(new / "src"), "--path-output", str(new), "--all"]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"jupyter-book build failed (the previous site in {out} is untouched):\n"
                           f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    for part in ("src", "_build"):
        shutil.rmtree(out / part, ignore_errors=True)
        os.replace(new / part, out / part)
    shutil.rmtree(new, ignore_errors=True)
    index = out / "_build" / "html" / "index.html"
    print(f"Built {count} lessons ({'smoke' if smoke else 'full'} size, from {source}) in "
          f"{time.perf_counter() - start:.0f} s: {index}")
    return index
