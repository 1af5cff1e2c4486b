"""The line's figures and the settings read as a person reads them: units, percentages, nothing internal."""

from __future__ import annotations

from twin.report.html import fmt_duration
from twin.report.lineview import line_blocks, settings_rows, window

KPIS = {
    "line": "mini", "start_s": 600.0, "end_s": 3600.0, "warmup_s": 600.0, "good_cells": 1234,
    "cells_per_hour": 1480.4, "yield_rty": 0.9412, "bottleneck": "winding", "equipment": 19,
    "stations": [{"id": "winding", "process": "winding", "count": 2, "made": 40, "good": 39, "ng": 1, "held": 0,
                  "availability": 0.98, "utilisation": 0.8, "active": 0.85, "oee": 0.7123, "archetype": "winding"}],
    "buffers": [{"name": "wound", "capacity": 30, "mean": 0.0003388, "peak": 1, "final": 0},
                {"name": "finished", "capacity": None, "mean": 12.25, "peak": 40, "final": 40}],
    "calls": [{"operation": "Heartbeat", "total": 10}], "hourly": [{"hour": 0, "cells_out": 5}],
}  # fmt: skip


def test_line_cards_carry_units_and_percentages() -> None:
    b = line_blocks(KPIS)
    cards = dict((k, v) for k, v in b.cards)
    assert cards["good cells out"] == "1,234 cells" and cards["output rate"] == "1,480 cells / virtual h"
    assert cards["rolled throughput yield"] == "94.1 %" and cards["bottleneck (most active station)"] == "winding"
    assert not {"start s", "end s", "warmup s", "line", "hourly", "calls"} & set(cards)
    stations, buffers = b.tables
    assert stations.columns[:2] == ["station", "process"] and stations.left == 2
    row = dict(zip(stations.columns, stations.rows[0], strict=True))
    assert row["OEE"] == "71.2 %" and row["active (busy, down or set up)"] == "85.0 %" and row["NG"] == "1"
    assert [r[2] for r in buffers.rows] == ["0.0", "12.2"] and buffers.rows[1][1] == "unbounded"
    assert window(KPIS, fmt_duration) == (
        "Measured over virtual time 10 min 00 s to 1 h 00 min (the first 10 min 00 s are warm-up, left out)."
    )


def test_settings_show_labels_not_keys() -> None:
    settings = {"duration_s": 600.0, "exchange_log": "exchanges...", "line": "mini", "load": {"shape": "steady",
                "text": "steady"}, "mes_args": [], "mode": "speed 20", "speed": 20.0, "target": "embedded"}  # fmt: skip
    rows = dict(settings_rows(settings, fmt_duration))
    assert rows == {"line": "mini", "MES": "embedded", "pace": "speed 20", "virtual duration": "10 min 00 s",
                    "load shape": "steady", "embedded MES options": "none"}  # fmt: skip


def test_a_failing_code_says_what_it_means() -> None:
    from twin.report.spec import SpecNames, meaning

    assert meaning("2001", embedded=True).endswith("embedded MES: route")  # the embedded MES's own code
    assert "embedded" not in meaning("2001", embedded=False)  # another MES: only what the spec says
    assert meaning("9001", embedded=True) == "injected on purpose by the embedded MES's fault injection"
    assert meaning("http 503", embedded=False).startswith("HTTP 503 Service Unavailable")
    assert meaning("timeout", embedded=True).startswith("no answer (timeout)")
    names = SpecNames()
    assert (names.of("GetRecipeDetail").section, names.of("GetRecipeDetail").name_cn) == ("2.8", "获取开机参数明细")
