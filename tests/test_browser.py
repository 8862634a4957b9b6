"""Lesson 2 in a real browser: JupyterLab on 127.0.0.1, headless Chromium driven by Playwright.

Runs every cell of the student notebook, checks that the temperature widget renders, moves the
temperature slider and checks that the plotted distribution changes.  A screenshot goes to
build/browser/.  Skipped, with the reason, where Chromium or Playwright is missing; .ci/run
installs both.
"""
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if not CHROMIUM:
        pytest.skip("Chromium is not installed (apt-get install chromium); .ci/run installs it.")
    pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright).")
    home = tmp_path_factory.mktemp("lab")
    shutil.copy(ROOT / "lessons" / "02_soft_labels.ipynb", home)  # the browser saves outputs: use a copy
    port, token = _free_port(), "kdlib-browser-test"
    env = {**os.environ, "KDLIB_SMOKE": "1", "JUPYTER_RUNTIME_DIR": str(home / ".runtime"),
           "JUPYTERLAB_WORKSPACES_DIR": str(home / ".workspaces")}
    log = open(home / "lab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={home}", "--allow-root",
         "--LabApp.news_url=", "--ServerApp.open_browser=False"],
        stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail("JupyterLab exited: " + (home / "lab.log").read_text()[-2000:])
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not start in 60 s: " + (home / "lab.log").read_text()[-2000:])
        yield f"{base}/lab/tree/02_soft_labels.ipynb?reset&token={token}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_temperature_widget_in_a_real_browser(lab):
    from playwright.sync_api import sync_playwright

    shots = ROOT / "build" / "browser"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(lab)
            page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=90_000)
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=90_000)
            page.wait_for_timeout(3_000)  # let the kernel connection settle
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()

            plot = page.locator(".widget-output img").first
            try:
                plot.wait_for(state="attached", timeout=240_000)
            except Exception:
                page.screenshot(path=str(shots / "lesson2-timeout.png"), full_page=True)
                raise
            plot.scroll_into_view_if_needed()
            slider = page.locator(".widget-hslider").first
            slider.scroll_into_view_if_needed()
            readout = slider.locator(".widget-readout")
            before_src, before_t = plot.get_attribute("src"), readout.inner_text()
            page.screenshot(path=str(shots / "lesson2-before.png"), full_page=False)

            handle = slider.locator(".noUi-handle").first
            handle.focus()
            for _ in range(10):
                handle.press("ArrowRight")
            deadline = time.time() + 60
            while time.time() < deadline and plot.get_attribute("src") == before_src:
                time.sleep(0.5)
            after_src, after_t = plot.get_attribute("src"), readout.inner_text()
            slider.locator("xpath=../..").screenshot(path=str(shots / "lesson2-widget.png"))
            page.screenshot(path=str(shots / "lesson2-after.png"), full_page=False)
        finally:
            browser.close()
    assert before_src and before_src.startswith("data:image/png")
    assert float(after_t) > float(before_t), (before_t, after_t)
    assert after_src != before_src, "moving the temperature slider did not change the plotted distribution"
