"""Crash the embedded MES from the web view: its process is killed and restarted on the same port, the hosts
live the outage offline and come back, and the page's figures say so as it happens."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from twin.run.networked import NetConfig, prepare
from twin.run.web import WebAddress, WebView
from twin.transport.embedded import EmbeddedMes

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not hasattr(EmbeddedMes, "_crash_rehearsal"), reason="the embedded MES has no supervisor"),
]


async def _until(check: object, timeout_s: float) -> None:
    for _ in range(int(timeout_s / 0.05)):
        if check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"not within {timeout_s} s")


async def test_a_crash_from_the_page_takes_the_mes_down_and_it_comes_back(tmp_path: Path) -> None:
    config = NetConfig(duration_s=1200.0, speed=20.0, reports=tmp_path / "reports", compare_offline=False,
                       equipment_port=0, retry_s=0.2)  # fmt: skip
    run = prepare("mini", config)
    async with WebView(run, WebAddress("127.0.0.1", 0)) as view, aiohttp.ClientSession() as http:
        task = asyncio.create_task(run.run())
        try:
            await _until(lambda: view.last.get("phase") == "running" and view.last["requests"] > 50, 30)
            assert view.last["link"]["mes_up"] is True
            async with http.post(f"{view.url}api/control/crash", json={"restart_after_s": 1.5}) as resp:
                entry = await resp.json()
                assert resp.status == 200 and entry["result"] == {"crashed": True, "restart_after_s": 1.5}
            await _until(lambda: view.last["link"]["mes_up"] is False, 5)
            await _until(lambda: not view.last["link"]["online"], 10)  # the hosts noticed
            async with http.post(f"{view.url}api/control/crash", json={}) as resp:  # not twice at once
                assert resp.status == 400 and "not up now" in (await resp.json())["error"]
            await _until(lambda: view.last["link"]["mes_up"] and view.last["link"]["online"], 20)
            await _until(lambda: view.last["link"]["backlog"] == 0, 20)  # what was owed is re-uploaded
        finally:
            run.stop()
            summary = await asyncio.wait_for(task, 30)
    assert run.mes is not None and len(run.mes.crashes) == 1 and run.mes.crashes[0][1] is not None
    assert [c["control"] for c in summary["controls"]] == ["crash", "crash"]
    assert summary["link"]["outages"]
