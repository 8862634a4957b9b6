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
# # Lesson 9 · Language models: the routes on trial
#
# Lesson 8 distilled a 0.8M-parameter character transformer into a 40k-parameter student. This lesson
# asks the essay's three questions of that pipeline, with the lesson-4 ledger:
#
# 1. **What does the giant cost?** Its training, the caching of its logits, and serving it.
# 2. **Does a bigger student, or training on text the teacher writes, inherit more?**
# 3. **Does a task-specific model without a giant do as well?** Two of them: a classic smoothed n-gram
#    model built from counts in seconds, and a transformer trained on the labels alone with the **same
#    compute** the distillation pipeline spent, teacher included.
#
# Every route ends up as one point — test bits per character against lifecycle energy — on a Pareto plot.

# %%
import math
import statistics

import matplotlib.pyplot as plt
import torch

import kdlib as kd
from kdlib import bpc, experiments
from kdlib.experiments import fair_scores

DEVICE = kd.device()
SEEDS = kd.sized([0, 1, 2], [0, 1])
meter = kd.energy.EnergyMeter(device=DEVICE)
print(f"device {DEVICE}; energy measured by: {meter.source}")

data = kd.load("shakespeare", context=64, device=DEVICE)
teacher_entry = experiments.lm_teacher(data)
teacher = teacher_entry.model
tm = {**teacher_entry.meta, **fair_scores(teacher_entry, data)}  # every bpc from the one fair scorer (lesson 8)
transfer = experiments.LMTransfer(data, teacher)
CHOICE, _ = experiments.lm_kd_choice(data, transfer)  # lesson 8's choices, from the zoo (or trained now)
CACHE, cache_runs = experiments.lm_cache_choice(data, transfer, T=CHOICE["T"])
print(f"teacher: {tm['params']:,} parameters, test {tm['test_bpc']:.3f} bpc; KD with T = {CHOICE['T']}, "
      f"alpha = {CHOICE['alpha']}, from the {CACHE['cache']}-{CACHE['k']} cache")

# %% [markdown]
# ## 1 · No giant at all: a smoothed n-gram model
#
# An order-n model predicts the next character from the previous n − 1 by counting. Counts alone give
# zero probability to anything unseen, so **smoothing** moves some mass from seen continuations to a
# shorter context, recursively down to a uniform guess. `kd.NGramLM` implements two classics:
#
# * **Witten–Bell**: a context that has been followed by many *different* characters is trusted less;
# * **interpolated Kneser–Ney**: subtract a fixed discount D from every count, and give the freed mass to a
#   lower order whose probabilities count *in how many contexts* a character appears, not how often.
#
# Before using kdlib's version, write the Witten–Bell step yourself for a bigram (order 2) model:
#
# $$P(b \mid a) = \frac{c(a\,b) + N_{1+}(a\,\bullet)\, P_{\text{lower}}(b)}{c(a) + N_{1+}(a\,\bullet)}$$
#
# where `counts[a, b]` = c(a b) is how often b followed a, c(a) = Σ_b c(a b), N₁₊(a •) is the number of
# *different* characters that followed a, and `lower` is the unigram distribution (already smoothed).
# A character a that never occurred as a context has no counts at all: its row is just `lower`.

# %%
def witten_bell(counts, lower):
    """(V, V) table P[a, b] of interpolated Witten–Bell bigram probabilities."""
    ### BEGIN SOLUTION
    total = counts.sum(1, keepdim=True)
    types = (counts > 0).sum(1, keepdim=True).to(counts.dtype)
    table = (counts + types * lower) / (total + types).clamp_min(1)
    return torch.where(total > 0, table, lower.expand_as(table))
    ### END SOLUTION


# %%
from kdlib.checks import check_witten_bell
check_witten_bell(witten_bell)

# %% [markdown]
# `kd.NGramLM` does the same at every order, recursively, with the counts of the whole training stream
# held as sorted integer keys. Both smoothings are built from the training plays in about a second each;
# the order is chosen on the validation plays.

# %%
ngram_rows, ngrams = [], {}
for smoothing in ("witten_bell", "kneser_ney"):
    for order in (3, 5, 7):
        with meter.phase(f"n-gram {smoothing} {order}"):
            model = kd.NGramLM(order, smoothing).fit(data.tokens_train, data.vocab_size)
        ngrams[smoothing, order] = model
        ngram_rows.append({"smoothing": smoothing, "order": order, "contexts": model.num_contexts,
                           "fit s": round(model.fit_seconds, 2),
                           "val bpc": round(bpc.ngram_bits(model, data.tokens_val, context=data.context).bpc, 3)})
best_row = min(ngram_rows, key=lambda r: r["val bpc"])
NGRAM = ngrams[best_row["smoothing"], best_row["order"]]
ngram_test = bpc.ngram_bits(NGRAM, data.tokens_test, context=data.context).bpc  # the characters the transformers are scored on
kd.tables.Table(ngram_rows, "Character n-gram models on the validation plays")

# %%
ngram_fit = [r for r in meter.results if r.name == f"n-gram {best_row['smoothing']} {best_row['order']}"][0]
print(f"Chosen on validation: {best_row['smoothing']} order {best_row['order']} → test {ngram_test:.3f} bpc "
      f"(teacher {tm['test_bpc']:.3f}), built in {ngram_fit.seconds:.1f} s, {ngram_fit.joules:.0f} J.")
kd.experiments.record("best n-gram (val) and its test bpc", f"{best_row['smoothing']} {best_row['order']}: {ngram_test:.3f}")

# %% [markdown]
# ## 2 · The routes that need the giant
#
# * **Token-level KD, 40k and 115k students** — lesson 8's recipe: forward KL at the T and α chosen on
#   validation, from the sparse cache lesson 8 chose on validation (`experiments.lm_cache_choice`), one pass
#   over the transfer set; now also for a 115k-parameter student (4 blocks of width 48).
# * **Sequence-level KD** (Kim & Rush 2016) — the essay's "synthetic data" route: the teacher *writes* the
#   training text (one real first character per window, the rest sampled at T = 1), and the 40k student
#   learns it with the plain next-character loss. No logits are stored; the teacher's cost is generation.
#
# Each route is compared with the same student trained from scratch on the real text (same windows, same
# steps), over several seeds.

# %%
def runs(size, route, **kw):
    return [experiments.lm_student(data, size, route, seed, transfer, **kw) for seed in SEEDS]


with meter.phase("students"):
    routes = {"40k scratch": runs("40k", "scratch"), "40k distilled": runs("40k", "kd", **CHOICE, **CACHE),
              "115k scratch": runs("115k", "scratch"), "115k distilled": runs("115k", "kd", **CHOICE, **CACHE),
              "40k sequence-level KD": runs("40k", "seqkd")}
print("A window written the way the sequence-level KD text was (first character real, the rest sampled):\n")
print(data.decode(kd.lm.generate(teacher, transfer.X[0, :1], data.context - 1, temperature=1.0, seed=0)))

# %% [markdown]
# ## 3 · The same compute, and no giant
#
# The fairest test of "do we need the giant?" gives a model that never sees it the same budget. Count the
# FLOPs of the 115k distilled route — train the teacher, cache its logits, distil; a training step costs
# about 3× a forward pass (forward, then a backward pass of about twice its cost) — and spend them instead
# on the 115k transformer trained on the labels of **all** the training plays for as many passes as the
# budget buys. Like the teacher, it is trained once and cached, and it saves its state as it goes. Its first
# run is the longest of the course — it spends as many FLOPs as the teacher and the distillation together,
# and a 115k model runs its FLOPs at a lower rate on a CPU than the teacher does — so expect most of an
# hour on 2 CPU cores (a GPU makes it short); an interrupted run carries on where it stopped.
#
# That model differs from the 115k distilled student in two ways at once: no teacher, and about forty times
# more training steps on three times as many windows. To tell them apart, a **same-steps control** gives
# the teacher's signal to a 115k student trained with exactly the no-giant model's recipe — all the
# training windows, the same batches, the same number of steps — distilled from the course's sampled cache
# of the teacher on every window. It costs more than either (the teacher's cache on every window, then the
# long training), so it is a measurement, not a route anyone would pick for its price; it takes about as
# long again.

# %%
f_teacher = tm["flops_per_token"]
f_student = kd.flops_per_example(experiments.build_lm("115k", data), (data.context,), torch.long) / data.context
kd_positions = transfer.X.numel()
budget = 3 * f_teacher * tm["tokens_seen"] + f_teacher * kd_positions + 3 * f_student * kd_positions
per_epoch = 3 * f_student * data.y_train.numel()
EPOCHS = max(1, round(budget / per_epoch))
print(f"FLOPs: teacher training {3 * f_teacher * tm['tokens_seen']:.2e} + caching {f_teacher * kd_positions:.2e} + "
      f"distillation {3 * f_student * kd_positions:.2e} = {budget:.2e}")
print(f"One pass of the 115k model over the training plays: {per_epoch:.2e} FLOPs → {EPOCHS} passes")
with meter.phase("same-compute model"):
    routes["115k, same compute, no giant"] = [experiments.lm_student(data, "115k", "budget", 0, epochs=EPOCHS, quiet=False)]
budget_meta = routes["115k, same compute, no giant"][0].meta
print(f"test {fair_scores(routes['115k, same compute, no giant'][0], data)['test_bpc']:.3f} bpc after {budget_meta['train_seconds']:.0f} s of training "
      f"({'from the zoo' if routes['115k, same compute, no giant'][0].cached else 'trained now'}).")
with meter.phase("same-steps control"):
    routes["115k distilled, same steps"] = [experiments.lm_student(data, "115k", "budget_kd", 0, transfer, epochs=EPOCHS,
                                                                   quiet=False, **CHOICE, **CACHE)]
control = routes["115k distilled, same steps"][0]
print(f"same steps, distilled: test {fair_scores(control, data)['test_bpc']:.3f} bpc after "
      f"{control.meta['train_seconds']:.0f} s of training and {control.meta['teacher_joules'] / 1e3:.1f} kJ of teacher "
      f"caching ({'from the zoo' if control.cached else 'trained now'}).")

# %% [markdown]
# ## 4 · What each route writes
#
# The same prompt, seed and temperature (T = 0.8) for every model, so the differences are the models'.

# %%
PROMPT = "KING.\nWhat say you, my lord?\n\n"
prompt_ids = data.encode(PROMPT)
samples = {"teacher (0.8M)": teacher, **{name: entries[0].model for name, entries in routes.items()}}
with meter.phase("samples"):
    written = {name: data.decode(kd.lm.generate(model, prompt_ids, 160, temperature=0.8, seed=0)[len(prompt_ids):])
               for name, model in samples.items()}
    ngram_text = data.decode(NGRAM.generate(prompt_ids.tolist(), 160, temperature=0.8, seed=0))
for name, text in written.items():
    print(f"── {name} " + "─" * (60 - len(name)) + f"\n{text}\n")
print(f"── n-gram ({best_row['smoothing']}, order {best_row['order']}) " + "─" * 20 + f"\n{ngram_text}")

# %% [markdown]
# ## 5 · The ledger: lifecycle energy with the teacher counted
#
# Upfront energy is everything a route needed before its first query: its own training, and — where it
# needed the giant — the teacher's training and the caching (or generation) the teacher did for it, as
# measured in the process that made the student (each process that made students caches the logits once
# and counts that measurement). The **tuning** counts too: the distilled
# routes carry the four runs of the T-and-α grid that chose their setting, the n-gram every model of its
# order search.
#
# A route is priced two ways. **Scoring**: energy per character when whole windows are scored in batches
# of 64 (`kd.energy.energy_per_query`; the n-gram on a 20,000-character stream). **Writing**: energy per
# character when the model serves one user at a time, generating 64 characters after a prompt with batch 1
# and the key/value cache on — how a small chat model is actually used, and far less efficient per character.
# Lifecycle = upfront + 10 million characters, either way.

# %%
QUERIES = 10_000_000
window_batch = data.X_val[:64]


def per_char(model):
    model.eval()
    cost = kd.energy.energy_per_query(model, window_batch, min_seconds=kd.sized(1.0, 0.2))
    return cost["joules_per_query"] / data.context, cost["source"]


ledger = kd.ledger.Ledger("Language-model routes, priced on scoring")
serving = kd.ledger.Ledger("Language-model routes, priced on writing")


def upfront(name, item, joules, source, seconds=None):
    """An upfront cost of a route, the same in both ledgers."""
    for book in (ledger, serving):
        book.add(name, item, joules, source, seconds)


WRITE = 64  # characters written per query when serving: batch 1, key/value cache on
prompt_batch = data.encode(PROMPT)[None].to(DEVICE)


def per_char_written(model):
    model.eval()
    cost = kd.energy.energy_per_query(lambda p: kd.lm.generate(model, p, WRITE, seed=0), prompt_batch,
                                      min_seconds=kd.sized(1.0, 0.2))
    return cost["joules_per_query"] / WRITE


grid_entries = [experiments.lm_student(data, "40k", "kd", 0, transfer, T=T, alpha=a) for T, a in experiments.LM_KD_GRID]
tuning_joules = sum(e.meta["energy_joules"] for e in grid_entries)  # the T/alpha grid behind CHOICE
teacher_pc, source = per_char(teacher)
upfront("serve the teacher", "teacher training", tm["energy_joules"], tm["energy_source"], tm["train_seconds"])
ledger.add("serve the teacher", "inference", teacher_pc, source, per_query=True)
serving.add("serve the teacher", "writing", per_char_written(teacher), source, per_query=True)
for name, entries in routes.items():
    mean = lambda key: statistics.fmean(e.meta[key] for e in entries)
    if "distilled" in name or "sequence" in name:
        upfront(name, "teacher training", tm["energy_joules"], tm["energy_source"], tm["train_seconds"])
        upfront(name, "teacher caching / writing", mean("teacher_joules"), entries[0].meta["energy_source"])
    if "distilled" in name:
        upfront(name, f"T/alpha tuning ({len(grid_entries)} runs)", tuning_joules, grid_entries[0].meta["energy_source"])
        upfront(name, f"cache choice ({len(cache_runs)} runs)", sum(r["entry"].meta["energy_joules"] for r in cache_runs),
                grid_entries[0].meta["energy_source"])
    upfront(name, "training (mean over seeds)", mean("energy_joules"), entries[0].meta["energy_source"],
            mean("train_seconds"))
    ledger.add(name, "inference", per_char(entries[0].model)[0], source, per_query=True)
    serving.add(name, "writing", per_char_written(entries[0].model), source, per_query=True)
ngram_cost = kd.energy.energy_per_query(NGRAM.log_prob, data.tokens_test[:20_000].cpu(), min_seconds=kd.sized(1.0, 0.2))
ngram_writing = kd.energy.energy_per_query(lambda p: NGRAM.generate(p[0].tolist(), WRITE, seed=0), prompt_batch.cpu(),
                                           min_seconds=kd.sized(1.0, 0.2))
searched = [r for r in meter.results if r.name.startswith("n-gram ")]  # every order and smoothing tried
upfront("n-gram", f"counting, all {len(searched)} models of the order search", sum(r.joules for r in searched),
        ngram_fit.source, sum(r.seconds for r in searched))
ledger.add("n-gram", "inference", ngram_cost["joules_per_query"], ngram_cost["source"], per_query=True)
serving.add("n-gram", "writing", ngram_writing["joules_per_query"] / WRITE, ngram_writing["source"], per_query=True)
ledger.table(QUERIES)

# %%
bits = {"serve the teacher": [tm["test_bpc"]], "n-gram": [ngram_test],
       **{name: [fair_scores(e, data)["test_bpc"] for e in entries] for name, entries in routes.items()}}
params = {"serve the teacher": tm["params"], "n-gram": NGRAM.num_ngrams,
          **{name: entries[0].meta["params"] for name, entries in routes.items()}}
rows = []
for name in bits:
    upfront_j, per_q = ledger.total(name), ledger.total(name, 1) - ledger.total(name)
    score = kd.tables.mean_std(bits[name], scale=1, digits=3) if len(bits[name]) > 1 else f"{bits[name][0]:.3f}"
    rows.append({"route": name, "parameters": params[name], "test bpc": score, "seeds": len(bits[name]),
                 "upfront Wh": round(upfront_j / 3600, 4), "µJ / char scored": round(1e6 * per_q, 2),
                 "lifecycle Wh": round(ledger.total(name, QUERIES) / 3600, 4),
                 "µJ / char written": round(1e6 * (serving.total(name, 1) - serving.total(name)), 1),
                 "lifecycle Wh, writing": round(serving.total(name, QUERIES) / 3600, 4)})
    kd.experiments.record(f"route {name}: test bpc / lifecycle Wh",
                     f"{rows[-1]['test bpc']} / {rows[-1]['lifecycle Wh']}")
kd.tables.Table(rows, f"Every route · lifecycle = upfront + {QUERIES:,} characters scored, or written one at a time "
                      f"(batch 1, key/value cache) · energy: {source}")

# %% [markdown]
# (For the n-gram, "parameters" counts the distinct n-grams it stores over every order, and its inference scores a
# stream by table look-ups on the CPU.)
#
# ## 6 · The Pareto front
#
# A route is on the **Pareto front** when no other route is both better (fewer bits per character) and
# cheaper (less lifecycle energy). Error bars are ± one standard deviation over seeds.

# %%
LABEL_AT = {"serve the teacher": ((7, -3), "left"), "115k, same compute, no giant": ((-6, 6), "right"),
            "115k distilled, same steps": ((6, -8), "left"),
            "40k distilled": ((-6, -4), "right"), "40k sequence-level KD": ((6, 2), "left")}  # keep labels apart
fig, ax = plt.subplots(figsize=(7.5, 4.6))
for row in rows:
    values = bits[row["route"]]
    giant = row["route"] == "serve the teacher" or "distilled" in row["route"] or "sequence" in row["route"]
    ax.errorbar(row["lifecycle Wh"], statistics.fmean(values), yerr=kd.stats.spread(values),
                fmt="o" if giant else "s", capsize=3, color="tab:red" if giant else "tab:green")
    offset, align = LABEL_AT.get(row["route"], ((5, 4), "left"))
    ax.annotate(row["route"], (row["lifecycle Wh"], statistics.fmean(values)), fontsize=8,
                xytext=offset, textcoords="offset points", ha=align)
for order in (3, 5, best_row["order"]):  # the n-gram ladder (Kneser–Ney), scored on the same characters
    rung = bpc.ngram_bits(ngrams["kneser_ney", order], data.tokens_test, context=data.context).bpc
    ax.axhline(rung, color="tab:green", lw=0.7, ls=":")
    ax.annotate(f"{order}-gram", (1.0, rung), xycoords=("axes fraction", "data"), xytext=(3, 0),
                textcoords="offset points", fontsize=7, color="tab:green", va="center")
ax.set_xscale("log")
ax.set_xlabel(f"lifecycle energy, Wh (training + teacher + {QUERIES / 1e6:.0f}M characters; {meter.source.split(':')[0]})")
ax.set_ylabel("test bits per character (lower is better)")
ax.set_title("Language-model routes: red circles needed the giant, green squares did not")
ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# Break-even points: after how many characters does a route's lifecycle drop below another's?

# %%
pairs = [("40k distilled", "serve the teacher"), ("115k distilled", "serve the teacher"),
         ("115k distilled", "115k, same compute, no giant"), ("115k distilled, same steps", "115k, same compute, no giant"),
         ("40k distilled", "n-gram")]
for book, how in ((ledger, "scored"), (serving, "written one at a time")):
    print(f"Priced on characters {how}:")
    for a, b in pairs:
        q = book.break_even(a, b)
        print(f"  {a} vs {b}: " + ("never" if math.isinf(q) else f"{q:,.0f} characters" if q > 0 else "from the start"))

# %% [markdown]
# ## 7 · Against the published record
#
# * **Gemma 2** (2024) trained its 2B and 9B models by distillation from a larger model instead of on the
#   next token alone, and reported that a 2B model distilled from a 7B teacher beat the same model trained
#   from scratch on the same tokens.
# * **DistilGPT2** (Hugging Face, 2019): 82M parameters against GPT-2's 124M, WikiText-103 perplexity 21.1
#   against 16.3 — smaller and faster, clearly worse.
# * **MobileLLM** (Liu et al. 2024) tried distilling its sub-billion models from LLaMA-v2 7B and found it
#   slower to train and no better than the plain next-token loss.
# * **Busbridge et al. 2025** (*Distillation Scaling Laws*): distillation beats supervised learning only
#   when a teacher already exists (or serves many students) and the student's compute is small; with
#   enough compute and data, supervised training catches up — and counting the teacher's cost, it wins.
#
# Read this lesson's table in that light; the cells below print the comparisons, and the paragraph after
# them says what this run found.

# %%
def mean(name):
    return statistics.fmean(bits[name])


for size in ("40k", "115k"):
    fewer_bits = kd.stats.compare(bits[f"{size} scratch"], bits[f"{size} distilled"], higher_is_better=False)
    print(f"{size}: distillation against scratch {fewer_bits.describe(3, 'bpc')}, at "
          f"{ledger.total(f'{size} distilled', QUERIES) / ledger.total(f'{size} scratch', QUERIES):.0f}× "
          f"the lifecycle energy")
print(f"n-gram vs 40k distilled: {ngram_test - mean('40k distilled'):+.3f} bpc")
print(f"same compute, no giant vs 115k distilled: "
      f"{mean('115k, same compute, no giant') - mean('115k distilled'):+.3f} bpc")
print(f"same compute, no giant vs 115k distilled with the same steps: "
      f"{mean('115k, same compute, no giant') - mean('115k distilled, same steps'):+.3f} bpc")
print(f"sequence-level KD vs token-level KD (40k): {mean('40k sequence-level KD') - mean('40k distilled'):+.3f} bpc")

# %% [markdown]
# Every phase of this lesson, as metered (cached models cost what loading them costs; their own training
# energy is in the ledger above, as measured when they were made):

# %%
meter.table("This lesson's phases")

# %% [markdown]
# ## What the numbers say
#
# The paragraph below is written by the cell from this run's numbers (bits per character are the same for
# the same seeds on the same kind of CPU and thread count; times and joules are not). Every energy figure
# is what the meter reports; on a machine without counters it is the CPU-time estimate.

# %%
from IPython.display import Markdown  # noqa: E402

lifecycle = {r["route"]: r["lifecycle Wh"] for r in rows}
gains = {size: kd.stats.compare(bits[f"{size} scratch"], bits[f"{size} distilled"], higher_is_better=False)
         for size in ("40k", "115k")}
front = [r["route"] for r in rows if not any(
    statistics.fmean(bits[o["route"]]) < statistics.fmean(bits[r["route"]]) and o["lifecycle Wh"] < r["lifecycle Wh"]
    for o in rows)]
giant_vs_ngram = tm["test_bpc"] - ngram_test


def when(q):
    return "never" if math.isinf(q) else "from the start" if q <= 0 else f"after {q:,.0f} characters"


Markdown(f"""
* **The giant against counting.** The teacher scores {tm['test_bpc']:.3f} test bits per character and the
  {best_row['smoothing'].replace('_', '-')} {best_row['order']}-gram, counted in {ngram_fit.seconds:.2f} s, {ngram_test:.3f} on the same
  characters: the teacher is {'ahead' if giant_vs_ngram < 0 else 'behind'} by {abs(giant_vs_ngram):.3f} bits, at a lifecycle
  energy of {lifecycle['serve the teacher']:.2f} Wh against the n-gram's {lifecycle['n-gram']:.3f} Wh.
* **Distilled students.** 40k: {statistics.fmean(bits['40k scratch']):.3f} from scratch, {statistics.fmean(bits['40k distilled']):.3f}
  distilled ({gains['40k'].describe(3, 'bpc')}); 115k: {statistics.fmean(bits['115k scratch']):.3f} and
  {statistics.fmean(bits['115k distilled']):.3f} ({gains['115k'].describe(3, 'bpc')}). These students see one pass over a million
  characters; lesson 8's learning curves show how the gain changes with longer training. Counting the teacher,
  the 40k distilled route costs {lifecycle['40k distilled'] / lifecycle['40k scratch']:.1f}× the lifecycle energy of its scratch twin.
* **Sequence-level KD** (text the teacher wrote) reaches {statistics.fmean(bits['40k sequence-level KD']):.3f}, against
  {statistics.fmean(bits['40k distilled']):.3f} for token-level KD on the same windows.
* **The same compute, no giant:** the 115k model trained on the real text alone with the FLOPs of the whole
  distillation pipeline reaches {statistics.fmean(bits['115k, same compute, no giant']):.3f} bits, against
  {statistics.fmean(bits['115k distilled']):.3f} for the distilled 115k student (one seed; it also saw far more data).
  Given the very same steps and windows plus the teacher's sampled cache, the 115k student reaches
  {statistics.fmean(bits['115k distilled, same steps']):.3f}: the teacher's signal is worth
  {statistics.fmean(bits['115k, same compute, no giant']) - statistics.fmean(bits['115k distilled, same steps']):+.3f} bits at that
  length (one seed each, so read it against the 115k seed spread of {kd.stats.spread(bits['115k scratch']):.3f}), at a lifecycle
  energy of {lifecycle['115k distilled, same steps']:.2f} Wh against {lifecycle['115k, same compute, no giant']:.2f} Wh.
* **Serving one user at a time** costs far more per character than scoring in batches: the teacher writes at
  {next(r['µJ / char written'] for r in rows if r['route'] == 'serve the teacher'):,.0f} µJ a character against
  {next(r['µJ / char scored'] for r in rows if r['route'] == 'serve the teacher'):,.1f} µJ scored, the 40k student at
  {next(r['µJ / char written'] for r in rows if r['route'] == '40k distilled'):,.0f} µJ. Priced on writing, the 40k distilled
  student's lifecycle drops below the teacher's {when(serving.break_even('40k distilled', 'serve the teacher'))}.
* **On the Pareto front** (no route both better and cheaper, priced on scoring): {', '.join(front)}.
""")

# %% [markdown]
# Set against the published record: MobileLLM found distillation no substitute for training the small model
# itself longer; Busbridge et al. find that distillation pays when the teacher exists anyway (or serves many
# students) and the student's compute is small; and the essay's "task-specific small models" include models
# as plain as an n-gram. Compare each with the lines above. What does not carry over from this laptop scale: a
# character model has 84 classes, not 256k tokens, and 0.8M parameters are nowhere near the regime where
# LLM teachers know things an n-gram cannot.
