"""Do students copy their teacher's mistakes?  Position-by-position comparison of language models (lesson 10).

The essay's second critique: a distilled model imitates its teacher, errors included.  On held-out
text, a position where the teacher is **confidently wrong** is one where its most likely next
character has probability above ``threshold`` (0.5 by default) and is not the character that came.
There, a student that copies the teacher puts more probability on the teacher's wrong guess, and
scores worse on the true character, than a student that learnt from the text alone — even when the
copying student is better overall.  :func:`inheritance` measures that from the per-position
distributions :func:`kdlib.bpc.position_probs` returns (every target scored once, the fair scorer's
targets), and the Pearson correlation of the per-position losses ``−log2 p(target)`` with the
teacher's: how much a student's hard and easy characters are the teacher's.

Introduced in lesson 10.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .validate import finite_number


@dataclass(frozen=True)
class Mistakes:
    """Where the teacher is confidently wrong: the positions (``where``, indices of targets) and its ``guess`` there."""

    where: torch.Tensor
    guess: torch.Tensor
    threshold: float
    targets: int

    @property
    def share(self) -> float:
        """The fraction of scored positions where the teacher is confidently wrong."""
        return len(self.where) / self.targets


def confident_mistakes(teacher_probs: torch.Tensor, targets: torch.Tensor, threshold: float = 0.5) -> Mistakes:
    """The positions where the teacher's top character has probability > ``threshold`` and is not the target.

    Introduced in lesson 10.
    """
    threshold = finite_number(threshold, "threshold (a probability)")
    if not 0 <= threshold < 1:
        raise ValueError(f"threshold is a probability in [0, 1), got {threshold}.")
    if teacher_probs.dim() != 2 or targets.shape != teacher_probs.shape[:1]:
        raise ValueError(f"teacher_probs must be (targets, V) and targets (targets,), got {tuple(teacher_probs.shape)} "
                         f"and {tuple(targets.shape)}: take both from kd.bpc.position_probs.")
    top, guess = teacher_probs.max(-1)
    where = torch.nonzero((top > threshold) & (guess != targets)).squeeze(-1)
    return Mistakes(where, guess[where], threshold, len(targets))


def _bits(probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return -probs.gather(-1, targets[:, None]).squeeze(-1).clamp_min(1e-30).double().log2()


def inheritance(student_probs: torch.Tensor, teacher_probs: torch.Tensor, targets: torch.Tensor,
                mistakes: Mistakes) -> dict:
    """How much a student follows the teacher, from the distributions of both at the same positions.

    ``p_on_teacher_guess``: the student's mean probability on the teacher's wrong guess where the
    teacher is confidently wrong; ``bpc_there``: the student's bits per character on the true
    characters of those positions; ``bpc``: its bits per character everywhere; ``loss_correlation``:
    Pearson's r between its per-position bits and the teacher's, over every position.

    Introduced in lesson 10.
    """
    if student_probs.shape != teacher_probs.shape:
        raise ValueError(f"student and teacher distributions differ in shape: {tuple(student_probs.shape)} vs "
                         f"{tuple(teacher_probs.shape)} (score both on the same stream).")
    mine, theirs = _bits(student_probs, targets), _bits(teacher_probs, targets)
    where = mistakes.where
    on_guess = student_probs[where].gather(-1, mistakes.guess[:, None]).squeeze(-1)
    r = torch.corrcoef(torch.stack([mine, theirs]))[0, 1]
    return {"p_on_teacher_guess": float(on_guess.double().mean()) if len(where) else float("nan"),
            "bpc_there": float(mine[where].mean()) if len(where) else float("nan"),
            "bpc": float(mine.mean()), "loss_correlation": float(r)}
