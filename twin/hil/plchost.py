"""The host PC of a station whose PLC is real: the twin emits that station's MES traffic from the PLC's signals.

A ``PlcWatcher`` turns the PLC's image into events; this host turns the events into what the spec asks of a
host (sections 1.7 and 2): log in (2.1), heartbeat every period (2.2), verify the startup parameters before
production (2.7 -> 2.8 -> limits written down to the PLC -> value and limits read back -> 2.9), the run bit
as state reports sent only on change (2.3, with a down reason after a long stop), the PLC's alarm code as
alarm reports (2.4: only the earliest is open at a time), and every finished part (counter or pulse, with the
barcode the PLC holds) as the station's report calls, in order (``report``: e.g. 2.44, or 2.27 then 2.28).

The MES's section-3 calls come to this host's listener (port 6868 in the plant): an interlock (3.1) is written
to the PLC and the reaction timed (interlock bit set -> run bit dropped, within the map's timeout, else the
check fails); an electrolyte batch (3.2) is acknowledged and kept. The MES's answer to an interlock is 400
with ``Msg`` when the PLC cannot be reached, so the MES knows the machine did not get it.

Nothing the PLC or the MES does raises out of the host: the PLC link is retried by the watcher, MES calls
are retried with back-off until answered (reports are kept in order meanwhile), and each is reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from twin.errors import MesError
from twin.hil.events import (
    AlarmChanged,
    CycleCompleted,
    InterlockCheck,
    LinkUp,
    PlcEvent,
    RunChanged,
    cancel_and_wait,
)
from twin.hil.link import PlcError
from twin.hil.mes_session import MesSession, Sent
from twin.hil.watcher import PlcWatcher
from twin.profile.casing import lower_keys
from twin.profile.recipes import recipe_report

log = logging.getLogger(__name__)

QUEUE_MAX = 100_000  # events kept while the MES is away; beyond this the oldest are dropped (and counted)


@dataclass(slots=True, kw_only=True)
class HostConfig:
    product: str
    report: tuple[str, ...] = ("Outbound",)  # operations sent for each finished part, in order
    heartbeat_s: float = 10.0
    long_stop_s: float = 180.0  # 2.9 again when the machine starts after a stop this long
    down_reason_after_s: float = 180.0  # 2.3: the run report after a longer stop carries a reason
    # The reason sent then when the PLC's image has no down_reason picked on the HMI, by what stopped the machine
    # (the line catalogue's down_reasons: repair 3, system 6, starved 1).
    down_reasons: dict[str, str] = field(default_factory=lambda: {"fault": "3", "interlock": "6", "standby": "1"})
    ng_code: str = ""  # NgList entry of an NG part when the PLC gives no reason
    listen_host: str = "127.0.0.1"
    listen_port: int = 0  # the section-3 listener (6868 in the plant; 0 = any free port)


class PlcHost:
    """One station: a watched PLC, a session with the MES, and the section-3 listener."""

    def __init__(self, watcher: PlcWatcher, session: MesSession, config: HostConfig) -> None:
        self.watcher = watcher
        self.session = session
        self.config = config
        self.map = watcher.map
        self.address = ""
        self.reported_state: str | None = None
        self.open_alarm = 0
        self.verified = False
        self.checks: list[InterlockCheck] = []
        self.interlocks: list[dict[str, Any]] = []
        self.batches: list[str] = []
        self.parts = 0
        self.missed = 0
        self.dropped = 0
        self.on_check: Callable[[InterlockCheck], None] | None = None
        self._queue: asyncio.Queue[PlcEvent] = asyncio.Queue()
        self._stopped_at: float | None = time.time()
        self._stop_cause = "standby"
        self._interlocked = False  # an interlock came since the machine last started
        self._tasks: list[asyncio.Task[None]] = []
        self._checking: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        watcher.add_listener(self._on_event)

    # -- lifecycle ------------------------------------------------------------------------------------
    async def listen(self) -> str:
        """Open the section-3 listener first (the MES must know it); returns its ``host:port``."""
        if self._runner is not None:
            return self.address
        app = web.Application()
        app.router.add_post(self.session.profile.operation("SendInterLock").path, self._interlock)
        app.router.add_post(self.session.profile.operation("SendBatchSfc").path, self._batch)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.listen_host, self.config.listen_port)
        await site.start()
        self.address = f"{self.config.listen_host}:{self._runner.addresses[0][1]}"
        return self.address

    async def start(self) -> str:
        """Listen for the MES, start watching the PLC and talking to the MES; returns ``host:port`` of 3."""
        await self.listen()
        await self.watcher.start()
        self._tasks.append(asyncio.create_task(self._main(), name=f"host {self.session.config.equipment}"))
        return self.address

    async def stop(self) -> None:
        await cancel_and_wait(*self._tasks, *self._checking)
        self._tasks.clear()
        await self.watcher.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.session.close()

    async def __aenter__(self) -> PlcHost:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _on_event(self, event: PlcEvent) -> None:
        if self._queue.qsize() >= QUEUE_MAX:
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(event)

    # -- host -> MES ------------------------------------------------------------------------------------
    async def _main(self) -> None:
        login = await self.session.login()
        while not self.session.token:  # refused: an account problem an operator must fix; keep asking
            log.warning("%s: login refused (%s %s); retrying", self.session.config.equipment, login.code, login.msg)
            await asyncio.sleep(self.session.config.backoff.max_s)
            login = await self.session.login()
        self._tasks.append(asyncio.create_task(self._heartbeats(), name="heartbeat"))
        while True:
            event = await self._queue.get()
            try:
                await self._handle(event)
            except (MesError, PlcError) as exc:  # a refusal of 2.7/2.8, a PLC write refused: reported, not fatal
                log.warning("%s: %s", self.session.config.equipment, exc)

    async def _heartbeats(self) -> None:
        """2.2 on a fixed schedule from login (no drift); a missed MES is logged by the session."""
        start = time.monotonic()
        for n in range(1, 10**9):
            with contextlib.suppress(MesError):
                await self.session.call("Heartbeat", {"IsOnline": True})
            await asyncio.sleep(max(start + n * self.config.heartbeat_s - time.monotonic(), 0.0))

    async def _handle(self, event: PlcEvent) -> None:
        if isinstance(event, LinkUp):
            if self.reported_state is None:
                running = bool(event.snapshot.get(self.map.require("run").name))
                if running:
                    await self._verify()
                    self._stopped_at = None
                await self._state("1" if running else "3")
        elif isinstance(event, RunChanged):
            await self._run_changed(event)
        elif isinstance(event, AlarmChanged):
            await self._alarm(event)
        elif isinstance(event, CycleCompleted):
            await self._part(event)

    async def _run_changed(self, event: RunChanged) -> None:
        if not event.running:
            self._stopped_at = event.at
            self._stop_cause = "interlock" if self._interlocked else "fault" if self.open_alarm else "standby"
            await self._state("2" if self.open_alarm else "3")
            return
        stopped_s = event.at - self._stopped_at if self._stopped_at is not None else 0.0
        if not self.verified or stopped_s >= self.config.long_stop_s:
            await self._verify()
        self._stopped_at = None
        self._interlocked = False
        await self._state("1", self._down_reason() if stopped_s > self.config.down_reason_after_s else "")

    def _down_reason(self) -> str:
        """The operator's pick on the HMI when the map has one, else what stopped the machine."""
        picked = self.map.role("down_reason")
        if picked is not None and self.watcher.values.get(picked.name):
            return str(int(self.watcher.values[picked.name]))
        return self.config.down_reasons.get(self._stop_cause, "")

    async def _state(self, code: str, reason: str = "") -> None:
        if code == self.reported_state:
            return
        sent = await self.session.deliver("State", {"StateCode": code, "DownReason": reason})
        if sent.ok:
            self.reported_state = code

    async def _alarm(self, event: AlarmChanged) -> None:
        if event.code and not self.open_alarm:
            self.open_alarm = event.code
            body = {"Status": "1", "AlarmCode": str(event.code), "AlarmMsg": f"PLC alarm {event.code}"}
            await self.session.deliver("Alarm", {**body, "AlarmLevel": "H"})  # a PLC alarm code carries no level
            if self.reported_state in ("3", None) and not self.watcher.values.get(self.map.require("run").name):
                await self._state("2")
        elif not event.code and self.open_alarm:
            code, self.open_alarm = self.open_alarm, 0
            body = {"Status": "0", "AlarmCode": str(code), "AlarmMsg": f"PLC alarm {code}"}
            await self.session.deliver("Alarm", {**body, "AlarmLevel": "H"})
        # a second alarm while one is open is not reported: only the earliest (2.4)

    async def _part(self, event: CycleCompleted) -> None:
        self.parts += 1
        self.missed += event.missed
        if event.missed:
            log.warning("%s: %d parts finished unseen (no barcode to report)", self.map.name, event.missed)
        if not event.barcode:
            log.warning("%s: a part finished without a barcode; not reported", self.map.name)
            return
        ok = event.ok is not False
        for ref in self.config.report:
            sent = await self.session.deliver(ref, self._part_values(ref, event.barcode, ok))
            if not sent.ok:
                log.warning("%s: %s", event.barcode, sent.describe())
                break  # an inbound refused: the outbound would be refused too

    def _part_values(self, ref: str, barcode: str, ok: bool) -> dict[str, Any]:
        fields = set(self.session.profile.operation(ref).request_fields())
        values: dict[str, Any] = {"Sfc": barcode, "Passed": int(ok), "ParamList": [], "BindFeedingCodeList": []}
        values["NgList"] = [] if ok or not self.config.ng_code else [self.config.ng_code]
        return {k: v for k, v in values.items() if k in fields}

    async def _verify(self) -> None:
        """2.7 and 2.8, limits down to the PLC, then 2.9 with what the PLC holds (the gate before producing)."""
        found = await self.session.recipe(self.config.product)
        if found is None:  # no startup-parameter set for this process: nothing gates production
            self.verified = True
            return
        recipe, version, params = found
        by_code = {p.code: p for p in self.map.parameters}
        unknown = [str(p.get("paramcode")) for p in params if str(p.get("paramcode")) not in by_code]
        if unknown:
            log.warning("%s: the map has no signals for %s; not reported in 2.9", self.map.name, ", ".join(unknown))
        mine = [by_code[str(p.get("paramcode"))] for p in params if str(p.get("paramcode")) in by_code]
        for p, row in zip(mine, [r for r in params if str(r.get("paramcode")) in by_code], strict=True):
            await self.watcher.write(p.upper.name, float(row["paramupper"]))
            await self.watcher.write(p.lower.name, float(row["paramlower"]))
        held = await self.watcher.link.read([s for p in mine for s in (p.value, p.upper, p.lower)])
        rows = [
            {
                "ParamCode": p.code,
                "ParamValue": f"{held[p.value.name]:g}",
                "ParamUpper": f"{held[p.upper.name]:g}",
                "ParamLower": f"{held[p.lower.name]:g}",
            }
            for p in mine
        ]
        values = recipe_report(self.config.product, recipe, version, rows)
        sent = await self.session.deliver("Recipe", values)
        self.verified = sent.ok
        if not sent.ok:
            log.warning("%s: startup parameters refused: %s", self.session.config.equipment, sent.describe())

    # -- MES -> host (section 3) -------------------------------------------------------------------------
    async def _interlock(self, request: web.Request) -> web.Response:
        body = await _body(request)
        if body is None:
            return web.json_response({"Msg": "the body is not a JSON object"}, status=400)
        code = str(body.get("interlockcode") or "")
        self.interlocks.append({"at": time.time(), "code": code, "message": str(body.get("interlockmessage") or "")})
        if not self.watcher.connected:
            return web.json_response({"Msg": f"PLC {self.watcher.link.endpoint} not reachable"}, status=400)
        self._interlocked = True
        task = asyncio.create_task(self._check(int(code) if code.isdigit() else 0))
        self._checking.add(task)
        task.add_done_callback(self._checking.discard)
        return web.json_response({"Msg": "received"})

    async def _check(self, code: int) -> None:
        check = await self.watcher.check_interlock(code)
        self.checks.append(check)
        if self.on_check is not None:
            self.on_check(check)

    async def _batch(self, request: web.Request) -> web.Response:
        body = await _body(request)
        if body is None:
            return web.json_response({"Msg": "the body is not a JSON object"}, status=400)
        self.batches.append(str(body.get("batchsfc") or ""))
        return web.json_response({"Msg": "received"})

    def summary(self) -> dict[str, Any]:
        """What the station told the MES and how its PLC reacted, for the CLI and a run's report."""
        sent: list[Sent] = list(self.session.sent)
        per_op: dict[str, dict[str, int]] = {}
        for s in sent:
            row = per_op.setdefault(f"{s.section} {s.operation}", {"calls": 0, "ok": 0, "refused": 0, "no answer": 0})
            row["calls"] += 1
            row["ok" if s.ok else "no answer" if s.error else "refused"] += 1
        return {
            "equipment": self.session.config.equipment,
            "plc": self.watcher.link.endpoint,
            "section3": self.address,
            "parts": self.parts,
            "missed": self.missed,
            "plc_outages": self.watcher.outages,
            "mes_outages": self.session.outages,
            "calls": per_op,
            "interlocks": [c.describe() for c in self.checks],
            "interlocks_passed": sum(c.passed for c in self.checks),
            "interlocks_failed": sum(not c.passed for c in self.checks),
        }


async def _body(request: web.Request) -> dict[str, Any] | None:
    """A section-3 body with its names in lower case (the MES may send either casing), or None."""
    try:
        payload = await request.json()
    except ValueError:
        return None
    return lower_keys(payload) if isinstance(payload, dict) else None
