"""ipywidgets for the lessons: the temperature explorer of lesson 2 and the sampling explorer of lesson 8."""
from __future__ import annotations

import html
from typing import Sequence

import matplotlib.pyplot as plt
import torch

from .distill import entropy, softmax_t
from .plots import plot_probs, show_image


def temperature_explorer(logits: torch.Tensor, images: torch.Tensor, labels: torch.Tensor,
                         classes: Sequence[str], T: float = 1.0):
    """A slider over the temperature T (and one over the example) showing the teacher's
    distribution ``softmax(z / T)`` on a real test image, with its entropy.

    Returns the widget box; display it as the last expression of a cell.

    Introduced in lesson 2.
    """
    import ipywidgets as w

    if len(logits) != len(images) or len(images) != len(labels) or len(logits) == 0:
        raise ValueError("logits, images and labels must be non-empty and of the same length.")
    t_slider = w.FloatLogSlider(value=T, base=10, min=-0.5, max=1.5, step=0.05, description="T",
                                continuous_update=False, readout_format=".2f")
    i_slider = w.IntSlider(value=0, min=0, max=len(images) - 1, description="image", continuous_update=False)

    def draw(T, index):
        probs, label = softmax_t(logits[index], T), int(labels[index])
        fig, (ax_img, ax_bar) = plt.subplots(1, 2, figsize=(9, 3), gridspec_kw={"width_ratios": [1, 3]})
        show_image(images[index], f"true: {classes[label]}", ax_img)
        plot_probs(probs, classes, ax_bar, true_label=label,
                   title=f"softmax(z / T) at T = {T:.2f} — entropy {float(entropy(probs)):.2f} nats")
        fig.tight_layout()
        plt.show()

    out = w.interactive_output(draw, {"T": t_slider, "index": i_slider})
    return w.VBox([w.HBox([t_slider, i_slider]), out])


def sampling_explorer(model, data, prompt: str, length: int = 240, T: float = 0.8, seed: int = 0):
    """A slider over the sampling temperature of a language model, showing the text it writes.

    The same ``softmax(z / T)`` as lesson 2's explorer, now applied at every character: each new
    character is drawn from the model's next-character distribution at temperature ``T`` (T = 0 is
    greedy).  The seed is fixed, so only the temperature changes what you read.  Returns the widget box.

    Introduced in lesson 8.
    """
    import ipywidgets as w

    from .lm import generate

    ids = data.encode(prompt)
    t_slider = w.FloatSlider(value=T, min=0.0, max=2.0, step=0.1, description="T", continuous_update=False,
                             readout_format=".1f")
    s_slider = w.IntSlider(value=seed, min=0, max=20, description="seed", continuous_update=False)
    text = w.HTML()

    def draw(change=None):
        out = generate(model, ids, length, temperature=float(t_slider.value), seed=int(s_slider.value))
        body = html.escape(data.decode(out[len(ids):]))
        text.value = (f"<pre style='white-space:pre-wrap'><b>{html.escape(prompt)}</b>{body}</pre>"
                      f"<i>T = {t_slider.value:.1f}, seed {s_slider.value}: {length} sampled characters</i>")

    t_slider.observe(draw, "value")
    s_slider.observe(draw, "value")
    draw()
    return w.VBox([w.HBox([t_slider, s_slider]), text])
