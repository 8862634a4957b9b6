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
# # Lesson 0 · The price of giants
#
# Small AI models are mostly made today by **distillation**: a big *teacher* model is trained first,
# then a small *student* learns to imitate it. This course builds that recipe by hand, measures what
# it costs — time, FLOPs, energy, CO₂ — and then asks whether small models built for the task, with no
# giant behind them, do as well for less.
#
# The course answers an essay, *Distilled Giants: Why We Must Rethink Small AI Development* (2024).
# Its argument, in three objections to building small models by distillation:
# 1. **the burden only moves** — the small model still needs a giant trained first, so the giant's cost
#    and emissions stay in the bill (lessons 1–4 measure that bill);
# 2. **it narrows innovation** — copying giants crowds out small models designed for the task
#    (lesson 5 builds those alternatives);
# 3. **distilled students generalise and adapt poorly** — and adapting them means going back to the
#    giant (lesson 6 tests it).
#
# This lesson does three things:
# 1. checks that your machine is ready (versions, device, data);
# 2. turns the published figures about large language models into a small back-of-envelope model you
#    can edit, to see how much the answer depends on the assumptions;
# 3. measures how many floating-point operations per second (FLOP/s) *your* machine really does —
#    the yardstick every later lesson uses.
#
# Every lesson has two sizes: set `KDLIB_SMOKE=1` to run the same cells on a slice of the data
# (that is what the test suite does); leave it unset for the real results.

# %% [markdown]
# ## 1 · Is the machine ready?
#
# `kdlib` is the course's helper library. `python -m kdlib doctor` prints the versions, the device
# kdlib will use and why, and where each dataset was found. The same report, from inside the notebook:

# %%
import math

import matplotlib.pyplot as plt
import torch

import kdlib as kd

kd.doctor.report();

# %% [markdown]
# ## 2 · The giant's bill, on the back of an envelope
#
# Two kinds of energy go into a model like the ones behind chat assistants:
#
# * **training**, paid once. Patterson et al. (2021) estimated GPT-3's training run at about
#   **1,287 MWh** of electricity.
# * **inference**, paid on every request. Estimates of the energy of one chat request have moved a
#   lot: around **3 Wh** in 2023 estimates (de Vries 2023, from server power and request rates), and
#   around **0.3 Wh** in 2025 estimates for a newer model on newer hardware (Epoch AI 2025).
#
# The numbers below are *assumptions*, written as variables so you can change them and re-run. The
# point is not the exact answer but how strongly it depends on what you assume.

# %%
TRAINING_MWH = 1287          # GPT-3 training, Patterson et al. 2021
WH_PER_QUERY = {"2023 estimate": 3.0, "2025 estimate": 0.3}   # energy of one chat request
QUERIES_PER_DAY = 1e9        # assumption: order of magnitude of a popular assistant's daily requests
GRID_KG_CO2_PER_KWH = 0.48   # assumption: world-average grid intensity, about 480 g CO2 per kWh
US_HOME_MWH_PER_YEAR = 10.5  # assumption: an average US household's yearly electricity use

print(f"Training: {TRAINING_MWH:,} MWh = the yearly electricity of about "
      f"{TRAINING_MWH / US_HOME_MWH_PER_YEAR:,.0f} US homes, "
      f"about {TRAINING_MWH * 1000 * GRID_KG_CO2_PER_KWH / 1000:,.0f} t CO2 on an average grid")


# %% [markdown]
# ### Exercise 1 — when does serving cost as much as training?
#
# Write `queries_to_match(training_mwh, wh_per_query)`: the number of queries whose total energy equals
# the training energy. Mind the units. The check after it says whether you are right without giving
# the answer away.

# %%
def queries_to_match(training_mwh, wh_per_query):
    """Number of queries whose energy adds up to the training energy."""
    ### BEGIN SOLUTION
    return training_mwh * 1e6 / wh_per_query
    ### END SOLUTION


# %%
from kdlib.checks import check_queries_to_match
check_queries_to_match(queries_to_match)

# %% [markdown]
# If your function is not finished yet, the next cell falls back to a reference version so the lesson
# can go on.

# %%
try:
    queries_to_match(1.0, 1.0)
except NotImplementedError:
    queries_to_match = kd.checks.reference("queries_to_match")

rows = []
for label, wh in WH_PER_QUERY.items():
    n = queries_to_match(TRAINING_MWH, wh)
    rows.append({"per-query estimate": label, "Wh per query": wh,
                 "queries to match training": f"{n:.2e}",
                 f"days at {QUERIES_PER_DAY:.0e} queries/day": round(n / QUERIES_PER_DAY, 1)})
kd.tables.Table(rows, "Inference catches up with training after...")

# %% [markdown]
# With these assumptions, serving catches up with the whole training run within hours to a few days:
# for a popular model, **inference, not training, dominates the lifetime bill**. That is exactly why
# companies want small models for serving — and why it matters what it costs to *make* them.
#
# How sensitive is this? The grid below varies the two least certain inputs over one order of
# magnitude each.

# %%
wh_grid = [0.1, 0.3, 1.0, 3.0]
qpd_grid = [1e8, 3e8, 1e9, 3e9]
days = [[queries_to_match(TRAINING_MWH, wh) / q for q in qpd_grid] for wh in wh_grid]

fig, ax = plt.subplots(figsize=(6.5, 4))
image = ax.imshow([[math.log10(d) for d in row] for row in days], cmap="magma_r")
for i, row in enumerate(days):
    for j, d in enumerate(row):
        ax.text(j, i, f"{d:,.0f}" if d >= 1 else f"{d:.2f}", ha="center", va="center",
                color="white" if d > 10 else "black")
ax.set_xticks(range(len(qpd_grid)), [f"{q:.0e}" for q in qpd_grid])
ax.set_yticks(range(len(wh_grid)), [str(w) for w in wh_grid])
ax.set_xlabel("queries per day")
ax.set_ylabel("energy per query (Wh)")
ax.set_title("Days of serving to match GPT-3's training energy")
fig.colorbar(image, ax=ax, label="log10(days)")
plt.show()


# %% [markdown]
# The answer spans about three orders of magnitude — from a few hours to months — depending on two
# numbers nobody outside the companies knows well. Keep that in mind whenever a single figure is quoted: an
# energy number is only as good as its assumptions, which is why this course always says where each
# figure comes from (a hardware counter, or an estimate) and what it covers.

# %% [markdown]
# ## 3 · How fast is this machine?
#
# Everything a neural network does is, to a first approximation, matrix multiplication. Multiplying an
# (n×m) matrix by an (m×k) matrix costs n·k dot products of length m.
#
# ### Exercise 2 — FLOPs of a matrix product
#
# Write `matmul_flops(n, m, k)`: the floating-point operations of one (n×m) @ (m×k) product, counting a
# multiply and an add as two operations (the convention of PyTorch's FLOP counter, which kdlib uses).

# %%
def matmul_flops(n, m, k):
    """FLOPs of an (n x m) @ (m x k) matrix product."""
    ### BEGIN SOLUTION
    return 2 * n * m * k
    ### END SOLUTION


# %%
from kdlib.checks import check_matmul_flops
check_matmul_flops(matmul_flops)

# %% [markdown]
# Now measure: time square matrix products of growing size on kdlib's device and convert to GFLOP/s
# (10⁹ FLOP per second). Small products are dominated by overhead; large ones approach the machine's
# peak. The best rate is the **peak** later lessons compare training runs against.

# %%
DEVICE = kd.device()
SIZES = kd.sized([128, 256, 512, 1024, 2048], [128, 512])
SECONDS_EACH = kd.sized(1.0, 0.2)

rates = {n: kd.perf.matmul_gflops(n, seconds=SECONDS_EACH, device=DEVICE) for n in SIZES}
PEAK_GFLOPS = max(rates.values())
kd.experiments.record("matmul peak GFLOP/s", round(PEAK_GFLOPS, 1))

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(list(rates), list(rates.values()), marker="o")
ax.set_xscale("log", base=2)
ax.set_xlabel("matrix size n (n×n @ n×n)")
ax.set_ylabel("GFLOP/s")
ax.set_title(f"float32 matmul throughput on {DEVICE} ({torch.get_num_threads()} threads)")
ax.grid(alpha=0.3)
plt.show()
print(f"Measured peak: {PEAK_GFLOPS:,.0f} GFLOP/s on {DEVICE}")

# %% [markdown]
# What does that rate mean for a giant? Training a dense model costs roughly **6 × parameters × tokens**
# FLOPs (Kaplan et al. 2020: 2 for the forward pass, 4 for the backward). GPT-3 had 175 billion
# parameters and saw about 300 billion tokens:

# %%
gpt3_flops = 6 * 175e9 * 300e9
seconds = gpt3_flops / (PEAK_GFLOPS * 1e9)
print(f"GPT-3 training: about {gpt3_flops:.1e} FLOPs")
print(f"At this machine's measured peak that is {seconds / 3.15e7:,.0f} years of non-stop computing.")

# %% [markdown]
# ## What you have
#
# * a machine that is ready, and a measured peak in GFLOP/s for later comparisons;
# * a feel for the giant's bill: training costs a fortune once, but for a popular model inference
#   overtakes it fast, and the estimates swing by orders of magnitude with the assumptions.
#
# **Next — lesson 1:** train a (small) giant of our own, the teacher, and measure its cost.
