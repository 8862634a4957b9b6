"""Training that survives an interrupt: ``fit``'s own state, saved as it goes and resumed (lesson 8).

A run of many minutes (lesson 8's language-model teacher) can be killed by a cell timeout, a
closed laptop or a busy machine.  With ``fit(..., checkpoint=path)`` the loop writes its whole
state to ``path`` every ``checkpoint_seconds`` and at every epoch end: the weights, the
optimiser's moments, the schedule, torch's random state, the batch-order generator as it was
when the epoch in progress began, how many steps of that epoch are done, that epoch's per-step
losses so far, and the history.  Started again with the same arguments, ``fit`` restores all of
it, draws the same permutation for the interrupted epoch, skips the batches already taken and
goes on — so the resumed run ends with **the same weights, bit for bit**, as one that was never
stopped (on the same machine and thread count).  The file is removed once training finishes.

A checkpoint belongs to one run: its *signature* is a hash of fit's settings, the sizes of the
training tensors and the SHA-256 of the model's initial weights.  A file whose signature differs
is refused with an error naming it (never silently resumed into another run); an unreadable file
is ignored with a warning and training starts over.
"""
from __future__ import annotations

import hashlib
import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .validate import finite_number

FORMAT = 2  # bump when the saved layout changes


def run_signature(model: nn.Module, settings: dict) -> str:
    """16 hex digits of SHA-256 over ``settings`` (canonical JSON) and the model's current weights."""
    from .zoo import digest

    h = hashlib.sha256(json.dumps({"format": FORMAT, **settings}, sort_keys=True, default=str).encode())
    h.update(digest(model.state_dict()).encode())
    return h.hexdigest()[:16]


@dataclass
class EpochSums:
    """What one epoch has accumulated so far: per-step losses and sizes, correct and seen counts."""

    losses: list = field(default_factory=list)   # 0-d loss tensors, kept on the device until a check
    sizes: list = field(default_factory=list)    # examples (or positions) per step
    checked: int = 0                             # how many losses are known to be finite
    correct: torch.Tensor | None = None          # long, on the device
    seen: int = 0
    labelled: int = 0

    @property
    def steps(self) -> int:
        return len(self.losses)

    def state(self) -> dict:
        losses = torch.stack(self.losses).detach().cpu() if self.losses else torch.zeros(0)
        return {"losses": losses, "sizes": list(self.sizes), "correct": int(self.correct),
                "seen": self.seen, "labelled": self.labelled}

    @classmethod
    def restored(cls, state: dict, device) -> "EpochSums":
        losses = [v.to(device) for v in state["losses"]]
        return cls(losses, list(state["sizes"]), 0,  # checked again: a save may hold losses not yet checked
                   torch.tensor(state["correct"], device=device, dtype=torch.long), state["seen"], state["labelled"])


class TrainingCheckpoint:
    """The resumable state of one ``fit`` run, at ``path``, saved at most every ``every_seconds``.
    """

    def __init__(self, path, signature: str, every_seconds: float = 60.0):
        self.path = Path(path)
        self.signature = signature
        self.every = finite_number(every_seconds, "checkpoint_seconds", strict=True)
        self.last = time.perf_counter()
        self.saves = 0

    def load(self) -> dict | None:
        """The saved state of this run, or None when there is none (or it cannot be read: a warning)."""
        if not self.path.exists():
            return None
        if not self.path.is_file():
            raise FileExistsError(f"{self.path} exists but is not a file; move it away to checkpoint there.")
        try:
            payload = torch.load(self.path, map_location="cpu", weights_only=True)
            found = payload["signature"], payload["format"]
        except Exception as err:  # truncated or foreign: start over, say so
            warnings.warn(f"Ignoring the training checkpoint {self.path} ({type(err).__name__}: {err}); "
                          "training from the start.", stacklevel=3)
            return None
        if found != (self.signature, FORMAT):
            raise ValueError(f"{self.path} holds the state of another training run (signature {found[0]}, this run "
                             f"is {self.signature}: other settings, data sizes or initial weights). Delete it to "
                             "start this run, or call fit with the arguments that run had to resume it.")
        return payload

    def due(self) -> bool:
        return time.perf_counter() - self.last >= self.every

    def save(self, *, model, opt, sched, epoch: int, epoch_generator: torch.Tensor, sums: EpochSums,
             history: dict, seconds: float, epoch_seconds: float) -> None:
        """Write the state: ``epoch`` in progress with ``sums.steps`` of its steps done (atomically)."""
        from .zoo import save_atomic

        payload = {"format": FORMAT, "signature": self.signature, "epoch": epoch, "epoch_generator": epoch_generator,
                   "sums": sums.state(), "history": history, "seconds": seconds, "epoch_seconds": epoch_seconds,
                   "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                   "optimizer": opt.state_dict(), "schedule": None if sched is None else sched.state_dict(),
                   "torch_rng": torch.get_rng_state(),
                   "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else []}
        save_atomic(payload, self.path)
        self.last = time.perf_counter()
        self.saves += 1

    @staticmethod
    def restore(payload: dict, *, model, opt, sched) -> None:
        """Put the saved weights, optimiser, schedule and random state back in place."""
        model.load_state_dict(payload["model"])
        opt.load_state_dict(payload["optimizer"])
        if sched is not None and payload["schedule"] is not None:
            sched.load_state_dict(payload["schedule"])
        torch.set_rng_state(payload["torch_rng"])
        if payload["cuda_rng"]:
            torch.cuda.set_rng_state_all(payload["cuda_rng"])

    def finish(self) -> None:
        """The run is complete: its checkpoint is no longer needed."""
        self.path.unlink(missing_ok=True)
