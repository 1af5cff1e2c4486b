"""A run never hides a fault (issue 13): the embedded MES dying, records never delivered, a planned crash.

Before issue 13 a ``kill -9`` of the embedded MES mid-run ended ``finished``, exit 0, with hundreds of records
never delivered and nothing saying the MES died. Each test runs the mini line for a few wall seconds against
its own embedded MES.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from twin.errors import ConfigError
from twin.run.networked import NetConfig, NetworkedRun, prepare


def config(tmp_path: Path, **kw: Any) -> NetConfig:
    base: dict[str, Any] = {
        "duration_s": 150.0,
        "speed": 40.0,
        "reports": tmp_path / "reports",
        "compare_offline": False,
        "equipment_port": 0,
        "retry_s": 0.2,
    }
    return NetConfig(**{**base, **kw})


async def kill_mes_at(run: NetworkedRun, virtual_s: float) -> float:
    while run.mes is None or run.sim is None or run.sim.env.now < virtual_s:
        await asyncio.sleep(0.05)
    assert run.mes.pid is not None
    os.kill(run.mes.pid, signal.SIGKILL)
    return time.time()


async def test_a_killed_mes_is_seen_at_once_recorded_and_the_run_is_hurt(tmp_path: Path) -> None:
    run = prepare("mini", config(tmp_path, duration_s=1200.0))
    seen: list[float] = []
    run.on_fault.append(lambda fault: seen.append(time.time()))
    killed, summary = await asyncio.gather(kill_mes_at(run, 60.0), run.run())
    assert seen and seen[0] - killed < 1.0  # shown live, at once
    assert summary["state"] == "aborted" and summary["run"]["virtual_s"] < 200  # stopped, not run on for nothing
    died = summary["faults"]["mes_died"]
    assert len(died) == 1 and died[0]["exit_code"] == -9 and died[0]["how"] == "killed by SIGKILL"
    assert abs(datetime.fromisoformat(died[0]["at"]).timestamp() - killed) < 1.0
    assert summary["hurt"] and "the embedded MES died (killed by SIGKILL)" in summary["hurt"][0]
    undelivered = summary["undelivered"]
    with sqlite3.connect(run.path / "outbox.sqlite") as db:
        left = db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
    assert undelivered["records"] == left == summary["link"]["backlog_now"]
    assert summary["faults"]["records_not_delivered"] == left


async def test_records_still_owed_at_the_end_are_counted_and_hurt_the_run(tmp_path: Path) -> None:
    mes_args = ["--outage-after", "2", "--outage-for", "120", "--outage-mode", "refuse"]
    run = prepare("mini", config(tmp_path, duration_s=240.0, mes_args=mes_args))
    summary = await run.run()
    assert summary["state"] == "finished" and not summary["faults"].get("mes_died")
    with sqlite3.connect(run.path / "outbox.sqlite") as db:
        owed = dict(db.execute("SELECT operation, COUNT(*) FROM outbox GROUP BY operation").fetchall())
    undelivered = summary["undelivered"]
    assert sum(owed.values()) > 0 and undelivered["records"] == sum(owed.values())
    assert undelivered["records_by_operation"] == owed
    assert any("records never delivered" in h for h in summary["hurt"])
    assert summary["faults"]["run_hurt"].startswith("yes: ")


async def test_a_planned_crash_is_an_event_with_its_backlog_not_a_hurt_run(tmp_path: Path) -> None:
    mes_args = ["--crash-after", "2", "--restart-after", "1"]
    run = prepare("mini", config(tmp_path, duration_s=300.0, mes_args=mes_args))
    summary = await run.run()
    assert summary["state"] == "finished" and summary["hurt"] == [], summary["hurt"]
    assert [e["kind"] for e in summary["mes_events"]] == ["crashed", "restarted"]
    crash = summary["faults"]["planned_crashes"][0]
    assert crash["queued"] > 0 and crash["resent"] == crash["queued"] and crash["drain_s"] is not None
    assert 1.0 <= crash["down_s"] < 10
    assert summary["undelivered"]["records"] == 0 and "mes_died" not in summary["faults"]


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            kids += [int(x) for x in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
        except OSError:
            continue
    return kids


def test_twin_run_exits_3_and_reports_it_when_its_mes_is_killed(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    cmd = [sys.executable, "-m", "twin", "run", "mini", "--speed", "30", "--duration", "2h", "--no-compare"]
    proc = subprocess.Popen(
        [*cmd, "--reports", str(reports), "--equipment-port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the MES listens and the line runs against it
            found = list(reports.glob("mini/*/mes.log"))
            if found and "listening on" in found[0].read_text(errors="replace") and _children(proc.pid):
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the run did not get going within 60 s")
        time.sleep(2.0)
        os.kill(_children(proc.pid)[0], signal.SIGKILL)
        _out, err = proc.communicate(timeout=90)
    finally:
        proc.kill()
    assert proc.returncode == 3, err
    assert "MES DIED: the embedded MES process ended (killed by SIGKILL)" in err and "Traceback" not in err
    assert "error: the embedded MES died (killed by SIGKILL)" in err
    folder = found[0].parent
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["state"] == "aborted" and summary["faults"]["mes_died"][0]["exit_code"] == -9
    page = (folder / "report.html").read_text()
    assert "This run was hurt: the embedded MES died (killed by SIGKILL)" in page and 'id="faults"' in page


async def test_an_mes_that_answers_nothing_the_line_sends_is_a_hurt_run(tmp_path: Path) -> None:
    """It answers the reachability check at start (GET /), then drops every call: the run must not pass as done."""

    async def drop(request: web.Request) -> web.Response:
        assert request.transport is not None
        request.transport.close()
        return web.Response(status=503)

    async def hello(_request: web.Request) -> web.Response:
        return web.Response(text="an MES that only says hello")

    app = web.Application()
    app.router.add_get("/", hello)
    app.router.add_post("/{tail:.*}", drop)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        run = prepare("mini", config(tmp_path, duration_s=60.0, mes_url=f"http://127.0.0.1:{port}"))
        summary = await run.run()
    finally:
        await runner.cleanup()
    assert summary["total"]["count"] > 0 and run.answered == 0
    assert f"the MES answered none of the {summary['run']['requests']:,} requests" in summary["hurt"]
    assert summary["undelivered"]["calls"] > 0 and summary["faults"]["run_hurt"].startswith("yes: ")


async def test_inside_an_event_loop_a_dead_mes_url_is_refused_as_the_run_starts(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = prepare("mini", config(tmp_path, mes_url=f"http://127.0.0.1:{port}"))  # no blocking check in a loop
    with pytest.raises(ConfigError, match="connection refused"):
        await run.run()
    assert run.answered == 0 and run.sim is None  # refused before the model was built
