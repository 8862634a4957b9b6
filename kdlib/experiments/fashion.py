"""The Fashion-MNIST experiments the lessons share: the teacher, lesson 3's T and α, the students of lessons 5–6.

Lesson 1 trains the teacher; lessons 2–7 load it from the zoo (``data/zoo/``).  The config is
the cache key: change a number here and the teacher is retrained, never loaded stale.
"""
from __future__ import annotations

from .. import zoo
from ..data import Dataset
from ..energy import EnergyMeter
from ..models import cnn, count_params, flops_per_example
from ..runtime import is_smoke, sized
from ..train import evaluate, fit


def teacher_config() -> dict:
    """The lesson 1 teacher: ``cnn((32, 64), 256)`` trained with AdamW and a cosine schedule.

    Introduced in lesson 1.
    """
    return {"arch": "cnn", "channels": [32, 64], "hidden": 256, "dropout": 0.25,
            "epochs": sized(8, 1), "lr": 2e-3, "batch_size": 128, "seed": 0, "smoke": is_smoke(),
            "metered": True}


def build_teacher(config: dict | None = None):
    """The untrained teacher network for ``config`` (default: :func:`teacher_config`).

    Introduced in lesson 1.
    """
    config = config or teacher_config()
    return cnn(tuple(config["channels"]), config["hidden"], dropout=config["dropout"])


def teacher(data: Dataset, retrain: bool = False, quiet: bool = False) -> zoo.Entry:
    """The cached Fashion-MNIST teacher; trains it (about two minutes on 2 cores) if not cached.

    ``Entry.meta`` holds what training measured: ``history``, ``val_acc``, ``test_acc``,
    ``train_seconds``, ``params``, ``flops`` (forward, per image), ``examples_seen``, and the
    training energy ``energy_joules`` with its ``energy_source`` (:class:`kdlib.energy.EnergyMeter`).

    Introduced in lesson 1.
    """
    if data.name != "fashion_mnist":
        raise ValueError(f"The course teacher is trained on Fashion-MNIST, not {data.name!r}.")
    config = teacher_config()

    def train(model):
        import torch

        torch.manual_seed(config["seed"])
        model.load_state_dict(build_teacher(config).state_dict())  # seeded initial weights
        meter = EnergyMeter(device=data.device)  # times the run as well as metering it
        with meter:
            history = fit(model, data, epochs=config["epochs"], lr=config["lr"], batch_size=config["batch_size"],
                          seed=config["seed"], quiet=quiet, desc="teacher")
        return {"history": history.rows, "train_seconds": round(meter.seconds, 2),
                "energy_joules": round(meter.joules, 1), "energy_source": meter.source,
                "val_acc": history.last["val_acc"], "test_acc": evaluate(model, *data.test)["acc"],
                "params": count_params(model), "flops": flops_per_example(model, data.input_shape),
                "examples_seen": config["epochs"] * len(data.y_train)}

    entry = zoo.load_or_train("teacher", config, lambda: build_teacher(config), train, retrain=retrain)
    entry.model.to(data.device)
    return entry


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

    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction is the share of labels kept, in (0, 1]; got {fraction!r}.")
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


#: The Fashion-MNIST students that lessons 5 and 6 both train: (architecture, distilled?).
FASHION_STUDENTS = {
    "distilled MLP-256": ("mlp256", True),
    "MLP-256 from scratch": ("mlp256", False),
    "small CNN": ("small_cnn", False),
}


def fashion_fit(kind: str) -> dict:
    """``fit`` settings of a shared Fashion-MNIST student: the MLPs of lessons 3–4, lesson 5's small CNN.

    Introduced in lesson 5.
    """
    if kind not in FASHION_STUDENTS:
        raise ValueError(f"Unknown student {kind!r}; the shared ones are: {', '.join(FASHION_STUDENTS)}.")
    if FASHION_STUDENTS[kind][0] == "small_cnn":
        return {"epochs": sized(3, 1), "batch_size": 128, "lr": 3e-3}
    return {"epochs": sized(8, 1), "batch_size": 256, "lr": 2e-3}


def fashion_student(data: Dataset, kind: str, seed: int, train_logits=None, quiet: bool = True) -> zoo.Entry:
    """One seeded Fashion-MNIST student of :data:`FASHION_STUDENTS`, trained once and kept in the zoo.

    Lessons 5 and 6 use the same students (the distilled MLP-256 of lessons 3–4, the same MLP from
    scratch, lesson 5's small CNN), so the second lesson loads what the first trained instead of
    training it again.  Training is :func:`kdlib.train.train_fresh` with the listed settings (KD with
    lesson 3's :func:`kd_choice` for the distilled one, on ``train_logits``, the teacher's logits of
    ``data.X_train``, computed here when not given).  ``Entry.meta`` keeps what training measured:
    ``energy_joules`` with its ``energy_source``, ``train_seconds``, ``test_acc``.

    Introduced in lesson 5.
    """
    from ..distill import KDCriterion, cache_logits
    from ..models import mlp
    from ..train import train_fresh

    fit_kwargs = fashion_fit(kind)
    arch, distilled = FASHION_STUDENTS[kind]
    build = small_cnn if arch == "small_cnn" else (lambda: mlp(784, (256,), 10))
    config = {"student": kind, "arch": arch, **fit_kwargs, "seed": seed, "smoke": is_smoke(), "metered": True,
              "teacher": zoo.config_key(teacher_config()) if distilled else None,
              "kd": kd_choice(data)[0] if distilled else None}

    def train(model):
        logits = train_logits
        if distilled and logits is None:
            logits = cache_logits(teacher(data, quiet=True).model, data.X_train)
        meter = EnergyMeter(device=data.device)
        with meter:
            trained = train_fresh(build, (*data.train, logits) if distilled else data.train, seed, quiet=quiet,
                                  criterion=KDCriterion(config["kd"]["T"], config["kd"]["alpha"]) if distilled else None,
                                  **fit_kwargs)
        model.load_state_dict(trained.state_dict())
        return {"energy_joules": round(meter.joules, 1), "energy_source": meter.source,
                "train_seconds": round(meter.seconds, 2), "test_acc": evaluate(model, *data.test)["acc"]}

    entry = zoo.load_or_train(f"fashion-{arch}", config, build, train)
    entry.model.to(data.device)
    return entry


def kd_sweep_plan() -> dict:
    """How lesson 3 chooses T and alpha: the grids, the student, the training, the seeds.

    First the temperature with alpha = ``first_alpha``, then alpha at the best temperature, for the
    784-64-10 MLP, each setting trained with two seeds on cached teacher logits and scored by
    **validation** accuracy (the test split is never looked at).

    Introduced in lesson 3.
    """
    return {"hidden": [64], "temperatures": sized([1, 2, 4, 8, 20], [1, 4]),
            "alphas": sized([0.1, 0.5, 0.9, 1.0], [0.5, 1.0]), "first_alpha": 0.9, "seeds": [0, 1],
            "epochs": sized(8, 1), "batch_size": 256, "lr": 2e-3}


def kd_choice(data: Dataset, quiet: bool = True) -> tuple[dict, dict]:
    """T and alpha for Fashion-MNIST distillation, chosen on the validation split.

    Runs :func:`kd_sweep_plan`'s two sweeps — every student cached in the zoo, so lessons 4–7 get
    the same choice in a second, and it follows the data if anything upstream changes.  Returns
    ``({"T", "alpha"}, sweeps)`` where ``sweeps`` maps ``"temperature"`` → {T: [val acc per seed]},
    ``"alpha"`` → {alpha: [...]} and ``"scratch"`` → [...] (the same student without a teacher).

    Introduced in lesson 3.
    """
    import statistics

    from ..distill import KDCriterion, cache_logits
    from ..models import mlp
    from ..train import train_fresh

    plan, teacher_entry = kd_sweep_plan(), teacher(data, quiet=True)
    logits = []  # the teacher's training logits, computed only if a student must be trained

    def val_acc(T, alpha, seed) -> float:
        config = {**plan, "T": T, "alpha": alpha, "seed": seed, "teacher": zoo.config_key(teacher_config()),
                  "smoke": is_smoke()}
        build = lambda: mlp(784, tuple(plan["hidden"]), 10)  # noqa: E731

        def train(model):
            fit_kwargs = dict(epochs=plan["epochs"], batch_size=plan["batch_size"], lr=plan["lr"], quiet=True)
            if T is None:
                trained = train_fresh(build, data.train, seed, **fit_kwargs)
            else:
                if not logits:
                    logits.append(cache_logits(teacher_entry.model, data.X_train))
                trained = train_fresh(build, (*data.train, logits[0]), seed, criterion=KDCriterion(T, alpha), **fit_kwargs)
            model.load_state_dict(trained.state_dict())
            return {"val_acc": evaluate(model, *data.val)["acc"]}

        return zoo.load_or_train("kd-sweep-mlp", config, build, train).meta["val_acc"]

    best = lambda sweep: max(sweep, key=lambda k: statistics.fmean(sweep[k]))  # noqa: E731
    progress = (lambda items, desc: items) if quiet else _progress
    t_sweep = {T: [val_acc(T, plan["first_alpha"], s) for s in plan["seeds"]]
               for T in progress(plan["temperatures"], "temperature sweep")}
    best_T = best(t_sweep)
    a_sweep = {a: [val_acc(best_T, a, s) for s in plan["seeds"]] for a in progress(plan["alphas"], "alpha sweep")}
    scratch = [val_acc(None, None, s) for s in plan["seeds"]]
    return {"T": best_T, "alpha": best(a_sweep)}, {"temperature": t_sweep, "alpha": a_sweep, "scratch": scratch}


def _progress(items, desc):
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc)
