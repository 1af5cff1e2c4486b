"""Fixtures of the line-model tests: the mini line, and one three-hour run of it that many tests read."""

from __future__ import annotations

from collections import defaultdict

import pytest

from twin.line.linefile import load_line
from twin.line.model import Line
from twin.profile import Profile
from twin.profile.calls import Call
from twin.sim.builder import Simulation

MINI_RUN_S = 3 * 3600


@pytest.fixture(scope="session")
def mini(mes: Profile) -> Line:
    line, _ = load_line("mini", profile=mes)
    return line


@pytest.fixture(scope="session")
def mini_run(mini: Line, mes: Profile) -> Simulation:
    """Three hours of the mini line from a cold start, every call kept, every shipped cell kept."""
    sim = Simulation(mini, mes, seed=11, keep_calls=True, trace=True)
    sim.run(MINI_RUN_S)
    return sim


def by_equipment(calls: list[Call]) -> dict[str, list[Call]]:
    out: dict[str, list[Call]] = defaultdict(list)
    for call in calls:
        out[call.equipment_code].append(call)
    return out


def named(calls: list[Call], *operation_ids: str) -> list[Call]:
    return [c for c in calls if c.op.operation_id in operation_ids]
