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
            found = list(reports.glob("mini/*/exchanges.csv.gz"))
            if found and found[0].stat().st_size > 2000:
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
    rows = list(read_exchange_log(folder / "exchanges.csv.gz"))
    assert len(rows) == summary["total"]["count"] == summary["exchanges_logged"] > 0
    book = LatencyBook.decode(json.loads((folder / "histograms.json").read_text()))
    assert book.total().count == len(rows) and "p99" in summary["total"]["latency_ms"]
    assert "line_kpis" in summary and "mes_counts" in summary and "Traceback" not in err
    assert "interrupted" in out and str(folder) in out
