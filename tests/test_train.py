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
