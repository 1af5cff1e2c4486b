"""The line's figures and the run's settings as a person reads them: labels with units, percentages as
percentages, nothing internal.

``twin.sim.kpi.Kpis`` (what ``twin run`` writes as ``line_kpis``) has a known shape, laid out here column
by column; keys this module does not know fall back to ``twin.report.kpis.blocks`` (shown by shape), so a
figure a later run adds is still shown.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from twin.report.kpis import Blocks, Table, blocks, fmt, label

#: summary.json's line KPIs not shown as such: the hourly output is a plot, the model's own calls repeat the
#: interface table, the window is a sentence, the line's name is in the title.
SKIP = ("hourly", "calls", "start_s", "end_s", "warmup_s", "line")


def _pct(v: Any) -> str:
    return f"{float(v) * 100:.1f} %" if isinstance(v, int | float) and not isinstance(v, bool) else "—"


def _count(v: Any) -> str:
    return fmt(int(v)) if isinstance(v, int | float) and not isinstance(v, bool) else fmt(v)


def _one(v: Any) -> str:
    return f"{float(v):,.1f}" if isinstance(v, int | float) and not isinstance(v, bool) else fmt(v)


def _per_hour(unit: str) -> Callable[[Any], str]:
    return lambda v: f"{float(v):,.0f} {unit}" if isinstance(v, int | float) else fmt(v)


#: key -> (label, format) for the line's cards, in this order.
CARDS: dict[str, tuple[str, Callable[[Any], str]]] = {
    "good_cells": ("good cells out", lambda v: f"{_count(v)} cells"),
    "cells_out": ("cells out", lambda v: f"{_count(v)} cells"),
    "cells_per_hour": ("output rate", _per_hour("cells / virtual h")),
    "yield_rty": ("rolled throughput yield", _pct),
    "yield": ("yield", _pct),
    "bottleneck": ("bottleneck (most active station)", str),
    "equipment": ("equipment", _count),
    "copies": ("copies of the line", _count),
    "initial_wip": ("cells in process at the start", _count),
    "alarms": ("alarms raised", _count),
    "refusals": ("MES refusals seen by the model", _count),
    "calls_per_hour": ("MES calls", _per_hour("calls / virtual h")),
}
#: Columns of the stations table: key -> (header, format).
STATION_COLUMNS: dict[str, tuple[str, Callable[[Any], str]]] = {
    "process": ("process", str),
    "count": ("equipment", _count),
    "made": ("made", _count),
    "good": ("good", _count),
    "ng": ("NG", _count),
    "held": ("held", _count),
    "availability": ("availability", _pct),
    "utilisation": ("utilisation", _pct),
    "active": ("active (busy, down or set up)", _pct),
    "oee": ("OEE", _pct),
}
BUFFER_COLUMNS: dict[str, tuple[str, Callable[[Any], str]]] = {
    "capacity": ("capacity (items)", lambda v: "unbounded" if v is None else _count(v)),
    "mean": ("mean (items)", _one),
    "peak": ("peak (items)", _count),
    "final": ("at the end (items)", _count),
}


def _records(
    title: str, items: Any, name_key: str, columns: Mapping[str, tuple[str, Callable[[Any], str]]], left: int = 1
) -> Table:
    rows = []
    for item in items:
        rows.append([str(item.get(name_key, "")), *(f(item[k]) if k in item else "—" for k, (_, f) in columns.items())])
    return Table(title, [name_key if name_key != "id" else "station", *(h for h, _ in columns.values())], rows, 0, left)


def line_blocks(kpis: Mapping[str, Any]) -> Blocks:
    """Cards with units, then the stations and buffers tables; unknown keys shown by shape after them."""
    out = Blocks()
    for key, (name, f) in CARDS.items():
        if key in kpis and kpis[key] is not None:
            out.cards.append((name, f(kpis[key])))
    stations, buffers = kpis.get("stations"), kpis.get("buffers")
    if isinstance(stations, list) and all(isinstance(s, Mapping) for s in stations):
        out.tables.append(_records("Stations (over the KPI window)", stations, "id", STATION_COLUMNS, 2))
    if isinstance(buffers, list) and all(isinstance(b, Mapping) for b in buffers):
        out.tables.append(_records("Buffers (work in process between stations)", buffers, "name", BUFFER_COLUMNS))
    known = (*CARDS, *SKIP, "stations", "buffers", "archetype")
    rest = blocks({k: v for k, v in kpis.items() if k not in known})
    out.cards += rest.cards
    out.tables += rest.tables
    return out


def window(kpis: Mapping[str, Any], fmt_duration: Callable[[float], str]) -> str | None:
    """The KPI window as a sentence: from where to where in virtual time, and the warm-up left out."""
    start, end = kpis.get("start_s"), kpis.get("end_s")
    if not isinstance(start, int | float) or not isinstance(end, int | float):
        return None
    text = f"Measured over virtual time {fmt_duration(start)} to {fmt_duration(end)}"
    warm = kpis.get("warmup_s")
    if isinstance(warm, int | float) and warm > 0:
        text += f" (the first {fmt_duration(warm)} are warm-up, left out)"
    return text + "."


#: settings.json key -> label; None: internal, not shown.
SETTINGS: dict[str, str | None] = {
    "line": "line",
    "line_file": "line file",
    "target": "MES",
    "mes": "MES",
    "target_url": "MES address",
    "profile": "MES profile",
    "mode": "pace",
    "speed": None,
    "duration_s": "virtual duration",
    "seed": "seed",
    "scale": "copies of the line",
    "equipment": "equipment",
    "load": "load shape",
    "mes_args": "embedded MES options",
    "exchange_log": None,
}


def settings_rows(settings: Mapping[str, Any], fmt_duration: Callable[[float], str]) -> list[tuple[str, str]]:
    """The run's settings as label and value, in a reading order; internal keys left out."""
    out: list[tuple[str, str]] = []
    for key in [*(k for k in SETTINGS if k in settings), *(k for k in settings if k not in SETTINGS)]:
        name = SETTINGS.get(key, label(key))
        if name is None:
            continue
        value = settings[key]
        if key == "duration_s" and isinstance(value, int | float):
            text = fmt_duration(float(value))
        elif key == "load" and isinstance(value, Mapping):
            text = str(value.get("text") or value.get("shape") or fmt(value))
        elif isinstance(value, list):
            text = " ".join(str(v) for v in value) or "none"
        elif key.endswith("_s") and isinstance(value, int | float):
            name, text = label(key[:-2]), fmt_duration(float(value))
        else:
            text = fmt(value, key)
        out.append((name, text))
    return out
