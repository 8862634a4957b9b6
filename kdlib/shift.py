"""Distribution shift: seeded corruptions of test images, a transfer set with a class left out,
and the bias correction for that class (lesson 6).

Corruptions follow the spirit of ImageNet-C / MNIST-C (Hendrycks & Dietterich 2019; Mu & Gilmer
2019) at three severities, built on ``torchvision.transforms.v2`` where it has the operation.
They work in pixel space: ``x = x' · σ + μ`` undoes kdlib's normalisation, the corruption runs on
[0, 1] images, the result is clipped to [0, 1] and normalised again.  Every random choice comes
from a generator seeded by (corruption, severity, seed), so a shifted test set is the same on
every run and machine.
"""
from __future__ import annotations

import zlib

import torch
from torch import nn
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from .dataset import Dataset

#: Parameters per severity 1, 2, 3.
SEVERITY = {
    "gaussian_noise": (0.08, 0.16, 0.28),     # noise standard deviation, in [0, 1] pixel units
    "blur": (0.6, 1.0, 1.5),                  # Gaussian blur sigma, pixels (5×5 kernel)
    "rotation": (10.0, 20.0, 35.0),           # degrees, sign drawn per image
    "translation": (2, 4, 6),                 # pixels, direction drawn per image
    "contrast": (0.6, 0.4, 0.2),              # contrast factor (1 = unchanged)
    "pixelate": (20, 14, 10),                 # resolution the image is reduced to, then enlarged back
}
CORRUPTIONS = tuple(SEVERITY)


def _generator(name: str, severity: int, seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(zlib.crc32(f"{name}/{severity}/{seed}".encode()))


def _by_group(images: torch.Tensor, groups: torch.Tensor, fn) -> torch.Tensor:
    """Apply ``fn(batch, group)`` to the images of each group (v2 ops take one parameter per call)."""
    out = torch.empty_like(images)
    for g in groups.unique().tolist():
        mask = groups == g
        out[mask] = fn(images[mask], g)
    return out


def corrupt_pixels(images: torch.Tensor, name: str, severity: int, seed: int = 0) -> torch.Tensor:
    """Corrupt images with values in [0, 1], shape (N, 1, H, W); returns values in [0, 1]."""
    if name not in SEVERITY:
        raise ValueError(f"Unknown corruption {name!r}; kdlib has {', '.join(CORRUPTIONS)}.")
    if severity not in (1, 2, 3):
        raise ValueError(f"severity must be 1, 2 or 3, got {severity!r}.")
    if images.ndim != 4:
        raise ValueError(f"corrupt expects a batch of images (N, C, H, W), got shape {tuple(images.shape)}.")
    p = SEVERITY[name][severity - 1]
    g = _generator(name, severity, seed)
    x = images.cpu().float()
    if name == "gaussian_noise":
        x = x + p * torch.randn(x.shape, generator=g)
    elif name == "blur":
        x = v2.GaussianBlur(kernel_size=5, sigma=p)(x)
    elif name == "rotation":
        sign = torch.randint(0, 2, (len(x),), generator=g)
        x = _by_group(x, sign, lambda b, s: TF.rotate(b, p if s else -p))
    elif name == "translation":
        direction = torch.randint(0, 4, (len(x),), generator=g)
        moves = [(p, 0), (-p, 0), (0, p), (0, -p)]
        x = _by_group(x, direction, lambda b, d: TF.affine(b, angle=0.0, translate=list(moves[d]), scale=1.0, shear=[0.0]))
    elif name == "contrast":
        x = TF.adjust_contrast(x, p)
    elif name == "pixelate":
        size = x.shape[-1]
        x = TF.resize(TF.resize(x, [p, p], antialias=True), [size, size], interpolation=v2.InterpolationMode.NEAREST)
    return x.clamp(0.0, 1.0).to(images.device)


def corrupt(data: Dataset, name: str, severity: int, seed: int = 0, X: torch.Tensor | None = None) -> torch.Tensor:
    """A corrupted copy of ``X`` (default: ``data.X_test``), normalised like ``data``."""
    X = data.X_test if X is None else X
    pixels = X * data.std + data.mean
    return (corrupt_pixels(pixels, name, severity, seed) - data.mean) / data.std


def shifted_test_sets(data: Dataset, corruptions=CORRUPTIONS, severities=(1, 2, 3), seed: int = 0) -> dict:
    """``{(corruption, severity): X}`` for every corruption and severity, all of ``data.X_test``.

    Introduced in lesson 6.
    """
    return {(c, s): corrupt(data, c, s, seed) for c in corruptions for s in severities}


def without_class(*tensors: torch.Tensor, labels: torch.Tensor, cls: int) -> tuple[torch.Tensor, ...]:
    """The rows of ``tensors`` whose label is not ``cls``: a transfer set with one class left out.

    Introduced in lesson 6.
    """
    if not 0 <= cls <= int(labels.max()):
        raise ValueError(f"cls must be one of the classes 0..{int(labels.max())}, got {cls!r}.")
    keep = labels != cls
    return tuple(t[keep] for t in tensors)


def _output_layer(model: nn.Module) -> nn.Linear:
    last = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not last or last[-1].bias is None:
        raise ValueError("The model needs a final nn.Linear layer with a bias to correct.")
    return last[-1]


@torch.no_grad()
def shift_class_bias(model: nn.Module, cls: int, delta: float) -> nn.Module:
    """Add ``delta`` to the output bias of class ``cls`` (Hinton et al. 2015, section 3: the
    distilled net that never saw a 3 gets most 3s right once the bias of 3 is raised).

    Introduced in lesson 6.
    """
    _output_layer(model).bias[cls] += delta
    return model


@torch.no_grad()
def choose_class_bias(model: nn.Module, X_val: torch.Tensor, y_val: torch.Tensor, cls: int,
                      deltas=tuple(float(d) for d in range(0, 11))) -> tuple[float, list[float]]:
    """The bias shift for ``cls`` that maximises overall accuracy on the validation split.

    Returns ``(best delta, validation accuracy for each delta)``; the model is left unchanged.
    Chosen on validation, never on test.

    Introduced in lesson 6.
    """
    from .train import predict

    logits = predict(model, X_val)
    y_val = y_val.to(logits.device)
    accs = []
    for d in deltas:
        shifted = logits.clone()
        shifted[:, cls] += d
        accs.append(float((shifted.argmax(1) == y_val).float().mean()))
    best = max(range(len(deltas)), key=lambda i: (accs[i], -abs(deltas[i])))
    return deltas[best], accs
