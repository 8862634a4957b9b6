"""The lesson 8/9 recipes on a tiny synthetic corpus: teacher cache, transfer set, students by route."""
import pytest
import torch

from kdlib import experiments, text, zoo


@pytest.fixture()
def tiny(tmp_path, monkeypatch):
    """A TextDataset of a rule-based stream (vocabulary 11, context 16) with its zoo in a tmp folder."""
    monkeypatch.setenv("KDLIB_DATA", str(tmp_path))
    monkeypatch.setenv("KDLIB_SMOKE", "1")
    g = torch.Generator().manual_seed(0)
    stream = torch.cumsum(torch.randint(1, 3, (6000,), generator=g), 0) % 11  # next = +1 or +2
    splits = {"train": stream[:4000], "val": stream[4000:5000], "test": stream[5000:]}
    cut = {s: text.windows(t, 16) for s, t in splits.items()}
    return text.TextDataset(
        "shakespeare", *cut["train"], *cut["val"], *cut["test"], tuple("abcdefghijk"), "synthetic",
        info={"works": {"train": ["a"], "val": ["b"], "test": ["c"]}}, context=16,
        tokens_train=splits["train"], tokens_val=splits["val"], tokens_test=splits["test"])


def test_teacher_is_trained_once_then_loaded(tiny):
    first = experiments.lm_teacher(tiny, quiet=True)
    assert not first.cached and first.meta["params"] > 0
    assert first.meta["test_bpc"] < 3.46  # log2(11): it learnt something in one smoke pass
    assert "estimate" in first.meta["energy_source"] or "counter" in first.meta["energy_source"]
    again = experiments.lm_teacher(tiny, quiet=True)
    assert again.cached and again.meta == first.meta


def test_transfer_topk_dense_and_generated(tiny):
    teacher = experiments.lm_teacher(tiny, quiet=True).model
    tr = experiments.LMTransfer(tiny, teacher)
    values, ids = tr.topk()
    assert values.shape == (len(tiny.X_train), 16, 11) and ids.dtype == torch.uint8
    assert tr.topk(3)[0].shape[-1] == 3 and tr.costs["teacher top-k logits"]["bytes"] == values.numel() * 3
    from kdlib.train import predict

    assert torch.allclose(tr.dense().float(), predict(teacher, tr.X), atol=2e-2)  # float16 round trip
    X, y = tr.generated()
    assert X.shape == y.shape == tr.X.shape and torch.equal(X[:, 1:], y[:, :-1]) and torch.equal(X[:, 0], tr.X[:, 0])
    assert tr.generated()[0] is X  # written once, then reused
    with pytest.raises(ValueError, match="already written"):
        tr.generated(temperature=0.5)


def test_students_by_route_are_cached_under_their_config(tiny):
    teacher = experiments.lm_teacher(tiny, quiet=True).model
    tr = experiments.LMTransfer(tiny, teacher)
    got = {}
    for route, kw in [("scratch", {}), ("kd", {"k": 4}), ("kd", {"direction": "reverse"}), ("seqkd", {}),
                      ("budget", {"epochs": 2})]:
        entry = experiments.lm_student(tiny, "40k", route, 0, tr, **kw)
        assert not entry.cached and entry.meta["test_bpc"] > 0
        got[route, tuple(kw.items())] = entry
    assert got["kd", (("k", 4),)].meta["teacher_joules"] > 0 and got["scratch", ()].meta["teacher_joules"] == 0
    assert got["budget", (("epochs", 2),)].meta["tokens_seen"] == 2 * tiny.y_train.numel()
    assert experiments.lm_student(tiny, "40k", "kd", 0, tr, k=4).cached
    assert not experiments.lm_student(tiny, "40k", "kd", 0, tr, k=5).cached  # another k is another model
    assert len(list(zoo.zoo_dir().glob("lm-40k-kd-*.pt"))) == 3


def test_bad_routes_are_explained(tiny):
    with pytest.raises(ValueError, match="Unknown route"):
        experiments.lm_student(tiny, "40k", "magic", 0)
    with pytest.raises(ValueError, match="needs transfer"):
        experiments.lm_student(tiny, "40k", "kd", 0)
    with pytest.raises(ValueError, match="size"):
        experiments.build_lm("huge", tiny)
    with pytest.raises(ValueError, match="student size"):
        experiments.lm_student(tiny, "huge", "scratch", 0)
