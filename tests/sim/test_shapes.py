"""Load shapes of networked runs: speed segments of the clock, and the shift-start storm."""

from __future__ import annotations

import itertools

import pytest

from twin.durations import parse_duration
from twin.errors import ConfigError
from twin.line.linefile import load_line
from twin.profile import load_profile
from twin.sim.builder import Simulation
from twin.sim.clock import Clock
from twin.sim.shapes import parse_shape, start_storm


def test_shapes_parse_and_name_their_mistakes() -> None:
    assert parse_shape("steady").kind == "steady"
    assert parse_shape("ramp:1:3").ramp == (1.0, 3.0)
    step = parse_shape("step:2.5@50%")
    assert (step.kind, step.factor, step.at_s(600, parse_duration)) == ("step", 2.5, 300.0)
    storm = parse_shape("storm:30s@10m")
    assert (storm.at_s(3600, parse_duration), parse_duration(storm.window)) == (600.0, 30.0)
    for bad in ("wave", "ramp:0:2", "step:2", "storm@soon"):
        with pytest.raises(ConfigError, match="load shape"):
            parse_shape(bad)


def test_a_ramp_speeds_the_clock_up_step_by_step() -> None:
    segments = parse_shape("ramp:1:3").segments(10.0, 1000.0, parse_duration)
    assert segments[0] == (0.0, 10.0) and segments[-1] == (900.0, 30.0) and len(segments) == 10
    clock = Clock(0.0, speed=10.0, segments=segments)
    clock.wall0 = 100.0
    walls = [clock.wall_at(v) for v in range(0, 1001, 50)]
    assert all(b > a for a, b in itertools.pairwise(walls))  # wall time keeps going forward
    for v in (0.0, 55.0, 99.9, 100.0, 450.0, 999.0):
        assert clock.virtual_at(clock.wall_at(v)) == pytest.approx(v)
    # the first 100 virtual seconds take 10 s, the last 100 (at 30x) take 3.3 s
    assert clock.wall_at(100) - clock.wall_at(0) == pytest.approx(10.0)
    assert clock.wall_at(1000) - clock.wall_at(900) == pytest.approx(100 / 30)
    assert clock.speed_at(950) == 30.0


def test_a_step_multiplies_the_speed_from_its_time_on() -> None:
    clock = Clock(0.0, speed=5.0, segments=parse_shape("step:4@100s").segments(5.0, 400.0, parse_duration))
    assert clock.wall_at(100) == pytest.approx(20.0) and clock.wall_at(300) == pytest.approx(30.0)


def test_the_storm_logs_every_host_in_and_verifies_within_its_window() -> None:
    profile = load_profile("qingke-mes-v1")
    line, _ = load_line("mini", profile=profile)
    sim = Simulation(line, profile, seed=1, keep_calls=True)
    start_storm(sim, 1800.0, 60.0)
    sim.run(1900.0)
    logins = [c for c in sim.traffic.calls if c.op.operation_id == "OperatorLogin" and c.virtual_s >= 1800]
    assert sorted({c.equipment_code for c in logins}) == sorted(e.code for e in sim.equipment)
    assert all(1800 <= c.virtual_s < 1860 for c in logins)
    verified = {c.equipment_code for c in sim.traffic.calls if c.op.operation_id == "Recipe" and c.virtual_s >= 1800}
    with_recipes = {e.code for e in sim.equipment if e.calls("Recipe")}
    assert verified and verified <= with_recipes
