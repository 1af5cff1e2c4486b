"""Start-up like a plant: networked, the hosts power on over the line file's window, not in one instant.

Until issue 14 every host of a networked run logged in at virtual time 0: the MES got a login storm at every
start, and the twin a burst of late starts. Now each host powers on at a seeded random moment of ``power_on_s``
(default 60 s); offline runs keep starting at once (no MES is stormed there), and the storm is a load shape.
"""

from __future__ import annotations

import asyncio
import dataclasses

from twin.line.linefile import load_line
from twin.line.model import Line
from twin.profile import Profile
from twin.profile.calls import Answer, Call
from twin.sim.builder import Simulation


class Instant:
    """Answers at once, like the offline MES."""

    def __init__(self) -> None:
        self.mes = None

    async def exchange(self, call: Call) -> Answer:
        answer = self.mes.answer(call)  # type: ignore[attr-defined]
        return Answer(answer.status, answer.code, answer.msg, answer.data)


def logins(line: Line, mes: Profile, *, seed: int = 3) -> dict[str, float]:
    """Virtual time of each host's first login in 90 virtual seconds of a networked run."""
    transport = Instant()
    sim = Simulation(line, mes, seed=seed, speed=500.0, transport=transport, keep_calls=True)
    transport.mes = sim.mes  # type: ignore[assignment]
    asyncio.run(sim.arun(90.0))
    first: dict[str, float] = {}
    for call in sim.traffic.calls:
        if call.op.operation_id == "OperatorLogin":
            first.setdefault(call.equipment_code, call.virtual_s)
    return first


def test_hosts_power_on_over_the_window_of_the_line_file(mini: Line, mes: Profile) -> None:
    assert mini.power_on_s == 60.0  # the default
    at = logins(mini, mes)
    assert len(at) == sum(s.count for s in mini.stations)  # every host logged in once powered on
    assert all(0.0 <= t < 60.0 for t in at.values())
    assert max(at.values()) - min(at.values()) > 30.0  # spread over the window, not in step
    assert len({round(t, 6) for t in at.values()}) == len(at)
    assert logins(mini, mes) == at  # the same seed, the same start-up


def test_a_window_of_zero_is_the_old_instant_start_and_offline_starts_at_once(mini: Line, mes: Profile) -> None:
    at = logins(dataclasses.replace(mini, power_on_s=0.0), mes)
    assert set(at.values()) == {0.0}
    offline = Simulation(mini, mes, keep_calls=True)
    offline.run(5.0)
    assert {c.virtual_s for c in offline.traffic.calls if c.op.operation_id == "OperatorLogin"} == {0.0}


def test_the_warehouse_powers_on_first_and_the_copies_warehouses_not_in_one_instant(mes: Profile) -> None:
    """67 copies' warehouses reporting their stock at virtual 0 were 3,176 calls in one instant (issue 14.4)."""
    line, _ = load_line("line-A02", profile=mes)
    transport = Instant()
    sim = Simulation(line, mes, seed=3, speed=500.0, scale=4, transport=transport)
    transport.mes = sim.mes  # type: ignore[assignment]
    window = line.power_on_s
    for model in sim.lines:
        at = {eq.station.archetype: eq.power_on_s for eq in model.equipment if eq.station.archetype == "warehouse"}
        others = [eq.power_on_s for eq in model.equipment if eq.station.archetype != "warehouse"]
        assert 0.0 <= at["warehouse"] <= window / 20
        assert all(at["warehouse"] <= t <= window for t in others)
    warehouses = {eq.power_on_s for m in sim.lines for eq in m.equipment if eq.station.archetype == "warehouse"}
    assert len(warehouses) == 4


def test_a_hosts_first_standby_comes_a_minute_after_it_powered_on(mini: Line, mes: Profile) -> None:
    """Not a minute after the run began: every host still idle at virtual 60 s reported standby in that instant."""
    transport = Instant()
    sim = Simulation(mini, mes, seed=3, speed=500.0, transport=transport, keep_calls=True)
    transport.mes = sim.mes  # type: ignore[assignment]
    asyncio.run(sim.arun(150.0))
    on = {eq.code: eq.power_on_s for eq in sim.equipment}
    standby = [c for c in sim.traffic.calls if c.op.operation_id == "State" and c.values.get("StateCode") == "3"]
    assert standby, "some host stood idle long enough to report standby"
    for call in standby:
        assert call.virtual_s >= on[call.equipment_code] + 60.0 - 1e-6
