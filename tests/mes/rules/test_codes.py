"""Codes the MES hands out are unique and traceable: 2.23, 2.25, 2.33, 2.55 (and 2.20, 3.2 elsewhere)."""

from __future__ import annotations

from tests.mes.conftest import ASSEMBLY, COATER, COVER, COVER_B, USW, Host, assembled_cell, get_json, verified


async def test_roll_codes_are_unique_and_traceable(host: Host) -> None:
    await host.verify(COATER)
    codes = []
    for qty in (3, 2, 1):
        codes += (await host.ok("GenerateSfc", {"Qty": qty}, COATER))["sfcList"]
    assert len(codes) == 6 and len(set(codes)) == 6
    await host.refused("GenerateSfc", {"Qty": 0}, COATER, "must be 1..100")
    trace = await get_json(host, f"/admin/trace/{codes[0]}")
    assert trace["issued"]["equipment"] == COATER and trace["issued"]["operation"] == "GenerateSfc"
    report = {"Sfc": codes[0], "TotalQty": 100, "OkQty": 100, "NgQty": 0, "SplitQty": 1, "ParamList": []}
    await host.refused("OutboundMetersReport", {**report, "Sfc": "CT-NEVER"}, COATER, "not a roll code handed out")
    await host.refused("OutboundMetersReport", report, "A02-COAT-02", "was handed out to A02-COAT-01")
    await host.ok("OutboundMetersReport", report, COATER)
    await host.refused("OutboundMetersReport", report, COATER, "already reported")


async def test_ccd_barcode_is_the_roll_being_made(host: Host) -> None:
    await host.verify(COATER)
    roll = (await host.ok("GenerateSfc", {"Qty": 1}, COATER))["sfcList"][0]
    data = await host.ok("CcdGetBarcode", {}, COATER)
    assert data["sfc"] == roll and data["productCode"] == "EL-COAT-280AH" and data["id"]
    report = {"Sfc": roll, "TotalQty": 100, "OkQty": 100, "NgQty": 0, "SplitQty": 1, "ParamList": []}
    await host.ok("OutboundMetersReport", report, COATER)
    fresh_code = (await host.ok("CcdGetBarcode", {}, COATER))["sfc"]
    assert fresh_code != roll


async def test_cell_codes_are_unique_per_jelly_roll_and_stable_on_retry(host: Host) -> None:
    await verified(host, *ASSEMBLY)
    cell, jr1, jr2 = await assembled_cell(host)
    cell2, _, _ = await assembled_cell(host)
    assert cell != cell2 and cell.startswith("QKA02C")
    trace = await get_json(host, f"/admin/trace/{cell}")
    assert trace["issued"]["parent"] == jr1 and set(trace["product"]["codes"]) == {cell, jr1, jr2}
    # a retry of 2.33 before 2.32 gets the same code
    jrs = [await host.jelly_roll(), await host.jelly_roll()]
    for jr in jrs:
        for station in ("A02-HP-01", "A02-XR-01", "A02-TPW-01"):
            await host.move(jr, station)
    await host.ok("InboundMore", {"SfcList": jrs}, USW)
    rows = [{"Sfc": jr, "Passed": 1, "ParamList": [], "BindFeedingCodeList": [], "NgList": []} for jr in jrs]
    await host.ok("OutboundMultPolar", {"SfcList": rows}, USW)
    first = await host.ok("GenerateCellSfc", {"Sfc": jrs[0]}, COVER)
    again = await host.ok("GenerateCellSfc", {"Sfc": jrs[0]}, COVER)
    assert first == again
    await host.refused(
        "OutboundSfcPolar",
        {"Sfc": "QKA02CFAKE", "JzSfc": jrs[0], "Passed": 1, "ParamList": [], "BindFeedingCodes": [], "NgList": []},
        COVER,
        "not a cell code issued",
    )


async def test_equipment_made_cell_codes_are_checked_and_unique(host: Host) -> None:
    good = ["QKA02CE24062400001A00001", "QKA02CE24062400002A00002"]
    await host.refused("Receive24DxCode", {"SfcList": ["SHORT-CODE"]}, COVER_B, "not a 24-character cell code")
    await host.refused("Receive24DxCode", {"SfcList": [good[0], good[0]]}, COVER_B, "already known")
    await host.ok("Receive24DxCode", {"SfcList": good}, COVER_B)
    await host.refused("Receive24DxCode", {"SfcList": [good[1]]}, COVER_B, "already known")
