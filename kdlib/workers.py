"""Independent training runs in parallel worker processes, with the results a serial run gives.

A small model leaves most of a CPU idle: a 40k-parameter transformer step is a chain of small
matrix products that two threads split badly (≈1.5× one thread's speed on two cores), so two
single-thread processes, each training its own run, get more done than one two-thread process
(:mod:`kdlib.tooling.bench` measures by how much).  :func:`train_in_parallel` runs a list of
independent jobs that way::

    jobs = [lambda seed=seed: experiments.lm_student(data, "40k", "scratch", seed, transfer)
            for seed in range(4)]
    entries = kd.workers.train_in_parallel(jobs)        # 2 workers × 1 thread on 2 cores

Each job is a function of no arguments that trains (or loads) a zoo entry through the zoo's one
training path (:meth:`kdlib.experiments.base.Experiment.load_or_train`).  The workers train and save
the entries; the jobs are then called once more in this process, in order, and load what the
workers saved, so what comes back is exactly what the zoo holds.

**Same results as serial.**  A run's weights depend on its seed *and on its thread count* (a
matrix product split over two threads adds in another order).  Every job runs with ``threads``
threads, in a worker or, with ``workers=1``, here in this process — so ``workers=1`` and
``workers=2`` give bit-identical weights (tested), and the thread count of each run is part of
its documented setting.

**Metering.**  Each worker is a process of its own, so the CPU-time energy estimate of a run
(:class:`kdlib.energy.EstimateBackend`) counts that run's CPU seconds only: one ledger line per
run.  A whole-machine counter (RAPL, NVML) would see both workers at once, so workers are used
only when the estimate is what meters the runs; otherwise, and on a GPU (one device, one run at a
time), the jobs run serially here.  Workers are forked (Linux), so they share this process's
tensors without copying them; where ``fork`` is not available the jobs run serially, and
:func:`plan` says why.

Introduced in lesson 8.
"""
from __future__ import annotations

import multiprocessing
import os
import queue
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from tqdm.auto import tqdm

from .runtime import use_threads
from .validate import whole_number


@dataclass(frozen=True)
class Plan:
    """How :func:`train_in_parallel` will run: ``workers`` processes of ``threads`` threads each, and why."""

    workers: int
    threads: int
    reason: str


def _serial_reason(device) -> str | None:
    """Why jobs must run one at a time here, or ``None`` when workers may run them."""
    from .energy import make_backend
    from .runtime import device as pick_device

    if "fork" not in multiprocessing.get_all_start_methods():
        return "this platform cannot fork worker processes"
    if pick_device(device).type != "cpu" or torch.cuda.is_initialized():
        return "runs on a GPU go one at a time"
    if multiprocessing.current_process().daemon:
        return "already inside a worker"
    try:
        backend = make_backend("auto")
    except Exception:  # noqa: BLE001 - an unreadable meter is the meter's business, not the pool's
        return None
    if backend.name != "estimate":
        return f"the {backend.name} energy counter measures the whole machine, not one run"
    return None


def plan(jobs: int, workers: int | None = None, threads: int = 1, device=None) -> Plan:
    """The workers and threads per worker for ``jobs`` independent runs on this machine.

    ``workers=None``: as many single-``threads`` workers as the CPU cores allow (``cores // threads``),
    never more than there are jobs.  One worker, or a machine where workers cannot be used
    (see the module docstring), runs the jobs here, one after another, with ``threads`` threads.
    """
    jobs = whole_number(jobs, "jobs", low=0)
    threads = whole_number(threads, "threads")
    cores = os.cpu_count() or 1
    if workers is None:
        workers = max(1, cores // threads)
    workers = whole_number(workers, "workers")
    workers = max(1, min(workers, jobs))
    if workers == 1:
        return Plan(1, threads, "one run at a time, here")
    reason = _serial_reason(device)
    if reason is not None:
        return Plan(1, threads, f"one run at a time, here: {reason}")
    return Plan(workers, threads, f"{workers} worker processes × {threads} thread(s) on {cores} cores")


def _worker(jobs, todo, done, threads: int) -> None:
    """One worker process: take job numbers from ``todo`` until ``None``; report each on ``done``."""
    devnull = open(os.devnull, "w")
    sys.stdout = sys.stderr = devnull  # never write to the parent's notebook channels from a fork
    torch.set_num_threads(threads)
    for index in iter(todo.get, None):
        start_cpu, start = time.process_time(), time.perf_counter()
        try:
            jobs[index]()
            done.put((index, None, time.perf_counter() - start, time.process_time() - start_cpu))
        except BaseException:  # noqa: BLE001 - reported to the parent, which raises it
            done.put((index, traceback.format_exc(), time.perf_counter() - start, time.process_time() - start_cpu))


def train_in_parallel(jobs: Sequence[Callable[[], object]], *, workers: int | None = None, threads: int = 1,
                      device=None, desc: str = "runs", quiet: bool = False) -> list:
    """Run independent zoo jobs in worker processes; return each job's result, in order.

    ``jobs``: functions of no arguments, each training or loading one zoo entry (its key must differ
    from the others'); every one runs with ``threads`` torch threads.  ``workers`` as in :func:`plan`.
    A progress bar counts finished runs.  A job that fails in a worker is reported with its
    traceback as a ``RuntimeError`` once the other runs have finished (their entries are kept).
    After the workers, each job is called here in order and loads its entry from the zoo.
    """
    jobs = list(jobs)
    if not all(callable(job) for job in jobs):
        raise TypeError("train_in_parallel takes functions of no arguments, e.g. "
                        "[lambda seed=seed: experiments.lm_student(data, '40k', 'scratch', seed) for seed in range(3)].")
    how = plan(len(jobs), workers, threads, device)
    if how.workers > 1:
        _run_workers(jobs, how, desc, quiet)
    bar = tqdm(total=len(jobs), desc=desc, disable=quiet or how.workers > 1, leave=False)
    results = []
    with use_threads(how.threads):
        for job in jobs:
            results.append(job())
            bar.update(1)
    bar.close()
    return results


def _run_workers(jobs: list, how: Plan, desc: str, quiet: bool) -> None:
    context = multiprocessing.get_context("fork")
    todo, done = context.Queue(), context.Queue()
    for index in range(len(jobs)):
        todo.put(index)
    for _ in range(how.workers):
        todo.put(None)
    procs = [context.Process(target=_worker, args=(jobs, todo, done, how.threads), daemon=True)
             for _ in range(how.workers)]
    for proc in procs:
        proc.start()
    failures, cpu = [], 0.0
    bar = tqdm(total=len(jobs), desc=f"{desc} ({how.workers} workers × {how.threads} thread)", disable=quiet)
    try:
        for _ in range(len(jobs)):
            while True:
                try:
                    index, error, _, cpu_seconds = done.get(timeout=5.0)
                    break
                except queue.Empty:  # make sure the workers are still alive
                    if not any(proc.is_alive() for proc in procs):
                        raise RuntimeError("Every worker process stopped before its runs were done (killed for "
                                           "memory?); run again with workers=1 to train them here.") from None
            cpu += cpu_seconds
            if error is not None:
                failures.append((index, error))
            bar.set_postfix(cpu_s=f"{cpu:.0f}")
            bar.update(1)
    finally:
        bar.close()
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
    if failures:
        index, error = failures[0]
        raise RuntimeError(f"{len(failures)} of {len(jobs)} runs failed in a worker; run {index} said:\n{error}")
