"""Bits per character on running text: one scorer for every language-model route (lessons 8–9).

A transformer with a context of C characters cannot read a whole play at once, so a stream is
scored window by window.  Cut into **non-overlapping** windows, the first targets of each window
have almost no history (the first has one character), which handicaps the model against an
n-gram that reads the running text.  The **sliding** scorer moves a window of C characters along
the stream by ``stride`` and scores only the targets a window sees first (the first window: all
of them), so every target of the stream is scored exactly once and — after the first window —
with at least ``C − stride + 1`` characters of history (stride = C/2: at least half a context).
This is the strided evaluation of Press et al. (2021, *Shortformer*) and of Hugging Face's
"perplexity of fixed-length models" guide.

Targets are ``tokens[1:]`` (the first character has nothing to be predicted from).  Position j
of a window (0-based) predicts its next character from ``j + 1`` characters: that is its
*history*, reported per target so an n-gram can be scored on **the same targets with the same
history limit** (:func:`ngram_bits`, :meth:`kdlib.ngram.NGramLM.log_prob`'s ``history``).
``stride = context`` gives the non-overlapping windows, for comparison.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .validate import whole_number


@dataclass(frozen=True)
class Layout:
    """Where each window of a scoring pass starts and from which of its positions it is scored."""

    starts: np.ndarray      # first input token of each window
    first: np.ndarray       # the first scored position of each window
    context: int
    stride: int

    @property
    def targets(self) -> int:
        return int((self.context - self.first).sum())

    def history(self) -> np.ndarray:
        """Characters of history of every target ``tokens[1:]``, in stream order (position + 1)."""
        return np.concatenate([np.arange(f, self.context) + 1 for f in self.first])


def layout(n_tokens: int, context: int, stride: int | None = None) -> Layout:
    """The windows that score every target of an ``n_tokens`` stream once: ``stride`` apart, the last flush with the end.

    ``stride`` defaults to ``context // 2``; ``stride = context`` is the non-overlapping layout.
    """
    context = whole_number(context, "context")
    stride = context // 2 if stride is None else whole_number(stride, "stride")
    if stride > context:
        raise ValueError(f"stride ({stride}) may not exceed the context ({context}): targets would be skipped.")
    if n_tokens < context + 1:
        raise ValueError(f"A stream of {n_tokens} characters is too short to score with context {context} "
                         f"(needs at least {context + 1}).")
    last = n_tokens - 1 - context                          # the start of a window that ends with the stream
    starts = np.arange(0, last + 1, stride)
    first = np.full(len(starts), context - stride)
    first[0] = 0
    if starts[-1] != last:                                  # one more window for the targets left at the end
        covered = starts[-1] + context                      # targets 1 … covered are scored
        starts, first = np.append(starts, last), np.append(first, context - (n_tokens - 1 - covered))
    return Layout(starts, first, context, stride)


@dataclass(frozen=True)
class StreamScore:
    """One model's score on one stream: ``bpc`` over ``targets`` characters, and how they were scored."""

    bpc: float
    targets: int
    context: int
    stride: int
    min_history: int
    #: Mean entropy of the model's predictions at the scored targets, in bits (NaN for an n-gram):
    #: ``entropy − bpc`` is its calibration, < 0 when it is more confident than it is right.
    entropy: float = float("nan")

    @property
    def nats(self) -> float:
        return self.bpc * math.log(2)

    def describe(self) -> str:
        kind = "non-overlapping windows" if self.stride == self.context else f"sliding windows, stride {self.stride}"
        return (f"{self.bpc:.3f} bpc on {self.targets:,} characters ({kind} of {self.context}; every target after "
                f"the first window has ≥ {self.min_history} characters of history)")


def _as_stream(tokens) -> torch.Tensor:
    t = torch.as_tensor(tokens)
    if t.ndim != 1 or t.dtype.is_floating_point or t.dtype == torch.bool:
        raise ValueError(f"tokens must be a 1-D stream of integer ids, got shape {tuple(t.shape)} of {t.dtype}.")
    return t.long()


def _scored_windows(model, stream: torch.Tensor, plan: Layout, batch_size: int):
    """Per batch of the plan's windows: log-probabilities ``(B, C, V)``, targets ``(B, C)`` and which are scored."""
    device = next(model.parameters()).device
    stream = stream.to(device)
    offsets = torch.arange(plan.context + 1, device=device)
    for i in range(0, len(plan.starts), batch_size):
        starts = torch.as_tensor(plan.starts[i:i + batch_size], device=device)
        first = torch.as_tensor(plan.first[i:i + batch_size], device=device)
        win = stream[starts[:, None] + offsets]                        # (B, C + 1)
        logp = F.log_softmax(model(win[:, :-1]).float(), -1)
        keep = torch.arange(plan.context, device=device)[None] >= first[:, None]
        yield logp, win[:, 1:], keep


@torch.no_grad()
def model_bits(model, tokens, *, stride: int | None = None, batch_size: int = 128) -> StreamScore:
    """Bits per character of a causal LM (``(B, T)`` ids → ``(B, T, V)`` logits) on a stream, sliding windows.

    ``model.context`` is the window; ``stride`` defaults to half of it (see :func:`layout`).

    Introduced in lesson 8.
    """
    stream = _as_stream(tokens)
    plan = layout(len(stream), model.context, stride)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=device)
    spread = torch.zeros((), dtype=torch.float64, device=device)
    try:
        for logp, targets, keep in _scored_windows(model, stream, plan, batch_size):
            picked = logp.gather(-1, targets[..., None]).squeeze(-1)        # (B, C)
            total -= picked[keep].double().sum()
            spread -= (logp.exp() * logp).sum(-1)[keep].double().sum()
    finally:
        model.train(was_training)
    nats = lambda v: float(v) / plan.targets / math.log(2)
    return StreamScore(nats(total), plan.targets, plan.context, plan.stride, int(plan.context - plan.stride + 1),
                       nats(spread))


@torch.no_grad()
def position_probs(model, tokens, *, stride: int | None = None, batch_size: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """Every scored target's next-character distribution, as :func:`model_bits` scores them: ``(probs, targets)``.

    ``probs`` is ``(targets, V)`` float32 and ``targets`` the character ids, in stream order (the
    stream's characters 1, 2, … each once), on the CPU — what lesson 10 compares position by position
    (where the teacher is confidently wrong, and whether a student follows it there).
    ``-probs[i, targets[i]].log2().mean()`` is :func:`model_bits`' bpc.

    Introduced in lesson 10.
    """
    stream = _as_stream(tokens)
    plan = layout(len(stream), model.context, stride)
    was_training = model.training
    model.eval()
    probs, targets = [], []
    try:
        for logp, target, keep in _scored_windows(model, stream, plan, batch_size):
            probs.append(logp[keep].exp().cpu())
            targets.append(target[keep].cpu())
    finally:
        model.train(was_training)
    return torch.cat(probs), torch.cat(targets)


def ngram_bits(ngram, tokens, *, context: int, stride: int | None = None) -> StreamScore:
    """An n-gram's bits per character on exactly the targets :func:`model_bits` scores, with the same history limit.

    Each target may use at most the characters a window of ``context`` scored with ``stride``
    gives the transformer (and never more than ``order − 1``): with stride = context the n-gram's
    history restarts at every window, as the transformer's does.

    Introduced in lesson 8.
    """
    stream = _as_stream(tokens)
    plan = layout(len(stream), context, stride)
    logp = ngram.log_prob(stream.cpu().numpy(), history=np.concatenate([[0], plan.history()]))[1:]
    return StreamScore(float(-logp.mean() / math.log(2)), plan.targets, plan.context, plan.stride,
                       int(plan.context - plan.stride + 1))
