"""A small decoder-only transformer for characters, and sampling from it (lesson 8).

The same architecture as GPT-2 (Radford et al. 2019) and nanoGPT, at laptop scale: token and
learned position embeddings, ``layers`` pre-norm blocks of causal self-attention and a 4×-wide
GELU MLP, a final LayerNorm and a linear head tied to the token embedding (Press & Wolf 2017).
Attention is ``torch.nn.functional.scaled_dot_product_attention`` with ``is_causal=True``, so
position t only sees positions ≤ t.  A model maps ``(batch, T)`` token ids to ``(batch, T, vocab)``
next-token logits, which is exactly what :func:`kdlib.fit` trains with sequence labels.

Sizes used in lesson 8: the teacher ``char_transformer(84, 64, layers=4, heads=4, width=128)``
(~0.8 M parameters) and students of width 32 × 3 layers (~40 k) and 48 × 4 layers (~115 k).
"""
from __future__ import annotations

import math
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import nn

from .runtime import writing_threads
from .validate import finite_number, whole_number


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention; with a ``cache`` it appends this call's keys and values."""

    def __init__(self, width: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, cache: dict | None = None) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        causal = True
        if cache is not None:
            if "k" in cache:
                if T != 1:
                    raise ValueError("A cached forward pass takes one new token at a time after the prompt.")
                k, v = torch.cat([cache["k"], k], 2), torch.cat([cache["v"], v], 2)
                causal = False  # one query that may see every cached position
            cache["k"], cache["v"] = k, v
        y = F.scaled_dot_product_attention(q, k, v, is_causal=causal,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(ln(x))`` then ``x + mlp(ln(x))``."""

    def __init__(self, width: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attn = CausalSelfAttention(width, heads, dropout)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width),
                                 nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, cache: dict | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), cache)
        return x + self.mlp(self.ln2(x))


class CharTransformer(nn.Module):
    """A GPT-style character model: ``(batch, T)`` ids → ``(batch, T, vocab_size)`` logits.

    ``forward(idx, caches, start)`` with a list of per-layer dicts runs incrementally (a key/value
    cache): the prompt once, then one token per call at position ``start``.
    """

    def __init__(self, vocab_size: int, context: int, layers: int, heads: int, width: int, dropout: float = 0.0):
        super().__init__()
        self.vocab_size, self.context = vocab_size, context
        self.tok = nn.Embedding(vocab_size, width)
        self.pos = nn.Embedding(context, width)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(width, heads, dropout) for _ in range(layers))
        self.ln = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab_size, bias=False)
        self.head.weight = self.tok.weight  # weight tying
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2: scale residual projections by 1/sqrt(2L)
            if name.endswith(("proj.weight", "mlp.2.weight")):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * layers))

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, 0.0, 0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, idx: torch.Tensor, caches: list[dict] | None = None, start: int = 0) -> torch.Tensor:
        if idx.ndim != 2 or idx.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"A CharTransformer takes (batch, T) integer token ids, got {tuple(idx.shape)} "
                             f"of {idx.dtype}.")
        T = idx.shape[1]
        if start + T > self.context:
            raise ValueError(f"{start + T} positions exceed the model's context of {self.context} characters.")
        pos = torch.arange(start, start + T, device=idx.device)
        x = self.drop(self.tok(idx) + self.pos(pos))
        for i, block in enumerate(self.blocks):
            x = block(x, None if caches is None else caches[i])
        return self.head(self.ln(x))


def char_transformer(vocab_size: int, context: int = 64, *, layers: int = 4, heads: int = 4, width: int = 128,
                     dropout: float = 0.0) -> CharTransformer:
    """A :class:`CharTransformer` sized by its arguments.

    Parameters ≈ ``12 · layers · width²`` (attention 4w², MLP 8w² per block) plus the
    ``(vocab + context) · width`` embeddings; the head shares the token embedding.

    Introduced in lesson 8.
    """
    for name, value in (("vocab_size", vocab_size), ("context", context), ("layers", layers), ("heads", heads),
                        ("width", width)):
        whole_number(value, name)
    if width % heads:
        raise ValueError(f"width ({width}) must be divisible by heads ({heads}).")
    return CharTransformer(int(vocab_size), int(context), int(layers), int(heads), int(width), dropout)


def _pick(logits: torch.Tensor, temperature: float, generator: torch.Generator) -> torch.Tensor:
    """Sample one id per row from ``softmax(logits / T)``; T = 0 takes the argmax."""
    if temperature == 0:
        return logits.argmax(-1)
    scaled = logits.float() / temperature
    if not bool(torch.isfinite(scaled).all()):  # a tiny T overflows z / T: shift by the row's largest logit first
        scaled = (logits.float() - logits.float().amax(-1, keepdim=True)) / temperature
    probs = torch.softmax(scaled, -1)
    return torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(-1).to(logits.device)


@torch.no_grad()
def generate(model: CharTransformer, prompt: torch.Tensor, length: int, *, temperature: float = 1.0,
             seed: int = 0, cache: bool = True) -> torch.Tensor:
    """Continue ``prompt`` (``(batch, P)`` or ``(P,)`` ids) by ``length`` sampled characters (lesson 8).

    Each new character is drawn from ``softmax(z / temperature)`` of the model's last-position
    logits (temperature as in lesson 2: T < 1 sharpens, T > 1 flattens, T = 0 is greedy).  With
    ``cache=True`` keys and values are kept between steps, so a step costs one position instead of
    the whole window; when the window is full, the model restarts from the last ``context // 2``
    characters.  Returns the prompt followed by the new ids, same batch shape as ``prompt``.
    One prompt runs on kdlib's writing thread count (:func:`kdlib.runtime.thread_policy`: one
    thread unless ``KDLIB_WRITING_THREADS`` says otherwise); a batch of prompts on torch's.

    Introduced in lesson 9.
    """
    temperature = finite_number(temperature, "temperature", hint=" Use 0 for greedy (argmax) writing.")
    length = whole_number(length, "length", low=0)
    if not isinstance(prompt, torch.Tensor):
        hint = " (text? encode it first: data.encode(text))" if isinstance(prompt, str) else ""
        raise TypeError(f"generate() takes the prompt as a tensor of character ids, got {type(prompt).__name__}{hint}.")
    if prompt.dtype.is_floating_point or prompt.dtype == torch.bool or prompt.ndim not in (1, 2):
        raise ValueError(f"generate() takes a prompt of integer ids, shape (P,) or (batch, P); got "
                         f"{tuple(prompt.shape)} of {prompt.dtype}.")
    if prompt.numel() and (int(prompt.min()) < 0 or int(prompt.max()) >= model.vocab_size):
        raise ValueError(f"The prompt's ids run from {int(prompt.min())} to {int(prompt.max())}, outside this model's "
                         f"vocabulary 0..{model.vocab_size - 1}: was it encoded with another corpus's characters?")
    single = prompt.ndim == 1
    ids = prompt[None] if single else prompt
    if ids.shape[1] == 0:
        raise ValueError("generate() needs a prompt of at least one character.")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    ids = ids.to(device)
    generator = torch.Generator().manual_seed(seed)
    window, keep = model.context, max(1, model.context // 2)
    out = [ids]
    threads = writing_threads() if ids.shape[0] == 1 else nullcontext()
    try:
        with threads:
            text = ids[:, -window:]
            caches = [{} for _ in model.blocks] if cache else None
            logits = model(text, caches)[:, -1]
            pos = text.shape[1]
            for _ in range(length):
                nxt = _pick(logits, float(temperature), generator)[:, None]
                out.append(nxt)
                if not cache:
                    text = torch.cat([text, nxt], 1)[:, -window:]
                    logits = model(text)[:, -1]
                elif pos < window:
                    logits = model(nxt, caches, start=pos)[:, -1]
                    pos += 1
                else:  # window full: re-read the last `keep` characters into a fresh cache
                    text = torch.cat(out, 1)[:, -keep:]
                    caches = [{} for _ in model.blocks]
                    logits = model(text, caches)[:, -1]
                    pos = text.shape[1]
    finally:
        model.train(was_training)
    result = torch.cat(out, 1)
    return result[0] if single else result
