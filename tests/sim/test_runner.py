"""The library function behind `twin run`: durations, warm-up, results."""

from __future__ import annotations

import pytest

from twin.errors import ConfigError
from twin.line.model import Line
from twin.profile import Profile
from twin.sim.runner import RunConfig, effective_warmup, simulate


def test_warmup_only_when_the_run_is_long_enough(mini: Line) -> None:
    assert effective_warmup(mini, RunConfig(duration_s=3600, warmup_s=1800)) == (1800, "first 0.5 h excluded")
    assert effective_warmup(mini, RunConfig(duration_s=3000, warmup_s=1800))[0] == 0
    assert effective_warmup(mini, RunConfig(duration_s=3000))[1] == "none"


def test_simulate_returns_kpis_and_run_figures(mini: Line, mes: Profile) -> None:
    result = simulate(mini, RunConfig(duration_s=5400, seed=3), profile=mes)
    assert result.kpis.good_cells > 0 and result.events > result.calls > 10_000
    assert result.sim_per_wall > 100
    data = result.to_dict()
    assert data["mode"] == "offline" and data["kpis"]["good_cells"] == result.kpis.good_cells
    with pytest.raises(ConfigError, match="--scale"):
        simulate(mini, RunConfig(scale=0), profile=mes)
