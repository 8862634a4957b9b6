"""ruff, configured in pyproject.toml, over kdlib/, tests/, the solutions' paired .py and lessons/*.ipynb."""
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _ruff(*args):
    if importlib.util.find_spec("ruff"):
        command = [sys.executable, "-m", "ruff"]
    elif shutil.which("ruff"):
        command = [shutil.which("ruff")]
    else:
        pytest.fail("ruff is not installed: `pip install -e '.[dev]'` (or `make setup`) installs it")
    return subprocess.run([*command, "check", "--no-cache", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_ruff_is_clean():
    out = _ruff("--output-format", "concise")
    assert out.returncode == 0, ("ruff found problems (`make lint`; `ruff check --fix` fixes some; in a solution, "
                                 "fix the .ipynb or its .py, then `make lessons`):\n" + out.stdout + out.stderr)


def test_ruff_reads_every_notebook_once():
    listed = {Path(line).resolve() for line in _ruff("--show-files").stdout.splitlines() if line.strip()}
    wanted = [*ROOT.glob("kdlib/*.py"), *ROOT.glob("tests/*.py"), *ROOT.glob("solutions/*.py"),
              *ROOT.glob("lessons/*.ipynb")]
    assert wanted and not [p.name for p in wanted if p.resolve() not in listed]
    assert not [p for p in listed if p.suffix == ".ipynb" and p.parent.name == "solutions"], \
        "solutions/*.ipynb are linted through their .py pairs, not twice"
