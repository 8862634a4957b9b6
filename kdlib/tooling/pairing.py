"""Each solution notebook's paired plain text: ``solutions/NN_name.py`` in jupytext's percent format.

Each solution notebook is also kept as paired plain text, ``solutions/NN_name.py`` in jupytext's
percent format (``# %%`` cell markers), which reviewers diff and ruff lints.  The ``.ipynb`` is
the source: :func:`sync_pairs` (``make lessons``) rewrites each pair from its notebook.  The notebook's
``jupytext`` metadata pairs the two, so JupyterLab with jupytext saves both whichever one is open;
a ``.py`` edited elsewhere goes back into its notebook with ``jupytext --sync`` (keeping cell ids),
and :func:`sync_pairs` refuses to overwrite a pair that differs from its notebook and is newer than it.
"""
from __future__ import annotations

from pathlib import Path

from . import ROOT, notebook_text, read_notebook
from .grading import grade_cells

PAIR_FORMAT = "py:percent"
# Notebook metadata that pairs a solution with its text file.  The filter keeps jupytext's own
# version out of the text header, so a different jupytext release does not rewrite every pair;
# nbgrader's cell metadata stays out of the .py too (build() derives it from the code).
PAIRING = {"formats": "ipynb,py:percent",
           "notebook_metadata_filter": "-jupytext.text_representation.jupytext_version",
           "cell_metadata_filter": "-nbgrader"}


def paired(solution):
    """``solution`` with the ``jupytext`` metadata that pairs it with its percent-format ``.py``."""
    solution.metadata["jupytext"] = {**solution.metadata.get("jupytext", {}), **PAIRING}
    return solution


def pair_text(solution) -> str:
    """The paired text of a solution notebook: jupytext's percent format, as jupytext writes it."""
    import jupytext

    return jupytext.writes(paired(solution), PAIR_FORMAT)


def expected_pairs(root: Path = ROOT) -> dict[str, str]:
    """File name → the text each ``solutions/NN_name.py`` should hold, from its ``.ipynb``."""
    return {p.with_suffix(".py").name: pair_text(read_notebook(p)) for p in sorted((root / "solutions").glob("*.ipynb"))}


class PairConflictError(ValueError):
    """A solution's ``.py`` pair was edited after its notebook: :func:`build` will not overwrite it."""


def _notebook_from_text(path: Path):
    """A new solution notebook read from a percent-format ``.py`` that has none yet.

    Cell ids follow the course's ``NN-MM`` convention (lesson number, cell number).
    """
    import jupytext

    nb = paired(jupytext.read(path, fmt=PAIR_FORMAT))
    for key in ("text_representation", "main_language"):  # they describe the .py; the kernelspec says Python
        nb.metadata["jupytext"].pop(key, None)
    nb.metadata.setdefault("kernelspec", {"display_name": "Python 3 (ipykernel)", "language": "python",
                                          "name": "python3"})
    for i, cell in enumerate(nb.cells):
        cell.id = f"{path.stem.split('_')[0]}-{i:02d}"
    return nb


def sync_pairs(root: Path = ROOT) -> list[Path]:
    """Write each ``solutions/*.py`` pair from its notebook; return the files written.

    The notebook is the source.  A notebook missing the pairing metadata gets it; a ``.py`` with no
    notebook (a lesson started as text) becomes one.  Nothing is written when a ``.py`` differs
    from its notebook and was modified after it — that is an edit made outside JupyterLab, which
    would be lost: :class:`PairConflictError` says how to keep or drop it.
    """
    solutions = root / "solutions"
    notebooks = {ipynb: read_notebook(ipynb) for ipynb in sorted(solutions.glob("*.ipynb"))}
    notebooks.update({py.with_suffix(".ipynb"): _notebook_from_text(py) for py in sorted(solutions.glob("*.py"))
                      if not py.with_suffix(".ipynb").exists()})
    plan, conflicts = [], []
    for ipynb, nb in sorted(notebooks.items()):
        grade_cells(nb, ipynb.name)
        text = pair_text(nb)  # also adds the pairing metadata to nb
        py = ipynb.with_suffix(".py")
        if (ipynb.exists() and py.exists() and py.read_text() != text
                and py.stat().st_mtime_ns > ipynb.stat().st_mtime_ns):
            conflicts.append(py)
        plan += [(ipynb, notebook_text(nb)), (py, text)]
    if conflicts:
        names = " ".join(f"solutions/{p.name}" for p in conflicts)
        raise PairConflictError(
            f"{names}: changed after the notebook and now different from it, so nothing was written. "
            f"To keep the change, carry it into the notebook (cell ids are kept): `jupytext --sync {names}`; "
            "to drop it, delete the .py. Then run `make lessons` again.")
    written = []
    for path, content in plan:
        if not path.exists() or path.read_text() != content:
            path.write_text(content)
            written.append(path)
    return written

