"""The Fashion-MNIST experiments the lessons share: the teacher, lesson 3's T and α, the students of lessons 5–6.

Each is a frozen dataclass, trained and cached by :meth:`~kdlib.experiments.base.Experiment.load_or_train`;
the functions the lessons call (``teacher``, ``kd_choice``, ``fashion_student``) are thin wrappers.
Lesson 1 trains the teacher; lessons 2–7 load it from the zoo (``data/zoo/``).  Change a number
here and the model is retrained, never loaded stale; a distilled student's key holds its
teacher's weight digest, so a retrained teacher means retrained students.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import ClassVar

from ..dataset import Dataset
from ..distill import KDCriterion, cache_logits
from ..models import cnn, count_params, flops_per_example, mlp
from ..runtime import sized
from ..train import evaluate, fit
from ..zoo import Entry
from .base import Experiment
from ..validate import finite_number

#: How many of the training images a caller's teacher logits are checked on (see ``_teacher_logits``).
SPOT_CHECK = 64


@dataclass(frozen=True)
class FashionTeacher(Experiment):
    """The lesson 1 teacher: ``cnn(channels, hidden)`` trained with AdamW and a cosine schedule.

    ``Entry.meta`` holds what training measured: ``history``, ``val_acc``, ``test_acc``,
    ``train_seconds``, ``params``, ``flops`` (forward, per image), ``examples_seen``, and the
    training energy ``energy_joules`` with its ``energy_source`` (:class:`kdlib.energy.EnergyMeter`).
    """

    channels: tuple[int, ...] = (32, 64)
    hidden: int = 256
    dropout: float = 0.25
    epochs: int = field(default_factory=lambda: sized(8, 1))
    lr: float = 2e-3
    batch_size: int = 128
    seed: int = 0

    data_name: ClassVar[str] = "fashion_mnist"
    zoo_name: ClassVar[str] = "teacher"
    key_labels: ClassVar[dict] = {"arch": "cnn", "metered": True}

    def build(self, data=None):
        return cnn(tuple(self.channels), self.hidden, dropout=self.dropout)

    def train(self, model, data, ready, quiet):
        history = fit(model, data, epochs=self.epochs, lr=self.lr, batch_size=self.batch_size, seed=self.seed,
                      quiet=quiet, desc="teacher", checkpoint=ready["checkpoint"])
        return {"history": history.rows, "val_acc": history.last["val_acc"], "resumed": history.resumed}

    def scores(self, model, data, ready):
        return {"test_acc": evaluate(model, *data.test)["acc"], "params": count_params(model),
                "flops": flops_per_example(model, data.input_shape), "examples_seen": self.epochs * len(data.y_train)}


def teacher_config() -> dict:
    """The lesson 1 teacher's config as the zoo keys it: :class:`FashionTeacher`'s fields, ``arch``, ``smoke``.

    Introduced in lesson 1.
    """
    return FashionTeacher().config(None)


def build_teacher(config: dict | None = None):
    """The untrained teacher network for ``config`` (default: :func:`teacher_config`).

    Introduced in lesson 1.
    """
    config = config or teacher_config()
    return FashionTeacher(channels=tuple(config["channels"]), hidden=config["hidden"], dropout=config["dropout"]).build()


def teacher(data: Dataset, retrain: bool = False, quiet: bool = False) -> Entry:
    """The cached Fashion-MNIST teacher (:class:`FashionTeacher`); trains it (about two minutes on 2 cores) if not cached.

    ``Entry.meta`` is described there; ``Entry.digest`` names its weights in its students' keys.

    Introduced in lesson 1.
    """
    return FashionTeacher().load_or_train(data, retrain=retrain, quiet=quiet)


# --------------------------------------------------------------------------------------------
# Choices that lesson 3 makes and lessons 4–7 depend on: T and alpha, the few-label split,
# and lesson 5's small CNN — one home each, so a later lesson can never disagree with them.
# --------------------------------------------------------------------------------------------

#: Share of the Fashion-MNIST training labels kept in the few-label experiments (lessons 3 and 5).
FEW_LABEL_FRACTION = 0.01


def few_labels(y, seed: int, fraction: float = FEW_LABEL_FRACTION):
    """The few-label split of lessons 3 and 5: which training examples keep their label.

    Draws ``max(10, fraction · N)`` indices with ``torch.randperm`` seeded by ``100 + seed`` (a
    different draw for every training seed).  Returns ``(chosen, masked)``: the indices, on
    ``y``'s device, and a copy of ``y`` in which every other label is ``distill.UNLABELLED``.

    Introduced in lesson 3.
    """
    import torch

    from ..distill import UNLABELLED

    fraction = finite_number(fraction, "fraction (the share of labels kept)", strict=True, high=1.0)
    count = min(len(y), max(10, int(fraction * len(y))))
    chosen = torch.randperm(len(y), generator=torch.Generator().manual_seed(100 + seed))[:count].to(y.device)
    masked = torch.full_like(y, UNLABELLED)
    masked[chosen] = y[chosen]
    return chosen, masked


def small_cnn():
    """Lesson 5's task-specific small CNN, also lesson 6's: ``cnn((8, 16), 32, dropout=0.1)``, ~27k parameters.

    Introduced in lesson 5.
    """
    return cnn((8, 16), 32, dropout=0.1)


@dataclass(frozen=True)
class KDSetting:
    """Temperature ``T`` and weight ``alpha`` of the soft term of a distilled student (:class:`kdlib.distill.KDCriterion`)."""

    T: float
    alpha: float


def _teacher_logits(teacher: Entry, data: Dataset, derived: dict):
    """The teacher's logits of ``data.X_train``: ``derived["logits"]`` if it holds them, else computed and kept there.

    Logits a caller passed are checked on the first :data:`SPOT_CHECK` images, so that logits of
    another teacher can never train a student whose key names this one.
    """
    import torch

    logits = derived.get("logits")
    if logits is None:
        derived["logits"] = cache_logits(teacher.model, data.X_train)
        return derived["logits"]
    expected = cache_logits(teacher.model, data.X_train[:SPOT_CHECK])
    if len(logits) != len(data.X_train) or not torch.allclose(logits[:SPOT_CHECK].to(expected), expected,
                                                               rtol=1e-4, atol=1e-4):
        raise ValueError("train_logits are not this teacher's logits of data.X_train; pass "
                         "kd.distill.cache_logits(kd.experiments.teacher(data).model, data.X_train), or nothing.")
    return logits


class _Student(Experiment):
    """Training shared by the Fashion-MNIST students: ``fit`` on the training split, from scratch
    (``kd=None``) or distilled on the teacher's cached logits (``inputs["teacher"]``, its zoo entry)."""

    data_name: ClassVar[str] = "fashion_mnist"
    uses: ClassVar[tuple[str, ...]] = ("teacher",)

    def check(self, data, inputs):
        super().check(data, inputs)
        if self.kd is not None and inputs.get("teacher") is None:
            raise ValueError(f"{self!r} is distilled: pass inputs={{'teacher': kd.experiments.teacher(data)}}.")
        if self.kd is None and inputs.get("teacher") is not None:
            raise ValueError(f"{self!r} is trained from scratch (kd=None): it learns from no teacher.")

    def prepare(self, data, inputs, derived):
        if self.kd is None:
            return {"train": data.train}
        return {"train": (*data.train, _teacher_logits(inputs["teacher"], data, derived))}

    def train(self, model, data, ready, quiet):
        criterion = KDCriterion(self.kd.T, self.kd.alpha) if self.kd is not None else None
        fit(model, ready["train"], epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, seed=self.seed,
            criterion=criterion, quiet=quiet)
        return {}


#: The Fashion-MNIST students that lessons 5 and 6 both train: (architecture, distilled?).
FASHION_STUDENTS = {
    "distilled MLP-256": ("mlp256", True),
    "MLP-256 from scratch": ("mlp256", False),
    "small CNN": ("small_cnn", False),
}


def _student_kind(kind: str) -> tuple[str, bool]:
    if kind not in FASHION_STUDENTS:
        raise ValueError(f"Unknown student {kind!r}; the shared ones are: {', '.join(FASHION_STUDENTS)}.")
    return FASHION_STUDENTS[kind]


def fashion_fit(kind: str) -> dict:
    """``fit`` settings of a shared Fashion-MNIST student: the MLPs of lessons 3–6, lesson 5's small CNN.

    Introduced in lesson 4.
    """
    if _student_kind(kind)[0] == "small_cnn":
        return {"epochs": sized(3, 1), "batch_size": 128, "lr": 3e-3}
    return {"epochs": sized(8, 1), "batch_size": 256, "lr": 2e-3}


@dataclass(frozen=True)
class FashionStudent(_Student):
    """One seeded student of :data:`FASHION_STUDENTS` (``student`` names it), as lessons 5 and 6 share it.

    ``kd`` is the distilled one's :class:`KDSetting` (lesson 3's :func:`kd_choice`), ``None`` for the
    others; ``arch`` and the :func:`fashion_fit` settings follow from ``student``.  ``Entry.meta``
    keeps ``energy_joules`` with its ``energy_source``, ``train_seconds`` and ``test_acc``.
    """

    student: str
    seed: int
    kd: KDSetting | None = None
    arch: str = field(init=False)
    epochs: int = field(init=False)
    batch_size: int = field(init=False)
    lr: float = field(init=False)

    key_labels: ClassVar[dict] = {"metered": True}

    def __post_init__(self):
        arch, distilled = _student_kind(self.student)
        if distilled != (self.kd is not None):
            raise ValueError(f"{self.student!r} is {'' if distilled else 'not '}distilled: "
                             f"{'give it' if distilled else 'it takes no'} kd=KDSetting(T, alpha).")
        for name, value in {"arch": arch, **fashion_fit(self.student)}.items():
            object.__setattr__(self, name, value)

    @property
    def zoo_name(self) -> str:
        return f"fashion-{self.arch}"

    def build(self, data=None):
        return small_cnn() if self.arch == "small_cnn" else mlp(784, (256,), 10)

    def scores(self, model, data, ready):
        return {"test_acc": evaluate(model, *data.test)["acc"]}


def fashion_student(data: Dataset, kind: str, seed: int, train_logits=None, quiet: bool = True) -> Entry:
    """One seeded Fashion-MNIST student of :data:`FASHION_STUDENTS` (a :class:`FashionStudent`), trained once and kept in the zoo.

    Lessons 5 and 6 use the same students (the distilled MLP-256 of lessons 3–4, the same MLP from
    scratch, lesson 5's small CNN), so the second lesson loads what the first trained instead of
    training it again.  The distilled one uses lesson 3's :func:`kd_choice` and the teacher's logits
    of ``data.X_train``: ``train_logits`` when given (checked to be this teacher's), else computed.

    Introduced in lesson 5.
    """
    distilled = _student_kind(kind)[1]
    if not distilled:
        return FashionStudent(kind, seed).load_or_train(data, {"teacher": None}, quiet=quiet)
    spec = FashionStudent(kind, seed, KDSetting(**kd_choice(data)[0]))
    derived = {} if train_logits is None else {"logits": train_logits}
    return spec.load_or_train(data, {"teacher": teacher(data, quiet=True)}, derived=derived, quiet=quiet)


@dataclass(frozen=True)
class SweepStudent(_Student):
    """One student of lesson 3's sweep (:class:`KDSweep`): the 784-``hidden``-10 MLP, scored by validation accuracy.

    ``kd=None`` trains it from scratch; a :class:`KDSetting` distils it from the teacher.
    """

    hidden: tuple[int, ...]
    epochs: int
    batch_size: int
    lr: float
    seed: int
    kd: KDSetting | None = None

    zoo_name: ClassVar[str] = "kd-sweep-mlp"

    def build(self, data=None):
        return mlp(784, tuple(self.hidden), 10)

    def scores(self, model, data, ready):
        return {"val_acc": evaluate(model, *data.val)["acc"]}


@dataclass(frozen=True)
class KDSweep:
    """How lesson 3 chooses T and alpha: the grids, the student, the training, the seeds.

    First the temperature with alpha = ``first_alpha``, then alpha at the best temperature, for the
    784-``hidden``-10 MLP trained with ``epochs``, ``batch_size`` and ``lr``, each setting with every
    seed on cached teacher logits, scored by **validation** accuracy (the test split is never looked at).

    Introduced in lesson 3.
    """

    hidden: tuple[int, ...] = (64,)
    temperatures: tuple[float, ...] = field(default_factory=lambda: sized((1, 2, 4, 8, 20), (1, 4)))
    alphas: tuple[float, ...] = field(default_factory=lambda: sized((0.1, 0.5, 0.9, 1.0), (0.5, 1.0)))
    first_alpha: float = 0.9
    seeds: tuple[int, ...] = (0, 1)
    epochs: int = field(default_factory=lambda: sized(8, 1))
    batch_size: int = 256
    lr: float = 2e-3

    def student(self, seed: int, kd: KDSetting | None = None) -> SweepStudent:
        """The sweep's student for ``seed``, from scratch or distilled with ``kd``."""
        return SweepStudent(tuple(self.hidden), self.epochs, self.batch_size, self.lr, seed, kd)

    def choose(self, data: Dataset, quiet: bool = True) -> tuple[dict, dict]:
        """Run both sweeps (every student cached in the zoo); return ``({"T", "alpha"}, sweeps)`` as :func:`kd_choice`."""
        teacher_entry, derived = teacher(data, quiet=True), {}  # the teacher's logits, once, if a student trains

        def val_acc(seed, kd=None) -> float:
            inputs = {"teacher": teacher_entry if kd is not None else None}
            return self.student(seed, kd).load_or_train(data, inputs, derived=derived).meta["val_acc"]

        best = lambda sweep: max(sweep, key=lambda k: statistics.fmean(sweep[k]))  # noqa: E731
        progress = (lambda items, desc: items) if quiet else _progress
        t_sweep = {T: [val_acc(s, KDSetting(T, self.first_alpha)) for s in self.seeds]
                   for T in progress(self.temperatures, "temperature sweep")}
        best_T = best(t_sweep)
        a_sweep = {a: [val_acc(s, KDSetting(best_T, a)) for s in self.seeds] for a in progress(self.alphas, "alpha sweep")}
        scratch = [val_acc(s) for s in self.seeds]
        return {"T": best_T, "alpha": best(a_sweep)}, {"temperature": t_sweep, "alpha": a_sweep, "scratch": scratch}


def kd_choice(data: Dataset, quiet: bool = True) -> tuple[dict, dict]:
    """T and alpha for Fashion-MNIST distillation, chosen on the validation split by :class:`KDSweep`.

    Every student is cached in the zoo, so lessons 4–7 get the same choice in a second, and it
    follows the data if anything upstream changes.  Returns ``({"T", "alpha"}, sweeps)`` where
    ``sweeps`` maps ``"temperature"`` → {T: [val acc per seed]}, ``"alpha"`` → {alpha: [...]} and
    ``"scratch"`` → [...] (the same student without a teacher).

    Introduced in lesson 3.
    """
    return KDSweep().choose(data, quiet=quiet)


def _progress(items, desc):
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc)

