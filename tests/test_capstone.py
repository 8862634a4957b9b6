import pytest
import torch

import kdlib as kd
from kdlib import capstone


def _score(name, acc, train_j, per_1k, teacher_j=0.0):
    return capstone.Score(name, acc, 10, 1.0, 1e-5, per_1k, train_j, teacher_j, "estimate: test")


def test_lifecycle_and_budget():
    s = _score("a", 0.9, 1800.0, 1.8)  # 0.5 Wh training + 1M queries × 1.8 mJ = 0.5 Wh
    assert s.lifecycle_wh == pytest.approx(1.0)
    assert s.within_budget
    assert not _score("b", 0.9, 1800.0, 1.8, teacher_j=36.0).within_budget


def test_leaderboard_ranks_within_budget_first():
    board = capstone.Leaderboard(budget_wh=1.0)
    board.add(_score("cheap", 0.88, 360.0, 0.36)).add(_score("best but over", 0.95, 36_000.0, 0.36))
    board.add(_score("good", 0.90, 720.0, 0.36))
    assert [s.name for s in board.ranked()] == ["good", "cheap", "best but over"]
    text = str(board)
    assert "over budget" in text and "estimate" in text
    with pytest.raises(ValueError, match="already on the board"):
        board.add(_score("good", 0.91, 720.0, 0.36))  # never a silent replacement
    assert board.scores[-1].accuracy == 0.90
    board.add(_score("good", 0.91, 720.0, 0.36), replace_entry=True)  # a resubmission, said so
    assert len(board.scores) == 3 and board.scores[-1].accuracy == 0.91


def test_score_measures_a_real_model():
    data = kd.load("digits", smoke=False)
    meter = kd.energy.EnergyMeter(device="cpu")
    with meter:
        net = kd.mlp(64, (16,), 10)
        kd.fit(net, data, epochs=2, quiet=True)
    s = capstone.score("digits mlp", net, data, meter, min_seconds=0.1)
    assert 0 < s.accuracy <= 1 and s.params == kd.count_params(net)
    assert s.joules_per_1k_queries > 0 and s.training_joules == meter.joules and s.latency_s > 0


def test_score_needs_the_training_meter():
    data = kd.load("digits", smoke=False)
    with pytest.raises(ValueError, match="EnergyMeter"):
        capstone.score("x", kd.mlp(64, (4,), 10), data, kd.energy.EnergyMeter(device="cpu"))
    meter = kd.energy.EnergyMeter(device="cpu")
    with meter:
        torch.randn(300, 300) @ torch.randn(300, 300)
    with pytest.raises(ValueError, match="teacher_joules"):
        capstone.score("x", kd.mlp(64, (4,), 10), data, meter, teacher_joules=-1)


def test_capstone_check(capsys):
    data = kd.load("digits", smoke=False)

    def entry(d):
        return kd.mlp(64, (8,), 10)

    model, meter = kd.checks.check_capstone_entry(entry, data)
    assert "✓" in capsys.readouterr().out

    def unsolved(d):
        raise NotImplementedError

    with pytest.raises(kd.checks.NotDoneYet, match="not done yet"):
        kd.checks.check_capstone_entry(unsolved, data)
    with pytest.raises(kd.checks.CheckFailed, match=r"\(batch, 10\)"):
        kd.checks.check_capstone_entry(lambda d: kd.mlp(64, (8,), 3), data)


# --- hardening (issue 12): impossible scores are refused, one budget for scores and board ---

@pytest.mark.parametrize("field,value,match", [
    ("acc", float("nan"), "accuracy"), ("acc", 1.5, r"accuracy .* in \[0, 1\], got 1.5"), ("acc", -0.1, "accuracy"),
    ("train_j", float("nan"), "training_joules"), ("train_j", float("inf"), "training_joules"),
    ("train_j", -5.0, r"training_joules must be a finite number ≥ 0, got -5.0"),
    ("per_1k", float("nan"), "joules_per_1k_queries"), ("teacher_j", -1.0, "teacher_joules"),
])
def test_impossible_figures_are_refused(field, value, match):
    args = {"acc": 0.9, "train_j": 100.0, "per_1k": 0.1, "teacher_j": 0.0, field: value}
    with pytest.raises(ValueError, match=f"Score 'x': {match}"):
        _score("x", args["acc"], args["train_j"], args["per_1k"], args["teacher_j"])


@pytest.mark.parametrize("budget", [0, -1.0, float("nan"), float("inf")])
def test_impossible_budgets_are_refused(budget):
    with pytest.raises(ValueError, match="budget_wh"):
        capstone.Leaderboard(budget_wh=budget)


def test_a_bad_entry_cannot_scramble_the_ranking():
    import numpy as np

    board = capstone.Leaderboard()
    board.add(_score("a", 0.90, 360.0, 0.36)).add(_score("b", np.float64(0.92), np.float32(360.0), 0.36))
    broken = _score("c", 0.5, 360.0, 0.36)
    broken.accuracy = float("nan")  # changed after it was made
    with pytest.raises(ValueError, match="accuracy"):
        board.add(broken)
    assert [s.name for s in board.ranked()] == ["b", "a"]


def test_scores_and_leaderboard_share_one_budget():
    s = _score("half", 0.9, 1800.0, 1.8)  # 1.0 Wh: within the course budget
    assert s.within_budget
    board = capstone.Leaderboard(budget_wh=0.5).add(s)
    (entry,) = board.ranked()
    assert not entry.within_budget and entry.budget_wh == 0.5
    assert "over budget" in str(board)


def test_score_refuses_a_model_with_non_finite_outputs():
    data = kd.load("digits", smoke=False)
    meter = kd.energy.EnergyMeter(device="cpu")
    with meter:
        torch.randn(300, 300) @ torch.randn(300, 300)
    net = kd.mlp(64, (4,), 10)
    with torch.no_grad():
        net[1].weight.fill_(float("nan"))
    with pytest.raises(ValueError, match="outputs are NaN or infinite"):
        capstone.score("nan net", net, data, meter, min_seconds=0.1)
