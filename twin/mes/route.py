"""A line file read as the MES reads it: which station each equipment code is, and the route products take.

The route is the line's stations, in file order, that track single products (jelly rolls, then cells)
with inbound/outbound, binding, tray or sorting interfaces. Adjacent stations of the same process are
one step with alternatives (line-A02's two cover welders). A step may apply to some products only
(``route.yaml`` conditional_processes): a product skips it when the condition does not hold. The step
before a station's step is therefore a property of the product, not of the station alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from twin.line.model import Line, Station, base_code
from twin.mes.seed import MesData

# Interfaces that open a product's visit to a station (its inbound, in the widest sense).
INBOUND_OPS = frozenset(
    {"Inbound", "InboundMore", "InboundBindJzSingleAsync", "GenerateCellSfc", "InboundInContainer", "SortingUnBind"}
)
# Interfaces that close it (outbound) or create the product at its origin.
OUTBOUND_OPS = frozenset(
    {
        "Outbound",
        "BoundOutbound",
        "OutboundMore",
        "OutboundMultPolar",
        "OutboundSfcPolar",
        "OutboundForCoverplateBind",
        "OutboundForCellBindTopCover",
        "FillingData",
        "OutboundInContainer",
        "SortingOutbound",
        "CollingPolar",
    }
)
ROUTE_OPS = INBOUND_OPS | OUTBOUND_OPS


@dataclass(frozen=True, slots=True)
class Step:
    index: int
    process: str
    stations: tuple[Station, ...]
    condition: str | None  # e.g. "top_cover": only products with that property pass this step
    origin: bool  # the step makes the products (winding)

    @property
    def name(self) -> str:
        return "/".join(s.id for s in self.stations)


@dataclass(frozen=True, slots=True)
class Place:
    """Where one equipment code stands: its station, the station's route step and what it calls."""

    equipment: str
    station: Station
    step: Step | None
    interfaces: frozenset[str]

    @property
    def has_inbound(self) -> bool:
        return bool(self.interfaces & INBOUND_OPS)

    @property
    def process(self) -> str:
        return self.station.process


class Route:
    """The line as the MES sees it: equipment codes, stations and the ordered route steps."""

    def __init__(self, line: Line, data: MesData) -> None:
        self.line = line
        self.steps: list[Step] = []
        self.places: dict[str, Place] = {}
        current: list[Station] = []

        def close() -> None:
            if current:
                process = current[0].process
                self.steps.append(
                    Step(
                        index=len(self.steps),
                        process=process,
                        stations=tuple(current),
                        condition=data.conditional_processes.get(process),
                        origin=process in data.origin_processes,
                    )
                )
                current.clear()

        step_of: dict[str, int] = {}
        for station in line.stations:
            ops = frozenset(line.station_interfaces(station))
            if not ops & ROUTE_OPS:
                continue
            if current and current[-1].process != station.process:
                close()
            current.append(station)
            step_of[station.id] = len(self.steps)
        close()
        for station in line.stations:
            ops = frozenset(line.station_interfaces(station))
            index = step_of.get(station.id)
            step = self.steps[index] if index is not None else None
            for code in station.equipment_codes():
                self.places[code] = Place(code, station, step, ops)

    def place(self, equipment: str) -> Place | None:
        found = self.places.get(equipment)
        if found is None:  # a copy of the line (twin run --scale): the same station under its own code
            base = self.places.get(base_code(equipment))
            if base is not None:
                found = self.places[equipment] = Place(equipment, base.station, base.step, base.interfaces)
        return found

    def previous(self, step: Step, applies: Callable[[str], bool]) -> Step | None:
        """The step a product must have left before ``step``, skipping conditional steps it does not take."""
        for index in range(step.index - 1, -1, -1):
            candidate = self.steps[index]
            if candidate.condition is None or applies(candidate.condition):
                return candidate
        return None

    def equipment_of(self, process: str) -> list[str]:
        return [code for code, place in self.places.items() if place.process == process]

    def describe_codes(self) -> str:
        """Short list of the line's codes for a refusal message."""
        return ", ".join(f"{s.code}-01..{s.count:02d}" for s in self.line.stations)


class Plant:
    """The lines one MES serves (one line, or every line of a factory file): each equipment code stands on
    exactly one line's route, and a product never leaves the line it was made on."""

    def __init__(self, routes: list[Route]) -> None:
        if not routes:
            raise ValueError("a plant has at least one line")
        self.routes = routes
        self._of: dict[str, Route] = {}

    @property
    def names(self) -> str:
        return ", ".join(r.line.name for r in self.routes)

    def route_of(self, equipment: str) -> Route:
        """The route of the line ``equipment`` stands on (the first line's for a code of none, whose calls are
        then refused with that line's codes)."""
        if len(self.routes) == 1:
            return self.routes[0]
        found = self._of.get(equipment)
        if found is None:
            found = next((r for r in self.routes if r.place(equipment) is not None), None)
            if found is None:  # not remembered: a client sending made-up codes must not grow the MES's memory
                return self.routes[0]
            self._of[equipment] = found
        return found

    def place(self, equipment: str) -> Place | None:
        return self.route_of(equipment).place(equipment)

    def equipment_of(self, process: str) -> list[str]:
        return [code for route in self.routes for code in route.equipment_of(process)]

    def describe(self) -> str:
        """``line-A02: 74 equipment, 27 route steps`` for each line."""
        return "; ".join(
            f"line {r.line.name}: {len(r.places)} equipment, {len(r.steps)} route steps" for r in self.routes
        )
