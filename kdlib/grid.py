"""CO₂ from energy: grid carbon intensity by region, offline, and the kWh arithmetic.

``kg CO₂e = kWh × PUE × grid intensity``: the same energy emits ten times more on a coal-heavy
grid than on a nuclear- and hydro-heavy one, so a CO₂ figure always names its region.  The
intensities are yearly averages from Ember, kept in the code so that nothing is downloaded.
"""
from __future__ import annotations

from typing import NamedTuple

from .validate import finite_number

J_PER_KWH = 3.6e6


class Grid(NamedTuple):
    """One region's grid: intensity in g CO₂e per kWh, where the figure comes from, and its year."""

    g_per_kwh: float
    source: str
    year: int


_EMBER = "Ember yearly electricity data (lifecycle gCO2e/kWh of generation), via Our World in Data"
#: Grid carbon intensity of electricity generation, offline.  Lifecycle figures (fuel supply and
#: plant construction included), so higher than "direct" figures from grid operators.
GRID_INTENSITY: dict[str, Grid] = {
    "world": Grid(480, "Ember, Global Electricity Review 2024", 2023),
    "eu": Grid(244, _EMBER, 2023),
    "france": Grid(56, _EMBER, 2023),
    "germany": Grid(381, _EMBER, 2023),
    "poland": Grid(662, _EMBER, 2023),
    "usa": Grid(369, _EMBER, 2023),
    "china": Grid(582, _EMBER, 2023),
    "india": Grid(713, _EMBER, 2023),
}

#: PUE (facility energy / IT energy) for your own machine: nothing on top.  Data centres: the
#: Uptime Institute survey average was 1.58 in 2023; hyperscalers report about 1.1.
PUE_DEFAULT = 1.0


def kwh(joules: float) -> float:
    """Kilowatt-hours from joules: ``J / 3.6e6``.

    Introduced in lesson 4.
    """
    return joules / J_PER_KWH


def co2_kg(kwh: float, region: str = "world", pue: float = PUE_DEFAULT) -> float:
    """``kg CO₂e = kWh × PUE × grid intensity (g/kWh) / 1000``, intensity from :data:`GRID_INTENSITY`.

    Introduced in lesson 4.
    """
    kwh = finite_number(kwh, "kwh", hint=" Convert joules with kd.grid.kwh(joules).")
    pue = finite_number(pue, "PUE (facility energy / IT energy)", low=1.0)
    key = str(region).strip().lower()
    if key not in GRID_INTENSITY:
        raise ValueError(f"Unknown region {region!r}: known regions are {', '.join(GRID_INTENSITY)}.")
    return kwh * pue * GRID_INTENSITY[key].g_per_kwh / 1000
