"""lessons/ and the paired solutions/*.py are generated from solutions/*.ipynb: none may drift apart."""
import json
import os
from pathlib import Path

import nbformat
import pytest

from kdlib.experiments import results
from kdlib.tooling import grading, lessons, pairing, runner

ROOT = Path(__file__).resolve().parent.parent


def test_lessons_are_generated_from_solutions():
    expected = lessons.expected_lessons(ROOT)
    actual = {p.name: p.read_text() for p in (ROOT / "lessons").glob("*.ipynb")}
    assert expected, "no solution notebooks found"
    assert set(actual) == set(expected), "lessons/ and solutions/ hold different notebooks"
    stale = [name for name in expected if actual[name] != expected[name]]
    assert not stale, f"lessons out of date, run `python -m kdlib course build`: {stale}"


def test_lessons_hide_every_solution():
    for path in (ROOT / "lessons").glob("*.ipynb"):
        text = path.read_text()
        assert grading.BEGIN not in text and grading.END not in text, path.name
        assert "edit the solution" in text


def test_solutions_are_clean_sources():
    for path in (ROOT / "solutions").glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs, f"{path.name}: committed outputs"
                assert "raises-exception" not in cell.metadata.get("tags", []), f"{path.name}: solutions must not raise"
        assert any(grading.BEGIN in c.source for c in nb.cells), f"{path.name} has no exercise"


def test_every_exercise_is_followed_by_its_graded_check():
    """nbgrader's metadata, as `make lessons` writes it: an answer cell, then a locked, graded check cell."""
    for path in (ROOT / "solutions").glob("*.ipynb"):
        cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        ids = [c.metadata["nbgrader"]["grade_id"] for c in cells if "nbgrader" in c.metadata]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate grade ids {ids}"
        for cell, after in zip(cells, cells[1:] + [None]):
            if grading.BEGIN not in cell.source:
                continue
            answer = cell.metadata.get("nbgrader", {})
            assert answer.get("solution") is True and answer.get("grade") is False, f"{path.name}: run `make lessons`"
            assert answer["schema_version"] == grading.NBGRADER_SCHEMA
            name = f"check_{answer['grade_id']}"
            assert after is not None and after.source.lstrip().startswith(f"from kdlib.checks import {name}\n"), \
                f"{path.name}: exercise {answer['grade_id']} is not followed by a cell that imports and calls its check"
            test = after.metadata.get("nbgrader", {})
            assert test == {"grade": True, "grade_id": f"check_{answer['grade_id']}", "locked": True,
                            "points": grading.POINTS, "schema_version": 3, "solution": False, "task": False}
            assert f"check_{answer['grade_id']}" in after.source


def test_solutions_are_nbgrader_sources_already():
    """`make lessons` has been run: giving the solutions nbgrader's metadata again changes nothing."""
    import copy

    for path in (ROOT / "solutions").glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        assert grading.grade_cells(copy.deepcopy(nb), path.name) == nb, f"{path.name}: run `make lessons`"


def _answer_lines(solution) -> set[str]:
    """The distinctive code lines inside a notebook's solution regions."""
    lines, inside = set(), False
    for cell in solution.cells:
        for line in cell.source.splitlines() if cell.cell_type == "code" else []:
            stripped = line.strip()
            if stripped in (grading.BEGIN, grading.END):
                inside = stripped == grading.BEGIN
            elif inside and len(stripped) >= 12 and not stripped.startswith("#"):
                lines.add(stripped)
    return lines


# Lines of a solution that are not its answer: generic statements a lesson may well contain.
GENERIC_LINES = {"from torch import nn", "torch.manual_seed(0)", "return model"}


def test_no_lesson_shows_an_answer():
    """No line of any solution region appears anywhere in any lesson, code or text (lesson 0 once printed one)."""
    answers = {}
    for path in (ROOT / "solutions").glob("*.ipynb"):
        for line in _answer_lines(nbformat.read(path, as_version=4)) - GENERIC_LINES:
            answers.setdefault(line, path.name)
    assert len(answers) > 20, "the scan found almost no solution code"
    for path in sorted((ROOT / "lessons").glob("*.ipynb")):
        lesson = nbformat.read(path, as_version=4)
        shown = {line.strip() for cell in lesson.cells for line in cell.source.splitlines()}
        for cell in lesson.cells:
            for out in cell.get("outputs", []):
                shown |= {line.strip() for line in str(out.get("text", "")).splitlines()}
        leaks = sorted(f"{line!r} (from solutions/{answers[line]})" for line in shown if line in answers)
        assert not leaks, f"lessons/{path.name} shows solution code: {leaks}"


def test_every_lesson_starts_with_its_setup_cell():
    for path in (ROOT / "lessons").glob("*.ipynb"):
        cells = nbformat.read(path, as_version=4).cells
        assert [cells[0].id, cells[1].id] == [lessons.BANNER_ID, lessons.SETUP_ID], path.name
        assert "KDLIB_WHEEL" in cells[1].source and "find_spec(\"kdlib\")" in cells[1].source
    lesson8 = nbformat.read(ROOT / "lessons" / "08_language_model_from_a_giant.ipynb", as_version=4)
    assert lesson8.cells[1].source.endswith('kdlib.data.ensure("shakespeare")')


def test_setup_cell_is_a_no_op_where_kdlib_and_the_data_are(capsys):
    """In the repository the setup cell installs nothing, downloads nothing and prints nothing."""
    import subprocess
    from unittest import mock

    with mock.patch.object(subprocess, "run", side_effect=AssertionError("setup cell ran a command")):
        exec(lessons.setup_cell(["fashion_mnist"]), {})
    assert capsys.readouterr().out == ""


def test_ensure_fetches_only_what_is_missing(data_home, monkeypatch, capsys):
    from kdlib import data, fashion_mnist

    monkeypatch.setattr(fashion_mnist, "DEBIAN_FASHION_DIR", data_home / "no-debian")
    fetched = []
    monkeypatch.setattr(fashion_mnist, "download_fashion_mnist", lambda: fetched.append(1) or data_home / "fashion-mnist")
    data.ensure("digits", "mnist1d")
    assert fetched == [] and capsys.readouterr().out == ""
    data.ensure("fashion_mnist")
    assert fetched == [1] and "downloading it with torchvision" in capsys.readouterr().out
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'"):
        data.ensure("imagenet")


def test_setup_cell_without_kdlib_says_how_to_install_it(tmp_path):
    import subprocess
    import sys

    code = lessons.setup_cell([])
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}  # no PYTHONPATH: kdlib not importable
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    if out.returncode == 0:
        pytest.skip("kdlib is installed in this interpreter itself (not as an editable checkout)")
    assert "ModuleNotFoundError: kdlib is not installed here. Set KDLIB_WHEEL" in out.stderr, out.stderr


def _nb(*sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    return nb


def test_generator_inside_a_function_keeps_the_cell_runnable():
    src = "def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n\ncheck(f)"
    cell = lessons.make_lesson(_nb(src), "t.ipynb").cells[2]
    assert "return 2 * x" not in cell.source
    assert "    raise NotImplementedError()" in cell.source and cell.source.endswith("check(f)")
    assert "raises-exception" not in cell.metadata["tags"]


def test_a_check_imported_in_its_own_cell_is_graded_and_a_bare_helper_call_is_not():
    src = "def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION"
    check = "from kdlib.checks import check_double\ncheck_double(f)"
    graded = grading.grade_cells(_nb(src, check), "t.ipynb")
    assert graded.cells[1].metadata["nbgrader"]["grade_id"] == "check_double"
    helper = grading.grade_cells(_nb(src, "check_double(f)"), "t.ipynb")  # not kdlib's check: nothing to grade
    assert helper.cells[0].metadata["nbgrader"]["grade_id"] == "exercise_1" and "nbgrader" not in helper.cells[1].metadata


def test_the_locked_check_cell_cannot_be_stood_in_for_by_rebinding_names():
    """An answer cell that rebinds ``kd`` and ``check_x`` to fakes does not change what the check cell runs."""
    import types

    import pytest

    from kdlib.checks import CheckFailed

    kernel = {"types": types}
    exec("import kdlib as kd\n"
         "def queries_to_match(*args):\n    return -1\n"  # a wrong answer, and then the cheat:
         "kd = types.SimpleNamespace(checks=types.SimpleNamespace(check_queries_to_match=lambda f: None))\n"
         "check_queries_to_match = lambda f: None", kernel)
    exec("kd.checks.check_queries_to_match(queries_to_match)", kernel)  # the old check cell: fooled
    with pytest.raises(CheckFailed):
        exec("from kdlib.checks import check_queries_to_match\ncheck_queries_to_match(queries_to_match)", kernel)


def test_generator_moves_a_check_into_its_own_graded_cell():
    src = "def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n\n\nkd.checks.check_double(f)"
    nb = _nb(src, "print(f(1))")
    nb.cells[0].id = "03-07"
    graded = grading.grade_cells(nb, "t.ipynb")
    assert [c.source for c in graded.cells] == [src.split("\n\n\n")[0], "kd.checks.check_double(f)", "print(f(1))"]
    assert [c.id for c in graded.cells[:2]] == ["03-07", "03-07-check"]
    assert graded.cells[0].metadata["nbgrader"]["grade_id"] == "double"
    assert graded.cells[1].metadata["nbgrader"]["grade_id"] == "check_double"
    assert "nbgrader" not in graded.cells[2].metadata
    lesson = lessons.make_lesson(graded, "t.ipynb")
    assert lesson.cells[3].metadata["tags"] == ["raises-exception"]  # the check raises until it is done
    assert lesson.cells[2].source == "def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()"


def test_generator_top_level_region_is_tagged():
    src = "x = 1\n### BEGIN SOLUTION\ny = x + 1\n### END SOLUTION"
    cell = lessons.make_lesson(_nb(src), "t.ipynb").cells[2]
    assert cell.metadata["tags"] == ["raises-exception"]
    assert cell.source.startswith("x = 1\n# YOUR CODE HERE\nraise NotImplementedError()")


@pytest.mark.parametrize("src,match", [
    ("### BEGIN SOLUTION\nx", "never closed"),
    ("### END SOLUTION", "without"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "nested"),
])
def test_generator_rejects_broken_markers(src, match):
    with pytest.raises(ValueError, match=match):
        lessons.make_lesson(_nb(src), "t.ipynb")


def test_record_writes_only_when_asked(tmp_path, monkeypatch):
    monkeypatch.delenv(results.RESULTS_ENV, raising=False)
    results.record("a", 1, notebook="nb")  # no-op
    target = tmp_path / "results.json"
    monkeypatch.setenv(results.RESULTS_ENV, str(target))
    results.record("a", 1, notebook="nb")
    results.record("b", "x", notebook="nb")
    assert target.read_text().count('"nb"') == 1 and '"b": "x"' in target.read_text()


# --- solutions/NN_name.py: each solution notebook as paired jupytext percent text ---

def test_every_solution_has_its_text_pair():
    expected = pairing.expected_pairs(ROOT)
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
        assert meta.get("formats") == pairing.PAIRING["formats"], f"{path.name} is not paired; run `make lessons`"


def test_reading_a_pair_back_changes_nothing_in_its_notebook():
    """What `jupytext --sync` and JupyterLab do with a .py: its code, the notebook's ids and metadata."""
    import jupytext
    from jupytext.combine import combine_inputs_with_outputs

    for path in (ROOT / "solutions").glob("*.ipynb"):
        if not path.with_suffix(".py").exists():
            continue  # test_every_solution_has_its_text_pair says so
        text_nb = jupytext.read(path.with_suffix(".py"), fmt=pairing.PAIR_FORMAT)
        back = combine_inputs_with_outputs(text_nb, nbformat.read(path, as_version=4), fmt=pairing.PAIR_FORMAT)
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
    lessons.build(tmp_path)
    return tmp_path / "solutions" / "01_t.ipynb", tmp_path / "solutions" / "01_t.py"


def _touch_later(path, than):
    t = than.stat().st_mtime_ns + 10**9
    os.utime(path, ns=(t, t))


def test_build_writes_the_pair_and_unpaired_lessons(tmp_path):
    ipynb, py = _course(tmp_path)
    assert py.read_text() == pairing.expected_pairs(tmp_path)["01_t.py"]
    assert "# %%\nx = 1" in py.read_text() and "formats: ipynb,py:percent" in py.read_text()
    assert nbformat.read(ipynb, as_version=4).metadata["jupytext"]["formats"] == "ipynb,py:percent"
    assert "jupytext" not in nbformat.read(tmp_path / "lessons" / "01_t.ipynb", as_version=4).metadata
    assert lessons.build(tmp_path) == []  # nothing left to do


def test_build_rewrites_the_pair_after_a_notebook_edit(tmp_path):
    ipynb, py = _course(tmp_path)
    nb = nbformat.read(ipynb, as_version=4)
    nb.cells[0].source = "x = 2"
    nbformat.write(nb, ipynb)
    _touch_later(ipynb, py)
    assert set(lessons.build(tmp_path)) == {py, tmp_path / "lessons" / "01_t.ipynb"}
    assert "x = 2" in py.read_text()


def test_build_will_not_overwrite_a_newer_edited_pair(tmp_path):
    ipynb, py = _course(tmp_path)
    py.write_text(py.read_text().replace("x = 1", "x = 3"))
    _touch_later(py, ipynb)
    before = ipynb.read_text(), py.read_text()
    with pytest.raises(pairing.PairConflictError, match="jupytext --sync"):
        lessons.build(tmp_path)
    assert (ipynb.read_text(), py.read_text()) == before
    # the documented way to keep the edit: jupytext --sync carries it into the notebook, ids kept
    from jupytext.cli import jupytext as jupytext_cli

    jupytext_cli(["--sync", "--quiet", str(py)])
    nb = nbformat.read(ipynb, as_version=4)
    assert nb.cells[0].source == "x = 3" and [c.id for c in nb.cells] == ["01-00", "01-01"]
    assert lessons.build(tmp_path) == [tmp_path / "lessons" / "01_t.ipynb"]


def test_build_makes_a_notebook_from_a_new_text_lesson(tmp_path):
    ipynb, py = _course(tmp_path)
    new = tmp_path / "solutions" / "02_new.py"
    new.write_text("# ---\n# jupyter:\n#   jupytext:\n#     text_representation:\n#       extension: .py\n"
                   "#       format_name: percent\n# ---\n\n# %% [markdown]\n# # A new lesson\n\n# %%\ny = 2\n")
    lessons.build(tmp_path)
    nb = nbformat.read(new.with_suffix(".ipynb"), as_version=4)
    assert nb.metadata["jupytext"] == pairing.PAIRING
    assert [c.id for c in nb.cells] == ["02-00", "02-01"] and nb.cells[1].source == "y = 2"
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert (tmp_path / "lessons" / "02_new.ipynb").exists()
    assert new.read_text() == pairing.expected_pairs(tmp_path)["02_new.py"]


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
    assert runner.run(out, timeout=5, root=tmp_path) == 3
    summary = (out / "summary.md").read_text()
    assert "| 01_dies.ipynb |" in summary and "FAILED at cell 3 of 4: the kernel died" in summary
    assert "FAILED at cell 2 of 2: timed out after 5 s" in summary
    assert r"FAILED at cell 2 of 2: ValueError: a \| b |" in summary
    assert summary.rstrip().endswith("| ok |") and "\x1b" not in summary
    assert {p.name for p in out.glob("*.ipynb")} == {f"{n}.ipynb" for n in notebooks}


@pytest.mark.parametrize("argv", [["course", "run", "01", "02", "--out", "D"], ["course", "run", "--out", "D", "01", "02"]])
def test_course_run_takes_names_before_or_after_out(monkeypatch, argv):
    from kdlib.tooling import cli

    seen = []
    monkeypatch.setattr(runner, "run", lambda out, names, timeout: seen.append((str(out), names, timeout)) or 0)
    assert cli.main(argv) == 0
    assert cli.main(argv + ["--timeout", "60"]) == 0
    assert seen == [("D", ["01", "02"], 1800), ("D", ["01", "02"], 60)]


def test_course_run_with_an_unknown_name_fails_and_touches_nothing(tmp_path, capsys):
    from kdlib.tooling import cli

    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.md").write_text("earlier summary")
    (out / "results.json").write_text("{}")
    assert cli.main(["course", "run", "--out", str(out), "no_such_lesson"]) == 2
    err = capsys.readouterr().err
    assert "no solution notebook matches 'no_such_lesson'" in err and "03_distillation" in err
    assert (out / "summary.md").read_text() == "earlier summary" and (out / "results.json").exists()


def test_a_partial_run_adds_to_the_folder_and_replaces_only_what_ran(tmp_path):
    for name, value in (("01_a", 1), ("02_b", 2)):
        nbformat.write(_nb(f"import kdlib as kd\nkd.experiments.record('value', {value})"), tmp_path / f"{name}.ipynb")
    out = tmp_path / "out"
    runner.run_all([tmp_path / "01_a.ipynb", tmp_path / "02_b.ipynb"], out, smoke=True, timeout=120)
    nbformat.write(_nb("import kdlib as kd\nkd.experiments.record('value', 20)"), tmp_path / "02_b.ipynb")
    runner.run_all([tmp_path / "02_b.ipynb"], out, smoke=True, timeout=120)
    results = json.loads((out / "results.json").read_text())
    assert results == {"01_a": {"value": 1}, "02_b": {"value": 20}}  # 01_a's numbers kept, 02_b's replaced
    summary = (out / "summary.md").read_text()
    assert "| 01_a.ipynb |" in summary and "ok (earlier run" in summary and "| 02_b.ipynb |" in summary
    assert summary.index("01_a") < summary.index("02_b")
    with pytest.raises(ValueError, match="smoke-size run"):
        runner.run_all([tmp_path / "02_b.ipynb"], out, smoke=False)  # never mixes the sizes in one folder
    assert json.loads((out / "results.json").read_text()) == results


def test_course_run_reports_an_unreadable_notebook_and_goes_on(tmp_path):
    (tmp_path / "solutions").mkdir()
    (tmp_path / "solutions" / "01_truncated.ipynb").write_text('{"cells": [')
    (tmp_path / "solutions" / "02_not_a_notebook.ipynb").write_text("{}")
    nbformat.write(_nb("x = 1"), tmp_path / "solutions" / "03_ok.ipynb")
    out = tmp_path / "out"
    assert runner.run(out, timeout=60, root=tmp_path) == 2
    rows = {line.split(" | ")[0].lstrip("| "): line for line in (out / "summary.md").read_text().splitlines()
            if line.startswith("| 0")}
    assert "FAILED: not a readable notebook (NotJSONError: Notebook does not appear to be JSON" in rows["01_truncated.ipynb"]
    assert "FAILED: not a readable notebook (" in rows["02_not_a_notebook.ipynb"]
    assert rows["03_ok.ipynb"].endswith("| ok |")
    assert {p.name for p in out.glob("*.ipynb")} == {"03_ok.ipynb"}  # nothing executed, nothing written


def test_run_all_gives_each_kernel_its_environment_and_leaves_ours_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLIB_SMOKE", "0")
    monkeypatch.setenv("KDLIB_GONE", "here")
    nb = _nb("import os\nprint([os.environ.get(k) for k in ('KDLIB_SMOKE', 'KDLIB_NOTEBOOK', 'KDLIB_RESULTS', "
             "'KDLIB_GONE', 'KDLIB_EXTRA')])")
    nbformat.write(nb, tmp_path / "01_env.ipynb")
    (run,) = runner.run_all([tmp_path / "01_env.ipynb"], tmp_path / "out", smoke=True, timeout=60, results=False,
                            env={"KDLIB_GONE": None, "KDLIB_EXTRA": "x"})
    assert run.ok and run.wrote == tmp_path / "out" / "01_env.ipynb"
    printed = nbformat.read(run.wrote, as_version=4).cells[0].outputs[0]["text"]
    assert printed.strip() == "['1', '01_env', None, None, 'x']"
    assert os.environ["KDLIB_SMOKE"] == "0" and os.environ["KDLIB_GONE"] == "here" and "KDLIB_EXTRA" not in os.environ
    assert (tmp_path / "out" / "summary.md").read_text().startswith("# Course run (smoke size)")


def test_the_summary_is_written_even_when_the_run_is_interrupted(tmp_path, monkeypatch):
    done = []

    def fake(path, out, *, timeout, env):
        if done:
            raise KeyboardInterrupt
        done.append(path)
        return runner.NotebookRun(path, "ok", 3.0, None)

    monkeypatch.setattr(runner, "execute_notebook", fake)
    with pytest.raises(KeyboardInterrupt):
        runner.run_all([tmp_path / "01_a.ipynb", tmp_path / "02_b.ipynb"], tmp_path / "out", smoke=False)
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert summary.startswith("# Course run (full size)") and "| 01_a.ipynb | 3 | ok |" in summary
    assert "02_b" not in summary
