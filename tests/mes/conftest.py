"""A real embedded MES on 127.0.0.1 (port 0, in-memory database) and a small host that talks to it.

The host builds every request with the profile (camelCase, autofilled codes and LocalTime from its own
clock, which tests move forward to exercise time windows) and keeps the token it logged in with.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from twin.mes import MesConfig, RunningMes, start_mes
from twin.mes.app import _loaded
from twin.profile import Profile

WINDER, WINDER_2 = "A02-WIND-01", "A02-WIND-02"
HOT_PRESS, XRAY, XRAY_2, TAB_CUT = "A02-HP-01", "A02-XR-01", "A02-XR-02", "A02-TPW-01"
USW, COVER, COVER_B, EDGE, CORE = "A02-USW-01", "A02-CVW-01", "A02-CVWB-01", "A02-EDGE-01", "A02-CT-01"
MYLAR, CASING, TC_PRE, TC_WELD, HE1 = "A02-MY-01", "A02-CAS-01", "A02-TCP-01", "A02-TCW-01", "A02-HE1-01"
BAKE, INJ1, AGING, OCV1, PREFORM = "A02-BAKE-01", "A02-INJ1-01", "A02-AGE-01", "A02-OCV1-01", "A02-PF-01"
INJ2, SEAL, HE2, FORM, OCV, SORT, WRAP = (
    "A02-INJ2-01",
    "A02-SPW-01",
    "A02-HE2-01",
    "A02-FORM-01",
    "A02-OCV-01",
    "A02-SORT-01",
    "A02-WRAP-01",
)
MIXER, GLUE, COATER, SLITTER, DIE, WAREHOUSE = (
    "A02-MIX-01",
    "A02-GLUE-01",
    "A02-COAT-01",
    "A02-ROLL-01",
    "A02-DIE-01",
    "A02-WH-01",
)
_serial = itertools.count(1)


def fresh(prefix: str) -> str:
    """A code no other test uses."""
    return f"{prefix}{next(_serial):06d}"


class Host:
    """An equipment host as the spec wants it: login, token, LocalTime, both casings on request."""

    def __init__(
        self, session: aiohttp.ClientSession, url: str, profile: Profile, admin: dict[str, str] | None = None
    ) -> None:
        self.session, self.url, self.profile = session, url, profile
        self.admin = admin or {}  # the admin token's header, for /admin/*
        self.token: str | None = None
        self.now = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)

    def tick(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def body(self, op: str, values: dict[str, Any] | None = None, equipment: str = WINDER) -> dict[str, Any]:
        ctx = {"now": self.now, "equipment_code": equipment, "resource_code": f"R-{equipment}"}
        return self.profile.build_request(op, values or {}, context=ctx)

    async def post(self, path: str, body: Any, *, token: bool = True, raw: bytes | None = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if token and self.token:
            headers["Authorization"] = self.token
        data = raw if raw is not None else aiohttp.payload.JsonPayload(body)
        async with self.session.post(self.url + path, data=data, headers=headers) as resp:
            return resp.status, await resp.json(content_type=None)

    async def call(self, op: str, values: dict[str, Any] | None = None, equipment: str = WINDER) -> dict[str, Any]:
        self.tick(1)
        status, doc = await self.post(self.profile.operation(op).path, self.body(op, values, equipment))
        assert status in (200, 401), (status, doc)
        return doc

    async def ok(self, op: str, values: dict[str, Any] | None = None, equipment: str = WINDER) -> Any:
        doc = await self.call(op, values, equipment)
        assert doc["code"] == 0, f"{op} at {equipment} refused: {doc['msg']}"
        return doc.get("data")

    async def refused(self, op: str, values: dict[str, Any] | None, equipment: str, *needles: str) -> str:
        doc = await self.call(op, values, equipment)
        assert doc["code"] != 0, f"{op} at {equipment} was accepted, expected a refusal"
        for needle in needles:
            assert needle in doc["msg"], f"{needle!r} not in {doc['msg']!r}"
        return doc["msg"]

    async def login(self, user: str = "op1001", password: str = "pa55word") -> None:
        data = await self.ok("OperatorLogin", {"OperatorUserID": user, "OperatorPassword": password})
        self.token = data["authorization"]

    async def verify(self, equipment: str) -> None:
        """2.7 -> 2.8 -> 2.9 with the nominal values, as a host does before it starts."""
        listing = await self.ok("GetRecipeList", {"ProductCode": "QK-LFP-280AH"}, equipment)
        if not listing:
            return
        code = listing[0]["recipeCode"]
        detail = await self.ok("GetRecipeDetail", {"RecipeCode": code}, equipment)
        params = [
            {
                "ParamCode": p["paramCode"],
                "ParamValue": p["paramValue"],
                "ParamUpper": p["paramUpper"],
                "ParamLower": p["paramLower"],
            }
            for p in detail["paramList"]
        ]
        await self.ok(
            "Recipe",
            {"ProductCode": "QK-LFP-280AH", "RecipeCode": code, "Version": detail["version"], "ParamList": params},
            equipment,
        )

    async def receive(self, *barcodes: str) -> None:
        rows = [{"BarCode": b, "IsRawMaterial": True} for b in barcodes]
        await self.ok("MaterialInventory", {"BarCodeList": rows}, WAREHOUSE)

    async def jelly_roll(self, winder: str = WINDER, code: str | None = None, passed: int = 1) -> str:
        code = code or fresh("JR")
        await self.ok("CollingPolar", {"Sfc": code, "Passed": passed, "NgList": [] if passed else ["NG-WIND"]}, winder)
        return code

    async def move(self, code: str, equipment: str, *, passed: int = 1, ng: list[str] | None = None) -> None:
        await self.ok("Inbound", {"Sfc": code}, equipment)
        await self.ok(
            "Outbound",
            {"Sfc": code, "Passed": passed, "ParamList": [], "BindFeedingCodeList": [], "NgList": ng or []},
            equipment,
        )


class Listener:
    """An equipment host's side of section 3 on a loopback address: records what the MES sends."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.delay_s = 0.0
        self.status = 200
        self.address = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((request.path, await request.json()))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.status == 400:
            return web.json_response({"Msg": "设备忙"}, status=400)
        return web.Response(status=self.status)


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    """A real listener on 127.0.1.23 (Linux routes all of 127/8 to lo), port 0."""
    eq = Listener()
    app = web.Application()
    app.router.add_post("/api/SendInterLock", eq.handle)
    app.router.add_post("/api/SendBatchSfc", eq.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.1.23", 0)
    await site.start()
    eq.address = f"127.0.1.23:{runner.addresses[0][1]}"
    yield eq
    await runner.cleanup()


@pytest.fixture(scope="session")
def profile() -> Profile:
    return _loaded("line-A02", None, None)[0]


@pytest.fixture
async def make_mes() -> AsyncIterator[Callable[..., Awaitable[RunningMes]]]:
    """Start MES with settings of the test's own; all are stopped at the end."""
    started: list[RunningMes] = []

    async def make(**settings: Any) -> RunningMes:
        settings = {"port": 0, "db": ":memory:", "interlock_timeout_s": 0.5, **settings}
        running = await start_mes(MesConfig(**settings))
        started.append(running)
        return running

    yield make
    for running in started:
        await running.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def mes(make_mes: Callable[..., Awaitable[RunningMes]]) -> RunningMes:
    return await make_mes()


@pytest.fixture
async def host(mes: RunningMes, session: aiohttp.ClientSession, profile: Profile) -> Host:
    h = Host(session, mes.url, profile, mes.admin_headers)
    await h.login()
    return h


async def get_json(host: Host, path: str) -> Any:
    async with host.session.get(host.url + path, headers=host.admin) as resp:
        assert resp.status == 200, (path, resp.status)
        return await resp.json()


async def wait_for(predicate: Callable[[], Awaitable[bool]], timeout_s: float = 5.0) -> None:
    """Poll until ``predicate`` holds (bounded in time)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while not await predicate():
        assert loop.time() < end, "condition not reached in time"
        await asyncio.sleep(0.02)


async def verified(host: Host, *equipment: str) -> None:
    for code in equipment:
        await host.verify(code)


ASSEMBLY = (WINDER, HOT_PRESS, XRAY, TAB_CUT, USW, COVER)


async def assembled_cell(host: Host) -> tuple[str, str, str]:
    """Two jelly rolls through winding .. ultrasonic welding, and the cell code of 2.33/2.32: (cell, jr1, jr2)."""
    jrs = [await host.jelly_roll(), await host.jelly_roll()]
    for jr in jrs:
        for station in (HOT_PRESS, XRAY, TAB_CUT):
            await host.move(jr, station)
    await host.ok("InboundMore", {"SfcList": jrs}, USW)
    rows = [{"Sfc": jr, "Passed": 1, "ParamList": [], "BindFeedingCodeList": [], "NgList": []} for jr in jrs]
    await host.ok("OutboundMultPolar", {"SfcList": rows}, USW)
    cell = await host.ok("GenerateCellSfc", {"Sfc": jrs[0]}, COVER)
    await host.ok(
        "OutboundSfcPolar",
        {"Sfc": cell, "JzSfc": jrs[0], "Passed": 1, "ParamList": [], "BindFeedingCodes": [], "NgList": []},
        COVER,
    )
    return cell, jrs[0], jrs[1]
