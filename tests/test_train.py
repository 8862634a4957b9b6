import pytest
import torch

import kdlib as kd
from kdlib import train


@pytest.fixture(scope="module")
def digits():
    return kd.load("digits", smoke=False)


def test_fit_learns_digits(digits):
    torch.manual_seed(0)
    net = kd.mlp(64, (64,), 10)
    history = kd.fit(net, digits, epochs=8, lr=3e-3, batch_size=64, quiet=True)
    assert len(history) == 8
    assert set(history.last) >= {"train_loss", "train_acc", "val_loss", "val_acc", "seconds"}
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history.last["val_acc"] > 0.9
    assert kd.evaluate(net, *digits.test)["acc"] > 0.9
    assert not net.training  # left ready for inference
    table = history.table()
    assert isinstance(table, kd.tables.Table) and str(table) == repr(history)      # the Table every .table() returns
    assert table.rows[-1]["val_acc (%)"] == round(100 * history.last["val_acc"], 2)
    assert "val_acc (%)" in table._repr_html_()
    assert "no epochs" in str(train.History().table())


def test_fit_is_repeatable(digits):
    weights = []
    for _ in range(2):
        torch.manual_seed(1)
        net = kd.mlp(64, (32,), 10)
        kd.fit(net, digits.train, epochs=2, batch_size=50, seed=3, quiet=True)
        weights.append(torch.cat([p.flatten() for p in net.parameters()]))
    assert torch.equal(*weights)


def test_extra_tensors_reach_the_criterion(digits):
    X, y = digits.train
    marker = torch.arange(len(y)).float()
    seen = []

    def criterion(logits, batch):
        xb, yb, mb = batch
        seen.append(mb.long())
        return torch.nn.functional.cross_entropy(logits, yb)

    kd.fit(kd.mlp(64, (8,), 10), (X, y, marker), epochs=1, batch_size=100, criterion=criterion, quiet=True)
    assert sorted(torch.cat(seen).tolist()) == list(range(len(y)))


def test_augment_is_applied_in_training_only(digits):
    calls = []

    def augment(x):
        calls.append(len(x))
        return x

    kd.fit(kd.mlp(64, (8,), 10), digits, epochs=1, batch_size=200, augment=augment, quiet=True)
    assert sum(calls) == len(digits.y_train)


def test_predict_and_evaluate_shapes(digits):
    net = kd.mlp(64, (8,), 10)
    assert kd.predict(net, digits.X_test, batch_size=100).shape == (len(digits.y_test), 10)
    scores = kd.evaluate(net, *digits.test)
    assert 0 <= scores["acc"] <= 1 and scores["loss"] > 0


@pytest.mark.parametrize("kwargs,match", [
    (dict(epochs=0), "epochs"), (dict(epochs=-2), "epochs"), (dict(epochs=1.5), "epochs"),
    (dict(epochs=1, batch_size=0), "batch_size"), (dict(epochs=1, lr=0), "lr"),
    (dict(epochs=1, lr=float("nan")), "lr"), (dict(epochs=1, optimizer="adagrad"), "optimizer"),
    (dict(epochs=1, schedule="step"), "schedule"), (dict(epochs=1, device="tpu"), "device"),
])
def test_fit_bad_arguments(digits, kwargs, match):
    with pytest.raises(ValueError, match=match):
        kd.fit(kd.mlp(64, (8,), 10), digits, quiet=True, **kwargs)


def test_wrong_input_shape_is_explained(digits):
    with pytest.raises(ValueError, match="cannot take inputs of shape"):
        kd.fit(kd.mlp(784, (8,), 10), digits, epochs=1, quiet=True)


def test_too_few_classes_is_explained(digits):
    with pytest.raises(ValueError, match="num_classes"):
        kd.fit(kd.mlp(64, (8,), 5), digits, epochs=1, quiet=True)


def test_bad_data_is_explained():
    net = kd.mlp(4, (4,), 2)
    with pytest.raises(ValueError, match="empty"):
        kd.fit(net, (torch.zeros(0, 4), torch.zeros(0, dtype=torch.long)), epochs=1, quiet=True)
    with pytest.raises(ValueError, match="must hold 5 labels"):
        kd.fit(net, (torch.zeros(5, 4), torch.zeros(4, dtype=torch.long)), epochs=1, quiet=True)
    with pytest.raises(ValueError, match="integer class indices"):
        kd.fit(net, (torch.zeros(5, 4), torch.zeros(5)), epochs=1, quiet=True)
    with pytest.raises(TypeError, match="tensors"):
        kd.fit(net, ([[0.0] * 4], [0]), epochs=1, quiet=True)


def test_history_unknown_column():
    with pytest.raises(KeyError, match="no column"):
        train.History([{"epoch": 1}])["val_acc"]


# --- hardening (issue 12): no silent wrong answers from bad data or a diverging run ---

def _toy(n=600, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 8, generator=g), torch.randint(0, classes, (n,), generator=g)


def test_diverging_loss_stops_with_epoch_and_step():
    X, y = _toy()
    with pytest.raises(FloatingPointError, match=r"epoch 1, step \d+ of 38.*learning rate.*lr=1e\+06"):
        kd.fit(kd.mlp(8, (16,), 3), (X, y), epochs=2, lr=1e6, optimizer="sgd", batch_size=16, quiet=True)


def test_nan_loss_names_the_first_bad_step_and_checks_are_batched(monkeypatch):
    X, y = _toy(n=1000)
    calls, step = [], [0]
    counted = train._check_losses
    monkeypatch.setattr(train, "_check_losses", lambda *a: calls.append(1) or counted(*a))

    def criterion(logits, batch):
        step[0] += 1
        loss = torch.nn.functional.cross_entropy(logits, batch[1])
        return loss * float("nan") if step[0] == 107 else loss  # epoch 2, step 7

    kd.fit(kd.mlp(8, (4,), 3), (X, y), epochs=1, batch_size=10, criterion=criterion, quiet=True)
    assert len(calls) == 100 // train.CHECK_EVERY + 1  # not one per step
    step[0] = 0
    with pytest.raises(FloatingPointError, match="epoch 2, step 7 of 100: the loss is nan"):
        kd.fit(kd.mlp(8, (4,), 3), (X, y), epochs=3, batch_size=10, criterion=criterion, quiet=True)


def test_nan_extra_tensors_are_named_when_the_loss_diverges():
    """What a GPU run shows (kd_terms only checks teacher logits on the CPU, to never stall a GPU)."""
    X, y = _toy()
    logits = torch.randn(len(y), 3)
    logits[5, 1] = float("nan")

    def criterion(out, batch):
        return torch.nn.functional.cross_entropy(out, batch[1]) + 0 * batch[2].sum()

    with pytest.raises(FloatingPointError, match=r"train tensor 2 \(batch\[2\], e.g. cached teacher logits\)"):
        kd.fit(kd.mlp(8, (4,), 3), (X, y, logits), epochs=1, criterion=criterion, quiet=True)


def test_non_finite_inputs_are_refused():
    X, y = _toy()
    X[[3, 400], 2] = float("nan")
    X[7, 0] = float("inf")
    with pytest.raises(ValueError, match=r"train: the inputs X hold NaN or infinite values in 3 of 600 examples "
                                         r"\(first: \[3, 7, 400\]\)"):
        kd.fit(kd.mlp(8, (4,), 3), (X, y), epochs=1, quiet=True)
    good, _ = _toy()
    with pytest.raises(ValueError, match="val: the inputs X hold NaN"):
        kd.fit(kd.mlp(8, (4,), 3), (good, y), (X, y), epochs=1, quiet=True)
    train._check_finite_inputs(torch.full((10, 8), 3e38), "train")  # a sum that overflows is not an error


def test_evaluate_refuses_non_finite_inputs_and_outputs():
    X, y = _toy()
    net = kd.mlp(8, (4,), 3)
    bad = X.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="evaluate\\(\\): the inputs X hold NaN"):
        kd.evaluate(net, bad, y)
    with torch.no_grad():
        net[-1].weight.fill_(float("nan"))
    with pytest.raises(ValueError, match="outputs are NaN or infinite for 600 of 600 examples"):
        kd.evaluate(net, X, y)


def test_labels_are_checked_on_the_whole_tensor():
    X, y = _toy()
    y[-1] = 3  # far from the first batch
    with pytest.raises(ValueError, match="Labels run from 0 to 3 but the model outputs 3 classes"):
        kd.fit(kd.mlp(8, (4,), 3), (X, y), epochs=1, batch_size=10, quiet=True)
    y[-1] = -2
    with pytest.raises(ValueError, match="smallest -2"):
        kd.fit(kd.mlp(8, (4,), 3), (X, y), epochs=1, quiet=True)


def test_unlabelled_examples_need_a_criterion_that_skips_them():
    X, y = _toy()
    masked = y.clone()
    masked[500:] = kd.distill.UNLABELLED
    with pytest.raises(ValueError, match="train: 100 labels are −1 .*default criterion"):
        kd.fit(kd.mlp(8, (4,), 3), (X, masked), epochs=1, quiet=True)
    with pytest.raises(ValueError, match="val: 100 labels are −1 .*validation or test split"):
        kd.fit(kd.mlp(8, (4,), 3), (X, y), (X, masked), epochs=1, quiet=True)
    with pytest.raises(ValueError, match="evaluate\\(\\): 100 labels are −1"):
        kd.evaluate(kd.mlp(8, (4,), 3), X, masked)
    history = kd.fit(kd.mlp(8, (4,), 3), (X, masked, torch.randn(len(y), 3)),
                     criterion=kd.distill.KDCriterion(2.0, 0.5), epochs=1, quiet=True)  # still fine
    assert history.last["train_loss"] > 0 and 0 <= history.last["train_acc"] <= 1
    none = torch.full_like(y, kd.distill.UNLABELLED)
    soft_only = kd.fit(kd.mlp(8, (4,), 3), (X, none, torch.randn(len(y), 3)), (X, y),
                       criterion=kd.distill.KDCriterion(2.0, 1.0), epochs=1)  # progress bar shown, too
    assert soft_only.last["train_acc"] is None and soft_only.last["val_acc"] >= 0  # no labels: no accuracy, not 0.0
    assert "None" in str(soft_only.table()) or "train_acc" in str(soft_only.table())


def test_dtypes_are_converted_or_explained():
    X, y = _toy()
    net = kd.mlp(8, (4,), 3)
    kd.fit(net, (X.double(), y.int()), (X.double(), y.short()), epochs=1, quiet=True)  # safe conversions
    assert 0 <= kd.evaluate(net, X.double(), y.int())["acc"] <= 1
    assert kd.predict(net, X.double()).dtype == torch.float32
    pixels = (X.abs() * 50).to(torch.uint8)
    with pytest.raises(ValueError, match=r"inputs X are torch.uint8 \(raw pixels 0–255\?\).*X.float\(\) / 255"):
        kd.fit(kd.mlp(8, (4,), 3), (pixels, y), epochs=1, quiet=True)
    with pytest.raises(ValueError, match="uint8"):
        kd.predict(net, pixels)


def test_numpy_scalars_are_numbers():
    import numpy as np

    X, y = _toy()
    sweep = np.array([2.0, 4.0])
    history = kd.fit(kd.mlp(8, (np.int64(4),), np.int64(3)), (X, y, torch.randn(len(y), 3)),
                     epochs=np.int64(2), lr=np.float32(1e-3), batch_size=np.int64(64),
                     weight_decay=np.float64(0.0), seed=np.int64(1),
                     criterion=kd.distill.KDCriterion(T=sweep[1], alpha=np.float32(0.5)), quiet=True)
    assert len(history) == 2
    assert kd.predict(kd.mlp(8, (4,), 3), X, batch_size=np.int64(100)).shape == (600, 3)
    assert len(list(kd.data.batches(X, batch_size=np.int32(100)))) == 6
    assert kd.distill.softmax_t(torch.zeros(2, 3), sweep[0]).shape == (2, 3)
