"""Watch a real PLC: poll its image, turn changes into events, write the interlock and time the reaction.

Cycles are counted from the cycle counter when the map has one (a pulse shorter than the poll period is then
never lost, and cycles that happened between two polls are reported as ``missed``); from the rising edge of
the cycle-complete pulse otherwise. A connection that cannot be made or breaks is reported (``LinkDown``),
retried with back-off, and reported again when it is back (``LinkUp``, with how long it was down): nothing a
PLC or the network does raises out of the watcher, so a line run never crashes because of one station.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from twin.hil.events import (
    AlarmChanged,
    Backoff,
    CycleCompleted,
    InterlockCheck,
    LinkDown,
    LinkUp,
    PlcEvent,
    RunChanged,
    WatchdogChanged,
    cancel_and_wait,
)
from twin.hil.image import ParamLimits
from twin.hil.iomap import INT_RANGES
from twin.hil.link import PlcError, PlcLink

log = logging.getLogger(__name__)

EventListener = Callable[[PlcEvent], None]
WATCHDOG_PERIODS = 3  # the watchdog is stale after this many of its periods without moving
PART_READS = 3  # reads of a finished part's signals until its counter stands still


class PlcWatcher:
    """Polls one PLC through a link and reports what happens; runs as a background task."""

    def __init__(
        self,
        link: PlcLink,
        *,
        on_event: EventListener | None = None,
        poll_s: float | None = None,
        backoff: Backoff | None = None,
        seed: int | None = None,
    ) -> None:
        self.link = link
        self.map = link.map
        self.poll_s = poll_s if poll_s is not None else self.map.poll_s
        self.backoff = backoff or Backoff()
        self.connected = False
        self.values: dict[str, Any] = {}
        self.recent: deque[PlcEvent] = deque(maxlen=1000)
        self.checks: list[InterlockCheck] = []
        self.outages = 0
        self._listeners: list[EventListener] = [on_event] if on_event else []
        self._rng = random.Random(seed)
        self._task: asyncio.Task[None] | None = None
        self._watchdog_moved = time.monotonic()
        self._watchdog_alive = True

    # -- lifecycle ------------------------------------------------------------------------------------
    def add_listener(self, listener: EventListener) -> None:
        self._listeners.append(listener)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"watch {self.link.endpoint}")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        await self.link.close()
        self.connected = False

    async def __aenter__(self) -> PlcWatcher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _emit(self, event: PlcEvent) -> None:
        self.recent.append(event)
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a listener's bug must not stop the watching
                log.exception("event listener failed on %s", event)

    # -- the loop -------------------------------------------------------------------------------------
    async def _run(self) -> None:
        attempt, down_since = 0, None
        while True:
            try:
                await self.link.connect()
                snapshot = await self.link.read_all()
            except PlcError as exc:
                attempt += 1
                down_since = down_since or time.time()
                await self._down(str(exc), attempt)
                continue
            self.connected = True
            self._watchdog_moved = time.monotonic()
            down_s = time.time() - down_since if down_since is not None else None
            self._emit(LinkUp(time.time(), self.link.endpoint, attempt + 1, down_s, dict(snapshot)))
            self._compare(self.values, snapshot, reconnect=bool(self.values))
            self.values = snapshot
            attempt, down_since = 0, None
            try:
                await self._poll()
            except PlcError as exc:
                self.connected = False
                self.outages += 1
                attempt, down_since = 1, time.time()
                await self._down(str(exc), attempt)

    async def _down(self, error: str, attempt: int) -> None:
        delay = self.backoff.delay(attempt, self._rng)
        self._emit(LinkDown(time.time(), self.link.endpoint, error, attempt, delay))
        log.info("PLC link down: %s; retry %d in %.2f s", error, attempt, delay)  # also a LinkDown event
        await self.link.close()
        await asyncio.sleep(delay)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            current = await self._read()
            self._compare(self.values, current)
            self.values = current

    async def _read(self) -> dict[str, Any]:
        """One poll in which the part's barcode and result belong to the count read with them.

        A poll takes one request per table, so a part finished between two of them shows a new count with the
        previous part's result. When the count moved, the part's signals are read again with the counter until
        the counter stands still across the read (a sequence-lock read; bounded: ``PART_READS`` tries).
        """
        current = await self.link.read_all()
        counter = self.map.role("cycle_counter")
        if counter is None or not self.values or current[counter.name] == self.values.get(counter.name):
            return current
        part = [s for s in (self.map.role("barcode"), self.map.role("cycle_ok")) if s is not None]
        for _ in range(PART_READS):
            again = await self.link.read([*part, counter])
            settled = again[counter.name] == current[counter.name]
            current = {**current, **again}
            if settled:
                break
        return current

    def _compare(self, before: dict[str, Any], now: dict[str, Any], *, reconnect: bool = False) -> None:
        """Events for what changed between two reads (nothing on the very first read but the baseline)."""
        at = time.time()
        if not before:
            self._watchdog_moved = time.monotonic()
            return
        alarm = self.map.role("alarm_code")  # an alarm seen with the stop is its cause: reported first
        if alarm is not None and before.get(alarm.name) != now.get(alarm.name):
            self._emit(AlarmChanged(at, int(now[alarm.name]), int(before.get(alarm.name) or 0)))
        run = self.map.role("run")
        if run is not None and before.get(run.name) != now.get(run.name):
            self._emit(RunChanged(at, bool(now[run.name])))
        self._cycles(before, now, at, reconnect)
        self._watchdog(before, now, at)

    def _cycles(self, before: dict[str, Any], now: dict[str, Any], at: float, reconnect: bool) -> None:
        barcode_sig, ok_sig = self.map.role("barcode"), self.map.role("cycle_ok")
        barcode = str(now[barcode_sig.name]) if barcode_sig is not None else ""
        ok = bool(now[ok_sig.name]) if ok_sig is not None else None
        counter = self.map.role("cycle_counter")
        if counter is not None:
            old, new = int(before[counter.name]), int(now[counter.name])
            low, high = INT_RANGES.get(counter.type, (0, 2**32 - 1))
            delta = (new - old) % (high - low + 1)
            if delta == 0:
                return
            if delta > (high - low) // 2:
                log.info("PLC %s: cycle counter went back from %d to %d (reset)", self.link.endpoint, old, new)
                return
            if reconnect:
                log.warning("PLC %s: %d cycles finished while the link was down", self.link.endpoint, delta)
            self._emit(CycleCompleted(at, barcode, new, ok, missed=delta - 1))
            return
        pulse = self.map.role("cycle_pulse")
        if pulse is not None and now[pulse.name] and not before.get(pulse.name):
            self._emit(CycleCompleted(at, barcode, None, ok))

    def _watchdog(self, before: dict[str, Any], now: dict[str, Any], at: float) -> None:
        dog = self.map.role("watchdog")
        if dog is None:
            return
        if before.get(dog.name) != now.get(dog.name):
            self._watchdog_moved = time.monotonic()
            if not self._watchdog_alive:
                self._watchdog_alive = True
                self._emit(WatchdogChanged(at, True, 0.0))
            return
        still = time.monotonic() - self._watchdog_moved
        if self._watchdog_alive and still > WATCHDOG_PERIODS * self.map.watchdog_s:
            self._watchdog_alive = False
            self._emit(WatchdogChanged(at, False, still))

    # -- what the twin asks of the PLC ----------------------------------------------------------------
    def read_limits(self) -> dict[str, ParamLimits]:
        """Startup parameters as last read (for 2.9's ParamList)."""
        if not self.values:
            return {}
        return {
            p.code: ParamLimits(p.code, self.values[p.value.name], self.values[p.upper.name], self.values[p.lower.name])
            for p in self.map.parameters
        }

    async def write(self, name: str, value: Any) -> None:
        """Write one host-owned value (limits after 2.8, ...); ``PlcError`` if the PLC cannot take it."""
        sig = self.map.signal(name)
        if not sig.host_writable:
            raise PlcError(f"{sig.name} ({sig.where}) belongs to the PLC; the map gives the host no right to write it")
        await self.link.write(sig, value)

    async def check_interlock(self, code: int = 0, *, timeout_s: float | None = None) -> InterlockCheck:
        """Set the interlock (and its code) and time how long the PLC takes to drop its run bit."""
        timeout = timeout_s if timeout_s is not None else self.map.interlock_timeout_s
        run, bit, code_sig = self.map.require("run"), self.map.require("interlock"), self.map.role("interlock_code")
        step = min(self.poll_s, 0.02)
        started = time.time()
        try:
            running = (await self.link.read([run]))[run.name]
            if code_sig is not None:
                await self.link.write(code_sig, code)
            t0 = time.monotonic()
            await self.link.write(bit, True)
            if not running:
                detail = "run bit was already 0"
                return self._record(InterlockCheck("not-running", code, timeout, None, step, detail, started))
            while True:
                running = (await self.link.read([run]))[run.name]
                elapsed = time.monotonic() - t0
                if not running:
                    return self._record(InterlockCheck("passed", code, timeout, elapsed, step, "", started))
                if elapsed >= timeout:
                    detail = f"run bit still 1 after {elapsed:.2f} s"
                    return self._record(InterlockCheck("failed", code, timeout, None, step, detail, started))
                await asyncio.sleep(step)
        except PlcError as exc:
            return self._record(InterlockCheck("no-link", code, timeout, None, step, str(exc), started))

    def _record(self, check: InterlockCheck) -> InterlockCheck:
        self.checks.append(check)
        (log.info if check.passed else log.warning)("PLC %s: %s", self.link.endpoint, check.describe())
        return check

    async def release_interlock(self) -> None:
        """Clear the interlock bit (and code) once the MES has released it."""
        code_sig = self.map.role("interlock_code")
        await self.link.write(self.map.require("interlock"), False)
        if code_sig is not None:
            await self.link.write(code_sig, 0)
