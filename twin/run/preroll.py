"""The pre-roll: a line brought from cold to warm through the target MES itself, before the measured window.

A foreign MES knows nothing of the twin's opening WIP (the embedded MES is told of it through its go-live
data load, ``/admin/opening-wip``; a real MES has its own). Cells that appear in its line from nowhere would
be refused, or accepted by an MES too lax to be worth measuring. So against ``--mes URL`` the line starts
cold and every unit gets there the way it would in the plant: its barcode from the MES, every inbound and
outbound on its route, every tray bound and unbound, through the spec's interfaces only. The pre-roll runs
as fast as the MES allows without changing what the line does: the pace is set so that an MES answer costs
the line about ``VIRTUAL_LATENCY_S`` of its own time (a faster MES, a faster pre-roll), between the run's
speed and ``preroll_speed``, until every station of the line has finished work or the cap is reached.

Its exchanges are counted here, not in the run's log, histograms or KPIs: the measured window starts when the
pre-roll ends, at the asked speed and load shape, and the report shows the pre-roll as its own line.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from twin.metrics.exchange import Exchange

VIRTUAL_LATENCY_S = 0.25  # what an MES answer may cost the line during the pre-roll (its cycles are seconds)


@dataclass
class PreRoll:
    """Counts and decides the end of the pre-roll of one run."""

    cap_s: float  # virtual seconds at most
    speed: float  # the highest pace (virtual seconds per wall second) it may take
    floor: float = 1.0  # the lowest: the run's own speed
    started_wall: float = field(default_factory=time.time)
    ended_wall: float | None = None
    ended_s: float | None = None  # virtual time the measured window starts
    ended_because: str = ""  # warm: every station finished work; cap: preroll_s reached; stopped: Ctrl-C/fault
    requests: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    stations_warm: int = 0
    stations: int = 0
    service_s: float = 0.0  # moving mean of the MES's answer time
    paces: list[float] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.ended_s is None

    def record(self, ex: Exchange, ok: bool) -> None:
        self.requests[ex.operation] += 1
        if ex.status:
            took = max(1e-4, ex.answered_wall - ex.sent_wall)
            self.service_s = took if not self.service_s else 0.98 * self.service_s + 0.02 * took
        if not ok:
            self.failures[ex.error or (f"http {ex.status}" if ex.status != 200 else f"code {ex.code}")] += 1

    def due(self, now: float, made_by_station: dict[str, int]) -> str | None:
        """Why the pre-roll ends now (``warm`` or ``cap``), or None while it goes on."""
        self.stations = len(made_by_station)
        self.stations_warm = sum(1 for made in made_by_station.values() if made > 0)
        if self.stations and self.stations_warm == self.stations:
            return "warm"
        if now >= self.cap_s:
            return "cap"
        return None

    def pace(self) -> float:
        """The pace the MES allows now: an answer costs the line ``VIRTUAL_LATENCY_S``, within the bounds."""
        if not self.service_s:
            return self.floor
        return max(self.floor, min(self.speed, VIRTUAL_LATENCY_S / self.service_s))

    def end(self, now: float, because: str) -> None:
        self.ended_s, self.ended_wall, self.ended_because = now, time.time(), because

    def to_dict(self) -> dict[str, Any]:
        wall = (self.ended_wall or time.time()) - self.started_wall
        return {
            "virtual_s": round(self.ended_s, 3) if self.ended_s is not None else None,
            "wall_s": round(wall, 3),
            "speed_max": self.speed,
            "speed_mean": round((self.ended_s or 0.0) / wall, 1) if wall > 0 and self.ended_s else None,
            "mes_service_ms": round(self.service_s * 1000, 3),
            "cap_s": self.cap_s,
            "ended_because": self.ended_because or "running",
            "stations_warm": self.stations_warm,
            "stations": self.stations,
            "requests": sum(self.requests.values()),
            "failures": sum(self.failures.values()),
            "failures_by_outcome": dict(self.failures.most_common()),
            "interfaces_reached": len(self.requests),
            "requests_by_interface": dict(self.requests.most_common()),
            "note": "before the measured window: not in the exchange log, the latency figures or the line KPIs",
        }
