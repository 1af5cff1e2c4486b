"""Behaviour archetypes: one class per kind of equipment, chosen per station by the line file."""

from __future__ import annotations

from twin.sim.archetypes.electrode import Coating, Converting, Mixing, Warehouse, Winding
from twin.sim.archetypes.trays import Chamber, Rack, Sorting
from twin.sim.archetypes.unitflow import CellCode, CoverBind, Filling, Pairing, UnitStation
from twin.sim.equipment import Equipment

ARCHETYPES: dict[str, type[Equipment]] = {
    "warehouse": Warehouse,
    "mixing": Mixing,
    "coating": Coating,
    "converting": Converting,
    "winding": Winding,
    "unit": UnitStation,
    "pairing": Pairing,
    "cell_code": CellCode,
    "cover_bind": CoverBind,
    "chamber": Chamber,
    "rack": Rack,
    "filling": Filling,
    "sorting": Sorting,
}

__all__ = ["ARCHETYPES"]
