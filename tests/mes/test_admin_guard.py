"""The admin API is safe to leave running: a token for every /admin/* endpoint, and bad input a 4xx with
the reason, never a 500 and never a wedged database writer."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from tests.mes.conftest import Host
from twin.mes import RunningMes

ADMIN = [
    ("GET", "/admin/faults"),
    ("POST", "/admin/faults"),
    ("DELETE", "/admin/faults"),
    ("POST", "/admin/electrolyte-batch"),
    ("GET", "/admin/interlocks"),
    ("GET", "/admin/trace/X"),
    ("GET", "/admin/registry"),
    ("GET", "/admin/stats"),
    ("POST", "/admin/opening-wip"),
    ("DELETE", "/admin/tokens"),
]


@pytest.mark.parametrize(("method", "path"), ADMIN)
async def test_every_admin_endpoint_needs_the_token(host: Host, mes: RunningMes, method: str, path: str) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"X-Admin-Token": mes.admin_token + "x"}):
        async with host.session.request(method, host.url + path, json={}, headers=headers) as resp:
            assert resp.status == 401, (headers, resp.status)
            doc = await resp.json()
            assert "admin" in doc["error"] and "token" in doc["error"] and "\n" not in doc["error"]
    async with host.session.request(method, host.url + path, json={}, headers=host.admin) as resp:
        assert resp.status != 401
    assert host.token not in (None, mes.admin_token)  # a host's login token is not the admin token


async def test_the_token_is_the_configured_one_else_a_new_one(make_mes: Any, session: aiohttp.ClientSession) -> None:
    given = await make_mes(admin_token="s3cret-token")
    other, third = await make_mes(), await make_mes()
    assert given.admin_token == "s3cret-token"
    assert len(other.admin_token) >= 24 and other.admin_token != third.admin_token
    async with session.get(given.url + "/admin/stats", headers={"Authorization": "Bearer s3cret-token"}) as resp:
        assert resp.status == 200


async def _post(host: Host, path: str, doc: Any) -> tuple[int, Any]:
    async with host.session.post(host.url + path, json=doc, headers=host.admin) as resp:
        return resp.status, await resp.json()


@pytest.mark.parametrize(
    ("path", "doc", "needle"),
    [
        ("/admin/faults", {"latency": 5}, "latency 5: must be text"),
        ("/admin/faults", {"latency": "fixed:inf"}, "from 0 to"),
        ("/admin/faults", {"latency_for": {"Inbound": 5}}, "latency 5: must be text"),
        ("/admin/faults", {"latency_for": ["Inbound"]}, "latency_for must be an object"),
        ("/admin/faults", {"error_rate_for": {"Inbound": "x"}}, "from 0 to 1"),
        ("/admin/faults", {"error_rate": True}, "from 0 to 1"),
        ("/admin/faults", {"slow_db_ms": 1e308}, "slow_db_ms must be a number from 0 to 10000"),
        ("/admin/faults", {"slow_db_ms": "50"}, "slow_db_ms must be a number"),
        ("/admin/faults", {"outage": {"for_s": 1e308}}, "outage.for_s must be a number"),
        ("/admin/faults", {"outage": {"for_s": 1, "extra": 1}}, "outage takes after_s"),
        ("/admin/faults", [1], "faults must be a JSON object"),
        ("/admin/faults", None, "faults must be a JSON object"),
        ("/admin/electrolyte-batch", {"equipment": 5}, "equipment must be a list"),
        ("/admin/electrolyte-batch", {"equipment": [5]}, "equipment must be a list"),
        ("/admin/electrolyte-batch", [5], "expected {"),
        ("/admin/electrolyte-batch", {"batchSfc": 5}, "batchSfc must be"),
        ("/admin/electrolyte-batch", {"batch": "X"}, "unknown key(s) batch"),
        ("/admin/opening-wip", {"equipment": "A02-BAKE-01", "cells": [], "tray": 5}, "tray must be"),
        ("/admin/opening-wip", {"equipment": 5, "cells": []}, "expected {"),
    ],
)
async def test_bad_admin_input_is_a_400_with_the_reason(host: Host, path: str, doc: Any, needle: str) -> None:
    status, answer = await _post(host, path, doc)
    assert status == 400 and needle in answer["error"], (status, answer)


async def test_a_refused_fault_document_changes_nothing(host: Host) -> None:
    status, _ = await _post(host, "/admin/faults", {"latency": "fixed:100", "slow_db_ms": -1})
    assert status == 400
    async with host.session.get(host.url + "/admin/faults", headers=host.admin) as resp:
        faults = await resp.json()
    assert faults["latency"] is None and faults["slow_db_ms"] == 0


async def test_admin_body_that_is_not_json_is_a_400(host: Host) -> None:
    headers = {**host.admin, "Content-Type": "application/json"}
    async with host.session.post(host.url + "/admin/faults", data=b"{nope", headers=headers) as resp:
        assert resp.status == 400 and "not JSON" in (await resp.json())["error"]


async def test_no_fault_setting_wedges_the_database_writer(host: Host, mes: RunningMes) -> None:
    """The issue's wedge: slow_db_ms 1e308 killed the writer thread; every later request hung."""
    assert (await _post(host, "/admin/faults", {"slow_db_ms": 1e308}))[0] == 400
    mes.mes.store.slow_commit_ms = 1e308  # even set behind the API's back, a commit is held 10 s at most
    mes.mes.store.slow_commit_ms = float("nan")  # and a value that is no number is no delay
    started = time.perf_counter()
    await host.ok("Heartbeat", {"IsOnline": True})
    assert time.perf_counter() - started < 2


async def test_the_writer_survives_any_exception(host: Host, mes: RunningMes, monkeypatch: pytest.MonkeyPatch) -> None:
    store = mes.mes.store
    real = store._execute
    calls = {"n": 0}

    def broken_once(conn: Any, jobs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OverflowError("what time.sleep(1e308) raised inside the writer")
        real(conn, jobs)

    monkeypatch.setattr(store, "_execute", broken_once)
    status, doc = await host.post("/EquipmentService/api/v1/Heartbeat", host.body("Heartbeat", {"IsOnline": True}))
    assert status == 500 and doc["code"] == 9501  # not stored, and said so
    await asyncio.wait_for(host.ok("Heartbeat", {"IsOnline": True}), 5)  # the next one is
    assert store._thread is not None and store._thread.is_alive()


async def test_a_token_that_is_not_text_is_a_401(mes: RunningMes) -> None:
    address, port = mes.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(address, int(port))
    writer.write(b"GET /admin/stats HTTP/1.1\r\nHost: mes\r\nAuthorization: Bearer \xff\xfe\xe4\xb8\r\n\r\n")
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(4096), 5)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 401"), answer[:100]
