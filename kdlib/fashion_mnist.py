"""Fashion-MNIST's four files: where they are found, how they are checked and fetched, and loading them.

Zalando's Fashion-MNIST (Xiao et al. 2017): 60k train / 10k test 28×28 greyscale images of 10
kinds of clothing.  The files are looked for in ``data/fashion-mnist/`` (:func:`kdlib.cache.data_dir`),
then where Debian's ``dataset-fashion-mnist`` package installs them, and are downloaded with
torchvision only when asked (``python -m kdlib data fetch``).  Every file is checked against the
published MD5 sums.  :func:`read_arrays` gives the files' raw contents (what the benchmark feeds
the plain-PyTorch baselines); :func:`load_fashion_mnist` the course's :class:`~kdlib.dataset.Dataset`.
"""
from __future__ import annotations

import gzip
import shutil
import tempfile
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

import numpy as np

from .cache import CorruptDataError, DataNotFoundError, data_dir, fetch_if_missing, md5
from .dataset import Dataset, from_arrays, split_train_val

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


def fashion_search_path() -> list[tuple[Path, str]]:
    """The folders searched for Fashion-MNIST, in order, each with a label for reports."""
    return [
        (data_dir() / "fashion-mnist", "kdlib data cache"),
        (DEBIAN_FASHION_DIR, "Debian package dataset-fashion-mnist"),
    ]


def verify_file(path: Path, spec: IdxFile) -> bytes:
    """Check one Fashion-MNIST file against its published MD5s; return the decompressed bytes.

    Raises :class:`~kdlib.cache.CorruptDataError` naming the file when it is truncated, not gzip,
    or its content differs from the published data.
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
    if md5(packed) != spec.gz_md5 and md5(raw) != spec.raw_md5:
        raise CorruptDataError(
            f"{path} does not match the published Fashion-MNIST checksum "
            f"(expected MD5 {spec.gz_md5} for the .gz or {spec.raw_md5} for its content); "
            "delete it and run `python -m kdlib data fetch` again."
        )
    return raw


def locate_fashion_mnist() -> tuple[Path, str]:
    """Return the first folder holding all four Fashion-MNIST files, with its label.

    Raises :class:`~kdlib.cache.DataNotFoundError` that names all three ways to get the data.
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


def ensure() -> None:
    """Leave the files alone where :func:`locate_fashion_mnist` finds them, else download them, saying so."""
    fetch_if_missing(locate_fashion_mnist, download_fashion_mnist,
                     "Fashion-MNIST was not found here; downloading it with torchvision (about 30 MB)...")


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
def read_arrays() -> tuple[MappingProxyType, str]:
    """The four verified files as read-only uint8 arrays, and where they were found.

    Keys ``train_images`` (60000, 28, 28), ``train_labels`` (60000,), ``t10k_images`` (10000, 28, 28)
    and ``t10k_labels`` (10000,): the published data, unsplit, unscaled.  Read once and kept
    (``read_arrays.cache_clear()`` forgets them, e.g. after the files change).
    """
    folder, label = locate_fashion_mnist()
    arrays = {}
    for spec in FASHION_FILES:
        raw = verify_file(folder / spec.name, spec)
        arrays[spec.name.split("-")[0] + ("_images" if "images" in spec.name else "_labels")] = (
            _parse_idx(raw, spec, folder / spec.name)
        )
    return MappingProxyType(arrays), f"{label} ({folder})"


def load_fashion_mnist(*, val_size: int | None = None, split_seed: int = 0, device=None,
                       smoke: bool | None = None) -> Dataset:
    """Fashion-MNIST as a :class:`~kdlib.dataset.Dataset` of ``(N, 1, 28, 28)`` images scaled by 1/255.

    val_size: training images held out for validation (default 5,000); the t10k test file is untouched.
    The other options are :func:`kdlib.data.load`'s.
    """
    arrays, source = read_arrays()
    X_tr, y_tr, X_va, y_va = split_train_val(arrays["train_images"], arrays["train_labels"],
                                             5000 if val_size is None else val_size, split_seed)
    return from_arrays("fashion_mnist", (X_tr[:, None], y_tr), (X_va[:, None], y_va),
                       (arrays["t10k_images"][:, None], arrays["t10k_labels"]), FASHION_CLASSES, source,
                       scale=255.0, smoke=smoke, device=device)
