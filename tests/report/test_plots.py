"""Plots draw what the run has and nothing else: no empty plot, no hour-long axis for ten minutes."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from twin.metrics import Exchange
from twin.metrics.runfolder import RunFolder, new_run_dir
from twin.report import plots, write_report
from twin.report.timeline import BINS


def test_the_output_per_hour_needs_two_hours_and_shows_a_partial_last_hour() -> None:
    hours = np.ones((5, BINS), dtype=np.int64)
    assert plots.output_vs_latency([40.0], hours, 600.0) is None  # 10 virtual minutes: one bar says nothing
    drawn = plots.output_vs_latency([1400.0, 1450.0, 350.0], hours, 2.25 * 3600)
    assert drawn is not None and "The last hour is partial (15 virtual min)." in drawn.caption


def test_a_run_without_failures_draws_no_failure_plot_and_says_why(tmp_path: Path) -> None:
    run = RunFolder(new_run_dir(tmp_path, "mini"), {"line": "mini", "speed": 20.0})
    t0 = time.time() - 120
    for i in range(600):
        at = t0 + i * 0.2
        run.record(Exchange("Heartbeat", "EQ-1", i * 4.0, at, at + 0.001, at + 0.004, 200, 0, 100, 40, ""), True)
    run.finish()
    write_report(run.path)
    assert {p.stem for p in (run.path / "plots").glob("*.png")} == {"throughput_p99", "spectrum"}
    html = (run.path / "report.html").read_text(encoding="utf-8")
    assert "Not drawn: failed exchanges over time: no exchange failed in this run." in html
    assert "No exchange failed." in html
