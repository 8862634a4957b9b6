"""Seed statistics: how two routes differ over a few seeds, and the course's one rule for a real gain.

Every comparison in the course is between two routes trained with a few seeds each (3 at full
size).  Training noise — initialisation, batch order, a random label split — moves a result by
about the *seed spread*, the sample standard deviation over seeds, so the course judges a
difference by one rule, stated here once (:func:`is_real`) and used by every lesson:

    **a gain counts when it exceeds twice the seed spread**, the spread being the larger of the
    two routes' sample standard deviations.

:func:`compare` applies it and also reports the *paired* view: seed i of one route against seed i
of the other (same initialisation and data order), the mean of those differences, their spread
and a 95 % t-interval — what a statistician would quote for so few seeds.  The interval is shown,
never used for the verdict: one rule, the same everywhere.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Sequence

#: The rule's factor: a difference counts when it exceeds ``FACTOR ×`` the seed spread.
FACTOR = 2.0

# 97.5 % quantiles of Student's t for 1–30 degrees of freedom (two-sided 95 %), to 4 decimals.
_T975 = (12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
         2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
         2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423)


def _values(values: Sequence[float], what: str) -> list[float]:
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be a sequence of numbers (one per seed), got {values!r}.") from None
    if not out:
        raise ValueError(f"{what} needs at least one value (one per seed).")
    if not all(math.isfinite(v) for v in out):
        raise ValueError(f"{what} holds a NaN or infinite value: {out}; a diverged run has no place in a comparison.")
    return out


def spread(values: Sequence[float]) -> float:
    """The seed spread: the **sample** standard deviation ``s = sqrt(Σ (x_i − x̄)² / (n − 1))``.

    The n − 1 (Bessel's correction) makes ``s²`` an unbiased estimate of the variance, which
    matters with three seeds.  One value has no spread: 0.0.

    Introduced in lesson 3.
    """
    values = _values(values, "spread")
    return statistics.stdev(values) if len(values) > 1 else 0.0


def t_quantile(df: int) -> float:
    """``t_{0.975, df}``, the 97.5 % quantile of Student's t with ``df`` degrees of freedom (two-sided 95 %).

    A table to 4 decimals for df ≤ 30; beyond, the Cornish–Fisher expansion about the normal
    quantile z = 1.959964 (Abramowitz & Stegun 26.7.5, four terms), within 1e-7 there.
    """
    if isinstance(df, bool) or not isinstance(df, int) or df < 1:
        raise ValueError(f"degrees of freedom must be a positive integer, got {df!r}.")
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959963984540054
    g = ((z**3 + z) / 4, (5 * z**5 + 16 * z**3 + 3 * z) / 96, (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384,
         (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160)
    return z + sum(gk / df ** (k + 1) for k, gk in enumerate(g))


def t_interval(values: Sequence[float]) -> tuple[float, float]:
    """The 95 % t-interval of the mean: ``x̄ ± t_{0.975, n−1} · s / √n``, s the sample std (:func:`spread`).

    Right for a handful of seeds, where the normal ±1.96·s/√n would be far too narrow (with 3
    seeds t is 4.30).  One value gives no interval: ``(−inf, inf)``.
    """
    values = _values(values, "t_interval")
    n, mean = len(values), statistics.fmean(values)
    if n < 2:
        return -math.inf, math.inf
    half = t_quantile(n - 1) * spread(values) / math.sqrt(n)
    return mean - half, mean + half


def is_real(gain: float, spread: float) -> bool:
    """The course's rule: a gain counts when it exceeds twice the seed spread, ``gain > 2 · spread``.

    ``gain`` is signed so that positive means better (for a loss such as bits per character, pass
    the decrease); ``spread`` is the larger seed spread of the two routes compared.  A loss counts
    the same way: ``is_real(−gain, spread)``.  Twice the spread is a rule of thumb, not a test: it
    asks the difference of two means to stand clear of what reseeding alone moves a result by.
    """
    gain, spread = float(gain), float(spread)
    if not (math.isfinite(gain) and math.isfinite(spread)) or spread < 0:
        raise ValueError(f"is_real needs a finite gain and a spread ≥ 0, got gain={gain!r}, spread={spread!r}.")
    return gain > FACTOR * spread


@dataclass(frozen=True)
class Comparison:
    """A candidate route against a baseline, seed by seed, with the course's verdict (see :func:`compare`).

    ``gain`` = mean(candidate) − mean(baseline), sign flipped when lower is better, so positive is
    always better; ``spread`` = the larger of the two routes' sample standard deviations;
    ``threshold`` = 2 · spread; ``real`` / ``worse``: the gain / the loss exceeds the threshold
    (:func:`is_real`) — both False when a route has a single seed, which has no spread to judge by.
    ``differences`` are the paired per-seed gains (None when the routes have different numbers of
    seeds), ``difference_spread`` their sample std and ``interval`` their mean's 95 % t-interval.
    """

    baseline: tuple[float, ...]
    candidate: tuple[float, ...]
    higher_is_better: bool = True

    @property
    def _sign(self) -> float:
        return 1.0 if self.higher_is_better else -1.0

    @property
    def gain(self) -> float:
        return self._sign * (statistics.fmean(self.candidate) - statistics.fmean(self.baseline))

    @property
    def spread(self) -> float:
        return max(spread(self.baseline), spread(self.candidate))  # the module's spread(), not this property

    @property
    def threshold(self) -> float:
        return FACTOR * self.spread

    @property
    def judged(self) -> bool:
        """True when both routes have at least two seeds, so there is a spread to judge by."""
        return min(len(self.baseline), len(self.candidate)) >= 2

    @property
    def real(self) -> bool:
        return self.judged and is_real(self.gain, self.spread)

    @property
    def worse(self) -> bool:
        return self.judged and is_real(-self.gain, self.spread)

    @property
    def verdict(self) -> str:
        if not self.judged:
            return "one seed: no spread to judge by, no verdict"
        if self.real:
            return "a real gain (more than twice the seed spread)"
        if self.worse:
            return "a real loss (worse by more than twice the seed spread)"
        return "within the seed noise (not more than twice the seed spread)"

    @property
    def differences(self) -> tuple[float, ...] | None:
        if len(self.baseline) != len(self.candidate):
            return None
        return tuple(self._sign * (c - b) for b, c in zip(self.baseline, self.candidate))

    @property
    def difference_spread(self) -> float | None:
        return None if self.differences is None else spread(self.differences)

    @property
    def interval(self) -> tuple[float, float] | None:
        return None if self.differences is None else t_interval(self.differences)

    def describe(self, digits: int = 2, unit: str = "") -> str:
        """One line: the gain, twice the spread, the paired interval where there is one, and the verdict."""
        unit = f" {unit}" if unit else ""
        text = f"{self.gain:+.{digits}f}{unit} (twice the seed spread: {self.threshold:.{digits}f}"
        if self.interval is not None and math.isfinite(self.interval[0]):
            low, high = self.interval
            text += f"; paired 95 % t-interval {low:+.{digits}f} to {high:+.{digits}f}"
        return text + f") → {self.verdict}"

    def __str__(self) -> str:
        return self.describe(3)


def compare(baseline: Sequence[float], candidate: Sequence[float], *, higher_is_better: bool = True) -> Comparison:
    """Judge ``candidate`` against ``baseline`` (one value per seed, in the same seed order) by the course's rule.

    ``higher_is_better=False`` for losses and bits per character.  Returns a :class:`Comparison`:
    ``gain`` (positive = better), ``spread``, ``threshold`` (= 2 · spread), ``real``, ``worse``,
    a printable ``verdict`` and ``describe()``, and the paired differences with their spread and
    95 % t-interval.  Example, accuracies in points over three seeds::

        >>> c = compare([88.1, 88.4, 88.2], [88.9, 89.0, 88.6])
        >>> round(c.gain, 2), round(c.threshold, 2), c.real
        (0.6, 0.42, True)

    Introduced in lesson 3.
    """
    if not isinstance(higher_is_better, bool):
        raise TypeError(f"higher_is_better must be True or False, got {higher_is_better!r}.")
    return Comparison(tuple(_values(baseline, "compare's baseline")), tuple(_values(candidate, "compare's candidate")),
                      higher_is_better)
