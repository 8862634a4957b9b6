"""The choices and helpers lessons 3–7 share: one home in kdlib, and they behave as the lessons assume."""
import dataclasses
from types import SimpleNamespace

import pytest
import torch

import kdlib as kd
from kdlib.experiments import FashionStudent, FashionTeacher, KDSetting, KDSweep, SweepStudent

FASHION = SimpleNamespace(name="fashion_mnist")  # what the keys of the Fashion-MNIST experiments read of the data


@pytest.fixture(scope="module")
def digits():
    return kd.load("digits", device="cpu")


def test_spread_is_the_sample_std_and_zero_for_one_value():
    assert kd.tables.spread([0.5]) == 0.0
    assert kd.tables.spread([1.0, 3.0]) == pytest.approx(2 ** 0.5)
    assert kd.tables.mean_std([0.5, 0.7]) == "60.00 ± 14.14"
    with pytest.raises(ValueError, match="at least one"):
        kd.tables.spread([])


def test_train_fresh_is_reproducible_per_seed(digits):
    build = lambda: kd.mlp(64, (16,), 10)  # noqa: E731
    a, b, c = (kd.train_fresh(build, digits.train, s, epochs=1, quiet=True) for s in (0, 0, 1))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))


def test_few_labels_keeps_one_percent_and_masks_the_rest():
    y = torch.arange(2000) % 10
    chosen, masked = kd.experiments.few_labels(y, seed=0)
    assert len(chosen) == 20 and len(set(chosen.tolist())) == 20
    assert torch.equal(masked[chosen], y[chosen])
    assert int((masked != kd.distill.UNLABELLED).sum()) == 20
    again, _ = kd.experiments.few_labels(y, seed=0)
    other, _ = kd.experiments.few_labels(y, seed=1)
    assert torch.equal(chosen, again) and not torch.equal(chosen, other)
    assert len(kd.experiments.few_labels(y[:50], seed=0)[0]) == 10   # at least ten labels
    with pytest.raises(ValueError, match="share of labels"):
        kd.experiments.few_labels(y, seed=0, fraction=0.0)


def test_small_cnn_is_lesson_fives_27k_model():
    assert kd.count_params(kd.experiments.small_cnn()) == 26_722


def test_born_again_with_a_seed_matches_train_fresh(digits):
    build = lambda: kd.mlp(64, (16,), 10)  # noqa: E731
    first = kd.train_fresh(build, digits.train, 3, epochs=1, quiet=True)
    _, second = kd.teacherfree.born_again(build, digits.train, 2, first=first, seed=3, epochs=1, quiet=True)
    logits = kd.distill.cache_logits(first, digits.X_train)
    by_hand = kd.train_fresh(build, (*digits.train, logits), 3, epochs=1, quiet=True,
                             criterion=kd.distill.KDCriterion(1.0, 0.5))
    assert all(torch.equal(p, q) for p, q in zip(second.parameters(), by_hand.parameters()))


def test_prune_and_finetune_keeps_zeros_and_leaves_the_model_alone(digits):
    model = kd.train_fresh(lambda: kd.mlp(64, (32,), 10), digits.train, 0, epochs=1, quiet=True)
    before = [p.detach().clone() for p in model.parameters()]
    pruned = kd.compress.prune_and_finetune(model, 0.5, digits.train, epochs=2, lr=1e-2, quiet=True)
    assert kd.compress.sparsity(pruned) == pytest.approx(0.5, abs=0.01)  # fine-tuning revived no weight
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before))
    assert kd.compress.sparsity(model) == 0.0
    assert kd.evaluate(pruned, *digits.test)["acc"] > 0.5


def test_kd_choice_is_made_on_validation_and_cached(data_home):
    data = kd.load("fashion_mnist", device="cpu")
    choice, sweeps = kd.experiments.kd_choice(data)
    plan = KDSweep()
    assert choice["T"] in plan.temperatures and choice["alpha"] in plan.alphas
    mean = lambda v: sum(v) / len(v)  # noqa: E731
    assert mean(sweeps["temperature"][choice["T"]]) == max(mean(v) for v in sweeps["temperature"].values())
    assert mean(sweeps["alpha"][choice["alpha"]]) == max(mean(v) for v in sweeps["alpha"].values())
    assert all(len(v) == len(plan.seeds) for v in sweeps["alpha"].values())
    cached = sorted(p.name for p in (data_home / "zoo").glob("kd-sweep-mlp-*.pt"))
    # every (T, alpha, seed) once: the alpha sweep's first_alpha entry at the best T is reused, + scratch
    assert len(cached) <= (len(plan.temperatures) + len(plan.alphas) + 1) * len(plan.seeds)
    assert kd.experiments.kd_choice(data) == (choice, sweeps)   # second call: from the zoo
    assert sorted(p.name for p in (data_home / "zoo").glob("kd-sweep-mlp-*.pt")) == cached


def test_fashion_students_are_trained_once_and_shared(data_home):
    data = kd.load("fashion_mnist", device="cpu")
    first = kd.experiments.fashion_student(data, "small CNN", 0)
    again = kd.experiments.fashion_student(data, "small CNN", 0)
    assert not first.cached and again.cached
    assert all(torch.equal(p, q) for p, q in zip(first.model.parameters(), again.model.parameters()))
    assert again.meta["energy_joules"] > 0 and again.meta["energy_source"]
    by_hand = kd.train_fresh(kd.experiments.small_cnn, data.train, 0, quiet=True, **kd.experiments.fashion_fit("small CNN"))
    assert all(torch.equal(p, q) for p, q in zip(first.model.parameters(), by_hand.parameters()))
    distilled = kd.experiments.fashion_student(data, "distilled MLP-256", 1)
    assert distilled.meta["test_acc"] == kd.evaluate(distilled.model, *data.test)["acc"]
    logits = kd.distill.cache_logits(kd.experiments.teacher(data).model, data.X_train)
    given = kd.experiments.fashion_student(data, "distilled MLP-256", 2, logits)   # the lessons pass them
    choice, _ = kd.experiments.kd_choice(data)
    by_hand = kd.train_fresh(lambda: kd.mlp(784, (256,), 10), (*data.train, logits), 2, quiet=True,
                             criterion=kd.distill.KDCriterion(choice["T"], choice["alpha"]),
                             **kd.experiments.fashion_fit("distilled MLP-256"))
    assert all(torch.equal(p, q) for p, q in zip(given.model.parameters(), by_hand.parameters()))
    with pytest.raises(ValueError, match="not this teacher's logits"):   # another teacher's logits, same key: refused
        kd.experiments.fashion_student(data, "distilled MLP-256", 3, torch.randn_like(logits))
    with pytest.raises(ValueError, match="Unknown student"):
        kd.experiments.fashion_student(data, "big CNN", 0)


# --- the cache keys of the shared experiments: every setting and every input's identity -----------------------

def test_the_teacher_and_the_scratch_students_keep_the_keys_of_their_checkpoints():
    """Their stored config is exactly what it was before the experiments became config objects, so the
    checkpoints already in a learner's zoo still load."""
    assert kd.experiments.teacher_config() == {
        "arch": "cnn", "channels": [32, 64], "hidden": 256, "dropout": 0.25, "epochs": 1, "lr": 2e-3,
        "batch_size": 128, "seed": 0, "smoke": True, "metered": True}
    assert FashionStudent("small CNN", 3).config(FASHION, {"teacher": None}) == {
        "student": "small CNN", "arch": "small_cnn", "epochs": 1, "batch_size": 128, "lr": 3e-3, "seed": 3,
        "smoke": True, "metered": True, "teacher": None, "kd": None}


def test_a_distilled_students_key_names_its_teacher_by_weight_digest():
    spec = FashionStudent("distilled MLP-256", 0, KDSetting(2.0, 0.5))
    key = spec.key(FASHION, {"teacher": "a" * 64})
    assert spec.key(FASHION, {"teacher": "a" * 64}) == key
    assert spec.key(FASHION, {"teacher": "b" * 64}) != key   # another teacher: another model
    assert FashionStudent("distilled MLP-256", 0, KDSetting(2.0, 0.9)).key(FASHION, {"teacher": "a" * 64}) != key
    assert spec.config(FASHION, {"teacher": "a" * 64})["kd"] == {"T": 2.0, "alpha": 0.5}


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(SweepStudent)])
def test_every_setting_of_a_sweep_student_is_in_its_key(field):
    spec = KDSweep().student(0, KDSetting(2.0, 0.9))
    other = {"hidden": (32,), "epochs": 5, "batch_size": 64, "lr": 1e-3, "seed": 1, "kd": KDSetting(4.0, 0.9)}[field]
    teacher = {"teacher": "a" * 64}
    assert dataclasses.replace(spec, **{field: other}).key(FASHION, teacher) != spec.key(FASHION, teacher)
    assert spec.key(FASHION, {"teacher": "b" * 64}) != spec.key(FASHION, teacher)


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(FashionTeacher)])
def test_every_setting_of_the_teacher_is_in_its_key(field):
    other = {"channels": (16, 32), "hidden": 128, "dropout": 0.5, "epochs": 3, "lr": 1e-3, "batch_size": 64, "seed": 1}
    assert dataclasses.replace(FashionTeacher(), **{field: other[field]}).key(FASHION) != FashionTeacher().key(FASHION)


def test_students_refuse_a_missing_or_a_needless_teacher_and_other_data():
    with pytest.raises(ValueError, match="is distilled"):
        FashionStudent("distilled MLP-256", 0)
    with pytest.raises(ValueError, match="not distilled"):
        FashionStudent("small CNN", 0, KDSetting(2.0, 0.5))
    with pytest.raises(ValueError, match="pass inputs"):
        FashionStudent("distilled MLP-256", 0, KDSetting(2.0, 0.5)).key(FASHION, {"teacher": None})
    with pytest.raises(ValueError, match="from scratch"):
        FashionStudent("small CNN", 0).key(FASHION, {"teacher": "a" * 64})
    with pytest.raises(ValueError, match="learns from teacher; got transfer"):
        FashionStudent("small CNN", 0).key(FASHION, {"transfer": None})
    with pytest.raises(ValueError, match="trained on kd.load"):
        FashionTeacher().key(SimpleNamespace(name="digits"))
