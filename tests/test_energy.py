"""kdlib.energy, kdlib.ledger, kdlib.grid: meters on fake counters, nested phases, per-query energy, the ledger, CO₂."""
import math
import os
import time
import warnings
from types import SimpleNamespace

import pytest
import torch

import kdlib as kd
from kdlib import energy, grid, ledger


def busy(seconds: float) -> None:
    """CPU-bound torch work for about ``seconds``."""
    a = torch.randn(256, 256)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        a = torch.tanh(a @ a)


def powercap(root, packages=((1_000_000, 10_000_000),), extra_zone=True):
    """A fake /sys/class/powercap: one folder per package, (energy_uj, max_energy_range_uj)."""
    for i, (uj, max_uj) in enumerate(packages):
        zone = root / f"intel-rapl:{i}"
        zone.mkdir(parents=True)
        (zone / "name").write_text(f"package-{i}\n")
        (zone / "energy_uj").write_text(f"{uj}\n")
        (zone / "max_energy_range_uj").write_text(f"{max_uj}\n")
    if extra_zone:  # a sub-zone (core) and a non-package zone must not be counted
        sub = root / "intel-rapl:0:0"
        sub.mkdir()
        (sub / "name").write_text("core\n")
        (sub / "energy_uj").write_text("999999999\n")
    return root


def set_uj(root, uj, i=0):
    (root / f"intel-rapl:{i}" / "energy_uj").write_text(f"{uj}\n")


# --- RAPL -------------------------------------------------------------------------------------

def test_rapl_counts_package_zones_only(tmp_path):
    root = powercap(tmp_path, ((1_000_000, 10**9), (5_000_000, 10**9)))
    rapl = energy.RaplBackend(root)
    assert rapl.source == "rapl counter (package-0, package-1)"
    start = rapl.read()
    set_uj(root, 3_000_000, 0)          # +2 J
    set_uj(root, 5_500_000, 1)          # +0.5 J
    assert rapl.read() - start == pytest.approx(2.5)


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_rapl_wraparound(tmp_path):
    root = powercap(tmp_path, ((9_000_000, 10_000_000),))
    clock = Clock()
    rapl = energy.RaplBackend(root, clock=clock)
    start = rapl.read()
    set_uj(root, 1_000_000)             # 9 J -> wrapped at 10 J -> 1 J: 2 J used
    clock.now += 1.0                    # 2 J in 1 s: 2 W, a plausible wrap
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert rapl.read() - start == pytest.approx(2.0)
    set_uj(root, 4_000_000)
    assert rapl.read() - start == pytest.approx(5.0)
    assert rapl.resets == 0


def test_rapl_drop_without_a_wrap_is_a_labelled_reset_not_a_full_range(tmp_path):
    """A counter with a ~10⁶ J range that goes down by 1 J in 1 s did not wrap (that would be 10⁶ W)."""
    root = powercap(tmp_path, ((5_000_000, 10**12),))
    clock = Clock()
    rapl = energy.RaplBackend(root, clock=clock)
    meter = energy.EnergyMeter(backend=rapl, device="cpu")
    with meter:
        with meter.phase("before") as before:
            set_uj(root, 7_000_000)                 # +2 J
            clock.now += 1
        with meter.phase("spans the reset") as spans:
            clock.now += 1
            set_uj(root, 6_000_000)                 # down 1 J: reset, the interval counts 0 J
            with pytest.warns(UserWarning, match="intel-rapl:0/energy_uj went down from 7000000 to 6000000"):
                with meter.phase("inner"):
                    pass
            set_uj(root, 9_000_000)                 # +3 J after the reset
            clock.now += 1
        with meter.phase("after") as after:
            set_uj(root, 9_500_000)                 # +0.5 J
            clock.now += 1
    assert rapl.resets == 1
    assert before.joules == pytest.approx(2.0) and energy.LOWER_BOUND not in before.source
    assert spans.joules == pytest.approx(3.0) and spans.source.endswith(energy.LOWER_BOUND)
    assert after.joules == pytest.approx(0.5) and energy.LOWER_BOUND not in after.source
    assert meter.joules == pytest.approx(5.5) and meter.source.endswith(energy.LOWER_BOUND)
    assert "lower bound" in str(meter.table())


def test_rapl_drop_from_above_its_range_is_a_reset(tmp_path):
    root = powercap(tmp_path, ((12_000_000, 10_000_000),))   # reads above its own range: no wrap is possible
    clock = Clock()
    rapl = energy.RaplBackend(root, clock=clock)
    start = rapl.read()
    set_uj(root, 1_000_000)
    clock.now += 3600
    with pytest.warns(UserWarning, match="reset"):
        assert rapl.read() - start == pytest.approx(0.0)
    assert rapl.resets == 1


@pytest.mark.parametrize("damage", ["delete", "garbage", "negative"])
def test_rapl_counter_broken_mid_window_names_the_file(tmp_path, damage):
    root = powercap(tmp_path)
    meter = energy.EnergyMeter(backend="rapl", rapl_root=root, device="cpu")
    counter = root / "intel-rapl:0" / "energy_uj"
    with pytest.raises(energy.EnergyBackendError, match=f"RAPL counter {counter}") as caught:
        with meter:
            if damage == "delete":
                counter.unlink()
            else:
                counter.write_text("n/a\n" if damage == "garbage" else "-5\n")
    assert "energy of this window is unknown" in str(caught.value)


def test_rapl_meter_phases(tmp_path):
    root = powercap(tmp_path)
    meter = energy.EnergyMeter(backend="rapl", rapl_root=root, device="cpu")
    with meter:
        with meter.phase("work"):
            set_uj(root, 4_000_000)     # +3 J inside the phase
        set_uj(root, 5_000_000)         # +1 J outside it
    work, total = meter.results
    assert (work.path, work.joules, work.source) == ("work", pytest.approx(3.0), "rapl counter (package-0)")
    assert (total.path, total.joules) == ("total", pytest.approx(4.0))


@pytest.fixture
def refusing_rapl(tmp_path, monkeypatch):
    """A powercap tree whose energy_uj refuses to be read, as for non-root since Linux 5.10."""
    root = powercap(tmp_path)
    real = energy._read

    def read(path):
        if path.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(energy, "_read", read)
    monkeypatch.setattr(energy, "_RAPL_WARNED", False)
    return root


def test_rapl_unreadable_warns_once_and_falls_back(refusing_rapl):
    with pytest.warns(UserWarning, match="not readable") as caught:
        meter = energy.EnergyMeter(backend="auto", rapl_root=refusing_rapl, device="cpu")
    assert len(caught) == 1 and "estimate" in str(caught[0].message)
    assert meter.backend.name == "estimate" and meter.source.startswith("estimate")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second meter must not warn again
        energy.EnergyMeter(backend="auto", rapl_root=refusing_rapl, device="cpu")


def test_rapl_unreadable_is_an_error_when_asked_for(refusing_rapl):
    with pytest.raises(energy.EnergyBackendError, match="chmod"):
        energy.EnergyMeter(backend="rapl", rapl_root=refusing_rapl, device="cpu")


def test_no_powercap_falls_back_silently(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert energy.make_backend("auto", rapl_root=tmp_path / "none").name == "estimate"
    with pytest.raises(energy.EnergyBackendError, match="no RAPL package counters"):
        energy.make_backend("rapl", rapl_root=tmp_path / "none")
    with pytest.raises(ValueError, match="auto, nvml, rapl, estimate"):
        energy.make_backend("powermeter")


def test_available_backends(tmp_path):
    found = energy.available_backends(rapl_root=powercap(tmp_path), nvml=fake_nvml())
    assert found["nvml"].startswith("readable: nvml counter (GPU 0)")
    assert found["rapl"].startswith("readable: rapl counter")
    assert found["estimate"].startswith("readable: estimate")
    missing = energy.available_backends(rapl_root=tmp_path / "none", nvml=SimpleNamespace())
    assert missing["nvml"].startswith("not available") and missing["rapl"].startswith("not available")


# --- NVML -------------------------------------------------------------------------------------

def fake_nvml(step_mj=1500):
    """A stand-in for pynvml whose energy counter rises by ``step_mj`` at every reading."""
    state = {"mj": 10_000}

    def total_energy(handle):
        assert handle == "gpu-0"
        state["mj"] += step_mj
        return state["mj"]

    return SimpleNamespace(nvmlInit=lambda: None, nvmlDeviceGetHandleByIndex=lambda i: f"gpu-{i}",
                           nvmlDeviceGetTotalEnergyConsumption=total_energy)


def test_nvml_backend_with_fake_module():
    meter = energy.EnergyMeter(backend="nvml", nvml=fake_nvml(1500), device="cpu")
    with meter:
        with meter.phase("inference"):
            pass
    phase, total = meter.results
    assert phase.joules == pytest.approx(1.5)   # one step of 1500 mJ between its two readings
    assert total.joules == pytest.approx(4.5)   # three steps between the total's readings
    assert phase.source == "nvml counter (GPU 0)"
    assert "nvml" in str(meter.table())


def test_nvml_failure_is_an_error_when_asked_for():
    def broken():
        raise RuntimeError("NVML Shared Library Not Found")

    with pytest.raises(energy.EnergyBackendError, match="NVML cannot read"):
        energy.NvmlBackend(0, SimpleNamespace(nvmlInit=broken))


# --- estimate ---------------------------------------------------------------------------------

def test_estimate_idle_is_near_zero_and_work_costs_energy(monkeypatch):
    monkeypatch.delenv(energy.CPU_WATTS_ENV, raising=False)
    meter = energy.EnergyMeter(backend="estimate", device="cpu")
    with meter:
        with meter.phase("sleep"):
            time.sleep(0.2)
        with meter.phase("matmul"):
            busy(0.3)
    sleep, matmul, total = meter.results
    assert sleep.seconds >= 0.2 and matmul.seconds >= 0.3
    assert sleep.joules < 0.05 * matmul.joules
    # one busy core for 0.3 s costs 85 W × 0.3 s / logical CPUs; allow for a crowded machine
    assert matmul.joules > 0.25 * 85 * 0.3 / os.cpu_count()
    assert "estimate" in matmul.source and "85 W" in matmul.source
    text = str(meter.table())
    assert "estimate" in text and "sleep" in text and "total" in text


def test_estimate_scales_with_cpu_watts(monkeypatch):
    cpu = iter([10.0, 12.0, 10.0, 12.0])
    monkeypatch.setattr(energy.time, "process_time", lambda: next(cpu))
    low, high = energy.EstimateBackend(40), energy.EstimateBackend(80)
    a, b = -low.read() + low.read(), -high.read() + high.read()
    assert b == pytest.approx(2 * a)
    assert a == pytest.approx(2.0 / os.cpu_count() * 40)


def test_estimate_watts_from_env(monkeypatch):
    monkeypatch.setenv(energy.CPU_WATTS_ENV, "45")
    assert energy.EstimateBackend().watts == 45 and energy.CPU_WATTS_ENV in energy.EstimateBackend().source
    assert energy.EstimateBackend(30).watts == 30       # the argument wins
    monkeypatch.setenv(energy.CPU_WATTS_ENV, "lots")
    with pytest.raises(ValueError, match="KDLIB_CPU_WATTS"):
        energy.EstimateBackend()
    with pytest.raises(ValueError, match="CPU power .cpu_watts. must be a finite number > 0"):
        energy.EstimateBackend(-5)


# --- phases -----------------------------------------------------------------------------------

def test_nested_phases_paths_order_and_sums():
    meter = energy.EnergyMeter(backend="estimate", cpu_watts=100, device="cpu")
    with meter:
        with meter.phase("teacher"):
            for epoch in (1, 2):
                with meter.phase(f"epoch {epoch}"):
                    busy(0.1)
        with meter.phase("student"):
            busy(0.1)
    paths = [r.path for r in meter.results]
    assert paths == ["teacher", "teacher/epoch 1", "teacher/epoch 2", "student", "total"]
    by = {r.path: r for r in meter.results}
    children = by["teacher/epoch 1"].joules + by["teacher/epoch 2"].joules
    assert by["teacher"].joules >= children > 0
    assert by["teacher"].seconds >= by["teacher/epoch 1"].seconds + by["teacher/epoch 2"].seconds
    assert meter.joules == by["total"].joules >= by["teacher"].joules + by["student"].joules
    assert by["teacher/epoch 1"].name == "epoch 1" and by["teacher"].wh == by["teacher"].joules / 3600


def test_phase_yields_its_own_result_even_when_nested():
    meter = energy.EnergyMeter(backend="estimate", cpu_watts=100, device="cpu")
    with meter:
        with meter.phase("outer") as outer:
            busy(0.05)
            with meter.phase("inner") as inner:
                busy(0.1)
                with pytest.raises(RuntimeError, match="'outer/inner' is still running"):
                    inner.joules
            assert inner.done and not outer.done
    assert meter.results[-1].path == "total"         # why results[-1] is the wrong phase to read
    by = {r.path: r for r in meter.results}
    assert by["outer"] is outer and by["outer/inner"] is inner
    assert (outer.name, outer.path, inner.path) == ("outer", "outer", "outer/inner")
    assert outer.joules >= inner.joules > 0 and outer.seconds >= inner.seconds >= 0.1
    assert "running" in repr(energy.PhaseResult("x", "x")) and "joules=" in repr(inner)


def test_phase_without_entering_the_meter():
    meter = energy.EnergyMeter(backend="estimate", device="cpu")
    with meter.phase("a"):
        busy(0.05)
    with meter.phase("b"):
        pass
    assert [r.path for r in meter.results] == ["a", "b"]
    assert meter.joules == pytest.approx(sum(r.joules for r in meter.results))
    with pytest.raises(ValueError, match="without '/'"):
        with meter.phase("a/b"):
            pass


def test_meter_cannot_be_entered_twice():
    meter = energy.EnergyMeter(backend="estimate", device="cpu")
    with meter:
        with pytest.raises(RuntimeError, match="already measuring"):
            with meter:
                pass


# --- energy per query -------------------------------------------------------------------------

def test_energy_per_query_window_and_count():
    calls = []
    net = torch.nn.Linear(32, 4)

    def infer(x):
        calls.append(torch.is_grad_enabled())
        return net(x)

    out = energy.energy_per_query(infer, torch.randn(16, 32), min_seconds=0.2, backend="estimate", device="cpu")
    reps = len(calls) - 1                       # the first call is the untimed warm-up
    assert out["queries"] == reps * 16 and reps >= 1
    assert out["seconds_per_query"] * out["queries"] >= 0.2
    assert out["joules_per_query"] >= 0 and "estimate" in out["source"]
    assert not any(calls)                       # inference ran under torch.no_grad()
    with pytest.raises(ValueError, match="non-empty"):
        energy.energy_per_query(infer, torch.zeros(0, 32), min_seconds=0.2)


def test_energy_per_query_bad_batch_and_fn():
    net = torch.nn.Linear(3, 2)
    with pytest.raises(TypeError, match=r"one tensor with a query per row, got a list of 2; stack it first"):
        energy.energy_per_query(net, [torch.zeros(3), torch.zeros(3)], min_seconds=0.1)
    with pytest.raises(TypeError, match="got a list of 0"):
        energy.energy_per_query(net, [], min_seconds=0.1)
    with pytest.raises(TypeError, match="fn must be a model or function, got Tensor"):
        energy.energy_per_query(torch.zeros(3), torch.zeros(4, 3), min_seconds=0.1)


# --- CO2 --------------------------------------------------------------------------------------

def test_co2_hand_computed():
    assert grid.co2_kg(1.0) == pytest.approx(0.480)                       # world, 480 g/kWh
    assert grid.co2_kg(2.0, "France") == pytest.approx(2 * 56 / 1000)
    assert grid.co2_kg(10.0, "germany", pue=1.5) == pytest.approx(10 * 1.5 * 381 / 1000)
    assert grid.kwh(3.6e6) == 1.0
    for region in grid.GRID_INTENSITY.values():
        assert region.g_per_kwh > 0 and region.source and region.year >= 2020


def test_co2_bad_input():
    with pytest.raises(ValueError, match="known regions are world"):
        grid.co2_kg(1.0, "atlantis")
    with pytest.raises(ValueError, match="PUE .* ≥ 1"):
        grid.co2_kg(1.0, pue=0.9)
    with pytest.raises(ValueError, match="kwh must be a finite number ≥ 0"):
        grid.co2_kg(-1.0)


# --- ledger and break-even --------------------------------------------------------------------

def test_break_even_hand_computed():
    assert ledger.break_even(100, 1, 10, 2) == pytest.approx(90)   # 100 + 90 = 10 + 180
    assert ledger.break_even(100, 2, 10, 2) == math.inf             # same per query, dearer upfront
    assert ledger.break_even(100, 3, 10, 2) == math.inf
    assert ledger.break_even(5, 1, 10, 2) == 0                      # never worse
    with pytest.raises(ValueError):
        ledger.break_even(-1, 1, 1, 1)


def test_ledger_totals_and_table():
    book = ledger.Ledger()
    teacher = 1000.0
    book.add("distilled", "teacher training", teacher, "rapl counter (package-0)", seconds=60)
    book.add("distilled", "distillation", 200.0, "rapl counter (package-0)")
    book.add("distilled", "inference", 0.001, "estimate: test", per_query=True)
    book.add("scratch", "training", 300.0, "rapl counter (package-0)")
    book.add("scratch", "inference", 0.003, "rapl counter (package-0)", seconds=1e-4, per_query=True)
    assert book.total("distilled") == pytest.approx(1200)
    assert book.total("distilled", queries=1_000_000) == pytest.approx(1200 + 1000)
    assert book.total("scratch", queries=1000) == pytest.approx(303)
    assert book.break_even("distilled", "scratch") == pytest.approx(900 / 0.002)
    table = book.table()
    rows = {(r["route"], r["phase"]): r for r in table.rows}
    assert rows[("distilled", "inference")]["J"] == pytest.approx(1000)       # per 1M queries
    assert rows[("distilled", "inference")]["basis"] == "per 1,000,000 queries"
    assert rows[("scratch", "TOTAL")]["J"] == pytest.approx(300 + 3000)
    assert rows[("scratch", "inference")]["s"] == pytest.approx(100)            # 1e-4 s × 1M
    assert "estimate" in rows[("distilled", "TOTAL")]["source"]
    assert "per 1,000,000 queries" in str(table) and "<table" in book._repr_html_()
    with pytest.raises(ValueError, match="already has"):
        book.add("scratch", "training", 1.0, "x")
    with pytest.raises(ValueError, match="source"):
        book.add("scratch", "eval", 1.0, "")
    with pytest.raises(ValueError, match="Unknown route"):
        book.total("giant")


def test_ledger_total_refuses_a_negative_or_odd_query_count():
    book = ledger.Ledger().add("route", "training", 10.0, "estimate: test").add("route", "inference", 0.5,
                                                                             "estimate: test", per_query=True)
    assert book.total("route", 4) == pytest.approx(12.0)
    with pytest.raises(ValueError, match=r"queries must be a finite number ≥ 0, got -4\. It is the number of queries"):
        book.total("route", -4)
    for odd in ("1000", float("nan"), None):
        with pytest.raises(ValueError, match="queries must be a finite number"):
            book.total("route", odd)


def test_estimate_matches_codecarbon_process_mode(tmp_path, monkeypatch):
    """Same workload, same forced CPU power: CodeCarbon's process-mode cpu_energy vs our estimate.

    CodeCarbon 3.x with ``force_cpu_power=W`` and ``tracking_mode="process"`` samples
    ``W × (process CPU-seconds / wall seconds) / cpu_count`` and integrates it over time, so both
    should come to ``W × CPU-seconds / logical CPUs``.
    """
    codecarbon = pytest.importorskip("codecarbon")
    monkeypatch.chdir(tmp_path)
    watts = 85
    tracker = codecarbon.OfflineEmissionsTracker(
        country_iso_code="FRA", tracking_mode="process", force_cpu_power=watts, measure_power_secs=0.5,
        log_level="error", output_dir=str(tmp_path), output_methods=[], allow_multiple_runs=True)
    meter = energy.EnergyMeter(backend="estimate", cpu_watts=watts, device="cpu")
    tracker.start()
    try:
        with meter:
            busy(2.5)
    finally:
        tracker.stop()
    theirs = tracker.final_emissions_data.cpu_energy * grid.J_PER_KWH
    ratio = meter.joules / theirs
    print(f"kdlib estimate {meter.joules:.2f} J, CodeCarbon {theirs:.2f} J, ratio {ratio:.3f}")
    assert 0.5 < ratio < 2.0
    assert list(tmp_path.iterdir()) == []   # nothing written


def test_auto_on_cuda_without_nvml_warns_and_measures_the_cpu(tmp_path):
    broken = SimpleNamespace(nvmlInit=lambda: (_ for _ in ()).throw(RuntimeError("no driver")))
    with pytest.warns(UserWarning, match="not the GPU"):
        backend = energy.make_backend("auto", device="cuda:0", rapl_root=tmp_path, nvml=broken)
    assert backend.name == "estimate"


def test_rapl_counter_without_a_number(tmp_path):
    root = powercap(tmp_path)
    set_uj(root, "n/a")
    with pytest.raises(energy.EnergyBackendError, match="not readable .ValueError"):
        energy.RaplBackend(root)
    assert energy.make_backend("auto", rapl_root=root).name == "estimate"


def test_capstone_teacher_joules_given_a_string_is_a_clear_error():
    data = kd.load("digits", smoke=False)
    meter = energy.EnergyMeter(backend="estimate", device="cpu")
    with meter:
        busy(0.01)
    with pytest.raises(ValueError, match="teacher_joules must be a finite number"):
        kd.capstone.score("x", kd.mlp(64, (4,), 10), data, meter, teacher_joules="1200", min_seconds=0.1)
