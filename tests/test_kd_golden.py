"""Golden values for the KD losses: every kind of teacher signal, pinned to numbers in a read-only fixture.

``tests/fixtures/kd_golden.json`` holds the named terms (``loss``, ``soft``, ``hard``) of
:class:`kdlib.distill.KDCriterion` for two temperatures × two alphas and three losses — dense
cached logits forward and reverse KL, and k-sparse cached logits (top 3 of 7 classes, float16
values and uint8 ids as :func:`kdlib.distill.topk_logits` stores them) — on one batch of 8 rows
of which 2 are ``UNLABELLED``.  Two more signals must give the dense numbers exactly as written:
the online teacher (:class:`~kdlib.distill.OnlineTeacher` running a teacher that returns those
same logits) and the sparse cache with k = all 7 classes.

The batch comes from a fixed seed and is stored in the fixture too, so a change in torch's
random numbers is reported as that, not as a changed loss.  Computed on one thread; compared
with a relative tolerance of 1e-5.  A case the test computes that the fixture lacks (or a
fixture entry no case computes) fails: the fixture is never rewritten by the test.

To write the fixture — only when a change to the losses is *meant* to change their values, and
say so in the commit — run, from the repository root::

    python tests/test_kd_golden.py --write
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import pytest
import torch
from torch import nn

from kdlib import distill

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "kd_golden.json"
SEED, ROWS, CLASSES, K = 19, 8, 7, 3
TEMPERATURES, ALPHAS = (1.0, 4.0), (0.5, 0.9)
REL = 1e-5


class _Returns(nn.Module):
    """A stand-in teacher whose logits for the batch are the given ones: its input *is* the logits."""

    def forward(self, x):
        return x.clone()


def _batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(SEED)
    student = torch.randn(ROWS, CLASSES, generator=g) * 2
    teacher = torch.randn(ROWS, CLASSES, generator=g) * 3
    labels = torch.randint(0, CLASSES, (ROWS,), generator=g)
    labels[[2, 5]] = distill.UNLABELLED
    return {"student": student, "teacher": teacher, "labels": labels}


def _signals(batch) -> dict[str, tuple[distill.TeacherSignal, str, tuple]]:
    """name → (signal, direction, the batch fit() would give the criterion; X is not read by cached signals)."""
    X, t, y = torch.zeros(ROWS, 1), batch["teacher"], batch["labels"]
    top = t.topk(K, dim=-1)
    values, ids = top.values.half(), top.indices.to(torch.uint8)
    return {"dense forward": (distill.DenseLogits(), "forward", (X, y, t)),
            "dense reverse": (distill.DenseLogits(), "reverse", (X, y, t)),
            f"sparse top-{K} forward": (distill.SparseLogits(), "forward", (X, y, values, ids))}


def _also_dense(batch) -> dict[str, tuple[distill.TeacherSignal, str, tuple, str]]:
    """Signals that must reproduce a dense case: name → (signal, direction, batch, the dense case)."""
    X, t, y = torch.zeros(ROWS, 1), batch["teacher"], batch["labels"]
    full = t.topk(CLASSES, dim=-1)
    online = distill.OnlineTeacher(_Returns())  # its input X is the logits it returns
    return {"online forward": (online, "forward", (t, y), "dense forward"),
            "online reverse": (online, "reverse", (t, y), "dense reverse"),
            f"sparse top-{CLASSES} forward": (distill.SparseLogits(), "forward", (X, y, full.values, full.indices),
                                             "dense forward")}


def _key(name: str, T: float, alpha: float) -> str:
    return f"{name} | T={T:g} | alpha={alpha:g}"


def compute() -> dict[str, dict[str, float]]:
    """Every golden case, on one thread: ``{case: {"hard", "loss", "soft"}}``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        batch = _batch()
        out = {}
        for name, (signal, direction, fit_batch) in _signals(batch).items():
            for T in TEMPERATURES:
                for alpha in ALPHAS:
                    criterion = distill.KDCriterion(T, alpha, signal=signal, direction=direction)
                    out[_key(name, T, alpha)] = {k: float(v) for k, v in
                                                 sorted(criterion.terms(batch["student"], fit_batch).items())}
        return out
    finally:
        torch.set_num_threads(threads)


def _inputs() -> dict[str, list]:
    return {k: v.tolist() for k, v in _batch().items()}


@pytest.fixture(scope="module")
def golden() -> dict:
    if not FIXTURE.exists():
        pytest.fail(f"{FIXTURE.name} is missing; write it with `python tests/test_kd_golden.py --write`.")
    return json.loads(FIXTURE.read_text())


def test_the_batch_is_the_one_the_fixture_was_made_from(golden):
    assert golden["inputs"] == _inputs(), ("torch's seeded random numbers changed: the golden batch is no longer the "
                                           "one the fixture was made from (a torch change, not a loss change)")


def test_kd_losses_match_their_golden_values(golden):
    computed, stored = compute(), golden["cases"]
    missing = sorted(set(computed) - set(stored))
    assert not missing, f"cases missing from {FIXTURE.name}: {missing}"
    stale = sorted(set(stored) - set(computed))
    assert not stale, f"{FIXTURE.name} has cases no test computes: {stale}"
    for case, terms in computed.items():
        assert set(terms) == set(stored[case]), f"{case}: terms {sorted(terms)} vs stored {sorted(stored[case])}"
        for term, value in terms.items():
            assert value == pytest.approx(stored[case][term], rel=REL, abs=1e-12), f"{case}: {term}"


def test_online_and_full_sparse_reproduce_the_dense_golden_values(golden):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        batch = _batch()
        for name, (signal, direction, fit_batch, dense) in _also_dense(batch).items():
            for T in TEMPERATURES:
                for alpha in ALPHAS:
                    criterion = distill.KDCriterion(T, alpha, signal=signal, direction=direction)
                    terms = criterion.terms(batch["student"], fit_batch)
                    want = golden["cases"][_key(dense, T, alpha)]
                    assert set(terms) == set(want), name
                    for term, value in terms.items():
                        assert float(value) == pytest.approx(want[term], rel=REL, abs=1e-12), \
                            f"{name} | T={T:g} | alpha={alpha:g}: {term}"
    finally:
        torch.set_num_threads(threads)


def test_the_unlabelled_rows_are_in_the_golden_batch(golden):
    labels = golden["inputs"]["labels"]
    assert labels.count(distill.UNLABELLED) == 2 and len(labels) == ROWS


def write(path: Path = FIXTURE) -> None:
    """Write the fixture atomically (temp file + rename)."""
    data = {"about": "Golden values of kdlib's KD losses; written by `python tests/test_kd_golden.py --write`, "
                     "read (never written) by tests/test_kd_golden.py.",
            "torch": torch.__version__, "seed": SEED, "rel_tolerance": REL,
            "inputs": _inputs(), "cases": compute()}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)
    print(f"wrote {path} ({len(data['cases'])} cases)")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/test_kd_golden.py --write   (rewrites tests/fixtures/kd_golden.json)")
    write()
