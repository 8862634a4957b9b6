"""The energy ledger and the break-even point: when does a distilled student repay its teacher?

A route's lifecycle energy is what it costs once (training; for a distilled student, the
teacher's training and the distillation too) plus what it costs per query, times the queries it
serves.  :class:`Ledger` keeps those figures with their sources; :func:`break_even` finds the
number of queries after which one route is cheaper than another for good.
"""
from __future__ import annotations

import math

from .tables import Table
from .validate import finite_number


def break_even(upfront_a: float, per_query_a: float, upfront_b: float, per_query_b: float) -> float:
    """Queries after which route A's total ``upfront + q · per_query`` is below route B's.

    ``q* = (upfront_a − upfront_b) / (per_query_b − per_query_a)``; 0 if A is never worse;
    ``math.inf`` if A never becomes cheaper for good (its per-query cost is not lower).  The
    course's use: A = distilled student, whose upfront includes training the teacher and
    distilling, with cheap inference; B = a small model trained from scratch.  Lesson 4 has the
    learner write it (and uses :meth:`Ledger.break_even`).

    Introduced in lesson 5.
    """
    upfront_a, per_query_a, upfront_b, per_query_b = (
        finite_number(value, "Each break_even argument (joules)")
        for value in (upfront_a, per_query_a, upfront_b, per_query_b))
    if upfront_a <= upfront_b and per_query_a <= per_query_b:
        return 0.0
    if per_query_a >= per_query_b:
        return math.inf
    return (upfront_a - upfront_b) / (per_query_b - per_query_a)


def students_per_teacher(teacher_cost: float, distilled_cost: float, scratch_cost: float) -> float:
    """How many students must share one teacher before distilling them is cheaper than training each without it.

    Each distilled student costs ``distilled_cost`` (its own training, on soft labels), each student
    trained without a teacher ``scratch_cost`` (the labels-only training that reaches **the same
    quality**), and the teacher (training and its cache) ``teacher_cost`` once for all of them.  N
    students pay when ``teacher_cost + N · distilled_cost < N · scratch_cost``, so the answer is the
    smallest such whole N: ``floor(teacher_cost / (scratch_cost − distilled_cost)) + 1``; ``math.inf``
    when a distilled student is not cheaper than its scratch match (then no number of them repays
    the teacher).  Any unit works (FLOPs, joules) as long as all three share it.

    Introduced in lesson 10.
    """
    teacher_cost, distilled_cost, scratch_cost = (
        finite_number(value, "Each students_per_teacher argument (a cost)")
        for value in (teacher_cost, distilled_cost, scratch_cost))
    saving = scratch_cost - distilled_cost
    if saving <= 0:
        return math.inf
    return float(math.floor(teacher_cost / saving) + 1)


class Ledger:
    """Energy by route × phase: upfront joules (training) and joules per query (inference).

    ``add(route, phase, joules, source)`` records an upfront phase; ``per_query=True`` records
    inference (joules and seconds per query), shown per 1M queries.  A shared phase (the teacher)
    is added to each route that needs it.  ``total(route, queries)`` = upfront + queries ×
    per-query joules.

    Introduced in lesson 4.
    """

    def __init__(self, title: str = "Energy ledger"):
        self.title = title
        self.entries: list[dict] = []

    def add(self, route: str, phase: str, joules: float, source: str, seconds: float | None = None,
            per_query: bool = False) -> "Ledger":
        joules = finite_number(joules, "joules")
        if seconds is not None:
            seconds = finite_number(seconds, "seconds")
        if not source or not isinstance(source, str):
            raise ValueError("Every figure needs its source, e.g. meter.source or 'estimate: ...'.")
        if any(e["route"] == route and e["phase"] == phase for e in self.entries):
            raise ValueError(f"{route!r} already has a phase {phase!r}; give this one another name.")
        self.entries.append(dict(route=route, phase=phase, joules=joules, source=source,
                                 seconds=seconds, per_query=bool(per_query)))
        return self

    def _split(self, route: str) -> tuple[float, float]:
        rows = [e for e in self.entries if e["route"] == route]
        if not rows:
            raise ValueError(f"Unknown route {route!r}: the ledger has {sorted({e['route'] for e in self.entries})}.")
        return (sum(e["joules"] for e in rows if not e["per_query"]),
                sum(e["joules"] for e in rows if e["per_query"]))

    def total(self, route: str, queries: float = 0) -> float:
        """Joules of ``route`` after serving ``queries`` queries (a count ≥ 0)."""
        queries = finite_number(queries, "queries", hint=" It is the number of queries served after "
                                "training, e.g. 1_000_000.")
        upfront, per_query = self._split(route)
        return upfront + queries * per_query

    def break_even(self, route_a: str, route_b: str) -> float:
        """:func:`break_even` between two routes of this ledger."""
        return break_even(*self._split(route_a), *self._split(route_b))

    def table(self, queries: int = 1_000_000) -> Table:
        """Every phase of every route, then the route's total; a source shared by all entries goes in the title."""
        queries = finite_number(queries, "queries")
        sources = {e["source"] for e in self.entries}
        shared = sources.pop() if len(sources) == 1 else None
        rows = []
        for route in dict.fromkeys(e["route"] for e in self.entries):
            for e in (e for e in self.entries if e["route"] == route):
                times = queries if e["per_query"] else 1
                row = {"route": route, "phase": e["phase"], "basis": f"per {queries:,.0f} queries"
                       if e["per_query"] else "once", "J": round(e["joules"] * times, 1),
                       "Wh": round(e["joules"] * times / 3600, 4),
                       "s": None if e["seconds"] is None else round(e["seconds"] * times, 1)}
                if shared is None:
                    row["source"] = e["source"]
                rows.append(row)
            j = self.total(route, queries)
            guessed = any("estimate" in e["source"] for e in self.entries if e["route"] == route)
            total = {"route": route, "phase": "TOTAL", "basis": f"once + {queries:,.0f} queries", "J": round(j, 1),
                     "Wh": round(j / 3600, 4), "s": None}
            if shared is None:
                total["source"] = "sum, includes an estimate" if guessed else "sum"
            rows.append(total)
        return Table(rows, self.title + (f" — source: {shared}" if shared else ""))

    def _repr_html_(self) -> str:
        return self.table()._repr_html_()

    def __repr__(self) -> str:
        return str(self.table())
