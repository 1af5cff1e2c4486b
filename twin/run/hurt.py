"""A run never hides a fault: the embedded MES dying, records never delivered, an MES that never answered.

A load test is trusted only if it never ends "finished, exit 0" after losing its MES. The embedded MES's
supervisor (``EmbeddedMes.on_death``) tells the run the moment its process ends unasked; ``death_fault`` is
what the run records then, and ``hurt_reasons`` says, from what the run recorded, why the run cannot be
taken as a clean one. ``twin run`` exits with
``RunHurt.exit_code`` (3) when there is any.

A crash planned with the MES's own fault (``--crash-after``/``--restart-after``) is not a fault of the run:
it is listed as an MES event with its backlog and drain, and the run is hurt only if records were still
undelivered at the end.
"""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime
from typing import Any

from twin.errors import TwinError


class RunHurt(TwinError):
    """The run went to its end but was hurt: the MES died, never answered, or records were not delivered."""

    exit_code = 3


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def exit_text(code: int | None) -> str:
    """``exit code 1`` or ``killed by SIGKILL`` (a negative return code is the signal that ended it)."""
    if code is None:
        return "exit code unknown"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def death_fault(died_at: float | None, exit_code: int | None, virtual_s: float) -> dict[str, Any]:
    """The ``faults`` entry of an MES that died under the run."""
    return {
        "kind": "mes-died",
        "at": iso(died_at if died_at is not None else time.time()),
        "exit_code": exit_code,
        "how": exit_text(exit_code),
        "virtual_s": round(virtual_s, 3),
    }


def planned_crashes(events: list[Any], outages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each planned crash (``crashed`` then ``restarted`` events of the embedded MES) with the hosts' side of
    it: the outage that began with it, its records queued and re-uploaded, the largest backlog and the drain.
    """
    out: list[dict[str, Any]] = []
    for e in events:
        kind, at = getattr(e, "kind", None), getattr(e, "at", None)
        if kind == "crashed" and at is not None:
            out.append({"crashed": iso(at), "crashed_wall": at, "exit_code": getattr(e, "exit_code", None),
                        "restarted": None, "down_s": None})  # fmt: skip
        elif kind == "restarted" and out and out[-1]["restarted"] is None and at is not None:
            out[-1]["restarted"] = iso(at)
            out[-1]["down_s"] = round(at - out[-1]["crashed_wall"], 3)
    for crash in out:
        start = crash["crashed_wall"]
        seen = [o for o in outages if _epoch(o.get("started")) is not None and _epoch(o["started"]) >= start - 5.0]
        if seen:
            o = seen[0]
            crash["outage"] = {k: o.get(k) for k in ("started", "ended", "drained", "offline_s", "drain_s", "reason")}
            crash["backlog"] = {"queued": o.get("queued", 0), "resent": o.get("resent", 0),
                                "max_backlog": o.get("max_backlog", 0)}  # fmt: skip
    return out


def _epoch(text: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(text)).timestamp()
    except ValueError:
        return None


def hurt_reasons(
    faults: list[dict[str, Any]], undelivered: dict[str, Any], *, requests: int, answered: int
) -> list[str]:
    """Why the run is not a clean one, one sentence each (empty: nothing was lost or hidden)."""
    out = []
    for f in faults:
        if f.get("kind") == "mes-died":
            out.append(f"the embedded MES died ({f.get('how')}) at {f.get('virtual_s', 0):.0f} s virtual")
    if requests and not answered:
        out.append(f"the MES answered none of the {requests:,} requests")
    records = undelivered.get("records", 0)
    if records:
        out.append(f"{records:,} records never delivered (left in the outbox)")
    calls = undelivered.get("calls", 0)
    if calls:
        out.append(f"{calls:,} calls never answered (abandoned at the end)")
    return out


def fault_block(
    deaths: list[dict[str, Any]], undelivered: dict[str, Any], crashes: list[dict[str, Any]], hurt: list[str]
) -> dict[str, Any]:
    """``summary.json``'s ``faults``: what the report shows in its Faults section (cards for figures, tables for
    lists); empty for a clean run without a planned crash, so that the section is left out."""
    if not (deaths or hurt or crashes):
        return {}
    block: dict[str, Any] = {
        "run_hurt": "yes: " + "; ".join(hurt) if hurt else "no: everything made was delivered",
        "records_not_delivered": undelivered.get("records", 0),
        "calls_never_answered": undelivered.get("calls", 0),
    }
    if deaths:
        block["mes_died"] = [
            {"at": d["at"], "virtual_s": d.get("virtual_s"), "how": d.get("how"), "exit_code": d.get("exit_code")}
            for d in deaths
        ]
    if undelivered.get("records_by_operation"):
        block["not_delivered_by_operation"] = dict(undelivered["records_by_operation"])
    if crashes:
        block["planned_crashes"] = [
            {
                "crashed": c["crashed"],
                "restarted": c.get("restarted"),
                "down_s": c.get("down_s"),
                "queued": c.get("backlog", {}).get("queued"),
                "resent": c.get("backlog", {}).get("resent"),
                "max_backlog": c.get("backlog", {}).get("max_backlog"),
                "drain_s": c.get("outage", {}).get("drain_s"),
            }
            for c in crashes
        ]
    return block
