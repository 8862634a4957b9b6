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
# # Lesson 2 · Soft labels and dark knowledge
#
# A label says *"this is a shirt"*. The teacher says more: *"shirt, 70 %; T-shirt, 15 %; pullover, 8 %;
# coat, 5 %; sneaker, almost nothing"*. Those small numbers on the wrong classes say which classes look
# alike — knowledge the label does not contain. Hinton, Vinyals & Dean (2015) called it
# **dark knowledge**, and it is what a student learns from in distillation.
#
# The trouble is that a well-trained teacher is very confident: the small probabilities are tiny.
# **Temperature** fixes that: divide the logits z by T before the softmax,
#
# $$p_i(T) = \frac{\exp(z_i / T)}{\sum_j \exp(z_j / T)},$$
#
# and as T grows the distribution softens, revealing the structure among the wrong classes.

# %%
import matplotlib.pyplot as plt
import torch

import kdlib as kd

DEVICE = kd.device()
data = kd.load("fashion_mnist", device=DEVICE)
teacher = kd.experiments.teacher(data).model
meter = kd.energy.EnergyMeter(device=DEVICE)
with meter.phase("teacher inference on the test set"):
    test_logits = kd.predict(teacher, data.X_test)
print(f"teacher test accuracy: {100 * (test_logits.argmax(1) == data.y_test).float().mean():.2f} %")
print(f"its {len(data.y_test):,} predictions took {meter.seconds:.1f} s and {meter.joules:.0f} J "
      f"({1000 * meter.joules / len(data.y_test):.2f} mJ per image; {meter.source.split(':')[0]})")


# %% [markdown]
# ### Exercise 1 — the temperature softmax
#
# Write `softmax_t(logits, T)` over the last dimension. Make it numerically safe: `torch.softmax`
# already subtracts the maximum for you.

# %%
def softmax_t(logits, T):
    """Softmax of logits / T over the last dimension."""
    ### BEGIN SOLUTION
    return torch.softmax(logits / T, dim=-1)
    ### END SOLUTION


# %%
from kdlib.checks import check_softmax_t
check_softmax_t(softmax_t)

# %% [markdown]
# From here on the lesson uses kdlib's `kd.distill.softmax_t`, which is the same function (and is
# used whether or not your exercise is finished).
#
# ## 1 · One image, several temperatures
#
# A shirt from the test set, seen by the teacher at T = 1, 4 and 20. The orange bar is the true class.

# %%
SHIRT = data.classes.index("Shirt")
index = int((data.y_test == SHIRT).nonzero()[0])
fig, axes = plt.subplots(1, 4, figsize=(16, 3.2), gridspec_kw={"width_ratios": [1, 3, 3, 3]})
axes[0].imshow(data.X_test[index].squeeze().cpu(), cmap="gray_r")
axes[0].set_title(f"test image {index}: {data.classes[SHIRT]}")
axes[0].axis("off")
for ax, T in zip(axes[1:], (1, 4, 20)):
    probs = kd.distill.softmax_t(test_logits[index], T)
    kd.plots.plot_probs(probs, data.classes, ax=ax, true_label=SHIRT,
                        title=f"T = {T}: entropy {float(kd.distill.entropy(probs)):.2f} nats")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 2 · Explore it yourself
#
# Move the temperature slider (log scale, 0.3 to 30) and the image slider. Watch which wrong classes
# rise first as T grows: they are the teacher's idea of "similar".

# %%
N_EXPLORE = kd.sized(200, 20)
kd.widgets.temperature_explorer(test_logits[:N_EXPLORE].cpu(), data.X_test[:N_EXPLORE].cpu(),
                                data.y_test[:N_EXPLORE].cpu(), data.classes, T=1.0)

# %% [markdown]
# ## 3 · Entropy against temperature
#
# Entropy H(p) = −Σ pᵢ log pᵢ measures how spread out a distribution is: 0 nats for one-hot,
# log 10 ≈ 2.30 nats for uniform over ten classes. Averaged over the test set, by whether the teacher
# was right:

# %%
temperatures = torch.logspace(-0.5, 1.7, 30)
correct = test_logits.argmax(1) == data.y_test
mean_entropy = {"teacher right": [], "teacher wrong": []}
for T in temperatures.tolist():
    h = kd.distill.entropy(kd.distill.softmax_t(test_logits, T))
    mean_entropy["teacher right"].append(float(h[correct].mean()))
    mean_entropy["teacher wrong"].append(float(h[~correct].mean()))

fig, ax = plt.subplots(figsize=(6.5, 3.8))
for label, values in mean_entropy.items():
    ax.plot(temperatures, values, marker=".", label=f"{label} ({int((correct if label.endswith('right') else ~correct).sum())} images)")
ax.axhline(torch.log(torch.tensor(10.0)).item(), color="gray", linestyle="--", label="uniform (log 10)")
for T in (1, 4, 20):
    ax.axvline(T, color="lightgray", linewidth=0.8)
ax.set_xscale("log")
ax.set_xlabel("temperature T")
ax.set_ylabel("mean entropy (nats)")
ax.set_title("The teacher's soft labels soften as T grows (grey lines: T = 1, 4, 20)")
ax.legend()
ax.grid(alpha=0.3)
plt.show()
at = lambda T, key: mean_entropy[key][int(torch.argmin((temperatures - T).abs()))]
print(f"At T≈1 the teacher is nearly certain when right ({at(1, 'teacher right'):.2f} nats) and much less so "
      f"when wrong ({at(1, 'teacher wrong'):.2f} nats).")

# %% [markdown]
# At T = 1 the teacher is almost one-hot on the images it gets right, so its soft labels carry little
# more than the hard label. Its uncertainty on the images it gets wrong is itself informative: it
# hesitates where the classes really overlap. By T ≈ 4–8 the distributions carry visible mass on the
# other classes, and by T ≈ 50 they approach uniform, where all the information is washed out.
# Distillation works in between.
#
# ## 4 · What the teacher learned about clothes
#
# Average the teacher's soft labels (T = 4) over all test images of each true class. Row *i* says how
# the teacher spreads its belief for images of class *i*; the diagonal is its confidence, everything
# off the diagonal is dark knowledge.

# %%
T_MAP = 4.0
soft = kd.distill.softmax_t(test_logits, T_MAP)
similarity = torch.stack([soft[data.y_test == c].mean(0) for c in range(data.num_classes)])
kd.plots.plot_heatmap(similarity, data.classes, colorbar_label="mean probability at T = 4",
                      title=f"Teacher's average soft label per true class (T = {T_MAP:g}, test set)")
plt.show()

# %%
off = similarity.clone()
off.fill_diagonal_(0)
rows = []
for c in [data.classes.index(n) for n in ("Shirt", "T-shirt/top", "Pullover", "Coat", "Sandal", "Trouser")]:
    top = torch.topk(off[c], 2)
    rows.append({"true class": data.classes[c], "own class": round(float(similarity[c, c]), 3),
                 "most similar": f"{data.classes[int(top.indices[0])]} ({float(top.values[0]):.3f})",
                 "next": f"{data.classes[int(top.indices[1])]} ({float(top.values[1]):.3f})"})
kd.tables.Table(rows, "Nearest neighbours in the teacher's eyes (T = 4)")

# %% [markdown]
# The upper-body garments — shirt, T-shirt, pullover, coat — form one family in the teacher's eyes;
# shoes (sandal, sneaker, ankle boot) form another; trousers stand apart from everything. Nobody told
# the teacher this: the labels treat all ten classes as equally different. A student trained only on
# labels has to discover the structure from scratch; a student trained on these soft labels is handed
# it on every example.
#
# **Next — lesson 3:** use the soft labels to train students, and measure honestly how much they help.
