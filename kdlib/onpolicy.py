"""On-policy distillation: the student writes text, the teacher says what it would have written (lesson 8).

Token-level KD on fixed text (:class:`kdlib.distill.KDCriterion`) teaches a student on prefixes it
will never produce itself: at writing time it conditions on its own earlier characters, mistakes
included, and nothing in training showed it how the teacher would carry on from there (the
train/inference mismatch of Bengio et al. 2015).  Generalised KD (GKD, Agarwal et al. 2024) closes
the gap by training on the student's own samples::

    loss = (1 − share) · KD(teacher ‖ student | fixed text) + share · KL(p_teacher ‖ q_student | student's text), T = 1

The second term: the student writes windows (a real ``prompt``-character start, then its own
characters sampled at T = 1), the frozen teacher scores every position of them, and the student is
pulled towards the teacher's next-character distribution there — forward KL, as in the first term
(GKD's λ is ``share``, its divergence here the forward KL; MiniLLM, Gu et al. 2024, differs again:
a policy-gradient sequence-level reverse KL).

:class:`OnPolicyKD` is a ``fit`` criterion.  Writing one window at a time would cost more than the
step itself, so every ``refresh`` steps the student (with its weights of that moment) writes the
windows of the next ``refresh`` steps in one batched call and the teacher scores them in one pass:
the text is at most ``refresh`` steps old — "on-policy" up to that lag.  Prompts are taken in order
from ``prompts`` and every draw is seeded from the step number, so a run is repeatable.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .validate import finite_number, whole_number


class OnPolicyKD:
    """A ``fit`` criterion: ``base`` on the batch, plus forward KL on text the student wrote (see the module).

    ``student`` is the very model ``fit`` trains; ``teacher`` the frozen teacher; ``base`` a
    :class:`~kdlib.distill.KDCriterion` for the fixed-text term; ``prompts`` ``(N, ≥ prompt)`` token
    ids whose first ``prompt`` characters start the student's windows; ``share`` the weight of the
    on-policy term (GKD's λ); ``rows`` windows written per step; ``refresh`` steps between writes.
    ``written`` counts the characters the student wrote and ``scored`` the windows the teacher
    scored, for the ledger.  Introduced in lesson 8.
    """

    def __init__(self, student: nn.Module, teacher: nn.Module, base, prompts: torch.Tensor, *, share: float = 0.5,
                 rows: int = 16, refresh: int = 125, prompt: int = 8, seed: int = 0):
        self.student, self.teacher, self.base = student, teacher, base
        self.share = finite_number(share, "share")
        if not 0 < self.share <= 1:
            raise ValueError(f"share is the weight of the on-policy term, in (0, 1]; got {share}.")
        self.rows, self.refresh = whole_number(rows, "rows"), whole_number(refresh, "refresh")
        self.prompt, self.seed = whole_number(prompt, "prompt"), int(seed)
        context = getattr(student, "context", None)
        if prompts.ndim != 2 or prompts.dtype not in (torch.int64, torch.int32, torch.uint8):
            raise ValueError(f"prompts must be (N, length) token ids, got {tuple(prompts.shape)} of {prompts.dtype}.")
        if prompts.shape[1] < self.prompt or (context is not None and self.prompt >= context):
            raise ValueError(f"A prompt of {self.prompt} characters needs prompts at least that long and shorter than "
                             f"the student's context ({context}); got prompts of length {prompts.shape[1]}.")
        self.prompts = prompts[:, :self.prompt].long()
        self.steps = self.written = self.scored = 0
        self._buffer: tuple[torch.Tensor, torch.Tensor] | None = None

    def _write(self) -> None:
        """The student writes the next ``refresh × rows`` windows; the teacher scores them (no gradients)."""
        from .lm import generate

        n = self.refresh * self.rows
        start = (self.steps // self.refresh) * n
        index = torch.arange(start, start + n) % len(self.prompts)
        prompts = self.prompts[index].to(next(self.student.parameters()).device)
        length = self.student.context - self.prompt
        text = generate(self.student, prompts, length, temperature=1.0, seed=self.seed + self.steps)
        was_training = self.teacher.training
        self.teacher.eval()
        with torch.no_grad():
            window = text[:, :self.student.context]
            teacher_logits = torch.cat([self.teacher(window[i:i + 512]).float() for i in range(0, len(window), 512)])
        self.teacher.train(was_training)
        self._buffer = (window, teacher_logits)
        self.written += n * length
        self.scored += n

    def on_policy_term(self) -> torch.Tensor:
        """KL(teacher ‖ student) per position, averaged, on this step's share of the written windows."""
        if self.steps % self.refresh == 0 or self._buffer is None:
            self._write()
        window, teacher_logits = self._buffer
        i = (self.steps % self.refresh) * self.rows
        own = self.student(window[i:i + self.rows])
        log_q = F.log_softmax(own.flatten(0, -2), -1)
        log_p = F.log_softmax(teacher_logits[i:i + self.rows].flatten(0, -2), -1)
        return F.kl_div(log_q, log_p, reduction="batchmean", log_target=True)

    def __call__(self, student_logits: torch.Tensor, batch) -> torch.Tensor:
        fixed = self.base(student_logits, batch)
        own = self.on_policy_term()
        self.steps += 1
        return (1 - self.share) * fixed + self.share * own

    def __repr__(self) -> str:
        return (f"OnPolicyKD(base={self.base!r}, share={self.share}, rows={self.rows}, refresh={self.refresh}, "
                f"prompt={self.prompt})")
