"""Knowledge distillation: temperature softmax, the Hinton KD loss, a frozen teacher, logit caching.

Hinton, Vinyals & Dean (2015), *Distilling the Knowledge in a Neural Network*, arXiv:1503.02531.
The student learns from the teacher's *soft labels* ``p_T = softmax(z_teacher / T)``: at a high
temperature T the small probabilities the teacher gives to wrong classes — which shirts look
like T-shirts — become visible and carry "dark knowledge".  Introduced in lessons 2 and 3.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .train import predict

#: Label value meaning "no label": such examples get only the soft (teacher) term (lesson 3).
UNLABELED = -1


def _check_temperature(T) -> float:
    if isinstance(T, bool) or not isinstance(T, (int, float)) or not math.isfinite(T) or T <= 0:
        raise ValueError(f"Temperature T must be a positive number, got {T!r}.")
    return float(T)


def softmax_t(logits: torch.Tensor, T: float = 1.0) -> torch.Tensor:
    """Temperature softmax ``p_i = exp(z_i / T) / Σ_j exp(z_j / T)`` over the last dimension.

    T = 1 is the ordinary softmax; T → ∞ flattens towards uniform; T → 0 approaches one-hot.
    (Hinton et al. 2015, eq. 1; lesson 2.)
    """
    return torch.softmax(logits / _check_temperature(T), dim=-1)


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """Shannon entropy ``H(p) = −Σ p_i log p_i`` in nats, per row (0·log 0 taken as 0; lesson 2)."""
    return -(probs * torch.log(probs.clamp_min(1e-12))).sum(-1)


def kd_terms(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
             T: float = 4.0, alpha: float = 0.9) -> dict[str, torch.Tensor]:
    """The Hinton KD loss and its two named terms (lesson 3)::

        soft = T² · KL( softmax(z_t / T) ‖ softmax(z_s / T) )       (batchmean)
        hard = CE(labels, z_s)                                        (mean over labelled rows)
        loss = alpha · soft + (1 − alpha) · hard

    Computed in log space (``log_softmax`` on both sides, ``F.kl_div(..., log_target=True)``),
    with ``reduction="batchmean"`` so it is a true KL per example.  The T² factor keeps the
    soft term's gradients the same size as T changes: they scale as 1/T² otherwise (Hinton
    et al. 2015, section 2).  Rows whose label is ``UNLABELED`` (−1) contribute to ``soft`` only.
    The teacher logits are detached: no gradient ever flows into the teacher.
    """
    T = _check_temperature(T)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha weighs the soft term and must be in [0, 1], got {alpha!r}.")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"Student logits {tuple(student_logits.shape)} and teacher logits "
                         f"{tuple(teacher_logits.shape)} must have the same shape (batch, classes).")
    if labels.shape != student_logits.shape[:1]:
        raise ValueError(f"labels must be one per row, shape {tuple(student_logits.shape[:1])}, got {tuple(labels.shape)}.")
    log_p_teacher = F.log_softmax(teacher_logits.detach() / T, dim=-1)
    log_q_student = F.log_softmax(student_logits / T, dim=-1)
    soft = T * T * F.kl_div(log_q_student, log_p_teacher, reduction="batchmean", log_target=True)
    if bool((labels == UNLABELED).all()):
        hard = student_logits.new_zeros(())
    else:
        hard = F.cross_entropy(student_logits, labels, ignore_index=UNLABELED)
    return {"loss": alpha * soft + (1 - alpha) * hard, "soft": soft, "hard": hard}


def kd_loss(student_logits, teacher_logits, labels, T: float = 4.0, alpha: float = 0.9) -> torch.Tensor:
    """``alpha · T² · KL(p_T ‖ q_T) + (1 − alpha) · CE(labels, student)`` — see :func:`kd_terms`."""
    return kd_terms(student_logits, teacher_logits, labels, T, alpha)["loss"]


class FrozenTeacher(nn.Module):
    """A teacher that cannot be trained by mistake: eval mode forever, no gradients, no graph.

    ``train()`` is ignored, its parameters have ``requires_grad=False`` and the forward pass runs
    under ``torch.no_grad()``.  It exposes no parameters to an optimizer built from a student.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        self.model = model

    def train(self, mode: bool = True) -> "FrozenTeacher":  # noqa: ARG002 - always eval
        self.model.eval()
        self.training = False
        return self

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def freeze(teacher: nn.Module) -> FrozenTeacher:
    """Wrap ``teacher`` in :class:`FrozenTeacher` (idempotent)."""
    return teacher if isinstance(teacher, FrozenTeacher) else FrozenTeacher(teacher)


def cache_logits(teacher: nn.Module, X: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """The teacher's logits on the whole transfer set ``X``, computed once (lesson 3).

    Reused every epoch, they make a KD epoch cost about as much as a scratch epoch; the
    online alternative (:class:`KDCriterion` with a teacher) runs the teacher on every batch.
    Runs in eval mode without building a graph, and leaves ``teacher`` as it was (trainable
    models, such as a born-again generation, stay trainable).
    """
    return predict(teacher, X, batch_size)


class KDCriterion:
    """The KD loss as a ``fit`` criterion, with cached or online teacher logits (lesson 3).

    * cached: ``fit(student, (X, y, cached_logits), criterion=KDCriterion(T, alpha))`` —
      the teacher's logits arrive sliced with the batch, in ``batch[2]``;
    * online: ``KDCriterion(T, alpha, teacher=teacher)`` runs the frozen teacher on every batch
      (needed when the inputs change every epoch, e.g. under augmentation).
    """

    def __init__(self, T: float = 4.0, alpha: float = 0.9, teacher: nn.Module | None = None):
        self.T = _check_temperature(T)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha!r}.")
        self.alpha = float(alpha)
        self.teacher = freeze(teacher) if teacher is not None else None

    def __call__(self, student_logits: torch.Tensor, batch) -> torch.Tensor:
        if self.teacher is not None:
            param = next(self.teacher.parameters(), None)
            if param is not None and param.device != batch[0].device:
                self.teacher.to(batch[0].device)  # follow the data to fit()'s device, once
            teacher_logits = self.teacher(batch[0])
        elif len(batch) >= 3:
            teacher_logits = batch[2]
        else:
            raise ValueError("KDCriterion needs cached teacher logits as the third training tensor "
                             "(X, y, logits) or a teacher=... for the online path.")
        return kd_loss(student_logits, teacher_logits, batch[1], self.T, self.alpha)

    def __repr__(self) -> str:
        return f"KDCriterion(T={self.T}, alpha={self.alpha}, {'online' if self.teacher else 'cached'} teacher)"


def agreement(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> float:
    """Top-1 fidelity: the fraction of inputs where student and teacher predict the same class."""
    if student_logits.shape != teacher_logits.shape:
        raise ValueError("agreement() needs logits of the same shape for student and teacher.")
    return float((student_logits.argmax(-1) == teacher_logits.argmax(-1)).float().mean())


def gap_closed(kd_acc: float, scratch_acc: float, teacher_acc: float) -> float:
    """How much of the teacher–student gap distillation closed: ``(KD − scratch) / (teacher − scratch)``.

    1 means the distilled student matches the teacher, 0 means no better than scratch, negative
    means worse.  Undefined (an error) when the scratch student already matches the teacher.
    """
    if abs(teacher_acc - scratch_acc) < 1e-12:
        raise ValueError("gap_closed is undefined: the scratch student already matches the teacher.")
    return (kd_acc - scratch_acc) / (teacher_acc - scratch_acc)
