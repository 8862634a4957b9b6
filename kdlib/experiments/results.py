"""The course summary's headline results: what each lesson records for ``make course``."""
from __future__ import annotations

import json
import os
from pathlib import Path

#: The environment variable that names the results file (``make course`` sets it).
RESULTS_ENV = "KDLIB_RESULTS"


def record(key: str, value, notebook: str | None = None) -> None:
    """Add a headline result to the course summary (a no-op unless ``KDLIB_RESULTS`` is set).

    ``make course`` sets it; the summary then lists each notebook's key numbers.

    Introduced in lesson 0.
    """
    target = os.environ.get(RESULTS_ENV)
    if not target:
        return
    path = Path(target)
    results = json.loads(path.read_text()) if path.exists() else {}
    section = notebook or os.environ.get("KDLIB_NOTEBOOK", "unknown")
    results.setdefault(section, {})[key] = value
    path.write_text(json.dumps(results, indent=2, default=str))

