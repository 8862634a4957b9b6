"""Checked numbers: one clear error for a bad number, shared by every module that takes one.

A learner's number may arrive as a Python ``int``/``float`` or as a NumPy scalar (``np.float32``
from an array sweep, ``np.int64`` from a count); all are accepted.  Strings, booleans, tensors,
NaN and infinities are not: they get a message that names the argument and what was given.
"""
from __future__ import annotations

import math
import numbers


def finite_number(value, what: str, low: float = 0.0, strict: bool = False, hint: str = "",
                  high: float | None = None) -> float:
    """``float(value)`` if it is a real, finite number ``≥ low`` (``> low`` when ``strict``) and, when
    ``high`` is given, ``≤ high``; else ``ValueError``.

    ``what`` names the argument in the message; ``hint`` is appended to it (say what to do).
    """
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < low or (strict and value == low) or (high is not None and value > high):
        span = f"in [{low:g}, {high:g}]" if high is not None else f"{'>' if strict else '≥'} {low:g}"
        raise ValueError(f"{what} must be a finite number {span}, got {value!r}.{hint}")
    return float(value)
