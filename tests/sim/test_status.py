"""State (2.3) and alarm (2.4) reporting: only on change, standby after 1 min, down reason after 3 min,
only the earliest of concurrent alarms, 0 when the equipment runs again."""

from __future__ import annotations

import itertools
from typing import Any

import simpy

from twin.line.catalogue import Alarm
from twin.sim.builder import Simulation
from twin.sim.status import Reporting

from .conftest import by_equipment, named

PERIODS = {"standby_after_s": 60.0, "down_reason_after_s": 180.0}
REASONS = {"starved": "1", "blocked": "2", "repair": "3", "changeover": "8", "startup": "9"}


class Host(Reporting):
    """The reporting rules alone, recording what they would send."""

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.periods = PERIODS
        self.down_reasons = REASONS
        self.sent: list[tuple[float, str, dict[str, Any]]] = []
        self._init_reporting()

    def tell(self, name: str, values: dict[str, Any] | None = None) -> None:
        self.sent.append((self.env.now, name, dict(values or {})))


def at(env: simpy.Environment, t: float, action: Any) -> None:
    env.timeout(t).callbacks.append(lambda _e: action())


def test_standby_after_a_minute_and_down_reason_after_three() -> None:
    env = simpy.Environment()
    host = Host(env)
    at(env, 1, host.go)
    at(env, 10, lambda: host.still("starved"))
    at(env, 40, host.go)  # 30 s without motion: no state change
    at(env, 50, lambda: host.still("starved"))
    at(env, 300, host.go)  # standby from 110 to 300: more than 3 min, so the run report carries reason 1
    at(env, 320, lambda: host.still("blocked"))
    at(env, 400, host.go)  # standby from 380 to 400: no reason
    env.run(until=500)
    states = [(t, v["StateCode"], v["DownReason"]) for t, name, v in host.sent if name == "State"]
    assert states == [(1, "1", ""), (110, "3", ""), (300, "1", "1"), (380, "3", ""), (400, "1", "")]


def test_no_state_report_without_a_change() -> None:
    env = simpy.Environment()
    host = Host(env)
    for t in range(1, 200, 7):  # many short stops and starts, none a minute long
        at(env, t, host.go)
        at(env, t + 3, lambda: host.still("starved"))
    env.run(until=200)
    states = [v["StateCode"] for _, name, v in host.sent if name == "State"]
    assert states == ["1"]


def test_only_the_earliest_of_concurrent_alarms_is_reported() -> None:
    env = simpy.Environment()
    host = Host(env)
    hot, jam = Alarm("61", "H", "腔体加热故障"), Alarm("27", "L", "极片接带提示")
    tickets: dict[str, Any] = {}
    at(env, 1, host.go)
    at(env, 10, lambda: tickets.update(h=host.raise_alarm(hot)))
    at(env, 20, lambda: tickets.update(l=host.raise_alarm(jam)))  # concurrent: never reported
    at(env, 200, lambda: host.clear_alarm(tickets["h"]))
    at(env, 210, lambda: host.clear_alarm(tickets["l"]))
    at(env, 250, host.go)  # runs again: the fault's 0 goes now, then the run state with its stop reason
    env.run(until=300)
    sent = [(t, name, v.get("Status") or v.get("StateCode"), v.get("AlarmCode") or v.get("DownReason"))
            for t, name, v in host.sent]
    assert sent == [
        (1, "State", "1", ""),
        (10, "Alarm", "1", "61"),
        (10, "State", "2", ""),
        (250, "Alarm", "0", "61"),
        (250, "State", "1", "3"),  # fault from 10 to 250 (> 3 min): reason 3, equipment repair
    ]


def test_a_prompt_alarm_does_not_stop_and_clears_at_once() -> None:
    env = simpy.Environment()
    host = Host(env)
    prompt = Alarm("201", "L", "润滑油位低提示")
    tickets: dict[str, Any] = {}
    at(env, 1, host.go)
    at(env, 5, lambda: tickets.update(a=host.raise_alarm(prompt)))
    at(env, 50, lambda: host.clear_alarm(tickets["a"]))
    env.run(until=100)
    assert [(t, v.get("Status"), v.get("StateCode")) for t, _, v in host.sent] == [
        (1, None, "1"), (5, "1", None), (50, "0", None)
    ]


def test_mini_run_reports_states_and_alarms_by_the_rules(mini_run: Simulation) -> None:
    after = mini_run.line.periods["down_reason_after_s"]
    reasons_seen = 0
    for code, calls in by_equipment(mini_run.traffic.calls).items():
        states = named(calls, "State")
        codes = [c.values["StateCode"] for c in states]
        assert all(a != b for a, b in itertools.pairwise(codes)), f"{code}: state repeated {codes}"
        stop_since = None  # when the current standby/fault period (possibly 3 then 2) was first reported
        for cur in states:
            reason = cur.values["DownReason"]
            if cur.values["StateCode"] != "1":
                assert reason == "", (code, cur.values)
                stop_since = cur.virtual_s if stop_since is None else stop_since
                continue
            if stop_since is not None and cur.virtual_s - stop_since > after:
                assert reason in {str(n) for n in range(1, 13)}, (code, cur.values)
                reasons_seen += 1
            else:
                assert reason == "", (code, cur.values)
            stop_since = None
        alarms = named(calls, "Alarm")
        statuses = [c.values["Status"] for c in alarms]
        assert statuses == ["1", "0"] * (len(statuses) // 2) + ["1"] * (len(statuses) % 2), code
        for raised, cleared in zip(alarms[::2], alarms[1::2], strict=False):
            assert raised.values["AlarmCode"] == cleared.values["AlarmCode"]
            assert raised.values["AlarmLevel"] == cleared.values["AlarmLevel"]
    assert reasons_seen > 0, "the mini run has stops longer than 3 minutes"
    raised = sum(eq.alarms_raised for eq in mini_run.equipment)
    reported = sum(1 for c in named(mini_run.traffic.calls, "Alarm") if c.values["Status"] == "1")
    assert 0 < reported <= raised
