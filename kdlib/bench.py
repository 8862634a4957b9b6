"""Benchmarks that put kdlib side by side with the plain-PyTorch way, in one run.

Timings on a shared machine are noisy, so every figure is reported next to its baseline from
the same run, as a ratio.  ``python -m kdlib bench`` prints the table and writes JSON.
"""
from __future__ import annotations

import gzip
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import data as kdata
from .models import mlp
from .runtime import is_smoke


def _train_steps(model, opt, batches_iter, max_steps=None) -> tuple[float, int]:
    """Run SGD steps over ``batches_iter``; return (seconds, examples)."""
    model.train()
    seen, steps = 0, 0
    start = time.perf_counter()
    for xb, yb in batches_iter:
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        seen += len(yb)
        steps += 1
        if max_steps is not None and steps >= max_steps:
            break
    return time.perf_counter() - start, seen


def epoch_comparison(batch_size: int = 128, max_steps: int | None = None, repeats: int = 1) -> dict:
    """One MLP epoch on Fashion-MNIST's 60k training images, four ways, in one run:

    * ``kdlib``: :func:`kdlib.data.batches` over tensors already in memory;
    * ``tutorial``: ``DataLoader`` over torchvision's ``FashionMNIST`` with ``ToTensor``;
    * ``tensordataset``: ``DataLoader(TensorDataset(X, y))``;
    * ``floor``: the same number of steps on one fixed batch — the compute floor, no data work.

    Each gets a fresh ``mlp(784, (256,), 10)`` and AdamW; the best of ``repeats`` is kept.
    Returns seconds per epoch and each one's ratio to kdlib.
    """
    from torch.utils.data import DataLoader, TensorDataset
    from torchvision import datasets, transforms

    arrays, _ = kdata._fashion_arrays()
    X = torch.from_numpy(arrays["train_images"].astype(np.float32) / 255.0)[:, None]
    y = torch.from_numpy(arrays["train_labels"].astype(np.int64))
    steps = max_steps or -(-len(y) // batch_size)

    def fresh():
        torch.manual_seed(0)
        model = mlp(784, (256,), 10)
        return model, torch.optim.AdamW(model.parameters(), lr=1e-3)

    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "FashionMNIST" / "raw"
        raw.mkdir(parents=True)
        folder, _ = kdata.locate_fashion_mnist()
        for spec in kdata.FASHION_FILES:  # torchvision reads the decompressed files
            (raw / spec.name[:-3]).write_bytes(gzip.decompress((folder / spec.name).read_bytes()))
        tutorial = datasets.FashionMNIST(tmp, train=True, download=False, transform=transforms.ToTensor())
        xb0, yb0 = X[:batch_size], y[:batch_size]
        ways = {
            "kdlib": lambda: kdata.batches(X, y, batch_size=batch_size, generator=torch.Generator().manual_seed(0)),
            "tutorial": lambda: iter(DataLoader(tutorial, batch_size=batch_size, shuffle=True)),
            "tensordataset": lambda: iter(DataLoader(TensorDataset(X, y), batch_size=batch_size, shuffle=True)),
            "floor": lambda: ((xb0, yb0) for _ in range(steps)),
        }
        model, opt = fresh()  # warm-up: first-call allocations and kernel selection
        _train_steps(model, opt, ways["kdlib"](), max_steps=10)
        seconds = {}
        for _ in range(repeats):
            for name, make in ways.items():
                model, opt = fresh()
                took, seen = _train_steps(model, opt, make(), max_steps=steps)
                per_epoch = took * len(y) / seen
                seconds[name] = min(seconds.get(name, float("inf")), per_epoch)
    base = seconds["kdlib"]
    return {
        "batch_size": batch_size, "steps_timed": steps, "threads": torch.get_num_threads(),
        "seconds_per_epoch": {k: round(v, 3) for k, v in seconds.items()},
        "ratio_to_kdlib": {k: round(v / base, 2) for k, v in seconds.items()},
    }


def format_epoch_table(result: dict) -> str:
    labels = {
        "kdlib": "kdlib batches (tensors in memory)",
        "tutorial": "DataLoader(FashionMNIST, ToTensor)",
        "tensordataset": "DataLoader(TensorDataset)",
        "floor": "compute floor (one fixed batch)",
    }
    lines = [f"One MLP epoch on 60k Fashion-MNIST images, batch {result['batch_size']}, "
             f"{result['threads']} threads",
             f"{'way':38s} {'s/epoch':>9s} {'× kdlib':>8s}"]
    for key, label in labels.items():
        lines.append(f"{label:38s} {result['seconds_per_epoch'][key]:9.2f} {result['ratio_to_kdlib'][key]:8.2f}")
    return "\n".join(lines)


def run(out: Path | None = None, repeats: int = 2) -> dict:
    """Run every benchmark (smoke size: a few steps each), print a table, write JSON to ``out``."""
    smoke = is_smoke()
    result = {"epoch": epoch_comparison(max_steps=20 if smoke else None, repeats=1 if smoke else repeats),
              "smoke": smoke}
    print(format_epoch_table(result["epoch"]))
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2))
        print(f"\nwrote {out}")
    return result
