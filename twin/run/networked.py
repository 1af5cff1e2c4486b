"""A networked run: the line model against a real MES over HTTP, recorded into a run folder.

``run_networked(line_ref, NetConfig(...))`` wires the parts of DESIGN.md's data flow together:

* the equipment side of section 3 (``EquipmentServer``: one loopback address per equipment, 6868);
* the MES: ``--mes URL``, or the embedded MES started as a process of its own (``EmbeddedMes``) that is
  told every equipment's address through a registry file;
* the hosts' link (``HostLink``: offline mode, durable outbox, re-upload, new login) over the pooled
  client (``MesClient``) that records every exchange into the run folder (``RunFolder``);
* the line model (``Simulation``) driven through the bridge at ``speed`` (load shape: clock segments);
* interlocks (3.1) and electrolyte batches (3.2) from the MES injected into the model, with the time
  from receipt to the equipment stopped;
* at the end, the offline model of the same seed and length, to say what the MES cost in output.

Ctrl-C (``stop()``) ends the run at the next step and still writes a complete folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from twin import aio
from twin.aio import loop_time
from twin.durations import parse_duration
from twin.energy.live import EnergyFeed
from twin.energy.platform import Platform
from twin.energy.site import build_site
from twin.energy.spec import load_energy_spec
from twin.energy.store import UplinkStore
from twin.energy.uplink import EnergyUplink, UplinkConfig
from twin.errors import ConfigError
from twin.hil.stations import RunStations
from twin.line.linefile import load_line
from twin.line.model import Line, copy_code
from twin.metrics.exchange import Exchange
from twin.metrics.hdrarrays import HdrArrays
from twin.metrics.histograms import new_histogram
from twin.metrics.runfolder import RunFolder, new_run_dir
from twin.profile import Profile, load_profile
from twin.profile.calls import Answer, Call, Transport
from twin.run.checker import CheckerProcess
from twin.run.hurt import death_fault, fault_block, hurt_reasons, iso, planned_crashes
from twin.run.preroll import PreRoll
from twin.sim.builder import Simulation
from twin.sim.clock import Bridge
from twin.sim.kpi import compute
from twin.sim.mesmodel import ModelTransport
from twin.sim.runner import RunConfig, effective_warmup, simulate
from twin.sim.shapes import LoadShape, check_shape, parse_shape, start_storm
from twin.transport import target
from twin.transport.embedded import EmbeddedMes
from twin.transport.equipment_server import DEFAULT_PORT, EquipmentServer, loopback_endpoints
from twin.transport.hostlink import HostLink, is_record
from twin.transport.http import MesClient
from twin.transport.outbox import Outbox


@dataclass
class NetConfig:
    """How to run against an MES (see ``twin run --help`` for each)."""

    duration_s: float = 600.0
    speed: float = 20.0
    seed: int = 0
    scale: int = 1
    load: str | None = None  # None: the line file's
    mes_url: str | None = None  # None: the embedded MES
    mes_args: list[str] = field(default_factory=list)
    authorization: str | None = None
    profile_ref: str | None = None
    equipment_prefix: str = "127.0.1."
    equipment_port: int = DEFAULT_PORT
    timeout_s: float = 5.0
    connections: int = 64
    retry_s: float = 1.0
    cold: bool = False
    warmup_s: float | None = None
    reports: Path = Path("reports")
    compare_offline: bool = True
    energy: str | None = None  # the energy uplink (seed 003): "embedded" or the platform's register URL
    energy_every_s: float = 900.0  # upload the finished 15-minute values this often (virtual)
    drain_grace_s: float = 15.0  # at the end, wait this long for a backlog being re-uploaded to empty
    preroll_s: float | None = None  # cold start brought warm through the MES first, this long at most (virtual)
    preroll_speed: float = 1000.0  # the pre-roll's highest pace; the MES's answer time sets the one it gets
    copies: list[int] | None = None  # which copies run here (a shard of a sharded run); None: 1..scale
    start_offsets: dict[int, float] = field(default_factory=dict)  # copy -> virtual s before it powers on
    run_dir: Path | None = None  # write here (a shard's folder inside its sharded run); None: a new one

    def copy_numbers(self) -> list[int]:
        return list(self.copies) if self.copies else list(range(1, self.scale + 1))


@dataclass
class Interlock:
    equipment: str
    code: str
    message: str
    received: float  # epoch seconds the twin's equipment got the call
    stopped: float  # epoch seconds the equipment was stopped (H alarm raised, state 2 reported)
    virtual_s: float
    decided: float | None = None  # epoch seconds the MES decided it (its record), when it says

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision_to_stop_ms": round((self.stopped - self.decided) * 1000, 3) if self.decided else None,
            "equipment": self.equipment,
            "code": self.code,
            "message": self.message,
            "received": self.received,
            "stopped": self.stopped,
            "reaction_ms": round((self.stopped - self.received) * 1000, 3),
            "virtual_s": round(self.virtual_s, 3),
        }


class NetworkedRun:
    """One run; ``await run.run()`` returns the summary written to ``summary.json``."""

    def __init__(self, line: Line, profile: Profile, config: NetConfig) -> None:
        self.line = line
        self.profile = profile
        self.config = config
        self.shape: LoadShape = parse_shape(config.load or line.load)
        self.path = new_run_dir(config.reports, line.name) if config.run_dir is None else config.run_dir
        self.path.mkdir(parents=True, exist_ok=True)
        self.folder = RunFolder(self.path, self.settings())
        self.start_delay = new_histogram()
        self.latency_all = new_histogram()  # all interfaces in one, for the live view (no merging every tick)
        self.interlocks: list[Interlock] = []
        self.batches: list[dict[str, Any]] = []
        self.sim: Simulation | None = None
        self.link: HostLink | None = None
        self.mes: EmbeddedMes | None = None
        self.admin: Any = None  # who takes the opening WIP: the embedded MES, or its admin API (MesAdmin) in a shard
        self.started = time.time()
        self._stop_requested = False
        self._by_code: dict[str, Any] = {}
        self.model_wall = (0.0, 0.0)  # epoch seconds the model ran through the bridge
        self.energy: EnergyFeed | None = None
        self.plcs = RunStations(line, profile)
        self.hourly: list[dict[str, int]] = []
        self._cells_counted = 0
        self.faults: list[dict[str, Any]] = []  # what went wrong without being asked for (issue 13)
        self.on_fault: list[Callable[[dict[str, Any]], None]] = []  # e.g. the live view prints it at once
        self.answered = 0  # exchanges the MES answered (any HTTP status)
        self._aborted = False  # the run was stopped by a fault (the embedded MES died)
        self._transport: _InProcessFor | None = None
        self._owed: dict[str, int] | None = None  # records left in the outbox at the end, by operation
        self.target_checked = False  # --mes answered HTTP before the run (prepare checks it outside a loop)
        self.selfcheck: CheckerProcess | None = None
        self._backlog_seen: tuple[int, float] | None = None  # backlog, wall time it began to grow (pace governor)
        self._measured_since = (time.time(), 0.0)  # epoch wall and bridge pause when the measured window started
        self.preroll = PreRoll(config.preroll_s, config.preroll_speed, config.speed) if config.preroll_s else None
        self.t0 = 0.0  # virtual time the measured window starts (the end of the pre-roll)

    def settings(self) -> dict[str, Any]:
        c = self.config
        return {
            "line": self.line.name,
            "line_file": str(self.line.source) if self.line.source else None,
            "profile": self.profile.title,
            "mode": "realtime" if c.speed == 1 else f"speed {c.speed:g}",
            "speed": c.speed,
            "duration_s": c.duration_s,
            "seed": c.seed,
            "scale": len(c.copy_numbers()),
            **({"copies": c.copy_numbers(), "start_offsets_s": c.start_offsets} if c.copies else {}),
            "load": self.shape.to_dict(),
            "target": c.mes_url or "embedded",
            "preroll": {"max_s": c.preroll_s, "speed": c.preroll_speed} if c.preroll_s else None,
            "mes_args": c.mes_args,
            "equipment": self.line.equipment_count() * len(c.copy_numbers()),
            "exchange_log": "exchanges.parquet: a folder of Parquet files, one row per exchange (twin.metrics.log)",
            "event_loop": aio.loop_name(),
        }

    # -- the run ---------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Ctrl-C: end at the next step; the folder is still written in full."""
        self._stop_requested = True
        if self.sim is not None and isinstance(self.sim.gateway, Bridge):
            self.sim.gateway.stop()

    def record(self, ex: Exchange, ok: bool) -> None:
        if self.preroll is not None and self.preroll.active:
            self.preroll.record(ex, ok)  # before the measured window: counted apart
            return
        self.folder.record(ex, ok)
        if ex.status:
            self.answered += 1
        self.start_delay.record_value(max(0, round((ex.sent_wall - ex.intended_wall) * 1_000_000)))
        self.latency_all.record_value(min(max(1, round(ex.latency_s * 1_000_000)), 3_600_000_000))

    async def run(self, progress: Callable[[NetworkedRun], None] | None = None) -> dict[str, Any]:
        state = "failed"
        try:
            async with contextlib.AsyncExitStack() as stack:
                registry = await self._equipment_side(stack)
                url = await self._target(stack, registry)
                await self._model(stack, await self._host_link(stack, url), url)
                await self._drive(progress)
                await self._settle()
                self._owed = self._owed_by_operation()  # before the outbox closes with the run
                state = "aborted" if self._aborted else "interrupted" if self._stop_requested else "finished"
                await self._mes_side()
                if self.energy is not None and self.sim is not None:
                    wall = self.model_wall[1] - self.model_wall[0]
                    self.folder.extra["energy"] = await self.energy.finish(self.sim.env.now, wall)
        finally:
            try:
                self._finish_extra()
            finally:
                if self.selfcheck is not None:
                    self.selfcheck.close()
            summary = self.folder.finish(state)
        if state in ("finished", "interrupted") and self.config.compare_offline and self.sim is not None:
            summary = self._compare_offline()
        return summary

    def _mes_died(self, mes: EmbeddedMes) -> None:
        """The embedded MES died under the run (not a planned crash): record it, say it, stop the run.

        Nothing after it would measure the MES: records would pile up in the outbox and every call that needs
        an answer would wait for ever. The folder is written in full, the run is ``aborted``, and ``twin run``
        exits 3.
        """
        fault = death_fault(mes.died, mes.exit_code, self.sim.env.now if self.sim is not None else 0.0)
        self.faults.append(fault)
        for tell in self.on_fault:
            tell(fault)
        self._aborted = True
        if self.sim is not None and isinstance(self.sim.gateway, Bridge):
            self.sim.gateway.stop()

    async def _settle(self) -> None:
        """At the end, a backlog being re-uploaded to an MES that is back gets ``drain_grace_s`` to empty."""
        link = self.link
        if link is None or self._aborted or self._stop_requested:
            return
        deadline = time.monotonic() + self.config.drain_grace_s
        while link.online and link.draining and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    async def _equipment_side(self, stack: contextlib.AsyncExitStack) -> Path:
        """Section 3: every host listens (or its PLC binding does); the registry file says where."""
        c = self.config
        servers = EquipmentServer(self.profile, on_interlock=self._on_interlock, on_batch=self._on_batch)
        stack.push_async_callback(servers.close)
        stack.push_async_callback(self.plcs.close)
        codes = [copy_code(code, k) for k in c.copy_numbers() for code in self.line.equipment_codes()]
        endpoints = loopback_endpoints(codes, prefix=c.equipment_prefix, port=c.equipment_port)
        hosted = self.plcs.hosted_codes()
        bound = await servers.start([e for e in endpoints if e.equipment not in hosted])
        addresses = {k: v.removeprefix("http://") for k, v in bound.items()}
        addresses |= await self.plcs.open({e.equipment: f"{e.host}:{e.port}" for e in endpoints})
        registry = self.path / "registry.yaml"
        registry.write_text(yaml.safe_dump(addresses))
        return registry

    async def _target(self, stack: contextlib.AsyncExitStack, registry: Path) -> str:
        url = self.config.mes_url
        if url is not None and not self.target_checked:
            await target.check_reachable_async(url, self.config.timeout_s)
        if url is None:
            self.mes = await stack.enter_async_context(EmbeddedMes(self.path, self._mes_args(registry)))
            self.admin = self.mes
            url = self.mes.url
            self.mes.on_death(self._mes_died)  # at once, from its supervisor; not when stopped on purpose
        self.folder.extra["target_url"] = url
        return url

    async def _host_link(self, stack: contextlib.AsyncExitStack, url: str) -> _InProcessFor:
        c = self.config
        client = MesClient(url, record=self.record, timeout_s=c.timeout_s, connections=c.connections)
        stack.push_async_callback(client.close)
        outbox = Outbox(self.path / "outbox.sqlite")
        stack.callback(outbox.close)
        self.link = HostLink(client, self.profile, outbox, credentials=self.line.operator, retry_s=c.retry_s)
        self.link.static_token = c.authorization
        stack.push_async_callback(self.link.close)
        self._transport = _InProcessFor(self.link, self.plcs.local_codes)
        return self._transport

    async def _model(self, stack: contextlib.AsyncExitStack, transport: _InProcessFor, url: str) -> None:
        self.sim = self._build(transport)
        transport.model = ModelTransport(self.sim.mes)
        self.sim.on_opening = self._opening
        self.sim.on_opening_electrolyte = self._opening_electrolyte
        if self.config.energy:
            self.energy = await self._energy(stack)
        # The model's objects live for the whole run: keep them out of the cyclic GC's full
        # collections, which otherwise stall the loop for 100-300 ms and make hundreds of late starts.
        gc.collect()
        gc.freeze()
        self._by_code = {eq.code: eq for eq in self.sim.equipment}
        processes = {eq.code: eq.station.process for eq in self.sim.equipment}
        self.selfcheck = CheckerProcess.for_run(self.profile, processes, self.sim.clock.epoch, self._virtual_of)
        if self.selfcheck is not None and self.link is not None:
            self.link.observe = self.selfcheck.observe
            self.sim.gateway.idle_work.append(self.selfcheck.drain)  # a batch goes to the checker when idle
        assert isinstance(self.sim.gateway, Bridge)
        self.sim.gateway.max_in_flight = max(1024, 4 * self.config.connections + 2 * len(self._by_code))
        self.sim.gateway.lag_sources.append(self._backlog_lag)
        await self.plcs.start(url, self._by_code)
        if self._stop_requested or self._aborted:  # Ctrl-C, or the MES died, while the run was starting
            self.sim.gateway.stop()

    def _backlog_lag(self, now: float) -> float:
        """How long (wall s) the backlog has grown while the MES answers: new records queue behind a re-upload
        that goes one at a time, so a twin that makes them faster than it drains them is behind (the pace
        governor slows the line until the drain wins; see twin.sim.pace)."""
        link = self.link
        if link is None or not link.online or not link.draining:
            self._backlog_seen = None
            return 0.0
        backlog = link.outbox.appended - link.outbox.acked
        seen = self._backlog_seen
        if seen is None or backlog <= seen[0]:
            self._backlog_seen = (backlog, now)
            return 0.0
        self._backlog_seen = (backlog, seen[1])
        return now - seen[1]

    def _virtual_of(self, epoch_wall: float) -> float:
        """When the model took an answer that came at ``epoch_wall`` (``Bridge.arrival_at``), at most the run's end:
        the self-check judges each host on the host's own clock. The clock's time alone put the answer to a login
        before heartbeats the model had already stepped without a token (a saturated run re-bases its clock behind
        the model), and the answers to calls cut at the end after it: hundreds of false heartbeat violations."""
        assert self.sim is not None and isinstance(self.sim.gateway, Bridge)
        bridge = self.sim.gateway
        return min(bridge.arrival_at(loop_time() - (time.time() - epoch_wall)), bridge.until_s)

    def _mes_args(self, registry: Path) -> list[str]:
        line_ref = str(self.line.source) if self.line.source else self.line.name
        args = ["--db", str(self.path / "mes.sqlite"), "--line", line_ref, "--registry", str(registry)]
        args += ["--durability", "normal"]  # survives a killed MES; --mes-arg=--durability=full for power cuts
        if self.config.profile_ref:
            args += ["--profile", self.config.profile_ref]
        return args + list(self.config.mes_args)

    def _build(self, transport: Transport) -> Simulation:
        c = self.config
        warmup, _ = effective_warmup(self.line, RunConfig(duration_s=c.duration_s, warmup_s=c.warmup_s))
        sim = Simulation(
            self.line,
            self.profile,
            seed=c.seed,
            scale=c.scale,
            copies=c.copies,
            start_offsets=c.start_offsets,
            speed=c.speed,
            transport=transport,
            cold=c.cold or self.preroll is not None,
            warmup_s=warmup,
            mes_pushes=False,
            segments=[(0.0, c.speed)] if self.preroll else self.shape.segments(c.speed, c.duration_s, parse_duration),
        )
        if self.shape.kind == "storm" and self.preroll is None:
            start_storm(sim, self.shape.at_s(c.duration_s, parse_duration), parse_duration(self.shape.window))
        return sim

    async def _energy(self, stack: contextlib.AsyncExitStack) -> EnergyFeed:
        """The plant's energy uplink on the live line: the embedded platform peer, or the one at a URL."""
        assert self.sim is not None
        spec = load_energy_spec()
        url = self.config.energy or ""
        if url == "embedded":
            platform = Platform(db=self.path / "energy-platform.sqlite", spec=spec)
            await platform.start("127.0.0.1", 0)
            stack.push_async_callback(platform.stop)
            url = f"http://127.0.0.1:{platform.port}/register"
        config = UplinkConfig(
            register_url=url, upload_every_s=self.config.energy_every_s, upload_offset_s=60.0, duty_retry_s=60.0
        )
        store = UplinkStore(self.path / "energy-queue.sqlite")
        uplink = EnergyUplink(build_site(self.line, spec), store, config, spec=spec)
        self.folder.extra["energy_target"] = url
        return EnergyFeed(uplink.site, uplink, self.sim.equipment, self.sim.clock.epoch)

    async def _drive(self, progress: Callable[[NetworkedRun], None] | None) -> None:
        assert self.sim is not None

        def tick(now: float) -> None:
            if self.preroll is not None and self.preroll.active:
                self._check_preroll(now)
            self._count_hours(now)
            if self.energy is not None:
                self.energy.step(now)
            if self.folder.due():
                self._finish_extra(kpis=False)
                self.folder.checkpoint_in_background()
            # What the model built since (units, trays, records, the self-check's reorder window: about a
            # million objects in 20 s of 36 copies in realtime) lives on too: move it out of the full
            # collections at every tick (it costs nothing: two lists spliced), which otherwise grow to a
            # second each and stall every send. Frozen objects are still freed when no longer referenced;
            # short-lived cycles are collected young, before they could be frozen.
            gc.freeze()
            if progress is not None:
                progress(self)

        start = time.time()
        self._measured_since = (start, 0.0)
        try:
            if self.preroll is None:
                await self.sim.arun(self.config.duration_s, progress=tick)
                return
            # Up to the pre-roll's cap; once the line is warm the same run goes on for the measured window.
            await self.sim.arun(self.preroll.cap_s, progress=tick, close=False)
            bridge = self.sim.gateway
            assert isinstance(bridge, Bridge)
            if self.preroll.active and not bridge.stopping:
                self._end_preroll(self.sim.env.now, "cap")
            ended = self.preroll.ended_s
            left = (ended + self.config.duration_s - self.sim.env.now) if ended is not None else 0.0
            if left > 0 and not bridge.stopping:  # the cap came first: the measured window is still to run
                await self.sim.arun(left, progress=tick, close=False)
            await bridge.close()
        finally:
            self.model_wall = (start, time.time())

    def _check_preroll(self, now: float) -> None:
        assert self.preroll is not None and self.sim is not None
        made: dict[str, int] = {}
        for eq in self.sim.equipment:
            made[eq.station.id] = made.get(eq.station.id, 0) + eq.made
        because = self.preroll.due(now, made)
        if because is not None:
            self._end_preroll(now, because)
            return
        clock = self.sim.clock
        pace, current = self.preroll.pace(), clock.speed_asked_at(now) or self.config.speed
        if abs(pace - current) > 0.2 * current:  # as fast as the MES allows, not faster: see twin.run.preroll
            clock.change_from(now, [(now, pace)])
            assert isinstance(self.sim.gateway, Bridge)
            self.sim.gateway._wake()

    def _end_preroll(self, now: float, because: str) -> None:
        """The line is warm (or the pre-roll's cap is reached): the measured window starts now, at the asked
        pace and load shape, for ``duration_s``; the KPIs and the hourly output count from here."""
        assert self.preroll is not None and self.sim is not None and isinstance(self.sim.gateway, Bridge)
        c = self.config
        self.preroll.end(now, because)
        self.t0 = now
        self._measured_since = (time.time(), self.sim.gateway.paused_s)
        later = [(now + v, speed) for v, speed in self.shape.segments(c.speed, c.duration_s, parse_duration)]
        self.sim.clock.change_from(now, later)
        self.sim.gateway.end_at(now + c.duration_s)
        if self.shape.kind == "storm":
            start_storm(
                self.sim, now + self.shape.at_s(c.duration_s, parse_duration), parse_duration(self.shape.window)
            )
        self.sim._take_snapshot()  # the KPI window starts with the measured one
        self._cells_counted = sum(m.ledger.shipped["cell"] for m in self.sim.lines)
        self.start_delay.reset()
        self.latency_all.reset()

    def _opening_electrolyte(self, equipment: str, batch: str) -> None:
        """The embedded MES learns the batch already in a filler's tank (its go-live data load), before it moves."""
        if self.admin is None:
            return  # a foreign MES: the batch is the host's state; the MES's own 3.2 pushes switch it
        assert self.sim is not None and isinstance(self.sim.gateway, Bridge)
        doc = {"equipment": equipment, "cells": [], "electrolyte": batch}
        self.sim.gateway.hold_until(
            asyncio.get_running_loop().create_task(self.admin.post_json("/admin/opening-wip", doc))
        )

    def _opening(self, equipment: str, cells: list[str], tray: str | None) -> bool:
        """Tell the embedded MES about cells already in the line; the model waits until it has them. False: the
        MES is foreign (its opening WIP is its own data load; the warehouse's 2.47 is all the twin says)."""
        if self.selfcheck is not None:
            self.selfcheck.opening(equipment, cells, tray)
        if self.admin is None:
            unknown = self.folder.extra.get("opening_wip_unknown_to_mes", 0)
            self.folder.extra["opening_wip_unknown_to_mes"] = unknown + len(cells)
            return False
        assert self.sim is not None and isinstance(self.sim.gateway, Bridge)
        task = asyncio.get_running_loop().create_task(self._send_opening(equipment, cells, tray))
        self.sim.gateway.hold_until(task)
        return True

    async def _send_opening(self, equipment: str, cells: list[str], tray: str | None) -> None:
        assert self.admin is not None
        answer = await self.admin.post_json(
            "/admin/opening-wip", {"equipment": equipment, "cells": cells, "tray": tray}
        )
        opening = self.folder.extra.setdefault("opening_wip", {"cells": 0, "refused": []})
        if answer is not None and "added" in answer:
            opening["cells"] += int(answer["added"])
        else:
            opening["refused"].append({"equipment": equipment, "answer": answer})

    def _count_hours(self, now: float) -> None:
        """Good cells out per virtual hour (the report plots them against the MES latency of that hour)."""
        assert self.sim is not None
        cells = sum(m.ledger.shipped["cell"] for m in self.sim.lines)
        if self.preroll is not None and self.preroll.active:
            return
        hour = int(max(0.0, now - self.t0) // 3600)
        while len(self.hourly) <= hour:
            self.hourly.append({"hour": len(self.hourly), "cells_out": 0})
        self.hourly[hour]["cells_out"] += cells - self._cells_counted
        self._cells_counted = cells

    # -- section 3: the MES calls the equipment --------------------------------------------------------
    async def _on_interlock(self, code: str, interlock: str, message: str) -> str | None:
        eq = self._by_code.get(code)
        if eq is None or self.sim is None:
            return f"EquipmentCode {code} is not running in this twin"
        received = time.time()
        bridge = self.sim.gateway
        assert isinstance(bridge, Bridge)
        try:
            await asyncio.wait_for(bridge.inject(lambda: eq.on_interlock(interlock, message)), 5.0)
        except TimeoutError:
            return f"{code} did not react within 5 s"
        self.interlocks.append(Interlock(code, interlock, message, received, time.time(), self.sim.env.now))
        return None

    async def _on_batch(self, code: str, batch: str) -> str | None:
        eq = self._by_code.get(code)
        if eq is None or self.sim is None:
            return f"EquipmentCode {code} is not running in this twin"
        if eq.station.archetype != "filling":
            return f"{code} is not a filling machine: it has no electrolyte buffer tank"
        bridge = self.sim.gateway
        assert isinstance(bridge, Bridge)
        await asyncio.wait_for(bridge.inject(lambda: eq.on_batch_sfc(batch)), 5.0)
        self.batches.append({"equipment": code, "batch": batch, "received": time.time()})
        return None

    # -- what the summary says -------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """The figures of the live view: virtual time, cells out, requests, percentiles, errors."""
        sim = self.sim
        total = self.folder.book.total(histograms=False)
        cells = sum(m.ledger.shipped["cell"] for m in sim.lines) if sim is not None else 0
        link = self.link
        p50, p99 = HdrArrays(self.latency_all).values_at((50, 99)) if total.count else (0.0, 0.0)
        return {
            "virtual_s": sim.env.now - self.t0 if sim is not None else 0.0,
            "phase": "pre-roll" if self.preroll is not None and self.preroll.active else "measured",
            "duration_s": self.config.duration_s,
            "cells_out": cells,
            "requests": total.count,
            "failures": total.failures,
            "p50_ms": float(p50) / 1000,
            "p99_ms": float(p99) / 1000,
            "late_starts": total.late_starts,
            "interlocks": len(self.interlocks),
            "online": link.online if link is not None else True,
            "backlog": (link.outbox.appended - link.outbox.acked) if link is not None else 0,
            "wall_s": time.time() - self.started,
            "faults": [f["kind"] for f in self.faults],
            **self._pace_now(),
        }

    def _pace_now(self) -> dict[str, Any]:
        """The pace asked and the one kept now, and whether the twin is saturated (twin.sim.pace)."""
        sim = self.sim
        if sim is None or not isinstance(sim.gateway, Bridge):
            return {"saturated": False, "speed_asked": self.config.speed, "speed_kept": self.config.speed}
        now = sim.env.now
        return {
            "saturated": sim.gateway.governor.saturated,
            "speed_asked": sim.clock.speed_asked_at(now),
            "speed_kept": sim.clock.speed_at(now),
        }

    def pace(self) -> dict[str, Any]:
        """Whether the twin kept the pace asked over the measured window, for summary.json and the report: when
        it did not, the figures are the twin's limit, not the MES's."""
        sim = self.sim
        if sim is None or not isinstance(sim.gateway, Bridge):
            return {"saturated": False, "speed_asked": self.config.speed, "speed_achieved": None}
        bridge = sim.gateway
        since, paused = self._measured_since
        wall = time.time() - since - (bridge.paused_s - paused)
        achieved = (sim.env.now - self.t0) / wall if wall > 0 else 0.0
        return bridge.governor.report(asked=self.config.speed, achieved=achieved) | {
            "in_flight_max": bridge.max_in_flight,
            "in_flight_most": bridge.most_in_flight,
        }

    def _finish_extra(self, *, kpis: bool = True) -> None:
        extra = self.folder.extra
        extra["run"] = self.status()
        pace = extra["pace"] = self.pace()
        for key in ("saturated", "speed_asked", "speed_achieved"):
            extra[key] = pace[key]
        points = (50, 90, 99, 99.9)
        delays = HdrArrays(self.start_delay).values_at(points)
        extra["takt"] = {
            "start_delay_ms": {p: float(v) / 1000 for p, v in zip(points, delays, strict=True)},
            "start_delay_max_ms": self.start_delay.get_max_value() / 1000,
            "model_held_s": round(self.sim.gateway.held_s, 3)
            if self.sim is not None and isinstance(self.sim.gateway, Bridge)
            else 0.0,
            "late_starts": self.folder.book.total().late_starts,
        }
        if self.link is not None:
            extra["link"] = self.link.stats.to_dict(self.link.outbox.appended - self.link.outbox.acked)
            extra["link"]["connections_opened"] = self.link.client.connections_opened
            # A dead kept-alive connection is usually an MES that closed it while idle, but a crash between
            # processing and answering looks the same: those resends may be duplicates too.
            extra["link"]["resent_on_dropped_connection"] = retried = self.link.client.stale_retries
            extra["link"]["possible_duplicates"] += retried
        extra["interlocks"] = [i.to_dict() for i in self.interlocks]
        if self.plcs.stations:
            extra["plc_stations"] = self.plcs.summary()
        extra["batches"] = self.batches
        if self.sim is not None:
            self._count_hours(self.sim.env.now)
            extra["hourly"] = self.hourly
        if self.sim is not None and kpis:
            extra["line_kpis"] = compute(self.sim).to_dict()
        if self.selfcheck is not None and kpis:
            extra["conformance"] = self.selfcheck.summary()  # the proxy's rules over the run's own traffic
        extra["cells_out"] = extra["run"]["cells_out"]
        if self.preroll is not None:
            extra["preroll"] = self.preroll.to_dict()
        self._fault_extra(extra)

    def _fault_extra(self, extra: dict[str, Any]) -> None:
        """Faults, what was never delivered, and why the run is hurt (empty when it is not)."""
        owed = self._owed or {}
        backlog = sum(owed.values()) if self._owed is not None else extra["run"]["backlog"]
        waiting = self._transport.abandoned if self._transport is not None else {}
        extra["records_made"] = dict(self._transport.records_made) if self._transport is not None else {}
        extra["undelivered"] = {
            "records": backlog,
            "records_by_operation": owed,
            "calls": sum(waiting.values()),
            "calls_by_operation": dict(waiting),
        }
        crashes: list[dict[str, Any]] = []
        if self.mes is not None and self.mes.events:
            extra["mes_events"] = [
                {"kind": e.kind, "at": iso(e.at), "exit_code": e.exit_code, "detail": e.detail} for e in self.mes.events
            ]
            crashes = planned_crashes(self.mes.events, extra.get("link", {}).get("outages", []))
            extra["mes_crashes"] = crashes
        total = extra["run"]["requests"]
        extra["hurt"] = hurt_reasons(self.faults, extra["undelivered"], requests=total, answered=self.answered)
        extra["faults"] = fault_block(self.faults, extra["undelivered"], crashes, extra["hurt"])

    def _owed_by_operation(self) -> dict[str, int]:
        owed: dict[str, int] = {}
        if self.link is not None:
            for item in self.link.outbox:
                owed[item.operation] = owed.get(item.operation, 0) + 1
        return owed

    async def _mes_side(self) -> None:
        """The embedded MES's own counts and interlock records, to check the twin's against."""
        if self.mes is None:
            return
        stats = await self.mes.stats()
        if stats is not None:
            self.folder.extra["mes_counts"] = stats
        records = await self.mes.get_json("/admin/interlocks?limit=10000")
        if records is not None:
            self.folder.extra["mes_interlocks"] = records.get("interlocks", [])
            self._decision_to_stop(records.get("interlocks", []))
            self.folder.extra["interlocks"] = [i.to_dict() for i in self.interlocks]

    def _decision_to_stop(self, records: list[dict[str, Any]]) -> None:
        """MES decision -> equipment stopped, by joining the MES's records with the twin's reactions."""
        for item in self.interlocks:
            for rec in records:
                if rec.get("equipment") == item.equipment and str(rec.get("code")) == item.code:
                    with contextlib.suppress(TypeError, ValueError):
                        item.decided = datetime.fromisoformat(str(rec["at"]).replace("Z", "+00:00")).timestamp()
                    break

    def _compare_offline(self) -> dict[str, Any]:
        """What the MES latency cost: the offline model of the same seed and virtual length, cells out."""
        assert self.sim is not None
        c = self.config
        reached = self.sim.env.now - self.t0
        if reached <= 0:
            return self.folder.summary()
        offline = simulate(
            self.line,
            RunConfig(
                duration_s=reached,
                seed=c.seed,
                scale=c.scale,
                cold=c.cold and self.preroll is None,  # a pre-rolled line is warm when measured
                warmup_s=c.warmup_s,
            ),
            profile=self.profile,
        )
        ideal = offline.kpis.to_dict().get("good_cells", 0)
        got = self.folder.extra.get("line_kpis", {}).get("good_cells", 0)
        self.folder.extra["offline_compare"] = {
            "virtual_s": reached,
            "good_cells_offline": ideal,
            "good_cells_networked": got,
            "cost_cells": ideal - got,
            "cost_pct": round(100.0 * (ideal - got) / ideal, 2) if ideal else None,
            "note": "offline = the same line, seed and length with the line file's MES latency model",
        }
        self.folder.checkpoint()
        return self.folder.summary()


class _InProcessFor:
    """The calls of PLC-bound equipment are answered by the in-process MES model: their real host PC (or the
    twin as that PC, from the PLC) talks to the MES for them; everything else goes through the host link."""

    def __init__(self, link: HostLink, codes: set[str]) -> None:
        self.link = link
        self.codes = codes
        self.model: ModelTransport | None = None
        self.abandoned: dict[str, int] = {}  # calls cancelled unanswered at the end, by operation
        self.records = {op.operation_id for op in link.profile if is_record(op)}
        self.records_made: dict[str, int] = {}  # records the model handed to the link, by operation

    async def exchange(self, call: Call) -> Answer:
        if call.equipment_code in self.codes and self.model is not None:
            return await self.model.exchange(call)
        op_id = call.op.operation_id
        if op_id in self.records:
            self.records_made[op_id] = self.records_made.get(op_id, 0) + 1
        try:
            return await self.link.exchange(call)
        except asyncio.CancelledError:
            self.abandoned[op_id] = self.abandoned.get(op_id, 0) + 1
            raise


def prepare(line_ref: str, config: NetConfig) -> NetworkedRun:
    """Load the line (and another profile if asked) and check the options before anything starts."""
    line, profile, checked = check_config(line_ref, config)
    run = NetworkedRun(line, profile, config)
    run.target_checked = checked
    return run


def check_config(
    line_ref: str | Line, config: NetConfig, *, equipment: int | None = None
) -> tuple[Line, Profile, bool]:
    """The line (loaded unless given) and its profile, with every option checked; True if ``--mes`` answered.

    ``equipment``: how many hosts need an address in all (a sharded run of a factory: every line's copies).
    """
    override = load_profile(config.profile_ref) if config.profile_ref else None
    if isinstance(line_ref, Line):
        line, profile = line_ref, override or load_line(line_ref.source or line_ref.name)[1]
    else:
        line, profile = load_line(line_ref, profile=override)
    if config.scale < 1:
        raise ConfigError(f"--scale must be at least 1, got {config.scale}")
    target.check_positive("--duration", config.duration_s)
    target.check_positive("--speed", config.speed)
    target.check_positive("--timeout", config.timeout_s)
    target.check_positive("--energy-every", config.energy_every_s)
    target.check_positive("retry_s", config.retry_s)
    if config.warmup_s is not None:
        target.check_positive("--warmup", config.warmup_s, zero=True)
    if config.connections < 1:
        raise ConfigError(f"connections must be at least 1, got {config.connections}")
    config.equipment_prefix = target.check_prefix(config.equipment_prefix)
    needed = equipment if equipment is not None else line.equipment_count() * len(config.copy_numbers())
    target.check_addresses(config.equipment_prefix, needed)
    target.check_port("--equipment-port", config.equipment_port)
    if config.energy:
        target.check_energy(config.energy)
    if config.authorization is not None:
        target.check_header_value("--authorization", config.authorization)
    check_shape(config.load or line.load, config.duration_s)
    target.check_reports(config.reports)
    checked = False
    if config.mes_url is not None:
        target.check_mes_url(config.mes_url)
        if not _loop_running():  # a target that never answers is no run (in a loop, run() checks it)
            target.check_reachable(config.mes_url, config.timeout_s)
            checked = True
    if config.preroll_s is not None and config.preroll_s < 0:  # --preroll auto: the line file's
        config.preroll_s = line.preroll_s
    return line, profile, checked


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
