"""The extras of summary.json, in the plain spelling and in the one `twin run` against an MES writes.

`twin run` (twin.run.networked) keeps ``line`` for the line's name and writes ``line_kpis``,
``offline_compare``, ``run.virtual_s``, ``link.outages`` with ISO times and interlocks with ``reaction_ms``;
the report must find every one of them, draw the backlog of the outage and check the interlock SLO.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.report.conftest import OUTAGE, drain_s, write_run
from twin.report import extras, write_report
from twin.sim.runner import RunConfig, simulate


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def test_the_plain_spelling_is_read_as_documented() -> None:
    summary = {
        "line": {"cells_out": 10, "hourly": [{"hour": 1, "cells_out": 7}, {"hour": 0, "cells_out": 5}]},
        "virtual_s": 7200,
        "output_cost_of_mes_latency": 3,
        "interlocks": [{"code": 500201, "equipment": "W1", "reaction_s": 0.5}, {"code": 500301, "reaction_s": None}],
        "outages": [{"start_wall": 10.0, "end_wall": 20.0, "backlog_max": 5, "drain_s": 2}],
    }
    assert extras.line_kpis(summary) == summary["line"] and extras.hourly(summary) == [5.0, 7.0]
    assert extras.virtual_s(summary) == 7200 and extras.cost(summary) == 3
    assert [(i["code"], i["reaction_s"], i["outcome"]) for i in extras.interlocks(summary) or []] == [
        ("500201", 0.5, "stopped"),
        ("500301", None, "never stopped"),
    ]
    assert extras.outages(summary) == [
        {"start_wall": 10.0, "end_wall": 20.0, "backlog_max": 5, "drain_s": 2.0, "queued": None, "reason": None}
    ]
    nothing: dict[str, object] = {"line": "mini"}
    assert extras.line_kpis(nothing) is None and extras.hourly(nothing) is None
    assert extras.interlocks(nothing) is None and extras.outages(nothing) is None and extras.cost(nothing) is None


def test_decision_to_stop_is_preferred_to_receipt_to_stop() -> None:
    both = {"code": "500203", "decision_to_stop_ms": 950.0, "reaction_ms": 12.0}
    assert extras.reaction_s(both) == pytest.approx(0.95) and extras.reaction_s({"reaction_ms": 12}) == 0.012


@pytest.fixture(scope="module")
def twin_run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder with its extras as `twin run` writes them, and the log of an outage from 300 s to 360 s."""
    run = write_run(tmp_path_factory.mktemp("twin-run"), with_extras=False)
    queued = [ex for ex in run.exchanges if OUTAGE[0] <= ex.intended_wall - run.started_wall < OUTAGE[1] and ex.status]
    drained = drain_s(queued, run.started_wall)
    start, end = run.started_wall + OUTAGE[0], run.started_wall + OUTAGE[1]
    kpis = simulate("mini", RunConfig(duration_s=3600, seed=2)).kpis.to_dict()
    summary = json.loads((run.path / "summary.json").read_text())
    summary.update(
        line="mini",
        run={"virtual_s": 14_400.0, "cells_out": 160},
        line_kpis=kpis,
        offline_compare={"good_cells_offline": 170, "good_cells_networked": 160, "cost_cells": 10, "cost_pct": 5.88},
        link={"relogins": 0, "outages": [{
            "started": _iso(start), "ended": _iso(end), "drained": _iso(end + drained), "offline_s": 60.0,
            "drain_s": round(drained, 3), "reason": "no answer", "queued": len(queued), "resent": len(queued),
            "max_backlog": len(queued)}]},
        interlocks=[{"equipment": "A02-WIND-01", "code": "500201", "message": "x-ray NG x3", "received": start - 100,
                     "stopped": start - 99.2, "reaction_ms": 812.5, "virtual_s": 4800.0}],
    )  # fmt: skip
    (run.path / "summary.json").write_text(json.dumps(summary))
    slo = run.path.parent / "interlocks.yaml"
    slo.write_text("interlocks:\n  max_reaction_s: 0.5\n")
    verdict = write_report(run.path, slo=slo)
    assert [(c.actual, c.passed) for c in verdict.checks] == [(0.8125, False)]
    return run.path


def test_a_twin_run_folder_gets_every_part_of_the_report(twin_run_folder: Path) -> None:
    html = (twin_run_folder / "report.html").read_text(encoding="utf-8")
    plots = {p.stem for p in (twin_run_folder / "plots").glob("*.png")}
    assert plots == {"throughput_p99", "spectrum", "errors", "backlog", "interlocks"}
    assert "no hourly output" in html  # the one thing `twin run` does not record yet: named, not drawn
    assert "no line KPIs" not in html and ">winding<" in html  # a station of line_kpis
    assert "<h3>Stations (over the KPI window)</h3>" in html and "<h3>calls</h3>" not in html  # calls: the table
    assert "lost 10 good cells (5.88 %)" in html and "4 h 00 min" in html  # offline_compare and run.virtual_s
    assert ">OEE<" in html and "start s" not in html and "cost pct" not in html  # units, nothing internal
    outage_rows = html.split('id="outages"')[1].split("</table>")[0]
    assert "5 min 00 s" in outage_rows and "60 s" in outage_rows and ">no answer<" in outage_rows
    assert "(± " in outage_rows  # the drain measured from the log beside the recorded one
