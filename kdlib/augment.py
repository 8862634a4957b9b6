"""Data augmentation on tensors, with ``torchvision.transforms.v2`` (lesson 5).

A ``v2`` transform applied to a batched tensor draws *one* random parameter for the whole batch.
:func:`per_group` splits each batch into small groups and gives every group its own draw: with
the default 16 groups a batch of 128 sees 16 different shifts and flips, at a sixteenth of the
cost of calling the transform image by image.  Used as ``fit(..., augment=kd.augment.fashion())``.
"""
from __future__ import annotations

import torch
from torchvision.transforms import v2

from .validate import whole_number


def per_group(transform, groups: int = 16) -> callable:
    """Wrap a v2 transform so that each of ``groups`` slices of a batch gets its own random draw
    (``groups`` ≥ batch size means one draw per image)."""
    groups = whole_number(groups, "groups")

    def apply(X: torch.Tensor) -> torch.Tensor:
        return torch.cat([transform(part) for part in X.chunk(min(groups, len(X)))])

    return apply


def fashion(max_shift: int = 2, flip: bool = True, fill: float = 0.0, groups: int = 16) -> callable:
    """Random translation by up to ``max_shift`` pixels (pad + random crop) and horizontal flips.

    Clothes photographed slightly off-centre or mirrored are still the same class.  ``fill`` is the
    padding value in *normalised* units; pass ``-mean/std`` to pad with black.

    Introduced in lesson 5.
    """
    steps = [v2.RandomCrop(28, padding=max_shift, fill=fill)] if max_shift else []
    if flip:
        steps.append(v2.RandomHorizontalFlip())
    if not steps:
        raise ValueError("fashion() with no shift and no flip does nothing; drop augment= instead.")
    return per_group(v2.Compose(steps), groups)
