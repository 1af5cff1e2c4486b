"""The tray life-cycle (2.35-2.41), NG cells picked from trays (2.39), racks, and sorting (2.45, 2.51-2.53)."""

from __future__ import annotations

from collections import defaultdict

from twin.line.model import Line
from twin.profile import Profile
from twin.sim.builder import Simulation

from .conftest import named

TRAY_CALLS = ("EmptyContainerCheck", "BindContainer", "InboundInContainer", "OutboundInContainer", "UnBindContainer",
              "SortingUnBind")


def _tray_events(sim: Simulation) -> dict[str, list[tuple[str, str]]]:
    """Per tray code, the (operation, station) sequence of its life-cycle calls."""
    station_of = {eq.code: eq.station.id for eq in sim.equipment}
    trays: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for c in sim.traffic.calls:
        name = c.op.operation_id
        if name in TRAY_CALLS:
            code = c.values.get("ContainerCode") or c.values.get("ContainCode")
            trays[code].append((name, station_of[c.equipment_code]))
    return trays


def test_tray_bound_before_tray_inbound(mini_run: Simulation) -> None:
    cycles = 0
    for code, events in _tray_events(mini_run).items():
        names = [n for n, _ in events]
        for i, name in enumerate(names):
            if name == "InboundInContainer" and events[i][1] in ("baking", "formation"):
                assert names[i - 1] == "BindContainer" and names[i - 2] == "EmptyContainerCheck", (code, names)
                cycles += 1
            if name == "BindContainer":
                assert names[i + 1:i + 2] in (["InboundInContainer"], []), (code, names)
            if name == "UnBindContainer":
                assert names[i - 1] == "OutboundInContainer", (code, names)
            if name == "SortingUnBind":
                assert events[i - 1] == ("OutboundInContainer", "ocv"), (code, events)
    assert cycles > 50


def test_each_cell_is_checked_before_grouping(mini_run: Simulation) -> None:
    checked = {(c.equipment_code, c.values["Sfc"]): c.virtual_s
               for c in named(mini_run.traffic.calls, "ContainerSfcCheck")}
    for bind in named(mini_run.traffic.calls, "BindContainer"):
        rows = bind.values["ContainerSfcList"]
        assert [r["Location"] for r in rows] == [str(n) for n in range(1, len(rows) + 1)]
        assert all(checked[bind.equipment_code, r["Sfc"]] < bind.virtual_s for r in rows)


def test_ng_cells_are_reported_one_by_one_and_leave_the_tray(mini_run: Simulation) -> None:
    reports = named(mini_run.traffic.calls, "ContainerNgReport")
    assert reports
    ng: dict[str, float] = {}
    for c in reports:
        (row,) = c.values["NgSfcList"]
        assert row["NgEquipmentCode"] == c.equipment_code and row["NgCode"].startswith("NG-")
        ng[row["Sfc"]] = c.virtual_s
    for c in named(mini_run.traffic.calls, "ProductParam", "SortingOutbound", "UnBindContainer", "BindContainer"):
        rows = c.values.get("SfcList") or c.values.get("ContainerSfcList")
        for sfc in (r if isinstance(r, str) else r["Sfc"] for r in rows):
            assert sfc not in ng or c.virtual_s < ng[sfc], f"NG cell {sfc} came back in {c}"
    shipped = {u.code for u in mini_run.lines[0].shipped_units}
    assert not set(ng) & shipped


def test_sorting_grades_by_the_mes_rules(mini_run: Simulation) -> None:
    calls = mini_run.traffic.calls
    assert named(calls, "SortingRule")[0].ok
    downgraded = {row["sfc"]: row["grade"] for c in named(calls, "GetSfcInfo") for row in c.answer.data}
    grades = {}
    for c in named(calls, "SortingOutbound"):
        assert 1 <= len(c.values["ContainerSfcList"]) <= 4 and c.values["Passed"] == 1
        for row in c.values["ContainerSfcList"]:
            grades[row["Sfc"]] = c.values["Grade"]
    assert set(grades.values()) <= {"A1", "A2", "B1"}
    for sfc, grade in downgraded.items():
        if sfc in grades:
            assert grades[sfc] == grade
    for cell in mini_run.lines[0].shipped_units:
        assert cell.get("grade") == grades[cell.code]


def test_racks_move_many_barcodes_at_once(mes: Profile) -> None:
    from twin.line.linefile import load_line

    line, _ = load_line("line-A02", profile=mes)
    sim = Simulation(line, mes, seed=3, keep_calls=True)
    sim.run(900)
    outs = [c for c in named(sim.traffic.calls, "OutboundMore")]
    assert outs and all(len(c.values["SfcList"]) == 48 for c in outs)
    aging = next(eq for eq in sim.equipment if eq.station.id == "high-temp-aging")
    assert aging.occupancy() > 0.9  # type: ignore[attr-defined]  # the warm start fills the room


def test_cold_start_has_no_initial_work(mini_run: Simulation, mini: Line) -> None:
    assert not mini_run.lines[0].initial_units
    assert sum(mini_run.lines[0].ledger.initial.values()) == 0
