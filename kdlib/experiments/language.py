"""The Shakespeare experiments of lessons 8–9: the language-model teacher, its transfer set, the students.

:class:`LMTeacher` and :class:`LMStudent` are frozen dataclasses, trained and cached by
:meth:`~kdlib.experiments.base.Experiment.load_or_train`; ``lm_teacher`` and ``lm_student`` are the
thin wrappers the lessons call.  A student's key holds what it learnt from: the teacher's weight
digest and the transfer set's seed and size (:meth:`LMTransfer.identity`).
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import ClassVar

from ..distill import DenseLogits, KDCriterion, SparseLogits
from ..sparse import KINDS as CACHE_KINDS
from ..sparse import BucketLogits, SampledLogits
from ..models import count_params, flops_per_example
from ..runtime import sized
from ..train import evaluate, fit
from ..zoo import Entry
from .base import Experiment, metered

#: Architectures (see :func:`kdlib.lm.char_transformer`): the teacher, lesson 8–9's two students and
#: lesson 10's smallest student.
LM_SIZES = {
    "teacher": {"layers": 4, "heads": 4, "width": 128},   # ~0.8 M parameters
    "20k": {"layers": 2, "heads": 4, "width": 24},        # ~18 k (lesson 10)
    "40k": {"layers": 3, "heads": 4, "width": 32},        # ~43 k
    "115k": {"layers": 4, "heads": 4, "width": 48},       # ~120 k
}

#: The routes of :class:`LMStudent`.
ROUTES = ("scratch", "kd", "onpolicy", "seqkd", "budget", "budget_kd", "ngram_kd", "smooth")

#: The routes that distil from the teacher's next-character distribution (T, alpha, k, cache are theirs).
KD_ROUTES = ("kd", "onpolicy", "budget_kd")

#: Lesson 10's two controls, KD from a teacher that is not the transformer: the n-gram's full distributions
#: (``"ngram_kd"``; T and alpha are theirs) and a uniform one, which is label smoothing (``"smooth"``: alpha = ε).
CONTROL_ROUTES = ("ngram_kd", "smooth")


def transfer_windows() -> int:
    """How many training windows a transfer set draws: 16,000 (512 in the smoke size)."""
    return sized(16_000, 512)


def corpus(data) -> dict:
    """What a language model's key says about its corpus: vocabulary size, context and the works per split."""
    return {"vocab": data.vocab_size, "context": data.context, "works": data.info.get("works")}


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
    val, test = evaluate(model, *data.val)["loss"], evaluate(model, *data.test)["loss"]
    return {"val_nats": val, "test_nats": test, "val_bpc": val / math.log(2), "test_bpc": test / math.log(2)}


_FAIR: dict = {}


def _scores_file(entry: Entry):
    """Beside a zoo checkpoint, its fair scores: ``<name>-<key>.scores.json`` (one entry per data set and thread count)."""
    return entry.path.with_suffix(".scores.json")


def _saved_scores(entry: Entry) -> dict:
    import json

    try:
        return json.loads(_scores_file(entry).read_text())
    except (OSError, ValueError):
        return {}


def _save_scores(entry: Entry, saved: dict) -> None:
    """Write the scores file atomically; a read-only (shared) zoo just keeps them in this session."""
    from ..zoo import save_json

    try:
        save_json(saved, _scores_file(entry))
    except OSError:
        pass


def fair_scores(entry: Entry, data, *, splits: tuple[str, ...] = ("val", "test")) -> dict:
    """Bits per character of a zoo model on the validation and test plays with the one fair scorer (:mod:`kdlib.bpc`).

    Sliding windows, stride half a context: every character scored once with at least 33 characters
    of history — the scorer every language-model route of lessons 8–10 is judged by (the n-gram with
    :func:`kdlib.bpc.ngram_bits` on the same targets).  ``val_bpc``, ``test_bpc``, ``test_entropy``
    (the model's mean entropy there, bits) and ``calibration`` = entropy − bpc (negative: more sure
    than right).  ``splits`` names what must be scored (``("test",)`` skips the validation split
    for a model that no choice is made on — lesson 10's grid); the result holds every split scored
    so far.  Computed once per model, data set and thread count, and kept beside the checkpoint
    (``<checkpoint>.scores.json``, keyed by the weights' digest, the data set's checksum and size, the
    context and torch's thread count — the last digits of a sum depend on it), so a later run reads
    them instead of scoring again; a read-only zoo keeps them for the session only.

    Introduced in lesson 8.
    """
    import torch

    from ..bpc import model_bits

    unknown = set(splits) - {"val", "test"}
    if unknown or not splits:
        raise ValueError(f"splits must be among 'val' and 'test', got {splits!r}")
    key = (entry.digest, data.info.get("sha256"), len(data.tokens_test), data.context, torch.get_num_threads())
    if key not in _FAIR:
        _FAIR[key] = _saved_scores(entry).get("|".join(map(str, key)), {})
    scores = _FAIR[key]
    missing = [s for s in splits if f"{s}_bpc" not in scores]
    if missing:
        for split in missing:
            score = model_bits(entry.model, getattr(data, f"tokens_{split}"))
            scores[f"{split}_bpc"] = score.bpc
            if split == "test":
                scores.update(test_entropy=score.entropy, calibration=score.entropy - score.bpc)
        saved = _saved_scores(entry)
        saved["|".join(map(str, key))] = scores
        _save_scores(entry, saved)
    return dict(scores)


@dataclass(frozen=True)
class LMTeacher(Experiment):
    """The lesson 8 teacher: ``LM_SIZES["teacher"]``, six passes over the training plays, each cut at its own offset.

    AdamW, lr 2e-3 (the best of 1e-3 … 1e-2 in a 400-step probe), cosine to zero over all six passes
    (12,448 steps of 32 windows).  Measured at full size (2 threads, sliding-window scorer of
    :mod:`kdlib.bpc`): two passes over fixed windows reached 2.327 test bits per character, *behind*
    the Kneser–Ney 7-gram's 2.262 on the same targets; six random-offset passes reach 2.100, ahead of
    it (about 16 minutes on 2 cores; training saves its state as it goes and resumes after an
    interrupt).  ``Entry.meta`` holds ``history``, ``evals`` (validation every half pass, on
    non-overlapping windows), ``train_seconds``, ``energy_joules`` and ``energy_source``,
    ``val_bpc``/``test_bpc`` (and nats; non-overlapping windows, see :func:`fair_scores`),
    ``params``, ``flops_per_token`` (forward, torch's counter) and ``tokens_seen``.

    Introduced in lesson 8.
    """

    layers: int = LM_SIZES["teacher"]["layers"]
    heads: int = LM_SIZES["teacher"]["heads"]
    width: int = LM_SIZES["teacher"]["width"]
    epochs: int = field(default_factory=lambda: sized(6, 1))
    lr: float = 2e-3
    batch_size: int = 32
    weight_decay: float = 0.1
    seed: int = 0
    #: ``"fixed"``: every pass over the same non-overlapping windows; ``"random-offset"``: each pass
    #: cut at its own seeded offset (:func:`kdlib.text.offset_windows`), shuffled together into one
    #: long epoch with validation every half pass (``Entry.meta["evals"]``).
    windows: str = "random-offset"

    data_name: ClassVar[str] = "shakespeare"
    zoo_name: ClassVar[str] = "lm-teacher"
    key_labels: ClassVar[dict] = {"arch": "char_transformer", "metered": True}

    def __post_init__(self):
        if self.windows not in ("fixed", "random-offset"):
            raise ValueError(f"windows must be 'fixed' or 'random-offset', got {self.windows!r}.")

    def settings(self, data):
        own = {**super().settings(data), **corpus(data)}
        if self.windows == "fixed":  # the key of the checkpoints made before the field existed
            del own["windows"]
        return own

    def build(self, data):
        from ..lm import char_transformer

        return char_transformer(data.vocab_size, data.context, layers=self.layers, heads=self.heads, width=self.width)

    def train(self, model, data, ready, quiet):
        if self.windows == "fixed":
            history = fit(model, data.train, data.val, epochs=self.epochs, lr=self.lr, batch_size=self.batch_size,
                          weight_decay=self.weight_decay, seed=self.seed, quiet=quiet, desc="LM teacher",
                          checkpoint=ready["checkpoint"])
            return {"history": history.rows, "resumed": history.resumed}
        from ..text import offset_windows

        X, y = offset_windows(data.tokens_train, data.context, self.epochs, seed=self.seed)
        half_pass = max(1, len(X) // self.epochs // self.batch_size // 2)
        history = fit(model, (X.to(data.device), y.to(data.device)), data.val, epochs=1, lr=self.lr,
                      batch_size=self.batch_size, weight_decay=self.weight_decay, seed=self.seed, quiet=quiet,
                      desc=f"LM teacher, {self.epochs} passes", checkpoint=ready["checkpoint"], val_every=half_pass)
        return {"history": history.rows, "evals": history.evals, "resumed": history.resumed}

    def scores(self, model, data, ready):
        import torch

        return {**lm_scores(model, data), "params": count_params(model),
                "flops_per_token": flops_per_example(model, (data.context,), torch.long) / data.context,
                "tokens_seen": self.epochs * data.y_train.numel()}


def lm_teacher(data, retrain: bool = False, quiet: bool = False) -> Entry:
    """The cached Shakespeare teacher of lesson 8 (:class:`LMTeacher`); trains it (about 16 minutes on 2 cores) if not cached.

    Introduced in lesson 8.
    """
    return LMTeacher().load_or_train(data, retrain=retrain, quiet=quiet)


class LMTransfer:
    """The transfer set of lesson 8: :func:`transfer_windows` training windows drawn with ``seed``, and what the teacher says.

    ``topk()`` returns the teacher's top-``k`` logits at every position (k = the whole vocabulary by
    default: smaller k are its first columns), computed on first use; ``generated(n)`` returns
    windows of text the teacher wrote itself (sequence-level KD).  Each is metered once and its
    cost kept in ``costs`` (joules, seconds, source, bytes), so a route that needs it can count it.
    ``identity()`` is what a student's key records of it.

    Introduced in lesson 8.
    """

    def __init__(self, data, teacher, seed: int = 0):
        import torch

        self.data, self.teacher, self.seed = data, teacher, seed
        n = min(transfer_windows(), len(data.X_train))
        order = torch.randperm(len(data.X_train), generator=torch.Generator().manual_seed(seed))[:n]
        self.X, self.y = data.X_train[order.to(data.device)], data.y_train[order.to(data.device)]
        self.costs: dict[str, dict] = {}
        self._topk = self._generated = self._log_z = self._ngram = None
        self._sampled: dict[int, object] = {}

    def identity(self) -> dict:
        """Which windows these are: the seed of their draw and how many (the teacher is named on its own)."""
        return {"seed": self.seed, "windows": len(self.X)}

    def _metered(self, name: str, fn):
        out, meter = metered(fn, self.data.device)
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

    def bucket(self, k: int):
        """``(values, ids, log_z)``: the top-``k`` logits and ids, and log Z of all the cached logits (:func:`kdlib.sparse.bucket_kd_terms`)."""
        from ..sparse import log_normaliser

        values, ids = self.topk()
        if self._log_z is None:
            self._log_z = log_normaliser(values)
        return values[..., :k], ids[..., :k], self._log_z

    #: The seed of the sampled caches' draws (:func:`kdlib.sparse.sample_ids`).
    DRAW_SEED = 0

    def sampled(self, k: int):
        """``k`` draws per position from the teacher's distribution (uint8 ids), made once per k from the cached logits."""
        from ..sparse import sample_ids

        if k not in self._sampled:
            self._sampled[k] = sample_ids(self.dense(), k, seed=self.DRAW_SEED)
        return self._sampled[k]

    def dense(self):
        """The teacher's full logits (float16), rebuilt from the cached top-k with k = vocabulary."""
        return dense_from_topk(*self.topk())

    def ngram(self, order: int, smoothing: str):
        """An n-gram's full distributions at every position, as float16 log-probabilities: a teacher with no giant.

        The ``NGramLM(order, smoothing)`` is counted on the training plays (the n-gram of lesson 9);
        each position of a window gets the history that window gives it
        (:meth:`kdlib.ngram.NGramLM.window_log_probs`).  Made once per transfer set; its cost (counting
        and computing) is ``costs["n-gram soft labels"]``.  Lesson 10's control for "soft targets or
        the teacher's knowledge?".
        """
        import torch

        from ..ngram import NGramLM

        asked = (order, smoothing)
        if self._ngram is None or self._ngram[0] != asked:
            def soft():
                counted = NGramLM(order, smoothing).fit(self.data.tokens_train, self.data.vocab_size)
                return torch.from_numpy(counted.window_log_probs(self.X)).to(torch.float16).to(self.X.device)
            self._ngram = (asked, self._metered("n-gram soft labels", soft))
        return self._ngram[1]

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


def dense_from_topk(values, ids):
    """Full logits from a top-k cache whose k is the whole vocabulary: each value scattered back to its id."""
    import torch

    return torch.empty(values.shape, dtype=values.dtype, device=values.device).scatter_(-1, ids.long(), values)


def all_windows_sampled(teacher, data, k: int):
    """``k`` draws per position from the teacher (T = 1) at every training window, as :meth:`LMTransfer.sampled`
    makes them for a transfer set: float16 logits, one seeded generator (:data:`LMTransfer.DRAW_SEED`)."""
    from ..distill import topk_logits
    from ..sparse import sample_ids

    dense = dense_from_topk(*topk_logits(teacher, data.X_train, data.vocab_size))
    return sample_ids(dense, k, seed=LMTransfer.DRAW_SEED)


def _positive_int_or_none(name: str, value, meaning: str):
    if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0):
        raise ValueError(f"{name} is {meaning}: a positive integer, or None; got {value!r}.")


@dataclass(frozen=True)
class LMStudent(Experiment):
    """A lesson 8 student: ``size`` (of :data:`LM_SIZES`) trained on one ``route`` with ``seed``.

    ``"scratch"``: labels of the transfer windows; ``"kd"``: token-level KD on the teacher's cached
    top-``k`` logits (``k=None``: all; ``direction`` forward or reverse, the reverse on the dense
    logits), weight ``alpha`` on the soft term at temperature ``T``; ``cache`` says how the k are kept
    (:mod:`kdlib.sparse`: ``"topk"`` renormalised, ``"bucket"`` top-k plus the rest of the mass,
    ``"sampled"`` k draws from the teacher; the last two at T = 1, forward KL); ``"seqkd"``: labels = text the
    teacher wrote (:data:`TEXT`); ``"onpolicy"``: the kd route's loss on the transfer windows plus,
    with weight :data:`ONPOLICY` ``["share"]``, forward KL on windows the student writes itself and the
    teacher scores as it trains (:class:`kdlib.onpolicy.OnPolicyKD`, GKD-style; forward KL only, not
    resumable: its text depends on the weights of the moment); ``"budget"``: labels of the whole
    training split, batch 128; ``"budget_kd"``: the budget recipe (same windows, batch, steps) distilled
    from a sampled cache of the teacher on every training window — lesson 9's same-student-steps
    control.  Lesson 10's controls (:data:`CONTROL_ROUTES`), on the transfer windows like ``"kd"``:
    ``"ngram_kd"`` distils (forward KL, ``T``, ``alpha``) from the full next-character distributions
    of the n-gram :data:`NGRAM_TEACHER` counted on the training plays, each position with the history
    its window gives (:meth:`kdlib.ngram.NGramLM.window_log_probs`) — soft labels with no giant behind
    them; ``"smooth"`` is label smoothing with ε = ``alpha`` (:func:`kdlib.teacherfree.label_smoothing`,
    Szegedy et al. 2016) — KD from a uniform teacher in all but a constant, since
    ``α·KL(u ‖ q) + (1 − α)·CE(y, q)`` and the cross-entropy with target ``(1 − α)·y + α·u`` differ by ``α·H(u)``.  ``epochs`` passes (default one).  ``T``,
    ``alpha``, ``k``, ``direction`` and ``cache`` belong to the routes of :data:`KD_ROUTES` (``T`` and
    ``alpha`` also to the controls).
    """

    size: str
    route: str
    seed: int = 0
    T: float = 1.0
    alpha: float = 1.0
    k: int | None = None
    direction: str = "forward"
    epochs: int | None = None
    cache: str = "topk"

    data_name: ClassVar[str] = "shakespeare"
    #: How the seqkd route's text is written (:meth:`LMTransfer.generated`'s arguments).
    TEXT: ClassVar[dict] = {"temperature": 1.0, "seed": 0, "batch": 1024}
    #: How the onpolicy route writes (:class:`kdlib.onpolicy.OnPolicyKD`'s arguments): half the loss on
    #: the student's own text, 16 windows of it per step, rewritten every 125 steps from 8-character prompts.
    ONPOLICY: ClassVar[dict] = {"share": 0.5, "rows": 16, "refresh": 125, "prompt": 8}
    #: The n-gram the ngram_kd route distils from: lesson 9's choice on validation (Kneser–Ney, order 7).
    NGRAM_TEACHER: ClassVar[dict] = {"order": 7, "smoothing": "kneser_ney"}

    def __post_init__(self):
        if self.size not in LM_SIZES or self.size == "teacher":
            raise ValueError(f"Unknown student size {self.size!r}; lesson 8's students are "
                             f"{', '.join(s for s in LM_SIZES if s != 'teacher')}.")
        if self.route not in ROUTES:
            raise ValueError(f"Unknown route {self.route!r}; use one of {', '.join(ROUTES)}.")
        _positive_int_or_none("k", self.k, "how many of the teacher's largest logits are kept per position")
        _positive_int_or_none("epochs", self.epochs, "the number of passes over the training tensors")
        if self.direction not in ("forward", "reverse"):
            raise ValueError(f"direction must be 'forward' or 'reverse', got {self.direction!r}.")
        if self.route in CONTROL_ROUTES and (self.k, self.direction, self.cache) != (None, "forward", "topk"):
            raise ValueError(f"The {self.route!r} route distils from a full distribution with the forward KL: "
                             "leave k, direction and cache at their defaults.")
        if self.route == "smooth" and (self.T != 1.0 or not 0 < self.alpha < 1):
            raise ValueError("The smooth route is label smoothing: T = 1 and alpha = ε, the smoothing, between 0 and 1.")
        if self.route not in KD_ROUTES + CONTROL_ROUTES and (self.T, self.alpha, self.k, self.direction, self.cache) != \
                (1.0, 1.0, None, "forward", "topk"):
            raise ValueError(f"T, alpha, k, direction and cache are settings of the 'kd', 'onpolicy' and 'budget_kd' "
                             f"routes; the {self.route!r} route does not use them.")
        if self.route == "budget_kd" and (self.cache != "sampled" or self.k is None):
            raise ValueError("The budget_kd route distils from a sampled cache of every training window: give "
                             "cache='sampled' and k (e.g. 8).")
        if self.route == "onpolicy" and self.direction != "forward":
            raise ValueError("The onpolicy route distils with the forward KL on both terms; use direction='forward'.")
        if self.cache not in CACHE_KINDS:
            raise ValueError(f"cache must be one of {', '.join(CACHE_KINDS)} (kd.sparse), got {self.cache!r}.")
        if self.cache != "topk" and (self.direction != "forward" or self.T != 1.0):
            raise ValueError(f"A {self.cache!r} cache holds the teacher at T = 1 for the forward KL: use T=1.0 and "
                             "direction='forward'.")

    @property
    def zoo_name(self) -> str:
        return f"lm-{self.size}-{self.route}"

    @property
    def uses(self) -> tuple[str, ...]:
        return {"budget": (), "scratch": ("transfer",), "ngram_kd": ("transfer",), "smooth": ("transfer",),
                "budget_kd": ("teacher",)}.get(self.route, ("transfer", "teacher"))

    def top_k(self, data) -> int:
        """The k it distils from: ``k``, or the whole vocabulary when ``k`` is None."""
        if self.k is not None and self.k > data.vocab_size:
            raise ValueError(f"k = {self.k} is more than the vocabulary's {data.vocab_size} characters.")
        if self.direction == "reverse" and self.k not in (None, data.vocab_size):
            raise ValueError("Reverse KL needs the teacher's whole distribution (the dense logits): leave k=None.")
        return self.k or data.vocab_size

    @property
    def recipe(self) -> dict:
        """Its ``fit`` settings: ``epochs`` passes (default 1), AdamW with lr 3e-3, batch 32, weight decay 0.01."""
        if self.route in ("budget", "budget_kd"):  # many passes over all the plays: larger batches use a CPU's FLOPs better
            return {"epochs": self.epochs or 1, "lr": 4e-3, "batch_size": 128, "weight_decay": 0.01}
        return {"epochs": self.epochs or 1, "lr": 3e-3, "batch_size": 32, "weight_decay": 0.01}

    def settings(self, data):
        config = {"size": self.size, **LM_SIZES[self.size], "route": self.route, "seed": self.seed, **self.recipe,
                  **corpus(data)}
        if self.route in KD_ROUTES:
            config.update(T=self.T, alpha=self.alpha, direction=self.direction, k=self.top_k(data),
                          cache="dense" if self.direction == "reverse" else self.cache)
            if self.cache == "sampled":
                config["draw_seed"] = LMTransfer.DRAW_SEED
        if self.route in CONTROL_ROUTES:
            config.update(T=self.T, alpha=self.alpha)
        if self.route == "ngram_kd":
            config["ngram"] = dict(self.NGRAM_TEACHER)
        if self.route == "onpolicy":
            config["onpolicy"] = dict(self.ONPOLICY)
        if self.route == "seqkd":
            config["text"] = dict(self.TEXT)
        if self.route == "budget":  # a label the key of today's checkpoints carries (budget reads no windows)
            config["windows"] = transfer_windows()
        if self.route == "budget_kd":
            config["windows"] = "all training windows"
        return config

    def inputs(self, data, transfer: LMTransfer | None) -> dict:
        """Its ``inputs`` for ``transfer``: the transfer set (scratch: a teacher-less one by default) and its teacher."""
        if self.route == "budget":
            return {}
        if self.route == "budget_kd":
            return {"teacher": getattr(transfer, "teacher", None)}
        if self.route in ("scratch", *CONTROL_ROUTES):  # the very windows the distilled students see
            return {"transfer": transfer or LMTransfer(data, None)}
        return {"transfer": transfer, "teacher": getattr(transfer, "teacher", None)}

    def check(self, data, inputs):
        super().check(data, inputs)
        transfer = inputs.get("transfer")
        if ("teacher" in self.uses and inputs.get("teacher") is None) or ("transfer" in self.uses and transfer is None):
            raise ValueError(f"The {self.route!r} route needs transfer=LMTransfer(data, teacher).")
        if "transfer" in self.uses and "teacher" in self.uses and inputs["teacher"] is not transfer.teacher:
            raise ValueError("inputs['teacher'] must be the transfer set's own teacher (LMStudent.inputs makes both).")
        if transfer is not None and (corpus(transfer.data) != corpus(data) or len(transfer.data.X_train) != len(data.X_train)):
            raise ValueError("This transfer set was drawn from another corpus; make LMTransfer(data, ...) from this one.")

    def prepare(self, data, inputs, derived):
        transfer = inputs.get("transfer")
        if self.route == "budget":
            return {"train": data.train, "teacher_joules": 0.0}
        if self.route == "budget_kd":
            draws, meter = metered(lambda: all_windows_sampled(inputs["teacher"], data, self.top_k(data)), data.device)
            return {"train": (*data.train, draws), "teacher_joules": meter.joules}
        if self.route == "scratch":
            return {"train": (transfer.X, transfer.y), "teacher_joules": 0.0}
        if self.route == "smooth":
            return {"train": (transfer.X, transfer.y), "teacher_joules": 0.0}
        if self.route == "ngram_kd":
            soft = transfer.ngram(**self.NGRAM_TEACHER)
            cost = transfer.costs["n-gram soft labels"]
            return {"train": (transfer.X, transfer.y, soft), "teacher_joules": cost["joules"],
                    "teacher_seconds": round(cost["seconds"], 2)}
        if self.route == "seqkd":
            text = transfer.generated(**self.TEXT)
            return {"train": text, "teacher_joules": transfer.costs["teacher writes text"]["joules"]}
        k = self.top_k(data)
        if self.direction == "reverse":
            soft = (transfer.dense(),)
        else:
            soft = {"topk": lambda: transfer.topk(k), "bucket": lambda: transfer.bucket(k),
                    "sampled": lambda: (transfer.sampled(k),)}[self.cache]()
        ready = {"train": (transfer.X, transfer.y, *soft), "teacher_joules": transfer.costs["teacher top-k logits"]["joules"]}
        if self.route == "onpolicy":  # the teacher scores the student's own text as it trains
            ready.update(teacher=transfer.teacher, prompts=transfer.X)
        return ready

    def build(self, data):
        return build_lm(self.size, data)

    def train(self, model, data, ready, quiet):
        criterion, checkpoint = None, ready["checkpoint"]
        if self.route == "ngram_kd":
            criterion = KDCriterion(self.T, self.alpha, signal=DenseLogits())
        if self.route == "smooth":
            from ..teacherfree import label_smoothing

            criterion = label_smoothing(self.alpha)
        if self.route in KD_ROUTES:  # reverse KL needs the teacher's whole distribution: the dense cache
            signal = DenseLogits() if self.direction == "reverse" else \
                {"topk": SparseLogits, "bucket": BucketLogits, "sampled": SampledLogits}[self.cache]()
            criterion = KDCriterion(self.T, self.alpha, signal=signal, direction=self.direction)
        if self.route == "onpolicy":
            from ..onpolicy import OnPolicyKD

            criterion = OnPolicyKD(model, ready["teacher"], criterion, ready["prompts"], seed=self.seed, **self.ONPOLICY)
            checkpoint = None  # its text depends on the weights of the moment: no resume file
        history = fit(model, ready["train"], data.val, **self.recipe, criterion=criterion, seed=self.seed, quiet=quiet,
                      desc=f"{self.size} {self.route} s{self.seed}", checkpoint=checkpoint)
        out = {"history": history.rows, "resumed": history.resumed}
        if self.route == "onpolicy":
            out.update(student_wrote_chars=criterion.written, teacher_scored_windows=criterion.scored)
        return out

    def scores(self, model, data, ready):
        own = {"teacher_seconds": ready["teacher_seconds"]} if "teacher_seconds" in ready else {}
        return {"teacher_joules": ready["teacher_joules"], **own, **lm_scores(model, data), "params": count_params(model),
                "tokens_seen": self.recipe["epochs"] * ready["train"][1].numel()}


def lm_student(data, size: str, route: str, seed: int, transfer: LMTransfer | None = None, *,
               T: float = 1.0, alpha: float = 1.0, k: int | None = None, direction: str = "forward",
               epochs: int | None = None, cache: str = "topk", quiet: bool = True) -> Entry:
    """A lesson 8 student (:class:`LMStudent`), cached in the zoo under everything that made it.

    ``transfer`` is the :class:`LMTransfer` the scratch, kd and seqkd routes train on (scratch: a
    teacher-less one with seed 0 by default).  ``Entry.meta`` has the scores (:func:`lm_scores`),
    ``train_seconds``, ``energy_joules``/``energy_source`` of the student's own training, and
    ``teacher_joules``: the teacher-side cost it needed (caching or generation), as measured when
    it was made.

    Introduced in lesson 8.
    """
    spec = LMStudent(size, route, seed, T=T, alpha=alpha, k=k, direction=direction, epochs=epochs, cache=cache)
    return spec.load_or_train(data, spec.inputs(data, transfer), quiet=quiet)


#: The (T, alpha) pairs lesson 8 tries for token-level KD, on validation, with the 40k student.
LM_KD_GRID = ((1.0, 1.0), (2.0, 1.0), (1.0, 0.5), (2.0, 0.5))


def lm_kd_choice(data, transfer: LMTransfer, direction: str = "forward", quiet: bool = True) -> tuple[dict, list[dict]]:
    """T and alpha for token-level KD in one ``direction``, chosen on **validation** bits per character.

    Trains (or loads) the 40k student, seed 0, one pass, for each pair of :data:`LM_KD_GRID`, and
    scores it with :func:`fair_scores`; returns the best ``{"T", "alpha"}`` and one row per pair.
    Lesson 9 calls it too, so both lessons use the same choice and it follows the data if anything
    upstream changes.  The reverse KL gets its own choice (``direction="reverse"``).

    Introduced in lesson 8.
    """
    rows = []
    for T, alpha in LM_KD_GRID:
        entry = lm_student(data, "40k", "kd", 0, transfer, T=T, alpha=alpha, direction=direction, quiet=quiet)
        rows.append({"T": T, "alpha": alpha, "val bpc": round(fair_scores(entry, data)["val_bpc"], 4),
                     "train s": round(entry.meta["train_seconds"], 1)})
    best = min(rows, key=lambda r: r["val bpc"])
    return {"T": best["T"], "alpha": best["alpha"]}, rows


def teacher_bits_on_samples(student, teacher, data, *, windows: int = 256, temperature: float = 1.0,
                            seed: int = 0) -> dict:
    """Precision, as LM distillation papers judge it: the **teacher's** bits per character on text the student wrote.

    ``windows`` first characters of validation windows start ``windows`` samples of one context
    each (``kdlib.lm.generate`` at ``temperature``, seeded); the teacher scores every written
    character.  Low = the student writes what the teacher finds likely; bits per character on real
    text (:mod:`kdlib.bpc`) is the other side, recall.  A student that repeats one safe phrase can
    score well here and badly there, which is why both are reported.  Returns ``{"teacher_bpc",
    "student_bpc"}`` (the student's own surprise at its text, for comparison) and the ``samples``.

    Introduced in lesson 8.
    """
    import torch

    from ..lm import generate

    prompts = data.X_val[:windows, :1]
    text = generate(student, prompts, data.context, temperature=temperature, seed=seed)  # (windows, 1 + context)
    X, y = text[:, :-1].contiguous(), text[:, 1:].contiguous()
    scores = {name: evaluate(model, X, y)["loss"] / math.log(2) for name, model in (("teacher_bpc", teacher),
                                                                                     ("student_bpc", student))}
    return {**scores, "samples": text.to(torch.long)}


#: The ks lesson 8 compares for each sparse cache kind (:mod:`kdlib.sparse`).
LM_CACHE_KS = (4, 8, 16)


def cache_epochs() -> int:
    """Passes over the transfer set for the cache comparison: 4 (2,000 steps; 1 in the smoke size).

    Introduced in lesson 8.
    """
    return sized(4, 1)


def lm_cache_choice(data, transfer: LMTransfer, T: float = 1.0, quiet: bool = True) -> tuple[dict, list[dict]]:
    """The course's default sparse cache, chosen on **validation** bits per character.

    Trains (or loads) the 40k student, seed 0, for :func:`cache_epochs` passes at T = 1, α = 1 from
    the dense logits and from every kind of :data:`kdlib.sparse.KINDS` at every k of
    :data:`LM_CACHE_KS` below the vocabulary size; scores each with :func:`fair_scores`.  The choice is the cache with the
    fewest bytes per position whose validation bpc is within 0.01 of the dense student's (the dense
    logits, ``{"cache": "topk", "k": None}``, when none is).  Returns ``({"cache", "k"}, rows)``, a
    row per cache: ``name``, ``kind``, ``k``, ``bytes``, ``val_bpc``, ``test_bpc``, ``calibration``
    and the zoo ``entry``.  Lesson 9 calls it too, so its students use the same cache.  ``T`` is the
    temperature the cache will be used at: away from T = 1 only renormalised top-k can serve (the
    bucket and sampled caches hold the teacher at T = 1), so only those rows are eligible.

    Introduced in lesson 8.
    """
    from ..sparse import KINDS, bytes_per_position

    def row(name, kind, k, entry):
        return {"name": name, "kind": kind, "k": k, "entry": entry,
                "bytes": bytes_per_position("dense" if kind == "dense" else kind, k or data.vocab_size, data.vocab_size),
                **{key: fair_scores(entry, data)[key] for key in ("val_bpc", "test_bpc", "calibration")}}

    epochs, ks = cache_epochs(), [k for k in LM_CACHE_KS if k < data.vocab_size]
    rows = [row("dense", "dense", None, lm_student(data, "40k", "kd", 0, transfer, epochs=epochs, quiet=quiet))]
    rows += [row(f"{kind}-{k}", kind, k, lm_student(data, "40k", "kd", 0, transfer, epochs=epochs, k=k, cache=kind,
                                                    quiet=quiet)) for kind in KINDS for k in ks]
    usable = [r for r in rows[1:] if T == 1.0 or r["kind"] == "topk"]
    near = [r for r in usable if r["val_bpc"] <= rows[0]["val_bpc"] + 0.01]
    best = min(near, key=lambda r: (r["bytes"], r["val_bpc"])) if near else None
    return ({"cache": best["kind"], "k": best["k"]} if best else {"cache": "topk", "k": None}), rows
