"""Energy meters: measured where the hardware allows it, estimated — and labelled so — where not.

An :class:`EnergyMeter` reads a cumulative counter at the edges of named, nestable phases; a
phase's energy is the difference of two readings.  Three backends, best first:

* ``nvml``: the GPU's own energy counter (NVIDIA Volta or newer), whole GPU;
* ``rapl``: the CPU package counters under ``/sys/class/powercap`` (Intel, and AMD Zen), whole CPU;
* ``estimate``: this process's share of CPU time × an assumed CPU power (no counter needed).

Every figure carries its source label, and an estimate always says "estimate".  What the figures
are for lives next door: :mod:`kdlib.ledger` (lifecycle energy, break-even) and :mod:`kdlib.grid`
(CO₂).  Introduced in lesson 4.
"""
from __future__ import annotations

import os
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import torch

from .runtime import device as pick_device
from .runtime import synchronize
from .tables import Table
from .validate import finite_number

#: CPU power assumed by the estimate: CodeCarbon's fallback when it cannot identify the CPU
#: (``POWER_CONSTANT = 85`` in ``codecarbon/external/hardware.py``, CodeCarbon 3.x).
DEFAULT_CPU_WATTS = 85.0
CPU_WATTS_ENV = "KDLIB_CPU_WATTS"
RAPL_ROOT = "/sys/class/powercap"
BACKENDS = ("auto", "nvml", "rapl", "estimate")
#: Mean power above which a RAPL counter that went down cannot have wrapped: no CPU package draws
#: a kilowatt (the largest server CPUs are rated about 500 W).
RAPL_MAX_WATTS = 1000.0
#: Appended to the source of a figure that spans a counter reset: it is a lower bound.
LOWER_BOUND = "lower bound: the counter was reset during this phase"


class EnergyBackendError(RuntimeError):
    """An energy backend cannot be read on this machine; the message says why and what to do."""


def _read(path: Path) -> str:
    with open(path) as f:  # one place to read counters, so tests can simulate a refusal
        return f.read().strip()


class EstimateBackend:
    """``joules = CPU seconds of this process / logical CPUs × CPU watts``.

    ``time.process_time()`` counts user + system time of every thread of this process (not of
    child processes such as DataLoader workers).  Dividing by the logical CPU count gives the
    process's share of the whole package, so 1 s of one busy core on a 2-CPU, 85 W machine
    costs 42.5 J.  This is CodeCarbon's ``tracking_mode="process"`` formula with a forced CPU
    power; the default 85 W is CodeCarbon's fallback TDP (:data:`DEFAULT_CPU_WATTS`).  It is
    an *estimate*: TDP is a design figure, not a measurement, there is no idle or memory term,
    and a laptop is nearer 15–45 W — set ``cpu_watts`` or ``KDLIB_CPU_WATTS`` for your CPU.

    Introduced in lesson 4.
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
        self.watts = finite_number(cpu_watts, f"CPU power ({how})", strict=True)
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

    A counter that goes down although it cannot have wrapped — a wrap would mean more than
    :data:`RAPL_MAX_WATTS` since the last reading, or a value outside its range — was reset
    (driver reload, suspend, a virtual machine moved).  That interval counts 0 J, a warning
    names the file, and ``resets`` goes up, so the meter labels the phases that span it
    :data:`LOWER_BOUND`.  A counter that cannot be read, or holds no number, mid-measurement is
    an :class:`EnergyBackendError` naming the file.  Since Linux 5.10 ``energy_uj`` is readable
    by root only (CVE-2020-8694).
    """

    name = "rapl"

    def __init__(self, root: str | os.PathLike = RAPL_ROOT, clock=time.monotonic):
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
        self._clock = clock
        self._when = clock()
        self._offset = [0] * len(self.zones)   # µJ added by wraps (and kept across resets)
        self.resets = 0
        self.source = f"rapl counter ({', '.join(_read(z / 'name') for z in self.zones)})"

    def _raw(self, path: Path) -> int:
        try:
            text = _read(path)
        except OSError as err:
            raise EnergyBackendError(f"The RAPL counter {path} could not be read mid-measurement "
                                     f"({err.strerror or err}); the energy of this window is unknown.") from err
        if not (text.isascii() and text.isdigit()):
            raise EnergyBackendError(f"The RAPL counter {path} holds {text!r}, not a count of µJ; "
                                     "the energy of this window is unknown.")
        return int(text)

    def read(self) -> float:
        now, total = self._clock(), 0
        for i, zone in enumerate(self.zones):
            raw, last, top = self._raw(zone / "energy_uj"), self._last[i], self._range[i]
            if raw < last:
                wrapped_uj = top - last + raw
                if last <= top and wrapped_uj <= RAPL_MAX_WATTS * 1e6 * max(now - self._when, 0.0):
                    self._offset[i] += top
                else:  # went down without wrapping: reset; the interval counts 0 J
                    self._offset[i] += last - raw
                    self.resets += 1
                    warnings.warn(f"The RAPL counter {zone / 'energy_uj'} went down from {last} to {raw} µJ in "
                                  f"{now - self._when:.3g} s, which is no wrap of its {top} µJ range: it was "
                                  f"reset. kdlib counts 0 J for that interval; figures spanning it are a lower "
                                  f"bound.", stacklevel=4)
            self._last[i] = raw
            total += raw + self._offset[i]
        self._when = now
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
    """For each backend, its source label if it can be read here, else why not (``kdlib doctor``).

    Introduced in lesson 4.
    """
    out = {}
    for name, build in (("nvml", lambda: NvmlBackend(0, nvml)), ("rapl", lambda: RaplBackend(rapl_root)),
                        ("estimate", EstimateBackend)):
        try:
            out[name] = f"readable: {build().source}"
        except (EnergyBackendError, ValueError) as err:
            out[name] = f"not available: {err}"
    return out


class PhaseResult:
    """One measured phase: ``path`` is ``"teacher/epoch 1"`` for a phase nested in another.

    ``with meter.phase("x") as p:`` hands out this object when the phase starts; its ``joules``,
    ``seconds`` and ``source`` are filled in when the block ends, so read them after it (inside
    the block they raise an error rather than give a partial figure).
    """

    __slots__ = ("name", "path", "_joules", "_seconds", "_source")

    def __init__(self, name: str, path: str, joules: float | None = None, seconds: float | None = None,
                 source: str | None = None):
        self.name, self.path = name, path
        self._joules, self._seconds, self._source = joules, seconds, source

    @property
    def done(self) -> bool:
        """True once the phase has ended and its figures are filled in."""
        return self._joules is not None

    def _figure(self, value):
        if value is None:
            raise RuntimeError(f"Phase {self.path!r} is still running: read its figures after its `with` block.")
        return value

    joules = property(lambda self: self._figure(self._joules), doc="Energy of the phase in joules.")
    seconds = property(lambda self: self._figure(self._seconds), doc="Wall time of the phase in seconds.")
    source = property(lambda self: self._figure(self._source), doc="Where the energy figure comes from.")

    @property
    def wh(self) -> float:
        """Watt-hours, ``joules / 3600``."""
        return self.joules / 3600

    def __repr__(self) -> str:
        if not self.done:
            return f"PhaseResult({self.path!r}, running)"
        return f"PhaseResult({self.path!r}, joules={self._joules:.4g}, seconds={self._seconds:.4g}, source={self._source!r})"


class EnergyMeter:
    """Energy of named, nestable phases; ``with meter:`` measures the whole window as "total".

    ``with meter: with meter.phase("teacher") as teacher: with meter.phase("epoch 1"): ...``
    gives ``results`` "teacher", "teacher/epoch 1", "total": finished phases in the order they
    started, then the total; ``teacher.joules`` is that phase's own figure once its block ends,
    however phases nest.  Entering again starts afresh, and ``phase`` works on a meter never
    entered.  The device (default: kdlib's) is synchronised before every reading.

    Introduced in lesson 2.
    """

    def __init__(self, backend="auto", cpu_watts: float | None = None, device=None,
                 rapl_root=RAPL_ROOT, nvml=None):
        self.device = pick_device(device)
        self.backend = make_backend(backend, cpu_watts, self.device, rapl_root, nvml)
        self._slots: list[PhaseResult] = []   # one per started phase, filled when it ends
        self._stack: list[str] = []
        self._total, self._window = None, None

    @property
    def source(self) -> str:
        """The backend's label, marked :data:`LOWER_BOUND` once its counter has been reset."""
        return self.backend.source + (f"; {LOWER_BOUND}" if self._resets() else "")

    def _resets(self) -> int:
        return getattr(self.backend, "resets", 0)

    def _reading(self) -> tuple[float, float, int]:
        synchronize(self.device)
        return self.backend.read(), time.perf_counter(), self._resets()

    def _finish(self, result: PhaseResult, start: tuple[float, float, int]) -> None:
        joules, seconds, resets = self._reading()
        source = self.backend.source + (f"; {LOWER_BOUND}" if resets > start[2] else "")
        result._joules, result._seconds, result._source = joules - start[0], seconds - start[1], source

    @contextmanager
    def phase(self, name: str):
        """Measure the enclosed block as phase ``name``, nested in any phase already open.

        Yields the phase's :class:`PhaseResult`, filled in when the block ends.
        """
        if not isinstance(name, str) or not name.strip() or "/" in name:
            raise ValueError(f"A phase name must be a non-empty string without '/', got {name!r}.")
        result = PhaseResult(name, "/".join([*self._stack, name]))
        start = self._reading()
        self._stack.append(name)
        self._slots.append(result)
        try:
            yield result
        finally:
            self._stack.pop()
            self._finish(result, start)

    def __enter__(self) -> "EnergyMeter":
        if self._window is not None:
            raise RuntimeError("This EnergyMeter is already measuring; nest phases with meter.phase(name).")
        self._slots, self._stack, self._total = [], [], None
        self._window = self._reading()
        return self

    def __exit__(self, *exc) -> None:
        start, self._window = self._window, None
        self._total = PhaseResult("total", "total")
        self._finish(self._total, start)

    @property
    def results(self) -> list[PhaseResult]:
        """Finished phases in the order they started, then the total once the window has ended."""
        done = [r for r in self._slots if r.done]
        return done + ([self._total] if self._total is not None and self._total.done else [])

    joules = property(lambda self: self._sum("joules"), doc="Total joules (without a window: top-level phases).")
    seconds = property(lambda self: self._sum("seconds"), doc="Total seconds, likewise.")

    def _sum(self, field: str) -> float:
        top = [r for r in self.results if "/" not in r.path]
        top = [top[-1]] if self._total is not None and self._total.done else top
        return sum(getattr(r, field) for r in top)

    def table(self, title: str = "Energy by phase") -> Table:
        """Phases as a table; a source shared by every phase goes in the title, else in a column."""
        results = self.results
        sources = {r.source for r in results}
        rows = []
        for r in results:
            row = {"phase": r.path, "J": round(r.joules, 3), "Wh": round(r.wh, 5), "s": round(r.seconds, 2),
                   "W (mean)": round(r.joules / r.seconds, 1) if r.seconds > 0 else 0.0}
            if len(sources) > 1:
                row["source"] = r.source
            rows.append(row)
        shared = sources.pop() if len(sources) == 1 else "by phase" if sources else self.source
        return Table(rows, f"{title} — source: {shared}")

    def _repr_html_(self) -> str:
        return self.table()._repr_html_()


def energy_per_query(fn, batch, min_seconds: float = 1.0, **meter_kwargs) -> dict:
    """Inference energy per query: ``fn(batch)`` repeated in one meter window of ≥ ``min_seconds``.

    ``batch`` is one tensor holding a query per row, so ``queries = repetitions × len(batch)``.
    One untimed warm-up call first, then repetitions under ``torch.no_grad()`` until the window
    lasts ``min_seconds``.  A short window makes counter resolution and start-up costs dominate,
    hence the minimum.  Put the model in eval mode yourself.  Returns ``joules_per_query``,
    ``seconds_per_query``, ``queries`` and ``source``.

    Introduced in lesson 4.
    """
    if not callable(fn):
        raise TypeError(f"energy_per_query measures fn(batch): fn must be a model or function, got {type(fn).__name__}.")
    if not isinstance(batch, torch.Tensor):
        kind = f"a {type(batch).__name__} of {len(batch)}" if hasattr(batch, "__len__") else f"a {type(batch).__name__}"
        raise TypeError(f"energy_per_query needs the batch as one tensor with a query per row, got {kind}; "
                        "stack it first, e.g. torch.stack(tensors) or torch.tensor(numbers).")
    size = len(batch) if batch.ndim else 0
    if size == 0:
        raise ValueError("energy_per_query needs a non-empty batch: queries are counted as len(batch).")
    min_seconds = finite_number(min_seconds, "min_seconds", strict=True)
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
