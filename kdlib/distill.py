"""Knowledge distillation: temperature softmax, the Hinton KD loss, a frozen teacher, logit caching.

Hinton, Vinyals & Dean (2015), *Distilling the Knowledge in a Neural Network*, arXiv:1503.02531.
The student learns from the teacher's *soft labels* ``p_T = softmax(z_teacher / T)``: at a high
temperature T the small probabilities the teacher gives to wrong classes — which shirts look
like T-shirts — become visible and carry "dark knowledge".  Introduced in lessons 2 and 3.

The teacher's signal reaches :class:`KDCriterion` as one of these named kinds, each with its one
loss: :class:`DenseLogits` (its full logits, cached once), :class:`SparseLogits` (its top-k logits
and their ids, cached once, renormalised), :class:`OnlineTeacher` (the frozen teacher, run on every
batch), and the two other sparse caches of :mod:`kdlib.sparse` (top-k plus a bucket, sampled-k).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .train import predict
from .validate import finite_number, whole_number

#: Label value meaning "no label": such examples get only the soft (teacher) term (lesson 3).
UNLABELLED = -1


def _check_temperature(T) -> float:
    return finite_number(T, "Temperature T", strict=True)


def softmax_t(logits: torch.Tensor, T: float = 1.0) -> torch.Tensor:
    """Temperature softmax ``p_i = exp(z_i / T) / Σ_j exp(z_j / T)`` over the last dimension.

    T = 1 is the ordinary softmax; T → ∞ flattens towards uniform; T → 0 approaches one-hot.
    (Hinton et al. 2015, eq. 1; lesson 2.)

    Introduced in lesson 2.
    """
    return torch.softmax(logits / _check_temperature(T), dim=-1)


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """Shannon entropy ``H(p) = −Σ p_i log p_i`` in nats, per row (0·log 0 taken as 0).

    Introduced in lesson 2.
    """
    return -(probs * torch.log(probs.clamp_min(1e-12))).sum(-1)


DIRECTIONS = ("forward", "reverse")


def _check_alpha(alpha) -> float:
    return finite_number(alpha, "alpha (the weight of the soft term)", high=1.0)


def hard_term(student_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The hard term of every KD loss: mean cross-entropy over labelled rows (``UNLABELLED`` rows skipped); 0 when none is."""
    if bool((labels == UNLABELLED).all()):
        return student_logits.new_zeros(())
    return F.cross_entropy(student_logits, labels, ignore_index=UNLABELLED)


def as_rows(student_logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Flatten ``(..., classes)`` logits and ``(...)`` labels to rows: one row per example or position.

    Labels are class indices: floating labels (one-hot or soft rows among them) are an error saying
    so, and on a CPU, where checking costs no device wait, so are indices outside ``0 … classes − 1``
    (other than ``UNLABELLED``)."""
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        one_hot = labels.shape == student_logits.shape
        raise ValueError(f"labels must be integer class indices, got {labels.dtype}"
                         + (" of the logits' shape — one-hot rows? pass labels.argmax(-1)" if one_hot else "")
                         + "; soft targets are the teacher's logits, not the labels.")
    if labels.device.type == "cpu" and labels.numel():
        lo, hi = (int(v) for v in torch.aminmax(labels))
        if hi >= student_logits.shape[-1] or lo < UNLABELLED:
            raise ValueError(f"labels run from {lo} to {hi}, but the logits have {student_logits.shape[-1]} classes "
                             f"(labels are 0 … {student_logits.shape[-1] - 1}, or {UNLABELLED} for unlabelled).")
    if labels.shape != student_logits.shape[:-1]:
        raise ValueError(f"labels must be one per row, shape {tuple(student_logits.shape[:-1])}, "
                         f"got {tuple(labels.shape)}.")
    return student_logits.reshape(-1, student_logits.shape[-1]), labels.reshape(-1)


def _teacher_log_probs(teacher_logits: torch.Tensor, T: float, direction: str = "forward") -> torch.Tensor:
    """``log softmax(z_t / T)`` per row, in float32 and detached, ready for the KL of either direction.

    A teacher logit of −inf (a masked class) has probability 0 and adds 0·log 0 = 0 to the forward
    KL: its log-probability is raised from −inf to the lowest float so that 0 · (log p − log q)
    stays 0 instead of NaN.  NaN or +inf logits, or a row that is −inf everywhere, have no soft
    labels; the reverse KL is infinite where the teacher gives probability 0.  Both are reported
    as errors for CPU tensors; on a GPU, where checking every batch would stall it, they give a
    non-finite loss, which :func:`kdlib.train.fit` stops on and reports.
    """
    log_p = F.log_softmax(teacher_logits.detach().float() / T, dim=-1)
    if log_p.device.type == "cpu":
        if bool(torch.isnan(log_p).any()):
            raise ValueError("The teacher logits hold NaN or +inf values (or a row that is −inf everywhere), so "
                             "its soft labels are undefined; check the teacher and the cached logits.")
        if direction == "reverse" and bool(torch.isneginf(log_p).any()):
            raise ValueError("A teacher logit of −inf gives probability 0, where the reverse KL(student‖teacher) "
                             "is infinite; use direction='forward', which counts masked classes as 0.")
    return log_p if direction == "reverse" else log_p.clamp_min(torch.finfo(log_p.dtype).min)


def kd_terms(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
             T: float = 4.0, alpha: float = 0.9, direction: str = "forward") -> dict[str, torch.Tensor]:
    """The Hinton KD loss and its two named terms (Hinton, Vinyals & Dean 2015, section 2)::

        soft = T² · KL( softmax(z_t / T) ‖ softmax(z_s / T) )       (batchmean: summed over classes,
                                                                      averaged over rows)
        hard = CE(labels, z_s)                                        (mean over labelled rows, at T = 1)
        loss = alpha · soft + (1 − alpha) · hard

    **kdlib's alpha weighs the soft (KD) term**, as in Hinton et al.: ``alpha = 1`` is soft labels
    only, ``alpha = 0`` plain cross-entropy.  torchdistill's ``KDLoss`` writes the same loss the
    other way round, ``L = alpha · CE + (1 − alpha) · τ² · KL`` (its ``alpha`` weighs the
    cross-entropy, its ``beta``, by default ``1 − alpha``, the KL term), so kdlib's ``alpha = 0.9``
    is torchdistill's ``alpha = 0.1``.

    Computed in log space (``log_softmax`` on both sides, ``F.kl_div(..., log_target=True)``),
    with ``reduction="batchmean"`` so it is a true KL per example (PyTorch's ``"mean"`` would also
    divide by the number of classes).  A teacher logit of −inf (a masked class) counts 0·log 0 = 0;
    NaN or +inf teacher logits are reported (see :func:`_teacher_log_probs`).  The T² factor keeps
    the soft term's gradients the same size as T changes: they scale as 1/T² otherwise (Hinton
    et al. 2015, section 2).  Rows whose label is ``UNLABELLED`` (−1) contribute to ``soft`` only.
    The teacher logits are detached: no gradient ever flows into the teacher.

    Logits may carry extra leading dimensions, ``(batch, T, vocab)`` with labels ``(batch, T)``:
    a language model is distilled token by token, every position a row (lesson 8).
    ``direction="reverse"`` swaps the KL to ``KL(q_T ‖ p_T)``, token by token on the given
    inputs: mode-seeking, the student is punished for mass where the teacher has little, not for
    missing some of the teacher's modes.  (This is *not* MiniLLM, Gu et al. 2024, which optimises
    a sequence-level reverse KL on text the student samples itself.)
    """
    T = _check_temperature(T)
    alpha = _check_alpha(alpha)
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be 'forward' (KL(teacher‖student)) or 'reverse', got {direction!r}.")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"Student logits {tuple(student_logits.shape)} and teacher logits "
                         f"{tuple(teacher_logits.shape)} must have the same shape (batch, classes).")
    student, labels = as_rows(student_logits, labels)
    log_p_teacher = _teacher_log_probs(teacher_logits.reshape(student.shape), T, direction)
    log_q_student = F.log_softmax(student / T, dim=-1)
    if direction == "forward":
        soft = F.kl_div(log_q_student, log_p_teacher, reduction="batchmean", log_target=True)
    else:
        soft = F.kl_div(log_p_teacher, log_q_student, reduction="batchmean", log_target=True)
    soft = T * T * soft
    hard = hard_term(student, labels)
    return {"loss": alpha * soft + (1 - alpha) * hard, "soft": soft, "hard": hard}


def kd_loss(student_logits, teacher_logits, labels, T: float = 4.0, alpha: float = 0.9,
            direction: str = "forward") -> torch.Tensor:
    """``alpha · T² · KL(p_T ‖ q_T) + (1 − alpha) · CE(labels, student)`` — see :func:`kd_terms`.

    Introduced in lesson 3.
    """
    return kd_terms(student_logits, teacher_logits, labels, T, alpha, direction)["loss"]


def topk_kd_terms(student_logits: torch.Tensor, top_values: torch.Tensor, top_indices: torch.Tensor,
                  labels: torch.Tensor, T: float = 1.0, alpha: float = 1.0) -> dict[str, torch.Tensor]:
    """Forward KD against a *k-sparse* teacher: only its top-k logits per row were kept::

        p̂_i  = softmax(top_values / T)_i              over the k kept classes i ∈ K (renormalised)
        soft = T² · Σ_{i∈K} p̂_i · (log p̂_i − log q_i),   q = softmax(z_s / T) over the full vocabulary
               (averaged over rows / positions, as kd_terms' batchmean)
        loss = alpha · soft + (1 − alpha) · CE(labels, z_s)   (alpha weighs the soft term, as in kd_terms)

    The simplest sparse cache, and a biased one: the mass outside the k ids is dropped, so the
    target is sharper than the teacher (see :mod:`kdlib.sparse` for top-k plus a bucket, and for
    sampled-k, which keep the teacher's own probabilities).  With k equal to the number of
    classes it is exactly :func:`kd_terms`' forward loss; with k = 1 it is cross-entropy on the
    teacher's top guess (hard pseudo-labels).  ``top_values``/``top_indices`` have shape ``(..., k)``
    as made by :func:`topk_logits`; any float and integer dtypes.  Kept values of −inf count 0, as
    in :func:`kd_terms`.
    """
    T = _check_temperature(T)
    alpha = _check_alpha(alpha)
    if top_values.shape != top_indices.shape or top_values.shape[:-1] != student_logits.shape[:-1]:
        raise ValueError(f"top_values {tuple(top_values.shape)} and top_indices {tuple(top_indices.shape)} must "
                         f"both be (..., k) with ... = {tuple(student_logits.shape[:-1])}.")
    student, labels = as_rows(student_logits, labels)
    k = top_values.shape[-1]
    log_p = _teacher_log_probs(top_values.reshape(-1, k), T)
    log_q = F.log_softmax(student / T, dim=-1).gather(-1, top_indices.reshape(-1, k).long())
    soft = T * T * (log_p.exp() * (log_p - log_q)).sum(-1).mean()
    hard = hard_term(student, labels)
    return {"loss": alpha * soft + (1 - alpha) * hard, "soft": soft, "hard": hard}


class FrozenTeacher(nn.Module):
    """A teacher that cannot be trained by mistake: always run in eval mode, without gradients or a graph.

    Every forward pass runs ``model`` in eval mode under ``torch.no_grad()`` and then puts the
    model's own mode back, so no gradient can reach it through a KD loss, and ``train()`` on the
    wrapper is ignored.  The wrapped model is *not* changed: its ``requires_grad`` flags and
    mode stay the caller's, so it can still be fine-tuned later.  It holds no parameters an
    optimizer built from a student could see.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.training = False

    def train(self, mode: bool = True) -> "FrozenTeacher":  # noqa: ARG002 - always eval
        self.training = False
        return self

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        was_training = self.model.training
        self.model.eval()
        try:
            return self.model(x)
        finally:
            self.model.train(was_training)


def freeze(teacher: nn.Module) -> FrozenTeacher:
    """``teacher`` wrapped in :class:`FrozenTeacher` (idempotent); ``teacher`` itself is left as it was."""
    return teacher if isinstance(teacher, FrozenTeacher) else FrozenTeacher(teacher)


def cache_logits(teacher: nn.Module, X: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """The teacher's logits on the whole transfer set ``X``, computed once.

    Reused every epoch (:class:`DenseLogits`), they make a KD epoch cost about as much as a scratch
    epoch; the online alternative (:class:`OnlineTeacher`) runs the teacher on every batch.
    Runs in eval mode without building a graph, and leaves ``teacher`` as it was (trainable
    models, such as a born-again generation, stay trainable).

    Introduced in lesson 3.
    """
    return predict(teacher, X, batch_size)


#: The largest magnitude a float16 holds (:func:`topk_logits` stores values in float16).
FLOAT16_MAX = float(torch.finfo(torch.float16).max)


@torch.no_grad()
def topk_logits(teacher: nn.Module, X: torch.Tensor, k: int, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """The teacher's k largest logits per row, and their class ids, computed once.

    Returns ``(values, indices)`` of shape ``(..., k)``: values in float16, ids in the smallest
    integer type that holds the vocabulary (uint8 up to 256 classes).  Per position that is
    ``3k`` bytes instead of ``4 · vocab`` for the dense float32 logits of :func:`cache_logits`.
    Batch by batch, so the dense logits of the whole set never exist at once.  float16 holds
    magnitudes up to 65,504 only: a teacher logit beyond that is an error naming float16 (it would
    become ±inf, and later look like a broken teacher), never a silent overflow.
    """
    k = whole_number(k, "k")
    values, indices = [], []
    for start in range(0, len(X), batch_size):
        logits = predict(teacher, X[start:start + batch_size], batch_size)
        if k > logits.shape[-1]:
            raise ValueError(f"k = {k} is more than the teacher's {logits.shape[-1]} classes.")
        top = logits.topk(k, dim=-1)
        finite = top.values[torch.isfinite(top.values)]
        if finite.numel() and float(finite.abs().max()) > FLOAT16_MAX:
            raise ValueError(f"A teacher logit of {float(finite.abs().max()):.4g} does not fit the float16 cache (largest "
                             f"{FLOAT16_MAX:g}): it would be stored as ±inf. Subtract each row's largest logit first "
                             "(a softmax does not change), or keep dense float32 logits with cache_logits().")
        id_dtype = torch.uint8 if logits.shape[-1] <= 256 else torch.int32
        values.append(top.values.half())
        indices.append(top.indices.to(id_dtype))
    return torch.cat(values), torch.cat(indices)


_SPARSE_FORWARD_ONLY = ("k-sparse teacher logits support the forward direction only: the teacher's probability "
                        "outside its top k is unknown, so KL(student‖teacher) is undefined.")


class TeacherSignal:
    """What the teacher gives a :class:`KDCriterion`, and which tensors of ``fit``'s batch carry it.

    One kind of teacher signal per subclass, each with one loss (mdistiller's habit: every method
    returns its named terms): :class:`DenseLogits` (cached full logits), :class:`SparseLogits`
    (cached top-k values and ids) and :class:`OnlineTeacher` (the teacher itself, run on every
    batch).  :meth:`terms` checks that the batch holds what the signal reads — ``reads`` names the
    tensors in order — and returns ``{"loss", "soft", "hard"}``.
    """

    #: The batch as ``fit`` delivers it to the criterion, tensor by tensor.
    reads: tuple[str, ...] = ("X", "y")
    #: True when only the forward KL(teacher‖student) can be computed from this signal.
    forward_only = False

    def terms(self, student_logits: torch.Tensor, batch, T: float, alpha: float,
              direction: str = "forward") -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def _check(self, batch) -> None:
        if len(batch) == len(self.reads):
            return
        kinds = {3: "(X, y, logits): signal=DenseLogits(), the default; (X, y, sampled_ids): kd.sparse.SampledLogits()",
                 4: "(X, y, values, ids): signal=SparseLogits()",
                 5: "(X, y, values, ids, log_z): signal=kd.sparse.BucketLogits()",
                 2: "(X, y): signal=OnlineTeacher(teacher), which runs the teacher on every batch"}
        hint = kinds.get(len(batch), "one of (X, y, logits), (X, y, values, ids) or (X, y)")
        raise ValueError(f"{self!r} reads batches ({', '.join(self.reads)}), but fit() gave the criterion "
                         f"{len(batch)} tensors. Pass fit() the tensors this signal reads, or name the signal "
                         f"that matches the batch: {hint}.")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class DenseLogits(TeacherSignal):
    """Cached full teacher logits, the third tensor of every batch: ``fit(student, (X, y, logits), ...)``.

    Made once by :func:`cache_logits` (or any ``(..., classes)`` tensor); the loss is :func:`kd_terms`,
    forward or reverse KL.  :class:`KDCriterion`'s default signal.

    Introduced in lesson 3.
    """

    reads = ("X", "y", "logits")

    def terms(self, student_logits, batch, T, alpha, direction="forward"):
        self._check(batch)
        if not batch[2].is_floating_point():
            raise ValueError(f"DenseLogits reads teacher logits, but the third tensor of the batch holds integers "
                             f"({batch[2].dtype}): draws from the teacher? Use signal=kd.sparse.SampledLogits().")
        return kd_terms(student_logits, batch[2], batch[1], T, alpha, direction)


class SparseLogits(TeacherSignal):
    """Cached k-sparse teacher logits, ``fit(student, (X, y, values, ids), ...)``, as :func:`topk_logits` makes them.

    The loss is :func:`topk_kd_terms`, forward KL only: the teacher's probability outside its top k
    is unknown, so KL(student‖teacher) cannot be computed.

    Introduced in lesson 8.
    """

    reads = ("X", "y", "values", "ids")
    forward_only = True

    def terms(self, student_logits, batch, T, alpha, direction="forward"):
        self._check(batch)
        if direction != "forward":
            raise ValueError(_SPARSE_FORWARD_ONLY)
        return topk_kd_terms(student_logits, batch[2], batch[3], batch[1], T, alpha)


class OnlineTeacher(TeacherSignal):
    """The teacher itself, run on every batch ``(X, y)``: needed when the inputs change from epoch to epoch.

    ``model`` is wrapped by :func:`freeze` here, so the teacher is frozen by construction: eval
    mode, no gradient and no graph, and none of its parameters in the student's optimizer.  It
    follows the batch to ``fit``'s device the first time it sees one.  The loss is :func:`kd_terms`
    on the teacher's logits for ``batch[0]``, equal to :class:`DenseLogits` with those same logits
    cached.  (``fit`` gives the criterion the batch as sliced, before any ``augment``.)

    Introduced in lesson 3.
    """

    reads = ("X", "y")

    def __init__(self, model: nn.Module):
        if not isinstance(model, nn.Module):
            raise TypeError(f"OnlineTeacher needs the teacher model (a torch.nn.Module), got {type(model).__name__}.")
        self.teacher = freeze(model)

    def terms(self, student_logits, batch, T, alpha, direction="forward"):
        self._check(batch)
        param = next(self.teacher.parameters(), None)
        if param is not None and param.device != batch[0].device:
            self.teacher.to(batch[0].device)  # follow the data to fit()'s device, once
        return kd_terms(student_logits, self.teacher(batch[0]), batch[1], T, alpha, direction)

    def __repr__(self) -> str:
        return f"OnlineTeacher({type(self.teacher.model).__name__})"


class KDCriterion:
    """The KD loss as a ``fit`` criterion, reading one named kind of teacher signal (lessons 3 and 8)::

        loss = alpha · T² · KL(p_T ‖ q_T) + (1 − alpha) · CE(y, z_s),   p_T = softmax(z_t / T), q_T = softmax(z_s / T)

    (Hinton, Vinyals & Dean 2015): the KL in log space with ``batchmean`` reduction (summed over
    classes, averaged over rows or positions), times T² so that its gradients keep their size as
    T changes; the cross-entropy averaged over labelled rows (``UNLABELLED`` rows get the soft
    term only).  Details in :func:`kd_terms` and :func:`topk_kd_terms`.

    * ``KDCriterion(T, alpha)`` — cached dense logits, ``fit(student, (X, y, logits), ...)``
      (:class:`DenseLogits`, the default);
    * ``KDCriterion(T, alpha, signal=SparseLogits())`` — cached top-k, ``fit(student, (X, y, values, ids), ...)``
      (:func:`topk_kd_terms`, forward direction only);
    * ``KDCriterion(T, alpha, signal=OnlineTeacher(teacher))`` — the frozen teacher run on every
      batch, ``fit(student, (X, y), ...)``.

    A batch that does not hold what the signal reads is an error that says which signal would fit
    it.  ``alpha`` weighs the soft term (kdlib's convention; torchdistill's ``KDLoss`` uses it for
    the cross-entropy, see :func:`kd_terms`).  ``direction`` is ``"forward"`` (Hinton) or
    ``"reverse"`` (token-level reverse KL, mode-seeking).  :meth:`terms` returns the named terms ``{"loss", "soft", "hard"}``;
    calling the criterion returns ``loss``.

    Introduced in lesson 3.
    """

    def __init__(self, T: float = 4.0, alpha: float = 0.9, *, signal: TeacherSignal | None = None,
                 direction: str = "forward"):
        self.T = _check_temperature(T)
        self.alpha = _check_alpha(alpha)
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be 'forward' or 'reverse', got {direction!r}.")
        self.direction = direction
        signal = DenseLogits() if signal is None else signal
        if not isinstance(signal, TeacherSignal):
            wrap = " — wrap a teacher model as signal=OnlineTeacher(teacher)" if isinstance(signal, nn.Module) else ""
            raise TypeError(f"signal must be DenseLogits(), SparseLogits(), OnlineTeacher(teacher) or one of "
                            f"kd.sparse's BucketLogits() and SampledLogits(), "
                            f"got {type(signal).__name__}{wrap}.")
        if signal.forward_only and direction != "forward":
            raise ValueError(_SPARSE_FORWARD_ONLY)
        self.signal = signal

    def terms(self, student_logits: torch.Tensor, batch) -> dict[str, torch.Tensor]:
        """``{"loss", "soft", "hard"}`` for one batch, from this criterion's signal."""
        return self.signal.terms(student_logits, batch, self.T, self.alpha, self.direction)

    def __call__(self, student_logits: torch.Tensor, batch) -> torch.Tensor:
        return self.terms(student_logits, batch)["loss"]

    def __repr__(self) -> str:
        return f"KDCriterion(T={self.T}, alpha={self.alpha}, signal={self.signal!r}, direction={self.direction!r})"


def agreement(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> float:
    """Top-1 fidelity: the fraction of inputs where student and teacher predict the same class.

    Introduced in lesson 3.
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError("agreement() needs logits of the same shape for student and teacher.")
    return float((student_logits.argmax(-1) == teacher_logits.argmax(-1)).float().mean())


def gap_closed(kd_acc: float, scratch_acc: float, teacher_acc: float) -> float:
    """How much of the teacher–student gap distillation closed: ``(KD − scratch) / (teacher − scratch)``.

    1 means the distilled student matches the teacher, 0 means no better than scratch, negative
    means worse.  Undefined (an error) when the scratch student already matches the teacher.

    Introduced in lesson 3.
    """
    if abs(teacher_acc - scratch_acc) < 1e-12:
        raise ValueError("gap_closed is undefined: the scratch student already matches the teacher.")
    return (kd_acc - scratch_acc) / (teacher_acc - scratch_acc)
