"""The MES's own calls to equipment, run in the background: interlocks once the result that fired them
is committed, electrolyte batches on request or on a schedule. Each is recorded (``interlocks`` and
``pushes`` tables) first as pending, in the same commit as its cause, then with its outcome."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from twin.mes.counters import Counters
from twin.mes.equipment import EquipmentClient, Outcome
from twin.mes.interlock import Firing
from twin.mes.state import MesState
from twin.mes.store import Store, Tx

log = logging.getLogger(__name__)

RECORD_INTERLOCK = (
    "INSERT INTO interlocks (id, at, code, equipment, detector, address, message, outcome)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, 'pending')"
)
FINISH_INTERLOCK = "UPDATE interlocks SET outcome = ?, detail = ?, finished_at = ? WHERE id = ?"
INTERLOCK_COLUMNS = (
    "id",
    "at",
    "code",
    "equipment",
    "detector",
    "address",
    "message",
    "outcome",
    "detail",
    "finished_at",
)
RECORD_PUSH = "INSERT INTO pushes (id, at, equipment, batch_sfc, address, outcome, detail) VALUES (?, ?, ?, ?, ?, ?, ?)"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Callouts:
    def __init__(self, client: EquipmentClient, store: Store, state: MesState, metrics: Counters) -> None:
        self.client = client
        self.store = store
        self.state = state
        self.metrics = metrics
        self.tasks: set[asyncio.Task[Any]] = set()

    def record(self, firings: Iterable[Firing], tx: Tx) -> list[tuple[int, Firing]]:
        """Write the fired interlocks as pending into the request's own commit."""
        numbered = []
        for firing in firings:
            self.state.interlock_id += 1
            address = self.client.addresses.get(firing.equipment, "")
            tx.add(
                RECORD_INTERLOCK,
                (
                    self.state.interlock_id,
                    firing.at,
                    firing.code,
                    firing.equipment,
                    firing.detector,
                    address,
                    firing.message,
                ),
            )
            numbered.append((self.state.interlock_id, firing))
        return numbered

    def send(self, numbered: list[tuple[int, Firing]]) -> None:
        for ident, firing in numbered:
            self._spawn(self._send_interlock(ident, firing))

    async def _send_interlock(self, ident: int, firing: Firing) -> None:
        outcome = await self.client.send_interlock(firing.equipment, firing.code, firing.message)
        self.metrics.interlocks[(firing.code, outcome.outcome)] += 1
        if outcome.outcome != "delivered":
            log.warning("interlock %s to %s: %s %s", firing.code, firing.equipment, outcome.outcome, outcome.detail)
        tx = Tx()
        tx.add(FINISH_INTERLOCK, (outcome.outcome, outcome.detail, _now(), ident))
        await self.store.commit(tx)

    async def push_batch(self, batch_sfc: str, equipment: list[str]) -> list[dict[str, Any]]:
        """3.2 to each filling machine at once; the batch becomes current where it was delivered."""
        outcomes: list[Outcome] = await asyncio.gather(*(self.client.send_batch(e, batch_sfc) for e in equipment))
        tx = Tx()
        rows = []
        for code, outcome in zip(equipment, outcomes, strict=True):
            self.state.push_id += 1
            self.metrics.pushes[outcome.outcome] += 1
            tx.add(
                RECORD_PUSH,
                (self.state.push_id, _now(), code, batch_sfc, outcome.address, outcome.outcome, outcome.detail),
            )
            if outcome.outcome == "delivered":
                equip = self.state.equip(code)
                equip.electrolyte = batch_sfc
                equip.save(tx)
            rows.append(
                {
                    "equipment": code,
                    "batchSfc": batch_sfc,
                    "address": outcome.address,
                    "outcome": outcome.outcome,
                    "detail": outcome.detail,
                }
            )
        await self.store.commit(tx)
        return rows

    async def interlocks(self, limit: int | None = None, *, newest_first: bool = False) -> list[dict[str, Any]]:
        """The recorded interlocks with their outcome ("pending" until the call to the equipment ends)."""
        order = "DESC" if newest_first else "ASC"
        sql = f"SELECT {', '.join(INTERLOCK_COLUMNS)} FROM interlocks ORDER BY id {order}"
        rows = await self.store.query(sql + " LIMIT ?", (limit,)) if limit else await self.store.query(sql)
        return [dict(zip(INTERLOCK_COLUMNS, row, strict=True)) for row in rows]

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("MES call-out failed: %r", task.exception())

    async def close(self) -> None:
        """Let running call-outs finish (each is bounded by the client timeout), then stop."""
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=self.client.timeout.total or 5.0)
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
