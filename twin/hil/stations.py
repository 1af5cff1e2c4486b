"""The stations of a networked run that are bound to PLCs (``plc:`` in the line file).

* ``plc: {serve: ...}``: the twin serves that equipment's I/O image (a virtual PLC) and the line model drives
  it (``EquipmentMirror``). A real host PC reads it and talks to the MES itself, so the model's own MES calls
  for that equipment are answered in-process instead of being sent (the model keeps the material flowing).
  The MES's section-3 calls for it go to ``listen`` (the real host PC) when given, else to the twin, whose
  model then stops the machine, which the host sees on the run bit.
* ``plc: {connect: ...}``: a real PLC gives that equipment's state and cycles; the twin is its host PC
  (``PlcHost``): it emits the equipment's MES traffic from the PLC and writes the MES's interlocks to the PLC,
  timing the reaction. The model's machine keeps the material flowing around it, its own calls answered
  in-process.

A PLC that is not reachable is reported and retried with back-off by the watcher; the run goes on.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from twin.errors import ConfigError
from twin.hil.binding import BoundPlc, PlcBinding, describe, host_for, open_binding, parse_binding
from twin.hil.plchost import PlcHost
from twin.line.model import Line
from twin.profile import Profile


@dataclass
class BoundStation:
    station: str
    equipment: str
    binding: PlcBinding
    bound: BoundPlc | None = None
    host: PlcHost | None = None

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"station": self.station, "equipment": self.equipment, "plc": describe(self.binding)}
        if self.bound is not None:
            out["endpoint"] = self.bound.endpoint
            if self.bound.mirror is not None:
                out["parts_mirrored"] = self.bound.mirror.parts
                out["interlocks_written_by_host"] = list(self.bound.mirror.interlocks)
        if self.host is not None:
            out["host"] = self.host.summary()
        return out


class RunStations:
    """Every PLC-bound equipment of a run: opened before the MES starts, started once it listens."""

    def __init__(self, line: Line, profile: Profile) -> None:
        self.line = line
        self.profile = profile
        self.stations: list[BoundStation] = []
        self._final: list[dict[str, Any]] | None = None
        for i, st in enumerate(line.stations):
            if st.plc is None:
                continue
            where = f"{line.source or line.name}: stations[{i}].plc"
            binding = parse_binding(dict(st.plc), where=where)
            code = binding.equipment or st.equipment_codes()[0]
            if code not in st.equipment_codes():
                raise ConfigError(
                    f"{where}.equipment: {code} is not one of the station's codes {st.equipment_codes()}"
                )
            self.stations.append(BoundStation(st.id, code, binding))

    @property
    def local_codes(self) -> set[str]:
        """Equipment whose model calls stay in-process: a real host PC (or the twin's PlcHost) makes them."""
        return {s.equipment for s in self.stations}

    def hosted_codes(self) -> set[str]:
        """Equipment whose section-3 calls must not reach the twin's own equipment server."""
        return {s.equipment for s in self.stations if s.binding.mode == "connect" or s.binding.listen}

    async def open(self, default_listen: dict[str, str]) -> dict[str, str]:
        """Serve the virtual PLCs and open the hosts' listeners; returns section-3 addresses by equipment."""
        addresses: dict[str, str] = {}
        for s in self.stations:
            if s.binding.mode == "serve":
                s.bound = await open_binding(s.binding, s.equipment)
                if s.binding.listen:
                    addresses[s.equipment] = s.binding.listen
                continue
            binding = s.binding if s.binding.listen else replace(s.binding, listen=default_listen[s.equipment])
            s.host = host_for(
                binding,
                s.equipment,
                self.profile,
                mes_url="",  # known once the MES listens (start)
                product=self.line.product,
                operator=self.line.operator,
                heartbeat_s=self.line.periods["heartbeat_s"],
                long_stop_s=self.line.periods["long_stop_s"],
                down_reason_after_s=self.line.periods["down_reason_after_s"],
                down_reasons=self.line.catalogue.down_reasons if self.line.catalogue else None,
            )
            addresses[s.equipment] = await s.host.listen()
        return addresses

    async def start(self, mes_url: str, equipment: dict[str, Any]) -> None:
        """Drive the served images from the model; start the hosts against the MES."""
        for s in self.stations:
            if s.bound is not None:
                s.bound.drive(equipment[s.equipment])
            if s.host is not None:
                s.host.session.config.mes_url = mes_url
                await s.host.start()

    async def close(self) -> None:
        self._final = self.summary()  # what the mirrors and hosts counted, before they are taken down
        for s in self.stations:
            if s.host is not None:
                await s.host.stop()
            if s.bound is not None:
                await s.bound.close()

    def summary(self) -> list[dict[str, Any]]:
        if self._final is not None:
            return self._final
        return [s.summary() for s in self.stations]
