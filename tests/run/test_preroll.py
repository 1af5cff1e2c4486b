"""Warm through any MES: against ``--mes`` the line starts cold and is brought warm through that MES first.

The MES is ``permissive_mes`` in a process of its own, which knows nothing of the twin's opening WIP: every
unit it sees in the measured window got there through its interfaces. The pre-roll's exchanges are counted
apart and left out of the run's figures.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from tests.transport.permissive_mes import foreign_mes
from twin.cli import main
from twin.metrics import read_exchange_log
from twin.run.networked import NetConfig, prepare


def test_a_foreign_mes_sees_the_line_brought_warm_before_the_measured_window(tmp_path: Path) -> None:
    report = tmp_path / "seen.json"
    with foreign_mes(report) as url:
        config = NetConfig(duration_s=600, speed=20, mes_url=url, equipment_port=0, reports=tmp_path / "r")
        config.compare_offline = False
        config.preroll_s = -1  # --preroll auto: the line file's cap
        run = prepare("mini", config)
        summary = asyncio.run(run.run())
    seen = json.loads(report.read_text())
    preroll = summary["preroll"]
    assert preroll["ended_because"] == "warm" and preroll["stations_warm"] == preroll["stations"] == 14
    assert 0 < preroll["virtual_s"] < run.line.preroll_s
    # the measured window: its own length, after the pre-roll; its figures hold none of the pre-roll's exchanges
    assert summary["run"]["virtual_s"] == pytest.approx(600, abs=1)
    assert summary["cells_out"] > 0
    logged = sum(1 for _ in read_exchange_log(run.path / "exchanges.parquet"))
    assert logged == summary["total"]["count"]
    assert sum(seen["counts"].values()) == summary["total"]["count"] + preroll["requests"]
    assert seen["unknown_paths"] == {} and seen["unauthenticated"] == []
    assert summary["conformance"]["violations"] == 0, summary["conformance"]["examples"]


def test_a_pre_roll_that_reaches_its_cap_still_runs_the_whole_measured_window(tmp_path: Path) -> None:
    with foreign_mes(tmp_path / "seen.json") as url:
        config = NetConfig(duration_s=120, speed=20, mes_url=url, equipment_port=0, reports=tmp_path / "r")
        config.compare_offline = False
        config.preroll_s = 600.0  # the mini line needs about 50 minutes from cold
        summary = asyncio.run(prepare("mini", config).run())
    assert summary["preroll"]["ended_because"] == "cap"
    assert summary["preroll"]["stations_warm"] < summary["preroll"]["stations"]
    assert summary["run"]["virtual_s"] == pytest.approx(120, abs=1) and summary["total"]["count"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--preroll", "soon"], "duration 'soon'"),
        (["--preroll", "1h", "--cold"], "--cold measures the start-up itself"),
    ],
)
def test_bad_preroll_options_are_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["twin", "run", "mini", "--mes", "http://127.0.0.1:9", *args])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
