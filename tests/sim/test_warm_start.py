"""A warm line is a steady line: from the first virtual hour every interface is called at its steady rate.

The opening state (the line file's ``initial`` units in buffers, ``prefill`` of chambers and racks, each tray
at a uniformly random point of its process, and the electrolyte batch already in every filler's tank) is
meant to be the steady state of the line. The test runs line-A02 offline for 12 hours from that state and
holds the first hour against the mean of the hours after it, for every interface called at least hourly.
The MES's electrolyte pushes (3.2) are left out, as against a foreign MES, whose schedule is its own.

Only calls that every host makes when it starts (login, time sync, start-up verification, tool life, the
first state report, loading materials) may run above their steady rate in the first hour: a started line
makes them, whatever its WIP. None may run below it.
"""

from __future__ import annotations

import math

from tests.conftest import steady_per_hour

START_UP = {  # made when a host starts (spec 1.5, 2.1-2.9, 2.42) or a station first loads its materials
    "OperatorLogin", "TimeSynch", "GetRecipeList", "GetRecipeDetail", "Recipe", "State", "ToolLife",
    "AgvUpMaterial", "Feeding", "HalfFeeding", "ConsumeEquBeforeCheck", "ConsumeEqu", "MaterialInventory",
    "ToolBindMaterialAsync", "FeedingCompleted",
}  # fmt: skip


def tolerance(per_hour: float) -> float:
    """20 %, or three standard deviations of one hour's Poisson count where that is wider (rare calls)."""
    return max(0.2, 3.0 / math.sqrt(per_hour))


def test_every_hourly_interface_runs_at_its_steady_rate_from_the_first_hour(
    line_a02_hourly: dict[str, list[int]],
) -> None:
    hourly, steady = line_a02_hourly, steady_per_hour(line_a02_hourly)
    wrong = []
    for op, rate in sorted(steady.items()):
        if rate < 1.0:
            continue  # not an hourly interface (mixing batches, shift-long events)
        first, tol = hourly[op][0], tolerance(rate)
        if first < (1 - tol) * rate or (op not in START_UP and first > (1 + tol) * rate):
            wrong.append(f"{op}: {first} in the first hour, {rate:.1f}/h after it (tolerance {tol:.0%})")
    assert not wrong, "\n".join(wrong)


def test_filling_runs_from_the_start_without_waiting_for_the_mes(line_a02_hourly: dict[str, list[int]]) -> None:
    assert line_a02_hourly["GetInjectionVolume"][0] > 0 and line_a02_hourly["FillingData"][0] > 0
