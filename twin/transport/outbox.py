"""The durable local queue a host keeps while the MES is offline (spec 1.5.8 offline mode, 1.5.9 re-upload).

What an equipment owes the MES while it cannot reach it (inbound/outbound results, parameters, alarms)
is appended here, in SQLite (WAL), and re-uploaded in order when the MES returns. The order is the order the
records were *made* (``seq``), not the order they were appended: a record whose send timed out is appended
after newer ones that were queued while it waited, and must still go first. An item is removed only once the
MES acknowledged it, so nothing is lost; the drain sends items strictly in order and never has two of them in
flight.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    equipment TEXT NOT NULL,
    operation TEXT NOT NULL,
    body BLOB NOT NULL,
    virtual_s REAL NOT NULL,
    queued_wall REAL NOT NULL,
    seq INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS outbox_by_equipment ON outbox (equipment, seq, id);
CREATE INDEX IF NOT EXISTS outbox_by_seq ON outbox (seq, id);
"""
_COLUMNS = "id, equipment, operation, body, virtual_s, queued_wall, seq"


@dataclass(frozen=True, slots=True)
class Owed:
    id: int
    equipment: str
    operation: str
    body: dict[str, Any]
    virtual_s: float
    queued_wall: float
    seq: int = 0


class Outbox:
    """Owed MES calls per equipment, durable across a crash of the twin."""

    def __init__(self, path: Path | str = ":memory:") -> None:
        self.path = str(path)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        self.appended = 0
        self.acked = 0

    def append(
        self, equipment: str, operation: str, body: dict[str, Any], *, virtual_s: float, wall: float, seq: int = 0
    ) -> int:
        """Keep one owed call; ``seq`` is its place in the order the host made its records."""
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO outbox (equipment, operation, body, virtual_s, queued_wall, seq)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (equipment, operation, orjson.dumps(body), virtual_s, wall, seq),
            )
        self.appended += 1
        return int(cur.lastrowid or 0)

    def next_for(self, equipment: str) -> Owed | None:
        """The oldest item one equipment owes, or None."""
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM outbox WHERE equipment = ? ORDER BY seq, id LIMIT 1", (equipment,)
            ).fetchone()
        return _owed(row) if row else None

    def oldest(self) -> Owed | None:
        """The oldest item any equipment owes (the drain keeps the line's order across stations)."""
        with self._lock:
            row = self._db.execute(f"SELECT {_COLUMNS} FROM outbox ORDER BY seq, id LIMIT 1").fetchone()
        return _owed(row) if row else None

    def ack(self, item: Owed) -> None:
        """The MES acknowledged the item: forget it."""
        with self._lock:
            self._db.execute("DELETE FROM outbox WHERE id = ?", (item.id,))
        self.acked += 1

    def last_seq(self) -> int:
        """The highest place kept (a host that restarts on its outbox goes on from there)."""
        with self._lock:
            return int(self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM outbox").fetchone()[0])

    def owed_by(self, equipment: str) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM outbox WHERE equipment = ?", (equipment,)).fetchone()[0])

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def __iter__(self) -> Iterator[Owed]:
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM outbox ORDER BY seq, id").fetchall()
        return iter([_owed(r) for r in rows])

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _owed(row: tuple[Any, ...]) -> Owed:
    return Owed(int(row[0]), row[1], row[2], orjson.loads(row[3]), float(row[4]), float(row[5]), int(row[6]))
