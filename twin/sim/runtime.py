"""What an equipment asks of the copy of the line it stands in (``builder.LineModel`` provides it).

Equipment and archetypes are written against this protocol, not the builder, so the builder can import
them to build a line without the two importing each other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections import Counter

    import simpy

    from twin.line.catalogue import Catalogue
    from twin.line.dist import Pooled
    from twin.line.model import Line, Station
    from twin.line.roles import Role
    from twin.profile import Profile
    from twin.profile.calls import Traffic
    from twin.sim.clock import Clock
    from twin.sim.material import Buffer, Ledger, Unit


class Opening(Protocol):
    """The simulation's hooks for the opening WIP of a warm start (see ``Simulation.opening``)."""

    announced: set[str]  # opening WIP the MES was told of: the warehouse's 2.47 leaves it out

    def opening(self, equipment: str, cells: list[Unit], tray: str | None) -> None: ...

    def opening_electrolyte(self, equipment: str, batch: str) -> None: ...


class Runtime(Protocol):
    """One copy of the line as its equipment see it: environment, clock, gateway, buffers, ledger, barcodes."""

    sim: Opening
    env: simpy.Environment
    profile: Profile
    line: Line
    catalogue: Catalogue
    clock: Clock
    traffic: Traffic
    suffix: str
    cold: bool
    ledger: Ledger
    roles: dict[str, Role | None]
    pools: dict[str, Buffer]
    raw: dict[str, simpy.Store]
    raw_demand: Counter[str]
    initial_units: list[Unit]

    @property
    def gateway(self) -> Any: ...

    def buffer_for(self, buffer_id: str, lane: str | None) -> Buffer: ...

    def lock(self, station_id: str) -> simpy.Resource: ...

    def code(self, prefix: str) -> str: ...

    def cell_code_24(self) -> str: ...

    def ship(self, unit: Any) -> None: ...

    def keep_ng(self, unit: Unit) -> None: ...

    def param_texts(self, param: Any, shift: float) -> tuple[str, ...]: ...

    def cycle_for(self, station: Station) -> Pooled: ...

    def add_initial(self, units: list[Unit]) -> None: ...
