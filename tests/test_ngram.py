"""kdlib.ngram: the counted character n-gram model of lesson 8, checked by hand on "abracadabra"."""
import math

import numpy as np
import pytest
import torch

from kdlib.ngram import NGramLM

ABC = "abcdr"                                          # ids: a=0, b=1, c=2, d=3, r=4
ABRACADABRA = np.array([ABC.index(ch) for ch in "abracadabra"])


def markov_stream(n, vocab=8, seed=0):
    """A seeded order-2 Markov stream with sparse, skewed transitions: text-like, with structure."""
    rng = np.random.default_rng(seed)
    table = rng.dirichlet(np.full(vocab, 0.3), size=(vocab, vocab))
    out = [0, 1]
    for u in rng.random(n - 2):
        out.append(int(np.searchsorted(np.cumsum(table[out[-2], out[-1]]), u * 0.999999)))
    return np.array(out)


def test_kneser_ney_bigram_by_hand():
    m = NGramLM(order=2, smoothing="kneser_ney").fit(ABRACADABRA, vocab_size=5)
    # Unigram level: continuation counts N1+(• w) = distinct tokens before w (the stream start counts):
    #   a: {r, c, d, start} = 4, b: {a} = 1, c: {a} = 1, d: {a} = 1, r: {b} = 1; total 8.
    #   n1 = 4, n2 = 0  ->  D1 = 4 / (4 + 0) = 1;  N1+(•) = 5 seen types;  uniform 1/5 below.
    p1 = {"a": (4 - 1) / 8 + 1 * 5 / 8 * 1 / 5,        # = 1/2
          "b": 0 / 8 + 1 * 5 / 8 * 1 / 5, "c": 1 / 8, "d": 1 / 8, "r": 1 / 8}
    # Bigram level, raw counts: ab 2, br 2, ra 2, ac 1, ca 1, ad 1, da 1  ->  n1 = 4, n2 = 3,
    #   D2 = 4 / (4 + 2·3) = 0.4.  Context "a": c(a•) = 4, N1+(a•) = 3 (b, c, d).
    D2 = 4 / (4 + 2 * 3)
    expect_a = {w: max({"b": 2, "c": 1, "d": 1}.get(w, 0) - D2, 0) / 4 + D2 * 3 / 4 * p1[w] for w in ABC}
    assert expect_a["b"] == pytest.approx(0.4375) and expect_a["a"] == pytest.approx(0.15)
    np.testing.assert_allclose(m.next_probs([ABC.index("a")]), [expect_a[w] for w in ABC], rtol=1e-12)
    # Context "r": c(r•) = 2 (ra twice), N1+(r•) = 1:  P(a | r) = (2 − 0.4)/2 + 0.4·1/2·1/2 = 0.9.
    assert m.next_probs([ABC.index("r")])[0] == pytest.approx((2 - D2) / 2 + D2 * 1 / 2 * p1["a"], rel=1e-12)
    assert m.next_probs([])[0] == pytest.approx(0.5, rel=1e-12)    # empty context: the unigram level
    # A sixth character "e" that never occurs: only the uniform 1/6 at the bottom gives it mass,
    #   P1(e) = 1·5/8·1/6  and  P(e | a) = 0.4·3/4·P1(e).
    m6 = NGramLM(order=2, smoothing="kneser_ney").fit(ABRACADABRA, vocab_size=6)
    assert m6.next_probs([0])[5] == pytest.approx(D2 * 3 / 4 * (1 * 5 / 8 * 1 / 6), rel=1e-12)


def test_witten_bell_bigram_by_hand():
    m = NGramLM(order=2, smoothing="witten_bell").fit(ABRACADABRA, vocab_size=5)
    # Unigram: raw counts a 5, b 2, c 1, d 1, r 2; N = 11, N1+(•) = 5:  P1(w) = (c(w) + 5·1/5) / (11 + 5).
    p1 = {w: (c + 5 * 1 / 5) / (11 + 5) for w, c in zip(ABC, [5, 2, 1, 1, 2])}
    assert p1["a"] == pytest.approx(6 / 16)
    # Context "a": ab 2, ac 1, ad 1, so c(a) = 4, N1+(a•) = 3:  P(w | a) = (c(a w) + 3·P1(w)) / (4 + 3).
    expect_a = [({"b": 2, "c": 1, "d": 1}.get(w, 0) + 3 * p1[w]) / (4 + 3) for w in ABC]
    assert expect_a[1] == pytest.approx(41 / 112)
    np.testing.assert_allclose(m.next_probs([ABC.index("a")]), expect_a, rtol=1e-12)
    np.testing.assert_allclose(m.next_probs([]), [p1[w] for w in ABC], rtol=1e-12)


@pytest.mark.parametrize("smoothing", ["kneser_ney", "witten_bell"])
@pytest.mark.parametrize("order", [1, 2, 3, 4, 5, 6])
def test_distribution_sums_to_one_everywhere(order, smoothing):
    V = 9                                              # ids 7 and 8 never occur in training
    train = markov_stream(400, vocab=7, seed=order)
    m = NGramLM(order, smoothing).fit(train, V)
    rng = np.random.default_rng(1)
    contexts = [train[i:i + order - 1] for i in range(0, 300, 7)]                 # seen
    contexts += [rng.integers(0, V, size=order - 1) for _ in range(20)]            # mostly unseen, unseen ids
    contexts += [[], [8], [8, 8, 8, 8, 8, 8, 8], list(train[:2])]                  # short, unknown, too long
    for h in contexts:
        p = m.next_probs(h)
        assert p.shape == (V,) and np.all(p > 0) and np.all(np.isfinite(p))
        assert p.sum() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("smoothing", ["kneser_ney", "witten_bell"])
@pytest.mark.parametrize("order", [1, 2, 4])
def test_log_prob_matches_next_probs(order, smoothing):
    m = NGramLM(order, smoothing).fit(markov_stream(300, vocab=6), vocab_size=8)
    held = np.concatenate([markov_stream(40, vocab=6, seed=5), [7, 6, 7], markov_stream(10, vocab=6, seed=6)])
    lp = m.log_prob(held)
    assert lp.shape == held.shape and np.all(np.isfinite(lp)) and np.all(lp < 0)
    by_hand = [math.log(m.next_probs(held[:i])[held[i]]) for i in range(len(held))]
    np.testing.assert_allclose(lp, by_hand, rtol=1e-12)
    assert m.bits_per_char(held) == pytest.approx(-np.mean(by_hand) / math.log(2), rel=1e-12)
    np.testing.assert_allclose(m.log_prob(torch.as_tensor(held)), lp)                # tensors work too


@pytest.mark.parametrize("smoothing", ["kneser_ney", "witten_bell"])
def test_order_one_is_the_smoothed_unigram_entropy(smoothing):
    train = np.random.default_rng(0).choice(10, size=20_000, p=[.3, .2, .15, .1, .1, .05, .05, .03, .0199, .0001])
    counts, N, V = np.bincount(train, minlength=12), len(train), 12              # ids 10, 11 unseen
    m = NGramLM(1, smoothing).fit(train, V)
    seen = np.count_nonzero(counts)
    if smoothing == "kneser_ney":
        n1, n2 = np.sum(counts == 1), np.sum(counts == 2)
        D = n1 / (n1 + 2 * n2) if n1 else 0.5
        p = (np.maximum(counts - D, 0) + D * seen / V) / N
    else:
        p = (counts + seen / V) / (N + seen)
    emp = counts[counts > 0] / N
    cross_entropy = -np.sum(emp * np.log2(p[counts > 0]))                         # what bits/char must be
    entropy = -np.sum(emp * np.log2(emp))                                         # the floor it sits on
    assert m.bits_per_char(train) == pytest.approx(cross_entropy, rel=1e-10)
    assert entropy <= cross_entropy < entropy + 1e-3


@pytest.mark.parametrize("smoothing", ["kneser_ney", "witten_bell"])
def test_bigger_order_fits_training_data_no_worse(smoothing):
    train = markov_stream(5_000)
    bpc = [NGramLM(n, smoothing).fit(train, 8).bits_per_char(train) for n in range(1, 7)]
    assert all(b <= a + 1e-9 for a, b in zip(bpc, bpc[1:])), bpc


def test_generate_is_seeded_and_cold_temperature_is_argmax():
    m = NGramLM(3).fit(markov_stream(2_000), 8)
    a, b = m.generate([0, 1], 50, seed=3), m.generate([0, 1], 50, seed=3)
    assert a == b and len(a) == 50 and all(0 <= i < 8 for i in a)
    assert m.generate([0, 1], 50, seed=4) != a
    greedy, history = [], [0, 1]
    for _ in range(20):
        greedy.append(int(np.argmax(m.next_probs(history))))
        history.append(greedy[-1])
    assert m.generate([0, 1], 20, temperature=1e-4, seed=9) == greedy
    assert m.generate([0, 1], 20, temperature=1e-300, seed=9) == greedy        # no overflow, no NaN
    assert m.generate([0, 1], 20, temperature=0, seed=9) == greedy             # T = 0, as the message offers
    with pytest.raises(ValueError, match="0 = argmax"):
        m.generate([0, 1], 5, temperature=-1)
    assert m.generate([], 5) == m.generate(np.array([], dtype=np.int64), 5)


def test_repr_and_short_streams():
    m = NGramLM(5, "witten_bell")
    assert "not fitted" in repr(m)
    m.fit([2, 0, 1], vocab_size=4)                     # shorter than the order: levels 1–3 only
    assert m.next_probs([0, 1, 2, 0]).sum() == pytest.approx(1.0) and np.isfinite(m.log_prob([3, 3])).all()
    text = repr(NGramLM(2).fit(ABRACADABRA, 5))
    assert "order=2" in text and "kneser_ney" in text and "5 distinct contexts" in text and " s)" in text


def test_bad_inputs_say_what_is_wrong():
    with pytest.raises(ValueError, match="order"):
        NGramLM(order=0)
    with pytest.raises(ValueError, match="order"):
        NGramLM(order=2.0)
    with pytest.raises(ValueError, match="smoothing"):
        NGramLM(smoothing="laplace")
    m = NGramLM(3)
    with pytest.raises(ValueError, match="not fitted"):
        m.log_prob([0, 1])
    with pytest.raises(ValueError, match="not fitted"):
        m.next_probs([0])
    with pytest.raises(ValueError, match="empty"):
        m.fit([], 5)
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        m.fit([0, 5, 1], 5)
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        m.fit(np.array([-1, 2]), 5)
    with pytest.raises(ValueError, match="integer"):
        m.fit(np.array([0.0, 1.0]), 5)
    with pytest.raises(ValueError, match="1-D"):
        m.fit(np.zeros((2, 3), dtype=int), 5)
    with pytest.raises(ValueError, match="int64"):
        NGramLM(10).fit([0, 1], 84)
    m.fit(ABRACADABRA, 5)
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        m.log_prob([0, 9])
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        m.next_probs([7])
    for T in (-1.0, float("nan"), "hot"):  # (T = 0 is greedy)
        with pytest.raises(ValueError, match="temperature"):
            m.generate([0], 5, temperature=T)
