"""The course's shared, cached models: one recipe each, so every lesson gets the same teacher.

Lesson 1 trains the teacher; lessons 2–7 load it from the zoo (``data/zoo/``).  The config is
the cache key: change a number here and the teacher is retrained, never loaded stale.
"""
from __future__ import annotations

from . import zoo
from .data import Dataset
from .energy import EnergyMeter
from .models import cnn, count_params, flops_per_example
from .runtime import is_smoke, sized
from .train import evaluate, fit


def teacher_config() -> dict:
    """The lesson 1 teacher: ``cnn((32, 64), 256)`` trained with AdamW and a cosine schedule."""
    return {"arch": "cnn", "channels": [32, 64], "hidden": 256, "dropout": 0.25,
            "epochs": sized(8, 1), "lr": 2e-3, "batch_size": 128, "seed": 0, "smoke": is_smoke(),
            "metered": True}


def build_teacher(config: dict | None = None):
    config = config or teacher_config()
    return cnn(tuple(config["channels"]), config["hidden"], dropout=config["dropout"])


def teacher(data: Dataset, retrain: bool = False, quiet: bool = False) -> zoo.Entry:
    """The cached Fashion-MNIST teacher; trains it (about two minutes on 2 cores) if not cached.

    ``Entry.meta`` holds what training measured: ``history``, ``val_acc``, ``test_acc``,
    ``train_seconds``, ``params``, ``flops`` (forward, per image), ``examples_seen``, and the
    training energy ``energy_joules`` with its ``energy_source`` (:class:`kdlib.energy.EnergyMeter`).
    """
    if data.name != "fashion_mnist":
        raise ValueError(f"The course teacher is trained on Fashion-MNIST, not {data.name!r}.")
    config = teacher_config()

    def train(model):
        import torch

        torch.manual_seed(config["seed"])
        model.load_state_dict(build_teacher(config).state_dict())  # seeded initial weights
        meter = EnergyMeter(device=data.device)  # times the run as well as metering it
        with meter:
            history = fit(model, data, epochs=config["epochs"], lr=config["lr"], batch_size=config["batch_size"],
                          seed=config["seed"], quiet=quiet, desc="teacher")
        return {"history": history.rows, "train_seconds": round(meter.seconds, 2),
                "energy_joules": round(meter.joules, 1), "energy_source": meter.source,
                "val_acc": history.last["val_acc"], "test_acc": evaluate(model, *data.test)["acc"],
                "params": count_params(model), "flops": flops_per_example(model, data.input_shape),
                "examples_seen": config["epochs"] * len(data.y_train)}

    entry = zoo.load_or_train("teacher", config, lambda: build_teacher(config), train, retrain=retrain)
    entry.model.to(data.device)
    return entry
