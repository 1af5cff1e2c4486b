"""Served beyond loopback, the web view lets anyone read the run but only the holder of the embedded MES's admin
token steer it (over real HTTP on a real run; the socket stays on loopback, the view is told it is not)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from twin.run.networked import NetConfig, prepare
from twin.run.web import WebAddress, WebView


@dataclass(frozen=True)
class _Beyond(WebAddress):
    """127.0.0.1 as far as the socket goes, a plant-network address as far as the view's rules go."""

    @property
    def loopback(self) -> bool:
        return False


async def test_beyond_loopback_reading_is_open_and_steering_needs_the_mes_admin_token(tmp_path: Path) -> None:
    config = NetConfig(duration_s=1200.0, speed=20.0, reports=tmp_path / "reports", compare_offline=False,
                       equipment_port=0)  # fmt: skip
    run = prepare("mini", config)
    said: list[str] = []
    async with WebView(run, _Beyond("127.0.0.1", 0), say=said.append) as view, aiohttp.ClientSession() as http:
        task = asyncio.create_task(run.run())
        try:
            for _ in range(300):
                if view.last.get("phase") == "running":
                    break
                await asyncio.sleep(0.1)
            assert run.mes is not None and run.mes.admin_token
            assert "controls need the embedded MES's admin token" in said[0]
            async with http.get(f"{view.url}api/state") as resp:  # the wall screen reads without a token
                assert resp.status == 200 and (await resp.json())["token_needed"] is True
            url = f"{view.url}api/control/speed"
            async with http.post(url, json={"speed": 30}) as resp:
                assert resp.status == 401 and "admin token" in (await resp.json())["error"]
            async with http.post(url, json={"speed": 30}, headers={"Authorization": "Bearer guess"}) as resp:
                assert resp.status == 401
            token = {"Authorization": f"Bearer {run.mes.admin_token}"}
            async with http.post(url, json={"speed": 30}, headers=token) as resp:
                assert resp.status == 200 and (await resp.json())["result"]["speed"] == 30
        finally:
            run.stop()
            summary = await asyncio.wait_for(task, 30)
    assert [c["control"] for c in summary["controls"]] == ["speed"]  # refused for want of a token: not steering
