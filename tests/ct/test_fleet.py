"""The virtual inverters: states drawn from the profile's model, checks that unfold over time."""

from __future__ import annotations

from collections import Counter

from twin.ct.fleet import Fleet, Inverter, generate_fleet
from twin.ct.spec import load_ct_spec

SPEC = load_ct_spec()


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_same_seed_same_fleet_and_serials_shaped_like_the_spec() -> None:
    a = generate_fleet(200, SPEC, seed=7)
    b = generate_fleet(200, SPEC, seed=7)
    assert [(i.sn, i.topology, i.device_status, i.bms_alarm, i.meter_ok) for i in a.inverters.values()] == [
        (i.sn, i.topology, i.device_status, i.bms_alarm, i.meter_ok) for i in b.inverters.values()
    ]
    first = next(iter(a.inverters))
    assert len(first) == 16 and first.endswith("4A") and SPEC.sn_pattern.fullmatch(first)


def test_a_large_fleet_shows_every_state_of_the_spec() -> None:
    fleet = generate_fleet(2000, SPEC, seed=3)
    states = Counter(i.device_status for i in fleet.inverters.values())
    assert set(states) == {-1, 0, 1, 2, 3, 4, 5}
    assert 0.65 < states[2] / 2000 < 0.80  # most are grid-connected
    topologies = Counter(i.topology for i in fleet.inverters.values())
    assert set(topologies) == {"master", "slave", "three-phase-single", "single-phase"}
    assert any(i.bms_alarm for i in fleet.inverters.values())
    assert any(not i.meter_ok for i in fleet.inverters.values())


def _one(clock: Clock, **kw: object) -> tuple[Fleet, Inverter]:
    fleet = generate_fleet(1, SPEC, seed=1, check_s=(20, 20), delivery_s=(2, 2), clock=clock)
    inv = next(iter(fleet.inverters.values()))
    inv.topology, inv.device_status, inv.bms_alarm, inv.meter_ok, inv.run = "master", 2, 0, 1, None
    for k, v in kw.items():
        setattr(inv, k, v)
    return fleet, inv


def test_a_check_reads_0_0_until_delivered_then_checking_then_complete() -> None:
    clock = Clock()
    fleet, inv = _one(clock)
    assert inv.result(clock.t)["bit1"] == 0 and inv.status(clock.t)["checking"] == 0
    assert fleet.start(inv) == (True, None)
    assert inv.status(clock.t)["checking"] == 1
    assert (inv.result(clock.t)["bit1"], inv.result(clock.t)["bit2"]) == (0, 0)  # not taken yet (CT-10)
    clock.t += 3
    assert (inv.result(clock.t)["bit1"], inv.result(clock.t)["bit2"]) == (1, 0)
    clock.t += 20
    done = inv.result(clock.t)
    assert inv.status(clock.t)["checking"] == 0
    if inv.run is not None and inv.run.outcome == "failed":
        assert (done["bit1"], done["bit2"]) == (0, 0)
    else:
        assert (done["bit1"], done["bit2"]) == (0, 1) and done["bit3"] in (0, 1)
        assert len(done["meterCheckConfigVOS"]) == 3 and isinstance(done["meterStatus"], int)


def test_wiring_errors_name_the_phases() -> None:
    clock = Clock()
    fleet = generate_fleet(400, SPEC, seed=11, check_s=(1, 1), delivery_s=(0, 0), clock=clock)
    faults = Counter()
    for inv in fleet.inverters.values():
        inv.topology, inv.device_status, inv.bms_alarm, inv.meter_ok, inv.run = "master", 2, 0, 1, None
        fleet.start(inv)
    clock.t += 5
    for inv in fleet.inverters.values():
        body = inv.result(clock.t)
        if body["bit3"] != 1:
            continue
        bad = [p for p in body["meterCheckConfigVOS"] if p["sensorAns"] == 1]
        flags = {p["phaseFlag"] for p in bad}
        faults[tuple(sorted(flags))] += 1
        if flags == {1}:  # swapped: each bad phase measures the other one
            assert len(bad) == 2 and bad[0]["smartSide"] == bad[1]["inverterSide"]
        elif flags == {3}:
            assert bad[0]["smartSide"] is None
    assert set(faults) == {(1,), (2,), (3,)}


def test_the_cloud_refuses_what_cannot_run() -> None:
    clock = Clock()
    for attrs, reason in (
        ({"device_status": -1}, "offline"),
        ({"device_status": 4}, "upgrading"),
        ({"topology": "slave"}, "topology slave"),
        ({"topology": "single-phase"}, "topology single-phase"),
    ):
        fleet, inv = _one(clock, **attrs)
        issued, why = fleet.start(inv)
        assert not issued and reason in (why or "")
    fleet, inv = _one(clock)
    assert fleet.start(inv)[0]
    assert fleet.start(inv) == (False, "a CT check is already running")


def test_a_check_started_against_the_preconditions_fails() -> None:
    clock = Clock()
    for attrs in ({"device_status": 3}, {"bms_alarm": 1}, {"meter_ok": 0}, {"device_status": 0}):
        fleet, inv = _one(clock, **attrs)
        assert fleet.start(inv)[0]
        assert inv.run is not None and inv.run.outcome == "failed"
