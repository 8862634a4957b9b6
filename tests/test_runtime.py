import pytest
import torch

from kdlib import runtime


@pytest.mark.parametrize("value,expected", [("1", True), ("true", True), ("0", False), ("", False), ("off", False)])
def test_smoke_switch(monkeypatch, value, expected):
    monkeypatch.setenv(runtime.SMOKE_ENV, value)
    assert runtime.is_smoke() is expected
    assert runtime.sized("full", "smoke") == ("smoke" if expected else "full")


def test_smoke_switch_rejects_garbage(monkeypatch):
    monkeypatch.setenv(runtime.SMOKE_ENV, "maybe")
    with pytest.raises(ValueError, match="KDLIB_SMOKE"):
        runtime.is_smoke()


def test_auto_device_is_cpu_without_gpu(monkeypatch):
    monkeypatch.delenv("KDLIB_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(runtime, "_mps_available", lambda: False)
    choice = runtime.choose_device()
    assert choice.device == torch.device("cpu") and "no CUDA" in choice.reason


def test_auto_device_prefers_cuda(monkeypatch):
    monkeypatch.delenv("KDLIB_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "Fake GPU")
    assert runtime.choose_device().device.type == "cuda"


def test_env_device_override(monkeypatch):
    monkeypatch.setenv("KDLIB_DEVICE", "cpu")
    assert runtime.choose_device().reason == "from KDLIB_DEVICE"


@pytest.mark.parametrize("bad", ["tpu", "gpu", "cuda:x", "banana"])
def test_unknown_device_is_clear_error(bad):
    with pytest.raises(ValueError, match="device"):
        runtime.choose_device(bad)


def test_unavailable_cuda_is_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA GPU"):
        runtime.choose_device("cuda")


def test_seed_everything_repeats_draws():
    g1 = runtime.seed_everything(7)
    a = torch.rand(3), torch.randperm(10, generator=g1)
    g2 = runtime.seed_everything(7)
    b = torch.rand(3), torch.randperm(10, generator=g2)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_seed_must_be_int():
    with pytest.raises(TypeError):
        runtime.seed_everything(1.5)


def test_synchronize_is_public_and_a_no_op_on_cpu(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda dev=None: calls.append(dev))
    assert runtime.synchronize("cpu") is None and runtime.synchronize(torch.device("cpu")) is None
    assert calls == []
    runtime.synchronize(torch.device("cuda", 1))      # a torch.device is taken as is, no availability check
    assert calls == [torch.device("cuda", 1)]


def test_thread_policy_writes_on_one_thread_and_refuses_bad_values(monkeypatch):
    import torch

    from kdlib.runtime import thread_policy, writing_threads

    monkeypatch.delenv("KDLIB_WRITING_THREADS", raising=False)
    assert thread_policy() == {"training": torch.get_num_threads(), "writing": 1}
    before = torch.get_num_threads()
    with writing_threads():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    monkeypatch.setenv("KDLIB_WRITING_THREADS", "2")
    assert thread_policy()["writing"] == 2
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("KDLIB_WRITING_THREADS", bad)
        with pytest.raises(ValueError, match="KDLIB_WRITING_THREADS"):
            thread_policy()


def test_generate_writes_one_prompt_on_the_writing_threads(monkeypatch):
    import torch

    from kdlib import lm

    seen = []
    model = lm.char_transformer(10, 16, layers=1, heads=2, width=8)
    real = model.forward
    monkeypatch.setattr(model, "forward", lambda *a, **k: (seen.append(torch.get_num_threads()), real(*a, **k))[1])
    before = torch.get_num_threads()
    lm.generate(model, torch.tensor([1, 2]), 3)
    assert set(seen) == {1} and torch.get_num_threads() == before
    seen.clear()
    lm.generate(model, torch.tensor([[1, 2], [3, 4]]), 3)  # a batch of prompts: torch's own count
    assert set(seen) == {before}
