"""Sorting: rules (2.45), downgrade records (2.51), tray split (2.52) and graded outbound (2.53)."""

from __future__ import annotations

from tests.mes.conftest import OCV, SORT, Host, fresh
from tests.mes.rules.test_trays import filled_tray, wip_cells


def _params(**values: str) -> list[dict[str, str]]:
    return [{"ParamCode": k, "ParamValue": v, "CollectionTime": "2026-11-23T09:28:10.000Z"} for k, v in values.items()]


async def _tested_tray(host: Host, values: dict[str, dict[str, str]]) -> tuple[str, list[str]]:
    """Cells through OCV in a tray, with the parameters OCV measured for each."""
    cells = await wip_cells(host, len(values))
    tray = await filled_tray(host, cells)
    await host.ok("InboundInContainer", {"ContainerCode": tray}, OCV)
    rows = [{"Sfc": c, "ParamList": _params(**v)} for c, v in zip(cells, values.values(), strict=True)]
    await host.ok("ProductParam", {"ContainerCode": tray, "SfcList": rows}, OCV)
    await host.ok("OutboundInContainer", {"ContainerCode": tray, "ParamList": []}, OCV)
    return tray, cells


async def test_sorting_rules_come_from_data(host: Host) -> None:
    rules = await host.ok("SortingRule", {"Sfc": "", "ProductCode": "QK-LFP-280AH"}, SORT)
    assert [r["grade"] for r in rules] == ["A1", "A2", "A3", "B1", "B2"]
    assert rules[0]["parameterCode"] == "OCV3" and rules[0]["parameterValue"] is None
    await host.refused("SortingRule", {"Sfc": "", "ProductCode": "QK-NONE"}, SORT, "no sorting rule for product")


async def test_downgrade_records_and_grades_are_enforced(host: Host) -> None:
    await host.verify(OCV)
    tray, cells = await _tested_tray(host, {
        "a": {"OCV3": "3.2850", "DCIR": "0.21"},
        "b": {"OCV3": "3.2950", "DCIR": "0.21"},
        "c": {"OCV3": "3.2850", "DCIR": "0.31"},  # DCIR above 0.25: downgraded to B1
    })
    info = await host.ok("GetSfcInfo", {"SfcList": cells}, SORT)
    assert info == [{"sfc": cells[2], "grade": "B1"}]  # only downgraded cells (2.51)
    await host.refused("SortingUnBind", {"ContainCode": tray, "SfcList": ["QK-NOT-THERE"]}, SORT, "unknown")
    await host.ok("SortingUnBind", {"ContainCode": tray, "SfcList": cells}, SORT)
    out = fresh("TP-SORT-")

    def outbound(grade: str, *picked: int) -> dict[str, object]:
        rows = [{"Sfc": cells[i], "Location": str(n)} for n, i in enumerate(picked, 1)]
        return {"ContainerCode": out, "Passed": 1, "Grade": grade, "ContainerSfcList": rows, "ParamList": []}

    await host.refused("SortingOutbound", outbound("Z9", 0), SORT, "'Z9' is not a grade of rule SR-280AH-01")
    await host.refused("SortingOutbound", outbound("A1", 1), SORT, "belongs in grade A2 (OCV3 = 3.2950), not A1")
    await host.refused("SortingOutbound", outbound("A1", 2), SORT, "belongs in grade B1 (its downgrade record")
    await host.ok("SortingOutbound", outbound("A1", 0), SORT)
    await host.refused("SortingOutbound", outbound("A2", 1), SORT, "takes cells of one grade")
    other = fresh("TP-SORT-")
    rows = [{"Sfc": cells[1], "Location": "1"}]
    await host.ok("SortingOutbound", {"ContainerCode": other, "Passed": 1, "Grade": "A2", "ContainerSfcList": rows,
                                      "ParamList": []}, SORT)
