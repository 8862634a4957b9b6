import pytest
import torch

import kdlib as kd
from kdlib import zoo


def _trainer(counter):
    def train(model):
        counter.append(1)
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(0.5)
        return {"acc": torch.tensor(0.9).item(), "note": "trained"}
    return train


def build():
    return kd.mlp(4, (3,), 2)


def test_trains_once_then_loads(data_home):
    calls = []
    first = zoo.load_or_train("tiny", {"epochs": 1}, build, _trainer(calls))
    second = zoo.load_or_train("tiny", {"epochs": 1}, build, _trainer(calls))
    assert calls == [1]
    assert not first.cached and second.cached
    assert second.meta["acc"] == pytest.approx(0.9) and "train_seconds" in second.meta
    assert all(torch.all(p == 0.5) for p in second.model.parameters())
    assert first.path == second.path and first.path.parent == data_home / "zoo"
    assert list(first.path.parent.glob("*.tmp")) == []
    assert first.digest == second.digest == zoo.digest(second.model.state_dict())  # names these weights


def test_changed_config_retrains(data_home):
    calls = []
    zoo.load_or_train("tiny", {"epochs": 1}, build, _trainer(calls))
    other = zoo.load_or_train("tiny", {"epochs": 2}, build, _trainer(calls))
    assert calls == [1, 1] and not other.cached


@pytest.mark.parametrize("damage", [b"", b"garbage", None])
def test_corrupted_checkpoint_retrains(data_home, damage):
    calls = []
    entry = zoo.load_or_train("tiny", {"e": 1}, build, _trainer(calls))
    blob = entry.path.read_bytes()
    entry.path.write_bytes(blob[: len(blob) // 2] if damage is None else damage)
    with pytest.warns(UserWarning, match="Ignoring checkpoint"):
        again = zoo.load_or_train("tiny", {"e": 1}, build, _trainer(calls))
    assert calls == [1, 1] and not again.cached
    # and the rewritten file is good again
    assert zoo.load_or_train("tiny", {"e": 1}, build, _trainer(calls)).cached


def test_checkpoint_of_another_architecture_retrains(data_home):
    calls = []
    zoo.load_or_train("tiny", {"e": 1}, build, _trainer(calls))
    with pytest.warns(UserWarning):
        entry = zoo.load_or_train("tiny", {"e": 1}, lambda: kd.mlp(4, (7,), 2), _trainer(calls))
    assert not entry.cached


def test_failed_write_leaves_nothing(data_home, monkeypatch):
    def boom(obj, handle):
        handle.write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        zoo.load_or_train("tiny", {"e": 1}, build, _trainer([]))
    assert list((data_home / "zoo").iterdir()) == []


def test_retrain_flag(data_home):
    calls = []
    zoo.load_or_train("tiny", {"e": 1}, build, _trainer(calls))
    zoo.load_or_train("tiny", {"e": 1}, build, _trainer(calls), retrain=True)
    assert calls == [1, 1]


def test_bad_name_and_config(data_home):
    with pytest.raises(ValueError, match="Zoo names"):
        zoo.checkpoint_path("../escape", {})
    with pytest.raises(TypeError, match="JSON"):
        zoo.checkpoint_path("ok", {"f": object()})


# --- hardening (issue 12): changed bytes, legacy files, folders in the way, leftover temporaries ---

def test_a_flipped_byte_in_the_weights_retrains(data_home):
    calls = []
    entry = zoo.load_or_train("tiny", {"e": 1}, build, _trainer(calls))
    blob = bytearray(entry.path.read_bytes())
    at = blob.index(b"\x00\x00\x00\x3f")  # the first weight, 0.5 as float32 little-endian
    blob[at + 3] = 0x3E  # now 0.125: a valid file whose weights changed
    entry.path.write_bytes(bytes(blob))
    with pytest.warns(UserWarning, match="do not match the SHA-256 digest saved with them"):
        again = zoo.load_or_train("tiny", {"e": 1}, build, _trainer(calls))
    assert calls == [1, 1] and not again.cached
    assert all(torch.all(p == 0.5) for p in again.model.parameters())


def test_a_folder_at_the_checkpoint_path_fails_before_training(data_home):
    calls = []
    zoo.checkpoint_path("tiny", {"e": 1}).mkdir(parents=True)
    with pytest.raises(FileExistsError, match="exists but is not a file"):
        zoo.load_or_train("tiny", {"e": 1}, build, _trainer(calls))
    assert calls == []


def test_temporaries_of_killed_saves_do_not_accumulate(data_home):
    import os
    import time

    folder = data_home / "zoo"
    folder.mkdir(parents=True)
    old, fresh = folder / ".tiny-0.pt.abc.tmp", folder / ".tiny-0.pt.def.tmp"  # a killed save; one in progress
    for tmp in (old, fresh):
        tmp.write_bytes(b"half")
    past = time.time() - 2 * zoo.STALE_TMP_SECONDS
    os.utime(old, (past, past))
    zoo.load_or_train("tiny", {"e": 1}, build, _trainer([]))
    assert not old.exists() and fresh.exists()


# --- hardening II (issue 20): required digests, finite weights, umask, read-only zoos, bad train() results ---


def test_a_checkpoint_without_digest_or_with_nan_weights_is_retrained(data_home):
    calls = []
    entry = zoo.load_or_train("tiny", {"e": 1}, build, _trainer(calls))
    payload = torch.load(entry.path, weights_only=True)
    del payload["digest"]
    torch.save(payload, entry.path)
    with pytest.warns(UserWarning, match="no SHA-256 digest"):
        zoo.load_or_train("tiny", {"e": 1}, build, _trainer(calls))
    assert calls == [1, 1]
    payload = torch.load(entry.path, weights_only=True)
    name = next(iter(payload["state_dict"]))
    payload["state_dict"][name] = torch.full_like(payload["state_dict"][name], float("nan"))
    payload["digest"] = zoo.digest(payload["state_dict"])  # a consistent digest of broken weights
    torch.save(payload, entry.path)
    with pytest.warns(UserWarning, match="NaN or infinite"):
        again = zoo.load_or_train("tiny", {"e": 1}, build, _trainer(calls))
    assert calls == [1, 1, 1] and all(torch.isfinite(p).all() for p in again.model.parameters())


def test_checkpoints_follow_the_umask_and_a_read_only_zoo_still_loads(data_home, monkeypatch, tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        entry = zoo.load_or_train("tiny", {"e": 1}, build, _trainer([]))
    finally:
        os.umask(old)
    assert stat.S_IMODE(entry.path.stat().st_mode) == 0o644
    shared = tmp_path / "shared-zoo"
    shared.mkdir()
    os.replace(entry.path, shared / entry.path.name)
    monkeypatch.setenv("KDLIB_ZOO", str(shared))
    calls = []
    shared.chmod(0o555)
    try:
        if os.access(shared, os.W_OK):  # root ignores permissions: simulate the refusal instead
            monkeypatch.setattr(zoo.tempfile, "NamedTemporaryFile", _refuse)
        loaded = zoo.load_or_train("tiny", {"e": 1}, build, _trainer(calls))
        assert loaded.cached and calls == []
        with pytest.raises(PermissionError, match="not writable.*KDLIB_ZOO"):
            zoo.load_or_train("tiny", {"e": 2}, build, _trainer(calls))
        assert calls == []  # refused before any training
    finally:
        shared.chmod(0o755)


def _refuse(*args, **kwargs):
    raise PermissionError(13, "Permission denied")


def test_a_train_function_that_returns_no_dict_keeps_its_training(data_home):
    with pytest.warns(UserWarning, match="return a dict of metadata"):
        entry = zoo.load_or_train("tiny", {"e": 1}, build, lambda model: 0.93)
    assert entry.path.exists() and "train_seconds" in entry.meta  # the minutes of training are not lost
    history = kd.fit(build(), (torch.randn(8, 4), torch.randint(0, 2, (8,))), epochs=1, quiet=True)
    with pytest.warns(UserWarning, match="History as meta"):
        entry = zoo.load_or_train("tiny", {"e": 2}, build, lambda model: history)
    assert entry.meta["history"] == history.rows


def test_a_nan_in_a_config_is_refused_not_retrained_every_time(data_home):
    with pytest.raises(ValueError, match="NaN or infinite"):
        zoo.load_or_train("tiny", {"lr": float("nan")}, build, _trainer([]))
    with pytest.raises(ValueError, match="NaN or infinite"):
        zoo.config_key({"T": float("inf")})
