"""The training loop: ``fit`` and ``evaluate``, with progress bars, history, devices and seeds.

One small loop serves the whole course — the teacher (lesson 1), students with a distillation
loss (lesson 3, through ``criterion``), augmentation (lesson 5, through ``augment``) — and runs
unchanged under ``torchrun`` with DistributedDataParallel for users who outgrow one machine.
Introduced in lesson 1.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .data import Dataset, batches
from .runtime import device as pick_device
from .runtime import seed_everything
from .tables import Table

Batch = Sequence[torch.Tensor]
Criterion = Callable[[torch.Tensor, Batch], torch.Tensor]


@dataclass
class History:
    """Per-epoch records of a run: ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``, ``seconds``."""

    rows: list[dict] = field(default_factory=list)

    def __getitem__(self, column: str) -> list:
        if not self.rows or column not in self.rows[0]:
            raise KeyError(f"History has no column {column!r}; it has {list(self.rows[0]) if self.rows else []}.")
        return [row[column] for row in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def last(self) -> dict:
        return self.rows[-1] if self.rows else {}

    @property
    def seconds(self) -> float:
        """Wall time of all epochs, evaluation included."""
        return sum(row["seconds"] for row in self.rows)

    def table(self, title: str = "Training history") -> Table:
        """The epochs as a :class:`~kdlib.tables.Table`, accuracies in percent (2 decimals), losses to 4."""
        def cell(column, value):
            if isinstance(value, float) and column.endswith("acc"):
                return round(100 * value, 2)
            return round(value, 4) if isinstance(value, float) else value

        rows = [{("{} (%)".format(k) if k.endswith("acc") else k): cell(k, v) for k, v in row.items()}
                for row in self.rows]
        return Table(rows, title if rows else f"{title} (no epochs)")

    def __repr__(self) -> str:
        return str(self.table())


def cross_entropy(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """The default criterion: mean cross-entropy of ``logits`` against the labels ``batch[1]``.

    Labels may be one per example ``(N,)`` with logits ``(N, classes)``, or one per position
    ``(N, T)`` with logits ``(N, T, vocab)`` (a language model's next-token targets, lesson 8):
    the mean is then over every position of every sequence.
    """
    return F.cross_entropy(logits.flatten(0, -2), batch[1].flatten())


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")


def _check_xy(X, y, what: str):
    if not isinstance(X, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError(f"{what} must be tensors (X, y), got {type(X).__name__} and {type(y).__name__}.")
    if len(X) == 0:
        raise ValueError(f"{what} is empty (0 examples); nothing to train or evaluate on.")
    if y.ndim not in (1, 2) or len(y) != len(X):
        raise ValueError(f"{what}: y must hold {len(X)} labels, shape ({len(X)},), or {len(X)} sequences of "
                         f"labels, shape ({len(X)}, T); got shape {tuple(y.shape)}.")
    if y.dtype.is_floating_point or y.dtype == torch.bool:
        raise ValueError(f"{what}: labels must be integer class indices, got dtype {y.dtype}.")


def _forward(model: nn.Module, X: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """Run the model, turning shape errors into a message about the data and the model."""
    try:
        out = model(X)
    except RuntimeError as err:
        if "shape" in str(err) or "size" in str(err) or "dimension" in str(err):
            raise ValueError(
                f"The model cannot take inputs of shape {tuple(X.shape[1:])} per example ({err}). "
                "Check that the model was built for this dataset (e.g. in_features=784 for 28×28 "
                "images in an MLP, in_channels=1 for greyscale in a CNN)."
            ) from err
        raise
    if y is not None:
        if out.shape[:-1] != y.shape:
            want = "(batch, classes)" if y.ndim == 1 else "(batch, T, vocab) for labels of shape (batch, T)"
            raise ValueError(f"The model must return logits of shape {want}, got {tuple(out.shape)} "
                             f"for labels of shape {tuple(y.shape)}.")
        top = int(y.max())
        if top >= out.shape[-1] or int(y.min()) < -1:
            raise ValueError(
                f"Labels run from {int(y.min())} to {top} but the model outputs {out.shape[-1]} classes; "
                "build the model with num_classes equal to the number of classes."
            )
    return out


def _model_device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


@torch.no_grad()
def predict(model: nn.Module, X: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Logits of ``model`` on ``X`` in eval mode, batch by batch, without building a graph."""
    _check_positive_int("batch_size", batch_size)
    if len(X) == 0:
        raise ValueError("predict() got an empty tensor (0 examples).")
    was_training = model.training
    model.eval()
    dev = _model_device(model)
    try:
        outs = [_forward(model, xb.to(dev)) for (xb,) in batches(X, batch_size=batch_size, shuffle=False)]
    finally:
        model.train(was_training)
    return torch.cat(outs)


@torch.no_grad()
def evaluate(model: nn.Module, X: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> dict:
    """Mean cross-entropy ``loss`` (nats) and top-1 accuracy ``acc`` (a fraction) of ``model`` on (X, y).

    With sequence labels ``y`` of shape ``(N, T)`` both are over every position (lesson 8:
    ``loss / ln 2`` is then the bits per character).
    """
    _check_xy(X, y, "evaluate()")
    logits = predict(model, X, batch_size)
    y = y.to(logits.device)
    if int(y.max()) >= logits.shape[-1]:
        raise ValueError(f"Labels reach {int(y.max())} but the model outputs {logits.shape[-1]} classes.")
    return {"loss": float(cross_entropy(logits, (X, y))), "acc": float((logits.argmax(-1) == y).float().mean())}


def _distributed() -> tuple[int, int]:
    """(rank, world size) when launched by torchrun with more than one process, else (0, 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and os.environ.get("KDLIB_DEVICE", "auto") != "cpu" else "gloo"
        dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size()


def _make_optimizer(name: str, params, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    raise ValueError(f"Unknown optimizer {name!r}; use 'adam' (AdamW) or 'sgd' (Nesterov momentum 0.9).")


def fit(model: nn.Module, train: Dataset | Sequence[torch.Tensor], val: Sequence[torch.Tensor] | None = None, *,
        epochs: int, lr: float = 1e-3, batch_size: int = 128, weight_decay: float = 0.0,
        optimizer: str = "adam", schedule: str | None = "cosine", criterion: Criterion | None = None,
        augment: Callable[[torch.Tensor], torch.Tensor] | None = None, seed: int = 0,
        device=None, quiet: bool = False, desc: str = "fit") -> History:
    """Train ``model`` with mini-batch gradient descent; return its per-epoch :class:`History`.

    ``train`` is a :class:`~kdlib.data.Dataset` (its train and validation splits are used) or a
    tuple ``(X, y, *extra)`` of tensors of equal length: each step slices every tensor with the
    same indices (:func:`kdlib.data.batches`) and calls ``criterion(model(augment(X_b)), batch)``,
    default mean cross-entropy on ``batch[1]``.  Extra tensors, such as cached teacher logits,
    reach the criterion in ``batch[2:]``.  Labels may also be one per position, ``y`` of shape
    ``(N, T)`` with a model that returns ``(N, T, vocab)`` logits (a language model, lesson 8):
    losses and accuracies are then over every position.  The optimizer is AdamW (or SGD with
    Nesterov momentum); ``schedule="cosine"`` anneals the learning rate per step to zero (Loshchilov & Hutter 2017).

    Under ``torchrun --nproc_per_node N`` it wraps the model in DistributedDataParallel (gloo on
    CPU, NCCL on CUDA), gives each rank ``batch_size // N`` examples of every global batch, and
    all ranks end with identical weights.  The model is left in eval mode, ready for inference.
    """
    _check_positive_int("epochs", epochs)
    _check_positive_int("batch_size", batch_size)
    if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be a positive number, got {lr!r}.")
    if schedule not in (None, "cosine"):
        raise ValueError(f"Unknown schedule {schedule!r}; use 'cosine' or None (constant lr).")
    if isinstance(train, Dataset):
        val = train.val if val is None else val
        train = train.train
    train = tuple(train)
    if len(train) < 2:
        raise ValueError("train must be a Dataset or a tuple (X, y, ...) of tensors.")
    _check_xy(train[0], train[1], "train")
    if val is not None:
        _check_xy(val[0], val[1], "val")

    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError("The model has no trainable parameters (every one has requires_grad=False); build a "
                         "fresh model, or call model.requires_grad_(True) on a copy, before training.")
    rank, world = _distributed()
    dev = pick_device(device)
    if world > 1 and dev.type == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
    model.to(dev)
    train = tuple(t.to(dev) for t in train)
    if val is not None:
        val = tuple(t.to(dev) for t in val[:2])
    if world > 1:
        if batch_size % world:
            raise ValueError(f"batch_size {batch_size} must be divisible by the {world} processes.")
        net: nn.Module = nn.parallel.DistributedDataParallel(model)
        local_batch = batch_size // world
    else:
        net, local_batch = model, batch_size
    criterion = criterion or cross_entropy
    generator = seed_everything(seed)
    opt = _make_optimizer(optimizer, model.parameters(), lr, weight_decay)
    n_usable = len(train[0]) if world == 1 else (len(train[0]) // batch_size) * batch_size
    steps_per_epoch = max(1, math.ceil(n_usable / batch_size))
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps_per_epoch)
             if schedule == "cosine" else None)

    # labels of -1 mark unlabelled examples (few-label distillation, lesson 3); train_acc skips them
    has_unlabelled = bool((train[1] < 0).any())
    history = History()
    bar = tqdm(total=epochs * steps_per_epoch, desc=desc, unit="step", disable=quiet or rank != 0,
               leave=True, dynamic_ncols=True)
    try:
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            net.train()
            loss_sum = torch.zeros((), device=dev)
            correct = torch.zeros((), device=dev, dtype=torch.long)
            seen = labelled = 0
            for batch in batches(*train, batch_size=local_batch, generator=generator,
                                 rank=rank, world_size=world):
                xb = augment(batch[0]) if augment is not None else batch[0]
                logits = _forward(net, xb, batch[1] if seen == 0 and epoch == 1 else None)
                loss = criterion(logits, batch)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if sched is not None:
                    sched.step()
                n = batch[1].numel()  # examples, or positions for sequence labels
                loss_sum += loss.detach() * n
                correct += (logits.detach().argmax(-1) == batch[1]).sum()
                labelled += int((batch[1] >= 0).sum()) if has_unlabelled else n
                seen += n
                bar.update(1)
            counts = torch.tensor([float(seen), float(max(labelled, 1))], device=dev)
            totals = torch.cat([torch.stack([loss_sum, correct.to(loss_sum.dtype)]), counts])
            if world > 1:
                torch.distributed.all_reduce(totals)
            row = {"epoch": epoch, "train_loss": float(totals[0] / totals[2]),
                   "train_acc": float(totals[1] / totals[3])}
            if val is not None:
                scores = evaluate(model, *val)
                row.update(val_loss=scores["loss"], val_acc=scores["acc"])
            row["seconds"] = round(time.perf_counter() - start, 3)
            history.rows.append(row)
            bar.set_postfix({k: f"{v:.3f}" for k, v in row.items() if k.endswith(("loss", "acc"))})
    finally:
        bar.close()
    model.eval()
    return history


def train_fresh(build: Callable[[], nn.Module], train, seed: int, **fit_kwargs) -> nn.Module:
    """A new model trained from scratch, reproducibly: seed torch, ``build()``, ``fit(..., seed=seed)``.

    Seeding before ``build()`` fixes the initial weights, ``seed`` in ``fit`` the batch order, so
    the same ``seed`` gives the same model.  Lessons 3–6 train every seeded run this way.
    """
    torch.manual_seed(seed)
    model = build()
    fit(model, train, seed=seed, **fit_kwargs)
    return model
