"""kdlib.bpc: every target scored once, with the history it claims; the n-gram on the same targets."""
import math

import numpy as np
import pytest
import torch
from torch import nn

import kdlib as kd
from kdlib import bpc


@pytest.mark.parametrize("n,context,stride", [(65, 64, 32), (200, 16, 8), (201, 16, 16), (203, 16, 5), (17, 16, 1)])
def test_every_target_is_scored_once_with_at_least_the_history_it_claims(n, context, stride):
    plan = bpc.layout(n, context, stride)
    targets = np.concatenate([s + np.arange(f, context) + 1 for s, f in zip(plan.starts, plan.first)])
    assert targets.tolist() == list(range(1, n)) and plan.targets == n - 1
    history = plan.history()
    assert len(history) == n - 1 and history[0] == 1
    assert history[context:].min(initial=context) >= context - stride + 1  # after the first window
    assert history.max() <= context


def test_bad_layouts_are_explained():
    with pytest.raises(ValueError, match="too short"):
        bpc.layout(10, 16)
    with pytest.raises(ValueError, match="may not exceed"):
        bpc.layout(100, 16, 17)


class Bigram(nn.Module):
    """A causal model that reads only the last character: its score cannot depend on the windows."""

    def __init__(self, vocab=7, context=16):
        super().__init__()
        self.context = context
        self.table = nn.Embedding(vocab, vocab)

    def forward(self, idx):
        return self.table(idx)


def test_a_model_that_needs_no_history_scores_the_same_in_every_layout():
    torch.manual_seed(0)
    model, stream = Bigram(), torch.randint(0, 7, (501,))
    exact = -torch.log_softmax(model.table.weight.detach(), -1)[stream[:-1], stream[1:]].double().mean() / math.log(2)
    for stride in (16, 8, 3):
        score = bpc.model_bits(model, stream, stride=stride, batch_size=7)
        assert score.bpc == pytest.approx(float(exact), abs=1e-6) and score.targets == 500
        probs = torch.softmax(model.table.weight.detach(), -1)[stream[:-1]]
        assert score.entropy == pytest.approx(float(-(probs * probs.log()).sum(-1).mean() / math.log(2)), abs=1e-6)


def test_non_overlapping_windows_match_evaluate_on_the_cut_windows():
    torch.manual_seed(0)
    model = kd.lm.char_transformer(7, 16, layers=1, heads=1, width=8)
    stream = torch.randint(0, 7, (16 * 20 + 1,))
    X, y = kd.text.windows(stream, 16)
    expected = kd.evaluate(model, X, y)["loss"] / math.log(2)
    score = bpc.model_bits(model, stream, stride=16)
    assert score.bpc == pytest.approx(expected, rel=1e-5) and score.min_history == 1
    assert bpc.model_bits(model, stream).bpc != pytest.approx(expected, rel=1e-5)  # sliding: other histories
    assert "sliding windows, stride 8" in bpc.model_bits(model, stream).describe()


def test_the_ngram_sees_the_running_text_when_its_order_fits_the_history():
    g = np.random.default_rng(0)
    stream = np.cumsum(g.integers(1, 3, 3000)) % 11
    model = kd.NGramLM(5).fit(stream[:2000], 11)
    test = torch.from_numpy(stream[2000:])
    running = -model.log_prob(stream[2000:])[1:].mean() / math.log(2)
    assert bpc.ngram_bits(model, test, context=16, stride=8).bpc == pytest.approx(running, rel=1e-12)
    reset = bpc.ngram_bits(model, test, context=16, stride=16)  # history restarts at every window
    assert reset.bpc > running


def test_a_history_cap_of_h_is_a_witten_bell_model_of_order_h_plus_one():
    g = np.random.default_rng(1)
    stream = g.integers(0, 5, 4000)
    big, small = kd.NGramLM(5, "witten_bell").fit(stream, 5), kd.NGramLM(3, "witten_bell").fit(stream, 5)
    probe = g.integers(0, 5, 300)
    assert np.allclose(big.log_prob(probe, history=2), small.log_prob(probe))
    assert np.array_equal(big.log_prob(probe, history=99), big.log_prob(probe))
    with pytest.raises(ValueError, match="history"):
        big.log_prob(probe, history=-1)
