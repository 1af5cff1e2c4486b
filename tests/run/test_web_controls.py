"""The web view's controls over HTTP on a real run (mini line, its own embedded MES): MES faults set and
cleared through the MES's admin API (with its admin token), a load shape over the rest of the run, refusals
that name the reason, and the server-sent events a page lives on."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from twin.report import write_report
from twin.run.networked import NetConfig, prepare
from twin.run.web import WebAddress, WebView


async def _post(http: aiohttp.ClientSession, url: str, name: str, args: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with http.post(f"{url}api/control/{name}", json=args) as resp:
        return resp.status, await resp.json()


async def _until(check: Any, timeout_s: float) -> None:
    for _ in range(int(timeout_s / 0.1)):
        if check():
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"not within {timeout_s} s")


async def test_faults_shape_and_refusals_steer_a_running_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = NetConfig(duration_s=1200.0, speed=20.0, reports=tmp_path / "reports", compare_offline=False,
                       equipment_port=0, retry_s=0.2)  # fmt: skip
    run = prepare("mini", config)
    async with WebView(run, WebAddress("127.0.0.1", 0)) as view, aiohttp.ClientSession() as http:
        task = asyncio.create_task(run.run())
        try:
            await _until(lambda: view.last.get("phase") == "running" and view.last["requests"] > 50, 30)
            # a page connecting now gets the layout, the history and the line at once
            async with http.get(f"{view.url}events") as resp:
                assert resp.headers["Content-Type"] == "text/event-stream"
                first = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 5)
                tick = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 3)  # at least one a second
            hello = json.loads(first.split(b"data: ", 1)[1])
            assert first.startswith(b"event: hello") and hello["history"]["fine"] and hello["layout"]["line"] == "mini"
            assert tick.startswith((b"event: tick", b"event: layout"))

            # MES faults: every call refused with 9001 for a while, then cleared
            status, entry = await _post(http, view.url, "faults", {"set": {"error_rate": 1.0}})
            assert status == 200 and entry["result"]["faults"]["error_rate"] == 1.0, entry
            await _until(lambda: view.last["errors_per_s"] > 0 and "9001" in view.last["errors"], 10)
            status, entry = await _post(http, view.url, "faults", {"clear": True})
            assert status == 200 and entry["result"]["faults"]["error_rate"] == 0
            await _until(lambda: view.last["errors_per_s"] == 0 and view.last["groups"]["all"]["n"] > 0, 10)

            # a ramp over what is left of the run, from the speed now
            status, entry = await _post(http, view.url, "shape", {"shape": "ramp:1:2"})
            segments = entry["result"]["segments"]
            assert status == 200 and len(segments) == 10 and segments[0][1] == 20.0 and segments[-1][1] == 40.0
            assert segments[0][0] == entry["result"]["from_virtual_s"] and segments[-1][0] < 1200.0

            # a shift start now: every host logs in again (2.1), on top of the traffic
            logins = run.folder.book.interfaces["OperatorLogin"].count
            status, entry = await _post(http, view.url, "shape", {"shape": "storm:10s@0"})
            assert status == 200 and entry["result"]["storm_at_virtual_s"] == entry["result"]["from_virtual_s"]
            hosts = run.line.equipment_count()
            await _until(lambda: run.folder.book.interfaces["OperatorLogin"].count >= logins + hosts, 10)

            # refusals say why, and are logged too
            status, entry = await _post(http, view.url, "interlock", {"equipment": "NOPE-01"})
            assert status == 400 and "NOPE-01" in entry["error"]
            status, entry = await _post(http, view.url, "speed", {"speed": -3})
            assert status == 400 and "speed must be above 0" in entry["error"]
            status, entry = await _post(http, view.url, "shape", {"shape": "zigzag"})
            assert status == 400 and "load shape 'zigzag'" in entry["error"]
            async with http.post(f"{view.url}api/control/stop", data="x=1") as resp:  # not JSON: a cross-site form
                assert resp.status == 403 and run.folder.state == "running"
            rebound = {"Host": f"attacker.example:{view.url.rsplit(':', 1)[1].strip('/')}"}  # DNS rebinding
            async with http.post(f"{view.url}api/control/stop", json={}, headers=rebound) as resp:
                assert resp.status == 403 and "loopback names only" in (await resp.json())["error"]
            async with http.get(f"{view.url}api/state", headers=rebound) as resp:
                assert resp.status == 403 and run.folder.state == "running"
        finally:
            run.stop()
            summary = await asyncio.wait_for(task, 30)
    logged = [json.loads(line) for line in (run.path / "controls.jsonl").read_text().splitlines()]
    assert [(c["control"], c["ok"]) for c in logged] == [
        ("faults", True), ("faults", True), ("shape", True), ("shape", True), ("interlock", False), ("speed", False),
        ("shape", False),
    ]  # fmt: skip
    assert summary["controls"] == logged
    assert all(c["wall_s"] > 0 and c["virtual_s"] > 0 for c in logged)

    # the report marks the accepted controls on its time plots, at their virtual time
    from twin.report import plotbase, plots

    drawn: list[list[tuple[float, str]]] = []

    def mark(ax: Any, marks: Any, scale: float) -> None:
        drawn.append(list(marks))
        plotbase.mark_controls(ax, marks, scale)

    monkeypatch.setattr(plots, "mark_controls", mark)
    write_report(run.path)
    assert len(drawn) == 3  # throughput and p99 (two axes), errors over time (the faults made some)
    for marks in drawn:
        assert [label for _, label in marks] == ["faults", "faults clear", "shape ramp:1:2", "shape storm:10s@0"]
        for (x, _), c in zip(marks, logged, strict=False):
            assert x == pytest.approx(c["virtual_s"], abs=5.0)  # virtual time (wall time would be ~20x off)
