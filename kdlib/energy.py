"""Energy and CO₂: measured where the hardware allows it, estimated — and labelled so — where not.

An :class:`EnergyMeter` reads a cumulative counter at the edges of named, nestable phases; a
phase's energy is the difference of two readings.  Three backends, best first:

* ``nvml``: the GPU's own energy counter (NVIDIA Volta or newer), whole GPU;
* ``rapl``: the CPU package counters under ``/sys/class/powercap`` (Intel, and AMD Zen), whole CPU;
* ``estimate``: this process's share of CPU time × an assumed CPU power (no counter needed).

Every figure carries its source label, and an estimate always says "estimate".  :class:`Ledger`
and :func:`break_even` turn the figures into the course's question — when does a distilled
student repay its teacher? — and :func:`co2_kg` into CO₂.  Introduced in lesson 4.
"""
from __future__ import annotations

import math
import os
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch

from .perf import _sync
from .runtime import device as pick_device
from .tables import Table

#: CPU power assumed by the estimate: CodeCarbon's fallback when it cannot identify the CPU
#: (``POWER_CONSTANT = 85`` in ``codecarbon/external/hardware.py``, CodeCarbon 3.x).
DEFAULT_CPU_WATTS = 85.0
CPU_WATTS_ENV = "KDLIB_CPU_WATTS"
RAPL_ROOT = "/sys/class/powercap"
BACKENDS = ("auto", "nvml", "rapl", "estimate")
J_PER_KWH = 3.6e6


class EnergyBackendError(RuntimeError):
    """An energy backend cannot be read on this machine; the message says why and what to do."""


def _read(path: Path) -> str:
    with open(path) as f:  # one place to read counters, so tests can simulate a refusal
        return f.read().strip()


def _number(value, what: str, low: float = 0.0, strict: bool = False, hint: str = "") -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < low or (strict and value == low):
        raise ValueError(f"{what} must be a finite number {'>' if strict else '≥'} {low:g}, got {value!r}.{hint}")
    return float(value)


class EstimateBackend:
    """``joules = CPU seconds of this process / logical CPUs × CPU watts`` (lesson 4).

    ``time.process_time()`` counts user + system time of every thread of this process (not of
    child processes such as DataLoader workers).  Dividing by the logical CPU count gives the
    process's share of the whole package, so 1 s of one busy core on a 2-CPU, 85 W machine
    costs 42.5 J.  This is CodeCarbon's ``tracking_mode="process"`` formula with a forced CPU
    power; the default 85 W is CodeCarbon's fallback TDP (:data:`DEFAULT_CPU_WATTS`).  It is
    an *estimate*: TDP is a design figure, not a measurement, there is no idle or memory term,
    and a laptop is nearer 15–45 W — set ``cpu_watts`` or ``KDLIB_CPU_WATTS`` for your CPU.
    """

    name = "estimate"

    def __init__(self, cpu_watts: float | None = None):
        how, env = "cpu_watts", os.environ.get(CPU_WATTS_ENV, "").strip()
        if cpu_watts is None and env:
            how = CPU_WATTS_ENV
            try:
                cpu_watts = float(env)
            except ValueError:
                raise ValueError(f"{CPU_WATTS_ENV}={env!r} is not a number of watts; set e.g. 45 or unset it.") from None
        elif cpu_watts is None:
            cpu_watts, how = DEFAULT_CPU_WATTS, "CodeCarbon's fallback TDP"
        self.watts = _number(cpu_watts, f"CPU power ({how})", strict=True)
        self.cpus = os.cpu_count() or 1
        self.source = f"estimate: CPU-time share × {self.watts:g} W TDP ({how}; {self.cpus} logical CPUs)"

    def read(self) -> float:
        return time.process_time() / self.cpus * self.watts


class RaplBackend:
    """Sum of the CPU package counters ``intel-rapl:N/energy_uj`` (µJ) under ``root`` (lesson 4).

    Only top-level zones whose ``name`` starts with "package" are summed (their sub-zones, core
    and dram, are parts of them).  A counter wraps at ``max_energy_range_uj``: a reading below
    the previous one adds that range.  A wrap is seen only if the counter is read at least once
    per wrap period (hundreds of kJ: tens of minutes at full power), i.e. per phase edge.
    Since Linux 5.10 ``energy_uj`` is readable by root only (CVE-2020-8694).
    """

    name = "rapl"

    def __init__(self, root: str | os.PathLike = RAPL_ROOT):
        root = Path(root)
        zones = [z for z in sorted(root.glob("intel-rapl:*")) if z.name.count(":") == 1]
        try:
            self.zones = [z for z in zones if _read(z / "name").startswith("package")]
            if not self.zones:
                raise EnergyBackendError(f"no RAPL package counters under {root} (not an Intel/AMD "
                                         "Linux machine, or a VM/container without powercap).")
            self._range = [int(_read(z / "max_energy_range_uj")) for z in self.zones]
            self._last = [int(_read(z / "energy_uj")) for z in self.zones]
        except (OSError, ValueError) as err:  # ValueError: a counter file that holds no number
            raise EnergyBackendError(f"RAPL counters under {root} are not readable ({err.__class__.__name__}: "
                                     f"{getattr(err, 'strerror', None) or err}); run as root or `sudo chmod a+r "
                                     f"{root}/intel-rapl:*/energy_uj`.") from err
        self._wraps = [0] * len(self.zones)
        self.source = f"rapl counter ({', '.join(_read(z / 'name') for z in self.zones)})"

    def read(self) -> float:
        total = 0
        for i, zone in enumerate(self.zones):
            raw = int(_read(zone / "energy_uj"))
            if raw < self._last[i]:
                self._wraps[i] += self._range[i]
            self._last[i] = raw
            total += raw + self._wraps[i]
        return total / 1e6


class NvmlBackend:
    """The GPU's cumulative energy counter, ``nvmlDeviceGetTotalEnergyConsumption`` (mJ; lesson 4).

    Whole-GPU energy (every process on it), NVIDIA Volta or newer, through ``pynvml`` (package
    ``nvidia-ml-py``) or an injected module with the same three functions.  ``index`` is NVML's
    GPU index; the meter synchronises CUDA before every reading.  The host CPU is not included.
    """

    name = "nvml"

    def __init__(self, index: int = 0, nvml=None):
        if nvml is None:
            try:
                import pynvml as nvml
            except ImportError as err:
                raise EnergyBackendError("pynvml is not installed: pip install nvidia-ml-py.") from err
        try:
            nvml.nvmlInit()
            self._handle = nvml.nvmlDeviceGetHandleByIndex(index)
            nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
        except Exception as err:  # NVMLError: no driver, no such GPU, or a GPU without the counter
            raise EnergyBackendError(f"NVML cannot read the energy of GPU {index}: {err}") from err
        self._nvml = nvml
        self.source = f"nvml counter (GPU {index})"

    def read(self) -> float:
        return self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle) / 1000.0


_RAPL_WARNED = False


def _nvml_index(dev: torch.device) -> int:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")
    try:  # CUDA numbers only the visible GPUs; NVML numbers them all
        return int(visible[dev.index or 0])
    except (ValueError, IndexError):
        return dev.index or 0


def make_backend(backend="auto", cpu_watts=None, device=None, rapl_root=RAPL_ROOT, nvml=None):
    """The backend for a name (see :data:`BACKENDS`), or ``backend`` itself if it is an object.

    ``"auto"``: nvml when ``device`` is CUDA and NVML works, else rapl if readable, else the
    estimate.  RAPL counters that exist but refuse to be read give one warning per process.
    An explicitly requested backend that cannot be read raises :class:`EnergyBackendError`.
    """
    global _RAPL_WARNED
    if not isinstance(backend, str):
        return backend
    if backend not in BACKENDS:
        raise ValueError(f"Unknown energy backend {backend!r}: use one of {', '.join(BACKENDS)}.")
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if backend == "nvml" or (backend == "auto" and dev.type == "cuda"):
        try:
            return NvmlBackend(_nvml_index(dev) if dev.type == "cuda" else 0, nvml)
        except EnergyBackendError as err:
            if backend == "nvml":
                raise
            warnings.warn(f"{err} kdlib measures the CPU instead, not the GPU's energy.", stacklevel=3)
    if backend in ("rapl", "auto"):
        try:
            return RaplBackend(rapl_root)
        except EnergyBackendError as err:
            if backend == "rapl":
                raise
            if isinstance(err.__cause__, PermissionError) and not _RAPL_WARNED:
                _RAPL_WARNED = True
                warnings.warn(f"{err} kdlib falls back to a CPU-time estimate.", stacklevel=3)
    return EstimateBackend(cpu_watts)


def available_backends(rapl_root=RAPL_ROOT, nvml=None) -> dict[str, str]:
    """For each backend, its source label if it can be read here, else why not (``kdlib doctor``)."""
    out = {}
    for name, build in (("nvml", lambda: NvmlBackend(0, nvml)), ("rapl", lambda: RaplBackend(rapl_root)),
                        ("estimate", EstimateBackend)):
        try:
            out[name] = f"readable: {build().source}"
        except (EnergyBackendError, ValueError) as err:
            out[name] = f"not available: {err}"
    return out


@dataclass(frozen=True)
class PhaseResult:
    """One measured phase: ``path`` is ``"teacher/epoch 1"`` for a phase nested in another."""

    name: str
    path: str
    joules: float
    seconds: float
    source: str

    @property
    def wh(self) -> float:
        """Watt-hours, ``joules / 3600``."""
        return self.joules / 3600


class EnergyMeter:
    """Energy of named, nestable phases; ``with meter:`` measures the whole window as "total".

    ``with meter: with meter.phase("teacher"): with meter.phase("epoch 1"): ...`` gives
    ``results`` "teacher", "teacher/epoch 1", "total": finished phases in the order they started,
    then the total; entering again starts afresh, and ``phase`` works on a meter never entered.
    The device (default: kdlib's) is synchronised before every reading (lesson 4).
    """

    def __init__(self, backend="auto", cpu_watts: float | None = None, device=None,
                 rapl_root=RAPL_ROOT, nvml=None):
        self.device = pick_device(device)
        self.backend = make_backend(backend, cpu_watts, self.device, rapl_root, nvml)
        self.source = self.backend.source
        self._slots: list[PhaseResult | None] = []   # one per started phase, filled when it ends
        self._stack: list[str] = []
        self._total, self._window = None, None

    def _reading(self) -> tuple[float, float]:
        _sync(self.device)
        return self.backend.read(), time.perf_counter()

    @contextmanager
    def phase(self, name: str):
        """Measure the enclosed block as phase ``name``, nested in any phase already open."""
        if not isinstance(name, str) or not name.strip() or "/" in name:
            raise ValueError(f"A phase name must be a non-empty string without '/', got {name!r}.")
        self._stack.append(name)
        path, slot = "/".join(self._stack), len(self._slots)
        self._slots.append(None)
        joules, start = self._reading()
        try:
            yield self
        finally:
            joules_end, end = self._reading()
            self._stack.pop()
            self._slots[slot] = PhaseResult(name, path, joules_end - joules, end - start, self.source)

    def __enter__(self) -> "EnergyMeter":
        if self._window is not None:
            raise RuntimeError("This EnergyMeter is already measuring; nest phases with meter.phase(name).")
        self._slots, self._stack, self._total = [], [], None
        self._window = self._reading()
        return self

    def __exit__(self, *exc) -> None:
        (joules, start), self._window = self._window, None
        joules_end, end = self._reading()
        self._total = PhaseResult("total", "total", joules_end - joules, end - start, self.source)

    @property
    def results(self) -> list[PhaseResult]:
        done = [r for r in self._slots if r is not None]
        return done + ([self._total] if self._total else [])

    joules = property(lambda self: self._sum("joules"), doc="Total joules (without a window: top-level phases).")
    seconds = property(lambda self: self._sum("seconds"), doc="Total seconds, likewise.")

    def _sum(self, field: str) -> float:
        top = [self._total] if self._total else [r for r in self.results if "/" not in r.path]
        return sum(getattr(r, field) for r in top)

    def table(self, title: str = "Energy by phase") -> Table:
        """Phases as a table; the source goes in the title (every phase of a meter shares it)."""
        return Table([{"phase": r.path, "J": round(r.joules, 3), "Wh": round(r.wh, 5), "s": round(r.seconds, 2),
                       "W (mean)": round(r.joules / r.seconds, 1) if r.seconds > 0 else 0.0}
                      for r in self.results], f"{title} — source: {self.source}")

    def _repr_html_(self) -> str:
        return self.table()._repr_html_()


def energy_per_query(fn, batch, min_seconds: float = 1.0, **meter_kwargs) -> dict:
    """Inference energy per query: ``fn(batch)`` repeated in one meter window of ≥ ``min_seconds``.

    One untimed warm-up call first, then repetitions under ``torch.no_grad()`` until the window
    lasts ``min_seconds``; ``queries = repetitions × len(batch)``.  A short window makes counter
    resolution and start-up costs dominate, hence the minimum.  Put the model in eval mode
    yourself.  Returns ``joules_per_query``, ``seconds_per_query``, ``queries`` and ``source``.
    """
    size = len(batch)
    if size == 0:
        raise ValueError("energy_per_query needs a non-empty batch: queries are counted as len(batch).")
    min_seconds = _number(min_seconds, "min_seconds", strict=True)
    meter, reps = EnergyMeter(**meter_kwargs), 0
    with torch.no_grad():
        fn(batch)
        with meter:
            start = time.perf_counter()
            while reps == 0 or time.perf_counter() - start < min_seconds:
                fn(batch)
                reps += 1
    queries = reps * size
    return {"joules_per_query": meter.joules / queries, "seconds_per_query": meter.seconds / queries,
            "queries": queries, "source": meter.source}


class Grid(NamedTuple):
    g_per_kwh: float
    source: str
    year: int


_EMBER = "Ember yearly electricity data (lifecycle gCO2e/kWh of generation), via Our World in Data"
#: Grid carbon intensity of electricity generation, offline.  Lifecycle figures (fuel supply and
#: plant construction included), so higher than "direct" figures from grid operators.
GRID_INTENSITY: dict[str, Grid] = {
    "world": Grid(480, "Ember, Global Electricity Review 2024", 2023),
    "eu": Grid(244, _EMBER, 2023),
    "france": Grid(56, _EMBER, 2023),
    "germany": Grid(381, _EMBER, 2023),
    "poland": Grid(662, _EMBER, 2023),
    "usa": Grid(369, _EMBER, 2023),
    "china": Grid(582, _EMBER, 2023),
    "india": Grid(713, _EMBER, 2023),
}

#: PUE (facility energy / IT energy) for your own machine: nothing on top.  Data centres: the
#: Uptime Institute survey average was 1.58 in 2023; hyperscalers report about 1.1.
PUE_DEFAULT = 1.0


def kwh(joules: float) -> float:
    """Kilowatt-hours from joules: ``J / 3.6e6``."""
    return joules / J_PER_KWH


def co2_kg(kwh: float, region: str = "world", pue: float = PUE_DEFAULT) -> float:
    """``kg CO₂e = kWh × PUE × grid intensity (g/kWh) / 1000``, intensity from :data:`GRID_INTENSITY`."""
    kwh = _number(kwh, "kwh", hint=" Convert joules with kdlib.energy.kwh(joules).")
    pue = _number(pue, "PUE (facility energy / IT energy)", low=1.0)
    key = str(region).strip().lower()
    if key not in GRID_INTENSITY:
        raise ValueError(f"Unknown region {region!r}: known regions are {', '.join(GRID_INTENSITY)}.")
    return kwh * pue * GRID_INTENSITY[key].g_per_kwh / 1000


def break_even(upfront_a: float, per_query_a: float, upfront_b: float, per_query_b: float) -> float:
    """Queries after which route A's total ``upfront + q · per_query`` is below route B's.

    ``q* = (upfront_a − upfront_b) / (per_query_b − per_query_a)``; 0 if A is never worse;
    ``math.inf`` if A never becomes cheaper for good (its per-query cost is not lower).  The
    course's use (lessons 4–5): A = distilled student, whose upfront includes training the
    teacher and distilling, with cheap inference; B = a small model trained from scratch.
    """
    for value in (upfront_a, per_query_a, upfront_b, per_query_b):
        _number(value, "Each break_even argument (joules)")
    if upfront_a <= upfront_b and per_query_a <= per_query_b:
        return 0.0
    if per_query_a >= per_query_b:
        return math.inf
    return (upfront_a - upfront_b) / (per_query_b - per_query_a)


class Ledger:
    """Energy by route × phase: upfront joules (training) and joules per query (inference).

    ``add(route, phase, joules, source)`` records an upfront phase; ``per_query=True`` records
    inference (joules and seconds per query), shown per 1M queries.  A shared phase (the teacher)
    is added to each route that needs it.  ``total(route, queries)`` = upfront + queries ×
    per-query joules (lesson 4).
    """

    def __init__(self, title: str = "Energy ledger"):
        self.title = title
        self.entries: list[dict] = []

    def add(self, route: str, phase: str, joules: float, source: str, seconds: float | None = None,
            per_query: bool = False) -> "Ledger":
        joules = _number(joules, "joules")
        if not source or not isinstance(source, str):
            raise ValueError("Every figure needs its source, e.g. meter.source or 'estimate: ...'.")
        if any(e["route"] == route and e["phase"] == phase for e in self.entries):
            raise ValueError(f"{route!r} already has a phase {phase!r}; give this one another name.")
        self.entries.append(dict(route=route, phase=phase, joules=joules, source=source,
                                 seconds=seconds, per_query=bool(per_query)))
        return self

    def _split(self, route: str) -> tuple[float, float]:
        rows = [e for e in self.entries if e["route"] == route]
        if not rows:
            raise ValueError(f"Unknown route {route!r}: the ledger has {sorted({e['route'] for e in self.entries})}.")
        return (sum(e["joules"] for e in rows if not e["per_query"]),
                sum(e["joules"] for e in rows if e["per_query"]))

    def total(self, route: str, queries: float = 0) -> float:
        """Joules of ``route`` after serving ``queries`` queries."""
        upfront, per_query = self._split(route)
        return upfront + queries * per_query

    def break_even(self, route_a: str, route_b: str) -> float:
        """:func:`break_even` between two routes of this ledger."""
        return break_even(*self._split(route_a), *self._split(route_b))

    def table(self, queries: int = 1_000_000) -> Table:
        """Every phase of every route, then the route's total; a source shared by all entries goes in the title."""
        sources = {e["source"] for e in self.entries}
        shared = sources.pop() if len(sources) == 1 else None
        rows = []
        for route in dict.fromkeys(e["route"] for e in self.entries):
            for e in (e for e in self.entries if e["route"] == route):
                times = queries if e["per_query"] else 1
                row = {"route": route, "phase": e["phase"], "basis": f"per {queries:,} queries"
                       if e["per_query"] else "once", "J": round(e["joules"] * times, 1),
                       "Wh": round(e["joules"] * times / 3600, 4),
                       "s": None if e["seconds"] is None else round(e["seconds"] * times, 1)}
                if shared is None:
                    row["source"] = e["source"]
                rows.append(row)
            j = self.total(route, queries)
            guessed = any("estimate" in e["source"] for e in self.entries if e["route"] == route)
            total = {"route": route, "phase": "TOTAL", "basis": f"once + {queries:,} queries", "J": round(j, 1),
                     "Wh": round(j / 3600, 4), "s": None}
            if shared is None:
                total["source"] = "sum, includes an estimate" if guessed else "sum"
            rows.append(total)
        return Table(rows, self.title + (f" — source: {shared}" if shared else ""))

    def _repr_html_(self) -> str:
        return self.table()._repr_html_()

    def __repr__(self) -> str:
        return str(self.table())
