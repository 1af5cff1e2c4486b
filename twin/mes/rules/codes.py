"""Codes the MES hands out (2.20 batches, 2.23/2.25 rolls, 2.33 cell codes, 3.2 electrolyte batches) or
accepts from equipment (2.55 24-digit cell codes): unique, and traceable to who got them, when, and for
what. Formats are data (``plant.yaml`` codes); a sequence that never repeats makes them unique, and the
issued-code table refuses any duplicate whatever the format.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from twin.mes.rules import moves
from twin.mes.rules.base import Refused, RuleAnswer, RuleCall
from twin.mes.state import Issued, Lot

MAX_QTY = 100


def short_line(name: str) -> str:
    return name.removeprefix("line-")


def issue_code(call: RuleCall, kind: str, prefix: str = "", parent: str = "") -> str:
    fmt = call.data.code_formats[kind]
    local = call.data.plant_now(call.now)
    for _ in range(1000):
        seq = call.state.next_seq(kind, call.tx)
        code = fmt.format(line=short_line(call.route.line.name), date=local, seq=seq, prefix=prefix)
        if code not in call.state.issued and code not in call.state.alias and code not in call.state.lots:
            break
    else:  # pragma: no cover - a format without {seq}
        raise Refused("barcode", f"the code format {fmt!r} for {kind} codes cannot make a new unique code")
    issued = Issued(code, kind, call.equipment, call.op.operation_id, call.at_text, parent=parent)
    call.state.issued[code] = issued
    issued.save(call.tx)
    return code


def _roll_output(call: RuleCall, *, starting: bool = False) -> dict[str, str]:
    """The roll output of the calling station; asking for new codes (2.23) is a start of production."""
    place = call.need_place()
    output = call.data.outputs.get(place.process)
    if output is None or output.get("code") != "roll":
        raise Refused(
            "equipment",
            f"process {place.process} outputs no electrode rolls (2.23 is for coating, "
            f"rolling/slitting and die cutting)",
        )
    if starting:
        moves.require_verified(call, place)
    return output


def generate_sfc(call: RuleCall) -> RuleAnswer:
    """2.23: exactly Qty roll codes (2.23-4), in the table's shape {sfcList} (2.23-1)."""
    output = _roll_output(call, starting=True)
    qty = int(call.body["Qty"])
    if not 1 <= qty <= MAX_QTY:
        raise Refused("barcode", f"qty: the number of roll codes must be 1..{MAX_QTY}, got {qty}")
    codes = [issue_code(call, "roll", output.get("prefix", "")) for _ in range(qty)]
    equip = call.state.equip(call.equipment)
    equip.pending_roll = codes[-1]
    equip.save(call.tx)
    return RuleAnswer({"sfcList": codes})


def ccd_get_barcode(call: RuleCall) -> RuleAnswer:
    """2.25: the roll the equipment is making now (handed out and not yet reported), else a new one."""
    output = _roll_output(call)
    material = call.data.materials[output["material"]]
    equip = call.state.equip(call.equipment)
    code = equip.pending_roll
    if not code or call.state.issued.get(code) is None or call.state.issued[code].used:
        code = issue_code(call, "roll", output.get("prefix", ""))
        equip.pending_roll = code
        equip.save(call.tx)
    call.sfc = code
    ident = str(uuid.uuid5(uuid.NAMESPACE_URL, f"twin-mes:{code}"))
    return RuleAnswer({"productCode": material.code, "sfc": code, "qty": material.lot_qty, "id": ident})


def outbound_meters(call: RuleCall) -> RuleAnswer:
    """2.24: the roll must be one handed out to this equipment and not reported yet; it enters inventory."""
    output = _roll_output(call)
    code = str(call.body["Sfc"])
    call.sfc = code
    issued = call.state.issued.get(code)
    if issued is None or issued.kind != "roll":
        raise Refused("barcode", f"sfc: {code} is not a roll code handed out by the MES (2.23/2.25)")
    if issued.equipment != call.equipment:
        raise Refused("barcode", f"sfc: roll {code} was handed out to {issued.equipment}, not {call.equipment}")
    if issued.used:
        raise Refused("barcode", f"sfc: roll {code} was already reported")
    material = call.data.materials[output["material"]]
    ok = float(call.body["OkQty"])
    lot = Lot(code, material.code, ok, ok, False, "2.24", call.equipment, call.at_text)
    call.state.lots[code] = lot
    lot.save(call.tx)
    issued.used = True
    issued.save(call.tx)
    equip = call.state.equip(call.equipment)
    if equip.pending_roll == code:
        equip.pending_roll = ""
        equip.save(call.tx)
    local = call.data.plant_now(call.now)
    data = {
        "sfc": code,
        "orderCode": call.data.code_formats["work_order"].format(
            line=short_line(call.route.line.name), date=local, prefix=output.get("prefix", ""), seq=0
        ),
        "equipmentCode": call.equipment,
        "materialName": material.name_cn,
        "materialBatch": local.strftime("%Y%m%d"),
        "manuDate": local.strftime("%Y%m%d%H%M"),
        "effectiveDate": (local + timedelta(days=material.shelf_life_days)).strftime("%Y%m%d%H%M"),
    }
    return RuleAnswer(data)


def generate_cell_sfc(call: RuleCall) -> RuleAnswer:
    """2.33: the cell code for a jelly roll (its pair) arriving at the cover welder; a retry gets the same code."""
    place = call.need_place()
    code = str(call.body["Sfc"])
    call.sfc = code
    unit = moves.resolve(call, code, "jelly roll")
    if unit.kind != "jelly_roll":
        raise Refused("barcode", f"sfc: {code} is a {unit.kind} already ({unit.sfc}); 2.33 takes a jelly-roll code")
    pair = [unit, *([call.state.units[unit.partner]] if unit.partner in call.state.units else [])]
    earlier = call.state.issued.get(unit.cell_code)
    if earlier is not None and not earlier.used and unit.phase == "in" and unit.equipment == place.equipment:
        return RuleAnswer(earlier.code)  # a retry: the same jelly roll gets the same code
    moves.require_verified(call, place)
    for u in pair:
        moves.check_enter(call, u, place, u.sfc)
    cell = issue_code(call, "cell", parent=unit.sfc)
    for u in pair:
        u.cell_code = cell
        moves.enter(call, u, place)
    call.tx.genealogy(cell, unit.sfc, "issued-for", call.equipment, call.at_text)
    return RuleAnswer(cell)


def receive_cell_codes(call: RuleCall) -> RuleAnswer:
    """2.55: 24-digit cell codes the equipment made; each must be well-formed and new."""
    call.need_place()
    codes = [str(c) for c in call.body["SfcList"]]
    data = call.data
    for i, code in enumerate(codes):
        if len(code) != data.cell_code_length or not data.cell_code_pattern.fullmatch(code):
            raise Refused(
                "barcode",
                f"sfcList[{i}]: {code!r} is not a {data.cell_code_length}-character cell code "
                f"({data.cell_code_pattern.pattern})",
            )
        if code in call.state.issued or code in call.state.alias or codes.index(code) != i:
            raise Refused("barcode", f"sfcList[{i}]: cell code {code} is already known (codes are unique)")
    for code in codes:
        issued = Issued(code, "cell24", call.equipment, call.op.operation_id, call.at_text)
        call.state.issued[code] = issued
        issued.save(call.tx)
    return RuleAnswer()
