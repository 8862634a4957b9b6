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

from .dataset import Dataset, batches
from .resume import EpochSums, TrainingCheckpoint, run_signature
from .runtime import device as pick_device
from .runtime import seed_everything
from .tables import Table
from .validate import finite_number, whole_number

Batch = Sequence[torch.Tensor]
Criterion = Callable[[torch.Tensor, Batch], torch.Tensor]


@dataclass
class History:
    """Per-epoch records of a run: ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``, ``seconds``.

    Introduced in lesson 1.
    """

    rows: list[dict] = field(default_factory=list)
    #: Where a run resumed from a checkpoint picked up (``epoch``, ``step``, ``steps_done``,
    #: ``seconds_before``: fit's wall time before the interrupt); empty for an uninterrupted run.
    resumed: dict = field(default_factory=dict)
    #: Validation scores taken every ``val_every`` steps (``step``, ``val_loss``, ``val_acc``): a
    #: learning curve inside long epochs.  Empty unless ``fit(..., val_every=N)``.
    evals: list[dict] = field(default_factory=list)

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


#: Steps between two checks that the training loss is finite (and at every epoch end): each check
#: waits for the device once, so a GPU is never made to wait after every step.
CHECK_EVERY = 50


def _check_xy(X, y, what: str):
    if not isinstance(X, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError(f"{what} must be tensors (X, y), got {type(X).__name__} and {type(y).__name__}.")
    if len(X) == 0:
        raise ValueError(f"{what} is empty (0 examples); nothing to train or evaluate on.")
    if y.ndim not in (1, 2) or len(y) != len(X):
        raise ValueError(f"{what}: y must hold {len(X)} labels, shape ({len(X)},), or {len(X)} sequences of "
                         f"labels, shape ({len(X)}, T); got shape {tuple(y.shape)}.")
    if y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
        raise ValueError(f"{what}: labels must be integer class indices, got dtype {y.dtype}.")
    _check_input_dtype(X, what)


def _check_input_dtype(X: torch.Tensor, what: str) -> None:
    if X.dtype in (torch.uint8, torch.bool):
        raise ValueError(f"{what}: the inputs X are {X.dtype} (raw pixels 0–255?); convert them first, "
                         "e.g. X.float() / 255 and then standardise as kd.load does (X.long() for token ids).")


def _input_dtype(model: nn.Module, X: torch.Tensor) -> torch.dtype:
    """The dtype ``X`` is fed to ``model`` in: floating inputs take the dtype of the model's floating
    weights (float64 data runs in a float32 model as float32); other inputs, such as token ids, stay."""
    weights = next((p.dtype for p in model.parameters() if p.is_floating_point()), None)
    return weights if X.is_floating_point() and weights is not None else X.dtype


def _nonfinite_rows(X: torch.Tensor) -> torch.Tensor:
    """Indices of the examples (rows) of ``X`` that hold a NaN or an infinity."""
    return (~torch.isfinite(X.reshape(len(X), -1))).any(1).nonzero().flatten()


def _check_finite_inputs(X: torch.Tensor, what: str) -> None:
    """Refuse inputs with NaN or infinite values, naming how many examples and the first ones.

    One cheap pass, a sum (NaN and ±inf survive it); only a non-finite sum, which a huge but
    finite tensor could also give, leads to the exact element-wise search.
    """
    if X.is_floating_point() and not bool(torch.isfinite(X.sum())):
        rows = _nonfinite_rows(X)
        if len(rows) == 0:
            return
        raise ValueError(f"{what}: the inputs X hold NaN or infinite values in {len(rows)} of {len(X)} examples "
                         f"(first: {rows[:5].tolist()}); fix or drop them, e.g. keep "
                         "torch.isfinite(X).flatten(1).all(1).")


def _check_labels(y: torch.Tensor, what: str, unlabelled_ok: bool) -> tuple[int, int]:
    """The smallest and largest label of the whole tensor ``y``, after refusing labels below −1,
    and −1 ("no label", :data:`kdlib.distill.UNLABELLED`) where every example needs a label."""
    lo, hi = int(y.min()), int(y.max())
    if lo < -1 or (lo == -1 and not unlabelled_ok):
        n = int((y < 0).sum())
        if lo < -1:
            raise ValueError(f"{what}: {n} labels are negative (smallest {lo}); labels are class indices "
                             "0, 1, ..., num_classes − 1 (−1 marks an unlabelled training example).")
        where = ("the default criterion (cross-entropy) needs a label for every example: distil with "
                 "criterion=kd.distill.KDCriterion(...) and teacher logits, or drop the unlabelled examples"
                 if what == "train" else
                 "a validation or test split needs a true label for every example: keep unlabelled "
                 "examples in the training tensors only")
        raise ValueError(f"{what}: {n} labels are −1 (kd.distill.UNLABELLED, 'no label'), but {where}.")
    return lo, hi


def _check_classes(lo: int, hi: int, classes: int) -> None:
    if hi >= classes:
        raise ValueError(f"Labels run from {lo} to {hi} but the model outputs {classes} classes; "
                         "build the model with num_classes equal to the number of classes.")


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
    return out


def _model_device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


@torch.no_grad()
def predict(model: nn.Module, X: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Logits of ``model`` on ``X`` in eval mode, batch by batch, without building a graph.

    Floating inputs are fed in the dtype of the model's weights (float64 data to a float32 model
    as float32); uint8 inputs (raw pixels) are refused with a message saying how to convert them.

    Introduced in lesson 1.
    """
    batch_size = whole_number(batch_size, "batch_size")
    if len(X) == 0:
        raise ValueError("predict() got an empty tensor (0 examples).")
    _check_input_dtype(X, "predict()")
    was_training = model.training
    model.eval()
    dev, dtype = _model_device(model), _input_dtype(model, X)
    try:
        outs = [_forward(model, xb.to(dev, dtype)) for (xb,) in batches(X, batch_size=batch_size, shuffle=False)]
    finally:
        model.train(was_training)
    return torch.cat(outs)


@torch.no_grad()
def evaluate(model: nn.Module, X: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> dict:
    """Mean cross-entropy ``loss`` (nats) and top-1 accuracy ``acc`` (a fraction) of ``model`` on (X, y).

    With sequence labels ``y`` of shape ``(N, T)`` both are over every position (lesson 8:
    ``loss / ln 2`` is then the bits per character).  Every example needs a label (no −1), and
    NaN or infinite inputs or model outputs are an error rather than a meaningless accuracy.

    Introduced in lesson 1.
    """
    _check_xy(X, y, "evaluate()")
    lo, hi = _check_labels(y, "evaluate()", unlabelled_ok=False)
    logits = predict(model, X, batch_size)
    _check_classes(lo, hi, logits.shape[-1])
    if not bool(torch.isfinite(logits).all()):
        _check_finite_inputs(X, "evaluate()")
        rows = _nonfinite_rows(logits)
        raise ValueError(f"evaluate(): the model's outputs are NaN or infinite for {len(rows)} of {len(X)} "
                         "examples, so it has no accuracy; its weights were probably ruined by a training run "
                         "whose loss diverged (rebuild the model and train again, e.g. with a smaller lr).")
    y = y.to(logits.device, torch.long)
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
    """AdamW or Nesterov SGD with ``foreach=True``: one batched update over all parameters instead of
    a Python loop over them.  Torch uses it by default only on GPUs; on a CPU it gives bit-identical
    weights (checked in the tests) and cuts a 40k-parameter language model's step by ~8 %."""
    if name == "adam":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, foreach=True)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay, foreach=True)
    raise ValueError(f"Unknown optimizer {name!r}; use 'adam' (AdamW) or 'sgd' (Nesterov momentum 0.9).")


def _check_losses(losses: list, checked: int, epoch: int, steps: int, lr: float, train: tuple) -> int:
    """Raise ``FloatingPointError`` if a loss after the first ``checked`` steps is NaN or infinite;
    else return how many are checked now.  One wait for the device per call, not per step."""
    if checked == len(losses):
        return checked
    bad = ~torch.isfinite(torch.stack(losses[checked:]))
    if not bool(bad.any()):
        return len(losses)
    step = checked + int(bad.nonzero()[0, 0])
    extras = [f"train tensor {i} (batch[{i}], e.g. cached teacher logits) holds NaN or +inf values"
              for i, t in enumerate(train[2:], start=2)
              if t.is_floating_point() and bool((torch.isnan(t) | torch.isposinf(t)).any())]
    raise FloatingPointError(
        f"Training stopped at epoch {epoch}, step {step + 1} of {steps}: the loss is "
        f"{float(losses[step])}, and the weights are no longer usable (rebuild the model before training "
        "again). Likely causes: " + ("; ".join(extras) + "; or " if extras else "")
        + "non-finite inputs (after augment, if any), or a learning rate too high for this model "
        f"(lr={lr:g}: try 10× smaller).")


def _checked_data(train, val, criterion) -> tuple[tuple, tuple | None, tuple[int, int], bool]:
    """``fit``'s data, checked once on whole tensors before the first step.

    Returns the train tensors, the validation pair (or ``None``), the smallest and largest label
    of both, and whether the training labels hold −1 (unlabelled examples, lesson 3).
    """
    if isinstance(train, Dataset):
        val = train.val if val is None else val
        train = train.train
    train = tuple(train)
    if len(train) < 2:
        raise ValueError("train must be a Dataset or a tuple (X, y, ...) of tensors.")
    _check_xy(train[0], train[1], "train")
    _check_finite_inputs(train[0], "train")
    labels = _check_labels(train[1], "train", unlabelled_ok=criterion not in (None, cross_entropy))
    has_unlabelled = labels[0] < 0  # -1 marks unlabelled examples (few-label distillation, lesson 3)
    if val is not None:
        _check_xy(val[0], val[1], "val")
        _check_finite_inputs(val[0], "val")
        val_lo, val_hi = _check_labels(val[1], "val", unlabelled_ok=False)
        labels = min(labels[0], val_lo), max(labels[1], val_hi)
    return train, val, labels, has_unlabelled


def _check_trainable(model: nn.Module) -> None:
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError("The model has no trainable parameters (every one has requires_grad=False); build a "
                         "fresh model, or call model.requires_grad_(True) on a copy, before training.")


def _placed(model: nn.Module, train: tuple, val: tuple | None, device) -> tuple[int, int, torch.device, tuple, tuple | None]:
    """Move ``model`` and the data to the training device: this rank's GPU under torchrun, else
    :func:`kdlib.runtime.device`.  Returns (rank, world size, device, train, val); labels become
    int64 and floating inputs the dtype of the model's weights."""
    rank, world = _distributed()
    dev = pick_device(device)
    if world > 1 and dev.type == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
    model.to(dev)
    in_dtype = _input_dtype(model, train[0])
    train = (train[0].to(dev, in_dtype), train[1].to(dev, torch.long), *(t.to(dev) for t in train[2:]))
    if val is not None:
        val = (val[0].to(dev, in_dtype), val[1].to(dev, torch.long))
    return rank, world, dev, train, val


def _parallel(model: nn.Module, batch_size: int, world: int) -> tuple[nn.Module, int]:
    """The module each step runs (DistributedDataParallel over ``world`` processes when there are
    several) and the per-rank share of a global batch."""
    if world == 1:
        return model, batch_size
    if batch_size % world:
        raise ValueError(f"batch_size {batch_size} must be divisible by the {world} processes.")
    return nn.parallel.DistributedDataParallel(model), batch_size // world


@dataclass
class _Loop:
    """What every epoch of one ``fit`` run shares."""

    net: nn.Module                      # the model, or its DistributedDataParallel wrapper
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler | None
    criterion: Criterion
    augment: Callable[[torch.Tensor], torch.Tensor] | None
    generator: torch.Generator          # the batch order
    batch_size: int                     # examples per step on this rank
    rank: int
    world: int
    dev: torch.device
    steps: int                          # steps per epoch
    lr: float                           # for the message when the loss diverges
    labels: tuple[int, int]             # smallest and largest label, checked against the model's classes
    has_unlabelled: bool                # train labels hold −1: accuracy is over labelled examples only
    bar: tqdm
    model: nn.Module | None = None      # the model itself, for validation every `val_every` steps
    val: tuple | None = None
    val_every: int = 0
    evals: list = field(default_factory=list)


def _fit_epoch(loop: _Loop, train: tuple, epoch: int, sums: EpochSums | None = None,
               save: Callable[[EpochSums], None] | None = None) -> dict:
    """One pass over ``train`` (every rank's share of it): a gradient step per batch.

    Returns the epoch's mean ``train_loss`` (weighted by examples, or positions for sequence
    labels) and ``train_acc`` over the labelled examples (``None`` when none is), summed over all ranks.  On the first
    step of the run the model's output shape and classes are checked against the labels; the loss
    is checked to be finite every :data:`CHECK_EVERY` steps and at the end.  ``sums`` resumes an
    epoch interrupted after ``sums.steps`` steps (:mod:`kdlib.resume`); ``save(sums)`` is offered
    the running sums after every step and writes a checkpoint when one is due.
    """
    loop.net.train()
    if sums is None:
        sums = EpochSums(correct=torch.zeros((), device=loop.dev, dtype=torch.long))
    for batch in batches(*train, batch_size=loop.batch_size, generator=loop.generator,
                         rank=loop.rank, world_size=loop.world, skip=sums.steps):
        xb = loop.augment(batch[0]) if loop.augment is not None else batch[0]
        first = sums.seen == 0 and epoch == 1
        logits = _forward(loop.net, xb, batch[1] if first else None)
        if first:
            _check_classes(*loop.labels, logits.shape[-1])
        loss = loop.criterion(logits, batch)
        loop.opt.zero_grad(set_to_none=True)
        loss.backward()
        loop.opt.step()
        if loop.sched is not None:
            loop.sched.step()
        n = batch[1].numel()  # examples, or positions for sequence labels
        sums.losses.append(loss.detach())
        sums.sizes.append(n)
        if len(sums.losses) - sums.checked >= CHECK_EVERY:
            sums.checked = _check_losses(sums.losses, sums.checked, epoch, loop.steps, loop.lr, train)
        sums.correct += (logits.detach().argmax(-1) == batch[1]).sum()
        sums.labelled += int((batch[1] >= 0).sum()) if loop.has_unlabelled else n
        sums.seen += n
        loop.bar.update(1)
        done = (epoch - 1) * loop.steps + sums.steps
        if loop.val_every and loop.val is not None and done % loop.val_every == 0:
            scores = evaluate(loop.model, *loop.val)  # predict() puts the model back in training mode
            loop.evals.append({"step": done, "val_loss": scores["loss"], "val_acc": scores["acc"]})
        if save is not None and sums.steps < loop.steps:
            save(sums)
    _check_losses(sums.losses, sums.checked, epoch, loop.steps, loop.lr, train)
    loss_sum = (torch.stack(sums.losses).float() * torch.tensor(sums.sizes, device=loop.dev)).sum()
    counts = torch.tensor([float(sums.seen), float(sums.labelled)], device=loop.dev)
    totals = torch.cat([torch.stack([loss_sum, sums.correct.to(loss_sum.dtype)]), counts])
    if loop.world > 1:
        torch.distributed.all_reduce(totals)
    labelled = float(totals[3])  # no labelled example at all (pure soft-label KD): no training accuracy
    return {"train_loss": float(totals[0] / totals[2]), "train_acc": float(totals[1] / totals[3]) if labelled else None}


def _named(fn) -> str:
    """A name for a criterion or augmentation that is the same in every process (no memory address)."""
    if fn is None or hasattr(fn, "__qualname__"):
        return "none" if fn is None else f"{getattr(fn, '__module__', '')}.{fn.__qualname__}"
    return repr(fn)


def fit(model: nn.Module, train: Dataset | Sequence[torch.Tensor], val: Sequence[torch.Tensor] | None = None, *,
        epochs: int, lr: float = 1e-3, batch_size: int = 128, weight_decay: float = 0.0,
        optimizer: str = "adam", schedule: str | None = "cosine", criterion: Criterion | None = None,
        augment: Callable[[torch.Tensor], torch.Tensor] | None = None, seed: int = 0,
        device=None, quiet: bool = False, desc: str = "fit", checkpoint=None,
        checkpoint_seconds: float = 60.0, val_every: int | None = None) -> History:
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

    The data are checked once, on whole tensors, before the first step: NaN or infinite inputs,
    uint8 inputs and labels out of range are errors; a label of −1 (``kdlib.distill.UNLABELLED``)
    is allowed in ``train`` only with a criterion that skips it (not the default cross-entropy),
    and never in ``val``.  Safe conversions: integer labels become int64, floating inputs take the
    dtype of the model's weights (float64 → float32).  Numbers may be numpy scalars.  A loss that
    turns NaN or infinite stops the run with a ``FloatingPointError`` naming the epoch and step;
    it is checked every :data:`CHECK_EVERY` steps and at each epoch end, never after every step.

    ``checkpoint`` (a file path) makes the run resumable (:mod:`kdlib.resume`): its state is saved
    there every ``checkpoint_seconds`` and at each epoch end, a call with the same arguments after
    an interrupt carries on from the last save to the same final weights, and the file is removed
    when training ends.  ``History.resumed`` then says where it picked up.  One process only.
    ``val_every`` (steps) also scores ``val`` every so many steps into ``History.evals``.

    Introduced in lesson 1.
    """
    epochs, batch_size = whole_number(epochs, "epochs"), whole_number(batch_size, "batch_size")
    val_every = 0 if val_every is None else whole_number(val_every, "val_every")
    lr, weight_decay = finite_number(lr, "lr", strict=True), finite_number(weight_decay, "weight_decay")
    if schedule not in (None, "cosine"):
        raise ValueError(f"Unknown schedule {schedule!r}; use 'cosine' or None (constant lr).")
    train, val, labels, has_unlabelled = _checked_data(train, val, criterion)
    if val_every and val is None:
        raise ValueError("val_every needs validation data: pass val=(X, y) or a Dataset with a validation split.")
    _check_trainable(model)
    rank, world, dev, train, val = _placed(model, train, val, device)
    net, local_batch = _parallel(model, batch_size, world)
    generator = seed_everything(seed)
    opt = _make_optimizer(optimizer, model.parameters(), lr, weight_decay)
    n_usable = len(train[0]) if world == 1 else (len(train[0]) // batch_size) * batch_size
    steps = max(1, math.ceil(n_usable / batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps) if schedule == "cosine" else None
    bar = tqdm(total=epochs * steps, desc=desc, unit="step", disable=quiet or rank != 0, leave=True, dynamic_ncols=True)
    loop = _Loop(net=net, opt=opt, sched=sched, criterion=criterion or cross_entropy, augment=augment,
                 generator=generator, batch_size=local_batch, rank=rank, world=world, dev=dev, steps=steps, lr=lr,
                 labels=labels, has_unlabelled=has_unlabelled, bar=bar, model=model, val=val, val_every=val_every)
    history = History(evals=loop.evals)
    ckpt, start_epoch, sums, before = None, 1, None, {"seconds": 0.0, "epoch_seconds": 0.0}
    if checkpoint is not None:
        if world > 1:
            raise ValueError("fit(checkpoint=...) resumes a single process; under torchrun leave it out.")
        settings = {"epochs": epochs, "lr": lr, "batch_size": batch_size, "weight_decay": weight_decay,
                    "optimizer": optimizer, "schedule": schedule, "seed": seed, "steps": steps, "val_every": val_every,
                    "train": [[list(t.shape), str(t.dtype)] for t in train], "criterion": _named(criterion or cross_entropy),
                    "augment": _named(augment)}
        ckpt = TrainingCheckpoint(checkpoint, run_signature(model, settings), checkpoint_seconds)
        saved = ckpt.load()
        if saved is not None:
            TrainingCheckpoint.restore(saved, model=model, opt=opt, sched=sched)
            generator.set_state(saved["epoch_generator"])
            start_epoch, history.rows = saved["epoch"], list(saved["history"]["rows"])
            loop.evals[:] = saved["history"]["evals"]
            sums = EpochSums.restored(saved["sums"], dev) if saved["sums"]["sizes"] else None
            before = {"seconds": saved["seconds"], "epoch_seconds": saved["epoch_seconds"]}
            done = (start_epoch - 1) * steps + (sums.steps if sums else 0)
            history.resumed = {"epoch": start_epoch, "step": sums.steps if sums else 0, "steps_done": done,
                               "seconds_before": saved["seconds"]}
            bar.update(done)
    run_start = time.perf_counter()

    def save_state(epoch, epoch_generator, partial, epoch_seconds):
        """Checkpoint: ``epoch`` in progress, begun from ``epoch_generator``, ``partial.steps`` of it done."""
        ckpt.save(model=model, opt=opt, sched=sched, epoch=epoch, epoch_generator=epoch_generator, sums=partial,
                  history={"rows": history.rows, "evals": loop.evals},
                  seconds=before["seconds"] + time.perf_counter() - run_start, epoch_seconds=epoch_seconds)

    try:
        for epoch in range(start_epoch, epochs + 1):
            start, epoch_generator = time.perf_counter(), loop.generator.get_state()
            carried = before["epoch_seconds"] if epoch == start_epoch else 0.0

            def save(partial, epoch=epoch, epoch_generator=epoch_generator, start=start, carried=carried):
                if ckpt.due():
                    save_state(epoch, epoch_generator, partial, carried + time.perf_counter() - start)

            row = {"epoch": epoch, **_fit_epoch(loop, train, epoch, sums, save if ckpt else None)}
            sums = None
            if val is not None:
                scores = evaluate(model, *val)
                row.update(val_loss=scores["loss"], val_acc=scores["acc"])
            row["seconds"] = round(carried + time.perf_counter() - start, 3)
            history.rows.append(row)
            bar.set_postfix({k: f"{v:.3f}" for k, v in row.items() if k.endswith(("loss", "acc")) and v is not None})
            if ckpt is not None and epoch < epochs:  # the next epoch starts from here
                save_state(epoch + 1, loop.generator.get_state(), EpochSums(correct=torch.zeros((), dtype=torch.long)), 0.0)
    finally:
        bar.close()
    if ckpt is not None:
        ckpt.finish()
    model.eval()
    return history


def train_fresh(build: Callable[[], nn.Module], train, seed: int, **fit_kwargs) -> nn.Module:
    """A new model trained from scratch, reproducibly: seed torch, ``build()``, ``fit(..., seed=seed)``.

    Seeding before ``build()`` fixes the initial weights, ``seed`` in ``fit`` the batch order, so
    the same ``seed`` gives the same model.  Lessons 3–6 train every seeded run this way.

    Introduced in lesson 3.
    """
    torch.manual_seed(seed)
    model = build()
    fit(model, train, seed=seed, **fit_kwargs)
    return model
