"""Shared fixtures: small and obvious."""

from __future__ import annotations

from pathlib import Path

import pytest

from twin.profile import Profile, load_profile

ROOT = Path(__file__).resolve().parent.parent
MES_PROFILE = ROOT / "profiles" / "qingke-mes-v1.openapi.yaml"
TINY_PROFILE = Path(__file__).resolve().parent / "data" / "tiny.openapi.yaml"


@pytest.fixture(scope="session")
def mes() -> Profile:
    return load_profile(MES_PROFILE)


@pytest.fixture(scope="session")
def tiny() -> Profile:
    return load_profile(TINY_PROFILE)


@pytest.fixture(scope="session")
def line_a02_hourly(mes: Profile) -> dict[str, list[int]]:
    """Calls per interface in each of 12 offline hours of line-A02 from its warm opening state.

    The MES's electrolyte pushes (3.2) are left out, as against a foreign MES, whose schedule is its own.
    """
    from twin.line.linefile import load_line
    from twin.sim.builder import Simulation

    hours = 12
    line, _ = load_line("line-A02", profile=mes)
    sim = Simulation(line, mes, seed=3, warmup_s=0.0, mes_pushes=False)
    sim.run(hours * 3600)
    by_hour = sim.traffic.by_hour
    return {op: [by_hour.get((op, h), 0) for h in range(hours)] for op in {op for op, _ in by_hour}}


def steady_per_hour(hourly: dict[str, list[int]]) -> dict[str, float]:
    """The mean of every hour after the first."""
    return {op: sum(counts[1:]) / (len(counts) - 1) for op, counts in hourly.items()}
