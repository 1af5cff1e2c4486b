"""Scripted host PCs for the proxy tests: each talks to the MES through the proxy as a vendor's software would."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from twin.profile import Profile

PASSWORD = "pa55word"


class FakeHost:
    def __init__(self, session: aiohttp.ClientSession, profile: Profile, proxy_url: str, code: str) -> None:
        self.session = session
        self.profile = profile
        self.proxy_url = proxy_url
        self.code = code
        self.token = ""
        self._beats: asyncio.Task[None] | None = None

    async def post(self, path: str, body: Any, *, auth: bool = True) -> tuple[int, Any]:
        headers = {"Authorization": self.token} if auth and self.token else {}
        async with self.session.post(self.proxy_url + path, json=body, headers=headers) as resp:
            return resp.status, await resp.json(content_type=None)

    async def call(self, ref: str, values: dict[str, Any] | None = None, *, auth: bool = True) -> Any:
        op = self.profile.operation(ref)
        context = {"now": datetime.now(UTC), "equipment_code": self.code, "resource_code": f"R-{self.code}"}
        body = self.profile.build_request(op, values or {}, context=context)
        status, answer = await self.post(op.path, body, auth=auth)
        assert status == 200, (self.code, ref, status, answer)
        return answer

    async def login(self) -> None:
        answer = await self.call("2.1", {"OperatorUserID": "op1001", "OperatorPassword": PASSWORD})
        self.token = answer["data"]["authorization"]

    def start_heartbeat(self, every_s: float, *, skip: tuple[int, ...] = ()) -> None:
        """Heartbeats on a fixed schedule (no drift); ``skip`` leaves out those beats (0 = the first)."""

        async def beat() -> None:
            start = time.monotonic()
            for n in range(10_000):
                if n not in skip:
                    await self.call("2.2", {"IsOnline": True})
                await asyncio.sleep(max(start + (n + 1) * every_s - time.monotonic(), 0))

        self._beats = asyncio.create_task(beat())

    async def stop_heartbeat(self) -> None:
        if self._beats is not None:
            self._beats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beats

    async def recipe(self) -> None:
        await self.call("2.9", {"ProductCode": "P-LFP-280", "RecipeCode": "R1", "Version": "1", "ParamList": []})

    async def state(self, code: str, reason: str = "") -> None:
        await self.call("2.3", {"StateCode": code, "DownReason": reason})

    async def alarm(self, status: str, code: str) -> None:
        await self.call("2.4", {"Status": status, "AlarmCode": code, "AlarmMsg": "jam", "AlarmLevel": "H"})

    async def produce(self, cell: str, *, inbound: bool = True) -> None:
        if inbound:
            await self.call("2.27", {"Sfc": cell})
        await self.call("2.28", {"Sfc": cell, "Passed": 1, "ParamList": [], "BindFeedingCodeList": [], "NgList": []})

    async def tray(self, tray: str, cells: list[str], *, out_before_in: bool = False) -> None:
        await self.call("2.35", {"ContainerCode": tray})
        for cell in cells:
            await self.call("2.36", {"Sfc": cell})
        bound = [{"Sfc": c, "Location": str(i + 1)} for i, c in enumerate(cells)]
        await self.call("2.37", {"ContainerCode": tray, "ContainerSfcList": bound})
        steps = ["2.41", "2.40"] if out_before_in else ["2.40", "2.41"]
        for ref in steps:
            await self.call(ref, {"ContainerCode": tray, "ParamList": []} if ref == "2.41" else {"ContainerCode": tray})
        await self.call("2.38", {"ContainCode": tray, "SfcList": cells})


class HostListener:
    """A host's section-3 listener (its port 6868 in the plant): answers with a fixed status."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[tuple[str, Any]] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _answer(self, request: web.Request) -> web.Response:
        self.received.append((request.path, await request.json()))
        if self.status == 200:
            return web.Response(status=200)
        return web.json_response({"Msg": "broken on purpose"}, status=self.status)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/api/{name}", self._answer)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
