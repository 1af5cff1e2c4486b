"""The interlock rules of spec 3.1, applied to the results the MES receives.

500201/500203 count X-Ray alignment NG, 500202/500204 Hipot short-circuit NG, per jelly-roll machine
(the "叠片机", traced through the genealogy: a cell counts for the machines of both its jelly rolls);
500301 watches tooling life (2.42). Which processes and NG codes count, the thresholds and windows are
data (``interlocks.yaml``). Observation runs inside the rule that accepts the result, so the counters
change in the same commit as the exchange; sending (``twin.mes.equipment``) happens after the commit.
Windows are timed by the equipment's LocalTime, so a ``--speed`` run keeps the spec's hour.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twin.mes.interlock import Firing, fill
from twin.mes.rules.base import RuleCall

if TYPE_CHECKING:
    from twin.mes.route import Place
    from twin.mes.state import UnitRecord


def observe_result(call: RuleCall, unit: UnitRecord, place: Place | None, passed: bool, ng_codes: list[str]) -> None:
    """Count one product result against every rule; fire the rules it completes."""
    rules = call.data.interlock_rules
    machines = list(dict.fromkeys(unit.origins))
    if not rules or not machines:
        return
    process = place.process if place is not None else ""
    detector = place.equipment if place is not None else call.equipment
    now = call.at.timestamp()
    memory = call.state.interlock_memory
    for rule in rules:
        if rule.processes and process not in rule.processes:
            continue
        hit = not passed and not rule.ng_codes.isdisjoint(ng_codes)
        if rule.kind == "window" and not hit:
            continue
        for machine in machines:
            key = f"{rule.code}|{machine}"
            mem: dict[str, Any] = memory.get(key) or {"count": 0, "times": []}
            fired = False
            if rule.kind == "consecutive":
                if not hit and mem["count"] == 0:
                    continue
                mem["count"] = mem["count"] + 1 if hit else 0
                if mem["count"] >= rule.count:
                    fired, mem["count"] = True, 0
            else:
                times = [t for t in mem["times"] if t > now - rule.window_s]
                times.append(now)
                if len(times) >= rule.count:
                    fired, times = True, []
                mem["times"] = times
            memory[key] = mem
            call.tx.put("interlock_memory", key, mem)
            if fired:
                template = call.data.interlock_templates.get(rule.code, rule.code)
                call.fired.append(Firing(rule.code, machine, detector, fill(template, detector, machine), call.at_text))


def observe_tool(call: RuleCall, tool: str, used: float) -> None:
    """Record a tool's used life; fire 500301 once when it reaches its limit (again after a replacement)."""
    limit = call.data.tool_limit(tool)
    key = f"{call.equipment}|{tool}"
    before = call.state.tools.get(key) or {}
    life = float(limit["life"]) if limit else None
    expired = life is not None and used >= life
    fire = expired and not before.get("alarmed", False)
    record = {
        "equipment": call.equipment,
        "tool": tool,
        "used": used,
        "life": life,
        "alarmed": expired,
        "at": call.at_text,
    }
    call.state.tools[key] = record
    call.tx.put("tool", key, record)
    if fire:
        message = call.data.tooling_message.format(
            EquipmentCode=call.equipment, ToolCode=tool, UsedLife=f"{used:g}", Life=f"{life:g}"
        )
        call.fired.append(Firing(call.data.tooling_code, call.equipment, call.equipment, message, call.at_text))
