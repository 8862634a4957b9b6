"""A data set as in-memory tensors (:class:`Dataset`), the one way it is split and normalised, and fast batching.

Every loader (:mod:`kdlib.fashion_mnist`, :mod:`kdlib.bundled`, :mod:`kdlib.text`) hands its
arrays to :func:`from_arrays` (or subclasses :class:`Dataset`), so all data sets come out alike:
validation carved out of the training split by :func:`split_train_val`, never out of the test
split; the smoke size sliced the same way; inputs standardised with the training split's
statistics.  :func:`batches` then slices the tensors already on the device, which is what makes
an epoch on 2 CPU cores fast.  Introduced in lesson 1.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterator

import numpy as np
import torch

from .runtime import is_smoke
from .validate import whole_number

#: Sizes used when ``KDLIB_SMOKE`` is set: (train, validation, test) examples at most.
SMOKE_SIZES = (2048, 512, 1024)


@dataclass
class Dataset:
    """Train / validation / test tensors of one data set, ready on one device.

    ``X_*`` are float32, normalised with the training split's mean and standard deviation
    (``mean``, ``std``); ``y_*`` are int64 class indices.  ``source`` says where the data came from.
    """

    name: str
    X_train: torch.Tensor
    y_train: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    classes: tuple[str, ...]
    source: str
    mean: float = 0.0
    std: float = 1.0
    info: dict = field(default_factory=dict)

    @property
    def train(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.X_train, self.y_train

    @property
    def val(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.X_val, self.y_val

    @property
    def test(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.X_test, self.y_test

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example, e.g. ``(1, 28, 28)``."""
        return tuple(self.X_train.shape[1:])

    @property
    def device(self) -> torch.device:
        return self.X_train.device

    def to(self, device) -> "Dataset":
        """A copy with every tensor on ``device``."""
        tensors = {k: getattr(self, k).to(device) for k in
                   ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test")}
        return replace(self, **tensors)

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}: train {len(self.y_train):,}, val {len(self.y_val):,}, "
                f"test {len(self.y_test):,}, input {self.input_shape}, {self.num_classes} classes, "
                f"on {self.device}, from {self.source})")


def split_train_val(X: np.ndarray, y: np.ndarray, val_size: int, seed: int):
    """``X_train, y_train, X_val, y_val``: a seeded permutation's first ``val_size`` examples validate."""
    if not 0 < val_size < len(y):
        raise ValueError(f"val_size must be between 1 and {len(y) - 1}, got {val_size}.")
    order = np.random.default_rng(seed).permutation(len(y))
    val, train = order[:val_size], order[val_size:]
    return X[train], y[train], X[val], y[val]


def from_arrays(name: str, train, val, test, classes, source: str, *, scale: float,
                smoke: bool | None = None, device=None, info: dict | None = None) -> Dataset:
    """A :class:`Dataset` from ``(X, y)`` numpy pairs of each split, sliced, scaled and standardised.

    smoke: slice each split to :data:`SMOKE_SIZES` (``None`` follows ``KDLIB_SMOKE``) and say so in ``source``.
    Inputs are divided by ``scale`` (to [0, 1]), then ``x' = (x − μ) / σ`` with μ, σ of the training split.
    device: where the tensors go (``None`` keeps them on the CPU; see :func:`kdlib.runtime.device`).
    """
    (X_tr, y_tr), (X_va, y_va), (X_te, y_te) = train, val, test
    smoke = is_smoke() if smoke is None else smoke
    if smoke:
        n_tr, n_va, n_te = SMOKE_SIZES
        X_tr, y_tr, X_va, y_va, X_te, y_te = X_tr[:n_tr], y_tr[:n_tr], X_va[:n_va], y_va[:n_va], X_te[:n_te], y_te[:n_te]
        source += " [smoke size]"
    to_x = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32) / scale)
    to_y = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64))
    X_tr, X_va, X_te = to_x(X_tr), to_x(X_va), to_x(X_te)
    mean, std = float(X_tr.mean()), float(X_tr.std())
    norm = lambda t: ((t - mean) / std).contiguous()
    ds = Dataset(name, norm(X_tr), to_y(y_tr), norm(X_va), to_y(y_va), norm(X_te), to_y(y_te),
                 tuple(classes), source, mean, std, dict(info or {}))
    if device is None:
        return ds
    from .runtime import device as pick

    return ds.to(pick(device))


def batches(*tensors: torch.Tensor, batch_size: int, shuffle: bool = True,
            generator: torch.Generator | None = None, drop_last: bool = False,
            rank: int = 0, world_size: int = 1, skip: int = 0) -> Iterator[tuple[torch.Tensor, ...]]:
    """Yield mini-batches by slicing tensors that are already in memory (and on the device).

    One shuffled index permutation per epoch, then ``t[idx]`` for each tensor: no per-example
    Python, no worker processes, no copies to the device.  All tensors must share their first
    dimension (e.g. ``X, y`` or ``X, y, teacher_logits``).  With ``world_size > 1`` (DDP), every
    rank draws the same permutation and takes every ``world_size``-th batch-sized share of it,
    so all ranks do the same number of steps on disjoint examples.  ``skip`` leaves out the first
    ``skip`` batches of the permutation (a resumed epoch, :mod:`kdlib.resume`): the permutation is
    drawn all the same, so the generator ends where it would have.
    """
    if not tensors:
        raise ValueError("batches() needs at least one tensor.")
    n = len(tensors[0])
    for t in tensors:
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"batches() takes tensors, got {type(t).__name__}.")
        if len(t) != n:
            raise ValueError(f"All tensors must have the same length; got {[len(t) for t in tensors]}.")
    if n == 0:
        raise ValueError("Cannot make batches from an empty dataset (0 examples).")
    batch_size = whole_number(batch_size, "batch_size")
    skip = whole_number(skip, "skip", low=0)
    device = tensors[0].device
    order = torch.randperm(n, generator=generator).to(device) if shuffle else torch.arange(n, device=device)
    if world_size > 1:
        usable = (n // (batch_size * world_size)) * batch_size * world_size
        if usable == 0:
            raise ValueError(f"{n} examples are too few for {world_size} ranks × batch_size {batch_size}.")
        order = order[:usable].view(-1, world_size, batch_size)[:, rank].reshape(-1)
        n = len(order)
    stop = n - n % batch_size if drop_last else n
    for start in range(skip * batch_size, stop, batch_size):
        idx = order[start:start + batch_size]
        yield tuple(t[idx] for t in tensors)
