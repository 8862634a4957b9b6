"""Where and how big things run: device choice, seeding, threads and the smoke size.

Everything in the course asks this module, and only this module, which device to use and how
large a run should be, so that a lesson runs unchanged on a laptop CPU, a GPU, or in the test
suite's smoke size.  Introduced in lesson 0 (setup check).
"""
from __future__ import annotations

import os
import random
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from .validate import whole_number

#: Environment variable that switches every lesson, dataset and training run to the smoke size.
SMOKE_ENV = "KDLIB_SMOKE"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def is_smoke() -> bool:
    """True when ``KDLIB_SMOKE`` asks for the smoke size (``1``/``true``/``yes``/``on``).

    The smoke size runs the very same cells and functions on a slice of the data and a single
    epoch, so that the notebook tests stay fast.  Any other value is an error rather than a guess.
    """
    value = os.environ.get(SMOKE_ENV, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(
        f"{SMOKE_ENV}={os.environ[SMOKE_ENV]!r} is not understood; "
        f"set it to 1 for the smoke size or unset it (or 0) for the full size."
    )


def sized(full, smoke):
    """Return ``smoke`` in the smoke size and ``full`` otherwise.

    Lessons write ``EPOCHS = kd.sized(6, 1)`` once; the rest of the code is identical in both sizes.

    Introduced in lesson 0.
    """
    return smoke if is_smoke() else full


@dataclass(frozen=True)
class DeviceChoice:
    """The device kdlib will use and the reason it was chosen."""

    device: torch.device
    reason: str

    def __str__(self) -> str:
        return f"{self.device} ({self.reason})"


_KNOWN_TYPES = ("cpu", "cuda", "mps")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def choose_device(preferred: str | torch.device | None = None) -> DeviceChoice:
    """Pick the device: the one asked for, else ``KDLIB_DEVICE``, else cuda → mps → cpu.

    This is the one place in kdlib that decides where tensors live; nothing else picks a
    GPU by hand.  An unknown or unavailable device is a ``ValueError`` that says what exists.
    """
    source = "asked for"
    if preferred is None or preferred == "auto":
        env = os.environ.get("KDLIB_DEVICE", "").strip()
        if env and env != "auto":
            preferred, source = env, "from KDLIB_DEVICE"
    if preferred is None or preferred == "auto":
        if torch.cuda.is_available():
            return DeviceChoice(torch.device("cuda"), f"CUDA GPU found: {torch.cuda.get_device_name(0)}")
        if _mps_available():
            return DeviceChoice(torch.device("mps"), "Apple GPU (MPS) found")
        return DeviceChoice(torch.device("cpu"), "no CUDA or MPS GPU found")
    try:
        device = torch.device(preferred)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"Unknown device {preferred!r}: use one of 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'."
        ) from err
    if device.type not in _KNOWN_TYPES:
        raise ValueError(
            f"Unknown device {preferred!r}: kdlib runs on 'cpu', 'cuda' or 'mps' (or 'auto')."
        )
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"Device {preferred!r} was requested but torch sees no CUDA GPU; "
                "use 'auto' or 'cpu', or install a CUDA build of torch."
            )
        index = device.index or 0
        if index >= torch.cuda.device_count():
            raise ValueError(
                f"Device {preferred!r} does not exist: torch sees {torch.cuda.device_count()} CUDA GPU(s)."
            )
    if device.type == "mps" and not _mps_available():
        raise ValueError(f"Device {preferred!r} was requested but MPS is not available here; use 'auto' or 'cpu'.")
    return DeviceChoice(device, source)


def device(preferred: str | torch.device | None = None) -> torch.device:
    """Shorthand for ``choose_device(preferred).device``.

    Introduced in lesson 0.
    """
    return choose_device(preferred).device


def synchronize(device=None) -> None:
    """Wait until every queued kernel on ``device`` (default: kdlib's) has finished.

    GPU work runs asynchronously: a timer or an energy counter read right after a CUDA or MPS
    call would stop before the work does.  A no-op on the CPU.  ``perf`` and ``energy`` call it
    before every clock or counter reading.
    """
    dev = device if isinstance(device, torch.device) else choose_device(device).device
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    elif dev.type == "mps":
        torch.mps.synchronize()


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (every device) from one integer; return a CPU generator.

    The single place where runs are made repeatable.  The returned generator is what kdlib's
    batching uses for shuffling, so a run depends on ``seed`` and nothing else.
    """
    seed = whole_number(seed, "seed", low=None, error=TypeError)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


#: Environment variable overriding the threads of batch-1 writing (see :func:`thread_policy`).
WRITING_THREADS_ENV = "KDLIB_WRITING_THREADS"


def thread_policy() -> dict:
    """kdlib's thread counts: ``training`` (throughput-bound work) and ``writing`` (one sequence, batch 1).

    * training, batched scoring and single queries use torch's thread count (by default one per
      core; set it with ``OMP_NUM_THREADS`` or ``torch.set_num_threads``);
    * writing one sequence a character at a time (:func:`kdlib.lm.generate` with one prompt) uses
      **one thread** (``KDLIB_WRITING_THREADS`` to change): hundreds of dependent steps, each too
      small to split, so a second thread adds only synchronisation — and on a busy machine every
      step waits for a free core.

    Measured on 2 cores with ``python -m kdlib bench`` (the LM teacher writing 200 characters):
    one thread writes at 0.8–1.0× the speed of two on an idle machine and 2.7–3.4× faster with a
    second process busy — the policy gives up a little idle speed for never being slowed several-fold;
    one Fashion-MNIST query (a 9 MFLOP CNN) is ~1.4× faster on two threads idle and no slower loaded,
    so queries keep the default.  ``doctor`` prints the policy.  A bad environment value is an error.
    """
    raw = os.environ.get(WRITING_THREADS_ENV, "").strip()
    writing = 1
    if raw:
        try:
            writing = int(raw)
        except ValueError:
            writing = 0
        if writing < 1:
            raise ValueError(f"{WRITING_THREADS_ENV}={raw!r} must be a whole number of threads ≥ 1 (or unset: 1).")
    return {"training": torch.get_num_threads(), "writing": writing}


@contextmanager
def use_threads(n: int):
    """Run the block with ``torch.set_num_threads(n)``, then restore the previous thread count."""
    n = whole_number(n, "threads")
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def writing_threads():
    """``use_threads`` with the ``writing`` count of :func:`thread_policy` (one sequence, batch 1)."""
    return use_threads(thread_policy()["writing"])
