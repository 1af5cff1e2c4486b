"""Faults injected on purpose, seen from a client: latency, error rate, outage (refuse, hang), slow database."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import numpy as np
import pytest

from tests.mes.conftest import Host, get_json
from twin.errors import ConfigError
from twin.mes import Faults, Latency, RunningMes


async def _set(host: Host, doc: dict[str, Any]) -> dict[str, Any]:
    async with host.session.post(host.url + "/admin/faults", json=doc, headers=host.admin) as resp:
        return {"status": resp.status, **(await resp.json())}


async def _timed(host: Host, op: str = "Heartbeat", values: dict[str, Any] | None = None) -> tuple[float, dict]:
    started = time.perf_counter()
    doc = await host.call(op, values or {"IsOnline": True})
    return time.perf_counter() - started, doc


async def test_latency_for_one_interface_or_all(host: Host) -> None:
    await _set(host, {"latency_for": {"Heartbeat": "fixed:150"}})
    slow, _ = await _timed(host)
    fast, _ = await _timed(host, "TimeSynch", {})
    assert slow >= 0.15 and fast < 0.1
    await _set(host, {"latency_for": {}, "latency": "uniform:100:120"})
    both = [await _timed(host) for _ in range(2)] + [await _timed(host, "TimeSynch", {})]
    assert all(0.1 <= t < 0.5 for t, _ in both)
    async with host.session.delete(host.url + "/admin/faults", headers=host.admin) as resp:
        assert (await resp.json())["latency"] is None
    assert (await _timed(host))[0] < 0.1


async def test_error_rate_refuses_on_purpose(host: Host) -> None:
    await _set(host, {"error_rate_for": {"Heartbeat": 1.0}})
    _, doc = await _timed(host)
    assert doc["code"] == 9001 and "fault injected on purpose" in doc["msg"]
    _, doc = await _timed(host, "TimeSynch", {})
    assert doc["code"] == 0
    await _set(host, {"error_rate_for": {}, "error_rate": 1.0, "error_kind": "http500"})
    status, doc = await host.post("/EquipmentService/api/v1/TimeSynch", host.body("TimeSynch"))
    assert status == 500 and doc["code"] == 9001
    stats = await get_json(host, "/admin/stats")
    assert stats["injected"]["error"] == 2 and stats["refusals"]["fault"] == 2


async def test_bad_fault_settings_are_refused_with_a_reason(host: Host) -> None:
    doc = await _set(host, {"latency": "gauss:1"})
    assert doc["status"] == 400 and "must be one of fixed" in doc["error"]
    doc = await _set(host, {"error_rate": 2})
    assert doc["status"] == 400 and "from 0 to 1" in doc["error"]
    doc = await _set(host, {"outage": {"for_s": 1, "mode": "sleep"}})
    assert doc["status"] == 400 and "refuse, hang" in doc["error"]


async def test_outage_refuses_connections_then_recovers(host: Host) -> None:
    await _set(host, {"outage": {"after_s": 0, "for_s": 0.6, "mode": "refuse"}})
    await asyncio.sleep(0.1)
    async with aiohttp.ClientSession() as other:  # a new connection is refused
        with pytest.raises(aiohttp.ClientConnectorError):
            await other.post(host.url + "/EquipmentService/api/v1/Heartbeat", json={})
    with pytest.raises(aiohttp.ClientError):  # and a kept-alive one is dropped
        await host.call("Heartbeat", {"IsOnline": True})
    await asyncio.sleep(0.7)
    _, doc = await _timed(host)
    assert doc["code"] == 0


async def test_outage_can_hang_requests(host: Host) -> None:
    await _set(host, {"outage": {"after_s": 0, "for_s": 1.0, "mode": "hang"}})
    started = time.perf_counter()
    with pytest.raises((asyncio.TimeoutError, aiohttp.ClientError)):
        async with host.session.post(host.url + "/EquipmentService/api/v1/TimeSynch", json=host.body("TimeSynch"),
                                     headers={"Authorization": host.token or ""},
                                     timeout=aiohttp.ClientTimeout(total=0.3)) as resp:
            await resp.read()
    assert time.perf_counter() - started >= 0.3
    faults = await get_json(host, "/admin/faults")
    assert faults["outage"]["mode"] == "hang"
    await asyncio.sleep(1.0)
    assert (await _timed(host))[1]["code"] == 0


async def test_slow_database_slows_acknowledgements(host: Host, mes: RunningMes) -> None:
    await _set(host, {"slow_db_ms": 200})
    elapsed, doc = await _timed(host)
    assert doc["code"] == 0 and elapsed >= 0.2
    assert mes.mes.store.slow_commit_ms == 200


async def test_outage_from_flags_starts_with_the_server(make_mes: Any, session: aiohttp.ClientSession) -> None:
    faults = Faults()
    loop = asyncio.get_running_loop()
    faults.update({"outage": {"after_s": 0.3, "for_s": 0.3, "mode": "refuse"}}, loop.time())
    running = await make_mes(faults=faults)
    async with session.get(running.url + "/admin/faults", headers=running.admin_headers) as resp:
        assert (await resp.json())["outage"]["mode"] == "refuse"
    await asyncio.sleep(0.4)
    with pytest.raises(aiohttp.ClientConnectorError):
        await session.get(running.url + "/metrics")


def test_latency_distributions_have_the_asked_shape() -> None:
    rng = np.random.default_rng(7)
    lognormal = Latency.parse("lognormal:20:200")
    samples = np.array([lognormal.sample_s(rng) for _ in range(20000)]) * 1000
    assert 18 < np.median(samples) < 22 and 170 < np.percentile(samples, 99) < 235
    assert Latency.parse("fixed:50").sample_s(rng) == 0.05
    assert str(Latency.parse("uniform:10:80")) == "uniform:10:80"
    for bad in ("lognormal:200:20", "fixed", "uniform:5:1", "exp:-1"):
        with pytest.raises(ConfigError):
            Latency.parse(bad)
