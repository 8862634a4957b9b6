"""Benchmarks that put kdlib side by side with the plain-PyTorch way, in one run.

Timings on a shared machine are noisy, so every figure is reported next to its baseline from
the same run, as a ratio.  ``python -m kdlib bench`` prints the table and writes JSON.
"""
from __future__ import annotations

import gzip
import json
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .. import data as kdata
from .. import fashion_mnist
from ..models import mlp
from ..runtime import is_smoke


def _train_steps(model, opt, batches_iter, max_steps=None) -> tuple[float, int]:
    """Run SGD steps over ``batches_iter``; return (seconds, examples)."""
    model.train()
    seen, steps = 0, 0
    start = time.perf_counter()
    for xb, yb in batches_iter:
        loss = F.cross_entropy(model(xb).flatten(0, -2), yb.flatten())  # also (N, T) next-character labels
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        seen += len(yb)
        steps += 1
        if max_steps is not None and steps >= max_steps:
            break
    return time.perf_counter() - start, seen


def epoch_comparison(batch_size: int = 128, max_steps: int | None = None, repeats: int = 1) -> dict:
    """One MLP epoch on Fashion-MNIST's 60k training images, four ways, in one run:

    * ``kdlib``: :func:`kdlib.dataset.batches` over tensors already in memory;
    * ``tutorial``: ``DataLoader`` over torchvision's ``FashionMNIST`` with ``ToTensor``;
    * ``tensordataset``: ``DataLoader(TensorDataset(X, y))``;
    * ``floor``: the same number of steps on one fixed batch — the compute floor, no data work.

    Each gets a fresh ``mlp(784, (256,), 10)`` and AdamW; the best of ``repeats`` is kept.
    Returns seconds per epoch and each one's ratio to kdlib.
    """
    from torch.utils.data import DataLoader, TensorDataset
    from torchvision import datasets, transforms

    arrays, _ = fashion_mnist.read_arrays()
    X = torch.from_numpy(arrays["train_images"].astype(np.float32) / 255.0)[:, None]
    y = torch.from_numpy(arrays["train_labels"].astype(np.int64))
    steps = max_steps or -(-len(y) // batch_size)

    def fresh():
        torch.manual_seed(0)
        model = mlp(784, (256,), 10)
        return model, torch.optim.AdamW(model.parameters(), lr=1e-3)

    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "FashionMNIST" / "raw"
        raw.mkdir(parents=True)
        folder, _ = fashion_mnist.locate_fashion_mnist()
        for spec in fashion_mnist.FASHION_FILES:  # torchvision reads the decompressed files
            (raw / spec.name[:-3]).write_bytes(gzip.decompress((folder / spec.name).read_bytes()))
        tutorial = datasets.FashionMNIST(tmp, train=True, download=False, transform=transforms.ToTensor())
        xb0, yb0 = X[:batch_size], y[:batch_size]
        ways = {
            "kdlib": lambda: kdata.batches(X, y, batch_size=batch_size, generator=torch.Generator().manual_seed(0)),
            "tutorial": lambda: iter(DataLoader(tutorial, batch_size=batch_size, shuffle=True)),
            "tensordataset": lambda: iter(DataLoader(TensorDataset(X, y), batch_size=batch_size, shuffle=True)),
            "floor": lambda: ((xb0, yb0) for _ in range(steps)),
        }
        for name in ways:  # warm-up: first-call allocations, kernel selection, page faults
            model, opt = fresh()
            _train_steps(model, opt, ways[name](), max_steps=min(steps, 100))
        seconds = {}
        for _ in range(repeats):
            for name, make in ways.items():
                model, opt = fresh()
                took, seen = _train_steps(model, opt, make(), max_steps=steps)
                per_epoch = took * len(y) / seen
                seconds[name] = min(seconds.get(name, float("inf")), per_epoch)
    base = seconds["kdlib"]
    return {
        "batch_size": batch_size, "steps_timed": steps, "threads": torch.get_num_threads(),
        "seconds_per_epoch": {k: round(v, 3) for k, v in seconds.items()},
        "ratio_to_kdlib": {k: round(v / base, 2) for k, v in seconds.items()},
    }


def format_epoch_table(result: dict) -> str:
    labels = {
        "kdlib": "kdlib batches (tensors in memory)",
        "tutorial": "DataLoader(FashionMNIST, ToTensor)",
        "tensordataset": "DataLoader(TensorDataset)",
        "floor": "compute floor (one fixed batch)",
    }
    lines = [f"One MLP epoch on 60k Fashion-MNIST images, batch {result['batch_size']}, "
             f"{result['threads']} threads",
             f"{'way':38s} {'s/epoch':>9s} {'× kdlib':>8s}"]
    for key, label in labels.items():
        lines.append(f"{label:38s} {result['seconds_per_epoch'][key]:9.2f} {result['ratio_to_kdlib'][key]:8.2f}")
    return "\n".join(lines)


def kd_epoch_comparison(max_steps: int | None = None) -> dict:
    """One student epoch three ways, same student (784-64-10 MLP), batch 256: plain cross-entropy
    (scratch), KD with cached teacher logits, KD with the teacher run online on every batch."""
    from ..distill import KDCriterion, OnlineTeacher, cache_logits
    from ..experiments import teacher
    from ..train import fit

    data = kdata.load("fashion_mnist")
    model = teacher(data, quiet=True).model  # the cached course teacher (trained on the full split)
    X, y = data.train
    if max_steps:
        X, y = X[: max_steps * 256], y[: max_steps * 256]
    logits = cache_logits(model, X)
    ways = {"scratch": ((X, y), None), "kd_cached": ((X, y, logits), KDCriterion(4.0, 0.9)),
            "kd_online": ((X, y), KDCriterion(4.0, 0.9, signal=OnlineTeacher(model)))}
    seconds = {}
    for name, (train, criterion) in ways.items():
        torch.manual_seed(0)
        student = mlp(784, (64,), 10)
        seconds[name] = fit(student, train, epochs=1, batch_size=256, criterion=criterion, quiet=True).last["seconds"]
    return {"seconds_per_epoch": {k: round(v, 3) for k, v in seconds.items()},
            "ratio_to_scratch": {k: round(v / seconds["scratch"], 2) for k, v in seconds.items()}}


def teacher_throughput(steps: int = 60, batch_size: int = 128) -> dict:
    """The teacher's achieved training GFLOP/s over ``steps`` steps vs the measured matmul peak."""
    from ..models import flops_per_example
    from ..perf import achieved_gflops, matmul_gflops
    from ..experiments import build_teacher

    data = kdata.load("fashion_mnist")
    torch.manual_seed(0)
    model = build_teacher()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    it = kdata.batches(*data.train, batch_size=batch_size, generator=torch.Generator().manual_seed(0))
    _train_steps(model, opt, it, max_steps=5)  # warm-up
    took, seen = _train_steps(model, opt, kdata.batches(*data.train, batch_size=batch_size), max_steps=steps)
    achieved = achieved_gflops(flops_per_example(model, data.input_shape), seen, took)
    peak = matmul_gflops(1024, seconds=1.0)
    return {"achieved_gflops": round(achieved, 1), "matmul_peak_gflops": round(peak, 1),
            "share_of_peak": round(achieved / peak, 3)}


def meter_overhead(seconds: float = 30.0) -> dict:
    """The meter's overhead on a ~``seconds`` MLP training workload, as a ratio of wall times.

    Chunks of 50 training steps run in pairs, one plain and one inside an :class:`EnergyMeter`
    phase, after a warm-up, so that drift in the machine's speed hits both alike.
    """
    from ..energy import EnergyMeter

    data = kdata.load("fashion_mnist")
    X, y = data.X_train, data.y_train
    torch.manual_seed(0)
    model = mlp(784, (256,), 10)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    chunk = 50  # steps per metered phase
    _train_steps(model, opt, kdata.batches(X, y, batch_size=128), max_steps=200)  # warm-up
    one, _ = _train_steps(model, opt, kdata.batches(X, y, batch_size=128), max_steps=chunk)
    pairs = max(2, int(seconds / 2 / max(one, 1e-3)))

    def chunk_seconds(i, meter=None):
        it = kdata.batches(X, y, batch_size=128, generator=torch.Generator().manual_seed(i))
        start = time.perf_counter()
        if meter is None:
            _train_steps(model, opt, it, max_steps=chunk)
        else:
            with meter.phase(f"chunk {i}"):
                _train_steps(model, opt, it, max_steps=chunk)
        return time.perf_counter() - start

    plain = metered = 0.0
    meter = EnergyMeter()
    with meter:
        for i in range(pairs):  # each plain chunk next to a metered one
            plain += chunk_seconds(i)
            metered += chunk_seconds(i, meter)
    # The wall-time ratio is dominated by the machine's own drift; the meter's real cost is what
    # an empty phase costs, times the number of phases.
    probe = EnergyMeter()
    start = time.perf_counter()
    for i in range(2000):
        with probe.phase("empty"):
            pass
    phase_cost = (time.perf_counter() - start) / 2000
    return {"seconds_plain": round(plain, 2), "seconds_metered": round(metered, 2),
            "overhead_ratio": round(metered / plain, 4), "phases": pairs,
            "phase_cost_us": round(1e6 * phase_cost, 2),
            "overhead_from_phase_cost": round(pairs * phase_cost / plain, 6), "source": meter.source}


def latency_comparison() -> dict:
    """CPU latency per query (batch of one): teacher vs distilled-size student vs its int8 version."""
    from ..compress import latency, quantize_int8
    from ..experiments import teacher

    data = kdata.load("fashion_mnist")
    big = teacher(data, quiet=True).model.cpu()
    torch.manual_seed(0)
    student = mlp(784, (256,), 10).eval()
    x = data.X_test[0]
    out = {"teacher": latency(big, x), "student": latency(student, x), "student_int8": latency(quantize_int8(student), x)}
    return {"microseconds": {k: round(1e6 * v, 1) for k, v in out.items()},
            "ratio_to_teacher": {k: round(v / out["teacher"], 3) for k, v in out.items()}}


def lm_comparison(steps: int = 150) -> dict:
    """Lesson 8 costs side by side: one step of a 40k character student on 32 windows, six ways —
    labels only, KD from cached renormalised top-8, top-8 plus a bucket, sampled-8 (the course's
    cache) and all 84 teacher logits, KD with the teacher run online — the share of the matmul peak
    that 40k and 115k students and the teacher reach in training, and sampling speed with and
    without the key/value cache."""
    from ..distill import KDCriterion, OnlineTeacher, SparseLogits, topk_logits
    from ..sparse import BucketLogits, SampledLogits, log_normaliser, sample_ids
    from ..lm import generate
    from ..models import flops_per_example
    from ..perf import achieved_gflops, matmul_gflops
    from ..experiments import build_lm, lm_teacher
    from ..experiments.language import dense_from_topk
    from ..train import fit

    data = kdata.load("shakespeare", context=64)
    teacher = lm_teacher(data, quiet=True).model.cpu()
    n = min(steps * 32, len(data.X_train))
    X, y = data.X_train[:n], data.y_train[:n]
    values, ids = topk_logits(teacher, X, data.vocab_size)
    dense = dense_from_topk(values, ids)
    ways = {"scratch": ((X, y), None),
            "kd_top8": ((X, y, values[..., :8], ids[..., :8]), KDCriterion(1.0, 1.0, signal=SparseLogits())),
            "kd_bucket8": ((X, y, values[..., :8], ids[..., :8], log_normaliser(values)),
                           KDCriterion(1.0, 1.0, signal=BucketLogits())),
            "kd_sampled8": ((X, y, sample_ids(dense, 8)), KDCriterion(1.0, 1.0, signal=SampledLogits())),
            "kd_top84": ((X, y, values, ids), KDCriterion(1.0, 1.0, signal=SparseLogits())),
            "kd_online": ((X, y), KDCriterion(1.0, 1.0, signal=OnlineTeacher(teacher)))}

    def epoch(train, criterion, size="40k"):
        torch.manual_seed(0)
        return fit(build_lm(size, data), train, epochs=1, batch_size=32, criterion=criterion, quiet=True,
                   device="cpu").last["seconds"]

    epoch(*ways["kd_top84"])  # warm-up
    seconds = {}
    for _ in range(2):  # best of two, each way next to the others
        for name, (train, criterion) in ways.items():
            seconds[name] = min(seconds.get(name, float("inf")), epoch(train, criterion))
        seconds["scratch_115k"] = min(seconds.get("scratch_115k", float("inf")), epoch((X, y), None, "115k"))
    steps_done = -(-n // 32)
    per_window = {size: flops_per_example(build_lm(size, data), (data.context,), torch.long) for size in ("40k", "115k")}
    student_gflops = {"40k": achieved_gflops(per_window["40k"], n, seconds["scratch"]),
                      "115k": achieved_gflops(per_window["115k"], n, seconds.pop("scratch_115k"))}

    torch.manual_seed(0)
    big = build_lm("teacher", data)
    opt = torch.optim.AdamW(big.parameters(), lr=1e-3)
    t_steps = max(5, steps // 10)
    _train_steps(big, opt, kdata.batches(X, y, batch_size=32), max_steps=3)  # warm-up
    took, _ = _train_steps(big, opt, kdata.batches(X, y, batch_size=32), max_steps=t_steps)
    achieved = achieved_gflops(flops_per_example(big, (data.context,), torch.long), 32 * t_steps, took)
    peak = matmul_gflops(1024, seconds=1.0)

    prompt = data.X_val[:1, :8]
    length = 120 if not is_smoke() else 30
    sampling = {}
    for cache in (True, False):
        generate(teacher, prompt, 5, cache=cache)  # warm-up
        start = time.perf_counter()
        generate(teacher, prompt, length, cache=cache, seed=0)
        sampling["with_cache" if cache else "without_cache"] = round(length / (time.perf_counter() - start), 1)
    return {"steps_per_epoch": steps_done,
            "ms_per_step": {k: round(1e3 * v / steps_done, 2) for k, v in seconds.items()},
            "ratio_to_scratch": {k: round(v / seconds["scratch"], 2) for k, v in seconds.items()},
            "teacher_train_gflops": round(achieved, 1), "matmul_peak_gflops": round(peak, 1),
            "teacher_share_of_peak": round(achieved / peak, 3),
            "student_train_gflops": {k: round(v, 1) for k, v in student_gflops.items()},
            "student_share_of_peak": {k: round(v / peak, 3) for k, v in student_gflops.items()},
            "sampling_tokens_per_s": sampling,
            "kv_cache_speedup": round(sampling["with_cache"] / sampling["without_cache"], 2)}


def _lm_plain_vs_fit(data, size: str, steps: int, batch_size: int = 32) -> dict:
    """GFLOP/s of ``steps`` training steps of one language-model size, kdlib's ``fit`` vs the plain loop.

    Both start from the same seeded weights and see the same first ``steps × batch_size`` windows;
    the plain loop is :func:`_train_steps` (AdamW with torch's defaults), ``fit`` is kdlib's.
    """
    from ..experiments import build_lm
    from ..models import flops_per_example
    from ..perf import achieved_gflops
    from ..train import fit

    n = min(steps * batch_size, len(data.X_train))
    X, y = data.X_train[:n], data.y_train[:n]
    per_window = flops_per_example(build_lm(size, data), (data.context,), torch.long)
    out = {}
    for _ in range(2):  # best of two, the two ways side by side
        torch.manual_seed(0)
        model = build_lm(size, data)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        _train_steps(model, opt, kdata.batches(X[:3 * batch_size], y[:3 * batch_size], batch_size=batch_size))
        took, seen = _train_steps(model, opt, kdata.batches(X, y, batch_size=batch_size))
        out["plain"] = max(out.get("plain", 0.0), achieved_gflops(per_window, seen, took))
        torch.manual_seed(0)
        seconds = fit(build_lm(size, data), (X, y), epochs=1, batch_size=batch_size, quiet=True,
                      device="cpu").last["seconds"]
        out["kdlib"] = max(out.get("kdlib", 0.0), achieved_gflops(per_window, n, seconds))
    return out


def lm_efficiency(steps: int = 150) -> dict:
    """Each language-model size's training share of the matmul peak, kdlib's ``fit`` beside the plain loop.

    The teacher (0.8M), 115k and 40k students, batch 32 × 64 characters, torch's thread count; the
    peak is :func:`kdlib.perf.matmul_gflops` measured in the same run.
    """
    from ..perf import matmul_gflops

    data = kdata.load("shakespeare", context=64)
    sizes = {"teacher": max(5, steps // 6), "115k": steps, "40k": steps}
    gflops = {size: _lm_plain_vs_fit(data, size, n) for size, n in sizes.items()}
    peak = matmul_gflops(1024, seconds=1.0)
    return {"matmul_peak_gflops": round(peak, 1), "threads": torch.get_num_threads(),
            "gflops": {size: {k: round(v, 1) for k, v in row.items()} for size, row in gflops.items()},
            "share_of_peak": {size: {k: round(v / peak, 3) for k, v in row.items()} for size, row in gflops.items()}}


def parallel_comparison(runs: int = 4, steps: int = 150, size: str = "40k") -> dict:
    """The same ``runs`` independent student runs three ways: one process with torch's threads,
    one run at a time on one thread, and :func:`kdlib.workers.train_in_parallel` (workers × 1 thread).

    Every run trains through :func:`kdlib.zoo.load_or_train` into a temporary zoo (the user's is not
    touched); runs at one thread give the same weights serially and in workers (checked here, as
    ``identical``).  Reports wall seconds, throughput relative to the one-process way, and CPU seconds.
    """
    from .. import workers, zoo
    from ..experiments import build_lm
    from ..runtime import use_threads
    from ..train import fit

    data = kdata.load("shakespeare", context=64)
    n = min(steps * 32, len(data.X_train))
    X, y = data.X_train[:n], data.y_train[:n]

    def job(seed: int, way: str):
        def train(model):
            torch.manual_seed(seed)
            model.load_state_dict(build_lm(size, data).state_dict())
            fit(model, (X, y), epochs=1, batch_size=32, seed=seed, quiet=True, device="cpu")
            return {"threads": torch.get_num_threads()}
        return zoo.load_or_train(f"bench-{size}", {"seed": seed, "way": way, "steps": steps},
                                 lambda: build_lm(size, data), train)

    threads = torch.get_num_threads()
    plan = workers.plan(runs)
    ways = {"one process": lambda jobs: [j() for j in jobs],
            "one thread, serial": lambda jobs: workers.train_in_parallel(jobs, workers=1, quiet=True),
            "workers": lambda jobs: workers.train_in_parallel(jobs, quiet=True)}
    seconds, cpu, digests = {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp, _environ("KDLIB_DATA", tmp):  # data is loaded; the runs' zoo is here
        for way, run_all in ways.items():
            with use_threads(threads):
                start_cpu, start = _cpu_seconds(), time.perf_counter()
                entries = run_all([lambda seed=seed, way=way: job(seed, way) for seed in range(runs)])
                seconds[way], cpu[way] = time.perf_counter() - start, _cpu_seconds() - start_cpu
            digests[way] = [e.digest for e in entries]
    base = seconds["one process"]
    return {"runs": runs, "steps": steps, "size": size, "threads": threads, "plan": plan.reason,
            "seconds": {k: round(v, 2) for k, v in seconds.items()},
            "throughput_vs_one_process": {k: round(base / v, 2) for k, v in seconds.items()},
            "cpu_seconds": {k: round(v, 1) for k, v in cpu.items()},
            "identical": digests["workers"] == digests["one thread, serial"]}


@contextmanager
def _environ(name: str, value: str):
    """The block with the environment variable ``name`` set to ``value`` (workers forked in it inherit it)."""
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


def _cpu_seconds() -> float:
    """CPU seconds of this process and of its finished children (the workers)."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


_BUSY = "import torch\ntorch.set_num_threads(1)\na = torch.randn(512, 512)\nwhile True:\n    a @ a\n"


def thread_policy_comparison(length: int = 200) -> dict:
    """Batch-1 work on one thread vs torch's default, idle and with a second process busy on one core:
    the LM teacher writing ``length`` characters (KV cache) and one query of the Fashion teacher.

    Best of three each; ``policy`` names the count :func:`kdlib.runtime.thread_policy` picks for each
    kind of work (writing: ``writing``; a query: ``training``) and ``policy_speedup`` what it gains
    over the default."""
    import subprocess
    import sys

    from ..compress import latency
    from ..experiments import lm_teacher, teacher
    from ..lm import generate
    from ..runtime import WRITING_THREADS_ENV, thread_policy, use_threads

    text = kdata.load("shakespeare", context=64)
    writer = lm_teacher(text, quiet=True).model.cpu()
    prompt = text.X_val[:1, :8]
    images = kdata.load("fashion_mnist")
    classifier = teacher(images, quiet=True).model.cpu()
    x = images.X_test[0]
    default, policy = torch.get_num_threads(), thread_policy()

    def chars_per_second(n: int) -> float:
        with _environ(WRITING_THREADS_ENV, str(n)):  # generate() applies the writing count itself
            generate(writer, prompt, 5)
            best = 0.0
            for _ in range(3):
                start = time.perf_counter()
                generate(writer, prompt, length, seed=0)
                best = max(best, length / (time.perf_counter() - start))
            return round(best, 1)

    def query_us(n: int) -> float:
        with use_threads(n):
            return round(1e6 * min(latency(classifier, x, min_seconds=0.2) for _ in range(3)), 1)

    def measure() -> dict:
        counts = sorted({1, default})
        return {"writing_chars_per_s": {n: chars_per_second(n) for n in counts},
                "query_us": {n: query_us(n) for n in counts}}

    result = {"default_threads": default, "policy": {"writing": policy["writing"], "query": policy["training"]},
              "idle": measure()}
    busy = subprocess.Popen([sys.executable, "-c", _BUSY], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        result["loaded"] = measure()
    finally:
        busy.kill()
        busy.wait()
    for state in ("idle", "loaded"):
        row = result[state]
        row["policy_speedup"] = {
            "writing": round(row["writing_chars_per_s"][policy["writing"]] / row["writing_chars_per_s"][default], 2),
            "query": round(row["query_us"][default] / row["query_us"][policy["training"]], 2)}
    return result


def format_tables(result: dict) -> str:
    lines = [format_epoch_table(result["epoch"]), ""]
    kd_ = result["kd_epoch"]
    lines.append("One KD epoch (784-64-10 student, batch 256)")
    for k, label in (("scratch", "scratch (labels only)"), ("kd_cached", "KD, cached teacher logits"),
                     ("kd_online", "KD, online teacher")):
        lines.append(f"  {label:36s} {kd_['seconds_per_epoch'][k]:8.2f} s  {kd_['ratio_to_scratch'][k]:7.2f} × scratch")
    t = result["teacher"]
    lines += ["", f"Teacher training: {t['achieved_gflops']} GFLOP/s achieved vs {t['matmul_peak_gflops']} GFLOP/s "
              f"matmul peak = {100 * t['share_of_peak']:.0f} % of peak"]
    m = result["meter"]
    lines += [f"Energy meter overhead: {m['seconds_metered']} s metered vs {m['seconds_plain']} s plain "
              f"= {m['overhead_ratio']:.4f} ({m['phases']} phases; {m['source'].split(':')[0]}); "
              f"one phase costs {m['phase_cost_us']} µs, i.e. {100 * m['overhead_from_phase_cost']:.4f} % of this workload"]
    lat = result["latency"]["microseconds"]
    lines += [f"Latency per query (CPU, batch 1): teacher {lat['teacher']} µs, student {lat['student']} µs, "
              f"int8 student {lat['student_int8']} µs"]
    lm = result["lm"]
    lines += ["", "Lesson 8: one step of the 40k character student (32 windows of 64)"]
    for k, label in (("scratch", "labels only"), ("kd_top8", "KD, cached top-8, renormalised"),
                     ("kd_bucket8", "KD, cached top-8 plus a bucket"), ("kd_sampled8", "KD, sampled-8 (the course's)"),
                     ("kd_top84", "KD, cached top-84 (all) logits"), ("kd_online", "KD, online teacher")):
        lines.append(f"  {label:36s} {lm['ms_per_step'][k]:8.2f} ms  {lm['ratio_to_scratch'][k]:7.2f} × scratch")
    lines += [f"LM teacher training: {lm['teacher_train_gflops']} GFLOP/s = {100 * lm['teacher_share_of_peak']:.0f} % "
              f"of the {lm['matmul_peak_gflops']} GFLOP/s matmul peak",
              "LM students training (batch 32 × 64): " + ", ".join(
                  f"{size} {lm['student_train_gflops'][size]} GFLOP/s = {100 * lm['student_share_of_peak'][size]:.0f} %"
                  for size in ("40k", "115k")) + " of peak",
              f"Sampling (teacher, batch 1): {lm['sampling_tokens_per_s']['with_cache']} characters/s with the "
              f"key/value cache, {lm['sampling_tokens_per_s']['without_cache']} without "
              f"({lm['kv_cache_speedup']}×)"]
    if "lm_efficiency" in result:
        eff = result["lm_efficiency"]
        lines += ["", f"Language-model training, share of the {eff['matmul_peak_gflops']} GFLOP/s matmul peak "
                      f"({eff['threads']} threads, batch 32 × 64): kdlib fit / plain loop"]
        for size, row in eff["share_of_peak"].items():
            lines.append(f"  {size:8s} {100 * row['kdlib']:5.1f} % / {100 * row['plain']:5.1f} %   "
                         f"({eff['gflops'][size]['kdlib']} / {eff['gflops'][size]['plain']} GFLOP/s)")
    if "parallel" in result:
        par = result["parallel"]
        lines += ["", f"{par['runs']} independent {par['size']} runs of {par['steps']} steps ({par['plan']}):"]
        for way, secs in par["seconds"].items():
            lines.append(f"  {way:20s} {secs:8.2f} s  {par['throughput_vs_one_process'][way]:5.2f} × throughput  "
                         f"{par['cpu_seconds'][way]:7.1f} CPU-s")
        lines.append(f"  workers' weights identical to the one-thread serial runs: {par['identical']}")
    if "threads" in result:
        th = result["threads"]
        d, pol = th["default_threads"], th["policy"]
        lines += ["", f"Batch-1 work on 1 thread vs torch's {d} (kdlib's policy: writing {pol['writing']}, "
                      f"a query {pol['query']}):"]
        for state in ("idle", "loaded"):
            row = th[state]
            w, q = row["writing_chars_per_s"], row["query_us"]
            lines.append(f"  {state:6s} writing {w[1]:7.1f} vs {w[d]:7.1f} chars/s; one Fashion query {q[1]} vs "
                         f"{q[d]} µs; the policy gains {row['policy_speedup']['writing']}× writing, "
                         f"{row['policy_speedup']['query']}× on a query")
    return "\n".join(lines)


def check_writable(out: Path) -> None:
    """Raise ``OSError`` naming ``out`` unless the results can be written there (a file, not a folder)."""
    out = Path(out)
    try:
        if out.is_dir():
            raise IsADirectoryError("it is a folder; give a file name such as " + str(out / "bench.json"))
        if out.parent.exists() and not out.parent.is_dir():
            raise NotADirectoryError(f"{out.parent} is a file, not a folder")
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out.parent):
            pass
        if out.exists() and not os.access(out, os.W_OK):
            raise PermissionError("the file is read-only")
    except OSError as err:
        raise OSError(f"cannot write the benchmark results to {out} ({err.strerror or err}); "
                      "choose another --out.") from err


def run(out: Path | None = None, repeats: int = 3) -> dict:
    """Run every benchmark (smoke size: a few steps each), print the tables, write JSON to ``out``.

    ``out`` is checked first, so an unwritable path fails at once, not after minutes of benchmarks.
    """
    if out is not None:
        check_writable(out)
    smoke = is_smoke()
    result = {"epoch": epoch_comparison(max_steps=20 if smoke else None, repeats=1 if smoke else repeats),
              "kd_epoch": kd_epoch_comparison(max_steps=10 if smoke else None),
              "teacher": teacher_throughput(steps=5 if smoke else 60),
              "meter": meter_overhead(seconds=1.0 if smoke else 30.0),
              "latency": latency_comparison(),
              "lm": lm_comparison(steps=8 if smoke else 150),
              "lm_efficiency": lm_efficiency(steps=6 if smoke else 150),
              "parallel": parallel_comparison(runs=2 if smoke else 4, steps=4 if smoke else 150),
              "threads": thread_policy_comparison(length=20 if smoke else 200),
              "smoke": smoke}
    print(format_tables(result))
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2))
        print(f"\nwrote {out}")
    return result
