"""kd.onpolicy.OnPolicyKD: the student writes, the teacher scores, both terms train the student."""
import pytest
import torch

from kdlib.distill import KDCriterion
from kdlib.lm import char_transformer
from kdlib.onpolicy import OnPolicyKD


def _pair():
    torch.manual_seed(0)
    return char_transformer(9, 12, layers=1, heads=2, width=8), char_transformer(9, 12, layers=1, heads=2, width=16)


def test_the_student_writes_every_refresh_steps_and_the_teacher_stays_frozen():
    student, teacher = _pair()
    prompts = torch.randint(0, 9, (40, 12))
    crit = OnPolicyKD(student, teacher, KDCriterion(1.0, 1.0), prompts, rows=2, refresh=3, prompt=4)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    X = torch.randint(0, 9, (5, 12))
    batch = (X, X.roll(-1, 1), torch.randn(5, 12, 9))
    for step in range(7):
        loss = crit(student(X), batch)
        loss.backward()
        assert torch.isfinite(loss)
    assert crit.scored == 3 * 2 * 3 and crit.written == 3 * 2 * 3 * (12 - 4)  # writes at steps 0, 3 and 6
    window, _ = crit._buffer
    assert torch.equal(window[:, :4], prompts[torch.arange(12, 18) % 40, :4])  # the prompts, taken in order
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in before.items())
    assert all(p.grad is None for p in teacher.parameters())
    assert all(p.grad is not None for p in student.parameters())


def test_the_onpolicy_term_is_zero_when_the_student_is_the_teacher():
    student, _ = _pair()
    crit = OnPolicyKD(student, student, KDCriterion(1.0, 1.0), torch.randint(0, 9, (8, 12)), share=1.0, rows=2,
                      refresh=4, prompt=3)
    assert float(crit.on_policy_term().detach()) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("kw, match", [({"share": 0.0}, "share"), ({"share": 1.5}, "share"), ({"prompt": 12}, "prompt"),
                                       ({"rows": 0}, "rows")])
def test_bad_settings_are_refused(kw, match):
    student, teacher = _pair()
    with pytest.raises(ValueError, match=match):
        OnPolicyKD(student, teacher, KDCriterion(1.0, 1.0), torch.randint(0, 9, (8, 12)), **kw)
    with pytest.raises(ValueError, match="token ids"):
        OnPolicyKD(student, teacher, KDCriterion(1.0, 1.0), torch.randn(8, 12))
