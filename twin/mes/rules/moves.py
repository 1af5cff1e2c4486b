"""Moving a product along the route: the checks every inbound and outbound shares, and the changes.

Inbound at a station's step needs the product to have left the step before it (the previous step that
applies to that product); outbound needs its inbound at that equipment (or, at a station without an
inbound interface, the same check as an inbound). An NG product cannot go on; a finished one neither.
Repeating the last move at the same equipment is accepted without change, so a host may re-upload
(spec 1.5.9) or retry after a timeout.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from twin.mes.interlock import observe_result
from twin.mes.route import Place, Step
from twin.mes.rules.base import Call, Refused
from twin.mes.state import Unit

NG_HINT = "NG products are taken off the line"


def resolve(call: Call, code: str, what: str = "product") -> Unit:
    unit = call.state.unit(code)
    if unit is None:
        raise Refused(
            "product",
            f"{what} {code!r} is unknown to the MES: it was never made (2.44/2.28 at the "
            f"origin) nor bound to a known product",
        )
    return unit


def product_of(call: Call) -> str:
    recipe = call.data.recipes.get(call.state.equip(call.equipment).recipe)
    return recipe.product if recipe else call.data.default_product


def applies(unit: Unit, condition: str) -> bool:
    if condition == "top_cover":
        return bool(unit.top_cover)
    return False


def _where(call: Call, step_index: int) -> str:
    return call.route.steps[step_index].name if 0 <= step_index < len(call.route.steps) else "?"


def require_verified(call: Call, place: Place) -> None:
    """Production starts only after startup-parameter verification (2.9) where the process has parameters."""
    if not any(r.process == place.process for r in call.data.recipes.values()):
        return
    equip = call.state.equip(place.equipment)
    if not equip.verified_at:
        raise Refused(
            "verification",
            f"equipment {place.equipment} has not passed startup-parameter verification (2.9 Recipe) since it "
            f"started or stopped for {call.data.long_stop_s:g} s or more: production is refused until it does",
        )


def check_enter(call: Call, unit: Unit, place: Place, code: str) -> bool:
    """Refuse unless ``unit`` may start a visit to ``place``; False when it is already there (a repeat)."""
    step = _step(call, place)
    if unit.ng:
        raise Refused(
            "ng",
            f"{code} is NG ({', '.join(unit.ng_codes) or 'no code'} at {unit.ng_equipment}): "
            f"it cannot go on to {step.name}; {NG_HINT}",
        )
    if unit.done:
        raise Refused("route", f"{code} has finished the route (last at {unit.equipment}); it cannot enter {step.name}")
    if unit.equipment and call.route.place(unit.equipment) is None:  # an MES of several lines (a factory)
        raise Refused(
            "route",
            f"{code} is a product of another line (last at {unit.equipment}): it cannot enter {place.equipment} "
            f"of line {call.route.line.name}",
        )
    if unit.phase == "in":
        if unit.equipment == place.equipment and unit.step == step.index:
            return False
        raise Refused(
            "route",
            f"{code} is still in process at {unit.equipment} ({_where(call, unit.step)}): "
            f"report its outbound there before its inbound at {place.equipment}",
        )
    if step.condition and not applies(unit, step.condition):
        raise Refused(
            "route",
            f"{step.name} is not on the route of {code} (it applies to products with "
            f"{step.condition.replace('_', ' ')})",
        )
    if unit.step < 0:  # work in progress taken over at go-live (2.47): its first move sets its position
        return True
    if unit.step >= step.index:
        raise Refused(
            "route",
            f"{code} has already passed {step.name} (last outbound at {unit.equipment}, {_where(call, unit.step)})",
        )
    previous = call.route.previous(step, lambda c: applies(unit, c))
    if previous is not None and unit.step != previous.index:
        raise Refused(
            "route",
            f"{code} skipped {previous.name}: its last outbound was at {unit.equipment} "
            f"({_where(call, unit.step)}); inbound at {step.name} needs its outbound at {previous.name}",
        )
    return True


def check_leave(call: Call, unit: Unit, place: Place, code: str) -> bool:
    """Refuse unless ``unit`` may leave ``place``; False when that outbound was already recorded (a repeat)."""
    step = _step(call, place)
    if unit.phase == "out" and unit.step == step.index and unit.equipment == place.equipment:
        return False
    if not place.has_inbound:
        return check_enter(call, unit, place, code)
    if unit.phase != "in" or unit.step != step.index or unit.equipment != place.equipment:
        last = f"{unit.phase}bound at {unit.equipment} ({_where(call, unit.step)})"
        raise Refused(
            "route", f"{code} has no inbound at {place.equipment}: report its inbound first (its last move was {last})"
        )
    if unit.ng:
        raise Refused("ng", f"{code} is NG ({', '.join(unit.ng_codes)} at {unit.ng_equipment}); {NG_HINT}")
    return True


def _step(call: Call, place: Place) -> Step:
    if place.step is None:
        raise Refused(
            "equipment",
            f"station {place.station.id} ({place.equipment}) tracks no products on line "
            f"{call.route.line.name}; {call.op.operation_id} ({call.op.section}) needs a route station",
        )
    return place.step


def enter(call: Call, unit: Unit, place: Place) -> None:
    unit.step = _step(call, place).index
    unit.phase = "in"
    unit.equipment = place.equipment
    unit.at = call.at_text
    unit.save(call.tx)


def leave(
    call: Call,
    unit: Unit,
    place: Place,
    *,
    passed: int = 1,
    ng_codes: Iterable[str] = (),
    params: Iterable[dict[str, Any]] = (),
    feeding: Iterable[str] = (),
) -> None:
    step = _step(call, place)
    unit.step = step.index
    unit.phase = "out"
    unit.equipment = place.equipment
    unit.at = call.at_text
    codes = list(ng_codes)
    if not passed:
        unit.ng = True
        unit.ng_codes = codes
        unit.ng_equipment = place.equipment
    record_params(call, unit, params)
    for lot in feeding:
        call.tx.genealogy(unit.sfc, lot, "material", place.equipment, call.at_text)
    if step.index == len(call.route.steps) - 1 and not unit.ng:
        unit.done = True
    unit.save(call.tx)
    observe_result(call, unit, place, bool(passed), codes)


def check_fed(call: Call, place: Place, codes: Iterable[str], field: str) -> list[str]:
    """Bound feeding codes must be lots loaded at this equipment (2.10/2.11)."""
    equip = call.state.equip(place.equipment)
    fed = equip.fed
    codes = list(codes)
    for i, code in enumerate(codes):
        if code not in fed and code != equip.electrolyte:  # the current electrolyte batch (3.2) is in the tank
            raise Refused(
                "material", f"{field}[{i}]: {code} is not loaded at {place.equipment} (feed it with 2.10 or 2.11 first)"
            )
    return codes


def record_params(call: Call, unit: Unit, params: Iterable[dict[str, Any]]) -> None:
    """Keep the values the sorting and downgrade rules read, and record a downgrade when one applies."""
    wanted = call.data.sort_wanted()
    for p in params:
        code = p.get("ParamCode")
        if code in wanted:
            unit.params[code] = str(p.get("ParamValue"))
    if unit.downgrade:
        return
    for rule in call.data.downgrades:
        raw = unit.params.get(rule["parameter"])
        try:
            value = float(raw) if raw is not None else None
        except ValueError:
            continue
        if value is None:
            continue
        if ("above" in rule and value > float(rule["above"])) or ("below" in rule and value < float(rule["below"])):
            unit.downgrade = str(rule["grade"])
            call.tx.genealogy(
                unit.sfc, f"downgrade:{rule['grade']}", str(rule.get("reason", "")), call.equipment, call.at_text
            )
            break
