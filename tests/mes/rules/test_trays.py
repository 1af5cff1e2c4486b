"""The tray life cycle (2.35-2.41, 2.43): each state change checked."""

from __future__ import annotations

from tests.mes.conftest import BAKE, FORM, INJ1, WAREHOUSE, Host, fresh, get_json

GROUPER = "A02-TRAY-01"  # a grouping robot that is no station of the line: tray checks need none


async def wip_cells(host: Host, n: int) -> list[str]:
    """Cells taken over as work in progress (2.47 with a WIP material): products the route may move."""
    codes = [fresh("QKCELL") for _ in range(n)]
    rows = [{"BarCode": c, "IsRawMaterial": False, "MaterialCode": "CELL-QK-LFP-280AH", "Qty": 1} for c in codes]
    await host.ok("MaterialInventory", {"BarCodeList": rows}, WAREHOUSE)
    return codes


async def filled_tray(host: Host, cells: list[str]) -> str:
    tray = fresh("TP-BK-")
    await host.ok("EmptyContainerCheck", {"ContainerCode": tray}, GROUPER)
    for cell in cells:
        await host.ok("ContainerSfcCheck", {"Sfc": cell}, GROUPER)
    rows = [{"Sfc": c, "Location": str(n)} for n, c in enumerate(cells, 1)]
    await host.ok("BindContainer", {"ContainerCode": tray, "ContainerSfcList": rows, "OperationType": "0"}, GROUPER)
    return tray


async def test_binding_needs_an_empty_checked_tray_and_checked_cells(host: Host) -> None:
    cells = await wip_cells(host, 3)
    tray = fresh("TP-BK-")
    bind = {"ContainerCode": tray, "ContainerSfcList": [{"Sfc": cells[0], "Location": "1"}]}
    await host.refused("BindContainer", bind, GROUPER, "checked empty first (2.35)")
    await host.ok("EmptyContainerCheck", {"ContainerCode": tray}, GROUPER)
    await host.refused("BindContainer", bind, GROUPER, "was not checked for a tray (2.36)")
    await host.ok("ContainerSfcCheck", {"Sfc": cells[0]}, GROUPER)
    await host.ok("ContainerSfcCheck", {"Sfc": cells[1]}, GROUPER)
    await host.ok("BindContainer", bind, GROUPER)
    clash = {"ContainerCode": tray, "ContainerSfcList": [{"Sfc": cells[1], "Location": "1"}]}
    await host.refused("BindContainer", clash, GROUPER, f"position 1 of tray {tray} already holds {cells[0]}")
    await host.refused("EmptyContainerCheck", {"ContainerCode": tray}, GROUPER, "with 1 cells; it is not empty")
    await host.refused("ContainerSfcCheck", {"Sfc": cells[0]}, GROUPER, f"is bound to tray {tray}")
    await host.refused("ContainerSfcCheck", {"Sfc": "QK-UNKNOWN"}, GROUPER, "unknown to the MES")


async def test_tray_in_and_out_follow_the_life_cycle(host: Host) -> None:
    await host.verify(BAKE)
    cells = await wip_cells(host, 2)
    empty = fresh("TP-BK-")
    await host.refused("InboundInContainer", {"ContainerCode": empty}, BAKE, "needs cells bound to it")
    tray = await filled_tray(host, cells)
    out = {"ContainerCode": tray, "ParamList": [{"ParamCode": "BAKE_TIME", "ParamValue": "480",
                                                  "CollectionTime": "2026-11-23T14:20:00.000Z"}]}
    await host.refused("OutboundInContainer", out, BAKE, "needs its inbound (2.40) at A02-BAKE-01")
    await host.ok("InboundInContainer", {"ContainerCode": tray}, BAKE)
    await host.refused("InboundInContainer", {"ContainerCode": tray}, "A02-BAKE-02", "is in an equipment")
    await host.refused("UnBindContainer", {"ContainCode": tray, "SfcList": cells}, BAKE, "take it out (2.41)")
    await host.refused("Inbound", {"Sfc": cells[0]}, INJ1, "still in process at A02-BAKE-01")
    await host.refused("OutboundInContainer", out, "A02-BAKE-02", "needs its inbound (2.40) at A02-BAKE-02")
    await host.ok("OutboundInContainer", out, BAKE)
    await host.refused("UnBindContainer", {"ContainCode": tray, "SfcList": ["QK-ELSEWHERE"]}, BAKE, "unknown")
    await host.ok("UnBindContainer", {"ContainCode": tray, "SfcList": cells}, BAKE)  # ContainCode (2.38-1)
    await host.ok("EmptyContainerCheck", {"ContainerCode": tray}, GROUPER)  # free again
    trace = await get_json(host, f"/admin/trace/{cells[1]}")
    assert trace["product"]["equipment"] == BAKE and trace["product"]["phase"] == "out"
    await host.verify(INJ1)
    await host.ok("Inbound", {"Sfc": cells[0]}, INJ1)  # baking done: the next step may take it


async def test_ng_cells_of_a_tray_stop_it(host: Host) -> None:
    await host.verify(FORM)
    cells = await wip_cells(host, 3)
    tray = await filled_tray(host, cells)
    report = {"ContainerCode": tray, "NgSfcList": [{"sfc": cells[1], "ngCode": "NG-FORM-VOLT",
                                                    "ngEquipmentCode": FORM, "ngResourceCode": f"R-{FORM}"}]}
    await host.refused("ContainerNgReport", {"ContainerCode": tray, "NgSfcList": ["QK-NOT-IN-TRAY"]}, FORM,
                       "unknown")
    await host.ok("ContainerNgReport", report, FORM)
    await host.refused("InboundInContainer", {"ContainerCode": tray}, FORM, f"holds NG cells {cells[1]}")
    await host.ok("UnBindContainer", {"ContainCode": tray, "SfcList": [cells[1]]}, FORM)
    await host.ok("InboundInContainer", {"ContainerCode": tray}, FORM)
    params = {"ContainerCode": tray, "SfcList": [{"Sfc": cells[1], "ParamList": []}]}
    await host.refused("ProductParam", params, FORM, f"is not in tray {tray}")
    params["SfcList"][0]["Sfc"] = cells[0]
    await host.ok("ProductParam", params, FORM)
