"""lessons/ and the paired solutions/*.py are generated from solutions/*.ipynb: none may drift apart."""
import os
from pathlib import Path

import nbformat
import pytest

from kdlib import course

ROOT = Path(__file__).resolve().parent.parent


def test_lessons_are_generated_from_solutions():
    expected = course.expected_lessons(ROOT)
    actual = {p.name: p.read_text() for p in (ROOT / "lessons").glob("*.ipynb")}
    assert expected, "no solution notebooks found"
    assert set(actual) == set(expected), "lessons/ and solutions/ hold different notebooks"
    stale = [name for name in expected if actual[name] != expected[name]]
    assert not stale, f"lessons out of date, run `python -m kdlib course build`: {stale}"


def test_lessons_hide_every_solution():
    for path in (ROOT / "lessons").glob("*.ipynb"):
        text = path.read_text()
        assert course.BEGIN not in text and course.END not in text, path.name
        assert "edit the solution" in text


def test_solutions_are_clean_sources():
    for path in (ROOT / "solutions").glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs, f"{path.name}: committed outputs"
                assert "raises-exception" not in cell.metadata.get("tags", []), f"{path.name}: solutions must not raise"
        assert any(course.BEGIN in c.source for c in nb.cells), f"{path.name} has no exercise"


def test_every_exercise_is_followed_by_a_check():
    for path in (ROOT / "solutions").glob("*.ipynb"):
        for cell in nbformat.read(path, as_version=4).cells:
            if course.BEGIN in cell.source:
                assert "kd.checks.check_" in cell.source, f"{path.name}: exercise without a check"


def _nb(*sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    return nb


def test_generator_inside_a_function_keeps_the_cell_runnable():
    src = "def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n\ncheck(f)"
    cell = course.make_lesson(_nb(src), "t.ipynb").cells[1]
    assert "return 2 * x" not in cell.source
    assert "    raise NotImplementedError" in cell.source and cell.source.endswith("check(f)")
    assert "raises-exception" not in cell.metadata["tags"]


def test_generator_top_level_region_is_tagged():
    src = "x = 1\n### BEGIN SOLUTION\ny = x + 1\n### END SOLUTION"
    cell = course.make_lesson(_nb(src), "t.ipynb").cells[1]
    assert cell.metadata["tags"] == ["raises-exception"]
    assert cell.source.startswith("x = 1\n# YOUR CODE HERE\nraise NotImplementedError")


@pytest.mark.parametrize("src,match", [
    ("### BEGIN SOLUTION\nx", "never closed"),
    ("### END SOLUTION", "without"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "nested"),
])
def test_generator_rejects_broken_markers(src, match):
    with pytest.raises(ValueError, match=match):
        course.make_lesson(_nb(src), "t.ipynb")


def test_record_writes_only_when_asked(tmp_path, monkeypatch):
    monkeypatch.delenv(course.RESULTS_ENV, raising=False)
    course.record("a", 1, notebook="nb")  # no-op
    target = tmp_path / "results.json"
    monkeypatch.setenv(course.RESULTS_ENV, str(target))
    course.record("a", 1, notebook="nb")
    course.record("b", "x", notebook="nb")
    assert target.read_text().count('"nb"') == 1 and '"b": "x"' in target.read_text()


# --- solutions/NN_name.py: each solution notebook as paired jupytext percent text ---

def test_every_solution_has_its_text_pair():
    expected = course.expected_pairs(ROOT)
    actual = {p.name: p.read_text() for p in (ROOT / "solutions").glob("*.py")}
    missing, orphans = sorted(set(expected) - set(actual)), sorted(set(actual) - set(expected))
    assert not missing, f"solution notebooks without their paired .py, run `make lessons`: {missing}"
    assert not orphans, (f"solutions/ holds .py files with no notebook: {orphans}; run `make lessons` to make "
                         "their notebooks, or delete them")
    stale = [name for name in expected if actual[name] != expected[name]]
    assert not stale, (f"paired .py disagrees with its notebook: {stale}. Edited the notebook? run `make lessons`. "
                       "Edited the .py outside JupyterLab? run `jupytext --sync solutions/<name>.py`, then `make lessons`")


def test_solutions_carry_the_pairing_for_jupyterlab():
    for path in (ROOT / "solutions").glob("*.ipynb"):
        meta = nbformat.read(path, as_version=4).metadata.get("jupytext", {})
        assert meta.get("formats") == course.PAIRING["formats"], f"{path.name} is not paired; run `make lessons`"


def test_reading_a_pair_back_changes_nothing_in_its_notebook():
    """What `jupytext --sync` and JupyterLab do with a .py: its code, the notebook's ids and metadata."""
    import jupytext
    from jupytext.combine import combine_inputs_with_outputs

    for path in (ROOT / "solutions").glob("*.ipynb"):
        if not path.with_suffix(".py").exists():
            continue  # test_every_solution_has_its_text_pair says so
        text_nb = jupytext.read(path.with_suffix(".py"), fmt=course.PAIR_FORMAT)
        back = combine_inputs_with_outputs(text_nb, nbformat.read(path, as_version=4), fmt=course.PAIR_FORMAT)
        assert nbformat.writes(back) + "\n" == path.read_text(), f"{path.name}: the round trip churns the notebook"


@pytest.mark.parametrize("side", [".py", ".ipynb"])
def test_jupyterlab_keeps_the_pair_in_step(tmp_path, side):
    """Saving through jupytext's contents manager (JupyterLab's) from either side rewrites one line in each file."""
    import difflib

    from jupytext import TextFileContentsManager

    for suffix in (".ipynb", ".py"):
        (tmp_path / f"07_capstone{suffix}").write_text((ROOT / "solutions" / f"07_capstone{suffix}").read_text())
    before = {s: (tmp_path / f"07_capstone{s}").read_text() for s in (".ipynb", ".py")}
    manager = TextFileContentsManager(root_dir=str(tmp_path))
    model = manager.get(f"07_capstone{side}")
    cell = next(c for c in model["content"].cells if c.cell_type == "code")
    cell.source += "\nEDITED = True"
    manager.save(model, f"07_capstone{side}")
    for suffix, text in before.items():
        after = (tmp_path / f"07_capstone{suffix}").read_text()
        changed = [d for d in difflib.ndiff(text.splitlines(), after.splitlines()) if d[:1] in "+-"]
        assert len(changed) <= 3 and any("EDITED = True" in d for d in changed), (suffix, changed)
    ids = [[c.id for c in nbformat.reads(text, as_version=4).cells]
           for text in (before[".ipynb"], (tmp_path / "07_capstone.ipynb").read_text())]
    assert ids[0] == ids[1], "cell ids changed"


def _course(tmp_path):
    """A course folder with one solution notebook, built once."""
    nb = _nb("x = 1", "def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION")
    for i, cell in enumerate(nb.cells):
        cell.id = f"01-{i:02d}"
    (tmp_path / "solutions").mkdir()
    nbformat.write(nb, tmp_path / "solutions" / "01_t.ipynb")
    course.build(tmp_path)
    return tmp_path / "solutions" / "01_t.ipynb", tmp_path / "solutions" / "01_t.py"


def _touch_later(path, than):
    t = than.stat().st_mtime_ns + 10**9
    os.utime(path, ns=(t, t))


def test_build_writes_the_pair_and_unpaired_lessons(tmp_path):
    ipynb, py = _course(tmp_path)
    assert py.read_text() == course.expected_pairs(tmp_path)["01_t.py"]
    assert "# %%\nx = 1" in py.read_text() and "formats: ipynb,py:percent" in py.read_text()
    assert nbformat.read(ipynb, as_version=4).metadata["jupytext"]["formats"] == "ipynb,py:percent"
    assert "jupytext" not in nbformat.read(tmp_path / "lessons" / "01_t.ipynb", as_version=4).metadata
    assert course.build(tmp_path) == []  # nothing left to do


def test_build_rewrites_the_pair_after_a_notebook_edit(tmp_path):
    ipynb, py = _course(tmp_path)
    nb = nbformat.read(ipynb, as_version=4)
    nb.cells[0].source = "x = 2"
    nbformat.write(nb, ipynb)
    _touch_later(ipynb, py)
    assert set(course.build(tmp_path)) == {py, tmp_path / "lessons" / "01_t.ipynb"}
    assert "x = 2" in py.read_text()


def test_build_will_not_overwrite_a_newer_edited_pair(tmp_path):
    ipynb, py = _course(tmp_path)
    py.write_text(py.read_text().replace("x = 1", "x = 3"))
    _touch_later(py, ipynb)
    before = ipynb.read_text(), py.read_text()
    with pytest.raises(course.PairConflictError, match="jupytext --sync"):
        course.build(tmp_path)
    assert (ipynb.read_text(), py.read_text()) == before
    # the documented way to keep the edit: jupytext --sync carries it into the notebook, ids kept
    from jupytext.cli import jupytext as jupytext_cli

    jupytext_cli(["--sync", "--quiet", str(py)])
    nb = nbformat.read(ipynb, as_version=4)
    assert nb.cells[0].source == "x = 3" and [c.id for c in nb.cells] == ["01-00", "01-01"]
    assert course.build(tmp_path) == [tmp_path / "lessons" / "01_t.ipynb"]


def test_build_makes_a_notebook_from_a_new_text_lesson(tmp_path):
    ipynb, py = _course(tmp_path)
    new = tmp_path / "solutions" / "02_new.py"
    new.write_text("# ---\n# jupyter:\n#   jupytext:\n#     text_representation:\n#       extension: .py\n"
                   "#       format_name: percent\n# ---\n\n# %% [markdown]\n# # A new lesson\n\n# %%\ny = 2\n")
    course.build(tmp_path)
    nb = nbformat.read(new.with_suffix(".ipynb"), as_version=4)
    assert nb.metadata["jupytext"] == course.PAIRING
    assert [c.id for c in nb.cells] == ["02-00", "02-01"] and nb.cells[1].source == "y = 2"
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert (tmp_path / "lessons" / "02_new.ipynb").exists()
    assert new.read_text() == course.expected_pairs(tmp_path)["02_new.py"]


# --- course run (issue 12): a dead kernel or a timeout is reported, and the run goes on ---

def test_course_run_reports_dead_kernels_and_timeouts_and_goes_on(tmp_path):
    (tmp_path / "solutions").mkdir()
    notebooks = {"01_dies": ["x = 1", "import os\nos._exit(1)", "x = 2"], "02_slow": ["import time\ntime.sleep(60)"],
                 "03_raises": ["raise ValueError('a | b')"], "04_ok": ["x = 1"]}
    for name, sources in notebooks.items():
        nb = _nb(*sources)
        nb.cells.insert(0, nbformat.v4.new_markdown_cell("# a title"))
        nbformat.write(nb, tmp_path / "solutions" / f"{name}.ipynb")
    out = tmp_path / "out"
    assert course.run(out, timeout=5, root=tmp_path) == 3
    summary = (out / "summary.md").read_text()
    assert "| 01_dies.ipynb |" in summary and "FAILED at cell 3 of 4: the kernel died" in summary
    assert "FAILED at cell 2 of 2: timed out after 5 s" in summary
    assert r"FAILED at cell 2 of 2: ValueError: a \| b |" in summary
    assert summary.rstrip().endswith("| ok |") and "\x1b" not in summary
    assert {p.name for p in out.glob("*.ipynb")} == {f"{n}.ipynb" for n in notebooks}


@pytest.mark.parametrize("argv", [["course", "run", "01", "02", "--out", "D"], ["course", "run", "--out", "D", "01", "02"]])
def test_course_run_takes_names_before_or_after_out(monkeypatch, argv):
    from kdlib import __main__ as cli

    seen = []
    monkeypatch.setattr(course, "run", lambda out, names: seen.append((str(out), names)) or 0)
    assert cli.main(argv) == 0
    assert seen == [("D", ["01", "02"])]
