"""Electricity a line's equipment and the plant's utilities consume, minute by minute.

Each equipment of a station alternates between run, idle and down (an alternating renewal process: exponential
state durations with the site's means; a stop is idle or down by the site's share), drawing the station's kW of
its state, with a little noise; the station's data point gets the sum over its equipment. Utilities draw their
mean load with a daily swing that peaks mid-afternoon (outdoor temperature: dry-room dehumidification and
chillers work hardest then). One seeded numpy generator: the same seed gives the same consumption.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from twin.energy.site import DataPoint, Site

RUN, IDLE, DOWN = 0, 1, 2


@dataclass(slots=True)
class _Fleet:
    """The equipment behind one data point: state and minutes left in it, per equipment."""

    point: DataPoint
    state: np.ndarray
    left_min: np.ndarray
    kw: np.ndarray  # by state


def utility_kw(point: DataPoint, at: datetime) -> float:
    """A utility's mean draw at a time of day: its load with a daily swing peaking mid-afternoon."""
    hour = at.hour + at.minute / 60.0
    return point.load_kw * (1.0 + point.daily_swing * math.sin((hour - 9.0) / 24.0 * 2.0 * math.pi))


class ConsumptionModel:
    def __init__(self, site: Site, *, seed: int = 1) -> None:
        self.site = site
        self.rng = np.random.default_rng(seed)
        s = site.states
        self.means = np.array([s.get("run-mean-min", 50.0), s.get("idle-mean-min", 6.0), s.get("down-mean-min", 25.0)])
        self.stop_is_idle = float(s.get("stop-is-idle", 0.7))
        self.noise = float(s.get("noise", 0.06))
        shares = self.means * np.array([1.0, self.stop_is_idle, 1.0 - self.stop_is_idle])
        self.shares = shares / shares.sum()  # long-run share of time in each state
        self.fleets = [self._fleet(p) for p in site.points if p.count > 0]
        self.loads = [p for p in site.points if p.load_kw > 0]

    def _fleet(self, point: DataPoint) -> _Fleet:
        state = self.rng.choice(3, size=point.count, p=self.shares)
        left = self.rng.exponential(self.means[state])
        return _Fleet(point, state, left, np.array(point.power_kw, dtype=float))

    def step(self, at: datetime, dt_s: float) -> list[tuple[str, float]]:
        """kWh of every point over [at, at + dt_s): (data code, kWh), stations then utilities."""
        dt_min, dt_h = dt_s / 60.0, dt_s / 3600.0
        out = []
        for f in self.fleets:
            self._advance(f, dt_min)
            kw = f.kw[f.state].sum()
            out.append((f.point.code, max(0.0, kw * dt_h * (1.0 + self.noise * self.rng.standard_normal()))))
        for p in self.loads:
            noise = 1.0 + self.noise / 3 * self.rng.standard_normal()
            out.append((p.code, max(0.0, utility_kw(p, at) * dt_h * noise)))
        return out

    def _advance(self, f: _Fleet, dt_min: float) -> None:
        f.left_min -= dt_min
        due = np.flatnonzero(f.left_min <= 0)
        for i in due:  # few per minute: a state lasts tens of minutes
            if f.state[i] == RUN:
                f.state[i] = IDLE if self.rng.random() < self.stop_is_idle else DOWN
            else:
                f.state[i] = RUN
            f.left_min[i] += self.rng.exponential(self.means[f.state[i]])

    def mean_kw(self) -> float:
        """The long-run mean draw of the whole site, kW (for the report)."""
        fleets = sum(f.point.count * float(self.shares @ f.kw) for f in self.fleets)
        return fleets + sum(p.load_kw for p in self.loads)
