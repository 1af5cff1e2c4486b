"""The host behaviour every equipment shares, read from the calls it emits (spec 1.5, 1.7, 2.1-2.13, 2.26, 2.42)."""

from __future__ import annotations

import dataclasses
import itertools

from twin.line.model import Line
from twin.profile import Profile
from twin.sim.builder import Simulation

from .conftest import by_equipment, named

OUTPUTS = ("Outbound", "OutboundMore", "OutboundMultPolar", "OutboundSfcPolar", "CollingPolar", "OutputEqu",
           "OutboundMetersReport", "OutboundInContainer", "SortingOutbound", "FillingData", "MaterialInventory")
INBOUNDS = ("Inbound", "InboundMore", "InboundBindJzSingleAsync", "InboundInContainer", "ConsumeEquBeforeCheck",
            "HalfFeeding", "GenerateCellSfc", "CollingPolar")


def test_login_first_and_its_token_on_every_later_call(mini_run: Simulation) -> None:
    for code, calls in by_equipment(mini_run.traffic.calls).items():
        login = calls[0]
        assert login.op.operation_id == "OperatorLogin", code
        assert login.token is None and login.values["OperatorUserID"] == "op1001"
        token = login.answer.data["authorization"]
        assert token.startswith("Bearer ")
        assert all(c.token == token for c in calls[1:]), code


def test_heartbeat_every_10_s_and_process_parameters_every_minute(mini_run: Simulation) -> None:
    for code, calls in by_equipment(mini_run.traffic.calls).items():
        beats = [c.virtual_s for c in named(calls, "Heartbeat")]
        assert len(beats) >= mini_run.env.now / 10 - 2, code
        assert all(abs(b - a - 10.0) < 1e-6 for a, b in itertools.pairwise(beats)), code
        assert all(c.values["IsOnline"] is True for c in named(calls, "Heartbeat"))
        params = [c.virtual_s for c in named(calls, "EquipmentProcessParam")]
        assert params and all(abs(b - a - 60.0) < 1e-6 for a, b in itertools.pairwise(params)), code


def test_time_sync_tool_life_and_startup_order(mini_run: Simulation) -> None:
    for code, calls in by_equipment(mini_run.traffic.calls).items():
        names = [c.op.operation_id for c in calls]
        assert names.index("TimeSynch") < names.index("GetRecipeList") < names.index("GetRecipeDetail")
        assert names.index("GetRecipeDetail") < names.index("Recipe"), code
        assert names.count("TimeSynch") == 1  # daily; the run is 3 h
        tools = named(calls, "ToolLife")
        assert len(tools) == 1 and tools[0].values["ToolLifes"][0]["ToolCode"] == tools[0].values["ToolCode"]


def test_verification_gates_the_start(mini_run: Simulation) -> None:
    """No unit is taken in (and no material fed) before an accepted 2.9 verification (and 2.16 for mixers)."""
    for code, calls in by_equipment(mini_run.traffic.calls).items():
        names = [c.op.operation_id for c in calls]
        verified = next(i for i, c in enumerate(calls) if c.op.operation_id == "Recipe" and c.ok)
        first_work = next((i for i, n in enumerate(names) if n in INBOUNDS), None)
        if first_work is not None:
            assert verified < first_work, f"{code}: {names[first_work]} before verification"
        if "FormulaVersionExamine" in names:
            assert names.index("FormulaVersionExamine") < names.index("ConsumeEquBeforeCheck")
        recipe = named(calls, "Recipe")[0].values
        for p in recipe["ParamList"]:
            assert float(p["ParamLower"]) <= float(p["ParamValue"]) <= float(p["ParamUpper"])


def test_verification_again_after_a_stop_of_three_minutes(mini_run: Simulation) -> None:
    long_stop = mini_run.line.periods["long_stop_s"]
    again = 0
    for calls in by_equipment(mini_run.traffic.calls).values():
        recipes = named(calls, "Recipe")
        for later in recipes[1:]:
            again += 1
            before = [c for c in calls if c.op.operation_id == "State" and c.virtual_s <= later.virtual_s]
            assert before and before[-1].values["StateCode"] in ("2", "3")
            made = [c.virtual_s for c in calls if c.op.operation_id in OUTPUTS and c.virtual_s < later.virtual_s]
            assert later.virtual_s - max(made, default=0.0) >= long_stop - 1.0
    assert again > 0, "breakdowns longer than 3 min in the mini run re-run 2.9"


def test_feeding_gates_production(mini_run: Simulation) -> None:
    for code, calls in by_equipment(mini_run.traffic.calls).items():
        names = [c.op.operation_id for c in calls]
        if "Feeding" in names:
            made = [n for n in ("Outbound", "OutboundSfcPolar", "OutboundMultPolar", "CollingPolar",
                                "OutboundMetersReport") if n in names]
            assert names.index("Feeding") < min(names.index(n) for n in made), code
            lots = [c.values["Sfc"] for c in named(calls, "Feeding")]
            assert len(lots) == len(set(lots)), "a lot is loaded once"
        if code.startswith("MINI-WIND"):
            assert names.index("HalfFeeding") < names.index("CollingPolar")
            assert names.index("AgvUpMaterial") < names.index("HalfFeeding")


def _mini_with(mini: Line, mes: Profile, **station_changes: dict) -> Simulation:
    stations = tuple(dataclasses.replace(st, **station_changes.get(st.id, {})) for st in mini.stations)
    return Simulation(dataclasses.replace(mini, stations=stations), mes, seed=5, keep_calls=True)


def test_an_mes_refusal_stops_the_equipment_and_raises_an_alarm(mini: Line, mes: Profile) -> None:
    sim = _mini_with(mini, mes)
    rule = sim.mes.refuse("Inbound", equipment_code="MINI-XR-01", after_s=2400.0, msg="SFC not in route")
    sim.run(3600)
    assert rule.count == 0
    calls = by_equipment(sim.traffic.calls)["MINI-XR-01"]
    refused = next(c for c in calls if c.op.operation_id == "Inbound" and not c.ok)
    watched = ("Alarm", "State", "Inbound")
    after = [c for c in calls if c.virtual_s >= refused.virtual_s and c.op.operation_id in watched]
    alarm, state = after[1], after[2]
    assert alarm.op.operation_id == "Alarm" and alarm.values["Status"] == "1" and alarm.values["AlarmLevel"] == "M"
    assert "SFC not in route" in alarm.values["AlarmMsg"]
    assert state.op.operation_id == "State" and state.values["StateCode"] == "2"
    next_inbound = next(c for c in after[3:] if c.op.operation_id == "Inbound")
    assert next_inbound.virtual_s - refused.virtual_s >= sim.line.periods["operator_s"]
    held = next(eq for eq in sim.equipment if eq.code == "MINI-XR-01").n_held
    assert held == 1 and sim.lines[0].ledger.held["jelly_roll"] == 1
    outbounds = {c.values["Sfc"] for c in named(calls, "Outbound")}
    assert refused.values["Sfc"] not in outbounds, "the refused unit is taken out, not processed"


def test_a_refused_report_only_prompts(mini: Line, mes: Profile) -> None:
    sim = _mini_with(mini, mes)
    sim.mes.refuse("EquipmentProcessParam", equipment_code="MINI-HE1-01", after_s=1200.0)
    sim.run(1800)
    calls = by_equipment(sim.traffic.calls)["MINI-HE1-01"]
    refused = next(c for c in calls if c.op.operation_id == "EquipmentProcessParam" and not c.ok)
    alarm = next(c for c in calls if c.op.operation_id == "Alarm" and c.virtual_s >= refused.virtual_s)
    assert alarm.values["AlarmLevel"] == "L"
    states = [c for c in named(calls, "State") if refused.virtual_s <= c.virtual_s <= alarm.virtual_s + 1]
    assert not states


def test_a_refused_lot_is_set_aside_and_the_next_one_loaded(mini: Line, mes: Profile) -> None:
    sim = _mini_with(mini, mes)
    sim.mes.refuse("Feeding", equipment_code="MINI-CVW-01", msg="lot expired")
    sim.run(3600)
    feeds = named(by_equipment(sim.traffic.calls)["MINI-CVW-01"], "Feeding")
    assert not feeds[0].ok and feeds[1].ok and feeds[0].values["Sfc"] != feeds[1].values["Sfc"]
    assert sim.lines[0].ledger.held["lot"] == 1


def test_changeover_reruns_the_verification(mini: Line, mes: Profile) -> None:
    sim = _mini_with(mini, mes, xray={"changeover": {"every_s": 2400, "duration": 300}, "reliability": {}})
    sim.run(3 * 3600)
    calls = by_equipment(sim.traffic.calls)["MINI-XR-01"]
    recipes = [c.virtual_s for c in named(calls, "Recipe")]
    assert len(recipes) >= 3  # start-up and the changeovers at 40 and 80 min (and 120)
    reasons = [c.values["DownReason"] for c in named(calls, "State") if c.values["DownReason"]]
    assert "8" in reasons, "a changeover longer than the standby + 3 min is reported as material change"


def test_breakdowns_raise_fault_alarms_from_the_catalogue(mini_run: Simulation) -> None:
    station = "winding"
    codes = {a.code for a in mini_run.line.catalogue.alarms(mini_run.line.station(station).process, "H")}
    faults = [c for c in mini_run.traffic.calls if c.op.operation_id == "Alarm" and c.values["AlarmLevel"] == "H"
              and c.equipment_code.startswith(mini_run.line.station(station).code)]
    assert faults and {c.values["AlarmCode"] for c in faults} <= codes
