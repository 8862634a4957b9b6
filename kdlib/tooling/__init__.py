"""The course tooling: what makes, runs, publishes and grades the lessons — never imported by kdlib's library.

=============  =====================================================================
``lessons``    ``lessons/`` generated from ``solutions/`` (stubs, setup cell); ``make lessons``
``grading``    nbgrader's conventions: solution regions, the stub, answer and check cells' metadata
``pairing``    each solution's paired ``.py`` (jupytext's percent format)
``runner``     the one notebook runner: ``make course`` (full size), the book's smoke runs, ``summary.md``
``book``       the course as a static HTML site (Jupyter Book)
``bench``      kdlib side by side with the plain-PyTorch way
``cli``        ``python -m kdlib``
=============  =====================================================================

The library (``kdlib.*``) and the course's experiments (``kdlib.experiments``) never import from
here; a learner's code has no reason to.
"""
from __future__ import annotations

from pathlib import Path

#: The course repository: ``solutions/``, ``lessons/`` and ``build/`` live here.
ROOT = Path(__file__).resolve().parents[2]


class NotebookError(ValueError):
    """A notebook file that is not valid JSON, not a notebook, or has a broken solution marker; names the file."""


def read_notebook(path: Path):
    """A notebook file as an ``nbformat`` node (version 4); :class:`NotebookError` naming the file if it is none."""
    import nbformat

    try:
        return nbformat.read(path, as_version=4)
    except Exception as err:  # noqa: BLE001 - broken JSON (NotJSONError), an unknown nbformat, a schema error
        raise NotebookError(f"{path}: not a readable notebook ({type(err).__name__}: {str(err)[:300]})") from err


def notebook_text(nb) -> str:
    """A notebook as the JSON text written to disk (nbformat's layout, final newline)."""
    import nbformat

    return nbformat.writes(nb) + "\n"
