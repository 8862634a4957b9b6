"""A smoothed character n-gram language model built from counts in seconds (lesson 9).

The "task-specific route with no giant" of lesson 9: no teacher, no gradient, no GPU — count every
k-gram of the training stream (k = 1 … order) and smooth the counts so that no character is ever
impossible.  Two classic smoothings, both in the *interpolated* form of Chen & Goodman (1998),
*An Empirical Study of Smoothing Techniques for Language Modeling*, TR-10-98, Harvard:

- ``"kneser_ney"`` — Kneser & Ney (1995), *Improved backing-off for m-gram language modeling*,
  ICASSP: absolute discounting, with *continuation counts* for the lower orders;
- ``"witten_bell"`` — Witten & Bell (1991), *The zero-frequency problem*, IEEE Trans. Inf. Theory.

Every context of k − 1 tokens (and every k-gram) is one int64 key, ``Σ_j t_j · V^(k−1−j)`` in base
V = vocab_size; counts are ``np.unique`` over the keys of the whole stream and look-ups are
``np.searchsorted``, so there is no Python loop over tokens.
"""
from __future__ import annotations

import math
import time

import numpy as np

from .validate import finite_number, whole_number

SMOOTHINGS = ("kneser_ney", "witten_bell")


def _as_ids(tokens, vocab_size: int, what: str = "tokens", allow_empty: bool = False) -> np.ndarray:
    """A 1-D int64 numpy copy of ``tokens`` (tensor, array or list), checked to lie in [0, V)."""
    arr = np.asarray(tokens.detach().cpu().numpy() if hasattr(tokens, "detach") else tokens)
    if arr.ndim != 1:
        raise ValueError(f"{what} must be a 1-D stream of token ids, got shape {arr.shape}.")
    if arr.size == 0 and not allow_empty:
        raise ValueError(f"{what} is empty: give at least one token id.")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{what} must hold integer token ids, got dtype {arr.dtype}.")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= vocab_size):
        raise ValueError(f"{what} must be ids in [0, {vocab_size}), found {arr.min()} … {arr.max()}.")
    return arr


class NGramLM:
    """Interpolated n-gram model over token ids: ``NGramLM(order=5, smoothing="kneser_ney")``.

    Notation for one level k (k-grams ``h w``: a context h of k − 1 tokens, then w; V = vocab_size):
    ``c(h w)`` the count used at this level, ``c(h) = Σ_w c(h w)``, ``N1+(h •)`` the number of
    distinct w with ``c(h w) > 0``, and ``P(w | h')`` the level below (h' = h without its first
    token; below k = 1 is the uniform ``1 / V``).  If h never occurs, ``P(w | h) = P(w | h')``.

    **Kneser–Ney** (interpolated, as in Chen & Goodman 1998)::

        P(w | h) = max(c(h w) − D_k, 0) / c(h)  +  D_k · N1+(h •) / c(h) · P(w | h')
        D_k      = n1 / (n1 + 2 n2)      (n_r: number of k-grams whose c equals r; 0.5 if n1 = 0)

    At the top level c is the raw count; below it, c is the *continuation count*
    ``N1+(• h w)``: how many distinct tokens precede ``h w`` (the start of the stream counts as one).

    **Witten–Bell** (interpolated; raw counts at every level)::

        P(w | h) = (c(h w) + N1+(h •) · P(w | h')) / (c(h) + N1+(h •))

    Introduced in lesson 8.
    """

    def __init__(self, order: int = 5, smoothing: str = "kneser_ney"):
        order = whole_number(order, "order (1 = unigram, 2 = bigram, …)")
        if smoothing not in SMOOTHINGS:
            raise ValueError(f"smoothing must be one of {SMOOTHINGS}, got {smoothing!r}.")
        self.order, self.smoothing = int(order), smoothing
        self.vocab_size, self.levels, self.fit_seconds = None, None, None

    def fit(self, tokens, vocab_size: int) -> "NGramLM":
        """Count all k-grams (k = 1 … order) of a training stream of ids in [0, vocab_size); returns self."""
        V, n = whole_number(vocab_size, "vocab_size"), self.order
        if V ** n > np.iinfo(np.int64).max:
            raise ValueError(f"vocab_size**order = {V}**{n} does not fit in an int64 key; "
                             f"use order ≤ {int(math.log(np.iinfo(np.int64).max) / math.log(V))} for this vocabulary.")
        t0 = time.perf_counter()
        t = _as_ids(tokens, V)
        self.vocab_size, self.levels = V, []
        window = t.copy()                             # window[j]: key of the k-gram t[j : j + k]
        for k in range(1, min(n, len(t)) + 1):
            if k > 1:
                window = window[1:] + t[:len(t) - k + 1] * V ** (k - 1)
            uniq, counts = np.unique(window, return_counts=True)
            self.levels.append([uniq, counts])
            if self.smoothing == "kneser_ney" and k > 1:  # continuation counts N1+(• h w) for level k − 1
                below, first = self.levels[k - 2], t[:k - 1] @ V ** np.arange(k - 2, -1, -1)
                suffixes = np.append(uniq % V ** (k - 1), first)  # the stream's start is one more "•"
                below[1] = np.bincount(np.searchsorted(below[0], suffixes), minlength=len(below[0]))
        for level in self.levels:
            uniq, counts = level
            ctx, first = np.unique(uniq // V, return_index=True)
            n1, n2 = np.count_nonzero(counts == 1), np.count_nonzero(counts == 2)
            D = n1 / (n1 + 2 * n2) if n1 else 0.5
            # keys and c of the k-grams; context keys h with c(h) and N1+(h •); the discount D_k
            level[:] = [uniq, counts, ctx, np.add.reduceat(counts, first), np.diff(np.append(first, len(uniq))), D]
        self.fit_seconds = time.perf_counter() - t0
        return self

    def _update(self, k: int, p: np.ndarray, ctx: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Lift ``p = P(w | h')`` to ``P(w | h)`` at level k (context keys ``ctx``; −1 = not available)."""
        if k > len(self.levels):                       # stream shorter than order: no such level
            return p
        keys, counts, ctxs, totals, types, D = self.levels[k - 1]
        j = np.minimum(np.searchsorted(ctxs, ctx), len(ctxs) - 1)
        seen = (ctx >= 0) & (ctxs[j] == ctx)
        g = ctx * self.vocab_size + w
        i = np.minimum(np.searchsorted(keys, g), len(keys) - 1)
        c = np.where(seen & (keys[i] == g), counts[i], 0)
        return np.where(seen, self._smoothed(c, totals[j], types[j], D, p), p)

    def _smoothed(self, c, total, n_types, D, p):
        """The level's formula (class docstring): counts ``c`` of ``h w``, ``c(h)``, ``N1+(h •)``, ``D_k``, ``P(w | h')``."""
        if self.smoothing == "kneser_ney":
            return (np.maximum(c - D, 0) + D * n_types * p) / total
        return (c + n_types * p) / (total + n_types)

    @property
    def num_ngrams(self) -> int:
        """Distinct k-grams stored over every level k = 1 … order (the model's "parameters")."""
        self._check_fitted()
        return sum(len(level[0]) for level in self.levels)

    @property
    def num_contexts(self) -> int:
        """Distinct contexts of ``order − 1`` tokens seen in training."""
        self._check_fitted()
        return len(self.levels[-1][2])

    def _check_fitted(self):
        if self.levels is None:
            raise ValueError("This NGramLM is not fitted yet: call .fit(tokens, vocab_size) first.")

    def log_prob(self, tokens, history=None) -> np.ndarray:
        """Natural-log ``log P(t_i | t_{i−order+1} … t_{i−1})`` for every token of a stream (float64).

        The first order − 1 tokens have a shorter history and use the context available: t_0 gets the
        empty context (level 1), t_1 the context t_0 (level 2), and so on.  ``history`` (an int, or
        one int per token) caps how many preceding tokens each t_i may use — what a windowed
        transformer sees (:func:`kdlib.bpc.ngram_bits`).  Unseen contexts and unseen characters get
        the interpolated mass, so the result is always finite.
        """
        self._check_fitted()
        V, t = self.vocab_size, _as_ids(tokens, self.vocab_size)
        if history is not None:
            history = np.broadcast_to(np.asarray(history), t.shape)
            if not np.issubdtype(history.dtype, np.integer) or (history < 0).any():
                raise ValueError("history must be a non-negative integer, or one per token.")
        p, ctx = np.full(len(t), 1.0 / V), np.zeros(len(t), dtype=np.int64)
        for k in range(1, self.order + 1):             # ctx[i]: key of the k − 1 tokens before t_i
            if k > 1:
                m = max(len(t) - k + 1, 0)
                ctx = np.concatenate([np.full(len(t) - m, -1), ctx[k - 1:] + t[:m] * V ** (k - 2)])
            usable = ctx if history is None else np.where(history >= k - 1, ctx, -1)
            p = self._update(k, p, usable, t)
        return np.log(p)

    def window_log_probs(self, X, chunk: int = 1024) -> np.ndarray:
        """``log P(w | history)`` for **every** character w at every position of windows ``X`` (N, C): (N, C, V) float32.

        Position t of a window predicts what follows ``X[:, t]`` from ``X[:, :t + 1]`` — the history a
        transformer reading that window has, capped at order − 1 — so these are an n-gram's full
        next-character distributions laid out like a transformer's logits: a teacher whose soft
        labels cost seconds (lesson 10 distils from it).  Each level looks up every position's
        context once and scatters the counts of the characters seen after it (they are one run of
        the sorted keys) into a dense row; ``chunk`` windows at a time.
        """
        self._check_fitted()
        V = self.vocab_size
        X = np.asarray(X.detach().cpu().numpy() if hasattr(X, "detach") else X)
        if X.ndim != 2:
            raise ValueError(f"X must be windows of token ids, shape (N, context), got shape {X.shape}.")
        out = np.empty((*X.shape, V), dtype=np.float32)
        for i in range(0, len(X), chunk):
            x = _as_ids(X[i:i + chunk].reshape(-1), V, "X").reshape(-1, X.shape[1])
            n, C = x.shape
            p, ctx = np.full((n * C, V), 1.0 / V), np.zeros((n, C), dtype=np.int64)
            for k in range(1, min(self.order, len(self.levels)) + 1):  # ctx[:, t]: key of the k − 1 ids ending at X[:, t]
                if k == 2:
                    ctx = x.copy()
                elif k > 2:
                    longer = np.full((n, C), -1, dtype=np.int64)
                    longer[:, k - 2:] = np.where(ctx[:, k - 2:] >= 0, ctx[:, k - 2:] + x[:, :C - k + 2] * V ** (k - 2), -1)
                    ctx = longer
                p = self._lift_rows(k, p, ctx.reshape(-1))
            out[i:i + n] = np.log(p).reshape(n, C, V)
        return out

    def _lift_rows(self, k: int, p: np.ndarray, ctx: np.ndarray) -> np.ndarray:
        """:meth:`_update` for whole rows: ``p`` (M, V) = P(· | h') lifted to P(· | h) for each of M contexts ``ctx``."""
        V = self.vocab_size
        keys, counts, ctxs, totals, types, D = self.levels[k - 1]
        j = np.minimum(np.searchsorted(ctxs, ctx), len(ctxs) - 1)
        seen = (ctx >= 0) & (ctxs[j] == ctx)
        lo, hi = np.searchsorted(keys, ctx * V), np.searchsorted(keys, ctx * V + V)
        runs = np.where(seen, hi - lo, 0)
        rows = np.repeat(np.arange(len(ctx)), runs)
        idx = np.repeat(lo, runs) + np.arange(runs.sum()) - np.repeat(np.cumsum(runs) - runs, runs)
        c = np.zeros_like(p)
        c[rows, keys[idx] % V] = counts[idx]
        return np.where(seen[:, None], self._smoothed(c, totals[j][:, None], types[j][:, None], D, p), p)

    def bits_per_char(self, tokens) -> float:
        """Mean ``−log2 P(t_i | context)`` over a stream: the cross-entropy in bits per character."""
        return float(-self.log_prob(tokens).mean() / math.log(2))

    def next_probs(self, context_tokens=()) -> np.ndarray:
        """``P(w | context)`` for every w in the vocabulary (float64, sums to 1); uses the last order − 1 ids."""
        self._check_fitted()
        V = self.vocab_size
        h = _as_ids(context_tokens, V, "context_tokens", allow_empty=True)
        h = h[max(len(h) - self.order + 1, 0):]
        w, p = np.arange(V), np.full(V, 1.0 / V)
        for k in range(1, self.order + 1):            # key of the last k − 1 ids, −1 if there are fewer
            key = int(h[len(h) - k + 1:] @ V ** np.arange(k - 2, -1, -1)) if k - 1 <= len(h) else -1
            p = self._update(k, p, np.full(V, key), w)
        return p

    def generate(self, prompt_tokens=(), n: int = 100, temperature: float = 1.0, seed: int = 0) -> list[int]:
        """Sample n ids after a prompt from ``p^(1/T) / Σ p^(1/T)`` (T = 0: argmax; same seed, same text)."""
        self._check_fitted()
        temperature = finite_number(temperature, "temperature (1 = the model, 0 = argmax)")
        n = whole_number(n, "n (the number of ids to generate)", low=0)
        history = list(_as_ids(prompt_tokens, self.vocab_size, "prompt_tokens", allow_empty=True))
        rng, out = np.random.default_rng(seed), []
        for _ in range(n):
            log_p = np.log(self.next_probs(history[max(len(history) - self.order + 1, 0):]))
            if temperature == 0:
                out.append(int(log_p.argmax()))
            else:
                q = np.exp((log_p - log_p.max()) / temperature)   # p^(1/T), scaled so the largest is 1
                out.append(int(rng.choice(self.vocab_size, p=q / q.sum())))
            history.append(out[-1])
        return out

    def __repr__(self) -> str:
        head = f"NGramLM(order={self.order}, smoothing={self.smoothing!r}"
        if self.levels is None:
            return head + ", not fitted)"
        return (f"{head}, vocab_size={self.vocab_size}, {len(self.levels[-1][2]):,} distinct contexts of "
                f"{len(self.levels) - 1} tokens, fit in {self.fit_seconds:.2f} s)")
