"""Route tracking: inbound and outbound of single products (2.27-2.30, 2.49, 2.50), the jelly rolls'
origin (2.44, or 2.28 at the winder) and the bindings that turn jelly rolls into a cell (2.31 pair,
2.32 cell code, 2.56 top cover, 2.58 cell code to top cover), first injection (2.34, 2.57)."""

from __future__ import annotations

import itertools
from typing import Any

from twin.mes.route import Place
from twin.mes.rules import moves
from twin.mes.rules.base import Refused, RuleAnswer, RuleCall
from twin.mes.state import UnitRecord

REPEAT = "Success (already recorded)"


def _item_result(code: str, refused: Refused | None) -> dict[str, Any]:
    if refused is None:
        return {"sfc": code, "code": 0, "msg": "Success"}
    return {"sfc": code, "code": refused.code, "msg": refused.msg}


def _partial(results: list[dict[str, Any]], failures: list[Refused]) -> RuleAnswer:
    if failures:
        first = failures[0]
        raise Refused(
            first.reason, f"{len(failures)} of {len(results)} refused; first: {first.msg}", results, keep=True
        )
    return RuleAnswer(results)


def _enter_one(call: RuleCall, place: Place, code: str) -> None:
    """A jelly roll bound with its partner (2.31) enters with it: one code for both (2.49)."""
    unit = moves.resolve(call, code)
    parts = _pair(call, unit) if unit.kind == "jelly_roll" else [unit]
    entering = [u for u in parts if moves.check_enter(call, u, place, u.sfc)]
    if entering:
        moves.require_verified(call, place)
    for u in entering:
        moves.enter(call, u, place)


def inbound(call: RuleCall) -> RuleAnswer:
    """2.27 and 2.49 (one code after two jelly rolls were bound)."""
    place = call.need_place()
    code = str(call.body["Sfc"])
    call.sfc = code
    _enter_one(call, place, code)
    return RuleAnswer()


def inbound_more(call: RuleCall) -> RuleAnswer:
    """2.29: each code on its own; data says per code, the accepted ones are recorded."""
    place = call.need_place()
    results, failures = [], []
    for code in (str(c) for c in call.body["SfcList"]):
        try:
            _enter_one(call, place, code)
            results.append(_item_result(code, None))
        except Refused as refused:
            failures.append(refused)
            results.append(_item_result(code, refused))
    return _partial(results, failures)


def _origin(call: RuleCall, place: Place, code: str, item: dict[str, Any]) -> RuleAnswer:
    """A jelly roll is made: the code is new, the winder verified, its loaded lots its materials."""
    existing = call.state.unit(code)
    if existing is not None:
        if existing.origins == [place.equipment] and existing.step == (place.step.index if place.step else -1):
            return RuleAnswer(msg=REPEAT)
        raise Refused("product", f"jelly roll {code} already exists (made by {', '.join(existing.origins)})")
    if code in call.state.issued or code in call.state.lots:
        raise Refused("product", f"{code} is already a code the MES handed out or a material lot")
    moves.require_verified(call, place)
    feeding = moves.check_fed(call, place, item.get("BindFeedingCodeList") or (), "bindFeedingCodeList")
    assert place.step is not None
    unit = UnitRecord(
        code,
        "jelly_roll",
        moves.product_of(call),
        [place.equipment],
        place.step.index,
        "in",
        place.equipment,
        call.at_text,
        codes=[code],
    )
    call.state.add_unit(unit, call.tx)
    loaded = feeding or list(call.state.equip(place.equipment).fed)
    passed = int(item.get("Passed", 1) if item.get("Passed") is not None else 1)
    moves.leave(
        call,
        unit,
        place,
        passed=passed,
        ng_codes=item.get("NgList") or (),
        params=item.get("ParamList") or (),
        feeding=loaded,
    )
    return RuleAnswer()


def _leave_one(call: RuleCall, place: Place, item: dict[str, Any]) -> str:
    """Outbound of one product; returns the message (a repeat is accepted unchanged)."""
    code = str(item["Sfc"])
    if place.step is not None and place.step.origin and call.state.unit(code) is None:
        return _origin(call, place, code, item).msg
    unit = moves.resolve(call, code)
    if not moves.check_leave(call, unit, place, code):
        return REPEAT
    if not place.has_inbound:
        moves.require_verified(call, place)
    feeding = moves.check_fed(call, place, item.get("BindFeedingCodeList") or (), "bindFeedingCodeList")
    first = call.data.first_injection
    if place.process == first.get("process") and not unit.filling:
        values = {str(p["ParamCode"]): p["ParamValue"] for p in item.get("ParamList") or ()}
        for name in first.get("volume_params", ()):
            if name in values:
                unit.filling = {"final_el": float(values[name]), "source": f"2.28 {name}"}
                break
    moves.leave(
        call,
        unit,
        place,
        passed=int(item["Passed"]),
        ng_codes=item.get("NgList") or (),
        params=item.get("ParamList") or (),
        feeding=feeding,
    )
    return "Success"


def outbound(call: RuleCall) -> RuleAnswer:
    """2.28 and 2.50 (2.50's OperationType only says where in the bound part of the route it is)."""
    place = call.need_place()
    call.sfc = str(call.body["Sfc"])
    return RuleAnswer(msg=_leave_one(call, place, call.body))


def colling_polar(call: RuleCall) -> RuleAnswer:
    """2.44: a jelly roll made by the winder; Passed and NgList may be absent (2.44-1)."""
    place = call.need_place()
    if place.step is None or not place.step.origin:
        raise Refused(
            "equipment", f"2.44 reports a jelly roll made by a winder; {place.equipment} is {place.station.id}"
        )
    code = str(call.body["Sfc"])
    call.sfc = code
    return _origin(call, place, code, call.body)


def outbound_more(call: RuleCall) -> RuleAnswer:
    """2.30: each product on its own; the accepted ones are recorded."""
    place = call.need_place()
    results, failures = [], []
    for item in call.body["SfcList"]:
        code = str(item["Sfc"])
        try:
            _leave_one(call, place, item)
            results.append(_item_result(code, None))
        except Refused as refused:
            failures.append(refused)
            results.append(_item_result(code, refused))
    return _partial(results, failures)


def outbound_mult_polar(call: RuleCall) -> RuleAnswer:
    """2.31: the jelly rolls of one call are bound to each other; all or none (2.31-3)."""
    place = call.need_place()
    items = call.body["SfcList"]
    checked: list[tuple[UnitRecord, dict[str, Any]]] = []
    results, failures = [], []
    for item in items:
        code = str(item["Sfc"])
        try:
            unit = moves.resolve(call, code)
            if unit.kind != "jelly_roll":
                raise Refused("product", f"{code} is a {unit.kind}; 2.31 binds jelly rolls")
            if moves.check_leave(call, unit, place, code):
                moves.check_fed(call, place, item.get("BindFeedingCodeList") or (), "bindFeedingCodeList")
                checked.append((unit, item))
            results.append(_item_result(code, None))
        except Refused as refused:
            failures.append(refused)
            results.append(_item_result(code, refused))
    if failures:
        raise Refused(
            failures[0].reason,
            f"jelly rolls not bound, {len(failures)} of {len(items)} refused; first: {failures[0].msg}",
            results,
        )
    units = [u for u, _ in checked]
    for unit, item in checked:
        others = [u.sfc for u in units if u is not unit]
        unit.partner = others[0] if others else unit.partner
        moves.leave(
            call,
            unit,
            place,
            passed=int(item["Passed"]),
            ng_codes=item.get("NgList") or (),
            params=item.get("ParamList") or (),
            feeding=item.get("BindFeedingCodeList") or (),
        )
    for a, b in itertools.pairwise(units):
        call.tx.genealogy(a.sfc, b.sfc, "pair", place.equipment, call.at_text)
    return RuleAnswer(results)


def _merge(call: RuleCall, key: str, parts: list[UnitRecord], place: Place, **extra: Any) -> UnitRecord:
    """The cell the jelly rolls become: it answers to their codes, and traces to their winders."""
    origins = list(dict.fromkeys(o for u in parts for o in u.origins))
    codes = [key, *(c for u in parts for c in u.codes)]
    cell = UnitRecord(
        key,
        "cell",
        parts[0].product,
        origins,
        parts[0].step,
        parts[0].phase,
        place.equipment,
        call.at_text,
        codes=codes,
        **extra,
    )
    for unit in parts:
        unit.merged_into = key
        unit.save(call.tx)
        call.tx.genealogy(key, unit.sfc, "jelly_roll", place.equipment, call.at_text)
    call.state.add_unit(cell, call.tx)
    return cell


def _pair(call: RuleCall, unit: UnitRecord) -> list[UnitRecord]:
    partner = call.state.units.get(unit.partner) if unit.partner else None
    return [unit, partner] if partner is not None and not partner.merged_into else [unit]


def outbound_sfc_polar(call: RuleCall) -> RuleAnswer:
    """2.32: the cell code issued by 2.33 is bound to its jelly roll(s) at outbound."""
    place = call.need_place()
    cell, jr_code = str(call.body["Sfc"]), str(call.body["JzSfc"])
    call.sfc = cell
    done = call.state.unit(cell)
    if (
        done is not None
        and done.sfc == cell
        and jr_code in done.codes
        and not moves.check_leave(call, done, place, cell)
    ):
        return RuleAnswer(msg=REPEAT)
    issued = call.state.issued.get(cell)
    if issued is None or issued.kind != "cell":
        raise Refused("barcode", f"sfc: {cell} is not a cell code issued by the MES (2.33)")
    if issued.used:
        raise Refused("barcode", f"sfc: cell code {cell} is already bound")
    jr = moves.resolve(call, jr_code, "jelly roll")
    if jr.kind != "jelly_roll" or issued.parent not in (jr.sfc, jr.partner):
        raise Refused("barcode", f"jzSfc: cell code {cell} was issued for jelly roll {issued.parent}, not {jr_code}")
    parts = _pair(call, jr)
    for unit in parts:
        moves.check_leave(call, unit, place, unit.sfc)
    feeding = moves.check_fed(call, place, call.body["BindFeedingCodes"], "bindFeedingCodes")
    merged = _merge(call, cell, parts, place, cell_code=cell)
    issued.used = True
    issued.save(call.tx)
    _leave_as_reported(call, merged, place, feeding)
    return RuleAnswer()


def _leave_as_reported(call: RuleCall, unit: UnitRecord, place: Place, feeding: list[str]) -> None:
    """The outbound of a binding interface, with the result its body reports (Passed, NgList, ParamList)."""
    moves.leave(
        call,
        unit,
        place,
        passed=int(call.body["Passed"]),
        ng_codes=call.body["NgList"],
        params=call.body["ParamList"],
        feeding=feeding,
    )


def outbound_coverplate_bind(call: RuleCall) -> RuleAnswer:
    """2.56: a top-cover code is bound to the jelly rolls (both of a 2.31 pair) at outbound."""
    place = call.need_place()
    cover = str(call.body["Sfc"])
    call.sfc = cover
    jr_codes = [str(c) for c in call.body["JzSfcs"]]
    existing = call.state.unit(cover)
    if existing is not None:
        if (
            existing.top_cover == cover
            and set(jr_codes) <= set(existing.codes)
            and existing.equipment == place.equipment
        ):
            return RuleAnswer(msg=REPEAT)
        raise Refused("barcode", f"sfc: top-cover code {cover} is already bound to {existing.sfc}")
    if not jr_codes:
        raise Refused("product", "jzSfcs: at least one jelly-roll code is needed")
    parts = [moves.resolve(call, c, "jelly roll") for c in jr_codes]
    for i, unit in enumerate(parts):
        if unit.kind != "jelly_roll":
            raise Refused("product", f"jzSfcs[{i}]: {jr_codes[i]} is already part of {unit.sfc}")
        if unit.partner and unit.partner not in jr_codes:
            raise Refused(
                "product", f"jzSfcs[{i}]: {unit.sfc} was bound with {unit.partner} (2.31): both go under one top cover"
            )
        moves.check_leave(call, unit, place, unit.sfc)
    if not place.has_inbound:
        moves.require_verified(call, place)
    feeding = moves.check_fed(call, place, call.body["BindFeedingCodes"], "bindFeedingCodes")
    merged = _merge(call, cover, parts, place, top_cover=cover)
    _leave_as_reported(call, merged, place, feeding)
    return RuleAnswer()


def outbound_cell_top_cover(call: RuleCall) -> RuleAnswer:
    """2.58: the cell code the equipment reported (2.55) is bound to the top-cover code at outbound."""
    place = call.need_place()
    cell, cover = str(call.body["Sfc"]), str(call.body["TopCoverSfc"])
    call.sfc = cell
    unit = moves.resolve(call, cover, "top-cover code")
    if unit.top_cover != cover:
        raise Refused("barcode", f"topCoverSfc: {cover} is not a top-cover code bound by 2.56")
    if not moves.check_leave(call, unit, place, cover):
        return RuleAnswer(msg=REPEAT)
    owner = call.state.alias.get(cell)
    if unit.cell_code and unit.cell_code != cell:
        raise Refused("barcode", f"topCoverSfc: {cover} already has cell code {unit.cell_code}")
    if owner is not None and owner != unit.sfc:
        raise Refused("barcode", f"sfc: cell code {cell} is already bound to {owner}")
    issued = call.state.issued.get(cell)
    if issued is None or issued.kind not in ("cell24", "cell") or (issued.used and owner != unit.sfc):
        raise Refused("barcode", f"sfc: {cell} is not a cell code reported by 2.55 (or issued by 2.33) and unbound")
    feeding = moves.check_fed(call, place, call.body["BindFeedingCodes"], "bindFeedingCodes")
    unit.cell_code = cell
    call.state.add_code(unit, cell, call.tx)
    issued.used = True
    issued.save(call.tx)
    call.tx.genealogy(cell, cover, "top_cover", place.equipment, call.at_text)
    _leave_as_reported(call, unit, place, feeding)
    return RuleAnswer()


def filling_data(call: RuleCall) -> RuleAnswer:
    """2.34: the top-up report is also the outbound at first injection (2.34-2)."""
    place = call.need_place()
    code = str(call.body["Sfc"])
    call.sfc = code
    unit = moves.resolve(call, code)
    if not moves.check_leave(call, unit, place, code):
        return RuleAnswer(msg=REPEAT)
    batch = call.state.equip(place.equipment).electrolyte
    body = call.body
    unit.filling = {
        "final_el": float(body["FinalEl"]),
        "total_el": float(body["TotalEl"]),
        "manual_el": float(body["ManualEl"]),
        "in": body["InTime"],
        "out": body["OutTime"],
        "batch": batch,
        "source": "2.34",
    }
    if batch:
        call.tx.genealogy(unit.sfc, batch, "electrolyte", place.equipment, call.at_text)
    moves.leave(call, unit, place, passed=1 if body["IsOk"] else 0)
    return RuleAnswer()


def injection_volume(call: RuleCall) -> RuleAnswer:
    """2.57: the first injection's final amount, as a string with two decimals."""
    code = str(call.body["Sfc"])
    call.sfc = code
    unit = moves.resolve(call, code)
    if not unit.filling:
        params = ", ".join(call.data.first_injection.get("volume_params", ()))
        raise Refused(
            "product",
            f"sfc: no first-injection amount is recorded for {code} (2.34 FinalEl, or one of "
            f"{params} in its 2.28 at first injection)",
        )
    return RuleAnswer(f"{unit.filling['final_el']:.2f}")
