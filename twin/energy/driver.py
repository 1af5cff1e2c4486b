"""Run a line's energy uplink on its own: consumption from the line file, uploaded to a platform, at --speed N.

Until ``twin run --energy`` feeds the uplink from the simulated line, this driver stands in for the line: the
consumption model steps virtual time minute by minute, records each point's kWh through the uplink's plain API
(``record``), and lets the uplink do what is due; virtual time runs ``speed`` times faster than wall time (the
uplink's network calls are real and take the time they take, so a slow platform slows the virtual plant down).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from twin.energy.consumption import ConsumptionModel
from twin.energy.site import Site, build_site
from twin.energy.spec import EnergySpec, load_energy_spec
from twin.energy.store import UplinkStore
from twin.energy.uplink import EnergyUplink, UplinkConfig, UplinkEvent
from twin.errors import ConfigError
from twin.line.linefile import load_line

PLANT_ZONE = ZoneInfo("Asia/Shanghai")  # the platform's local time (EN-15)
STEP_S = 60.0
def plant_now() -> datetime:
    """The plant's local time now, to the quarter hour (a clean first period), without zone (EN-15)."""
    now = datetime.now(PLANT_ZONE).replace(tzinfo=None, second=0, microsecond=0)
    return now - timedelta(minutes=now.minute % 15)


@dataclass(slots=True)
class UploadRun:
    start: datetime
    end: datetime
    wall_s: float
    kwh: dict[str, float] = field(default_factory=dict)
    uplink: EnergyUplink | None = None

    def summary(self) -> dict[str, Any]:
        assert self.uplink is not None
        up = self.uplink
        return {
            "virtual_start": self.start.isoformat(sep=" "),
            "virtual_end": self.end.isoformat(sep=" "),
            "wall_s": round(self.wall_s, 2),
            "kwh_total": round(self.kwh.get(up.site.total.code, 0.0), 1),
            "values": up.store.counts(),
            "batches_acked": up.stats.batches_acked,
            "values_acked": up.stats.values_acked,
            "resends": up.stats.resends,
            "queued_after_retries": up.stats.queued_after_retries,
            "rejected": up.stats.rejected,
            "late_samples": up.store.late_samples,
            "calls": dict(up.stats.calls),
            "latency": up.latency.summary(self.wall_s)["interfaces"],
        }


async def run_uplink(
    site: Site,
    config: UplinkConfig,
    *,
    duration_s: float,
    speed: float,
    start: datetime | None = None,
    seed: int = 1,
    db: Path | str = ":memory:",
    spec: EnergySpec | None = None,
    on_event: Callable[[UplinkEvent], None] | None = None,
) -> UploadRun:
    """Consume for ``duration_s`` virtual seconds from ``start``, uploading as the uplink's schedule says."""
    if duration_s <= 0 or speed <= 0:
        raise ConfigError(f"duration and speed must be > 0, got {duration_s} s and {speed}")
    begin = start or plant_now()
    end = begin + timedelta(seconds=duration_s)
    model = ConsumptionModel(site, seed=seed)
    store = UplinkStore(db)
    uplink = EnergyUplink(site, store, config, spec=spec, on_event=on_event)
    run = UploadRun(begin, end, 0.0, uplink=uplink)
    wall0 = time.monotonic()
    now = begin
    try:
        await uplink.tick(now)
        while now < end:
            step = min(STEP_S, (end - now).total_seconds())
            for code, kwh in model.step(now, step):
                uplink.record(now, code, kwh)
                for target in (code, *site.parents(code)):
                    run.kwh[target] = run.kwh.get(target, 0.0) + kwh
            now += timedelta(seconds=step)
            await uplink.tick(now)
            lag = wall0 + (now - begin).total_seconds() / speed - time.monotonic()
            await asyncio.sleep(max(0.0, lag))
        await uplink.finish(end)
    finally:
        run.wall_s = time.monotonic() - wall0
        await uplink.aclose()
    return run


def site_for_line(line_ref: str, spec: EnergySpec | None = None) -> Site:
    line, _ = load_line(line_ref)
    return build_site(line, spec or load_energy_spec())
