"""Ctrl-C (SIGINT) and SIGTERM at any moment of ``twin run``: never a traceback, and a whole run folder.

Before issue 13, Ctrl-C 0.4 s after start printed a 40-line traceback, and Ctrl-C while the report was being
written exited 130 with state ``finished`` and no report.html, plots, CSV or verdict. Real processes, real
signals; each run is the mini line for a few seconds.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

WHOLE = ("report.html", "plots", "stats.csv", "stats_history.csv", "verdict.json", "summary.json", "settings.json")


def start(reports: Path, duration: str = "2h") -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "twin", "run", "mini", "--speed", "30", "--duration", duration, "--no-compare"]
    return subprocess.Popen(
        [*cmd, "--reports", str(reports), "--equipment-port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def finish(proc: subprocess.Popen[str]) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=90)
    finally:
        proc.kill()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_starting_exits_130_without_a_traceback(sig: signal.Signals, tmp_path: Path) -> None:
    proc = start(tmp_path / "reports")
    time.sleep(0.4)
    proc.send_signal(sig)
    out, err = finish(proc)
    assert proc.returncode == 130, err
    assert "Traceback" not in err + out and len(err.strip().splitlines()) <= 3, err
    for summary in (tmp_path / "reports").glob("mini/*/summary.json"):  # if it got as far as a folder: whole
        assert json.loads(summary.read_text())["state"] == "interrupted"
        assert all((summary.parent / f).exists() for f in WHOLE)


def test_sigterm_during_the_run_stops_it_like_ctrl_c_with_a_whole_folder(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    proc = start(reports)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the MES listens and the line runs against it
        logs = list(reports.glob("mini/*/mes.log"))
        if logs and "listening on" in logs[0].read_text(errors="replace"):
            break
        time.sleep(0.2)
    time.sleep(2.0)
    proc.send_signal(signal.SIGTERM)
    _out, err = finish(proc)
    assert proc.returncode == 130 and "Traceback" not in err, err
    folder = next(reports.glob("mini/*"))
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["state"] == "interrupted" and summary["interrupted"] == {"signal": "SIGTERM", "during": "the run"}
    assert 0 < summary["run"]["virtual_s"] < 7200 and all((folder / f).exists() for f in WHOLE)


def test_ctrl_c_while_the_report_is_written_still_completes_the_folder(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    proc = start(reports, duration="60s")
    assert proc.stdout is not None
    for line in proc.stdout:  # the closing table is printed; the report is written next
        if line.startswith("run folder:"):
            proc.send_signal(signal.SIGINT)
            break
    else:
        raise AssertionError("the run printed no closing summary")
    _out, err = finish(proc)
    assert proc.returncode == 130 and "Traceback" not in err, err
    folder = next(reports.glob("mini/*"))
    assert all((folder / f).exists() for f in WHOLE), sorted(p.name for p in folder.iterdir())
    assert list((folder / "plots").glob("*.png"))
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["state"] == "interrupted" and summary["finished_before_interrupt"] is True
    assert summary["interrupted"]["during"] == "writing the run folder and report" and "report" in summary
