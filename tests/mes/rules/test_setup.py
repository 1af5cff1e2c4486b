"""Startup parameters (2.7-2.9) and formulas (2.14-2.16): from data, verified strictly, gating production."""

from __future__ import annotations

from typing import Any

from tests.mes.conftest import HOT_PRESS, MIXER, WINDER, Host


async def _detail(host: Host, equipment: str) -> tuple[str, dict[str, Any]]:
    listing = await host.ok("GetRecipeList", {"ProductCode": ""}, equipment)
    code = listing[0]["recipeCode"]
    return code, await host.ok("GetRecipeDetail", {"RecipeCode": code}, equipment)


def _verify_body(code: str, detail: dict[str, Any], **change: str) -> dict[str, Any]:
    params = [
        {
            "ParamCode": p["paramCode"],
            "ParamValue": p["paramValue"],
            "ParamUpper": p["paramUpper"],
            "ParamLower": p["paramLower"],
        }
        for p in detail["paramList"]
    ]
    for key, value in change.items():
        params[0][key] = value
    return {"ProductCode": "QK-LFP-280AH", "RecipeCode": code, "Version": detail["version"], "ParamList": params}


async def test_recipe_list_and_detail_come_from_data(host: Host) -> None:
    listing = await host.ok("GetRecipeList", {"ProductCode": "QK-LFP-280AH"}, WINDER)
    assert [r["recipeCode"] for r in listing] == ["KJ-WIND-280AH-A"]
    both = await host.ok("GetRecipeList", {"ProductCode": None}, WINDER)
    assert {r["productCode"] for r in both} == {"QK-LFP-280AH", "QK-LFP-314AH"}
    detail = await host.ok("GetRecipeDetail", {"RecipeCode": "KJ-WIND-280AH-A"}, WINDER)
    assert detail["version"] == "V1.3"
    assert detail["paramList"][0] == {
        "paramCode": "WD0001",
        "paramUpper": "14.0",
        "paramLower": "10.0",
        "paramValue": "12.0",
        "paramName": "阴极放卷张力(N)",
    }
    await host.refused("GetRecipeDetail", {"RecipeCode": "KJ-HP-280AH-A"}, WINDER, "not a startup-parameter set")


async def test_verification_refuses_what_the_spec_forbids(host: Host) -> None:
    code, detail = await _detail(host, WINDER)
    await host.refused("Recipe", _verify_body(code, detail, ParamValue="14.5"), WINDER, "outside [10.0, 14.0]")
    await host.refused("Recipe", _verify_body(code, detail, ParamUpper="16"), WINDER, "limits may not be changed")
    await host.refused("Recipe", _verify_body(code, detail, ParamValue="abc"), WINDER, "expected a number")
    old = _verify_body(code, detail)
    old["Version"] = "V1.2"
    await host.refused("Recipe", old, WINDER, "not the current version V1.3")
    missing = _verify_body(code, detail)
    missing["ParamList"] = missing["ParamList"][1:]
    await host.refused("Recipe", missing, WINDER, "WD0001", "is missing")
    await host.ok("Recipe", _verify_body(code, detail, ParamValue="13.9"), WINDER)


async def test_production_waits_for_verification(host: Host) -> None:
    await host.refused(
        "CollingPolar",
        {"Sfc": "JR-V1", "Passed": 1, "NgList": []},
        WINDER,
        "has not passed startup-parameter verification",
    )
    await host.verify(WINDER)
    await host.jelly_roll(WINDER, "JR-V1")
    code, detail = await _detail(host, WINDER)
    await host.refused("Recipe", _verify_body(code, detail, ParamValue="99"), WINDER, "outside")
    await host.refused(
        "CollingPolar", {"Sfc": "JR-V2", "Passed": 1, "NgList": []}, WINDER, "startup-parameter verification"
    )  # a failed verification revokes the last good one


async def test_a_long_stop_needs_a_new_verification(host: Host) -> None:
    await host.verify(HOT_PRESS)
    await host.ok("State", {"StateCode": "1", "DownReason": ""}, HOT_PRESS)
    await host.ok("State", {"StateCode": "3", "DownReason": ""}, HOT_PRESS)
    host.tick(60)  # a short stop keeps the verification
    await host.ok("State", {"StateCode": "1", "DownReason": ""}, HOT_PRESS)
    await host.verify(WINDER)
    jr = await host.jelly_roll()
    await host.ok("Inbound", {"Sfc": jr}, HOT_PRESS)
    await host.ok("State", {"StateCode": "2", "DownReason": ""}, HOT_PRESS)
    host.tick(200)  # 3 min or more (line periods.long_stop_s)
    await host.ok("State", {"StateCode": "1", "DownReason": "3"}, HOT_PRESS)
    jr2 = await host.jelly_roll()
    await host.refused("Inbound", {"Sfc": jr2}, HOT_PRESS, "startup-parameter verification")
    await host.verify(HOT_PRESS)
    await host.ok("Inbound", {"Sfc": jr2}, HOT_PRESS)


async def test_state_is_reported_on_change_only(host: Host) -> None:
    await host.ok("State", {"StateCode": "3", "DownReason": ""}, WINDER)
    await host.refused("State", {"StateCode": "3", "DownReason": ""}, WINDER, "called only when the state changes")


async def test_formulas_list_detail_and_version_check(host: Host) -> None:
    listing = await host.ok("FormulaListGet", {"ProductCode": "QK-LFP-280AH"}, MIXER)
    assert [f["formulaCode"] for f in listing] == ["FM-C-LFP-001", "FM-A-GR-001"]
    detail = await host.ok("FormulaDetailGet", {"FormulaCode": "FM-C-LFP-001"}, MIXER)
    assert isinstance(detail, list) and detail[0]["version"] == "V1.2"  # the table shape (2.15-1)
    first = detail[0]["paramList"][0]
    assert first["category"] == "A" and first["marterialCode"] == "GLUE-PVDF" and first["paramCode"] is None
    await host.refused(
        "FormulaVersionExamine",
        {"FormulaCode": "FM-C-LFP-001", "Version": "V1.1"},
        MIXER,
        "not the current version V1.2",
    )
    await host.refused(
        "FormulaVersionExamine",
        {"FormulaCode": "FM-GLUE-PVDF-001", "Version": "V1.4"},
        MIXER,
        "not a formula of process slurry_mixing",
    )
    await host.ok("FormulaVersionExamine", {"FormulaCode": "FM-C-LFP-001", "Version": "V1.2"}, MIXER)
