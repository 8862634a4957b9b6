"""kdlib.energy: backends on fake counters, nested phases, per-query energy, CO₂, the ledger."""
import math
import os
import time
import warnings
from types import SimpleNamespace

import pytest
import torch

from kdlib import energy


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


def test_rapl_wraparound(tmp_path):
    root = powercap(tmp_path, ((9_000_000, 10_000_000),))
    rapl = energy.RaplBackend(root)
    start = rapl.read()
    set_uj(root, 1_000_000)             # 9 J -> wrapped at 10 J -> 1 J: 2 J used
    assert rapl.read() - start == pytest.approx(2.0)
    set_uj(root, 4_000_000)
    assert rapl.read() - start == pytest.approx(5.0)


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
        energy.energy_per_query(infer, [], min_seconds=0.2)


# --- CO2 --------------------------------------------------------------------------------------

def test_co2_hand_computed():
    assert energy.co2_kg(1.0) == pytest.approx(0.480)                       # world, 480 g/kWh
    assert energy.co2_kg(2.0, "France") == pytest.approx(2 * 56 / 1000)
    assert energy.co2_kg(10.0, "germany", pue=1.5) == pytest.approx(10 * 1.5 * 381 / 1000)
    assert energy.kwh(3.6e6) == 1.0
    for grid in energy.GRID_INTENSITY.values():
        assert grid.g_per_kwh > 0 and grid.source and grid.year >= 2020


def test_co2_bad_input():
    with pytest.raises(ValueError, match="known regions are world"):
        energy.co2_kg(1.0, "atlantis")
    with pytest.raises(ValueError, match="PUE .* ≥ 1"):
        energy.co2_kg(1.0, pue=0.9)
    with pytest.raises(ValueError, match="kwh must be a finite number ≥ 0"):
        energy.co2_kg(-1.0)


# --- ledger and break-even --------------------------------------------------------------------

def test_break_even_hand_computed():
    assert energy.break_even(100, 1, 10, 2) == pytest.approx(90)   # 100 + 90 = 10 + 180
    assert energy.break_even(100, 2, 10, 2) == math.inf             # same per query, dearer upfront
    assert energy.break_even(100, 3, 10, 2) == math.inf
    assert energy.break_even(5, 1, 10, 2) == 0                      # never worse
    with pytest.raises(ValueError):
        energy.break_even(-1, 1, 1, 1)


def test_ledger_totals_and_table():
    ledger = energy.Ledger()
    teacher = 1000.0
    ledger.add("distilled", "teacher training", teacher, "rapl counter (package-0)", seconds=60)
    ledger.add("distilled", "distillation", 200.0, "rapl counter (package-0)")
    ledger.add("distilled", "inference", 0.001, "estimate: test", per_query=True)
    ledger.add("scratch", "training", 300.0, "rapl counter (package-0)")
    ledger.add("scratch", "inference", 0.003, "rapl counter (package-0)", seconds=1e-4, per_query=True)
    assert ledger.total("distilled") == pytest.approx(1200)
    assert ledger.total("distilled", queries=1_000_000) == pytest.approx(1200 + 1000)
    assert ledger.total("scratch", queries=1000) == pytest.approx(303)
    assert ledger.break_even("distilled", "scratch") == pytest.approx(900 / 0.002)
    table = ledger.table()
    rows = {(r["route"], r["phase"]): r for r in table.rows}
    assert rows[("distilled", "inference")]["J"] == pytest.approx(1000)       # per 1M queries
    assert rows[("distilled", "inference")]["basis"] == "per 1,000,000 queries"
    assert rows[("scratch", "TOTAL")]["J"] == pytest.approx(300 + 3000)
    assert rows[("scratch", "inference")]["s"] == pytest.approx(100)            # 1e-4 s × 1M
    assert "estimate" in rows[("distilled", "TOTAL")]["source"]
    assert "per 1,000,000 queries" in str(table) and "<table>" in ledger._repr_html_()
    with pytest.raises(ValueError, match="already has"):
        ledger.add("scratch", "training", 1.0, "x")
    with pytest.raises(ValueError, match="source"):
        ledger.add("scratch", "eval", 1.0, "")
    with pytest.raises(ValueError, match="Unknown route"):
        ledger.total("giant")


# --- cross-check against CodeCarbon -----------------------------------------------------------

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
    theirs = tracker.final_emissions_data.cpu_energy * energy.J_PER_KWH
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
