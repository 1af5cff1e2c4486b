"""The bridge: SimPy stepped by asyncio in step with the wall clock, MES answers as SimPy events.

A fake transport answers every call after a delay chosen on purpose (the business answers come from the
offline MES model, so login tokens are real). In realtime mode virtual and wall time must stay in step; a
slow MES must slow the equipment down, as it does a real host that waits for its answers.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import pytest

from twin import aio
from twin.aio import loop_time
from twin.line.linefile import load_line
from twin.line.model import Line
from twin.profile import Profile
from twin.profile.calls import Answer, Call, Transport
from twin.sim import clock as clock_module
from twin.sim.builder import Simulation
from twin.sim.clock import Bridge, Clock

LINE = """
line: bridge-test
title: One X-Ray fed from a buffer, for the bridge tests
profile: qingke-mes-v1
warmup_s: 0
power_on_s: 0          # the bridge, not the start-up: every host at once
common_interfaces: [OperatorLogin, Heartbeat, State, Alarm]
buffers:
  queue: {capacity: 500, initial: 400}
  done: {sink: true}
stations:
  - {id: xray, process: xray, archetype: unit, count: 1, code: T-XR, rate_ppm: 120, input: queue, output: done,
     interfaces: [Inbound, Outbound]}
"""


class DelayedTransport:
    """Answers like the offline MES, after ``delay_s`` of wall time; records when each call was sent."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.mes = None
        self.sent: list[tuple[Call, float]] = []

    async def exchange(self, call: Call) -> Answer:
        self.sent.append((call, loop_time()))  # the bridge's clock, as ``call.wall_s``
        sent = time.time()
        await asyncio.sleep(self.delay_s)
        answer = self.mes.answer(call)  # type: ignore[union-attr]
        return Answer(answer.status, answer.code, answer.msg, answer.data, sent_wall=sent, answered_wall=time.time())


@pytest.fixture(scope="module")
def line(tmp_path_factory: pytest.TempPathFactory, mes: Profile) -> Line:
    path: Path = tmp_path_factory.mktemp("bridge") / "bridge-test.yaml"
    path.write_text(LINE, encoding="utf-8")
    loaded, _ = load_line(path, profile=mes)
    return loaded


def run(
    line: Line, mes: Profile, *, speed: float, delay_s: float, duration_s: float, uvloop: bool = False
) -> tuple[Simulation, DelayedTransport, float]:
    transport = DelayedTransport(delay_s)
    assert isinstance(transport, Transport)
    sim = Simulation(line, mes, speed=speed, transport=transport, keep_calls=True)
    transport.mes = sim.mes  # type: ignore[assignment]

    async def main() -> float:
        start = loop_time()
        await sim.arun(duration_s)
        return loop_time() - start

    return sim, transport, aio.run(main()) if uvloop else asyncio.run(main())


@pytest.fixture(scope="module")
def realtime(line: Line, mes: Profile) -> tuple[Simulation, DelayedTransport, float]:
    """Two seconds of realtime against a transport that answers after 50 ms."""
    return run(line, mes, speed=1.0, delay_s=0.05, duration_s=2.0)


def test_realtime_keeps_virtual_and_wall_time_in_step(realtime: tuple[Simulation, DelayedTransport, float]) -> None:
    sim, transport, wall = realtime
    assert sim.env.now == pytest.approx(2.0)
    assert wall == pytest.approx(2.0, abs=0.25)
    assert len(transport.sent) > 5
    for call, actual in transport.sent:
        assert call.wall_s is not None and call.virtual_s <= 2.0
        assert -0.001 <= actual - call.wall_s < 0.03, f"{call} sent {actual - call.wall_s:.4f} s after its time"
    bridge = sim.gateway
    assert isinstance(bridge, Bridge) and bridge.max_late_s < 0.03


@pytest.mark.parametrize("uvloop", [False, True], ids=["asyncio", "uvloop"])
def test_the_bridge_sleeps_rather_than_spins_between_close_events(
    line: Line, mes: Profile, uvloop: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At speed 400 this line's events are a fraction of a millisecond apart in wall time. uvloop runs a timer
    shorter than its millisecond at the next turn of the loop: the bridge woke about 100,000 times a second for
    nothing (a core's worth of CPU at 8,600 req/s of line-A02). It sleeps at least a millisecond now, and its
    calls still leave on time."""
    sleeps: list[float] = []
    sleep = Bridge._sleep

    async def counted(self: Bridge, delay_s: float) -> None:
        sleeps.append(delay_s)
        await sleep(self, delay_s)

    monkeypatch.setattr(Bridge, "_sleep", counted)
    sim, transport, wall = run(line, mes, speed=1000.0, delay_s=0.0005, duration_s=2000.0, uvloop=uvloop)
    assert sim.env.now == pytest.approx(2000.0)
    assert len(transport.sent) > 900  # every cell of the queue in and out, heartbeats
    assert len(sleeps) < 1.2 * wall / clock_module.TIMER_RESOLUTION_S + 50
    assert min(sleeps) >= clock_module.TIMER_RESOLUTION_S
    late = sorted(actual - call.wall_s for call, actual in transport.sent)
    assert late[len(late) // 2] < 0.002, "calls leave within the timer's resolution of their time"


def test_equipment_waits_for_the_answer(line: Line, realtime: tuple[Simulation, DelayedTransport, float]) -> None:
    _, transport, _ = realtime
    calls = [c for c, _ in transport.sent if c.equipment_code == "T-XR-01"]
    login = calls[0]
    assert login.op.operation_id == "OperatorLogin"
    after_login = calls[1:]
    assert after_login and min(c.virtual_s for c in after_login) >= login.virtual_s + 0.05 - 1e-6
    inbound = next(c for c in calls if c.op.operation_id == "Inbound")
    outbound = next(c for c in calls if c.op.operation_id == "Outbound" and c.values["Sfc"] == inbound.values["Sfc"])
    cycle_min = min(line.station("xray").ideal_cycle_s(), 0.5)
    assert outbound.virtual_s - inbound.virtual_s >= 0.05 + cycle_min * 0.9


def test_a_slow_mes_slows_the_line(line: Line, mes: Profile) -> None:
    fast, _, _ = run(line, mes, speed=40.0, delay_s=0.001, duration_s=60.0)
    slow, _, _ = run(line, mes, speed=40.0, delay_s=0.05, duration_s=60.0)  # 2 virtual seconds per answer
    made_fast = fast.lines[0].ledger.shipped["cell"]
    made_slow = slow.lines[0].ledger.shipped["cell"]
    assert made_fast > 20  # ~60 on an idle machine; the ratio below is the point
    assert made_slow < made_fast / 3
    gaps = []
    calls = [c for c in slow.traffic.calls if c.op.operation_id in ("Inbound", "Outbound")]
    for a, b in itertools.pairwise(calls):
        if a.op.operation_id == "Inbound" and b.op.operation_id == "Outbound":
            gaps.append(b.virtual_s - a.virtual_s)
    assert gaps and min(gaps) >= 2.0 + 0.4  # the answer (2 virtual s) and the cycle (~0.5 s) before the outbound


def test_a_failed_exchange_is_an_answer_not_a_crash(line: Line, mes: Profile) -> None:
    class Broken(DelayedTransport):
        async def exchange(self, call: Call) -> Answer:
            if call.op.operation_id == "Inbound":
                raise ConnectionError("MES unreachable")
            return await super().exchange(call)

    transport = Broken(0.001)
    sim = Simulation(line, mes, speed=50.0, transport=transport, keep_calls=True)
    transport.mes = sim.mes  # type: ignore[assignment]
    sim.run(20.0)
    refused = [c for c in sim.traffic.calls if c.op.operation_id == "Inbound"]
    assert refused and all(c.answer is not None and c.answer.status == 0 for c in refused if c.answer)
    assert "ConnectionError" in (refused[0].answer.error or "")
    alarms = [c for c in sim.traffic.calls if c.op.operation_id == "Alarm"]
    assert alarms and "unreachable" in alarms[0].values["AlarmMsg"]


def test_the_clock_maps_virtual_wall_and_epoch() -> None:
    clock = Clock(1_000_000.0, speed=10.0)
    clock.wall0 = 50.0
    assert clock.wall_at(100.0) == 60.0 and clock.virtual_at(60.0) == 100.0
    assert clock.epoch(5.0) == 1_000_005.0 and clock.networked
    assert not Clock(0.0).networked
