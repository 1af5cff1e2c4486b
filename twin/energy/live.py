"""The energy uplink fed by a running line (``twin run --energy``): kWh from the model's own equipment states.

Each station's data point draws, per equipment, the kW of the state that equipment is in (running, idle or
set-up, down: ``Equipment.mode``, the same accounting as the OEE figures) times the virtual time since the
last step; every copy of a scaled line adds to the same points. The utilities draw their load with the
daily swing of ``twin.energy.consumption``. Virtual time is read as the plant's local time (EN-15).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from twin.energy.consumption import utility_kw
from twin.energy.driver import PLANT_ZONE, UploadRun
from twin.energy.site import Site
from twin.energy.uplink import EnergyUplink

STATE_OF_MODE = {"busy": 0, "idle": 1, "setup": 1, "down": 2}  # power_kw is [run, idle, down]


class LiveConsumption:
    """kWh of every data point over a step, from the equipment's states at the end of it."""

    def __init__(self, site: Site, equipment: list[Any]) -> None:
        by_station: dict[str, list[Any]] = {}
        for eq in equipment:
            by_station.setdefault(eq.station.id, []).append(eq)
        self.stations = [(p, by_station.get(p.source or "", [])) for p in site.points if p.count]
        self.loads = [p for p in site.points if p.load_kw > 0]

    def step(self, at: datetime, dt_s: float) -> list[tuple[str, float]]:
        dt_h = dt_s / 3600.0
        out = []
        for point, fleet in self.stations:
            kw = sum(point.power_kw[STATE_OF_MODE.get(eq.mode, 1)] for eq in fleet)
            out.append((point.code, kw * dt_h))
        out += [(p.code, utility_kw(p, at) * dt_h) for p in self.loads]
        return out


class EnergyFeed:
    """Records the line's consumption into the uplink at every progress tick and lets it do what is due."""

    def __init__(self, site: Site, uplink: EnergyUplink, equipment: list[Any], epoch_of: Any) -> None:
        self.site = site
        self.uplink = uplink
        self.model = LiveConsumption(site, equipment)
        self.epoch_of = epoch_of  # virtual seconds -> epoch seconds
        self.last_s = 0.0
        self.start = self.plant_time(0.0)
        self.kwh: dict[str, float] = {}
        self._busy: asyncio.Task[None] | None = None

    def plant_time(self, virtual_s: float) -> datetime:
        return datetime.fromtimestamp(self.epoch_of(virtual_s), PLANT_ZONE).replace(tzinfo=None)

    def step(self, virtual_s: float) -> None:
        dt = virtual_s - self.last_s
        if dt <= 0:
            return
        at = self.plant_time(self.last_s)
        for code, kwh in self.model.step(at, dt):
            self.uplink.record(at, code, kwh)
            for target in (code, *self.site.parents(code)):
                self.kwh[target] = self.kwh.get(target, 0.0) + kwh
        self.last_s = virtual_s
        if self._busy is None or self._busy.done():  # one tick at a time; the next progress tick catches up
            self._busy = asyncio.get_running_loop().create_task(self.uplink.tick(self.plant_time(virtual_s)))

    async def finish(self, virtual_s: float, wall_s: float) -> dict[str, Any]:
        self.step(virtual_s)
        if self._busy is not None:
            await self._busy
        end = self.plant_time(virtual_s)
        await self.uplink.finish(end)
        summary = UploadRun(self.start, end, wall_s, self.kwh, self.uplink).summary()
        await self.uplink.aclose()
        return summary
