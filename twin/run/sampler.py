"""What the web view shows of a running twin, read from the run's own objects: nothing on the hot path.

Every figure is read from what ``NetworkedRun`` keeps anyway (the latency book, the host link, the model's
equipment and buffers), in the same thread as the model, so there is nothing to lock and nothing for an
exchange to pay. Rates and percentiles *over time* come from the difference of the cumulative HDR counts
between two samples: the per-interval histogram of a group is ``counts now - counts then`` (a vector
subtraction of ~24,000 slots, well under a millisecond for every group).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from twin.metrics.hdrarrays import HdrArrays
from twin.metrics.hdrbatch import counts_of
from twin.metrics.histograms import new_histogram
from twin.report.groups import matches

if TYPE_CHECKING:
    from twin.run.networked import NetworkedRun
    from twin.sim.equipment import Equipment

#: The interface groups of the live charts, first match wins, the rest is ``other`` (spec section 2).
GROUPS: dict[str, tuple[str, ...]] = {
    "status": ("Heartbeat", "State", "Alarm"),
    "setup": ("OperatorLogin", "TimeSynch", "GetRecipe*", "Recipe", "Formula*"),
    "parameters": ("EquipmentProcessParam", "ToolLife", "ProductParam*", "FillingData", "GetInjectionVolume", "Ccd*"),
    "trays": ("*Container*", "Sorting*"),
    "flow": ("Inbound*", "Outbound*", "BoundOutbound", "Generate*Sfc", "*Feeding*", "Consume*", "OutputEqu"),
}
OTHER = "other"
ALL = "all"
#: A station's state, worst first: the colour of its box is the worst state of its equipment.
STATES = ("interlocked", "down", "alarm", "run", "idle")
CELLS_PER_HOUR_WINDOW = 60  # samples (about a minute of wall time) for the recent cells-per-hour figure


def group_of(interface: str) -> str:
    return next((g for g, pats in GROUPS.items() if any(matches(interface, p) for p in pats)), OTHER)


def equipment_state(eq: Equipment, interlock_code: str) -> str:
    """run, idle, down (a breakdown), alarm (stopped by another alarm: MES refusal, no material), interlocked."""
    if eq.stop_alarms:
        if any(t.alarm.code == interlock_code for t in eq.active):
            return "interlocked"
        return "down" if eq.cause == "repair" else "alarm"
    return "run" if eq.moving else "idle"


class Percentiles:
    """Percentiles of raw HDR count vectors, with the slot ranges of the run's histograms (read once)."""

    def __init__(self) -> None:
        arrays = HdrArrays(new_histogram())
        self.slots = len(arrays.counts)
        self.highest = arrays.highest

    def ms(self, counts: np.ndarray, percentiles: Iterable[float]) -> list[float]:
        total = int(counts.sum())
        if not total:
            return [0.0 for _ in percentiles]
        cumulative = np.cumsum(counts)
        out = []
        for p in percentiles:
            target = max(int(p * total / 100 + 0.5), 1)
            idx = min(int(np.searchsorted(cumulative, target, side="left")), self.slots - 1)
            out.append(round(float(self.highest[idx]) / 1000, 3))
        return out


class Sampler:
    """One ``sample()`` per tick: the figures of the page, and the deltas since the previous sample."""

    def __init__(self, run: NetworkedRun) -> None:
        self.run = run
        self.pct = Percentiles()
        self._groups: dict[str, str] = {}  # interface -> group, decided at first sight
        self._cum: dict[str, np.ndarray] = {}  # group -> cumulative latency counts at the previous sample
        self._count: dict[str, int] = {}
        self._minute: dict[str, np.ndarray] = {}  # group -> counts since the last coarse point
        self._prev: tuple[float, float, int, float] | None = None  # wall, virtual, failures, backlog
        self._cells: list[tuple[float, int]] = []  # (virtual s, cells out) of the last samples
        self._stations: list[tuple[str, str, list[Equipment]]] | None = None
        self._interlock_code = ""

    def ready(self) -> bool:
        """The model exists: the layout (stations and their equipment) can be sent."""
        return self.run.sim is not None

    # -- the layout, once the model exists ------------------------------------------------------------
    def _layout(self) -> list[tuple[str, str, list[Equipment]]]:
        if self._stations is None:
            sim = self.run.sim
            assert sim is not None
            line = self.run.line
            assert line.catalogue is not None
            self._interlock_code = line.catalogue.host_alarms["interlock"].code
            by_station: dict[str, list[Equipment]] = {s.id: [] for s in line.stations}
            for eq in sim.equipment:
                by_station[eq.station.id].append(eq)
            self._stations = [(s.id, s.process, by_station[s.id]) for s in line.stations]
        return self._stations

    def layout(self) -> dict[str, Any]:
        """What does not change during the run: the stations in flow order, their equipment, the buffers."""
        run = self.run
        out: dict[str, Any] = {
            "line": run.line.name,
            "run_folder": str(run.path),
            "duration_s": run.config.duration_s,
            "speed": run.config.speed,
            "scale": run.config.scale,
            "load": run.shape.text,
            "target": run.config.mes_url or "embedded",
            "groups": [ALL, *GROUPS, OTHER],
            "states": list(STATES),
            "stations": [
                {"id": s.id, "process": s.process, "input": s.input, "output": s.output, "count": s.count}
                for s in run.line.stations
            ],
            "buffers": [b.id for b in run.line.buffers.values() if not b.sink],
        }
        if run.sim is not None:
            out["equipment"] = {sid: [eq.code for eq in eqs] for sid, _p, eqs in self._layout()}
        return out

    # -- the line ---------------------------------------------------------------------------------------
    def line(self) -> dict[str, Any]:
        """Every station's state (the worst of its equipment, and each one's), WIP per buffer, interlocks."""
        run = self.run
        sim = run.sim
        if sim is None:
            return {"stations": [], "buffers": {}, "interlocks": [], "interlocks_total": 0}
        stations = []
        for sid, _process, eqs in self._layout():
            code = self._interlock_code
            states = [equipment_state(eq, code) for eq in eqs]
            worst = min(states, key=STATES.index) if states else "idle"
            stations.append({"id": sid, "state": worst, "eq": states})
        buffers: dict[str, list[Any]] = {}
        for spec in run.line.buffers.values():
            if spec.sink:
                continue
            held = cap = 0
            for model in sim.lines:
                for name in spec.names():
                    held += len(model.buffers[name].items)
            if spec.capacity:
                cap = spec.capacity * len(spec.names()) * len(sim.lines)
            buffers[spec.id] = [held, cap or None]
        recent = run.interlocks[-50:]
        return {
            "stations": stations,
            "buffers": buffers,
            "interlocks": [i.to_dict() for i in recent],
            "interlocks_total": len(run.interlocks),
        }

    # -- the load ---------------------------------------------------------------------------------------
    def _by_group(self) -> tuple[dict[str, np.ndarray], dict[str, int]]:
        counts: dict[str, np.ndarray] = {}
        totals: Counter[str] = Counter()
        for name, stats in self.run.folder.book.interfaces.items():
            group = self._groups.get(name)
            if group is None:
                group = self._groups[name] = group_of(name)
            view = counts_of(stats.latency)[: self.pct.slots]
            for g in (group, ALL):
                if g in counts:
                    counts[g] += view
                else:
                    counts[g] = view.astype(np.uint64)
                totals[g] += stats.count
        return counts, dict(totals)

    def _errors(self) -> dict[str, int]:
        """Failed exchanges by outcome (business code, HTTP status, or no answer), over the whole run."""
        out: Counter[str] = Counter()
        profile = self.run.profile
        for name, stats in self.run.folder.book.interfaces.items():
            if not stats.failures:
                continue
            ok = {str(c) for c in profile.operation(name).success_codes}
            out.update({k: v for k, v in stats.by_code.items() if k not in ok})
        return dict(out.most_common(12))

    def _speeds(self, wall: float, virtual: float) -> tuple[float | None, float]:
        sim = self.run.sim
        asked = sim.clock.speed_asked_at(virtual) if sim is not None else self.run.config.speed
        achieved = 0.0
        if self._prev is not None and wall > self._prev[0]:
            achieved = (virtual - self._prev[1]) / (wall - self._prev[0])
        return asked, round(achieved, 3)

    def _saturated(self) -> bool:
        sim = self.run.sim
        governor = getattr(sim.gateway, "governor", None) if sim is not None else None
        return bool(governor is not None and governor.saturated)

    def sample(self) -> dict[str, Any]:
        """One tick: times and speeds, load per group over the last interval, errors, link, line output."""
        run = self.run
        wall = time.time()
        sim = run.sim
        virtual = sim.env.now if sim is not None else 0.0
        counts, totals = self._by_group()
        groups: dict[str, dict[str, float]] = {}
        dt = wall - self._prev[0] if self._prev is not None else 0.0
        for g, cum in counts.items():
            prev = self._cum.get(g)
            interval = cum - prev if prev is not None else cum
            n = totals[g] - self._count.get(g, 0)
            p50, p99 = self.pct.ms(interval, (50, 99))
            groups[g] = {"rps": round(n / dt, 2) if dt > 0 else 0.0, "p50": p50, "p99": p99, "n": n}
            self._minute[g] = self._minute[g] + interval if g in self._minute else interval.copy()
        self._cum, self._count = counts, totals
        total = run.folder.book.total(histograms=False)
        link = run.link
        backlog = (link.outbox.appended - link.outbox.acked) if link is not None else 0
        prev_failures = self._prev[2] if self._prev is not None else 0
        prev_backlog = self._prev[3] if self._prev is not None else backlog
        asked, achieved = self._speeds(wall, virtual)
        cells = sum(m.ledger.shipped["cell"] for m in sim.lines) if sim is not None else 0
        self._prev = (wall, virtual, total.failures, backlog)
        outage = link.outage if link is not None else None
        return {
            "t": round(wall, 3),
            "wall_s": round(wall - run.started, 3),
            "virtual_s": round(virtual, 3),
            "phase": "running" if sim is not None else "starting",
            "speed_asked": asked,
            "speed_achieved": achieved,
            "saturated": self._saturated(),  # the twin slowed virtual time (twin.sim.pace)
            "groups": groups,
            "requests": total.count,
            "failures": total.failures,
            "errors_per_s": round((total.failures - prev_failures) / dt, 2) if dt > 0 else 0.0,
            "errors": self._errors() if total.failures else {},
            "late_starts": total.late_starts,
            "link": {
                "online": link.online if link is not None else True,
                "backlog": backlog,
                "draining": bool(link is not None and link.draining),
                "drain_per_s": round((prev_backlog - backlog) / dt, 1) if dt > 0 and backlog < prev_backlog else 0.0,
                "outages": len(link.stats.outages) if link is not None else 0,
                "offline_since": outage.started if outage is not None and outage.ended is None else None,
                "relogins": link.stats.relogins if link is not None else 0,
                "mes_up": getattr(run.mes, "up", None),  # the embedded MES's process (None: not ours to see)
            },
            "cells_out": cells,
            "cells_per_hour": self._cells_per_hour(virtual, cells),
        }

    def _cells_per_hour(self, virtual: float, cells: int) -> float:
        self._cells.append((virtual, cells))
        del self._cells[:-CELLS_PER_HOUR_WINDOW]
        v0, c0 = self._cells[0]
        return round((cells - c0) * 3600 / (virtual - v0), 1) if virtual - v0 > 1e-9 else 0.0

    def minute(self, samples: list[Mapping[str, Any]]) -> dict[str, Any] | None:
        """A coarse point of the whole-run history: the samples since the last one, with exact percentiles."""
        if not samples:
            return None
        groups = {}
        for g, counts in self._minute.items():
            p50, p99 = self.pct.ms(counts, (50, 99))
            rps = sum(s["groups"].get(g, {}).get("rps", 0.0) for s in samples) / len(samples)
            groups[g] = {"rps": round(rps, 2), "p50": p50, "p99": p99}
        self._minute.clear()
        return minute_point(samples, groups)


def minute_point(samples: list[Mapping[str, Any]], groups: dict[str, dict[str, float]]) -> dict[str, Any]:
    """A point of the whole-run history from the samples since the last one (one run's or a sharded run's):
    the latest state, mean rates and speed, and the groups' figures as the caller merged them."""
    last, n = samples[-1], len(samples)
    return {
        "t": last["t"],
        "wall_s": last["wall_s"],
        "virtual_s": last["virtual_s"],
        "speed_asked": last["speed_asked"],
        "speed_achieved": round(sum(s["speed_achieved"] for s in samples) / n, 3),
        "groups": groups,
        "errors_per_s": round(sum(s["errors_per_s"] for s in samples) / n, 2),
        "link": last["link"],
        "cells_out": last["cells_out"],
        "cells_per_hour": last["cells_per_hour"],
    }
