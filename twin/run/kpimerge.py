"""The line KPIs of a sharded run of one line: its shards' KPIs (``twin.sim.kpi.Kpis.to_dict``) as one line's.

Counts add (cells, calls, alarms, equipment, WIP); a station's ratios (OEE, utilisation, availability, active
share) are the means of the shards' weighted by their equipment, as they would be over one model with every
copy; the yield is recomputed from the stations' good and NG counts as ``twin.sim.kpi`` does, and the bottleneck
is again the station with the highest active share. Buffers add their capacity, WIP at the end, mean and peak
(the peak of a sum is at most the sum of the peaks: an upper bound, said so by its name in the report).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SUMS = ("alarms", "good_cells", "cells_per_hour", "calls_per_hour", "copies", "equipment", "initial_wip", "refusals")
RATIOS = ("active", "availability", "oee", "utilisation")


def merge_kpis(parts: list[Mapping[str, Any]]) -> dict[str, Any] | None:
    """One line's KPIs from its shards' (None if there are none, or they are of different lines)."""
    parts = [p for p in parts if isinstance(p, Mapping) and p.get("stations")]
    if not parts or len({p.get("line") for p in parts}) != 1:
        return None
    first = parts[0]
    out: dict[str, Any] = {k: v for k, v in first.items() if k not in ("stations", "buffers", "calls", *SUMS)}
    for key in SUMS:
        out[key] = sum(p.get(key, 0) or 0 for p in parts)
    out["stations"] = _stations(parts)
    rty = 1.0
    for st in out["stations"]:
        if st["good"] + st["ng"]:
            rty *= st["good"] / (st["good"] + st["ng"])
    out["yield_rty"] = rty
    candidates = [s for s in out["stations"] if s.get("archetype") != "warehouse"]
    out["bottleneck"] = max(candidates, key=lambda s: s["active"])["id"] if candidates else ""
    out["buffers"] = _by_key(parts, "buffers", "name", ("capacity", "final", "mean", "peak"))
    out["calls"] = _by_key(parts, "calls", "operation", ("peak_hour", "per_hour", "total"))
    return out


def _stations(parts: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    for part in parts:
        for st in part["stations"]:
            into = merged.get(st["id"])
            if into is None:
                merged[st["id"]] = {**st, **{r: st.get(r, 0.0) * st.get("count", 1) for r in RATIOS}}
                continue
            for key in ("count", "made", "good", "ng", "held"):
                into[key] = into.get(key, 0) + st.get(key, 0)
            for r in RATIOS:
                into[r] += st.get(r, 0.0) * st.get("count", 1)
    for st in merged.values():
        for r in RATIOS:
            st[r] = st[r] / max(st.get("count", 1), 1)
    return list(merged.values())


def _by_key(parts: list[Mapping[str, Any]], field: str, key: str, sums: tuple[str, ...]) -> list[dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    for part in parts:
        for item in part.get(field, []):
            into = merged.get(item[key])
            if into is None:
                merged[item[key]] = dict(item)
                continue
            for s in sums:
                if isinstance(item.get(s), int | float) and isinstance(into.get(s), int | float):
                    into[s] += item[s]
    return list(merged.values())
