"""KPIs read from a run: they add up with the ledgers and the call counts, and respect the warm-up."""

from __future__ import annotations

import pytest

from twin.line.model import Line
from twin.profile import Profile
from twin.sim.builder import Simulation
from twin.sim.kpi import compute


def test_kpis_add_up(mini_run: Simulation) -> None:
    k = compute(mini_run)
    ledger = mini_run.lines[0].ledger
    assert k.good_cells == ledger.shipped["cell"] > 0
    assert k.cells_per_hour == pytest.approx(k.good_cells / (mini_run.env.now / 3600))
    assert 0.8 < k.yield_rty < 1.0
    assert k.bottleneck in {s.id for s in k.stations} and k.bottleneck != "warehouse"
    assert sum(c.total for c in k.calls) == mini_run.traffic.total
    assert k.calls_per_hour == pytest.approx(mini_run.traffic.total / (mini_run.env.now / 3600))
    sorting = next(s for s in k.stations if s.id == "sorting")
    assert sorting.good == k.good_cells
    for s in k.stations:
        assert 0.0 <= s.oee <= 1.0 and 0.0 <= s.utilisation <= 1.0 + 1e-9 and s.oee <= s.availability + 1e-9
    for b in k.buffers:
        assert b.capacity is None or b.mean <= b.capacity
    baked = next(b for b in k.buffers if b.name == "baked")
    assert baked.peak <= 40


def test_the_warm_up_is_left_out(mini: Line, mes: Profile) -> None:
    sim = Simulation(mini, mes, seed=11, warmup_s=3600)
    sim.run(3 * 3600)
    k = compute(sim)
    assert k.start_s == 3600 and k.hours == pytest.approx(2.0)
    full = sim.lines[0].ledger.shipped["cell"]
    assert 0 < k.good_cells <= full
    assert k.good_cells == full - sim.snapshot["shipped"]  # type: ignore[index]


def test_bottleneck_is_the_slowest_station(mini: Line, mes: Profile) -> None:
    import dataclasses

    slow = tuple(dataclasses.replace(st, rate_ppm=2.0) if st.id == "helium-test-1" else st for st in mini.stations)
    sim = Simulation(dataclasses.replace(mini, stations=slow), mes, seed=2)
    sim.run(3 * 3600)
    k = compute(sim)
    assert k.bottleneck == "helium-test-1"
    he = next(s for s in k.stations if s.id == "helium-test-1")
    assert he.utilisation > 0.7
