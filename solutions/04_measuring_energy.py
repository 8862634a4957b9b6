# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: -nbgrader
#     formats: ipynb,py:percent
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 4 · Measuring energy
#
# The essay's first objection to distillation is that it does not remove the giant's cost, it only
# moves it: the small model is cheap to run, but somebody trained the teacher first. This lesson gives
# that claim numbers, from our own pipeline:
#
# 1. how energy meters work, and which one this machine has;
# 2. every phase of lessons 1–3 — teacher training, logit caching, distillation, inference — in one
#    **ledger**, next to routes that need no teacher;
# 3. energy per query, CO₂ by region, and the **break-even point**: after how many queries does a
#    cheaper-to-run distilled student pay back its teacher?

# %%
import math
import statistics
import tempfile
import time

import matplotlib.pyplot as plt
import torch

import kdlib as kd

DEVICE = kd.device()
kd.tables.Table([{"meter": name, "status here": status} for name, status in kd.energy.available_backends().items()],
                "Energy meters on this machine")


# %% [markdown]
# ## 1 · Three ways to know the energy
#
# * **NVML counter (GPU).** NVIDIA GPUs since Volta keep a cumulative energy counter in millijoules
#   (`nvmlDeviceGetTotalEnergyConsumption`). Read it before and after, after a `cuda.synchronize()`
#   so the queued work is really done, and subtract. It covers the whole GPU — other processes too.
# * **RAPL counter (CPU).** Intel (and AMD Zen) CPUs count package energy in microjoules; Linux shows
#   it under `/sys/class/powercap/intel-rapl:*/energy_uj`. The counter wraps around at
#   `max_energy_range_uj`, and since Linux 5.10 only root may read it (a side-channel fix,
#   CVE-2020-8694). It covers the whole CPU package — every process.
# * **Estimate.** Without counters — in most virtual machines and CI runners, since the hypervisor
#   hides them — the only option is a model: **this process's CPU seconds ÷ logical CPUs × an assumed
#   CPU power** (a TDP). It is what CodeCarbon does in "process" mode. It knows nothing about real
#   clock speeds, idle power, memory or cooling, so it must always be labelled an estimate.
#
# kdlib's `EnergyMeter` picks the best one available (nvml on a GPU, then rapl, then the estimate) and
# labels every figure with its source. The table above says which this machine can read.
#
# ### Exercise 1 — the estimate, by hand
#
# Write `cpu_estimate(cpu_seconds, logical_cpus, watts)`: the joules the estimate meter reports for a
# process that used `cpu_seconds` of CPU time on a machine with `logical_cpus` CPUs and a package
# power of `watts`.

# %%
def cpu_estimate(cpu_seconds, logical_cpus, watts):
    """Joules attributed to a process by the CPU-time-share estimate."""
    ### BEGIN SOLUTION
    return cpu_seconds / logical_cpus * watts
    ### END SOLUTION


# %%
from kdlib.checks import check_cpu_estimate
check_cpu_estimate(cpu_estimate)

# %% [markdown]
# A meter should read almost nothing while the process sleeps and grow with work. Two phases inside
# one meter window:

# %%
SECONDS = kd.sized(1.0, 0.2)
A = torch.randn(512, 512, device=DEVICE)
meter = kd.energy.EnergyMeter(device=DEVICE)
with meter:
    with meter.phase("idle: sleep"):
        time.sleep(SECONDS)
    with meter.phase("busy: 512×512 matmuls"):
        end = time.perf_counter() + SECONDS
        while time.perf_counter() < end:
            A @ A
meter.table("Idle vs busy, same length")

# %% [markdown]
# ### Cross-check with CodeCarbon
#
# [CodeCarbon](https://codecarbon.io) is the most used tracker in ML papers. With the same forced CPU
# power and its process mode it should give the same number as kdlib's estimate on the same workload —
# if it does not, one of the two is wrong. Both measure one fixed workload here, at the same time:

# %%
from codecarbon import OfflineEmissionsTracker

WATTS = kd.energy.EstimateBackend().watts
with tempfile.TemporaryDirectory() as tmp:
    tracker = OfflineEmissionsTracker(country_iso_code="FRA", tracking_mode="process", force_cpu_power=WATTS,
                                      measure_power_secs=0.5, log_level="error", output_dir=tmp,
                                      output_methods=[], allow_multiple_runs=True)
    ours = kd.energy.EnergyMeter(backend="estimate", cpu_watts=WATTS, device="cpu")
    B = torch.randn(512, 512)
    tracker.start()
    with ours:
        end = time.perf_counter() + kd.sized(3.0, 1.0)
        while time.perf_counter() < end:
            B @ B
    tracker.stop()
theirs_j = tracker.final_emissions_data.cpu_energy * kd.grid.J_PER_KWH
CC_RATIO = ours.joules / theirs_j
kd.experiments.record("kdlib estimate / CodeCarbon", round(CC_RATIO, 3))
print(f"kdlib estimate: {ours.joules:.1f} J   CodeCarbon (process mode, {WATTS:g} W forced): {theirs_j:.1f} J   "
      f"ratio {CC_RATIO:.3f}")

# %% [markdown]
# They agree closely because they use the same model of the machine. That is a check of the
# arithmetic, not of the truth: both would be wrong in the same way if the CPU really drew 30 W instead
# of the assumed figure. Only a hardware counter measures.
#
# ## 2 · The ledger of the whole pipeline
#
# Now the routes a practitioner could take to a small Fashion-MNIST model, each measured here with the
# same meter (the teacher's training energy was measured by the same meter when lesson 1 trained it):
#
# | route | upfront (once) | per query |
# |---|---|---|
# | **A · distilled MLP-256** | teacher training + caching its logits + distillation | MLP-256 inference |
# | **B · wide MLP-1024 from scratch** | training | MLP-1024 inference |
# | **C · serve the teacher** | teacher training | teacher inference |
# | **D · MLP-256 from scratch** | training | MLP-256 inference |
#
# Route B is the no-teacher way to reach the distilled student's accuracy: a model four times wider.
# Distillation uses the setting lesson 3 chose on the validation split.

# %%
data = kd.load("fashion_mnist", device=DEVICE)
entry = kd.experiments.teacher(data)
teacher, tmeta = entry.model, entry.meta
choice, _ = kd.experiments.kd_choice(data)   # lesson 3's sweep on the validation split (cached there)
KD_T, KD_ALPHA = choice["T"], choice["alpha"]
RECIPE = kd.experiments.fashion_fit("MLP-256 from scratch")  # the MLP recipe lessons 3-6 share, one home in kdlib
EPOCHS, BATCH, LR = RECIPE["epochs"], RECIPE["batch_size"], RECIPE["lr"]
SEEDS = kd.sized([0, 1, 2], [0])

meter = kd.energy.EnergyMeter(device=DEVICE)
with meter.phase("cache teacher logits") as caching:
    train_logits = kd.distill.cache_logits(teacher, data.X_train)
cache_j = caching.joules


def trained(hidden, seed, distil):
    """Train one MLP student; return (test accuracy, joules, seconds) measured by the meter."""
    train = (*data.train, train_logits) if distil else data.train
    criterion = kd.distill.KDCriterion(KD_T, KD_ALPHA) if distil else None
    with meter.phase(f"{'KD' if distil else 'scratch'} {hidden} seed {seed}") as phase:
        net = kd.train_fresh(lambda: kd.mlp(784, hidden, 10), train, seed, epochs=EPOCHS, batch_size=BATCH, lr=LR,
                             criterion=criterion, quiet=True)
    return kd.evaluate(net, *data.test)["acc"], phase.joules, phase.seconds, net


runs = {}
for key, hidden, distil in [("A", (256,), True), ("B", (1024,), False), ("D", (256,), False)]:
    runs[key] = [trained(hidden, s, distil) for s in SEEDS]

# %% [markdown]
# Energy per query: each model answers batches of 64 queries, repeated inside one meter window of at
# least a couple of seconds (a single short call is below any meter's resolution), then divided by the
# number of queries.

# %%
QUERY_BATCH = data.X_test[:64]
MIN_SECONDS = kd.sized(2.0, 0.2)
per_query = {
    "teacher": kd.energy.energy_per_query(teacher, QUERY_BATCH, min_seconds=MIN_SECONDS, device=DEVICE),
    "MLP-256": kd.energy.energy_per_query(runs["A"][0][3], QUERY_BATCH, min_seconds=MIN_SECONDS, device=DEVICE),
    "MLP-1024": kd.energy.energy_per_query(runs["B"][0][3], QUERY_BATCH, min_seconds=MIN_SECONDS, device=DEVICE),
}
kd.tables.Table([{"model": name, "µJ per query": round(1e6 * cost["joules_per_query"], 1),
                  "µs per query": round(1e6 * cost["seconds_per_query"], 1), "queries timed": cost["queries"]}
                 for name, cost in per_query.items()],
                f"Inference energy per query (batches of 64) — source: {per_query['teacher']['source']}")

# %%
mean = lambda xs: statistics.fmean(xs)
ledger = kd.ledger.Ledger("Lifecycle energy by route (per 1,000,000 queries for inference)")
routes = {"A · distilled MLP-256": "A", "B · wide MLP-1024 from scratch": "B",
          "C · serve the teacher": "C", "D · MLP-256 from scratch": "D"}
for route, key in routes.items():
    if key in ("A", "C"):
        ledger.add(route, "teacher training", tmeta["energy_joules"], tmeta["energy_source"], tmeta["train_seconds"])
    if key == "A":
        ledger.add(route, "cache teacher logits", cache_j, meter.source)
    if key in runs:
        ledger.add(route, "student training" if key == "A" else "training", mean(r[1] for r in runs[key]),
                   meter.source, mean(r[2] for r in runs[key]))
    model = {"A": "MLP-256", "B": "MLP-1024", "C": "teacher", "D": "MLP-256"}[key]
    cost = per_query[model]
    ledger.add(route, f"inference ({model})", cost["joules_per_query"], cost["source"], cost["seconds_per_query"],
               per_query=True)
ledger

# %%
accuracy = {"A": [r[0] for r in runs["A"]], "B": [r[0] for r in runs["B"]],
            "C": [kd.evaluate(teacher, *data.test)["acc"]], "D": [r[0] for r in runs["D"]]}
MILLION = 1_000_000
rows = []
for route, key in routes.items():
    rows.append({"route": route, "test accuracy %": kd.tables.mean_std(accuracy[key]),
                 "upfront Wh": round(ledger.total(route) / 3600, 3),
                 "Wh per 1M queries": round((ledger.total(route, MILLION) - ledger.total(route)) / 3600, 3),
                 "total Wh at 1M queries": round(ledger.total(route, MILLION) / 3600, 3)})
    kd.experiments.record(f"route {route}: acc % / upfront Wh / Wh per 1M queries",
                     f"{rows[-1]['test accuracy %']} / {rows[-1]['upfront Wh']} / {rows[-1]['Wh per 1M queries']}")
kd.tables.Table(rows, f"Routes side by side ({len(SEEDS)} seed(s); energy: {meter.source})")


# %% [markdown]
# ## 3 · Break-even: when does the cheaper student pay back its teacher?
#
# Route A spends more upfront (it trains a teacher) and less per query (its student is four times
# smaller than route B's model). Its total energy falls below B's after
#
# $$q^* = \frac{E^{\text{upfront}}_A - E^{\text{upfront}}_B}{e^{\text{query}}_B - e^{\text{query}}_A}$$
#
# queries — if A's per-query cost is lower at all; otherwise never.
#
# ### Exercise 2 — break-even
#
# Write `break_even(upfront_a, per_query_a, upfront_b, per_query_b)`. Return `0` if A is never worse
# and `math.inf` if A never catches up.

# %%
def break_even(upfront_a, per_query_a, upfront_b, per_query_b):
    """Queries after which route A's total energy is below route B's."""
    ### BEGIN SOLUTION
    if upfront_a <= upfront_b and per_query_a <= per_query_b:
        return 0.0
    if per_query_a >= per_query_b:
        return math.inf
    return (upfront_a - upfront_b) / (per_query_b - per_query_a)
    ### END SOLUTION


# %%
from kdlib.checks import check_break_even
check_break_even(break_even)

# %%
distilled, wide, served_teacher, small = routes
pairs = [(distilled, wide), (distilled, served_teacher), (distilled, small)]
rows = []
for a, b in pairs:
    q = ledger.break_even(a, b)
    rows.append({"route A": a, "vs route B": b,
                 "A cheaper after (queries)": "never" if math.isinf(q) else f"{q:,.0f}"})
    kd.experiments.record(f"break-even {a} vs {b}", "never" if math.isinf(q) else round(q))
kd.tables.Table(rows, "Break-even points")

# %%
queries = torch.logspace(2, 11, 200)
fig, ax = plt.subplots(figsize=(8, 4.5))
for route in routes:
    ax.plot(queries, [ledger.total(route, float(q)) / 3600 for q in queries], label=route)
q_ab = ledger.break_even(distilled, wide)
if math.isfinite(q_ab) and q_ab > 0:
    ax.axvline(q_ab, color="gray", linestyle=":")
    ax.annotate(f"A = B after {q_ab:.1e} queries", (q_ab, ledger.total(distilled, q_ab) / 3600),
                textcoords="offset points", xytext=(-200, 30), arrowprops={"arrowstyle": "->"})
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("queries served")
ax.set_ylabel("lifecycle energy (Wh)")
ax.set_title(f"Training + inference energy by route ({'estimate' if 'estimate' in meter.source else 'measured'})")
ax.grid(alpha=0.3, which="both")
ax.legend()
plt.show()

# %% [markdown]
# ## 4 · CO₂ depends on where
#
# Energy becomes CO₂ through the grid: kg CO₂ = kWh × PUE × grid intensity. PUE (power usage
# effectiveness) is the data centre's overhead for cooling and power conversion — 1.0 for your own
# laptop; about 1.58 on average for data centres (Uptime Institute, 2023) and about 1.1 for the most
# efficient. Grid intensities are lifecycle figures from Ember for 2023 (kdlib keeps them offline with
# their sources). For each route after a million queries:

# %%
PUE = 1.58   # assume the models are trained and served in an average data centre
rows = []
for region, grid in kd.grid.GRID_INTENSITY.items():
    row = {"region": region, "g CO2/kWh": grid.g_per_kwh}
    for route in routes:
        row[route.split(" · ")[0] + " (g)"] = round(1000 * kd.grid.co2_kg(kd.grid.kwh(ledger.total(route, MILLION)), region, PUE), 3)
    rows.append(row)
kd.tables.Table(rows, f"g CO2 after 1M queries, PUE {PUE} (energy: {meter.source.split(':')[0]})")

# %% [markdown]
# ## 5 · What the numbers say

# %%
upfront = {r: ledger.total(r) for r in routes}
teacher_share = tmeta["energy_joules"] / upfront[distilled]
print(f"The teacher is {teacher_share:.0%} of route A's upfront energy; "
      f"route A's upfront is {upfront[distilled] / upfront[wide]:.1f}× route B's and {upfront[distilled] / upfront[small]:.0f}× route D's.")
print(f"Per query, the distilled MLP-256 uses {per_query['MLP-256']['joules_per_query'] / per_query['teacher']['joules_per_query']:.2f}× "
      f"the teacher's energy and {per_query['MLP-256']['joules_per_query'] / per_query['MLP-1024']['joules_per_query']:.2f}× the wide MLP's.")
q = ledger.break_even(distilled, wide)
print("Route A never catches up with route B." if math.isinf(q) else
      f"Route A's total drops below route B's after {q:,.0f} queries.")
print(f"Accuracy: A {kd.tables.mean_std(accuracy['A'])} %, B {kd.tables.mean_std(accuracy['B'])} %, "
      f"D {kd.tables.mean_std(accuracy['D'])} %.")

# %% [markdown]
# * **The burden moves, it does not vanish.** Most of the distilled route's upfront energy is the
#   teacher's training; the distillation itself is cheap. Counted honestly, the distilled student
#   costs tens of times more to *make* than a student of the same size trained from scratch (the
#   ratios are printed above) and buys a few tenths of a point of accuracy (lesson 3). A wider MLP
#   trained from scratch (route B) reaches the distilled student's accuracy for a small fraction of
#   its upfront energy; it only costs more per query.
# * **Inference decides.** A smaller model is cheaper per query, so with enough queries the teacher's
#   cost is paid back — the break-even point above. For a model serving millions of requests a day
#   that happens quickly; for a niche model it may never happen.
# * **This matches the scaling-law view.** Busbridge et al. (2025, *Distillation Scaling Laws*) find
#   that when the teacher has to be trained for a single student, plain supervised training is
#   generally the better use of compute; distillation wins when the teacher already exists or serves
#   many students. In our ledger the teacher is a sunk cost only if you did not have to train it.
# * **Every figure above is labelled with its meter.** On this machine it is an estimate; on a GPU with
#   NVML, or as root on bare metal with RAPL, the same notebook reports counter readings.
#
# **Next — lesson 5:** small models designed for the task, with no giant behind them, on the same
# energy axes.
