"""The tray life cycle (2.35-2.41) and per-cell parameters of trays (2.43, 2.46).

A tray is checked empty (2.35), filled with cells each checked first (2.36, 2.37), goes into an
equipment (2.40: each cell's inbound at that step) and out (2.41: each cell's outbound), and is emptied
(2.38). Every change is checked against the state the tray is in; a cell is in one tray at a time.
"""

from __future__ import annotations

from typing import Any

from twin.mes.rules import moves
from twin.mes.rules.base import Refused, RuleAnswer, RuleCall
from twin.mes.rules.interlocks import observe_result
from twin.mes.state import Tray, UnitRecord

STATES = {"free": "free", "checked": "checked empty", "bound": "bound", "in": "in an equipment", "out": "out"}


def _tray(call: RuleCall, code: str) -> Tray:
    return call.state.tray(code)


def describe_tray(tray: Tray) -> str:
    where = f" at {tray.equipment}" if tray.state == "in" else ""
    return f"tray {tray.code} is {STATES.get(tray.state, tray.state)}{where} with {len(tray.cells)} cells"


def empty_check(call: RuleCall) -> RuleAnswer:
    """2.35: the tray holds no cells and is not in an equipment."""
    tray = _tray(call, str(call.body["ContainerCode"]))
    if tray.cells or tray.state == "in":
        raise Refused("tray", f"containerCode: {describe_tray(tray)}; it is not empty")
    tray.state = "checked"
    tray.at = call.at_text
    tray.grade = ""
    tray.save(call.tx)
    return RuleAnswer()


def _check_cell(call: RuleCall, code: str, where: str, *, moving_to: str = "") -> UnitRecord:
    unit = moves.resolve(call, code, "cell")
    if unit.ng:
        raise Refused(
            "ng", f"{where}: {code} is NG ({', '.join(unit.ng_codes)} at {unit.ng_equipment}); it goes in no tray"
        )
    if unit.done:
        raise Refused("route", f"{where}: {code} has finished the route")
    if unit.phase == "in":
        raise Refused("route", f"{where}: {code} is in process at {unit.equipment}; report its outbound first")
    if unit.container and unit.container != moving_to:
        raise Refused("tray", f"{where}: {code} is bound to tray {unit.container}; unbind it first (2.38)")
    return unit


def cell_check(call: RuleCall) -> RuleAnswer:
    """2.36: the cell may go into a tray."""
    code = str(call.body["Sfc"])
    call.sfc = code
    unit = _check_cell(call, code, "sfc")
    unit.tray_checked = True
    unit.save(call.tx)
    return RuleAnswer()


def bind(call: RuleCall) -> RuleAnswer:
    """2.37: into an empty-checked tray (or one being filled); OperationType 3 moves cells between trays."""
    tray = _tray(call, str(call.body["ContainerCode"]))
    if tray.state not in ("checked", "bound"):
        raise Refused("tray", f"containerCode: {describe_tray(tray)}; bind needs a tray checked empty first (2.35)")
    moving = str(call.body.get("OperationType", "0")) == "3"
    locations = {loc: code for code, loc in tray.cells.items()}
    units = []
    for i, item in enumerate(call.body["ContainerSfcList"]):
        where = f"containerSfcList[{i}]"
        code, location = str(item["Sfc"]), str(item["Location"])
        unit = call.state.unit(code) if moving else None
        unit = _check_cell(call, code, f"{where}.sfc", moving_to=unit.container if unit else tray.code)
        if unit.container == tray.code and tray.cells.get(unit.sfc) == location:
            continue  # already bound there: a repeat
        if not unit.tray_checked and not moving:
            raise Refused("tray", f"{where}.sfc: {code} was not checked for a tray (2.36) first")
        if locations.get(location, unit.sfc) != unit.sfc:
            raise Refused(
                "tray", f"{where}.location: position {location} of tray {tray.code} already holds {locations[location]}"
            )
        locations[location] = unit.sfc
        units.append((unit, location))
    for unit, location in units:
        if unit.container and unit.container != tray.code:
            old = call.state.tray(unit.container)
            old.cells.pop(unit.sfc, None)
            old.state = "free" if not old.cells else old.state
            old.save(call.tx)
        tray.cells[unit.sfc] = location
        unit.container = tray.code
        unit.tray_checked = False
        unit.save(call.tx)
    tray.state = "bound"
    tray.at = call.at_text
    tray.save(call.tx)
    return RuleAnswer()


def unbind_cells(call: RuleCall, tray: Tray, codes: list[str], field: str) -> list[UnitRecord]:
    if tray.state == "in":
        raise Refused("tray", f"{describe_tray(tray)}; take it out (2.41) before unbinding")
    units = []
    for i, code in enumerate(codes):
        unit = moves.resolve(call, code, "cell")
        if unit.container != tray.code:
            raise Refused(
                "tray",
                f"{field}[{i}]: {code} is not in tray {tray.code}"
                + (f" (it is in {unit.container})" if unit.container else ""),
            )
        units.append(unit)
    return units


def release_cells(call: RuleCall, tray: Tray, units: list[UnitRecord]) -> None:
    for unit in units:
        tray.cells.pop(unit.sfc, None)
        unit.container = ""
        unit.save(call.tx)
    if not tray.cells:
        tray.state = "free"
        tray.equipment = ""
    tray.at = call.at_text
    tray.save(call.tx)


def unbind(call: RuleCall) -> RuleAnswer:
    """2.38: cells leave a tray that is not in an equipment; an emptied tray is free again."""
    tray = _tray(call, str(call.body["ContainCode"]))
    release_cells(call, tray, unbind_cells(call, tray, [str(c) for c in call.body["SfcList"]], "sfcList"))
    return RuleAnswer()


def ng_report(call: RuleCall) -> RuleAnswer:
    """2.39: NG cells of a tray (strings or objects, 2.39-1) are NG from now on."""
    tray = _tray(call, str(call.body["ContainerCode"]))
    marks = []
    for i, item in enumerate(call.body["NgSfcList"]):
        entry = item if isinstance(item, dict) else {"sfc": item}
        code = str(entry["sfc"])
        unit = moves.resolve(call, code, "cell")
        if unit.container != tray.code:
            raise Refused("tray", f"ngSfcList[{i}]: {code} is not in tray {tray.code}")
        marks.append((unit, entry))
    for unit, entry in marks:
        ng_code = str(entry.get("ngCode") or "")
        unit.ng = True
        unit.ng_codes = [ng_code] if ng_code else unit.ng_codes
        unit.ng_equipment = str(entry.get("ngEquipmentCode") or call.equipment)
        unit.save(call.tx)
        observe_result(call, unit, call.place, False, unit.ng_codes)
    return RuleAnswer()


def tray_in(call: RuleCall) -> RuleAnswer:
    """2.40: a bound tray enters; every cell in it makes its inbound at this step."""
    place = call.need_place()
    tray = _tray(call, str(call.body["ContainerCode"]))
    if tray.state not in ("bound", "out") or not tray.cells:
        raise Refused("tray", f"containerCode: {describe_tray(tray)}; tray inbound needs cells bound to it (2.37)")
    moves.require_verified(call, place)
    units = [moves.resolve(call, code, "cell") for code in tray.cells]
    ng = [u.sfc for u in units if u.ng]
    if ng:
        raise Refused(
            "ng",
            f"containerCode: tray {tray.code} holds NG cells {', '.join(ng[:5])}; unbind them (2.38) before it goes on",
        )
    for unit in units:
        moves.check_enter(call, unit, place, unit.sfc)
    for unit in units:
        moves.enter(call, unit, place)
    tray.state, tray.equipment, tray.at = "in", place.equipment, call.at_text
    tray.step = place.step.index if place.step else -1
    tray.save(call.tx)
    return RuleAnswer()


def tray_out(call: RuleCall) -> RuleAnswer:
    """2.41: the tray leaves the equipment it entered; its cells make their outbound (NG ones stay NG)."""
    place = call.need_place()
    tray = _tray(call, str(call.body["ContainerCode"]))
    if tray.state != "in" or tray.equipment != place.equipment:
        raise Refused(
            "tray", f"containerCode: {describe_tray(tray)}; tray outbound needs its inbound (2.40) at {place.equipment}"
        )
    for code in list(tray.cells):
        unit = moves.resolve(call, code, "cell")
        if unit.ng:
            continue
        moves.leave(call, unit, place, params=call.body["ParamList"])
    tray.state, tray.at = "out", call.at_text
    tray.save(call.tx)
    return RuleAnswer()


def _params(call: RuleCall, items: list[tuple[str, list[dict[str, Any]]]], tray: Tray | None, field: str) -> None:
    found = []
    for i, (code, params) in enumerate(items):
        unit = moves.resolve(call, code, "cell")
        if tray is not None and unit.container != tray.code:
            raise Refused("tray", f"{field}[{i}]: {code} is not in tray {tray.code}")
        found.append((unit, params))
    for unit, params in found:
        moves.record_params(call, unit, params)
        unit.save(call.tx)


def product_param(call: RuleCall) -> RuleAnswer:
    """2.43: per-cell parameters of the cells of a tray."""
    tray = _tray(call, str(call.body["ContainerCode"]))
    items = [(str(x["Sfc"]), x["ParamList"]) for x in call.body["SfcList"]]
    _params(call, items, tray, "sfcList")
    return RuleAnswer()


def product_param_same(call: RuleCall) -> RuleAnswer:
    """2.46: the same parameters for several cells."""
    items = [(str(code), call.body["ParamList"]) for code in call.body["SfcList"]]
    _params(call, items, None, "sfcList")
    return RuleAnswer()
