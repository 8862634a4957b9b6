"""kdlib.validate: one check per kind of number, and every number check of kdlib goes through it."""
import numpy as np
import pytest
import torch

import kdlib as kd
from kdlib import augment, capstone, compress, data, distill, experiments, lm, ngram, perf, runtime, teacherfree, text
from kdlib.validate import finite_number, whole_number


@pytest.mark.parametrize("value", [3, np.int64(3), np.int32(3), np.uint8(3)])
def test_whole_number_takes_python_and_numpy_integers(value):
    out = whole_number(value, "epochs")
    assert out == 3 and type(out) is int


@pytest.mark.parametrize("value", [True, False, 3.0, np.float64(3.0), "3", None, torch.tensor(3), 0, -1])
def test_whole_number_refuses_bools_floats_strings_tensors_and_too_small(value):
    with pytest.raises(ValueError, match=r"^epochs must be a positive integer, got .*\. Try 10\.$"):
        whole_number(value, "epochs", hint=" Try 10.")


def test_whole_number_bounds_and_exception_type():
    assert whole_number(0, "n", low=0) == 0 and whole_number(-7, "seed", low=None) == -7
    with pytest.raises(ValueError, match="n must be a non-negative integer, got -1"):
        whole_number(-1, "n", low=0)
    with pytest.raises(ValueError, match="order must be an integer ≥ 2, got 1"):
        whole_number(1, "order", low=2)
    with pytest.raises(TypeError, match="seed must be an integer, got 1.5"):
        whole_number(1.5, "seed", low=None, error=TypeError)


def test_finite_number_bounds():
    assert finite_number(np.float32(0.5), "alpha", high=1.0) == 0.5
    for bad in (float("nan"), float("inf"), True, "1", 1.5, -0.1):
        with pytest.raises(ValueError, match=r"alpha must be a finite number in \[0, 1\]"):
            finite_number(bad, "alpha", high=1.0)
    with pytest.raises(ValueError, match="lr must be a finite number > 0, got 0"):
        finite_number(0, "lr", strict=True)


def _fitted_ngram():
    return ngram.NGramLM(2).fit([0, 1, 2, 1, 0], vocab_size=3)


X = torch.randn(6, 4)
#: Every count kdlib checks, called with a bad value, and the words its message must keep.
COUNTS = {
    "fit epochs": (lambda v: kd.fit(kd.mlp(4, (2,), 2), (X, torch.zeros(6, dtype=torch.long)), epochs=v, quiet=True),
                   "epochs must be a positive integer"),
    "predict batch_size": (lambda v: kd.predict(kd.mlp(4, (2,), 2), X, batch_size=v), "batch_size must be a positive"),
    "batches batch_size": (lambda v: list(data.batches(X, batch_size=v)), "batch_size must be a positive integer"),
    "mlp in_features": (lambda v: kd.mlp(v, (2,), 2), "in_features must be a positive integer"),
    "char_transformer width": (lambda v: lm.char_transformer(5, 8, width=v), "width must be a positive integer"),
    "generate length": (lambda v: lm.generate(lm.char_transformer(5, 8, layers=1, heads=1, width=4),
                                              torch.zeros(1, 1, dtype=torch.long), v), "length must be a non-negative"),
    "topk_logits k": (lambda v: distill.topk_logits(kd.mlp(4, (2,), 2), X, v), "k must be a positive integer"),
    "NGramLM order": (lambda v: ngram.NGramLM(v), "order .*must be a positive integer"),
    "NGramLM vocab_size": (lambda v: ngram.NGramLM(2).fit([0, 1], vocab_size=v), "vocab_size must be a positive"),
    "NGramLM.generate n": (lambda v: _fitted_ngram().generate([], v), "n .*the number of ids.* non-negative integer"),
    "Score params": (lambda v: capstone.Score("a", 0.9, v, 1.0, 1e-5, 1.0, 1.0, 0.0, "estimate"), "params .*integer"),
    "load_shakespeare context": (lambda v: text.load_shakespeare(context=v), "context must be a positive integer"),
    "per_group groups": (lambda v: augment.per_group(lambda x: x, v), "groups must be a positive integer"),
    "born_again generations": (lambda v: teacherfree.born_again(lambda: kd.mlp(4, (2,), 2), (X, X), v),
                               "generations must be a positive integer"),
    "matmul_gflops n": (lambda v: perf.matmul_gflops(v, 0.01), "n must be a positive integer"),
}


@pytest.mark.parametrize("site", COUNTS)
@pytest.mark.parametrize("bad", [True, 2.0, "2", -3])
def test_every_count_is_checked_by_whole_number(site, bad):
    call, words = COUNTS[site]
    with pytest.raises(ValueError, match=words):
        call(bad)


def test_seed_keeps_its_type_error():
    for bad in (True, 1.5, "1"):
        with pytest.raises(TypeError, match="seed must be an integer"):
            runtime.seed_everything(bad)
    assert runtime.seed_everything(np.int64(-3)).initial_seed() == torch.Generator().manual_seed(-3).initial_seed()


#: Every real quantity kdlib checks through finite_number, with a bad value for each.
REALS = {
    "softmax_t T": (lambda v: distill.softmax_t(X, T=v), "Temperature T must be a finite number > 0"),
    "kd_loss alpha": (lambda v: distill.kd_loss(X, X, torch.zeros(6, dtype=torch.long), alpha=v),
                      r"alpha .*must be a finite number in \[0, 1\]"),
    "generate temperature": (lambda v: lm.generate(lm.char_transformer(5, 8, layers=1, heads=1, width=4),
                                                   torch.zeros(1, 1, dtype=torch.long), 2, temperature=v),
                             "temperature must be a finite number ≥ 0"),
    "NGramLM.generate temperature": (lambda v: _fitted_ngram().generate([], 2, temperature=v),
                                     "temperature .*must be a finite number ≥ 0"),
    "label_smoothing epsilon": (lambda v: teacherfree.label_smoothing(v), r"epsilon must be a finite number in \[0, 1\)"),
    "mlp dropout": (lambda v: kd.mlp(4, (2,), 2, dropout=v), r"dropout must be a finite number in \[0, 1\)"),
    "prune amount": (lambda v: compress.prune_and_finetune(kd.mlp(4, (2,), 2), v, (X, X)),
                     r"amount .*must be a finite number in \[0, 1\)"),
    "few_labels fraction": (lambda v: experiments.few_labels(torch.zeros(20, dtype=torch.long), 0, fraction=v),
                            r"fraction .*share of labels kept.* must be a finite number in \(0, 1\]"),
    "achieved_gflops seconds": (lambda v: perf.achieved_gflops(10, 10, v), "seconds must be a finite number > 0"),
}


@pytest.mark.parametrize("site", REALS)
@pytest.mark.parametrize("bad", [True, "1", float("nan"), float("inf"), -1.0])
def test_every_real_is_checked_by_finite_number(site, bad):
    call, words = REALS[site]
    with pytest.raises(ValueError, match=words):
        call(bad)
