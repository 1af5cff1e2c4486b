"""What the energy platform keeps, in SQLite: registrations, enterprises, meters and the collected values.

A value is keyed by (enterprise, dataCode, statType, statDate): receiving it again replaces it and counts a
re-receipt, so a test can tell a value lost (absent), stored twice (impossible by key) and sent twice (received
more than once) apart.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson

_SCHEMA = """
CREATE TABLE IF NOT EXISTS registration (
    province_id TEXT PRIMARY KEY, region TEXT NOT NULL, ascription TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS enterprise (code TEXT PRIMARY KEY, config BLOB NOT NULL, updated TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS metering (code TEXT PRIMARY KEY, meters BLOB NOT NULL, updated TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS energy_value (
    enterprise TEXT NOT NULL,
    data_code TEXT NOT NULL,
    stat_type INTEGER NOT NULL,
    stat_date TEXT NOT NULL,
    value REAL NOT NULL,
    input_type INTEGER NOT NULL,
    scope INTEGER NOT NULL,
    valid INTEGER NOT NULL,
    upload_date TEXT NOT NULL,
    received INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (enterprise, data_code, stat_type, stat_date)
);
"""


class PlatformStore:
    def __init__(self, path: Path | str = ":memory:") -> None:
        self._db = sqlite3.connect(str(path), isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def register(self, province_id: str, region: str, ascription: str) -> None:
        self._db.execute("INSERT INTO registration VALUES (?, ?, ?)", (province_id, region, ascription))

    def registered(self, province_id: str) -> bool:
        return (
            self._db.execute("SELECT 1 FROM registration WHERE province_id = ?", (province_id,)).fetchone() is not None
        )

    def forget_registrations(self) -> None:
        """A platform that lost its registrations (to see the uplink register again, EN-20)."""
        self._db.execute("DELETE FROM registration")

    def save_config(self, code: str, config: dict[str, Any], updated: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO enterprise VALUES (?, ?, ?)", (code, orjson.dumps(config), updated))

    def config(self, code: str) -> tuple[dict[str, Any], str] | None:
        row = self._db.execute("SELECT config, updated FROM enterprise WHERE code = ?", (code,)).fetchone()
        return (orjson.loads(row[0]), str(row[1])) if row else None

    def save_metering(self, code: str, meters: list[dict[str, Any]], updated: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO metering VALUES (?, ?, ?)", (code, orjson.dumps(meters), updated))

    def save_values(self, enterprise: str, items: list[dict[str, Any]]) -> None:
        rows = [
            (
                enterprise,
                str(v["dataCode"]),
                int(v["statType"]),
                str(v["statDate"]),
                float(v["dataValue"]),
                int(v["inputType"]),
                int(v["scope"]),
                1 if v["valid"] else 0,
                str(v["uploadDate"]),
            )
            for v in items
        ]
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT INTO energy_value (enterprise, data_code, stat_type, stat_date, value, input_type, scope,"
                " valid, upload_date) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (enterprise, data_code, stat_type, stat_date) DO UPDATE SET value = excluded.value,"
                " upload_date = excluded.upload_date, received = received + 1",
                rows,
            )

    def day_values(self, enterprise: str, stat_type: int, day: str) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT data_code, value, input_type, stat_type, stat_date, upload_date, scope, valid FROM energy_value"
            " WHERE enterprise = ? AND stat_type = ? AND substr(stat_date, 1, 10) = ? ORDER BY stat_date, data_code",
            (enterprise, stat_type, day),
        )
        keys = ("dataCode", "dataValue", "inputType", "statType", "statDate", "uploadDate", "scope", "valid")
        return [dict(zip(keys, (*row[:7], bool(row[7])), strict=True)) for row in rows]

    def values(self) -> dict[tuple[str, int, str], tuple[float, int]]:
        """Every stored value: (dataCode, statType, statDate) -> (kWh, times received)."""
        rows = self._db.execute("SELECT data_code, stat_type, stat_date, value, received FROM energy_value")
        return {(r[0], int(r[1]), r[2]): (float(r[3]), int(r[4])) for r in rows}

    def counts(self) -> dict[str, int]:
        one = self._db.execute("SELECT COUNT(*), COALESCE(SUM(received - 1), 0) FROM energy_value").fetchone()
        return {
            "registrations": self._db.execute("SELECT COUNT(*) FROM registration").fetchone()[0],
            "enterprises": self._db.execute("SELECT COUNT(*) FROM enterprise").fetchone()[0],
            "meters": sum(len(orjson.loads(r[0])) for r in self._db.execute("SELECT meters FROM metering")),
            "values": int(one[0]),
            "received_again": int(one[1]),
        }
