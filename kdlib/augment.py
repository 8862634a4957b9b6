"""Data augmentation on tensors, with ``torchvision.transforms.v2`` (lesson 5).

``v2`` transforms applied to a batched tensor draw *one* random parameter for the whole batch;
augmentation needs a fresh draw per image, so :func:`per_image` applies the transform image by
image.  Used as ``fit(..., augment=kd.augment.fashion())``.
"""
from __future__ import annotations

import torch
from torchvision.transforms import v2


def per_image(transform) -> callable:
    """Wrap a v2 transform so that each image in a batch gets its own random draw."""
    def apply(X: torch.Tensor) -> torch.Tensor:
        return torch.stack([transform(x) for x in X])

    return apply


def fashion(max_shift: int = 2, flip: bool = True, fill: float = 0.0) -> callable:
    """Random translation by up to ``max_shift`` pixels (pad + random crop) and horizontal flips.

    Clothes photographed slightly off-centre or mirrored are still the same class.  ``fill`` is the
    padding value in *normalised* units; pass ``-mean/std`` to pad with black.
    """
    steps = [v2.RandomCrop(28, padding=max_shift, fill=fill)] if max_shift else []
    if flip:
        steps.append(v2.RandomHorizontalFlip())
    if not steps:
        raise ValueError("fashion() with no shift and no flip does nothing; drop augment= instead.")
    return per_image(v2.Compose(steps))
