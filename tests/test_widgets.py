"""kdlib.widgets draws through kdlib.plots: the explorer's figure is the lesson's plot_probs figure."""
import matplotlib.pyplot as plt
import pytest
import torch

from kdlib import plots, widgets

pytest.importorskip("ipywidgets")


def test_temperature_explorer_draws_with_plot_probs(monkeypatch):
    plt.switch_backend("Agg")
    calls = []

    def spy(probs, classes, ax=None, title="", true_label=None):
        calls.append((probs.sum().item(), true_label, title))
        return plots.plot_probs(probs, classes, ax, title, true_label)

    monkeypatch.setattr(widgets, "plot_probs", spy)
    logits, images, labels = torch.randn(3, 4), torch.rand(3, 1, 28, 28), torch.tensor([2, 0, 1])
    box = widgets.temperature_explorer(logits, images, labels, ["a", "b", "c", "d"], T=2.0)
    assert box.children and len(calls) == 1                       # drawn once when built
    total, true_label, title = calls[0]
    assert total == pytest.approx(1.0) and true_label == 2 and "T = 2.00" in title and "entropy" in title
    with pytest.raises(ValueError, match="same length"):
        widgets.temperature_explorer(logits, images[:2], labels, ["a", "b", "c", "d"])
