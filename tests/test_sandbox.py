"""The grading sandbox's command line and its guards (fast; the end-to-end run is in test_nbgrader.py)."""
import shutil

import nbformat
import pytest

from kdlib.tooling import sandbox


def _course(tmp_path):
    course = tmp_path / "course"
    (course / "autograded" / "ann" / "hw").mkdir(parents=True)
    return course, course / "autograded" / "ann" / "hw"


def test_the_sandbox_hides_the_course_and_binds_back_only_the_notebooks_folder(tmp_path):
    course, work = _course(tmp_path)
    (tmp_path / "rt").mkdir()
    (tmp_path / "zoo").mkdir()
    (course / "venv").mkdir()
    argv = sandbox.sandbox_argv(["python"], workdir=work, course=course, runtime=tmp_path / "rt", zoo=tmp_path / "zoo",
                                keep=[course / "venv", tmp_path / "elsewhere"])
    assert argv[:5] == ["bwrap", "--ro-bind", "/", "/", "--dev"]
    hide = argv.index(str(course.resolve()))
    assert argv[hide - 1] == "--tmpfs"
    binds = [argv[i + 1] for i, a in enumerate(argv) if a == "--bind"]
    assert binds == [str((tmp_path / "rt").resolve()), str((tmp_path / "zoo").resolve()), str(work.resolve())]
    assert all(argv.index(b) > hide for b in binds)  # bound back after the course is hidden
    ro = [argv[i + 1] for i, a in enumerate(argv) if a == "--ro-bind"]
    assert ro == ["/", str((course / "venv").resolve())]  # only folders inside the course are bound back
    for flag in ("--unshare-net", "--unshare-pid", "--die-with-parent", "--new-session"):
        assert flag in argv
    assert argv[argv.index("--cap-drop") + 1] == "ALL" and argv[-2:] == ["--", "python"]


@pytest.mark.parametrize("where", ["inside", "above"])
def test_writable_folders_that_would_expose_the_course_are_refused(tmp_path, where):
    course, work = _course(tmp_path)
    runtime = course / "rt" if where == "inside" else tmp_path
    with pytest.raises(ValueError, match="outside the course folder"):
        sandbox.sandbox_argv(["true"], workdir=work, course=course, runtime=runtime, zoo=tmp_path / "zoo")
    with pytest.raises(ValueError, match="not inside the course folder"):
        sandbox.sandbox_argv(["true"], workdir=tmp_path, course=course, runtime=tmp_path / "x", zoo=tmp_path / "y")


def test_the_scratch_zoo_links_every_checkpoint_read_only(tmp_path):
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    (zoo / "m-1.pt").write_bytes(b"weights")
    (zoo / "m-1.scores.json").write_text("{}")
    (tmp_path / "scratch").mkdir()
    made = sandbox.scratch_zoo(tmp_path / "scratch", zoo)
    assert sorted(p.name for p in made.iterdir()) == ["m-1.pt", "m-1.scores.json"]
    assert all(p.is_symlink() and p.resolve().parent == zoo.resolve() for p in made.iterdir())
    assert list(sandbox.scratch_zoo(tmp_path / "scratch", tmp_path / "missing").iterdir()) == []


def test_a_missing_bubblewrap_says_how_to_get_it(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(sandbox.SandboxUnavailable, match="apt-get install bubblewrap"):
        sandbox.bwrap()


def test_grade_outside_a_course_folder_is_a_clear_error(tmp_path, capsys):
    from kdlib.tooling import cli

    assert cli.main(["grade", "hw1", "--course", str(tmp_path)]) == 2
    assert "no submitted/ folder" in capsys.readouterr().err


def test_suspicious_cells_are_listed_and_ordinary_ones_are_not(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in (
        "def f(x):\n    return x == 1",
        "import sys\nsys.modules['kdlib.checks'] = None",
        "get_ipython().set_custom_exc((Exception,), lambda *a, **k: None)",
        "kd.checks = object()",
        "kd = None",
        "import shutil; shutil.rmtree('..')",
        "if kd.checks == 1: pass",
    )] + [nbformat.v4.new_markdown_cell("sys.modules['x'] = 1 in prose is fine")]
    nbformat.write(nb, tmp_path / "n.ipynb")
    assert sandbox.suspicious_cells(tmp_path / "n.ipynb") == [
        (2, "replaces a module in sys.modules"), (3, "changes IPython's exception handling"),
        (4, "assigns to kdlib or its checks"), (5, "assigns to kdlib or its checks"), (6, "deletes files")]


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed (make test installs it as root)")
def test_the_sandbox_works_here():
    sandbox.check_works()  # raises SandboxUnavailable with bwrap's words if it cannot
