"""Inventory (2.47), feeding (2.10, 2.11), mixing (2.17-2.22), AGV tooling (2.48)."""

from __future__ import annotations

from tests.mes.conftest import COATER, GLUE, MIXER, SLITTER, WAREHOUSE, WINDER, Host, fresh, get_json


async def test_inventory_reads_raw_materials_from_the_barcode(host: Host) -> None:
    sep = fresh("SEP-2611-")
    await host.receive(sep)
    await host.refused(
        "MaterialInventory",
        {"BarCodeList": [{"BarCode": sep, "IsRawMaterial": True}]},
        WAREHOUSE,
        "already in inventory",
    )
    await host.refused(
        "MaterialInventory",
        {"BarCodeList": [{"BarCode": "XYZ-1", "IsRawMaterial": True}]},
        WAREHOUSE,
        "matches no raw material",
    )
    semi = {"BarCode": fresh("PC-"), "IsRawMaterial": False, "MaterialCode": "NOPE", "Qty": 10}
    await host.refused("MaterialInventory", {"BarCodeList": [semi]}, WAREHOUSE, "'NOPE' is not a semi-finished")
    semi["MaterialCode"] = "EL-C-280AH"
    await host.ok("MaterialInventory", {"BarCodeList": [semi]}, WAREHOUSE)


async def test_feeding_needs_inventory_and_the_right_station(host: Host) -> None:
    await host.refused(
        "Feeding",
        {"Sfc": "SEP-NEVER-RECEIVED", "Qty": 10, "IsFeedingPoint": False},
        WINDER,
        "never received into inventory (2.47)",
    )
    foil = fresh("RM-CU-")
    await host.receive(foil)
    await host.refused(
        "Feeding",
        {"Sfc": foil, "Qty": 10, "IsFeedingPoint": False},
        WINDER,
        "RM-CU",
        "which process winding does not use",
    )
    sep = fresh("SEP-2611-")
    await host.receive(sep)
    await host.refused("Feeding", {"Sfc": sep, "Qty": 7000, "IsFeedingPoint": False}, WINDER, "has 6000 m left")
    await host.ok("Feeding", {"Sfc": sep, "Qty": 5000, "IsFeedingPoint": False}, WINDER)
    await host.ok("Feeding", {"Sfc": sep, "Qty": None, "IsFeedingPoint": False}, WINDER)  # the rest
    await host.refused("Feeding", {"Sfc": sep, "Qty": None, "IsFeedingPoint": False}, WINDER, "used up")
    await host.refused("HalfFeeding", {"Sfc": sep}, WINDER, "load it with 2.10 Feeding")


async def test_semi_finished_rolls_are_made_reported_and_loaded(host: Host) -> None:
    await host.verify(COATER)
    roll = (await host.ok("GenerateSfc", {"Qty": 1}, COATER))["sfcList"][0]
    await host.verify(SLITTER)
    await host.refused("HalfFeeding", {"Sfc": roll}, SLITTER, "no output report (2.24) yet")
    report = {
        "Sfc": roll,
        "TotalQty": 4500,
        "OkQty": 4480,
        "NgQty": 20,
        "SplitQty": 1,
        "OutputType": "3",
        "ParamList": [],
        "NgList": [{"NgCode": "NG-COAT-012", "Qty": 20}],
    }
    label = await host.ok("OutboundMetersReport", report, COATER)
    assert label["sfc"] == roll and label["materialName"] == "涂布极卷（280Ah）" and label["equipmentCode"] == COATER
    await host.refused("HalfFeeding", {"Sfc": roll}, WINDER, "which process winding does not use")
    await host.ok("HalfFeeding", {"Sfc": roll}, SLITTER)
    await host.refused("HalfFeeding", {"Sfc": roll}, SLITTER, "used up")


async def test_mixing_needs_the_formula_and_its_materials(host: Host) -> None:
    lfp, gr = fresh("RM-LFP-"), fresh("RM-GR-")
    await host.receive(lfp, gr)
    check = {"ConsumeEquipmentCode": MIXER, "ConsumeResourceCode": f"R-{MIXER}", "SfcList": [lfp]}
    await host.refused("ConsumeEquBeforeCheck", check, "A02-PWD-01", "has not passed formula verification (2.16)")
    await host.ok("FormulaVersionExamine", {"FormulaCode": "FM-C-LFP-001", "Version": "V1.2"}, MIXER)
    await host.ok("ConsumeEquBeforeCheck", check, "A02-PWD-01")
    check["SfcList"] = [gr]
    await host.refused("ConsumeEquBeforeCheck", check, "A02-PWD-01", "which formula FM-C-LFP-001 V1.2 does not add")
    check["ConsumeEquipmentCode"] = "A02-HP-01"
    await host.refused("ConsumeEquBeforeCheck", check, "A02-PWD-01", "is not a mixer")
    consume = {
        "ConsumeEquipmentCode": MIXER,
        "ConsumeResourceCode": f"R-{MIXER}",
        "ConsumeSfcList": [{"Sfc": lfp, "Qty": 600.0, "Category": None}],
    }
    await host.refused("ConsumeEqu", consume, "A02-PWD-01", "has 500 kg left")
    consume["ConsumeSfcList"][0]["Qty"] = 480.5
    await host.ok("ConsumeEqu", consume, "A02-PWD-01")
    await host.refused(
        "FeedingCompleted", {"BeforeFeedingQty": 500, "AfterFeedingQty": 20}, "A02-PWD-01", "less than beforeFeedingQty"
    )


async def test_batches_get_codes_and_move_between_tanks(host: Host) -> None:
    await host.refused("OutputEqu", {}, GLUE, "formula verification")
    await host.ok("FormulaVersionExamine", {"FormulaCode": "FM-GLUE-PVDF-001", "Version": "V1.4"}, GLUE)
    batch = (await host.ok("OutputEqu", {}, GLUE))["sfc"]  # the table shape {sfc} (2.20-1)
    other = (await host.ok("OutputEqu", {}, GLUE))["sfc"]
    assert batch.startswith("GL-") and batch != other
    move = {"Sfc": batch, "EquipmentCodeOut": "A02-TANK-9", "EquipmentCodeIn": "A02-TANK-1", "Qty": None}
    await host.refused("BatchMove", move, GLUE, f"is in {GLUE}")
    move["EquipmentCodeOut"] = GLUE
    await host.ok("BatchMove", move, GLUE)
    trace = await get_json(host, f"/admin/trace/{batch}")
    assert trace["lot"]["location"] == "A02-TANK-1" and trace["issued"]["operation"] == "OutputEqu"


async def test_agv_tooling_feeds_its_bound_lots(host: Host) -> None:
    lots = [fresh("RM-BHP-"), fresh("RM-BHP-")]
    await host.receive(*lots)
    tool = fresh("AGV-TL-")
    await host.refused(
        "ToolBindMaterialAsync",
        {"ContainerCode": tool, "ContainerSfcList": [{"Sfc": "RM-BHP-UNKNOWN", "Location": "1"}]},
        WAREHOUSE,
        "not a raw-material lot in inventory",
    )
    rows = [{"Sfc": code, "Location": str(n)} for n, code in enumerate(lots, 1)]
    await host.ok("ToolBindMaterialAsync", {"ContainerCode": tool, "ContainerSfcList": rows}, WAREHOUSE)
    await host.ok("Feeding", {"Sfc": tool, "Qty": None, "IsFeedingPoint": False, "IsTooling": True}, WINDER)
    trace = await get_json(host, f"/admin/trace/{lots[0]}")
    assert trace["lot"]["remaining"] == 0 and trace["lot"]["tool"] == tool
