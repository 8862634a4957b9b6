"""Lesson 10's new domain: Shakespeare's language models adapted to a small budget of the King James Bible.

:class:`Adapted` is one model trained on the Bible's adaptation set (``kd.load("bible")``'s
``train`` split, whole books, about 150,000 characters) by one route:

* ``"finetune"`` — start from a Shakespeare model's weights (``start``: the teacher, a distilled or
  a scratch student) and train on the labels of the new text;
* ``"distil"`` — start from a Shakespeare student's weights and distil from a teacher that was
  itself adapted first (``teacher``: an ``Adapted`` teacher) — what adapting a distilled model
  takes when the essay is right that only the giant can learn the new domain;
* ``"fresh"`` — new weights, the labels of the new text alone (no Shakespeare at all).

Every route reads the same windows: ``passes`` cuts of the adaptation stream at seeded offsets
(:func:`kdlib.text.offset_windows`), batch 32, AdamW with weight decay 0.01, cosine to zero; only
the learning rate is the route's own (lesson 10 chooses it on the Bible's validation books).  The
key holds the start's and the teacher's weight digests.

Introduced in lesson 10.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from ..models import count_params
from ..runtime import sized
from ..train import fit
from .base import Experiment, metered
from .language import LM_SIZES, build_lm, corpus, lm_scores

#: The routes of :class:`Adapted`.
ADAPT_ROUTES = ("finetune", "distil", "fresh")

#: The learning rates lesson 10 tries for each route, on the Bible's validation books.
ADAPT_LRS = (3e-4, 1e-3, 3e-3)


def adapt_passes() -> int:
    """Passes over the adaptation set: 4 (about 290 steps of 32 windows; 1 in the smoke size)."""
    return sized(4, 1)


@dataclass(frozen=True)
class Adapted(Experiment):
    """A Shakespeare language model (``size`` of :data:`~kdlib.experiments.language.LM_SIZES`) adapted to the Bible by ``route``.

    ``start`` (a zoo entry) gives the first weights of the ``finetune`` and ``distil`` routes;
    ``teacher`` (an adapted teacher's entry) the soft labels of ``distil``: its full logits on the
    same windows, computed once before training (their cost is ``teacher_joules``), forward KL at
    ``T`` with weight ``alpha`` (the course's choice, lesson 8).  ``Entry.meta`` has
    ``train_seconds``, ``energy_joules`` and ``energy_source`` of the adaptation alone, and the Bible
    scores (:func:`~kdlib.experiments.language.lm_scores`).
    """

    size: str
    route: str
    seed: int = 0
    lr: float = 1e-3
    passes: int = field(default_factory=adapt_passes)
    T: float = 1.0
    alpha: float = 0.5

    data_name: ClassVar[str] = "bible"
    RECIPE: ClassVar[dict] = {"batch_size": 32, "weight_decay": 0.01}

    def __post_init__(self):
        if self.size not in LM_SIZES:
            raise ValueError(f"Unknown language-model size {self.size!r}; kdlib has {', '.join(LM_SIZES)}.")
        if self.route not in ADAPT_ROUTES:
            raise ValueError(f"Unknown adaptation route {self.route!r}; use one of {', '.join(ADAPT_ROUTES)}.")
        if self.route == "distil" and self.size == "teacher":
            raise ValueError("The distil route adapts a student from an adapted teacher; adapt the teacher with "
                             "route='finetune'.")
        if self.route != "distil" and (self.T, self.alpha) != (1.0, 0.5):
            raise ValueError(f"T and alpha belong to the distil route, not to {self.route!r}.")

    @property
    def zoo_name(self) -> str:
        return f"adapted-{self.size}-{self.route}"

    @property
    def uses(self) -> tuple[str, ...]:
        return {"finetune": ("start",), "distil": ("start", "teacher"), "fresh": ()}[self.route]

    def settings(self, data):
        own = {"size": self.size, **LM_SIZES[self.size], "route": self.route, "seed": self.seed, "lr": self.lr,
               "passes": self.passes, **self.RECIPE, **corpus(data), "sha256": data.info.get("sha256")}
        if self.route == "distil":
            own.update(T=self.T, alpha=self.alpha)
        return own

    def check(self, data, inputs):
        super().check(data, inputs)
        missing = [name for name in self.uses if inputs.get(name) is None]
        if missing:
            raise ValueError(f"The {self.route!r} route needs {' and '.join(missing)}= (a zoo entry).")

    def build(self, data):
        if self.size == "teacher":
            from .language import LMTeacher

            return LMTeacher().build(data)
        return build_lm(self.size, data)

    def prepare(self, data, inputs, derived):
        from ..text import offset_windows

        X, y = offset_windows(data.tokens_train, data.context, self.passes, seed=self.seed)
        X, y = X.to(data.device), y.to(data.device)
        ready = {"train": (X, y), "teacher_joules": 0.0, "start": inputs.get("start")}
        if self.route == "distil":
            from ..distill import cache_logits

            logits, meter = metered(lambda: cache_logits(inputs["teacher"].model, X, batch_size=256).half(), data.device)
            ready.update(train=(X, y, logits), teacher_joules=meter.joules)
        return ready

    def train(self, model, data, ready, quiet):
        from ..distill import DenseLogits, KDCriterion

        if ready["start"] is not None:
            model.load_state_dict(ready["start"].model.state_dict())
        criterion = KDCriterion(self.T, self.alpha, signal=DenseLogits()) if self.route == "distil" else None
        history = fit(model, ready["train"], data.val, epochs=1, lr=self.lr, **self.RECIPE, criterion=criterion,
                      seed=self.seed, quiet=quiet, desc=f"{self.size} {self.route} lr {self.lr:g} s{self.seed}",
                      checkpoint=ready["checkpoint"])
        return {"history": history.rows, "resumed": history.resumed}

    def scores(self, model, data, ready):
        return {"teacher_joules": ready["teacher_joules"], **lm_scores(model, data), "params": count_params(model),
                "tokens_seen": ready["train"][1].numel()}


def adapted(bible, size: str, route: str, seed: int = 0, *, start=None, teacher=None, lr: float = 1e-3,
            quiet: bool = True, **settings):
    """An :class:`Adapted` model from the zoo, trained now if it is not there.

    Introduced in lesson 10.
    """
    spec = Adapted(size, route, seed, lr=lr, **settings)
    inputs = {name: value for name, value in (("start", start), ("teacher", teacher)) if name in spec.uses}
    return spec.load_or_train(bible, inputs, quiet=quiet)
