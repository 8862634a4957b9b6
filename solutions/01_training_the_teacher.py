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
# # Lesson 1 · Training the teacher
#
# Distillation starts with a teacher: a model that is *larger than we want to deploy*, trained on all
# the labelled data. Ours is a convolutional network on **Fashion-MNIST** (Xiao et al. 2017): 70,000
# greyscale 28×28 photos of ten kinds of clothing. It is tiny next to a language model, but it plays
# the same role, and we can measure everything about it on a laptop:
#
# * its size (parameters) and cost per image (FLOPs);
# * how long training takes, and how much of the machine's measured peak it uses;
# * how well it does on data it never trained on.
#
# The trained teacher is cached in `data/zoo/`, so the later lessons load it instead of training again.

# %% [markdown]
# ## 1 · The data
#
# `kd.load` returns the whole data set as tensors in memory: 55,000 training images, 5,000 validation
# images carved out of the official training set (for every choice we make), and the official 10,000
# test images (looked at only to report final numbers). The pixels are standardised with the training
# split's mean and standard deviation.

# %%
import time

import matplotlib.pyplot as plt
import torch

import kdlib as kd

DEVICE = kd.device()
data = kd.load("fashion_mnist", device=DEVICE)
print(data)
kd.plots.show_images(data.X_test.cpu(), data.y_test.cpu(), data.classes, n=10,
                     title="Ten Fashion-MNIST test images")
plt.show()


# %% [markdown]
# ## 2 · The teacher's architecture
#
# Two convolution blocks (3×3 convolutions with 32 and 64 filters, batch normalisation, ReLU, 2×2
# max-pooling), then a 256-unit dense layer with dropout and the 10-class output.
#
# ### Exercise 1 — parameters of a convolution
#
# Before counting with code, count by hand. Write `conv_params(c_in, c_out, k)`: the number of
# parameters of `nn.Conv2d(c_in, c_out, k)` (with its bias, PyTorch's default). The teacher below
# builds its convolutions *without* a bias, because the BatchNorm right after each one adds its own
# shift, which would make a conv bias redundant — so its table shows 288 = 1·32·3·3 for the first one.

# %%
def conv_params(c_in, c_out, k):
    """Parameters of a k x k convolution from c_in to c_out channels, bias included."""
    ### BEGIN SOLUTION
    return c_in * c_out * k * k + c_out
    ### END SOLUTION


# %%
from kdlib.checks import check_conv_params
check_conv_params(conv_params)

# %% [markdown]
# Now the whole model. kdlib counts parameters, and FLOPs per image with PyTorch's own FLOP counter
# (`torch.utils.flop_counter`, one multiply-add = 2 FLOPs). Notice where the parameters are — and
# where the FLOPs are: they are not in the same layers.

# %%
teacher_config = kd.experiments.teacher_config()
model = kd.experiments.build_teacher(teacher_config)
print(model)

rows = []
for name, layer in model.named_children():
    params = sum(p.numel() for p in layer.parameters())
    if params:
        rows.append({"layer": f"{name}: {type(layer).__name__}", "parameters": params})
kd.tables.Table(rows, f"Teacher: {kd.count_params(model):,} parameters")

# %%
size = kd.describe(model, data.input_shape)
print(f"parameters:         {size['params']:,}  ({size['size_mb']} MB as float32)")
print(f"forward FLOPs/image: {kd.models.human(size['flops'], 'FLOPs')}")
print(f"one training epoch: ~{kd.models.human(3 * size['flops'] * len(data.y_train), 'FLOPs')} "
      "(forward + backward ≈ 3 × forward)")

# %% [markdown]
# ## 3 · Training (or loading) the teacher
#
# `kd.experiments.teacher` trains the model with `kd.fit` — AdamW, a cosine learning-rate schedule, batches
# of 128 — and stores the weights and what training measured in the zoo, keyed by the configuration
# above. The first run takes about two minutes on 2 CPU cores (a progress bar shows the epochs); after
# that it loads in a second. Delete `data/zoo/teacher-*.pt`, or pass `retrain=True`, to train again.

# %%
start = time.perf_counter()
entry = kd.experiments.teacher(data)
teacher, meta = entry.model, entry.meta
print(f"{'loaded from cache' if entry.cached else 'trained now'} in {time.perf_counter() - start:.1f} s "
      f"({entry.path.name})")
print(f"training took {meta['train_seconds']:.0f} s for {teacher_config['epochs']} epochs")

# %%
history = kd.train.History(meta["history"])
kd.plots.plot_history({"teacher": history}, metrics=("train_loss", "val_acc"),
                      title="Teacher training on Fashion-MNIST")
plt.show()
print(history.table())

# %% [markdown]
# ## 4 · How good is it, and what did it cost?
#
# Accuracy on the test set, which played no part in training or in any choice. Then the cost: the
# FLOPs training performed, divided by the time it took, is the **achieved** GFLOP/s — compare it with
# the matmul peak of lesson 0, measured again here on the same machine.

# %%
test = kd.evaluate(teacher, *data.test)
train_flops = 3 * meta["flops"] * meta["examples_seen"]
achieved = kd.perf.achieved_gflops(meta["flops"], meta["examples_seen"], meta["train_seconds"])
peak = kd.perf.matmul_gflops(1024, seconds=kd.sized(1.0, 0.2), device=DEVICE)

summary = kd.tables.Table([
    {"quantity": "test accuracy", "value": f"{100 * test['acc']:.2f} %"},
    {"quantity": "validation accuracy (last epoch)", "value": f"{100 * meta['val_acc']:.2f} %"},
    {"quantity": "parameters", "value": f"{meta['params']:,}"},
    {"quantity": "forward FLOPs per image", "value": kd.models.human(meta["flops"], "FLOPs")},
    {"quantity": "training FLOPs (≈ 3 × forward × images seen)", "value": kd.models.human(train_flops, "FLOPs")},
    {"quantity": "training wall time", "value": f"{meta['train_seconds']:.0f} s"},
    {"quantity": "achieved training throughput", "value": f"{achieved:.0f} GFLOP/s"},
    {"quantity": "measured matmul peak (this run)", "value": f"{peak:.0f} GFLOP/s"},
    {"quantity": "share of peak", "value": f"{100 * achieved / peak:.0f} %"},
    {"quantity": "training energy", "value": f"{meta['energy_joules'] / 1000:.1f} kJ = {meta['energy_joules'] / 3600:.2f} Wh"},
    {"quantity": "energy measured by", "value": meta["energy_source"]},
], "The teacher")
kd.experiments.record("teacher training energy (J)", meta["energy_joules"])
kd.experiments.record("teacher test accuracy %", round(100 * test["acc"], 2))
kd.experiments.record("teacher training seconds", meta["train_seconds"])
kd.experiments.record("teacher share of matmul peak %", round(100 * achieved / peak, 1))
summary

# %% [markdown]
# The energy figure comes from kdlib's `EnergyMeter`, which wrapped the training run. On a machine
# without hardware energy counters (most virtual machines, and CI) it is an **estimate** — this
# process's share of CPU time × an assumed CPU power — and the table says so; lesson 4 explains the
# meters and how far to trust each.
#
# Two things to notice. First, even this small teacher needs about a **teraFLOP per epoch**; the
# giants of lesson 0 need roughly 10¹¹ times more. Second, a training run reaches only a fraction of
# the matmul peak: small convolutions, normalisation, the optimizer step and Python overhead all
# cost time without doing large matrix products.
#
# Which classes does the teacher confuse? A per-class view of its test accuracy:

# %%
pred = kd.predict(teacher, data.X_test).argmax(1)
rows = []
for c, name in enumerate(data.classes):
    mask = data.y_test == c
    wrong = torch.bincount(pred[mask], minlength=10)
    wrong[c] = 0
    rows.append({"class": name, "accuracy %": round(100 * float((pred[mask] == c).float().mean()), 1),
                 "most often mistaken for": data.classes[int(wrong.argmax())]})
kd.tables.Table(rows, "Teacher, per class (test set)")

# %% [markdown]
# Shirts, T-shirts, pullovers and coats are where the teacher struggles — and, as lesson 2 shows,
# where its *wrong* answers carry the most information.
#
# **Next — lesson 2:** look inside the teacher's predictions: soft labels and dark knowledge.
