"""The Shakespeare experiments of lessons 8–9: the language-model teacher, its transfer set, the students."""
from __future__ import annotations

from .. import zoo
from ..energy import EnergyMeter
from ..models import count_params, flops_per_example
from ..runtime import is_smoke, sized
from ..train import evaluate, fit


#: Architectures of lesson 8 (see :func:`kdlib.lm.char_transformer`): the teacher and two students.
LM_SIZES = {
    "teacher": {"layers": 4, "heads": 4, "width": 128},   # ~0.8 M parameters
    "40k": {"layers": 3, "heads": 4, "width": 32},        # ~43 k
    "115k": {"layers": 4, "heads": 4, "width": 48},       # ~120 k
}


def lm_teacher_config(data) -> dict:
    """The lesson 8 teacher: ``LM_SIZES["teacher"]``, two passes over the training plays, AdamW, cosine.

    lr 2e-3 was the best of 1e-3 … 1e-2 in a 400-step probe; one pass reached 1.81 nats/char on
    validation, two passes are needed to beat a 7-gram model.
    """
    return {"arch": "char_transformer", **LM_SIZES["teacher"], "vocab": data.vocab_size, "context": data.context,
            "epochs": sized(2, 1), "lr": 2e-3, "batch_size": 32, "weight_decay": 0.1, "seed": 0, "smoke": is_smoke(),
            "works": data.info.get("works"), "metered": True}


def build_lm(size: str, data):
    """A fresh :func:`kdlib.lm.char_transformer` of one of :data:`LM_SIZES` for ``data``'s vocabulary.

    Introduced in lesson 9.
    """
    from ..lm import char_transformer

    if size not in LM_SIZES:
        raise ValueError(f"Unknown language-model size {size!r}; kdlib has {', '.join(LM_SIZES)}.")
    return char_transformer(data.vocab_size, data.context, **LM_SIZES[size])


def lm_scores(model, data) -> dict:
    """Validation and test loss of a language model in nats per character and bits per character."""
    import math

    val, test = evaluate(model, *data.val)["loss"], evaluate(model, *data.test)["loss"]
    return {"val_nats": val, "test_nats": test, "val_bpc": val / math.log(2), "test_bpc": test / math.log(2)}


def lm_teacher(data, retrain: bool = False, quiet: bool = False) -> zoo.Entry:
    """The cached Shakespeare teacher of lesson 8; trains it (about 7 minutes on 2 cores) if not cached.

    ``Entry.meta`` holds ``history``, ``train_seconds``, ``energy_joules`` and ``energy_source``,
    ``val_bpc``/``test_bpc`` (and nats), ``params``, ``flops_per_token`` (forward, torch's counter)
    and ``tokens_seen``.

    Introduced in lesson 8.
    """
    import torch

    if getattr(data, "name", None) != "shakespeare":
        raise ValueError("The lesson 8 teacher is trained on kd.load('shakespeare').")
    config = lm_teacher_config(data)

    def train(model):
        torch.manual_seed(config["seed"])
        model.load_state_dict(build_lm("teacher", data).state_dict())  # seeded initial weights
        meter = EnergyMeter(device=data.device)
        with meter:
            history = fit(model, data.train, data.val, epochs=config["epochs"], lr=config["lr"],
                          batch_size=config["batch_size"], weight_decay=config["weight_decay"],
                          seed=config["seed"], quiet=quiet, desc="LM teacher")
        return {"history": history.rows, "train_seconds": round(meter.seconds, 2),
                "energy_joules": round(meter.joules, 1), "energy_source": meter.source, **lm_scores(model, data),
                "params": count_params(model),
                "flops_per_token": flops_per_example(model, (data.context,), torch.long) / data.context,
                "tokens_seen": config["epochs"] * data.y_train.numel()}

    entry = zoo.load_or_train("lm-teacher", config, lambda: build_lm("teacher", data), train, retrain=retrain)
    entry.model.to(data.device)
    return entry


def lm_student_plan() -> dict:
    """How every lesson 8 student is trained: one pass over ``windows`` training windows, batch 32."""
    return {"windows": sized(16_000, 512), "epochs": 1, "lr": 3e-3, "batch_size": 32, "weight_decay": 0.01}


class LMTransfer:
    """The transfer set of lesson 8: ``lm_student_plan()["windows"]`` seeded training windows and what the teacher says.

    ``topk()`` returns the teacher's top-``k`` logits at every position (k = the whole vocabulary by
    default: smaller k are its first columns), computed on first use; ``generated(n)`` returns
    windows of text the teacher wrote itself (sequence-level KD).  Each is metered once and its
    cost kept in ``costs`` (joules, seconds, source, bytes), so a route that needs it can count it.

    Introduced in lesson 8.
    """

    def __init__(self, data, teacher, seed: int = 0):
        import torch

        self.data, self.teacher = data, teacher
        n = min(lm_student_plan()["windows"], len(data.X_train))
        order = torch.randperm(len(data.X_train), generator=torch.Generator().manual_seed(seed))[:n]
        self.X, self.y = data.X_train[order.to(data.device)], data.y_train[order.to(data.device)]
        self.costs: dict[str, dict] = {}
        self._topk = self._generated = None

    def _metered(self, name: str, fn):
        meter = EnergyMeter(device=self.data.device)
        with meter:
            out = fn()
        tensors = out if isinstance(out, tuple) else (out,)
        self.costs[name] = {"joules": meter.joules, "seconds": meter.seconds, "source": meter.source,
                            "bytes": sum(t.numel() * t.element_size() for t in tensors)}
        return out

    def topk(self, k: int | None = None):
        """``(values, ids)`` of shape (windows, context, k): float16 logits and uint8 class ids."""
        from ..distill import topk_logits

        if self._topk is None:
            self._topk = self._metered("teacher top-k logits", lambda: topk_logits(self.teacher, self.X, self.data.vocab_size))
        values, ids = self._topk
        return (values, ids) if k is None else (values[..., :k], ids[..., :k])

    def dense(self):
        """The teacher's full logits (float16), rebuilt from the cached top-k with k = vocabulary."""
        import torch

        values, ids = self.topk()
        return torch.empty(values.shape, dtype=values.dtype, device=values.device).scatter_(-1, ids.long(), values)

    def generated(self, temperature: float = 1.0, seed: int = 0, batch: int = 1024):
        """``(X, y)`` windows of the teacher's own text: one real first character each, the rest sampled."""
        import torch

        from ..lm import generate

        asked = (temperature, seed, batch)
        if self._generated is not None and asked != self._generated_by:
            raise ValueError(f"This transfer set's text was already written with (temperature, seed, batch) = "
                             f"{self._generated_by}; make a new LMTransfer for {asked}.")
        if self._generated is None:
            self._generated_by = asked

            def write():
                rows = [generate(self.teacher, self.X[i:i + batch, :1], self.data.context, temperature=temperature,
                                 seed=seed + i) for i in range(0, len(self.X), batch)]
                text = torch.cat(rows)
                return text[:, :-1].contiguous(), text[:, 1:].contiguous()
            self._generated = self._metered("teacher writes text", write)
        return self._generated


def lm_student(data, size: str, route: str, seed: int, transfer: LMTransfer | None = None, *,
               T: float = 1.0, alpha: float = 1.0, k: int | None = None, direction: str = "forward",
               epochs: int | None = None, quiet: bool = True) -> zoo.Entry:
    """A lesson 8 student, cached in the zoo under everything that made it.

    ``route``: ``"scratch"`` (labels of the transfer windows), ``"kd"`` (token-level KD on the
    teacher's cached top-``k`` logits, ``k=None`` = all, ``direction`` forward or reverse, weight
    ``alpha`` on the soft term at temperature ``T``), ``"seqkd"`` (labels = text the teacher wrote),
    ``"budget"`` (labels of the whole training split for ``epochs`` passes, batch 128).  ``Entry.meta`` has the
    scores (:func:`lm_scores`), ``train_seconds``, ``energy_joules``/``energy_source`` of the
    student's own training, and ``teacher_joules``: the teacher-side cost it needed (caching or
    generation), as measured when it was made.

    Introduced in lesson 8.
    """
    from ..distill import DenseLogits, KDCriterion, SparseLogits

    routes = ("scratch", "kd", "seqkd", "budget")
    if size not in LM_SIZES or size == "teacher":
        raise ValueError(f"Unknown student size {size!r}; lesson 8's students are "
                         f"{', '.join(k for k in LM_SIZES if k != 'teacher')}.")
    if route not in routes:
        raise ValueError(f"Unknown route {route!r}; use one of {', '.join(routes)}.")
    if route in ("kd", "seqkd") and transfer is None:
        raise ValueError(f"The {route!r} route needs transfer=LMTransfer(data, teacher).")
    cfg = {**lm_student_plan(), "size": size, **LM_SIZES[size], "route": route, "seed": seed, "smoke": is_smoke(),
           "vocab": data.vocab_size, "context": data.context, "works": data.info.get("works")}
    if route == "kd":
        cfg.update(T=T, alpha=alpha, k=k or data.vocab_size, direction=direction)
    if route in ("kd", "seqkd"):
        cfg["teacher"] = zoo.config_key(lm_teacher_config(data))
    if route == "budget":  # many passes over all the plays: larger batches use a CPU's FLOPs better
        cfg.update(epochs=epochs or cfg["epochs"], batch_size=128, lr=4e-3)

    def train(model):
        import torch

        torch.manual_seed(seed)
        model.load_state_dict(build_lm(size, data).state_dict())
        criterion, teacher_joules = None, 0.0
        if route == "kd":
            tensors = (transfer.X, transfer.y, transfer.dense()) if direction == "reverse" else \
                (transfer.X, transfer.y, *transfer.topk(cfg["k"]))
            signal = DenseLogits() if direction == "reverse" else SparseLogits()
            criterion = KDCriterion(T, alpha, signal=signal, direction=direction)
            teacher_joules = transfer.costs["teacher top-k logits"]["joules"]
        elif route == "seqkd":
            tensors = transfer.generated()
            teacher_joules = transfer.costs["teacher writes text"]["joules"]
        elif route == "budget":
            tensors = data.train
        else:
            same = transfer or LMTransfer(data, None)  # the very windows the distilled students see
            tensors = same.X, same.y
        meter = EnergyMeter(device=data.device)
        with meter:
            history = fit(model, tensors, data.val, epochs=cfg["epochs"], lr=cfg["lr"], batch_size=cfg["batch_size"],
                          weight_decay=cfg["weight_decay"], criterion=criterion, seed=seed, quiet=quiet,
                          desc=f"{size} {route} s{seed}")
        return {"history": history.rows, "train_seconds": round(meter.seconds, 2), "energy_joules": meter.joules,
                "energy_source": meter.source, "teacher_joules": teacher_joules, **lm_scores(model, data),
                "params": count_params(model), "tokens_seen": cfg["epochs"] * tensors[1].numel()}

    name = f"lm-{size}-{route}"
    entry = zoo.load_or_train(name, cfg, lambda: build_lm(size, data), train)
    entry.model.to(data.device)
    return entry


#: The (T, alpha) pairs lesson 8 tries for token-level KD, on validation, with the 40k student.
LM_KD_GRID = ((1.0, 1.0), (2.0, 1.0), (1.0, 0.5), (2.0, 0.5))


def lm_kd_choice(data, transfer: LMTransfer, quiet: bool = True) -> tuple[dict, list[dict]]:
    """T and alpha for token-level KD, chosen on **validation** bits per character.

    Trains (or loads) the 40k student, seed 0, for each pair of :data:`LM_KD_GRID`; returns the
    best ``{"T", "alpha"}`` and one row per pair.  Lesson 9 calls it too, so both lessons use the
    same choice and it follows the data if anything upstream changes.

    Introduced in lesson 8.
    """
    rows = []
    for T, alpha in LM_KD_GRID:
        entry = lm_student(data, "40k", "kd", 0, transfer, T=T, alpha=alpha, quiet=quiet)
        rows.append({"T": T, "alpha": alpha, "val bpc": round(entry.meta["val_bpc"], 4),
                     "train s": round(entry.meta["train_seconds"], 1)})
    best = min(rows, key=lambda r: r["val bpc"])
    return {"T": best["T"], "alpha": best["alpha"]}, rows
