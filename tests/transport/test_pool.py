"""The hot-path pool against a real aiohttp server: reuse, close, chunked bodies, limits, timeouts."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web

from twin.transport.pool import HttpError, HttpPool


@pytest.fixture
async def server():
    peers: list[int] = []

    async def echo(request: web.Request) -> web.StreamResponse:
        peers.append(request.transport.get_extra_info("peername")[1])
        body = await request.read()
        if request.path == "/close":
            return web.Response(body=body, headers={"Connection": "close"})
        if request.path == "/chunked":
            resp = web.StreamResponse()
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            for part in (b"ab", b"cd", body):
                await resp.write(part)
            await resp.write_eof()
            return resp
        if request.path == "/slow":
            await asyncio.sleep(0.5)
        return web.Response(body=body, status=201 if request.path == "/created" else 200)

    app = web.Application()
    app.router.add_post("/{tail:.*}", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}", peers
    await runner.cleanup()


async def test_keep_alive_reuses_one_connection(server) -> None:
    url, peers = server
    pool = HttpPool(url, size=4)
    for i in range(5):
        assert await pool.post("/created", b"x%d" % i) == (201, b"x%d" % i)
    await pool.close()
    assert len(set(peers)) == 1


async def test_connection_close_and_chunked_answers(server) -> None:
    url, peers = server
    pool = HttpPool(url, size=2)
    assert await pool.post("/close", b"1") == (200, b"1")
    assert await pool.post("/chunked", b"ef") == (200, b"abcdef")
    await pool.close()
    assert len(set(peers)) == 2  # the closed connection was not reused


async def test_pool_never_opens_more_than_its_size(server) -> None:
    url, peers = server
    pool = HttpPool(url, size=3)
    answers = await asyncio.gather(*(pool.post("/x", b"%d" % i) for i in range(30)))
    await pool.close()
    assert sorted(b for _, b in answers) == sorted(b"%d" % i for i in range(30))
    assert len(set(peers)) <= 3


async def test_timeout_discards_the_connection(server) -> None:
    url, _ = server
    pool = HttpPool(url, size=1, timeout_s=0.1)
    with pytest.raises(HttpError) as info:
        await pool.post("/slow", b"")
    assert info.value.kind == "timeout"
    assert await pool.post("/x", b"next") == (200, b"next")  # a fresh connection, not the late answer
    await pool.close()


def test_only_plain_http_is_accepted() -> None:
    with pytest.raises(ValueError, match="plain http"):
        HttpPool("https://mes.example")


async def _one_connection_held(url: str, timeout_s: float) -> tuple[HttpPool, asyncio.Future[Any], float]:
    """A pool of one connection, held by a call the server answers in 0.5 s; and the loop time after it left."""
    pool = HttpPool(url, size=1, timeout_s=timeout_s)
    slow = asyncio.ensure_future(pool.post("/slow", b""))
    await asyncio.sleep(0.05)
    return pool, slow, asyncio.get_running_loop().time()


async def test_the_timeout_covers_the_wait_for_a_busy_pool(server) -> None:
    """Every connection held by a slow call: the next call fails at its own timeout, not after theirs."""
    url, _ = server
    pool, slow, started = await _one_connection_held(url, 0.6)
    loop = asyncio.get_running_loop()
    with pytest.raises(HttpError) as info:
        await pool.post("/x", b"queued", deadline=started + 0.2)
    assert info.value.kind == "timeout"
    assert loop.time() - started < 0.4  # not the 0.45 s left of the slow call plus its own
    assert await slow == (200, b"")
    await pool.close()


async def test_a_kept_alive_connection_the_server_dropped_is_not_a_failure() -> None:
    """A server may close a kept-alive connection as the next request arrives (its idle timeout): no answer
    byte came, the application never saw the request, so it goes again on a fresh connection."""
    served: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            served.append(await reader.readexactly(2))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
            await reader.readuntil(b"\r\n\r\n")  # the next request on this connection: dropped unanswered
        except asyncio.IncompleteReadError:
            pass  # the client closed it first (the pool, at the end)
        finally:
            writer.close()
            await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = HttpPool(f"http://127.0.0.1:{port}", size=1)
    assert await pool.post("/a", b"r1") == (200, b"ok")
    assert await pool.post("/a", b"r2") == (200, b"ok")
    assert served == [b"r1", b"r2"]
    assert pool.stale_retries == 1
    await pool.close()
    server.close()
    await server.wait_closed()


async def test_any_method_and_query_with_the_answer_s_headers_for_a_forwarding_proxy() -> None:
    """The proxy's upstream (twin.hil.proxy) sends what the host sent: method, path and query, as is."""

    async def any_request(request: web.Request) -> web.Response:
        text = f"{request.method} {request.path_qs} {await request.text()}"
        return web.Response(text=text, content_type="text/x-mes", headers={"X-Mes": "A"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", any_request)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    try:
        pool = HttpPool(url, keep_headers=True)
        status, body, headers = await pool.request("GET", "/api/v1/x?EquipmentCode=A02-WIND-01", b"")
        assert (status, body) == (200, b"GET /api/v1/x?EquipmentCode=A02-WIND-01 ")
        kept = {k.lower(): v for k, v in headers}
        assert kept[b"content-type"].startswith(b"text/x-mes") and kept[b"x-mes"] == b"A"
        status, body, headers = await pool.request("PUT", "/y", b"{}", b"Content-Type: application/json\r\n")
        assert (status, body) == (200, b"PUT /y {}") and len(headers) >= 2  # a second answer: its own headers
        await pool.close()
        hot = HttpPool(url)  # the hot path keeps no headers (httptools then calls no header callback)
        assert (await hot.request("POST", "/z", b"1"))[2] == []
        await hot.close()
    finally:
        await runner.cleanup()


async def test_each_request_times_out_at_its_own_deadline(server) -> None:
    """One timer serves the requests in flight: a later request with an earlier deadline still ends on time,
    and the one after it on its own (the timer is armed again after each sweep)."""
    url, _ = server
    pool = HttpPool(url, size=3, timeout_s=5.0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    ended: dict[str, float] = {}

    async def slow(name: str, after_s: float) -> None:
        with pytest.raises(HttpError) as info:
            await pool.post("/slow", b"", deadline=started + after_s)
        assert info.value.kind == "timeout"
        ended[name] = loop.time() - started

    await asyncio.gather(slow("late", 0.4), slow("early", 0.1), slow("middle", 0.25))
    assert 0.1 <= ended["early"] < 0.18
    assert 0.25 <= ended["middle"] < 0.33
    assert 0.4 <= ended["late"] < 0.48
    assert await pool.post("/x", b"after") == (200, b"after")
    await pool.close()


async def test_calls_waiting_for_a_connection_time_out_each_at_its_own_deadline(server) -> None:
    """The sweep that times out requests in flight also times out those still waiting for a connection (no timer
    of their own): each at its deadline, the connection's holder untouched."""
    url, _ = server
    pool, slow, started = await _one_connection_held(url, 5.0)
    loop = asyncio.get_running_loop()
    ended: dict[str, float] = {}

    async def queued(name: str, after_s: float) -> None:
        with pytest.raises(HttpError, match="no free connection") as info:
            await pool.post("/x", b"queued", deadline=started + after_s)
        assert info.value.kind == "timeout"
        ended[name] = loop.time() - started

    await asyncio.gather(queued("later", 0.3), queued("sooner", 0.15))
    assert 0.15 <= ended["sooner"] < 0.25
    assert 0.3 <= ended["later"] < 0.4
    assert await slow == (200, b"")
    assert await pool.post("/x", b"after") == (200, b"after")
    await pool.close()
