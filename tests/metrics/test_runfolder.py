"""The run folder is complete at the end and readable after a kill."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from twin.metrics import LatencyBook, read_exchange_log
from twin.metrics.exchange import Exchange
from twin.metrics.runfolder import RunFolder, new_run_dir


def ex(i: int) -> Exchange:
    return Exchange("Heartbeat", "EQ-01", i, 100.0 + i, 100.0 + i, 100.01 + i, 200, 0, 90, 30)


def test_finished_folder_has_every_file_and_consistent_counts(tmp_path: Path) -> None:
    run = RunFolder(new_run_dir(tmp_path, "mini"), {"line": "mini", "seed": 7})
    for i in range(100):
        run.record(ex(i), ok=i % 10 != 0)
    run.extra["cells_out"] = 42
    summary = run.finish()
    files = {p.name for p in run.path.iterdir()}
    assert {"settings.json", "summary.json", "histograms.json", "exchanges.parquet"} <= files
    on_disk = json.loads((run.path / "summary.json").read_text())
    assert on_disk["state"] == "finished" and on_disk["cells_out"] == 42
    assert on_disk["total"]["count"] == 100 and on_disk["total"]["failures"] == 10
    assert summary["total"]["count"] == len(list(read_exchange_log(run.path / "exchanges.parquet")))
    book = LatencyBook.decode(json.loads((run.path / "histograms.json").read_text()))
    assert book.total().count == 100
    assert run.path.parent.name == "mini" and json.loads((run.path / "settings.json").read_text())["seed"] == 7


KILLED = """
import os, sys
from pathlib import Path
from twin.metrics.exchange import Exchange
from twin.metrics.runfolder import RunFolder
run = RunFolder(Path(sys.argv[1]), {"line": "mini"}, checkpoint_s=0.0)  # a background checkpoint each time
for i in range(30):
    run.record(Exchange("State", "E", i, i, i, i + 0.002, 200, 0, 10, 10), True)
run.checkpoint()  # the last checkpoint before the crash
for i in range(5):
    run.record(Exchange("State", "E", i, i, i, i + 0.002, 200, 0, 10, 10), True)
os._exit(1)
"""


def test_a_killed_run_leaves_a_readable_folder(tmp_path: Path) -> None:
    path = tmp_path / "run"
    path.mkdir()
    assert subprocess.run([sys.executable, "-c", KILLED, str(path)], timeout=60).returncode == 1
    summary = json.loads((path / "summary.json").read_text())  # every file whole, whatever the moment of death
    assert summary["state"] == "running" and 30 <= summary["total"]["count"] <= 35
    assert 30 <= len(list(read_exchange_log(path / "exchanges.parquet"))) <= 35
    assert 30 <= LatencyBook.decode(json.loads((path / "histograms.json").read_text())).total().count <= 35
