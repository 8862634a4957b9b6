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
