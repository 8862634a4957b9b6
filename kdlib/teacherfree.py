"""Regularisers and semi-supervision that need no giant: the teacher-free routes of lesson 5.

* label smoothing (Szegedy et al. 2016) — soft targets with no teacher at all;
* self-distillation, born-again style (Furlanello et al. 2018) — the model's own earlier
  generation is the teacher;
* self-training with pseudo-labels (Lee 2013; Xie et al. 2020) — the small model labels the
  unlabelled data itself, where lesson 3 used a giant's soft labels.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .distill import UNLABELLED, KDCriterion, cache_logits
from .train import fit, predict
from .validate import finite_number, whole_number


def label_smoothing(epsilon: float = 0.1):
    """Cross-entropy against ``(1 − ε)·one_hot + ε / K`` (Szegedy et al. 2016), as a ``fit`` criterion.

    Labels one per example ``(N,)``, or one per position ``(N, T)`` for a language model (lesson 10),
    as the default criterion takes them.

    Introduced in lesson 5.
    """
    epsilon = finite_number(epsilon, "epsilon", below=1.0)

    def criterion(logits, batch):
        return F.cross_entropy(logits.flatten(0, -2), batch[1].flatten(), label_smoothing=epsilon)

    return criterion


def born_again(build: Callable[[], nn.Module], train: tuple, generations: int = 2, *, T: float = 1.0,
               alpha: float = 0.5, first: nn.Module | None = None, seed: int | None = None,
               **fit_kwargs) -> list[nn.Module]:
    """Self-distillation: generation k+1, same architecture, is distilled from generation k.

    Generation 1 is trained on labels (or passed in as ``first``); each later one learns from the
    previous generation's cached logits with the KD loss (Furlanello et al. 2018).  Returns all
    generations; the teacher's cost is the small model's own, counted in the ledger of lesson 5.
    With ``seed``, every generation is trained like :func:`kdlib.train.train_fresh` (same initial
    weights and batch order for the same seed).

    Introduced in lesson 5.
    """
    generations = whole_number(generations, "generations")
    X, y = train[0], train[1]
    if seed is not None:
        fit_kwargs["seed"] = seed

    def fresh():
        if seed is not None:
            torch.manual_seed(seed)
        return build()

    models = [first] if first is not None else []
    if first is None:
        model = fresh()
        fit(model, (X, y), **fit_kwargs)
        models.append(model)
    while len(models) < generations:
        logits = cache_logits(models[-1], X)
        student = fresh()
        fit(student, (X, y, logits), criterion=KDCriterion(T, alpha), **fit_kwargs)
        models.append(student)
    return models


def pseudo_labels(model: nn.Module, X: torch.Tensor, threshold: float = 0.9) -> tuple[torch.Tensor, float]:
    """The model's own predictions as labels where its confidence ≥ ``threshold``, else ``UNLABELLED``.

    Returns (labels, fraction kept).  Lesson 5's self-training.
    """
    threshold = finite_number(threshold, "threshold", high=1.0)
    probs = torch.softmax(predict(model, X), dim=-1)
    confidence, labels = probs.max(-1)
    labels[confidence < threshold] = UNLABELLED
    return labels, float((confidence >= threshold).float().mean())


def self_train(build: Callable[[], nn.Module], labelled: tuple, unlabelled_X: torch.Tensor, *, rounds: int = 1,
               threshold: float = 0.9, labelled_fit: dict | None = None, round_fit: dict,
               first: nn.Module | None = None) -> tuple[nn.Module, list[float]]:
    """Self-training: fit on the labelled set, pseudo-label the rest, refit on both; repeat.

    The first model is trained on the labelled examples with ``fit(**labelled_fit)`` (or passed in,
    already trained, as ``first``).  Each round
    then trains a fresh model, with ``fit(**round_fit)``, on the labelled examples plus every
    unlabelled example the previous model labels with confidence ≥ ``threshold``.  Returns the
    final model and the fraction of unlabelled examples kept in each round.

    Introduced in lesson 5.
    """
    rounds = whole_number(rounds, "rounds")
    X_l, y_l = labelled
    if first is None:
        if labelled_fit is None:
            raise ValueError("self_train needs labelled_fit=dict(epochs=...) or an already trained first=model.")
        model = build()
        fit(model, (X_l, y_l), **labelled_fit)
    else:
        model = first
    kept = []
    for _ in range(rounds):
        labels, fraction = pseudo_labels(model, unlabelled_X, threshold)
        kept.append(fraction)
        mask = labels != UNLABELLED
        model = build()
        fit(model, (torch.cat([X_l, unlabelled_X[mask]]), torch.cat([y_l, labels[mask]])), **round_fit)
    return model, kept
