"""What watching a real PLC produces: events, the interlock check's result, and the back-off between retries.

Events carry the wall time they were observed (epoch seconds), so the line model can place them on its clock
and the report can put them beside the MES exchanges they caused.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential back-off between reconnection attempts, with a little jitter so that many stations that
    lost one switch do not all knock again in the same millisecond."""

    initial_s: float = 0.5
    factor: float = 2.0
    max_s: float = 30.0
    jitter: float = 0.1

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1, 2, ...)."""
        base = min(self.max_s, self.initial_s * self.factor ** max(attempt - 1, 0))
        if not self.jitter:
            return base
        return base * (1 + (rng or random).uniform(-self.jitter, self.jitter))


@dataclass(frozen=True, slots=True)
class LinkUp:
    at: float
    endpoint: str
    attempts: int
    down_s: float | None
    snapshot: dict[str, Any] = field(repr=False)
    kind = "link-up"

    def describe(self) -> str:
        after = f" after {self.down_s:.1f} s down, {self.attempts} attempts" if self.down_s is not None else ""
        return f"connected to {self.endpoint}{after}"


@dataclass(frozen=True, slots=True)
class LinkDown:
    at: float
    endpoint: str
    error: str
    attempt: int
    retry_in_s: float
    kind = "link-down"

    def describe(self) -> str:
        return f"link down: {self.error}; attempt {self.attempt}, retry in {self.retry_in_s:.2f} s"


@dataclass(frozen=True, slots=True)
class RunChanged:
    at: float
    running: bool
    kind = "run"

    def describe(self) -> str:
        return "run bit set: running" if self.running else "run bit dropped: stopped"


@dataclass(frozen=True, slots=True)
class CycleCompleted:
    at: float
    barcode: str
    count: int | None
    ok: bool | None
    missed: int = 0
    kind = "cycle"

    def describe(self) -> str:
        result = "" if self.ok is None else (" OK" if self.ok else " NG")
        count = f" #{self.count}" if self.count is not None else ""
        lost = f" ({self.missed} cycles missed between polls)" if self.missed else ""
        return f"cycle complete{count}: {self.barcode or '(no barcode)'}{result}{lost}"


@dataclass(frozen=True, slots=True)
class AlarmChanged:
    at: float
    code: int
    previous: int
    kind = "alarm"

    def describe(self) -> str:
        return f"alarm {self.code} raised" if self.code else f"alarm {self.previous} cleared"


@dataclass(frozen=True, slots=True)
class WatchdogChanged:
    at: float
    alive: bool
    still_s: float
    kind = "watchdog"

    def describe(self) -> str:
        if self.alive:
            return "PLC watchdog moves again"
        return f"PLC watchdog has not moved for {self.still_s:.1f} s: the PLC program may be stopped"


PlcEvent = LinkUp | LinkDown | RunChanged | CycleCompleted | AlarmChanged | WatchdogChanged


@dataclass(frozen=True, slots=True)
class InterlockCheck:
    """Interlock bit set -> run bit dropped: how long it took, or why it could not be measured.

    ``status`` is ``passed`` (dropped within the timeout), ``failed`` (still running at the timeout),
    ``not-running`` (nothing to stop when the interlock was set) or ``no-link`` (the PLC was not reachable).
    """

    status: str
    code: int
    timeout_s: float
    reaction_s: float | None = None
    resolution_s: float = 0.0
    detail: str = ""
    at: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def describe(self) -> str:
        if self.status == "passed":
            return (
                f"interlock {self.code}: run bit dropped after {self.reaction_s * 1000:.0f} ms "
                f"(limit {self.timeout_s * 1000:.0f} ms, resolution {self.resolution_s * 1000:.0f} ms): passed"
            )
        if self.status == "failed":
            return f"interlock {self.code}: still running after {self.timeout_s * 1000:.0f} ms: FAILED"
        return f"interlock {self.code}: {self.status}: {self.detail}"


async def cancel_and_wait(*tasks: asyncio.Task[Any] | None, timeout_s: float = 2.0) -> None:
    """Cancel tasks and wait until they have ended, cancelling again if a cancellation was swallowed.

    On Python 3.11 ``asyncio.wait_for`` can swallow a cancellation that races with its inner future's result,
    so a loop built on it may go on after ``cancel()``: a bare ``await task`` would then wait forever.
    """
    pending = {t for t in tasks if t is not None and not t.done()}
    for _ in range(10):
        if not pending:
            return
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=timeout_s / 10)
    for task in pending:
        log.warning("task %s did not end after being cancelled", task.get_name())
