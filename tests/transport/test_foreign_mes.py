"""One virtual hour of line-A02 against an MES that is not the embedded one reaches every hourly interface.

The MES is ``permissive_mes`` in a process of its own: built from the profile's examples alone, it knows
nothing of the twin's opening WIP, pushes no electrolyte batch and answers every barcode request with the
spec's printed example. What it must see is what a strict acceptance would ask of the hosts: only the seed's
paths, never a call without its token, states and alarms in the order they were made.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tests.conftest import steady_per_hour
from tests.transport.permissive_mes import foreign_mes
from twin.run.networked import NetConfig, prepare


def test_an_hour_against_a_foreign_mes_reaches_every_hourly_interface(
    tmp_path: Path, line_a02_hourly: dict[str, list[int]]
) -> None:
    report = tmp_path / "seen.json"
    with foreign_mes(report) as url:
        config = NetConfig(duration_s=3600, speed=120, mes_url=url, equipment_port=0, reports=tmp_path / "reports")
        config.compare_offline = False
        summary = asyncio.run(prepare("line-A02", config).run())
    seen = json.loads(report.read_text())
    hourly = {op for op, rate in steady_per_hour(line_a02_hourly).items() if rate >= 1.0}
    assert sorted(hourly - set(seen["reached"])) == []
    assert seen["unknown_paths"] == {}
    assert seen["unauthenticated"] == []
    assert seen["status_order_violations"] == []
    assert summary["state"] == "finished" and summary["cells_out"] > 0
