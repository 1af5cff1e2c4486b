"""The live view and the closing lines say when the twin, not the MES, is the limit (twin.sim.pace)."""

from __future__ import annotations

from typing import Any

from twin.run.live import pace_line, status_line

STATUS: dict[str, Any] = {
    "virtual_s": 3600.0,
    "duration_s": 7200.0,
    "cells_out": 10,
    "requests": 1000,
    "p50_ms": 1.0,
    "p99_ms": 9.0,
    "failures": 0,
    "late_starts": 3,
    "interlocks": 0,
    "online": True,
    "backlog": 0,
    "faults": [],
}


def test_the_status_line_says_a_saturated_twin_and_the_pace_it_keeps() -> None:
    saturated = status_line({**STATUS, "saturated": True, "speed_asked": 2000.0, "speed_kept": 312.4}, 4000.0)
    assert "TWIN SATURATED: speed 312 of 2,000 asked (the twin's limit, not the MES's)" in saturated
    calm = status_line({**STATUS, "saturated": False, "speed_asked": 20.0, "speed_kept": 20.0}, 400.0)
    assert "SATURATED" not in calm


def test_the_closing_line_of_a_saturated_run() -> None:
    pace = {"saturated": True, "speed_asked": 2000.0, "speed_achieved": 305.2, "speed_lowest_kept": 150.0}
    line = pace_line({"pace": {**pace, "saturated_s": 40.0}})
    assert line.startswith("TWIN SATURATED") and "slowed to 305.2" in line and "not the MES's" in line
    assert pace_line({"pace": {"saturated": False}}) == "" and pace_line({}) == ""
