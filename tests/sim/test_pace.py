"""The pace governor: past what the process can send, virtual time slows down; the twin never collapses.

Issue 14 measured the collapse: line-A02 asked for more than one process can send fell ever further behind its
clock, piled up tens of thousands of calls in flight (GBs of memory), timed them out against a healthy MES and
said ``finished``. These tests overload a line on purpose, with a transport that costs CPU in this process (so
the process, never an MES, is what is short), and hold the bridge to: the calls in flight bounded, the
saturation detected and the pace capped below the one asked, the clock re-based rather than chased. Nothing
here is timed: the machine may be as loaded as it likes, an overloaded run is only more overloaded.
"""

from __future__ import annotations

import asyncio
import time

from twin.aio import loop_time
from twin.line.model import Line
from twin.profile import Profile
from twin.profile.calls import Answer, Call
from twin.sim.builder import Simulation
from twin.sim.clock import Bridge, Clock
from twin.sim.pace import PaceGovernor


class BusyTransport:
    """Answers like the offline MES after burning ``cost_s`` of this process's CPU per call."""

    def __init__(self, cost_s: float) -> None:
        self.cost_s = cost_s
        self.mes = None
        self.calls = 0

    async def exchange(self, call: Call) -> Answer:
        await asyncio.sleep(0)
        end = time.process_time() + self.cost_s
        while time.process_time() < end:
            pass
        self.calls += 1
        answer = self.mes.answer(call)  # type: ignore[attr-defined]
        now = time.time()
        return Answer(answer.status, answer.code, answer.msg, answer.data, sent_wall=now, answered_wall=now)


def overloaded(mini: Line, mes: Profile, *, speed: float, wall_s: float, max_in_flight: int) -> Simulation:
    transport = BusyTransport(0.0005)  # at most ~2,000 calls a second: mini at this speed asks many more
    sim = Simulation(mini, mes, speed=speed, transport=transport, keep_calls=False)
    transport.mes = sim.mes  # type: ignore[assignment]
    bridge = sim.gateway
    assert isinstance(bridge, Bridge)
    bridge.max_in_flight = max_in_flight

    async def main() -> None:
        asyncio.get_running_loop().call_later(wall_s, bridge.stop)  # the run ends by itself (as Ctrl-C does)
        await sim.arun(24 * 3600.0)

    asyncio.run(main())
    return sim


def test_an_overloaded_line_slows_its_pace_and_keeps_its_calls_bounded(mini: Line, mes: Profile) -> None:
    sim = overloaded(mini, mes, speed=50_000.0, wall_s=4.0, max_in_flight=64)
    bridge = sim.gateway
    assert isinstance(bridge, Bridge)
    governor = bridge.governor
    # the pending calls stay bounded (the collapse had 16,000 in flight at 1,024 allowed): the model stops at the
    # bound, and the one step that reached it may have made a call per equipment at most
    assert 0 < bridge.most_in_flight <= bridge.max_in_flight + len(sim.equipment)
    # the saturation is seen and said: the pace kept is below the one asked, and the lag was given up
    assert governor.saturated and governor.saturations >= 1
    report = governor.report(asked=50_000.0, achieved=sim.env.now / 4.0)
    assert report["saturated"] and report["speed_lowest_kept"] < 50_000.0
    assert sim.clock.cap is not None and sim.clock.speed_at(sim.env.now) == sim.clock.cap < 50_000.0
    assert sim.clock.speed_asked_at(sim.env.now) == 50_000.0
    # the model is not left to run after its clock: the lag it had when it saturated was given up
    assert report["lag_given_up_s"] > 0


def test_after_a_rebase_an_answer_reaches_the_model_at_its_own_now(mini: Line, mes: Profile) -> None:
    """Re-basing puts the clock behind a model that was ahead of it: an answer that comes then reaches the model
    at the model's now, not at the clock's earlier time, and the run's self-check reads the same time
    (``Bridge.arrival_at``): by the clock's time alone a saturated run's checker saw logins answered before
    heartbeats the model had stepped without a token (every host of 8 copies of line-A02 flagged)."""
    sim = overloaded(mini, mes, speed=50_000.0, wall_s=1.0, max_in_flight=64)
    bridge = sim.gateway
    assert isinstance(bridge, Bridge)
    now = loop_time()
    assert bridge.arrival_at(now) == max(sim.env.now, sim.clock.virtual_at(now))
    sim.clock.rebase(10.0)  # the clock's now is now far behind the model
    assert sim.clock.virtual_at(now) < sim.env.now
    assert bridge.arrival_at(now) == sim.env.now
    assert bridge.arrival_at(now + 20.0) == sim.clock.virtual_at(now + 20.0) > sim.env.now
    assert bridge.until_s == 24 * 3600.0  # the end the run was given (answers after it are cut there)


def test_a_line_that_keeps_up_is_not_governed(mini: Line, mes: Profile) -> None:
    sim = Simulation(mini, mes, speed=5.0, transport=None, keep_calls=False)
    sim.run(5.0)
    bridge = sim.gateway
    assert isinstance(bridge, Bridge)
    assert not bridge.governor.saturated and bridge.governor.saturations == 0 and sim.clock.cap is None


class FakeClock:
    """The governor's view of a clock, recording what it was told."""

    def __init__(self, asked: float) -> None:
        self.asked = asked
        self.cap: float | None = None
        self.rebased = 0.0

    def govern(self, virtual_s: float, cap: float | None) -> None:
        self.cap = cap

    def rebase(self, wall_s: float) -> None:
        self.rebased += wall_s

    def speed_asked_at(self, virtual_s: float) -> float | None:
        return self.asked

    def speed_at(self, virtual_s: float) -> float | None:
        return self.asked if self.cap is None else min(self.asked, self.cap)


def feed(g: PaceGovernor, ticks: list[tuple[float, float]], *, cpu: float, held: float, start: float = 0.0) -> None:
    """Ticks of 0.25 s: (virtual advanced in the tick, lag at its end), with the share of CPU and of holding."""
    wall, virtual, busy, waited = start, 0.0, 0.0, 0.0
    g.reset(wall, virtual, busy, waited)
    for advanced, lag in ticks:
        wall, virtual = wall + 0.25, virtual + advanced
        busy, waited = busy + cpu * 0.25, waited + held * 0.25
        g.tick(wall, virtual, lag, busy, waited)


def test_a_growing_lag_in_a_busy_process_caps_the_pace_at_what_it_achieved() -> None:
    clock = FakeClock(asked=1000.0)
    g = PaceGovernor(clock)
    feed(g, [(100.0, 0.05), (100.0, 0.3), (100.0, 0.6)], cpu=1.0, held=0.0)  # 400 virtual s per wall s achieved
    assert not g.saturated  # two ticks behind: it may yet catch up
    feed(g, [(100.0, 0.05), (100.0, 0.3), (100.0, 0.6), (100.0, 0.9)], cpu=1.0, held=0.0)
    assert g.saturated and clock.cap is not None
    assert 0.5 * 1000 <= clock.cap <= 0.95 * 1000  # at most halved at once, and below the pace kept
    assert clock.rebased == 0.9  # the lag is given up, not run after
    assert g.first_virtual_s == 400.0


def test_a_slow_mes_is_not_the_twins_saturation() -> None:
    """The model waits for answers (held) while the process idles: the lag is the MES's, measured as late starts."""
    clock = FakeClock(asked=1000.0)
    g = PaceGovernor(clock)
    feed(g, [(10.0, 0.3), (10.0, 0.6), (10.0, 0.9), (10.0, 1.2)], cpu=0.2, held=0.9)
    assert not g.saturated and g.saturations == 0 and clock.rebased == 0.0


def test_a_passing_hiccup_is_not_a_saturation() -> None:
    clock = FakeClock(asked=1000.0)
    g = PaceGovernor(clock)
    feed(g, [(250.0, 0.0), (50.0, 0.3), (350.0, 0.1), (250.0, 0.0)], cpu=1.0, held=0.0)  # a pause caught up
    assert not g.saturated


def test_the_pace_goes_back_up_to_the_one_asked_once_the_process_keeps_up() -> None:
    clock = FakeClock(asked=1000.0)
    g = PaceGovernor(clock)
    feed(g, [(100.0, 0.3), (100.0, 0.6), (100.0, 0.9)], cpu=1.0, held=0.0)
    assert g.saturated
    feed(g, [(250.0, 0.0)] * 4 * 30, cpu=0.5, held=0.0, start=10.0)  # 30 s keeping up
    assert not g.saturated and clock.cap is None
    assert g.report(asked=1000.0, achieved=900.0)["saturated"]  # it did saturate once: the run says so


def test_the_clock_keeps_the_pace_asked_under_a_cap() -> None:
    clock = Clock(0.0, speed=10.0, segments=[(0.0, 10.0), (100.0, 30.0), (200.0, 5.0)])
    clock.govern(50.0, 8.0)
    assert clock.speed_at(60.0) == 8.0 and clock.speed_at(150.0) == 8.0 and clock.speed_at(250.0) == 5.0
    assert clock.speed_asked_at(150.0) == 30.0
    wall = clock.wall_at(60.0)
    assert clock.virtual_at(wall) == 60.0  # one continuous pair
    clock.govern(120.0, None)  # lifted: the rest of the load shape as asked
    assert clock.speed_at(150.0) == 30.0 and clock.speed_at(60.0) == 8.0
    clock.change_from(160.0, [(160.0, 2.0)])  # a control while capped keeps the cap
    clock.govern(170.0, 1.0)
    assert clock.speed_at(180.0) == 1.0 and clock.speed_asked_at(180.0) == 2.0
