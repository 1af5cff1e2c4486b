"""Turn the run's free-form extras (line KPIs, output cost, settings) into cards and tables for the page.

The run adds what it measured under keys of its own (``line``, ``output_cost_of_mes_latency`` ...), and
those keys grow as the twin does. Rather than a template per key, values are shown by shape: a number or
a word is a card, a mapping of numbers a two-column table, a mapping of mappings (per-station OEE) or a
list of mappings a table with one column per inner key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Keys whose values between 0 and 1 are fractions shown as percent.
FRACTION_WORDS = (
    "yield",
    "oee",
    "utilisation",
    "utilization",
    "availability",
    "performance",
    "quality",
    "rate",
    "ratio",
    "share",
    "fraction",
)
MAX_TABLE_ROWS = 60
#: What a reader looks for first among the line's KPIs (summary.json's keys are sorted alphabetically).
FIRST = ("good_cells", "cells_out", "cells_per_hour", "yield_rty", "yield", "bottleneck", "oee", "equipment")
#: Keys that name a record of a list (the first every record has names the rows).
NAME_KEYS = ("id", "name", "operation", "station", "equipment", "code")


def label(key: str) -> str:
    return key.replace("_", " ")


def is_fraction(key: str) -> bool:
    k = key.lower()
    return any(w in k for w in FRACTION_WORDS) and "per_s" not in k and "per_hour" not in k


def fmt(value: Any, key: str = "") -> str:
    """A value as a person reads it: thousands separated, fractions as percent, 4 significant digits."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        if key and is_fraction(key) and 0.0 <= value <= 1.0:
            return f"{value * 100:.2f} %"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return ", ".join(fmt(v) for v in value[:12]) + (f" … ({len(value)} values)" if len(value) > 12 else "")
    if isinstance(value, Mapping):
        return ", ".join(f"{label(str(k))} {fmt(v, str(k))}" for k, v in list(value.items())[:8])
    return str(value)


@dataclass(slots=True)
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]]
    more: int = 0  # rows left out
    left: int = 1  # leading columns of names (left-aligned); the rest are figures


@dataclass(slots=True)
class Blocks:
    cards: list[tuple[str, str]] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, str | int | float | bool)


def _table(title: str, records: list[tuple[str, Mapping[str, Any]]]) -> Table:
    columns: list[str] = []
    for _, rec in records:
        columns += [str(k) for k in rec if str(k) not in columns]
    rows = [[name, *(fmt(rec.get(c), c) for c in columns)] for name, rec in records[:MAX_TABLE_ROWS]]
    return Table(label(title), ["", *(label(c) for c in columns)], rows, max(0, len(records) - MAX_TABLE_ROWS))


def _named(records: list[Mapping[str, Any]]) -> list[tuple[str, Mapping[str, Any]]]:
    """Rows named by the key every record has (a station's ``id``, a call's ``operation``), else numbered."""
    for key in NAME_KEYS:
        if records and all(isinstance(r.get(key), str | int) for r in records):
            return [(str(r[key]), {k: v for k, v in r.items() if k != key}) for r in records]
    return [(str(i + 1), r) for i, r in enumerate(records)]


def _ordered(data: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The headline figures first (``FIRST``, in that order), then the rest as the run wrote them."""
    first = [k for k in FIRST if k in data]
    return [(k, data[k]) for k in first] + [(k, v) for k, v in data.items() if k not in first]


def blocks(data: Mapping[str, Any], *, skip: tuple[str, ...] = ()) -> Blocks:
    """Cards for scalars, tables for mappings and lists of mappings; keys in ``skip`` are left out."""
    out = Blocks()
    for key, value in _ordered(data):
        if key in skip:
            continue
        if _scalar(value) or (isinstance(value, list) and all(_scalar(v) for v in value)):
            out.cards.append((label(key), fmt(value, key)))
        elif isinstance(value, Mapping) and all(_scalar(v) for v in value.values()):
            out.tables.append(Table(label(key), ["", ""], [[label(str(k)), fmt(v, key)] for k, v in value.items()]))
        elif isinstance(value, Mapping) and all(isinstance(v, Mapping) for v in value.values()):
            out.tables.append(_table(key, [(str(k), v) for k, v in value.items()]))
        elif isinstance(value, list) and all(isinstance(v, Mapping) for v in value):
            out.tables.append(_table(key, _named(value)))
        else:
            out.cards.append((label(key), fmt(value, key)))
    return out


def flatten(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Settings as ``a.b: value`` lines."""
    out: list[tuple[str, str]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out += flatten(value, name + ".")
        else:
            out.append((name, fmt(value, str(key))))
    return out
