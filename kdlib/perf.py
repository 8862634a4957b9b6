"""How fast this machine computes: the measured matmul peak and achieved GFLOP/s (lessons 0 and 1).

A model's FLOPs per example (:func:`kdlib.models.flops_per_example`) divided by wall time gives
the achieved GFLOP/s; set against the matmul peak it says how well training uses the hardware.
"""
from __future__ import annotations

import time

import torch

from .runtime import device as pick_device
from .runtime import synchronize
from .validate import finite_number, whole_number


def matmul_gflops(n: int = 1024, seconds: float = 1.0, device=None, dtype=torch.float32) -> float:
    """Measured GFLOP/s of an ``n×n @ n×n`` float32 matmul, repeated for about ``seconds``.

    One product costs ``2·n³`` FLOPs (n³ multiply-adds).  The best of several timed rounds is
    kept, which estimates the machine's peak for dense work, the yardstick for later lessons.

    Introduced in lesson 0.
    """
    n, seconds = whole_number(n, "n"), finite_number(seconds, "seconds", strict=True)
    dev = pick_device(device)
    a = torch.randn(n, n, device=dev, dtype=dtype)
    b = torch.randn(n, n, device=dev, dtype=dtype)
    a @ b  # warm-up
    synchronize(dev)
    best, deadline = 0.0, time.perf_counter() + seconds
    reps = 1
    while True:
        start = time.perf_counter()
        for _ in range(reps):
            a @ b
        synchronize(dev)
        took = time.perf_counter() - start
        best = max(best, 2 * n ** 3 * reps / took / 1e9)
        if time.perf_counter() > deadline:
            return best
        if took < 0.05:
            reps *= 2


def achieved_gflops(flops_per_example: float, examples: int, seconds: float, training: bool = True) -> float:
    """Achieved GFLOP/s of a run: ``(3 if training else 1) · FLOPs/example · examples / seconds / 1e9``.

    Training counts forward + backward as 3× the forward FLOPs (the backward pass costs about
    twice the forward: gradients for activations and for weights; Kaplan et al. 2020).

    Introduced in lesson 1.
    """
    seconds = finite_number(seconds, "seconds", strict=True)
    return (3 if training else 1) * flops_per_example * examples / seconds / 1e9
