"""Compression after training: pruning, int8 quantization, size on disk, CPU latency (lesson 5).

Uses PyTorch's own tools — ``torch.nn.utils.prune`` and ``torch.ao.quantization`` — rather than
re-implementing them; this module only makes them one call each and measures the result.
"""
from __future__ import annotations

import copy
import io
import time
import warnings

import torch
from torch import nn
from torch.nn.utils import prune

from .validate import finite_number


def _prunable(model: nn.Module) -> list[tuple[nn.Module, str]]:
    return [(m, "weight") for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))]


def prune_and_finetune(model: nn.Module, amount: float, train, **fit_kwargs) -> nn.Module:
    """A pruned copy of ``model``, fine-tuned with its pruned weights held at exactly zero.

    Global magnitude pruning (Han et al. 2015): the ``amount`` fraction of smallest-magnitude
    weights across all Linear/Conv layers (``prune.global_unstructured`` with ``L1Unstructured``).
    The masks stay in place during ``fit(copy, train, **fit_kwargs)`` — PyTorch's pruning
    reparametrisation computes ``weight = weight_orig * mask`` on every forward pass, so the
    removed weights get no update — and are made permanent afterwards (``prune.remove``), leaving
    an ordinary model with zeros in it.  The zeros only shrink it on disk, or speed it up, with
    sparse storage or kernels.  The caller's ``model`` is not changed.

    Introduced in lesson 5.
    """
    from .train import fit

    amount = finite_number(amount, "amount (the fraction of weights to remove)", below=1.0)
    pruned = copy.deepcopy(model)
    params = _prunable(pruned)
    if not params:
        raise ValueError("The model has no Linear or Conv layers to prune.")
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=amount)
    fit(pruned, train, **fit_kwargs)
    for module, name in params:
        prune.remove(module, name)
    return pruned


def sparsity(model: nn.Module) -> float:
    """Fraction of exactly-zero weights over the Linear/Conv layers."""
    weights = [m.weight for m, _ in _prunable(model)]
    total = sum(w.numel() for w in weights)
    return sum(int((w == 0).sum()) for w in weights) / max(total, 1)


def quantize_int8(model: nn.Module) -> nn.Module:
    """Post-training dynamic int8 quantization of the Linear layers (``torch.ao.quantization.quantize_dynamic``).

    Weights are stored as int8 with a per-tensor scale; activations are quantized on the fly.
    Runs on CPU only.  Convolutions stay float (static quantization would need calibration data).
    Returns a quantized copy; the original is untouched.

    Introduced in lesson 5.
    """
    source = copy.deepcopy(model).cpu().eval()
    with warnings.catch_warnings():
        # torch.ao's eager quantization is deprecated in favour of torchao, which is not a course
        # dependency; it still works and is what this lesson demonstrates.
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(source, {nn.Linear}, dtype=torch.qint8)


def size_on_disk(model: nn.Module, sparse: bool = False) -> int:
    """Bytes of the model's ``state_dict`` as ``torch.save`` writes it.

    With ``sparse=True`` weight matrices that are mostly zeros are stored in CSR form (flattened
    to 2-D), which is what makes a pruned model smaller: each non-zero costs its 4-byte value plus
    an 8-byte column index, so it pays off only above about 2/3 sparsity.

    Introduced in lesson 5.
    """
    state = model.state_dict()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sparse CSR is flagged as beta; quantized tensors as deprecated
        if sparse:
            state = {k: (v.flatten(1).to_sparse_csr() if v.is_floating_point() and v.dim() > 1
                         and (v == 0).float().mean() > 2 / 3 else v)
                     for k, v in state.items()}
        torch.save(state, buffer)
    return buffer.getbuffer().nbytes


@torch.no_grad()
def latency(model: nn.Module, example: torch.Tensor, batch_size: int = 1, min_seconds: float = 0.5) -> float:
    """Seconds per query on the CPU: the median of repeated calls on batches of ``batch_size``.

    ``example`` is one input of the right shape (without the batch dimension).

    Introduced in lesson 5.
    """
    model = model.eval()
    x = example.unsqueeze(0).expand(batch_size, *example.shape).contiguous().cpu()
    for _ in range(5):
        model(x)  # warm-up
    times = []
    deadline = time.perf_counter() + min_seconds
    while time.perf_counter() < deadline or len(times) < 10:
        start = time.perf_counter()
        model(x)
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2] / batch_size
