"""Build a line file into a running model: one SimPy environment, K copies of the line, their equipment.

``Simulation`` holds what every copy shares (the environment, the clock, the gateway to the MES, the call
counts, the barcode counters); ``LineModel`` is one copy of the line: its buffers, raw-material stores,
tray pools, equipment and material ledger. Copies get distinct equipment codes (``A02-WIND-01-X02``) so an
MES sees K lines. A warm start (the default) fills the chambers, racks and the buffers that declare
``initial`` units with work in progress, so a day-long run measures a running line, not its start-up.
"""

from __future__ import annotations

import random
import zlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
import simpy

from twin import aio
from twin.line.dist import Pooled, cycle_dist, pooled
from twin.line.linecheck import buffer_kinds
from twin.line.model import Line, Station, copy_code
from twin.line.roles import role_for
from twin.profile import Profile
from twin.profile.calls import Traffic, Transport
from twin.sim.archetypes import ARCHETYPES
from twin.sim.clock import Bridge, Clock
from twin.sim.equipment import Equipment
from twin.sim.material import Buffer, Ledger, Tray, Unit, count_units
from twin.sim.mesmodel import ModelTransport, OfflineGateway, OfflineMes, start_of

CHINA = timezone(timedelta(hours=8))
WAREHOUSE_SHARE = 0.05  # networked, each copy's warehouse powers on in the first twentieth of power_on_s, then its line
CELL24_BLOCK = 100_000_000  # engraved cell codes (2.55) of copy k are numbered from (k-1) x this


def seed_for(seed: int, *keys: int) -> int:
    """An independent, reproducible seed for one stream (numpy's SeedSequence spreads the bits)."""
    return int(np.random.SeedSequence([seed, *keys]).generate_state(1)[0])


class LineModel:
    """One copy of the line in the shared environment."""

    def __init__(self, sim: Simulation, copy: int) -> None:
        self.sim = sim
        self.env = sim.env
        self.profile = sim.profile
        self.line = line = sim.line
        assert line.catalogue is not None
        self.catalogue = line.catalogue
        self.clock = sim.clock
        self.traffic = sim.traffic
        self.copy = copy
        self.suffix = copy_code("", copy)
        self.cold = sim.cold
        self.trace = sim.trace
        self.ledger = Ledger()
        self.roles = {st.id: role_for(st.process, st.archetype or None) for st in line.stations}
        self.buffers: dict[str, Buffer] = {}
        for spec in line.buffers.values():
            for name in spec.names():
                self.buffers[name] = Buffer(self.env, name, spec.capacity or float("inf"))
        self.sinks = {name for spec in line.buffers.values() if spec.sink for name in spec.names()}
        for name in self.sinks:
            self.buffers[name].sink = True
        self.pools = {pid: self._pool(pid, spec) for pid, spec in line.tray_pools.items()}
        self._locks: dict[str, simpy.Resource] = {}
        self.initial_units: list[Unit] = []
        self.shipped_units: list[Unit] = []
        self.ng_units: list[Unit] = []
        self.raw_demand: Counter[str] = Counter()  # lots the warehouse keeps in stock per material
        self.equipment: list[Equipment] = []
        for s_index, station in enumerate(line.stations):
            role = self.roles[station.id]
            assert role is not None
            cls = ARCHETYPES[role.name]
            for i, code in enumerate(station.equipment_codes()):
                rng = random.Random(seed_for(sim.seed, copy, s_index, i))
                eq = cls(self, station, i, code + self.suffix, rng)
                self.equipment.append(eq)
                sim.mes.register(eq.code, station.process, eq.lane)
                for material, qty in eq.consumes:
                    self.raw_demand[material] += self._lots(material, qty)
                if role.name == "mixing":
                    lane = eq.lane or "glue"
                    for material, kg in self.catalogue.formula(lane)["ingredients"].items():
                        self.raw_demand[material] += self._lots(material, float(kg))
                    if wash := self.catalogue.wash_material(lane):
                        self.raw_demand[wash] += self._lots(wash, float(eq.options["wash_kg"]))
        self.raw = {material: simpy.Store(self.env) for material in self.raw_demand}
        if not self.cold:
            self._preload()

    # -- what equipment ask of their line ---------------------------------------------------------
    @property
    def gateway(self) -> Any:
        return self.sim.gateway

    def buffer_for(self, buffer_id: str, lane: str | None) -> Buffer:
        spec = self.line.buffers[buffer_id]
        if spec.lanes:
            return self.buffers[f"{buffer_id}.{lane or spec.lanes[0]}"]
        return self.buffers[buffer_id]

    def lock(self, station_id: str) -> simpy.Resource:
        if station_id not in self._locks:
            self._locks[station_id] = simpy.Resource(self.env, 1)
        return self._locks[station_id]

    def code(self, prefix: str) -> str:
        """An equipment-side barcode (jelly rolls, lots, trays...): prefix, line tag, date, sequence."""
        return self.sim.code(f"{prefix}{self.line.tag}{self.suffix[1:]}", "")

    def cell_code_24(self) -> str:
        """A 24-character cell code engraved by the equipment itself (2.55)."""
        tag = (self.line.tag + "XXX")[:3]
        # one sequence per copy, in a block of its own: copies run in different shards (processes) never collide
        n = self.sim.next(f"cell24{self.suffix}") + (self.copy - 1) * CELL24_BLOCK
        return f"QK{tag}CE{self.sim.yymmdd()}{n % 100000:05d}A{n // 100000 % 100000:05d}"

    def ship(self, unit: Any) -> None:
        if isinstance(unit, Tray):
            for cell in unit.cells:
                self.ship(cell)
            return
        self.ledger.shipped[unit.kind] += 1
        if self.trace:
            self.shipped_units.append(unit)

    def keep_ng(self, unit: Unit) -> None:
        if self.trace:
            self.ng_units.append(unit)

    def param_texts(self, param: Any, shift: float) -> tuple[str, ...]:
        return self.sim.param_texts(param, shift)

    def cycle_for(self, station: Station) -> Pooled:
        return self.sim.cycle_for(station)

    def wip(self) -> Counter[str]:
        """Units in the line now, by kind: in buffers and trays, inside equipment, lots in stock or loaded."""
        counts: Counter[str] = Counter()
        for buffer in self.buffers.values():
            if not buffer.sink:  # what reached the sink is shipped, no longer WIP
                count_units(buffer.items, counts)
        for eq in self.equipment:
            count_units(eq.inside, counts)
            counts["lot"] += len(eq.loaded)
        for store in self.raw.values():
            counts["lot"] += len(store.items)
        return counts

    def add_initial(self, units: list[Unit]) -> None:
        for unit in units:
            self.ledger.initial[unit.kind] += 1
        self.initial_units.extend(units)

    # -- construction -----------------------------------------------------------------------------
    def _lots(self, material: str, qty: float) -> int:
        """Lots one use of ``qty`` may need (a batch can span several lots)."""
        lot_qty = float(self.catalogue.materials[material]["lot_qty"])
        return max(1, -int(-qty // lot_qty))

    def _pool(self, pid: str, spec: dict[str, Any]) -> Buffer:
        pool = Buffer(self.env, f"trays:{pid}")
        prefix = spec.get("prefix") or f"TP-{pid.upper()}"
        pool.preload([Tray(f"{prefix}{self.suffix}-{n:06d}", pid) for n in range(1, int(spec["count"]) + 1)])
        return pool

    def _preload(self) -> None:
        """Initial units in buffers (warm start); chambers and racks fill themselves when they start."""
        kinds = buffer_kinds(self.line)
        roll_m = 4700.0
        for spec in self.line.buffers.values():
            if not spec.initial:
                continue
            kind = kinds.get(spec.id, "cell")
            for name in spec.names():
                lane = name.split(".", 1)[1] if "." in name else None
                units = []
                for _ in range(spec.initial):
                    qty = {"roll": roll_m, "slurry": 2400.0, "glue": 1000.0}.get(kind, 1.0)
                    units.append(Unit(self.code("W"), kind, lane=lane, qty=qty, origin="initial"))
                self.add_initial(units)
                self.buffers[name].preload(units)


class Simulation:
    """A simulation of ``scale`` copies of a line: build, run (offline or through the bridge), read results."""

    def __init__(
        self,
        line: Line,
        profile: Profile,
        *,
        seed: int = 0,
        scale: int = 1,
        speed: float | None = None,
        transport: Transport | None = None,
        start: datetime | None = None,
        keep_calls: bool = False,
        trace: bool = False,
        cold: bool = False,
        mes_pushes: bool | None = None,
        latency: Any = None,
        refusal_rate: float | None = None,
        warmup_s: float | None = None,
        segments: list[tuple[float, float]] | None = None,
        copies: Sequence[int] | None = None,
        start_offsets: Mapping[int, float] | None = None,
    ) -> None:
        """``copies``: which copies of the line this model runs (default ``1..scale``; a shard of a sharded run
        runs some of them, with the same codes and random streams as in one process). ``start_offsets``:
        virtual seconds after the start at which a copy's equipment power on (a factory file's offsets)."""
        self.line = line
        self.profile = profile
        self.seed = seed
        self.cold = cold
        self.trace = trace
        self.env = simpy.Environment()
        if start is None:
            start = datetime.now(UTC).replace(microsecond=0) if speed is not None else start_of(line.start)
        self.clock = Clock(start, speed=speed, segments=segments)
        self.traffic = Traffic(keep=keep_calls)
        offline = line.offline_mes
        assert line.catalogue is not None
        self.mes = OfflineMes(
            catalogue=line.catalogue,
            product=line.product,
            clock=self.clock,
            seed=seed_for(seed, 999_999),
            latency=latency if latency is not None else offline["latency"],
            refusal_rate=float(offline["refusal_rate"] if refusal_rate is None else refusal_rate),
            downgrade_rate=float(offline["downgrade_rate"]),
            tag=line.tag,
        )
        self.gateway: Any
        if speed is None:
            self.gateway = OfflineGateway(self.env, self.mes)
        else:
            self.gateway = Bridge(self.env, self.clock, transport or ModelTransport(self.mes))
        self._counters: Counter[str] = Counter()
        self._texts: dict[Any, tuple[str, ...]] = {}
        self._cycles: dict[str, Pooled] = {}
        self._days: dict[int, str] = {}
        self.lines = [LineModel(self, k) for k in (copies or range(1, scale + 1))]
        # Networked, the hosts power on over the line file's window (a plant's do not log in in one instant),
        # each copy from its start offset (a factory's lines start apart); offline, where no MES is stormed, at
        # once. The shift-start storm is a load shape (twin.sim.shapes).
        window = line.power_on_s if speed is not None else 0.0
        power = random.Random(seed_for(seed, 4_242))
        offsets = start_offsets or {}
        for model in self.lines:
            # The warehouse first (its 2.47 of the go-live stock comes before any use of it), at a moment of the
            # window's first twentieth: the copies' warehouses must not all report their stock in one instant.
            first = power.uniform(0.0, window * WAREHOUSE_SHARE) if window > 0 else 0.0
            for eq in model.equipment:
                if eq.station.archetype == "warehouse":
                    jitter = first
                else:
                    jitter = power.uniform(first, window) if window > 0 else 0.0
                eq.start(offsets.get(model.copy, 0.0) + jitter)
        if mes_pushes if mes_pushes is not None else transport is None:
            fillers = [eq for m in self.lines for eq in m.equipment if eq.station.archetype == "filling"]
            self.mes.push_electrolyte(self.env, fillers, float(offline["electrolyte_batch_s"]))
        self.warmup_s = line.warmup_s if warmup_s is None else warmup_s
        self.snapshot: dict[str, Any] | None = None
        self.on_opening: Callable[[str, list[str], str | None], bool] | None = None  # True: the MES took them
        self.announced: set[str] = set()  # opening WIP the MES was told of (on_opening)
        self.on_opening_electrolyte: Callable[[str, str], None] | None = None
        if self.warmup_s > 0:
            self.env.timeout(self.warmup_s).callbacks.append(lambda _e: self._take_snapshot())

    def cycle_for(self, station: Station) -> Pooled:
        """The station's cycle-time distribution as a pool of pre-drawn samples (drawn ~10^6 times a day)."""
        if station.id not in self._cycles:
            dist = cycle_dist(
                cycle=station.cycle, cycle_s=station.cycle_s, rate_ppm=station.rate_ppm, cv=station.cycle_cv
            )
            self._cycles[station.id] = pooled(dist, seed_for(self.seed, 555, zlib.crc32(station.id.encode())))
        return self._cycles[station.id]

    def param_texts(self, param: Any, shift: float) -> tuple[str, ...]:
        """Pre-drawn value texts of a product parameter, shared by every equipment that reports it."""
        key = (param, shift)
        if key not in self._texts:
            self._texts[key] = param.texts(seed_for(self.seed, 777), shift)
        return self._texts[key]

    # -- barcodes shared by the copies -------------------------------------------------------------
    def next(self, kind: str) -> int:
        self._counters[kind] += 1
        return self._counters[kind]

    def yymmdd(self) -> str:
        epoch = self.clock.epoch(self.env.now)
        key = int((epoch + 8 * 3600) // 86400)
        if key not in self._days:
            self._days[key] = datetime.fromtimestamp(epoch, CHINA).strftime("%y%m%d")
        return self._days[key]

    def code(self, prefix: str, sep: str = "") -> str:
        return f"{prefix}{sep}{self.yymmdd()}{self.next(prefix):06d}"

    # -- running ------------------------------------------------------------------------------------
    @property
    def equipment(self) -> list[Equipment]:
        return [eq for model in self.lines for eq in model.equipment]

    def run(self, duration_s: float, *, progress: Callable[[float], None] | None = None) -> None:
        """Run for ``duration_s`` virtual seconds: offline as fast as possible, else through the bridge."""
        if isinstance(self.gateway, Bridge):
            aio.run(self.arun(duration_s, progress=progress))
            return
        until = self.env.now + duration_s
        step = max(60.0, duration_s / 200)
        while self.env.now < until:
            self.env.run(until=min(until, self.env.now + step))
            if progress is not None:
                progress(self.env.now)

    async def arun(
        self, duration_s: float, *, progress: Callable[[float], None] | None = None, close: bool = True
    ) -> None:
        """The networked modes, inside a running asyncio loop (the bridge steps SimPy in this thread)."""
        assert isinstance(self.gateway, Bridge), "arun needs a speed (realtime or --speed N)"
        await self.gateway.run(self.env.now + duration_s, progress=progress, close=close)

    def opening(self, equipment: str, cells: list[Unit], tray: str | None) -> None:
        """Cells present at the start of a warm run, inside ``equipment`` (on ``tray``): the opening WIP.

        A real MES knows its opening WIP from the plant; a networked run tells the MES it runs against
        (``on_opening``), and the bridge holds the model until the MES has taken it.
        """
        codes = [c.code for c in cells]
        if self.on_opening is not None and self.on_opening(equipment, codes, tray):
            # the MES has them from its go-live data load: the warehouse's opening report (2.47) leaves them out
            self.announced.update(codes)

    def opening_electrolyte(self, equipment: str, batch: str) -> None:
        """The electrolyte batch already in a filler's tank at the start (the MES sent it, 3.2, before the run)."""
        if self.on_opening_electrolyte is not None:
            self.on_opening_electrolyte(equipment, batch)

    # -- counters the KPIs difference (twin.sim.kpi) ------------------------------------------------
    def counters(self) -> dict[str, Any]:
        """Every counter the KPIs difference, at one moment."""
        buffers = {}
        for model in self.lines:
            for name, buf in model.buffers.items():
                buf.mean_level()  # brings the area up to now
                buffers[f"{model.copy}:{name}"] = buf._area
        return {
            "t": self.env.now,
            "stations": self._station_counts(),
            "shipped": sum(m.ledger.shipped["cell"] for m in self.lines),
            "calls": self.traffic.totals(),
            "buffers": buffers,
        }

    def _station_counts(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for eq in self.equipment:
            row = out.setdefault(eq.station.id, Counter())
            row["made"] += eq.made
            row["in"] += eq.n_in
            row["good"] += eq.n_good
            row["ng"] += eq.n_ng
            row["held"] += eq.n_held
            for mode, seconds in eq.time_split().items():
                row[mode] += seconds
            if hasattr(eq, "occupancy"):
                row["occupied_s"] += eq.occupancy() * eq.slots * self.env.now  # type: ignore[attr-defined]
        return out

    def _take_snapshot(self) -> None:
        self.snapshot = self.counters()
