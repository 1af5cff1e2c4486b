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


class Relay:
    """A loopback TCP relay in front of a server: ``cut()`` drops the link as a pulled cable does, ``restore()``
    brings it back on the same port, without restarting the server behind it (an OPC UA server takes seconds)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._connect, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
            self._writers.discard(writer)

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def restore(self) -> None:
        await self.start()
