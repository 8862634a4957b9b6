"""`make book`: the course as a static site, built here from smoke-size runs and opened in headless Chromium.

Lessons 0, 2 and 3 are executed in the smoke size (lesson 0 is the cheapest, lesson 2 has the widget whose
fallback image the site shows, lesson 3 the display math; about a minute together once the smoke teacher is
cached), then built with Jupyter Book.  The site must work offline: the front page and lesson 3 load with no
failed request, their images are present, the math is typeset by the site's own MathJax, no link within the
site is broken, and no exercise answer is shown.  Screenshots go to build/book-screenshots/.
"""
import functools
import http.server
import re
import threading
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest

from kdlib.tooling import book, grading

pytest.importorskip("jupyter_book", reason="Jupyter Book is not installed (it is in the dev extras)")

ROOT = Path(__file__).resolve().parent.parent
LESSONS = ["00_", "02_", "03_"]
SHOTS = ROOT / "build" / "book-screenshots"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("book")
    start = time.perf_counter()
    book.execute(tmp / "runs", names=LESSONS)
    ran = time.perf_counter() - start
    index = book.build(tmp / "book", source=tmp / "runs")
    print(f"\nsmoke runs of {LESSONS}: {ran:.0f} s; book build: {time.perf_counter() - start - ran:.0f} s")
    return index.parent


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        for key in ("href", "src"):
            if attrs.get(key) and not (tag == "a" and key == "src"):
                self.links.append(attrs[key])


def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(errors="replace"))
    return parser


def test_front_page_lists_the_lessons_with_their_numbers(site):
    text = (site / "index.html").read_text()
    for stem in ("00_price_of_giants", "02_soft_labels", "03_distillation"):
        assert f'href="{stem}.html"' in text
        assert (site / f"{stem}.html").is_file()
    assert "The lessons" in text and "headline numbers" in text
    assert "smoke-size" in text  # built from smoke runs, and it says so


def test_no_broken_links_within_the_site(site):
    pages = {p: _parse(p) for p in site.glob("*.html")}  # the site's pages (_static/ holds theme templates)
    broken = []
    for page, parsed in pages.items():
        for link in parsed.links:
            parts = urlsplit(link)
            if parts.scheme or link.startswith(("//", "mailto:", "javascript:", "data:")):
                continue
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if not target.exists():
                broken.append(f"{page.name} -> {link}")
            elif parts.fragment and target.suffix == ".html" and target in pages \
                    and parts.fragment not in pages[target].ids:
                broken.append(f"{page.name} -> {link} (no such anchor)")
    assert not broken, broken[:20]


def test_no_answer_in_the_book(site):
    src = site.parent.parent / "src"
    for path in (ROOT / "solutions").glob("*.ipynb"):
        if not (src / path.name).exists():
            continue
        answers, inside = set(), False
        for cell in nbformat.read(path, as_version=4).cells:
            for line in cell.source.splitlines():
                if line.strip() in (grading.BEGIN, grading.END):
                    inside = line.strip() == grading.BEGIN
                elif inside and len(line.strip()) >= 12:
                    answers.add(line.strip())
        shown = {line.strip() for c in nbformat.read(src / path.name, as_version=4).cells for line in c.source.splitlines()}
        assert not answers & shown, (path.name, answers & shown)


def test_widget_is_replaced_by_its_fallback_image(site):
    text = (site / "02_soft_labels.html").read_text()
    fallback = text[text.index("An interactive widget"):]
    assert "T = 1.0" in fallback[:300] and "<img" in fallback[:3000]
    assert "widget-view+json" not in text and "@jupyter-widgets/html-manager" not in text


def test_summary_parser():
    seconds, results = book.parse_summary("# Course run (full size)\n\n| notebook | seconds | status |\n|---|---:|---|\n"
                                          "| 00_a.ipynb | 14 | ok |\n\n## 00_a\n\n- peak GFLOP/s: 299.7\n- x: a: b\n")
    assert seconds == {"00_a.ipynb": 14.0} and results == {"00_a": [("peak GFLOP/s", "299.7"), ("x: a", "b")]}


def test_the_site_in_a_real_browser(site):
    from test_browser import CHROMIUM, CHROMIUM_ARGS

    if not CHROMIUM:
        pytest.skip("Chromium is not installed (apt-get install chromium); .ci/run installs it.")
    pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright).")
    from playwright.sync_api import sync_playwright

    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1300, "height": 1000})
                failed = []
                page.on("requestfailed", lambda r: failed.append(r.url))
                page.on("response", lambda r: r.status >= 400 and not r.url.endswith("favicon.ico")
                        and failed.append(f"{r.status} {r.url}"))
                seen = {}
                for name, shot in (("index.html", "front-page.png"), ("03_distillation.html", "lesson3.png"),
                                   ("02_soft_labels.html", None)):
                    page.goto(f"{base}/{name}")
                    page.wait_for_load_state("networkidle")
                    if name != "index.html":
                        page.wait_for_selector("mjx-container", timeout=30_000)  # MathJax typeset the formulas
                    images = page.evaluate("Array.from(document.images).map(i => [i.src, i.complete && i.naturalWidth > 0])")
                    seen[name] = {"title": page.title(), "images": images,
                                  "math": page.locator("mjx-container").count(),
                                  "rows": page.locator("table tbody tr").count()}
                    if shot:
                        page.screenshot(path=str(SHOTS / shot), full_page=False)
                widget = page.locator("p", has_text="An interactive widget").first
                widget.scroll_into_view_if_needed()
                page.screenshot(path=str(SHOTS / "lesson2-widget-fallback.png"), full_page=False)
            finally:
                browser.close()
    finally:
        server.shutdown()
    assert not failed, f"requests that failed (the site must work offline): {failed}"
    assert "Distilled Giants" in seen["index.html"]["title"] and seen["index.html"]["rows"] >= len(LESSONS)
    assert seen["03_distillation.html"]["title"].startswith("Lesson 3")
    for name in ("03_distillation.html", "02_soft_labels.html"):
        images = seen[name]["images"]
        assert images and all(ok for _, ok in images), (name, images)
        assert seen[name]["math"] >= 1, name
    assert re.search(r"_images/", " ".join(src for src, _ in seen["03_distillation.html"]["images"]))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_a_progress_bar_is_kept_as_text_not_called_an_interactive_widget():
    """tqdm's notebook bar is an ipywidget too: in the book it becomes its last line of text."""
    def nb_with(models):
        nb = nbformat.v4.new_notebook()
        view = {"output_type": "display_data", "metadata": {},
                "data": {book.WIDGET_VIEW: {"model_id": "box", "version_major": 2, "version_minor": 0},
                         "text/plain": "fit: 100%|##########| 16/16"}}
        nb.cells = [nbformat.v4.new_code_cell("kd.fit(...)", outputs=[nbformat.from_dict(view)])]
        nb.metadata["widgets"] = {book.WIDGET_STATE: {"state": models}}
        return book.for_the_book(nb).cells[0].outputs

    bar = {"box": {"model_name": "HBoxModel", "state": {"children": ["IPY_MODEL_html", "IPY_MODEL_bar"]}},
           "html": {"model_name": "HTMLModel", "state": {"value": "fit: 100%"}},
           "bar": {"model_name": "FloatProgressModel", "state": {"value": 16, "max": 16}}}
    (out,) = nb_with(bar)
    assert out.output_type == "stream" and out.text.startswith("fit: 100%")
    # the last frame, from the saved widget state (the text/plain copy is the first frame: 0%)
    tqdm_like = {"box": {"model_name": "HBoxModel", "state": {"children": ["IPY_MODEL_l", "IPY_MODEL_bar", "IPY_MODEL_r"]}},
                 "l": {"model_name": "HTMLModel", "state": {"value": "teacher: 100%"}},
                 "bar": {"model_name": "FloatProgressModel", "state": {"value": 12, "max": 12}},
                 "r": {"model_name": "HTMLModel", "state": {"value": " 12/12 [16:03&lt;00:00, 80.3s/it]"}}}
    (out,) = nb_with(tqdm_like)
    assert out.text == "teacher: 100%|██████████|12/12 [16:03<00:00, 80.3s/it]\n"
    half = {**tqdm_like, "bar": {"model_name": "FloatProgressModel", "state": {"value": 6, "max": 12}}}
    assert "|█████     |" in nb_with(half)[0].text
    slider = {"box": {"model_name": "VBoxModel", "state": {"children": ["IPY_MODEL_t"]}},
              "t": {"model_name": "FloatSliderModel", "state": {"description": "T", "value": 1.0}}}
    note = nb_with(slider)[0]
    assert "An interactive widget" in note.data["text/html"] and "T = 1.0" in note.data["text/html"]


def test_book_executes_through_the_course_runner(tmp_path, monkeypatch):
    """`make book`'s smoke runs are the course runner's: KDLIB_SMOKE=1, its failure lines, its summary."""
    from kdlib.tooling import runner

    (tmp_path / "solutions").mkdir()
    for name in ("01_a", "02_b", "03_c"):
        (tmp_path / "solutions" / f"{name}.ipynb").write_text("{}")
    calls = []

    def fake(path, out, *, timeout, env):
        calls.append((path.name, env.get("KDLIB_SMOKE"), "KDLIB_RESULTS" in env and env["KDLIB_RESULTS"], timeout))
        status = "FAILED at cell 2 of 3: ValueError: no" if path.name == "03_c.ipynb" else "ok"
        return runner.NotebookRun(path, status, 1.0, out / path.name)

    monkeypatch.setattr(runner, "execute_notebook", fake)
    assert book.execute(tmp_path / "runs", names=["01", "02"], root=tmp_path) == [tmp_path / "runs" / "01_a.ipynb",
                                                                                  tmp_path / "runs" / "02_b.ipynb"]
    assert calls == [("01_a.ipynb", "1", None, 1800), ("02_b.ipynb", "1", None, 1800)]  # smoke size, no headlines
    with pytest.raises(RuntimeError, match=r"03_c.ipynb \(FAILED at cell 2 of 3: ValueError: no\)"):
        book.execute(tmp_path / "runs", root=tmp_path)
    summary = (tmp_path / "runs" / "summary.md").read_text()
    assert summary.startswith("# Course run (smoke size)") and "| 03_c.ipynb | 1 | FAILED at cell 2 of 3" in summary
    seconds, _ = book.parse_summary(summary)
    assert seconds == {"01_a.ipynb": 1.0, "02_b.ipynb": 1.0, "03_c.ipynb": 1.0}


def test_a_real_smoke_run_reports_its_failing_cell(tmp_path):
    (tmp_path / "solutions").mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import os\nassert os.environ['KDLIB_SMOKE'] == '1'"),
                nbformat.v4.new_code_cell("raise ValueError('smoke | fails')")]
    nbformat.write(nb, tmp_path / "solutions" / "01_fails.ipynb")
    with pytest.raises(RuntimeError, match=r"01_fails.ipynb \(FAILED at cell 2 of 2: ValueError: smoke \| fails\)"):
        book.execute(tmp_path / "runs", timeout=60, root=tmp_path)
    assert (tmp_path / "runs" / "01_fails.ipynb").exists()


def test_a_failed_or_partial_run_is_never_published_as_complete(tmp_path, monkeypatch):
    from kdlib.tooling import runner

    (tmp_path / "solutions").mkdir()
    for name in ("01_a", "02_b"):
        (tmp_path / "solutions" / f"{name}.ipynb").write_text("{}")
    failing = {"02_b.ipynb"}

    def fake(path, out, *, timeout, env):
        (out / path.name).write_text("{}")
        return runner.NotebookRun(path, "FAILED at cell 1 of 1: boom" if path.name in failing else "ok", 1.0,
                                  out / path.name)

    monkeypatch.setattr(runner, "execute_notebook", fake)
    runs = tmp_path / "runs"
    with pytest.raises(RuntimeError):
        book.execute(runs, root=tmp_path)
    assert not book.full_size_available(runs, tmp_path)  # every copy is there, but one failed
    failing.clear()
    book.execute(runs, names=["02"], root=tmp_path)  # only the failed one again
    assert book.full_size_available(runs, tmp_path)


def test_a_missing_source_fails_before_the_old_site_is_touched(tmp_path):
    out = tmp_path / "book"
    (out / "_build" / "html").mkdir(parents=True)
    (out / "_build" / "html" / "index.html").write_text("the old site")
    with pytest.raises(FileNotFoundError, match="not a folder of executed notebooks"):
        book.build(out, source=tmp_path / "nowhere")
    assert (out / "_build" / "html" / "index.html").read_text() == "the old site"


@pytest.mark.parametrize("broken", ["json", "marker"])
def test_a_broken_source_notebook_is_named_and_the_old_site_kept(tmp_path, broken):
    from kdlib.tooling import NotebookError, cli

    out, source = tmp_path / "book", tmp_path / "source"
    (out / "_build" / "html").mkdir(parents=True)
    (out / "_build" / "html" / "index.html").write_text("the old site")
    source.mkdir()
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Fine")]), source / "01_fine.ipynb")
    bad = source / "02_bad.ipynb"
    if broken == "json":
        bad.write_text('{"cells": [')
    else:
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(f"{grading.BEGIN}\nx = 1")]), bad)
    with pytest.raises(NotebookError, match="02_bad.ipynb") as caught:
        book.build(out, source=source)
    assert ("never closed" in str(caught.value)) == (broken == "marker")
    assert (out / "_build" / "html" / "index.html").read_text() == "the old site"
    assert cli.main(["book", "--source", str(source), "--out", str(out)]) == 1  # the command says so, no traceback
