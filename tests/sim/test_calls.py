"""Every request the line emits is valid against the profile, in the profile's casing."""

from __future__ import annotations

import dataclasses
from collections import defaultdict

import pytest

from twin.profile import Profile, load_profile
from twin.profile.calls import Call, Traffic
from twin.sim.builder import Simulation
from twin.sim.linefile import Line, load_line


@pytest.fixture(scope="module")
def a02_calls(mes: Profile) -> list[Call]:
    """Twenty minutes of line-A02 (warm), with the coaters' CCD always missing the code (2.25 shows up)."""
    line, _ = load_line("line-A02", profile=mes)
    stations = tuple(
        dataclasses.replace(st, options={**st.options, "ccd_anomaly_rate": 1.0}) if st.id == "coating" else st
        for st in line.stations
    )
    sim = Simulation(dataclasses.replace(line, stations=stations), mes, seed=21, keep_calls=True)
    sim.run(1200)
    return sim.traffic.calls


def _sample(calls: list[Call], per_operation: int = 25) -> dict[str, list[Call]]:
    by_op: dict[str, list[Call]] = defaultdict(list)
    for call in calls:
        bucket = by_op[call.op.operation_id]
        if len(bucket) < per_operation:
            bucket.append(call)
    return by_op


def test_every_operation_emitted_is_valid_against_the_profile(mini_run: Simulation, a02_calls: list[Call],
                                                             mes: Profile) -> None:
    sampled = _sample(mini_run.traffic.calls + a02_calls)
    for op_id, calls in sampled.items():
        for call in calls:
            body = call.body
            _, issues = call.op.check_request(body)
            assert not issues, f"{op_id}: {issues[0]} in {body}"
            assert body["equipmentCode"] == call.equipment_code and body["resourceCode"] == f"R-{call.equipment_code}"
            assert body["localTime"].endswith("Z")
    mes_side = {op.operation_id for op in mes if op.direction != "mes-to-equipment"}
    missing = mes_side - set(sampled)
    assert not missing, f"interfaces never called by mini (3 h) or line-A02 (20 min): {sorted(missing)}"


def test_bodies_use_the_profile_casing(mini_run: Simulation) -> None:
    call = next(c for c in mini_run.traffic.calls if c.op.operation_id == "OutboundMultPolar")
    body = call.body
    assert set(body) >= {"equipmentCode", "resourceCode", "localTime", "sfcList"}
    assert set(body["sfcList"][0]) >= {"sfc", "passed", "paramList", "bindFeedingCodeList", "ngList"}
    pascal = load_profile(mini_run.profile.source, casing="PascalCase")  # type: ignore[arg-type]
    again = Call(pascal, pascal.operation("OutboundMultPolar"), call.values, call.equipment_code,
                 call.resource_code, call.virtual_s, None, call.local_s, call.token)
    assert "SfcList" in again.body and "Passed" in again.body["SfcList"][0]
    assert not again.op.check_request(again.body)[1]


def test_local_time_is_the_hosts_drifting_clock(mini_run: Simulation) -> None:
    start = mini_run.clock.start_epoch
    drift = mini_run.line.periods["clock_drift_ppm"] * 1e-6
    for call in mini_run.traffic.calls[::500]:
        assert abs(call.local_s - (start + call.virtual_s)) <= drift * call.virtual_s + 1e-6


def test_traffic_counts_per_interface_per_hour() -> None:
    traffic = Traffic()
    profile_op = type("Op", (), {"operation_id": "Heartbeat"})()
    for t in (1.0, 3599.0, 3600.0, 7300.0, 7301.0):
        traffic.record(Call(None, profile_op, {}, "E", "R-E", t, None, t, None))  # type: ignore[arg-type]
    assert traffic.total == 5 and traffic.count("Heartbeat") == 5
    assert traffic.by_hour == {("Heartbeat", 0): 2, ("Heartbeat", 1): 1, ("Heartbeat", 2): 2}
    assert traffic.peak_hour("Heartbeat") == 2
    assert traffic.per_interface(3600, 7200) == {"Heartbeat": 1}


def test_a_line_without_common_interfaces_sends_no_reports(mini: Line, mes: Profile) -> None:
    bare = dataclasses.replace(mini, common_interfaces=("OperatorLogin",))
    sim = Simulation(bare, mes, seed=1, keep_calls=True)
    sim.run(900)
    names = {c.op.operation_id for c in sim.traffic.calls}
    assert "OperatorLogin" in names and not names & {"Heartbeat", "State", "Alarm", "Recipe"}
