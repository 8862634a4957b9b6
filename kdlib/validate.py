"""Checked numbers: one clear error for a bad number, shared by every module that takes one.

A learner's number may arrive as a Python ``int``/``float`` or as a NumPy scalar (``np.float32``
from an array sweep, ``np.int64`` from a count); all are accepted.  Strings, booleans, tensors,
NaN and infinities are not: they get a message that names the argument and what was given.

Two checks, for the two kinds of number an argument can be:

* :func:`finite_number` for a real quantity (a learning rate, a temperature, a weight, joules);
* :func:`whole_number` for a count (epochs, a batch size, layers, ``k``, a seed): ``3.0`` is refused.
"""
from __future__ import annotations

import math
import numbers


def finite_number(value, what: str, low: float = 0.0, strict: bool = False, hint: str = "",
                  high: float | None = None, below: float | None = None) -> float:
    """``float(value)`` if it is a real, finite number ``≥ low`` (``> low`` when ``strict``) and, when
    ``high`` is given, ``≤ high`` (when ``below`` is given, ``< below``); else ``ValueError``.

    ``what`` names the argument in the message; ``hint`` is appended to it (say what to do).
    """
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < low or (strict and value == low) or (high is not None and value > high) \
            or (below is not None and value >= below):
        opening = "(" if strict else "["
        span = (f"in {opening}{low:g}, {high:g}]" if high is not None else f"in {opening}{low:g}, {below:g})"
                if below is not None else f"{'>' if strict else '≥'} {low:g}")
        raise ValueError(f"{what} must be a finite number {span}, got {value!r}.{hint}")
    return float(value)


def _kind(low: int | None) -> str:
    """What a whole number ``≥ low`` is called in a message."""
    return {None: "an integer", 0: "a non-negative integer", 1: "a positive integer"}.get(low, f"an integer ≥ {low}")


def whole_number(value, what: str, low: int | None = 1, hint: str = "", error: type[Exception] = ValueError) -> int:
    """``int(value)`` if it is an integer ``≥ low`` (any integer when ``low`` is ``None``); else ``error``.

    Python and NumPy integers (``np.int64(3)``) are accepted; booleans, floats (even ``3.0``),
    strings and tensors are not.  ``what`` names the argument in the message, ``hint`` is appended
    to it; ``error`` is the exception raised (``ValueError``, or ``TypeError`` where any integer is
    allowed and only the type can be wrong, as for a seed).
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or (low is not None and value < low):
        raise error(f"{what} must be {_kind(low)}, got {value!r}.{hint}")
    return int(value)
