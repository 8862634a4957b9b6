"""kdlib — the helper library of the Distilled Giants course.

Train a large teacher, distil it into a small student, measure what it costs, and compare it
with small models that never needed a giant.  Each module owns one responsibility:

=============  =====================================================================
``runtime``    device choice (cuda → mps → cpu), device synchronisation, seeds, the smoke size
``data``       the data sets by name: ``load``, ``ensure`` and the ``DATASETS`` registry
``dataset``    ``Dataset`` (train / validation / test tensors), the shared split and normalisation; ``batches``
``cache``      the cache folder ``data_dir()``, the missing- and corrupt-data errors, checksums
``fashion_mnist`` Fashion-MNIST's four files: found, fetched, checksum-verified, loaded
``bundled``    the data sets that need no files: scikit-learn's digits, MNIST-1D generated
``text``       the Shakespeare corpus as characters, split by work, in windows
``bible``      the King James Bible as characters in Shakespeare's vocabulary, split by book (lesson 10)
``lm``         a small causal character transformer and sampling with a key/value cache (lesson 8)
``bpc``        bits per character on running text, sliding windows: one scorer for transformers and n-grams
``ngram``      a counted character n-gram model, Kneser–Ney or Witten–Bell (lesson 9)
``models``     MLP and CNN factories; parameter and FLOP counts
``train``      ``fit``, ``evaluate``, ``predict``; progress bars and history; DDP
``resume``     fit's own state saved as it goes, so an interrupted run resumes to the same weights
``zoo``        the config-keyed checkpoint cache
``workers``    independent zoo runs in single-thread worker processes, bit-identical to a serial run
``distill``    temperature softmax, KD losses (forward / reverse, k-sparse), a frozen teacher, logit caching
``onpolicy``   on-policy (GKD-style) distillation: the student writes, the teacher scores its text
``sparse``     a teacher's distribution in a few numbers: top-k plus a bucket, sampled-k; bytes per position
``perf``       measured matmul peak and achieved GFLOP/s
``energy``     EnergyMeter: nvml / rapl counters, the labelled CPU-time estimate, energy per query
``ledger``     the lifecycle-energy ledger by route, the break-even point, students per teacher
``mistakes``   where a teacher is confidently wrong, and whether a student follows it there (lesson 10)
``grid``       CO2 from energy: grid intensity by region, kWh
``validate``   one checked-number helper, so every bad number gets the same clear error
``checks``     exercise checks that say right or wrong without giving the answer
``plots``      labelled matplotlib figures; ``widgets``: the temperature and sampling explorers
``tables``     result tables (text and HTML), mean ± std
``stats``      seed statistics: paired differences, spread, t-interval, the twice-the-spread rule
``teacherfree`` label smoothing, born-again self-distillation, self-training
``augment``    shifts and flips with torchvision.transforms.v2, one random draw per group of a batch
``compress``   pruning, int8 quantization, size on disk, CPU latency
``shift``      seeded corruptions, a class left out, the class-bias correction
``capstone``   scoring and the leaderboard of the lesson 7 assignment
``doctor``     the environment report: versions, device, data, energy meters (lesson 0; `python -m kdlib doctor`)
=============  =====================================================================

Above the library, in folders of their own: ``kdlib.experiments``, the course's shared experiments
(the cached teachers and students several lessons use, and ``record`` for the course summary), and
``kdlib.tooling``, the course tooling (lesson generation, pairing, the notebook runner, the book,
grading, the benchmark, the command line), which neither the library nor a learner's code imports.

``import kdlib`` loads only the core (torch, numpy, tqdm); every other module is imported the first
time it is used, e.g. ``kd.plots``, so plotting, widgets, torchvision and the course's experiments cost
nothing until a lesson asks for them.
"""
from __future__ import annotations

import importlib

# The core, imported with kdlib (torch, numpy and tqdm only): data, models, training, the zoo.
from .data import load
from .dataset import Dataset, batches
from .models import cnn, count_params, describe, flops_per_example, mlp
from .ngram import NGramLM
from .runtime import choose_device, device, is_smoke, seed_everything, sized
from .text import TextDataset
from .train import History, evaluate, fit, predict, train_fresh
from .zoo import load_or_train

__version__ = "0.1.0"

#: Submodules imported on first use (``kd.plots``, ``kd.checks``...), so that ``import kdlib`` does not
#: load matplotlib, ipywidgets, torchvision or the course's experiments before they are needed.
LAZY_SUBMODULES = (
    "augment", "bpc", "capstone", "checks", "compress", "distill", "doctor", "energy", "experiments", "grid", "ledger",
    "lm", "mistakes", "onpolicy", "perf", "plots", "shift", "sparse", "stats", "tables", "teacherfree", "validate", "widgets",
    "workers",
)


def __getattr__(name: str):
    """Import a lazy submodule the first time ``kdlib.<name>`` is used (PEP 562)."""
    if name in LAZY_SUBMODULES:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'kdlib' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(LAZY_SUBMODULES))


class _Package(type(importlib)):
    """``kdlib`` itself: ``kd.checks`` is always kdlib's own checks module (the graded cells call it)."""

    def __setattr__(self, name, value):
        import sys

        if name == "checks" and value is not sys.modules.get(f"{__name__}.checks"):
            raise AttributeError("kd.checks cannot be replaced: the graded checks are kdlib's own.")
        super().__setattr__(name, value)


import sys as _sys  # noqa: E402

_sys.modules[__name__].__class__ = _Package
del _sys


__all__ = [
    "augment", "bpc", "capstone", "checks", "compress", "distill", "doctor", "energy", "experiments", "grid", "ledger", "lm",
    "onpolicy", "perf", "plots", "shift", "sparse", "stats", "tables", "teacherfree", "text", "widgets", "workers",
    "Dataset", "History", "NGramLM", "TextDataset", "batches", "choose_device", "cnn", "count_params", "describe", "device",
    "evaluate", "fit", "flops_per_example", "is_smoke", "load", "load_or_train", "mlp", "predict",
    "seed_everything", "sized", "train_fresh",
]
