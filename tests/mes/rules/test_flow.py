"""Route tracking: inbound after the previous outbound, outbound after inbound, NG stops, bindings."""

from __future__ import annotations

from typing import Any

from tests.mes.conftest import (
    ASSEMBLY,
    CORE,
    COVER_B,
    EDGE,
    HOT_PRESS,
    INJ1,
    INJ2,
    MYLAR,
    TAB_CUT,
    USW,
    WINDER,
    XRAY,
    Host,
    assembled_cell,
    fresh,
    get_json,
    verified,
)


def _out(code: str, passed: int = 1, **extra: Any) -> dict[str, Any]:
    return {"Sfc": code, "Passed": passed, "ParamList": [], "BindFeedingCodeList": [], "NgList": [], **extra}


async def test_inbound_needs_the_previous_outbound(host: Host) -> None:
    await verified(host, WINDER, HOT_PRESS, XRAY)
    jr = await host.jelly_roll()
    await host.refused("Inbound", {"Sfc": jr}, XRAY, "skipped hot-press", "needs its outbound at hot-press")
    await host.refused("Inbound", {"Sfc": "JR-NEVER-MADE"}, HOT_PRESS, "unknown to the MES")
    await host.ok("Inbound", {"Sfc": jr}, HOT_PRESS)
    await host.ok("Inbound", {"Sfc": jr}, HOT_PRESS)  # a retry changes nothing
    await host.refused("Inbound", {"Sfc": jr}, "A02-HP-02", "still in process at A02-HP-01")
    await host.ok("Outbound", _out(jr), HOT_PRESS)
    await host.refused("Inbound", {"Sfc": jr}, "A02-HP-02", "already passed hot-press")
    await host.ok("Inbound", {"Sfc": jr}, XRAY)


async def test_outbound_needs_inbound(host: Host) -> None:
    await verified(host, WINDER, HOT_PRESS)
    jr = await host.jelly_roll()
    await host.refused("Outbound", _out(jr), HOT_PRESS, "has no inbound at A02-HP-01")
    await host.ok("Inbound", {"Sfc": jr}, HOT_PRESS)
    await host.refused("Outbound", _out(jr), "A02-HP-02", "has no inbound at A02-HP-02")
    await host.ok("Outbound", _out(jr), HOT_PRESS)
    await host.ok("Outbound", _out(jr), HOT_PRESS)  # a re-upload of the same outbound is accepted unchanged


async def test_an_ng_product_cannot_go_on(host: Host) -> None:
    await verified(host, WINDER, HOT_PRESS, XRAY)
    jr = await host.jelly_roll()
    await host.move(jr, HOT_PRESS, passed=0, ng=["NG-HP-THICK"])
    await host.refused("Inbound", {"Sfc": jr}, XRAY, "is NG (NG-HP-THICK at A02-HP-01)", "cannot go on")
    bad = await host.jelly_roll(passed=0)
    await host.refused("Inbound", {"Sfc": bad}, HOT_PRESS, "is NG")


async def test_jelly_roll_codes_are_new_and_made_by_verified_winders(host: Host) -> None:
    await host.verify(WINDER)
    jr = await host.jelly_roll()
    await host.ok("CollingPolar", {"Sfc": jr, "Passed": 1, "NgList": []}, WINDER)  # the same report again
    await host.refused("CollingPolar", {"Sfc": jr, "Passed": 1, "NgList": []}, "A02-WIND-02", "already exists")
    await host.refused("CollingPolar", {"Sfc": fresh("JR")}, HOT_PRESS, "not an interface of station hot-press")


async def test_bound_feeding_codes_must_be_loaded_there(host: Host) -> None:
    await verified(host, WINDER, HOT_PRESS)
    jr = await host.jelly_roll()
    await host.ok("Inbound", {"Sfc": jr}, HOT_PRESS)
    await host.refused(
        "Outbound",
        _out(jr, BindFeedingCodeList=["RM-TAPE-1"]),
        HOT_PRESS,
        "bindFeedingCodeList[0]: RM-TAPE-1 is not loaded at A02-HP-01",
    )


async def test_binding_records_the_genealogy(host: Host) -> None:
    await verified(host, *ASSEMBLY, MYLAR)
    cell, jr1, jr2 = await assembled_cell(host)
    trace = await get_json(host, f"/admin/trace/{jr2}")  # any code of the cell finds it
    assert trace["product"]["sfc"] == cell and trace["product"]["origins"] == [WINDER]
    relations = {(g["parent"], g["child"], g["relation"]) for g in trace["genealogy"]}
    assert {(jr1, jr2, "pair"), (cell, jr1, "jelly_roll"), (cell, jr2, "jelly_roll")} <= relations
    await host.refused("Inbound", {"Sfc": cell}, MYLAR, "skipped core-taping")
    await host.refused("Inbound", {"Sfc": cell}, EDGE, "edge-rolling is not on the route")
    await host.ok("InboundBindJzSingleAsync", {"Sfc": jr1, "OperationType": "3"}, CORE)
    await host.ok("BoundOutbound", _out(cell, OperationType="3"), CORE)
    await host.move(cell, MYLAR)


async def test_top_cover_path_binds_cover_then_cell_code(host: Host) -> None:
    """2.56 binds a top-cover code to the pair, 2.55 reports cell codes, 2.58 binds one at edge rolling."""
    await verified(host, WINDER, HOT_PRESS, XRAY, TAB_CUT, USW, COVER_B)
    jrs = [await host.jelly_roll(), await host.jelly_roll()]
    for jr in jrs:
        for station in (HOT_PRESS, XRAY, TAB_CUT):
            await host.move(jr, station)
    await host.ok("InboundMore", {"SfcList": jrs}, USW)
    await host.ok("OutboundMultPolar", {"SfcList": [_out(jr) for jr in jrs]}, USW)
    cover = fresh("TC-A02-")
    bind = {"Sfc": cover, "JzSfcs": jrs[:1], "Passed": 1, "ParamList": [], "BindFeedingCodes": [], "NgList": []}
    await host.refused("OutboundForCoverplateBind", bind, COVER_B, f"was bound with {jrs[1]}")
    await host.ok("OutboundForCoverplateBind", {**bind, "JzSfcs": jrs}, COVER_B)
    cell = "QKA02CE24062400009A00009"
    await host.ok("Receive24DxCode", {"SfcList": [cell]}, COVER_B)
    await host.ok("Inbound", {"Sfc": cover}, EDGE)
    top = {
        "Sfc": "QKA02CE24062400008A00008",
        "TopCoverSfc": cover,
        "Passed": 1,
        "ParamList": [],
        "BindFeedingCodes": [],
        "NgList": [],
    }
    await host.refused("OutboundForCellBindTopCover", top, EDGE, "not a cell code reported by 2.55")
    await host.ok("OutboundForCellBindTopCover", {**top, "Sfc": cell}, EDGE)
    await host.ok("InboundBindJzSingleAsync", {"Sfc": cell, "OperationType": "3"}, CORE)
    trace = await get_json(host, f"/admin/trace/{cell}")
    assert set(trace["product"]["codes"]) == {cover, cell, *jrs}


async def test_first_injection_amount_is_kept_for_the_second(host: Host) -> None:
    await verified(host, INJ1)
    code = fresh("CELL")
    wip = {"BarCode": code, "IsRawMaterial": False, "MaterialCode": "CELL-QK-LFP-280AH", "Qty": 1}
    await host.ok("MaterialInventory", {"BarCodeList": [wip]}, "A02-WH-01")  # taken over at go-live
    await host.refused("GetInjectionVolume", {"Sfc": code}, INJ2, "no first-injection amount")
    await host.ok("Inbound", {"Sfc": code}, INJ1)
    filling = {
        "Sfc": code,
        "InTime": "2026-11-23T06:58:40.000Z",
        "OutTime": "2026-11-23T07:05:10.000Z",
        "BeforeWeight": 2815.4,
        "AfterWeight": 3195.1,
        "ElWeight": 372.0,
        "AddEl": 5.2,
        "TotalEl": 377.2,
        "ManualEl": 2.5,
        "FinalEl": 379.7,
        "IsOk": True,
    }
    await host.ok("FillingData", filling, INJ1)
    await host.ok("Outbound", _out(code), INJ1)  # a later duplicate 2.28 is accepted (2.34-2)
    assert await host.ok("GetInjectionVolume", {"Sfc": code}, INJ2) == "379.70"
