"""A teacher's next-character distribution kept in a few numbers per position: three sparse caches (lesson 8).

A language-model teacher's full distribution over the vocabulary at every position of a transfer
set is too big to keep at scale, so distillation pipelines keep a slice of it.  Three ways, each
a :class:`~kdlib.distill.TeacherSignal` with its one loss (forward KL, teacher at T = 1):

* **renormalised top-k** (:class:`~kdlib.distill.SparseLogits`, :func:`~kdlib.distill.topk_kd_terms`):
  the k largest logits and their ids, renormalised over those k.  The mass outside them is
  dropped, so the target is *sharper* than the teacher: a student trained on it long enough
  becomes overconfident (its entropy falls below its cross-entropy);
* **top-k plus a bucket** (:class:`BucketLogits`, :func:`bucket_kd_terms`): the same k logits and
  the log-normaliser ``log Z`` of all of them, so the k probabilities are the teacher's own and
  the rest of its mass is one more category, matched by the student's mass outside the k ids —
  a KL over k + 1 outcomes that never claims the tail is empty;
* **sampled-k** (:class:`SampledLogits`, :func:`sampled_kd_terms`): k characters drawn (with
  replacement) from the teacher's distribution; their histogram ĉ is an unbiased estimate of it
  (E[ĉ] = p), so the cross-entropy on it is an unbiased estimate of the dense one and its gradient
  is the dense gradient plus zero-mean noise.  Gemma 3's report describes sampling 256 logits per
  token, weighted by the teacher's probabilities, in this spirit (Gemma Team 2025, *Gemma 3 Technical Report*).

Bytes per position (:func:`bytes_per_position`, vocabularies of ≤ 256 characters: uint8 ids):
dense float16 ``2V``; top-k ``3k`` (float16 value + uint8 id; ``2V`` when k = V, the ids being
implied); bucket ``3k + 4`` (a float32 log Z); sampled ``k`` (one uint8 id per draw).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .distill import TeacherSignal, as_rows, hard_term
from .validate import finite_number, whole_number

#: The cache kinds, by the name :class:`kdlib.experiments.LMStudent` uses.
KINDS = ("topk", "bucket", "sampled")


def bytes_per_position(kind: str, k: int, vocab: int) -> int:
    """Storage of one position's teacher signal: ``"dense"`` (float16), ``"topk"``, ``"bucket"`` or ``"sampled"``.

    Introduced in lesson 8.
    """
    k, vocab = whole_number(k, "k"), whole_number(vocab, "vocab")
    id_bytes = 1 if vocab <= 256 else 4
    if kind == "dense":
        return 2 * vocab
    if kind == "topk":
        return 2 * vocab if k >= vocab else (2 + id_bytes) * k
    if kind == "bucket":
        return (2 + id_bytes) * k + 4
    if kind == "sampled":
        return id_bytes * k
    raise ValueError(f"Unknown cache kind {kind!r}; use 'dense' or one of {', '.join(KINDS)}.")


def log_normaliser(logits: torch.Tensor) -> torch.Tensor:
    """``log Z = logsumexp(z)`` over the last dimension, float32 (computed from the values as stored)."""
    return torch.logsumexp(logits.float(), -1)


@torch.no_grad()
def sample_ids(logits: torch.Tensor, k: int, seed: int = 0, rows_per_chunk: int = 65_536) -> torch.Tensor:
    """``k`` ids per position drawn with replacement from ``softmax(logits)`` (shape ``(..., k)``, uint8 for ≤ 256 classes).

    Seeded (one CPU generator), chunk by chunk, so the dense probabilities never all exist at once.
    """
    k = whole_number(k, "k")
    V = logits.shape[-1]
    rows = logits.reshape(-1, V)
    g = torch.Generator().manual_seed(seed)
    dtype = torch.uint8 if V <= 256 else torch.int32
    out = [torch.multinomial(torch.softmax(rows[i:i + rows_per_chunk].float().cpu(), -1), k, replacement=True,
                             generator=g).to(dtype) for i in range(0, len(rows), rows_per_chunk)]
    return torch.cat(out).reshape(*logits.shape[:-1], k).to(logits.device)


def _check_t1(T: float, kind: str) -> None:
    if T != 1.0:
        raise ValueError(f"A {kind} cache holds the teacher's distribution at T = 1 (its own probabilities); "
                         f"distil from it with T = 1, got T = {T}.")


def bucket_kd_terms(student_logits: torch.Tensor, top_values: torch.Tensor, top_ids: torch.Tensor,
                    log_z: torch.Tensor, labels: torch.Tensor, alpha: float = 1.0) -> dict[str, torch.Tensor]:
    """Forward KD against the teacher's top-k probabilities plus one bucket for the rest of its mass::

        p_i    = exp(v_i − log Z)   for the k kept ids i ∈ K;       p_rest = 1 − Σ_{i∈K} p_i
        q_rest = Σ_{j∉K} q_j        (the student's mass outside K)
        soft   = Σ_{i∈K} p_i (log p_i − log q_i) + p_rest (log p_rest − log q_rest)   (mean over positions)
        loss   = alpha · soft + (1 − alpha) · CE(labels, z_s)

    A KL over k + 1 outcomes, at T = 1.  With k = vocabulary the bucket is empty and this is the
    dense forward KL.  Shapes: logits ``(..., V)``, values and ids ``(..., k)``, ``log_z`` ``(...)``.
    """
    alpha = finite_number(alpha, "alpha (the weight of the soft term)", high=1.0)
    if top_values.shape != top_ids.shape or top_values.shape[:-1] != student_logits.shape[:-1] \
            or log_z.shape != student_logits.shape[:-1]:
        raise ValueError(f"top_values {tuple(top_values.shape)} and top_ids {tuple(top_ids.shape)} must be (..., k) and "
                         f"log_z {tuple(log_z.shape)} (...), with ... = {tuple(student_logits.shape[:-1])}.")
    student, labels = as_rows(student_logits, labels)
    k, V = top_values.shape[-1], student.shape[-1]
    ids = top_ids.reshape(-1, k).long()
    log_p = top_values.reshape(-1, k).float() - log_z.reshape(-1, 1).float()
    log_q_all = F.log_softmax(student, -1)
    log_q = log_q_all.gather(-1, ids)
    soft = (log_p.exp() * (log_p - log_q)).sum(-1)
    if k < V:
        p_rest = (1 - log_p.exp().sum(-1)).clamp_min(1e-8)
        log_q_rest = torch.logsumexp(log_q_all.scatter(-1, ids, float("-inf")), -1)
        soft = soft + p_rest * (p_rest.log() - log_q_rest)
    soft = soft.mean()
    hard = hard_term(student, labels)
    return {"loss": alpha * soft + (1 - alpha) * hard, "soft": soft, "hard": hard}


def sampled_kd_terms(student_logits: torch.Tensor, sampled_ids: torch.Tensor, labels: torch.Tensor,
                     alpha: float = 1.0) -> dict[str, torch.Tensor]:
    """Forward KD against the histogram of k draws from the teacher (an unbiased estimate of its distribution)::

        ĉ_w  = (number of draws equal to w) / k
        soft = Σ_w ĉ_w (log ĉ_w − log q_w)          (= KL(ĉ ‖ q), mean over positions)
        loss = alpha · soft + (1 − alpha) · CE(labels, z_s)

    ``E[ĉ] = p``, so ``Σ ĉ_w · (−log q_w)`` is an unbiased estimate of the dense cross-entropy and its
    gradient of the dense gradient; the ``ĉ log ĉ`` part is a constant that makes the term a KL (≥ 0).
    Shapes: logits ``(..., V)``, ids ``(..., k)``.

    Introduced in lesson 8.
    """
    alpha = finite_number(alpha, "alpha (the weight of the soft term)", high=1.0)
    if sampled_ids.shape[:-1] != student_logits.shape[:-1]:
        raise ValueError(f"sampled_ids {tuple(sampled_ids.shape)} must be (..., k) with ... = "
                         f"{tuple(student_logits.shape[:-1])}.")
    if sampled_ids.dtype.is_floating_point:
        raise ValueError("sampled_ids must be integer character ids (draws from the teacher), not logits.")
    student, labels = as_rows(student_logits, labels)
    k = sampled_ids.shape[-1]
    ids = sampled_ids.reshape(-1, k).long()
    c = torch.zeros_like(student, dtype=torch.float32).scatter_add_(-1, ids, torch.full(ids.shape, 1.0 / k,
                                                                                      device=ids.device))
    log_q = F.log_softmax(student.float(), -1)
    soft = (torch.xlogy(c, c) - c * log_q).sum(-1).mean()
    hard = hard_term(student, labels)
    return {"loss": alpha * soft + (1 - alpha) * hard, "soft": soft, "hard": hard}


class _TeacherAtT1(TeacherSignal):
    """A cache of the teacher's own distribution (T = 1), forward KL only: what both kinds below share."""

    forward_only = True
    kind = ""
    why_forward = ""

    def terms(self, student_logits, batch, T, alpha, direction="forward"):
        self._check(batch)
        _check_t1(T, self.kind)
        if direction != "forward":
            raise ValueError(f"A {self.kind} cache supports the forward KL only: {self.why_forward}")
        return self.loss(student_logits, batch, alpha)


class BucketLogits(_TeacherAtT1):
    """Top-k logits, their ids and the teacher's log Z: ``fit(student, (X, y, values, ids, log_z), ...)``.

    The loss is :func:`bucket_kd_terms` (forward KL at T = 1, the rest of the mass as one bucket).

    Introduced in lesson 8.
    """

    reads = ("X", "y", "values", "ids", "log_z")
    kind = "top-k-plus-bucket"
    why_forward = ("the teacher's mass outside its top k is one number, not a distribution, so "
                   "KL(student‖teacher) is undefined.")

    def loss(self, student_logits, batch, alpha):
        return bucket_kd_terms(student_logits, batch[2], batch[3], batch[4], batch[1], alpha)


class SampledLogits(_TeacherAtT1):
    """k draws from the teacher's distribution per position: ``fit(student, (X, y, sampled_ids), ...)``.

    The loss is :func:`sampled_kd_terms` (forward KL to the draws' histogram, T = 1).

    Introduced in lesson 8.
    """

    reads = ("X", "y", "sampled_ids")
    kind = "sampled"
    why_forward = "the draws estimate the teacher's distribution, not its log-probabilities."

    def loss(self, student_logits, batch, alpha):
        return sampled_kd_terms(student_logits, batch[2], batch[1], alpha)
