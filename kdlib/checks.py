"""Exercise checks: tell a learner whether their answer is right without showing the answer.

Each ``check_*`` calls the learner's function on small hand-made inputs and compares with kdlib's
reference.  Right: it prints "✓ name: correct." and returns None (a check cell shows no value:
nbgrader would read a value as partial credit).  Wrong, or not done yet (the
function still raises ``NotImplementedError``): it **raises** :class:`CheckFailed` (an
``AssertionError``), whose message is the friendly line — "✗ name: not yet. Hint: …" or
"… name: not done yet — the lesson continues with …".  So the check cell fails, which is what
nbgrader's autograder needs to give the exercise zero points, while in a notebook the learner sees
only that line, not a traceback (IPython shows :meth:`CheckFailed._render_traceback_`).  In
``lessons/`` the check cells are tagged ``raises-exception``, so "Run All" carries on past them and
the lesson continues with kdlib's reference implementation.
"""
from __future__ import annotations

import math
import sys
import types

import torch


class CheckFailed(AssertionError):
    """An exercise check did not pass: the answer is wrong (the message has a hint) or not done yet.

    An ``AssertionError``, so a check cell fails under nbgrader and pytest; in IPython and Jupyter
    only the friendly message is shown, not a traceback into kdlib.
    """

    def _render_traceback_(self) -> list[str]:  # IPython's hook for a custom traceback display
        return [str(self)]


class NotDoneYet(CheckFailed):
    """The exercise still raises ``NotImplementedError``."""


def _attempt(fn, *args, **kwargs):
    try:
        return True, fn(*args, **kwargs)
    except NotImplementedError:
        return False, None


def _not_done(name: str, fallback: str):
    raise NotDoneYet(f"… {name}: not done yet — the lesson continues with {fallback}.")


def _verdict(name: str, ok: bool, hint: str) -> None:
    if not ok:
        raise CheckFailed(f"✗ {name}: not yet. Hint: {hint}")
    print(f"✓ {name}: correct.")


def reference(name: str):
    """kdlib's own version of an exercise function, for a lesson to carry on with.

    A lesson never shows an exercise's answer, not even in a fallback cell: it asks for this instead.

    Introduced in lesson 0.
    """
    references = {"queries_to_match": lambda training_mwh, wh_per_query: training_mwh * 1e6 / wh_per_query}
    if name not in references:
        raise KeyError(f"no reference for {name!r}; kdlib has one for: {', '.join(references)}")
    return references[name]


def check_matmul_flops(fn) -> None:
    """``fn(n, m, k)`` = FLOPs of an (n×m) @ (m×k) product.

    Introduced in lesson 0.
    """
    done, _ = _attempt(fn, 2, 3, 4)
    if not done:
        return _not_done("matmul_flops", "2·n·m·k")
    cases = [(2, 3, 4), (1, 1, 1), (64, 128, 32), (1000, 1, 7)]
    ok = all(int(fn(n, m, k)) == 2 * n * m * k for n, m, k in cases)
    return _verdict("matmul_flops", ok, "each of the n·k outputs is a dot product of length m; "
                    "count a multiply and an add separately.")


def check_queries_to_match(fn) -> None:
    """``fn(training_mwh, wh_per_query)`` = queries whose energy equals the training energy.

    Introduced in lesson 0.
    """
    done, _ = _attempt(fn, 1.0, 1.0)
    if not done:
        return _not_done("queries_to_match", "kdlib's reference")
    cases = [(1.0, 1.0), (1287.0, 3.0), (1287.0, 0.3), (0.5, 2.5)]
    ok = all(math.isclose(float(fn(mwh, wh)), mwh * 1e6 / wh, rel_tol=1e-6) for mwh, wh in cases)
    return _verdict("queries_to_match", ok, "convert both sides to the same unit first: 1 MWh = 1,000,000 Wh.")


def check_conv_params(fn) -> None:
    """``fn(c_in, c_out, k)`` = parameters of ``nn.Conv2d(c_in, c_out, k)`` with bias.

    Introduced in lesson 1.
    """
    done, _ = _attempt(fn, 1, 1, 1)
    if not done:
        return _not_done("conv_params", "torch's own count")
    cases = [(1, 32, 3), (32, 64, 3), (3, 8, 5), (1, 1, 1)]
    ok = all(int(fn(ci, co, k)) == sum(p.numel() for p in torch.nn.Conv2d(ci, co, k).parameters())
             for ci, co, k in cases)
    return _verdict("conv_params", ok, "every output channel has one k×k filter per input channel, plus one bias.")


def check_softmax_t(fn) -> None:
    """``fn(logits, T)`` = temperature softmax over the last dimension.

    Introduced in lesson 2.
    """
    from .distill import softmax_t

    z = torch.tensor([[2.0, 1.0, 0.1], [0.0, 0.0, 0.0], [10.0, -5.0, 3.0]])
    done, _ = _attempt(fn, z, 1.0)
    if not done:
        return _not_done("softmax_t", "kd.distill.softmax_t")
    ok = all(torch.allclose(torch.as_tensor(fn(z, T)).float(), softmax_t(z, T), atol=1e-6)
             for T in (0.5, 1.0, 4.0, 20.0))
    big = torch.tensor([[1000.0, 0.0]])
    ok = ok and bool(torch.isfinite(torch.as_tensor(fn(big, 1.0))).all())
    return _verdict("softmax_t", ok, "divide the logits by T before the softmax, and keep it stable "
                    "for large logits (torch.softmax already is).")


def check_kd_loss(fn) -> None:
    """``fn(student_logits, teacher_logits, labels, T, alpha)`` = the Hinton KD loss.

    Introduced in lesson 3.
    """
    from .distill import kd_loss

    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(6, 5, generator=g) * 3, torch.randn(6, 5, generator=g) * 3
    y = torch.randint(0, 5, (6,), generator=g)
    done, _ = _attempt(fn, s, t, y, 2.0, 0.5)
    if not done:
        return _not_done("kd_loss", "kd.distill.kd_loss")
    hints = []
    for T, alpha in [(1.0, 0.5), (4.0, 0.9), (20.0, 1.0), (2.0, 0.0)]:
        got = float(fn(s, t, y, T, alpha))
        want = float(kd_loss(s, t, y, T, alpha))
        if not math.isclose(got, want, rel_tol=1e-4, abs_tol=1e-6):
            if alpha == 0.0:
                hints.append("at alpha = 0 the loss should be the plain cross-entropy with the labels")
            elif math.isclose(got, want / (T * T), rel_tol=1e-3):
                hints.append("the soft term needs the T² factor")
            else:
                hints.append("use KL(teacher ‖ student) on log-softmax(logits / T), reduction='batchmean'")
    same = float(fn(t, t, y, 4.0, 1.0))
    if abs(same) > 1e-5:
        hints.append("with identical logits and alpha = 1 the loss must be 0")
    student, teacher = s.clone().requires_grad_(True), t.clone().requires_grad_(True)
    try:
        fn(student, teacher, y, 4.0, 0.9).backward()
    except Exception:  # noqa: BLE001 - a loss without gradients is a wrong answer, said in the hint
        hints.append("return the loss as a tensor the student's gradients flow through (no .item() or numpy)")
    else:
        if teacher.grad is not None and float(teacher.grad.abs().sum()) > 0:
            hints.append("detach the teacher's logits: no gradient may flow into the teacher")
        if student.grad is None or float(student.grad.abs().sum()) == 0:
            hints.append("the loss must depend on the student's logits")
    return _verdict("kd_loss", not hints, "; ".join(dict.fromkeys(hints)))


def check_sampled_kd_loss(fn) -> None:
    """``fn(student_logits, sampled_ids)`` = the student's mean cross-entropy against k draws from the teacher.

    The reference is :func:`kdlib.sparse.sampled_kd_terms` (a KL to the draws' histogram ĉ) plus the
    histogram's own entropy, i.e. ``mean over positions of (1/k) Σ_j −log q(x_j)``, q the student's
    softmax at T = 1.

    Introduced in lesson 8.
    """
    from .sparse import sampled_kd_terms

    g = torch.Generator().manual_seed(0)
    s = torch.randn(2, 3, 7, generator=g) * 2
    labels = torch.zeros(2, 3, dtype=torch.long)
    draws = torch.randint(0, 7, (2, 3, 5), generator=g).to(torch.uint8)
    done, _ = _attempt(fn, s, draws)
    if not done:
        return _not_done("sampled_kd_loss", "kd.sparse.sampled_kd_terms")
    hints = []
    for k in (1, 5, 16):
        ids = torch.randint(0, 7, (2, 3, k), generator=g).to(torch.uint8)
        hist = torch.zeros(6, 7).scatter_add_(-1, ids.reshape(6, k).long(), torch.full((6, k), 1.0 / k))
        want = float(sampled_kd_terms(s, ids, labels)["soft"] - torch.xlogy(hist, hist).sum(-1).mean())
        got = float(fn(s, ids))
        if not math.isclose(got, want, rel_tol=1e-4, abs_tol=1e-6):
            if math.isclose(got, want * k, rel_tol=1e-4):
                hints.append("average over the k draws as well as over the positions (divide by k)")
            elif got < 0:
                hints.append("a cross-entropy is positive: it is −log q, not log q")
            else:
                hints.append("take log_softmax of the student's logits over ALL characters, pick it at each sampled "
                             "id (sampled_ids may be uint8: .long() before gather), and average the negatives")
    return _verdict("sampled_kd_loss", not hints, "; ".join(dict.fromkeys(hints)))


def check_witten_bell(fn) -> None:
    """``fn(counts, lower)`` = the interpolated Witten–Bell bigram table ``P[a, b]``.

    ``counts[a, b]`` is how often b followed a; ``lower`` the (already smoothed) unigram
    distribution.  The reference is :class:`kdlib.ngram.NGramLM` of order 2.

    Introduced in lesson 9.
    """
    import numpy as np

    from .ngram import NGramLM

    stream = np.array([0, 1, 4, 0, 2, 0, 3, 0, 1, 4, 0, 1, 1, 0])
    V = 6  # id 5 never occurs: an unseen context and an unseen character
    counts = torch.zeros(V, V)
    for a, b in zip(stream[:-1], stream[1:]):
        counts[a, b] += 1
    lower = torch.as_tensor(NGramLM(1, "witten_bell").fit(stream, V).next_probs(()), dtype=torch.float32)
    done, _ = _attempt(fn, counts.clone(), lower.clone())
    if not done:
        return _not_done("witten_bell", "kd.NGramLM")
    got = torch.as_tensor(fn(counts.clone(), lower.clone()), dtype=torch.float64)
    model = NGramLM(2, "witten_bell").fit(stream, V)
    want = torch.as_tensor(np.stack([model.next_probs([a]) for a in range(V)]))
    if got.shape != want.shape:
        return _verdict("witten_bell", False, f"return a ({V}, {V}) table: one row per context a.")
    if not torch.isfinite(got).all():
        return _verdict("witten_bell", False, "a context never seen (a row of zero counts) must fall back to "
                        "the lower-order distribution, not divide by zero.")
    ok = torch.allclose(got, want, atol=1e-6)
    return _verdict("witten_bell", ok, "P(b|a) = (c(a,b) + N1+(a·) · P_lower(b)) / (c(a) + N1+(a·)), with "
                    "c(a) = Σ_b c(a,b) and N1+(a·) = how many different b followed a.")


def check_cpu_estimate(fn) -> None:
    """``fn(cpu_seconds, logical_cpus, watts)`` = the estimate meter's joules.

    Introduced in lesson 4.
    """
    done, _ = _attempt(fn, 1.0, 1, 1.0)
    if not done:
        return _not_done("cpu_estimate", "kdlib's estimate backend")
    cases = [(1.0, 1, 1.0), (10.0, 2, 85.0), (3.5, 8, 45.0), (0.0, 4, 65.0)]
    ok = all(math.isclose(float(fn(s, n, w)), s / n * w, rel_tol=1e-9, abs_tol=1e-12) for s, n, w in cases)
    return _verdict("cpu_estimate", ok, "the process uses its CPU seconds out of n_cpus × wall seconds the "
                    "whole package could give; a watt is a joule per second.")


def check_break_even(fn) -> None:
    """``fn(upfront_a, per_query_a, upfront_b, per_query_b)`` = queries where A's total drops below B's.

    Introduced in lesson 4.
    """
    from .ledger import break_even

    done, _ = _attempt(fn, 100.0, 1.0, 10.0, 2.0)
    if not done:
        return _not_done("break_even", "kd.ledger.break_even")
    cases = [(100.0, 1.0, 10.0, 2.0), (5e6, 0.01, 2e5, 0.05), (1.0, 3.0, 2.0, 0.5),
             (5.0, 1.0, 10.0, 2.0),      # A is never worse: 0 queries, not a negative count
             (10.0, 2.0, 5.0, 2.0)]      # the same per-query cost, more upfront: never
    ok = True
    for case in cases:
        want = break_even(*case)
        try:
            got = float(fn(*case))
        except ArithmeticError:  # e.g. dividing by a per-query difference of zero
            ok = False
            continue
        ok &= (math.isinf(want) and math.isinf(got)) or math.isclose(got, want, rel_tol=1e-6)
    return _verdict("break_even", ok, "set the two totals upfront + q·per_query equal and solve for q; "
                    "if A's per-query cost is not lower it never catches up (math.inf); if A is never worse "
                    "(cheaper upfront and per query) the answer is 0, not a negative count.")


def check_students_per_teacher(fn) -> None:
    """``fn(teacher_cost, distilled_cost, scratch_cost)`` = the smallest number of students that repays one teacher.

    Introduced in lesson 10.
    """
    from .ledger import students_per_teacher

    done, _ = _attempt(fn, 100.0, 2.0, 7.0)
    if not done:
        return _not_done("students_per_teacher", "kd.ledger.students_per_teacher")
    cases = [(100.0, 2.0, 7.0),     # 100 / 5 = 20 exactly: 20 students only tie, 21 pay
             (1e13, 5e11, 2e12),    # 6.67 → 7
             (0.0, 1.0, 2.0),       # no teacher to repay: the first student pays
             (50.0, 3.0, 3.0),      # no saving per student: never
             (50.0, 4.0, 3.0)]      # a distilled student costs more: never, not a negative count
    ok = True
    for case in cases:
        want = students_per_teacher(*case)
        try:
            got = float(fn(*case))
        except ArithmeticError:
            ok = False
            continue
        ok &= (math.isinf(want) and math.isinf(got)) or got == want
    return _verdict("students_per_teacher", ok, "N students pay when teacher + N·distilled < N·scratch: solve for "
                    "N and take the next whole number (a tie does not pay); with no saving per student the answer "
                    "is math.inf.")


def check_separable_flops(fn) -> None:
    """``fn(c_in, c_out, h, w)`` = FLOPs of a depthwise-separable 3×3 conv on an h×w map.

    Introduced in lesson 5.
    """
    from .models import SeparableConv2d, flops_per_example

    done, _ = _attempt(fn, 1, 1, 1, 1)
    if not done:
        return _not_done("separable_flops", "kdlib's FLOP counter")
    cases = [(1, 1, 1, 1), (16, 32, 14, 14), (8, 8, 7, 7), (3, 64, 28, 28)]
    ok = all(int(fn(ci, co, h, w)) == flops_per_example(SeparableConv2d(ci, co), (ci, h, w))
             for ci, co, h, w in cases)
    return _verdict("separable_flops", ok, "count the two convolutions separately: a 3×3 filter per input "
                    "channel, then a 1×1 conv mixing c_in into c_out channels; 2 FLOPs per multiply-add, "
                    "at every output pixel (padding keeps h×w).")


def check_separable_block(fn) -> None:
    """``fn(c_in, c_out)`` returns a depthwise-separable 3×3 conv module (no biases).

    Introduced in lesson 5.
    """
    done, block = _attempt(fn, 4, 8)
    if not done:
        return _not_done("separable_block", "kd.models.SeparableConv2d")
    try:
        out = block(torch.zeros(2, 4, 10, 10))
    except Exception as err:  # noqa: BLE001 - any failure is the learner's to fix
        raise CheckFailed(f"✗ separable_block: not yet. Hint: the block fails on a (2, 4, 10, 10) input: {err}") from None
    params = sum(p.numel() for p in block.parameters())
    ok = tuple(out.shape) == (2, 8, 10, 10) and params == 9 * 4 + 4 * 8
    return _verdict("separable_block", ok, "a depthwise 3×3 conv (groups = c_in, padding 1) then a pointwise "
                    "1×1 conv, both without bias; the output keeps the spatial size.")


def check_contrast(fn) -> None:
    """``fn(images, factor)`` = contrast change of [0, 1] images, shape (N, 1, H, W).

    Introduced in lesson 6.
    """
    from torchvision.transforms.v2 import functional as TF

    g = torch.Generator().manual_seed(0)
    images = torch.rand(4, 1, 6, 6, generator=g)
    done, _ = _attempt(fn, images, 0.5)
    if not done:
        return _not_done("contrast", "kd.shift's contrast corruption")
    ok = all(torch.allclose(torch.as_tensor(fn(images, f)).float(), TF.adjust_contrast(images, f), atol=1e-5)
             for f in (0.2, 0.5, 1.0, 1.5))
    return _verdict("contrast", ok, "blend each image with its own mean grey level: factor·x + (1 − factor)·mean, "
                    "one mean per image, then clip to [0, 1].")


def check_capstone_entry(fn, data):
    """Run ``fn(data)`` — the learner's training code — inside an EnergyMeter and check
    that it returns a model giving 10 class scores per image.  Returns ``(model, meter)``; raises
    :class:`CheckFailed` when the entry is not written yet or its model does not work.

    Introduced in lesson 7.
    """
    from .energy import EnergyMeter

    meter = EnergyMeter()
    try:
        with meter:
            model = fn(data)
    except NotImplementedError:
        _not_done("capstone entry", "the baselines only")
    try:
        with torch.no_grad():
            out = model.eval()(data.X_val[:4])
    except Exception as err:  # noqa: BLE001 - report any failure to the learner
        raise CheckFailed(f"✗ capstone entry: not yet. Hint: the returned model fails on validation images: {err}") from None
    if tuple(out.shape) != (4, 10):
        raise CheckFailed(f"✗ capstone entry: not yet. Hint: the model must return (batch, 10) class scores, "
                          f"got {tuple(out.shape)}.")
    print(f"✓ capstone entry: a working model, trained in {meter.seconds:.0f} s using {meter.joules / 3600:.3f} Wh "
          f"({meter.source.split(':')[0]}).")
    return model, meter


class _SealedChecks(types.ModuleType):
    """``kd.checks`` itself: its checks cannot be replaced or deleted by assignment.

    nbgrader's locked test cells import and call ``check_x`` from here in the student's own kernel, so
    an answer cell that wrote ``kd.checks.check_x = lambda *a: None`` would otherwise score full marks.
    (This closes the one-line route; a kernel that runs student code is never a sandbox: nbgrader
    itself says it does not protect against malicious submissions.)
    """

    def __setattr__(self, name, value):
        if name.startswith("check_") or name in ("CheckFailed",):
            raise AttributeError(f"kd.checks.{name} cannot be replaced: the graded checks are kdlib's own. Write your "
                                 "answer in the exercise's function instead.")
        super().__setattr__(name, value)

    def __delattr__(self, name):
        if name.startswith("check_") or name in ("CheckFailed",):
            raise AttributeError(f"kd.checks.{name} cannot be deleted: the graded checks are kdlib's own.")
        super().__delattr__(name)


sys.modules[__name__].__class__ = _SealedChecks
