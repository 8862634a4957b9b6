"""kd.workers: independent zoo runs in worker processes give what a serial run gives."""
import multiprocessing

import pytest
import torch

from kdlib import workers, zoo
from kdlib.lm import char_transformer
from kdlib.train import fit

needs_fork = pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="no fork here")


def _job(seed: int, tag: str, fail: bool = False):
    """A zoo run: a tiny character transformer trained for a few steps on seeded random ids."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randint(0, 12, (64, 16), generator=g)

    def build():
        return char_transformer(12, 16, layers=1, heads=2, width=16)

    def train(model):
        if fail:
            raise ValueError(f"run {seed} broke on purpose")
        torch.manual_seed(seed)
        model.load_state_dict(build().state_dict())
        fit(model, (X, X.roll(-1, 1)), epochs=2, batch_size=16, seed=seed, quiet=True, device="cpu")
        return {"threads": torch.get_num_threads()}

    return zoo.load_or_train(f"workers-{tag}", {"seed": seed}, build, train)


@needs_fork
def test_workers_give_the_serial_weights_and_thread_count(data_home):
    serial = workers.train_in_parallel([lambda s=s: _job(s, "serial") for s in range(3)], workers=1, quiet=True)
    parallel = workers.train_in_parallel([lambda s=s: _job(s, "parallel") for s in range(3)], workers=2, quiet=True)
    assert [e.digest for e in serial] == [e.digest for e in parallel]
    assert len({e.digest for e in serial}) == 3  # three different runs, not one run three times
    assert all(e.meta["threads"] == 1 for e in serial + parallel)
    assert all(e.cached for e in parallel)  # trained by the workers, loaded here from the zoo


@needs_fork
def test_a_failed_run_is_reported_after_the_others_finish(data_home):
    jobs = [lambda: _job(0, "mixed"), lambda: _job(1, "mixed", fail=True), lambda: _job(2, "mixed")]
    with pytest.raises(RuntimeError, match="(?s)1 of 3 runs failed.*broke on purpose"):
        workers.train_in_parallel(jobs, workers=2, quiet=True)
    assert len(list((data_home / "zoo").glob("workers-mixed-*.pt"))) == 2  # the others' work is kept


def test_plan_and_bad_arguments():
    assert workers.plan(5, workers=1).workers == 1
    assert workers.plan(1, workers=4).workers == 1  # never more workers than jobs
    assert workers.plan(0).workers == 1
    with pytest.raises(ValueError):
        workers.plan(3, workers=0)
    with pytest.raises(ValueError):
        workers.plan(3, threads=0)
    with pytest.raises(TypeError, match="functions of no arguments"):
        workers.train_in_parallel([1, 2])


def test_plan_runs_serially_where_a_counter_meters_the_whole_machine(monkeypatch):
    class Counter:
        name = "rapl"

    monkeypatch.setattr("kdlib.energy.make_backend", lambda *a, **k: Counter())
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    how = workers.plan(4)
    assert how.workers == 1 and "whole machine" in how.reason


def test_use_threads_restores_the_count():
    from kdlib.runtime import use_threads

    before = torch.get_num_threads()
    with use_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
