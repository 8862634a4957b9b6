"""lessons/ is generated from solutions/: the two must not drift apart."""
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
