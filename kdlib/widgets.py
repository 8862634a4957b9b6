"""ipywidgets for the lessons: the temperature explorer of lesson 2."""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import torch

from .distill import entropy, softmax_t


def temperature_explorer(logits: torch.Tensor, images: torch.Tensor, labels: torch.Tensor,
                         classes: Sequence[str], T: float = 1.0):
    """A slider over the temperature T (and one over the example) showing the teacher's
    distribution ``softmax(z / T)`` on a real test image, with its entropy (lesson 2).

    Returns the widget box; display it as the last expression of a cell.
    """
    import ipywidgets as w

    if len(logits) != len(images) or len(images) != len(labels) or len(logits) == 0:
        raise ValueError("logits, images and labels must be non-empty and of the same length.")
    t_slider = w.FloatLogSlider(value=T, base=10, min=-0.5, max=1.5, step=0.05, description="T",
                                continuous_update=False, readout_format=".2f")
    i_slider = w.IntSlider(value=0, min=0, max=len(images) - 1, description="image", continuous_update=False)

    def draw(T, index):
        probs = softmax_t(logits[index], T)
        fig, (ax_img, ax_bar) = plt.subplots(1, 2, figsize=(9, 3), gridspec_kw={"width_ratios": [1, 3]})
        ax_img.imshow(images[index].squeeze().cpu(), cmap="gray_r")
        ax_img.set_title(f"true: {classes[int(labels[index])]}")
        ax_img.axis("off")
        colors = ["tab:orange" if i == int(labels[index]) else "tab:blue" for i in range(len(classes))]
        ax_bar.bar(range(len(classes)), probs.cpu().numpy(), color=colors)
        ax_bar.set_xticks(range(len(classes)), classes, rotation=45, ha="right", fontsize=8)
        ax_bar.set_ylim(0, 1)
        ax_bar.set_ylabel("probability")
        ax_bar.set_title(f"softmax(z / T) at T = {T:.2f} — entropy {float(entropy(probs)):.2f} nats")
        fig.tight_layout()
        plt.show()

    out = w.interactive_output(draw, {"T": t_slider, "index": i_slider})
    return w.VBox([w.HBox([t_slider, i_slider]), out])
