"""One zoo path for every shared experiment: the cache key, the seeded weights, the meter, the record.

A shared experiment is a small frozen dataclass that says *what* is trained (:class:`FashionTeacher`,
:class:`LMStudent`, ...); :meth:`Experiment.load_or_train` is the one way any of them is trained
and cached (:func:`kdlib.zoo.load_or_train`):

1. **the key** is the whole config: the experiment's settings (every field, see ``settings``),
   the smoke size, and the identity of every input it learns from (``uses``): a teacher by the
   SHA-256 digest of its weights, a transfer set by its seed and size.  A model trained from
   another teacher, or on other windows, is never loaded in place of this one;
2. **the initial weights** are seeded one way: ``torch.manual_seed(seed)``, then ``build`` — what
   :func:`kdlib.train.train_fresh` does (``fit`` seeds the batch order itself);
3. **the meter**: the training step alone runs under one :class:`kdlib.energy.EnergyMeter`;
   preparing its inputs (a teacher's logits, say) and scoring the result are outside it;
4. **the record** saved with the weights is :func:`result`: ``train_seconds``, ``energy_joules``,
   ``energy_source``, and what the experiment measured (scores, history, parameters...);
5. **the resume file**: training that calls ``fit(..., checkpoint=ready["checkpoint"])`` saves its
   state beside the entry (``<name>-<key>.resume``, :mod:`kdlib.resume`) as it goes, so a run killed
   by a cell timeout carries on where it stopped the next time it is asked for.  Its time and energy
   then add the interrupted part (:func:`resumed_result`).
"""
from __future__ import annotations

import dataclasses
import json
from typing import Callable, ClassVar

import torch
from torch import nn

from .. import zoo
from ..energy import EnergyMeter
from ..runtime import is_smoke


def metered(fn: Callable, device=None):
    """Run ``fn()`` under a fresh :class:`~kdlib.energy.EnergyMeter` on ``device``; return ``(its result, the meter)``."""
    meter = EnergyMeter(device=device)  # times the run as well as metering it
    with meter:
        out = fn()
    return out, meter


def result(meter: EnergyMeter, **measured) -> dict:
    """The record a trained experiment keeps in ``Entry.meta``: what ``meter`` measured, then ``measured``.

    ``train_seconds`` (rounded to 0.01 s), ``energy_joules`` (to 0.1 J) with its ``energy_source``
    (counter or estimate), followed by the experiment's own figures.
    """
    return {"train_seconds": round(meter.seconds, 2), "energy_joules": round(meter.joules, 1),
            "energy_source": meter.source, **measured}


def resumed_result(record: dict, resumed: dict | None) -> dict:
    """``record`` of a run that resumed after ``seconds_before`` of earlier work: time added, energy scaled.

    The earlier process's energy was not metered to the end, so it is estimated at this process's
    rate (joules per second), and ``energy_source`` says so.  An uninterrupted run is returned as it is.
    """
    before = (resumed or {}).get("seconds_before", 0.0)
    if not before:
        return record
    seconds = record["train_seconds"]
    rate = record["energy_joules"] / seconds if seconds > 0 else 0.0
    return {**record, "train_seconds": round(seconds + before, 2), "energy_joules": round(record["energy_joules"] + rate * before, 1),
            "energy_source": f"{record['energy_source']} (resumed run: the {before:.0f} s before the interrupt "
                             "estimated at this run's rate)", "resumed": dict(resumed)}


def identity(value):
    """What stands for an input in a cache key.

    A zoo entry or a model: the SHA-256 digest of its weights (:func:`kdlib.zoo.digest`); an object
    with an ``identity()`` method (a transfer set): what that returns; ``None`` (no such input) and a
    digest given as a string: themselves.
    """
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, zoo.Entry):
        return value.digest
    if isinstance(value, nn.Module):
        return zoo.digest(value.state_dict())
    if callable(getattr(value, "identity", None)):
        return value.identity()
    raise TypeError(f"No identity for an input of type {type(value).__name__}: pass a zoo entry, a model, "
                    "or an object with an identity() method.")


class Experiment:
    """What every shared experiment does; subclasses are frozen dataclasses with a ``seed`` field.

    A subclass names its zoo entry (``zoo_name``), builds its untrained model (``build``), may add
    to its key (``settings``: by default every field plus ``key_labels``), lists the inputs it
    learns from (``uses``), turns them into what training reads (``prepare``, unmetered), trains
    the seeded model in place (``train``, metered) and scores it (``scores``).
    """

    #: The dataset (``data.name``) it is trained on; any other is refused.  Empty: not checked.
    data_name: ClassVar[str] = ""
    #: Constant entries of the key: labels that the keys of checkpoints made before this module
    #: carry (the model family ``arch``; ``metered``, which marked checkpoints whose meta has energy).
    key_labels: ClassVar[dict] = {}
    #: The names of the inputs it learns from (a teacher, a transfer set); each is in the key.
    uses: ClassVar[tuple[str, ...]] = ()

    @property
    def zoo_name(self) -> str:
        raise NotImplementedError

    def build(self, data) -> nn.Module:
        raise NotImplementedError

    def settings(self, data) -> dict:
        """How it is trained, as the key holds it: every field (nested dataclasses as dicts) and ``key_labels``."""
        return {**dataclasses.asdict(self), **self.key_labels}

    def check(self, data, inputs: dict) -> None:
        """Refuse data it is not trained on, and inputs it does not learn from, before anything is trained."""
        if self.data_name and getattr(data, "name", None) != self.data_name:
            raise ValueError(f"{type(self).__name__} is trained on kd.load({self.data_name!r}), "
                             f"not on {getattr(data, 'name', data)!r}.")
        unknown = sorted(set(inputs) - set(self.uses))
        if unknown:
            raise ValueError(f"{self!r} learns from {', '.join(self.uses) or 'no input'}; got {', '.join(unknown)}.")

    def config(self, data, inputs: dict | None = None) -> dict:
        """The whole cache key as the zoo stores it: ``settings``, ``smoke``, and each used input's identity."""
        inputs = inputs or {}
        own = self.settings(data)
        clash = sorted(set(own) & ({"smoke"} | set(self.uses)))
        if clash:
            raise ValueError(f"{type(self).__name__}'s settings may not be named {', '.join(clash)}.")
        key = {**own, "smoke": is_smoke(), **{name: identity(inputs.get(name)) for name in self.uses}}
        return json.loads(json.dumps(key))  # tuples as lists, exactly as a loaded checkpoint has them

    def key(self, data, inputs: dict | None = None) -> str:
        """The 12-hex-digit hash of :meth:`config` that names its checkpoint (:func:`kdlib.zoo.config_key`)."""
        self.check(data, inputs or {})
        return zoo.config_key(self.config(data, inputs))

    def prepare(self, data, inputs: dict, derived: dict) -> dict:
        """What training reads, made from ``data`` and ``inputs`` outside the meter (default: nothing)."""
        return {}

    def train(self, model: nn.Module, data, ready: dict, quiet: bool) -> dict:
        """Train the seeded ``model`` in place on what ``prepare`` made; return figures worth keeping."""
        raise NotImplementedError

    def scores(self, model: nn.Module, data, ready: dict) -> dict:
        """Figures of the trained model, measured after the meter stops (default: none)."""
        return {}

    def load_or_train(self, data, inputs: dict | None = None, *, derived: dict | None = None,
                      retrain: bool = False, quiet: bool = True) -> zoo.Entry:
        """This experiment's model on ``data``: from the zoo when its key matches, else trained and saved now.

        ``inputs`` maps each name of ``uses`` to what it learns from (a teacher's zoo entry, a
        transfer set); ``derived`` may hold tensors already computed from them (the teacher's
        logits), which the experiment checks and reuses rather than computing again.  Returns the
        zoo :class:`~kdlib.zoo.Entry`, its model on ``data.device``; ``retrain=True`` ignores the cache.
        """
        inputs = inputs or {}
        derived = {} if derived is None else derived
        self.check(data, inputs)
        config = self.config(data, inputs)

        def train(model):
            ready = {"checkpoint": zoo.checkpoint_path(self.zoo_name, config).with_suffix(".resume"),
                     **self.prepare(data, inputs, derived)}
            torch.manual_seed(self.seed)
            model.load_state_dict(self.build(data).state_dict())  # the seeded initial weights
            trained, meter = metered(lambda: self.train(model, data, ready, quiet), data.device)
            resumed = trained.pop("resumed", None)
            return resumed_result(result(meter, **trained, **self.scores(model, data, ready)), resumed)

        entry = zoo.load_or_train(self.zoo_name, config, lambda: self.build(data), train, retrain=retrain)
        entry.model.to(data.device)
        return entry
