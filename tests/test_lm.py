"""The character transformer, sampling, token-level and k-sparse distillation (lesson 8)."""
import math

import pytest
import torch
import torch.nn.functional as F

import kdlib as kd
from kdlib import distill
from kdlib.lm import char_transformer, generate


def _tiny(seed=0, **kw):
    torch.manual_seed(seed)
    return char_transformer(11, 16, **{"layers": 2, "heads": 2, "width": 16, **kw})


def test_shapes_and_parameter_formula():
    net = char_transformer(84, 64, layers=4, heads=4, width=128)
    assert net(torch.randint(0, 84, (3, 64))).shape == (3, 64, 84)
    blocks = 4 * (12 * 128 * 128 + 13 * 128)  # 12w² weights, qkv/proj/mlp biases 9w, two LayerNorms 4w
    assert kd.count_params(net) == blocks + (84 + 64) * 128 + 2 * 128  # embeddings + final LayerNorm
    assert 0.75e6 < kd.count_params(net) < 0.85e6


def test_attention_is_causal():
    net = _tiny().eval()
    x = torch.randint(0, 11, (2, 16))
    y = x.clone()
    y[:, 10:] = (y[:, 10:] + 1) % 11  # change the future only
    with torch.no_grad():
        assert torch.allclose(net(x)[:, :10], net(y)[:, :10], atol=1e-6)
        assert not torch.allclose(net(x)[:, 10:], net(y)[:, 10:])


def test_flops_per_token_counted_by_torch():
    net = _tiny()
    flops = kd.flops_per_example(net, (16,), dtype=torch.long) / 16
    matmuls = 2 * 2 * (16 * 48 + 16 * 16 + 16 * 64 + 64 * 16) + 2 * 16 * 11  # per token: blocks + head
    assert matmuls <= flops <= matmuls * 1.5  # attention scores add a little on top


def test_bad_inputs_are_explained():
    net = _tiny()
    with pytest.raises(ValueError, match="context of 16"):
        net(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match="integer token ids"):
        net(torch.zeros(1, 4))
    with pytest.raises(ValueError, match="divisible"):
        char_transformer(11, 16, width=10, heads=4)
    with pytest.raises(ValueError, match="temperature"):
        generate(net, torch.tensor([1]), 3, temperature=-1)
    with pytest.raises(ValueError, match="at least one"):
        generate(net, torch.zeros(0, dtype=torch.long), 3)


def test_cached_generation_equals_uncached():
    net = _tiny()
    prompt = torch.randint(0, 11, (3, 4))
    a = generate(net, prompt, 12, temperature=0.8, seed=3, cache=True)
    b = generate(net, prompt, 12, temperature=0.8, seed=3, cache=False)
    assert a.shape == (3, 16) and torch.equal(a, b) and torch.equal(a[:, :4], prompt)
    greedy = generate(net, prompt[0], 40, temperature=0)  # past the window: restarts the cache
    assert greedy.shape == (44,) and torch.equal(greedy, generate(net, prompt[0], 40, temperature=0))
    assert net.training  # left as it was


def test_fit_trains_a_language_model_on_sequences():
    # a deterministic rule: the next id is (id + 1) mod 11; a tiny transformer learns it fast
    start = torch.randint(0, 11, (256, 1))
    seq = (start + torch.arange(17)) % 11
    X, y = seq[:, :16], seq[:, 1:]
    net = _tiny()
    hist = kd.fit(net, (X, y), (X[:32], y[:32]), epochs=4, lr=1e-2, batch_size=32, quiet=True)
    assert hist.last["val_acc"] > 0.95 and hist.last["val_loss"] < 1.0  # chance: ln 11 = 2.4
    scores = kd.evaluate(net, X, y)
    assert scores["acc"] > 0.95


def test_token_kd_equals_per_position_rows():
    torch.manual_seed(0)
    s, t = torch.randn(2, 5, 7), torch.randn(2, 5, 7)
    y = torch.randint(0, 7, (2, 5))
    seq = distill.kd_terms(s, t, y, T=2.0, alpha=0.3)
    flat = distill.kd_terms(s.reshape(10, 7), t.reshape(10, 7), y.reshape(10), T=2.0, alpha=0.3)
    for k in ("loss", "soft", "hard"):
        assert torch.allclose(seq[k], flat[k])


def test_reverse_kl_matches_its_formula():
    torch.manual_seed(1)
    s, t = torch.randn(6, 5, requires_grad=True), torch.randn(6, 5)
    T = 2.0
    q, p = torch.softmax(s / T, -1), torch.softmax(t / T, -1)
    want = T * T * (q * (q.log() - p.log())).sum(-1).mean()
    got = distill.kd_terms(s, t, torch.zeros(6, dtype=torch.long), T=T, alpha=1.0, direction="reverse")["soft"]
    assert torch.allclose(got, want, atol=1e-6)
    got.backward()
    assert s.grad is not None and torch.isfinite(s.grad).all()
    with pytest.raises(ValueError, match="direction"):
        distill.kd_terms(s, t, torch.zeros(6, dtype=torch.long), direction="sideways")


def test_topk_loss_hand_checked():
    # teacher keeps 2 of 3 classes with logits (ln 3, 0): p̂ = (3/4, 1/4); student uniform: q = 1/3 each
    s = torch.zeros(1, 3)
    values, ids = torch.tensor([[math.log(3), 0.0]]), torch.tensor([[2, 0]])
    soft = distill.topk_kd_terms(s, values, ids, torch.tensor([0]), T=1.0, alpha=1.0)["soft"]
    want = 0.75 * math.log(0.75 * 3) + 0.25 * math.log(0.25 * 3)
    assert float(soft) == pytest.approx(want, rel=1e-6)


def test_topk_with_full_k_equals_dense_and_k1_is_cross_entropy():
    torch.manual_seed(2)
    s, t = torch.randn(4, 6, 9), torch.randn(4, 6, 9)
    y = torch.randint(0, 9, (4, 6))
    top = t.topk(9, -1)
    for T in (1.0, 2.5):
        dense = distill.kd_terms(s, t, y, T=T, alpha=0.6)
        sparse = distill.topk_kd_terms(s, top.values, top.indices, y, T=T, alpha=0.6)
        assert torch.allclose(dense["loss"], sparse["loss"], atol=1e-5)
    one = distill.topk_kd_terms(s, top.values[..., :1], top.indices[..., :1], y, T=1.0, alpha=1.0)["soft"]
    assert torch.allclose(one, F.cross_entropy(s.reshape(-1, 9), t.argmax(-1).reshape(-1)), atol=1e-6)


def test_topk_logits_cache_and_criterion():
    net = _tiny().eval()
    X = torch.randint(0, 11, (20, 16))
    values, ids = distill.topk_logits(net, X, 4, batch_size=7)
    assert values.shape == ids.shape == (20, 16, 4) and values.dtype == torch.float16 and ids.dtype == torch.uint8
    dense = kd.predict(net, X)
    assert torch.equal(ids.long(), dense.topk(4, -1).indices)
    with pytest.raises(ValueError, match="more than"):
        distill.topk_logits(net, X, 12)
    crit = distill.KDCriterion(T=1.0, alpha=1.0, signal=distill.SparseLogits())
    student = _tiny(seed=5)
    out = student(X[:3])
    y = torch.zeros(3, 16, dtype=torch.long)
    assert torch.isfinite(crit(out, (X[:3], y, values[:3], ids[:3])))
    with pytest.raises(ValueError, match="forward direction only"):
        distill.KDCriterion(direction="reverse", signal=distill.SparseLogits())
    with pytest.raises(ValueError, match="forward direction only"):
        distill.SparseLogits().terms(out, (X[:3], y, values[:3], ids[:3]), 1.0, 1.0, "reverse")


def test_generate_explains_bad_prompts_and_survives_a_tiny_temperature():
    import pytest

    from kdlib import lm

    torch.manual_seed(0)
    model = lm.char_transformer(10, 16, layers=1, heads=2, width=8)
    with pytest.raises(TypeError, match="encode it first"):
        lm.generate(model, "KING.", 3)
    with pytest.raises(ValueError, match="integer ids"):
        lm.generate(model, torch.tensor([0.5, 1.0]), 3)
    with pytest.raises(ValueError, match="outside this model's vocabulary"):
        lm.generate(model, torch.tensor([1, 12]), 3)
    with pytest.raises(ValueError, match="greedy"):
        lm.generate(model, torch.tensor([1, 2]), 3, temperature=-1.0)
    tiny = lm.generate(model, torch.tensor([1, 2]), 5, temperature=1e-30)
    assert torch.equal(tiny, lm.generate(model, torch.tensor([1, 2]), 5, temperature=0.0))  # → greedy, no NaN
