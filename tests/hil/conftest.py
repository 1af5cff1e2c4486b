"""Fixtures of the hardware-in-the-loop tests: I/O maps, a small upstream MES, waiting for conditions."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from aiohttp import web

from twin.hil.iomap import IoMap, load_io_map


@pytest.fixture(scope="session")
def modbus_map() -> IoMap:
    return load_io_map("winder.modbus")


@pytest.fixture(scope="session")
def opcua_map() -> IoMap:
    return load_io_map("winder.opcua")


async def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0, step_s: float = 0.01) -> None:
    """Poll a condition (bounded in time); fail the test by name when it never holds."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        await asyncio.sleep(step_s)


class UpstreamMes:
    """A small stand-in MES: answers every call with the spec's envelope, login with a token.

    ``refuse[path] = code`` answers that path with a business error instead.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []
        self.refuse: dict[str, int] = {}
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _answer(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read() or b"{}")
        self.calls.append((request.path, body))
        if request.path in self.refuse:
            return web.json_response({"code": self.refuse[request.path], "msg": "refused on purpose"})
        if request.path.endswith("/OperatorLogin"):
            code = body.get("equipmentCode") or body.get("EquipmentCode")
            return web.json_response(
                {"code": 0, "msg": "Success", "data": {"accountType": "2", "authorization": f"token-{code}"}}
            )
        return web.json_response({"code": 0, "msg": "Success"})

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._answer)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def upstream() -> UpstreamMes:
    mes = UpstreamMes()
    await mes.start()
    yield mes
    await mes.stop()


@pytest.fixture
def record_dir(tmp_path: Path) -> Path:
    return tmp_path / "record"
