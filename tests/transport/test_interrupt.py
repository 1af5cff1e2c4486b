"""Ctrl-C in the middle of ``twin run`` stops cleanly and leaves a complete run folder."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from twin.metrics import LatencyBook, read_exchange_log


def test_ctrl_c_leaves_a_complete_run_folder(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    cmd = [sys.executable, "-m", "twin", "run", "mini", "--speed", "30", "--duration", "2h", "--reports", str(reports)]
    cmd += ["--equipment-port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until exchanges have been checkpointed at least once
            found = list(reports.glob("mini/*/exchanges.parquet"))
            if found and any(found[0].glob("part-*.parquet")):  # a checkpoint sealed a part
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the run wrote no exchanges within 60 s")
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    folder = found[0].parent
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["state"] == "interrupted" and 0 < summary["run"]["virtual_s"] < 7200
    rows = list(read_exchange_log(folder / "exchanges.parquet"))
    assert len(rows) == summary["total"]["count"] == summary["exchanges_logged"] > 0
    book = LatencyBook.decode(json.loads((folder / "histograms.json").read_text()))
    assert book.total().count == len(rows) and "p99" in summary["total"]["latency_ms"]
    assert "line_kpis" in summary and "mes_counts" in summary and "Traceback" not in err
    assert "interrupted" in out and str(folder) in out


def test_a_run_with_an_slo_writes_its_report_and_exits_1_when_it_is_not_met(tmp_path: Path) -> None:
    slo = tmp_path / "strict.yaml"
    slo.write_text("title: impossible\nobjectives:\n  - {name: faster than light, group: all, p99_ms: 0.001}\n")
    reports = tmp_path / "reports"
    cmd = [sys.executable, "-m", "twin", "run", "mini", "--speed", "60", "--duration", "90s", "--slo", str(slo)]
    done = subprocess.run(
        [*cmd, "--reports", str(reports), "--equipment-port", "0", "--no-compare"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "faster than light" in done.stdout + done.stderr
    folder = next(reports.glob("mini/*"))
    assert (folder / "report.html").exists() and (folder / "verdict.json").exists()
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["hourly"][0]["hour"] == 0 and summary["report"]
    bad = subprocess.run([*cmd[:-1], str(tmp_path / "missing.yaml")], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and len(list(reports.glob("mini/*"))) == 1  # refused before a run started
