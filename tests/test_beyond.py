"""Lesson 5's building blocks: small architectures, teacher-free regularisers, augmentation, compression."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import kdlib as kd
from kdlib import augment, compress, models, teacherfree
from kdlib.distill import UNLABELLED


def test_separable_conv_params_and_flops_by_hand():
    block = models.SeparableConv2d(16, 32)
    assert kd.count_params(block) == 9 * 16 + 16 * 32
    full = nn.Conv2d(16, 32, 3, padding=1, bias=False)
    ratio = kd.count_params(block) / kd.count_params(full)
    assert ratio == pytest.approx(1 / 32 + 1 / 9, rel=1e-9)
    # FLOPs on a 14×14 map: depthwise 2·9·16·196 + pointwise 2·16·32·196
    assert kd.flops_per_example(block, (16, 14, 14)) == 2 * 9 * 16 * 196 + 2 * 16 * 32 * 196


def test_small_architectures_run():
    assert models.separable_cnn()(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    net = models.cnn1d()
    assert net(torch.zeros(3, 1, 40)).shape == (3, 10)
    assert 4000 < kd.count_params(net) < 6000
    with pytest.raises(ValueError):
        models.cnn1d(())
    with pytest.raises(ValueError):
        models.separable_cnn(())


def test_label_smoothing_value():
    logits = torch.tensor([[2.0, 0.0, 0.0]])
    y = torch.tensor([0])
    loss = teacherfree.label_smoothing(0.3)(logits, (None, y))
    log_p = F.log_softmax(logits, -1)[0]
    want = -(0.8 * log_p[0] + 0.1 * log_p[1] + 0.1 * log_p[2])  # (1-ε) + ε/K on the true class
    assert float(loss) == pytest.approx(float(want), rel=1e-6)
    with pytest.raises(ValueError):
        teacherfree.label_smoothing(1.0)


@pytest.fixture(scope="module")
def digits():
    return kd.load("digits", smoke=False)


def test_born_again_trains(digits):
    torch.manual_seed(0)
    gens = teacherfree.born_again(lambda: kd.mlp(64, (32,), 10), digits.train, generations=2, T=2.0,
                                  epochs=12, lr=3e-3, batch_size=64, quiet=True)
    assert len(gens) == 2 and gens[0] is not gens[1]
    assert kd.evaluate(gens[1], *digits.test)["acc"] > 0.85


def test_pseudo_labels_threshold(digits):
    net = kd.mlp(64, (32,), 10)
    kd.fit(net, digits, epochs=6, lr=3e-3, batch_size=64, quiet=True)
    labels, kept = teacherfree.pseudo_labels(net, digits.X_test, threshold=0.9)
    confident = labels != UNLABELLED
    assert 0 < kept < 1 and float(confident.float().mean()) == pytest.approx(kept)
    assert (labels[confident] == kd.predict(net, digits.X_test).argmax(1)[confident]).all()
    assert teacherfree.pseudo_labels(net, digits.X_test, threshold=0.0)[1] == 1.0


def test_self_train_runs(digits):
    X, y = digits.train
    torch.manual_seed(0)
    model, kept = teacherfree.self_train(
        lambda: kd.mlp(64, (32,), 10), (X[:100], y[:100]), X[100:], rounds=1, threshold=0.8,
        labelled_fit=dict(epochs=60, lr=3e-3, batch_size=25, quiet=True),
        round_fit=dict(epochs=10, lr=3e-3, batch_size=64, quiet=True))
    assert len(kept) == 1 and 0.3 < kept[0] <= 1.0
    assert kd.evaluate(model, *digits.test)["acc"] > 0.8
    again, _ = teacherfree.self_train(lambda: kd.mlp(64, (32,), 10), (X[:100], y[:100]), X[100:], first=model,
                                      round_fit=dict(epochs=2, quiet=True))
    assert again is not model
    with pytest.raises(ValueError, match="labelled_fit"):
        teacherfree.self_train(lambda: kd.mlp(64, (32,), 10), (X[:100], y[:100]), X[100:], round_fit={})


def test_augment_draws_per_group():
    torch.manual_seed(0)
    X = torch.zeros(64, 1, 28, 28)
    X[:, :, 10:18, 4:12] = 1.0  # the same off-centre square in every image
    out = augment.fashion(max_shift=2)(X)
    assert out.shape == X.shape
    distinct = {tuple(img.flatten().nonzero().flatten()[:3].tolist()) for img in out}
    assert len(distinct) > 5  # not one shared draw for the whole batch
    one_each = augment.fashion(max_shift=2, groups=64)(X)
    assert len({tuple(img.flatten().nonzero().flatten()[:3].tolist()) for img in one_each}) > len(distinct) // 2
    with pytest.raises(ValueError):
        augment.fashion(max_shift=0, flip=False)
    with pytest.raises(ValueError):
        augment.per_group(lambda x: x, groups=0)


def test_pruning_hits_the_target_and_only_sparse_storage_saves_bytes():
    torch.manual_seed(0)
    net = kd.mlp(784, (256,), 10)
    dense_bytes = compress.size_on_disk(net)
    tiny = (torch.randn(16, 784), torch.zeros(16, dtype=torch.long))
    pruned = compress.prune_and_finetune(net, 0.9, tiny, epochs=1, quiet=True)
    assert compress.sparsity(pruned) == pytest.approx(0.9, abs=0.01)
    assert not any(name.endswith("_orig") for name, _ in pruned.named_parameters())  # masks made permanent
    assert compress.size_on_disk(pruned) == pytest.approx(dense_bytes, rel=0.01)  # zeros alone save nothing
    assert compress.size_on_disk(pruned, sparse=True) < 0.6 * dense_bytes
    with pytest.raises(ValueError):
        compress.prune_and_finetune(net, 1.0, tiny, epochs=1, quiet=True)


def test_quantize_int8_is_smaller_and_close():
    torch.manual_seed(0)
    net = kd.mlp(784, (256,), 10).eval()
    q = compress.quantize_int8(net)
    x = torch.randn(8, 1, 28, 28)
    assert (q(x) - net(x)).abs().max() < 0.05
    assert compress.size_on_disk(q) < 0.4 * compress.size_on_disk(net)
    assert compress.latency(q, x[0], min_seconds=0.05) > 0
