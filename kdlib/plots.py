"""Matplotlib figures used by the lessons: labelled axes, titles and legends, nothing fancy."""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch


def show_image(img: torch.Tensor, title: str = "", ax=None, fontsize: float | None = None):
    """One greyscale image, no axes, with a title."""
    ax = ax or plt.subplots(figsize=(2, 2))[1]
    ax.imshow(img.detach().squeeze().cpu().numpy(), cmap="gray_r")
    ax.set_title(title, fontsize=fontsize)
    ax.axis("off")
    return ax


def show_images(X: torch.Tensor, y: torch.Tensor, classes: Sequence[str], n: int = 10, title: str = ""):
    """A row of ``n`` images with their class names.

    Introduced in lesson 1.
    """
    fig, axes = plt.subplots(1, n, figsize=(1.4 * n, 1.8))
    for ax, img, label in zip(np.atleast_1d(axes), X[:n], y[:n]):
        show_image(img, classes[int(label)], ax, fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_history(histories: Mapping[str, "object"], metrics: Sequence[str] = ("train_loss", "val_acc"),
                 title: str = "Training history"):
    """One panel per metric, one line per run, x = epoch.

    Introduced in lesson 1.
    """
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.4))
    for ax, metric in zip(np.atleast_1d(axes), metrics):
        for label, history in histories.items():
            values = history[metric]
            scale = 100 if metric.endswith("acc") else 1
            ax.plot(range(1, len(values) + 1), [scale * v for v in values], marker="o", label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric.replace("_", " ") + (" (%)" if metric.endswith("acc") else " (nats)"))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_probs(probs: torch.Tensor, classes: Sequence[str], ax=None, title: str = "", true_label: int | None = None):
    """Bar chart of one probability vector over the classes.

    Introduced in lesson 2.
    """
    ax = ax or plt.subplots(figsize=(6, 3))[1]
    colors = ["tab:orange" if i == true_label else "tab:blue" for i in range(len(classes))]
    ax.bar(range(len(classes)), probs.detach().cpu().numpy(), color=colors)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("probability")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    return ax


def plot_heatmap(matrix, classes: Sequence[str], title: str, colorbar_label: str, ax=None, fmt: str = ".2f"):
    """A labelled class × class heatmap with the values written in the cells.

    Introduced in lesson 2.
    """
    matrix = np.asarray(matrix.detach().cpu() if isinstance(matrix, torch.Tensor) else matrix)
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, 6.2))
    image = ax.imshow(matrix, cmap="viridis")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    top = matrix.max()
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            ax.text(j, i, format(matrix[i, j], fmt), ha="center", va="center", fontsize=7,
                    color="black" if matrix[i, j] > 0.6 * top else "white")
    ax.figure.colorbar(image, ax=ax, label=colorbar_label)
    ax.set_title(title)
    ax.figure.tight_layout()
    return ax


def errorbar_table(ax, labels: Sequence[str], means: Sequence[float], stds: Sequence[float], ylabel: str, title: str):
    """Bars with ± one standard deviation.

    Introduced in lesson 3.
    """
    ax.bar(range(len(labels)), means, yerr=stds, capsize=4, color="tab:blue", alpha=0.8)
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    return ax
