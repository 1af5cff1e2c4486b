"""What a run adds to ``summary.json`` besides the traffic, in the shapes the report draws and checks.

A run puts its extras in ``summary.json`` (``RunFolder.extra``). The report reads them under two spellings:
the plain one documented here, and the one ``twin run`` against an MES writes (``twin.run.networked``:
``line_kpis``, ``offline_compare``, ``link.outages`` with ISO times, interlocks with ``reaction_ms``).
Each reader returns None when the run recorded nothing of the kind, so the report can say what it left out.

- line KPIs: ``line`` (a mapping), ``line_kpis`` or ``kpis`` (``twin.sim.kpi.Kpis.to_dict``);
- good cells out per virtual hour: ``hourly`` or ``<line KPIs>.hourly``, numbers or ``{"hour", "cells_out"}``;
- what the MES latency cost the line: ``output_cost_of_mes_latency`` or ``offline_compare``;
- the virtual time covered: ``virtual_s`` or ``run.virtual_s``;
- interlocks: a list of ``{"code", "equipment", ...}`` with the reaction time as ``reaction_s`` (null: the
  equipment never stopped), ``decision_to_stop_ms`` (MES decision to stopped) or ``reaction_ms`` (receipt at
  the equipment to stopped), the first present in that order;
- outages: ``outages`` or ``link.outages``, each with its start and end (``start_wall``/``end_wall`` epoch
  seconds, or ``started``/``ended`` ISO times), ``backlog_max`` (or ``max_backlog``), ``drain_s``, ``queued``.
  Exchanges re-sent after an outage keep their original intended time in the log: that makes the backlog.
- the twin's own pace: ``pace`` (``twin.sim.pace.PaceGovernor.report``: ``saturated``, ``speed_asked``,
  ``speed_achieved``, ``saturated_s``...) or the same keys at the top; a saturated run's figures are the twin's
  limit, and the report's verdict says so;
- controls of the live web view (``twin run --web``): ``controls``, each ``{"at": epoch s, "control", "args",
  "ok"}``; the accepted ones are marked on the time plots.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

LINE_KEYS = ("line", "line_kpis", "kpis")
COST_KEYS = ("output_cost_of_mes_latency", "offline_compare")


def _mapping(value: Any) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) and value else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return None
    return float(value)


def _epoch(value: Any) -> float | None:
    """Epoch seconds from a number or an ISO 8601 time (a run writes either)."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return _number(value)


def line_kpis(summary: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The line's KPIs (a run that keeps ``line`` for the line's name has them under another key)."""
    return next((m for k in LINE_KEYS if (m := _mapping(summary.get(k))) is not None), None)


def hourly(summary: Mapping[str, Any]) -> list[float] | None:
    """Good cells out per virtual hour, in hour order; None when the run did not record them."""
    kpis = line_kpis(summary) or {}
    raw = summary.get("hourly", kpis.get("hourly"))
    if not isinstance(raw, list) or not raw:
        return None
    if all(_number(h) is not None for h in raw):
        return [float(h) for h in raw]
    if all(isinstance(h, Mapping) and _number(h.get("cells_out")) is not None for h in raw):
        return [float(h["cells_out"]) for h in sorted(raw, key=lambda h: _number(h.get("hour")) or 0.0)]
    return None


def cost(summary: Mapping[str, Any]) -> Any:
    """What the MES latency cost the line (a number or a mapping), or None."""
    return next((summary[k] for k in COST_KEYS if summary.get(k) is not None), None)


def pace(summary: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """What the run says of its own pace (None: a run from before it said)."""
    found = _mapping(summary.get("pace"))
    if found is not None:
        return found
    return summary if "saturated" in summary else None


def saturation(summary: Mapping[str, Any]) -> str:
    """The verdict's sentence when the twin itself was the limit (empty when it kept the pace asked)."""
    found = pace(summary)
    if not found or not found.get("saturated"):
        return ""
    asked, achieved = _number(found.get("speed_asked")), _number(found.get("speed_achieved"))
    held = _number(found.get("saturated_s"))
    speeds = f" (speed {asked:g} asked, {achieved:,.1f} achieved)" if asked and achieved is not None else ""
    during = f" for {held:,.1f} s of the run" if held else ""
    return (
        f"The twin could not send what its model asked{speeds}: it slowed virtual time{during} to the pace it kept "
        "up with. These figures are the twin's limit, not the MES's: run fewer copies, a lower speed, or more "
        "worker processes."
    )


def virtual_s(summary: Mapping[str, Any]) -> float | None:
    run = summary.get("run")
    return _number(summary.get("virtual_s")) or (_number(run.get("virtual_s")) if isinstance(run, Mapping) else None)


def reaction_s(item: Mapping[str, Any]) -> float | None:
    """An interlock's reaction time in seconds; None when the equipment never stopped (or nothing says)."""
    if "reaction_s" in item:
        return _number(item["reaction_s"])
    for key in ("decision_to_stop_ms", "reaction_ms"):
        if key in item:
            ms = _number(item[key])
            return ms / 1000 if ms is not None else None
    return None


def interlocks(summary: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """Each interlock as ``{"code", "equipment", "reaction_s", "outcome"}``; None when none were recorded."""
    raw = summary.get("interlocks")
    if raw is None:
        return None
    out = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, Mapping):
            continue
        reaction = reaction_s(item)
        outcome = item.get("outcome") or ("stopped" if reaction is not None else "never stopped")
        out.append(
            {"code": str(item.get("code", "?")), "equipment": item.get("equipment"), "reaction_s": reaction,
             "outcome": str(outcome)}
        )  # fmt: skip
    return out


def outages(summary: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """Each MES outage as ``{"start_wall", "end_wall", "backlog_max", "drain_s", "queued", "reason"}``."""
    link = summary.get("link")
    raw = summary.get("outages", link.get("outages") if isinstance(link, Mapping) else None)
    if raw is None:
        return None
    out = []
    for o in raw if isinstance(raw, list) else []:
        if not isinstance(o, Mapping):
            continue
        out.append(
            {
                "start_wall": _epoch(o.get("start_wall", o.get("started"))),
                "end_wall": _epoch(o.get("end_wall", o.get("ended"))),
                "backlog_max": o.get("backlog_max", o.get("max_backlog")),
                "drain_s": _number(o.get("drain_s")),
                "queued": o.get("queued"),
                "reason": o.get("reason"),
            }
        )
    return out


def controls(summary: Mapping[str, Any]) -> list[tuple[float, str]]:
    """(epoch seconds, label) of every accepted control of the live web view, in order."""
    out = []
    for c in summary.get("controls") or []:
        at = _number(c.get("at")) if isinstance(c, Mapping) else None
        if at is None or not c.get("ok"):
            continue
        args = c.get("args") if isinstance(c.get("args"), Mapping) else {}
        fallback = "clear" if args.get("clear") else ""
        detail = next((args[k] for k in ("speed", "shape", "equipment") if args.get(k)), fallback)
        out.append((at, f"{c.get('control', '?')} {detail}".strip()))
    return out
