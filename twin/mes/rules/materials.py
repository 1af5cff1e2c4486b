"""Inventory (2.47), feeding (2.10, 2.11), mixing (2.17-2.22) and AGV tooling (2.48).

A lot must be received into inventory (2.47) or made here (2.20 batch, 2.23 roll reported by 2.24)
before any equipment may load or consume it, and only where its material is used (``materials.yaml``
consumed_at). Loading takes the quantity out of the lot; what is loaded at an equipment is what its
outbound may bind (``moves.check_fed``).
"""

from __future__ import annotations

from twin.mes.route import Place
from twin.mes.rules.base import Refused, RuleAnswer, RuleCall
from twin.mes.rules.codes import issue_code
from twin.mes.seed import Material
from twin.mes.state import Lot, UnitRecord

MIXING = frozenset({"glue_making", "slurry_mixing", "powder_feeding"})
EPS = 1e-6


def material_inventory(call: RuleCall) -> RuleAnswer:
    seen: set[str] = set()
    lots: list[Lot] = []
    for i, item in enumerate(call.body["BarCodeList"]):
        where = f"barCodeList[{i}]"
        code = str(item["BarCode"])
        if code in seen or code in call.state.lots:
            held = call.state.lots.get(code)
            already = f" (received {held.at} at {held.equipment})" if held else " (twice in this request)"
            raise Refused("material", f"{where}.barCode: {code} is already in inventory{already}")
        seen.add(code)
        if item["IsRawMaterial"]:
            material = call.data.raw_material_of(code)
            if material is None:
                raise Refused(
                    "material",
                    f"{where}.barCode: {code} matches no raw material of the material list "
                    f"(the MES reads the material from the barcode's prefix)",
                )
            qty = material.lot_qty
        else:
            material_code = item.get("MaterialCode")
            material = call.data.materials.get(str(material_code))
            if material is None or material.kind == "raw":
                raise Refused(
                    "material",
                    f"{where}.materialCode: {material_code!r} is not a semi-finished material (or work in progress) "
                    f"of the material list",
                )
            if material.kind == "wip" and code in call.state.alias:
                raise Refused("product", f"{where}.barCode: {code} is already a product the MES tracks")
            qty = item.get("Qty")
            if qty is None or float(qty) <= 0:
                raise Refused("material", f"{where}.qty: a non-raw lot needs its quantity, got {qty!r}")
        lots.append(
            Lot(
                code,
                material.code,
                float(qty),
                float(qty),
                bool(item["IsRawMaterial"]),
                "2.47",
                call.equipment,
                call.at_text,
            )
        )
    for lot in lots:
        material = call.data.materials[lot.material]
        if material.kind == "wip":  # taken over at go-live: a product whose position is not known yet
            unit = UnitRecord(
                lot.barcode,
                material.wip,
                call.data.default_product,
                [],
                -1,
                "out",
                call.equipment,
                call.at_text,
                codes=[lot.barcode],
            )
            call.state.add_unit(unit, call.tx)
            call.tx.genealogy(lot.barcode, f"wip:{material.code}", "taken-over", call.equipment, call.at_text)
            continue
        call.state.lots[lot.barcode] = lot
        lot.save(call.tx)
    return RuleAnswer()


def _lot(call: RuleCall, code: str, where: str, process: str, *, raw: bool | None) -> tuple[Lot, Material]:
    lot = call.state.lots.get(code)
    issued = call.state.issued.get(code)
    if lot is None and issued is not None and issued.kind == "roll":
        raise Refused("material", f"{where}: roll {code} has no output report (2.24) yet")
    if lot is None:
        raise Refused("material", f"{where}: {code} was never received into inventory (2.47) nor made here")
    material = call.data.materials[lot.material]
    if raw is True and not lot.raw and material.kind == "semi":
        raise Refused("material", f"{where}: {code} is semi-finished {material.code}; load it with 2.11 HalfFeeding")
    if raw is False and material.kind == "raw":
        raise Refused("material", f"{where}: {code} is raw material {material.code}; load it with 2.10 Feeding")
    if process not in material.consumed_at:
        raise Refused(
            "material",
            f"{where}: {code} is {material.code} ({material.name_cn}), which process "
            f"{process} does not use (used at: {', '.join(sorted(material.consumed_at))})",
        )
    if lot.remaining <= EPS:
        raise Refused("material", f"{where}: lot {code} is used up")
    return lot, material


def _load(call: RuleCall, place: Place, lot: Lot, qty: float) -> None:
    lot.remaining = max(0.0, lot.remaining - qty)
    lot.save(call.tx)
    equip = call.state.equip(place.equipment)
    for other in [c for c in equip.fed if c != lot.barcode]:  # a new lot replaces the last of its material
        held = call.state.lots.get(other)
        if held is None or held.material == lot.material:
            del equip.fed[other]
    equip.fed[lot.barcode] = equip.fed.get(lot.barcode, 0.0) + qty
    equip.save(call.tx)


def feeding(call: RuleCall) -> RuleAnswer:
    """2.10: raw material by barcode, or every lot bound to an AGV tooling (IsTooling, 2.48)."""
    place = call.need_place()
    code = str(call.body["Sfc"])
    call.sfc = code
    if call.body.get("IsTooling"):
        codes = call.state.agv_tools.get(code)
        if not codes:
            raise Refused("material", f"sfc: tooling {code} has no material bound to it (2.48)")
        found = [_lot(call, c, f"sfc: tooling {code} holds {c}", place.process, raw=True) for c in codes]
        for lot, _ in found:
            _load(call, place, lot, lot.remaining)
        return RuleAnswer()
    lot, material = _lot(call, code, "sfc", place.process, raw=True)
    qty = call.body.get("Qty")
    qty = lot.remaining if qty is None else float(qty)
    if qty <= 0 or qty > lot.remaining + EPS:
        raise Refused(
            "material",
            f"qty: {qty:g} {material.unit} cannot be loaded from {code}, which has "
            f"{lot.remaining:g} {material.unit} left",
        )
    _load(call, place, lot, qty)
    return RuleAnswer()


def half_feeding(call: RuleCall) -> RuleAnswer:
    """2.11: a semi-finished roll or batch is loaded whole."""
    place = call.need_place()
    code = str(call.body["Sfc"])
    call.sfc = code
    lot, _ = _lot(call, code, "sfc", place.process, raw=False)
    _load(call, place, lot, lot.remaining)
    return RuleAnswer()


def _mixer(call: RuleCall) -> Place:
    code = str(call.body["ConsumeEquipmentCode"])
    place = call.route.place(code)
    if place is None or place.process not in MIXING:
        raise Refused(
            "equipment", f"consumeEquipmentCode: {code} is not a mixer or glue maker of line {call.route.line.name}"
        )
    return place


def _check_consumption(call: RuleCall, mixer: Place, codes: list[tuple[str, str]]) -> list[tuple[Lot, Material]]:
    """Each lot in inventory, of a material the mixer's process uses and its verified formula adds."""
    equip = call.state.equip(mixer.equipment)
    formula = call.data.formulas.get(equip.formula)
    if not equip.formula_at or formula is None:
        raise Refused(
            "verification",
            f"{mixer.equipment} has not passed formula verification (2.16) since it "
            f"started: feeding is refused until it does",
        )
    wanted = formula.materials()
    found = []
    for code, where in codes:
        lot, material = _lot(call, code, where, mixer.process, raw=None)
        if wanted and material.code not in wanted:
            raise Refused(
                "material",
                f"{where}: {code} is {material.code}, which formula {formula.code} {formula.version} does not add",
            )
        found.append((lot, material))
    return found


def consume_before_check(call: RuleCall) -> RuleAnswer:
    mixer = _mixer(call)
    _check_consumption(call, mixer, [(str(c), f"sfcList[{i}]") for i, c in enumerate(call.body["SfcList"])])
    return RuleAnswer()


def consume(call: RuleCall) -> RuleAnswer:
    mixer = _mixer(call)
    items = call.body["ConsumeSfcList"]
    found = _check_consumption(call, mixer, [(str(x["Sfc"]), f"consumeSfcList[{i}].sfc") for i, x in enumerate(items)])
    for i, ((lot, material), item) in enumerate(zip(found, items, strict=True)):
        qty = float(item["Qty"])
        if qty <= 0 or qty > lot.remaining + EPS:
            raise Refused(
                "material",
                f"consumeSfcList[{i}].qty: {qty:g} {material.unit} cannot be consumed from "
                f"{lot.barcode}, which has {lot.remaining:g} {material.unit} left",
            )
    for (lot, _), item in zip(found, items, strict=True):
        _load(call, mixer, lot, float(item["Qty"]))
    return RuleAnswer()


def feeding_completed(call: RuleCall) -> RuleAnswer:
    before, after = float(call.body["BeforeFeedingQty"]), float(call.body["AfterFeedingQty"])
    if after < before:
        raise Refused(
            "material", f"afterFeedingQty: {after:g} is less than beforeFeedingQty {before:g}; feeding adds material"
        )
    return RuleAnswer()


def output_batch(call: RuleCall) -> RuleAnswer:
    """2.20: a glue or slurry batch code, as the table's object {sfc} (2.20-1)."""
    place = call.need_place()
    output = call.data.outputs.get(place.process)
    if output is None or output.get("code") != "batch":
        raise Refused("equipment", f"process {place.process} makes no glue or slurry batch (2.20)")
    equip = call.state.equip(place.equipment)
    if not equip.formula_at:
        raise Refused("verification", f"{place.equipment} has not passed formula verification (2.16): no output")
    material = call.data.materials[output["material"]]
    code = issue_code(call, "batch", output.get("prefix", ""))
    lot = Lot(
        code,
        material.code,
        material.lot_qty,
        material.lot_qty,
        False,
        "2.20",
        place.equipment,
        call.at_text,
        location=place.equipment,
    )
    call.state.lots[code] = lot
    lot.save(call.tx)
    call.sfc = code
    return RuleAnswer({"sfc": code})


def batch_move(call: RuleCall) -> RuleAnswer:
    code = str(call.body["Sfc"])
    call.sfc = code
    lot = call.state.lots.get(code)
    if lot is None or lot.source != "2.20":
        raise Refused("material", f"sfc: {code} is not a glue or slurry batch made here (2.20)")
    source = str(call.body["EquipmentCodeOut"])
    if lot.location and lot.location != source:
        raise Refused("material", f"equipmentCodeOut: batch {code} is in {lot.location}, not in {source}")
    qty = call.body.get("Qty")
    if qty not in (None, 0) and float(qty) > lot.remaining + EPS:
        raise Refused("material", f"qty: {float(qty):g} is more than the {lot.remaining:g} left of batch {code}")
    lot.location = str(call.body["EquipmentCodeIn"])
    lot.save(call.tx)
    return RuleAnswer()


def non_production(call: RuleCall) -> RuleAnswer:
    """2.22 washing with NMP/DIW: any non-empty code is accepted and not checked (2.22-2)."""
    return RuleAnswer()


def tool_bind(call: RuleCall) -> RuleAnswer:
    tool = str(call.body["ContainerCode"])
    lots = []
    for i, item in enumerate(call.body["ContainerSfcList"]):
        code = str(item["Sfc"])
        lot = call.state.lots.get(code)
        if lot is None or not lot.raw:
            raise Refused(
                "material", f"containerSfcList[{i}].sfc: {code} is not a raw-material lot in inventory (2.47)"
            )
        if lot.tool and lot.tool != tool:
            raise Refused("material", f"containerSfcList[{i}].sfc: {code} is already bound to tooling {lot.tool}")
        lots.append(lot)
    for lot in lots:
        lot.tool = tool
        lot.save(call.tx)
    call.state.agv_tools[tool] = [lot.barcode for lot in lots]
    call.tx.put("agv_tool", tool, {"lots": call.state.agv_tools[tool]})
    return RuleAnswer()
