import math

import pytest
import torch
import torch.nn.functional as F

import kdlib as kd
from kdlib import checks, distill


def test_softmax_t_limits():
    z = torch.tensor([3.0, 1.0, 0.0])
    assert torch.allclose(distill.softmax_t(z, 1.0), torch.softmax(z, -1))
    assert torch.allclose(distill.softmax_t(z, 1e4), torch.full((3,), 1 / 3), atol=1e-3)
    assert distill.softmax_t(z, 0.01)[0] > 0.999


def test_entropy_by_hand():
    assert float(distill.entropy(torch.tensor([0.5, 0.5]))) == pytest.approx(math.log(2))
    assert float(distill.entropy(torch.tensor([1.0, 0.0]))) == pytest.approx(0.0)


def test_identical_logits_have_zero_kl():
    z = torch.randn(8, 10)
    terms = distill.kd_terms(z, z.clone(), torch.zeros(8, dtype=torch.long), T=4.0, alpha=1.0)
    assert float(terms["soft"]) == pytest.approx(0.0, abs=1e-6)
    assert float(terms["loss"]) == pytest.approx(0.0, abs=1e-6)


def test_alpha_zero_is_cross_entropy():
    s, t = torch.randn(5, 4), torch.randn(5, 4)
    y = torch.tensor([0, 1, 2, 3, 0])
    assert float(distill.kd_loss(s, t, y, T=3.0, alpha=0.0)) == pytest.approx(float(F.cross_entropy(s, y)))


@pytest.mark.parametrize("T", [1.0, 2.0])
def test_two_class_value_by_hand(T):
    s = torch.tensor([[0.0, 0.0]])
    t = torch.tensor([[math.log(3.0), 0.0]])
    p1 = 3 ** (1 / T) / (3 ** (1 / T) + 1)  # teacher's soft label for class 0
    kl = p1 * math.log(p1 / 0.5) + (1 - p1) * math.log((1 - p1) / 0.5)
    y = torch.tensor([1])
    want = 0.7 * T * T * kl + 0.3 * math.log(2)
    assert float(distill.kd_loss(s, t, y, T=T, alpha=0.7)) == pytest.approx(want, rel=1e-5)


def test_t_squared_keeps_gradient_scale():
    g = torch.Generator().manual_seed(0)
    t = torch.randn(64, 10, generator=g) * 2

    def grad_norm(T):
        s = (torch.randn(64, 10, generator=torch.Generator().manual_seed(1)) * 2).requires_grad_()
        distill.kd_loss(s, t, torch.zeros(64, dtype=torch.long), T=T, alpha=1.0).backward()
        return float(s.grad.norm())

    ratio = grad_norm(10.0) / grad_norm(20.0)
    assert 0.8 < ratio < 1.25  # with T² the size is about independent of T; without it the ratio would be ~4


@pytest.mark.parametrize("T", [0, -1.0, float("nan"), float("inf"), "4"])
def test_bad_temperature(T):
    with pytest.raises(ValueError, match="Temperature"):
        distill.kd_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), T=T)


@pytest.mark.parametrize("alpha", [-0.1, 1.5, True])
def test_bad_alpha(alpha):
    with pytest.raises(ValueError, match="alpha"):
        distill.kd_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), alpha=alpha)


def test_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        distill.kd_loss(torch.zeros(2, 3), torch.zeros(2, 4), torch.zeros(2, dtype=torch.long))


def test_unlabelled_rows_get_soft_term_only():
    s, t = torch.randn(4, 3), torch.randn(4, 3)
    y = torch.tensor([0, distill.UNLABELLED, 2, distill.UNLABELLED])
    terms = distill.kd_terms(s, t, y, T=2.0, alpha=0.5)
    assert float(terms["hard"]) == pytest.approx(float(F.cross_entropy(s[[0, 2]], y[[0, 2]])))
    none = distill.kd_terms(s, t, torch.full((4,), distill.UNLABELLED), T=2.0, alpha=0.5)
    assert float(none["hard"]) == 0.0 and torch.isfinite(none["loss"])


def test_masked_teacher_classes_count_zero():
    """A teacher logit of −inf (a masked class) gives the finite KD value with 0·log 0 = 0."""
    s = torch.randn(2, 3, requires_grad=True)
    t = torch.tensor([[0.0, -math.inf, 1.0], [2.0, 0.0, -math.inf]])
    y = torch.tensor([0, 2])
    soft = distill.kd_terms(s, t, y, T=2.0, alpha=1.0)["soft"]
    want = 0.0
    for row in range(2):
        keep = torch.isfinite(t[row])
        p, log_q = torch.softmax(t[row, keep] / 2, -1), torch.log_softmax(s[row].detach() / 2, -1)[keep]
        want += 4 * float((p * (p.log() - log_q)).sum()) / 2
    assert soft.item() == pytest.approx(want, rel=1e-5)
    soft.backward()
    assert torch.isfinite(s.grad).all()
    top = distill.topk_kd_terms(s, torch.tensor([[1.0, -math.inf], [1.0, 0.0]]), torch.tensor([[2, 1], [0, 1]]), y)
    assert torch.isfinite(top["loss"])


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_teacher_logits_are_reported(bad):
    t = torch.randn(2, 3)
    t[1, 0] = bad
    with pytest.raises(ValueError, match="teacher logits hold NaN or \\+inf"):
        distill.kd_terms(torch.randn(2, 3), t, torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="reverse KL"):
        distill.kd_terms(torch.randn(2, 3), torch.tensor([[0.0, -math.inf, 1.0]] * 2), torch.zeros(2, dtype=torch.long),
                         direction="reverse")


def test_teacher_is_frozen_by_construction_and_the_callers_model_is_left_alone():
    teacher = kd.mlp(4, (8,), 3, dropout=0.5)           # in train mode, trainable
    frozen = distill.freeze(teacher)
    frozen.train()
    assert not frozen.training
    x = torch.randn(5, 4)
    out = frozen(x)
    assert out.grad_fn is None
    assert torch.equal(out, frozen(x))  # dropout is off while the teacher answers
    assert teacher.training and all(p.requires_grad for p in teacher.parameters())   # unchanged
    assert distill.freeze(frozen) is frozen
    kd.fit(teacher, (x, torch.zeros(5, dtype=torch.long)), epochs=1, quiet=True)     # can still be fine-tuned


def test_online_teacher_never_changes_and_matches_cached():
    data = kd.load("digits", smoke=False)
    torch.manual_seed(0)
    teacher = kd.mlp(64, (32,), 10)
    kd.fit(teacher, data, epochs=2, quiet=True)
    before = [p.clone() for p in teacher.parameters()]
    logits = distill.cache_logits(teacher, data.X_train)

    students = []
    for criterion, train in [(distill.KDCriterion(4.0, 0.9, signal=distill.OnlineTeacher(teacher)), data.train),
                             (distill.KDCriterion(4.0, 0.9), (*data.train, logits))]:
        torch.manual_seed(5)
        student = kd.mlp(64, (16,), 10)
        kd.fit(student, train, data.val, epochs=2, criterion=criterion, seed=1, quiet=True)
        students.append(torch.cat([p.flatten() for p in student.parameters()]))
    assert all(torch.equal(a, b) for a, b in zip(before, teacher.parameters()))
    assert torch.allclose(students[0], students[1], atol=1e-5)


def test_cache_logits_leaves_the_model_trainable():
    net = kd.mlp(4, (3,), 2)
    distill.cache_logits(net, torch.randn(5, 4))
    assert all(p.requires_grad for p in net.parameters()) and net.training  # mode restored


def test_fit_refuses_a_frozen_model():
    with pytest.raises(ValueError, match="no trainable parameters"):
        kd.fit(kd.mlp(4, (3,), 2).requires_grad_(False), (torch.randn(5, 4), torch.zeros(5, dtype=torch.long)),
               epochs=1, quiet=True)


def test_a_batch_that_does_not_match_the_signal_is_explained():
    X, y = torch.zeros(2, 4), torch.zeros(2, dtype=torch.long)
    values, ids = torch.zeros(2, 2), torch.zeros(2, 2, dtype=torch.long)
    with pytest.raises(ValueError, match=r"DenseLogits\(\) reads batches \(X, y, logits\).*2 tensors.*OnlineTeacher"):
        distill.KDCriterion()(torch.zeros(2, 3), (X, y))
    with pytest.raises(ValueError, match=r"\(X, y, logits\).*4 tensors.*SparseLogits\(\)"):
        distill.KDCriterion()(torch.zeros(2, 3), (X, y, values, ids))
    with pytest.raises(ValueError, match=r"SparseLogits\(\) reads batches \(X, y, values, ids\).*DenseLogits"):
        distill.KDCriterion(signal=distill.SparseLogits())(torch.zeros(2, 3), (X, y, torch.zeros(2, 3)))
    online = distill.KDCriterion(signal=distill.OnlineTeacher(kd.mlp(4, (3,), 3)))
    with pytest.raises(ValueError, match=r"OnlineTeacher\(Sequential\) reads batches \(X, y\), .*3 tensors"):
        online(torch.zeros(2, 3), (X, y, torch.zeros(2, 3)))


def test_signal_is_named_and_checked_at_construction():
    with pytest.raises(TypeError, match=r"wrap a teacher model as signal=OnlineTeacher\(teacher\)"):
        distill.KDCriterion(signal=kd.mlp(4, (3,), 3))
    with pytest.raises(TypeError, match="signal must be"):
        distill.KDCriterion(signal="dense")
    with pytest.raises(TypeError, match="teacher model"):
        distill.OnlineTeacher(torch.zeros(3))
    with pytest.raises(ValueError, match="forward direction only"):
        distill.KDCriterion(signal=distill.SparseLogits(), direction="reverse")
    with pytest.raises(TypeError):  # the old spelling: the online teacher now names its kind
        distill.KDCriterion(4.0, 0.9, teacher=kd.mlp(4, (3,), 3))
    assert repr(distill.KDCriterion(2.0, 0.5)) == \
        "KDCriterion(T=2.0, alpha=0.5, signal=DenseLogits(), direction='forward')"


def test_each_signal_returns_named_terms_equal_to_its_loss_function():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    y = torch.tensor([0, 1, distill.UNLABELLED, 3, 4, distill.UNLABELLED])
    X = torch.randn(6, 4, generator=g)
    dense = distill.KDCriterion(2.0, 0.7).terms(s, (X, y, t))
    assert set(dense) == {"loss", "soft", "hard"}
    for key, value in distill.kd_terms(s, t, y, 2.0, 0.7).items():
        assert torch.equal(dense[key], value)
    top = t.topk(3, -1)
    sparse = distill.KDCriterion(2.0, 0.7, signal=distill.SparseLogits()).terms(s, (X, y, top.values, top.indices))
    for key, value in distill.topk_kd_terms(s, top.values, top.indices, y, 2.0, 0.7).items():
        assert torch.equal(sparse[key], value)
    teacher = kd.mlp(4, (8,), 5)
    online = distill.KDCriterion(2.0, 0.7, signal=distill.OnlineTeacher(teacher), direction="reverse")
    cached = distill.KDCriterion(2.0, 0.7, direction="reverse")
    assert torch.equal(online(s, (X, y)), cached(s, (X, y, distill.cache_logits(teacher, X))))


def test_agreement_and_gap_closed():
    s = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    t = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert distill.agreement(s, t) == 0.75
    assert distill.gap_closed(0.85, 0.80, 0.90) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="undefined"):
        distill.gap_closed(0.9, 0.9, 0.9)


def test_check_kd_loss_verdicts(capsys):
    assert checks.check_kd_loss(distill.kd_loss) is None
    assert "✓ kd_loss: correct." in capsys.readouterr().out

    def no_t_squared(s, t, y, T, alpha):
        soft = F.kl_div(F.log_softmax(s / T, -1), F.softmax(t / T, -1), reduction="batchmean")
        return alpha * soft + (1 - alpha) * F.cross_entropy(s, y)

    # a wrong answer raises (so nbgrader's autograder scores the check cell 0) with the hint as message
    with pytest.raises(checks.CheckFailed, match="Hint") as failed:
        checks.check_kd_loss(no_t_squared)
    assert "T²" in str(failed.value) and isinstance(failed.value, AssertionError)
    # IPython shows only that friendly line, not a traceback into kdlib
    assert failed.value._render_traceback_() == [str(failed.value)]

    def unsolved(*args):
        raise NotImplementedError

    with pytest.raises(checks.NotDoneYet, match="not done yet"):
        checks.check_kd_loss(unsolved)


def _kd_no_detach(s, t, y, T, alpha):  # the right numbers, but gradients reach the teacher
    soft = F.kl_div(F.log_softmax(s / T, -1), F.log_softmax(t / T, -1), reduction="batchmean", log_target=True)
    return alpha * T * T * soft + (1 - alpha) * F.cross_entropy(s, y)


#: Plausible wrong answers to the KD-loss exercise, each of which its check must reject.
WRONG_KD_LOSSES = {
    "no T²": lambda s, t, y, T, a: a * F.kl_div(F.log_softmax(s / T, -1), F.softmax(t / T, -1),
                                                 reduction="batchmean") + (1 - a) * F.cross_entropy(s, y),
    "mean instead of batchmean": lambda s, t, y, T, a: a * T * T * F.kl_div(
        F.log_softmax(s / T, -1), F.softmax(t / T, -1), reduction="mean") + (1 - a) * F.cross_entropy(s, y),
    "alpha on the wrong term": lambda s, t, y, T, a: (1 - a) * T * T * F.kl_div(
        F.log_softmax(s / T, -1), F.softmax(t / T, -1), reduction="batchmean") + a * F.cross_entropy(s, y),
    "KL the wrong way round": lambda s, t, y, T, a: a * T * T * F.kl_div(
        F.log_softmax(t / T, -1), F.softmax(s / T, -1), reduction="batchmean") + (1 - a) * F.cross_entropy(s, y),
    "teacher not detached": _kd_no_detach,
    "a float, not a tensor": lambda s, t, y, T, a: float(distill.kd_loss(s, t, y, T, a)),
}


@pytest.mark.parametrize("name", list(WRONG_KD_LOSSES))
def test_check_kd_loss_rejects_each_plausible_wrong_answer(name):
    with pytest.raises(checks.CheckFailed):
        checks.check_kd_loss(WRONG_KD_LOSSES[name])


#: Plausible wrong answers to the break-even exercise.
WRONG_BREAK_EVENS = {
    "the bare formula": lambda ua, qa, ub, qb: (ua - ub) / (qb - qa),
    "never-worse gives a negative count": lambda ua, qa, ub, qb: math.inf if qa >= qb else (ua - ub) / (qb - qa),
    "equal per-query costs divide by zero": lambda ua, qa, ub, qb: 0.0 if ua <= ub and qa <= qb else (ua - ub) / (qb - qa),
}


@pytest.mark.parametrize("name", list(WRONG_BREAK_EVENS))
def test_check_break_even_rejects_each_plausible_wrong_answer(name):
    with pytest.raises(checks.CheckFailed):
        checks.check_break_even(WRONG_BREAK_EVENS[name])


def test_other_checks_accept_the_reference(capsys):
    assert checks.check_softmax_t(distill.softmax_t) is None
    assert checks.check_matmul_flops(lambda n, m, k: 2 * n * m * k) is None
    with pytest.raises(checks.CheckFailed, match="Hint"):
        checks.check_matmul_flops(lambda n, m, k: n * m * k)
    assert checks.check_queries_to_match(lambda mwh, wh: mwh * 1e6 / wh) is None
    assert checks.check_conv_params(lambda ci, co, k: ci * co * k * k + co) is None
    with pytest.raises(checks.CheckFailed, match="Hint"):
        checks.check_conv_params(lambda ci, co, k: ci * co * k * k)
    assert checks.reference("queries_to_match")(1287.0, 3.0) == pytest.approx(1287e6 / 3)


def test_energy_checks(capsys):
    from kdlib import ledger

    assert checks.check_cpu_estimate(lambda s, n, w: s / n * w) is None
    with pytest.raises(checks.CheckFailed, match="Hint"):
        checks.check_cpu_estimate(lambda s, n, w: s * w)
    assert checks.check_break_even(ledger.break_even) is None
    with pytest.raises(checks.CheckFailed, match="Hint"):
        checks.check_break_even(lambda ua, qa, ub, qb: (ua - ub) / (qb - qa))


def test_separable_checks(capsys):
    from kdlib import models

    assert checks.check_separable_block(models.SeparableConv2d) is None
    with pytest.raises(checks.CheckFailed, match="Hint"):
        checks.check_separable_block(lambda ci, co: torch.nn.Conv2d(ci, co, 3, padding=1))
    assert checks.check_separable_flops(lambda ci, co, h, w: 2 * 9 * ci * h * w + 2 * ci * co * h * w) is None
    with pytest.raises(checks.CheckFailed, match="Hint"):
        checks.check_separable_flops(lambda ci, co, h, w: 2 * 9 * ci * co * h * w)


def test_contrast_check(capsys):
    def contrast(images, factor):
        mean = images.mean(dim=(1, 2, 3), keepdim=True)
        return (factor * images + (1 - factor) * mean).clamp(0, 1)

    assert checks.check_contrast(contrast) is None
    with pytest.raises(checks.CheckFailed, match="Hint"):
        checks.check_contrast(lambda images, factor: images * factor)


def test_kd_loss_explains_float_one_hot_and_out_of_range_labels():
    import pytest
    import torch

    from kdlib import distill

    s, t = torch.randn(6, 4), torch.randn(6, 4)
    y = torch.tensor([0, 1, 2, 3, 0, distill.UNLABELLED])
    assert torch.isfinite(distill.kd_loss(s, t, y))
    with pytest.raises(ValueError, match="one-hot rows"):
        distill.kd_loss(s, t, torch.nn.functional.one_hot(y.clamp(min=0), 4).float())
    with pytest.raises(ValueError, match="integer class indices"):
        distill.kd_loss(s, t, y.float())
    with pytest.raises(ValueError, match="labels run from 0 to 4.*4 classes"):
        distill.kd_loss(s, t, torch.tensor([0, 1, 2, 3, 4, 0]))
    with pytest.raises(ValueError, match="labels run from -3"):
        distill.kd_loss(s, t, torch.tensor([0, 1, 2, 3, -3, 0]))


def test_the_float16_cache_names_float16_instead_of_storing_inf():
    import pytest
    import torch
    from torch import nn

    from kdlib import distill

    class Loud(nn.Module):
        def forward(self, x):
            return x * 1e5

    with pytest.raises(ValueError, match="float16"):
        distill.topk_logits(Loud(), torch.randn(4, 3), 2)
    values, _ = distill.topk_logits(Loud(), torch.randn(4, 3) * 1e-3, 2)  # within range: stored as before
    assert torch.isfinite(values).all()
