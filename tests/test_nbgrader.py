"""nbgrader end to end, as an instructor runs it (README, "For instructors"), in a temporary course folder.

With nbgrader's default settings (metadata enforced): ``generate_assignment`` releases all ten solution
notebooks, and the release is exactly ``lessons/`` in its code and text (less the lessons' generated
banner and setup cell) with no solution code left; ``autograde`` gives a solved lesson 0 full points and
its unsolved release zero, without crashing; ``generate_feedback`` writes HTML.  Only lesson 0 is
autograded: autograde executes every notebook it grades, twice here, and lesson 0 is the cheapest lesson
with more than one exercise (about 15 s a run in the smoke size; the others train or load models).
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from kdlib.tooling import grading, lessons

pytest.importorskip("nbgrader", reason="nbgrader is not installed (it is in the dev extras: pip install -e '.[dev]')")

ROOT = Path(__file__).resolve().parent.parent
GRADED = "00_price_of_giants.ipynb"


def _module(home: Path, module: str, *args: str) -> str:
    """``python -m module args`` in the course folder ``home``, smoke size, with this checkout's kdlib."""
    # nbgrader runs `alembic` from PATH: the environment's bin/ goes first, as in an activated venv
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))  # this checkout's kdlib
    env = {**os.environ, "KDLIB_SMOKE": "1", "PATH": path, "PYTHONPATH": pythonpath,
           "JUPYTER_CONFIG_DIR": str(home / ".jupyter"), "JUPYTER_RUNTIME_DIR": str(home / ".runtime")}
    out = subprocess.run([sys.executable, "-m", module, *args], cwd=home, env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, f"{module} {' '.join(args)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stdout + out.stderr


def _nbgrader(home: Path, *args: str) -> str:
    return _module(home, "nbgrader", *args)


@pytest.fixture(scope="module")
def course_dir(tmp_path_factory):
    """A course folder with two assignments: the whole course, and lesson 0 alone (the one autograded)."""
    home = tmp_path_factory.mktemp("nbgrader-course")
    for assignment, names in (("course", [p.name for p in (ROOT / "solutions").glob("*.ipynb")]), ("lesson0", [GRADED])):
        (home / "source" / assignment).mkdir(parents=True)
        for name in names:
            shutil.copy(ROOT / "solutions" / name, home / "source" / assignment / name)
        _nbgrader(home, "generate_assignment", assignment)
    return home


def _cells(nb, kind, skip=()):
    return [c.source for c in nb.cells if c.cell_type == kind and c.get("id") not in skip]


def test_release_is_the_lessons(course_dir):
    released = sorted((course_dir / "release" / "course").glob("*.ipynb"))
    assert [p.name for p in released] == sorted(p.name for p in (ROOT / "lessons").glob("*.ipynb"))
    for path in released:
        release = nbformat.read(path, as_version=4)
        lesson = nbformat.read(ROOT / "lessons" / path.name, as_version=4)
        assert _cells(release, "code") == _cells(lesson, "code", skip={lessons.SETUP_ID}), path.name
        assert _cells(release, "markdown") == _cells(lesson, "markdown", skip={lessons.BANNER_ID}), path.name
        text = path.read_text()
        assert grading.BEGIN not in text and grading.END not in text, path.name
        graded = [c for c in release.cells if c.metadata.get("nbgrader", {}).get("grade")]
        assert graded and all(c.metadata["nbgrader"]["locked"] for c in graded), path.name
        assert all(c.metadata.get("editable") is False for c in graded), f"{path.name}: check cells not locked"


def _scores(home: Path, student: str):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{home / 'gradebook.db'}") as gb:
        sub = gb.find_submission("lesson0", student)
        return sub.score, sub.max_score, {g.name: g.score for nb in sub.notebooks for g in nb.grades}


def test_autograde_and_feedback(course_dir):
    for student, origin in (("solved", course_dir / "source"), ("unsolved", course_dir / "release")):
        (course_dir / "submitted" / student / "lesson0").mkdir(parents=True)
        shutil.copy(origin / "lesson0" / GRADED, course_dir / "submitted" / student / "lesson0" / GRADED)
    _nbgrader(course_dir, "autograde", "lesson0", "--create")
    score, max_score, grades = _scores(course_dir, "solved")
    assert grades == {"check_queries_to_match": 1.0, "check_matmul_flops": 1.0}
    assert score == max_score == 2.0
    score, max_score, grades = _scores(course_dir, "unsolved")
    assert (score, max_score) == (0.0, 2.0) and set(grades.values()) == {0.0}
    # the unsolved notebook ran to its end: the lesson carried on with kdlib's references
    graded = nbformat.read(course_dir / "autograded" / "unsolved" / "lesson0" / GRADED, as_version=4)
    assert all(c.get("execution_count") for c in graded.cells if c.cell_type == "code")

    _nbgrader(course_dir, "generate_feedback", "lesson0")
    for student in ("solved", "unsolved"):
        html = (course_dir / "feedback" / student / "lesson0" / GRADED.replace(".ipynb", ".html")).read_text()
        assert "<html" in html and "Score:" in html
    unsolved = (course_dir / "feedback" / "unsolved" / "lesson0" / GRADED.replace(".ipynb", ".html")).read_text()
    assert "not done yet" in unsolved and "most recent call last" not in unsolved  # the friendly line, no traceback


MALICIOUS = '''import os, socket
for name in ("gradebook.db", "source", "release"):  # the course folder, seen from autograded/<student>/lesson0/
    path = os.path.join("..", "..", "..", name)
    print(name, "visible" if os.path.exists(path) else "hidden")
try:
    os.remove(os.path.join("..", "..", "..", "gradebook.db"))
    print("gradebook removed")
except OSError as err:
    print("remove refused:", type(err).__name__)
try:
    socket.create_connection(("127.0.0.1", PORT), timeout=5)
    print("network reached")
except OSError as err:
    print("network refused:", type(err).__name__)
'''


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed (make test installs it as root)")
def test_sandboxed_grading_keeps_the_gradebook_and_the_network_away_from_a_submission(course_dir):
    """`python -m kdlib grade`: a solved submission whose answer cell tries to delete the gradebook and reach
    a server on the grader's loopback still gets its marks, and finds neither."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    nb = nbformat.read(course_dir / "source" / "lesson0" / GRADED, as_version=4)
    answer = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution"))
    answer.source = MALICIOUS.replace("PORT", str(server.getsockname()[1])) + answer.source
    (course_dir / "submitted" / "mallory" / "lesson0").mkdir(parents=True)
    nbformat.write(nb, course_dir / "submitted" / "mallory" / "lesson0" / GRADED)
    before = (course_dir / "gradebook.db").stat().st_size if (course_dir / "gradebook.db").exists() else None

    out = _module(course_dir, "kdlib", "grade", "lesson0", "--student=mallory", "--create")
    server.close()
    assert (course_dir / "gradebook.db").exists() and (before is None or (course_dir / "gradebook.db").stat().st_size)
    score, max_score, _ = _scores(course_dir, "mallory")
    assert score == max_score == 2.0  # the sandbox changes where code runs, not how it is graded
    graded = nbformat.read(course_dir / "autograded" / "mallory" / "lesson0" / GRADED, as_version=4)
    printed = "".join(o.get("text", "") for c in graded.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "gradebook.db hidden" in printed and "source hidden" in printed and "release hidden" in printed
    assert "remove refused" in printed and "network refused" in printed
    assert "gradebook removed" not in printed and "network reached" not in printed
    assert "Read these cells" in out and "deletes files" in out  # flagged for a person to read

