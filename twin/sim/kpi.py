"""The line's KPIs, read after the warm-up: output, yield, OEE and utilisation, WIP, bottleneck, MES load.

Everything is computed from counters the model keeps anyway, as the difference between the end of the run
and a snapshot taken at the end of the warm-up, so a day-long run costs no per-event bookkeeping:

* good cells out and cells per hour: cells shipped into the line's sink buffer;
* yield: rolled throughput yield, the product over stations of good / (good + NG) — robust to WIP changes;
* OEE per station: (cycles x ideal cycle time / (slots x time)) x quality, the standard fully-productive-time
  ratio; utilisation: busy time (occupancy for chambers and racks); availability: time not down or in set-up;
* bottleneck: the station with the highest active share (busy, down or set up, i.e. neither starved nor
  blocked; occupancy for chambers and racks) - the "active period" method;
* MES load: calls per interface per hour over the window, and the busiest hour.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from twin.line.roles import role_for

if TYPE_CHECKING:
    from twin.sim.builder import Simulation


@dataclass
class StationKpi:
    id: str
    process: str
    archetype: str
    count: int
    made: int
    good: int
    ng: int
    held: int
    oee: float
    utilisation: float
    availability: float
    active: float


@dataclass
class BufferKpi:
    name: str
    capacity: int | None
    mean: float
    final: int
    peak: int


@dataclass
class CallKpi:
    operation: str
    section: str
    per_hour: float
    peak_hour: int
    total: int


@dataclass
class Kpis:
    line: str
    copies: int
    start_s: float
    end_s: float
    warmup_s: float
    good_cells: int
    cells_per_hour: float
    yield_rty: float
    bottleneck: str
    stations: list[StationKpi] = field(default_factory=list)
    buffers: list[BufferKpi] = field(default_factory=list)
    calls: list[CallKpi] = field(default_factory=list)
    calls_per_hour: float = 0.0
    alarms: int = 0
    refusals: int = 0
    initial_wip: int = 0
    equipment: int = 0

    @property
    def hours(self) -> float:
        return max(1e-9, (self.end_s - self.start_s) / 3600.0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compute(sim: Simulation) -> Kpis:
    """KPIs over the window after the warm-up (the whole run when it ended before the warm-up did)."""
    end = sim.env.now
    base = sim.snapshot if sim.snapshot is not None and sim.snapshot["t"] < end else None
    start = base["t"] if base else 0.0
    span = max(1e-9, end - start)
    now = sim.counters()
    stations = _stations(sim, now, base, span)
    good = now["shipped"] - (base["shipped"] if base else 0)
    rty = 1.0
    for st in stations:
        if st.good + st.ng:
            rty *= st.good / (st.good + st.ng)
    candidates = [s for s in stations if s.archetype != "warehouse"]  # receiving never limits output
    bottleneck = max(candidates, key=lambda s: s.active).id if candidates else ""
    calls = _calls(sim, now, base, span)
    return Kpis(
        line=sim.line.name,
        copies=len(sim.lines),
        start_s=start,
        end_s=end,
        warmup_s=start,
        good_cells=int(good),
        cells_per_hour=good / span * 3600.0,
        yield_rty=rty,
        bottleneck=bottleneck,
        stations=stations,
        buffers=_buffers(sim, now, base, span),
        calls=calls,
        calls_per_hour=sum(c.per_hour for c in calls),
        alarms=sum(eq.alarms_raised for eq in sim.equipment),
        refusals=sim.mes.refused,
        initial_wip=sum(sum(m.ledger.initial.values()) for m in sim.lines),
        equipment=len(sim.equipment),
    )


def _stations(sim: Simulation, now: dict[str, Any], base: dict[str, Any] | None, span: float) -> list[StationKpi]:
    rows = []
    copies = len(sim.lines)
    for st in sim.line.stations:
        cur = now["stations"].get(st.id, {})
        old = base["stations"].get(st.id, {}) if base else {}

        def d(key: str, cur: dict[str, float] = cur, old: dict[str, float] = old) -> float:
            return cur.get(key, 0.0) - old.get(key, 0.0)

        role = role_for(st.process, st.archetype or None)
        archetype = role.name if role else ""
        slots = max(1, st.slots) if archetype in ("chamber", "rack") else 1
        capacity_s = st.count * copies * span
        good, ng = int(d("good")), int(d("ng"))
        quality = good / (good + ng) if good + ng else 1.0
        oee = min(1.0, d("made") * st.ideal_cycle_s() / (slots * capacity_s)) * quality
        if archetype in ("chamber", "rack"):
            utilisation = d("occupied_s") / (slots * capacity_s)
            active = utilisation
        else:
            utilisation = d("busy") / capacity_s
            active = (d("busy") + d("down") + d("setup")) / capacity_s
        availability = 1.0 - (d("down") + d("setup")) / capacity_s
        rows.append(
            StationKpi(
                st.id,
                st.process,
                archetype,
                st.count * copies,
                int(d("made")),
                good,
                ng,
                int(d("held")),
                oee,
                utilisation,
                availability,
                active,
            )
        )
    return rows


def _buffers(sim: Simulation, now: dict[str, Any], base: dict[str, Any] | None, span: float) -> list[BufferKpi]:
    rows: dict[str, BufferKpi] = {}
    for model in sim.lines:
        for name, buf in model.buffers.items():
            key = f"{model.copy}:{name}"
            area = now["buffers"][key] - (base["buffers"].get(key, 0.0) if base else 0.0)
            cap = None if buf.capacity == float("inf") else int(buf.capacity)
            row = rows.setdefault(name, BufferKpi(name, cap, 0.0, 0, 0))
            row.mean += area / span
            row.final += buf.level
            row.peak = max(row.peak, buf.peak)
    return list(rows.values())


def _calls(sim: Simulation, now: dict[str, Any], base: dict[str, Any] | None, span: float) -> list[CallKpi]:
    rows = []
    for op_id, total in sorted(now["calls"].items()):
        n = total - (base["calls"].get(op_id, 0) if base else 0)
        section = sim.profile.operation(op_id).section or ""
        rows.append(CallKpi(op_id, section, n / span * 3600.0, sim.traffic.peak_hour(op_id), int(n)))
    return sorted(rows, key=lambda c: -c.per_hour)
