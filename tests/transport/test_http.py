"""The MES client against a real aiohttp server on loopback port 0."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from tests.conftest import MES_PROFILE
from twin.metrics import Exchange
from twin.profile import load_profile
from twin.transport import MesClient

PROFILE = load_profile(MES_PROFILE)


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


@pytest.fixture
async def mes() -> AsyncIterator[tuple[str, list[dict]]]:
    seen: list[dict] = []

    async def generate_sfc(request: web.Request) -> web.Response:
        seen.append({"auth": request.headers.get("Authorization"), "body": await request.json()})
        if len(seen) % 2 == 0:  # every second answer in the example's shape of 2.23
            return web.json_response({"Code": 0, "Msg": "Success", "Data": ["R-0001", "R-0002"]})
        return web.json_response({"code": 0, "msg": "Success", "data": {"sfcList": ["R-0001", "R-0002"]}})

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1.0)
        return web.json_response({"code": 0, "msg": "late"})

    async def refused(request: web.Request) -> web.Response:
        return web.json_response({"code": 500101, "msg": "EquipmentCode A02-X-01 is not known"})

    app = web.Application()
    app.router.add_post("/EquipmentService/api/v1/GenerateSfc", generate_sfc)
    app.router.add_post("/EquipmentService/api/v1/Heartbeat", slow)
    app.router.add_post("/EquipmentService/api/v1/State", refused)
    runner, url = await serve(app)
    yield url, seen
    await runner.cleanup()


async def test_call_sends_the_body_and_token_and_records_the_exchange(mes) -> None:
    url, seen = mes
    recorded: list[tuple[Exchange, bool]] = []
    op = PROFILE.operation("GenerateSfc")
    body = PROFILE.build_request(op, op.request_examples["realistic"])
    async with MesClient(url, record=lambda ex, ok: recorded.append((ex, ok))) as client:
        intended = time.time() - 0.010
        first = await client.call(op, body, equipment="A02-COAT-01", token="Bearer t1", intended_wall=intended)
        second = await client.call(op, body, equipment="A02-COAT-01", token="Bearer t1")
    assert seen[0]["auth"] == "Bearer t1" and seen[0]["body"] == body
    assert first.ok and first.code == 0 and first.data == {"sfcList": ["R-0001", "R-0002"]}
    # the other documented shape of 2.23 (an array, PascalCase envelope) is understood too
    assert second.ok and second.data == ["R-0001", "R-0002"]
    ex, ok = recorded[0]
    assert ok and ex.operation == "GenerateSfc" and ex.status == 200 and ex.code == 0
    assert ex.latency_s >= 0.010 > ex.service_s - 0.5 and ex.bytes_out == len(__import__("orjson").dumps(body))


async def test_business_refusal_is_not_ok_but_answered(mes) -> None:
    url, _ = mes
    op = PROFILE.operation("State")
    async with MesClient(url) as client:
        reply = await client.call(op, {}, equipment="A02-X-01")
    assert not reply.ok and reply.status == 200 and reply.code == 500101 and "not known" in reply.msg


async def test_timeout_is_a_reply_not_an_exception(mes) -> None:
    url, _ = mes
    async with MesClient(url, timeout_s=0.2) as client:
        reply = await client.call(PROFILE.operation("Heartbeat"), {}, equipment="E")
    assert (reply.ok, reply.status, reply.error) == (False, 0, "timeout")


async def test_refused_connection_is_a_reply() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but not listening: connections are refused
        async with MesClient(f"http://127.0.0.1:{port}", timeout_s=2) as client:
            reply = await client.call(PROFILE.operation("Heartbeat"), {}, equipment="E")
    assert (reply.ok, reply.error) == (False, "refused")
