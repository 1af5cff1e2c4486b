"""Startup parameters (2.7-2.9) and formulas (2.14-2.16): handed out from data, verified strictly.

A verification that passes is what lets the equipment produce (``moves.require_verified``); one that
fails revokes the last good one, since the equipment may not start on what it now has set.
"""

from __future__ import annotations

import math
from typing import Any

from twin.mes.rules.base import Refused, RuleAnswer, RuleCall
from twin.mes.seed import Formula, Recipe


def _process(call: RuleCall) -> str:
    return call.need_place().process


def get_recipe_list(call: RuleCall) -> RuleAnswer:
    process = _process(call)
    product = call.body.get("ProductCode") or ""
    rows = [
        {"recipeCode": r.code, "version": r.version, "productCode": r.product, "lastUpdateOnTime": r.updated}
        for r in call.data.recipes.values()
        if r.process == process and (not product or r.product == product)
    ]
    return RuleAnswer(rows)


def _recipe(call: RuleCall, code: str) -> Recipe:
    process = _process(call)
    recipe = call.data.recipes.get(code)
    if recipe is None or recipe.process != process:
        known = ", ".join(r.code for r in call.data.recipes.values() if r.process == process) or "none"
        raise Refused(
            "verification",
            f"recipeCode: {code!r} is not a startup-parameter set of process {process} (its sets: {known})",
        )
    return recipe


def get_recipe_detail(call: RuleCall) -> RuleAnswer:
    recipe = _recipe(call, str(call.body["RecipeCode"]))
    params = [
        {"paramCode": p.code, "paramName": p.name, "paramValue": p.value, "paramUpper": p.upper, "paramLower": p.lower}
        for p in recipe.params
    ]
    return RuleAnswer({"version": recipe.version, "lastUpdateOnTime": recipe.updated, "paramList": params})


def _number(text: Any, where: str) -> float:
    try:
        value = float(str(text).strip())
    except ValueError:
        value = math.nan
    if math.isnan(value):
        raise Refused("verification", f"{where}: expected a number, got {text!r}")
    return value


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def _check_recipe(call: RuleCall, recipe: Recipe) -> None:
    body = call.body
    if body["ProductCode"] != recipe.product:
        raise Refused(
            "verification", f"productCode: {recipe.code} is for product {recipe.product}, not {body['ProductCode']!r}"
        )
    if body["Version"] != recipe.version:
        raise Refused(
            "verification",
            f"version: {body['Version']!r} is not the current version {recipe.version} "
            f"of {recipe.code}; download it again (2.8)",
        )
    sent = {str(p["ParamCode"]): (i, p) for i, p in enumerate(body["ParamList"])}
    for code in sent:
        if code not in {p.code for p in recipe.params}:
            raise Refused(
                "verification", f"paramList[{sent[code][0]}].paramCode: {code} is not a parameter of {recipe.code}"
            )
    for param in recipe.params:
        if param.code not in sent:
            raise Refused(
                "verification", f"paramList: parameter {param.code} ({param.name}) of {recipe.code} is missing"
            )
        i, p = sent[param.code]
        where = f"paramList[{i}]"
        for key, mine in (("ParamUpper", param.upper), ("ParamLower", param.lower)):
            if not _same(_number(p[key], f"{where}.{key[0].lower()}{key[1:]}"), float(mine)):
                raise Refused(
                    "verification",
                    f"{where}.{key[0].lower()}{key[1:]}: {param.code} limit {p[key]!r} "
                    f"differs from the MES's {mine} (limits may not be changed on the equipment)",
                )
        value = _number(p["ParamValue"], f"{where}.paramValue")
        if not float(param.lower) <= value <= float(param.upper):
            raise Refused(
                "verification",
                f"{where}.paramValue: {param.code} ({param.name}) = {p['ParamValue']} "
                f"is outside [{param.lower}, {param.upper}]",
            )


def verify_recipe(call: RuleCall) -> RuleAnswer:
    """2.9: the set, its version, every parameter, unchanged limits, values inside them."""
    recipe = _recipe(call, str(call.body["RecipeCode"]))
    equip = call.state.equip(call.equipment)
    try:
        _check_recipe(call, recipe)
    except Refused as refused:
        if equip.verified_at:
            equip.verified_at = ""
            equip.save(call.tx)
        raise Refused(refused.reason, refused.msg, keep=True) from None
    equip.recipe = recipe.code
    equip.recipe_version = recipe.version
    equip.verified_at = call.at_text
    equip.save(call.tx)
    return RuleAnswer()


def formula_list(call: RuleCall) -> RuleAnswer:
    process = _process(call)
    product = call.body.get("ProductCode") or ""
    rows = [
        {"formulaCode": f.code, "version": f.version, "productCode": f.product, "lastUpdateOnTime": f.updated}
        for f in call.data.formulas.values()
        if f.process == process and (not product or f.product == product)
    ]
    return RuleAnswer(rows)


def _formula(call: RuleCall, code: str) -> Formula:
    process = _process(call)
    formula = call.data.formulas.get(code)
    if formula is None or formula.process != process:
        known = ", ".join(f.code for f in call.data.formulas.values() if f.process == process) or "none"
        raise Refused(
            "verification", f"formulaCode: {code!r} is not a formula of process {process} (its formulas: {known})"
        )
    return formula


def formula_detail(call: RuleCall) -> RuleAnswer:
    """The table shape of 2.15: an array with one {version, paramList} (2.15-1)."""
    formula = _formula(call, str(call.body["FormulaCode"]))
    steps = []
    for s in formula.steps:
        category = s["category"]
        steps.append(
            {
                "sepOrder": int(s["order"]),
                "category": category,
                "marterialCode": s.get("material") if category == "A" else None,
                "marterialGroupCode": s.get("group") if category == "A" else None,
                "paramCode": s.get("param") if category == "B" else None,
                "paramValue": s.get("value") if category == "B" else None,
                "functionCode": s.get("function") if category == "C" else None,
                "unit": s.get("unit"),
            }
        )
    return RuleAnswer([{"version": formula.version, "paramList": steps}])


def formula_examine(call: RuleCall) -> RuleAnswer:
    formula = _formula(call, str(call.body["FormulaCode"]))
    equip = call.state.equip(call.equipment)
    if call.body["Version"] != formula.version:
        if equip.formula_at:
            equip.formula_at = ""
            equip.save(call.tx)
        raise Refused(
            "verification",
            f"version: {call.body['Version']!r} is not the current version "
            f"{formula.version} of {formula.code}; download it again (2.15)",
            keep=True,
        )
    equip.formula = formula.code
    equip.formula_version = formula.version
    equip.formula_at = call.at_text
    equip.save(call.tx)
    return RuleAnswer()
