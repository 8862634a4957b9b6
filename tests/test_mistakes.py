"""kdlib.mistakes, bpc.position_probs, NGramLM.window_log_probs and students_per_teacher: lesson 10's small parts."""
import math

import numpy as np
import pytest
import torch

import kdlib as kd
from kdlib import bpc, checks, ledger, mistakes
from kdlib.ngram import NGramLM
from kdlib.teacherfree import label_smoothing


def test_confident_mistakes_and_what_a_student_does_there():
    teacher = torch.tensor([[0.9, 0.1, 0.0], [0.6, 0.4, 0.0], [0.4, 0.3, 0.3], [0.1, 0.8, 0.1]])
    targets = torch.tensor([0, 1, 2, 2])  # wrong and sure at 1 (guess 0) and 3 (guess 1); unsure at 2
    found = mistakes.confident_mistakes(teacher, targets, threshold=0.5)
    assert found.where.tolist() == [1, 3] and found.guess.tolist() == [0, 1] and found.share == 0.5
    student = torch.tensor([[0.5, 0.5, 0.0], [0.25, 0.5, 0.25], [0.5, 0.25, 0.25], [0.25, 0.25, 0.5]])
    out = mistakes.inheritance(student, teacher, targets, found)
    assert out["p_on_teacher_guess"] == pytest.approx((0.25 + 0.25) / 2)
    assert out["bpc_there"] == pytest.approx(1.0)  # -log2 0.5 at both
    assert out["bpc"] == pytest.approx((1 + 1 + 2 + 1) / 4)
    copy = mistakes.inheritance(teacher, teacher, targets, found)
    assert copy["loss_correlation"] == pytest.approx(1.0) and copy["p_on_teacher_guess"] == pytest.approx(0.7)
    with pytest.raises(ValueError, match="probability"):
        mistakes.confident_mistakes(teacher, targets, threshold=1.5)
    with pytest.raises(ValueError, match="position_probs"):
        mistakes.confident_mistakes(teacher, targets[:2])
    with pytest.raises(ValueError, match="same stream"):
        mistakes.inheritance(student[:2], teacher, targets, found)


def test_position_probs_are_the_scorers_targets_in_stream_order():
    torch.manual_seed(0)
    model = kd.lm.char_transformer(7, 16, layers=1, heads=2, width=8)
    stream = torch.randint(0, 7, (203,))
    probs, targets = bpc.position_probs(model, stream, stride=8)
    assert probs.shape == (202, 7) and targets.tolist() == stream[1:].tolist()
    assert torch.allclose(probs.sum(-1), torch.ones(202), atol=1e-5)
    assert -probs.gather(-1, targets[:, None]).log2().mean().item() == pytest.approx(
        bpc.model_bits(model, stream, stride=8).bpc, rel=1e-5)


@pytest.mark.parametrize("smoothing", ["kneser_ney", "witten_bell"])
def test_window_log_probs_are_next_probs_with_the_windows_history(smoothing):
    rng = np.random.default_rng(0)
    stream = rng.integers(0, 6, 4000)
    model = NGramLM(5, smoothing).fit(stream, 6)
    X = np.concatenate([stream[:320].reshape(5, 64), rng.integers(0, 6, (2, 64))])  # seen and unseen contexts
    out = model.window_log_probs(X, chunk=3)
    assert out.shape == (7, 64, 6) and out.dtype == np.float32
    for i, t in [(0, 0), (0, 1), (0, 3), (2, 40), (5, 0), (6, 63)]:
        assert np.allclose(out[i, t], np.log(model.next_probs(X[i, :t + 1])), atol=1e-6)
    with pytest.raises(ValueError, match="windows of token ids"):
        model.window_log_probs(stream)


def test_label_smoothing_takes_one_label_per_position():
    logits, y = torch.randn(3, 5, 4), torch.randint(0, 4, (3, 5))
    got = label_smoothing(0.2)(logits, (None, y))
    want = torch.nn.functional.cross_entropy(logits.reshape(15, 4), y.reshape(15), label_smoothing=0.2)
    assert torch.equal(got, want)


def test_students_per_teacher():
    assert ledger.students_per_teacher(100, 2, 7) == 21  # 20 only ties
    assert ledger.students_per_teacher(101, 2, 7) == 21 and ledger.students_per_teacher(99, 2, 7) == 20
    assert ledger.students_per_teacher(0, 1, 2) == 1
    assert math.isinf(ledger.students_per_teacher(5, 3, 3)) and math.isinf(ledger.students_per_teacher(5, 4, 3))
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match=r"\(a cost\) must be a finite number ≥ 0"):
            ledger.students_per_teacher(bad, 1, 2)


#: Plausible wrong answers to lesson 10's exercise.
WRONG_STUDENTS_PER_TEACHER = {
    "ceil: a tie counted as paying": lambda t, d, s: math.ceil(t / (s - d)) if s > d else math.inf,
    "a fraction, not a whole number": lambda t, d, s: t / (s - d) if s > d else math.inf,
    "no saving divides by zero": lambda t, d, s: math.floor(t / (s - d)) + 1,
    "a dearer student gives a negative count": lambda t, d, s: math.floor(t / (s - d)) + 1 if s != d else math.inf,
    "the teacher forgotten": lambda t, d, s: 1 if s > d else math.inf,
}


@pytest.mark.parametrize("name", list(WRONG_STUDENTS_PER_TEACHER))
def test_check_students_per_teacher_rejects_each_plausible_wrong_answer(name):
    with pytest.raises(checks.CheckFailed):
        checks.check_students_per_teacher(WRONG_STUDENTS_PER_TEACHER[name])


def test_check_students_per_teacher_accepts_the_reference(capsys):
    assert checks.check_students_per_teacher(ledger.students_per_teacher) is None
    assert "correct" in capsys.readouterr().out

    def not_done(t, d, s):
        raise NotImplementedError

    with pytest.raises(checks.NotDoneYet):
        checks.check_students_per_teacher(not_done)
