"""The trained-model cache: load a model when a valid checkpoint exists, else train and save it.

A checkpoint is keyed by a name and by the configuration that produced it: change the config
(architecture, epochs, seed, smoke size...) and a different file is used, so stale weights are
never loaded.  Writes are atomic (temporary file in the same folder, then ``os.replace``; a
temporary file left by a killed save is removed by a later save once it is an hour old), loads
use ``torch.load(weights_only=True)``, and an unreadable or corrupted file is retrained, with a
warning, instead of crashing or half-loading.  Each checkpoint stores a SHA-256 ``digest`` of its
weights, checked on load, so a file whose bytes changed after saving is retrained too — as is a
file without a digest (the digest is required) and one whose weights hold NaN or infinities.
Files are written with the permissions the umask allows (0644 under the usual 022), so a zoo an
instructor prepares can be shared read-only: loading never writes, and a run that finds the zoo
read-only says so *before* it trains, not after.
Introduced in lesson 1 (the cached teacher).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .cache import data_dir

FORMAT = 1  # bump when the checkpoint layout changes; old files are then retrained
STALE_TMP_SECONDS = 3600  # a save's temporary file older than this was left by a killed process


@dataclass
class Entry:
    """What :func:`load_or_train` returns: the model, the metadata saved with it, whether it came
    from the cache (``cached``) or was trained now, and ``digest``: the SHA-256 of its weights
    (:func:`digest`), which names exactly these weights where a later model is trained from them."""

    model: nn.Module
    meta: dict
    cached: bool
    path: Path
    digest: str


#: Environment variable naming the zoo folder, e.g. a class's shared, read-only zoo.
ZOO_ENV = "KDLIB_ZOO"


def zoo_dir() -> Path:
    """Folder of cached checkpoints: ``$KDLIB_ZOO``, else ``<data dir>/zoo``.

    A class can share one prepared zoo: the instructor runs the course once (``make course``) and
    points everyone's ``KDLIB_ZOO`` at a read-only copy of its ``zoo`` folder.  Every model in it
    loads; a model that is not there is refused before training (nothing can be saved there) with a
    message saying so.
    """
    env = os.environ.get(ZOO_ENV, "").strip()
    return Path(env).expanduser() if env else data_dir() / "zoo"


def config_key(config: dict) -> str:
    """A 12-hex-digit SHA-256 of the config as canonical JSON (sorted keys)."""
    try:
        text = json.dumps({"format": FORMAT, **config}, sort_keys=True, allow_nan=False)
    except TypeError as err:
        raise TypeError(f"A zoo config must be JSON-serialisable (numbers, strings, lists, dicts): {err}") from err
    except ValueError as err:  # NaN never equals itself: such a key would never match its own checkpoint
        raise ValueError(f"A zoo config may not hold NaN or infinite numbers (the cache could never match it); "
                         f"got {config!r}.") from err
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def checkpoint_path(name: str, config: dict) -> Path:
    """Where the checkpoint of ``name`` trained with ``config`` lives."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name or ""):
        raise ValueError(f"Zoo names use letters, digits, '.', '_' and '-' only; got {name!r}.")
    return zoo_dir() / f"{name}-{config_key(config)}.pt"


def digest(state_dict: dict) -> str:
    """SHA-256 over a state dict's tensors, in sorted key order: name, dtype, shape, then raw bytes."""
    h = hashlib.sha256()
    for key in sorted(state_dict):
        t = state_dict[key].detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _remove_stale_temporaries(folder: Path) -> None:
    """Delete temporary files of saves killed mid-way (an hour old: a live save is never that slow)."""
    for tmp in folder.glob(".*.tmp"):
        try:
            if time.time() - tmp.stat().st_mtime > STALE_TMP_SECONDS:
                tmp.unlink()
        except OSError:  # gone already, or not ours to remove
            pass


def _umask() -> int:
    """The process's umask (read by setting it and putting it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def save_atomic(obj, path: Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename it into place.

    Stale temporary files of earlier, killed saves in the same folder are removed first.
    """
    _write_atomic(Path(path), lambda handle: torch.save(obj, handle))


def save_json(obj, path: Path) -> None:
    """``obj`` as JSON (sorted keys) at ``path``, written like :func:`save_atomic`: a temporary file, then a rename."""
    text = json.dumps(obj, sort_keys=True, allow_nan=False).encode()
    _write_atomic(Path(path), lambda handle: handle.write(text))


def _write_atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a saved file follows the umask like any other
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _try_load(path: Path, config: dict, model: nn.Module) -> tuple[dict, str] | None:
    """``(meta, digest)`` of the valid checkpoint at ``path``, its weights loaded into ``model``; else None."""
    if not path.is_file():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if payload.get("config") != json.loads(json.dumps(config)):
            raise ValueError("stored config differs from the requested one")
        if "digest" not in payload:
            raise ValueError("it has no SHA-256 digest of its weights, so they cannot be checked")
        if digest(payload["state_dict"]) != payload["digest"]:
            raise ValueError("its weights do not match the SHA-256 digest saved with them: the file changed "
                             "after it was saved")
        bad = [k for k, t in payload["state_dict"].items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
        if bad:
            raise ValueError(f"its weights hold NaN or infinite values ({', '.join(bad[:3])})")
        model.load_state_dict(payload["state_dict"])
    except Exception as err:  # corrupted, truncated, foreign, unchecked or broken: retrain
        warnings.warn(f"Ignoring checkpoint {path} ({type(err).__name__}: {err}); training again.", stacklevel=3)
        return None
    return dict(payload.get("meta", {})), payload["digest"]


def _check_writable(path: Path) -> None:
    """Fail before training, not after, when the trained model could not be saved at ``path``."""
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(prefix=".write-check.", dir=folder):
            pass
    except OSError as err:
        raise PermissionError(f"The zoo folder {folder} is not writable ({err.strerror or err}), so a model trained "
                              f"now could not be saved. A shared zoo is read-only by design: this model is not in "
                              f"it (another setting, seed or size?). Ask for it to be added, or set {ZOO_ENV} to a "
                              "folder of your own (copy the shared models there first to keep loading them).") from err


def load_or_train(name: str, config: dict, build: Callable[[], nn.Module],
                  train: Callable[[nn.Module], dict | None], *, retrain: bool = False) -> Entry:
    """Return the model ``name`` for ``config``: from the cache when valid, else trained now.

    ``build()`` makes a fresh, untrained model; ``train(model)`` trains it in place and returns
    a dict of metadata worth keeping (accuracy, seconds, energy...), which is saved with the
    weights and returned as ``Entry.meta`` on later loads.  ``retrain=True`` ignores the cache.
    Something other than a file at the checkpoint's path (a folder, say) is an error before any
    training, since the result could not be saved there.
    """
    path = checkpoint_path(name, config)
    if path.exists() and not path.is_file():
        raise FileExistsError(f"{path} exists but is not a file (a folder?), so the trained model could not be "
                              "saved there; move or delete it and run again.")
    model = build()
    if not retrain:
        loaded = _try_load(path, config, model)
        if loaded is not None:
            meta, weights = loaded
            model.eval()
            return Entry(model, meta, True, path, weights)
    _check_writable(path)
    start = time.perf_counter()
    returned = train(model)
    if returned is not None and not isinstance(returned, dict):  # the training is done: keep it, say what was odd
        rows = getattr(returned, "rows", None)
        warnings.warn(f"The train function of zoo entry {name!r} should train the model in place and return a dict of "
                      f"metadata (or None), not a {type(returned).__name__}; the model is saved "
                      + ("with that History as meta['history']." if rows is not None else "without metadata."),
                      stacklevel=2)
        returned = {"history": rows} if rows is not None else None
    meta = dict(returned or {})
    meta.setdefault("train_seconds", round(time.perf_counter() - start, 2))
    # Plain JSON types only, so that weights_only=True can load them back (numpy floats -> float).
    meta = json.loads(json.dumps(meta, default=lambda v: v.item() if hasattr(v, "item") else str(v)))
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    weights = digest(state)
    save_atomic({"config": config, "meta": meta, "state_dict": state, "digest": weights}, path)
    model.eval()
    return Entry(model, meta, False, path, weights)
