"""fit(checkpoint=...): an interrupted run resumes to the same weights as an uninterrupted one."""
import pytest
import torch

import kdlib as kd
from kdlib import resume


@pytest.fixture(scope="module")
def digits():
    return kd.load("digits", smoke=False)


class StopAt:
    """Cross-entropy that raises KeyboardInterrupt on step ``stop`` (1-based), like a cell timeout."""

    def __init__(self, stop=None):
        self.stop, self.calls = stop, 0

    def __call__(self, logits, batch):
        self.calls += 1
        if self.stop is not None and self.calls == self.stop:
            raise KeyboardInterrupt
        return kd.train.cross_entropy(logits, batch)

    def __repr__(self):  # the same in the interrupted and the resumed call, as a real criterion's is
        return "StopAt()"


def run(digits, path=None, stop=None, epochs=3, **kw):
    torch.manual_seed(0)
    net = kd.models.mlp(64, (32,), 10, dropout=0.2)  # dropout: torch's random state must resume too
    history = kd.fit(net, digits, epochs=epochs, lr=3e-3, batch_size=64, seed=5, criterion=StopAt(stop),
                     checkpoint=path, checkpoint_seconds=1e-9, val_every=10, quiet=True, **kw)
    return net, history


def weights(net):
    return torch.cat([p.detach().flatten() for p in net.parameters()])


@pytest.mark.parametrize("stop", [7, 23, 45])  # mid-epoch 1, at an epoch's last step (23 steps/epoch), mid-epoch 2
def test_an_interrupted_run_resumes_to_identical_weights(digits, tmp_path, stop):
    whole, whole_history = run(digits)
    path = tmp_path / "run.ckpt"
    with pytest.raises(KeyboardInterrupt):
        run(digits, path, stop)
    assert path.is_file()
    resumed, history = run(digits, path)
    assert torch.equal(weights(resumed), weights(whole))
    assert [r["train_loss"] for r in history.rows] == [r["train_loss"] for r in whole_history.rows]
    assert [r["val_acc"] for r in history.rows] == [r["val_acc"] for r in whole_history.rows]
    assert history.evals == whole_history.evals and [e["step"] for e in history.evals] == list(range(10, 70, 10))
    assert history.resumed["steps_done"] == stop - 1 and not whole_history.resumed
    assert not path.exists()  # removed once training finished


def test_a_checkpoint_of_another_run_is_refused(digits, tmp_path):
    path = tmp_path / "run.ckpt"
    with pytest.raises(KeyboardInterrupt):
        run(digits, path, stop=5)
    with pytest.raises(ValueError, match="another training run"):
        run(digits, path, epochs=4)  # other settings: never resumed into this run
    assert path.is_file()


def test_an_unreadable_checkpoint_is_ignored_with_a_warning(digits, tmp_path):
    path = tmp_path / "run.ckpt"
    path.write_bytes(b"not a checkpoint")
    whole, _ = run(digits)
    with pytest.warns(UserWarning, match="Ignoring the training checkpoint"):
        again, history = run(digits, path)
    assert torch.equal(weights(again), weights(whole)) and not history.resumed


def test_checkpoint_seconds_must_be_positive(digits, tmp_path):
    with pytest.raises(ValueError, match="checkpoint_seconds"):
        resume.TrainingCheckpoint(tmp_path / "x", "sig", every_seconds=0)


def test_skip_leaves_out_the_first_batches_of_the_same_permutation():
    X = torch.arange(10)
    full = list(kd.dataset.batches(X, batch_size=3, generator=torch.Generator().manual_seed(1)))
    g = torch.Generator().manual_seed(1)
    rest = list(kd.dataset.batches(X, batch_size=3, generator=g, skip=2))
    assert [b[0].tolist() for b in rest] == [b[0].tolist() for b in full[2:]]
    with pytest.raises(ValueError, match="skip"):
        list(kd.dataset.batches(X, batch_size=3, skip=-1))


def test_val_every_needs_validation_data(digits):
    with pytest.raises(ValueError, match="val_every needs validation"):
        kd.fit(kd.mlp(64, (8,), 10), digits.train, epochs=1, val_every=5, quiet=True)
