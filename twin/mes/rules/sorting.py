"""Sorting: the rules (2.45), downgrade records (2.51), tray split (2.52) and graded outbound (2.53).

The MES knows what grade a cell should get when it holds the cell's value of the rule's parameter (from
earlier parameter uploads) or a downgrade record for it; a sorter reporting another grade is refused.
"""

from __future__ import annotations

from twin.mes.rules import moves
from twin.mes.rules.base import Refused, RuleAnswer, RuleCall
from twin.mes.rules.trays import describe_tray, release_cells, unbind_cells
from twin.mes.seed import SortRule
from twin.mes.state import UnitRecord


def _rule(call: RuleCall, product: str) -> SortRule:
    rule = call.data.sort_rules.get(product)
    if rule is None:
        known = ", ".join(sorted(call.data.sort_rules)) or "none"
        raise Refused("sorting", f"productCode: no sorting rule for product {product!r} (rules exist for {known})")
    return rule


def sorting_rule(call: RuleCall) -> RuleAnswer:
    """2.45: ProductCode first, else the product of Sfc's cell, else the equipment's (2.45-2)."""
    product = call.body.get("ProductCode") or ""
    if not product and call.body.get("Sfc"):
        unit = call.state.unit(str(call.body["Sfc"]))
        product = unit.product if unit is not None else ""
    rule = _rule(call, product or moves.product_of(call))
    lines = [
        {
            "sortRuleCode": rule.code,
            "sortRuleName": rule.name,
            "parameterCode": rule.parameter,
            "parameterName": rule.parameter_name,
            "minValue": line.min,
            "minContainingType": line.min_type,
            "maxValue": line.max,
            "maxContainingType": line.max_type,
            "parameterValue": None,
            "rating": line.rating,
            "serial": line.serial,
            "procedureCode": rule.procedure,
            "grade": line.grade,
        }
        for line in sorted(rule.lines, key=lambda x: x.serial)
    ]
    return RuleAnswer(lines)


def sfc_info(call: RuleCall) -> RuleAnswer:
    """2.51: only the cells with a downgrade record, with its grade."""
    rows = []
    for i, code in enumerate(str(c) for c in call.body["SfcList"]):
        unit = call.state.unit(code)
        if unit is None:
            raise Refused("product", f"sfcList[{i}]: {code} is unknown to the MES")
        if unit.downgrade:
            rows.append({"SFC": code, "Grade": unit.downgrade})
    return RuleAnswer(rows)


def sorting_unbind(call: RuleCall) -> RuleAnswer:
    """2.52: the tray's cells are released and make their inbound at sorting."""
    place = call.need_place()
    tray = call.state.tray(str(call.body["ContainCode"]))
    units = unbind_cells(call, tray, [str(c) for c in call.body["SfcList"]], "sfcList")
    moves.require_verified(call, place)
    entering = [u for u in units if moves.check_enter(call, u, place, u.sfc)]
    release_cells(call, tray, units)
    for unit in entering:
        moves.enter(call, unit, place)
    return RuleAnswer()


def _expected(rule: SortRule, unit: UnitRecord) -> tuple[str | None, str]:
    if unit.downgrade:
        return unit.downgrade, "its downgrade record (2.51)"
    raw = unit.params.get(rule.parameter)
    if raw is None:
        return None, ""
    try:
        value = float(raw)
    except ValueError:
        return None, ""
    return rule.grade_of(value), f"{rule.parameter} = {raw}"


def sorting_outbound(call: RuleCall) -> RuleAnswer:
    """2.53: graded cells leave sorting in an output tray of one grade."""
    place = call.need_place()
    tray = call.state.tray(str(call.body["ContainerCode"]))
    passed = int(call.body.get("Passed", 1) if call.body.get("Passed") is not None else 1)
    grade = str(call.body.get("Grade") or "")
    if tray.state == "in" or (tray.cells and (tray.state != "bound" or tray.grade != grade)):
        raise Refused(
            "tray",
            f"containerCode: {describe_tray(tray)} (grade {tray.grade or 'none'}); a sorted tray takes "
            f"cells of one grade",
        )
    locations = {loc: code for code, loc in tray.cells.items()}
    cells: list[tuple[UnitRecord, str]] = []
    for i, item in enumerate(call.body["ContainerSfcList"]):
        where = f"containerSfcList[{i}]"
        code, location = str(item["Sfc"]), str(item["Location"])
        unit = moves.resolve(call, code, "cell")
        if not moves.check_leave(call, unit, place, code):
            continue
        rule = _rule(call, unit.product)
        if passed and grade:
            if grade not in rule.grades():
                raise Refused(
                    "sorting",
                    f"grade: {grade!r} is not a grade of rule {rule.code} ({', '.join(sorted(rule.grades()))})",
                )
            expected, because = _expected(rule, unit)
            if expected is not None and expected != grade:
                raise Refused("sorting", f"{where}.sfc: {code} belongs in grade {expected} ({because}), not {grade}")
        if locations.get(location, unit.sfc) != unit.sfc:
            raise Refused(
                "tray", f"{where}.location: position {location} of tray {tray.code} already holds {locations[location]}"
            )
        locations[location] = unit.sfc
        cells.append((unit, location))
    for unit, location in cells:
        unit.grade = grade
        unit.container = tray.code
        tray.cells[unit.sfc] = location
        moves.leave(call, unit, place, passed=passed, params=call.body["ParamList"])
    tray.state, tray.grade, tray.at, tray.equipment = "bound", grade, call.at_text, ""
    tray.save(call.tx)
    return RuleAnswer()
