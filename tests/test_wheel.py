"""kdlib as a wheel, used outside the repository (README, "Use kdlib in your own work").

The wheel is built from the tracked sources (``pip wheel --no-deps --no-build-isolation``, offline) and
checked for every module and the ``kdlib`` command.  Then a clean virtualenv in a temporary folder, with
no kdlib in it, runs a lesson copied there alone: its setup cell installs the wheel named by
``KDLIB_WHEEL``, and the lesson runs (smoke size).  In that venv, from a folder outside the repository,
``kd.load("fashion_mnist")`` finds the data in Debian's folder or the user cache (the repository's
``data/`` is out of reach) and the README's five-line example runs.

So that the test takes seconds, not a PyTorch download, the venv reuses this environment's packages
through a ``.pth`` file pointing at a folder of links to them — every one except kdlib itself, whose
editable install must not leak in.  pip sees those packages as installed, so ``pip install <wheel>``
resolves kdlib's dependencies without network.
"""
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LESSON = "00_price_of_giants.ipynb"  # the cheapest lesson: no model to train or load


def _tracked_sources() -> list[str]:
    out = subprocess.run(["git", "ls-files", "kdlib"], cwd=ROOT, capture_output=True, text=True)
    files = out.stdout.split() if out.returncode == 0 and out.stdout else \
        [str(p.relative_to(ROOT)) for p in (ROOT / "kdlib").rglob("*.py")]
    return sorted(f for f in files if "__pycache__" not in f)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the tracked sources (so nothing in the checkout is written)."""
    src = tmp_path_factory.mktemp("src")
    for name in ["pyproject.toml", "README.md", *_tracked_sources()]:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, src / name)
    dist = tmp_path_factory.mktemp("dist")
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                          "--quiet", "-w", str(dist), str(src)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    (built,) = dist.glob("kdlib-*.whl")
    print(f"\n{built.name}: {built.stat().st_size / 1024:.0f} KiB")
    return built


def test_wheel_holds_every_module_and_the_command(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = z.read(meta).decode()
        entry_points = z.read(meta.replace("METADATA", "entry_points.txt")).decode()
    missing = [f for f in _tracked_sources() if f not in names]
    assert not missing, f"the wheel lacks {missing}"
    assert not [n for n in names if n.startswith(("tests/", "solutions/", "lessons/", "data/"))]
    assert "kdlib = kdlib.tooling.cli:main" in entry_points
    assert "Requires-Dist: torch" in metadata and "# Distilled Giants" in metadata  # README as description


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A virtualenv outside the repository, without kdlib, that reuses this environment's other packages."""
    base = tmp_path_factory.mktemp("venv")
    view = base / "site-view"
    view.mkdir()
    site = Path(sysconfig.get_paths()["purelib"])
    for entry in site.iterdir():
        name = entry.name.lower()
        if name.startswith(("kdlib", "__editable__")) or name.endswith(".pth") or name == "__pycache__":
            continue
        (view / entry.name).symlink_to(entry)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(base / "env")], check=True, timeout=120)
    python = base / "env" / "bin" / "python"
    env_site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              capture_output=True, text=True, check=True).stdout.strip()
    Path(env_site, "reuse-packages.pth").write_text(f"{view}\n")
    return python


def _clean_env(home: Path, **extra) -> dict:
    """The environment of a learner's machine: no PYTHONPATH, no KDLIB_DATA, an empty home folder."""
    keep = {k: v for k, v in os.environ.items()
            if k in ("PATH", "LANG", "LC_ALL", "TMPDIR", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    return {**keep, "HOME": str(home), "KDLIB_SMOKE": "1", "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "JUPYTER_PLATFORM_DIRS": "1", **extra}


def _run(python: Path, code: str, cwd: Path, env: dict) -> str:
    out = subprocess.run([str(python), "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


def test_a_copied_lesson_installs_the_wheel_and_runs(wheel, venv, tmp_path):
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = _clean_env(home, KDLIB_WHEEL=str(wheel))
    _run(venv, "import importlib.util, sys; sys.exit(importlib.util.find_spec('kdlib') is not None)", work, env)
    shutil.copy(ROOT / "lessons" / LESSON, work / LESSON)
    _run(venv, f"""
import nbformat
from nbclient import NotebookClient
nb = nbformat.read({LESSON!r}, as_version=4)
NotebookClient(nb, timeout=600, kernel_name="python3").execute()
nbformat.write(nb, "executed.ipynb")
""", work, env)
    import nbformat

    executed = nbformat.read(work / "executed.ipynb", as_version=4)
    setup = next(c for c in executed.cells if c.get("id") == "generated-setup")
    assert "Successfully installed kdlib" in "".join(o.get("text", "") for o in setup.outputs)
    assert any("Measured peak" in o.get("text", "") for c in executed.cells for o in c.get("outputs", []))

    # kdlib now lives in the venv, and works from a folder outside the repository
    env = _clean_env(home)
    where = _run(venv, "import kdlib; print(kdlib.__file__)", work, env).strip()
    assert where.startswith(str(venv.parent.parent)) and not where.startswith(str(ROOT)), where
    debian = Path("/usr/share/datasets/fashion-mnist")
    if not (debian / "train-images-idx3-ubyte.gz").exists():  # no Debian package here: use the user cache
        from kdlib.fashion_mnist import locate_fashion_mnist

        shutil.copytree(locate_fashion_mnist()[0], home / ".cache" / "kdlib" / "fashion-mnist")
    found = _run(venv, """
import kdlib as kd
from kdlib.data import data_dir
from kdlib.fashion_mnist import locate_fashion_mnist
data = kd.load("fashion_mnist")
print(data_dir(), "|", locate_fashion_mnist()[1], "|", tuple(data.X_train.shape[1:]))
""", work, env)
    assert found.split(" | ")[0] == str(home / ".cache" / "kdlib") and "(1, 28, 28)" in found
    assert ("Debian" in found) if debian.exists() else ("kdlib data cache" in found)
    example = re.search(r"<!-- readme-example.*?-->\s*```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    printed = _run(venv, example.group(1), work, env)
    assert "'acc'" in printed
    # the wheel's `kdlib` command
    out = subprocess.run([str(venv.parent / "kdlib"), "data", "verify", "fashion_mnist"], cwd=work, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "verified" in out.stdout, out.stdout + out.stderr
