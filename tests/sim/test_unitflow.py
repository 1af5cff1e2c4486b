"""Unit-by-unit stations: inbound before outbound, codes from the MES, pairs, electrolyte batches."""

from __future__ import annotations

from twin.line.linefile import load_line
from twin.line.model import Line
from twin.profile import Profile
from twin.sim.builder import Simulation

from .conftest import by_equipment, named


def _inbound_codes(calls: list) -> dict[str, float]:
    seen: dict[str, float] = {}
    for c in calls:
        name = c.op.operation_id
        if name in ("Inbound", "InboundBindJzSingleAsync") and c.ok:
            seen.setdefault(c.values["Sfc"], c.virtual_s)
        elif name == "InboundMore" and c.ok:
            for sfc in c.values["SfcList"]:
                seen.setdefault(sfc, c.virtual_s)
    return seen


def _outbound_codes(calls: list) -> list[tuple[str, float]]:
    out = []
    for c in calls:
        name = c.op.operation_id
        if name == "OutboundForCellBindTopCover":  # the product enters by its top cover and gets its cell code here
            out.append((c.values["TopCoverSfc"], c.virtual_s))
        elif name in ("Outbound", "BoundOutbound", "FillingData"):
            out.append((c.values["Sfc"], c.virtual_s))
        elif name == "OutboundSfcPolar":
            out.append((c.values["JzSfc"], c.virtual_s))
        elif name in ("OutboundMultPolar", "OutboundMore"):
            out += [(row["Sfc"], c.virtual_s) for row in c.values["SfcList"]]
    return out


def check_inbound_before_outbound(sim: Simulation) -> int:
    checked = 0
    for code, calls in by_equipment(sim.traffic.calls).items():
        inbound = _inbound_codes(calls)
        for sfc, when in _outbound_codes(calls):
            if code.startswith(("MINI-AGE", "A02-AGE")) and sfc not in inbound:
                continue  # racks present at a warm start came in before the run
            assert sfc in inbound and inbound[sfc] < when, f"{code}: {sfc} out at {when} without inbound"
            checked += 1
    return checked


def test_inbound_before_outbound_per_unit(mini_run: Simulation) -> None:
    assert check_inbound_before_outbound(mini_run) > 1000


def test_inbound_before_outbound_on_line_a02(mes: Profile) -> None:
    line, _ = load_line("line-A02", profile=mes)
    sim = Simulation(line, mes, seed=2, keep_calls=True)
    sim.run(1200)
    assert check_inbound_before_outbound(sim) > 500
    codes = {c.op.operation_id for c in sim.traffic.calls}
    assert {"Receive24DxCode", "OutboundForCoverplateBind", "OutboundForCellBindTopCover", "BoundOutbound"} <= codes


def test_cell_codes_come_from_the_mes_and_bind_the_jelly_roll(mini_run: Simulation) -> None:
    calls = by_equipment(mini_run.traffic.calls)["MINI-CVW-01"]
    issued = {}
    for c in named(calls, "GenerateCellSfc"):
        assert c.ok
        issued[c.answer.data] = (c.values["Sfc"], c.virtual_s)
    assert len(issued) == len(named(calls, "GenerateCellSfc")), "cell codes are unique"
    for c in named(calls, "OutboundSfcPolar"):
        jelly_roll, when = issued[c.values["Sfc"]]
        assert c.values["JzSfc"] == jelly_roll and when < c.virtual_s
    entered = [c.values for c in named(calls, "InboundBindJzSingleAsync")]
    assert entered and all(v["OperationType"] == "1" for v in entered)


def test_pairs_are_two_jelly_rolls_welded_and_bound(mini_run: Simulation) -> None:
    calls = by_equipment(mini_run.traffic.calls)["MINI-USW-01"]
    for c in named(calls, "InboundMore"):
        assert len(c.values["SfcList"]) == 2
    for c in named(calls, "OutboundMultPolar"):
        rows = c.values["SfcList"]
        assert len(rows) == 2 and all(r["BindFeedingCodeList"] for r in rows)  # the adapter lot is bound


def test_electrolyte_batch_switches_only_when_the_old_one_is_used_up(mini: Line, mes: Profile) -> None:
    sim = Simulation(mini, mes, seed=4, keep_calls=True)
    sim.run(3 * 3600)
    filler = next(eq for eq in sim.equipment if eq.station.id == "injection-1")
    used = filler.batches_used  # type: ignore[attr-defined]
    assert len(used) >= 2
    # a warm line starts with the batch the MES sent before, part used: the first "tank" is what was left of it
    per_tank = filler.opening_kg / (filler.dose_g / 1000)  # type: ignore[attr-defined]
    assert used[0].endswith("-OPEN-01") and per_tank > 0
    batch_of = []
    for c in by_equipment(sim.traffic.calls)[filler.code]:
        if c.op.operation_id == "Outbound":
            batch_of.append(c.values["BindFeedingCodeList"][-1])
    assert batch_of[0] == used[0]
    runs = [batch_of[0]]
    for batch in batch_of[1:]:
        if batch != runs[-1]:
            runs.append(batch)
    assert runs == used[: len(runs)], "batches are used in the order the MES sent them, never back"
    injected = 0  # cells filled from the first tank before the first cell of the second batch
    for c in by_equipment(sim.traffic.calls)[filler.code]:
        if c.op.operation_id == "Outbound" and c.values["BindFeedingCodeList"][-1] == used[1]:
            break
        injected += c.op.operation_id in ("Outbound", "FillingData")
    assert injected >= int(per_tank), "the old batch's tank is emptied before the switch"
