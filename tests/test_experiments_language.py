"""The lesson 8/9 recipes on a tiny synthetic corpus: teacher cache, transfer set, students by route."""
import json
from types import SimpleNamespace

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


# --- the cache keys of the students: every input's identity, the epochs run, the cache kind and k ---------------

def _untrained_teacher(tiny, seed):
    torch.manual_seed(seed)
    return experiments.build_lm("teacher", tiny)


def test_a_students_key_names_its_teacher_transfer_set_and_epochs(tiny):
    a, b = _untrained_teacher(tiny, 0), _untrained_teacher(tiny, 1)
    tr = experiments.LMTransfer(tiny, a)
    spec = experiments.LMStudent("40k", "kd", 0)
    key = spec.key(tiny, spec.inputs(tiny, tr))
    assert spec.key(tiny, spec.inputs(tiny, experiments.LMTransfer(tiny, a))) == key   # the same inputs again
    assert spec.key(tiny, spec.inputs(tiny, experiments.LMTransfer(tiny, b))) != key   # another teacher's weights
    assert spec.key(tiny, spec.inputs(tiny, experiments.LMTransfer(tiny, a, seed=1))) != key   # other windows
    fewer = experiments.LMTransfer(tiny, a)
    fewer.X, fewer.y = tr.X[:100], tr.y[:100]
    assert fewer.identity() == {"seed": 0, "windows": 100} and spec.key(tiny, spec.inputs(tiny, fewer)) != key
    for other in ({"epochs": 2}, {"k": 4}, {"k": 5}, {"direction": "reverse"}, {"T": 2.0}, {"alpha": 0.5}, {"seed": 1}):
        changed = experiments.LMStudent("40k", "kd", **{"seed": 0, **other})
        assert changed.key(tiny, changed.inputs(tiny, tr)) != key, other
    config = spec.config(tiny, spec.inputs(tiny, tr))
    assert config["k"] == 11 and config["cache"] == "topk" and config["epochs"] == 1
    assert config["teacher"] == zoo.digest(a.state_dict()) and config["transfer"] == {"seed": 0, "windows": len(tr.X)}


def test_scratch_keys_name_the_windows_not_the_teacher_and_budget_keeps_its_key(tiny):
    scratch = experiments.LMStudent("40k", "scratch", 0)
    key = scratch.key(tiny, scratch.inputs(tiny, None))   # the teacher-less transfer set with seed 0
    assert scratch.key(tiny, scratch.inputs(tiny, experiments.LMTransfer(tiny, _untrained_teacher(tiny, 0)))) == key
    assert scratch.key(tiny, scratch.inputs(tiny, experiments.LMTransfer(tiny, None, seed=1))) != key
    budget = experiments.LMStudent("115k", "budget", 0, epochs=3)
    assert budget.config(tiny, budget.inputs(tiny, None)) == {   # exactly the key of today's checkpoints
        "windows": 512, "epochs": 3, "lr": 4e-3, "batch_size": 128, "weight_decay": 0.01, "size": "115k",
        "layers": 4, "heads": 4, "width": 48, "route": "budget", "seed": 0, "smoke": True, "vocab": 11, "context": 16,
        "works": {"train": ["a"], "val": ["b"], "test": ["c"]}}


def test_the_teacher_keeps_the_key_of_its_checkpoints(tiny):
    assert experiments.LMTeacher(windows="fixed").config(tiny) == {  # the two-pass teacher's key, unchanged
        "arch": "char_transformer", "layers": 4, "heads": 4, "width": 128, "vocab": 11, "context": 16, "epochs": 1,
        "lr": 2e-3, "batch_size": 32, "weight_decay": 0.1, "seed": 0, "smoke": True,
        "works": {"train": ["a"], "val": ["b"], "test": ["c"]}, "metered": True}
    assert experiments.LMTeacher().config(tiny)["windows"] == "random-offset"  # today's default


def test_the_cache_never_answers_for_another_teacher_transfer_seed_or_epoch_count(tiny):
    teacher = experiments.lm_teacher(tiny, quiet=True).model
    tr = experiments.LMTransfer(tiny, teacher)
    first = experiments.lm_student(tiny, "40k", "kd", 0, tr, k=4)
    assert experiments.lm_student(tiny, "40k", "kd", 0, experiments.LMTransfer(tiny, teacher), k=4).cached
    assert not experiments.lm_student(tiny, "40k", "kd", 0, experiments.LMTransfer(tiny, _untrained_teacher(tiny, 1)),
                                      k=4).cached
    assert not experiments.lm_student(tiny, "40k", "kd", 0, experiments.LMTransfer(tiny, teacher, seed=1), k=4).cached
    twice = experiments.lm_student(tiny, "40k", "kd", 0, tr, k=4, epochs=2)
    assert not twice.cached and twice.meta["tokens_seen"] == 2 * first.meta["tokens_seen"]
    assert len(twice.meta["history"]) == 2


@pytest.mark.parametrize("kw,match", [
    ({"k": 0}, "positive integer"), ({"k": -1}, "positive integer"), ({"k": True}, "positive integer"),
    ({"k": 2.5}, "positive integer"), ({"k": 12}, "more than the vocabulary"),
    ({"k": 4, "direction": "reverse"}, "Reverse KL"), ({"direction": "sideways"}, "direction"),
    ({"epochs": 0}, "epochs"), ({"epochs": -2}, "epochs")])
def test_bad_kd_settings_are_refused_before_training(tiny, kw, match):
    tr = experiments.LMTransfer(tiny, _untrained_teacher(tiny, 0))
    with pytest.raises(ValueError, match=match):
        experiments.lm_student(tiny, "40k", "kd", 0, tr, **kw)
    assert not zoo.zoo_dir().exists() or not list(zoo.zoo_dir().glob("*.pt"))   # nothing was trained


def test_kd_settings_on_another_route_are_refused(tiny):
    with pytest.raises(ValueError, match="settings of the 'kd', 'onpolicy' and 'budget_kd'"):
        experiments.lm_student(tiny, "40k", "scratch", 0, T=2.0)
    with pytest.raises(ValueError, match="settings of the 'kd', 'onpolicy' and 'budget_kd'"):
        experiments.lm_student(tiny, "40k", "budget", 0, k=4)
    with pytest.raises(ValueError, match="trained on kd.load"):
        experiments.lm_teacher(SimpleNamespace(name="fashion_mnist"))


def test_an_interrupted_teacher_resumes_to_the_same_weights_and_counts_both_parts(tiny, monkeypatch):
    from kdlib.experiments import language
    from kdlib.train import cross_entropy

    whole = experiments.lm_teacher(tiny, quiet=True)
    whole.path.unlink()
    real_fit, calls = language.fit, []

    def interrupted_fit(*args, **kw):  # the first call dies after 5 steps, as a cell timeout would kill it
        calls.append(kw["checkpoint"])
        if len(calls) == 1:
            steps = []

            def dying(logits, batch):
                steps.append(1)
                if len(steps) == 6:
                    raise KeyboardInterrupt
                return cross_entropy(logits, batch)
            dying.__qualname__ = "cross_entropy"  # the same name in both calls, so the run's signature matches
            dying.__module__ = "kdlib.train"
            kw = {**kw, "checkpoint_seconds": 1e-9, "criterion": dying}
        return real_fit(*args, **kw)

    monkeypatch.setattr(language, "fit", interrupted_fit)
    with pytest.raises(KeyboardInterrupt):
        experiments.lm_teacher(tiny, quiet=True)
    assert calls[0].is_file() and calls[0].name.endswith(".resume")
    again = experiments.lm_teacher(tiny, quiet=True)
    assert not again.cached and again.digest == whole.digest  # bit-identical weights
    assert again.meta["resumed"]["steps_done"] == 5 and "resumed run" in again.meta["energy_source"]
    assert again.meta["train_seconds"] >= again.meta["resumed"]["seconds_before"]
    assert not calls[0].exists()


def test_a_random_offset_teacher_has_its_own_key_and_a_validation_curve(tiny):
    fixed = experiments.LMTeacher(windows="fixed")
    assert "windows" not in fixed.settings(tiny)  # the key of the two-pass teacher is kept
    spec = experiments.LMTeacher(epochs=2, windows="random-offset")
    assert spec.key(tiny) != fixed.key(tiny)
    entry = spec.load_or_train(tiny, quiet=True)
    assert [e["step"] for e in entry.meta["evals"]][:2] == [3, 6] and len(entry.meta["history"]) == 1
    assert entry.meta["test_bpc"] < 3.46
    with pytest.raises(ValueError, match="random-offset"):
        experiments.LMTeacher(windows="shuffled")


@pytest.mark.parametrize("cache", ["bucket", "sampled"])
def test_bucket_and_sampled_caches_train_students_under_their_own_keys(tiny, cache):
    teacher = experiments.lm_teacher(tiny, quiet=True)
    tr = experiments.LMTransfer(tiny, teacher.model)
    topk = experiments.LMStudent("40k", "kd", 0, k=4)
    spec = experiments.LMStudent("40k", "kd", 0, k=4, cache=cache)
    inputs = spec.inputs(tiny, tr)
    assert spec.key(tiny, inputs) != topk.key(tiny, inputs) and spec.config(tiny, inputs)["cache"] == cache
    entry = experiments.lm_student(tiny, "40k", "kd", 0, tr, k=4, cache=cache)
    assert not entry.cached and entry.meta["test_bpc"] < 3.46
    assert experiments.lm_student(tiny, "40k", "kd", 0, tr, k=4, cache=cache).cached
    if cache == "sampled":
        assert tr.sampled(4).shape == (len(tiny.X_train), 16, 4) and tr.sampled(4).dtype == torch.uint8
    else:
        values, ids, log_z = tr.bucket(4)
        assert values.shape[-1] == 4 and log_z.shape == (len(tiny.X_train), 16)


def test_cache_kinds_are_checked(tiny):
    with pytest.raises(ValueError, match="cache must be one of"):
        experiments.LMStudent("40k", "kd", 0, cache="zip")
    with pytest.raises(ValueError, match="T = 1"):
        experiments.LMStudent("40k", "kd", 0, cache="sampled", T=2.0)
    with pytest.raises(ValueError, match="settings of the 'kd', 'onpolicy' and 'budget_kd'"):
        experiments.LMStudent("40k", "scratch", 0, cache="bucket")


def test_precision_is_the_teachers_surprise_at_what_the_student_writes(tiny):
    teacher = experiments.lm_teacher(tiny, quiet=True).model
    torch.manual_seed(0)
    untrained = experiments.build_lm("40k", tiny)
    own = experiments.teacher_bits_on_samples(teacher, teacher, tiny, windows=32)
    noise = experiments.teacher_bits_on_samples(untrained, teacher, tiny, windows=32)
    assert own["samples"].shape == (32, 17) and own["teacher_bpc"] == own["student_bpc"]
    assert own["teacher_bpc"] < noise["teacher_bpc"]  # the teacher finds its own writing likelier than noise


def test_the_cache_choice_is_the_fewest_bytes_near_dense_and_respects_the_temperature(tiny):
    teacher = experiments.lm_teacher(tiny, quiet=True)
    tr = experiments.LMTransfer(tiny, teacher.model)
    choice, rows = experiments.lm_cache_choice(tiny, tr)
    ks = [k for k in experiments.LM_CACHE_KS if k < tiny.vocab_size]  # 16 > this vocabulary of 11: left out
    assert [r["name"] for r in rows][:2] == ["dense", "topk-4"] and len(rows) == 1 + 3 * len(ks) == 7
    near = [r for r in rows[1:] if r["val_bpc"] <= rows[0]["val_bpc"] + 0.01]
    if near:
        best = min(near, key=lambda r: (r["bytes"], r["val_bpc"]))
        assert choice == {"cache": best["kind"], "k": best["k"]}
    else:
        assert choice == {"cache": "topk", "k": None}
    hot, _ = experiments.lm_cache_choice(tiny, tr, T=2.0)
    assert hot["cache"] == "topk"  # only renormalised top-k serves away from T = 1


def test_the_onpolicy_route_trains_on_its_own_writing_repeatably(tiny):
    teacher = experiments.lm_teacher(tiny, quiet=True).model
    tr = experiments.LMTransfer(tiny, teacher)
    first = experiments.lm_student(tiny, "40k", "onpolicy", 0, tr)
    assert not first.cached and first.meta["student_wrote_chars"] > 0 and first.meta["teacher_scored_windows"] > 0
    assert first.digest != experiments.lm_student(tiny, "40k", "kd", 0, tr).digest  # its own loss, its own model
    assert experiments.lm_student(tiny, "40k", "onpolicy", 0, tr).cached
    again = experiments.LMStudent("40k", "onpolicy", 0).load_or_train(tiny, {"transfer": tr, "teacher": teacher},
                                                                      retrain=True)
    assert again.digest == first.digest  # the student's text is seeded by the step: a rerun writes the same
    assert not list(zoo.zoo_dir().glob("*.resume"))
    with pytest.raises(ValueError, match="forward KL on both terms"):
        experiments.lm_student(tiny, "40k", "onpolicy", 0, tr, direction="reverse")


def test_budget_kd_distils_every_training_window_with_the_budget_recipe(tiny):
    teacher = experiments.lm_teacher(tiny, quiet=True).model
    tr = experiments.LMTransfer(tiny, teacher)
    entry = experiments.lm_student(tiny, "40k", "budget_kd", 0, tr, epochs=2, alpha=0.5, k=4, cache="sampled")
    plain = experiments.lm_student(tiny, "40k", "budget", 0, epochs=2)
    assert entry.meta["tokens_seen"] == plain.meta["tokens_seen"] == 2 * tiny.y_train.numel()  # the same steps
    assert len(entry.meta["history"]) == 2 and entry.meta["teacher_joules"] > 0 and entry.digest != plain.digest
    other = experiments.LMTransfer(tiny, _untrained_teacher(tiny, 1))
    assert experiments.LMStudent("40k", "budget_kd", 0, alpha=0.5, k=4, cache="sampled", epochs=2).key(
        tiny, {"teacher": other.teacher}) != experiments.LMStudent(
        "40k", "budget_kd", 0, alpha=0.5, k=4, cache="sampled", epochs=2).key(tiny, {"teacher": teacher})
    with pytest.raises(ValueError, match="sampled cache of every training window"):
        experiments.lm_student(tiny, "40k", "budget_kd", 0, tr, epochs=2)
    with pytest.raises(ValueError, match="needs transfer"):
        experiments.lm_student(tiny, "40k", "budget_kd", 0, None, k=4, cache="sampled")


def test_lesson10_controls_distil_from_the_ngram_and_smooth_the_labels(tiny):
    teacher = experiments.lm_teacher(tiny, quiet=True).model
    tr = experiments.LMTransfer(tiny, teacher)
    scratch = experiments.lm_student(tiny, "20k", "scratch", 0, tr)
    ngram = experiments.lm_student(tiny, "20k", "ngram_kd", 0, tr, alpha=0.5)
    smooth = experiments.lm_student(tiny, "20k", "smooth", 0, tr, alpha=0.1)
    assert len({scratch.digest, ngram.digest, smooth.digest}) == 3
    assert ngram.meta["teacher_joules"] > 0 and ngram.meta["teacher_seconds"] > 0 and smooth.meta["teacher_joules"] == 0
    # neither control reads the transformer teacher: another teacher's transfer set, the same windows, the same key
    other = experiments.LMTransfer(tiny, _untrained_teacher(tiny, 1))
    assert experiments.lm_student(tiny, "20k", "ngram_kd", 0, other, alpha=0.5).cached
    soft = tr.ngram(**experiments.LMStudent.NGRAM_TEACHER)
    assert soft.shape == (*tr.X.shape, tiny.vocab_size) and soft.dtype == torch.float16
    assert torch.allclose(soft.float().exp().sum(-1), torch.ones(tr.X.shape), atol=2e-2)
    config = experiments.LMStudent("20k", "ngram_kd", 0, alpha=0.5).config(tiny, {"transfer": tr})
    assert config["ngram"] == {"order": 7, "smoothing": "kneser_ney"} and config["alpha"] == 0.5
    with pytest.raises(ValueError, match="label smoothing"):
        experiments.lm_student(tiny, "20k", "smooth", 0, tr, alpha=1.0)
    with pytest.raises(ValueError, match="full distribution"):
        experiments.lm_student(tiny, "20k", "ngram_kd", 0, tr, k=4)


def test_adapted_models_name_their_start_and_teacher(tiny):
    from dataclasses import replace

    new = replace(tiny, name="bible", info={**tiny.info, "sha256": "new domain"})
    teacher = experiments.lm_teacher(tiny, quiet=True)
    student = experiments.lm_student(tiny, "20k", "scratch", 0, experiments.LMTransfer(tiny, teacher.model))
    tuned = experiments.adapted(new, "teacher", "finetune", 0, start=teacher, lr=1e-3)
    fine = experiments.adapted(new, "20k", "finetune", 0, start=student, lr=1e-3)
    again = experiments.adapted(new, "20k", "distil", 0, start=student, teacher=tuned, lr=1e-3)
    fresh = experiments.adapted(new, "20k", "fresh", 0, lr=1e-3)
    assert len({tuned.digest, fine.digest, again.digest, fresh.digest, student.digest}) == 5
    assert again.meta["teacher_joules"] > 0 and fine.meta["teacher_joules"] == 0
    assert experiments.adapted(new, "20k", "finetune", 0, start=student, lr=1e-3).cached
    spec = experiments.Adapted("20k", "finetune", 0)
    assert spec.config(new, {"start": student})["start"] == student.digest
    assert spec.key(new, {"start": student}) != spec.key(new, {"start": fresh})
    with pytest.raises(ValueError, match="needs start"):
        experiments.adapted(new, "20k", "finetune", 0)
    with pytest.raises(ValueError, match="adapt the teacher with"):
        experiments.Adapted("teacher", "distil")
    with pytest.raises(ValueError, match="trained on kd.load"):
        experiments.adapted(tiny, "20k", "fresh", 0)
    with pytest.raises(ValueError, match="belong to the distil route"):
        experiments.Adapted("20k", "fresh", alpha=0.9)


def test_fair_scores_are_kept_beside_the_checkpoint_and_read_back(tiny, monkeypatch):
    from kdlib.experiments import language

    teacher = experiments.lm_teacher(tiny, quiet=True)
    first = experiments.fair_scores(teacher, tiny)
    saved = json.loads(teacher.path.with_suffix(".scores.json").read_text())
    (key, scores), = saved.items()
    assert key.startswith(teacher.digest) and scores == first
    language._FAIR.clear()

    def no_scoring(*args, **kwargs):
        raise AssertionError("the saved scores must be read, not computed again")

    monkeypatch.setattr("kdlib.bpc.model_bits", no_scoring)
    assert experiments.fair_scores(teacher, tiny) == first
    language._FAIR.clear()
    monkeypatch.setattr(torch, "get_num_threads", lambda: 7)  # another thread count: scored again, kept beside
    with pytest.raises(AssertionError, match="read, not computed"):
        experiments.fair_scores(teacher, tiny)


def test_fair_scores_in_a_read_only_zoo_stay_in_the_session(tiny, monkeypatch):
    from kdlib.experiments import language

    teacher = experiments.lm_teacher(tiny, quiet=True)

    def read_only(*args, **kwargs):
        raise PermissionError("read-only zoo")

    monkeypatch.setattr(zoo, "save_json", read_only)
    language._FAIR.clear()
    assert experiments.fair_scores(teacher, tiny)["test_bpc"] > 0
    assert not teacher.path.with_suffix(".scores.json").exists()


def test_fair_scores_score_only_the_splits_asked_for_and_add_the_rest_later(tiny, monkeypatch):
    from kdlib import bpc
    from kdlib.experiments import language

    teacher = experiments.lm_teacher(tiny, quiet=True)
    language._FAIR.clear()
    teacher.path.with_suffix(".scores.json").unlink(missing_ok=True)
    scored = []
    real = bpc.model_bits
    monkeypatch.setattr("kdlib.bpc.model_bits", lambda model, tokens: scored.append(len(tokens)) or real(model, tokens))
    test_only = experiments.fair_scores(teacher, tiny, splits=("test",))
    assert scored == [len(tiny.tokens_test)] and "val_bpc" not in test_only and "calibration" in test_only
    both = experiments.fair_scores(teacher, tiny)
    assert scored == [len(tiny.tokens_test), len(tiny.tokens_val)]  # only the missing split is scored
    assert both["test_bpc"] == test_only["test_bpc"] and both["val_bpc"] > 0
    language._FAIR.clear()
    assert experiments.fair_scores(teacher, tiny) == both  # both kept in the file
    assert scored == [len(tiny.tokens_test), len(tiny.tokens_val)]
    with pytest.raises(ValueError, match="splits"):
        experiments.fair_scores(teacher, tiny, splits=("train",))
