"""Capstone scoring: the best Fashion-MNIST model under an energy budget (lesson 7).

An entry is scored on the test split — which the learner must never train on or choose with —
for accuracy, size, CPU latency, inference energy per 1,000 queries, and training energy from the
learner's own :class:`kdlib.energy.EnergyMeter` (plus a teacher's training energy when the route
used one).  Its lifecycle energy is training + teacher + ``QUERIES`` queries; entries over the
budget are listed but ranked after every entry within it.  Impossible figures — NaN or infinite
or negative energies, accuracies outside [0, 1], a budget that is not a positive number — are
refused with an error naming the field, so one bad entry can never reorder the others.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from torch import nn

from .compress import latency, size_on_disk
from .dataset import Dataset
from .energy import EnergyMeter, energy_per_query
from .models import count_params
from .tables import Table
from .train import evaluate
from .validate import finite_number, whole_number

#: Lifecycle energy budget of the capstone, in watt-hours: training (+ any teacher) + 1M queries.
BUDGET_WH = 1.0
QUERIES = 1_000_000


@dataclass
class Score:
    """One scored entry; energies in joules, latency in seconds per query, ``budget_wh`` in Wh.

    Every figure is checked when the score is made: ``accuracy`` is a fraction in [0, 1], energies,
    size and latency are finite and ≥ 0, ``budget_wh`` is a positive number.
    """

    name: str
    accuracy: float
    params: int
    size_kb: float
    latency_s: float
    joules_per_1k_queries: float
    training_joules: float
    teacher_joules: float
    source: str
    budget_wh: float = BUDGET_WH

    def __post_init__(self):
        who = f"Score {self.name!r}:"
        self.accuracy = finite_number(self.accuracy, f"{who} accuracy (a fraction, not a percentage)", high=1.0)
        self.params = whole_number(self.params, f"{who} params (a count of weights)", low=0)
        for field in ("size_kb", "latency_s", "joules_per_1k_queries", "training_joules", "teacher_joules"):
            setattr(self, field, finite_number(getattr(self, field), f"{who} {field}"))
        self.budget_wh = finite_number(self.budget_wh, f"{who} budget_wh", strict=True)

    @property
    def lifecycle_wh(self) -> float:
        """(training + teacher + QUERIES queries) in Wh."""
        return (self.training_joules + self.teacher_joules + QUERIES / 1000 * self.joules_per_1k_queries) / 3600

    @property
    def within_budget(self) -> bool:
        """Lifecycle energy at most ``budget_wh`` (a leaderboard sets it to its own budget)."""
        return self.lifecycle_wh <= self.budget_wh


def score(name: str, model: nn.Module, data: Dataset, meter: EnergyMeter, teacher_joules: float = 0.0,
          min_seconds: float = 1.0, budget_wh: float = BUDGET_WH) -> Score:
    """Score ``model`` on ``data``'s test split; ``meter`` is the meter that measured its training.

    Pass ``teacher_joules`` (e.g. ``kd.experiments.teacher(data).meta["energy_joules"]``) when the
    route used the course teacher: a route that needed a giant pays for it.  A model whose
    outputs are NaN or infinite is an error (from :func:`kdlib.train.evaluate`), not a score.

    Introduced in lesson 7.
    """
    if not isinstance(meter, EnergyMeter) or meter.joules <= 0:
        raise ValueError("score() needs the EnergyMeter that measured the training, used as "
                         "`with meter: ...` around it, so the training energy is known.")
    teacher_joules = finite_number(teacher_joules, "teacher_joules", hint=" It is the teacher's training energy in joules, e.g. entry.meta[\"energy_joules\"].")
    model = model.eval()
    acc = evaluate(model, *data.test)["acc"]
    cpu_model = model.cpu()
    batch = data.X_test[:64].cpu()
    per_query = energy_per_query(cpu_model, batch, min_seconds=min_seconds, device="cpu")
    return Score(name=name, accuracy=acc, params=count_params(cpu_model),
                 size_kb=size_on_disk(cpu_model) / 1e3,
                 latency_s=latency(cpu_model, batch[0], min_seconds=min(min_seconds, 0.3)),
                 joules_per_1k_queries=1000 * per_query["joules_per_query"],
                 training_joules=meter.joules, teacher_joules=float(teacher_joules),
                 source=f"training: {meter.source}; inference: {per_query['source']}", budget_wh=budget_wh)


class Leaderboard:
    """Scores ranked: entries within the budget by accuracy, then those over it.

    The board's ``budget_wh`` is the one budget: each added entry is stored as a copy judged
    against it (``Score.within_budget`` of the copy agrees with the table), and re-checked.

    Introduced in lesson 7.
    """

    def __init__(self, budget_wh: float = BUDGET_WH):
        self.budget_wh = finite_number(budget_wh, "Leaderboard budget_wh (watt-hours)", strict=True)
        self.scores: list[Score] = []

    def add(self, entry: Score, *, replace_entry: bool = False) -> "Leaderboard":
        """Put ``entry`` on the board; a name already there is an error unless ``replace_entry=True`` (a resubmission)."""
        if not isinstance(entry, Score):
            raise TypeError(f"Leaderboard.add takes a Score (from kd.capstone.score), got {type(entry).__name__}.")
        if not replace_entry and any(s.name == entry.name for s in self.scores):
            raise ValueError(f"{entry.name!r} is already on the board; give the new entry another name, or pass "
                             "replace_entry=True to replace the earlier one.")
        entry = replace(entry, budget_wh=self.budget_wh)  # checks every figure again
        self.scores = [s for s in self.scores if s.name != entry.name] + [entry]
        return self

    def ranked(self) -> list[Score]:
        return sorted(self.scores, key=lambda s: (not s.within_budget, -s.accuracy))

    def table(self) -> Table:
        rows = []
        for rank, s in enumerate(self.ranked(), start=1):
            rows.append({"rank": rank if s.within_budget else "over budget", "entry": s.name, "test %": round(100 * s.accuracy, 2),
                         "parameters": s.params, "size kB": round(s.size_kb, 1),
                         "latency µs": round(1e6 * s.latency_s, 1),
                         "J / 1k queries": round(s.joules_per_1k_queries, 3),
                         "training Wh": round(s.training_joules / 3600, 3),
                         "teacher Wh": round(s.teacher_joules / 3600, 3),
                         "lifecycle Wh": round(s.lifecycle_wh, 3)})
        estimate = any("estimate" in s.source for s in self.scores)
        return Table(rows, f"Capstone leaderboard — budget {self.budget_wh} Wh for training + teacher + {QUERIES:,} queries"
                           + (" (energy: estimate)" if estimate else ""))

    def _repr_html_(self) -> str:
        return self.table()._repr_html_()

    def __repr__(self) -> str:
        return str(self.table())
