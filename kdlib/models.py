"""Model factories sized by arguments, with parameter and FLOP counts.

The teacher of lesson 1 and the students of lesson 3 are built here; lesson 5 adds the small
task-specific architectures.  FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode``,
which counts a multiply-accumulate as 2 FLOPs (so a ``Linear(a, b)`` costs ``2·a·b`` per example).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .validate import finite_number, whole_number


def _check_positive(name: str, value) -> int:
    return whole_number(value, name)


def mlp(in_features: int = 784, hidden: Sequence[int] = (256,), num_classes: int = 10,
        dropout: float = 0.0) -> nn.Sequential:
    """A multi-layer perceptron: Flatten → [Linear → ReLU (→ Dropout)] × len(hidden) → Linear.

    ``mlp(784, (256,), 10)`` has 784·256 + 256 + 256·10 + 10 = 203,530 parameters.  Used as the
    student in lessons 3–6.

    Introduced in lesson 3.
    """
    in_features = _check_positive("in_features", in_features)
    num_classes = _check_positive("num_classes", num_classes)
    dropout = finite_number(dropout, "dropout", below=1.0)
    layers: list[nn.Module] = [nn.Flatten()]
    width = in_features
    for h in hidden:
        h = _check_positive("each hidden width", h)
        layers += [nn.Linear(width, h), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = h
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


def cnn(channels: Sequence[int] = (32, 64), hidden: int = 256, num_classes: int = 10,
        in_channels: int = 1, image_size: int = 28, dropout: float = 0.25,
        batch_norm: bool = True, convs_per_block: int = 1) -> nn.Sequential:
    """A plain CNN: per entry of ``channels`` a block of ``convs_per_block`` 3×3 convs (+BatchNorm)
    + ReLU, then a 2×2 max-pool; then Flatten → Linear(hidden) → ReLU → Dropout → Linear(num_classes).

    ``cnn((32, 64), 256)`` on 28×28 inputs is the lesson 1 teacher: 0.83M parameters, most of
    them in the first Linear layer (64·7·7·256), and about 18.6 MFLOPs per image.

    Introduced in lesson 5.
    """
    if not channels:
        raise ValueError("cnn needs at least one conv block in channels, e.g. (32, 64).")
    for name, value in (("num_classes", num_classes), ("in_channels", in_channels),
                        ("image_size", image_size), ("hidden", hidden), ("convs_per_block", convs_per_block)):
        _check_positive(name, value)
    if image_size // 2 ** len(channels) < 1:
        raise ValueError(f"{len(channels)} pooling blocks shrink a {image_size}px image to nothing; use fewer blocks.")
    layers: list[nn.Module] = []
    c_in, size = in_channels, image_size
    for c in channels:
        _check_positive("each channel count", c)
        for conv_in in (c_in,) + (c,) * (convs_per_block - 1):
            layers.append(nn.Conv2d(conv_in, c, 3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(c))
            layers.append(nn.ReLU())
        layers.append(nn.MaxPool2d(2))
        c_in, size = c, size // 2
    layers += [nn.Flatten(), nn.Linear(c_in * size * size, hidden), nn.ReLU(),
               nn.Dropout(dropout), nn.Linear(hidden, num_classes)]
    return nn.Sequential(*layers)


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with ``requires_grad``).

    Introduced in lesson 1.
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def flops_per_example(model: nn.Module, input_shape: Sequence[int], dtype: torch.dtype = torch.float32) -> int:
    """Forward-pass FLOPs for one example of shape ``input_shape`` (e.g. ``(1, 28, 28)``).

    ``dtype`` is the input's: ``torch.long`` for token ids (a window of ``(context,)`` characters
    in lesson 8, whose FLOPs per token are this divided by the context).

    Counted by ``torch.utils.flop_counter.FlopCounterMode`` in eval mode on a batch of one;
    a multiply-accumulate is 2 FLOPs.  Training costs roughly 3× this per example (forward +
    backward, Kaplan et al. 2020's 6·N rule for dense layers).

    Introduced in lesson 5.
    """
    shape = tuple(int(s) for s in input_shape)
    if not shape or any(s <= 0 for s in shape):
        raise ValueError(f"input_shape must be positive sizes of one example, got {input_shape!r}.")
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros((1, *shape), device=device, dtype=dtype))
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def describe(model: nn.Module, input_shape: Sequence[int]) -> dict:
    """Parameters, forward FLOPs per example and float32 size in MB of a model.

    Introduced in lesson 1.
    """
    params = count_params(model)
    return {"params": params, "flops": flops_per_example(model, input_shape),
            "size_mb": round(params * 4 / 1e6, 3)}


def human(n: float, unit: str = "") -> str:
    """Format a count with k/M/G/T suffixes: ``human(2.5e6, 'FLOPs') == '2.5 MFLOPs'``.

    Introduced in lesson 1.
    """
    if n == 0:
        return f"0 {unit}".strip()
    exp = min(int(math.log10(abs(n)) // 3), 4)
    return f"{n / 10 ** (3 * exp):.3g} {['', 'k', 'M', 'G', 'T'][exp]}{unit}".strip()


# --------------------------------------------------------------------------------------------
# Small, task-specific architectures (lesson 5)
# --------------------------------------------------------------------------------------------

class SeparableConv2d(nn.Sequential):
    """Depthwise-separable 3×3 convolution (Howard et al. 2017, MobileNets; Chollet 2017).

    A depthwise 3×3 conv (one filter per input channel, ``groups=c_in``) followed by a pointwise
    1×1 conv that mixes channels.  Parameters: ``9·c_in + c_in·c_out`` (no biases; BatchNorm
    follows) against ``9·c_in·c_out`` for a full 3×3 conv — about ``1/c_out + 1/9`` of the cost.

    Introduced in lesson 5.
    """

    def __init__(self, c_in: int, c_out: int):
        _check_positive("c_in", c_in)
        _check_positive("c_out", c_out)
        super().__init__(nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in, bias=False),
                         nn.Conv2d(c_in, c_out, 1, bias=False))


def separable_cnn(channels: Sequence[int] = (16, 32), hidden: int = 64, num_classes: int = 10,
                  in_channels: int = 1, image_size: int = 28, dropout: float = 0.1) -> nn.Sequential:
    """Like :func:`cnn` with one conv per block, but every conv after the first is depthwise-separable.

    The first conv stays a full 3×3 (a 1-channel input has nothing to separate).  Lesson 5.

    Introduced in lesson 5.
    """
    if not channels:
        raise ValueError("separable_cnn needs at least one block in channels, e.g. (16, 32).")
    _check_positive("hidden", hidden)
    layers: list[nn.Module] = []
    c_in, size = in_channels, image_size
    for i, c in enumerate(channels):
        _check_positive("each channel count", c)
        conv = nn.Conv2d(c_in, c, 3, padding=1, bias=False) if i == 0 else SeparableConv2d(c_in, c)
        layers += [conv, nn.BatchNorm2d(c), nn.ReLU(), nn.MaxPool2d(2)]
        c_in, size = c, size // 2
    if size < 1:
        raise ValueError(f"{len(channels)} pooling blocks shrink a {image_size}px image to nothing.")
    layers += [nn.Flatten(), nn.Linear(c_in * size * size, hidden), nn.ReLU(), nn.Dropout(dropout),
               nn.Linear(hidden, num_classes)]
    return nn.Sequential(*layers)


def cnn1d(channels: Sequence[int] = (22, 22, 22), num_classes: int = 10, in_channels: int = 1,
          kernel_size: int = 5, length: int = 40) -> nn.Sequential:
    """A 1-D CNN for MNIST-1D: per entry of ``channels`` a Conv1d (stride 2 after the first) + ReLU,
    then global average pooling and a linear classifier.

    The default has about 5.2k parameters.  Translation-equivariant convolutions are the right
    inductive bias for MNIST-1D, whose digits are shifted and scaled along the sequence
    (Greydanus 2020).  Lesson 5.

    Introduced in lesson 5.
    """
    if not channels:
        raise ValueError("cnn1d needs at least one conv layer in channels.")
    _check_positive("kernel_size", kernel_size)
    _check_positive("length", length)
    layers: list[nn.Module] = []
    c_in = in_channels
    for i, c in enumerate(channels):
        _check_positive("each channel count", c)
        layers += [nn.Conv1d(c_in, c, kernel_size, stride=1 if i == 0 else 2, padding=kernel_size // 2), nn.ReLU()]
        c_in = c
    layers += [nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(c_in, num_classes)]
    return nn.Sequential(*layers)
