"""The uplink's durable state in SQLite: consumption buckets, upload batches, and what register returned.

A bucket is one value to report: (data code, statType, statDate) with its kWh. It stays open while samples
arrive, is closed when its period ends, then joins exactly one batch. A batch is queued until the platform
acknowledges it (8.8: resent until success, queued after 3 resends); only then is it marked acknowledged, so a
crash or an outage loses nothing, and no value is ever in two batches, so nothing is sent twice. WAL mode, one
connection, used from the event loop's thread (each statement takes well under a millisecond).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bucket (
    data_code TEXT NOT NULL,
    stat_type INTEGER NOT NULL,
    stat_date TEXT NOT NULL,
    end_date TEXT NOT NULL,
    value REAL NOT NULL,
    closed INTEGER NOT NULL DEFAULT 0,
    batch_id INTEGER,
    PRIMARY KEY (data_code, stat_type, stat_date)
);
CREATE INDEX IF NOT EXISTS bucket_ready ON bucket (closed, batch_id);
CREATE TABLE IF NOT EXISTS batch (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued',
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    acked_at TEXT
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

Key = tuple[str, int, str]  # data code, statType, statDate (yyyy-MM-dd HH:mm:ss)


@dataclass(frozen=True, slots=True)
class Value:
    data_code: str
    stat_type: int
    stat_date: str
    value: float


class UplinkStore:
    def __init__(self, path: Path | str = ":memory:") -> None:
        self.path = str(path)
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self.late_samples = 0

    def close(self) -> None:
        self._db.close()

    # -- buckets ------------------------------------------------------------------------------------------
    def add(self, deltas: Iterable[tuple[Key, str, float]]) -> int:
        """Add kWh to open buckets (key, end of period, kWh); returns how many fell into closed ones (late)."""
        late = 0
        with self._db:
            self._db.execute("BEGIN")
            for (code, stat_type, stat_date), end, kwh in deltas:
                cur = self._db.execute(
                    "UPDATE bucket SET value = value + ? WHERE data_code = ? AND stat_type = ? AND stat_date = ?"
                    " AND closed = 0",
                    (kwh, code, stat_type, stat_date),
                )
                if cur.rowcount:
                    continue
                cur = self._db.execute(
                    "INSERT OR IGNORE INTO bucket (data_code, stat_type, stat_date, end_date, value)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (code, stat_type, stat_date, end, kwh),
                )
                late += 0 if cur.rowcount else 1
        self.late_samples += late
        return late

    def close_until(self, moment: str) -> int:
        """Close every open bucket whose period ended at or before ``moment``."""
        cur = self._db.execute("UPDATE bucket SET closed = 1 WHERE closed = 0 AND end_date <= ?", (moment,))
        return cur.rowcount

    def make_batches(self, created: str, max_values: int) -> list[int]:
        """Put every closed, unbatched value into new batches of at most ``max_values``; returns their ids."""
        rows = self._db.execute(
            "SELECT data_code, stat_type, stat_date FROM bucket WHERE closed = 1 AND batch_id IS NULL"
            " ORDER BY stat_type, stat_date, data_code"
        ).fetchall()
        ids = []
        with self._db:
            self._db.execute("BEGIN")
            for start in range(0, len(rows), max_values):
                batch_id = self._db.execute("INSERT INTO batch (created) VALUES (?)", (created,)).lastrowid
                assert batch_id is not None
                self._db.executemany(
                    "UPDATE bucket SET batch_id = ? WHERE data_code = ? AND stat_type = ? AND stat_date = ?",
                    [(batch_id, *row) for row in rows[start : start + max_values]],
                )
                ids.append(batch_id)
        return ids

    # -- batches ------------------------------------------------------------------------------------------
    def queued(self) -> list[int]:
        return [r[0] for r in self._db.execute("SELECT id FROM batch WHERE state = 'queued' ORDER BY id")]

    def values(self, batch_id: int) -> list[Value]:
        rows = self._db.execute(
            "SELECT data_code, stat_type, stat_date, value FROM bucket WHERE batch_id = ?"
            " ORDER BY stat_type, stat_date, data_code",
            (batch_id,),
        )
        return [Value(*row) for row in rows]

    def attempt(self, batch_id: int, error: str = "") -> None:
        self._db.execute("UPDATE batch SET attempts = attempts + 1, last_error = ? WHERE id = ?", (error, batch_id))

    def settle(self, batch_id: int, state: str, at: str, error: str = "") -> None:
        """Mark a batch acknowledged (``acked``) or set aside (``rejected``, EN-17)."""
        self._db.execute(
            "UPDATE batch SET state = ?, acked_at = ?, last_error = ? WHERE id = ?", (state, at, error, batch_id)
        )

    def batch(self, batch_id: int) -> dict[str, Any]:
        row = self._db.execute(
            "SELECT id, created, state, attempts, last_error, acked_at FROM batch WHERE id = ?", (batch_id,)
        ).fetchone()
        keys = ("id", "created", "state", "attempts", "last_error", "acked_at")
        return dict(zip(keys, row, strict=True)) if row else {}

    def counts(self) -> dict[str, int]:
        """Values by where they are: open, closed (not batched), queued, acked, rejected."""
        out = {"open": 0, "closed": 0, "queued": 0, "acked": 0, "rejected": 0}
        for state, n in self._db.execute(
            "SELECT CASE WHEN b.closed = 0 THEN 'open' WHEN b.batch_id IS NULL THEN 'closed' ELSE t.state END, COUNT(*)"
            " FROM bucket b LEFT JOIN batch t ON t.id = b.batch_id GROUP BY 1"
        ):
            out[str(state)] = int(n)
        out["batches_queued"] = len(self.queued())
        return out

    # -- what register and the version check returned -------------------------------------------------------
    def get(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def put(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def forget(self, *keys: str) -> None:
        self._db.executemany("DELETE FROM meta WHERE key = ?", [(k,) for k in keys])
